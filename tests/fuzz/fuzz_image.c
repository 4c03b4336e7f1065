/* Fuzz target: image decoding + resampling, as the CLI and the coming
 * server use them: an init image (decoded, resized to the generation size)
 * and a mask (decoded, turned into one grey channel, resized to the image
 * size and to the latent size).
 *
 * Input: the encoded file itself (PNG, JPEG, BMP or anything else), so every
 * seed and regression input is a real file. Limits: 1 Mpx, to keep each run
 * fast; the limit checks themselves are the same code at any value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "fuzz_common.h"
#include "io/image.h"

#define FUZZ_MAX_PIXELS (1 << 20)

/* Reads every byte (ASan checks the whole buffer was allocated) and checks
 * the shape a successful call promises. */
static unsigned touch(const sdvk_image *img, int w, int h, int c) {
    FUZZ_CHECK(img->data != NULL);
    FUZZ_CHECK(img->width == w && img->height == h && img->channels == c);
    unsigned s = 0;
    size_t n = (size_t)w * (size_t)h * (size_t)c;
    for (size_t i = 0; i < n; i++) s += img->data[i];
    return s;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_image_limits lim;
    sd_image_limits_default(&lim);
    lim.max_pixels = FUZZ_MAX_PIXELS;
    lim.name = "fuzz input";
    sdvk_image img;
    sdvk_status s = sd_image_load_mem(data, size, &lim, &img);
    if (s != SDVK_OK) {
        FUZZ_CHECK_MSG();
        FUZZ_CHECK(img.data == NULL && img.width == 0);
        return 0;
    }
    FUZZ_CHECK(img.width >= 1 && img.height >= 1);
    FUZZ_CHECK((int64_t)img.width * img.height <= FUZZ_MAX_PIXELS);
    unsigned sum = touch(&img, img.width, img.height, 3);

    /* Init image: to 64x64 (the 77x77 -> 64 case of issue 19) and to a size
     * derived from the input (odd factors both ways). */
    sdvk_image r;
    FUZZ_CHECK(sd_image_resize(&img, 64, 64, &r) == SDVK_OK);
    sum += touch(&r, 64, 64, 3);
    sdvk_image_free(&r);
    int w2 = clampi(img.width * 3 / 2 + 1, 1, 300), h2 = clampi(img.height / 3 + 1, 1, 300);
    FUZZ_CHECK(sd_image_resize(&img, w2, h2, &r) == SDVK_OK);
    sum += touch(&r, w2, h2, 3);
    sdvk_image_free(&r);

    /* Mask: grey (the luma an inpainting mask is read as), to the image size
     * of a 512-wide generation scaled down to the input, and to the latent. */
    sdvk_image m = {img.width, img.height, 1, malloc((size_t)img.width * (size_t)img.height)};
    FUZZ_CHECK(m.data != NULL);
    for (size_t i = 0; i < (size_t)img.width * (size_t)img.height; i++) {
        const uint8_t *p = img.data + 3 * i;
        m.data[i] = (uint8_t)((p[0] * 299u + p[1] * 587u + p[2] * 114u + 500u) / 1000u);
    }
    int lw = clampi(img.width / 8, 1, 64), lh = clampi(img.height / 8, 1, 64);
    FUZZ_CHECK(sd_image_resize(&m, lw, lh, &r) == SDVK_OK);
    sum += touch(&r, lw, lh, 1);
    sdvk_image_free(&r);
    FUZZ_CHECK(sd_image_resize(&m, 77, 5, &r) == SDVK_OK);
    sum += touch(&r, 77, 5, 1);
    sdvk_image_free(&r);
    free(m.data);
    sdvk_image_free(&img);
    /* Keeps the sums from being optimised away. */
    volatile unsigned sink = sum;
    (void)sink;
    return 0;
}
