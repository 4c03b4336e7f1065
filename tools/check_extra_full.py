#!/usr/bin/env python3
"""Extra networks on the full-size SD v1.5 layout (random weights) against
diffusers: the cases of tools/make_extra_goldens.py (LoRA rank 8 with a
LoCon layer, rank 32, PEFT; weights 1, 0.5, -0.7, two LoRAs, text encoder
and UNet weights apart; textual-inversion embeddings as A1111 .pt,
safetensors and diffusers .bin; clip skip 2 = diffusers clip_skip=1), each
run through `sdvk stage unet|clip` on the CPU and compared with diffusers
(tools/extra_oracle.py; unfused PEFT adapters, and fuse_lora for the first
case). Limits: relative L2 1e-4 (UNet eps), 1e-3 (CLIP context).
Step convert: `sdvk convert` with two LoRAs (keep and f32) under
/usr/bin/time -v (peak RSS), its UNet output against the LoRAs at run time
(f32: bit-identical), and the f32 file read by diffusers' LDM conversion.

    check_extra_full.py --build build [--model /tmp/sdvk_full/full_f16.safetensors]
                        [--work /tmp/sdvk_extra_full] [--vocab ../shared/clip/...]

Needs the oracle venv with peft. LoRAs and embeddings for the model are
made by tools/make_lora.py into WORK/lora (kept for reruns).
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import extra_oracle as eo  # noqa: E402
import make_extra_goldens as mg  # noqa: E402

FAILS = []


def run(cmd):
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        print(r.stdout, r.stderr)
        raise SystemExit("failed: %s" % " ".join(cmd))
    return time.time() - t


def check(ok, msg):
    print(("ok   " if ok else "FAIL ") + msg, flush=True)
    if not ok:
        FAILS.append(msg)


def peak_rss_mb(stderr):
    for line in stderr.splitlines():
        if "Maximum resident set size" in line:
            return int(line.split(":")[1]) / 1024.0
    return float("nan")


def step_convert(a, o, ld, lat, lat_p, ctx_p, sdvk_stage):
    """sdvk convert of the model with two LoRAs merged: peak RSS, stage
    outputs against the LoRAs at run time (bit-identical in f32, close in
    the model's f16), and the file read by diffusers' single-file (LDM)
    conversion."""
    import gc
    o.pipe = None  # room for the diffusers model of the converted file
    gc.collect()
    sdvk = os.path.join(a.build, "sdvk")
    loras = ["--lora", os.path.join(ld, "lora_kohya_r8.safetensors") + ":0.7",
             "--lora", os.path.join(ld, "lora_kohya_r32.safetensors") + ":-0.5:0.25"]
    unet_args = ["unet", "--latent", lat_p, "--timestep", "981", "--context", ctx_p]
    rt, _ = sdvk_stage(unet_args + loras)
    for typ in ("keep", "f32"):
        out = os.path.join(a.work, "conv_%s.safetensors" % typ)
        cmd = ["/usr/bin/time", "-v", sdvk, "convert", "-m", a.model, "-o", out, "--type", typ] + loras
        t = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.time() - t
        if r.returncode:
            print(r.stdout, r.stderr)
            check(False, "convert --type %s failed" % typ)
            continue
        rss = peak_rss_mb(r.stderr)
        size = os.path.getsize(out)
        check(rss < 0.25 * size / 1e6 + 200, "convert --type %s with 2 LoRAs: %.2f GB written in %.0f s, peak RSS "
              "%.0f MB (source %.2f GB)" % (typ, size / 1e9, dt, rss, os.path.getsize(a.model) / 1e9))
        print("     " + " ".join(cmd[2:]))
        t = time.time()
        r2 = subprocess.run([sdvk, "stage"] + unet_args + ["--backend", "cpu", "-m", out, "-o",
                            os.path.join(a.work, "conv_unet.npy")], capture_output=True, text=True)
        cu = np.load(os.path.join(a.work, "conv_unet.npy"))
        if typ == "f32":
            same = np.array_equal(cu.view(np.uint32), rt.view(np.uint32))
            check(same, "stage unet on the f32 file with the LoRAs merged == LoRAs at run time on the "
                  "f16 model: %s" % ("bit-identical" if same else "rel L2 %.2e" % eo.rel_l2(cu, rt)))
            # diffusers reads the file through its LDM single-file conversion
            o2 = eo.Oracle(out, None)
            o2.set_loras([])
            e = eo.rel_l2(cu, o2.unet(lat, 981, np.load(ctx_p)))
            del o2
            check(e <= 1e-4, "diffusers (convert_ldm_unet_checkpoint) on the converted file vs sdvk: "
                  "UNet rel L2 %.2e" % e)
        else:
            e = eo.rel_l2(cu, rt)
            check(e <= 1e-2, "stage unet on the f16 file with the LoRAs merged vs LoRAs at run time: "
                  "rel L2 %.2e (merged weights rounded to f16)" % e)
        os.remove(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(HERE)
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", default="/tmp/sdvk_full/full_f16.safetensors")
    ap.add_argument("--work", default="/tmp/sdvk_extra_full")
    ap.add_argument("--vocab", default=os.path.join(root, "../shared/clip/bpe_simple_vocab_16e6.txt.gz"))
    ap.add_argument("--only", default="lora,emb,convert", help="lora, emb, convert (comma list)")
    a = ap.parse_args()
    from diffusers.utils import logging as dlog
    dlog.set_verbosity_error()
    os.makedirs(a.work, exist_ok=True)
    ld = os.path.join(a.work, "lora")
    if not os.path.exists(os.path.join(ld, "lora_peft_r8.safetensors")):
        t = run([sys.executable, os.path.join(HERE, "make_lora.py"), a.model, "-o", ld])
        print("made LoRAs and embeddings in %.0f s: %s" % (t, ", ".join(
            "%s %.1f MB" % (f, os.path.getsize(os.path.join(ld, f)) / 1e6) for f in sorted(os.listdir(ld)))))
    sdvk = os.path.join(a.build, "sdvk")
    rng = np.random.default_rng(5)
    lat_p, ctx_p = os.path.join(a.work, "lat.npy"), os.path.join(a.work, "ctx.npy")
    lat = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    ctx = rng.standard_normal((1, 77, 768)).astype(np.float32)
    np.save(lat_p, lat)
    np.save(ctx_p, ctx)
    ids = np.array([mg.TOKENS + [49407] * (77 - len(mg.TOKENS))], np.int64)
    out = os.path.join(a.work, "out.npy")
    t0 = time.time()
    o = eo.Oracle(a.model, a.vocab)
    o.set_loras([])
    base_u, base_c = o.unet(lat, 981, ctx), o.clip_ids(ids)
    print("diffusers pipeline built in %.0f s" % (time.time() - t0))
    tok = ",".join(map(str, mg.TOKENS))
    steps = a.only.split(",")

    def sdvk_stage(args):
        t = run([sdvk, "stage"] + args + ["--backend", "cpu", "-m", a.model, "-o", out])
        return np.load(out), t

    def lora_args(loras):
        r = []
        for f, wte, wu in loras:
            r += ["--lora", "%s/%s:%g" % (ld, f, wu) if wte == wu else "%s/%s:%g:%g" % (ld, f, wte, wu)]
        return r

    if "lora" in steps:
        for i, (name, loras) in enumerate(mg.LORA_CASES):
            full = [(os.path.join(ld, f), wte, wu) for f, wte, wu in loras]
            t = time.time()
            o.set_loras(full)
            u, c = o.unet(lat, 981, ctx), o.clip_ids(ids)
            t_ref = time.time() - t
            su, tu = sdvk_stage(["unet", "--latent", lat_p, "--timestep", "981", "--context", ctx_p] + lora_args(loras))
            sc, tc = sdvk_stage(["clip", "--tokens", tok] + lora_args(loras))
            eu, ec = eo.rel_l2(su, u), eo.rel_l2(sc, c)
            check(eu <= 1e-4, "lora %-9s UNet eps rel L2 %.2e (limit 1e-4; the LoRA moved it %.3f; sdvk %.0f s)"
                  % (name, eu, eo.rel_l2(u, base_u), tu))
            check(ec <= 1e-3, "lora %-9s CLIP      rel L2 %.2e (limit 1e-3; the LoRA moved it %.3f; sdvk %.0f s, "
                  "diffusers %.0f s)" % (name, ec, eo.rel_l2(c, base_c), tc, t_ref))
            if i == 0:  # the same case fused into the weights by diffusers
                o.set_loras(full, fused=True)
                uf, cf = o.unet(lat, 981, ctx), o.clip_ids(ids)
                print("     %-9s diffusers fuse_lora: sdvk vs fused UNet %.2e, CLIP %.2e; fused vs unfused "
                      "UNet %.2e, CLIP %.2e" % (name, eo.rel_l2(su, uf), eo.rel_l2(sc, cf), eo.rel_l2(uf, u),
                                                eo.rel_l2(cf, c)))
                check(eo.rel_l2(su, uf) <= 1e-4 and eo.rel_l2(sc, cf) <= 1e-3, "fused oracle agrees")
    if "emb" in steps:
        o.set_loras([])
        c2 = o.clip_ids(ids, clip_skip=2)
        sc, _ = sdvk_stage(["clip", "--tokens", tok, "--clip-skip", "2"])
        e = eo.rel_l2(sc, c2)
        check(e <= 1e-3, "clip skip 2 vs diffusers clip_skip=1: rel L2 %.2e (moved %.3f from skip 1)"
              % (e, eo.rel_l2(c2, base_c)))
        for name, embs, prompt, skip, tags in mg.EMB_CASES:
            o.set_loras([(os.path.join(ld, n + ".safetensors"), wte, wu) for n, wte, wu in tags])
            for f in embs:
                o.load_embedding(os.path.join(ld, f), os.path.splitext(f)[0])
            c = o.clip_ids(o.prompt_ids(prompt), clip_skip=skip)
            full_prompt = "".join("<lora:%s:%g> " % (n, wu) for n, wte, wu in tags) + prompt
            args = ["clip", "--vocab", a.vocab, "--embd-dir", ld, "--prompt", full_prompt]
            if tags:
                args += ["--lora-model-dir", ld]
            if skip > 1:
                args += ["--clip-skip", str(skip)]
            sc, t = sdvk_stage(args)
            e = eo.rel_l2(sc, c)
            check(e <= 1e-3, "embedding %-12s CLIP rel L2 %.2e (limit 1e-3; prompt '%s'; sdvk %.0f s)"
                  % (name, e, full_prompt, t))
    if "convert" in steps:
        step_convert(a, o, ld, lat, lat_p, ctx_p, sdvk_stage)
    print("%d failures" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
