/* Textual-inversion embeddings for SD v1.x: n vectors of the text
 * encoder's width, to be put in the token stream where the prompt names the
 * embedding. Formats:
 *  - A1111 .pt: {"string_to_param": {"*": [n, W]}, "string_to_token": ...,
 *    "name": ...} (the original textual_inversion's ParameterDict too);
 *  - .safetensors with "emb_params" [n, W], or with a single tensor;
 *  - diffusers learned_embeds.bin / .safetensors: {"<token>": [W]};
 *  - SDXL-style files with "clip_l" (used when its width fits).
 * The width must equal the text encoder's (an SD 2.x embedding, 1024 wide,
 * is refused with a message saying so). */
#ifndef SD_EMBEDDING_H
#define SD_EMBEDDING_H

#include "safetensors.h"

#define SD_EMBEDDING_MAX_VECTORS 256

typedef struct sd_ti_embedding {
    char *name;  /* file name without folder and extension (A1111's trigger word) */
    char *token; /* the token a diffusers file stores the vector under, or NULL */
    int n_vec, width;
    float *vec;  /* n_vec * width, row-major */
} sd_ti_embedding;

sdvk_status sd_embedding_load(const char *path, int width, sd_ti_embedding **out);
/* The same from an opened table (taken over, also on failure); `name` is
 * the trigger word. */
sdvk_status sd_embedding_from_table(sd_safetensors *st, const char *name, int width,
                                    sd_ti_embedding **out);
void sd_embedding_free(sd_ti_embedding *e);

#endif
