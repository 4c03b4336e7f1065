/* Matmul / conv2d kernel variants (the table in vk_kernels.def) and the
 * choice among them: which family a device gets, which cooperative-matrix
 * shape and tile, and per node which variant and dispatch grid. The choice
 * is a pure function of a capability record (sd_vk_caps), so tests can feed
 * faked device properties (tests/test_vk_kernels.c). */
#ifndef SD_VK_KERNELS_H
#define SD_VK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum {
#define SD_VK_KERNEL(ID, family, source, BM, BN, BK, WG, needs, prec, defines) SD_VK_K_##ID,
#include "vk_kernels.def"
#undef SD_VK_KERNEL
    SD_VK_K_COUNT
};

enum { SD_VK_NEED_NONE = 0, SD_VK_NEED_COOPMAT_NV = 1, SD_VK_NEED_COOPMAT_KHR = 2, SD_VK_NEED_COOPMAT_EMU = 3 };
enum { SD_VK_PREC_F32_F16 = 3, SD_VK_PREC_F16 = 2 }; /* bit 0: f32, bit 1: f16 */

typedef struct sd_vk_variant {
    const char *id;     /* "SIMT128" */
    const char *family; /* "simt", "coopmat_nv", "coopmat_khr" */
    uint32_t bm, bn, bk, wg;
    int needs, prec;
} sd_vk_variant;

extern const sd_vk_variant sd_vk_variants[SD_VK_K_COUNT];
/* Its SPIR-V's name without the precision suffix: "mm_simt128". */
void sd_vk_variant_spv(int v, char *out, size_t n);

/* One supported cooperative-matrix multiply, from
 * vkGetPhysicalDeviceCooperativeMatrixProperties{NV,KHR}; the component and
 * scope enums have the same values in both extensions (float16 = 0,
 * float32 = 1, subgroup scope = 3). */
typedef struct sd_vk_cm_shape {
    uint32_t m, n, k;
    uint32_t a, b, c, r; /* component types of A, B, C, result */
    uint32_t scope;
} sd_vk_cm_shape;
#define SD_VK_CT_F16 0u
#define SD_VK_CT_F32 1u
#define SD_VK_SCOPE_SUBGROUP 3u

#define SD_VK_MAX_CM_SHAPES 64

/* What the choice needs to know about a device. */
typedef struct sd_vk_caps {
    int f16;                  /* tensors stored as fp16 */
    int shader_f16;           /* shaderFloat16 */
    int cpu;                  /* a software device (lavapipe) */
    uint32_t shared_bytes;    /* maxComputeSharedMemorySize */
    uint32_t max_invocations; /* maxComputeWorkGroupInvocations */
    uint32_t subgroup;        /* subgroupSize */
    int cm_nv, cm_khr;        /* extension present and cooperativeMatrix feature set */
    int n_nv, n_khr;
    sd_vk_cm_shape nv[SD_VK_MAX_CM_SHAPES], khr[SD_VK_MAX_CM_SHAPES];
    /* variants whose SPIR-V this build embeds for the device's precision
     * (bit i = variant i); tests fake it too */
    uint32_t built;
} sd_vk_caps;

/* A device's matmul plan: the variants used for large and small problems,
 * and for cooperative matrices the fragment shape. */
typedef struct sd_vk_mm_plan {
    int big, small;           /* variant ids (SD_VK_K_*) */
    int coop;                 /* 0 SIMT, 1 NV, 2 KHR, 3 emulated (tests) */
    uint32_t fm, fn, fk;      /* fragment shape (coop only) */
    uint32_t threads_big, threads_small; /* workgroup size of each */
    int att;                  /* attention variant on the matrix units, -1: SIMT */
    uint32_t threads_att;
    char why[160];            /* why no cooperative matrix, when coop == 0 */
} sd_vk_mm_plan;

/* Chooses the plan. `force` (NULL or "": automatic) is SDVK_VK_KERNELS:
 * "simt64", "simt128", "simt128k8", "coopmat" (whichever extension), "coopmat_nv",
 * "coopmat_khr", "coopmat_emu" / "coopmat_emu8" (the emulated test double,
 * 16x16x16 / 16x8x16); a forced family the device or build cannot run falls
 * back to the automatic choice and says so in why. The attention kernel
 * follows the matmul family (SDVK_VK_ATTN=simt keeps attention on SIMT). */
void sd_vk_plan_matmul(const sd_vk_caps *c, const char *force, sd_vk_mm_plan *p);
/* The same with SDVK_VK_ATTN (attn: NULL or "simt"). */
void sd_vk_plan_kernels(const sd_vk_caps *c, const char *force, const char *attn, sd_vk_mm_plan *p);

/* Whether a variant fits the device (shared memory, invocations, fragment
 * shape); for coop variants (fm, fn, fk) is the fragment shape. */
int sd_vk_variant_fits(const sd_vk_caps *c, int v, uint32_t fm, uint32_t fn, uint32_t fk);

/* Workgroup threads of variant v on a device with subgroup size sg. */
uint32_t sd_vk_variant_threads(int v, uint32_t sg);

/* Per node: the variant for an M x N output (N = the output columns; with a
 * fused GEGLU the matmul computes 2N). */
int sd_vk_pick_variant(const sd_vk_mm_plan *p, uint64_t M, uint64_t N);

/* Key block of the cooperative-matrix attention for head dim D (64, 32 or
 * 16: the largest whose shared memory fits), 0 when the plan has none or D
 * is not supported (over 160). */
uint32_t sd_vk_attn_block(const sd_vk_caps *c, const sd_vk_mm_plan *p, uint32_t D);

/* "coopmat_nv 16x16x16, tile 128x128 (small: 64x64)" */
void sd_vk_plan_describe(const sd_vk_mm_plan *p, char *s, size_t n);

#endif
