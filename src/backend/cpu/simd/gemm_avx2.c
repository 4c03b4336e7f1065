/* AVX2 + FMA kernels: a 6×16 micro-kernel (12 ymm accumulators) under the
 * shared blocking in simd_kernels.inc. Compiled with -mavx2 -mfma -mf16c. */
#include <immintrin.h>

#include "simd.h"

#define SIMD_ISA avx2
#define MR 6
#define A_ROWMAJOR 1
#define NR 16
#define KC 320
#define MC 144
/* 8-bit weights on integer dot products: vpmaddubsw here; the avx2vnni
 * table (sd_simd_install_avx2vnni) runs them on vpdpbusd */
#define Q8_DOT_X86 1

static inline __m256i tail_mask(int n) { /* lanes < n set */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) void ukr(int64_t kc, const float *a, int64_t as, int64_t ai,
                                                      const float *b, float *c, int64_t ldc, int mr,
                       int nr, int flags, const float *bias, const float *res) {
#define Z(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    Z(0) Z(1) Z(2) Z(3) Z(4) Z(5)
#undef Z
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#define F(i)                                         \
    {                                                \
        __m256 av = _mm256_broadcast_ss(a + i * as); \
        c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);  \
        c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);  \
    }
        F(0) F(1) F(2) F(3) F(4) F(5)
#undef F
        a += ai;
        b += NR;
    }
    /* Full panels use plain loads/stores: AMD cores run VMASKMOVPS stores
     * as slow microcode, which cost ~15% of a K=320 GEMM; masks only for
     * the last, partial panel of a row (they never fault past nr). */
    const int full = nr == NR;
    __m256i m0 = tail_mask(nr), m1 = tail_mask(nr - 8);
    __m256 bv0 = _mm256_setzero_ps(), bv1 = _mm256_setzero_ps();
    if ((flags & UK_EPI) && bias) {
        bv0 = full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m0);
        bv1 = full ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, m1);
    }
#define LD0(p) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m0))
#define LD1(p) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m1))
#define S(i)                                                                    \
    if (i < mr) {                                                               \
        float *cr = c + (int64_t)i * ldc;                                       \
        __m256 v0 = c##i##0, v1 = c##i##1;                                      \
        if (flags & UK_LOAD) {                                                  \
            v0 = _mm256_add_ps(v0, LD0(cr));                                    \
            v1 = _mm256_add_ps(v1, LD1(cr + 8));                                \
        }                                                                       \
        if (flags & UK_EPI) {                                                   \
            v0 = _mm256_add_ps(v0, bv0);                                        \
            v1 = _mm256_add_ps(v1, bv1);                                        \
            if (res) {                                                          \
                const float *rr = res + (int64_t)i * ldc;                       \
                v0 = _mm256_add_ps(v0, LD0(rr));                                \
                v1 = _mm256_add_ps(v1, LD1(rr + 8));                            \
            }                                                                   \
        }                                                                       \
        if (full) {                                                             \
            _mm256_storeu_ps(cr, v0);                                           \
            _mm256_storeu_ps(cr + 8, v1);                                       \
        } else {                                                                \
            _mm256_maskstore_ps(cr, m0, v0);                                    \
            _mm256_maskstore_ps(cr + 8, m1, v1);                                \
        }                                                                       \
    }
    S(0) S(1) S(2) S(3) S(4) S(5)
#undef S
#undef LD0
#undef LD1
}

static void expand_f16(float *d, const uint16_t *s, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_store_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++) d[i] = sd_f16_to_f32(s[i]);
}

/* One q8 panel block to f32: sign-extend 8 int8 per vpmovsxbd, scale per
 * column (fp16 scales widened once per 32 depth rows). */
static void expand_q8(float *d, const int8_t *q, const uint16_t *s, int64_t kc) {
    for (int64_t b = 0; b < kc / 32; b++) {
        __m256 s0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + b * NR)));
        __m256 s1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + b * NR + 8)));
        const int8_t *qb = q + b * 32 * NR;
        float *db = d + b * 32 * NR;
        for (int t = 0; t < 32; t++) {
            __m256i i0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qb + t * NR)));
            __m256i i1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qb + t * NR + 8)));
            _mm256_store_ps(db + t * NR, _mm256_mul_ps(_mm256_cvtepi32_ps(i0), s0));
            _mm256_store_ps(db + t * NR + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(i1), s1));
        }
    }
}

double sd_simd_fma_loop_avx2(int64_t iters) {
    __m256 x[12], m = _mm256_set1_ps(0.999999f), d = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) x[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) x[i] = _mm256_fmadd_ps(x[i], m, d);
    __m256 s = x[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, x[i]);
    float t[8];
    _mm256_storeu_ps(t, s);
    volatile float sink = t[0] + t[7];
    (void)sink;
    return (double)iters * 12 * 8 * 2;
}

#include "simd_kernels.inc"
