/* AVX-512 kernels: a 14×32 FMA micro-kernel (28 zmm accumulators, 2 for B,
 * A by embedded broadcast) under the shared blocking in simd_kernels.inc.
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c. */
#include <immintrin.h>

#include "simd.h"
#include "avx512_store.h"

#define SIMD_ISA avx512
#define MR 14
#define A_ROWMAJOR 1
#define NR 32
#ifndef KC
#define KC 320
#endif
#ifndef MC
#define MC 168
#endif
/* 8-bit weights on integer dot products: vpdpbusd where the CPU has
 * AVX512-VNNI, else vpmaddubsw (ymm kernels on 16-column panel slices) */
#define Q8_DOT_X86 1
#define Q8_PREFER_VNNI 1

static inline __attribute__((always_inline)) void ukr(int64_t kc, const float *a, int64_t as, int64_t ai,
                                                      const float *b, float *c, int64_t ldc, int mr,
                       int nr, int flags, const float *bias, const float *res) {
#define Z(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    Z(0) Z(1) Z(2) Z(3) Z(4) Z(5) Z(6) Z(7) Z(8) Z(9) Z(10) Z(11) Z(12) Z(13)
#undef Z
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#define F(i)                                         \
    {                                                \
        __m512 av = _mm512_set1_ps(a[i * as]);       \
        c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);  \
        c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);  \
    }
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13)
#undef F
        a += ai;
        b += NR;
    }
    SD_AVX512_STORE_14X32();
}

static void expand_f16(float *d, const uint16_t *s, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_store_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
    for (; i < n; i++) d[i] = sd_f16_to_f32(s[i]);
}

/* One q8 panel block to f32 (16 int8 per vpmovsxbd, fp16 scales widened
 * once per 32 depth rows). */
static void expand_q8(float *d, const int8_t *q, const uint16_t *s, int64_t kc) {
    for (int64_t b = 0; b < kc / 32; b++) {
        __m512 s0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + b * NR)));
        __m512 s1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + b * NR + 16)));
        const int8_t *qb = q + b * 32 * NR;
        float *db = d + b * 32 * NR;
        for (int t = 0; t < 32; t++) {
            __m512i i0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(qb + t * NR)));
            __m512i i1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(qb + t * NR + 16)));
            _mm512_store_ps(db + t * NR, _mm512_mul_ps(_mm512_cvtepi32_ps(i0), s0));
            _mm512_store_ps(db + t * NR + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(i1), s1));
        }
    }
}

/* 12 independent accumulator chains cover the FMA latency on every core
 * we know of; flops = iters · 12 FMAs · 16 lanes · 2. */
double sd_simd_fma_loop_avx512(int64_t iters) {
    __m512 x[12], m = _mm512_set1_ps(0.999999f), d = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) x[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) x[i] = _mm512_fmadd_ps(x[i], m, d);
    __m512 s = x[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, x[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * 12 * 16 * 2;
}

#include "simd_kernels.inc"
