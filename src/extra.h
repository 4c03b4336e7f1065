/* Extra networks on a context: LoRAs merged into the resident weights, and
 * textual-inversion embeddings put into the token stream.
 *
 * LoRA: the context keeps the set it wants (from the prompt's <lora:...>
 * tags or sdvk_set_loras) and, per network, the set its resident weights
 * carry. sd_extra_sync(net) brings the network's weights to the wanted set
 * before a graph of it runs: every weight a LoRA targets is remade from the
 * checkpoint plus the deltas (sd_lora_apply, in the wanted order) and handed
 * to the backend's weights_update; a weight no LoRA targets any more is
 * restored from the checkpoint. So switching sets gives exactly what a fresh
 * context with the new set gives, and prepared graphs stay valid. */
#ifndef SD_EXTRA_H
#define SD_EXTRA_H

#include "ctx.h"

struct sd_extra;
void sd_extra_free(struct sd_extra *x);

/* Brings net's resident weights to the wanted LoRA set (no-op when they
 * already carry it). Called before each graph of net runs. */
sdvk_status sd_extra_sync(sdvk_ctx *ctx, sd_net net);

/* Prompt tags: removes <lora:NAME[:W[:W2]]> tags from prompt into a new
 * malloc'd *clean, and, when there are any, makes them the wanted set
 * (has_tags = 1); else the set of sdvk_set_loras is wanted. */
sdvk_status sd_extra_prompt_loras(sdvk_ctx *ctx, const char *prompt, char **clean);

/* Tokenizes an A1111 prompt with the embeddings of embedding_dir: ids of
 * embedding vectors are vocab + k, their vectors in *vec ([*n_vec, width],
 * malloc'd, shared by every prompt tokenized with the same *vec). */
typedef struct sd_extra_tok {
    float *vec;
    int n_vec;
} sd_extra_tok;
sdvk_status sd_extra_tokenize(sdvk_ctx *ctx, const char *prompt, int min_chunks,
                              sd_extra_tok *vecs, int32_t **ids, float **weights, int *n_chunks,
                              int *chunked);

#endif
