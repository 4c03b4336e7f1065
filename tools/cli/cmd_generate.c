/* The default command: txt2img / img2img to a PNG.
 *
 * Every option is parsed and checked (numbers, ranges, files readable,
 * output writable, init image decodable) before the model is loaded, so a
 * typo costs nothing and always exits with 2. */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli.h"
#include "io/image.h"
#include "tokenizer/tokenizer.h"

#define GEN_MIN_SIDE 64
#define GEN_MAX_SIDE 4096

typedef struct gen_cfg {
    const char *model, *prompt, *neg, *out, *init_img;
    long width, height, steps;
    int width_set, height_set, strength_set, seed_random, list_devices, demo, model_set;
    char demo_vocab[4096];
    double cfg, strength;
    uint64_t seed;
    sdvk_options opt;
} gen_cfg;

static void usage(FILE *f) {
    fputs("Usage: sdvk -m MODEL -p PROMPT [options]      generate an image (txt2img / img2img)\n"
          "       sdvk -m MODEL [options] -- WORDS...     the words after -- are the prompt\n"
          "       sdvk tokenize ...                       CLIP tokenizer (sdvk tokenize --help)\n"
          "       sdvk stage NAME ...                     run one pipeline stage on .npy arrays\n"
          "                                               (sdvk stage --help)\n"
          "       sdvk selftest [--backend vulkan|cpu]    check a backend's ops against the CPU reference\n"
          "\n"
          "Generation options:\n"
          "  -m, --model PATH           SD v1.x checkpoint (.safetensors); without -m, the demo\n"
          "                             model shipped with sdvk (64x64 pictures of shapes)\n"
          "  -p, --prompt TEXT          prompt\n"
          "  -n, --negative-prompt TEXT negative prompt (default empty)\n"
          "  -o, --output PATH          PNG to write (default output.png)\n"
          "  -W, --width N              width in pixels: a multiple of 8 in 64..4096; SD v1 models\n"
          "                             need a multiple of 64 (default 512, or with -i the init\n"
          "                             image's width rounded down to a multiple of 64)\n"
          "  -H, --height N             height, same rule\n"
          "      --steps N              sampler steps, 1..1000 (default 20)\n"
          "      --cfg-scale X          classifier-free guidance scale, 0..100 (default 7.5;\n"
          "                             1 disables guidance)\n"
          "  -s, --seed N               RNG seed, 0..2^64-1, or -1 for a random one (default 42)\n"
          "  -i, --init-img PATH        img2img: start from this image (resized to W x H)\n"
          "      --strength X           img2img denoising strength in (0, 1] (default 0.75)\n"
          "\n"
          "Engine options:\n",
          f);
    cli_engine_help(f);
    fputs("\n"
          "Other:\n"
          "      --list-devices         list the Vulkan devices and exit\n"
          "  -h, --help                 this help\n"
          "      --version              print the version\n"
          "\n"
          "Exit status: 0 success, 1 failure while running, 2 bad command line or input file.\n",
          f);
}

static uint64_t random_seed(void) {
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
            s = 0;
        close(fd);
    }
    if (s == 0)
        s = (uint64_t)time(NULL) * 6364136223846793005ull ^ (uint64_t)getpid();
    /* Small enough to read and retype. */
    return s % 2147483648ull;
}

/* "dir/v1-5-pruned-emaonly.safetensors" -> "v1-5-pruned-emaonly". */
static void model_stem(const char *path, char *buf, size_t n) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, n, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = '\0';
}

/* A1111-style "parameters" text, so image viewers and web UIs show how the
 * image was made. malloc'd. */
static char *parameters_text(const gen_cfg *c) {
    char stem[256];
    model_stem(c->model, stem, sizeof stem);
    size_t n = strlen(c->prompt) + strlen(c->neg) + strlen(stem) + 512;
    char *s = malloc(n);
    if (!s)
        return NULL;
    int k = snprintf(s, n, "%s\n", c->prompt);
    if (c->neg[0])
        k += snprintf(s + k, n - (size_t)k, "Negative prompt: %s\n", c->neg);
    k += snprintf(s + k, n - (size_t)k,
                  "Steps: %ld, Sampler: DDPM, CFG scale: %g, Seed: %" PRIu64
                  ", Size: %ldx%ld, Model: %s, ",
                  c->steps, c->cfg, c->seed, c->width, c->height, stem);
    if (c->init_img)
        k += snprintf(s + k, n - (size_t)k, "Denoising strength: %g, ", c->strength);
    snprintf(s + k, n - (size_t)k, "Version: sdvk %s", SDVK_VERSION_STRING);
    return s;
}

/* The demo model (models/demo/, tools/demo/train.py): $SDVK_DEMO_MODEL, else
 * the build tree's copy, else the installed one (paths from cmake/demo.cmake).
 * NULL when none exists (or the build did not define them). */
static const char *demo_model_path(void) {
    const char *env = getenv("SDVK_DEMO_MODEL");
    if (env)
        return *env && access(env, R_OK) == 0 ? env : NULL;
#ifdef SDVK_DEMO_MODEL
    if (access(SDVK_DEMO_MODEL, R_OK) == 0)
        return SDVK_DEMO_MODEL;
#endif
#ifdef SDVK_DEMO_MODEL_INSTALLED
    if (access(SDVK_DEMO_MODEL_INSTALLED, R_OK) == 0)
        return SDVK_DEMO_MODEL_INSTALLED;
#endif
    return NULL;
}

static int check_side(const char *opt, long v) {
    if (v % 8 != 0)
        return cli_usage_error("%s: %ld is not a multiple of 8 (sizes must be multiples of 8 "
                               "in %d..%d)",
                               opt, v, GEN_MIN_SIDE, GEN_MAX_SIDE);
    return 0;
}

/* Parses argv into c. Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, gen_cfg *c, char **prompt_buf) {
    cli_args a;
    const char *v = NULL;
    int rc;
    /* Words after "--" (argv indices), joined into the prompt afterwards. */
    int words_first = -1, n_words = 0;

    cli_args_init(&a, argc, argv, 1);
    for (;;) {
        int r = cli_args_next(&a);
        if (r == 0)
            break;
        if (r < 0) {
            if (!a.end_of_opts)
                return cli_usage_error("unexpected argument '%s' (quote the prompt and pass it "
                                       "with -p, or put it after --)",
                                       a.opt);
            if (words_first < 0)
                words_first = a.i - 1;
            n_words++;
            continue;
        }
        if (cli_engine_option(&a, &c->opt, &rc)) {
            if (rc)
                return rc;
        } else if (cli_is(&a, "-h", "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (cli_is(&a, "--version", NULL)) {
            printf("sdvk %s\n", SDVK_VERSION_STRING);
            return CLI_OK;
        } else if (cli_is(&a, "--list-devices", NULL)) {
            if ((rc = cli_no_value(&a)))
                return rc;
            c->list_devices = 1;
        } else if (cli_is(&a, "-m", "--model")) {
            if ((rc = cli_value(&a, &c->model)))
                return rc;
            c->model_set = 1;
        } else if (cli_is(&a, "-p", "--prompt")) {
            if ((rc = cli_value(&a, &c->prompt)))
                return rc;
        } else if (cli_is(&a, "-n", "--negative-prompt")) {
            if ((rc = cli_value(&a, &c->neg)))
                return rc;
        } else if (cli_is(&a, "-o", "--output")) {
            if ((rc = cli_value(&a, &c->out)))
                return rc;
        } else if (cli_is(&a, "-i", "--init-img")) {
            if ((rc = cli_value(&a, &c->init_img)))
                return rc;
        } else if (cli_is(&a, "-W", "--width")) {
            if ((rc = cli_value(&a, &v)) ||
                (rc = cli_parse_int(a.opt, v, GEN_MIN_SIDE, GEN_MAX_SIDE, &c->width)) ||
                (rc = check_side(a.opt, c->width)))
                return rc;
            c->width_set = 1;
        } else if (cli_is(&a, "-H", "--height")) {
            if ((rc = cli_value(&a, &v)) ||
                (rc = cli_parse_int(a.opt, v, GEN_MIN_SIDE, GEN_MAX_SIDE, &c->height)) ||
                (rc = check_side(a.opt, c->height)))
                return rc;
            c->height_set = 1;
        } else if (cli_is(&a, "--steps", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 1000, &c->steps)))
                return rc;
        } else if (cli_is(&a, "--cfg-scale", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 0.0, 100.0, &c->cfg)))
                return rc;
        } else if (cli_is(&a, "--strength", NULL)) {
            if ((rc = cli_value(&a, &v)) ||
                (rc = cli_parse_float(a.opt, v, -HUGE_VAL, HUGE_VAL, &c->strength)))
                return rc;
            if (!(c->strength > 0.0 && c->strength <= 1.0))
                return cli_usage_error("--strength: %s is out of range (must be in (0, 1]: above 0, "
                                       "at most 1)",
                                       v);
            c->strength_set = 1;
        } else if (cli_is(&a, "-s", "--seed")) {
            if ((rc = cli_value(&a, &v)))
                return rc;
            if (strcmp(v, "-1") == 0) {
                c->seed_random = 1;
            } else {
                if ((rc = cli_parse_u64(a.opt, v, &c->seed)))
                    return rc;
                c->seed_random = 0;
            }
        } else {
            return cli_usage_error("unknown option '%s' (see sdvk --help)", a.opt);
        }
    }

    if (c->list_devices)
        return -1;
    if (n_words > 0) {
        if (c->prompt)
            return cli_usage_error("both -p/--prompt and prompt words after -- were given");
        size_t n = 1;
        for (int k = 0; k < n_words; k++)
            n += strlen(argv[words_first + k]) + 1;
        char *p = malloc(n);
        if (!p)
            return cli_usage_error("out of memory");
        p[0] = '\0';
        for (int k = 0; k < n_words; k++) {
            if (k)
                strcat(p, " ");
            strcat(p, argv[words_first + k]);
        }
        *prompt_buf = p;
        c->prompt = p;
    }
    if (!c->model && !(c->model = demo_model_path()))
        return cli_usage_error("no model given: use -m/--model PATH with an SD v1.x .safetensors "
                               "checkpoint (see sdvk --help); the demo model is not installed");
    if (!c->model_set) {
        /* The demo model draws 64x64 pictures and has its own vocabulary
         * (tokenizer/ beside it), which must win over $SDVK_VOCAB. */
        c->demo = 1;
        if (!c->width_set)
            c->width = 64;
        if (!c->height_set)
            c->height = 64;
        /* A 64x64 picture from this tiny model takes well under a second on
         * the CPU; a Vulkan device (lavapipe included) only adds start-up time. */
        if (c->opt.backend == SDVK_BACKEND_AUTO)
            c->opt.backend = SDVK_BACKEND_CPU;
        if (!c->opt.vocab_path) {
            const char *sl = strrchr(c->model, '/');
            int dn = sl ? (int)(sl - c->model) : 1;
            snprintf(c->demo_vocab, sizeof c->demo_vocab, "%.*s/tokenizer", dn, sl ? c->model : ".");
            c->opt.vocab_path = c->demo_vocab;
        }
    }
    if (!c->prompt)
        return cli_usage_error("no prompt given: use -p/--prompt TEXT, or put the prompt after -- "
                               "(an empty prompt must be given as -p \"\")");
    if (c->strength_set && !c->init_img)
        cli_warn("--strength is only used with -i/--init-img; ignored");
    return -1;
}

static int list_devices(const sdvk_options *opt) {
    sd_backend *b = NULL;
    int rc = CLI_OK;
    if (sd_backend_cpu_create(opt->n_threads, NULL, &b) == SDVK_OK) {
        printf("CPU backend: %s\nVulkan devices:\n", b->name);
        sd_backend_destroy(b);
    }
    sdvk_status s = sd_vulkan_list_devices(stdout);
    if (s != SDVK_OK)
        rc = cli_status_error(CLI_FAIL, s, "listing Vulkan devices");
    return rc;
}

static int run(gen_cfg *c) {
    sdvk_image init = {0}, out = {0};
    sdvk_ctx *ctx = NULL;
    char *params = NULL;
    sdvk_status s;
    int rc;

    /* Cheap checks first, in command-line order of importance; the model
     * is only opened after all of them passed. */
    if (c->demo)
        fprintf(stderr, "sdvk: no -m/--model given: using the demo model %s (64x64 pictures of "
                        "simple shapes, e.g. \"a red circle on a blue background\")\n", c->model);
    if ((rc = cli_check_model_path("-m/--model", c->model)))
        return rc;
    /* The prompt needs a vocabulary: resolve it now (--vocab, $SDVK_VOCAB,
     * tokenizer/ beside the model) rather than after loading. */
    char *vocab = NULL;
    s = sd_tokenizer_find(c->opt.vocab_path, c->model, &vocab);
    free(vocab);
    if (s != SDVK_OK)
        return cli_status_error(CLI_USAGE, s, "--vocab");
    if (c->init_img) {
        if ((rc = cli_check_input_file("-i/--init-img", c->init_img)))
            return rc;
        s = sd_image_load(c->init_img, &init);
        if (s != SDVK_OK)
            return cli_status_error(CLI_USAGE, s, "-i/--init-img");
        /* Without -W/-H, keep the init image's size, rounded down to a
         * multiple of 64 (what SD v1's UNet needs) within the allowed range. */
        long iw = init.width / 64 * 64, ih = init.height / 64 * 64;
        if (!c->width_set)
            c->width = iw < GEN_MIN_SIDE ? GEN_MIN_SIDE : iw > GEN_MAX_SIDE ? GEN_MAX_SIDE : iw;
        if (!c->height_set)
            c->height = ih < GEN_MIN_SIDE ? GEN_MIN_SIDE : ih > GEN_MAX_SIDE ? GEN_MAX_SIDE : ih;
    }
    if ((rc = cli_check_output("-o/--output", c->out)))
        goto done;
    size_t on = strlen(c->out);
    if (on < 4 || strcasecmp(c->out + on - 4, ".png") != 0)
        cli_warn("-o/--output: '%s' does not end in .png; the file is written as PNG", c->out);
    if (c->init_img && (init.width != c->width || init.height != c->height)) {
        sdvk_image r = {0};
        s = sd_image_resize(&init, (int)c->width, (int)c->height, &r);
        if (s != SDVK_OK) {
            rc = cli_status_error(CLI_FAIL, s, "resizing the init image");
            goto done;
        }
        if (c->opt.verbose)
            fprintf(stderr, "sdvk: init image resized from %dx%d to %ldx%ld\n", init.width,
                    init.height, c->width, c->height);
        sdvk_image_free(&init);
        init = r;
    }
    if (c->seed_random) {
        c->seed = random_seed();
        fprintf(stderr, "sdvk: seed %" PRIu64 "\n", c->seed);
    }

    if ((rc = cli_create_ctx(c->model, &c->opt, &ctx)))
        goto done;

    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.prompt = c->prompt;
    p.negative_prompt = c->neg;
    p.width = (int)c->width;
    p.height = (int)c->height;
    p.steps = (int)c->steps;
    p.cfg_scale = (float)c->cfg;
    p.seed = c->seed;
    p.strength = (float)c->strength;
    cli_progress prog;
    cli_progress_start(&prog, 0);
    p.progress = cli_progress_cb;
    p.progress_user = &prog;
    cli_install_sigint();
    s = c->init_img ? sdvk_img2img(ctx, &p, &init, &out) : sdvk_txt2img(ctx, &p, &out);
    cli_progress_finish(&prog, s == SDVK_OK ? "generated" : "stopped");
    if (s != SDVK_OK) {
        /* The model-dependent checks (e.g. sizes a multiple of 64 for SD
         * v1's UNet) can only be made once the model is open; a request it
         * refuses is still the caller's mistake. */
        rc = cli_status_error(s == SDVK_ERR_INVALID_ARG ? CLI_USAGE : CLI_FAIL, s,
                              c->init_img ? "img2img" : "txt2img");
        goto done;
    }

    params = parameters_text(c);
    s = sd_png_write(c->out, &out, params);
    if (s != SDVK_OK) {
        rc = cli_status_error(CLI_FAIL, s, "writing the image");
        goto done;
    }
    fprintf(stderr, "sdvk: wrote %s (%dx%d, seed %" PRIu64 ", backend %s)\n", c->out, out.width,
            out.height, c->seed, sdvk_backend_name(ctx));
    rc = CLI_OK;
done:
    free(params);
    if (out.data)
        sdvk_image_free(&out);
    if (init.data)
        sdvk_image_free(&init);
    if (ctx)
        sdvk_destroy(ctx);
    return rc;
}

int cli_cmd_generate(int argc, char **argv) {
    if (argc <= 1) {
        usage(stderr);
        return CLI_USAGE;
    }
    gen_cfg c;
    memset(&c, 0, sizeof c);
    sdvk_options_default(&c.opt);
    c.neg = "";
    c.out = "output.png";
    c.width = c.height = 512;
    c.steps = 20;
    c.cfg = 7.5;
    c.strength = 0.75;
    c.seed = 42;
    char *prompt_buf = NULL;
    int rc = parse(argc, argv, &c, &prompt_buf);
    if (rc < 0)
        rc = c.list_devices ? list_devices(&c.opt) : run(&c);
    free(prompt_buf);
    return rc;
}
