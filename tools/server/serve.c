/* `sdvk serve`: the command line, start-up, signals and graceful shutdown.
 *
 * SIGTERM / SIGINT: stop accepting connections, answer every queued job
 * with 503, give the running job --grace seconds to finish (then cancel
 * it: its client gets 503), wait for the answers to go out, free
 * everything, exit 0. The signals are blocked in every thread and taken
 * with sigwait() by the main thread, so no work happens in a handler. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/cli.h"
#include "server.h"

typedef struct serve_cfg {
    const char *model;
    char demo_path[4160];
    sv_listen listen;
    const char *api_key;
    long queue, max_conn, preview_every;
    double timeout, grace;
    sv_limits lim;
    sdvk_options opt;
} serve_cfg;

static void usage(FILE *f) {
    fputs("Usage: sdvk serve [-m MODEL] [options]\n"
          "\n"
          "An HTTP server with the A1111 API (/sdapi/v1/txt2img, img2img, progress, interrupt,\n"
          "samplers, schedulers, sd-models, options, loras, png-info), the OpenAI images API\n"
          "(/v1/images/generations, /v1/models), /health, /metrics (Prometheus) and a web page at /.\n"
          "The model stays loaded; requests queue for one worker.\n"
          "\n"
          "  -m, --model PATH           SD v1.x checkpoint; default: the bundled demo model\n"
          "      --listen HOST:PORT     address to listen on (default 127.0.0.1:7860; [::1]:7860 for\n"
          "                             IPv6; port 0 picks a free port, printed at start)\n"
          "      --api-key KEY          require 'Authorization: Bearer KEY' on every endpoint but / and\n"
          "                             /health (default: $SDVK_API_KEY; none when unset)\n"
          "      --queue N              jobs that may wait for the worker; more get 503 (default 16)\n"
          "      --timeout SECONDS      cancel a request not answered in this time: 504 (default 600;\n"
          "                             0 = none)\n"
          "      --grace SECONDS        on SIGTERM, time the running job gets to finish (default 10)\n"
          "      --max-body BYTES       largest request body (default 50000000)\n"
          "      --max-width N, --max-height N   largest picture side (default 2048)\n"
          "      --max-steps N          most sampler steps (default 150)\n"
          "      --max-images N         most pictures per request, batch_size x n_iter (default 8)\n"
          "      --max-image-pixels N   largest uploaded image (default 16777216 = 4096x4096)\n"
          "      --max-connections N    simultaneous connections (default 64)\n"
          "      --preview-every N      a live preview every N steps (default 0 = off; A1111's\n"
          "                             show_progress_every_n_steps option changes it)\n"
          "      --lora-dir DIR         = --lora-model-dir (A1111's name)\n"
          "      --embedding-dir DIR    = --embd-dir\n"
          "\n"
          "Engine options:\n",
          f);
    cli_engine_help(f);
    fputs("\nExit status: 0 after a clean shutdown (SIGTERM/SIGINT), 1 failure, 2 bad command "
          "line.\n",
          f);
}

static int parse_listen(const char *v, sv_listen *out) {
    const char *host = v, *port = NULL;
    size_t hl;
    if (v[0] == '[') {
        const char *rb = strchr(v, ']');
        if (!rb || rb[1] != ':')
            return cli_usage_error("--listen: '%s': write an IPv6 address as [ADDR]:PORT", v);
        host = v + 1;
        hl = (size_t)(rb - host);
        port = rb + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon)
            return cli_usage_error("--listen: '%s': give HOST:PORT (e.g. 127.0.0.1:7860)", v);
        hl = (size_t)(colon - v);
        port = colon + 1;
    }
    if (hl == 0 || hl >= sizeof out->host)
        return cli_usage_error("--listen: '%s': give HOST:PORT (0.0.0.0:PORT for every address)",
                               v);
    memcpy(out->host, host, hl);
    out->host[hl] = 0;
    long p;
    int rc = cli_parse_int("--listen port", port, 0, 65535, &p);
    if (rc)
        return rc;
    out->port = (int)p;
    return 0;
}

static int is_loopback(const char *host) {
    return !strncmp(host, "127.", 4) || !strcmp(host, "::1") || !strcmp(host, "localhost");
}

/* -1 to go on, else the exit code. */
static int parse(int argc, char **argv, serve_cfg *c) {
    cli_args a;
    const char *v = NULL;
    int rc;
    long n;
    double d;
    cli_args_init(&a, argc, argv, 1);
    for (;;) {
        int r = cli_args_next(&a);
        if (r == 0)
            break;
        if (r < 0)
            return cli_usage_error("serve: unexpected argument '%s' (see sdvk serve --help)", a.opt);
        if (cli_engine_option(&a, &c->opt, &rc)) {
            if (rc)
                return rc;
        } else if (cli_is(&a, "-h", "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (cli_is(&a, "-m", "--model")) {
            if ((rc = cli_value(&a, &c->model)))
                return rc;
        } else if (cli_is(&a, "--listen", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = parse_listen(v, &c->listen)))
                return rc;
        } else if (cli_is(&a, "--api-key", NULL)) {
            if ((rc = cli_value(&a, &c->api_key)))
                return rc;
            if (!*c->api_key)
                return cli_usage_error("--api-key: the key is empty");
        } else if (cli_is(&a, "--queue", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 0, 100000, &c->queue)))
                return rc;
        } else if (cli_is(&a, "--timeout", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 0, 1e7, &c->timeout)))
                return rc;
        } else if (cli_is(&a, "--grace", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 0, 1e5, &c->grace)))
                return rc;
        } else if (cli_is(&a, "--max-body", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1024, 1L << 31, &n)))
                return rc;
            c->lim.max_body = (size_t)n;
        } else if (cli_is(&a, "--max-width", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 8, 16384, &n)))
                return rc;
            c->lim.max_width = (int)n;
        } else if (cli_is(&a, "--max-height", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 8, 16384, &n)))
                return rc;
            c->lim.max_height = (int)n;
        } else if (cli_is(&a, "--max-steps", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 1000, &n)))
                return rc;
            c->lim.max_steps = (int)n;
        } else if (cli_is(&a, "--max-images", "--max-batch")) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 1, 1000, &n)))
                return rc;
            c->lim.max_images = (int)n;
        } else if (cli_is(&a, "--max-image-pixels", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 1, 1e10, &d)))
                return rc;
            c->lim.max_image_pixels = (int64_t)d;
        } else if (cli_is(&a, "--max-connections", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 2, 10000, &c->max_conn)))
                return rc;
        } else if (cli_is(&a, "--preview-every", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_int(a.opt, v, 0, 1000, &c->preview_every)))
                return rc;
        } else if (cli_is(&a, "--lora-dir", NULL)) {
            if ((rc = cli_value(&a, &c->opt.lora_dir)))
                return rc;
        } else if (cli_is(&a, "--embedding-dir", NULL)) {
            if ((rc = cli_value(&a, &c->opt.embedding_dir)))
                return rc;
        } else {
            return cli_usage_error("serve: unknown option '%s' (see sdvk serve --help)", a.opt);
        }
    }
    if (!c->model) {
        if (!(c->model = cli_demo_model_path(c->demo_path, sizeof c->demo_path)))
            return cli_usage_error("no model given: use -m/--model PATH (the demo model is not "
                                   "installed)");
        /* the tiny demo model is fastest on the CPU, as in the CLI */
        if (c->opt.backend == SDVK_BACKEND_AUTO)
            c->opt.backend = SDVK_BACKEND_CPU;
        fprintf(stderr, "sdvk serve: no -m/--model given: serving the demo model %s (64x64 "
                        "pictures of simple shapes)\n", c->model);
    }
    if ((rc = cli_check_model_path("-m/--model", c->model)))
        return rc;
    if (!c->api_key) {
        const char *env = getenv("SDVK_API_KEY");
        if (env && *env)
            c->api_key = env;
    }
    if (!is_loopback(c->listen.host) && !c->api_key)
        cli_warn("--listen %s: reachable from other machines without --api-key", c->listen.host);
    cli_engine_check(&c->opt);
    return -1;
}

/* "dir/name.safetensors" -> title "name.safetensors", name "name"; a
 * diffusers folder "dir/name/" -> "name". */
static void model_names(const char *path, sv_model *m) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/') buf[--l] = 0;
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    if (!*base)
        base = "model";
    snprintf(m->title, sizeof m->title, "%s", base);
    snprintf(m->filename, sizeof m->filename, "%s", base);
    snprintf(m->name, sizeof m->name, "%s", base);
    char *dot = strrchr(m->name, '.');
    if (dot && dot != m->name)
        *dot = 0;
}

static int run(serve_cfg *c) {
    /* Every thread made from here on inherits the blocked set: only the main
     * thread takes SIGTERM/SIGINT, in sigwait(). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sv_server *s = malloc(sizeof *s);
    if (!s || sv_server_init(s)) {
        free(s);
        fprintf(stderr, "sdvk serve: error: out of memory\n");
        return CLI_FAIL;
    }
    c->opt.keep = SDVK_KEEP_ALL; /* weights stay resident between requests */
    int rc = cli_create_ctx(c->model, &c->opt, &s->ctx);
    if (rc) {
        sv_server_destroy(s);
        free(s);
        return rc;
    }
    sdvk_tokenizer *tok = NULL;
    if (sdvk_tokenizer_open(c->opt.vocab_path, c->model, c->opt.fallback_vocab_path, &tok) !=
        SDVK_OK) {
        fprintf(stderr, "sdvk serve: error: --vocab: %s (give --vocab PATH, or set SDVK_VOCAB)\n",
                sdvk_last_error());
        sdvk_destroy(s->ctx);
        sv_server_destroy(s);
        free(s);
        return CLI_USAGE;
    }
    sdvk_tokenizer_close(tok);
    model_names(c->model, &s->model);
    sdvk_model_info_get(s->ctx, &s->model.info);
    snprintf(s->model.backend, sizeof s->model.backend, "%s", sdvk_backend_name(s->ctx));
    s->lim = c->lim;
    s->q_max = (int)c->queue;
    s->timeout_s = c->timeout;
    s->api_key = c->api_key;
    s->allow_lora = c->opt.lora_dir != NULL;
    s->set.clip_skip = 1;
    s->set.rng = SDVK_RNG_CUDA; /* A1111's default randn_source "GPU" */
    s->set.preview_every = (int)c->preview_every;

    int port = 0;
    sv_http *h = NULL;
    if (sv_worker_start(s) ||
        !(h = sv_http_start(s, &c->listen, c->opt.lora_dir, (int)c->max_conn, &port))) {
        sv_worker_stop(s);
        sdvk_destroy(s->ctx);
        sv_server_destroy(s);
        free(s);
        return CLI_FAIL;
    }
    int v6 = strchr(c->listen.host, ':') != NULL;
    printf("sdvk serve: listening on http://%s%s%s:%d/ (model %s, %s)\n", v6 ? "[" : "",
           c->listen.host, v6 ? "]" : "", port, s->model.name, s->model.backend);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    fprintf(stderr, "sdvk serve: %s: shutting down (queued requests get 503; the running job "
                    "gets %g s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM", c->grace);
    sv_http_quiesce(h);
    sv_shutdown_begin(s);
    double until = sv_now() + c->grace;
    while (sv_busy(s) && sv_now() < until) usleep(20 * 1000);
    if (sv_busy(s)) {
        fprintf(stderr, "sdvk serve: cancelling the running job\n");
        sv_shutdown_cancel_running(s);
    }
    sv_http_stop(h, 30.0);
    sv_worker_stop(s);
    sdvk_destroy(s->ctx);
    sv_server_destroy(s);
    free(s);
    fprintf(stderr, "sdvk serve: stopped\n");
    return CLI_OK;
}

int sv_cmd_serve(int argc, char **argv) {
    serve_cfg c;
    memset(&c, 0, sizeof c);
    sdvk_options_default(&c.opt);
    sdvk_options_from_env(&c.opt);
    snprintf(c.listen.host, sizeof c.listen.host, "127.0.0.1");
    c.listen.port = 7860;
    c.queue = 16;
    c.max_conn = 64;
    c.timeout = 600;
    c.grace = 10;
    c.lim.max_body = 50 * 1000 * 1000;
    c.lim.max_width = 2048;
    c.lim.max_height = 2048;
    c.lim.max_steps = 150;
    c.lim.max_images = 8;
    c.lim.max_image_pixels = 4096 * 4096;
    c.lim.max_image_side = 16384;
    int rc = parse(argc, argv, &c);
    return rc >= 0 ? rc : run(&c);
}
