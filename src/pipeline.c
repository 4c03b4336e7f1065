/* Generation: txt2img, img2img, inpainting, outpainting, hires fix and
 * batches over the runner (tokenizer -> CLIP -> sampler loop -> VAE).
 *
 * Noise follows A1111: picture k of a batch has its own generator seeded
 * with seed + k; it draws the starting noise first, then one field per
 * model evaluation that takes fresh noise (ancestral/SDE/LCM steps), all in
 * NCHW order so the numbers are those of torch.randn for the same seed. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ctx.h"
#include "extra.h"
#include "io/image.h"
#include "sample/noise.h"
#include "tokenizer/tokenizer.h"

#define SD_MAX_BATCH 16

void sdvk_gen_params_default(sdvk_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->prompt = "";
    p->negative_prompt = "";
    p->steps = 20;
    p->cfg_scale = 7.5f;
    p->seed = 42;
    p->sampler = SD_DEFAULT_SAMPLER;
    p->schedule = SD_DEFAULT_SCHEDULE;
    p->rng = SDVK_RNG_CPU;
    p->eta = 1.0f;
    p->clip_skip = 1;
    p->batch_size = 1;
    p->strength = 0.75f;
    p->mask_blur = 4;
    p->hires_denoise = 0.5f;
    p->hires_upscaler = SDVK_UPSCALE_LATENT;
}

void sdvk_image_free(sdvk_image *img) {
    if (!img)
        return;
    free(img->data);
    img->data = NULL;
}

void sdvk_result_free(sdvk_result *r) {
    if (!r)
        return;
    for (int i = 0; i < r->n_images; i++) {
        free(r->images ? r->images[i].data : NULL);
        free(r->infotexts ? r->infotexts[i] : NULL);
    }
    free(r->images);
    free(r->seeds);
    free(r->infotexts);
    memset(r, 0, sizeof *r);
}

/* ---- parameters ---------------------------------------------------------- */

/* A generation with every default filled in and checked. */
typedef struct gen {
    sdvk_gen_params p;
    int W, H;         /* the first pass' size (outpaint: the grown canvas) */
    int W2, H2;       /* after hires fix (= W, H without) */
    int B;            /* batch */
    int img2img, masked, inpaint9, hires;
    int f, zc;        /* VAE factor, latent channels */
    sdvk_schedule schedule;
} gen;

static sdvk_status check_size(const char *what, int v, int mult) {
    if (v < mult || v > SD_MAX_SIDE || v % mult)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s %d: must be a multiple of %d in %d..%d", what, v,
                      mult, mult, SD_MAX_SIDE);
    return SDVK_OK;
}

static sdvk_status resolve(sdvk_ctx *c, const sdvk_gen_params *in, gen *g) {
    memset(g, 0, sizeof *g);
    g->p = *in;
    sdvk_gen_params *p = &g->p;
    const sd_model *m = c->model;
    if (!m->clip.present || !m->unet.present || !m->vae.has_decoder)
        return sd_err(SDVK_ERR_MODEL, "%s: generating needs CLIP, UNet and VAE decoder weights",
                      m->path);
    sdvk_model_info info;
    SD_TRY(sdvk_model_info_get(c, &info));
    g->f = info.vae_factor;
    g->zc = m->unet.out_ch;
    if (!p->prompt)
        p->prompt = "";
    if (!p->negative_prompt)
        p->negative_prompt = "";
    if (p->width < 0 || p->height < 0)
        return sd_err(SDVK_ERR_INVALID_ARG, "size %dx%d: negative", p->width, p->height);
    g->W = p->width ? p->width : info.native_width;
    g->H = p->height ? p->height : info.native_height;
    if (p->steps < 1 || p->steps > 1000)
        return sd_err(SDVK_ERR_INVALID_ARG, "steps must be in 1..1000 (got %d)", p->steps);
    if (!isfinite(p->cfg_scale) || fabsf(p->cfg_scale) > 1000)
        return sd_err(SDVK_ERR_INVALID_ARG, "cfg scale must be finite, at most 1000 in size");
    if ((unsigned)p->sampler >= SDVK_SAMPLER_COUNT)
        return sd_err(SDVK_ERR_INVALID_ARG, "unknown sampler %d", (int)p->sampler);
    if ((unsigned)p->schedule >= SDVK_SCHEDULE_COUNT)
        return sd_err(SDVK_ERR_INVALID_ARG, "unknown schedule %d", (int)p->schedule);
    if ((unsigned)p->rng > SDVK_RNG_SDVK)
        return sd_err(SDVK_ERR_INVALID_ARG, "unknown rng %d", (int)p->rng);
    g->schedule = p->schedule == SDVK_SCHEDULE_DEFAULT ? sd_sampler_default_schedule(p->sampler)
                                                        : p->schedule;
    if (p->batch_size == 0)
        p->batch_size = 1;
    if (p->batch_size < 1 || p->batch_size > SD_MAX_BATCH)
        return sd_err(SDVK_ERR_INVALID_ARG, "batch size must be in 1..%d (got %d)", SD_MAX_BATCH,
                      p->batch_size);
    g->B = p->batch_size;
    if (p->clip_skip < 0 || p->clip_skip > m->clip.layers)
        return sd_err(SDVK_ERR_INVALID_ARG, "clip skip %d: the text encoder has %d layers",
                      p->clip_skip, m->clip.layers);
    if (p->clip_skip == 0)
        p->clip_skip = 1;
    for (int i = 0; i < 4; i++)
        if (p->outpaint[i] < 0 || p->outpaint[i] % g->f || p->outpaint[i] > SD_MAX_SIDE)
            return sd_err(SDVK_ERR_INVALID_ARG, "outpaint borders must be multiples of %d, "
                          "0..%d (got %d)", g->f, SD_MAX_SIDE, p->outpaint[i]);
    int outpaint = p->outpaint[0] || p->outpaint[1] || p->outpaint[2] || p->outpaint[3];
    if ((p->mask || outpaint) && !p->init_image)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s needs an init image",
                      p->mask ? "inpainting (a mask)" : "outpainting");
    g->img2img = p->init_image != NULL;
    g->masked = p->mask != NULL || outpaint;
    g->inpaint9 = info.inpainting;
    if (g->inpaint9 && !g->masked && g->img2img)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s is an inpainting checkpoint: img2img with it "
                      "needs a mask", m->path);
    if (g->img2img && !(p->strength > 0.0f && p->strength <= 1.0f))
        return sd_err(SDVK_ERR_INVALID_ARG, "strength must be in (0, 1] (got %g)", p->strength);
    if (g->img2img && !m->vae.has_encoder)
        return sd_err(SDVK_ERR_MODEL, "%s: img2img needs the VAE encoder", m->path);
    if (p->mask_blur < 0 || p->mask_blur > 256)
        return sd_err(SDVK_ERR_INVALID_ARG, "mask blur must be in 0..256 (got %d)", p->mask_blur);
    if (!(p->eta >= 0.0f && p->eta <= 10.0f))
        return sd_err(SDVK_ERR_INVALID_ARG, "eta must be in 0..10 (got %g)", p->eta);
    if (outpaint) {
        g->W += p->outpaint[0] + p->outpaint[2];
        g->H += p->outpaint[1] + p->outpaint[3];
    }
    SD_TRY(check_size("width", g->W, g->f));
    SD_TRY(check_size("height", g->H, g->f));
    g->W2 = g->W;
    g->H2 = g->H;
    if (p->hires_scale != 0.0f && p->hires_scale != 1.0f) {
        if (!(p->hires_scale > 1.0f && p->hires_scale <= 8.0f))
            return sd_err(SDVK_ERR_INVALID_ARG, "hires scale must be in (1, 8] (got %g)",
                          p->hires_scale);
        if (g->masked)
            return sd_err(SDVK_ERR_INVALID_ARG, "hires fix works with txt2img and img2img, not "
                          "with a mask");
        if (!(p->hires_denoise > 0.0f && p->hires_denoise <= 1.0f))
            return sd_err(SDVK_ERR_INVALID_ARG, "hires denoising strength must be in (0, 1] "
                          "(got %g)", p->hires_denoise);
        if (p->hires_steps < 0 || p->hires_steps > 1000)
            return sd_err(SDVK_ERR_INVALID_ARG, "hires steps must be in 0..1000 (got %d)",
                          p->hires_steps);
        if ((unsigned)p->hires_upscaler > SDVK_UPSCALE_LANCZOS)
            return sd_err(SDVK_ERR_INVALID_ARG, "unknown hires upscaler %d", (int)p->hires_upscaler);
        if (p->hires_upscaler == SDVK_UPSCALE_LANCZOS && !m->vae.has_encoder)
            return sd_err(SDVK_ERR_MODEL, "%s: the Lanczos hires upscaler needs the VAE encoder",
                          m->path);
        g->hires = 1;
        g->W2 = (int)((float)g->W * p->hires_scale) / g->f * g->f;
        g->H2 = (int)((float)g->H * p->hires_scale) / g->f * g->f;
        SD_TRY(check_size("hires width", g->W2, g->f));
        SD_TRY(check_size("hires height", g->H2, g->f));
    }
    return SDVK_OK;
}

/* ---- infotext ------------------------------------------------------------- */

static const char *upscaler_name(sdvk_upscaler u) {
    return u == SDVK_UPSCALE_LATENT_NEAREST ? "Latent (nearest-exact)"
           : u == SDVK_UPSCALE_LANCZOS      ? "Lanczos"
                                            : "Latent";
}

/* "dir/v1-5-pruned-emaonly.safetensors" -> "v1-5-pruned-emaonly". */
static void model_stem(const char *path, char *buf, size_t n) {
    size_t l = strlen(path);
    while (l > 1 && path[l - 1] == '/') l--;
    const char *end = path + l, *base = end;
    while (base > path && base[-1] != '/') base--;
    snprintf(buf, n, "%.*s", (int)(end - base), base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = '\0';
}

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) SD_PRINTF(2, 3);
static void sb_add(sbuf *b, const char *fmt, ...) {
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || b->n + (size_t)k + 1 > b->cap) {
        size_t cap = (b->cap + (size_t)(k > 0 ? k : 0) + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

static sdvk_status infotext(const sdvk_ctx *c, const gen *g, int k, char **out) {
    const sdvk_gen_params *p = &g->p;
    char stem[256];
    model_stem(c->model->path, stem, sizeof stem);
    sbuf b = {0};
    sb_add(&b, "%s\n", p->prompt);
    if (p->negative_prompt[0])
        sb_add(&b, "Negative prompt: %s\n", p->negative_prompt);
    sb_add(&b, "Steps: %d, Sampler: %s, Schedule type: %s, CFG scale: %g, Seed: %" PRIu64
               ", Size: %dx%d, Model: %s",
           p->steps, sdvk_sampler_display_name(p->sampler), sdvk_schedule_display_name(g->schedule),
           p->cfg_scale, p->seed + (uint64_t)k, g->W, g->H, stem);
    if (g->B > 1)
        sb_add(&b, ", Batch size: %d, Batch pos: %d", g->B, k);
    if (g->img2img)
        sb_add(&b, ", Denoising strength: %g", p->strength);
    if (p->clip_skip > 1)
        sb_add(&b, ", Clip skip: %d", p->clip_skip);
    if (p->mask)
        sb_add(&b, ", Mask blur: %d", p->mask_blur);
    if (p->outpaint[0] || p->outpaint[1] || p->outpaint[2] || p->outpaint[3])
        sb_add(&b, ", Outpaint: %d %d %d %d", p->outpaint[0], p->outpaint[1], p->outpaint[2],
               p->outpaint[3]);
    if (g->hires) {
        sb_add(&b, ", Denoising strength: %g, Hires upscale: %g, Hires steps: %d, Hires upscaler: "
                   "%s",
               p->hires_denoise, p->hires_scale, p->hires_steps, upscaler_name(p->hires_upscaler));
    }
    if (p->eta != 1.0f)
        sb_add(&b, ", Eta: %g", p->eta);
    if (p->rng != SDVK_RNG_CUDA) /* A1111 names the generator when it is not its default */
        sb_add(&b, ", RNG: %s", p->rng == SDVK_RNG_CPU ? "CPU" : "sdvk");
    sb_add(&b, ", Version: sdvk %s", sdvk_version());
    if (b.oom) {
        free(b.s);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    *out = b.s;
    return SDVK_OK;
}

sdvk_status sdvk_infotext(const sdvk_ctx *ctx, const sdvk_gen_params *p, int k, char **text) {
    if (!ctx || !p || !text)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_infotext: NULL argument");
    gen g;
    SD_TRY(resolve((sdvk_ctx *)ctx, p, &g));
    if (k < 0 || k >= g.B)
        return sd_err(SDVK_ERR_INVALID_ARG, "picture %d of a batch of %d", k, g.B);
    return infotext(ctx, &g, k, text);
}

/* ---- text ------------------------------------------------------------------- */

static sdvk_status load_tokenizer(sdvk_ctx *c) {
    if (c->tok)
        return SDVK_OK;
    char *path = NULL;
    SD_TRY(sd_tokenizer_find(c->opt.vocab_path, c->model->path, c->opt.fallback_vocab_path, &path));
    sdvk_status s = sd_tokenizer_load(path, (sd_tokenizer **)&c->tok);
    if (!s)
        sd_log_verbose("vocabulary: %s", path);
    free(path);
    return s;
}

/* Context rows for B pictures: [cond × B; uncond × B] (cond × B without
 * CFG), each L = windows × 77 tokens long. */
static sdvk_status encode_prompts(sdvk_ctx *c, const gen *g, int use_cfg, float **ctxv,
                                  int64_t *L) {
    SD_TRY(load_tokenizer(c));
    const sdvk_gen_params *p = &g->p;
    const sd_clip_arch *a = &c->model->clip;
    int32_t *ids[2] = {NULL, NULL};
    float *wts[2] = {NULL, NULL};
    int nch[2] = {0, 0}, chunked = 0, chunked_neg = 0;
    sd_extra_tok vec = {0};
    /* <lora:...> tags pick the LoRAs merged into the weights and leave the
     * prompt; names of embeddings put their vectors in the token stream */
    char *prompt = NULL;
    sdvk_status s = sd_extra_prompt_loras(c, p->prompt, &prompt);
    if (!s)
        s = sd_extra_tokenize(c, prompt, 1, &vec, &ids[0], &wts[0], &nch[0], &chunked);
    if (!s && use_cfg)
        s = sd_extra_tokenize(c, p->negative_prompt, nch[0], &vec, &ids[1], &wts[1], &nch[1],
                              &chunked_neg);
    if (!s && use_cfg && nch[1] > nch[0]) { /* negative is longer: pad the prompt */
        free(ids[0]);
        free(wts[0]);
        ids[0] = NULL;
        wts[0] = NULL;
        s = sd_extra_tokenize(c, prompt, nch[1], &vec, &ids[0], &wts[0], &nch[0], &chunked);
    }
    free(prompt);
    if (!s && (chunked || chunked_neg))
        sd_log_verbose("prompt is longer than %d tokens: encoding it as %d windows of %d",
                       a->n_pos - 2, nch[0], a->n_pos);
    const int k = nch[0], rows = use_cfg ? 2 : 1;
    int32_t *all = NULL;
    float *z = NULL, *rep = NULL;
    if (!s && a->n_pos != SD_CLIP_CTX)
        s = sd_err(SDVK_ERR_MODEL, "%s: CLIP takes %d positions; the tokenizer makes %d",
                   c->model->path, a->n_pos, SD_CLIP_CTX);
    if (!s && !(all = malloc((size_t)rows * k * SD_CLIP_CTX * sizeof *all)))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    double t0 = sd_now_s();
    if (!s) {
        for (int r = 0; r < rows; r++)
            memcpy(all + (size_t)r * k * SD_CLIP_CTX, ids[r], (size_t)k * SD_CLIP_CTX * 4);
        s = sd_run_clip(c, all, rows * k, p->clip_skip, vec.vec, vec.n_vec, &z);
    }
    if (!s) {
        sd_log_verbose("text encoder: %d x %d tokens in %.3f s", rows, k * SD_CLIP_CTX, sd_now_s() - t0);
        /* A1111 emphasis, per window (plain prompts stay bit-exact) */
        for (int r = 0; r < rows; r++)
            sd_apply_prompt_weights(z + (int64_t)r * k * SD_CLIP_CTX * a->width, wts[r], k,
                                    a->width);
        /* [rows*k, 77, W] is [rows, 77k, W] in memory; repeat each row B times */
        const int64_t row = (int64_t)k * SD_CLIP_CTX * a->width;
        if (!(rep = malloc((size_t)(rows * g->B * row) * sizeof *rep)))
            s = sd_err(SDVK_ERR_OOM, "out of memory");
        for (int r = 0; !s && r < rows; r++)
            for (int b = 0; b < g->B; b++)
                memcpy(rep + (int64_t)(r * g->B + b) * row, z + r * row, (size_t)row * sizeof *rep);
    }
    if (!s) {
        *ctxv = rep;
        *L = (int64_t)k * SD_CLIP_CTX;
    }
    free(vec.vec);
    free(z);
    free(all);
    for (int r = 0; r < 2; r++) {
        free(ids[r]);
        free(wts[r]);
    }
    return s;
}

/* ---- pixels ------------------------------------------------------------------- */

/* RGB8 -> float NHWC in [-1, 1]. */
static float *to_float(const sdvk_image *im) {
    int64_t n = (int64_t)im->width * im->height * 3;
    float *px = malloc((size_t)n * sizeof *px);
    if (px)
        for (int64_t i = 0; i < n; i++) px[i] = im->data[i] / 127.5f - 1.0f;
    return px;
}

static sdvk_status to_rgb8(const float *img, int W, int H, sdvk_image *out) {
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
    return SDVK_OK;
}

/* Any image as RGB at w x h. */
static sdvk_status rgb_at(const sdvk_image *in, int w, int h, sdvk_image *out) {
    memset(out, 0, sizeof *out);
    if (!in || !in->data || in->width < 1 || in->height < 1 ||
        (in->channels != 3 && in->channels != 1))
        return sd_err(SDVK_ERR_INVALID_ARG, "image: no data or %d channels (RGB or grey needed)",
                      in ? in->channels : 0);
    sdvk_image rgb = *in;
    uint8_t *tmp = NULL;
    if (in->channels == 1) {
        size_t n = (size_t)in->width * in->height;
        if (!(tmp = malloc(n * 3)))
            return sd_err(SDVK_ERR_OOM, "out of memory");
        for (size_t i = 0; i < n; i++) tmp[3 * i] = tmp[3 * i + 1] = tmp[3 * i + 2] = in->data[i];
        rgb.data = tmp;
        rgb.channels = 3;
    }
    sdvk_status s = sd_image_resize(&rgb, w, h, out);
    free(tmp);
    return s;
}

/* Separable Gaussian blur of a [H][W] field (A1111's mask blur: sigma =
 * radius, kernel cut at 2.5 sigma), edges clamped. */
static sdvk_status blur(float *m, int W, int H, int radius) {
    if (radius <= 0)
        return SDVK_OK;
    double sigma = radius;
    int r = (int)ceil(2.5 * sigma);
    float *k = malloc((size_t)(2 * r + 1) * sizeof *k), *t = malloc((size_t)W * H * sizeof *t);
    if (!k || !t) {
        free(k);
        free(t);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    double sum = 0;
    for (int i = -r; i <= r; i++) sum += k[i + r] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] = (float)(k[i] / sum);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float v = 0;
            for (int i = -r; i <= r; i++) {
                int xx = x + i < 0 ? 0 : x + i >= W ? W - 1 : x + i;
                v += k[i + r] * m[y * W + xx];
            }
            t[y * W + x] = v;
        }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float v = 0;
            for (int i = -r; i <= r; i++) {
                int yy = y + i < 0 ? 0 : y + i >= H ? H - 1 : y + i;
                v += k[i + r] * t[yy * W + x];
            }
            m[y * W + x] = v;
        }
    free(k);
    free(t);
    return SDVK_OK;
}

/* The init picture and the repaint mask at the canvas size: with outpaint
 * borders, the picture is placed inside a grown canvas whose border repeats
 * its edge pixels ("edge-stretched"), and the border is masked white. */
static sdvk_status prepare_init(const gen *g, sdvk_image *canvas, float **mask_px) {
    const sdvk_gen_params *p = &g->p;
    const int L = p->outpaint[0], T = p->outpaint[1];
    const int iw = g->W - L - p->outpaint[2], ih = g->H - T - p->outpaint[3];
    sdvk_image inner = {0}, msk = {0};
    *mask_px = NULL;
    memset(canvas, 0, sizeof *canvas);
    sdvk_status s = rgb_at(p->init_image, iw, ih, &inner);
    if (!s && p->mask)
        s = rgb_at(p->mask, iw, ih, &msk);
    float *m = NULL;
    if (!s && g->masked && !(m = calloc((size_t)g->W * g->H, sizeof *m)))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    if (!s && !(canvas->data = malloc((size_t)g->W * g->H * 3)))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    if (!s) {
        canvas->width = g->W;
        canvas->height = g->H;
        canvas->channels = 3;
        for (int y = 0; y < g->H; y++)
            for (int x = 0; x < g->W; x++) {
                int sx = x - L, sy = y - T, in = sx >= 0 && sy >= 0 && sx < iw && sy < ih;
                sx = sx < 0 ? 0 : sx >= iw ? iw - 1 : sx;
                sy = sy < 0 ? 0 : sy >= ih ? ih - 1 : sy;
                memcpy(canvas->data + ((size_t)y * g->W + x) * 3,
                       inner.data + ((size_t)sy * iw + sx) * 3, 3);
                if (m) { /* white = repaint: the mask's luma inside, the whole border */
                    const uint8_t *q = msk.data ? msk.data + ((size_t)sy * iw + sx) * 3 : NULL;
                    m[(size_t)y * g->W + x] =
                        !in ? 1.0f : q ? (0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2]) / 255.0f : 0.0f;
                }
            }
        if (m)
            s = blur(m, g->W, g->H, p->mask ? p->mask_blur : 0);
    }
    sdvk_image_free(&inner);
    sdvk_image_free(&msk);
    if (s) {
        sdvk_image_free(canvas);
        free(m);
        return s;
    }
    *mask_px = m;
    return SDVK_OK;
}

/* ---- the generation ------------------------------------------------------------- */

/* What a verification run (sdvk_stage_sample) gives instead of the text
 * encoder and the generators, and what it takes back instead of pictures. */
typedef struct sd_given {
    const float *context; /* [cfg ? 2B : B, L, ctx_dim] rows [cond...; uncond...] */
    int64_t L;
    const float *noise0;     /* NCHW [B, C, h, w]: the start noise */
    const float *step_noise; /* NCHW [k, B, C, h, w]: fresh noise, eval by eval */
    int k;
    float *latents;          /* out, NCHW [B, C, h, w]: before decoding (then no pictures) */
    int used;                /* out: step noise fields used */
} sd_given;

typedef struct run {
    sdvk_ctx *c;
    sd_given *given;
    int steps_taken; /* of given->step_noise */
    gen g;
    float *ctxv;
    int64_t L;
    int use_cfg;
    sd_noise *rng;     /* [B] one generator per picture */
    float *x0, *n0, *keep, *extra, *mask_px;
    sdvk_image canvas;
    int progress_total;
} run;

/* Preview of picture 0 of the batch at a sampler step: TAESD when the
 * context has one, else a linear map of the four latent channels to RGB at
 * latent size (the least-squares fit for SD v1's VAE that A1111 calls
 * "Approx cheap"): a rough picture for nothing. */
static const float latent_rgb[4][3] = {{0.3512f, 0.2297f, 0.3227f},
                                       {0.3250f, 0.4974f, 0.2350f},
                                       {-0.2829f, 0.1762f, 0.2721f},
                                       {-0.2120f, -0.2616f, -0.7177f}};

static void on_latent(void *user, int step, const float *x, int64_t B, int64_t h, int64_t w) {
    run *r = user;
    const sdvk_gen_params *p = &r->g.p;
    (void)B;
    if (!p->preview || r->g.zc != 4)
        return;
    float *rgb = NULL;
    int64_t W = w, H = h;
    if (sd_taesd_ready(r->c)) {
        if (sd_run_taesd_decode(r->c, x, 1, h, w, &rgb)) {
            sd_log("preview: %s", sdvk_last_error());
            rgb = NULL;
        } else {
            W = w * 8;
            H = h * 8;
        }
    }
    if (!rgb) {
        W = w;
        H = h;
        if (!(rgb = malloc((size_t)(h * w * 3) * sizeof *rgb)))
            return;
        for (int64_t i = 0; i < h * w; i++)
            for (int c = 0; c < 3; c++) {
                float v = 0;
                for (int k = 0; k < 4; k++) v += x[i * 4 + k] * latent_rgb[k][c];
                rgb[i * 3 + c] = isfinite(v) ? v : 0.0f;
            }
    }
    sdvk_image img = {0};
    if (!to_rgb8(rgb, (int)W, (int)H, &img))
        p->preview(p->preview_user, step, &img);
    else
        sd_err_clear();
    free(img.data);
    free(rgb);
}

/* n standard normals for picture k, NCHW order, stored NHWC at dst. */
static sdvk_status draw(run *r, int k, int64_t h, int64_t w, float *dst) {
    const int C = r->g.zc;
    const int64_t per = h * w * C;
    float *tmp = malloc((size_t)per * sizeof *tmp);
    if (!tmp)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sdvk_status s = sd_noise_randn(&r->rng[k], tmp, (size_t)per);
    if (!s)
        sd_nchw_to_nhwc(tmp, dst, 1, C, h, w);
    free(tmp);
    return s;
}

/* One sampler pass at latent h x w: x holds the start latent x_init for
 * img2img (NULL for txt2img) and gets the result. */
static sdvk_status sample_pass(run *r, const sd_plan_opts *po, int64_t h, int64_t w, float *x,
                               const float *x_init, int progress_base) {
    const gen *g = &r->g;
    const int B = g->B, C = g->zc;
    const int64_t per = h * w * C;
    sd_plan plan;
    SD_TRY(sd_plan_make(po, &plan));
    float *n0 = malloc((size_t)(B * per) * sizeof *n0);
    /* zeroed: rows of evaluations that draw no noise are still read by the
     * step graph (times a zero coefficient), and 0 * NaN from uninitialised
     * memory would be NaN */
    float *noise = plan.uses_noise ? calloc((size_t)(plan.n_evals * B * per), sizeof *noise) : NULL;
    sdvk_status s = SDVK_OK;
    if (!n0 || (plan.uses_noise && !noise))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    const sd_given *gv = r->given;
    if (!s && gv && gv->noise0) { /* the caller's noise, in the order of the evals */
        sd_nchw_to_nhwc(gv->noise0, n0, B, C, h, w);
        for (int e = 0; !s && e < plan.n_evals; e++) {
            if (!plan.eval_noise[e])
                continue;
            if (r->steps_taken >= gv->k) {
                s = sd_err(SDVK_ERR_INVALID_ARG, "step noise: %d fields given, the run needs more",
                           gv->k);
                break;
            }
            sd_nchw_to_nhwc(gv->step_noise + (int64_t)r->steps_taken++ * B * per,
                            noise + (int64_t)e * B * per, B, C, h, w);
        }
    }
    for (int k = 0; !s && !(gv && gv->noise0) && k < B; k++) {
        /* picture k: its start noise, then its step noise */
        s = draw(r, k, h, w, n0 + k * per);
        for (int e = 0; !s && e < plan.n_evals; e++)
            if (plan.eval_noise[e])
                s = draw(r, k, h, w, noise + ((int64_t)e * B + k) * per);
    }
    if (!s) {
        for (int64_t i = 0; i < B * per; i++)
            x[i] = (float)(plan.init_noise * n0[i] + (x_init ? plan.init_latent * x_init[i] : 0.0));
        sd_sample_req req = {.plan = &plan,
                             .B = B,
                             .h = h,
                             .w = w,
                             .context = r->ctxv,
                             .L = r->L,
                             .use_cfg = r->use_cfg,
                             .x = x,
                             .noise = noise,
                             .x0 = r->x0,
                             .n0 = n0,
                             .keep = r->keep,
                             .extra = r->extra,
                             .extra_ch = r->extra ? C + 1 : 0,
                             .progress = g->p.progress,
                             .progress_user = g->p.progress_user,
                             .progress_base = progress_base,
                             .progress_total = r->progress_total,
                             .on_latent = g->p.preview && g->p.preview_every > 0 ? on_latent : NULL,
                             .latent_user = r,
                             .latent_every = g->p.preview_every};
        s = sd_run_sample(r->c, &req);
    }
    sd_plan_free(&plan);
    free(n0);
    free(noise);
    return s;
}

/* Latent upscale [B,h,w,C] -> [B,h2,w2,C]: bilinear (A1111 "Latent",
 * align_corners=False) or nearest-exact. */
static void upscale_latent(const float *in, int B, int h, int w, int C, float *out, int h2, int w2,
                           int nearest) {
    for (int b = 0; b < B; b++)
        for (int y = 0; y < h2; y++)
            for (int x = 0; x < w2; x++)
                for (int c = 0; c < C; c++) {
                    float v;
                    if (nearest) {
                        int sy = (int)floor((y + 0.5) * h / h2), sx = (int)floor((x + 0.5) * w / w2);
                        sy = sy >= h ? h - 1 : sy;
                        sx = sx >= w ? w - 1 : sx;
                        v = in[(((int64_t)b * h + sy) * w + sx) * C + c];
                    } else {
                        double fy = (y + 0.5) * h / h2 - 0.5, fx = (x + 0.5) * w / w2 - 0.5;
                        if (fy < 0)
                            fy = 0;
                        if (fx < 0)
                            fx = 0;
                        int y0 = (int)fy, x0 = (int)fx;
                        int y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
                        double ay = fy - y0, ax = fx - x0;
#define L_(yy, xx) in[(((int64_t)b * h + (yy)) * w + (xx)) * C + c]
                        v = (float)((1 - ay) * ((1 - ax) * L_(y0, x0) + ax * L_(y0, x1)) +
                                    ay * ((1 - ax) * L_(y1, x0) + ax * L_(y1, x1)));
#undef L_
                    }
                    out[(((int64_t)b * h2 + y) * w2 + x) * C + c] = v;
                }
}

static sdvk_status decode_one(run *r, const float *z, int64_t h, int64_t w, float **img) {
    double t0 = sd_now_s();
    sdvk_status s = r->c->opt.taesd_final && sd_taesd_ready(r->c)
                        ? sd_run_taesd_decode(r->c, z, 1, h, w, img)
                        : sd_run_vae_decode(r->c, z, 1, h, w, img);
    if (!s)
        sd_log_verbose("%s decode %lldx%lld in %.3f s",
                       r->c->opt.taesd_final && sd_taesd_ready(r->c) ? "TAESD" : "VAE",
                       (long long)(w * r->g.f),
                       (long long)(h * r->g.f), sd_now_s() - t0);
    return s;
}

static sdvk_status encode_px(run *r, const float *px, int W, int H, float **z) {
    double t0 = sd_now_s();
    sdvk_status s = sd_run_vae_encode(r->c, px, 1, H, W, z);
    if (!s)
        sd_log_verbose("VAE encode %dx%d in %.3f s", W, H, sd_now_s() - t0);
    return s;
}

/* Latents -> pictures (one decode per picture: bounded memory), then the
 * composite with the original outside the (blurred) mask. */
static sdvk_status decode_all(run *r, const float *x, int W, int H, sdvk_result *out) {
    const gen *g = &r->g;
    const int64_t h = H / g->f, w = W / g->f, per = h * w * g->zc;
    sdvk_status s = SDVK_OK;
    for (int k = 0; k < g->B && !s; k++) {
        float *img = NULL;
        s = decode_one(r, x + k * per, h, w, &img);
        if (!s && r->mask_px) {
            for (int64_t i = 0; i < (int64_t)W * H; i++) {
                float m = r->mask_px[i];
                for (int ch = 0; ch < 3; ch++) {
                    float o = r->canvas.data[i * 3 + ch] / 127.5f - 1.0f;
                    img[i * 3 + ch] = o + m * (img[i * 3 + ch] - o);
                }
            }
        }
        if (!s)
            s = to_rgb8(img, W, H, &out->images[k]);
        free(img);
    }
    return s;
}

static void run_free(run *r) {
    free(r->ctxv);
    free(r->rng);
    free(r->x0);
    free(r->n0);
    free(r->keep);
    free(r->extra);
    free(r->mask_px);
    sdvk_image_free(&r->canvas);
}

/* The image side of img2img/inpainting: x0 (the init latent, repeated for
 * the batch), the latent keep mask and the 9-channel conditioning. */
static sdvk_status prepare_latents(run *r) {
    const gen *g = &r->g;
    const int B = g->B, C = g->zc, f = g->f;
    const int64_t h = g->H / f, w = g->W / f, per = h * w * C, hw = h * w;
    SD_TRY(prepare_init(g, &r->canvas, &r->mask_px));
    float *px = to_float(&r->canvas), *z = NULL;
    if (!px)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sdvk_status s = encode_px(r, px, g->W, g->H, &z);
    if (!s && !(r->x0 = malloc((size_t)(B * per) * sizeof *r->x0)))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    for (int k = 0; !s && k < B; k++) memcpy(r->x0 + k * per, z, (size_t)per * sizeof *z);
    float *mlat = NULL;
    if (!s && g->masked) {
        /* diffusers: the mask binarised at 0.5, then nearest to latent size */
        if (!(mlat = malloc((size_t)hw * sizeof *mlat)))
            s = sd_err(SDVK_ERR_OOM, "out of memory");
        for (int64_t y = 0; !s && y < h; y++)
            for (int64_t x = 0; x < w; x++)
                mlat[y * w + x] = r->mask_px[(y * f) * g->W + x * f] >= 0.5f ? 1.0f : 0.0f;
    }
    if (!s && g->masked && !g->inpaint9) {
        if (!(r->keep = malloc((size_t)(B * hw) * sizeof *r->keep)))
            s = sd_err(SDVK_ERR_OOM, "out of memory");
        for (int64_t i = 0; !s && i < B * hw; i++) r->keep[i] = 1.0f - mlat[i % hw];
    }
    if (!s && g->inpaint9) {
        /* [mask, VAE(image · (mask < 0.5))] per latent pixel, as
         * StableDiffusionInpaintPipeline conditions its 9-channel UNet */
        float *mz = NULL;
        for (int64_t i = 0; i < (int64_t)g->W * g->H; i++)
            if (r->mask_px[i] >= 0.5f)
                px[i * 3] = px[i * 3 + 1] = px[i * 3 + 2] = 0.0f;
        s = encode_px(r, px, g->W, g->H, &mz);
        if (!s && !(r->extra = malloc((size_t)(B * hw * (C + 1)) * sizeof *r->extra)))
            s = sd_err(SDVK_ERR_OOM, "out of memory");
        for (int k = 0; !s && k < B; k++)
            for (int64_t i = 0; i < hw; i++) {
                float *e = r->extra + (k * hw + i) * (C + 1);
                e[0] = mlat[i];
                memcpy(e + 1, mz + i * C, (size_t)C * sizeof(float));
            }
        free(mz);
    }
    free(mlat);
    free(z);
    free(px);
    return s;
}

static sdvk_status generate(sdvk_ctx *c, const sdvk_gen_params *in, sd_given *given,
                            sdvk_result *out) {
    memset(out, 0, sizeof *out);
    run r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.given = given;
    SD_TRY(resolve(c, in, &r.g));
    gen *g = &r.g;
    const sdvk_gen_params *p = &g->p;
    const int B = g->B, C = g->zc, f = g->f;
    const int64_t h = g->H / f, w = g->W / f, per = h * w * C;
    r.use_cfg = p->cfg_scale != 1.0f;
    const int hires_steps = p->hires_steps ? p->hires_steps : p->steps;
    sdvk_status s = SDVK_OK;
    out->n_images = B;
    out->images = calloc((size_t)B, sizeof *out->images);
    out->seeds = calloc((size_t)B, sizeof *out->seeds);
    out->infotexts = calloc((size_t)B, sizeof *out->infotexts);
    r.rng = calloc((size_t)B, sizeof *r.rng);
    float *x = malloc((size_t)(B * per) * sizeof *x);
    if (!out->images || !out->seeds || !out->infotexts || !r.rng || !x)
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    for (int k = 0; !s && k < B; k++) {
        out->seeds[k] = p->seed + (uint64_t)k;
        sd_noise_seed(&r.rng[k], (sd_rng_kind)p->rng, out->seeds[k]);
    }
    if (!s && given && given->context) {
        const int64_t rows = (r.use_cfg ? 2 : 1) * B;
        size_t nb = (size_t)(rows * given->L * c->model->unet.ctx_dim) * sizeof(float);
        if (!(r.ctxv = malloc(nb)))
            s = sd_err(SDVK_ERR_OOM, "out of memory");
        else
            memcpy(r.ctxv, given->context, nb);
        r.L = given->L;
    } else if (!s) {
        s = encode_prompts(c, g, r.use_cfg, &r.ctxv, &r.L);
    }
    sd_net_done(c, SD_NET_CLIP);
    if (!s && g->img2img)
        s = prepare_latents(&r);
    sd_net_done(c, SD_NET_VAE_ENC);
    sd_plan_opts po = {.sampler = p->sampler,
                       .schedule = g->schedule,
                       .steps = p->steps,
                       .strength = g->img2img ? p->strength : 1.0f,
                       .eta = p->eta,
                       .cfg = p->cfg_scale,
                       .masked = g->masked && !g->inpaint9,
                       /* diffusers' inpaint pipelines start from pure noise at strength 1 */
                       .img2img = g->img2img && !(g->masked && p->strength >= 1.0f)};
    int steps1 = 0, steps2 = 0;
    if (!s) {
        sd_plan probe;
        s = sd_plan_make(&po, &probe);
        steps1 = probe.n_steps;
        sd_plan_free(&probe);
    }
    if (!s && g->hires) {
        sd_plan_opts p2 = po;
        p2.steps = hires_steps;
        p2.strength = p->hires_denoise;
        p2.masked = 0;
        p2.img2img = 1;
        sd_plan probe;
        s = sd_plan_make(&p2, &probe);
        steps2 = probe.n_steps;
        sd_plan_free(&probe);
    }
    r.progress_total = steps1 + steps2;
    if (!s)
        s = sample_pass(&r, &po, h, w, x, r.x0, 0);
    if (!s && g->hires) {
        const int64_t h2 = g->H2 / f, w2 = g->W2 / f, per2 = h2 * w2 * C;
        float *x2 = malloc((size_t)(B * per2) * sizeof *x2), *z2 = NULL;
        if (!x2)
            s = sd_err(SDVK_ERR_OOM, "out of memory");
        if (!s && p->hires_upscaler != SDVK_UPSCALE_LANCZOS) {
            upscale_latent(x, B, (int)h, (int)w, C, x2, (int)h2, (int)w2,
                           p->hires_upscaler == SDVK_UPSCALE_LATENT_NEAREST);
        } else if (!s) { /* decode, Lanczos in pixels, encode */
            for (int k = 0; !s && k < B; k++) {
                float *img = NULL, *px = NULL;
                sdvk_image im = {0}, big = {0};
                s = decode_one(&r, x + k * per, h, w, &img);
                if (!s)
                    s = to_rgb8(img, g->W, g->H, &im);
                if (!s)
                    s = sd_image_resize(&im, g->W2, g->H2, &big);
                if (!s && !(px = to_float(&big)))
                    s = sd_err(SDVK_ERR_OOM, "out of memory");
                if (!s)
                    s = encode_px(&r, px, g->W2, g->H2, &z2);
                if (!s)
                    memcpy(x2 + k * per2, z2, (size_t)per2 * sizeof *z2);
                free(z2);
                z2 = NULL;
                free(img);
                free(px);
                sdvk_image_free(&im);
                sdvk_image_free(&big);
            }
        }
        if (!s) {
            /* A1111: the second pass draws its start noise afresh from each
             * picture's seed, at the new size */
            for (int k = 0; k < B; k++) sd_noise_seed(&r.rng[k], (sd_rng_kind)p->rng, out->seeds[k]);
            sd_plan_opts p2 = po;
            p2.steps = hires_steps;
            p2.strength = p->hires_denoise;
            p2.masked = 0;
            p2.img2img = 1;
            float *xs = malloc((size_t)(B * per2) * sizeof *xs);
            if (!xs)
                s = sd_err(SDVK_ERR_OOM, "out of memory");
            if (!s)
                s = sample_pass(&r, &p2, h2, w2, xs, x2, steps1);
            if (!s) {
                free(x);
                x = xs;
            } else {
                free(xs);
            }
        }
        free(x2);
    }
    sd_net_done(c, SD_NET_UNET);
    if (!s && given && given->latents) { /* the latents, not pictures */
        sd_nhwc_to_nchw(x, given->latents, B, C, g->H2 / f, g->W2 / f);
        given->used = r.steps_taken;
        free(x);
        run_free(&r);
        sdvk_result_free(out);
        return SDVK_OK;
    }
    if (!s)
        s = decode_all(&r, x, g->W2, g->H2, out);
    sd_net_done(c, SD_NET_VAE_DEC);
    sd_net_done(c, SD_NET_TAESD);
    for (int k = 0; !s && k < B; k++) s = infotext(c, g, k, &out->infotexts[k]);
    free(x);
    run_free(&r);
    if (s) {
        sdvk_result_free(out);
        return s;
    }
    c->images += B;
    return SDVK_OK;
}

sdvk_status sdvk_generate(sdvk_ctx *ctx, const sdvk_gen_params *p, sdvk_result *out) {
    if (!ctx || !p || !out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_generate: NULL argument");
    sd_ctx_enter(ctx);
    atomic_store(&ctx->cancel, 0);
    double t0 = sd_now_s();
    sdvk_status s = generate(ctx, p, NULL, out);
    if (!s)
        sd_log_verbose("generated %d picture(s) in %.2f s", out->n_images, sd_now_s() - t0);
    return s;
}

sdvk_status sdvk_stage_sample(sdvk_ctx *ctx, const sdvk_gen_params *p, const float *context,
                              const int64_t cn[3], const float *noise0, const int64_t ln[4],
                              const float *step_noise, const int64_t nn[5], float **out,
                              int64_t out_ne[4]) {
    if (!ctx || !p || !context || !cn || !noise0 || !ln || !out || !out_ne)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_stage_sample: NULL argument");
    sd_ctx_enter(ctx);
    atomic_store(&ctx->cancel, 0);
    const sd_model *m = ctx->model;
    if (!m->unet.present)
        return sd_err(SDVK_ERR_MODEL, "%s: the checkpoint has no UNet", m->path);
    const int64_t B = ln[0], C = ln[1], h = ln[2], w = ln[3];
    if (C != m->unet.out_ch)
        return sd_err(SDVK_ERR_INVALID_ARG, "latent has %lld channels, the UNet makes %d",
                      (long long)C, m->unet.out_ch);
    if (B < 1 || B > SD_MAX_BATCH || h < 1 || w < 1)
        return sd_err(SDVK_ERR_INVALID_ARG, "latent [%lld,%lld,%lld,%lld]: bad shape",
                      (long long)B, (long long)C, (long long)h, (long long)w);
    const int use_cfg = p->cfg_scale != 1.0f;
    if (cn[0] != (use_cfg ? 2 * B : B) || cn[2] != m->unet.ctx_dim || cn[1] < 1)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "context batch %lld: with cfg %g and latent batch %lld it must be %lld%s, "
                      "width %d",
                      (long long)cn[0], p->cfg_scale, (long long)B, (long long)(use_cfg ? 2 * B : B),
                      use_cfg ? " ([cond; uncond])" : "", m->unet.ctx_dim);
    int k = 0;
    if (step_noise) {
        if (!nn || nn[1] != B || nn[2] != C || nn[3] != h || nn[4] != w || nn[0] < 0)
            return sd_err(SDVK_ERR_INVALID_ARG, "step noise must be [K,%lld,%lld,%lld,%lld] (one "
                          "field per model evaluation that takes fresh noise)",
                          (long long)B, (long long)C, (long long)h, (long long)w);
        k = (int)nn[0];
    }
    sdvk_gen_params q = *p;
    q.prompt = q.negative_prompt = "";
    q.batch_size = (int)B;
    q.width = (int)(w * sd_vae_factor(m));
    q.height = (int)(h * sd_vae_factor(m));
    q.hires_scale = 0;
    q.progress = p->progress;
    float *lat = malloc((size_t)(B * C * h * w) * sizeof *lat);
    if (!lat)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sd_given gv = {context, cn[1], noise0, step_noise, k, lat, 0};
    sdvk_result r;
    sdvk_status s = generate(ctx, &q, &gv, &r);
    if (!s && step_noise && gv.used != k)
        s = sd_err(SDVK_ERR_INVALID_ARG, "step noise: %d fields given, the run takes %d (one per "
                   "model evaluation that takes fresh noise)", k, gv.used);
    if (s) {
        free(lat);
        return s;
    }
    memcpy(out_ne, ln, 4 * sizeof *out_ne);
    *out = lat;
    return SDVK_OK;
}

static sdvk_status one_image(sdvk_ctx *ctx, sdvk_gen_params *q, sdvk_image *out) {
    memset(out, 0, sizeof *out);
    q->batch_size = 1;
    sdvk_result r;
    SD_TRY(sdvk_generate(ctx, q, &r));
    *out = r.images[0];
    r.images[0].data = NULL;
    sdvk_result_free(&r);
    return SDVK_OK;
}

sdvk_status sdvk_txt2img(sdvk_ctx *ctx, const sdvk_gen_params *p, sdvk_image *out) {
    if (!ctx || !p || !out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_txt2img: NULL argument");
    sdvk_gen_params q = *p;
    q.init_image = NULL;
    q.mask = NULL;
    memset(q.outpaint, 0, sizeof q.outpaint);
    return one_image(ctx, &q, out);
}

sdvk_status sdvk_img2img(sdvk_ctx *ctx, const sdvk_gen_params *p, const sdvk_image *init,
                         sdvk_image *out) {
    if (!ctx || !p || !out || !init || !init->data)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_img2img: NULL argument");
    if (init->width != p->width || init->height != p->height || init->channels != 3)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "init image is %dx%dx%d; it must be %dx%d RGB (resize it first)",
                      init->width, init->height, init->channels, p->width, p->height);
    sdvk_gen_params q = *p;
    q.init_image = init;
    return one_image(ctx, &q, out);
}
