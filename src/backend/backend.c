/* Backend choice: --backend auto tries Vulkan and falls back to the CPU,
 * saying why on stderr; an explicit choice fails loudly instead. */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

#include "../core/status.h"

sdvk_status sd_backend_create(sdvk_backend_kind kind, const sdvk_options *opt, sd_backend **out) {
    *out = NULL;
    const int threads = opt ? opt->n_threads : 0;
    /* --precision bf16 (3) is the CPU's AVX-512 BF16 GEMM path (for --backend
     * cpu and auto); without that ISA it is refused, never silently f32. */
    if (opt && opt->precision == 3 && kind != SDVK_BACKEND_VULKAN) {
        sdvk_status s = sd_backend_cpu_create(threads, "avx512bf16", out);
        if (s)
            sd_err_prefix(s, "--precision bf16 needs a CPU with AVX-512 BF16");
        return s;
    }
    if (kind == SDVK_BACKEND_CPU)
        return sd_backend_cpu_create(threads, NULL, out);
    sd_vulkan_opts vo = {opt ? opt->device_index : -1, opt ? opt->precision : 0, 0,
                         opt ? opt->verbose : 0};
    const char *val = getenv("SDVK_VALIDATION");
    vo.validation = val && *val && *val != '0';
    sdvk_status s = sd_backend_vulkan_create(&vo, out);
    if (s == SDVK_OK && kind == SDVK_BACKEND_AUTO && (*out)->host_cpu) {
        sd_log("the only Vulkan device is %s, a software renderer on this CPU; using the native "
               "CPU backend instead (faster; --backend vulkan forces Vulkan)",
               (*out)->name + (strncmp((*out)->name, "vulkan: ", 8) ? 0 : 8));
        sd_backend_destroy(*out);
        *out = NULL;
        return sd_backend_cpu_create(threads, NULL, out);
    }
    if (s == SDVK_OK || kind == SDVK_BACKEND_VULKAN) {
        if (s)
            sd_err_prefix(s, "--backend vulkan");
        return s;
    }
    sd_log("Vulkan is not available (%s); running on the CPU", sdvk_last_error());
    return sd_backend_cpu_create(threads, NULL, out);
}
