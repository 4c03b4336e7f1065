/* DDPM sampler with the original SD v1 schedule (1000 training steps,
 * betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2), respaced to N
 * inference steps t_i = (N-1-i) * (1000 / N). Each step is written as
 *     x_prev = c0 * x + c1 * eps + c2 * noise
 * (posterior mean of the predicted x0 plus the "fixed small" posterior
 * std times noise when t > 0), so a recorded graph applies it with per-step
 * coefficients read from a table. */
#ifndef SD_DDPM_H
#define SD_DDPM_H

#include "sdvk.h"

#define SD_DDPM_TRAIN_STEPS 1000

typedef struct sd_ddpm {
    int n;             /* inference steps */
    int *t;            /* [n] timesteps, descending */
    float (*coef)[3];  /* [n] c0, c1, c2 (c2 = 0 at t = 0) */
    double *alpha_bar; /* [1000] cumulative products */
} sd_ddpm;

sdvk_status sd_ddpm_init(sd_ddpm *s, int n_steps);
void sd_ddpm_free(sd_ddpm *s);
/* Number of steps with t > 0 (those that take noise). */
int sd_ddpm_noisy_steps(const sd_ddpm *s, int first);
/* img2img: first step index that keeps the last int(n*strength) steps
 * (at least one). */
int sd_ddpm_first_step(const sd_ddpm *s, float strength);

#endif
