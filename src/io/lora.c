/* LoRA reading and merge arithmetic (see lora.h).
 *
 * Targets are resolved by name, never guessed: every linear/conv weight of
 * the model gets its aliases (the LDM path and the diffusers path, each in
 * kohya's underscore spelling and in PEFT's dotted one), and a LoRA module
 * must be one of them. Underscored names cannot be split back into dotted
 * ones unambiguously (to_q, proj_in, transformer_blocks), which is why the
 * lookup goes from the model to the file and not the other way round. */
#include "lora.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"
#include "ckpt.h"
#include "diffusers.h"
#include "keymap.h"

enum { R_DOWN, R_UP, R_ALPHA, R_UNSUP, R_NONE };
enum { P_UNET, P_TE };

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }
static int ends(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* ---- aliases of the model's modules ---- */

typedef struct alias {
    char *name;
    const char *target; /* model tensor name (…weight); NULL if ambiguous */
    int part;
} alias;

typedef struct amap {
    alias *a;
    int n, cap;
} amap;

static int add_alias(amap *m, const char *name, const char *target, int part) {
    if (m->n == m->cap) {
        int c = m->cap ? 2 * m->cap : 1024;
        alias *a = realloc(m->a, (size_t)c * sizeof *a);
        if (!a)
            return -1;
        m->a = a;
        m->cap = c;
    }
    char *d = strdup(name);
    if (!d)
        return -1;
    m->a[m->n++] = (alias){d, target, part};
    return 0;
}

static void underscore(char *s) {
    for (; *s; s++)
        if (*s == '.')
            *s = '_';
}

static int cmp_alias(const void *x, const void *y) {
    return strcmp(((const alias *)x)->name, ((const alias *)y)->name);
}

static void amap_free(amap *m) {
    for (int i = 0; i < m->n; i++) free(m->a[i].name);
    free(m->a);
}

static sdvk_status build_aliases(const sd_safetensors *model, amap *m) {
    sd_km_layout L;
    sd_km_layout_from_ldm(model, &L);
    char mod[512], buf[600], d[512];
    int bad = 0;
    for (int i = 0; i < model->n && !bad; i++) {
        const sd_st_tensor *t = &model->t[i];
        if ((t->ndim != 2 && t->ndim != 4) || !ends(t->name, ".weight"))
            continue;
        size_t ml = strlen(t->name) - strlen(".weight");
        if (ml >= sizeof mod)
            continue;
        memcpy(mod, t->name, ml);
        mod[ml] = 0;
        if (starts(mod, SD_KM_UNET_PREFIX)) {
            const char *rest = mod + strlen(SD_KM_UNET_PREFIX);
            snprintf(buf, sizeof buf, "lora_unet_%s", rest);
            underscore(buf + 10);
            bad |= add_alias(m, buf, t->name, P_UNET);
            sd_km_part part;
            if (sd_km_from_ldm(&L, mod, &part, d, sizeof d)) {
                snprintf(buf, sizeof buf, "lora_unet_%s", d);
                underscore(buf + 10);
                bad |= add_alias(m, buf, t->name, P_UNET);
                snprintf(buf, sizeof buf, "unet.%s", d);
                bad |= add_alias(m, buf, t->name, P_UNET);
                bad |= add_alias(m, d, t->name, P_UNET); /* old files: no unet. prefix */
            }
        } else if (starts(mod, SD_KM_CLIP_PREFIX "text_model.")) {
            const char *rest = mod + strlen(SD_KM_CLIP_PREFIX); /* text_model.… */
            snprintf(buf, sizeof buf, "lora_te_%s", rest);
            underscore(buf + 8);
            bad |= add_alias(m, buf, t->name, P_TE);
            snprintf(buf, sizeof buf, "text_encoder.%s", rest);
            bad |= add_alias(m, buf, t->name, P_TE);
            /* transformers >= 5.6 CLIPTextModel has no text_model. level */
            snprintf(buf, sizeof buf, "text_encoder.%s", rest + strlen("text_model."));
            bad |= add_alias(m, buf, t->name, P_TE);
            bad |= add_alias(m, rest, t->name, P_TE);
        }
    }
    if (bad)
        return sd_err(SDVK_ERR_OOM, "out of memory building LoRA target names");
    qsort(m->a, (size_t)m->n, sizeof *m->a, cmp_alias);
    /* One spelling must not name two weights. */
    int w = 0;
    for (int i = 0; i < m->n; i++) {
        if (w && !strcmp(m->a[w - 1].name, m->a[i].name)) {
            if (m->a[w - 1].target && strcmp(m->a[w - 1].target, m->a[i].target))
                m->a[w - 1].target = NULL;
            free(m->a[i].name);
            continue;
        }
        m->a[w++] = m->a[i];
    }
    m->n = w;
    return SDVK_OK;
}

static const alias *find_alias(const amap *m, const char *name) {
    alias key = {(char *)name, NULL, 0};
    return m->n ? bsearch(&key, m->a, (size_t)m->n, sizeof *m->a, cmp_alias) : NULL;
}

/* ---- key parsing ---- */

typedef struct entry {
    char *module; /* as in the file, normalised (see parse_key) */
    int role;
    const sd_st_tensor *t;
    const char *why; /* R_UNSUP: which kind */
} entry;

/* Splits a LoRA tensor name into (module, role). Returns 0 for a name that
 * is no LoRA tensor at all. */
static int parse_key(const char *k, char *mod, size_t n, int *role, const char **why) {
    *why = NULL;
    const char *dot = strchr(k, '.');
    if (starts(k, "lora_") && dot) {
        /* kohya: <module>.<suffix>, the module has no dots */
        const char *suf = dot + 1;
        size_t ml = (size_t)(dot - k);
        if (ml >= n)
            return 0;
        memcpy(mod, k, ml);
        mod[ml] = 0;
        if (!strcmp(suf, "lora_down.weight"))
            *role = R_DOWN;
        else if (!strcmp(suf, "lora_up.weight"))
            *role = R_UP;
        else if (!strcmp(suf, "alpha"))
            *role = R_ALPHA;
        else if (starts(suf, "hada_"))
            *role = R_UNSUP, *why = "LoHa (hada_*)";
        else if (starts(suf, "lokr_"))
            *role = R_UNSUP, *why = "LoKr (lokr_*)";
        else if (!strcmp(suf, "dora_scale"))
            *role = R_UNSUP, *why = "DoRA (dora_scale)";
        else if (starts(suf, "lora_mid"))
            *role = R_UNSUP, *why = "LoCon with a Tucker core (lora_mid)";
        else if (!strcmp(suf, "diff") || !strcmp(suf, "diff_b") || starts(suf, "bias"))
            *role = R_UNSUP, *why = "full weight differences (diff/bias)";
        else
            return 0;
        return 1;
    }
    const char *p;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", k);
    if (starts(tmp, "base_model.model."))
        memmove(tmp, tmp + 17, strlen(tmp + 17) + 1);
    /* PEFT: <module>.lora_A[.<adapter>].weight */
    if ((p = strstr(tmp, ".lora_A.")) || (p = strstr(tmp, ".lora_B."))) {
        *role = p[6] == 'A' ? R_DOWN : R_UP;
        if (!ends(tmp, ".weight"))
            return 0;
        snprintf(mod, n, "%.*s", (int)(p - tmp), tmp);
        return 1;
    }
    if ((p = strstr(tmp, ".lora_magnitude_vector"))) {
        *role = R_UNSUP;
        *why = "DoRA (lora_magnitude_vector)";
        snprintf(mod, n, "%.*s", (int)(p - tmp), tmp);
        return 1;
    }
    /* older diffusers: <attn>.processor.to_q_lora.down.weight */
    static const struct {
        const char *pat, *unet, *te;
    } procs[] = {{".to_q_lora.", ".to_q", ".q_proj"},
                 {".to_k_lora.", ".to_k", ".k_proj"},
                 {".to_v_lora.", ".to_v", ".v_proj"},
                 {".to_out_lora.", ".to_out.0", ".out_proj"}};
    for (size_t i = 0; i < sizeof procs / sizeof *procs; i++) {
        if (!(p = strstr(tmp, procs[i].pat)))
            continue;
        const char *r = p + strlen(procs[i].pat);
        if (strcmp(r, "down.weight") && strcmp(r, "up.weight"))
            return 0;
        *role = r[0] == 'd' ? R_DOWN : R_UP;
        size_t base = (size_t)(p - tmp);
        if (base >= 10 && !strncmp(p - 10, ".processor", 10))
            base -= 10;
        int te = starts(tmp, "text_encoder.");
        snprintf(mod, n, "%.*s%s", (int)base, tmp, te ? procs[i].te : procs[i].unet);
        return 1;
    }
    if ((p = strstr(tmp, ".lora_linear_layer."))) {
        const char *r = p + strlen(".lora_linear_layer.");
        if (strcmp(r, "down.weight") && strcmp(r, "up.weight"))
            return 0;
        *role = r[0] == 'd' ? R_DOWN : R_UP;
        snprintf(mod, n, "%.*s", (int)(p - tmp), tmp);
        return 1;
    }
    if (ends(tmp, ".alpha")) {
        *role = R_ALPHA;
        snprintf(mod, n, "%.*s", (int)(strlen(tmp) - 6), tmp);
        return 1;
    }
    return 0;
}

static int cmp_entry(const void *x, const void *y) {
    const entry *a = x, *b = y;
    int c = strcmp(a->module, b->module);
    return c ? c : a->role - b->role;
}

static int cmp_mod(const void *x, const void *y) {
    return strcmp(((const sd_lora_mod *)x)->target, ((const sd_lora_mod *)y)->target);
}

/* ---- alpha ---- */

static sdvk_status scalar_of(const sd_lora *l, const sd_st_tensor *t, const char *mod, float *v) {
    int64_t ne = 1;
    for (int d = 0; d < t->ndim; d++) ne *= t->ne[d];
    if (!t->supported || ne != 1)
        return sd_err(SDVK_ERR_FORMAT, "%s: %s.alpha is not a single F32/F16/BF16 number", l->path,
                      mod);
    sd_to_f32(v, t->data, t->dtype, 1);
    if (!isfinite(*v))
        return sd_err(SDVK_ERR_FORMAT, "%s: %s.alpha is not finite", l->path, mod);
    return SDVK_OK;
}

/* diffusers' lora_adapter_metadata: {"unet.lora_alpha": 16, "unet.alpha_pattern": {...}, ...} */
static int meta_alpha(json_t *meta, const char *part, const char *module, double *alpha,
                      int *rslora) {
    if (!meta)
        return 0;
    char k[64];
    snprintf(k, sizeof k, "%s.use_rslora", part);
    *rslora = json_is_true(json_object_get(meta, k));
    snprintf(k, sizeof k, "%s.alpha_pattern", part);
    json_t *pat = json_object_get(meta, k);
    const char *key;
    json_t *v;
    if (json_is_object(pat)) {
        /* PEFT matches a pattern against the end of the module path at a
         * dot boundary; patterns here are taken literally. */
        json_object_foreach(pat, key, v) {
            size_t ml = strlen(module), kl = strlen(key);
            if (json_is_number(v) && ml >= kl && !strcmp(module + ml - kl, key) &&
                (ml == kl || module[ml - kl - 1] == '.')) {
                *alpha = json_number_value(v);
                return 1;
            }
        }
    }
    snprintf(k, sizeof k, "%s.lora_alpha", part);
    v = json_object_get(meta, k);
    if (json_is_number(v)) {
        *alpha = json_number_value(v);
        return 1;
    }
    return 0;
}

/* ---- loading ---- */

void sd_lora_free(sd_lora *l) {
    if (!l)
        return;
    for (int i = 0; i < l->n_mods; i++) {
        free(l->mods[i].target);
        free(l->mods[i].source);
    }
    free(l->mods);
    sd_st_close(l->st);
    free(l->path);
    free(l);
}

static void note_ignored(sd_lora *l, const char *name, int *listed) {
    l->n_ignored++;
    if (*listed < 3) {
        size_t o = strlen(l->ignored_note);
        snprintf(l->ignored_note + o, sizeof l->ignored_note - o, "%s%s", *listed ? ", " : "", name);
        (*listed)++;
    }
}

/* One module: entries e[0..k) share the module name. */
static sdvk_status add_module(sd_lora *l, const amap *am, entry *e, int k, json_t *meta,
                              const sd_safetensors *model, int *listed) {
    const char *mod = e[0].module;
    const alias *a = find_alias(am, mod);
    if (!a) {
        for (int i = 0; i < k; i++) note_ignored(l, e[i].t->name, listed);
        return SDVK_OK;
    }
    if (!a->target)
        return sd_err(SDVK_ERR_FORMAT, "%s: LoRA module %s names two weights of the model", l->path,
                      mod);
    const sd_st_tensor *down = NULL, *up = NULL, *al = NULL;
    for (int i = 0; i < k; i++) {
        const sd_st_tensor **slot = e[i].role == R_DOWN ? &down : e[i].role == R_UP ? &up : &al;
        if (e[i].role == R_UNSUP)
            return sd_err(SDVK_ERR_UNSUPPORTED,
                          "%s: LoRA module %s (for %s) is %s, which sdvk cannot apply", l->path,
                          mod, a->target, e[i].why);
        if (*slot)
            return sd_err(SDVK_ERR_FORMAT, "%s: LoRA module %s has two tensors for the same role (%s, %s)",
                          l->path, mod, (*slot)->name, e[i].t->name);
        *slot = e[i].t;
    }
    if (!down || !up)
        return sd_err(SDVK_ERR_FORMAT, "%s: LoRA module %s (for %s) has no %s weight", l->path, mod,
                      a->target, down ? "up (lora_up / lora_B)" : "down (lora_down / lora_A)");
    const sd_st_tensor *tw = sd_st_find(model, a->target);
    if (!tw)
        return sd_err(SDVK_ERR_MODEL, "%s: LoRA target %s missing from the model", l->path, a->target);
    if (!down->supported || !up->supported)
        return sd_err(SDVK_ERR_FORMAT, "%s: LoRA module %s has dtype %s (F32, F16 or BF16 needed)",
                      l->path, mod, down->supported ? up->dtype_str : down->dtype_str);
    /* up [out, r(, 1, 1)], down [r, in(, kh, kw)]; target [out, in(, kh, kw)]. */
    int64_t in_dim = 1, din = 1;
    for (int d = 1; d < tw->ndim; d++) in_dim *= tw->ne[d];
    for (int d = 1; d < down->ndim; d++) din *= down->ne[d];
    int up_ok = (up->ndim == 2 || up->ndim == 4) && (up->ndim == 2 || (up->ne[2] == 1 && up->ne[3] == 1));
    if (!up_ok || (down->ndim != 2 && down->ndim != 4) || up->ne[1] != down->ne[0] ||
        up->ne[0] != tw->ne[0] || din != in_dim || down->ne[0] < 1 || down->ne[0] > 65536)
        return sd_err(SDVK_ERR_MODEL,
                      "%s: LoRA module %s does not fit %s [%lld x %lld]: up [%lld x %lld], down "
                      "[%lld x %lld] (a LoRA for another model?)",
                      l->path, mod, a->target, (long long)tw->ne[0], (long long)in_dim,
                      (long long)up->ne[0], (long long)(up->ndim > 1 ? up->ne[1] : 0),
                      (long long)down->ne[0], (long long)din);
    if (down->ndim == 4 && tw->ndim == 4 && (down->ne[2] != tw->ne[2] || down->ne[3] != tw->ne[3]))
        return sd_err(SDVK_ERR_MODEL, "%s: LoRA module %s has a %lldx%lld kernel, %s %lldx%lld",
                      l->path, mod, (long long)down->ne[2], (long long)down->ne[3], a->target,
                      (long long)tw->ne[2], (long long)tw->ne[3]);
    sd_lora_mod m = {0};
    m.rank = (int)down->ne[0];
    m.alpha = (float)m.rank;
    m.up = up;
    m.down = down;
    m.out_dim = tw->ne[0];
    m.in_dim = in_dim;
    int rslora = 0;
    if (al) {
        SD_TRY(scalar_of(l, al, mod, &m.alpha));
    } else {
        double av;
        const char *part = a->part == P_UNET ? "unet" : "text_encoder";
        /* the metadata's pattern keys are module paths inside the part */
        const char *inner = strchr(mod, '.') && (starts(mod, "unet.") || starts(mod, "text_encoder."))
                                ? strchr(mod, '.') + 1
                                : mod;
        if (meta_alpha(meta, part, inner, &av, &rslora))
            m.alpha = (float)av;
    }
    if (rslora)
        return sd_err(SDVK_ERR_UNSUPPORTED, "%s: rank-stabilised LoRA (use_rslora) is not supported",
                      l->path);
    if (!(m.target = strdup(a->target)) || !(m.source = strdup(mod))) {
        free(m.target);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    l->mods[l->n_mods++] = m;
    if (a->part == P_UNET)
        l->n_unet++;
    else
        l->n_te++;
    return SDVK_OK;
}

sdvk_status sd_lora_from_table(sd_safetensors *st, const sd_safetensors *model, sd_lora **out) {
    *out = NULL;
    sd_lora *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(st->path))) {
        free(l);
        sd_st_close(st);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    l->st = st;
    amap am = {0};
    entry *e = calloc((size_t)(st->n ? st->n : 1), sizeof *e);
    json_t *meta = NULL;
    sdvk_status s = e ? build_aliases(model, &am) : sd_err(SDVK_ERR_OOM, "out of memory");
    const char *mj = sd_st_meta(st, "lora_adapter_metadata");
    if (!s && mj && !(meta = json_loads(mj, 0, NULL)))
        s = sd_err(SDVK_ERR_FORMAT, "%s: metadata lora_adapter_metadata is not valid JSON", l->path);
    int ne = 0, n_other = 0, listed = 0;
    char mod[512];
    for (int i = 0; !s && i < st->n; i++) {
        int role;
        const char *why;
        if (!parse_key(st->t[i].name, mod, sizeof mod, &role, &why)) {
            n_other++;
            note_ignored(l, st->t[i].name, &listed);
            continue;
        }
        if (!(e[ne].module = strdup(mod))) {
            s = sd_err(SDVK_ERR_OOM, "out of memory");
            break;
        }
        e[ne].role = role;
        e[ne].t = &st->t[i];
        e[ne].why = why;
        ne++;
    }
    if (!s && ne > 1)
        qsort(e, (size_t)ne, sizeof *e, cmp_entry);
    if (!s && !(l->mods = calloc((size_t)(ne ? ne : 1), sizeof *l->mods)))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    for (int i = 0; !s && i < ne;) {
        int j = i + 1;
        while (j < ne && !strcmp(e[j].module, e[i].module)) j++;
        s = add_module(l, &am, e + i, j - i, meta, model, &listed);
        i = j;
    }
    if (!s && l->n_mods > 1) {
        qsort(l->mods, (size_t)l->n_mods, sizeof *l->mods, cmp_mod);
        for (int i = 1; i < l->n_mods && !s; i++)
            if (!strcmp(l->mods[i].target, l->mods[i - 1].target))
                s = sd_err(SDVK_ERR_FORMAT, "%s: LoRA modules %s and %s both target %s", l->path,
                           l->mods[i - 1].source, l->mods[i].source, l->mods[i].target);
    }
    if (!s && l->n_ignored) {
        char head[128];
        snprintf(head, sizeof head, "%d tensors ignored (%d for modules this model lacks, %d not LoRA weights): ",
                 l->n_ignored, l->n_ignored - n_other, n_other);
        size_t hl = strlen(head), nl = strlen(l->ignored_note);
        if (hl + nl + 1 <= sizeof l->ignored_note) {
            memmove(l->ignored_note + hl, l->ignored_note, nl + 1);
            memcpy(l->ignored_note, head, hl);
        }
        sd_log_verbose("%s: %s", l->path, l->ignored_note);
    }
    if (!s && l->n_mods == 0)
        s = sd_err(SDVK_ERR_MODEL, "%s: no LoRA module matches this model (%s)", l->path,
                   l->n_ignored ? l->ignored_note : "the file has no LoRA tensors");
    for (int i = 0; i < ne; i++) free(e[i].module);
    free(e);
    amap_free(&am);
    json_decref(meta);
    if (s) {
        sd_lora_free(l);
        return s;
    }
    *out = l;
    return SDVK_OK;
}

sdvk_status sd_lora_load(const char *path, const sd_safetensors *model, sd_lora **out) {
    *out = NULL;
    sd_safetensors *st;
    SD_TRY(sd_weights_file_open(path, &st));
    return sd_lora_from_table(st, model, out);
}

const sd_lora_mod *sd_lora_find(const sd_lora *l, const char *target) {
    if (!l->n_mods)
        return NULL;
    sd_lora_mod key = {.target = (char *)target};
    return bsearch(&key, l->mods, (size_t)l->n_mods, sizeof *l->mods, cmp_mod);
}

/* ---- arithmetic ---- */

sdvk_status sd_st_tensor_f32(const sd_st_tensor *t, float *dst, size_t n) {
    size_t ne = 1;
    for (int d = 0; d < t->ndim; d++) ne *= (size_t)t->ne[d];
    if (!t->supported)
        return sd_err(SDVK_ERR_MODEL, "tensor %s has dtype %s (F32, F16 or BF16 needed)", t->name,
                      t->dtype_str);
    if (ne != n)
        return sd_err(SDVK_ERR_INVALID_ARG, "tensor %s has %zu elements, %zu expected", t->name, ne, n);
    sd_to_f32(dst, t->data, t->dtype, n);
    return SDVK_OK;
}

static sdvk_status delta_rows(const sd_lora_mod *m, float weight, float *w, size_t n, float sign) {
    size_t O = (size_t)m->out_dim, I = (size_t)m->in_dim, R = (size_t)m->rank;
    if (n != O * I)
        return sd_err(SDVK_ERR_INVALID_ARG, "LoRA %s: target buffer has %zu floats, %zu expected",
                      m->source, n, O * I);
    float *up = malloc(O * R * sizeof *up), *down = malloc(R * I * sizeof *down),
          *row = malloc(I * sizeof *row);
    sdvk_status s = SDVK_OK;
    if (!up || !down || !row) {
        s = sd_err(SDVK_ERR_OOM, "LoRA %s: out of memory", m->source);
        goto done;
    }
    sd_to_f32(up, m->up->data, m->up->dtype, O * R);
    sd_to_f32(down, m->down->data, m->down->dtype, R * I);
    const float scale = sign * weight * (m->alpha / (float)m->rank);
    for (size_t o = 0; o < O; o++) {
        /* row = up[o, :] . down, summed over the rank in a fixed order. */
        memset(row, 0, I * sizeof *row);
        for (size_t r = 0; r < R; r++) {
            const float u = up[o * R + r];
            const float *dr = down + r * I;
            for (size_t i = 0; i < I; i++) row[i] += u * dr[i];
        }
        float *wo = w + o * I;
        for (size_t i = 0; i < I; i++) wo[i] += scale * row[i];
    }
done:
    free(up);
    free(down);
    free(row);
    return s;
}

sdvk_status sd_lora_apply(const sd_lora_mod *m, float weight, float *w, size_t n) {
    return delta_rows(m, weight, w, n, 1.0f);
}

sdvk_status sd_lora_unapply(const sd_lora_mod *m, float weight, float *w, size_t n) {
    return delta_rows(m, weight, w, n, -1.0f);
}
