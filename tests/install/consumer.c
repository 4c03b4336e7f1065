/* A program that uses an installed sdvk: one picture from the installed
 * demo model through the public API only.  consumer MODEL OUT.png */
#include <stdio.h>

#include <sdvk.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: consumer MODEL OUT.png\n");
        return 2;
    }
    sdvk_options opt;
    sdvk_options_default(&opt);
    opt.backend = SDVK_BACKEND_CPU;
    sdvk_ctx *ctx;
    if (sdvk_create(argv[1], &opt, &ctx) != SDVK_OK) {
        fprintf(stderr, "sdvk_create: %s\n", sdvk_last_error());
        return 1;
    }
    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.prompt = "a red circle on a blue background";
    p.steps = 8;
    sdvk_result r;
    if (sdvk_generate(ctx, &p, &r) != SDVK_OK) {
        fprintf(stderr, "sdvk_generate: %s\n", sdvk_last_error());
        sdvk_destroy(ctx);
        return 1;
    }
    int rc = sdvk_png_write(argv[2], &r.images[0], r.infotexts[0]) == SDVK_OK ? 0 : 1;
    printf("sdvk %s: %dx%d picture, seed %llu, backend %s -> %s\n", sdvk_version(),
           r.images[0].width, r.images[0].height, (unsigned long long)r.seeds[0],
           sdvk_backend_name(ctx), argv[2]);
    sdvk_result_free(&r);
    sdvk_destroy(ctx);
    return rc;
}
