/* Reference MATMUL and CONV2D.
 *
 * Both are written as one small "rows x panel" product: the weight is
 * repacked once at prepare into panels of NW output channels laid out
 * [k][NW], so the inner loop is a broadcast of one input value times NW
 * contiguous weights. That form is plain C yet the compiler vectorises it
 * well with baseline x86-64 flags (measured ~30 GFLOP per CPU-second, about
 * 4x the row-dot-product form), and each output is still a plain fp32 sum
 * over k in order. Convolution reuses it as
 * an implicit GEMM: per output pixel and kernel tap, the input row of Ci
 * channels (NHWC: contiguous) times the tap's [Ci][NW] panel. */
#include <stdlib.h>
#include <string.h>

#include "../../../core/q8.h"
#include "ref.h"

#define NW 32 /* output channels per weight panel */
#define MR 4  /* input rows (pixels) per tile */
#define MB 32 /* input rows per task */

float sd_ref_raw_f32(const void *raw, sd_dtype dt, int64_t i) {
    switch (dt) {
    case SD_F16: return sd_f16_to_f32(((const uint16_t *)raw)[i]);
    case SD_BF16: return sd_bf16_to_f32(((const uint16_t *)raw)[i]);
    case SD_I32: return (float)((const int32_t *)raw)[i];
    default: return ((const float *)raw)[i];
    }
}

/* s[r][j] += sum_k a[r][k] * wp[k][j] over the full panel width. */
static void panel_kernel(const float *const a[MR], const float *wp, int64_t K, float s[MR][NW]) {
    float acc[MR][NW];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < K; k++) {
        const float *wk = wp + k * NW;
        for (int r = 0; r < MR; r++) {
            float av = a[r][k];
            for (int j = 0; j < NW; j++) acc[r][j] += av * wk[j];
        }
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NW; j++) s[r][j] += acc[r][j];
}

/* A packed weight: np panels, each [taps][K][NW] (zero-padded past N),
 * plus the bias as f32 and a zero row used for padded conv taps. */
typedef struct {
    int64_t N, K, taps, np;
    float *bias; /* NULL when the node has none */
    float *zero; /* K zeros */
    float *w;
} packed_w;

/* q8 != 0: the weight is quantised to q8 first when its shape allows
 * (options.weights = q8: the reference then computes with exactly the
 * values the SIMD kernels use). */
static packed_w *pack_weight(const sd_graph *g, const sd_node *n, const void *const *raw,
                             int64_t N, int64_t K, int64_t taps, int conv, int q8) {
    int64_t np = (N + NW - 1) / NW;
    size_t nw = (size_t)(np * taps * K * NW), nb = n->in[2] >= 0 ? (size_t)N : 0;
    packed_w *p = malloc(sizeof *p + (nw + nb + (size_t)K + 16) * sizeof(float));
    if (!p)
        return NULL;
    p->N = N, p->K = K, p->taps = taps, p->np = np;
    float *f = (float *)(p + 1);
    p->w = f;
    p->zero = f + nw;
    memset(p->zero, 0, (size_t)K * sizeof(float));
    p->bias = nb ? p->zero + K : NULL;
    const sd_tensor *W = &g->t[n->in[1]];
    const void *wr = raw[n->in[1]];
    sd_dtype wdt = W->dtype;
    /* 8-bit weights (stored, or made here) are read as their exact
     * dequantised values. */
    float *deq = NULL;
    int quant = q8 && wdt != SD_Q8 && sd_q8_eligible(W->ndim, W->ne);
    if (wdt == SD_Q8 || quant) {
        size_t ne = (size_t)sd_tensor_nelem(W);
        deq = malloc(ne * sizeof(float) + 1);
        int8_t *qv = quant ? malloc(ne + 1) : NULL;
        uint16_t *sc = quant ? malloc((size_t)sd_q8_nscales(W->ndim, W->ne) * 2 + 2) : NULL;
        if (!deq || (quant && (!qv || !sc ||
                               sd_q8_quantize_tensor(wr, wdt, W->ndim, W->ne, qv, sc, W->name)))) {
            free(deq), free(qv), free(sc), free(p);
            return NULL;
        }
        sd_q8_dequantize(quant ? qv : wr, quant ? sc : W->scale, W->ndim, W->ne, deq);
        free(qv), free(sc);
        wr = deq;
        wdt = SD_F32;
    }
    for (int64_t pi = 0; pi < np; pi++)
        for (int64_t t = 0; t < taps; t++)
            for (int64_t k = 0; k < K; k++) {
                float *dst = p->w + ((pi * taps + t) * K + k) * NW;
                for (int64_t j = 0; j < NW; j++) {
                    int64_t o = pi * NW + j;
                    /* matmul: w[o][k]; conv: w[o][k=ci][tap] (OIHW) */
                    int64_t src = conv ? (o * K + k) * taps + t : o * K + k;
                    dst[j] = o < N ? sd_ref_raw_f32(wr, wdt, src) : 0.0f;
                }
            }
    free(deq);
    if (nb) {
        const sd_tensor *B = &g->t[n->in[2]];
        for (int64_t o = 0; o < N; o++) p->bias[o] = sd_ref_raw_f32(raw[n->in[2]], B->dtype, o);
    }
    return p;
}

void *sd_ref_matmul_prep(const sd_graph *g, const sd_node *n, const void *const *raw) {
    const sd_tensor *W = &g->t[n->in[1]];
    return pack_weight(g, n, raw, W->ne[0], W->ne[1], 1, 0, 0);
}

void *sd_ref_conv2d_prep(const sd_graph *g, const sd_node *n, const void *const *raw) {
    const sd_tensor *W = &g->t[n->in[1]];
    return pack_weight(g, n, raw, W->ne[0], W->ne[1], W->ne[2] * W->ne[3], 1, 0);
}

void *sd_ref_matmul_prep_q8(const sd_graph *g, const sd_node *n, const void *const *raw) {
    const sd_tensor *W = &g->t[n->in[1]];
    return pack_weight(g, n, raw, W->ne[0], W->ne[1], 1, 0, 1);
}

void *sd_ref_conv2d_prep_q8(const sd_graph *g, const sd_node *n, const void *const *raw) {
    const sd_tensor *W = &g->t[n->in[1]];
    return pack_weight(g, n, raw, W->ne[0], W->ne[1], W->ne[2] * W->ne[3], 1, 1);
}

size_t sd_ref_prep_size(sd_op op, const void *pv) {
    (void)op;
    const packed_w *p = pv;
    return p ? sizeof *p + (size_t)(p->np * p->taps * p->K * NW + p->N + p->K) * sizeof(float) : 0;
}

/* Writes one tile's results: out = acc + bias + residual for valid rows/cols. */
static void store_tile(const packed_w *p, int64_t p0, float s[MR][NW], int64_t row0, int nrows,
                       float *out, const float *res) {
    int64_t n0 = p0 * NW, nn = p->N - n0 < NW ? p->N - n0 : NW;
    for (int r = 0; r < nrows; r++) {
        float *o = out + (row0 + r) * p->N + n0;
        const float *rr = res ? res + (row0 + r) * p->N + n0 : NULL;
        for (int64_t j = 0; j < nn; j++) {
            float v = s[r][j];
            if (p->bias)
                v += p->bias[n0 + j];
            if (rr)
                v += rr[j];
            o[j] = v;
        }
    }
}

typedef struct {
    const packed_w *p;
    const float *x, *res;
    float *out;
    int64_t M, nmb;
} mm_args;

static void matmul_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const mm_args *a = ctx;
    const packed_w *p = a->p;
    /* panel-major task order: threads working at once share a panel in cache */
    int64_t pi = task / a->nmb, mb = task % a->nmb;
    int64_t r_end = (mb + 1) * MB < a->M ? (mb + 1) * MB : a->M;
    const float *wp = p->w + pi * p->K * NW;
    for (int64_t r0 = mb * MB; r0 < r_end; r0 += MR) {
        int nrows = r_end - r0 < MR ? (int)(r_end - r0) : MR;
        const float *rows[MR];
        for (int r = 0; r < MR; r++) rows[r] = a->x + (r0 + (r < nrows ? r : 0)) * p->K;
        float s[MR][NW];
        memset(s, 0, sizeof s);
        panel_kernel(rows, wp, p->K, s);
        store_tile(p, pi, s, r0, nrows, a->out, a->res);
    }
}

void sd_ref_matmul(const sd_cpu_ctx *c) {
    const sd_node *n = c->n;
    const packed_w *p = c->packed[c->n - c->g->n];
    mm_args a = {p, REF_IN(c, 0), n->in[3] >= 0 ? REF_IN(c, 3) : NULL, REF_OUT(c), 0, 0};
    a.M = sd_tensor_nelem(REF_T(c, n->in[0])) / p->K;
    a.nmb = (a.M + MB - 1) / MB;
    sd_pool_for(c->pool, a.nmb * p->np, matmul_task, &a);
}

typedef struct {
    const packed_w *p;
    const float *x, *res;
    float *out;
    int64_t H, W, Ci, Ho, Wo, kh, kw, P, npb;
    int stride, pt, pl;
} conv_args;

static void conv_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const conv_args *a = ctx;
    const packed_w *p = a->p;
    int64_t pi = task / a->npb, pb = task % a->npb;
    int64_t q_end = (pb + 1) * MB < a->P ? (pb + 1) * MB : a->P;
    for (int64_t q0 = pb * MB; q0 < q_end; q0 += MR) {
        int nq = q_end - q0 < MR ? (int)(q_end - q0) : MR;
        int64_t bb[MR], oy[MR], ox[MR];
        for (int r = 0; r < MR; r++) {
            int64_t q = q0 + (r < nq ? r : 0);
            bb[r] = q / (a->Ho * a->Wo);
            oy[r] = q / a->Wo % a->Ho;
            ox[r] = q % a->Wo;
        }
        float s[MR][NW];
        memset(s, 0, sizeof s);
        for (int64_t ky = 0; ky < a->kh; ky++)
            for (int64_t kx = 0; kx < a->kw; kx++) {
                const float *rows[MR];
                for (int r = 0; r < MR; r++) {
                    int64_t iy = oy[r] * a->stride - a->pt + ky, ix = ox[r] * a->stride - a->pl + kx;
                    rows[r] = iy >= 0 && iy < a->H && ix >= 0 && ix < a->W
                                  ? a->x + ((bb[r] * a->H + iy) * a->W + ix) * a->Ci
                                  : p->zero;
                }
                const float *wp = p->w + ((pi * p->taps) + ky * a->kw + kx) * p->K * NW;
                panel_kernel(rows, wp, a->Ci, s);
            }
        store_tile(p, pi, s, q0, nq, a->out, a->res);
    }
}

void sd_ref_conv2d(const sd_cpu_ctx *c) {
    const sd_node *n = c->n;
    const sd_tensor *X = REF_T(c, n->in[0]), *W = REF_T(c, n->in[1]), *O = REF_T(c, n->out);
    conv_args a = {c->packed[n - c->g->n], REF_IN(c, 0), n->in[3] >= 0 ? REF_IN(c, 3) : NULL,
                   REF_OUT(c)};
    a.H = X->ne[1], a.W = X->ne[2], a.Ci = X->ne[3];
    a.Ho = O->ne[1], a.Wo = O->ne[2];
    a.kh = W->ne[2], a.kw = W->ne[3];
    a.stride = n->i[0], a.pt = n->i[1], a.pl = n->i[2];
    a.P = O->ne[0] * a.Ho * a.Wo;
    a.npb = (a.P + MB - 1) / MB;
    sd_pool_for(c->pool, a.npb * a.p->np, conv_task, &a);
}
