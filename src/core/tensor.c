#include "tensor.h"

const char *sd_dtype_name(sd_dtype t) {
    switch (t) {
    case SD_F32: return "F32";
    case SD_F16: return "F16";
    case SD_BF16: return "BF16";
    case SD_I32: return "I32";
    }
    return "?";
}

void sd_to_f32(float *dst, const void *src, sd_dtype t, size_t n) {
    const uint16_t *h = (const uint16_t *)src;
    switch (t) {
    case SD_F32: memcpy(dst, src, n * 4); break;
    case SD_F16:
        for (size_t i = 0; i < n; i++) dst[i] = sd_f16_to_f32(h[i]);
        break;
    case SD_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = sd_bf16_to_f32(h[i]);
        break;
    case SD_I32: {
        const int32_t *v = (const int32_t *)src;
        for (size_t i = 0; i < n; i++) dst[i] = (float)v[i];
    } break;
    }
}
