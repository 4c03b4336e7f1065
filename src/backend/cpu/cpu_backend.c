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
} cpu_backend;

struct sd_bgraph {
    const sd_graph *g;
    void *arena;
    void **data;        /* per tensor: f32/i32 data (arena, weight, or converted copy) */
    const void **raw;   /* per tensor: a weight's checkpoint data */
    void **packed;      /* per node: the prep hook's data */
    unsigned char *own; /* per tensor: data[] is a malloc'd copy */
    int64_t max_step;   /* steps must be < this (smallest STEP_SELECT table), or -1 */
    int max_step_node;
};

static void cpu_release(sd_backend *b, sd_bgraph *bg) {
    (void)b;
    if (!bg)
        return;
    if (bg->data && bg->own)
        for (int i = 0; i < bg->g->nt; i++)
            if (bg->own[i])
                free(bg->data[i]);
    if (bg->packed)
        for (int k = 0; k < bg->g->nn; k++) free(bg->packed[k]);
    free(bg->data);
    free(bg->raw);
    free(bg->packed);
    free(bg->own);
    free(bg->arena);
    free(bg);
}

static sdvk_status fail_prep(sd_bgraph *bg, sdvk_status s) {
    cpu_release(NULL, bg);
    return s;
}

static sdvk_status cpu_prepare(sd_backend *b, const sd_graph *g, sd_bgraph **out) {
    cpu_backend *cb = (cpu_backend *)b;
    *out = NULL;
    if (!g)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu prepare: no graph");
    if (g->status)
        return sd_err(g->status, "cpu prepare: graph has a build error: %s", g->err);
    if (!g->planned)
        return sd_err(SDVK_ERR_INVALID_ARG, "cpu prepare: graph is not planned (call sd_graph_plan)");
    int nt = g->nt, nn = g->nn;
    sd_bgraph *bg = calloc(1, sizeof *bg);
    if (!bg)
        return sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory");
    bg->g = g;
    bg->max_step = -1;
    bg->data = calloc((size_t)nt + 1, sizeof(void *));
    bg->raw = calloc((size_t)nt + 1, sizeof(void *));
    bg->own = calloc((size_t)nt + 1, 1);
    bg->packed = calloc((size_t)nn + 1, sizeof(void *));
    size_t asz = (g->arena_size + 63) / 64 * 64;
    bg->arena = aligned_alloc(64, asz ? asz : 64);
    if (!bg->data || !bg->raw || !bg->own || !bg->packed || !bg->arena)
        return fail_prep(bg, sd_err(SDVK_ERR_OOM, "cpu prepare: cannot allocate %zu bytes of arena",
                                    asz));
    memset(bg->arena, 0, asz ? asz : 64); /* unwritten inputs read as zeros, not garbage */

    /* Which weights some node's kernel wants as f32; check the nodes. */
    unsigned char *want = calloc((size_t)nt + 1, 1);
    if (!want)
        return fail_prep(bg, sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory"));
    for (int k = 0; k < nn; k++) {
        const sd_node *n = &g->n[k];
        if ((unsigned)n->op >= SD_OP_COUNT || !cb->k.fn[n->op]) {
            free(want);
            return fail_prep(bg, sd_err(SDVK_ERR_UNSUPPORTED, "cpu (%s): no kernel for op %s (node %d)",
                                        cb->k.isa, sd_op_name(n->op), k));
        }
        /* Every CPU attention kernel (ref and SIMD) keeps a head's row in
         * fixed buffers, so the limit holds whatever kernel was chosen. */
        if (n->op == SD_OP_ATTENTION && g->t[n->in[0]].ne[2] / n->i[0] > SD_REF_ATTN_MAX_D) {
            free(want);
            return fail_prep(bg, sd_err(SDVK_ERR_UNSUPPORTED,
                                        "cpu attention (node %d): head dim %lld above %d", k,
                                        (long long)(g->t[n->in[0]].ne[2] / n->i[0]),
                                        SD_REF_ATTN_MAX_D));
        }
        /* The matmul/conv prep hooks pack weight and bias once, so those
         * must be constant graph weights, not activations. */
        if ((n->op == SD_OP_MATMUL || n->op == SD_OP_CONV2D) && cb->k.prep[n->op])
            for (int j = 1; j <= 2; j++)
                if (n->in[j] >= 0 && g->t[n->in[j]].kind != SD_T_WEIGHT) {
                    free(want);
                    return fail_prep(bg, sd_err(SDVK_ERR_UNSUPPORTED,
                                                "cpu %s (node %d): %s %s must be a graph weight",
                                                sd_op_name(n->op), k, j == 1 ? "weight" : "bias",
                                                g->t[n->in[j]].name));
                }
        if (n->op == SD_OP_STEP_SELECT) {
            int64_t rows = g->t[n->in[0]].ne[0];
            if (bg->max_step < 0 || rows < bg->max_step)
                bg->max_step = rows, bg->max_step_node = k;
        }
        for (int j = 0; j < SD_MAX_IN; j++)
            if (n->in[j] >= 0 && g->t[n->in[j]].kind == SD_T_WEIGHT && cb->k.want_f32_weights[n->op])
                want[n->in[j]] = 1;
    }

    for (int i = 0; i < nt; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->kind != SD_T_WEIGHT) {
            if (t->dtype != SD_F32 && t->dtype != SD_I32) {
                free(want);
                return fail_prep(bg, sd_err(SDVK_ERR_INVALID_ARG,
                                            "cpu prepare: tensor %s has dtype %s (activations are "
                                            "f32 or i32)",
                                            t->name, sd_dtype_name(t->dtype)));
            }
            bg->data[i] = (char *)bg->arena + t->offset;
            continue;
        }
        bg->raw[i] = t->data;
        if (!want[i])
            continue;
        if (!t->data) {
            free(want);
            return fail_prep(bg, sd_err(SDVK_ERR_INVALID_ARG, "cpu prepare: weight %s has no data",
                                        t->name));
        }
        if ((t->dtype == SD_F32 || t->dtype == SD_I32) && ((uintptr_t)t->data & 3) == 0) {
            bg->data[i] = (void *)(uintptr_t)t->data; /* used in place, read only */
            continue;
        }
        size_t n = (size_t)sd_tensor_nelem(t);
        float *f = malloc(n * sizeof(float) + 1);
        if (!f) {
            free(want);
            return fail_prep(bg, sd_err(SDVK_ERR_OOM, "cpu prepare: out of memory converting %s",
                                        t->name));
        }
        if (t->dtype == SD_F32 || t->dtype == SD_I32)
            memcpy(f, t->data, n * 4); /* unaligned source */
        else
            sd_to_f32(f, t->data, t->dtype, n);
        sd_host_pageout(t->data, sd_tensor_nbytes(t));
        bg->data[i] = f;
        bg->own[i] = 1;
    }
    free(want);

    for (int k = 0; k < nn; k++) {
        const sd_node *n = &g->n[k];
        if (!cb->k.prep[n->op])
            continue;
        for (int j = 0; j < SD_MAX_IN; j++)
            if (n->in[j] >= 0 && g->t[n->in[j]].kind == SD_T_WEIGHT && !g->t[n->in[j]].data)
                return fail_prep(bg, sd_err(SDVK_ERR_INVALID_ARG,
                                            "cpu prepare: weight %s has no data",
                                            g->t[n->in[j]].name));
        /* A prep hook exists because the kernel needs its result: NULL
         * means it could not allocate. */
        bg->packed[k] = cb->k.prep[n->op](g, n, bg->raw);
        if (!bg->packed[k])
            return fail_prep(bg, sd_err(SDVK_ERR_OOM,
                                        "cpu prepare: preparing node %d (%s) failed: out of memory",
                                        k, sd_op_name(n->op)));
        /* the packed copy replaces the raw checkpoint bytes */
        for (int j = 0; j < SD_MAX_IN; j++)
            if (n->in[j] >= 0 && g->t[n->in[j]].kind == SD_T_WEIGHT)
                sd_host_pageout(g->t[n->in[j]].data, sd_tensor_nbytes(&g->t[n->in[j]]));
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
    sd_cpu_ctx c = {.g = g,
                    .data = bg->data,
                    .raw = bg->raw,
                    .packed = bg->packed,
                    .pool = be->pool};
    for (int s = first_step; s < first_step + n_steps; s++) {
        c.step = s;
        for (int k = 0; k < g->nn; k++) {
            c.n = &g->n[k];
            be->k.fn[c.n->op](&c);
        }
        if (cb && cb(user, s))
            return sd_err(SDVK_ERR_CANCELLED, "cancelled after step %d", s);
    }
    return SDVK_OK;
}

static void cpu_destroy(sd_backend *b) {
    cpu_backend *cb = (cpu_backend *)b;
    sd_pool_destroy(cb->pool);
    free(cb);
}

static const sd_backend_vtbl cpu_vtbl = {cpu_prepare, cpu_release, cpu_write,
                                         cpu_read,    cpu_run,     cpu_destroy};

sdvk_status sd_backend_cpu_create(int n_threads, const char *isa, sd_backend **out) {
    *out = NULL;
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb)
        return sd_err(SDVK_ERR_OOM, "cpu backend: out of memory");
    sdvk_status s = sd_cpu_select_kernels(isa, &cb->k);
    if (s != SDVK_OK) {
        free(cb);
        return s;
    }
    cb->pool = sd_pool_create(n_threads);
    if (!cb->pool) {
        free(cb);
        return sd_err(SDVK_ERR_OOM, "cpu backend: cannot create the thread pool");
    }
    int nth = sd_pool_threads(cb->pool);
    cb->base.v = &cpu_vtbl;
    snprintf(cb->base.name, sizeof cb->base.name, "cpu (%s, %d thread%s)", cb->k.isa, nth,
             nth == 1 ? "" : "s");
    *out = &cb->base;
    return SDVK_OK;
}
