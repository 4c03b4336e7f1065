/* Extra networks through the public API (tests/extra.cmake).
 *
 *   test_extra switch MODEL VOCAB LORA_DIR cpu|vulkan
 *       LoRAs switched between generations in one context give what a
 *       fresh context gives: prompts with <lora:...> tags A, B, none, A,
 *       sdvk_set_loras, each picture compared with a fresh context's (CPU:
 *       the same bytes; Vulkan: within f16 tolerance), and the UNet / CLIP
 *       stage outputs (float32) under the same switches compared bit for
 *       bit (CPU) or to 1e-3 (Vulkan). The LoRAs must change the picture.
 *   test_extra convert_api MODEL LORA OUT_DIR
 *       sdvk_convert through the API: bad arguments refused with messages,
 *       a cancel from the progress callback leaves no file, the stats, and
 *       the output opens as a model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sdvk.h"

static int g_fails;
#define CHECK(cond, ...)                                \
    do {                                                \
        if (!(cond)) {                                  \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
            g_fails++;                                  \
        }                                               \
    } while (0)

static const char *g_model, *g_vocab, *g_lora_dir;
static int g_vk;

static sdvk_ctx *open_ctx(void) {
    sdvk_options o;
    sdvk_options_default(&o);
    o.backend = g_vk ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU;
    o.vocab_path = g_vocab;
    o.lora_dir = g_lora_dir;
    o.n_threads = 2;
    sdvk_ctx *c = NULL;
    if (sdvk_create(g_model, &o, &c) != SDVK_OK) {
        printf("sdvk_create: %s\n", sdvk_last_error());
        return NULL;
    }
    return c;
}

static sdvk_status picture(sdvk_ctx *c, const char *prompt, sdvk_image *out) {
    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.prompt = prompt;
    p.negative_prompt = "green";
    p.width = p.height = 64;
    p.steps = 4;
    p.seed = 7;
    p.cfg_scale = 6.0f;
    p.sampler = SDVK_SAMPLER_EULER_A;
    sdvk_result r;
    memset(out, 0, sizeof *out);
    sdvk_status s = sdvk_generate(c, &p, &r);
    if (s)
        return s;
    *out = r.images[0];
    r.images[0].data = NULL;
    sdvk_result_free(&r);
    return SDVK_OK;
}

/* Largest difference of two pictures in 8-bit levels, and the mean. */
static int img_diff(const sdvk_image *a, const sdvk_image *b, double *mean) {
    if (a->width != b->width || a->height != b->height || a->channels != b->channels)
        return 999;
    size_t n = (size_t)a->width * a->height * a->channels;
    int mx = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a->data[i] - (int)b->data[i]);
        mx = d > mx ? d : mx;
        sum += d;
    }
    *mean = sum / (double)n;
    return mx;
}

/* Generation with prompt tags: A, B, none, A, then the API's set. */
static void switch_pictures(void) {
    static const char *const prompts[] = {
        "<lora:lora_kohya_r8:1> a red circle",
        "<lora:lora_kohya_r32:-0.7> a red circle <lora:lora_peft_r8:0.5>",
        "a red circle",
        "<lora:lora_kohya_r8:1> a red circle",
        "<lora:lora_kohya_r8:0.4:-1.2> a red circle", /* text encoder and UNet weights apart */
    };
    const int n = (int)(sizeof prompts / sizeof prompts[0]);
    sdvk_ctx *shared = open_ctx();
    if (!shared) {
        g_fails++;
        return;
    }
    printf("backend: %s\n", sdvk_backend_name(shared));
    sdvk_image got[8], ref[8];
    for (int i = 0; i < n; i++) {
        sdvk_status s = picture(shared, prompts[i], &got[i]);
        CHECK(s == SDVK_OK, "'%s' in the shared context: %s", prompts[i], sdvk_last_error());
        sdvk_ctx *fresh = open_ctx();
        s = fresh ? picture(fresh, prompts[i], &ref[i]) : SDVK_ERR_BACKEND;
        CHECK(s == SDVK_OK, "'%s' in a fresh context: %s", prompts[i], sdvk_last_error());
        sdvk_destroy(fresh);
        double mean = 0;
        int mx = img_diff(&got[i], &ref[i], &mean);
        if (g_vk)
            CHECK(mx <= 6 && mean <= 0.5, "'%s': switched vs fresh differ by up to %d levels (mean %.3f)",
                  prompts[i], mx, mean);
        else
            CHECK(mx == 0, "'%s': switched vs fresh differ by up to %d levels (mean %.3f)", prompts[i],
                  mx, mean);
        printf("picture %d '%s': switched vs fresh: max %d levels, mean %.4f\n", i, prompts[i], mx,
               mean);
    }
    double mean;
    CHECK(img_diff(&got[0], &got[2], &mean) > 10, "the LoRA of A does not change the picture");
    CHECK(img_diff(&got[0], &got[1], &mean) > 10, "A and B give the same picture");
    /* no tags: the set of sdvk_set_loras, which tags replace for their own request */
    sdvk_lora api = {"lora_kohya_r8", 1.0f, 1.0f};
    CHECK(sdvk_set_loras(shared, &api, 1) == SDVK_OK, "sdvk_set_loras: %s", sdvk_last_error());
    sdvk_image viaapi, tagged_b;
    CHECK(picture(shared, "a red circle", &viaapi) == SDVK_OK, "%s", sdvk_last_error());
    int mx = img_diff(&viaapi, &got[0], &mean);
    CHECK(g_vk ? mx <= 6 : mx == 0, "sdvk_set_loras(r8) + plain prompt vs <lora:r8:1>: %d levels", mx);
    CHECK(picture(shared, prompts[1], &tagged_b) == SDVK_OK, "%s", sdvk_last_error());
    mx = img_diff(&tagged_b, &ref[1], &mean);
    CHECK(g_vk ? mx <= 6 : mx == 0, "tags replace the API's set: %d levels", mx);
    sdvk_image_free(&tagged_b);
    sdvk_image_free(&viaapi);
    CHECK(sdvk_set_loras(shared, NULL, 0) == SDVK_OK, "%s", sdvk_last_error());
    CHECK(picture(shared, "a red circle", &viaapi) == SDVK_OK, "%s", sdvk_last_error());
    mx = img_diff(&viaapi, &ref[2], &mean);
    CHECK(g_vk ? mx <= 6 : mx == 0, "after sdvk_set_loras(NULL, 0): %d levels from no LoRA", mx);
    sdvk_image_free(&viaapi);
    /* bad tags: clear errors, and the context still works afterwards */
    sdvk_image bad;
    CHECK(picture(shared, "<lora:../etc/passwd:1> x", &bad) == SDVK_ERR_INVALID_ARG &&
              strstr(sdvk_last_error(), "not a plain file name"),
          "a path in a tag: %s", sdvk_last_error());
    CHECK(picture(shared, "<lora:no_such_lora:1> x", &bad) == SDVK_ERR_INVALID_ARG &&
              strstr(sdvk_last_error(), "not found"),
          "a missing LoRA: %s", sdvk_last_error());
    CHECK(picture(shared, "<lora:lora_kohya_r8:abc> x", &bad) == SDVK_ERR_INVALID_ARG &&
              strstr(sdvk_last_error(), "not a weight"),
          "a bad weight: %s", sdvk_last_error());
    CHECK(picture(shared, "a red circle", &viaapi) == SDVK_OK, "%s", sdvk_last_error());
    mx = img_diff(&viaapi, &ref[2], &mean);
    CHECK(g_vk ? mx <= 6 : mx == 0, "after failed requests: %d levels from no LoRA", mx);
    sdvk_image_free(&viaapi);
    for (int i = 0; i < n; i++) {
        sdvk_image_free(&got[i]);
        sdvk_image_free(&ref[i]);
    }
    sdvk_destroy(shared);
}

/* The stages: float32 outputs under sdvk_set_loras switches. */
typedef struct stage_out {
    float *unet, *clip;
    size_t nu, nc;
} stage_out;

static sdvk_status stages(sdvk_ctx *c, const sdvk_lora *l, int n, stage_out *o) {
    memset(o, 0, sizeof *o);
    sdvk_status s = sdvk_set_loras(c, l, n);
    if (s)
        return s;
    static float lat[1 * 4 * 8 * 8], ctxv[1 * 77 * 16];
    for (size_t i = 0; i < sizeof lat / sizeof *lat; i++) lat[i] = sinf((float)i * 0.37f);
    for (size_t i = 0; i < sizeof ctxv / sizeof *ctxv; i++) ctxv[i] = cosf((float)i * 0.11f);
    const int64_t ln[4] = {1, 4, 8, 8}, cn[3] = {1, 77, 16};
    int64_t on[4], cne[3];
    s = sdvk_stage_unet(c, lat, ln, 500.0f, ctxv, cn, &o->unet, on);
    if (s)
        return s;
    o->nu = (size_t)(on[0] * on[1] * on[2] * on[3]);
    const int32_t ids[7] = {49406, 320, 1125, 539, 320, 2368, 49407};
    s = sdvk_stage_clip(c, ids, 1, 7, 1, &o->clip, cne);
    o->nc = (size_t)(cne[0] * cne[1] * cne[2]);
    return s;
}

static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void switch_stages(void) {
    char p8[4096], p32[4096], pp[4096];
    snprintf(p8, sizeof p8, "%s/lora_kohya_r8.safetensors", g_lora_dir);
    snprintf(p32, sizeof p32, "%s/lora_kohya_r32.safetensors", g_lora_dir);
    snprintf(pp, sizeof pp, "%s/lora_peft_r8.safetensors", g_lora_dir);
    const sdvk_lora A[1] = {{p8, 1.0f, 1.0f}};
    const sdvk_lora B[2] = {{p32, -0.7f, -0.7f}, {pp, 0.5f, 0.5f}};
    const sdvk_lora C[2] = {{p8, 0.5f, 0.5f}, {p32, 0.25f, -1.0f}};
    const struct {
        const char *name;
        const sdvk_lora *l;
        int n;
    } seq[] = {{"A", A, 1}, {"B", B, 2}, {"none", NULL, 0}, {"A", A, 1}, {"C", C, 2}, {"A", A, 1}, {"none", NULL, 0}};
    sdvk_ctx *shared = open_ctx();
    if (!shared) {
        g_fails++;
        return;
    }
    stage_out none_ref = {0};
    for (size_t k = 0; k < sizeof seq / sizeof seq[0]; k++) {
        stage_out got, ref;
        sdvk_status s = stages(shared, seq[k].l, seq[k].n, &got);
        CHECK(s == SDVK_OK, "stages with %s (shared): %s", seq[k].name, sdvk_last_error());
        sdvk_ctx *fresh = open_ctx();
        s = fresh ? stages(fresh, seq[k].l, seq[k].n, &ref) : SDVK_ERR_BACKEND;
        CHECK(s == SDVK_OK, "stages with %s (fresh): %s", seq[k].name, sdvk_last_error());
        sdvk_destroy(fresh);
        if (got.unet && ref.unet && got.clip && ref.clip) {
            double eu = rel(got.unet, ref.unet, got.nu), ec = rel(got.clip, ref.clip, got.nc);
            int same = !memcmp(got.unet, ref.unet, got.nu * 4) && !memcmp(got.clip, ref.clip, got.nc * 4);
            printf("stages after switching to %-4s: UNet %.1e, CLIP %.1e from a fresh context%s\n",
                   seq[k].name, eu, ec, same ? " (bit-identical)" : "");
            if (g_vk)
                CHECK(eu <= 1e-3 && ec <= 1e-3, "%s: switched vs fresh UNet %.1e CLIP %.1e", seq[k].name, eu, ec);
            else
                CHECK(same, "%s: switched vs fresh not bit-identical (UNet %.1e, CLIP %.1e)", seq[k].name,
                      eu, ec);
            if (!seq[k].n && !none_ref.unet) {
                none_ref = ref;
                ref.unet = ref.clip = NULL;
            } else if (seq[k].n && none_ref.unet) {
                CHECK(rel(got.unet, none_ref.unet, got.nu) > 1e-2, "%s: the UNet did not move", seq[k].name);
                CHECK(rel(got.clip, none_ref.clip, got.nc) > 1e-2, "%s: CLIP did not move", seq[k].name);
            }
        }
        sdvk_free(got.unet);
        sdvk_free(got.clip);
        sdvk_free(ref.unet);
        sdvk_free(ref.clip);
    }
    sdvk_free(none_ref.unet);
    sdvk_free(none_ref.clip);
    sdvk_destroy(shared);
}

static int stop_at_10(void *user, int done, int total) {
    (void)total;
    *(int *)user = done;
    return done >= 10;
}

/* sdvk_convert through the API: argument checks, cancel, stats. */
static void convert_api(const char *model, const char *lora, const char *dir) {
    char out[4096];
    snprintf(out, sizeof out, "%s/api_out.safetensors", dir);
    unlink(out);
    sdvk_convert_params p;
    sdvk_convert_params_default(&p);
    CHECK(sdvk_convert(NULL, out, &p, NULL) == SDVK_ERR_INVALID_ARG, "NULL model accepted");
    CHECK(sdvk_convert(model, "", &p, NULL) == SDVK_ERR_INVALID_ARG, "empty output accepted");
    p.type = (sdvk_convert_type)9;
    CHECK(sdvk_convert(model, out, &p, NULL) == SDVK_ERR_INVALID_ARG &&
              strstr(sdvk_last_error(), "unknown type"),
          "type 9: %s", sdvk_last_error());
    p.type = SDVK_CONVERT_F16;
    sdvk_lora l = {lora, NAN, 1.0f};
    p.loras = &l;
    p.n_loras = 1;
    CHECK(sdvk_convert(model, out, &p, NULL) == SDVK_ERR_INVALID_ARG && strstr(sdvk_last_error(), "finite"),
          "NaN LoRA weight: %s", sdvk_last_error());
    p.n_loras = -1;
    CHECK(sdvk_convert(model, out, &p, NULL) == SDVK_ERR_INVALID_ARG, "n_loras -1 accepted");
    l.te_weight = 0.5f;
    p.n_loras = 1;
    int seen = 0;
    p.progress = stop_at_10;
    p.progress_user = &seen;
    CHECK(sdvk_convert(model, out, &p, NULL) == SDVK_ERR_CANCELLED, "cancel: %s", sdvk_last_error());
    CHECK(seen == 10, "cancelled after %d tensors", seen);
    struct stat sb;
    CHECK(stat(out, &sb) != 0, "a cancelled convert left %s", out);
    p.progress = NULL;
    sdvk_convert_stats st;
    CHECK(sdvk_convert(model, out, &p, &st) == SDVK_OK, "convert: %s", sdvk_last_error());
    CHECK(st.tensors_written > 400 && st.weights_merged == 49 && st.bytes_written > 3000000,
          "stats: %d tensors, %d merged, %llu bytes", st.tensors_written, st.weights_merged,
          (unsigned long long)st.bytes_written);
    printf("convert: %d tensors written, %d left out, %d merged, %llu bytes, %.2f s\n",
           st.tensors_written, st.tensors_skipped, st.weights_merged,
           (unsigned long long)st.bytes_written, st.seconds);
    sdvk_options o;
    sdvk_options_default(&o);
    o.backend = SDVK_BACKEND_CPU;
    sdvk_ctx *c = NULL;
    CHECK(sdvk_create(out, &o, &c) == SDVK_OK, "the output does not load: %s", sdvk_last_error());
    sdvk_destroy(c);
    unlink(out);
}

int main(int argc, char **argv) {
    if (argc >= 6 && !strcmp(argv[1], "switch")) {
        g_model = argv[2];
        g_vocab = argv[3];
        g_lora_dir = argv[4];
        g_vk = !strcmp(argv[5], "vulkan");
        if (!getenv("SKIP_STAGES"))
            switch_stages();
        switch_pictures();
    } else if (argc >= 5 && !strcmp(argv[1], "convert_api")) {
        convert_api(argv[2], argv[3], argv[4]);
    } else {
        fprintf(stderr, "usage: test_extra switch MODEL VOCAB LORA_DIR cpu|vulkan\n"
                        "       test_extra convert_api MODEL LORA OUT_DIR\n");
        return 2;
    }
    printf("%s: %d failure(s)\n", argv[1], g_fails);
    return g_fails ? 1 : 0;
}
