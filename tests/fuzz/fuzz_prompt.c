/* Fuzz target: tokenizer + A1111 prompt weighting.
 *
 * Input: byte 0 picks the options (weights on/off, BREAK, comma backtrack,
 * min_chunks), the rest is the prompt (up to the first NUL: the API takes C
 * strings). Runs sd_prompt_parse, sd_tokenize_prompt_ex and sd_tokenize and
 * checks what a caller relies on: ids inside the vocabulary, windows of 77
 * that start with BOS and end with EOS/pad, finite weights, and that
 * sd_apply_prompt_weights keeps finite numbers finite. The CLIP vocabulary is
 * loaded once ($SDVK_VOCAB, else the path compiled in). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "fuzz_common.h"
#include "tokenizer/tokenizer.h"

#ifndef SDVK_FUZZ_VOCAB
#define SDVK_FUZZ_VOCAB "../shared/clip/bpe_simple_vocab_16e6.txt.gz"
#endif

static sd_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *v = getenv("SDVK_VOCAB");
    if (!v || !*v)
        v = SDVK_FUZZ_VOCAB;
    if (sd_tokenizer_load(v, &g_tok) != SDVK_OK) {
        fprintf(stderr, "fuzz_prompt: cannot load the vocabulary: %s\n", sdvk_last_error());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok)
        LLVMFuzzerInitialize(NULL, NULL);
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;

    sd_prompt_span *spans = NULL;
    int n_spans = 0;
    if (sd_prompt_parse(text, opt & 2, &spans, &n_spans) == SDVK_OK) {
        for (int i = 0; i < n_spans; i++) {
            FUZZ_CHECK(spans[i].text != NULL);
        }
        sd_prompt_spans_free(spans, n_spans);
    } else {
        FUZZ_CHECK_MSG();
    }

    sd_prompt_opts o;
    sd_prompt_opts_default(&o);
    o.parse_weights = !(opt & 1);
    o.enable_break = (opt >> 1) & 1;
    o.comma_backtrack = (opt >> 2) & 1 ? 20 : 0;
    o.min_chunks = 1 + ((opt >> 3) & 3);
    int32_t *ids = NULL;
    float *w = NULL;
    int n_chunks = 0, chunked = 0;
    const int vocab = sd_tokenizer_vocab_size(g_tok);
    if (sd_tokenize_prompt_ex(g_tok, text, &o, &ids, &w, &n_chunks, &chunked) == SDVK_OK) {
        FUZZ_CHECK(n_chunks >= o.min_chunks && n_chunks <= SD_TOKENIZER_MAX_CHUNKS);
        for (int c = 0; c < n_chunks; c++) {
            const int32_t *win = ids + (size_t)c * SD_CLIP_CTX;
            FUZZ_CHECK(win[0] == sd_tokenizer_bos(g_tok));
            int32_t last = win[SD_CLIP_CTX - 1];
            FUZZ_CHECK(last == sd_tokenizer_eos(g_tok) || last == sd_tokenizer_pad(g_tok));
        }
        for (int i = 0; i < n_chunks * SD_CLIP_CTX; i++) {
            FUZZ_CHECK(ids[i] >= 0 && ids[i] < vocab);
            FUZZ_CHECK(isfinite(w[i]));
        }
        /* A small fake CLIP output: emphasis must keep it finite. */
        const int dim = 4;
        float *z = malloc((size_t)n_chunks * SD_CLIP_CTX * dim * sizeof *z);
        for (int i = 0; i < n_chunks * SD_CLIP_CTX * dim; i++) z[i] = (float)((i * 7919) % 13) - 6.0f;
        sd_apply_prompt_weights(z, w, n_chunks, dim);
        free(z);
        free(ids);
        free(w);
    } else {
        FUZZ_CHECK_MSG();
        FUZZ_CHECK(ids == NULL && w == NULL);
    }

    /* Plain tokenisation has no length limit of its own: keep it to the
     * sizes a request can carry (the libFuzzer -max_len bounds it anyway). */
    int32_t *t = NULL;
    int nt = 0;
    if (sd_tokenize(g_tok, text, &t, &nt) == SDVK_OK) {
        FUZZ_CHECK(t != NULL && nt >= 0);
        for (int i = 0; i < nt; i++) FUZZ_CHECK(t[i] >= 0 && t[i] < vocab);
        free(t);
    } else {
        FUZZ_CHECK_MSG();
    }
    free(text);
    return 0;
}
