/* NEON (AArch64 Advanced SIMD) kernels: an 8×12 micro-kernel (24 q-register
 * accumulators, A as two q registers used by lane) under the shared
 * blocking in simd_kernels.inc. AArch64 always has NEON and fp16
 * conversion, so no extra flags. */
#include <arm_neon.h>

#include "simd.h"

#define SIMD_ISA neon
#define MR 8
#define NR 12
#define KC 256
#define MC 128
/* 8-bit weights: widened to f32 per k-block here; the neondot table
 * (sd_simd_install_neondot) runs them on sdot (q8dot.h) */
#define Q8_DOT_NEON 1

static inline __attribute__((always_inline)) void ukr(int64_t kc, const float *a, int64_t as, int64_t ai,
                                                      const float *b, float *c, int64_t ldc, int mr,
                       int nr, int flags, const float *bias, const float *res) {
    (void)as; /* A is always MR-interleaved here (no A_ROWMAJOR) */
    float32x4_t acc[MR][3];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < kc; k++) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define ROW(i, av, l)                                      \
    acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, av, l);     \
    acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, av, l);     \
    acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, av, l);
        ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
        ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
#undef ROW
        a += ai;
        b += NR;
    }
    /* Tiles are small; the epilogue goes through memory for every tail. */
    float t[MR][NR];
    for (int i = 0; i < MR; i++) {
        vst1q_f32(&t[i][0], acc[i][0]);
        vst1q_f32(&t[i][4], acc[i][1]);
        vst1q_f32(&t[i][8], acc[i][2]);
    }
    simd_tile_store(&t[0][0], NR, c, ldc, mr, nr, flags, bias, res);
}

static void expand_f16(float *d, const uint16_t *s, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(d + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(s + i))));
    for (; i < n; i++) d[i] = sd_f16_to_f32(s[i]);
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

double sd_simd_fma_loop_neon(int64_t iters) {
    float32x4_t x[16], m = vdupq_n_f32(0.999999f), d = vdupq_n_f32(1e-7f);
    for (int i = 0; i < 16; i++) x[i] = vdupq_n_f32((float)i);
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 16; i++) x[i] = vfmaq_f32(d, x[i], m);
    float32x4_t s = x[0];
    for (int i = 1; i < 16; i++) s = vaddq_f32(s, x[i]);
    volatile float sink = vaddvq_f32(s);
    (void)sink;
    return (double)iters * 16 * 4 * 2;
}

#include "simd_kernels.inc"
