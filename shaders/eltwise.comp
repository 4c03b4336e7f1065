#version 450
// Element-wise and data-movement ops, one output element per invocation
// (grid-stride loop, so any size fits the dispatch limits). The op is a
// specialisation constant: its index in src/core/ops.def (ops.glsl is
// generated from that list at build time).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "ops.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint OP = 0;

TENSOR(0, outp)
TENSOR(1, a)
TENSOR(2, b)
TENSOR(3, c)
TENSOR(4, d)
layout(std430, binding = 5) buffer State { uint step; uint cancel; } state;
#if F16
// In f16 mode, small tensors that only element-wise ops touch (sampler
// coefficients, timesteps, the latent state) stay fp32 ("wide"): the same
// bindings aliased as float, chosen per binding by the push constant mask.
layout(std430, binding = 0) buffer O32 { float outp32[]; };
layout(std430, binding = 1) buffer A32 { float a32[]; };
layout(std430, binding = 2) buffer B32 { float b32[]; };
layout(std430, binding = 3) buffer C32 { float c32[]; };
layout(std430, binding = 4) buffer D32 { float d32[]; };
#define LDW(name, bit, idx) (((p.wide >> bit) & 1u) != 0 ? name##32[idx] : float(name[idx]))
#else
#define LDW(name, bit, idx) float(name[idx])
#endif

layout(push_constant) uniform P {
    uint n;
    uint oo, oa, ob, oc, od;
    uint q[8];
    float f0, f1;
    uint wide; // bit k: binding k holds fp32 (f16 mode only)
} p;

float value(uint i) {
    if (OP == OP_COPY) return LDW(a, 1, p.oa + i);
    if (OP == OP_SCALE) return LDW(a, 1, p.oa + i) * p.f0 + p.f1;
    if (OP == OP_GELU) return sd_gelu(LDW(a, 1, p.oa + i));
    if (OP == OP_QUICK_GELU) { float x = LDW(a, 1, p.oa + i); return x * sd_sigmoid(1.702 * x); }
    if (OP == OP_SILU) { float x = LDW(a, 1, p.oa + i); return x * sd_sigmoid(x); }
    if (OP == OP_RELU) { float x = LDW(a, 1, p.oa + i); return x < 0.0 ? 0.0 : x; }
    // tanh(15) is 1 in fp32; the clamp keeps drivers' exp-based tanh finite
    if (OP == OP_TANH) return tanh(clamp(LDW(a, 1, p.oa + i), -15.0, 15.0));
    if (OP == OP_GEGLU) {
        uint N = p.q[0], r = i / N, k = i % N;
        return LDW(a, 1, p.oa + r * 2 * N + k) * sd_gelu(LDW(a, 1, p.oa + r * 2 * N + N + k));
    }
    if (OP == OP_ADD || OP == OP_MUL) {
        // output shape q[0..3] (left-padded with 1), b strides q[4..7] (0 where broadcast)
        uint i3 = i % p.q[3], t = i / p.q[3];
        uint i2 = t % p.q[2]; t /= p.q[2];
        uint i1 = t % p.q[1], i0 = t / p.q[1];
        float y = LDW(b, 2, p.ob + i0 * p.q[4] + i1 * p.q[5] + i2 * p.q[6] + i3 * p.q[7]);
        float x = LDW(a, 1, p.oa + i);
        return OP == OP_ADD ? x + y : x * y;
    }
    if (OP == OP_CFG_COMBINE) {
        float cond = LDW(a, 1, p.oa + i), unc = LDW(a, 1, p.oa + p.n + i);
        return unc + LDW(b, 2, p.ob) * (cond - unc);
    }
    if (OP == OP_SAMPLER_STEP) {
        // registers S = a [R][n], eps = b, noise = c (q[2] = present), coef = d from q[0]
        uint o = p.od + p.q[0];
        float v = LDW(d, 4, o) * LDW(b, 2, p.ob + i);
        if (p.q[2] != 0u) v += LDW(d, 4, o + 1u) * LDW(c, 3, p.oc + i);
        for (uint r = 0u; r < p.q[1]; r++) v += LDW(d, 4, o + 2u + r) * LDW(a, 1, p.oa + r * p.n + i);
        return v;
    }
    if (OP == OP_STEP_SELECT) {
        uint s = min(state.step, p.q[0] - 1);  // the host checks the range; never read past
        return LDW(a, 1, p.oa + s * p.n + i);
    }
    if (OP == OP_UPSAMPLE2X) {
        // input H, W, C, output Ho, Wo (2H or 2H - 1: cropped to a skip's size)
        uint H = p.q[0], W = p.q[1], C = p.q[2], Ho = p.q[3], Wo = p.q[4];
        uint ch = i % C, t = i / C;
        uint x = t % Wo; t /= Wo;
        uint y = t % Ho, bb = t / Ho;
        return LDW(a, 1, p.oa + ((bb * H + y / 2) * W + x / 2) * C + ch);
    }
    // OP_CONCAT: chunks of q[0] (from a) then q[1] (from b) elements per outer index
    uint tot = p.q[0] + p.q[1], o = i / tot, r = i % tot;
    return r < p.q[0] ? LDW(a, 1, p.oa + o * p.q[0] + r) : LDW(b, 2, p.ob + o * p.q[1] + r - p.q[0]);
}

void main() {
    uint stride = gl_NumWorkGroups.x * 256;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
#if F16
        if ((p.wide & 1u) != 0) {
            outp32[p.oo + i] = value(i);
            continue;
        }
#endif
        outp[p.oo + i] = ST(value(i));
    }
}
