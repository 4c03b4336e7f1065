/* Portable kernels: the same packing and blocking as the SIMD files with a
 * plain-C 4×8 micro-kernel (compiled with baseline flags: the fallback for
 * x86-64 CPUs without AVX2 and for other architectures). */
#include "simd.h"

#define SIMD_ISA scalar
#define MR 4
#define A_ROWMAJOR 1
#define NR 8
#define KC 256
#define MC 128

static inline __attribute__((always_inline)) void ukr(int64_t kc, const float *a, int64_t as, int64_t ai,
                                                      const float *b, float *c, int64_t ldc, int mr,
                       int nr, int flags, const float *bias, const float *res) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.0f;
    for (int64_t k = 0; k < kc; k++) {
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += a[i * as] * b[j];
        a += ai;
        b += NR;
    }
    simd_tile_store(&acc[0][0], NR, c, ldc, mr, nr, flags, bias, res);
}

static void expand_f16(float *d, const uint16_t *s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = sd_f16_to_f32(s[i]);
}

/* One q8 panel block to f32 (plain C; the compiler vectorises the inner
 * loop). */
static void expand_q8(float *d, const int8_t *q, const uint16_t *s, int64_t kc) {
    for (int64_t b = 0; b < kc / 32; b++) {
        float sc[NR];
        for (int c = 0; c < NR; c++) sc[c] = sd_f16_to_f32(s[b * NR + c]);
        for (int64_t t = b * 32; t < b * 32 + 32; t++)
            for (int c = 0; c < NR; c++) d[t * NR + c] = sc[c] * (float)q[t * NR + c];
    }
}

double sd_simd_fma_loop_scalar(int64_t iters) {
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 16; i++) x[i] = x[i] * 0.999999f + 1e-7f;
    volatile float sink = x[0] + x[15];
    (void)sink;
    return (double)iters * 16 * 2;
}

#include "simd_kernels.inc"
