/* safetensors reader/writer.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, data area.
 * The reader maps the file read-only and trusts nothing in the header:
 * every size, offset and dtype is checked before a pointer into the
 * mapping is handed out. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/status.h"

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"U16", 2}, {"I16", 2},     {"F16", 2},
    {"BF16", 2}, {"U32", 4}, {"I32", 4}, {"F32", 4}, {"F64", 8},     {"U64", 8},
    {"I64", 8},  {"F8_E4M3", 1},         {"F8_E5M2", 1},
};

static size_t st_dtype_size(const char *s) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(st_dtypes[i].name, s))
            return st_dtypes[i].size;
    return 0;
}

void sd_st_close(sd_safetensors *st) {
    if (!st)
        return;
    if (st->owns_map && st->map && st->map != MAP_FAILED)
        munmap(st->map, st->map_size);
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    free(st->t);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_key[i]);
        free(st->meta_val[i]);
    }
    free(st->meta_key);
    free(st->meta_val);
    for (int i = 0; i < st->n_regions; i++) {
        if (st->regions[i].mapped)
            munmap(st->regions[i].base, st->regions[i].size);
        else
            free(st->regions[i].base);
    }
    free(st->regions);
    free(st->path);
    free(st);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const sd_st_tensor *)a)->name, ((const sd_st_tensor *)b)->name);
}

/* Sorting by start offset for the overlap check. */
typedef struct st_range {
    uint64_t begin, end;
    int idx;
} st_range;

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static sdvk_status parse_metadata(sd_safetensors *st, json_t *meta) {
    if (!json_is_object(meta))
        return sd_err(SDVK_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", st->path);
    size_t n = json_object_size(meta);
    st->meta_key = calloc(n ? n : 1, sizeof(char *));
    st->meta_val = calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_key || !st->meta_val)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory reading metadata", st->path);
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return sd_err(SDVK_ERR_FORMAT, "%s: metadata value for \"%s\" is not a string", st->path,
                          k);
        char *kd = strdup(k), *vd = strdup(json_string_value(v));
        if (!kd || !vd) {
            free(kd);
            free(vd);
            return sd_err(SDVK_ERR_OOM, "%s: out of memory reading metadata", st->path);
        }
        st->meta_key[st->n_meta] = kd;
        st->meta_val[st->n_meta] = vd;
        st->n_meta++;
    }
    return SDVK_OK;
}

/* "[d0, d1, ...]" of a JSON shape array whose entries are integers. */
static const char *shape_str(json_t *js, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < json_array_size(js) && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "",
                              (long long)json_integer_value(json_array_get(js, i)));
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

/* Fills t (name already set) from one header entry. */
static sdvk_status parse_entry(const sd_safetensors *st, sd_st_tensor *t, json_t *e,
                               const uint8_t *data, uint64_t data_size) {
    const char *p = st->path, *nm = t->name;
    if (!json_is_object(e))
        return sd_err(SDVK_ERR_FORMAT, "%s: tensor \"%s\": entry is not a JSON object", p, nm);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd))
        return sd_err(SDVK_ERR_FORMAT, "%s: tensor \"%s\": missing or non-string \"dtype\"", p, nm);
    const char *ds = json_string_value(jd);
    size_t isz = st_dtype_size(ds);
    if (!isz)
        return sd_err(SDVK_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.32s\"", p, nm, ds);
    snprintf(t->dtype_str, sizeof t->dtype_str, "%s", ds);
    t->dtype = SD_F32;
    t->supported = 1;
    if (!strcmp(ds, "F16"))
        t->dtype = SD_F16;
    else if (!strcmp(ds, "BF16"))
        t->dtype = SD_BF16;
    else if (strcmp(ds, "F32"))
        t->supported = 0;

    if (!json_is_array(js))
        return sd_err(SDVK_ERR_FORMAT, "%s: tensor \"%s\": missing or non-array \"shape\"", p, nm);
    size_t nd = json_array_size(js);
    if (nd > SD_ST_MAX_DIMS)
        return sd_err(SDVK_ERR_FORMAT, "%s: tensor \"%s\": %zu dimensions (at most %d supported)", p,
                      nm, nd, SD_ST_MAX_DIMS);
    t->ndim = (int)nd;
    char sbuf[200];
    uint64_t nelem = 1;
    int zero = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return sd_err(SDVK_ERR_FORMAT,
                          "%s: tensor \"%s\": shape[%zu] is not a non-negative integer", p, nm, i);
        uint64_t v = (uint64_t)json_integer_value(d);
        t->ne[i] = (int64_t)v;
        if (v == 0)
            zero = 1;
        else if (!zero && nelem > (uint64_t)INT64_MAX / v)
            return sd_err(SDVK_ERR_FORMAT,
                          "%s: tensor \"%s\": shape %s has more than 2^63 elements (the limit of "
                          "64-bit sizes)",
                          p, nm, shape_str(js, sbuf, sizeof sbuf));
        else if (!zero)
            nelem *= v;
    }
    if (zero)
        nelem = 0;
    if (nelem > (uint64_t)INT64_MAX / isz)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: tensor \"%s\": shape %s x %s is more than 2^63 bytes (the limit of "
                      "64-bit sizes)",
                      p, nm, shape_str(js, sbuf, sizeof sbuf), ds);
    uint64_t nbytes = nelem * isz;

    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        !json_is_integer(json_array_get(jo, 0)) || !json_is_integer(json_array_get(jo, 1)))
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: tensor \"%s\": \"data_offsets\" is not a [begin, end] integer pair", p,
                      nm);
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t en = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || en < b)
        return sd_err(SDVK_ERR_FORMAT, "%s: tensor \"%s\": bad data_offsets [%lld, %lld]", p, nm,
                      (long long)b, (long long)en);
    if ((uint64_t)en > data_size)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: tensor \"%s\": data_offsets [%lld, %lld] past the end of the data area "
                      "(%llu bytes; file truncated?)",
                      p, nm, (long long)b, (long long)en, (unsigned long long)data_size);
    if ((uint64_t)(en - b) != nbytes)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: tensor \"%s\": data_offsets span %lld bytes but shape x %s needs %llu", p,
                      nm, (long long)(en - b), ds, (unsigned long long)nbytes);
    t->data = data + b;
    t->nbytes = (size_t)nbytes;
    return SDVK_OK;
}

/* Cost model of jansson 2.14 (64-bit glibc: each malloc takes its size
 * rounded up to 16 plus 8 bytes of header, at least 32): a number is a
 * 24-byte json_t (32); a string a 32-byte json_t (48) plus its text (>= 32);
 * an array a 40-byte json_t (48) plus a table of 8 pointers (80) that
 * doubles (at most 16 bytes per element, plus the old table while it
 * grows: 24); an object a json_t with its hashtable (96) plus 8 buckets of
 * 16 bytes (144) that double as members arrive, and per member a pair of
 * ~56 bytes plus the key (88 + key length), plus 32 bytes of buckets. Each
 * term below is rounded up from these, so the sum bounds the real use. The
 * lexer also keeps one buffer for the current token (a string, a number,
 * or a run of letters it reads as a would-be true/false/null; grown by
 * doubling, never shrunk), and a string is copied out of it: up to 3x the
 * longest token, plus its fixed allocations, added once. */
#define JC_NUMBER 48u   /* value + its slot in the parent */
#define JC_STRING 96u   /* json_t + text allocation overhead + slot (+ text length) */
#define JC_ARRAY 160u   /* json_t + initial table + slot */
#define JC_OBJECT 288u  /* json_t + hashtable + initial buckets + slot */
#define JC_ELEMENT 40u  /* per comma: table growth of arrays, a pair of objects */

uint64_t sd_st_json_cost(const char *text, size_t n) {
    uint64_t cost = 0;
    size_t i = 0, longest = 0;
    while (i < n) {
        char c = text[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < n && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
            cost += JC_STRING + (j - i) + JC_ELEMENT; /* a key's pair costs about as much */
            longest = j - i > longest ? j - i : longest;
            i = j + 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < n && (text[j] == '-' || text[j] == '+' || text[j] == '.' || text[j] == 'e' ||
                             text[j] == 'E' || (text[j] >= '0' && text[j] <= '9')))
                j++;
            cost += JC_NUMBER;
            longest = j - i > longest ? j - i : longest;
            i = j;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t j = i; /* true/false/null are shared singletons: no value cost */
            while (j < n && ((text[j] >= 'a' && text[j] <= 'z') || (text[j] >= 'A' && text[j] <= 'Z')))
                j++;
            longest = j - i > longest ? j - i : longest;
            i = j;
        } else {
            if (c == '[')
                cost += JC_ARRAY;
            else if (c == '{')
                cost += JC_OBJECT;
            else if (c == ',')
                cost += JC_ELEMENT;
            i++;
        }
    }
    return cost + 3 * (uint64_t)longest + 256;
}

/* Parses and validates the whole file image m[0, size). */
static sdvk_status st_parse_buf(sd_safetensors *st, const uint8_t *m, size_t size) {
    const char *p = st->path;
    if (size < 8)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: file is %zu bytes, too short for a safetensors header (8-byte length)", p,
                      size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | m[i];
    uint64_t avail = (uint64_t)size - 8;
    if (hlen == 0)
        return sd_err(SDVK_ERR_FORMAT, "%s: header length is 0 (not a safetensors file?)", p);
    if (hlen > SD_ST_MAX_HEADER)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: header length %llu exceeds the cap of %llu bytes (not a safetensors "
                      "file?)",
                      p, (unsigned long long)hlen, SD_ST_MAX_HEADER);
    if (hlen > avail)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: header length %llu is larger than the rest of the file (%llu bytes; "
                      "truncated?)",
                      p, (unsigned long long)hlen, (unsigned long long)avail);
    uint64_t cost = sd_st_json_cost((const char *)m + 8, (size_t)hlen);
    if (cost > SD_ST_MAX_HEADER_MEM)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: the %llu-byte header would take about %llu MB parsed, over the limit of "
                      "%llu MB for a safetensors header's memory",
                      p, (unsigned long long)hlen, (unsigned long long)(cost >> 20),
                      SD_ST_MAX_HEADER_MEM >> 20);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)m + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return sd_err(SDVK_ERR_FORMAT, "%s: header is not valid JSON: %s (line %d, column %d)", p,
                      jerr.text, jerr.line, jerr.column);
    sdvk_status s = SDVK_OK;
    st_range *ranges = NULL;
    if (!json_is_object(root)) {
        s = sd_err(SDVK_ERR_FORMAT, "%s: header is JSON but not an object", p);
        goto done;
    }
    const uint8_t *data = m + 8 + hlen;
    uint64_t data_size = avail - hlen;
    size_t n = json_object_size(root);
    st->t = calloc(n ? n : 1, sizeof *st->t);
    st->cap = st->t ? (int)(n ? n : 1) : 0;
    ranges = calloc(n ? n : 1, sizeof *ranges);
    if (!st->t || !ranges) {
        s = sd_err(SDVK_ERR_OOM, "%s: out of memory reading header", p);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (st->meta_key) {
                s = sd_err(SDVK_ERR_FORMAT, "%s: duplicate \"__metadata__\"", p);
                goto done;
            }
            if ((s = parse_metadata(st, val)) != SDVK_OK)
                goto done;
            continue;
        }
        sd_st_tensor *t = &st->t[st->n];
        if (!(t->name = strdup(key))) {
            s = sd_err(SDVK_ERR_OOM, "%s: out of memory reading header", p);
            goto done;
        }
        st->n++;
        if ((s = parse_entry(st, t, val, data, data_size)) != SDVK_OK)
            goto done;
    }

    /* No two tensors may share bytes (empty tensors occupy none). */
    int nr = 0;
    for (int i = 0; i < st->n; i++) {
        if (!st->t[i].nbytes)
            continue;
        uint64_t b = (uint64_t)((const uint8_t *)st->t[i].data - data);
        ranges[nr++] = (st_range){b, b + st->t[i].nbytes, i};
    }
    qsort(ranges, (size_t)nr, sizeof *ranges, cmp_range);
    for (int i = 1; i < nr; i++) {
        if (ranges[i].begin < ranges[i - 1].end) {
            s = sd_err(SDVK_ERR_FORMAT,
                       "%s: tensors \"%s\" [%llu, %llu) and \"%s\" [%llu, %llu) overlap", p,
                       st->t[ranges[i - 1].idx].name, (unsigned long long)ranges[i - 1].begin,
                       (unsigned long long)ranges[i - 1].end, st->t[ranges[i].idx].name,
                       (unsigned long long)ranges[i].begin, (unsigned long long)ranges[i].end);
            goto done;
        }
    }

    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_tensor_name);
    /* JSON_REJECT_DUPLICATES already catches these; kept so the sorted-array
     * invariant sd_st_find relies on never depends on the parser's flags. */
    for (int i = 1; i < st->n; i++) {
        if (!strcmp(st->t[i].name, st->t[i - 1].name)) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: duplicate tensor \"%s\"", p, st->t[i].name);
            goto done;
        }
    }
done:
    free(ranges);
    json_decref(root);
    return s;
}

static sdvk_status st_parse(sd_safetensors *st, int fd) {
    struct stat sb;
    const char *p = st->path;
    if (fstat(fd, &sb) != 0)
        return sd_err(SDVK_ERR_IO, "%s: cannot stat: %s", p, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return sd_err(SDVK_ERR_IO, "%s: not a regular file", p);
    if (sb.st_size < 8)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: file is %lld bytes, too short for a safetensors header (8-byte length)", p,
                      (long long)sb.st_size);
    if ((uint64_t)sb.st_size > SIZE_MAX)
        return sd_err(SDVK_ERR_IO, "%s: file too large to map", p);
    st->map_size = (size_t)sb.st_size;
    st->map = mmap(NULL, st->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (st->map == MAP_FAILED) {
        st->map = NULL;
        return sd_err(SDVK_ERR_IO, "%s: cannot mmap: %s", p, strerror(errno));
    }
    st->owns_map = 1;
    return st_parse_buf(st, st->map, st->map_size);
}

sdvk_status sd_st_open_mem(const void *data, size_t size, const char *label, sd_safetensors **out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_st_open_mem: out is NULL");
    *out = NULL;
    if (!data && size)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_st_open_mem: no data");
    sd_safetensors *st = NULL;
    SD_TRY(sd_st_new(label && *label ? label : "(memory)", &st));
    sdvk_status s = st_parse_buf(st, data ? data : (const void *)"", size);
    if (s != SDVK_OK) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SDVK_OK;
}

sdvk_status sd_st_open(const char *path, sd_safetensors **out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_st_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_st_open: empty path");
    sd_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sdvk_status s = sd_err(SDVK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        sd_st_close(st);
        return s;
    }
    sdvk_status s = st_parse(st, fd);
    close(fd); /* the mapping stays valid without the descriptor */
    if (s != SDVK_OK) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SDVK_OK;
}

const sd_st_tensor *sd_st_find(const sd_safetensors *st, const char *name) {
    if (!st || !name || st->n == 0)
        return NULL;
    sd_st_tensor key = {.name = (char *)name};
    return bsearch(&key, st->t, (size_t)st->n, sizeof *st->t, cmp_tensor_name);
}

const char *sd_st_meta(const sd_safetensors *st, const char *key) {
    if (!st || !key)
        return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_key[i], key))
            return st->meta_val[i];
    return NULL;
}

/* ---- writer ---- */

static int write_all(int fd, const void *buf, size_t n) {
    const uint8_t *b = buf;
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

/* Data goes out in order of decreasing item size (then input order): the
 * data area stays gap-free, as the reference reader requires, and every
 * tensor stays aligned to its element size since the data area starts at a
 * multiple of 8. */
typedef struct wr_order {
    int idx;
    size_t isz;
} wr_order;

static int cmp_wr(const void *a, const void *b) {
    const wr_order *x = a, *y = b;
    if (x->isz != y->isz)
        return x->isz > y->isz ? -1 : 1;
    return x->idx - y->idx;
}

sdvk_status sd_st_write(const char *path, const sd_st_write_item *items, int n,
                        const char *const *meta_kv, int n_meta) {
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_st_write: empty path");
    if (n < 0 || n_meta < 0 || (n && !items) || (n_meta && !meta_kv))
        return sd_err(SDVK_ERR_INVALID_ARG, "%s: sd_st_write: bad item or metadata list", path);
    sdvk_status s = SDVK_OK;
    json_t *root = json_object();
    wr_order *ord = calloc((size_t)(n ? n : 1), sizeof *ord);
    uint64_t *nbytes = calloc((size_t)(n ? n : 1), sizeof *nbytes);
    char *hdr = NULL;
    int fd = -1;
    if (!root || !ord || !nbytes) {
        s = sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const sd_st_write_item *it = &items[i];
        if (!it->name || !strcmp(it->name, "__metadata__")) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: item %d: missing or reserved name", path, i);
            goto done;
        }
        if (it->dtype != SD_F32 && it->dtype != SD_F16 && it->dtype != SD_BF16 &&
            it->dtype != SD_I32) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%s\": bad dtype", path, it->name);
            goto done;
        }
        if (it->ndim < 0 || it->ndim > SD_ST_MAX_DIMS) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%s\": bad ndim %d", path, it->name,
                       it->ndim);
            goto done;
        }
        uint64_t ne = 1;
        for (int d = 0; d < it->ndim; d++) {
            if (it->ne[d] < 0 || (it->ne[d] && ne > (uint64_t)INT64_MAX / 8 / (uint64_t)it->ne[d])) {
                s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%s\": bad shape", path, it->name);
                goto done;
            }
            ne *= (uint64_t)it->ne[d];
        }
        ord[i] = (wr_order){i, sd_dtype_size(it->dtype)};
        nbytes[i] = ne * ord[i].isz;
        if (nbytes[i] && !it->data) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: tensor \"%s\": no data", path, it->name);
            goto done;
        }
    }
    qsort(ord, (size_t)n, sizeof *ord, cmp_wr);
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const sd_st_write_item *it = &items[ord[k].idx];
        if (json_object_get(root, it->name)) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "%s: duplicate tensor \"%s\"", path, it->name);
            goto done;
        }
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        if (e)
            json_object_set_new(e, "dtype", json_string(sd_dtype_name(it->dtype)));
        for (int d = 0; shape && d < it->ndim; d++) json_array_append_new(shape, json_integer(it->ne[d]));
        if (offs) {
            json_array_append_new(offs, json_integer((json_int_t)off));
            json_array_append_new(offs, json_integer((json_int_t)(off + nbytes[ord[k].idx])));
        }
        if (!e || !shape || !offs) {
            json_decref(e);
            json_decref(shape);
            json_decref(offs);
            s = sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
            goto done;
        }
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets", offs);
        json_object_set_new(root, it->name, e);
        off += nbytes[ord[k].idx];
    }
    if (n_meta) {
        json_t *meta = json_object();
        if (!meta) {
            s = sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
            goto done;
        }
        json_object_set_new(root, "__metadata__", meta);
        for (int i = 0; i < n_meta; i++) {
            if (!meta_kv[2 * i] || !meta_kv[2 * i + 1]) {
                s = sd_err(SDVK_ERR_INVALID_ARG, "%s: metadata entry %d is NULL", path, i);
                goto done;
            }
            json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1]));
        }
    }
    hdr = json_dumps(root, JSON_COMPACT);
    if (!hdr) {
        s = sd_err(SDVK_ERR_OOM, "%s: cannot serialise header", path);
        goto done;
    }
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
    uint8_t pre[8];
    for (int i = 0; i < 8; i++) pre[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        s = sd_err(SDVK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
    static const char spaces[8] = "        ";
    int bad = write_all(fd, pre, 8) || write_all(fd, hdr, hl) || write_all(fd, spaces, padded - hl);
    for (int k = 0; k < n && !bad; k++)
        bad = write_all(fd, items[ord[k].idx].data, (size_t)nbytes[ord[k].idx]);
    if (bad) {
        s = sd_err(SDVK_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        fd = -1;
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        s = sd_err(SDVK_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        unlink(path);
        goto done;
    }
    fd = -1;
done:
    free(hdr);
    free(ord);
    free(nbytes);
    json_decref(root);
    return s;
}

void sd_st_release_pages(const sd_safetensors *st) {
    /* A private read-only file mapping that was never written: dropped
     * pages read back from the file if touched again, so this only
     * trades a possible re-read for resident memory. */
    if (!st)
        return;
    if (st->owns_map && st->map && st->map_size)
        madvise(st->map, st->map_size, MADV_DONTNEED);
    for (int i = 0; i < st->n_regions; i++)
        if (st->regions[i].mapped && st->regions[i].size)
            madvise(st->regions[i].base, st->regions[i].size, MADV_DONTNEED);
}
