"""SD v1.x networks as torch nn.Modules whose state_dict keys are exactly the
single-file checkpoint keys (cond_stage_model.transformer.text_model.*,
model.diffusion_model.*, first_stage_model.*), scaled down by a config.
Same maths as tools/sd_ref.py (which reads weights from a file instead)."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Linear(nn.Linear):
    """nn.Linear (same parameters and keys) computed as a 1x1 convolution.

    Debian's torch has only a generic reference BLAS, so F.linear runs at a
    few GFLOP/s while oneDNN's convolution runs 10x faster, forward and
    backward; training time is dominated by these layers otherwise."""

    def forward(self, x):
        if not torch.backends.mkldnn.is_available():
            return F.linear(x, self.weight, self.bias)
        lead, k = x.shape[:-1], x.shape[-1]
        y = F.conv2d(x.reshape(-1, k).t().reshape(1, k, -1, 1), self.weight[:, :, None, None], self.bias)
        return y.reshape(self.out_features, -1).t().reshape(*lead, self.out_features)


def bmm_nt(a, b):
    """a [G, L, K] . b [G, N, K]^T -> [G, L, N], as a grouped 1x1 convolution:
    oneDNN runs it ~20x faster than the generic BLAS's bmm (see Linear)."""
    G, L, K = a.shape
    N = b.shape[1]
    if not torch.backends.mkldnn.is_available():
        return torch.bmm(a, b.transpose(1, 2))
    y = F.conv2d(a.transpose(1, 2).reshape(1, G * K, L, 1), b.reshape(G * N, K, 1, 1), groups=G)
    return y.reshape(G, N, L).transpose(1, 2)


def attention(q, k, v, heads, causal=False):
    B, Lq, C = q.shape
    Lk = k.shape[1]
    d = C // heads
    q = q.reshape(B, Lq, heads, d).transpose(1, 2).reshape(B * heads, Lq, d)
    k = k.reshape(B, Lk, heads, d).transpose(1, 2).reshape(B * heads, Lk, d)
    v = v.reshape(B, Lk, heads, d).transpose(1, 2).reshape(B * heads, Lk, d)
    s = bmm_nt(q, k) * d ** -0.5
    if causal:
        s = s + torch.triu(torch.full((Lq, Lk), float("-inf")), 1)
    o = bmm_nt(torch.softmax(s, -1), v.transpose(1, 2))
    return o.reshape(B, heads, Lq, d).transpose(1, 2).reshape(B, Lq, C)


# ---------------------------------------------------------------- CLIP text model

class _SelfAttn(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (Linear(w, w) for _ in range(4))


class _Mlp(nn.Module):
    def __init__(self, w, ffn):
        super().__init__()
        self.fc1 = Linear(w, ffn)
        self.fc2 = Linear(ffn, w)


class _ClipLayer(nn.Module):
    def __init__(self, w, ffn):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(w)
        self.self_attn = _SelfAttn(w)
        self.layer_norm2 = nn.LayerNorm(w)
        self.mlp = _Mlp(w, ffn)

    def forward(self, x, heads):
        h = self.layer_norm1(x)
        a = self.self_attn
        x = x + a.out_proj(attention(a.q_proj(h), a.k_proj(h), a.v_proj(h), heads, causal=True))
        h = self.layer_norm2(x)
        h = self.mlp.fc1(h)
        h = h * torch.sigmoid(1.702 * h)  # quick GELU
        return x + self.mlp.fc2(h)


class _Emb(nn.Module):
    def __init__(self, vocab, w, n_pos):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, w)
        self.position_embedding = nn.Embedding(n_pos, w)


class _Encoder(nn.Module):
    def __init__(self, w, layers, ffn):
        super().__init__()
        self.layers = nn.ModuleList(_ClipLayer(w, ffn) for _ in range(layers))


class TextModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads = c["heads"]
        self.embeddings = _Emb(c["vocab"], c["width"], 77)
        self.encoder = _Encoder(c["width"], c["layers"], c["ffn"])
        self.final_layer_norm = nn.LayerNorm(c["width"])
        nn.init.normal_(self.embeddings.token_embedding.weight, std=0.02)
        nn.init.normal_(self.embeddings.position_embedding.weight, std=0.01)

    def forward(self, ids):
        x = self.embeddings.token_embedding(ids) + self.embeddings.position_embedding.weight[None]
        for l in self.encoder.layers:
            x = l(x, self.heads)
        return self.final_layer_norm(x)


# ---------------------------------------------------------------- UNet

def timestep_embedding(t, dim):
    """[B] -> [B, dim], cos first, as sd_ref.py / ldm (flip_sin_to_cos)."""
    half = dim // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    a = t.to(torch.float64)[:, None] * f[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1).to(torch.float32)


def _zero(m):
    nn.init.zeros_(m.weight)
    if m.bias is not None:
        nn.init.zeros_(m.bias)
    return m


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tch):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(32, cin, 1e-5), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), Linear(tch, cout))
        self.out_layers = nn.Sequential(nn.GroupNorm(32, cout, 1e-5), nn.SiLU(), nn.Identity(),
                                        _zero(nn.Conv2d(cout, cout, 3, padding=1)))
        self.skip_connection = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        h = self.out_layers(h)
        return (self.skip_connection(x) if self.skip_connection is not None else x) + h


class _CrossAttn(nn.Module):
    def __init__(self, c, kv):
        super().__init__()
        self.to_q = Linear(c, c, bias=False)
        self.to_k = Linear(kv, c, bias=False)
        self.to_v = Linear(kv, c, bias=False)
        self.to_out = nn.Sequential(Linear(c, c))

    def forward(self, x, ctx, heads):
        return self.to_out(attention(self.to_q(x), self.to_k(ctx), self.to_v(ctx), heads))


class _GEGLU(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj = Linear(c, 8 * c)

    def forward(self, x):
        a, g = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(g)


class _FF(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.net = nn.Sequential(_GEGLU(c), nn.Identity(), Linear(4 * c, c))


class _TBlock(nn.Module):
    def __init__(self, c, ctx):
        super().__init__()
        self.attn1 = _CrossAttn(c, c)
        self.ff = _FF(c)
        self.attn2 = _CrossAttn(c, ctx)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(c) for _ in range(3))


class SpatialTransformer(nn.Module):
    def __init__(self, c, ctx, heads):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(32, c, 1e-6)
        self.proj_in = nn.Conv2d(c, c, 1)
        self.transformer_blocks = nn.ModuleList([_TBlock(c, ctx)])
        self.proj_out = _zero(nn.Conv2d(c, c, 1))

    def forward(self, x, ctx):
        B, C, H, W = x.shape
        h = self.proj_in(self.norm(x)).reshape(B, C, H * W).transpose(1, 2)
        t = self.transformer_blocks[0]
        n = t.norm1(h)
        h = t.attn1(n, n, self.heads) + h
        h = t.attn2(t.norm2(h), ctx, self.heads) + h
        h = t.ff.net(t.norm3(h)) + h
        return self.proj_out(h.transpose(1, 2).reshape(B, C, H, W)) + x


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.op = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TES(nn.ModuleList):
    """TimestepEmbedSequential: layers indexed 0, 1, ... as in the checkpoint."""

    def forward(self, x, emb, ctx):
        for l in self:
            if isinstance(l, ResBlock):
                x = l(x, emb)
            elif isinstance(l, SpatialTransformer):
                x = l(x, ctx)
            else:
                x = l(x)
        return x


class UNet(nn.Module):
    def __init__(self, u):
        super().__init__()
        ch, tch, ctx, heads = u["ch"], 4 * u["ch"], u["ctx"], u["heads"]
        self.ch = ch
        self.time_embed = nn.Sequential(Linear(ch, tch), nn.SiLU(), Linear(tch, tch))
        self.input_blocks = nn.ModuleList([TES([nn.Conv2d(u["in_ch"], ch, 3, padding=1)])])
        chans, cur = [ch], ch
        L = len(u["mult"])
        for lv, m in enumerate(u["mult"]):
            for _ in range(u["nres"]):
                layers = [ResBlock(cur, ch * m, tch)]
                cur = ch * m
                if lv in u["attn"]:
                    layers.append(SpatialTransformer(cur, ctx, heads))
                self.input_blocks.append(TES(layers))
                chans.append(cur)
            if lv != L - 1:
                self.input_blocks.append(TES([Downsample(cur)]))
                chans.append(cur)
        self.middle_block = TES([ResBlock(cur, cur, tch), SpatialTransformer(cur, ctx, heads),
                                 ResBlock(cur, cur, tch)])
        self.output_blocks = nn.ModuleList()
        for lv in reversed(range(L)):
            for r in range(u["nres"] + 1):
                skip = chans.pop()
                layers = [ResBlock(cur + skip, ch * u["mult"][lv], tch)]
                cur = ch * u["mult"][lv]
                if lv in u["attn"]:
                    layers.append(SpatialTransformer(cur, ctx, heads))
                if lv != 0 and r == u["nres"]:
                    layers.append(Upsample(cur))
                self.output_blocks.append(TES(layers))
        self.out = nn.Sequential(nn.GroupNorm(32, cur, 1e-5), nn.SiLU(), _zero(nn.Conv2d(cur, u["in_ch"], 3, padding=1)))

    def forward(self, x, t, ctx):
        emb = self.time_embed(timestep_embedding(t, self.ch))
        hs, h = [], x
        for b in self.input_blocks:
            h = b(h, emb, ctx)
            hs.append(h)
        h = self.middle_block(h, emb, ctx)
        for b in self.output_blocks:
            h = b(torch.cat([h, hs.pop()], 1), emb, ctx)
        return self.out(h)


# ---------------------------------------------------------------- VAE

class VRes(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, cin, 1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(32, cout, 1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if self.nin_shortcut is not None else x) + h


class VAttn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(32, c, 1e-6)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.norm(x)
        q, k, v = (m(h).reshape(B, C, H * W).transpose(1, 2) for m in (self.q, self.k, self.v))
        a = attention(q, k, v, 1)
        return x + self.proj_out(a.transpose(1, 2).reshape(B, C, H, W))


class VMid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = VRes(c, c), VAttn(c), VRes(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class _Conv(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=0 if False else 1)


class _Level(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.ModuleList()


class VEncoder(nn.Module):
    def __init__(self, v):
        super().__init__()
        ch, mult = v["ch"], v["mult"]
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cur = ch
        for i, m in enumerate(mult):
            lv = _Level()
            for _ in range(v["nres"]):
                lv.block.append(VRes(cur, ch * m))
                cur = ch * m
            if i != len(mult) - 1:
                lv.downsample = _Conv(cur)
                lv.downsample.conv.padding = (0, 0)
                lv.downsample.conv.stride = (2, 2)
            self.down.append(lv)
        self.mid = VMid(cur)
        self.norm_out = nn.GroupNorm(32, cur, 1e-6)
        self.conv_out = nn.Conv2d(cur, 2 * v["z"], 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for lv in self.down:
            for b in lv.block:
                h = b(h)
            if hasattr(lv, "downsample"):
                h = lv.downsample.conv(F.pad(h, (0, 1, 0, 1)))
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VDecoder(nn.Module):
    def __init__(self, v):
        super().__init__()
        ch, mult = v["ch"], v["mult"]
        cur = ch * mult[-1]
        self.conv_in = nn.Conv2d(v["z"], cur, 3, padding=1)
        self.mid = VMid(cur)
        ups = {}
        for i in reversed(range(len(mult))):
            lv = _Level()
            for _ in range(v["nres"] + 1):
                lv.block.append(VRes(cur, ch * mult[i]))
                cur = ch * mult[i]
            if i != 0:
                lv.upsample = _Conv(cur)
            ups[i] = lv
        self.up = nn.ModuleList(ups[i] for i in range(len(mult)))
        self.norm_out = nn.GroupNorm(32, cur, 1e-6)
        self.conv_out = nn.Conv2d(cur, 3, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for lv in reversed(self.up):
            for b in lv.block:
                h = b(h)
            if hasattr(lv, "upsample"):
                h = lv.upsample.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class VAE(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.encoder = VEncoder(v)
        self.decoder = VDecoder(v)
        self.quant_conv = nn.Conv2d(2 * v["z"], 2 * v["z"], 1)
        # Start with a small posterior std (e^-3): with std 1 the decoder
        # would first see mostly noise and learn very slowly.
        with torch.no_grad():
            self.quant_conv.bias[v["z"]:] = -6.0
        self.post_quant_conv = nn.Conv2d(v["z"], v["z"], 1)

    def encode(self, x):
        """image [-1,1] -> (mean, logvar) of the unscaled latent."""
        m = self.quant_conv(self.encoder(x))
        mean, logvar = m.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


class SD(nn.Module):
    """Root whose state_dict keys are the single-file checkpoint keys."""

    def __init__(self, cfg):
        super().__init__()
        self.cond_stage_model = nn.Module()
        self.cond_stage_model.transformer = nn.Module()
        self.cond_stage_model.transformer.text_model = TextModel(cfg["clip"])
        self.model = nn.Module()
        self.model.diffusion_model = UNet(cfg["unet"])
        self.first_stage_model = VAE(cfg["vae"])

    @property
    def text(self):
        return self.cond_stage_model.transformer.text_model

    @property
    def unet(self):
        return self.model.diffusion_model

    @property
    def vae(self):
        return self.first_stage_model


def alphas_cumprod():
    b = np.linspace(math.sqrt(0.00085), math.sqrt(0.012), 1000, dtype=np.float64) ** 2
    return np.cumprod(1.0 - b)


def ddpm_sample(sd, ctx_c, ctx_u, shape, steps, cfg, gen, scale):
    """DDPM respaced to `steps` (as sd_ref.py / the engine); returns decoded images in [-1,1]."""
    ac = alphas_cumprod()
    x = torch.randn(shape, generator=gen)
    stride = 1000 // steps
    B = shape[0]
    for i in range(steps):
        t = (steps - 1 - i) * stride
        tt = torch.full((2 * B,), float(t))
        e = sd.unet(torch.cat([x, x]), tt, torch.cat([ctx_c, ctx_u]))
        eps = e[B:] + cfg * (e[:B] - e[B:])
        prev = t - stride
        ab, abp = ac[t], (ac[prev] if prev >= 0 else 1.0)
        a = ab / abp
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        x = math.sqrt(abp) * (1 - a) / (1 - ab) * x0 + math.sqrt(a) * (1 - abp) / (1 - ab) * x
        if t > 0:
            x = x + math.sqrt((1 - abp) / (1 - ab) * (1 - a)) * torch.randn(shape, generator=gen)
    return sd.vae.decode(x / scale)
