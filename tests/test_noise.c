/* Noise generators (src/sample/noise.h) against goldens, bit for bit.
 *
 *   test_noise DATA_DIR          every case of DATA_DIR/cpu.txt (torch, from
 *                                tools/make_rng_goldens.py) and cuda.txt
 *                                (tools/philox_ref.py), plus unit checks
 *   test_noise --bench           ns per normal of each generator
 *
 * A manifest is a list of "case <kind> <variant> <seed>" lines (a fresh
 * generator; variant = avx2|scalar for cpu, the grid cap for cuda) each
 * followed by "randn <n> <fnv1a64> <first> <count>" lines, one per
 * successive call: the n outputs must hash to fnv1a64 (FNV-1a 64 over the
 * float32 bit patterns, one value at a time) and match values[first..] of
 * the .npy next to the manifest (all n values, or the first and last 64). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/npy.h"
#include "core/status.h"
#include "sample/noise.h"

static int g_fail;
#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            g_fail++;                                                             \
        }                                                                         \
    } while (0)

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint64_t fnv1a64(const float *x, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) h = (h ^ bits(x[i])) * UINT64_C(0x100000001b3);
    return h;
}

/* First differing index of a and b (n values), or -1. */
static long first_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (bits(a[i]) != bits(b[i]))
            return (long)i;
    return -1;
}

/* Runs one manifest; returns the number of calls checked. */
static int run_manifest(const char *dir, const char *name, int *skipped) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        g_fail++;
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    sd_npy vals = {0};
    if (sd_npy_load(path, &vals) != SDVK_OK || vals.dtype != SD_F32) {
        fprintf(stderr, "cannot load %s: %s\n", path, sdvk_last_error());
        g_fail++;
        fclose(f);
        return 0;
    }
    int64_t nvals = sd_npy_nelem(&vals);
    const float *want_all = vals.data;

    sd_noise g;
    int have_case = 0, skip_case = 0, calls = 0, line_no = 0, case_no = 0;
    char desc[160] = "";
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line_no++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char kind[16], variant[16];
        unsigned long long seed, n, first, count;
        char hash_s[32];
        if (sscanf(line, "case %15s %15s %llu", kind, variant, &seed) == 3) {
            int k = sd_rng_from_name(kind);
            CHECK(k >= 0);
            sd_noise_seed(&g, (sd_rng_kind)k, seed);
            skip_case = 0;
            if (k == SD_RNG_CPU && strcmp(variant, "scalar") == 0) {
                sd_noise_set_cpu_variant(&g, SD_CPU_SCALAR);
#if !defined(__GLIBC__)
                skip_case = 1; /* torch's scalar kernel calls libm logf/sincosf (glibc goldens) */
#endif
            } else if (k == SD_RNG_CUDA) {
                sd_noise_set_cuda_grid_cap(&g, (uint32_t)strtoul(variant, NULL, 10));
            } else {
                CHECK(strcmp(variant, "avx2") == 0 || k == SD_RNG_SDVK);
            }
            snprintf(desc, sizeof desc, "%s:%d %s %s seed %llu", name, line_no, kind, variant, seed);
            have_case = 1;
            case_no++;
            continue;
        }
        if (sscanf(line, "randn %llu %31s %llu %llu", &n, hash_s, &first, &count) != 4 || !have_case) {
            fprintf(stderr, "%s.txt:%d: bad line: %s", name, line_no, line);
            g_fail++;
            break;
        }
        uint64_t want_hash = strtoull(hash_s, NULL, 16);
        if (first + count > (unsigned long long)nvals || (count != n && (count != 128 || n < 128))) {
            fprintf(stderr, "%s.txt:%d: values out of range\n", name, line_no);
            g_fail++;
            break;
        }
        float *out = malloc((n ? n : 1) * sizeof(float));
        sdvk_status st = sd_noise_randn(&g, out, (size_t)n);
        if (st != SDVK_OK) {
            fprintf(stderr, "%s n=%llu: %s\n", desc, n, sdvk_last_error());
            g_fail++;
            free(out);
            continue;
        }
        if (skip_case) {
            (*skipped)++;
            free(out);
            continue;
        }
        const float *want = want_all + first;
        long d = -1;
        if (count == n) {
            d = first_diff(out, want, n);
        } else {
            d = first_diff(out, want, 64);
            if (d < 0) {
                d = first_diff(out + n - 64, want + 64, 64);
                if (d >= 0)
                    d += (long)(n - 64);
            }
        }
        uint64_t h = fnv1a64(out, (size_t)n);
        if (d >= 0) {
            const float *w = count == n || d < 64 ? want + d : want + 64 + (d - (long)(n - 64));
            fprintf(stderr, "%s call n=%llu: value %ld is %.9g (0x%08x), torch/ref %.9g (0x%08x)\n", desc, n, d,
                    out[d], bits(out[d]), *w, bits(*w));
            g_fail++;
        } else if (h != want_hash) {
            fprintf(stderr, "%s call n=%llu: hash %016" PRIx64 ", want %016" PRIx64 "\n", desc, n, h, want_hash);
            g_fail++;
        }
        calls++;
        free(out);
    }
    printf("%s: %d cases, %d calls checked\n", name, case_no, calls);
    fclose(f);
    sd_npy_free(&vals);
    return calls;
}

static void unit_checks(void) {
    /* names */
    CHECK(strcmp(sd_rng_name(SD_RNG_CPU), "cpu") == 0);
    CHECK(strcmp(sd_rng_name(SD_RNG_CUDA), "cuda") == 0);
    CHECK(strcmp(sd_rng_name(SD_RNG_SDVK), "sdvk") == 0);
    CHECK(strcmp(sd_rng_name((sd_rng_kind)7), "unknown") == 0);
    CHECK(sd_rng_from_name("unknown") == -1);
    CHECK(sd_rng_from_name("cpu") == SD_RNG_CPU);
    CHECK(sd_rng_from_name("cuda") == SD_RNG_CUDA);
    CHECK(sd_rng_from_name("sdvk") == SD_RNG_SDVK);
    CHECK(sd_rng_from_name("CPU") == -1);
    CHECK(sd_rng_from_name("") == -1);
    CHECK(sd_rng_from_name(NULL) == -1);

    /* bad arguments are refused with a message, not a crash */
    float x[4];
    CHECK(sd_noise_randn(NULL, x, 4) == SDVK_ERR_INVALID_ARG);
    sd_noise g;
    sd_noise_seed(&g, SD_RNG_CPU, 1);
    CHECK(sd_noise_randn(&g, NULL, 4) == SDVK_ERR_INVALID_ARG);
    CHECK(sd_noise_randn(&g, NULL, 0) == SDVK_OK);
    sd_noise_seed(&g, (sd_rng_kind)9, 1);
    CHECK(sd_noise_randn(&g, x, 4) == SDVK_ERR_INVALID_ARG);
    CHECK(strstr(sdvk_last_error(), "kind") != NULL);
    sd_noise_seed(&g, SD_RNG_CUDA, 1);
    CHECK(sd_noise_randn(&g, x, ((size_t)1 << 29) + 1) == SDVK_ERR_UNSUPPORTED);
    CHECK(g.philox_offset == 0);

    /* n == 0 draws nothing: the next call is the first */
    for (int k = 0; k < 3; k++) {
        float a[20], b[20];
        sd_noise_seed(&g, (sd_rng_kind)k, 5);
        CHECK(sd_noise_randn(&g, a, 0) == SDVK_OK);
        CHECK(sd_noise_randn(&g, a, 20) == SDVK_OK);
        sd_noise_seed(&g, (sd_rng_kind)k, 5);
        CHECK(sd_noise_randn(&g, b, 20) == SDVK_OK);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }

    /* SDVK is the old generator, unchanged */
    {
        float a[33], b[33];
        sd_rng r;
        sd_rng_seed(&r, 1234);
        sd_rng_normal(&r, a, 33);
        sd_noise_seed(&g, SD_RNG_SDVK, 1234);
        CHECK(sd_noise_randn(&g, b, 33) == SDVK_OK);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }

    /* at::mt19937 is the standard mt19937: the 10000th output of seed 5489 */
    {
        sd_noise_seed(&g, SD_RNG_CPU, 5489);
        uint32_t v = 0;
        for (int i = 0; i < 10000; i++) v = sd_noise_mt_next(&g);
        CHECK(v == 4123659995u);
        /* seeds differing above bit 32 give the same CPU stream */
        float a[40], b[40];
        sd_noise_seed(&g, SD_RNG_CPU, 7);
        sd_noise_randn(&g, a, 40);
        sd_noise_seed(&g, SD_RNG_CPU, (UINT64_C(1) << 32) + 7);
        sd_noise_randn(&g, b, 40);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }

    /* Philox4x32-10: Random123's known-answer vectors (tests/kat_vectors) */
    {
        static const uint32_t kat[3][10] = {
            {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
            {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
             0xa20bc7c6, 0x6d5451fd},
            {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
             0x5001e420, 0x24126ea1},
        };
        for (int i = 0; i < 3; i++) {
            uint32_t o[4];
            sd_philox4x32_10(kat[i], kat[i][4], kat[i][5], o);
            CHECK(memcmp(o, kat[i] + 6, sizeof o) == 0);
        }
        /* curand's 2.3283064e-10f is exactly 2^-32 */
        CHECK(2.3283064e-10f == 1.0f / 4294967296.0f);
    }

    /* CUDA offsets: +4 per call on an uncapped grid, +4 per grid-stride pass */
    {
        float *buf = malloc(16384 * sizeof(float));
        sd_noise_seed(&g, SD_RNG_CUDA, 3);
        sd_noise_randn(&g, buf, 16384);
        CHECK(g.philox_offset == 4);
        sd_noise_randn(&g, buf, 1);
        CHECK(g.philox_offset == 8);
        sd_noise_seed(&g, SD_RNG_CUDA, 3);
        sd_noise_set_cuda_grid_cap(&g, 4); /* 1024 threads, 4096 values a pass */
        sd_noise_randn(&g, buf, 16384);
        CHECK(g.philox_offset == 16);
        sd_noise_randn(&g, buf, 4097);
        CHECK(g.philox_offset == 24);
        free(buf);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench(void) {
    const size_t n = 2 * 4 * 96 * 64;
    float *buf = malloc(n * sizeof(float));
    const char *names[] = {"cpu (avx2 kernel)", "cpu (scalar kernel)", "cuda (philox)", "sdvk (xoshiro)"};
    for (int v = 0; v < 4; v++) {
        sd_noise g;
        sd_rng_kind k = v < 2 ? SD_RNG_CPU : v == 2 ? SD_RNG_CUDA : SD_RNG_SDVK;
        sd_noise_seed(&g, k, 42);
        if (v == 1)
            sd_noise_set_cpu_variant(&g, SD_CPU_SCALAR);
        int reps = 0;
        double t0 = now_s(), t;
        do {
            sd_noise_randn(&g, buf, n);
            reps++;
        } while ((t = now_s() - t0) < 0.5);
        printf("%-20s %6.1f ns per normal (%zu-value calls)\n", names[v], t * 1e9 / ((double)reps * n), n);
    }
    free(buf);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--bench") == 0) {
        bench();
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: test_noise DATA_DIR | --bench\n");
        return 2;
    }
    unit_checks();
    int skipped = 0;
    run_manifest(argv[1], "cpu", &skipped);
    run_manifest(argv[1], "cuda", &skipped);
    if (skipped)
        printf("skipped %d calls of the scalar kernel (goldens need glibc's logf/sincosf)\n", skipped);
    if (g_fail) {
        fprintf(stderr, "test_noise: %d failures\n", g_fail);
        return 1;
    }
    printf("test_noise: ok\n");
    return 0;
}
