/* Fuzz target: LoRA and textual-inversion loaders.
 *
 * Input: a LoRA or embedding file's bytes - a torch.save zip (or legacy
 * pickle) goes through sd_ckpt_open_mem, anything else through
 * sd_st_open_mem. The table is read as a LoRA against a small synthetic
 * SD-layout model (linear, 1x1 and 3x3 conv, text encoder weights, so key
 * resolution, shape checks and LoCon shapes are reached) and every module
 * found is merged into a buffer of its target's size; then as an embedding
 * for a 16-wide text encoder. Failures must leave a message. Seeds:
 * tests/fuzz/corpus/lora (tools/make_lora.py outputs for the tiny model). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "fuzz_common.h"
#include "io/ckpt.h"
#include "io/embedding.h"
#include "io/lora.h"

static sd_safetensors *g_model;
static float g_zero[32 * 32 * 9];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    static const struct {
        const char *name;
        int ndim;
        int64_t ne[4];
    } w[] = {
        {"model.diffusion_model.input_blocks.1.0.in_layers.2.weight", 4, {32, 32, 3, 3}},
        {"model.diffusion_model.input_blocks.1.1.proj_in.weight", 4, {32, 32, 1, 1}},
        {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", 2, {32, 32}},
        {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 2, {32, 16}},
        {"cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight", 2, {16, 16}},
        {"cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", 2, {64, 16}},
    };
    if (sd_st_new("fuzz-model", &g_model))
        abort();
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) {
        sd_st_tensor t;
        memset(&t, 0, sizeof t);
        t.supported = 1;
        t.dtype = SD_F32;
        strcpy(t.dtype_str, "F32");
        t.ndim = w[i].ndim;
        size_t n = 1;
        for (int d = 0; d < t.ndim; d++) n *= (size_t)(t.ne[d] = w[i].ne[d]);
        t.data = g_zero;
        t.nbytes = n * 4;
        if (sd_st_add(g_model, w[i].name, &t))
            abort();
    }
    if (sd_st_seal(g_model))
        abort();
    return 0;
}

static sdvk_status open_table(const uint8_t *data, size_t size, sd_safetensors **st) {
    if (sd_ckpt_magic(data, size))
        return sd_ckpt_open_mem(data, size, "fuzz.pt", st);
    return sd_st_open_mem(data, size, "fuzz.safetensors", st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_model)
        LLVMFuzzerInitialize(NULL, NULL);
    sd_safetensors *st = NULL;
    if (open_table(data, size, &st) != SDVK_OK) {
        FUZZ_CHECK_MSG();
        return 0;
    }
    sd_lora *l = NULL;
    if (sd_lora_from_table(st, g_model, &l) == SDVK_OK) {
        FUZZ_CHECK(l->n_mods > 0 && l->n_mods == l->n_unet + l->n_te);
        for (int i = 0; i < l->n_mods; i++) {
            const sd_lora_mod *m = &l->mods[i];
            FUZZ_CHECK(sd_lora_find(l, m->target) == m);
            size_t n = (size_t)(m->out_dim * m->in_dim);
            FUZZ_CHECK(n > 0 && n <= sizeof g_zero / sizeof *g_zero);
            float *w = calloc(n, sizeof *w);
            FUZZ_CHECK(w != NULL);
            FUZZ_CHECK(sd_lora_apply(m, 0.5f, w, n) == SDVK_OK);
            FUZZ_CHECK(sd_lora_unapply(m, 0.5f, w, n) == SDVK_OK);
            free(w);
        }
        sd_lora_free(l);
    } else {
        FUZZ_CHECK_MSG();
    }
    if (open_table(data, size, &st) != SDVK_OK)
        return 0;
    sd_ti_embedding *e = NULL;
    if (sd_embedding_from_table(st, "fuzz", 16, &e) == SDVK_OK) {
        FUZZ_CHECK(e->width == 16 && e->n_vec >= 1 && e->n_vec <= SD_EMBEDDING_MAX_VECTORS);
        for (int i = 0; i < e->n_vec * e->width; i++) FUZZ_CHECK(isfinite(e->vec[i]));
        sd_embedding_free(e);
    } else {
        FUZZ_CHECK_MSG();
    }
    return 0;
}
