/* Extra networks: LoRAs merged into the resident weights, textual-inversion
 * embeddings in the token stream (see extra.h). */
#include "extra.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/status.h"
#include "io/embedding.h"
#include "io/lora.h"
#include "tokenizer/tokenizer.h"

#define MAX_LORAS 32
#define MAX_EMB_FILES 4096

typedef struct lfile {
    char *path;
    sd_lora *l;
} lfile;

typedef struct want {
    sd_lora *l;
    float te, unet;
} want;

typedef struct emb {
    char *name, *path;
    int32_t *name_ids;
    int name_len;
    sd_ti_embedding *e; /* loaded on first use */
} emb;

struct sd_extra {
    lfile *files;
    int nfiles;
    want api[MAX_LORAS], cur[MAX_LORAS];
    int n_api, n_cur;
    /* what each network's resident weights carry */
    want have[SD_NET_COUNT][MAX_LORAS];
    int n_have[SD_NET_COUNT];
    const sd_bweights *have_set[SD_NET_COUNT];
    long have_prepared[SD_NET_COUNT];
    emb *embs;
    int nembs, embs_scanned;
};

static void file_list_add(sdvk_file_list *l, const char *name, const char *path);

void sd_extra_free(struct sd_extra *x) {
    if (!x)
        return;
    for (int i = 0; i < x->nfiles; i++) {
        free(x->files[i].path);
        sd_lora_free(x->files[i].l);
    }
    free(x->files);
    for (int i = 0; i < x->nembs; i++) {
        free(x->embs[i].name);
        free(x->embs[i].path);
        free(x->embs[i].name_ids);
        sd_embedding_free(x->embs[i].e);
    }
    free(x->embs);
    free(x);
}

static sdvk_status get(sdvk_ctx *ctx, struct sd_extra **out) {
    if (!ctx->extra && !(ctx->extra = calloc(1, sizeof *ctx->extra)))
        return sd_err(SDVK_ERR_OOM, "out of memory");
    *out = ctx->extra;
    return SDVK_OK;
}

/* ---- LoRA files ------------------------------------------------------------ */

static int has_ext(const char *name, const char *const *exts) {
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (; *exts; exts++)
        if (!strcasecmp(dot, *exts))
            return 1;
    return 0;
}

static const char *const k_lora_ext[] = {".safetensors", ".pt", ".ckpt", NULL};
static const char *const k_emb_ext[] = {".pt", ".safetensors", ".bin", NULL};

/* A name from a prompt: a file of dir, never a path. */
static sdvk_status resolve_name(const char *dir, const char *what, const char *name,
                                const char *const *exts, char **path) {
    *path = NULL;
    if (!name[0] || name[0] == '.' || strchr(name, '/') || strchr(name, '\\') || strlen(name) > 200)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s name '%.60s' is not a plain file name", what, name);
    if (!dir || !dir[0])
        return sd_err(SDVK_ERR_INVALID_ARG, "%s '%s': no %s folder is set", what, name, what);
    size_t n = strlen(dir) + strlen(name) + 32;
    char *p = malloc(n);
    if (!p)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    for (const char *const *e = exts; *e; e++) {
        snprintf(p, n, "%s/%s%s", dir, name, *e);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            *path = p;
            return SDVK_OK;
        }
    }
    free(p);
    return sd_err(SDVK_ERR_INVALID_ARG, "%s '%s' not found in %s (looked for %s%s)", what, name,
                  dir, name, exts[0]);
}

static sdvk_status load_lora(sdvk_ctx *ctx, const char *path, sd_lora **out) {
    struct sd_extra *x = NULL;
    SD_TRY(get(ctx, &x));
    for (int i = 0; i < x->nfiles; i++)
        if (!strcmp(x->files[i].path, path)) {
            *out = x->files[i].l;
            return SDVK_OK;
        }
    lfile *nf = realloc(x->files, (size_t)(x->nfiles + 1) * sizeof *nf);
    if (!nf)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    x->files = nf;
    sd_lora *l = NULL;
    SD_TRY(sd_lora_load(path, ctx->model->st, &l));
    if (!(x->files[x->nfiles].path = strdup(path))) {
        sd_lora_free(l);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    x->files[x->nfiles++].l = l;
    sd_log_verbose("LoRA %s: %d modules (UNet %d, text encoder %d)%s%s", path, l->n_mods, l->n_unet,
                   l->n_te, l->n_ignored ? "; ignored: " : "", l->n_ignored ? l->ignored_note : "");
    *out = l;
    return SDVK_OK;
}

sdvk_status sdvk_set_loras(sdvk_ctx *ctx, const sdvk_lora *loras, int n) {
    if (!ctx || (n && !loras) || n < 0)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_set_loras: bad arguments");
    sd_ctx_enter(ctx);
    if (n > MAX_LORAS)
        return sd_err(SDVK_ERR_INVALID_ARG, "%d LoRAs: at most %d at once", n, MAX_LORAS);
    struct sd_extra *x = NULL;
    SD_TRY(get(ctx, &x));
    want w[MAX_LORAS];
    for (int i = 0; i < n; i++) {
        if (!loras[i].path)
            return sd_err(SDVK_ERR_INVALID_ARG, "LoRA %d: no path", i);
        char *path = NULL;
        if (strchr(loras[i].path, '/'))
            path = strdup(loras[i].path);
        else
            SD_TRY(resolve_name(ctx->opt.lora_dir, "LoRA", loras[i].path, k_lora_ext, &path));
        if (!path)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        sdvk_status s = load_lora(ctx, path, &w[i].l);
        free(path);
        SD_TRY(s);
        if (!isfinite(loras[i].te_weight) || !isfinite(loras[i].unet_weight))
            return sd_err(SDVK_ERR_INVALID_ARG, "LoRA %s: weights must be finite", loras[i].path);
        w[i].te = loras[i].te_weight;
        w[i].unet = loras[i].unet_weight;
    }
    memcpy(x->api, w, (size_t)n * sizeof *w);
    x->n_api = n;
    memcpy(x->cur, w, (size_t)n * sizeof *w);
    x->n_cur = n;
    return SDVK_OK;
}

/* <lora:NAME>, <lora:NAME:W>, <lora:NAME:TE:UNET> (also <lyco:...>) */
sdvk_status sd_extra_prompt_loras(sdvk_ctx *ctx, const char *prompt, char **clean) {
    struct sd_extra *x = NULL;
    SD_TRY(get(ctx, &x));
    size_t n = strlen(prompt);
    char *out = malloc(n + 1);
    if (!out)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sdvk_lora tags[MAX_LORAS];
    char names[MAX_LORAS][512];
    int nt = 0;
    size_t o = 0;
    sdvk_status s = SDVK_OK;
    for (size_t i = 0; i < n && !s;) {
        int lora = !strncasecmp(prompt + i, "<lora:", 6), lyco = !strncasecmp(prompt + i, "<lyco:", 6);
        const char *end = (lora || lyco) ? strchr(prompt + i, '>') : NULL;
        if (!end) {
            out[o++] = prompt[i++];
            continue;
        }
        char body[512];
        size_t bl = (size_t)(end - (prompt + i + 6));
        if (bl >= sizeof body) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "LoRA tag too long: %.40s...", prompt + i);
            break;
        }
        memcpy(body, prompt + i + 6, bl);
        body[bl] = 0;
        if (nt == MAX_LORAS) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "more than %d LoRA tags in the prompt", MAX_LORAS);
            break;
        }
        char *f[4] = {body, NULL, NULL, NULL};
        int nf = 1;
        for (char *c = body; *c && nf < 4; c++)
            if (*c == ':') {
                *c = 0;
                f[nf++] = c + 1;
            }
        double v[2] = {1.0, 1.0};
        for (int k = 1; k < nf && k <= 2; k++) {
            char *e;
            v[k - 1] = strtod(f[k], &e);
            if (e == f[k] || *e || !isfinite(v[k - 1])) {
                s = sd_err(SDVK_ERR_INVALID_ARG, "LoRA tag <lora:%s:...>: '%s' is not a weight", f[0],
                           f[k]);
                break;
            }
        }
        if (s)
            break;
        snprintf(names[nt], sizeof names[nt], "%s", f[0]);
        tags[nt].path = names[nt];
        tags[nt].te_weight = (float)v[0];
        tags[nt].unet_weight = (float)(nf >= 3 ? v[1] : v[0]);
        nt++;
        i = (size_t)(end - prompt) + 1;
    }
    out[o] = 0;
    if (!s && nt) {
        /* the prompt's set replaces the API's for this generation */
        want keep[MAX_LORAS];
        int nk = x->n_api;
        memcpy(keep, x->api, sizeof keep);
        s = sdvk_set_loras(ctx, tags, nt);
        memcpy(x->api, keep, sizeof keep);
        x->n_api = nk;
    } else if (!s) {
        memcpy(x->cur, x->api, sizeof x->cur);
        x->n_cur = x->n_api;
    }
    if (s) {
        free(out);
        return s;
    }
    *clean = out;
    return SDVK_OK;
}

static sd_net net_of(const char *target) {
    if (!strncmp(target, "model.diffusion_model.", 22))
        return SD_NET_UNET;
    if (!strncmp(target, "cond_stage_model.", 17))
        return SD_NET_CLIP;
    return SD_NET_COUNT;
}

static float weight_for(const want *w, sd_net net) { return net == SD_NET_CLIP ? w->te : w->unet; }

/* Whether the lists put the same LoRAs with the same weights on net. */
static int same(const want *a, int na, const want *b, int nb, sd_net net) {
    int i = 0, j = 0;
    for (;;) { /* LoRAs with weight 0 do nothing: skip them */
        while (i < na && (weight_for(&a[i], net) == 0.0f || !(net == SD_NET_CLIP ? a[i].l->n_te : a[i].l->n_unet)))
            i++;
        while (j < nb && (weight_for(&b[j], net) == 0.0f || !(net == SD_NET_CLIP ? b[j].l->n_te : b[j].l->n_unet)))
            j++;
        if (i == na || j == nb)
            return i == na && j == nb;
        if (a[i].l != b[j].l || weight_for(&a[i], net) != weight_for(&b[j], net))
            return 0;
        i++, j++;
    }
}

/* Remakes target from the checkpoint plus the wanted deltas on net. */
static sdvk_status remake(sdvk_ctx *ctx, sd_net net, const char *target, const want *cur, int ncur,
                          float **buf, size_t *cap) {
    const sd_st_tensor *t = sd_st_find(ctx->model->st, target);
    if (!t || !t->supported)
        return SDVK_OK; /* sd_lora_load checked the targets against this model */
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->ne[d];
    int any = 0;
    for (int i = 0; i < ncur && !any; i++)
        any = weight_for(&cur[i], net) != 0.0f && sd_lora_find(cur[i].l, target);
    sd_bweights *w = ctx->w[net];
    if (!any) /* back to the checkpoint's own values */
        return ctx->be->v->weights_update(ctx->be, w, t->data, NULL, n);
    if (n > *cap) {
        float *nb = realloc(*buf, n * sizeof(float));
        if (!nb)
            return sd_err(SDVK_ERR_OOM, "out of memory merging LoRA into %s", target);
        *buf = nb;
        *cap = n;
    }
    SD_TRY(sd_st_tensor_f32(t, *buf, n));
    for (int i = 0; i < ncur; i++) {
        const sd_lora_mod *m = weight_for(&cur[i], net) != 0.0f ? sd_lora_find(cur[i].l, target) : NULL;
        if (m)
            SD_TRY(sd_lora_apply(m, weight_for(&cur[i], net), *buf, n));
    }
    return ctx->be->v->weights_update(ctx->be, w, t->data, *buf, n);
}

sdvk_status sd_extra_sync(sdvk_ctx *ctx, sd_net net) {
    struct sd_extra *x = ctx->extra;
    if (!x || (net != SD_NET_UNET && net != SD_NET_CLIP))
        return SDVK_OK;
    sd_bweights *w = ctx->w[net];
    if (!w)
        return SDVK_OK;
    sd_weight_stats st;
    ctx->be->v->weights_stats(ctx->be, w, &st);
    int fresh = x->have_set[net] != w; /* a new set starts from the checkpoint */
    if (fresh)
        x->n_have[net] = 0;
    if (!fresh && x->have_prepared[net] == st.prepared &&
        same(x->have[net], x->n_have[net], x->cur, x->n_cur, net))
        return SDVK_OK;
    /* every target the old or the new set touches on this network */
    float *buf = NULL;
    size_t cap = 0;
    sdvk_status s = SDVK_OK;
    const want *lists[2] = {x->have[net], x->cur};
    int counts[2] = {x->n_have[net], x->n_cur};
    long touched = 0;
    for (int li = 0; li < 2 && !s; li++)
        for (int i = 0; i < counts[li] && !s; i++) {
            const sd_lora *l = lists[li][i].l;
            for (int k = 0; k < l->n_mods && !s; k++) {
                const char *target = l->mods[k].target;
                if (net_of(target) != net)
                    continue;
                /* each target once: skip it when an earlier LoRA has it too */
                int seen = 0;
                for (int lj = 0; lj <= li && !seen; lj++)
                    for (int j = 0; j < (lj < li ? counts[lj] : i) && !seen; j++)
                        seen = sd_lora_find(lists[lj][j].l, target) != NULL;
                if (seen)
                    continue;
                s = remake(ctx, net, target, x->cur, x->n_cur, &buf, &cap);
                touched++;
            }
        }
    free(buf);
    if (s)
        return sd_err_prefix(s, "applying LoRA");
    memcpy(x->have[net], x->cur, sizeof x->cur);
    x->n_have[net] = x->n_cur;
    x->have_set[net] = w;
    x->have_prepared[net] = st.prepared;
    sd_log_verbose("LoRA: %ld %s weights remade for %d LoRA(s)", touched,
                   net == SD_NET_CLIP ? "text encoder" : "UNet", x->n_cur);
    return SDVK_OK;
}

/* ---- embeddings --------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b) {
    return strcmp(((const emb *)a)->name, ((const emb *)b)->name);
}

static sdvk_status scan_dir(const char *dir, const char *const *exts, sdvk_file_list *out) {
    memset(out, 0, sizeof *out);
    if (!dir || !dir[0])
        return SDVK_OK;
    DIR *d = opendir(dir);
    if (!d)
        return sd_err(SDVK_ERR_IO, "%s: cannot open the folder", dir);
    struct dirent *de;
    while ((de = readdir(d)) && out->n < MAX_EMB_FILES) {
        if (de->d_name[0] == '.' || !has_ext(de->d_name, exts))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) || !S_ISREG(st.st_mode))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s", de->d_name);
        char *dot = strrchr(name, '.');
        if (dot)
            *dot = 0;
        file_list_add(out, name, path);
    }
    closedir(d);
    return SDVK_OK;
}

static sdvk_status scan_embeddings(sdvk_ctx *ctx, struct sd_extra *x) {
    if (x->embs_scanned)
        return SDVK_OK;
    sdvk_file_list fl;
    SD_TRY(scan_dir(ctx->opt.embedding_dir, k_emb_ext, &fl));
    x->embs = calloc((size_t)(fl.n ? fl.n : 1), sizeof *x->embs);
    if (!x->embs) {
        sdvk_file_list_free(&fl);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    sdvk_status s = SDVK_OK;
    for (int i = 0; i < fl.n && !s; i++) {
        emb *e = &x->embs[x->nembs];
        e->name = fl.names[i];
        e->path = fl.paths[i];
        fl.names[i] = fl.paths[i] = NULL;
        x->nembs++;
        s = sd_tokenize(ctx->tok, e->name, &e->name_ids, &e->name_len);
    }
    sdvk_file_list_free(&fl);
    qsort(x->embs, (size_t)x->nembs, sizeof *x->embs, cmp_names);
    x->embs_scanned = 1;
    if (x->nembs)
        sd_log_verbose("embeddings: %d in %s", x->nembs, ctx->opt.embedding_dir);
    return s;
}

sdvk_status sd_extra_tokenize(sdvk_ctx *ctx, const char *prompt, int min_chunks,
                              sd_extra_tok *vecs, int32_t **ids, float **weights, int *n_chunks,
                              int *chunked) {
    sd_prompt_opts o;
    sd_prompt_opts_default(&o);
    o.min_chunks = min_chunks;
    if (!ctx->opt.embedding_dir || !ctx->opt.embedding_dir[0])
        return sd_tokenize_prompt_ex(ctx->tok, prompt, &o, ids, weights, n_chunks, chunked);
    struct sd_extra *x = NULL;
    SD_TRY(get(ctx, &x));
    SD_TRY(scan_embeddings(ctx, x));
    if (!x->nembs)
        return sd_tokenize_prompt_ex(ctx->tok, prompt, &o, ids, weights, n_chunks, chunked);
    const int V = ctx->model->clip.vocab, W = ctx->model->clip.width;
    sd_prompt_emb *pe = calloc((size_t)x->nembs, sizeof *pe);
    if (!pe)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    for (int i = 0; i < x->nembs; i++) {
        pe[i].name_ids = x->embs[i].name_ids;
        pe[i].name_len = x->embs[i].name_len;
        pe[i].n_vec = 1;
        pe[i].first_id = V;
    }
    o.embs = pe;
    o.n_embs = x->nembs;
    /* pass 1 finds the embeddings the prompt names; pass 2 puts their vectors */
    sdvk_status s = sd_tokenize_prompt_ex(ctx->tok, prompt, &o, ids, weights, n_chunks, chunked);
    free(*ids);
    free(*weights);
    *ids = NULL;
    *weights = NULL;
    for (int i = 0; i < x->nembs && !s; i++) {
        if (!pe[i].used)
            continue;
        emb *e = &x->embs[i];
        if (!e->e && (s = sd_embedding_load(e->path, W, &e->e)) == SDVK_OK)
            sd_log_verbose("embedding %s: %d vectors (%s)", e->name, e->e->n_vec, e->path);
        if (s)
            break;
        /* its vectors: reuse them when an earlier prompt of this call put them */
        int at = -1;
        for (int k = 0; k + e->e->n_vec <= vecs->n_vec && at < 0; k++)
            if (!memcmp(vecs->vec + (size_t)k * W, e->e->vec, (size_t)e->e->n_vec * W * sizeof(float)))
                at = k;
        if (at < 0) {
            float *nv = realloc(vecs->vec, (size_t)(vecs->n_vec + e->e->n_vec) * W * sizeof(float));
            if (!nv) {
                s = sd_err(SDVK_ERR_OOM, "out of memory");
                break;
            }
            vecs->vec = nv;
            memcpy(nv + (size_t)vecs->n_vec * W, e->e->vec, (size_t)e->e->n_vec * W * sizeof(float));
            at = vecs->n_vec;
            vecs->n_vec += e->e->n_vec;
        }
        pe[i].n_vec = e->e->n_vec;
        pe[i].first_id = V + at;
    }
    for (int i = 0; i < x->nembs; i++)
        if (!pe[i].used)
            pe[i].name_len = 0; /* not named: ignore in pass 2 */
    if (!s)
        s = sd_tokenize_prompt_ex(ctx->tok, prompt, &o, ids, weights, n_chunks, chunked);
    free(pe);
    return s;
}

/* ---- listings -------------------------------------------------------------------- */

static void file_list_add(sdvk_file_list *l, const char *name, const char *path) {
    char **nn = realloc(l->names, (size_t)(l->n + 1) * sizeof *nn);
    if (!nn)
        return;
    l->names = nn;
    char **np = realloc(l->paths, (size_t)(l->n + 1) * sizeof *np);
    if (!np)
        return;
    l->paths = np;
    l->names[l->n] = strdup(name);
    l->paths[l->n] = strdup(path);
    if (l->names[l->n] && l->paths[l->n])
        l->n++;
    else {
        free(l->names[l->n]);
        free(l->paths[l->n]);
    }
}

void sdvk_file_list_free(sdvk_file_list *l) {
    if (!l)
        return;
    for (int i = 0; i < l->n; i++) {
        free(l->names ? l->names[i] : NULL);
        free(l->paths ? l->paths[i] : NULL);
    }
    free(l->names);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

sdvk_status sdvk_list_loras(const sdvk_ctx *ctx, sdvk_file_list *out) {
    if (!ctx || !out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_list_loras: NULL argument");
    return scan_dir(ctx->opt.lora_dir, k_lora_ext, out);
}

sdvk_status sdvk_list_embeddings(const sdvk_ctx *ctx, sdvk_file_list *out) {
    if (!ctx || !out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_list_embeddings: NULL argument");
    return scan_dir(ctx->opt.embedding_dir, k_emb_ext, out);
}
