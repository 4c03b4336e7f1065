/* PNG writing: stb_image_write plus a "parameters" text chunk that we
 * splice in ourselves (stb cannot write text chunks), and the output path
 * check. Decoding is in image_decode.c, resampling in image_resize.c. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../core/status.h"

/* zlib compresses better than stb's built-in deflate. */
static unsigned char *sd_png_deflate(unsigned char *data, int len, int *out_len, int quality) {
    uLongf cap = compressBound((uLong)len);
    unsigned char *out = malloc(cap);
    if (!out)
        return NULL;
    if (compress2(out, &cap, data, (uLong)len, quality > 9 ? 9 : quality) != Z_OK || cap > INT32_MAX) {
        free(out);
        return NULL;
    }
    *out_len = (int)cap;
    return out;
}

/* stb_image_write encodes our own pixels only (no untrusted input). Third-
 * party code: its warnings are silenced here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBIW_ZLIB_COMPRESS sd_png_deflate
#define STBIW_CRC32(buf, len) ((unsigned int)crc32(0L, (buf), (uInt)(len)))
#include <stb_image_write.h>
#pragma GCC diagnostic pop

static sdvk_status check_image(const sdvk_image *img, const char *what) {
    if (!img || !img->data)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: no image data", what);
    if (img->width < 1 || img->height < 1 || img->width > SD_IMAGE_MAX_SIDE ||
        img->height > SD_IMAGE_MAX_SIDE)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: bad image size %dx%d (1..%d per side)", what,
                      img->width, img->height, SD_IMAGE_MAX_SIDE);
    if (img->channels != 3)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: image has %d channels, expected 3 (RGB)", what,
                      img->channels);
    return SDVK_OK;
}

/* ---- PNG text chunk ---- */

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Decodes one UTF-8 sequence at s (n bytes left); an invalid byte is taken
 * as the Latin-1 character of the same value so no input is ever refused. */
static uint32_t utf8_next(const uint8_t *s, size_t n, size_t *len) {
    uint8_t c = s[0];
    int k = -1; /* continuation bytes */
    if (c < 0x80)
        k = 0;
    else if (c >= 0xc2 && c <= 0xdf)
        k = 1;
    else if (c >= 0xe0 && c <= 0xef)
        k = 2;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 3;
    if (k <= 0 || (size_t)k + 1 > n) {
        *len = 1;
        return c;
    }
    uint32_t cp = c & (0x3fu >> k);
    for (int i = 1; i <= k; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *len = 1;
            return c;
        }
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    /* Overlong forms, surrogates and > U+10FFFF are invalid too. */
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        *len = 1;
        return c;
    }
    *len = (size_t)k + 1;
    return cp;
}

static size_t utf8_put(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Builds the whole chunk (length, type, data, CRC). tEXt holds Latin-1, so
 * text with characters beyond U+00FF goes into an uncompressed iTXt chunk
 * (UTF-8), which is what PIL and A1111 do as well. */
static uint8_t *make_text_chunk(const char *text, size_t *chunk_len) {
    static const char kw[] = "parameters";
    const uint8_t *s = (const uint8_t *)text;
    size_t n = strlen(text), kwl = sizeof kw; /* keyword + NUL */
    /* Worst case: every input byte becomes a 2-byte UTF-8 sequence. */
    uint8_t *body = malloc(2 * n + 1);
    if (!body)
        return NULL;
    size_t bl = 0;
    int latin1 = 1;
    for (size_t i = 0, l; i < n; i += l)
        if (utf8_next(s + i, n - i, &l) > 0xff)
            latin1 = 0;
    for (size_t i = 0, l; i < n; i += l) {
        uint32_t cp = utf8_next(s + i, n - i, &l);
        if (latin1)
            body[bl++] = (uint8_t)cp;
        else
            bl += utf8_put(body + bl, cp);
    }
    size_t dl = kwl + (latin1 ? 0 : 4) + bl; /* iTXt: flag, method, lang\0, key\0 */
    uint8_t *c = malloc(12 + dl);
    if (!c || dl > 0x7fffffffu) {
        free(body);
        free(c);
        return NULL;
    }
    put_be32(c, (uint32_t)dl);
    memcpy(c + 4, latin1 ? "tEXt" : "iTXt", 4);
    memcpy(c + 8, kw, kwl);
    size_t o = 8 + kwl;
    if (!latin1) {
        memset(c + o, 0, 4); /* uncompressed, method 0, no language, no translated keyword */
        o += 4;
    }
    if (bl)
        memcpy(c + o, body, bl);
    free(body);
    put_be32(c + 8 + dl, (uint32_t)crc32(crc32(0L, Z_NULL, 0), c + 4, (uInt)(4 + dl)));
    *chunk_len = 12 + dl;
    return c;
}

static int write_all(int fd, const uint8_t *b, size_t n) {
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static atomic_uint tmp_counter;

/* Writes to "<path>.tmp.<pid>.<n>" in the same directory, then renames over
 * path, so a failure never leaves a half-written PNG under the final name. */
static sdvk_status write_file_atomic(const char *path, const uint8_t *parts[], const size_t lens[],
                                     int nparts) {
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 64);
    if (!tmp)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        snprintf(tmp, pl + 64, "%s.tmp.%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&tmp_counter, 1u));
        /* 0666 so the final file gets the usual umask-derived mode. */
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        sdvk_status s = sd_err(SDVK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return s;
    }
    int bad = 0;
    for (int i = 0; i < nparts && !bad; i++) bad = write_all(fd, parts[i], lens[i]);
    if (!bad)
        bad = fsync(fd);
    int err = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        err = errno;
    }
    if (bad) {
        unlink(tmp);
        free(tmp);
        return sd_err(SDVK_ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    free(tmp);
    return SDVK_OK;
}

sdvk_status sd_png_encode(const sdvk_image *img, const char *parameters, uint8_t **out,
                          size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    SD_TRY(check_image(img, "PNG"));
    int len = 0;
    uint8_t *png = stbi_write_png_to_mem(img->data, img->width * 3, img->width, img->height, 3,
                                         &len);
    if (!png)
        return sd_err(SDVK_ERR_OOM, "PNG encoding failed (out of memory)");
    /* stb writes the 8-byte signature then IHDR (length 13): 33 bytes. */
    const size_t ihdr_end = 8 + 12 + 13;
    if ((size_t)len < ihdr_end || memcmp(png + 12, "IHDR", 4) != 0) {
        free(png);
        return sd_err(SDVK_ERR_BACKEND, "unexpected PNG layout from the encoder");
    }
    uint8_t *chunk = NULL;
    size_t chunk_len = 0;
    if (parameters && !(chunk = make_text_chunk(parameters, &chunk_len))) {
        free(png);
        return sd_err(SDVK_ERR_OOM, "out of memory building the PNG text chunk");
    }
    uint8_t *all = malloc((size_t)len + chunk_len);
    if (!all) {
        free(png);
        free(chunk);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    memcpy(all, png, ihdr_end);
    if (chunk_len)
        memcpy(all + ihdr_end, chunk, chunk_len);
    memcpy(all + ihdr_end + chunk_len, png + ihdr_end, (size_t)len - ihdr_end);
    free(chunk);
    free(png);
    *out = all;
    *out_len = (size_t)len + chunk_len;
    return SDVK_OK;
}

sdvk_status sd_png_write(const char *path, const sdvk_image *img, const char *parameters) {
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_png_write: empty path");
    uint8_t *png;
    size_t n;
    sdvk_status s = sd_png_encode(img, parameters, &png, &n);
    if (s)
        return sd_err_prefix(s, "%s", path);
    const uint8_t *parts[1] = {png};
    size_t lens[1] = {n};
    s = write_file_atomic(path, parts, lens, 1);
    free(png);
    return s;
}

static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

sdvk_status sd_png_read_text(const void *data, size_t n, char **text) {
    *text = NULL;
    const uint8_t *p = data;
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10};
    if (!p || n < 8 || memcmp(p, sig, 8))
        return sd_err(SDVK_ERR_FORMAT, "not a PNG file");
    for (size_t o = 8; o + 12 <= n;) {
        uint32_t len = get_be32(p + o);
        if (len > n - o - 12)
            return sd_err(SDVK_ERR_FORMAT, "PNG chunk at %zu runs past the end", o);
        const uint8_t *type = p + o + 4, *d = p + o + 8;
        int t = !memcmp(type, "tEXt", 4), it = !memcmp(type, "iTXt", 4);
        if ((t || it) && len >= 11 && !memcmp(d, "parameters", 11)) {
            size_t skip = 11;
            if (it) { /* flag, method, language\0, translated keyword\0 */
                if (len < 13 || d[11] != 0)
                    return sd_err(SDVK_ERR_UNSUPPORTED, "compressed iTXt parameters are not supported");
                skip = 13;
                while (skip < len && d[skip]) skip++;
                skip++;
                while (skip < len && d[skip]) skip++;
                skip++;
                if (skip > len)
                    return sd_err(SDVK_ERR_FORMAT, "bad iTXt chunk");
            }
            size_t m = len - skip, k = 0;
            char *s = malloc(2 * m + 1);
            if (!s)
                return sd_err(SDVK_ERR_OOM, "out of memory");
            for (size_t i = 0; i < m; i++) {
                uint8_t c = d[skip + i];
                if (t && c >= 0x80) { /* Latin-1 -> UTF-8 */
                    s[k++] = (char)(0xc0 | (c >> 6));
                    s[k++] = (char)(0x80 | (c & 0x3f));
                } else {
                    s[k++] = (char)c;
                }
            }
            s[k] = 0;
            *text = s;
            return SDVK_OK;
        }
        if (!memcmp(type, "IEND", 4))
            break;
        o += 12 + (size_t)len;
    }
    return SDVK_OK;
}

sdvk_status sd_check_writable(const char *path) {
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "output path is empty");
    size_t pl = strlen(path);
    char *dir = malloc(pl + 2);
    if (!dir)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
    memcpy(dir, path, pl + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0; /* "/name" -> "/" */
    else
        *slash = 0;
    struct stat sb;
    sdvk_status s = SDVK_OK;
    if (stat(dir, &sb) != 0) {
        s = sd_err(SDVK_ERR_IO, "%s: cannot write: directory %s: %s", path, dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        s = sd_err(SDVK_ERR_IO, "%s: cannot write: %s is not a directory", path, dir);
    } else if (path[pl - 1] == '/') {
        s = sd_err(SDVK_ERR_INVALID_ARG, "%s: cannot write: the path names a directory", path);
    }
    free(dir);
    if (s != SDVK_OK)
        return s;

    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return sd_err(SDVK_ERR_IO, "%s: cannot write: it is a directory", path);
        if (!S_ISREG(sb.st_mode))
            return sd_err(SDVK_ERR_IO, "%s: cannot write: not a regular file", path);
        /* Opening for writing without O_TRUNC changes nothing in the file. */
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return sd_err(SDVK_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        return SDVK_OK;
    }
    if (errno != ENOENT)
        return sd_err(SDVK_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    /* Actually creating the file catches everything access() misses
     * (read-only mounts, name too long, ACLs); it is removed at once. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return sd_err(SDVK_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    close(fd);
    unlink(path);
    return SDVK_OK;
}
