/* AVX-512 BF16 kernels (--precision bf16 / SDVK_CPU_ISA=avx512bf16): the
 * AVX-512 kernel set with the matmul/conv GEMM replaced by one whose inner
 * product is VDPBF16PS (two bf16 products per fp32 lane, fp32 accumulate).
 * Weights are rounded to bf16 (nearest even) once at prepare; activations
 * are rounded to bf16 while packing A. This changes numerics (~3 significant
 * digits per operand), so "auto" never picks it.
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16. */
#include <immintrin.h>
#include <stdalign.h>
#include <stdlib.h>

#include "../../../core/status.h"
#include "simd.h"
#include "avx512_store.h"

#define MR 14  /* rows of A per micro-tile: 28 accumulators + 2 B + 1 broadcast */
#define NR 32  /* columns per weight panel (2 zmm of 16 fp32) */
#define KC 512 /* depth per pass (even, multiple of 32): 14×1 KB A + 32 KB B in L1/L2 */
#define MC 168 /* rows per A block (multiple of MR) */

#define BMIN(a, b) ((a) < (b) ? (a) : (b))
#define BMAX(a, b) ((a) > (b) ? (a) : (b))

const int sd_simd_nr_avx512bf16 = NR;

/* f32/f16/bf16 element -> bf16 with round to nearest even (bf16 kept). */
static inline uint16_t to_bf16(const void *w, sd_dtype dt, int64_t i) {
    switch (dt) {
    case SD_BF16: return ((const uint16_t *)w)[i];
    case SD_F16: return sd_f32_to_bf16(sd_f16_to_f32(((const uint16_t *)w)[i]));
    default: return sd_f32_to_bf16(((const float *)w)[i]);
    }
}

/* Panels of NR columns in VDPBF16PS order: depth pair t, column c holds
 * (w[c][2t], w[c][2t+1]) as two adjacent bf16, so one zmm load is 16
 * columns × 1 pair. Depth is padded with zeros to an even count. */
simd_pw *sd_simd_pack_weights_bf16(const void *w, sd_dtype dt, int64_t n, int64_t k, const int64_t *koff,
                                   const void *bias, sd_dtype bdt) {
    if (dt != SD_F32 && dt != SD_F16 && dt != SD_BF16)
        return NULL;
    int64_t npan = (n + NR - 1) / NR, kp = (k + 1) / 2;
    size_t pbytes = (size_t)npan * (size_t)kp * NR * 2 * sizeof(uint16_t);
    simd_pw *pw = sd_simd_pw_alloc(n, k, NR, SD_BF16, bias, bdt, pbytes);
    if (!pw)
        return NULL;
    uint16_t *pan = pw->panels;
    memset(pan, 0, pbytes); /* padding columns and the odd depth slot */
    size_t es = sd_dtype_size(dt);
    for (int64_t p = 0; p < npan; p++) {
        uint16_t *dp = pan + (size_t)p * (size_t)kp * NR * 2;
        for (int c = 0; c < NR && p * NR + c < n; c++) {
            const unsigned char *src = (const unsigned char *)w + (size_t)(p * NR + c) * (size_t)k * es;
            for (int64_t kk = 0; kk < k; kk++)
                dp[(kk >> 1) * NR * 2 + c * 2 + (kk & 1)] = to_bf16(src, dt, koff ? koff[kk] : kk);
        }
    }
    return pw;
}

/* ---------------------------------------------------------------- GEMM -- */

typedef struct bf_job {
    const simd_pw *pw;
    const float *x; /* A source: rows of lda floats, or the conv input */
    int64_t M, lda;
    int conv; /* 1: A is the implicit im2col of an NHWC image */
    int64_t H, W, Ci, kh, kw, stride, pt, pl, Ho, Wo;
    float *out;
    const float *res;
    int64_t mc, nnb, pan_per_nb, kcs, nkb;
} bf_job;

/* kc floats -> bf16 (nearest even), zero padded up to a multiple of 32. */
static inline void cvt_row(uint16_t *d, const float *s, int64_t kc) {
    for (int64_t t = 0; t < kc; t += 32) {
        int64_t left = kc - t;
        __mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __mmask16 m1 = left >= 32 ? (__mmask16)0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
        __m512 lo = _mm512_maskz_loadu_ps(m0, s + t), hi = _mm512_maskz_loadu_ps(m1, s + t + 16);
        __m512bh v = _mm512_cvtne2ps_pbh(hi, lo); /* low half of the result from the 2nd operand */
        _mm512_storeu_si512((void *)(d + t), (__m512i)v);
    }
}

/* A rows [m0, m0+mc) × depth [k0, k0+kc) -> bf16 rows of stride KC. */
static void pack_a(const bf_job *j, uint16_t *dst, int64_t m0, int64_t mc, int64_t k0, int64_t kc) {
    alignas(64) float tmp[KC];
    int64_t mcp = (mc + MR - 1) / MR * MR;
    for (int64_t r = 0; r < mcp; r++) {
        uint16_t *dr = dst + r * KC;
        if (r >= mc) {
            memset(dr, 0, (size_t)((kc + 31) / 32 * 32) * sizeof *dr);
            continue;
        }
        int64_t m = m0 + r;
        if (!j->conv) {
            if (m + 4 < j->M)
                for (int64_t t = 0; t < kc; t += 16) __builtin_prefetch(j->x + (m + 4) * j->lda + k0 + t);
            cvt_row(dr, j->x + m * j->lda + k0, kc);
            continue;
        }
        /* Implicit im2col, depth kk = (ky*kw + kx)*Ci + ci: contiguous runs
         * of input channels per tap, gathered in f32 then rounded. */
        int64_t hw = j->Ho * j->Wo, b = m / hw, p = m - b * hw;
        int64_t oy = p / j->Wo, ox = p - oy * j->Wo;
        int64_t iy0 = oy * j->stride - j->pt, ix0 = ox * j->stride - j->pl;
        for (int64_t kk = k0; kk < k0 + kc;) {
            int64_t seg = kk / j->Ci, ci = kk - seg * j->Ci;
            int64_t ky = seg / j->kw, kx = seg - ky * j->kw;
            int64_t len = BMIN(j->Ci - ci, k0 + kc - kk);
            int64_t iy = iy0 + ky, ix = ix0 + kx;
            float *dd = tmp + (kk - k0);
            if (iy >= 0 && iy < j->H && ix >= 0 && ix < j->W)
                memcpy(dd, j->x + ((b * j->H + iy) * j->W + ix) * j->Ci + ci, (size_t)len * sizeof *dd);
            else
                memset(dd, 0, (size_t)len * sizeof *dd);
            kk += len;
        }
        cvt_row(dr, tmp, kc);
    }
}

/* C[mr×nr] (+)= A[MR × 2np] · B[2np × NR] with VDPBF16PS; a: bf16 rows of
 * stride KC, b: np pairs × NR columns. Epilogue as the f32 AVX-512 kernel. */
static inline __attribute__((always_inline)) void ukr(int64_t np, const uint16_t *a, const uint16_t *b,
                                                      float *c, int64_t ldc, int mr, int nr, int flags,
                                                      const float *bias, const float *res) {
#define Z(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    Z(0) Z(1) Z(2) Z(3) Z(4) Z(5) Z(6) Z(7) Z(8) Z(9) Z(10) Z(11) Z(12) Z(13)
#undef Z
    for (int64_t t = 0; t < np; t++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)b);
        __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(b + 32));
#define F(i)                                                                   \
    {                                                                          \
        int32_t pr;                                                            \
        memcpy(&pr, a + (int64_t)(i) * KC + 2 * t, 4);                         \
        __m512bh av = (__m512bh)_mm512_set1_epi32(pr);                         \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, av, b0);                           \
        c##i##1 = _mm512_dpbf16_ps(c##i##1, av, b1);                           \
    }
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13)
#undef F
        b += NR * 2;
    }
    SD_AVX512_STORE_14X32();
}

static void gemm_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const bf_job *j = ctx;
    const simd_pw *pw = j->pw;
    alignas(64) uint16_t apack[MC * KC]; /* per-thread, on the stack: no allocation in a step */
    int64_t mb = task / j->nnb, nb = task - mb * j->nnb;
    int64_t m0 = mb * j->mc, mc = BMIN(j->mc, j->M - m0);
    int64_t npan = (pw->n + NR - 1) / NR, kp = (pw->k + 1) / 2;
    int64_t p0 = nb * j->pan_per_nb, p1 = BMIN(npan, p0 + j->pan_per_nb);
    int64_t N = pw->n;
    const uint16_t *pan = pw->panels;
    for (int64_t kb = 0; kb < j->nkb; kb++) {
        int64_t k0 = kb * j->kcs, kc = BMIN(j->kcs, pw->k - k0); /* k0 is even */
        int flags = (kb > 0 ? UK_LOAD : 0) | (kb == j->nkb - 1 ? UK_EPI : 0);
        pack_a(j, apack, m0, mc, k0, kc);
        for (int64_t p = p0; p < p1; p++) {
            const uint16_t *bp = pan + (size_t)(p * kp + k0 / 2) * NR * 2;
            int nr = (int)BMIN((int64_t)NR, N - p * NR);
            const float *bias = pw->bias ? pw->bias + p * NR : NULL;
            for (int64_t i0 = 0; i0 < mc; i0 += MR) {
                int mr = (int)BMIN((int64_t)MR, mc - i0);
                int64_t coff = (m0 + i0) * N + p * NR;
                ukr((kc + 1) / 2, apack + i0 * KC, bp, j->out + coff, N, mr, nr, flags, bias,
                    j->res ? j->res + coff : NULL);
            }
        }
    }
}

static void gemm_run(sd_pool *pool, bf_job *j) {
    const simd_pw *pw = j->pw;
    if (j->M <= 0 || pw->n <= 0)
        return;
    if (pw->k <= 0) { /* empty reduction: bias + residual only */
        for (int64_t m = 0; m < j->M; m++)
            for (int64_t n = 0; n < pw->n; n++)
                j->out[m * pw->n + n] = (pw->bias ? pw->bias[n] : 0.0f) + (j->res ? j->res[m * pw->n + n] : 0.0f);
        return;
    }
    int nt = sd_pool_threads(pool);
    /* Same task shapes as the f32 driver (simd_kernels.inc). */
    int64_t mps = (j->M + MR - 1) / MR;
    int64_t mcp = BMAX((int64_t)4, (mps + 8 * nt - 1) / (8 * nt));
    j->mc = BMIN((int64_t)(MC / MR), mcp) * MR;
    int64_t nmb = (j->M + j->mc - 1) / j->mc, npan = (pw->n + NR - 1) / NR;
    int64_t nnb = 1;
    if (nmb < 4 * (int64_t)nt)
        nnb = BMIN(npan, (4 * (int64_t)nt + nmb - 1) / nmb);
    j->pan_per_nb = (npan + nnb - 1) / nnb;
    j->nnb = (npan + j->pan_per_nb - 1) / j->pan_per_nb;
    /* Even k-blocks (pairs never straddle blocks), each <= KC. */
    int64_t nkb = (pw->k + KC - 1) / KC;
    j->kcs = (pw->k + nkb - 1) / nkb;
    j->kcs += j->kcs & 1;
    j->nkb = (pw->k + j->kcs - 1) / j->kcs;
    sd_pool_for(pool, nmb * j->nnb, gemm_task, j);
}

void sd_simd_gemm_avx512bf16(sd_pool *pool, const simd_pw *pw, const float *x, int64_t M, float *out,
                             const float *res) {
    bf_job j = {.pw = pw, .x = x, .M = M, .lda = pw->k, .out = out, .res = res};
    gemm_run(pool, &j);
}

/* --------------------------------------------------- matmul / conv2d -- */

/* Weight w (ndim dims) and bias b of a matmul/conv2d node, when both are
 * constant weights with data: the only case that is packed at prepare. */
static int weights_packable(const sd_graph *g, const sd_node *n, const void *const *raw, int ndim) {
    int w = n->in[1], b = n->in[2];
    const sd_tensor *tw = &g->t[w];
    if (tw->kind != SD_T_WEIGHT || !raw[w] || tw->ndim != ndim)
        return 0;
    return b < 0 || (g->t[b].kind == SD_T_WEIGHT && raw[b]);
}

/* Stored 8-bit weights (SD_Q8) are rounded to bf16 from their exact
 * dequantised values: *wd becomes a malloc'd f32 copy (freed by the
 * caller), dt F32. Returns 0 when out of memory. */
static int unq8(const sd_tensor *tw, const void **wd, sd_dtype *dt, float **tmp) {
    *tmp = NULL;
    *dt = tw->dtype;
    if (tw->dtype != SD_Q8)
        return 1;
    if (!(*tmp = malloc((size_t)sd_tensor_nelem(tw) * sizeof(float) + 1)))
        return 0;
    sd_weight_to_f32(tw, *wd, *tmp);
    *wd = *tmp;
    *dt = SD_F32;
    return 1;
}

static void *prep_matmul(const sd_graph *g, const sd_node *n, const void *const *raw) {
    if (!weights_packable(g, n, raw, 2))
        return NULL;
    int w = n->in[1], b = n->in[2];
    const sd_tensor *tw = &g->t[w];
    const void *wd = raw[w];
    sd_dtype dt;
    float *tmp;
    if (!unq8(tw, &wd, &dt, &tmp))
        return NULL;
    simd_pw *pw = sd_simd_pack_weights_bf16(wd, dt, tw->ne[0], tw->ne[1], NULL, b >= 0 ? raw[b] : NULL,
                                            b >= 0 ? g->t[b].dtype : SD_F32);
    free(tmp);
    return pw;
}

static void k_matmul(const sd_cpu_ctx *c) {
    const sd_node *n = c->n;
    const simd_pw *pw = c->packed[n - c->g->n];
    if (!pw || pw->nr != NR || pw->dtype != SD_BF16) {
        sd_simd_gemm_unpacked(c); /* activation weights (none in SD) or no memory: exact f32 */
        return;
    }
    const sd_tensor *tx = &c->g->t[n->in[0]];
    int64_t K = tx->ne[tx->ndim - 1];
    bf_job j = {.pw = pw, .x = c->data[n->in[0]], .M = sd_tensor_nelem(tx) / K, .lda = K,
                .out = c->data[n->out], .res = n->in[3] >= 0 ? c->data[n->in[3]] : NULL};
    gemm_run(c->pool, &j);
}

static void *prep_conv2d(const sd_graph *g, const sd_node *n, const void *const *raw) {
    if (!weights_packable(g, n, raw, 4))
        return NULL;
    int w = n->in[1], b = n->in[2];
    const sd_tensor *tw = &g->t[w];
    int64_t co = tw->ne[0], ci = tw->ne[1], kh = tw->ne[2], kw = tw->ne[3], K = ci * kh * kw;
    /* GEMM depth order (ky, kx, ci) follows NHWC input runs. */
    int64_t *koff = malloc((size_t)(K > 0 ? K : 1) * sizeof *koff);
    if (!koff)
        return NULL;
    for (int64_t ky = 0; ky < kh; ky++)
        for (int64_t kx = 0; kx < kw; kx++)
            for (int64_t i = 0; i < ci; i++) koff[(ky * kw + kx) * ci + i] = (i * kh + ky) * kw + kx;
    const void *wd = raw[w];
    sd_dtype dt;
    float *tmp;
    if (!unq8(tw, &wd, &dt, &tmp)) {
        free(koff);
        return NULL;
    }
    simd_pw *pw = sd_simd_pack_weights_bf16(wd, dt, co, K, koff, b >= 0 ? raw[b] : NULL,
                                            b >= 0 ? g->t[b].dtype : SD_F32);
    free(koff);
    free(tmp);
    return pw;
}

static void k_conv2d(const sd_cpu_ctx *c) {
    const sd_node *n = c->n;
    const simd_pw *pw = c->packed[n - c->g->n];
    if (!pw || pw->nr != NR || pw->dtype != SD_BF16) {
        sd_simd_gemm_unpacked(c);
        return;
    }
    const sd_tensor *tx = &c->g->t[n->in[0]], *tw = &c->g->t[n->in[1]], *to = &c->g->t[n->out];
    bf_job j = {.pw = pw, .x = c->data[n->in[0]], .out = c->data[n->out],
                .res = n->in[3] >= 0 ? c->data[n->in[3]] : NULL};
    j.H = tx->ne[1], j.W = tx->ne[2], j.Ci = tx->ne[3];
    j.kh = tw->ne[2], j.kw = tw->ne[3];
    j.stride = n->i[0], j.pt = n->i[1], j.pl = n->i[2];
    j.Ho = to->ne[1], j.Wo = to->ne[2];
    j.M = to->ne[0] * j.Ho * j.Wo;
    j.conv = !(j.kh == 1 && j.kw == 1 && j.stride == 1 && j.pt == 0 && j.pl == 0 && j.Ho == j.H &&
               j.Wo == j.W);
    j.lda = j.Ci;
    gemm_run(c->pool, &j);
}

/* 12 independent VDPBF16PS chains; flops = iters · 12 · 16 lanes · 2 pairs · 2. */
double sd_simd_fma_loop_avx512bf16(int64_t iters) {
    __m512 x[12];
    __m512bh m = (__m512bh)_mm512_set1_epi16(0x3f80), d = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < 12; i++) x[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) x[i] = _mm512_dpbf16_ps(x[i], m, d);
    __m512 s = x[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, x[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * 12 * 16 * 4;
}

void sd_simd_install_avx512bf16(sd_cpu_kernels *k) {
    sd_simd_install_avx512(k); /* attention, norms, activations: the f32 AVX-512 kernels */
    k->fn[SD_OP_MATMUL] = k_matmul;
    k->prep[SD_OP_MATMUL] = prep_matmul;
    k->want_f32_weights[SD_OP_MATMUL] = 0;
    k->fn[SD_OP_CONV2D] = k_conv2d;
    k->prep[SD_OP_CONV2D] = prep_conv2d;
    k->want_f32_weights[SD_OP_CONV2D] = 0;
    /* bf16 is its own weight precision: no 8-bit weights made at load */
    k->prep_q8[SD_OP_MATMUL] = k->prep_q8[SD_OP_CONV2D] = NULL;
}
