#!/usr/bin/env python3
"""PyTorch / diffusers side of bench/device_check.sh: the same random SD v1.5
single-file checkpoint loaded into diffusers' UNet2DConditionModel and
AutoencoderKL (offline: the configs are built here from the v1 inference
config, the keys converted by diffusers' own single-file converters).

    device_torch.py unet --model CKPT --latent X.npy --timestep T --context C.npy
                         [--dtype f32|f16] [--device cuda|cpu] -o OUT.npy
        one UNet eval (eps, NCHW), fp32 with TF32 off: the reference
    device_torch.py gen --model CKPT [--size 512] [--steps 20] [--cfg 7.5]
                        [--device cuda] [--modes eager,graph] [--json OUT]
        a txt2img-shaped run in fp16 + SDPA: `steps` CFG UNet evals (batch 2)
        with DDPM updates, then the VAE decode, timed eagerly and with the
        UNet call captured in a CUDA graph; prints one JSON line per mode.
        The text encoder is not run: the context is random (CLIP is ~1% of
        an image on a GPU); sdvk's times include it.
"""
import argparse
import json
import sys
import time

import numpy as np
import torch

# SD v1 (v1-inference.yaml), as the converters read it
V1_CONFIG = {
    "model": {
        "params": {
            "linear_start": 0.00085, "linear_end": 0.012, "timesteps": 1000, "image_size": 64,
            "channels": 4, "scale_factor": 0.18215, "conditioning_key": "crossattn",
            "unet_config": {"params": {
                "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320,
                "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
                "num_heads": 8, "use_spatial_transformer": True, "transformer_depth": 1,
                "context_dim": 768, "use_checkpoint": False, "legacy": False}},
            "first_stage_config": {"params": {
                "embed_dim": 4, "ddconfig": {
                    "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
                    "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [],
                    "dropout": 0.0}}},
            "cond_stage_config": {"target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder"},
        }
    }
}


def load(path, device, dtype, vae=False):
    """(unet, vae or None) on device in dtype."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders import single_file_utils as su
    from safetensors.torch import load_file

    ckpt = load_file(path)
    ucfg = su.create_unet_diffusers_config_from_ldm(V1_CONFIG, ckpt)
    unet = UNet2DConditionModel(**ucfg)
    sd = su.convert_ldm_unet_checkpoint(ckpt, ucfg)
    missing, unexpected = unet.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit("unet conversion: missing %s unexpected %s" % (missing[:5], unexpected[:5]))
    unet = unet.to(device=device, dtype=dtype).eval()
    v = None
    if vae:
        vcfg = su.create_vae_diffusers_config_from_ldm(V1_CONFIG, ckpt)
        v = AutoencoderKL(**vcfg)
        vsd = su.convert_ldm_vae_checkpoint(ckpt, vcfg)
        missing, unexpected = v.load_state_dict(vsd, strict=False)
        if missing or unexpected:
            raise SystemExit("vae conversion: missing %s unexpected %s" % (missing[:5], unexpected[:5]))
        v = v.to(device=device, dtype=dtype).eval()
    del ckpt
    return unet, v


def cmd_unet(a):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dt = torch.float16 if a.dtype == "f16" else torch.float32
    t0 = time.time()
    unet, _ = load(a.model, a.device, dt)
    x = torch.from_numpy(np.load(a.latent)).to(a.device, dt)
    c = torch.from_numpy(np.load(a.context)).to(a.device, dt)
    if c.shape[0] != x.shape[0]:
        c = c.expand(x.shape[0], -1, -1)
    t = torch.full((x.shape[0],), a.timestep, device=a.device)
    with torch.no_grad():
        out = unet(x, t, encoder_hidden_states=c).sample.float().cpu().numpy()
    if not np.isfinite(out).all():
        print("device_torch: non-finite UNet output", file=sys.stderr)
        return 1
    np.save(a.output, out.astype(np.float32))
    print("unet %s %s %s on %s: %.1f s (with loading)" % (a.dtype, a.output, list(out.shape), a.device,
                                                       time.time() - t0), file=sys.stderr)
    return 0


def ddpm_coefs(steps):
    """DDPM (SD v1 schedule) at `steps` evenly spaced timesteps, as sdvk's
    sampler: x_{t-1} = c0 x + c1 eps + sigma noise."""
    b = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    ac = np.cumprod(1.0 - b)
    ts = list(range(999, -1, -1000 // steps))[:steps]
    out = []
    for i, t in enumerate(ts):
        tp = ts[i + 1] if i + 1 < len(ts) else -1
        a_t, a_p = ac[t], (ac[tp] if tp >= 0 else 1.0)
        beta = 1 - a_t / a_p
        c_x0 = np.sqrt(a_p) * beta / (1 - a_t)
        c_xt = np.sqrt(1 - beta) * (1 - a_p) / (1 - a_t)
        sig = np.sqrt(beta * (1 - a_p) / (1 - a_t)) if tp >= 0 else 0.0
        out.append((t, a_t, c_x0, c_xt, sig))
    return out


def cmd_gen(a):
    dev = a.device
    dt = torch.float16 if dev != "cpu" else torch.float32
    t0 = time.time()
    unet, vae = load(a.model, dev, dt, vae=True)
    t_load = time.time() - t0
    h = a.size // 8
    g = torch.Generator(device="cpu").manual_seed(0)
    ctx = torch.randn(2, 77, 768, generator=g).to(dev, dt)
    x0 = torch.randn(1, 4, h, h, generator=g).to(dev, torch.float32)
    noise = [torch.randn(1, 4, h, h, generator=g).to(dev, torch.float32) for _ in range(a.steps)]
    coefs = ddpm_coefs(a.steps)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)

    # static buffers for the graph; the eager path uses the same code
    xin = torch.zeros(2, 4, h, h, device=dev, dtype=dt)
    tin = torch.zeros(2, device=dev, dtype=dt)
    scale = torch.tensor(a.cfg, device=dev, dtype=torch.float32)

    def unet_cfg():
        eps = unet(xin, tin, encoder_hidden_states=ctx).sample.float()
        return eps[1:] + scale * (eps[:1] - eps[1:])  # row 0 cond, row 1 uncond

    def run(step_fn):
        x = x0.clone()
        for i, (t, a_t, c_x0, c_xt, sig) in enumerate(coefs):
            xin.copy_(x.expand(2, -1, -1, -1))
            tin.fill_(float(t))
            eps = step_fn()
            x0p = (x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
            x = c_x0 * x0p + c_xt * x + sig * noise[i]
        img = vae.decode((x / 0.18215).to(dt)).sample
        return x, img

    res = {}
    modes = [m for m in a.modes.split(",") if m]
    with torch.no_grad():
        for mode in modes:
            if mode == "graph" and not dev.startswith("cuda"):
                continue
            step_fn = unet_cfg
            if mode == "graph":
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        unet_cfg()
                torch.cuda.current_stream().wait_stream(s)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    out_static = unet_cfg()

                def step_fn():
                    graph.replay()
                    return out_static
            else:
                for _ in range(2):
                    unet_cfg()  # warm-up: cuDNN / SDPA kernel choice
            if dev.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            sync()
            t1 = time.time()
            x, img = run(step_fn)
            sync()
            t_img = time.time() - t1
            # UNet loop alone, for it/s
            t2 = time.time()
            for _ in range(a.steps):
                step_fn()
            sync()
            t_steps = time.time() - t2
            finite = bool(torch.isfinite(img).all())
            r = {"mode": mode, "device": torch.cuda.get_device_name() if dev.startswith("cuda") else "cpu",
                 "dtype": str(dt).replace("torch.", ""), "size": a.size, "steps": a.steps,
                 "s_per_image": t_img, "it_per_s": a.steps / t_steps, "ms_per_step": 1e3 * t_steps / a.steps,
                 "load_s": t_load, "finite": finite,
                 "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.startswith("cuda") else None,
                 "attention": type(next(iter(unet.attn_processors.values()))).__name__}
            res[mode] = r
            print(json.dumps(r), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("unet")
    p.add_argument("--model", required=True)
    p.add_argument("--latent", required=True)
    p.add_argument("--timestep", type=float, required=True)
    p.add_argument("--context", required=True)
    p.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    p.add_argument("--device", default="cuda")
    p.add_argument("-o", "--output", required=True)
    p = sub.add_parser("gen")
    p.add_argument("--model", required=True)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=7.5)
    p.add_argument("--device", default="cuda")
    p.add_argument("--modes", default="eager,graph")
    p.add_argument("--json")
    a = ap.parse_args()
    return cmd_unet(a) if a.cmd == "unet" else cmd_gen(a)


if __name__ == "__main__":
    sys.exit(main())
