#include "graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q8.h"
#include "status.h"

static const char *const k_op_names[] = {
#define SD_OP(ID, name, shader) name,
#include "ops.def"
#undef SD_OP
};

const char *sd_op_name(sd_op op) {
    return (unsigned)op < SD_OP_COUNT ? k_op_names[op] : "?";
}

int sd_op_from_name(const char *name) {
    for (int i = 0; i < SD_OP_COUNT; i++)
        if (!strcmp(k_op_names[i], name))
            return i;
    return -1;
}

sd_graph *sd_graph_new(void) { return calloc(1, sizeof(sd_graph)); }

void sd_graph_free(sd_graph *g) {
    if (!g)
        return;
    free(g->t);
    free(g->n);
    free(g);
}

int sd_graph_fail(sd_graph *g, sdvk_status s, const char *fmt, ...) {
    if (g->status == SDVK_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->err, sizeof g->err, fmt, ap);
        va_end(ap);
        g->status = s;
        sd_err(s, "%s", g->err);
    }
    return -1;
}

void sd_weight_to_f32(const sd_tensor *t, const void *data, float *dst) {
    if (t->dtype == SD_Q8)
        sd_q8_dequantize(data, t->scale, t->ndim, t->ne, dst);
    else
        sd_to_f32(dst, data, t->dtype, (size_t)sd_tensor_nelem(t));
}

int sd_graph_root(const sd_graph *g, int id) {
    while (id >= 0 && g->t[id].base >= 0) id = g->t[id].base;
    return id;
}

static int new_tensor(sd_graph *g, sd_tkind kind, sd_dtype dt, int ndim, const int64_t *ne,
                      const char *name) {
    if (g->status)
        return -1;
    if (ndim < 1 || ndim > SD_MAX_DIMS)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "tensor %s: %d dims (1..4 allowed)",
                             name ? name : "?", ndim);
    for (int d = 0; d < ndim; d++)
        if (ne[d] < 1 || ne[d] > ((int64_t)1 << 40))
            return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "tensor %s: bad extent %lld",
                                 name ? name : "?", (long long)ne[d]);
    /* ne may point into g->t (op constructors pass an input's shape), so
     * copy it before the table can move. */
    int64_t shape[SD_MAX_DIMS];
    char nm[sizeof g->t[0].name];
    for (int d = 0; d < ndim; d++) shape[d] = ne[d];
    snprintf(nm, sizeof nm, "%s", name ? name : "");
    if (g->nt == g->cap_t) {
        int cap = g->cap_t ? g->cap_t * 2 : 256;
        sd_tensor *t = realloc(g->t, (size_t)cap * sizeof *t);
        if (!t)
            return sd_graph_fail(g, SDVK_ERR_OOM, "graph: out of memory");
        g->t = t;
        g->cap_t = cap;
    }
    sd_tensor *t = &g->t[g->nt];
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->ne[d] = shape[d];
    t->kind = kind;
    t->base = -1;
    memcpy(t->name, nm, sizeof nm);
    return g->nt++;
}

int sd_graph_input(sd_graph *g, sd_dtype dt, int ndim, const int64_t *ne, const char *name) {
    return new_tensor(g, SD_T_INPUT, dt, ndim, ne, name);
}

int sd_graph_weight(sd_graph *g, sd_dtype dt, int ndim, const int64_t *ne, const void *data,
                    const char *name) {
    int id = new_tensor(g, SD_T_WEIGHT, dt, ndim, ne, name);
    if (id >= 0)
        g->t[id].data = data;
    return id;
}

int sd_graph_output(sd_graph *g, int id) {
    if (id < 0 || g->status)
        return -1;
    int r = sd_graph_root(g, id);
    if (g->t[r].kind == SD_T_ACT)
        g->t[r].kind = SD_T_OUTPUT;
    else if (g->t[r].kind == SD_T_WEIGHT)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "a weight cannot be a graph output");
    return id;
}

int sd_graph_view(sd_graph *g, int base, int ndim, const int64_t *ne, size_t byte_off) {
    if (base < 0 || g->status)
        return -1;
    const sd_tensor *b = &g->t[base];
    int id = new_tensor(g, b->kind == SD_T_WEIGHT ? SD_T_WEIGHT : SD_T_ACT, b->dtype, ndim, ne,
                        b->name);
    if (id < 0)
        return -1;
    b = &g->t[base]; /* realloc may have moved it */
    sd_tensor *t = &g->t[id];
    if (byte_off + sd_tensor_nbytes(t) > sd_tensor_nbytes(b))
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "view of %s out of range", b->name);
    if (b->kind == SD_T_WEIGHT) { /* weights are plain host pointers: no base needed */
        t->data = (const char *)b->data + byte_off;
        if (b->dtype == SD_Q8) {
            /* Scales follow the rows: a view may reshape the dims after
             * dim 1 (a 1x1 conv as a Linear) or take whole rows, but must
             * keep dim 1, along which the blocks run. */
            int64_t rb = 1, rt = 1;
            for (int d = 1; d < b->ndim; d++) rb *= b->ne[d];
            for (int d = 1; d < ndim; d++) rt *= ne[d];
            if (ndim < 2 || ne[1] != b->ne[1] || rb != rt || byte_off % (size_t)rb)
                return sd_graph_fail(g, SDVK_ERR_INVALID_ARG,
                                     "view of q8 weight %s must keep whole rows and dim 1", b->name);
            t->scale = (const uint16_t *)b->scale + byte_off / SD_Q8_BLOCK;
        }
        return id;
    }
    t->base = base;
    t->view_off = byte_off;
    return id;
}

/* ---- op constructors ---------------------------------------------------- */

static int add_node(sd_graph *g, sd_op op, const int *in, int n_in, int ndim, const int64_t *ne,
                    const int32_t *ip, int n_ip, const float *fp, int n_fp) {
    if (g->status)
        return -1;
    int out = new_tensor(g, SD_T_ACT, SD_F32, ndim, ne, sd_op_name(op));
    if (out < 0)
        return -1;
    if (g->nn == g->cap_n) {
        int cap = g->cap_n ? g->cap_n * 2 : 256;
        sd_node *n = realloc(g->n, (size_t)cap * sizeof *n);
        if (!n)
            return sd_graph_fail(g, SDVK_ERR_OOM, "graph: out of memory");
        g->n = n;
        g->cap_n = cap;
    }
    sd_node *n = &g->n[g->nn++];
    memset(n, 0, sizeof *n);
    n->op = op;
    for (int k = 0; k < SD_MAX_IN; k++) n->in[k] = k < n_in ? in[k] : -1;
    n->out = out;
    for (int k = 0; k < n_ip; k++) n->i[k] = ip[k];
    for (int k = 0; k < n_fp; k++) n->f[k] = fp[k];
    return out;
}

#define T(id) (&g->t[(id)])
#define CHECK_IN(...)                                     \
    do {                                                  \
        int ids_[] = {__VA_ARGS__};                       \
        if (g->status)                                    \
            return -1;                                    \
        for (size_t k_ = 0; k_ < sizeof ids_ / sizeof ids_[0]; k_++) \
            if (ids_[k_] < 0)                             \
                return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "%s: missing input", __func__); \
    } while (0)

static int same_shape(const sd_tensor *a, const sd_tensor *b) {
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->ne[d] != b->ne[d])
            return 0;
    return 1;
}

static void shape_str(const sd_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int d = 0; d < t->ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, d ? ",%lld" : "%lld", (long long)t->ne[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

static int check_vec(sd_graph *g, int v, int64_t n, const char *what) {
    if (v < 0)
        return 1;
    if (T(v)->ndim != 1 || T(v)->ne[0] != n) {
        char s[64];
        shape_str(T(v), s, sizeof s);
        sd_graph_fail(g, SDVK_ERR_MODEL, "%s %s: shape %s, expected [%lld]", what, T(v)->name, s,
                      (long long)n);
        return 0;
    }
    return 1;
}

static int check_residual(sd_graph *g, int r, int ndim, const int64_t *ne) {
    if (r < 0)
        return 1;
    sd_tensor tmp = {.ndim = ndim};
    for (int d = 0; d < ndim; d++) tmp.ne[d] = ne[d];
    if (!same_shape(T(r), &tmp)) {
        sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "residual %s: shape mismatch", T(r)->name);
        return 0;
    }
    return 1;
}

int sd_matmul(sd_graph *g, int x, int w, int bias, int residual) {
    CHECK_IN(x, w);
    const sd_tensor *X = T(x), *W = T(w);
    if (W->ndim != 2 || X->ne[X->ndim - 1] != W->ne[1]) {
        char a[64], b[64];
        shape_str(X, a, sizeof a);
        shape_str(W, b, sizeof b);
        return sd_graph_fail(g, SDVK_ERR_MODEL, "matmul %s: input %s does not fit weight %s",
                             W->name, a, b);
    }
    int64_t ne[SD_MAX_DIMS];
    for (int d = 0; d < X->ndim; d++) ne[d] = X->ne[d];
    ne[X->ndim - 1] = W->ne[0];
    if (!check_vec(g, bias, W->ne[0], "bias") || !check_residual(g, residual, X->ndim, ne))
        return -1;
    int in[4] = {x, w, bias, residual};
    return add_node(g, SD_OP_MATMUL, in, 4, X->ndim, ne, NULL, 0, NULL, 0);
}

int sd_conv2d(sd_graph *g, int x, int w, int bias, int residual, int stride, int pad_t, int pad_l,
              int pad_b, int pad_r) {
    CHECK_IN(x, w);
    const sd_tensor *X = T(x), *W = T(w);
    if (X->ndim != 4 || W->ndim != 4 || W->ne[1] != X->ne[3]) {
        char a[64], b[64];
        shape_str(X, a, sizeof a);
        shape_str(W, b, sizeof b);
        return sd_graph_fail(g, SDVK_ERR_MODEL, "conv2d %s: input %s does not fit weight %s",
                             W->name, a, b);
    }
    if (stride < 1 || pad_t < 0 || pad_l < 0 || pad_b < 0 || pad_r < 0)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "conv2d: bad stride/padding");
    int64_t hp = X->ne[1] + pad_t + pad_b, wp = X->ne[2] + pad_l + pad_r;
    if (hp < W->ne[2] || wp < W->ne[3])
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "conv2d %s: input smaller than kernel",
                             W->name);
    int64_t ne[4] = {X->ne[0], (hp - W->ne[2]) / stride + 1, (wp - W->ne[3]) / stride + 1,
                     W->ne[0]};
    if (!check_vec(g, bias, W->ne[0], "bias") || !check_residual(g, residual, 4, ne))
        return -1;
    int in[4] = {x, w, bias, residual};
    int32_t ip[5] = {stride, pad_t, pad_l, pad_b, pad_r};
    return add_node(g, SD_OP_CONV2D, in, 4, 4, ne, ip, 5, NULL, 0);
}

int sd_group_norm(sd_graph *g, int x, int gamma, int beta, int groups, float eps, int silu) {
    CHECK_IN(x, gamma, beta);
    const sd_tensor *X = T(x);
    int64_t c = X->ne[X->ndim - 1];
    if (X->ndim < 2 || groups < 1 || c % groups)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "group_norm %s: %lld channels, %d groups",
                             T(gamma)->name, (long long)c, groups);
    if (!check_vec(g, gamma, c, "group_norm weight") || !check_vec(g, beta, c, "group_norm bias"))
        return -1;
    int in[3] = {x, gamma, beta};
    int32_t ip[2] = {groups, silu ? 1 : 0};
    float fp[1] = {eps};
    return add_node(g, SD_OP_GROUP_NORM, in, 3, X->ndim, X->ne, ip, 2, fp, 1);
}

int sd_layer_norm(sd_graph *g, int x, int gamma, int beta, float eps) {
    CHECK_IN(x, gamma, beta);
    const sd_tensor *X = T(x);
    int64_t c = X->ne[X->ndim - 1];
    if (!check_vec(g, gamma, c, "layer_norm weight") || !check_vec(g, beta, c, "layer_norm bias"))
        return -1;
    int in[3] = {x, gamma, beta};
    float fp[1] = {eps};
    return add_node(g, SD_OP_LAYER_NORM, in, 3, X->ndim, X->ne, NULL, 0, fp, 1);
}

int sd_attention(sd_graph *g, int q, int k, int v, int heads, int causal, float scale) {
    CHECK_IN(q, k, v);
    const sd_tensor *Q = T(q), *K = T(k), *V = T(v);
    if (Q->ndim != 3 || K->ndim != 3 || !same_shape(K, V) || Q->ne[0] != K->ne[0] ||
        Q->ne[2] != K->ne[2] || heads < 1 || Q->ne[2] % heads)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "attention: q/k/v shapes do not agree");
    if (causal && Q->ne[1] != K->ne[1])
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "attention: causal needs Lq == Lk");
    int in[3] = {q, k, v};
    int32_t ip[2] = {heads, causal ? 1 : 0};
    float fp[1] = {scale};
    return add_node(g, SD_OP_ATTENTION, in, 3, 3, Q->ne, ip, 2, fp, 1);
}

int sd_geglu(sd_graph *g, int x) {
    CHECK_IN(x);
    const sd_tensor *X = T(x);
    int64_t ne[SD_MAX_DIMS];
    memcpy(ne, X->ne, sizeof ne);
    if (ne[X->ndim - 1] % 2)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "geglu: odd channel count");
    ne[X->ndim - 1] /= 2;
    return add_node(g, SD_OP_GEGLU, &x, 1, X->ndim, ne, NULL, 0, NULL, 0);
}

static int unary(sd_graph *g, sd_op op, int x) {
    CHECK_IN(x);
    return add_node(g, op, &x, 1, T(x)->ndim, T(x)->ne, NULL, 0, NULL, 0);
}
int sd_gelu(sd_graph *g, int x) { return unary(g, SD_OP_GELU, x); }
int sd_quick_gelu(sd_graph *g, int x) { return unary(g, SD_OP_QUICK_GELU, x); }
int sd_silu(sd_graph *g, int x) { return unary(g, SD_OP_SILU, x); }
int sd_relu(sd_graph *g, int x) { return unary(g, SD_OP_RELU, x); }
int sd_tanh(sd_graph *g, int x) { return unary(g, SD_OP_TANH, x); }

static int binary(sd_graph *g, sd_op op, int a, int b) {
    CHECK_IN(a, b);
    const sd_tensor *A = T(a), *B = T(b);
    if (B->ndim > A->ndim)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "%s: b has more dims than a", sd_op_name(op));
    for (int d = 0; d < B->ndim; d++) {
        int64_t eb = B->ne[B->ndim - 1 - d], ea = A->ne[A->ndim - 1 - d];
        if (eb != 1 && eb != ea) {
            char sa[64], sb[64];
            shape_str(A, sa, sizeof sa);
            shape_str(B, sb, sizeof sb);
            return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "%s: %s does not broadcast to %s",
                                 sd_op_name(op), sb, sa);
        }
    }
    int in[2] = {a, b};
    return add_node(g, op, in, 2, A->ndim, A->ne, NULL, 0, NULL, 0);
}
int sd_add(sd_graph *g, int a, int b) { return binary(g, SD_OP_ADD, a, b); }
int sd_mul(sd_graph *g, int a, int b) { return binary(g, SD_OP_MUL, a, b); }

int sd_scale(sd_graph *g, int x, float mul, float add) {
    CHECK_IN(x);
    float fp[2] = {mul, add};
    return add_node(g, SD_OP_SCALE, &x, 1, T(x)->ndim, T(x)->ne, NULL, 0, fp, 2);
}

int sd_upsample2x_to(sd_graph *g, int x, int64_t ho, int64_t wo) {
    CHECK_IN(x);
    const sd_tensor *X = T(x);
    if (X->ndim != 4)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "upsample2x: needs [B,H,W,C]");
    if ((ho != 2 * X->ne[1] && ho != 2 * X->ne[1] - 1) || (wo != 2 * X->ne[2] && wo != 2 * X->ne[2] - 1))
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "upsample2x: %lldx%lld from %lldx%lld",
                             (long long)ho, (long long)wo, (long long)X->ne[1], (long long)X->ne[2]);
    int64_t ne[4] = {X->ne[0], ho, wo, X->ne[3]};
    int32_t ip[2] = {(int32_t)ho, (int32_t)wo};
    return add_node(g, SD_OP_UPSAMPLE2X, &x, 1, 4, ne, ip, 2, NULL, 0);
}

int sd_upsample2x(sd_graph *g, int x) {
    CHECK_IN(x);
    return sd_upsample2x_to(g, x, 2 * T(x)->ne[1], 2 * T(x)->ne[2]);
}

int sd_concat(sd_graph *g, int a, int b, int axis) {
    CHECK_IN(a, b);
    const sd_tensor *A = T(a), *B = T(b);
    if (axis < 0)
        axis += A->ndim;
    int ok = A->ndim == B->ndim && axis >= 0 && axis < A->ndim;
    for (int d = 0; ok && d < A->ndim; d++)
        if (d != axis && A->ne[d] != B->ne[d])
            ok = 0;
    if (!ok)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "concat: shapes do not agree");
    int64_t ne[SD_MAX_DIMS];
    memcpy(ne, A->ne, sizeof ne);
    ne[axis] += B->ne[axis];
    int in[2] = {a, b};
    int32_t ip[1] = {axis};
    return add_node(g, SD_OP_CONCAT, in, 2, A->ndim, ne, ip, 1, NULL, 0);
}

int sd_embedding(sd_graph *g, int ids, int table) {
    CHECK_IN(ids, table);
    const sd_tensor *I = T(ids), *W = T(table);
    if (I->dtype != SD_I32 || I->ndim != 2 || W->ndim != 2)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "embedding: needs ids[B,L] I32, table[V,C]");
    int64_t ne[3] = {I->ne[0], I->ne[1], W->ne[1]};
    int in[2] = {ids, table};
    return add_node(g, SD_OP_EMBEDDING, in, 2, 3, ne, NULL, 0, NULL, 0);
}

int sd_timestep_embed(sd_graph *g, int t, int dim) {
    CHECK_IN(t);
    if (T(t)->ndim != 1 || dim < 2 || dim % 2)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "timestep_embed: needs t[B] and even dim");
    int64_t ne[2] = {T(t)->ne[0], dim};
    int32_t ip[1] = {dim};
    return add_node(g, SD_OP_TIMESTEP_EMBED, &t, 1, 2, ne, ip, 1, NULL, 0);
}

int sd_step_select(sd_graph *g, int table) {
    CHECK_IN(table);
    const sd_tensor *X = T(table);
    if (X->ndim < 2)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "step_select: table needs >= 2 dims");
    return add_node(g, SD_OP_STEP_SELECT, &table, 1, X->ndim - 1, X->ne + 1, NULL, 0, NULL, 0);
}

int sd_cfg_combine(sd_graph *g, int eps, int scale) {
    CHECK_IN(eps, scale);
    const sd_tensor *E = T(eps);
    if (E->ne[0] % 2 || sd_tensor_nelem(T(scale)) != 1)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "cfg_combine: odd batch or scale not [1]");
    int64_t ne[SD_MAX_DIMS];
    memcpy(ne, E->ne, sizeof ne);
    ne[0] /= 2;
    int in[2] = {eps, scale};
    return add_node(g, SD_OP_CFG_COMBINE, in, 2, E->ndim, ne, NULL, 0, NULL, 0);
}

int sd_sampler_step(sd_graph *g, int regs, int R, int eps, int noise, int coef, int o) {
    CHECK_IN(regs, eps, coef);
    const sd_tensor *S = T(regs), *E = T(eps);
    int ok = R >= 1 && R <= 16 && sd_tensor_nelem(S) == R * sd_tensor_nelem(E) && o >= 0 &&
             sd_tensor_nelem(T(coef)) >= o + 2 + R;
    if (ok && noise >= 0)
        ok = same_shape(E, T(noise));
    if (!ok)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "sampler_step: shapes do not agree");
    int in[4] = {regs, eps, noise, coef};
    int32_t ip[2] = {o, (int32_t)R};
    return add_node(g, SD_OP_SAMPLER_STEP, in, 4, E->ndim, E->ne, ip, 2, NULL, 0);
}

int sd_copy_into(sd_graph *g, int x, int dst) {
    CHECK_IN(x, dst);
    if (!same_shape(T(x), T(dst)) || T(dst)->kind == SD_T_WEIGHT)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "copy: shapes do not agree");
    int out = add_node(g, SD_OP_COPY, &x, 1, T(x)->ndim, T(x)->ne, NULL, 0, NULL, 0);
    if (out < 0)
        return -1;
    /* Redirect the node's output to dst; the fresh tensor becomes unused. */
    g->n[g->nn - 1].out = dst;
    return dst;
}

/* ---- memory planner ----------------------------------------------------- */

typedef struct {
    size_t off, size;
    int id;
} span;

/* Would [off, off + sz) cross a multiple of block? */
static int crosses(size_t off, size_t sz, size_t block) {
    return block && off / block != (off + sz - 1) / block;
}

sdvk_status sd_graph_place(const sd_graph *g, size_t block, size_t *off_out, size_t *size_out) {
    if (g->status)
        return sd_err(g->status, "%s", g->err);
    const size_t align = 256;
    if (block % align)
        return sd_err(SDVK_ERR_INVALID_ARG, "graph plan: block size %zu is not a multiple of %zu",
                      block, align);
    int nt = g->nt;
    int *first = malloc((size_t)nt * sizeof(int)), *last = malloc((size_t)nt * sizeof(int));
    span *live = malloc((size_t)nt * sizeof(span));
    if (!first || !last || !live) {
        free(first), free(last), free(live);
        return sd_err(SDVK_ERR_OOM, "graph plan: out of memory");
    }
    for (int i = 0; i < nt; i++)
        first[i] = -1, last[i] = -1, off_out[i] = 0;
    for (int k = 0; k < g->nn; k++) {
        const sd_node *n = &g->n[k];
        int r = sd_graph_root(g, n->out);
        if (first[r] < 0)
            first[r] = k;
        if (last[r] < k)
            last[r] = k;
        for (int j = 0; j < SD_MAX_IN; j++) {
            if (n->in[j] < 0)
                continue;
            int ri = sd_graph_root(g, n->in[j]);
            if (first[ri] < 0)
                first[ri] = k;
            last[ri] = k;
        }
    }
    sdvk_status st = SDVK_OK;
    for (int i = 0; i < nt && block; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->base < 0 && t->kind != SD_T_WEIGHT && sd_tensor_nbytes(t) > block) {
            st = sd_err(SDVK_ERR_UNSUPPORTED,
                        "graph plan: tensor %s (%.2f MiB) is larger than a memory "
                        "block (%.2f MiB)",
                        t->name, (double)sd_tensor_nbytes(t) / 1048576.0, (double)block / 1048576.0);
            break;
        }
    }
    size_t pinned = 0;
    /* Pinned tensors (inputs, outputs) first, at the bottom of the arena. */
    for (int i = 0; i < nt && st == SDVK_OK; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->base >= 0 || (t->kind != SD_T_INPUT && t->kind != SD_T_OUTPUT))
            continue;
        size_t sz = (sd_tensor_nbytes(t) + align - 1) / align * align;
        if (crosses(pinned, sz, block))
            pinned = (pinned / block + 1) * block;
        off_out[i] = pinned;
        pinned += sz;
    }
    /* Intermediates: walk the nodes, allocating at first use and freeing
     * after last use, first fit among the live spans (kept sorted); with a
     * block size, a tensor that would straddle a block boundary moves up to
     * the boundary. */
    int nlive = 0;
    size_t top = pinned;
    for (int k = 0; k < g->nn && st == SDVK_OK; k++) {
        int r = sd_graph_root(g, g->n[k].out);
        const sd_tensor *t = &g->t[r];
        if (t->kind == SD_T_ACT && first[r] == k) {
            size_t sz = (sd_tensor_nbytes(t) + align - 1) / align * align, off = pinned;
            int pos = 0;
            for (;;) {
                /* spans before pos end at or below off: they are sorted and disjoint */
                for (; pos < nlive; pos++) {
                    if (live[pos].off >= off + sz)
                        break;
                    if (live[pos].off + live[pos].size > off)
                        off = live[pos].off + live[pos].size;
                }
                if (!crosses(off, sz, block))
                    break;
                off = (off / block + 1) * block;
            }
            memmove(&live[pos + 1], &live[pos], (size_t)(nlive - pos) * sizeof(span));
            live[pos] = (span){off, sz, r};
            nlive++;
            off_out[r] = off;
            if (off + sz > top)
                top = off + sz;
        }
        /* free everything whose last use is this node */
        int w = 0;
        for (int j = 0; j < nlive; j++)
            if (last[live[j].id] != k)
                live[w++] = live[j];
        nlive = w;
    }
    /* Views: their root's offset plus the view offset. */
    for (int i = 0; i < nt && st == SDVK_OK; i++) {
        if (g->t[i].base < 0)
            continue;
        size_t off = 0;
        int id = i;
        while (g->t[id].base >= 0) {
            off += g->t[id].view_off;
            id = g->t[id].base;
        }
        off_out[i] = (g->t[id].kind == SD_T_WEIGHT ? g->t[id].offset : off_out[id]) + off;
    }
    *size_out = top;
    free(first), free(last), free(live);
    return st;
}

sdvk_status sd_graph_plan(sd_graph *g) {
    if (g->status)
        return sd_err(g->status, "%s", g->err);
    size_t *off = malloc((size_t)(g->nt > 0 ? g->nt : 1) * sizeof *off), top;
    if (!off)
        return sd_err(SDVK_ERR_OOM, "graph plan: out of memory");
    sdvk_status s = sd_graph_place(g, 0, off, &top);
    if (s == SDVK_OK) {
        for (int i = 0; i < g->nt; i++)
            if (g->t[i].kind != SD_T_WEIGHT || g->t[i].base >= 0)
                g->t[i].offset = off[i];
        g->arena_size = top;
        g->planned = 1;
    }
    free(off);
    return s;
}

void sd_graph_dump(const sd_graph *g) {
    for (int k = 0; k < g->nn; k++) {
        const sd_node *n = &g->n[k];
        char s[64];
        shape_str(&g->t[n->out], s, sizeof s);
        fprintf(stderr, "%4d %-14s -> t%d %s @%zu  in:", k, sd_op_name(n->op), n->out, s,
                g->t[n->out].offset);
        for (int j = 0; j < SD_MAX_IN; j++)
            if (n->in[j] >= 0)
                fprintf(stderr, " t%d(%s)", n->in[j], g->t[n->in[j]].name);
        fputc('\n', stderr);
    }
}
