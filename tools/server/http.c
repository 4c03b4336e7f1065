/* HTTP on libmicrohttpd: request bodies (bounded), authentication, routing,
 * JSON answers, and the wait of a generation request for its job.
 *
 * libmicrohttpd runs a thread per connection (MHD_USE_THREAD_PER_CONNECTION):
 * a generation request waits for its job on its own thread. While it waits
 * it polls its socket: a client that closed the connection cancels its job
 * (libmicrohttpd cannot report the close itself at that point: the thread
 * is inside our handler, and a suspended connection is not watched at all).
 * The completion callback frees the request state and counts requests in
 * flight, which graceful shutdown waits for. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server.h"

struct sv_http {
    struct MHD_Daemon *d;
    sv_server *s;
    const char *lora_dir;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;          /* requests between their first call and completion */
    atomic_ulong next_task;
};

typedef struct req_state {
    char *body;
    size_t n, cap;
    size_t seen;           /* bytes of body received (also past the limit) */
    int too_big;
    int endpoint;
    double t0;
} req_state;

enum {
    EP_OTHER, EP_PAGE, EP_HEALTH, EP_METRICS, EP_TXT2IMG, EP_IMG2IMG, EP_PROGRESS, EP_INTERRUPT,
    EP_SAMPLERS, EP_SCHEDULERS, EP_MODELS, EP_OPTIONS, EP_LORAS, EP_UPSCALERS, EP_PNGINFO,
    EP_TASK_PROGRESS, EP_CANCEL, EP_OAI_IMAGES, EP_OAI_MODELS, EP_VAE, EP_LATENT_MODES
};

typedef struct route {
    const char *path;
    const char *methods; /* "GET", "POST" or "GET,POST" */
    int endpoint;
} route;

static const route routes[] = {
    {"/", "GET", EP_PAGE},
    {"/index.html", "GET", EP_PAGE},
    {"/health", "GET", EP_HEALTH},
    {"/metrics", "GET", EP_METRICS},
    {"/sdapi/v1/txt2img", "POST", EP_TXT2IMG},
    {"/sdapi/v1/img2img", "POST", EP_IMG2IMG},
    {"/sdapi/v1/progress", "GET", EP_PROGRESS},
    {"/sdapi/v1/interrupt", "POST", EP_INTERRUPT},
    {"/sdapi/v1/samplers", "GET", EP_SAMPLERS},
    {"/sdapi/v1/schedulers", "GET", EP_SCHEDULERS},
    {"/sdapi/v1/sd-models", "GET", EP_MODELS},
    {"/sdapi/v1/options", "GET,POST", EP_OPTIONS},
    {"/sdapi/v1/loras", "GET", EP_LORAS},
    {"/sdapi/v1/upscalers", "GET", EP_UPSCALERS},
    {"/sdapi/v1/latent-upscale-modes", "GET", EP_LATENT_MODES},
    {"/sdapi/v1/sd-vae", "GET", EP_VAE},
    {"/sdapi/v1/png-info", "POST", EP_PNGINFO},
    {"/internal/progress", "POST", EP_TASK_PROGRESS},
    {"/sdvk/v1/cancel", "POST", EP_CANCEL},
    {"/v1/images/generations", "POST", EP_OAI_IMAGES},
    {"/v1/models", "GET", EP_OAI_MODELS},
};

/* ---- answers ---------------------------------------------------------------------- */

static void count_code(sv_http *h, int status) {
    pthread_mutex_lock(&h->s->mu);
    h->s->m.codes[sv_code_index(status)]++;
    pthread_mutex_unlock(&h->s->mu);
}

static void add_common_headers(sv_http *h, struct MHD_Response *r) {
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    pthread_mutex_lock(&h->s->mu);
    int down = h->s->shutting_down;
    pthread_mutex_unlock(&h->s->mu);
    if (down)
        MHD_add_response_header(r, "Connection", "close");
}

/* Sends a malloc'd buffer (freed by libmicrohttpd). */
static enum MHD_Result send_buf(sv_http *h, struct MHD_Connection *c, int status,
                                const char *ctype, char *buf, size_t n, const char *hname,
                                const char *hval) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    add_common_headers(h, r);
    if (hname)
        MHD_add_response_header(r, hname, hval);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    count_code(h, status);
    return ok;
}

/* Sends body (its reference is taken) as JSON. */
static enum MHD_Result send_json_h(sv_http *h, struct MHD_Connection *c, int status, json_t *body,
                                   const char *hname, const char *hval) {
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (body)
        json_decref(body);
    if (!text) {
        status = 500;
        text = strdup("{\"error\":\"Internal Server Error\",\"detail\":\"out of memory\"}");
        if (!text)
            return MHD_NO;
    }
    return send_buf(h, c, status, "application/json", text, strlen(text), hname, hval);
}

static enum MHD_Result send_json(sv_http *h, struct MHD_Connection *c, int status, json_t *body) {
    return send_json_h(h, c, status, body, NULL, NULL);
}

static enum MHD_Result send_err(sv_http *h, struct MHD_Connection *c, sv_error *e) {
    json_t *b = e->body;
    e->body = NULL;
    return send_json(h, c, e->status ? e->status : 500, b);
}

static enum MHD_Result send_detail(sv_http *h, struct MHD_Connection *c, int status,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_detail(sv_http *h, struct MHD_Connection *c, int status,
                                   const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sv_error e = {0};
    sv_error_set(&e, status, "%s", msg);
    return send_err(h, c, &e);
}

/* Retry-After for a full queue: the queue's expected drain time. */
static enum MHD_Result send_busy(sv_http *h, struct MHD_Connection *c, int openai) {
    pthread_mutex_lock(&h->s->mu);
    double per = h->s->avg_job_s > 0 ? h->s->avg_job_s : 1.0;
    int wait = (int)(per * (h->s->q_len + 1) + 0.999);
    int down = h->s->shutting_down;
    pthread_mutex_unlock(&h->s->mu);
    if (wait < 1)
        wait = 1;
    if (wait > 3600)
        wait = 3600;
    char ra[32];
    snprintf(ra, sizeof ra, "%d", wait);
    sv_error e = {0};
    const char *msg = down ? "the server is shutting down" : "the queue is full: try again later";
    if (openai)
        sv_error_openai(&e, 503, NULL, down ? "shutting_down" : "queue_full", "%s", msg);
    else
        sv_error_set(&e, 503, "%s", msg);
    json_t *b = e.body;
    return send_json_h(h, c, 503, b, down ? NULL : "Retry-After", down ? NULL : ra);
}

/* ---- generation --------------------------------------------------------------------- */

/* Whether the peer has closed the connection (EOF pending on the socket). */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
        return 1;
    if (p.revents & POLLIN) {
        char b;
        ssize_t k = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return 1;
    }
    return 0;
}

static enum MHD_Result handle_generate(sv_http *h, struct MHD_Connection *c, req_state *rs,
                                       sv_kind kind) {
    sv_server *s = h->s;
    sv_parse_ctx pc;
    pthread_mutex_lock(&s->mu);
    pc.lim = s->lim;
    pc.set = s->set;
    pc.model = &s->model;
    pc.allow_lora = s->allow_lora;
    pthread_mutex_unlock(&s->mu);

    sv_gen_req req;
    sv_error err = {0};
    if (sv_parse_generate(rs->body, rs->n, kind, &pc, &req, &err))
        return send_err(h, c, &err);
    if (!req.task_id[0])
        snprintf(req.task_id, sizeof req.task_id, "sdvk-%lu",
                 (unsigned long)atomic_fetch_add(&h->next_task, 1));

    sv_job job;
    memset(&job, 0, sizeof job);
    job.req = &req;
    int rc = sv_job_submit(s, &job);
    if (rc) {
        if (rc == 409) {
            if (kind == SV_OPENAI)
                sv_error_openai(&err, 409, "force_task_id", "conflict", "task id in use");
            else
                sv_error_set(&err, 409, "task id '%s' is in use by a queued or running job",
                             req.task_id);
            sv_gen_req_free(&req);
            return send_err(h, c, &err);
        }
        sv_gen_req_free(&req);
        return send_busy(h, c, kind == SV_OPENAI);
    }

    /* Wait for the job, watching the client and the clock. */
    pthread_mutex_lock(&s->mu);
    while (!sv_job_finished(&job)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->cv_done, &s->mu, &ts);
        if (sv_job_finished(&job))
            break;
        int left = job.cancel == SV_CANCEL_CLIENT;
        pthread_mutex_unlock(&s->mu);
        if (!left && client_gone(c))
            sv_job_cancel(s, &job, SV_CANCEL_CLIENT);
        else if (s->timeout_s > 0 && sv_now() - job.t_submit > s->timeout_s)
            sv_job_cancel(s, &job, SV_CANCEL_TIMEOUT);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);

    enum MHD_Result ret;
    int openai = kind == SV_OPENAI;
    if (job.state == SV_JOB_DONE ||
        (job.state == SV_JOB_CANCELLED && job.cancel == SV_CANCEL_INTERRUPT)) {
        json_t *out = openai ? sv_openai_result(s, &job) : sv_a1111_result(s, &job);
        if (!out)
            ret = send_detail(h, c, 500, "out of memory building the answer");
        else
            ret = send_json(h, c, 200, out);
        /* the pictures are delivered: nothing of them stays in the server */
    } else if (job.state == SV_JOB_CANCELLED && job.cancel == SV_CANCEL_CLIENT) {
        ret = MHD_NO; /* nobody to answer: close */
    } else if (job.state == SV_JOB_CANCELLED && job.cancel == SV_CANCEL_TIMEOUT) {
        if (openai)
            sv_error_openai(&err, 504, NULL, "timeout", "the request took longer than %g s",
                            s->timeout_s);
        else
            sv_error_set(&err, 504, "the request took longer than the server's timeout of %g s "
                                    "and was cancelled", s->timeout_s);
        ret = send_err(h, c, &err);
    } else if (job.state == SV_JOB_CANCELLED) {
        ret = send_busy(h, c, openai); /* shutdown */
    } else {
        /* the engine refused or failed */
        int status = job.status == SDVK_ERR_INVALID_ARG || job.status == SDVK_ERR_MODEL ||
                             job.status == SDVK_ERR_UNSUPPORTED
                         ? 422
                         : 500;
        if (openai)
            sv_error_openai(&err, status == 422 ? 400 : 500, NULL, sdvk_status_str(job.status),
                            "%s", job.err);
        else
            sv_error_set(&err, status, "%s: %s", sdvk_status_str(job.status), job.err);
        ret = send_err(h, c, &err);
    }
    fprintf(stderr, "sdvk serve: %s %s %dx%d %d steps x%d: %s in %.2f s\n",
            kind == SV_IMG2IMG ? "img2img" : kind == SV_OPENAI ? "openai" : "txt2img",
            req.task_id, req.width, req.height, req.steps, req.batch_size * req.n_iter,
            job.state == SV_JOB_DONE ? (job.interrupted ? "interrupted" : "done")
            : job.state == SV_JOB_FAILED ? "failed"
            : job.cancel == SV_CANCEL_CLIENT ? "client gone"
            : job.cancel == SV_CANCEL_TIMEOUT ? "timed out"
            : job.cancel == SV_CANCEL_INTERRUPT ? "cancelled"
                                                : "shut down",
            sv_now() - job.t_submit);
    sv_job_release(&job);
    sv_gen_req_free(&req);
    return ret;
}

/* ---- the other endpoints --------------------------------------------------------------- */

static int query_true(struct MHD_Connection *c, const char *key) {
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1"));
}

/* {"id_task": "..."} of /internal/progress and /sdvk/v1/cancel. */
static int body_task_id(req_state *rs, char *out, size_t n, int *live_preview, sv_error *err) {
    json_t *root = sv_parse_object(rs->body, rs->n, err);
    if (!root)
        return -1;
    json_t *id = json_object_get(root, "id_task");
    json_t *lp = json_object_get(root, "live_preview");
    if (live_preview)
        *live_preview = !lp || json_is_true(lp);
    if (id && !json_is_string(id) && !json_is_null(id)) {
        json_decref(root);
        sv_error_clear(err);
        err->status = 422;
        err->body = json_pack("{s:[{s:[s,s], s:s, s:s}]}", "detail", "loc", "body", "id_task",
                              "msg", "str type expected", "type", "type_error.str");
        return -1;
    }
    snprintf(out, n, "%s", id && json_is_string(id) ? json_string_value(id) : "");
    json_decref(root);
    return 0;
}

static int authorized(sv_http *h, struct MHD_Connection *c) {
    const char *key = h->s->api_key;
    if (!key)
        return 1;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a || strncasecmp(a, "Bearer ", 7))
        return 0;
    a += 7;
    while (*a == ' ') a++;
    /* constant time in the key's length */
    size_t la = strlen(a), lk = strlen(key);
    unsigned char diff = (unsigned char)(la != lk);
    for (size_t i = 0; i < lk; i++) diff |= (unsigned char)(key[i] ^ (i < la ? a[i] : 0));
    return diff == 0;
}

static enum MHD_Result dispatch(sv_http *h, struct MHD_Connection *c, const char *url,
                                const char *method, req_state *rs) {
    sv_server *s = h->s;
    const route *rt = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].path)) {
            rt = &routes[i];
            break;
        }
    rs->endpoint = rt ? rt->endpoint : EP_OTHER;
    pthread_mutex_lock(&s->mu);
    s->m.requests[rs->endpoint]++;
    pthread_mutex_unlock(&s->mu);
    if (!rt)
        return send_json(h, c, 404, json_pack("{s:s}", "detail", "Not Found"));
    if (rt->endpoint != EP_PAGE && rt->endpoint != EP_HEALTH && !authorized(h, c))
        return send_json_h(h, c, 401,
                           json_pack("{s:s, s:s}", "error", "Unauthorized", "detail",
                                     "Not authenticated: send 'Authorization: Bearer <api key>'"),
                           "WWW-Authenticate", "Bearer");
    int is_get = !strcmp(method, "GET"), is_post = !strcmp(method, "POST");
    if (!((is_get && strstr(rt->methods, "GET")) || (is_post && strstr(rt->methods, "POST"))))
        return send_json_h(h, c, 405, json_pack("{s:s}", "detail", "Method Not Allowed"), "Allow",
                           rt->methods);

    sv_error err = {0};
    switch (rt->endpoint) {
    case EP_PAGE: {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sv_index_html_len, (void *)sv_index_html, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data: blob:; "
                                "style-src 'self' 'unsafe-inline'; script-src 'self' "
                                "'unsafe-inline'; connect-src 'self'");
        add_common_headers(h, r);
        enum MHD_Result ok = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        count_code(h, 200);
        return ok;
    }
    case EP_HEALTH: {
        pthread_mutex_lock(&s->mu);
        const sdvk_model_info *mi = &s->model.info;
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:b, s:f, s:i, s:i, s:i, s:i, s:i}", "status",
                              s->shutting_down ? "shutting_down" : "ok", "model", s->model.name,
                              "version", sdvk_version(), "queue", s->q_len, "busy",
                              s->running != NULL, "uptime_s", sv_now() - s->t_started,
                              "native_width", mi->native_width, "native_height",
                              mi->native_height, "size_multiple", mi->size_multiple, "max_width",
                              s->lim.max_width < mi->max_side ? s->lim.max_width : mi->max_side,
                              "max_height",
                              s->lim.max_height < mi->max_side ? s->lim.max_height : mi->max_side);
        int down = s->shutting_down;
        pthread_mutex_unlock(&s->mu);
        return send_json(h, c, down ? 503 : 200, o);
    }
    case EP_METRICS: {
        char *t = sv_metrics_text(s);
        if (!t)
            return send_detail(h, c, 500, "out of memory");
        return send_buf(h, c, 200, "text/plain; version=0.0.4; charset=utf-8", t, strlen(t), NULL,
                        NULL);
    }
    case EP_TXT2IMG:
        return handle_generate(h, c, rs, SV_TXT2IMG);
    case EP_IMG2IMG:
        return handle_generate(h, c, rs, SV_IMG2IMG);
    case EP_OAI_IMAGES:
        return handle_generate(h, c, rs, SV_OPENAI);
    case EP_PROGRESS:
        return send_json(h, c, 200, sv_progress_json(s, !query_true(c, "skip_current_image")));
    case EP_INTERRUPT:
        sv_job_cancel_task(s, NULL, SV_CANCEL_INTERRUPT);
        return send_json(h, c, 200, json_object());
    case EP_CANCEL: {
        char id[SV_TASK_ID_MAX + 2];
        if (body_task_id(rs, id, sizeof id, NULL, &err))
            return send_err(h, c, &err);
        int found = sv_job_cancel_task(s, id[0] ? id : NULL, SV_CANCEL_INTERRUPT);
        if (!found)
            return send_detail(h, c, 404, "no queued or running job has task id '%s'", id);
        return send_json(h, c, 200, json_pack("{s:b}", "cancelled", 1));
    }
    case EP_TASK_PROGRESS: {
        char id[SV_TASK_ID_MAX + 2];
        int lp = 1;
        if (body_task_id(rs, id, sizeof id, &lp, &err))
            return send_err(h, c, &err);
        return send_json(h, c, 200, sv_task_progress_json(s, id, lp));
    }
    case EP_SAMPLERS:
        return send_json(h, c, 200, sv_samplers_json());
    case EP_SCHEDULERS:
        return send_json(h, c, 200, sv_schedulers_json());
    case EP_MODELS:
        return send_json(h, c, 200, sv_models_json(s));
    case EP_UPSCALERS:
        return send_json(h, c, 200, sv_upscalers_json());
    case EP_LATENT_MODES:
        return send_json(h, c, 200, json_pack("[{s:s},{s:s}]", "name", "Latent", "name",
                                              "Latent (nearest-exact)"));
    case EP_VAE:
        return send_json(h, c, 200, json_array());
    case EP_LORAS:
        return send_json(h, c, 200, sv_loras_json(h->lora_dir));
    case EP_OAI_MODELS:
        return send_json(h, c, 200, sv_openai_models_json(s));
    case EP_PNGINFO: {
        pthread_mutex_lock(&s->mu);
        sv_limits lim = s->lim;
        pthread_mutex_unlock(&s->mu);
        json_t *o = sv_png_info(rs->body, rs->n, &lim, &err);
        return o ? send_json(h, c, 200, o) : send_err(h, c, &err);
    }
    case EP_OPTIONS:
        if (is_get) {
            pthread_mutex_lock(&s->mu);
            json_t *o = sv_options_json(s);
            pthread_mutex_unlock(&s->mu);
            return send_json(h, c, 200, o);
        } else {
            pthread_mutex_lock(&s->mu);
            sv_settings set = s->set;
            pthread_mutex_unlock(&s->mu);
            if (sv_parse_options(rs->body, rs->n, &s->model, &set, &err))
                return send_err(h, c, &err);
            pthread_mutex_lock(&s->mu);
            s->set = set;
            pthread_mutex_unlock(&s->mu);
            return send_json(h, c, 200, json_null());
        }
    default:
        return send_json(h, c, 404, json_pack("{s:s}", "detail", "Not Found"));
    }
}

/* ---- libmicrohttpd callbacks ------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    sv_http *h = cls;
    req_state *rs = *con_cls;
    size_t max_body = h->s->lim.max_body;
    if (!rs) {
        rs = calloc(1, sizeof *rs);
        if (!rs)
            return MHD_NO;
        rs->t0 = sv_now();
        *con_cls = rs;
        pthread_mutex_lock(&h->mu);
        h->inflight++;
        pthread_mutex_unlock(&h->mu);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            /* far over the limit: answer now, without reading the body */
            if (!errno && !*end && v > max_body && v - max_body > 4 * max_body) {
                rs->too_big = 1;
                return send_detail(h, c, 413, "the request body of %llu bytes is over the "
                                              "limit of %zu bytes (--max-body)", v, max_body);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t k = *upload_size;
        *upload_size = 0;
        rs->seen += k;
        if (rs->too_big || rs->n + k > max_body) {
            /* over the limit: read and drop the rest (bounded), answer 413 at the end, so
             * the client is not reset in the middle of sending */
            rs->too_big = 1;
            free(rs->body);
            rs->body = NULL;
            rs->n = rs->cap = 0;
            return rs->seen - max_body > 4 * max_body ? MHD_NO : MHD_YES;
        }
        if (rs->n + k + 1 > rs->cap) {
            size_t cap = rs->cap ? rs->cap : 4096;
            while (cap < rs->n + k + 1) cap *= 2;
            if (cap > max_body + 1)
                cap = max_body + 1;
            char *b = realloc(rs->body, cap);
            if (!b)
                return MHD_NO;
            rs->body = b;
            rs->cap = cap;
        }
        memcpy(rs->body + rs->n, upload, k);
        rs->n += k;
        rs->body[rs->n] = 0;
        return MHD_YES;
    }
    if (rs->too_big) {
        rs->endpoint = EP_OTHER;
        return send_detail(h, c, 413, "the request body is over the limit of %zu bytes "
                                      "(--max-body)", max_body);
    }
    (void)version;
    return dispatch(h, c, url, method, rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    sv_http *h = cls;
    req_state *rs = *con_cls;
    (void)c;
    (void)toe;
    if (!rs)
        return;
    free(rs->body);
    free(rs);
    *con_cls = NULL;
    pthread_mutex_lock(&h->mu);
    h->inflight--;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void on_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fputs("sdvk serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

sv_http *sv_http_start(sv_server *s, const sv_listen *addr, const char *lora_dir,
                       int max_connections, int *port_out) {
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", addr->port);
    int gai = getaddrinfo(addr->host, port, &hints, &ai);
    if (gai || !ai) {
        fprintf(stderr, "sdvk serve: error: --listen: cannot resolve '%s': %s\n", addr->host,
                gai_strerror(gai));
        return NULL;
    }
    sv_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        return NULL;
    }
    h->s = s;
    h->lora_dir = lora_dir;
    atomic_init(&h->next_task, 1);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_POLL;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        fprintf(stderr, "sdvk serve: error: cannot listen on %s:%d: %s (address in use, or "
                        "not an address of this machine?)\n",
                addr->host, addr->port, strerror(errno));
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = di ? di->port : addr->port;
    return h;
}

void sv_http_quiesce(sv_http *h) {
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void sv_http_stop(sv_http *h, double wait_s) {
    if (!h)
        return;
    double until = sv_now() + wait_s;
    pthread_mutex_lock(&h->mu);
    while (h->inflight > 0 && sv_now() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}
