#version 450
// GROUP_NORM and LAYER_NORM (layer norm = group norm with S = 1, G = 1 over
// rows). Statistics in fp32, mean first and then the centred sum of squares
// (no E[x^2] - E[x]^2 cancellation); optional fused SiLU.
// MODE 0: one workgroup per (batch, group) does everything (small groups).
// Large groups (UNet at 64x64: 40960 elements per group but only 64 groups;
// VAE at 512x512: 1M per group) are split so that the whole GPU works on
// them, in two passes over the data:
// MODE 1: workgroup (chunk, group) writes its chunk's (mean, M2) to scratch
//         (the chunk is re-read from cache for M2);
// MODE 2: workgroup (block, batch) merges the chunks of each of the batch's
//         groups (Chan et al.) into shared memory, then normalises its block
//         of elements + affine (+ SiLU).
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
shared float gmean[256], grstd[256];

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
    } else {
        // MODE 2: stats of every group of batch b (G <= 256, host-checked)
        uint b = gl_WorkGroupID.y;
        for (uint g = l; g < p.G; g += 256) {
            uint grp = b * p.G + g;
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
            gmean[g] = mean;
            grstd[g] = inversesqrt(m2 / float(n) + p.eps);
        }
        barrier();
        uint per = p.S * p.C, base = b * per;
        uint stride = gl_NumWorkGroups.x * 256;
        for (uint i = gl_WorkGroupID.x * 256 + l; i < per; i += stride) {
            uint g = (i % p.C) / p.Cg;
            outp[p.oo + base + i] = ST(normalise(base + i, gmean[g], grstd[g]));
        }
    }
}
