/* .npy: save/load round trip, the exact on-disk layout numpy expects,
 * dtype conversions (f2/f8 -> F32, integers -> I32 with range checks), all
 * three format versions, and malformed files that must be refused with a
 * message naming the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/npy.h"
#include "core/status.h"

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

/* Writes a .npy by hand: version major.0, the given dict text (padded with
 * spaces and '\n' so data starts at a multiple of 64, as numpy does), then
 * nbytes of data. */
static void write_npy(const char *name, int major, const char *dict, const void *data,
                      size_t nbytes) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hl = total - pre;
    uint8_t *b = calloc(1, total + nbytes + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hl - dl - 1);
    b[total - 1] = '\n';
    if (nbytes)
        memcpy(b + total, data, nbytes);
    FILE *f = fopen(tpath(name), "wb");
    if (!f || fwrite(b, 1, total + nbytes, f) != total + nbytes) {
        fprintf(stderr, "cannot write %s\n", name);
        exit(2);
    }
    fclose(f);
    free(b);
}

static void expect_bad(const char *name, sdvk_status want, const char *sub) {
    const char *p = tpath(name);
    sd_npy a;
    sdvk_status s = sd_npy_load(p, &a);
    const char *msg = sdvk_last_error();
    if (s != want || a.data != NULL || !strstr(msg, p) || (sub && !strstr(msg, sub))) {
        fprintf(stderr, "bad npy %s: status %d (want %d), message \"%s\" (want \"%s\")\n", name,
                s, want, msg, sub ? sub : "");
        g_fail++;
    }
    if (s == SDVK_OK)
        sd_npy_free(&a);
}

static void test_round_trip(void) {
    float f[6] = {1.0f, -2.5f, 3.0e-20f, INFINITY, -0.0f, 7.0f};
    int64_t ne[2] = {2, 3};
    const char *p = tpath("rt.npy");
    CHECK(sd_npy_save(p, SD_F32, f, 2, ne) == SDVK_OK);

    /* Layout: v1.0, data at a multiple of 64, the dict as numpy writes it. */
    FILE *fp = fopen(p, "rb");
    uint8_t b[256];
    size_t n = fp ? fread(b, 1, sizeof b, fp) : 0;
    if (fp)
        fclose(fp);
    CHECK(n == 128 + 24);
    CHECK(!memcmp(b, "\x93NUMPY\x01\x00", 8));
    size_t hl = (size_t)b[8] | (size_t)b[9] << 8;
    CHECK((10 + hl) % 64 == 0 && 10 + hl == 128);
    const char *want = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(!memcmp(b + 10, want, strlen(want)));
    CHECK(b[10 + hl - 1] == '\n' && b[10 + strlen(want)] == ' ');
    CHECK(!memcmp(b + 128, f, 24));

    sd_npy a;
    CHECK(sd_npy_load(p, &a) == SDVK_OK);
    CHECK(a.dtype == SD_F32 && a.ndim == 2 && a.ne[0] == 2 && a.ne[1] == 3 &&
          sd_npy_nelem(&a) == 6);
    CHECK(a.data && !memcmp(a.data, f, 24));
    sd_npy_free(&a);
    CHECK(a.data == NULL);

    int32_t iv[4] = {-2147483647 - 1, -1, 0, 2147483647};
    int64_t ne1 = 4;
    p = tpath("rt_i.npy");
    CHECK(sd_npy_save(p, SD_I32, iv, 1, &ne1) == SDVK_OK);
    fp = fopen(p, "rb");
    n = fp ? fread(b, 1, sizeof b, fp) : 0;
    if (fp)
        fclose(fp);
    want = "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }";
    CHECK(n == 128 + 16 && !memcmp(b + 10, want, strlen(want)));
    CHECK(sd_npy_load(p, &a) == SDVK_OK);
    CHECK(a.dtype == SD_I32 && a.ndim == 1 && a.ne[0] == 4 && a.data && !memcmp(a.data, iv, 16));
    sd_npy_free(&a);

    /* 0-d: shape (), one element. */
    float s = 3.5f;
    p = tpath("rt_0d.npy");
    CHECK(sd_npy_save(p, SD_F32, &s, 0, NULL) == SDVK_OK);
    CHECK(sd_npy_load(p, &a) == SDVK_OK);
    CHECK(a.ndim == 0 && sd_npy_nelem(&a) == 1 && a.data && ((float *)a.data)[0] == 3.5f);
    sd_npy_free(&a);

    /* Empty: shape (0, 3). */
    int64_t ne0[2] = {0, 3};
    p = tpath("rt_empty.npy");
    CHECK(sd_npy_save(p, SD_F32, NULL, 2, ne0) == SDVK_OK);
    CHECK(sd_npy_load(p, &a) == SDVK_OK);
    CHECK(a.ndim == 2 && a.ne[0] == 0 && a.ne[1] == 3 && sd_npy_nelem(&a) == 0);
    sd_npy_free(&a);

    /* Eight dimensions is the limit for saving. */
    int64_t ne8[9] = {1, 1, 1, 1, 1, 1, 1, 2, 1};
    p = tpath("rt_8d.npy");
    CHECK(sd_npy_save(p, SD_F32, f, 8, ne8) == SDVK_OK);
    CHECK(sd_npy_load(p, &a) == SDVK_OK && a.ndim == 8 && a.ne[7] == 2 && sd_npy_nelem(&a) == 2);
    sd_npy_free(&a);
    CHECK(sd_npy_save(tpath("rt_9d.npy"), SD_F32, f, 9, ne8) == SDVK_ERR_INVALID_ARG);
    CHECK(sd_npy_save(tpath("rt_f16.npy"), SD_F16, f, 1, &ne1) == SDVK_ERR_INVALID_ARG);
    CHECK(strstr(sdvk_last_error(), "rt_f16.npy") != NULL);
}

static void test_conversions(void) {
    sd_npy a;
    double d[5] = {1.5, -2.25, 1e300, -1e300, 0.1};
    write_npy("f8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", d, 40);
    CHECK(sd_npy_load(tpath("f8.npy"), &a) == SDVK_OK);
    CHECK(a.dtype == SD_F32 && a.ndim == 1 && a.ne[0] == 5);
    if (a.data) {
        float *v = a.data;
        CHECK(v[0] == 1.5f && v[1] == -2.25f && v[2] == INFINITY && v[3] == -INFINITY);
        CHECK(v[4] == (float)0.1);
    }
    sd_npy_free(&a);

    uint16_t h[4] = {0x3c00, 0x0001, 0x8001, 0xfc00}; /* 1, 2^-24, -2^-24, -inf */
    write_npy("f2.npy", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", h, 8);
    CHECK(sd_npy_load(tpath("f2.npy"), &a) == SDVK_OK);
    if (a.data) {
        float *v = a.data;
        CHECK(a.dtype == SD_F32 && v[0] == 1.0f && v[1] == ldexpf(1, -24) &&
              v[2] == -ldexpf(1, -24) && v[3] == -INFINITY);
    }
    sd_npy_free(&a);

    int64_t i8[3] = {-5, 2147483647, -2147483647 - 1};
    write_npy("i8.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", i8, 24);
    CHECK(sd_npy_load(tpath("i8.npy"), &a) == SDVK_OK);
    if (a.data) {
        int32_t *v = a.data;
        CHECK(a.dtype == SD_I32 && v[0] == -5 && v[1] == 2147483647 && v[2] == -2147483647 - 1);
    }
    sd_npy_free(&a);
    int64_t big[2] = {1, 2147483648LL};
    write_npy("i8_big.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", big,
              16);
    expect_bad("i8_big.npy", SDVK_ERR_FORMAT, "int32");
    uint32_t u4[2] = {7, 0x80000000u};
    write_npy("u4_big.npy", 1, "{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }", u4, 8);
    expect_bad("u4_big.npy", SDVK_ERR_FORMAT, "int32");

    uint8_t bytes[4] = {0, 1, 128, 255};
    write_npy("u1.npy", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", bytes, 4);
    CHECK(sd_npy_load(tpath("u1.npy"), &a) == SDVK_OK);
    if (a.data) {
        int32_t *v = a.data;
        CHECK(v[0] == 0 && v[1] == 1 && v[2] == 128 && v[3] == 255);
    }
    sd_npy_free(&a);
    write_npy("i1.npy", 1, "{'descr': '|i1', 'fortran_order': False, 'shape': (4,), }", bytes, 4);
    CHECK(sd_npy_load(tpath("i1.npy"), &a) == SDVK_OK);
    if (a.data) {
        int32_t *v = a.data;
        CHECK(v[0] == 0 && v[1] == 1 && v[2] == -128 && v[3] == -1);
    }
    sd_npy_free(&a);
    uint16_t u2[2] = {65535, 3};
    write_npy("u2.npy", 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", u2, 4);
    CHECK(sd_npy_load(tpath("u2.npy"), &a) == SDVK_OK);
    CHECK(a.data && ((int32_t *)a.data)[0] == 65535 && ((int32_t *)a.data)[1] == 3);
    sd_npy_free(&a);
    write_npy("i2.npy", 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", u2, 4);
    CHECK(sd_npy_load(tpath("i2.npy"), &a) == SDVK_OK);
    CHECK(a.data && ((int32_t *)a.data)[0] == -1 && ((int32_t *)a.data)[1] == 3);
    sd_npy_free(&a);
}

/* Versions 2.0/3.0 (u32 header length), keys in any order, double quotes,
 * no trailing comma, Python 2 long suffixes. */
static void test_versions(void) {
    sd_npy a;
    float f[6] = {1, 2, 3, 4, 5, 6};
    write_npy("v2.npy", 2, "{\"shape\": (3, 2), \"fortran_order\": False, \"descr\": \"<f4\"}", f,
              24);
    CHECK(sd_npy_load(tpath("v2.npy"), &a) == SDVK_OK);
    CHECK(a.ndim == 2 && a.ne[0] == 3 && a.ne[1] == 2 && a.data && !memcmp(a.data, f, 24));
    sd_npy_free(&a);
    write_npy("v3.npy", 3, "{'fortran_order':False,'shape':(6L,),'descr':'<f4',}", f, 24);
    CHECK(sd_npy_load(tpath("v3.npy"), &a) == SDVK_OK);
    CHECK(a.ndim == 1 && a.ne[0] == 6 && a.data && !memcmp(a.data, f, 24));
    sd_npy_free(&a);
    /* Trailing bytes after the data are ignored, as numpy does. */
    write_npy("extra.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", f, 24);
    CHECK(sd_npy_load(tpath("extra.npy"), &a) == SDVK_OK);
    CHECK(a.ne[0] == 5 && a.data && !memcmp(a.data, f, 20));
    sd_npy_free(&a);
}

static void test_bad(void) {
    float f[4] = {0};
    write_npy("be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", f, 16);
    expect_bad("be.npy", SDVK_ERR_UNSUPPORTED, "big-endian");
    write_npy("fo.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f, 16);
    expect_bad("fo.npy", SDVK_ERR_UNSUPPORTED, "fortran");
    write_npy("b1.npy", 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }", f, 4);
    expect_bad("b1.npy", SDVK_ERR_UNSUPPORTED, "'|b1'");
    write_npy("obj.npy", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", f, 16);
    expect_bad("obj.npy", SDVK_ERR_UNSUPPORTED, "not supported");
    write_npy("c8.npy", 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", f, 16);
    expect_bad("c8.npy", SDVK_ERR_UNSUPPORTED, "not supported");
    write_npy("struct.npy", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
              f, 8);
    expect_bad("struct.npy", SDVK_ERR_UNSUPPORTED, "structured");
    write_npy("trunc.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", f, 8);
    expect_bad("trunc.npy", SDVK_ERR_FORMAT, "truncated");
    write_npy("trunc8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f, 16);
    expect_bad("trunc8.npy", SDVK_ERR_FORMAT, "truncated");
    write_npy("absurd.npy", 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", f,
              16);
    expect_bad("absurd.npy", SDVK_ERR_FORMAT, "absurd");
    write_npy("huge_dim.npy", 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", f,
              16);
    expect_bad("huge_dim.npy", SDVK_ERR_FORMAT, "absurd");
    write_npy("big.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }",
              f, 16);
    expect_bad("big.npy", SDVK_ERR_FORMAT, "truncated");
    write_npy("negdim.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", f, 16);
    expect_bad("negdim.npy", SDVK_ERR_FORMAT, "shape");
    write_npy("9d.npy", 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", f, 4);
    expect_bad("9d.npy", SDVK_ERR_FORMAT, "dimensions");
    write_npy("nokey.npy", 1, "{'descr': '<f4', 'shape': (4,), }", f, 16);
    expect_bad("nokey.npy", SDVK_ERR_FORMAT, "lacks");
    write_npy("extrakey.npy", 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1, }", f, 16);
    expect_bad("extrakey.npy", SDVK_ERR_FORMAT, "'x'");
    write_npy("dupkey.npy", 1,
              "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", f, 16);
    expect_bad("dupkey.npy", SDVK_ERR_FORMAT, "duplicate");
    write_npy("notdict.npy", 1, "descr <f4", f, 16);
    expect_bad("notdict.npy", SDVK_ERR_FORMAT, "dict");
    write_npy("junk.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), } xx", f,
              16);
    expect_bad("junk.npy", SDVK_ERR_FORMAT, "junk");
    write_npy("emptydescr.npy", 1, "{'descr': '', 'fortran_order': False, 'shape': (4,), }", f, 16);
    expect_bad("emptydescr.npy", SDVK_ERR_FORMAT, "descr");
    write_npy("v4.npy", 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", f, 16);
    expect_bad("v4.npy", SDVK_ERR_UNSUPPORTED, "version");

    /* Raw bytes: bad magic, empty file, header length past the end. */
    FILE *fp = fopen(tpath("magic.npy"), "wb");
    fputs("\x89PNG\r\n\x1a\nnot numpy at all", fp);
    fclose(fp);
    expect_bad("magic.npy", SDVK_ERR_FORMAT, "magic");
    fp = fopen(tpath("empty.npy"), "wb");
    fclose(fp);
    expect_bad("empty.npy", SDVK_ERR_FORMAT, "magic");
    fp = fopen(tpath("hdrtrunc.npy"), "wb");
    fwrite("\x93NUMPY\x01\x00\xff\x7f{'descr'", 1, 18, fp);
    fclose(fp);
    expect_bad("hdrtrunc.npy", SDVK_ERR_FORMAT, "truncated header");
    fp = fopen(tpath("hdrhuge.npy"), "wb");
    fwrite("\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'", 1, 20, fp);
    fclose(fp);
    expect_bad("hdrhuge.npy", SDVK_ERR_FORMAT, "absurd");
    expect_bad("missing.npy", SDVK_ERR_IO, "No such file");
}

/* Every strict prefix of a valid file is refused with the file named. */
static void test_prefixes(void) {
    float f[5] = {1, 2, 3, 4, 5};
    int64_t ne = 5;
    const char *src = tpath("src.npy"), *dst = tpath("cut.npy");
    CHECK(sd_npy_save(src, SD_F32, f, 1, &ne) == SDVK_OK);
    FILE *fp = fopen(src, "rb");
    uint8_t b[512];
    size_t n = fp ? fread(b, 1, sizeof b, fp) : 0;
    if (fp)
        fclose(fp);
    CHECK(n == 128 + 20);
    for (size_t len = 0; len < n; len++) {
        fp = fopen(dst, "wb");
        if (len)
            fwrite(b, 1, len, fp);
        fclose(fp);
        sd_npy a;
        sdvk_status s = sd_npy_load(dst, &a);
        if (s != SDVK_ERR_FORMAT || a.data || !strstr(sdvk_last_error(), dst)) {
            fprintf(stderr, "prefix of %zu bytes: status %d, \"%s\"\n", len, s, sdvk_last_error());
            g_fail++;
        }
        if (s == SDVK_OK)
            sd_npy_free(&a);
    }
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/sdvk_npy_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_round_trip();
    test_conversions();
    test_versions();
    test_bad();
    test_prefixes();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", g_dir);
    if (g_fail) {
        fprintf(stderr, "test_npy: %d check(s) failed\n", g_fail);
        return 1;
    }
    printf("test_npy: ok\n");
    return 0;
}
