/* Tokenizer tests: the worked examples of ../shared/clip (both vocab
 * formats; the HF vocab.json + merges.txt are generated here from the gz as
 * README.md describes), text edge cases, A1111 weight parsing, windows,
 * vocab lookup and bad vocabulary files.
 * usage: test_tokenizer <bpe_simple_vocab_16e6.txt.gz> <tokenizer_examples.json> */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

static int g_fail = 0, g_checks = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        g_checks++;                                                        \
        if (!(cond)) {                                                     \
            g_fail++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

static void print_ids(const char *label, const int32_t *v, int n)
{
    fprintf(stderr, "  %s (%d):", label, n);
    for (int i = 0; i < n && i < 100; i++)
        fprintf(stderr, " %d", (int)v[i]);
    fprintf(stderr, "\n");
}

/* ids of text, or n = -1 on error */
static int tok(const sd_tokenizer *t, const char *text, int32_t **ids)
{
    int n;
    if (sd_tokenize(t, text, ids, &n) != SDVK_OK) {
        fprintf(stderr, "sd_tokenize failed: %s\n", sdvk_last_error());
        *ids = NULL;
        return -1;
    }
    return n;
}

/* Expects tokenize(a) == tokenize(b). */
static void same(const sd_tokenizer *t, const char *a, const char *b, const char *what)
{
    int32_t *x, *y;
    int nx = tok(t, a, &x), ny = tok(t, b, &y);
    int ok = nx >= 0 && nx == ny && (nx == 0 || memcmp(x, y, (size_t)nx * sizeof *x) == 0);
    CHECK(ok, "%s: tokenize(\"%s\") != tokenize(\"%s\")", what, a, b);
    if (!ok) {
        print_ids("a", x, nx);
        print_ids("b", y, ny);
    }
    free(x);
    free(y);
}

/* Expects tokenize(text) == the given ids. */
static void expect(const sd_tokenizer *t, const char *text, const int32_t *want, int nw)
{
    int32_t *x;
    int n = tok(t, text, &x);
    int ok = n == nw && (n == 0 || memcmp(x, want, (size_t)n * sizeof *x) == 0);
    CHECK(ok, "tokenize(\"%s\")", text);
    if (!ok) {
        print_ids("got", x, n);
        print_ids("want", want, nw);
    }
    free(x);
}

/* Expects tokenize(a) == tokenize(b1) ++ tokenize(b2) ++ tokenize(b3). */
static void concat3(const sd_tokenizer *t, const char *a, const char *b1, const char *b2,
                    const char *b3)
{
    int32_t *x, *p[3];
    int nx = tok(t, a, &x), np[3], tot = 0;
    const char *parts[3] = {b1, b2, b3};
    int32_t buf[256];
    for (int i = 0; i < 3; i++) {
        np[i] = parts[i] ? tok(t, parts[i], &p[i]) : 0;
        if (!parts[i])
            p[i] = NULL;
        if (np[i] > 0 && tot + np[i] <= 256)
            memcpy(buf + tot, p[i], (size_t)np[i] * sizeof *buf);
        tot += np[i] > 0 ? np[i] : 0;
        free(p[i]);
    }
    int ok = nx == tot && memcmp(x, buf, (size_t)tot * sizeof *x) == 0;
    CHECK(ok, "split of \"%s\" into \"%s\" \"%s\" \"%s\"", a, b1, b2, b3 ? b3 : "");
    if (!ok) {
        print_ids("got", x, nx);
        print_ids("want", buf, tot);
    }
    free(x);
}

/* ------------------------------------------------------------------ examples */

static void run_examples(const sd_tokenizer *t, json_t *ex, const char *label)
{
    size_t k;
    json_t *e;
    json_array_foreach(ex, k, e)
    {
        const char *prompt = json_string_value(json_object_get(e, "prompt"));
        json_t *jids = json_object_get(e, "ids"), *jun = json_object_get(e, "ids_unpadded");
        int32_t *x;
        int n = tok(t, prompt, &x);
        CHECK(n >= 0, "%s: example %zu", label, k);
        if (n < 0)
            continue;
        /* unpadded: BOS + ids + EOS */
        int nu = (int)json_array_size(jun);
        int ok = nu == n + 2 && json_integer_value(json_array_get(jun, 0)) == sd_tokenizer_bos(t) &&
                 json_integer_value(json_array_get(jun, (size_t)nu - 1)) == sd_tokenizer_eos(t);
        for (int i = 0; ok && i < n; i++)
            ok = json_integer_value(json_array_get(jun, (size_t)i + 1)) == x[i];
        CHECK(ok, "%s: ids_unpadded of example %zu \"%s\"", label, k, prompt);
        if (!ok)
            print_ids("got", x, n);
        CHECK((int)json_integer_value(json_object_get(e, "n_tokens")) == n + 2, "%s: n_tokens %zu",
              label, k);
        /* padded, text taken literally: window 0 of sd_tokenize_prompt_ex */
        {
            sd_prompt_opts o;
            sd_prompt_opts_default(&o);
            o.parse_weights = 0;
            int32_t *ids;
            float *w;
            int nc, chunked;
            sdvk_status st = sd_tokenize_prompt_ex(t, prompt, &o, &ids, &w, &nc, &chunked);
            ok = st == SDVK_OK && json_array_size(jids) == SD_CLIP_CTX;
            for (int i = 0; ok && i < SD_CLIP_CTX; i++)
                ok = json_integer_value(json_array_get(jids, (size_t)i)) == ids[i] && w[i] == 1.0f;
            CHECK(ok, "%s: padded ids (literal) of example %zu \"%s\"", label, k, prompt);
            if (st == SDVK_OK) {
                free(ids);
                free(w);
            }
        }
        /* padded: via sd_tokenize_prompt (window 0); plain prompts only,
         * since brackets are weight syntax there. */
        if (!strpbrk(prompt, "()[]\\:")) {
            int32_t *ids;
            float *w;
            int nc, chunked;
            sdvk_status st = sd_tokenize_prompt(t, prompt, 1, &ids, &w, &nc, &chunked);
            CHECK(st == SDVK_OK, "%s: sd_tokenize_prompt example %zu", label, k);
            if (st != SDVK_OK)
                continue;
            ok = json_array_size(jids) == SD_CLIP_CTX;
            for (int i = 0; ok && i < SD_CLIP_CTX; i++)
                ok = json_integer_value(json_array_get(jids, (size_t)i)) == ids[i] && w[i] == 1.0f;
            CHECK(ok, "%s: padded ids of example %zu \"%s\"", label, k, prompt);
            CHECK(nc == (n + SD_CLIP_CHUNK - 1) / SD_CLIP_CHUNK + (n == 0) && chunked == (n > 75),
                  "%s: example %zu: %d windows", label, k, nc);
            /* The second window of a long prompt holds the rest. */
            if (nc == 2) {
                const int32_t *w2 = ids + SD_CLIP_CTX;
                ok = w2[0] == sd_tokenizer_bos(t);
                for (int i = 0; ok && i < n - 75; i++)
                    ok = w2[1 + i] == x[75 + i];
                ok = ok && w2[n - 75 + 1] == sd_tokenizer_eos(t);
                for (int i = n - 75 + 2; ok && i < SD_CLIP_CTX; i++)
                    ok = w2[i] == sd_tokenizer_pad(t);
                CHECK(ok, "%s: window 2 of example %zu", label, k);
            }
            free(ids);
            free(w);
        }
        free(x);
    }
}

/* ------------------------------------------------------------------ HF files */

static void byte_chars(int32_t cps_in_order[256])
{
    int k = 0, extra = 0, is_p[256];
    for (int b = 0; b < 256; b++) {
        is_p[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (is_p[b])
            cps_in_order[k++] = b;
    }
    for (int b = 0; b < 256; b++)
        if (!is_p[b])
            cps_in_order[k++] = 0x100 + extra++;
}

static int put_utf8(char *o, int32_t c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    o[0] = (char)(0xC0 | (c >> 6)); /* byte chars are all < U+0800 */
    o[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

/* Writes dir/vocab.json and dir/merges.txt from the OpenAI gz file, as
 * README.md describes (ids 0..255 byte chars, 256..511 with </w>, merges,
 * then the two special tokens). */
static int write_hf(const char *gz_path, const char *dir)
{
    gzFile f = gzopen(gz_path, "rb");
    if (!f)
        return -1;
    size_t cap = 4 << 20, n = 0;
    char *buf = malloc(cap);
    int r;
    while (buf && (r = gzread(f, buf + n, (unsigned)(cap - n))) > 0)
        n += (size_t)r;
    gzclose(f);
    if (!buf || n >= cap)
        return -1;
    char path[8192];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    FILE *m = fopen(path, "wb");
    json_t *vocab = json_object();
    int32_t cps[256];
    byte_chars(cps);
    char s[64];
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < 256; i++) {
            int l = put_utf8(s, cps[i]);
            strcpy(s + l, w ? "</w>" : "");
            json_object_set_new(vocab, s, json_integer(w * 256 + i));
        }
    fprintf(m, "#version: 0.2\n");
    char *p = buf, *end = buf + n;
    int line = 0, merges = 0;
    while (p < end && merges < 48894) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if (line++ > 0) {
            fwrite(p, 1, (size_t)(nl - p) + 1, m);
            char tok[256];
            size_t k = 0;
            for (char *q = p; q < nl && k < sizeof tok - 1; q++)
                if (*q != ' ')
                    tok[k++] = *q;
            tok[k] = 0;
            json_object_set_new(vocab, tok, json_integer(512 + merges));
            merges++;
        }
        p = nl + 1;
    }
    json_object_set_new(vocab, "<|startoftext|>", json_integer(49406));
    json_object_set_new(vocab, "<|endoftext|>", json_integer(49407));
    fclose(m);
    free(buf);
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    int rc = json_dump_file(vocab, path, JSON_COMPACT) == 0 && json_object_size(vocab) == 49408 ? 0 : -1;
    json_decref(vocab);
    return rc;
}

/* ------------------------------------------------------------------ edge cases */

static void edge_cases(const sd_tokenizer *t)
{
    int32_t *x;
    int n;
    n = tok(t, "", &x);
    CHECK(n == 0 && x != NULL, "empty prompt gives no ids (n=%d)", n);
    free(x);
    n = tok(t, " \t\n\r\f\v \xc2\xa0\xe3\x80\x80 ", &x);
    CHECK(n == 0, "whitespace-only prompt gives no ids (n=%d)", n);
    free(x);

    /* Digits: one piece each; '0' is byte 0x30 = id 0x30-0x21 = 15, +256 with </w>. */
    expect(t, "2023", (int32_t[]){273, 271, 273, 274}, 4);
    expect(t, "a photo of a cat", (int32_t[]){320, 1125, 539, 320, 2368}, 5);
    /* Case: Unicode lowercase, NFC. */
    same(t, "ÉCOLE", "école", "uppercase accents");
    same(t, "E\xcc\x81" "cole", "école", "NFC of e + combining acute");
    same(t, "CRÈME BRÛLÉE", "crème brûlée", "uppercase accents 2");
    same(t, "ΟΔΟΣ", "οδος", "Greek final sigma (str.lower)");
    same(t, "ΣΑ", "σα", "Greek sigma not final");
    same(t, "\xc4\xb0", "i\xcc\x87", "U+0130 lowercases to i + U+0307");
    same(t, "ПРИВЕТ мир", "привет мир", "Cyrillic");
    /* Contractions split only where a piece starts with the apostrophe. */
    concat3(t, "don't", "don", "'t", NULL);
    concat3(t, "it's", "it", "'s", NULL);
    concat3(t, "'sunny'", "'s", "unny", "'");
    concat3(t, "we'll", "we", "'ll", NULL);
    concat3(t, "they're", "they", "'re", NULL);
    concat3(t, "I'VE", "i", "'ve", NULL);
    concat3(t, "what?'s", "what", "?'s", NULL);
    same(t, "it\xe2\x80\x99s", "it's", "ftfy straightens curly apostrophes");
    same(t, "\xe2\x80\x9cquoted\xe2\x80\x9d", "\"quoted\"", "ftfy straightens curly quotes");
    same(t, "\xef\xac\x81ne", "fine", "ftfy splits ligatures");
    same(t, "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xef\xbc\x91", "abc1", "ftfy fullwidth forms");
    same(t, "a\xc2\xa0" "b\xe2\x80\x83" "c", "a b c", "Unicode spaces collapse");
    same(t, "a\x01\x7f" "b", "ab", "ftfy removes control characters");
    same(t, "\x1b[31mred\x1b[0m", "red", "ftfy removes terminal escapes");
    same(t, "&amp;", "& amp ;", "HTML entities kept literally");
    /* Letters run together across scripts; digits split; punctuation runs. */
    concat3(t, "abc123", "abc", "1", "23");
    concat3(t, "hello!!!world", "hello", "!!!", "world");
    concat3(t, "抹茶🍰", "抹茶", "🍰", NULL);
    expect(t, "🍰", (int32_t[]){30051}, 1);
    /* Special tokens. */
    expect(t, "<|startoftext|>", (int32_t[]){49406}, 1);
    expect(t, "a<|endoftext|>b", (int32_t[]){320, 49407, 321}, 3);
    expect(t, "<|ENDOFTEXT|>", (int32_t[]){49407}, 1);
    expect(t, ":<|endoftext|>", (int32_t[]){281, 49407}, 2);
    /* Invalid UTF-8: one U+FFFD per maximal ill-formed subpart. */
    same(t, "a\xff" "b", "a\xef\xbf\xbd" "b", "invalid byte");
    same(t, "x\xe2\x82", "x\xef\xbf\xbd", "truncated sequence");
    same(t, "x\xed\xa0\x80y", "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy", "surrogate bytes");
    same(t, "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", "overlong");

    /* 1 MB prompts. */
    size_t big = 1 << 20;
    char *s = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        s[i] = (i & 1) ? ' ' : 'a';
    s[big] = 0;
    n = tok(t, s, &x);
    int ok = n == (int)(big / 2);
    for (int i = 0; ok && i < n; i++)
        ok = x[i] == 320;
    CHECK(ok, "1 MB 'a a a ...': %d ids", n);
    free(x);
    memset(s, '!', big);
    n = tok(t, s, &x);
    ok = n > 0 && n < (int)big;
    for (int i = 0; ok && i < n; i++)
        ok = x[i] >= 0 && x[i] < 49406;
    CHECK(ok, "1 MB punctuation run: %d ids", n);
    free(x);
    for (size_t i = 0; i < big; i++)
        s[i] = "\xf0\x9f\x8d\xb0 "[i % 5]; /* cake emoji + space */
    s[big - big % 5] = 0;
    n = tok(t, s, &x);
    CHECK(n == (int)(big / 5), "1 MB of emoji: %d ids", n);
    free(x);
    free(s);

    /* Windows: 200 tokens -> 3 windows; min_chunks pads with empty windows. */
    char p200[401];
    for (int i = 0; i < 200; i++) {
        p200[2 * i] = 'a';
        p200[2 * i + 1] = ' ';
    }
    p200[400] = 0;
    int32_t *ids;
    float *w;
    int nc, chunked;
    CHECK(sd_tokenize_prompt(t, p200, 1, &ids, &w, &nc, &chunked) == SDVK_OK, "200 tokens");
    CHECK(nc == 3 && chunked == 1, "200 tokens: %d windows (want 3)", nc);
    ok = 1;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < SD_CLIP_CTX; i++) {
            int pos = c * 75 + i - 1; /* token index */
            int32_t want = i == 0 ? 49406 : (i <= 75 && pos < 200) ? 320 : 49407;
            ok &= ids[c * SD_CLIP_CTX + i] == want && w[c * SD_CLIP_CTX + i] == 1.0f;
        }
    CHECK(ok, "200 tokens: window contents");
    free(ids);
    free(w);
    CHECK(sd_tokenize_prompt(t, "", 3, &ids, &w, &nc, &chunked) == SDVK_OK && nc == 3 && !chunked,
          "empty negative prompt padded to 3 windows");
    ok = 1;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < SD_CLIP_CTX; i++)
            ok &= ids[c * SD_CLIP_CTX + i] == (i == 0 ? 49406 : 49407);
    CHECK(ok, "empty windows are BOS + EOS padding");
    free(ids);
    free(w);
    /* Exactly 75 tokens: one window; 76: two. */
    p200[150] = 0;
    CHECK(sd_tokenize_prompt(t, p200, 1, &ids, &w, &nc, &chunked) == SDVK_OK && nc == 1 && !chunked,
          "75 tokens: one window (got %d)", nc);
    CHECK(ids[75] == 320 && ids[76] == 49407, "75 tokens fill the window");
    free(ids);
    free(w);
    p200[150] = 'a';
    p200[151] = 0;
    CHECK(sd_tokenize_prompt(t, p200, 1, &ids, &w, &nc, &chunked) == SDVK_OK && nc == 2 && chunked,
          "76 tokens: two windows (got %d)", nc);
    free(ids);
    free(w);
    /* A 1 MB prompt is refused with a clear message, not a 10,000-window context. */
    s = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        s[i] = (i & 1) ? ' ' : 'a';
    s[big] = 0;
    sdvk_status st = sd_tokenize_prompt(t, s, 1, &ids, &w, &nc, &chunked);
    CHECK(st == SDVK_ERR_INVALID_ARG && strstr(sdvk_last_error(), "too long"),
          "1 MB prompt refused: %s", sdvk_last_error());
    free(s);
}

/* Random bytes (invalid UTF-8, control bytes, brackets): every call
 * succeeds, ids stay in the vocabulary, weights are finite. */
static void random_bytes(const sd_tokenizer *t)
{
    unsigned seed = 42;
    char buf[301];
    const char alphabet[] = "()[]:\\ ,.'a1<|>";
    int ok = 1;
    for (int it = 0; it < 3000 && ok; it++) {
        int len = (int)(seed % 300);
        for (int i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            buf[i] = (r & 1) ? alphabet[(r >> 1) % (sizeof alphabet - 1)] : (char)(1 + (r >> 1) % 255);
        }
        buf[len] = 0;
        seed = seed * 1103515245u + 12345u;
        int32_t *ids;
        float *w;
        int n, nc, ch;
        ok = sd_tokenize(t, buf, &ids, &n) == SDVK_OK;
        for (int i = 0; ok && i < n; i++)
            ok = ids[i] >= 0 && ids[i] < sd_tokenizer_vocab_size(t);
        free(ids);
        if (!ok)
            break;
        ok = sd_tokenize_prompt(t, buf, 2, &ids, &w, &nc, &ch) == SDVK_OK && nc >= 2;
        for (int i = 0; ok && i < nc * SD_CLIP_CTX; i++)
            ok = ids[i] >= 0 && ids[i] < sd_tokenizer_vocab_size(t) && isfinite(w[i]);
        if (ok) {
            free(ids);
            free(w);
        }
    }
    CHECK(ok, "random byte strings tokenize cleanly");
}

/* ------------------------------------------------------------------ weights */

static int spans_are(const char *prompt, int n, const char **texts, const double *ws)
{
    sd_prompt_span *sp;
    int ns;
    if (sd_prompt_parse(prompt, 1, &sp, &ns) != SDVK_OK)
        return 0;
    int ok = ns == n;
    for (int i = 0; ok && i < n; i++)
        ok = strcmp(sp[i].text, texts[i]) == 0 && sp[i].weight == ws[i];
    if (!ok) {
        fprintf(stderr, "  spans of \"%s\":", prompt);
        for (int i = 0; i < ns; i++)
            fprintf(stderr, " [\"%s\" %.17g]", sp[i].text, sp[i].weight);
        fprintf(stderr, "\n");
    }
    sd_prompt_spans_free(sp, ns);
    return ok;
}

#define SPANS(prompt, ...)                                                           \
    do {                                                                             \
        struct { const char *t; double w; } e_[] = {__VA_ARGS__};                   \
        const char *t_[16];                                                          \
        double w_[16];                                                               \
        int n_ = (int)(sizeof e_ / sizeof e_[0]);                                    \
        for (int i_ = 0; i_ < n_; i_++) {                                            \
            t_[i_] = e_[i_].t;                                                       \
            w_[i_] = e_[i_].w;                                                       \
        }                                                                            \
        CHECK(spans_are(prompt, n_, t_, w_), "A1111 spans of \"%s\"", prompt);      \
    } while (0)

static void weights(const sd_tokenizer *t)
{
    const double r = 1.1, s = 1 / 1.1;
    SPANS("a photo", {"a photo", 1.0});
    SPANS("", {"", 1.0});
    SPANS("(cat)", {"cat", r});
    SPANS("((cat))", {"cat", 1.0 * r * r});
    SPANS("[cat]", {"cat", s});
    SPANS("[[cat]]", {"cat", 1.0 * s * s});
    SPANS("(cat:1.3)", {"cat", 1.3});
    SPANS("( cat : 0.5 )", {" cat ", 0.5});
    SPANS("a (b) c", {"a ", 1.0}, {"b", r}, {" c", 1.0});
    SPANS("((a) b)", {"a", r * r}, {" b", r});
    SPANS("(a:1.5) [b] (c)", {"a", 1.5}, {" ", 1.0}, {"b", s}, {" ", 1.0}, {"c", r});
    SPANS("\\(a\\)", {"(a)", 1.0});
    SPANS("\\[x\\] \\\\", {"[x] \\\\", 1.0});
    SPANS("a\\b", {"a\\b", 1.0});
    SPANS("a(\\:0.5)b", {"a", 1.0}, {"\\", 0.5}, {"b", 1.0});
    SPANS("((a", {"a", r * r});
    SPANS("a)) b]", {"a)) b]", 1.0});
    SPANS("a: b", {"a: b", 1.0});
    SPANS("a:1.3) b", {"a:1.3) b", 1.0});
    SPANS("(a:1.2.3)", {"a:1.2.3", r});
    SPANS("(a)(b)", {"ab", r});
    SPANS("x (y:-1)", {"x ", 1.0}, {"y", -1.0});
    SPANS("a BREAK b", {"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0});
    SPANS("[(a:1.3)]", {"a", 1.3 * s});
    /* Without brackets, the weighted path gives exactly the plain ids. */
    {
        const char *plain[] = {"a photo of a cat", "C:\\path\\to a: b :: c:1.3", "\\\\ x \\",
                               "it's 4k, 85mm f/1.4 & more!!", "crème brûlée & 抹茶 🍰", ""};
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
            int32_t *ids, *pl;
            float *w;
            int nc, ch;
            int np = tok(t, plain[i], &pl);
            int ok = sd_tokenize_prompt(t, plain[i], 1, &ids, &w, &nc, &ch) == SDVK_OK && np >= 0 &&
                 np <= 75 && nc == 1 && ids[0] == 49406 && ids[np + 1] == 49407;
            for (int k = 0; ok && k < np; k++)
                ok = ids[1 + k] == pl[k] && w[1 + k] == 1.0f;
            CHECK(ok, "plain prompt \"%s\" unchanged by weight parsing", plain[i]);
            if (ok) {
                free(ids);
                free(w);
            }
            free(pl);
        }
    }
    /* No crash on bracket soup. */
    const char *soup[] = {")))(((", "]][[", "(:", ":)", "(a:)", "(a:+)", "\\", "((((((((((x",
                          "[[[[(((:2)]]]]", "(a:1e5)", "(:.5)"};
    for (size_t i = 0; i < sizeof soup / sizeof soup[0]; i++) {
        int32_t *ids;
        float *w;
        int nc, ch;
        CHECK(sd_tokenize_prompt(t, soup[i], 1, &ids, &w, &nc, &ch) == SDVK_OK && nc == 1,
              "bracket soup \"%s\"", soup[i]);
        free(ids);
        free(w);
    }
    /* Weights that overflow float are a clear error, not inf/NaN in the context. */
    {
        char deep[10002];
        memset(deep, '(', 10000);
        deep[10000] = 'a';
        deep[10001] = 0;
        int32_t *ids;
        float *w;
        int nc, ch;
        CHECK(sd_tokenize_prompt(t, deep, 1, &ids, &w, &nc, &ch) == SDVK_ERR_INVALID_ARG &&
                  strstr(sdvk_last_error(), "overflows"),
              "10,000 nested brackets: %s", sdvk_last_error());
        CHECK(sd_tokenize_prompt(t, "(a:1000000000000000000000000000000000000000)", 1, &ids, &w, &nc,
                                 &ch) == SDVK_ERR_INVALID_ARG,
              "weight 1e39: %s", sdvk_last_error());
        CHECK(sd_tokenize_prompt(t, "((((((((((((((((((((a:0.5)))))))))))))))))))", 1, &ids, &w, &nc,
                                 &ch) == SDVK_OK &&
                  fabsf(w[1] - (float)(0.5 * pow(1.1, 19))) < 1e-5f,
              "20 nested brackets");
        free(ids);
        free(w);
    }
    /* Weighted windows: each span tokenized alone, its tokens get its weight. */
    int32_t *ids;
    float *w;
    int nc, ch;
    CHECK(sd_tokenize_prompt(t, "a (cat) photo of [a] (dog:1.3)", 1, &ids, &w, &nc, &ch) == SDVK_OK,
          "weighted prompt");
    int32_t want[] = {49406, 320, 2368, 1125, 539, 320, 1929, 49407};
    float wantw[] = {1, 1, 1.1f, 1, 1, (float)(1 / 1.1), 1.3f, 1};
    int ok = nc == 1;
    for (int i = 0; ok && i < 8; i++)
        ok = ids[i] == want[i] && w[i] == wantw[i];
    for (int i = 8; ok && i < SD_CLIP_CTX; i++)
        ok = ids[i] == 49407 && w[i] == 1.0f;
    CHECK(ok, "weighted prompt ids/weights");
    if (!ok)
        print_ids("got", ids, 10);
    free(ids);
    free(w);
    /* The bracketed worked example, weighted: the brackets and ":1.3" are
     * syntax; word ids as in its literal tokenization. */
    CHECK(sd_tokenize_prompt(t, "(ultra detailed:1.3), [lowres]", 1, &ids, &w, &nc, &ch) == SDVK_OK,
          "weighted example");
    {
        int32_t want2[] = {49406, 8118, 12609, 267, 1049, 934, 49407, 49407};
        float wantw2[] = {1, 1.3f, 1.3f, 1, (float)(1 / 1.1), (float)(1 / 1.1), 1, 1};
        ok = nc == 1 && !ch;
        for (int i = 0; ok && i < 8; i++)
            ok = ids[i] == want2[i] && w[i] == wantw2[i];
        CHECK(ok, "weighted example ids/weights");
        if (!ok)
            print_ids("got", ids, 10);
    }
    free(ids);
    free(w);
    /* BREAK and comma backtracking through the _ex options. */
    sd_prompt_opts o;
    sd_prompt_opts_default(&o);
    o.enable_break = 1;
    CHECK(sd_tokenize_prompt_ex(t, "a BREAK cat", &o, &ids, &w, &nc, &ch) == SDVK_OK && nc == 2 &&
              ids[1] == 320 && ids[2] == 49407 && ids[77 + 1] == 2368 && ids[77 + 2] == 49407,
          "BREAK starts a new window");
    free(ids);
    free(w);
    CHECK(sd_tokenize_prompt(t, "a BREAK cat", 1, &ids, &w, &nc, &ch) == SDVK_OK && nc == 1,
          "BREAK is plain text by default");
    {
        int32_t *pl;
        int np = tok(t, "a BREAK cat", &pl);
        ok = np == 3 && ids[0] == 49406 && memcmp(ids + 1, pl, 3 * sizeof *pl) == 0 && ids[4] == 49407;
        CHECK(ok, "BREAK by default: same ids as the plain text");
        free(pl);
    }
    free(ids);
    free(w);
    char buf[512];
    size_t p = 0;
    for (int i = 0; i < 70; i++)
        p += (size_t)sprintf(buf + p, "a ");
    p += (size_t)sprintf(buf + p, ", ");
    for (int i = 0; i < 10; i++)
        p += (size_t)sprintf(buf + p, "b ");
    sd_prompt_opts_default(&o);
    o.comma_backtrack = 20;
    CHECK(sd_tokenize_prompt_ex(t, buf, &o, &ids, &w, &nc, &ch) == SDVK_OK && nc == 2,
          "comma backtrack: 2 windows");
    CHECK(ids[70] == 320 && ids[71] == 267 && ids[72] == 49407 && ids[77 + 1] == 321 &&
              ids[77 + 10] == 321 && ids[77 + 11] == 49407,
          "comma backtrack moves the words after the comma to the next window");
    free(ids);
    free(w);
    CHECK(sd_tokenize_prompt(t, buf, 1, &ids, &w, &nc, &ch) == SDVK_OK && nc == 2 && ids[75] != 49407 &&
              ids[76] == 49407 && ids[77 + 7] == 49407,
          "plain 75-token windows by default");
    free(ids);
    free(w);

    /* Emphasis on the CLIP output: weighted rows scaled, then the window mean restored. */
    int dim = 3;
    float z[2 * 77 * 3], z0[2 * 77 * 3], wt[2 * 77];
    for (int i = 0; i < 2 * 77 * 3; i++)
        z[i] = z0[i] = (float)sin(i * 0.37) + 0.25f;
    for (int i = 0; i < 2 * 77; i++)
        wt[i] = 1.0f;
    wt[5] = 1.21f;
    wt[9] = 0.5f;
    sd_apply_prompt_weights(z, wt, 2, dim);
    double m0 = 0, m1 = 0, mz = 0;
    for (int i = 0; i < 77 * 3; i++) {
        m0 += z0[i];
        m1 += z0[i] * wt[i / 3];
        mz += z[i];
    }
    float ratio = (float)(m0 / m1);
    double maxerr = 0;
    for (int i = 0; i < 77 * 3; i++)
        maxerr = fmax(maxerr, fabs(z[i] - z0[i] * wt[i / 3] * ratio));
    CHECK(maxerr < 1e-6 && fabs(mz - m0) < 1e-4, "mean restore: max err %g, mean %g vs %g", maxerr,
          mz, m0);
    CHECK(memcmp(z + 77 * 3, z0 + 77 * 3, 77 * 3 * sizeof(float)) == 0,
          "unweighted window untouched (bit-exact)");
}

/* ------------------------------------------------------------------ files */

static void write_file(const char *path, const void *data, size_t n)
{
    if (n == 0)
        n = strlen(data);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void bad_files(const char *gz, const char *dir)
{
    sd_tokenizer *t = NULL;
    char p[4096], q[4096];
    CHECK(sd_tokenizer_load("/nonexistent/vocab.txt.gz", &t) == SDVK_ERR_IO && !t,
          "missing file: %s", sdvk_last_error());
    snprintf(p, sizeof p, "%s/garbage.txt.gz", dir);
    write_file(p, "\x1f\x8b\x08\x00garbagegarbagegarbage", 25);
    CHECK(sd_tokenizer_load(p, &t) != SDVK_OK && !t, "corrupt gzip: %s", sdvk_last_error());
    /* truncated copy of the real file */
    FILE *f = fopen(gz, "rb");
    char head[20000];
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    snprintf(p, sizeof p, "%s/trunc.txt.gz", dir);
    write_file(p, head, n);
    sdvk_status st = sd_tokenizer_load(p, &t);
    CHECK(st == SDVK_ERR_FORMAT && !t, "truncated gzip: %d %s", st, sdvk_last_error());
    snprintf(p, sizeof p, "%s/bad.txt", dir);
    write_file(p, "#version\na b\nthis line has three\n", 0);
    st = sd_tokenizer_load(p, &t);
    CHECK(st == SDVK_ERR_FORMAT && strstr(sdvk_last_error(), "line 3"), "bad merge line: %s",
          sdvk_last_error());
    snprintf(p, sizeof p, "%s/badjson", dir);
    mkdir(p, 0755);
    snprintf(q, sizeof q, "%s/badjson/vocab.json", dir);
    write_file(q, "{\"a\": 1,", 0);
    snprintf(q, sizeof q, "%s/badjson/merges.txt", dir);
    write_file(q, "#version: 0.2\n", 0);
    st = sd_tokenizer_load(p, &t);
    CHECK(st == SDVK_ERR_FORMAT && strstr(sdvk_last_error(), "vocab.json"), "bad JSON: %s",
          sdvk_last_error());
    snprintf(q, sizeof q, "%s/badjson/vocab.json", dir);
    write_file(q, "{\"a\": 1}", 0);
    st = sd_tokenizer_load(p, &t);
    CHECK(st == SDVK_ERR_FORMAT && strstr(sdvk_last_error(), "<|startoftext|>"),
          "vocab without special tokens: %s", sdvk_last_error());
    /* A small custom vocab: special ids come from it. */
    write_file(q, "{\"a</w>\": 0, \"b\": 1, \"c</w>\": 2, \"bc</w>\": 3, \"<|startoftext|>\": 4, \"<|endoftext|>\": 5}",
               0);
    snprintf(q, sizeof q, "%s/badjson/merges.txt", dir);
    write_file(q, "#version: 0.2\nb c</w>\n", 0);
    st = sd_tokenizer_load(p, &t);
    CHECK(st == SDVK_OK, "small vocab: %s", sdvk_last_error());
    if (t) {
        CHECK(sd_tokenizer_bos(t) == 4 && sd_tokenizer_eos(t) == 5 && sd_tokenizer_pad(t) == 5 &&
                  sd_tokenizer_vocab_size(t) == 6,
              "small vocab special ids");
        expect(t, "a BC z", (int32_t[]){0, 3, 5}, 3); /* z unknown -> unk = <|endoftext|> */
        int32_t *ids;
        float *w;
        int nc, ch;
        CHECK(sd_tokenize_prompt(t, "a", 1, &ids, &w, &nc, &ch) == SDVK_OK && ids[0] == 4 &&
                  ids[1] == 0 && ids[2] == 5 && ids[76] == 5,
              "small vocab window");
        free(ids);
        free(w);
        sd_tokenizer_free(t);
        t = NULL;
    }

    /* Lookup order: the explicit path, the model's own tokenizer/, the
     * fallback (the CLI's $SDVK_VOCAB). */
    char *out = NULL;
    st = sd_tokenizer_find("/nonexistent/x.gz", NULL, NULL, &out);
    CHECK(st != SDVK_OK && strstr(sdvk_last_error(), "/nonexistent/x.gz"), "explicit missing: %s",
          sdvk_last_error());
    st = sd_tokenizer_find(NULL, "/nonexistent/model.safetensors", NULL, &out);
    CHECK(st != SDVK_OK && strstr(sdvk_last_error(), "bpe_simple_vocab_16e6.txt.gz"),
          "nothing found says what to give: %s", sdvk_last_error());
    st = sd_tokenizer_find(NULL, NULL, NULL, &out);
    CHECK(st != SDVK_OK && strstr(sdvk_last_error(), "vocabulary"), "no model: %s", sdvk_last_error());
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    snprintf(q, sizeof q, "%s/tokenizer", dir);
    st = sd_tokenizer_find(NULL, p, NULL, &out);
    CHECK(st == SDVK_OK && out && strcmp(out, q) == 0, "tokenizer/ beside the model: %s",
          out ? out : sdvk_last_error());
    free(out);
    out = NULL;
    st = sd_tokenizer_find(NULL, p, gz, &out);
    CHECK(st == SDVK_OK && out && strcmp(out, q) == 0, "the model's own wins over the fallback");
    free(out);
    out = NULL;
    st = sd_tokenizer_find(NULL, "/nonexistent/model.safetensors", gz, &out);
    CHECK(st == SDVK_OK && out && strcmp(out, gz) == 0, "the fallback when the model has none");
    free(out);
    out = NULL;
    st = sd_tokenizer_find(gz, p, NULL, &out);
    CHECK(st == SDVK_OK && out && strcmp(out, gz) == 0, "the explicit path wins");
    free(out);
}

static void rm_rf(const char *dir)
{
    const char *names[] = {"tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer",
                           "garbage.txt.gz", "trunc.txt.gz", "bad.txt", "badjson/vocab.json",
                           "badjson/merges.txt", "badjson"};
    char p[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (remove(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <bpe_simple_vocab_16e6.txt.gz> <tokenizer_examples.json>\n", argv[0]);
        return 2;
    }
    json_error_t je;
    json_t *ex = json_load_file(argv[2], 0, &je);
    if (!ex || json_array_size(ex) < 8) {
        fprintf(stderr, "cannot read %s: %s\n", argv[2], je.text);
        return 1;
    }
    sd_tokenizer *t;
    if (sd_tokenizer_load(argv[1], &t) != SDVK_OK) {
        fprintf(stderr, "load %s: %s\n", argv[1], sdvk_last_error());
        return 1;
    }
    CHECK(sd_tokenizer_bos(t) == 49406 && sd_tokenizer_eos(t) == 49407 && sd_tokenizer_pad(t) == 49407 &&
              sd_tokenizer_vocab_size(t) == 49408,
          "CLIP special ids and vocab size");
    run_examples(t, ex, "gz");
    edge_cases(t);
    random_bytes(t);
    weights(t);

    char dir[] = "/tmp/sdvk_tok_XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    char tdir[4096];
    snprintf(tdir, sizeof tdir, "%s/tokenizer", dir);
    mkdir(tdir, 0755);
    CHECK(write_hf(argv[1], tdir) == 0, "writing vocab.json + merges.txt");
    const char *forms[3] = {"", "/vocab.json", "/merges.txt"};
    for (int f = 0; f < 3; f++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", tdir, forms[f]);
        sd_tokenizer *h;
        sdvk_status st = sd_tokenizer_load(p, &h);
        CHECK(st == SDVK_OK, "load HF form %s: %s", p, sdvk_last_error());
        if (st != SDVK_OK)
            continue;
        CHECK(sd_tokenizer_bos(h) == 49406 && sd_tokenizer_eos(h) == 49407 &&
                  sd_tokenizer_vocab_size(h) == 49408,
              "HF special ids");
        run_examples(h, ex, "hf");
        if (f == 0)
            edge_cases(h);
        sd_tokenizer_free(h);
    }
    bad_files(argv[1], dir);
    rm_rf(dir);
    sd_tokenizer_free(t);
    json_decref(ex);
    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
