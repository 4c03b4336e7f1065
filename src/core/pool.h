/* A fixed thread pool for data-parallel loops. Created once per backend;
 * sd_pool_for never allocates, so it is safe inside a sampler step. */
#ifndef SD_POOL_H
#define SD_POOL_H

#include <stdint.h>

typedef struct sd_pool sd_pool;

/* fn(ctx, task, thread): called once for every task in [0, n_tasks), on
 * threads 0..n_threads-1 (the caller runs as thread 0). Tasks are handed out
 * dynamically, so uneven tasks balance. */
typedef void (*sd_pool_fn)(void *ctx, int64_t task, int thread);

/* n_threads <= 0: physical core count. Returns NULL on failure. */
sd_pool *sd_pool_create(int n_threads);
void sd_pool_destroy(sd_pool *p);
int sd_pool_threads(const sd_pool *p);
/* Runs the tasks and returns when all are done. p may be NULL (runs serially). */
void sd_pool_for(sd_pool *p, int64_t n_tasks, sd_pool_fn fn, void *ctx);

/* Physical cores (falls back to logical CPUs when topology is unknown). */
int sd_physical_cores(void);

#endif
