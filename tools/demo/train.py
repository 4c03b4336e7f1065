#!/usr/bin/python3
"""Train the sdvk demo model (SD v1.x architecture, scaled down) on CPU.

    tools/demo/train.py [--seed 1] [--out models/demo] [--vae-iters N] [--unet-iters N] ...

Deterministic from --seed with a fixed thread count (--threads, default 2):
data come from numpy Generators, weights from torch.manual_seed. Stages:
  1. BPE vocabulary from the captions (tools/demo/bpe.py) -> OUT/tokenizer/
  2. VAE (64x64x3 <-> 8x8x4): L1 + L2 reconstruction of a posterior sample,
     small KL.
  3. A fixed set of pictures encoded to posterior means; the latent scale
     factor is 1/std of those latents (unit-variance latents for diffusion).
  4. Text encoder, pretrained on the captions alone, then frozen (as SD v1's
     CLIP text encoder is): every output token from EOS on must tell each
     attribute the caption names (see train_text).
  5. UNet, the SD v1 objective: epsilon prediction at t ~ U{0..999} of the
     1000-step scaled-linear schedule, 10% of captions replaced by "" (the
     engine's unconditional prompt) for CFG. EMA weights. The training noise
     also has a per-channel offset part (--offset-noise); sampling is the
     plain SD one.
  6. Export fp16 safetensors in the single-file layout with metadata
     (sdvk.config, head counts, sdvk.vae.scale_factor), a loss log, a loss
     curve PNG and a preview grid sampled with DDPM 20 steps, CFG 7.5.
"""
import argparse
import os
import copy
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import bpe  # noqa: E402
import data  # noqa: E402
import model as M  # noqa: E402
import st_io  # noqa: E402

# At least 64 channels wherever a GroupNorm (32 groups) feeds an output: with
# one channel per group a spatially flat feature (a plain background)
# normalises to zero, so the decoder could not tell background colours apart.
# These defaults made the committed model; --unet-ch/--unet-mult/--unet-attn
# change the UNet (96 and 128 channels were tried, see the README).
CONFIG = dict(
    clip=dict(width=64, layers=2, ffn=256, heads=2, vocab=None),
    unet=dict(ch=64, mult=(1, 1), nres=1, attn=(0, 1), ctx=64, in_ch=4, heads=2),
    vae=dict(ch=64, mult=(1, 1, 1, 1), nres=1, z=4),
)


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def to_tensor(imgs):
    """uint8 [B,H,W,3] -> float [B,3,H,W] in [-1,1]."""
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_vae(sd, a, rng, losses):
    vae = sd.vae
    opt = torch.optim.Adam(vae.parameters(), lr=a.vae_lr)
    t0 = time.time()
    for it in range(a.vae_iters):
        lr = a.vae_lr * min(1.0, (it + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * it / a.vae_iters)))
        for g in opt.param_groups:
            g["lr"] = lr
        if it < a.vae_crop_iters:
            # Cheap early iterations: 8-aligned 32x32 crops (a quarter of the
            # work; the latent grid stays aligned as in whole pictures), 2x batch.
            imgs, _, _ = data.batch(rng, 2 * a.vae_batch)
            oy, ox = 8 * rng.integers(5, size=2)
            imgs = np.ascontiguousarray(imgs[:, oy:oy + 32, ox:ox + 32])
        else:
            imgs, _, _ = data.batch(rng, a.vae_batch)
        x = to_tensor(imgs)
        mean, logvar = vae.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        y = vae.decode(z)
        rec = (y - x).abs().mean() + ((y - x) ** 2).mean()
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).mean()
        loss = rec + a.kl * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(("vae", it, float(rec), float(kl)))
        if it % 50 == 0 or it == a.vae_iters - 1:
            log("vae %4d/%d rec %.4f kl %.3f (%.0f s)" % (it, a.vae_iters, rec, kl, time.time() - t0))


@torch.no_grad()
def encode_set(sd, a, rng):
    """Pictures of the diffusion training set and their latent means."""
    lat, attrs = [], []
    for s in range(0, a.n_images, 100):
        imgs, _, at = data.batch(rng, min(100, a.n_images - s))
        mean, _ = sd.vae.encode(to_tensor(imgs))
        lat.append(mean)
        attrs += at
    return torch.cat(lat), attrs


def train_text(sd, a, tok, rng, losses):
    """Pretrain the text encoder on captions, then freeze it.

    Trained from scratch together with the UNet, the text encoder learnt the
    colour words (they change the whole picture) but never the position
    words: the UNet ignored the weak position signal in the context, so no
    gradient asked the encoder to make it stronger. The pictures did not
    depend on the position words at all (tools/demo/probe_position.py), even
    with positions as the only thing that varied. Given a context that does
    tell the position, the UNet learns it in a few hundred iterations.

    So, as SD v1 uses a pretrained, frozen CLIP text encoder, this one is
    pretrained first: a linear classifier per attribute (data.LABELS, with a
    "not said" class) reads every output token from the first EOS on. With the
    causal mask those tokens see the whole caption, and they are most of the
    77 the UNet's cross-attention looks at. The classifiers are thrown away."""
    torch.manual_seed(a.seed * 1000 + 5)  # the same whether the VAE was trained or loaded (--vae-from)
    width = sd.text.final_layer_norm.normalized_shape[0]
    heads = torch.nn.ModuleList(torch.nn.Linear(width, len(v) + 1) for _, v in data.LABELS)
    params = list(sd.text.parameters()) + list(heads.parameters())
    opt = torch.optim.Adam(params, lr=a.text_lr)
    t0 = time.time()
    for it in range(a.text_iters):
        ids, lab = [], []
        for _ in range(a.text_batch):
            at = data.sample_attrs(rng)
            c, said = ("", None) if rng.random() < a.drop else data.caption_said(at, rng)
            ids.append(tok.encode(c))
            lab.append(data.labels(at, said))
        ids, lab = torch.tensor(ids), torch.tensor(lab)
        h = sd.text(ids)
        after_eos = (ids == tok.eos).float()  # first EOS and the EOS padding after it
        loss = 0.0
        for k, head in enumerate(heads):
            logits = head(h)
            ce = F.cross_entropy(logits.transpose(1, 2), lab[:, k:k + 1].expand(-1, ids.shape[1]), reduction="none")
            loss = loss + (ce * after_eos).sum() / after_eos.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(("text", it, float(loss), 0.0))
        if it % 50 == 0 or it == a.text_iters - 1:
            log("text %4d/%d cross-entropy %.4f (%.0f s)" % (it, a.text_iters, loss, time.time() - t0))
    for p in sd.text.parameters():
        p.requires_grad_(False)


def train_diffusion(sd, a, lat, attrs, tok, rng, losses):
    params = list(sd.unet.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    ema = copy.deepcopy(sd)
    ac = torch.from_numpy(M.alphas_cumprod()).float()
    empty = tok.encode("")
    t0 = time.time()
    n = lat.shape[0]
    for it in range(a.unet_iters):
        lr = a.lr * min(1.0, (it + 1) / 100) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * it / a.unet_iters)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(n, size=a.batch)
        ids = []
        for i in idx:
            if rng.random() < a.drop:
                ids.append(empty)
            else:
                ids.append(tok.encode(data.caption(attrs[i], rng)))
        ids = torch.tensor(ids, dtype=torch.long)
        x0 = lat[torch.from_numpy(idx)]
        t = torch.from_numpy(rng.integers(1000, size=a.batch))
        noise = torch.from_numpy(rng.standard_normal(x0.shape).astype(np.float32))
        # "Offset noise", in training only (sampling is the plain SD one): a
        # per-picture, per-channel constant on top of N(0, I). On 8x8 latents
        # a channel's mean (the background colour) shows through the noise
        # down to high t, so without it the model learns to copy the
        # background from x_t and hardly from the prompt.
        off = rng.standard_normal((x0.shape[0], x0.shape[1], 1, 1)).astype(np.float32)
        noise = noise + a.offset_noise * torch.from_numpy(off)
        ab = ac[t][:, None, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        with torch.no_grad():  # frozen (train_text)
            ctx = sd.text(ids)
        loss = F.mse_loss(sd.unet(xt, t.float(), ctx), noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        d = min(a.ema, (1 + it) / (10 + it))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), sd.parameters()):
                pe.mul_(d).add_(p, alpha=1 - d)
        losses.append(("unet", it, float(loss), 0.0))
        if it % 50 == 0 or it == a.unet_iters - 1:
            recent = np.mean([l[2] for l in losses[-50:]])
            if a.preview_every and it % a.preview_every == 0 and it:
                preview(ema, tok, float(1.0), os.path.join(a.out, "preview_%d.png" % it), 0, a.scale)
            log("unet %4d/%d loss %.4f (avg50 %.4f) lr %.2e (%.0f s)" % (it, a.unet_iters, loss, recent, lr,
                                                                       time.time() - t0))
    return ema


def export(sd, path, cfg, scale, meta_extra):
    items = []
    for k, v in sd.state_dict().items():
        items.append((k, "F16", tuple(v.shape), v.detach().float().numpy().astype(np.float16)))
    meta = {"format": "pt", "sdvk.clip.num_heads": str(cfg["clip"]["heads"]),
            "sdvk.unet.num_heads": str(cfg["unet"]["heads"]),
            "sdvk.vae.scale_factor": "%.6g" % scale, "sdvk.config": json.dumps(cfg),
            # the size it draws: the engine's default size without -W/-H
            "modelspec.resolution": "64x64"}
    meta.update(meta_extra)
    st_io.write(path, items, meta)


def plot_losses(losses, path):
    """Loss curves as a PNG (PIL; no matplotlib on the build machine)."""
    from PIL import Image, ImageDraw
    W, H, pad = 720, 300, 40
    panels = (("vae", "VAE reconstruction (L1+L2)"), ("text", "text encoder pretraining (cross-entropy)"),
              ("unet", "UNet epsilon MSE"))
    img = Image.new("RGB", (W, len(panels) * H), "white")
    d = ImageDraw.Draw(img)
    for row, (kind, label) in enumerate(panels):
        ys = np.array([l[2] for l in losses if l[0] == kind])
        if len(ys) == 0:
            continue
        k = max(1, len(ys) // 100)
        sm = np.convolve(ys, np.ones(k) / k, mode="valid")
        y0 = row * H
        lo, hi = np.log10(max(sm.min(), 1e-4)), np.log10(sm.max())
        hi = hi if hi > lo else lo + 1
        d.rectangle([pad, y0 + pad, W - pad, y0 + H - pad], outline="black")
        pts = [(pad + (W - 2 * pad) * i / max(1, len(sm) - 1),
                y0 + H - pad - (H - 2 * pad) * (np.log10(max(v, 1e-4)) - lo) / (hi - lo)) for i, v in enumerate(sm)]
        d.line(pts, fill=(200, 30, 30), width=2)
        d.text((pad, y0 + 10), "%s, log scale, moving average over %d iterations" % (label, k), fill="black")
        d.text((5, y0 + pad), "%.3g" % 10 ** hi, fill="black")
        d.text((5, y0 + H - pad - 10), "%.3g" % 10 ** lo, fill="black")
        d.text((W - pad - 80, y0 + H - pad + 5), "%d iters" % len(ys), fill="black")
    img.save(path)


LAT = data.SIZE // 8  # VAE factor 8: 2^(levels-1)
PREVIEW = ["a red circle on a blue background",
           "a large yellow square at the top left on a purple background",
           "a small white triangle at the bottom right on a green background",
           "a blue circle in the center on a yellow background",
           "a large green triangle at the top right on a red background",
           "a purple square at the bottom left on a white background",
           "a large red square in the center on a green background",
           "a yellow circle at the bottom right on a blue background"]


@torch.no_grad()
def recon_preview(sd, path, rng):
    """Top row: pictures; bottom row: VAE reconstructions from the posterior mean."""
    from PIL import Image
    imgs, _, _ = data.batch(rng, 8)
    y = sd.vae.decode(sd.vae.encode(to_tensor(imgs))[0])
    rec = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    grid = np.concatenate([np.concatenate(list(imgs), 1), np.concatenate(list(rec), 1)], 0)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)


@torch.no_grad()
def preview(sd, tok, _unused, path, seed, scale):
    from PIL import Image
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor([tok.encode(p) for p in PREVIEW])
    cc = sd.text(ids)
    cu = sd.text(torch.tensor([tok.encode("")])).expand(len(PREVIEW), -1, -1)
    y = M.ddpm_sample(sd, cc, cu, (len(PREVIEW), 4, LAT, LAT), 20, 7.5, g, scale)
    img = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    Image.fromarray(np.concatenate(list(img), 1)).resize((len(PREVIEW) * 128, 128), Image.NEAREST).save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "models", "demo"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vae-iters", type=int, default=1200)
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--vae-crop-iters", type=int, default=900, help="first N VAE iterations on 32x32 crops")
    ap.add_argument("--vae-from", help="tuning: load the VAE stage (OUT/vae_stage.pt of an earlier run)")
    ap.add_argument("--vae-lr", type=float, default=2e-3)
    ap.add_argument("--kl", type=float, default=1e-6)
    ap.add_argument("--n-images", type=int, default=5000)
    ap.add_argument("--text-iters", type=int, default=400)
    ap.add_argument("--text-batch", type=int, default=128)
    ap.add_argument("--text-lr", type=float, default=1e-3)
    ap.add_argument("--unet-iters", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--drop", type=float, default=0.1)
    ap.add_argument("--offset-noise", type=float, default=0.5,
                    help="std of a per-channel constant added to the training noise")
    ap.add_argument("--stop-after-vae", action="store_true", help="tuning: stop after the VAE stage")
    ap.add_argument("--preview-every", type=int, default=0, help="preview grid every N UNet iterations")
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--unet-ch", type=int, default=CONFIG["unet"]["ch"], help="UNet base channels")
    ap.add_argument("--unet-mult", default=",".join(map(str, CONFIG["unet"]["mult"])),
                    help="UNet channel multiplier per level (comma list; its length is the level count)")
    ap.add_argument("--unet-attn", default=",".join(map(str, CONFIG["unet"]["attn"])),
                    help="UNet levels with a transformer (comma list)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    T0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    tokdir = os.path.join(a.out, "tokenizer")
    bpe.write(tokdir, bpe.train(data.all_caption_words()))
    tok = bpe.Tokenizer(tokdir)
    cfg = copy.deepcopy(CONFIG)
    cfg["clip"]["vocab"] = tok.size
    cfg["unet"].update(ch=a.unet_ch, mult=tuple(int(v) for v in a.unet_mult.split(",")),
                       attn=tuple(int(v) for v in a.unet_attn.split(",")))
    sd = M.SD(cfg)
    log("params: clip %.2fM unet %.2fM vae %.2fM" % tuple(
        sum(p.numel() for p in m.parameters()) / 1e6 for m in (sd.text, sd.unet, sd.vae)))
    losses = []
    if a.vae_from:
        # tuning shortcut: reuse the VAE stage of an earlier run with the same seed
        st = torch.load(a.vae_from)
        sd.vae.load_state_dict(st["vae"])
        losses += st["losses"]
    else:
        train_vae(sd, a, np.random.default_rng([a.seed, 1]), losses)
        torch.save({"vae": sd.vae.state_dict(), "losses": losses}, os.path.join(a.out, "vae_stage.pt"))
    t_vae = time.time() - T0
    sd.vae.eval()
    recon_preview(sd, os.path.join(a.out, "vae_recon.png"), np.random.default_rng([a.seed, 4]))
    if a.stop_after_vae:
        return
    lat, attrs = encode_set(sd, a, np.random.default_rng([a.seed, 2]))
    scale = float(1.0 / lat.std())
    log("latents %s mean %.3f std %.3f -> scale factor %.5f" % (tuple(lat.shape), lat.mean(), lat.std(), scale))
    for p in sd.vae.parameters():
        p.requires_grad_(False)
    a.scale = scale
    t_text = time.time()
    train_text(sd, a, tok, np.random.default_rng([a.seed, 5]), losses)
    t_text = time.time() - t_text
    ema = train_diffusion(sd, a, lat * scale, attrs, tok, np.random.default_rng([a.seed, 3]), losses)
    ema.eval()
    total = time.time() - T0
    vae_final = float(np.mean([l[2] for l in losses if l[0] == "vae"][-50:]))
    unet_final = float(np.mean([l[2] for l in losses if l[0] == "unet"][-200:]))
    cmd = "tools/demo/train.py " + " ".join(sys.argv[1:])
    export(ema, os.path.join(a.out, "sdvk-demo.safetensors"), cfg, scale,
           {"sdvk.generator": cmd.strip(), "sdvk.train.seed": str(a.seed)})
    plot_losses(losses, os.path.join(a.out, "loss.png"))
    summary = dict(command=cmd.strip(), seed=a.seed, threads=a.threads, torch=torch.__version__,
                   seconds_total=round(total, 1), seconds_vae=round(t_vae, 1), seconds_text=round(t_text, 1),
                   vae_recon_final_avg50=round(vae_final, 5), unet_mse_final_avg200=round(unet_final, 5),
                   scale_factor=scale, config=cfg, args=vars(a))
    with open(os.path.join(a.out, "train_log.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(a.out, "train_log.tsv"), "w") as f:
        f.write("stage\titer\tloss\tkl\n")
        for s, it, l, k in losses:
            if it % 10 == 0:
                f.write("%s\t%d\t%.5f\t%.4f\n" % (s, it, l, k))
    preview(ema, tok, None, os.path.join(a.out, "preview.png"), a.seed, scale)
    log("done in %.0f s: vae rec %.4f, unet mse %.4f" % (total, vae_final, unet_final))


if __name__ == "__main__":
    main()
