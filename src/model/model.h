/* SD v1.x checkpoint: architecture inferred from tensor shapes, and the
 * graph builders of its three networks. Builders only add nodes to a graph;
 * they know nothing of backends. */
#ifndef SD_MODEL_H
#define SD_MODEL_H

#include "../core/graph.h"
#include "../io/safetensors.h"

#define SD_MAX_LEVELS 8

typedef struct sd_clip_arch {
    int present;
    int width, layers, heads, vocab, n_pos, ffn;
} sd_clip_arch;

typedef struct sd_unet_arch {
    int present;
    int in_ch, out_ch, ch, levels, n_res, ctx_dim, heads, time_dim;
    int mult[SD_MAX_LEVELS];
    int attn[SD_MAX_LEVELS];  /* level has spatial transformers */
    int depth[SD_MAX_LEVELS]; /* transformer blocks per spatial transformer */
    int mid_depth;
    int linear_proj;          /* proj_in/out are Linear (SD2-style) rather than 1x1 conv */
} sd_unet_arch;

typedef struct sd_vae_arch {
    int has_decoder, has_encoder;
    int ch, levels, n_res, z_ch, img_ch;
    int mult[SD_MAX_LEVELS];
    float scale_factor;
} sd_vae_arch;

typedef struct sd_model {
    char *path;
    sd_safetensors *st;
    sd_clip_arch clip;
    sd_unet_arch unet;
    sd_vae_arch vae;
} sd_model;

/* Opens the checkpoint and infers the architecture. A checkpoint missing a
 * whole network still opens (that network is marked absent); one whose
 * networks are inconsistent fails with a message naming the tensor. */
sdvk_status sd_model_open(const char *path, sd_model **out);
/* The same for any form src/io/weights.h reads: path is a .safetensors,
 * a .ckpt or a diffusers folder; vae_path (NULL: none) a separate VAE that
 * replaces the checkpoint's. */
sdvk_status sd_model_open_ex(const char *path, const char *vae_path, sd_model **out);
void sd_model_close(sd_model *m);
/* One line per network, for --verbose. */
void sd_model_describe(const sd_model *m, char *buf, size_t n);

/* Weight tensor `key` (printf style) as a graph weight; shape is checked
 * against ndim/ne when ne != NULL. Missing or unsupported-dtype tensors fail
 * the graph with a message naming the key and file. */
int sd_model_weight(sd_graph *g, const sd_model *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sd_model_has(const sd_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* CLIP text encoder: token embeddings [B, n_pos, width] (rows of
 * token_embedding looked up by the caller) -> final layer norm output
 * [B, n_pos, width]; clip_skip N >= 2 stops N-1 layers early (A1111 "Clip skip"). */
int sd_clip_build(sd_graph *g, const sd_model *m, int tok, int clip_skip);
/* The token embedding table (NULL when absent). */
const sd_st_tensor *sd_clip_token_table(const sd_model *m);
/* UNet: x [B,h,w,in_ch], t [B] or [1] float timesteps, ctx [B,L,ctx_dim] -> eps [B,h,w,out_ch]. */
int sd_unet_build(sd_graph *g, const sd_model *m, int x, int t, int ctx);
/* VAE decoder: z [B,h,w,4] (scaled latent) -> image [B,8h,8w,3], raw. */
int sd_vae_decode_build(sd_graph *g, const sd_model *m, int z);
/* VAE encoder: image [B,H,W,3] in [-1,1] -> posterior mean * scale [B,H/8,W/8,4]. */
int sd_vae_encode_build(sd_graph *g, const sd_model *m, int img);
/* Spatial downsampling factor of the VAE (8 for SD). */
int sd_vae_factor(const sd_model *m);

#endif
