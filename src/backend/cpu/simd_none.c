/* Fallback when no SIMD kernels are linked: src/backend/cpu/simd/ provides
 * a strong sd_cpu_simd_select that replaces this weak one. */
#include <string.h>

#include "../../core/status.h"
#include "cpu.h"

int sd_cpu_simd_select(const char *isa, sd_cpu_kernels *k) __attribute__((weak));

int sd_cpu_simd_select(const char *isa, sd_cpu_kernels *k) {
    (void)k;
    if (!isa || !strcmp(isa, "auto") || !strcmp(isa, "ref"))
        return SDVK_OK; /* reference kernels stay in place */
    return sd_err(SDVK_ERR_UNSUPPORTED,
                  "cpu: ISA '%s' is not available (this build has no SIMD kernels; use ref)", isa);
}
