/* Per-stage timing of the engine at a given size: CLIP (batch 2), one
 * UNet eval (batch 2 = one CFG step), VAE decode and encode; prints seconds
 * (first run includes preparing the graph: weight conversion/upload) and
 * peak RSS.
 *   bench_stages MODEL [--size 512] [--backend cpu|vulkan|auto] [--threads N]
 *                      [--stages clip,unet,decode,encode] [--repeat R]     */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ctx.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_rss_gb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1048576.0;
}

static float *randn(size_t n, unsigned seed) {
    float *x = malloc(n * sizeof *x);
    srand(seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
    return x;
}

#define RUN(name, expr)                                                                      \
    do {                                                                                     \
        for (int r_ = 0; r_ < repeat + 1; r_++) {                                            \
            double t0_ = now();                                                              \
            sdvk_status s_ = (expr);                                                         \
            double dt_ = now() - t0_;                                                        \
            if (s_) {                                                                        \
                fprintf(stderr, "%s: %s\n", name, sdvk_last_error());                        \
                return 1;                                                                    \
            }                                                                                \
            printf("%-12s %s %8.3f s   peak RSS %.2f GB\n", name, r_ ? "run    " : "1st run", \
                   dt_, peak_rss_gb());                                                     \
            fflush(stdout);                                                                  \
            free(out);                                                                       \
            out = NULL;                                                                      \
        }                                                                                    \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_stages MODEL [--size 512] [--backend cpu|vulkan|auto] "
                        "[--threads N] [--stages clip,unet,decode,encode] [--repeat R]\n");
        return 2;
    }
    int size = 512, repeat = 1;
    const char *stages = "clip,unet,decode";
    sdvk_options opt;
    sdvk_options_default(&opt);
    opt.backend = SDVK_BACKEND_CPU;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) opt.n_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--stages")) stages = argv[i + 1];
        else if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--backend"))
            opt.backend = !strcmp(argv[i + 1], "vulkan") ? SDVK_BACKEND_VULKAN
                          : !strcmp(argv[i + 1], "auto") ? SDVK_BACKEND_AUTO : SDVK_BACKEND_CPU;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    double t0 = now();
    sdvk_ctx *ctx;
    if (sdvk_create(argv[1], &opt, &ctx)) {
        fprintf(stderr, "%s\n", sdvk_last_error());
        return 1;
    }
    printf("model %s, backend %s, %dx%d, load %.2f s\n", argv[1], sdvk_backend_name(ctx), size,
           size, now() - t0);
    const sd_model *m = ctx->model;
    const int64_t h = size / 8, w = size / 8, L = m->clip.n_pos ? m->clip.n_pos : 77;
    float *out = NULL;
    if (strstr(stages, "clip")) {
        int32_t ids[2 * 77];
        for (int i = 0; i < 2 * 77; i++) ids[i] = i % 77 == 0 ? 49406 : i % 77 < 6 ? 320 + i % 77 : 49407;
        RUN("clip b2", sd_run_clip(ctx, ids, 2, 1, NULL, 0, &out));
    }
    if (strstr(stages, "unet")) {
        float *x = randn((size_t)2 * h * w * m->unet.in_ch, 1);
        float *c = randn((size_t)2 * L * m->unet.ctx_dim, 2);
        RUN("unet b2", sd_run_unet(ctx, x, 2, h, w, 500.0f, c, L, &out));
        sd_net_release(ctx, SD_NET_UNET); /* free it before the VAE */
        free(x);
        free(c);
    }
    if (strstr(stages, "decode")) {
        float *z = randn((size_t)h * w * m->vae.z_ch, 3);
        RUN("vae decode", sd_run_vae_decode(ctx, z, 1, h, w, &out));
        free(z);
    }
    if (strstr(stages, "encode")) {
        float *im = randn((size_t)size * size * 3, 4);
        RUN("vae encode", sd_run_vae_encode(ctx, im, 1, size, size, &out));
        free(im);
    }
    sdvk_destroy(ctx);
    printf("peak RSS %.2f GB\n", peak_rss_gb());
    return 0;
}
