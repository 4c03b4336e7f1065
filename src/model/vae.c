/* SD v1.x VAE (CompVis AutoencoderKL): GroupNorm eps 1e-6, single-head
 * mid-block attention, encoder pads right/bottom before stride-2 convs. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/status.h"

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

int sd_vae_decode_head_build(sd_graph *g, const sd_model *m, int z) {
    const sd_vae_arch *a = &m->vae;
    if (!a->has_decoder)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: the checkpoint has no VAE decoder", m->path);
    if (z >= 0 && g->t[z].ne[3] != a->z_ch)
        return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "VAE decode: latent has %lld channels, not %d",
                             (long long)g->t[z].ne[3], a->z_ch);
    int h = sd_scale(g, z, 1.0f / a->scale_factor, 0.0f);
    h = conv(g, m, h, P "post_quant_conv", -1);
    h = conv(g, m, h, P "decoder.conv_in", -1);
    return mid(g, m, h, "decoder");
}

int sd_vae_decode_build(sd_graph *g, const sd_model *m, int z) {
    const sd_vae_arch *a = &m->vae;
    int h = sd_vae_decode_head_build(g, m, z);
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
    return sd_vae_encode_tail_build(g, m, h);
}

int sd_vae_encode_tail_build(sd_graph *g, const sd_model *m, int h) {
    const sd_vae_arch *a = &m->vae;
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

/* ---- the VAE in segments, for tiled runs ------------------------------------
 * Between two GroupNorms everything is local (3x3 convs, upsample,
 * stride-2 conv, residual adds), so a segment runs on a band of rows plus a
 * one-row halo; the GroupNorm at its start takes statistics of the whole
 * tensor, which the driver accumulates while it stores the previous
 * segment's output. The mid blocks (global attention) stay whole at latent
 * size: the decoder head and the encoder tail. */

static sdvk_status conv_cout(const sd_model *m, const char *pre, int64_t *cout) {
    char k[200];
    snprintf(k, sizeof k, "%s.weight", pre);
    const sd_st_tensor *t = sd_st_find(m->st, k);
    if (!t || t->ndim != 4)
        return sd_err(SDVK_ERR_MODEL, "%s: missing or malformed VAE weight %s", m->path, k);
    *cout = t->ne[0];
    return SDVK_OK;
}

static sdvk_status add_seg(const sd_model *m, sd_vae_segs *o, int src, int skip, int norm,
                           int resample, const char *norm_pre, const char *conv_pre,
                           const char *shortcut, int64_t h, int64_t w) {
    if (o->n_seg >= SD_VAE_MAX_SEGS)
        return sd_err(SDVK_ERR_MODEL, "%s: the VAE has more than %d segments", m->path,
                      SD_VAE_MAX_SEGS);
    sd_vae_seg *s = &o->seg[o->n_seg++];
    memset(s, 0, sizeof *s);
    s->src = src;
    s->skip = skip;
    s->dst = o->n_slot;
    s->norm = norm;
    s->resample = resample;
    snprintf(s->norm_pre, sizeof s->norm_pre, "%s", norm_pre ? norm_pre : "");
    snprintf(s->conv, sizeof s->conv, "%s", conv_pre);
    snprintf(s->shortcut, sizeof s->shortcut, "%s", shortcut ? shortcut : "");
    sd_vae_slot *d = &o->slot[o->n_slot++];
    d->h = h;
    d->w = w;
    return conv_cout(m, conv_pre, &d->c);
}

static sdvk_status add_resnet(const sd_model *m, sd_vae_segs *o, int *cur, const char *pre) {
    char n1[96], c1[96], n2[96], c2[96], sc[96] = "";
    snprintf(n1, sizeof n1, "%snorm1.", pre);
    snprintf(c1, sizeof c1, "%sconv1", pre);
    snprintf(n2, sizeof n2, "%snorm2.", pre);
    snprintf(c2, sizeof c2, "%sconv2", pre);
    if (sd_model_has(m, "%snin_shortcut.weight", pre))
        snprintf(sc, sizeof sc, "%snin_shortcut", pre);
    const sd_vae_slot x = o->slot[*cur];
    int in = *cur;
    SD_TRY(add_seg(m, o, in, -1, 1, 0, n1, c1, NULL, x.h, x.w));
    SD_TRY(add_seg(m, o, o->n_slot - 1, in, 1, 0, n2, c2, sc, x.h, x.w));
    *cur = o->n_slot - 1;
    return SDVK_OK;
}

sdvk_status sd_vae_segments(const sd_model *m, int decode, int64_t h, int64_t w, sd_vae_segs *o) {
    const sd_vae_arch *a = &m->vae;
    memset(o, 0, sizeof *o);
    if (decode ? !a->has_decoder : !a->has_encoder)
        return sd_err(SDVK_ERR_MODEL, "%s: the checkpoint has no VAE %s", m->path,
                      decode ? "decoder" : "encoder");
    o->decode = decode;
    char pre[96];
    int cur = 0;
    if (decode) { /* slot 0: the head's output at latent size */
        int64_t c = 0;
        SD_TRY(conv_cout(m, P "decoder.conv_in", &c));
        o->slot[o->n_slot++] = (sd_vae_slot){h, w, c};
        for (int i = a->levels - 1; i >= 0; i--) {
            for (int j = 0; j <= a->n_res; j++) {
                snprintf(pre, sizeof pre, P "decoder.up.%d.block.%d.", i, j);
                SD_TRY(add_resnet(m, o, &cur, pre));
            }
            if (i != 0) {
                snprintf(pre, sizeof pre, P "decoder.up.%d.upsample.conv", i);
                SD_TRY(add_seg(m, o, cur, -1, 0, 1, NULL, pre, NULL, 2 * o->slot[cur].h,
                               2 * o->slot[cur].w));
                cur = o->n_slot - 1;
            }
        }
        SD_TRY(add_seg(m, o, cur, -1, 1, 0, P "decoder.norm_out.", P "decoder.conv_out", NULL,
                       o->slot[cur].h, o->slot[cur].w));
    } else { /* slot 0: the picture; the last slot goes to the tail at latent size */
        int f = sd_vae_factor(m);
        if (h % f || w % f)
            return sd_err(SDVK_ERR_INVALID_ARG, "VAE encode: sides must be divisible by %d", f);
        o->slot[o->n_slot++] = (sd_vae_slot){h, w, a->img_ch};
        SD_TRY(add_seg(m, o, 0, -1, 0, 0, NULL, P "encoder.conv_in", NULL, h, w));
        cur = 1;
        for (int i = 0; i < a->levels; i++) {
            for (int j = 0; j < a->n_res; j++) {
                snprintf(pre, sizeof pre, P "encoder.down.%d.block.%d.", i, j);
                SD_TRY(add_resnet(m, o, &cur, pre));
            }
            if (i != a->levels - 1) {
                snprintf(pre, sizeof pre, P "encoder.down.%d.downsample.conv", i);
                SD_TRY(add_seg(m, o, cur, -1, 0, -1, NULL, pre, NULL, o->slot[cur].h / 2,
                               o->slot[cur].w / 2));
                cur = o->n_slot - 1;
            }
        }
    }
    return SDVK_OK;
}

int sd_vae_seg_build(sd_graph *g, const sd_model *m, const sd_vae_seg *s, int x, int ga, int gb,
                     int mask, int skip) {
    int h = x;
    if (s->norm) { /* GroupNorm as its per-channel affine, SiLU, zero outside the picture */
        h = sd_silu(g, sd_add(g, sd_mul(g, h, ga), gb));
        h = sd_mul(g, h, mask);
    }
    if (s->resample > 0)
        h = sd_upsample2x(g, h);
    int res = -1;
    if (skip >= 0)
        res = s->shortcut[0] ? conv(g, m, skip, s->shortcut, -1) : skip;
    int w = sd_model_weight(g, m, "%s.weight", s->conv);
    int b = sd_model_weight(g, m, "%s.bias", s->conv);
    if (s->resample < 0) /* torch pads right/bottom by one; the band brings its bottom row */
        return sd_conv2d(g, h, w, b, res, 2, 0, 0, 0, 1);
    /* rows come with their halo (valid in y); columns are whole (zero padded) */
    return sd_conv2d(g, h, w, b, res, 1, 0, 1, 0, 1);
}
