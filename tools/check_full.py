#!/usr/bin/python3
"""Acceptance run on the full SD v1.5 layout: the C stages against sd_ref.py.

    tools/check_full.py --sdvk build/sdvk [--only clip,unet32,...] [--dtypes f32,f16]
                        [--workdir /tmp/sdvk_full] [--backend B] [--threads N]
                        [--precision f32] [--sample-precision f16] [--validate] [--ref-only]

Generates random full-size checkpoints (tools/make_model.py --config full, not
committed; reused from --workdir when already there), makes deterministic
inputs, runs `sdvk stage ...` and the PyTorch reference on them, and prints the
relative L2 error ||c - ref|| / ||ref|| of each against its threshold, with
timings. Reference outputs are cached in the workdir (inputs are seeded), so
reruns only time the C side unless --fresh-ref. Exit status 1 when a check
fails or a command errors.

--validate runs every sdvk call with SDVK_VALIDATION=1 (the Khronos layer is
then required) and fails a check on any validation message in its output.
--sample-precision runs the sample group at another precision; with f16 its
limit is the f16 one (2e-2), as Vulkan's acceptance asks.

Groups (--only): clip, unet32, unet64 (latent 32x32 / 64x64, t = 981 and 1,
batch 1 and CFG batch 2), vae (decode 32x32 latent -> 256x256, encode back),
vae512 (decode/encode at 512x512), sample (4-step CFG 7.5 DDPM at 32x32 with
given step noise), sample16 (the same at 16x16: 4x cheaper, for slow devices
such as lavapipe). Default: all but unet64, vae512 and sample16.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model  # noqa: E402
import sd_ref as R  # noqa: E402
import st_io  # noqa: E402

THRESH = {"clip": 1e-4, "unet": 1e-3, "vae": 1e-3, "sample": 2e-3}
THRESH_F16 = {"sample": 2e-2}  # 16-bit activations: the f16 acceptance limit
ALL_GROUPS = ["clip", "unet32", "unet64", "vae", "vae512", "sample", "sample16"]
DEFAULT_GROUPS = ["clip", "unet32", "vae", "sample"]
SEED = 7
PROMPT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]  # "a photo of a cat"
EMPTY_IDS = [49406, 49407]


def log(*a):
    print(*a, flush=True)


def make_inputs(d):
    """Deterministic inputs (the CLIP output used as context comes later)."""
    rng = np.random.default_rng(SEED)
    inp = {}

    def put(name, arr):
        p = os.path.join(d, name + ".npy")
        np.save(p, arr)
        inp[name] = p

    pad = lambda ids: ids + [R.PAD_ID] * (77 - len(ids))  # noqa: E731
    put("tokens", np.array([pad(PROMPT_IDS), pad(EMPTY_IDS)], np.int32))
    for s in (32, 64):
        put("lat%d_b1" % s, rng.standard_normal((1, 4, s, s)).astype(np.float32))
        put("lat%d_b2" % s, rng.standard_normal((2, 4, s, s)).astype(np.float32))
    for s in (32, 64):
        put("vaelat%d" % s, rng.standard_normal((1, 4, s, s)).astype(np.float32))
        H = 8 * s
        yy, xx = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, H), indexing="ij")
        img = np.stack([np.sin(5 * xx + 1), np.cos(4 * yy), xx * yy])[None]
        img = np.clip(img + 0.1 * rng.standard_normal(img.shape), -1, 1).astype(np.float32)
        put("img%d" % H, img)
    put("x0", rng.standard_normal((1, 4, 32, 32)).astype(np.float32))
    put("noise", rng.standard_normal((3, 1, 4, 32, 32)).astype(np.float32))
    # drawn last so the inputs above stay as they were
    put("x0_16", rng.standard_normal((1, 4, 16, 16)).astype(np.float32))
    put("noise16", rng.standard_normal((3, 1, 4, 16, 16)).astype(np.float32))
    return inp


def tests_for(groups, inp, d):
    """(name, kind, stage, c_args, ref_fn(model)) per check."""
    T = []
    ctx = os.path.join(d, "context.npy")  # reference CLIP output of the dtype's model
    ctx1 = os.path.join(d, "context_b1.npy")
    if "clip" in groups:
        T.append(("clip", "clip", "clip", ["--tokens-npy", inp["tokens"]],
                  lambda m: R.clip_forward(m, np.load(inp["tokens"]))))
    for s in (32, 64):
        if "unet%d" % s not in groups:
            continue
        for t in (981, 1):
            for b, c in ((1, ctx1), (2, ctx)):
                lat = inp["lat%d_b%d" % (s, b)]
                T.append(("unet%d_t%d_b%d" % (s, t, b), "unet", "unet",
                          ["--latent", lat, "--timestep", str(t), "--context", c],
                          (lambda m, lat=lat, t=t, c=c: R.unet_forward(m, np.load(lat), t, np.load(c)))))
    for g, s in (("vae", 32), ("vae512", 64)):
        if g not in groups:
            continue
        z, img = inp["vaelat%d" % s], inp["img%d" % (8 * s)]
        T.append(("vae_decode%d" % (8 * s), "vae", "vae-decode", ["--latent", z],
                  lambda m, z=z: R.vae_decode(m, np.load(z))))
        T.append(("vae_encode%d" % (8 * s), "vae", "vae-encode", ["--image", img],
                  lambda m, img=img: R.vae_encode(m, np.load(img))))
    for g, x0, noise in (("sample", "x0", "noise"), ("sample16", "x0_16", "noise16")):
        if g not in groups:
            continue
        T.append(("%s_4step_cfg7.5" % g, "sample", "sample",
                  ["--context", ctx, "--latent", inp[x0], "--steps", "4", "--cfg", "7.5",
                   "--step-noise", inp[noise]],
                  lambda m, x0=x0, noise=noise: R.sample(m, np.load(ctx), np.load(inp[x0]), 4, 7.5,
                                                         np.load(inp[noise]),
                                                         log=lambda s: log("    ref " + s))))
    return T


def ensure_model(d, dtype, regen):
    p = os.path.join(d, "sd15_random_%s.safetensors" % dtype)
    if os.path.exists(p) and not regen:
        return p
    t0 = time.time()
    items, meta = make_model.model_items("full", dtype, 0)
    st_io.write(p + ".part", items, meta)
    os.replace(p + ".part", p)
    log("generated %s (%.2f GB) in %.1f s" % (p, os.path.getsize(p) / 1e9, time.time() - t0))
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sdvk", default="build/sdvk", help="path of the sdvk binary")
    ap.add_argument("--only", default=",".join(DEFAULT_GROUPS), help="groups: " + ",".join(ALL_GROUPS))
    ap.add_argument("--dtypes", default="f32,f16")
    ap.add_argument("--workdir", default="/tmp/sdvk_full")
    ap.add_argument("--backend", help="passed to sdvk as --backend")
    ap.add_argument("--threads", type=int, help="passed to sdvk as --threads")
    ap.add_argument("--precision", default="f32",
                    help="passed to sdvk as --precision (default f32: the thresholds are for f32 compute)")
    ap.add_argument("--sample-precision", help="--precision for the sample group only")
    ap.add_argument("--validate", action="store_true",
                    help="Vulkan validation layer on; any validation message fails the check")
    ap.add_argument("--sdvk-args", default="", help="extra arguments for every sdvk stage call")
    ap.add_argument("--ref-threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--ref-only", action="store_true", help="run and time the reference only")
    ap.add_argument("--fresh-ref", action="store_true", help="recompute cached reference outputs")
    ap.add_argument("--regen", action="store_true", help="regenerate the random models")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per sdvk call")
    a = ap.parse_args()

    groups = [g for g in a.only.split(",") if g]
    bad = [g for g in groups if g not in ALL_GROUPS]
    if bad:
        ap.error("unknown group(s) %s; have %s" % (bad, ALL_GROUPS))
    if not a.ref_only and not os.access(a.sdvk, os.X_OK):
        ap.error("sdvk binary %s not found or not executable" % a.sdvk)
    if a.ref_threads:
        torch.set_num_threads(a.ref_threads)
    os.makedirs(a.workdir, exist_ok=True)
    inp = make_inputs(a.workdir)
    extra = a.sdvk_args.split()
    if a.backend:
        extra += ["--backend", a.backend]
    if a.threads:
        extra += ["--threads", str(a.threads)]
    env = dict(os.environ)
    if a.validate:
        env["SDVK_VALIDATION"] = "1"

    results = []  # (dtype, name, err, thr, ref_s, c_s, ok)
    for dtype in a.dtypes.split(","):
        mpath = ensure_model(a.workdir, dtype, a.regen)
        d = os.path.join(a.workdir, dtype)
        os.makedirs(d, exist_ok=True)
        m = R.Model(mpath)
        # The UNet and sampler take the reference CLIP output as context, so
        # every stage is checked on its own.
        ctxp = os.path.join(d, "context.npy")
        if not os.path.exists(ctxp) or a.fresh_ref:
            with torch.no_grad():
                c = R.clip_forward(m, np.load(inp["tokens"])).numpy()
            np.save(ctxp, c)
            np.save(os.path.join(d, "context_b1.npy"), c[:1])
        for name, kind, stage, cargs, ref_fn in tests_for(groups, inp, d):
            refp = os.path.join(d, "ref_%s.npy" % name)
            ref_s = float("nan")
            if not os.path.exists(refp) or a.fresh_ref:
                t0 = time.time()
                with torch.no_grad():
                    r = np.asarray(ref_fn(m), np.float32)
                ref_s = time.time() - t0
                if not np.isfinite(r).all():
                    log("%s %s: reference output not finite" % (dtype, name))
                    results.append((dtype, name, float("nan"), THRESH[kind], ref_s, float("nan"), False))
                    continue
                np.save(refp, r)
                log("  ref %-18s %-4s %7.2f s  shape %s std %.3f" % (name, dtype, ref_s, list(r.shape), r.std()))
            if a.ref_only:
                results.append((dtype, name, float("nan"), THRESH[kind], ref_s, float("nan"), True))
                continue
            outp = os.path.join(d, "c_%s.npy" % name)
            if os.path.exists(outp):
                os.remove(outp)
            prec = a.sample_precision if (kind == "sample" and a.sample_precision) else a.precision
            thr = THRESH_F16.get(kind, THRESH[kind]) if prec == "f16" else THRESH[kind]
            cmd = [a.sdvk, "stage", stage, "-m", mpath] + cargs + ["-o", outp] + extra
            if prec:
                cmd += ["--precision", prec]
            t0 = time.time()
            try:
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=a.timeout,
                                   env=env)
                rc, txt = p.returncode, p.stdout.decode(errors="replace")
            except subprocess.TimeoutExpired:
                rc, txt = -1, "timeout after %.0f s" % a.timeout
            c_s = time.time() - t0
            if rc != 0 or not os.path.exists(outp):
                log("%s %s: sdvk failed (rc %d): %s\n  %s" % (dtype, name, rc, " ".join(cmd), txt.strip()[-2000:]))
                results.append((dtype, name, float("nan"), THRESH[kind], ref_s, c_s, False))
                continue
            try:
                err = R.rel_l2(np.load(outp), np.load(refp))
            except ValueError as e:
                log("%s %s: %s" % (dtype, name, e))
                err = float("nan")
            nval = sum(1 for ln in txt.splitlines() if "validation error" in ln or "validation warning" in ln)
            ok = bool(err <= thr) and nval == 0
            results.append((dtype, name, err, thr, ref_s, c_s, ok))
            log("  %-4s %-18s rel_l2 %.3e (thr %.0e) %s  sdvk %.2f s%s%s" % (
                dtype, name, err, thr, "ok" if ok else "FAIL", c_s,
                "  [precision %s]" % prec if prec else "",
                "  validation: %d message(s)" % nval if a.validate else ""))
            if nval:
                log("\n".join(["    " + ln for ln in txt.splitlines() if "validation" in ln][:20]))
        del m

    log("\n%-5s %-18s %10s %7s %9s %9s  %s" % ("dtype", "check", "rel_l2", "thr", "ref_s", "sdvk_s", "result"))
    for dt, name, err, thr, rs, cs, ok in results:
        log("%-5s %-18s %10.3e %7.0e %9.2f %9.2f  %s" % (
            dt, name, err, thr, rs, cs, "-" if a.ref_only else ("ok" if ok else "FAIL")))
    nfail = sum(1 for r in results if not r[6])
    log("%d checks, %d failed" % (len(results), nfail))
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
