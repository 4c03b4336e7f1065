/* Model weights from any supported form (see weights.h). */
#include "weights.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/status.h"
#include "ckpt.h"
#include "diffusers.h"
#include "keymap.h"

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static int is_ldm_vae_key(const char *k) {
    return starts(k, "encoder.") || starts(k, "decoder.") || starts(k, "quant_conv.") ||
           starts(k, "post_quant_conv.");
}

typedef struct vae_ctx {
    int with_prefix; /* keys already carry first_stage_model. */
    int skipped;
} vae_ctx;

static int vae_rename(void *ud, sd_st_tensor *t, char *out, size_t n) {
    vae_ctx *c = ud;
    if (c->with_prefix) {
        if (!starts(t->name, SD_KM_VAE_PREFIX)) {
            c->skipped++;
            return 0;
        }
        snprintf(out, n, "%s", t->name);
        return 1;
    }
    if (!is_ldm_vae_key(t->name)) {
        c->skipped++;
        return 0;
    }
    int k = snprintf(out, n, SD_KM_VAE_PREFIX "%s", t->name);
    return k > 0 && (size_t)k < n ? 1 : 0;
}

/* The VAE file as a table of first_stage_model.* tensors. */
static sdvk_status open_vae(const char *vp, sd_safetensors **out) {
    *out = NULL;
    if (is_dir(vp)) {
        /* A pipeline folder (use its vae/) or the vae/ folder itself. */
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/vae", vp);
        return sd_diffusers_open_part(SD_KM_VAE, is_dir(sub) ? sub : vp, out);
    }
    sd_safetensors *src;
    SD_TRY(sd_weights_file_open(vp, &src));
    int diffusers = 0, prefixed = 0;
    for (int i = 0; i < src->n; i++) {
        const char *k = src->t[i].name;
        prefixed |= starts(k, SD_KM_VAE_PREFIX);
        diffusers |= starts(k, "encoder.down_blocks.") || starts(k, "decoder.up_blocks.") ||
                     starts(k, "decoder.mid_block.") || starts(k, "encoder.mid_block.");
    }
    sd_safetensors *dst;
    sdvk_status s = sd_st_new(vp, &dst);
    if (s) {
        sd_st_close(src);
        return s;
    }
    if (diffusers && !prefixed) {
        s = sd_diffusers_absorb(SD_KM_VAE, dst, src);
    } else {
        vae_ctx c = {prefixed, 0};
        s = sd_st_absorb(dst, src, vae_rename, &c);
        if (!s && c.skipped)
            sd_log_verbose("%s: %d tensors that are not VAE weights skipped", vp, c.skipped);
    }
    if (!s && dst->n == 0)
        s = sd_err(SDVK_ERR_MODEL,
                   "%s: no VAE weights found (expected encoder.*/decoder.* keys, with or without "
                   "first_stage_model., or a diffusers AutoencoderKL)",
                   vp);
    if (!s)
        s = sd_st_seal(dst);
    if (s) {
        sd_st_close(dst);
        return s;
    }
    *out = dst;
    return SDVK_OK;
}

sdvk_status sd_weights_open(const char *path, const char *vae_path, sd_safetensors **out) {
    *out = NULL;
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "no model path given");
    sd_safetensors *st = NULL;
    const char *fmt;
    if (is_dir(path)) {
        SD_TRY(sd_diffusers_open(path, &st));
        fmt = "diffusers";
    } else {
        SD_TRY(sd_weights_file_open(path, &st));
        fmt = st->map ? "safetensors" : "ckpt";
    }
    sdvk_status s = sd_st_set_meta(st, "sdvk.format", fmt);
    if (!s && vae_path && *vae_path) {
        sd_safetensors *vae = NULL;
        s = open_vae(vae_path, &vae);
        if (!s) {
            const char *sf = sd_st_meta(vae, "sdvk.vae.scale_factor");
            if (sf)
                s = sd_st_set_meta(st, "sdvk.vae.scale_factor", sf);
        }
        if (!s) {
            int removed = sd_st_remove_prefix(st, SD_KM_VAE_PREFIX);
            sd_log_verbose("VAE %s replaces %d tensors of %s with %d", vae_path, removed, path,
                           vae->n);
            s = sd_st_absorb(st, vae, NULL, NULL);
            vae = NULL;
        }
        sd_st_close(vae);
        if (!s)
            s = sd_st_seal(st);
    }
    if (s) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SDVK_OK;
}
