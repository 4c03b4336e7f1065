/* The backend interface: a table of function pointers that the CPU
 * (reference and SIMD) and Vulkan backends implement.
 *
 * Weights belong to a network, not to a graph: a weight set (sd_bweights)
 * holds a network's weights in the backend's own form (packed SIMD panels,
 * f32 copies, device-local buffers), made the first time a graph needs them
 * and shared by every later graph of that network (another size, batch,
 * step count or sampler), so they are converted/uploaded exactly once.
 *
 * Life of a graph on a backend:
 *   prepare(graph, w) once: look every weight up in w (converting/uploading
 *                    the ones it lacks into w), allocate the planned arena,
 *                    compile pipelines / record command buffers
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

#include <stdatomic.h>
#include <stdio.h>

#include "../core/graph.h"

typedef struct sd_backend sd_backend;
typedef struct sd_bgraph sd_bgraph;     /* a graph prepared on one backend */
typedef struct sd_bweights sd_bweights; /* a weight set resident on one backend */

/* What a weight set holds; `prepared` counts conversions/uploads of single
 * weights (tests assert it stops growing after the first graph). */
typedef struct sd_weight_stats {
    long prepared;   /* weights converted or uploaded into the set so far */
    long entries;    /* weights resident now */
    size_t bytes;    /* bytes they occupy (host or device) */
} sd_weight_stats;

/* Called after each completed step, once per step, in order; return non-zero
 * to stop (the run then returns SDVK_ERR_CANCELLED and calls it no more).
 * The Vulkan backend queues all n steps in one submit and reports each as
 * the device finishes it, so a stop takes effect only once the queued steps
 * are done. */
typedef int (*sd_step_cb)(void *user, int step);

typedef struct sd_backend_vtbl {
    /* An empty weight set; freed with weights_destroy (after every graph
     * prepared against it has been released). */
    sdvk_status (*weights_create)(sd_backend *b, sd_bweights **out);
    void (*weights_destroy)(sd_backend *b, sd_bweights *w);
    void (*weights_stats)(sd_backend *b, const sd_bweights *w, sd_weight_stats *st);
    /* Replaces the resident copy of the weight whose checkpoint data is
     * `key` (the sd_tensor.data pointer graphs were built with) by `f32`
     * (same element count, float32, checkpoint layout), in place: prepared
     * graphs keep working and see the new values. f32 = NULL restores the
     * checkpoint's values exactly as prepare made them. Used by LoRA.
     * Returns SDVK_OK and does nothing when the set does not hold that
     * weight. */
    sdvk_status (*weights_update)(sd_backend *b, sd_bweights *w, const void *key, const float *f32,
                                  size_t n);
    /* Whether the backend has a kernel for node `k` of g as built (op and
     * shapes); when not, writes the reason (naming the op) into why. */
    int (*supports)(sd_backend *b, const sd_graph *g, int k, char *why, size_t n);
    /* w may be NULL: the graph then gets a private weight set. */
    sdvk_status (*prepare)(sd_backend *b, const sd_graph *g, sd_bweights *w, sd_bgraph **out);
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
    /* Memory the backend computes in: bytes of device memory (Vulkan: the
     * largest device-local heap), 0 = host memory (the CPU backend). */
    uint64_t mem_total;
    /* Largest activation a kernel can bind, in float32 bytes; 0 = no limit. */
    uint64_t max_tensor;
    /* Set by the owner (the context) to a flag another thread may raise to
     * stop a run: the CPU backend checks it between nodes, Vulkan between
     * steps. NULL: never cancelled this way. */
    atomic_int *cancel;
};

static inline int sd_backend_cancelled(const sd_backend *b) {
    return b->cancel && atomic_load_explicit(b->cancel, memory_order_relaxed);
}

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

/* Usable Vulkan devices that are not a software renderer on this CPU, or -1
 * when Vulkan cannot be loaded at all; name gets a software device's name
 * when there is one. Cheap: no logical device is created. */
int sd_vulkan_hw_devices(char *name, size_t n);

/* kind AUTO uses Vulkan when a hardware device exists, else the CPU (said in
 * the verbose log). */
sdvk_status sd_backend_create(sdvk_backend_kind kind, const sdvk_options *opt, sd_backend **out);

/* Asks b->v->supports for every node of g; the first unsupported node is a
 * clear error naming the op and the backend. Called by every prepare. */
sdvk_status sd_backend_check_graph(sd_backend *b, const sd_graph *g);

static inline void sd_backend_destroy(sd_backend *b) {
    if (b)
        b->v->destroy(b);
}

#endif
