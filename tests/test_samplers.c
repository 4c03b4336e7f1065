/* Every sampler x schedule on the tiny model against the trajectories of
 * k-diffusion and diffusers (goldens from tools/check_samplers.py, same start
 * noise, context and per-step noise), through the public API.
 *
 *   test_samplers DATA_DIR MODEL cpu|vulkan [TOL]
 *
 * With vulkan it also asserts that each run is one recorded step graph
 * replayed by one submit, whatever the sampler (two evaluations per step for
 * Heun/DPM2/DPM++ 2S, history registers for DPM++ 2M/LMS). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdvk.h"

static const char *g_dir;
static int g_fails;

typedef struct arr {
    void *data;
    char dt;
    int ndim;
    int64_t ne[8];
} arr;

static int load(const char *name, arr *a) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    if (sdvk_npy_load(p, &a->data, &a->dt, &a->ndim, a->ne) != SDVK_OK) {
        printf("FATAL: %s\n", sdvk_last_error());
        return -1;
    }
    return 0;
}

static double rel_l2(const float *x, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Counts the lines of the Vulkan backend's verbose log. */
typedef struct logcount {
    int recorded, runs, one_submit;
} logcount;

static void on_log(void *user, sdvk_log_level level, const char *msg) {
    logcount *c = user;
    if (strstr(msg, "vulkan: prepared graph"))
        c->recorded++;
    if (strstr(msg, "vulkan: run steps")) {
        c->runs++;
        c->one_submit += strstr(msg, ": 1 submit of") != NULL;
    }
    if (level == SDVK_LOG_ERROR)
        printf("%s\n", msg);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_samplers DATA_DIR MODEL cpu|vulkan [TOL]\n");
        return 2;
    }
    g_dir = argv[1];
    const int vk = !strcmp(argv[3], "vulkan");
    const double tol = argc > 4 ? atof(argv[4]) : 1e-4;
    logcount lc = {0};
    sdvk_options opt;
    sdvk_options_default(&opt);
    sdvk_options_from_env(&opt);
    opt.backend = vk ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU;
    opt.n_threads = 2;
    opt.verbose = vk;
    opt.log = on_log;
    opt.log_user = &lc;
    sdvk_ctx *ctx;
    if (sdvk_create(argv[2], &opt, &ctx) != SDVK_OK) {
        if (vk) {
            printf("NOTE: no usable Vulkan device (%s): nothing to check on Vulkan here\n",
                   sdvk_last_error());
            return 0;
        }
        printf("FATAL: %s\n", sdvk_last_error());
        return 1;
    }
    printf("backend: %s, tolerance %g\n", sdvk_backend_name(ctx), tol);
    arr ctxa, n0;
    if (load("context.npy", &ctxa) || load("noise0.npy", &n0))
        return 1;
    char path[2048];
    snprintf(path, sizeof path, "%s/manifest.txt", g_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("FATAL: cannot open %s\n", path);
        return 1;
    }
    char line[512];
    int cases = 0, seen_noise = 0, seen_plain = 0;
    while (fgets(line, sizeof line, f)) {
        char sampler[64], schedule[64], tag[128];
        int steps, k;
        double cfg, eta;
        if (line[0] == '#' ||
            sscanf(line, "%63s %63s %d %lf %lf %d %127s", sampler, schedule, &steps, &cfg, &eta, &k,
                   tag) != 7)
            continue;
        sdvk_gen_params p;
        sdvk_gen_params_default(&p);
        int sm = sdvk_sampler_from_name(sampler), sc = sdvk_schedule_from_name(schedule);
        if (sm < 0 || sc < 0) {
            printf("FAIL %s: unknown sampler or schedule\n", tag);
            g_fails++;
            continue;
        }
        p.sampler = (sdvk_sampler)sm;
        p.schedule = (sdvk_schedule)sc;
        p.steps = steps;
        p.cfg_scale = (float)cfg;
        p.eta = (float)eta;
        int draws = -1;
        sdvk_sample_noise_draws(&p, &draws);
        arr noise = {0}, want = {0};
        char name[256];
        snprintf(name, sizeof name, "%s.out.npy", tag);
        if (load(name, &want))
            return 1;
        if (k > 0) {
            snprintf(name, sizeof name, "%s.step_noise.npy", tag);
            if (load(name, &noise))
                return 1;
        }
        int before_rec = lc.recorded, before_runs = lc.runs, before_one = lc.one_submit;
        float *out = NULL;
        int64_t one[4];
        sdvk_status s = sdvk_stage_sample(ctx, &p, ctxa.data, ctxa.ne, n0.data, n0.ne,
                                          k ? noise.data : NULL, k ? noise.ne : NULL, &out, one);
        cases++;
        if (s != SDVK_OK) {
            printf("FAIL %-22s %s\n", tag, sdvk_last_error());
            g_fails++;
        } else {
            int64_t n = one[0] * one[1] * one[2] * one[3];
            double e = rel_l2(out, want.data, n);
            int ok = e <= tol && draws == k;
            /* Vulkan: one step graph serves every sampler; it is recorded
             * once per variant (with a per-step noise table for the samplers
             * that draw noise, without for the others), and each run is one
             * submit */
            int rec = lc.recorded - before_rec, runs = lc.runs - before_runs,
                one_sub = lc.one_submit - before_one;
            int *seen = k ? &seen_noise : &seen_plain;
            if (vk && (runs != 1 || one_sub != 1 || rec > 1 || (*seen && rec != 0)))
                ok = 0;
            *seen = 1;
            printf("%s %-22s rel_l2 %.2e (tol %.0e), noise draws %d/%d%s\n", ok ? "ok  " : "FAIL", tag,
                   e, tol, draws, k,
                   vk ? (rec ? ", step graph recorded" : ", replayed the recorded graph") : "");
            if (vk)
                printf("     vulkan: %d run(s), %d with one submit\n", runs, one_sub);
            g_fails += !ok;
        }
        sdvk_free(out);
        sdvk_free(noise.data);
        sdvk_free(want.data);
    }
    fclose(f);
    sdvk_free(ctxa.data);
    sdvk_free(n0.data);
    sdvk_destroy(ctx);
    if (cases < 22) {
        printf("FAIL: only %d cases in the manifest\n", cases);
        g_fails++;
    }
    printf("%d cases, %d failed\n", cases, g_fails);
    return g_fails ? 1 : 0;
}
