/* Public API: context life cycle, txt2img and img2img orchestration
 * (tokenizer -> CLIP -> DDPM loop with CFG -> VAE). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"
#include "ctx.h"
#include "sample/ddpm.h"
#include "tokenizer/tokenizer.h"

void sdvk_options_default(sdvk_options *o) {
    memset(o, 0, sizeof *o);
    o->backend = SDVK_BACKEND_AUTO;
    o->device_index = -1;
}

void sdvk_gen_params_default(sdvk_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->prompt = "";
    p->negative_prompt = "";
    p->width = p->height = 512;
    p->steps = 20;
    p->cfg_scale = 7.5f;
    p->seed = 42;
    p->strength = 0.75f;
}

void sdvk_image_free(sdvk_image *img) {
    if (!img)
        return;
    free(img->data);
    img->data = NULL;
}

const char *sdvk_backend_name(const sdvk_ctx *ctx) { return ctx && ctx->be ? ctx->be->name : ""; }

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
    sd_verbose = c->opt.verbose;
    if (c->opt.vocab_path && !(c->vocab_opt = strdup(c->opt.vocab_path))) {
        free(c);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    c->opt.vocab_path = c->vocab_opt;
    sdvk_status s = sd_model_open(model_path, &c->model);
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
    sd_log_verbose("backend: %s", c->be->name);
    *out = c;
    return SDVK_OK;
}

void sdvk_destroy(sdvk_ctx *c) {
    if (!c)
        return;
    if (c->be) {
        sd_cache_drop(c, &c->clip);
        sd_cache_drop(c, &c->unet);
        sd_cache_drop(c, &c->sample);
        sd_cache_drop(c, &c->dec);
        sd_cache_drop(c, &c->enc);
        sd_backend_destroy(c->be);
    }
    sd_tokenizer_free(c->tok);
    sd_model_close(c->model);
    free(c->vocab_opt);
    free(c);
}

static sdvk_status check_params(const sdvk_ctx *c, const sdvk_gen_params *p, int img2img) {
    const sd_model *m = c->model;
    if (!m->clip.present || !m->unet.present || !m->vae.has_decoder)
        return sd_err(SDVK_ERR_MODEL, "%s: generating needs CLIP, UNet and VAE decoder weights",
                      m->path);
    if (img2img && !m->vae.has_encoder)
        return sd_err(SDVK_ERR_MODEL, "%s: img2img needs the VAE encoder", m->path);
    int f = sd_vae_factor(m), need = f << (m->unet.levels - 1);
    if (p->width < need || p->height < need || p->width > 8192 || p->height > 8192 ||
        p->width % need || p->height % need)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "size %dx%d: width and height must be multiples of %d (this model's VAE "
                      "factor %d x UNet downsampling %d), up to 8192",
                      p->width, p->height, need, f, 1 << (m->unet.levels - 1));
    if (p->steps < 1 || p->steps > 1000)
        return sd_err(SDVK_ERR_INVALID_ARG, "steps must be in 1..1000 (got %d)", p->steps);
    if (!isfinite(p->cfg_scale))
        return sd_err(SDVK_ERR_INVALID_ARG, "cfg scale must be finite");
    if (img2img && !(p->strength > 0.0f && p->strength <= 1.0f))
        return sd_err(SDVK_ERR_INVALID_ARG, "strength must be in (0, 1] (got %g)", p->strength);
    return SDVK_OK;
}

static sdvk_status load_tokenizer(sdvk_ctx *c) {
    if (c->tok)
        return SDVK_OK;
    char *path = NULL;
    SD_TRY(sd_tokenizer_find(c->vocab_opt, c->model->path, &path));
    sdvk_status s = sd_tokenizer_load(path, (sd_tokenizer **)&c->tok);
    if (!s)
        sd_log_verbose("vocabulary: %s", path);
    free(path);
    return s;
}

/* Context [cond; uncond] (or just cond without CFG) for the prompts. */
static sdvk_status encode_prompts(sdvk_ctx *c, const sdvk_gen_params *p, int use_cfg, float **ctxv,
                                  int64_t *L) {
    SD_TRY(load_tokenizer(c));
    const sd_clip_arch *a = &c->model->clip;
    const char *neg = p->negative_prompt ? p->negative_prompt : "";
    int32_t *ids[2] = {NULL, NULL};
    float *wts[2] = {NULL, NULL};
    int nch[2] = {0, 0}, chunked = 0, chunked_neg = 0;
    sdvk_status s = sd_tokenize_prompt(c->tok, p->prompt ? p->prompt : "", 1, &ids[0], &wts[0],
                                       &nch[0], &chunked);
    if (!s && use_cfg)
        s = sd_tokenize_prompt(c->tok, neg, nch[0], &ids[1], &wts[1], &nch[1], &chunked_neg);
    if (!s && use_cfg && nch[1] > nch[0]) { /* negative is longer: pad the prompt */
        free(ids[0]);
        free(wts[0]);
        ids[0] = NULL;
        wts[0] = NULL;
        s = sd_tokenize_prompt(c->tok, p->prompt ? p->prompt : "", nch[1], &ids[0], &wts[0],
                               &nch[0], &chunked);
    }
    if (!s && (chunked || chunked_neg))
        sd_log("prompt is longer than %d tokens: encoding it as %d windows of %d", a->n_pos - 2,
               nch[0], a->n_pos);
    const int k = nch[0], rows = use_cfg ? 2 : 1;
    int32_t *all = NULL;
    float *z = NULL;
    if (!s && a->n_pos != 77)
        s = sd_err(SDVK_ERR_MODEL, "%s: CLIP takes %d positions; the tokenizer makes 77",
                   c->model->path, a->n_pos);
    if (!s && !(all = malloc((size_t)rows * k * 77 * sizeof *all)))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    if (!s) {
        for (int r = 0; r < rows; r++) memcpy(all + (size_t)r * k * 77, ids[r], (size_t)k * 77 * 4);
        s = sd_run_clip(c, all, rows * k, &z);
    }
    if (!s) {
        /* A1111 emphasis, per window (plain prompts stay bit-exact) */
        for (int r = 0; r < rows; r++)
            sd_apply_prompt_weights(z + (int64_t)r * k * 77 * a->width, wts[r], k, a->width);
        /* [rows*k, 77, W] is already [rows, 77k, W] in memory. */
        *ctxv = z;
        *L = (int64_t)k * 77;
    }
    free(all);
    for (int r = 0; r < 2; r++) {
        free(ids[r]);
        free(wts[r]);
    }
    return s;
}

static sdvk_status to_rgb8(sdvk_ctx *c, const float *img, int W, int H, sdvk_image *out) {
    int64_t n = (int64_t)W * H * 3, bad = sd_find_nonfinite(img, n);
    if (bad >= 0)
        return sd_err(SDVK_ERR_NUMERIC, "the decoded image contains NaN/Inf (pixel %lld); not "
                      "writing it", (long long)(bad / 3));
    out->data = malloc((size_t)n);
    if (!out->data)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        float v = (img[i] + 1.0f) * 0.5f;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        out->data[i] = (uint8_t)lrintf(v * 255.0f);
    }
    out->width = W;
    out->height = H;
    out->channels = 3;
    (void)c;
    return SDVK_OK;
}

static sdvk_status generate(sdvk_ctx *c, const sdvk_gen_params *p, const sdvk_image *init,
                            sdvk_image *out) {
    memset(out, 0, sizeof *out);
    SD_TRY(check_params(c, p, init != NULL));
    const int f = sd_vae_factor(c->model), zc = c->model->unet.in_ch;
    const int64_t h = p->height / f, w = p->width / f, per = h * w * zc;
    const int use_cfg = p->cfg_scale != 1.0f;
    float *ctxv = NULL, *x = NULL, *table = NULL, *tmp = NULL, *img = NULL, *z0 = NULL;
    int64_t L = 0;
    sd_ddpm sch = {0};
    sdvk_status s = encode_prompts(c, p, use_cfg, &ctxv, &L);
    if (!s)
        s = sd_ddpm_init(&sch, p->steps);
    if (!s) {
        x = malloc((size_t)per * sizeof *x);
        tmp = malloc((size_t)per * sizeof *tmp);
        table = calloc((size_t)p->steps * per, sizeof *table);
        if (!x || !tmp || !table)
            s = sd_err(SDVK_ERR_OOM, "out of memory");
    }
    int first = 0;
    if (!s) {
        /* Noise is drawn in NCHW order (latent first, then one field per
         * noisy step), so it does not depend on the internal layout. */
        sd_rng rng;
        sd_rng_seed(&rng, p->seed);
        sd_rng_normal(&rng, tmp, (size_t)per);
        sd_nchw_to_nhwc(tmp, x, 1, zc, h, w);
        if (init) {
            first = sd_ddpm_first_step(&sch, p->strength);
            float *px = malloc((size_t)p->width * p->height * 3 * sizeof *px);
            if (!px)
                s = sd_err(SDVK_ERR_OOM, "out of memory");
            else {
                for (int64_t i = 0; i < (int64_t)p->width * p->height * 3; i++)
                    px[i] = init->data[i] / 127.5f - 1.0f;
                s = sd_run_vae_encode(c, px, 1, p->height, p->width, &z0);
                free(px);
                if (!c->opt.keep_graphs)
                    sd_cache_drop(c, &c->enc);
            }
            if (!s) {
                double ab = sch.alpha_bar[sch.t[first]];
                float a0 = (float)sqrt(ab), a1 = (float)sqrt(1.0 - ab);
                for (int64_t i = 0; i < per; i++) x[i] = a0 * z0[i] + a1 * x[i];
            }
        }
        for (int i = first; i < p->steps && !s; i++) {
            if (sch.t[i] == 0)
                continue;
            sd_rng_normal(&rng, tmp, (size_t)per);
            sd_nchw_to_nhwc(tmp, table + (int64_t)i * per, 1, zc, h, w);
        }
    }
    if (!s)
        s = sd_run_sample(c, x, 1, h, w, ctxv, L, p->steps, first, p->cfg_scale, table,
                          p->progress, p->progress_user);
    if (!c->opt.keep_graphs) { /* free CLIP and the UNet before the VAE needs memory */
        sd_cache_drop(c, &c->clip);
        sd_cache_drop(c, &c->sample);
    }
    if (!s)
        s = sd_run_vae_decode(c, x, 1, h, w, &img);
    if (!c->opt.keep_graphs)
        sd_cache_drop(c, &c->dec);
    if (!s)
        s = to_rgb8(c, img, p->width, p->height, out);
    sd_ddpm_free(&sch);
    free(ctxv);
    free(x);
    free(tmp);
    free(table);
    free(img);
    free(z0);
    return s;
}

sdvk_status sdvk_txt2img(sdvk_ctx *ctx, const sdvk_gen_params *p, sdvk_image *out) {
    if (!ctx || !p || !out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_txt2img: NULL argument");
    return generate(ctx, p, NULL, out);
}

sdvk_status sdvk_img2img(sdvk_ctx *ctx, const sdvk_gen_params *p, const sdvk_image *init,
                         sdvk_image *out) {
    if (!ctx || !p || !out || !init || !init->data)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_img2img: NULL argument");
    if (init->width != p->width || init->height != p->height || init->channels != 3)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "init image is %dx%dx%d; it must be %dx%d RGB (resize it first)",
                      init->width, init->height, init->channels, p->width, p->height);
    return generate(ctx, p, init, out);
}
