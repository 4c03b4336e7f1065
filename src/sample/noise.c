/* Noise generators: kind dispatch, names, seeding (see noise.h). The CPU
 * and CUDA streams live in noise_cpu.c and noise_cuda.c. */
#include "noise.h"

#include <string.h>

#include "core/status.h"

void sd_noise_seed(sd_noise *g, sd_rng_kind kind, uint64_t seed) {
    memset(g, 0, sizeof(*g));
    g->kind = kind;
    g->seed = seed;
    g->cpu_variant = SD_CPU_AVX2;
    g->cuda_grid_cap = 0;
    switch (kind) {
    case SD_RNG_CPU:
        sd_noise_cpu_seed(g, seed);
        break;
    case SD_RNG_CUDA:
        /* CUDAGeneratorImpl::set_current_seed: seed kept whole, offset 0 */
        g->philox_offset = 0;
        break;
    case SD_RNG_SDVK:
        sd_rng_seed(&g->xo, seed);
        break;
    }
}

void sd_noise_set_cpu_variant(sd_noise *g, sd_cpu_variant v) { g->cpu_variant = v; }

void sd_noise_set_cuda_grid_cap(sd_noise *g, uint32_t max_blocks) { g->cuda_grid_cap = max_blocks; }

sdvk_status sd_noise_randn(sd_noise *g, float *out, size_t n) {
    if (!g)
        return sd_err(SDVK_ERR_INVALID_ARG, "noise: no generator");
    if (n == 0)
        return SDVK_OK;
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "noise: no output buffer for %zu values", n);
    switch (g->kind) {
    case SD_RNG_CPU:
        return sd_noise_cpu_randn(g, out, n);
    case SD_RNG_CUDA:
        return sd_noise_cuda_randn(g, out, n);
    case SD_RNG_SDVK:
        sd_rng_normal(&g->xo, out, n);
        return SDVK_OK;
    }
    return sd_err(SDVK_ERR_INVALID_ARG, "noise: unknown generator kind %d", (int)g->kind);
}

static const char *const k_names[] = {"cpu", "cuda", "sdvk"};

const char *sd_rng_name(sd_rng_kind k) {
    return (unsigned)k < sizeof(k_names) / sizeof(k_names[0]) ? k_names[k] : "unknown";
}

int sd_rng_from_name(const char *s) {
    if (!s)
        return -1;
    for (int i = 0; i < (int)(sizeof(k_names) / sizeof(k_names[0])); i++)
        if (strcmp(s, k_names[i]) == 0)
            return i;
    return -1;
}
