#version 450
// ATTENTION on the matrix units (variants ATT_CM_* of vk_kernels.def; fp16
// storage, head dims up to 160): out = softmax(scale q k^T) v per head,
// scores and probabilities only in shared memory, fp32 softmax.
//
// A workgroup of WG subgroups takes BQ = WG x FM queries of one (batch,
// head); subgroup s owns query rows s*FM .. s*FM+FM-1. Q stays in shared
// memory (fp16, head dim zero-padded to DP, a multiple of 16). Keys and
// values come in blocks of BKV rows. Two passes over the keys:
//   1. S = Q K^T per block (fragments -> shared, fp32); each row's max of
//      scale * S;
//   2. S again, P = exp(scale * S - max) (fp32, summed per row in fp32,
//      stored fp16), O += P V in accumulator fragments.
// Recomputing S costs a third more products but keeps O in accumulators
// with no per-block rescaling (fragments have no portable per-row access),
// and the softmax is exact in fp32 as in the SIMT kernel.
// Finally O / rowsum, through shared memory, with bounds checks.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#include "coopmat.glsl"
#if !F16
#error attention_coop.comp takes fp16 storage only
#endif
#include "common.glsl"

layout(constant_id = 0) const uint D = 40;    // head dim
layout(constant_id = 1) const uint CAUSAL = 0;
layout(constant_id = 2) const uint BKV = 64;  // keys per block
layout(constant_id = 5) const uint FM = 16;
layout(constant_id = 6) const uint FN = 16;
layout(constant_id = 7) const uint FK = 16;
layout(constant_id = 8) const uint THREADS = WG * 32;
layout(local_size_x_id = 8) in;

TENSOR(0, outp)
TENSOR(1, qin)
TENSOR(2, kin)
TENSOR(3, vin)
layout(std430, binding = 1) buffer Q8 { uvec4 qin8[]; };
layout(std430, binding = 2) buffer K8 { uvec4 kin8[]; };
layout(std430, binding = 3) buffer V8 { uvec4 vin8[]; };

layout(push_constant) uniform P {
    uint Lq, Lk, H;
    uint oo, oq, ok, ov;
    float scale;
    uint vec; // 1: D and the offsets are multiples of 8 (uvec4 loads)
} p;

const uint BQ = WG * FM;
const uint DP = (D + 15) / 16 * 16;
const uint SROW = (DP + 8) / 8;           // uvec4 per Q / K / V row
const uint PROW = (BKV + 8) / 8;          // uvec4 per P row
const uint OFF_K = BQ * SROW;             // Q: BQ rows
const uint OFF_V = OFF_K + BKV * SROW;
const uint OFF_S = OFF_V + BKV * SROW;    // per subgroup FM x BKV fp32
const uint S_SG = FM * BKV / 4;
const uint OFF_P = OFF_S + WG * S_SG;     // per subgroup FM x BKV fp16
const uint P_SG = FM * PROW;
const uint OFF_ML = OFF_P + WG * P_SG;    // per subgroup FM maxima, FM sums (fp32)
const uint SH_WORDS = OFF_ML + WG * FM / 2;
shared uvec4 sh[SH_WORDS];
#include "coopmat_emu.glsl"

float ldf(uint w) { return uintBitsToFloat(sh[w >> 2][w & 3u]); }
void stf(uint w, float v) { sh[w >> 2][w & 3u] = floatBitsToUint(v); }

// 8 consecutive head elements d0..d0+7 of row `row` (zero past D / rows)
uvec4 load8(uint which, uint base, uint d0, bool ok) {
    if (!ok || d0 >= D) return uvec4(0);
    if (p.vec != 0) return which == 0 ? qin8[base / 8 + d0 / 8] : which == 1 ? kin8[base / 8 + d0 / 8]
                                                                           : vin8[base / 8 + d0 / 8];
    float h[8];
    [[unroll]] for (uint j = 0; j < 8; j++) {
        uint i = base + d0 + j;
        h[j] = d0 + j >= D ? 0.0 : which == 0 ? LD(qin[i]) : which == 1 ? LD(kin[i]) : LD(vin[i]);
    }
    return uvec4(packHalf2x16(vec2(h[0], h[1])), packHalf2x16(vec2(h[2], h[3])),
                 packHalf2x16(vec2(h[4], h[5])), packHalf2x16(vec2(h[6], h[7])));
}

// rows j0.. of K (which 1) or V (2) into shared
void load_kv(uint which, uint off, uint b, uint h, uint j0) {
    uint base0 = (which == 1 ? p.ok : p.ov) + h * D;
    for (uint e = gl_LocalInvocationID.x; e < BKV * (DP / 8); e += THREADS) {
        uint r = e / (DP / 8), d0 = (e % (DP / 8)) * 8, j = j0 + r;
        sh[off + r * SROW + d0 / 8] = load8(which, base0 + (b * p.Lk + min(j, p.Lk - 1)) * p.H * D, d0, j < p.Lk);
    }
}

// S = Q K^T for this subgroup's rows and the block in shared K -> S region
void scores(uint sg) {
    [[unroll]] for (uint jn = 0; jn < BKV / FN; jn++) {
        MAT_C s = CM_ZERO;
        [[unroll]] for (uint kk = 0; kk < DP / FK; kk++) {
            MAT_A qa;
            MAT_B kb;
            CM_LOAD_ROW(qa, sh, sg * FM * SROW + kk * FK / 8, SROW);
            CM_LOAD_COL(kb, sh, OFF_K + jn * FN * SROW + kk * FK / 8, SROW);
            s = CM_MAD(qa, kb, s);
        }
        CM_STORE_ROW(s, sh, OFF_S + sg * S_SG + jn * FN / 4, BKV / 4);
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
}

void main() {
    uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID, nl = gl_SubgroupSize;
    uint q0 = gl_WorkGroupID.x * BQ;
    uint bh = gl_WorkGroupID.y, b = bh / p.H, h = bh % p.H;
    uint hd = p.H * D;
    for (uint e = gl_LocalInvocationID.x; e < BQ * (DP / 8); e += THREADS) {
        uint r = e / (DP / 8), d0 = (e % (DP / 8)) * 8, q = q0 + r;
        sh[r * SROW + d0 / 8] = load8(0, p.oq + (b * p.Lq + min(q, p.Lq - 1)) * hd + h * D, d0, q < p.Lq);
    }
    uint ml = OFF_ML * 4 + sg * 2 * FM; // float index: maxima, then sums
    for (uint r = lane; r < FM; r += nl) {
        stf(ml + r, SD_LARGE_NEG);
        stf(ml + FM + r, 0.0);
    }
    uint kend = p.Lk;
    if (CAUSAL != 0) kend = min(p.Lk, q0 + BQ);
    uint sbase = (OFF_S + sg * S_SG) * 4;

    // pass 1: row maxima of scale * S
    for (uint j0 = 0; j0 < kend; j0 += BKV) {
        barrier(); // the previous block's K is no longer read
        load_kv(1, OFF_K, b, h, j0);
        barrier();
        scores(sg);
        for (uint r = lane; r < FM; r += nl) {
            uint q = q0 + sg * FM + r;
            float mx = ldf(ml + r);
            for (uint c = 0; c < BKV; c++) {
                uint j = j0 + c;
                if (j < p.Lk && (CAUSAL == 0 || j <= q)) mx = max(mx, p.scale * ldf(sbase + r * BKV + c));
            }
            stf(ml + r, mx);
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
    }

    // pass 2: P = exp(scale S - max), O += P V
    MAT_C o[DP / FN];
    [[unroll]] for (uint j = 0; j < DP / FN; j++) o[j] = CM_ZERO;
    uint pbase = OFF_P + sg * P_SG;
    for (uint j0 = 0; j0 < kend; j0 += BKV) {
        barrier();
        load_kv(1, OFF_K, b, h, j0);
        load_kv(2, OFF_V, b, h, j0);
        barrier();
        scores(sg);
        for (uint r = lane; r < FM; r += nl) {
            uint q = q0 + sg * FM + r;
            float mx = ldf(ml + r), l = 0.0;
            for (uint c = 0; c < BKV; c += 2) {
                float pr[2];
                [[unroll]] for (uint t = 0; t < 2; t++) {
                    uint j = j0 + c + t;
                    bool ok = j < p.Lk && (CAUSAL == 0 || j <= q);
                    pr[t] = ok ? exp(p.scale * ldf(sbase + r * BKV + c + t) - mx) : 0.0;
                    l += pr[t];
                }
                uint hi = r * (BKV + 8) + c; // half index in this subgroup's P
                sh[pbase + hi / 8][(hi / 2) % 4] = packHalf2x16(vec2(pr[0], pr[1]));
            }
            stf(ml + FM + r, ldf(ml + FM + r) + l);
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        [[unroll]] for (uint kk = 0; kk < BKV / FK; kk++) {
            MAT_A pa;
            CM_LOAD_ROW(pa, sh, pbase + kk * FK / 8, PROW);
            [[unroll]] for (uint j = 0; j < DP / FN; j++) {
                MAT_B vb;
                CM_LOAD_ROW(vb, sh, OFF_V + kk * FK * SROW + j * FN / 8, SROW);
                o[j] = CM_MAD(pa, vb, o[j]);
            }
        }
        subgroupBarrier(); // P is rewritten next block
    }

    // O / rowsum, staged through this subgroup's S region
    [[unroll]] for (uint j = 0; j < DP / FN; j++) {
        CM_STORE_ROW(o[j], sh, OFF_S + sg * S_SG, FN / 4);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint e = lane; e < FM * FN; e += nl) {
            uint r = e / FN, d = j * FN + e % FN, q = q0 + sg * FM + r;
            if (q < p.Lq && d < D)
                outp[p.oo + (b * p.Lq + q) * hd + h * D + d] = ST(ldf(sbase + e) / ldf(ml + FM + r));
        }
        subgroupBarrier();
    }
}
