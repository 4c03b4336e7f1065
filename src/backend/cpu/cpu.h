/* CPU backend internals: a kernel table indexed by op. The plain-C
 * reference kernels (ref/) fill every entry; SIMD kernels (simd/, one file
 * per ISA, compiled with its own flags) override the entries they speed
 * up, chosen at run time from CPUID/HWCAP. */
#ifndef SD_CPU_H
#define SD_CPU_H

#include "../../core/graph.h"
#include "../../core/pool.h"

/* What a kernel sees when it runs one node. */
typedef struct sd_cpu_ctx {
    const sd_graph *g;
    const sd_node *n;
    /* Per tensor id: f32 (or i32) data. Activations point into the arena;
     * weights point to an f32 copy when the node's kernel asked for one
     * (sd_cpu_kernels.want_f32_weights), else NULL. */
    void *const *data;
    /* Per tensor id: the weight's raw checkpoint data (dtype g->t[id].dtype). */
    const void *const *raw;
    /* Per node: what the kernel table's prep hook made for it (packed
     * weights...), or NULL. */
    void *const *packed;
    sd_pool *pool;
    int step;         /* step index of the current run (STEP_SELECT) */
} sd_cpu_ctx;

typedef void (*sd_cpu_kernel_fn)(const sd_cpu_ctx *c);
/* Optional per-node preparation at graph prepare time (e.g. packing a
 * weight into the GEMM's panel layout, converting f16 on the fly). Returns
 * malloc'd data stored in ctx.packed[node] and freed with free(), or NULL. */
typedef void *(*sd_cpu_prep_fn)(const sd_graph *g, const sd_node *n, const void *const *raw);

typedef struct sd_cpu_kernels {
    sd_cpu_kernel_fn fn[SD_OP_COUNT];
    sd_cpu_prep_fn prep[SD_OP_COUNT];
    /* 8-bit weights made at load (options.weights = SDVK_WEIGHTS_Q8): a prep
     * hook that quantises an F32/F16/BF16 weight to q8 (src/core/q8.h) when
     * its shape allows, else packs it as prep does. NULL: this table has
     * none (the backend refuses q8 then). Stored SD_Q8 weights go through
     * prep in any case. */
    sd_cpu_prep_fn prep_q8[SD_OP_COUNT];
    /* Bytes of a prep result of op (statistics); NULL: estimated. */
    size_t (*prep_size)(sd_op op, const void *p);
    /* 1: weights used by this op are converted once to f32 at prepare. */
    unsigned char want_f32_weights[SD_OP_COUNT];
    char isa[32]; /* "ref", "avx2", "avx512", "neon" ... */
} sd_cpu_kernels;

/* Fills every op with the plain-C reference kernel (isa "ref"). */
void sd_cpu_ref_kernels(sd_cpu_kernels *k);

/* Chooses kernels: isa NULL/"auto" = best available (env SDVK_CPU_ISA
 * overrides), or one of "ref", "scalar", "avx2", "avx2vnni", "avx512", "avx512bf16",
 * "neon", "neondot".
 * Fails with a message if the ISA is unknown or the CPU lacks it. */
sdvk_status sd_cpu_select_kernels(const char *isa, sd_cpu_kernels *k);

#endif
