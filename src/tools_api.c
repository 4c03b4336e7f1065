/* Public API: the tool functions front ends need besides generation
 * (images and PNG text, tokenizer, .npy, device listing, self test). */
#include <stdlib.h>
#include <string.h>

#include "backend/conformance.h"
#include "core/npy.h"
#include "core/status.h"
#include "ctx.h"
#include "io/image.h"
#include "tokenizer/tokenizer.h"

static void to_limits(const sdvk_image_limits *in, sd_image_limits *out) {
    sd_image_limits_default(out);
    if (in && in->max_pixels > 0)
        out->max_pixels = in->max_pixels;
    if (in && in->max_side > 0)
        out->max_side = in->max_side;
}

sdvk_status sdvk_image_load(const char *path, const sdvk_image_limits *lim, sdvk_image *out) {
    sd_image_limits l;
    to_limits(lim, &l);
    l.name = path;
    return sd_image_load_ex(path, &l, out);
}

sdvk_status sdvk_image_load_mem(const void *data, size_t n, const sdvk_image_limits *lim,
                                sdvk_image *out) {
    sd_image_limits l;
    to_limits(lim, &l);
    return sd_image_load_mem(data, n, &l, out);
}

sdvk_status sdvk_image_resize(const sdvk_image *in, int w, int h, sdvk_image *out) {
    return sd_image_resize(in, w, h, out);
}

sdvk_status sdvk_png_write(const char *path, const sdvk_image *img, const char *infotext) {
    return sd_png_write(path, img, infotext);
}

sdvk_status sdvk_png_encode(const sdvk_image *img, const char *infotext, uint8_t **png,
                            size_t *n) {
    if (!png || !n)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_png_encode: NULL argument");
    return sd_png_encode(img, infotext, png, n);
}

sdvk_status sdvk_png_read_infotext(const void *png, size_t n, char **text) {
    if (!text)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_png_read_infotext: NULL argument");
    return sd_png_read_text(png, n, text);
}

struct sdvk_tokenizer {
    sd_tokenizer *t;
    char *path;
};

sdvk_status sdvk_tokenizer_open(const char *vocab_path, const char *model_path,
                                const char *fallback_vocab_path, sdvk_tokenizer **out) {
    if (!out)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_tokenizer_open: NULL argument");
    *out = NULL;
    sdvk_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return sd_err(SDVK_ERR_OOM, "out of memory");
    sdvk_status s = sd_tokenizer_find(vocab_path, model_path, fallback_vocab_path, &t->path);
    if (!s)
        s = sd_tokenizer_load(t->path, &t->t);
    if (s) {
        sdvk_tokenizer_close(t);
        return s;
    }
    *out = t;
    return SDVK_OK;
}

void sdvk_tokenizer_close(sdvk_tokenizer *t) {
    if (!t)
        return;
    sd_tokenizer_free(t->t);
    free(t->path);
    free(t);
}

const char *sdvk_tokenizer_path(const sdvk_tokenizer *t) { return t ? t->path : ""; }

sdvk_status sdvk_tokenizer_encode(const sdvk_tokenizer *t, const char *text, int32_t **ids, int *n) {
    if (!t || !text || !ids || !n)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_tokenizer_encode: NULL argument");
    return sd_tokenize(t->t, text, ids, n);
}

sdvk_status sdvk_tokenizer_encode_prompt(const sdvk_tokenizer *t, const char *prompt,
                                         int32_t **ids, float **weights, int *n_windows) {
    if (!t || !prompt || !ids || !weights || !n_windows)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_tokenizer_encode_prompt: NULL argument");
    int chunked = 0;
    return sd_tokenize_prompt(t->t, prompt, 1, ids, weights, n_windows, &chunked);
}

int32_t sdvk_tokenizer_special(const sdvk_tokenizer *t, int which) {
    if (!t)
        return -1;
    return which == 0 ? sd_tokenizer_bos(t->t) : which == 1 ? sd_tokenizer_eos(t->t)
                                                            : sd_tokenizer_pad(t->t);
}

sdvk_status sdvk_check_writable(const char *path) { return sd_check_writable(path); }

sdvk_status sdvk_npy_load(const char *path, void **data, char *dtype_out, int *ndim,
                          int64_t ne[8]) {
    if (!path || !data || !dtype_out || !ndim || !ne)
        return sd_err(SDVK_ERR_INVALID_ARG, "sdvk_npy_load: NULL argument");
    sd_npy a;
    SD_TRY(sd_npy_load(path, &a));
    *data = a.data;
    *dtype_out = a.dtype == SD_I32 ? 'i' : 'f';
    *ndim = a.ndim;
    memcpy(ne, a.ne, sizeof a.ne);
    return SDVK_OK;
}

sdvk_status sdvk_npy_save_f32(const char *path, const float *data, int ndim, const int64_t *ne) {
    return sd_npy_save(path, SD_F32, data, ndim, ne);
}

sdvk_status sdvk_list_devices(FILE *f, const sdvk_options *opt) {
    sdvk_options def;
    if (!opt) {
        sdvk_options_default(&def);
        opt = &def;
    }
    sd_backend *b = NULL;
    if (sd_backend_cpu_create(opt->n_threads, opt->cpu_isa, &b) == SDVK_OK) {
        fprintf(f, "CPU backend: %s\n", b->name);
        sd_backend_destroy(b);
    }
    fprintf(f, "Vulkan devices:\n");
    return sd_vulkan_list_devices(f);
}

sdvk_status sdvk_selftest(const sdvk_options *opt, double tol_scale, FILE *f, int *n_fail) {
    sdvk_options def;
    if (!opt) {
        sdvk_options_default(&def);
        opt = &def;
    }
    if (n_fail)
        *n_fail = 0;
    sd_backend *test = NULL, *ref = NULL;
    sdvk_status s;
    if (opt->backend == SDVK_BACKEND_VULKAN) {
        sd_vulkan_opts vo = {opt->device_index, (int)opt->precision, opt->validation,
                             opt->verbose};
        if (opt->precision == SDVK_PRECISION_BF16)
            return sd_err(SDVK_ERR_INVALID_ARG, "precision bf16 is a CPU precision; the Vulkan "
                          "backend computes in f32 or f16");
        s = sd_backend_vulkan_create(&vo, &test);
    } else {
        s = sd_backend_create(opt->backend, opt, &test);
    }
    if (s)
        return sd_err_prefix(s, "creating the backend under test");
    s = sd_backend_cpu_create(opt->n_threads, "ref", &ref);
    if (s) {
        sd_backend_destroy(test);
        return sd_err_prefix(s, "creating the reference backend");
    }
    /* 16-bit storage loses ~3 decimal digits against the fp32 reference */
    if (tol_scale <= 0)
        tol_scale = strstr(test->name, "f16") || strstr(test->name, "bf16") ? 1000.0 : 1.0;
    if (f) {
        fprintf(f, "selftest: %s against %s (tolerance scale %g)\n", test->name, ref->name,
                tol_scale);
        fflush(f);
    }
    s = sd_conformance_run(test, ref, tol_scale, f, n_fail);
    sd_backend_destroy(test);
    sd_backend_destroy(ref);
    return s;
}
