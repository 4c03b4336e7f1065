#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[2048];
int sd_verbose = 0;

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

static void vlog(const char *fmt, va_list ap) {
    fputs("sdvk: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void sd_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void sd_log_verbose(const char *fmt, ...) {
    if (!sd_verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}
