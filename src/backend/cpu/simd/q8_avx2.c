/* 8-bit weight GEMM micro-kernel with vpmaddubsw (plain AVX2), and the
 * AVX2 quantiser of activation rows (q8dot.h). -mavx2 -mfma -mf16c. */
#define Q8_UKR sd_q8_ukr_avx2
#define Q8_DOT(acc, ua, sb) \
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(ua, sb), _mm256_set1_epi16(1)))
#include "q8dot_ymm.inc"

void sd_q8_quant_rows_avx2(const float *x, int64_t ldx, int64_t rows, int64_t kc, int8_t *q, int64_t ldq,
                           float *s, int64_t lds) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < kc; k += 32) {
            const float *xr = x + r * ldx + k;
            __m256 v0 = _mm256_loadu_ps(xr), v1 = _mm256_loadu_ps(xr + 8);
            __m256 v2 = _mm256_loadu_ps(xr + 16), v3 = _mm256_loadu_ps(xr + 24);
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                     _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_movehdup_ps(h));
            float amax = _mm_cvtss_f32(h);
            /* scale so max |x| maps to 127; cvtps rounds to nearest even */
            float id = amax > 0.0f ? 127.0f / amax : 0.0f;
            s[r * lds + k / 32] = amax / 127.0f;
            __m256 vid = _mm256_set1_ps(id);
            __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
            __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
            /* packs interleave 128-bit lanes: restore the element order */
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            _mm256_storeu_si256((__m256i *)(q + r * ldq + k), _mm256_permutevar8x32_epi32(p, order));
        }
}
