#version 450
// MATMUL and CONV2D (see matmul_common.glsl), the fast SIMT kernel
// (variants SIMT128, SIMT128K8): a BM x BN = 128 x 128 output tile per
// workgroup of 16 x 16 threads, 8 x 8 outputs per thread (rows ty*4 + i and
// BM/2 + ty*4 + i, columns tx*4 + j and BN/2 + tx*4 + j, i, j < 4), fp32
// accumulation. Operands go global -> registers -> shared memory in BK-deep
// steps, double-buffered: the next step's loads are issued before this
// step's FMAs and land in the other buffer, one barrier per step. With
// VEC = 1 (host: rows and offsets multiples of 4; conv: Ci a multiple of 4)
// each thread reads 4 consecutive k at once (vec4 / f16vec4); otherwise
// scalar loads with bounds checks cover any M, N, K. 256 threads is a whole
// number of subgroups on every device (8 to 128 lanes).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "matmul_common.glsl"

layout(local_size_x = 256) in;

TENSOR(0, outp)
TENSOR(1, xin)
TENSOR(2, win)
TENSOR(3, bias)
TENSOR(4, res)
#if F16
layout(std430, binding = 1) buffer X4 { f16vec4 xin4[]; };
layout(std430, binding = 2) buffer W4 { f16vec4 win4[]; };
#else
layout(std430, binding = 1) buffer X4 { vec4 xin4[]; };
layout(std430, binding = 2) buffer W4 { vec4 win4[]; };
#endif

const uint QPR = BK / 4;            // quads (4 k) per tile row
const uint NQ = BM * BK / 4 / 256;  // quads per thread per operand (BM == BN)
// k-major rows of BM / 4 vec4: compute reads are whole vec4s. The 4 threads
// storing one tile row (k = kq..kq+3, kq = 0, 4, 8, 12) would hit one bank;
// the vec4 column is XOR-swizzled by k / 4 so they do not (no padding: BK 16
// fits 32 KiB, e.g. lavapipe's limit).
shared vec4 As[2][BK][BM / 4];
shared vec4 Bs[2][BK][BN / 4];
uint sw(uint k) { return (k >> 2) & 3u; }

int cb[NQ], cy[NQ], cx[NQ]; // conv: decoded output pixel of each loaded row
uint wr[NQ];                 // weight row of each loaded B row
bool wok[NQ];

vec4 load_a(uint i, uint m, uint k) {
    vec4 v = vec4(0.0);
    if (m >= p.M) return v;
    if (CONV == 0) {
        uint base = p.ox + m * p.K + k;
        if (VEC != 0) {
            if (k < p.K) v = vec4(xin4[base / 4]);
        } else {
            [[unroll]] for (uint j = 0; j < 4; j++)
                if (k + j < p.K) v[j] = LD(xin[base + j]);
        }
    } else if (VEC != 0) { // Ci % 4 == 0: 4 channels of one tap
        if (k < p.K) {
            int s = conv_src(cb[i], cy[i], cx[i], k);
            if (s >= 0) v = vec4(xin4[(p.ox + uint(s)) / 4]);
        }
    } else {
        [[unroll]] for (uint j = 0; j < 4; j++) {
            if (k + j >= p.K) continue;
            int s = conv_src(cb[i], cy[i], cx[i], k + j);
            if (s >= 0) v[j] = LD(xin[p.ox + uint(s)]);
        }
    }
    return v;
}

vec4 load_b(uint i, uint k) {
    vec4 v = vec4(0.0);
    if (!wok[i]) return v;
    uint base = p.ow + wr[i] * p.K + k;
    if (VEC != 0) {
        if (k < p.K) v = vec4(win4[base / 4]);
    } else {
        [[unroll]] for (uint j = 0; j < 4; j++)
            if (k + j < p.K) v[j] = LD(win[base + j]);
    }
    return v;
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint tx = lid % 16, ty = lid / 16;
    uint m0 = gl_WorkGroupID.y * BM;
    vec4 acc[8][2];
    [[unroll]] for (uint i = 0; i < 8; i++) acc[i][0] = acc[i][1] = vec4(0.0);
    [[unroll]] for (uint i = 0; i < NQ; i++) {
        uint row = (lid + 256 * i) / QPR;
        wok[i] = tile_wrow(row, wr[i]);
        if (CONV != 0) conv_row(m0 + row, cb[i], cy[i], cx[i]);
    }
    uint kq = (lid % QPR) * 4; // this thread's k within a step (same for all its quads)

    vec4 ra[NQ], rw[NQ];
    [[unroll]] for (uint i = 0; i < NQ; i++) {
        ra[i] = load_a(i, m0 + (lid + 256 * i) / QPR, kq);
        rw[i] = load_b(i, kq);
    }
    uint nt = (p.K + BK - 1) / BK;
    [[unroll]] for (uint i = 0; i < NQ; i++) {
        uint row = (lid + 256 * i) / QPR;
        [[unroll]] for (uint j = 0; j < 4; j++) {
            As[0][kq + j][(row / 4) ^ sw(kq)][row % 4] = ra[i][j];
            Bs[0][kq + j][(row / 4) ^ sw(kq)][row % 4] = rw[i][j];
        }
    }
    barrier();
    for (uint t = 0; t < nt; t++) {
        uint cur = t & 1u;
        bool more = t + 1 < nt;
        if (more) {
            uint k = (t + 1) * BK + kq;
            [[unroll]] for (uint i = 0; i < NQ; i++) {
                ra[i] = load_a(i, m0 + (lid + 256 * i) / QPR, k);
                rw[i] = load_b(i, k);
            }
        }
        [[unroll]] for (uint kk = 0; kk < BK; kk++) {
            uint z = sw(kk);
            vec4 a0 = As[cur][kk][ty ^ z], a1 = As[cur][kk][(BM / 8 + ty) ^ z];
            vec4 b0 = Bs[cur][kk][tx ^ z], b1 = Bs[cur][kk][(BN / 8 + tx) ^ z];
            [[unroll]] for (uint i = 0; i < 4; i++) {
                acc[i][0] += a0[i] * b0;
                acc[i][1] += a0[i] * b1;
                acc[4 + i][0] += a1[i] * b0;
                acc[4 + i][1] += a1[i] * b1;
            }
        }
        if (more) {
            [[unroll]] for (uint i = 0; i < NQ; i++) {
                uint row = (lid + 256 * i) / QPR;
                [[unroll]] for (uint j = 0; j < 4; j++) {
                    As[cur ^ 1u][kq + j][(row / 4) ^ sw(kq)][row % 4] = ra[i][j];
                    Bs[cur ^ 1u][kq + j][(row / 4) ^ sw(kq)][row % 4] = rw[i][j];
                }
            }
        }
        barrier();
    }

    const uint NH = GEGLU != 0 ? 1 : 2; // GEGLU: half 1 holds the gates of half 0
    [[unroll]] for (uint i = 0; i < 8; i++) {
        uint m = m0 + (i / 4) * (BM / 2) + ty * 4 + i % 4;
        if (m >= p.M) continue;
        [[unroll]] for (uint h = 0; h < NH; h++) {
            [[unroll]] for (uint j = 0; j < 4; j++) {
                uint c = h * (BN / 2) + tx * 4 + j, wrow;
                if (!tile_wrow(c, wrow)) continue;
                float v = acc[i][h][j];
                if (HAS_BIAS != 0) v += LD(bias[p.ob + wrow]);
                if (GEGLU != 0) {
                    float g = acc[i][1][j];
                    if (HAS_BIAS != 0) g += LD(bias[p.ob + p.N + wrow]);
                    v *= sd_gelu(g);
                }
                uint n = tile_ocol(c);
                if (HAS_RES != 0) v += LD(res[p.ores + m * p.N + n]);
                outp[p.oo + m * p.N + n] = ST(v);
            }
        }
    }
}
