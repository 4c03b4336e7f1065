/* The CPU backend: runs a planned graph node by node with a kernel table
 * (reference or SIMD) over one 64-byte-aligned activation arena. Everything
 * a run needs (arena, f32 weights, packed weights) is made at prepare, so a
 * step allocates nothing. One backend has one thread pool: run graphs of the
 * same backend from one host thread at a time. A kernel table's prep hook
 * returning NULL is treated as out of memory (hooks exist because their
 * kernel needs the data). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/status.h"
#include "../backend.h"
#include "cpu.h"
#include "ref/ref.h"

typedef struct cpu_backend {
    sd_backend base;
    sd_pool *pool;
    sd_cpu_kernels k;
    int q8; /* matmul/conv weights made 8-bit at prepare (k.prep = k.prep_q8) */
    /* SDVK_CPU_PROFILE=1: wall seconds and MACs per op kind, summed over
     * runs and printed to stderr when the backend is destroyed */
    int profile;
    double prof_s[SD_OP_COUNT], prof_macs[SD_OP_COUNT];
    long prof_n[SD_OP_COUNT];
} cpu_backend;

/* One resident weight: an f32 copy of a weight tensor (kind W_F32), or what
 * an op's prep hook made from a weight and bias (kind W_PACK: GEMM panels).
 * The node and tensor descriptors it was made from are kept, so a LoRA
 * update can remake it from new values. */
enum { W_F32 = 0, W_PACK = 1 };
typedef struct wentry {
    int kind;
    sd_op op;            /* W_PACK: the op whose prep hook made it */
    const void *w, *b;   /* checkpoint data of weight and bias (the key) */
    sd_tensor tw, tb;    /* their descriptors (tb unused when b == NULL) */
    sd_node node;        /* W_PACK: the node, inputs renumbered 0 = w, 1 = b */
    void *data;          /* f32 copy or prep result */
    int owned;           /* data was allocated here (else: aligned f32 used in place) */
    size_t bytes;
} wentry;

struct sd_bweights {
    wentry **e;          /* open addressing, NULL = empty */
    size_t cap, n;
    long prepared;
    size_t bytes;
};

struct sd_bgraph {
    const sd_graph *g;
    void *arena;
    void **data;        /* per tensor: f32/i32 data (arena, or a weight's f32 copy) */
    const void **raw;   /* per tensor: a weight's checkpoint data */
    void **packed;      /* per node: the prep hook's data (refreshed from pe[] each run) */
    wentry **pe;        /* per node: the resident entry behind packed[] */
    wentry **te;        /* per tensor: the resident f32 entry behind data[] */
    sd_bweights *own_w; /* a private weight set (prepare without one) */
    int64_t max_step;   /* steps must be < this (smallest STEP_SELECT table), or -1 */
    int max_step_node;
};

static size_t whash(int kind, sd_op op, const void *w, const void *b) {
    uint64_t h = (uint64_t)(uintptr_t)w * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)(uintptr_t)b * 0xc2b2ae3d27d4eb4full + (uint64_t)kind * 31 + (uint64_t)op;
    return (size_t)(h ^ (h >> 29));
}

static wentry *wfind(const sd_bweights *ws, int kind, sd_op op, const void *w, const void *b) {
    if (!ws->cap)
        return NULL;
    for (size_t i = whash(kind, op, w, b) & (ws->cap - 1);; i = (i + 1) & (ws->cap - 1)) {
        wentry *e = ws->e[i];
        if (!e)
            return NULL;
        if (e->kind == kind && e->w == w && e->b == b && (kind == W_F32 || e->op == op))
            return e;
    }
}

static int wput(sd_bweights *ws, wentry *e) {
    if (2 * (ws->n + 1) > ws->cap) {
        size_t cap = ws->cap ? 2 * ws->cap : 256;
        wentry **ne = calloc(cap, sizeof *ne);
        if (!ne)
            return -1;
        for (size_t i = 0; i < ws->cap; i++)
            if (ws->e[i]) {
                wentry *o = ws->e[i];
                size_t j = whash(o->kind, o->op, o->w, o->b) & (cap - 1);
                while (ne[j]) j = (j + 1) & (cap - 1);
                ne[j] = o;
            }
        free(ws->e);
        ws->e = ne;
        ws->cap = cap;
    }
    size_t j = whash(e->kind, e->op, e->w, e->b) & (ws->cap - 1);
    while (ws->e[j]) j = (j + 1) & (ws->cap - 1);
    ws->e[j] = e;
    ws->n++;
    return 0;
}

static void wentry_free(wentry *e) {
    if (e && e->owned)
        free(e->data);
    free(e);
}

static sdvk_status cpu_weights_create(sd_backend *b, sd_bweights **out) {
    (void)b;
    *out = calloc(1, sizeof **out);
    return *out ? SDVK_OK : sd_err(SDVK_ERR_OOM, "cpu: out of memory");
}

static void cpu_weights_destroy(sd_backend *b, sd_bweights *ws) {
    (void)b;
    if (!ws)
        return;
    for (size_t i = 0; i < ws->cap; i++) wentry_free(ws->e[i]);
    free(ws->e);
    free(ws);
}

static void cpu_weights_stats(sd_backend *b, const sd_bweights *ws, sd_weight_stats *st) {
    (void)b;
    memset(st, 0, sizeof *st);
    if (!ws)
        return;
    st->prepared = ws->prepared;
    st->entries = (long)ws->n;
    st->bytes = ws->bytes;
}

/* f32 copy of weight t (or the checkpoint data itself when it is aligned
 * f32): the data kernels read through ctx.data. */
static sdvk_status make_f32(const sd_tensor *t, const void *src, wentry *e) {
    if ((t->dtype == SD_F32 || t->dtype == SD_I32) && ((uintptr_t)src & 3) == 0) {
        e->data = (void *)(uintptr_t)src; /* used in place, read only */
        return SDVK_OK;
    }
    size_t n = (size_t)sd_tensor_nelem(t);
    float *f = malloc(n * sizeof(float) + 1);
    if (!f)
        return sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory converting %s", t->name);
    if (t->dtype == SD_F32 || t->dtype == SD_I32)
        memcpy(f, src, n * 4); /* unaligned source */
    else
        sd_weight_to_f32(t, src, f); /* F16, BF16, 8-bit */
    e->data = f;
    e->owned = 1;
    e->bytes = n * sizeof(float);
    return SDVK_OK;
}

/* Runs the prep hook on a two-tensor graph holding only the entry's weight
 * (data w_data, dtype of tw) and bias. */
static void *make_packed(const cpu_backend *cb, const wentry *e, const void *w_data) {
    sd_tensor t[2] = {e->tw, e->tb};
    sd_graph g = {.t = t, .nt = e->b ? 2 : 1, .n = (sd_node *)&e->node, .nn = 1, .planned = 1};
    const void *raw[2] = {w_data, e->b};
    return cb->k.prep[e->op](&g, &e->node, raw);
}

/* Size of a prep result, as the kernel table reports it (else estimated
 * as the weight's own size). */
static size_t packed_bytes(const cpu_backend *cb, const wentry *e, sd_dtype dt) {
    if (cb->k.prep_size)
        return cb->k.prep_size(e->op, e->data);
    int64_t n = e->tw.ne[0], k = sd_tensor_nelem(&e->tw) / (n ? n : 1);
    return (size_t)(n * k) * sd_dtype_size(dt);
}

/* f32 = NULL: back to the checkpoint's own values (e->w, the key), made
 * exactly as prepare made them, so a restored weight is bit for bit what a
 * fresh context holds. */
static sdvk_status cpu_weights_update(sd_backend *b, sd_bweights *ws, const void *key,
                                      const float *f32, size_t n) {
    cpu_backend *cb = (cpu_backend *)b;
    if (!ws)
        return SDVK_OK;
    for (size_t i = 0; i < ws->cap; i++) {
        wentry *e = ws->e[i];
        if (!e || e->w != key)
            continue;
        if ((size_t)sd_tensor_nelem(&e->tw) != n)
            return sd_err(SDVK_ERR_INVALID_ARG, "cpu: update of %s with %zu values (it has %lld)",
                          e->tw.name, n, (long long)sd_tensor_nelem(&e->tw));
        if (e->kind == W_F32) {
            wentry tmp = *e;
            tmp.data = NULL;
            tmp.owned = 0;
            tmp.bytes = 0;
            /* an aligned f32 source is used in place; the caller's buffer
             * is not ours to keep: copy it */
            if (f32) {
                float *f = malloc(n * sizeof(float) + 1);
                if (!f)
                    return sd_err(SDVK_ERR_OOM, "cpu: out of memory updating %s", e->tw.name);
                memcpy(f, f32, n * sizeof(float));
                tmp.data = f;
                tmp.owned = 1;
                tmp.bytes = n * sizeof(float);
            } else {
                SD_TRY(make_f32(&e->tw, key, &tmp));
            }
            if (e->owned)
                free(e->data);
            ws->bytes = ws->bytes - e->bytes + tmp.bytes;
            e->data = tmp.data;
            e->owned = tmp.owned;
            e->bytes = tmp.bytes;
            continue;
        }
        wentry tmp = *e;
        if (f32)
            tmp.tw.dtype = SD_F32;
        void *p = make_packed(cb, &tmp, f32 ? (const void *)f32 : key);
        if (!p)
            return sd_err(SDVK_ERR_OOM, "cpu: out of memory repacking %s", e->tw.name);
        free(e->data);
        ws->bytes -= e->bytes;
        e->data = p;
        e->bytes = packed_bytes(cb, e, tmp.tw.dtype);
        ws->bytes += e->bytes;
    }
    return SDVK_OK;
}

static void cpu_release(sd_backend *b, sd_bgraph *bg) {
    if (!bg)
        return;
    cpu_weights_destroy(b, bg->own_w);
    free(bg->data);
    free(bg->raw);
    free(bg->packed);
    free(bg->pe);
    free(bg->te);
    free(bg->arena);
    free(bg);
}

static int cpu_supports(sd_backend *b, const sd_graph *g, int k, char *why, size_t nwhy) {
    cpu_backend *cb = (cpu_backend *)b;
    const sd_node *n = &g->n[k];
    if ((unsigned)n->op >= SD_OP_COUNT || !cb->k.fn[n->op]) {
        snprintf(why, nwhy, "cpu (%s) has no kernel for op %s", cb->k.isa, sd_op_name(n->op));
        return 0;
    }
    /* Every CPU attention kernel (ref and SIMD) keeps a head's row in fixed
     * buffers, so the limit holds whatever kernel was chosen. */
    if (n->op == SD_OP_ATTENTION && g->t[n->in[0]].ne[2] / n->i[0] > SD_REF_ATTN_MAX_D) {
        snprintf(why, nwhy, "cpu attention: head dim %lld above %d",
                 (long long)(g->t[n->in[0]].ne[2] / n->i[0]), SD_REF_ATTN_MAX_D);
        return 0;
    }
    /* The matmul/conv prep hooks pack weight and bias once, so those must
     * be constant graph weights, not activations. */
    if ((n->op == SD_OP_MATMUL || n->op == SD_OP_CONV2D) && cb->k.prep[n->op])
        for (int j = 1; j <= 2; j++)
            if (n->in[j] >= 0 && g->t[n->in[j]].kind != SD_T_WEIGHT) {
                snprintf(why, nwhy, "cpu %s: %s %s must be a graph weight", sd_op_name(n->op),
                         j == 1 ? "weight" : "bias", g->t[n->in[j]].name);
                return 0;
            }
    return 1;
}

static sdvk_status fail_prep(sd_backend *b, sd_bgraph *bg, sdvk_status s) {
    cpu_release(b, bg);
    return s;
}

static sdvk_status cpu_prepare(sd_backend *b, const sd_graph *g, sd_bweights *ws, sd_bgraph **out) {
    cpu_backend *cb = (cpu_backend *)b;
    *out = NULL;
    if (!g)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu prepare: no graph");
    if (g->status)
        return sd_err(g->status, "cpu prepare: graph has a build error: %s", g->err);
    if (!g->planned)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu prepare: graph is not planned (call sd_graph_plan)");
    SD_TRY(sd_backend_check_graph(b, g));
    int nt = g->nt, nn = g->nn;
    sd_bgraph *bg = calloc(1, sizeof *bg);
    if (!bg)
        return sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory");
    bg->g = g;
    bg->max_step = -1;
    if (!ws) {
        if (cpu_weights_create(b, &bg->own_w) != SDVK_OK)
            return fail_prep(b, bg, SDVK_ERR_OOM);
        ws = bg->own_w;
    }
    bg->data = calloc((size_t)nt + 1, sizeof(void *));
    bg->raw = calloc((size_t)nt + 1, sizeof(void *));
    bg->te = calloc((size_t)nt + 1, sizeof(wentry *));
    bg->packed = calloc((size_t)nn + 1, sizeof(void *));
    bg->pe = calloc((size_t)nn + 1, sizeof(wentry *));
    size_t asz = (g->arena_size + 63) / 64 * 64;
    bg->arena = aligned_alloc(64, asz ? asz : 64);
    if (!bg->data || !bg->raw || !bg->te || !bg->packed || !bg->pe || !bg->arena)
        return fail_prep(b, bg, sd_err(SDVK_ERR_OOM, "cpu prepare: cannot allocate %zu bytes of arena",
                                       asz));
    memset(bg->arena, 0, asz ? asz : 64); /* unwritten inputs read as zeros, not garbage */

    /* Which weights some node's kernel wants as f32. */
    unsigned char *want = calloc((size_t)nt + 1, 1);
    if (!want)
        return fail_prep(b, bg, sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory"));
    for (int k = 0; k < nn; k++) {
        const sd_node *n = &g->n[k];
        if (n->op == SD_OP_STEP_SELECT) {
            int64_t rows = g->t[n->in[0]].ne[0];
            if (bg->max_step < 0 || rows < bg->max_step)
                bg->max_step = rows, bg->max_step_node = k;
        }
        for (int j = 0; j < SD_MAX_IN; j++)
            if (n->in[j] >= 0 && g->t[n->in[j]].kind == SD_T_WEIGHT && cb->k.want_f32_weights[n->op])
                want[n->in[j]] = 1;
    }

    sdvk_status s = SDVK_OK;
    for (int i = 0; i < nt && !s; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->kind != SD_T_WEIGHT) {
            if (t->dtype != SD_F32 && t->dtype != SD_I32)
                s = sd_err(SDVK_ERR_INVALID_ARG,
                           "cpu prepare: tensor %s has dtype %s (activations are f32 or i32)",
                           t->name, sd_dtype_name(t->dtype));
            bg->data[i] = (char *)bg->arena + t->offset;
            continue;
        }
        bg->raw[i] = t->data;
        if (!want[i])
            continue;
        if (!t->data) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "cpu prepare: weight %s has no data", t->name);
            break;
        }
        wentry *e = wfind(ws, W_F32, 0, t->data, NULL);
        if (!e) {
            e = calloc(1, sizeof *e);
            if (!e) {
                s = sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory");
                break;
            }
            e->kind = W_F32;
            e->w = t->data;
            e->tw = *t;
            if ((s = make_f32(t, t->data, e)) != SDVK_OK || wput(ws, e)) {
                wentry_free(e);
                s = s ? s : sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory");
                break;
            }
            if (e->owned) {
                sd_host_pageout(t->data, sd_tensor_nbytes(t));
                ws->prepared++;
            }
            ws->bytes += e->bytes;
        }
        bg->te[i] = e;
    }
    free(want);
    if (s)
        return fail_prep(b, bg, s);

    for (int k = 0; k < nn; k++) {
        const sd_node *n = &g->n[k];
        if (!cb->k.prep[n->op])
            continue;
        for (int j = 0; j < SD_MAX_IN; j++)
            if (n->in[j] >= 0 && g->t[n->in[j]].kind == SD_T_WEIGHT && !g->t[n->in[j]].data)
                return fail_prep(b, bg, sd_err(SDVK_ERR_INVALID_ARG,
                                               "cpu prepare: weight %s has no data",
                                               g->t[n->in[j]].name));
        const void *wd = g->t[n->in[1]].data, *bd = n->in[2] >= 0 ? g->t[n->in[2]].data : NULL;
        wentry *e = wfind(ws, W_PACK, n->op, wd, bd);
        if (!e) {
            e = calloc(1, sizeof *e);
            if (!e)
                return fail_prep(b, bg, sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory"));
            e->kind = W_PACK;
            e->op = n->op;
            e->w = wd;
            e->b = bd;
            e->tw = g->t[n->in[1]];
            if (bd)
                e->tb = g->t[n->in[2]];
            e->node = *n;
            for (int j = 0; j < SD_MAX_IN; j++) e->node.in[j] = -1;
            e->node.in[1] = 0;
            e->node.in[2] = bd ? 1 : -1;
            e->node.out = -1;
            e->owned = 1;
            /* A prep hook exists because the kernel needs its result: NULL
             * means it could not allocate. */
            e->data = make_packed(cb, e, wd);
            if (!e->data || wput(ws, e)) {
                wentry_free(e);
                return fail_prep(b, bg, sd_err(SDVK_ERR_OOM,
                                               "cpu prepare: preparing node %d (%s) failed: out of memory",
                                               k, sd_op_name(n->op)));
            }
            e->bytes = packed_bytes(cb, e, e->tw.dtype);
            ws->bytes += e->bytes;
            ws->prepared++;
            /* the packed copy replaces the raw checkpoint bytes */
            for (int j = 1; j <= 2; j++)
                if (n->in[j] >= 0)
                    sd_host_pageout(g->t[n->in[j]].data, sd_tensor_nbytes(&g->t[n->in[j]]));
        }
        bg->pe[k] = e;
    }
    *out = bg;
    return SDVK_OK;
}

/* Checks a host transfer against the tensor; returns its arena address. */
static sdvk_status host_io(sd_bgraph *bg, int id, size_t nbytes, int writing, void **p) {
    const char *what = writing ? "write" : "read";
    if (!bg)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu %s: graph not prepared", what);
    const sd_graph *g = bg->g;
    if (id < 0 || id >= g->nt)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu %s: no tensor %d (graph has %d)", what, id, g->nt);
    const sd_tensor *t = &g->t[id];
    sd_tkind kind = g->t[sd_graph_root(g, id)].kind;
    if (writing ? kind != SD_T_INPUT : kind != SD_T_INPUT && kind != SD_T_OUTPUT)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu %s: tensor %d (%s) is not a graph %s", what, id,
                      t->name, writing ? "input" : "input or output");
    size_t want = (size_t)sd_tensor_nelem(t) * 4;
    if (nbytes != want)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "cpu %s: tensor %d (%s) holds %lld %s elements (%zu bytes), got %zu bytes",
                      what, id, t->name, (long long)sd_tensor_nelem(t),
                      t->dtype == SD_I32 ? "int32" : "float32", want, nbytes);
    *p = bg->data[id];
    return SDVK_OK;
}

static sdvk_status cpu_write(sd_backend *b, sd_bgraph *bg, int tensor, const void *src,
                             size_t nbytes) {
    (void)b;
    void *p = NULL;
    SD_TRY(host_io(bg, tensor, nbytes, 1, &p));
    if (nbytes && !src)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu write: no source data");
    memcpy(p, src, nbytes);
    return SDVK_OK;
}

static sdvk_status cpu_read(sd_backend *b, sd_bgraph *bg, int tensor, void *dst, size_t nbytes) {
    (void)b;
    void *p = NULL;
    SD_TRY(host_io(bg, tensor, nbytes, 0, &p));
    if (nbytes && !dst)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu read: no destination");
    memcpy(dst, p, nbytes);
    return SDVK_OK;
}

/* Multiply-adds of the ops whose cost is arithmetic (0 for the others). */
static double prof_macs(const sd_graph *g, const sd_node *n) {
    const sd_tensor *o = &g->t[n->out], *a = &g->t[n->in[0]];
    if (n->op == SD_OP_MATMUL) /* x [..., K], w [N, K] */
        return (double)sd_tensor_nelem(o) * (double)a->ne[a->ndim - 1];
    if (n->op == SD_OP_CONV2D) { /* w [Co, Ci, kh, kw] */
        const sd_tensor *w = &g->t[n->in[1]];
        return (double)sd_tensor_nelem(o) * (double)(w->ne[1] * w->ne[2] * w->ne[3]);
    }
    if (n->op == SD_OP_ATTENTION) { /* q [B, Lq, H*D], k/v [B, Lk, H*D]: QK^T and PV */
        const sd_tensor *k = &g->t[n->in[1]];
        return 2.0 * (double)sd_tensor_nelem(a) * (double)k->ne[1];
    }
    return 0;
}

static sdvk_status cpu_run(sd_backend *b, sd_bgraph *bg, int first_step, int n_steps, sd_step_cb cb,
                           void *user) {
    cpu_backend *be = (cpu_backend *)b;
    if (!bg)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu run: graph not prepared");
    const sd_graph *g = bg->g;
    if (n_steps < 0 || first_step < 0)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu run: bad steps (first %d, count %d)", first_step,
                      n_steps);
    if (n_steps > 0 && bg->max_step >= 0 && (int64_t)first_step + n_steps > bg->max_step)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "cpu run: step %d out of range: step_select table %s has %lld rows",
                      first_step + n_steps - 1, g->t[g->n[bg->max_step_node].in[0]].name,
                      (long long)bg->max_step);
    /* Resident weights may have been remade (LoRA) since prepare. */
    for (int i = 0; i < g->nt; i++)
        if (bg->te[i])
            bg->data[i] = bg->te[i]->data;
    for (int k = 0; k < g->nn; k++)
        if (bg->pe[k])
            bg->packed[k] = bg->pe[k]->data;
    sd_cpu_ctx c = {.g = g,
                    .data = bg->data,
                    .raw = bg->raw,
                    .packed = bg->packed,
                    .pool = be->pool};
    for (int s = first_step; s < first_step + n_steps; s++) {
        c.step = s;
        for (int k = 0; k < g->nn; k++) {
            /* a cancel from another thread takes effect inside a step */
            if (sd_backend_cancelled(b))
                return sd_err(SDVK_ERR_CANCELLED, "cancelled during step %d", s);
            c.n = &g->n[k];
            if (!be->profile) {
                be->k.fn[c.n->op](&c);
                continue;
            }
            double t0 = sd_now_s();
            be->k.fn[c.n->op](&c);
            be->prof_s[c.n->op] += sd_now_s() - t0;
            be->prof_macs[c.n->op] += prof_macs(g, c.n);
            be->prof_n[c.n->op]++;
        }
        if (cb && cb(user, s))
            return sd_err(SDVK_ERR_CANCELLED, "cancelled after step %d", s);
    }
    return SDVK_OK;
}

static void cpu_destroy(sd_backend *b) {
    cpu_backend *cb = (cpu_backend *)b;
    if (cb->profile) {
        double tot = 0;
        for (int o = 0; o < SD_OP_COUNT; o++) tot += cb->prof_s[o];
        fprintf(stderr, "cpu profile (%s, %d threads): %.3f s in ops\n", cb->k.isa, sd_pool_threads(cb->pool),
                tot);
        for (int o = 0; o < SD_OP_COUNT; o++) {
            if (!cb->prof_n[o])
                continue;
            fprintf(stderr, "  %-18s %7ld calls %9.3f s %5.1f %%", sd_op_name((sd_op)o), cb->prof_n[o],
                    cb->prof_s[o], 100.0 * cb->prof_s[o] / (tot > 0 ? tot : 1));
            if (cb->prof_macs[o] > 0)
                fprintf(stderr, "  %8.1f GMAC %7.1f GFLOP/s", cb->prof_macs[o] * 1e-9,
                        2e-9 * cb->prof_macs[o] / (cb->prof_s[o] > 0 ? cb->prof_s[o] : 1));
            fputc('\n', stderr);
        }
    }
    sd_pool_destroy(cb->pool);
    free(cb);
}

static const sd_backend_vtbl cpu_vtbl = {
    .weights_create = cpu_weights_create,
    .weights_destroy = cpu_weights_destroy,
    .weights_stats = cpu_weights_stats,
    .weights_update = cpu_weights_update,
    .supports = cpu_supports,
    .prepare = cpu_prepare,
    .release = cpu_release,
    .write = cpu_write,
    .read = cpu_read,
    .run = cpu_run,
    .destroy = cpu_destroy,
};

sdvk_status sd_backend_cpu_create(int n_threads, const char *isa, sd_backend **out) {
    return sd_backend_cpu_create_ex(n_threads, isa, SDVK_WEIGHTS_AUTO, out);
}

sdvk_status sd_backend_cpu_create_ex(int n_threads, const char *isa, sdvk_weights weights,
                                     sd_backend **out) {
    *out = NULL;
    if ((unsigned)weights > SDVK_WEIGHTS_Q8)
        return sd_err(SDVK_ERR_INVALID_ARG, "unknown weight type %d", (int)weights);
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb)
        return sd_err(SDVK_ERR_OOM, "cpu backend: out of memory");
    sdvk_status s = sd_cpu_select_kernels(isa, &cb->k);
    if (s != SDVK_OK) {
        free(cb);
        return s;
    }
    if (weights == SDVK_WEIGHTS_Q8) {
        if (!cb->k.prep_q8[SD_OP_MATMUL] || !cb->k.prep_q8[SD_OP_CONV2D]) {
            s = sd_err(SDVK_ERR_UNSUPPORTED, "cpu (%s): no 8-bit weight kernels (q8 needs another "
                       "cpu isa)", cb->k.isa);
            free(cb);
            return s;
        }
        /* every matmul/conv weight whose shape allows becomes q8 panels */
        cb->k.prep[SD_OP_MATMUL] = cb->k.prep_q8[SD_OP_MATMUL];
        cb->k.prep[SD_OP_CONV2D] = cb->k.prep_q8[SD_OP_CONV2D];
        cb->q8 = 1;
    }
    const char *prof = getenv("SDVK_CPU_PROFILE");
    cb->profile = prof && atoi(prof) > 0;
    cb->pool = sd_pool_create(n_threads);
    if (!cb->pool) {
        free(cb);
        return sd_err(SDVK_ERR_OOM, "cpu backend: cannot create the thread pool");
    }
    int nth = sd_pool_threads(cb->pool);
    cb->base.v = &cpu_vtbl;
    snprintf(cb->base.name, sizeof cb->base.name, "cpu (%s, %d thread%s%s)", cb->k.isa, nth,
             nth == 1 ? "" : "s", cb->q8 ? ", q8 weights" : "");
    *out = &cb->base;
    return SDVK_OK;
}
