/* A streaming safetensors writer: the header is planned from the tensors'
 * names, dtypes and shapes and written first, then the data tensor by
 * tensor in the order the writer asks for, in pieces of any size, so a
 * model is written with memory for one piece at a time. The file is made
 * under a temporary name beside the destination and renamed over it only
 * when complete: a failure or a cancel leaves no partial file, and the
 * destination may be one of the inputs (a mapping of the old file stays
 * valid). Layout as sd_st_write: header space-padded to a multiple of 8,
 * tensors gap-free by decreasing item size (then in the given order), so
 * every tensor is aligned to its item size. */
#ifndef SD_ST_STREAM_H
#define SD_ST_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

typedef struct sd_st_stream_item {
    const char *name;  /* copied */
    const char *dtype; /* a safetensors dtype name: "F32", "F16", "BF16", "I64", ... */
    int ndim;
    int64_t ne[SD_ST_MAX_DIMS];
} sd_st_stream_item;

typedef struct sd_st_stream sd_st_stream;

/* Checks the items (names unique and not "__metadata__", dtypes known,
 * sizes in range), creates the temporary file and writes the header with
 * meta_kv (n_meta key/value pairs: {k0, v0, k1, v1, ...}). */
sdvk_status sd_st_stream_open(const char *path, const sd_st_stream_item *items, int n,
                              const char *const *meta_kv, int n_meta, sd_st_stream **out);
/* Index into items of the tensor whose bytes come next (-1: all written),
 * and how many of its bytes are still due. */
int sd_st_stream_next(const sd_st_stream *w, uint64_t *bytes_left);
/* Appends bytes of the current tensor; a piece may not run past its end. */
sdvk_status sd_st_stream_write(sd_st_stream *w, const void *data, size_t n);
/* Checks every byte was written, then closes and renames the file into place. */
sdvk_status sd_st_stream_finish(sd_st_stream *w);
/* Frees the writer; the temporary file is removed unless finish succeeded. */
void sd_st_stream_free(sd_st_stream *w);

#endif
