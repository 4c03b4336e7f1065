/* The sdvk_ctx internals shared by the pipeline and the stage functions. */
#ifndef SD_CTX_H
#define SD_CTX_H

#include "backend/backend.h"
#include "model/model.h"
#include "sdvk.h"

struct sd_tokenizer;

/* A graph built for one shape, prepared on the backend, reused while the
 * key (shape, batch, steps ...) stays the same. */
typedef struct sd_cached {
    sd_graph *g;
    sd_bgraph *bg;
    int64_t key[8];
    int in[6]; /* input tensor ids, meaning per graph kind */
    int out;
} sd_cached;

struct sdvk_ctx {
    sdvk_options opt;
    char *vocab_opt;
    sd_model *model;
    sd_backend *be;
    struct sd_tokenizer *tok;
    sd_cached clip, unet, sample, dec, enc;
};

/* Returns the cached graph if its key matches; otherwise drops it and
 * returns NULL (the caller then builds, and calls sd_cache_finish). */
int sd_cache_hit(const sd_cached *c, const int64_t key[8]);
void sd_cache_drop(sdvk_ctx *ctx, sd_cached *c);
/* Plans and prepares g on the backend and stores it in c (taking g). */
sdvk_status sd_cache_finish(sdvk_ctx *ctx, sd_cached *c, sd_graph *g, const int64_t key[8]);

/* Layout conversions at the host boundary. */
void sd_nchw_to_nhwc(const float *src, float *dst, int64_t b, int64_t c, int64_t h, int64_t w);
void sd_nhwc_to_nchw(const float *src, float *dst, int64_t b, int64_t c, int64_t h, int64_t w);
/* Index of the first non-finite value, or -1. */
int64_t sd_find_nonfinite(const float *x, int64_t n);

/* Runs CLIP on ids [batch, n_pos]; out [batch, n_pos, width] (malloc'd). */
sdvk_status sd_run_clip(sdvk_ctx *ctx, const int32_t *ids, int batch, float **out);
/* DDPM loop in NHWC: x [B,h,w,4] is updated in place. ctx_nhwc is
 * [cfg != 1 ? 2B : B, L, C]. noise_table [n_steps, B,h,w,4] (rows for
 * t == 0 ignored). Runs steps first..n-1. */
sdvk_status sd_run_sample(sdvk_ctx *ctx, float *x, int64_t B, int64_t h, int64_t w,
                          const float *context, int64_t L, int n_steps, int first, float cfg,
                          const float *noise_table, sdvk_progress_fn progress, void *user);
/* VAE decode NHWC z [B,h,w,4] -> img [B,8h,8w,3] (malloc'd). */
sdvk_status sd_run_vae_decode(sdvk_ctx *ctx, const float *z, int64_t B, int64_t h, int64_t w,
                              float **img);
/* VAE encode NHWC img [B,H,W,3] -> z [B,H/8,W/8,4] (malloc'd). */
sdvk_status sd_run_vae_encode(sdvk_ctx *ctx, const float *img, int64_t B, int64_t H, int64_t W,
                              float **z);
/* UNet eval NHWC. */
sdvk_status sd_run_unet(sdvk_ctx *ctx, const float *x, int64_t B, int64_t h, int64_t w, float t,
                        const float *context, int64_t L, float **eps);

#endif
