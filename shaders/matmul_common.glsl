// Shared by the MATMUL / CONV2D kernels (matmul.comp, matmul_simt.comp,
// matmul_coop.comp): out[M, N] = A[M, K] . W[N, K]^T (+ bias[N])
// (+ residual[M, N]). For conv, A is gathered on the fly from the NHWC input
// (K index = (ky * kw + kx) * Ci + ci) and W was re-laid at upload to
// [Co][ky][kx][ci]. BM, BN, BK, WG come from the kernel's row in
// src/backend/vulkan/vk_kernels.def (the host dispatches from the same row).
//
// GEGLU = 1 fuses the following GEGLU op: the weight has 2N rows, and
// out[m, n] = (v + bias[n]) * gelu(g + bias[N + n]) with v, g the products
// with weight rows n and N + n. A workgroup's tile then holds BN / 2 value
// columns and, BN / 2 tile columns further on, their gate columns, so each
// pair meets in one thread (SIMT) or one subgroup (cooperative matrix).

layout(constant_id = 0) const uint HAS_BIAS = 0;
layout(constant_id = 1) const uint HAS_RES = 0;
layout(constant_id = 2) const uint CONV = 0;
layout(constant_id = 3) const uint VEC = 0;   // rows are read 4 (SIMT) / 8 (coop) elements at once
layout(constant_id = 4) const uint GEGLU = 0;

layout(push_constant) uniform P {
    uint M, N, K; // N: output columns (with GEGLU: half the weight's rows)
    uint oo, ox, ow, ob, ores;
    uint H, W, Ci, Ho, Wo, kw, stride, pt, pl;
} p;

// Weight row of tile column c of this workgroup; false past the matrix.
bool tile_wrow(uint c, out uint row) {
    if (GEGLU == 0) {
        row = gl_WorkGroupID.x * BN + c;
        return row < p.N;
    }
    uint h = BN / 2, o = gl_WorkGroupID.x * h + c % h;
    row = c < h ? o : p.N + o;
    return o < p.N;
}

// Output column of a value tile column c (c < BN / 2 with GEGLU).
uint tile_ocol(uint c) { return GEGLU == 0 ? gl_WorkGroupID.x * BN + c : gl_WorkGroupID.x * (BN / 2) + c; }

// Implicit GEMM: output pixel m -> batch and the input pixel of tap (0, 0).
void conv_row(uint m, out int b, out int y0, out int x0) {
    uint ox = m % p.Wo, t = m / p.Wo;
    uint oy = t % p.Ho;
    b = m < p.M ? int(t / p.Ho) : -1;
    y0 = int(oy * p.stride) - int(p.pt);
    x0 = int(ox * p.stride) - int(p.pl);
}

// Element offset in the input of depth k for an output pixel (b, y0, x0);
// -1 inside the zero padding.
int conv_src(int b, int y0, int x0, uint k) {
    uint t = k / p.Ci, ci = k - t * p.Ci;
    int iy = y0 + int(t / p.kw), ix = x0 + int(t % p.kw);
    if (b < 0 || iy < 0 || ix < 0 || iy >= int(p.H) || ix >= int(p.W)) return -1;
    return int(((uint(b) * p.H + uint(iy)) * p.W + uint(ix)) * p.Ci + ci);
}
