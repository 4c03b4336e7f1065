/* Resource limits where input decides an allocation (issue 19): the
 * safetensors header's parsed size, architecture numbers, .npy shapes,
 * prompt length. Usage: test_input_limits FUZZ_DIR TINY_MODEL [VOCAB] */
#include <jansson.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/npy.h"
#include "core/status.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static int g_fail;
#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            g_fail++;                                                             \
        }                                                                         \
    } while (0)

static int has(const char *needle) { return strstr(sdvk_last_error(), needle) != NULL; }

/* CPU seconds of this process: time limits hold on a loaded machine too. */
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

/* jansson's allocations, counted (installed before any JSON is parsed). */
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

/* A safetensors image whose header is `body` (no tensors' data). */
static uint8_t *st_image(const char *body, size_t bl, size_t *n) {
    uint8_t *b = malloc(8 + bl);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)bl >> (8 * i));
    memcpy(b + 8, body, bl);
    *n = 8 + bl;
    return b;
}

/* body = prefix + unit * k + suffix (the unit's trailing comma dropped once). */
static char *repeat(const char *prefix, const char *unit, size_t k, const char *suffix, size_t *len) {
    size_t pl = strlen(prefix), ul = strlen(unit), sl = strlen(suffix);
    char *b = malloc(pl + ul * k + sl + 1);
    memcpy(b, prefix, pl);
    for (size_t i = 0; i < k; i++) memcpy(b + pl + i * ul, unit, ul);
    size_t o = pl + ul * k;
    if (k && b[o - 1] == ',')
        o--;
    memcpy(b + o, suffix, sl + 1);
    *len = o + sl;
    return b;
}

static void test_header_cost(const char *tiny) {
    /* The estimate bounds jansson's real peak for the worst shapes of JSON
     * and for a real model header. */
    static const char *units[] = {"0,", "1.5e3,", "\"\",", "\"abcdefghijklmnop\",", "[],",
                                  "{},", "[0],", "{\"a\":0},", "true,"};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t bl;
        char *body = repeat("{\"__metadata__\":{},\"x\":[", units[u], 20000, "]}", &bl);
        g_peak = g_cur = 0;
        json_error_t e;
        json_t *r = json_loadb(body, bl, JSON_REJECT_DUPLICATES, &e);
        CHECK(r != NULL);
        json_decref(r);
        uint64_t est = sd_st_json_cost(body, bl);
        if (est < g_peak)
            fprintf(stderr, "unit %s: estimate %llu < peak %zu\n", units[u], (unsigned long long)est,
                    g_peak);
        CHECK(est >= g_peak);
        free(body);
    }
    /* One long token: the lexer's buffer and the copy (a 2 MB key peaks at
     * ~3x its length). */
    static const char *longs[][2] = {{"{\"__metadata__\":{\"a\":\"", "\"}}"},
                                     {"{\"__metadata__\":{\"", "\":\"v\"}}"},
                                     {"[", "]"}};
    for (size_t u = 0; u < 3; u++) {
        size_t bl;
        char *body = repeat(longs[u][0], u == 2 ? "1" : "x", 2000000, longs[u][1], &bl);
        g_peak = g_cur = 0;
        json_error_t e;
        json_decref(json_loadb(body, bl, 0, &e)); /* the number is too big: fails, peaks anyway */
        uint64_t est = sd_st_json_cost(body, bl);
        if (est < g_peak)
            fprintf(stderr, "long token %zu: estimate %llu < peak %zu\n", u, (unsigned long long)est,
                    g_peak);
        CHECK(est >= g_peak);
        free(body);
    }
    size_t n;
    uint8_t *m = read_all(tiny, &n);
    CHECK(m != NULL);
    if (m) {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | m[i];
        g_peak = g_cur = 0;
        sd_safetensors *st;
        CHECK(sd_st_open_mem(m, n, "tiny", &st) == SDVK_OK);
        sd_st_close(st);
        uint64_t est = sd_st_json_cost((const char *)m + 8, (size_t)hl);
        printf("tiny model header: %llu bytes, parse peak %zu bytes (%.1fx), estimate %llu\n",
               (unsigned long long)hl, g_peak, (double)g_peak / (double)hl, (unsigned long long)est);
        CHECK(est >= g_peak && est < SD_ST_MAX_HEADER_MEM / 100);
        free(m);
    }

    /* 1.3 million empty objects in 4 MB: ~430 MB estimated, refused before
     * parsing, fast, and the message names the limit. */
    size_t bl;
    char *body = repeat("{\"x\":[", "{},", 1300000, "]}", &bl);
    uint8_t *img = st_image(body, bl, &n);
    free(body);
    g_peak = g_cur = 0;
    double t0 = now();
    sd_safetensors *st = NULL;
    CHECK(sd_st_open_mem(img, n, "bomb.safetensors", &st) == SDVK_ERR_FORMAT && st == NULL);
    CHECK(has("bomb.safetensors") && has("limit of 256 MB"));
    CHECK(g_peak == 0); /* nothing was parsed */
    CHECK(now() - t0 < 1.0);
    free(img);
}

static void test_models(const char *dir) {
    /* Each zero-dimension / huge-extent regression: a clear error that
     * names the tensor and the range, never a crash (they were SIGFPE). */
    static const char *files[][2] = {
        {"issue19-unet-zero-channels", "UNet model channels is 0"},
        {"issue19-unet-huge-dims", "UNet model channels is 4294967296"},
        {"issue19-unet-time-embed-zero", "time embedding width is 0"},
        {"issue19-vae-encoder-zero-channels", "VAE channels is 0"},
        {"issue19-vae-encoder-intmin-by-minus1", "VAE channels is 4294967295"},
        {"issue19-vae-decoder-zero-channels", "VAE channels is 0"},
        {"issue19-clip-zero-width", "CLIP width is 0"},
        {"issue19-clip-zero-vocab-positions", "CLIP vocabulary size is 0"},
        {"issue19-shape-2e40x2e40", "more than 2^63 elements"},
        {"issue19-shape-2e31x2e31-f32", "more than 2^63 bytes"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/crashes/safetensors/%s.safetensors", dir, files[i][0]);
        sd_model *m = NULL;
        sdvk_status s = sd_model_open(p, &m);
        CHECK(s != SDVK_OK && m == NULL);
        if (!has(files[i][1]) || !has(p) || (!has("limit") && !has("2^63"))) {
            fprintf(stderr, "%s: unexpected message: %s\n", files[i][0], sdvk_last_error());
            g_fail++;
        }
    }
}

static void test_npy(const char *dir) {
    /* A zero extent no longer hides huge ones; a shape whose data is
     * missing is "truncated" before any allocation. */
    static const char *files[][2] = {{"limit-zero-then-huge", "1073741824 elements (the limit"},
                                     {"limit-huge-then-zero", "the limit is 1073741824 elements"},
                                     {"limit-over-limit", "truncated"}};
    for (size_t i = 0; i < 3; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/crashes/npy/%s.npy", dir, files[i][0]);
        sd_npy a;
        CHECK(sd_npy_load(p, &a) == SDVK_ERR_FORMAT && a.data == NULL);
        if (!has(files[i][1])) {
            fprintf(stderr, "%s: unexpected message: %s\n", files[i][0], sdvk_last_error());
            g_fail++;
        }
        size_t n;
        uint8_t *b = read_all(p, &n);
        CHECK(b && sd_npy_load_mem(b, n, "mem.npy", &a) == SDVK_ERR_FORMAT && has("mem.npy"));
        free(b);
    }
    /* In memory and from the file: the same array. */
    char p[1024];
    snprintf(p, sizeof p, "%s/corpus/npy/f32_1x4x2x2.npy", dir);
    size_t n;
    uint8_t *b = read_all(p, &n);
    sd_npy a, c;
    CHECK(b && sd_npy_load_mem(b, n, "x", &a) == SDVK_OK && sd_npy_load(p, &c) == SDVK_OK);
    CHECK(a.ndim == 4 && a.ne[1] == 4 && !memcmp(a.data, c.data, 16 * 4));
    sd_npy_free(&a);
    sd_npy_free(&c);
    CHECK(sd_npy_load_mem(b, 5, "short", &a) == SDVK_ERR_FORMAT);
    free(b);
}

static void test_prompt(const char *vocab) {
    sd_tokenizer *tok;
    if (sd_tokenizer_load(vocab, &tok) != SDVK_OK) {
        fprintf(stderr, "%s\n", sdvk_last_error());
        g_fail++;
        return;
    }
    /* 100 kB of '(': refused (SD_PROMPT_MAX_BYTES) in well under a second.
     * At the limit, 64 kB of "(a" (32768 unclosed brackets over 32768 spans)
     * is the parser's quadratic worst case, as in A1111: 0.2 s in Release,
     * 1.2 s under ASan on an idle machine (6.5 s on a loaded one): printed,
     * not asserted. */
    for (int k = 0; k < 2; k++) {
        size_t len = k ? SD_PROMPT_MAX_BYTES : 100000;
        char *s = malloc(len + 1);
        for (size_t i = 0; i < len; i++) s[i] = k && (i & 1) ? 'a' : '(';
        s[len] = 0;
        int32_t *ids;
        float *w;
        int nc, ch;
        double t0 = now();
        sdvk_status st = sd_tokenize_prompt(tok, s, 1, &ids, &w, &nc, &ch);
        double dt = now() - t0;
        printf("prompt of %zu bytes: %.3f s, %s\n", len, dt, st ? sdvk_last_error() : "ok");
        if (k == 0)
            CHECK(dt < 1.0);
        if (k == 0)
            CHECK(st == SDVK_ERR_INVALID_ARG && has("the limit for weighted prompts is 65536 bytes"));
        if (st == SDVK_OK) {
            free(ids);
            free(w);
        }
        free(s);
    }
    sd_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_input_limits FUZZ_DIR TINY_MODEL [VOCAB]\n");
        return 2;
    }
    json_set_alloc_funcs(count_malloc, count_free);
    test_header_cost(argv[2]);
    test_models(argv[1]);
    test_npy(argv[1]);
    if (argc > 3)
        test_prompt(argv[3]);
    if (g_fail) {
        fprintf(stderr, "test_input_limits: %d check(s) failed\n", g_fail);
        return 1;
    }
    printf("test_input_limits: ok\n");
    return 0;
}
