/* diffusers <-> LDM key names (see keymap.h). The correspondence is the one
 * diffusers' own single-file conversion uses (convert_ldm_unet_checkpoint,
 * convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint), written as
 * module-prefix pairs plus per-module-kind suffix renames:
 *
 *   UNet  input_blocks.{1+i*(R+1)+j}.0      down_blocks.i.resnets.j
 *         input_blocks.{1+i*(R+1)+j}.1      down_blocks.i.attentions.j
 *         input_blocks.{(i+1)*(R+1)}.0.op   down_blocks.i.downsamplers.0.conv
 *         middle_block.0 / .1 / .2          mid_block.resnets.0 / attentions.0 / resnets.1
 *         output_blocks.{u*(R+1)+j}.0       up_blocks.u.resnets.j        (j <= R)
 *         output_blocks.{u*(R+1)+j}.1       up_blocks.u.attentions.j
 *         output_blocks.{u*(R+1)+R}.{1|2}.conv  up_blocks.u.upsamplers.0.conv
 *   VAE   encoder.down.i.block.j            encoder.down_blocks.i.resnets.j
 *         decoder.up.i.block.j              decoder.up_blocks.{L-1-i}.resnets.j
 *         *.mid.block_1 / attn_1 / block_2  *.mid_block.resnets.0 / attentions.0 / resnets.1
 *   CLIP  cond_stage_model.transformer.X    X  (X = text_model....)
 *
 * Up block u of diffusers is UNet level L-1-u; the upsampler sits after the
 * attention when the level has one (index 2), else at index 1. */
#include "keymap.h"

#include <stdio.h>
#include <string.h>

enum { PLAIN, RES, TR, VRES, VATTN };

typedef struct kpair {
    char ldm[64]; /* without the part's LDM prefix, ends with '.' */
    char dif[64]; /* ends with '.' */
    int kind;
} kpair;

typedef struct ren {
    const char *ldm, *dif;
} ren;

static const ren res_ren[] = {
    {"in_layers.0.", "norm1."},       {"in_layers.2.", "conv1."},
    {"emb_layers.1.", "time_emb_proj."}, {"out_layers.0.", "norm2."},
    {"out_layers.3.", "conv2."},       {"skip_connection.", "conv_shortcut."},
};
static const ren vres_ren[] = {
    {"norm1.", "norm1."}, {"conv1.", "conv1."}, {"norm2.", "norm2."},
    {"conv2.", "conv2."}, {"nin_shortcut.", "conv_shortcut."},
};
/* The first four are what current diffusers writes; the rest are older
 * diffusers names read too (LDM -> diffusers gives the current ones). */
static const ren vattn_ren[] = {
    {"norm.", "group_norm."}, {"q.", "to_q."},  {"k.", "to_k."},   {"v.", "to_v."},
    {"proj_out.", "to_out.0."}, {"q.", "query."}, {"k.", "key."}, {"v.", "value."},
    {"proj_out.", "proj_attn."},
};

#define MAXP 512

typedef struct table {
    kpair p[MAXP];
    int n;
} table;

static void add(table *T, int kind, const char *ldm, const char *dif) {
    if (T->n >= MAXP)
        return;
    kpair *k = &T->p[T->n++];
    snprintf(k->ldm, sizeof k->ldm, "%s", ldm);
    snprintf(k->dif, sizeof k->dif, "%s", dif);
    k->kind = kind;
}

static void build_unet(table *T, const sd_km_layout *L) {
    char a[64], b[64];
    int R = L->unet_res, NL = L->unet_levels;
    add(T, PLAIN, "time_embed.0.", "time_embedding.linear_1.");
    add(T, PLAIN, "time_embed.2.", "time_embedding.linear_2.");
    add(T, PLAIN, "input_blocks.0.0.", "conv_in.");
    add(T, PLAIN, "out.0.", "conv_norm_out.");
    add(T, PLAIN, "out.2.", "conv_out.");
    for (int i = 0; i < NL; i++) {
        for (int j = 0; j < R; j++) {
            int blk = 1 + i * (R + 1) + j;
            snprintf(a, sizeof a, "input_blocks.%d.0.", blk);
            snprintf(b, sizeof b, "down_blocks.%d.resnets.%d.", i, j);
            add(T, RES, a, b);
            if (L->unet_attn[i]) {
                snprintf(a, sizeof a, "input_blocks.%d.1.", blk);
                snprintf(b, sizeof b, "down_blocks.%d.attentions.%d.", i, j);
                add(T, TR, a, b);
            }
        }
        if (i < NL - 1) {
            snprintf(a, sizeof a, "input_blocks.%d.0.op.", (i + 1) * (R + 1));
            snprintf(b, sizeof b, "down_blocks.%d.downsamplers.0.conv.", i);
            add(T, PLAIN, a, b);
        }
    }
    add(T, RES, "middle_block.0.", "mid_block.resnets.0.");
    add(T, TR, "middle_block.1.", "mid_block.attentions.0.");
    add(T, RES, "middle_block.2.", "mid_block.resnets.1.");
    for (int u = 0; u < NL; u++) {
        int level = NL - 1 - u;
        for (int j = 0; j <= R; j++) {
            int blk = u * (R + 1) + j;
            snprintf(a, sizeof a, "output_blocks.%d.0.", blk);
            snprintf(b, sizeof b, "up_blocks.%d.resnets.%d.", u, j);
            add(T, RES, a, b);
            if (L->unet_attn[level]) {
                snprintf(a, sizeof a, "output_blocks.%d.1.", blk);
                snprintf(b, sizeof b, "up_blocks.%d.attentions.%d.", u, j);
                add(T, TR, a, b);
            }
            if (level > 0 && j == R) {
                snprintf(a, sizeof a, "output_blocks.%d.%d.conv.", blk, L->unet_attn[level] ? 2 : 1);
                snprintf(b, sizeof b, "up_blocks.%d.upsamplers.0.conv.", u);
                add(T, PLAIN, a, b);
            }
        }
    }
}

static void build_vae(table *T, const sd_km_layout *L) {
    char a[64], b[64];
    int R = L->vae_res, NL = L->vae_levels;
    static const char *const ed[2] = {"encoder.", "decoder."};
    for (int s = 0; s < 2; s++) {
        const char *x = ed[s];
        snprintf(a, sizeof a, "%sconv_in.", x);
        add(T, PLAIN, a, a);
        snprintf(a, sizeof a, "%sconv_out.", x);
        add(T, PLAIN, a, a);
        snprintf(a, sizeof a, "%snorm_out.", x);
        snprintf(b, sizeof b, "%sconv_norm_out.", x);
        add(T, PLAIN, a, b);
        snprintf(a, sizeof a, "%smid.block_1.", x);
        snprintf(b, sizeof b, "%smid_block.resnets.0.", x);
        add(T, VRES, a, b);
        snprintf(a, sizeof a, "%smid.block_2.", x);
        snprintf(b, sizeof b, "%smid_block.resnets.1.", x);
        add(T, VRES, a, b);
        snprintf(a, sizeof a, "%smid.attn_1.", x);
        snprintf(b, sizeof b, "%smid_block.attentions.0.", x);
        add(T, VATTN, a, b);
    }
    for (int i = 0; i < NL; i++) {
        for (int j = 0; j < R; j++) {
            snprintf(a, sizeof a, "encoder.down.%d.block.%d.", i, j);
            snprintf(b, sizeof b, "encoder.down_blocks.%d.resnets.%d.", i, j);
            add(T, VRES, a, b);
        }
        if (i < NL - 1) {
            snprintf(a, sizeof a, "encoder.down.%d.downsample.conv.", i);
            snprintf(b, sizeof b, "encoder.down_blocks.%d.downsamplers.0.conv.", i);
            add(T, PLAIN, a, b);
        }
        for (int j = 0; j <= R; j++) {
            snprintf(a, sizeof a, "decoder.up.%d.block.%d.", i, j);
            snprintf(b, sizeof b, "decoder.up_blocks.%d.resnets.%d.", NL - 1 - i, j);
            add(T, VRES, a, b);
        }
        if (i > 0) {
            snprintf(a, sizeof a, "decoder.up.%d.upsample.conv.", i);
            snprintf(b, sizeof b, "decoder.up_blocks.%d.upsamplers.0.conv.", NL - 1 - i);
            add(T, PLAIN, a, b);
        }
    }
    add(T, PLAIN, "quant_conv.", "quant_conv.");
    add(T, PLAIN, "post_quant_conv.", "post_quant_conv.");
}

static const ren *renames(int kind, size_t *n) {
    switch (kind) {
    case RES:
        *n = sizeof res_ren / sizeof *res_ren;
        return res_ren;
    case VRES:
        *n = sizeof vres_ren / sizeof *vres_ren;
        return vres_ren;
    case VATTN:
        *n = sizeof vattn_ren / sizeof *vattn_ren;
        return vattn_ren;
    default:
        *n = 0;
        return NULL;
    }
}

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* key (ends with '.') in the `from` naming -> out in the other naming.
 * to_ldm selects the direction. */
static int map(const table *T, const char *key, int to_ldm, char *out, size_t n) {
    const kpair *best = NULL;
    size_t bl = 0;
    for (int i = 0; i < T->n; i++) {
        const char *from = to_ldm ? T->p[i].dif : T->p[i].ldm;
        size_t l = strlen(from);
        if (l > bl && !strncmp(key, from, l)) {
            best = &T->p[i];
            bl = l;
        }
    }
    if (!best)
        return 0;
    const char *rest = key + bl, *to = to_ldm ? best->ldm : best->dif;
    size_t nr;
    const ren *r = renames(best->kind, &nr);
    if (!r) {
        int k = snprintf(out, n, "%s%s", to, rest);
        return k > 0 && (size_t)k < n;
    }
    for (size_t i = 0; i < nr; i++) {
        const char *f = to_ldm ? r[i].dif : r[i].ldm, *t = to_ldm ? r[i].ldm : r[i].dif;
        if (starts(rest, f)) {
            int k = snprintf(out, n, "%s%s%s", to, t, rest + strlen(f));
            return k > 0 && (size_t)k < n;
        }
    }
    /* A module key itself ("...resnets.0." for a LoRA on the whole block)
     * has no counterpart. */
    return 0;
}

static const char *const part_prefix[3] = {SD_KM_UNET_PREFIX, SD_KM_VAE_PREFIX,
                                           SD_KM_CLIP_PREFIX};

/* Maps key + "." and drops the trailing dot again, so module names and
 * tensor names both work with the dot-terminated prefixes. */
static int map_dotted(const table *T, const char *key, int to_ldm, const char *pre, char *out,
                      size_t n) {
    char k[512], o[512];
    int kl = snprintf(k, sizeof k, "%s.", key);
    if (kl <= 1 || (size_t)kl >= sizeof k)
        return 0;
    if (T) {
        if (!map(T, k, to_ldm, o, sizeof o))
            return 0;
    } else {
        snprintf(o, sizeof o, "%s", k);
    }
    size_t ol = strlen(o);
    if (ol)
        o[ol - 1] = 0;
    int w = snprintf(out, n, "%s%s", pre, o);
    return w > 0 && (size_t)w < n;
}

int sd_km_to_ldm(sd_km_part part, const sd_km_layout *L, const char *dkey, char *out, size_t n) {
    if (part == SD_KM_CLIP) {
        /* transformers' CLIPTextModel has the LDM names under text_model.;
         * since transformers 5.6 it saves them without that level. */
        if (starts(dkey, "text_model."))
            return map_dotted(NULL, dkey, 1, SD_KM_CLIP_PREFIX, out, n);
        if (starts(dkey, "embeddings.") || starts(dkey, "encoder.") ||
            starts(dkey, "final_layer_norm."))
            return map_dotted(NULL, dkey, 1, SD_KM_CLIP_PREFIX "text_model.", out, n);
        return 0;
    }
    static _Thread_local table T;
    T.n = 0;
    if (part == SD_KM_UNET)
        build_unet(&T, L);
    else
        build_vae(&T, L);
    return map_dotted(&T, dkey, 1, part == SD_KM_UNET ? SD_KM_UNET_PREFIX : SD_KM_VAE_PREFIX, out,
                      n);
}

int sd_km_from_ldm(const sd_km_layout *L, const char *ldm, sd_km_part *part, char *out, size_t n) {
    for (int p = 0; p < 3; p++) {
        const char *pre = part_prefix[p];
        if (!starts(ldm, pre))
            continue;
        *part = (sd_km_part)p;
        const char *rest = ldm + strlen(pre);
        if (p == SD_KM_CLIP)
            return starts(rest, "text_model.") ? map_dotted(NULL, rest, 0, "", out, n) : 0;
        static _Thread_local table T;
        T.n = 0;
        if (p == SD_KM_UNET)
            build_unet(&T, L);
        else
            build_vae(&T, L);
        return map_dotted(&T, rest, 0, "", out, n);
    }
    return 0;
}

/* ---- layouts ---- */

static int has(const sd_safetensors *st, const char *fmt, int a, int b) {
    char k[256];
    snprintf(k, sizeof k, fmt, a, b);
    return sd_st_find(st, k) != NULL;
}

void sd_km_layout_from_ldm(const sd_safetensors *st, sd_km_layout *L) {
    memset(L, 0, sizeof *L);
    /* UNet: walk input blocks as src/model/arch.c does. */
    int level = 0, nres = 0, first = -1;
    for (int blk = 1; blk < 256; blk++) {
        if (has(st, SD_KM_UNET_PREFIX "input_blocks.%d.0.op.weight", blk, 0)) {
            if (first < 0)
                first = nres;
            nres = 0;
            if (++level >= SD_KM_MAX_LEVELS)
                break;
            continue;
        }
        if (!has(st, SD_KM_UNET_PREFIX "input_blocks.%d.0.in_layers.2.weight", blk, 0))
            break;
        if (nres == 0)
            L->unet_attn[level] = has(st, SD_KM_UNET_PREFIX "input_blocks.%d.1.proj_in.weight", blk, 0);
        nres++;
    }
    if (nres || level) {
        L->unet_levels = level + 1;
        L->unet_res = first >= 0 ? first : nres;
    }
    while (L->vae_levels < SD_KM_MAX_LEVELS &&
           (has(st, SD_KM_VAE_PREFIX "decoder.up.%d.block.0.conv1.weight", L->vae_levels, 0) ||
            has(st, SD_KM_VAE_PREFIX "encoder.down.%d.block.0.conv1.weight", L->vae_levels, 0)))
        L->vae_levels++;
    while (L->vae_res < 64 && has(st, SD_KM_VAE_PREFIX "encoder.down.0.block.%d.conv1.weight", L->vae_res, 0))
        L->vae_res++;
    if (!L->vae_res) {
        int d = 0;
        while (d < 64 && has(st, SD_KM_VAE_PREFIX "decoder.up.0.block.%d.conv1.weight", d, 0)) d++;
        L->vae_res = d > 0 ? d - 1 : 0;
    }
}

void sd_km_layout_from_diffusers(sd_km_part part, const sd_safetensors *st, sd_km_layout *L) {
    if (part == SD_KM_UNET) {
        L->unet_levels = 0;
        while (L->unet_levels < SD_KM_MAX_LEVELS &&
               has(st, "down_blocks.%d.resnets.0.conv1.weight", L->unet_levels, 0)) {
            L->unet_attn[L->unet_levels] =
                has(st, "down_blocks.%d.attentions.0.proj_in.weight", L->unet_levels, 0);
            L->unet_levels++;
        }
        L->unet_res = 0;
        while (L->unet_res < 64 && has(st, "down_blocks.0.resnets.%d.conv1.weight", L->unet_res, 0))
            L->unet_res++;
    } else if (part == SD_KM_VAE) {
        L->vae_levels = 0;
        while (L->vae_levels < SD_KM_MAX_LEVELS &&
               (has(st, "encoder.down_blocks.%d.resnets.0.conv1.weight", L->vae_levels, 0) ||
                has(st, "decoder.up_blocks.%d.resnets.0.conv1.weight", L->vae_levels, 0)))
            L->vae_levels++;
        L->vae_res = 0;
        while (L->vae_res < 64 && has(st, "encoder.down_blocks.0.resnets.%d.conv1.weight", L->vae_res, 0))
            L->vae_res++;
        if (!L->vae_res) {
            int d = 0;
            while (d < 64 && has(st, "decoder.up_blocks.0.resnets.%d.conv1.weight", d, 0)) d++;
            L->vae_res = d > 0 ? d - 1 : 0;
        }
    }
}
