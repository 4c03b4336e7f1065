/* Shared helpers of the fuzz targets (tests/fuzz/README.md). */
#ifndef SD_FUZZ_COMMON_H
#define SD_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

/* An invariant of a successful result: a violation is a bug, reported as a
 * crash (libFuzzer saves the input; the replay test fails). */
#define FUZZ_CHECK(c)                                                                     \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* A failing call must leave a message. */
#define FUZZ_CHECK_MSG()                                                     \
    do {                                                                     \
        const char *m_ = sdvk_last_error();                                  \
        FUZZ_CHECK(m_ && m_[0]);                                             \
    } while (0)

#endif
