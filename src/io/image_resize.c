/* Image resampling: separable Lanczos-3 with the arithmetic of PIL's
 * Image.resize(size, Image.LANCZOS), which A1111 uses for init images and
 * masks, so the same input gives the same pixels (see
 * tests/test_image_limits.c: bit-identical on its goldens).
 *
 * Per axis and per output index o: the filter is centred on the input
 * coordinate (o + 0.5) * in/out; when shrinking it is widened by the scale
 * (support 3 * in/out input pixels: an area-weighted average, no aliasing),
 * when enlarging it is the plain 3-lobe kernel. Taps outside the image are
 * dropped and the rest renormalised (edge pixels are not replicated). The
 * weights are rounded to 22-bit fixed point; the horizontal pass runs first
 * and its result is rounded and clamped to 8 bits, then the vertical pass.
 * Any size 1..SD_IMAGE_MAX_SIDE in and out; no assertions: every count is
 * derived so it cannot leave the image. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"
#include "image.h"

/* 32-bit accumulators in PIL: 8 bits of pixel, 2 of headroom for the
 * negative lobes. We accumulate in 64 bits; the sums are the same. */
#define RS_BITS 22

typedef struct rs_axis {
    int ksize;     /* stride of w */
    int *first;    /* first input index of each output */
    int *count;    /* number of taps of each output (>= 1) */
    int32_t *w;    /* n_out * ksize fixed-point weights */
} rs_axis;

static double rs_sinc(double x) {
    if (x == 0.0)
        return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double rs_lanczos3(double x) {
    return (x >= -3.0 && x < 3.0) ? rs_sinc(x) * rs_sinc(x / 3.0) : 0.0;
}

static void rs_axis_free(rs_axis *a) {
    free(a->first);
    free(a->count);
    free(a->w);
    memset(a, 0, sizeof *a);
}

static int rs_axis_init(rs_axis *a, int n_in, int n_out) {
    memset(a, 0, sizeof *a);
    double scale = (double)n_in / n_out;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 3.0 * fscale, inv = 1.0 / fscale;
    /* 2 * support + 1 bounds the taps; sizes <= 16384 keep n_out * ksize
     * below 7 * 16384 * 2 entries. */
    int ksize = (int)ceil(support) * 2 + 1;
    a->ksize = ksize;
    a->first = malloc((size_t)n_out * sizeof *a->first);
    a->count = malloc((size_t)n_out * sizeof *a->count);
    a->w = calloc((size_t)n_out * (size_t)ksize, sizeof *a->w);
    double *k = malloc((size_t)ksize * sizeof *k);
    if (!a->first || !a->count || !a->w || !k) {
        free(k);
        rs_axis_free(a);
        return -1;
    }
    for (int o = 0; o < n_out; o++) {
        double center = (o + 0.5) * scale;
        /* (int) truncates: a negative start is clamped to 0 either way. */
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > n_in)
            hi = n_in;
        if (hi - lo > ksize)
            hi = lo + ksize; /* cannot happen (see ksize); keeps the writes inside */
        if (hi <= lo) {
            /* Cannot happen either (the window always holds the centre
             * pixel); fall back to the nearest input pixel. */
            lo = (int)center < n_in ? (int)center : n_in - 1;
            hi = lo + 1;
        }
        int cnt = hi - lo;
        double sum = 0.0;
        for (int t = 0; t < cnt; t++) {
            k[t] = rs_lanczos3(((double)(lo + t) - center + 0.5) * inv);
            sum += k[t];
        }
        int32_t *w = a->w + (size_t)o * (size_t)ksize;
        for (int t = 0; t < cnt; t++) {
            double v = (sum != 0.0 ? k[t] / sum : k[t]) * (double)(1 << RS_BITS);
            w[t] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
        }
        a->first[o] = lo;
        a->count[o] = cnt;
    }
    free(k);
    return 0;
}

static inline uint8_t rs_clip(int64_t acc) {
    if (acc < 0)
        return 0;
    acc >>= RS_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

/* Rows [y0, y1) of src (sw wide) -> dst (dw wide, y1 - y0 rows). */
static void rs_horizontal(const uint8_t *src, int sw, int y0, int y1, int c, const rs_axis *a,
                          uint8_t *dst, int dw) {
    for (int y = y0; y < y1; y++) {
        const uint8_t *s = src + (size_t)y * (size_t)sw * (size_t)c;
        uint8_t *d = dst + (size_t)(y - y0) * (size_t)dw * (size_t)c;
        for (int x = 0; x < dw; x++) {
            const int32_t *w = a->w + (size_t)x * (size_t)a->ksize;
            const uint8_t *p = s + (size_t)a->first[x] * (size_t)c;
            int cnt = a->count[x];
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = (int64_t)1 << (RS_BITS - 1);
                for (int t = 0; t < cnt; t++) acc += (int64_t)p[(size_t)t * (size_t)c + (size_t)ch] * w[t];
                d[(size_t)x * (size_t)c + (size_t)ch] = rs_clip(acc);
            }
        }
    }
}

/* src rows (row_len bytes each; row r of src is input row r + y_base) ->
 * dh output rows. */
static void rs_vertical(const uint8_t *src, size_t row_len, int y_base, const rs_axis *a,
                        uint8_t *dst, int dh, int64_t *acc) {
    for (int y = 0; y < dh; y++) {
        const int32_t *w = a->w + (size_t)y * (size_t)a->ksize;
        for (size_t i = 0; i < row_len; i++) acc[i] = (int64_t)1 << (RS_BITS - 1);
        for (int t = 0; t < a->count[y]; t++) {
            const uint8_t *s = src + (size_t)(a->first[y] + t - y_base) * row_len;
            int64_t wt = w[t];
            for (size_t i = 0; i < row_len; i++) acc[i] += (int64_t)s[i] * wt;
        }
        uint8_t *d = dst + (size_t)y * row_len;
        for (size_t i = 0; i < row_len; i++) d[i] = rs_clip(acc[i]);
    }
}

sdvk_status sd_image_resize(const sdvk_image *in, int w, int h, sdvk_image *out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_image_resize: out is NULL");
    memset(out, 0, sizeof *out);
    if (!in || !in->data)
        return sd_err(SDVK_ERR_INVALID_ARG, "resize: no image data");
    if (in->width < 1 || in->height < 1 || in->width > SD_IMAGE_MAX_SIDE ||
        in->height > SD_IMAGE_MAX_SIDE)
        return sd_err(SDVK_ERR_INVALID_ARG, "resize: bad image size %dx%d (1..%d per side)",
                      in->width, in->height, SD_IMAGE_MAX_SIDE);
    const int c = in->channels;
    if (c != 1 && c != 3 && c != 4)
        return sd_err(SDVK_ERR_INVALID_ARG, "resize: image has %d channels (1, 3 or 4)", c);
    if (w < 1 || h < 1 || w > SD_IMAGE_MAX_SIDE || h > SD_IMAGE_MAX_SIDE)
        return sd_err(SDVK_ERR_INVALID_ARG, "resize: bad target size %dx%d (1..%d per side)", w, h,
                      SD_IMAGE_MAX_SIDE);
    const int iw = in->width, ih = in->height;
    uint8_t *px = malloc((size_t)w * (size_t)h * (size_t)c);
    if (!px)
        return sd_err(SDVK_ERR_OOM, "resize: out of memory for %dx%d", w, h);
    if (w == iw && h == ih) {
        memcpy(px, in->data, (size_t)w * (size_t)h * (size_t)c);
    } else {
        rs_axis ax = {0}, ay = {0};
        uint8_t *tmp = NULL;
        int64_t *acc = NULL;
        int bad = 0;
        if (w != iw)
            bad |= rs_axis_init(&ax, iw, w);
        if (h != ih)
            bad |= rs_axis_init(&ay, ih, h);
        /* Rows the vertical pass reads: the horizontal pass needs no more. */
        int y0 = 0, y1 = ih;
        if (!bad && h != ih) {
            y0 = ay.first[0];
            y1 = ay.first[h - 1] + ay.count[h - 1];
        }
        if (!bad && w != iw && h != ih)
            bad |= !(tmp = malloc((size_t)w * (size_t)(y1 - y0) * (size_t)c));
        if (!bad && h != ih)
            bad |= !(acc = malloc((size_t)w * (size_t)c * sizeof *acc));
        if (!bad) {
            if (w != iw && h != ih) {
                rs_horizontal(in->data, iw, y0, y1, c, &ax, tmp, w);
                rs_vertical(tmp, (size_t)w * (size_t)c, y0, &ay, px, h, acc);
            } else if (w != iw) {
                rs_horizontal(in->data, iw, 0, ih, c, &ax, px, w);
            } else {
                rs_vertical(in->data, (size_t)w * (size_t)c, 0, &ay, px, h, acc);
            }
        }
        free(tmp);
        free(acc);
        rs_axis_free(&ax);
        rs_axis_free(&ay);
        if (bad) {
            free(px);
            return sd_err(SDVK_ERR_OOM, "resize: %dx%d -> %dx%d: out of memory", iw, ih, w, h);
        }
    }
    out->width = w;
    out->height = h;
    out->channels = c;
    out->data = px;
    return SDVK_OK;
}
