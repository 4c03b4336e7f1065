/* Checkpoint opening and architecture inference from tensor shapes, so any
 * model in the SD v1.x single-file layout loads (SD 1.5 and smaller ones). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"
#include "../io/weights.h"
#include "model.h"

#define UNET "model.diffusion_model."
#define VAE "first_stage_model."
#define CLIP "cond_stage_model.transformer.text_model."

static const sd_st_tensor *findv(const sd_model *m, const char *fmt, va_list ap) {
    char key[256];
    vsnprintf(key, sizeof key, fmt, ap);
    return sd_st_find(m->st, key);
}

static const sd_st_tensor *find(const sd_model *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const sd_st_tensor *t = findv(m, fmt, ap);
    va_end(ap);
    return t;
}

int sd_model_has(const sd_model *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const sd_st_tensor *t = findv(m, fmt, ap);
    va_end(ap);
    return t != NULL;
}

int sd_model_weight(sd_graph *g, const sd_model *m, const char *fmt, ...) {
    if (g->status)
        return -1;
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    const sd_st_tensor *t = sd_st_find(m->st, key);
    if (!t)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: missing tensor %s", m->path, key);
    if (!t->supported)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: tensor %s has dtype %s (F32, F16 or BF16 needed)",
                             m->path, key, t->dtype_str);
    if (t->ndim < 1 || t->ndim > SD_MAX_DIMS)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: tensor %s has %d dims", m->path, key, t->ndim);
    return sd_graph_weight(g, t->dtype, t->ndim, t->ne, t->data, key);
}

/* Shape check helper for inference: tensor must exist with ndim dims. */
static const sd_st_tensor *need(const sd_model *m, int ndim, const char *key) {
    const sd_st_tensor *t = sd_st_find(m->st, key);
    if (!t) {
        sd_err(SDVK_ERR_MODEL, "%s: missing tensor %s", m->path, key);
        return NULL;
    }
    if (t->ndim != ndim) {
        sd_err(SDVK_ERR_MODEL, "%s: tensor %s has %d dims, expected %d", m->path, key, t->ndim,
               ndim);
        return NULL;
    }
    return t;
}

static int meta_int(const sd_model *m, const char *key, int def) {
    const char *v = sd_st_meta(m->st, key);
    if (!v)
        return def;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end || end == v || x <= 0 || x > 4096) ? -1 : (int)x;
}

/* shape[d] of t as an architecture number: it must lie in lo..hi before it
 * is narrowed to int or divided by (a zero-size tensor holds no bytes, so
 * its other extents were never checked against the file). */
static int shape_num(const sd_model *m, const sd_st_tensor *t, int d, int64_t lo, int64_t hi,
                     const char *what, int *out) {
    int64_t v = d < t->ndim ? t->ne[d] : -1;
    if (v < lo || v > hi) {
        if (d >= t->ndim)
            sd_err(SDVK_ERR_MODEL, "%s: tensor %s has %d dims; its %s (dim %d) is missing", m->path,
                   t->name, t->ndim, what, d);
        else
            sd_err(SDVK_ERR_MODEL, "%s: tensor %s: %s is %lld (shape[%d]), outside the limit %lld..%lld",
                   m->path, t->name, what, (long long)v, d, (long long)lo, (long long)hi);
        return 0;
    }
    *out = (int)v;
    return 1;
}

#define NUM(t, d, lo, hi, what, out)                   \
    do {                                               \
        if (!shape_num(m, (t), (d), (lo), (hi), (what), (out))) \
            return SDVK_ERR_MODEL;                     \
    } while (0)

/* A count of numbered blocks, capped. */
static sdvk_status check_count(const sd_model *m, int n, const char *what) {
    if (n > SD_ARCH_MAX_BLOCKS)
        return sd_err(SDVK_ERR_MODEL, "%s: %s: more than %d (the limit)", m->path, what,
                      SD_ARCH_MAX_BLOCKS);
    return SDVK_OK;
}

static sdvk_status infer_clip(sd_model *m) {
    sd_clip_arch *a = &m->clip;
    const sd_st_tensor *tok = sd_st_find(m->st, CLIP "embeddings.token_embedding.weight");
    if (!tok)
        return SDVK_OK; /* no text encoder */
    const sd_st_tensor *pos = need(m, 2, CLIP "embeddings.position_embedding.weight");
    if (!pos || tok->ndim != 2)
        return sd_err(SDVK_ERR_MODEL, "%s: bad CLIP embeddings", m->path);
    NUM(tok, 0, 1, SD_ARCH_MAX_VOCAB, "CLIP vocabulary size", &a->vocab);
    NUM(tok, 1, 1, SD_ARCH_MAX_CHANNELS, "CLIP width", &a->width);
    NUM(pos, 0, 1, SD_ARCH_MAX_POSITIONS, "CLIP positions", &a->n_pos);
    if (pos->ne[1] != a->width)
        return sd_err(SDVK_ERR_MODEL, "%s: CLIP position embedding width %lld != %d", m->path,
                      (long long)pos->ne[1], a->width);
    while (a->layers <= SD_ARCH_MAX_BLOCKS &&
           find(m, CLIP "encoder.layers.%d.self_attn.q_proj.weight", a->layers))
        a->layers++;
    SD_TRY(check_count(m, a->layers, "CLIP encoder layers"));
    if (a->layers == 0)
        return sd_err(SDVK_ERR_MODEL, "%s: CLIP has no encoder layers", m->path);
    const sd_st_tensor *fc1 = need(m, 2, CLIP "encoder.layers.0.mlp.fc1.weight");
    if (!fc1)
        return SDVK_ERR_MODEL;
    NUM(fc1, 0, 1, 4 * SD_ARCH_MAX_CHANNELS, "CLIP MLP width", &a->ffn);
    a->heads = meta_int(m, "sdvk.clip.num_heads", a->width >= 64 ? a->width / 64 : 1);
    if (a->heads < 1 || a->width % a->heads)
        return sd_err(SDVK_ERR_MODEL, "%s: CLIP width %d not divisible into %d heads", m->path,
                      a->width, a->heads);
    a->present = 1;
    return SDVK_OK;
}

static int count_tblocks(const sd_model *m, const char *prefix) {
    int d = 0;
    while (d <= SD_ARCH_MAX_BLOCKS && find(m, "%stransformer_blocks.%d.attn1.to_q.weight", prefix, d))
        d++;
    return d;
}

static sdvk_status infer_unet(sd_model *m) {
    sd_unet_arch *a = &m->unet;
    const sd_st_tensor *w0 = sd_st_find(m->st, UNET "input_blocks.0.0.weight");
    if (!w0)
        return SDVK_OK;
    if (w0->ndim != 4)
        return sd_err(SDVK_ERR_MODEL, "%s: " UNET "input_blocks.0.0.weight is not 4-D", m->path);
    NUM(w0, 0, 1, SD_ARCH_MAX_CHANNELS, "UNet model channels", &a->ch);
    NUM(w0, 1, 1, SD_ARCH_MAX_IO_CHANNELS, "UNet input channels", &a->in_ch);
    const sd_st_tensor *te = need(m, 2, UNET "time_embed.0.weight");
    if (!te)
        return SDVK_ERR_MODEL;
    NUM(te, 0, 1, 4 * SD_ARCH_MAX_CHANNELS, "UNet time embedding width", &a->time_dim);
    if (te->ne[1] != a->ch)
        return sd_err(SDVK_ERR_MODEL, "%s: time_embed.0 input %lld != model channels %d", m->path,
                      (long long)te->ne[1], a->ch);
    /* Walk input blocks: res blocks (optionally followed by a transformer)
     * until a downsampler ends the level. */
    int blk = 1, level = 0, n_res_level = 0;
    a->n_res = -1;
    for (;; blk++) {
        if (find(m, UNET "input_blocks.%d.0.op.weight", blk)) {
            if (a->n_res < 0)
                a->n_res = n_res_level;
            else if (n_res_level != a->n_res)
                return sd_err(SDVK_ERR_MODEL, "%s: UNet levels have different res block counts",
                              m->path);
            n_res_level = 0;
            if (++level >= SD_MAX_LEVELS)
                return sd_err(SDVK_ERR_MODEL, "%s: UNet has too many levels (the limit is %d)",
                              m->path, SD_MAX_LEVELS);
            continue;
        }
        const sd_st_tensor *c = find(m, UNET "input_blocks.%d.0.in_layers.2.weight", blk);
        if (!c)
            break;
        int oc;
        NUM(c, 0, 1, SD_ARCH_MAX_CHANNELS, "UNet level channels", &oc);
        if (oc % a->ch)
            return sd_err(SDVK_ERR_MODEL, "%s: UNet level channels %d not a multiple of %d",
                          m->path, oc, a->ch);
        if (n_res_level == 0) {
            a->mult[level] = oc / a->ch;
            char pre[96];
            snprintf(pre, sizeof pre, UNET "input_blocks.%d.1.", blk);
            a->attn[level] = sd_model_has(m, "%sproj_in.weight", pre);
            a->depth[level] = a->attn[level] ? count_tblocks(m, pre) : 0;
            SD_TRY(check_count(m, a->depth[level], "UNet transformer depth"));
        }
        n_res_level++;
        SD_TRY(check_count(m, n_res_level, "UNet res blocks per level"));
    }
    if (n_res_level == 0)
        return sd_err(SDVK_ERR_MODEL, "%s: UNet's last level has no res blocks", m->path);
    if (a->n_res < 0)
        a->n_res = n_res_level;
    else if (n_res_level != a->n_res)
        return sd_err(SDVK_ERR_MODEL, "%s: UNet levels have different res block counts", m->path);
    a->levels = level + 1;
    const sd_st_tensor *out = need(m, 4, UNET "out.2.weight");
    if (!out)
        return SDVK_ERR_MODEL;
    NUM(out, 0, 1, SD_ARCH_MAX_IO_CHANNELS, "UNet output channels", &a->out_ch);
    a->mid_depth = count_tblocks(m, UNET "middle_block.1.");
    SD_TRY(check_count(m, a->mid_depth, "UNet middle transformer depth"));
    /* Context width from the first cross attention. */
    const sd_st_tensor *k = NULL;
    char key[160];
    for (int b = 1; b < blk && !k; b++) {
        snprintf(key, sizeof key, UNET "input_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", b);
        k = sd_st_find(m->st, key);
    }
    if (!k)
        k = sd_st_find(m->st, UNET "middle_block.1.transformer_blocks.0.attn2.to_k.weight");
    a->ctx_dim = 0;
    if (k)
        NUM(k, 1, 1, SD_ARCH_MAX_CHANNELS, "UNet context width", &a->ctx_dim);
    const sd_st_tensor *pin = sd_st_find(m->st, UNET "middle_block.1.proj_in.weight");
    a->linear_proj = pin && pin->ndim == 2;
    a->heads = meta_int(m, "sdvk.unet.num_heads", 8);
    if (a->heads < 1)
        return sd_err(SDVK_ERR_MODEL, "%s: bad metadata sdvk.unet.num_heads (1..4096)", m->path);
    a->present = 1;
    return SDVK_OK;
}

/* Channel multiplier of one VAE level from its first block's conv2. */
static sdvk_status vae_mult(sd_model *m, const char *side, int i) {
    sd_vae_arch *a = &m->vae;
    const sd_st_tensor *c = find(m, VAE "%s.%d.block.0.conv2.weight", side, i);
    if (!c)
        return sd_err(SDVK_ERR_MODEL, "%s: missing tensor " VAE "%s.%d.block.0.conv2.weight",
                      m->path, side, i);
    int oc;
    NUM(c, 0, 1, SD_ARCH_MAX_CHANNELS, "VAE level channels", &oc);
    if (oc % a->ch)
        return sd_err(SDVK_ERR_MODEL, "%s: VAE level channels %d not a multiple of %d", m->path,
                      oc, a->ch);
    a->mult[i] = oc / a->ch;
    return SDVK_OK;
}

static sdvk_status infer_vae(sd_model *m) {
    sd_vae_arch *a = &m->vae;
    const char *sf = sd_st_meta(m->st, "sdvk.vae.scale_factor");
    a->scale_factor = sf ? strtof(sf, NULL) : 0.18215f;
    if (!(a->scale_factor > 0 && a->scale_factor < 100))
        return sd_err(SDVK_ERR_MODEL, "%s: bad metadata sdvk.vae.scale_factor", m->path);
    const sd_st_tensor *dci = sd_st_find(m->st, VAE "decoder.conv_in.weight");
    const sd_st_tensor *eci = sd_st_find(m->st, VAE "encoder.conv_in.weight");
    if (!dci && !eci)
        return SDVK_OK;
    while (find(m, VAE "decoder.up.%d.block.0.conv1.weight", a->levels) ||
           find(m, VAE "encoder.down.%d.block.0.conv1.weight", a->levels))
        if (++a->levels >= SD_MAX_LEVELS)
            return sd_err(SDVK_ERR_MODEL, "%s: VAE has too many levels (the limit is %d)", m->path,
                          SD_MAX_LEVELS - 1);
    if (a->levels == 0)
        return sd_err(SDVK_ERR_MODEL, "%s: VAE has no levels", m->path);
    if (eci) {
        const sd_st_tensor *co = need(m, 4, VAE "encoder.conv_out.weight");
        if (!co || eci->ndim != 4)
            return co ? sd_err(SDVK_ERR_MODEL, "%s: " VAE "encoder.conv_in.weight is not 4-D", m->path)
                      : SDVK_ERR_MODEL;
        int zc2;
        NUM(eci, 0, 32, SD_ARCH_MAX_CHANNELS, "VAE channels", &a->ch);
        NUM(eci, 1, 1, SD_ARCH_MAX_IO_CHANNELS, "VAE image channels", &a->img_ch);
        NUM(co, 0, 2, 2 * SD_ARCH_MAX_IO_CHANNELS, "VAE encoder output channels (2 x latent)", &zc2);
        if (zc2 % 2)
            return sd_err(SDVK_ERR_MODEL, "%s: VAE encoder output channels %d are odd (mean and "
                          "log-variance expected)", m->path, zc2);
        a->z_ch = zc2 / 2;
        while (a->n_res <= SD_ARCH_MAX_BLOCKS &&
               find(m, VAE "encoder.down.0.block.%d.conv1.weight", a->n_res))
            a->n_res++;
        SD_TRY(check_count(m, a->n_res, "VAE res blocks per level"));
        if (a->n_res == 0)
            return sd_err(SDVK_ERR_MODEL, "%s: missing tensor " VAE "encoder.down.0.block.0.conv1.weight",
                          m->path);
        if (a->ch % 32)
            return sd_err(SDVK_ERR_MODEL, "%s: VAE channels %d not a multiple of 32 (GroupNorm)",
                          m->path, a->ch);
        for (int i = 0; i < a->levels; i++) SD_TRY(vae_mult(m, "encoder.down", i));
        a->has_encoder = 1;
    }
    if (dci) {
        const sd_st_tensor *co = need(m, 4, VAE "decoder.conv_out.weight");
        if (!co || dci->ndim != 4)
            return co ? sd_err(SDVK_ERR_MODEL, "%s: " VAE "decoder.conv_in.weight is not 4-D", m->path)
                      : SDVK_ERR_MODEL;
        int ch, zc, img_ch;
        NUM(co, 1, 32, SD_ARCH_MAX_CHANNELS, "VAE channels", &ch);
        NUM(dci, 1, 1, SD_ARCH_MAX_IO_CHANNELS, "VAE latent channels", &zc);
        NUM(co, 0, 1, SD_ARCH_MAX_IO_CHANNELS, "VAE image channels", &img_ch);
        if (a->has_encoder && (ch != a->ch || zc != a->z_ch))
            return sd_err(SDVK_ERR_MODEL, "%s: VAE encoder and decoder disagree", m->path);
        a->ch = ch;
        a->z_ch = zc;
        a->img_ch = img_ch;
        if (a->ch % 32)
            return sd_err(SDVK_ERR_MODEL, "%s: VAE channels %d not a multiple of 32 (GroupNorm)",
                          m->path, a->ch);
        int nres = 0;
        while (nres <= SD_ARCH_MAX_BLOCKS + 1 && find(m, VAE "decoder.up.0.block.%d.conv1.weight", nres))
            nres++;
        SD_TRY(check_count(m, nres - 1, "VAE res blocks per level"));
        if (nres < 2)
            return sd_err(SDVK_ERR_MODEL, "%s: VAE decoder level 0 has %d blocks (at least 2 expected)",
                          m->path, nres);
        if (a->has_encoder && nres != a->n_res + 1)
            return sd_err(SDVK_ERR_MODEL, "%s: VAE decoder has %d blocks per level, encoder %d",
                          m->path, nres, a->n_res);
        a->n_res = nres - 1;
        for (int i = 0; i < a->levels; i++) SD_TRY(vae_mult(m, "decoder.up", i));
        a->has_decoder = 1;
    }
    return SDVK_OK;
}

/* Architecture inference on an opened checkpoint (m->st set). */
static sdvk_status model_infer(sd_model *m) {
    sdvk_status s = infer_clip(m);
    if (!s)
        s = infer_unet(m);
    if (!s)
        s = infer_vae(m);
    if (!s && !m->clip.present && !m->unet.present && !m->vae.has_decoder)
        s = sd_err(SDVK_ERR_MODEL,
                   "%s: no SD v1.x networks found (expected keys under model.diffusion_model., "
                   "first_stage_model., cond_stage_model.transformer.text_model.)",
                   m->path);
    return s;
}

/* A file or folder (buf NULL), or a safetensors image in memory. */
static sdvk_status model_open(const char *path, const char *vae_path, const void *buf, size_t n,
                              sd_model **out) {
    *out = NULL;
    sd_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    /* A .safetensors file, a .ckpt or a diffusers folder, all as one table
     * in LDM key names (src/io/weights.h). */
    sdvk_status s = buf ? sd_st_open_mem(buf, n, path, &m->st) : sd_weights_open(path, vae_path, &m->st);
    if (!s)
        s = model_infer(m);
    if (s) {
        sd_model_close(m);
        return s;
    }
    *out = m;
    return SDVK_OK;
}

sdvk_status sd_model_open(const char *path, sd_model **out) {
    return sd_model_open_ex(path, NULL, out);
}

sdvk_status sd_model_open_ex(const char *path, const char *vae_path, sd_model **out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_model_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "no model path given");
    return model_open(path, vae_path, NULL, 0, out);
}

sdvk_status sd_model_open_mem(const void *buf, size_t n, const char *name, sd_model **out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_model_open_mem: out is NULL");
    if (!buf) {
        *out = NULL;
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_model_open_mem: no data");
    }
    return model_open(name && *name ? name : "model data", NULL, buf, n, out);
}

void sd_model_close(sd_model *m) {
    if (!m)
        return;
    sd_st_close(m->st);
    free(m->path);
    free(m);
}

int sd_vae_factor(const sd_model *m) { return 1 << (m->vae.levels - 1); }

void sd_model_describe(const sd_model *m, char *buf, size_t n) {
    const sd_clip_arch *c = &m->clip;
    const sd_unet_arch *u = &m->unet;
    const sd_vae_arch *v = &m->vae;
    char mult[64] = "", attn[64] = "";
    size_t o = 0, p = 0;
    for (int i = 0; i < u->levels; i++) {
        o += (size_t)snprintf(mult + o, sizeof mult - o, "%s%d", i ? "," : "", u->mult[i]);
        p += (size_t)snprintf(attn + p, sizeof attn - p, "%s%d", i ? "," : "", u->attn[i]);
    }
    snprintf(buf, n,
             "CLIP: %s width %d, %d layers, %d heads, vocab %d | UNet: %s ch %d, mult [%s], %d res, "
             "attn [%s], ctx %d, %d heads | VAE: ch %d, %d levels, %d res, z %d, scale %g%s%s",
             c->present ? "yes" : "absent", c->width, c->layers, c->heads, c->vocab,
             u->present ? "yes" : "absent", u->ch, mult, u->n_res, attn, u->ctx_dim, u->heads,
             v->ch, v->levels, v->n_res, v->z_ch, v->scale_factor,
             v->has_encoder ? ", encoder" : "", v->has_decoder ? ", decoder" : "");
}
