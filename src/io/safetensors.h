/* safetensors reader: mmaps the file and validates the header strictly
 * (size cap, JSON syntax, dtype names, shape × itemsize == byte length,
 * offsets inside the data area, no overlaps). */
#ifndef SD_SAFETENSORS_H
#define SD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/tensor.h"
#include "sdvk.h"

#define SD_ST_MAX_DIMS 8

typedef struct sd_st_tensor {
    char *name;
    char dtype_str[12];   /* as in the file: "F16", "I64", ... */
    int supported;        /* 1 if dtype is F32, F16 or BF16 (then `dtype` is valid) */
    sd_dtype dtype;
    int ndim;
    int64_t ne[SD_ST_MAX_DIMS];
    const void *data;     /* into the mapping. The format does not promise
                             alignment (the data area starts at 8 + header
                             length), so read through memcpy/unaligned loads
                             unless ((uintptr_t)data % itemsize) == 0. */
    size_t nbytes;
} sd_st_tensor;

/* Limits on the header (each named in its error message): its length, as
 * the reference implementation caps it, and the memory its parsed JSON may
 * take, estimated from the text before parsing (a header of 100 MB of
 * "[0,0,..." would otherwise cost ~2 GB; a real checkpoint's header is
 * well under 1 MB and costs a few times its length). */
#define SD_ST_MAX_HEADER 100000000ull
#define SD_ST_MAX_HEADER_MEM (256ull << 20)

typedef struct sd_safetensors {
    char *path;
    void *map;        /* the file mapping, or the caller's buffer (sd_st_open_mem) */
    size_t map_size;
    int owns_map;     /* 1: map is our mmap */
    sd_st_tensor *t; /* sorted by name */
    int n;
    char **meta_key, **meta_val; /* the "__metadata__" string map */
    int n_meta;
} sd_safetensors;

/* Opens and validates; on failure the message names the file (and tensor). */
sdvk_status sd_st_open(const char *path, sd_safetensors **out);
/* Same checks on a safetensors image in memory (a request body, a fuzz
 * input). Not copied: buf must outlive the handle. name is used in messages. */
sdvk_status sd_st_open_mem(const void *buf, size_t n, const char *name, sd_safetensors **out);
/* Estimated bytes the parsed JSON of a header text takes (an upper bound for
 * jansson 2.14 on 64-bit; tests/test_input_limits.c checks it). */
uint64_t sd_st_json_cost(const char *text, size_t n);
void sd_st_close(sd_safetensors *st);
/* NULL if absent. */
const sd_st_tensor *sd_st_find(const sd_safetensors *st, const char *name);
/* Drops the mapping's resident pages (they are re-read from the file on
 * the next access). Called once backends have converted or uploaded the
 * weights they need, so the raw checkpoint does not stay in memory next to
 * the backend's own copy. */
void sd_st_release_pages(const sd_safetensors *st);
/* Metadata value or NULL. */
const char *sd_st_meta(const sd_safetensors *st, const char *key);

/* Writer (tests/tools): tensors given as name/dtype/shape/data; meta_kv holds
 * n_meta key/value pairs as 2*n_meta strings {k0, v0, k1, v1, ...}. The header
 * is space-padded to a multiple of 8 and tensors are laid out gap-free by
 * decreasing item size, so every tensor in a written file is aligned. */
typedef struct sd_st_write_item {
    const char *name;
    sd_dtype dtype;
    int ndim;
    int64_t ne[SD_ST_MAX_DIMS];
    const void *data;
} sd_st_write_item;
sdvk_status sd_st_write(const char *path, const sd_st_write_item *items, int n,
                        const char *const *meta_kv, int n_meta);

#endif
