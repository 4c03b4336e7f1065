/* Vulkan op benchmark: the SD UNet's heavy ops (the FF projection with its
 * GEGLU, the other linears, 3x3 convs of every level, conv_in, attention,
 * group and layer norm) as one-node graphs, each replayed R times in one
 * run() (so the figure is device time plus one submit), against the CPU
 * backend on the same graph.
 *   bench_vulkan [--sd] [--reps R] [--precision f32|f16] [--device N]
 *                [--ops a,b] [--no-cpu] [--peak TFLOPS] [--verbose]
 * Default shapes are small (lavapipe is slow): the SD shapes at a 16x16
 * latent; --sd uses a 64x64 latent (512x512 images) at batch 2 (cond +
 * uncond). --ops keeps the rows whose name contains one of the words
 * (e.g. --ops ff,conv3x3). --peak prints each row's share of a device peak.
 * SDVK_VK_KERNELS=simt64|simt128|coopmat forces the matmul kernel family;
 * SDVK_VK_PROFILE=1 with --verbose gives per-node GPU timestamps. */
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

enum { OP_LINEAR, OP_FF_GEGLU, OP_CONV, OP_ATTN, OP_GN, OP_LN };
typedef struct {
    const char *name;
    int kind;
    int level; /* UNet level: latent side / 2^level */
    int64_t a, b, c; /* linear: K N; conv: Ci Co k; attention: C heads Lk (0: self) */
} bench_op;

static const bench_op k_ops[] = {
    {"ff proj 320->2x1280 + geglu", OP_FF_GEGLU, 0, 320, 1280, 0},
    {"ff out 1280->320", OP_LINEAR, 0, 1280, 320, 0},
    {"attn proj 320->320", OP_LINEAR, 0, 320, 320, 0},
    {"conv3x3 320->320", OP_CONV, 0, 320, 320, 3},
    {"conv3x3 640->640", OP_CONV, 1, 640, 640, 3},
    {"conv3x3 1280->1280", OP_CONV, 2, 1280, 1280, 3},
    {"conv3x3 in 4->320", OP_CONV, 0, 4, 320, 3},
    {"conv1x1 640->320", OP_CONV, 0, 640, 320, 1},
    {"self attention 8x40", OP_ATTN, 0, 320, 8, 0},
    {"cross attention 8x40, 77 keys", OP_ATTN, 0, 320, 8, 77},
    {"group_norm+silu 320", OP_GN, 0, 320, 32, 0},
    {"layer_norm 320", OP_LN, 0, 320, 0, 0},
};
#define N_OPS ((int)(sizeof k_ops / sizeof k_ops[0]))

static int wanted(const char *ops, const char *name) {
    if (!ops || !*ops)
        return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ops);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
        if (strstr(name, t))
            return 1;
    return 0;
}

/* Builds op o at latent side hw0 and batch B; returns its FLOP (norms:
 * 8 per element, a nominal figure). */
static double build(sd_graph *g, const bench_op *o, int64_t B, int64_t hw0, const uint16_t *w, char *what,
                    size_t nwhat) {
    int64_t hw = hw0 >> o->level, L = hw * hw;
    double flop = 0;
    switch (o->kind) {
    case OP_LINEAR:
    case OP_FF_GEGLU: {
        int64_t N = o->kind == OP_FF_GEGLU ? 2 * o->b : o->b;
        int64_t xs[3] = {B, L, o->a}, ws[2] = {N, o->a}, bs[1] = {N};
        int y = sd_matmul(g, sd_graph_input(g, SD_F32, 3, xs, "x"), sd_graph_weight(g, SD_F16, 2, ws, w, "w"),
                          sd_graph_weight(g, SD_F16, 1, bs, w, "b"), -1);
        if (o->kind == OP_FF_GEGLU)
            y = sd_geglu(g, y);
        sd_graph_output(g, y);
        flop = 2.0 * (double)(B * L) * (double)o->a * (double)N;
        snprintf(what, nwhat, "%s [%lld,%lld]", o->name, (long long)(B * L), (long long)o->a);
        break;
    }
    case OP_CONV: {
        int64_t xs[4] = {B, hw, hw, o->a}, ws[4] = {o->b, o->a, o->c, o->c}, bs[1] = {o->b};
        int p = (int)(o->c / 2);
        sd_graph_output(g, sd_conv2d(g, sd_graph_input(g, SD_F32, 4, xs, "x"),
                                     sd_graph_weight(g, SD_F16, 4, ws, w, "w"),
                                     sd_graph_weight(g, SD_F16, 1, bs, w, "b"), -1, 1, p, p, p, p));
        flop = 2.0 * (double)(B * L) * (double)o->a * (double)o->b * (double)(o->c * o->c);
        snprintf(what, nwhat, "%s %lldx%lld", o->name, (long long)hw, (long long)hw);
        break;
    }
    case OP_ATTN: {
        int64_t Lk = o->c ? o->c : L;
        int64_t qs[3] = {B, L, o->a}, ks[3] = {B, Lk, o->a};
        int q = sd_graph_input(g, SD_F32, 3, qs, "q"), k = sd_graph_input(g, SD_F32, 3, ks, "k"),
            v = sd_graph_input(g, SD_F32, 3, ks, "v");
        sd_graph_output(g, sd_attention(g, q, k, v, (int)o->b, 0, 1.0f / sqrtf((float)(o->a / o->b))));
        flop = 4.0 * (double)B * (double)L * (double)Lk * (double)o->a;
        snprintf(what, nwhat, "%s L=%lld", o->name, (long long)L);
        break;
    }
    case OP_GN:
    case OP_LN: {
        int64_t xs[4] = {B, hw, hw, o->a}, ls[3] = {B, L, o->a}, cs[1] = {o->a};
        int g1 = sd_graph_weight(g, SD_F16, 1, cs, w, "g"), b1 = sd_graph_weight(g, SD_F16, 1, cs, w, "b");
        if (o->kind == OP_GN)
            sd_graph_output(g, sd_group_norm(g, sd_graph_input(g, SD_F32, 4, xs, "x"), g1, b1, (int)o->b,
                                             1e-5f, 1));
        else
            sd_graph_output(g, sd_layer_norm(g, sd_graph_input(g, SD_F32, 3, ls, "x"), g1, b1, 1e-5f));
        flop = 8.0 * (double)(B * L) * (double)o->a;
        snprintf(what, nwhat, "%s %lldx%lld", o->name, (long long)hw, (long long)hw);
        break;
    }
    }
    return flop;
}

int main(int argc, char **argv) {
    int sd = 0, reps = 5, no_cpu = 0;
    double peak = 0;
    const char *ops = NULL;
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
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            ops = argv[++i];
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc)
            peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-cpu"))
            no_cpu = 1;
        else if (!strcmp(argv[i], "--verbose"))
            o.verbose = 1;
        else {
            fprintf(stderr, "usage: bench_vulkan [--sd] [--reps R] [--precision f32|f16] [--device N] "
                            "[--ops a,b] [--no-cpu] [--peak TFLOPS] [--verbose]\n");
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
    if (!no_cpu && sd_backend_cpu_create(0, NULL, &cpu) != SDVK_OK)
        cpu = NULL;
    int64_t B = 2, HW = sd ? 64 : 16;
    const char *force = getenv("SDVK_VK_KERNELS");
    printf("bench_vulkan: %s vs %s, %s shapes, %d replays, kernels %s\n", vk->name, cpu ? cpu->name : "-",
           sd ? "SD 512x512 (64x64 latent, batch 2)" : "small (16x16 latent, batch 2)", reps,
           force && *force ? force : "auto");
    printf("%-52s %11s %9s %11s %9s%s\n", "op", "vulkan ms", "GFLOP/s", "cpu ms", "GFLOP/s",
           peak > 0 ? "  of peak" : "");
    /* fp16 weights (as SD checkpoints ship), small values */
    size_t nw = (size_t)1280 * 1280 * 9 + 4096;
    float *wf = rnd(nw);
    uint16_t *w = malloc(nw * sizeof *w);
    for (size_t i = 0; w && wf && i < nw; i++) w[i] = sd_f32_to_f16(0.05f * wf[i]);
    free(wf);
    if (!w)
        return 1;
    for (int k = 0; k < N_OPS; k++) {
        if (!wanted(ops, k_ops[k].name))
            continue;
        sd_graph *g = sd_graph_new();
        char what[96];
        double flop = build(g, &k_ops[k], B, HW, w, what, sizeof what);
        if (g->status || sd_graph_plan(g) != SDVK_OK) {
            fprintf(stderr, "%s: %s\n", what, sdvk_last_error());
            sd_graph_free(g);
            continue;
        }
        double tv = time_graph(vk, g, reps), tc = cpu ? time_graph(cpu, g, reps) : -1;
        printf("%-52s %11.3f %9.1f %11.3f %9.1f", what, tv * 1e3, tv > 0 ? flop / tv / 1e9 : 0, tc * 1e3,
               tc > 0 ? flop / tc / 1e9 : 0);
        if (peak > 0 && tv > 0)
            printf("  %6.1f%%", 100.0 * flop / tv / (peak * 1e12));
        printf("\n");
        fflush(stdout);
        sd_graph_free(g);
    }
    free(w);
    sd_backend_destroy(cpu);
    sd_backend_destroy(vk);
    return 0;
}
