/* `sdvk serve`: an HTTP server with the A1111 and OpenAI image APIs, a job
 * queue and a web page, on the public API (include/sdvk.h) only.
 *
 *   serve.c     command line, start-up, signals, graceful shutdown
 *   http.c      libmicrohttpd glue: bodies, limits, auth, routing, responses
 *   jobs.c      the queue and the worker thread that owns the sdvk context
 *   request.c   JSON requests -> sv_gen_req (validation, images; no HTTP)
 *   response.c  JSON responses (A1111 info/parameters, lists, progress, metrics)
 *   base64.c    strict base64
 *
 * Threads: libmicrohttpd runs one thread per connection; a generation
 * request is parsed and its images decoded on that thread, then queued as a
 * job; one worker thread runs the jobs one at a time on the context (the
 * engine is not reentrant) while the connection thread waits, watching its
 * socket so that a client that goes away cancels its job. Everything shared
 * lives in sv_server under `mu`. */
#ifndef SDVK_SERVER_H
#define SDVK_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sdvk.h"

/* ---- base64.c --------------------------------------------------------------- */

/* Strict RFC 4648 base64: standard alphabet, '=' padding required, no
 * whitespace, canonical (zero) padding bits; decoded size at most max_out.
 * 0 on success (*out malloc'd, free()), -1 with a message in err. */
int sv_b64_decode(const char *in, size_t n, size_t max_out, uint8_t **out, size_t *out_n,
                  char *err, size_t errn);
/* NUL-terminated base64 of in (malloc'd), NULL when out of memory. */
char *sv_b64_encode(const uint8_t *in, size_t n, size_t *out_n);

/* ---- limits and settings ------------------------------------------------------ */

typedef struct sv_limits {
    int max_width, max_height; /* per side, after hires fix */
    int max_steps;
    int max_images;          /* batch_size x n_iter (OpenAI: n) */
    size_t max_body;         /* request body bytes */
    int64_t max_image_pixels; /* uploaded images */
    int max_image_side;
} sv_limits;

/* What /sdapi/v1/options can change: the defaults of later requests. */
typedef struct sv_settings {
    int clip_skip;        /* CLIP_stop_at_last_layers (1) */
    sdvk_rng rng;         /* randn_source: "GPU" = cuda (A1111's default), "CPU" = cpu */
    int preview_every;    /* show_progress_every_n_steps (0 = no previews) */
} sv_settings;

/* The loaded model as requests see it. */
typedef struct sv_model {
    char name[256];       /* file name without extension ("sdvk-demo") */
    char title[300];      /* A1111 title: the file name ("sdvk-demo.safetensors") */
    char filename[256];   /* the file name again (no directory is ever shown) */
    sdvk_model_info info;
    char backend[256];
} sv_model;

/* Everything request parsing needs, copied under the lock. */
typedef struct sv_parse_ctx {
    sv_limits lim;
    sv_settings set;
    const sv_model *model;
    int allow_lora;       /* a --lora-dir was given */
} sv_parse_ctx;

/* ---- request.c: parsed generation requests ------------------------------------ */

typedef enum sv_kind { SV_TXT2IMG = 0, SV_IMG2IMG = 1, SV_OPENAI = 2 } sv_kind;

#define SV_TASK_ID_MAX 64

typedef struct sv_gen_req {
    sv_kind kind;
    char *prompt, *negative_prompt;
    char task_id[SV_TASK_ID_MAX + 1]; /* force_task_id, or made up by the server */
    int width, height, steps, batch_size, n_iter, clip_skip, mask_blur, hires_steps;
    float cfg_scale, strength, eta, hires_scale, hires_denoise;
    int64_t seed_req;     /* as requested; -1 = random */
    uint64_t seed;        /* the seed of the first picture */
    sdvk_sampler sampler;
    sdvk_schedule schedule;
    sdvk_rng rng;
    sdvk_upscaler upscaler;
    int enable_hr, send_images, mask_invert;
    sdvk_image init, mask; /* decoded uploads (data NULL when absent) */
    int openai_url;        /* OpenAI response_format "url": answer data: URLs */
    json_t *parameters;    /* A1111 "parameters": the request with defaults filled */
} sv_gen_req;

/* An error answer: HTTP status and JSON body (owned). */
typedef struct sv_error {
    int status;
    json_t *body;
} sv_error;

void sv_error_clear(sv_error *e);
/* {"error": <reason phrase>, "detail": msg} (FastAPI's HTTPException shape). */
void sv_error_set(sv_error *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* OpenAI's {"error": {"message", "type", "param", "code"}}. */
void sv_error_openai(sv_error *e, int status, const char *param, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Parses a txt2img / img2img / OpenAI generations body. Fills defaults from
 * pc->set, checks types (422 naming each bad field, as FastAPI does), ranges
 * against pc->lim and the model, decodes base64 images with the
 * limits. Returns 0, or -1 with *err set (the request is then freed). The
 * seed is resolved (random for -1) here. */
int sv_parse_generate(const char *body, size_t n, sv_kind kind, const sv_parse_ctx *pc,
                      sv_gen_req *out, sv_error *err);
void sv_gen_req_free(sv_gen_req *r);
/* POST /sdapi/v1/options: applies the known keys of body to *set (after
 * checking all of them), ignores unknown ones. 0 or -1 with *err. */
int sv_parse_options(const char *body, size_t n, const sv_model *m, sv_settings *set,
                     sv_error *err);
/* Parses a JSON object body; NULL with *err (400/422) when it is not one. */
json_t *sv_parse_object(const char *body, size_t n, sv_error *err);
/* Sampler from an A1111 name ("Euler a", "DPM++ 2M Karras" also sets *sch);
 * 0, or -1 when unknown. */
int sv_sampler_lookup(const char *name, sdvk_sampler *s, sdvk_schedule *sch);
/* Schedule from an A1111 scheduler name ("Automatic", "Karras", "karras"). */
int sv_schedule_lookup(const char *name, sdvk_schedule *s);

/* ---- jobs.c ------------------------------------------------------------------- */

typedef enum sv_job_state {
    SV_JOB_QUEUED = 0,
    SV_JOB_RUNNING,
    SV_JOB_DONE,      /* finished (possibly interrupted: see interrupted) */
    SV_JOB_FAILED,    /* the engine refused or failed: status/err */
    SV_JOB_CANCELLED  /* cancel_reason says why */
} sv_job_state;

typedef enum sv_cancel_reason {
    SV_CANCEL_NONE = 0,
    SV_CANCEL_INTERRUPT,  /* /sdapi/v1/interrupt or /sdvk/v1/cancel: answered with what exists */
    SV_CANCEL_CLIENT,     /* the client closed its connection */
    SV_CANCEL_TIMEOUT,    /* --timeout */
    SV_CANCEL_SHUTDOWN    /* SIGTERM */
} sv_cancel_reason;

typedef struct sv_job {
    struct sv_job *next;       /* queue link */
    uint64_t id;
    const sv_gen_req *req;
    sv_job_state state;
    sv_cancel_reason cancel;   /* set under mu */
    int iter;                  /* 0..n_iter-1: the batch running */
    int step, n_steps;         /* progress within the current batch */
    int interrupted;           /* stopped early by an interrupt */
    double t_submit, t_start, t_end;
    sdvk_result *results;      /* [req->n_iter], n_results filled */
    int n_results;
    sdvk_status status;
    char err[512];
    uint8_t *preview_png;      /* latest preview (PNG), NULL when none */
    size_t preview_png_n;
    int preview_step;
} sv_job;

/* ---- the server ---------------------------------------------------------------- */

#define SV_N_CODES 16
#define SV_N_ENDPOINTS 24
#define SV_RECENT 64

typedef struct sv_metrics {
    unsigned long requests[SV_N_ENDPOINTS];
    unsigned long codes[SV_N_CODES];          /* by sv_code_index */
    unsigned long jobs_ok, jobs_failed, jobs_interrupted, jobs_timeout, jobs_client_gone,
        jobs_shutdown, jobs_rejected_full;
    unsigned long images;
    unsigned long steps;
    double seconds_generating;                /* wall time of finished jobs */
    double last_seconds_per_step;
    sdvk_stats engine;                        /* copied by the worker after each job */
} sv_metrics;

typedef struct sv_server {
    pthread_mutex_t mu;
    pthread_cond_t cv_work;    /* the worker waits for jobs */
    pthread_cond_t cv_done;    /* connection threads wait for their job */
    sv_job *q_head, *q_tail;
    int q_len, q_max;
    sv_job *running;
    uint64_t next_job_id;
    int shutting_down;         /* SIGTERM: no new jobs, queued ones answered 503 */
    int stop_worker;
    pthread_t worker;
    int worker_started;

    sdvk_ctx *ctx;
    sv_model model;
    sv_limits lim;
    sv_settings set;
    int allow_lora;
    const char *api_key;       /* NULL: no authentication */
    double timeout_s;          /* per request, from submission */
    double avg_job_s;          /* running mean, for Retry-After */
    double t_started;

    char recent[SV_RECENT][SV_TASK_ID_MAX + 1]; /* finished task ids (ring) */
    int recent_next;

    sv_metrics m;
} sv_server;

int sv_server_init(sv_server *s);
void sv_server_destroy(sv_server *s);
/* Starts the worker thread. 0 or -1. */
int sv_worker_start(sv_server *s);
/* Stops the worker after the running job (call after answering the queue). */
void sv_worker_stop(sv_server *s);

/* Queues job (state QUEUED). Returns 0, or the HTTP status to answer:
 * 503 (full or shutting down), 409 (task id in use). Locks mu. */
int sv_job_submit(sv_server *s, sv_job *job);
/* Cancels a queued or running job (locks mu). A queued job becomes
 * CANCELLED at once; a running one is asked to stop (sdvk_cancel). */
void sv_job_cancel(sv_server *s, sv_job *job, sv_cancel_reason why);
/* Cancels the job with this task id, or the running job when task_id is
 * NULL; 1 when one was found. Locks mu. */
int sv_job_cancel_task(sv_server *s, const char *task_id, sv_cancel_reason why);
/* Whether the job has reached DONE, FAILED or CANCELLED (caller holds mu). */
int sv_job_finished(const sv_job *job);
/* Frees what the worker attached (results, preview); not the request. */
void sv_job_release(sv_job *job);
/* SIGTERM: refuse new jobs, answer the queued ones (CANCELLED/SHUTDOWN).
 * The running job goes on; sv_shutdown_cancel_running stops it. */
void sv_shutdown_begin(sv_server *s);
void sv_shutdown_cancel_running(sv_server *s);
/* Whether a job is running (locks mu). */
int sv_busy(sv_server *s);
/* Monotonic seconds. */
double sv_now(void);
/* Remembers a finished task id for /internal/progress (caller holds mu). */
void sv_recent_add(sv_server *s, const char *task_id);

/* ---- response.c ------------------------------------------------------------------ */

/* The A1111 response of a finished job: {images, parameters, info}; PNGs
 * carry the infotext. NULL when out of memory. */
json_t *sv_a1111_result(const sv_server *s, const sv_job *job);
/* The OpenAI response: {created, data: [{b64_json | url, revised_prompt}]}. */
json_t *sv_openai_result(const sv_server *s, const sv_job *job);
json_t *sv_samplers_json(void);
json_t *sv_schedulers_json(void);
json_t *sv_upscalers_json(void);
json_t *sv_models_json(const sv_server *s);
json_t *sv_openai_models_json(const sv_server *s);
/* GET /sdapi/v1/options (caller holds mu). */
json_t *sv_options_json(const sv_server *s);
json_t *sv_loras_json(const char *lora_dir);
/* GET /sdapi/v1/progress (locks mu). */
json_t *sv_progress_json(sv_server *s, int with_image);
/* POST /internal/progress {id_task} (locks mu). */
json_t *sv_task_progress_json(sv_server *s, const char *task_id, int with_image);
/* GET /metrics: Prometheus text (malloc'd; locks mu). */
char *sv_metrics_text(sv_server *s);
/* POST /sdapi/v1/png-info {image}: {info, items, parameters}. */
json_t *sv_png_info(const char *body, size_t n, const sv_limits *lim, sv_error *err);

/* Endpoint names for metrics (index = sv_endpoint). */
extern const char *const sv_endpoint_names[SV_N_ENDPOINTS];
int sv_code_index(int status);
extern const int sv_code_values[SV_N_CODES];

/* ---- http.c ---------------------------------------------------------------------- */

typedef struct sv_http sv_http;
typedef struct sv_listen {
    char host[256];
    int port;
} sv_listen;
/* Starts libmicrohttpd on addr (port 0: any free port); *port_out gets the
 * port bound. NULL with a message on stderr on failure. */
sv_http *sv_http_start(sv_server *s, const sv_listen *addr, const char *lora_dir,
                       int max_connections, int *port_out);
/* Stops accepting new connections (SIGTERM). */
void sv_http_quiesce(sv_http *h);
/* Waits (up to wait_s) for requests in progress to be answered, then stops. */
void sv_http_stop(sv_http *h, double wait_s);

/* The embedded web page (generated from index.html at build time). */
extern const unsigned char sv_index_html[];
extern const size_t sv_index_html_len;

/* The entry point: `sdvk serve ...`. */
int sv_cmd_serve(int argc, char **argv);

#endif
