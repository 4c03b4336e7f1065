/* Images from untrusted sources (files, and soon HTTP request bodies):
 *  - decoding (image_decode.c): PNG through libpng, JPEG through libjpeg-turbo
 *    (both fuzzed continuously upstream), BMP through stb_image compiled for
 *    BMP only (fuzzed here, tests/fuzz). Anything else, 16-bit PNG and
 *    CMYK JPEG included, is refused rather than converted. The pixel count is
 *    checked from the header before any pixel buffer is allocated;
 *  - resampling (image_resize.c): separable Lanczos-3 with the arithmetic of
 *    PIL's Image.resize(LANCZOS), which A1111 uses;
 *  - PNG writing (image.c) through stb_image_write with an A1111-style
 *    "parameters" text chunk. */
#ifndef SD_IMAGE_H
#define SD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "sdvk.h"

/* Hard cap per side for every image decoded, resized or written. */
#define SD_IMAGE_MAX_SIDE 16384
/* Default decode caps: 64 Mpx (an 8192x8192 RGB image is 192 MiB), and
 * 256 MiB of encoded input. */
#define SD_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)8192 * 8192)
#define SD_IMAGE_DEFAULT_MAX_BYTES ((size_t)256 << 20)
/* Progressive JPEG: each scan re-reads the whole coefficient image, so a
 * small file with thousands of scans costs minutes. Real encoders write
 * about 10. */
#define SD_IMAGE_JPEG_MAX_SCANS 100

/* Formats, for sd_image_limits.formats. */
enum { SD_IMAGE_PNG = 1, SD_IMAGE_JPEG = 2, SD_IMAGE_BMP = 4, SD_IMAGE_ANY = 7 };

/* What a caller accepts; a zero field means its default. Each refusal's
 * message names the limit and its value. */
typedef struct sd_image_limits {
    int64_t max_pixels; /* width * height, from the header (SD_IMAGE_DEFAULT_MAX_PIXELS) */
    int max_side;       /* width and height each (SD_IMAGE_MAX_SIDE; larger is clamped to it) */
    size_t max_bytes;   /* encoded size (SD_IMAGE_DEFAULT_MAX_BYTES) */
    unsigned formats;   /* SD_IMAGE_* mask of accepted formats (SD_IMAGE_ANY) */
    const char *name;   /* names the input in messages: a path, "request field mask" (NULL: "image") */
} sd_image_limits;

/* All defaults. */
void sd_image_limits_default(sd_image_limits *lim);

/* Decodes an encoded PNG/JPEG/BMP held in memory to 8-bit RGB (grey
 * expanded, palette expanded, alpha dropped, no gamma or colour management:
 * the stored values, as PIL gives them). lim may be NULL (all defaults).
 * On failure *out is zeroed and the message starts with lim->name. */
sdvk_status sd_image_load_mem(const void *buf, size_t n, const sd_image_limits *lim,
                              sdvk_image *out);
/* Reads the file (regular files only, size checked against max_bytes before
 * reading) and decodes it with sd_image_load_mem; lim->name defaults to path. */
sdvk_status sd_image_load_ex(const char *path, const sd_image_limits *lim, sdvk_image *out);
/* sd_image_load_ex with the default limits. */
sdvk_status sd_image_load(const char *path, sdvk_image *out);

/* Resamples to w x h (1..SD_IMAGE_MAX_SIDE each) with Lanczos-3, as
 * PIL's resize(LANCZOS): filter widened by the scale when shrinking (an area
 * average, no aliasing), 22-bit fixed-point weights, horizontal pass then
 * vertical, each rounded and clamped to 8 bits. 1, 3 or 4 channels (each
 * filtered alone; no alpha premultiplication). Same size: a copy. */
sdvk_status sd_image_resize(const sdvk_image *in, int w, int h, sdvk_image *out);

/* Writes an RGB8 PNG; `parameters` (may be NULL) goes into a tEXt chunk
 * with keyword "parameters". */
sdvk_status sd_png_write(const char *path, const sdvk_image *img, const char *parameters);
/* The same PNG in memory (*png malloc'd). */
sdvk_status sd_png_encode(const sdvk_image *img, const char *parameters, uint8_t **png,
                          size_t *n);
/* The "parameters" text (tEXt or uncompressed iTXt) of a PNG in memory, or
 * NULL when there is none; *text malloc'd (UTF-8). */
sdvk_status sd_png_read_text(const void *png, size_t n, char **text);
/* Checks that path can be created/overwritten (without leaving a file
 * behind that was not there). Message names the path. */
sdvk_status sd_check_writable(const char *path);

#endif
