/* Op conformance harness: see conformance.h. Only the backend.h interface
 * is used, so any backend can be checked against any other. */
#include "conformance.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/q8.h"
#include "../core/status.h"

#define MAXIN 8

/* State of one case while its graph is built: the host data of inputs (to
 * write into both backends) and of weights (which the graph points to). */
typedef struct {
    uint64_t rng;
    int n_in, in_id[MAXIN];
    void *in_data[MAXIN];
    size_t in_bytes[MAXIN];
    void *owned[MAXIN];
    int n_owned;
    int first_step, n_steps;
    char shape[112];
    int oom;
} conf_case;

static float urand(conf_case *c, float lo, float hi) {
    /* xorshift64*: fixed per case seed, identical on every platform */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    uint64_t r = c->rng * 2685821657736338717ull;
    return lo + (hi - lo) * (float)((double)(r >> 40) / (double)(1ull << 24));
}

static int64_t count(int nd, const int64_t *ne) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= ne[d];
    return n;
}

static int c_input(sd_graph *g, conf_case *c, int nd, const int64_t *ne, float lo, float hi,
                   const char *name) {
    int id = sd_graph_input(g, SD_F32, nd, ne, name);
    if (id < 0 || c->n_in == MAXIN)
        return -1;
    int64_t n = count(nd, ne);
    float *d = malloc((size_t)n * sizeof(float));
    if (!d) {
        c->oom = 1;
        return -1;
    }
    for (int64_t i = 0; i < n; i++) d[i] = urand(c, lo, hi);
    c->in_id[c->n_in] = id;
    c->in_data[c->n_in] = d;
    c->in_bytes[c->n_in++] = (size_t)n * sizeof(float);
    return id;
}

static int c_ids(sd_graph *g, conf_case *c, int64_t B, int64_t L, int V) {
    int64_t ne[2] = {B, L};
    int id = sd_graph_input(g, SD_I32, 2, ne, "ids");
    if (id < 0 || c->n_in == MAXIN)
        return -1;
    int32_t *d = malloc((size_t)(B * L) * sizeof(int32_t));
    if (!d) {
        c->oom = 1;
        return -1;
    }
    for (int64_t i = 0; i < B * L; i++) {
        int v = (int)((urand(c, 0.0f, 1.0f)) * (float)V);
        d[i] = v < V ? v : V - 1;
    }
    c->in_id[c->n_in] = id;
    c->in_data[c->n_in] = d;
    c->in_bytes[c->n_in++] = (size_t)(B * L) * sizeof(int32_t);
    return id;
}

/* 8-bit weight (src/core/q8.h) of random values; shapes q8 does not take
 * (biases) become F16. */
static int c_weight_q8(sd_graph *g, conf_case *c, int nd, const int64_t *ne, float lo, float hi,
                       const char *name) {
    if (c->n_owned + 2 > MAXIN)
        return -1;
    int64_t n = count(nd, ne);
    float *f = malloc((size_t)n * sizeof(float) + 4);
    int8_t *q = malloc((size_t)n + 1);
    uint16_t *sc = malloc((size_t)(n / SD_Q8_BLOCK) * 2 + 2);
    c->owned[c->n_owned++] = q;
    c->owned[c->n_owned++] = sc;
    if (!f || !q || !sc) {
        free(f);
        c->oom = 1;
        return -1;
    }
    for (int64_t i = 0; i < n; i++) f[i] = urand(c, lo, hi);
    sdvk_status s = sd_q8_quantize_tensor(f, SD_F32, nd, ne, q, sc, name);
    free(f);
    if (s)
        return sd_graph_fail(g, s, "%s", sdvk_last_error());
    int id = sd_graph_weight(g, SD_Q8, nd, ne, q, name);
    if (id >= 0)
        g->t[id].scale = sc;
    return id;
}

static int c_weight(sd_graph *g, conf_case *c, sd_dtype dt, int nd, const int64_t *ne, float lo,
                    float hi, const char *name) {
    if (dt == SD_Q8) {
        if (sd_q8_eligible(nd, ne))
            return c_weight_q8(g, c, nd, ne, lo, hi, name);
        dt = SD_F16;
    }
    if (c->n_owned == MAXIN)
        return -1;
    int64_t n = count(nd, ne);
    void *d = malloc((size_t)n * sd_dtype_size(dt));
    if (!d) {
        c->oom = 1;
        return -1;
    }
    c->owned[c->n_owned++] = d;
    for (int64_t i = 0; i < n; i++) {
        float v = urand(c, lo, hi);
        if (dt == SD_F16)
            ((uint16_t *)d)[i] = sd_f32_to_f16(v);
        else if (dt == SD_BF16)
            ((uint16_t *)d)[i] = sd_f32_to_bf16(v);
        else
            ((float *)d)[i] = v;
    }
    return sd_graph_weight(g, dt, nd, ne, d, name);
}

static const char *dtn(int dt) {
    return dt == SD_F16 ? "f16" : dt == SD_BF16 ? "bf16" : dt == SD_Q8 ? "q8" : "f32";
}

static void shape_of(char *s, size_t n, int nd, const int *ne) {
    int o = snprintf(s, n, "[");
    for (int d = 0; d < nd; d++) o += snprintf(s + o, n - (size_t)o, d ? ",%d" : "%d", ne[d]);
    snprintf(s + o, n - (size_t)o, "]");
}

/* ---- case builders: p[] are the case's integer parameters --------------- */

/* p: M0 M1 K N bias res dtype (M0 = 0: 2-D x[M1, K]) */
static int b_matmul(sd_graph *g, conf_case *c, const int *p) {
    int64_t xs[3] = {p[0], p[1], p[2]}, ws[2] = {p[3], p[2]}, bs[1] = {p[3]};
    int nd = p[0] ? 3 : 2;
    const int64_t *xne = p[0] ? xs : xs + 1;
    int x = c_input(g, c, nd, xne, -1, 1, "x");
    float wl = 1.0f / sqrtf((float)p[2]);
    int w = c_weight(g, c, (sd_dtype)p[6], 2, ws, -wl, wl, "w");
    int b = p[4] ? c_weight(g, c, (sd_dtype)p[6], 1, bs, -0.5f, 0.5f, "bias") : -1;
    int64_t rs[3] = {p[0], p[1], p[3]};
    int r = p[5] ? c_input(g, c, nd, p[0] ? rs : rs + 1, -1, 1, "res") : -1;
    int o = p[0] ? snprintf(c->shape, sizeof c->shape, "x[%d,%d,%d]", p[0], p[1], p[2])
                 : snprintf(c->shape, sizeof c->shape, "x[%d,%d]", p[1], p[2]);
    snprintf(c->shape + o, sizeof c->shape - (size_t)o, " w[%d,%d] %s%s%s", p[3], p[2], dtn(p[6]),
             p[4] ? " +bias" : "", p[5] ? " +res" : "");
    return sd_matmul(g, x, w, b, r);
}

/* A MATMUL whose product only a GEGLU reads (the Vulkan backend folds the
 * GEGLU into the matmul's epilogue): p: B L K N bias dtype keep, where the
 * weight is [2N, K] and keep = 1 also makes the product a graph output (so
 * it cannot be folded: the unfused path on the same shapes). */
static int b_matmul_geglu(sd_graph *g, conf_case *c, const int *p) {
    int64_t xs[3] = {p[0], p[1], p[2]}, ws[2] = {2 * p[3], p[2]}, bs[1] = {2 * p[3]};
    int x = c_input(g, c, 3, xs, -1, 1, "x");
    float wl = 2.0f / sqrtf((float)p[2]);
    int w = c_weight(g, c, (sd_dtype)p[5], 2, ws, -wl, wl, "w");
    int b = p[4] ? c_weight(g, c, (sd_dtype)p[5], 1, bs, -0.5f, 0.5f, "bias") : -1;
    int h = sd_matmul(g, x, w, b, -1);
    if (p[6])
        sd_graph_output(g, h);
    snprintf(c->shape, sizeof c->shape, "matmul x[%d,%d,%d] w[%d,%d] %s%s -> geglu%s", p[0], p[1], p[2],
             2 * p[3], p[2], dtn(p[5]), p[4] ? " +bias" : "", p[6] ? " (unfused)" : "");
    return sd_geglu(g, h);
}

/* p: B H W Ci Co kh kw stride pt pl pb pr bias res dtype */
static int b_conv(sd_graph *g, conf_case *c, const int *p) {
    int64_t xs[4] = {p[0], p[1], p[2], p[3]}, ws[4] = {p[4], p[3], p[5], p[6]}, bs[1] = {p[4]};
    int x = c_input(g, c, 4, xs, -1, 1, "x");
    float wl = 1.0f / sqrtf((float)(p[3] * p[5] * p[6]));
    int w = c_weight(g, c, (sd_dtype)p[14], 4, ws, -wl, wl, "w");
    int b = p[12] ? c_weight(g, c, (sd_dtype)p[14], 1, bs, -0.5f, 0.5f, "bias") : -1;
    int r = -1;
    if (p[13]) {
        int64_t ho = (p[1] + p[8] + p[10] - p[5]) / p[7] + 1, wo = (p[2] + p[9] + p[11] - p[6]) / p[7] + 1;
        int64_t rs[4] = {p[0], ho, wo, p[4]};
        r = c_input(g, c, 4, rs, -1, 1, "res");
    }
    snprintf(c->shape, sizeof c->shape, "x[%d,%d,%d,%d] %dx%d->%d s%d p(%d,%d,%d,%d) %s%s%s", p[0],
             p[1], p[2], p[3], p[5], p[6], p[4], p[7], p[8], p[9], p[10], p[11], dtn(p[14]),
             p[12] ? " +bias" : "", p[13] ? " +res" : "");
    return sd_conv2d(g, x, w, b, r, p[7], p[8], p[9], p[10], p[11]);
}

/* p: ndim ne0 ne1 ne2 ne3 groups silu dtype(gamma, beta) */
static int b_group_norm(sd_graph *g, conf_case *c, const int *p) {
    int64_t ne[4] = {p[1], p[2], p[3], p[4]}, cs[1] = {ne[p[0] - 1]};
    int x = c_input(g, c, p[0], ne, -2, 3, "x");
    int ga = c_weight(g, c, (sd_dtype)p[7], 1, cs, 0.5f, 1.5f, "gamma");
    int be = c_weight(g, c, (sd_dtype)p[7], 1, cs, -0.5f, 0.5f, "beta");
    char sx[48];
    shape_of(sx, sizeof sx, p[0], p + 1);
    snprintf(c->shape, sizeof c->shape, "x%s G%d%s %s", sx, p[5], p[6] ? " silu" : "", dtn(p[7]));
    return sd_group_norm(g, x, ga, be, p[5], 1e-5f, p[6]);
}

/* p: ndim ne0 ne1 ne2 dtype(gamma, beta) */
static int b_layer_norm(sd_graph *g, conf_case *c, const int *p) {
    int64_t ne[3] = {p[1], p[2], p[3]}, cs[1] = {ne[p[0] - 1]};
    int x = c_input(g, c, p[0], ne, -2, 3, "x");
    int ga = c_weight(g, c, (sd_dtype)p[4], 1, cs, 0.5f, 1.5f, "gamma");
    int be = c_weight(g, c, (sd_dtype)p[4], 1, cs, -0.5f, 0.5f, "beta");
    char sx[48];
    shape_of(sx, sizeof sx, p[0], p + 1);
    snprintf(c->shape, sizeof c->shape, "x%s %s", sx, dtn(p[4]));
    return sd_layer_norm(g, x, ga, be, 1e-5f);
}

/* p: B Lq Lk C heads causal [q/k range, default 2: larger makes peaked
 * softmaxes whose raw exponentials would overflow without max subtraction] */
static int b_attention(sd_graph *g, conf_case *c, const int *p) {
    int64_t qs[3] = {p[0], p[1], p[3]}, ks[3] = {p[0], p[2], p[3]};
    float rg = p[6] ? (float)p[6] : 2.0f;
    int q = c_input(g, c, 3, qs, -rg, rg, "q");
    int k = c_input(g, c, 3, ks, -rg, rg, "k");
    int v = c_input(g, c, 3, ks, -1, 1, "v");
    snprintf(c->shape, sizeof c->shape, "q[%d,%d,%d] k[%d,%d,%d] h%d%s%s", p[0], p[1], p[3], p[0],
             p[2], p[3], p[4], p[5] ? " causal" : "", p[6] > 2 ? " peaked" : "");
    return sd_attention(g, q, k, v, p[4], p[5], 1.0f / sqrtf((float)(p[3] / p[4])));
}

/* p: op ndim ne0..ne3 (unary ops, geglu, upsample2x) */
static int b_unary(sd_graph *g, conf_case *c, const int *p) {
    int64_t ne[4] = {p[2], p[3], p[4], p[5]};
    int x = c_input(g, c, p[1], ne, -4, 4, "x");
    int o = snprintf(c->shape, sizeof c->shape, "x[");
    for (int d = 0; d < p[1]; d++)
        o += snprintf(c->shape + o, sizeof c->shape - (size_t)o, d ? ",%d" : "%d", p[2 + d]);
    snprintf(c->shape + o, sizeof c->shape - (size_t)o, "]");
    switch ((sd_op)p[0]) {
    case SD_OP_GEGLU: return sd_geglu(g, x);
    case SD_OP_GELU: return sd_gelu(g, x);
    case SD_OP_QUICK_GELU: return sd_quick_gelu(g, x);
    case SD_OP_SILU: return sd_silu(g, x);
    case SD_OP_RELU: return sd_relu(g, x);
    case SD_OP_TANH: return sd_tanh(g, x);
    case SD_OP_SCALE: return sd_scale(g, x, -0.7f, 0.3f);
    case SD_OP_UPSAMPLE2X: return sd_upsample2x(g, x);
    default: return -1;
    }
}

/* p: B H W C, output rows and columns cut (0 or 1): an odd skip's size */
static int b_upcrop(sd_graph *g, conf_case *c, const int *p) {
    int64_t ne[4] = {p[0], p[1], p[2], p[3]};
    int x = c_input(g, c, 4, ne, -4, 4, "x");
    snprintf(c->shape, sizeof c->shape, "x[%d,%d,%d,%d] to %dx%d", p[0], p[1], p[2], p[3],
             2 * p[1] - p[4], 2 * p[2] - p[5]);
    return sd_upsample2x_to(g, x, 2 * p[1] - p[4], 2 * p[2] - p[5]);
}

/* p: op ndim_a a0..a3 ndim_b b0..b3 [axis] (add, mul, concat) */
static int b_binary(sd_graph *g, conf_case *c, const int *p) {
    int64_t a_ne[4] = {p[2], p[3], p[4], p[5]}, b_ne[4] = {p[7], p[8], p[9], p[10]};
    int a = c_input(g, c, p[1], a_ne, -2, 2, "a");
    int b = c_input(g, c, p[6], b_ne, -2, 2, "b");
    char sa[48], sb[48];
    shape_of(sa, sizeof sa, p[1], p + 2);
    shape_of(sb, sizeof sb, p[6], p + 7);
    int o = snprintf(c->shape, sizeof c->shape, "%s %s", sa, sb);
    if (p[0] == SD_OP_CONCAT)
        snprintf(c->shape + o, sizeof c->shape - (size_t)o, " axis %d", p[11]);
    switch ((sd_op)p[0]) {
    case SD_OP_ADD: return sd_add(g, a, b);
    case SD_OP_MUL: return sd_mul(g, a, b);
    case SD_OP_CONCAT: return sd_concat(g, a, b, p[11]);
    default: return -1;
    }
}

/* p: B L V C dtype */
static int b_embedding(sd_graph *g, conf_case *c, const int *p) {
    int64_t ts[2] = {p[2], p[3]};
    int ids = c_ids(g, c, p[0], p[1], p[2]);
    int t = c_weight(g, c, (sd_dtype)p[4], 2, ts, -1, 1, "table");
    snprintf(c->shape, sizeof c->shape, "ids[%d,%d] table[%d,%d] %s", p[0], p[1], p[2], p[3],
             dtn(p[4]));
    return sd_embedding(g, ids, t);
}

/* p: B dim tmax */
static int b_timestep(sd_graph *g, conf_case *c, const int *p) {
    int64_t ts[1] = {p[0]};
    int t = c_input(g, c, 1, ts, 0, (float)p[2], "t");
    snprintf(c->shape, sizeof c->shape, "t[%d] in [0,%d) dim %d", p[0], p[2], p[1]);
    return sd_timestep_embed(g, t, p[1]);
}

/* p: S d1 d2 step weight */
static int b_step_select(sd_graph *g, conf_case *c, const int *p) {
    int64_t ne[3] = {p[0], p[1], p[2]};
    int t = p[4] ? c_weight(g, c, SD_F32, 3, ne, -1, 1, "table")
                 : c_input(g, c, 3, ne, -1, 1, "table");
    c->first_step = p[3];
    snprintf(c->shape, sizeof c->shape, "table[%d,%d,%d] %s step %d", p[0], p[1], p[2],
             p[4] ? "weight" : "input", p[3]);
    return sd_step_select(g, t);
}

/* p: 2B H W C */
static int b_cfg(sd_graph *g, conf_case *c, const int *p) {
    int64_t ne[4] = {p[0], p[1], p[2], p[3]}, one[1] = {1};
    int e = c_input(g, c, 4, ne, -2, 2, "eps");
    int s = c_input(g, c, 1, one, 1, 9, "scale");
    snprintf(c->shape, sizeof c->shape, "eps[%d,%d,%d,%d] scale input", p[0], p[1], p[2], p[3]);
    return sd_cfg_combine(g, e, s);
}

/* p: B H W C R noise offset */
static int b_sampler(sd_graph *g, conf_case *c, const int *p) {
    int64_t ne[4] = {p[0], p[1], p[2], p[3]}, rs[4] = {(int64_t)p[4] * p[0], p[1], p[2], p[3]},
            cs[1] = {p[6] + 2 + p[4] + 3};
    int S = c_input(g, c, 4, rs, -2, 2, "regs");
    int e = c_input(g, c, 4, ne, -2, 2, "eps");
    int z = p[5] ? c_input(g, c, 4, ne, -2, 2, "noise") : -1;
    int k = c_input(g, c, 1, cs, -1.5f, 1.5f, "coef");
    snprintf(c->shape, sizeof c->shape, "x[%d,%d,%d,%d] %d regs%s, coef offset %d", p[0], p[1],
             p[2], p[3], p[4], p[5] ? ", noise" : "", p[6]);
    return sd_sampler_step(g, S, p[4], e, z, k, p[6]);
}

/* p: n0 n1 steps: x <- 0.5 x + 1, copied back into the pinned input each step */
static int b_copy(sd_graph *g, conf_case *c, const int *p) {
    int64_t ne[2] = {p[0], p[1]};
    int x = c_input(g, c, 2, ne, -4, 4, "x");
    int y = sd_scale(g, x, 0.5f, 1.0f);
    c->n_steps = p[2];
    snprintf(c->shape, sizeof c->shape, "x[%d,%d] into input, %d steps", p[0], p[1], p[2]);
    return sd_copy_into(g, y, x);
}

/* A small chain (tests arena reuse between ops): p: B H W C */
static int b_chain(sd_graph *g, conf_case *c, const int *p) {
    int64_t xs[4] = {p[0], p[1], p[2], p[3]}, ws[4] = {p[3], p[3], 3, 3}, cs[1] = {p[3]},
            ls[3] = {p[0], (int64_t)p[1] * p[2], p[3]}, ms[2] = {2 * p[3], p[3]};
    int x = c_input(g, c, 4, xs, -1, 1, "x");
    float wl = 1.0f / sqrtf(9.0f * (float)p[3]);
    int w = c_weight(g, c, SD_F16, 4, ws, -wl, wl, "conv.w");
    int ga = c_weight(g, c, SD_F32, 1, cs, 0.5f, 1.5f, "gn.w");
    int be = c_weight(g, c, SD_F32, 1, cs, -0.5f, 0.5f, "gn.b");
    int mw = c_weight(g, c, SD_F32, 2, ms, -wl, wl, "ff.w");
    int h = sd_group_norm(g, x, ga, be, 4, 1e-6f, 1);
    h = sd_conv2d(g, h, w, -1, x, 1, 1, 1, 1, 1);
    int t = sd_graph_reshape(g, h, 3, ls);
    int a = sd_attention(g, t, t, t, 2, 0, 0.25f);
    int f = sd_geglu(g, sd_matmul(g, a, mw, -1, -1));
    f = sd_add(g, f, t);
    snprintf(c->shape, sizeof c->shape, "gn-conv-attn-ff x[%d,%d,%d,%d]", p[0], p[1], p[2], p[3]);
    return sd_graph_reshape(g, f, 4, xs);
}

typedef int (*build_fn)(sd_graph *g, conf_case *c, const int *p);
typedef struct {
    sd_op op;
    build_fn fn;
    int p[16];
    double base_tol;
} case_def;

#define F32 SD_F32
#define F16 SD_F16
#define BF16 SD_BF16
#define Q8 SD_Q8
/* a negative base: an absolute tolerance, not scaled by tol_scale */
#define Q8TOL (-1e-2)

static const case_def k_cases[] = {
    {SD_OP_MATMUL, b_matmul, {0, 7, 13, 5, 0, 0, F32}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {0, 130, 320, 77, 1, 0, F32}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {2, 33, 40, 64, 1, 1, F32}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {0, 7, 13, 5, 1, 0, F16}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {0, 130, 320, 77, 1, 1, BF16}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {2, 64, 96, 200, 0, 1, F16}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {1, 5, 1024, 33, 1, 0, F32}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {0, 67, 1280, 131, 1, 1, F16}, 1e-5},
    /* 8-bit weights (src/core/q8.h), tolerance 1e-2 whatever the backend's
     * storage (Q8TOL): the reference computes with the exact dequantised
     * weights; x86 CPU kernels also quantise activations per 32 values
     * (measured 1.3e-3 .. 3e-3), Vulkan f16 storage rounds (3e-4) */
    {SD_OP_MATMUL, b_matmul, {0, 130, 320, 77, 1, 1, Q8}, Q8TOL},
    {SD_OP_MATMUL, b_matmul, {2, 33, 96, 200, 0, 1, Q8}, Q8TOL},
    {SD_OP_MATMUL, b_matmul, {0, 67, 1280, 131, 1, 0, Q8}, Q8TOL},
    /* past the 128x128 tiles, odd M / N / K (scalar and vector load paths) */
    {SD_OP_MATMUL, b_matmul, {0, 300, 67, 257, 1, 1, F16}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {2, 130, 320, 129, 1, 0, F32}, 1e-5},
    {SD_OP_MATMUL, b_matmul, {0, 129, 96, 640, 1, 1, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 9, 11, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1, 0, F32}, 1e-5},
    /* SD channel counts, odd sizes: 320 with bias + residual, the 4-channel
     * conv_in, 9 (inpainting), 3 (VAE encoder), 640 -> 1280, stride 2 with
     * diffusers' (0, 1, 0, 1) padding, 1x1 skip projections */
    {SD_OP_CONV2D, b_conv, {1, 13, 11, 320, 320, 3, 3, 1, 1, 1, 1, 1, 1, 1, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {2, 9, 9, 4, 320, 3, 3, 1, 1, 1, 1, 1, 1, 0, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 8, 7, 9, 320, 3, 3, 1, 1, 1, 1, 1, 1, 0, F32}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 17, 15, 3, 128, 3, 3, 1, 1, 1, 1, 1, 1, 0, F32}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 6, 5, 640, 1280, 3, 3, 1, 1, 1, 1, 1, 1, 0, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 11, 9, 320, 320, 3, 3, 2, 0, 0, 1, 1, 1, 0, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {2, 7, 9, 640, 320, 1, 1, 1, 0, 0, 0, 0, 1, 1, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {2, 8, 8, 16, 32, 3, 3, 2, 0, 0, 1, 1, 1, 0, F32}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 9, 7, 6, 10, 3, 3, 2, 1, 1, 1, 1, 0, 0, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {2, 5, 6, 24, 40, 1, 1, 1, 0, 0, 0, 0, 1, 1, F32}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 6, 6, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, BF16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 16, 16, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 0, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 7, 9, 3, 13, 3, 3, 1, 1, 1, 1, 1, 1, 0, F32}, 1e-5},
    /* the CPU's Winograd conv (3x3, stride 1; SDVK_CPU_WINOGRAD=on takes
     * every one): the tiled VAE's band padding (0, 1, 0, 1), no padding
     * with odd channels (transform tails) and batch 2, and one large enough
     * for the automatic choice (306 tiles) */
    {SD_OP_CONV2D, b_conv, {1, 10, 9, 24, 40, 3, 3, 1, 0, 1, 0, 1, 1, 1, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {2, 7, 12, 33, 20, 3, 3, 1, 0, 0, 0, 0, 1, 0, F32}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 33, 35, 40, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, F16}, 1e-5},
    {SD_OP_CONV2D, b_conv, {1, 16, 16, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, Q8}, Q8TOL},
    {SD_OP_CONV2D, b_conv, {2, 9, 7, 32, 40, 3, 3, 2, 0, 0, 1, 1, 1, 0, Q8}, Q8TOL},
    {SD_OP_CONV2D, b_conv, {2, 5, 6, 96, 40, 1, 1, 1, 0, 0, 0, 0, 1, 1, Q8}, Q8TOL},
    {SD_OP_GROUP_NORM, b_group_norm, {4, 2, 6, 5, 32, 8, 0, F32}, 1e-5},
    {SD_OP_GROUP_NORM, b_group_norm, {4, 2, 6, 5, 32, 8, 1, F32}, 1e-5},
    {SD_OP_GROUP_NORM, b_group_norm, {4, 1, 3, 4, 96, 32, 1, F16}, 1e-5},
    {SD_OP_GROUP_NORM, b_group_norm, {3, 2, 17, 16, 0, 4, 0, F32}, 1e-5},
    {SD_OP_GROUP_NORM, b_group_norm, {4, 1, 24, 24, 320, 32, 1, F16}, 1e-5},
    /* groups above 8192 elements: chunk statistics + merge-and-apply */
    {SD_OP_GROUP_NORM, b_group_norm, {4, 1, 72, 72, 64, 32, 0, F32}, 1e-5},
    {SD_OP_GROUP_NORM, b_group_norm, {4, 2, 40, 40, 320, 32, 1, F16}, 1e-5},
    {SD_OP_GROUP_NORM, b_group_norm, {4, 1, 128, 128, 128, 32, 1, F32}, 1e-5},
    {SD_OP_LAYER_NORM, b_layer_norm, {3, 2, 77, 64, F32}, 1e-5},
    {SD_OP_LAYER_NORM, b_layer_norm, {2, 3, 13, 0, F32}, 1e-5},
    {SD_OP_LAYER_NORM, b_layer_norm, {3, 1, 77, 768, BF16}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {2, 37, 37, 64, 1, 0}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {2, 37, 37, 64, 8, 1}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {1, 77, 77, 64, 1, 1}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {2, 50, 77, 64, 8, 0}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {1, 20, 77, 40, 1, 0}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {1, 300, 300, 320, 8, 0}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {1, 3, 1, 16, 2, 0}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {1, 40, 1100, 64, 2, 0, 6}, 1e-5},
    {SD_OP_ATTENTION, b_attention, {1, 129, 129, 32, 1, 1, 6}, 1e-5},
    {SD_OP_GEGLU, b_unary, {SD_OP_GEGLU, 3, 2, 10, 48}, 1e-5},
    {SD_OP_GEGLU, b_matmul_geglu, {1, 37, 33, 21, 1, F32, 0}, 1e-5},
    {SD_OP_GEGLU, b_matmul_geglu, {1, 37, 33, 21, 1, F32, 1}, 1e-5},
    {SD_OP_GEGLU, b_matmul_geglu, {2, 70, 320, 1280, 1, F16, 0}, 1e-5},
    {SD_OP_GEGLU, b_matmul_geglu, {1, 130, 64, 100, 0, F16, 0}, 1e-5},
    {SD_OP_GELU, b_unary, {SD_OP_GELU, 2, 3, 1000}, 1e-5},
    {SD_OP_QUICK_GELU, b_unary, {SD_OP_QUICK_GELU, 3, 2, 7, 33}, 1e-5},
    {SD_OP_SILU, b_unary, {SD_OP_SILU, 4, 2, 5, 7, 9}, 1e-5},
    {SD_OP_SCALE, b_unary, {SD_OP_SCALE, 2, 5, 7}, 1e-5},
    {SD_OP_RELU, b_unary, {SD_OP_RELU, 3, 2, 7, 33}, 1e-5},
    {SD_OP_TANH, b_unary, {SD_OP_TANH, 2, 5, 999}, 1e-5},
    {SD_OP_UPSAMPLE2X, b_unary, {SD_OP_UPSAMPLE2X, 4, 2, 3, 5, 6}, 1e-5},
    {SD_OP_UPSAMPLE2X, b_upcrop, {2, 3, 5, 6, 1, 0}, 1e-5},
    {SD_OP_UPSAMPLE2X, b_upcrop, {1, 4, 3, 8, 1, 1}, 1e-5},
    {SD_OP_ADD, b_binary, {SD_OP_ADD, 4, 2, 5, 7, 16, 4, 2, 1, 1, 16}, 1e-5},
    {SD_OP_ADD, b_binary, {SD_OP_ADD, 3, 2, 9, 16, 0, 1, 16}, 1e-5},
    {SD_OP_ADD, b_binary, {SD_OP_ADD, 3, 3, 4, 5, 0, 3, 3, 4, 5}, 1e-5},
    {SD_OP_MUL, b_binary, {SD_OP_MUL, 4, 2, 5, 7, 16, 4, 2, 1, 1, 16}, 1e-5},
    {SD_OP_MUL, b_binary, {SD_OP_MUL, 3, 2, 9, 16, 0, 2, 9, 1}, 1e-5},
    {SD_OP_CONCAT, b_binary, {SD_OP_CONCAT, 4, 2, 4, 5, 6, 4, 2, 4, 5, 10, 3}, 1e-5},
    {SD_OP_CONCAT, b_binary, {SD_OP_CONCAT, 3, 2, 3, 8, 0, 3, 1, 3, 8, 0, 0}, 1e-5},
    {SD_OP_CONCAT, b_binary, {SD_OP_CONCAT, 3, 2, 3, 8, 0, 3, 2, 5, 8, 0, 1}, 1e-5},
    {SD_OP_EMBEDDING, b_embedding, {2, 77, 50, 32, F32}, 1e-5},
    {SD_OP_EMBEDDING, b_embedding, {1, 9, 13, 24, F16}, 1e-5},
    {SD_OP_TIMESTEP_EMBED, b_timestep, {3, 320, 1000}, 2e-4},
    {SD_OP_TIMESTEP_EMBED, b_timestep, {2, 18, 10}, 1e-5},
    {SD_OP_STEP_SELECT, b_step_select, {4, 3, 8, 0, 0}, 1e-5},
    {SD_OP_STEP_SELECT, b_step_select, {4, 3, 8, 2, 0}, 1e-5},
    {SD_OP_STEP_SELECT, b_step_select, {5, 2, 7, 2, 1}, 1e-5},
    {SD_OP_CFG_COMBINE, b_cfg, {4, 3, 5, 4}, 1e-5},
    {SD_OP_SAMPLER_STEP, b_sampler, {2, 4, 5, 4, 1, 1, 0}, 1e-5},
    {SD_OP_SAMPLER_STEP, b_sampler, {1, 3, 7, 4, 4, 0, 5}, 1e-5},
    {SD_OP_SAMPLER_STEP, b_sampler, {3, 2, 5, 4, 3, 1, 2}, 1e-5},
    {SD_OP_COPY, b_copy, {3, 17, 1}, 1e-5},
    {SD_OP_COPY, b_copy, {3, 17, 3}, 1e-5},
    {SD_OP_COUNT, b_chain, {1, 6, 5, 16}, 1e-5},
};
#define N_CASES ((int)(sizeof k_cases / sizeof k_cases[0]))

static int selected(const case_def *cd) {
    const char *f = getenv("SDVK_CONFORMANCE_OPS");
    if (!f || !*f)
        return 1;
    const char *name = cd->op == SD_OP_COUNT ? "chain" : sd_op_name(cd->op);
    size_t n = strlen(name);
    for (const char *s = f; (s = strstr(s, name)); s += n)
        if ((s == f || s[-1] == ',') && (s[n] == 0 || s[n] == ','))
            return 1;
    return 0;
}

int sd_conformance_case_count(void) {
    int n = 0;
    for (int i = 0; i < N_CASES; i++) n += selected(&k_cases[i]);
    return n;
}

int sd_conformance_case_count_abs_tol(void) {
    int n = 0;
    for (int i = 0; i < N_CASES; i++) n += selected(&k_cases[i]) && k_cases[i].base_tol < 0;
    return n;
}

/* Runs the built graph on one backend; out gets the output tensor. */
static sdvk_status run_on(sd_backend *be, const sd_graph *g, const conf_case *c, int out_id,
                          void *out, size_t nbytes) {
    sd_bgraph *bg = NULL;
    SD_TRY(be->v->prepare(be, g, NULL, &bg));
    sdvk_status s = SDVK_OK;
    for (int i = 0; i < c->n_in && s == SDVK_OK; i++)
        s = be->v->write(be, bg, c->in_id[i], c->in_data[i], c->in_bytes[i]);
    if (s == SDVK_OK)
        s = be->v->run(be, bg, c->first_step, c->n_steps, NULL, NULL);
    if (s == SDVK_OK)
        s = be->v->read(be, bg, out_id, out, nbytes);
    be->v->release(be, bg);
    return s;
}

static void free_case(conf_case *c) {
    for (int i = 0; i < c->n_in; i++) free(c->in_data[i]);
    for (int i = 0; i < c->n_owned; i++) free(c->owned[i]);
}

sdvk_status sd_conformance_run(sd_backend *test, sd_backend *ref, double tol_scale, FILE *report,
                               int *n_fail) {
    if (n_fail)
        *n_fail = 0;
    if (!test || !ref || !(tol_scale > 0))
        return sd_err(SDVK_ERR_INVALID_ARG, "conformance: needs two backends and tol_scale > 0");
    if (report)
        fprintf(report, "conformance: test = %s, reference = %s, tolerance = base x %g\n"
                        "%-15s %-46s %10s %9s  %s\n",
                test->name, ref->name, tol_scale, "op", "shape", "rel_err", "tol", "result");
    int fails = 0, ran = 0;
    for (int ci = 0; ci < N_CASES; ci++) {
        const case_def *cd = &k_cases[ci];
        if (!selected(cd))
            continue;
        ran++;
        conf_case c;
        memset(&c, 0, sizeof c);
        c.rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)(ci + 1) * 0xD1B54A32D192ED03ull);
        c.n_steps = 1;
        const char *opname = cd->op == SD_OP_COUNT ? "chain" : sd_op_name(cd->op);
        double tol = cd->base_tol < 0 ? -cd->base_tol : cd->base_tol * tol_scale, err = NAN;
        char msg[640] = "";
        sd_graph *g = sd_graph_new();
        if (!g) {
            free_case(&c);
            return sd_err(SDVK_ERR_OOM, "conformance: out of memory");
        }
        int out = cd->fn(g, &c, cd->p);
        float *ra = NULL, *rb = NULL;
        if (c.oom) {
            sd_graph_free(g);
            free_case(&c);
            return sd_err(SDVK_ERR_OOM, "conformance: out of memory");
        }
        if (out < 0 || g->status || sd_graph_output(g, out) < 0 || sd_graph_plan(g) != SDVK_OK) {
            snprintf(msg, sizeof msg, "build: %s", g->status ? g->err : sdvk_last_error());
        } else {
            int64_t n = sd_tensor_nelem(&g->t[out]);
            size_t nbytes = (size_t)n * 4;
            ra = malloc(nbytes + 4);
            rb = malloc(nbytes + 4);
            if (!ra || !rb) {
                snprintf(msg, sizeof msg, "out of memory");
            } else if (run_on(ref, g, &c, out, rb, nbytes) != SDVK_OK) {
                snprintf(msg, sizeof msg, "reference: %s", sdvk_last_error());
            } else if (run_on(test, g, &c, out, ra, nbytes) != SDVK_OK) {
                snprintf(msg, sizeof msg, "%s", sdvk_last_error());
            } else {
                double num = 0, den = 0;
                int finite = 1;
                for (int64_t i = 0; i < n; i++) {
                    if (!isfinite(ra[i]))
                        finite = 0;
                    double d = (double)ra[i] - (double)rb[i];
                    num += d * d;
                    den += (double)rb[i] * (double)rb[i];
                }
                err = den > 0 ? sqrt(num / den) : sqrt(num);
                if (!finite)
                    snprintf(msg, sizeof msg, "non-finite values in the result");
            }
        }
        int pass = !msg[0] && err <= tol;
        fails += !pass;
        if (report) {
            fprintf(report, "%-15s %-46s %10.3e %9.1e  %s", opname, c.shape[0] ? c.shape : "?", err,
                    tol, pass ? "PASS" : "FAIL");
            if (msg[0])
                fprintf(report, "  (%s)", msg);
            fputc('\n', report);
        }
        free(ra);
        free(rb);
        sd_graph_free(g);
        free_case(&c);
    }
    if (report)
        fprintf(report, "conformance: %d of %d cases passed\n", ran - fails, ran);
    if (n_fail)
        *n_fail = fails;
    if (fails)
        return sd_err(SDVK_ERR_BACKEND, "conformance: %d of %d cases failed", fails, ran);
    return SDVK_OK;
}
