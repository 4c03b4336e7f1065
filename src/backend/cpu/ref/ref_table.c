/* The reference kernel table and run-time kernel selection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../core/status.h"
#include "ref.h"

void sd_cpu_ref_kernels(sd_cpu_kernels *k) {
    memset(k, 0, sizeof *k);
    k->fn[SD_OP_MATMUL] = sd_ref_matmul;
    k->fn[SD_OP_CONV2D] = sd_ref_conv2d;
    k->fn[SD_OP_GROUP_NORM] = sd_ref_group_norm;
    k->fn[SD_OP_LAYER_NORM] = sd_ref_layer_norm;
    k->fn[SD_OP_ATTENTION] = sd_ref_attention;
    k->fn[SD_OP_GEGLU] = sd_ref_geglu;
    k->fn[SD_OP_GELU] = sd_ref_gelu;
    k->fn[SD_OP_QUICK_GELU] = sd_ref_quick_gelu;
    k->fn[SD_OP_SILU] = sd_ref_silu;
    k->fn[SD_OP_ADD] = sd_ref_add;
    k->fn[SD_OP_MUL] = sd_ref_mul;
    k->fn[SD_OP_SCALE] = sd_ref_scale;
    k->fn[SD_OP_UPSAMPLE2X] = sd_ref_upsample2x;
    k->fn[SD_OP_CONCAT] = sd_ref_concat;
    k->fn[SD_OP_EMBEDDING] = sd_ref_embedding;
    k->fn[SD_OP_TIMESTEP_EMBED] = sd_ref_timestep_embed;
    k->fn[SD_OP_STEP_SELECT] = sd_ref_step_select;
    k->fn[SD_OP_CFG_COMBINE] = sd_ref_cfg_combine;
    k->fn[SD_OP_SAMPLER_STEP] = sd_ref_sampler_step;
    k->fn[SD_OP_COPY] = sd_ref_copy;
    k->fn[SD_OP_RELU] = sd_ref_relu;
    k->fn[SD_OP_TANH] = sd_ref_tanh;
    /* matmul and conv read their weights (and bias) from the raw checkpoint
     * data while packing, so they need no separate f32 copy */
    k->prep[SD_OP_MATMUL] = sd_ref_matmul_prep;
    k->prep[SD_OP_CONV2D] = sd_ref_conv2d_prep;
    k->prep_q8[SD_OP_MATMUL] = sd_ref_matmul_prep_q8;
    k->prep_q8[SD_OP_CONV2D] = sd_ref_conv2d_prep_q8;
    k->prep_size = sd_ref_prep_size;
    for (int op = 0; op < SD_OP_COUNT; op++)
        k->want_f32_weights[op] = op != SD_OP_MATMUL && op != SD_OP_CONV2D;
    snprintf(k->isa, sizeof k->isa, "ref");
}

/* Provided by src/backend/cpu/simd/ when SIMD kernels are built; the weak
 * fallback in simd_none.c otherwise. k arrives filled with the reference
 * kernels; isa is "auto" or a named ISA. Returns SDVK_OK (0) or a status
 * with the message recorded. */
int sd_cpu_simd_select(const char *isa, sd_cpu_kernels *k);

sdvk_status sd_cpu_select_kernels(const char *isa, sd_cpu_kernels *k) {
    if (!isa || !*isa)
        isa = "auto";
    sd_cpu_ref_kernels(k);
    if (!strcmp(isa, "ref") || !strcmp(isa, "scalar"))
        return SDVK_OK;
    int s = sd_cpu_simd_select(isa, k);
    if (s != SDVK_OK) {
        sd_cpu_ref_kernels(k); /* leave a usable table even on failure */
        return (sdvk_status)s;
    }
    return SDVK_OK;
}
