#version 450
// MATMUL and CONV2D (see matmul_common.glsl), the small SIMT kernel
// (variant SIMT64): 64x64 output tile per workgroup of 16x16 threads through
// shared memory, 4x4 per thread (columns tx + 16 j), fp32 accumulation.
// Scalar loads: it serves small problems and every device.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "matmul_common.glsl"

layout(local_size_x = 16, local_size_y = 16) in;

TENSOR(0, outp)
TENSOR(1, xin)
TENSOR(2, win)
TENSOR(3, bias)
TENSOR(4, res)

shared float As[BK][BM];
shared float Bs[BK][BN];

// Conv: the 4 output rows a thread loads never change across K tiles, so
// their (batch, top-left input pixel) is decoded once.
int rb[4], ry[4], rx[4];

float load_a(uint r, uint m, uint k) {
    if (m >= p.M || k >= p.K) return 0.0;
    if (CONV == 0) return LD(xin[p.ox + m * p.K + k]);
    int s = conv_src(rb[r], ry[r], rx[r], k);
    return s < 0 ? 0.0 : LD(xin[p.ox + uint(s)]);
}

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint lid = ty * 16 + tx;
    uint m0 = gl_WorkGroupID.y * BM;
    float acc[4][4];
    for (uint i = 0; i < 4; i++)
        for (uint j = 0; j < 4; j++) acc[i][j] = 0.0;
    // the weight rows this thread loads (tile columns lid / BK + 16 r)
    uint wr[4];
    bool wok[4];
    for (uint r = 0; r < 4; r++) {
        uint e = lid + 256 * r;
        wok[r] = tile_wrow(e / BK, wr[r]);
        if (CONV != 0) conv_row(m0 + e / BK, rb[r], ry[r], rx[r]);
    }

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // 64 rows x 16 k per operand: 4 elements per thread, k fastest so
        // neighbouring threads read neighbouring addresses.
        for (uint r = 0; r < 4; r++) {
            uint e = lid + 256 * r;
            uint row = e / BK, kk = e % BK, k = k0 + kk;
            As[kk][row] = load_a(r, m0 + row, k);
            Bs[kk][row] = (wok[r] && k < p.K) ? LD(win[p.ow + wr[r] * p.K + k]) : 0.0;
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
    // GEGLU: columns tx, tx + 16 are values, tx + 32, tx + 48 their gates
    const uint NJ = GEGLU != 0 ? 2 : 4;
    for (uint i = 0; i < 4; i++) {
        uint m = m0 + ty + 16 * i;
        if (m >= p.M) continue;
        for (uint j = 0; j < NJ; j++) {
            uint c = tx + 16 * j, wrow;
            if (!tile_wrow(c, wrow)) continue;
            float v = acc[i][j];
            if (HAS_BIAS != 0) v += LD(bias[p.ob + wrow]);
            if (GEGLU != 0) {
                uint grow;
                tile_wrow(c + BN / 2, grow);
                float g = acc[i][j + 2];
                if (HAS_BIAS != 0) g += LD(bias[p.ob + grow]);
                v *= sd_gelu(g);
            }
            uint n = tile_ocol(c);
            if (HAS_RES != 0) v += LD(res[p.ores + m * p.N + n]);
            outp[p.oo + m * p.N + n] = ST(v);
        }
    }
}
