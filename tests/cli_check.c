/* Helper for tests/test_cli.sh: checks on the files the CLI writes.
 *
 *   cli_check npycmp OUT.npy REF.npy TOL [ROW]
 *       same shape (or OUT == REF[ROW] with a leading batch dim of 1) and
 *       relative L2 error ||out - ref|| / ||ref|| <= TOL
 *   cli_check png FILE W H LINE...
 *       an RGB PNG of W x H whose tEXt "parameters" text starts with the
 *       LINEs joined by '\n' (no LINE: any text, or none)
 *   cli_check mknpy FILE D0 [D1 ...]
 *       writes a float32 array of zeros with that shape
 * Exit 0 when the check passes, 1 with a message otherwise. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "io/image.h"

static int fail(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "cli_check: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

static int npycmp(int argc, char **argv) {
    if (argc < 5)
        return fail("usage: npycmp OUT REF TOL [ROW]%s%s", "", "");
    sd_npy out, ref;
    if (sd_npy_load(argv[2], &out) != SDVK_OK)
        return fail("%s: %s", argv[2], sdvk_last_error());
    if (sd_npy_load(argv[3], &ref) != SDVK_OK)
        return fail("%s: %s", argv[3], sdvk_last_error());
    double tol = atof(argv[4]);
    const float *r = ref.data;
    int64_t n = sd_npy_nelem(&ref);
    int shape_ok = out.ndim == ref.ndim && out.dtype == SD_F32 && ref.dtype == SD_F32;
    if (argc > 5) { /* compare with one row of the reference */
        int64_t row = atoll(argv[5]);
        n /= ref.ne[0];
        r += row * n;
        shape_ok = shape_ok && out.ne[0] == 1 && row >= 0 && row < ref.ne[0];
        for (int k = 1; shape_ok && k < ref.ndim; k++)
            shape_ok = out.ne[k] == ref.ne[k];
    } else {
        for (int k = 0; shape_ok && k < ref.ndim; k++)
            shape_ok = out.ne[k] == ref.ne[k];
    }
    if (!shape_ok) {
        fprintf(stderr, "cli_check: shape/dtype of %s (ndim %d:", argv[2], out.ndim);
        for (int k = 0; k < out.ndim; k++)
            fprintf(stderr, " %lld", (long long)out.ne[k]);
        fprintf(stderr, ") does not match %s (ndim %d:", argv[3], ref.ndim);
        for (int k = 0; k < ref.ndim; k++)
            fprintf(stderr, " %lld", (long long)ref.ne[k]);
        fprintf(stderr, ")\n");
        return 1;
    }
    const float *o = out.data;
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)o[i] - (double)r[i];
        num += d * d;
        den += (double)r[i] * r[i];
    }
    double rel = sqrt(num) / (sqrt(den) > 0 ? sqrt(den) : 1.0);
    printf("cli_check: %s vs %s: relative L2 error %.3g (tolerance %.3g)\n", argv[2], argv[3], rel,
           tol);
    sd_npy_free(&out);
    sd_npy_free(&ref);
    return !(rel <= tol); /* NaN fails */
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int png(int argc, char **argv) {
    if (argc < 5)
        return fail("usage: png FILE W H LINE...%s%s", "", "");
    FILE *f = fopen(argv[2], "rb");
    if (!f)
        return fail("%s: cannot open%s", argv[2], "");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf || size < 33 || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        return fail("%s: cannot read or too short%s", argv[2], "");
    }
    fclose(f);
    if (memcmp(buf, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(buf + 12, "IHDR", 4) != 0)
        return fail("%s: not a PNG%s", argv[2], "");
    uint32_t w = be32(buf + 16), h = be32(buf + 20);
    if (w != (uint32_t)atol(argv[3]) || h != (uint32_t)atol(argv[4])) {
        fprintf(stderr, "cli_check: %s is %ux%u, expected %sx%s\n", argv[2], w, h, argv[3], argv[4]);
        return 1;
    }
    /* Expected text: the LINE arguments joined with '\n'. */
    size_t elen = 0;
    for (int k = 5; k < argc; k++)
        elen += strlen(argv[k]) + 1;
    char *exp = calloc(elen + 1, 1);
    for (int k = 5; k < argc; k++) {
        if (k > 5)
            strcat(exp, "\n");
        strcat(exp, argv[k]);
    }
    /* Walk the chunks for tEXt "parameters". */
    long pos = 8;
    int found = 0;
    while (pos + 12 <= size) {
        uint32_t len = be32(buf + pos);
        if (len > (uint32_t)(size - pos - 12))
            return fail("%s: truncated chunk%s", argv[2], "");
        const unsigned char *type = buf + pos + 4, *data = buf + pos + 8;
        if (memcmp(type, "tEXt", 4) == 0 && len >= 11 && memcmp(data, "parameters\0", 11) == 0) {
            size_t tl = len - 11;
            char *text = malloc(tl + 1);
            memcpy(text, data + 11, tl);
            text[tl] = '\0';
            printf("cli_check: parameters = \"%s\"\n", text);
            if (tl < strlen(exp) || memcmp(text, exp, strlen(exp)) != 0) {
                fprintf(stderr, "cli_check: parameters text does not start with \"%s\"\n", exp);
                return 1;
            }
            free(text);
            found = 1;
        }
        pos += 12 + (long)len;
    }
    free(exp);
    free(buf);
    if (!found && argc > 5)
        return fail("%s: no tEXt chunk with keyword \"parameters\"%s", argv[2], "");
    return 0;
}

static int mknpy(int argc, char **argv) {
    if (argc < 4 || argc - 3 > SD_NPY_MAX_DIMS)
        return fail("usage: mknpy FILE D0 [D1 ...]%s%s", "", "");
    int64_t ne[SD_NPY_MAX_DIMS], n = 1;
    int nd = argc - 3;
    for (int k = 0; k < nd; k++) {
        ne[k] = atoll(argv[3 + k]);
        n *= ne[k];
    }
    float *d = calloc(n > 0 ? (size_t)n : 1, sizeof *d);
    if (!d || sd_npy_save(argv[2], SD_F32, d, nd, ne) != SDVK_OK)
        return fail("%s: %s", argv[2], sdvk_last_error());
    free(d);
    return 0;
}

/* mkmask FILE W H: an RGB PNG, left half black (keep), right half white. */
static int mkmask(int argc, char **argv) {
    if (argc < 5)
        return fail("usage: mkmask FILE W H%s%s", "", "");
    int w = atoi(argv[3]), h = atoi(argv[4]);
    sdvk_image im = {w, h, 3, calloc((size_t)w * h * 3 + 1, 1)};
    for (int y = 0; y < h; y++)
        for (int x = w / 2; x < w; x++) memset(im.data + ((size_t)y * w + x) * 3, 255, 3);
    sdvk_status s = sd_png_write(argv[2], &im, NULL);
    free(im.data);
    return s ? fail("%s: %s", argv[2], sdvk_last_error()) : 0;
}

/* samepixels A B TOL: same size, every channel within TOL. */
static int samepixels(int argc, char **argv) {
    if (argc < 5)
        return fail("usage: samepixels A B TOL%s%s", "", "");
    sdvk_image a, b;
    if (sd_image_load(argv[2], &a) || sd_image_load(argv[3], &b))
        return fail("%s: %s", argv[2], sdvk_last_error());
    int tol = atoi(argv[4]), worst = 0;
    if (a.width != b.width || a.height != b.height)
        return fail("%s and %s differ in size%s", argv[2], argv[3]);
    for (size_t i = 0; i < (size_t)a.width * a.height * 3; i++) {
        int d = abs((int)a.data[i] - (int)b.data[i]);
        worst = d > worst ? d : worst;
    }
    printf("cli_check: largest channel difference %d (tol %d)\n", worst, tol);
    sdvk_image_free(&a);
    sdvk_image_free(&b);
    return worst <= tol ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "mkmask") == 0)
        return mkmask(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "samepixels") == 0)
        return samepixels(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "npycmp") == 0)
        return npycmp(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "png") == 0)
        return png(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "mknpy") == 0)
        return mknpy(argc, argv);
    return fail("usage: cli_check npycmp|png|mknpy ...%s%s", "", "");
}
