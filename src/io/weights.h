/* Opening an SD v1.x model's weights from whatever people have: one
 * .safetensors file, a .ckpt (torch.save zip), or a diffusers pipeline
 * folder, plus an optional separate VAE that replaces the model's
 * first_stage_model.* tensors. The result is one tensor table in the LDM
 * single-file key names that src/model reads. */
#ifndef SD_WEIGHTS_H
#define SD_WEIGHTS_H

#include "safetensors.h"

/* path: a folder -> diffusers pipeline; a file starting like a zip (or a
 * legacy pickle) -> .ckpt; anything else -> safetensors.
 * vae_path (NULL: none): a VAE in any of these forms -
 *  - LDM keys with the first_stage_model. prefix (a full checkpoint's VAE),
 *  - LDM keys without it (vae-ft-mse-840000-ema-pruned.safetensors/.ckpt:
 *    encoder.*, decoder.*, quant_conv.*, post_quant_conv.*; other keys such
 *    as loss.* are not VAE weights and are skipped),
 *  - a diffusers AutoencoderKL (a vae/ folder, a pipeline folder, or its
 *    diffusion_pytorch_model.safetensors).
 * The model's own first_stage_model.* tensors are all removed first. The
 * table's metadata "sdvk.format" says which form the model came in. */
sdvk_status sd_weights_open(const char *path, const char *vae_path, sd_safetensors **out);

#endif
