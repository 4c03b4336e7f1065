/* Streaming safetensors writer (see st_stream.h). */
#include "st_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/status.h"

typedef struct ord {
    int idx;
    size_t isz;
    uint64_t nbytes;
} ord;

struct sd_st_stream {
    char *path, *tmp;
    int fd;
    ord *order;
    int n, cur;      /* cur: position in order of the tensor being written */
    uint64_t left;   /* bytes of it still due */
    int done;
};

static int cmp_ord(const void *a, const void *b) {
    const ord *x = a, *y = b;
    if (x->isz != y->isz)
        return x->isz > y->isz ? -1 : 1;
    return x->idx - y->idx;
}

static int write_all(int fd, const void *buf, size_t n) {
    const unsigned char *b = buf;
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

/* Skips tensors of zero bytes so cur names one that still needs data. */
static void advance(sd_st_stream *w) {
    while (w->cur < w->n && w->left == 0) {
        w->cur++;
        if (w->cur < w->n)
            w->left = w->order[w->cur].nbytes;
    }
}

static sdvk_status make_header(const char *path, const sd_st_stream_item *items, int n,
                               const ord *order, const char *const *meta_kv, int n_meta,
                               char **out) {
    json_t *root = json_object();
    if (!root)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
    sdvk_status s = SDVK_OK;
    uint64_t off = 0;
    for (int k = 0; k < n && !s; k++) {
        const sd_st_stream_item *it = &items[order[k].idx];
        if (json_object_get(root, it->name)) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%s\" given twice", path, it->name);
            break;
        }
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        int bad = !e || !shape || !offs;
        for (int d = 0; !bad && d < it->ndim; d++)
            bad = json_array_append_new(shape, json_integer(it->ne[d])) != 0;
        bad = bad || json_array_append_new(offs, json_integer((json_int_t)off)) ||
              json_array_append_new(offs, json_integer((json_int_t)(off + order[k].nbytes)));
        if (bad) {
            json_decref(e);
            json_decref(shape);
            json_decref(offs);
            s = sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
            break;
        }
        /* the _new setters take the value over, also when they fail */
        bad = json_object_set_new(e, "dtype", json_string(it->dtype)) |
              json_object_set_new(e, "shape", shape) | json_object_set_new(e, "data_offsets", offs);
        if (json_object_set_new(root, it->name, e) || bad)
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%.80s\": cannot be put in the header "
                       "(out of memory, or a name that is not UTF-8)", path, it->name);
        off += order[k].nbytes;
    }
    if (!s && n_meta) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, "__metadata__", meta))
            s = sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
        for (int i = 0; !s && i < n_meta; i++) {
            if (!meta_kv[2 * i] || !meta_kv[2 * i + 1])
                s = sd_err(SDVK_ERR_INVALID_ARG, "%s: metadata entry %d is NULL", path, i);
            else if (json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1])))
                s = sd_err(SDVK_ERR_INVALID_ARG, "%s: metadata \"%.60s\" is not valid UTF-8", path,
                           meta_kv[2 * i]);
        }
    }
    char *h = s ? NULL : json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!s && !h)
        s = sd_err(SDVK_ERR_OOM, "%s: cannot serialise the header", path);
    *out = h;
    return s;
}

sdvk_status sd_st_stream_open(const char *path, const sd_st_stream_item *items, int n,
                              const char *const *meta_kv, int n_meta, sd_st_stream **out) {
    *out = NULL;
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "safetensors writer: empty path");
    if (n < 0 || n_meta < 0 || (n && !items) || (n_meta && !meta_kv))
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: bad tensor or metadata list", path);
    sd_st_stream *w = calloc(1, sizeof *w);
    if (!w)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
    w->fd = -1;
    w->n = n;
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 16);
    w->order = calloc((size_t)(n ? n : 1), sizeof *w->order);
    sdvk_status s = SDVK_OK;
    char *hdr = NULL;
    if (!w->path || !w->tmp || !w->order) {
        s = sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        const sd_st_stream_item *it = &items[i];
        size_t isz = sd_st_dtype_itemsize(it->dtype);
        if (!it->name || !*it->name || !strcmp(it->name, "__metadata__")) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor %d: missing or reserved name", path, i);
            goto fail;
        }
        if (!isz) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%s\": unknown dtype \"%s\"", path,
                       it->name, it->dtype ? it->dtype : "(null)");
            goto fail;
        }
        if (it->ndim < 0 || it->ndim > SD_ST_MAX_DIMS) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%s\": %d dimensions", path, it->name,
                       it->ndim);
            goto fail;
        }
        uint64_t ne = 1;
        for (int d = 0; d < it->ndim; d++) {
            if (it->ne[d] < 0 || (it->ne[d] && ne > (uint64_t)INT64_MAX / 16 / (uint64_t)it->ne[d])) {
                s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%s\": bad shape", path, it->name);
                goto fail;
            }
            ne *= (uint64_t)it->ne[d];
        }
        w->order[i] = (ord){i, isz, ne * isz};
    }
    qsort(w->order, (size_t)n, sizeof *w->order, cmp_ord);
    if ((s = make_header(path, items, n, w->order, meta_kv, n_meta, &hdr)))
        goto fail;
    /* beside the destination, so the final rename stays on one file system */
    snprintf(w->tmp, strlen(path) + 16, "%s.tmp-XXXXXX", path);
    w->fd = mkstemp(w->tmp);
    if (w->fd < 0) {
        s = sd_err(SDVK_ERR_IO, "%s: cannot create a file there: %s", path, strerror(errno));
        w->tmp[0] = 0;
        goto fail;
    }
    mode_t um = umask(0);
    umask(um);
    if (fchmod(w->fd, 0666 & ~um)) { /* mkstemp makes it 0600 */
        s = sd_err(SDVK_ERR_IO, "%s: %s", w->tmp, strerror(errno));
        goto fail;
    }
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
    unsigned char pre[8];
    for (int i = 0; i < 8; i++) pre[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    if (write_all(w->fd, pre, 8) || write_all(w->fd, hdr, hl) || write_all(w->fd, spaces, padded - hl)) {
        s = sd_err(SDVK_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
        goto fail;
    }
    free(hdr);
    w->cur = 0;
    w->left = n ? w->order[0].nbytes : 0;
    advance(w);
    *out = w;
    return SDVK_OK;
fail:
    free(hdr);
    sd_st_stream_free(w);
    return s;
}

int sd_st_stream_next(const sd_st_stream *w, uint64_t *bytes_left) {
    if (bytes_left)
        *bytes_left = w && w->cur < w->n ? w->left : 0;
    return w && w->cur < w->n ? w->order[w->cur].idx : -1;
}

sdvk_status sd_st_stream_write(sd_st_stream *w, const void *data, size_t n) {
    if (!w || w->fd < 0)
        return sd_err(SDVK_ERR_INVALID_ARG, "safetensors writer: not open");
    if (w->cur >= w->n || n > w->left)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: %zu bytes past the end of the tensor data",
                      w->path, n);
    if (write_all(w->fd, data, n))
        return sd_err(SDVK_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->left -= n;
    advance(w);
    return SDVK_OK;
}

sdvk_status sd_st_stream_finish(sd_st_stream *w) {
    if (!w || w->fd < 0)
        return sd_err(SDVK_ERR_INVALID_ARG, "safetensors writer: not open");
    if (w->cur < w->n)
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: %d tensors not written yet", w->path,
                      w->n - w->cur);
    int fd = w->fd;
    w->fd = -1;
    if (fsync(fd) && errno != EINVAL && errno != EROFS) {
        sdvk_status s = sd_err(SDVK_ERR_IO, "%s: %s", w->tmp, strerror(errno));
        close(fd);
        return s;
    }
    if (close(fd))
        return sd_err(SDVK_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    if (rename(w->tmp, w->path))
        return sd_err(SDVK_ERR_IO, "%s: cannot move %s into place: %s", w->path, w->tmp,
                      strerror(errno));
    w->done = 1;
    return SDVK_OK;
}

void sd_st_stream_free(sd_st_stream *w) {
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (!w->done && w->tmp && w->tmp[0])
        unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w->order);
    free(w);
}
