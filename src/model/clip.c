/* CLIP ViT-L/14 text encoder (pre-LN transformer, causal mask, quick-GELU),
 * output of the final layer norm as SD v1.x uses it. */
#include <math.h>

#include "model.h"

#define P "cond_stage_model.transformer.text_model."

int sd_clip_build(sd_graph *g, const sd_model *m, int tok, int clip_skip) {
    const sd_clip_arch *a = &m->clip;
    if (!a->present)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: the checkpoint has no CLIP text encoder",
                             m->path);
    if (tok >= 0 && (g->t[tok].ndim != 3 || g->t[tok].ne[1] != a->n_pos || g->t[tok].ne[2] != a->width))
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "CLIP: %lld tokens of width %lld, the model takes "
                             "%d of %d", (long long)g->t[tok].ne[1], (long long)g->t[tok].ne[2],
                             a->n_pos, a->width);
    const float eps = 1e-5f, scale = 1.0f / sqrtf((float)(a->width / a->heads));
    /* The token embeddings come looked up on the host (sd_run_clip): the
     * 49408-row table stays in the mmapped checkpoint, and textual-inversion
     * vectors take the place of token rows there. */
    int x = sd_add(g, tok, sd_model_weight(g, m, P "embeddings.position_embedding.weight"));
    if (clip_skip < 1)
        clip_skip = 1;
    if (clip_skip > a->layers)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "CLIP: clip skip %d with %d layers",
                             clip_skip, a->layers);
    /* A1111 "Clip skip" N: the output of layer (layers - N + 1), then the
     * final layer norm */
    for (int l = 0; l < a->layers - (clip_skip - 1); l++) {
#define W(name) sd_model_weight(g, m, P "encoder.layers.%d." name, l)
        int h = sd_layer_norm(g, x, W("layer_norm1.weight"), W("layer_norm1.bias"), eps);
        int q = sd_matmul(g, h, W("self_attn.q_proj.weight"), W("self_attn.q_proj.bias"), -1);
        int k = sd_matmul(g, h, W("self_attn.k_proj.weight"), W("self_attn.k_proj.bias"), -1);
        int v = sd_matmul(g, h, W("self_attn.v_proj.weight"), W("self_attn.v_proj.bias"), -1);
        int att = sd_attention(g, q, k, v, a->heads, 1, scale);
        x = sd_matmul(g, att, W("self_attn.out_proj.weight"), W("self_attn.out_proj.bias"), x);
        h = sd_layer_norm(g, x, W("layer_norm2.weight"), W("layer_norm2.bias"), eps);
        h = sd_quick_gelu(g, sd_matmul(g, h, W("mlp.fc1.weight"), W("mlp.fc1.bias"), -1));
        x = sd_matmul(g, h, W("mlp.fc2.weight"), W("mlp.fc2.bias"), x);
#undef W
    }
    return sd_layer_norm(g, x, sd_model_weight(g, m, P "final_layer_norm.weight"),
                         sd_model_weight(g, m, P "final_layer_norm.bias"), eps);
}

const sd_st_tensor *sd_clip_token_table(const sd_model *m) {
    return sd_st_find(m->st, P "embeddings.token_embedding.weight");
}
