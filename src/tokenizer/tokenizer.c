/* CLIP BPE tokenizer: vocabulary loading (OpenAI merges .txt.gz and HF
 * vocab.json + merges.txt), text cleaning, CLIP's split pattern and BPE.
 * Text rules are listed in tokenizer.h; the data format in
 * ../shared/clip/README.md. zlib reads the gzip file (gzread also reads plain
 * text), utf8proc gives categories, case mapping and NFC, jansson parses
 * vocab.json. */
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>
#include <zlib.h>

#include "core/status.h"

/* OpenAI and HF read only this many merges (49152 - 256 - 2). */
#define CLIP_MAX_MERGES 48894
/* Vocabulary files bigger than this are refused (the real one is 3 MB). */
#define VOCAB_MAX_BYTES (256u << 20)

struct sd_tokenizer {
    /* Symbols: every string BPE can produce, interned; sym ids are internal,
     * sym_vocab maps them to vocabulary ids (-1 when not in the vocab). */
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *sym_off, *sym_len;
    int32_t *sym_vocab;
    int n_sym, cap_sym;
    uint32_t *smap; /* open addressing: sym + 1, 0 = empty */
    uint32_t smap_mask;
    /* Merge pairs (sym a, sym b) -> rank and result symbol. */
    uint64_t *pkey; /* (a + 1) << 32 | (b + 1), 0 = empty */
    int32_t *prank, *pres;
    uint32_t pmask;
    int n_pairs;
    int32_t byte_sym[256], byte_sym_w[256]; /* byte char, byte char + </w> */
    int32_t bos, eos, pad, unk;
    int n_vocab;
    /* ftfy width map for U+FF01..U+FFEF: NFKC of each char (up to 3 cps). */
    int32_t width_map[0xFFF0 - 0xFF01][3];
};

/* ---------------------------------------------------------------- tables */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int32_t sym_find(const sd_tokenizer *t, const char *s, size_t n)
{
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->smap_mask;
    for (;;) {
        uint32_t v = t->smap[i];
        if (!v)
            return -1;
        int32_t id = (int32_t)v - 1;
        if (t->sym_len[id] == n && memcmp(t->arena + t->sym_off[id], s, n) == 0)
            return id;
        i = (i + 1) & t->smap_mask;
    }
}

static sdvk_status smap_grow(sd_tokenizer *t)
{
    uint32_t ncap = t->smap ? (t->smap_mask + 1) * 2 : 1u << 16;
    uint32_t *m = calloc(ncap, sizeof *m);
    if (!m)
        return sd_err(SDVK_ERR_OOM, "tokenizer: out of memory (symbol table)");
    for (int id = 0; id < t->n_sym; id++) {
        uint32_t i = (uint32_t)hash_bytes(t->arena + t->sym_off[id], t->sym_len[id]) & (ncap - 1);
        while (m[i])
            i = (i + 1) & (ncap - 1);
        m[i] = (uint32_t)id + 1;
    }
    free(t->smap);
    t->smap = m;
    t->smap_mask = ncap - 1;
    return SDVK_OK;
}

/* Interns s[0..n) and returns its symbol id in *id. */
static sdvk_status sym_intern(sd_tokenizer *t, const char *s, size_t n, int32_t *id)
{
    int32_t f = t->smap ? sym_find(t, s, n) : -1;
    if (f >= 0) {
        *id = f;
        return SDVK_OK;
    }
    if (!t->smap || (uint32_t)(t->n_sym + 1) * 2 > t->smap_mask + 1)
        SD_TRY(smap_grow(t));
    if (t->n_sym == t->cap_sym) {
        int nc = t->cap_sym ? t->cap_sym * 2 : 1 << 16;
        uint32_t *o = realloc(t->sym_off, nc * sizeof *o);
        if (o)
            t->sym_off = o;
        uint32_t *l = realloc(t->sym_len, nc * sizeof *l);
        if (l)
            t->sym_len = l;
        int32_t *v = realloc(t->sym_vocab, nc * sizeof *v);
        if (v)
            t->sym_vocab = v;
        if (!o || !l || !v)
            return sd_err(SDVK_ERR_OOM, "tokenizer: out of memory (symbols)");
        t->cap_sym = nc;
    }
    if (t->arena_len + n > t->arena_cap) {
        size_t nc = t->arena_cap ? t->arena_cap : 1 << 20;
        while (nc < t->arena_len + n)
            nc *= 2;
        if (nc > UINT32_MAX)
            return sd_err(SDVK_ERR_FORMAT, "tokenizer: vocabulary strings too large");
        char *a = realloc(t->arena, nc);
        if (!a)
            return sd_err(SDVK_ERR_OOM, "tokenizer: out of memory (strings)");
        t->arena = a;
        t->arena_cap = nc;
    }
    memcpy(t->arena + t->arena_len, s, n);
    int32_t nid = t->n_sym++;
    t->sym_off[nid] = (uint32_t)t->arena_len;
    t->sym_len[nid] = (uint32_t)n;
    t->sym_vocab[nid] = -1;
    t->arena_len += n;
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->smap_mask;
    while (t->smap[i])
        i = (i + 1) & t->smap_mask;
    t->smap[i] = (uint32_t)nid + 1;
    *id = nid;
    return SDVK_OK;
}

static int pair_find(const sd_tokenizer *t, int32_t a, int32_t b, int32_t *res)
{
    uint64_t key = ((uint64_t)(a + 1) << 32) | (uint32_t)(b + 1);
    uint32_t i = (uint32_t)hash_u64(key) & t->pmask;
    for (;;) {
        uint64_t k = t->pkey[i];
        if (!k)
            return -1;
        if (k == key) {
            *res = t->pres[i];
            return t->prank[i];
        }
        i = (i + 1) & t->pmask;
    }
}

/* Later duplicates overwrite the rank, as Python's dict(zip(merges, ranks)). */
static void pair_put(sd_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t res)
{
    uint64_t key = ((uint64_t)(a + 1) << 32) | (uint32_t)(b + 1);
    uint32_t i = (uint32_t)hash_u64(key) & t->pmask;
    while (t->pkey[i] && t->pkey[i] != key)
        i = (i + 1) & t->pmask;
    if (!t->pkey[i])
        t->n_pairs++;
    t->pkey[i] = key;
    t->prank[i] = rank;
    t->pres[i] = res;
}

static sdvk_status pairs_alloc(sd_tokenizer *t, int n_merges)
{
    uint32_t cap = 1024;
    while (cap < (uint32_t)n_merges * 2 + 2)
        cap *= 2;
    t->pkey = calloc(cap, sizeof *t->pkey);
    t->prank = malloc(cap * sizeof *t->prank);
    t->pres = malloc(cap * sizeof *t->pres);
    if (!t->pkey || !t->prank || !t->pres)
        return sd_err(SDVK_ERR_OOM, "tokenizer: out of memory (merges)");
    t->pmask = cap - 1;
    return SDVK_OK;
}

/* ---------------------------------------------------------------- UTF-8 */

static int utf8_put(char *o, int32_t c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Decodes one code point; an ill-formed sequence gives U+FFFD and consumes
 * its maximal subpart (Unicode 3.9, "U+FFFD substitution of maximal subparts",
 * which is what Python's errors="replace" does). */
static int32_t utf8_next(const uint8_t *s, size_t n, size_t *pi)
{
    size_t i = *pi;
    uint8_t c = s[i];
    if (c < 0x80) {
        *pi = i + 1;
        return c;
    }
    int need;
    int32_t cp;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        *pi = i + 1;
        return 0xFFFD;
    }
    size_t j = i + 1;
    for (int k = 0; k < need; k++) {
        if (j >= n || s[j] < lo || s[j] > hi) {
            *pi = j;
            return 0xFFFD;
        }
        cp = (cp << 6) | (s[j] & 0x3F);
        lo = 0x80;
        hi = 0xBF;
        j++;
    }
    *pi = j;
    return cp;
}

/* ---------------------------------------------------------------- buffers */

typedef struct {
    int32_t *v;
    size_t n, cap;
} cpbuf;

static int cb_reserve(cpbuf *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + extra)
        nc *= 2;
    int32_t *v = realloc(b->v, nc * sizeof *v);
    if (!v)
        return -1;
    b->v = v;
    b->cap = nc;
    return 0;
}

static int cb_push(cpbuf *b, int32_t c)
{
    if (cb_reserve(b, 1))
        return -1;
    b->v[b->n++] = c;
    return 0;
}

/* ---------------------------------------------------------------- Unicode classes */

static int is_white_space(int32_t c)
{
    /* Unicode White_Space (what the regex module's \s matches). */
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static int is_letter(int32_t c)
{
    if (c < 0x80)
        return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    utf8proc_category_t g = utf8proc_category(c);
    return g >= UTF8PROC_CATEGORY_LU && g <= UTF8PROC_CATEGORY_LO;
}

static int is_number(int32_t c)
{
    if (c < 0x80)
        return c >= '0' && c <= '9';
    utf8proc_category_t g = utf8proc_category(c);
    return g >= UTF8PROC_CATEGORY_ND && g <= UTF8PROC_CATEGORY_NO;
}

/* Unicode Cased: Lu, Ll, Lt, anything with a case mapping, and the
 * Other_Lowercase / Other_Uppercase letters without one (utf8proc has no
 * such property; the ranges match Python's str.lower on Unicode 14/15). */
static int is_cased(int32_t c)
{
    static const int32_t other[][2] = {
        {0xAA, 0xAA}, {0xBA, 0xBA}, {0x2B0, 0x2B8}, {0x2C0, 0x2C1}, {0x2E0, 0x2E4},
        {0x37A, 0x37A}, {0x1D2C, 0x1D6A}, {0x1D78, 0x1D78}, {0x1D9B, 0x1DBF}, {0x2071, 0x2071},
        {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2C7C, 0x2C7D}, {0xA69C, 0xA69D}, {0xA770, 0xA770},
        {0xA7F8, 0xA7F9}, {0xAB5C, 0xAB5F}, {0x10780, 0x10780}, {0x10783, 0x10785},
        {0x10787, 0x107B0}, {0x107B2, 0x107BA}, {0x1E030, 0x1E06D}, {0x1F130, 0x1F149},
        {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
    };
    utf8proc_category_t g = utf8proc_category(c);
    if (g == UTF8PROC_CATEGORY_LU || g == UTF8PROC_CATEGORY_LL || g == UTF8PROC_CATEGORY_LT)
        return 1;
    if (utf8proc_tolower(c) != c || utf8proc_toupper(c) != c)
        return 1;
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (c >= other[i][0] && c <= other[i][1])
            return 1;
    return 0;
}

/* Unicode Case_Ignorable: Mn Me Cf Lm Sk, or Word_Break MidLetter,
 * MidNumLet, Single_Quote. */
static int is_case_ignorable(int32_t c)
{
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    default:
        break;
    }
    utf8proc_category_t g = utf8proc_category(c);
    return g == UTF8PROC_CATEGORY_MN || g == UTF8PROC_CATEGORY_ME || g == UTF8PROC_CATEGORY_CF ||
           g == UTF8PROC_CATEGORY_LM || g == UTF8PROC_CATEGORY_SK;
}

/* ---------------------------------------------------------------- ftfy subset */

static const int32_t cp1252_c1[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

/* ftfy's LIGATURES: returns the replacement (up to 3 cps) or 0. */
static int ligature(int32_t c, int32_t out[3])
{
    static const struct {
        int32_t c, r[3];
    } tab[] = {
        {0x0132, {'I', 'J', 0}}, {0x0133, {'i', 'j', 0}}, {0x0149, {0x02BC, 'n', 0}},
        {0x01F1, {'D', 'Z', 0}}, {0x01F2, {'D', 'z', 0}}, {0x01F3, {'d', 'z', 0}},
        {0x01C4, {'D', 0x017D, 0}}, {0x01C5, {'D', 0x017E, 0}}, {0x01C6, {'d', 0x017E, 0}},
        {0x01C7, {'L', 'J', 0}}, {0x01C8, {'L', 'j', 0}}, {0x01C9, {'l', 'j', 0}},
        {0x01CA, {'N', 'J', 0}}, {0x01CB, {'N', 'j', 0}}, {0x01CC, {'n', 'j', 0}},
        {0xFB00, {'f', 'f', 0}}, {0xFB01, {'f', 'i', 0}}, {0xFB02, {'f', 'l', 0}},
        {0xFB03, {'f', 'f', 'i'}}, {0xFB04, {'f', 'f', 'l'}}, {0xFB05, {0x017F, 't', 0}},
        {0xFB06, {'s', 't', 0}},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].c == c) {
            memcpy(out, tab[i].r, sizeof tab[i].r);
            return tab[i].r[2] ? 3 : 2;
        }
    return 0;
}

static int is_ftfy_control(int32_t c)
{
    return (c >= 0 && c <= 8) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

static int32_t uncurl(int32_t c)
{
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
        return '\'';
    if (c >= 0x201C && c <= 0x201F)
        return '"';
    return c;
}

/* Maps one code point through ftfy's per-character fixes, in ftfy's order
 * (C1 controls, ligatures, width, quotes, control removal). Appends 0 to 3
 * code points to out. */
static int fix_char(const sd_tokenizer *t, int32_t c, cpbuf *out)
{
    if (c >= 0x20 && c < 0x7F) /* printable ASCII: no fix applies */
        return cb_push(out, c);
    int32_t tmp[3];
    int n = 1;
    tmp[0] = c;
    if (c >= 0x80 && c <= 0x9F)
        tmp[0] = cp1252_c1[c - 0x80];
    int32_t lig[3];
    int nl = ligature(tmp[0], lig);
    if (nl) {
        memcpy(tmp, lig, sizeof lig);
        n = nl;
    }
    for (int k = 0; k < n; k++) {
        int32_t d = tmp[k];
        if (d == 0x3000)
            d = ' ';
        if (d >= 0xFF01 && d <= 0xFFEF) {
            const int32_t *w = t->width_map[d - 0xFF01];
            for (int j = 0; j < 3 && w[j]; j++) {
                int32_t e = uncurl(w[j]);
                if (!is_ftfy_control(e) && cb_push(out, e))
                    return -1;
            }
            continue;
        }
        d = uncurl(d);
        if (!is_ftfy_control(d) && cb_push(out, d))
            return -1;
    }
    return 0;
}

/* Normalizes cps[0..n) through UTF-8 with utf8proc_map (options: COMPOSE
 * for NFC, plus COMPAT for NFKC); result appended to out. */
static int normalize_cps(const int32_t *cps, size_t n, utf8proc_option_t opt, cpbuf *out)
{
    char *u8 = malloc(n * 4 + 1);
    if (!u8)
        return -1;
    size_t nb = 0;
    for (size_t i = 0; i < n; i++)
        nb += (size_t)utf8_put(u8 + nb, cps[i]);
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)u8, (utf8proc_ssize_t)nb, &dst,
                                      opt | UTF8PROC_STABLE);
    free(u8);
    if (r < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < (size_t)r && !rc;)
        rc = cb_push(out, utf8_next(dst, (size_t)r, &i));
    free(dst);
    return rc;
}

static sdvk_status build_width_map(sd_tokenizer *t)
{
    cpbuf b = {0};
    for (int32_t c = 0xFF01; c <= 0xFFEF; c++) {
        int32_t *w = t->width_map[c - 0xFF01];
        w[0] = c;
        w[1] = w[2] = 0;
        b.n = 0;
        if (normalize_cps(&c, 1, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, &b)) {
            free(b.v);
            return sd_err(SDVK_ERR_OOM, "tokenizer: out of memory");
        }
        if (b.n >= 1 && b.n <= 3)
            for (int j = 0; j < 3; j++)
                w[j] = j < (int)b.n ? b.v[j] : 0;
    }
    free(b.v);
    return SDVK_OK;
}

/* ---------------------------------------------------------------- BPE */

typedef struct {
    int32_t rank, pos;
} hent;

typedef struct {
    int32_t *sym, *nxt, *prv;
    hent *heap, *pend;
    size_t cap;
    int hn;
    char *bytes; /* UTF-8 of the current piece */
    size_t bcap;
    int32_t *out; /* result ids */
    size_t on, ocap;
} scratch;

static int scratch_reserve(scratch *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    size_t nc = w->cap ? w->cap : 64;
    while (nc < n)
        nc *= 2;
    int32_t *a = realloc(w->sym, nc * sizeof *a);
    if (a)
        w->sym = a;
    int32_t *b = realloc(w->nxt, nc * sizeof *b);
    if (b)
        w->nxt = b;
    int32_t *c = realloc(w->prv, nc * sizeof *c);
    if (c)
        w->prv = c;
    hent *h = realloc(w->heap, nc * 2 * sizeof *h);
    if (h)
        w->heap = h;
    hent *p = realloc(w->pend, nc * 2 * sizeof *p);
    if (p)
        w->pend = p;
    if (!a || !b || !c || !h || !p)
        return -1;
    w->cap = nc;
    return 0;
}

static int out_push(scratch *w, int32_t id)
{
    if (w->on == w->ocap) {
        size_t nc = w->ocap ? w->ocap * 2 : 256;
        int32_t *o = realloc(w->out, nc * sizeof *o);
        if (!o)
            return -1;
        w->out = o;
        w->ocap = nc;
    }
    w->out[w->on++] = id;
    return 0;
}

static int hless(hent a, hent b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(scratch *w, hent e)
{
    int i = w->hn++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!hless(e, w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
}

static hent heap_pop(scratch *w)
{
    hent top = w->heap[0], last = w->heap[--w->hn];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, m = i;
        hent best = last;
        if (l < w->hn && hless(w->heap[l], best)) {
            m = l;
            best = w->heap[l];
        }
        if (l + 1 < w->hn && hless(w->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (w->hn > 0)
        w->heap[i] = last;
    return top;
}

/* BPE of one piece (bytes b[0..n), n >= 1), ids appended to w->out. Same
 * result as the reference loop "merge every occurrence of the lowest-ranked
 * pair, left to right, repeat" but O(n log n): the heap yields all entries of
 * the lowest rank in position order, and pairs created while sweeping one
 * rank are only queued after the sweep, as the reference recomputes pairs
 * only between passes. */
static int bpe_piece(const sd_tokenizer *t, const uint8_t *b, int n, scratch *w)
{
    if (scratch_reserve(w, (size_t)n))
        return -1;
    for (int i = 0; i < n; i++) {
        w->sym[i] = i == n - 1 ? t->byte_sym_w[b[i]] : t->byte_sym[b[i]];
        w->nxt[i] = i + 1 < n ? i + 1 : -1;
        w->prv[i] = i - 1;
    }
    w->hn = 0;
    int32_t res;
    for (int i = 0; i + 1 < n; i++) {
        int r = pair_find(t, w->sym[i], w->sym[i + 1], &res);
        if (r >= 0)
            heap_push(w, (hent){r, i});
    }
    while (w->hn > 0) {
        int32_t rank = w->heap[0].rank;
        int np = 0;
        while (w->hn > 0 && w->heap[0].rank == rank) {
            hent e = heap_pop(w);
            int L = e.pos;
            if (w->sym[L] < 0 || w->nxt[L] < 0)
                continue;
            int R = w->nxt[L];
            if (pair_find(t, w->sym[L], w->sym[R], &res) != rank)
                continue; /* stale entry */
            w->sym[L] = res;
            w->sym[R] = -1;
            w->nxt[L] = w->nxt[R];
            if (w->nxt[R] >= 0)
                w->prv[w->nxt[R]] = L;
            int32_t r2;
            if (w->prv[L] >= 0) {
                int r = pair_find(t, w->sym[w->prv[L]], w->sym[L], &r2);
                if (r >= 0)
                    w->pend[np++] = (hent){r, w->prv[L]};
            }
            if (w->nxt[L] >= 0) {
                int r = pair_find(t, w->sym[L], w->sym[w->nxt[L]], &r2);
                if (r >= 0)
                    w->pend[np++] = (hent){r, L};
            }
        }
        for (int k = 0; k < np; k++)
            heap_push(w, w->pend[k]);
    }
    for (int i = 0; i >= 0; i = w->nxt[i]) {
        int32_t v = t->sym_vocab[w->sym[i]];
        if (out_push(w, v >= 0 ? v : t->unk))
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- text pipeline */

static const char *const k_special[2] = {"<|startoftext|>", "<|endoftext|>"};

/* Matches a special-token string at s[i..] (cps); fold: regex IGNORECASE on
 * lowercased text, where U+017F (long s) folds to 's'. Returns its length or 0;
 * *exact says whether the text is the literal string. */
static int match_special(const int32_t *s, size_t n, size_t i, int which, int fold, int *exact)
{
    const char *p = k_special[which];
    size_t len = strlen(p);
    if (i + len > n)
        return 0;
    int ex = 1;
    for (size_t k = 0; k < len; k++) {
        int32_t c = s[i + k];
        if (c == p[k])
            continue;
        if (fold && p[k] == 's' && c == 0x17F) {
            ex = 0;
            continue;
        }
        return 0;
    }
    if (exact)
        *exact = ex;
    return (int)len;
}

static int fold_eq(int32_t c, char a)
{
    return c == a || (a == 's' && c == 0x17F);
}

typedef struct {
    cpbuf a, b, c; /* stage buffers */
    scratch w;
} work;

static void work_free(work *k)
{
    free(k->a.v);
    free(k->b.v);
    free(k->c.v);
    free(k->w.sym);
    free(k->w.nxt);
    free(k->w.prv);
    free(k->w.heap);
    free(k->w.pend);
    free(k->w.bytes);
    free(k->w.out);
}

/* Emits the BPE ids of piece s[i..j) (code points). */
static int emit_piece(const sd_tokenizer *t, const int32_t *s, size_t i, size_t j, scratch *w)
{
    size_t need = (j - i) * 4;
    if (need > w->bcap) {
        char *nb = realloc(w->bytes, need);
        if (!nb)
            return -1;
        w->bytes = nb;
        w->bcap = need;
    }
    size_t nb = 0;
    for (size_t k = i; k < j; k++)
        nb += (size_t)utf8_put(w->bytes + nb, s[k]);
    if (nb > (size_t)INT32_MAX / 4)
        return -1;
    return bpe_piece(t, (const uint8_t *)w->bytes, (int)nb, w);
}

/* Tokenizes one segment (no literal special tokens from the raw split),
 * code points in seg[0..n). */
static int tokenize_segment(const sd_tokenizer *t, const int32_t *seg, size_t n, work *k)
{
    /* 1. ftfy subset. Terminal escapes ESC [ [0-9;]* [A-Za-z] go first. */
    cpbuf *A = &k->a, *B = &k->b, *C = &k->c;
    A->n = 0;
    int32_t maxc = 0;
    for (size_t i = 0; i < n; i++) {
        if (seg[i] == 0x1B && i + 1 < n && seg[i + 1] == '[') {
            size_t j = i + 2;
            while (j < n && ((seg[j] >= '0' && seg[j] <= '9') || seg[j] == ';'))
                j++;
            if (j < n && ((seg[j] | 0x20) >= 'a' && (seg[j] | 0x20) <= 'z')) {
                i = j;
                continue;
            }
        }
        if (fix_char(t, seg[i], A))
            return -1;
    }
    for (size_t i = 0; i < A->n; i++)
        if (A->v[i] > maxc)
            maxc = A->v[i];
    /* NFC; code points below U+0300 are all NFC-stable and never compose. */
    if (maxc >= 0x300 && A->n > 0) {
        B->n = 0;
        if (normalize_cps(A->v, A->n, UTF8PROC_COMPOSE, B))
            return -1;
        cpbuf tmp = *A;
        *A = *B;
        *B = tmp;
    }
    /* 2. Collapse White_Space runs, trim. */
    B->n = 0;
    if (cb_reserve(B, A->n + 1))
        return -1;
    for (size_t i = 0; i < A->n; i++) {
        if (is_white_space(A->v[i])) {
            if (B->n > 0 && B->v[B->n - 1] != ' ')
                B->v[B->n++] = ' ';
        } else {
            B->v[B->n++] = A->v[i];
        }
    }
    if (B->n > 0 && B->v[B->n - 1] == ' ')
        B->n--;
    /* 3. Python str.lower(). */
    C->n = 0;
    if (cb_reserve(C, B->n * 2 + 1))
        return -1;
    for (size_t i = 0; i < B->n; i++) {
        int32_t c = B->v[i];
        if (c < 0x80) {
            C->v[C->n++] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        } else if (c == 0x130) {
            C->v[C->n++] = 'i';
            C->v[C->n++] = 0x307;
        } else if (c == 0x3A3) {
            /* Final sigma: cased + case-ignorable* before, not followed by
             * case-ignorable* + cased. */
            size_t j = i;
            int32_t pc = 0;
            while (j > 0 && is_case_ignorable(B->v[j - 1]))
                j--;
            int fin = j > 0 && is_cased(pc = B->v[j - 1]);
            if (fin) {
                size_t m = i + 1;
                while (m < B->n && is_case_ignorable(B->v[m]))
                    m++;
                fin = m == B->n || !is_cased(B->v[m]);
            }
            C->v[C->n++] = fin ? 0x3C2 : 0x3C3;
        } else {
            C->v[C->n++] = utf8proc_tolower(c);
        }
    }
    /* 4. CLIP's pattern. */
    const int32_t *s = C->v;
    size_t m = C->n;
    size_t i = 0;
    while (i < m) {
        int32_t c = s[i];
        if (is_white_space(c)) {
            i++;
            continue;
        }
        if (c == '<') {
            int exact = 0, len = 0, which;
            for (which = 0; which < 2; which++)
                if ((len = match_special(s, m, i, which, 1, &exact)) > 0)
                    break;
            if (len > 0) {
                if (exact) {
                    if (out_push(&k->w, which == 0 ? t->bos : t->eos))
                        return -1;
                } else if (emit_piece(t, s, i, i + (size_t)len, &k->w)) {
                    return -1;
                }
                i += (size_t)len;
                continue;
            }
        }
        if (c == '\'' && i + 1 < m) {
            size_t len = 0;
            int32_t c1 = s[i + 1];
            if (fold_eq(c1, 's') || c1 == 't' || c1 == 'm' || c1 == 'd')
                len = 2;
            else if (i + 2 < m && ((c1 == 'r' && s[i + 2] == 'e') || (c1 == 'v' && s[i + 2] == 'e') ||
                                   (c1 == 'l' && s[i + 2] == 'l')))
                len = 3;
            if (len) {
                if (emit_piece(t, s, i, i + len, &k->w))
                    return -1;
                i += len;
                continue;
            }
        }
        size_t j = i + 1;
        if (is_letter(c)) {
            while (j < m && is_letter(s[j]))
                j++;
        } else if (!is_number(c)) {
            while (j < m && !is_white_space(s[j]) && !is_letter(s[j]) && !is_number(s[j]))
                j++;
        }
        if (emit_piece(t, s, i, j, &k->w))
            return -1;
        i = j;
    }
    return 0;
}

sdvk_status sd_tokenize(const sd_tokenizer *t, const char *text, int32_t **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    if (!t || !text)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_tokenize: NULL tokenizer or text");
    size_t len = strlen(text);
    if (len > (size_t)INT32_MAX / 8)
        return sd_err(SDVK_ERR_INVALID_ARG, "prompt too long (%zu bytes)", len);
    work k;
    memset(&k, 0, sizeof k);
    cpbuf raw = {0};
    sdvk_status st = SDVK_OK;
    if (cb_reserve(&raw, len + 1)) {
        st = sd_err(SDVK_ERR_OOM, "tokenizer: out of memory (%zu-byte prompt)", len);
        goto done;
    }
    for (size_t i = 0; i < len;)
        raw.v[raw.n++] = utf8_next((const uint8_t *)text, len, &i);
    /* HF splits the literal special-token strings out before anything else. */
    size_t start = 0;
    for (size_t i = 0; i <= raw.n; i++) {
        int len_sp = 0, which = 0;
        if (i < raw.n && raw.v[i] == '<')
            for (which = 0; which < 2; which++)
                if ((len_sp = match_special(raw.v, raw.n, i, which, 0, NULL)) > 0)
                    break;
        if (i < raw.n && !len_sp)
            continue;
        if (i > start && tokenize_segment(t, raw.v + start, i - start, &k)) {
            st = sd_err(SDVK_ERR_OOM, "tokenizer: out of memory");
            goto done;
        }
        if (len_sp) {
            if (out_push(&k.w, which == 0 ? t->bos : t->eos)) {
                st = sd_err(SDVK_ERR_OOM, "tokenizer: out of memory");
                goto done;
            }
            i += (size_t)len_sp - 1;
            start = i + 1;
        }
    }
    if (k.w.on > (size_t)INT32_MAX) {
        st = sd_err(SDVK_ERR_INVALID_ARG, "prompt has too many tokens");
        goto done;
    }
    *ids = k.w.out ? k.w.out : malloc(sizeof(int32_t));
    if (!*ids) {
        st = sd_err(SDVK_ERR_OOM, "tokenizer: out of memory");
        goto done;
    }
    *n = (int)k.w.on;
    k.w.out = NULL;
done:
    free(raw.v);
    work_free(&k);
    return st;
}

/* ---------------------------------------------------------------- loading */

static sdvk_status read_file(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return sd_err(SDVK_ERR_IO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        gzclose(f);
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= VOCAB_MAX_BYTES) {
                free(b);
                gzclose(f);
                return sd_err(SDVK_ERR_FORMAT, "%s: larger than %u MiB, not a CLIP vocabulary",
                              path, VOCAB_MAX_BYTES >> 20);
            }
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                gzclose(f);
                return sd_err(SDVK_ERR_OOM, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        int r = gzread(f, b + n, (unsigned)(cap - n));
        if (r < 0) {
            int e;
            const char *msg = gzerror(f, &e);
            sdvk_status s = sd_err(SDVK_ERR_FORMAT, "%s: corrupt gzip data: %s", path, msg);
            free(b);
            gzclose(f);
            return s;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    int e = Z_OK;
    const char *msg = gzerror(f, &e);
    if (e != Z_OK && e != Z_STREAM_END) {
        sdvk_status s = sd_err(SDVK_ERR_FORMAT, "%s: corrupt or truncated gzip data: %s", path, msg);
        free(b);
        gzclose(f);
        return s;
    }
    gzclose(f);
    b[n] = 0;
    *buf = b;
    *len = n;
    return SDVK_OK;
}

/* The 256 byte characters in vocabulary order: printable Latin-1 bytes
 * first, then the rest in byte order mapped to U+0100 onwards. */
static void byte_order(int order[256], int32_t cps[256])
{
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            order[k++] = b;
            cps[b] = b;
        }
    for (int b = 0; b < 256; b++)
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
            order[k++] = b;
            cps[b] = 0x100 + extra++;
        }
}

/* Interns the 512 byte-character symbols; with assign, gives them ids 0..511. */
static sdvk_status intern_bytes(sd_tokenizer *t, int assign)
{
    int order[256];
    int32_t cps[256];
    byte_order(order, cps);
    char s[16];
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < 256; k++) {
            int b = order[k];
            int n = utf8_put(s, cps[b]);
            if (w) {
                memcpy(s + n, "</w>", 4);
                n += 4;
            }
            int32_t id;
            SD_TRY(sym_intern(t, s, (size_t)n, &id));
            if (assign)
                t->sym_vocab[id] = w * 256 + k;
            if (w)
                t->byte_sym_w[b] = id;
            else
                t->byte_sym[b] = id;
        }
    return SDVK_OK;
}

/* Splits a merge line "a b" (ASCII blanks around/between). Returns 0 on
 * success. */
static int split_merge(char *line, size_t n, char **a, size_t *na, char **b, size_t *nb)
{
    size_t i = 0;
#define BLANK(ch) ((ch) == ' ' || (ch) == '\t' || (ch) == '\r' || (ch) == '\v' || (ch) == '\f')
    while (i < n && BLANK(line[i]))
        i++;
    size_t s0 = i;
    while (i < n && !BLANK(line[i]))
        i++;
    size_t e0 = i;
    while (i < n && BLANK(line[i]))
        i++;
    size_t s1 = i;
    while (i < n && !BLANK(line[i]))
        i++;
    size_t e1 = i;
    while (i < n && BLANK(line[i]))
        i++;
#undef BLANK
    if (e0 == s0 || e1 == s1 || i != n)
        return -1;
    *a = line + s0;
    *na = e0 - s0;
    *b = line + s1;
    *nb = e1 - s1;
    return 0;
}

/* Adds merges from text lines (first_line: index of the first merge line).
 * assign_ids: OpenAI format, merge r's string gets id 512 + r. */
static sdvk_status add_merges(sd_tokenizer *t, const char *path, char *text, size_t len,
                              int skip_first, int assign_ids, int *n_merges)
{
    size_t pos = 0;
    int line_no = 0, r = 0;
    char tmp[1024];
    while (pos < len && r < CLIP_MAX_MERGES) {
        char *line = text + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        line_no++;
        if (line_no == 1 && skip_first)
            continue;
        size_t q = 0;
        while (q < ll && (line[q] == ' ' || line[q] == '\r' || line[q] == '\t'))
            q++;
        if (q == ll) {
            /* Blank lines only at the end (trailing newline) are fine. */
            size_t p2 = pos;
            while (p2 < len && (text[p2] == '\n' || text[p2] == '\r' || text[p2] == ' '))
                p2++;
            if (p2 == len)
                break;
            return sd_err(SDVK_ERR_FORMAT, "%s: line %d: empty line among the merges", path, line_no);
        }
        char *a, *b;
        size_t na, nb;
        if (split_merge(line, ll, &a, &na, &b, &nb))
            return sd_err(SDVK_ERR_FORMAT,
                          "%s: line %d: expected a merge \"A B\" (two symbols separated by a space)",
                          path, line_no);
        if (na + nb > sizeof tmp)
            return sd_err(SDVK_ERR_FORMAT, "%s: line %d: merge symbols too long", path, line_no);
        int32_t sa, sb, sr;
        SD_TRY(sym_intern(t, a, na, &sa));
        SD_TRY(sym_intern(t, b, nb, &sb));
        memcpy(tmp, a, na);
        memcpy(tmp + na, b, nb);
        SD_TRY(sym_intern(t, tmp, na + nb, &sr));
        if (assign_ids)
            t->sym_vocab[sr] = 512 + r; /* later duplicates win, as dict(zip(vocab, ids)) */
        pair_put(t, sa, sb, r, sr);
        r++;
    }
    *n_merges = r;
    return SDVK_OK;
}

static sdvk_status load_openai(sd_tokenizer *t, const char *path)
{
    char *text;
    size_t len;
    SD_TRY(read_file(path, &text, &len));
    sdvk_status st = SDVK_OK;
    int n_merges = 0;
    if (memchr(text, 0, len)) {
        st = sd_err(SDVK_ERR_FORMAT, "%s: binary data, not a BPE merges text file", path);
        goto out;
    }
    if ((st = pairs_alloc(t, CLIP_MAX_MERGES)) || (st = intern_bytes(t, 1)) ||
        (st = add_merges(t, path, text, len, 1, 1, &n_merges)))
        goto out;
    if (n_merges == 0) {
        st = sd_err(SDVK_ERR_FORMAT, "%s: no merges found (expected a header line then \"A B\" lines)",
                    path);
        goto out;
    }
    int32_t id = -1;
    if ((st = sym_intern(t, k_special[0], strlen(k_special[0]), &id)))
        goto out;
    t->sym_vocab[id] = 512 + n_merges;
    t->bos = 512 + n_merges;
    if ((st = sym_intern(t, k_special[1], strlen(k_special[1]), &id)))
        goto out;
    t->sym_vocab[id] = 513 + n_merges;
    t->eos = 513 + n_merges;
    t->n_vocab = 514 + n_merges;
out:
    free(text);
    return st;
}

static sdvk_status load_hf(sd_tokenizer *t, const char *vocab_path, const char *merges_path)
{
    char *text;
    size_t len;
    SD_TRY(read_file(vocab_path, &text, &len));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!root)
        return sd_err(SDVK_ERR_FORMAT, "%s: invalid JSON at line %d: %s", vocab_path, jerr.line,
                      jerr.text);
    sdvk_status st = SDVK_OK;
    if (!json_is_object(root)) {
        st = sd_err(SDVK_ERR_FORMAT, "%s: expected a JSON object {token: id}", vocab_path);
        goto out;
    }
    const char *key;
    json_t *val;
    int max_id = -1;
    json_object_foreach(root, key, val)
    {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= (1 << 24)) {
            st = sd_err(SDVK_ERR_FORMAT, "%s: token \"%.40s\": id must be an integer in [0, 2^24)",
                        vocab_path, key);
            goto out;
        }
        int32_t id;
        if ((st = sym_intern(t, key, strlen(key), &id)))
            goto out;
        t->sym_vocab[id] = (int32_t)json_integer_value(val);
        if (t->sym_vocab[id] > max_id)
            max_id = t->sym_vocab[id];
    }
    if ((st = intern_bytes(t, 0)))
        goto out;
    for (int w = 0; w < 2; w++) {
        int32_t s = sym_find(t, k_special[w], strlen(k_special[w]));
        if (s < 0 || t->sym_vocab[s] < 0) {
            st = sd_err(SDVK_ERR_FORMAT, "%s: lacks the special token %s", vocab_path, k_special[w]);
            goto out;
        }
        if (w == 0)
            t->bos = t->sym_vocab[s];
        else
            t->eos = t->sym_vocab[s];
    }
    t->n_vocab = max_id + 1;
    if ((st = read_file(merges_path, &text, &len)))
        goto out;
    /* HF strips the file, then skips its "#version" header line. */
    size_t off = 0;
    while (off < len && (text[off] == ' ' || text[off] == '\n' || text[off] == '\r' || text[off] == '\t'))
        off++;
    int n_merges = 0;
    if (!(st = pairs_alloc(t, CLIP_MAX_MERGES)))
        st = add_merges(t, merges_path, text + off, len - off, off < len && text[off] == '#', 0,
                        &n_merges);
    free(text);
out:
    json_decref(root);
    return st;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (k > 0 && p[k - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

static char *path_dir(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s)
        return strdup(".");
    if (s == path)
        return strdup("/");
    char *d = malloc((size_t)(s - path) + 1);
    if (d) {
        memcpy(d, path, (size_t)(s - path));
        d[s - path] = 0;
    }
    return d;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

sdvk_status sd_tokenizer_load(const char *path, sd_tokenizer **out)
{
    *out = NULL;
    if (!path || !*path)
        return sd_err(SDVK_ERR_INVALID_ARG, "tokenizer: no vocabulary path given");
    sd_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return sd_err(SDVK_ERR_OOM, "tokenizer: out of memory");
    sdvk_status st = SDVK_OK;
    char *vocab = NULL, *merges = NULL, *dir = NULL;
    if (is_dir(path)) {
        vocab = path_join(path, "vocab.json");
        merges = path_join(path, "merges.txt");
        if (!vocab || !merges) {
            st = sd_err(SDVK_ERR_OOM, "tokenizer: out of memory");
        } else if (is_file(vocab) && is_file(merges)) {
            st = load_hf(t, vocab, merges);
        } else {
            char *gz = path_join(path, "bpe_simple_vocab_16e6.txt.gz");
            if (gz && is_file(gz))
                st = load_openai(t, gz);
            else
                st = sd_err(SDVK_ERR_IO,
                            "%s: folder holds neither vocab.json + merges.txt nor "
                            "bpe_simple_vocab_16e6.txt.gz",
                            path);
            free(gz);
        }
    } else if (!is_file(path)) {
        st = sd_err(SDVK_ERR_IO, "%s: no such vocabulary file or folder", path);
    } else if (ends_with(path, ".json")) {
        dir = path_dir(path);
        merges = dir ? path_join(dir, "merges.txt") : NULL;
        if (!merges)
            st = sd_err(SDVK_ERR_OOM, "tokenizer: out of memory");
        else if (!is_file(merges))
            st = sd_err(SDVK_ERR_IO, "%s: needs merges.txt beside it (%s not found)", path, merges);
        else
            st = load_hf(t, path, merges);
    } else if (ends_with(path, "merges.txt") &&
               (dir = path_dir(path)) && (vocab = path_join(dir, "vocab.json")) && is_file(vocab)) {
        st = load_hf(t, vocab, path);
    } else {
        st = load_openai(t, path);
    }
    free(vocab);
    free(merges);
    free(dir);
    if (st == SDVK_OK) {
        t->pad = t->eos;
        t->unk = t->eos; /* HF CLIPTokenizer: unk_token = <|endoftext|> */
        st = build_width_map(t);
    }
    if (st != SDVK_OK) {
        sd_tokenizer_free(t);
        return st;
    }
    *out = t;
    return SDVK_OK;
}

void sd_tokenizer_free(sd_tokenizer *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->sym_off);
    free(t->sym_len);
    free(t->sym_vocab);
    free(t->smap);
    free(t->pkey);
    free(t->prank);
    free(t->pres);
    free(t);
}

int32_t sd_tokenizer_bos(const sd_tokenizer *t) { return t->bos; }
int32_t sd_tokenizer_eos(const sd_tokenizer *t) { return t->eos; }
int32_t sd_tokenizer_pad(const sd_tokenizer *t) { return t->pad; }
int sd_tokenizer_vocab_size(const sd_tokenizer *t) { return t->n_vocab; }

#define VOCAB_HINT                                                                             \
    "give the path of the CLIP vocabulary: bpe_simple_vocab_16e6.txt.gz (OpenAI CLIP merges) "  \
    "or a tokenizer/ folder with vocab.json + merges.txt"

static sdvk_status take_path(const char *what, const char *path, char **out) {
    if (!is_file(path) && !is_dir(path))
        return sd_err(SDVK_ERR_IO, "%s %s: no such file or folder; " VOCAB_HINT, what, path);
    *out = strdup(path);
    return *out ? SDVK_OK : sd_err(SDVK_ERR_OOM, "out of memory");
}

sdvk_status sd_tokenizer_find(const char *opt, const char *model_path, const char *fallback,
                              char **out)
{
    *out = NULL;
    if (opt && *opt)
        return take_path("vocabulary", opt, out);
    char *tok = NULL;
    if (model_path && *model_path) {
        char *dir = is_dir(model_path) ? strdup(model_path) : path_dir(model_path);
        tok = dir ? path_join(dir, "tokenizer") : NULL;
        free(dir);
        if (!tok)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        char *v = path_join(tok, "vocab.json"), *m = path_join(tok, "merges.txt");
        char *g = path_join(tok, "bpe_simple_vocab_16e6.txt.gz");
        int ok = v && m && g && ((is_file(v) && is_file(m)) || is_file(g));
        free(v);
        free(m);
        free(g);
        if (ok) { /* the model's own vocabulary wins over the fallback */
            *out = tok;
            return SDVK_OK;
        }
    }
    if (fallback && *fallback) {
        free(tok);
        return take_path("vocabulary (default)", fallback, out);
    }
    sdvk_status s = tok ? sd_err(SDVK_ERR_IO, "no CLIP vocabulary found (none given, no vocab.json "
                                 "+ merges.txt in %s/); " VOCAB_HINT, tok)
                        : sd_err(SDVK_ERR_IO, "no CLIP vocabulary found (none given); " VOCAB_HINT);
    free(tok);
    return s;
}
