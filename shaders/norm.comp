#version 450
// GROUP_NORM and LAYER_NORM (layer norm = group norm with S = 1, G = 1 over
// rows). One workgroup per (batch, group); statistics in fp32, two passes
// (mean, then centred variance) for accuracy; optional fused SiLU.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint SILU = 0;

TENSOR(0, outp)
TENSOR(1, xin)
TENSOR(2, gamma)
TENSOR(3, beta)

layout(push_constant) uniform P {
    uint S, C, G, Cg;
    uint oo, ox, og, ob;
    float eps;
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

void main() {
    uint grp = gl_WorkGroupID.x;
    uint b = grp / p.G, g = grp % p.G;
    uint n = p.S * p.Cg;
    uint base = b * p.S * p.C + g * p.Cg;
    uint l = gl_LocalInvocationID.x;

    float s = 0.0;
    for (uint j = l; j < n; j += 256) s += LD(xin[p.ox + base + (j / p.Cg) * p.C + j % p.Cg]);
    float mean = reduce_sum(s) / float(n);
    float q = 0.0;
    for (uint j = l; j < n; j += 256) {
        float d = LD(xin[p.ox + base + (j / p.Cg) * p.C + j % p.Cg]) - mean;
        q += d * d;
    }
    float rstd = inversesqrt(reduce_sum(q) / float(n) + p.eps);
    for (uint j = l; j < n; j += 256) {
        uint c = g * p.Cg + j % p.Cg;
        uint idx = base + (j / p.Cg) * p.C + j % p.Cg;
        float v = (LD(xin[p.ox + idx]) - mean) * rstd * LD(gamma[p.og + c]) + LD(beta[p.ob + c]);
        if (SILU != 0) v = v * sd_sigmoid(v);
        outp[p.oo + idx] = ST(v);
    }
}
