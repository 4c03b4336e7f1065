/* Private to the plain-C reference kernels (src/backend/cpu/ref/). */
#ifndef SD_CPU_REF_H
#define SD_CPU_REF_H

#include "../cpu.h"

/* Attention transposes a chunk of keys into a stack buffer of this many
 * floats; the backend rejects head dimensions above it at prepare. */
#define SD_REF_ATTN_MAX_D 1024

#define REF_IN(c, k) ((const float *)(c)->data[(c)->n->in[k]])
#define REF_OUT(c) ((float *)(c)->data[(c)->n->out])
#define REF_T(c, id) (&(c)->g->t[(id)])

/* Element `i` of a weight's raw (checkpoint dtype) data as float. */
float sd_ref_raw_f32(const void *raw, sd_dtype dt, int64_t i);

void sd_ref_matmul(const sd_cpu_ctx *c);
void *sd_ref_matmul_prep(const sd_graph *g, const sd_node *n, const void *const *raw);
void sd_ref_conv2d(const sd_cpu_ctx *c);
void *sd_ref_conv2d_prep(const sd_graph *g, const sd_node *n, const void *const *raw);
/* The same, quantising eligible weights to q8 first (options.weights = q8). */
void *sd_ref_matmul_prep_q8(const sd_graph *g, const sd_node *n, const void *const *raw);
void *sd_ref_conv2d_prep_q8(const sd_graph *g, const sd_node *n, const void *const *raw);
size_t sd_ref_prep_size(sd_op op, const void *p);
void sd_ref_group_norm(const sd_cpu_ctx *c);
void sd_ref_layer_norm(const sd_cpu_ctx *c);
void sd_ref_attention(const sd_cpu_ctx *c);
void sd_ref_geglu(const sd_cpu_ctx *c);
void sd_ref_gelu(const sd_cpu_ctx *c);
void sd_ref_quick_gelu(const sd_cpu_ctx *c);
void sd_ref_silu(const sd_cpu_ctx *c);
void sd_ref_relu(const sd_cpu_ctx *c);
void sd_ref_tanh(const sd_cpu_ctx *c);
void sd_ref_add(const sd_cpu_ctx *c);
void sd_ref_mul(const sd_cpu_ctx *c);
void sd_ref_scale(const sd_cpu_ctx *c);
void sd_ref_upsample2x(const sd_cpu_ctx *c);
void sd_ref_concat(const sd_cpu_ctx *c);
void sd_ref_embedding(const sd_cpu_ctx *c);
void sd_ref_timestep_embed(const sd_cpu_ctx *c);
void sd_ref_step_select(const sd_cpu_ctx *c);
void sd_ref_cfg_combine(const sd_cpu_ctx *c);
void sd_ref_sampler_step(const sd_cpu_ctx *c);
void sd_ref_copy(const sd_cpu_ctx *c);

#endif
