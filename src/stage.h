/* The stage entry points of the model tests (thin names over the public
 * sdvk_stage_* functions): run one part of the pipeline on host arrays. Arrays are float32, NCHW at this boundary
 * (whatever the backend's internal layout), as in the .npy files. Each
 * returns a malloc'd array in *out (free()) and its shape in out_ne. */
#ifndef SD_STAGE_H
#define SD_STAGE_H

#include <stdint.h>

#include "sdvk.h"

/* ids: [batch, len] token ids; len <= 77 is padded with 49407 to 77, longer
 * is rejected. Output [batch, 77, width]. */
sdvk_status sd_stage_clip(sdvk_ctx *ctx, const int32_t *ids, int batch, int len, float **out,
                          int64_t out_ne[3]);
/* latent [B,4,h,w], context [Bc,L,C] with Bc == B or 1 (broadcast).
 * Output eps [B,4,h,w]. */
sdvk_status sd_stage_unet(sdvk_ctx *ctx, const float *latent, const int64_t lat_ne[4],
                          float timestep, const float *context, const int64_t ctx_ne[3],
                          float **out, int64_t out_ne[4]);
/* latent [B,4,h,w] (scaled; 1/scale_factor is applied inside) ->
 * raw decoder output [B,3,8h,8w], not clamped. */
sdvk_status sd_stage_vae_decode(sdvk_ctx *ctx, const float *latent, const int64_t lat_ne[4],
                                float **out, int64_t out_ne[4]);
/* image [B,3,H,W] in [-1,1] -> posterior mean * scale_factor [B,4,H/8,W/8]. */
sdvk_status sd_stage_vae_encode(sdvk_ctx *ctx, const float *image, const int64_t img_ne[4],
                                float **out, int64_t out_ne[4]);
/* DDPM loop (sdvk's own generator for noise from the seed). context [2B or B, L, C]: rows [cond; uncond] when cfg != 1
 * (then 2 context rows per latent), else [B,L,C]. x0 [B,4,h,w].
 * step_noise [K,B,4,h,w] for the K steps with t > 0 (NULL: from seed). */
sdvk_status sd_stage_sample(sdvk_ctx *ctx, const float *context, const int64_t ctx_ne[3],
                            const float *x0, const int64_t lat_ne[4], int steps, float cfg,
                            const float *step_noise, const int64_t noise_ne[5], uint64_t seed,
                            float **out, int64_t out_ne[4]);

#endif
