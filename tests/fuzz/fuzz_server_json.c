/* Fuzz target: request parsing of `sdvk serve` (tools/server/request.c):
 * the JSON bodies of /sdapi/v1/txt2img, /sdapi/v1/img2img (with base64
 * images decoded through sdvk_image_load_mem), /v1/images/generations and
 * POST /sdapi/v1/options. The first input byte picks the endpoint, the rest
 * is the body. Invariants: an accepted request is within the limits (sizes
 * multiples of 8 up to the maximum, steps and picture counts in range, text
 * present, images decoded with positive sizes, "parameters" an object that
 * serializes); a refused one has a 4xx/5xx status and a JSON body with
 * "detail" or "error". Build: link sdvk_server_core
 * (tools/server/server.cmake), include tools/server. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define SJ_CHECK(c)                                                                       \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static void check_error(const sv_error *e) {
    SJ_CHECK(e->status >= 400 && e->status < 600);
    SJ_CHECK(json_is_object(e->body));
    SJ_CHECK(json_object_get(e->body, "detail") || json_object_get(e->body, "error"));
    char *s = json_dumps(e->body, JSON_COMPACT);
    SJ_CHECK(s != NULL);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    static sv_model model;
    if (!model.name[0]) {
        snprintf(model.name, sizeof model.name, "fuzz");
        snprintf(model.title, sizeof model.title, "fuzz.safetensors");
        snprintf(model.filename, sizeof model.filename, "fuzz.safetensors");
        model.info.native_width = model.info.native_height = 64;
        model.info.size_multiple = 8;
        model.info.max_side = 1024;
        model.info.vae_factor = 8;
        model.info.clip_layers = 12;
    }
    sv_parse_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.model = &model;
    pc.lim.max_width = 512;
    pc.lim.max_height = 768;
    pc.lim.max_steps = 150;
    pc.lim.max_images = 8;
    pc.lim.max_body = 1 << 20;
    pc.lim.max_image_pixels = 1 << 18;
    pc.lim.max_image_side = 4096;
    pc.set.clip_skip = 1;
    pc.set.rng = SDVK_RNG_CUDA;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    sv_error err = {0};
    int which = data[0] % 4;
    if (which == 3) {
        sv_settings set = pc.set;
        if (sv_parse_options(body, n, &model, &set, &err) == 0) {
            SJ_CHECK(set.clip_skip >= 1 && set.clip_skip <= 12);
            SJ_CHECK(set.preview_every >= 0 && set.preview_every <= 1000);
        } else {
            check_error(&err);
        }
        sv_error_clear(&err);
        return 0;
    }
    sv_kind kind = which == 0 ? SV_TXT2IMG : which == 1 ? SV_IMG2IMG : SV_OPENAI;
    sv_gen_req r;
    if (sv_parse_generate(body, n, kind, &pc, &r, &err) == 0) {
        SJ_CHECK(err.body == NULL);
        SJ_CHECK(r.prompt && r.negative_prompt);
        SJ_CHECK(r.width >= 8 && r.width <= 512 && r.width % 8 == 0);
        SJ_CHECK(r.height >= 8 && r.height <= 768 && r.height % 8 == 0);
        SJ_CHECK(r.steps >= 1 && r.steps <= 150);
        SJ_CHECK(r.batch_size >= 1 && r.n_iter >= 1 && r.batch_size * r.n_iter <= 8);
        SJ_CHECK(r.cfg_scale >= 0 && r.cfg_scale <= 100);
        SJ_CHECK((unsigned)r.sampler < SDVK_SAMPLER_COUNT && (unsigned)r.schedule < SDVK_SCHEDULE_COUNT);
        SJ_CHECK(r.eta >= 0 && r.eta <= 10);
        SJ_CHECK(r.clip_skip >= 1 && r.clip_skip <= 12);
        SJ_CHECK(r.mask_blur >= 0 && r.mask_blur <= 256);
        if (kind == SV_IMG2IMG) {
            SJ_CHECK(r.init.data && r.init.width > 0 && r.init.height > 0);
            SJ_CHECK((int64_t)r.init.width * r.init.height <= pc.lim.max_image_pixels);
            SJ_CHECK(r.strength > 0 && r.strength <= 1);
        } else {
            SJ_CHECK(!r.init.data && !r.mask.data);
        }
        if (r.enable_hr) {
            SJ_CHECK(r.hires_scale > 1 && r.hires_scale <= 8);
            SJ_CHECK((int)(r.width * r.hires_scale) / 8 * 8 <= 512);
        }
        SJ_CHECK(json_is_object(r.parameters));
        char *s = json_dumps(r.parameters, JSON_COMPACT);
        SJ_CHECK(s != NULL);
        free(s);
        SJ_CHECK(strlen(r.task_id) <= SV_TASK_ID_MAX);
        sv_gen_req_free(&r);
    } else {
        check_error(&err);
    }
    sv_error_clear(&err);
    return 0;
}
