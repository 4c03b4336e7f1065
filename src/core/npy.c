/* .npy reader/writer (NumPy format versions 1.0, 2.0, 3.0).
 *
 * File: "\x93NUMPY", major, minor, header length (u16 for 1.x, u32 for 2.x
 * and 3.x, little-endian), then a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ended by '\n', then the raw C-order data. Only the
 * little-endian numeric dtypes the tests and goldens use are accepted; all
 * are converted to F32 or I32. */
#include "npy.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h"

/* Real headers are < 1 KB; anything large is corrupt. */
#define NPY_MAX_HEADER (1u << 20)

typedef enum npy_src { NPY_F2, NPY_F4, NPY_F8, NPY_I1, NPY_U1, NPY_I2, NPY_U2, NPY_I4, NPY_U4, NPY_I8 } npy_src;

static const struct {
    const char *descr; /* without the byte-order character */
    npy_src src;
    int size;
} npy_types[] = {
    {"f2", NPY_F2, 2}, {"f4", NPY_F4, 4}, {"f8", NPY_F8, 8}, {"i1", NPY_I1, 1}, {"u1", NPY_U1, 1},
    {"i2", NPY_I2, 2}, {"u2", NPY_U2, 2}, {"i4", NPY_I4, 4}, {"u4", NPY_U4, 4}, {"i8", NPY_I8, 8},
};

int64_t sd_npy_nelem(const sd_npy *a) {
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->ne[i];
    return n;
}

void sd_npy_free(sd_npy *a) {
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- header dict parser ---- */

typedef struct hparse {
    const char *s, *end;
    const char *path;
} hparse;

static void skip_ws(hparse *h) {
    while (h->s < h->end && (*h->s == ' ' || *h->s == '\t' || *h->s == '\n' || *h->s == '\r'))
        h->s++;
}

static int accept(hparse *h, char c) {
    skip_ws(h);
    if (h->s < h->end && *h->s == c) {
        h->s++;
        return 1;
    }
    return 0;
}

/* A quoted Python string (no escapes: numpy never writes them for these keys). */
static int parse_str(hparse *h, char *buf, size_t cap) {
    skip_ws(h);
    if (h->s >= h->end || (*h->s != '\'' && *h->s != '"'))
        return 0;
    char q = *h->s++;
    size_t n = 0;
    while (h->s < h->end && *h->s != q) {
        if (*h->s == '\\' || n + 1 >= cap)
            return 0;
        buf[n++] = *h->s++;
    }
    if (h->s >= h->end)
        return 0;
    h->s++;
    buf[n] = 0;
    return 1;
}

static int parse_word(hparse *h, const char *w) {
    skip_ws(h);
    size_t n = strlen(w);
    if ((size_t)(h->end - h->s) >= n && !memcmp(h->s, w, n)) {
        h->s += n;
        return 1;
    }
    return 0;
}

/* (d0, d1, ...) with optional trailing comma; Python 2 files may write 3L. */
static sdvk_status parse_shape(hparse *h, sd_npy *out) {
    if (!accept(h, '('))
        return sd_err(SDVK_ERR_FORMAT, "%s: npy header: 'shape' is not a tuple", h->path);
    out->ndim = 0;
    for (;;) {
        if (accept(h, ')'))
            return SDVK_OK;
        skip_ws(h);
        if (h->s >= h->end || *h->s < '0' || *h->s > '9')
            return sd_err(SDVK_ERR_FORMAT, "%s: npy header: bad 'shape' entry", h->path);
        if (out->ndim >= SD_NPY_MAX_DIMS)
            return sd_err(SDVK_ERR_FORMAT, "%s: npy header: more than %d dimensions", h->path,
                          SD_NPY_MAX_DIMS);
        int64_t v = 0;
        while (h->s < h->end && *h->s >= '0' && *h->s <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return sd_err(SDVK_ERR_FORMAT, "%s: npy header: absurd dimension", h->path);
            v = v * 10 + (*h->s++ - '0');
        }
        if (h->s < h->end && *h->s == 'L')
            h->s++;
        out->ne[out->ndim++] = v;
        if (accept(h, ')'))
            return SDVK_OK;
        if (!accept(h, ','))
            return sd_err(SDVK_ERR_FORMAT, "%s: npy header: bad 'shape' tuple", h->path);
    }
}

static sdvk_status parse_header(hparse *h, sd_npy *out, int *src_type, int *src_size) {
    char key[32], descr[32];
    int have_descr = 0, have_fo = 0, have_shape = 0;
    if (!accept(h, '{'))
        return sd_err(SDVK_ERR_FORMAT, "%s: npy header is not a dict", h->path);
    for (;;) {
        if (accept(h, '}'))
            break;
        if (!parse_str(h, key, sizeof key))
            return sd_err(SDVK_ERR_FORMAT, "%s: npy header: expected a quoted key", h->path);
        if (!accept(h, ':'))
            return sd_err(SDVK_ERR_FORMAT, "%s: npy header: expected ':' after '%s'", h->path,
                          key);
        if (!strcmp(key, "descr")) {
            if (have_descr++)
                return sd_err(SDVK_ERR_FORMAT, "%s: npy header: duplicate 'descr'", h->path);
            skip_ws(h);
            if (h->s < h->end && *h->s == '[')
                return sd_err(SDVK_ERR_UNSUPPORTED,
                              "%s: npy: structured dtypes are not supported", h->path);
            if (!parse_str(h, descr, sizeof descr))
                return sd_err(SDVK_ERR_FORMAT, "%s: npy header: bad 'descr'", h->path);
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fo++)
                return sd_err(SDVK_ERR_FORMAT, "%s: npy header: duplicate 'fortran_order'",
                              h->path);
            if (parse_word(h, "True"))
                return sd_err(SDVK_ERR_UNSUPPORTED,
                              "%s: npy: fortran_order arrays are not supported (save with C order)",
                              h->path);
            if (!parse_word(h, "False"))
                return sd_err(SDVK_ERR_FORMAT, "%s: npy header: bad 'fortran_order'", h->path);
        } else if (!strcmp(key, "shape")) {
            if (have_shape++)
                return sd_err(SDVK_ERR_FORMAT, "%s: npy header: duplicate 'shape'", h->path);
            SD_TRY(parse_shape(h, out));
        } else {
            return sd_err(SDVK_ERR_FORMAT, "%s: npy header: unexpected key '%s'", h->path, key);
        }
        if (accept(h, '}'))
            break;
        if (!accept(h, ','))
            return sd_err(SDVK_ERR_FORMAT, "%s: npy header: expected ',' or '}'", h->path);
    }
    skip_ws(h);
    if (h->s != h->end)
        return sd_err(SDVK_ERR_FORMAT, "%s: npy header: junk after the dict", h->path);
    if (!have_descr || !have_fo || !have_shape)
        return sd_err(SDVK_ERR_FORMAT, "%s: npy header lacks 'descr', 'fortran_order' or 'shape'",
                      h->path);

    if (strlen(descr) < 2)
        return sd_err(SDVK_ERR_FORMAT, "%s: npy header: bad 'descr' '%s'", h->path, descr);
    char bo = descr[0];
    const char *t = descr + 1;
    if (bo == '>')
        return sd_err(SDVK_ERR_UNSUPPORTED,
                      "%s: npy: big-endian dtype '%s' is not supported (save little-endian)",
                      h->path, descr);
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
        if (strcmp(t, npy_types[i].descr))
            continue;
        /* '|' (no byte order) is what numpy writes for 1-byte types. */
        if (bo == '<' || bo == '=' || (bo == '|' && npy_types[i].size == 1)) {
            *src_type = npy_types[i].src;
            *src_size = npy_types[i].size;
            out->dtype = (t[0] == 'f') ? SD_F32 : SD_I32;
            return SDVK_OK;
        }
    }
    return sd_err(SDVK_ERR_UNSUPPORTED,
                  "%s: npy: dtype '%s' is not supported (float f2/f4/f8 or integer i1..i8/u1..u4, "
                  "little-endian)",
                  h->path, descr);
}

/* ---- conversion ---- */

static sdvk_status convert(const char *path, const uint8_t *src, int type, size_t n, void *dst) {
    float *f = dst;
    int32_t *o = dst;
    for (size_t i = 0; i < n; i++) {
        switch ((npy_src)type) {
        case NPY_F2: {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
            f[i] = sd_f16_to_f32(v);
        } break;
        case NPY_F4: memcpy(&f[i], src + 4 * i, 4); break;
        case NPY_F8: {
            double d;
            memcpy(&d, src + 8 * i, 8);
            /* Converting an out-of-range double to float is undefined in C. */
            if (isfinite(d) && fabs(d) > FLT_MAX)
                f[i] = d > 0 ? INFINITY : -INFINITY;
            else
                f[i] = (float)d;
        } break;
        case NPY_I1: o[i] = (int8_t)src[i]; break;
        case NPY_U1: o[i] = src[i]; break;
        case NPY_I2: {
            int16_t v;
            memcpy(&v, src + 2 * i, 2);
            o[i] = v;
        } break;
        case NPY_U2: {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
            o[i] = v;
        } break;
        case NPY_I4: memcpy(&o[i], src + 4 * i, 4); break;
        case NPY_U4: {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            if (v > INT32_MAX)
                return sd_err(SDVK_ERR_FORMAT, "%s: npy: element %zu = %u does not fit in int32",
                              path, i, v);
            o[i] = (int32_t)v;
        } break;
        case NPY_I8: {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            if (v > INT32_MAX || v < INT32_MIN)
                return sd_err(SDVK_ERR_FORMAT,
                              "%s: npy: element %zu = %lld does not fit in int32", path, i,
                              (long long)v);
            o[i] = (int32_t)v;
        } break;
        }
    }
    return SDVK_OK;
}

/* Reads a .npy of fsize bytes from fp (a file or fmemopen'd memory). */
static sdvk_status npy_read(FILE *fp, uint64_t fsize, const char *path, sd_npy *out) {

    uint8_t pre[12];
    size_t got = fread(pre, 1, 10, fp);
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return sd_err(SDVK_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    int major = pre[6], minor = pre[7];
    uint64_t hlen, hstart;
    if (major == 1) {
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2)
            return sd_err(SDVK_ERR_FORMAT, "%s: npy: truncated preamble", path);
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 |
               (uint64_t)pre[11] << 24;
        hstart = 12;
    } else {
        return sd_err(SDVK_ERR_UNSUPPORTED, "%s: npy format version %d.%d is not supported", path,
                      major, minor);
    }
    if (hlen > NPY_MAX_HEADER)
        return sd_err(SDVK_ERR_FORMAT, "%s: npy header length %llu is absurd", path,
                      (unsigned long long)hlen);
    if (hstart + hlen > fsize)
        return sd_err(SDVK_ERR_FORMAT, "%s: npy: truncated header (%llu bytes declared)", path,
                      (unsigned long long)hlen);
    char *hdr = malloc(hlen ? hlen : 1);
    if (!hdr)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
    if (fread(hdr, 1, hlen, fp) != hlen) {
        free(hdr);
        return sd_err(SDVK_ERR_IO, "%s: read error in npy header", path);
    }
    hparse h = {hdr, hdr + hlen, path};
    int src_type = 0, src_size = 0;
    sdvk_status s = parse_header(&h, out, &src_type, &src_size);
    free(hdr);
    if (s != SDVK_OK)
        return s;

    /* Non-zero extents must multiply to at most the limit even when another
     * is zero, so that no caller's partial product of extents overflows. */
    uint64_t n = 1, nz = 1;
    int over = 0;
    for (int i = 0; i < out->ndim; i++) {
        uint64_t d = (uint64_t)out->ne[i];
        if (d && n > (UINT64_MAX >> 4) / d)
            return sd_err(SDVK_ERR_FORMAT,
                          "%s: npy: absurd shape (element count overflows; the limit is %lld "
                          "elements)",
                          path, (long long)SD_NPY_MAX_ELEMS);
        n *= d;
        if (d > (uint64_t)SD_NPY_MAX_ELEMS || (d && nz > (uint64_t)SD_NPY_MAX_ELEMS / d))
            over = 1;
        else if (d)
            nz *= d;
    }
    uint64_t avail = fsize - hstart - hlen, need = n * (uint64_t)src_size;
    if (need > avail)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: npy: truncated data: shape needs %llu bytes, file has %llu", path,
                      (unsigned long long)need, (unsigned long long)avail);
    if (over)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: npy: shape has more than %lld elements (the limit for arrays)", path,
                      (long long)SD_NPY_MAX_ELEMS);
    out->data = malloc(n ? (size_t)n * 4 : 1);
    uint8_t *raw = (src_type == NPY_F4 || src_type == NPY_I4) ? out->data : malloc(need ? (size_t)need : 1);
    if (!out->data || !raw) {
        if (raw != out->data)
            free(raw);
        return sd_err(SDVK_ERR_OOM, "%s: out of memory for %llu elements", path,
                      (unsigned long long)n);
    }
    if (fread(raw, 1, (size_t)need, fp) != need) {
        if (raw != out->data)
            free(raw);
        return sd_err(SDVK_ERR_IO, "%s: read error in npy data", path);
    }
    s = SDVK_OK;
    if (raw != out->data) {
        s = convert(path, raw, src_type, (size_t)n, out->data);
        free(raw);
    }
    return s;
}

sdvk_status sd_npy_load(const char *path, sd_npy *out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_npy_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_npy_load: empty path");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return sd_err(SDVK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    sdvk_status s;
    if (fstat(fileno(fp), &sb) != 0)
        s = sd_err(SDVK_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        s = sd_err(SDVK_ERR_IO, "%s: not a regular file", path);
    else
        s = npy_read(fp, (uint64_t)sb.st_size, path, out);
    fclose(fp);
    if (s != SDVK_OK)
        sd_npy_free(out);
    return s;
}

sdvk_status sd_npy_load_mem(const void *buf, size_t n, const char *name, sd_npy *out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_npy_load_mem: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name || !*name)
        name = "npy data";
    if (!buf || n < 10) /* fmemopen refuses size 0; a preamble is 10 bytes */
        return sd_err(SDVK_ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    FILE *fp = fmemopen((void *)buf, n, "rb");
    if (!fp)
        return sd_err(SDVK_ERR_OOM, "%s: cannot read from memory: %s", name, strerror(errno));
    sdvk_status s = npy_read(fp, (uint64_t)n, name, out);
    fclose(fp);
    if (s != SDVK_OK)
        sd_npy_free(out);
    return s;
}

sdvk_status sd_npy_save(const char *path, sd_dtype dtype, const void *data, int ndim,
                        const int64_t *ne) {
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_npy_save: empty path");
    if (dtype != SD_F32 && dtype != SD_I32)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: npy save supports F32 and I32, not %s", path,
                      sd_dtype_name(dtype));
    if (ndim < 0 || ndim > SD_NPY_MAX_DIMS || (ndim && !ne))
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: npy save: bad ndim %d", path, ndim);
    char hdr[512];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       dtype == SD_F32 ? "<f4" : "<i4");
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (ne[i] < 0 || (ne[i] && n > (UINT64_MAX >> 4) / (uint64_t)ne[i]))
            return sd_err(SDVK_ERR_INVALID_ARG, "%s: npy save: bad shape", path);
        n *= (uint64_t)ne[i];
        len += snprintf(hdr + len, sizeof hdr - (size_t)len, i ? ", %lld" : "%lld",
                        (long long)ne[i]);
    }
    if (n && !data)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: npy save: no data", path);
    /* A 1-tuple needs its trailing comma in Python. */
    len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%s), }", ndim == 1 ? "," : "");
    /* Pad with spaces so that the data starts at a multiple of 64 (10-byte
     * preamble + header ending in '\n'), as numpy does. */
    int total = (10 + len + 1 + 63) / 64 * 64;
    int hl = total - 10;
    memset(hdr + len, ' ', (size_t)(hl - 1 - len));
    hdr[hl - 1] = '\n';
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hl & 0xff), (uint8_t)(hl >> 8)};

    FILE *fp = fopen(path, "wb");
    if (!fp)
        return sd_err(SDVK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(hdr, 1, (size_t)hl, fp) == (size_t)hl &&
             (n == 0 || fwrite(data, 4, (size_t)n, fp) == (size_t)n);
    /* fclose flushes: its failure is a write failure too. */
    if (fclose(fp) != 0)
        ok = 0;
    if (!ok) {
        sdvk_status s = sd_err(SDVK_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        unlink(path);
        return s;
    }
    return SDVK_OK;
}
