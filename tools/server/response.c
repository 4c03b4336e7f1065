/* JSON (and Prometheus) answers: A1111's {images, parameters, info}, the
 * lists (samplers, schedulers, models, LoRAs, options), progress, OpenAI's
 * images and models, /metrics. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

const char *const sv_endpoint_names[SV_N_ENDPOINTS] = {
    "other",       "page",        "health",      "metrics",     "txt2img",   "img2img",
    "progress",    "interrupt",   "samplers",    "schedulers",  "sd-models", "options",
    "loras",       "upscalers",   "png-info",    "task-progress", "cancel",  "openai-images",
    "openai-models", "sd-vae",    "latent-upscale-modes", "unused1", "unused2", "unused3"};

const int sv_code_values[SV_N_CODES] = {200, 400, 401, 404, 405, 409, 413, 415,
                                        422, 500, 501, 503, 504, 0,   0,   0};

int sv_code_index(int status) {
    for (int i = 0; i < SV_N_CODES; i++)
        if (sv_code_values[i] == status)
            return i;
    return SV_N_CODES - 1; /* "other" */
}

/* "20250102030405", as A1111's job_timestamp */
static void timestamp(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, n, "%Y%m%d%H%M%S", &tm);
}

static json_t *b64_json(const uint8_t *data, size_t n, const char *prefix) {
    size_t m = 0;
    char *b = sv_b64_encode(data, n, &m);
    if (!b)
        return NULL;
    json_t *s;
    if (prefix) {
        size_t pl = strlen(prefix);
        char *full = malloc(pl + m + 1);
        if (!full) {
            free(b);
            return NULL;
        }
        memcpy(full, prefix, pl);
        memcpy(full + pl, b, m + 1);
        s = json_stringn_nocheck(full, pl + m);
        free(full);
    } else {
        s = json_stringn_nocheck(b, m);
    }
    free(b);
    return s;
}

/* The PNG (with its infotext) of every picture of a job, base64. */
static json_t *job_images(const sv_job *job, const char *prefix) {
    json_t *arr = json_array();
    for (int i = 0; i < job->n_results; i++) {
        const sdvk_result *r = &job->results[i];
        for (int k = 0; k < r->n_images; k++) {
            uint8_t *png = NULL;
            size_t n = 0;
            if (sdvk_png_encode(&r->images[k], r->infotexts[k], &png, &n) != SDVK_OK) {
                json_decref(arr);
                return NULL;
            }
            json_t *s = b64_json(png, n, prefix);
            sdvk_free(png);
            if (!s) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, s);
        }
    }
    return arr;
}

json_t *sv_a1111_result(const sv_server *s, const sv_job *job) {
    const sv_gen_req *r = job->req;
    json_t *images = r->send_images ? job_images(job, NULL) : json_array();
    if (!images)
        return NULL;
    json_t *seeds = json_array(), *prompts = json_array(), *negs = json_array(),
           *texts = json_array();
    for (int i = 0; i < job->n_results; i++)
        for (int k = 0; k < job->results[i].n_images; k++) {
            json_array_append_new(seeds, json_integer((json_int_t)job->results[i].seeds[k]));
            json_array_append_new(prompts, json_string(r->prompt));
            json_array_append_new(negs, json_string(r->negative_prompt));
            json_array_append_new(texts, json_string(job->results[i].infotexts[k]));
        }
    char ts[32];
    timestamp(ts, sizeof ts);
    const char *sched = r->schedule == SDVK_SCHEDULE_DEFAULT ? "Automatic"
                                                             : sdvk_schedule_display_name(r->schedule);
    json_t *info = json_object();
    json_object_set_new(info, "prompt", json_string(r->prompt));
    json_object_set_new(info, "all_prompts", prompts);
    json_object_set_new(info, "negative_prompt", json_string(r->negative_prompt));
    json_object_set_new(info, "all_negative_prompts", negs);
    json_object_set_new(info, "seed", json_integer((json_int_t)r->seed));
    json_object_set_new(info, "all_seeds", seeds);
    json_object_set_new(info, "subseed", json_integer((json_int_t)r->seed));
    json_object_set_new(info, "all_subseeds", json_deep_copy(seeds));
    json_object_set_new(info, "subseed_strength", json_integer(0));
    json_object_set_new(info, "width", json_integer(r->width));
    json_object_set_new(info, "height", json_integer(r->height));
    json_object_set_new(info, "sampler_name", json_string(sdvk_sampler_display_name(r->sampler)));
    json_object_set_new(info, "cfg_scale", json_real(r->cfg_scale));
    json_object_set_new(info, "steps", json_integer(r->steps));
    json_object_set_new(info, "batch_size", json_integer(r->batch_size));
    json_object_set_new(info, "restore_faces", json_false());
    json_object_set_new(info, "face_restoration_model", json_null());
    json_object_set_new(info, "sd_model_name", json_string(s->model.name));
    json_object_set_new(info, "sd_model_hash", json_null());
    json_object_set_new(info, "sd_vae_name", json_null());
    json_object_set_new(info, "sd_vae_hash", json_null());
    json_object_set_new(info, "seed_resize_from_w", json_integer(-1));
    json_object_set_new(info, "seed_resize_from_h", json_integer(-1));
    json_object_set_new(info, "denoising_strength",
                        r->kind == SV_IMG2IMG || r->enable_hr ? json_real(r->strength) : json_null());
    json_object_set_new(info, "extra_generation_params", json_pack("{s:s}", "Schedule type", sched));
    json_object_set_new(info, "index_of_first_image", json_integer(0));
    json_object_set_new(info, "infotexts", texts);
    json_object_set_new(info, "styles", json_array());
    json_object_set_new(info, "job_timestamp", json_string(ts));
    json_object_set_new(info, "clip_skip", json_integer(r->clip_skip > 0 ? r->clip_skip : 1));
    json_object_set_new(info, "is_using_inpainting_conditioning",
                        json_boolean(s->model.info.inpainting && r->mask.data));
    json_object_set_new(info, "version", json_string(sdvk_version()));
    json_object_set_new(info, "interrupted", json_boolean(job->interrupted ||
                                                          job->cancel == SV_CANCEL_INTERRUPT));
    json_object_set_new(info, "task_id", json_string(r->task_id));
    char *info_s = json_dumps(info, JSON_COMPACT);
    json_decref(info);
    if (!info_s) {
        json_decref(images);
        return NULL;
    }
    json_t *out = json_pack("{s:o, s:O, s:s}", "images", images, "parameters", r->parameters,
                            "info", info_s);
    free(info_s);
    return out;
}

json_t *sv_openai_result(const sv_server *s, const sv_job *job) {
    (void)s;
    const sv_gen_req *r = job->req;
    json_t *images = job_images(job, r->openai_url ? "data:image/png;base64," : NULL);
    if (!images)
        return NULL;
    json_t *data = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(images, i, v) {
        json_array_append_new(data, json_pack("{s:O, s:s}", r->openai_url ? "url" : "b64_json",
                                              v, "revised_prompt", r->prompt));
    }
    json_decref(images);
    return json_pack("{s:I, s:o}", "created", (json_int_t)time(NULL), "data", data);
}

json_t *sv_samplers_json(void) {
    json_t *arr = json_array();
    for (int k = 0; k < SDVK_SAMPLER_COUNT; k++)
        json_array_append_new(arr, json_pack("{s:s, s:[s], s:{}}", "name",
                                             sdvk_sampler_display_name((sdvk_sampler)k), "aliases",
                                             sdvk_sampler_name((sdvk_sampler)k), "options"));
    return arr;
}

json_t *sv_schedulers_json(void) {
    json_t *arr = json_array();
    json_array_append_new(arr, json_pack("{s:s, s:s, s:n, s:f, s:b}", "name", "automatic", "label",
                                         "Automatic", "aliases", "default_rho", -1.0,
                                         "need_inner_model", 0));
    for (int k = 1; k < SDVK_SCHEDULE_COUNT; k++) {
        sdvk_schedule sc = (sdvk_schedule)k;
        json_array_append_new(arr, json_pack("{s:s, s:s, s:n, s:f, s:b}", "name",
                                             sdvk_schedule_name(sc), "label",
                                             sdvk_schedule_display_name(sc), "aliases",
                                             "default_rho", sc == SDVK_SCHEDULE_KARRAS ? 7.0 : -1.0,
                                             "need_inner_model", 0));
    }
    return arr;
}

json_t *sv_upscalers_json(void) {
    return json_pack("[{s:s, s:n, s:n, s:n, s:n}, {s:s, s:n, s:n, s:n, s:n}, "
                     "{s:s, s:n, s:n, s:n, s:n}]",
                     "name", "Latent", "model_name", "model_path", "model_url", "scale", "name",
                     "Latent (nearest-exact)", "model_name", "model_path", "model_url", "scale",
                     "name", "Lanczos", "model_name", "model_path", "model_url", "scale");
}

json_t *sv_models_json(const sv_server *s) {
    return json_pack("[{s:s, s:s, s:n, s:n, s:s, s:n}]", "title", s->model.title, "model_name",
                     s->model.name, "hash", "sha256", "filename", s->model.filename, "config");
}

json_t *sv_openai_models_json(const sv_server *s) {
    return json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id",
                     s->model.name, "object", "model", "created",
                     (json_int_t)(time(NULL) - (time_t)(sv_now() - s->t_started)), "owned_by",
                     "sdvk");
}

json_t *sv_options_json(const sv_server *s) {
    json_t *o = json_object();
    json_object_set_new(o, "sd_model_checkpoint", json_string(s->model.title));
    json_object_set_new(o, "sd_checkpoint_hash", json_null());
    json_object_set_new(o, "CLIP_stop_at_last_layers", json_integer(s->set.clip_skip));
    json_object_set_new(o, "randn_source", json_string(s->set.rng == SDVK_RNG_CPU ? "CPU" : "GPU"));
    json_object_set_new(o, "show_progress_every_n_steps", json_integer(s->set.preview_every));
    json_object_set_new(o, "live_previews_enable", json_boolean(s->set.preview_every > 0));
    json_object_set_new(o, "samples_format", json_string("png"));
    json_object_set_new(o, "sd_vae", json_string("Automatic"));
    json_object_set_new(o, "eta_noise_seed_delta", json_integer(0));
    json_object_set_new(o, "eta_ancestral", json_real(1.0));
    json_object_set_new(o, "eta_ddim", json_real(0.0));
    json_object_set_new(o, "enable_pnginfo", json_true());
    json_object_set_new(o, "save_to_dirs", json_false());
    json_object_set_new(o, "outdir_samples", json_string(""));
    return o;
}

json_t *sv_loras_json(const char *lora_dir) {
    json_t *arr = json_array();
    if (!lora_dir)
        return arr;
    DIR *d = opendir(lora_dir);
    if (!d)
        return arr;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) && n < 10000) {
        /* the files the engine takes as LoRAs (sdvk_set_loras) */
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || dot == e->d_name || e->d_name[0] == '.' ||
            (strcasecmp(dot, ".safetensors") && strcasecmp(dot, ".pt") && strcasecmp(dot, ".ckpt")))
            continue;
        json_t *name = json_stringn(e->d_name, (size_t)(dot - e->d_name));
        if (!name)
            continue; /* not UTF-8 */
        json_array_append_new(arr, json_pack("{s:O, s:O, s:s, s:{}}", "name", name, "alias",
                                             name, "path", e->d_name, "metadata"));
        json_decref(name);
        n++;
    }
    closedir(d);
    return arr;
}

static const char *job_name(const sv_job *j) {
    return j->req->kind == SV_IMG2IMG ? "scripts_img2img"
           : j->req->kind == SV_OPENAI ? "openai_images"
                                       : "scripts_txt2img";
}

/* 0..1 over all batches of the job (caller holds mu). */
static double job_progress(const sv_job *j) {
    int n_iter = j->req->n_iter > 0 ? j->req->n_iter : 1;
    double within = j->n_steps > 0 ? (double)j->step / j->n_steps : 0.0;
    double p = (j->iter + within) / n_iter;
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

static double job_eta(const sv_job *j, double progress) {
    if (j->state != SV_JOB_RUNNING || progress <= 0)
        return 0;
    double el = sv_now() - j->t_start;
    return el / progress - el;
}

/* Copies the job's preview (caller holds mu); free() it. */
static uint8_t *copy_preview(const sv_job *j, size_t *n) {
    if (!j->preview_png)
        return NULL;
    uint8_t *p = malloc(j->preview_png_n);
    if (p) {
        memcpy(p, j->preview_png, j->preview_png_n);
        *n = j->preview_png_n;
    }
    return p;
}

json_t *sv_progress_json(sv_server *s, int with_image) {
    char ts[32];
    timestamp(ts, sizeof ts);
    pthread_mutex_lock(&s->mu);
    const sv_job *j = s->running;
    double prog = j ? job_progress(j) : 0.0;
    double eta = j ? job_eta(j, prog) : 0.0;
    json_t *state = json_object();
    json_object_set_new(state, "skipped", json_false());
    json_object_set_new(state, "interrupted", json_boolean(j && j->cancel == SV_CANCEL_INTERRUPT));
    json_object_set_new(state, "stopping_generation", json_false());
    json_object_set_new(state, "job", json_string(j ? job_name(j) : ""));
    json_object_set_new(state, "job_count", json_integer(j ? j->req->n_iter : 0));
    json_object_set_new(state, "job_timestamp", json_string(ts));
    json_object_set_new(state, "job_no", json_integer(j ? j->iter : 0));
    json_object_set_new(state, "sampling_step", json_integer(j ? j->step : 0));
    json_object_set_new(state, "sampling_steps",
                        json_integer(j ? (j->n_steps ? j->n_steps : j->req->steps) : 0));
    json_object_set_new(state, "queue_size", json_integer(s->q_len));
    json_object_set_new(state, "task_id", j ? json_string(j->req->task_id) : json_null());
    size_t pn = 0;
    uint8_t *png = j && with_image ? copy_preview(j, &pn) : NULL;
    pthread_mutex_unlock(&s->mu);
    json_t *img = png ? b64_json(png, pn, NULL) : NULL;
    free(png);
    return json_pack("{s:f, s:f, s:o, s:o, s:n}", "progress", prog, "eta_relative", eta, "state",
                     state, "current_image", img ? img : json_null(), "textinfo");
}

json_t *sv_task_progress_json(sv_server *s, const char *task_id, int with_image) {
    pthread_mutex_lock(&s->mu);
    const sv_job *j = NULL;
    int active = 0, queued = 0, completed = 0, position = -1;
    if (s->running && !strcmp(s->running->req->task_id, task_id)) {
        j = s->running;
        active = 1;
    } else {
        int k = 0;
        for (const sv_job *q = s->q_head; q; q = q->next, k++)
            if (!strcmp(q->req->task_id, task_id)) {
                j = q;
                queued = 1;
                position = k;
                break;
            }
    }
    if (!j)
        for (int i = 0; i < SV_RECENT; i++)
            if (!strcmp(s->recent[i], task_id))
                completed = 1;
    double prog = active ? job_progress(j) : completed ? 1.0 : 0.0;
    double eta = active ? job_eta(j, prog) : 0.0;
    int step = active ? j->step : 0, n_steps = active ? j->n_steps : 0;
    int preview_id = active && j->preview_png ? j->preview_step : -1;
    size_t pn = 0;
    uint8_t *png = active && with_image ? copy_preview(j, &pn) : NULL;
    int q_len = s->q_len;
    pthread_mutex_unlock(&s->mu);
    json_t *img = png ? b64_json(png, pn, "data:image/png;base64,") : NULL;
    free(png);
    char text[128];
    if (active)
        snprintf(text, sizeof text, "step %d/%d", step, n_steps);
    else if (queued)
        snprintf(text, sizeof text, "in queue: %d of %d", position + 1, q_len);
    else
        snprintf(text, sizeof text, completed ? "done" : "unknown task");
    return json_pack("{s:b, s:b, s:b, s:o, s:o, s:o, s:i, s:s, s:i, s:i, s:i}", "active", active,
                     "queued", queued, "completed", completed, "progress",
                     active || completed ? json_real(prog) : json_null(), "eta",
                     active ? json_real(eta) : json_null(), "live_preview",
                     img ? img : json_null(), "id_live_preview", preview_id, "textinfo", text,
                     "queue_position", position, "sampling_step", step, "sampling_steps",
                     n_steps);
}

/* ---- png-info ------------------------------------------------------------------- */

/* A1111's "parameters" text -> {"Prompt", "Negative prompt", "Steps", ...}. */
static json_t *parse_infotext(const char *text) {
    json_t *o = json_object();
    const char *last_nl = strrchr(text, '\n');
    const char *last = last_nl ? last_nl + 1 : text;
    if (strncmp(last, "Steps: ", 7)) /* no settings line */
        last = text + strlen(text);
    const char *neg = strstr(text, "\nNegative prompt: ");
    if (neg && neg >= last)
        neg = NULL;
    const char *pend = neg ? neg : last > text ? last - 1 : last;
    if (pend < text)
        pend = text;
    json_object_set_new(o, "Prompt", json_stringn(text, (size_t)(pend - text)));
    if (neg) {
        const char *ns = neg + 18, *ne = last > ns ? last - 1 : ns;
        json_object_set_new(o, "Negative prompt", json_stringn(ns, (size_t)(ne - ns)));
    } else {
        json_object_set_new(o, "Negative prompt", json_string(""));
    }
    /* "Key: value, Key: "quoted, value", ..." */
    const char *p = last;
    while (*p) {
        const char *colon = strstr(p, ": ");
        if (!colon)
            break;
        const char *v = colon + 2, *e;
        if (*v == '"') {
            e = v + 1;
            while (*e && *e != '"') e += e[0] == '\\' && e[1] ? 2 : 1;
            if (*e)
                e++;
        } else {
            e = strstr(v, ", ");
            if (!e)
                e = v + strlen(v);
        }
        json_t *key = json_stringn(p, (size_t)(colon - p));
        json_t *val = json_stringn(v, (size_t)(e - v));
        if (key && val)
            json_object_set(o, json_string_value(key), val);
        json_decref(key);
        json_decref(val);
        p = e;
        while (*p == ',' || *p == ' ') p++;
    }
    return o;
}

json_t *sv_png_info(const char *body, size_t n, const sv_limits *lim, sv_error *err) {
    json_t *root = sv_parse_object(body, n, err);
    if (!root)
        return NULL;
    json_t *img = json_object_get(root, "image");
    if (!json_is_string(img)) {
        json_decref(root);
        sv_error_clear(err);
        err->status = 422;
        err->body = json_pack("{s:[{s:[s,s], s:s, s:s}]}", "detail", "loc", "body", "image", "msg",
                              "str type expected (a base64 PNG)", "type", "type_error.str");
        return NULL;
    }
    const char *b64 = json_string_value(img);
    if (!strncmp(b64, "data:", 5) && strchr(b64, ','))
        b64 = strchr(b64, ',') + 1;
    uint8_t *bytes = NULL;
    size_t nb = 0;
    char msg[200];
    if (sv_b64_decode(b64, strlen(b64), lim->max_body, &bytes, &nb, msg, sizeof msg)) {
        json_decref(root);
        sv_error_clear(err);
        err->status = 422;
        err->body = json_pack("{s:[{s:[s,s], s:s, s:s}]}", "detail", "loc", "body", "image", "msg",
                              msg, "type", "value_error.base64");
        return NULL;
    }
    json_decref(root);
    char *text = NULL;
    sdvk_status s = sdvk_png_read_infotext(bytes, nb, &text);
    free(bytes);
    if (s != SDVK_OK) {
        sv_error_set(err, 422, "image: not a readable PNG: %s", sdvk_last_error());
        return NULL;
    }
    json_t *out;
    json_t *t = text ? json_string(text) : NULL;
    if (t)
        out = json_pack("{s:O, s:{s:O}, s:o}", "info", t, "items", "parameters", t, "parameters",
                        parse_infotext(text));
    else
        out = json_pack("{s:s, s:{}, s:{}}", "info", "", "items", "parameters");
    json_decref(t);
    sdvk_free(text);
    return out;
}

/* ---- metrics -------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* Label values are ours (model file name, backend): escape \ " and newlines. */
static void sb_label(sbuf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            sb_printf(b, "\\%c", *v);
        else if (*v == '\n')
            sb_printf(b, "\\n");
        else
            sb_printf(b, "%c", *v);
    }
}

char *sv_metrics_text(sv_server *s) {
    sbuf b = {malloc(4096), 0, 4096, 0};
    if (!b.p)
        return NULL;
    b.p[0] = 0;
    pthread_mutex_lock(&s->mu);
    sv_metrics m = s->m;
    int q_len = s->q_len, q_max = s->q_max, running = s->running != NULL;
    pthread_mutex_unlock(&s->mu);

    sb_printf(&b, "# HELP sdvk_info The server's version, model and backend.\n"
                  "# TYPE sdvk_info gauge\nsdvk_info{version=\"%s\",model=\"", sdvk_version());
    sb_label(&b, s->model.name);
    sb_printf(&b, "\",backend=\"");
    sb_label(&b, s->model.backend);
    sb_printf(&b, "\"} 1\n");
    sb_printf(&b, "# HELP sdvk_http_requests_total HTTP requests by endpoint.\n"
                  "# TYPE sdvk_http_requests_total counter\n");
    for (int i = 0; i < SV_N_ENDPOINTS; i++)
        if (strncmp(sv_endpoint_names[i], "unused", 6))
            sb_printf(&b, "sdvk_http_requests_total{endpoint=\"%s\"} %lu\n", sv_endpoint_names[i],
                      m.requests[i]);
    sb_printf(&b, "# HELP sdvk_http_responses_total HTTP responses by status code.\n"
                  "# TYPE sdvk_http_responses_total counter\n");
    unsigned long errors = 0;
    for (int i = 0; i < SV_N_CODES; i++) {
        if (sv_code_values[i] == 0 && i != SV_N_CODES - 1)
            continue;
        if (sv_code_values[i] == 0)
            sb_printf(&b, "sdvk_http_responses_total{code=\"other\"} %lu\n", m.codes[i]);
        else
            sb_printf(&b, "sdvk_http_responses_total{code=\"%d\"} %lu\n", sv_code_values[i],
                      m.codes[i]);
        if (sv_code_values[i] != 200)
            errors += m.codes[i];
    }
    sb_printf(&b, "# HELP sdvk_http_errors_total HTTP responses with a 4xx or 5xx status.\n"
                  "# TYPE sdvk_http_errors_total counter\nsdvk_http_errors_total %lu\n", errors);
    sb_printf(&b, "# HELP sdvk_queue_length Jobs waiting for the worker.\n"
                  "# TYPE sdvk_queue_length gauge\nsdvk_queue_length %d\n", q_len);
    sb_printf(&b, "# HELP sdvk_queue_capacity The --queue limit.\n"
                  "# TYPE sdvk_queue_capacity gauge\nsdvk_queue_capacity %d\n", q_max);
    sb_printf(&b, "# HELP sdvk_jobs_running Jobs on the worker now (0 or 1).\n"
                  "# TYPE sdvk_jobs_running gauge\nsdvk_jobs_running %d\n", running);
    sb_printf(&b, "# HELP sdvk_jobs_total Finished jobs by result.\n"
                  "# TYPE sdvk_jobs_total counter\n"
                  "sdvk_jobs_total{result=\"ok\"} %lu\n"
                  "sdvk_jobs_total{result=\"failed\"} %lu\n"
                  "sdvk_jobs_total{result=\"interrupted\"} %lu\n"
                  "sdvk_jobs_total{result=\"timeout\"} %lu\n"
                  "sdvk_jobs_total{result=\"client_gone\"} %lu\n"
                  "sdvk_jobs_total{result=\"shutdown\"} %lu\n"
                  "sdvk_jobs_total{result=\"rejected_queue_full\"} %lu\n",
              m.jobs_ok, m.jobs_failed, m.jobs_interrupted, m.jobs_timeout, m.jobs_client_gone,
              m.jobs_shutdown, m.jobs_rejected_full);
    sb_printf(&b, "# HELP sdvk_images_total Pictures generated.\n"
                  "# TYPE sdvk_images_total counter\nsdvk_images_total %lu\n", m.images);
    sb_printf(&b, "# HELP sdvk_steps_total Sampler steps of finished batches.\n"
                  "# TYPE sdvk_steps_total counter\nsdvk_steps_total %lu\n", m.steps);
    sb_printf(&b, "# HELP sdvk_generation_seconds_total Wall time of jobs on the worker.\n"
                  "# TYPE sdvk_generation_seconds_total counter\n"
                  "sdvk_generation_seconds_total %.6f\n", m.seconds_generating);
    sb_printf(&b, "# HELP sdvk_seconds_per_step Wall seconds per sampler step of the last "
                  "finished job (text encoding and decoding included).\n"
                  "# TYPE sdvk_seconds_per_step gauge\nsdvk_seconds_per_step %.6f\n",
              m.last_seconds_per_step);
    sb_printf(&b, "# HELP sdvk_sampling_seconds_total Engine time in the sampler loops.\n"
                  "# TYPE sdvk_sampling_seconds_total counter\n"
                  "sdvk_sampling_seconds_total %.6f\n", m.engine.seconds_sampling);
    sb_printf(&b, "# HELP sdvk_preparing_seconds_total Engine time preparing graphs and weights.\n"
                  "# TYPE sdvk_preparing_seconds_total counter\n"
                  "sdvk_preparing_seconds_total %.6f\n", m.engine.seconds_preparing);
    sb_printf(&b, "# HELP sdvk_model_evals_total UNet evaluations.\n"
                  "# TYPE sdvk_model_evals_total counter\nsdvk_model_evals_total %ld\n",
              m.engine.model_evals);
    sb_printf(&b, "# HELP sdvk_weights_resident Weights held in the backend's form.\n"
                  "# TYPE sdvk_weights_resident gauge\nsdvk_weights_resident %ld\n",
              m.engine.weights_resident);
    sb_printf(&b, "# HELP sdvk_weight_bytes Bytes of the resident weights.\n"
                  "# TYPE sdvk_weight_bytes gauge\nsdvk_weight_bytes %zu\n", m.engine.weight_bytes);
    sb_printf(&b, "# HELP sdvk_graphs_cached Prepared graphs held.\n"
                  "# TYPE sdvk_graphs_cached gauge\nsdvk_graphs_cached %ld\n",
              m.engine.graphs_cached);
    sb_printf(&b, "# HELP process_resident_memory_bytes Resident memory of the server.\n"
                  "# TYPE process_resident_memory_bytes gauge\n"
                  "process_resident_memory_bytes %ld\n", rss_bytes());
    sb_printf(&b, "# HELP sdvk_uptime_seconds Seconds since the server started.\n"
                  "# TYPE sdvk_uptime_seconds gauge\nsdvk_uptime_seconds %.3f\n",
              sv_now() - s->t_started);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
