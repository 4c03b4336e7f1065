/* Time to first and to second image with one long-lived context, and where
 * the time goes (sdvk_stats): the second picture must pay no weight
 * conversion.
 *   bench_engine MODEL [--vocab V] [--size 512] [--steps 1] [--backend cpu|vulkan]
 *                [--threads N] [--images N]
 * Pictures 2..N change the seed, the CFG scale and the sampler (the kind of
 * changes a server sees between requests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sdvk.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_engine MODEL [--vocab V] [--size 512] [--steps 1] "
                        "[--backend cpu|vulkan] [--threads N] [--images N]\n");
        return 2;
    }
    sdvk_options opt;
    sdvk_options_default(&opt);
    sdvk_options_from_env(&opt);
    opt.backend = SDVK_BACKEND_CPU;
    int size = 512, steps = 1, images = 2;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--vocab"))
            opt.vocab_path = argv[i + 1];
        else if (!strcmp(argv[i], "--size"))
            size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            opt.n_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--images"))
            images = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--backend"))
            opt.backend = !strcmp(argv[i + 1], "vulkan") ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    double t0 = now();
    sdvk_ctx *ctx;
    if (sdvk_create(argv[1], &opt, &ctx) != SDVK_OK) {
        fprintf(stderr, "%s\n", sdvk_last_error());
        return 1;
    }
    double t_open = now() - t0;
    printf("model %s, backend %s, %dx%d, %d step(s); open %.2f s\n", argv[1], sdvk_backend_name(ctx),
           size, size, steps, t_open);
    printf("%-8s %9s %10s %10s %10s %9s %11s\n", "picture", "total s", "prepare s", "sample s",
           "other s", "weights", "weight MiB");
    sdvk_stats prev;
    sdvk_stats_get(ctx, &prev);
    const sdvk_sampler samplers[2] = {SDVK_SAMPLER_DPMPP_2M, SDVK_SAMPLER_EULER_A};
    for (int k = 0; k < images; k++) {
        sdvk_gen_params p;
        sdvk_gen_params_default(&p);
        p.prompt = "a photograph of an astronaut riding a horse";
        p.width = p.height = size;
        p.steps = steps;
        p.seed = 42 + (uint64_t)k;
        p.cfg_scale = k ? 5.0f : 7.5f;
        p.sampler = samplers[k % 2];
        sdvk_image img;
        double t1 = now();
        if (sdvk_txt2img(ctx, &p, &img) != SDVK_OK) {
            fprintf(stderr, "picture %d: %s\n", k + 1, sdvk_last_error());
            sdvk_destroy(ctx);
            return 1;
        }
        double t = now() - t1;
        sdvk_image_free(&img);
        sdvk_stats st;
        sdvk_stats_get(ctx, &st);
        double prep = st.seconds_preparing - prev.seconds_preparing;
        double samp = st.seconds_sampling - prev.seconds_sampling;
        printf("%-8d %9.2f %10.2f %10.2f %10.2f %9ld %11.1f\n", k + 1, t + (k ? 0 : t_open), prep,
               samp, t + (k ? 0 : t_open) - prep - samp, st.weights_prepared - prev.weights_prepared,
               st.weight_bytes / 1048576.0);
        prev = st;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("(picture 1 includes opening the model; \"weights\" = weights converted during the "
           "picture; peak RSS %.2f GB)\n",
           ru.ru_maxrss / 1048576.0);
    sdvk_destroy(ctx);
    return 0;
}
