/* The default command: txt2img / img2img / inpainting / outpainting /
 * hires fix to PNG files, on the public API only.
 *
 * Order of checks: the command line (numbers, ranges, names), input files
 * readable, output writable, images decodable; then the model is opened
 * (a broken model is reported before anything that depends on it), then
 * the vocabulary and the sizes the model allows. Exit 2 for any of those,
 * 1 for a failure while generating. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_BATCH_COUNT 10000

typedef struct gen_cfg {
    const char *model, *prompt, *neg, *out, *init_img, *mask, *preview;
    long preview_every;
    long width, height, steps, batch_count, batch_size, clip_skip, mask_blur, hires_steps;
    int width_set, height_set, strength_set, seed_random, list_devices, demo, model_set;
    int outpaint[4], outpaint_set, mask_blur_set, eta_set;
    char demo_path[4160];
    double cfg, strength, eta, hires_scale, hires_denoise;
    uint64_t seed;
    sdvk_sampler sampler;
    sdvk_schedule schedule;
    sdvk_rng rng;
    sdvk_upscaler upscaler;
    sdvk_options opt;
} gen_cfg;

static void usage(FILE *f) {
    fputs("Usage: sdvk [-m MODEL] -p PROMPT [options]       generate images (txt2img, img2img,\n"
          "                                               inpainting, outpainting, hires fix)\n"
          "       sdvk [-m MODEL] [options] -- WORDS...    the words after -- are the prompt\n"
          "       sdvk tokenize ...                        CLIP tokenizer (sdvk tokenize --help)\n"
          "       sdvk stage NAME ...                      one pipeline stage on .npy arrays\n"
          "                                                (sdvk stage --help)\n"
          "       sdvk selftest [--backend vulkan|cpu]     check a backend's ops against the CPU\n"
          "                                                reference\n"
          "       sdvk convert -m MODEL -o OUT.safetensors one single-file .safetensors from any\n"
          "                                                model form, LoRAs merged (--help)\n"
          "       sdvk serve [-m MODEL] [options]          HTTP server: A1111 and OpenAI APIs, web\n"
          "                                                page (sdvk serve --help)\n"
          "\n"
          "Generation options:\n"
          "  -m, --model PATH           SD v1.x model (.safetensors, .ckpt or a diffusers folder);\n"
          "                             without -m, the demo\n"
          "                             model shipped with sdvk (64x64 pictures of shapes)\n"
          "  -p, --prompt TEXT          prompt (A1111 syntax: (word:1.2), [word])\n"
          "  -n, --negative-prompt TEXT negative prompt (default empty)\n"
          "  -o, --output PATH          PNG to write (default output.png; - = standard output);\n"
          "                             more pictures are PATH-1.png, PATH-2.png, ...\n"
          "  -W, --width N              width in pixels, a multiple of 8 (default: the model's\n"
          "                             native size: 512 for SD v1.x, 64 for the demo model;\n"
          "                             with -i the init image's width)\n"
          "  -H, --height N             height, same rule\n"
          "      --steps N              sampler steps, 1..1000 (default 20)\n"
          "      --cfg-scale X          classifier-free guidance scale, -100..100 (default 7.5;\n"
          "                             1 disables guidance)\n"
          "      --sampling-method NAME sampler (alias --sampler): euler, euler_a, heun, dpm2,\n"
          "                             dpm++2m, dpm++2m_sde, dpm++2s_a, lms, ddim, lcm, ddpm\n"
          "                             (A1111 names such as \"DPM++ 2M Karras\" work too;\n"
          "                             default dpm++2m)\n"
          "      --scheduler NAME       noise schedule: discrete, karras, exponential,\n"
          "                             sgm_uniform, simple (default karras)\n"
          "      --eta X                noise of the ancestral/SDE samplers, DDIM eta (default 1;\n"
          "                             DDIM 0)\n"
          "      --rng cpu|cuda|sdvk    noise generator: cpu = torch.randn on the CPU (ComfyUI),\n"
          "                             cuda = torch's CUDA Philox (A1111's default), sdvk = sdvk\n"
          "                             0.1's own (default cpu)\n"
          "  -s, --seed N               RNG seed, 0..2^64-1, or -1 for a random one (default 42)\n"
          "  -b, --batch-count N        pictures made one after another, seeds s, s+1, ...\n"
          "      --batch-size N         pictures per UNet batch, 1..16 (default 1)\n"
          "      --clip-skip N          A1111 Clip skip: 2 = the text encoder's penultimate layer\n"
          "  -i, --init-img PATH        img2img: start from this image (PNG, JPEG or BMP;\n"
          "                             resized to W x H)\n"
          "      --strength X           denoising strength in (0, 1] (default 0.75)\n"
          "      --mask PATH            inpainting: white = repaint, black = keep (needs -i)\n"
          "      --mask-blur N          blur radius of the mask in pixels (default 4)\n"
          "      --outpaint L,T,R,B     grow the canvas of -i by these pixels (multiples of 8) and\n"
          "                             paint the new border (filled by stretching the edges)\n"
          "      --hires-scale X        hires fix: a second img2img pass at X times the size\n"
          "      --hires-steps N        steps of the second pass (default: --steps)\n"
          "      --hires-denoise X      its denoising strength (default 0.5)\n"
          "      --hires-upscaler NAME  latent (bilinear, default), latent-nearest or lanczos\n"
          "      --preview PATH         write a preview PNG of the current latent while sampling\n"
          "                             (TAESD with --taesd, else a rough colour map at latent\n"
          "                             size); a %d in PATH is the step (one file per preview)\n"
          "      --preview-every N      steps between previews (default 1)\n"
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

/* The demo model (models/demo/): $SDVK_DEMO_MODEL; else beside the
 * executable's install tree (<bin>/../share/sdvk/models/demo, so an
 * installed sdvk finds its own copy wherever it was installed); else the
 * build tree's copy. NULL when none exists. */
const char *cli_demo_model_path(char *buf, size_t n) {
    const char *env = getenv("SDVK_DEMO_MODEL");
    if (env)
        return *env && access(env, R_OK) == 0 ? env : NULL;
    char exe[4096];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (l > 0) {
        exe[l] = 0;
        char *sl = strrchr(exe, '/');
        if (sl) {
            *sl = 0;
            char rel[4160], *real;
            snprintf(rel, sizeof rel, "%s/../share/sdvk/models/demo/sdvk-demo.safetensors", exe);
            if (access(rel, R_OK) == 0 && (real = realpath(rel, NULL))) {
                snprintf(buf, n, "%s", real);
                free(real);
                return buf;
            }
        }
    }
#ifdef SDVK_DEMO_MODEL
    if (access(SDVK_DEMO_MODEL, R_OK) == 0)
        return SDVK_DEMO_MODEL;
#endif
    return NULL;
}

static int check_side(const char *opt, long v) {
    if (v % 8 != 0)
        return cli_usage_error("%s: %ld is not a multiple of 8", opt, v);
    return 0;
}

static int parse_outpaint(const char *opt, const char *v, int out[4]) {
    long x[4];
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    for (int k = 0; k < 4; k++) {
        if (!tok)
            return cli_usage_error("%s: '%s' must be four numbers L,T,R,B", opt, v);
        char what[64];
        snprintf(what, sizeof what, "%s %s", opt, (const char *[]){"left", "top", "right", "bottom"}[k]);
        int rc = cli_parse_int(what, tok, 0, 4096, &x[k]);
        if (rc)
            return rc;
        if (x[k] % 8)
            return cli_usage_error("%s: %ld is not a multiple of 8", what, x[k]);
        out[k] = (int)x[k];
        tok = strtok_r(NULL, ",", &save);
    }
    if (tok)
        return cli_usage_error("%s: '%s' must be four numbers L,T,R,B", opt, v);
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
            printf("sdvk %s\n", sdvk_version());
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
        } else if (cli_is(&a, "--preview", NULL)) {
            if ((rc = cli_value(&a, &c->preview)))
                return rc;
        } else if (cli_is(&a, "--preview-every", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 1000, &c->preview_every)))
                return rc;
        } else if (cli_is(&a, "--mask", NULL)) {
            if ((rc = cli_value(&a, &c->mask)))
                return rc;
        } else if (cli_is(&a, "-W", "--width")) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 8, 4096, &c->width)) ||
                (rc = check_side(a.opt, c->width)))
                return rc;
            c->width_set = 1;
        } else if (cli_is(&a, "-H", "--height")) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 8, 4096, &c->height)) ||
                (rc = check_side(a.opt, c->height)))
                return rc;
            c->height_set = 1;
        } else if (cli_is(&a, "--steps", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 1000, &c->steps)))
                return rc;
        } else if (cli_is(&a, "--cfg-scale", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, -100.0, 100.0, &c->cfg)))
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
        } else if (cli_is(&a, "--sampling-method", "--sampler")) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_sampler(a.opt, v, &c->sampler, &c->schedule)))
                return rc;
        } else if (cli_is(&a, "--scheduler", "--schedule")) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_schedule(a.opt, v, &c->schedule)))
                return rc;
        } else if (cli_is(&a, "--rng", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_rng(a.opt, v, &c->rng)))
                return rc;
        } else if (cli_is(&a, "--eta", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 0.0, 10.0, &c->eta)))
                return rc;
            c->eta_set = 1;
        } else if (cli_is(&a, "--clip-skip", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 12, &c->clip_skip)))
                return rc;
        } else if (cli_is(&a, "-b", "--batch-count")) {
            if ((rc = cli_value(&a, &v)) ||
                (rc = cli_parse_int(a.opt, v, 1, MAX_BATCH_COUNT, &c->batch_count)))
                return rc;
        } else if (cli_is(&a, "--batch-size", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 16, &c->batch_size)))
                return rc;
        } else if (cli_is(&a, "--mask-blur", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 0, 256, &c->mask_blur)))
                return rc;
            c->mask_blur_set = 1;
        } else if (cli_is(&a, "--outpaint", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = parse_outpaint(a.opt, v, c->outpaint)))
                return rc;
            c->outpaint_set = 1;
        } else if (cli_is(&a, "--hires-scale", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 1.0, 8.0, &c->hires_scale)))
                return rc;
        } else if (cli_is(&a, "--hires-steps", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 1000, &c->hires_steps)))
                return rc;
        } else if (cli_is(&a, "--hires-denoise", NULL)) {
            if ((rc = cli_value(&a, &v)) ||
                (rc = cli_parse_float(a.opt, v, -HUGE_VAL, HUGE_VAL, &c->hires_denoise)))
                return rc;
            if (!(c->hires_denoise > 0.0 && c->hires_denoise <= 1.0))
                return cli_usage_error("--hires-denoise: %s is out of range (must be in (0, 1])", v);
        } else if (cli_is(&a, "--hires-upscaler", NULL)) {
            if ((rc = cli_value(&a, &v)))
                return rc;
            if (!strcasecmp(v, "latent") || !strcasecmp(v, "latent-bilinear"))
                c->upscaler = SDVK_UPSCALE_LATENT;
            else if (!strcasecmp(v, "latent-nearest") || !strcasecmp(v, "latent (nearest-exact)"))
                c->upscaler = SDVK_UPSCALE_LATENT_NEAREST;
            else if (!strcasecmp(v, "lanczos"))
                c->upscaler = SDVK_UPSCALE_LANCZOS;
            else
                return cli_usage_error("--hires-upscaler: unknown upscaler '%s' (use latent, "
                                       "latent-nearest or lanczos)", v);
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
        for (int k = 0; k < n_words; k++) n += strlen(argv[words_first + k]) + 1;
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
    if (!c->model && !(c->model = cli_demo_model_path(c->demo_path, sizeof c->demo_path)))
        return cli_usage_error("no model given: use -m/--model PATH with an SD v1.x .safetensors "
                               "checkpoint (see sdvk --help); the demo model is not installed");
    if (!c->model_set) {
        c->demo = 1;
        /* A 64x64 picture from this tiny model takes well under a second on
         * the CPU; a Vulkan device (lavapipe included) only adds start-up time. */
        if (c->opt.backend == SDVK_BACKEND_AUTO)
            c->opt.backend = SDVK_BACKEND_CPU;
    }
    if (!c->prompt)
        return cli_usage_error("no prompt given: use -p/--prompt TEXT, or put the prompt after -- "
                               "(an empty prompt must be given as -p \"\")");
    if (c->strength_set && !c->init_img)
        cli_warn("--strength is only used with -i/--init-img; ignored");
    if ((c->mask || c->outpaint_set) && !c->init_img)
        return cli_usage_error("%s needs -i/--init-img (the picture to paint into)",
                               c->mask ? "--mask" : "--outpaint");
    if (c->mask_blur_set && !c->mask)
        cli_warn("--mask-blur is only used with --mask; ignored");
    if (c->hires_scale > 1.0 && (c->mask || c->outpaint_set))
        return cli_usage_error("--hires-scale works with txt2img and img2img, not with --mask or "
                               "--outpaint");
    if (!strcmp(c->out, "-") && c->batch_count * c->batch_size > 1)
        return cli_usage_error("-o -: standard output takes one picture (drop -b/--batch-size)");
    cli_engine_check(&c->opt);
    return -1;
}

/* NAME.png -> NAME-k.png (k > 0). */
static void out_name(const char *out, long k, char *buf, size_t n) {
    if (k == 0) {
        snprintf(buf, n, "%s", out);
        return;
    }
    size_t l = strlen(out);
    if (l >= 4 && !strcasecmp(out + l - 4, ".png"))
        snprintf(buf, n, "%.*s-%ld%s", (int)(l - 4), out, k, out + l - 4);
    else
        snprintf(buf, n, "%s-%ld", out, k);
}

static int load_image(const char *what, const char *path, sdvk_image *img) {
    int rc = cli_check_input_file(what, path);
    if (rc)
        return rc;
    sdvk_status s = sdvk_image_load(path, NULL, img);
    if (s != SDVK_OK)
        return cli_status_error(CLI_USAGE, s, what);
    return 0;
}

static int write_png(const char *path, const sdvk_image *img, const char *info) {
    sdvk_status s;
    if (strcmp(path, "-") == 0) {
        uint8_t *png = NULL;
        size_t n = 0;
        s = sdvk_png_encode(img, info, &png, &n);
        if (s == SDVK_OK && (fwrite(png, 1, n, stdout) != n || fflush(stdout) != 0))
            s = SDVK_ERR_IO;
        sdvk_free(png);
        if (s != SDVK_OK) {
            fprintf(stderr, "sdvk: error: writing the PNG to standard output failed\n");
            return CLI_FAIL;
        }
        return 0;
    }
    s = sdvk_png_write(path, img, info);
    if (s != SDVK_OK)
        return cli_status_error(CLI_FAIL, s, "writing the image");
    return 0;
}

/* --preview: each preview replaces the file whole (written beside it, then
 * renamed), so a viewer never reads half a picture; "%d" in the path gives
 * one file per step. */
typedef struct preview_out {
    const char *path;
    int failed;
} preview_out;

static void on_preview(void *user, int step, const sdvk_image *img) {
    preview_out *po = user;
    char path[4200], tmp[4300];
    const char *d = strstr(po->path, "%d");
    if (d)
        snprintf(path, sizeof path, "%.*s%d%s", (int)(d - po->path), po->path, step, d + 2);
    else
        snprintf(path, sizeof path, "%s", po->path);
    snprintf(tmp, sizeof tmp, "%s.part", path);
    if (sdvk_png_write(tmp, img, NULL) != SDVK_OK || rename(tmp, path) != 0) {
        if (!po->failed)
            cli_warn("--preview: cannot write '%s': %s", path, sdvk_last_error());
        po->failed = 1;
        remove(tmp);
    }
}

static int run(gen_cfg *c) {
    sdvk_image init = {0}, mask = {0};
    sdvk_ctx *ctx = NULL;
    sdvk_tokenizer *tok = NULL;
    int rc;

    if (c->demo)
        fprintf(stderr, "sdvk: no -m/--model given: using the demo model %s (64x64 pictures of "
                        "simple shapes, e.g. \"a red circle on a blue background\")\n", c->model);
    /* Cheap checks first: files exist, images decode, output writable. */
    if ((rc = cli_check_model_path("-m/--model", c->model)))
        return rc;
    if (c->init_img && (rc = load_image("-i/--init-img", c->init_img, &init)))
        goto done;
    if (c->mask && (rc = load_image("--mask", c->mask, &mask)))
        goto done;
    if (strcmp(c->out, "-") != 0) {
        if ((rc = cli_check_output("-o/--output", c->out)))
            goto done;
        size_t on = strlen(c->out);
        if (on < 4 || strcasecmp(c->out + on - 4, ".png") != 0)
            cli_warn("-o/--output: '%s' does not end in .png; the file is written as PNG", c->out);
    }

    if (c->preview) {
        if (strstr(strstr(c->preview, "%d") ? strstr(c->preview, "%d") + 2 : c->preview, "%")) {
            rc = cli_usage_error("--preview: '%s': only one %%d may appear in the path", c->preview);
            goto done;
        }
        if ((rc = cli_check_output("--preview", c->preview)))
            goto done;
    } else if (c->preview_every) {
        cli_warn("--preview-every without --preview: no previews are written");
    }

    /* The model, then what depends on it. */
    if ((rc = cli_create_ctx(c->model, &c->opt, &ctx)))
        goto done;
    sdvk_status s = sdvk_tokenizer_open(c->opt.vocab_path, c->model, c->opt.fallback_vocab_path,
                                        &tok);
    if (s != SDVK_OK) {
        fprintf(stderr, "sdvk: error: --vocab: %s (give --vocab PATH, or set SDVK_VOCAB)\n",
                sdvk_last_error());
        rc = CLI_USAGE;
        goto done;
    }
    if (c->opt.verbose)
        fprintf(stderr, "sdvk: vocabulary %s\n", sdvk_tokenizer_path(tok));
    sdvk_tokenizer_close(tok);
    tok = NULL;
    sdvk_model_info info;
    if ((s = sdvk_model_info_get(ctx, &info)) != SDVK_OK) {
        rc = cli_status_error(CLI_FAIL, s, "model");
        goto done;
    }
    /* Without -W/-H: the init image's size (rounded down to the model's
     * multiple), else the model's native size. */
    if (!c->width_set)
        c->width = init.data ? init.width / info.size_multiple * info.size_multiple : info.native_width;
    if (!c->height_set)
        c->height = init.data ? init.height / info.size_multiple * info.size_multiple
                              : info.native_height;
    if (c->width < info.size_multiple)
        c->width = info.size_multiple;
    if (c->height < info.size_multiple)
        c->height = info.size_multiple;
    long full_w = c->width + c->outpaint[0] + c->outpaint[2];
    long full_h = c->height + c->outpaint[1] + c->outpaint[3];
    if (c->width % info.size_multiple || c->height % info.size_multiple || full_w > info.max_side ||
        full_h > info.max_side) {
        rc = cli_usage_error("size %ldx%ld: this model takes multiples of %d up to %d per side",
                             full_w, full_h, info.size_multiple, info.max_side);
        goto done;
    }
    if (c->seed_random) {
        c->seed = random_seed();
        fprintf(stderr, "sdvk: seed %" PRIu64 "\n", c->seed);
    }

    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.prompt = c->prompt;
    p.negative_prompt = c->neg;
    p.width = (int)c->width;
    p.height = (int)c->height;
    p.steps = (int)c->steps;
    p.cfg_scale = (float)c->cfg;
    p.sampler = c->sampler;
    p.schedule = c->schedule;
    p.rng = c->rng;
    p.eta = c->eta_set ? (float)c->eta : c->sampler == SDVK_SAMPLER_DDIM ? 0.0f : 1.0f;
    p.clip_skip = (int)c->clip_skip;
    p.batch_size = (int)c->batch_size;
    p.init_image = init.data ? &init : NULL;
    p.strength = (float)c->strength;
    p.mask = mask.data ? &mask : NULL;
    p.mask_blur = (int)c->mask_blur;
    memcpy(p.outpaint, c->outpaint, sizeof p.outpaint);
    p.hires_scale = (float)c->hires_scale;
    p.hires_steps = (int)c->hires_steps;
    p.hires_denoise = (float)c->hires_denoise;
    p.hires_upscaler = c->upscaler;
    preview_out pout = {c->preview, 0};
    if (c->preview) {
        p.preview = on_preview;
        p.preview_user = &pout;
        p.preview_every = c->preview_every ? (int)c->preview_every : 1;
    }
    /* Everything the library checks before running (sizes, strength, the
     * model's kind), reported now rather than after "stopped in ...". */
    char *probe = NULL;
    if ((s = sdvk_infotext(ctx, &p, 0, &probe)) != SDVK_OK) {
        rc = cli_status_error(s == SDVK_ERR_INVALID_ARG || s == SDVK_ERR_MODEL ? CLI_USAGE : CLI_FAIL,
                              s, init.data ? "img2img" : "txt2img");
        goto done;
    }
    sdvk_free(probe);

    cli_install_sigint();
    cli_set_cancel_ctx(ctx);
    long written = 0;
    for (long j = 0; j < c->batch_count; j++) {
        p.seed = c->seed + (uint64_t)(j * c->batch_size);
        cli_progress prog;
        cli_progress_start(&prog, 0);
        p.progress = cli_progress_cb;
        p.progress_user = &prog;
        sdvk_result res;
        s = sdvk_generate(ctx, &p, &res);
        cli_progress_finish(&prog, s == SDVK_OK ? "generated" : "stopped");
        if (s != SDVK_OK) {
            rc = cli_status_error(s == SDVK_ERR_INVALID_ARG ? CLI_USAGE : CLI_FAIL, s,
                                  init.data ? "img2img" : "txt2img");
            goto done;
        }
        for (int k = 0; k < res.n_images; k++, written++) {
            char path[4200];
            out_name(c->out, written, path, sizeof path);
            if ((rc = write_png(path, &res.images[k], res.infotexts[k]))) {
                sdvk_result_free(&res);
                goto done;
            }
            fprintf(stderr, "sdvk: wrote %s (%dx%d, seed %" PRIu64 ", backend %s)\n",
                    strcmp(path, "-") ? path : "standard output", res.images[k].width,
                    res.images[k].height, res.seeds[k], sdvk_backend_name(ctx));
        }
        sdvk_result_free(&res);
    }
    rc = CLI_OK;
done:
    cli_set_cancel_ctx(NULL);
    sdvk_tokenizer_close(tok);
    sdvk_image_free(&init);
    sdvk_image_free(&mask);
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
    sdvk_options_from_env(&c.opt);
    /* one-shot use: free each network once the picture no longer needs it */
    c.opt.keep = SDVK_KEEP_NONE;
    c.neg = "";
    c.out = "output.png";
    c.steps = 20;
    c.cfg = 7.5;
    c.strength = 0.75;
    c.seed = 42;
    c.batch_count = 1;
    c.batch_size = 1;
    c.clip_skip = 1;
    c.mask_blur = 4;
    c.eta = 1.0;
    c.hires_denoise = 0.5;
    c.sampler = SDVK_SAMPLER_DPMPP_2M;
    c.schedule = SDVK_SCHEDULE_KARRAS;
    c.rng = SDVK_RNG_CPU;
    char *prompt_buf = NULL;
    int rc = parse(argc, argv, &c, &prompt_buf);
    if (rc < 0)
        rc = c.list_devices ? (sdvk_list_devices(stdout, &c.opt) == SDVK_OK
                                   ? CLI_OK
                                   : cli_status_error(CLI_FAIL, SDVK_ERR_BACKEND, "listing devices"))
                            : run(&c);
    free(prompt_buf);
    return rc;
}
