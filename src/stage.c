/* Stage entry points: NCHW host arrays in and out, NHWC inside. */
#include "stage.h"

#include <stdlib.h>
#include <string.h>

#include "sample/noise.h"
#include "core/status.h"
#include "ctx.h"

#define CLIP_PAD 49407

static float *alloc_f(int64_t n) { return n > 0 ? malloc((size_t)n * sizeof(float)) : NULL; }

sdvk_status sdvk_stage_clip(sdvk_ctx *ctx, const int32_t *ids, int batch, int len, int clip_skip,
                            float **out, int64_t out_ne[3]) {
    if (!ctx || !ids || !out || !out_ne)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_stage_clip: NULL argument");
    sd_ctx_enter(ctx);
    const sd_clip_arch *a = &ctx->model->clip;
    if (!a->present)
        return sd_err(SDVK_ERR_MODEL, "%s: the checkpoint has no CLIP text encoder",
                      ctx->model->path);
    if (batch < 1 || len < 1 || len > a->n_pos)
        return sd_err(SDVK_ERR_INVALID_ARG, "tokens: %d rows of %d ids (1..%d ids per row)", batch,
                      len, a->n_pos);
    int32_t *full = malloc((size_t)batch * a->n_pos * sizeof *full);
    if (!full)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < a->n_pos; i++)
            full[b * a->n_pos + i] = i < len ? ids[b * len + i] : CLIP_PAD;
    sdvk_status s = sd_run_clip(ctx, full, batch, clip_skip, NULL, 0, out);
    free(full);
    if (!s) {
        out_ne[0] = batch;
        out_ne[1] = a->n_pos;
        out_ne[2] = a->width;
    }
    return s;
}

/* context [Bc,L,C] with Bc == B or 1 -> [B,L,C] (copy when broadcasting). */
static sdvk_status broadcast_ctx(const float *ctxv, const int64_t ne[3], int64_t B, float **own,
                                 const float **use) {
    *own = NULL;
    *use = ctxv;
    if (ne[0] == B)
        return SDVK_OK;
    if (ne[0] != 1)
        return sd_err(SDVK_ERR_INVALID_ARG, "context batch %lld does not match latent batch %lld",
                      (long long)ne[0], (long long)B);
    int64_t row = ne[1] * ne[2];
    *own = alloc_f(B * row);
    if (!*own)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    for (int64_t b = 0; b < B; b++) memcpy(*own + b * row, ctxv, (size_t)row * sizeof(float));
    *use = *own;
    return SDVK_OK;
}

sdvk_status sdvk_stage_unet(sdvk_ctx *ctx, const float *latent, const int64_t ln[4],
                            float timestep, const float *context, const int64_t cn[3], float **out,
                            int64_t out_ne[4]) {
    if (!ctx || !latent || !ln || !context || !cn || !out || !out_ne)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_stage_unet: NULL argument");
    sd_ctx_enter(ctx);
    const sd_unet_arch *a = &ctx->model->unet;
    if (!a->present)
        return sd_err(SDVK_ERR_MODEL, "%s: the checkpoint has no UNet", ctx->model->path);
    if (ln[1] != a->in_ch)
        return sd_err(SDVK_ERR_INVALID_ARG, "latent has %lld channels, the UNet takes %d",
                      (long long)ln[1], a->in_ch);
    if (cn[2] != a->ctx_dim)
        return sd_err(SDVK_ERR_INVALID_ARG, "context width %lld, the UNet takes %d",
                      (long long)cn[2], a->ctx_dim);
    float *own, *x = alloc_f(ln[0] * ln[1] * ln[2] * ln[3]), *eps = NULL;
    const float *cv;
    if (!x)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sdvk_status s = broadcast_ctx(context, cn, ln[0], &own, &cv);
    if (!s) {
        sd_nchw_to_nhwc(latent, x, ln[0], ln[1], ln[2], ln[3]);
        s = sd_run_unet(ctx, x, ln[0], ln[2], ln[3], timestep, cv, cn[1], &eps);
    }
    if (!s) {
        sd_nhwc_to_nchw(eps, x, ln[0], a->out_ch, ln[2], ln[3]);
        memcpy(out_ne, ln, 4 * sizeof *out_ne);
        out_ne[1] = a->out_ch;
        *out = x;
        x = NULL;
    }
    free(own);
    free(eps);
    free(x);
    return s;
}

sdvk_status sdvk_stage_vae_decode(sdvk_ctx *ctx, const float *latent, const int64_t ln[4],
                                  float **out, int64_t out_ne[4]) {
    if (!ctx || !latent || !ln || !out || !out_ne)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_stage_vae_decode: NULL argument");
    sd_ctx_enter(ctx);
    const sd_vae_arch *a = &ctx->model->vae;
    if (!a->has_decoder)
        return sd_err(SDVK_ERR_MODEL, "%s: the checkpoint has no VAE decoder", ctx->model->path);
    if (ln[1] != a->z_ch)
        return sd_err(SDVK_ERR_INVALID_ARG, "latent has %lld channels, the VAE takes %d",
                      (long long)ln[1], a->z_ch);
    int64_t f = sd_vae_factor(ctx->model), H = ln[2] * f, W = ln[3] * f;
    float *x = alloc_f(ln[0] * ln[1] * ln[2] * ln[3]), *img = NULL, *o = NULL;
    if (!x)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sd_nchw_to_nhwc(latent, x, ln[0], ln[1], ln[2], ln[3]);
    sdvk_status s = sd_run_vae_decode(ctx, x, ln[0], ln[2], ln[3], &img);
    if (!s && !(o = alloc_f(ln[0] * a->img_ch * H * W)))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    if (!s) {
        sd_nhwc_to_nchw(img, o, ln[0], a->img_ch, H, W);
        out_ne[0] = ln[0];
        out_ne[1] = a->img_ch;
        out_ne[2] = H;
        out_ne[3] = W;
        *out = o;
    }
    free(x);
    free(img);
    return s;
}

sdvk_status sdvk_stage_vae_encode(sdvk_ctx *ctx, const float *image, const int64_t in[4],
                                  float **out, int64_t out_ne[4]) {
    if (!ctx || !image || !in || !out || !out_ne)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_stage_vae_encode: NULL argument");
    sd_ctx_enter(ctx);
    const sd_vae_arch *a = &ctx->model->vae;
    if (!a->has_encoder)
        return sd_err(SDVK_ERR_MODEL, "%s: the checkpoint has no VAE encoder", ctx->model->path);
    int64_t f = sd_vae_factor(ctx->model);
    if (in[1] != a->img_ch || in[2] % f || in[3] % f)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "image [%lld,%lld,%lld,%lld]: needs %d channels and sides divisible by %lld",
                      (long long)in[0], (long long)in[1], (long long)in[2], (long long)in[3],
                      a->img_ch, (long long)f);
    float *x = alloc_f(in[0] * in[1] * in[2] * in[3]), *z = NULL, *o = NULL;
    if (!x)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sd_nchw_to_nhwc(image, x, in[0], in[1], in[2], in[3]);
    sdvk_status s = sd_run_vae_encode(ctx, x, in[0], in[2], in[3], &z);
    int64_t h = in[2] / f, w = in[3] / f;
    if (!s && !(o = alloc_f(in[0] * a->z_ch * h * w)))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    if (!s) {
        sd_nhwc_to_nchw(z, o, in[0], a->z_ch, h, w);
        out_ne[0] = in[0];
        out_ne[1] = a->z_ch;
        out_ne[2] = h;
        out_ne[3] = w;
        *out = o;
    }
    free(x);
    free(z);
    return s;
}

static sd_plan_opts plan_opts(const sdvk_gen_params *p) {
    sd_plan_opts po = {.sampler = p->sampler,
                       .schedule = p->schedule,
                       .steps = p->steps,
                       .strength = 1.0f,
                       .eta = p->eta,
                       .cfg = p->cfg_scale};
    return po;
}

sdvk_status sdvk_sample_noise_draws(const sdvk_gen_params *p, int *k) {
    if (!p || !k)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_sample_noise_draws: NULL argument");
    sd_plan_opts po = plan_opts(p);
    sd_plan pl;
    SD_TRY(sd_plan_make(&po, &pl));
    *k = 0;
    for (int e = 0; e < pl.n_evals; e++) *k += pl.eval_noise[e];
    sd_plan_free(&pl);
    return SDVK_OK;
}

sdvk_status sdvk_randn(sdvk_rng rng, uint64_t seed, float *out, size_t n) {
    if (!out && n)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_randn: NULL output");
    if ((unsigned)rng > SDVK_RNG_SDVK)
        return sd_err(SDVK_ERR_INVALID_ARG, "unknown rng %d", (int)rng);
    sd_noise g;
    sd_noise_seed(&g, (sd_rng_kind)rng, seed);
    return sd_noise_randn(&g, out, n);
}

/* ---- the internal names the model tests use ---- */

sdvk_status sd_stage_clip(sdvk_ctx *ctx, const int32_t *ids, int batch, int len, float **out,
                          int64_t out_ne[3]) {
    return sdvk_stage_clip(ctx, ids, batch, len, 1, out, out_ne);
}
sdvk_status sd_stage_unet(sdvk_ctx *ctx, const float *latent, const int64_t lat_ne[4],
                          float timestep, const float *context, const int64_t ctx_ne[3],
                          float **out, int64_t out_ne[4]) {
    return sdvk_stage_unet(ctx, latent, lat_ne, timestep, context, ctx_ne, out, out_ne);
}
sdvk_status sd_stage_vae_decode(sdvk_ctx *ctx, const float *latent, const int64_t lat_ne[4],
                                float **out, int64_t out_ne[4]) {
    return sdvk_stage_vae_decode(ctx, latent, lat_ne, out, out_ne);
}
sdvk_status sd_stage_vae_encode(sdvk_ctx *ctx, const float *image, const int64_t img_ne[4],
                                float **out, int64_t out_ne[4]) {
    return sdvk_stage_vae_encode(ctx, image, img_ne, out, out_ne);
}
sdvk_status sd_stage_sample(sdvk_ctx *ctx, const float *context, const int64_t ctx_ne[3],
                            const float *x0, const int64_t lat_ne[4], int steps, float cfg,
                            const float *step_noise, const int64_t noise_ne[5], uint64_t seed,
                            float **out, int64_t out_ne[4]) {
    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.sampler = SDVK_SAMPLER_DDPM;
    p.schedule = SDVK_SCHEDULE_DISCRETE;
    p.rng = SDVK_RNG_SDVK;
    p.steps = steps;
    p.cfg_scale = cfg;
    p.seed = seed;
    return sdvk_stage_sample(ctx, &p, context, ctx_ne, x0, lat_ne, step_noise, noise_ne, out,
                             out_ne);
}
