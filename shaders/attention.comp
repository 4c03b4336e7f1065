#version 450
// Fused attention (flash style): out = softmax(scale q k^T) v per head,
// online softmax in fp32, scores never stored. A workgroup of 64 threads
// takes QB = 64 / TPQ queries of one (batch, head); each query's head dim is
// split over TPQ threads (DPT = D / TPQ elements each, so large heads like
// the VAE's 512 stay in registers), whose partial dot products meet in
// shared memory. Key/value tiles of KT rows are staged in shared memory.
// Short loops over the head slice are unrolled; the key loops are not (huge
// unrolls compile slowly). lavapipe stops an invocation after 65535 loop
// iterations in total, so per tile only ~3 KT rolled iterations count.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint D = 64;
layout(constant_id = 1) const uint KT = 16;
layout(constant_id = 2) const uint CAUSAL = 0;
layout(constant_id = 3) const uint TPQ = 1;
const uint QB = 64 / TPQ;
const uint DPT = D / TPQ;

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
shared float part[64 * KT];

void main() {
    uint l = gl_LocalInvocationID.x;
    uint ql = l / TPQ, sub = l % TPQ;
    uint i = gl_WorkGroupID.x * QB + ql;
    uint bh = gl_WorkGroupID.y;
    uint b = bh / p.H, h = bh % p.H;
    uint hd = p.H * D;

    // this thread's slice of the head: elements sub, sub + TPQ, ...
    float q[DPT], acc[DPT];
    uint qbase = (b * p.Lq + min(i, p.Lq - 1)) * hd + h * D + sub;
    [[unroll]] for (uint j = 0; j < DPT; j++) {
        q[j] = LD(qin[p.oq + qbase + TPQ * j]) * p.scale;
        acc[j] = 0.0;
    }
    float m = SD_LARGE_NEG, lsum = 0.0;

    uint kend = p.Lk;
    if (CAUSAL != 0) kend = min(p.Lk, gl_WorkGroupID.x * QB + QB);
    for (uint j0 = 0; j0 < kend; j0 += KT) {
        [[unroll]] for (uint r = 0; r < (KT * D + 63) / 64; r++) {
            uint e = l + 64 * r;
            if (e < KT * D) {
                uint jj = e / D, d = e % D;
                uint kb = (b * p.Lk + min(j0 + jj, p.Lk - 1)) * hd + h * D + d;
                Ks[e] = LD(kin[p.ok + kb]);
                Vs[e] = LD(vin[p.ov + kb]);
            }
        }
        barrier();
        for (uint jj = 0; jj < KT; jj++) {
            float dot = 0.0;
            [[unroll]] for (uint j = 0; j < DPT; j++) dot += q[j] * Ks[jj * D + sub + TPQ * j];
            part[l * KT + jj] = dot;
        }
        barrier();
        // every thread of a query sums the partials in the same order, so
        // all of them agree on the scores and the running max
        float s[KT];
        float tmax = SD_LARGE_NEG;
        for (uint jj = 0; jj < KT; jj++) {
            uint j = j0 + jj;
            float dot = 0.0;
            [[unroll]] for (uint t = 0; t < TPQ; t++) dot += part[(ql * TPQ + t) * KT + jj];
            bool ok = j < p.Lk && (CAUSAL == 0 || j <= i);
            s[jj] = ok ? dot : SD_LARGE_NEG;
            tmax = max(tmax, s[jj]);
        }
        if (tmax > 0.5 * SD_LARGE_NEG) {
            float mnew = max(m, tmax);
            float corr = exp(m - mnew);
            lsum *= corr;
            [[unroll]] for (uint j = 0; j < DPT; j++) acc[j] *= corr;
            for (uint jj = 0; jj < KT; jj++) {
                float pj = s[jj] > 0.5 * SD_LARGE_NEG ? exp(s[jj] - mnew) : 0.0;
                lsum += pj;
                [[unroll]] for (uint j = 0; j < DPT; j++) acc[j] += pj * Vs[jj * D + sub + TPQ * j];
            }
            m = mnew;
        }
        barrier();
    }
    if (i < p.Lq) {
        float inv = 1.0 / lsum;
        uint ob = (b * p.Lq + i) * hd + h * D + sub;
        [[unroll]] for (uint j = 0; j < DPT; j++) outp[p.oo + ob + TPQ * j] = ST(acc[j] * inv);
    }
}
