/* SD v1.x VAE (CompVis AutoencoderKL): GroupNorm eps 1e-6, single-head
 * mid-block attention, encoder pads right/bottom before stride-2 convs. */
#include <math.h>
#include <stdio.h>

#include "model.h"

#define P "first_stage_model."

static int wt(sd_graph *g, const sd_model *m, const char *pre, const char *name) {
    return sd_model_weight(g, m, "%s%s", pre, name);
}

static int conv(sd_graph *g, const sd_model *m, int x, const char *pre, int residual) {
    char k[200];
    snprintf(k, sizeof k, "%s.weight", pre);
    int w = sd_model_weight(g, m, "%s", k);
    int pad = (w >= 0 && g->t[w].ne[2] == 3) ? 1 : 0;
    snprintf(k, sizeof k, "%s.bias", pre);
    return sd_conv2d(g, x, w, sd_model_weight(g, m, "%s", k), residual, 1, pad, pad, pad, pad);
}

static int resnet(sd_graph *g, const sd_model *m, int x, const char *pre) {
    const float eps = 1e-6f;
    char k[200];
    int h = sd_group_norm(g, x, wt(g, m, pre, "norm1.weight"), wt(g, m, pre, "norm1.bias"), 32,
                          eps, 1);
    snprintf(k, sizeof k, "%sconv1", pre);
    h = conv(g, m, h, k, -1);
    h = sd_group_norm(g, h, wt(g, m, pre, "norm2.weight"), wt(g, m, pre, "norm2.bias"), 32, eps, 1);
    int skip = x;
    if (sd_model_has(m, "%snin_shortcut.weight", pre)) {
        snprintf(k, sizeof k, "%snin_shortcut", pre);
        skip = conv(g, m, x, k, -1);
    }
    snprintf(k, sizeof k, "%sconv2", pre);
    return conv(g, m, h, k, skip);
}

/* 1x1 conv weight [C,C,1,1] as a Linear [C,C]. */
static int lin(sd_graph *g, const sd_model *m, int x, const char *pre, const char *name,
               int residual) {
    char k[200];
    snprintf(k, sizeof k, "%s%s.weight", pre, name);
    int w = sd_model_weight(g, m, "%s", k);
    if (w >= 0 && g->t[w].ndim == 4) {
        int64_t ne[2] = {g->t[w].ne[0], g->t[w].ne[1]};
        w = sd_graph_reshape(g, w, 2, ne);
    }
    snprintf(k, sizeof k, "%s%s.bias", pre, name);
    return sd_matmul(g, x, w, sd_model_weight(g, m, "%s", k), residual);
}

static int attn_block(sd_graph *g, const sd_model *m, int x, const char *pre) {
    if (x < 0)
        return -1;
    int64_t B = g->t[x].ne[0], H = g->t[x].ne[1], W = g->t[x].ne[2], C = g->t[x].ne[3];
    int64_t seq[3] = {B, H * W, C}, img[4] = {B, H, W, C};
    int h = sd_group_norm(g, x, wt(g, m, pre, "norm.weight"), wt(g, m, pre, "norm.bias"), 32, 1e-6f,
                          0);
    h = sd_graph_reshape(g, h, 3, seq);
    int q = lin(g, m, h, pre, "q", -1), k = lin(g, m, h, pre, "k", -1), v = lin(g, m, h, pre, "v", -1);
    int a = sd_attention(g, q, k, v, 1, 0, 1.0f / sqrtf((float)C));
    int o = lin(g, m, a, pre, "proj_out", sd_graph_reshape(g, x, 3, seq));
    return sd_graph_reshape(g, o, 4, img);
}

static int mid(sd_graph *g, const sd_model *m, int h, const char *part) {
    char pre[96];
    snprintf(pre, sizeof pre, P "%s.mid.block_1.", part);
    h = resnet(g, m, h, pre);
    snprintf(pre, sizeof pre, P "%s.mid.attn_1.", part);
    h = attn_block(g, m, h, pre);
    snprintf(pre, sizeof pre, P "%s.mid.block_2.", part);
    return resnet(g, m, h, pre);
}

static int tail(sd_graph *g, const sd_model *m, int h, const char *part) {
    char pre[96];
    snprintf(pre, sizeof pre, P "%s.", part);
    h = sd_group_norm(g, h, wt(g, m, pre, "norm_out.weight"), wt(g, m, pre, "norm_out.bias"), 32,
                      1e-6f, 1);
    snprintf(pre, sizeof pre, P "%s.conv_out", part);
    return conv(g, m, h, pre, -1);
}

int sd_vae_decode_build(sd_graph *g, const sd_model *m, int z) {
    const sd_vae_arch *a = &m->vae;
    if (!a->has_decoder)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: the checkpoint has no VAE decoder", m->path);
    if (z >= 0 && g->t[z].ne[3] != a->z_ch)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "VAE decode: latent has %lld channels, not %d",
                             (long long)g->t[z].ne[3], a->z_ch);
    int h = sd_scale(g, z, 1.0f / a->scale_factor, 0.0f);
    h = conv(g, m, h, P "post_quant_conv", -1);
    h = conv(g, m, h, P "decoder.conv_in", -1);
    h = mid(g, m, h, "decoder");
    char pre[96];
    for (int i = a->levels - 1; i >= 0; i--) {
        for (int j = 0; j <= a->n_res; j++) {
            snprintf(pre, sizeof pre, P "decoder.up.%d.block.%d.", i, j);
            h = resnet(g, m, h, pre);
        }
        if (i != 0) {
            h = sd_upsample2x(g, h);
            snprintf(pre, sizeof pre, P "decoder.up.%d.upsample.conv", i);
            h = conv(g, m, h, pre, -1);
        }
    }
    return tail(g, m, h, "decoder");
}

int sd_vae_encode_build(sd_graph *g, const sd_model *m, int img) {
    const sd_vae_arch *a = &m->vae;
    if (!a->has_encoder)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: the checkpoint has no VAE encoder", m->path);
    if (img < 0)
        return -1;
    int f = sd_vae_factor(m);
    if (g->t[img].ne[3] != a->img_ch || g->t[img].ne[1] % f || g->t[img].ne[2] % f)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG,
                             "VAE encode: image needs %d channels and sides divisible by %d",
                             a->img_ch, f);
    int h = conv(g, m, img, P "encoder.conv_in", -1);
    char pre[96];
    for (int i = 0; i < a->levels; i++) {
        for (int j = 0; j < a->n_res; j++) {
            snprintf(pre, sizeof pre, P "encoder.down.%d.block.%d.", i, j);
            h = resnet(g, m, h, pre);
        }
        if (i != a->levels - 1) {
            h = sd_conv2d(g, h, sd_model_weight(g, m, P "encoder.down.%d.downsample.conv.weight", i),
                          sd_model_weight(g, m, P "encoder.down.%d.downsample.conv.bias", i), -1, 2,
                          0, 0, 1, 1);
        }
    }
    h = mid(g, m, h, "encoder");
    h = tail(g, m, h, "encoder");
    /* quant_conv, keeping only the mean half: the first z_ch output rows of
     * the 1x1 weight and bias are contiguous, so views select them. */
    int w = sd_model_weight(g, m, P "quant_conv.weight"), b = sd_model_weight(g, m, P "quant_conv.bias");
    if (w < 0 || b < 0)
        return -1;
    if (g->t[w].ndim != 4 || g->t[w].ne[0] != 2 * a->z_ch || g->t[b].ne[0] != 2 * a->z_ch)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: quant_conv has an unexpected shape", m->path);
    int64_t wne[4] = {a->z_ch, g->t[w].ne[1], 1, 1}, bne[1] = {a->z_ch};
    w = sd_graph_view(g, w, 4, wne, 0);
    b = sd_graph_view(g, b, 1, bne, 0);
    h = sd_conv2d(g, h, w, b, -1, 1, 0, 0, 0, 0);
    return sd_scale(g, h, a->scale_factor, 0.0f);
}
