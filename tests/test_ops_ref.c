/* The CPU reference kernels against PyTorch goldens (tests/data/ops, made
 * by tools/make_op_fixtures.py): each case builds a 1-node graph from the
 * manifest, runs it on the "ref" CPU backend and requires a relative L2
 * error below the case's tolerance (1e-5, fp32).
 * Usage: test_ops_ref <fixture dir> [case name substring] */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/npy.h"
#include "core/status.h"

#define MAXIN 4

static const char *g_dir;

static sdvk_status load(const char *file, sd_npy *a) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    return sd_npy_load(path, a);
}

static sd_dtype parse_dtype(const char *s) {
    return !strcmp(s, "f16") ? SD_F16 : !strcmp(s, "bf16") ? SD_BF16 : !strcmp(s, "i32") ? SD_I32 : SD_F32;
}

static int build_node(sd_graph *g, const char *op, const int *in, const json_t *ip, const json_t *fp) {
    int i[8] = {0};
    float f[4] = {0};
    for (size_t k = 0; k < json_array_size(ip) && k < 8; k++)
        i[k] = (int)json_integer_value(json_array_get(ip, k));
    for (size_t k = 0; k < json_array_size(fp) && k < 4; k++)
        f[k] = (float)json_number_value(json_array_get(fp, k));
    switch (sd_op_from_name(op)) {
    case SD_OP_MATMUL: return sd_matmul(g, in[0], in[1], in[2], in[3]);
    case SD_OP_CONV2D: return sd_conv2d(g, in[0], in[1], in[2], in[3], i[0], i[1], i[2], i[3], i[4]);
    case SD_OP_GROUP_NORM: return sd_group_norm(g, in[0], in[1], in[2], i[0], f[0], i[1]);
    case SD_OP_LAYER_NORM: return sd_layer_norm(g, in[0], in[1], in[2], f[0]);
    case SD_OP_ATTENTION: return sd_attention(g, in[0], in[1], in[2], i[0], i[1], f[0]);
    case SD_OP_GEGLU: return sd_geglu(g, in[0]);
    case SD_OP_GELU: return sd_gelu(g, in[0]);
    case SD_OP_QUICK_GELU: return sd_quick_gelu(g, in[0]);
    case SD_OP_SILU: return sd_silu(g, in[0]);
    case SD_OP_ADD: return sd_add(g, in[0], in[1]);
    case SD_OP_MUL: return sd_mul(g, in[0], in[1]);
    case SD_OP_SCALE: return sd_scale(g, in[0], f[0], f[1]);
    case SD_OP_UPSAMPLE2X: return sd_upsample2x(g, in[0]);
    case SD_OP_CONCAT: return sd_concat(g, in[0], in[1], i[0]);
    case SD_OP_EMBEDDING: return sd_embedding(g, in[0], in[1]);
    case SD_OP_TIMESTEP_EMBED: return sd_timestep_embed(g, in[0], i[0]);
    case SD_OP_STEP_SELECT: return sd_step_select(g, in[0]);
    case SD_OP_CFG_COMBINE: return sd_cfg_combine(g, in[0], in[1]);
    case SD_OP_SAMPLER_STEP: return sd_sampler_step(g, in[0], i[1], in[1], in[2], in[3], i[0]);
    case SD_OP_COPY: return sd_copy_into(g, in[0], in[1]);
    case SD_OP_RELU: return sd_relu(g, in[0]);
    case SD_OP_TANH: return sd_tanh(g, in[0]);
    default: return sd_graph_fail(g, SDVK_ERR_INVALID_ARG, "unknown op %s", op);
    }
}

/* Returns 1 when the case passes, printing one line either way. */
static int run_case(sd_backend *be, const json_t *c, int *ops_seen) {
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *op = json_string_value(json_object_get(c, "op"));
    const json_t *ins = json_object_get(c, "inputs");
    double tol = json_number_value(json_object_get(c, "tol"));
    int step = (int)json_integer_value(json_object_get(c, "step"));
    int steps = (int)json_integer_value(json_object_get(c, "steps"));
    sd_npy arr[MAXIN], want;
    void *wdata[MAXIN] = {0};
    int in[MAXIN] = {-1, -1, -1, -1}, is_input[MAXIN] = {0}, ok = 0;
    memset(arr, 0, sizeof arr);
    memset(&want, 0, sizeof want);
    sd_graph *g = sd_graph_new();
    sd_bgraph *bg = NULL;
    float *got = NULL;
    if (!name || !op || !g || sd_op_from_name(op) < 0) {
        printf("FAIL bad manifest entry %s\n", name ? name : "?");
        goto done;
    }
    ops_seen[sd_op_from_name(op)]++;
    for (size_t k = 0; k < json_array_size(ins) && k < MAXIN; k++) {
        const json_t *e = json_array_get(ins, k);
        if (json_is_null(e))
            continue;
        const char *file = json_string_value(json_object_get(e, "file"));
        const char *kind = json_string_value(json_object_get(e, "kind"));
        sd_dtype dt = parse_dtype(json_string_value(json_object_get(e, "dtype")));
        if (load(file, &arr[k]) != SDVK_OK) {
            printf("FAIL %s: %s\n", name, sdvk_last_error());
            goto done;
        }
        if (!strcmp(kind, "input")) {
            in[k] = sd_graph_input(g, arr[k].dtype, arr[k].ndim, arr[k].ne, file);
            is_input[k] = 1;
        } else {
            /* weights: give the graph the checkpoint dtype the case asks for
             * (the fixture values are exactly representable in it) */
            size_t n = (size_t)sd_npy_nelem(&arr[k]);
            const float *src = arr[k].data;
            if (dt == SD_F16 || dt == SD_BF16) {
                uint16_t *h = malloc(n * 2 + 2);
                for (size_t j = 0; h && j < n; j++)
                    h[j] = dt == SD_F16 ? sd_f32_to_f16(src[j]) : sd_f32_to_bf16(src[j]);
                wdata[k] = h;
            }
            in[k] = sd_graph_weight(g, dt, arr[k].ndim, arr[k].ne, wdata[k] ? wdata[k] : arr[k].data,
                                    file);
        }
    }
    int out = build_node(g, op, in, json_object_get(c, "i"), json_object_get(c, "f"));
    if (out >= 0)
        sd_graph_output(g, out);
    if (out < 0 || sd_graph_plan(g) != SDVK_OK) {
        printf("FAIL %s: build: %s\n", name, sdvk_last_error());
        goto done;
    }
    if (load(json_string_value(json_object_get(c, "out")), &want) != SDVK_OK) {
        printf("FAIL %s: %s\n", name, sdvk_last_error());
        goto done;
    }
    int64_t n = sd_tensor_nelem(&g->t[out]);
    if (sd_npy_nelem(&want) != n) {
        printf("FAIL %s: golden has %lld elements, graph output %lld\n", name,
               (long long)sd_npy_nelem(&want), (long long)n);
        goto done;
    }
    got = malloc((size_t)n * sizeof(float));
    sdvk_status s = be->v->prepare(be, g, NULL, &bg);
    for (int k = 0; k < MAXIN && s == SDVK_OK; k++)
        if (is_input[k])
            s = be->v->write(be, bg, in[k], arr[k].data, (size_t)sd_npy_nelem(&arr[k]) * 4);
    if (s == SDVK_OK)
        s = be->v->run(be, bg, step, steps, NULL, NULL);
    if (s == SDVK_OK)
        s = be->v->read(be, bg, out, got, (size_t)n * sizeof(float));
    if (s != SDVK_OK) {
        printf("FAIL %s: %s\n", name, sdvk_last_error());
        goto done;
    }
    const float *w = want.data;
    double num = 0, den = 0;
    for (int64_t j = 0; j < n; j++) {
        double d = (double)got[j] - w[j];
        num += isfinite(got[j]) ? d * d : INFINITY;
        den += (double)w[j] * w[j];
    }
    double err = sqrt(num / (den > 0 ? den : 1));
    ok = err <= tol;
    printf("%s %-18s %-14s rel_err %.3e (tol %.0e)\n", ok ? "ok  " : "FAIL", name, op, err, tol);
done:
    if (bg)
        be->v->release(be, bg);
    for (int k = 0; k < MAXIN; k++) {
        sd_npy_free(&arr[k]);
        free(wdata[k]);
    }
    sd_npy_free(&want);
    free(got);
    sd_graph_free(g);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <fixture dir> [case filter]\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.json", g_dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    const json_t *cases = root ? json_object_get(root, "cases") : NULL;
    if (!json_is_array(cases) || json_array_size(cases) == 0) {
        fprintf(stderr, "FAIL: %s: %s\n", path, root ? "no cases" : je.text);
        return 1;
    }
    sd_backend *be = NULL;
    if (sd_backend_cpu_create(2, "ref", &be) != SDVK_OK) {
        fprintf(stderr, "FAIL: cpu backend: %s\n", sdvk_last_error());
        return 1;
    }
    printf("backend: %s\n", be->name);
    int fails = 0, ran = 0, seen[SD_OP_COUNT] = {0};
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        if (argc > 2 && (!name || !strstr(name, argv[2])))
            continue;
        ran++;
        fails += !run_case(be, c, seen);
    }
    /* every op of ops.def must have a golden (unless filtered) */
    for (int op = 0; op < SD_OP_COUNT && argc <= 2; op++)
        if (!seen[op]) {
            printf("FAIL: no fixture for op %s\n", sd_op_name(op));
            fails++;
        }
    printf("%d of %d cases passed\n", ran - fails, ran);
    sd_backend_destroy(be);
    json_decref(root);
    return fails || !ran ? 1 : 0;
}
