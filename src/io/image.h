/* Images: load (PNG/JPEG/BMP/... via stb_image) and PNG write with an
 * A1111-style "parameters" tEXt chunk. */
#ifndef SD_IMAGE_H
#define SD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "sdvk.h"

/* Loads as 8-bit RGB (alpha dropped, grey expanded). */
sdvk_status sd_image_load(const char *path, sdvk_image *out);
/* Resamples to w x h (bilinear/area as appropriate). */
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
