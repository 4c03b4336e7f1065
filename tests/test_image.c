/* Images: PNG write with a "parameters" text chunk (checked by walking the
 * PNG chunks and their CRCs here), load back, resize, unreadable images,
 * and sd_check_writable. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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

static char g_dir[64];

static const char *tpath(const char *name) {
    static char buf[8][256];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 256, "%s/%s", g_dir, name);
    return p;
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the PNG: every chunk's CRC must be right, IHDR first, IEND last.
 * Returns the chunk that directly follows IHDR (type and data copied out). */
static int png_chunk_after_ihdr(const char *path, char type[5], uint8_t **data, size_t *len) {
    size_t n;
    uint8_t *b = read_file(path, &n);
    int ok = b && n > 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8);
    size_t off = 8;
    int idx = 0, saw_iend = 0;
    *data = NULL;
    type[0] = 0;
    while (ok && off + 12 <= n) {
        uint32_t cl = be32(b + off);
        if (cl > n - off - 12) {
            ok = 0;
            break;
        }
        uint32_t crc = (uint32_t)crc32(0L, b + off + 4, 4 + cl);
        if (crc != be32(b + off + 8 + cl)) {
            fprintf(stderr, "bad CRC in chunk %d of %s\n", idx, path);
            ok = 0;
        }
        if (idx == 0 && memcmp(b + off + 4, "IHDR", 4))
            ok = 0;
        if (idx == 1) {
            memcpy(type, b + off + 4, 4);
            type[4] = 0;
            *data = malloc(cl + 1);
            memcpy(*data, b + off + 8, cl);
            *len = cl;
        }
        saw_iend = !memcmp(b + off + 4, "IEND", 4);
        off += 12 + cl;
        idx++;
    }
    ok = ok && saw_iend && off == n;
    free(b);
    return ok;
}

static sdvk_image make_image(int w, int h) {
    sdvk_image img = {w, h, 3, malloc((size_t)w * h * 3)};
    for (int i = 0; i < w * h * 3; i++) img.data[i] = (uint8_t)(i * 37 + (i / 3) * 11);
    return img;
}

/* Writes img with `params`, reads it back (pixels equal) and returns the
 * chunk after IHDR. */
static void write_check(const char *name, const char *params, const char *want_type,
                        const void *want_data, size_t want_len) {
    sdvk_image img = make_image(7, 5), back = {0};
    const char *p = tpath(name);
    CHECK(sd_png_write(p, &img, params) == SDVK_OK);
    CHECK(sd_image_load(p, &back) == SDVK_OK);
    CHECK(back.width == 7 && back.height == 5 && back.channels == 3);
    CHECK(back.data && !memcmp(back.data, img.data, 7 * 5 * 3));
    char type[5];
    uint8_t *d = NULL;
    size_t len = 0;
    CHECK(png_chunk_after_ihdr(p, type, &d, &len));
    if (want_type) {
        CHECK(!strcmp(type, want_type));
        CHECK(d && len == want_len && !memcmp(d, want_data, want_len));
    } else {
        CHECK(strcmp(type, "tEXt") && strcmp(type, "iTXt"));
    }
    free(d);
    sdvk_image_free(&back);
    CHECK(back.data == NULL);
    free(img.data);
}

static void test_png(void) {
    const char *params = "a photo of a cat\nSteps: 20, Sampler: DDPM, CFG scale: 7.5, Seed: 42";
    char want[256];
    size_t wl = 0;
    memcpy(want, "parameters", 11); /* keyword + NUL */
    wl = 11 + strlen(params);
    memcpy(want + 11, params, strlen(params));
    write_check("ascii.png", params, "tEXt", want, wl);

    /* Latin-1 representable UTF-8 ("café") goes into tEXt as byte 0xE9. */
    memcpy(want + 11, "caf\xe9", 4);
    write_check("latin1.png", "caf\xc3\xa9", "tEXt", want, 15);

    /* Beyond Latin-1 ("cat 猫"): iTXt, uncompressed, UTF-8 text. */
    const char *cjk = "cat \xe7\x8c\xab";
    memcpy(want + 11, "\0\0\0\0", 4);
    memcpy(want + 15, cjk, strlen(cjk));
    write_check("itxt.png", cjk, "iTXt", want, 15 + strlen(cjk));

    /* Invalid UTF-8 bytes are kept as Latin-1 characters. */
    memcpy(want + 11, "a\xff" "b", 3);
    write_check("invalid.png", "a\xff" "b", "tEXt", want, 14);

    /* Empty text and no text. */
    write_check("empty.png", "", "tEXt", "parameters", 11);
    write_check("none.png", NULL, NULL, NULL, 0);

    /* Overwriting an existing file works; bad images are refused. */
    sdvk_image img = make_image(2, 2);
    CHECK(sd_png_write(tpath("ascii.png"), &img, "x") == SDVK_OK);
    sdvk_image bad = img;
    bad.channels = 4;
    CHECK(sd_png_write(tpath("bad.png"), &bad, NULL) == SDVK_ERR_INVALID_ARG);
    bad = img;
    bad.width = 0;
    CHECK(sd_png_write(tpath("bad.png"), &bad, NULL) == SDVK_ERR_INVALID_ARG);
    CHECK(access(tpath("bad.png"), F_OK) != 0);

    /* A failed write leaves nothing behind: into a missing directory, and
     * onto a path that is a directory (rename fails after the data). */
    const char *p = tpath("nodir/x.png");
    CHECK(sd_png_write(p, &img, "x") == SDVK_ERR_IO);
    CHECK(strstr(sdvk_last_error(), p) != NULL);
    p = tpath("adir");
    CHECK(mkdir(p, 0755) == 0);
    CHECK(sd_png_write(p, &img, "x") == SDVK_ERR_IO);
    CHECK(strstr(sdvk_last_error(), p) != NULL);
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) {
            fprintf(stderr, "left behind: %s\n", e->d_name);
            g_fail++;
        }
    if (d)
        closedir(d);
    free(img.data);
}

static void test_load_bad(void) {
    sdvk_image img;
    const char *p = tpath("garbage.png");
    FILE *f = fopen(p, "wb");
    fputs("\x89PNG\r\n\x1a\nthis is not really a png file, just some bytes", f);
    fclose(f);
    CHECK(sd_image_load(p, &img) == SDVK_ERR_FORMAT && img.data == NULL);
    CHECK(strstr(sdvk_last_error(), p) != NULL);

    p = tpath("text.jpg");
    f = fopen(p, "wb");
    fputs("hello", f);
    fclose(f);
    CHECK(sd_image_load(p, &img) == SDVK_ERR_FORMAT);
    CHECK(strstr(sdvk_last_error(), p) != NULL);

    p = tpath("empty.png");
    fclose(fopen(p, "wb"));
    CHECK(sd_image_load(p, &img) == SDVK_ERR_FORMAT);
    CHECK(strstr(sdvk_last_error(), p) != NULL);

    p = tpath("missing.png");
    CHECK(sd_image_load(p, &img) == SDVK_ERR_IO);
    CHECK(strstr(sdvk_last_error(), p) && strstr(sdvk_last_error(), "No such file"));

    CHECK(sd_image_load(g_dir, &img) == SDVK_ERR_IO);
    CHECK(strstr(sdvk_last_error(), g_dir) != NULL);

    /* Truncated: a real PNG cut in the middle of its image data. */
    sdvk_image src = make_image(64, 64);
    CHECK(sd_png_write(tpath("full.png"), &src, NULL) == SDVK_OK);
    size_t n;
    uint8_t *b = read_file(tpath("full.png"), &n);
    p = tpath("cut.png");
    f = fopen(p, "wb");
    fwrite(b, 1, n / 2, f);
    fclose(f);
    CHECK(sd_image_load(p, &img) == SDVK_ERR_FORMAT && img.data == NULL);
    CHECK(strstr(sdvk_last_error(), p) != NULL);
    /* Other cuts: whatever stb makes of them, the result is either an image
     * of the right size or an error naming the file (ASan checks memory). */
    for (size_t len = 0; len < n; len += 5) {
        f = fopen(p, "wb");
        if (len)
            fwrite(b, 1, len, f);
        fclose(f);
        sdvk_status s = sd_image_load(p, &img);
        if (s == SDVK_OK) {
            CHECK(img.width == 64 && img.height == 64 && img.channels == 3);
            sdvk_image_free(&img);
        } else {
            CHECK(s == SDVK_ERR_FORMAT && img.data == NULL && strstr(sdvk_last_error(), p));
        }
    }
    free(b);
    free(src.data);

    /* A PNG header claiming 20000 x 8 pixels: refused before decoding. */
    uint8_t hdr[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                       0, 0, 0x4e, 0x20, 0, 0, 0, 8, 8, 2, 0, 0, 0};
    uint32_t crc = (uint32_t)crc32(0L, hdr + 12, 17);
    hdr[29] = (uint8_t)(crc >> 24);
    hdr[30] = (uint8_t)(crc >> 16);
    hdr[31] = (uint8_t)(crc >> 8);
    hdr[32] = (uint8_t)crc;
    p = tpath("wide.png");
    f = fopen(p, "wb");
    fwrite(hdr, 1, 33, f);
    fwrite("\0\0\0\0IEND\xae\x42\x60\x82", 1, 12, f);
    fclose(f);
    CHECK(sd_image_load(p, &img) == SDVK_ERR_FORMAT && img.data == NULL);
    CHECK(strstr(sdvk_last_error(), p) != NULL);
}

static void test_resize(void) {
    sdvk_image a = make_image(5, 3), o;
    CHECK(sd_image_resize(&a, 5, 3, &o) == SDVK_OK);
    CHECK(o.width == 5 && o.height == 3 && o.data && !memcmp(o.data, a.data, 45));
    sdvk_image_free(&o);

    /* A constant image stays constant whether enlarged or shrunk. */
    memset(a.data, 77, 45);
    CHECK(sd_image_resize(&a, 13, 9, &o) == SDVK_OK && o.width == 13 && o.height == 9);
    for (int i = 0; o.data && i < 13 * 9 * 3; i++)
        if (o.data[i] != 77) {
            CHECK(o.data[i] == 77);
            break;
        }
    sdvk_image_free(&o);
    CHECK(sd_image_resize(&a, 2, 1, &o) == SDVK_OK);
    for (int i = 0; o.data && i < 6; i++) CHECK(o.data[i] == 77);
    sdvk_image_free(&o);
    free(a.data);

    /* 2x1 -> 1x1 averages the two pixels (area behaviour when shrinking). */
    uint8_t px[6] = {10, 100, 200, 30, 120, 0};
    sdvk_image two = {2, 1, 3, px};
    CHECK(sd_image_resize(&two, 1, 1, &o) == SDVK_OK);
    CHECK(o.data && abs(o.data[0] - 20) <= 1 && abs(o.data[1] - 110) <= 1 &&
          abs(o.data[2] - 100) <= 1);
    sdvk_image_free(&o);

    CHECK(sd_image_resize(&two, 0, 4, &o) == SDVK_ERR_INVALID_ARG && o.data == NULL);
    CHECK(sd_image_resize(&two, 20000, 4, &o) == SDVK_ERR_INVALID_ARG);
    sdvk_image none = {2, 2, 3, NULL};
    CHECK(sd_image_resize(&none, 4, 4, &o) == SDVK_ERR_INVALID_ARG);
}

static void test_writable(void) {
    const char *p = tpath("new.png");
    CHECK(sd_check_writable(p) == SDVK_OK);
    CHECK(access(p, F_OK) != 0); /* nothing left behind */

    /* An existing file: writable, and left exactly as it was. */
    p = tpath("exists.txt");
    FILE *f = fopen(p, "wb");
    fputs("keep me", f);
    fclose(f);
    CHECK(sd_check_writable(p) == SDVK_OK);
    size_t n;
    uint8_t *b = read_file(p, &n);
    CHECK(b && n == 7 && !memcmp(b, "keep me", 7));
    free(b);

    p = tpath("no/such/dir/out.png");
    CHECK(sd_check_writable(p) == SDVK_ERR_IO);
    CHECK(strstr(sdvk_last_error(), p) && strstr(sdvk_last_error(), "No such file"));

    /* Parent is a file, the path is a directory, trailing slash. */
    p = tpath("exists.txt/out.png");
    CHECK(sd_check_writable(p) == SDVK_ERR_IO && strstr(sdvk_last_error(), p));
    CHECK(sd_check_writable(g_dir) == SDVK_ERR_IO && strstr(sdvk_last_error(), g_dir));
    p = tpath("sub/");
    CHECK(sd_check_writable(p) != SDVK_OK && strstr(sdvk_last_error(), p));
    CHECK(sd_check_writable("") == SDVK_ERR_INVALID_ARG);

    /* Read-only directory. root may write anywhere, so there use a
     * directory the kernel refuses new files in even to root. */
    if (geteuid() != 0) {
        const char *ro = tpath("ro");
        CHECK(mkdir(ro, 0555) == 0);
        p = tpath("ro/out.png");
        CHECK(sd_check_writable(p) == SDVK_ERR_IO);
        CHECK(strstr(sdvk_last_error(), p) && strstr(sdvk_last_error(), "ermission"));
        chmod(ro, 0755);
    } else {
        p = "/proc/sdvk_probe_out.png";
        CHECK(sd_check_writable(p) == SDVK_ERR_IO);
        CHECK(strstr(sdvk_last_error(), p) != NULL);
        CHECK(access(p, F_OK) != 0);
    }
    /* A relative name (directory ".") works. */
    char cwd[512];
    if (getcwd(cwd, sizeof cwd) && chdir(g_dir) == 0) {
        CHECK(sd_check_writable("rel.png") == SDVK_OK);
        CHECK(access("rel.png", F_OK) != 0);
        if (chdir(cwd) != 0)
            g_fail++;
    }
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/sdvk_img_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_png();
    test_load_bad();
    test_resize();
    test_writable();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", g_dir);
    if (g_fail) {
        fprintf(stderr, "test_image: %d check(s) failed\n", g_fail);
        return 1;
    }
    printf("test_image: ok\n");
    return 0;
}
