/* sdvk — Stable Diffusion v1.x inference in C11 (Vulkan compute or CPU).
 *
 * Public API. Every call returns an sdvk_status; on failure the calling
 * thread's last error message (sdvk_last_error) says what went wrong, naming
 * the file, tensor or option involved. No function aborts on bad input.
 *
 * Typical use:
 *     sdvk_options opt; sdvk_options_default(&opt);
 *     sdvk_ctx *ctx;
 *     if (sdvk_create("v1-5-pruned-emaonly.safetensors", &opt, &ctx)) { puts(sdvk_last_error()); ... }
 *     sdvk_gen_params p; sdvk_gen_params_default(&p);
 *     p.prompt = "a photo of a cat";
 *     sdvk_image img;
 *     if (sdvk_txt2img(ctx, &p, &img) == SDVK_OK) { ... img.data (RGB8) ...; sdvk_image_free(&img); }
 *     sdvk_destroy(ctx);
 */
#ifndef SDVK_H
#define SDVK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sdvk_status {
    SDVK_OK = 0,
    SDVK_ERR_INVALID_ARG = 1, /* a bad option or argument */
    SDVK_ERR_IO = 2,          /* a file could not be opened, read or written */
    SDVK_ERR_FORMAT = 3,      /* a file is malformed (model, image, npy, vocab) */
    SDVK_ERR_MODEL = 4,       /* the model lacks a tensor or has an unexpected shape */
    SDVK_ERR_OOM = 5,         /* out of host or device memory */
    SDVK_ERR_BACKEND = 6,     /* the compute backend failed (driver error, ...) */
    SDVK_ERR_UNSUPPORTED = 7, /* valid request this build or device cannot do */
    SDVK_ERR_NUMERIC = 8,     /* NaN or Inf appeared in a result */
    SDVK_ERR_CANCELLED = 9    /* the progress callback asked to stop */
} sdvk_status;

/* Message of the last failure on this thread ("" when none). Valid until the
 * next sdvk call on this thread. */
const char *sdvk_last_error(void);
/* Short name of a status code, e.g. "invalid argument". */
const char *sdvk_status_str(sdvk_status s);

typedef enum sdvk_backend_kind {
    SDVK_BACKEND_AUTO = 0, /* Vulkan when a device is usable, else CPU (said on stderr) */
    SDVK_BACKEND_CPU = 1,
    SDVK_BACKEND_VULKAN = 2
} sdvk_backend_kind;

typedef struct sdvk_options {
    sdvk_backend_kind backend;
    int n_threads;          /* CPU threads; 0 = number of physical cores */
    const char *vocab_path; /* CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz or a
                               tokenizer/ folder / vocab.json); NULL = search
                               SDVK_VOCAB then tokenizer/ beside the model */
    int verbose;            /* 1: log backend choices and timings to stderr */
    int device_index;       /* Vulkan device; -1 = best */
    int precision;          /* 0 auto, 1 f32, 2 f16, 3 bf16 (backend dependent) */
    int keep_graphs;        /* 1: keep CLIP, UNet and VAE prepared between and
                               during generations (faster repeated calls, more
                               memory); 0: release each network once a
                               generation is done with it (lower peak memory) */
} sdvk_options;

void sdvk_options_default(sdvk_options *opt);

typedef struct sdvk_ctx sdvk_ctx;

/* Loads a single-file SD v1.x checkpoint (.safetensors) and prepares the
 * backend. The architecture is inferred from the tensor shapes. */
sdvk_status sdvk_create(const char *model_path, const sdvk_options *opt, sdvk_ctx **out);
void sdvk_destroy(sdvk_ctx *ctx);

/* Called after each sampler step; return non-zero to cancel. */
typedef int (*sdvk_progress_fn)(void *user, int step, int n_steps);

typedef struct sdvk_gen_params {
    const char *prompt;
    const char *negative_prompt; /* NULL or "" = empty */
    int width, height;           /* multiples of 8 */
    int steps;                   /* >= 1 */
    float cfg_scale;             /* 1.0 disables guidance (single UNet batch) */
    uint64_t seed;
    float strength;              /* img2img only, in (0, 1] */
    sdvk_progress_fn progress;
    void *progress_user;
} sdvk_gen_params;

void sdvk_gen_params_default(sdvk_gen_params *p);

typedef struct sdvk_image {
    int width, height, channels; /* channels is 3 (RGB) */
    uint8_t *data;               /* row-major, width*height*channels bytes */
} sdvk_image;

void sdvk_image_free(sdvk_image *img);

sdvk_status sdvk_txt2img(sdvk_ctx *ctx, const sdvk_gen_params *p, sdvk_image *out);
/* init is resized by the caller to p->width x p->height. */
sdvk_status sdvk_img2img(sdvk_ctx *ctx, const sdvk_gen_params *p, const sdvk_image *init,
                         sdvk_image *out);

/* Name of the backend the context runs on ("cpu-ref", "cpu-avx512", "vulkan: <device>"). */
const char *sdvk_backend_name(const sdvk_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
