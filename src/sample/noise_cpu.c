/* SD_RNG_CPU: torch.randn on the CPU, bit for bit (see noise.h).
 *
 * Every float operation below stands for one instruction of ATen's kernel and
 * must round exactly like it: float math stays float (FLT_EVAL_METHOD 0) and
 * fmaf() marks where the wheel's compiler fused a multiply and an add. No
 * product here feeds a plain addition except x * 1 + 0 (exact either way), so
 * a compiler that contracts (gcc -std=gnu11 -march=native, clang) gives the
 * same bits; checked with both. test_noise compares bits with torch goldens. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/status.h"
#include "noise.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#if FLT_EVAL_METHOD != 0
#error "noise_cpu.c needs float operations rounded to float (FLT_EVAL_METHOD 0)"
#endif

/* ---- at::mt19937 (ATen/core/MT19937RNGEngine.h) ---- */

#define MT_M 397

void sd_noise_cpu_seed(sd_noise *g, uint64_t seed) {
    /* init_with_uint32: only the low 32 bits reach the state */
    g->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < SD_MT_N; j++)
        g->mt[j] = 1812433253u * (g->mt[j - 1] ^ (g->mt[j - 1] >> 30)) + j;
    g->mt_left = 1;
    g->mt_next = 0;
    g->has_next_normal = 0;
    g->next_normal = 0.0;
}

static uint32_t twist(uint32_t u, uint32_t v) {
    return (((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

static void mt_next_state(sd_noise *g) {
    uint32_t *s = g->mt;
    int k = 0;
    for (; k < SD_MT_N - MT_M; k++) s[k] = s[k + MT_M] ^ twist(s[k], s[k + 1]);
    for (; k < SD_MT_N - 1; k++) s[k] = s[k + MT_M - SD_MT_N] ^ twist(s[k], s[k + 1]);
    s[k] = s[k + MT_M - SD_MT_N] ^ twist(s[k], s[0]);
    g->mt_left = SD_MT_N;
    g->mt_next = 0;
}

uint32_t sd_noise_mt_next(sd_noise *g) {
    if (--g->mt_left == 0)
        mt_next_state(g);
    uint32_t y = g->mt[g->mt_next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* CPUGeneratorImpl::random64: first draw is the high word */
static uint64_t mt_next64(sd_noise *g) {
    uint64_t hi = sd_noise_mt_next(g);
    uint64_t lo = sd_noise_mt_next(g);
    return (hi << 32) | lo;
}

/* uniform_real_distribution<float>(0, 1): 24 bits * 2^-24, then
 * x * (to - from) + from (exact for 1 and 0) */
static float uniform_f(sd_noise *g) {
    float x = (float)(sd_noise_mt_next(g) & 0xffffffu) * (1.0f / 16777216.0f);
    return x * 1.0f + 0.0f;
}

/* uniform_real_distribution<double>(0, 1): 53 bits of random64 * 2^-53 */
static double uniform_d(sd_noise *g) {
    double x = (double)(mt_next64(g) & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
    return x * 1.0 + 0.0;
}

/* ---- bit helpers ---- */

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float bconst(uint32_t u) { return bitsf(u); }

/* ---- the AVX2 NormalFill16 of libtorch_cpu.so (torch 2.15.0) ----
 *
 * avx_mathfun.h's log256_ps and sincos256_ps, one lane at a time, in the
 * order and with the fusions of the compiled code (objdump of
 * NormalFill16<float,true>::operator() .constprop.0). Constants are the
 * float bit patterns loaded there. */

static float avx2_log(float x) {
    const float one = 1.0f, half = 0.5f;
    uint32_t invalid = x <= 0.0f ? 0xffffffffu : 0u;
    x = x > bconst(0x00800000u) ? x : bconst(0x00800000u); /* vmaxps x, min_norm_pos */
    int32_t imm0 = (int32_t)(fbits(x) >> 23) - 127;
    x = bitsf((fbits(x) & 0x807fffffu) | fbits(half));
    float e = (float)imm0 + one;
    uint32_t mask = x < bconst(0x3f3504f3u) ? 0xffffffffu : 0u; /* SQRTHF */
    float tmp = bitsf(fbits(x) & mask);
    e = e - bitsf(fbits(one) & mask);
    x = x + -1.0f;
    x = x + tmp;
    float z = x * x;
    float y = fmaf(bconst(0x3d9021bbu), x, bconst(0xbdebd1b8u)); /* p0*x + p1 */
    y = fmaf(y, x, bconst(0x3def251au));                         /* p2 */
    y = fmaf(y, x, bconst(0xbdfe5d4fu));                         /* p3 */
    y = fmaf(y, x, bconst(0x3e11e9bfu));                         /* p4 */
    y = fmaf(y, x, bconst(0xbe2aae50u));                         /* p5 */
    y = fmaf(y, x, bconst(0x3e4cceacu));                         /* p6 */
    y = fmaf(y, x, bconst(0xbe7ffffcu));                         /* p7 */
    y = fmaf(y, x, bconst(0x3eaaaaaau));                         /* p8 */
    float eq1 = e * bconst(0xb95e8083u);                         /* e * q1 */
    y = x * y;
    y = fmaf(y, z, eq1);
    y = fmaf(-z, half, y);
    x = x + y;
    x = fmaf(e, bconst(0x3f318000u), x); /* + e * q2 */
    return bitsf(fbits(x) | invalid);
}

static void avx2_sincos(float theta, float *s_out, float *c_out) {
    float x = bitsf(fbits(theta) & 0x7fffffffu);
    uint32_t sign_sin = fbits(theta) & 0x80000000u;
    float y = x * bconst(0x3fa2f983u); /* 4/pi */
    int32_t j = (int32_t)y;            /* vcvttps2dq: truncation */
    j = (int32_t)(((uint32_t)j + 1u) & ~1u);
    float yf = (float)j;
    uint32_t swap_sin = ((uint32_t)j & 4u) << 29;
    uint32_t poly = ((uint32_t)j & 2u) == 0 ? 0xffffffffu : 0u;
    sign_sin ^= swap_sin;
    x = fmaf(yf, bconst(0xbf490000u), x); /* -DP1 */
    x = fmaf(bconst(0xb97da000u), yf, x); /* -DP2 */
    x = fmaf(yf, bconst(0xb3222169u), x); /* -DP3 */
    uint32_t sign_cos = (~((uint32_t)j - 2u) & 4u) << 29;
    float z = x * x;
    float tmp = z * 0.5f;
    float c = fmaf(bconst(0x37ccf5ceu), z, bconst(0xbab6061au)); /* coscof p0, p1 */
    c = fmaf(c, z, bconst(0x3d2aaaa5u));                         /* p2 */
    c = z * c;
    c = fmaf(z, c, -tmp);
    c = c + 1.0f;
    float s = fmaf(bconst(0xb94ca1f9u), z, bconst(0x3c08839eu)); /* sincof p0, p1 */
    s = fmaf(s, z, bconst(0xbe2aaaa3u));                         /* p2 */
    s = z * s;
    s = fmaf(x, s, x);
    float ysin2 = bitsf(fbits(s) & poly);
    float ysin1 = bitsf(fbits(c) & ~poly);
    c = c - ysin1;
    s = s - ysin2;
    float sin_r = ysin2 + ysin1;
    float cos_r = s + c;
    *s_out = bitsf(fbits(sin_r) ^ sign_sin);
    *c_out = bitsf(fbits(cos_r) ^ sign_cos);
}

static void fill16_avx2(float *d) {
    const float two_pi = bconst(0x40c90fdbu); /* (float)(2.0f * pi<double>) */
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * avx2_log(u1));
        float theta = two_pi * u2;
        float st, ct;
        avx2_sincos(theta, &st, &ct);
        d[j] = fmaf(radius * ct, 1.0f, 0.0f); /* fma(n, std, mean) */
        d[j + 8] = fmaf(radius * st, 1.0f, 0.0f);
    }
}

/* ---- the scalar NormalFill16 (ATen DEFAULT capability) ----
 * u1 = 1 - d (float), radius = sqrtf(-2 * logf(u1)), theta rounded from
 * 2pi (double) * u2, sincosf, fmaf(radius * cos, std, mean). */
static void fill16_scalar(float *d) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)((double)u2 * 6.283185307179586);
        float st = sinf(theta), ct = cosf(theta);
        d[j] = fmaf(radius * ct, 1.0f, 0.0f);
        d[j + 8] = fmaf(radius * st, 1.0f, 0.0f);
    }
}

/* at::normal_distribution<double>(0, 1) with the generator's cache */
static double normal_d(sd_noise *g) {
    if (g->has_next_normal) {
        g->has_next_normal = 0;
        return g->next_normal * 1.0 + 0.0;
    }
    double u1 = uniform_d(g);
    double u2 = uniform_d(g);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = 6.283185307179586 * u1; /* (2.0 * pi) * u1 */
    g->next_normal = r * sin(theta);
    g->has_next_normal = 1;
    return r * cos(theta) * 1.0 + 0.0;
}

sdvk_status sd_noise_cpu_randn(sd_noise *g, float *out, size_t n) {
    if (n < 16) {
        /* cpu_serial_kernel: one normal_distribution<double> per element */
        for (size_t i = 0; i < n; i++) out[i] = (float)normal_d(g);
        return SDVK_OK;
    }
    void (*fill16)(float *) = g->cpu_variant == SD_CPU_SCALAR ? fill16_scalar : fill16_avx2;
    for (size_t i = 0; i < n; i++) out[i] = uniform_f(g);
    for (size_t i = 0; i + 16 <= n; i += 16) fill16(out + i);
    if (n % 16 != 0) {
        /* recompute the last 16 values from 16 fresh uniforms */
        float *d = out + n - 16;
        for (int i = 0; i < 16; i++) d[i] = uniform_f(g);
        fill16(d);
    }
    return SDVK_OK;
}
