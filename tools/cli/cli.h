/* Shared pieces of the `sdvk` command-line front end: option-value parsing
 * with full validation, error reporting with fixed exit codes, and the
 * progress display. Each subcommand lives in its own cmd_*.c. */
#ifndef SDVK_CLI_H
#define SDVK_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "sdvk.h"

#ifndef SDVK_VERSION_STRING
#define SDVK_VERSION_STRING "0.2.0"
#endif

/* Exit codes. 2 means the command line or one of its input files was
 * rejected before anything heavy was loaded; 1 means a failure while
 * running (model load, compute, writing results). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Prints "sdvk: error: <msg>" to stderr and returns CLI_USAGE, so a caller
 * can write `return cli_usage_error("...")`. */
int cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* Prints "sdvk: error: <what>: <sdvk_last_error() or status name>" and
 * returns `code`. */
int cli_status_error(int code, sdvk_status s, const char *what);
void cli_warn(const char *fmt, ...) CLI_PRINTF(1, 2);

/* Option scanner over argv[first..argc). Accepts "--name value",
 * "--name=value" and "-x value"; "--" ends options. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;              /* next argv index */
    const char *opt;    /* the current option as written, without "=value" */
    const char *inline_val; /* value given as --name=value, else NULL */
    char optbuf[64];
    int end_of_opts;    /* "--" was seen */
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv, int first);
/* Next argument. Returns 1 with a->opt set for an option, 0 at the end,
 * and -1 for a positional argument (a->opt = the argument); after "--",
 * every remaining argument is positional. */
int cli_args_next(cli_args *a);
/* Whether the current option is name1 or name2 (either may be NULL). */
int cli_is(const cli_args *a, const char *name1, const char *name2);
/* Takes the current option's value into *val. On a missing value prints an
 * error naming the option and returns CLI_USAGE, else 0. */
int cli_value(cli_args *a, const char **val);
/* For flags without a value: error when written as --flag=value. */
int cli_no_value(const cli_args *a);

/* Strict number parsing: the whole string must be a number in [min, max]
 * (no trailing junk, no overflow, no NaN/Inf). Errors name the option and
 * the value and return CLI_USAGE; 0 on success. */
int cli_parse_int(const char *opt, const char *s, long min, long max, long *out);
int cli_parse_u64(const char *opt, const char *s, uint64_t *out);
int cli_parse_float(const char *opt, const char *s, double min, double max, double *out);

/* Shared engine options (--backend, --threads, --device, --precision,
 * --vocab, -v). Returns 1 if the current option was one of them (parsed, or
 * failed with *rc = CLI_USAGE), 0 if not. */
int cli_engine_option(cli_args *a, sdvk_options *opt, int *rc);
/* Help lines for the engine options. */
void cli_engine_help(FILE *f);
/* Warnings for engine options that do not apply to the chosen backend. */
void cli_engine_check(sdvk_options *opt);
/* Sampler, schedule and generator names; an unknown one lists the valid
 * ones. cli_parse_sampler also takes A1111's "DPM++ 2M Karras" (setting
 * *sch). 0 or CLI_USAGE. */
int cli_parse_sampler(const char *opt, const char *s, sdvk_sampler *out, sdvk_schedule *sch);
int cli_parse_schedule(const char *opt, const char *s, sdvk_schedule *out);
int cli_parse_rng(const char *opt, const char *s, sdvk_rng *out);

/* --lora FILE[:W[:UNET_W]]: a LoRA file with one weight for the text
 * encoder and the UNet (default 1), or the text encoder's W and the UNet's
 * UNET_W; the weights are taken from the end, so a path may hold ':'.
 * The path is copied into buf (size n) and l->path points at it; the file
 * must be readable. 0 or CLI_USAGE. */
int cli_parse_lora(const char *opt, const char *v, char *buf, size_t n, sdvk_lora *l);

/* Checks that path is a readable regular file; the message names `what`
 * (e.g. "-m/--model") and the path. Returns 0 or CLI_USAGE. */
int cli_check_input_file(const char *what, const char *path);
/* As cli_check_input_file, but a folder (diffusers pipeline) is accepted. */
int cli_check_model_path(const char *what, const char *path);
/* Checks that `path` can be written (sdvk_check_writable); 0 or CLI_USAGE. */
int cli_check_output(const char *what, const char *path);

/* Loading the model (library messages go to stderr): prints the error and
 * returns CLI_USAGE for a file that is not a usable model, CLI_FAIL for
 * other failures. */
int cli_create_ctx(const char *model, const sdvk_options *opt, sdvk_ctx **ctx);

/* The bundled demo model (SDVK_DEMO_MODEL, the install tree, the build
 * tree), written to buf; NULL when none exists. */
const char *cli_demo_model_path(char *buf, size_t n);

/* Monotonic seconds. */
double cli_now(void);

/* Progress display on stderr for the sampler loop:
 *   step 3/20 [=====>      ] 1.20 s/it, ETA 20 s
 * redrawn in place on a terminal, one line per step otherwise. */
typedef struct cli_progress {
    double t_start;   /* when the generation call was made */
    int calls;
    int tty;
    int quiet;
    int step_base;    /* 1 when the engine counts steps from 0 */
    int line_open;    /* a \r line is on screen without its newline */
    double last_print;
} cli_progress;

void cli_progress_start(cli_progress *p, int quiet);
/* sdvk_progress_fn: returns non-zero (cancel) after SIGINT. */
int cli_progress_cb(void *user, int step, int n_steps);
/* Ends the display and prints "done in X s" (what = e.g. "generated"). */
void cli_progress_finish(cli_progress *p, const char *what);
/* Installs a SIGINT handler that makes cli_progress_cb cancel the run; a
 * second Ctrl-C kills the process as usual. */
void cli_install_sigint(void);
int cli_interrupted(void);
/* The context a Ctrl-C cancels (sdvk_cancel); NULL for none. */
void cli_set_cancel_ctx(sdvk_ctx *ctx);

/* Subcommands. argv[0] is the subcommand name (or the program name for the
 * generate command). */
int cli_cmd_generate(int argc, char **argv);
int cli_cmd_stage(int argc, char **argv);
int cli_cmd_selftest(int argc, char **argv);
int cli_cmd_convert(int argc, char **argv);
/* `sdvk serve` (tools/server/), or a stub when built without libmicrohttpd. */
int sv_cmd_serve(int argc, char **argv);
/* Written by the tokenizer (tools/cli/cmd_tokenize.c). */
int sdvk_cmd_tokenize(int argc, char **argv);

#endif
