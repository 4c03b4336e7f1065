#!/usr/bin/python3
"""Random Stable Diffusion v1.x checkpoint in the real single-file key layout.

    make_model.py --config tiny|full --dtype f32|f16|bf16 --seed S -o PATH

`full` has the exact key names and shapes of v1-5-pruned-emaonly.safetensors
(plus a few extras a loader must skip); `tiny` is the same layout with few
channels and layers. Weights are random but scaled so activations stay O(1)
through the whole net (fan-in scaled weights, norm gammas near 1, small
nonzero biases): nothing is zero, so a missed bias or norm shows up.
Tensors are generated one at a time while writing (each from its own RNG seeded
by the checkpoint seed and the key), so the 4.3 GB f32 file needs little memory.
"""
import argparse
import os
import sys
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

CONFIGS = {
    # SD v1.5
    "full": dict(
        clip=dict(width=768, layers=12, vocab=49408, ffn=3072, heads=None),
        unet=dict(ch=320, mult=(1, 2, 4, 4), nres=2, attn=(0, 1, 2), ctx=768, in_ch=4, heads=None),
        vae=dict(ch=128, mult=(1, 2, 4, 4), nres=2, z=4)),
    # Small (f16 file < 4 MB), but it keeps: the full vocabulary (real prompts
    # work), a level with attention and one without (the last), channel
    # changes on skips and ResBlock shortcuts, a 64-channel level (GroupNorm
    # groups of 2 channels: with 1 channel per group the time embedding and
    # conv biases before a norm would be invisible), 4 VAE levels (factor 8),
    # several heads everywhere. CLIP width 16 keeps the 49408-row embedding small.
    "tiny": dict(
        clip=dict(width=16, layers=2, vocab=49408, ffn=64, heads=2),
        unet=dict(ch=32, mult=(1, 2), nres=1, attn=(0,), ctx=16, in_ch=4, heads=None),
        vae=dict(ch=32, mult=(1, 1, 1, 1), nres=1, z=4)),
    # tiny with VAE levels of different widths: 1x1 nin_shortcut convs in the
    # encoder and decoder resnets (VAE tiling tests)
    "tiny_vae": dict(
        clip=dict(width=16, layers=2, vocab=49408, ffn=64, heads=2),
        unet=dict(ch=32, mult=(1, 2), nres=1, attn=(0,), ctx=16, in_ch=4, heads=None),
        vae=dict(ch=32, mult=(1, 2, 1, 2), nres=1, z=4)),
}

# kinds: w = weight (fan-in scaled normal), b = bias, g = norm gamma,
# nb = norm beta, tok/pos = embeddings


class Keys:
    def __init__(self):
        self.items = []  # (name, shape, kind)

    def add(self, name, shape, kind):
        self.items.append((name, tuple(int(s) for s in shape), kind))

    def linear(self, p, n_out, n_in, bias=True):
        self.add(p + ".weight", (n_out, n_in), "w")
        if bias:
            self.add(p + ".bias", (n_out,), "b")

    def conv(self, p, c_out, c_in, k):
        self.add(p + ".weight", (c_out, c_in, k, k), "w")
        self.add(p + ".bias", (c_out,), "b")

    def norm(self, p, c):
        self.add(p + ".weight", (c,), "g")
        self.add(p + ".bias", (c,), "nb")


def clip_keys(K, c):
    p = "cond_stage_model.transformer.text_model."
    W = c["width"]
    K.add(p + "embeddings.token_embedding.weight", (c["vocab"], W), "tok")
    K.add(p + "embeddings.position_embedding.weight", (77, W), "pos")
    for i in range(c["layers"]):
        q = p + "encoder.layers.%d." % i
        K.norm(q + "layer_norm1", W)
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            K.linear(q + "self_attn." + n, W, W)
        K.norm(q + "layer_norm2", W)
        K.linear(q + "mlp.fc1", c["ffn"], W)
        K.linear(q + "mlp.fc2", W, c["ffn"])
    K.norm(p + "final_layer_norm", W)


def unet_keys(K, u):
    p = "model.diffusion_model."
    ch, tch, ctx = u["ch"], 4 * u["ch"], u["ctx"]

    def res(q, cin, cout):
        K.norm(q + ".in_layers.0", cin)
        K.conv(q + ".in_layers.2", cout, cin, 3)
        K.linear(q + ".emb_layers.1", cout, tch)
        K.norm(q + ".out_layers.0", cout)
        K.conv(q + ".out_layers.3", cout, cout, 3)
        if cin != cout:
            K.conv(q + ".skip_connection", cout, cin, 1)

    def st(q, c):
        K.norm(q + ".norm", c)
        K.conv(q + ".proj_in", c, c, 1)
        t = q + ".transformer_blocks.0."
        for a, kv in (("attn1", c), ("attn2", ctx)):
            K.linear(t + a + ".to_q", c, c, bias=False)
            K.linear(t + a + ".to_k", c, kv, bias=False)
            K.linear(t + a + ".to_v", c, kv, bias=False)
            K.linear(t + a + ".to_out.0", c, c)
        K.linear(t + "ff.net.0.proj", 8 * c, c)
        K.linear(t + "ff.net.2", c, 4 * c)
        for n in ("norm1", "norm2", "norm3"):
            K.norm(t + n, c)
        K.conv(q + ".proj_out", c, c, 1)

    K.linear(p + "time_embed.0", tch, ch)
    K.linear(p + "time_embed.2", tch, tch)
    K.conv(p + "input_blocks.0.0", ch, u["in_ch"], 3)
    chans, cur, idx = [ch], ch, 1
    L = len(u["mult"])
    for lv, m in enumerate(u["mult"]):
        for _ in range(u["nres"]):
            res(p + "input_blocks.%d.0" % idx, cur, ch * m)
            cur = ch * m
            if lv in u["attn"]:
                st(p + "input_blocks.%d.1" % idx, cur)
            chans.append(cur)
            idx += 1
        if lv != L - 1:
            K.conv(p + "input_blocks.%d.0.op" % idx, cur, cur, 3)
            chans.append(cur)
            idx += 1
    res(p + "middle_block.0", cur, cur)
    st(p + "middle_block.1", cur)
    res(p + "middle_block.2", cur, cur)
    idx = 0
    for lv in reversed(range(L)):
        for r in range(u["nres"] + 1):
            skip = chans.pop()
            q = p + "output_blocks.%d" % idx
            res(q + ".0", cur + skip, ch * u["mult"][lv])
            cur = ch * u["mult"][lv]
            j = 1
            if lv in u["attn"]:
                st(q + ".1", cur)
                j = 2
            if lv != 0 and r == u["nres"]:
                K.conv(q + ".%d.conv" % j, cur, cur, 3)
            idx += 1
    K.norm(p + "out.0", cur)
    K.conv(p + "out.2", 4, cur, 3)


def vae_keys(K, v):
    p = "first_stage_model."
    ch, mult, nres, z = v["ch"], v["mult"], v["nres"], v["z"]

    def res(q, cin, cout):
        K.norm(q + ".norm1", cin)
        K.conv(q + ".conv1", cout, cin, 3)
        K.norm(q + ".norm2", cout)
        K.conv(q + ".conv2", cout, cout, 3)
        if cin != cout:
            K.conv(q + ".nin_shortcut", cout, cin, 1)

    def mid(q, c):
        res(q + ".block_1", c, c)
        K.norm(q + ".attn_1.norm", c)
        for n in ("q", "k", "v", "proj_out"):
            K.conv(q + ".attn_1." + n, c, c, 1)
        res(q + ".block_2", c, c)

    e = p + "encoder."
    K.conv(e + "conv_in", ch, 3, 3)
    cur = ch
    for i, m in enumerate(mult):
        for j in range(nres):
            res(e + "down.%d.block.%d" % (i, j), cur, ch * m)
            cur = ch * m
        if i != len(mult) - 1:
            K.conv(e + "down.%d.downsample.conv" % i, cur, cur, 3)
    mid(e + "mid", cur)
    K.norm(e + "norm_out", cur)
    K.conv(e + "conv_out", 2 * z, cur, 3)
    K.conv(p + "quant_conv", 2 * z, 2 * z, 1)
    K.conv(p + "post_quant_conv", z, z, 1)
    d = p + "decoder."
    cur = ch * mult[-1]
    K.conv(d + "conv_in", cur, z, 3)
    mid(d + "mid", cur)
    # ldm registers up levels 0..L-1 but runs them from L-1 down to 0
    ups = []
    for i in reversed(range(len(mult))):
        K2 = Keys()
        for j in range(nres + 1):
            res_k = d + "up.%d.block.%d" % (i, j)
            cin, cout = cur, ch * mult[i]
            K2.norm(res_k + ".norm1", cin)
            K2.conv(res_k + ".conv1", cout, cin, 3)
            K2.norm(res_k + ".norm2", cout)
            K2.conv(res_k + ".conv2", cout, cout, 3)
            if cin != cout:
                K2.conv(res_k + ".nin_shortcut", cout, cin, 1)
            cur = cout
        if i != 0:
            K2.conv(d + "up.%d.upsample.conv" % i, cur, cur, 3)
        ups.append(K2.items)
    for it in reversed(ups):
        K.items.extend(it)
    K.norm(d + "norm_out", cur)
    K.conv(d + "conv_out", 3, cur, 3)


def model_keys(config, inpaint=False):
    c = CONFIGS[config]
    if inpaint:
        c = dict(c, unet=dict(c["unet"], in_ch=9))
    K = Keys()
    clip_keys(K, c["clip"])
    unet_keys(K, c["unet"])
    vae_keys(K, c["vae"])
    return K.items


def gen_tensor(seed, name, shape, kind):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    n = rng.standard_normal(shape, dtype=np.float32)
    if kind == "w":
        fan_in = int(np.prod(shape[1:]))
        return n * np.float32(1.0 / np.sqrt(fan_in))
    if kind == "b":
        return n * np.float32(0.05)
    if kind == "g":
        return np.float32(1.0) + n * np.float32(0.1)
    if kind == "nb":
        return n * np.float32(0.05)
    if kind == "tok":
        return n * np.float32(0.5)
    if kind == "pos":
        return n * np.float32(0.25)
    raise ValueError(kind)


def ddpm_alphas_cumprod():
    b = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    return np.cumprod(1.0 - b)


def model_items(config, dtype, seed, inpaint=False):
    """(items for st_io.write, metadata)."""
    DT = {"f32": "F32", "f16": "F16", "bf16": "BF16"}[dtype]
    items = []
    for name, shape, kind in model_keys(config, inpaint):
        items.append((name, DT, shape,
                      (lambda n=name, s=shape, k=kind: st_io.from_f32(gen_tensor(seed, n, s, k), DT))))
    # Extras real checkpoints carry; the loader must ignore them.
    ac = ddpm_alphas_cumprod().astype(np.float32)
    items.append(("alphas_cumprod", "F32", (1000,), ac))
    items.append(("model_ema.decay", "F32", (), np.array(0.9999, np.float32)))
    items.append(("cond_stage_model.transformer.text_model.embeddings.position_ids", "I64", (1, 77),
                  np.arange(77, dtype=np.int64)[None]))
    meta = {"format": "pt", "sdvk.generator": "tools/make_model.py --config %s --dtype %s --seed %d%s"
            % (config, dtype, seed, " --inpaint" if inpaint else "")}
    h = CONFIGS[config]["clip"]["heads"]
    if h is not None:
        meta["sdvk.clip.num_heads"] = str(h)
    h = CONFIGS[config]["unet"]["heads"]
    if h is not None:
        meta["sdvk.unet.num_heads"] = str(h)
    return items, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inpaint", action="store_true",
                    help="a 9-channel UNet input (latent + mask + masked-image latent), as "
                         "sd-v1-5-inpainting")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    t0 = time.time()
    items, meta = model_items(a.config, a.dtype, a.seed, a.inpaint)
    st_io.write(a.output, items, meta)
    n = sum(int(np.prod(s)) for _, _, s, _ in items)
    print("%s: %d tensors, %.1fM params, %.1f MB, %.1f s" % (
        a.output, len(items), n / 1e6, os.path.getsize(a.output) / 1e6, time.time() - t0))


if __name__ == "__main__":
    main()
