/* diffusers folders: a pipeline folder (unet/, vae/, text_encoder/,
 * tokenizer/, each with a config.json and
 * diffusion_pytorch_model[.fp16].safetensors or model[.fp16].safetensors,
 * or the .bin / sharded-index equivalents) read as one tensor table in the
 * LDM single-file key names (src/io/keymap.h). Data stays mapped; diffusers'
 * Linear VAE attention weights [C, C] are re-viewed as the LDM 1x1 convs
 * [C, C, 1, 1] without a copy. Config values the LDM layout does not carry
 * become table metadata: sdvk.unet.num_heads (attention_head_dim /
 * num_attention_heads), sdvk.clip.num_heads, sdvk.vae.scale_factor, and
 * sdvk.tokenizer (the tokenizer/ folder, when present). */
#ifndef SD_DIFFUSERS_H
#define SD_DIFFUSERS_H

#include "keymap.h"
#include "safetensors.h"

/* 1 if dir holds at least one of unet/, vae/, text_encoder/ with weights. */
int sd_diffusers_is_pipeline(const char *dir);
/* The whole pipeline (components that are absent are left out). */
sdvk_status sd_diffusers_open(const char *dir, sd_safetensors **out);
/* One component: `path` is its folder (config.json + weights) or a weights
 * file (.safetensors, .bin) in diffusers naming. Keys come out in LDM
 * naming with the part's prefix; config metadata as above. */
sdvk_status sd_diffusers_open_part(sd_km_part part, const char *path, sd_safetensors **out);
/* Moves the diffusers-named tensors of component `part` from `src` into
 * `dst` under their LDM names (src is freed). A key with no SD v1.x
 * counterpart fails with a message naming it. */
sdvk_status sd_diffusers_absorb(sd_km_part part, sd_safetensors *dst, sd_safetensors *src);
/* Opens any weights file by its content: torch zip (.ckpt/.pt/.bin) via
 * ckpt.h, else safetensors. */
sdvk_status sd_weights_file_open(const char *path, sd_safetensors **out);

#endif
