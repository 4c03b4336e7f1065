/* Samplers and schedules as data (see sampler.h): each sampler below is
 * written the way k-diffusion / diffusers write it, but on symbolic values:
 * a `lin` is a linear combination of the current eval's eps, its fresh
 * noise and the registers, so "x + d·dt" builds the coefficients the
 * recorded graph applies. Everything is computed in double. */
#include "sampler.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"

/* ---- names -------------------------------------------------------------- */

static const struct {
    const char *name, *display;
} k_samplers[SDVK_SAMPLER_COUNT] = {
    [SDVK_SAMPLER_EULER] = {"euler", "Euler"},
    [SDVK_SAMPLER_EULER_A] = {"euler_a", "Euler a"},
    [SDVK_SAMPLER_HEUN] = {"heun", "Heun"},
    [SDVK_SAMPLER_DPM2] = {"dpm2", "DPM2"},
    [SDVK_SAMPLER_DPMPP_2M] = {"dpm++2m", "DPM++ 2M"},
    [SDVK_SAMPLER_DPMPP_2M_SDE] = {"dpm++2m_sde", "DPM++ 2M SDE"},
    [SDVK_SAMPLER_DPMPP_2S_A] = {"dpm++2s_a", "DPM++ 2S a"},
    [SDVK_SAMPLER_LMS] = {"lms", "LMS"},
    [SDVK_SAMPLER_DDIM] = {"ddim", "DDIM"},
    [SDVK_SAMPLER_LCM] = {"lcm", "LCM"},
    [SDVK_SAMPLER_DDPM] = {"ddpm", "DDPM"},
};

static const struct {
    const char *name, *display;
} k_schedules[SDVK_SCHEDULE_COUNT] = {
    [SDVK_SCHEDULE_DEFAULT] = {"default", "Automatic"},
    [SDVK_SCHEDULE_DISCRETE] = {"discrete", "Uniform"},
    [SDVK_SCHEDULE_KARRAS] = {"karras", "Karras"},
    [SDVK_SCHEDULE_EXPONENTIAL] = {"exponential", "Exponential"},
    [SDVK_SCHEDULE_SGM_UNIFORM] = {"sgm_uniform", "SGM Uniform"},
    [SDVK_SCHEDULE_SIMPLE] = {"simple", "Simple"},
};

const char *sdvk_sampler_name(sdvk_sampler s) {
    return (unsigned)s < SDVK_SAMPLER_COUNT ? k_samplers[s].name : "?";
}
const char *sdvk_sampler_display_name(sdvk_sampler s) {
    return (unsigned)s < SDVK_SAMPLER_COUNT ? k_samplers[s].display : "?";
}
const char *sdvk_schedule_name(sdvk_schedule s) {
    return (unsigned)s < SDVK_SCHEDULE_COUNT ? k_schedules[s].name : "?";
}
const char *sdvk_schedule_display_name(sdvk_schedule s) {
    return (unsigned)s < SDVK_SCHEDULE_COUNT ? k_schedules[s].display : "?";
}

/* Folds the spellings of other tools onto one key: lower case, "dpmpp" ->
 * "dpm++", "ancestral" -> "a", no spaces, '_' or '-' ("DPM++ 2S a",
 * "dpmpp_2s_ancestral" and "dpm++2s_a" all become "dpm++2sa"). */
static void fold(const char *s, char *out, size_t n) {
    size_t o = 0;
    for (; *s && o + 6 < n; s++) {
        char c = (char)tolower((unsigned char)*s);
        if (c == ' ' || c == '_' || c == '-')
            continue;
        if (!strncmp(s, "dpmpp", 5) || !strncmp(s, "DPMPP", 5)) {
            memcpy(out + o, "dpm++", 5);
            o += 5;
            s += 4;
            continue;
        }
        if (!strncasecmp(s, "ancestral", 9)) {
            out[o++] = 'a';
            s += 8;
            continue;
        }
        out[o++] = c;
    }
    out[o] = 0;
}

int sdvk_sampler_from_name(const char *name) {
    if (!name)
        return -1;
    char key[64], k2[64];
    fold(name, key, sizeof key);
    /* k-diffusion / ComfyUI spellings the fold does not cover */
    static const struct {
        const char *alias;
        sdvk_sampler s;
    } extra[] = {{"dpm2m", SDVK_SAMPLER_DPMPP_2M},           {"kdpm2", SDVK_SAMPLER_DPM2},
                 {"kdpm2a", SDVK_SAMPLER_DPM2},               {"eulerdiscrete", SDVK_SAMPLER_EULER},
                 {"eulerancestraldiscrete", SDVK_SAMPLER_EULER_A}, {"klms", SDVK_SAMPLER_LMS},
                 {"dpm++2mkarras", SDVK_SAMPLER_DPMPP_2M},    {"dpmsolvermultistep", SDVK_SAMPLER_DPMPP_2M}};
    for (int i = 0; i < SDVK_SAMPLER_COUNT; i++) {
        fold(k_samplers[i].name, k2, sizeof k2);
        if (!strcmp(key, k2))
            return i;
        fold(k_samplers[i].display, k2, sizeof k2);
        if (!strcmp(key, k2))
            return i;
    }
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (!strcmp(key, extra[i].alias) && extra[i].s != SDVK_SAMPLER_DPM2)
            return extra[i].s;
    if (!strcmp(key, "kdpm2"))
        return SDVK_SAMPLER_DPM2;
    return -1;
}

int sdvk_schedule_from_name(const char *name) {
    if (!name)
        return -1;
    char key[64], k2[64];
    fold(name, key, sizeof key);
    for (int i = 0; i < SDVK_SCHEDULE_COUNT; i++) {
        fold(k_schedules[i].name, k2, sizeof k2);
        if (!strcmp(key, k2))
            return i;
        fold(k_schedules[i].display, k2, sizeof k2);
        if (!strcmp(key, k2))
            return i;
    }
    /* ComfyUI's "normal" is k-diffusion's default spacing */
    if (!strcmp(key, "normal") || !strcmp(key, "uniform"))
        return SDVK_SCHEDULE_DISCRETE;
    if (!strcmp(key, "auto"))
        return SDVK_SCHEDULE_DEFAULT;
    return -1;
}

sdvk_schedule sd_sampler_default_schedule(sdvk_sampler s) {
    (void)s;
    return SDVK_SCHEDULE_DISCRETE;
}

/* ---- the model's noise levels -------------------------------------------- */

static double g_ac[SD_TRAIN_STEPS], g_logsig[SD_TRAIN_STEPS];
static int g_init;

static void init_tables(void) {
    if (g_init)
        return;
    const double b0 = sqrt(0.00085), b1 = sqrt(0.012);
    double ab = 1.0;
    for (int i = 0; i < SD_TRAIN_STEPS; i++) {
        double sb = b0 + (b1 - b0) * i / (SD_TRAIN_STEPS - 1);
        ab *= 1.0 - sb * sb;
        g_ac[i] = ab;
        g_logsig[i] = 0.5 * log((1.0 - ab) / ab);
    }
    g_init = 1; /* idempotent: racing first calls write the same values */
}

const double *sd_alphas_cumprod(void) {
    init_tables();
    return g_ac;
}

/* k-diffusion DiscreteSchedule.t_to_sigma: log sigma interpolated. */
static double t_to_sigma(double t) {
    if (t < 0)
        t = 0;
    if (t > SD_TRAIN_STEPS - 1)
        t = SD_TRAIN_STEPS - 1;
    int lo = (int)floor(t), hi = (int)ceil(t);
    double w = t - lo;
    return exp((1 - w) * g_logsig[lo] + w * g_logsig[hi]);
}

/* k-diffusion DiscreteSchedule.sigma_to_t (quantize off). */
static double sigma_to_t(double sigma) {
    double ls = log(sigma);
    int lo = 0;
    for (int i = 0; i < SD_TRAIN_STEPS; i++)
        if (ls - g_logsig[i] >= 0)
            lo = i; /* the last index whose log sigma is <= ls */
    if (lo > SD_TRAIN_STEPS - 2)
        lo = SD_TRAIN_STEPS - 2;
    double low = g_logsig[lo], high = g_logsig[lo + 1];
    double w = (low - ls) / (low - high);
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    return (1 - w) * lo + w * (lo + 1);
}

static double sigma_min(void) { return exp(g_logsig[0]); }
static double sigma_max(void) { return exp(g_logsig[SD_TRAIN_STEPS - 1]); }

sdvk_status sd_schedule_sigmas(sdvk_schedule sch, int n, double *s) {
    init_tables();
    if (n < 1)
        return sd_err(SDVK_ERR_INVALID_ARG, "schedule: %d steps", n);
    const double smin = sigma_min(), smax = sigma_max();
    switch (sch) {
    case SDVK_SCHEDULE_DEFAULT:
    case SDVK_SCHEDULE_DISCRETE: /* k-diffusion get_sigmas: t = linspace(999, 0, n) */
        for (int i = 0; i < n; i++)
            s[i] = t_to_sigma(n == 1 ? 999.0 : 999.0 - 999.0 * i / (n - 1));
        break;
    case SDVK_SCHEDULE_KARRAS: {
        const double rho = 7.0, a = pow(smax, 1 / rho), b = pow(smin, 1 / rho);
        for (int i = 0; i < n; i++) {
            double ramp = n == 1 ? 0.0 : (double)i / (n - 1);
            s[i] = pow(a + ramp * (b - a), rho);
        }
        break;
    }
    case SDVK_SCHEDULE_EXPONENTIAL:
        for (int i = 0; i < n; i++) {
            double ramp = n == 1 ? 0.0 : (double)i / (n - 1);
            s[i] = exp(log(smax) + ramp * (log(smin) - log(smax)));
        }
        break;
    case SDVK_SCHEDULE_SGM_UNIFORM: /* ComfyUI: linspace(999, 0, n + 1)[:-1] */
        for (int i = 0; i < n; i++) s[i] = t_to_sigma(999.0 - 999.0 * i / n);
        break;
    case SDVK_SCHEDULE_SIMPLE: { /* ComfyUI: sigmas[-(1 + int(x * 1000 / n))] */
        double ss = (double)SD_TRAIN_STEPS / n;
        for (int i = 0; i < n; i++) s[i] = exp(g_logsig[SD_TRAIN_STEPS - 1 - (int)(i * ss)]);
        break;
    }
    default: return sd_err(SDVK_ERR_INVALID_ARG, "unknown schedule %d", (int)sch);
    }
    s[n] = 0.0;
    return SDVK_OK;
}

/* ---- symbolic linear combinations ----------------------------------------- */

#define MAXB (2 + SD_SAMPLER_MAX_REGS + 2)
enum { B_EPS = 0, B_NOISE = 1, B_S0 = 2 };
typedef struct {
    double c[MAXB];
} lin;

static lin L0(void) {
    lin r;
    memset(&r, 0, sizeof r);
    return r;
}
static lin Lreg(int k) {
    lin r = L0();
    r.c[B_S0 + k] = 1;
    return r;
}
static lin Leps(void) {
    lin r = L0();
    r.c[B_EPS] = 1;
    return r;
}
static lin Lnoise(void) {
    lin r = L0();
    r.c[B_NOISE] = 1;
    return r;
}
/* a·x + b·y */
static lin ax_by(double a, lin x, double b, lin y) {
    lin r;
    for (int i = 0; i < MAXB; i++) r.c[i] = a * x.c[i] + b * y.c[i];
    return r;
}

/* The plan under construction: one eval at a time. */
typedef struct {
    sd_plan *p;
    int R, Rt, cap;
    float cfg;
    /* the current eval: where it happens, and the new registers */
    double t, c_in;
    lin next[SD_SAMPLER_MAX_REGS];
    int set[SD_SAMPLER_MAX_REGS];
    int noise;
} builder;

static sdvk_status b_begin(builder *b, double t, double c_in) {
    if (b->p->n_evals == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        float *rows = realloc(b->p->rows, (size_t)cap * SD_ROW * sizeof(float));
        if (!rows)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        b->p->rows = rows;
        int *es = realloc(b->p->eval_step, (size_t)cap * sizeof(int));
        if (!es)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        b->p->eval_step = es;
        int *en = realloc(b->p->eval_noise, (size_t)cap * sizeof(int));
        if (!en)
            return sd_err(SDVK_ERR_OOM, "out of memory");
        b->p->eval_noise = en;
        b->cap = cap;
    }
    b->t = t;
    b->c_in = c_in;
    b->noise = 0;
    for (int r = 0; r < b->R; r++) b->set[r] = 0;
    return SDVK_OK;
}

static void b_put(builder *b, int r, lin v) {
    b->next[r] = v;
    b->set[r] = 1;
}

/* Ends the eval of `step`; blend: with a mask, after the eval that ends a
 * step, the kept region is set to bx0·x0 + bn0·n0 (its noise level then). */
static void b_end(builder *b, int step, int ends_step, double bx0, double bn0) {
    sd_plan *p = b->p;
    float *row = p->rows + (size_t)p->n_evals * SD_ROW;
    memset(row, 0, SD_ROW * sizeof(float));
    row[SD_ROW_T] = (float)b->t;
    row[SD_ROW_CIN] = (float)b->c_in;
    row[SD_ROW_CFG] = b->cfg;
    for (int r = 0; r < b->R; r++) {
        lin v = b->set[r] ? b->next[r] : Lreg(r); /* unset: unchanged */
        float *c = row + sd_row_coef(b->R, b->Rt, r);
        for (int j = 0; j < 2 + b->Rt; j++) c[j] = (float)v.c[j];
        if (v.c[B_NOISE] != 0)
            b->noise = 1;
    }
    if (p->masked) {
        /* d = F·(bx0·x0 + bn0·n0 − x); the graph adds keep ⊙ d to x */
        float *c = row + sd_row_coef(b->R, b->Rt, b->R);
        double F = ends_step ? 1.0 : 0.0;
        c[2 + 0] = (float)-F;
        c[2 + b->R] = (float)(F * bx0);
        c[2 + b->R + 1] = (float)(F * bn0);
    }
    p->eval_step[p->n_evals] = step;
    p->eval_noise[p->n_evals] = b->noise;
    p->uses_noise |= b->noise;
    p->n_evals++;
}

/* ---- k-diffusion samplers (x = x0 + σ n) ------------------------------------ */

static double cin(double sigma) { return 1.0 / sqrt(sigma * sigma + 1.0); }

static void ancestral(double from, double to, double eta, double *down, double *up) {
    if (eta == 0) {
        *down = to;
        *up = 0;
        return;
    }
    double u = eta * sqrt(to * to * (from * from - to * to) / (from * from));
    *up = to < u ? to : u;
    *down = sqrt(to * to - *up * *up);
}

/* Gauss-Legendre, 5 points: exact for the cubic Lagrange bases LMS integrates. */
static double lms_coeff(int order, const double *t, int i, int j) {
    static const double x[5] = {0.0, -0.5384693101056831, 0.5384693101056831, -0.9061798459386640,
                                0.9061798459386640};
    static const double w[5] = {0.5688888888888889, 0.4786286704993665, 0.4786286704993665,
                                0.2369268850561891, 0.2369268850561891};
    double a = t[i], b = t[i + 1], sum = 0;
    for (int q = 0; q < 5; q++) {
        double tau = 0.5 * (b - a) * x[q] + 0.5 * (a + b), prod = 1;
        for (int k = 0; k < order; k++)
            if (k != j)
                prod *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
        sum += w[q] * prod;
    }
    return 0.5 * (b - a) * sum;
}

/* One k-diffusion sampler over sigmas s[0..n] (s[n] = 0). */
static sdvk_status plan_k(builder *b, sdvk_sampler sm, const double *s, int n, double eta) {
    const lin x = Lreg(0), eps = Leps(), noise = Lnoise();
    for (int i = 0; i < n; i++) {
        const double sg = s[i], sn = s[i + 1];
        const int last = sn == 0;
        lin den = ax_by(1, x, -sg, eps); /* denoised = x − σ·eps */
        SD_TRY(b_begin(b, sigma_to_t(sg), cin(sg)));
        switch (sm) {
        case SDVK_SAMPLER_EULER: /* d = eps; x + d·(σn − σ) */
            b_put(b, 0, ax_by(1, x, sn - sg, eps));
            break;
        case SDVK_SAMPLER_EULER_A: {
            double down, up;
            ancestral(sg, sn, eta, &down, &up);
            lin v = ax_by(1, x, down - sg, eps);
            if (sn > 0)
                v = ax_by(1, v, up, noise);
            b_put(b, 0, v);
            break;
        }
        case SDVK_SAMPLER_HEUN:
        case SDVK_SAMPLER_DPM2: {
            if (last) {
                b_put(b, 0, ax_by(1, x, sn - sg, eps));
                break;
            }
            double mid = sm == SDVK_SAMPLER_HEUN ? sn : exp(0.5 * (log(sg) + log(sn)));
            /* first eval: x2 = x + d·dt1; keep x (and d for Heun) */
            b_put(b, 0, ax_by(1, x, mid - sg, eps));
            b_put(b, 1, x);
            if (sm == SDVK_SAMPLER_HEUN)
                b_put(b, 2, eps);
            b_end(b, i, 0, 0, 0);
            SD_TRY(b_begin(b, sigma_to_t(mid), cin(mid)));
            if (sm == SDVK_SAMPLER_HEUN) /* x + (d + d2)/2·dt */
                b_put(b, 0, ax_by(1, ax_by(1, Lreg(1), 0.5 * (sn - sg), Lreg(2)), 0.5 * (sn - sg), eps));
            else /* x + d2·(σn − σ) */
                b_put(b, 0, ax_by(1, Lreg(1), sn - sg, eps));
            break;
        }
        case SDVK_SAMPLER_DPMPP_2S_A: {
            double down, up;
            ancestral(sg, sn, eta, &down, &up);
            if (down == 0) {
                b_put(b, 0, ax_by(1, x, down - sg, eps));
                break;
            }
            double t = -log(sg), tn = -log(down), h = tn - t, sm2 = exp(-(t + 0.5 * h));
            /* x2 = (σ(s)/σ) x − expm1(−h/2) denoised */
            b_put(b, 0, ax_by(sm2 / sg, x, -expm1(-0.5 * h), den));
            b_put(b, 1, x);
            b_end(b, i, 0, 0, 0);
            SD_TRY(b_begin(b, sigma_to_t(sm2), cin(sm2)));
            lin den2 = ax_by(1, x, -sm2, eps);
            lin v = ax_by(down / sg, Lreg(1), -expm1(-h), den2);
            if (sn > 0)
                v = ax_by(1, v, up, noise);
            b_put(b, 0, v);
            break;
        }
        case SDVK_SAMPLER_DPMPP_2M: {
            /* register 1: the previous denoised value */
            double t = -log(sg);
            if (i == 0 || last) {
                lin v = last ? den : ax_by(sn / sg, x, -expm1(-(-log(sn) - t)), den);
                b_put(b, 0, v);
            } else {
                double tn = -log(sn), h = tn - t, hl = t + log(s[i - 1]), r = hl / h;
                lin dd = ax_by(1 + 1 / (2 * r), den, -1 / (2 * r), Lreg(1));
                b_put(b, 0, ax_by(sn / sg, x, -expm1(-h), dd));
            }
            b_put(b, 1, den);
            break;
        }
        case SDVK_SAMPLER_DPMPP_2M_SDE: {
            /* midpoint solver; registers: 1 = previous denoised */
            if (last) {
                b_put(b, 0, den);
            } else {
                double t = -log(sg), sx = -log(sn), h = sx - t, eh = eta * h;
                lin v = ax_by(sn / sg * exp(-eh), x, -expm1(-h - eh), den);
                if (i > 0 && s[i - 1] > 0) {
                    double hl = t + log(s[i - 1]), r = hl / h, k = 0.5 * -expm1(-h - eh) / r;
                    v = ax_by(1, v, k, ax_by(1, den, -1, Lreg(1)));
                }
                if (eta != 0)
                    v = ax_by(1, v, sn * sqrt(-expm1(-2 * eh)), noise);
                b_put(b, 0, v);
            }
            b_put(b, 1, den);
            break;
        }
        case SDVK_SAMPLER_LMS: {
            /* registers 1..3: the previous derivatives, newest first */
            int order = i + 1 < 4 ? i + 1 : 4;
            lin v = ax_by(1, x, lms_coeff(order, s, i, 0), eps);
            for (int j = 1; j < order; j++) v = ax_by(1, v, lms_coeff(order, s, i, j), Lreg(j));
            b_put(b, 0, v);
            b_put(b, 3, Lreg(2));
            b_put(b, 2, Lreg(1));
            b_put(b, 1, eps);
            break;
        }
        default: return sd_err(SDVK_ERR_INVALID_ARG, "sampler %d is not a k-diffusion sampler", sm);
        }
        b_end(b, i, 1, 1.0, sn);
    }
    return SDVK_OK;
}

/* ---- diffusers samplers on x_t (DDIM, DDPM, LCM) ---------------------------- */

/* Steps of a VP sampler: timestep, alpha_bar there and at the next step. */
typedef struct {
    double t, ab, ab_next;
} vp_step;

/* DDIM, DDPM and LCM are discrete-time: a schedule other than their own
 * picks which training timesteps they visit (the nearest to each sigma, as
 * diffusers' custom `timesteps=` lists are), so diffusers gives the oracle. */
static void vp_from_timesteps(sdvk_sampler sm, const int *ts, int n, vp_step *v) {
    for (int i = 0; i < n; i++) {
        v[i].t = ts[i];
        v[i].ab = g_ac[ts[i]];
        if (i + 1 < n)
            v[i].ab_next = g_ac[ts[i + 1]];
        else /* DDIM: set_alpha_to_one off; DDPM: "one"; LCM: unused */
            v[i].ab_next = sm == SDVK_SAMPLER_DDIM ? g_ac[0] : sm == SDVK_SAMPLER_DDPM ? 1.0 : v[i].ab;
    }
}

/* The samplers' own ("discrete") timesteps, as diffusers sets them for SD. */
static void vp_discrete(sdvk_sampler sm, int n, int *ts) {
    if (sm == SDVK_SAMPLER_DDIM) { /* SD v1.5 config: leading, steps_offset 1 */
        int ratio = SD_TRAIN_STEPS / n;
        for (int i = 0; i < n; i++) ts[i] = (n - 1 - i) * ratio + 1;
    } else if (sm == SDVK_SAMPLER_DDPM) { /* DDPMScheduler defaults: leading, no offset */
        int ratio = SD_TRAIN_STEPS / n;
        for (int i = 0; i < n; i++) ts[i] = (n - 1 - i) * ratio;
    } else { /* LCM: 50 original steps, k = 20, evenly spaced indices */
        const int orig = 50, k = SD_TRAIN_STEPS / orig;
        for (int i = 0; i < n; i++) ts[i] = (orig - (int)floor((double)i * orig / n)) * k - 1;
    }
}

static sdvk_status plan_vp(builder *b, sdvk_sampler sm, const vp_step *v, int n, double eta) {
    const lin x = Lreg(0), eps = Leps(), noise = Lnoise();
    for (int i = 0; i < n; i++) {
        const double ab = v[i].ab, abn = v[i].ab_next, sa = sqrt(ab), sb = sqrt(1 - ab);
        lin x0 = ax_by(1 / sa, x, -sb / sa, eps); /* predicted original sample */
        SD_TRY(b_begin(b, v[i].t, 1.0));
        if (sm == SDVK_SAMPLER_DDIM) {
            double var = (1 - abn) / (1 - ab) * (1 - ab / abn), sd = eta * sqrt(var > 0 ? var : 0);
            double dir = 1 - abn - sd * sd;
            lin nx = ax_by(sqrt(abn), x0, sqrt(dir > 0 ? dir : 0), eps);
            if (sd > 0)
                nx = ax_by(1, nx, sd, noise);
            b_put(b, 0, nx);
        } else if (sm == SDVK_SAMPLER_DDPM) {
            double alpha = ab / abn, beta = 1 - alpha;
            double k0 = sqrt(abn) * beta / (1 - ab), k1 = sqrt(alpha) * (1 - abn) / (1 - ab);
            double var = (1 - abn) / (1 - ab) * beta;
            if (var < 1e-20)
                var = 1e-20;
            lin nx = ax_by(k0, x0, k1, x);
            if (abn < 1.0) /* t > 0 */
                nx = ax_by(1, nx, sqrt(var), noise);
            b_put(b, 0, nx);
        } else { /* LCM: boundary-condition scalings at t · 10 */
            double st = v[i].t * 10.0, sd2 = 0.25;
            double c_skip = sd2 / (st * st + sd2), c_out = st / sqrt(st * st + sd2);
            lin den = ax_by(c_out, x0, c_skip, x);
            if (i + 1 < n)
                b_put(b, 0, ax_by(sqrt(abn), den, sqrt(1 - abn), noise));
            else
                b_put(b, 0, den);
        }
        /* the kept region at the next step's level (clean after the last) */
        double an = i + 1 < n ? abn : 1.0;
        b_end(b, i, 1, sqrt(an), sqrt(1 - an));
    }
    return SDVK_OK;
}

/* ---- plans ------------------------------------------------------------------- */

static int is_vp(sdvk_sampler s) {
    return s == SDVK_SAMPLER_DDIM || s == SDVK_SAMPLER_DDPM || s == SDVK_SAMPLER_LCM;
}

static int regs_of(sdvk_sampler s) {
    switch (s) {
    case SDVK_SAMPLER_HEUN: return 3;
    case SDVK_SAMPLER_DPM2:
    case SDVK_SAMPLER_DPMPP_2M:
    case SDVK_SAMPLER_DPMPP_2M_SDE:
    case SDVK_SAMPLER_DPMPP_2S_A: return 2;
    case SDVK_SAMPLER_LMS: return 4;
    default: return 1;
    }
}

void sd_plan_free(sd_plan *p) {
    free(p->rows);
    free(p->eval_step);
    free(p->eval_noise);
    memset(p, 0, sizeof *p);
}

sdvk_status sd_plan_make(const sd_plan_opts *o, sd_plan *p) {
    memset(p, 0, sizeof *p);
    init_tables();
    if ((unsigned)o->sampler >= SDVK_SAMPLER_COUNT)
        return sd_err(SDVK_ERR_INVALID_ARG, "unknown sampler %d", (int)o->sampler);
    if ((unsigned)o->schedule >= SDVK_SCHEDULE_COUNT)
        return sd_err(SDVK_ERR_INVALID_ARG, "unknown schedule %d", (int)o->schedule);
    if (o->steps < 1 || o->steps > SD_TRAIN_STEPS)
        return sd_err(SDVK_ERR_INVALID_ARG, "steps must be in 1..%d (got %d)", SD_TRAIN_STEPS,
                      o->steps);
    if (!(o->strength > 0.0f && o->strength <= 1.0f))
        return sd_err(SDVK_ERR_INVALID_ARG, "strength must be in (0, 1] (got %g)", o->strength);
    if (!(o->eta >= 0.0f && o->eta <= 10.0f))
        return sd_err(SDVK_ERR_INVALID_ARG, "eta must be in 0..10 (got %g)", o->eta);
    if (!isfinite(o->cfg))
        return sd_err(SDVK_ERR_INVALID_ARG, "cfg scale must be finite");
    const int N = o->steps;
    sdvk_schedule sch = o->schedule == SDVK_SCHEDULE_DEFAULT ? sd_sampler_default_schedule(o->sampler)
                                                              : o->schedule;
    if (o->sampler == SDVK_SAMPLER_LCM && sch == SDVK_SCHEDULE_DISCRETE && N > 50)
        return sd_err(SDVK_ERR_INVALID_ARG, "lcm takes at most 50 steps with its own schedule "
                      "(got %d)", N);
    /* img2img: keep the last int(N · strength) steps (at least one), as
     * diffusers' pipelines do */
    int keep = (int)(N * (double)o->strength);
    if (keep < 1)
        keep = 1;
    if (keep > N)
        keep = N;
    const int first = N - keep;
    p->n_steps = keep;
    /* Every plan uses the step graph's register layout (SD_SAMPLER_MAX_REGS,
     * the unused ones unchanged), so one prepared graph serves all samplers. */
    (void)regs_of;
    p->n_regs = SD_SAMPLER_MAX_REGS;
    p->masked = o->masked;
    builder b = {.p = p, .R = p->n_regs, .Rt = p->n_regs + (o->masked ? 2 : 0), .cfg = o->cfg};
    sdvk_status s = SDVK_OK;
    if (is_vp(o->sampler)) {
        vp_step *v = malloc((size_t)N * sizeof *v);
        double *sig = malloc((size_t)(N + 1) * sizeof *sig);
        int *ts = malloc((size_t)N * sizeof *ts);
        if (!v || !sig || !ts)
            s = sd_err(SDVK_ERR_OOM, "out of memory");
        else if (sch == SDVK_SCHEDULE_DISCRETE)
            vp_discrete(o->sampler, N, ts);
        else if ((s = sd_schedule_sigmas(sch, N, sig)) == SDVK_OK)
            for (int i = 0; i < N; i++) ts[i] = (int)lround(sigma_to_t(sig[i]));
        if (!s)
            vp_from_timesteps(o->sampler, ts, N, v);
        free(ts);
        if (!s) {
            /* diffusers: txt2img starts at randn · init_noise_sigma (1),
             * img2img at scheduler.add_noise(x0, n, t_first) */
            p->init_noise = o->img2img ? sqrt(1 - v[first].ab) : 1.0;
            p->init_latent = o->img2img ? sqrt(v[first].ab) : 0.0;
            p->out_scale = 1.0;
            p->sigma_start = sqrt((1 - v[first].ab) / v[first].ab);
            s = plan_vp(&b, o->sampler, v + first, keep, o->eta);
        }
        free(v);
        free(sig);
    } else {
        double *sig = malloc((size_t)(N + 1) * sizeof *sig);
        if (!sig)
            s = sd_err(SDVK_ERR_OOM, "out of memory");
        else
            s = sd_schedule_sigmas(sch, N, sig);
        if (!s) {
            p->init_noise = sig[first];
            p->init_latent = o->img2img ? 1.0 : 0.0;
            p->out_scale = 1.0;
            p->sigma_start = sig[first];
            s = plan_k(&b, o->sampler, sig + first, keep, o->eta);
        }
        free(sig);
    }
    if (s)
        sd_plan_free(p);
    return s;
}
