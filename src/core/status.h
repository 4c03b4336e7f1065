/* Internal error reporting: functions return sdvk_status and record a
 * message in a thread-local buffer that sdvk_last_error() returns. */
#ifndef SD_STATUS_H
#define SD_STATUS_H

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

/* Logging to stderr; sd_log_verbose only prints when verbosity is on. */
extern int sd_verbose;
void sd_log(const char *fmt, ...) SD_PRINTF(1, 2);
void sd_log_verbose(const char *fmt, ...) SD_PRINTF(1, 2);

#define SD_TRY(expr)                      \
    do {                                  \
        sdvk_status sd_try_s_ = (expr);   \
        if (sd_try_s_ != SDVK_OK)         \
            return sd_try_s_;             \
    } while (0)

#endif
