#!/usr/bin/env python3
"""PyTorch CPU time of one CFG UNet step (batch 2) and one VAE decode of SD
v1.5 at a given size, fp32, with diffusers' UNet2DConditionModel and
AutoencoderKL (SD v1.5 configuration, random weights: the time does not
depend on their values). Prints one line per stage:
    <stage> <wall seconds> <cpu seconds>
best of --reps runs after one warm-up; CPU seconds are the process's (all
threads), which other jobs on the machine do not inflate.

  python3 bench/torch_sd_step.py [--threads N] [--size 512] [--reps 2]
         [--stages unet,decode] [--channels-last]
Used by bench/bench_cpu_vs.sh (needs torch and diffusers, e.g. the tools venv).
"""
import argparse
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel


def timed(fn, reps):
    fn()
    best, best_cpu = 1e30, 1e30
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--stages", default="unet,decode")
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    h = a.size // 8
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    with torch.inference_mode():
        if "unet" in a.stages:
            unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8,
                                        sample_size=h).eval().to(memory_format=fmt)
            x = torch.randn(2, 4, h, h).to(memory_format=fmt)
            ctx = torch.randn(2, 77, 768)
            t = torch.tensor([500.0, 500.0])
            w, c = timed(lambda: unet(x, t, encoder_hidden_states=ctx).sample, a.reps)
            print("unet_cfg_step %.4f %.4f" % (w, c), flush=True)
            del unet
        if "decode" in a.stages:
            vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4,
                                up_block_types=("UpDecoderBlock2D",) * 4,
                                block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                                latent_channels=4, sample_size=a.size).eval().to(memory_format=fmt)
            z = torch.randn(1, 4, h, h).to(memory_format=fmt)
            w, c = timed(lambda: vae.decode(z).sample, a.reps)
            print("vae_decode %.4f %.4f" % (w, c), flush=True)


if __name__ == "__main__":
    main()
