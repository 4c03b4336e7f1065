#define _GNU_SOURCE
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sd_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    uint64_t generation; /* bumped for each sd_pool_for */
    int quit;
    int busy;            /* workers still inside the current job */
    sd_pool_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_llong next;
};

typedef struct {
    sd_pool *p;
    int id;
} worker_arg;

static void drain(sd_pool *p, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->n_tasks)
            break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker(void *arg) {
    worker_arg *wa = arg;
    sd_pool *p = wa->p;
    int id = wa->id;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        drain(p, id);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->cv_done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int sd_physical_cores(void) {
    /* Count distinct (physical id, core id) pairs in /proc/cpuinfo. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int pairs[1024][2], np = 0, phys = 0, core = -1;
    char line[256];
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "physical id", 11))
                phys = atoi(strchr(line, ':') + 1);
            else if (!strncmp(line, "core id", 7)) {
                core = atoi(strchr(line, ':') + 1);
                int dup = 0;
                for (int i = 0; i < np; i++)
                    if (pairs[i][0] == phys && pairs[i][1] == core)
                        dup = 1;
                if (!dup && np < 1024) {
                    pairs[np][0] = phys;
                    pairs[np][1] = core;
                    np++;
                }
            }
        }
        fclose(f);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (np > 0 && np <= n)
        return np;
    return n > 0 ? (int)n : 1;
}

sd_pool *sd_pool_create(int n_threads) {
    if (n_threads <= 0)
        n_threads = sd_physical_cores();
    if (n_threads > 256)
        n_threads = 256;
    sd_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads > 1) {
        p->th = calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!p->th) {
            free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa || pthread_create(&p->th[i - 1], NULL, worker, (wa->p = p, wa->id = i, wa))) {
                free(wa);
                p->n = i; /* run with the threads we got */
                break;
            }
        }
    }
    return p;
}

void sd_pool_destroy(sd_pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i - 1], NULL);
    free(p->th);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

int sd_pool_threads(const sd_pool *p) { return p ? p->n : 1; }

void sd_pool_for(sd_pool *p, int64_t n_tasks, sd_pool_fn fn, void *ctx) {
    if (n_tasks <= 0)
        return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
