/* `sdvk stage NAME ...`: one pipeline stage on .npy arrays (float32 NCHW,
 * token ids int32/int64), for tests and for comparing against a PyTorch
 * reference stage by stage. Inputs are loaded and their ranks checked
 * before the model is opened. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* An array read from a .npy file: float32 ('f') or int32 ('i'). */
typedef struct npy_arr {
    void *data;
    char dtype;
    int ndim;
    int64_t ne[8];
} npy_arr;

static void npy_free(npy_arr *a) {
    sdvk_free(a->data);
    memset(a, 0, sizeof *a);
}

#define CLIP_CTX_LEN 77
#define CLIP_VOCAB 49408

enum {
    O_TOKENS = 1 << 0,
    O_TOKENS_NPY = 1 << 1,
    O_LATENT = 1 << 2,
    O_TIMESTEP = 1 << 3,
    O_CONTEXT = 1 << 4,
    O_IMAGE = 1 << 5,
    O_STEPS = 1 << 6,
    O_CFG = 1 << 7,
    O_NOISE = 1 << 8,
    O_SEED = 1 << 9,
    O_SAMPLER = 1 << 10, /* --sampler, --scheduler, --rng, --eta */
    O_CLIP_SKIP = 1 << 11,
    O_INIT = 1 << 12, /* --init-img, --mask, --strength, --mask-blur */
};

typedef struct stage_def {
    const char *name;
    unsigned allowed, required;
    const char *synopsis;
} stage_def;

static const stage_def STAGES[] = {
    {"clip", O_TOKENS | O_TOKENS_NPY | O_CLIP_SKIP, 0,
     "clip -m M (--tokens 49406,320,... | --tokens-npy F) [--clip-skip N] -o OUT\n"
     "      token ids -> text embeddings [B,77,W]; fewer than 77 ids are padded with 49407"},
    {"unet", O_LATENT | O_TIMESTEP | O_CONTEXT, O_LATENT | O_TIMESTEP | O_CONTEXT,
     "unet -m M --latent X --timestep T --context C -o OUT\n"
     "      one UNet evaluation: latent [B,4,h,w], context [B or 1,77,W] -> eps [B,4,h,w]"},
    {"vae-decode", O_LATENT, O_LATENT,
     "vae-decode -m M --latent Z -o OUT\n"
     "      scaled latent [B,4,h,w] -> decoder output [B,3,8h,8w] (raw, not clamped)"},
    {"vae-encode", O_IMAGE, O_IMAGE,
     "vae-encode -m M --image I -o OUT\n"
     "      image [B,3,H,W] in [-1,1] (.npy, or a PNG/JPEG file) -> mean*0.18215 [B,4,H/8,W/8]"},
    {"sample", O_CONTEXT | O_LATENT | O_STEPS | O_CFG | O_NOISE | O_SEED | O_SAMPLER | O_INIT,
     O_CONTEXT | O_LATENT | O_STEPS | O_CFG,
     "sample -m M --context C --latent N0 --steps N --cfg S [--sampler NAME] [--scheduler NAME]\n"
     "             [--eta X] [--step-noise F] [--seed S --rng cpu|cuda|sdvk] -o OUT\n"
     "      a sampler run (default ddpm): context [2B,77,W] (cond rows, then uncond) or [B,77,W]\n"
     "      when S = 1, N0 [B,4,h,w] the unit-variance start noise, step noise [K,B,4,h,w] for\n"
     "      the K evaluations that take fresh noise (default: from the seed) -> latent [B,4,h,w];\n"
     "      with --init-img I [--strength X] [--mask M --mask-blur N]: img2img / inpainting"},
};
#define N_STAGES (int)(sizeof STAGES / sizeof STAGES[0])

static const struct {
    unsigned bit;
    const char *name;
} OPT_NAMES[] = {
    {O_TOKENS, "--tokens"},   {O_TOKENS_NPY, "--tokens-npy"}, {O_LATENT, "--latent"},
    {O_TIMESTEP, "--timestep"}, {O_CONTEXT, "--context"},     {O_IMAGE, "--image"},
    {O_STEPS, "--steps"},     {O_CFG, "--cfg"},               {O_NOISE, "--step-noise"},
    {O_SEED, "--seed"},       {O_SAMPLER, "--sampler"},       {O_CLIP_SKIP, "--clip-skip"},
    {O_INIT, "--init-img"},
};

static void usage(FILE *f) {
    fputs("Usage: sdvk stage NAME -m MODEL [inputs] -o OUT.npy [engine options]\n"
          "Runs one stage of the pipeline. Arrays are float32 NCHW .npy files; token ids are\n"
          "int32/int64 .npy ([len] or [B,len]) or a comma-separated list (one row).\n\n"
          "Stages:\n",
          f);
    for (int k = 0; k < N_STAGES; k++)
        fprintf(f, "  sdvk stage %s\n", STAGES[k].synopsis);
    fputs("\nEvery stage also takes --lora FILE[:W[:UNET_W]] (repeatable): LoRAs merged into the\n"
          "weights (W for the text encoder and the UNet, or W for the text encoder and UNET_W).\n",
          f);
    fputs("\nEngine options:\n", f);
    cli_engine_help(f);
    fputs("\nExit status: 0 success, 1 failure while running, 2 bad command line or input file.\n",
          f);
}

typedef struct stage_cfg {
    const stage_def *st;
    const char *model, *out;
    const char *tokens, *tokens_npy, *latent, *context, *image, *noise;
    double timestep, cfg, eta, strength;
    const char *init_img, *mask;
    long mask_blur;
    sdvk_lora loras[16];
    char lora_paths[16][4096];
    int n_loras;
    long steps, clip_skip;
    sdvk_sampler sampler;
    sdvk_schedule schedule;
    sdvk_rng rng;
    uint64_t seed;
    unsigned given;
    sdvk_options opt;
} stage_cfg;

static const char *opt_name(unsigned bit) {
    for (size_t k = 0; k < sizeof OPT_NAMES / sizeof OPT_NAMES[0]; k++)
        if (OPT_NAMES[k].bit == bit)
            return OPT_NAMES[k].name;
    return "?";
}

/* Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, stage_cfg *c) {
    cli_args a;
    const char *v = NULL;
    int rc;
    cli_args_init(&a, argc, argv, 2);
    for (;;) {
        int r = cli_args_next(&a);
        if (r == 0)
            break;
        if (r < 0)
            return cli_usage_error("stage %s: unexpected argument '%s'", c->st->name, a.opt);
        unsigned bit = 0;
        if (cli_engine_option(&a, &c->opt, &rc)) {
            if (rc)
                return rc;
        } else if (cli_is(&a, "-h", "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (cli_is(&a, "-m", "--model")) {
            if ((rc = cli_value(&a, &c->model)))
                return rc;
        } else if (cli_is(&a, "-o", "--output")) {
            if ((rc = cli_value(&a, &c->out)))
                return rc;
        } else if (cli_is(&a, "--tokens", NULL)) {
            bit = O_TOKENS;
            if ((rc = cli_value(&a, &c->tokens)))
                return rc;
        } else if (cli_is(&a, "--tokens-npy", NULL)) {
            bit = O_TOKENS_NPY;
            if ((rc = cli_value(&a, &c->tokens_npy)))
                return rc;
        } else if (cli_is(&a, "--latent", NULL)) {
            bit = O_LATENT;
            if ((rc = cli_value(&a, &c->latent)))
                return rc;
        } else if (cli_is(&a, "--context", NULL)) {
            bit = O_CONTEXT;
            if ((rc = cli_value(&a, &c->context)))
                return rc;
        } else if (cli_is(&a, "--image", NULL)) {
            bit = O_IMAGE;
            if ((rc = cli_value(&a, &c->image)))
                return rc;
        } else if (cli_is(&a, "--step-noise", NULL)) {
            bit = O_NOISE;
            if ((rc = cli_value(&a, &c->noise)))
                return rc;
        } else if (cli_is(&a, "--timestep", NULL)) {
            bit = O_TIMESTEP;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 0.0, 1000.0, &c->timestep)))
                return rc;
        } else if (cli_is(&a, "--cfg", "--cfg-scale")) {
            bit = O_CFG;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 0.0, 100.0, &c->cfg)))
                return rc;
        } else if (cli_is(&a, "--steps", NULL)) {
            bit = O_STEPS;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 1000, &c->steps)))
                return rc;
        } else if (cli_is(&a, "-s", "--seed")) {
            bit = O_SEED;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_u64(a.opt, v, &c->seed)))
                return rc;
        } else if (cli_is(&a, "--sampler", "--sampling-method")) {
            bit = O_SAMPLER;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_sampler(a.opt, v, &c->sampler, &c->schedule)))
                return rc;
        } else if (cli_is(&a, "--scheduler", "--schedule")) {
            bit = O_SAMPLER;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_schedule(a.opt, v, &c->schedule)))
                return rc;
        } else if (cli_is(&a, "--rng", NULL)) {
            bit = O_SAMPLER;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_rng(a.opt, v, &c->rng)))
                return rc;
        } else if (cli_is(&a, "--eta", NULL)) {
            bit = O_SAMPLER;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 0.0, 10.0, &c->eta)))
                return rc;
        } else if (cli_is(&a, "-i", "--init-img") || cli_is(&a, "--mask", NULL)) {
            bit = O_INIT;
            if ((rc = cli_value(&a, cli_is(&a, "--mask", NULL) ? &c->mask : &c->init_img)) ||
                (rc = cli_check_input_file(a.opt, cli_is(&a, "--mask", NULL) ? c->mask : c->init_img)))
                return rc;
        } else if (cli_is(&a, "--strength", NULL)) {
            bit = O_INIT;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 1e-6, 1.0, &c->strength)))
                return rc;
        } else if (cli_is(&a, "--mask-blur", NULL)) {
            bit = O_INIT;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 0, 256, &c->mask_blur)))
                return rc;
        } else if (cli_is(&a, "--lora", NULL)) {
            /* PATH[:W[:UNET_W]]: the weight from the last ':' that parses */
            if ((rc = cli_value(&a, &v)))
                return rc;
            if (c->n_loras == 16)
                return cli_usage_error("--lora: at most 16");
            sdvk_lora *l = &c->loras[c->n_loras];
            char *p = c->lora_paths[c->n_loras];
            snprintf(p, sizeof c->lora_paths[0], "%s", v);
            l->te_weight = l->unet_weight = 1.0f;
            double w[2];
            int nw = 0;
            for (char *colon; nw < 2 && (colon = strrchr(p, ':'));) {
                char *end;
                double x = strtod(colon + 1, &end);
                if (end == colon + 1 || *end || !isfinite(x))
                    break;
                w[nw++] = x;
                *colon = 0;
            }
            if (nw == 1)
                l->te_weight = l->unet_weight = (float)w[0];
            else if (nw == 2) {
                l->te_weight = (float)w[1];
                l->unet_weight = (float)w[0];
            }
            l->path = p;
            c->n_loras++;
            if ((rc = cli_check_input_file("--lora", p)))
                return rc;
        } else if (cli_is(&a, "--clip-skip", NULL)) {
            bit = O_CLIP_SKIP;
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 12, &c->clip_skip)))
                return rc;
        } else {
            return cli_usage_error("stage %s: unknown option '%s' (see sdvk stage --help)",
                                   c->st->name, a.opt);
        }
        if (bit && !(c->st->allowed & bit))
            return cli_usage_error("stage %s does not take %s", c->st->name, a.opt);
        c->given |= bit;
    }
    if ((c->mask || c->strength != 0.75 || c->mask_blur) && !c->init_img)
        return cli_usage_error("stage sample: --mask, --strength and --mask-blur need --init-img");
    for (unsigned bit = 1; bit <= O_INIT; bit <<= 1)
        if ((c->st->required & bit) && !(c->given & bit))
            return cli_usage_error("stage %s: missing %s", c->st->name, opt_name(bit));
    if (c->st->allowed & O_TOKENS) {
        int n = !!(c->given & O_TOKENS) + !!(c->given & O_TOKENS_NPY);
        if (n != 1)
            return cli_usage_error("stage clip: give exactly one of --tokens and --tokens-npy");
    }
    if (!c->model)
        return cli_usage_error("stage %s: missing -m/--model PATH", c->st->name);
    if (!c->out)
        return cli_usage_error("stage %s: missing -o/--output PATH (.npy)", c->st->name);
    return -1;
}

static int parse_token(const char *opt, long idx, const char *s, size_t len, int32_t *out) {
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return cli_usage_error("%s: item %ld ('%.*s') is not a token id", opt, idx, (int)len, s);
    memcpy(buf, s, len);
    buf[len] = '\0';
    char name[64];
    snprintf(name, sizeof name, "%s item %ld", opt, idx);
    long v;
    int rc = cli_parse_int(name, buf, 0, CLIP_VOCAB - 1, &v);
    if (rc)
        return rc;
    *out = (int32_t)v;
    return 0;
}

/* "49406,320,49407" -> one row of ids. */
static int parse_token_list(const char *s, int32_t *ids, int *len) {
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        if (n == CLIP_CTX_LEN)
            return cli_usage_error("--tokens: more than %d ids", CLIP_CTX_LEN);
        int rc = parse_token("--tokens", n + 1, p, l, &ids[n]);
        if (rc)
            return rc;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *len = n;
    return 0;
}

/* Loads a float32 array of rank `ndim` with no empty dimension. Errors
 * name the option and the file. */
static int load_array(const char *opt, const char *path, int ndim, npy_arr *a) {
    int rc = cli_check_input_file(opt, path);
    if (rc)
        return rc;
    sdvk_status s = sdvk_npy_load(path, &a->data, &a->dtype, &a->ndim, a->ne);
    if (s != SDVK_OK)
        return cli_status_error(CLI_USAGE, s, opt);
    if (a->dtype != 'f') {
        npy_free(a);
        return cli_usage_error("%s: '%s' holds integers; a float array is expected", opt, path);
    }
    if (a->ndim != ndim) {
        int got = a->ndim;
        npy_free(a);
        return cli_usage_error("%s: '%s' has %d dimensions; %d are expected", opt, path, got, ndim);
    }
    for (int k = 0; k < ndim; k++)
        if (a->ne[k] <= 0) {
            npy_free(a);
            return cli_usage_error("%s: '%s' has an empty dimension %d", opt, path, k);
        }
    return 0;
}

/* A PNG/JPEG as a [1,3,H,W] array in [-1,1], for vae-encode. */
static int load_image_array(const char *path, npy_arr *a) {
    int rc = cli_check_input_file("--image", path);
    if (rc)
        return rc;
    sdvk_image img;
    sdvk_status s = sdvk_image_load(path, NULL, &img);
    if (s != SDVK_OK)
        return cli_status_error(CLI_USAGE, s, "--image");
    size_t hw = (size_t)img.width * (size_t)img.height;
    float *d = malloc(hw * 3 * sizeof *d);
    if (!d) {
        sdvk_image_free(&img);
        return cli_usage_error("--image: '%s' is too large (out of memory)", path);
    }
    for (size_t i = 0; i < hw; i++)
        for (int ch = 0; ch < 3; ch++)
            d[(size_t)ch * hw + i] = (float)img.data[i * (size_t)img.channels + (size_t)ch] / 127.5f - 1.0f;
    memset(a, 0, sizeof *a);
    a->dtype = 'f';
    a->ndim = 4;
    a->ne[0] = 1;
    a->ne[1] = 3;
    a->ne[2] = img.height;
    a->ne[3] = img.width;
    a->data = d;
    sdvk_image_free(&img);
    return 0;
}

static int has_npy_ext(const char *path) {
    size_t n = strlen(path);
    return n >= 4 && strcmp(path + n - 4, ".npy") == 0;
}

int cli_cmd_stage(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    stage_cfg c;
    memset(&c, 0, sizeof c);
    for (int k = 0; k < N_STAGES; k++)
        if (strcmp(argv[1], STAGES[k].name) == 0)
            c.st = &STAGES[k];
    if (!c.st)
        return cli_usage_error("unknown stage '%s' (use clip, unet, vae-decode, vae-encode or "
                               "sample; see sdvk stage --help)",
                               argv[1]);
    sdvk_options_default(&c.opt);
    sdvk_options_from_env(&c.opt);
    c.seed = 42;
    c.sampler = SDVK_SAMPLER_DDPM; /* the stage's historical default */
    c.schedule = SDVK_SCHEDULE_DISCRETE;
    c.rng = SDVK_RNG_SDVK;
    c.eta = 1.0;
    c.clip_skip = 1;
    c.strength = 0.75;
    int rc = parse(argc, argv, &c);
    if (rc >= 0)
        return rc;

    npy_arr tok = {0}, lat = {0}, ctxa = {0}, img = {0}, noise = {0};
    int32_t list_ids[CLIP_CTX_LEN];
    const int32_t *ids = NULL;
    int batch = 0, len = 0;
    sdvk_ctx *ctx = NULL;
    float *out = NULL;
    int64_t ne[5] = {0};
    int out_ndim = 4;
    sdvk_status s = SDVK_OK;

    if ((rc = cli_check_model_path("-m/--model", c.model)))
        goto done;
    /* Inputs, in the order of the synopsis. */
    if (c.given & O_TOKENS) {
        if ((rc = parse_token_list(c.tokens, list_ids, &len)))
            goto done;
        ids = list_ids;
        batch = 1;
    }
    if (c.given & O_TOKENS_NPY) {
        if ((rc = cli_check_input_file("--tokens-npy", c.tokens_npy)))
            goto done;
        s = sdvk_npy_load(c.tokens_npy, &tok.data, &tok.dtype, &tok.ndim, tok.ne);
        if (s != SDVK_OK) {
            rc = cli_status_error(CLI_USAGE, s, "--tokens-npy");
            goto done;
        }
        if (tok.dtype != 'i' || (tok.ndim != 1 && tok.ndim != 2)) {
            rc = cli_usage_error("--tokens-npy: '%s' must hold integer token ids of shape [len] or "
                                 "[batch, len] (got %d dimensions of %s)",
                                 c.tokens_npy, tok.ndim, tok.dtype == 'i' ? "integers" : "floats");
            goto done;
        }
        batch = tok.ndim == 2 ? (int)tok.ne[0] : 1;
        int64_t l = tok.ne[tok.ndim - 1];
        if (batch < 1 || tok.ne[0] > 4096 || l < 1 || l > CLIP_CTX_LEN) {
            rc = cli_usage_error("--tokens-npy: '%s': need 1..4096 rows of 1..%d ids", c.tokens_npy,
                                 CLIP_CTX_LEN);
            goto done;
        }
        len = (int)l;
        ids = tok.data;
        for (int64_t k = 0; k < (int64_t)batch * len; k++)
            if (ids[k] < 0 || ids[k] >= CLIP_VOCAB) {
                rc = cli_usage_error("--tokens-npy: '%s': id %" PRId32 " at index %" PRId64
                                     " is outside 0..%d",
                                     c.tokens_npy, ids[k], k, CLIP_VOCAB - 1);
                goto done;
            }
    }
    if ((c.given & O_LATENT) && (rc = load_array("--latent", c.latent, 4, &lat)))
        goto done;
    if ((c.given & O_CONTEXT) && (rc = load_array("--context", c.context, 3, &ctxa)))
        goto done;
    if (c.given & O_IMAGE) {
        rc = has_npy_ext(c.image) ? load_array("--image", c.image, 4, &img)
                                  : load_image_array(c.image, &img);
        if (rc)
            goto done;
    }
    if ((c.given & O_NOISE) && (rc = load_array("--step-noise", c.noise, 5, &noise)))
        goto done;
    if ((rc = cli_check_output("-o/--output", c.out)))
        goto done;

    if ((rc = cli_create_ctx(c.model, &c.opt, &ctx)))
        goto done;
    if (c.n_loras && (s = sdvk_set_loras(ctx, c.loras, c.n_loras)) != SDVK_OK) {
        rc = cli_status_error(CLI_USAGE, s, "--lora");
        goto done;
    }
    double t0 = cli_now();
    const char *name = c.st->name;
    if (strcmp(name, "clip") == 0) {
        int64_t ne3[3];
        s = sdvk_stage_clip(ctx, ids, batch, len, (int)c.clip_skip, &out, ne3);
        memcpy(ne, ne3, sizeof ne3);
        out_ndim = 3;
    } else if (strcmp(name, "unet") == 0) {
        int64_t ne4[4];
        s = sdvk_stage_unet(ctx, lat.data, lat.ne, (float)c.timestep, ctxa.data, ctxa.ne, &out, ne4);
        memcpy(ne, ne4, sizeof ne4);
    } else if (strcmp(name, "vae-decode") == 0) {
        int64_t ne4[4];
        s = sdvk_stage_vae_decode(ctx, lat.data, lat.ne, &out, ne4);
        memcpy(ne, ne4, sizeof ne4);
    } else if (strcmp(name, "vae-encode") == 0) {
        int64_t ne4[4];
        s = sdvk_stage_vae_encode(ctx, img.data, img.ne, &out, ne4);
        memcpy(ne, ne4, sizeof ne4);
    } else {
        int64_t ne4[4];
        cli_install_sigint();
        sdvk_gen_params p;
        sdvk_gen_params_default(&p);
        p.steps = (int)c.steps;
        p.cfg_scale = (float)c.cfg;
        p.seed = c.seed;
        p.sampler = c.sampler;
        p.schedule = c.schedule;
        p.rng = c.rng;
        p.eta = (float)c.eta;
        sdvk_image init = {0}, mask = {0};
        if (c.init_img && (s = sdvk_image_load(c.init_img, NULL, &init)) != SDVK_OK) {
            rc = cli_status_error(CLI_USAGE, s, "--init-img");
            goto done;
        }
        if (c.mask && (s = sdvk_image_load(c.mask, NULL, &mask)) != SDVK_OK) {
            sdvk_image_free(&init);
            rc = cli_status_error(CLI_USAGE, s, "--mask");
            goto done;
        }
        p.init_image = init.data ? &init : NULL;
        p.mask = mask.data ? &mask : NULL;
        p.strength = (float)c.strength;
        p.mask_blur = (int)c.mask_blur;
        s = sdvk_stage_sample(ctx, &p, ctxa.data, ctxa.ne, lat.data, lat.ne, noise.data,
                              noise.data ? noise.ne : NULL, &out, ne4);
        sdvk_image_free(&init);
        sdvk_image_free(&mask);
        memcpy(ne, ne4, sizeof ne4);
    }
    if (s != SDVK_OK) {
        char what[64];
        snprintf(what, sizeof what, "stage %s", name);
        /* Shapes that do not fit the model are found only once it is
         * open; they are still bad input, not a failure of the engine. */
        rc = cli_status_error(s == SDVK_ERR_INVALID_ARG ? CLI_USAGE : CLI_FAIL, s, what);
        goto done;
    }
    if (c.opt.verbose)
        fprintf(stderr, "sdvk: stage %s took %.3f s\n", name, cli_now() - t0);
    s = sdvk_npy_save_f32(c.out, out, out_ndim, ne);
    if (s != SDVK_OK) {
        rc = cli_status_error(CLI_FAIL, s, "writing the result");
        goto done;
    }
    if (c.opt.verbose) {
        fprintf(stderr, "sdvk: wrote %s [", c.out);
        for (int k = 0; k < out_ndim; k++)
            fprintf(stderr, "%s%" PRId64, k ? "," : "", ne[k]);
        fputs("]\n", stderr);
    }
    rc = CLI_OK;
done:
    sdvk_free(out);
    npy_free(&tok);
    npy_free(&lat);
    npy_free(&ctxa);
    npy_free(&img);
    npy_free(&noise);
    if (ctx)
        sdvk_destroy(ctx);
    return rc;
}
