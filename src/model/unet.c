/* SD v1.x UNet (CompVis openaimodel layout): ResBlocks with timestep
 * embedding, SpatialTransformers with self/cross attention and GEGLU. */
#include <math.h>
#include <stdio.h>

#include "model.h"

#define P "model.diffusion_model."

typedef struct {
    sd_graph *g;
    const sd_model *m;
    int emb; /* SiLU(time embedding) [B, time_dim], shared by all res blocks */
    int ctx;
} unet_b;

static int w(unet_b *u, const char *pre, const char *name) {
    return sd_model_weight(u->g, u->m, "%s%s", pre, name);
}

static int resblock(unet_b *u, int h, const char *pre) {
    sd_graph *g = u->g;
    const float eps = 1e-5f;
    int a = sd_group_norm(g, h, w(u, pre, "in_layers.0.weight"), w(u, pre, "in_layers.0.bias"), 32,
                          eps, 1);
    a = sd_conv2d(g, a, w(u, pre, "in_layers.2.weight"), w(u, pre, "in_layers.2.bias"), -1, 1, 1,
                  1, 1, 1);
    if (a < 0)
        return -1;
    int64_t c = g->t[a].ne[3];
    int e = sd_matmul(g, u->emb, w(u, pre, "emb_layers.1.weight"), w(u, pre, "emb_layers.1.bias"),
                      -1);
    /* the embedding's batch is 1 when every latent shares one timestep */
    int64_t ene[4] = {e >= 0 ? g->t[e].ne[0] : 1, 1, 1, c};
    a = sd_add(g, a, sd_graph_reshape(g, e, 4, ene));
    a = sd_group_norm(g, a, w(u, pre, "out_layers.0.weight"), w(u, pre, "out_layers.0.bias"), 32,
                      eps, 1);
    int skip = h;
    if (sd_model_has(u->m, "%sskip_connection.weight", pre))
        skip = sd_conv2d(g, h, w(u, pre, "skip_connection.weight"),
                         w(u, pre, "skip_connection.bias"), -1, 1, 0, 0, 0, 0);
    return sd_conv2d(g, a, w(u, pre, "out_layers.3.weight"), w(u, pre, "out_layers.3.bias"), skip,
                     1, 1, 1, 1, 1);
}

static int attn(unet_b *u, int x, int ctx, const char *pre, int heads) {
    sd_graph *g = u->g;
    if (x < 0)
        return -1; /* an earlier op failed: its error is recorded */
    int64_t c = g->t[x].ne[2];
    float scale = 1.0f / sqrtf((float)(c / heads));
    int q = sd_matmul(g, x, w(u, pre, "to_q.weight"), -1, -1);
    int src = ctx >= 0 ? ctx : x; /* self attention without a context */
    int k = sd_matmul(g, src, w(u, pre, "to_k.weight"), -1, -1);
    int v = sd_matmul(g, src, w(u, pre, "to_v.weight"), -1, -1);
    return sd_attention(g, q, k, v, heads, 0, scale);
}

/* Proj in/out are 1x1 convs in SD1 (Linear in SD2-style files). */
static int proj(unet_b *u, int x, const char *pre, const char *name, int residual) {
    sd_graph *g = u->g;
    char key[200];
    snprintf(key, sizeof key, "%s%s.weight", pre, name);
    int wt = sd_model_weight(g, u->m, "%s", key);
    if (wt < 0)
        return -1;
    if (g->t[wt].ndim == 4) {
        int64_t ne[2] = {g->t[wt].ne[0], g->t[wt].ne[1]};
        wt = sd_graph_reshape(g, wt, 2, ne);
    }
    snprintf(key, sizeof key, "%s.bias", name);
    return sd_matmul(g, x, wt, w(u, pre, key), residual);
}

static int transformer(unet_b *u, int h, const char *pre, int depth) {
    sd_graph *g = u->g;
    if (h < 0)
        return -1;
    const int heads = u->m->unet.heads;
    const float eps = 1e-5f;
    int64_t B = g->t[h].ne[0], H = g->t[h].ne[1], Wd = g->t[h].ne[2], C = g->t[h].ne[3];
    int64_t seq[3] = {B, H * Wd, C};
    int x = sd_group_norm(g, h, w(u, pre, "norm.weight"), w(u, pre, "norm.bias"), 32, 1e-6f, 0);
    x = proj(u, sd_graph_reshape(g, x, 3, seq), pre, "proj_in", -1);
    for (int d = 0; d < depth; d++) {
        char p[200], q[220];
        snprintf(p, sizeof p, "%stransformer_blocks.%d.", pre, d);
        int n = sd_layer_norm(g, x, w(u, p, "norm1.weight"), w(u, p, "norm1.bias"), eps);
        snprintf(q, sizeof q, "%sattn1.", p);
        int a = attn(u, n, -1, q, heads);
        x = sd_matmul(g, a, w(u, q, "to_out.0.weight"), w(u, q, "to_out.0.bias"), x);
        n = sd_layer_norm(g, x, w(u, p, "norm2.weight"), w(u, p, "norm2.bias"), eps);
        snprintf(q, sizeof q, "%sattn2.", p);
        a = attn(u, n, u->ctx, q, heads);
        x = sd_matmul(g, a, w(u, q, "to_out.0.weight"), w(u, q, "to_out.0.bias"), x);
        n = sd_layer_norm(g, x, w(u, p, "norm3.weight"), w(u, p, "norm3.bias"), eps);
        int f = sd_geglu(g, sd_matmul(g, n, w(u, p, "ff.net.0.proj.weight"),
                                      w(u, p, "ff.net.0.proj.bias"), -1));
        x = sd_matmul(g, f, w(u, p, "ff.net.2.weight"), w(u, p, "ff.net.2.bias"), x);
    }
    x = proj(u, x, pre, "proj_out", sd_graph_reshape(g, h, 3, seq));
    int64_t img[4] = {B, H, Wd, C};
    return sd_graph_reshape(g, x, 4, img);
}

int sd_unet_build(sd_graph *g, const sd_model *m, int x, int t, int ctx) {
    const sd_unet_arch *a = &m->unet;
    if (!a->present)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: the checkpoint has no UNet", m->path);
    if (x < 0 || t < 0 || ctx < 0)
        return -1;
    const sd_tensor *X = &g->t[x];
    /* Any latent size: the stride-2 convs round up, and each upsample goes
     * to the size of the skip connection it meets (diffusers' upsample_size). */
    if (X->ne[3] != a->in_ch)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "UNet: latent [%lld,%lld,%lld] needs %d channels",
                             (long long)X->ne[1], (long long)X->ne[2], (long long)X->ne[3], a->in_ch);
    if (g->t[ctx].ne[2] != a->ctx_dim || g->t[ctx].ne[0] != X->ne[0] ||
        (g->t[t].ne[0] != X->ne[0] && g->t[t].ne[0] != 1))
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG,
                             "UNet: context [%lld,%lld,%lld] / timesteps do not fit latent batch "
                             "%lld and context width %d",
                             (long long)g->t[ctx].ne[0], (long long)g->t[ctx].ne[1],
                             (long long)g->t[ctx].ne[2], (long long)X->ne[0], a->ctx_dim);
    unet_b u = {g, m, -1, ctx};
    int e = sd_timestep_embed(g, t, a->ch);
    e = sd_silu(g, sd_matmul(g, e, sd_model_weight(g, m, P "time_embed.0.weight"),
                             sd_model_weight(g, m, P "time_embed.0.bias"), -1));
    e = sd_matmul(g, e, sd_model_weight(g, m, P "time_embed.2.weight"),
                  sd_model_weight(g, m, P "time_embed.2.bias"), -1);
    u.emb = sd_silu(g, e);

    int skips[64], ns = 0;
    int h = sd_conv2d(g, x, sd_model_weight(g, m, P "input_blocks.0.0.weight"),
                      sd_model_weight(g, m, P "input_blocks.0.0.bias"), -1, 1, 1, 1, 1, 1);
    skips[ns++] = h;
    int blk = 1;
    char pre[128];
    for (int l = 0; l < a->levels; l++) {
        for (int r = 0; r < a->n_res; r++, blk++) {
            snprintf(pre, sizeof pre, P "input_blocks.%d.0.", blk);
            h = resblock(&u, h, pre);
            if (a->attn[l]) {
                snprintf(pre, sizeof pre, P "input_blocks.%d.1.", blk);
                h = transformer(&u, h, pre, a->depth[l]);
            }
            skips[ns++] = h;
        }
        if (l != a->levels - 1) {
            h = sd_conv2d(g, h, sd_model_weight(g, m, P "input_blocks.%d.0.op.weight", blk),
                          sd_model_weight(g, m, P "input_blocks.%d.0.op.bias", blk), -1, 2, 1, 1, 1,
                          1);
            skips[ns++] = h;
            blk++;
        }
        if (ns > 60)
            return sd_graph_fail(g, SDVK_ERR_MODEL, "UNet: too many skip connections");
    }
    h = resblock(&u, h, P "middle_block.0.");
    h = transformer(&u, h, P "middle_block.1.", a->mid_depth);
    h = resblock(&u, h, P "middle_block.2.");

    blk = 0;
    for (int l = a->levels - 1; l >= 0; l--) {
        for (int r = 0; r <= a->n_res; r++, blk++) {
            h = sd_concat(g, h, skips[--ns], 3);
            snprintf(pre, sizeof pre, P "output_blocks.%d.0.", blk);
            h = resblock(&u, h, pre);
            int sub = 1;
            if (a->attn[l]) {
                snprintf(pre, sizeof pre, P "output_blocks.%d.1.", blk);
                h = transformer(&u, h, pre, a->depth[l]);
                sub = 2;
            }
            if (l != 0 && r == a->n_res) {
                const sd_tensor *sk = ns > 0 ? &g->t[skips[ns - 1]] : NULL;
                h = sk && h >= 0 ? sd_upsample2x_to(g, h, sk->ne[1], sk->ne[2]) : sd_upsample2x(g, h);
                h = sd_conv2d(g, h,
                              sd_model_weight(g, m, P "output_blocks.%d.%d.conv.weight", blk, sub),
                              sd_model_weight(g, m, P "output_blocks.%d.%d.conv.bias", blk, sub), -1,
                              1, 1, 1, 1, 1);
            }
        }
    }
    h = sd_group_norm(g, h, sd_model_weight(g, m, P "out.0.weight"),
                      sd_model_weight(g, m, P "out.0.bias"), 32, 1e-5f, 1);
    return sd_conv2d(g, h, sd_model_weight(g, m, P "out.2.weight"),
                     sd_model_weight(g, m, P "out.2.bias"), -1, 1, 1, 1, 1, 1);
}
