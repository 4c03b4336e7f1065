/* stb_image compiled for BMP only (stb_bmp.c), for image_decode.c. */
#ifndef SD_STB_BMP_H
#define SD_STB_BMP_H

#include <stdint.h>

/* Size from the header; 0 on failure (*why says why). */
int sd_stb_bmp_info(const uint8_t *buf, int n, int *w, int *h, const char **why);
/* 8-bit RGB pixels (malloc'd) or NULL (*why says why). */
uint8_t *sd_stb_bmp_load(const uint8_t *buf, int n, int *w, int *h, const char **why);

#endif
