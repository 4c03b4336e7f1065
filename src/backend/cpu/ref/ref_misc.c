/* Reference element-wise, data-movement and sampler ops. Transcendentals
 * are evaluated in double so the reference is the accurate side. */
#include <math.h>
#include <string.h>

#include "ref.h"

#define CHUNK 16384 /* elements per task */

/* ---- unary maps ---------------------------------------------------------- */

typedef struct {
    sd_op op;
    const float *x;
    float *out;
    int64_t n;
    float f0, f1;
} map_args;

static inline float gelu1(float v) { return (float)(0.5 * v * erfc(-(double)v * M_SQRT1_2)); }
static inline float sigm_mul(float v, double k) { return (float)(v / (1.0 + exp(-k * v))); }

static void map_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const map_args *a = ctx;
    int64_t i0 = task * CHUNK, i1 = i0 + CHUNK < a->n ? i0 + CHUNK : a->n;
    const float *x = a->x;
    float *o = a->out;
    switch (a->op) {
    case SD_OP_GELU:
        for (int64_t i = i0; i < i1; i++) o[i] = gelu1(x[i]);
        break;
    case SD_OP_QUICK_GELU:
        for (int64_t i = i0; i < i1; i++) o[i] = sigm_mul(x[i], 1.702);
        break;
    case SD_OP_SILU:
        for (int64_t i = i0; i < i1; i++) o[i] = sigm_mul(x[i], 1.0);
        break;
    case SD_OP_SCALE:
        for (int64_t i = i0; i < i1; i++) o[i] = x[i] * a->f0 + a->f1;
        break;
    case SD_OP_RELU: /* NaN stays NaN, as torch.relu */
        for (int64_t i = i0; i < i1; i++) o[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case SD_OP_TANH:
        for (int64_t i = i0; i < i1; i++) o[i] = (float)tanh((double)x[i]);
        break;
    default: /* COPY */
        if (o != x)
            memmove(o + i0, x + i0, (size_t)(i1 - i0) * sizeof(float));
        break;
    }
}

static void run_map(const sd_cpu_ctx *c, float f0, float f1) {
    map_args a = {c->n->op, REF_IN(c, 0), REF_OUT(c), sd_tensor_nelem(REF_T(c, c->n->out)), f0, f1};
    sd_pool_for(c->pool, (a.n + CHUNK - 1) / CHUNK, map_task, &a);
}

void sd_ref_gelu(const sd_cpu_ctx *c) { run_map(c, 0, 0); }
void sd_ref_quick_gelu(const sd_cpu_ctx *c) { run_map(c, 0, 0); }
void sd_ref_silu(const sd_cpu_ctx *c) { run_map(c, 0, 0); }
void sd_ref_scale(const sd_cpu_ctx *c) { run_map(c, c->n->f[0], c->n->f[1]); }
void sd_ref_relu(const sd_cpu_ctx *c) { run_map(c, 0, 0); }
void sd_ref_tanh(const sd_cpu_ctx *c) { run_map(c, 0, 0); }
/* COPY: element count and layout are equal (sd_copy_into checks the shape);
 * the destination may be a pinned input, e.g. the latent of the next step. */
void sd_ref_copy(const sd_cpu_ctx *c) { run_map(c, 0, 0); }

/* ---- GEGLU ------------------------------------------------------------- */

typedef struct {
    const float *x;
    float *out;
    int64_t rows, N;
} geglu_args;

static void geglu_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const geglu_args *a = ctx;
    int64_t per = CHUNK / a->N + 1, r1 = (task + 1) * per < a->rows ? (task + 1) * per : a->rows;
    for (int64_t r = task * per; r < r1; r++) {
        const float *x = a->x + r * 2 * a->N;
        float *o = a->out + r * a->N;
        for (int64_t k = 0; k < a->N; k++) o[k] = x[k] * gelu1(x[a->N + k]);
    }
}

void sd_ref_geglu(const sd_cpu_ctx *c) {
    const sd_tensor *O = REF_T(c, c->n->out);
    geglu_args a = {REF_IN(c, 0), REF_OUT(c), 0, O->ne[O->ndim - 1]};
    a.rows = sd_tensor_nelem(O) / a.N;
    int64_t per = CHUNK / a.N + 1;
    sd_pool_for(c->pool, (a.rows + per - 1) / per, geglu_task, &a);
}

/* ---- ADD / MUL with numpy broadcasting of b ------------------------------ */

typedef struct {
    const float *a, *b;
    float *out;
    int64_t ne[SD_MAX_DIMS], bst[SD_MAX_DIMS]; /* a's shape; b's stride per a dim (0: broadcast) */
    int nd, mul;
    int64_t rows, inner, per;
} bin_args;

static void bin_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const bin_args *a = ctx;
    int64_t r1 = (task + 1) * a->per < a->rows ? (task + 1) * a->per : a->rows;
    int64_t bi = a->bst[a->nd - 1];
    for (int64_t r = task * a->per; r < r1; r++) {
        int64_t boff = 0, rem = r;
        for (int d = a->nd - 2; d >= 0; d--) {
            boff += rem % a->ne[d] * a->bst[d];
            rem /= a->ne[d];
        }
        const float *x = a->a + r * a->inner, *y = a->b + boff;
        float *o = a->out + r * a->inner;
        if (a->mul)
            for (int64_t k = 0; k < a->inner; k++) o[k] = x[k] * y[k * bi];
        else
            for (int64_t k = 0; k < a->inner; k++) o[k] = x[k] + y[k * bi];
    }
}

static void run_binary(const sd_cpu_ctx *c, int mul) {
    const sd_tensor *A = REF_T(c, c->n->in[0]), *B = REF_T(c, c->n->in[1]);
    bin_args a = {REF_IN(c, 0), REF_IN(c, 1), REF_OUT(c)};
    a.nd = A->ndim;
    a.mul = mul;
    int64_t st = 1;
    for (int d = A->ndim - 1; d >= 0; d--) {
        int db = d - (A->ndim - B->ndim);
        a.ne[d] = A->ne[d];
        if (db < 0 || B->ne[db] == 1) {
            a.bst[d] = 0;
        } else {
            a.bst[d] = st;
        }
        if (db >= 0)
            st *= B->ne[db];
    }
    a.inner = A->ne[A->ndim - 1];
    a.rows = sd_tensor_nelem(A) / a.inner;
    a.per = CHUNK / a.inner + 1;
    sd_pool_for(c->pool, (a.rows + a.per - 1) / a.per, bin_task, &a);
}

void sd_ref_add(const sd_cpu_ctx *c) { run_binary(c, 0); }
void sd_ref_mul(const sd_cpu_ctx *c) { run_binary(c, 1); }

/* ---- data movement --------------------------------------------------------- */

typedef struct {
    const float *x;
    float *out;
    int64_t H, W, C, Ho, Wo;
} up_args;

static void up_task(void *ctx, int64_t task, int thread) { /* one output row (b, y) */
    (void)thread;
    const up_args *a = ctx;
    int64_t b = task / a->Ho, y = task % a->Ho;
    const float *src = a->x + (b * a->H + y / 2) * a->W * a->C;
    float *dst = a->out + task * a->Wo * a->C;
    for (int64_t x = 0; x < a->Wo; x++)
        memcpy(dst + x * a->C, src + (x / 2) * a->C, (size_t)a->C * sizeof(float));
}

void sd_ref_upsample2x(const sd_cpu_ctx *c) {
    const sd_tensor *X = REF_T(c, c->n->in[0]), *O = REF_T(c, c->n->out);
    up_args a = {REF_IN(c, 0), REF_OUT(c), X->ne[1], X->ne[2], X->ne[3], O->ne[1], O->ne[2]};
    sd_pool_for(c->pool, X->ne[0] * a.Ho, up_task, &a);
}

void sd_ref_concat(const sd_cpu_ctx *c) {
    const sd_tensor *A = REF_T(c, c->n->in[0]), *B = REF_T(c, c->n->in[1]);
    int axis = c->n->i[0] < 0 ? c->n->i[0] + A->ndim : c->n->i[0];
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= A->ne[d];
    for (int d = axis + 1; d < A->ndim; d++) inner *= A->ne[d];
    size_t na = (size_t)(A->ne[axis] * inner), nb = (size_t)(B->ne[axis] * inner);
    const float *a = REF_IN(c, 0), *b = REF_IN(c, 1);
    float *o = REF_OUT(c);
    /* pure memory traffic: serial memcpy runs at bandwidth already */
    for (int64_t i = 0; i < outer; i++) {
        memcpy(o + i * (int64_t)(na + nb), a + i * (int64_t)na, na * sizeof(float));
        memcpy(o + i * (int64_t)(na + nb) + na, b + i * (int64_t)nb, nb * sizeof(float));
    }
}

void sd_ref_embedding(const sd_cpu_ctx *c) {
    const sd_tensor *I = REF_T(c, c->n->in[0]), *W = REF_T(c, c->n->in[1]);
    const int32_t *ids = c->data[c->n->in[0]];
    const float *table = REF_IN(c, 1);
    float *o = REF_OUT(c);
    int64_t n = sd_tensor_nelem(I), V = W->ne[0], C = W->ne[1];
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] >= 0 && ids[i] < V) /* out-of-range ids give zeros rather than a wild read */
            memcpy(o + i * C, table + ids[i] * C, (size_t)C * sizeof(float));
        else
            memset(o + i * C, 0, (size_t)C * sizeof(float));
    }
}

void sd_ref_timestep_embed(const sd_cpu_ctx *c) {
    const sd_tensor *T = REF_T(c, c->n->in[0]);
    const float *t = REF_IN(c, 0);
    float *o = REF_OUT(c);
    int64_t half = c->n->i[0] / 2;
    for (int64_t b = 0; b < T->ne[0]; b++)
        for (int64_t k = 0; k < half; k++) {
            double arg = (double)t[b] * exp(-log(10000.0) * (double)k / (double)half);
            o[b * 2 * half + k] = (float)cos(arg);
            o[b * 2 * half + half + k] = (float)sin(arg);
        }
}

void sd_ref_step_select(const sd_cpu_ctx *c) {
    /* the backend checks step < table rows before running */
    const sd_tensor *O = REF_T(c, c->n->out);
    size_t n = (size_t)sd_tensor_nelem(O);
    memcpy(REF_OUT(c), REF_IN(c, 0) + (size_t)c->step * n, n * sizeof(float));
}

void sd_ref_cfg_combine(const sd_cpu_ctx *c) {
    const sd_tensor *O = REF_T(c, c->n->out);
    int64_t n = sd_tensor_nelem(O);
    const float *cond = REF_IN(c, 0), *unc = cond + n;
    float *o = REF_OUT(c), s = REF_IN(c, 1)[0];
    for (int64_t i = 0; i < n; i++) o[i] = unc[i] + s * (cond[i] - unc[i]);
}

void sd_ref_sampler_step(const sd_cpu_ctx *c) {
    int64_t n = sd_tensor_nelem(REF_T(c, c->n->out));
    const int o = c->n->i[0], R = c->n->i[1];
    const float *S = REF_IN(c, 0), *e = REF_IN(c, 1), *z = c->n->in[2] >= 0 ? REF_IN(c, 2) : NULL;
    const float *k = REF_IN(c, 3) + o;
    float *out = REF_OUT(c);
    for (int64_t i = 0; i < n; i++) {
        float v = k[0] * e[i] + (z ? k[1] * z[i] : 0.0f);
        for (int r = 0; r < R; r++) v += k[2 + r] * S[(int64_t)r * n + i];
        out[i] = v;
    }
}
