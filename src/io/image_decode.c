/* Decoding of untrusted images (see image.h).
 *
 * Why these decoders: libpng and libjpeg-turbo are fuzzed continuously
 * upstream (OSS-Fuzz) and patched by Debian; stb_image 2.27, which this file
 * used for every format, has known heap overflows in its PNM and JPEG paths
 * (CVE-2021-42716, an out-of-bounds Huffman table write). stb_image stays
 * for BMP only (compiled with STBI_ONLY_BMP, fed only after our own header
 * checks, and fuzzed in tests/fuzz/fuzz_image.c).
 *
 * The JPEG side uses the libjpeg API (libjpeg62-turbo-dev) rather than
 * TurboJPEG: it lets us install an error manager that returns instead of
 * exit(), turn corrupt-data warnings into errors, count progressive scans
 * from a progress monitor, cap libjpeg's own memory, and look at the header
 * before anything large is allocated.
 *
 * Every decoder checks width, height and width*height against the caller's
 * limits right after reading the header and before the pixel buffer (or a
 * decoder's own row or coefficient buffers) is allocated. */
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "../core/status.h"
#include "image.h"
#include "stb_bmp.h"


void sd_image_limits_default(sd_image_limits *lim) {
    memset(lim, 0, sizeof *lim);
    lim->max_pixels = SD_IMAGE_DEFAULT_MAX_PIXELS;
    lim->max_side = SD_IMAGE_MAX_SIDE;
    lim->max_bytes = SD_IMAGE_DEFAULT_MAX_BYTES;
    lim->formats = SD_IMAGE_ANY;
    lim->name = "image";
}

/* The caller's limits with defaults filled in (and the side clamped). */
static void resolve_limits(const sd_image_limits *in, sd_image_limits *o) {
    sd_image_limits_default(o);
    if (!in)
        return;
    if (in->max_pixels > 0)
        o->max_pixels = in->max_pixels;
    if (in->max_side > 0 && in->max_side < SD_IMAGE_MAX_SIDE)
        o->max_side = in->max_side;
    if (in->max_bytes > 0)
        o->max_bytes = in->max_bytes;
    if (in->formats)
        o->formats = in->formats & SD_IMAGE_ANY;
    if (in->name && in->name[0])
        o->name = in->name;
}

/* Width and height from a header against the limits, before any pixel
 * buffer exists. The message names the limit that was hit. */
static sdvk_status check_dims(const sd_image_limits *l, const char *fmt, uint64_t w, uint64_t h) {
    if (w < 1 || h < 1)
        return sd_err(SDVK_ERR_FORMAT, "%s: %s header declares an empty image (%llux%llu)", l->name,
                      fmt, (unsigned long long)w, (unsigned long long)h);
    if (w > (uint64_t)l->max_side || h > (uint64_t)l->max_side)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: %s image is %llux%llu, over the limit of %d pixels per side", l->name,
                      fmt, (unsigned long long)w, (unsigned long long)h, l->max_side);
    if (w * h > (uint64_t)l->max_pixels)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: %s image is %llux%llu (%.1f Mpx), over the limit of %lld pixels "
                      "(%.1f Mpx)",
                      l->name, fmt, (unsigned long long)w, (unsigned long long)h,
                      (double)(w * h) / 1e6, (long long)l->max_pixels,
                      (double)l->max_pixels / 1e6);
    return SDVK_OK;
}

/* ---- format detection ---- */

static int has_prefix(const uint8_t *b, size_t n, const char *p, size_t pn) {
    return n >= pn && memcmp(b, p, pn) == 0;
}

static int sniff(const uint8_t *b, size_t n) {
    if (has_prefix(b, n, "\x89PNG\r\n\x1a\n", 8))
        return SD_IMAGE_PNG;
    if (has_prefix(b, n, "\xff\xd8\xff", 3))
        return SD_IMAGE_JPEG;
    if (has_prefix(b, n, "BM", 2))
        return SD_IMAGE_BMP;
    return 0;
}

/* Names a format we recognise but refuse, for a clearer message. */
static const char *other_format(const uint8_t *b, size_t n) {
    if (has_prefix(b, n, "GIF8", 4))
        return "GIF";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
        return "WebP";
    if (has_prefix(b, n, "II*\0", 4) || has_prefix(b, n, "MM\0*", 4))
        return "TIFF";
    if (n >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' &&
        (b[2] == ' ' || b[2] == '\n' || b[2] == '\r' || b[2] == '\t'))
        return "PNM (PBM/PGM/PPM/PAM)";
    if (has_prefix(b, n, "8BPS", 4))
        return "PSD";
    if (has_prefix(b, n, "#?RADIANCE", 10) || has_prefix(b, n, "#?RGBE", 6))
        return "Radiance HDR";
    if (has_prefix(b, n, "qoif", 4))
        return "QOI";
    if (n >= 12 && !memcmp(b + 4, "ftyp", 4))
        return "HEIF/AVIF";
    if (has_prefix(b, n, "\0\0\0\x0cjP  ", 8) || has_prefix(b, n, "\xff\x4f\xff\x51", 4))
        return "JPEG 2000";
    if (has_prefix(b, n, "\0\0\1\0", 4))
        return "ICO";
    return NULL;
}

static const char *format_list(unsigned f, char *buf, size_t cap) {
    buf[0] = 0;
    const char *names[3] = {"PNG", "JPEG", "BMP"};
    size_t o = 0;
    int k = 0;
    for (int i = 0; i < 3; i++)
        if (f & (1u << i))
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", k++ ? ", " : "", names[i]);
    if (!k)
        snprintf(buf, cap, "none");
    return buf;
}

/* ---- PNG (libpng) ---- */

typedef struct png_job {
    const uint8_t *buf;
    size_t n, pos;
    const sd_image_limits *lim;
    png_structp png;
    png_infop info;
    uint8_t *px;
    png_bytep *rows;
    sdvk_status status; /* != OK: our own refusal, message already set */
    char msg[256];      /* libpng's error message */
} png_job;

static void png_read_cb(png_structp png, png_bytep out, size_t len) {
    png_job *j = png_get_io_ptr(png);
    if (len > j->n - j->pos)
        png_error(png, "truncated: the data ends early");
    memcpy(out, j->buf + j->pos, len);
    j->pos += len;
}

static void png_error_cb(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    if (!j->msg[0])
        snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

/* Warnings concern ancillary data we ignore anyway (PIL ignores them too). */
static void png_warn_cb(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* Ancillary chunks we have no use for: skipped unparsed (no zlib inflation
 * of iCCP/zTXt/iTXt, no tRNS alpha), which also keeps libpng's allocations
 * to IHDR, PLTE and the rows. */
static const png_byte png_skip_chunks[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0"
                                          "pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0"
                                          "tRNS\0zTXt";

/* Returns 0 on success; on failure j->status or j->msg says why. Locals are
 * not modified after setjmp; the state lives in *j. */
static int png_run(png_job *j, sdvk_image *out) {
    if (setjmp(png_jmpbuf(j->png)))
        return -1;
    png_structp png = j->png;
    png_infop info = j->info;
    png_set_read_fn(png, j, png_read_cb);
    /* Our own check below names our limit; libpng's own stays as a backstop. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_chunk_cache_max(png, 64);
    png_set_chunk_malloc_max(png, 1u << 20);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, png_skip_chunks,
                                (int)(sizeof png_skip_chunks / 5));
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if ((j->status = check_dims(j->lim, "PNG", w, h)) != SDVK_OK)
        return -1;
    if (depth > 8) {
        j->status = sd_err(SDVK_ERR_UNSUPPORTED,
                           "%s: %d-bit PNG images are not supported (save it with 8 bits per "
                           "channel)",
                           j->lim->name, depth);
        return -1;
    }
    if (ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    if (ctype & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_bit_depth(png, info) != 8 || png_get_channels(png, info) != 3 ||
        png_get_rowbytes(png, info) != (size_t)w * 3) {
        j->status = sd_err(SDVK_ERR_FORMAT, "%s: PNG colour type %d, depth %d: unexpected layout",
                           j->lim->name, ctype, depth);
        return -1;
    }
    j->px = malloc((size_t)w * h * 3);
    j->rows = malloc((size_t)h * sizeof *j->rows);
    if (!j->px || !j->rows) {
        j->status = sd_err(SDVK_ERR_OOM, "%s: out of memory for a %ux%u image", j->lim->name,
                           (unsigned)w, (unsigned)h);
        return -1;
    }
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->px + (size_t)y * w * 3;
    png_read_image(png, j->rows);
    /* Chunks after the image data (and IEND) are not needed: not read. */
    out->width = (int)w;
    out->height = (int)h;
    out->channels = 3;
    out->data = j->px;
    j->px = NULL;
    return 0;
}

static sdvk_status decode_png(const uint8_t *buf, size_t n, const sd_image_limits *lim,
                              sdvk_image *out) {
    png_job j;
    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.n = n;
    j.lim = lim;
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, png_error_cb, png_warn_cb);
    if (j.png)
        j.info = png_create_info_struct(j.png);
    if (!j.png || !j.info) {
        png_destroy_read_struct(j.png ? &j.png : NULL, NULL, NULL);
        return sd_err(SDVK_ERR_OOM, "%s: out of memory (PNG decoder)", lim->name);
    }
    int rc = png_run(&j, out);
    png_destroy_read_struct(&j.png, &j.info, NULL);
    free(j.rows);
    free(j.px);
    if (rc == 0)
        return SDVK_OK;
    memset(out, 0, sizeof *out);
    if (j.status != SDVK_OK)
        return j.status;
    return sd_err(SDVK_ERR_FORMAT, "%s: cannot decode PNG: %s", lim->name, j.msg);
}

/* ---- JPEG (libjpeg-turbo, libjpeg API) ---- */

typedef struct jpg_job {
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr err; /* d.err points here */
    struct jpeg_progress_mgr prog;
    jmp_buf jb;
    const sd_image_limits *lim;
    uint8_t *px;
    int created;
    sdvk_status status; /* != OK: our own refusal, message already set */
    char msg[JMSG_LENGTH_MAX + 64];
} jpg_job;

static jpg_job *jpg_of(j_common_ptr c) {
    return (jpg_job *)((char *)c->err - offsetof(jpg_job, err));
}

static void jpg_error_exit(j_common_ptr c) {
    jpg_job *j = jpg_of(c);
    if (!j->msg[0])
        c->err->format_message(c, j->msg);
    longjmp(j->jb, 1);
}

/* Warnings (level -1) about corrupt or missing data stop the decode: a
 * truncated file would otherwise come out grey-filled without a word. A
 * few harmless ones (junk between markers, unknown JFIF minor version,
 * Adobe transform code, bad ICC marker that we do not use) are let through;
 * trace messages (level >= 0) are ignored. */
static void jpg_emit(j_common_ptr c, int level) {
    if (level >= 0)
        return;
    int code = c->err->msg_code;
    if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM ||
        code == JWRN_BOGUS_ICC)
        return;
    jpg_job *j = jpg_of(c);
    if (!j->msg[0])
        c->err->format_message(c, j->msg);
    longjmp(j->jb, 1);
}

static void jpg_progress(j_common_ptr c) {
    jpg_job *j = jpg_of(c);
    if (c->is_decompressor && j->d.input_scan_number > SD_IMAGE_JPEG_MAX_SCANS) {
        j->status = sd_err(SDVK_ERR_FORMAT,
                           "%s: JPEG has more than %d scans (the limit for progressive JPEGs)",
                           j->lim->name, SD_IMAGE_JPEG_MAX_SCANS);
        longjmp(j->jb, 1);
    }
}

static int jpg_run(jpg_job *j, const uint8_t *buf, size_t n, sdvk_image *out) {
    if (setjmp(j->jb))
        return -1;
    j_decompress_ptr d = &j->d;
    jpeg_create_decompress(d);
    j->created = 1;
    /* libjpeg's own allocations (the whole-image coefficient buffer of a
     * progressive file: ~6 bytes per pixel) stay proportional to the pixel
     * limit; past it libjpeg stops with "Backing store not supported". */
    d->mem->max_memory_to_use = (long)(j->lim->max_pixels > (LONG_MAX - (64L << 20)) / 8
                                           ? LONG_MAX
                                           : j->lim->max_pixels * 8 + (64L << 20));
    j->prog.progress_monitor = jpg_progress;
    d->progress = &j->prog;
    jpeg_mem_src(d, buf, (unsigned long)n);
    jpeg_read_header(d, TRUE);
    if ((j->status = check_dims(j->lim, "JPEG", d->image_width, d->image_height)) != SDVK_OK)
        return -1;
    switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: break;
    case JCS_CMYK:
    case JCS_YCCK:
        j->status = sd_err(SDVK_ERR_UNSUPPORTED,
                           "%s: CMYK JPEG images are not supported (save it as RGB)", j->lim->name);
        return -1;
    default:
        j->status = sd_err(SDVK_ERR_UNSUPPORTED,
                           "%s: JPEG with %d components in an unknown colour space is not "
                           "supported",
                           j->lim->name, d->num_components);
        return -1;
    }
    d->out_color_space = JCS_RGB;
    jpeg_start_decompress(d);
    unsigned w = d->output_width, h = d->output_height;
    if (d->output_components != 3 || w != d->image_width || h != d->image_height) {
        j->status = sd_err(SDVK_ERR_FORMAT, "%s: JPEG decoder gave an unexpected layout",
                           j->lim->name);
        return -1;
    }
    j->px = malloc((size_t)w * h * 3);
    if (!j->px) {
        j->status = sd_err(SDVK_ERR_OOM, "%s: out of memory for a %ux%u image", j->lim->name, w, h);
        return -1;
    }
    while (d->output_scanline < h) {
        JSAMPROW row = j->px + (size_t)d->output_scanline * w * 3;
        if (jpeg_read_scanlines(d, &row, 1) != 1) {
            j->status = sd_err(SDVK_ERR_FORMAT, "%s: JPEG is truncated", j->lim->name);
            return -1;
        }
    }
    /* The rest of the file (after the last scan) is not needed. */
    out->width = (int)w;
    out->height = (int)h;
    out->channels = 3;
    out->data = j->px;
    j->px = NULL;
    return 0;
}

static sdvk_status decode_jpeg(const uint8_t *buf, size_t n, const sd_image_limits *lim,
                               sdvk_image *out) {
    if (n > ULONG_MAX)
        return sd_err(SDVK_ERR_FORMAT, "%s: JPEG too large", lim->name);
    jpg_job *j = calloc(1, sizeof *j);
    if (!j)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory (JPEG decoder)", lim->name);
    j->lim = lim;
    j->d.err = jpeg_std_error(&j->err);
    j->err.error_exit = jpg_error_exit;
    j->err.emit_message = jpg_emit;
    int rc = jpg_run(j, buf, n, out);
    if (j->created)
        jpeg_destroy_decompress(&j->d);
    free(j->px);
    sdvk_status s = SDVK_OK;
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        s = j->status != SDVK_OK
                ? j->status
                : sd_err(SDVK_ERR_FORMAT, "%s: cannot decode JPEG (corrupt or truncated): %s", lim->name,
                         j->msg[0] ? j->msg : "corrupt data");
    }
    free(j);
    return s;
}

/* ---- BMP (stb_image, BMP only, behind our own header checks) ---- */

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static sdvk_status decode_bmp(const uint8_t *buf, size_t n, const sd_image_limits *lim,
                              sdvk_image *out) {
    const char *nm = lim->name;
    if (n < 26)
        return sd_err(SDVK_ERR_FORMAT, "%s: BMP is truncated (%zu bytes)", nm, n);
    uint32_t off = le32(buf + 10), hsz = le32(buf + 14);
    int64_t w, h;
    uint32_t bpp, comp = 0;
    if (hsz == 12) { /* OS/2 BITMAPCOREHEADER: unsigned 16-bit sizes */
        w = le16(buf + 18);
        h = le16(buf + 20);
        bpp = le16(buf + 24);
    } else if (hsz == 40 || hsz == 52 || hsz == 56 || hsz == 108 || hsz == 124) {
        if (n < 14 + 20)
            return sd_err(SDVK_ERR_FORMAT, "%s: BMP is truncated (%zu bytes)", nm, n);
        w = (int32_t)le32(buf + 18);
        h = (int32_t)le32(buf + 22); /* negative: rows stored top-down */
        bpp = le16(buf + 28);
        comp = le32(buf + 30);
        if (h < 0)
            h = -h; /* int64: INT32_MIN is fine */
        if (w < 0)
            return sd_err(SDVK_ERR_FORMAT, "%s: BMP has a negative width", nm);
    } else {
        return sd_err(SDVK_ERR_UNSUPPORTED, "%s: BMP header of %u bytes is not supported", nm, hsz);
    }
    SD_TRY(check_dims(lim, "BMP", (uint64_t)w, (uint64_t)h));
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return sd_err(SDVK_ERR_UNSUPPORTED, "%s: BMP with %u bits per pixel is not supported", nm,
                      bpp);
    if (comp != 0 && comp != 3)
        return sd_err(SDVK_ERR_UNSUPPORTED,
                      "%s: compressed BMP (compression %u) is not supported; save it "
                      "uncompressed",
                      nm, comp);
    /* All rows must be there (stb would fill missing ones with zeros). */
    uint64_t row = ((uint64_t)w * bpp + 31) / 32 * 4;
    if (off > n || row * (uint64_t)h > n - off)
        return sd_err(SDVK_ERR_FORMAT, "%s: BMP is truncated: %llu bytes of pixels expected", nm,
                      (unsigned long long)(row * (uint64_t)h));
    if (n > INT_MAX)
        return sd_err(SDVK_ERR_FORMAT, "%s: BMP too large", nm);
    int sw = 0, sh = 0;
    const char *why = NULL;
    /* stb's info reports a top-down image's height as negative. */
    if (!sd_stb_bmp_info(buf, (int)n, &sw, &sh, &why) || sw != w || (sh < 0 ? -(int64_t)sh : sh) != h)
        return sd_err(SDVK_ERR_FORMAT, "%s: cannot decode BMP: %s", nm, why ? why : "bad header");
    uint8_t *px = sd_stb_bmp_load(buf, (int)n, &sw, &sh, &why);
    if (!px)
        return sd_err(SDVK_ERR_FORMAT, "%s: cannot decode BMP: %s", nm, why ? why : "corrupt data");
    if (sw != w || sh != h) {
        free(px);
        return sd_err(SDVK_ERR_FORMAT, "%s: BMP decoder gave an unexpected size", nm);
    }
    out->width = sw;
    out->height = sh;
    out->channels = 3;
    out->data = px; /* stb allocates with malloc: sdvk_image_free's free() matches */
    return SDVK_OK;
}

/* ---- entry points ---- */

sdvk_status sd_image_load_mem(const void *buf, size_t n, const sd_image_limits *lim_in,
                              sdvk_image *out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_image_load_mem: out is NULL");
    memset(out, 0, sizeof *out);
    sd_image_limits lim;
    resolve_limits(lim_in, &lim);
    if (!buf && n)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: no data", lim.name);
    if (n == 0)
        return sd_err(SDVK_ERR_FORMAT, "%s: empty image data", lim.name);
    if (n > lim.max_bytes)
        return sd_err(SDVK_ERR_FORMAT, "%s: image data is %zu bytes, over the limit of %zu bytes",
                      lim.name, n, lim.max_bytes);
    const uint8_t *b = buf;
    int f = sniff(b, n);
    char list[32];
    if (!f) {
        const char *other = other_format(b, n);
        if (other)
            return sd_err(SDVK_ERR_UNSUPPORTED, "%s: %s images are not supported (%s)", lim.name,
                          other, format_list(lim.formats, list, sizeof list));
        return sd_err(SDVK_ERR_FORMAT, "%s: unknown image format (%s expected)", lim.name,
                      format_list(lim.formats, list, sizeof list));
    }
    if (!(f & (int)lim.formats))
        return sd_err(SDVK_ERR_UNSUPPORTED, "%s: %s images are not accepted here (%s)", lim.name,
                      format_list((unsigned)f, list, sizeof list),
                      format_list(lim.formats, list + 16, sizeof list - 16));
    if (f == SD_IMAGE_PNG)
        return decode_png(b, n, &lim, out);
    if (f == SD_IMAGE_JPEG)
        return decode_jpeg(b, n, &lim, out);
    return decode_bmp(b, n, &lim, out);
}

sdvk_status sd_image_load_ex(const char *path, const sd_image_limits *lim_in, sdvk_image *out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_image_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_image_load: empty path");
    sd_image_limits lim;
    resolve_limits(lim_in, &lim);
    if (!lim_in || !lim_in->name || !lim_in->name[0])
        lim.name = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sd_err(SDVK_ERR_IO, "%s: cannot open image: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sd_err(SDVK_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > lim.max_bytes) {
        close(fd);
        return sd_err(SDVK_ERR_FORMAT, "%s: image file is %lld bytes, over the limit of %zu bytes",
                      lim.name, (long long)sb.st_size, lim.max_bytes);
    }
    size_t n = (size_t)sb.st_size, got = 0;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return sd_err(SDVK_ERR_OOM, "%s: out of memory reading the image", path);
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    int err = errno;
    close(fd);
    if (got != n) {
        free(buf);
        return sd_err(SDVK_ERR_IO, "%s: read error: %s", path, got < n ? strerror(err) : "?");
    }
    sdvk_status s = sd_image_load_mem(buf, n, &lim, out);
    free(buf);
    return s;
}

sdvk_status sd_image_load(const char *path, sdvk_image *out) {
    return sd_image_load_ex(path, NULL, out);
}
