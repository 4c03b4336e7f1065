/* TAESD graphs (see taesd.h): conv + ReLU blocks read from the file's keys. */
#include "taesd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"

/* Where one network's layers live in the table: key of layer i is
 * prefix + (i + off) + "." + rest. */
typedef struct layout {
    char prefix[24];
    int off;
    int n;    /* layers 0..n-1 (the highest index with parameters, + 1) */
} layout;

static const sd_st_tensor *findf(const sd_safetensors *st, const layout *l, int i, const char *rest) {
    char k[160];
    snprintf(k, sizeof k, "%s%d.%s", l->prefix, i + l->off, rest);
    return sd_st_find(st, k);
}

enum { L_NONE = 0, L_CONV, L_BLOCK };

static int kind_of(const sd_safetensors *st, const layout *l, int i) {
    if (findf(st, l, i, "weight"))
        return L_CONV;
    if (findf(st, l, i, "conv.0.weight"))
        return L_BLOCK;
    return L_NONE;
}

/* Layers of prefix: n = 1 + the highest layer index any key names. */
static int count_layers(const sd_safetensors *st, layout *l) {
    size_t pl = strlen(l->prefix);
    int hi = -1;
    for (int i = 0; i < st->n; i++) {
        const char *nm = st->t[i].name;
        if (strncmp(nm, l->prefix, pl) || nm[pl] < '0' || nm[pl] > '9')
            continue;
        char *end;
        long v = strtol(nm + pl, &end, 10);
        if (*end == '.' && v - l->off > hi && v - l->off < 1000)
            hi = (int)(v - l->off);
    }
    l->n = hi + 1;
    return l->n;
}

/* Finds the decoder (which = 0) or encoder (1) layout; 0 when absent. */
static int find_layout(const sd_safetensors *st, int which, layout *l) {
    memset(l, 0, sizeof *l);
    snprintf(l->prefix, sizeof l->prefix, "%s", which ? "encoder.layers." : "decoder.layers.");
    if (findf(st, l, 0, "weight"))
        return count_layers(st, l) > 0;
    /* madebyollin's separate files: the decoder starts at 1 (0 is Clamp)
     * with a conv from the latent channels, the encoder at 0 from RGB */
    l->prefix[0] = 0;
    const sd_st_tensor *t0 = sd_st_find(st, "0.weight"), *t1 = sd_st_find(st, "1.weight");
    if (which == 0 && !t0 && t1 && t1->ndim == 4 && t1->ne[1] != 3) {
        l->off = 1;
        return count_layers(st, l) > 0;
    }
    if (which == 1 && t0 && t0->ndim == 4 && t0->ne[1] == 3)
        return count_layers(st, l) > 0;
    return 0;
}

sdvk_status sd_taesd_inspect(const sd_safetensors *st, sd_taesd_info *out) {
    memset(out, 0, sizeof *out);
    if (!st)
        return sd_err(SDVK_ERR_INVALID_ARG, "taesd: no tensor table");
    layout d, e;
    out->has_decoder = find_layout(st, 0, &d);
    out->has_encoder = find_layout(st, 1, &e);
    if (!out->has_decoder && !out->has_encoder)
        return sd_err(SDVK_ERR_MODEL,
                      "%s: not a TAESD model (no decoder.layers.0.weight / encoder.layers.0.weight, "
                      "nor madebyollin's 1.weight / 0.weight)",
                      st->path ? st->path : "taesd");
    out->z_ch = 4;
    out->factor = 8;
    if (out->has_decoder) {
        const sd_st_tensor *t = findf(st, &d, 0, "weight");
        if (!t || t->ndim != 4)
            return sd_err(SDVK_ERR_MODEL, "%s: TAESD decoder's first layer is not a conv", st->path);
        out->z_ch = (int)t->ne[1];
        int ups = 0;
        for (int i = 2; i < d.n; i++) ups += kind_of(st, &d, i) == L_NONE;
        out->factor = 1 << ups;
    }
    return SDVK_OK;
}

/* A table tensor as a graph weight: like sd_model_weight, for the TAESD
 * file's own table. */
static int wgt(sd_graph *g, const sd_safetensors *st, const layout *l, int i, const char *rest) {
    if (g->status)
        return -1;
    char k[160];
    snprintf(k, sizeof k, "%s%d.%s", l->prefix, i + l->off, rest);
    const sd_st_tensor *t = sd_st_find(st, k);
    if (!t)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: missing TAESD tensor %s", st->path, k);
    if (!t->supported || t->ndim < 1 || t->ndim > SD_MAX_DIMS)
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: TAESD tensor %s has dtype %s / %d dims", st->path, k,
                             t->dtype_str, t->ndim);
    int id = sd_graph_weight(g, t->dtype, t->ndim, t->ne, t->data, k);
    if (id >= 0)
        g->t[id].scale = t->scale;
    return id;
}

/* A conv layer "N." + name (3x3 pad 1, or 1x1 pad 0), bias when present. */
static int conv(sd_graph *g, const sd_safetensors *st, const layout *l, int i, const char *name, int x,
                int residual, int stride) {
    char wk[64], bk[64];
    snprintf(wk, sizeof wk, "%sweight", name);
    snprintf(bk, sizeof bk, "%sbias", name);
    int w = wgt(g, st, l, i, wk);
    if (w < 0)
        return -1;
    int b = findf(st, l, i, bk) ? wgt(g, st, l, i, bk) : -1;
    int pad = (int)(g->t[w].ndim == 4 ? g->t[w].ne[2] / 2 : 0);
    return sd_conv2d(g, x, w, b, residual, stride, pad, pad, pad, pad);
}

/* AutoencoderTinyBlock: relu(conv4(relu(conv2(relu(conv0(x))))) + skip(x)). */
static int block(sd_graph *g, const sd_safetensors *st, const layout *l, int i, int x) {
    int h = sd_relu(g, conv(g, st, l, i, "conv.0.", x, -1, 1));
    h = sd_relu(g, conv(g, st, l, i, "conv.2.", h, -1, 1));
    int skip = findf(st, l, i, "skip.weight") ? conv(g, st, l, i, "skip.", x, -1, 1) : x;
    return sd_relu(g, conv(g, st, l, i, "conv.4.", h, skip, 1));
}

int sd_taesd_decode_build(sd_graph *g, const sd_safetensors *st, int z) {
    layout l;
    if (z < 0 || g->status)
        return -1;
    if (!st || !find_layout(st, 0, &l))
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: no TAESD decoder in this file",
                             st && st->path ? st->path : "taesd");
    /* Clamp: tanh(z / 3) * 3 */
    int h = sd_scale(g, sd_tanh(g, sd_scale(g, z, 1.0f / 3.0f, 0.0f)), 3.0f, 0.0f);
    for (int i = 0; i < l.n && h >= 0; i++) {
        switch (kind_of(st, &l, i)) {
        case L_CONV: h = conv(g, st, &l, i, "", h, -1, 1); break;
        case L_BLOCK: h = block(g, st, &l, i, h); break;
        default: h = i == 1 ? sd_relu(g, h) : sd_upsample2x(g, h); break;
        }
    }
    /* [0, 1] -> [-1, 1], as the SD VAE's raw output */
    return sd_scale(g, h, 2.0f, -1.0f);
}

int sd_taesd_encode_build(sd_graph *g, const sd_safetensors *st, int img) {
    layout l;
    if (img < 0 || g->status)
        return -1;
    if (!st || !find_layout(st, 1, &l))
        return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: no TAESD encoder in this file",
                             st && st->path ? st->path : "taesd");
    int h = sd_scale(g, img, 0.5f, 0.5f); /* [-1, 1] -> [0, 1] */
    for (int i = 0; i < l.n && h >= 0; i++) {
        switch (kind_of(st, &l, i)) {
        case L_CONV: h = conv(g, st, &l, i, "", h, -1, i == 0 || i == l.n - 1 ? 1 : 2); break;
        case L_BLOCK: h = block(g, st, &l, i, h); break;
        default: return sd_graph_fail(g, SDVK_ERR_MODEL, "%s: TAESD encoder layer %d has no parameters",
                                      st->path, i + l.off);
        }
    }
    return h;
}
