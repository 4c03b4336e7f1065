/* `sdvk tokenize`: prints CLIP token ids of a text, comma-separated on one
 * line. With padding (default): the 77-id SD v1.x input (BOS, at most 75
 * tokens, EOS, padded with the pad id). --no-pad: the full [BOS]+ids+[EOS]
 * sequence, never truncated. --prompt: A1111 weights and windows instead
 * (one line per window: ids, then the weights). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CLIP_CTX 77   /* BOS + 75 tokens + EOS */
#define CLIP_CHUNK 75

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sdvk tokenize [--vocab F] [--model M] [--no-pad] [--prompt] [--file F] [--] TEXT...\n"
            "  Prints the CLIP token ids of TEXT (several TEXT arguments are joined with one space).\n"
            "  --vocab F   bpe_simple_vocab_16e6.txt.gz, a vocab.json (merges.txt beside it) or a\n"
            "              folder with vocab.json + merges.txt; default: tokenizer/ beside\n"
            "              --model, then $SDVK_VOCAB\n"
            "  --no-pad    print [BOS] + all ids + [EOS], not truncated or padded to 77\n"
            "  --prompt    parse A1111 weights, print each 77-id window and its weights\n"
            "  --file F    read TEXT from file F ('-' = standard input; NUL bytes are dropped)\n"
            "  --          everything after is TEXT, even when it starts with '-'\n");
}

static char *read_text_file(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    if (f != stdin)
        fclose(f);
    if (b) {
        /* NUL bytes are dropped, as ftfy's control-character removal drops
         * U+0000 (the tokenizer API takes C strings). */
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
            if (b[i])
                b[o++] = b[i];
        b[o] = 0;
    }
    return b;
}

static void print_ids(const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        printf(i ? ",%d" : "%d", (int)ids[i]);
    printf("\n");
}

int sdvk_cmd_tokenize(int argc, char **argv)
{
    const char *vocab_opt = NULL, *model = NULL, *file = NULL;
    int no_pad = 0, prompt_mode = 0, n_text = 0;
    char **text_args = calloc((size_t)argc + 1, sizeof *text_args);
    if (!text_args) {
        fprintf(stderr, "sdvk tokenize: out of memory\n");
        return 1;
    }
    int literal = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* "-", "-5", "->", "---" are text; "-x" / "--x" (letter) are options. */
        int optlike = a[0] == '-' && (((a[1] | 0x20) >= 'a' && (a[1] | 0x20) <= 'z') ||
                                      (a[1] == '-' && (a[2] == 0 || ((a[2] | 0x20) >= 'a' &&
                                                                     (a[2] | 0x20) <= 'z'))));
        if (literal || !optlike) {
            text_args[n_text++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            literal = 1;
        } else if (strcmp(a, "--no-pad") == 0) {
            no_pad = 1;
        } else if (strcmp(a, "--prompt") == 0) {
            prompt_mode = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            free(text_args);
            return 0;
        } else if (strcmp(a, "--vocab") == 0 || strcmp(a, "--model") == 0 || strcmp(a, "--file") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sdvk tokenize: %s needs a value\n", a);
                free(text_args);
                return 2;
            }
            const char **dst = a[2] == 'v' ? &vocab_opt : a[2] == 'm' ? &model : &file;
            *dst = argv[++i];
        } else {
            fprintf(stderr,
                    "sdvk tokenize: unknown option '%s' (put -- before text that starts with '-')\n",
                    a);
            usage(stderr);
            free(text_args);
            return 2;
        }
    }
    if (n_text == 0 && !file) {
        fprintf(stderr, "sdvk tokenize: no TEXT given (use \"\" for an empty prompt)\n");
        usage(stderr);
        free(text_args);
        return 2;
    }
    char *text = NULL;
    if (file) {
        if (n_text) {
            fprintf(stderr, "sdvk tokenize: give either --file or TEXT, not both\n");
            free(text_args);
            return 2;
        }
        text = read_text_file(file);
        if (!text) {
            fprintf(stderr, "sdvk tokenize: cannot read --file %s\n", file);
            free(text_args);
            return 1;
        }
    } else {
        size_t len = 0;
        for (int i = 0; i < n_text; i++)
            len += strlen(text_args[i]) + 1;
        text = malloc(len + 1);
        if (text) {
            size_t p = 0;
            for (int i = 0; i < n_text; i++) {
                if (i)
                    text[p++] = ' ';
                size_t l = strlen(text_args[i]);
                memcpy(text + p, text_args[i], l);
                p += l;
            }
            text[p] = 0;
        }
    }
    free(text_args);
    if (!text) {
        fprintf(stderr, "sdvk tokenize: out of memory\n");
        return 1;
    }

    sdvk_tokenizer *tok = NULL;
    sdvk_status st = sdvk_tokenizer_open(vocab_opt, model, getenv("SDVK_VOCAB"), &tok);
    if (st != SDVK_OK) {
        fprintf(stderr, "sdvk tokenize: --vocab: %s (give --vocab PATH, or set SDVK_VOCAB)\n",
                sdvk_last_error());
        free(text);
        return 2;
    }
    int rc = 0;
    if (prompt_mode) {
        int32_t *ids = NULL;
        float *w = NULL;
        int nc = 0;
        if (sdvk_tokenizer_encode_prompt(tok, text, &ids, &w, &nc) != SDVK_OK) {
            fprintf(stderr, "sdvk tokenize: %s\n", sdvk_last_error());
            rc = 2;
        } else {
            if (nc > 1)
                fprintf(stderr, "sdvk tokenize: the prompt is longer than %d tokens: %d windows "
                        "of %d\n", CLIP_CHUNK, nc, CLIP_CTX);
            for (int c = 0; c < nc; c++) {
                print_ids(ids + (size_t)c * CLIP_CTX, CLIP_CTX);
                for (int i = 0; i < CLIP_CTX; i++)
                    printf(i ? ",%.9g" : "%.9g", w[(size_t)c * CLIP_CTX + i]);
                printf("\n");
            }
        }
        sdvk_free(ids);
        sdvk_free(w);
        sdvk_tokenizer_close(tok);
        free(text);
        return rc;
    }
    int32_t *ids = NULL;
    int n = 0;
    if (sdvk_tokenizer_encode(tok, text, &ids, &n) != SDVK_OK) {
        fprintf(stderr, "sdvk tokenize: %s\n", sdvk_last_error());
        sdvk_tokenizer_close(tok);
        free(text);
        return 1;
    }
    int total = n + 2;
    int32_t *seq = malloc((size_t)(total > CLIP_CTX ? total : CLIP_CTX) * sizeof *seq);
    if (!seq) {
        fprintf(stderr, "sdvk tokenize: out of memory\n");
        rc = 1;
    } else {
        seq[0] = sdvk_tokenizer_special(tok, 0);
        memcpy(seq + 1, ids, (size_t)n * sizeof *seq);
        seq[n + 1] = sdvk_tokenizer_special(tok, 1);
        if (!no_pad) {
            if (total > CLIP_CTX) {
                seq[CLIP_CTX - 1] = sdvk_tokenizer_special(tok, 1); /* keep 76, EOS last */
            }
            for (int i = total; i < CLIP_CTX; i++)
                seq[i] = sdvk_tokenizer_special(tok, 2);
            total = CLIP_CTX;
        }
        print_ids(seq, total);
    }
    free(seq);
    sdvk_free(ids);
    sdvk_tokenizer_close(tok);
    free(text);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "sdvk tokenize: cannot write output\n");
        rc = 1;
    }
    return rc;
}
