#version 450
// Fused attention (flash style): out = softmax(scale q k^T) v per head,
// online softmax in fp32, scores never stored. One thread per query row,
// 64 queries per workgroup; key/value tiles of KT rows staged in shared
// memory. Head dim D and the tile are specialisation constants.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint D = 64;
layout(constant_id = 1) const uint KT = 16;
layout(constant_id = 2) const uint CAUSAL = 0;

TENSOR(0, outp)
TENSOR(1, qin)
TENSOR(2, kin)
TENSOR(3, vin)

layout(push_constant) uniform P {
    uint Lq, Lk, H;
    uint oo, oq, ok, ov;
    float scale;
} p;

shared float Ks[KT * D];
shared float Vs[KT * D];

void main() {
    uint l = gl_LocalInvocationID.x;
    uint i = gl_WorkGroupID.x * 64 + l;
    uint bh = gl_WorkGroupID.y;
    uint b = bh / p.H, h = bh % p.H;
    uint hd = p.H * D;
    bool valid = i < p.Lq;

    float q[D], acc[D];
    uint qbase = (b * p.Lq + min(i, p.Lq - 1)) * hd + h * D;
    for (uint d = 0; d < D; d++) {
        q[d] = LD(qin[p.oq + qbase + d]) * p.scale;
        acc[d] = 0.0;
    }
    float m = SD_LARGE_NEG, lsum = 0.0;

    uint kend = p.Lk;
    if (CAUSAL != 0) kend = min(p.Lk, gl_WorkGroupID.x * 64 + 64);
    for (uint j0 = 0; j0 < kend; j0 += KT) {
        for (uint e = l; e < KT * D; e += 64) {
            uint jj = e / D, d = e % D, j = j0 + jj;
            uint kb = (b * p.Lk + min(j, p.Lk - 1)) * hd + h * D + d;
            Ks[e] = LD(kin[p.ok + kb]);
            Vs[e] = LD(vin[p.ov + kb]);
        }
        barrier();
        if (valid) {
            float s[KT];
            float tmax = SD_LARGE_NEG;
            for (uint jj = 0; jj < KT; jj++) {
                uint j = j0 + jj;
                bool ok = j < p.Lk && (CAUSAL == 0 || j <= i);
                float dot = 0.0;
                for (uint d = 0; d < D; d++) dot += q[d] * Ks[jj * D + d];
                s[jj] = ok ? dot : SD_LARGE_NEG;
                tmax = max(tmax, s[jj]);
            }
            if (tmax > 0.5 * SD_LARGE_NEG) {
                float mnew = max(m, tmax);
                float corr = exp(m - mnew);
                lsum *= corr;
                for (uint d = 0; d < D; d++) acc[d] *= corr;
                for (uint jj = 0; jj < KT; jj++) {
                    float pj = s[jj] > 0.5 * SD_LARGE_NEG ? exp(s[jj] - mnew) : 0.0;
                    lsum += pj;
                    for (uint d = 0; d < D; d++) acc[d] += pj * Vs[jj * D + d];
                }
                m = mnew;
            }
        }
        barrier();
    }
    if (valid) {
        float inv = 1.0 / lsum;
        uint ob = (b * p.Lq + i) * hd + h * D;
        for (uint d = 0; d < D; d++) outp[p.oo + ob + d] = ST(acc[d] * inv);
    }
}
