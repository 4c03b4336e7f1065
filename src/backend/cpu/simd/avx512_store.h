/* The store epilogue shared by the 14×32 AVX-512 micro-kernels (f32 FMA in
 * gemm_avx512.c, BF16 dot products in gemm_avx512bf16.c): rows i < mr of the
 * accumulators c<i>0, c<i>1 go to C, optionally added to C's old value
 * (UK_LOAD, a later depth block) and, on the last depth block (UK_EPI), to
 * the bias and the residual. Masked loads/stores never touch columns >= nr,
 * so a partial panel at the end of a row cannot fault.
 *
 * A macro, not a function, because the 28 accumulators must stay in
 * registers; it expects c, ldc, mr, nr, flags, bias and res in scope. */
#ifndef SDVK_AVX512_STORE_H
#define SDVK_AVX512_STORE_H

#define SD_AVX512_STORE_ROW(i)                                                    \
    if (i < mr) {                                                                 \
        float *cr = c + (int64_t)i * ldc;                                         \
        __m512 v0 = c##i##0, v1 = c##i##1;                                        \
        if (flags & UK_LOAD) {                                                    \
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));                \
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));           \
        }                                                                         \
        if (flags & UK_EPI) {                                                     \
            v0 = _mm512_add_ps(v0, bv0);                                          \
            v1 = _mm512_add_ps(v1, bv1);                                          \
            if (res) {                                                            \
                const float *rr = res + (int64_t)i * ldc;                         \
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, rr));            \
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, rr + 16));       \
            }                                                                     \
        }                                                                         \
        _mm512_mask_storeu_ps(cr, m0, v0);                                        \
        _mm512_mask_storeu_ps(cr + 16, m1, v1);                                   \
    }

#define SD_AVX512_STORE_14X32()                                                                            \
    do {                                                                                                   \
        __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);                         \
        __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff                                                        \
                                : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);            \
        __m512 bv0 = _mm512_setzero_ps(), bv1 = _mm512_setzero_ps();                                       \
        if ((flags & UK_EPI) && bias) {                                                                    \
            bv0 = _mm512_maskz_loadu_ps(m0, bias);                                                         \
            bv1 = _mm512_maskz_loadu_ps(m1, bias + 16);                                                    \
        }                                                                                                  \
        SD_AVX512_STORE_ROW(0) SD_AVX512_STORE_ROW(1) SD_AVX512_STORE_ROW(2) SD_AVX512_STORE_ROW(3)        \
        SD_AVX512_STORE_ROW(4) SD_AVX512_STORE_ROW(5) SD_AVX512_STORE_ROW(6) SD_AVX512_STORE_ROW(7)        \
        SD_AVX512_STORE_ROW(8) SD_AVX512_STORE_ROW(9) SD_AVX512_STORE_ROW(10) SD_AVX512_STORE_ROW(11)      \
        SD_AVX512_STORE_ROW(12) SD_AVX512_STORE_ROW(13)                                                    \
    } while (0)

#endif
