#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

double sd_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static _Thread_local char g_msg[2048];
_Thread_local int sd_verbose = 0;

const char *sdvk_last_error(void) { return g_msg; }

const char *sdvk_status_str(sdvk_status s) {
    switch (s) {
    case SDVK_OK: return "ok";
    case SDVK_ERR_INVALID_ARG: return "invalid argument";
    case SDVK_ERR_IO: return "I/O error";
    case SDVK_ERR_FORMAT: return "bad file format";
    case SDVK_ERR_MODEL: return "model error";
    case SDVK_ERR_OOM: return "out of memory";
    case SDVK_ERR_BACKEND: return "backend error";
    case SDVK_ERR_UNSUPPORTED: return "unsupported";
    case SDVK_ERR_NUMERIC: return "NaN/Inf in result";
    case SDVK_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}

sdvk_status sd_err(sdvk_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return s;
}

sdvk_status sd_err_prefix(sdvk_status s, const char *fmt, ...) {
    char pre[1024], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    /* Truncation of an overlong message is acceptable here. */
    size_t n = strlen(pre);
    if (n > sizeof g_msg - 3)
        n = sizeof g_msg - 3;
    memcpy(g_msg, pre, n);
    memcpy(g_msg + n, ": ", 2);
    size_t m = strlen(old);
    if (m > sizeof g_msg - n - 3)
        m = sizeof g_msg - n - 3;
    memcpy(g_msg + n + 2, old, m);
    g_msg[n + 2 + m] = 0;
    return s;
}

void sd_err_clear(void) { g_msg[0] = 0; }

/* Where messages go: the calling thread's context sink (set by every API
 * entry through sd_log_set_sink), else stderr. */
static _Thread_local sdvk_log_fn g_sink;
static _Thread_local void *g_sink_user;

void sd_log_set_sink(sdvk_log_fn fn, void *user, int verbose) {
    g_sink = fn;
    g_sink_user = user;
    sd_verbose = verbose;
}

void sd_logv(sdvk_log_level level, const char *fmt, va_list ap) {
    int verbose = sd_verbose;
    if ((level == SDVK_LOG_INFO && verbose < 1) || (level == SDVK_LOG_DEBUG && verbose < 2))
        return;
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (g_sink) {
        g_sink(g_sink_user, level, buf);
        return;
    }
    fprintf(stderr, "sdvk: %s\n", buf);
}

void sd_logl(sdvk_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_logv(level, fmt, ap);
    va_end(ap);
}

void sd_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_logv(SDVK_LOG_WARN, fmt, ap);
    va_end(ap);
}

void sd_log_verbose(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_logv(SDVK_LOG_INFO, fmt, ap);
    va_end(ap);
}
