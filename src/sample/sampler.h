/* Samplers and schedules as data.
 *
 * A sampler run is planned on the host, in double precision, as a list of
 * model evaluations ("evals"). Before each eval the graph feeds the UNet
 * with c_in · S[0] at timestep t (CFG scale from the same row); after it,
 * every register r < R is replaced by a linear combination
 *     S'[r] = a·eps + b·noise + Σ_k c_k·S[k]
 * of the guided eps, the eval's fresh noise and the registers. S[0] is the
 * point where the next eval happens; the others carry history (the previous
 * denoised value for DPM++ 2M, past derivatives for LMS, the step's base
 * point for the two-eval Heun/DPM2/DPM++ 2S steps). With a mask, two more
 * registers hold the original latent x0 and the first noise n0, and after
 * each completed step the kept region is set back to x0 noised to that
 * step's level (A1111 / diffusers masked img2img).
 *
 * So every sampler is one recorded step subgraph whose per-eval numbers
 * (t, c_in, cfg, coefficients) are a table read by the step index; DDPM,
 * Euler a, Heun, DPM++ 2M Karras or LCM differ only in that table. The
 * k-diffusion samplers work on x = x0 + σ·n ("sigma space", c_in =
 * 1/sqrt(σ²+1)); DDIM, DDPM and LCM work on x_t as diffusers does (c_in = 1).
 *
 * This folder is the only place that knows samplers by name. */
#ifndef SD_SAMPLER_H
#define SD_SAMPLER_H

#include "sdvk.h"

#define SD_TRAIN_STEPS 1000
#define SD_SAMPLER_MAX_REGS 4 /* x + 3 LMS derivatives */
#define SD_ROW 64             /* floats per eval row */

/* Row layout: [0] t, [1] c_in, [2] cfg scale, then the update of register r
 * at sd_row_coef(R, Rt, r): {eps, noise, S[0..Rt)}; the mask blend after it
 * (r = R) with the same layout. Rt = R (+2 with a mask). */
enum { SD_ROW_T = 0, SD_ROW_CIN = 1, SD_ROW_CFG = 2, SD_ROW_HEAD = 4 };
static inline int sd_row_coef(int R, int Rt, int r) {
    (void)R;
    return SD_ROW_HEAD + r * (2 + Rt);
}

typedef struct sd_plan {
    int n_evals;   /* model evaluations of this run */
    int n_steps;   /* sampler steps of this run (after img2img truncation) */
    int n_regs;    /* R: registers the updates write (SD_SAMPLER_MAX_REGS for every
                      sampler: the step graph's layout; unused ones stay unchanged) */
    int masked;    /* 1: registers R, R+1 hold x0 and n0, rows carry the blend */
    int uses_noise;
    float *rows;   /* [n_evals][SD_ROW] */
    int *eval_step;  /* [n_evals] the step each eval belongs to (0-based) */
    int *eval_noise; /* [n_evals] 1 when the eval consumes a fresh noise draw */
    /* The start: S[0] = init_latent · x0 + init_noise · n0 (x0 = 0 for
     * txt2img), other registers 0; the latent to decode is out_scale · S[0]. */
    double init_latent, init_noise, out_scale;
    double sigma_start;  /* noise level of the first eval (for reports) */
} sd_plan;

typedef struct sd_plan_opts {
    sdvk_sampler sampler;
    sdvk_schedule schedule; /* SDVK_SCHEDULE_DEFAULT: the sampler's own */
    int steps;              /* requested steps (before strength) */
    float strength;         /* 1 = txt2img; in (0,1) img2img/inpaint start */
    float eta;              /* ancestral/SDE noise amount (ddim: diffusers' eta) */
    float cfg;
    int masked;
    int img2img;            /* 0: start from pure noise as the tools do (σ0·n for the
                               k-diffusion samplers, n for the diffusers ones) */
} sd_plan_opts;

sdvk_status sd_plan_make(const sd_plan_opts *o, sd_plan *p);
void sd_plan_free(sd_plan *p);

/* The noise level schedule (N+1 sigmas, last 0) the sampler would use;
 * sigmas must hold N+1 doubles. For tools and tests. */
sdvk_status sd_schedule_sigmas(sdvk_schedule sch, int n, double *sigmas);
/* alphas_cumprod of SD v1 (scaled_linear 0.00085..0.012, 1000 steps). */
const double *sd_alphas_cumprod(void);
/* The sampler's own schedule when the caller asks for the default. */
sdvk_schedule sd_sampler_default_schedule(sdvk_sampler s);
/* Defaults of sdvk_gen_params: DPM++ 2M with the Karras schedule. */
#define SD_DEFAULT_SAMPLER SDVK_SAMPLER_DPMPP_2M
#define SD_DEFAULT_SCHEDULE SDVK_SCHEDULE_KARRAS

#endif
