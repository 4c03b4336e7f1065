#include "ddpm.h"

#include <math.h>
#include <stdlib.h>

#include "../core/status.h"

sdvk_status sd_ddpm_init(sd_ddpm *s, int n) {
    s->n = 0;
    s->t = NULL;
    s->coef = NULL;
    s->alpha_bar = NULL;
    if (n < 1 || n > SD_DDPM_TRAIN_STEPS)
        return sd_err(SDVK_ERR_INVALID_ARG, "steps must be in 1..%d (got %d)",
                      SD_DDPM_TRAIN_STEPS, n);
    s->t = malloc((size_t)n * sizeof *s->t);
    s->coef = malloc((size_t)n * sizeof *s->coef);
    s->alpha_bar = malloc(SD_DDPM_TRAIN_STEPS * sizeof *s->alpha_bar);
    if (!s->t || !s->coef || !s->alpha_bar) {
        sd_ddpm_free(s);
        return sd_err(SDVK_ERR_OOM, "out of memory");
    }
    s->n = n;
    const double b0 = sqrt(0.00085), b1 = sqrt(0.012);
    double ab = 1.0;
    for (int i = 0; i < SD_DDPM_TRAIN_STEPS; i++) {
        double sb = b0 + (b1 - b0) * i / (SD_DDPM_TRAIN_STEPS - 1);
        ab *= 1.0 - sb * sb;
        s->alpha_bar[i] = ab;
    }
    const int stride = SD_DDPM_TRAIN_STEPS / n;
    for (int i = 0; i < n; i++) {
        int t = (n - 1 - i) * stride, prev = t - stride;
        double ab_t = s->alpha_bar[t], ab_prev = prev >= 0 ? s->alpha_bar[prev] : 1.0;
        double beta_prod = 1.0 - ab_t, cur_alpha = ab_t / ab_prev, cur_beta = 1.0 - cur_alpha;
        /* x0 = (x - sqrt(1-ab_t) eps) / sqrt(ab_t);
         * mean = k0 x0 + k1 x; var = (1-ab_prev)/(1-ab_t) cur_beta */
        double k0 = sqrt(ab_prev) * cur_beta / beta_prod;
        double k1 = sqrt(cur_alpha) * (1.0 - ab_prev) / beta_prod;
        double var = (1.0 - ab_prev) / beta_prod * cur_beta;
        if (var < 1e-20)
            var = 1e-20;
        s->t[i] = t;
        s->coef[i][0] = (float)(k0 / sqrt(ab_t) + k1);
        s->coef[i][1] = (float)(-k0 * sqrt(beta_prod) / sqrt(ab_t));
        s->coef[i][2] = t > 0 ? (float)sqrt(var) : 0.0f;
    }
    return SDVK_OK;
}

void sd_ddpm_free(sd_ddpm *s) {
    free(s->t);
    free(s->coef);
    free(s->alpha_bar);
    s->t = NULL;
    s->coef = NULL;
    s->alpha_bar = NULL;
    s->n = 0;
}

int sd_ddpm_noisy_steps(const sd_ddpm *s, int first) {
    int k = 0;
    for (int i = first; i < s->n; i++) k += s->t[i] > 0;
    return k;
}

int sd_ddpm_first_step(const sd_ddpm *s, float strength) {
    int keep = (int)(s->n * strength);
    if (keep < 1)
        keep = 1;
    if (keep > s->n)
        keep = s->n;
    return s->n - keep;
}
