/* Fuzz target: the server's strict base64 decoder (tools/server/base64.c),
 * which takes uploaded images from untrusted JSON. The input is the text.
 * Invariants: a decoded result re-encodes to exactly the input (the decoder
 * accepts canonical base64 only); a refusal leaves a message and no
 * buffer; any bytes survive encode + decode unchanged. Build: link
 * sdvk_server_core (tools/server/server.cmake), include tools/server. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define B64_CHECK(c)                                                                      \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *out = NULL;
    size_t n = 0;
    char err[200] = "";
    /* a limit below the input's decoded size must refuse, not truncate */
    size_t limit = size > 64 ? size / 2 : 1u << 20;
    if (sv_b64_decode((const char *)data, size, limit, &out, &n, err, sizeof err) == 0) {
        B64_CHECK(out != NULL && n <= limit && n <= size);
        size_t m = 0;
        char *again = sv_b64_encode(out, n, &m);
        B64_CHECK(again && m == size && memcmp(again, data, size) == 0);
        free(again);
        free(out);
    } else {
        B64_CHECK(out == NULL && n == 0 && err[0]);
    }
    /* the input as bytes: encode, decode, compare */
    size_t m = 0;
    char *enc = sv_b64_encode(data, size, &m);
    B64_CHECK(enc && m == (size + 2) / 3 * 4 && strlen(enc) == m);
    if (size > 0) {
        B64_CHECK(sv_b64_decode(enc, m, size, &out, &n, err, sizeof err) == 0);
        B64_CHECK(n == size && memcmp(out, data, size) == 0);
        free(out);
    }
    free(enc);
    return 0;
}
