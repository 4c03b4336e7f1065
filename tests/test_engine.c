/* The long-lived engine through the public API: resident weights, the graph
 * cache, keep/trim, cancellation, the log callback.
 *
 *   test_engine MODEL VOCAB cpu|vulkan [cancel]
 *
 * Three pictures in one context with different steps, CFG scale, sampler,
 * seed and size must prepare every weight exactly once (sdvk_stats), give the
 * same bytes as the same requests in fresh contexts, and keep = NONE / trim
 * must free what they promise. "cancel" instead times sdvk_cancel from
 * another thread during a long generation: on the CPU it must stop within a
 * step. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sdvk.h"

static int g_fails;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            printf(__VA_ARGS__);                          \
            printf("\n");                                 \
            g_fails++;                                    \
        }                                                 \
    } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct req {
    int steps, w, h;
    float cfg;
    sdvk_sampler sampler;
    sdvk_schedule schedule;
    uint64_t seed;
} req;

static const req k_reqs[3] = {
    {3, 64, 64, 7.5f, SDVK_SAMPLER_EULER_A, SDVK_SCHEDULE_DISCRETE, 1},
    {5, 64, 64, 4.0f, SDVK_SAMPLER_DPMPP_2M, SDVK_SCHEDULE_KARRAS, 2},
    {4, 72, 40, 7.5f, SDVK_SAMPLER_DDIM, SDVK_SCHEDULE_DISCRETE, 3},
};

static int g_warnings;
static void on_log(void *user, sdvk_log_level level, const char *msg) {
    (void)user;
    if (level <= SDVK_LOG_WARN)
        g_warnings++;
    if (level == SDVK_LOG_ERROR)
        printf("log error: %s\n", msg);
}

static sdvk_status make(sdvk_ctx *ctx, const req *r, sdvk_image *out) {
    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.prompt = "a red circle on a blue background";
    p.negative_prompt = "green";
    p.width = r->w;
    p.height = r->h;
    p.steps = r->steps;
    p.cfg_scale = r->cfg;
    p.sampler = r->sampler;
    p.schedule = r->schedule;
    p.seed = r->seed;
    return sdvk_txt2img(ctx, &p, out);
}

static sdvk_ctx *open_ctx(const char *model, const char *vocab, int vk, sdvk_keep keep) {
    sdvk_options o;
    sdvk_options_default(&o);
    o.backend = vk ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU;
    o.vocab_path = vocab;
    o.n_threads = 2;
    o.keep = keep;
    o.log = on_log;
    sdvk_ctx *c = NULL;
    if (sdvk_create(model, &o, &c) != SDVK_OK)
        return NULL;
    return c;
}

static void resident(const char *model, const char *vocab, int vk) {
    sdvk_ctx *ctx = open_ctx(model, vocab, vk, SDVK_KEEP_ALL);
    CHECK(ctx, "create: %s", sdvk_last_error());
    if (!ctx)
        return;
    printf("backend: %s\n", sdvk_backend_name(ctx));
    sdvk_stats st0, st[3];
    sdvk_stats_get(ctx, &st0);
    CHECK(st0.weights_prepared == 0, "weights prepared before any generation: %ld",
          st0.weights_prepared);
    sdvk_image img[3];
    memset(img, 0, sizeof img);
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();
        sdvk_status s = make(ctx, &k_reqs[i], &img[i]);
        CHECK(s == SDVK_OK, "picture %d: %s", i, sdvk_last_error());
        sdvk_stats_get(ctx, &st[i]);
        printf("picture %d (%dx%d, %d steps, cfg %g, %s %s, seed %llu): %.3f s; weights prepared %ld, "
               "resident %ld (%.1f MiB), graphs prepared %ld, cached %ld\n",
               i, k_reqs[i].w, k_reqs[i].h, k_reqs[i].steps, k_reqs[i].cfg,
               sdvk_sampler_name(k_reqs[i].sampler), sdvk_schedule_name(k_reqs[i].schedule),
               (unsigned long long)k_reqs[i].seed, now_s() - t0, st[i].weights_prepared,
               st[i].weights_resident, st[i].weight_bytes / 1048576.0, st[i].graphs_prepared,
               st[i].graphs_cached);
    }
    CHECK(st[0].weights_prepared > 0, "no weight was prepared");
    CHECK(st[1].weights_prepared == st[0].weights_prepared &&
              st[2].weights_prepared == st[0].weights_prepared,
          "weights converted again: %ld, %ld, %ld", st[0].weights_prepared, st[1].weights_prepared,
          st[2].weights_prepared);
    CHECK(st[2].images == 3, "images %ld", st[2].images);
    /* the same requests in fresh contexts give the same bytes */
    for (int i = 0; i < 3; i++) {
        sdvk_ctx *f = open_ctx(model, vocab, vk, SDVK_KEEP_ALL);
        sdvk_image o = {0};
        CHECK(f && make(f, &k_reqs[i], &o) == SDVK_OK, "fresh picture %d: %s", i, sdvk_last_error());
        if (o.data && img[i].data)
            CHECK(o.width == img[i].width && o.height == img[i].height &&
                      !memcmp(o.data, img[i].data, (size_t)o.width * o.height * 3),
                  "picture %d differs from a fresh context's", i);
        sdvk_image_free(&o);
        sdvk_destroy(f);
    }
    /* trim frees everything prepared; the next picture prepares again */
    sdvk_trim(ctx);
    sdvk_stats t;
    sdvk_stats_get(ctx, &t);
    CHECK(t.weights_resident == 0 && t.graphs_cached == 0 && t.weight_bytes == 0,
          "after trim: %ld weights, %ld graphs resident", t.weights_resident, t.graphs_cached);
    sdvk_image again = {0};
    CHECK(make(ctx, &k_reqs[0], &again) == SDVK_OK, "after trim: %s", sdvk_last_error());
    if (again.data && img[0].data)
        CHECK(!memcmp(again.data, img[0].data, (size_t)64 * 64 * 3), "after trim: another picture");
    sdvk_stats_get(ctx, &t);
    CHECK(t.weights_prepared == 2 * st[0].weights_prepared,
          "after trim the weights are prepared once more: %ld (first %ld)", t.weights_prepared,
          st[0].weights_prepared);
    sdvk_image_free(&again);
    for (int i = 0; i < 3; i++) sdvk_image_free(&img[i]);
    sdvk_destroy(ctx);

    /* keep = NONE: nothing stays resident after a generation */
    ctx = open_ctx(model, vocab, vk, SDVK_KEEP_NONE);
    sdvk_image o = {0};
    CHECK(ctx && make(ctx, &k_reqs[1], &o) == SDVK_OK, "keep none: %s", sdvk_last_error());
    sdvk_stats_get(ctx, &t);
    CHECK(t.weights_resident == 0 && t.graphs_cached == 0,
          "keep none: %ld weights, %ld graphs still resident", t.weights_resident, t.graphs_cached);
    sdvk_image_free(&o);
    sdvk_destroy(ctx);
}

typedef struct canceller {
    sdvk_ctx *ctx;
    double delay, t_cancel;
} canceller;

static void *cancel_later(void *arg) {
    canceller *c = arg;
    usleep((useconds_t)(c->delay * 1e6));
    c->t_cancel = now_s();
    sdvk_cancel(c->ctx);
    return NULL;
}

typedef struct stepclock {
    double last, longest;
} stepclock;

static int on_step(void *user, int step, int n) {
    (void)step, (void)n;
    stepclock *s = user;
    double t = now_s();
    if (s->last > 0 && t - s->last > s->longest)
        s->longest = t - s->last;
    s->last = t;
    return 0;
}

static void cancel_test(const char *model, const char *vocab, int vk) {
    sdvk_ctx *ctx = open_ctx(model, vocab, vk, SDVK_KEEP_ALL);
    CHECK(ctx, "create: %s", sdvk_last_error());
    if (!ctx)
        return;
    /* 256x256: steps long enough to cancel in the middle of one */
    sdvk_gen_params p;
    sdvk_gen_params_default(&p);
    p.prompt = "a red circle";
    p.width = p.height = 256;
    p.steps = 40;
    stepclock sc = {0};
    p.progress = on_step;
    p.progress_user = &sc;
    sdvk_image img = {0};
    /* one uncancelled run to measure a step (and prepare everything) */
    p.steps = 3;
    CHECK(sdvk_txt2img(ctx, &p, &img) == SDVK_OK, "warm-up: %s", sdvk_last_error());
    sdvk_image_free(&img);
    double step = sc.longest;
    sc.last = sc.longest = 0;
    p.steps = 40;
    canceller c = {ctx, 2.5 * step + 0.05, 0};
    pthread_t th;
    pthread_create(&th, NULL, cancel_later, &c);
    sdvk_status s = sdvk_txt2img(ctx, &p, &img);
    double t_end = now_s();
    pthread_join(th, NULL);
    double lag = t_end - c.t_cancel;
    printf("cancel: a step takes %.3f s; stopped %.3f s after sdvk_cancel (%s)\n", step, lag,
           sdvk_status_str(s));
    CHECK(s == SDVK_ERR_CANCELLED, "status %s, expected cancelled", sdvk_status_str(s));
    /* CPU: within the step it arrived in; Vulkan: after the step on the device */
    CHECK(lag < (vk ? 2.0 : 1.0) * step + 0.05, "stopped %.3f s after the cancel (a step: %.3f s)",
          lag, step);
    sdvk_image_free(&img);
    /* the next generation is not cancelled by the old flag */
    p.steps = 2;
    p.progress = NULL;
    CHECK(sdvk_txt2img(ctx, &p, &img) == SDVK_OK, "after a cancel: %s", sdvk_last_error());
    sdvk_image_free(&img);
    sdvk_destroy(ctx);
}

/* Previews: every k-th step but the last, in order, of the preview's size
 * (latent size, or the picture's with TAESD), changing from step to step;
 * the picture equals the one made without previews (the sampler run is cut
 * where previews are due, and resumes). */
typedef struct prev_log {
    int n, steps[64], w, h, changed;
    uint8_t last[64 * 64 * 3];
} prev_log;

static void on_prev(void *user, int step, const sdvk_image *img) {
    prev_log *l = user;
    if (l->n < 64)
        l->steps[l->n] = step;
    l->w = img->width;
    l->h = img->height;
    size_t n = (size_t)img->width * img->height * 3;
    if (n <= sizeof l->last) {
        if (l->n && memcmp(l->last, img->data, n))
            l->changed = 1;
        memcpy(l->last, img->data, n);
    }
    l->n++;
}

static void preview_test(const char *model, const char *vocab, int vk, const char *taesd) {
    for (int with_taesd = 0; with_taesd <= (taesd != NULL); with_taesd++) {
        sdvk_options o;
        sdvk_options_default(&o);
        o.backend = vk ? SDVK_BACKEND_VULKAN : SDVK_BACKEND_CPU;
        o.vocab_path = vocab;
        o.n_threads = 2;
        o.log = on_log;
        o.taesd_path = with_taesd ? taesd : NULL;
        sdvk_ctx *ctx = NULL;
        CHECK(sdvk_create(model, &o, &ctx) == SDVK_OK, "create: %s", sdvk_last_error());
        if (!ctx)
            return;
        const req *r = &k_reqs[1]; /* 5 steps of DPM++ 2M */
        sdvk_image plain = {0}, withp = {0};
        sdvk_gen_params p;
        CHECK(make(ctx, r, &plain) == SDVK_OK, "picture: %s", sdvk_last_error());
        for (int every = 1; every <= 2; every++) {
            prev_log l;
            memset(&l, 0, sizeof l);
            sdvk_gen_params_default(&p);
            p.prompt = "a red circle on a blue background";
            p.negative_prompt = "green";
            p.width = r->w;
            p.height = r->h;
            p.steps = r->steps;
            p.cfg_scale = r->cfg;
            p.sampler = r->sampler;
            p.schedule = r->schedule;
            p.seed = r->seed;
            p.preview = on_prev;
            p.preview_user = &l;
            p.preview_every = every;
            sdvk_result res;
            sdvk_status s = sdvk_generate(ctx, &p, &res);
            CHECK(s == SDVK_OK, "picture with previews: %s", sdvk_last_error());
            if (s)
                continue;
            withp = res.images[0];
            int want = (r->steps - 1) / every, ok = l.n == want;
            for (int i = 0; ok && i < l.n; i++) ok = l.steps[i] == (i + 1) * every;
            CHECK(ok, "every %d: %d previews (want %d)", every, l.n, want);
            int ew = with_taesd ? r->w : r->w / 8, eh = with_taesd ? r->h : r->h / 8;
            CHECK(l.w == ew && l.h == eh, "preview %dx%d, want %dx%d", l.w, l.h, ew, eh);
            CHECK(l.n < 2 || l.changed, "every %d: the previews never change", every);
            CHECK(plain.data && withp.width == plain.width &&
                      !memcmp(plain.data, withp.data, (size_t)plain.width * plain.height * 3),
                  "every %d: previews changed the picture", every);
            printf("ok   %s previews every %d step(s): %d of %dx%d\n", with_taesd ? "TAESD" : "latent",
                   every, l.n, l.w, l.h);
            sdvk_result_free(&res);
        }
        sdvk_image_free(&plain);
        sdvk_destroy(ctx);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_engine MODEL VOCAB cpu|vulkan [cancel | preview [TAESD]]\n");
        return 2;
    }
    int vk = !strcmp(argv[3], "vulkan");
    if (vk) {
        sdvk_ctx *probe = open_ctx(argv[1], argv[2], 1, SDVK_KEEP_ALL);
        if (!probe) {
            printf("NOTE: no usable Vulkan device (%s): checking the CPU backend instead\n",
                   sdvk_last_error());
            vk = 0;
        }
        sdvk_destroy(probe);
    }
    if (argc > 4 && !strcmp(argv[4], "cancel"))
        cancel_test(argv[1], argv[2], vk);
    else if (argc > 4 && !strcmp(argv[4], "preview"))
        preview_test(argv[1], argv[2], vk, argc > 5 ? argv[5] : NULL);
    else
        resident(argv[1], argv[2], vk);
    printf("%s\n", g_fails ? "FAILED" : "all passed");
    return g_fails ? 1 : 0;
}
