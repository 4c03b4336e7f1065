/* Integer GEMM for 8-bit weights on x86 and Arm (private to src/backend/cpu/simd).
 *
 * Activations are quantised on the fly per row and per 32 depth values
 * (q8_0 like the weights: a = da * qa, qa in [-127, 127], da = max|a| / 127,
 * round to nearest even), so each 32-block of a product is an exact int32
 * dot product, scaled once: C += (da * db) * sum(qa * qb). This is what
 * llama.cpp / stable-diffusion.cpp do for q8_0 weights. Measured on Zen 4
 * (one core, data in L1): the vpmaddubsw kernel (AVX2) runs at the fp32 FMA
 * rate (sign, maddubs and maddwd all take the integer multiply pipes), the
 * vpdpbusd one (AVX-VNNI / AVX512-VNNI) at 1.43x; a whole SD v1.5 CFG UNet
 * step at 256x256 takes 0.91x (AVX2) and 0.63x (VNNI) of the f16 weights'
 * CPU time. The cost is accuracy: UNet eps 2.0e-2 relative L2 against f16
 * weights, where widening the weights to f32 (the path of the other
 * tables, and what this replaced) gives 1.5e-2. One integer path on every
 * x86 table keeps results identical between AVX2 and VNNI machines (both
 * kernels compute the same exact int32 block sums; test_simd checks it).
 *
 * Panels ("dot" q8 layout, simd_pw.q8dot = 1): per panel of nr columns,
 * per group g of 4 depth values, column c holds its 4 int8 values at
 * bytes ((p * k / 4 + g) * nr + c) * 4 + (depth % 4), so one 32-byte load
 * is 8 columns x 4 depths, the operand of vpmaddubsw/vpdpbusd. Scales as in
 * simd.h. The x86 micro-kernels cover Q8_KR = 16 columns; wider panels
 * (AVX-512's nr = 32) are covered in column slices. The Arm one (sdot)
 * covers a whole 12-column NEON panel. */
#ifndef SD_CPU_Q8DOT_H
#define SD_CPU_Q8DOT_H

#include <stdint.h>

#define Q8_MR 2  /* rows per micro-tile: 2 x 16 columns of int32 + fp32 accumulators */
#define Q8_KR 16 /* columns per micro-tile */

/* C[i][j] (i < mr, j < nr) gets sum over nb 32-blocks of
 * (as[i * las + b] * fp16(bs[b * bss + j])) * dot(a row i block b, b column j block b)
 * (+ C if flags & UK_LOAD; + bias[j] + res[i * ldc + j] if flags & UK_EPI).
 * a: int8 rows at stride lda (Q8_MR rows always read: pad with zeros);
 * b: the panel's groups, bgs bytes from one group to the next (nr_panel * 4),
 * starting at this slice's first column; bs: scales, bss from one block
 * to the next. */
typedef void (*sd_q8_ukr_fn)(int64_t nb, const int8_t *a, int64_t lda, const float *as, int64_t las,
                             const int8_t *b, int64_t bgs, const uint16_t *bs, int64_t bss, float *c,
                             int64_t ldc, int mr, int nr, int flags, const float *bias, const float *res);

/* vpmaddubsw (AVX2), vpdpbusd ymm (AVX-VNNI, VEX), vpdpbusd ymm (AVX512-VNNI
 * + VL, EVEX). Exist on x86-64 builds. */
void sd_q8_ukr_avx2(int64_t nb, const int8_t *a, int64_t lda, const float *as, int64_t las, const int8_t *b,
                    int64_t bgs, const uint16_t *bs, int64_t bss, float *c, int64_t ldc, int mr, int nr,
                    int flags, const float *bias, const float *res);
void sd_q8_ukr_avxvnni(int64_t nb, const int8_t *a, int64_t lda, const float *as, int64_t las,
                       const int8_t *b, int64_t bgs, const uint16_t *bs, int64_t bss, float *c, int64_t ldc,
                       int mr, int nr, int flags, const float *bias, const float *res);
void sd_q8_ukr_avx512vnni(int64_t nb, const int8_t *a, int64_t lda, const float *as, int64_t las,
                          const int8_t *b, int64_t bgs, const uint16_t *bs, int64_t bss, float *c,
                          int64_t ldc, int mr, int nr, int flags, const float *bias, const float *res);
#if defined(__aarch64__)
/* sdot (Armv8.2 dot product; the "neondot" table): 2 rows x 12 columns,
 * one slice per 12-wide NEON panel. */
void sd_q8_ukr_neondot(int64_t nb, const int8_t *a, int64_t lda, const float *as, int64_t las,
                       const int8_t *b, int64_t bgs, const uint16_t *bs, int64_t bss, float *c, int64_t ldc,
                       int mr, int nr, int flags, const float *bias, const float *res);
#endif
/* rows x kc floats (row stride ldx, kc a multiple of 32) -> int8 (stride
 * ldq) and one scale per row and 32-block (stride lds). AVX2. */
void sd_q8_quant_rows_avx2(const float *x, int64_t ldx, int64_t rows, int64_t kc, int8_t *q, int64_t ldq,
                           float *s, int64_t lds);

/* The VNNI micro-kernel this CPU runs (AVX512-VNNI+VL or AVX-VNNI), or
 * NULL when it has neither (dispatch.c). */
sd_q8_ukr_fn sd_simd_q8_vnni_ukr(void);

#endif
