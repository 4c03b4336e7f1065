/* Strict base64 (RFC 4648, section 4: the standard alphabet with '='
 * padding). Uploaded images arrive base64-encoded inside JSON; a decoder
 * that skips junk (as Python's b64decode does by default) turns a damaged
 * upload into a silently different image, so anything but canonical base64
 * is refused with the offset of the first bad character. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63, or -1 for anything outside the alphabet ('=' included). */
static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static void bad_char(char *err, size_t errn, unsigned char c, size_t at) {
    if (c >= 0x21 && c < 0x7f)
        snprintf(err, errn, "invalid base64: character '%c' at offset %zu", c, at);
    else
        snprintf(err, errn, "invalid base64: byte 0x%02x at offset %zu", c, at);
}

int sv_b64_decode(const char *in, size_t n, size_t max_out, uint8_t **out, size_t *out_n,
                  char *err, size_t errn) {
    *out = NULL;
    *out_n = 0;
    if (n == 0) {
        snprintf(err, errn, "invalid base64: empty");
        return -1;
    }
    if (n % 4 != 0) {
        snprintf(err, errn, "invalid base64: length %zu is not a multiple of 4 (truncated, or "
                            "missing '=' padding)", n);
        return -1;
    }
    size_t pad = 0;
    if (in[n - 1] == '=')
        pad = in[n - 2] == '=' ? 2 : 1;
    size_t len = n / 4 * 3 - pad;
    if (len > max_out) {
        snprintf(err, errn, "decoded data of %zu bytes is over the limit of %zu bytes", len,
                 max_out);
        return -1;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        snprintf(err, errn, "out of memory decoding base64");
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int v[4];
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + (size_t)k];
            /* '=' only as the last one or two characters of the input */
            if (c == '=' && last && (size_t)k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value(c);
            if (v[k] < 0) {
                bad_char(err, errn, c, i + (size_t)k);
                free(buf);
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        if (last && pad) {
            /* canonical form: the bits below the last byte are zero */
            uint32_t unused = pad == 2 ? (w & 0xffffu) : (w & 0xffu);
            if (unused) {
                snprintf(err, errn, "invalid base64: non-zero padding bits at offset %zu",
                         i + 3 - pad);
                free(buf);
                return -1;
            }
        }
        uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        size_t take = last ? 3 - pad : 3;
        memcpy(buf + o, b, take);
        o += take;
    }
    *out = buf;
    *out_n = o;
    return 0;
}

char *sv_b64_encode(const uint8_t *in, size_t n, size_t *out_n) {
    size_t m = (n + 2) / 3 * 4;
    char *s = malloc(m + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            w |= in[i + 2];
        s[o++] = b64_alphabet[(w >> 18) & 63];
        s[o++] = b64_alphabet[(w >> 12) & 63];
        s[o++] = i + 1 < n ? b64_alphabet[(w >> 6) & 63] : '=';
        s[o++] = i + 2 < n ? b64_alphabet[w & 63] : '=';
    }
    s[o] = '\0';
    if (out_n)
        *out_n = o;
    return s;
}
