/* 8-bit weight GEMM micro-kernel on the Armv8.2 dot product (SDOT), for the
 * "neondot" table (q8dot.h): 2 rows x 12 columns (the NEON panel width),
 * the same exact int32 block sums and the same fp32 scaling, in the same
 * order, as the x86 integer kernels. Compiled with
 * -march=armv8.2-a+dotprod; dispatch.c calls it only where HWCAP says
 * the CPU has ASIMDDP. */
#include <arm_neon.h>
#include <string.h>

#include "q8dot.h"
#include "simd.h"

void sd_q8_ukr_neondot(int64_t nb, const int8_t *a, int64_t lda, const float *as, int64_t las, const int8_t *b,
                       int64_t bgs, const uint16_t *bs, int64_t bss, float *c, int64_t ldc, int mr, int nr,
                       int flags, const float *bias, const float *res) {
    float32x4_t f[Q8_MR][3];
    for (int i = 0; i < Q8_MR; i++) f[i][0] = f[i][1] = f[i][2] = vdupq_n_f32(0.0f);
    for (int64_t blk = 0; blk < nb; blk++) {
        int32x4_t s[Q8_MR][3];
        for (int i = 0; i < Q8_MR; i++) s[i][0] = s[i][1] = s[i][2] = vdupq_n_s32(0);
        const int8_t *a0 = a + blk * 32, *a1 = a0 + lda;
        const int8_t *bp = b + blk * 8 * bgs;
        for (int g = 0; g < 8; g++) {
            /* one group: 12 columns x 4 depths; each lane of the row's
             * broadcast word meets one column's 4 bytes */
            int8x16_t b0 = vld1q_s8(bp + g * bgs), b1 = vld1q_s8(bp + g * bgs + 16), b2 = vld1q_s8(bp + g * bgs + 32);
            int32_t w;
            memcpy(&w, a0 + 4 * g, 4);
            int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(w));
            s[0][0] = vdotq_s32(s[0][0], b0, x);
            s[0][1] = vdotq_s32(s[0][1], b1, x);
            s[0][2] = vdotq_s32(s[0][2], b2, x);
            memcpy(&w, a1 + 4 * g, 4);
            x = vreinterpretq_s8_s32(vdupq_n_s32(w));
            s[1][0] = vdotq_s32(s[1][0], b0, x);
            s[1][1] = vdotq_s32(s[1][1], b1, x);
            s[1][2] = vdotq_s32(s[1][2], b2, x);
        }
        /* one scale per row and column for the block: da * db */
        const uint16_t *sb = bs + blk * bss;
        float32x4_t w0 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sb)));
        float32x4_t w1 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sb + 4)));
        float32x4_t w2 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sb + 8)));
        for (int i = 0; i < Q8_MR; i++) {
            float32x4_t r = vdupq_n_f32(as[i * las + blk]);
            f[i][0] = vfmaq_f32(f[i][0], vcvtq_f32_s32(s[i][0]), vmulq_f32(w0, r));
            f[i][1] = vfmaq_f32(f[i][1], vcvtq_f32_s32(s[i][1]), vmulq_f32(w1, r));
            f[i][2] = vfmaq_f32(f[i][2], vcvtq_f32_s32(s[i][2]), vmulq_f32(w2, r));
        }
    }
    float t[Q8_MR][12];
    for (int i = 0; i < Q8_MR; i++) {
        vst1q_f32(&t[i][0], f[i][0]);
        vst1q_f32(&t[i][4], f[i][1]);
        vst1q_f32(&t[i][8], f[i][2]);
    }
    simd_tile_store(&t[0][0], 12, c, ldc, mr < Q8_MR ? mr : Q8_MR, nr < 12 ? nr : 12, flags, bias, res);
}
