/* The compute graph: a list of nodes {op, inputs, output, params} over a
 * table of tensors. Models build one graph per (model, size, batch); the
 * planner assigns every activation an offset in one arena before anything
 * runs; backends prepare the graph once and run it many times.
 *
 * Layout and op semantics: src/core/ops.def. */
#ifndef SD_GRAPH_H
#define SD_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "sdvk.h"
#include "tensor.h"

typedef enum sd_op {
#define SD_OP(ID, name, shader) SD_OP_##ID,
#include "ops.def"
#undef SD_OP
    SD_OP_COUNT
} sd_op;

const char *sd_op_name(sd_op op);
/* Op id from its name ("matmul"), or -1. */
int sd_op_from_name(const char *name);

typedef enum sd_tkind {
    SD_T_ACT = 0,    /* intermediate: storage reused once dead */
    SD_T_INPUT = 1,  /* written by the host before a run; kept for the graph's life */
    SD_T_OUTPUT = 2, /* read by the host after a run; kept for the graph's life */
    SD_T_WEIGHT = 3  /* constant model data (host pointer, checkpoint dtype/layout) */
} sd_tkind;

#define SD_MAX_DIMS 4
#define SD_MAX_IN 4
#define SD_MAX_IPARAM 8
#define SD_MAX_FPARAM 4

typedef struct sd_tensor {
    sd_dtype dtype;      /* weights: F32/F16/BF16; activations: F32 (I32 for token ids) */
    int ndim;
    int64_t ne[SD_MAX_DIMS]; /* ne[0] outermost, ne[ndim-1] innermost (contiguous) */
    sd_tkind kind;
    int base;            /* -1, or the tensor whose storage this view shares */
    size_t view_off;     /* byte offset of a view inside its base */
    size_t offset;       /* planned byte offset in the activation arena (views resolved) */
    const void *data;    /* weights: host data (e.g. mmapped checkpoint) */
    const void *scale;   /* SD_Q8 weights: their fp16 scales (src/core/q8.h), else NULL */
    char name[96];
} sd_tensor;

typedef struct sd_node {
    sd_op op;
    int in[SD_MAX_IN]; /* tensor ids; -1 = absent */
    int out;
    int32_t i[SD_MAX_IPARAM];
    float f[SD_MAX_FPARAM];
} sd_node;

typedef struct sd_graph {
    sd_tensor *t;
    int nt, cap_t;
    sd_node *n;
    int nn, cap_n;
    size_t arena_size;  /* bytes, valid after sd_graph_plan */
    int planned;
    sdvk_status status; /* first build error; the message is in sdvk_last_error */
    char err[512];
} sd_graph;

sd_graph *sd_graph_new(void);
void sd_graph_free(sd_graph *g);

static inline int64_t sd_tensor_nelem(const sd_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->ne[d];
    return n;
}
static inline size_t sd_tensor_nbytes(const sd_tensor *t) {
    return (size_t)sd_tensor_nelem(t) * sd_dtype_size(t->dtype);
}
/* A weight's values as float32 in its own layout (any dtype, SD_Q8
 * dequantised with t->scale); data is t->data or another buffer of the
 * same dtype and shape. */
void sd_weight_to_f32(const sd_tensor *t, const void *data, float *dst);
/* Root storage tensor of a (possibly nested) view. */
int sd_graph_root(const sd_graph *g, int id);

/* Tensor creation. Every builder returns the new tensor id, or -1 after
 * recording the first error in g->status (later calls with -1 inputs return
 * -1 silently, so a model can build straight through and check once). */
int sd_graph_input(sd_graph *g, sd_dtype dt, int ndim, const int64_t *ne, const char *name);
int sd_graph_weight(sd_graph *g, sd_dtype dt, int ndim, const int64_t *ne, const void *data,
                    const char *name);
/* Marks an existing activation as an output (kept and readable after the run). */
int sd_graph_output(sd_graph *g, int id);
/* Reshape (same element count) or a contiguous slice: view of `base` with a
 * new shape starting byte_off bytes into it. */
int sd_graph_view(sd_graph *g, int base, int ndim, const int64_t *ne, size_t byte_off);
static inline int sd_graph_reshape(sd_graph *g, int base, int ndim, const int64_t *ne) {
    return sd_graph_view(g, base, ndim, ne, 0);
}
/* Records a failure (printf style) unless one is already recorded; returns -1. */
int sd_graph_fail(sd_graph *g, sdvk_status s, const char *fmt, ...);

/* Op constructors: check shapes, add the node, return the output tensor. */
int sd_matmul(sd_graph *g, int x, int w, int bias, int residual);
int sd_conv2d(sd_graph *g, int x, int w, int bias, int residual, int stride, int pad_t, int pad_l,
              int pad_b, int pad_r);
int sd_group_norm(sd_graph *g, int x, int gamma, int beta, int groups, float eps, int silu);
int sd_layer_norm(sd_graph *g, int x, int gamma, int beta, float eps);
int sd_attention(sd_graph *g, int q, int k, int v, int heads, int causal, float scale);
int sd_geglu(sd_graph *g, int x);
int sd_gelu(sd_graph *g, int x);
int sd_quick_gelu(sd_graph *g, int x);
int sd_silu(sd_graph *g, int x);
int sd_relu(sd_graph *g, int x);
int sd_tanh(sd_graph *g, int x);
int sd_add(sd_graph *g, int a, int b);
int sd_mul(sd_graph *g, int a, int b);
int sd_scale(sd_graph *g, int x, float mul, float add);
int sd_upsample2x(sd_graph *g, int x);
/* Nearest 2x upsample cropped to ho x wo (2H or 2H-1, 2W or 2W-1). */
int sd_upsample2x_to(sd_graph *g, int x, int64_t ho, int64_t wo);
int sd_concat(sd_graph *g, int a, int b, int axis);
int sd_embedding(sd_graph *g, int ids, int table);
int sd_timestep_embed(sd_graph *g, int t, int dim);
int sd_step_select(sd_graph *g, int table);
int sd_cfg_combine(sd_graph *g, int eps, int scale);
/* regs holds R registers of eps's size back to back; noise may be -1
 * (none); coef holds at least o + 2 + R values. */
int sd_sampler_step(sd_graph *g, int regs, int R, int eps, int noise, int coef, int o);
/* Copies x into dst (an existing tensor of the same shape, usually an input). */
int sd_copy_into(sd_graph *g, int x, int dst);

/* Assigns arena offsets by liveness (first fit, `align`-byte aligned, at
 * least 256); inputs and outputs stay live for the whole graph. Fails if the
 * graph has a build error. */
sdvk_status sd_graph_plan(sd_graph *g);
/* The same placement without changing the graph: off[i] for every tensor
 * (views included; g->nt entries) and the arena size. With block > 0 (a
 * multiple of 256) no tensor straddles a multiple of block, so the arena can
 * live in separate allocations of block bytes (a backend whose devices limit
 * the size of one allocation); a tensor larger than block is an error. */
sdvk_status sd_graph_place(const sd_graph *g, size_t block, size_t *off, size_t *arena_size);

/* Debug: one line per node to stderr. */
void sd_graph_dump(const sd_graph *g);

#endif
