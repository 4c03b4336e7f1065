/* 8-bit weights: quantisation and dequantisation (format in q8.h). */
#include "q8.h"

#include <math.h>
#include <string.h>

#include "status.h"

int sd_q8_eligible(int ndim, const int64_t *ne) {
    if (ndim != 2 && ndim != 4)
        return 0;
    for (int d = 0; d < ndim; d++)
        if (ne[d] <= 0)
            return 0;
    return ne[1] % SD_Q8_BLOCK == 0;
}

int sd_q8_wanted(const char *name, int ndim, const int64_t *ne) {
    size_t n = name ? strlen(name) : 0;
    if (n < 7 || strcmp(name + n - 7, ".weight") || strstr(name, "embedding"))
        return 0;
    return sd_q8_eligible(ndim, ne);
}

void sd_q8_scale_shape(int ndim, const int64_t *ne, int64_t *out) {
    for (int d = 0; d < ndim; d++) out[d] = ne[d];
    if (ndim >= 2)
        out[1] = ne[1] / SD_Q8_BLOCK;
}

int64_t sd_q8_nscales(int ndim, const int64_t *ne) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= ne[d];
    return n / SD_Q8_BLOCK;
}

void sd_q8_quantize_block(const float *x, int64_t stride, int8_t *q, uint16_t *scale) {
    float amax = 0.0f;
    for (int i = 0; i < SD_Q8_BLOCK; i++) {
        float a = fabsf(x[i * stride]);
        amax = a > amax ? a : amax; /* NaN never wins: it is not > */
    }
    /* The scale is rounded to fp16 first and q computed from the rounded
     * value, so d * q is what the weight really is; 65504 caps absurd
     * magnitudes instead of making the scale inf. */
    float d = amax / 127.0f;
    if (d > 65504.0f)
        d = 65504.0f;
    uint16_t h = sd_f32_to_f16(d);
    float dr = sd_f16_to_f32(h);
    *scale = h;
    float inv_ok = dr > 0.0f ? 1.0f : 0.0f, div = dr > 0.0f ? dr : 1.0f;
    for (int i = 0; i < SD_Q8_BLOCK; i++) {
        float v = x[i * stride] / div * inv_ok;
        v = v == v ? v : 0.0f; /* NaN weights read as 0 */
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        /* round to nearest, ties to even: adding and removing 1.5 * 2^23
         * leaves the nearest integer (IEEE single, |v| < 2^22) */
        v = (v + 12582912.0f) - 12582912.0f;
        q[i * stride] = (int8_t)(int)v;
    }
}

void sd_q8_quantize_row(const float *x, int64_t n, int8_t *q, uint16_t *scales) {
    for (int64_t b = 0; b < n / SD_Q8_BLOCK; b++)
        sd_q8_quantize_block(x + b * SD_Q8_BLOCK, 1, q + b * SD_Q8_BLOCK, &scales[b]);
}

/* Geometry shared by both directions: rows of ne1 * inner elements, inner =
 * ne2 * ne3 (1 for a Linear); element (o, c, s) at (o * ne1 + c) * inner + s
 * with scale (o * (ne1 / 32) + c / 32) * inner + s. */
static void geom(int ndim, const int64_t *ne, int64_t *rows, int64_t *ch, int64_t *inner) {
    *rows = ne[0];
    *ch = ne[1];
    *inner = 1;
    for (int d = 2; d < ndim; d++) *inner *= ne[d];
}

sdvk_status sd_q8_quantize_tensor(const void *src, sd_dtype dt, int ndim, const int64_t *ne, int8_t *q,
                                  uint16_t *scales, const char *name) {
    if (!sd_q8_eligible(ndim, ne))
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "q8: %s cannot be quantised: needs a 2-D or 4-D weight whose dim 1 is a "
                      "multiple of %d",
                      name ? name : "tensor", SD_Q8_BLOCK);
    if (dt != SD_F32 && dt != SD_F16 && dt != SD_BF16)
        return sd_err(SDVK_ERR_INVALID_ARG, "q8: %s has dtype %s (F32, F16 or BF16 needed)",
                      name ? name : "tensor", sd_dtype_name(dt));
    int64_t rows, ch, inner;
    geom(ndim, ne, &rows, &ch, &inner);
    float x[SD_Q8_BLOCK];
    int8_t qb[SD_Q8_BLOCK];
    for (int64_t o = 0; o < rows; o++)
        for (int64_t cb = 0; cb < ch / SD_Q8_BLOCK; cb++)
            for (int64_t s = 0; s < inner; s++) {
                size_t base = (size_t)((o * ch + cb * SD_Q8_BLOCK) * inner + s);
                for (int i = 0; i < SD_Q8_BLOCK; i++) {
                    size_t e = base + (size_t)i * (size_t)inner;
                    sd_to_f32(&x[i], (const unsigned char *)src + e * sd_dtype_size(dt), dt, 1);
                }
                sd_q8_quantize_block(x, 1, qb, &scales[(o * (ch / SD_Q8_BLOCK) + cb) * inner + s]);
                for (int i = 0; i < SD_Q8_BLOCK; i++) q[base + (size_t)i * (size_t)inner] = qb[i];
            }
    return SDVK_OK;
}

void sd_q8_dequantize(const int8_t *q, const uint16_t *scales, int ndim, const int64_t *ne, float *dst) {
    int64_t rows, ch, inner;
    geom(ndim, ne, &rows, &ch, &inner);
    for (int64_t o = 0; o < rows; o++)
        for (int64_t c = 0; c < ch; c++) {
            const uint16_t *sr = scales + (o * (ch / SD_Q8_BLOCK) + c / SD_Q8_BLOCK) * inner;
            size_t base = (size_t)((o * ch + c) * inner);
            for (int64_t s = 0; s < inner; s++) {
                uint16_t h;
                memcpy(&h, sr + s, 2); /* stored scales need not be aligned */
                dst[base + (size_t)s] = sd_f16_to_f32(h) * (float)q[base + (size_t)s];
            }
        }
}
