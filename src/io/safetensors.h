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

/* A block of memory that tensors of a table point into: a read-only file
 * mapping (munmap'd on close, pages droppable by sd_st_release_pages) or a
 * malloc'd buffer (decompressed or re-laid-out data; freed on close). */
typedef struct sd_st_region {
    void *base;
    size_t size;
    int mapped;
} sd_st_region;

/* Limits on the header (each named in its error message): its length, as
 * the reference implementation caps it, and the memory its parsed JSON may
 * take, estimated from the text before parsing (a header of 100 MB of
 * "[0,0,..." would otherwise cost ~2 GB; a real checkpoint's header is
 * well under 1 MB and costs a few times its length). */
#define SD_ST_MAX_HEADER 100000000ull
#define SD_ST_MAX_HEADER_MEM (256ull << 20)

/* A table of named tensors. sd_st_open fills it from one safetensors file;
 * the other loaders (src/io/ckpt.h, diffusers.h, weights.h) build one from
 * several files or renamed keys with the functions below, so every consumer
 * (sd_st_find, sd_st_meta, sd_st_release_pages) works the same on all. */
typedef struct sd_safetensors {
    char *path;
    void *map;        /* the safetensors file's mapping (NULL for other tables) */
    size_t map_size;
    int owns_map;     /* 1: map is our mmap */
    sd_st_tensor *t; /* sorted by name */
    int n;
    char **meta_key, **meta_val; /* the "__metadata__" string map */
    int n_meta;
    sd_st_region *regions; /* further memory the tensors point into */
    int n_regions;
    int cap; /* capacity of t while a table is being built */
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

/* ---- building tables (src/io/table.c) ---- */

/* An empty table; `label` (a path) names it in messages. */
sdvk_status sd_st_new(const char *label, sd_safetensors **out);
/* Hands `base` to the table (freed or unmapped by sd_st_close). On failure
 * `base` is released at once. */
sdvk_status sd_st_adopt(sd_safetensors *st, void *base, size_t size, int mapped);
/* Appends a copy of *t named `name` (copied). The table is unsorted until
 * sd_st_seal. */
sdvk_status sd_st_add(sd_safetensors *st, const char *name, const sd_st_tensor *t);
/* Sorts by name and refuses duplicate names (message names both sources'
 * table). Call once after the last sd_st_add / sd_st_absorb. */
sdvk_status sd_st_seal(sd_safetensors *st);
/* Sets (or replaces) a metadata entry. */
sdvk_status sd_st_set_meta(sd_safetensors *st, const char *key, const char *val);
/* Renames one tensor during sd_st_absorb: write the new name into out
 * (size n) and return 1 to keep, 0 to leave it out, or -1 after sd_err to
 * fail. It may also re-view the shape (ndim/ne, same element count). */
typedef int (*sd_st_rename_fn)(void *ud, sd_st_tensor *t, char *out, size_t n);
/* Moves every tensor of `src` (renamed by fn when non-NULL) and all of its
 * memory into `dst`, then frees `src` (also on failure). Metadata of src is
 * not copied. dst must be sealed again afterwards. */
sdvk_status sd_st_absorb(sd_safetensors *dst, sd_safetensors *src, sd_st_rename_fn fn, void *ud);
/* Removes every tensor whose name starts with `prefix`; returns how many.
 * The memory they pointed into stays until sd_st_close. */
int sd_st_remove_prefix(sd_safetensors *st, const char *prefix);

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
