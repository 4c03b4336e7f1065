/* sdvk — Stable Diffusion v1.x inference in C11 (Vulkan compute or CPU).
 *
 * The public API: the only door for the command line, the HTTP server and
 * your own programs.
 *
 *     sdvk_options opt; sdvk_options_default(&opt);
 *     sdvk_ctx *ctx;
 *     if (sdvk_create("v1-5-pruned-emaonly.safetensors", &opt, &ctx)) { puts(sdvk_last_error()); ... }
 *     sdvk_gen_params p; sdvk_gen_params_default(&p);
 *     p.prompt = "a photo of a cat";
 *     sdvk_result r;
 *     if (sdvk_generate(ctx, &p, &r) == SDVK_OK) {
 *         sdvk_png_write("cat.png", &r.images[0], r.infotexts[0]);
 *         sdvk_result_free(&r);
 *     }
 *     sdvk_destroy(ctx);
 *
 * Errors: every call returns an sdvk_status; on failure the calling
 * thread's sdvk_last_error() says what went wrong, naming the file, tensor,
 * parameter or limit involved. No function aborts or exits on bad input.
 *
 * Threading: a context is used by one thread at a time (calls on one
 * context must not overlap), except sdvk_cancel, which any thread may call
 * at any time. Different contexts are independent and may run on different
 * threads at once. Contexts do not share a loaded model: the resident
 * weights are converted for, and owned by, one context's backend (packed
 * SIMD panels, device buffers), and a backend's queue and thread pool serve
 * one request at a time; the checkpoint file itself is memory-mapped, so
 * two contexts on one file share its pages through the OS. A server keeps
 * one context per model and queues requests to it.
 *
 * Memory: a context keeps what it prepared (resident weights per network,
 * a few planned graphs per size) between generations, so the second picture
 * pays no weight conversion or upload (keep = SDVK_KEEP_ALL, the default);
 * SDVK_KEEP_NONE frees each network as soon as a generation is done with it
 * (the lowest peak memory for one-shot use, as the CLI does); sdvk_trim frees
 * everything prepared on demand.
 *
 * Environment variables: the library reads none, except debugging and test
 * hooks of the Vulkan backend (SDVK_VK_PRECISION, SDVK_VK_VALIDATION,
 * SDVK_VK_MAX_STORAGE_RANGE, SDVK_VK_ARENA_BLOCK, SDVK_VK_PROFILE), the op
 * filter of the self test (SDVK_CONFORMANCE_OPS) and XDG_CACHE_HOME/HOME for
 * the Vulkan pipeline cache. sdvk_options_from_env takes the user-facing ones (SDVK_VOCAB,
 * SDVK_CPU_ISA, SDVK_VALIDATION, SDVK_PRECISION) into options for front ends
 * that want them. */
#ifndef SDVK_H
#define SDVK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SDVK_VERSION_MAJOR 0
#define SDVK_VERSION_MINOR 2
#define SDVK_VERSION_PATCH 0
/* "0.2.0" */
const char *sdvk_version(void);

typedef enum sdvk_status {
    SDVK_OK = 0,
    SDVK_ERR_INVALID_ARG = 1, /* a bad option or argument */
    SDVK_ERR_IO = 2,          /* a file could not be opened, read or written */
    SDVK_ERR_FORMAT = 3,      /* a file is malformed (model, image, npy, vocab) */
    SDVK_ERR_MODEL = 4,       /* the model lacks a tensor or has an unexpected shape */
    SDVK_ERR_OOM = 5,         /* out of host or device memory, or over a configured limit */
    SDVK_ERR_BACKEND = 6,     /* the compute backend failed (driver error, ...) */
    SDVK_ERR_UNSUPPORTED = 7, /* valid request this build or device cannot do */
    SDVK_ERR_NUMERIC = 8,     /* NaN or Inf appeared in a result */
    SDVK_ERR_CANCELLED = 9    /* the progress callback or sdvk_cancel asked to stop */
} sdvk_status;

/* Message of the last failure on this thread ("" when none). Valid until the
 * next sdvk call on this thread. */
const char *sdvk_last_error(void);
/* Short name of a status code, e.g. "invalid argument". */
const char *sdvk_status_str(sdvk_status s);

/* ---- choices ------------------------------------------------------------ */

typedef enum sdvk_backend_kind {
    SDVK_BACKEND_AUTO = 0, /* Vulkan when a (non-software) device is usable, else the CPU */
    SDVK_BACKEND_CPU = 1,
    SDVK_BACKEND_VULKAN = 2
} sdvk_backend_kind;

typedef enum sdvk_precision {
    SDVK_PRECISION_AUTO = 0, /* Vulkan: f16 storage where the device has it; CPU: f32 */
    SDVK_PRECISION_F32 = 1,
    SDVK_PRECISION_F16 = 2,  /* Vulkan only: 16-bit storage, fp32 arithmetic */
    SDVK_PRECISION_BF16 = 3  /* CPU only: AVX-512 BF16 GEMM */
} sdvk_precision;

/* Weight storage of the compute backend. */
typedef enum sdvk_weights {
    SDVK_WEIGHTS_AUTO = 0, /* as the file stores them (f32, f16, bf16, or 8-bit from `sdvk convert`) */
    SDVK_WEIGHTS_Q8 = 1    /* CPU: matmul/conv weights made 8-bit at load (int8 + an fp16 scale per
                              32 values, q8_0-like): about half of f16's memory; Vulkan keeps its
                              own precision */
} sdvk_weights;

/* Samplers, by their k-diffusion names (sdvk_sampler_name) with A1111's
 * display names (sdvk_sampler_display_name). */
typedef enum sdvk_sampler {
    SDVK_SAMPLER_EULER = 0,     /* "euler", Euler */
    SDVK_SAMPLER_EULER_A,       /* "euler_a", Euler a */
    SDVK_SAMPLER_HEUN,          /* "heun", Heun (2 model evaluations per step) */
    SDVK_SAMPLER_DPM2,          /* "dpm2", DPM2 (2 evaluations per step) */
    SDVK_SAMPLER_DPMPP_2M,      /* "dpm++2m", DPM++ 2M */
    SDVK_SAMPLER_DPMPP_2M_SDE,  /* "dpm++2m_sde", DPM++ 2M SDE */
    SDVK_SAMPLER_DPMPP_2S_A,    /* "dpm++2s_a", DPM++ 2S a (2 evaluations per step) */
    SDVK_SAMPLER_LMS,           /* "lms", LMS (order 4) */
    SDVK_SAMPLER_DDIM,          /* "ddim", DDIM (diffusers' DDIMScheduler) */
    SDVK_SAMPLER_LCM,           /* "lcm", LCM (diffusers' LCMScheduler) */
    SDVK_SAMPLER_DDPM,          /* "ddpm", DDPM (diffusers' DDPMScheduler) */
    SDVK_SAMPLER_COUNT
} sdvk_sampler;

typedef enum sdvk_schedule {
    SDVK_SCHEDULE_DEFAULT = 0,  /* the sampler's own: discrete */
    SDVK_SCHEDULE_DISCRETE,     /* "discrete": the model's timesteps (A1111 "Uniform") */
    SDVK_SCHEDULE_KARRAS,       /* "karras" */
    SDVK_SCHEDULE_EXPONENTIAL,  /* "exponential" */
    SDVK_SCHEDULE_SGM_UNIFORM,  /* "sgm_uniform" */
    SDVK_SCHEDULE_SIMPLE,       /* "simple" */
    SDVK_SCHEDULE_COUNT
} sdvk_schedule;

/* Initial and per-step noise generators. */
typedef enum sdvk_rng {
    SDVK_RNG_CPU = 0,  /* "cpu": torch.randn on the CPU (torch.Generator().manual_seed(seed)), as ComfyUI */
    SDVK_RNG_CUDA = 1, /* "cuda": torch.randn(device="cuda") (Philox), as A1111's default */
    SDVK_RNG_SDVK = 2  /* "sdvk": sdvk 0.1's own generator (xoshiro256**), for old seeds */
} sdvk_rng;

/* Names: "dpm++2m"; A1111's "DPM++ 2M"; sdvk_sampler_from_name also takes
 * A1111 display names, stable-diffusion.cpp names and case-insensitive
 * variants; -1 when unknown. */
const char *sdvk_sampler_name(sdvk_sampler s);
const char *sdvk_sampler_display_name(sdvk_sampler s);
int sdvk_sampler_from_name(const char *name);
const char *sdvk_schedule_name(sdvk_schedule s);         /* "karras" */
const char *sdvk_schedule_display_name(sdvk_schedule s); /* "Karras" */
int sdvk_schedule_from_name(const char *name);
const char *sdvk_rng_name(sdvk_rng r);
int sdvk_rng_from_name(const char *name);

/* ---- the context --------------------------------------------------------- */

typedef enum sdvk_keep {
    SDVK_KEEP_ALL = 0,  /* keep resident weights and planned graphs (library default) */
    SDVK_KEEP_NONE = 1  /* free each network once a generation is done with it */
} sdvk_keep;

/* VAE tiling: the VAE runs in bands of rows, each with a one-row halo, and
 * the GroupNorms take statistics of the whole picture (accumulated band by
 * band), so a tiled run computes what the whole one does: no seams, no tone
 * shift between tiles (checked to 2e-3 relative L2). Bands are planned
 * before running from the memory budget and the device's limits. */
typedef enum sdvk_tiling {
    SDVK_TILING_AUTO = 0, /* tile only when the whole VAE run would not fit */
    SDVK_TILING_ON = 1,
    SDVK_TILING_OFF = 2
} sdvk_tiling;
const char *sdvk_tiling_name(sdvk_tiling t);
int sdvk_tiling_from_name(const char *name);

typedef enum sdvk_log_level { SDVK_LOG_ERROR = 0, SDVK_LOG_WARN = 1, SDVK_LOG_INFO = 2, SDVK_LOG_DEBUG = 3 } sdvk_log_level;
/* Receives the context's messages (one line, no newline). Called on the
 * thread that made the call. */
typedef void (*sdvk_log_fn)(void *user, sdvk_log_level level, const char *msg);

typedef struct sdvk_options {
    sdvk_backend_kind backend;
    int n_threads;          /* CPU threads; 0 = physical cores */
    int device_index;       /* Vulkan device; -1 = best */
    sdvk_precision precision;
    const char *cpu_isa;    /* NULL = best the CPU has; "ref", "avx2", "avx512", "neon", "neondot" ... */
    int validation;         /* 1: Vulkan validation layer on; its errors fail the run */
    const char *vocab_path; /* CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz, vocab.json or a
                               tokenizer/ folder); NULL = the model's own (tokenizer/ beside
                               the checkpoint, or in a diffusers folder) */
    const char *fallback_vocab_path; /* used when the model has none of its own */
    const char *vae_path;   /* a separate VAE file replacing the checkpoint's; NULL = none */
    const char *lora_dir;   /* where <lora:NAME:W> in prompts looks for NAME.safetensors */
    const char *embedding_dir; /* textual-inversion embeddings named in prompts */
    /* TAESD (madebyollin's tiny autoencoder; diffusers' AutoencoderTiny
     * .safetensors, or its taesd_decoder file): previews decode with it
     * (else a linear latent-to-RGB map at latent size), and with taesd_final
     * the pictures too (fast, approximate: no fine detail) */
    const char *taesd_path;
    int taesd_final;
    sdvk_keep keep;
    sdvk_tiling vae_tiling;
    /* Memory budget in MB (10^6 bytes): host memory of the process with the
     * CPU backend (its peak resident set), device memory with Vulkan; plans
     * keep 5 % of it in reserve. 0 = what the system or device has. Planning
     * uses it: VAE tiling (auto), and a UNet that evaluates the CFG pair one
     * half at a time when both together would not fit. */
    int max_memory_mb;
    int vae_tile_rows;      /* rows per VAE band (of each segment's output); 0 = planned */
    int verbose;            /* 1: log INFO (backend choices, per-stage timings); 2: DEBUG */
    sdvk_log_fn log;        /* NULL: messages go to stderr as "sdvk: ..." */
    void *log_user;
    sdvk_weights weights;   /* weight storage (AUTO: as stored) */
} sdvk_options;

void sdvk_options_default(sdvk_options *opt);
/* Takes SDVK_VOCAB (fallback_vocab_path), SDVK_CPU_ISA, SDVK_VALIDATION=1
 * and SDVK_PRECISION=auto|f32|f16|bf16 from the environment into opt. The
 * strings stay owned by the environment. */
void sdvk_options_from_env(sdvk_options *opt);

typedef struct sdvk_ctx sdvk_ctx;

/* Opens an SD v1.x model and its backend: a single-file checkpoint
 * (.safetensors; .ckpt), or a diffusers folder. The architecture is inferred
 * from the tensor shapes. Nothing is converted yet: each network's weights
 * are prepared the first time a generation needs them. */
sdvk_status sdvk_create(const char *model_path, const sdvk_options *opt, sdvk_ctx **out);
void sdvk_destroy(sdvk_ctx *ctx);
/* Frees every prepared graph and resident weight (the next generation
 * prepares again); the model stays open. */
void sdvk_trim(sdvk_ctx *ctx);
/* Asks the running generation on ctx to stop: the CPU backend stops within
 * the current step, Vulkan after the step the device is on; the call then
 * returns SDVK_ERR_CANCELLED. Safe from any thread, also from a signal
 * handler. The flag is cleared when the next generation starts. */
void sdvk_cancel(sdvk_ctx *ctx);

/* What the context was built for. */
typedef struct sdvk_model_info {
    int native_width, native_height; /* the size the model was trained at (512 for SD v1.x) */
    int size_multiple;   /* width/height must be multiples of this (8) */
    int max_side;        /* largest width/height accepted */
    int inpainting;      /* 1: a 9-channel inpainting UNet */
    int vae_factor;      /* 8 */
    int clip_layers;     /* for clip_skip */
} sdvk_model_info;
sdvk_status sdvk_model_info_get(const sdvk_ctx *ctx, sdvk_model_info *info);

/* Name of the backend the context runs on ("cpu (avx512, 2 threads)",
 * "vulkan: <device> (f16)"). */
const char *sdvk_backend_name(const sdvk_ctx *ctx);

/* Counters for tests, benchmarks and /metrics. */
typedef struct sdvk_stats {
    long weights_prepared;   /* single weights converted or uploaded to the backend so far */
    long weights_resident;   /* weights held in the backend's form now */
    size_t weight_bytes;     /* their size */
    long graphs_prepared;    /* graphs planned and prepared (recorded on Vulkan) */
    long graphs_cached;      /* prepared graphs held now */
    long images;             /* images generated */
    long model_evals;        /* UNet evaluations (a CFG pair counts once) */
    double seconds_sampling; /* wall time in the sampler loops */
    double seconds_preparing; /* wall time preparing graphs on the backend: weight
                                 conversion/upload, arenas, command buffer recording */
    long vae_tiled;          /* VAE decodes/encodes run in bands */
    long cfg_split;          /* sampler runs that evaluated the CFG pair half by half */
} sdvk_stats;
void sdvk_stats_get(const sdvk_ctx *ctx, sdvk_stats *st);

/* ---- extra networks: LoRA, textual-inversion embeddings ------------------------ */

/* LoRAs are merged into the context's resident weights (undone and redone
 * when the set changes; the checkpoint file is never touched). A prompt
 * names them as A1111 does: <lora:NAME:W> (W = 1 when left out; <lora:NAME:TE:UNET>
 * gives the text encoder and the UNet their own weights), NAME being a file
 * in options.lora_dir (.safetensors, .pt, .ckpt; kohya/A1111, LoCon and
 * diffusers/PEFT key styles). Names are never paths. Embeddings are used
 * where the prompt names a file of options.embedding_dir (A1111 .pt,
 * .safetensors, diffusers .bin). */
typedef struct sdvk_lora {
    const char *path;  /* a file, or a NAME looked up in options.lora_dir */
    float te_weight;   /* text encoder */
    float unet_weight;
} sdvk_lora;
/* The LoRAs of generations whose prompt names none (and of the stage
 * functions); n = 0 removes them. Loads and checks the files now. */
sdvk_status sdvk_set_loras(sdvk_ctx *ctx, const sdvk_lora *loras, int n);

typedef struct sdvk_file_list {
    int n;
    char **names; /* what a prompt uses: the file name without extension */
    char **paths;
} sdvk_file_list;
/* The LoRA files in options.lora_dir, the embeddings in embedding_dir. */
sdvk_status sdvk_list_loras(const sdvk_ctx *ctx, sdvk_file_list *out);
sdvk_status sdvk_list_embeddings(const sdvk_ctx *ctx, sdvk_file_list *out);
void sdvk_file_list_free(sdvk_file_list *l);

/* ---- images ---------------------------------------------------------------- */

typedef struct sdvk_image {
    int width, height, channels; /* channels: 3 (RGB) or 1 (grey, masks) */
    uint8_t *data;               /* row-major, width*height*channels bytes */
} sdvk_image;

void sdvk_image_free(sdvk_image *img);

/* Decoding limits for untrusted images (0 = the default). */
typedef struct sdvk_image_limits {
    int64_t max_pixels; /* default 8192*8192 */
    int max_side;       /* default 16384 */
} sdvk_image_limits;
/* Loads PNG (libpng), JPEG (libjpeg-turbo) or uncompressed BMP as 8-bit
 * RGB (alpha dropped, grey and palettes expanded: the stored values, as PIL
 * gives them); sizes are checked against the limits from the header, before
 * any allocation, and every refusal says which limit or format. lim may be
 * NULL (defaults). _mem decodes a buffer (a request body). */
sdvk_status sdvk_image_load(const char *path, const sdvk_image_limits *lim, sdvk_image *out);
sdvk_status sdvk_image_load_mem(const void *data, size_t n, const sdvk_image_limits *lim,
                                sdvk_image *out);
/* Resamples to w x h with Lanczos-3, as PIL's resize(LANCZOS) (what A1111
 * uses): bit-identical to Pillow <= 12. */
sdvk_status sdvk_image_resize(const sdvk_image *in, int w, int h, sdvk_image *out);
/* PNG with a tEXt chunk "parameters" = infotext (NULL: none), as A1111
 * writes it (its "PNG info" and civitai read it). */
sdvk_status sdvk_png_write(const char *path, const sdvk_image *img, const char *infotext);
/* The same PNG in memory: *png malloc'd (free with sdvk_free). */
sdvk_status sdvk_png_encode(const sdvk_image *img, const char *infotext, uint8_t **png,
                            size_t *n);
/* The "parameters" text of a PNG file or buffer (NULL when it has none);
 * *text malloc'd (sdvk_free). */
sdvk_status sdvk_png_read_infotext(const void *png, size_t n, char **text);
void sdvk_free(void *p);

/* ---- generation ------------------------------------------------------------ */

/* Progress: called after each sampler step (step 1..n_steps) of each
 * picture batch; return non-zero to cancel. With hires fix the second pass
 * counts on from the first (n_steps covers both). */
typedef int (*sdvk_progress_fn)(void *user, int step, int n_steps);
/* Preview of the current latent (a small RGB picture, approximate), every
 * preview_every steps; the image is only valid during the call. */
typedef void (*sdvk_preview_fn)(void *user, int step, const sdvk_image *preview);

typedef enum sdvk_upscaler {
    SDVK_UPSCALE_LATENT = 0,     /* bilinear latent upscale (A1111's default "Latent") */
    SDVK_UPSCALE_LATENT_NEAREST, /* "Latent (nearest-exact)" */
    SDVK_UPSCALE_LANCZOS         /* decode, Lanczos in pixels, encode ("Lanczos") */
} sdvk_upscaler;

typedef struct sdvk_gen_params {
    const char *prompt;          /* A1111 syntax: (emphasis:1.2), [less], <lora:NAME:W>, embeddings */
    const char *negative_prompt; /* NULL or "" = empty */
    int width, height;           /* multiples of 8; 0 = the model's native size */
    int steps;                   /* >= 1 (20) */
    float cfg_scale;             /* 1.0 disables guidance (single UNet batch) (7.5) */
    uint64_t seed;               /* picture k of a batch uses seed + k */
    sdvk_sampler sampler;        /* (dpm++2m) */
    sdvk_schedule schedule;      /* (karras) */
    sdvk_rng rng;                /* (cpu) */
    float eta;                   /* ancestral/SDE noise amount (1), DDIM eta (0 = deterministic) */
    int clip_skip;               /* A1111 "Clip skip": 1 = last layer, 2 = penultimate (0 = 1) */
    int batch_size;              /* pictures in one UNet batch (1) */

    /* img2img: start from this picture (any size: resized to width x height) */
    const sdvk_image *init_image;
    float strength;              /* denoising strength in (0, 1] (0.75) */
    /* inpainting: white = repaint, black = keep (RGB or grey; resized) */
    const sdvk_image *mask;
    int mask_blur;               /* Gaussian blur radius of the mask in pixels (4 as A1111; 0 = none) */
    /* outpainting: grow the canvas by left, top, right, bottom pixels
     * (multiples of 8) around init_image and paint the new border */
    int outpaint[4];

    /* hires fix: generate at width x height, upscale by hires_scale, then an
     * img2img pass of hires_steps (0 = steps) at hires_denoise */
    float hires_scale;           /* 0 or 1 = off */
    int hires_steps;
    float hires_denoise;         /* (0.5) */
    sdvk_upscaler hires_upscaler;

    sdvk_progress_fn progress;
    void *progress_user;
    sdvk_preview_fn preview;
    int preview_every;           /* steps between previews (0 = off) */
    void *preview_user;
} sdvk_gen_params;

void sdvk_gen_params_default(sdvk_gen_params *p);

typedef struct sdvk_result {
    int n_images;
    sdvk_image *images;    /* [n_images] */
    uint64_t *seeds;       /* [n_images] the seed of each picture */
    char **infotexts;      /* [n_images] A1111 "parameters" text of each picture */
} sdvk_result;
void sdvk_result_free(sdvk_result *r);

/* txt2img (no init_image), img2img, inpainting (mask), outpainting, hires
 * fix, batches: everything the parameters ask for, in one call. */
sdvk_status sdvk_generate(sdvk_ctx *ctx, const sdvk_gen_params *p, sdvk_result *out);

/* The A1111 "parameters" text for picture k of a generation with p (what
 * sdvk_generate puts in infotexts); *text malloc'd (sdvk_free). */
sdvk_status sdvk_infotext(const sdvk_ctx *ctx, const sdvk_gen_params *p, int k, char **text);

/* One picture, as before: txt2img; img2img with init resized by the caller
 * to p->width x p->height (p->init_image is ignored). */
sdvk_status sdvk_txt2img(sdvk_ctx *ctx, const sdvk_gen_params *p, sdvk_image *out);
sdvk_status sdvk_img2img(sdvk_ctx *ctx, const sdvk_gen_params *p, const sdvk_image *init,
                         sdvk_image *out);

/* ---- convert ------------------------------------------------------------------- */

/* Writes any model sdvk reads (.safetensors, .ckpt, a diffusers folder),
 * with a separate VAE and LoRAs merged if asked, as ONE single-file
 * .safetensors in the original SD v1.x (LDM) key layout, which sdvk, A1111
 * and ComfyUI load. It streams (memory stays near the largest weight a
 * LoRA changes, not the model's size), writes under a temporary name
 * beside out_path and renames it into place when done (no partial file on
 * failure; out_path may be the model itself), and opens the result as a
 * model before returning. Kept: the UNet, VAE and text encoder tensors
 * (EMA copies, optimizer state and schedule buffers are left out), the
 * source's metadata (modelspec.*, ...), plus sdvk.unet.num_heads /
 * sdvk.clip.num_heads and where it came from (sdvk.converted_from,
 * sdvk.vae, sdvk.loras_merged). LoRAs are merged in float32 as the engine
 * merges them at run time, then stored in the output type. */
typedef enum sdvk_convert_type {
    SDVK_CONVERT_KEEP = 0, /* each tensor keeps its dtype (F64 becomes F32) */
    SDVK_CONVERT_F16 = 1,  /* every floating-point tensor as F16 (round to nearest even) */
    SDVK_CONVERT_F32 = 2,
    SDVK_CONVERT_BF16 = 3,
    /* 8-bit weights (what --weights q8 makes at load): the matmul and conv
     * weights become int8 with an fp16 scale per 32 values (tensor NAME as
     * I8 plus NAME.q8_scale as F16, metadata sdvk.q8); every other tensor
     * keeps its dtype. A file converted so computes bit for bit what
     * SDVK_WEIGHTS_Q8 does on the source. 8-bit sources stay 8-bit under
     * KEEP and Q8, and are dequantised exactly for F16/F32/BF16. */
    SDVK_CONVERT_Q8 = 4
} sdvk_convert_type;

typedef struct sdvk_convert_params {
    const char *vae_path;    /* a separate VAE replacing the model's (NULL: none) */
    const sdvk_lora *loras;  /* merged into the weights; paths (names are not looked up) */
    int n_loras;
    sdvk_convert_type type;
    sdvk_progress_fn progress; /* (tensors written, total) after each tensor; non-zero cancels */
    void *progress_user;
    int verbose;             /* 1: log what is merged, left out and written */
    sdvk_log_fn log;         /* NULL: stderr */
    void *log_user;
} sdvk_convert_params;

typedef struct sdvk_convert_stats {
    int tensors_written;
    int tensors_skipped;     /* not UNet, VAE or text encoder weights */
    int weights_merged;      /* weights a LoRA changed */
    uint64_t bytes_written;  /* tensor data */
    double seconds;
} sdvk_convert_stats;

void sdvk_convert_params_default(sdvk_convert_params *p);
/* params may be NULL (defaults), stats may be NULL. */
sdvk_status sdvk_convert(const char *model_path, const char *out_path,
                         const sdvk_convert_params *params, sdvk_convert_stats *stats);

/* ---- tools: tokenizer, stages, devices, self test ---------------------------- */

/* The CLIP tokenizer on its own. The vocabulary is found as a context finds
 * it: vocab_path if given, else tokenizer/ beside model_path (or inside a
 * diffusers folder), else fallback_vocab_path. */
typedef struct sdvk_tokenizer sdvk_tokenizer;
sdvk_status sdvk_tokenizer_open(const char *vocab_path, const char *model_path,
                                const char *fallback_vocab_path, sdvk_tokenizer **out);
void sdvk_tokenizer_close(sdvk_tokenizer *t);
/* The vocabulary file or folder in use. */
const char *sdvk_tokenizer_path(const sdvk_tokenizer *t);
/* Plain text -> ids (no BOS/EOS, no truncation); *ids malloc'd (sdvk_free). */
sdvk_status sdvk_tokenizer_encode(const sdvk_tokenizer *t, const char *text, int32_t **ids, int *n);
/* An A1111 prompt -> n_windows windows of 77 ids (BOS, 75 tokens, EOS, pad)
 * and the emphasis weight of each position; both malloc'd (sdvk_free). */
sdvk_status sdvk_tokenizer_encode_prompt(const sdvk_tokenizer *t, const char *prompt,
                                         int32_t **ids, float **weights, int *n_windows);
/* Special ids: which 0 = BOS, 1 = EOS, 2 = padding. */
int32_t sdvk_tokenizer_special(const sdvk_tokenizer *t, int which);

/* Whether path can be created or overwritten (checked without leaving a
 * file behind); the message names the path. */
sdvk_status sdvk_check_writable(const char *path);

/* Arrays of float32 in NCHW order (as .npy files hold them); each result is
 * malloc'd (sdvk_free) with its shape in out_ne. They run one pipeline stage
 * on the context's backend, for verification against other implementations. */
sdvk_status sdvk_stage_clip(sdvk_ctx *ctx, const int32_t *ids, int batch, int len, int clip_skip,
                            float **out, int64_t out_ne[3]);
/* The text-encoder output for an A1111 prompt, as a generation computes
 * its condition: <lora:...> tags applied, embeddings of embedding_dir put
 * into the token stream, emphasis weights; a prompt longer than 75 tokens
 * gives several 77-token windows. Output [1, 77 * windows, width]. */
sdvk_status sdvk_stage_clip_prompt(sdvk_ctx *ctx, const char *prompt, int clip_skip, float **out,
                                   int64_t out_ne[3]);
sdvk_status sdvk_stage_unet(sdvk_ctx *ctx, const float *latent, const int64_t lat_ne[4],
                            float timestep, const float *context, const int64_t ctx_ne[3],
                            float **out, int64_t out_ne[4]);
sdvk_status sdvk_stage_vae_decode(sdvk_ctx *ctx, const float *latent, const int64_t lat_ne[4],
                                  float **out, int64_t out_ne[4]);
sdvk_status sdvk_stage_vae_encode(sdvk_ctx *ctx, const float *image, const int64_t img_ne[4],
                                  float **out, int64_t out_ne[4]);
/* A sampler run on given arrays: context [cond; uncond] rows (2B) when
 * cfg != 1, else B; noise0 [B,4,h,w] the unit-variance starting noise;
 * step_noise [K,B,4,h,w] for the K evaluations that take fresh noise (NULL:
 * drawn from seed with p->rng). p supplies steps, cfg_scale, sampler,
 * schedule, eta, seed, rng. */
sdvk_status sdvk_stage_sample(sdvk_ctx *ctx, const sdvk_gen_params *p, const float *context,
                              const int64_t ctx_ne[3], const float *noise0,
                              const int64_t lat_ne[4], const float *step_noise,
                              const int64_t noise_ne[5], float **out, int64_t out_ne[4]);
/* Number of fresh-noise draws (K above) of a sampler run. */
sdvk_status sdvk_sample_noise_draws(const sdvk_gen_params *p, int *k);
/* torch-compatible noise: n standard normals from `seed` with the
 * generator kind (what the pipeline uses for the initial latent). */
sdvk_status sdvk_randn(sdvk_rng rng, uint64_t seed, float *out, size_t n);

/* .npy (float32/int32/int64 arrays, C order): *data malloc'd (sdvk_free);
 * dtype_out: 'f' float32 or 'i' int32 (int64 narrowed with a range check). */
sdvk_status sdvk_npy_load(const char *path, void **data, char *dtype_out, int *ndim,
                          int64_t ne[8]);
sdvk_status sdvk_npy_save_f32(const char *path, const float *data, int ndim, const int64_t *ne);

/* Prints the backends and Vulkan devices (index, name, type, driver, memory,
 * fp16 / cooperative-matrix support, kernel families) to f. */
sdvk_status sdvk_list_devices(FILE *f, const sdvk_options *opt);
/* Op conformance of the backend opt asks for against the CPU reference
 * kernels; a report line per case to f (may be NULL). tol_scale multiplies
 * the fp32 tolerances (0: 1, or 1000 for 16-bit storage). *n_fail gets the
 * failed cases. Returns an error status when a backend cannot be made. */
sdvk_status sdvk_selftest(const sdvk_options *opt, double tol_scale, FILE *f, int *n_fail);

#ifdef __cplusplus
}
#endif
#endif
