/* GEMM / conv / attention throughput of the SIMD CPU kernels against the
 * measured FMA peak of this machine, and against PyTorch (fp32, same
 * shapes, same thread count) when /usr/bin/python3 has torch.
 *
 *   bench_gemm [--isa avx512|avx512bf16|avx2|scalar|neon|auto] [--threads N] [--reps R]
 *              [--no-torch] [--dtype f32|f16|bf16|q8]
 *
 * Shapes are UNet's largest at 512x512 (64x64 latent, CFG batch 2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/simd/simd.h"
#include "core/graph.h"
#include "core/pool.h"
#include "core/q8.h"
#include "core/status.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU seconds of the whole process: on a machine shared with other jobs the
 * wall clock includes time our threads waited for a core; flops per CPU
 * second against the per-core peak is the efficiency that load cannot
 * distort (the pool sleeps instead of spinning, so idle waits cost none). */
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

typedef double (*fma_loop_fn)(int64_t iters);
typedef struct peak_job {
    fma_loop_fn fn;
    int64_t iters;
    double flops[256], cpu[256];
} peak_job;

static void peak_task(void *ctx, int64_t task, int thread) {
    peak_job *j = ctx;
    double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    j->flops[task] = j->fn(j->iters);
    j->cpu[task] = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
    (void)thread;
}

/* Register-only FMA loop on every thread at once: the ceiling a GEMM can
 * reach on this machine with this ISA (clock and SMT effects included). */
static double measure_peak(sd_pool *pool, fma_loop_fn fn, double *per_core) {
    int nt = sd_pool_threads(pool);
    peak_job j = {.fn = fn, .iters = 4000000};
    sd_pool_for(pool, nt, peak_task, &j); /* warm up, clocks settle */
    double best = 0, core = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        sd_pool_for(pool, nt, peak_task, &j);
        double dt = now() - t0, fl = 0;
        for (int i = 0; i < nt; i++) {
            fl += j.flops[i];
            if (j.flops[i] / j.cpu[i] > core)
                core = j.flops[i] / j.cpu[i];
        }
        if (fl / dt > best)
            best = fl / dt;
    }
    *per_core = core / 1e9;
    return best / 1e9;
}

/* One-node graph runner (as the CPU backend would run it). */
typedef struct runner {
    sd_graph *g;
    unsigned char *arena;
    void **data;
    const void **raw;
    void **packed;
    float **f32w;
} runner;

static void runner_init(runner *r, sd_graph *g, const sd_cpu_kernels *k) {
    memset(r, 0, sizeof *r);
    r->g = g;
    if (g->status || sd_graph_plan(g) != SDVK_OK) {
        fprintf(stderr, "bench: graph: %s\n", sdvk_last_error());
        exit(1);
    }
    r->arena = aligned_alloc(256, (g->arena_size + 255) / 256 * 256);
    r->data = calloc((size_t)g->nt, sizeof(void *));
    r->raw = calloc((size_t)g->nt, sizeof(void *));
    r->packed = calloc((size_t)g->nn, sizeof(void *));
    r->f32w = calloc((size_t)g->nt, sizeof(float *));
    for (int t = 0; t < g->nt; t++) {
        sd_tensor *tt = &g->t[t];
        if (tt->kind == SD_T_WEIGHT) {
            r->raw[t] = tt->data;
        } else {
            r->data[t] = r->arena + tt->offset;
            float *p = r->data[t];
            for (int64_t i = 0; i < sd_tensor_nelem(tt); i++) p[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
        }
    }
    for (int i = 0; i < g->nn; i++) {
        sd_node *n = &g->n[i];
        for (int j = 0; j < SD_MAX_IN; j++) {
            int t = n->in[j];
            if (t < 0 || g->t[t].kind != SD_T_WEIGHT || !k->want_f32_weights[n->op] || r->f32w[t])
                continue;
            int64_t ne = sd_tensor_nelem(&g->t[t]);
            r->f32w[t] = malloc((size_t)ne * 4);
            sd_to_f32(r->f32w[t], g->t[t].data, g->t[t].dtype, (size_t)ne);
            r->data[t] = r->f32w[t];
        }
        if (k->prep[n->op])
            r->packed[i] = k->prep[n->op](g, n, r->raw);
    }
}

static double runner_time(runner *r, const sd_cpu_kernels *k, sd_pool *pool, int reps, double *cpu) {
    double best = 1e30;
    *cpu = 1e30;
    for (int rep = 0; rep < reps + 1; rep++) { /* first run warms caches */
        double t0 = now(), c0 = cpu_now();
        for (int i = 0; i < r->g->nn; i++) {
            sd_cpu_ctx c = {.g = r->g, .n = &r->g->n[i], .data = r->data, .raw = r->raw,
                            .packed = r->packed, .pool = pool};
            k->fn[r->g->n[i].op](&c);
        }
        double dt = now() - t0, dc = cpu_now() - c0;
        if (rep > 0 && dt < best)
            best = dt;
        if (rep > 0 && dc < *cpu)
            *cpu = dc;
    }
    return best;
}

static void runner_free(runner *r) {
    for (int i = 0; i < r->g->nn; i++) free(r->packed[i]);
    for (int t = 0; t < r->g->nt; t++) free(r->f32w[t]);
    free(r->f32w), free(r->packed), free(r->raw), free(r->data), free(r->arena);
}

static uint16_t *g_scales; /* of the last q8 weight (freed with it: same block) */

/* q8: int8 values followed by the scales in one block. */
static void *weight_q8(int ndim, const int64_t *ne) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= ne[d];
    float *f = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) f[i] = ((float)((i * 104729) % 2001) * 1e-3f - 1.0f) * 0.05f;
    int8_t *q = malloc((size_t)n + (size_t)n / 16 + 64);
    g_scales = (uint16_t *)(q + (n + 63) / 64 * 64);
    sd_q8_quantize_tensor(f, SD_F32, ndim, ne, q, g_scales, "w");
    free(f);
    return q;
}

static void *weight_data(sd_dtype dt, int64_t n) {
    void *p = malloc((size_t)n * sd_dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        float v = (float)((i * 104729) % 2001) * 1e-3f - 1.0f;
        if (dt == SD_F32)
            ((float *)p)[i] = v * 0.05f;
        else if (dt == SD_F16)
            ((uint16_t *)p)[i] = sd_f32_to_f16(v * 0.05f);
        else
            ((uint16_t *)p)[i] = sd_f32_to_bf16(v * 0.05f);
    }
    return p;
}

typedef struct shape {
    const char *name;
    int kind; /* 0 matmul, 1 conv3x3, 2 attention */
    int64_t a, b, c, d, e;
} shape;

/* matmul: M, K, N; conv: B, H(=W), Ci, Co; attention: B, L, H, D */
static const shape SHAPES[] = {
    {"linear 8192x320 -> 1280", 0, 8192, 320, 1280, 0, 0},
    {"linear 8192x1280 -> 320", 0, 8192, 1280, 320, 0, 0},
    {"linear 8192x320 -> 2560 (geglu)", 0, 8192, 320, 2560, 0, 0},
    {"conv3x3 [2,64,64,320] -> 320", 1, 2, 64, 320, 320, 0},
    {"conv3x3 [2,32,32,640] -> 640", 1, 2, 32, 640, 640, 0},
    {"attention B2 L4096 H8 D40", 2, 2, 4096, 8, 40, 0},
    {"VAE conv3x3 [1,512,512,128] -> 128", 1, 1, 512, 128, 128, 0},
    {"VAE conv3x3 [1,256,256,256] -> 256", 1, 1, 256, 256, 256, 0},
    {"VAE conv3x3 [1,128,128,512] -> 512", 1, 1, 128, 512, 512, 0},
    {"VAE attention B1 L4096 H1 D512", 2, 1, 4096, 1, 512, 0},
};

static double shape_flops(const shape *s) {
    switch (s->kind) {
    case 0: return 2.0 * s->a * s->b * s->c;
    case 1: return 2.0 * s->a * s->b * s->b * s->c * s->d * 9;
    default: return 4.0 * s->a * s->c * (double)s->b * s->b * s->d;
    }
}

static sd_graph *shape_graph(const shape *s, sd_dtype dt, void **wmem) {
    sd_graph *g = sd_graph_new();
    *wmem = NULL;
    if (s->kind == 0) {
        int64_t xne[2] = {s->a, s->b}, wne[2] = {s->c, s->b};
        int x = sd_graph_input(g, SD_F32, 2, xne, "x");
        *wmem = dt == SD_Q8 ? weight_q8(2, wne) : weight_data(dt, s->c * s->b);
        int w = sd_graph_weight(g, dt, 2, wne, *wmem, "w");
        if (dt == SD_Q8)
            g->t[w].scale = g_scales;
        sd_graph_output(g, sd_matmul(g, x, w, -1, -1));
    } else if (s->kind == 1) {
        int64_t xne[4] = {s->a, s->b, s->b, s->c}, wne[4] = {s->d, s->c, 3, 3};
        int x = sd_graph_input(g, SD_F32, 4, xne, "x");
        *wmem = dt == SD_Q8 ? weight_q8(4, wne) : weight_data(dt, s->d * s->c * 9);
        int w = sd_graph_weight(g, dt, 4, wne, *wmem, "w");
        if (dt == SD_Q8)
            g->t[w].scale = g_scales;
        sd_graph_output(g, sd_conv2d(g, x, w, -1, -1, 1, 1, 1, 1, 1));
    } else {
        int64_t ne[3] = {s->a, s->b, s->c * s->d};
        int q = sd_graph_input(g, SD_F32, 3, ne, "q");
        int k = sd_graph_input(g, SD_F32, 3, ne, "k");
        int v = sd_graph_input(g, SD_F32, 3, ne, "v");
        sd_graph_output(g, sd_attention(g, q, k, v, (int)s->c, 0, 1.0f / sqrtf((float)s->d)));
    }
    return g;
}

/* PyTorch fp32 time of the same shapes, same thread count, best of reps.
 * Each op takes the fastest path this torch build has: Debian's torch 1.13
 * links only a reference BLAS (~1.5 GFLOP/s), so products go through oneDNN
 * (mkldnn_linear, as tools/sd_ref.py does; weights converted once, outside
 * the timing), conv2d is oneDNN's channels-last conv, attention is
 * per-head QKᵀ / softmax / PV in 1024-query chunks (tools/sd_ref.py).
 * Returns 0 and fills t[] on success. */
static int torch_times(int threads, int reps, int n, double *t, double *tc) {
    static const char *py =
        "import sys,time,torch\n"
        "torch.set_num_threads(int(sys.argv[1])); reps=int(sys.argv[2])\n"
        "F=torch.nn.functional\n"
        "mk=torch.backends.mkldnn.is_available()\n"
        "def W(w): return w.contiguous().to_mkldnn() if mk else w\n"
        "def lin(x,w):\n"
        "  if not mk: return F.linear(x,w)\n"
        "  return torch._C._nn.mkldnn_linear(x.contiguous().to_mkldnn(),w,None).to_dense()\n"
        "def tm(f):\n"
        "  f(); b=1e9; bc=1e9\n"
        "  for _ in range(reps):\n"
        "    t=time.perf_counter(); c=time.process_time(); f()\n"
        "    b=min(b,time.perf_counter()-t); bc=min(bc,time.process_time()-c)\n"
        "  return '%g %g'%(b,bc)\n"
        "with torch.no_grad():\n"
        "  for (k,a,b,c,d) in eval(sys.argv[3]):\n"
        "    if k==0:\n"
        "      x=torch.randn(a,b); w=W(torch.randn(c,b)); print(tm(lambda: lin(x,w)),flush=True)\n"
        "    elif k==1:\n"
        "      x=torch.randn(a,c,b,b).to(memory_format=torch.channels_last)\n"
        "      w=torch.randn(d,c,3,3).to(memory_format=torch.channels_last)\n"
        "      print(tm(lambda: F.conv2d(x,w,padding=1)),flush=True)\n"
        "    else:\n"
        "      q=torch.randn(a,c,b,d); kk=[[W(torch.randn(b,d)) for h in range(c)] for i in range(a)]\n"
        "      vt=[[W(torch.randn(d,b)) for h in range(c)] for i in range(a)]\n"
        "      def at():\n"
        "        o=torch.empty(a,c,b,d)\n"
        "        for i in range(a):\n"
        "          for h in range(c):\n"
        "            for s in range(0,b,1024):\n"
        "              sc=lin(q[i,h,s:s+1024],kk[i][h])*d**-0.5\n"
        "              o[i,h,s:s+1024]=lin(torch.softmax(sc,-1),vt[i][h])\n"
        "        return o\n"
        "      print(tm(at),flush=True)\n";
    char list[1024] = "[", item[128];
    for (int i = 0; i < n; i++) {
        const shape *s = &SHAPES[i];
        snprintf(item, sizeof item, "(%d,%lld,%lld,%lld,%lld),", s->kind, (long long)s->a, (long long)s->b,
                 (long long)s->c, (long long)s->d);
        strncat(list, item, sizeof list - strlen(list) - 2);
    }
    strcat(list, "]");
    char path[] = "/tmp/sdvk_bench_torch_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f)
        return -1;
    fputs(py, f);
    fclose(f);
    char cmd[2048];
    /* PASSIVE: OpenMP workers sleep instead of spinning, so torch's CPU
     * time counts work, as ours does. */
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 %s %d %d '%s' 2>/dev/null", path,
             threads, reps, list);
    FILE *p = popen(cmd, "r");
    int got = 0, rc = -1;
    if (p) {
        while (got < n && fscanf(p, "%lf %lf", &t[got], &tc[got]) == 2) got++;
        rc = pclose(p);
    }
    remove(path);
    return got == n && rc == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *isa = "auto";
    int threads = 0, reps = 3, use_torch = 1;
    sd_dtype dt = SD_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--isa") && i + 1 < argc)
            isa = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch"))
            use_torch = 0;
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            i++;
            dt = !strcmp(argv[i], "f16")    ? SD_F16
                 : !strcmp(argv[i], "bf16") ? SD_BF16
                 : !strcmp(argv[i], "q8")   ? SD_Q8
                                            : SD_F32;
        } else {
            fprintf(stderr, "usage: %s [--isa I] [--threads N] [--reps R] [--no-torch] [--dtype f32|f16|bf16|q8]\n",
                    argv[0]);
            return 2;
        }
    }
    sd_pool *pool = sd_pool_create(threads);
    threads = sd_pool_threads(pool);
    sd_cpu_kernels k;
    sd_cpu_ref_kernels(&k);
    if (sd_cpu_simd_select(isa, &k) != SDVK_OK) {
        fprintf(stderr, "bench: %s\n", sdvk_last_error());
        return 1;
    }
    fma_loop_fn loop = sd_simd_fma_loop_scalar;
#if defined(__x86_64__) || defined(__i386__)
    if (!strcmp(k.isa, "avx512"))
        loop = sd_simd_fma_loop_avx512;
#ifdef SDVK_HAVE_AVX512BF16
    else if (!strcmp(k.isa, "avx512bf16")) /* VDPBF16PS peak: 2 products per fp32 lane */
        loop = sd_simd_fma_loop_avx512bf16;
#endif
    else if (!strcmp(k.isa, "avx2") || !strcmp(k.isa, "avx2vnni"))
        loop = sd_simd_fma_loop_avx2;
#endif
#if defined(__aarch64__)
    if (!strcmp(k.isa, "neon") || !strcmp(k.isa, "neondot"))
        loop = sd_simd_fma_loop_neon;
#endif
    double core_peak;
    double peak = measure_peak(pool, loop, &core_peak);
    printf("isa %s, %d threads, weights %s; measured FMA peak %.1f GFLOP/s (wall, all threads), "
           "%.1f GFLOP/s per busy core\n",
           k.isa, threads, sd_dtype_name(dt), peak, core_peak);
    int ns = (int)(sizeof SHAPES / sizeof *SHAPES);
    double tt[16] = {0}, ttc[16] = {0};
    int have_torch = use_torch && torch_times(threads, reps, ns, tt, ttc) == 0;
    printf("%-36s %9s %9s %7s %8s %10s %7s %9s\n", "shape", "ms", "GFLOP/s", "%peak", "%cpu-pk", "torch ms",
           "ratio", "cpu-ratio");
    for (int i = 0; i < ns; i++) {
        void *wmem;
        sd_graph *g = shape_graph(&SHAPES[i], dt, &wmem);
        runner r;
        runner_init(&r, g, &k);
        double cpu, t = runner_time(&r, &k, pool, reps, &cpu);
        double gf = shape_flops(&SHAPES[i]) / t / 1e9;
        double cgf = shape_flops(&SHAPES[i]) / cpu / 1e9; /* per CPU second */
        printf("%-36s %9.2f %9.1f %6.1f%% %7.1f%%", SHAPES[i].name, t * 1e3, gf, 100 * gf / peak,
               100 * cgf / core_peak);
        if (have_torch)
            printf(" %10.2f %7.2f %9.2f", tt[i] * 1e3, t / tt[i], cpu / ttc[i]);
        printf("\n");
        runner_free(&r);
        sd_graph_free(g);
        free(wmem);
    }
    if (use_torch && !have_torch)
        printf("(PyTorch timing unavailable: /usr/bin/python3 with torch not found)\n");
    else if (have_torch)
        printf("ratio = sdvk wall time / PyTorch fp32 wall time (< 1: sdvk faster); cpu-ratio = the same\n"
               "in CPU seconds (robust when other jobs share the cores)\n");
    printf("%%peak: wall GFLOP/s vs the wall FMA peak; %%cpu-pk: flops per CPU second vs one core's peak\n"
           "(insensitive to other jobs on the machine)\n");
    sd_pool_destroy(pool);
    return 0;
}
