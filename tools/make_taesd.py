#!/usr/bin/env python3
"""Random-weight TAESD models in the diffusers AutoencoderTiny layout
(decoder.layers.N.*, encoder.layers.N.*, what madebyollin/taesd ships as
diffusion_pytorch_model.safetensors), and goldens from diffusers'
AutoencoderTiny itself (the oracle for src/model/taesd.c).

Needs diffusers + torch (the tools venv):
  /work/main/tools/.venv/bin/python tools/make_taesd.py --config tiny --out tests/data/taesd
  /work/main/tools/.venv/bin/python tools/make_taesd.py --config full --out /tmp/taesd_full

Writes OUT/taesd.safetensors and, as float32 NCHW .npy:
  dec_in.npy   [1,4,h,w] latents (UNet scale)    dec_out.npy  decoder(dec_in) in [-1,1]
  enc_in.npy   [1,3,H,W] image in [-1,1]          enc_out.npy  encoder(enc_in)
tiny: 16 channels, one block per level, f16 weights, 8x8 latent (64x64 image);
full: the real TAESD (64 channels, blocks (1,3,3,3)/(3,3,3,1)), f32, 64x64 latent.
Deterministic for a given --seed. Weights are drawn with He scaling (std
sqrt(2 / fan_in), halved inside blocks) so activations keep their size
through the ReLU stack instead of fading as with PyTorch's default init.
"""
import argparse
import json
import os

import numpy as np
import torch
from diffusers import AutoencoderTiny
from safetensors.torch import save_file

CONFIGS = {
    "tiny": dict(encoder_block_out_channels=(16, 16, 16, 16), decoder_block_out_channels=(16, 16, 16, 16),
                 num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1)),
    "full": dict(),  # AutoencoderTiny's defaults are TAESD's
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--latent", type=int, default=0, help="latent side (default: tiny 8, full 64)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    side = a.latent or (8 if a.config == "tiny" else 64)
    dtype = torch.float16 if a.config == "tiny" else torch.float32
    m = AutoencoderTiny(**CONFIGS[a.config]).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("weight"):
                fan_in = p[0].numel()
                gain = 0.5 if ".conv." in name else 1.0
                p.copy_(torch.randn_like(p) * gain * (2.0 / fan_in) ** 0.5)
            else:
                p.copy_(torch.randn_like(p) * 0.05)
            p.copy_(p.to(dtype).float())  # the oracle computes with the stored values
    os.makedirs(a.out, exist_ok=True)
    sd = {k: v.detach().to(dtype).contiguous() for k, v in m.state_dict().items()}
    save_file(sd, os.path.join(a.out, "taesd.safetensors"), metadata={"format": "pt"})
    g = torch.Generator().manual_seed(a.seed + 1)
    z = torch.randn(1, 4, side, side, generator=g) * 0.8
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 8 * side), torch.linspace(-1, 1, 8 * side), indexing="ij")
    img = torch.stack([torch.sin(5 * xx + 1), torch.cos(4 * yy), xx * yy])[None]
    img = (img + 0.1 * torch.randn(img.shape, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        dec = m.decode(z).sample          # decoder: tanh clamp, layers, 2x - 1
        enc = m.encode(img).latents       # encoder: (x + 1) / 2, layers
    for n, t in (("dec_in", z), ("dec_out", dec), ("enc_in", img), ("enc_out", enc)):
        np.save(os.path.join(a.out, n + ".npy"), t.float().numpy())
    info = {"config": a.config, "seed": a.seed, "latent": side, "dtype": str(dtype),
            "dec_out_std": float(dec.std()), "enc_out_std": float(enc.std()),
            "params": sum(p.numel() for p in m.parameters())}
    with open(os.path.join(a.out, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
