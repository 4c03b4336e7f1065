/* TAESD graphs (src/model/taesd.c) against diffusers' AutoencoderTiny
 * goldens (tools/make_taesd.py): decode and encode, in the diffusers layout
 * and in madebyollin's own key layout (made here by renaming), plus the
 * refusal of a file that is not TAESD.
 *   test_taesd DIR [cpu|vulkan] [TOL]     DIR holds taesd.safetensors, dec_in/out, enc_in/out */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/npy.h"
#include "core/status.h"
#include "model/taesd.h"

static int failures;

static sd_npy load(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    sd_npy a;
    if (sd_npy_load(p, &a)) {
        fprintf(stderr, "FATAL: %s\n", sdvk_last_error());
        exit(2);
    }
    return a;
}

/* NCHW <-> NHWC of one [B, C, H, W] array. */
static void to_nhwc(const float *s, float *d, const int64_t *ne) {
    int64_t B = ne[0], C = ne[1], H = ne[2], W = ne[3];
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < H * W; i++) d[(b * H * W + i) * C + c] = s[(b * C + c) * H * W + i];
}

static double rel_l2_nhwc(const float *nhwc, const sd_npy *ref) {
    int64_t B = ref->ne[0], C = ref->ne[1], HW = ref->ne[2] * ref->ne[3];
    double num = 0, den = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < HW; i++) {
                double r = ((const float *)ref->data)[(b * C + c) * HW + i], x = nhwc[(b * HW + i) * C + c];
                num += (x - r) * (x - r);
                den += r * r;
            }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Builds (decode or encode), runs on be and compares with the golden. */
static void run_case(sd_backend *be, const sd_safetensors *st, const char *dir, int encode, double tol,
                     const char *what) {
    sd_npy in = load(dir, encode ? "enc_in.npy" : "dec_in.npy"), gold = load(dir, encode ? "enc_out.npy" : "dec_out.npy");
    int64_t ne[4] = {in.ne[0], in.ne[2], in.ne[3], in.ne[1]};
    sd_graph *g = sd_graph_new();
    int x = sd_graph_input(g, SD_F32, 4, ne, encode ? "image" : "latent");
    int o = sd_graph_output(g, encode ? sd_taesd_encode_build(g, st, x) : sd_taesd_decode_build(g, st, x));
    float *xin = malloc((size_t)sd_npy_nelem(&in) * 4), *out = NULL;
    sd_bgraph *bg = NULL;
    sdvk_status s = g->status ? g->status : sd_graph_plan(g);
    if (!s)
        s = be->v->prepare(be, g, NULL, &bg);
    if (!s) {
        to_nhwc(in.data, xin, in.ne);
        int64_t n = sd_tensor_nelem(&g->t[o]);
        out = malloc((size_t)n * 4);
        int shape_ok = g->t[o].ne[0] == gold.ne[0] && g->t[o].ne[1] == gold.ne[2] && g->t[o].ne[2] == gold.ne[3] &&
                       g->t[o].ne[3] == gold.ne[1];
        s = be->v->write(be, bg, x, xin, (size_t)sd_npy_nelem(&in) * 4);
        if (!s)
            s = be->v->run(be, bg, 0, 1, NULL, NULL);
        if (!s)
            s = be->v->read(be, bg, o, out, (size_t)n * 4);
        if (!s && !shape_ok) {
            printf("FAIL %s: output shape [%lld,%lld,%lld,%lld]\n", what, (long long)g->t[o].ne[0],
                   (long long)g->t[o].ne[1], (long long)g->t[o].ne[2], (long long)g->t[o].ne[3]);
            failures++;
        } else if (!s) {
            double e = rel_l2_nhwc(out, &gold);
            int ok = e <= tol;
            printf("%s %-40s rel L2 %.3g (tol %.0e)\n", ok ? "ok  " : "FAIL", what, e, tol);
            failures += !ok;
        }
    }
    if (s) {
        printf("FAIL %s: %s\n", what, sdvk_last_error());
        failures++;
    }
    if (bg)
        be->v->release(be, bg);
    sd_graph_free(g);
    free(xin);
    free(out);
    sd_npy_free(&in);
    sd_npy_free(&gold);
}

/* The same weights under madebyollin's names (decoder file: index + 1,
 * encoder file: same index), written to two temporary files. */
static int write_raw(const sd_safetensors *st, const char *dec_path, const char *enc_path) {
    for (int which = 0; which < 2; which++) {
        const char *pre = which ? "encoder.layers." : "decoder.layers.";
        size_t pl = strlen(pre);
        sd_st_write_item *it = calloc((size_t)st->n, sizeof *it);
        char (*names)[128] = calloc((size_t)st->n, 128);
        int n = 0;
        for (int i = 0; i < st->n; i++) {
            const sd_st_tensor *t = &st->t[i];
            if (strncmp(t->name, pre, pl))
                continue;
            char *end;
            long k = strtol(t->name + pl, &end, 10);
            snprintf(names[n], 128, "%ld%s", k + (which ? 0 : 1), end);
            it[n] = (sd_st_write_item){.name = names[n], .dtype = t->dtype, .ndim = t->ndim, .data = t->data};
            memcpy(it[n].ne, t->ne, sizeof t->ne);
            n++;
        }
        sdvk_status s = sd_st_write(which ? enc_path : dec_path, it, n, NULL, 0);
        free(it);
        free(names);
        if (s)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_taesd DIR [cpu|vulkan] [TOL]\n");
        return 2;
    }
    const char *dir = argv[1];
    int vulkan = argc > 2 && !strcmp(argv[2], "vulkan");
    double tol = argc > 3 ? atof(argv[3]) : 1e-3;
    sdvk_options opt;
    sdvk_options_default(&opt);
    sdvk_options_from_env(&opt);
    opt.n_threads = 2;
    sd_backend *be = NULL;
    if (sd_backend_create(vulkan ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU, &opt, &be)) {
        printf("FAIL backend: %s\n", sdvk_last_error());
        return 1;
    }
    printf("backend: %s\n", be->name);
    char path[1024];
    snprintf(path, sizeof path, "%s/taesd.safetensors", dir);
    sd_safetensors *st = NULL;
    if (sd_st_open(path, &st)) {
        printf("FAIL open: %s\n", sdvk_last_error());
        return 1;
    }
    sd_taesd_info info;
    if (sd_taesd_inspect(st, &info) || !info.has_decoder || !info.has_encoder || info.z_ch != 4 || info.factor != 8) {
        printf("FAIL inspect: %s (dec %d enc %d z %d factor %d)\n", sdvk_last_error(), info.has_decoder,
               info.has_encoder, info.z_ch, info.factor);
        failures++;
    }
    run_case(be, st, dir, 0, tol, "decode (diffusers layout)");
    run_case(be, st, dir, 1, tol, "encode (diffusers layout)");

    char dec[] = "/tmp/sdvk_taesd_dec_XXXXXX", enc[] = "/tmp/sdvk_taesd_enc_XXXXXX";
    int fd1 = mkstemp(dec), fd2 = mkstemp(enc);
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
    sd_safetensors *sd = NULL, *se = NULL;
    if (write_raw(st, dec, enc) || sd_st_open(dec, &sd) || sd_st_open(enc, &se)) {
        printf("FAIL raw layout files: %s\n", sdvk_last_error());
        failures++;
    } else {
        sd_taesd_info a, b;
        int ok = !sd_taesd_inspect(sd, &a) && a.has_decoder && !a.has_encoder && a.factor == 8 &&
                 !sd_taesd_inspect(se, &b) && b.has_encoder && !b.has_decoder;
        printf("%s madebyollin layout recognised (decoder / encoder files)\n", ok ? "ok  " : "FAIL");
        failures += !ok;
        run_case(be, sd, dir, 0, tol, "decode (madebyollin layout)");
        run_case(be, se, dir, 1, tol, "encode (madebyollin layout)");
    }
    sd_st_close(sd);
    sd_st_close(se);
    remove(dec);
    remove(enc);

    /* A file that is not TAESD: refused by name, and the builder fails
     * cleanly instead of building nonsense. */
    sd_taesd_info bad;
    sd_safetensors *other = NULL;
    const char *dummy = "/tmp/sdvk_not_taesd.safetensors";
    float v[4] = {0};
    sd_st_write_item item = {.name = "model.weight", .dtype = SD_F32, .ndim = 1, .ne = {4}, .data = v};
    if (sd_st_write(dummy, &item, 1, NULL, 0) || sd_st_open(dummy, &other)) {
        printf("FAIL: writing the dummy file: %s\n", sdvk_last_error());
        failures++;
    } else {
        sdvk_status s = sd_taesd_inspect(other, &bad);
        int ok = s == SDVK_ERR_MODEL && strstr(sdvk_last_error(), "not a TAESD model");
        sd_graph *g = sd_graph_new();
        int64_t ne[4] = {1, 4, 4, 4};
        int o = sd_taesd_decode_build(g, other, sd_graph_input(g, SD_F32, 4, ne, "z"));
        ok = ok && o < 0 && g->status == SDVK_ERR_MODEL && strstr(g->err, "no TAESD decoder");
        printf("%s not-TAESD file refused: %s\n", ok ? "ok  " : "FAIL", g->err);
        failures += !ok;
        sd_graph_free(g);
    }
    sd_st_close(other);
    remove(dummy);
    sd_st_close(st);
    sd_backend_destroy(be);
    printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
