/* Textual-inversion embeddings (see embedding.h). */
#include "embedding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"
#include "diffusers.h"

void sd_embedding_free(sd_ti_embedding *e) {
    if (!e)
        return;
    free(e->name);
    free(e->token);
    free(e->vec);
    free(e);
}

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* Which tensor holds the vectors; *token set for diffusers files. */
static sdvk_status pick(const sd_safetensors *st, const sd_st_tensor **out, const char **token) {
    *out = NULL;
    *token = NULL;
    const sd_st_tensor *t = sd_st_find(st, "emb_params");
    if (!t)
        t = sd_st_find(st, "clip_l");
    if (!t) {
        /* string_to_param.* (dict) or string_to_param._parameters.* (ParameterDict) */
        for (int i = 0; i < st->n; i++) {
            if (!starts(st->t[i].name, "string_to_param."))
                continue;
            if (t)
                return sd_err(SDVK_ERR_FORMAT,
                              "%s: several string_to_param entries (%s, %s); one expected", st->path,
                              t->name, st->t[i].name);
            t = &st->t[i];
        }
    }
    if (!t) {
        /* A single tensor: diffusers {token: [W]} or a bare safetensors. */
        if (st->n != 1) {
            return sd_err(SDVK_ERR_FORMAT,
                          "%s: not a textual-inversion embedding (no emb_params or "
                          "string_to_param, and %d tensors instead of one)",
                          st->path, st->n);
        }
        t = &st->t[0];
        *token = t->name;
    }
    *out = t;
    return SDVK_OK;
}

sdvk_status sd_embedding_from_table(sd_safetensors *st, const char *name, int width,
                                    sd_ti_embedding **out) {
    *out = NULL;
    const sd_st_tensor *t;
    const char *token;
    sd_ti_embedding *e = NULL;
    sdvk_status s = pick(st, &t, &token);
    if (s)
        goto done;
    /* [W], [n, W] or [1, n, W] */
    int64_t n = 0, w = 0;
    if (t->ndim == 1)
        n = 1, w = t->ne[0];
    else if (t->ndim == 2)
        n = t->ne[0], w = t->ne[1];
    else if (t->ndim == 3 && t->ne[0] == 1)
        n = t->ne[1], w = t->ne[2];
    if (!w) {
        s = sd_err(SDVK_ERR_FORMAT, "%s: embedding tensor %s has %d dimensions (vectors [n, width] expected)",
                   st->path, t->name, t->ndim);
        goto done;
    }
    if (!t->supported) {
        s = sd_err(SDVK_ERR_FORMAT, "%s: embedding tensor %s has dtype %s (F32, F16 or BF16 needed)",
                   st->path, t->name, t->dtype_str);
        goto done;
    }
    if (w != width) {
        s = sd_err(SDVK_ERR_MODEL,
                   "%s: embedding vectors are %lld wide but this model's text encoder is %d wide%s",
                   st->path, (long long)w, width,
                   w == 1024 ? " (an SD 2.x embedding)" : w == 1280 ? " (an SDXL embedding)" : "");
        goto done;
    }
    if (n < 1 || n > SD_EMBEDDING_MAX_VECTORS) {
        s = sd_err(SDVK_ERR_FORMAT, "%s: embedding has %lld vectors (1..%d supported)", st->path,
                   (long long)n, SD_EMBEDDING_MAX_VECTORS);
        goto done;
    }
    e = calloc(1, sizeof *e);
    if (!e || !(e->vec = malloc((size_t)(n * w) * sizeof *e->vec)) || !(e->name = strdup(name)) ||
        (token && !(e->token = strdup(token)))) {
        s = sd_err(SDVK_ERR_OOM, "out of memory");
        goto done;
    }
    e->n_vec = (int)n;
    e->width = (int)w;
    sd_to_f32(e->vec, t->data, t->dtype, (size_t)(n * w));
    for (int64_t i = 0; i < n * w; i++)
        if (!isfinite(e->vec[i])) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: embedding holds NaN or infinity", st->path);
            goto done;
        }
done:
    sd_st_close(st);
    if (s) {
        sd_embedding_free(e);
        return s;
    }
    *out = e;
    return SDVK_OK;
}

sdvk_status sd_embedding_load(const char *path, int width, sd_ti_embedding **out) {
    *out = NULL;
    char name[256];
    const char *b = strrchr(path, '/');
    snprintf(name, sizeof name, "%s", b ? b + 1 : path);
    char *dot = strrchr(name, '.');
    if (dot && dot != name)
        *dot = 0;
    sd_safetensors *st;
    SD_TRY(sd_weights_file_open(path, &st));
    return sd_embedding_from_table(st, name, width, out);
}
