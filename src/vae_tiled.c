/* Tiled VAE runs: the decoder/encoder in bands of rows, in bounded memory,
 * computing what the whole graph computes.
 *
 * Tiling the VAE the usual way (diffusers' tiled VAE: each tile runs the
 * whole network, seams blended) changes the picture: every GroupNorm then
 * normalises a tile by the tile's own statistics, which shifts tones from
 * tile to tile (about 1e-2 relative L2 on SD's VAE even with the mid block
 * whole and wide halos). Here the network is cut at its GroupNorms instead
 * (sd_vae_segments): a segment is local (3x3 convs need a one-row halo), its
 * GroupNorm takes the statistics of the whole input, which were summed (in
 * double) while the previous segment stored its output band by band. The
 * mid blocks, with global attention, run whole at latent size. Between
 * segments the activations live in host memory (f32, or f16 when the budget
 * needs it), one band graph per segment is prepared once and replayed for
 * every band (one arena, one recorded command buffer on Vulkan), and a
 * segment's output overwrites its skip input when that dies there (the
 * residual is read at the band's own rows, before the band is written).
 *
 * Bands span whole rows: the width needs no halo (columns are zero padded by
 * the conv itself), so the only seams are between rows, and there the halo
 * makes the result exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ctx.h"
#include "extra.h"

#define MAX_SLOTS (SD_VAE_MAX_SEGS + 1)
#define GN_GROUPS 32
#define GN_EPS 1e-6

typedef struct vplan {
    sd_vae_segs s;
    int64_t h, w;              /* the run's input size (latent or picture) */
    sd_dtype dt;               /* storage of the intermediate slots */
    int rows[SD_VAE_MAX_SEGS]; /* band rows per segment (of its output) */
    int share[MAX_SLOTS];      /* the slot whose storage dst takes over, or -1 */
    int last[MAX_SLOTS];       /* last segment reading the slot, or -1 */
    int stats[MAX_SLOTS];      /* a segment normalises the slot: sum it */
    size_t peak, band, edge;   /* stored bytes at most, largest band graph, head/tail graph */
} vplan;

typedef struct slotbuf {
    void *p;
    int owned;
    double *sum, *sq; /* per channel */
} slotbuf;

static int is_external(const vplan *p, int i) { return !p->s.decode && i == 0; }

static sd_dtype slot_dt(const vplan *p, int i) {
    if (is_external(p, i) || (p->s.decode && i == p->s.n_slot - 1))
        return SD_F32; /* the caller's picture; the decoded picture */
    return p->dt;
}

static size_t slot_bytes(const vplan *p, int i) {
    const sd_vae_slot *s = &p->s.slot[i];
    return (size_t)(s->h * s->w * s->c) * sd_dtype_size(slot_dt(p, i));
}

static int rows_in(const sd_vae_seg *s, int t) {
    return s->resample > 0 ? t / 2 + 2 : s->resample < 0 ? 2 * t + 1 : t + 2;
}

/* First source row a band starting at output row y0 reads. */
static int64_t first_src_row(const sd_vae_seg *s, int64_t y0) {
    return s->resample > 0 ? y0 / 2 - 1 : s->resample < 0 ? 2 * y0 : y0 - 1;
}

enum { IN_X, IN_GA, IN_GB, IN_MASK, IN_SKIP, IN_N };

/* The band graph of segment k with t output rows; in[] gets the inputs. */
static sd_graph *band_graph(const sdvk_ctx *ctx, const vplan *p, int k, int t, int in[IN_N],
                            int *out) {
    const sd_vae_seg *s = &p->s.seg[k];
    const sd_vae_slot *src = &p->s.slot[s->src], *dst = &p->s.slot[s->dst];
    sd_graph *g = sd_graph_new();
    if (!g)
        return NULL;
    for (int i = 0; i < IN_N; i++) in[i] = -1;
    int64_t xne[4] = {1, rows_in(s, t), src->w, src->c}, cne[1] = {src->c};
    int64_t mne[4] = {1, rows_in(s, t), 1, 1};
    in[IN_X] = sd_graph_input(g, SD_F32, 4, xne, "band");
    if (s->norm) {
        in[IN_GA] = sd_graph_input(g, SD_F32, 1, cne, "norm scale");
        in[IN_GB] = sd_graph_input(g, SD_F32, 1, cne, "norm shift");
        in[IN_MASK] = sd_graph_input(g, SD_F32, 4, mne, "rows inside");
    }
    if (s->skip >= 0) {
        int64_t sne[4] = {1, t, dst->w, p->s.slot[s->skip].c};
        in[IN_SKIP] = sd_graph_input(g, SD_F32, 4, sne, "skip band");
    }
    *out = sd_graph_output(g, sd_vae_seg_build(g, ctx->model, s, in[IN_X], in[IN_GA], in[IN_GB],
                                               in[IN_MASK], in[IN_SKIP]));
    return g;
}

/* Host staging a band needs besides the arena: its inputs and output. */
static size_t band_io(const sd_graph *g, const int in[IN_N], int out) {
    size_t n = out >= 0 ? sd_tensor_nbytes(&g->t[out]) : 0;
    for (int i = 0; i < IN_N; i++)
        if (in[i] >= 0)
            n += sd_tensor_nbytes(&g->t[in[i]]);
    return n;
}

/* Bytes a band of t rows costs (arena + staging), or SIZE_MAX when it
 * cannot be built or a tensor is beyond the backend's limit. */
static size_t band_cost(const sdvk_ctx *ctx, const vplan *p, int k, int t) {
    int in[IN_N], out;
    sd_graph *g = band_graph(ctx, p, k, t, in, &out);
    size_t c = SIZE_MAX;
    if (g && !sd_graph_plan(g) && sd_graph_fits_backend(ctx, g))
        c = g->arena_size + band_io(g, in, out);
    else
        sd_err_clear();
    sd_graph_free(g);
    return c;
}

/* Stored bytes at most over the run, with the plan's dtype and sharing. */
static size_t simulate_peak(const vplan *p) {
    size_t cur = 0, peak = 0, size[MAX_SLOTS] = {0};
    if (p->s.decode) {
        size[0] = slot_bytes(p, 0);
        cur = peak = size[0];
    }
    for (int k = 0; k < p->s.n_seg; k++) {
        const sd_vae_seg *s = &p->s.seg[k];
        if (p->share[s->dst] >= 0) {
            size[s->dst] = size[p->share[s->dst]];
        } else {
            size[s->dst] = slot_bytes(p, s->dst);
            cur += size[s->dst];
        }
        if (cur > peak)
            peak = cur;
        const int rd[2] = {s->src, s->skip};
        for (int j = 0; j < 2; j++) {
            int i = rd[j];
            if (i < 0 || p->last[i] != k || is_external(p, i) || p->share[s->dst] == i)
                continue;
            cur -= size[i];
        }
    }
    return peak;
}

/* Largest band (rows of segment k's output) costing at most avail bytes:
 * t = the whole output when it fits, else a binary search (cost grows with
 * t); upsampling segments take even t. 0 when even the smallest is over. */
static int fit_rows(const sdvk_ctx *ctx, const vplan *p, int k, size_t avail) {
    const sd_vae_seg *s = &p->s.seg[k];
    const int64_t H = p->s.slot[s->dst].h;
    const int q = s->resample > 0 ? 2 : 1; /* rows come in steps of q */
    int lo = 1, hi = (int)((H + q - 1) / q);
    if (band_cost(ctx, p, k, hi * q) <= avail)
        return hi * q;
    if (band_cost(ctx, p, k, lo * q) > avail)
        return 0;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (band_cost(ctx, p, k, mid * q) <= avail)
            lo = mid;
        else
            hi = mid;
    }
    return lo * q;
}

/* The decoder head or encoder tail graph at latent size. */
static sd_graph *edge_graph(const sdvk_ctx *ctx, const vplan *p, int *in, int *out) {
    sd_graph *g = sd_graph_new();
    if (!g)
        return NULL;
    const sd_model *m = ctx->model;
    if (p->s.decode) {
        int64_t ne[4] = {1, p->h, p->w, m->vae.z_ch};
        *in = sd_graph_input(g, SD_F32, 4, ne, "latent");
        *out = sd_graph_output(g, sd_vae_decode_head_build(g, m, *in));
    } else {
        const sd_vae_slot *l = &p->s.slot[p->s.n_slot - 1];
        int64_t ne[4] = {1, l->h, l->w, l->c};
        *in = sd_graph_input(g, SD_F32, 4, ne, "down path");
        *out = sd_graph_output(g, sd_vae_encode_tail_build(g, m, *in));
    }
    return g;
}

static const char *dt_name(sd_dtype t) { return t == SD_F16 ? "f16" : "f32"; }

static sdvk_status make_plan(sdvk_ctx *ctx, int decode, int64_t h, int64_t w, vplan *p) {
    memset(p, 0, sizeof *p);
    p->h = h;
    p->w = w;
    SD_TRY(sd_vae_segments(ctx->model, decode, h, w, &p->s));
    const sd_vae_segs *S = &p->s;
    for (int i = 0; i < MAX_SLOTS; i++) p->share[i] = p->last[i] = -1;
    for (int k = 0; k < S->n_seg; k++) {
        const sd_vae_seg *s = &S->seg[k];
        p->last[s->src] = k;
        if (s->skip >= 0)
            p->last[s->skip] = k;
        if (s->norm)
            p->stats[s->src] = 1;
    }
    if (!decode)
        p->last[S->n_slot - 1] = S->n_seg; /* read by the tail */
    /* the edge graph */
    int ein, eout;
    sd_graph *g = edge_graph(ctx, p, &ein, &eout);
    if (!g)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sdvk_status st = sd_graph_plan(g);
    int fits = !st && sd_graph_fits_backend(ctx, g);
    if (!st)
        p->edge = g->arena_size + sd_tensor_nbytes(&g->t[ein]) + sd_tensor_nbytes(&g->t[eout]);
    sd_graph_free(g);
    SD_TRY(st);
    if (!fits)
        return sd_err(SDVK_ERR_OOM, "VAE %s at %lldx%lld: the mid block at latent size has a "
                      "tensor larger than the device can bind (maxStorageBufferRange)",
                      decode ? "decode" : "encode", (long long)w, (long long)h);
    const int64_t free_b = sd_mem_free(ctx) -
                           (int64_t)sd_net_weight_bytes(ctx, decode ? SD_NET_VAE_DEC : SD_NET_VAE_ENC);
    const char *force = getenv("SDVK_VAE_TILE_STORE"); /* tests: f16 or f32 storage */
    const int forced_rows = ctx->opt.vae_tile_rows;
    sd_dtype order[2] = {SD_F32, SD_F16};
    int n_order = 2;
    if (force && !strcmp(force, "f16"))
        order[0] = SD_F16, n_order = 1;
    else if (force && !strcmp(force, "f32"))
        n_order = 1;
    size_t need_min = SIZE_MAX;
    for (int o = 0; o < n_order; o++) {
        p->dt = order[o];
        /* outputs overwrite a skip input that dies with them, when not larger */
        for (int k = 0; k < S->n_seg; k++) {
            const sd_vae_seg *s = &S->seg[k];
            p->share[s->dst] = -1;
            int i = s->skip;
            if (i >= 0 && p->last[i] == k && !is_external(p, i) && S->slot[i].h == S->slot[s->dst].h &&
                S->slot[i].w == S->slot[s->dst].w && slot_dt(p, i) == slot_dt(p, s->dst) &&
                S->slot[s->dst].c <= S->slot[i].c)
                p->share[s->dst] = i;
        }
        p->peak = simulate_peak(p);
        const size_t edge_need = p->edge + slot_bytes(p, decode ? 0 : S->n_slot - 1);
        const int64_t avail = free_b - (int64_t)p->peak;
        int ok = free_b >= (int64_t)edge_need, comfortable = 1;
        p->band = 0;
        for (int k = 0; k < S->n_seg && ok; k++) {
            const sd_vae_seg *s = &S->seg[k];
            const int64_t H = S->slot[s->dst].h;
            int t;
            if (forced_rows) {
                t = forced_rows < H ? forced_rows : (int)H;
                if (s->resample > 0)
                    t += t & 1;
                if (band_cost(ctx, p, k, t) == SIZE_MAX)
                    return sd_err(SDVK_ERR_OOM, "VAE band of %d rows: a tensor is larger than the "
                                  "device can bind", t);
            } else {
                t = avail > 0 ? fit_rows(ctx, p, k, (size_t)avail) : 0;
            }
            if (!t) {
                ok = 0;
                break;
            }
            /* f32 storage is worth short bands only when f16 is no better */
            if (t < 16 && t < H)
                comfortable = 0;
            p->rows[k] = t;
            size_t c = band_cost(ctx, p, k, t);
            if (c != SIZE_MAX && c > p->band)
                p->band = c;
        }
        if (!ok) {
            size_t need = p->peak + (size_t)band_cost(ctx, p, 0, 2);
            if (need < edge_need)
                need = edge_need;
            if (need < need_min)
                need_min = need;
            continue;
        }
        if (comfortable || o == n_order - 1 || forced_rows)
            return SDVK_OK;
    }
    if (need_min == SIZE_MAX)
        need_min = 0;
    return sd_err(SDVK_ERR_OOM, "VAE %s of %lldx%lld needs about %lld MiB even in bands (%lld MiB "
                  "of the memory budget free%s)", decode ? "decode" : "encode", (long long)w,
                  (long long)h, (long long)(need_min >> 20), (long long)(free_b > 0 ? free_b >> 20 : 0),
                  ctx->opt.max_memory_mb ? "; raise max memory" : "");
}

/* ---- storage ----------------------------------------------------------------- */

static void put_row(void *dst, sd_dtype dt, const float *src, size_t n) {
    if (dt == SD_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    uint16_t *d = dst;
    for (size_t i = 0; i < n; i++) d[i] = sd_f32_to_f16(src[i]);
}

static void get_row(float *dst, const void *src, sd_dtype dt, size_t n) {
    if (dt == SD_F32)
        memcpy(dst, src, n * sizeof(float));
    else
        sd_to_f32(dst, src, dt, n);
}

static void sum_rows(slotbuf *b, const float *x, int64_t n_px, int64_t c) {
    for (int64_t i = 0; i < n_px; i++)
        for (int64_t j = 0; j < c; j++) {
            double v = x[i * c + j];
            b->sum[j] += v;
            b->sq[j] += v * v;
        }
}

static sdvk_status slot_alloc(const vplan *p, slotbuf *sb, int i) {
    const int k_share = p->share[i];
    if (k_share >= 0) { /* take over the dying skip input's storage */
        sb[i].p = sb[k_share].p;
        sb[i].owned = sb[k_share].owned;
        sb[k_share].owned = 0;
    } else {
        sb[i].p = malloc(slot_bytes(p, i) ? slot_bytes(p, i) : 1);
        sb[i].owned = 1;
        if (!sb[i].p)
            return sd_err(SDVK_ERR_OOM, "VAE tiles: out of memory (%zu MiB for an activation)",
                          slot_bytes(p, i) >> 20);
    }
    if (p->stats[i]) {
        const int64_t c = p->s.slot[i].c;
        sb[i].sum = calloc((size_t)c, sizeof(double));
        sb[i].sq = calloc((size_t)c, sizeof(double));
        if (!sb[i].sum || !sb[i].sq)
            return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    return SDVK_OK;
}

static void slot_free(slotbuf *b) {
    if (b->owned)
        free(b->p);
    free(b->sum);
    free(b->sq);
    memset(b, 0, sizeof *b);
}

/* GroupNorm of slot i as a per-channel affine x·ga + gb, from its sums and
 * the norm's weight and bias. */
static sdvk_status norm_affine(const sdvk_ctx *ctx, const vplan *p, const slotbuf *b, int i,
                               const char *pre, float *ga, float *gb) {
    const sd_vae_slot *s = &p->s.slot[i];
    const int64_t C = s->c, cpg = C / GN_GROUPS;
    char k[160];
    const sd_st_tensor *tw, *tb;
    snprintf(k, sizeof k, "%sweight", pre);
    tw = sd_st_find(ctx->model->st, k);
    snprintf(k, sizeof k, "%sbias", pre);
    tb = sd_st_find(ctx->model->st, k);
    if (!tw || !tb || !tw->supported || !tb->supported || tw->ne[0] != C || tb->ne[0] != C ||
        C % GN_GROUPS)
        return sd_err(SDVK_ERR_MODEL, "%s: missing or malformed VAE weight %sweight/bias",
                      ctx->model->path, pre);
    float *gamma = malloc((size_t)C * 2 * sizeof *gamma);
    if (!gamma)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    float *beta = gamma + C;
    sd_to_f32(gamma, tw->data, tw->dtype, (size_t)C);
    sd_to_f32(beta, tb->data, tb->dtype, (size_t)C);
    const double n = (double)(s->h * s->w * cpg);
    for (int64_t g = 0; g < GN_GROUPS; g++) {
        double sum = 0, sq = 0;
        for (int64_t j = g * cpg; j < (g + 1) * cpg; j++) {
            sum += b->sum[j];
            sq += b->sq[j];
        }
        const double mean = sum / n, var = fmax(sq / n - mean * mean, 0.0);
        const double rstd = 1.0 / sqrt(var + GN_EPS);
        for (int64_t j = g * cpg; j < (g + 1) * cpg; j++) {
            ga[j] = (float)(gamma[j] * rstd);
            gb[j] = (float)(beta[j] - mean * gamma[j] * rstd);
        }
    }
    free(gamma);
    return SDVK_OK;
}

/* Prepares g (transient: not in the context's cache) on the backend. */
static sdvk_status prepare(sdvk_ctx *ctx, sd_net net, sd_graph *g, sd_bgraph **bg) {
    sd_bweights *w;
    SD_TRY(sd_graph_plan(g));
    SD_TRY(sd_net_weights(ctx, net, &w));
    double t0 = sd_now_s();
    sdvk_status s = ctx->be->v->prepare(ctx->be, g, w, bg);
    ctx->seconds_preparing += sd_now_s() - t0;
    if (!s)
        ctx->graphs_prepared++;
    return s;
}

static sdvk_status run_segment(sdvk_ctx *ctx, const vplan *p, int k, slotbuf *sb, sd_net net) {
    const sd_vae_seg *s = &p->s.seg[k];
    const sd_vae_slot *src = &p->s.slot[s->src], *dst = &p->s.slot[s->dst];
    const int t = p->rows[k], rin = rows_in(s, t);
    int in[IN_N], out;
    sd_graph *g = band_graph(ctx, p, k, t, in, &out);
    if (!g)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sd_bgraph *bg = NULL;
    sdvk_status st = prepare(ctx, net, g, &bg);
    sd_backend *be = ctx->be;
    const int64_t srow = src->w * src->c, drow = dst->w * dst->c;
    const int64_t kc = s->skip >= 0 ? p->s.slot[s->skip].c : 0, krow = dst->w * kc;
    const int64_t orows = g->t[out].ne[1], ooff = s->resample > 0 ? 1 : 0;
    float *x = NULL, *mask = NULL, *skip = NULL, *ob = NULL, *ga = NULL;
    if (!st) {
        x = malloc((size_t)(rin * srow) * sizeof *x);
        mask = malloc((size_t)rin * sizeof *mask);
        skip = kc ? malloc((size_t)(t * krow) * sizeof *skip) : NULL;
        ob = malloc((size_t)(orows * drow) * sizeof *ob);
        ga = s->norm ? malloc((size_t)src->c * 2 * sizeof *ga) : NULL;
        if (!x || !mask || (kc && !skip) || !ob || (s->norm && !ga))
            st = sd_err(SDVK_ERR_OOM, "VAE tiles: out of memory");
    }
    if (!st && s->norm) {
        st = norm_affine(ctx, p, &sb[s->src], s->src, s->norm_pre, ga, ga + src->c);
        if (!st)
            st = be->v->write(be, bg, in[IN_GA], ga, (size_t)src->c * sizeof *ga);
        if (!st)
            st = be->v->write(be, bg, in[IN_GB], ga + src->c, (size_t)src->c * sizeof *ga);
    }
    if (!st)
        st = slot_alloc(p, sb, s->dst);
    const sd_dtype sdt = slot_dt(p, s->src), kdt = s->skip >= 0 ? slot_dt(p, s->skip) : SD_F32;
    const sd_dtype ddt = slot_dt(p, s->dst);
    for (int64_t y0 = 0; !st && y0 < dst->h; y0 += t) {
        const int64_t r0 = first_src_row(s, y0);
        for (int r = 0; r < rin; r++) {
            const int64_t y = r0 + r;
            const int inside = y >= 0 && y < src->h;
            mask[r] = (float)inside;
            if (inside)
                get_row(x + r * srow, (const char *)sb[s->src].p + (size_t)(y * srow) * sd_dtype_size(sdt),
                        sdt, (size_t)srow);
            else
                memset(x + r * srow, 0, (size_t)srow * sizeof *x);
        }
        for (int r = 0; kc && r < t; r++) {
            const int64_t y = y0 + r;
            if (y < dst->h)
                get_row(skip + r * krow,
                        (const char *)sb[s->skip].p + (size_t)(y * krow) * sd_dtype_size(kdt), kdt,
                        (size_t)krow);
            else
                memset(skip + r * krow, 0, (size_t)krow * sizeof *skip);
        }
        st = be->v->write(be, bg, in[IN_X], x, (size_t)(rin * srow) * sizeof *x);
        if (!st && s->norm)
            st = be->v->write(be, bg, in[IN_MASK], mask, (size_t)rin * sizeof *mask);
        if (!st && kc)
            st = be->v->write(be, bg, in[IN_SKIP], skip, (size_t)(t * krow) * sizeof *skip);
        if (!st)
            st = be->v->run(be, bg, 0, 1, NULL, NULL);
        if (!st)
            st = be->v->read(be, bg, out, ob, (size_t)(orows * drow) * sizeof *ob);
        for (int64_t r = 0; !st && r < t && y0 + r < dst->h; r++) {
            const float *row = ob + (r + ooff) * drow;
            put_row((char *)sb[s->dst].p + (size_t)((y0 + r) * drow) * sd_dtype_size(ddt), ddt, row,
                    (size_t)drow);
            if (p->stats[s->dst])
                sum_rows(&sb[s->dst], row, dst->w, dst->c);
        }
        if (!st && sd_backend_cancelled(be))
            st = sd_err(SDVK_ERR_CANCELLED, "cancelled");
    }
    free(x);
    free(mask);
    free(skip);
    free(ob);
    free(ga);
    if (bg)
        be->v->release(be, bg);
    sd_graph_free(g);
    return st;
}

/* Frees the slots segment k read for the last time (not one whose storage
 * its output took over). */
static void free_dead(const vplan *p, slotbuf *sb, int k) {
    const sd_vae_seg *s = &p->s.seg[k];
    const int rd[2] = {s->src, s->skip};
    for (int j = 0; j < 2; j++)
        if (rd[j] >= 0 && p->last[rd[j]] == k && !is_external(p, rd[j]))
            slot_free(&sb[rd[j]]);
}

static void log_plan(const vplan *p, const char *what) {
    int lo = 1 << 30, hi = 0;
    for (int k = 0; k < p->s.n_seg; k++) {
        if (p->rows[k] < lo)
            lo = p->rows[k];
        if (p->rows[k] > hi)
            hi = p->rows[k];
    }
    sd_log_verbose("VAE %s in bands: %d segments, %d..%d rows per band, %s storage; planned "
                   "%.0f MiB stored at most + %.0f MiB per band graph (head/tail %.0f MiB)",
                   what, p->s.n_seg, lo, hi, dt_name(p->dt), p->peak / 1048576.0,
                   p->band / 1048576.0, p->edge / 1048576.0);
}

/* Runs the decoder head or encoder tail on one input, whole. */
static sdvk_status run_edge(sdvk_ctx *ctx, const vplan *p, sd_net net, const float *x, float **y) {
    int in, out;
    *y = NULL;
    sd_graph *g = edge_graph(ctx, p, &in, &out);
    if (!g)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sd_bgraph *bg = NULL;
    sdvk_status st = prepare(ctx, net, g, &bg);
    if (!st)
        st = ctx->be->v->write(ctx->be, bg, in, x, sd_tensor_nbytes(&g->t[in]));
    if (!st)
        st = ctx->be->v->run(ctx->be, bg, 0, 1, NULL, NULL);
    if (!st) {
        size_t n = sd_tensor_nbytes(&g->t[out]);
        if (!(*y = malloc(n)))
            st = sd_err(SDVK_ERR_OOM, "out of memory");
        if (!st)
            st = ctx->be->v->read(ctx->be, bg, out, *y, n);
    }
    if (bg)
        ctx->be->v->release(ctx->be, bg);
    sd_graph_free(g);
    if (st) {
        free(*y);
        *y = NULL;
    }
    return st;
}

sdvk_status sd_vae_tiled_decode(sdvk_ctx *ctx, const float *z, int64_t h, int64_t w, float **img) {
    *img = NULL;
    vplan *p = malloc(sizeof *p);
    slotbuf *sb = calloc(MAX_SLOTS, sizeof *sb);
    sdvk_status st = p && sb ? SDVK_OK : sd_err(SDVK_ERR_OOM, "out of memory");
    if (!st)
        st = make_plan(ctx, 1, h, w, p);
    if (!st)
        st = sd_extra_sync(ctx, SD_NET_VAE_DEC);
    double t0 = sd_now_s();
    if (!st) {
        log_plan(p, "decode");
        float *h0 = NULL;
        st = run_edge(ctx, p, SD_NET_VAE_DEC, z, &h0);
        if (!st)
            st = slot_alloc(p, sb, 0);
        if (!st) {
            const sd_vae_slot *s0 = &p->s.slot[0];
            const int64_t row = s0->w * s0->c;
            for (int64_t y = 0; y < s0->h; y++) {
                put_row((char *)sb[0].p + (size_t)(y * row) * sd_dtype_size(slot_dt(p, 0)),
                        slot_dt(p, 0), h0 + y * row, (size_t)row);
                if (p->stats[0])
                    sum_rows(&sb[0], h0 + y * row, s0->w, s0->c);
            }
        }
        free(h0);
    }
    for (int k = 0; !st && k < p->s.n_seg; k++) {
        st = run_segment(ctx, p, k, sb, SD_NET_VAE_DEC);
        if (!st)
            free_dead(p, sb, k);
    }
    if (!st) {
        slotbuf *last = &sb[p->s.n_slot - 1];
        *img = last->p;
        last->owned = 0;
        ctx->vae_tiled++;
        sd_log_verbose("VAE decode in bands: %.3f s", sd_now_s() - t0);
    }
    for (int i = 0; sb && i < MAX_SLOTS; i++) slot_free(&sb[i]);
    free(sb);
    free(p);
    return st;
}

sdvk_status sd_vae_tiled_encode(sdvk_ctx *ctx, const float *img, int64_t H, int64_t W, float **z) {
    *z = NULL;
    vplan *p = malloc(sizeof *p);
    slotbuf *sb = calloc(MAX_SLOTS, sizeof *sb);
    sdvk_status st = p && sb ? SDVK_OK : sd_err(SDVK_ERR_OOM, "out of memory");
    if (!st)
        st = make_plan(ctx, 0, H, W, p);
    if (!st)
        st = sd_extra_sync(ctx, SD_NET_VAE_ENC);
    double t0 = sd_now_s();
    if (!st) {
        log_plan(p, "encode");
        sb[0].p = (void *)img; /* read only */
    }
    for (int k = 0; !st && k < p->s.n_seg; k++) {
        st = run_segment(ctx, p, k, sb, SD_NET_VAE_ENC);
        if (!st)
            free_dead(p, sb, k);
    }
    if (!st) {
        const int li = p->s.n_slot - 1;
        const sd_vae_slot *l = &p->s.slot[li];
        const size_t n = (size_t)(l->h * l->w * l->c);
        float *x = malloc(n * sizeof *x);
        if (!x)
            st = sd_err(SDVK_ERR_OOM, "out of memory");
        else
            get_row(x, sb[li].p, slot_dt(p, li), n);
        slot_free(&sb[li]);
        if (!st)
            st = run_edge(ctx, p, SD_NET_VAE_ENC, x, z);
        free(x);
    }
    if (!st) {
        ctx->vae_tiled++;
        sd_log_verbose("VAE encode in bands: %.3f s", sd_now_s() - t0);
    }
    for (int i = 1; sb && i < MAX_SLOTS; i++) slot_free(&sb[i]);
    free(sb);
    free(p);
    return st;
}
