/* Tokenizer benchmark: vocabulary load time, then 10,000 typical SD prompts
 * (plain sd_tokenize and A1111 windows via sd_tokenize_prompt).
 * usage: bench_tokenizer [VOCAB] (default $SDVK_VOCAB) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of this process: steadier than wall time on a shared machine. */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *subjects[] = {"a photo of a cat", "portrait of a woman", "an ancient castle",
                                 "a cyberpunk city street at night", "a bowl of ramen",
                                 "a red fox in the snow", "an astronaut riding a horse",
                                 "crème brûlée on a plate", "a dragon circling a spire",
                                 "Mount Fuji at sunrise"};
static const char *styles[] = {"highly detailed", "trending on artstation", "octane render",
                               "8k", "by greg rutkowski", "cinematic lighting", "sharp focus",
                               "(masterpiece:1.2)", "[blurry]", "volumetric fog",
                               "studio ghibli style", "85mm f/1.4", "it's raining",
                               "soft pastel colors", "dramatic sky 🌅"};

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : getenv("SDVK_VOCAB");
    if (!path) {
        fprintf(stderr, "usage: %s VOCAB (bpe_simple_vocab_16e6.txt.gz or tokenizer/ folder)\n", argv[0]);
        return 2;
    }
    enum { N = 10000 };
    char **prompts = malloc(N * sizeof *prompts);
    unsigned seed = 12345;
    size_t bytes = 0;
    for (int i = 0; i < N; i++) {
        char buf[1024];
        int n = snprintf(buf, sizeof buf, "%s", subjects[(seed >> 8) % 10]);
        int k = 3 + (int)((seed >> 4) % 8);
        for (int j = 0; j < k; j++) {
            seed = seed * 1103515245u + 12345u;
            n += snprintf(buf + n, sizeof buf - (size_t)n, ", %s", styles[(seed >> 16) % 15]);
        }
        seed = seed * 1103515245u + 12345u;
        prompts[i] = strdup(buf);
        bytes += strlen(buf);
    }
    double t0 = now();
    sd_tokenizer *t;
    if (sd_tokenizer_load(path, &t) != SDVK_OK) {
        fprintf(stderr, "%s\n", sdvk_last_error());
        return 1;
    }
    double t1 = now(), c1 = cpu();
    long total = 0;
    for (int i = 0; i < N; i++) {
        int32_t *ids;
        int n;
        if (sd_tokenize(t, prompts[i], &ids, &n) != SDVK_OK)
            return 1;
        total += n;
        free(ids);
    }
    double t2 = now(), c2 = cpu();
    for (int i = 0; i < N; i++) {
        int32_t *ids;
        float *w;
        int nc, ch;
        if (sd_tokenize_prompt(t, prompts[i], 1, &ids, &w, &nc, &ch) != SDVK_OK)
            return 1;
        free(ids);
        free(w);
    }
    double t3 = now();
    printf("tokenizer: vocab load %.1f ms (%s)\n", (t1 - t0) * 1e3, path);
    printf("tokenizer: %d prompts (%.1f kB, %ld tokens) in %.1f ms wall, %.1f ms CPU = %.2f us/prompt "
           "(sd_tokenize)\n",
           N, bytes / 1e3, total, (t2 - t1) * 1e3, (c2 - c1) * 1e3, (c2 - c1) * 1e6 / N);
    printf("tokenizer: %d prompts in %.1f ms (sd_tokenize_prompt, A1111 weights + windows)\n", N,
           (t3 - t2) * 1e3);
    for (int i = 0; i < N; i++)
        free(prompts[i]);
    free(prompts);
    sd_tokenizer_free(t);
    return 0;
}
