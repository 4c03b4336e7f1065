/* Builds, caches and runs the graphs of the three networks on the
 * context's backend. Everything here is channels-last (NHWC).
 *
 * Weights are resident per network (sd_net_weights); graphs are cached per
 * shape (sd_cache_*), so a request with another size or batch builds and
 * prepares a graph but converts no weight, and one with another step count,
 * CFG scale, sampler or seed reuses the prepared graph as it is: those are
 * inputs (the per-eval table of the sampler plan). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ctx.h"
#include "extra.h"
#include "model/taesd.h"

void sd_ctx_enter(const sdvk_ctx *ctx) {
    sd_log_set_sink(ctx->opt.log, ctx->opt.log_user, ctx->opt.verbose);
}

/* ---- resident weights ------------------------------------------------------ */

sdvk_status sd_net_weights(sdvk_ctx *ctx, sd_net net, sd_bweights **out) {
    if (!ctx->w[net])
        SD_TRY(ctx->be->v->weights_create(ctx->be, &ctx->w[net]));
    *out = ctx->w[net];
    return SDVK_OK;
}

void sd_net_release(sdvk_ctx *ctx, sd_net net) {
    for (int i = 0; i < SD_CACHE_SLOTS; i++)
        if (ctx->cache[i].g && ctx->cache[i].net == net)
            sd_cache_drop(ctx, &ctx->cache[i]);
    if (ctx->w[net]) {
        sd_weight_stats st;
        ctx->be->v->weights_stats(ctx->be, ctx->w[net], &st);
        ctx->weights_prepared_gone += st.prepared;
        ctx->be->v->weights_destroy(ctx->be, ctx->w[net]);
        ctx->w[net] = NULL;
    }
}

void sd_net_done(sdvk_ctx *ctx, sd_net net) {
    if (ctx->opt.keep == SDVK_KEEP_NONE)
        sd_net_release(ctx, net);
}

/* ---- memory planning ---------------------------------------------------------- */

static int64_t proc_kb(const char *file, const char *key) {
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    char line[256];
    int64_t v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') {
            v = strtoll(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* The user's budget is in decimal MB (as "4000" for a 4 GB machine); plans
 * keep 5 % of it back for what they do not see (allocator slack, the output
 * picture, the PNG encoder), so the measured peak stays under the figure. */
static int64_t user_budget(const sdvk_ctx *ctx) {
    return (int64_t)ctx->opt.max_memory_mb * 1000000 / 20 * 19;
}

int64_t sd_mem_free(sdvk_ctx *ctx) {
    int64_t limit, used = 0;
    if (ctx->be->mem_total) { /* device memory: what this context holds there */
        for (int n = 0; n < SD_NET_COUNT; n++)
            if (ctx->w[n]) {
                sd_weight_stats st;
                ctx->be->v->weights_stats(ctx->be, ctx->w[n], &st);
                used += (int64_t)st.bytes;
            }
        for (int i = 0; i < SD_CACHE_SLOTS; i++)
            if (ctx->cache[i].g)
                used += (int64_t)ctx->cache[i].g->arena_size;
        /* drivers keep some of the heap for themselves */
        limit = ctx->opt.max_memory_mb ? user_budget(ctx) : (int64_t)(ctx->be->mem_total / 10 * 9);
    } else { /* host memory: the process's resident set */
        int64_t rss = proc_kb("/proc/self/status", "VmRSS"), avail = proc_kb("/proc/meminfo",
                                                                              "MemAvailable");
        used = rss > 0 ? rss << 10 : 0;
        limit = ctx->opt.max_memory_mb ? user_budget(ctx)
                : avail > 0            ? used + (avail << 10)
                                       : INT64_MAX / 2;
    }
    return limit - used;
}

size_t sd_net_weight_bytes(sdvk_ctx *ctx, sd_net net) {
    if (ctx->w[net])
        return 0; /* resident: counted as used already */
    static const char *pre[SD_NET_COUNT][2] = {
        {"cond_stage_model.", "cond_stage_model."},
        {"model.diffusion_model.", "model.diffusion_model."},
        {"first_stage_model.decoder.", "first_stage_model.post_quant_conv."},
        {"first_stage_model.encoder.", "first_stage_model.quant_conv."},
        {"", ""}}; /* TAESD: its whole (small) file */
    const sd_safetensors *st = net == SD_NET_TAESD ? ctx->taesd : ctx->model->st;
    if (!st)
        return 0;
    size_t n = 0;
    for (int i = 0; i < st->n; i++)
        for (int k = 0; k < 2; k++)
            if (!strncmp(st->t[i].name, pre[net][k], strlen(pre[net][k]))) {
                /* a backend keeps 16-bit weights 16-bit (f32 precision on
                 * Vulkan doubles them: count that) */
                size_t b = st->t[i].nbytes;
                if (ctx->be->mem_total && ctx->opt.precision == SDVK_PRECISION_F32 &&
                    st->t[i].supported && sd_dtype_size(st->t[i].dtype) == 2)
                    b *= 2;
                n += b;
                break;
            }
    return n;
}

int sd_graph_fits_backend(const sdvk_ctx *ctx, const sd_graph *g) {
    if (!ctx->be->max_tensor)
        return 1;
    for (int i = 0; i < g->nt; i++)
        if (g->t[i].kind != SD_T_WEIGHT && g->t[i].base < 0 &&
            (uint64_t)sd_tensor_nelem(&g->t[i]) * 4 > ctx->be->max_tensor)
            return 0;
    return 1;
}

/* ---- the graph cache ----------------------------------------------------------- */

void sd_cache_drop(sdvk_ctx *ctx, sd_cached *c) {
    if (c->bg)
        ctx->be->v->release(ctx->be, c->bg);
    sd_graph_free(c->g);
    memset(c, 0, sizeof *c);
}

sd_cached *sd_cache_find(sdvk_ctx *ctx, const int64_t key[12]) {
    for (int i = 0; i < SD_CACHE_SLOTS; i++) {
        sd_cached *c = &ctx->cache[i];
        if (c->g && !memcmp(c->key, key, sizeof c->key)) {
            c->last_use = ++ctx->clock;
            return c;
        }
    }
    return NULL;
}

/* The slot for a new graph of kind key[0]: a free one when the kind has
 * fewer than SD_CACHE_PER_KIND graphs, else its least recently used; with
 * no free slot, the least recently used of all. */
static sd_cached *cache_slot(sdvk_ctx *ctx, int64_t kind) {
    sd_cached *free_slot = NULL, *lru_kind = NULL, *lru_all = NULL;
    int n_kind = 0;
    for (int i = 0; i < SD_CACHE_SLOTS; i++) {
        sd_cached *c = &ctx->cache[i];
        if (!c->g) {
            if (!free_slot)
                free_slot = c;
            continue;
        }
        if (c->key[0] == kind) {
            n_kind++;
            if (!lru_kind || c->last_use < lru_kind->last_use)
                lru_kind = c;
        }
        if (!lru_all || c->last_use < lru_all->last_use)
            lru_all = c;
    }
    sd_cached *c = n_kind >= SD_CACHE_PER_KIND ? lru_kind : free_slot ? free_slot : lru_all;
    if (c->g)
        sd_cache_drop(ctx, c);
    return c;
}

sdvk_status sd_cache_add(sdvk_ctx *ctx, sd_net net, sd_graph *g, const int64_t key[12],
                         const int in[8], int out_id, sd_cached **out) {
    *out = NULL;
    sd_bweights *w = NULL;
    sdvk_status s = g->status ? sd_err(g->status, "%s", g->err) : sd_graph_plan(g);
    if (!s)
        s = sd_net_weights(ctx, net, &w);
    sd_cached *c = NULL;
    if (!s) {
        sd_log_verbose("graph: %d nodes, %d tensors, activation arena %.1f MiB", g->nn, g->nt,
                       g->arena_size / 1048576.0);
        c = cache_slot(ctx, key[0]);
        double t0 = sd_now_s();
        s = ctx->be->v->prepare(ctx->be, g, w, &c->bg);
        ctx->seconds_preparing += sd_now_s() - t0;
    }
    if (s) {
        sd_graph_free(g);
        if (c)
            memset(c, 0, sizeof *c);
        return s;
    }
    c->g = g;
    c->net = net;
    memcpy(c->key, key, sizeof c->key);
    memcpy(c->in, in, sizeof c->in);
    c->out = out_id;
    c->last_use = ++ctx->clock;
    ctx->graphs_prepared++;
    /* the backend holds its own copy now: drop the checkpoint's pages */
    sd_st_release_pages(net == SD_NET_TAESD ? ctx->taesd : ctx->model->st);
    *out = c;
    return SDVK_OK;
}

/* ---- helpers ------------------------------------------------------------------- */

void sd_nchw_to_nhwc(const float *src, float *dst, int64_t b, int64_t c, int64_t h, int64_t w) {
    for (int64_t n = 0; n < b; n++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++)
                    dst[((n * h + y) * w + x) * c + k] = src[((n * c + k) * h + y) * w + x];
}

void sd_nhwc_to_nchw(const float *src, float *dst, int64_t b, int64_t c, int64_t h, int64_t w) {
    for (int64_t n = 0; n < b; n++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++)
                    dst[((n * c + k) * h + y) * w + x] = src[((n * h + y) * w + x) * c + k];
}

int64_t sd_find_nonfinite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return -1;
}


static sdvk_status write_in(sdvk_ctx *ctx, sd_cached *c, int id, const void *src) {
    return ctx->be->v->write(ctx->be, c->bg, id, src, sd_tensor_nbytes(&c->g->t[id]));
}

/* Reads tensor id into a fresh buffer. */
static sdvk_status read_out(sdvk_ctx *ctx, sd_cached *c, int id, float **out) {
    size_t n = sd_tensor_nbytes(&c->g->t[id]);
    *out = malloc(n);
    if (!*out)
        return sd_err(SDVK_ERR_OOM, "out of memory (%zu bytes)", n);
    sdvk_status s = ctx->be->v->read(ctx->be, c->bg, id, *out, n);
    if (s) {
        free(*out);
        *out = NULL;
    }
    return s;
}

static sdvk_status need_net(int present, const sdvk_ctx *ctx, const char *what) {
    if (!present)
        return sd_err(SDVK_ERR_MODEL, "%s: the checkpoint has no %s", ctx->model->path, what);
    return SDVK_OK;
}

/* A graph with one input and one output (CLIP, VAE decode/encode), built by
 * `build` on a cache miss and run once on `in`. */
typedef int (*build1_fn)(sd_graph *g, const sd_model *m, int in, int arg);

static sdvk_status run1(sdvk_ctx *ctx, sd_net net, const int64_t key[12], sd_dtype dt, int ndim,
                        const int64_t *ne, const char *name, build1_fn build, int arg,
                        const void *in, float **out) {
    sd_cached *c = sd_cache_find(ctx, key);
    if (!c) {
        sd_graph *g = sd_graph_new();
        if (!g)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        int ins[8] = {sd_graph_input(g, dt, ndim, ne, name)};
        int o = sd_graph_output(g, build(g, ctx->model, ins[0], arg));
        SD_TRY(sd_cache_add(ctx, net, g, key, ins, o, &c));
    }
    SD_TRY(sd_extra_sync(ctx, net)); /* LoRAs the request wants, merged */
    SD_TRY(write_in(ctx, c, c->in[0], in));
    SD_TRY(ctx->be->v->run(ctx->be, c->bg, 0, 1, NULL, NULL));
    return read_out(ctx, c, c->out, out);
}

/* ---- the networks ------------------------------------------------------------- */

static int clip_build(sd_graph *g, const sd_model *m, int tok, int clip_skip) {
    return sd_clip_build(g, m, tok, clip_skip);
}

sdvk_status sd_run_clip(sdvk_ctx *ctx, const int32_t *ids, int batch, int clip_skip,
                        const float *extra, int n_extra, float **out) {
    const sd_clip_arch *a = &ctx->model->clip;
    SD_TRY(need_net(a->present, ctx, "CLIP text encoder"));
    if (clip_skip < 1)
        clip_skip = 1;
    if (clip_skip > a->layers)
        return sd_err(SDVK_ERR_INVALID_ARG, "clip skip %d: the text encoder has %d layers",
                      clip_skip, a->layers);
    const sd_st_tensor *tab = sd_clip_token_table(ctx->model);
    if (!tab || tab->ndim != 2 || tab->ne[0] != a->vocab || tab->ne[1] != a->width || !tab->supported)
        return sd_err(SDVK_ERR_MODEL, "%s: bad or missing CLIP token embedding table",
                      ctx->model->path);
    const int64_t n = (int64_t)batch * a->n_pos, W = a->width;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= a->vocab + n_extra)
            return sd_err(SDVK_ERR_INVALID_ARG, "token id %d at position %lld is outside the "
                          "model's vocabulary (0..%d)", ids[i], (long long)i, a->vocab - 1);
    /* token rows from the (mmapped) table, embedding vectors past the vocabulary */
    float *emb = malloc((size_t)(n * W) * sizeof *emb);
    if (!emb)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    const size_t es = sd_dtype_size(tab->dtype);
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < a->vocab)
            sd_to_f32(emb + i * W, (const char *)tab->data + (size_t)ids[i] * (size_t)W * es,
                      tab->dtype, (size_t)W);
        else
            memcpy(emb + i * W, extra + (int64_t)(ids[i] - a->vocab) * W, (size_t)W * sizeof *emb);
    }
    int64_t key[12] = {SD_GK_CLIP, batch, clip_skip}, ne[3] = {batch, a->n_pos, W};
    sdvk_status s = run1(ctx, SD_NET_CLIP, key, SD_F32, 3, ne, "token embeddings", clip_build,
                         clip_skip, emb, out);
    free(emb);
    return s;
}

static sdvk_status check_latent(const sdvk_ctx *ctx, int64_t h, int64_t w) {
    (void)ctx; /* any size: see sd_unet_build */
    if (h < 1 || w < 1 || h > SD_MAX_SIDE || w > SD_MAX_SIDE)
        return sd_err(SDVK_ERR_INVALID_ARG, "latent %lldx%lld: sides must be in 1..%d",
                      (long long)w, (long long)h, SD_MAX_SIDE);
    return SDVK_OK;
}

sdvk_status sd_run_unet(sdvk_ctx *ctx, const float *x, int64_t B, int64_t h, int64_t w, float t,
                        const float *context, int64_t L, float **eps) {
    const sd_unet_arch *a = &ctx->model->unet;
    SD_TRY(need_net(a->present, ctx, "UNet"));
    SD_TRY(check_latent(ctx, h, w));
    int64_t key[12] = {SD_GK_UNET, B, h, w, L};
    sd_cached *c = sd_cache_find(ctx, key);
    if (!c) {
        sd_graph *g = sd_graph_new();
        if (!g)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        int64_t xne[4] = {B, h, w, a->in_ch}, tne[1] = {B}, cne[3] = {B, L, a->ctx_dim};
        int in[8] = {sd_graph_input(g, SD_F32, 4, xne, "latent"),
                     sd_graph_input(g, SD_F32, 1, tne, "timestep"),
                     sd_graph_input(g, SD_F32, 3, cne, "context")};
        int o = sd_graph_output(g, sd_unet_build(g, ctx->model, in[0], in[1], in[2]));
        SD_TRY(sd_cache_add(ctx, SD_NET_UNET, g, key, in, o, &c));
    }
    SD_TRY(sd_extra_sync(ctx, SD_NET_UNET));
    float *tv = malloc((size_t)B * sizeof *tv);
    if (!tv)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    for (int64_t i = 0; i < B; i++) tv[i] = t;
    sdvk_status s = write_in(ctx, c, c->in[0], x);
    if (!s)
        s = write_in(ctx, c, c->in[1], tv);
    if (!s)
        s = write_in(ctx, c, c->in[2], context);
    free(tv);
    if (!s)
        s = ctx->be->v->run(ctx->be, c->bg, 0, 1, NULL, NULL);
    return s ? s : read_out(ctx, c, c->out, eps);
}

static int drop_other_graphs(sdvk_ctx *ctx, int64_t kind);
static int graph_fits(sdvk_ctx *ctx, sd_graph *g, sd_net net, size_t extra);

/* ---- the sampler loop ------------------------------------------------------------- */

/* Table rows (evals) a prepared sample graph has room for: a power of two,
 * so most step counts reuse the graph. */
static int64_t table_cap(int n_evals) {
    int64_t cap = 32;
    while (cap < n_evals) cap *= 2;
    return cap;
}

/* Inputs of a sample graph, in c->in[]. */
enum { SI_REGS, SI_CTX, SI_ROWS, SI_NOISE, SI_KEEP, SI_EXTRA };

/* One recorded step: UNet at c_in·S[0] (CFG pair), the register updates of
 * the plan's linear recurrence, the mask blend. */
static sd_graph *build_sample(const sdvk_ctx *ctx, int64_t B, int64_t h, int64_t w, int64_t L,
                              int use_cfg, int Rt, int masked, int noise, int64_t cap,
                              int extra_ch, int split, int in[8]) {
    const sd_unet_arch *a = &ctx->model->unet;
    const int R = SD_SAMPLER_MAX_REGS, C = a->out_ch;
    sd_graph *g = sd_graph_new();
    if (!g)
        return NULL;
    const int64_t nb = use_cfg ? 2 * B : B;
    int64_t sne[4] = {Rt * B, h, w, C}, xne[4] = {B, h, w, C}, cne[3] = {nb, L, a->ctx_dim};
    int64_t rne[2] = {cap, SD_ROW}, nne[4] = {cap, B, h, w * C}, kne[4] = {B, h, w, 1};
    int64_t ene[4] = {B, h, w, extra_ch}, one[1] = {1};
    for (int i = 0; i < 8; i++) in[i] = -1;
    int S = in[SI_REGS] = sd_graph_input(g, SD_F32, 4, sne, "registers");
    int ci = in[SI_CTX] = sd_graph_input(g, SD_F32, 3, cne, "context");
    int ri = in[SI_ROWS] = sd_graph_input(g, SD_F32, 2, rne, "sampler table");
    if (noise)
        in[SI_NOISE] = sd_graph_input(g, SD_F32, 4, nne, "noise");
    if (masked)
        in[SI_KEEP] = sd_graph_input(g, SD_F32, 4, kne, "keep mask");
    if (extra_ch)
        in[SI_EXTRA] = sd_graph_input(g, SD_F32, 4, ene, "inpaint conditioning");
    int row = sd_step_select(g, ri);
    int t = sd_graph_view(g, row, 1, one, SD_ROW_T * 4);
    int c_in = sd_graph_view(g, row, 1, one, SD_ROW_CIN * 4);
    int cfg = sd_graph_view(g, row, 1, one, SD_ROW_CFG * 4);
    int x = sd_graph_view(g, S, 4, xne, 0);
    int xin = sd_mul(g, x, c_in);
    if (extra_ch)
        xin = sd_concat(g, xin, in[SI_EXTRA], 3);
    int eps;
    if (use_cfg && split) { /* one half after the other: the arena holds one UNet's activations */
        int64_t hne[3] = {B, L, a->ctx_dim};
        size_t half = (size_t)(B * L * a->ctx_dim) * sizeof(float);
        int e_c = sd_unet_build(g, ctx->model, xin, t, sd_graph_view(g, ci, 3, hne, 0));
        int e_u = sd_unet_build(g, ctx->model, xin, t, sd_graph_view(g, ci, 3, hne, half));
        eps = sd_cfg_combine(g, sd_concat(g, e_c, e_u, 0), cfg);
    } else {
        if (use_cfg)
            xin = sd_concat(g, xin, xin, 0);
        eps = sd_unet_build(g, ctx->model, xin, t, ci);
        if (use_cfg)
            eps = sd_cfg_combine(g, eps, cfg);
    }
    int nz = noise ? sd_graph_reshape(g, sd_step_select(g, in[SI_NOISE]), 4, xne) : -1;
    int next[SD_SAMPLER_MAX_REGS];
    for (int r = 0; r < R; r++) next[r] = sd_sampler_step(g, S, Rt, eps, nz, row, sd_row_coef(R, Rt, r));
    size_t reg_bytes = (size_t)(B * h * w * C) * sizeof(float);
    for (int r = 0; r < R; r++)
        sd_copy_into(g, next[r], sd_graph_view(g, S, 4, xne, (size_t)r * reg_bytes));
    if (masked) { /* x += keep ⊙ F·(a·x0 + b·n0 − x), with the updated x */
        int d = sd_sampler_step(g, S, Rt, eps, -1, row, sd_row_coef(R, Rt, R));
        int x2 = sd_add(g, sd_graph_view(g, S, 4, xne, 0), sd_mul(g, d, in[SI_KEEP]));
        sd_copy_into(g, x2, sd_graph_view(g, S, 4, xne, 0));
    }
    return g;
}

typedef struct {
    sdvk_ctx *ctx;
    const sd_sample_req *r;
    int first, reported;
    double t_last;
} progress_fwd;

/* Called per eval; reports a sampler step when its last eval is done. */
static int on_eval(void *user, int eval) {
    progress_fwd *p = user;
    const sd_plan *pl = p->r->plan;
    p->ctx->model_evals++;
    if (eval + 1 < pl->n_evals && pl->eval_step[eval + 1] == pl->eval_step[eval])
        return 0;
    int step = pl->eval_step[eval] + 1;
    if (sd_verbose) { /* on Vulkan: when the host saw the device finish it */
        double t = sd_now_s();
        sd_log_verbose("step %d/%d done in %.3f s", p->r->progress_base + step, p->r->progress_total,
                       t - p->t_last);
        p->t_last = t;
    }
    if (p->r->progress)
        return p->r->progress(p->r->progress_user, p->r->progress_base + step, p->r->progress_total);
    return 0;
}

sdvk_status sd_run_sample(sdvk_ctx *ctx, const sd_sample_req *r) {
    const sd_unet_arch *a = &ctx->model->unet;
    const sd_plan *pl = r->plan;
    SD_TRY(need_net(a->present, ctx, "UNet"));
    SD_TRY(check_latent(ctx, r->h, r->w));
    if (a->in_ch != a->out_ch + r->extra_ch)
        return sd_err(SDVK_ERR_MODEL, "%s: the UNet takes %d input channels; the request gives "
                      "%d (is this an inpainting checkpoint?)", ctx->model->path, a->in_ch,
                      a->out_ch + r->extra_ch);
    if (pl->masked && (!r->x0 || !r->n0 || !r->keep))
        return sd_err(SDVK_ERR_INVALID_ARG, "masked sampling needs x0, n0 and the keep mask");
    if (pl->uses_noise && !r->noise)
        return sd_err(SDVK_ERR_INVALID_ARG, "this sampler needs per-step noise");
    const int64_t B = r->B, h = r->h, w = r->w, C = a->out_ch, per = B * h * w * C;
    const int Rt = SD_SAMPLER_MAX_REGS + (pl->masked ? 2 : 0);
    const int64_t cap = table_cap(pl->n_evals);
    int64_t key[12] = {SD_GK_SAMPLE, B, h, w, r->L, r->use_cfg, Rt, pl->masked, pl->uses_noise,
                       cap, r->extra_ch, 0};
    sd_cached *c = sd_cache_find(ctx, key);
    if (!c && r->use_cfg) {
        key[11] = 1; /* planned before: the split graph */
        c = sd_cache_find(ctx, key);
        key[11] = c ? 1 : 0;
    }
    if (!c) {
        /* host buffers beside the arena: registers, table, noise, context */
        const size_t host = (size_t)((Rt + (pl->uses_noise ? cap : 0)) * per + cap * SD_ROW +
                                     (r->use_cfg ? 2 : 1) * B * r->L * a->ctx_dim) * sizeof(float);
        const int forms = r->use_cfg ? 2 : 1; /* whole, then the CFG pair half by half */
        const char *fs = getenv("SDVK_CFG_SPLIT"); /* tests: the split form, whatever the budget */
        int in[8];
        for (int split = forms > 1 && fs && *fs == '1'; split < forms && !c; split++) {
            sd_graph *g = build_sample(ctx, B, h, w, r->L, r->use_cfg, Rt, pl->masked,
                                       pl->uses_noise, cap, r->extra_ch, split, in);
            if (!g)
                return sd_err(SDVK_ERR_OOM, "out of memory");
            int fits = !g->status && graph_fits(ctx, g, SD_NET_UNET, host);
            if (!fits && !g->status && drop_other_graphs(ctx, SD_GK_SAMPLE))
                fits = graph_fits(ctx, g, SD_NET_UNET, host);
            if (!fits && !g->status && split + 1 < forms) {
                sd_graph_free(g);
                continue;
            }
            if (!fits && !g->status) {
                int64_t need = (int64_t)(g->arena_size + host + sd_net_weight_bytes(ctx, SD_NET_UNET));
                if (ctx->opt.max_memory_mb) {
                    sd_graph_free(g);
                    return sd_err(SDVK_ERR_OOM, "sampling at %lldx%lld (latent) needs about %lld "
                                  "MiB; %lld MiB of the memory budget are free (it keeps 5 %% in reserve)", (long long)w,
                                  (long long)h, (long long)(need >> 20),
                                  (long long)(sd_mem_free(ctx) >> 20));
                }
                sd_log("sampling at %lldx%lld (latent) needs about %lld MiB, more than seems free",
                       (long long)w, (long long)h, (long long)(need >> 20));
            }
            key[11] = split;
            if (split)
                sd_log_verbose("sampler: the CFG pair runs half by half to fit the memory budget");
            SD_TRY(sd_cache_add(ctx, SD_NET_UNET, g, key, in, in[SI_REGS], &c));
        }
    }
    if (key[11])
        ctx->cfg_split++;
    SD_TRY(sd_extra_sync(ctx, SD_NET_UNET));
    /* registers: S[0] = x, history 0, then x0 and n0 when masked */
    float *regs = calloc((size_t)(Rt * per), sizeof(float));
    float *rows = calloc((size_t)(cap * SD_ROW), sizeof(float));
    float *noise = pl->uses_noise ? calloc((size_t)(cap * per), sizeof(float)) : NULL;
    sdvk_status s = SDVK_OK;
    if (!regs || !rows || (pl->uses_noise && !noise))
        s = sd_err(SDVK_ERR_OOM, "out of memory");
    if (!s) {
        memcpy(regs, r->x, (size_t)per * sizeof(float));
        if (pl->masked) {
            memcpy(regs + SD_SAMPLER_MAX_REGS * per, r->x0, (size_t)per * sizeof(float));
            memcpy(regs + (SD_SAMPLER_MAX_REGS + 1) * per, r->n0, (size_t)per * sizeof(float));
        }
        memcpy(rows, pl->rows, (size_t)pl->n_evals * SD_ROW * sizeof(float));
        if (noise)
            memcpy(noise, r->noise, (size_t)(pl->n_evals * per) * sizeof(float));
        s = write_in(ctx, c, c->in[SI_REGS], regs);
    }
    if (!s)
        s = write_in(ctx, c, c->in[SI_CTX], r->context);
    if (!s)
        s = write_in(ctx, c, c->in[SI_ROWS], rows);
    if (!s && noise)
        s = write_in(ctx, c, c->in[SI_NOISE], noise);
    if (!s && pl->masked)
        s = write_in(ctx, c, c->in[SI_KEEP], r->keep);
    if (!s && r->extra_ch)
        s = write_in(ctx, c, c->in[SI_EXTRA], r->extra);
    free(rows);
    free(noise);
    if (!s) {
        double t0 = sd_now_s();
        progress_fwd pf = {ctx, r, 0, 0, t0};
        /* one run of all evals, or runs that stop where a preview is due */
        for (int e0 = 0; !s && e0 < pl->n_evals;) {
            int e1 = pl->n_evals;
            for (int e = e0; r->on_latent && r->latent_every > 0 && e + 1 < pl->n_evals; e++)
                if (pl->eval_step[e + 1] != pl->eval_step[e] &&
                    (pl->eval_step[e] + 1) % r->latent_every == 0) {
                    e1 = e + 1;
                    break;
                }
            s = ctx->be->v->run(ctx->be, c->bg, e0, e1 - e0, on_eval, &pf);
            if (!s && e1 < pl->n_evals) {
                s = ctx->be->v->read(ctx->be, c->bg, c->in[SI_REGS], regs,
                                     sd_tensor_nbytes(&c->g->t[c->in[SI_REGS]]));
                const float cin = pl->rows[(size_t)e1 * SD_ROW + SD_ROW_CIN];
                for (int64_t i = 0; !s && i < per; i++) regs[i] *= cin;
                if (!s)
                    r->on_latent(r->latent_user, r->progress_base + pl->eval_step[e1 - 1] + 1, regs,
                                 B, h, w);
            }
            e0 = e1;
        }
        ctx->seconds_sampling += sd_now_s() - t0;
        if (!s)
            sd_log_verbose("sampler: %d steps (%d model evaluations) in %.2f s", pl->n_steps,
                           pl->n_evals, sd_now_s() - t0);
    }
    if (!s)
        s = ctx->be->v->read(ctx->be, c->bg, c->in[SI_REGS], regs,
                             sd_tensor_nbytes(&c->g->t[c->in[SI_REGS]]));
    if (!s) {
        for (int64_t i = 0; i < per; i++) r->x[i] = (float)(pl->out_scale * regs[i]);
        int64_t bad = sd_find_nonfinite(r->x, per);
        if (bad >= 0)
            s = sd_err(SDVK_ERR_NUMERIC, "the sampled latent contains NaN/Inf (element %lld)",
                       (long long)bad);
    }
    free(regs);
    return s;
}

/* ---- TAESD ---------------------------------------------------------------------- */

int sd_taesd_ready(const sdvk_ctx *ctx) { return ctx->taesd != NULL; }

sdvk_status sd_run_taesd_decode(sdvk_ctx *ctx, const float *z, int64_t B, int64_t h, int64_t w,
                                float **img) {
    *img = NULL;
    if (!ctx->taesd)
        return sd_err(SDVK_ERR_INVALID_ARG, "no TAESD model given");
    SD_TRY(check_latent(ctx, h, w));
    int64_t key[12] = {SD_GK_TAESD, B, h, w};
    sd_cached *c = sd_cache_find(ctx, key);
    if (!c) {
        sd_graph *g = sd_graph_new();
        if (!g)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        int64_t ne[4] = {B, h, w, ctx->model->vae.z_ch};
        int in[8] = {sd_graph_input(g, SD_F32, 4, ne, "latent")};
        int o = sd_graph_output(g, sd_taesd_decode_build(g, ctx->taesd, in[0]));
        SD_TRY(sd_cache_add(ctx, SD_NET_TAESD, g, key, in, o, &c));
    }
    SD_TRY(write_in(ctx, c, c->in[0], z));
    SD_TRY(ctx->be->v->run(ctx->be, c->bg, 0, 1, NULL, NULL));
    return read_out(ctx, c, c->out, img);
}

/* ---- the VAE -------------------------------------------------------------------- */

static int dec_build(sd_graph *g, const sd_model *m, int z, int arg) {
    (void)arg;
    return sd_vae_decode_build(g, m, z);
}
static int enc_build(sd_graph *g, const sd_model *m, int img, int arg) {
    (void)arg;
    return sd_vae_encode_build(g, m, img);
}

/* Drops the cached graphs of other kinds than `kind` (their weights stay
 * resident): room for a run that would not fit beside them. */
static int drop_other_graphs(sdvk_ctx *ctx, int64_t kind) {
    int n = 0;
    for (int i = 0; i < SD_CACHE_SLOTS; i++)
        if (ctx->cache[i].g && ctx->cache[i].key[0] != kind) {
            sd_cache_drop(ctx, &ctx->cache[i]);
            n++;
        }
    return n;
}

/* Whether graph g (built, not planned) fits the budget beside what the
 * context holds; extra = host bytes besides its arena. */
static int graph_fits(sdvk_ctx *ctx, sd_graph *g, sd_net net, size_t extra) {
    if (sd_graph_plan(g) || !sd_graph_fits_backend(ctx, g)) {
        sd_err_clear();
        return 0;
    }
    int64_t need = (int64_t)(g->arena_size + extra + sd_net_weight_bytes(ctx, net));
    return need <= sd_mem_free(ctx);
}

/* VAE tiling: AUTO tiles when the whole graph would not fit (after dropping
 * other cached graphs). */
static int vae_tiles(sdvk_ctx *ctx, int decode, const int64_t key[12], int64_t B, int64_t h,
                     int64_t w) {
    if (ctx->opt.vae_tiling != SDVK_TILING_AUTO)
        return ctx->opt.vae_tiling == SDVK_TILING_ON;
    if (sd_cache_find(ctx, key))
        return 0;
    const sd_vae_arch *a = &ctx->model->vae;
    int f = sd_vae_factor(ctx->model);
    for (int attempt = 0; attempt < 2; attempt++) {
        sd_graph *g = sd_graph_new();
        if (!g)
            return 1;
        int64_t ne[4] = {B, h, w, decode ? a->z_ch : a->img_ch};
        int in = sd_graph_input(g, SD_F32, 4, ne, decode ? "latent" : "image");
        sd_graph_output(g, decode ? sd_vae_decode_build(g, ctx->model, in)
                                  : sd_vae_encode_build(g, ctx->model, in));
        /* the host holds the input and the result besides the arena */
        size_t io = (size_t)(B * h * w) * 4 *
                    (decode ? (size_t)(a->z_ch + f * f * a->img_ch) : (size_t)a->img_ch + a->z_ch);
        int fits = graph_fits(ctx, g, decode ? SD_NET_VAE_DEC : SD_NET_VAE_ENC, io);
        sd_graph_free(g);
        if (fits)
            return 0;
        if (attempt || !drop_other_graphs(ctx, key[0]))
            break;
    }
    return 1;
}

/* Runs tiled, one picture at a time, into one [B, ...] result. */
typedef sdvk_status (*tiled_fn)(sdvk_ctx *, const float *, int64_t, int64_t, float **);
static sdvk_status run_tiled(sdvk_ctx *ctx, tiled_fn fn, const float *in, int64_t B, int64_t h,
                             int64_t w, size_t in_per, size_t out_per, float **out) {
    *out = NULL;
    float *all = B > 1 ? malloc((size_t)B * out_per * sizeof *all) : NULL;
    if (B > 1 && !all)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    for (int64_t b = 0; b < B; b++) {
        float *one;
        sdvk_status s = fn(ctx, in + (size_t)b * in_per, h, w, &one);
        if (s) {
            free(all);
            return s;
        }
        if (B == 1) {
            *out = one;
            return SDVK_OK;
        }
        memcpy(all + (size_t)b * out_per, one, out_per * sizeof *all);
        free(one);
    }
    *out = all;
    return SDVK_OK;
}

sdvk_status sd_run_vae_decode(sdvk_ctx *ctx, const float *z, int64_t B, int64_t h, int64_t w,
                              float **img) {
    const sd_vae_arch *a = &ctx->model->vae;
    SD_TRY(need_net(a->has_decoder, ctx, "VAE decoder"));
    SD_TRY(check_latent(ctx, h, w));
    int64_t key[12] = {SD_GK_DEC, B, h, w}, ne[4] = {B, h, w, a->z_ch};
    if (vae_tiles(ctx, 1, key, B, h, w)) {
        const int64_t f = sd_vae_factor(ctx->model);
        return run_tiled(ctx, sd_vae_tiled_decode, z, B, h, w, (size_t)(h * w * a->z_ch),
                         (size_t)(h * w * f * f * a->img_ch), img);
    }
    return run1(ctx, SD_NET_VAE_DEC, key, SD_F32, 4, ne, "latent", dec_build, 0, z, img);
}

sdvk_status sd_run_vae_encode(sdvk_ctx *ctx, const float *img, int64_t B, int64_t H, int64_t W,
                              float **z) {
    const sd_vae_arch *a = &ctx->model->vae;
    SD_TRY(need_net(a->has_encoder, ctx, "VAE encoder"));
    int64_t key[12] = {SD_GK_ENC, B, H, W}, ne[4] = {B, H, W, a->img_ch};
    const int64_t f = sd_vae_factor(ctx->model);
    if (H % f == 0 && W % f == 0 && vae_tiles(ctx, 0, key, B, H, W))
        return run_tiled(ctx, sd_vae_tiled_encode, img, B, H, W, (size_t)(H * W * a->img_ch),
                         (size_t)(H / f * W / f * a->z_ch), z);
    return run1(ctx, SD_NET_VAE_ENC, key, SD_F32, 4, ne, "image", enc_build, 0, img, z);
}
