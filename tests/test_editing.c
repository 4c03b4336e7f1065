/* Editing against diffusers (goldens from tools/check_inpaint.py and
 * tools/check_odd_sizes.py on the tiny model), through the public API:
 *
 *   test_editing inpaint DIR MODEL INPAINT_MODEL cpu|vulkan [TOL]
 *       img2img, masked img2img with a 4-channel UNet (strength 0.75 and
 *       1), and a 9-channel inpainting UNet, DDIM 4 steps, CFG 7.5: the
 *       final latents of StableDiffusionImg2ImgPipeline /
 *       StableDiffusionInpaintPipeline.
 *   test_editing odd DIR MODEL cpu|vulkan [TOL]
 *       UNet, VAE decode and encode at latent sizes that are not multiples
 *       of the UNet's downsampling (UNet2DConditionModel, AutoencoderKL). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdvk.h"

static const char *g_dir;
static int g_fails;

typedef struct arr {
    void *data;
    char dt;
    int ndim;
    int64_t ne[8];
} arr;

static int load(const char *name, arr *a) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    if (sdvk_npy_load(p, &a->data, &a->dt, &a->ndim, a->ne) != SDVK_OK) {
        printf("FATAL: %s\n", sdvk_last_error());
        exit(1);
    }
    return 0;
}

static double rel_l2(const float *x, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void check(const char *what, sdvk_status s, float *out, const int64_t *ne, int ndim,
                  const arr *want, double tol) {
    if (s) {
        printf("FAIL %-28s %s\n", what, sdvk_last_error());
        g_fails++;
        return;
    }
    int64_t n = 1;
    int same = ndim == want->ndim;
    for (int d = 0; d < ndim; d++) {
        n *= ne[d];
        same &= same && ne[d] == want->ne[d];
    }
    double e = same ? rel_l2(out, want->data, n) : INFINITY;
    int ok = e <= tol;
    printf("%s %-28s rel_l2 %.2e (tol %.0e)%s\n", ok ? "ok  " : "FAIL", what, e, tol,
           same ? "" : " shape mismatch");
    g_fails += !ok;
    sdvk_free(out);
}

static sdvk_ctx *open_ctx(const char *model, int vk) {
    sdvk_options o;
    sdvk_options_default(&o);
    sdvk_options_from_env(&o);
    o.backend = vk ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU;
    o.n_threads = 2;
    sdvk_ctx *c = NULL;
    if (sdvk_create(model, &o, &c) != SDVK_OK) {
        printf("%s: %s\n", vk ? "NOTE" : "FATAL", sdvk_last_error());
        return NULL;
    }
    return c;
}

static void inpaint(const char *model, const char *model9, int vk, double tol) {
    sdvk_ctx *ctx[2] = {open_ctx(model, vk), open_ctx(model9, vk)};
    if (!ctx[0] || !ctx[1]) {
        if (!vk)
            g_fails++;
        sdvk_destroy(ctx[0]);
        sdvk_destroy(ctx[1]);
        return;
    }
    printf("backend: %s\n", sdvk_backend_name(ctx[0]));
    char p[2048];
    sdvk_image init, mask;
    snprintf(p, sizeof p, "%s/init.png", g_dir);
    if (sdvk_image_load(p, NULL, &init)) {
        printf("FATAL: %s\n", sdvk_last_error());
        exit(1);
    }
    snprintf(p, sizeof p, "%s/mask.png", g_dir);
    if (sdvk_image_load(p, NULL, &mask)) {
        printf("FATAL: %s\n", sdvk_last_error());
        exit(1);
    }
    snprintf(p, sizeof p, "%s/manifest.txt", g_dir);
    FILE *f = fopen(p, "r");
    char line[256];
    int cases = 0;
    while (f && fgets(line, sizeof line, f)) {
        char tag[64], m[32], kind[32];
        double strength, cfg;
        int steps;
        if (line[0] == '#' || sscanf(line, "%63s %31s %31s %lf %d %lf", tag, m, kind, &strength,
                                     &steps, &cfg) != 6)
            continue;
        int nine = !strcmp(m, "inpaint9");
        arr ctxa, n0, want;
        char name[160];
        snprintf(name, sizeof name, "%s.context.npy", m);
        load(name, &ctxa);
        snprintf(name, sizeof name, "%s.noise0.npy", m);
        load(name, &n0);
        snprintf(name, sizeof name, "%s.out.npy", tag);
        load(name, &want);
        sdvk_gen_params q;
        sdvk_gen_params_default(&q);
        q.sampler = SDVK_SAMPLER_DDIM;
        q.schedule = SDVK_SCHEDULE_DISCRETE;
        q.eta = 0;
        q.steps = steps;
        q.cfg_scale = (float)cfg;
        q.init_image = &init;
        q.strength = (float)strength;
        q.mask = !strcmp(kind, "masked") ? &mask : NULL;
        q.mask_blur = 0;
        float *out = NULL;
        int64_t ne[4];
        sdvk_status s = sdvk_stage_sample(ctx[nine], &q, ctxa.data, ctxa.ne, n0.data, n0.ne, NULL,
                                          NULL, &out, ne);
        check(tag, s, out, ne, 4, &want, tol);
        sdvk_free(ctxa.data);
        sdvk_free(n0.data);
        sdvk_free(want.data);
        cases++;
    }
    if (f)
        fclose(f);
    if (cases != 5) {
        printf("FAIL: %d inpainting cases in the manifest (5 expected)\n", cases);
        g_fails++;
    }
    sdvk_image_free(&init);
    sdvk_image_free(&mask);
    sdvk_destroy(ctx[0]);
    sdvk_destroy(ctx[1]);
}

static void odd(const char *model, int vk, double tol) {
    sdvk_ctx *ctx = open_ctx(model, vk);
    if (!ctx) {
        g_fails += !vk;
        return;
    }
    printf("backend: %s\n", sdvk_backend_name(ctx));
    char p[2048];
    snprintf(p, sizeof p, "%s/manifest.txt", g_dir);
    FILE *f = fopen(p, "r");
    char line[128];
    int cases = 0;
    while (f && fgets(line, sizeof line, f)) {
        char tag[32];
        if (line[0] == '#' || sscanf(line, "%31s", tag) != 1)
            continue;
        arr lat, ctxa, img, eps, dec, enc;
        char name[96], what[96];
        snprintf(name, sizeof name, "%s.latent.npy", tag);
        load(name, &lat);
        snprintf(name, sizeof name, "%s.context.npy", tag);
        load(name, &ctxa);
        snprintf(name, sizeof name, "%s.image.npy", tag);
        load(name, &img);
        snprintf(name, sizeof name, "%s.unet.npy", tag);
        load(name, &eps);
        snprintf(name, sizeof name, "%s.decode.npy", tag);
        load(name, &dec);
        snprintf(name, sizeof name, "%s.encode.npy", tag);
        load(name, &enc);
        float *out = NULL;
        int64_t ne[4];
        sdvk_status s;
        snprintf(what, sizeof what, "unet %s latent", tag);
        s = sdvk_stage_unet(ctx, lat.data, lat.ne, 500.0f, ctxa.data, ctxa.ne, &out, ne);
        check(what, s, out, ne, 4, &eps, tol);
        snprintf(what, sizeof what, "vae decode %s latent", tag);
        s = sdvk_stage_vae_decode(ctx, lat.data, lat.ne, &out, ne);
        check(what, s, out, ne, 4, &dec, tol);
        snprintf(what, sizeof what, "vae encode %s latent", tag);
        s = sdvk_stage_vae_encode(ctx, img.data, img.ne, &out, ne);
        check(what, s, out, ne, 4, &enc, tol);
        arr *all[6] = {&lat, &ctxa, &img, &eps, &dec, &enc};
        for (int i = 0; i < 6; i++) sdvk_free(all[i]->data);
        cases++;
    }
    if (f)
        fclose(f);
    if (cases < 2) {
        printf("FAIL: %d sizes in the manifest\n", cases);
        g_fails++;
    }
    sdvk_destroy(ctx);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: test_editing inpaint DIR MODEL MODEL9 cpu|vulkan [TOL]\n"
                        "       test_editing odd DIR MODEL cpu|vulkan [TOL]\n");
        return 2;
    }
    g_dir = argv[2];
    if (!strcmp(argv[1], "inpaint")) {
        if (argc < 6)
            return 2;
        inpaint(argv[3], argv[4], !strcmp(argv[5], "vulkan"), argc > 6 ? atof(argv[6]) : 1e-4);
    } else {
        odd(argv[3], !strcmp(argv[4], "vulkan"), argc > 5 ? atof(argv[5]) : 1e-4);
    }
    printf("%s\n", g_fails ? "FAILED" : "all passed");
    return g_fails ? 1 : 0;
}
