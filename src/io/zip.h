/* Minimal read-only zip reader over a memory image (a mapped file), enough
 * for torch.save archives: central directory, zip64, stored and deflated
 * entries. Every offset and size from the file is checked against the
 * image before use. */
#ifndef SD_ZIP_H
#define SD_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "sdvk.h"

typedef struct sd_zip_entry {
    char *name;
    int method;        /* 0 stored, 8 deflated (others refused by sd_zip_get) */
    int flags;         /* general purpose flags (bit 0: encrypted) */
    uint32_t crc;
    uint64_t csize;    /* bytes in the archive */
    uint64_t usize;    /* bytes once extracted */
    uint64_t data_off; /* start of the entry's data in the image */
} sd_zip_entry;

typedef struct sd_zip {
    const char *label; /* names the archive in messages (not owned) */
    const uint8_t *base;
    uint64_t size;
    sd_zip_entry *e;
    int n;
} sd_zip;

/* 1 if the image starts like a zip archive (a local file header). */
int sd_zip_magic(const void *p, size_t n);
/* Reads the central directory. On failure *z is empty (sd_zip_close safe). */
sdvk_status sd_zip_open(const void *base, size_t size, const char *label, sd_zip *z);
void sd_zip_close(sd_zip *z);
const sd_zip_entry *sd_zip_find(const sd_zip *z, const char *name);
/* The entry's bytes. Stored: *data points into the image and *owned is NULL.
 * Deflated: inflated into a malloc'd *owned (= *data), refused when usize
 * exceeds max_inflate. check_crc verifies the CRC-32 (always for deflated
 * entries). */
sdvk_status sd_zip_get(const sd_zip *z, const sd_zip_entry *e, uint64_t max_inflate, int check_crc,
                       const uint8_t **data, void **owned);

#endif
