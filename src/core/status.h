/* Internal error reporting: functions return sdvk_status and record a
 * message in a thread-local buffer that sdvk_last_error() returns. */
#ifndef SD_STATUS_H
#define SD_STATUS_H

#include <stdarg.h>

#include "sdvk.h"

#if defined(__GNUC__)
#define SD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SD_PRINTF(a, b)
#endif

/* Records the message (printf style) and returns s, so callers can write
 * `return sd_err(SDVK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));` */
sdvk_status sd_err(sdvk_status s, const char *fmt, ...) SD_PRINTF(2, 3);
/* Prefixes the current message with "<prefix>: " (adds context on the way up). */
sdvk_status sd_err_prefix(sdvk_status s, const char *fmt, ...) SD_PRINTF(2, 3);
void sd_err_clear(void);

/* Logging: to the calling thread's sink (the context's log callback, set
 * on every API entry), else to stderr. sd_log is a warning (always shown),
 * sd_log_verbose an INFO line shown with verbose >= 1. */
extern _Thread_local int sd_verbose;
void sd_log_set_sink(sdvk_log_fn fn, void *user, int verbose);
void sd_logl(sdvk_log_level level, const char *fmt, ...) SD_PRINTF(2, 3);
void sd_logv(sdvk_log_level level, const char *fmt, va_list ap);
void sd_log(const char *fmt, ...) SD_PRINTF(1, 2);
void sd_log_verbose(const char *fmt, ...) SD_PRINTF(1, 2);

/* Monotonic seconds, for the timings that logs and profiles print. */
double sd_now_s(void);

#define SD_TRY(expr)                      \
    do {                                  \
        sdvk_status sd_try_s_ = (expr);   \
        if (sd_try_s_ != SDVK_OK)         \
            return sd_try_s_;             \
    } while (0)

#endif
