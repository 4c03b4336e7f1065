/* SD v1.x checkpoint: architecture inferred from tensor shapes, and the
 * graph builders of its three networks. Builders only add nodes to a graph;
 * they know nothing of backends. */
#ifndef SD_MODEL_H
#define SD_MODEL_H

#include "../core/graph.h"
#include "../io/safetensors.h"

#define SD_MAX_LEVELS 8

/* Ranges the architecture numbers read from a checkpoint's shapes must lie
 * in (each refusal names the tensor and the range). SD v1.5 has CLIP width
 * 768, vocabulary 49408, 77 positions, 12 layers, UNet 320 channels, VAE
 * 128 channels, 4 image/latent channels (9 for inpainting UNets). */
#define SD_ARCH_MAX_CHANNELS 16384 /* widths and channel counts */
#define SD_ARCH_MAX_IO_CHANNELS 64 /* image and latent channels */
#define SD_ARCH_MAX_VOCAB (1 << 20)
#define SD_ARCH_MAX_POSITIONS 4096
#define SD_ARCH_MAX_BLOCKS 64      /* layers, res blocks per level, transformer depth */

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
/* The same on a safetensors image in memory (not copied: buf must outlive
 * the model); name is used in messages. */
sdvk_status sd_model_open_mem(const void *buf, size_t n, const char *name, sd_model **out);
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
/* The pieces a tiled VAE run (src/vae_tiled.c) is made of: the decoder
 * head (scaled latent -> conv_in -> mid block, [B,h,w,C]) and the encoder
 * tail (down path output -> mid, norm_out, conv_out, quant_conv mean, scale),
 * which stay whole at latent size (the mid block's attention is global), and
 * between them segments: each starts at a GroupNorm (or none) and ends before
 * the next, so it is local but for that GroupNorm's statistics. */
int sd_vae_decode_head_build(sd_graph *g, const sd_model *m, int z);
int sd_vae_encode_tail_build(sd_graph *g, const sd_model *m, int h);

#define SD_VAE_MAX_SEGS 96
typedef struct sd_vae_seg {
    int src;          /* slot read: rows of the band plus a halo */
    int skip;         /* slot added at the band's own rows (-1: none) */
    int dst;          /* slot written (slot ids grow: dst is new) */
    int norm;         /* GroupNorm(32, eps 1e-6) + SiLU of src first, whole-tensor statistics */
    int resample;     /* 0; 1: nearest 2x upsample before the conv; -1: stride-2 conv */
    char norm_pre[96];  /* "...norm1." (weight/bias) */
    char conv[96];      /* the 3x3 conv ("...conv1") */
    char shortcut[96];  /* 1x1 conv applied to skip; "" = identity */
} sd_vae_seg;
typedef struct sd_vae_slot {
    int64_t h, w, c;
} sd_vae_slot;
typedef struct sd_vae_segs {
    int decode;
    int n_seg, n_slot;
    sd_vae_seg seg[SD_VAE_MAX_SEGS];
    sd_vae_slot slot[SD_VAE_MAX_SEGS + 1]; /* slot 0: head output / picture; last: result */
} sd_vae_segs;
/* The segments of the decoder (h, w: latent size; the last slot is the
 * picture) or the encoder (h, w: picture size; the last slot feeds the
 * tail). */
sdvk_status sd_vae_segments(const sd_model *m, int decode, int64_t h, int64_t w, sd_vae_segs *o);
/* One band of segment s. Inputs, made by the caller:
 *   x     [1, rows_in, W_src, C_src]: src rows with halo. Plain and norm
 *         segments: output rows y0-1 .. y0+t (t + 2); upsample: source rows
 *         y0/2-1 .. (y0+t)/2 (t/2 + 2); stride 2: rows 2y0 .. 2y0+2t (2t + 1);
 *         rows outside the picture are zero
 *   ga,gb [C_src]: the GroupNorm as x·ga + gb (norm only)
 *   mask  [1, rows_in, 1, 1]: 1 inside the picture, 0 outside (norm only)
 *   skip  [1, t, W, C_skip] or -1
 * Output [1, t, W, C_out]; upsample: [1, t + 2, W, C_out], of which rows
 * 1..t are the band. */
int sd_vae_seg_build(sd_graph *g, const sd_model *m, const sd_vae_seg *s, int x, int ga, int gb,
                     int mask, int skip);
/* Spatial downsampling factor of the VAE (8 for SD). */
int sd_vae_factor(const sd_model *m);

#endif
