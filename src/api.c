/* Public API: options, the context's life cycle, model info, statistics. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/status.h"
#include "ctx.h"
#include "extra.h"
#include "sample/noise.h"
#include "tokenizer/tokenizer.h"

const char *sdvk_version(void) { return "0.2.0"; }

void sdvk_free(void *p) { free(p); }

void sdvk_options_default(sdvk_options *o) {
    memset(o, 0, sizeof *o);
    o->backend = SDVK_BACKEND_AUTO;
    o->device_index = -1;
    o->keep = SDVK_KEEP_ALL;
}

void sdvk_options_from_env(sdvk_options *o) {
    const char *v = getenv("SDVK_VOCAB");
    if (v && *v)
        o->fallback_vocab_path = v;
    v = getenv("SDVK_CPU_ISA");
    if (v && *v)
        o->cpu_isa = v;
    v = getenv("SDVK_VALIDATION");
    if (v && *v && *v != '0')
        o->validation = 1;
    v = getenv("SDVK_PRECISION");
    if (v && *v) {
        static const char *names[] = {"auto", "f32", "f16", "bf16"};
        for (int k = 0; k < 4; k++)
            if (!strcasecmp(v, names[k]))
                o->precision = (sdvk_precision)k;
    }
}

const char *sdvk_rng_name(sdvk_rng r) { return sd_rng_name((sd_rng_kind)r); }
int sdvk_rng_from_name(const char *name) { return name ? sd_rng_from_name(name) : -1; }

const char *sdvk_tiling_name(sdvk_tiling t) {
    return t == SDVK_TILING_ON ? "on" : t == SDVK_TILING_OFF ? "off" : "auto";
}
int sdvk_tiling_from_name(const char *name) {
    static const char *names[] = {"auto", "on", "off"};
    for (int k = 0; name && k < 3; k++)
        if (!strcasecmp(name, names[k]))
            return k;
    return -1;
}

const char *sdvk_backend_name(const sdvk_ctx *ctx) { return ctx && ctx->be ? ctx->be->name : ""; }

/* Copies an option string into the context (the caller's may go away). */
static int own(sdvk_ctx *c, int slot, const char **field) {
    if (!*field)
        return 0;
    if (!(c->strings[slot] = strdup(*field)))
        return -1;
    *field = c->strings[slot];
    return 0;
}

sdvk_status sdvk_create(const char *model_path, const sdvk_options *opt, sdvk_ctx **out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_create: out is NULL");
    *out = NULL;
    if (!model_path || !*model_path)
        return sd_err(SDVK_ERR_INVALID_ARG, "no model path given");
    sdvk_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    if (opt)
        c->opt = *opt;
    else
        sdvk_options_default(&c->opt);
    atomic_init(&c->cancel, 0);
    sd_ctx_enter(c);
    if (own(c, 0, &c->opt.vocab_path) || own(c, 1, &c->opt.fallback_vocab_path) ||
        own(c, 2, &c->opt.cpu_isa) || own(c, 3, &c->opt.vae_path) || own(c, 4, &c->opt.lora_dir) ||
        own(c, 5, &c->opt.embedding_dir)) {
        sdvk_destroy(c);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    sdvk_status s = SDVK_OK;
    if ((unsigned)c->opt.backend > SDVK_BACKEND_VULKAN)
        s = sd_err(SDVK_ERR_INVALID_ARG, "unknown backend %d", (int)c->opt.backend);
    else if ((unsigned)c->opt.vae_tiling > SDVK_TILING_OFF)
        s = sd_err(SDVK_ERR_INVALID_ARG, "unknown VAE tiling mode %d", (int)c->opt.vae_tiling);
    else if (c->opt.max_memory_mb < 0 || c->opt.vae_tile_rows < 0)
        s = sd_err(SDVK_ERR_INVALID_ARG, "max_memory_mb and vae_tile_rows must not be negative");
    if (!s)
        s = sd_model_open_ex(model_path, c->opt.vae_path, &c->model);
    if (!s) {
        char desc[512];
        sd_model_describe(c->model, desc, sizeof desc);
        sd_log_verbose("model %s: %s", model_path, desc);
        s = sd_backend_create(c->opt.backend, &c->opt, &c->be);
    }
    if (s) {
        sdvk_destroy(c);
        return s;
    }
    c->be->cancel = &c->cancel;
    sd_log_verbose("backend: %s", c->be->name);
    *out = c;
    return SDVK_OK;
}

void sdvk_trim(sdvk_ctx *c) {
    if (!c || !c->be)
        return;
    for (int n = 0; n < SD_NET_COUNT; n++) sd_net_release(c, (sd_net)n);
    for (int i = 0; i < SD_CACHE_SLOTS; i++)
        if (c->cache[i].g)
            sd_cache_drop(c, &c->cache[i]);
    if (c->model)
        sd_st_release_pages(c->model->st);
}

void sdvk_destroy(sdvk_ctx *c) {
    if (!c)
        return;
    sdvk_trim(c);
    sd_extra_free(c->extra);
    sd_backend_destroy(c->be);
    sd_tokenizer_free(c->tok);
    sd_model_close(c->model);
    for (int i = 0; i < 6; i++) free(c->strings[i]);
    free(c);
}

void sdvk_cancel(sdvk_ctx *c) {
    if (c)
        atomic_store(&c->cancel, 1);
}

/* The size the model was trained at: SAI's modelspec.resolution ("512x512")
 * or sdvk.native_size metadata; 512 for SD v1.x otherwise. */
static void native_size(const sd_model *m, int *w, int *h) {
    *w = *h = 512;
    const char *v = sd_st_meta(m->st, "modelspec.resolution");
    int a, b;
    if (v && sscanf(v, "%dx%d", &a, &b) == 2 && a >= 8 && b >= 8 && a <= 8192 && b <= 8192) {
        *w = a / 8 * 8;
        *h = b / 8 * 8;
        return;
    }
    v = sd_st_meta(m->st, "sdvk.native_size");
    if (v && sscanf(v, "%d", &a) == 1 && a >= 8 && a <= 8192)
        *w = *h = a / 8 * 8;
}

sdvk_status sdvk_model_info_get(const sdvk_ctx *ctx, sdvk_model_info *info) {
    if (!ctx || !info)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_model_info_get: NULL argument");
    memset(info, 0, sizeof *info);
    native_size(ctx->model, &info->native_width, &info->native_height);
    info->vae_factor = ctx->model->vae.levels ? sd_vae_factor(ctx->model) : 8;
    info->size_multiple = info->vae_factor;
    info->max_side = SD_MAX_SIDE;
    info->inpainting = ctx->model->unet.present && ctx->model->unet.in_ch == 9;
    info->clip_layers = ctx->model->clip.layers;
    return SDVK_OK;
}

void sdvk_stats_get(const sdvk_ctx *ctx, sdvk_stats *st) {
    memset(st, 0, sizeof *st);
    if (!ctx)
        return;
    st->weights_prepared = ctx->weights_prepared_gone;
    for (int n = 0; n < SD_NET_COUNT; n++)
        if (ctx->w[n]) {
            sd_weight_stats ws;
            ctx->be->v->weights_stats(ctx->be, ctx->w[n], &ws);
            st->weights_prepared += ws.prepared;
            st->weights_resident += ws.entries;
            st->weight_bytes += ws.bytes;
        }
    st->graphs_prepared = ctx->graphs_prepared;
    for (int i = 0; i < SD_CACHE_SLOTS; i++) st->graphs_cached += ctx->cache[i].g != NULL;
    st->images = ctx->images;
    st->model_evals = ctx->model_evals;
    st->seconds_sampling = ctx->seconds_sampling;
    st->seconds_preparing = ctx->seconds_preparing;
    st->vae_tiled = ctx->vae_tiled;
    st->cfg_split = ctx->cfg_split;
}
