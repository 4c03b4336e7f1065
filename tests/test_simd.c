/* SIMD CPU kernels vs the plain-C reference kernels, op by op, with every
 * ISA this CPU has forced in turn (scalar always; avx2/avx512 on x86; neon
 * on aarch64). Each case builds a one-node graph, runs it through the
 * reference table and through the SIMD table (prep hooks included) and
 * compares by relative L2 error: 1e-5 (fp32 math with different summation
 * order and a polynomial exp). Odd sizes exercise every tile/block tail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd/simd.h"
#include "core/graph.h"
#include "core/pool.h"
#include "core/q8.h"
#include "core/status.h"

static int g_fail = 0, g_cases = 0;
static unsigned long long g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* Scales of the last SD_Q8 weight made by rand_weight (the caller sets
 * them on the graph tensor). */
static uint16_t *g_last_scales;

/* Weight storage of a given dtype with random values. SD_Q8 needs the
 * shape (ndim, ne): q8 of random f32 values, scales in g_last_scales. */
static void *rand_weight_q8(int ndim, const int64_t *ne, float amp) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= ne[d];
    float *f = malloc((size_t)n * 4 + 4);
    for (int64_t i = 0; i < n; i++) f[i] = frand() * amp;
    int8_t *q = malloc((size_t)n + 64);
    g_last_scales = malloc((size_t)(n / 32) * 2 + 2);
    if (sd_q8_quantize_tensor(f, SD_F32, ndim, ne, q, g_last_scales, "w") != SDVK_OK)
        printf("FAIL: q8 quantise: %s\n", sdvk_last_error());
    free(f);
    return q;
}

static void *rand_weight(sd_dtype dt, int64_t n, float amp) {
    void *p = malloc((size_t)n * sd_dtype_size(dt) + 16);
    for (int64_t i = 0; i < n; i++) {
        float v = frand() * amp;
        if (dt == SD_F32)
            ((float *)p)[i] = v;
        else if (dt == SD_F16)
            ((uint16_t *)p)[i] = sd_f32_to_f16(v);
        else
            ((uint16_t *)p)[i] = sd_f32_to_bf16(v);
    }
    return p;
}

/* Current ISA under test and its table; g_skip_prep runs the SIMD table
 * without its prep hooks (the unpacked matmul/conv fallback). */
static sd_cpu_kernels g_ref, g_simd;
static const char *g_isa;
static sd_pool *g_pool;
static int g_skip_prep;
/* 1: both tables make 8-bit weights at prepare (options.weights = q8). */
static int g_q8_mode;
/* 1: the table under test runs 8-bit weights on integer dot products
 * (activations quantised per 32 values: q8dot.h), so q8 cases get 1e-2 and
 * must show that error (at least 3e-4: proof the integer path ran). */
static int g_q8_int;
/* Tolerance (relative L2) of packed matmul/conv: 1e-5 for the f32 kernels;
 * the bf16 kernel rounds both operands to 8 significant bits, and must
 * also show that error (g_gemm_min), proving the bf16 path really ran. */
static double g_gemm_tol = 1e-5, g_gemm_min = 0;
static double g_tol = 1e-5, g_min = 0;

/* Runs node 0..nn-1 of g with kernel table k; inputs are given as f32
 * arrays per input tensor id (in). Returns the output (malloc'd). */
static float *run_graph(sd_graph *g, const sd_cpu_kernels *k, float *const *in, int out, sd_pool *pool) {
    size_t asz = g->arena_size ? g->arena_size : 64;
    unsigned char *arena = aligned_alloc(256, (asz + 255) / 256 * 256);
    memset(arena, 0xcd, asz); /* garbage, so a kernel relying on zeroed memory fails */
    void **data = calloc((size_t)g->nt, sizeof(void *));
    const void **raw = calloc((size_t)g->nt, sizeof(void *));
    void **packed = calloc((size_t)g->nn, sizeof(void *));
    float **f32w = calloc((size_t)g->nt, sizeof(float *));
    for (int t = 0; t < g->nt; t++) {
        sd_tensor *tt = &g->t[t];
        if (tt->kind == SD_T_WEIGHT) {
            raw[t] = tt->data;
            continue;
        }
        data[t] = arena + tt->offset;
        if (in[t])
            memcpy(data[t], in[t], sd_tensor_nbytes(tt));
    }
    for (int i = 0; i < g->nn; i++) {
        sd_node *n = &g->n[i];
        for (int j = 0; j < SD_MAX_IN; j++) {
            int t = n->in[j];
            if (t < 0 || g->t[t].kind != SD_T_WEIGHT || !k->want_f32_weights[n->op] || f32w[t])
                continue;
            int64_t ne = sd_tensor_nelem(&g->t[t]);
            f32w[t] = malloc((size_t)ne * 4 + 4);
            sd_to_f32(f32w[t], g->t[t].data, g->t[t].dtype, (size_t)ne);
            data[t] = f32w[t];
        }
        sd_cpu_prep_fn prep = g_q8_mode && k->prep_q8[n->op] ? k->prep_q8[n->op] : k->prep[n->op];
        if (prep && !(g_skip_prep && k == &g_simd))
            packed[i] = prep(g, n, raw);
    }
    for (int i = 0; i < g->nn; i++) {
        sd_cpu_ctx c = {.g = g, .n = &g->n[i], .data = data, .raw = raw, .packed = packed, .pool = pool};
        k->fn[g->n[i].op](&c);
    }
    size_t ob = sd_tensor_nbytes(&g->t[out]);
    float *res = malloc(ob);
    memcpy(res, data[out], ob);
    for (int i = 0; i < g->nn; i++) free(packed[i]);
    for (int t = 0; t < g->nt; t++) free(f32w[t]);
    free(f32w), free(packed), free(raw), free(data), free(arena);
    return res;
}


static void compare(sd_graph *g, float *const *in, int out, const char *what) {
    g_cases++;
    if (g->status || sd_graph_plan(g) != SDVK_OK) {
        printf("FAIL %s [%s]: graph build: %s\n", what, g_isa, sdvk_last_error());
        g_fail++;
        return;
    }
    float *r = run_graph(g, &g_ref, in, out, g_pool);
    float *s = run_graph(g, &g_simd, in, out, g_pool);
    int64_t n = sd_tensor_nelem(&g->t[out]);
    double num = 0, den = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(s[i]))
            bad = 1;
        double d = (double)s[i] - r[i];
        num += d * d;
        den += (double)r[i] * r[i];
    }
    double rel = sqrt(num / (den > 0 ? den : 1e-30));
    if (bad || rel > g_tol || rel < g_min || den == 0) {
        printf("FAIL %s [%s]: rel L2 %.3g%s (tolerance %g, at least %g)\n", what, g_isa, rel,
               bad ? ", non-finite" : "", g_tol, g_min);
        g_fail++;
    } else if (getenv("SDVK_TEST_VERBOSE")) {
        printf("ok   %s [%s]: rel L2 %.3g\n", what, g_isa, rel);
    }
    free(r);
    free(s);
}

/* Packed matmul/conv use the ISA's GEMM tolerance; the unpacked fallback
 * is exact f32 on every ISA. min_err applies only to depths where bf16
 * rounding must show (K >= 64). */
static void gemm_compare(sd_graph *g, float *const *in, int out, const char *what) {
    const sd_tensor *tw = &g->t[g->n[g->nn - 1].in[1]];
    int q8 = tw->dtype == SD_Q8 || (g_q8_mode && sd_q8_eligible(tw->ndim, tw->ne));
    if (!g_skip_prep && q8 && g_q8_int) {
        g_tol = 1e-2;
        g_min = 3e-4;
    } else if (!g_skip_prep) {
        g_tol = g_gemm_tol;
        g_min = g->t[g->n[g->nn - 1].in[1]].ne[1] * (g->t[g->n[g->nn - 1].in[1]].ndim == 4 ? 9 : 1) >= 64
                    ? g_gemm_min : 0;
    }
    compare(g, in, out, what);
    g_tol = 1e-5, g_min = 0;
}

static float *rand_f32(int64_t n, float amp) {
    float *p = malloc((size_t)n * 4 + 4);
    for (int64_t i = 0; i < n; i++) p[i] = frand() * amp;
    return p;
}

#define MAXT 16
typedef struct fx {
    float *in[MAXT];
    void *w[MAXT];
    int nw;
} fx;

static int add_input(sd_graph *g, fx *f, int ndim, const int64_t *ne, float amp, const char *name) {
    int t = sd_graph_input(g, SD_F32, ndim, ne, name);
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= ne[d];
    if (t >= 0 && t < MAXT)
        f->in[t] = rand_f32(n, amp);
    return t;
}

static int add_weight(sd_graph *g, fx *f, sd_dtype dt, int ndim, const int64_t *ne, float amp, const char *name) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= ne[d];
    if (dt == SD_Q8 && !sd_q8_eligible(ndim, ne))
        dt = SD_F16; /* biases of q8 cases, shapes q8 does not take */
    void *p = dt == SD_Q8 ? rand_weight_q8(ndim, ne, amp) : rand_weight(dt, n, amp);
    f->w[f->nw++] = p;
    int id = sd_graph_weight(g, dt, ndim, ne, p, name);
    if (dt == SD_Q8) {
        f->w[f->nw++] = g_last_scales;
        if (id >= 0)
            g->t[id].scale = g_last_scales;
    }
    return id;
}

static void fx_free(fx *f) {
    for (int i = 0; i < MAXT; i++) free(f->in[i]);
    for (int i = 0; i < f->nw; i++) free(f->w[i]);
}

static void test_matmul(int64_t B, int64_t M, int64_t K, int64_t N, sd_dtype dt, int bias, int res) {
    sd_graph *g = sd_graph_new();
    fx f = {0};
    int64_t xne[3] = {B, M, K}, wne[2] = {N, K}, bne[1] = {N}, one[3] = {B, M, N};
    int x = add_input(g, &f, 3, xne, 1.0f, "x");
    int r = res ? add_input(g, &f, 3, one, 1.0f, "res") : -1;
    int w = add_weight(g, &f, dt, 2, wne, 1.0f / sqrtf((float)K), "w");
    int b = bias ? add_weight(g, &f, dt, 1, bne, 1.0f, "b") : -1;
    int o = sd_graph_output(g, sd_matmul(g, x, w, b, r));
    char what[160];
    snprintf(what, sizeof what, "matmul B=%lld M=%lld K=%lld N=%lld %s bias=%d res=%d", (long long)B,
             (long long)M, (long long)K, (long long)N, sd_dtype_name(dt), bias, res);
    gemm_compare(g, f.in, o, what);
    fx_free(&f);
    sd_graph_free(g);
}

static void test_conv(int64_t B, int64_t H, int64_t W, int64_t Ci, int64_t Co, int64_t k, int s, int pt,
                      int pl, int pb, int pr, sd_dtype dt, int bias, int res) {
    sd_graph *g = sd_graph_new();
    fx f = {0};
    int64_t xne[4] = {B, H, W, Ci}, wne[4] = {Co, Ci, k, k}, bne[1] = {Co};
    int x = add_input(g, &f, 4, xne, 1.0f, "x");
    int w = add_weight(g, &f, dt, 4, wne, 1.0f / sqrtf((float)(Ci * k * k)), "w");
    int b = bias ? add_weight(g, &f, dt, 1, bne, 1.0f, "b") : -1;
    int64_t Ho = (H + pt + pb - k) / s + 1, Wo = (W + pl + pr - k) / s + 1;
    int64_t one[4] = {B, Ho, Wo, Co};
    int r = res ? add_input(g, &f, 4, one, 1.0f, "res") : -1;
    int o = sd_graph_output(g, sd_conv2d(g, x, w, b, r, s, pt, pl, pb, pr));
    char what[200];
    snprintf(what, sizeof what, "conv2d B=%lld %lldx%lld Ci=%lld Co=%lld k=%lld s=%d pad=%d,%d,%d,%d %s bias=%d res=%d",
             (long long)B, (long long)H, (long long)W, (long long)Ci, (long long)Co, (long long)k, s, pt, pl,
             pb, pr, sd_dtype_name(dt), bias, res);
    gemm_compare(g, f.in, o, what);
    fx_free(&f);
    sd_graph_free(g);
}

static void test_attention(int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t D, int causal) {
    sd_graph *g = sd_graph_new();
    fx f = {0};
    int64_t qne[3] = {B, Lq, H * D}, kne[3] = {B, Lk, H * D};
    int q = add_input(g, &f, 3, qne, 2.0f, "q");
    int k = add_input(g, &f, 3, kne, 2.0f, "k");
    int v = add_input(g, &f, 3, kne, 1.0f, "v");
    int o = sd_graph_output(g, sd_attention(g, q, k, v, (int)H, causal, 1.0f / sqrtf((float)D)));
    char what[160];
    snprintf(what, sizeof what, "attention B=%lld Lq=%lld Lk=%lld H=%lld D=%lld causal=%d", (long long)B,
             (long long)Lq, (long long)Lk, (long long)H, (long long)D, causal);
    compare(g, f.in, o, what);
    fx_free(&f);
    sd_graph_free(g);
}

static void test_group_norm(int64_t B, int64_t Hh, int64_t Ww, int64_t C, int G, int silu) {
    sd_graph *g = sd_graph_new();
    fx f = {0};
    int64_t xne[4] = {B, Hh, Ww, C}, cne[1] = {C};
    int x = add_input(g, &f, 4, xne, 3.0f, "x");
    /* A per-channel offset makes mean removal matter. */
    for (int64_t i = 0; i < B * Hh * Ww * C; i++) f.in[x][i] += 0.5f * (float)(i % C % 7);
    int ga = add_weight(g, &f, SD_F16, 1, cne, 1.0f, "gamma");
    int be = add_weight(g, &f, SD_F32, 1, cne, 1.0f, "beta");
    int o = sd_graph_output(g, sd_group_norm(g, x, ga, be, G, 1e-5f, silu));
    char what[160];
    snprintf(what, sizeof what, "group_norm B=%lld %lldx%lld C=%lld G=%d silu=%d", (long long)B, (long long)Hh,
             (long long)Ww, (long long)C, G, silu);
    compare(g, f.in, o, what);
    fx_free(&f);
    sd_graph_free(g);
}

static void test_layer_norm(int64_t B, int64_t L, int64_t C) {
    sd_graph *g = sd_graph_new();
    fx f = {0};
    int64_t xne[3] = {B, L, C}, cne[1] = {C};
    int x = add_input(g, &f, 3, xne, 2.0f, "x");
    for (int64_t i = 0; i < B * L * C; i++) f.in[x][i] += 1.5f;
    int ga = add_weight(g, &f, SD_BF16, 1, cne, 1.0f, "gamma");
    int be = add_weight(g, &f, SD_F32, 1, cne, 1.0f, "beta");
    int o = sd_graph_output(g, sd_layer_norm(g, x, ga, be, 1e-5f));
    char what[160];
    snprintf(what, sizeof what, "layer_norm B=%lld L=%lld C=%lld", (long long)B, (long long)L, (long long)C);
    compare(g, f.in, o, what);
    fx_free(&f);
    sd_graph_free(g);
}

/* op: GELU, QUICK_GELU, SILU on x[B, L, C]; GEGLU on x[B, L, 2C]. */
static void test_act(sd_op op, int64_t B, int64_t L, int64_t C, float amp) {
    sd_graph *g = sd_graph_new();
    fx f = {0};
    int64_t xne[3] = {B, L, op == SD_OP_GEGLU ? 2 * C : C};
    int x = add_input(g, &f, 3, xne, amp, "x");
    int o = op == SD_OP_GEGLU ? sd_geglu(g, x) : op == SD_OP_GELU ? sd_gelu(g, x)
            : op == SD_OP_SILU ? sd_silu(g, x) : op == SD_OP_RELU ? sd_relu(g, x)
            : op == SD_OP_TANH ? sd_tanh(g, x) : sd_quick_gelu(g, x);
    o = sd_graph_output(g, o);
    char what[160];
    snprintf(what, sizeof what, "%s B=%lld L=%lld C=%lld amp=%g", sd_op_name(op), (long long)B, (long long)L,
             (long long)C, amp);
    compare(g, f.in, o, what);
    fx_free(&f);
    sd_graph_free(g);
}

/* An F16 weight made 8-bit at prepare (--weights q8) and the same weight
 * stored as q8 by sd_q8_quantize_tensor (what `sdvk convert` writes) must
 * give bit-identical results: one quantiser, one panel layout. */
static void test_q8_same(int conv) {
    int64_t B = 2, H = 5, W = 6, Ci = 64, Co = 24, M = 13, K = 96, N = 40;
    int64_t wne4[4] = {Co, Ci, 3, 3}, wne2[2] = {N, K}, bne[1] = {conv ? Co : N};
    const int64_t *wne = conv ? wne4 : wne2;
    int nd = conv ? 4 : 2;
    int64_t nw = conv ? Co * Ci * 9 : N * K;
    uint16_t *w16 = rand_weight(SD_F16, nw, 0.1f);
    int8_t *q = malloc((size_t)nw);
    uint16_t *sc = malloc((size_t)nw / 32 * 2);
    sd_q8_quantize_tensor(w16, SD_F16, nd, wne, q, sc, "w");
    float *out[2] = {NULL, NULL};
    float *xin = NULL;
    int64_t xne4[4] = {B, H, W, Ci}, xne2[2] = {M, K};
    int64_t nx = conv ? B * H * W * Ci : M * K;
    xin = rand_f32(nx, 1.0f);
    uint16_t *bias = rand_weight(SD_F16, bne[0], 0.5f);
    for (int v = 0; v < 2; v++) {
        sd_graph *g = sd_graph_new();
        float *in[MAXT] = {0};
        int x = sd_graph_input(g, SD_F32, nd, conv ? xne4 : xne2, "x");
        in[x] = xin;
        int w = v ? sd_graph_weight(g, SD_Q8, nd, wne, q, "w") : sd_graph_weight(g, SD_F16, nd, wne, w16, "w");
        if (v)
            g->t[w].scale = sc;
        int b = sd_graph_weight(g, SD_F16, 1, bne, bias, "b");
        int o = sd_graph_output(g, conv ? sd_conv2d(g, x, w, b, -1, 1, 1, 1, 1, 1) : sd_matmul(g, x, w, b, -1));
        g_q8_mode = v == 0;
        if (!g->status && sd_graph_plan(g) == SDVK_OK)
            out[v] = run_graph(g, &g_simd, in, o, g_pool);
        g_q8_mode = 0;
        if (out[v] && v == 1) {
            int64_t n = sd_tensor_nelem(&g->t[o]);
            g_cases++;
            if (memcmp(out[0], out[1], (size_t)n * 4)) {
                printf("FAIL %s q8 at load vs q8 stored [%s]: results differ\n", conv ? "conv2d" : "matmul", g_isa);
                g_fail++;
            }
        }
        sd_graph_free(g);
    }
    free(out[0]), free(out[1]), free(xin), free(bias), free(w16), free(q), free(sc);
}

static void run_all(void) {
    /* matmul: tiny, odd, multi-k-block (K > 320), 3 dtypes, bias/residual */
    test_matmul(1, 1, 1, 1, SD_F32, 0, 0);
    test_matmul(1, 7, 13, 5, SD_F32, 1, 0);
    test_matmul(2, 17, 70, 45, SD_F16, 1, 1);
    test_matmul(1, 150, 320, 97, SD_BF16, 0, 1);
    test_matmul(1, 200, 700, 130, SD_F32, 1, 1);
    test_matmul(2, 77, 768, 33, SD_F16, 1, 0);
    test_matmul(1, 333, 64, 1, SD_F32, 1, 0);
    /* conv2d: 3x3 same, strided with asymmetric pad, 1x1 fast path, long K */
    test_conv(1, 5, 7, 3, 5, 3, 1, 1, 1, 1, 1, SD_F32, 1, 0);
    test_conv(2, 9, 8, 13, 17, 3, 2, 0, 0, 1, 1, SD_F16, 1, 0);
    test_conv(1, 6, 6, 8, 4, 1, 1, 0, 0, 0, 0, SD_F32, 0, 1);
    test_conv(2, 7, 5, 40, 33, 3, 1, 1, 1, 1, 1, SD_F16, 1, 1);
    test_conv(1, 11, 13, 4, 36, 3, 1, 1, 1, 1, 1, SD_BF16, 1, 0);
    test_conv(1, 8, 8, 19, 7, 1, 2, 0, 0, 0, 0, SD_F32, 1, 0);
    /* attention: odd lengths, several key blocks, causal, SD head dims */
    test_attention(1, 5, 7, 1, 3, 0);
    test_attention(2, 70, 77, 2, 40, 0);
    test_attention(1, 130, 130, 2, 16, 1);
    test_attention(2, 65, 300, 1, 80, 0);
    test_attention(1, 20, 20, 1, 160, 1);
    test_attention(1, 3, 257, 3, 33, 0);
    test_attention(1, 300, 290, 1, 512, 0); /* VAE-style single wide head */
    test_attention(2, 40, 170, 2, 257, 0);
    test_attention(1, 50, 50, 1, 1000, 1);
    /* norms */
    test_group_norm(2, 7, 5, 40, 4, 1);
    test_group_norm(1, 8, 8, 320, 32, 0);
    test_group_norm(2, 3, 5, 96, 32, 1);
    test_group_norm(1, 4, 4, 30, 1, 0);
    test_layer_norm(3, 7, 45);
    test_layer_norm(2, 77, 768);
    /* 8-bit weights, stored (SD_Q8): odd M/N, several k-blocks, conv taps */
    test_matmul(1, 7, 32, 5, SD_Q8, 1, 0);
    test_matmul(2, 37, 320, 45, SD_Q8, 1, 1);
    test_matmul(1, 150, 1280, 97, SD_Q8, 0, 1);
    test_conv(1, 6, 7, 32, 17, 3, 1, 1, 1, 1, 1, SD_Q8, 1, 1);
    test_conv(2, 9, 8, 64, 40, 3, 2, 0, 0, 1, 1, SD_Q8, 1, 0);
    test_conv(1, 5, 5, 96, 33, 1, 1, 0, 0, 0, 0, SD_Q8, 0, 1);
    /* 8-bit weights made at prepare from F16/F32/BF16 (and shapes q8 does
     * not take, which stay as they are) */
    g_q8_mode = g_simd.prep_q8[SD_OP_MATMUL] != NULL; /* avx512bf16 has none */
    if (g_q8_mode)
        test_matmul(2, 33, 640, 70, SD_F16, 1, 1);
    if (g_q8_mode) {
        test_matmul(1, 9, 13, 5, SD_F32, 1, 0);
        test_conv(1, 7, 6, 64, 24, 3, 1, 1, 1, 1, 1, SD_BF16, 1, 0);
        test_conv(1, 5, 5, 4, 8, 3, 1, 1, 1, 1, 1, SD_F16, 1, 0);
        g_q8_mode = 0;
        test_q8_same(0);
        test_q8_same(1);
    }
    /* matmul/conv without packed weights (fallback when prep had none) */
    g_skip_prep = 1;
    test_matmul(2, 9, 37, 11, SD_F16, 1, 1);
    test_conv(1, 6, 5, 7, 9, 3, 2, 1, 0, 1, 1, SD_BF16, 1, 1);
    test_matmul(1, 9, 64, 11, SD_Q8, 1, 1);
    test_conv(1, 6, 5, 32, 9, 3, 2, 1, 0, 1, 1, SD_Q8, 1, 1);
    g_skip_prep = 0;
    /* activations: odd sizes (chunk tails), wide range incl. large |x| */
    for (int op = 0; op < 6; op++) {
        sd_op ops[6] = {SD_OP_GEGLU, SD_OP_GELU, SD_OP_QUICK_GELU, SD_OP_SILU, SD_OP_RELU, SD_OP_TANH};
        test_act(ops[op], 1, 3, 5, 3.0f);
        test_act(ops[op], 2, 37, 321, 6.0f);
        test_act(ops[op], 1, 9, 2000, 30.0f);
    }
}

#if defined(__x86_64__)
/* vpmaddubsw and vpdpbusd compute the same exact int32 block sums, and
 * the rest is the same code: the avx2 and avx2vnni tables (and avx512,
 * whose panels are 32 wide) must agree bit for bit on 8-bit weights. */
static void test_q8_kernels_agree(void) {
    sd_cpu_kernels t[3];
    const char *names[3] = {"avx2", "avx2vnni", "avx512"};
    int have[3];
    for (int i = 0; i < 3; i++) {
        sd_cpu_ref_kernels(&t[i]);
        have[i] = sd_cpu_simd_select(names[i], &t[i]) == SDVK_OK;
    }
    if (!have[0] || (!have[1] && !have[2])) {
        printf("skip q8 kernel agreement: needs avx2 and a VNNI or AVX-512 table\n");
        return;
    }
    for (int conv = 0; conv < 2; conv++) {
        sd_graph *g = sd_graph_new();
        fx f = {0};
        int64_t xne[4] = {2, 7, 9, 64}, wne4[4] = {40, 64, 3, 3}, xne2[2] = {45, 320}, wne2[2] = {70, 320};
        int x = add_input(g, &f, conv ? 4 : 2, conv ? xne : xne2, 1.0f, "x");
        int w = add_weight(g, &f, SD_Q8, conv ? 4 : 2, conv ? wne4 : wne2, 0.05f, "w");
        int o = sd_graph_output(g, conv ? sd_conv2d(g, x, w, -1, -1, 1, 1, 1, 1, 1) : sd_matmul(g, x, w, -1, -1));
        if (g->status || sd_graph_plan(g)) {
            printf("FAIL q8 agreement graph: %s\n", sdvk_last_error());
            g_fail++;
        } else {
            float *r0 = run_graph(g, &t[0], f.in, o, g_pool);
            size_t nb = sd_tensor_nbytes(&g->t[o]);
            for (int i = 1; i < 3; i++) {
                if (!have[i])
                    continue;
                float *r = run_graph(g, &t[i], f.in, o, g_pool);
                g_cases++;
                if (memcmp(r0, r, nb)) {
                    printf("FAIL q8 %s: avx2 (vpmaddubsw) and %s differ\n", conv ? "conv2d" : "matmul", names[i]);
                    g_fail++;
                } else {
                    printf("q8 %s: avx2 and %s bit-identical\n", conv ? "conv2d" : "matmul", names[i]);
                }
                free(r);
            }
            free(r0);
        }
        fx_free(&f);
        sd_graph_free(g);
    }
}

#endif

/* --probe-bf16: what --precision bf16 does through the backend factory.
 * Exit 0: the CPU backend came up with the avx512bf16 kernels; 2: it was
 * refused with the documented message (no AVX-512 BF16 here); 1: anything
 * else (wrong kernels, unclear refusal). tests/simd.cmake runs the bf16
 * model test on 0 and accepts 2 as the checked refusal. */
static int probe_bf16(void) {
    /* set by hand: the NEON job links only the CPU parts, not the pipeline */
    sdvk_options opt = {.backend = SDVK_BACKEND_CPU, .device_index = -1, .precision = 3};
    sd_backend *be = NULL;
    sdvk_status s = sd_backend_create(SDVK_BACKEND_CPU, &opt, &be);
    if (s == SDVK_OK) {
        int ok = strstr(be->name, "avx512bf16") != NULL;
        printf("%s: --precision bf16 gives backend '%s'\n", ok ? "ok" : "FAIL", be->name);
        sd_backend_destroy(be);
        return ok ? 0 : 1;
    }
    int clean = be == NULL && strstr(sdvk_last_error(), "--precision bf16 needs a CPU with AVX-512 BF16");
    printf("%s: --precision bf16 refused: %s\n", clean ? "ok (no AVX-512 BF16 here)" : "FAIL", sdvk_last_error());
    return clean ? 2 : 1;
}

/* test_simd [--expect-auto ISA [--quick]]: with the option, "auto" must
 * pick ISA (the ctest under qemu-x86_64 -cpu Nehalem checks that an x86-64
 * binary falls back to the portable kernels on a CPU without AVX2);
 * --quick then tests the auto table only. */
int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--probe-bf16"))
        return probe_bf16();
    const char *expect_auto = argc > 2 && !strcmp(argv[1], "--expect-auto") ? argv[2] : NULL;
    int quick = expect_auto && argc > 3 && !strcmp(argv[3], "--quick");
    g_pool = sd_pool_create(2);
    sd_cpu_ref_kernels(&g_ref);
    /* Unknown ISAs are refused with a message. */
    sd_cpu_kernels k;
    sd_cpu_ref_kernels(&k);
    g_cases++;
    if (sd_cpu_simd_select("sse9", &k) == SDVK_OK || !strstr(sdvk_last_error(), "sse9")) {
        printf("FAIL: isa 'sse9' accepted or no message\n");
        g_fail++;
    }
    const char *isas[] = {"scalar", "avx2", "avx2vnni", "avx512", "avx512bf16", "neon", "neondot", "auto"};
    int tested = 0;
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        g_isa = isas[i];
        if (quick && strcmp(g_isa, "auto"))
            continue;
        sd_cpu_ref_kernels(&g_simd);
        int is_bf16 = !strcmp(g_isa, "avx512bf16");
        if (sd_cpu_simd_select(g_isa, &g_simd) != SDVK_OK) {
            printf("skip %s: %s\n", g_isa, sdvk_last_error());
            if (is_bf16) { /* not here: it must be a clean, explained refusal */
                g_cases++;
                if (!strstr(sdvk_last_error(), "avx512bf16") || g_simd.fn[SD_OP_MATMUL] != g_ref.fn[SD_OP_MATMUL]) {
                    printf("FAIL: avx512bf16 refusal without message or with a half-installed table\n");
                    g_fail++;
                } else {
                    printf("avx512bf16: not supported on this CPU/build; refusal checked\n");
                }
            }
            continue;
        }
        g_gemm_tol = is_bf16 ? 1e-2 : 1e-5;
        g_gemm_min = is_bf16 ? 1e-4 : 0;
        g_q8_int = !strcmp(g_simd.isa, "avx2") || !strcmp(g_simd.isa, "avx2vnni") || !strcmp(g_simd.isa, "avx512") ||
                   !strcmp(g_simd.isa, "neondot");
        /* bf16 changes numerics: auto must never pick it. */
        if (!strcmp(g_isa, "auto")) {
            g_cases++;
            if (!strcmp(g_simd.isa, "avx512bf16")) {
                printf("FAIL: auto picked avx512bf16\n");
                g_fail++;
            }
        }
        /* Test ISA forcing really installs kernels of that ISA. */
        g_cases++;
        if (strcmp(g_isa, "auto") && strcmp(g_simd.isa, g_isa)) {
            printf("FAIL: asked %s, table says %s\n", g_isa, g_simd.isa);
            g_fail++;
        }
        if (g_simd.fn[SD_OP_MATMUL] == g_ref.fn[SD_OP_MATMUL]) {
            printf("FAIL: %s left the reference matmul in place\n", g_isa);
            g_fail++;
        }
        if (expect_auto && !strcmp(g_isa, "auto")) {
            g_cases++;
            if (strcmp(g_simd.isa, expect_auto)) {
                printf("FAIL: auto picked %s, expected %s\n", g_simd.isa, expect_auto);
                g_fail++;
            }
        }
        printf("isa %s (table: %s)\n", g_isa, g_simd.isa);
        run_all();
        if (is_bf16) { /* SD depths: K up to 2560 (matmul), 2880 (3x3 conv on 320 ch) */
            test_matmul(1, 70, 2560, 100, SD_F16, 1, 1);
            test_matmul(2, 45, 1280, 64, SD_F32, 1, 0);
            test_matmul(1, 30, 1023, 40, SD_BF16, 0, 1);
            test_conv(1, 9, 8, 320, 40, 3, 1, 1, 1, 1, 1, SD_F16, 1, 1);
            test_conv(1, 6, 7, 33, 20, 3, 2, 0, 0, 1, 1, SD_F32, 1, 0);
        }
        tested++;
    }
#if defined(__x86_64__)
    test_q8_kernels_agree();
#endif
    sd_pool_destroy(g_pool);
    printf("%d checks, %d failed, %d ISAs\n", g_cases, g_fail, tested);
    return g_fail || tested < (quick ? 1 : 2) ? 1 : 0;
}
