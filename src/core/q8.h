/* 8-bit weights ("q8"): int8 values with one fp16 scale per block of 32
 * consecutive values along a weight's input-channel axis, like GGML's q8_0
 * (value = scale * q, q in [-127, 127]).
 *
 * Which weights: matmul weights [N, K] with K % 32 == 0 and conv weights
 * [Co, Ci, kh, kw] with Ci % 32 == 0 (sd_q8_eligible). Norms, biases,
 * embeddings and the few convs on 3/4/8 channels stay as stored.
 *
 * Blocks run along dim 1 (K of a Linear, Ci of a conv): element (o, c, y, x)
 * has scale (o, c / 32, y, x), so the scales of a weight of shape
 * [ne0, ne1, ne2, ne3] form an fp16 tensor [ne0, ne1 / 32, ne2, ne3]
 * (sd_q8_scale_shape). For a Linear that is "32 consecutive values of a
 * row"; for a 3x3 conv it is a run of 32 input channels of one kernel tap,
 * which is exactly a contiguous run of the implicit GEMM's depth (NHWC
 * input, depth order (ky, kx, ci)), so the CPU kernels use stored blocks
 * as they are, with no second rounding. The int8 values keep the weight's
 * own (PyTorch) layout.
 *
 * Quantisation (one implementation, used at load and by `sdvk convert`):
 *   d = fp16(max|x| / 127);  q = round_half_even(clamp(x / d, -127, 127))
 * (q = 0 when d is 0). Dequantised values d * q are exact in fp32, so
 * quantising them again gives the same q and d.
 *
 * Stored form (.safetensors, metadata "sdvk.q8" = "1"): tensor NAME with
 * dtype "I8" and the weight's shape, and tensor NAME.q8_scale with dtype
 * "F16" and the scale shape. src/io/safetensors.c pairs them into one
 * table entry of dtype SD_Q8 (sd_st_tensor.scale); sd_st_write writes an
 * SD_Q8 item as the pair and sets the metadata. */
#ifndef SD_Q8_H
#define SD_Q8_H

#include <stdint.h>

#include "sdvk.h"
#include "tensor.h"

#define SD_Q8_BLOCK 32
/* Suffix of the scales tensor's name in a stored file. */
#define SD_Q8_SCALE_SUFFIX ".q8_scale"
/* Metadata key and the format version this build reads and writes. */
#define SD_Q8_META_KEY "sdvk.q8"
#define SD_Q8_META_VERSION "1"

/* 1 when a weight of this shape can be q8 (see above). */
int sd_q8_eligible(int ndim, const int64_t *ne);
/* Whether a file converter (`sdvk convert --type q8`) makes tensor `name`
 * 8-bit: an eligible matmul/conv weight (".weight", 2-D or 4-D, dim 1 a
 * multiple of 32) that is not an embedding table (token_embedding,
 * position_embedding: looked up, not multiplied). These are exactly the
 * weights --weights q8 quantises in an SD v1.x checkpoint, so a converted
 * file computes bit for bit what --weights q8 on the original does. */
int sd_q8_wanted(const char *name, int ndim, const int64_t *ne);
/* Shape of its scales: ne0, ne1 / 32, then the remaining dims. */
void sd_q8_scale_shape(int ndim, const int64_t *ne, int64_t *out);
/* Number of scales (nelem / 32). */
int64_t sd_q8_nscales(int ndim, const int64_t *ne);

/* One block: x[i * stride] for i < 32 -> q[i * stride], *scale (fp16 bits). */
void sd_q8_quantize_block(const float *x, int64_t stride, int8_t *q, uint16_t *scale);
/* n values (n % 32 == 0) of one row, blocks of 32 consecutive values:
 * q[n], scales[n / 32]. What a Linear's rows need. */
void sd_q8_quantize_row(const float *x, int64_t n, int8_t *q, uint16_t *scales);
/* A whole eligible weight (F32, F16 or BF16 data in its own layout) ->
 * q (nelem int8, same layout) and scales (the scale shape). Fails with a
 * message for an ineligible shape or dtype. `name` labels messages. */
sdvk_status sd_q8_quantize_tensor(const void *src, sd_dtype dt, int ndim, const int64_t *ne, int8_t *q,
                                  uint16_t *scales, const char *name);
/* The inverse: nelem floats in the weight's layout. */
void sd_q8_dequantize(const int8_t *q, const uint16_t *scales, int ndim, const int64_t *ne, float *dst);

#endif
