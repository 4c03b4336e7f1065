#!/usr/bin/env python3
"""The UNet and the VAE at latent sizes that are not multiples of 8, against
diffusers' UNet2DConditionModel and AutoencoderKL with the same weights
(diffusers' upsample_size: each up block goes to its skip connection's size).

    tools/.venv/bin/python tools/check_odd_sizes.py --sdvk build/sdvk -m MODEL
        [--sizes 40x40,45x80] [--tol 1e-3] [--backend cpu] [--goldens DIR]

For each latent size h x w: one UNet evaluation (batch 1, random latent and
context, t = 500), one VAE decode of a random latent, one VAE encode of a
random 8h x 8w picture; `sdvk stage unet|vae-decode|vae-encode` against
diffusers, relative L2 (limit --tol). --goldens DIR keeps inputs and
diffusers' outputs for the tiny-model ctest (tests/editing.cmake).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_variants  # noqa: E402


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdvk")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--sizes", default="40x40,45x80")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--precision")
    ap.add_argument("--goldens")
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    work = a.goldens or tempfile.mkdtemp(prefix="sdvk_odd_")
    os.makedirs(work, exist_ok=True)
    sd, meta = make_variants.load_torch(a.model)
    unet, vae, _ = make_variants.build_diffusers(sd, meta)
    unet, vae = unet.float().eval(), vae.float().eval()
    sf = vae.config.scaling_factor
    g = torch.Generator().manual_seed(a.seed)
    fails, manifest = 0, []
    for size in a.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        lat = torch.randn(1, 4, h, w, generator=g)
        ctx = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g)
        img = torch.rand(1, 3, 8 * h, 8 * w, generator=g) * 2 - 1
        with torch.no_grad():
            eps = unet(lat, torch.tensor([500.0]), encoder_hidden_states=ctx).sample
            dec = vae.decode(lat / sf).sample
            enc = vae.encode(img).latent_dist.mean * sf
        tag = "%dx%d" % (h, w)
        for name, arr in (("latent", lat), ("context", ctx), ("image", img), ("unet", eps),
                          ("decode", dec), ("encode", enc)):
            np.save(os.path.join(work, "%s.%s.npy" % (tag, name)), arr.numpy())
        manifest.append(tag)
        if not a.sdvk:
            print(tag, "goldens written")
            continue
        base = [a.sdvk, "stage", None, "--backend", a.backend, "-m", a.model]
        if a.precision:
            base += ["--precision", a.precision]
        runs = [("unet", ["--latent", "latent", "--timestep", "500", "--context", "context"]),
                ("vae-decode", ["--latent", "latent"]), ("vae-encode", ["--image", "image"])]
        for stage, args in runs:
            cmd = list(base)
            cmd[2] = stage
            for i, x in enumerate(args):
                cmd.append(os.path.join(work, "%s.%s.npy" % (tag, x)) if i % 2 and x != "500" else x)
            outp = os.path.join(work, "%s.%s.sdvk.npy" % (tag, stage))
            cmd += ["-o", outp]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            ref = {"unet": eps, "vae-decode": dec, "vae-encode": enc}[stage]
            if r.returncode:
                print("%s %-10s sdvk FAILED:\n%s" % (tag, stage, r.stdout))
                fails += 1
                continue
            e = rel_l2(np.load(outp), ref.numpy())
            ok = e <= a.tol
            fails += not ok
            print("%-7s %-10s rel L2 %.2e %s" % (tag, stage, e, "ok" if ok else "FAIL (tol %g)" % a.tol),
                  flush=True)
    with open(os.path.join(work, "manifest.txt"), "w") as f:
        f.write("# latent sizes; per size: latent context image (inputs), unet decode encode (diffusers)\n")
        f.write("\n".join(manifest) + "\n")
    print("%d failed" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
