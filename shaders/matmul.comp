#version 450
// MATMUL and CONV2D (implicit GEMM): out[M, N] = A[M, K] . W[N, K]^T
// (+ bias[N]) (+ residual[M, N]). For conv, A is gathered on the fly from
// the NHWC input (K index = (ky * kw + kx) * Ci + ci) and W was re-laid at
// upload to [Co][ky][kx][ci]. 64x64 output tile per workgroup through
// shared memory, 4x4 per thread, fp32 accumulation.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(constant_id = 0) const uint HAS_BIAS = 0;
layout(constant_id = 1) const uint HAS_RES = 0;
layout(constant_id = 2) const uint CONV = 0;

TENSOR(0, outp)
TENSOR(1, xin)
TENSOR(2, win)
TENSOR(3, bias)
TENSOR(4, res)

layout(push_constant) uniform P {
    uint M, N, K;
    uint oo, ox, ow, ob, ores;
    uint H, W, Ci, Ho, Wo, kw, stride, pt, pl;
} p;

const uint BM = 64, BN = 64, BK = 16;
shared float As[BK][BM];
shared float Bs[BK][BN];

// Conv: the 4 output rows a thread loads never change across K tiles, so
// their (batch, top-left input pixel) is decoded once; per K tile only the
// thread's k (fixed kk) is decoded, once for all 4 rows.
int rb[4], ry[4], rx[4];

void decode_rows(uint m0, uint lid) {
    for (uint r = 0; r < 4; r++) {
        uint m = m0 + (lid + 256 * r) / BK;
        uint ox = m % p.Wo, t2 = m / p.Wo;
        uint oy = t2 % p.Ho;
        rb[r] = m < p.M ? int(t2 / p.Ho) : -1;
        ry[r] = int(oy * p.stride) - int(p.pt);
        rx[r] = int(ox * p.stride) - int(p.pl);
    }
}

float load_a(uint r, uint m, uint k, uint ci, int ky, int kx) {
    if (m >= p.M || k >= p.K) return 0.0;
    if (CONV == 0) return LD(xin[p.ox + m * p.K + k]);
    int iy = ry[r] + ky, ix = rx[r] + kx;
    if (iy < 0 || ix < 0 || iy >= int(p.H) || ix >= int(p.W)) return 0.0;
    return LD(xin[p.ox + ((uint(rb[r]) * p.H + uint(iy)) * p.W + uint(ix)) * p.Ci + ci]);
}

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint lid = ty * 16 + tx;
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    float acc[4][4];
    for (uint i = 0; i < 4; i++)
        for (uint j = 0; j < 4; j++) acc[i][j] = 0.0;

    if (CONV != 0) decode_rows(m0, lid);
    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // 64 rows x 16 k per operand: 4 elements per thread, k fastest so
        // neighbouring threads read neighbouring addresses.
        uint ka = k0 + lid % BK, ci = 0;
        int ky = 0, kx = 0;
        if (CONV != 0) {
            uint t = ka / p.Ci;
            ci = ka % p.Ci;
            kx = int(t % p.kw);
            ky = int(t / p.kw);
        }
        for (uint r = 0; r < 4; r++) {
            uint e = lid + 256 * r;
            uint row = e / BK, kk = e % BK;
            As[kk][row] = load_a(r, m0 + row, k0 + kk, ci, ky, kx);
            uint n = n0 + row, k = k0 + kk;
            Bs[kk][row] = (n < p.N && k < p.K) ? LD(win[p.ow + n * p.K + k]) : 0.0;
        }
        barrier();
        for (uint kk = 0; kk < BK; kk++) {
            float a[4], b[4];
            for (uint i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
            for (uint j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
            for (uint i = 0; i < 4; i++)
                for (uint j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    for (uint i = 0; i < 4; i++) {
        uint m = m0 + ty + 16 * i;
        if (m >= p.M) continue;
        for (uint j = 0; j < 4; j++) {
            uint n = n0 + tx + 16 * j;
            if (n >= p.N) continue;
            float v = acc[i][j];
            if (HAS_BIAS != 0) v += LD(bias[p.ob + n]);
            if (HAS_RES != 0) v += LD(res[p.ores + m * p.N + n]);
            outp[p.oo + m * p.N + n] = ST(v);
        }
    }
}
