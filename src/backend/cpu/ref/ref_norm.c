/* Reference GROUP_NORM, LAYER_NORM and ATTENTION. Statistics are taken in
 * double with a two-pass mean/variance, so these are the accurate side of
 * any comparison. */
#include <math.h>
#include <string.h>

#include "ref.h"

static inline float silu1(float v) { return v / (1.0f + expf(-v)); }

typedef struct {
    const float *x, *gamma, *beta;
    float *out;
    int64_t S, C, G;
    float eps;
    int silu;
} gn_args;

/* One task per (batch, group): both passes touch only that group's slice. */
static void gn_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const gn_args *a = ctx;
    int64_t b = task / a->G, g = task % a->G, cg = a->C / a->G;
    const float *x = a->x + b * a->S * a->C + g * cg;
    float *o = a->out + b * a->S * a->C + g * cg;
    double sum = 0, ss = 0, cnt = (double)a->S * (double)cg;
    for (int64_t s = 0; s < a->S; s++)
        for (int64_t k = 0; k < cg; k++) sum += x[s * a->C + k];
    double mean = sum / cnt;
    for (int64_t s = 0; s < a->S; s++)
        for (int64_t k = 0; k < cg; k++) {
            double d = x[s * a->C + k] - mean;
            ss += d * d;
        }
    double rstd = 1.0 / sqrt(ss / cnt + (double)a->eps);
    const float *gm = a->gamma + g * cg, *bt = a->beta + g * cg;
    for (int64_t s = 0; s < a->S; s++)
        for (int64_t k = 0; k < cg; k++) {
            float v = (float)((x[s * a->C + k] - mean) * rstd) * gm[k] + bt[k];
            o[s * a->C + k] = a->silu ? silu1(v) : v;
        }
}

void sd_ref_group_norm(const sd_cpu_ctx *c) {
    const sd_node *n = c->n;
    const sd_tensor *X = REF_T(c, n->in[0]);
    gn_args a = {REF_IN(c, 0), REF_IN(c, 1), REF_IN(c, 2), REF_OUT(c)};
    a.C = X->ne[X->ndim - 1];
    a.S = sd_tensor_nelem(X) / (X->ne[0] * a.C);
    a.G = n->i[0];
    a.eps = n->f[0];
    a.silu = n->i[1];
    sd_pool_for(c->pool, X->ne[0] * a.G, gn_task, &a);
}

typedef struct {
    const float *x, *gamma, *beta;
    float *out;
    int64_t rows, C;
    float eps;
} ln_args;

#define LN_ROWS 16

static void ln_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const ln_args *a = ctx;
    int64_t r_end = (task + 1) * LN_ROWS < a->rows ? (task + 1) * LN_ROWS : a->rows;
    for (int64_t r = task * LN_ROWS; r < r_end; r++) {
        const float *x = a->x + r * a->C;
        float *o = a->out + r * a->C;
        double sum = 0, ss = 0;
        for (int64_t k = 0; k < a->C; k++) sum += x[k];
        double mean = sum / (double)a->C;
        for (int64_t k = 0; k < a->C; k++) ss += (x[k] - mean) * (x[k] - mean);
        double rstd = 1.0 / sqrt(ss / (double)a->C + (double)a->eps);
        for (int64_t k = 0; k < a->C; k++)
            o[k] = (float)((x[k] - mean) * rstd) * a->gamma[k] + a->beta[k];
    }
}

void sd_ref_layer_norm(const sd_cpu_ctx *c) {
    const sd_tensor *X = REF_T(c, c->n->in[0]);
    ln_args a = {REF_IN(c, 0), REF_IN(c, 1), REF_IN(c, 2), REF_OUT(c)};
    a.C = X->ne[X->ndim - 1];
    a.rows = sd_tensor_nelem(X) / a.C;
    a.eps = c->n->f[0];
    sd_pool_for(c->pool, (a.rows + LN_ROWS - 1) / LN_ROWS, ln_task, &a);
}

/* ---- attention ---------------------------------------------------------
 * Per (batch, head, block of QB queries), keys are visited in chunks of KC
 * with an online softmax (running max m and denominator l per query; the
 * partial output is rescaled when the max grows), so no Lq x Lk score matrix
 * exists. The output rows themselves hold the running weighted sum of v. A
 * key chunk is transposed to [D][KC] so the scores for 4 queries come from
 * the same broadcast-times-contiguous loop as the GEMM. */

#define QB 16
#define KC 32

typedef struct {
    const float *q, *k, *v;
    float *out;
    int64_t B, Lq, Lk, H, D, nqb;
    float scale;
    int causal;
} attn_args;

static void attn_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const attn_args *a = ctx;
    int64_t qb = task % a->nqb, h = task / a->nqb % a->H, b = task / (a->nqb * a->H);
    int64_t C = a->H * a->D, D = a->D;
    int64_t i0 = qb * QB, i1 = i0 + QB < a->Lq ? i0 + QB : a->Lq;
    int64_t kend = a->causal ? (i1 < a->Lk ? i1 : a->Lk) : a->Lk;
    float kt[SD_REF_ATTN_MAX_D * KC];
    float m[QB], l[QB];
    float *orow[QB];
    const float *qrow[QB];
    for (int64_t r = 0; r < QB; r++) {
        int64_t i = i0 + r < i1 ? i0 + r : i0; /* pad the block by repeating a row */
        qrow[r] = a->q + (b * a->Lq + i) * C + h * D;
        orow[r] = a->out + (b * a->Lq + i) * C + h * D;
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    for (int64_t r = 0; r < i1 - i0; r++) memset(orow[r], 0, (size_t)D * sizeof(float));
    const float *kbase = a->k + b * a->Lk * C + h * D, *vbase = a->v + b * a->Lk * C + h * D;
    for (int64_t j0 = 0; j0 < kend; j0 += KC) {
        int64_t kc = kend - j0 < KC ? kend - j0 : KC;
        for (int64_t j = 0; j < KC; j++) {
            const float *kr = kbase + (j0 + (j < kc ? j : 0)) * C;
            for (int64_t d = 0; d < D; d++) kt[d * KC + j] = kr[d];
        }
        for (int64_t r0 = 0; r0 < i1 - i0; r0 += 4) {
            float s[4][KC];
            memset(s, 0, sizeof s);
            for (int64_t d = 0; d < D; d++) {
                const float *kd = kt + d * KC;
                for (int r = 0; r < 4; r++) {
                    float qv = qrow[r0 + r][d];
                    for (int j = 0; j < KC; j++) s[r][j] += qv * kd[j];
                }
            }
            int nr = i1 - i0 - r0 < 4 ? (int)(i1 - i0 - r0) : 4;
            float corr[4] = {1.0f, 1.0f, 1.0f, 1.0f};
            for (int r = 0; r < 4; r++) {
                int64_t i = i0 + r0 + r;
                float mx = r < nr ? m[r0 + r] : -INFINITY;
                if (r < nr && kc == KC && (!a->causal || j0 + KC - 1 <= i)) {
                    for (int j = 0; j < KC; j++) { /* common case: nothing masked */
                        s[r][j] *= a->scale;
                        mx = s[r][j] > mx ? s[r][j] : mx;
                    }
                } else {
                    for (int j = 0; j < KC; j++) {
                        int masked = r >= nr || j >= kc || (a->causal && j0 + j > i);
                        s[r][j] = masked ? -INFINITY : s[r][j] * a->scale;
                        mx = s[r][j] > mx ? s[r][j] : mx;
                    }
                }
                if (mx == -INFINITY) { /* padding row, or every key so far masked */
                    for (int j = 0; j < KC; j++) s[r][j] = 0.0f;
                    continue;
                }
                float sum = 0.0f;
                corr[r] = expf(m[r0 + r] - mx);
                for (int j = 0; j < KC; j++) {
                    s[r][j] = expf(s[r][j] - mx);
                    sum += s[r][j];
                }
                l[r0 + r] = l[r0 + r] * corr[r] + sum;
                m[r0 + r] = mx;
            }
            /* o = o * corr + p v over this chunk, 8 output columns at a time
             * so the 4 x 8 partial sums stay in registers */
            int64_t d0 = 0;
            for (; d0 + 8 <= D; d0 += 8) {
                float a0[8] = {0}, a1[8] = {0}, a2[8] = {0}, a3[8] = {0};
                for (int64_t j = 0; j < kc; j++) {
                    const float *vr = vbase + (j0 + j) * C + d0;
                    float p0 = s[0][j], p1 = s[1][j], p2 = s[2][j], p3 = s[3][j];
                    for (int e = 0; e < 8; e++) {
                        float ve = vr[e];
                        a0[e] += p0 * ve;
                        a1[e] += p1 * ve;
                        a2[e] += p2 * ve;
                        a3[e] += p3 * ve;
                    }
                }
                float *acc[4] = {a0, a1, a2, a3};
                for (int r = 0; r < nr; r++) {
                    float *o = orow[r0 + r] + d0;
                    for (int e = 0; e < 8; e++) o[e] = o[e] * corr[r] + acc[r][e];
                }
            }
            for (; d0 < D; d0++)
                for (int r = 0; r < nr; r++) {
                    float acc = 0.0f;
                    for (int64_t j = 0; j < kc; j++) acc += s[r][j] * vbase[(j0 + j) * C + d0];
                    orow[r0 + r][d0] = orow[r0 + r][d0] * corr[r] + acc;
                }
        }
    }
    for (int64_t r = 0; r < i1 - i0; r++) {
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        for (int64_t d = 0; d < D; d++) orow[r][d] *= inv;
    }
}

void sd_ref_attention(const sd_cpu_ctx *c) {
    const sd_node *n = c->n;
    const sd_tensor *Q = REF_T(c, n->in[0]), *K = REF_T(c, n->in[1]);
    attn_args a = {REF_IN(c, 0), REF_IN(c, 1), REF_IN(c, 2), REF_OUT(c)};
    a.B = Q->ne[0], a.Lq = Q->ne[1], a.Lk = K->ne[1], a.H = n->i[0];
    a.D = Q->ne[2] / a.H;
    a.nqb = (a.Lq + QB - 1) / QB;
    a.scale = n->f[0];
    a.causal = n->i[1];
    sd_pool_for(c->pool, a.B * a.H * a.nqb, attn_task, &a);
}
