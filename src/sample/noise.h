/* Seeded Gaussian noise that reproduces PyTorch seed for seed, so a seed
 * gives the same starting latent as the user's other tool.
 *
 *   SD_RNG_CPU   torch.randn(n, generator=torch.Generator().manual_seed(seed))
 *                (= torch.manual_seed(seed); torch.randn(n)) on the CPU, float32.
 *                Bit-identical with torch 2.x on x86-64 with AVX2 (see
 *                "CPU capability" below); tested against torch 2.15 goldens.
 *   SD_RNG_CUDA  torch.manual_seed(seed); torch.randn(n, device="cuda"), float32.
 *                Philox4x32-10 stream, thread mapping and offsets exactly as
 *                PyTorch's kernel; the last bits of the Box-Muller differ (see
 *                "CUDA" below). NOT YET VERIFIED AGAINST A REAL GPU: tested
 *                only against tools/philox_ref.py, a second implementation
 *                written from the same documented rules.
 *   SD_RNG_SDVK  sdvk's own xoshiro256** generator (src/core/rng.h), kept so
 *                old seeds still give old images.
 *
 * sd_noise_randn(g, out, n) returns exactly what ONE torch.randn call of n
 * elements would, continuing the generator's stream: two calls equal two
 * successive torch.randn calls. For contiguous float32 randn the shape only
 * matters through its element count.
 *
 * CPU (ATen's CPUGeneratorImpl + normal_kernel of
 * aten/src/ATen/native/cpu/DistributionTemplates.h):
 *   - mt19937 seeded with the low 32 bits of the seed (manual_seed keeps the
 *     64-bit value for initial_seed() but at::mt19937 takes seed & 0xffffffff,
 *     so seeds s and s + 2^32 give the same noise).
 *   - n >= 16: n float uniforms (random() & 0xffffff) * 2^-24 written in
 *     place, Box-Muller on each block of 16 (u1 = 1 - data[j], u2 = data[j+8],
 *     j < 8; cos half to j, sin half to j+8); when n % 16 != 0, 16 NEW
 *     uniforms overwrite the last 16 outputs and that block is redone.
 *   - n < 16: at::normal_distribution<double> per element (u1, u2 from
 *     random64() & (2^53-1) * 2^-53, r = sqrt(-2 log1p(-u2)),
 *     theta = 2 pi u1, returns r cos theta and caches r sin theta in the
 *     generator for the next scalar draw; the cache survives n >= 16 calls
 *     and is cleared by seeding), cast to float.
 *   CPU capability: ATen registers normal_kernel for DEFAULT and AVX2 only
 *   (no AVX-512 entry, "flakiness in test_sgd"), so an AVX-512 machine (this
 *   one: torch.backends.cpu.get_cpu_capability() == "AVX512") runs the AVX2
 *   kernel, whose 16-block Box-Muller is avx_mathfun.h's log256_ps and
 *   sincos256_ps (Cephes polynomials) as GCC compiled them into the PyPI
 *   wheel: several mul+add pairs are contracted into FMAs, and we repeat the
 *   exact instruction sequence of libtorch_cpu.so (torch 2.15.0) with fmaf.
 *   A wheel built with a different contraction would differ in the last bit
 *   for some values. Builds without AVX2 (ATEN_CPU_CAPABILITY=default, arm64
 *   incl. Apple Silicon) run the scalar NormalFill16 instead: logf, sincosf
 *   of the platform libm, so it only matches torch on the same libm;
 *   sd_noise_set_cpu_variant(g, SD_CPU_SCALAR) selects it (tested with
 *   ATEN_CPU_CAPABILITY=default on glibc). The n < 16 path uses libm
 *   log1p/sin/cos in double and is the same for both variants.
 *
 * CUDA (aten/src/ATen/native/cuda/DistributionTemplates.h, curand headers):
 *   - Philox4x32-10 (Salmon et al., SC'11; curand_philox4x32_x.h constants
 *     M = 0xD2511F53, 0xCD9E8D57, W = 0x9E3779B9, 0xBB67AE85), key = seed
 *     (all 64 bits), counter = (offset/4 + k as 64 bits, thread index as 64
 *     bits): curand_init(seed, subsequence = thread, offset).
 *   - Launch: 256 threads per block, grid = min(ceil(n / 256), cap) with
 *     cap = SMs * (maxThreadsPerSM / 256); each thread t calls
 *     curand_normal4 once per grid-stride iteration k and writes its 4
 *     values to t + k*4*S + i*S (S = 256 * grid, i = 0..3) when < n. While
 *     n <= 256 * cap every element i is rand.x of thread i, iteration 0
 *     (what AUTOMATIC1111's rng_philox.py and stable-diffusion.cpp assume).
 *     The cap depends on the GPU (RTX 3090: 82*6 = 492 blocks, so up to
 *     125952 elements; RTX 3060: 28*6 = 168 -> 43008; H100: 132*8 -> 270336);
 *     by default we assume an uncapped grid, sd_noise_set_cuda_grid_cap()
 *     emulates a given GPU.
 *   - Each call advances the generator's philox offset by
 *     ((n-1) / (S*4) + 1) * 4 (4 for uncapped grids).
 *   - curand_normal4 = two Box-Mullers on curand4's (x, y) and (z, w):
 *     u = x * 2^-32 + 2^-33, v = y * 2pi_f 2^-32 + pi_f 2^-32 (float, FMA as
 *     nvcc contracts it), s = sqrtf(-2 logf(u)), (s sin v, s cos v), then
 *     * std + mean. u, v and the Philox words are reproduced exactly; on the
 *     GPU logf is CUDA's (<= 1 ulp) and sin/cos come from __sincosf (the SFU
 *     approximation, absolute error ~2^-21), which no portable code can
 *     reproduce bit for bit: we use correctly rounded logf/sinf/cosf
 *     (double libm, rounded once), so values should match the GPU to a few
 *     float ulps (more, relatively, where sin or cos is near 0).
 *   - n > 2^29 (a tensor that ATen splits for 32-bit indexing) is refused.
 */
#ifndef SD_NOISE_H
#define SD_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "sdvk.h"

typedef enum sd_rng_kind { SD_RNG_CPU = 0, SD_RNG_CUDA = 1, SD_RNG_SDVK = 2 } sd_rng_kind;

/* Which ATen CPU kernel SD_RNG_CPU reproduces (see above). */
typedef enum sd_cpu_variant {
    SD_CPU_AVX2 = 0,  /* x86-64 torch on an AVX2 or AVX-512 CPU (default) */
    SD_CPU_SCALAR = 1 /* ATen DEFAULT capability: no AVX2, arm64 */
} sd_cpu_variant;

#define SD_MT_N 624

typedef struct sd_noise {
    sd_rng_kind kind;
    uint64_t seed;
    /* SD_RNG_CPU: at::mt19937 and the cached second Box-Muller value */
    uint32_t mt[SD_MT_N];
    int mt_left, mt_next;
    int has_next_normal;
    double next_normal;
    sd_cpu_variant cpu_variant;
    /* SD_RNG_CUDA: philox offset (multiple of 4) and the assumed grid cap */
    uint64_t philox_offset;
    uint32_t cuda_grid_cap; /* 0 = never capped */
    /* SD_RNG_SDVK */
    sd_rng xo;
} sd_noise;

/* = torch.Generator().manual_seed(seed) (CPU) / torch.cuda.manual_seed(seed)
 * (CUDA, offset 0) / sd_rng_seed (SDVK). Keeps cpu_variant and cuda_grid_cap
 * at their defaults (AVX2, uncapped); set them after seeding. An unknown kind
 * is stored as is and refused by sd_noise_randn. */
void sd_noise_seed(sd_noise *g, sd_rng_kind kind, uint64_t seed);
/* The next n standard normals (see above). n == 0 draws nothing. */
sdvk_status sd_noise_randn(sd_noise *g, float *out, size_t n);
void sd_noise_set_cpu_variant(sd_noise *g, sd_cpu_variant v);
/* max_blocks = SMs * (maxThreadsPerMultiProcessor / 256); 0 = uncapped. */
void sd_noise_set_cuda_grid_cap(sd_noise *g, uint32_t max_blocks);

const char *sd_rng_name(sd_rng_kind k); /* "cpu", "cuda", "sdvk" ("unknown" otherwise) */
int sd_rng_from_name(const char *s);    /* -1 if unknown */

/* Internals shared by noise*.c (and the test). */
void sd_noise_cpu_seed(sd_noise *g, uint64_t seed);
uint32_t sd_noise_mt_next(sd_noise *g);
sdvk_status sd_noise_cpu_randn(sd_noise *g, float *out, size_t n);
sdvk_status sd_noise_cuda_randn(sd_noise *g, float *out, size_t n);
/* Philox4x32-10 of counter ctr and key (k0, k1) into out. */
void sd_philox4x32_10(const uint32_t ctr[4], uint32_t k0, uint32_t k1, uint32_t out[4]);

#endif
