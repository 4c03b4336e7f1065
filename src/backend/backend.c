/* Backend choice: auto tries Vulkan and falls back to the CPU (saying why
 * in the verbose log); an explicit choice fails loudly instead. */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

#include "../core/status.h"

sdvk_status sd_backend_create(sdvk_backend_kind kind, const sdvk_options *opt, sd_backend **out) {
    *out = NULL;
    /* no defaults filled in here: the NEON job links this file without the
     * public API layer, so callers pass their sdvk_options */
    if (!opt)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_backend_create needs options");
    const int threads = opt->n_threads;
    if ((unsigned)opt->precision > SDVK_PRECISION_BF16)
        return sd_err(SDVK_ERR_INVALID_ARG, "unknown precision %d", (int)opt->precision);
    /* bf16 is the CPU's AVX-512 BF16 GEMM path (for the CPU and auto); without
     * that ISA it is refused, never silently f32. */
    if (opt->precision == SDVK_PRECISION_BF16) {
        if (kind == SDVK_BACKEND_VULKAN)
            return sd_err(SDVK_ERR_INVALID_ARG, "precision bf16 is a CPU precision (AVX-512 BF16 "
                          "GEMM); the Vulkan backend computes in f32 or f16");
        sdvk_status s = sd_backend_cpu_create_ex(threads, "avx512bf16", opt->weights, out);
        if (s)
            sd_err_prefix(s, "precision bf16 needs a CPU with AVX-512 BF16");
        return s;
    }
    if (kind == SDVK_BACKEND_CPU)
        return sd_backend_cpu_create_ex(threads, opt->cpu_isa, opt->weights, out);
    if (kind == SDVK_BACKEND_AUTO && opt->device_index < 0) {
        /* a software renderer on this CPU (lavapipe) is much slower than
         * the native CPU backend: auto takes Vulkan for real GPUs only, and
         * finds that out without creating a device */
        char sw[256];
        int hw = sd_vulkan_hw_devices(sw, sizeof sw);
        if (hw <= 0) {
            if (hw == 0 && sw[0])
                sd_log_verbose("the only Vulkan device is %s, a software renderer on this CPU; "
                               "using the native CPU backend instead (faster; choose the Vulkan "
                               "backend to force it)", sw);
            else
                sd_log_verbose("no Vulkan GPU found; running on the CPU");
            return sd_backend_cpu_create_ex(threads, opt->cpu_isa, opt->weights, out);
        }
    }
    if (opt->weights == SDVK_WEIGHTS_Q8)
        sd_log_verbose("8-bit weights are a CPU option; a Vulkan device keeps its own precision "
                       "(8-bit files are dequantised when uploaded)");
    sd_vulkan_opts vo = {opt->device_index, (int)opt->precision, opt->validation, opt->verbose};
    sdvk_status s = sd_backend_vulkan_create(&vo, out);
    if (s == SDVK_OK && kind == SDVK_BACKEND_AUTO && (*out)->host_cpu) {
        sd_log_verbose("Vulkan device %s is a software renderer on this CPU; using the native CPU "
                       "backend instead", (*out)->name + (strncmp((*out)->name, "vulkan: ", 8) ? 0 : 8));
        sd_backend_destroy(*out);
        *out = NULL;
        return sd_backend_cpu_create_ex(threads, opt->cpu_isa, opt->weights, out);
    }
    if (s == SDVK_OK || kind == SDVK_BACKEND_VULKAN) {
        if (s)
            sd_err_prefix(s, "Vulkan backend");
        return s;
    }
    sd_log_verbose("Vulkan is not available (%s); running on the CPU", sdvk_last_error());
    return sd_backend_cpu_create_ex(threads, opt->cpu_isa, opt->weights, out);
}

sdvk_status sd_backend_check_graph(sd_backend *b, const sd_graph *g) {
    for (int k = 0; k < g->nn; k++) {
        char why[256] = "";
        if ((unsigned)g->n[k].op >= SD_OP_COUNT)
            return sd_err(SDVK_ERR_UNSUPPORTED, "%s: node %d has no valid op (%d)", b->name, k,
                          (int)g->n[k].op);
        if (!b->v->supports(b, g, k, why, sizeof why))
            return sd_err(SDVK_ERR_UNSUPPORTED, "%s: node %d (%s): %s", b->name, k,
                          sd_op_name(g->n[k].op), why[0] ? why : "not supported");
    }
    return SDVK_OK;
}
