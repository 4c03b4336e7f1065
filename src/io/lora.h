/* LoRA files for SD v1.x: which weight each low-rank pair targets, and the
 * merge arithmetic. The engine decides where the merged weights live.
 *
 * Key styles read (.safetensors, or .pt/.ckpt through ckpt.h):
 *  - kohya / A1111: "lora_unet_<module>.lora_down.weight", ".lora_up.weight",
 *    ".alpha", "lora_te_<module>..." with <module> the diffusers module path
 *    with '_' for '.' (lora_unet_down_blocks_0_attentions_0_proj_in,
 *    lora_te_text_model_encoder_layers_0_self_attn_q_proj), or the LDM path
 *    (lora_unet_input_blocks_1_1_proj_in). LoCon conv layers (down
 *    [r, in, kh, kw], up [out, r, 1, 1]) included.
 *  - diffusers / PEFT: "unet.<module>.lora_A.weight" / ".lora_B.weight" and
 *    "text_encoder.<module>...", alpha from "<module>.alpha" tensors or the
 *    safetensors metadata "lora_adapter_metadata" ({"unet.lora_alpha": a,
 *    "unet.alpha_pattern": {...}, ...}), else alpha = rank.
 *  - older diffusers attention processors: "<module>.processor.to_q_lora.down.weight"
 *    (unet), "<module>.lora_linear_layer.down.weight" (text encoder).
 * A key naming a module this model does not have is ignored and counted
 * (n_ignored, ignored_note); a key on a module it has but in a form this
 * reader cannot apply (LoHa, LoKr, DoRA, a missing half, a wrong shape) is
 * an error, never dropped. */
#ifndef SD_LORA_H
#define SD_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

typedef struct sd_lora_mod {
    char *target;                  /* LDM weight key: "...proj_in.weight" */
    char *source;                  /* module name as in the file */
    const sd_st_tensor *up, *down; /* in the LoRA's table */
    float alpha;                   /* == rank when the file gives none */
    int rank;
    int64_t out_dim, in_dim; /* target viewed as [out_dim, in_dim] (in_dim = in*kh*kw) */
} sd_lora_mod;

typedef struct sd_lora {
    char *path;
    sd_safetensors *st;
    sd_lora_mod *mods; /* sorted by target */
    int n_mods;
    int n_unet, n_te;   /* modules per network */
    int n_ignored;      /* tensors of the file not used */
    char ignored_note[512]; /* counts by reason and the first names */
} sd_lora;

/* model: the checkpoint's table (LDM names), to resolve and check targets. */
sdvk_status sd_lora_load(const char *path, const sd_safetensors *model, sd_lora **out);
/* The same from an already opened table (taken over, also on failure). */
sdvk_status sd_lora_from_table(sd_safetensors *st, const sd_safetensors *model, sd_lora **out);
void sd_lora_free(sd_lora *l);
/* The module targeting LDM key `target`, or NULL. */
const sd_lora_mod *sd_lora_find(const sd_lora *l, const char *target);

/* w (n = out_dim*in_dim float32, the target's layout) +=
 * weight * (alpha / rank) * up . down. The delta is computed in float32 in
 * a fixed order, so the same call gives the same bits every time. */
sdvk_status sd_lora_apply(const sd_lora_mod *m, float weight, float *w, size_t n);
/* Subtracts what sd_lora_apply added (the same delta). Float rounding can
 * leave the last bit different from the original: for an exact undo,
 * reload the original from the model's table (sd_st_tensor_f32). */
sdvk_status sd_lora_unapply(const sd_lora_mod *m, float weight, float *w, size_t n);
/* Any F32/F16/BF16 tensor of a table as float32 (dst holds numel floats). */
sdvk_status sd_st_tensor_f32(const sd_st_tensor *t, float *dst, size_t n);

#endif
