/* Private to the SIMD CPU kernels (src/backend/cpu/simd/).
 *
 * Each ISA file (gemm_<isa>.c, compiled with its own flags) defines a GEMM
 * micro-kernel and includes simd_kernels.inc, which builds the packed,
 * cache-blocked, multithreaded GEMM, implicit-GEMM conv2d, fused attention
 * and the norms on top of it. dispatch.c (no special flags) detects the CPU
 * and installs one ISA's kernels into the table. */
#ifndef SD_CPU_SIMD_H
#define SD_CPU_SIMD_H

#include <stdint.h>
#include <string.h>

#include "../cpu.h"
#include "q8dot.h"

/* The hook the CPU backend calls (a weak fallback lives in simd_none.c)
 * with k filled with the reference kernels: installs the kernels of isa
 * ("auto" = best this CPU has, or "scalar", "avx2", "avx512", "neon") and
 * returns SDVK_OK, or a status with the message recorded (sd_err) when the
 * ISA is unknown or this CPU/build lacks it. (Matches ref_table.c.) */
int sd_cpu_simd_select(const char *isa, sd_cpu_kernels *k);

/* A GEMM weight packed at prepare into panels of `nr` output columns:
 * panel p holds k × nr elements (column-fastest), zero padded past n. The
 * elements keep the checkpoint dtype (F32/F16/BF16): fp16 models never get
 * an fp32 copy; kernels widen one k-block of one panel at a time. */
typedef struct simd_pw {
    int64_t n, k;  /* output columns, reduction depth */
    int nr;        /* panel width of the ISA that packed it */
    int dtype;     /* sd_dtype of the panel elements */
    float *bias;   /* f32[n] inside the same allocation, or NULL */
    void *panels;  /* 64-byte aligned, inside the same allocation */
    /* SD_Q8 panels: int8 elements as above, and per panel p, depth block
     * b = kk / 32, column c the fp16 scale scales[(p * k / 32 + b) * nr + c]
     * (k is a multiple of 32); NULL for other dtypes. */
    uint16_t *scales;
    /* q8 products: NULL = weights widened to f32 per k-block (the panels
     * as above, "k-major"); else the integer micro-kernel that runs them,
     * panels in q8dot.h's "dot" layout */
    sd_q8_ukr_fn q8ukr;
    size_t bytes;  /* the whole allocation */
} simd_pw;

/* Packs w (raw, dtype dt, n rows of k elements) into nr-wide panels. For
 * conv, koff maps GEMM depth index -> element offset inside a weight row
 * (NULL = identity). Bias (raw, dtype bdt) may be NULL. Returns a single
 * free()-able block, or NULL when out of memory. */
/* One 64-byte aligned block (freed with free()): the header, the bias as
 * f32 (when given), then pbytes of panels for the caller to fill. */
simd_pw *sd_simd_pw_alloc(int64_t n, int64_t k, int nr, sd_dtype dt, const void *bias,
                          sd_dtype bdt, size_t pbytes);
simd_pw *sd_simd_pack_weights(const void *w, sd_dtype dt, int64_t n, int64_t k, const int64_t *koff,
                              const void *bias, sd_dtype bdt, int nr);

/* q8 panels (dtype SD_Q8; ukr NULL: k-major, else the "dot" layout of
 * q8dot.h for that micro-kernel) from weight tw's data w (F32/F16/BF16: quantised
 * here, in GEMM depth order, exactly as sd_q8_quantize_tensor would; SD_Q8:
 * the stored values and scales as they are). n rows of k depth, koff as
 * above. NULL when out of memory or tw is not q8-eligible. */
simd_pw *sd_simd_pack_q8(const sd_tensor *tw, const void *w, int64_t n, int64_t k, const int64_t *koff,
                         const void *bias, sd_dtype bdt, int nr, sd_q8_ukr_fn ukr);

/* Matmul/conv without a packed weight (the prep allocation failed, or the
 * weight is an activation): correct, unblocked, threaded over rows. */
void sd_simd_gemm_unpacked(const sd_cpu_ctx *c);

/* Largest attention head dim the SIMD kernel takes (the reference's limit;
 * larger go to the reference kernel). */
#define SIMD_ATT_DMAX 1024

/* Micro-kernel flags (see simd_kernels.inc). */
#define UK_LOAD 1 /* accumulate into C */
#define UK_EPI 2  /* last k-block: add bias and residual */

/* A micro-tile's epilogue through memory: rows i < mr, columns j < nr of the
 * f32 tile t (row stride ldt) go to C, plus C (UK_LOAD), plus bias[j] and
 * res[i * ldc + j] (UK_EPI, each when non-NULL). For kernels whose tails
 * are not worth vector masks (scalar, NEON). */
static inline __attribute__((always_inline)) void simd_tile_store(const float *t, int ldt, float *c, int64_t ldc,
                                                                  int mr, int nr, int flags, const float *bias,
                                                                  const float *res) {
    for (int i = 0; i < mr; i++) {
        float *cr = c + (int64_t)i * ldc;
        for (int j = 0; j < nr; j++) {
            float v = t[i * ldt + j];
            if (flags & UK_LOAD)
                v += cr[j];
            if (flags & UK_EPI) {
                if (bias)
                    v += bias[j];
                if (res)
                    v += res[(int64_t)i * ldc + j];
            }
            cr[j] = v;
        }
    }
}

/* Per-ISA entry points (exist only where the ISA is compiled in). */
#define SIMD_DECLARE_ISA(isa)                                                              \
    void sd_simd_install_##isa(sd_cpu_kernels *k);                                         \
    /* Direct GEMM for tests and benches: out[M,N] = x[M,K]·pwᵀ (+bias +res). */           \
    void sd_simd_gemm_##isa(sd_pool *pool, const simd_pw *pw, const float *x, int64_t M,  \
                            float *out, const float *res);                                 \
    /* Flops of a register-resident FMA loop (peak measurement). */                       \
    double sd_simd_fma_loop_##isa(int64_t iters);                                          \
    extern const int sd_simd_nr_##isa;
SIMD_DECLARE_ISA(scalar)
#if defined(__x86_64__) || defined(__i386__)
SIMD_DECLARE_ISA(avx2)
SIMD_DECLARE_ISA(avx512)
/* The AVX2 table with 8-bit products on vpdpbusd (AVX-VNNI or AVX512-VNNI). */
void sd_simd_install_avx2vnni(sd_cpu_kernels *k);
#ifdef SDVK_HAVE_AVX512BF16
/* AVX-512 BF16 (gemm_avx512bf16.c): the avx512 table with a VDPBF16PS
 * matmul/conv; never chosen by "auto". Its panels hold bf16 depth pairs
 * (see the file), packed by this function, not sd_simd_pack_weights. */
SIMD_DECLARE_ISA(avx512bf16)
simd_pw *sd_simd_pack_weights_bf16(const void *w, sd_dtype dt, int64_t n, int64_t k, const int64_t *koff,
                                   const void *bias, sd_dtype bdt);
#endif
#endif
#if defined(__aarch64__)
SIMD_DECLARE_ISA(neon)
/* The NEON table with 8-bit products on sdot (Armv8.2 dot product). */
void sd_simd_install_neondot(sd_cpu_kernels *k);
#endif

/* exp(x) for x in [-87, 88] (clamped outside), rel. error ~2e-7. Plain C written so that
 * compilers vectorise loops over it with whatever ISA flags the including
 * file has (no libm call, rounding by the 1.5·2^23 trick). */
static inline float simd_expf_neg(float x);
static inline float simd_expf(float x) {
    x = x > 88.0f ? 88.0f : x;
    return simd_expf_neg(x);
}

/* exp(x) for x <= 88 (softmax arguments are <= 0): one clamp less. */
static inline float simd_expf_neg(float x) {
    x = x > -87.0f ? x : -87.0f; /* also maps -inf to exp(-87) */
    float n = x * 1.44269504088896341f + 12582912.0f;
    n -= 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r -= n * 1.428606765330187e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)e << 23;
    float s;
    memcpy(&s, &bits, 4);
    return p * s;
}

#endif
