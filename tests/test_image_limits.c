/* Untrusted images (issue 19): the decoders' limits and refusals, the
 * in-memory entry point, and the resampler (PIL goldens, every size).
 * Usage: test_image_limits FUZZ_DIR RESIZE_GOLDEN */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "core/status.h"
#include "io/image.h"

static int g_fail;
#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            g_fail++;                                                             \
        }                                                                         \
    } while (0)

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

static const char *g_dir;

static uint8_t *fuzz_file(const char *rel, size_t *n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    uint8_t *b = read_all(p, n);
    if (!b) {
        fprintf(stderr, "missing %s\n", p);
        g_fail++;
        exit(1);
    }
    return b;
}

static int has(const char *needle) { return strstr(sdvk_last_error(), needle) != NULL; }

/* Decodes a committed file from memory; returns the status. */
static sdvk_status load(const char *rel, const sd_image_limits *lim, sdvk_image *img) {
    size_t n;
    uint8_t *b = fuzz_file(rel, &n);
    sdvk_status s = sd_image_load_mem(b, n, lim, img);
    free(b);
    return s;
}

static void test_refusals(void) {
    sdvk_image img;
    sd_image_limits lim;
    sd_image_limits_default(&lim);
    lim.name = "init";
    /* 16-bit and odd formats: refused, not converted (the PGMs overflowed
     * stb_image 2.27's heap). */
    CHECK(load("crashes/image/issue19-pgm16-8x8.pgm", &lim, &img) == SDVK_ERR_UNSUPPORTED);
    CHECK(has("init: PNM") && img.data == NULL);
    CHECK(load("crashes/image/issue19-pgm16-4096x4096-header.pgm", &lim, &img) == SDVK_ERR_UNSUPPORTED);
    CHECK(load("crashes/image/issue19-png16-8x8.png", &lim, &img) == SDVK_ERR_UNSUPPORTED);
    CHECK(has("16-bit PNG"));
    CHECK(load("corpus/image/cmyk.jpg", &lim, &img) == SDVK_ERR_UNSUPPORTED && has("CMYK"));
    CHECK(load("corpus/image/gif.gif", &lim, &img) == SDVK_ERR_UNSUPPORTED && has("GIF"));
    /* The Huffman table stb overran: a clean error from libjpeg. */
    CHECK(load("crashes/image/issue19-jpeg-huffman-count-over-256.jpg", &lim, &img) ==
          SDVK_ERR_FORMAT);
    CHECK(has("Huffman"));
    /* Truncated files fail instead of coming out grey. */
    CHECK(load("crashes/image/issue19-jpeg-truncated.jpg", &lim, &img) == SDVK_ERR_FORMAT);
    CHECK(has("truncated") && has("Premature end"));
    CHECK(load("corpus/image/rgb_cut.png", &lim, &img) == SDVK_ERR_FORMAT && has("truncated"));
    CHECK(load("corpus/image/rgb24_cut.bmp", &lim, &img) == SDVK_ERR_FORMAT && has("truncated"));
    CHECK(load("crashes/image/issue19-bmp-height-int-min.bmp", &lim, &img) == SDVK_ERR_FORMAT);
    CHECK(has("limit of 16384 pixels per side"));
}

static void test_caps(void) {
    sdvk_image img;
    sd_image_limits lim;
    sd_image_limits_default(&lim);
    /* Headers claiming huge images: refused from the header, each message
     * names the limit, and fast (nothing is allocated or inflated). */
    clock_t t0 = clock();
    CHECK(load("crashes/image/issue19-png-100000x100000-header.png", NULL, &img) == SDVK_ERR_FORMAT);
    CHECK(has("100000x100000") && has("limit of 16384 pixels per side"));
    CHECK(load("crashes/image/issue19-png-16384x16384-header.png", NULL, &img) == SDVK_ERR_FORMAT);
    CHECK(has("limit of 67108864 pixels"));
    CHECK(load("crashes/image/issue19-jpeg-65500x65500-header.jpg", NULL, &img) == SDVK_ERR_FORMAT);
    CHECK(has("limit of 16384 pixels per side"));
    CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 0.5);
    /* A valid progressive JPEG of 190 scans: stopped at the scan limit. */
    CHECK(load("crashes/image/limit-jpeg-190-scans.jpg", NULL, &img) == SDVK_ERR_FORMAT);
    CHECK(has("more than 100 scans"));

    /* The caller's caps: pixels, side, bytes, formats. */
    lim.max_pixels = 100;
    CHECK(load("corpus/image/rgb.png", &lim, &img) == SDVK_ERR_FORMAT); /* 13x9 = 117 px */
    CHECK(has("13x9") && has("limit of 100 pixels"));
    lim.max_pixels = 117;
    CHECK(load("corpus/image/rgb.png", &lim, &img) == SDVK_OK && img.width == 13 && img.height == 9);
    sdvk_image_free(&img);
    sd_image_limits_default(&lim);
    lim.max_side = 12;
    CHECK(load("corpus/image/rgb.jpg", &lim, &img) == SDVK_ERR_FORMAT);
    CHECK(has("limit of 12 pixels per side"));
    CHECK(load("corpus/image/rgb24.bmp", &lim, &img) == SDVK_ERR_FORMAT);
    sd_image_limits_default(&lim);
    lim.max_bytes = 100;
    CHECK(load("corpus/image/rgb.png", &lim, &img) == SDVK_ERR_FORMAT && has("limit of 100 bytes"));
    sd_image_limits_default(&lim);
    lim.formats = SD_IMAGE_PNG;
    CHECK(load("corpus/image/rgb.jpg", &lim, &img) == SDVK_ERR_UNSUPPORTED);
    CHECK(has("JPEG images are not accepted here (PNG)"));
    CHECK(load("corpus/image/rgb.png", &lim, &img) == SDVK_OK);
    sdvk_image_free(&img);

    /* Degenerate calls. */
    CHECK(sd_image_load_mem("", 0, NULL, &img) == SDVK_ERR_FORMAT && has("empty"));
    CHECK(sd_image_load_mem("\x89PNG\r\n\x1a\n", 8, NULL, &img) == SDVK_ERR_FORMAT);
    CHECK(sd_image_load_mem(NULL, 5, NULL, &img) == SDVK_ERR_INVALID_ARG);
    CHECK(sd_image_load_mem("x", 1, NULL, NULL) == SDVK_ERR_INVALID_ARG);
}

/* Every accepted variant decodes to the same pixels as PIL's convert("RGB")
 * up to JPEG loss; here: sizes, and the grey/palette/1-bit PNG and BMP
 * variants agree with the RGB original where they are lossless. */
static void test_variants(void) {
    static const char *ok[] = {"rgb.png", "rgba.png", "grey.png", "grey_alpha.png", "bw_1bit.png",
                               "palette_trns.png", "palette_4bit.png", "text_chunks.png",
                               "rgb.jpg", "rgb444.jpg", "grey.jpg", "restart.jpg", "rgb24.bmp",
                               "grey8.bmp", "bw1.bmp", "palette4.bmp", "rgba32.bmp"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "corpus/image/%s", ok[i]);
        sdvk_image img;
        sdvk_status s = load(rel, NULL, &img);
        if (s != SDVK_OK)
            fprintf(stderr, "%s: %s\n", ok[i], sdvk_last_error());
        CHECK(s == SDVK_OK && img.width == 13 && img.height == 9 && img.channels == 3);
        sdvk_image_free(&img);
    }
    sdvk_image a, b;
    CHECK(load("corpus/image/rgb.png", NULL, &a) == SDVK_OK);
    CHECK(load("corpus/image/rgb24.bmp", NULL, &b) == SDVK_OK);
    CHECK(a.data && b.data && !memcmp(a.data, b.data, 13 * 9 * 3));
    sdvk_image_free(&b);
    CHECK(load("corpus/image/rgba.png", NULL, &b) == SDVK_OK); /* alpha dropped */
    CHECK(a.data && b.data && !memcmp(a.data, b.data, 13 * 9 * 3));
    sdvk_image_free(&b);
    sdvk_image_free(&a);
    CHECK(load("corpus/image/interlaced.png", NULL, &a) == SDVK_OK && a.width == 11 && a.height == 7);
    sdvk_image_free(&a);
    CHECK(load("corpus/image/topdown.bmp", NULL, &a) == SDVK_OK && a.width == 5 && a.height == 3);
    sdvk_image_free(&a);
}

/* ---- resampler ---- */

static void pattern(uint8_t *px, int w, int h) {
    for (uint32_t y = 0; y < (uint32_t)h; y++)
        for (uint32_t x = 0; x < (uint32_t)w; x++)
            for (uint32_t c = 0; c < 3; c++) {
                uint32_t hsh = ((x * 2654435761u) ^ (y * 40503u) ^ (c * 97u)) >> 7;
                uint32_t v = x * 29 + y * 53 + c * 101 + ((x * y) % 7) * 17 + (hsh & 63);
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)(v & 255);
            }
}

static const int cases[][4] = {{77, 77, 64, 64}, {64, 64, 77, 77}, {100, 60, 13, 7}, {1, 1, 5, 3},
                               {3, 5, 1, 1},     {333, 17, 100, 3}, {20, 30, 50, 9}, {16, 16, 16, 40},
                               {517, 3, 64, 3},  {7, 300, 7, 64},   {640, 480, 64, 48}};

static void test_pil(const char *golden) {
    size_t n, off = 0;
    uint8_t *g = read_all(golden, &n);
    CHECK(g != NULL);
    if (!g)
        return;
    int worst = 0;
    size_t differ = 0, total = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int *c = cases[k];
        sdvk_image in = {c[0], c[1], 3, malloc((size_t)c[0] * c[1] * 3)}, out;
        pattern(in.data, c[0], c[1]);
        size_t on = (size_t)c[2] * c[3] * 3;
        CHECK(off + on <= n);
        if (off + on > n)
            break;
        CHECK(sd_image_resize(&in, c[2], c[3], &out) == SDVK_OK);
        for (size_t i = 0; out.data && i < on; i++) {
            int d = abs((int)out.data[i] - (int)g[off + i]);
            worst = d > worst ? d : worst;
            differ += d != 0;
        }
        total += on;
        off += on;
        sdvk_image_free(&out);
        free(in.data);
    }
    CHECK(off == n);
    /* Same arithmetic as PIL: bit-identical here (glibc's sin); a libm that
     * rounds a weight differently may move a value by 1. */
    printf("resize vs PIL LANCZOS: %zu of %zu values differ, max |diff| %d\n", differ, total, worst);
    CHECK(worst <= 1 && differ * 1000 <= total);
    free(g);
}

/* Any size 1..N in and out (the widths that made stb_image_resize assert
 * included): no failure, and a constant image stays that constant. */
static void test_all_sizes(void) {
    uint8_t *buf = malloc(300 * 3);
    memset(buf, 201, 300 * 3);
    for (int w = 1; w <= 300; w++) {
        sdvk_image in = {w, 1, 3, buf}, out;
        static const int outs[] = {1, 2, 3, 7, 64, 77, 299, 300, 301, 1000};
        for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
            if (sd_image_resize(&in, outs[k], 1, &out) != SDVK_OK) {
                CHECK(0);
                continue;
            }
            for (int i = 0; i < outs[k] * 3; i++)
                if (out.data[i] != 201) {
                    fprintf(stderr, "%d -> %d: value %d\n", w, outs[k], out.data[i]);
                    g_fail++;
                    break;
                }
            sdvk_image_free(&out);
        }
    }
    /* Extremes: 16384 -> 1 and 1 -> 16384 on both axes, and 1 channel. */
    uint8_t *row = calloc(16384, 3);
    sdvk_image wide = {16384, 1, 3, row}, tall = {1, 16384, 3, row}, o;
    CHECK(sd_image_resize(&wide, 1, 1, &o) == SDVK_OK && o.data[0] == 0);
    sdvk_image_free(&o);
    CHECK(sd_image_resize(&tall, 16384, 1, &o) == SDVK_OK && o.width == 16384);
    sdvk_image_free(&o);
    sdvk_image one = {1, 1, 1, row};
    CHECK(sd_image_resize(&one, 1, 16384, &o) == SDVK_OK && o.channels == 1);
    sdvk_image_free(&o);
    sdvk_image bad = {16385, 1, 3, row};
    CHECK(sd_image_resize(&bad, 1, 1, &o) == SDVK_ERR_INVALID_ARG);
    bad = (sdvk_image){4, 4, 2, row};
    CHECK(sd_image_resize(&bad, 1, 1, &o) == SDVK_ERR_INVALID_ARG);
    free(row);
    free(buf);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_image_limits FUZZ_DIR RESIZE_GOLDEN\n");
        return 2;
    }
    g_dir = argv[1];
    test_refusals();
    test_caps();
    test_variants();
    test_pil(argv[2]);
    test_all_sizes();
    if (g_fail) {
        fprintf(stderr, "test_image_limits: %d check(s) failed\n", g_fail);
        return 1;
    }
    printf("test_image_limits: ok\n");
    return 0;
}
