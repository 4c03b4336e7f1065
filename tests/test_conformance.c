/* Backend conformance on the CPU:
 *  1. the harness itself: a backend that perturbs every result by 1e-3
 *     (relative) must fail every case, and one that is exact must pass;
 *  2. ref with 2 threads vs ref with 1 thread (the work split must not
 *     change results beyond rounding);
 *  3. cpu "auto" (the SIMD kernels when built; SDVK_CPU_ISA can force one)
 *     vs "ref" at fp32 tolerance (1e-5 relative L2, scale from argv[1]). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/conformance.h"
#include "core/status.h"

/* A wrapper backend whose reads come back scaled by (1 + eps). */
typedef struct {
    sd_backend base;
    sd_backend *inner;
    float eps;
} skewed;

static sdvk_status sk_prepare(sd_backend *b, const sd_graph *g, sd_bweights *w, sd_bgraph **out) {
    sd_backend *in = ((skewed *)b)->inner;
    return in->v->prepare(in, g, w, out);
}
static int sk_supports(sd_backend *b, const sd_graph *g, int k, char *why, size_t n) {
    sd_backend *in = ((skewed *)b)->inner;
    return in->v->supports(in, g, k, why, n);
}
static void sk_release(sd_backend *b, sd_bgraph *bg) {
    sd_backend *in = ((skewed *)b)->inner;
    in->v->release(in, bg);
}
static sdvk_status sk_write(sd_backend *b, sd_bgraph *bg, int t, const void *src, size_t n) {
    sd_backend *in = ((skewed *)b)->inner;
    return in->v->write(in, bg, t, src, n);
}
static sdvk_status sk_read(sd_backend *b, sd_bgraph *bg, int t, void *dst, size_t n) {
    skewed *s = (skewed *)b;
    SD_TRY(s->inner->v->read(s->inner, bg, t, dst, n));
    float *f = dst;
    for (size_t i = 0; i < n / 4; i++) f[i] *= 1.0f + s->eps;
    return SDVK_OK;
}
static sdvk_status sk_run(sd_backend *b, sd_bgraph *bg, int first, int n, sd_step_cb cb, void *u) {
    sd_backend *in = ((skewed *)b)->inner;
    return in->v->run(in, bg, first, n, cb, u);
}
static void sk_destroy(sd_backend *b) { (void)b; }
static const sd_backend_vtbl sk_vtbl = {.supports = sk_supports,
                                        .prepare = sk_prepare,
                                        .release = sk_release,
                                        .write = sk_write,
                                        .read = sk_read,
                                        .run = sk_run,
                                        .destroy = sk_destroy};

static int fails;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            printf(__VA_ARGS__);                          \
            printf("\n");                                 \
            fails++;                                      \
        }                                                 \
    } while (0)

int main(int argc, char **argv) {
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    sd_backend *ref1 = NULL, *ref2 = NULL, *test = NULL;
    if (sd_backend_cpu_create(1, "ref", &ref1) || sd_backend_cpu_create(2, "ref", &ref2)) {
        printf("FAIL: cpu ref backend: %s\n", sdvk_last_error());
        return 1;
    }
    int ncase = sd_conformance_case_count(), nf = -1;
    CHECK(ncase >= 40 || getenv("SDVK_CONFORMANCE_OPS"), "only %d cases", ncase);

    /* 1. the harness catches a wrong backend... */
    /* (a 1e-3 skew fails every case but those with the absolute 1e-2
     * tolerance of 8-bit weights; a 3e-2 skew fails those too) */
    const int nabs = sd_conformance_case_count_abs_tol();
    skewed sk = {{&sk_vtbl, "skewed ref (x 1.001)"}, ref2, 1e-3f};
    sdvk_status s = sd_conformance_run(&sk.base, ref1, 1.0, NULL, &nf);
    CHECK(s == SDVK_ERR_BACKEND && nf == ncase - nabs, "skewed backend: status %d, %d of %d failed",
          s, nf, ncase - nabs);
    sk.eps = 3e-2f;
    s = sd_conformance_run(&sk.base, ref1, 1.0, NULL, &nf);
    CHECK(s == SDVK_ERR_BACKEND && nf == ncase, "3e-2 skew: status %d, %d of %d failed", s, nf,
          ncase);
    /* ...and accepts a tiny perturbation within tolerance */
    sk.eps = 1e-7f;
    s = sd_conformance_run(&sk.base, ref1, 1.0, NULL, &nf);
    CHECK(s == SDVK_OK && nf == 0, "1e-7 skew: status %d, %d failed (%s)", s, nf, sdvk_last_error());

    /* 2. threading does not change the reference */
    s = sd_conformance_run(ref2, ref1, 1.0, stdout, &nf);
    CHECK(s == SDVK_OK && nf == 0, "ref 2 threads vs 1: %d failed", nf);

    /* 3. the selected CPU kernels against the reference */
    if (sd_backend_cpu_create(2, "auto", &test) != SDVK_OK) {
        CHECK(0, "cpu auto backend: %s", sdvk_last_error());
    } else {
        s = sd_conformance_run(test, ref1, scale, stdout, &nf);
        CHECK(s == SDVK_OK && nf == 0, "%s vs ref: %d failed", test->name, nf);
    }
    sd_backend_destroy(test);
    sd_backend_destroy(ref1);
    sd_backend_destroy(ref2);
    printf("%s\n", fails ? "FAILED" : "all passed");
    return fails ? 1 : 0;
}
