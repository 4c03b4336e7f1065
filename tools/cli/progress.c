/* Sampler progress on stderr and Ctrl-C cancellation. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t g_interrupted = 0;
static sdvk_ctx *volatile g_cancel_ctx;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
    /* sdvk_cancel is an atomic store: safe here, and it stops the CPU
     * backend within the current step */
    if (g_cancel_ctx)
        sdvk_cancel(g_cancel_ctx);
}

void cli_set_cancel_ctx(sdvk_ctx *ctx) { g_cancel_ctx = ctx; }

void cli_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    /* One-shot: the first Ctrl-C asks the engine to stop; a second one gets
     * the default action (terminate). */
    sa.sa_flags = (int)SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
}

int cli_interrupted(void) { return g_interrupted != 0; }

void cli_progress_start(cli_progress *p, int quiet) {
    memset(p, 0, sizeof *p);
    p->t_start = cli_now();
    p->tty = isatty(fileno(stderr));
    p->quiet = quiet;
}

/* "20 s", "3m05s", "1h02m". */
static void fmt_duration(char *buf, size_t n, double s) {
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, n, "%.0f s", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

int cli_progress_cb(void *user, int step, int n_steps) {
    cli_progress *p = user;
    double now = cli_now();
    /* The engine reports after each step; accept both a count of finished
     * steps (1..n) and a 0-based index (0..n-1), told apart by the first
     * call. */
    if (p->calls == 0)
        p->step_base = step == 0 ? 1 : 0;
    p->calls++;
    int done = step + p->step_base;
    if (done > n_steps)
        done = n_steps;
    if (p->quiet || n_steps <= 0)
        return cli_interrupted();
    /* Without a terminal (a log file, a pipe) one line every few seconds
     * and the last one, not a line per step. */
    if (!p->tty && done < n_steps && p->last_print > 0 && now - p->last_print < 5.0)
        return cli_interrupted();
    p->last_print = now;
    /* Average since the call began: it includes the text encoder and
     * setup (small next to the steps), and stays meaningful when a backend
     * that runs all steps on the device reports them in a burst at the end. */
    double per_it = done > 0 ? (now - p->t_start) / done : 0.0;
    enum { W = 30 };
    char bar[W + 1];
    int fill = (int)((long long)done * W / n_steps);
    for (int k = 0; k < W; k++)
        bar[k] = k < fill ? '=' : ' ';
    if (fill > 0 && fill < W)
        bar[fill - 1] = '>';
    bar[W] = '\0';
    char rate[32], eta[32];
    if (per_it >= 1.0 || per_it <= 0.0)
        snprintf(rate, sizeof rate, "%.2f s/it", per_it);
    else
        snprintf(rate, sizeof rate, "%.2f it/s", 1.0 / per_it);
    fmt_duration(eta, sizeof eta, per_it * (n_steps - done));
    fprintf(stderr, "%sstep %d/%d [%s] %s, ETA %s%s", p->tty ? "\r" : "", done, n_steps, bar,
            rate, eta, p->tty ? "   " : "\n");
    p->line_open = p->tty;
    fflush(stderr);
    return cli_interrupted();
}

void cli_progress_finish(cli_progress *p, const char *what) {
    if (p->line_open)
        fputc('\n', stderr);
    p->line_open = 0;
    if (!p->quiet) {
        char d[32];
        double t = cli_now() - p->t_start;
        if (t < 60)
            snprintf(d, sizeof d, "%.2f s", t);
        else
            fmt_duration(d, sizeof d, t);
        fprintf(stderr, "sdvk: %s in %s\n", what, d);
    }
}
