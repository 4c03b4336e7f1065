/* diffusers folders as LDM tensor tables (see diffusers.h). */
#include "diffusers.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/status.h"
#include "ckpt.h"

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

sdvk_status sd_weights_file_open(const char *path, sd_safetensors **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sd_err(SDVK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[8] = {0};
    ssize_t k = read(fd, head, sizeof head);
    close(fd);
    if (k > 0 && sd_ckpt_magic(head, (size_t)k))
        return sd_ckpt_open(path, out);
    return sd_st_open(path, out);
}

/* ---- weights files of one component ---- */

static const char *const unet_files[] = {
    "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.safetensors.index.json",
    "diffusion_pytorch_model.bin", "diffusion_pytorch_model.bin.index.json",
    "diffusion_pytorch_model.fp16.bin", "diffusion_pytorch_model.fp16.bin.index.json", NULL};
static const char *const te_files[] = {
    "model.safetensors", "model.safetensors.index.json", "model.fp16.safetensors",
    "model.fp16.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    "pytorch_model.fp16.bin", "pytorch_model.fp16.bin.index.json", NULL};

static const char *find_weights(const char *dir, sd_km_part part, char *buf, size_t n) {
    const char *const *c = part == SD_KM_CLIP ? te_files : unet_files;
    for (; *c; c++) {
        int k = snprintf(buf, n, "%s/%s", dir, *c);
        if (k > 0 && (size_t)k < n && is_file(buf))
            return buf;
    }
    return NULL;
}

static int ends(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* A sharded checkpoint: {"weight_map": {tensor: file}} names the shards. */
static sdvk_status open_index(const char *path, sd_safetensors **out) {
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return sd_err(SDVK_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", path, je.text, je.line);
    json_t *wm = json_object_get(root, "weight_map");
    sdvk_status s = SDVK_OK;
    sd_safetensors *all = NULL;
    if (!json_is_object(wm)) {
        s = sd_err(SDVK_ERR_FORMAT, "%s: no \"weight_map\" object", path);
        goto done;
    }
    if ((s = sd_st_new(path, &all)) != SDVK_OK)
        goto done;
    /* Each shard once, in the order first named. */
    json_t *seen = json_object();
    const char *key;
    json_t *v;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *sl = strrchr(dir, '/');
    if (sl)
        *sl = 0;
    else
        snprintf(dir, sizeof dir, ".");
    json_object_foreach(wm, key, v) {
        const char *f = json_string_value(v);
        if (!f || strchr(f, '/') || !strcmp(f, "..") || !*f) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: bad shard name for \"%s\"", path, key);
            break;
        }
        if (!seen || json_object_get(seen, f))
            continue;
        json_object_set_new(seen, f, json_true());
        char sp[4352];
        snprintf(sp, sizeof sp, "%s/%s", dir, f);
        sd_safetensors *sh;
        if ((s = sd_weights_file_open(sp, &sh)) != SDVK_OK)
            break;
        if ((s = sd_st_absorb(all, sh, NULL, NULL)) != SDVK_OK)
            break;
    }
    json_decref(seen);
    if (!s)
        s = sd_st_seal(all);
done:
    json_decref(root);
    if (s) {
        sd_st_close(all);
        return s;
    }
    *out = all;
    return SDVK_OK;
}

static sdvk_status open_weights(const char *path, sd_safetensors **out) {
    if (ends(path, ".index.json"))
        return open_index(path, out);
    return sd_weights_file_open(path, out);
}

/* ---- configs ---- */

static sdvk_status read_config(const char *dir, sd_km_part part, sd_safetensors *dst) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!is_file(path))
        return SDVK_OK; /* defaults (SD v1.x) */
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c)
        return sd_err(SDVK_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", path, je.text, je.line);
    sdvk_status s = SDVK_OK;
    char buf[64];
    json_t *g = json_object_get(c, "norm_num_groups");
    if (part != SD_KM_CLIP && json_is_integer(g) && json_integer_value(g) != 32) {
        s = sd_err(SDVK_ERR_UNSUPPORTED, "%s: norm_num_groups %lld (sdvk's SD v1.x graphs use 32)",
                   path, (long long)json_integer_value(g));
        goto done;
    }
    if (part == SD_KM_UNET) {
        /* SD v1.x configs call the head count attention_head_dim (a
         * historical misnomer diffusers keeps); num_attention_heads wins
         * when set. */
        json_t *h = json_object_get(c, "num_attention_heads");
        if (!json_is_integer(h) && !json_is_array(h))
            h = json_object_get(c, "attention_head_dim");
        long long heads = -1;
        if (json_is_integer(h)) {
            heads = json_integer_value(h);
        } else if (json_is_array(h) && json_array_size(h) > 0) {
            size_t i;
            json_t *x;
            json_array_foreach(h, i, x) {
                if (!json_is_integer(x) || (heads >= 0 && json_integer_value(x) != heads)) {
                    s = sd_err(SDVK_ERR_UNSUPPORTED,
                               "%s: a different attention head count per level is not supported",
                               path);
                    goto done;
                }
                heads = json_integer_value(x);
            }
        }
        if (heads != -1) {
            if (heads < 1 || heads > 4096) {
                s = sd_err(SDVK_ERR_FORMAT, "%s: bad attention head count %lld", path, heads);
                goto done;
            }
            snprintf(buf, sizeof buf, "%lld", heads);
            if ((s = sd_st_set_meta(dst, "sdvk.unet.num_heads", buf)) != SDVK_OK)
                goto done;
        }
    } else if (part == SD_KM_CLIP) {
        json_t *h = json_object_get(c, "num_attention_heads");
        if (json_is_integer(h)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(h));
            if ((s = sd_st_set_meta(dst, "sdvk.clip.num_heads", buf)) != SDVK_OK)
                goto done;
        }
        json_t *act = json_object_get(c, "hidden_act");
        if (json_is_string(act) && strcmp(json_string_value(act), "quick_gelu")) {
            s = sd_err(SDVK_ERR_UNSUPPORTED,
                       "%s: hidden_act \"%s\" (SD v1.x's CLIP text encoder uses quick_gelu)", path,
                       json_string_value(act));
            goto done;
        }
    } else {
        json_t *f = json_object_get(c, "scaling_factor");
        if (json_is_number(f)) {
            snprintf(buf, sizeof buf, "%.9g", json_number_value(f));
            if ((s = sd_st_set_meta(dst, "sdvk.vae.scale_factor", buf)) != SDVK_OK)
                goto done;
        }
    }
done:
    json_decref(c);
    return s;
}

/* ---- renaming ---- */

typedef struct ren_ctx {
    sd_km_part part;
    sd_km_layout L;
    const char *src;
} ren_ctx;

static int rename_fn(void *ud, sd_st_tensor *t, char *out, size_t n) {
    ren_ctx *r = ud;
    if (!sd_km_to_ldm(r->part, &r->L, t->name, out, n)) {
        sd_err(SDVK_ERR_FORMAT,
               "%s: tensor \"%s\" has no SD v1.x counterpart (not an SD v1.x %s?)", r->src,
               t->name, r->part == SD_KM_UNET ? "UNet" : r->part == SD_KM_VAE ? "VAE" : "text encoder");
        return -1;
    }
    /* diffusers keeps the VAE attention projections as Linear [C, C] (and
     * very old files as conv1d [C, C, 1]); LDM has 1x1 convs: same bytes. */
    if (r->part == SD_KM_VAE && (t->ndim == 2 || t->ndim == 3) && ends(out, ".weight") &&
        strstr(out, ".attn_1.") && !ends(out, ".norm.weight")) {
        t->ne[2] = 1;
        t->ne[3] = 1;
        t->ndim = 4;
    }
    return 1;
}

sdvk_status sd_diffusers_absorb(sd_km_part part, sd_safetensors *dst, sd_safetensors *src) {
    ren_ctx r = {part, {0}, src->path};
    sd_km_layout_from_diffusers(part, src, &r.L);
    char label[4096];
    snprintf(label, sizeof label, "%s", src->path);
    r.src = label; /* src is freed by absorb, also on failure */
    return sd_st_absorb(dst, src, rename_fn, &r);
}

static const char *const part_dir[3] = {"unet", "vae", "text_encoder"};

/* One component folder's weights and config into dst. */
static sdvk_status load_part_dir(sd_km_part part, const char *dir, sd_safetensors *dst) {
    char wp[4096];
    if (!find_weights(dir, part, wp, sizeof wp))
        return sd_err(SDVK_ERR_IO, "%s: no %s weights (expected %s)", dir, part_dir[part],
                      part == SD_KM_CLIP ? "model[.fp16].safetensors or pytorch_model.bin"
                                         : "diffusion_pytorch_model[.fp16].safetensors or .bin");
    SD_TRY(read_config(dir, part, dst));
    sd_safetensors *src;
    SD_TRY(open_weights(wp, &src));
    return sd_diffusers_absorb(part, dst, src);
}

int sd_diffusers_is_pipeline(const char *dir) {
    char p[4096], w[4096];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, part_dir[i]);
        if (is_dir(p) && find_weights(p, (sd_km_part)i, w, sizeof w))
            return 1;
    }
    return 0;
}

sdvk_status sd_diffusers_open(const char *dir, sd_safetensors **out) {
    *out = NULL;
    if (!sd_diffusers_is_pipeline(dir))
        return sd_err(SDVK_ERR_MODEL,
                      "%s: a folder but not a diffusers pipeline (no unet/, vae/ or text_encoder/ "
                      "with weights)",
                      dir);
    sd_safetensors *st;
    SD_TRY(sd_st_new(dir, &st));
    sdvk_status s = SDVK_OK;
    char p[4096];
    for (int i = 0; i < 3 && !s; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, part_dir[i]);
        if (is_dir(p))
            s = load_part_dir((sd_km_part)i, p, st);
    }
    snprintf(p, sizeof p, "%s/tokenizer", dir);
    if (!s && is_dir(p))
        s = sd_st_set_meta(st, "sdvk.tokenizer", p);
    if (!s)
        s = sd_st_set_meta(st, "sdvk.format", "diffusers");
    if (!s)
        s = sd_st_seal(st);
    if (s) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SDVK_OK;
}

sdvk_status sd_diffusers_open_part(sd_km_part part, const char *path, sd_safetensors **out) {
    *out = NULL;
    sd_safetensors *st;
    SD_TRY(sd_st_new(path, &st));
    sdvk_status s;
    if (is_dir(path)) {
        s = load_part_dir(part, path, st);
    } else {
        sd_safetensors *src;
        s = open_weights(path, &src);
        if (!s)
            s = sd_diffusers_absorb(part, st, src);
    }
    if (!s)
        s = sd_st_seal(st);
    if (s) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SDVK_OK;
}
