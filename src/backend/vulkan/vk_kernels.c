/* The matmul / conv2d variants table (vk_kernels.def) and the choice among
 * them from a device's capabilities. Pure C, no Vulkan calls: the device
 * code fills sd_vk_caps from the real queries, tests fill it by hand. */
#include "vk_kernels.h"

#include <stdio.h>
#include <string.h>

const sd_vk_variant sd_vk_variants[SD_VK_K_COUNT] = {
#define SD_VK_KERNEL(ID, family, source, BM, BN, BK, WG, needs, prec, defines) \
    {#ID, #family, BM, BN, BK, WG, SD_VK_NEED_##needs, SD_VK_PREC_##prec},
#include "vk_kernels.def"
#undef SD_VK_KERNEL
};

/* SPIR-V names: the id in lower case (vulkan.cmake does the same). */
void sd_vk_variant_spv(int v, char *out, size_t n) {
    if (!n)
        return;
    size_t o = 0;
    if (v >= 0 && v < SD_VK_K_COUNT)
        for (const char *s = sd_vk_variants[v].id; *s && o + 1 < n; s++)
            out[o++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
    out[o] = 0;
}

static int is_coop(int v) { return sd_vk_variants[v].needs != SD_VK_NEED_NONE; }
static int is_attn(int v) { return !strncmp(sd_vk_variants[v].id, "ATT_", 4); }

uint32_t sd_vk_variant_threads(int v, uint32_t sg) {
    const sd_vk_variant *k = &sd_vk_variants[v];
    return is_coop(v) ? k->wg * sg : k->wg;
}

/* Shared memory of a variant: must match the shader's declarations. */
static uint32_t shared_bytes(int v, uint32_t fm, uint32_t fn) {
    const sd_vk_variant *k = &sd_vk_variants[v];
    if (!is_coop(v)) {
        if (k->bm == 64) /* matmul.comp: As[BK][64], Bs[BK][64] floats */
            return (k->bm + k->bn) * k->bk * 4;
        /* matmul_simt.comp: two stages of A and B (swizzled, no padding) */
        return 2 * k->bk * (k->bm + k->bn) * 4;
    }
    /* matmul_coop.comp: A and B tiles in fp16 with rows padded by 8, or
     * (after the k loop, the same memory) 2 fp32 fragments per subgroup */
    uint32_t tiles = (k->bm + k->bn) * (k->bk + 8) * 2;
    uint32_t epi = k->wg * 2 * fm * fn * 4;
    return tiles > epi ? tiles : epi;
}

int sd_vk_variant_fits(const sd_vk_caps *c, int v, uint32_t fm, uint32_t fn, uint32_t fk) {
    if (v < 0 || v >= SD_VK_K_COUNT || !(c->built & (1u << v)) || is_attn(v))
        return 0;
    const sd_vk_variant *k = &sd_vk_variants[v];
    if (!(k->prec & (c->f16 ? 2 : 1)))
        return 0;
    if (!is_coop(v))
        return k->wg <= c->max_invocations && shared_bytes(v, 0, 0) <= c->shared_bytes;
    if (!c->f16 || !c->subgroup)
        return 0;
    if (k->needs == SD_VK_NEED_COOPMAT_EMU) {
        if (c->subgroup < 8 || fm * fn > 256) /* EMU_MAX accumulator elements per lane */
            return 0;
    } else if (!c->shader_f16 || (k->needs == SD_VK_NEED_COOPMAT_NV ? !c->cm_nv : !c->cm_khr)) {
        return 0;
    }
    uint32_t threads = k->wg * c->subgroup;
    if (threads > c->max_invocations || !fm || !fn || !fk)
        return 0;
    /* subgroups as 2 rows x wg/2 columns; each subgroup's columns are pairs
     * of fragments half a tile apart (the GEGLU epilogue needs both) */
    uint32_t wm = k->bm / 2, wn = k->bn / (k->wg / 2);
    if (wm % fm || wn % (2 * fn) || k->bk % fk)
        return 0;
    /* global -> shared copies move 8 halves per thread per step */
    if ((k->bm * k->bk / 8) % threads || (k->bn * k->bk / 8) % threads)
        return 0;
    return shared_bytes(v, fm, fn) <= c->shared_bytes;
}

/* Cooperative-matrix shapes the kernel can use: fp16 x fp16 + fp32 -> fp32
 * at subgroup scope. Preference: 16x16x16 (every vendor's native fp16
 * shape), then the largest fragment. */
static int shape_score(const sd_vk_cm_shape *s) {
    if (s->a != SD_VK_CT_F16 || s->b != SD_VK_CT_F16 || s->c != SD_VK_CT_F32 || s->r != SD_VK_CT_F32 ||
        s->scope != SD_VK_SCOPE_SUBGROUP)
        return -1;
    if (s->m == 16 && s->n == 16 && s->k == 16)
        return 1 << 30;
    return (int)(s->m * s->n * s->k);
}

/* Best shape of one extension's list for variant v; 1 when one fits. */
static int pick_shape(const sd_vk_caps *c, int v, const sd_vk_cm_shape *list, int n, sd_vk_cm_shape *out) {
    int best = -1;
    for (int i = 0; i < n && i < SD_VK_MAX_CM_SHAPES; i++) {
        int sc = shape_score(&list[i]);
        if (sc < 0 || sc <= best || !sd_vk_variant_fits(c, v, list[i].m, list[i].n, list[i].k))
            continue;
        best = sc;
        *out = list[i];
    }
    return best >= 0;
}

static int best_simt128(const sd_vk_caps *c) {
    if (sd_vk_variant_fits(c, SD_VK_K_MM_SIMT128, 0, 0, 0))
        return SD_VK_K_MM_SIMT128;
    if (sd_vk_variant_fits(c, SD_VK_K_MM_SIMT128K8, 0, 0, 0))
        return SD_VK_K_MM_SIMT128K8;
    return -1;
}

/* Shared memory of attention_coop.comp (must match its declarations), in
 * bytes, for head dim D and key block bkv. */
static uint32_t attn_shared(const sd_vk_variant *k, uint32_t fm, uint32_t D, uint32_t bkv) {
    uint32_t dp = (D + 15) / 16 * 16, srow = (dp + 8) / 8, bq = k->wg * fm;
    uint32_t words = bq * srow + 2 * bkv * srow + k->wg * fm * bkv / 4 + k->wg * fm * ((bkv + 8) / 8) +
                     k->wg * fm / 2;
    return words * 16;
}

static int attn_ok(const sd_vk_caps *c, int v, uint32_t fm, uint32_t fn, uint32_t fk) {
    if (v < 0 || !(c->built & (1u << v)) || !c->f16 || !c->subgroup)
        return 0;
    const sd_vk_variant *k = &sd_vk_variants[v];
    if (k->needs == SD_VK_NEED_COOPMAT_EMU ? c->subgroup < 8 || fm * fn > 256
                                           : !c->shader_f16 ||
                                                 (k->needs == SD_VK_NEED_COOPMAT_NV ? !c->cm_nv : !c->cm_khr))
        return 0;
    /* fragments tile the 16-padded head dim and the key blocks (16 keys at least) */
    return fm <= 16 && 16 % fn == 0 && 16 % fk == 0 && k->wg * c->subgroup <= c->max_invocations;
}

uint32_t sd_vk_attn_block(const sd_vk_caps *c, const sd_vk_mm_plan *p, uint32_t D) {
    if (p->att < 0 || D == 0 || D > 160)
        return 0;
    const sd_vk_variant *k = &sd_vk_variants[p->att];
    for (uint32_t bkv = 64; bkv >= 16; bkv /= 2)
        if (attn_shared(k, p->fm, D, bkv) <= c->shared_bytes)
            return bkv;
    return 0;
}

/* Tries cooperative matrices of one extension (1 NV, 2 KHR, 3 the
 * emulation with shape emu: 16x16x16 or 16x8x16). */
static int try_coop(const sd_vk_caps *c, int ext, int emu_n, sd_vk_mm_plan *p) {
    int big = ext == 3 ? SD_VK_K_MM_CM_EMU128 : ext == 2 ? SD_VK_K_MM_CM_KHR128 : SD_VK_K_MM_CM_NV128;
    int small = ext == 3 ? SD_VK_K_MM_CM_EMU64 : ext == 2 ? SD_VK_K_MM_CM_KHR64 : SD_VK_K_MM_CM_NV64;
    sd_vk_cm_shape emu = {16, (uint32_t)emu_n, 16, SD_VK_CT_F16, SD_VK_CT_F16, SD_VK_CT_F32, SD_VK_CT_F32,
                          SD_VK_SCOPE_SUBGROUP};
    const sd_vk_cm_shape *list = ext == 3 ? &emu : ext == 2 ? c->khr : c->nv;
    int n = ext == 3 ? 1 : ext == 2 ? c->n_khr : c->n_nv;
    sd_vk_cm_shape s;
    if (pick_shape(c, big, list, n, &s)) {
        p->big = big;
        /* the small tile with the same shape, else the small SIMT kernel */
        p->small = sd_vk_variant_fits(c, small, s.m, s.n, s.k) ? small : SD_VK_K_MM_SIMT64;
    } else if (pick_shape(c, small, list, n, &s)) {
        p->big = p->small = small;
    } else {
        return 0;
    }
    p->coop = ext;
    p->fm = s.m, p->fn = s.n, p->fk = s.k;
    int att = ext == 3 ? SD_VK_K_ATT_CM_EMU : ext == 2 ? SD_VK_K_ATT_CM_KHR : SD_VK_K_ATT_CM_NV;
    p->att = attn_ok(c, att, s.m, s.n, s.k) ? att : -1;
    return 1;
}

static void why_no_coop(const sd_vk_caps *c, char *why, size_t n) {
    int nv_built = (c->built >> SD_VK_K_MM_CM_NV128 & 1) | (c->built >> SD_VK_K_MM_CM_NV64 & 1);
    int khr_built = (c->built >> SD_VK_K_MM_CM_KHR128 & 1) | (c->built >> SD_VK_K_MM_CM_KHR64 & 1);
    if (!c->cm_nv && !c->cm_khr)
        snprintf(why, n, "the device has no cooperative matrix extension");
    else if (!c->f16)
        snprintf(why, n, "fp32 storage (matrix units need --precision f16)");
    else if (!c->shader_f16)
        snprintf(why, n, "the device lacks shaderFloat16");
    else if (!(c->cm_nv && nv_built) && !(c->cm_khr && khr_built))
        snprintf(why, n, "this build has no %s cooperative matrix shaders (see the configure log)",
                 c->cm_khr ? "KHR" : "NV");
    else
        snprintf(why, n, "no fp16 x fp16 -> fp32 subgroup shape fits the kernel's tiles "
                 "(shared memory %u B, subgroup %u)", c->shared_bytes, c->subgroup);
}

void sd_vk_plan_matmul(const sd_vk_caps *c, const char *force, sd_vk_mm_plan *p) {
    sd_vk_plan_kernels(c, force, NULL, p);
}

void sd_vk_plan_kernels(const sd_vk_caps *c, const char *force, const char *attn, sd_vk_mm_plan *p) {
    int att_simt = attn && !strcmp(attn, "simt");
    memset(p, 0, sizeof *p);
    p->big = p->small = SD_VK_K_MM_SIMT64;
    p->att = -1;
    int b128 = best_simt128(c);
    if (b128 >= 0)
        p->big = b128;
    if (!force)
        force = "";
    int want_simt = !strcmp(force, "simt128") || !strcmp(force, "simt128k8") || !strcmp(force, "simt64") ||
                    !strcmp(force, "simt");
    int emu = !strcmp(force, "coopmat_emu") ? 16 : !strcmp(force, "coopmat_emu8") ? 8 : 0;
    int forced_ok = !*force || want_simt || emu || !strcmp(force, "coopmat") ||
                    !strcmp(force, "coopmat_nv") || !strcmp(force, "coopmat_khr");
    int got = 0;
    if (emu) {
        got = try_coop(c, 3, emu, p);
        /* one tile per forced name, whatever the size, so tests cover both:
         * coopmat_emu the 128 tile at 16x16x16, coopmat_emu8 the 64 tile at 16x8x16 */
        if (got && emu == 16)
            p->small = p->big;
        else if (got)
            p->big = p->small;
        if (!got)
            snprintf(p->why, sizeof p->why, "SDVK_VK_KERNELS=%s: the emulation needs fp16 storage and "
                     "subgroups of 8 or more", force);
    } else if (!want_simt) {
        int nv_only = !strcmp(force, "coopmat_nv"), khr_only = !strcmp(force, "coopmat_khr");
        if (!nv_only)
            got = try_coop(c, 2, 0, p);
        if (!got && !khr_only)
            got = try_coop(c, 1, 0, p);
        if (!got) {
            why_no_coop(c, p->why, sizeof p->why);
            if (*force && strcmp(force, "simt"))
                snprintf(p->why + strlen(p->why), sizeof p->why - strlen(p->why),
                         "; SDVK_VK_KERNELS=%s ignored", force);
        }
    } else {
        snprintf(p->why, sizeof p->why, "SDVK_VK_KERNELS=%s", force);
        if (!strcmp(force, "simt64"))
            p->big = SD_VK_K_MM_SIMT64;
        else if (!strcmp(force, "simt128") && b128 >= 0)
            p->small = b128; /* every size on the big tile: tests cover its edges */
        else if (!strcmp(force, "simt128k8") && sd_vk_variant_fits(c, SD_VK_K_MM_SIMT128K8, 0, 0, 0))
            p->big = p->small = SD_VK_K_MM_SIMT128K8;
    }
    /* A CPU device (lavapipe) runs a few workgroups per core anyway: the
     * big tile wins at every size there (4-7x over the 64 tile, measured) */
    if (c->cpu && !p->coop && p->big != SD_VK_K_MM_SIMT64)
        p->small = p->big;
    if (!forced_ok)
        snprintf(p->why, sizeof p->why, "SDVK_VK_KERNELS=%s is not simt64, simt128, simt128k8, "
                 "coopmat, coopmat_nv, coopmat_khr or coopmat_emu(8); ignored", force);
    p->threads_big = sd_vk_variant_threads(p->big, c->subgroup);
    p->threads_small = sd_vk_variant_threads(p->small, c->subgroup);
    if (p->att >= 0 && att_simt)
        p->att = -1;
    p->threads_att = p->att >= 0 ? sd_vk_variant_threads(p->att, c->subgroup) : 0;
}

/* Below this many big tiles a problem leaves much of a GPU idle: the small
 * tile gives 4x the workgroups. */
#define BIG_TILES_MIN 64

int sd_vk_pick_variant(const sd_vk_mm_plan *p, uint64_t M, uint64_t N) {
    const sd_vk_variant *b = &sd_vk_variants[p->big];
    uint64_t tiles = (M + b->bm - 1) / b->bm * ((N + b->bn - 1) / b->bn);
    return tiles >= BIG_TILES_MIN ? p->big : p->small;
}

void sd_vk_plan_describe(const sd_vk_mm_plan *p, char *s, size_t n) {
    const sd_vk_variant *b = &sd_vk_variants[p->big], *m = &sd_vk_variants[p->small];
    int o;
    if (p->coop)
        o = snprintf(s, n, "%s %ux%ux%u fp16->fp32, tile %ux%u", b->family, p->fm, p->fn, p->fk, b->bm,
                     b->bn);
    else
        o = snprintf(s, n, "simt, tile %ux%ux%u %s", b->bm, b->bn, b->bk,
                     b->bm == 128 ? "(8x8 per thread)" : "(4x4 per thread)");
    if (o > 0 && (size_t)o < n && p->small != p->big)
        o += snprintf(s + o, n - (size_t)o, "; small problems: %s %ux%u", m->family, m->bm, m->bn);
    if (o > 0 && (size_t)o < n && !p->coop && p->why[0])
        o += snprintf(s + o, n - (size_t)o, " [no matrix units: %s]", p->why);
    if (o > 0 && (size_t)o < n)
        snprintf(s + o, n - (size_t)o, "; attention: %s", p->att >= 0 ? (p->coop == 3 ? "coopmat_emu (head dims <= 160)"
                 : "cooperative matrix (head dims <= 160), else simt flash") : "simt flash");
}
