/* Semantic test of the whole pipeline with trained weights (the demo model in
 * models/demo/, trained by tools/demo/train.py on procedural pictures).
 *
 *   test_semantic MODEL_DIR cpu|vulkan [--cfg X] [--seeds N] [--check all|colours|colour] [--min-rate R]
 *                 [--expect-max-rate R] [-v]
 *
 * Fixed prompts x fixed seeds are generated (64x64, 20 DDPM steps) and each
 * picture is checked against its prompt by measurable properties:
 *   - background: per-channel median of the border pixels, classified to the
 *     nearest palette colour, must be the prompt's background colour;
 *   - shape: the pixels far (> SEG_DIST in RGB) from that median form the shape
 *     region (at least MIN_AREA pixels); its mean colour, classified, must be
 *     the prompt's shape colour;
 *   - position: the region's centroid must lie in the named quadrant (or
 *     within CENTER_TOL pixels of the centre for "in the center").
 * Random weights cannot pass this; a pipeline with a sign, schedule, timestep
 * embedding or latent-scale error produces wrong colours or mush and fails.
 * --check colours counts a case as passed when the shape and background
 * colours are right, --check colour when the shape colour alone is (the
 * default, all, needs all three).
 * Default: pass rate must be >= 90% (--min-rate). With --expect-max-rate R (the negative
 * control) the rate must be <= R: e.g. --cfg -7.5 steers each picture away
 * from its prompt (eps = uncond - 7.5 (cond - uncond)), so a pipeline that
 * really follows the prompt must then fail most cases.
 *
 * The palette, positions and canvas are tools/demo/data.py's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdvk.h"

#define SIZE 64
#define SEG_DIST 80.0  /* RGB distance from the background that counts as shape */
#define MIN_AREA 20    /* pixels; the smallest shape covers ~200 */
#define CENTER_TOL 10.0

static const struct {
    const char *name;
    double rgb[3];
} k_palette[] = {
    {"red", {220, 40, 40}},   {"green", {40, 170, 60}},  {"blue", {40, 80, 220}},
    {"yellow", {240, 210, 40}}, {"purple", {140, 60, 190}}, {"white", {240, 240, 240}},
};
#define N_PAL ((int)(sizeof k_palette / sizeof k_palette[0]))

enum { POS_ANY, POS_TL, POS_TR, POS_BL, POS_BR, POS_C };
static const char *k_pos_name[] = {"any", "top left", "top right", "bottom left", "bottom right",
                                   "center"};

typedef struct {
    const char *prompt;
    const char *colour, *bg;
    int pos;
} sem_case;

/* In-distribution prompts: short and long forms, every colour as shape and as
 * background, every position. */
static const sem_case k_cases[] = {
    {"a red circle on a blue background", "red", "blue", POS_ANY},
    {"a large yellow square at the top left on a purple background", "yellow", "purple", POS_TL},
    {"a large white triangle at the bottom right on a green background", "white", "green", POS_BR},
    {"a blue circle in the center on a yellow background", "blue", "yellow", POS_C},
    {"a large green square at the top right on a red background", "green", "red", POS_TR},
    {"a large purple circle at the bottom left on a white background", "purple", "white", POS_BL},
    {"a red square in the center on a green background", "red", "green", POS_C},
    {"a large yellow circle at the bottom right on a blue background", "yellow", "blue", POS_BR},
    {"a green triangle at the top left on a white background", "green", "white", POS_TL},
    {"a large blue square at the bottom left on a yellow background", "blue", "yellow", POS_BL},
};
#define N_CASES ((int)(sizeof k_cases / sizeof k_cases[0]))
static const uint64_t k_seeds[] = {1, 2, 3};
#define N_SEEDS ((int)(sizeof k_seeds / sizeof k_seeds[0]))

static int classify(const double c[3]) {
    int best = 0;
    double bd = 1e30;
    for (int i = 0; i < N_PAL; i++) {
        double d = 0;
        for (int k = 0; k < 3; k++)
            d += (c[k] - k_palette[i].rgb[k]) * (c[k] - k_palette[i].rgb[k]);
        if (d < bd) {
            bd = d;
            best = i;
        }
    }
    return best;
}

static int cmp_u8(const void *a, const void *b) { return *(const uint8_t *)a - *(const uint8_t *)b; }

typedef struct {
    int bg, fg, area;
    double cx, cy;
} measure;

static void measure_image(const sdvk_image *im, measure *m) {
    const int W = im->width, H = im->height;
    /* border: outer 2-pixel frame */
    uint8_t *ch[3];
    int n = 0;
    for (int k = 0; k < 3; k++)
        ch[k] = malloc((size_t)(W + H) * 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            if (x >= 2 && x < W - 2 && y >= 2 && y < H - 2)
                continue;
            for (int k = 0; k < 3; k++)
                ch[k][n] = im->data[((size_t)y * W + x) * 3 + k];
            n++;
        }
    double bg[3];
    for (int k = 0; k < 3; k++) {
        qsort(ch[k], (size_t)n, 1, cmp_u8);
        bg[k] = ch[k][n / 2];
        free(ch[k]);
    }
    m->bg = classify(bg);
    double sum[3] = {0, 0, 0}, sx = 0, sy = 0;
    m->area = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = im->data + ((size_t)y * W + x) * 3;
            double d = 0;
            for (int k = 0; k < 3; k++)
                d += (p[k] - bg[k]) * (p[k] - bg[k]);
            if (sqrt(d) <= SEG_DIST)
                continue;
            for (int k = 0; k < 3; k++)
                sum[k] += p[k];
            sx += x + 0.5;
            sy += y + 0.5;
            m->area++;
        }
    m->fg = -1;
    m->cx = m->cy = -1;
    if (m->area >= MIN_AREA) {
        for (int k = 0; k < 3; k++)
            sum[k] /= m->area;
        m->fg = classify(sum);
        m->cx = sx / m->area * SIZE / W;
        m->cy = sy / m->area * SIZE / H;
    }
}

static int pos_ok(int pos, double cx, double cy) {
    const double c = SIZE / 2.0;
    switch (pos) {
    case POS_TL: return cx < c && cy < c;
    case POS_TR: return cx >= c && cy < c;
    case POS_BL: return cx < c && cy >= c;
    case POS_BR: return cx >= c && cy >= c;
    case POS_C: return hypot(cx - c, cy - c) <= CENTER_TOL;
    default: return 1;
    }
}

static int pal_index(const char *name) {
    for (int i = 0; i < N_PAL; i++)
        if (!strcmp(k_palette[i].name, name))
            return i;
    return -1;
}

/* Inpainting: a plain blue picture, its right half masked; the prompt asks
 * for a shape there. The left half must come back unchanged, pixel for
 * pixel (the picture is composited with the original outside the mask), and
 * the right half must get a shape of the asked colour. */
static const struct {
    const char *prompt, *colour;
} k_inpaint[] = {
    {"a large red circle at the top right on a blue background", "red"},
    {"a large yellow square at the bottom right on a blue background", "yellow"},
    {"a large white circle at the top right on a blue background", "white"},
};

static int inpaint_test(sdvk_ctx *ctx, const sdvk_gen_params *base, int n_seeds, double min_rate) {
    const int W = SIZE, H = SIZE;
    uint8_t *blue = malloc((size_t)W * H * 3), *mask = malloc((size_t)W * H);
    for (int i = 0; i < W * H; i++) {
        for (int k = 0; k < 3; k++) blue[i * 3 + k] = (uint8_t)k_palette[2].rgb[k];
        mask[i] = i % W >= W / 2 ? 255 : 0;
    }
    sdvk_image init = {W, H, 3, blue}, msk = {W, H, 1, mask};
    int pass = 0, total = 0, changed = 0;
    for (size_t c = 0; c < sizeof k_inpaint / sizeof k_inpaint[0]; c++)
        for (int si = 0; si < n_seeds; si++) {
            sdvk_gen_params p = *base;
            p.prompt = k_inpaint[c].prompt;
            p.width = W;
            p.height = H;
            p.seed = k_seeds[si];
            p.init_image = &init;
            p.mask = &msk;
            p.mask_blur = 0;
            p.strength = 1.0f;
            sdvk_result r;
            if (sdvk_generate(ctx, &p, &r) != SDVK_OK) {
                printf("FAIL: inpainting \"%s\": %s\n", p.prompt, sdvk_last_error());
                free(blue);
                free(mask);
                return 1;
            }
            const sdvk_image *im = &r.images[0];
            int same = 1;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W / 2; x++)
                    for (int k = 0; k < 3; k++)
                        same &= im->data[((size_t)y * W + x) * 3 + k] == blue[((size_t)y * W + x) * 3 + k];
            /* the right half on its own */
            sdvk_image right = {W / 2, H, 3, malloc((size_t)W / 2 * H * 3)};
            for (int y = 0; y < H; y++)
                memcpy(right.data + (size_t)y * (W / 2) * 3, im->data + ((size_t)y * W + W / 2) * 3,
                       (size_t)(W / 2) * 3);
            measure m;
            double bg[3] = {k_palette[2].rgb[0], k_palette[2].rgb[1], k_palette[2].rgb[2]};
            (void)bg;
            measure_image(&right, &m);
            int ok_fg = m.fg == pal_index(k_inpaint[c].colour);
            changed += !same;
            pass += same && ok_fg;
            total++;
            printf("%s  seed %llu  \"%s\": left half %s, right half shape %s (%d px)\n",
                   same && ok_fg ? "pass" : "FAIL", (unsigned long long)p.seed, p.prompt,
                   same ? "unchanged" : "CHANGED", m.fg >= 0 ? k_palette[m.fg].name : "none", m.area);
            free(right.data);
            sdvk_result_free(&r);
        }
    free(blue);
    free(mask);
    double rate = (double)pass / total;
    printf("inpainting: %d/%d = %.1f%% (left half changed in %d)\n", pass, total, 100.0 * rate, changed);
    if (changed) {
        printf("FAIL: the kept half changed\n");
        return 1;
    }
    if (rate < min_rate) {
        printf("FAIL: pass rate %.1f%% < %.1f%%\n", 100.0 * rate, 100.0 * min_rate);
        return 1;
    }
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR cpu|vulkan [--cfg X] [--seeds N] [--check all|colours|colour] [--min-rate R]\n"
                "       [--expect-max-rate R] [--sampler S] [--scheduler S] [--rng R] [-v]\n",
                argv[0]);
        return 2;
    }
    const char *dir = argv[1], *backend = argv[2];
    float cfg = 7.5f;
    sdvk_gen_params defaults;
    sdvk_gen_params_default(&defaults);
    sdvk_sampler sampler = defaults.sampler;
    sdvk_schedule schedule = defaults.schedule;
    sdvk_rng rng = defaults.rng;
    double max_rate = -1, min_rate = 0.9;
    int verbose = 0, n_seeds = N_SEEDS, check = 0; /* 0 all, 1 colour, 2 colours */
    int inpaint = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--cfg") && i + 1 < argc)
            cfg = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) {
            n_seeds = atoi(argv[++i]);
            if (n_seeds < 1 || n_seeds > N_SEEDS) {
                fprintf(stderr, "--seeds: 1..%d\n", N_SEEDS);
                return 2;
            }
        } else if (!strcmp(argv[i], "--sampler") && i + 1 < argc) {
            int k = sdvk_sampler_from_name(argv[++i]);
            if (k < 0) {
                fprintf(stderr, "--sampler: unknown %s\n", argv[i]);
                return 2;
            }
            sampler = (sdvk_sampler)k;
        } else if (!strcmp(argv[i], "--scheduler") && i + 1 < argc) {
            int k = sdvk_schedule_from_name(argv[++i]);
            if (k < 0) {
                fprintf(stderr, "--scheduler: unknown %s\n", argv[i]);
                return 2;
            }
            schedule = (sdvk_schedule)k;
        } else if (!strcmp(argv[i], "--rng") && i + 1 < argc) {
            int k = sdvk_rng_from_name(argv[++i]);
            if (k < 0) {
                fprintf(stderr, "--rng: unknown %s\n", argv[i]);
                return 2;
            }
            rng = (sdvk_rng)k;
        } else if (!strcmp(argv[i], "--inpaint")) {
            inpaint = 1;
        } else if (!strcmp(argv[i], "--min-rate") && i + 1 < argc)
            min_rate = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--expect-max-rate") && i + 1 < argc)
            max_rate = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--check") && i + 1 < argc) {
            const char *w = argv[++i];
            if (strcmp(w, "all") && strcmp(w, "colour") && strcmp(w, "colours")) {
                fprintf(stderr, "--check: all, colours or colour\n");
                return 2;
            }
            check = !strcmp(w, "colour") ? 1 : !strcmp(w, "colours") ? 2 : 0;
        } else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    char model[4096], vocab[4096];
    snprintf(model, sizeof model, "%s/sdvk-demo.safetensors", dir);
    snprintf(vocab, sizeof vocab, "%s/tokenizer", dir);

    sdvk_options opt;
    sdvk_options_default(&opt);
    opt.vocab_path = vocab;
    opt.backend = !strcmp(backend, "vulkan") ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU;
    sdvk_ctx *ctx = NULL;
    sdvk_status s = sdvk_create(model, &opt, &ctx);
    if (s && opt.backend == SDVK_BACKEND_VULKAN) {
        /* No Vulkan driver/device here: the semantic check still has to run,
         * so it runs on the CPU backend and says so. */
        printf("NOTE: no usable Vulkan device (%s): checking the CPU path instead\n", sdvk_last_error());
        opt.backend = SDVK_BACKEND_CPU;
        s = sdvk_create(model, &opt, &ctx);
    }
    if (s) {
        fprintf(stderr, "FAIL: sdvk_create(%s): %s\n", model, sdvk_last_error());
        return 1;
    }
    printf("backend: %s, cfg %.2f, sampler %s, schedule %s, rng %s, %d prompts x %d seeds\n",
           sdvk_backend_name(ctx), cfg, sdvk_sampler_name(sampler), sdvk_schedule_name(schedule),
           sdvk_rng_name(rng), N_CASES, n_seeds);

    if (inpaint) {
        sdvk_gen_params base;
        sdvk_gen_params_default(&base);
        base.steps = 20;
        base.cfg_scale = cfg;
        base.sampler = sampler;
        base.schedule = schedule;
        base.rng = rng;
        int rc = inpaint_test(ctx, &base, n_seeds, min_rate);
        sdvk_destroy(ctx);
        return rc;
    }
    int pass = 0, pass_all = 0, total = 0, bad_colour = 0, bad_bg = 0, bad_pos = 0;
    for (int c = 0; c < N_CASES; c++) {
        const sem_case *tc = &k_cases[c];
        const int want_fg = pal_index(tc->colour), want_bg = pal_index(tc->bg);
        for (int si = 0; si < n_seeds; si++) {
            sdvk_gen_params p;
            sdvk_gen_params_default(&p);
            p.prompt = tc->prompt;
            p.width = p.height = SIZE;
            p.steps = 20;
            p.cfg_scale = cfg;
            p.seed = k_seeds[si];
            p.sampler = sampler;
            p.schedule = schedule;
            p.rng = rng;
            sdvk_image im = {0};
            s = sdvk_txt2img(ctx, &p, &im);
            if (s) {
                fprintf(stderr, "FAIL: txt2img \"%s\" seed %llu: %s\n", tc->prompt,
                        (unsigned long long)p.seed, sdvk_last_error());
                sdvk_destroy(ctx);
                return 1;
            }
            measure m;
            measure_image(&im, &m);
            const int ok_bg = m.bg == want_bg, ok_fg = m.fg == want_fg,
                      ok_pos = m.fg >= 0 && pos_ok(tc->pos, m.cx, m.cy);
            const int ok = ok_bg && ok_fg && ok_pos;
            pass += check == 1 ? ok_fg : check == 2 ? ok_fg && ok_bg : ok;
            pass_all += ok;
            total++;
            bad_bg += !ok_bg;
            bad_colour += !ok_fg;
            bad_pos += !ok_pos;
            if (verbose || !ok)
                printf("%s  seed %llu  \"%s\": bg %s%s, shape %s%s (%d px), centroid (%.1f, %.1f) want %s%s\n",
                       ok ? "pass" : "FAIL", (unsigned long long)p.seed, tc->prompt,
                       k_palette[m.bg].name, ok_bg ? "" : "(!)", m.fg >= 0 ? k_palette[m.fg].name : "none",
                       ok_fg ? "" : "(!)", m.area, m.cx, m.cy, k_pos_name[tc->pos], ok_pos ? "" : "(!)");
            sdvk_image_free(&im);
        }
    }
    sdvk_destroy(ctx);
    const double rate = (double)pass / total;
    printf("all properties right: %d/%d = %.1f%% (wrong background %d, wrong shape colour %d, "
           "wrong position %d)\n",
           pass_all, total, 100.0 * pass_all / total, bad_bg, bad_colour, bad_pos);
    printf("semantic pass rate (%s): %d/%d = %.1f%%\n",
           check == 1 ? "shape colour" : check == 2 ? "shape and background colours" : "all properties",
           pass, total, 100.0 * rate);
    if (max_rate >= 0) {
        if (rate > max_rate) {
            printf("FAIL: negative control passed %.1f%% > %.1f%%: the checks do not depend on "
                   "following the prompt\n", 100.0 * rate, 100.0 * max_rate);
            return 1;
        }
        printf("ok: negative control collapses (%.1f%% <= %.1f%%)\n", 100.0 * rate, 100.0 * max_rate);
        return 0;
    }
    if (rate < min_rate) {
        printf("FAIL: pass rate %.1f%% < %.1f%%\n", 100.0 * rate, 100.0 * min_rate);
        return 1;
    }
    printf("ok\n");
    return 0;
}
