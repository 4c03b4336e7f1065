#!/usr/bin/python3
"""Independent PyTorch (CPU, float32) reference of Stable Diffusion v1.x.

Written from the architecture description of the CompVis ldm code (CLIP text
model, openaimodel UNet, autoencoder KL, DDPM) and reading weights straight
from a single-file safetensors checkpoint; the architecture is inferred from
the key names and shapes, so the same code runs the real v1.5 layout and the
tiny test model. It mirrors the C stages (src/stage.h); arrays at the
boundary are float32 NCHW .npy files.

    sd_ref.py clip       -m M --tokens-npy F -o OUT
    sd_ref.py unet       -m M --latent X --timestep T --context C -o OUT
    sd_ref.py vae-decode -m M --latent Z -o OUT
    sd_ref.py vae-encode -m M --image I -o OUT
    sd_ref.py sample     -m M --context C --latent X0 --steps N --cfg S [--step-noise F] -o OUT
    sd_ref.py compare A.npy B.npy        (prints ||a-b|| / ||b||)
    sd_ref.py selftest                   (DDPM algebra checks)
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

CLIP_P = "cond_stage_model.transformer.text_model."
UNET_P = "model.diffusion_model."
VAE_P = "first_stage_model."
SCALE_FACTOR = 0.18215
PAD_ID = 49407
CTX_LEN = 77
ATTN_CHUNK = 1024  # query rows per attention chunk: bounds the score matrix
_USE_MKLDNN = torch.backends.mkldnn.is_available() and os.environ.get("SD_REF_NO_MKLDNN") != "1"


class Model:
    """Checkpoint access: float32 torch tensors, converted on first use."""

    def __init__(self, path):
        self.st = st_io.SafeTensors(path)
        self.meta = self.st.metadata
        self.keys = set(self.st.keys())
        self._cache = {}

    def has(self, k):
        return k in self.keys

    def w(self, k):
        t = self._cache.get(k)
        if t is None:
            if k not in self.keys:
                raise KeyError("%s: tensor %s missing" % (self.st.path, k))
            t = torch.from_numpy(np.array(self.st.f32(k), dtype=np.float32))
            self._cache[k] = t
        return t

    def count(self, fmt):
        """Number of consecutive indices i for which some key starts with fmt % i."""
        n = 0
        while any(k.startswith(fmt % n) for k in self.keys):
            n += 1
        return n

    def meta_int(self, key, default):
        v = self.meta.get(key)
        return int(v) if v is not None else default


# ---------------------------------------------------------------- primitives

def mm(x, w, b=None):
    """x[..., K] · w[N, K]ᵀ + b. This torch build has only the generic
    (reference) BLAS, ~1.5 GFLOP/s, so products go through oneDNN (mkldnn),
    which is ~20x faster; the result is float32 like F.linear."""
    if not _USE_MKLDNN:
        return F.linear(x, w, b)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    y = torch._C._nn.mkldnn_linear(x2.to_mkldnn(), w.contiguous().to_mkldnn(),
                                   None if b is None else b.contiguous().to_mkldnn())
    return y.to_dense().reshape(*lead, w.shape[0])


def linear(m, p, x):
    b = p + ".bias"
    return mm(x, m.w(p + ".weight"), m.w(b) if m.has(b) else None)


def conv(m, p, x, stride=1, pad=None):
    w = m.w(p + ".weight")
    if pad is None:
        pad = w.shape[-1] // 2
    if w.shape[-1] == 1 and w.shape[-2] == 1 and stride == 1 and pad == 0:
        # 1x1 conv as a product over channels (F.conv2d picks a slow path for
        # single-threaded 1x1 convs in this build)
        y = mm(x.permute(0, 2, 3, 1), w.reshape(w.shape[0], w.shape[1]), m.w(p + ".bias"))
        return y.permute(0, 3, 1, 2).contiguous()
    return F.conv2d(x, w, m.w(p + ".bias"), stride=stride, padding=pad)


def group_norm(m, p, x, eps, silu=False):
    y = F.group_norm(x, 32, m.w(p + ".weight"), m.w(p + ".bias"), eps)
    return F.silu(y) if silu else y


def layer_norm(m, p, x, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), m.w(p + ".weight"), m.w(p + ".bias"), eps)


def attention(q, k, v, heads, scale, causal=False):
    """softmax(scale q k^T) v per head on [B, L, H*D]; chunked over queries."""
    B, Lq, HD = q.shape
    Lk = k.shape[1]
    D = HD // heads
    q = q.reshape(B, Lq, heads, D).transpose(1, 2)
    k = k.reshape(B, Lk, heads, D).transpose(1, 2)
    v = v.reshape(B, Lk, heads, D).transpose(1, 2)
    out = torch.empty(B, heads, Lq, D, dtype=q.dtype)
    for b in range(B):
        for h in range(heads):
            kh = k[b, h].contiguous()
            vt = v[b, h].t().contiguous()  # [D, Lk]: p · vtᵀ = p · v
            for s in range(0, Lq, ATTN_CHUNK):
                e = min(Lq, s + ATTN_CHUNK)
                sc = mm(q[b, h, s:e], kh) * scale
                if causal:
                    qi = torch.arange(s, e)[:, None]
                    kj = torch.arange(Lk)[None, :]
                    sc = sc.masked_fill(kj > qi, float("-inf"))
                out[b, h, s:e] = mm(torch.softmax(sc, dim=-1), vt)
    return out.transpose(1, 2).reshape(B, Lq, HD)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


# ---------------------------------------------------------------- CLIP

def clip_forward(m, ids):
    """ids: int array [B, len<=77] (or [len]) -> [B, 77, W]."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2 or ids.shape[1] > CTX_LEN:
        raise ValueError("clip: ids must be [B, <=77], got %s" % (ids.shape,))
    if ids.shape[1] < CTX_LEN:
        ids = np.concatenate([ids, np.full((ids.shape[0], CTX_LEN - ids.shape[1]), PAD_ID, np.int64)], 1)
    tok = m.w(CLIP_P + "embeddings.token_embedding.weight")
    pos = m.w(CLIP_P + "embeddings.position_embedding.weight")
    W = tok.shape[1]
    heads = m.meta_int("sdvk.clip.num_heads", W // 64)
    x = tok[torch.from_numpy(ids)] + pos[:CTX_LEN][None]
    for i in range(m.count(CLIP_P + "encoder.layers.%d.")):
        p = CLIP_P + "encoder.layers.%d." % i
        h = layer_norm(m, p + "layer_norm1", x)
        q = linear(m, p + "self_attn.q_proj", h)
        k = linear(m, p + "self_attn.k_proj", h)
        v = linear(m, p + "self_attn.v_proj", h)
        a = attention(q, k, v, heads, (W // heads) ** -0.5, causal=True)
        x = x + linear(m, p + "self_attn.out_proj", a)
        h = layer_norm(m, p + "layer_norm2", x)
        h = quick_gelu(linear(m, p + "mlp.fc1", h))
        x = x + linear(m, p + "mlp.fc2", h)
    return layer_norm(m, CLIP_P + "final_layer_norm", x)


# ---------------------------------------------------------------- UNet

def timestep_embedding(t, dim):
    """[B] -> [B, dim], cos first (ldm flip_sin_to_cos); computed in float64."""
    half = dim // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    a = t.to(torch.float64)[:, None] * f[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1).to(torch.float32)


def unet_resblock(m, p, x, emb):
    h = conv(m, p + ".in_layers.2", group_norm(m, p + ".in_layers.0", x, 1e-5, silu=True))
    h = h + linear(m, p + ".emb_layers.1", F.silu(emb))[:, :, None, None]
    h = conv(m, p + ".out_layers.3", group_norm(m, p + ".out_layers.0", h, 1e-5, silu=True))
    skip = conv(m, p + ".skip_connection", x) if m.has(p + ".skip_connection.weight") else x
    return skip + h


def unet_attn(m, p, x, ctx, heads):
    q = linear(m, p + ".to_q", x)
    k = linear(m, p + ".to_k", ctx)
    v = linear(m, p + ".to_v", ctx)
    D = q.shape[-1] // heads
    return linear(m, p + ".to_out.0", attention(q, k, v, heads, D ** -0.5))


def unet_transformer(m, p, x, ctx):
    B, C, H, W = x.shape
    heads = m.meta_int("sdvk.unet.num_heads", 8)
    h = conv(m, p + ".proj_in", group_norm(m, p + ".norm", x, 1e-6))
    h = h.reshape(B, C, H * W).transpose(1, 2)
    t = p + ".transformer_blocks.0."
    n = layer_norm(m, t + "norm1", h)
    h = unet_attn(m, t + "attn1", n, n, heads) + h
    n = layer_norm(m, t + "norm2", h)
    h = unet_attn(m, t + "attn2", n, ctx, heads) + h
    n = layer_norm(m, t + "norm3", h)
    a, g = linear(m, t + "ff.net.0.proj", n).chunk(2, dim=-1)
    h = linear(m, t + "ff.net.2", a * F.gelu(g)) + h
    h = h.transpose(1, 2).reshape(B, C, H, W)
    return conv(m, p + ".proj_out", h) + x


def unet_block(m, p, x, emb, ctx):
    """One TimestepEmbedSequential: its layers are told apart by their keys."""
    j = 0
    while True:
        q = "%s.%d" % (p, j)
        if m.has(q + ".in_layers.0.weight"):
            x = unet_resblock(m, q, x, emb)
        elif m.has(q + ".proj_in.weight"):
            x = unet_transformer(m, q, x, ctx)
        elif m.has(q + ".op.weight"):
            x = conv(m, q + ".op", x, stride=2, pad=1)
        elif m.has(q + ".conv.weight"):
            x = conv(m, q + ".conv", F.interpolate(x, scale_factor=2.0, mode="nearest"))
        elif m.has(q + ".weight"):
            x = conv(m, q, x)
        else:
            break
        j += 1
    if j == 0:
        raise KeyError("unet: no layers under %s" % p)
    return x


def unet_forward(m, x, t, ctx):
    """x [B,4,h,w], t scalar timestep, ctx [B or 1, L, C] -> eps [B,4,h,w]."""
    x = torch.as_tensor(np.asarray(x, np.float32))
    ctx = torch.as_tensor(np.asarray(ctx, np.float32))
    B = x.shape[0]
    if ctx.shape[0] == 1 and B > 1:
        ctx = ctx.expand(B, -1, -1)
    if ctx.shape[0] != B:
        raise ValueError("unet: context batch %d vs latent batch %d" % (ctx.shape[0], B))
    ch = m.w(UNET_P + "input_blocks.0.0.weight").shape[0]
    temb = timestep_embedding(torch.full((B,), float(t)), ch)
    emb = linear(m, UNET_P + "time_embed.2", F.silu(linear(m, UNET_P + "time_embed.0", temb)))
    hs = []
    h = x
    for i in range(m.count(UNET_P + "input_blocks.%d.")):
        h = unet_block(m, UNET_P + "input_blocks.%d" % i, h, emb, ctx)
        hs.append(h)
    h = unet_block(m, UNET_P + "middle_block", h, emb, ctx)
    for i in range(m.count(UNET_P + "output_blocks.%d.")):
        h = torch.cat([h, hs.pop()], dim=1)
        h = unet_block(m, UNET_P + "output_blocks.%d" % i, h, emb, ctx)
    if hs:
        raise ValueError("unet: %d skip tensors unused" % len(hs))
    return conv(m, UNET_P + "out.2", group_norm(m, UNET_P + "out.0", h, 1e-5, silu=True))


# ---------------------------------------------------------------- VAE

def vae_resblock(m, p, x):
    h = conv(m, p + ".conv1", group_norm(m, p + ".norm1", x, 1e-6, silu=True))
    h = conv(m, p + ".conv2", group_norm(m, p + ".norm2", h, 1e-6, silu=True))
    skip = conv(m, p + ".nin_shortcut", x) if m.has(p + ".nin_shortcut.weight") else x
    return skip + h


def vae_attn(m, p, x):
    B, C, H, W = x.shape
    h = group_norm(m, p + ".norm", x, 1e-6)
    q, k, v = (conv(m, p + "." + n, h).reshape(B, C, H * W).transpose(1, 2) for n in "qkv")
    a = attention(q, k, v, 1, C ** -0.5)
    return x + conv(m, p + ".proj_out", a.transpose(1, 2).reshape(B, C, H, W))


def vae_mid(m, p, x):
    x = vae_resblock(m, p + ".block_1", x)
    x = vae_attn(m, p + ".attn_1", x)
    return vae_resblock(m, p + ".block_2", x)


def vae_encode(m, img):
    """img [B,3,H,W] in [-1,1] -> posterior mean * 0.18215, [B,4,H/8,W/8]."""
    x = torch.as_tensor(np.asarray(img, np.float32))
    e = VAE_P + "encoder."
    h = conv(m, e + "conv_in", x)
    for i in range(m.count(e + "down.%d.")):
        for j in range(m.count(e + "down.%d.block.%%d." % i)):
            h = vae_resblock(m, e + "down.%d.block.%d" % (i, j), h)
        q = e + "down.%d.downsample.conv" % i
        if m.has(q + ".weight"):
            h = conv(m, q, F.pad(h, (0, 1, 0, 1)), stride=2, pad=0)
    h = vae_mid(m, e + "mid", h)
    h = conv(m, e + "conv_out", group_norm(m, e + "norm_out", h, 1e-6, silu=True))
    moments = conv(m, VAE_P + "quant_conv", h)
    z = moments.shape[1] // 2
    return moments[:, :z] * SCALE_FACTOR


def vae_decode(m, lat):
    """latent [B,4,h,w] (scaled) -> raw decoder output [B,3,8h,8w], not clamped."""
    z = torch.as_tensor(np.asarray(lat, np.float32)) / SCALE_FACTOR
    d = VAE_P + "decoder."
    h = conv(m, VAE_P + "post_quant_conv", z)
    h = conv(m, d + "conv_in", h)
    h = vae_mid(m, d + "mid", h)
    for i in reversed(range(m.count(d + "up.%d."))):
        for j in range(m.count(d + "up.%d.block.%%d." % i)):
            h = vae_resblock(m, d + "up.%d.block.%d" % (i, j), h)
        q = d + "up.%d.upsample.conv" % i
        if m.has(q + ".weight"):
            h = conv(m, q, F.interpolate(h, scale_factor=2.0, mode="nearest"))
    return conv(m, d + "conv_out", group_norm(m, d + "norm_out", h, 1e-6, silu=True))


# ---------------------------------------------------------------- DDPM

def ddpm_alphas_cumprod():
    betas = np.linspace(math.sqrt(0.00085), math.sqrt(0.012), 1000, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


def ddpm_timesteps(n):
    stride = 1000 // n
    return [(n - 1 - i) * stride for i in range(n)]


def ddpm_coefs(t, n, ac=None):
    """x_prev = c0 x + c1 eps + c2 noise at timestep t of an n-step schedule (float64)."""
    ac = ddpm_alphas_cumprod() if ac is None else ac
    prev = t - 1000 // n
    ab_t = ac[t]
    ab_prev = ac[prev] if prev >= 0 else 1.0
    bp = 1.0 - ab_t
    cur_alpha = ab_t / ab_prev
    cur_beta = 1.0 - cur_alpha
    a_x0 = math.sqrt(ab_prev) * cur_beta / bp
    a_x = math.sqrt(cur_alpha) * (1.0 - ab_prev) / bp
    var = max((1.0 - ab_prev) / (1.0 - ab_t) * cur_beta, 1e-20)
    # x0 = (x - sqrt(bp) eps) / sqrt(ab_t)
    c0 = a_x0 / math.sqrt(ab_t) + a_x
    c1 = -a_x0 * math.sqrt(bp) / math.sqrt(ab_t)
    c2 = math.sqrt(var) if t > 0 else 0.0
    return c0, c1, c2


def ddpm_step(x, eps, t, n, noise=None, ac=None):
    """One step written the long way (x0, posterior mean, variance), float64 math."""
    ac = ddpm_alphas_cumprod() if ac is None else ac
    x = torch.as_tensor(x).to(torch.float64)
    eps = torch.as_tensor(eps).to(torch.float64)
    prev = t - 1000 // n
    ab_t = ac[t]
    ab_prev = ac[prev] if prev >= 0 else 1.0
    bp = 1.0 - ab_t
    cur_alpha = ab_t / ab_prev
    cur_beta = 1.0 - cur_alpha
    x0 = (x - math.sqrt(bp) * eps) / math.sqrt(ab_t)
    mean = math.sqrt(ab_prev) * cur_beta / bp * x0 + math.sqrt(cur_alpha) * (1.0 - ab_prev) / bp * x
    if t > 0:
        var = max((1.0 - ab_prev) / (1.0 - ab_t) * cur_beta, 1e-20)
        mean = mean + math.sqrt(var) * torch.as_tensor(noise).to(torch.float64)
    return mean.to(torch.float32)


def img2img_start(n, strength):
    """Index of the first step run for img2img at this strength."""
    return n - int(n * strength)


def img2img_init(x_init, noise, t0):
    ac = ddpm_alphas_cumprod()
    x = torch.as_tensor(x_init).to(torch.float64)
    e = torch.as_tensor(noise).to(torch.float64)
    return (math.sqrt(ac[t0]) * x + math.sqrt(1.0 - ac[t0]) * e).to(torch.float32)


def sample(m, ctx, x0, steps, cfg, step_noise, start=0, log=None):
    """DDPM loop. ctx [2B,L,C] rows [cond; uncond] when cfg != 1, else [B,L,C].
    step_noise [K,B,4,h,w], K = steps with t > 0 from `start` on."""
    x = torch.as_tensor(np.asarray(x0, np.float32))
    ctx = torch.as_tensor(np.asarray(ctx, np.float32))
    B = x.shape[0]
    ts = ddpm_timesteps(steps)[start:]
    K = sum(1 for t in ts if t > 0)
    step_noise = torch.as_tensor(np.asarray(step_noise, np.float32))
    if step_noise.shape[0] < K:
        raise ValueError("sample: need %d step noises, got %d" % (K, step_noise.shape[0]))
    ac = ddpm_alphas_cumprod()
    for k, t in enumerate(ts):
        t0 = time.time()
        if cfg != 1.0:
            if ctx.shape[0] != 2 * B:
                raise ValueError("sample: cfg needs 2B=%d context rows, got %d" % (2 * B, ctx.shape[0]))
            e = unet_forward(m, torch.cat([x, x]), t, ctx)
            ec, eu = e[:B], e[B:]
            eps = eu + cfg * (ec - eu)
        else:
            eps = unet_forward(m, x, t, ctx)
        x = ddpm_step(x, eps, t, steps, step_noise[k] if t > 0 else None, ac)
        if log:
            log("step %d t=%d %.2f s" % (k, t, time.time() - t0))
    return x


def selftest():
    """DDPM algebra against independent derivations."""
    ac = ddpm_alphas_cumprod()
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2
    alphas = 1 - betas
    # 1000 steps: the posterior q(x_{t-1} | x_t, x_0) of Ho et al. (eqs. 6-7)
    for t in (1, 2, 10, 500, 999):
        ab, abp = ac[t], ac[t - 1]
        c_x0 = math.sqrt(abp) * betas[t] / (1 - ab)
        c_xt = math.sqrt(alphas[t]) * (1 - abp) / (1 - ab)
        var = (1 - abp) / (1 - ab) * betas[t]
        c0, c1, c2 = ddpm_coefs(t, 1000, ac)
        # eps form: x0 = (xt - sqrt(1-ab) eps)/sqrt(ab)
        assert abs(c0 - (c_x0 / math.sqrt(ab) + c_xt)) < 1e-12
        assert abs(c1 + c_x0 * math.sqrt(1 - ab) / math.sqrt(ab)) < 1e-12
        assert abs(c2 - math.sqrt(var)) < 1e-12
        # and the classic mean: (x_t - beta_t/sqrt(1-ab) eps)/sqrt(alpha_t)
        assert abs(c0 - 1 / math.sqrt(alphas[t])) < 1e-9, (t, c0)
        assert abs(c1 + betas[t] / math.sqrt(1 - ab) / math.sqrt(alphas[t])) < 1e-9
    # Strided steps: Gaussian conditioning of the joint of (x_prev, x_t) given x0,
    # with x_t = sqrt(a) x_prev + sqrt(1-a) n, a = ab_t/ab_prev: posterior
    # precision 1/(1-ab_prev) + a/(1-a), mean by completing the square.
    for n in (4, 10, 50):
        for t in ddpm_timesteps(n)[:-1]:
            prev = t - 1000 // n
            ab, abp = ac[t], ac[prev]
            a = ab / abp
            prec = 1 / (1 - abp) + a / (1 - a)
            var = 1 / prec
            m_x0 = var * math.sqrt(abp) / (1 - abp)
            m_xt = var * math.sqrt(a) / (1 - a)
            c0, c1, c2 = ddpm_coefs(t, n, ac)
            assert abs(c2 ** 2 - var) < 1e-12 * max(1, var)
            assert abs(c0 - (m_x0 / math.sqrt(ab) + m_xt)) < 1e-9
            assert abs(c1 + m_x0 * math.sqrt(1 - ab) / math.sqrt(ab)) < 1e-9
    # the long-hand step and the coefficient form agree
    g = torch.Generator().manual_seed(0)
    x, e, z = (torch.randn(2, 4, 3, 3, generator=g) for _ in range(3))
    for n, t in ((4, 750), (4, 0), (10, 900), (1000, 1)):
        c0, c1, c2 = ddpm_coefs(t, n, ac)
        ref = c0 * x.double() + c1 * e.double() + c2 * z.double()
        got = ddpm_step(x, e, t, n, z, ac).double()
        assert (ref - got).abs().max() < 1e-5
    # last step (t=0) returns x0 exactly (ab_prev = 1)
    got = ddpm_step(x, e, 0, 4, None, ac).double()
    x0 = (x.double() - math.sqrt(1 - ac[0]) * e.double()) / math.sqrt(ac[0])
    assert (got - x0).abs().max() < 1e-5
    assert ddpm_timesteps(4) == [750, 500, 250, 0] and ddpm_timesteps(50)[0] == 980
    assert img2img_start(50, 0.75) == 13
    # timestep embedding: cos first
    te = timestep_embedding(torch.tensor([3.0]), 8)[0]
    assert abs(te[0] - math.cos(3.0)) < 1e-6 and abs(te[4] - math.sin(3.0)) < 1e-6
    assert abs(te[1] - math.cos(3.0 * 10000 ** -0.25)) < 1e-6
    # chunked attention equals the plain formula (causal too)
    q, k, v = (torch.randn(2, 7, 12, generator=g) for _ in range(3))
    global ATTN_CHUNK
    old, ATTN_CHUNK = ATTN_CHUNK, 3
    got = attention(q, k, v, 3, 0.5, causal=True)
    ATTN_CHUNK = old
    qh, kh, vh = (t_.reshape(2, 7, 3, 4).transpose(1, 2) for t_ in (q, k, v))
    s = qh @ kh.transpose(-1, -2) * 0.5 + torch.triu(torch.full((7, 7), -1e30), 1)
    ref = (torch.softmax(s, -1) @ vh).transpose(1, 2).reshape(2, 7, 12)
    assert (got - ref).abs().max() < 1e-5
    print("sd_ref selftest ok")


# ---------------------------------------------------------------- CLI

def rel_l2(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError("shape mismatch %s vs %s" % (a.shape, b.shape))
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (nb if nb > 0 else 1.0))


def _save(path, t):
    np.save(path, np.ascontiguousarray(np.asarray(t, dtype=np.float32)))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Stable Diffusion v1.x PyTorch reference")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(name):
        p = sub.add_parser(name)
        p.add_argument("-m", "--model", required=True)
        p.add_argument("-o", "--output", required=True)
        p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
        return p

    p = common("clip")
    p.add_argument("--tokens-npy", required=True)
    p = common("unet")
    p.add_argument("--latent", required=True)
    p.add_argument("--timestep", type=float, required=True)
    p.add_argument("--context", required=True)
    p = common("vae-decode")
    p.add_argument("--latent", required=True)
    p = common("vae-encode")
    p.add_argument("--image", required=True)
    p = common("sample")
    p.add_argument("--context", required=True)
    p.add_argument("--latent", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--cfg", type=float, default=7.5)
    p.add_argument("--step-noise")
    p.add_argument("--seed", type=int, default=0, help="step noise when --step-noise is absent")
    p.add_argument("-v", "--verbose", action="store_true")
    p = sub.add_parser("compare")
    p.add_argument("a")
    p.add_argument("b")
    sub.add_parser("selftest")
    a = ap.parse_args(argv)

    if a.cmd == "compare":
        print("%.3e" % rel_l2(np.load(a.a), np.load(a.b)))
        return 0
    if a.cmd == "selftest":
        selftest()
        return 0
    if a.threads:
        torch.set_num_threads(a.threads)
    m = Model(a.model)
    t0 = time.time()
    with torch.no_grad():
        if a.cmd == "clip":
            out = clip_forward(m, np.load(a.tokens_npy))
        elif a.cmd == "unet":
            out = unet_forward(m, np.load(a.latent), a.timestep, np.load(a.context))
        elif a.cmd == "vae-decode":
            out = vae_decode(m, np.load(a.latent))
        elif a.cmd == "vae-encode":
            out = vae_encode(m, np.load(a.image))
        elif a.cmd == "sample":
            x0 = np.load(a.latent)
            if a.step_noise:
                noise = np.load(a.step_noise)
            else:
                K = sum(1 for t in ddpm_timesteps(a.steps) if t > 0)
                noise = np.random.default_rng(a.seed).standard_normal((K,) + x0.shape).astype(np.float32)
            log = (lambda s: print(s, file=sys.stderr)) if a.verbose else None
            out = sample(m, np.load(a.context), x0, a.steps, a.cfg, noise, log=log)
    out = np.asarray(out, np.float32)
    if not np.isfinite(out).all():
        print("sd_ref: non-finite values in output", file=sys.stderr)
        return 1
    _save(a.output, out)
    print("%s %s %s %.2f s" % (a.cmd, a.output, list(out.shape), time.time() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
