/* Restricted pickle interpreter (see pickle.h).
 *
 * A pickle is a program for a small stack machine; Python's unpickler runs
 * it with the power to import and call any global, which is how a
 * malicious .ckpt runs os.system. This one knows a fixed list of globals,
 * each with a fixed, side-effect-free meaning in C, and refuses the rest by
 * name before anything else happens. Every length and index read from the
 * stream is checked; memory grows at most linearly with the input (every
 * value is reached from the stack or the memo, nothing is copied except
 * strings), and all of it is freed in one sweep at the end. */
#include "pickle.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"

enum { K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_BYTES, K_TUPLE, K_LIST, K_DICT, K_SET, K_GLOBAL,
       K_OBJ, K_STORAGE, K_TENSOR };

/* Allowed globals. */
enum { G_ODICT = 1, G_SET, G_FROZENSET, G_REBUILD_V2, G_REBUILD, G_REBUILD_PARAM, G_REBUILD_NUMPY,
       G_ENCODE, G_STORAGE, G_INERT };

typedef struct stype {
    const char *name; /* torch.<name> */
    const char *dtype_str;
    int size;
    int supported;
    sd_dtype dtype;
} stype;

static const stype storage_types[] = {
    {"FloatStorage", "F32", 4, 1, SD_F32},    {"HalfStorage", "F16", 2, 1, SD_F16},
    {"BFloat16Storage", "BF16", 2, 1, SD_BF16}, {"DoubleStorage", "F64", 8, 0, SD_F32},
    {"LongStorage", "I64", 8, 0, SD_F32},     {"IntStorage", "I32", 4, 0, SD_F32},
    {"ShortStorage", "I16", 2, 0, SD_F32},    {"CharStorage", "I8", 1, 0, SD_F32},
    {"ByteStorage", "U8", 1, 0, SD_F32},      {"BoolStorage", "BOOL", 1, 0, SD_F32},
    {"ComplexFloatStorage", "C64", 8, 0, SD_F32}, {"ComplexDoubleStorage", "C128", 16, 0, SD_F32},
    {"UntypedStorage", "U8", 1, 0, SD_F32},
};

typedef struct pv pv;
typedef struct pk_tensor {
    pv *storage;
    int64_t off;
    int ndim;
    int64_t size[SD_ST_MAX_DIMS], stride[SD_ST_MAX_DIMS];
    int numpy; /* from _rebuild_device_tensor_from_numpy: data not readable */
} pk_tensor;

struct pv {
    int kind;
    int g;     /* K_GLOBAL, K_OBJ: which global; K_STORAGE: index in storage_types */
    int big;   /* K_INT: did not fit int64 */
    int seen;  /* containers: already flattened (shared or cyclic structures are walked once) */
    int64_t i; /* K_INT, K_BOOL */
    double f;
    char *s; /* K_STR, K_BYTES: NUL-terminated copy; K_STORAGE: key */
    size_t len;
    pv **it; /* K_TUPLE, K_LIST, K_SET: items; K_DICT: key, value, key, value ... */
    size_t n, cap;
    pv *state;           /* K_OBJ: what BUILD gave it */
    const uint8_t *data; /* K_STORAGE */
    uint64_t nbytes;
    pk_tensor *t; /* K_TENSOR */
};

typedef struct pk {
    const char *label;
    const uint8_t *p;
    size_t n, pos, op_at;
    pv **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    pv **memo;
    size_t nmemo;
    pv **all; /* every value, for the final sweep */
    size_t nall, acap, max_values;
    sd_pk_storage_fn fn;
    void *ud;
    pv none; /* shared None (never freed) */
} pk;

#define PERR(P, ...) perr_(P, __VA_ARGS__)
static sdvk_status perr_(pk *P, const char *fmt, ...) SD_PRINTF(2, 3);
#include <stdarg.h>
static sdvk_status perr_(pk *P, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sd_err(SDVK_ERR_FORMAT, "%s: pickle (data.pkl) at byte %zu: %s", P->label, P->op_at, msg);
}

static pv *newv(pk *P, int kind) {
    if (P->nall >= P->max_values)
        return NULL;
    if (P->nall == P->acap) {
        size_t c = P->acap ? 2 * P->acap : 256;
        pv **a = realloc(P->all, c * sizeof *a);
        if (!a)
            return NULL;
        P->all = a;
        P->acap = c;
    }
    pv *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->kind = kind;
    P->all[P->nall++] = v;
    return v;
}

static void freev(pv *v) {
    free(v->s);
    free(v->it);
    free(v->t);
    free(v);
}

static sdvk_status oom(pk *P) {
    if (P->nall >= P->max_values)
        return PERR(P, "too many values for a %zu-byte pickle", P->n);
    return sd_err(SDVK_ERR_OOM, "%s: out of memory reading the pickle", P->label);
}

static sdvk_status push(pk *P, pv *v) {
    if (!v)
        return oom(P);
    if (P->sp == P->scap) {
        size_t c = P->scap ? 2 * P->scap : 64;
        pv **s = realloc(P->stack, c * sizeof *s);
        if (!s)
            return oom(P);
        P->stack = s;
        P->scap = c;
    }
    P->stack[P->sp++] = v;
    return SDVK_OK;
}

/* Values above the innermost mark are a frame; pops below it are errors. */
static size_t frame_base(const pk *P) { return P->nmarks ? P->marks[P->nmarks - 1] : 0; }

static sdvk_status pop(pk *P, pv **out) {
    if (P->sp <= frame_base(P))
        return PERR(P, "stack underflow");
    *out = P->stack[--P->sp];
    return SDVK_OK;
}

static sdvk_status top(pk *P, pv **out) {
    if (P->sp <= frame_base(P))
        return PERR(P, "stack underflow");
    *out = P->stack[P->sp - 1];
    return SDVK_OK;
}

/* Pops the innermost mark: the frame's values are stack[*from .. sp). */
static sdvk_status pop_mark(pk *P, size_t *from) {
    if (!P->nmarks)
        return PERR(P, "no MARK on the stack");
    *from = P->marks[--P->nmarks];
    return SDVK_OK;
}

static sdvk_status append(pk *P, pv *c, pv *x) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4;
        pv **it = realloc(c->it, cap * sizeof *it);
        if (!it)
            return oom(P);
        c->it = it;
        c->cap = cap;
    }
    c->it[c->n++] = x;
    return SDVK_OK;
}

static int need(const pk *P, size_t k) { return k <= P->n - P->pos; }

static uint64_t rdle(const uint8_t *b, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* A string or bytes value from len bytes at the cursor. */
static sdvk_status push_str(pk *P, int kind, uint64_t len) {
    if (!need(P, len))
        return PERR(P, "string of %" PRIu64 " bytes runs past the end (truncated?)", len);
    pv *v = newv(P, kind);
    if (!v)
        return oom(P);
    if (!(v->s = malloc((size_t)len + 1)))
        return oom(P);
    memcpy(v->s, P->p + P->pos, (size_t)len);
    v->s[len] = 0;
    v->len = (size_t)len;
    P->pos += (size_t)len;
    return push(P, v);
}

static sdvk_status push_int(pk *P, int64_t x) {
    pv *v = newv(P, K_INT);
    if (!v)
        return oom(P);
    v->i = x;
    return push(P, v);
}

/* LONG1/LONG4: little-endian two's complement of len bytes. */
static sdvk_status push_long(pk *P, uint64_t len) {
    if (!need(P, len))
        return PERR(P, "integer of %" PRIu64 " bytes runs past the end (truncated?)", len);
    pv *v = newv(P, K_INT);
    if (!v)
        return oom(P);
    const uint8_t *b = P->p + P->pos;
    if (len > 8) {
        v->big = 1;
    } else if (len > 0) {
        uint64_t u = rdle(b, (int)len);
        if (len < 8 && (b[len - 1] & 0x80))
            u |= ~(uint64_t)0 << (8 * len);
        memcpy(&v->i, &u, sizeof u);
    }
    P->pos += (size_t)len;
    return push(P, v);
}

/* ---- globals ---- */

static sdvk_status resolve_global(pk *P, const char *mod, const char *name, pv **out) {
    int g = 0, sidx = -1;
    if ((!strcmp(mod, "collections") || !strcmp(mod, "typing")) && !strcmp(name, "OrderedDict"))
        g = G_ODICT;
    else if ((!strcmp(mod, "builtins") || !strcmp(mod, "__builtin__")) && !strcmp(name, "set"))
        g = G_SET;
    else if ((!strcmp(mod, "builtins") || !strcmp(mod, "__builtin__")) && !strcmp(name, "frozenset"))
        g = G_FROZENSET;
    else if (!strcmp(mod, "torch._utils")) {
        if (!strcmp(name, "_rebuild_tensor_v2"))
            g = G_REBUILD_V2;
        else if (!strcmp(name, "_rebuild_tensor"))
            g = G_REBUILD;
        else if (!strcmp(name, "_rebuild_parameter") || !strcmp(name, "_rebuild_parameter_with_state"))
            g = G_REBUILD_PARAM;
        else if (!strcmp(name, "_rebuild_device_tensor_from_numpy"))
            g = G_REBUILD_NUMPY;
    } else if (!strcmp(mod, "torch")) {
        for (size_t i = 0; i < sizeof storage_types / sizeof *storage_types; i++)
            if (!strcmp(name, storage_types[i].name))
                sidx = (int)i, g = G_STORAGE;
        /* dtype objects (metadata of newer rebuilds): inert */
        static const char *dtypes[] = {"float32", "float16", "bfloat16", "float64", "int64",
                                       "int32",   "int16",   "int8",     "uint8",   "bool"};
        for (size_t i = 0; !g && i < sizeof dtypes / sizeof *dtypes; i++)
            if (!strcmp(name, dtypes[i]))
                g = G_INERT;
    } else if (!strcmp(mod, "_codecs") && !strcmp(name, "encode"))
        g = G_ENCODE;
    else if (!strcmp(mod, "torch.nn.modules.container") && !strcmp(name, "ParameterDict"))
        g = G_INERT;
    else if ((!strcmp(mod, "numpy.core.multiarray") || !strcmp(mod, "numpy._core.multiarray")) &&
             (!strcmp(name, "scalar") || !strcmp(name, "_reconstruct")))
        g = G_INERT;
    else if (!strcmp(mod, "numpy") && (!strcmp(name, "dtype") || !strcmp(name, "ndarray")))
        g = G_INERT;
    else if (!strcmp(mod, "pytorch_lightning.callbacks") && !strcmp(name, "model_checkpoint"))
        g = G_INERT;
    else if (!strcmp(mod, "pytorch_lightning.callbacks.model_checkpoint") &&
             !strcmp(name, "ModelCheckpoint"))
        g = G_INERT;
    if (!g)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: refused: the pickle imports the global '%s.%s', which a checkpoint "
                      "never needs (only tensors, containers and a few inert torch/numpy/"
                      "lightning names are allowed). The file may be malicious; nothing in it "
                      "was run",
                      P->label, mod, name);
    pv *v = newv(P, K_GLOBAL);
    if (!v)
        return oom(P);
    v->g = g;
    v->i = sidx;
    *out = v;
    return SDVK_OK;
}

/* GLOBAL: "module\nname\n" in the stream. */
static sdvk_status read_line(pk *P, char *buf, size_t cap) {
    const uint8_t *s = P->p + P->pos;
    size_t left = P->n - P->pos;
    const uint8_t *nl = memchr(s, '\n', left < cap ? left : cap);
    if (!nl)
        return PERR(P, "GLOBAL name missing or longer than %zu bytes", cap - 1);
    size_t k = (size_t)(nl - s);
    memcpy(buf, s, k);
    buf[k] = 0;
    if (strlen(buf) != k)
        return PERR(P, "NUL byte in a GLOBAL name");
    P->pos += k + 1;
    return SDVK_OK;
}

static int is_int(const pv *v) { return v->kind == K_INT || v->kind == K_BOOL; }

/* (storage, offset, size, stride, ...) -> tensor, checked against the storage. */
static sdvk_status rebuild_tensor(pk *P, pv *args, pv **out) {
    if (args->n < 4)
        return PERR(P, "_rebuild_tensor with %zu arguments (4 or more expected)", args->n);
    pv *st = args->it[0], *off = args->it[1], *size = args->it[2], *stride = args->it[3];
    if (st->kind != K_STORAGE)
        return PERR(P, "tensor rebuilt from something that is not a storage");
    if (!is_int(off) || off->big || off->i < 0)
        return PERR(P, "tensor storage offset is not a non-negative integer");
    if ((size->kind != K_TUPLE && size->kind != K_LIST) ||
        (stride->kind != K_TUPLE && stride->kind != K_LIST))
        return PERR(P, "tensor size/stride are not tuples");
    if (size->n > SD_ST_MAX_DIMS || stride->n != size->n)
        return PERR(P, "tensor with %zu sizes and %zu strides (at most %d dimensions)", size->n,
                    stride->n, SD_ST_MAX_DIMS);
    const stype *ty = &storage_types[st->g];
    uint64_t snumel = st->nbytes / (uint64_t)ty->size;
    pk_tensor *t = calloc(1, sizeof *t);
    pv *v = t ? newv(P, K_TENSOR) : NULL;
    if (!v) {
        free(t);
        return oom(P);
    }
    v->t = t;
    t->storage = st;
    t->off = off->i;
    t->ndim = (int)size->n;
    uint64_t numel = 1, maxi = (uint64_t)off->i;
    for (int d = 0; d < t->ndim; d++) {
        pv *a = size->it[d], *b = stride->it[d];
        if (!is_int(a) || a->big || a->i < 0 || !is_int(b) || b->big || b->i < 0)
            return PERR(P, "tensor size/stride %d is not a non-negative integer", d);
        t->size[d] = a->i;
        t->stride[d] = b->i;
        if (a->i == 0)
            numel = 0;
        else if (numel && (uint64_t)a->i > (UINT64_MAX >> 8) / numel)
            return PERR(P, "tensor element count overflows");
        else
            numel *= (uint64_t)a->i;
    }
    if (numel) {
        for (int d = 0; d < t->ndim; d++) {
            uint64_t span = (uint64_t)(t->size[d] - 1);
            if (span && (uint64_t)t->stride[d] > (UINT64_MAX >> 2) / span)
                return PERR(P, "tensor strides overflow");
            maxi += span * (uint64_t)t->stride[d];
            if (maxi > (UINT64_MAX >> 2))
                return PERR(P, "tensor strides overflow");
        }
        if (maxi >= snumel)
            return PERR(P,
                        "tensor reaches element %" PRIu64 " of a storage of %" PRIu64
                        " elements (key %s)",
                        maxi, snumel, st->s);
    }
    *out = v;
    return SDVK_OK;
}

/* REDUCE / NEWOBJ: calls an allowed global with a tuple of arguments. */
static sdvk_status call(pk *P, pv *fnv, pv *args, pv **out) {
    if (fnv->kind != K_GLOBAL)
        return PERR(P, "call of a value that is not an allowed global");
    if (args->kind != K_TUPLE)
        return PERR(P, "call arguments are not a tuple");
    pv *v = NULL;
    switch (fnv->g) {
    case G_ODICT:
        if (!(v = newv(P, K_DICT)))
            return oom(P);
        if (args->n >= 1 && (args->it[0]->kind == K_LIST || args->it[0]->kind == K_TUPLE)) {
            pv *l = args->it[0];
            for (size_t i = 0; i < l->n; i++) {
                pv *pr = l->it[i];
                if ((pr->kind != K_TUPLE && pr->kind != K_LIST) || pr->n != 2)
                    return PERR(P, "OrderedDict item is not a pair");
                SD_TRY(append(P, v, pr->it[0]));
                SD_TRY(append(P, v, pr->it[1]));
            }
        }
        break;
    case G_SET:
    case G_FROZENSET:
        if (!(v = newv(P, K_SET)))
            return oom(P);
        if (args->n >= 1) {
            pv *l = args->it[0];
            if (l->kind != K_LIST && l->kind != K_TUPLE && l->kind != K_SET)
                return PERR(P, "set() of a non-sequence");
            for (size_t i = 0; i < l->n; i++) SD_TRY(append(P, v, l->it[i]));
        }
        break;
    case G_REBUILD_V2:
    case G_REBUILD:
        SD_TRY(rebuild_tensor(P, args, &v));
        break;
    case G_REBUILD_PARAM:
        if (args->n < 1 || args->it[0]->kind != K_TENSOR)
            return PERR(P, "_rebuild_parameter of something that is not a tensor");
        v = args->it[0];
        break;
    case G_REBUILD_NUMPY: {
        pk_tensor *t = calloc(1, sizeof *t);
        if (!t || !(v = newv(P, K_TENSOR))) {
            free(t);
            return oom(P);
        }
        t->numpy = 1;
        v->t = t;
        break;
    }
    case G_ENCODE: {
        /* _codecs.encode(str, "latin1"): how protocol 2 stores bytes. Code
         * points above U+00FF cannot come from latin1: refused. */
        if (args->n < 1 || args->it[0]->kind != K_STR)
            return PERR(P, "_codecs.encode of a non-string");
        pv *s = args->it[0];
        if (!(v = newv(P, K_BYTES)) || !(v->s = malloc(s->len + 1)))
            return oom(P);
        size_t o = 0;
        for (size_t i = 0; i < s->len; i++) {
            uint8_t c = (uint8_t)s->s[i];
            if (c < 0x80) {
                v->s[o++] = (char)c;
            } else if ((c == 0xC2 || c == 0xC3) && i + 1 < s->len) {
                v->s[o++] = (char)(((c & 0x03) << 6) | ((uint8_t)s->s[++i] & 0x3F));
            } else {
                return PERR(P, "_codecs.encode of a string outside latin1");
            }
        }
        v->s[o] = 0;
        v->len = o;
        break;
    }
    case G_STORAGE:
    case G_INERT:
        if (!(v = newv(P, K_OBJ)))
            return oom(P);
        v->g = fnv->g;
        break;
    default:
        return PERR(P, "internal: unknown global");
    }
    *out = v;
    return SDVK_OK;
}

/* BINPERSID: ('storage', torch.<T>Storage, key, location, numel). */
static sdvk_status persistent_load(pk *P, pv *pid, pv **out) {
    if (pid->kind != K_TUPLE || pid->n < 5 || pid->it[0]->kind != K_STR ||
        strcmp(pid->it[0]->s, "storage"))
        return PERR(P, "persistent id is not a ('storage', type, key, location, numel) tuple");
    pv *ty = pid->it[1], *key = pid->it[2], *numel = pid->it[4];
    if (ty->kind != K_GLOBAL || ty->g != G_STORAGE)
        return PERR(P, "persistent id's storage type is not a torch storage class");
    if (key->kind != K_STR || key->len == 0 || key->len > 64 || strchr(key->s, '/') ||
        strstr(key->s, ".."))
        return PERR(P, "bad storage key");
    if (!is_int(numel) || numel->big || numel->i < 0)
        return PERR(P, "storage size is not a non-negative integer");
    const stype *st = &storage_types[ty->i];
    const uint8_t *data = NULL;
    uint64_t nbytes = 0;
    SD_TRY(P->fn(P->ud, key->s, &data, &nbytes));
    /* numel counts elements of the type (bytes for UntypedStorage). */
    if ((uint64_t)numel->i > nbytes / (uint64_t)st->size)
        return PERR(P, "storage %s claims %" PRId64 " x %d bytes but its file has %" PRIu64, key->s,
                    numel->i, st->size, nbytes);
    pv *v = newv(P, K_STORAGE);
    if (!v)
        return oom(P);
    v->g = (int)ty->i;
    v->data = data;
    v->nbytes = (uint64_t)numel->i * (uint64_t)st->size;
    v->s = strdup(key->s);
    if (!v->s)
        return oom(P);
    *out = v;
    return SDVK_OK;
}

static sdvk_status memo_put(pk *P, uint64_t idx) {
    if (idx >= P->n + 16)
        return PERR(P, "memo index %" PRIu64 " out of range", idx);
    pv *v = NULL;
    SD_TRY(top(P, &v));
    if (idx >= P->nmemo) {
        size_t c = (size_t)idx + 1 > 2 * P->nmemo ? (size_t)idx + 1 : 2 * P->nmemo;
        pv **m = realloc(P->memo, c * sizeof *m);
        if (!m)
            return oom(P);
        memset(m + P->nmemo, 0, (c - P->nmemo) * sizeof *m);
        P->memo = m;
        P->nmemo = c;
    }
    P->memo[idx] = v;
    return SDVK_OK;
}

static sdvk_status memo_get(pk *P, uint64_t idx) {
    if (idx >= P->nmemo || !P->memo[idx])
        return PERR(P, "memo index %" PRIu64 " was never stored", idx);
    return push(P, P->memo[idx]);
}

static size_t memo_count(const pk *P) {
    size_t k = P->nmemo;
    while (k && !P->memo[k - 1]) k--;
    return k;
}

/* Runs the program until STOP; *root = the value left. */
static sdvk_status run(pk *P, pv **root) {
    for (;;) {
        if (P->pos >= P->n)
            return sd_err(SDVK_ERR_FORMAT, "%s: pickle (data.pkl) ends without STOP (truncated?)",
                          P->label);
        P->op_at = P->pos;
        uint8_t op = P->p[P->pos++];
        pv *a = NULL, *b = NULL, *c = NULL, *v = NULL;
        size_t from = 0;
        switch (op) {
        case 0x80: /* PROTO */
            if (!need(P, 1))
                return PERR(P, "truncated PROTO");
            if (P->p[P->pos] > 5)
                return PERR(P, "pickle protocol %d (at most 5 supported)", P->p[P->pos]);
            P->pos++;
            break;
        case 0x95: /* FRAME: a length hint */
            if (!need(P, 8))
                return PERR(P, "truncated FRAME");
            P->pos += 8;
            break;
        case '}':
            SD_TRY(push(P, newv(P, K_DICT)));
            break;
        case ']':
            SD_TRY(push(P, newv(P, K_LIST)));
            break;
        case ')':
            SD_TRY(push(P, newv(P, K_TUPLE)));
            break;
        case 0x8f: /* EMPTY_SET */
            SD_TRY(push(P, newv(P, K_SET)));
            break;
        case 'N':
            SD_TRY(push(P, &P->none));
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if (!(v = newv(P, K_BOOL)))
                return oom(P);
            v->i = op == 0x88;
            SD_TRY(push(P, v));
            break;
        case '(':
            if (P->nmarks == P->mcap) {
                size_t cap = P->mcap ? 2 * P->mcap : 16;
                size_t *m = realloc(P->marks, cap * sizeof *m);
                if (!m)
                    return oom(P);
                P->marks = m;
                P->mcap = cap;
            }
            P->marks[P->nmarks++] = P->sp;
            break;
        case 'X': /* BINUNICODE */
        case 'T': /* BINSTRING (py2 str) */
        case 'B': /* BINBYTES */
            if (!need(P, 4))
                return PERR(P, "truncated string length");
            {
                uint64_t len = rdle(P->p + P->pos, 4);
                P->pos += 4;
                SD_TRY(push_str(P, op == 'B' ? K_BYTES : K_STR, len));
            }
            break;
        case 0x8c: /* SHORT_BINUNICODE */
        case 'U':  /* SHORT_BINSTRING */
        case 'C':  /* SHORT_BINBYTES */
            if (!need(P, 1))
                return PERR(P, "truncated string length");
            {
                uint64_t len = P->p[P->pos++];
                SD_TRY(push_str(P, op == 'C' ? K_BYTES : K_STR, len));
            }
            break;
        case 0x8d: /* BINUNICODE8 */
        case 0x8e: /* BINBYTES8 */
        case 0x96: /* BYTEARRAY8 */
            if (!need(P, 8))
                return PERR(P, "truncated string length");
            {
                uint64_t len = rdle(P->p + P->pos, 8);
                P->pos += 8;
                SD_TRY(push_str(P, op == 0x8d ? K_STR : K_BYTES, len));
            }
            break;
        case 'J': /* BININT */
            if (!need(P, 4))
                return PERR(P, "truncated BININT");
            SD_TRY(push_int(P, (int32_t)(uint32_t)rdle(P->p + P->pos, 4)));
            P->pos += 4;
            break;
        case 'K': /* BININT1 */
            if (!need(P, 1))
                return PERR(P, "truncated BININT1");
            SD_TRY(push_int(P, P->p[P->pos]));
            P->pos += 1;
            break;
        case 'M': /* BININT2 */
            if (!need(P, 2))
                return PERR(P, "truncated BININT2");
            SD_TRY(push_int(P, (int64_t)rdle(P->p + P->pos, 2)));
            P->pos += 2;
            break;
        case 0x8a: /* LONG1 */
            if (!need(P, 1))
                return PERR(P, "truncated LONG1");
            SD_TRY(push_long(P, P->p[P->pos++]));
            break;
        case 0x8b: /* LONG4 */
            if (!need(P, 4))
                return PERR(P, "truncated LONG4");
            {
                uint64_t len = rdle(P->p + P->pos, 4);
                P->pos += 4;
                if (len & 0x80000000u)
                    return PERR(P, "negative LONG4 length");
                SD_TRY(push_long(P, len));
            }
            break;
        case 'G': /* BINFLOAT, big-endian */
            if (!need(P, 8))
                return PERR(P, "truncated BINFLOAT");
            {
                uint64_t u = 0;
                for (int i = 0; i < 8; i++) u = u << 8 | P->p[P->pos + i];
                P->pos += 8;
                if (!(v = newv(P, K_FLOAT)))
                    return oom(P);
                memcpy(&v->f, &u, 8);
                SD_TRY(push(P, v));
            }
            break;
        case 'q': /* BINPUT */
            if (!need(P, 1))
                return PERR(P, "truncated BINPUT");
            SD_TRY(memo_put(P, P->p[P->pos++]));
            break;
        case 'r': /* LONG_BINPUT */
            if (!need(P, 4))
                return PERR(P, "truncated LONG_BINPUT");
            SD_TRY(memo_put(P, rdle(P->p + P->pos, 4)));
            P->pos += 4;
            break;
        case 0x94: /* MEMOIZE */
            SD_TRY(memo_put(P, memo_count(P)));
            break;
        case 'h': /* BINGET */
            if (!need(P, 1))
                return PERR(P, "truncated BINGET");
            SD_TRY(memo_get(P, P->p[P->pos++]));
            break;
        case 'j': /* LONG_BINGET */
            if (!need(P, 4))
                return PERR(P, "truncated LONG_BINGET");
            SD_TRY(memo_get(P, rdle(P->p + P->pos, 4)));
            P->pos += 4;
            break;
        case 'c': { /* GLOBAL */
            char mod[256], name[256];
            SD_TRY(read_line(P, mod, sizeof mod));
            SD_TRY(read_line(P, name, sizeof name));
            SD_TRY(resolve_global(P, mod, name, &v));
            SD_TRY(push(P, v));
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            SD_TRY(pop(P, &b));
            SD_TRY(pop(P, &a));
            if (a->kind != K_STR || b->kind != K_STR || strlen(a->s) != a->len ||
                strlen(b->s) != b->len)
                return PERR(P, "STACK_GLOBAL of non-strings");
            SD_TRY(resolve_global(P, a->s, b->s, &v));
            SD_TRY(push(P, v));
            break;
        case 't': /* TUPLE */
        case 'l': /* LIST */
        case 0x91: /* FROZENSET */
            SD_TRY(pop_mark(P, &from));
            if (!(v = newv(P, op == 't' ? K_TUPLE : op == 'l' ? K_LIST : K_SET)))
                return oom(P);
            for (size_t i = from; i < P->sp; i++) SD_TRY(append(P, v, P->stack[i]));
            P->sp = from;
            SD_TRY(push(P, v));
            break;
        case 'd': /* DICT */
            SD_TRY(pop_mark(P, &from));
            if ((P->sp - from) % 2)
                return PERR(P, "DICT with an odd number of items");
            if (!(v = newv(P, K_DICT)))
                return oom(P);
            for (size_t i = from; i < P->sp; i++) SD_TRY(append(P, v, P->stack[i]));
            P->sp = from;
            SD_TRY(push(P, v));
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: { /* TUPLE3 */
            size_t k = (size_t)(op - 0x84);
            if (P->sp - frame_base(P) < k)
                return PERR(P, "stack underflow");
            if (!(v = newv(P, K_TUPLE)))
                return oom(P);
            for (size_t i = P->sp - k; i < P->sp; i++) SD_TRY(append(P, v, P->stack[i]));
            P->sp -= k;
            SD_TRY(push(P, v));
            break;
        }
        case 's': /* SETITEM */
            SD_TRY(pop(P, &b));
            SD_TRY(pop(P, &a));
            SD_TRY(top(P, &c));
            if (c->kind != K_DICT)
                return PERR(P, "SETITEM on a non-dict");
            SD_TRY(append(P, c, a));
            SD_TRY(append(P, c, b));
            break;
        case 'u': /* SETITEMS */
            SD_TRY(pop_mark(P, &from));
            if (from == 0 || from <= frame_base(P) || (P->sp - from) % 2)
                return PERR(P, "bad SETITEMS");
            c = P->stack[from - 1];
            if (c->kind != K_DICT)
                return PERR(P, "SETITEMS on a non-dict");
            for (size_t i = from; i < P->sp; i++) SD_TRY(append(P, c, P->stack[i]));
            P->sp = from;
            break;
        case 'a': /* APPEND */
            SD_TRY(pop(P, &b));
            SD_TRY(top(P, &c));
            if (c->kind != K_LIST)
                return PERR(P, "APPEND to a non-list");
            SD_TRY(append(P, c, b));
            break;
        case 'e':  /* APPENDS */
        case 0x90: /* ADDITEMS */
            SD_TRY(pop_mark(P, &from));
            if (from == 0 || from <= frame_base(P))
                return PERR(P, "bad APPENDS/ADDITEMS");
            c = P->stack[from - 1];
            if (c->kind != (op == 'e' ? K_LIST : K_SET))
                return PERR(P, "APPENDS/ADDITEMS to the wrong kind of value");
            for (size_t i = from; i < P->sp; i++) SD_TRY(append(P, c, P->stack[i]));
            P->sp = from;
            break;
        case 'R':  /* REDUCE */
        case 0x81: /* NEWOBJ */
            SD_TRY(pop(P, &b));
            SD_TRY(pop(P, &a));
            SD_TRY(call(P, a, b, &v));
            SD_TRY(push(P, v));
            break;
        case 0x92: /* NEWOBJ_EX: cls, args, kwargs */
            SD_TRY(pop(P, &c));
            SD_TRY(pop(P, &b));
            SD_TRY(pop(P, &a));
            SD_TRY(call(P, a, b, &v));
            SD_TRY(push(P, v));
            break;
        case 'b': /* BUILD: obj.__setstate__(state) */
            SD_TRY(pop(P, &b));
            SD_TRY(top(P, &a));
            /* Inert objects keep their state (ParameterDict holds tensors
             * there); dicts (torch's state_dict._metadata) and tensors
             * (_rebuild_parameter_with_state) ignore it. */
            if (a->kind == K_OBJ)
                a->state = b;
            else if (a->kind != K_DICT && a->kind != K_TENSOR)
                return PERR(P, "BUILD on a value that takes no state");
            break;
        case 'Q': /* BINPERSID */
            SD_TRY(pop(P, &a));
            SD_TRY(persistent_load(P, a, &v));
            SD_TRY(push(P, v));
            break;
        case '0': /* POP */
            SD_TRY(pop(P, &a));
            break;
        case '1': /* POP_MARK */
            SD_TRY(pop_mark(P, &from));
            P->sp = from;
            break;
        case '2': /* DUP */
            SD_TRY(top(P, &a));
            SD_TRY(push(P, a));
            break;
        case '.': /* STOP */
            if (P->sp != 1 || P->nmarks)
                return PERR(P, "STOP with %zu values and %zu marks on the stack (1 and 0 expected)",
                            P->sp, P->nmarks);
            *root = P->stack[0];
            return SDVK_OK;
        case 'i': /* INST */
        case 'o': /* OBJ */
        case 0x82: /* EXT1 */
        case 0x83: /* EXT2 */
        case 0x84: /* EXT4 */
            return PERR(P, "opcode 0x%02x (calls a class by name or extension code) is refused", op);
        default:
            return PERR(P,
                        "unsupported pickle opcode 0x%02x (torch.save writes protocol 2 binary "
                        "opcodes only)",
                        op);
        }
    }
}

/* ---- tensors out ---- */

typedef struct flat {
    pk *P;
    sd_safetensors *out;
    uint64_t budget;
} flat;

static sdvk_status add_tensor(flat *F, const char *name, const pv *v) {
    const pk_tensor *t = v->t;
    sd_st_tensor e;
    memset(&e, 0, sizeof e);
    if (t->numpy) {
        snprintf(e.dtype_str, sizeof e.dtype_str, "numpy");
        return sd_st_add(F->out, name, &e);
    }
    const stype *ty = &storage_types[t->storage->g];
    snprintf(e.dtype_str, sizeof e.dtype_str, "%s", ty->dtype_str);
    e.supported = ty->supported;
    e.dtype = ty->dtype;
    e.ndim = t->ndim;
    uint64_t numel = 1;
    int contiguous = 1;
    int64_t want = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        e.ne[d] = t->size[d];
        numel *= (uint64_t)t->size[d];
        if (t->size[d] != 1 && t->stride[d] != want)
            contiguous = 0;
        want *= t->size[d];
    }
    size_t isz = (size_t)ty->size;
    e.nbytes = (size_t)(numel * isz);
    if (numel == 0) {
        e.data = t->storage->data;
        return sd_st_add(F->out, name, &e);
    }
    const uint8_t *src = t->storage->data + (uint64_t)t->off * isz;
    if (contiguous) {
        e.data = src;
        return sd_st_add(F->out, name, &e);
    }
    /* A transposed or sliced view: copied into row-major order (rare in
     * checkpoints; the budget keeps a crafted file from asking for more
     * memory than its own size). */
    if (numel * isz > F->budget)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: tensor \"%s\": non-contiguous view of %" PRIu64
                      " bytes exceeds what the file can hold",
                      F->P->label, name, numel * isz);
    F->budget -= numel * isz;
    uint8_t *dst = malloc((size_t)(numel * isz));
    if (!dst)
        return sd_err(SDVK_ERR_OOM, "%s: tensor \"%s\": out of memory", F->P->label, name);
    SD_TRY(sd_st_adopt(F->out, dst, (size_t)(numel * isz), 0));
    int64_t idx[SD_ST_MAX_DIMS] = {0};
    for (uint64_t k = 0; k < numel; k++) {
        int64_t o = 0;
        for (int d = 0; d < t->ndim; d++) o += idx[d] * t->stride[d];
        memcpy(dst + k * isz, src + (uint64_t)o * isz, isz);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->size[d])
                break;
            idx[d] = 0;
        }
    }
    e.data = dst;
    return sd_st_add(F->out, name, &e);
}

#define FLAT_MAX_DEPTH 24
#define FLAT_MAX_NAME 1024

static sdvk_status flatten(flat *F, pv *v, const char *prefix, int depth);

static sdvk_status flatten_child(flat *F, pv *v, const char *prefix, const char *key,
                                 int depth) {
    char name[FLAT_MAX_NAME];
    int k = snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
    if (k < 0 || (size_t)k >= sizeof name)
        return sd_err(SDVK_ERR_FORMAT, "%s: a tensor name is longer than %d bytes", F->P->label,
                      FLAT_MAX_NAME - 1);
    if (v->kind == K_TENSOR)
        return add_tensor(F, name, v);
    return flatten(F, v, name, depth + 1);
}

static sdvk_status flatten(flat *F, pv *v, const char *prefix, int depth) {
    if (depth > FLAT_MAX_DEPTH)
        return SDVK_OK; /* deeper structures hold no weights */
    if (v->kind == K_DICT || v->kind == K_LIST || v->kind == K_TUPLE || v->kind == K_OBJ) {
        /* A container reached twice (shared, or a cycle) is read once: the
         * walk stays linear in the pickle's size. */
        if (v->seen)
            return SDVK_OK;
        v->seen = 1;
    }
    char key[32];
    switch (v->kind) {
    case K_DICT:
        for (size_t i = 0; i + 1 < v->n; i += 2) {
            const pv *k = v->it[i];
            const char *ks;
            if (k->kind == K_STR) {
                if (strlen(k->s) != k->len)
                    continue; /* NUL inside: not a usable name */
                ks = k->s;
            } else if (k->kind == K_INT && !k->big) {
                snprintf(key, sizeof key, "%" PRId64, k->i);
                ks = key;
            } else {
                continue;
            }
            SD_TRY(flatten_child(F, v->it[i + 1], prefix, ks, depth));
        }
        return SDVK_OK;
    case K_LIST:
    case K_TUPLE:
        for (size_t i = 0; i < v->n; i++) {
            snprintf(key, sizeof key, "%zu", i);
            SD_TRY(flatten_child(F, v->it[i], prefix, key, depth));
        }
        return SDVK_OK;
    case K_OBJ:
        return v->state ? flatten(F, v->state, prefix, depth + 1) : SDVK_OK;
    case K_TENSOR:
        return add_tensor(F, *prefix ? prefix : "tensor", v);
    default:
        return SDVK_OK;
    }
}

sdvk_status sd_pickle_tensors(const uint8_t *pkl, size_t n, const char *label, sd_pk_storage_fn fn,
                              void *ud, uint64_t copy_budget, sd_safetensors *out) {
    pk P;
    memset(&P, 0, sizeof P);
    P.label = label;
    P.p = pkl;
    P.n = n;
    P.fn = fn;
    P.ud = ud;
    P.none.kind = K_NONE;
    /* Each opcode makes at most one value (plus strings it copies). */
    P.max_values = n + 64;
    pv *root = NULL;
    sdvk_status s = run(&P, &root);
    if (!s) {
        /* Lightning/A1111 checkpoints: {"state_dict": {...}, "global_step": ...}. */
        pv *use = root;
        if (root->kind == K_DICT)
            for (size_t i = 0; i + 1 < root->n; i += 2)
                if (root->it[i]->kind == K_STR && !strcmp(root->it[i]->s, "state_dict") &&
                    root->it[i + 1]->kind == K_DICT)
                    use = root->it[i + 1];
        flat F = {&P, out, copy_budget};
        s = flatten(&F, use, "", 0);
    }
    for (size_t i = 0; i < P.nall; i++) freev(P.all[i]);
    free(P.all);
    free(P.stack);
    free(P.marks);
    free(P.memo);
    return s;
}
