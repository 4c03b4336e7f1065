/* Generation requests: JSON bodies of /sdapi/v1/txt2img, /sdapi/v1/img2img
 * and /v1/images/generations -> sv_gen_req.
 *
 * A1111 semantics (its FastAPI/pydantic models): unknown fields are
 * ignored; null means the default; a field of the wrong type is a 422 whose
 * "detail" lists every bad field as {"loc": ["body", name], "msg", "type"};
 * numbers may be given as numeric strings (pydantic does that coercion) but
 * text must be text. Ranges are checked here against the server's limits
 * and the model, so a request that would fail in the engine is answered at
 * once, before it takes a place in the queue. No field is ever used as a
 * path: images arrive as base64 and are decoded in memory. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define MAX_PROMPT_BYTES 65536

static const char *reason_phrase(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

void sv_error_clear(sv_error *e) {
    if (e->body)
        json_decref(e->body);
    e->body = NULL;
    e->status = 0;
}

/* Makes s valid UTF-8 in place, each byte of an invalid or cut sequence
 * becoming '?': messages quote client input (and jansson's own messages
 * quote the bytes it choked on), possibly cut mid-character by a bounded
 * snprintf, and a JSON string must be valid UTF-8 or jansson refuses to
 * make it, which would leave an error without a body. */
static char *utf8_fix(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        uint32_t cp = len == 2 ? *p & 0x1fu : len == 3 ? *p & 0x0fu : *p & 0x07u;
        int ok = len > 0;
        for (int i = 1; ok && i < len; i++) {
            ok = (p[i] & 0xc0) == 0x80;
            cp = cp << 6 | (p[i] & 0x3fu);
        }
        if (ok && len > 1) /* no overlong forms, surrogates or code points past U+10FFFF */
            ok = cp >= (len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u) && !(cp >= 0xd800 && cp <= 0xdfff) &&
                 cp <= 0x10ffff;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
    return s;
}

void sv_error_set(sv_error *e, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sv_error_clear(e);
    e->status = status;
    e->body = json_pack("{s:s, s:s}", "error", reason_phrase(status), "detail", utf8_fix(msg));
}

void sv_error_openai(sv_error *e, int status, const char *param, const char *code,
                     const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sv_error_clear(e);
    e->status = status;
    e->body = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", utf8_fix(msg), "type",
                        status >= 500 ? "server_error" : "invalid_request_error", "param",
                        param ? json_string(param) : json_null(), "code",
                        code ? json_string(code) : json_null());
}

json_t *sv_parse_object(const char *body, size_t n, sv_error *err) {
    json_error_t je;
    if (n == 0) {
        sv_error_set(err, 422, "the request body is empty: send a JSON object");
        return NULL;
    }
    json_t *root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        /* FastAPI answers malformed JSON with a 422 "json_invalid" */
        sv_error_clear(err);
        err->status = 422;
        err->body = json_pack("{s:[{s:[s,i], s:s, s:s}]}", "detail", "loc", "body",
                              (int)je.position, "msg", utf8_fix(je.text), "type", "value_error.jsondecode");
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        sv_error_clear(err);
        err->status = 422;
        err->body = json_pack("{s:[{s:[s], s:s, s:s}]}", "detail", "loc", "body", "msg",
                              "the request body must be a JSON object", "type",
                              "type_error.dict");
        return NULL;
    }
    return root;
}

/* ---- field readers -------------------------------------------------------------- */

/* Collects every field error, as pydantic does, so a client sees all of them. */
typedef struct fields {
    json_t *obj;
    json_t *detail; /* [{loc, msg, type}] */
    const char *sub; /* "override_settings" for nested fields, else NULL */
} fields;

static void field_error(fields *f, const char *key, int index, const char *type,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void field_error(fields *f, const char *key, int index, const char *type,
                        const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *loc = json_pack("[s]", "body");
    if (f->sub)
        json_array_append_new(loc, json_string(f->sub));
    json_array_append_new(loc, json_string(key));
    if (index >= 0)
        json_array_append_new(loc, json_integer(index));
    json_array_append_new(f->detail, json_pack("{s:o, s:s, s:s}", "loc", loc, "msg", utf8_fix(msg), "type", type));
}

static json_t *field(fields *f, const char *key) {
    json_t *v = json_object_get(f->obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

/* A whole-string number: "20", "-1", " 7.5" is refused (no spaces). */
static int str_to_double(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end || errno || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

/* 1 present and valid (*out set), 0 absent or null, -1 invalid (recorded). */
static int get_int(fields *f, const char *key, long long min, long long max, long long *out) {
    json_t *v = field(f, key);
    if (!v)
        return 0;
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else {
        double d;
        if (json_is_real(v))
            d = json_real_value(v);
        else if (!json_is_string(v) || str_to_double(json_string_value(v), &d))
            d = NAN;
        if (!(d == floor(d) && fabs(d) < 9.2e18)) {
            field_error(f, key, -1, "type_error.integer", "value is not a valid integer");
            return -1;
        }
        x = (long long)d;
    }
    if (x < min) {
        field_error(f, key, -1, "value_error.number.not_ge",
                    "ensure this value is greater than or equal to %lld", min);
        return -1;
    }
    if (x > max) {
        field_error(f, key, -1, "value_error.number.not_le",
                    "ensure this value is less than or equal to %lld", max);
        return -1;
    }
    *out = x;
    return 1;
}

static int get_int_i(fields *f, const char *key, long long min, long long max, int *out) {
    long long x;
    int r = get_int(f, key, min, max, &x);
    if (r == 1)
        *out = (int)x;
    return r;
}

static int get_num(fields *f, const char *key, double min, double max, double *out) {
    json_t *v = field(f, key);
    if (!v)
        return 0;
    double d;
    if (json_is_number(v))
        d = json_number_value(v);
    else if (!json_is_string(v) || str_to_double(json_string_value(v), &d)) {
        field_error(f, key, -1, "type_error.float", "value is not a valid float");
        return -1;
    }
    if (d < min) {
        field_error(f, key, -1, "value_error.number.not_ge",
                    "ensure this value is greater than or equal to %g", min);
        return -1;
    }
    if (d > max) {
        field_error(f, key, -1, "value_error.number.not_le",
                    "ensure this value is less than or equal to %g", max);
        return -1;
    }
    *out = d;
    return 1;
}

static int get_num_f(fields *f, const char *key, double min, double max, float *out) {
    double d;
    int r = get_num(f, key, min, max, &d);
    if (r == 1)
        *out = (float)d;
    return r;
}

static int get_bool(fields *f, const char *key, int *out) {
    json_t *v = field(f, key);
    if (!v)
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 1;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = (int)json_integer_value(v);
        return 1;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        static const char *const yes[] = {"true", "1", "yes", "on", "t", "y"};
        static const char *const no[] = {"false", "0", "no", "off", "f", "n"};
        for (int i = 0; i < 6; i++) {
            if (!strcasecmp(s, yes[i])) {
                *out = 1;
                return 1;
            }
            if (!strcasecmp(s, no[i])) {
                *out = 0;
                return 1;
            }
        }
    }
    field_error(f, key, -1, "type_error.bool", "value could not be parsed to a boolean");
    return -1;
}

static int get_str(fields *f, const char *key, size_t max_len, const char **out) {
    json_t *v = field(f, key);
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        field_error(f, key, -1, "type_error.str", "str type expected");
        return -1;
    }
    if (json_string_length(v) > max_len) {
        field_error(f, key, -1, "value_error.any_str.max_length",
                    "ensure this value has at most %zu characters", max_len);
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        field_error(f, key, -1, "value_error.str", "the text contains a NUL character");
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

static int expect_type(fields *f, const char *key, int is_ok, const char *type, const char *msg) {
    json_t *v = field(f, key);
    if (v && !is_ok) {
        field_error(f, key, -1, type, "%s", msg);
        return -1;
    }
    return v ? 1 : 0;
}

/* ---- names ---------------------------------------------------------------------- */

int sv_schedule_lookup(const char *name, sdvk_schedule *s) {
    if (!strcasecmp(name, "automatic") || !*name) {
        *s = SDVK_SCHEDULE_DEFAULT;
        return 0;
    }
    /* A1111's "Normal" and "Uniform" both space the model's own timesteps */
    if (!strcasecmp(name, "normal") || !strcasecmp(name, "uniform")) {
        *s = SDVK_SCHEDULE_DISCRETE;
        return 0;
    }
    int k = sdvk_schedule_from_name(name);
    if (k < 0) {
        /* "SGM Uniform" -> sgm_uniform */
        char buf[64];
        size_t i = 0;
        for (; name[i] && i < sizeof buf - 1; i++)
            buf[i] = name[i] == ' ' ? '_' : name[i];
        buf[i] = 0;
        k = name[i] ? -1 : sdvk_schedule_from_name(buf);
    }
    if (k < 0)
        return -1;
    *s = (sdvk_schedule)k;
    return 0;
}

int sv_sampler_lookup(const char *name, sdvk_sampler *s, sdvk_schedule *sch) {
    int k = sdvk_sampler_from_name(name);
    if (k >= 0) {
        *s = (sdvk_sampler)k;
        return 0;
    }
    /* The old A1111 names carry the schedule: "DPM++ 2M Karras" */
    const char *sp = strrchr(name, ' ');
    if (!sp || sp == name || (size_t)(sp - name) >= 64)
        return -1;
    char head[64];
    memcpy(head, name, (size_t)(sp - name));
    head[sp - name] = 0;
    sdvk_schedule sc;
    k = sdvk_sampler_from_name(head);
    if (k < 0 || sv_schedule_lookup(sp + 1, &sc) || sc == SDVK_SCHEDULE_DEFAULT)
        return -1;
    *s = (sdvk_sampler)k;
    if (sch)
        *sch = sc;
    return 0;
}

static int upscaler_lookup(const char *name, sdvk_upscaler *u) {
    if (!strcasecmp(name, "latent") || !strcasecmp(name, "latent (bilinear)"))
        *u = SDVK_UPSCALE_LATENT;
    else if (!strcasecmp(name, "latent (nearest-exact)") || !strcasecmp(name, "latent (nearest)"))
        *u = SDVK_UPSCALE_LATENT_NEAREST;
    else if (!strcasecmp(name, "lanczos"))
        *u = SDVK_UPSCALE_LANCZOS;
    else
        return -1;
    return 0;
}

/* The model names a request may use: "sdvk-demo", "sdvk-demo.safetensors",
 * A1111 titles with a hash in brackets. */
static int model_matches(const sv_model *m, const char *name) {
    size_t l = strlen(name);
    const char *br = strstr(name, " [");
    if (br && name[l - 1] == ']')
        l = (size_t)(br - name);
    return (strlen(m->name) == l && !strncmp(m->name, name, l)) ||
           (strlen(m->title) == l && !strncmp(m->title, name, l));
}

static uint64_t random_seed(void) {
    uint64_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
            v = 0;
        close(fd);
    }
    if (!v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 6364136223846793005ull ^ (uint64_t)ts.tv_sec;
    }
    /* A1111 draws seeds below 2^32 - 1 */
    return v % 4294967294ull;
}

static int valid_task_id(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > SV_TASK_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '(' || c == ')'))
            return 0;
    }
    return 1;
}

/* <lora:NAME:W> names a file in the server's --lora-dir: a name with a
 * directory part would reach outside it. */
static int check_extra_networks(fields *f, const char *key, const char *prompt) {
    const char *p = prompt;
    while ((p = strchr(p, '<'))) {
        p++;
        const char *colon = strchr(p, ':');
        const char *close = strchr(p, '>');
        if (!colon || !close || colon > close)
            continue;
        const char *name = colon + 1;
        const char *end = name;
        while (end < close && *end != ':') end++;
        for (const char *q = name; q < end; q++)
            if (*q == '/' || *q == '\\' || (q == name && *q == '.')) {
                field_error(f, key, -1, "value_error.extra_network",
                            "%.*s: names of LoRAs and other extra networks are file names in "
                            "the server's folder, without a path",
                            (int)(close - p + 2 < 200 ? close - p + 2 : 200), p - 1);
                return -1;
            }
    }
    return 0;
}

/* ---- images --------------------------------------------------------------------- */

/* A base64 image (optionally a data: URL) -> RGB pixels. 0, or -1 with the
 * error recorded against key[index] (a format the decoder does not take is
 * the client's error too: 422 with the decoder's message). */
static int decode_image(fields *f, const char *key, int index, const char *b64,
                        const sv_limits *lim, sdvk_image *out) {
    if (!strncmp(b64, "data:", 5)) {
        const char *comma = strchr(b64, ',');
        const char *semi = strstr(b64, ";base64,");
        if (!comma || !semi || semi + 7 != comma) {
            field_error(f, key, index, "value_error.image",
                        "a data: URL image must be base64 (data:image/png;base64,...)");
            return -1;
        }
        b64 = comma + 1;
    }
    uint8_t *bytes = NULL;
    size_t nb = 0;
    char err[200];
    if (sv_b64_decode(b64, strlen(b64), lim->max_body, &bytes, &nb, err, sizeof err)) {
        field_error(f, key, index, "value_error.base64", "%s", err);
        return -1;
    }
    sdvk_image_limits il = {.max_pixels = lim->max_image_pixels, .max_side = lim->max_image_side};
    sdvk_status s = sdvk_image_load_mem(bytes, nb, &il, out);
    free(bytes);
    if (s != SDVK_OK) {
        field_error(f, key, index, "value_error.image", "not a usable image: %s",
                    sdvk_last_error()[0] ? sdvk_last_error() : sdvk_status_str(s));
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

/* ---- A1111 ---------------------------------------------------------------------- */

void sv_gen_req_free(sv_gen_req *r) {
    if (!r)
        return;
    free(r->prompt);
    free(r->negative_prompt);
    sdvk_image_free(&r->init);
    sdvk_image_free(&r->mask);
    if (r->parameters)
        json_decref(r->parameters);
    memset(r, 0, sizeof *r);
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

static int round_down(int v, int m) { return v / m * m; }

static int parse_a1111(fields *f, sv_kind kind, const sv_parse_ctx *pc, sv_gen_req *r,
                       sv_error *err) {
    const sdvk_model_info *mi = &pc->model->info;
    const sv_limits *lim = &pc->lim;
    const char *prompt = "", *neg = "", *sampler_name = NULL, *sampler_index = NULL,
               *scheduler = NULL, *hr_upscaler = "Latent", *task = NULL, *script = NULL;
    int mult = mi->size_multiple > 0 ? mi->size_multiple : 8;
    int max_w = lim->max_width < mi->max_side ? lim->max_width : mi->max_side;
    int max_h = lim->max_height < mi->max_side ? lim->max_height : mi->max_side;
    double eta = 0;
    int hr_resize_x = 0, hr_resize_y = 0, width_set, height_set, restore_faces = 0, tiling = 0,
        save_images = 0, resize_mode = 0, inpainting_fill = 1, inpaint_full_res = 0,
        include_init = 0;

    get_str(f, "prompt", MAX_PROMPT_BYTES, &prompt);
    get_str(f, "negative_prompt", MAX_PROMPT_BYTES, &neg);
    long long seed_ll;
    if (get_int(f, "seed", -1, INT64_MAX, &seed_ll) == 1)
        r->seed_req = seed_ll;
    get_str(f, "sampler_name", 128, &sampler_name);
    get_str(f, "sampler_index", 128, &sampler_index);
    get_str(f, "scheduler", 128, &scheduler);
    get_int_i(f, "batch_size", 1, lim->max_images, &r->batch_size);
    get_int_i(f, "n_iter", 1, lim->max_images, &r->n_iter);
    get_int_i(f, "steps", 1, lim->max_steps, &r->steps);
    get_num_f(f, "cfg_scale", 0.0, 100.0, &r->cfg_scale);
    width_set = get_int_i(f, "width", 1, 1 << 20, &r->width) == 1;
    height_set = get_int_i(f, "height", 1, 1 << 20, &r->height) == 1;
    get_bool(f, "restore_faces", &restore_faces);
    get_bool(f, "tiling", &tiling);
    int eta_set = get_num(f, "eta", 0.0, 10.0, &eta) == 1;
    get_num_f(f, "denoising_strength", 0.0, 1.0, &r->strength);
    get_bool(f, "send_images", &r->send_images);
    get_bool(f, "save_images", &save_images);
    get_str(f, "force_task_id", 1024, &task);
    get_str(f, "script_name", 256, &script);
    expect_type(f, "styles", json_is_array(field(f, "styles")), "type_error.list",
                "value is not a valid list");
    expect_type(f, "alwayson_scripts", json_is_object(field(f, "alwayson_scripts")),
                "type_error.dict", "value is not a valid dict");
    expect_type(f, "script_args", json_is_array(field(f, "script_args")), "type_error.list",
                "value is not a valid list");
    /* hires fix */
    get_bool(f, "enable_hr", &r->enable_hr);
    get_num_f(f, "hr_scale", 1.0, 8.0, &r->hires_scale);
    get_str(f, "hr_upscaler", 128, &hr_upscaler);
    get_int_i(f, "hr_second_pass_steps", 0, lim->max_steps, &r->hires_steps);
    get_int_i(f, "hr_resize_x", 0, 1 << 20, &hr_resize_x);
    get_int_i(f, "hr_resize_y", 0, 1 << 20, &hr_resize_y);

    /* override_settings: the A1111 settings this request changes */
    json_t *ov = field(f, "override_settings");
    if (ov && !json_is_object(ov)) {
        field_error(f, "override_settings", -1, "type_error.dict", "value is not a valid dict");
        ov = NULL;
    }
    if (ov) {
        fields g = {.obj = ov, .detail = f->detail, .sub = "override_settings"};
        const char *ckpt = NULL, *randn = NULL;
        get_int_i(&g, "CLIP_stop_at_last_layers", 1, mi->clip_layers > 0 ? mi->clip_layers : 12,
                  &r->clip_skip);
        if (get_str(&g, "sd_model_checkpoint", 1024, &ckpt) == 1 && *ckpt &&
            !model_matches(pc->model, ckpt)) {
            sv_error_set(err, 404, "Model not found: '%s' (this server has '%s')", ckpt,
                         pc->model->title);
            return -1;
        }
        if (get_str(&g, "randn_source", 16, &randn) == 1) {
            if (!strcasecmp(randn, "GPU") || !strcasecmp(randn, "NV"))
                r->rng = SDVK_RNG_CUDA;
            else if (!strcasecmp(randn, "CPU"))
                r->rng = SDVK_RNG_CPU;
            else
                field_error(&g, "randn_source", -1, "value_error.const",
                            "unknown randn_source '%s' (GPU, CPU or NV)", randn);
        }
    }

    /* img2img */
    const char *mask_b64 = NULL;
    json_t *inits = NULL;
    if (kind == SV_IMG2IMG) {
        inits = field(f, "init_images");
        if (inits && !json_is_array(inits)) {
            field_error(f, "init_images", -1, "type_error.list", "value is not a valid list");
            inits = NULL;
        }
        get_str(f, "mask", SIZE_MAX, &mask_b64);
        if (get_int_i(f, "mask_blur", 0, 256, &r->mask_blur) == 0)
            get_int_i(f, "mask_blur_x", 0, 256, &r->mask_blur);
        get_int_i(f, "inpainting_mask_invert", 0, 1, &r->mask_invert);
        get_int_i(f, "inpainting_fill", 0, 3, &inpainting_fill);
        get_bool(f, "inpaint_full_res", &inpaint_full_res);
        get_int_i(f, "resize_mode", 0, 3, &resize_mode);
        get_bool(f, "include_init_images", &include_init);
    }
    if (json_array_size(f->detail))
        goto invalid;

    /* semantics */
    if (script && *script) {
        sv_error_set(err, 422, "Script '%s' not found (sdvk runs no A1111 scripts)", script);
        return -1;
    }
    const char *sname = sampler_name && *sampler_name ? sampler_name
                        : sampler_index && *sampler_index ? sampler_index
                                                          : "Euler";
    sdvk_schedule from_name = SDVK_SCHEDULE_DEFAULT;
    if (sv_sampler_lookup(sname, &r->sampler, &from_name)) {
        /* A1111 answers an unknown sampler with 404 */
        sv_error_set(err, 404, "Sampler not found: '%s' (see /sdapi/v1/samplers)", sname);
        return -1;
    }
    r->schedule = from_name;
    if (scheduler && sv_schedule_lookup(scheduler, &r->schedule))
        field_error(f, "scheduler", -1, "value_error.scheduler",
                    "unknown scheduler '%s' (see /sdapi/v1/schedulers)", scheduler);
    if (scheduler && r->schedule == SDVK_SCHEDULE_DEFAULT)
        r->schedule = from_name;
    if (r->batch_size * r->n_iter > lim->max_images)
        field_error(f, "batch_size", -1, "value_error.number.not_le",
                    "batch_size x n_iter = %d is over the limit of %d pictures per request",
                    r->batch_size * r->n_iter, lim->max_images);
    if (check_extra_networks(f, "prompt", prompt) || check_extra_networks(f, "negative_prompt", neg))
        goto invalid;
    if (task) {
        if (!valid_task_id(task))
            field_error(f, "force_task_id", -1, "value_error.task_id",
                        "a task id is 1..%d characters of A-Z a-z 0-9 - _ . : ( )",
                        SV_TASK_ID_MAX);
        else
            snprintf(r->task_id, sizeof r->task_id, "%s", task);
    }
    r->eta = eta_set ? (float)eta : r->sampler == SDVK_SAMPLER_DDIM ? 0.0f : 1.0f;
    if (json_array_size(f->detail))
        goto invalid;

    if (kind == SV_IMG2IMG) {
        if (!inits || json_array_size(inits) == 0) {
            sv_error_set(err, 404, "Init image not found: img2img needs init_images (a list "
                                   "of base64 images)");
            return -1;
        }
        /* the first init image is used for every picture */
        json_t *first = json_array_get(inits, 0);
        if (!json_is_string(first))
            field_error(f, "init_images", 0, "type_error.str", "str type expected");
        else
            decode_image(f, "init_images", 0, json_string_value(first), lim, &r->init);
        if (mask_b64 && *mask_b64 &&
            !decode_image(f, "mask", -1, mask_b64, lim, &r->mask) && r->mask_invert) {
            size_t np = (size_t)r->mask.width * (size_t)r->mask.height * (size_t)r->mask.channels;
            for (size_t i = 0; i < np; i++) r->mask.data[i] = (uint8_t)(255 - r->mask.data[i]);
        }
        if (json_array_size(f->detail))
            goto invalid;
        if (!width_set)
            r->width = round_down(r->init.width < max_w ? r->init.width : max_w, mult);
        if (!height_set)
            r->height = round_down(r->init.height < max_h ? r->init.height : max_h, mult);
        if (r->width < mult)
            r->width = mult;
        if (r->height < mult)
            r->height = mult;
        if (mi->inpainting && !r->mask.data) {
            sv_error_set(err, 422, "%s is an inpainting model: img2img with it needs a mask",
                         pc->model->title);
            return -1;
        }
    }

    /* sizes */
    if (r->width % mult || r->width > max_w)
        field_error(f, "width", -1, "value_error.size", "width %d: must be a multiple of %d "
                    "in %d..%d", r->width, mult, mult, max_w);
    if (r->height % mult || r->height > max_h)
        field_error(f, "height", -1, "value_error.size", "height %d: must be a multiple of %d "
                    "in %d..%d", r->height, mult, mult, max_h);
    if (kind == SV_IMG2IMG && !(r->strength > 0.0f))
        field_error(f, "denoising_strength", -1, "value_error.number.not_gt",
                    "ensure this value is greater than 0");
    if (r->enable_hr && kind == SV_TXT2IMG) {
        if (upscaler_lookup(hr_upscaler, &r->upscaler))
            field_error(f, "hr_upscaler", -1, "value_error.upscaler",
                        "unknown upscaler '%s' (Latent, Latent (nearest-exact) or Lanczos)",
                        hr_upscaler);
        if (hr_resize_x || hr_resize_y) {
            double sx = hr_resize_x ? (double)hr_resize_x / r->width : 0;
            double sy = hr_resize_y ? (double)hr_resize_y / r->height : 0;
            if (sx && sy && fabs(sx - sy) * r->width > mult)
                field_error(f, "hr_resize_x", -1, "value_error.hires",
                            "hr_resize_x/hr_resize_y must keep the aspect ratio of width/height");
            r->hires_scale = (float)(sx ? sx : sy);
        }
        if (!(r->hires_scale > 1.0f && r->hires_scale <= 8.0f))
            field_error(f, "hr_scale", -1, "value_error.hires",
                        "the hires scale must be in (1, 8] (got %g)", r->hires_scale);
        int w2 = round_down((int)((float)r->width * r->hires_scale), mult);
        int h2 = round_down((int)((float)r->height * r->hires_scale), mult);
        if (w2 > max_w || h2 > max_h)
            field_error(f, "hr_scale", -1, "value_error.size",
                        "the hires size %dx%d is over the limit of %dx%d", w2, h2, max_w, max_h);
        if (!(r->strength > 0.0f))
            field_error(f, "denoising_strength", -1, "value_error.number.not_gt",
                        "the hires pass needs a denoising_strength above 0");
        r->hires_denoise = r->strength;
    } else {
        r->enable_hr = 0;
        r->hires_scale = 0;
    }
    if (json_array_size(f->detail))
        goto invalid;

    r->prompt = dup_or_empty(prompt);
    r->negative_prompt = dup_or_empty(neg);
    r->seed = r->seed_req < 0 ? random_seed() : (uint64_t)r->seed_req;

    /* "parameters": the request as A1111 echoes it, defaults filled */
    json_t *pr = json_object();
    json_object_set_new(pr, "prompt", json_string(r->prompt));
    json_object_set_new(pr, "negative_prompt", json_string(r->negative_prompt));
    json_t *styles = field(f, "styles");
    json_object_set_new(pr, "styles", styles ? json_deep_copy(styles) : json_array());
    json_object_set_new(pr, "seed", json_integer(r->seed_req));
    json_object_set_new(pr, "subseed", json_integer(-1));
    json_object_set_new(pr, "subseed_strength", json_real(0));
    json_object_set_new(pr, "seed_resize_from_h", json_integer(-1));
    json_object_set_new(pr, "seed_resize_from_w", json_integer(-1));
    json_object_set_new(pr, "sampler_name", json_string(sdvk_sampler_display_name(r->sampler)));
    json_object_set_new(pr, "scheduler", json_string(r->schedule == SDVK_SCHEDULE_DEFAULT
                                                         ? "Automatic"
                                                         : sdvk_schedule_display_name(r->schedule)));
    json_object_set_new(pr, "batch_size", json_integer(r->batch_size));
    json_object_set_new(pr, "n_iter", json_integer(r->n_iter));
    json_object_set_new(pr, "steps", json_integer(r->steps));
    json_object_set_new(pr, "cfg_scale", json_real(r->cfg_scale));
    json_object_set_new(pr, "width", json_integer(r->width));
    json_object_set_new(pr, "height", json_integer(r->height));
    json_object_set_new(pr, "restore_faces", json_boolean(restore_faces));
    json_object_set_new(pr, "tiling", json_boolean(tiling));
    json_object_set_new(pr, "do_not_save_samples", json_true());
    json_object_set_new(pr, "do_not_save_grid", json_true());
    json_object_set_new(pr, "eta", eta_set ? json_real(eta) : json_null());
    json_object_set_new(pr, "denoising_strength", json_real(r->strength));
    json_object_set_new(pr, "override_settings", ov ? json_deep_copy(ov) : json_object());
    json_object_set_new(pr, "override_settings_restore_afterwards", json_true());
    json_object_set_new(pr, "sampler_index", json_string(sampler_index ? sampler_index : "Euler"));
    json_object_set_new(pr, "script_name", json_null());
    json_object_set_new(pr, "script_args", json_array());
    json_object_set_new(pr, "send_images", json_boolean(r->send_images));
    json_object_set_new(pr, "save_images", json_boolean(save_images));
    json_object_set_new(pr, "alwayson_scripts", json_object());
    json_object_set_new(pr, "force_task_id", task ? json_string(task) : json_null());
    json_object_set_new(pr, "infotext", json_null());
    if (kind == SV_TXT2IMG) {
        json_object_set_new(pr, "enable_hr", json_boolean(r->enable_hr));
        json_object_set_new(pr, "hr_scale", json_real(r->enable_hr ? r->hires_scale : 2.0));
        json_object_set_new(pr, "hr_upscaler", json_string(hr_upscaler));
        json_object_set_new(pr, "hr_second_pass_steps", json_integer(r->hires_steps));
        json_object_set_new(pr, "hr_resize_x", json_integer(hr_resize_x));
        json_object_set_new(pr, "hr_resize_y", json_integer(hr_resize_y));
    } else {
        json_object_set_new(pr, "init_images", json_null());
        json_object_set_new(pr, "resize_mode", json_integer(resize_mode));
        json_object_set_new(pr, "mask", json_null());
        json_object_set_new(pr, "mask_blur", json_integer(r->mask_blur));
        json_object_set_new(pr, "inpainting_fill", json_integer(inpainting_fill));
        json_object_set_new(pr, "inpaint_full_res", json_boolean(inpaint_full_res));
        json_object_set_new(pr, "inpainting_mask_invert", json_integer(r->mask_invert));
        json_object_set_new(pr, "include_init_images", json_boolean(include_init));
    }
    r->parameters = pr;
    return 0;

invalid:
    sv_error_clear(err);
    err->status = 422;
    err->body = json_pack("{s:O}", "detail", f->detail);
    return -1;
}

/* ---- OpenAI --------------------------------------------------------------------- */

/* OpenAI answers bad parameters with 400 and names one of them. */
static int openai_invalid(fields *f, sv_error *err) {
    json_t *e0 = json_array_get(f->detail, 0);
    json_t *loc = json_object_get(e0, "loc");
    const char *param = json_string_value(json_array_get(loc, json_array_size(loc) - 1));
    sv_error_openai(err, 400, param, "invalid_value", "%s: %s", param ? param : "body",
                    json_string_value(json_object_get(e0, "msg")));
    return -1;
}

static int parse_openai(fields *f, const sv_parse_ctx *pc, sv_gen_req *r, sv_error *err) {
    const sdvk_model_info *mi = &pc->model->info;
    const sv_limits *lim = &pc->lim;
    const char *prompt = NULL, *neg = "", *size = NULL, *fmt = "url", *model = NULL,
               *sampler = NULL;
    int mult = mi->size_multiple > 0 ? mi->size_multiple : 8;
    int max_w = lim->max_width < mi->max_side ? lim->max_width : mi->max_side;
    int max_h = lim->max_height < mi->max_side ? lim->max_height : mi->max_side;

    get_str(f, "prompt", MAX_PROMPT_BYTES, &prompt);
    get_int_i(f, "n", 1, lim->max_images, &r->batch_size);
    get_str(f, "size", 32, &size);
    get_str(f, "response_format", 32, &fmt);
    get_str(f, "model", 256, &model);
    /* sdvk extensions (stable-diffusion.cpp's sd-server takes the same) */
    get_str(f, "negative_prompt", MAX_PROMPT_BYTES, &neg);
    long long seed_ll;
    if (get_int(f, "seed", -1, INT64_MAX, &seed_ll) == 1)
        r->seed_req = seed_ll;
    get_int_i(f, "steps", 1, lim->max_steps, &r->steps);
    get_num_f(f, "cfg_scale", 0.0, 100.0, &r->cfg_scale);
    get_str(f, "sampler", 128, &sampler);
    if (json_array_size(f->detail))
        return openai_invalid(f, err);
    if (!prompt) {
        sv_error_openai(err, 400, "prompt", "missing_required_parameter",
                        "Missing required parameter: 'prompt'.");
        return -1;
    }
    if (size && strcasecmp(size, "auto")) {
        int w = 0, h = 0, used = 0;
        if (sscanf(size, "%d%*[xX]%d%n", &w, &h, &used) != 2 || size[used] || w < mult ||
            h < mult || w % mult || h % mult || w > max_w || h > max_h) {
            sv_error_openai(err, 400, "size", "invalid_value",
                            "size '%s': give WIDTHxHEIGHT, multiples of %d up to %dx%d", size,
                            mult, max_w, max_h);
            return -1;
        }
        r->width = w;
        r->height = h;
    }
    if (!strcmp(fmt, "url"))
        r->openai_url = 1;
    else if (strcmp(fmt, "b64_json")) {
        sv_error_openai(err, 400, "response_format", "invalid_value",
                        "response_format '%s': use b64_json or url", fmt);
        return -1;
    }
    if (sampler && sv_sampler_lookup(sampler, &r->sampler, &r->schedule)) {
        sv_error_openai(err, 400, "sampler", "invalid_value", "unknown sampler '%s'", sampler);
        return -1;
    }
    if (check_extra_networks(f, "prompt", prompt) || check_extra_networks(f, "negative_prompt", neg))
        return openai_invalid(f, err);
    (void)model; /* any model name is served by the one model loaded (see /v1/models) */
    r->eta = r->sampler == SDVK_SAMPLER_DDIM ? 0.0f : 1.0f;
    r->prompt = dup_or_empty(prompt);
    r->negative_prompt = dup_or_empty(neg);
    r->seed = r->seed_req < 0 ? random_seed() : (uint64_t)r->seed_req;
    r->parameters = json_pack("{s:s, s:i, s:i, s:i, s:I, s:i, s:f, s:s}", "prompt", r->prompt,
                              "n", r->batch_size, "width", r->width, "height", r->height, "seed",
                              (json_int_t)r->seed, "steps", r->steps, "cfg_scale",
                              (double)r->cfg_scale, "sampler", sdvk_sampler_name(r->sampler));
    return 0;
}

int sv_parse_generate(const char *body, size_t n, sv_kind kind, const sv_parse_ctx *pc,
                      sv_gen_req *r, sv_error *err) {
    memset(r, 0, sizeof *r);
    sv_error_clear(err);
    json_t *root = sv_parse_object(body, n, err);
    if (!root) {
        if (kind == SV_OPENAI) {
            json_t *d = json_array_get(json_object_get(err->body, "detail"), 0);
            sv_error_openai(err, 400, NULL, "invalid_json", "the body is not a JSON object: %s",
                            json_string_value(json_object_get(d, "msg")));
        }
        return -1;
    }
    const sdvk_model_info *mi = &pc->model->info;
    r->kind = kind;
    r->width = mi->native_width > 0 ? mi->native_width : 512;
    r->height = mi->native_height > 0 ? mi->native_height : 512;
    r->batch_size = 1;
    r->n_iter = 1;
    r->seed_req = -1;
    r->send_images = 1;
    r->clip_skip = pc->set.clip_skip;
    r->rng = pc->set.rng;
    r->mask_blur = 4;
    r->sampler = SDVK_SAMPLER_EULER;
    r->schedule = SDVK_SCHEDULE_DEFAULT;
    r->upscaler = SDVK_UPSCALE_LATENT;
    if (kind == SV_OPENAI) {
        /* what sdvk's own CLI uses: these are not A1111 requests */
        r->steps = 20;
        r->cfg_scale = 7.5f;
        r->sampler = SDVK_SAMPLER_DPMPP_2M;
        r->schedule = SDVK_SCHEDULE_KARRAS;
    } else {
        /* A1111's API defaults */
        r->steps = 50;
        r->cfg_scale = 7.0f;
        r->strength = 0.75f;
        r->hires_scale = 2.0f;
    }
    fields f = {.obj = root, .detail = json_array()};
    int rc = kind == SV_OPENAI ? parse_openai(&f, pc, r, err) : parse_a1111(&f, kind, pc, r, err);
    json_decref(f.detail);
    json_decref(root);
    if (rc) {
        sv_gen_req_free(r);
        return -1;
    }
    return 0;
}

/* ---- options -------------------------------------------------------------------- */

int sv_parse_options(const char *body, size_t n, const sv_model *m, sv_settings *set,
                     sv_error *err) {
    sv_error_clear(err);
    json_t *root = sv_parse_object(body, n, err);
    if (!root)
        return -1;
    sv_settings next = *set;
    fields f = {.obj = root, .detail = json_array()};
    const char *ckpt = NULL, *randn = NULL;
    get_int_i(&f, "CLIP_stop_at_last_layers", 1, m->info.clip_layers > 0 ? m->info.clip_layers : 12,
              &next.clip_skip);
    get_int_i(&f, "show_progress_every_n_steps", -1, 1000, &next.preview_every);
    if (next.preview_every < 0)
        next.preview_every = 0;
    if (get_str(&f, "randn_source", 16, &randn) == 1) {
        if (!strcasecmp(randn, "GPU") || !strcasecmp(randn, "NV"))
            next.rng = SDVK_RNG_CUDA;
        else if (!strcasecmp(randn, "CPU"))
            next.rng = SDVK_RNG_CPU;
        else
            field_error(&f, "randn_source", -1, "value_error.const",
                        "unknown randn_source '%s' (GPU, CPU or NV)", randn);
    }
    int rc = 0;
    if (get_str(&f, "sd_model_checkpoint", 1024, &ckpt) == 1 && !model_matches(m, ckpt)) {
        sv_error_set(err, 404, "Model not found: '%s' (this server has '%s')", ckpt, m->title);
        rc = -1;
    } else if (json_array_size(f.detail)) {
        sv_error_clear(err);
        err->status = 422;
        err->body = json_pack("{s:O}", "detail", f.detail);
        rc = -1;
    } else {
        *set = next;
    }
    json_decref(f.detail);
    json_decref(root);
    return rc;
}
