#version 450
// GROUP_NORM and LAYER_NORM (layer norm = group norm with S = 1, G = 1 over
// rows). Statistics in fp32, mean first and then the centred sum of squares
// (no E[x^2] - E[x]^2 cancellation); optional fused SiLU.
// MODE 0: one workgroup per (batch, group) does everything (small groups).
// Large groups (VAE at 512x512: 1M elements per group, only 32 groups) are
// split so that the whole GPU works on them:
// MODE 1: workgroup (chunk, group) writes its chunk's (mean, M2) to scratch;
// MODE 2: one thread per group merges the chunks (Chan et al.) into
//         (mean, rstd); MODE 3: element-wise normalise + affine (+ SiLU).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint SILU = 0;
layout(constant_id = 1) const uint MODE = 0;

TENSOR(0, outp)
TENSOR(1, xin)
TENSOR(2, gamma)
TENSOR(3, beta)
layout(std430, binding = 4) buffer Scratch { float scratch[]; };

layout(push_constant) uniform P {
    uint S, C, G, Cg;
    uint oo, ox, og, ob;
    float eps;
    uint chunks, chunk, osc, ngroups, n_total;
} p;

shared float red[256];

float reduce_sum(float v) {
    uint l = gl_LocalInvocationID.x;
    red[l] = v;
    barrier();
    for (uint s = 128; s > 0; s >>= 1) {
        if (l < s) red[l] += red[l + s];
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

// index of element j of group g in batch b (j runs over spatial x C/G)
uint elem(uint b, uint g, uint j) { return b * p.S * p.C + (j / p.Cg) * p.C + g * p.Cg + j % p.Cg; }

float normalise(uint idx, float mean, float rstd) {
    uint c = idx % p.C;
    float v = (LD(xin[p.ox + idx]) - mean) * rstd * LD(gamma[p.og + c]) + LD(beta[p.ob + c]);
    if (SILU != 0) v = v * sd_sigmoid(v);
    return v;
}

void main() {
    uint l = gl_LocalInvocationID.x;
    uint n = p.S * p.Cg;
    if (MODE == 0 || MODE == 1) {
        uint grp = MODE == 0 ? gl_WorkGroupID.x : gl_WorkGroupID.y;
        uint b = grp / p.G, g = grp % p.G;
        uint j0 = MODE == 0 ? 0 : gl_WorkGroupID.x * p.chunk;
        uint j1 = MODE == 0 ? n : min(n, j0 + p.chunk);
        float s = 0.0;
        for (uint j = j0 + l; j < j1; j += 256) s += LD(xin[p.ox + elem(b, g, j)]);
        float cnt = float(j1 - j0);
        float mean = reduce_sum(s) / cnt;
        float q = 0.0;
        for (uint j = j0 + l; j < j1; j += 256) {
            float d = LD(xin[p.ox + elem(b, g, j)]) - mean;
            q += d * d;
        }
        float m2 = reduce_sum(q);
        if (MODE == 1) {
            if (l == 0) {
                scratch[p.osc + (grp * p.chunks + gl_WorkGroupID.x) * 2] = mean;
                scratch[p.osc + (grp * p.chunks + gl_WorkGroupID.x) * 2 + 1] = m2;
            }
            return;
        }
        float rstd = inversesqrt(m2 / float(n) + p.eps);
        for (uint j = l; j < n; j += 256) {
            uint idx = elem(b, g, j);
            outp[p.oo + idx] = ST(normalise(idx, mean, rstd));
        }
    } else if (MODE == 2) {
        uint grp = gl_GlobalInvocationID.x;
        if (grp >= p.ngroups) return;
        float cnt = 0.0, mean = 0.0, m2 = 0.0;
        for (uint c = 0; c < p.chunks; c++) {
            float nb = float(min(n, (c + 1) * p.chunk) - c * p.chunk);
            float mb = scratch[p.osc + (grp * p.chunks + c) * 2];
            float qb = scratch[p.osc + (grp * p.chunks + c) * 2 + 1];
            float tot = cnt + nb, delta = mb - mean;
            mean += delta * nb / tot;
            m2 += qb + delta * delta * cnt * nb / tot;
            cnt = tot;
        }
        uint fin = p.osc + p.ngroups * p.chunks * 2;
        scratch[fin + grp * 2] = mean;
        scratch[fin + grp * 2 + 1] = inversesqrt(m2 / float(n) + p.eps);
    } else {
        uint fin = p.osc + p.ngroups * p.chunks * 2;
        uint stride = gl_NumWorkGroups.x * 256;
        for (uint i = gl_GlobalInvocationID.x; i < p.n_total; i += stride) {
            uint b = i / (p.S * p.C), c = i % p.C;
            uint grp = b * p.G + c / p.Cg;
            outp[p.oo + i] = ST(normalise(i, scratch[fin + grp * 2], scratch[fin + grp * 2 + 1]));
        }
    }
}
