/* Element types and scalar conversions shared by every layer. */
#ifndef SD_TENSOR_H
#define SD_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* SD_Q8: 8-bit weights (src/core/q8.h): int8 values in the tensor's own
 * layout plus fp16 scales held apart (sd_tensor.scale); size 1 counts the
 * int8 values only. Weights only, never activations. */
typedef enum sd_dtype { SD_F32 = 0, SD_F16 = 1, SD_BF16 = 2, SD_I32 = 3, SD_Q8 = 4 } sd_dtype;

static inline size_t sd_dtype_size(sd_dtype t) {
    return t == SD_Q8 ? 1 : t == SD_F16 || t == SD_BF16 ? 2 : 4;
}
const char *sd_dtype_name(sd_dtype t);

/* IEEE half <-> float, exact for normals, subnormals, inf and NaN;
 * float -> half rounds to nearest even. */
static inline float sd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: value = man * 2^-24, renormalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t sd_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf / nan */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (ax < 0x33000000u)
            return (uint16_t)sign;
        /* value = m * 2^(e-150); the half subnormal unit is 2^-24 */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t q = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1)))
        q++;
    return (uint16_t)(sign | q);
}

static inline float sd_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t sd_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* Hints the kernel to evict the pages wholly inside [p, p+n) (Linux
 * MADV_PAGEOUT). Contents are kept: clean file pages (an mmapped
 * checkpoint) are simply re-read if touched again. Backends call it on raw
 * weights they have copied into their own layout, so a model is not
 * resident twice. A no-op where unsupported. */
void sd_host_pageout(const void *p, size_t n);

/* Scratch memory that a kernel takes and gives back within one call
 * (e.g. the Winograd conv's transformed tiles): page-aligned, mapped
 * straight from the OS and unmapped by sd_scratch_free, so it never stays
 * resident in the allocator's heap or moves malloc's mmap threshold. NULL
 * when out of memory. */
void *sd_scratch_alloc(size_t n);
void sd_scratch_free(void *p, size_t n);

/* Converts n elements of type t at src to float. SD_Q8 needs its scales
 * and shape: use sd_weight_to_f32 (graph.h) or sd_q8_dequantize. */
void sd_to_f32(float *dst, const void *src, sd_dtype t, size_t n);

#endif
