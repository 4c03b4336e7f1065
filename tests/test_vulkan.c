/* Vulkan backend tests (ctest label "vulkan"), all with the Khronos
 * validation layer on: any validation error fails the test.
 *   test_vulkan conformance f32|f16   every op vs the CPU reference (shared harness)
 *   test_vulkan sd                    real SD channel counts vs the CPU reference
 *   test_vulkan bigtable              embedding table split over two bindings
 *   test_vulkan replay                one recorded graph replayed over steps
 *   test_vulkan fallback              no driver: create fails cleanly, auto -> CPU
 * Without a usable Vulkan driver every mode tests the fallback instead, and
 * says so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/conformance.h"
#ifndef SDVK_NO_VULKAN
#include "backend/vulkan/vk_internal.h"
#else
static int sd_vk_validation_errors(void) { return 0; }
#endif

static int test_fallback(void) {
    sd_backend *b = NULL;
    sd_vulkan_opts o = {.device_index = -1, .precision = 1, .validation = 0};
    sdvk_status s = sd_backend_vulkan_create(&o, &b);
    if (s != SDVK_ERR_UNSUPPORTED || b) {
        fprintf(stderr, "FAIL: vulkan create without a driver returned %d (%s), want unsupported\n",
                (int)s, sdvk_last_error());
        sd_backend_destroy(b);
        return 1;
    }
    printf("vulkan unavailable as expected: %s\n", sdvk_last_error());
    sdvk_options opt;
    sdvk_options_default(&opt);
    opt.backend = SDVK_BACKEND_AUTO;
    s = sd_backend_create(SDVK_BACKEND_AUTO, &opt, &b);
    if (s != SDVK_OK || !b || strncmp(b->name, "cpu", 3) != 0) {
        fprintf(stderr, "FAIL: --backend auto did not fall back to the CPU (%d: %s)\n", (int)s,
                s ? sdvk_last_error() : b->name);
        sd_backend_destroy(b);
        return 1;
    }
    printf("tested the fallback: auto backend = %s\n", b->name);
    sd_backend_destroy(b);
    return 0;
}

/* Creates the Vulkan backend with validation; NULL when no driver exists
 * (the caller then tests the fallback). *fatal on unexpected failures. */
static sd_backend *make_vk(int precision, int *fatal) {
    sd_backend *b = NULL;
    sd_vulkan_opts o = {.device_index = -1, .precision = precision, .validation = 1};
    const char *idx = getenv("SDVK_VK_DEVICE");
    if (idx)
        o.device_index = atoi(idx);
    sdvk_status s = sd_backend_vulkan_create(&o, &b);
    *fatal = 0;
    if (s == SDVK_ERR_UNSUPPORTED && strstr(sdvk_last_error(), "VK_LAYER_KHRONOS_validation")) {
        /* still test the backend, just without the layer's checks */
        printf("WARNING: %s; running without validation\n", sdvk_last_error());
        o.validation = 0;
        s = sd_backend_vulkan_create(&o, &b);
    }
    if (s == SDVK_ERR_UNSUPPORTED) {
        printf("no usable Vulkan device (%s)\n", sdvk_last_error());
        return NULL;
    }
    if (s != SDVK_OK) {
        fprintf(stderr, "FAIL: vulkan create: %s\n", sdvk_last_error());
        *fatal = 1;
        return NULL;
    }
    printf("backend: %s\n", b->name);
    return b;
}

static int check_validation(void) {
    int n = sd_vk_validation_errors();
    if (n) {
        fprintf(stderr, "FAIL: %d Vulkan validation error(s)\n", n);
        return 1;
    }
    printf("validation layer: 0 errors\n");
    return 0;
}

static int test_conformance(int precision) {
    int fatal;
    sd_backend *vk = make_vk(precision, &fatal);
    if (!vk)
        return fatal ? 1 : test_fallback();
    sd_backend *ref = NULL;
    if (sd_backend_cpu_create(1, "ref", &ref) != SDVK_OK) {
        fprintf(stderr, "FAIL: cpu ref backend: %s\n", sdvk_last_error());
        sd_backend_destroy(vk);
        return 1;
    }
    /* f16 storage: inputs, weights and every intermediate rounded to 11
     * bits, so relative errors of ~1e-3 are expected (DESIGN: fp16 <~ 1e-2). */
    double tol_scale = precision == 2 ? 1000.0 : 1.0;
    int n_fail = 0;
    sdvk_status s = sd_conformance_run(vk, ref, tol_scale, stdout, &n_fail);
    printf("conformance: %d of %d cases failed\n", n_fail, sd_conformance_case_count());
    int rc = (s != SDVK_OK || n_fail) ? 1 : 0;
    sd_backend_destroy(ref);
    sd_backend_destroy(vk);
    return rc | check_validation();
}

/* ---- small private harness for graphs beyond the shared cases ---------- */

static uint64_t g_rng = 0x1234567u;
static float frand(void) {
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (float)((g_rng * 0x2545F4914F6CDD1Dull) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}
static float *rand_buf(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) p[i] = frand() * scale;
    return p;
}

typedef struct inputs {
    int id[8];
    float *data[8];
    int n;
} inputs;

static int add_input(sd_graph *g, inputs *in, int nd, const int64_t *ne, float scale,
                     const char *name) {
    int id = sd_graph_input(g, SD_F32, nd, ne, name);
    in->id[in->n] = id;
    in->data[in->n++] = rand_buf((size_t)sd_tensor_nelem(&g->t[id]), scale);
    return id;
}

static int run_graph(sd_backend *b, sd_graph *g, inputs *in, int out, int first, int n,
                     float *res) {
    sd_bgraph *bg;
    if (b->v->prepare(b, g, NULL, &bg) != SDVK_OK)
        return 1;
    sdvk_status s = SDVK_OK;
    for (int i = 0; i < in->n && s == SDVK_OK; i++)
        s = b->v->write(b, bg, in->id[i], in->data[i], (size_t)sd_tensor_nelem(&g->t[in->id[i]]) * 4);
    if (s == SDVK_OK)
        s = b->v->run(b, bg, first, n, NULL, NULL);
    if (s == SDVK_OK)
        s = b->v->read(b, bg, out, res, (size_t)sd_tensor_nelem(&g->t[out]) * 4);
    b->v->release(b, bg);
    return s != SDVK_OK;
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
        if (!isfinite(a[i]))
            return INFINITY;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Runs g on both backends and compares output `out`. */
static int compare(sd_backend *vk, sd_backend *ref, sd_graph *g, inputs *in, int out,
                   const char *what, double tol) {
    if (sd_graph_output(g, out) < 0 || sd_graph_plan(g) != SDVK_OK) {
        fprintf(stderr, "FAIL %s: build: %s\n", what, sdvk_last_error());
        return 1;
    }
    size_t n = (size_t)sd_tensor_nelem(&g->t[out]);
    float *a = malloc(n * 4), *b = malloc(n * 4);
    int rc = 1;
    if (run_graph(ref, g, in, out, 0, 1, b)) {
        fprintf(stderr, "FAIL %s: reference: %s\n", what, sdvk_last_error());
    } else if (run_graph(vk, g, in, out, 0, 1, a)) {
        fprintf(stderr, "FAIL %s: vulkan: %s\n", what, sdvk_last_error());
    } else {
        double e = rel_l2(a, b, n);
        rc = !(e <= tol);
        printf("%-52s rel_err %.3e tol %.1e %s\n", what, e, tol, rc ? "FAIL" : "PASS");
    }
    free(a), free(b);
    for (int i = 0; i < in->n; i++) free(in->data[i]);
    in->n = 0;
    return rc;
}

/* Weight from random data, kept alive in a static pool (graphs keep the pointer). */
static void *g_owned[64];
static int g_nowned;
static int rand_weight(sd_graph *g, int nd, const int64_t *ne, float scale, sd_dtype dt) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= ne[d];
    float *f = rand_buf((size_t)n, scale);
    void *data = f;
    if (dt == SD_F16) {
        uint16_t *h = malloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++) h[i] = sd_f32_to_f16(f[i]);
        free(f);
        data = h;
    }
    g_owned[g_nowned++] = data;
    return sd_graph_weight(g, dt, nd, ne, data, "w");
}

/* The SD UNet's real channel counts at small spatial sizes. */
static int test_sd_shapes(int precision) {
    int fatal;
    sd_backend *vk = make_vk(precision, &fatal);
    if (!vk)
        return fatal ? 1 : test_fallback();
    sd_backend *ref = NULL;
    if (sd_backend_cpu_create(0, "ref", &ref) != SDVK_OK) {
        sd_backend_destroy(vk);
        return 1;
    }
    double tol = precision == 2 ? 1e-2 : 2e-5;
    int fails = 0;
    inputs in = {0};
    { /* 3x3 conv 320 -> 320 with bias and residual, checkpoint f16 */
        sd_graph *g = sd_graph_new();
        int64_t xs[4] = {2, 12, 10, 320}, ws[4] = {320, 320, 3, 3}, bs[1] = {320};
        int x = add_input(g, &in, 4, xs, 1.0f, "x");
        int r = add_input(g, &in, 4, xs, 1.0f, "res");
        int o = sd_conv2d(g, x, rand_weight(g, 4, ws, 0.02f, SD_F16), rand_weight(g, 1, bs, 0.1f, SD_F32),
                          r, 1, 1, 1, 1, 1);
        fails += compare(vk, ref, g, &in, o, "conv3x3 [2,12,10,320]->320 +bias+res", tol);
        sd_graph_free(g);
    }
    { /* stride-2 downsample conv 640 -> 640 */
        sd_graph *g = sd_graph_new();
        int64_t xs[4] = {1, 9, 8, 640}, ws[4] = {640, 640, 3, 3};
        int x = add_input(g, &in, 4, xs, 1.0f, "x");
        int o = sd_conv2d(g, x, rand_weight(g, 4, ws, 0.02f, SD_F32), -1, -1, 2, 1, 1, 1, 1);
        fails += compare(vk, ref, g, &in, o, "conv3x3 s2 [1,9,8,640]->640", tol);
        sd_graph_free(g);
    }
    { /* group norm 32 groups + SiLU, 1280 channels */
        sd_graph *g = sd_graph_new();
        int64_t xs[4] = {2, 6, 5, 1280}, cs[1] = {1280};
        int x = add_input(g, &in, 4, xs, 2.0f, "x");
        int o = sd_group_norm(g, x, rand_weight(g, 1, cs, 1.0f, SD_F32), rand_weight(g, 1, cs, 1.0f, SD_F32),
                              32, 1e-5f, 1);
        fails += compare(vk, ref, g, &in, o, "group_norm G32 silu [2,6,5,1280]", tol);
        sd_graph_free(g);
    }
    { /* VAE-size group norm: 131072 elements per group, split over workgroups */
        sd_graph *g = sd_graph_new();
        int64_t xs[4] = {1, 128, 128, 256}, cs[1] = {256};
        int x = add_input(g, &in, 4, xs, 2.0f, "x");
        int b1 = add_input(g, &in, 4, xs, 0.5f, "shift"); /* non-zero group means */
        int o = sd_group_norm(g, sd_add(g, x, b1), rand_weight(g, 1, cs, 1.0f, SD_F32),
                              rand_weight(g, 1, cs, 1.0f, SD_F32), 32, 1e-6f, 1);
        fails += compare(vk, ref, g, &in, o, "group_norm G32 silu [1,128,128,256] (split)", tol);
        sd_graph_free(g);
    }
    { /* self attention, 8 heads of 40 (320 ch), 1 head block of 160 (1280 ch) */
        int64_t dims[2] = {320, 1280};
        for (int k = 0; k < 2; k++) {
            sd_graph *g = sd_graph_new();
            int64_t qs[3] = {2, 100, dims[k]}, ks[3] = {2, 77, dims[k]};
            int q = add_input(g, &in, 3, qs, 1.0f, "q");
            int kk = add_input(g, &in, 3, ks, 1.0f, "k");
            int v = add_input(g, &in, 3, ks, 1.0f, "v");
            int o = sd_attention(g, q, kk, v, 8, 0, 1.0f / sqrtf((float)dims[k] / 8));
            char what[80];
            snprintf(what, sizeof what, "cross attention q[2,100,%lld] k[2,77] 8 heads",
                     (long long)dims[k]);
            fails += compare(vk, ref, g, &in, o, what, tol);
            sd_graph_free(g);
        }
    }
    { /* VAE mid-block attention: one head of 512, 24x24 latent tokens */
        sd_graph *g = sd_graph_new();
        int64_t qs[3] = {1, 576, 512};
        int q = add_input(g, &in, 3, qs, 1.0f, "q");
        int kk = add_input(g, &in, 3, qs, 1.0f, "k");
        int v = add_input(g, &in, 3, qs, 1.0f, "v");
        int o = sd_attention(g, q, kk, v, 1, 0, 1.0f / sqrtf(512.0f));
        fails += compare(vk, ref, g, &in, o, "self attention [1,576,512] 1 head (VAE)", tol);
        sd_graph_free(g);
    }
    { /* UNet level-2 self attention: 8 heads of 80, causal off, odd length */
        sd_graph *g = sd_graph_new();
        int64_t qs[3] = {2, 150, 640};
        int q = add_input(g, &in, 3, qs, 1.0f, "q");
        int kk = add_input(g, &in, 3, qs, 1.0f, "k");
        int v = add_input(g, &in, 3, qs, 1.0f, "v");
        int o = sd_attention(g, q, kk, v, 8, 0, 1.0f / sqrtf(80.0f));
        fails += compare(vk, ref, g, &in, o, "self attention [2,150,640] 8 heads", tol);
        sd_graph_free(g);
    }
    { /* feed-forward: linear 320 -> 2560, GEGLU, linear 1280 -> 320 + residual */
        sd_graph *g = sd_graph_new();
        int64_t xs[3] = {2, 64, 320}, w1[2] = {2560, 320}, b1[1] = {2560}, w2[2] = {320, 1280};
        int x = add_input(g, &in, 3, xs, 1.0f, "x");
        int h = sd_matmul(g, x, rand_weight(g, 2, w1, 0.05f, SD_F16), rand_weight(g, 1, b1, 0.1f, SD_F16), -1);
        h = sd_geglu(g, h);
        int o = sd_matmul(g, h, rand_weight(g, 2, w2, 0.03f, SD_F16), -1, x);
        fails += compare(vk, ref, g, &in, o, "ff 320->2560 geglu ->320 +res", tol);
        sd_graph_free(g);
    }
    for (int i = 0; i < g_nowned; i++) free(g_owned[i]);
    g_nowned = 0;
    sd_backend_destroy(ref);
    sd_backend_destroy(vk);
    return fails | check_validation();
}

/* An embedding table larger than one binding range (the CLIP token table
 * in f32 on lavapipe): the limit is lowered so a small table must split. */
static int test_big_table(int precision) {
    setenv("SDVK_VK_MAX_STORAGE_RANGE", "65536", 1);
    int fatal;
    sd_backend *vk = make_vk(precision, &fatal);
    unsetenv("SDVK_VK_MAX_STORAGE_RANGE");
    if (!vk)
        return fatal ? 1 : test_fallback();
    sd_backend *ref = NULL;
    if (sd_backend_cpu_create(1, "ref", &ref) != SDVK_OK) {
        sd_backend_destroy(vk);
        return 1;
    }
    sd_graph *g = sd_graph_new();
    int64_t is[2] = {2, 77}, ts[2] = {1001, 24}; /* 96 KiB f32 / 48 KiB f16 table */
    int ids = sd_graph_input(g, SD_I32, 2, is, "ids");
    int32_t idv[154];
    for (int i = 0; i < 154; i++) idv[i] = (i * 613 + 7) % 1001;
    idv[0] = 0, idv[1] = 1000;
    int o = sd_embedding(g, ids, rand_weight(g, 2, ts, 1.0f, SD_F32));
    int fails = 1;
    if (sd_graph_output(g, o) >= 0 && sd_graph_plan(g) == SDVK_OK) {
        float a[154 * 24], b[154 * 24];
        inputs in = {.id = {ids}, .data = {(float *)idv}, .n = 1};
        if (!run_graph(ref, g, &in, o, 0, 1, b) && !run_graph(vk, g, &in, o, 0, 1, a)) {
            double e = rel_l2(a, b, 154 * 24), tol = precision == 2 ? 1e-3 : 0;
            fails = !(e <= tol);
            printf("embedding table[1001,24] over a 64 KiB binding limit: rel_err %.3e tol %.0e %s\n",
                   e, tol, fails ? "FAIL" : "PASS");
        } else {
            fprintf(stderr, "FAIL big table: %s\n", sdvk_last_error());
        }
    }
    sd_graph_free(g);
    for (int i = 0; i < g_nowned; i++) free(g_owned[i]);
    g_nowned = 0;
    sd_backend_destroy(ref);
    sd_backend_destroy(vk);
    return fails | check_validation();
}

/* One recorded graph, replayed n steps in one run: the step index comes
 * from the device counter (STEP_SELECT), state carries over by COPY. */
typedef struct cb_state {
    int calls, last, cancel_at;
} cb_state;
static int on_step(void *user, int step) {
    cb_state *c = user;
    if (step != c->last + 1)
        c->last = -1000; /* out of order */
    else
        c->last = step;
    c->calls++;
    return c->cancel_at > 0 && step == c->cancel_at;
}

static int test_replay(int precision) {
    int fatal;
    sd_backend *vk = make_vk(precision, &fatal);
    if (!vk)
        return fatal ? 1 : test_fallback();
    const int S = 6, N = 37;
    sd_graph *g = sd_graph_new();
    int64_t xs[2] = {1, N}, ts[2] = {S, 3}, ns[2] = {S, N};
    int x = sd_graph_input(g, SD_F32, 2, xs, "x");
    int coef_t = sd_graph_input(g, SD_F32, 2, ts, "coef_table");
    int noise_t = sd_graph_input(g, SD_F32, 2, ns, "noise_table");
    int coef = sd_step_select(g, coef_t);
    int64_t ns1[2] = {1, N};
    int noise = sd_graph_reshape(g, sd_step_select(g, noise_t), 2, ns1);
    int eps = sd_silu(g, x);
    int xn = sd_sampler_step(g, x, 1, eps, noise, coef, 0);
    sd_copy_into(g, xn, x);
    int rc = 1;
    if (g->status || sd_graph_plan(g) != SDVK_OK) {
        fprintf(stderr, "FAIL replay: build: %s\n", sdvk_last_error());
        goto done;
    }
    float x0[37], ct[18], nt[6 * 37], host[37], dev[37];
    for (int i = 0; i < N; i++) x0[i] = host[i] = frand();
    for (int i = 0; i < S * 3; i++) ct[i] = 0.5f + 0.1f * frand();
    for (int i = 0; i < S * N; i++) nt[i] = frand();
    /* host model of steps 1..5 (first = 1, n = 5) */
    for (int s = 1; s < S; s++)
        for (int i = 0; i < N; i++) {
            float e = host[i] / (1.0f + expf(-host[i]));
            host[i] = ct[s * 3] * e + ct[s * 3 + 1] * nt[s * N + i] + ct[s * 3 + 2] * host[i];
        }
    sd_bgraph *bg;
    if (vk->v->prepare(vk, g, NULL, &bg) != SDVK_OK) {
        fprintf(stderr, "FAIL replay: prepare: %s\n", sdvk_last_error());
        goto done;
    }
    cb_state cs = {0, 0, 0}, cc = {0, 0, 3};
    sdvk_status s = vk->v->write(vk, bg, x, x0, sizeof x0);
    if (!s)
        s = vk->v->write(vk, bg, coef_t, ct, sizeof ct);
    if (!s)
        s = vk->v->write(vk, bg, noise_t, nt, sizeof nt);
    if (!s)
        s = vk->v->run(vk, bg, 1, S - 1, on_step, &cs);
    if (!s)
        s = vk->v->read(vk, bg, x, dev, sizeof dev);
    /* a run past the step table must be refused, not read out of bounds */
    sdvk_status bad = s ? SDVK_OK : vk->v->run(vk, bg, 3, S, NULL, NULL);
    /* a callback asking to stop at step 3: no callback after it, CANCELLED */
    sdvk_status cancelled = s ? SDVK_OK : vk->v->run(vk, bg, 1, S - 1, on_step, &cc);
    /* the cancel emptied the queued steps' dispatches; the next run must
     * restore them and compute the same result again */
    float again[37];
    double e2 = 1;
    if (!s && !(s = vk->v->write(vk, bg, x, x0, sizeof x0)) &&
        !(s = vk->v->run(vk, bg, 1, S - 1, NULL, NULL)) &&
        !(s = vk->v->read(vk, bg, x, again, sizeof again)))
        e2 = rel_l2(again, host, N);
    vk->v->release(vk, bg);
    if (s) {
        fprintf(stderr, "FAIL replay: %s\n", sdvk_last_error());
        goto done;
    }
    /* Only element-wise ops touch this state, so f16 mode keeps it fp32
     * ("wide" tensors): the same tolerance applies in both precisions. */
    double e = rel_l2(dev, host, N), tol = 1e-5;
    printf("replay: 5 steps in one run, rel_err %.3e (tol %.0e), callbacks %d, last step %d, "
           "out-of-range run -> %s, cancel at step 3 -> %s after %d callbacks, run after the "
           "cancel rel_err %.3e\n",
           e, tol, cs.calls, cs.last, sdvk_status_str(bad), sdvk_status_str(cancelled), cc.calls, e2);
    rc = !(e <= tol) || !(e2 <= tol) || cs.calls != S - 1 || cs.last != S - 1 || bad != SDVK_ERR_INVALID_ARG ||
         cancelled != SDVK_ERR_CANCELLED || cc.calls != 3 || cc.last != 3;
done:
    sd_graph_free(g);
    sd_backend_destroy(vk);
    return rc | check_validation();
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "conformance";
    int precision = argc > 2 && !strcmp(argv[2], "f16") ? 2 : 1;
    int rc;
    if (!strcmp(mode, "fallback"))
        rc = test_fallback();
    else if (!strcmp(mode, "conformance"))
        rc = test_conformance(precision);
    else if (!strcmp(mode, "sd"))
        rc = test_sd_shapes(precision);
    else if (!strcmp(mode, "bigtable"))
        rc = test_big_table(precision);
    else if (!strcmp(mode, "replay"))
        rc = test_replay(precision);
    else {
        fprintf(stderr, "usage: test_vulkan fallback|conformance|sd|bigtable|replay [f32|f16]\n");
        return 2;
    }
    printf("%s\n", rc ? "FAILED" : "OK");
    return rc;
}
