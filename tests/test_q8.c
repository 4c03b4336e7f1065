/* 8-bit weights (src/core/q8.h): the quantiser, the stored .safetensors
 * form (I8 + NAME.q8_scale, metadata sdvk.q8) and its checks, and the
 * engine: the tiny model made 8-bit at load (options.weights = q8) and the
 * same model converted to a q8 file compute bit-identical stages, close to
 * the PyTorch goldens, in about half the resident weight memory.
 *   test_q8 DATA_DIR (tests/data/tiny)        CPU ISA from SDVK_CPU_ISA */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/npy.h"
#include "core/q8.h"
#include "core/status.h"
#include "io/safetensors.h"
#include "stage.h"

static int failures, checks;

#define CHECK(cond, ...)                     \
    do {                                     \
        checks++;                            \
        if (!(cond)) {                       \
            printf("FAIL " __VA_ARGS__);     \
            printf("\n");                    \
            failures++;                      \
        }                                    \
    } while (0)

static void test_quantiser(void) {
    float x[32];
    int8_t q[32];
    uint16_t d;
    /* max |x| maps to +-127, the scale is fp16(max / 127) */
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) * 0.25f;
    sd_q8_quantize_block(x, 1, q, &d);
    CHECK(q[0] == -127, "block: min value gives %d, not -127", q[0]);
    CHECK(d == sd_f32_to_f16(4.0f / 127.0f), "block: scale %04x", d);
    float dr = sd_f16_to_f32(d);
    int worst = 0;
    for (int i = 0; i < 32; i++) {
        float e = fabsf(dr * q[i] - x[i]);
        worst |= e > 0.5f * dr * 1.0001f;
    }
    CHECK(!worst, "block: an element is off by more than half a step");
    /* zeros: scale 0, all q 0 */
    memset(x, 0, sizeof x);
    sd_q8_quantize_block(x, 1, q, &d);
    int nz = 0;
    for (int i = 0; i < 32; i++) nz |= q[i];
    CHECK(d == 0 && !nz, "zero block: scale %04x", d);
    /* dequantised values quantise to themselves (convert twice = once) */
    for (int i = 0; i < 32; i++) x[i] = sinf((float)i * 1.7f) * 3.0f;
    int8_t q2[32];
    uint16_t d2;
    sd_q8_quantize_block(x, 1, q, &d);
    float y[32];
    for (int i = 0; i < 32; i++) y[i] = sd_f16_to_f32(d) * (float)q[i];
    sd_q8_quantize_block(y, 1, q2, &d2);
    CHECK(d2 == d && !memcmp(q, q2, sizeof q), "requantising dequantised values changes them");
    /* conv layout: blocks along dim 1 (input channels) per kernel tap */
    int64_t ne[4] = {2, 64, 3, 3};
    int64_t n = 2 * 64 * 9;
    float *w = malloc((size_t)n * 4), *back = malloc((size_t)n * 4);
    int8_t *qw = malloc((size_t)n);
    uint16_t sc[2 * 2 * 9];
    for (int64_t i = 0; i < n; i++) w[i] = cosf((float)i * 0.37f) * (1.0f + (float)(i % 9));
    CHECK(sd_q8_quantize_tensor(w, SD_F32, 4, ne, qw, sc, "w") == SDVK_OK, "quantise conv: %s", sdvk_last_error());
    /* scale (o=1, c-block 1, y=2, x=0): max over c in [32, 64) of w[1][c][2][0] */
    float amax = 0;
    for (int c = 32; c < 64; c++) amax = fmaxf(amax, fabsf(w[((1 * 64 + c) * 3 + 2) * 3 + 0]));
    CHECK(sc[((1 * 2 + 1) * 3 + 2) * 3 + 0] == sd_f32_to_f16(amax / 127.0f), "conv scale index");
    sd_q8_dequantize(qw, sc, 4, ne, back);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += (back[i] - w[i]) * (back[i] - w[i]);
        den += w[i] * w[i];
    }
    printf("q8 round trip of a conv weight: rel L2 %.3g\n", sqrt(num / den));
    CHECK(sqrt(num / den) < 6e-3, "conv round trip error %.3g", sqrt(num / den));
    int64_t bad[4] = {8, 36, 1, 1};
    CHECK(sd_q8_quantize_tensor(w, SD_F32, 4, bad, qw, sc, "odd") != SDVK_OK && strstr(sdvk_last_error(), "odd"),
          "ineligible shape accepted");
    CHECK(sd_q8_wanted("model.diffusion_model.out.2.weight", 4, ne) &&
              !sd_q8_wanted("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", 2, ne) &&
              !sd_q8_wanted("model.diffusion_model.out.2.bias", 4, ne),
          "sd_q8_wanted");
    free(w), free(back), free(qw);
}

/* Copies `src` to `dst` with every wanted tensor 8-bit, as `sdvk convert
 * --type q8` does. Returns 0 on success. */
static int write_q8_model(const char *src, const char *dst) {
    sd_safetensors *st;
    if (sd_st_open(src, &st))
        return -1;
    sd_st_write_item *it = calloc((size_t)st->n, sizeof *it);
    void **own = calloc((size_t)st->n * 2 + 1, sizeof *own);
    int n = 0, no = 0, rc = 0;
    for (int i = 0; i < st->n && !rc; i++) {
        const sd_st_tensor *t = &st->t[i];
        if (!t->supported)
            continue;
        sd_st_write_item *w = &it[n++];
        w->name = t->name;
        w->dtype = t->dtype;
        w->ndim = t->ndim;
        memcpy(w->ne, t->ne, sizeof w->ne);
        w->data = t->data;
        if (!sd_q8_wanted(t->name, t->ndim, t->ne))
            continue;
        int64_t ne = 1;
        for (int d = 0; d < t->ndim; d++) ne *= t->ne[d];
        int8_t *q = own[no++] = malloc((size_t)ne);
        uint16_t *sc = own[no++] = malloc((size_t)sd_q8_nscales(t->ndim, t->ne) * 2);
        rc = sd_q8_quantize_tensor(t->data, t->dtype, t->ndim, t->ne, q, sc, t->name) ? -1 : 0;
        w->dtype = SD_Q8;
        w->data = q;
        w->scale = sc;
    }
    const char *meta[2] = {"sdvk.clip.num_heads", sd_st_meta(st, "sdvk.clip.num_heads")};
    if (!rc && sd_st_write(dst, it, n, meta, meta[1] ? 1 : 0))
        rc = -1;
    for (int i = 0; i < no; i++) free(own[i]);
    free(own);
    free(it);
    sd_st_close(st);
    return rc;
}

/* A one-tensor safetensors image in memory: "w" I8 [2, 32] and, when
 * scale_shape is not NULL, "w.q8_scale" F16 of that JSON shape; meta is the
 * JSON metadata object (or NULL). */
static size_t raw_file(unsigned char *buf, const char *scale_shape, int scale_elems, const char *meta) {
    char hdr[512];
    int o = snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"I8\",\"shape\":[2,32],\"data_offsets\":[0,64]}");
    if (scale_shape)
        o += snprintf(hdr + o, sizeof hdr - (size_t)o,
                      ",\"w.q8_scale\":{\"dtype\":\"F16\",\"shape\":%s,\"data_offsets\":[64,%d]}", scale_shape,
                      64 + 2 * scale_elems);
    if (meta)
        o += snprintf(hdr + o, sizeof hdr - (size_t)o, ",\"__metadata__\":%s", meta);
    o += snprintf(hdr + o, sizeof hdr - (size_t)o, "}");
    while (o % 8) hdr[o++] = ' ';
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)o >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)o);
    unsigned char *d = buf + 8 + o;
    for (int i = 0; i < 64; i++) d[i] = (unsigned char)(i * 3);
    for (int i = 0; i < scale_elems; i++) {
        uint16_t h = sd_f32_to_f16(0.01f * (float)(i + 1));
        memcpy(d + 64 + 2 * i, &h, 2);
    }
    return 8 + (size_t)o + 64 + 2 * (size_t)(scale_shape ? scale_elems : 0);
}

static void test_file_checks(void) {
    unsigned char buf[1024];
    sd_safetensors *st = NULL;
    struct {
        const char *what, *shape, *meta, *err;
        int elems;
    } bad[] = {
        {"no scales tensor", NULL, "{\"sdvk.q8\":\"1\"}", "no scales tensor", 0},
        {"wrong scale shape", "[1,2]", "{\"sdvk.q8\":\"1\"}", "w.q8_scale", 2},
        {"unknown version", "[2,1]", "{\"sdvk.q8\":\"7\"}", "format version", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = raw_file(buf, bad[i].shape, bad[i].elems, bad[i].meta);
        sdvk_status s = sd_st_open_mem(buf, n, "mem.safetensors", &st);
        CHECK(s == SDVK_ERR_FORMAT && strstr(sdvk_last_error(), bad[i].err), "%s: status %d, message: %s",
              bad[i].what, (int)s, sdvk_last_error());
        if (!s)
            sd_st_close(st);
        else
            printf("ok   %s refused: %s\n", bad[i].what, sdvk_last_error());
    }
    /* good: one SD_Q8 entry with its scales; without the metadata the I8
     * tensor is just an unsupported dtype */
    size_t n = raw_file(buf, "[2,1]", 2, "{\"sdvk.q8\":\"1\"}");
    sdvk_status s = sd_st_open_mem(buf, n, "good", &st);
    CHECK(s == SDVK_OK, "good q8 file: %s", sdvk_last_error());
    if (!s) {
        const sd_st_tensor *t = sd_st_find(st, "w");
        CHECK(t && t->supported && t->dtype == SD_Q8 && t->scale, "w is not bound as q8");
        float v[64];
        if (t && t->scale) {
            sd_q8_dequantize(t->data, t->scale, 2, t->ne, v);
            CHECK(fabsf(v[33] - sd_f16_to_f32(sd_f32_to_f16(0.02f)) * (float)(int8_t)99) < 1e-6f,
                  "dequantised value %g", v[33]);
        }
        sd_st_close(st);
    }
    n = raw_file(buf, "[2,1]", 2, NULL);
    s = sd_st_open_mem(buf, n, "plain", &st);
    CHECK(s == SDVK_OK, "I8 without metadata: %s", sdvk_last_error());
    if (!s) {
        const sd_st_tensor *t = sd_st_find(st, "w");
        CHECK(t && !t->supported, "I8 without q8 metadata must stay unsupported");
        sd_st_close(st);
    }
}

static double rel_l2(const float *x, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

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

/* Runs CLIP, UNet (t 981), VAE decode on ctx; outputs malloc'd. */
static int run_stages(sdvk_ctx *ctx, const char *dir, float *out[3], int64_t n[3]) {
    int64_t ne[5];
    sd_npy tok = load(dir, "clip_tokens.npy"), l = load(dir, "unet_latent_b2.npy"),
           c = load(dir, "unet_context_b2.npy"), z = load(dir, "vae_decode_in.npy");
    sdvk_status s = sd_stage_clip(ctx, tok.data, (int)tok.ne[0], (int)tok.ne[1], &out[0], ne);
    n[0] = s ? 0 : ne[0] * ne[1] * ne[2];
    if (!s)
        s = sd_stage_unet(ctx, l.data, l.ne, 981, c.data, c.ne, &out[1], ne);
    n[1] = s ? 0 : ne[0] * ne[1] * ne[2] * ne[3];
    if (!s)
        s = sd_stage_vae_decode(ctx, z.data, z.ne, &out[2], ne);
    n[2] = s ? 0 : ne[0] * ne[1] * ne[2] * ne[3];
    sd_npy_free(&tok), sd_npy_free(&l), sd_npy_free(&c), sd_npy_free(&z);
    if (s)
        printf("FAIL stages: %s\n", sdvk_last_error());
    return s ? -1 : 0;
}

static void test_engine(const char *dir) {
    char model[1024], q8[] = "/tmp/sdvk_q8_XXXXXX";
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    int fd = mkstemp(q8);
    if (fd >= 0)
        close(fd);
    CHECK(write_q8_model(model, q8) == 0, "writing the q8 model: %s", sdvk_last_error());
    sdvk_options opt;
    sdvk_options_default(&opt);
    sdvk_options_from_env(&opt); /* SDVK_CPU_ISA */
    opt.backend = SDVK_BACKEND_CPU;
    opt.n_threads = 2;
    float *out[3][3] = {{0}};
    int64_t n[3][3] = {{0}};
    size_t bytes[3] = {0};
    int ref = 0; /* the reference kernels keep f32 panels: no memory check */
    const char *what[3] = {"f16 as stored", "q8 made at load", "q8 file"};
    for (int v = 0; v < 3; v++) {
        opt.weights = v == 1 ? SDVK_WEIGHTS_Q8 : SDVK_WEIGHTS_AUTO;
        sdvk_ctx *ctx = NULL;
        if (sdvk_create(v == 2 ? q8 : model, &opt, &ctx)) {
            CHECK(0, "%s: %s", what[v], sdvk_last_error());
            continue;
        }
        if (run_stages(ctx, dir, out[v], n[v]) == 0) {
            sdvk_stats st;
            sdvk_stats_get(ctx, &st);
            bytes[v] = st.weight_bytes;
            ref |= strstr(sdvk_backend_name(ctx), "(ref") != NULL;
            printf("%-16s backend %s, resident weights %.2f MB\n", what[v], sdvk_backend_name(ctx),
                   st.weight_bytes / 1e6);
        }
        sdvk_destroy(ctx);
    }
    const char *stage[3] = {"clip", "unet t981", "vae decode"};
    const char *gold[3] = {"clip_out.npy", "unet_b2_t981.npy", "vae_decode_out.npy"};
    /* q8 vs the PyTorch goldens of the f16 model: the quantisation error
     * itself. Measured with f32 activations (ref, scalar, NEON) 4.2e-3,
     * 2.1e-2, 1.3e-2; with the x86 integer kernels, which quantise the
     * activations too, 5.6e-3, 3.7e-2, 2.0e-2 (this tiny random model's
     * blocks span only 32-64 channels; the full-size UNet shows 1.5e-2 and
     * 2.0e-2) */
    const double tol[3] = {2e-2, 6e-2, 4e-2};
    for (int k = 0; k < 3; k++) {
        if (!out[1][k] || !out[2][k])
            continue;
        CHECK(n[1][k] == n[2][k] && !memcmp(out[1][k], out[2][k], (size_t)n[1][k] * 4),
              "%s: q8 at load and the q8 file differ", stage[k]);
        sd_npy g = load(dir, gold[k]);
        double e16 = out[0][k] ? rel_l2(out[0][k], g.data, n[0][k]) : -1, e8 = rel_l2(out[1][k], g.data, n[1][k]);
        printf("%-10s vs PyTorch goldens: f16 %.3g, q8 %.3g (tolerance %.0e)\n", stage[k], e16, e8, tol[k]);
        CHECK(e8 <= tol[k], "%s: q8 error %.3g above %.0e", stage[k], e8, tol[k]);
        sd_npy_free(&g);
    }
    /* Int8 panels + fp16 scales: ~1.06 bytes per weight vs f16's 2 (the
     * tiny model keeps many narrow f16 weights, so demand only < 0.8x). */
    CHECK(ref || (bytes[1] && bytes[1] < 0.8 * bytes[0]), "q8 resident %zu bytes vs f16 %zu", bytes[1], bytes[0]);
    CHECK(bytes[2] == bytes[1], "q8 file resident %zu bytes vs q8 at load %zu", bytes[2], bytes[1]);
    for (int v = 0; v < 3; v++)
        for (int k = 0; k < 3; k++) free(out[v][k]);
    remove(q8);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_q8 DATA_DIR\n");
        return 2;
    }
    test_quantiser();
    test_file_checks();
    test_engine(argv[1]);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
