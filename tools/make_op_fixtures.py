#!/usr/bin/python3
"""Writes the op golden fixtures in tests/data/ops/ (read by tests/test_ops_ref.c).

For every op in src/core/ops.def, a few small cases: inputs (float32 / int32
.npy, channels-last as the graph uses them) and the expected output computed
with PyTorch from the same float32 values in float64 (so the golden is the
exact result; an fp32 implementation should land within ~1e-6 relative L2).
Convolutions permute NHWC -> NCHW for F.conv2d and back. A manifest.json
lists each case: op, inputs (kind input/weight, weight dtype to use in the
graph), integer and float params, step and step count, output file.

Usage: /usr/bin/python3 tools/make_op_fixtures.py [outdir]   (deterministic)
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ops")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(1234)
cases = []


def rnd(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape, dtype=torch.float32) * (hi - lo) + lo)


def f16(t):  # values exactly representable in half (the graph gets an F16 weight)
    return t.half().float()


def bf16(t):
    return t.bfloat16().float()


def add_case(name, op, inputs, out, i=(), f=(), step=0, steps=1, tol=1e-5):
    """inputs: list of (tensor or None, kind, dtype) with kind 'input'/'weight'."""
    ins = []
    for k, item in enumerate(inputs):
        if item is None:
            ins.append(None)
            continue
        t, kind, dt = item
        fn = "%s.in%d.npy" % (name, k)
        arr = t.numpy()
        arr = arr.astype(np.int32) if arr.dtype.kind in "iu" else arr.astype(np.float32)
        np.save(os.path.join(OUT, fn), arr)
        ins.append({"file": fn, "kind": kind, "dtype": dt})
    ofn = "%s.out.npy" % name
    np.save(os.path.join(OUT, ofn), out.to(torch.float32).numpy())
    cases.append({"name": name, "op": op, "inputs": ins, "i": list(i), "f": list(f),
                  "step": step, "steps": steps, "out": ofn, "tol": tol})


D = torch.float64
I = lambda t: (t, "input", "f32")
W = lambda t, dt="f32": (t, "weight", dt)

# ---- matmul: out = x w^T + bias + residual
for name, xs, n, bias, res, dt in [("matmul_small", (7, 13), 5, False, False, "f32"),
                                   ("matmul_bias_res", (2, 9, 40), 24, True, True, "f32"),
                                   ("matmul_f16", (5, 64), 33, True, False, "f16"),
                                   ("matmul_bf16", (3, 4, 32), 16, True, True, "bf16")]:
    x = rnd(*xs)
    w = rnd(n, xs[-1]) / math.sqrt(xs[-1])
    rq = f16 if dt == "f16" else bf16 if dt == "bf16" else (lambda t: t)
    w = rq(w)
    b = rq(rnd(n)) if bias else None
    r = rnd(*xs[:-1], n) if res else None
    y = F.linear(x.to(D), w.to(D), b.to(D) if bias else None)
    if res:
        y = y + r.to(D)
    add_case(name, "matmul", [I(x), W(w, dt), W(b, dt) if bias else None, I(r) if res else None], y)

# ---- conv2d (NHWC activations, OIHW weights)
for name, xs, co, k, stride, pad, bias, res, dt in [
        ("conv3x3_s1", (1, 7, 9, 5), 6, 3, 1, (1, 1, 1, 1), True, False, "f32"),
        ("conv3x3_s2_asym", (2, 8, 8, 4), 8, 3, 2, (0, 0, 1, 1), True, False, "f32"),
        ("conv3x3_s2_p1", (1, 9, 7, 3), 5, 3, 2, (1, 1, 1, 1), False, False, "f16"),
        ("conv1x1_res", (2, 4, 5, 12), 20, 1, 1, (0, 0, 0, 0), True, True, "f32")]:
    x = rnd(*xs)
    w = rnd(co, xs[3], k, k) / math.sqrt(xs[3] * k * k)
    rq = f16 if dt == "f16" else (lambda t: t)
    w = rq(w)
    b = rq(rnd(co)) if bias else None
    pt, pl, pb, pr = pad
    xp = F.pad(x.permute(0, 3, 1, 2).to(D), (pl, pr, pt, pb))
    y = F.conv2d(xp, w.to(D), b.to(D) if bias else None, stride=stride).permute(0, 2, 3, 1)
    r = rnd(*y.shape) if res else None
    if res:
        y = y + r.to(D)
    add_case(name, "conv2d", [I(x), W(w, dt), W(b, dt) if bias else None, I(r) if res else None],
             y.contiguous(), i=(stride, pt, pl, pb, pr))

# ---- group_norm over NHWC: permute to NCHW for F.group_norm
for name, xs, groups, silu in [("group_norm", (2, 5, 6, 16), 4, 0),
                               ("group_norm_silu", (1, 4, 3, 32), 8, 1),
                               ("group_norm_seq", (2, 7, 12), 3, 0)]:
    x = rnd(*xs, lo=-2, hi=3)
    g = rnd(xs[-1], lo=0.5, hi=1.5)
    b = rnd(xs[-1], lo=-0.5, hi=0.5)
    xc = x.to(D).movedim(-1, 1)
    y = F.group_norm(xc, groups, g.to(D), b.to(D), eps=1e-5).movedim(1, -1)
    if silu:
        y = F.silu(y)
    add_case(name, "group_norm", [I(x), W(g), W(b)], y.contiguous(), i=(groups, silu), f=(1e-5,))

# ---- layer_norm
for name, xs in [("layer_norm", (2, 11, 24)), ("layer_norm_2d", (3, 40))]:
    x = rnd(*xs, lo=-2, hi=3)
    g = rnd(xs[-1], lo=0.5, hi=1.5)
    b = rnd(xs[-1], lo=-0.5, hi=0.5)
    y = F.layer_norm(x.to(D), (xs[-1],), g.to(D), b.to(D), eps=1e-5)
    add_case(name, "layer_norm", [I(x), W(g), W(b)], y, f=(1e-5,))


# ---- attention: softmax(scale q k^T) v per head, optional causal mask
def attention(q, k, v, heads, causal, scale):
    B, Lq, C = q.shape
    Lk = k.shape[1]
    dh = C // heads
    qh = q.to(D).view(B, Lq, heads, dh).transpose(1, 2)
    kh = k.to(D).view(B, Lk, heads, dh).transpose(1, 2)
    vh = v.to(D).view(B, Lk, heads, dh).transpose(1, 2)
    s = scale * qh @ kh.transpose(-1, -2)
    if causal:
        s = s.masked_fill(torch.ones(Lq, Lk, dtype=torch.bool).triu(1), float("-inf"))
    return (torch.softmax(s, -1) @ vh).transpose(1, 2).reshape(B, Lq, C)


# "peaked": large q/k make scores up to ~100, which overflow exp() unless the
# running maximum is subtracted
for name, B, Lq, Lk, C, heads, causal, rg in [("attn_self", 2, 19, 19, 32, 1, 0, 2),
                                              ("attn_causal_h4", 1, 23, 23, 32, 4, 1, 2),
                                              ("attn_cross_h8", 2, 10, 77, 64, 8, 0, 2),
                                              ("attn_long", 1, 70, 70, 16, 2, 0, 2),
                                              ("attn_peaked", 1, 9, 300, 32, 1, 0, 8),
                                              ("attn_peaked_causal", 1, 40, 40, 32, 2, 1, 8)]:
    q, k, v = rnd(B, Lq, C, lo=-rg, hi=rg), rnd(B, Lk, C, lo=-rg, hi=rg), rnd(B, Lk, C)
    scale = 1.0 / math.sqrt(C // heads)
    add_case(name, "attention", [I(q), I(k), I(v)], attention(q, k, v, heads, causal, scale),
             i=(heads, causal), f=(scale,))

# ---- element-wise
x = rnd(2, 6, 20, lo=-4, hi=4)
add_case("geglu", "geglu", [I(x)], x[..., :10].to(D) * F.gelu(x[..., 10:].to(D)))
x = rnd(3, 50, lo=-5, hi=5)
add_case("gelu", "gelu", [I(x)], F.gelu(x.to(D)))
add_case("quick_gelu", "quick_gelu", [I(x)], x.to(D) * torch.sigmoid(1.702 * x.to(D)))
add_case("silu", "silu", [I(x)], F.silu(x.to(D)))
add_case("scale", "scale", [I(x)], x.to(D) * -0.7 + 0.25, f=(-0.7, 0.25))

# ---- broadcasting add/mul
for name, op, a_s, b_s in [("add_bcast_hw", "add", (2, 5, 7, 16), (2, 1, 1, 16)),
                           ("add_vec", "add", (2, 9, 16), (16,)),
                           ("add_same", "add", (3, 4, 5), (3, 4, 5)),
                           ("mul_bcast_col", "mul", (2, 9, 6), (9, 1)),
                           ("mul_bcast_hw", "mul", (2, 3, 4, 8), (2, 1, 1, 8))]:
    a, b = rnd(*a_s), rnd(*b_s)
    y = a.to(D) + b.to(D) if op == "add" else a.to(D) * b.to(D)
    add_case(name, op, [I(a), I(b)], y)

# ---- data movement
x = rnd(2, 3, 4, 5)
add_case("upsample2x", "upsample2x", [I(x)],
         F.interpolate(x.permute(0, 3, 1, 2), scale_factor=2, mode="nearest").permute(0, 2, 3, 1)
         .contiguous())
a, b = rnd(2, 3, 4, 5), rnd(2, 3, 4, 7)
add_case("concat_c", "concat", [I(a), I(b)], torch.cat([a, b], 3), i=(3,))
a, b = rnd(2, 6, 8), rnd(1, 6, 8)
add_case("concat_b", "concat", [I(a), I(b)], torch.cat([a, b], 0), i=(0,))
a, b = rnd(2, 3, 8), rnd(2, 5, 8)
add_case("concat_l", "concat", [I(a), I(b)], torch.cat([a, b], 1), i=(1,))

ids = torch.randint(0, 40, (2, 9), dtype=torch.int32)
table = rnd(40, 12)
add_case("embedding", "embedding", [(ids, "input", "i32"), W(table)], F.embedding(ids.long(), table))
add_case("embedding_f16", "embedding", [(ids, "input", "i32"), W(f16(table), "f16")],
         F.embedding(ids.long(), f16(table)))


def timestep_embedding(t, dim):  # [cos, sin] (diffusers flip_sin_to_cos=True, shift 0)
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=D) / half)
    arg = t.to(D)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], 1)


t = torch.tensor([0.0, 1.0, 261.0, 999.0], dtype=torch.float32)
add_case("timestep_embed", "timestep_embed", [I(t)], timestep_embedding(t, 64), i=(64,))

table = rnd(5, 3, 4)
add_case("step_select_0", "step_select", [I(table)], table[0], step=0)
add_case("step_select_3", "step_select", [W(table)], table[3], step=3)

eps = rnd(4, 3, 2, 4, lo=-2, hi=2)
scale = torch.tensor([7.5], dtype=torch.float32)
add_case("cfg_combine", "cfg_combine", [I(eps), I(scale)],
         eps[2:].to(D) + 7.5 * (eps[:2].to(D) - eps[2:].to(D)))

# two registers (x and one history value) stacked along the batch; the
# coefficients start at offset 1 of the row: out = c1 e + c2 z + c3 S0 + c4 S1
regs, e, z = rnd(4, 3, 3, 4), rnd(2, 3, 3, 4), rnd(2, 3, 3, 4)
coef = torch.tensor([9.0, -0.13, 0.05, 0.98, 0.2, 9.0], dtype=torch.float32)
c = coef.double()
add_case("sampler_step", "sampler_step", [I(regs), I(e), I(z), I(coef)],
         c[1] * e.to(D) + c[2] * z.to(D) + c[3] * regs[:2].to(D) + c[4] * regs[2:].to(D), i=(1, 2))

x, dst = rnd(3, 7), rnd(3, 7)
add_case("copy", "copy", [I(x), I(dst)], x)

# drawn last, so the cases above keep their values
x = rnd(3, 50, lo=-5, hi=5)
add_case("relu", "relu", [I(x)], torch.relu(x.to(D)))
add_case("tanh", "tanh", [I(x)], torch.tanh(x.to(D)))

with open(os.path.join(OUT, "manifest.json"), "w") as fh:
    json.dump({"cases": cases}, fh, indent=1)
total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
print("wrote %d cases, %d bytes, to %s" % (len(cases), total, OUT))
