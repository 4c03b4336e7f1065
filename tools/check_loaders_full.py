#!/usr/bin/env python3
"""Loaders on the full-size SD v1.5 layout (random weights), against the tools
people make these files with. Needs the oracle venv with peft installed
(diffusers' LoRA backend) and a built sdvk (sdvk, test_loaders).

    check_loaders_full.py --build build [--work /tmp/sdvk_loaders_full]
                          [--dtype f16|f32] [--model M.safetensors] [--only ...]

Steps (--only takes a comma list of these):
  forms    the model as .ckpt (torch.save) and as a diffusers folder
           (save_pretrained), tools/make_variants.py: every network tensor
           bit-identical to the .safetensors (test_loaders same), and
           `sdvk stage clip / unet / vae-decode / vae-encode` outputs
           byte-identical; the separate VAE (plain keys) replaces the VAE.
  lora     random LoRAs (tools/make_lora.py: kohya rank 8 with LoCon, rank
           32, PEFT via diffusers' save_lora_weights) merged by sdvk
           (test_loaders merge) and by diffusers (load_lora_weights +
           set_adapters + fuse_lora, float32) at weights 1.0, 0.5, -0.7 and
           two LoRAs together: relative L2 of every merged weight <= 1e-6,
           and the same set of weights touched.
Prints one line per check and the sizes used.
"""
import argparse
import filecmp
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_variants as mv  # noqa: E402
import st_io  # noqa: E402

FAILS = []


def run(cmd, **kw):
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode:
        print(r.stdout, r.stderr)
        raise SystemExit("failed: %s" % " ".join(cmd))
    return r.stdout, time.time() - t


def check(ok, msg):
    print(("ok   " if ok else "FAIL ") + msg, flush=True)
    if not ok:
        FAILS.append(msg)


def size_of(p):
    if os.path.isdir(p):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs)
    return os.path.getsize(p)


def step_forms(a, model):
    w = a.work
    ck, dif, vae = os.path.join(w, "model.ckpt"), os.path.join(w, "diffusers"), os.path.join(w, "vae.safetensors")
    py = sys.executable
    if not os.path.exists(ck):
        _, t = run([py, os.path.join(HERE, "make_variants.py"), "ckpt", model, "-o", ck])
        print("made %s (%.1f GB) in %.0f s" % (ck, size_of(ck) / 1e9, t))
    if not os.path.exists(os.path.join(dif, "model_index.json")):
        _, t = run([py, os.path.join(HERE, "make_variants.py"), "diffusers", model, "-o", dif])
        print("made %s (%.1f GB) in %.0f s" % (dif, size_of(dif) / 1e9, t))
    vref = os.path.join(w, "vae_ref.safetensors")
    if not os.path.exists(vae):
        run([py, os.path.join(HERE, "make_variants.py"), "vae", model, "-o", vae, "--form", "plain"])
        run([py, os.path.join(HERE, "make_variants.py"), "vae", model, "-o", vref, "--form", "prefixed"])
    tl = os.path.join(a.build, "tests", "test_loaders")
    for other in (ck, dif):
        out, t = run([tl, "same", model, other])
        check(True, out.strip() + " (%.1f s)" % t)
    out, t = run([tl, "vae", model, vae, vref])
    check(True, out.strip())
    # stages through the CLI
    sdvk = os.path.join(a.build, "sdvk")
    rng = np.random.default_rng(0)
    ins = os.path.join(w, "in")
    os.makedirs(ins, exist_ok=True)
    np.save(os.path.join(ins, "tok.npy"), np.array([[49406, 320, 1125, 539, 320, 2368, 49407] + [49407] * 70], np.int32))
    np.save(os.path.join(ins, "lat.npy"), rng.standard_normal((1, 4, 8, 8)).astype(np.float32))
    np.save(os.path.join(ins, "ctx.npy"), rng.standard_normal((1, 77, 768)).astype(np.float32))
    np.save(os.path.join(ins, "img.npy"), rng.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))
    outs = {}
    for tag, m in (("st", model), ("ckpt", ck), ("diffusers", dif)):
        o = os.path.join(w, "stage_" + tag)
        os.makedirs(o, exist_ok=True)
        t0 = time.time()
        for name, args in (("clip", ["clip", "--tokens-npy", os.path.join(ins, "tok.npy")]),
                           ("unet", ["unet", "--latent", os.path.join(ins, "lat.npy"), "--timestep", "981",
                                     "--context", os.path.join(ins, "ctx.npy")]),
                           ("dec", ["vae-decode", "--latent", os.path.join(ins, "lat.npy")]),
                           ("enc", ["vae-encode", "--image", os.path.join(ins, "img.npy")])):
            run([sdvk, "stage"] + args + ["--backend", "cpu", "-m", m, "-o", os.path.join(o, name + ".npy")])
        outs[tag] = o
        print("stages on %s: %.1f s" % (tag, time.time() - t0))
    for tag in ("ckpt", "diffusers"):
        for name in ("clip", "unet", "dec", "enc"):
            same = filecmp.cmp(os.path.join(outs["st"], name + ".npy"), os.path.join(outs[tag], name + ".npy"),
                               shallow=False)
            check(same, "stage %s: %s output byte-identical to the .safetensors one" % (name, tag))


def diffusers_merge(model, loras, sd32, meta):
    """diffusers' merged weights {LDM key: float32 array} for [(file, weight)]."""
    import torch
    import transformers.integrations.peft as tip
    # transformers insists on peft >= 0.22 for text-encoder adapters; the
    # newest peft on PyPI here is 0.21.2, whose API it uses is the same.
    tip.check_peft_version = lambda *a, **k: None
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    # The models take these tensors over (no copy) and fuse_lora writes into
    # them: give each case its own copies.
    sd32 = {k: t.clone() for k, t in sd32.items()}
    unet, vae, te = mv.build_diffusers(sd32, meta)
    ids = {}
    for prefix, model_ in (("unet", unet), ("te", te)):
        for name, m in model_.named_modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                ids[id(m)] = m.weight.data_ptr()
    by_ptr = {t.data_ptr(): k for k, t in sd32.items()}
    key_of = {mid: by_ptr[p] for mid, p in ids.items() if p in by_ptr}
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=None, unet=unet,
                                   scheduler=DDIMScheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    names = []
    for i, (f, w) in enumerate(loras):
        n = "l%d" % i
        pipe.load_lora_weights(f, adapter_name=n)
        names.append(n)
    pipe.set_adapters(names, adapter_weights=[w for _, w in loras])
    pipe.fuse_lora(components=["unet", "text_encoder"], lora_scale=1.0, adapter_names=names)
    out = {}
    for model_ in (pipe.unet, pipe.text_encoder):
        for name, m in model_.named_modules():
            if hasattr(m, "base_layer") and id(m.base_layer) in key_of:
                out[key_of[id(m.base_layer)]] = m.base_layer.weight.detach().float().numpy().copy()
    return out


def step_lora(a, model):
    import torch
    w = a.work
    ld = os.path.join(w, "lora")
    if not os.path.exists(os.path.join(ld, "lora_peft_r8.safetensors")):
        _, t = run([sys.executable, os.path.join(HERE, "make_lora.py"), model, "-o", ld])
        print("made LoRAs in %.0f s:" % t, ", ".join("%s %.1f MB" % (f, size_of(os.path.join(ld, f)) / 1e6)
                                                   for f in sorted(os.listdir(ld)) if f.startswith("lora_")))
    sd, meta = mv.load_torch(model)
    sd32 = {k: (t.float() if t.is_floating_point() else t) for k, t in sd.items()}
    del sd
    tl = os.path.join(a.build, "tests", "test_loaders")
    r8, r32, pf = (os.path.join(ld, f) for f in ("lora_kohya_r8.safetensors", "lora_kohya_r32.safetensors",
                                                  "lora_peft_r8.safetensors"))
    cases = [[(r8, 1.0)], [(r8, 0.5)], [(r8, -0.7)], [(r32, 1.0)], [(pf, 1.0)], [(pf, -0.7)],
             [(r8, 0.5), (r32, -0.7)], [(pf, 1.0), (r8, 0.5)]]
    for case in cases:
        tag = " + ".join("%s x %g" % (os.path.basename(f), wt) for f, wt in case)
        out = os.path.join(w, "merged.safetensors")
        t0 = time.time()
        run([tl, "merge", model, out] + ["%s:%g" % (f, wt) for f, wt in case])
        t_ours = time.time() - t0
        t0 = time.time()
        ref = diffusers_merge(model, case, sd32, meta)
        t_ref = time.time() - t0
        ours = st_io.SafeTensors(out)
        keys = set(ours.keys())
        check(keys == set(ref), "%s: %d weights merged by sdvk, %d by diffusers" % (tag, len(keys), len(ref)))
        worst, wk, num, den, dnum = 0.0, "", 0.0, 0.0, 0.0
        for k in sorted(keys & set(ref)):
            x, y = np.array(ours.raw(k), np.float64), ref[k].astype(np.float64)
            dnum += np.sum((y - sd32[k].numpy().astype(np.float64)) ** 2)
            e = np.linalg.norm(x - y) / np.linalg.norm(y)
            num += np.sum((x - y) ** 2)
            den += np.sum(y ** 2)
            if e > worst:
                worst, wk = e, k
        check(worst <= 1e-6 and dnum > 0,
              "%s: merged weights rel L2 worst %.2e (%s), overall %.2e; the LoRA moved them by %.2e "
              "(sdvk %.1f s, diffusers %.1f s)"
              % (tag, worst, wk, np.sqrt(num / den), np.sqrt(dnum / den), t_ours, t_ref))
        del ref, ours


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="/tmp/sdvk_loaders_full")
    ap.add_argument("--dtype", default="f16", choices=["f16", "f32"])
    ap.add_argument("--model")
    ap.add_argument("--only", default="forms,lora")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    model = a.model or os.path.join(a.work, "model_%s.safetensors" % a.dtype)
    if not os.path.exists(model):
        _, t = run(["/usr/bin/python3", os.path.join(HERE, "make_model.py"), "--config", "full", "--dtype", a.dtype,
                    "--seed", "11", "-o", model])
        print("made %s in %.0f s" % (model, t))
    print("model %s: %.2f GB, %d tensors" % (model, size_of(model) / 1e9, len(st_io.SafeTensors(model).keys())))
    steps = a.only.split(",")
    if "forms" in steps:
        step_forms(a, model)
    if "lora" in steps:
        step_lora(a, model)
    print("%d failures" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
