/* Every stage of the tiny SD-layout model against PyTorch goldens
 * (tools/make_fixtures.py). Usage: test_model DATA_DIR BACKEND [TOL_SCALE]
 * BACKEND: cpu | vulkan (the CPU ISA comes from SDVK_CPU_ISA). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/npy.h"
#include "io/safetensors.h"
#include "stage.h"

static const char *dir;
static int failures;

static sd_npy load(const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    sd_npy a;
    if (sd_npy_load(p, &a)) {
        fprintf(stderr, "FATAL: %s\n", sdvk_last_error());
        exit(2);
    }
    return a;
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
                  const char *golden, double tol) {
    if (s) {
        printf("FAIL %-28s error: %s\n", what, sdvk_last_error());
        failures++;
        return;
    }
    sd_npy g = load(golden);
    int ok = g.ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = g.ne[d] == ne[d];
    if (!ok) {
        printf("FAIL %-28s shape mismatch with %s\n", what, golden);
        failures++;
    } else {
        double e = rel_l2(out, g.data, sd_npy_nelem(&g));
        int pass = e <= tol && isfinite(e);
        printf("%s %-28s rel_l2 %.3g (tol %.1g)\n", pass ? "ok  " : "FAIL", what, e, tol);
        failures += !pass;
    }
    sd_npy_free(&g);
    free(out);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_model DATA_DIR cpu|vulkan [TOL_SCALE]\n");
        return 2;
    }
    dir = argv[1];
    double ts = argc > 3 ? atof(argv[3]) : 1.0;
    sdvk_options opt;
    sdvk_options_default(&opt);
    opt.backend = !strcmp(argv[2], "vulkan") ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU;
    opt.n_threads = 2;
    char model[1024];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    sdvk_ctx *ctx;
    if (sdvk_create(model, &opt, &ctx)) {
        fprintf(stderr, "FATAL: %s\n", sdvk_last_error());
        return 1;
    }
    printf("backend: %s\n", sdvk_backend_name(ctx));
    float *out;
    int64_t ne[5];

    /* CLIP */
    sd_npy tok = load("clip_tokens.npy");
    sdvk_status s = sd_stage_clip(ctx, tok.data, (int)tok.ne[0], (int)tok.ne[1], &out, ne);
    check("clip [2,77]", s, out, ne, 3, "clip_out.npy", 1e-4 * ts);
    /* Short token lists are padded with 49407 to the same result. */
    int32_t shortids[7];
    memcpy(shortids, tok.data, sizeof shortids);
    s = sd_stage_clip(ctx, shortids, 1, 7, &out, ne);
    if (!s) {
        sd_npy g = load("clip_out.npy");
        double e = rel_l2(out, g.data, ne[1] * ne[2]);
        printf("%s %-28s rel_l2 %.3g\n", e <= 1e-4 * ts ? "ok  " : "FAIL", "clip padded short list", e);
        failures += !(e <= 1e-4 * ts);
        sd_npy_free(&g);
        free(out);
    } else {
        printf("FAIL clip short: %s\n", sdvk_last_error());
        failures++;
    }
    sd_npy_free(&tok);

    /* UNet */
    struct {
        const char *lat, *ctxf, *gold;
        float t;
    } uc[] = {
        {"unet_latent_b1.npy", "unet_context_b1.npy", "unet_b1_t981.npy", 981},
        {"unet_latent_b1.npy", "unet_context_b1.npy", "unet_b1_t1.npy", 1},
        {"unet_latent_b2.npy", "unet_context_b2.npy", "unet_b2_t981.npy", 981},
        {"unet_latent_b2.npy", "unet_context_b2.npy", "unet_b2_t1.npy", 1},
        {"unet_latent_b2.npy", "unet_context_b1.npy", "unet_b2_ctx1_t500.npy", 500},
        {"unet_latent_rect.npy", "unet_context_b1.npy", "unet_rect_t500.npy", 500},
    };
    for (size_t i = 0; i < sizeof uc / sizeof uc[0]; i++) {
        sd_npy l = load(uc[i].lat), c = load(uc[i].ctxf);
        s = sd_stage_unet(ctx, l.data, l.ne, uc[i].t, c.data, c.ne, &out, ne);
        char what[64];
        snprintf(what, sizeof what, "unet %s", uc[i].gold);
        check(what, s, out, ne, 4, uc[i].gold, 1e-3 * ts);
        sd_npy_free(&l);
        sd_npy_free(&c);
    }

    /* VAE */
    const char *dec[][2] = {{"vae_decode_in.npy", "vae_decode_out.npy"},
                            {"vae_decode_rect_in.npy", "vae_decode_rect_out.npy"}};
    for (int i = 0; i < 2; i++) {
        sd_npy z = load(dec[i][0]);
        s = sd_stage_vae_decode(ctx, z.data, z.ne, &out, ne);
        check(dec[i][1], s, out, ne, 4, dec[i][1], 1e-3 * ts);
        sd_npy_free(&z);
    }
    sd_npy im = load("vae_encode_in.npy");
    s = sd_stage_vae_encode(ctx, im.data, im.ne, &out, ne);
    check("vae_encode", s, out, ne, 4, "vae_encode_out.npy", 1e-3 * ts);
    sd_npy_free(&im);

    /* DDPM loop, CFG and without */
    sd_npy c2 = load("sample_context.npy"), c1 = load("unet_context_b1.npy");
    sd_npy x0 = load("sample_x0.npy"), nz = load("sample_noise.npy");
    s = sd_stage_sample(ctx, c2.data, c2.ne, x0.data, x0.ne, 4, 7.5f, nz.data, nz.ne, 0, &out, ne);
    check("sample 4 steps cfg 7.5", s, out, ne, 4, "sample_out.npy", 2e-3 * ts);
    s = sd_stage_sample(ctx, c1.data, c1.ne, x0.data, x0.ne, 4, 1.0f, nz.data, nz.ne, 0, &out, ne);
    check("sample 4 steps cfg 1", s, out, ne, 4, "sample_cfg1_out.npy", 2e-3 * ts);
    /* Wrong context batch for CFG is refused with a message. */
    s = sd_stage_sample(ctx, c1.data, c1.ne, x0.data, x0.ne, 4, 7.5f, nz.data, nz.ne, 0, &out, ne);
    if (s == SDVK_OK || !strstr(sdvk_last_error(), "context batch")) {
        printf("FAIL sample with a batch-1 context and cfg 7.5 was not refused clearly\n");
        failures++;
        if (!s)
            free(out);
    } else {
        printf("ok   bad context batch refused: %s\n", sdvk_last_error());
    }
    sd_npy_free(&c2);
    sd_npy_free(&c1);
    sd_npy_free(&x0);
    sd_npy_free(&nz);
    sdvk_destroy(ctx);

    /* A checkpoint missing one tensor deep inside the UNet: a clear error
     * naming the key, no crash (ASan runs this too). */
    sd_safetensors *st;
    const char *gone = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
    if (sd_st_open(model, &st) == SDVK_OK) {
        sd_st_write_item *items = calloc((size_t)st->n, sizeof *items);
        int n = 0;
        for (int i = 0; i < st->n; i++) {
            const sd_st_tensor *t = &st->t[i];
            if (!t->supported || !strcmp(t->name, gone))
                continue;
            items[n].name = t->name;
            items[n].dtype = t->dtype;
            items[n].ndim = t->ndim;
            memcpy(items[n].ne, t->ne, sizeof t->ne);
            items[n].data = t->data;
            n++;
        }
        char cut[] = "/tmp/sdvk_missing_XXXXXX";
        int fd = mkstemp(cut);
        if (fd >= 0)
            close(fd);
        const char *meta[] = {"sdvk.clip.num_heads", sd_st_meta(st, "sdvk.clip.num_heads")};
        sdvk_status ws = sd_st_write(cut, items, n, meta, meta[1] ? 1 : 0);
        sd_st_close(st);
        free(items);
        sdvk_ctx *c2 = NULL;
        sd_npy l = load("unet_latent_b1.npy"), c = load("unet_context_b1.npy");
        s = ws ? ws : sdvk_create(cut, &opt, &c2);
        if (!s)
            s = sd_stage_unet(c2, l.data, l.ne, 500, c.data, c.ne, &out, ne);
        int ok = s == SDVK_ERR_MODEL && strstr(sdvk_last_error(), gone);
        printf("%s missing tensor: %s\n", ok ? "ok  " : "FAIL", sdvk_last_error());
        failures += !ok;
        if (!s)
            free(out);
        sdvk_destroy(c2);
        sd_npy_free(&l);
        sd_npy_free(&c);
        remove(cut);
    } else {
        printf("FAIL reopen: %s\n", sdvk_last_error());
        failures++;
    }
    printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
