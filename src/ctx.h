/* The sdvk_ctx internals shared by the pipeline, the stages and the runner.
 *
 * A context owns one model, one backend and, per network (CLIP, UNet, VAE
 * decoder, VAE encoder), a weight set resident on that backend, made the
 * first time a graph of the network is prepared. Prepared graphs live in a
 * small cache keyed by what shapes them (kind, batch, size, ...); every
 * graph of a network refers to the network's weight set, so a new size,
 * step count, CFG scale, sampler or seed converts no weight again. */
#ifndef SD_CTX_H
#define SD_CTX_H

#include <stdatomic.h>

#include "backend/backend.h"
#include "model/model.h"
#include "sample/sampler.h"
#include "sdvk.h"

struct sd_tokenizer;
struct sd_extra;

typedef enum sd_net { SD_NET_CLIP, SD_NET_UNET, SD_NET_VAE_DEC, SD_NET_VAE_ENC, SD_NET_COUNT } sd_net;

/* Graph kinds (key[0] of a cached graph). */
enum { SD_GK_CLIP = 1, SD_GK_UNET, SD_GK_SAMPLE, SD_GK_DEC, SD_GK_ENC };

#define SD_MAX_SIDE 4096 /* largest width/height of a generation */
#define SD_CACHE_SLOTS 8 /* prepared graphs kept at once */
#define SD_CACHE_PER_KIND 2

/* A graph built for one shape, prepared on the backend. */
typedef struct sd_cached {
    sd_graph *g;
    sd_bgraph *bg;
    sd_net net;
    int64_t key[12];
    int in[8]; /* input tensor ids, meaning per graph kind */
    int out;
    uint64_t last_use;
} sd_cached;

struct sdvk_ctx {
    sdvk_options opt;
    char *strings[6]; /* owned copies of the option strings */
    sd_model *model;
    sd_backend *be;
    struct sd_tokenizer *tok;
    sd_bweights *w[SD_NET_COUNT];
    long weights_prepared_gone; /* prepared counts of weight sets since freed */
    sd_cached cache[SD_CACHE_SLOTS];
    uint64_t clock;
    long graphs_prepared, images, model_evals, vae_tiled, cfg_split;
    double seconds_sampling, seconds_preparing;
    atomic_int cancel;
    struct sd_extra *extra; /* LoRAs merged into the resident weights, embeddings (src/extra.c) */
};

/* Sets the calling thread's log sink to ctx's (every API entry does). */
void sd_ctx_enter(const sdvk_ctx *ctx);

/* The network's resident weight set, created on first use. */
sdvk_status sd_net_weights(sdvk_ctx *ctx, sd_net net, sd_bweights **out);
/* Drops the network's cached graphs and its resident weights. */
void sd_net_release(sdvk_ctx *ctx, sd_net net);
/* keep = SDVK_KEEP_NONE: release `net` now that a generation is done with it. */
void sd_net_done(sdvk_ctx *ctx, sd_net net);

/* Cache lookup: the prepared graph with this key, or NULL. */
sd_cached *sd_cache_find(sdvk_ctx *ctx, const int64_t key[12]);
/* Plans and prepares g for `net` (taking g) into a free slot (evicting the
 * least recently used graph of the same kind beyond SD_CACHE_PER_KIND, or
 * the oldest); *out is the slot. */
sdvk_status sd_cache_add(sdvk_ctx *ctx, sd_net net, sd_graph *g, const int64_t key[12],
                         const int in[8], int out_id, sd_cached **out);
void sd_cache_drop(sdvk_ctx *ctx, sd_cached *c);

/* Memory the next run may use, in bytes: the budget (options.max_memory_mb,
 * else what the host or device has) minus what the context holds now. */
int64_t sd_mem_free(sdvk_ctx *ctx);
/* Bytes the backend will hold for `net`'s weights: resident now, or
 * estimated from the checkpoint. */
size_t sd_net_weight_bytes(sdvk_ctx *ctx, sd_net net);
/* Whether every activation of the planned g fits the backend's largest
 * tensor. */
int sd_graph_fits_backend(const sdvk_ctx *ctx, const sd_graph *g);

/* Tiled VAE (src/vae_tiled.c): the same results as sd_run_vae_decode/encode
 * in bands of bounded memory. */
sdvk_status sd_vae_tiled_decode(sdvk_ctx *ctx, const float *z, int64_t h, int64_t w, float **img);
sdvk_status sd_vae_tiled_encode(sdvk_ctx *ctx, const float *img, int64_t H, int64_t W, float **z);

/* Layout conversions at the host boundary. */
void sd_nchw_to_nhwc(const float *src, float *dst, int64_t b, int64_t c, int64_t h, int64_t w);
void sd_nhwc_to_nchw(const float *src, float *dst, int64_t b, int64_t c, int64_t h, int64_t w);
/* Index of the first non-finite value, or -1. */
int64_t sd_find_nonfinite(const float *x, int64_t n);

/* Runs CLIP on ids [batch, n_pos]; out [batch, n_pos, width] (malloc'd).
 * Ids from the vocabulary size on are rows of extra ([n_extra, width]:
 * textual-inversion vectors). clip_skip >= 2 takes the output of layer
 * (layers - clip_skip + 1) and applies the final layer norm to it (A1111's
 * "Clip skip"). */
sdvk_status sd_run_clip(sdvk_ctx *ctx, const int32_t *ids, int batch, int clip_skip,
                        const float *extra, int n_extra, float **out);

/* One sampler run on NHWC latents [B,h,w,C]. */
typedef struct sd_sample_req {
    const sd_plan *plan;
    int64_t B, h, w;
    const float *context; /* [cfg ? 2B : B, L, ctx_dim]: rows [cond...; uncond...] */
    int64_t L;
    int use_cfg;
    float *x;             /* in: the start S[0]; out: the latent to decode */
    /* [n_evals, B,h,w,C]: fresh noise of each eval that takes some (other
     * rows ignored); NULL when the plan uses none */
    const float *noise;
    /* masked: x0 (the original latent), n0 (the start noise), keep =
     * 1 - mask at latent size [B,h,w,1] */
    const float *x0, *n0, *keep;
    /* 9-channel inpainting UNet: [B,h,w,extra_ch] concatenated to its input */
    const float *extra;
    int extra_ch;
    sdvk_progress_fn progress;
    void *progress_user;
    int progress_base, progress_total; /* steps reported as base + k of total */
} sd_sample_req;
sdvk_status sd_run_sample(sdvk_ctx *ctx, const sd_sample_req *r);

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
