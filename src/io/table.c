/* Building tensor tables from several sources (see safetensors.h): the
 * .ckpt, diffusers and separate-VAE loaders fill an sd_safetensors with
 * renamed or re-viewed tensors whose data stays in the files' mappings. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../core/status.h"
#include "safetensors.h"

sdvk_status sd_st_new(const char *label, sd_safetensors **out) {
    *out = NULL;
    sd_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(label ? label : ""))) {
        free(st);
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", label ? label : "");
    }
    *out = st;
    return SDVK_OK;
}

static void region_free(void *base, size_t size, int mapped) {
    if (!base)
        return;
    if (mapped)
        munmap(base, size);
    else
        free(base);
}

sdvk_status sd_st_adopt(sd_safetensors *st, void *base, size_t size, int mapped) {
    sd_st_region *r = realloc(st->regions, (size_t)(st->n_regions + 1) * sizeof *r);
    if (!r) {
        region_free(base, size, mapped);
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", st->path);
    }
    st->regions = r;
    r[st->n_regions++] = (sd_st_region){base, size, mapped};
    return SDVK_OK;
}

static sdvk_status grow(sd_safetensors *st, int extra) {
    if (st->n + extra <= st->cap)
        return SDVK_OK;
    if (extra > (1 << 28) || st->n > (1 << 28))
        return sd_err(SDVK_ERR_FORMAT, "%s: too many tensors", st->path);
    int cap = st->cap ? st->cap : 16;
    while (cap < st->n + extra) cap *= 2;
    sd_st_tensor *t = realloc(st->t, (size_t)cap * sizeof *t);
    if (!t)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", st->path);
    st->t = t;
    st->cap = cap;
    return SDVK_OK;
}

sdvk_status sd_st_add(sd_safetensors *st, const char *name, const sd_st_tensor *t) {
    SD_TRY(grow(st, 1));
    char *nm = strdup(name);
    if (!nm)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", st->path);
    st->t[st->n] = *t;
    st->t[st->n].name = nm;
    st->n++;
    return SDVK_OK;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const sd_st_tensor *)a)->name, ((const sd_st_tensor *)b)->name);
}

sdvk_status sd_st_seal(sd_safetensors *st) {
    if (st->n > 1)
        qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_name);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(st->t[i].name, st->t[i - 1].name))
            return sd_err(SDVK_ERR_FORMAT, "%s: tensor \"%s\" given twice", st->path, st->t[i].name);
    return SDVK_OK;
}

sdvk_status sd_st_set_meta(sd_safetensors *st, const char *key, const char *val) {
    for (int i = 0; i < st->n_meta; i++) {
        if (!strcmp(st->meta_key[i], key)) {
            char *v = strdup(val);
            if (!v)
                return sd_err(SDVK_ERR_OOM, "%s: out of memory", st->path);
            free(st->meta_val[i]);
            st->meta_val[i] = v;
            return SDVK_OK;
        }
    }
    char **k = realloc(st->meta_key, (size_t)(st->n_meta + 1) * sizeof *k);
    if (k)
        st->meta_key = k;
    char **v = realloc(st->meta_val, (size_t)(st->n_meta + 1) * sizeof *v);
    if (v)
        st->meta_val = v;
    char *kd = k && v ? strdup(key) : NULL, *vd = kd ? strdup(val) : NULL;
    if (!vd) {
        free(kd);
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", st->path);
    }
    st->meta_key[st->n_meta] = kd;
    st->meta_val[st->n_meta] = vd;
    st->n_meta++;
    return SDVK_OK;
}

sdvk_status sd_st_absorb(sd_safetensors *dst, sd_safetensors *src, sd_st_rename_fn fn, void *ud) {
    sdvk_status s = SDVK_OK;
    /* Memory first: once dst owns it, tensors moved below stay valid
     * whatever happens next. */
    if (src->map) {
        s = sd_st_adopt(dst, src->map, src->map_size, 1);
        src->map = NULL;
        if (s)
            goto fail_all;
    }
    for (int i = 0; i < src->n_regions; i++) {
        sd_st_region r = src->regions[i];
        src->regions[i].base = NULL;
        if ((s = sd_st_adopt(dst, r.base, r.size, r.mapped)) != SDVK_OK)
            goto fail_all;
    }
    src->n_regions = 0;
    if ((s = grow(dst, src->n)) != SDVK_OK)
        goto fail_all;
    for (int i = 0; i < src->n; i++) {
        sd_st_tensor *t = &src->t[i];
        char nm[512];
        int keep = 1;
        if (fn) {
            nm[0] = 0;
            keep = fn(ud, t, nm, sizeof nm);
            if (keep < 0) {
                s = SDVK_ERR_FORMAT;
                goto fail_all;
            }
        }
        if (!keep)
            continue;
        if (fn) {
            char *d = strdup(nm);
            if (!d) {
                s = sd_err(SDVK_ERR_OOM, "%s: out of memory", dst->path);
                goto fail_all;
            }
            free(t->name);
            t->name = d;
        }
        dst->t[dst->n++] = *t;
        t->name = NULL; /* moved */
    }
fail_all:
    sd_st_close(src); /* names not moved are freed; free(NULL) for the rest */
    return s;
}

int sd_st_remove_prefix(sd_safetensors *st, const char *prefix) {
    size_t pl = strlen(prefix);
    int w = 0, removed = 0;
    for (int i = 0; i < st->n; i++) {
        if (!strncmp(st->t[i].name, prefix, pl)) {
            free(st->t[i].name);
            removed++;
        } else {
            st->t[w++] = st->t[i];
        }
    }
    st->n = w;
    return removed;
}
