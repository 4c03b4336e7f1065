#!/usr/bin/python3
"""Tiny SD-shaped model and golden tensors for the C tests.

    make_fixtures.py [-o tests/data/tiny]

Writes model.safetensors (tools/make_model.py --config tiny --dtype f16
--seed 1234) and, from that file's f16 weights upcast to float32, the
stage inputs and reference outputs of tools/sd_ref.py as .npy (float32 NCHW
unless noted). Deterministic: running it again gives the same bytes.
README.md in the output folder lists every file.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model  # noqa: E402
import sd_ref as R  # noqa: E402
import st_io  # noqa: E402

MODEL_SEED = 1234
INPUT_SEED = 20240601
STEPS = 4
CFG = 7.5

# "a photo of a cat" as the CLIP tokenizer gives it, and the empty prompt.
PROMPT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]
EMPTY_IDS = [49406, 49407]


def padded(ids):
    return ids + [R.PAD_ID] * (R.CTX_LEN - len(ids))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("-o", "--out", default=os.path.join(here, "..", "tests", "data", "tiny"))
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    # plain torch kernels (no oneDNN): slower but the same bytes on any x86 CPU
    R._USE_MKLDNN = False

    mpath = os.path.join(out, "model.safetensors")
    items, meta = make_model.model_items("tiny", "f16", MODEL_SEED)
    st_io.write(mpath, items, meta)
    m = R.Model(mpath)
    rng = np.random.default_rng(INPUT_SEED)
    rows = []  # README table: (file, shape, dtype, what)

    def save(name, arr, what, dtype=np.float32):
        arr = np.ascontiguousarray(np.asarray(arr, dtype=dtype))
        if dtype == np.float32 and not np.isfinite(arr).all():
            raise SystemExit("non-finite values in " + name)
        np.save(os.path.join(out, name), arr)
        rows.append((name, "[" + ",".join(str(s) for s in arr.shape) + "]",
                     np.dtype(dtype).name, what))
        return arr

    def randn(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    with torch.no_grad():
        # CLIP
        tokens = save("clip_tokens.npy", [padded(PROMPT_IDS), padded(EMPTY_IDS)],
                      'token ids: row 0 "a photo of a cat", row 1 "" (padded with 49407)', np.int32)
        ctx = save("clip_out.npy", R.clip_forward(m, tokens),
                   "sd_ref clip of clip_tokens.npy = context rows [cond; uncond]")

        # UNet: contexts are the CLIP output rows
        lat1 = save("unet_latent_b1.npy", randn(1, 4, 8, 8), "N(0,1) latent")
        lat2 = save("unet_latent_b2.npy", randn(2, 4, 8, 8), "N(0,1) latent")
        ctx1 = save("unet_context_b1.npy", ctx[:1], "clip_out.npy row 0")
        ctx2 = save("unet_context_b2.npy", ctx, "clip_out.npy (both rows)")
        for t in (981, 1):
            save("unet_b1_t%d.npy" % t, R.unet_forward(m, lat1, t, ctx1),
                 "sd_ref unet latent_b1, context_b1, t=%d" % t)
            save("unet_b2_t%d.npy" % t, R.unet_forward(m, lat2, t, ctx2),
                 "sd_ref unet latent_b2, context_b2, t=%d" % t)
        save("unet_b2_ctx1_t500.npy", R.unet_forward(m, lat2, 500, ctx1),
             "sd_ref unet latent_b2, context_b1 (broadcast), t=500")
        latr = save("unet_latent_rect.npy", randn(1, 4, 6, 10), "N(0,1) latent, non-square")
        save("unet_rect_t500.npy", R.unet_forward(m, latr, 500, ctx1),
             "sd_ref unet latent_rect, context_b1, t=500")

        # VAE
        zd = save("vae_decode_in.npy", randn(1, 4, 8, 8), "N(0,1) scaled latent")
        save("vae_decode_out.npy", R.vae_decode(m, zd), "sd_ref vae-decode of vae_decode_in (raw, not clamped)")
        zr = save("vae_decode_rect_in.npy", randn(1, 4, 4, 6), "N(0,1) scaled latent, non-square")
        save("vae_decode_rect_out.npy", R.vae_decode(m, zr), "sd_ref vae-decode of vae_decode_rect_in")
        yy, xx = np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64), indexing="ij")
        img = np.stack([np.sin(3 * xx + 1), np.cos(2 * yy), xx * yy])[None]
        img = np.clip(img + 0.2 * rng.standard_normal(img.shape), -1, 1).astype(np.float32)
        im = save("vae_encode_in.npy", img, "smooth pattern + noise in [-1,1]")
        save("vae_encode_out.npy", R.vae_encode(m, im), "sd_ref vae-encode (posterior mean * 0.18215)")

        # DDPM, 4 steps: t = 750, 500, 250, 0 -> 3 noisy steps
        x0 = save("sample_x0.npy", randn(1, 4, 8, 8), "initial N(0,1) latent")
        noise = save("sample_noise.npy", randn(STEPS - 1, 1, 4, 8, 8),
                     "step noise [K=3 steps with t>0, B, 4, h, w]")
        save("sample_context.npy", ctx, "clip_out.npy: rows [cond; uncond]")
        save("sample_out.npy", R.sample(m, ctx, x0, STEPS, CFG, noise),
             "sd_ref sample --steps 4 --cfg 7.5 (final latent)")
        save("sample_cfg1_out.npy", R.sample(m, ctx[:1], x0, STEPS, 1.0, noise),
             "sd_ref sample --steps 4 --cfg 1 with context unet_context_b1 (no CFG batch)")

    write_readme(out, rows)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("%s: %d files, %.2f MB" % (out, len(os.listdir(out)), total / 1e6))


def write_readme(out, rows):
    L = []
    L.append("# Tiny SD v1 test model and goldens\n")
    L.append("Generated by `/usr/bin/python3 tools/make_fixtures.py` (do not edit by hand;")
    L.append("rerun it, it is deterministic). Goldens come from `tools/sd_ref.py` (PyTorch,")
    L.append("float32) run on the f16 weights of `model.safetensors` upcast to float32.\n")
    c = make_model.CONFIGS["tiny"]
    L.append("## model.safetensors\n")
    L.append("`tools/make_model.py --config tiny --dtype f16 --seed %d` — the real SD v1.x" % MODEL_SEED)
    L.append("single-file key layout (`cond_stage_model.transformer.text_model.*`,")
    L.append("`model.diffusion_model.*`, `first_stage_model.*`) plus extras a loader must skip")
    L.append("(`alphas_cumprod` F32 [1000], `model_ema.decay` F32 [], CLIP")
    L.append("`embeddings.position_ids` I64 [1,77]). Metadata `sdvk.clip.num_heads` = %s.\n"
             % c["clip"]["heads"])
    L.append("- CLIP: width %d, %d layers, vocab %d, FFN %d, %d heads (head dim %d)."
             % (c["clip"]["width"], c["clip"]["layers"], c["clip"]["vocab"], c["clip"]["ffn"],
                c["clip"]["heads"], c["clip"]["width"] // c["clip"]["heads"]))
    u = c["unet"]
    L.append("- UNet: model channels %d, mult %s, %d res block(s) per level, attention at level(s) %s,"
             % (u["ch"], u["mult"], u["nres"], u["attn"]))
    L.append("  context dim %d, 8 heads (default); GroupNorm 32 groups." % u["ctx"])
    v = c["vae"]
    L.append("- VAE: channels %d, mult %s, %d res block(s) per level (decoder %d), z %d, factor 8."
             % (v["ch"], v["mult"], v["nres"], v["nres"] + 1, v["z"]))
    L.append("\nThe DDPM fixtures use the original SD v1 schedule (see `tools/sd_ref.py`),")
    L.append("%d steps (t = %s), cfg %.1f; step noise k is used at the k-th step with t > 0.\n"
             % (STEPS, R.ddpm_timesteps(STEPS), CFG))
    L.append("## Files\n")
    L.append("| file | shape | dtype | content |")
    L.append("|---|---|---|---|")
    for r in rows:
        L.append("| %s | %s | %s | %s |" % r)
    L.append("\nEquivalent CLI for one golden, e.g.:\n")
    L.append("    tools/sd_ref.py unet -m tests/data/tiny/model.safetensors \\")
    L.append("        --latent tests/data/tiny/unet_latent_b2.npy --timestep 981 \\")
    L.append("        --context tests/data/tiny/unet_context_b2.npy -o /tmp/u.npy")
    L.append("    tools/sd_ref.py compare /tmp/u.npy tests/data/tiny/unet_b2_t981.npy")
    L.append("    tools/sd_ref.py sample -m tests/data/tiny/model.safetensors \\")
    L.append("        --context tests/data/tiny/sample_context.npy --latent tests/data/tiny/sample_x0.npy \\")
    L.append("        --steps 4 --cfg 7.5 --step-noise tests/data/tiny/sample_noise.npy -o /tmp/s.npy")
    L.append("\nSuggested tolerances (relative L2 vs the golden): fp32 compute 1e-4 (CLIP),")
    L.append("1e-3 (UNet, VAE), 2e-3 (sample).")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
