/* safetensors: round trip through sd_st_write, exact f16 subnormals, and a
 * set of malformed files generated in a temp dir, each of which must be
 * refused with the right status and a message naming the file (and the
 * tensor, where one is involved). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"
#include "io/safetensors.h"

static int g_fail;
#define CHECK(c)                                                         \
    do {                                                                 \
        if (!(c)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            g_fail++;                                                    \
        }                                                                \
    } while (0)

static char g_dir[64];

static const char *tpath(const char *name) {
    static char buf[8][256];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 256, "%s/%s", g_dir, name);
    return p;
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

/* A file with the given header length field, header text and data size
 * (data bytes are 0..n-1 mod 256). */
static void write_st(const char *path, uint64_t hlen_field, const char *hdr, size_t data_len) {
    size_t hl = strlen(hdr);
    uint8_t *b = malloc(8 + hl + data_len + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hlen_field >> (8 * i));
    memcpy(b + 8, hdr, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (uint8_t)i;
    write_bytes(path, b, 8 + hl + data_len);
    free(b);
}

/* Expects sd_st_open to fail with `want`; the message must contain the file
 * path and each of the non-NULL substrings. */
static void expect_bad(const char *name, sdvk_status want, const char *sub1, const char *sub2) {
    const char *p = tpath(name);
    sd_safetensors *st = (sd_safetensors *)1;
    sdvk_status s = sd_st_open(p, &st);
    const char *msg = sdvk_last_error();
    int ok = s == want && st == NULL && strstr(msg, p) && (!sub1 || strstr(msg, sub1)) &&
             (!sub2 || strstr(msg, sub2));
    if (!ok) {
        fprintf(stderr, "bad file %s: status %d (want %d), message \"%s\" (want \"%s\", \"%s\")\n",
                name, s, want, msg, sub1 ? sub1 : "", sub2 ? sub2 : "");
        g_fail++;
    }
    if (s == SDVK_OK)
        sd_st_close(st);
}

static void bad_hdr(const char *name, const char *hdr, size_t data_len, const char *sub1,
                    const char *sub2) {
    write_st(tpath(name), strlen(hdr), hdr, data_len);
    expect_bad(name, SDVK_ERR_FORMAT, sub1, sub2);
}

static void test_round_trip(void) {
    float a[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    uint16_t h[5], bf[4];
    float hv[5] = {1.0f, -0.5f, 65504.0f, 0.099975586f, -3.0f};
    float bv[4] = {1.0f, -2.5f, 3.0e38f, 0.15625f};
    for (int i = 0; i < 5; i++) h[i] = sd_f32_to_f16(hv[i]);
    for (int i = 0; i < 4; i++) bf[i] = sd_f32_to_bf16(bv[i]);
    int32_t iv[3] = {-7, 0, 2147483647};
    float scalar = 42.0f;
    sd_st_write_item items[] = {
        {"model.half", SD_F16, 1, {5}, h},
        {"model.a", SD_F32, 2, {2, 3}, a},
        {"b.bf", SD_BF16, 2, {2, 2}, bf},
        {"ids", SD_I32, 1, {3}, iv},
        {"scalar", SD_F32, 0, {0}, &scalar},
        {"empty", SD_F32, 2, {0, 4}, NULL},
    };
    const char *meta[] = {"format", "pt", "note", "h\xc3\xa9llo \"quoted\""};
    const char *p = tpath("ok.safetensors");
    CHECK(sd_st_write(p, items, 6, meta, 2) == SDVK_OK);

    /* The header length is a multiple of 8 and the padding is spaces. */
    FILE *f = fopen(p, "rb");
    uint8_t pre[8];
    CHECK(f && fread(pre, 1, 8, f) == 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | pre[i];
    CHECK(hl % 8 == 0);
    fclose(f);

    sd_safetensors *st = NULL;
    CHECK(sd_st_open(p, &st) == SDVK_OK);
    if (!st)
        return;
    CHECK(st->n == 6);
    for (int i = 1; i < st->n; i++) CHECK(strcmp(st->t[i - 1].name, st->t[i].name) < 0);
    CHECK(sd_st_meta(st, "format") && !strcmp(sd_st_meta(st, "format"), "pt"));
    CHECK(sd_st_meta(st, "note") && !strcmp(sd_st_meta(st, "note"), meta[3]));
    CHECK(sd_st_meta(st, "absent") == NULL);
    CHECK(sd_st_find(st, "nope") == NULL);
    CHECK(sd_st_find(st, "__metadata__") == NULL);

    const sd_st_tensor *t = sd_st_find(st, "model.a");
    CHECK(t && t->supported && t->dtype == SD_F32 && t->ndim == 2 && t->ne[0] == 2 &&
          t->ne[1] == 3 && t->nbytes == 24 && !strcmp(t->dtype_str, "F32"));
    if (t)
        CHECK(!memcmp(t->data, a, 24) && (uintptr_t)t->data % 4 == 0);

    t = sd_st_find(st, "model.half");
    CHECK(t && t->supported && t->dtype == SD_F16 && t->ndim == 1 && t->ne[0] == 5 &&
          t->nbytes == 10);
    if (t) {
        float got[5];
        sd_to_f32(got, t->data, SD_F16, 5);
        for (int i = 0; i < 5; i++) CHECK(got[i] == sd_f16_to_f32(h[i]));
        CHECK(got[0] == 1.0f && got[2] == 65504.0f && got[4] == -3.0f);
        /* 0.1 is not exact in f16: the stored value is within half an ulp (2^-14 / 2). */
        CHECK(fabsf(got[3] - 0.1f) <= 0x1p-15f);
    }

    t = sd_st_find(st, "b.bf");
    CHECK(t && t->supported && t->dtype == SD_BF16 && t->nbytes == 8 && !strcmp(t->dtype_str, "BF16"));
    if (t) {
        float got[4];
        sd_to_f32(got, t->data, SD_BF16, 4);
        CHECK(got[0] == 1.0f && got[1] == -2.5f && got[3] == 0.15625f);
        /* bf16 keeps 8 significant bits: relative error <= 2^-9. */
        CHECK(fabsf(got[2] - 3.0e38f) <= 3.0e38f * 0x1p-9f);
    }

    t = sd_st_find(st, "ids");
    CHECK(t && !t->supported && !strcmp(t->dtype_str, "I32") && t->nbytes == 12);
    if (t)
        CHECK(!memcmp(t->data, iv, 12));

    t = sd_st_find(st, "scalar");
    CHECK(t && t->ndim == 0 && t->nbytes == 4);
    if (t) {
        float v;
        memcpy(&v, t->data, 4);
        CHECK(v == 42.0f);
    }
    t = sd_st_find(st, "empty");
    CHECK(t && t->ndim == 2 && t->ne[0] == 0 && t->ne[1] == 4 && t->nbytes == 0);
    sd_st_close(st);

    /* Writer refuses duplicate names. */
    sd_st_write_item dup[] = {{"x", SD_F32, 1, {1}, a}, {"x", SD_F32, 1, {1}, a}};
    CHECK(sd_st_write(tpath("dup_w.safetensors"), dup, 2, NULL, 0) == SDVK_ERR_INVALID_ARG);
    CHECK(strstr(sdvk_last_error(), "dup_w.safetensors") != NULL);
}

/* f16 subnormals: 0x0001 = 2^-24, 0x03ff = 1023 * 2^-24, 0x8001 = -2^-24. */
static void test_f16_subnormal(void) {
    uint16_t bits[3] = {0x0001, 0x03ff, 0x8001};
    sd_st_write_item it = {"sub", SD_F16, 1, {3}, bits};
    const char *p = tpath("sub.safetensors");
    CHECK(sd_st_write(p, &it, 1, NULL, 0) == SDVK_OK);
    sd_safetensors *st = NULL;
    CHECK(sd_st_open(p, &st) == SDVK_OK);
    const sd_st_tensor *t = st ? sd_st_find(st, "sub") : NULL;
    CHECK(t && t->dtype == SD_F16 && t->nbytes == 6);
    if (t) {
        uint16_t r[3];
        memcpy(r, t->data, 6);
        CHECK(r[0] == 0x0001 && r[1] == 0x03ff && r[2] == 0x8001);
        CHECK(sd_f16_to_f32(r[0]) == ldexpf(1.0f, -24));
        CHECK(sd_f16_to_f32(r[1]) == 1023.0f * ldexpf(1.0f, -24));
        CHECK(sd_f16_to_f32(r[2]) == -ldexpf(1.0f, -24));
        /* and back, exactly */
        CHECK(sd_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);
        CHECK(sd_f32_to_f16(1023.0f * ldexpf(1.0f, -24)) == 0x03ff);
        CHECK(sd_f32_to_f16(-ldexpf(1.0f, -24)) == 0x8001);
    }
    sd_st_close(st);
}

/* Hand-written files: unsupported dtypes load (supported = 0), an unpadded
 * header leaves data unaligned, which readers must handle with memcpy. */
static void test_handmade_valid(void) {
    const char *hdr = "{\"x\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                      "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
                      "\"__metadata__\":{}}";
    const char *p = tpath("odd.safetensors");
    write_st(p, strlen(hdr), hdr, 20);
    sd_safetensors *st = NULL;
    CHECK(sd_st_open(p, &st) == SDVK_OK);
    if (!st)
        return;
    CHECK(st->n == 2 && st->n_meta == 0);
    const sd_st_tensor *x = sd_st_find(st, "x"), *y = sd_st_find(st, "y");
    CHECK(x && !x->supported && !strcmp(x->dtype_str, "I64") && x->nbytes == 16);
    CHECK(y && y->supported && y->dtype == SD_F32);
    if (y) {
        const uint8_t *base = (const uint8_t *)st->map + 8 + strlen(hdr);
        CHECK((const uint8_t *)y->data == base + 16);
        uint8_t want[4] = {16, 17, 18, 19};
        CHECK(!memcmp(y->data, want, 4));
    }
    sd_st_close(st);
}

static void test_bad_files(void) {
    const char *ok_entry = "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}";
    char hdr[512];

    write_bytes(tpath("empty.safetensors"), "", 0);
    expect_bad("empty.safetensors", SDVK_ERR_FORMAT, "too short", NULL);
    write_bytes(tpath("four.safetensors"), "\x10\0\0\0", 4);
    expect_bad("four.safetensors", SDVK_ERR_FORMAT, "too short", NULL);

    snprintf(hdr, sizeof hdr, "{%s}", ok_entry);
    write_st(tpath("trunc.safetensors"), strlen(hdr), hdr, 8);
    expect_bad("trunc.safetensors", SDVK_ERR_FORMAT, "\"w\"", "past the end");

    write_st(tpath("hlen_big.safetensors"), 1000, hdr, 16);
    expect_bad("hlen_big.safetensors", SDVK_ERR_FORMAT, "larger than", NULL);
    write_st(tpath("hlen_zero.safetensors"), 0, hdr, 16);
    expect_bad("hlen_zero.safetensors", SDVK_ERR_FORMAT, "length is 0", NULL);
    write_st(tpath("hlen_cap.safetensors"), 100000001ull, hdr, 16);
    expect_bad("hlen_cap.safetensors", SDVK_ERR_FORMAT, "cap", NULL);
    write_st(tpath("hlen_huge.safetensors"), UINT64_MAX, hdr, 16);
    expect_bad("hlen_huge.safetensors", SDVK_ERR_FORMAT, "cap", NULL);

    bad_hdr("notjson.safetensors", "{\"w\": [1, 2,", 16, "not valid JSON", NULL);
    bad_hdr("garbage.safetensors", "PK\x03\x04garbage!", 16, "not valid JSON", NULL);
    bad_hdr("array.safetensors", "[1, 2, 3]", 0, "not an object", NULL);
    /* A valid JSON object followed by non-space bytes inside the header. */
    snprintf(hdr, sizeof hdr, "{%s}xyz", ok_entry);
    bad_hdr("trailing.safetensors", hdr, 16, "not valid JSON", NULL);

    bad_hdr("lying.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 24, "\"w\"",
            "needs 24");
    bad_hdr("lying16.safetensors",
            "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "\"w\"",
            "needs 8");
    bad_hdr("oob.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[100,116]}}", 16, "\"w\"",
            "past the end");
    bad_hdr("backwards.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16, "\"w\"",
            "data_offsets");
    bad_hdr("negoff.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 16, "\"w\"",
            "data_offsets");
    bad_hdr("overlap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
            24, "overlap", "\"b\"");
    bad_hdr("same.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
            "\"b\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]}}",
            16, "overlap", NULL);
    bad_hdr("dtype.safetensors",
            "{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, "\"w\"",
            "unknown dtype");
    bad_hdr("dup.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8, "duplicate", NULL);
    bad_hdr("negshape.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}", 16, "\"w\"",
            "shape");
    bad_hdr("floatshape.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0,2],\"data_offsets\":[0,16]}}", 16, "\"w\"",
            "shape");
    bad_hdr("dims.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 16,
            "\"w\"", "dimensions");
    bad_hdr("overflow.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
            "\"data_offsets\":[0,16]}}",
            16, "\"w\"", "overflow");
    bad_hdr("bytes_overflow.safetensors",
            "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
            "\"data_offsets\":[0,16]}}",
            16, "\"w\"", "overflow");
    bad_hdr("nodtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 16, "\"w\"",
            "dtype");
    bad_hdr("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 16,
            "\"w\"", "shape");
    bad_hdr("nooffs.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 16, "\"w\"",
            "data_offsets");
    bad_hdr("offs3.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 16, "\"w\"",
            "data_offsets");
    bad_hdr("entry.safetensors", "{\"w\":[1,2]}", 16, "\"w\"", "not a JSON object");
    bad_hdr("meta.safetensors",
            "{\"__metadata__\":{\"k\":1},\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
            "\"data_offsets\":[0,4]}}",
            16, "metadata", "\"k\"");
    bad_hdr("meta2.safetensors", "{\"__metadata__\":[\"k\"]}", 16, "__metadata__", NULL);

    /* Not a file at all, and a missing file: I/O errors naming the path. */
    expect_bad("", SDVK_ERR_IO, "regular", NULL); /* the temp dir itself */
    expect_bad("missing.safetensors", SDVK_ERR_IO, "No such file", NULL);
}

static uint8_t *slurp(const char *path, size_t *n) {
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

/* Every strict prefix of a valid file must be refused (header cut short or
 * data area too small for the offsets), and random byte corruption must
 * either load or fail cleanly with the file named (ASan checks the rest). */
static void test_prefixes_and_mutations(void) {
    float a[3] = {1, 2, 3};
    uint16_t h[2] = {0x3c00, 0x4000};
    sd_st_write_item items[] = {{"a", SD_F32, 1, {3}, a}, {"h", SD_F16, 2, {1, 2}, h}};
    const char *meta[] = {"k", "v"};
    const char *src = tpath("src.safetensors"), *dst = tpath("cut.safetensors");
    CHECK(sd_st_write(src, items, 2, meta, 1) == SDVK_OK);
    size_t n = 0;
    uint8_t *b = slurp(src, &n);
    CHECK(b && n > 16);
    if (!b)
        return;
    for (size_t len = 0; len < n; len++) {
        write_bytes(dst, b, len);
        sd_safetensors *st = NULL;
        sdvk_status s = sd_st_open(dst, &st);
        if (s != SDVK_ERR_FORMAT || st || !strstr(sdvk_last_error(), dst)) {
            fprintf(stderr, "prefix of %zu bytes: status %d, \"%s\"\n", len, s, sdvk_last_error());
            g_fail++;
        }
        sd_st_close(st);
    }
    uint32_t rng = 12345;
    for (int it = 0; it < 400; it++) {
        uint8_t *m = malloc(n);
        memcpy(m, b, n);
        for (int k = 0; k < 1 + it % 4; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t pos = (rng >> 8) % n;
            rng = rng * 1664525u + 1013904223u;
            m[pos] = it & 1 ? (uint8_t)(rng >> 24) : (uint8_t)(m[pos] ^ (1u << (rng >> 29)));
        }
        write_bytes(dst, m, n);
        free(m);
        sd_safetensors *st = NULL;
        sdvk_status s = sd_st_open(dst, &st);
        if (s == SDVK_OK) {
            /* Whatever loaded must be self-consistent. */
            for (int i = 0; i < st->n; i++) {
                const sd_st_tensor *t = &st->t[i];
                const uint8_t *lo = st->map, *hi = lo + st->map_size;
                CHECK((const uint8_t *)t->data >= lo && (const uint8_t *)t->data + t->nbytes <= hi);
                CHECK(sd_st_find(st, t->name) == t);
            }
            sd_st_close(st);
        } else if (s != SDVK_ERR_FORMAT || st || !strstr(sdvk_last_error(), dst)) {
            fprintf(stderr, "mutation %d: status %d, \"%s\"\n", it, s, sdvk_last_error());
            g_fail++;
        }
    }
    free(b);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/sdvk_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_round_trip();
    test_f16_subnormal();
    test_handmade_valid();
    test_bad_files();
    test_prefixes_and_mutations();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", g_dir);
    if (g_fail) {
        fprintf(stderr, "test_safetensors: %d check(s) failed\n", g_fail);
        return 1;
    }
    printf("test_safetensors: ok\n");
    return 0;
}
