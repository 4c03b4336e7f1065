/* A1111-style prompts: emphasis parsing (modules/prompt_parser.py
 * parse_prompt_attention), 75-token windows (modules/sd_hijack_clip.py
 * tokenize_line) and the weight + mean-restore step on the CLIP output.
 * Each weighted span is tokenized on its own, as A1111 does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

/* ---------------------------------------------------------------- parse */

typedef struct {
    sd_prompt_span *v;
    int n, cap;
} spanvec;

static int span_push(spanvec *s, const char *text, size_t len, double w)
{
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        sd_prompt_span *v = realloc(s->v, (size_t)nc * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = nc;
    }
    char *t = malloc(len + 1);
    if (!t)
        return -1;
    memcpy(t, text, len);
    t[len] = 0;
    s->v[s->n].text = t;
    s->v[s->n].weight = w;
    s->n++;
    return 0;
}

typedef struct {
    int *v;
    int n, cap;
} intstack;

static int stack_push(intstack *s, int x)
{
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        int *v = realloc(s->v, (size_t)nc * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = nc;
    }
    s->v[s->n++] = x;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Python \w approximated: ASCII alphanumerics, '_' and any non-ASCII byte
 * (non-ASCII letters dominate in prompts). */
static int is_word(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 0x80 || u == '_' || (u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z');
}

/* Matches A1111's `:\s*([+-]?[.\d]+)\s*\)` at s[i] (s[i] == ':'). Returns the
 * match length and the number in *w, or 0. A number Python's float() would
 * reject ("1.2.3", ".") makes A1111 raise; here it is not a weight, and the
 * ':' is plain text. */
static size_t match_weight(const char *s, size_t i, double *w)
{
    size_t j = i + 1;
    while (is_space(s[j]))
        j++;
    size_t ns = j;
    if (s[j] == '+' || s[j] == '-')
        j++;
    size_t ds = j;
    int dots = 0, digits = 0;
    while (s[j] == '.' || is_digit(s[j])) {
        dots += s[j] == '.';
        digits += is_digit(s[j]);
        j++;
    }
    if (j == ds)
        return 0;
    size_t ne = j;
    while (is_space(s[j]))
        j++;
    if (s[j] != ')')
        return 0;
    if (dots > 1 || digits == 0)
        return 0;
    char buf[64];
    size_t len = ne - ns;
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, s + ns, len);
    buf[len] = 0;
    *w = strtod(buf, NULL);
    return j + 1 - i;
}

/* A1111 splits plain text on `\s*\bBREAK\b\s*` into parts with BREAK markers
 * (weight -1) between them. */
static int push_text(spanvec *res, const char *s, size_t len, int enable_break)
{
    if (!enable_break)
        return span_push(res, s, len, 1.0);
    size_t start = 0;
    for (size_t i = 0; i + 5 <= len; i++) {
        if (memcmp(s + i, "BREAK", 5) != 0)
            continue;
        if ((i > 0 && is_word(s[i - 1])) || (i + 5 < len && is_word(s[i + 5])))
            continue;
        size_t a = i, b = i + 5;
        while (a > start && is_space(s[a - 1]))
            a--;
        while (b < len && is_space(s[b]))
            b++;
        if (span_push(res, s + start, a - start, 1.0) || span_push(res, "BREAK", 5, -1.0))
            return -1;
        start = b;
        i = b - 1;
    }
    return span_push(res, s + start, len - start, 1.0);
}

void sd_prompt_spans_free(sd_prompt_span *spans, int n_spans)
{
    if (!spans)
        return;
    for (int i = 0; i < n_spans; i++)
        free(spans[i].text);
    free(spans);
}

sdvk_status sd_prompt_parse(const char *prompt, int enable_break, sd_prompt_span **spans,
                            int *n_spans)
{
    *spans = NULL;
    *n_spans = 0;
    if (!prompt)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_prompt_parse: NULL prompt");
    spanvec res = {0};
    intstack round = {0}, square = {0};
    const double round_mul = 1.1, square_mul = 1 / 1.1;
    const char *s = prompt;
    size_t i = 0;
    int oom = 0;
    while (s[i] && !oom) {
        char c = s[i];
        double w;
        size_t m;
        if (c == '\\') {
            char d = s[i + 1];
            if (d == '(' || d == ')' || d == '[' || d == ']') {
                oom = span_push(&res, s + i + 1, 1, 1.0);
                i += 2;
            } else {
                /* Other backslashes stay text ("\\" as two). A1111 drops
                 * a lone one and unescapes "\\"; keeping them means a
                 * prompt without brackets always gives exactly the
                 * unweighted ids. */
                size_t len = d == '\\' ? 2 : 1;
                oom = span_push(&res, s + i, len, 1.0);
                i += len;
            }
        } else if (c == '(') {
            oom = stack_push(&round, res.n);
            i++;
        } else if (c == '[') {
            oom = stack_push(&square, res.n);
            i++;
        } else if (c == ':' && (m = match_weight(s, i, &w)) > 0) {
            if (round.n > 0) {
                for (int p = round.v[--round.n]; p < res.n; p++)
                    res.v[p].weight *= w;
            } else {
                oom = push_text(&res, s + i, m, enable_break);
            }
            i += m;
        } else if (c == ')' && round.n > 0) {
            for (int p = round.v[--round.n]; p < res.n; p++)
                res.v[p].weight *= round_mul;
            i++;
        } else if (c == ']' && square.n > 0) {
            for (int p = square.v[--square.n]; p < res.n; p++)
                res.v[p].weight *= square_mul;
            i++;
        } else if (c == ')' || c == ']' || c == ':') {
            oom = push_text(&res, s + i, 1, enable_break);
            i++;
        } else {
            size_t j = i;
            while (s[j] && !strchr("\\()[]:", s[j]))
                j++;
            oom = push_text(&res, s + i, j - i, enable_break);
            i = j;
        }
    }
    /* Unclosed brackets apply to everything after them, in stack order. */
    for (int k = 0; k < round.n; k++)
        for (int p = round.v[k]; p < res.n; p++)
            res.v[p].weight *= round_mul;
    for (int k = 0; k < square.n; k++)
        for (int p = square.v[k]; p < res.n; p++)
            res.v[p].weight *= square_mul;
    free(round.v);
    free(square.v);
    if (!oom && res.n == 0)
        oom = span_push(&res, "", 0, 1.0);
    /* Merge runs of identical weights (exact double compare, as A1111).
     * Entries [0, o) are kept; a moved entry's old slot is cleared. */
    int o = 0;
    for (int k = 0; k < res.n && !oom; k++) {
        if (o > 0 && res.v[o - 1].weight == res.v[k].weight) {
            size_t a = strlen(res.v[o - 1].text), b = strlen(res.v[k].text);
            char *t = realloc(res.v[o - 1].text, a + b + 1);
            if (!t) {
                oom = 1;
                break;
            }
            memcpy(t + a, res.v[k].text, b + 1);
            res.v[o - 1].text = t;
            free(res.v[k].text);
            res.v[k].text = NULL;
        } else {
            res.v[o] = res.v[k];
            if (o != k)
                res.v[k].text = NULL;
            o++;
        }
    }
    if (oom) {
        for (int k = 0; k < res.n; k++)
            free(res.v[k].text);
        free(res.v);
        return sd_err(SDVK_ERR_OOM, "prompt parser: out of memory");
    }
    *spans = res.v;
    *n_spans = o;
    return SDVK_OK;
}

/* ---------------------------------------------------------------- windows */

typedef struct {
    int32_t *ids; /* n windows * 77 */
    float *w;
    int n, cap;
    int32_t tok[SD_CLIP_CHUNK];
    float tw[SD_CLIP_CHUNK];
    int len;       /* tokens in the open window */
    int last_comma;
} chunker;

static sdvk_status next_chunk(chunker *c, const sd_tokenizer *t)
{
    if (c->n >= SD_TOKENIZER_MAX_CHUNKS)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "prompt too long: more than %d windows of %d tokens (%d tokens); shorten it",
                      SD_TOKENIZER_MAX_CHUNKS, SD_CLIP_CHUNK, SD_TOKENIZER_MAX_CHUNKS * SD_CLIP_CHUNK);
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 4;
        int32_t *ids = realloc(c->ids, (size_t)nc * SD_CLIP_CTX * sizeof *ids);
        if (ids)
            c->ids = ids;
        float *w = realloc(c->w, (size_t)nc * SD_CLIP_CTX * sizeof *w);
        if (w)
            c->w = w;
        if (!ids || !w)
            return sd_err(SDVK_ERR_OOM, "prompt: out of memory");
        c->cap = nc;
    }
    int32_t *o = c->ids + (size_t)c->n * SD_CLIP_CTX;
    float *ow = c->w + (size_t)c->n * SD_CLIP_CTX;
    o[0] = sd_tokenizer_bos(t);
    ow[0] = 1.0f;
    for (int k = 0; k < SD_CLIP_CHUNK; k++) {
        o[1 + k] = k < c->len ? c->tok[k] : sd_tokenizer_pad(t);
        ow[1 + k] = k < c->len ? c->tw[k] : 1.0f;
    }
    o[SD_CLIP_CTX - 1] = sd_tokenizer_eos(t);
    ow[SD_CLIP_CTX - 1] = 1.0f;
    c->n++;
    c->len = 0;
    c->last_comma = -1;
    return SDVK_OK;
}

void sd_prompt_opts_default(sd_prompt_opts *o)
{
    memset(o, 0, sizeof *o);
    o->min_chunks = 1;
    o->parse_weights = 1;
}

sdvk_status sd_tokenize_prompt_ex(const sd_tokenizer *t, const char *prompt,
                                  const sd_prompt_opts *o, int32_t **ids, float **weights,
                                  int *n_chunks, int *chunked)
{
    *ids = NULL;
    *weights = NULL;
    *n_chunks = 0;
    if (chunked)
        *chunked = 0;
    if (!t || !o)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_tokenize_prompt: NULL tokenizer or options");
    if (!prompt)
        prompt = "";
    if (o->min_chunks > SD_TOKENIZER_MAX_CHUNKS)
        return sd_err(SDVK_ERR_INVALID_ARG, "min_chunks %d exceeds the limit of %d windows",
                      o->min_chunks, SD_TOKENIZER_MAX_CHUNKS);
    sd_prompt_span *spans = NULL;
    int n_spans = 0;
    sdvk_status st;
    size_t plen = strlen(prompt);
    if (o->parse_weights && plen > SD_PROMPT_MAX_BYTES)
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "prompt too long: %zu bytes (the limit for weighted prompts is %d bytes, "
                      "and %d tokens)",
                      plen, SD_PROMPT_MAX_BYTES, SD_TOKENIZER_MAX_CHUNKS * SD_CLIP_CHUNK);
    if (o->parse_weights) {
        SD_TRY(sd_prompt_parse(prompt, o->enable_break, &spans, &n_spans));
    } else {
        spans = calloc(1, sizeof *spans);
        if (!spans || !(spans[0].text = strdup(prompt))) {
            free(spans);
            return sd_err(SDVK_ERR_OOM, "prompt: out of memory");
        }
        spans[0].weight = 1.0;
        n_spans = 1;
    }
    int32_t comma = -1;
    if (o->comma_backtrack > 0) {
        int32_t *cid;
        int cn;
        if ((st = sd_tokenize(t, ",", &cid, &cn)) != SDVK_OK) {
            sd_prompt_spans_free(spans, n_spans);
            return st;
        }
        if (cn == 1)
            comma = cid[0];
        free(cid);
    }
    chunker c;
    memset(&c, 0, sizeof c);
    c.last_comma = -1;
    st = SDVK_OK;
    for (int s = 0; s < n_spans && st == SDVK_OK; s++) {
        if (spans[s].weight == -1.0 && strcmp(spans[s].text, "BREAK") == 0 && o->enable_break) {
            st = next_chunk(&c, t);
            continue;
        }
        int32_t *tok;
        int nt;
        if ((st = sd_tokenize(t, spans[s].text, &tok, &nt)) != SDVK_OK)
            break;
        float w = (float)spans[s].weight;
        if (!isfinite(w)) {
            st = sd_err(SDVK_ERR_INVALID_ARG,
                        "prompt weight of \"%.40s\" overflows (%g): too many nested brackets or "
                        "a huge (text:weight)",
                        spans[s].text, spans[s].weight);
            free(tok);
            break;
        }
        for (int k = 0; k < nt && st == SDVK_OK; k++) {
            if (tok[k] == comma) {
                c.last_comma = c.len;
            } else if (o->comma_backtrack > 0 && c.len == SD_CLIP_CHUNK && c.last_comma != -1 &&
                       c.len - c.last_comma <= o->comma_backtrack) {
                /* A1111: move the text after the last comma to the next window. */
                int brk = c.last_comma + 1, nr = c.len - brk;
                int32_t rt[SD_CLIP_CHUNK];
                float rw[SD_CLIP_CHUNK];
                memcpy(rt, c.tok + brk, (size_t)nr * sizeof *rt);
                memcpy(rw, c.tw + brk, (size_t)nr * sizeof *rw);
                c.len = brk;
                if ((st = next_chunk(&c, t)) != SDVK_OK)
                    break;
                memcpy(c.tok, rt, (size_t)nr * sizeof *rt);
                memcpy(c.tw, rw, (size_t)nr * sizeof *rw);
                c.len = nr;
            }
            if (c.len == SD_CLIP_CHUNK && (st = next_chunk(&c, t)) != SDVK_OK)
                break;
            /* an embedding named here: the longest name that matches */
            sd_prompt_emb *e = NULL;
            for (int j = 0; j < o->n_embs; j++) {
                sd_prompt_emb *x = &o->embs[j];
                if (x->name_len > 0 && x->name_len <= nt - k &&
                    !memcmp(tok + k, x->name_ids, (size_t)x->name_len * sizeof *tok) &&
                    (!e || x->name_len > e->name_len))
                    e = x;
            }
            if (e) {
                if (e->n_vec < 1 || e->n_vec > SD_CLIP_CHUNK) {
                    st = sd_err(SDVK_ERR_INVALID_ARG, "embedding with %d vectors: at most %d fit "
                                "in a prompt window", e->n_vec, SD_CLIP_CHUNK);
                    break;
                }
                e->used = 1;
                if (c.len + e->n_vec > SD_CLIP_CHUNK && (st = next_chunk(&c, t)) != SDVK_OK)
                    break;
                for (int v = 0; v < e->n_vec; v++, c.len++) {
                    c.tok[c.len] = e->first_id + v;
                    c.tw[c.len] = w;
                }
                k += e->name_len - 1;
                continue;
            }
            c.tok[c.len] = tok[k];
            c.tw[c.len] = w;
            c.len++;
        }
        free(tok);
    }
    sd_prompt_spans_free(spans, n_spans);
    if (st == SDVK_OK && (c.len > 0 || c.n == 0))
        st = next_chunk(&c, t);
    int needed = c.n;
    while (st == SDVK_OK && c.n < o->min_chunks)
        st = next_chunk(&c, t);
    if (st != SDVK_OK) {
        free(c.ids);
        free(c.w);
        return st;
    }
    *ids = c.ids;
    *weights = c.w;
    *n_chunks = c.n;
    if (chunked)
        *chunked = needed > 1;
    return SDVK_OK;
}

sdvk_status sd_tokenize_prompt(const sd_tokenizer *t, const char *prompt, int min_chunks,
                               int32_t **ids, float **weights, int *n_chunks, int *chunked)
{
    sd_prompt_opts o;
    sd_prompt_opts_default(&o);
    o.min_chunks = min_chunks;
    return sd_tokenize_prompt_ex(t, prompt, &o, ids, weights, n_chunks, chunked);
}

/* ---------------------------------------------------------------- weights */

void sd_apply_prompt_weights(float *z, const float *weights, int n_chunks, int dim)
{
    size_t win = (size_t)SD_CLIP_CTX * (size_t)dim;
    for (int c = 0; c < n_chunks; c++) {
        float *zc = z + (size_t)c * win;
        const float *wc = weights + (size_t)c * SD_CLIP_CTX;
        int plain = 1;
        for (int i = 0; i < SD_CLIP_CTX; i++)
            plain &= wc[i] == 1.0f;
        if (plain)
            continue;
        double m0 = 0, m1 = 0;
        for (size_t i = 0; i < win; i++)
            m0 += zc[i];
        for (int i = 0; i < SD_CLIP_CTX; i++)
            for (int d = 0; d < dim; d++) {
                float *p = zc + (size_t)i * dim + d;
                *p *= wc[i];
                m1 += *p;
            }
        if (m1 == 0)
            continue; /* nothing sensible to restore */
        float r = (float)(m0 / m1);
        for (size_t i = 0; i < win; i++)
            zc[i] *= r;
    }
}
