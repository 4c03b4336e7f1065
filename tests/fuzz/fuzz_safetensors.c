/* Fuzz target: a checkpoint, as `-m` reads it. The input is a whole
 * safetensors file, opened in memory (sd_model_open_mem: the same header
 * validation, tensor walk and architecture inference as sd_model_open).
 *
 * On success it checks what later code relies on (every tensor inside the
 * input, the architecture numbers in range), reads every tensor's bytes
 * (ASan checks the bounds), and builds and plans the graph of each network
 * the checkpoint has, with small inputs, without running it: the graph
 * builders check every weight's shape against the architecture.
 *
 * jansson's allocations are counted: whenever a header was parsed, its
 * peak must stay within sd_st_json_cost's estimate (the estimate is what
 * SD_ST_MAX_HEADER_MEM is checked against, so it must be an upper bound). */
#include <jansson.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "core/status.h"
#include "fuzz_common.h"
#include "model/model.h"

static void check_arch(const sd_model *m) {
    const sd_clip_arch *c = &m->clip;
    if (c->present) {
        FUZZ_CHECK(c->width >= 1 && c->width <= SD_ARCH_MAX_CHANNELS);
        FUZZ_CHECK(c->vocab >= 1 && c->vocab <= SD_ARCH_MAX_VOCAB);
        FUZZ_CHECK(c->n_pos >= 1 && c->n_pos <= SD_ARCH_MAX_POSITIONS);
        FUZZ_CHECK(c->layers >= 1 && c->layers <= SD_ARCH_MAX_BLOCKS);
        FUZZ_CHECK(c->heads >= 1 && c->width % c->heads == 0);
    }
    const sd_unet_arch *u = &m->unet;
    if (u->present) {
        FUZZ_CHECK(u->ch >= 1 && u->ch <= SD_ARCH_MAX_CHANNELS);
        FUZZ_CHECK(u->in_ch >= 1 && u->in_ch <= SD_ARCH_MAX_IO_CHANNELS);
        FUZZ_CHECK(u->out_ch >= 1 && u->out_ch <= SD_ARCH_MAX_IO_CHANNELS);
        FUZZ_CHECK(u->levels >= 1 && u->levels <= SD_MAX_LEVELS);
        FUZZ_CHECK(u->n_res >= 1 && u->n_res <= SD_ARCH_MAX_BLOCKS);
        FUZZ_CHECK(u->heads >= 1 && u->ctx_dim >= 0 && u->ctx_dim <= SD_ARCH_MAX_CHANNELS);
        for (int i = 0; i < u->levels; i++)
            FUZZ_CHECK(u->mult[i] >= 1 && (int64_t)u->mult[i] * u->ch <= SD_ARCH_MAX_CHANNELS);
    }
    const sd_vae_arch *v = &m->vae;
    if (v->has_encoder || v->has_decoder) {
        FUZZ_CHECK(v->ch >= 32 && v->ch <= SD_ARCH_MAX_CHANNELS && v->ch % 32 == 0);
        FUZZ_CHECK(v->levels >= 1 && v->levels < SD_MAX_LEVELS);
        FUZZ_CHECK(v->n_res >= 1 && v->n_res <= SD_ARCH_MAX_BLOCKS);
        FUZZ_CHECK(v->z_ch >= 1 && v->img_ch >= 1);
        for (int i = 0; i < v->levels; i++)
            FUZZ_CHECK(v->mult[i] >= 1 && (int64_t)v->mult[i] * v->ch <= SD_ARCH_MAX_CHANNELS);
    }
}

static size_t g_cur, g_peak;

static void *count_malloc(size_t n) {
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = malloc_usable_size(p);
    g_cur += p[0];
    if (g_cur > g_peak)
        g_peak = g_cur;
    return p + 2;
}

static void count_free(void *q) {
    if (!q)
        return;
    size_t *p = (size_t *)q - 2;
    g_cur -= p[0];
    free(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    json_set_alloc_funcs(count_malloc, count_free);
    return 0;
}

/* The header's parse peak against its estimate. */
static void check_json_cost(const uint8_t *data, size_t size) {
    if (size < 8 || g_peak == 0)
        return;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | data[i];
    if (hl > size - 8)
        return;
    uint64_t est = sd_st_json_cost((const char *)data + 8, (size_t)hl);
    if (g_peak > est)
        fprintf(stderr, "header parse peak %zu > estimate %llu\n", g_peak, (unsigned long long)est);
    FUZZ_CHECK(g_peak <= est);
}

typedef int (*build1_fn)(sd_graph *g, const sd_model *m, int in);

/* Builds one network's graph on an input of shape ne and plans it. */
static void build_plan(const sd_model *m, build1_fn build, sd_dtype dt, int ndim,
                       const int64_t *ne) {
    sd_graph *g = sd_graph_new();
    FUZZ_CHECK(g != NULL);
    int in = sd_graph_input(g, dt, ndim, ne, "input");
    int out = sd_graph_output(g, build(g, m, in));
    if (out >= 0 && !g->status) {
        if (sd_graph_plan(g) != SDVK_OK)
            FUZZ_CHECK_MSG();
    } else {
        FUZZ_CHECK(g->status != SDVK_OK && g->err[0]);
    }
    sd_graph_free(g);
}

static int clip_build1(sd_graph *g, const sd_model *m, int in) { return sd_clip_build(g, m, in, 1); }

/* The tiled VAE's pieces: segments of the decoder/encoder, each band graph
 * built and planned (one row), the decoder head. */
static void build_segments(const sd_model *m, int decode) {
    sd_vae_segs *s = malloc(sizeof *s);
    FUZZ_CHECK(s != NULL);
    int64_t f = sd_vae_factor(m), side = decode ? 2 : 2 * f;
    if (sd_vae_segments(m, decode, side, side, s) != SDVK_OK) {
        FUZZ_CHECK_MSG();
        free(s);
        return;
    }
    for (int k = 0; k < s->n_seg; k++) {
        const sd_vae_seg *sg = &s->seg[k];
        const sd_vae_slot *src = &s->slot[sg->src];
        FUZZ_CHECK(sg->src < sg->dst && sg->dst < s->n_slot && sg->skip < sg->dst);
        sd_graph *g = sd_graph_new();
        FUZZ_CHECK(g != NULL);
        int t = 2, rin = sg->resample > 0 ? t / 2 + 2 : sg->resample < 0 ? 2 * t + 1 : t + 2;
        int64_t xne[4] = {1, rin, src->w, src->c}, cne[1] = {src->c}, mne[4] = {1, rin, 1, 1};
        int x = sd_graph_input(g, SD_F32, 4, xne, "band"), ga = -1, gb = -1, mk = -1, sk = -1;
        if (sg->norm) {
            ga = sd_graph_input(g, SD_F32, 1, cne, "a");
            gb = sd_graph_input(g, SD_F32, 1, cne, "b");
            mk = sd_graph_input(g, SD_F32, 4, mne, "mask");
        }
        if (sg->skip >= 0) {
            int64_t kne[4] = {1, t, s->slot[sg->dst].w, s->slot[sg->skip].c};
            sk = sd_graph_input(g, SD_F32, 4, kne, "skip");
        }
        int out = sd_graph_output(g, sd_vae_seg_build(g, m, sg, x, ga, gb, mk, sk));
        if (out >= 0 && !g->status && sd_graph_plan(g) != SDVK_OK)
            FUZZ_CHECK_MSG();
        sd_graph_free(g);
    }
    free(s);
}

static void build_unet(const sd_model *m) {
    const sd_unet_arch *a = &m->unet;
    sd_graph *g = sd_graph_new();
    FUZZ_CHECK(g != NULL);
    int64_t side = (int64_t)1 << (a->levels - 1);
    int64_t xne[4] = {1, side, side, a->in_ch}, tne[1] = {1}, cne[3] = {1, 77, a->ctx_dim};
    int x = sd_graph_input(g, SD_F32, 4, xne, "latent");
    int t = sd_graph_input(g, SD_F32, 1, tne, "timestep");
    int c = a->ctx_dim > 0 ? sd_graph_input(g, SD_F32, 3, cne, "context") : -1;
    int out = sd_graph_output(g, sd_unet_build(g, m, x, t, c));
    if (out >= 0 && !g->status && sd_graph_plan(g) != SDVK_OK)
        FUZZ_CHECK_MSG();
    sd_graph_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_model *m = NULL;
    g_cur = g_peak = 0;
    sdvk_status s = sd_model_open_mem(data, size, "fuzz.safetensors", &m);
    check_json_cost(data, size);
    if (s != SDVK_OK) {
        FUZZ_CHECK_MSG();
        FUZZ_CHECK(m == NULL);
        return 0;
    }
    const sd_safetensors *st = m->st;
    unsigned sum = 0;
    for (int i = 0; i < st->n; i++) {
        const sd_st_tensor *t = &st->t[i];
        FUZZ_CHECK(sd_st_find(st, t->name) == t);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= SD_ST_MAX_DIMS);
        const uint8_t *p = t->data;
        FUZZ_CHECK(p >= data + 8 && t->nbytes <= size && p <= data + size - t->nbytes);
        for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
    }
    check_arch(m);
    char desc[1024];
    sd_model_describe(m, desc, sizeof desc);
    if (m->clip.present) {
        int64_t ne[3] = {1, m->clip.n_pos, m->clip.width};
        build_plan(m, clip_build1, SD_F32, 3, ne);
    }
    if (m->unet.present)
        build_unet(m);
    if (m->vae.has_decoder) {
        int64_t ne[4] = {1, 2, 2, m->vae.z_ch};
        build_plan(m, sd_vae_decode_build, SD_F32, 4, ne);
        build_segments(m, 1);
    }
    if (m->vae.has_encoder) {
        int64_t f = sd_vae_factor(m);
        int64_t ne[4] = {1, 2 * f, 2 * f, m->vae.img_ch};
        build_plan(m, sd_vae_encode_build, SD_F32, 4, ne);
        build_segments(m, 0);
    }
    sd_model_close(m);
    volatile unsigned sink = sum;
    (void)sink;
    return 0;
}
