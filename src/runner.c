/* Builds, caches and runs the graphs of the three networks on the
 * context's backend. Everything here is channels-last (NHWC). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ctx.h"
#include "sample/ddpm.h"

int sd_cache_hit(const sd_cached *c, const int64_t key[8]) {
    return c->g && !memcmp(c->key, key, sizeof c->key);
}

void sd_cache_drop(sdvk_ctx *ctx, sd_cached *c) {
    if (c->bg)
        ctx->be->v->release(ctx->be, c->bg);
    sd_graph_free(c->g);
    memset(c, 0, sizeof *c);
}

sdvk_status sd_cache_finish(sdvk_ctx *ctx, sd_cached *c, sd_graph *g, const int64_t key[8]) {
    sdvk_status s = g->status ? sd_err(g->status, "%s", g->err) : sd_graph_plan(g);
    if (!s) {
        sd_log_verbose("graph: %d nodes, %d tensors, activation arena %.1f MiB", g->nn, g->nt,
                       g->arena_size / 1048576.0);
        s = ctx->be->v->prepare(ctx->be, g, &c->bg);
    }
    if (s) {
        sd_graph_free(g);
        c->g = NULL;
        c->bg = NULL;
        return s;
    }
    c->g = g;
    memcpy(c->key, key, sizeof c->key);
    sd_st_release_pages(ctx->model->st);
    return SDVK_OK;
}

void sd_nchw_to_nhwc(const float *src, float *dst, int64_t b, int64_t c, int64_t h, int64_t w) {
    for (int64_t n = 0; n < b; n++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++)
                    dst[((n * h + y) * w + x) * c + k] = src[((n * c + k) * h + y) * w + x];
}

void sd_nhwc_to_nchw(const float *src, float *dst, int64_t b, int64_t c, int64_t h, int64_t w) {
    for (int64_t n = 0; n < b; n++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++)
                    dst[((n * c + k) * h + y) * w + x] = src[((n * h + y) * w + x) * c + k];
}

int64_t sd_find_nonfinite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return -1;
}

static sdvk_status write_in(sdvk_ctx *ctx, sd_cached *c, int id, const void *src) {
    return ctx->be->v->write(ctx->be, c->bg, id, src, sd_tensor_nbytes(&c->g->t[id]));
}

/* Reads tensor id into a fresh buffer. */
static sdvk_status read_out(sdvk_ctx *ctx, sd_cached *c, int id, float **out) {
    size_t n = sd_tensor_nbytes(&c->g->t[id]);
    *out = malloc(n);
    if (!*out)
        return sd_err(SDVK_ERR_OOM, "out of memory (%zu bytes)", n);
    sdvk_status s = ctx->be->v->read(ctx->be, c->bg, id, *out, n);
    if (s) {
        free(*out);
        *out = NULL;
    }
    return s;
}

static sdvk_status need_net(int present, const sdvk_ctx *ctx, const char *what) {
    if (!present)
        return sd_err(SDVK_ERR_MODEL, "%s: the checkpoint has no %s", ctx->model->path, what);
    return SDVK_OK;
}

/* A graph with one input and one output (CLIP, VAE decode/encode), built by
 * `build` on a cache miss and run once on `in`. */
typedef int (*build1_fn)(sd_graph *g, const sd_model *m, int in);

static sdvk_status run1(sdvk_ctx *ctx, sd_cached *c, const int64_t key[8], sd_dtype dt,
                        int ndim, const int64_t *ne, const char *name, build1_fn build,
                        const void *in, float **out) {
    if (!sd_cache_hit(c, key)) {
        sd_cache_drop(ctx, c);
        sd_graph *g = sd_graph_new();
        if (!g)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        c->in[0] = sd_graph_input(g, dt, ndim, ne, name);
        c->out = sd_graph_output(g, build(g, ctx->model, c->in[0]));
        SD_TRY(sd_cache_finish(ctx, c, g, key));
    }
    SD_TRY(write_in(ctx, c, c->in[0], in));
    SD_TRY(ctx->be->v->run(ctx->be, c->bg, 0, 1, NULL, NULL));
    return read_out(ctx, c, c->out, out);
}

sdvk_status sd_run_clip(sdvk_ctx *ctx, const int32_t *ids, int batch, float **out) {
    const sd_clip_arch *a = &ctx->model->clip;
    SD_TRY(need_net(a->present, ctx, "CLIP text encoder"));
    for (int64_t i = 0; i < (int64_t)batch * a->n_pos; i++)
        if (ids[i] < 0 || ids[i] >= a->vocab)
            return sd_err(SDVK_ERR_INVALID_ARG, "token id %d at position %lld is outside the "
                          "model's vocabulary (0..%d)", ids[i], (long long)i, a->vocab - 1);
    int64_t key[8] = {batch}, ne[2] = {batch, a->n_pos};
    return run1(ctx, &ctx->clip, key, SD_I32, 2, ne, "tokens", sd_clip_build, ids, out);
}

static sdvk_status check_latent(const sdvk_ctx *ctx, int64_t h, int64_t w) {
    int64_t down = (int64_t)1 << (ctx->model->unet.levels - 1);
    if (h < 1 || w < 1 || h % down || w % down)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "latent %lldx%lld: this UNet needs latent sides divisible by %lld (image "
                      "sides divisible by %lld)",
                      (long long)w, (long long)h, (long long)down,
                      (long long)(down * sd_vae_factor(ctx->model)));
    return SDVK_OK;
}

sdvk_status sd_run_unet(sdvk_ctx *ctx, const float *x, int64_t B, int64_t h, int64_t w, float t,
                        const float *context, int64_t L, float **eps) {
    const sd_unet_arch *a = &ctx->model->unet;
    SD_TRY(need_net(a->present, ctx, "UNet"));
    SD_TRY(check_latent(ctx, h, w));
    int64_t key[8] = {B, h, w, L};
    sd_cached *c = &ctx->unet;
    if (!sd_cache_hit(c, key)) {
        sd_cache_drop(ctx, c);
        sd_graph *g = sd_graph_new();
        if (!g)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        int64_t xne[4] = {B, h, w, a->in_ch}, tne[1] = {B}, cne[3] = {B, L, a->ctx_dim};
        c->in[0] = sd_graph_input(g, SD_F32, 4, xne, "latent");
        c->in[1] = sd_graph_input(g, SD_F32, 1, tne, "timestep");
        c->in[2] = sd_graph_input(g, SD_F32, 3, cne, "context");
        c->out = sd_graph_output(g, sd_unet_build(g, ctx->model, c->in[0], c->in[1], c->in[2]));
        SD_TRY(sd_cache_finish(ctx, c, g, key));
    }
    float *tv = malloc((size_t)B * sizeof *tv);
    if (!tv)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    for (int64_t i = 0; i < B; i++) tv[i] = t;
    sdvk_status s = write_in(ctx, c, c->in[0], x);
    if (!s)
        s = write_in(ctx, c, c->in[1], tv);
    if (!s)
        s = write_in(ctx, c, c->in[2], context);
    free(tv);
    if (!s)
        s = ctx->be->v->run(ctx->be, c->bg, 0, 1, NULL, NULL);
    return s ? s : read_out(ctx, c, c->out, eps);
}

typedef struct {
    sdvk_progress_fn fn;
    void *user;
    int first, total;
} progress_fwd;

static int on_step(void *user, int step) {
    progress_fwd *p = user;
    return p->fn ? p->fn(p->user, step - p->first + 1, p->total) : 0;
}

sdvk_status sd_run_sample(sdvk_ctx *ctx, float *x, int64_t B, int64_t h, int64_t w,
                          const float *context, int64_t L, int n_steps, int first, float cfg,
                          const float *noise_table, sdvk_progress_fn progress, void *user) {
    const sd_unet_arch *a = &ctx->model->unet;
    SD_TRY(need_net(a->present, ctx, "UNet"));
    SD_TRY(check_latent(ctx, h, w));
    if (!isfinite(cfg))
        return sd_err(SDVK_ERR_INVALID_ARG, "cfg scale must be finite");
    if (first < 0 || first >= n_steps)
        return sd_err(SDVK_ERR_INVALID_ARG, "first step %d outside 0..%d", first, n_steps - 1);
    sd_ddpm sch;
    SD_TRY(sd_ddpm_init(&sch, n_steps));
    const int use_cfg = cfg != 1.0f;
    const int64_t nb = use_cfg ? 2 * B : B;
    uint32_t cfg_bits;
    memcpy(&cfg_bits, &cfg, 4);
    int64_t key[8] = {B, h, w, L, n_steps, use_cfg, cfg_bits};
    sd_cached *c = &ctx->sample;
    sdvk_status s = SDVK_OK;
    if (!sd_cache_hit(c, key)) {
        sd_cache_drop(ctx, c);
        sd_graph *g = sd_graph_new();
        if (!g) {
            sd_ddpm_free(&sch);
            return sd_err(SDVK_ERR_OOM, "out of memory");
        }
        int64_t xne[4] = {B, h, w, a->in_ch}, cne[3] = {nb, L, a->ctx_dim};
        int64_t tne[2] = {n_steps, nb}, kne[2] = {n_steps, 3};
        int64_t nne[4] = {n_steps, B, h, w * a->in_ch};
        int xi = c->in[0] = sd_graph_input(g, SD_F32, 4, xne, "latent");
        int ci = c->in[1] = sd_graph_input(g, SD_F32, 3, cne, "context");
        int ti = c->in[2] = sd_graph_input(g, SD_F32, 2, tne, "timesteps");
        int ki = c->in[3] = sd_graph_input(g, SD_F32, 2, kne, "coefficients");
        int ni = c->in[4] = sd_graph_input(g, SD_F32, 4, nne, "noise");
        int xin = use_cfg ? sd_concat(g, xi, xi, 0) : xi;
        int eps = sd_unet_build(g, ctx->model, xin, sd_step_select(g, ti), ci);
        if (use_cfg)
            eps = sd_cfg_combine(g, eps, cfg);
        int noise = sd_graph_reshape(g, sd_step_select(g, ni), 4, xne);
        int xn = sd_sampler_step(g, xi, eps, noise, sd_step_select(g, ki));
        sd_copy_into(g, xn, xi);
        c->out = xi;
        s = sd_cache_finish(ctx, c, g, key);
    }
    float *tt = s ? NULL : malloc((size_t)(n_steps * nb) * sizeof *tt);
    if (!s && !tt)
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    if (!s) {
        for (int i = 0; i < n_steps; i++)
            for (int64_t j = 0; j < nb; j++) tt[i * nb + j] = (float)sch.t[i];
        s = write_in(ctx, c, c->in[0], x);
    }
    if (!s)
        s = write_in(ctx, c, c->in[1], context);
    if (!s)
        s = write_in(ctx, c, c->in[2], tt);
    if (!s)
        s = write_in(ctx, c, c->in[3], sch.coef);
    if (!s)
        s = write_in(ctx, c, c->in[4], noise_table);
    free(tt);
    if (!s) {
        progress_fwd pf = {progress, user, first, n_steps - first};
        s = ctx->be->v->run(ctx->be, c->bg, first, n_steps - first, on_step, &pf);
    }
    if (!s)
        s = ctx->be->v->read(ctx->be, c->bg, c->in[0], x, sd_tensor_nbytes(&c->g->t[c->in[0]]));
    sd_ddpm_free(&sch);
    if (!s) {
        int64_t bad = sd_find_nonfinite(x, B * h * w * a->in_ch);
        if (bad >= 0)
            s = sd_err(SDVK_ERR_NUMERIC, "the sampled latent contains NaN/Inf (element %lld)",
                       (long long)bad);
    }
    return s;
}

sdvk_status sd_run_vae_decode(sdvk_ctx *ctx, const float *z, int64_t B, int64_t h, int64_t w,
                              float **img) {
    const sd_vae_arch *a = &ctx->model->vae;
    SD_TRY(need_net(a->has_decoder, ctx, "VAE decoder"));
    int64_t key[8] = {B, h, w}, ne[4] = {B, h, w, a->z_ch};
    return run1(ctx, &ctx->dec, key, SD_F32, 4, ne, "latent", sd_vae_decode_build, z, img);
}

sdvk_status sd_run_vae_encode(sdvk_ctx *ctx, const float *img, int64_t B, int64_t H, int64_t W,
                              float **z) {
    const sd_vae_arch *a = &ctx->model->vae;
    SD_TRY(need_net(a->has_encoder, ctx, "VAE encoder"));
    int64_t key[8] = {B, H, W}, ne[4] = {B, H, W, a->img_ch};
    return run1(ctx, &ctx->enc, key, SD_F32, 4, ne, "image", sd_vae_encode_build, img, z);
}
