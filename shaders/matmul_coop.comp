#version 450
// MATMUL and CONV2D (see matmul_common.glsl) on the GPU's matrix units
// through cooperative matrices: GL_NV_cooperative_matrix (COOPMAT_NV=1) or
// GL_KHR_cooperative_matrix (COOPMAT_KHR=1), variants CM_* of
// vk_kernels.def; COOPMAT_EMU=1 is a plain-GLSL test double of the matrix
// operations (below). fp16 operands (F16 storage only), fp32 accumulation.
//
// A workgroup of WG subgroups computes a BM x BN tile; the subgroups form
// 2 rows x WG/2 columns, each owning a (BM/2) x (BN/(WG/2)) block of
// FM x FN accumulator fragments; the fragment shape (FM, FN, FK) is a
// specialisation constant the host picks from
// vkGetPhysicalDeviceCooperativeMatrixProperties*. A subgroup's fragment
// columns come in pairs half a tile apart (column j and j + CC/2), so the
// GEGLU epilogue finds value and gate in the same subgroup.
// Per BK step: global -> registers (8 halves per load, issued one step
// ahead) -> shared memory (rows padded by 8 halves) -> fragments. The
// epilogue stages fragment pairs through the same shared memory (fp32) and
// applies bias / GEGLU / residual with bounds checks, so any M, N, K work.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#include "coopmat.glsl"
#if !F16
#error matmul_coop.comp takes fp16 storage only
#endif
#include "common.glsl"
#include "matmul_common.glsl"

layout(constant_id = 5) const uint FM = 16;
layout(constant_id = 6) const uint FN = 16;
layout(constant_id = 7) const uint FK = 16;
layout(constant_id = 8) const uint THREADS = WG * 32; // WG x the subgroup size
layout(local_size_x_id = 8) in;

TENSOR(0, outp)
TENSOR(1, xin)
TENSOR(2, win)
TENSOR(3, bias)
TENSOR(4, res)
layout(std430, binding = 1) buffer X8 { uvec4 xin8[]; };
layout(std430, binding = 2) buffer W8 { uvec4 win8[]; };

const uint SGX = WG / 2;            // subgroup columns (2 rows)
const uint WM = BM / 2, WN = BN / SGX;
const uint CR = WM / FM, CC = WN / FN, HALF = CC / 2;
const uint SROW = (BK + 8) / 8;     // shared row stride in uvec4 (8 halves)
const uint QPR = BK / 8;            // 8-half loads per tile row
const uint NQA = BM * BK / 8 / THREADS, NQB = BN * BK / 8 / THREADS;
const uint SH_TILES = (BM + BN) * SROW;
const uint SH_EPI = WG * FM * FN / 2; // 2 fp32 fragments per subgroup, in uvec4
const uint SH_WORDS = SH_TILES > SH_EPI ? SH_TILES : SH_EPI;
const uint OFF_B = BM * SROW;
shared uvec4 sh[SH_WORDS];

int cb[NQA], cy[NQA], cx[NQA];
uint wr[NQB];
bool wok[NQB];

// 8 values, exact in fp16 (they were loaded from fp16 storage), as 8 halves
uvec4 pack8(float h[8]) {
    return uvec4(packHalf2x16(vec2(h[0], h[1])), packHalf2x16(vec2(h[2], h[3])),
                 packHalf2x16(vec2(h[4], h[5])), packHalf2x16(vec2(h[6], h[7])));
}

#include "coopmat_emu.glsl"

uvec4 load_a(uint i, uint m, uint k) {
    if (m >= p.M) return uvec4(0);
    if (VEC != 0) { // host: K, offsets (and conv Ci) multiples of 8
        if (k >= p.K) return uvec4(0);
        if (CONV == 0) return xin8[(p.ox + m * p.K + k) / 8];
        int s = conv_src(cb[i], cy[i], cx[i], k);
        return s < 0 ? uvec4(0) : xin8[(p.ox + uint(s)) / 8];
    }
    float h[8];
    [[unroll]] for (uint j = 0; j < 8; j++) {
        h[j] = 0.0;
        if (k + j >= p.K) continue;
        if (CONV == 0) {
            h[j] = LD(xin[p.ox + m * p.K + k + j]);
        } else {
            int s = conv_src(cb[i], cy[i], cx[i], k + j);
            if (s >= 0) h[j] = LD(xin[p.ox + uint(s)]);
        }
    }
    return pack8(h);
}

uvec4 load_b(uint i, uint k) {
    if (!wok[i]) return uvec4(0);
    uint base = p.ow + wr[i] * p.K + k;
    if (VEC != 0) return k < p.K ? win8[base / 8] : uvec4(0);
    float h[8];
    [[unroll]] for (uint j = 0; j < 8; j++) h[j] = k + j < p.K ? LD(win[base + j]) : 0.0;
    return pack8(h);
}

// tile column of a subgroup's fragment column j
uint frag_col(uint sgx, uint j) {
    return (j < HALF ? 0 : BN / 2) + (sgx * HALF + j % HALF) * FN;
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint sg = gl_SubgroupID, sgy = sg / SGX, sgx = sg % SGX;
    uint m0 = gl_WorkGroupID.y * BM;
    uint kq = (lid % QPR) * 8;
    [[unroll]] for (uint i = 0; i < NQA; i++)
        if (CONV != 0) conv_row(m0 + (lid + THREADS * i) / QPR, cb[i], cy[i], cx[i]);
    [[unroll]] for (uint i = 0; i < NQB; i++) wok[i] = tile_wrow((lid + THREADS * i) / QPR, wr[i]);

    MAT_C acc[CR][CC];
    [[unroll]] for (uint i = 0; i < CR; i++)
        [[unroll]] for (uint j = 0; j < CC; j++) acc[i][j] = CM_ZERO;

    uvec4 ra[NQA], rw[NQB];
    [[unroll]] for (uint i = 0; i < NQA; i++) ra[i] = load_a(i, m0 + (lid + THREADS * i) / QPR, kq);
    [[unroll]] for (uint i = 0; i < NQB; i++) rw[i] = load_b(i, kq);
    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        barrier(); // the previous step's fragment loads are done
        [[unroll]] for (uint i = 0; i < NQA; i++) sh[((lid + THREADS * i) / QPR) * SROW + kq / 8] = ra[i];
        [[unroll]] for (uint i = 0; i < NQB; i++) sh[OFF_B + ((lid + THREADS * i) / QPR) * SROW + kq / 8] = rw[i];
        barrier();
        if (k0 + BK < p.K) {
            [[unroll]] for (uint i = 0; i < NQA; i++) ra[i] = load_a(i, m0 + (lid + THREADS * i) / QPR, k0 + BK + kq);
            [[unroll]] for (uint i = 0; i < NQB; i++) rw[i] = load_b(i, k0 + BK + kq);
        }
        [[unroll]] for (uint kk = 0; kk < BK; kk += FK) {
            MAT_A fa[CR];
            [[unroll]] for (uint i = 0; i < CR; i++)
                CM_LOAD_ROW(fa[i], sh, (sgy * WM + i * FM) * SROW + kk / 8, SROW);
            [[unroll]] for (uint j = 0; j < CC; j++) {
                MAT_B fb;
                CM_LOAD_COL(fb, sh, OFF_B + frag_col(sgx, j) * SROW + kk / 8, SROW);
                [[unroll]] for (uint i = 0; i < CR; i++) acc[i][j] = CM_MAD(fa[i], fb, acc[i][j]);
            }
        }
    }

    // Epilogue: fragment pairs (j, j + HALF) through this subgroup's part
    // of shared memory, then element-wise with bounds checks.
    barrier();
    uint base = sg * (FM * FN / 2), lane = gl_SubgroupInvocationID, nl = gl_SubgroupSize;
    [[unroll]] for (uint i = 0; i < CR; i++) {
        [[unroll]] for (uint j = 0; j < HALF; j++) {
            CM_STORE_ROW(acc[i][j], sh, base, FN / 4);
            CM_STORE_ROW(acc[i][j + HALF], sh, base + FM * FN / 4, FN / 4);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < FM * FN; e += nl) {
                uint m = m0 + sgy * WM + i * FM + e / FN;
                float v = uintBitsToFloat(sh[base + e / 4][e % 4]);
                float g = uintBitsToFloat(sh[base + FM * FN / 4 + e / 4][e % 4]);
                if (m >= p.M) continue;
                uint c = frag_col(sgx, j) + e % FN, wrow;
                if (GEGLU != 0) {
                    if (!tile_wrow(c, wrow)) continue;
                    if (HAS_BIAS != 0) {
                        v += LD(bias[p.ob + wrow]);
                        g += LD(bias[p.ob + p.N + wrow]);
                    }
                    v *= sd_gelu(g);
                    uint n = tile_ocol(c);
                    if (HAS_RES != 0) v += LD(res[p.ores + m * p.N + n]);
                    outp[p.oo + m * p.N + n] = ST(v);
                    continue;
                }
                [[unroll]] for (uint h = 0; h < 2; h++) {
                    uint ch = c + h * (BN / 2);
                    if (!tile_wrow(ch, wrow)) continue;
                    float x = h == 0 ? v : g;
                    if (HAS_BIAS != 0) x += LD(bias[p.ob + wrow]);
                    uint n = tile_ocol(ch);
                    if (HAS_RES != 0) x += LD(res[p.ores + m * p.N + n]);
                    outp[p.oo + m * p.N + n] = ST(x);
                }
            }
            subgroupBarrier(); // the staging area is rewritten next
        }
    }
}
