/* Vulkan op benchmark: SD-shaped GEMM, conv, attention and group norm run
 * as one-node graphs, each replayed R times in one run() (so the figure is
 * device time plus one submit), against the CPU backend on the same graph.
 *   bench_vulkan [--sd] [--reps R] [--precision f32|f16] [--device N]
 * Default shapes are small (lavapipe is slow); --sd uses the UNet's 64x64
 * level at batch 2 (cond + uncond). Set SDVK_VK_PROFILE=1 and --verbose
 * for per-node GPU timestamps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *rnd(size_t n) {
    float *p = malloc(n * sizeof *p);
    uint32_t s = 12345;
    for (size_t i = 0; p && i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

/* Seconds per replay of g on b (inputs random), or -1 on failure. */
static double time_graph(sd_backend *b, sd_graph *g, int reps) {
    sd_bgraph *bg;
    if (b->v->prepare(b, g, NULL, &bg) != SDVK_OK) {
        fprintf(stderr, "%s: %s\n", b->name, sdvk_last_error());
        return -1;
    }
    for (int i = 0; i < g->nt; i++)
        if (g->t[i].kind == SD_T_INPUT && g->t[i].base < 0) {
            size_t n = (size_t)sd_tensor_nelem(&g->t[i]);
            float *d = rnd(n);
            b->v->write(b, bg, i, d, n * 4);
            free(d);
        }
    b->v->run(b, bg, 0, 1, NULL, NULL); /* warm-up */
    double t0 = now();
    sdvk_status s = b->v->run(b, bg, 0, reps, NULL, NULL);
    double t = (now() - t0) / reps;
    b->v->release(b, bg);
    return s == SDVK_OK ? t : -1;
}

int main(int argc, char **argv) {
    int sd = 0, reps = 5;
    sd_vulkan_opts o = {.device_index = -1, .precision = 0, .validation = 0, .verbose = 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sd"))
            sd = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc)
            o.precision = !strcmp(argv[++i], "f16") ? 2 : 1;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            o.device_index = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--verbose"))
            o.verbose = 1;
        else {
            fprintf(stderr, "usage: bench_vulkan [--sd] [--reps R] [--precision f32|f16] [--device N] [--verbose]\n");
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;
    sd_backend *vk = NULL, *cpu = NULL;
    if (sd_backend_vulkan_create(&o, &vk) != SDVK_OK) {
        printf("bench_vulkan: no Vulkan device (%s); nothing to measure\n", sdvk_last_error());
        return 0;
    }
    if (sd_backend_cpu_create(0, NULL, &cpu) != SDVK_OK)
        cpu = NULL;
    int64_t B = 2, HW = sd ? 64 : 16, C = 320, L = HW * HW;
    printf("bench_vulkan: %s vs %s, %s shapes, %d replays\n", vk->name, cpu ? cpu->name : "-",
           sd ? "SD 512x512 (64x64 latent, batch 2)" : "small", reps);
    printf("%-44s %12s %10s %12s %10s\n", "op", "vulkan ms", "GFLOP/s", "cpu ms", "GFLOP/s");
    float *w = rnd((size_t)C * C * 9 * 4 + 4096);
    for (int k = 0; k < 4; k++) {
        sd_graph *g = sd_graph_new();
        char what[64];
        double flop = 0;
        if (k == 0) { /* FF projection: [B*L, 320] x [1280, 320]^T */
            int64_t xs[2] = {B * L, C}, ws[2] = {4 * C, C};
            sd_graph_output(g, sd_matmul(g, sd_graph_input(g, SD_F32, 2, xs, "x"),
                                         sd_graph_weight(g, SD_F32, 2, ws, w, "w"), -1, -1));
            flop = 2.0 * (double)(B * L) * C * 4 * C;
            snprintf(what, sizeof what, "matmul [%lld,%lld]x[%lld,%lld]", (long long)(B * L),
                     (long long)C, (long long)(4 * C), (long long)C);
        } else if (k == 1) {
            int64_t xs[4] = {B, HW, HW, C}, ws[4] = {C, C, 3, 3};
            sd_graph_output(g, sd_conv2d(g, sd_graph_input(g, SD_F32, 4, xs, "x"),
                                         sd_graph_weight(g, SD_F32, 4, ws, w, "w"), -1, -1, 1, 1, 1,
                                         1, 1));
            flop = 2.0 * (double)(B * L) * C * C * 9;
            snprintf(what, sizeof what, "conv3x3 [%lld,%lld,%lld,%lld]->%lld", (long long)B,
                     (long long)HW, (long long)HW, (long long)C, (long long)C);
        } else if (k == 2) {
            int64_t qs[3] = {B, L, C};
            int q = sd_graph_input(g, SD_F32, 3, qs, "q"), kk = sd_graph_input(g, SD_F32, 3, qs, "k"),
                v = sd_graph_input(g, SD_F32, 3, qs, "v");
            sd_graph_output(g, sd_attention(g, q, kk, v, 8, 0, 1.0f / sqrtf(40.0f)));
            flop = 4.0 * (double)B * L * L * C;
            snprintf(what, sizeof what, "attention [%lld,%lld,%lld] 8 heads", (long long)B,
                     (long long)L, (long long)C);
        } else {
            int64_t xs[4] = {B, HW, HW, C}, cs[1] = {C};
            sd_graph_output(g, sd_group_norm(g, sd_graph_input(g, SD_F32, 4, xs, "x"),
                                             sd_graph_weight(g, SD_F32, 1, cs, w, "g"),
                                             sd_graph_weight(g, SD_F32, 1, cs, w, "b"), 32, 1e-5f, 1));
            flop = 8.0 * (double)(B * L) * C;
            snprintf(what, sizeof what, "group_norm+silu [%lld,%lld,%lld,%lld]", (long long)B,
                     (long long)HW, (long long)HW, (long long)C);
        }
        if (sd_graph_plan(g) != SDVK_OK) {
            fprintf(stderr, "%s: %s\n", what, sdvk_last_error());
            sd_graph_free(g);
            continue;
        }
        double tv = time_graph(vk, g, reps), tc = cpu ? time_graph(cpu, g, reps) : -1;
        printf("%-44s %12.3f %10.2f %12.3f %10.2f\n", what, tv * 1e3, tv > 0 ? flop / tv / 1e9 : 0,
               tc * 1e3, tc > 0 ? flop / tc / 1e9 : 0);
        sd_graph_free(g);
    }
    free(w);
    sd_backend_destroy(cpu);
    sd_backend_destroy(vk);
    return 0;
}
