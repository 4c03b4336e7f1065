/* .npy files (NumPy format 1.0/2.0/3.0, little-endian, C order). */
#ifndef SD_NPY_H
#define SD_NPY_H

#include <stdint.h>

#include "sdvk.h"
#include "tensor.h"

#define SD_NPY_MAX_DIMS 8
/* Largest array accepted: every extent, and the product of the non-zero
 * ones, at most 2^30 elements (4 GiB as float32). */
#define SD_NPY_MAX_ELEMS ((int64_t)1 << 30)

typedef struct sd_npy {
    sd_dtype dtype; /* SD_F32 (from f2/f4/f8) or SD_I32 (from i1..i8/u1..u4, range-checked) */
    int ndim;
    int64_t ne[SD_NPY_MAX_DIMS];
    void *data; /* malloc'd, C order */
} sd_npy;

/* Loads and converts to F32 or I32. Errors name the file and the problem
 * (bad magic, fortran order, big-endian, unsupported dtype, truncated...). */
sdvk_status sd_npy_load(const char *path, sd_npy *out);
/* The same from a .npy image in memory; name is used in messages. */
sdvk_status sd_npy_load_mem(const void *buf, size_t n, const char *name, sd_npy *out);
int64_t sd_npy_nelem(const sd_npy *a);
void sd_npy_free(sd_npy *a);
sdvk_status sd_npy_save(const char *path, sd_dtype dtype, const void *data, int ndim,
                        const int64_t *ne);

#endif
