/* Graph and planner unit tests, plus the CPU backend's host-side contract:
 *  - random graphs: no two simultaneously live tensors share arena bytes
 *    (checked exhaustively over all pairs), alignment, arena bounds;
 *    inputs/outputs pinned (live for the whole graph);
 *  - views (and views of views) resolve to their root's offset;
 *  - build errors: the first one sticks, names the tensor, later builders
 *    return -1, sd_graph_plan fails with it;
 *  - cpu backend: unplanned graph, wrong tensor kind / byte count, step
 *    range of STEP_SELECT, cancellation from the step callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/status.h"

static int fails;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            printf(__VA_ARGS__);                          \
            printf("\n");                                 \
            fails++;                                      \
        }                                                 \
    } while (0)

static uint64_t rng = 88172645463325252ull;
static int rnd(int n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int)(rng % (uint64_t)n);
}

static float wbuf[1 << 16]; /* shared (zero) weight data: only shapes matter here */

/* Builds a random graph of 2-D activations [rows, C] and checks the plan. */
static void check_placement(sd_graph *g, int trial, int pass, const int *first, const int *last);

static void random_graph(int trial) {
    sd_graph *g = sd_graph_new();
    int pool[256], np = 0;
    int n_in = 1 + rnd(3);
    for (int i = 0; i < n_in; i++) {
        int64_t ne[2] = {1 + rnd(40), 8 << rnd(3)};
        pool[np++] = sd_graph_input(g, SD_F32, 2, ne, "in");
    }
    int n_ops = 10 + rnd(60);
    for (int k = 0; k < n_ops && np < 250; k++) {
        int a = pool[np - 1 - rnd(np < 6 ? np : 6)]; /* mostly recent tensors: realistic liveness */
        const sd_tensor *A = &g->t[a];
        int64_t rows = A->ne[0], c = A->ne[1], r = -1;
        switch (rnd(6)) {
        case 0: r = sd_scale(g, a, 2.0f, 1.0f); break;
        case 1: r = sd_silu(g, a); break;
        case 2: {
            int64_t wne[2] = {8 << rnd(3), c};
            int w = sd_graph_weight(g, SD_F32, 2, wne, wbuf, "w");
            r = sd_matmul(g, a, w, -1, -1);
            break;
        }
        case 3: { /* add with any live tensor of the same shape, else with a broadcast row */
            int b = -1;
            for (int j = 0; j < np; j++)
                if (pool[j] != a && g->t[pool[j]].ne[0] == rows && g->t[pool[j]].ne[1] == c &&
                    g->t[pool[j]].ndim == 2)
                    b = pool[j];
            r = sd_add(g, a, b >= 0 ? b : sd_graph_weight(g, SD_F32, 1, &c, wbuf, "bias"));
            break;
        }
        case 4: { /* a view: reshape to [rows*c/8, 8] */
            int64_t ne[2] = {rows * c / 8, 8};
            r = sd_graph_reshape(g, a, 2, ne);
            break;
        }
        default: r = sd_concat(g, a, a, 0); break;
        }
        pool[np++] = r;
        if (rnd(8) == 0)
            sd_graph_output(g, r);
    }
    sd_graph_output(g, pool[np - 1]);
    CHECK(g->status == SDVK_OK, "trial %d: build failed: %s", trial, g->err);
    CHECK(sd_graph_plan(g) == SDVK_OK, "trial %d: plan failed: %s", trial, sdvk_last_error());

    /* live interval of every storage root, in node indices */
    int nt = g->nt, nn = g->nn;
    int *first = malloc(sizeof(int) * (size_t)nt), *last = malloc(sizeof(int) * (size_t)nt);
    for (int i = 0; i < nt; i++) first[i] = nn, last[i] = -1;
    for (int k = 0; k < nn; k++) {
        int ids[SD_MAX_IN + 1];
        memcpy(ids, g->n[k].in, sizeof g->n[k].in);
        ids[SD_MAX_IN] = g->n[k].out;
        for (int j = 0; j <= SD_MAX_IN; j++) {
            if (ids[j] < 0)
                continue;
            int r = sd_graph_root(g, ids[j]);
            if (k < first[r])
                first[r] = k;
            if (k > last[r])
                last[r] = k;
        }
    }
    for (int i = 0; i < nt; i++)
        if (g->t[i].kind == SD_T_INPUT || g->t[i].kind == SD_T_OUTPUT)
            first[i] = 0, last[i] = nn - 1; /* pinned */
    /* Pass 0 checks sd_graph_plan's offsets; pass 1 those of sd_graph_place
     * with a block size (the Vulkan backend's split arena), written into the
     * graph so that the same checks apply, plus: no tensor straddles a block. */
    for (int pass = 0; pass < 2; pass++)
        check_placement(g, trial, pass, first, last);
    free(first);
    free(last);
    sd_graph_free(g);
}

static void check_placement(sd_graph *g, int trial, int pass, const int *first, const int *last) {
    int nt = g->nt, nn = g->nn;
    size_t block = 0;
    if (pass == 1) {
        size_t big = 0, *off = malloc(sizeof(size_t) * (size_t)nt), top;
        for (int i = 0; i < nt; i++)
            if (g->t[i].base < 0 && g->t[i].kind != SD_T_WEIGHT && sd_tensor_nbytes(&g->t[i]) > big)
                big = sd_tensor_nbytes(&g->t[i]);
        block = (big + 255) / 256 * 256 * (size_t)(1 + rnd(3));
        sdvk_status st = sd_graph_place(g, block, off, &top);
        CHECK(st == SDVK_OK, "trial %d: place with block %zu failed: %s", trial, block,
              sdvk_last_error());
        for (int i = 0; i < nt && st == SDVK_OK; i++)
            if (g->t[i].kind != SD_T_WEIGHT || g->t[i].base >= 0)
                g->t[i].offset = off[i];
        g->arena_size = top;
        /* a block smaller than the largest tensor is refused */
        if (st == SDVK_OK && big > 256)
            CHECK(sd_graph_place(g, (big - 1) / 256 * 256, off, &top) == SDVK_ERR_UNSUPPORTED,
                  "trial %d: a block smaller than a tensor was accepted", trial);
        free(off);
        if (st != SDVK_OK)
            return;
    }
    for (int i = 0; i < nt; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->base >= 0 || t->kind == SD_T_WEIGHT || last[i] < 0)
            continue;
        CHECK(t->offset % 256 == 0, "trial %d: t%d offset %zu unaligned", trial, i, t->offset);
        CHECK(t->offset + sd_tensor_nbytes(t) <= g->arena_size, "trial %d: t%d past arena", trial, i);
        CHECK(!block || t->offset / block == (t->offset + sd_tensor_nbytes(t) - 1) / block,
              "trial %d: t%d [%zu,+%zu) straddles a %zu-byte block", trial, i, t->offset,
              sd_tensor_nbytes(t), block);
    }
    int pairs = 0;
    for (int i = 0; i < nt; i++)
        for (int j = i + 1; j < nt; j++) {
            const sd_tensor *a = &g->t[i], *b = &g->t[j];
            if (a->base >= 0 || b->base >= 0 || a->kind == SD_T_WEIGHT || b->kind == SD_T_WEIGHT ||
                last[i] < 0 || last[j] < 0)
                continue;
            if (first[i] > last[j] || first[j] > last[i])
                continue; /* never live together */
            pairs++;
            int overlap = a->offset < b->offset + sd_tensor_nbytes(b) &&
                          b->offset < a->offset + sd_tensor_nbytes(a);
            CHECK(!overlap, "trial %d: t%d [%zu,+%zu) and t%d [%zu,+%zu) live together and overlap",
                  trial, i, a->offset, sd_tensor_nbytes(a), j, b->offset, sd_tensor_nbytes(b));
        }
    /* views resolve to the root's bytes */
    for (int i = 0; i < nt; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->base < 0)
            continue;
        int r = sd_graph_root(g, i);
        CHECK(t->offset >= g->t[r].offset &&
                  t->offset + sd_tensor_nbytes(t) <= g->t[r].offset + sd_tensor_nbytes(&g->t[r]),
              "trial %d: view t%d outside its root t%d", trial, i, r);
    }
    CHECK(pairs > 0 || nn < 3, "trial %d: no concurrently live pairs checked", trial);
}

static void test_views(void) {
    sd_graph *g = sd_graph_new();
    int64_t ne[2] = {4, 16}, half[2] = {2, 16}, flat[1] = {32}, q[1] = {8};
    int x = sd_graph_input(g, SD_F32, 2, ne, "x");
    int y = sd_scale(g, x, 1, 0);
    int v = sd_graph_view(g, y, 2, half, 2 * 16 * 4); /* rows 2..3 */
    int vv = sd_graph_view(g, sd_graph_reshape(g, v, 1, flat), 1, q, 8 * 4);
    int z = sd_silu(g, vv);
    sd_graph_output(g, z);
    int xv = sd_graph_view(g, x, 2, half, 16 * 4);
    int bad = sd_graph_view(g, x, 2, ne, 4); /* one float past the end */
    CHECK(bad == -1 && g->status == SDVK_ERR_INVALID_ARG && strstr(g->err, "out of range"),
          "out-of-range view accepted (%s)", g->err);
    g->status = SDVK_OK; /* continue with the valid part */
    CHECK(sd_graph_plan(g) == SDVK_OK, "plan: %s", sdvk_last_error());
    CHECK(g->t[v].offset == g->t[y].offset + 128, "view offset %zu vs %zu", g->t[v].offset,
          g->t[y].offset);
    CHECK(g->t[vv].offset == g->t[y].offset + 128 + 32, "nested view offset");
    CHECK(g->t[xv].offset == g->t[x].offset + 64, "view of input");
    CHECK(sd_graph_root(g, vv) == y, "root of nested view");
    CHECK(g->t[y].offset != g->t[z].offset, "y is live while z is made");
    sd_graph_free(g);
}

/* Regression: op constructors pass an input's own shape/name (pointers into
 * the tensor table) while the table grows; building thousands of nodes
 * makes it move many times (ASan catches a read of the old table). */
static void test_growth(void) {
    sd_graph *g = sd_graph_new();
    int64_t ne[3] = {1, 3, 5};
    int x = sd_graph_input(g, SD_F32, 3, ne, "x");
    for (int i = 0; i < 5000 && x >= 0; i++)
        x = (i % 3 == 0) ? sd_layer_norm(g, x, sd_graph_weight(g, SD_F32, 1, ne + 2, wbuf, "w"),
                                         sd_graph_weight(g, SD_F32, 1, ne + 2, wbuf, "b"), 1e-5f)
            : (i % 3 == 1) ? sd_graph_reshape(g, x, 3, g->t[x].ne)
                           : sd_silu(g, x);
    CHECK(x >= 0 && g->t[x].ndim == 3 && g->t[x].ne[1] == 3 && g->t[x].ne[2] == 5,
          "shape lost while the graph grew");
    CHECK(!strcmp(g->t[x].name, "silu") || !strcmp(g->t[x].name, "layer_norm"),
          "name lost while the graph grew: %s", g->t[x].name);
    sd_graph_free(g);
}

static void test_errors(void) {
    sd_graph *g = sd_graph_new();
    int64_t xs[3] = {2, 7, 32}, ws[2] = {16, 31};
    int x = sd_graph_input(g, SD_F32, 3, xs, "x");
    int w = sd_graph_weight(g, SD_F32, 2, ws, wbuf, "blocks.0.proj.weight");
    int y = sd_matmul(g, x, w, -1, -1);
    CHECK(y == -1 && g->status == SDVK_ERR_MODEL, "bad matmul accepted");
    CHECK(strstr(g->err, "blocks.0.proj.weight") && strstr(g->err, "[2,7,32]") &&
              strstr(g->err, "[16,31]"),
          "message lacks tensor/shapes: %s", g->err);
    CHECK(strstr(sdvk_last_error(), "blocks.0.proj.weight"), "last error: %s", sdvk_last_error());
    char first[512];
    snprintf(first, sizeof first, "%s", g->err);
    CHECK(sd_silu(g, x) == -1 && sd_silu(g, y) == -1, "builder ran after an error");
    CHECK(!strcmp(first, g->err), "first error overwritten: %s", g->err);
    CHECK(sd_graph_plan(g) == SDVK_ERR_MODEL && strstr(sdvk_last_error(), "blocks.0.proj.weight"),
          "plan did not fail with the build error: %s", sdvk_last_error());
    sd_graph_free(g);

    struct {
        const char *what, *needle;
    } cases[] = {{"conv", "conv2d"}, {"gn", "groups"}, {"bcast", "does not broadcast"},
                 {"concat", "concat"}, {"dims", "dims"}, {"attn", "attention"}};
    for (int c = 0; c < 6; c++) {
        g = sd_graph_new();
        int64_t x4[4] = {1, 8, 8, 12}, w4[4] = {16, 10, 3, 3}, b3[3] = {5, 7, 3}, c12[1] = {12};
        int64_t x5[5] = {1, 1, 1, 1, 1};
        int xi = sd_graph_input(g, SD_F32, 4, x4, "x"), r = 0;
        switch (c) {
        case 0: r = sd_conv2d(g, xi, sd_graph_weight(g, SD_F16, 4, w4, wbuf, "conv.w"), -1, -1, 1, 1, 1, 1, 1); break;
        case 1: {
            int gw = sd_graph_weight(g, SD_F32, 1, c12, wbuf, "norm.w");
            r = sd_group_norm(g, xi, gw, gw, 5, 1e-5f, 0);
            break;
        }
        case 2: r = sd_add(g, xi, sd_graph_input(g, SD_F32, 3, b3, "b")); break;
        case 3: r = sd_concat(g, xi, sd_graph_input(g, SD_F32, 3, b3, "b"), 1); break;
        case 4: r = sd_graph_input(g, SD_F32, 5, x5, "five"); break;
        default: r = sd_attention(g, xi, xi, xi, 5, 0, 1.0f); break;
        }
        CHECK(r == -1 && g->status != SDVK_OK && strstr(g->err, cases[c].needle),
              "%s: r=%d status %d msg '%s'", cases[c].what, r, g->status, g->err);
        sd_graph_free(g);
    }
}

static int cb_calls;
static int cancel_after_first(void *user, int step) {
    (void)user;
    cb_calls++;
    return step >= 0;
}

static void test_cpu_contract(void) {
    sd_backend *be = NULL;
    if (sd_backend_cpu_create(2, "ref", &be) != SDVK_OK) {
        CHECK(0, "cpu ref: %s", sdvk_last_error());
        return;
    }
    CHECK(strstr(be->name, "cpu") && strstr(be->name, "ref"), "name %s", be->name);
    sd_backend *bad = NULL;
    CHECK(sd_backend_cpu_create(1, "no-such-isa", &bad) != SDVK_OK && !bad &&
              strstr(sdvk_last_error(), "no-such-isa"),
          "unknown ISA accepted (%s)", sdvk_last_error());

    sd_graph *g = sd_graph_new();
    int64_t ts[3] = {3, 2, 4}, xs[2] = {2, 4};
    int table = sd_graph_input(g, SD_F32, 3, ts, "table");
    int x = sd_graph_input(g, SD_F32, 2, xs, "x");
    int sel = sd_step_select(g, table);
    int y = sd_add(g, x, sel);
    sd_copy_into(g, y, x); /* x += table[step] each step */
    int mid = sd_scale(g, y, 1, 0);
    sd_graph_output(g, mid);
    sd_bgraph *bg = NULL;
    CHECK(be->v->prepare(be, g, NULL, &bg) != SDVK_OK && strstr(sdvk_last_error(), "not planned"),
          "unplanned graph accepted");
    CHECK(sd_graph_plan(g) == SDVK_OK, "plan");
    CHECK(be->v->prepare(be, g, NULL, &bg) == SDVK_OK, "prepare: %s", sdvk_last_error());
    float tv[24], xv[8] = {0}, out[8];
    for (int i = 0; i < 24; i++) tv[i] = (float)i;
    CHECK(be->v->write(be, bg, table, tv, sizeof tv) == SDVK_OK, "write table");
    CHECK(be->v->write(be, bg, x, xv, 4) != SDVK_OK && strstr(sdvk_last_error(), "32 bytes"),
          "short write accepted (%s)", sdvk_last_error());
    CHECK(be->v->write(be, bg, mid, out, sizeof out) != SDVK_OK, "write to an output accepted");
    CHECK(be->v->read(be, bg, sel, out, sizeof out) != SDVK_OK &&
              strstr(sdvk_last_error(), "not a graph"),
          "read of an intermediate accepted");
    CHECK(be->v->read(be, bg, 9999, out, sizeof out) != SDVK_OK, "bad id accepted");
    CHECK(be->v->write(be, bg, x, xv, sizeof xv) == SDVK_OK, "write x");
    CHECK(be->v->run(be, bg, 0, 3, NULL, NULL) == SDVK_OK, "run 3 steps: %s", sdvk_last_error());
    CHECK(be->v->read(be, bg, x, out, sizeof out) == SDVK_OK, "read x");
    for (int i = 0; i < 8; i++) /* sum over steps 0..2 of table[s][i] = 3i + 8*(0+1+2) */
        CHECK(out[i] == (float)(3 * i + 24), "x[%d] = %g after 3 steps", i, out[i]);
    CHECK(be->v->run(be, bg, 2, 2, NULL, NULL) != SDVK_OK && strstr(sdvk_last_error(), "3 rows"),
          "step past the step_select table accepted (%s)", sdvk_last_error());
    cb_calls = 0;
    CHECK(be->v->run(be, bg, 0, 3, cancel_after_first, NULL) == SDVK_ERR_CANCELLED && cb_calls == 1,
          "cancel: %d callbacks", cb_calls);
    be->v->release(be, bg);
    sd_graph_free(g);

    /* matmul's weight must be a graph weight (it is packed at prepare) */
    g = sd_graph_new();
    int64_t as[2] = {3, 8}, bs[2] = {5, 8};
    int a = sd_graph_input(g, SD_F32, 2, as, "a"), b = sd_graph_input(g, SD_F32, 2, bs, "b");
    sd_graph_output(g, sd_matmul(g, a, b, -1, -1));
    CHECK(sd_graph_plan(g) == SDVK_OK, "plan");
    bg = NULL;
    CHECK(be->v->prepare(be, g, NULL, &bg) != SDVK_OK && !bg && strstr(sdvk_last_error(), "graph weight"),
          "activation as matmul weight accepted (%s)", sdvk_last_error());
    sd_graph_free(g);

    /* the reference attention keeps a key chunk of [head dim][32] on the
     * stack: larger head dims are refused at prepare, not overflowed */
    g = sd_graph_new();
    int64_t qs[3] = {1, 2, 1040};
    int q = sd_graph_input(g, SD_F32, 3, qs, "q");
    sd_graph_output(g, sd_attention(g, q, q, q, 1, 0, 0.03f));
    CHECK(sd_graph_plan(g) == SDVK_OK, "plan");
    bg = NULL;
    CHECK(be->v->prepare(be, g, NULL, &bg) == SDVK_ERR_UNSUPPORTED && !bg &&
              strstr(sdvk_last_error(), "head dim 1040"),
          "huge head dim accepted (%s)", sdvk_last_error());
    sd_graph_free(g);

    /* an f32 weight at an unaligned address (e.g. inside a mmapped file)
     * gives the same result as an aligned copy */
    static float vals[13];
    static unsigned char raw[13 * 4 + 1];
    for (int i = 0; i < 13; i++) vals[i] = 0.5f + 0.1f * (float)i;
    memcpy(raw + 1, vals, sizeof vals);
    float res[2][26];
    for (int u = 0; u < 2; u++) {
        g = sd_graph_new();
        int64_t ls[2] = {2, 13}, cs[1] = {13};
        int x = sd_graph_input(g, SD_F32, 2, ls, "x");
        int gw = sd_graph_weight(g, SD_F32, 1, cs, u ? (const void *)(raw + 1) : vals, "ln.w");
        int y = sd_graph_output(g, sd_layer_norm(g, x, gw, gw, 1e-5f));
        float xin[26];
        for (int i = 0; i < 26; i++) xin[i] = (float)((i * 7) % 11) - 5.0f;
        bg = NULL;
        CHECK(sd_graph_plan(g) == SDVK_OK && be->v->prepare(be, g, NULL, &bg) == SDVK_OK &&
                  be->v->write(be, bg, x, xin, sizeof xin) == SDVK_OK &&
                  be->v->run(be, bg, 0, 1, NULL, NULL) == SDVK_OK &&
                  be->v->read(be, bg, y, res[u], sizeof res[u]) == SDVK_OK,
              "unaligned weight run: %s", sdvk_last_error());
        if (bg)
            be->v->release(be, bg);
        sd_graph_free(g);
    }
    CHECK(!memcmp(res[0], res[1], sizeof res[0]), "unaligned weight changed the result");
    CHECK(res[0][0] != 0.0f, "layer norm output is zero");
    sd_backend_destroy(be);
}

int main(void) {
    for (int trial = 0; trial < 200; trial++) random_graph(trial);
    test_views();
    test_growth();
    test_errors();
    test_cpu_contract();
    printf("%s\n", fails ? "FAILED" : "all passed");
    return fails ? 1 : 0;
}
