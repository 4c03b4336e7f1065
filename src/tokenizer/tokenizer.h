/* CLIP BPE tokenizer (SD v1.x text conditioning) with the behaviour of the
 * Hugging Face slow CLIPTokenizer on its ftfy path (see
 * ../shared/clip/README.md), plus A1111-style prompt weights and 75-token
 * chunking for long prompts.
 *
 * Text rules (sd_tokenize), in order:
 *  - Input is UTF-8. Invalid bytes are replaced by U+FFFD, one per maximal
 *    ill-formed subpart (as Python's bytes.decode("utf-8", "replace")), so any
 *    byte string gives a result; the API takes C strings, so no NUL inside.
 *  - The literal strings <|startoftext|> and <|endoftext|> (exact case) are
 *    split out first and become their ids, as HF's added-token split does.
 *  - Each remaining segment is cleaned like ftfy.fix_text, restricted to its
 *    deterministic parts: ANSI terminal escapes removed, C1 controls read as
 *    Windows-1252, Latin ligatures split, fullwidth/halfwidth forms and U+3000
 *    mapped to standard width, curly quotes straightened, ftfy's control
 *    characters removed, NFC. Not done: mojibake repair (heuristic) and HTML
 *    unescaping (HF keeps &amp; literally, README rule).
 *  - Runs of Unicode White_Space collapse to one space, ends are trimmed, then
 *    Python str.lower() (full mapping: U+0130 -> "i\u0307", final sigma).
 *  - CLIP's pattern splits pieces; each piece is byte-encoded and BPE-merged
 *    by rank with the </w> end-of-word marker.
 * A loaded tokenizer is read-only: calls on it may run on several threads.
 */
#ifndef SD_TOKENIZER_H
#define SD_TOKENIZER_H

#include <stdint.h>

#include "sdvk.h"

#define SD_CLIP_CTX 77      /* CLIP context: BOS + 75 tokens + EOS */
#define SD_CLIP_CHUNK 75    /* text tokens per window */
/* Upper bound on windows for one prompt (64 * 75 = 4,800 tokens). A longer
 * prompt is refused with a clear message instead of asking the text encoder
 * for gigabytes of context. */
#define SD_TOKENIZER_MAX_CHUNKS 64
/* Longest prompt sd_tokenize_prompt parses for weights (A1111's bracket
 * weighting is quadratic in the worst case); plain sd_tokenize has no limit. */
#define SD_PROMPT_MAX_BYTES 65536

typedef struct sd_tokenizer sd_tokenizer;

/* path: a .txt.gz/.txt merges file (OpenAI bpe_simple_vocab_16e6 format), a
 * vocab.json (merges.txt beside it), a merges.txt with vocab.json beside it,
 * or a folder holding vocab.json + merges.txt (or bpe_simple_vocab_16e6.txt.gz). */
sdvk_status sd_tokenizer_load(const char *path, sd_tokenizer **out);
void sd_tokenizer_free(sd_tokenizer *t);

/* Resolves the vocabulary: opt if non-NULL; else the model's own,
 * <dir of model_path>/tokenizer/ (vocab.json + merges.txt, or
 * bpe_simple_vocab_16e6.txt.gz; for a diffusers folder <model_path>/tokenizer/);
 * else fallback (e.g. $SDVK_VOCAB taken by the front end). The error message
 * says what to give. *out is malloc'd. */
sdvk_status sd_tokenizer_find(const char *opt, const char *model_path, const char *fallback,
                              char **out);

/* Plain text -> ids, no BOS/EOS, no truncation. *ids malloc'd (non-NULL even
 * when *n == 0). */
sdvk_status sd_tokenize(const sd_tokenizer *t, const char *text, int32_t **ids, int *n);

/* A1111 prompt (weights parsed) -> n_chunks windows of 77: ids[n_chunks*77]
 * (BOS, 75 tokens, EOS, padded with the pad id) and per-position weights
 * (1.0 at BOS/EOS/padding). n_chunks = max(min_chunks, needed, 1); windows
 * beyond the text's are empty windows (BOS, EOS, pad), as an empty prompt.
 * Sets *chunked=1 when the text needed more than one window (caller warns).
 * Chunks are plain runs of 75 tokens (no A1111 comma backtracking, no BREAK;
 * see sd_tokenize_prompt_ex). Fails (SDVK_ERR_INVALID_ARG, clear message) beyond
 * SD_TOKENIZER_MAX_CHUNKS windows, beyond SD_PROMPT_MAX_BYTES, or when a
 * weight overflows to inf. */
sdvk_status sd_tokenize_prompt(const sd_tokenizer *t, const char *prompt, int min_chunks,
                               int32_t **ids, float **weights, int *n_chunks, int *chunked);

/* A textual-inversion embedding the prompt may name (A1111: where the tokens
 * of its name appear, its vectors take their place, kept within one window). */
typedef struct sd_prompt_emb {
    const int32_t *name_ids; /* the name's tokens */
    int name_len;
    int n_vec;               /* vectors it puts in the stream (1..75) */
    int32_t first_id;        /* ids first_id .. first_id + n_vec - 1 stand for them */
    int used;                /* set when the prompt names it */
} sd_prompt_emb;

typedef struct sd_prompt_opts {
    int min_chunks;      /* as in sd_tokenize_prompt */
    int parse_weights;   /* 1: A1111 emphasis syntax; 0: text taken literally */
    int comma_backtrack; /* A1111 "comma_padding_backtrack": 0 = off (default);
                            A1111's default is 20 */
    int enable_break;    /* 1: the word BREAK (A1111) starts a new window */
    sd_prompt_emb *embs;  /* embeddings to recognise (NULL: none) */
    int n_embs;
} sd_prompt_opts;

/* Defaults: min_chunks 1, parse_weights 1, comma_backtrack 0, enable_break 0
 * (what sd_tokenize_prompt does). */
void sd_prompt_opts_default(sd_prompt_opts *o);
sdvk_status sd_tokenize_prompt_ex(const sd_tokenizer *t, const char *prompt,
                                  const sd_prompt_opts *o, int32_t **ids, float **weights,
                                  int *n_chunks, int *chunked);

/* One span of the A1111 parse: text and its weight (double, as A1111 computes
 * it). BREAK markers (enable_break) have weight -1 and text "BREAK". */
typedef struct sd_prompt_span {
    char *text;
    double weight;
} sd_prompt_span;

/* A1111 parse_prompt_attention: (a) x1.1, ((a)) x1.21, [a] /1.1, (a:1.3),
 * \( \) \[ \] escapes, unbalanced brackets closed at the end; adjacent spans
 * of equal weight merged. Never fails on syntax. Deviations, so that a prompt
 * without brackets is always exactly its plain text: other backslashes stay
 * text (A1111 drops a lone "\" and turns "\\" into "\"); a ":w)" weight
 * Python's float() rejects ("1.2.3") is text (A1111 raises). Only ASCII
 * spaces/digits in ":w)". Free with sd_prompt_spans_free. */
sdvk_status sd_prompt_parse(const char *prompt, int enable_break, sd_prompt_span **spans,
                            int *n_spans);
void sd_prompt_spans_free(sd_prompt_span *spans, int n_spans);

/* A1111 emphasis on the CLIP output of n_chunks windows: for each window
 * z[77][dim], mean m0 = mean(z); z[i] *= w[i]; z *= m0 / mean(z). Windows
 * whose weights are all 1.0 are left untouched (bit-exact unweighted result). */
void sd_apply_prompt_weights(float *z, const float *weights, int n_chunks, int dim);

/* Special ids of the loaded vocabulary (49406 / 49407 / 49407 for CLIP). */
int32_t sd_tokenizer_bos(const sd_tokenizer *t);
int32_t sd_tokenizer_eos(const sd_tokenizer *t);
int32_t sd_tokenizer_pad(const sd_tokenizer *t);
/* Number of ids (max id + 1): 49408 for CLIP. */
int sd_tokenizer_vocab_size(const sd_tokenizer *t);

#endif
