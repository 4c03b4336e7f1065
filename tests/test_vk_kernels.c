/* The matmul kernel choice (src/backend/vulkan/vk_kernels.c) on faked
 * device capabilities: cooperative-matrix property lists as NVIDIA, AMD,
 * Intel and software drivers report them, missing compiler support, small
 * shared memory, fp32 storage, forced families. No device needed: the
 * choice is a pure function of sd_vk_caps. */
#include <stdio.h>
#include <string.h>

#include "backend/vulkan/vk_kernels.h"

static int g_fail;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
            printf(__VA_ARGS__);                           \
            printf("\n");                                  \
            g_fail++;                                      \
        }                                                  \
    } while (0)

#define F16 SD_VK_CT_F16
#define F32 SD_VK_CT_F32
#define SUB SD_VK_SCOPE_SUBGROUP
#define ALL_BUILT ((1u << SD_VK_K_COUNT) - 1)
#define NO_KHR (ALL_BUILT & ~(1u << SD_VK_K_MM_CM_KHR128) & ~(1u << SD_VK_K_MM_CM_KHR64))

static void add(sd_vk_cm_shape *l, int *n, uint32_t m, uint32_t nn, uint32_t k, uint32_t a,
                uint32_t c, uint32_t scope) {
    l[(*n)++] = (sd_vk_cm_shape){m, nn, k, a, a, c, c, scope};
}

/* An H100 with NVIDIA's driver: both extensions, 16x8x16 / 16x8x8 /
 * 16x16x16 in fp16 with fp16 or fp32 accumulators (NVIDIA lists these),
 * subgroups of 32, 48 KiB of shared memory per workgroup. */
static sd_vk_caps nvidia(void) {
    sd_vk_caps c;
    memset(&c, 0, sizeof c);
    c.f16 = 1, c.shader_f16 = 1, c.shared_bytes = 49152, c.max_invocations = 1024, c.subgroup = 32;
    c.cm_nv = c.cm_khr = 1;
    add(c.nv, &c.n_nv, 16, 8, 16, F16, F16, SUB);
    add(c.nv, &c.n_nv, 16, 8, 8, F16, F16, SUB);
    add(c.nv, &c.n_nv, 16, 8, 16, F16, F32, SUB);
    add(c.nv, &c.n_nv, 16, 8, 8, F16, F32, SUB);
    add(c.nv, &c.n_nv, 16, 16, 16, F16, F32, SUB);
    add(c.khr, &c.n_khr, 16, 16, 16, F16, F16, SUB);
    add(c.khr, &c.n_khr, 16, 8, 16, F16, F32, SUB);
    add(c.khr, &c.n_khr, 16, 16, 16, F16, F32, SUB);
    c.built = ALL_BUILT;
    return c;
}

static void expect(const char *what, const sd_vk_caps *c, const char *force, int coop, int big, int small,
                   uint32_t fm, uint32_t fn, uint32_t fk, uint32_t threads, const char *why_has) {
    sd_vk_mm_plan p;
    sd_vk_plan_matmul(c, force, &p);
    char desc[320];
    sd_vk_plan_describe(&p, desc, sizeof desc);
    int ok = p.coop == coop && p.big == big && p.small == small && (!coop || (p.fm == fm && p.fn == fn && p.fk == fk)) &&
             (!threads || p.threads_big == threads) && (!why_has || strstr(p.why, why_has));
    printf("%-58s %s: %s\n", what, ok ? "ok  " : "FAIL", desc);
    CHECK(ok, "%s: got coop %d big %s small %s shape %ux%ux%u threads %u why '%s'", what, p.coop,
          sd_vk_variants[p.big].id, sd_vk_variants[p.small].id, p.fm, p.fn, p.fk, p.threads_big, p.why);
}

int main(void) {
    sd_vk_caps c = nvidia();
    expect("NVIDIA, both extensions built: KHR 16x16x16", &c, NULL, 2, SD_VK_K_MM_CM_KHR128, SD_VK_K_MM_CM_KHR64, 16,
           16, 16, 256, NULL);
    c.built = NO_KHR;
    expect("NVIDIA, glslang 12 (no KHR shaders): NV 16x16x16", &c, NULL, 1, SD_VK_K_MM_CM_NV128, SD_VK_K_MM_CM_NV64,
           16, 16, 16, 256, NULL);
    c = nvidia();
    expect("NVIDIA, SDVK_VK_KERNELS=coopmat_nv", &c, "coopmat_nv", 1, SD_VK_K_MM_CM_NV128, SD_VK_K_MM_CM_NV64, 16, 16,
           16, 256, NULL);
    expect("NVIDIA, SDVK_VK_KERNELS=simt64", &c, "simt64", 0, SD_VK_K_MM_SIMT64, SD_VK_K_MM_SIMT64, 0, 0, 0, 256,
           "simt64");
    expect("NVIDIA, SDVK_VK_KERNELS=simt128", &c, "simt128", 0, SD_VK_K_MM_SIMT128, SD_VK_K_MM_SIMT128, 0, 0, 0, 256,
           NULL);
    expect("NVIDIA, SDVK_VK_KERNELS=bogus: automatic", &c, "bogus", 2, SD_VK_K_MM_CM_KHR128, SD_VK_K_MM_CM_KHR64, 16,
           16, 16, 256, "not simt64");
    c.f16 = 0;
    expect("NVIDIA, fp32 storage: SIMT 128", &c, NULL, 0, SD_VK_K_MM_SIMT128, SD_VK_K_MM_SIMT64, 0, 0, 0, 256,
           "fp32 storage");
    c = nvidia();
    c.shader_f16 = 0;
    expect("NVIDIA without shaderFloat16", &c, NULL, 0, SD_VK_K_MM_SIMT128, SD_VK_K_MM_SIMT64, 0, 0, 0, 0,
           "shaderFloat16");
    /* a driver listing only 16x8 shapes: FN = 8 still pairs GEGLU columns */
    c = nvidia();
    c.n_khr = 0, c.cm_khr = 0, c.n_nv = 4;
    expect("NV list without 16x16x16: 16x8x16", &c, NULL, 1, SD_VK_K_MM_CM_NV128, SD_VK_K_MM_CM_NV64, 16, 8, 16, 256,
           NULL);
    /* only fp16 accumulators: not taken (fp32 accumulation is the contract) */
    c = nvidia();
    c.n_nv = 2, c.n_khr = 1;
    expect("only fp16 accumulators: SIMT", &c, NULL, 0, SD_VK_K_MM_SIMT128, SD_VK_K_MM_SIMT64, 0, 0, 0, 0,
           "no fp16 x fp16 -> fp32");
    /* workgroup-scope shapes only (NV_cooperative_matrix2 style): not usable */
    c = nvidia();
    c.n_nv = 0, c.cm_nv = 0, c.n_khr = 0;
    add(c.khr, &c.n_khr, 16, 16, 16, F16, F32, 2u);
    expect("workgroup-scope shape only: SIMT", &c, NULL, 0, SD_VK_K_MM_SIMT128, SD_VK_K_MM_SIMT64, 0, 0, 0, 0, NULL);
    /* AMD RDNA3 on RADV: KHR, 16x16x16 with fp16 or fp32 results, wave64 */
    memset(&c, 0, sizeof c);
    c.f16 = 1, c.shader_f16 = 1, c.shared_bytes = 65536, c.max_invocations = 1024, c.subgroup = 64;
    c.cm_khr = 1;
    add(c.khr, &c.n_khr, 16, 16, 16, F16, F16, SUB);
    add(c.khr, &c.n_khr, 16, 16, 16, F16, F32, SUB);
    c.built = ALL_BUILT;
    expect("AMD RDNA3 (KHR, wave64): 512 threads", &c, NULL, 2, SD_VK_K_MM_CM_KHR128, SD_VK_K_MM_CM_KHR64, 16, 16, 16,
           512, NULL);
    c.built = NO_KHR;
    expect("AMD RDNA3, build without KHR shaders: SIMT", &c, NULL, 0, SD_VK_K_MM_SIMT128, SD_VK_K_MM_SIMT64, 0, 0, 0,
           0, "no KHR cooperative matrix shaders");
    /* Intel Xe2-like: KHR 8x16x16, subgroups of 16 */
    memset(&c, 0, sizeof c);
    c.f16 = 1, c.shader_f16 = 1, c.shared_bytes = 65536, c.max_invocations = 1024, c.subgroup = 16;
    c.cm_khr = 1;
    add(c.khr, &c.n_khr, 8, 16, 16, F16, F32, SUB);
    c.built = ALL_BUILT;
    expect("Intel-like KHR 8x16x16, subgroup 16", &c, NULL, 2, SD_VK_K_MM_CM_KHR128, SD_VK_K_MM_CM_KHR64, 8, 16, 16,
           128, NULL);
    /* a fragment too wide for the pairing (N = 32 > half a subgroup's columns) */
    c.n_khr = 0;
    add(c.khr, &c.n_khr, 32, 32, 8, F16, F32, SUB);
    expect("only 32x32x8: does not fit the tiles", &c, NULL, 0, SD_VK_K_MM_SIMT128, SD_VK_K_MM_SIMT64, 0, 0, 0, 0,
           "fits the kernel's tiles");
    /* 16 KiB of shared memory (Vulkan's minimum): the 64 tiles only */
    c = nvidia();
    c.shared_bytes = 16384;
    expect("16 KiB shared: coop 64x64 tile only", &c, NULL, 2, SD_VK_K_MM_CM_KHR64, SD_VK_K_MM_CM_KHR64, 16, 16, 16,
           128, NULL);
    c.f16 = 0;
    expect("16 KiB shared, fp32: SIMT 128 with BK 8", &c, NULL, 0, SD_VK_K_MM_SIMT128K8, SD_VK_K_MM_SIMT64, 0, 0, 0,
           256, NULL);
    c.shared_bytes = 12288; /* below Vulkan's minimum: only the 64 tile fits */
    expect("12 KiB shared, fp32: SIMT 64", &c, NULL, 0, SD_VK_K_MM_SIMT64, SD_VK_K_MM_SIMT64, 0, 0, 0, 256, NULL);
    /* lavapipe: a CPU, no cooperative matrix, 32 KiB: the 128 tile everywhere */
    memset(&c, 0, sizeof c);
    c.f16 = 1, c.shader_f16 = 1, c.cpu = 1, c.shared_bytes = 32768, c.max_invocations = 1024, c.subgroup = 8;
    c.built = NO_KHR;
    expect("lavapipe: SIMT 128x128x16 for every size", &c, NULL, 0, SD_VK_K_MM_SIMT128, SD_VK_K_MM_SIMT128, 0, 0,
           0, 256, "no cooperative matrix extension");
    expect("lavapipe, SDVK_VK_KERNELS=coopmat: ignored", &c, "coopmat", 0, SD_VK_K_MM_SIMT128,
           SD_VK_K_MM_SIMT128, 0, 0, 0, 256, "ignored");
    expect("lavapipe, SDVK_VK_KERNELS=simt128k8", &c, "simt128k8", 0, SD_VK_K_MM_SIMT128K8, SD_VK_K_MM_SIMT128K8, 0,
           0, 0, 256, NULL);
    expect("lavapipe, SDVK_VK_KERNELS=coopmat_emu: emulated 128 tile", &c, "coopmat_emu", 3, SD_VK_K_MM_CM_EMU128,
           SD_VK_K_MM_CM_EMU128, 16, 16, 16, 64, NULL);
    expect("lavapipe, SDVK_VK_KERNELS=coopmat_emu8: emulated 64 tile", &c, "coopmat_emu8", 3, SD_VK_K_MM_CM_EMU64,
           SD_VK_K_MM_CM_EMU64, 16, 8, 16, 32, NULL);
    c.f16 = 0;
    expect("lavapipe f32, SDVK_VK_KERNELS=coopmat_emu: SIMT", &c, "coopmat_emu", 0, SD_VK_K_MM_SIMT128,
           SD_VK_K_MM_SIMT128, 0, 0, 0, 256, "emulation needs fp16");
    c.f16 = 1;
    c.max_invocations = 128;
    expect("128 invocations at most: SIMT 64 cannot run either", &c, NULL, 0, SD_VK_K_MM_SIMT64, SD_VK_K_MM_SIMT64,
           0, 0, 0, 0, NULL);

    /* attention on the matrix units: the key block from shared memory per
     * head dim (SD: 40, 80, 160; the VAE's 512 stays on SIMT) */
    {
        sd_vk_caps h = nvidia();
        sd_vk_mm_plan pa;
        sd_vk_plan_kernels(&h, NULL, NULL, &pa);
        CHECK(pa.att == SD_VK_K_ATT_CM_KHR && pa.threads_att == 128, "NVIDIA attention: %d, %u threads", pa.att,
              pa.threads_att);
        uint32_t b40 = sd_vk_attn_block(&h, &pa, 40), b64 = sd_vk_attn_block(&h, &pa, 64),
                 b80 = sd_vk_attn_block(&h, &pa, 80), b160 = sd_vk_attn_block(&h, &pa, 160),
                 b512 = sd_vk_attn_block(&h, &pa, 512);
        CHECK(b40 == 64 && b64 == 32 && b80 == 32 && b160 == 16 && b512 == 0,
              "key blocks for D 40/64/80/160/512 at 48 KiB: %u %u %u %u %u", b40, b64, b80, b160, b512);
        printf("attention key blocks at 48 KiB, D 40/64/80/160/512: %u %u %u %u %u\n", b40, b64, b80, b160, b512);
        sd_vk_plan_kernels(&h, NULL, "simt", &pa);
        CHECK(pa.att == -1 && pa.coop == 2, "SDVK_VK_ATTN=simt: att %d coop %d", pa.att, pa.coop);
        sd_vk_plan_kernels(&h, "simt128", NULL, &pa);
        CHECK(pa.att == -1 && sd_vk_attn_block(&h, &pa, 40) == 0, "SIMT plan has no coop attention");
        h.built = NO_KHR & ~(1u << SD_VK_K_ATT_CM_NV);
        sd_vk_plan_kernels(&h, NULL, NULL, &pa);
        CHECK(pa.coop == 1 && pa.att == -1, "NV matmul without the NV attention shader: coop %d att %d", pa.coop,
              pa.att);
        h = nvidia();
        h.shared_bytes = 32768; /* lavapipe-sized */
        sd_vk_plan_kernels(&h, NULL, NULL, &pa);
        CHECK(sd_vk_attn_block(&h, &pa, 40) == 32 && sd_vk_attn_block(&h, &pa, 160) == 0,
              "32 KiB: D 40 -> %u, D 160 -> %u", sd_vk_attn_block(&h, &pa, 40), sd_vk_attn_block(&h, &pa, 160));
    }

    /* per-node choice: many tiles -> the big tile, few -> the small one */
    c = nvidia();
    sd_vk_mm_plan p;
    sd_vk_plan_matmul(&c, NULL, &p);
    int v1 = sd_vk_pick_variant(&p, 8192, 320), v2 = sd_vk_pick_variant(&p, 128, 1280);
    CHECK(v1 == SD_VK_K_MM_CM_KHR128, "UNet 64x64 level linear: got %s", sd_vk_variants[v1].id);
    CHECK(v2 == SD_VK_K_MM_CM_KHR64, "UNet 8x8 level linear: got %s", sd_vk_variants[v2].id);
    printf("pick: [8192 x 320] -> %s, [128 x 1280] -> %s\n", sd_vk_variants[v1].id, sd_vk_variants[v2].id);

    /* SPIR-V names follow the table ids (vulkan.cmake lower-cases them too) */
    char name[48];
    sd_vk_variant_spv(SD_VK_K_MM_CM_NV128, name, sizeof name);
    CHECK(!strcmp(name, "mm_cm_nv128"), "spv name %s", name);
    sd_vk_variant_spv(SD_VK_K_MM_SIMT128K8, name, 8);
    CHECK(!strcmp(name, "mm_simt"), "truncated spv name %s", name);
    for (int v = 0; v < SD_VK_K_COUNT; v++) {
        const sd_vk_variant *k = &sd_vk_variants[v];
        CHECK(k->bm % 16 == 0 && k->bn % 16 == 0 && k->bk % 8 == 0, "%s: tile %ux%ux%u", k->id, k->bm, k->bn, k->bk);
    }
    printf("%s (%d failure%s)\n", g_fail ? "FAILED" : "OK", g_fail, g_fail == 1 ? "" : "s");
    return g_fail != 0;
}
