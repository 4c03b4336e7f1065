#include "tensor.h"

#include <math.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

void sd_host_pageout(const void *p, size_t n) {
#ifdef MADV_PAGEOUT
    long ps = sysconf(_SC_PAGESIZE);
    if (!p || ps <= 0)
        return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~((uintptr_t)ps - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_PAGEOUT);
#else
    (void)p;
    (void)n;
#endif
}

void *sd_scratch_alloc(size_t n) {
    if (!n)
        return NULL;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void sd_scratch_free(void *p, size_t n) {
    if (p)
        munmap(p, n);
}

const char *sd_dtype_name(sd_dtype t) {
    switch (t) {
    case SD_F32: return "F32";
    case SD_F16: return "F16";
    case SD_BF16: return "BF16";
    case SD_I32: return "I32";
    case SD_Q8: return "Q8";
    }
    return "?";
}

/* Checkpoint data need not be aligned (safetensors does not promise it),
 * so elements are read with memcpy, which compilers turn into plain loads. */
void sd_to_f32(float *dst, const void *src, sd_dtype t, size_t n) {
    const unsigned char *b = (const unsigned char *)src;
    uint16_t h;
    int32_t v;
    switch (t) {
    case SD_F32: memcpy(dst, src, n * 4); break;
    case SD_F16:
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, b + 2 * i, 2);
            dst[i] = sd_f16_to_f32(h);
        }
        break;
    case SD_BF16:
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, b + 2 * i, 2);
            dst[i] = sd_bf16_to_f32(h);
        }
        break;
    case SD_I32:
        for (size_t i = 0; i < n; i++) {
            memcpy(&v, b + 4 * i, 4);
            dst[i] = (float)v;
        }
        break;
    case SD_Q8: /* needs the scales: a caller bug, made loud */
        for (size_t i = 0; i < n; i++) dst[i] = NAN;
        break;
    }
}
