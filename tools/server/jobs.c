/* The job queue and its worker.
 *
 * One worker thread owns the sdvk context and runs one job at a time (a
 * context is not reentrant); the queue in front of it is bounded (--queue).
 * A job belongs to the connection thread that made it: that thread waits
 * until the job reaches a final state and only then frees it, so the queue
 * and the worker never see a freed job. Cancelling a queued job takes it
 * out of the queue at once; cancelling the running one sets its flag (the
 * progress callback returns non-zero) and calls sdvk_cancel, which stops
 * the engine within the current step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

double sv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sv_server_init(sv_server *s) {
    memset(s, 0, sizeof *s);
    if (pthread_mutex_init(&s->mu, NULL))
        return -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    /* connection threads wait with timeouts on the monotonic clock */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&s->cv_work, NULL) || pthread_cond_init(&s->cv_done, &ca);
    pthread_condattr_destroy(&ca);
    s->next_job_id = 1;
    s->t_started = sv_now();
    return rc ? -1 : 0;
}

void sv_server_destroy(sv_server *s) {
    pthread_cond_destroy(&s->cv_work);
    pthread_cond_destroy(&s->cv_done);
    pthread_mutex_destroy(&s->mu);
}

int sv_job_finished(const sv_job *job) { return job->state >= SV_JOB_DONE; }

void sv_job_release(sv_job *job) {
    for (int i = 0; i < job->n_results; i++) sdvk_result_free(&job->results[i]);
    free(job->results);
    job->results = NULL;
    job->n_results = 0;
    free(job->preview_png);
    job->preview_png = NULL;
}

void sv_recent_add(sv_server *s, const char *task_id) {
    if (!task_id[0])
        return;
    snprintf(s->recent[s->recent_next], sizeof s->recent[0], "%s", task_id);
    s->recent_next = (s->recent_next + 1) % SV_RECENT;
}

static int task_in_use(const sv_server *s, const char *task_id) {
    if (s->running && !strcmp(s->running->req->task_id, task_id))
        return 1;
    for (const sv_job *j = s->q_head; j; j = j->next)
        if (!strcmp(j->req->task_id, task_id))
            return 1;
    return 0;
}

int sv_job_submit(sv_server *s, sv_job *job) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->shutting_down)
        rc = 503;
    else if (s->q_len >= s->q_max && (s->q_len > 0 || s->running)) {
        /* the job would have to wait and no place is left (with --queue 0 a
         * job is taken only when the worker is idle) */
        rc = 503;
        s->m.jobs_rejected_full++;
    } else if (task_in_use(s, job->req->task_id))
        rc = 409;
    if (rc == 0) {
        job->id = s->next_job_id++;
        job->state = SV_JOB_QUEUED;
        job->t_submit = sv_now();
        job->next = NULL;
        if (s->q_tail)
            s->q_tail->next = job;
        else
            s->q_head = job;
        s->q_tail = job;
        s->q_len++;
        pthread_cond_signal(&s->cv_work);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Takes job out of the queue (caller holds mu); 1 when it was there. */
static int unqueue(sv_server *s, sv_job *job) {
    sv_job **pp = &s->q_head, *prev = NULL;
    while (*pp && *pp != job) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return 0;
    *pp = job->next;
    if (s->q_tail == job)
        s->q_tail = prev;
    s->q_len--;
    job->next = NULL;
    return 1;
}

/* Caller holds mu. */
static void cancel_locked(sv_server *s, sv_job *job, sv_cancel_reason why) {
    if (sv_job_finished(job))
        return;
    if (job->cancel == SV_CANCEL_NONE || why == SV_CANCEL_CLIENT)
        job->cancel = why;
    if (job->state == SV_JOB_QUEUED && unqueue(s, job)) {
        job->state = SV_JOB_CANCELLED;
        if (why == SV_CANCEL_TIMEOUT)
            s->m.jobs_timeout++;
        else if (why == SV_CANCEL_CLIENT)
            s->m.jobs_client_gone++;
        else if (why == SV_CANCEL_INTERRUPT)
            s->m.jobs_interrupted++;
        else
            s->m.jobs_shutdown++;
        job->t_end = sv_now();
        sv_recent_add(s, job->req->task_id);
        pthread_cond_broadcast(&s->cv_done);
    } else if (job->state == SV_JOB_RUNNING && s->running == job) {
        /* an atomic store in the engine: it stops within the current step */
        sdvk_cancel(s->ctx);
    }
}

void sv_job_cancel(sv_server *s, sv_job *job, sv_cancel_reason why) {
    pthread_mutex_lock(&s->mu);
    cancel_locked(s, job, why);
    pthread_mutex_unlock(&s->mu);
}

int sv_job_cancel_task(sv_server *s, const char *task_id, sv_cancel_reason why) {
    pthread_mutex_lock(&s->mu);
    sv_job *hit = NULL;
    if (!task_id)
        hit = s->running;
    else if (s->running && !strcmp(s->running->req->task_id, task_id))
        hit = s->running;
    else
        for (sv_job *j = s->q_head; j && !hit; j = j->next)
            if (!strcmp(j->req->task_id, task_id))
                hit = j;
    if (hit)
        cancel_locked(s, hit, why);
    pthread_mutex_unlock(&s->mu);
    return hit != NULL;
}

void sv_shutdown_begin(sv_server *s) {
    pthread_mutex_lock(&s->mu);
    s->shutting_down = 1;
    while (s->q_head) {
        sv_job *j = s->q_head;
        s->q_head = j->next;
        j->next = NULL;
        j->cancel = SV_CANCEL_SHUTDOWN;
        j->state = SV_JOB_CANCELLED;
        j->t_end = sv_now();
        s->m.jobs_shutdown++;
    }
    s->q_tail = NULL;
    s->q_len = 0;
    pthread_cond_broadcast(&s->cv_done);
    pthread_mutex_unlock(&s->mu);
}

void sv_shutdown_cancel_running(sv_server *s) {
    pthread_mutex_lock(&s->mu);
    if (s->running)
        cancel_locked(s, s->running, SV_CANCEL_SHUTDOWN);
    pthread_mutex_unlock(&s->mu);
}

int sv_busy(sv_server *s) {
    pthread_mutex_lock(&s->mu);
    int b = s->running != NULL;
    pthread_mutex_unlock(&s->mu);
    return b;
}

/* ---- the worker ------------------------------------------------------------------ */

typedef struct run_ctx {
    sv_server *s;
    sv_job *job;
} run_ctx;

static int on_progress(void *user, int step, int n_steps) {
    run_ctx *rc = user;
    pthread_mutex_lock(&rc->s->mu);
    rc->job->step = step;
    rc->job->n_steps = n_steps;
    int stop = rc->job->cancel != SV_CANCEL_NONE;
    pthread_mutex_unlock(&rc->s->mu);
    return stop;
}

static void on_preview(void *user, int step, const sdvk_image *img) {
    run_ctx *rc = user;
    uint8_t *png = NULL;
    size_t n = 0;
    /* encoded here, outside the lock: /progress then only copies bytes */
    if (sdvk_png_encode(img, NULL, &png, &n) != SDVK_OK)
        return;
    pthread_mutex_lock(&rc->s->mu);
    free(rc->job->preview_png);
    rc->job->preview_png = malloc(n);
    if (rc->job->preview_png) {
        memcpy(rc->job->preview_png, png, n);
        rc->job->preview_png_n = n;
        rc->job->preview_step = step;
    }
    pthread_mutex_unlock(&rc->s->mu);
    sdvk_free(png);
}

static void run_job(sv_server *s, sv_job *job, int preview_every) {
    const sv_gen_req *r = job->req;
    run_ctx rc = {s, job};
    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.prompt = r->prompt;
    p.negative_prompt = r->negative_prompt;
    p.width = r->width;
    p.height = r->height;
    p.steps = r->steps;
    p.cfg_scale = r->cfg_scale;
    p.sampler = r->sampler;
    p.schedule = r->schedule;
    p.rng = r->rng;
    p.eta = r->eta;
    p.clip_skip = r->clip_skip;
    p.batch_size = r->batch_size;
    p.init_image = r->init.data ? &r->init : NULL;
    p.mask = r->mask.data ? &r->mask : NULL;
    p.mask_blur = r->mask_blur;
    if (p.init_image)
        p.strength = r->strength;
    if (r->enable_hr) {
        p.hires_scale = r->hires_scale;
        p.hires_steps = r->hires_steps;
        p.hires_denoise = r->hires_denoise;
        p.hires_upscaler = r->upscaler;
    }
    p.progress = on_progress;
    p.progress_user = &rc;
    p.preview = on_preview;
    p.preview_user = &rc;
    p.preview_every = preview_every;

    job->results = calloc((size_t)r->n_iter, sizeof *job->results);
    if (!job->results) {
        job->status = SDVK_ERR_OOM;
        snprintf(job->err, sizeof job->err, "out of memory");
        return;
    }
    for (int it = 0; it < r->n_iter; it++) {
        pthread_mutex_lock(&s->mu);
        job->iter = it;
        job->step = 0;
        int stop = job->cancel != SV_CANCEL_NONE;
        pthread_mutex_unlock(&s->mu);
        if (stop) {
            job->status = SDVK_ERR_CANCELLED;
            break;
        }
        p.seed = r->seed + (uint64_t)it * (uint64_t)r->batch_size;
        sdvk_result res;
        memset(&res, 0, sizeof res);
        sdvk_status st = sdvk_generate(s->ctx, &p, &res);
        if (st != SDVK_OK) {
            job->status = st;
            snprintf(job->err, sizeof job->err, "%s",
                     sdvk_last_error()[0] ? sdvk_last_error() : sdvk_status_str(st));
            break;
        }
        job->results[job->n_results++] = res;
    }
}

static void *worker_main(void *arg) {
    sv_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->q_head && !s->stop_worker)
            pthread_cond_wait(&s->cv_work, &s->mu);
        if (!s->q_head)
            break;
        sv_job *job = s->q_head;
        s->q_head = job->next;
        if (!s->q_head)
            s->q_tail = NULL;
        s->q_len--;
        job->next = NULL;
        job->state = SV_JOB_RUNNING;
        job->t_start = sv_now();
        s->running = job;
        int preview_every = s->set.preview_every;
        pthread_mutex_unlock(&s->mu);

        run_job(s, job, preview_every);
        sdvk_stats st;
        sdvk_stats_get(s->ctx, &st);

        pthread_mutex_lock(&s->mu);
        s->running = NULL;
        job->t_end = sv_now();
        s->m.engine = st;
        int images = 0, steps = 0;
        for (int i = 0; i < job->n_results; i++) images += job->results[i].n_images;
        steps = job->n_results * job->req->steps;
        if (job->status == SDVK_OK) {
            job->state = SV_JOB_DONE;
            s->m.jobs_ok++;
        } else if (job->status == SDVK_ERR_CANCELLED && job->cancel == SV_CANCEL_INTERRUPT) {
            /* A1111 answers an interrupted request with what it has */
            job->state = SV_JOB_DONE;
            job->interrupted = 1;
            s->m.jobs_interrupted++;
        } else if (job->status == SDVK_ERR_CANCELLED && job->cancel != SV_CANCEL_NONE) {
            job->state = SV_JOB_CANCELLED;
            if (job->cancel == SV_CANCEL_TIMEOUT)
                s->m.jobs_timeout++;
            else if (job->cancel == SV_CANCEL_CLIENT)
                s->m.jobs_client_gone++;
            else
                s->m.jobs_shutdown++;
        } else {
            job->state = SV_JOB_FAILED;
            s->m.jobs_failed++;
        }
        s->m.images += (unsigned long)images;
        s->m.steps += (unsigned long)steps;
        double dt = job->t_end - job->t_start;
        s->m.seconds_generating += dt;
        if (steps > 0 && job->status == SDVK_OK)
            s->m.last_seconds_per_step = dt / steps;
        s->avg_job_s = s->avg_job_s > 0 ? 0.8 * s->avg_job_s + 0.2 * dt : dt;
        sv_recent_add(s, job->req->task_id);
        pthread_cond_broadcast(&s->cv_done);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int sv_worker_start(sv_server *s) {
    if (pthread_create(&s->worker, NULL, worker_main, s))
        return -1;
    s->worker_started = 1;
    return 0;
}

void sv_worker_stop(sv_server *s) {
    if (!s->worker_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop_worker = 1;
    pthread_cond_broadcast(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->worker, NULL);
    s->worker_started = 0;
}
