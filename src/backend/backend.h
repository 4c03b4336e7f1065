/* The backend interface: a table of function pointers that the CPU
 * (reference and SIMD) and Vulkan backends implement.
 *
 * Life of a graph on a backend:
 *   prepare(graph)   once: convert/upload weights, allocate the planned
 *                    arena, compile pipelines / record command buffers
 *   write(tensor)    host -> an INPUT tensor (float32 or int32, the tensor's
 *                    logical channels-last layout, whole tensor)
 *   run(first, n)    execute the graph n times, with step index first,
 *                    first+1, ... (read by STEP_SELECT); the graph's own
 *                    COPY nodes carry state from one step to the next
 *   read(tensor)     an OUTPUT or INPUT tensor -> host (float32/int32)
 *   release          frees what prepare made
 * A backend may prepare several graphs at once (CLIP, UNet step, VAE).
 * The graph must outlive its prepared handle and must not change after
 * prepare. */
#ifndef SD_BACKEND_H
#define SD_BACKEND_H

#include <stdio.h>

#include "../core/graph.h"

typedef struct sd_backend sd_backend;
typedef struct sd_bgraph sd_bgraph; /* a graph prepared on one backend */

/* Called after each completed step, once per step, in order; return non-zero
 * to stop (the run then returns SDVK_ERR_CANCELLED and calls it no more).
 * The Vulkan backend queues all n steps in one submit and reports each as
 * the device finishes it, so a stop takes effect only once the queued steps
 * are done. */
typedef int (*sd_step_cb)(void *user, int step);

typedef struct sd_backend_vtbl {
    sdvk_status (*prepare)(sd_backend *b, const sd_graph *g, sd_bgraph **out);
    void (*release)(sd_backend *b, sd_bgraph *bg);
    sdvk_status (*write)(sd_backend *b, sd_bgraph *bg, int tensor, const void *src, size_t nbytes);
    sdvk_status (*read)(sd_backend *b, sd_bgraph *bg, int tensor, void *dst, size_t nbytes);
    sdvk_status (*run)(sd_backend *b, sd_bgraph *bg, int first_step, int n_steps, sd_step_cb cb,
                       void *user);
    void (*destroy)(sd_backend *b);
} sd_backend_vtbl;

struct sd_backend {
    const sd_backend_vtbl *v;
    char name[160]; /* e.g. "cpu (avx512)", "vulkan: NVIDIA H100 (f16)" */
    /* 1 when the device computes on the host CPU (a software Vulkan driver
     * such as llvmpipe): --backend auto then prefers the native CPU backend,
     * which is much faster there. */
    int host_cpu;
};

/* CPU backend. isa: NULL/"auto" = best the CPU supports (SDVK_CPU_ISA env
 * var overrides), "ref" = plain-C reference kernels only (the oracle).
 * n_threads 0 = physical cores. */
sdvk_status sd_backend_cpu_create(int n_threads, const char *isa, sd_backend **out);

/* Vulkan backend (src/backend/vulkan). Returns SDVK_ERR_UNSUPPORTED with a
 * message when no loader/driver/device is usable. */
typedef struct sd_vulkan_opts {
    int device_index; /* -1 = best (discrete > integrated > cpu) */
    int precision;    /* 0 auto, 1 f32, 2 f16 */
    int validation;   /* 1: enable the Khronos validation layer; errors fail */
    int verbose;
} sd_vulkan_opts;
sdvk_status sd_backend_vulkan_create(const sd_vulkan_opts *o, sd_backend **out);
/* Prints the usable Vulkan devices (index, name, type, driver, API version,
 * memory, fp16 / int8 / cooperative-matrix support) for `--list-devices`. */
sdvk_status sd_vulkan_list_devices(FILE *f);

/* kind AUTO tries Vulkan and falls back to the CPU, saying so on stderr. */
sdvk_status sd_backend_create(sdvk_backend_kind kind, const sdvk_options *opt, sd_backend **out);

static inline void sd_backend_destroy(sd_backend *b) {
    if (b)
        b->v->destroy(b);
}

#endif
