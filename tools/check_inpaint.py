#!/usr/bin/env python3
"""img2img and inpainting against diffusers' own pipelines.

    tools/.venv/bin/python tools/check_inpaint.py --sdvk build/sdvk -m MODEL [--inpaint-model MODEL9]
        [--size 256] [--steps 4] [--tol 2e-3] [--backend cpu] [--precision f16] [--goldens DIR]

For each case the same random context (prompt_embeds), start noise, init
picture and mask go to
  - diffusers: StableDiffusionImg2ImgPipeline (img2img) or
    StableDiffusionInpaintPipeline (masked img2img with a 4-channel UNet,
    where the kept region is re-noised every step; conditioning of a
    9-channel inpainting UNet), built from MODEL's weights with diffusers'
    own single-file conversion (tools/make_variants.py), DDIM scheduler with
    the SD v1.5 config, output_type="latent";
  - `sdvk stage sample --init-img ... --mask ...` (sampler ddim),
and the final latents are compared (relative L2, limit --tol).
Two things are pinned so both sides are deterministic: the pipelines' noise
comes from randn_tensor (patched to return ours) and the VAE encoder gives
its posterior mean (diffusers' retrieve_latents with sample_mode "argmax";
sdvk always uses the mean).
--goldens DIR writes the inputs and diffusers' latents for the tiny-model
ctest (tests/editing.cmake).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_variants  # noqa: E402


def load_components(path):
    sd, meta = make_variants.load_torch(path)
    unet, vae, te = make_variants.build_diffusers(sd, meta)
    return unet.float().eval(), vae.float().eval()


def pictures(size, seed):
    """A smooth init picture and a mask (white right half + a box), uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.5 + 0.4 * np.sin(6 * x + rng.uniform(0, 6)),
                    0.5 + 0.4 * np.cos(5 * y + rng.uniform(0, 6)),
                    0.5 + 0.3 * np.sin(4 * (x + y))], -1)
    img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[:, size // 2:] = 255
    mask[size // 8: size // 4, size // 8: size // 3] = 255
    return img, mask


def write_png(path, arr):
    from PIL import Image
    Image.fromarray(arr).save(path)


def run_diffusers(kind, unet, vae, ctx, noise0, img, mask, strength, steps, cfg):
    from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline
    import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img as m_i2i
    import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint as m_inp
    from PIL import Image
    sch = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                        clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    common = dict(vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=sch,
                  safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    mods = (m_i2i, m_inp)
    saved = [(m, m.randn_tensor, m.retrieve_latents) for m in mods]
    for m in mods:
        orig = m.retrieve_latents
        m.randn_tensor = lambda *a, **k: noise0.clone()
        m.retrieve_latents = lambda enc, generator=None, sample_mode="sample", _o=orig: \
            _o(enc, generator=generator, sample_mode="argmax")
    try:
        kw = dict(prompt_embeds=ctx[:1], negative_prompt_embeds=ctx[1:], image=Image.fromarray(img),
                  strength=strength, num_inference_steps=steps, guidance_scale=cfg,
                  output_type="latent", eta=0.0)
        with torch.no_grad():
            if kind == "img2img":
                pipe = StableDiffusionImg2ImgPipeline(**common)
                out = pipe(**kw).images
            else:
                pipe = StableDiffusionInpaintPipeline(**common)
                out = pipe(mask_image=Image.fromarray(mask), height=img.shape[0], width=img.shape[1],
                           **kw).images
    finally:
        for m, r, l in saved:
            m.randn_tensor, m.retrieve_latents = r, l
    # the pipelines return latents / scaling_factor? no: output_type latent is the raw latent
    return out


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdvk")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--inpaint-model", help="a 9-channel inpainting checkpoint (make_model.py --inpaint)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--cfg", type=float, default=7.5)
    ap.add_argument("--tol", type=float, default=2e-3)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--precision")
    ap.add_argument("--goldens")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    work = a.goldens or tempfile.mkdtemp(prefix="sdvk_inpaint_")
    os.makedirs(work, exist_ok=True)
    img, mask = pictures(a.size, a.seed)
    write_png(os.path.join(work, "init.png"), img)
    write_png(os.path.join(work, "mask.png"), mask)
    models = [("plain", a.model)] + ([("inpaint9", a.inpaint_model)] if a.inpaint_model else [])
    g = torch.Generator().manual_seed(a.seed)
    manifest, fails = [], 0
    for tag_m, path in models:
        unet, vae = load_components(path)
        ctx = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
        lat = a.size // 8
        noise0 = torch.randn(1, 4, lat, lat, generator=g)
        np.save(os.path.join(work, tag_m + ".context.npy"), ctx.numpy())
        np.save(os.path.join(work, tag_m + ".noise0.npy"), noise0.numpy())
        cases = [("img2img", 0.75)] if tag_m == "plain" else []
        cases += [("masked", 0.75), ("masked", 1.0)]
        for kind, strength in cases:
            t0 = time.time()
            ref = run_diffusers(kind, unet, vae, ctx, noise0, img, mask, strength, a.steps, a.cfg)
            tag = "%s_%s_%g" % (tag_m, kind, strength)
            np.save(os.path.join(work, tag + ".out.npy"), ref.numpy())
            manifest.append("%s %s %s %g %d %g" % (tag, tag_m, kind, strength, a.steps, a.cfg))
            line = "%-24s diffusers %.1f s" % (tag, time.time() - t0)
            if a.sdvk:
                outp = os.path.join(work, tag + ".sdvk.npy")
                cmd = [a.sdvk, "stage", "sample", "--backend", a.backend, "-m", path,
                       "--context", os.path.join(work, tag_m + ".context.npy"),
                       "--latent", os.path.join(work, tag_m + ".noise0.npy"),
                       "--steps", str(a.steps), "--cfg", str(a.cfg), "--sampler", "ddim",
                       "--scheduler", "discrete", "--eta", "0", "--init-img", os.path.join(work, "init.png"),
                       "--strength", str(strength), "-o", outp]
                if kind == "masked":
                    cmd += ["--mask", os.path.join(work, "mask.png"), "--mask-blur", "0"]
                if a.precision:
                    cmd += ["--precision", a.precision]
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                if r.returncode:
                    print(line + "  sdvk FAILED:\n" + r.stdout)
                    fails += 1
                    continue
                e = rel_l2(np.load(outp), ref.numpy())
                ok = e <= a.tol
                fails += not ok
                line += ", sdvk: rel L2 %.2e %s" % (e, "ok" if ok else "FAIL (tol %g)" % a.tol)
            print(line, flush=True)
    with open(os.path.join(work, "manifest.txt"), "w") as f:
        f.write("# tag model kind strength steps cfg (inputs: init.png mask.png <model>.context.npy "
                "<model>.noise0.npy)\n" + "\n".join(manifest) + "\n")
    print("%d case(s), %d failed; files in %s" % (len(manifest), fails, work))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
