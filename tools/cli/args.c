/* Option scanning, strict number parsing and the checks every subcommand
 * shares. Everything here runs before a model is loaded, so a bad command
 * line costs nothing and always gets exit code 2. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("sdvk: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_USAGE;
}

void cli_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("sdvk: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_status_error(int code, sdvk_status s, const char *what) {
    const char *msg = sdvk_last_error();
    if (!msg || !msg[0])
        msg = sdvk_status_str(s);
    if (what && what[0])
        fprintf(stderr, "sdvk: error: %s: %s\n", what, msg);
    else
        fprintf(stderr, "sdvk: error: %s\n", msg);
    return code;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_args_init(cli_args *a, int argc, char **argv, int first) {
    memset(a, 0, sizeof *a);
    a->argc = argc;
    a->argv = argv;
    a->i = first;
}

int cli_args_next(cli_args *a) {
    a->opt = NULL;
    a->inline_val = NULL;
    for (;;) {
        if (a->i >= a->argc)
            return 0;
        const char *arg = a->argv[a->i++];
        if (a->end_of_opts || arg[0] != '-' || arg[1] == '\0') {
            a->opt = arg; /* "-" alone is a positional (conventionally stdin) */
            return -1;
        }
        if (strcmp(arg, "--") == 0) {
            a->end_of_opts = 1;
            continue;
        }
        const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
        if (eq) {
            size_t n = (size_t)(eq - arg);
            if (n >= sizeof a->optbuf)
                n = sizeof a->optbuf - 1;
            memcpy(a->optbuf, arg, n);
            a->optbuf[n] = '\0';
            a->opt = a->optbuf;
            a->inline_val = eq + 1;
        } else {
            a->opt = arg;
        }
        return 1;
    }
}

int cli_is(const cli_args *a, const char *name1, const char *name2) {
    return (name1 && strcmp(a->opt, name1) == 0) || (name2 && strcmp(a->opt, name2) == 0);
}

int cli_value(cli_args *a, const char **val) {
    if (a->inline_val) {
        *val = a->inline_val;
        return 0;
    }
    /* The next argument is taken as is, even when it starts with '-', so
     * `-p "-a prompt"` works. */
    if (a->i >= a->argc)
        return cli_usage_error("option %s needs a value", a->opt);
    *val = a->argv[a->i++];
    return 0;
}

int cli_no_value(const cli_args *a) {
    if (a->inline_val)
        return cli_usage_error("option %s takes no value (got '%s')", a->opt, a->inline_val);
    return 0;
}

/* strtol and friends skip leading blanks and accept an empty tail; the
 * checks here make " 5", "5x" and "" errors. */
static int bad_start(const char *s) { return s[0] == '\0' || isspace((unsigned char)s[0]); }

int cli_parse_int(const char *opt, const char *s, long min, long max, long *out) {
    char *end;
    if (bad_start(s))
        return cli_usage_error("%s: '%s' is not an integer", opt, s);
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0')
        return cli_usage_error("%s: '%s' is not an integer", opt, s);
    if (errno == ERANGE || v < min || v > max)
        return cli_usage_error("%s: %s is out of range (allowed: %ld..%ld)", opt, s, min, max);
    *out = v;
    return 0;
}

int cli_parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end;
    if (bad_start(s) || s[0] == '-' || s[0] == '+')
        return cli_usage_error("%s: '%s' is not a non-negative integer", opt, s);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0')
        return cli_usage_error("%s: '%s' is not a non-negative integer", opt, s);
    if (errno == ERANGE)
        return cli_usage_error("%s: %s is out of range (allowed: 0..%llu)", opt, s,
                               (unsigned long long)UINT64_MAX);
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double min, double max, double *out) {
    char *end;
    if (bad_start(s))
        return cli_usage_error("%s: '%s' is not a number", opt, s);
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0')
        return cli_usage_error("%s: '%s' is not a number", opt, s);
    /* Overflow gives ±HUGE_VAL; underflow to a tiny finite value is fine. */
    if (!isfinite(v))
        return cli_usage_error("%s: '%s' is not a finite number", opt, s);
    if (v < min || v > max)
        return cli_usage_error("%s: %s is out of range (allowed: %g..%g)", opt, s, min, max);
    *out = v;
    return 0;
}

int cli_engine_option(cli_args *a, sdvk_options *opt, int *rc) {
    const char *v = NULL;
    long n;
    *rc = 0;
    if (cli_is(a, "-v", "--verbose")) {
        *rc = cli_no_value(a);
        opt->verbose = 1;
        return 1;
    }
    if (cli_is(a, "--backend", NULL)) {
        if ((*rc = cli_value(a, &v)))
            return 1;
        if (strcmp(v, "auto") == 0)
            opt->backend = SDVK_BACKEND_AUTO;
        else if (strcmp(v, "cpu") == 0)
            opt->backend = SDVK_BACKEND_CPU;
        else if (strcmp(v, "vulkan") == 0)
            opt->backend = SDVK_BACKEND_VULKAN;
        else
            *rc = cli_usage_error("--backend: unknown backend '%s' (use auto, cpu or vulkan)", v);
        return 1;
    }
    if (cli_is(a, "-t", "--threads")) {
        if (!(*rc = cli_value(a, &v)) && !(*rc = cli_parse_int(a->opt, v, 0, 1024, &n))) {
            long cpus = sysconf(_SC_NPROCESSORS_ONLN);
            if (cpus > 0 && n > cpus) {
                cli_warn("%s %ld: this machine has %ld CPUs; using %ld threads", a->opt, n, cpus,
                         cpus);
                n = cpus;
            }
            opt->n_threads = (int)n;
        }
        return 1;
    }
    if (cli_is(a, "--device", NULL)) {
        if (!(*rc = cli_value(a, &v)) && !(*rc = cli_parse_int(a->opt, v, -1, 255, &n)))
            opt->device_index = (int)n;
        return 1;
    }
    if (cli_is(a, "--lora-model-dir", NULL) || cli_is(a, "--embd-dir", NULL) ||
        cli_is(a, "--vae", NULL)) {
        if ((*rc = cli_value(a, &v)))
            return 1;
        struct stat st;
        int want_dir = strcmp(a->opt, "--vae") != 0;
        if (stat(v, &st) != 0)
            *rc = cli_usage_error("%s: '%s': %s", a->opt, v, strerror(errno));
        else if (want_dir && !S_ISDIR(st.st_mode))
            *rc = cli_usage_error("%s: '%s' is not a folder", a->opt, v);
        else if (!strcmp(a->opt, "--lora-model-dir"))
            opt->lora_dir = v;
        else if (!strcmp(a->opt, "--embd-dir"))
            opt->embedding_dir = v;
        else
            opt->vae_path = v;
        return 1;
    }
    if (cli_is(a, "--taesd", NULL)) {
        if (!(*rc = cli_value(a, &v)) && !(*rc = cli_check_input_file("--taesd", v))) {
            opt->taesd_path = v;
            opt->taesd_final = opt->taesd_final >= 0; /* unless --taesd-preview-only came first */
        }
        return 1;
    }
    if (cli_is(a, "--taesd-preview-only", NULL)) {
        *rc = cli_no_value(a);
        opt->taesd_final = -1; /* read by cli_engine_check */
        return 1;
    }
    if (cli_is(a, "--vae-tiling", NULL)) {
        if ((*rc = cli_value(a, &v)))
            return 1;
        int k = sdvk_tiling_from_name(v);
        if (k < 0)
            *rc = cli_usage_error("--vae-tiling: unknown mode '%s' (use auto, on or off)", v);
        else
            opt->vae_tiling = (sdvk_tiling)k;
        return 1;
    }
    if (cli_is(a, "--max-memory", NULL)) {
        if (!(*rc = cli_value(a, &v)) && !(*rc = cli_parse_int(a->opt, v, 1, 1 << 24, &n)))
            opt->max_memory_mb = (int)n;
        return 1;
    }
    if (cli_is(a, "--vae-tile-rows", NULL)) {
        if (!(*rc = cli_value(a, &v)) && !(*rc = cli_parse_int(a->opt, v, 1, 1 << 16, &n)))
            opt->vae_tile_rows = (int)n;
        return 1;
    }
    if (cli_is(a, "--validation", NULL)) {
        *rc = cli_no_value(a);
        opt->validation = 1;
        return 1;
    }
    if (cli_is(a, "--precision", NULL)) {
        if ((*rc = cli_value(a, &v)))
            return 1;
        static const char *names[] = {"auto", "f32", "f16", "bf16"};
        for (int k = 0; k < 4; k++)
            if (strcmp(v, names[k]) == 0) {
                opt->precision = (sdvk_precision)k;
                return 1;
            }
        *rc = cli_usage_error("--precision: unknown precision '%s' (use auto, f32, f16 or bf16)", v);
        return 1;
    }
    if (cli_is(a, "--weights", NULL)) {
        if ((*rc = cli_value(a, &v)))
            return 1;
        if (!strcmp(v, "auto"))
            opt->weights = SDVK_WEIGHTS_AUTO;
        else if (!strcmp(v, "q8"))
            opt->weights = SDVK_WEIGHTS_Q8;
        else
            *rc = cli_usage_error("--weights: unknown weight type '%s' (use auto or q8)", v);
        return 1;
    }
    if (cli_is(a, "--vocab", NULL)) {
        if ((*rc = cli_value(a, &v)))
            return 1;
        struct stat st;
        /* A file (.txt.gz / vocab.json) or a tokenizer/ folder. */
        if (stat(v, &st) != 0)
            *rc = cli_usage_error("--vocab: '%s': %s", v, strerror(errno));
        else
            opt->vocab_path = v;
        return 1;
    }
    return 0;
}

void cli_engine_check(sdvk_options *opt) {
    if (opt->taesd_final < 0) {
        if (!opt->taesd_path)
            cli_warn("--taesd-preview-only without --taesd: ignored");
        opt->taesd_final = 0;
    }
    if (opt->backend == SDVK_BACKEND_CPU) {
        if (opt->precision == SDVK_PRECISION_F16)
            cli_warn("--precision f16 is a Vulkan precision; the CPU backend computes in f32 "
                     "(ignored)");
        if (opt->device_index >= 0)
            cli_warn("--device %d chooses a Vulkan device; ignored with --backend cpu",
                     opt->device_index);
        if (opt->validation)
            cli_warn("--validation is the Vulkan validation layer; ignored with --backend cpu");
    }
    if (opt->backend == SDVK_BACKEND_VULKAN && opt->n_threads > 0)
        cli_warn("--threads sets CPU threads; the Vulkan backend does not use them");
}

int cli_parse_sampler(const char *opt, const char *s, sdvk_sampler *out, sdvk_schedule *sch) {
    int k = sdvk_sampler_from_name(s);
    if (k < 0) {
        /* A1111's older combined names: "DPM++ 2M Karras" */
        const char *sp = strrchr(s, ' ');
        if (sp && sp > s) {
            char head[128];
            snprintf(head, sizeof head, "%.*s", (int)(sp - s), s);
            int j = sdvk_schedule_from_name(sp + 1);
            k = sdvk_sampler_from_name(head);
            if (k >= 0 && j > 0) {
                *out = (sdvk_sampler)k;
                *sch = (sdvk_schedule)j;
                return 0;
            }
            k = -1;
        }
    }
    if (k < 0) {
        char list[512] = "";
        for (int i = 0; i < SDVK_SAMPLER_COUNT; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     sdvk_sampler_name((sdvk_sampler)i));
        return cli_usage_error("%s: unknown sampler '%s' (use one of: %s)", opt, s, list);
    }
    *out = (sdvk_sampler)k;
    return 0;
}

int cli_parse_schedule(const char *opt, const char *s, sdvk_schedule *out) {
    int k = sdvk_schedule_from_name(s);
    if (k < 0) {
        char list[256] = "";
        for (int i = 1; i < SDVK_SCHEDULE_COUNT; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i > 1 ? ", " : "",
                     sdvk_schedule_name((sdvk_schedule)i));
        return cli_usage_error("%s: unknown schedule '%s' (use one of: %s)", opt, s, list);
    }
    *out = (sdvk_schedule)k;
    return 0;
}

int cli_parse_rng(const char *opt, const char *s, sdvk_rng *out) {
    int k = sdvk_rng_from_name(s);
    if (k < 0)
        return cli_usage_error("%s: unknown generator '%s' (use cpu, cuda or sdvk)", opt, s);
    *out = (sdvk_rng)k;
    return 0;
}

void cli_engine_help(FILE *f) {
    fputs("  --backend auto|cpu|vulkan  compute backend (default auto: Vulkan if usable, else CPU)\n"
          "  -t, --threads N            CPU threads, 0 = physical cores (default 0)\n"
          "  --device N                 Vulkan device index from --list-devices, -1 = best (default)\n"
          "  --precision auto|f32|f16|bf16  compute precision (default auto)\n"
          "  --weights auto|q8          q8: 8-bit matmul/conv weights on the CPU (half of f16's\n"
          "                             memory); auto: as the file stores them (default)\n"
          "  --vocab PATH               CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz, vocab.json or a\n"
          "                             tokenizer/ folder; default: $SDVK_VOCAB, then beside the model)\n"
          "  --vae PATH                 a separate VAE (.safetensors, .ckpt or a diffusers vae/ folder)\n"
          "  --lora-model-dir DIR       where <lora:NAME:W> in a prompt finds NAME.safetensors\n"
          "  --embd-dir DIR             textual-inversion embeddings, used where a prompt names them\n"
          "  --taesd PATH               TAESD (tiny autoencoder, diffusers AutoencoderTiny\n"
          "                             .safetensors): fast approximate decoding and previews\n"
          "  --taesd-preview-only       TAESD for previews only; pictures use the full VAE\n"
          "  --vae-tiling auto|on|off   VAE in bands of rows, exact (whole-picture GroupNorm\n"
          "                             statistics); auto: only when the whole VAE would not fit\n"
          "  --max-memory MB            memory budget in MB (host for the CPU, device for Vulkan);\n"
          "                             plans VAE bands and CFG halves to fit (default: what is free)\n"
          "  --vae-tile-rows N          rows per VAE band (default: planned from the budget)\n"
          "  --validation               Vulkan validation layer on (its errors fail the run)\n"
          "  -v, --verbose              log backend choices and per-stage timings\n",
          f);
}

int cli_parse_lora(const char *opt, const char *v, char *buf, size_t n, sdvk_lora *l) {
    if (strlen(v) >= n)
        return cli_usage_error("%s: path too long", opt);
    snprintf(buf, n, "%s", v);
    l->te_weight = l->unet_weight = 1.0f;
    double w[2];
    int nw = 0;
    for (char *colon; nw < 2 && (colon = strrchr(buf, ':'));) {
        char *end;
        errno = 0;
        double x = strtod(colon + 1, &end);
        if (end == colon + 1 || *end || !isfinite(x) || errno)
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
    l->path = buf;
    return cli_check_input_file(opt, buf);
}

int cli_check_input_file(const char *what, const char *path) {
    struct stat st;
    if (path[0] == '\0')
        return cli_usage_error("%s: empty file name", what);
    if (stat(path, &st) != 0)
        return cli_usage_error("%s: '%s': %s", what, path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return cli_usage_error("%s: '%s' is a directory, not a file", what, path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_usage_error("%s: cannot open '%s': %s", what, path, strerror(errno));
    fclose(f);
    return 0;
}

int cli_check_model_path(const char *what, const char *path) {
    struct stat st;
    if (path[0] == '\0')
        return cli_usage_error("%s: empty file name", what);
    if (stat(path, &st) != 0)
        return cli_usage_error("%s: '%s': %s", what, path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return 0; /* a diffusers folder: the library checks what is inside */
    return cli_check_input_file(what, path);
}

int cli_check_output(const char *what, const char *path) {
    if (path[0] == '\0')
        return cli_usage_error("%s: empty file name", what);
    sdvk_status s = sdvk_check_writable(path);
    if (s != SDVK_OK) {
        cli_status_error(CLI_USAGE, s, what);
        return CLI_USAGE;
    }
    return 0;
}

/* The library's messages, as "sdvk: ..." lines on stderr. */
static void cli_log(void *user, sdvk_log_level level, const char *msg) {
    (void)user;
    fprintf(stderr, "sdvk: %s%s\n", level == SDVK_LOG_ERROR ? "error: " : "", msg);
}

int cli_create_ctx(const char *model, const sdvk_options *opt_in, sdvk_ctx **ctx) {
    double t0 = cli_now();
    sdvk_options o = *opt_in;
    o.log = cli_log;
    if (o.taesd_final < 0) /* --taesd-preview-only */
        o.taesd_final = 0;
    const sdvk_options *opt = &o;
    sdvk_status s = sdvk_create(model, opt, ctx);
    if (s != SDVK_OK) {
        *ctx = NULL;
        char what[64 + 4096];
        snprintf(what, sizeof what, "loading model '%s'", model);
        /* a file that is not a usable model is bad input (exit 2); running
         * out of memory or a driver failure is a failure (1) */
        int bad_input = s == SDVK_ERR_FORMAT || s == SDVK_ERR_MODEL || s == SDVK_ERR_IO ||
                        s == SDVK_ERR_INVALID_ARG;
        return cli_status_error(bad_input ? CLI_USAGE : CLI_FAIL, s, what);
    }
    if (opt->verbose)
        fprintf(stderr, "sdvk: loaded '%s' in %.2f s, backend: %s\n", model, cli_now() - t0,
                sdvk_backend_name(*ctx));
    return 0;
}
