/* Prompt handling through the real pipeline on the tiny model:
 * - emphasis changes the CLIP context only at the weighted tokens' positions
 *   (apart from the window-wide mean restore, a single factor);
 * - a plain prompt gives exactly the unweighted context;
 * - a 200-token prompt becomes 3 windows (231 context rows) and an image,
 *   and its tokens past the first window change that image.
 * Usage: test_prompt MODEL VOCAB */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "tokenizer/tokenizer.h"

static int fails;
#define CHECK(c, ...)                      \
    do {                                   \
        if (!(c)) {                        \
            printf("FAIL: " __VA_ARGS__);  \
            printf("\n");                  \
            fails++;                       \
        }                                  \
    } while (0)

/* Context of one prompt (one window) after emphasis, as the pipeline does. */
static float *context(sdvk_ctx *ctx, sd_tokenizer *tok, const char *prompt, int *n_chunks,
                      float **weights) {
    int32_t *ids;
    float *w, *z;
    int chunked;
    if (sd_tokenize_prompt(tok, prompt, 1, &ids, &w, n_chunks, &chunked) ||
        sd_run_clip(ctx, ids, *n_chunks, 1, NULL, 0, &z)) {
        printf("FATAL: %s\n", sdvk_last_error());
        exit(1);
    }
    sd_apply_prompt_weights(z, w, *n_chunks, ctx->model->clip.width);
    free(ids);
    *weights = w;
    return z;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_prompt MODEL VOCAB\n");
        return 2;
    }
    sdvk_options opt;
    sdvk_options_default(&opt);
    opt.backend = SDVK_BACKEND_CPU;
    opt.vocab_path = argv[2];
    opt.keep = SDVK_KEEP_ALL; /* the long-prompt check inspects the cached sampler graph */
    sdvk_ctx *ctx;
    sd_tokenizer *tok;
    if (sdvk_create(argv[1], &opt, &ctx) || sd_tokenizer_load(argv[2], &tok)) {
        printf("FATAL: %s\n", sdvk_last_error());
        return 1;
    }
    const int W = ctx->model->clip.width;

    /* Emphasis: same ids, weight 1.5 on "red" only. */
    int n1, n2;
    float *w1, *w2;
    float *plain = context(ctx, tok, "a red circle on a blue background", &n1, &w1);
    float *weighted = context(ctx, tok, "a (red:1.5) circle on a blue background", &n2, &w2);
    CHECK(n1 == 1 && n2 == 1, "one window each (%d, %d)", n1, n2);
    int wpos = -1, nw = 0;
    for (int i = 0; i < 77; i++) {
        CHECK(w1[i] == 1.0f, "plain prompt weight %g at %d", w1[i], i);
        if (w2[i] != 1.0f) {
            wpos = i;
            nw++;
        }
    }
    CHECK(nw == 1 && wpos == 2 && fabsf(w2[wpos] - 1.5f) < 1e-6f,
          "expected weight 1.5 at position 2 only (got %d positions, at %d)", nw, wpos);
    /* The mean restore multiplies the whole window by one factor r; so
     * weighted / plain must be r everywhere except at wpos, where it is 1.5 r. */
    double r = 0;
    int cnt = 0;
    for (int i = 0; i < 77; i++)
        for (int d = 0; d < W; d++)
            if (i != wpos && fabsf(plain[i * W + d]) > 1e-3f) {
                r += weighted[i * W + d] / plain[i * W + d];
                cnt++;
            }
    r /= cnt;
    double worst = 0, worst_w = 0;
    for (int i = 0; i < 77; i++)
        for (int d = 0; d < W; d++) {
            float p = plain[i * W + d];
            if (fabsf(p) <= 1e-3f)
                continue;
            double q = weighted[i * W + d] / p;
            if (i == wpos)
                worst_w = fmax(worst_w, fabs(q - 1.5 * r));
            else
                worst = fmax(worst, fabs(q - r));
        }
    printf("emphasis: mean-restore factor %.6f, deviation elsewhere %.2g, at the token %.2g\n", r,
           worst, worst_w);
    CHECK(worst < 1e-5 && worst_w < 1e-5, "context changed outside the weighted token");
    CHECK(fabs(r - 1.0) > 1e-6, "mean restore did nothing");

    /* A plain prompt (no brackets) is exactly the unweighted context. */
    int32_t *ids;
    float *w, *z;
    int n, chunked;
    sd_tokenize_prompt(tok, "a red circle on a blue background", 1, &ids, &w, &n, &chunked);
    sd_run_clip(ctx, ids, 1, 1, NULL, 0, &z);
    CHECK(!memcmp(z, plain, (size_t)77 * W * sizeof(float)), "plain prompt context not bit-exact");
    free(ids), free(w), free(z);
    free(plain), free(weighted), free(w1), free(w2);

    /* 200 tokens: 3 windows, an image, and the tokens after 75 matter. */
    char longp[4096] = "", shortp[4096] = "";
    const char *words[] = {"red", "blue", "green", "circle", "square", "star"};
    for (int i = 0; i < 198; i++) {
        strcat(longp, words[i % 6]);
        strcat(longp, " ");
        if (i < 75) {
            strcat(shortp, words[i % 6]);
            strcat(shortp, " ");
        }
    }
    sd_tokenize_prompt(tok, longp, 1, &ids, &w, &n, &chunked);
    printf("long prompt: %d windows, chunked %d\n", n, chunked);
    CHECK(n == 3 && chunked, "200 tokens should give 3 windows (got %d)", n);
    free(ids), free(w);
    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.width = p.height = 64;
    p.steps = 3;
    sdvk_image a = {0}, b = {0};
    p.prompt = longp;
    sdvk_status s1 = sdvk_txt2img(ctx, &p, &a);
    CHECK(!s1, "txt2img with a 200-token prompt: %s", sdvk_last_error());
    int64_t L = -1; /* the context length of the sampler graph (key[4]) */
    for (int i = 0; i < SD_CACHE_SLOTS; i++)
        if (ctx->cache[i].g && ctx->cache[i].key[0] == SD_GK_SAMPLE)
            L = ctx->cache[i].key[4];
    CHECK(!s1 && L == 3 * 77, "UNet context length %lld, expected 231", (long long)L);
    p.prompt = shortp;
    sdvk_status s2 = sdvk_txt2img(ctx, &p, &b);
    CHECK(!s2, "txt2img: %s", sdvk_last_error());
    if (!s1 && !s2)
        CHECK(memcmp(a.data, b.data, (size_t)64 * 64 * 3) != 0,
              "tokens after the first window did not change the image");
    sdvk_image_free(&a);
    sdvk_image_free(&b);

    sd_tokenizer_free(tok);
    sdvk_destroy(ctx);
    printf("%s\n", fails ? "FAILED" : "all passed");
    return fails ? 1 : 0;
}
