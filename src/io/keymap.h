/* Key names: the diffusers layout (unet/, vae/, text_encoder/ module paths)
 * and the original LDM single-file layout that every sdvk model builder
 * reads. One table of module-prefix pairs, generated from the network's
 * shape (levels, res blocks per level, which levels have attention), maps
 * in both directions: diffusers folders load through it, and LoRA files
 * (which name modules the diffusers way) find their targets through it. */
#ifndef SD_KEYMAP_H
#define SD_KEYMAP_H

#include <stddef.h>

#include "safetensors.h"

#define SD_KM_MAX_LEVELS 8

#define SD_KM_UNET_PREFIX "model.diffusion_model."
#define SD_KM_VAE_PREFIX "first_stage_model."
#define SD_KM_CLIP_PREFIX "cond_stage_model.transformer."

typedef enum sd_km_part { SD_KM_UNET = 0, SD_KM_VAE = 1, SD_KM_CLIP = 2 } sd_km_part;

typedef struct sd_km_layout {
    /* UNet: levels, res blocks per down level (up levels have one more),
     * levels with spatial transformers. */
    int unet_levels, unet_res;
    int unet_attn[SD_KM_MAX_LEVELS];
    /* VAE: levels, res blocks per encoder level (the decoder has one more). */
    int vae_levels, vae_res;
} sd_km_layout;

/* Layout from LDM keys (a loaded checkpoint). Parts absent stay 0. */
void sd_km_layout_from_ldm(const sd_safetensors *st, sd_km_layout *L);
/* Layout of one diffusers component from its own keys (no prefix). */
void sd_km_layout_from_diffusers(sd_km_part part, const sd_safetensors *st, sd_km_layout *L);

/* Diffusers key of component `part` (e.g. "down_blocks.0.resnets.0.conv1.weight"
 * for the UNet, "text_model.encoder..." for CLIP) -> full LDM key
 * ("model.diffusion_model.input_blocks.1.0.in_layers.2.weight"). Works on
 * module names too (no ".weight"). Returns 1 if mapped, 0 if the key has
 * no SD v1.x counterpart. */
int sd_km_to_ldm(sd_km_part part, const sd_km_layout *L, const char *dkey, char *out, size_t n);
/* Full LDM key or module name -> diffusers name within its component
 * (*part set). Returns 1 if mapped, 0 if not. */
int sd_km_from_ldm(const sd_km_layout *L, const char *ldm, sd_km_part *part, char *out, size_t n);

#endif
