/* sdvk_convert: any model form sdvk reads (.safetensors, .ckpt, a diffusers
 * folder; a separate VAE; LoRAs merged) written as one single-file
 * .safetensors in the original LDM key layout, optionally with every
 * floating-point tensor converted to F16, F32 or BF16.
 *
 * It streams: the header is planned from the tensor table and written
 * first, then each tensor is read from the source mapping, converted piece
 * by piece (1M elements at a time) and written, and its source pages are
 * dropped from this process once written. Only a weight a LoRA changes is
 * held whole (as float32, the LoRA arithmetic of the engine: sd_lora_apply
 * in the order given), so memory stays near the largest such weight however
 * large the model is. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/q8.h"
#include "core/status.h"
#include "io/keymap.h"
#include "io/lora.h"
#include "io/st_stream.h"
#include "model/model.h"

#define CHUNK_ELEMS ((size_t)1 << 20)
#define MAX_LORAS 64

void sdvk_convert_params_default(sdvk_convert_params *p) {
    if (p)
        memset(p, 0, sizeof *p);
}

static const char *type_name(sdvk_convert_type t) {
    switch (t) {
    case SDVK_CONVERT_KEEP: return "keep";
    case SDVK_CONVERT_F16: return "f16";
    case SDVK_CONVERT_F32: return "f32";
    case SDVK_CONVERT_BF16: return "bf16";
    case SDVK_CONVERT_Q8: return "q8";
    }
    return "?";
}

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static const char *base_name(const char *p) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--; /* a folder given as "dir/" */
    const char *b = p + n;
    while (b > p && b[-1] != '/') b--;
    return b;
}

typedef struct job {
    const sd_st_tensor *t;
    int kind;          /* J_RAW: bytes as they are; J_CONV: float conversion; J_MERGE: the
                        * whole tensor in f32 (LoRAs, 8-bit sources); J_Q8 / J_Q8S: its
                        * int8 values / fp16 scales */
    int is_f64;        /* J_CONV source is F64 */
    sd_dtype out;      /* J_CONV / J_MERGE output */
    size_t n;          /* elements */
} job;
enum { J_RAW, J_CONV, J_MERGE, J_Q8, J_Q8S };

typedef struct lora_use {
    sd_lora *l;
    float te, unet;
} lora_use;

/* Drops the pages of [p, p+n) from this process when they lie in a file
 * mapping of the table (they are re-read from the file if touched again);
 * decompressed or copied regions are left alone. */
static void drop_pages(const sd_safetensors *st, const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p, e = a + n;
    int mapped = st->map && a >= (uintptr_t)st->map && e <= (uintptr_t)st->map + st->map_size;
    for (int i = 0; !mapped && i < st->n_regions; i++)
        mapped = st->regions[i].mapped && a >= (uintptr_t)st->regions[i].base &&
                 e <= (uintptr_t)st->regions[i].base + st->regions[i].size;
    long ps = sysconf(_SC_PAGESIZE);
    if (!mapped || ps <= 0)
        return;
    uintptr_t lo = (a + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1), hi = e & ~((uintptr_t)ps - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* n float32 -> the output dtype at dst. */
static void from_f32(void *dst, const float *src, sd_dtype out, size_t n) {
    if (out == SD_F32) {
        memcpy(dst, src, n * sizeof(float));
    } else if (out == SD_F16) {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = sd_f32_to_f16(src[i]);
    } else {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = sd_f32_to_bf16(src[i]);
    }
}

/* Elements [i0, i0+n) of a float tensor as float32. */
static void chunk_f32(const job *j, size_t i0, size_t n, float *dst) {
    if (j->is_f64) {
        const unsigned char *s = (const unsigned char *)j->t->data + i0 * 8;
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, s + i * 8, 8);
            dst[i] = (float)v;
        }
    } else {
        sd_to_f32(dst, (const char *)j->t->data + i0 * sd_dtype_size(j->t->dtype), j->t->dtype, n);
    }
}

static sdvk_status write_job(sd_st_stream *w, const job *j, const lora_use *lu, int nl, float *f32,
                             void *obuf, float **merge, size_t *merge_cap) {
    const sd_st_tensor *t = j->t;
    if (j->kind == J_RAW) {
        const char *p = t->data;
        for (size_t off = 0; off < t->nbytes;) {
            size_t k = t->nbytes - off < CHUNK_ELEMS * 4 ? t->nbytes - off : CHUNK_ELEMS * 4;
            SD_TRY(sd_st_stream_write(w, p + off, k));
            off += k;
        }
        return SDVK_OK;
    }
    const size_t osz = sd_dtype_size(j->out);
    if (j->kind == J_CONV) {
        for (size_t i = 0; i < j->n; i += CHUNK_ELEMS) {
            size_t k = j->n - i < CHUNK_ELEMS ? j->n - i : CHUNK_ELEMS;
            chunk_f32(j, i, k, f32);
            from_f32(obuf, f32, j->out, k);
            SD_TRY(sd_st_stream_write(w, obuf, k * osz));
        }
        return SDVK_OK;
    }
    /* J_MERGE, J_Q8, J_Q8S: the whole weight in float32, plus each LoRA's delta */
    if (j->n > *merge_cap) {
        float *nb = realloc(*merge, j->n * sizeof(float));
        if (!nb)
            return sd_err(SDVK_ERR_OOM, "out of memory merging LoRA into %s", t->name);
        *merge = nb;
        *merge_cap = j->n;
    }
    SD_TRY(sd_st_tensor_f32(t, *merge, j->n));
    const int te = starts(t->name, "cond_stage_model.");
    for (int i = 0; i < nl; i++) {
        float wt = te ? lu[i].te : lu[i].unet;
        const sd_lora_mod *m = wt != 0.0f ? sd_lora_find(lu[i].l, t->name) : NULL;
        if (m)
            SD_TRY(sd_lora_apply(m, wt, *merge, j->n));
    }
    if (j->kind == J_Q8 || j->kind == J_Q8S) {
        /* the pair is quantised once per item: twice per weight, cheap next
         * to the I/O, and no state between the writer's requests */
        const int64_t ns = sd_q8_nscales(t->ndim, t->ne);
        int8_t *q = malloc(j->n);
        uint16_t *sc = malloc((size_t)ns * sizeof *sc);
        sdvk_status s = q && sc ? sd_q8_quantize_tensor(*merge, SD_F32, t->ndim, t->ne, q, sc, t->name)
                                : sd_err(SDVK_ERR_OOM, "out of memory quantising %s", t->name);
        if (!s)
            s = j->kind == J_Q8 ? sd_st_stream_write(w, q, j->n)
                                : sd_st_stream_write(w, sc, (size_t)ns * sizeof *sc);
        free(q);
        free(sc);
        return s;
    }
    for (size_t i = 0; i < j->n; i += CHUNK_ELEMS) {
        size_t k = j->n - i < CHUNK_ELEMS ? j->n - i : CHUNK_ELEMS;
        from_f32(obuf, *merge + i, j->out, k);
        SD_TRY(sd_st_stream_write(w, obuf, k * osz));
    }
    return SDVK_OK;
}

/* A string list of metadata keys and values (owned copies). */
typedef struct kv {
    char **s;
    int n; /* pairs */
} kv;

static sdvk_status kv_set(kv *m, const char *k, const char *v) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->s[2 * i], k)) {
            char *d = strdup(v);
            if (!d)
                return sd_err(SDVK_ERR_OOM, "out of memory");
            free(m->s[2 * i + 1]);
            m->s[2 * i + 1] = d;
            return SDVK_OK;
        }
    char **ns = realloc(m->s, (size_t)(m->n + 1) * 2 * sizeof *ns);
    if (!ns)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    m->s = ns;
    ns[2 * m->n] = strdup(k);
    ns[2 * m->n + 1] = strdup(v);
    m->n++;
    if (!ns[2 * m->n - 2] || !ns[2 * m->n - 1])
        return sd_err(SDVK_ERR_OOM, "out of memory");
    return SDVK_OK;
}

static void kv_free(kv *m) {
    for (int i = 0; i < 2 * m->n; i++) free(m->s[i]);
    free(m->s);
}

/* The output's metadata: the source's (modelspec.*, training notes, the
 * head counts and VAE scale a diffusers config gave) without what only
 * describes this load (sdvk.format, sdvk.tokenizer), the head counts the
 * model was built with (a .ckpt carries none), and where it came from. */
static sdvk_status make_meta(const sd_model *m, const char *model_path,
                             const sdvk_convert_params *p, kv *out) {
    const sd_safetensors *st = m->st;
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_key[i], "sdvk.format") && strcmp(st->meta_key[i], "sdvk.tokenizer") &&
            strcmp(st->meta_key[i], SD_Q8_META_KEY)) /* set again when the output has q8 tensors */
            SD_TRY(kv_set(out, st->meta_key[i], st->meta_val[i]));
    char buf[1024];
    if (m->unet.present) {
        snprintf(buf, sizeof buf, "%d", m->unet.heads);
        SD_TRY(kv_set(out, "sdvk.unet.num_heads", buf));
    }
    if (m->clip.present) {
        snprintf(buf, sizeof buf, "%d", m->clip.heads);
        SD_TRY(kv_set(out, "sdvk.clip.num_heads", buf));
    }
    if (!sd_st_meta(st, "format"))
        SD_TRY(kv_set(out, "format", "pt"));
    SD_TRY(kv_set(out, "sdvk.converted_from", base_name(model_path)));
    if (p->vae_path && *p->vae_path)
        SD_TRY(kv_set(out, "sdvk.vae", base_name(p->vae_path)));
    if (p->n_loras) {
        size_t o = 0;
        buf[0] = 0;
        for (int i = 0; i < p->n_loras && o < sizeof buf; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s:%g:%g", i ? ", " : "",
                                  base_name(p->loras[i].path), p->loras[i].te_weight,
                                  p->loras[i].unet_weight);
        SD_TRY(kv_set(out, "sdvk.loras_merged", buf));
    }
    return SDVK_OK;
}

/* The scales of an 8-bit weight in a q8 source: the table pairs them with
 * the weight (an SD_Q8 entry) but lists them too. */
static int is_q8_scale(const sd_safetensors *st, const sd_st_tensor *t) {
    size_t n = strlen(t->name), k = strlen(SD_Q8_SCALE_SUFFIX);
    if (n <= k || strcmp(t->name + n - k, SD_Q8_SCALE_SUFFIX))
        return 0;
    char base[512];
    if (n - k >= sizeof base)
        return 0;
    memcpy(base, t->name, n - k);
    base[n - k] = 0;
    const sd_st_tensor *w = sd_st_find(st, base);
    return w && w->dtype == SD_Q8 && w->scale == t->data;
}

sdvk_status sdvk_convert(const char *model_path, const char *out_path,
                         const sdvk_convert_params *params, sdvk_convert_stats *stats) {
    sdvk_convert_params dp;
    sdvk_convert_params_default(&dp);
    const sdvk_convert_params *p = params ? params : &dp;
    sd_log_set_sink(p->log, p->log_user, p->verbose);
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!model_path || !*model_path)
        return sd_err(SDVK_ERR_INVALID_ARG, "convert: no model path given");
    if (!out_path || !*out_path)
        return sd_err(SDVK_ERR_INVALID_ARG, "convert: no output path given");
    if ((unsigned)p->type > SDVK_CONVERT_Q8)
        return sd_err(SDVK_ERR_INVALID_ARG, "convert: unknown type %d", (int)p->type);
    if (p->n_loras < 0 || p->n_loras > MAX_LORAS || (p->n_loras && !p->loras))
        return sd_err(SDVK_ERR_INVALID_ARG, "convert: %d LoRAs (0..%d)", p->n_loras, MAX_LORAS);
    for (int i = 0; i < p->n_loras; i++) {
        if (!p->loras[i].path || !*p->loras[i].path)
            return sd_err(SDVK_ERR_INVALID_ARG, "convert: LoRA %d has no path", i);
        if (!isfinite(p->loras[i].te_weight) || !isfinite(p->loras[i].unet_weight))
            return sd_err(SDVK_ERR_INVALID_ARG, "convert: LoRA %s: weights must be finite",
                          p->loras[i].path);
    }
    const double t0 = sd_now_s();
    sd_model *m = NULL;
    lora_use lu[MAX_LORAS];
    int nl = 0;
    job *jobs = NULL;
    sd_st_stream_item *items = NULL;
    char **scale_names = NULL; /* NAME.q8_scale, owned */
    int st_n = 0;
    sd_st_stream *w = NULL;
    float *f32 = NULL, *merge = NULL;
    void *obuf = NULL;
    size_t merge_cap = 0;
    kv meta = {0};
    sdvk_status s = sd_model_open_ex(model_path, p->vae_path, &m);
    if (s)
        goto done;
    const sd_safetensors *st = m->st;
    st_n = st->n;
    for (; nl < p->n_loras; nl++) {
        if ((s = sd_lora_load(p->loras[nl].path, st, &lu[nl].l)))
            goto done;
        lu[nl].te = p->loras[nl].te_weight;
        lu[nl].unet = p->loras[nl].unet_weight;
        sd_log_verbose("LoRA %s: %d modules (UNet %d, text encoder %d)%s%s", p->loras[nl].path,
                       lu[nl].l->n_mods, lu[nl].l->n_unet, lu[nl].l->n_te,
                       lu[nl].l->n_ignored ? "; ignored: " : "",
                       lu[nl].l->n_ignored ? lu[nl].l->ignored_note : "");
    }
    /* a q8 weight is two items: its values and its scales */
    jobs = calloc((size_t)(st->n ? 2 * st->n : 1), sizeof *jobs);
    items = calloc((size_t)(st->n ? 2 * st->n : 1), sizeof *items);
    scale_names = calloc((size_t)(st->n ? st->n : 1), sizeof *scale_names);
    f32 = malloc(CHUNK_ELEMS * sizeof *f32);
    obuf = malloc(CHUNK_ELEMS * sizeof(float));
    if (!jobs || !items || !scale_names || !f32 || !obuf) {
        s = sd_err(SDVK_ERR_OOM, "out of memory");
        goto done;
    }
    /* what goes out: the three networks' tensors; EMA copies, optimizer
     * state and schedule buffers (alphas_cumprod, ...) are left out */
    int n = 0, skipped = 0, merged = 0, n_q8 = 0;
    char skipped_note[256] = "";
    for (int i = 0; i < st->n; i++) {
        const sd_st_tensor *t = &st->t[i];
        if (is_q8_scale(st, t))
            continue; /* written with its weight */
        int net = starts(t->name, SD_KM_UNET_PREFIX) || starts(t->name, SD_KM_VAE_PREFIX) ||
                  starts(t->name, "cond_stage_model.");
        size_t isz = sd_st_dtype_itemsize(t->dtype_str);
        if (!net || !isz) {
            if (skipped++ < 3)
                snprintf(skipped_note + strlen(skipped_note), sizeof skipped_note - strlen(skipped_note),
                         "%s%.60s%s", skipped > 1 ? ", " : "", t->name, net ? " (not a tensor)" : "");
            continue;
        }
        job *j = &jobs[n];
        j->t = t;
        j->n = isz ? t->nbytes / isz : 0;
        int is_float = t->supported || !strcmp(t->dtype_str, "F64");
        j->is_f64 = !t->supported && is_float;
        j->kind = J_RAW;
        if (is_float) {
            sd_dtype src = t->supported ? t->dtype : SD_F32;
            j->out = p->type == SDVK_CONVERT_F16    ? SD_F16
                     : p->type == SDVK_CONVERT_F32  ? SD_F32
                     : p->type == SDVK_CONVERT_BF16 ? SD_BF16
                                                    : src;
            if (j->is_f64 || j->out != t->dtype)
                j->kind = J_CONV;
            int te = starts(t->name, "cond_stage_model.");
            for (int k = 0; k < nl && j->kind != J_MERGE; k++)
                if ((te ? lu[k].te : lu[k].unet) != 0.0f && sd_lora_find(lu[k].l, t->name))
                    j->kind = J_MERGE;
            if (j->kind == J_MERGE && j->is_f64) {
                s = sd_err(SDVK_ERR_UNSUPPORTED, "%s: a LoRA targets %s, an F64 tensor", model_path,
                           t->name);
                goto done;
            }
            merged += j->kind == J_MERGE;
            const int q8 = t->dtype == SD_Q8 ? p->type == SDVK_CONVERT_KEEP || p->type == SDVK_CONVERT_Q8
                                             : p->type == SDVK_CONVERT_Q8 &&
                                                   sd_q8_wanted(t->name, t->ndim, t->ne);
            if (q8) {
                j->kind = J_Q8;
                jobs[n + 1] = *j;
                jobs[n + 1].kind = J_Q8S;
                items[n].name = t->name;
                items[n].dtype = "I8";
                items[n].ndim = t->ndim;
                memcpy(items[n].ne, t->ne, sizeof t->ne);
                size_t ln = strlen(t->name) + sizeof SD_Q8_SCALE_SUFFIX;
                char *sn = scale_names[n_q8++] = malloc(ln);
                if (!sn) {
                    s = sd_err(SDVK_ERR_OOM, "out of memory");
                    goto done;
                }
                snprintf(sn, ln, "%s%s", t->name, SD_Q8_SCALE_SUFFIX);
                items[n + 1].name = sn;
                items[n + 1].dtype = "F16";
                items[n + 1].ndim = t->ndim;
                sd_q8_scale_shape(t->ndim, t->ne, items[n + 1].ne);
                n += 2;
                continue;
            }
            if (t->dtype == SD_Q8 && j->kind != J_MERGE) /* dequantised whole */
                j->kind = J_MERGE;
        }
        items[n].name = t->name;
        items[n].dtype = j->kind == J_RAW ? t->dtype_str : sd_dtype_name(j->out);
        items[n].ndim = t->ndim;
        memcpy(items[n].ne, t->ne, sizeof t->ne);
        n++;
    }
    if (!n) {
        s = sd_err(SDVK_ERR_MODEL, "%s: no SD v1.x weights to write", model_path);
        goto done;
    }
    if (skipped)
        sd_log_verbose("left out %d tensors that are not UNet, VAE or text encoder weights: %s%s",
                       skipped, skipped_note, skipped > 3 ? ", ..." : "");
    if ((s = make_meta(m, model_path, p, &meta)))
        goto done;
    if (n_q8 && (s = kv_set(&meta, SD_Q8_META_KEY, SD_Q8_META_VERSION)))
        goto done;
    if ((s = sd_st_stream_open(out_path, items, n, (const char *const *)meta.s, meta.n, &w)))
        goto done;
    uint64_t bytes = 0;
    for (int done_n = 0, idx; (idx = sd_st_stream_next(w, NULL)) >= 0; done_n++) {
        uint64_t left;
        sd_st_stream_next(w, &left);
        bytes += left;
        if ((s = write_job(w, &jobs[idx], lu, nl, f32, obuf, &merge, &merge_cap)))
            goto done;
        drop_pages(st, jobs[idx].t->data, jobs[idx].t->nbytes);
        if (p->progress && p->progress(p->progress_user, done_n + 1, n)) {
            s = sd_err(SDVK_ERR_CANCELLED, "convert: cancelled");
            goto done;
        }
    }
    if ((s = sd_st_stream_finish(w)))
        goto done;
    /* what was written loads as a model */
    sd_model *chk = NULL;
    if ((s = sd_model_open(out_path, &chk))) {
        s = sd_err_prefix(s, "convert: the file written does not load");
        goto done;
    }
    sd_model_close(chk);
    if (stats) {
        stats->tensors_written = n;
        stats->tensors_skipped = skipped;
        stats->weights_merged = merged;
        stats->bytes_written = bytes;
        stats->seconds = sd_now_s() - t0;
    }
    sd_log_verbose("wrote %s: %d tensors (%s), %.1f MB of data, %d weights with LoRAs merged, "
                   "in %.1f s", out_path, n, type_name(p->type), (double)bytes / 1e6, merged,
                   sd_now_s() - t0);
done:
    sd_st_stream_free(w);
    kv_free(&meta);
    free(merge);
    free(f32);
    free(obuf);
    free(items);
    free(jobs);
    for (int i = 0; scale_names && i < st_n; i++) free(scale_names[i]);
    free(scale_names);
    for (int i = 0; i < nl; i++) sd_lora_free(lu[i].l);
    sd_model_close(m);
    sd_log_set_sink(NULL, NULL, 0); /* the caller's sink is not kept past the call */
    return s;
}
