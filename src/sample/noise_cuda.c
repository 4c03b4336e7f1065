/* SD_RNG_CUDA: torch.randn(..., device="cuda") for float32 (see noise.h).
 *
 * Sources of the rules: Philox4x32-10 from Salmon, Moraes, Dror, Shaw,
 * "Parallel random numbers: as easy as 1, 2, 3" (SC'11) with curand's
 * constants and curand_init/skipahead/curand4/curand_normal4 semantics
 * (CUDA Toolkit curand_philox4x32_x.h, curand_normal.h, cuRAND device API
 * docs); launch geometry and offsets from PyTorch's
 * aten/src/ATen/native/cuda/DistributionTemplates.h (calc_execution_policy,
 * distribution_elementwise_grid_stride_kernel, normal_and_transform) and
 * CUDAGeneratorImpl.cpp (philox_cuda_state, offset rounded to 4). */
#include <float.h>
#include <math.h>

#include "core/status.h"
#include "noise.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#if FLT_EVAL_METHOD != 0
#error "noise_cuda.c needs float operations rounded to float (FLT_EVAL_METHOD 0)"
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

#define BLOCK 256u  /* block_size_bound */
#define UNROLL 4u   /* sizeof(float4) / sizeof(float) */
#define MAX_GEN 4u  /* max_generator_offsets_per_curand_call */
/* Beyond this ATen splits the launch for 32-bit indexing (byte offsets of a
 * float tensor must fit in int32); not reproduced. */
#define MAX_N (UINT64_C(1) << 29)

void sd_philox4x32_10(const uint32_t ctr[4], uint32_t k0, uint32_t k1, uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* curand's CURAND_2POW32_INV (2.3283064e-10f, which is 2^-32 exactly) and
 * CURAND_2POW32_INV_2PI (that times 6.2831855f, i.e. (float)(2 pi) * 2^-32) */
static const float k_inv = 2.3283064e-10f;
static const float k_inv_2pi = 2.3283064e-10f * 6.2831855f;

/* _curand_box_muller(x, y): u and v as the GPU computes them (nvcc fuses
 * x * C + C/2 into an FMA), then correctly rounded log, sin, cos where the
 * GPU uses logf and __sincosf. want_y: also compute the cos half. */
static void box_muller(uint32_t x, uint32_t y, int want_y, float r[2]) {
    float u = fmaf((float)x, k_inv, k_inv / 2.0f);
    float v = fmaf((float)y, k_inv_2pi, k_inv_2pi / 2.0f);
    float s = sqrtf(-2.0f * (float)log((double)u));
    r[0] = (float)sin((double)v) * s;
    r[1] = want_y ? (float)cos((double)v) * s : 0.0f;
}

sdvk_status sd_noise_cuda_randn(sd_noise *g, float *out, size_t n) {
    if (n == 0)
        return SDVK_OK; /* ATen returns before taking an offset */
    if ((uint64_t)n > MAX_N)
        return sd_err(SDVK_ERR_UNSUPPORTED,
                      "noise: cuda generator: %zu values in one call (at most 2^29: PyTorch splits "
                      "larger launches, which is not reproduced)",
                      n);
    uint64_t nn = n;
    uint64_t grid = (nn + BLOCK - 1) / BLOCK;
    if (g->cuda_grid_cap && grid > g->cuda_grid_cap)
        grid = g->cuda_grid_cap;
    uint64_t stride = BLOCK * grid; /* threads in the launch */
    uint64_t iters = (nn - 1) / (stride * UNROLL) + 1;
    uint64_t base_ctr = g->philox_offset / 4; /* offset % 4 == 0: STATE stays 0 */
    uint32_t k0 = (uint32_t)g->seed, k1 = (uint32_t)(g->seed >> 32);

    for (uint64_t k = 0; k < iters; k++) {
        uint64_t c = base_ctr + k; /* curand4 advances the counter's low 64 bits */
        uint64_t first = k * UNROLL * stride;
        for (uint64_t t = 0; t < stride && first + t < nn; t++) {
            /* thread t = curand_init(seed, subsequence t, offset) */
            uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), (uint32_t)t, (uint32_t)(t >> 32)};
            uint32_t w[4];
            sd_philox4x32_10(ctr, k0, k1, w);
            uint64_t li = first + t;
            float r[2];
            /* curand_normal4: (x, y) -> rand.x, rand.y; (z, w) -> rand.z, rand.w;
             * element li + i * stride takes rand[i]; then * std + mean */
            box_muller(w[0], w[1], li + stride < nn, r);
            out[li] = r[0] * 1.0f + 0.0f;
            if (li + stride < nn)
                out[li + stride] = r[1] * 1.0f + 0.0f;
            if (li + 2 * stride < nn) {
                box_muller(w[2], w[3], li + 3 * stride < nn, r);
                out[li + 2 * stride] = r[0] * 1.0f + 0.0f;
                if (li + 3 * stride < nn)
                    out[li + 3 * stride] = r[1] * 1.0f + 0.0f;
            }
        }
    }
    /* philox_cuda_state(counter_offset): the offset moves on by the number
     * of curand calls per thread times 4 (rounded up to 4: already is) */
    g->philox_offset += iters * MAX_GEN;
    return SDVK_OK;
}
