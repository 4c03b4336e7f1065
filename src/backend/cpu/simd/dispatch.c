/* Run-time choice of the SIMD kernels (compiled with baseline flags, so it
 * runs on any CPU of the architecture): CPUID/XGETBV on x86, HWCAP on
 * aarch64. Also the ISA-independent weight packing and the unpacked GEMM
 * fallback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../core/q8.h"
#include "../../../core/status.h"
#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SIMD_X86 1
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

simd_pw *sd_simd_pw_alloc(int64_t n, int64_t k, int nr, sd_dtype dt, const void *bias,
                          sd_dtype bdt, size_t pbytes) {
    size_t head = (sizeof(simd_pw) + 63) / 64 * 64;
    size_t bbytes = bias ? ((size_t)n * 4 + 63) / 64 * 64 : 0;
    size_t total = (head + bbytes + pbytes + 63) / 64 * 64;
    unsigned char *blk = aligned_alloc(64, total ? total : 64);
    if (!blk)
        return NULL;
    simd_pw *pw = (simd_pw *)blk;
    pw->n = n;
    pw->k = k;
    pw->nr = nr;
    pw->dtype = dt;
    pw->bias = bias ? (float *)(blk + head) : NULL;
    pw->panels = blk + head + bbytes;
    pw->scales = NULL;
    pw->q8ukr = NULL;
    pw->bytes = total;
    if (bias)
        sd_to_f32(pw->bias, bias, bdt, (size_t)n);
    return pw;
}

simd_pw *sd_simd_pack_weights(const void *w, sd_dtype dt, int64_t n, int64_t k, const int64_t *koff,
                              const void *bias, sd_dtype bdt, int nr) {
    if (dt != SD_F32 && dt != SD_F16 && dt != SD_BF16)
        return NULL;
    size_t es = sd_dtype_size(dt);
    int64_t npan = (n + nr - 1) / nr;
    simd_pw *pw = sd_simd_pw_alloc(n, k, nr, dt, bias, bdt, (size_t)npan * (size_t)k * (size_t)nr * es);
    if (!pw)
        return NULL;
    /* Panel p, depth kk, column c <- w[p*nr + c][koff[kk]]; raw bits are
     * copied, so no rounding happens here. */
    for (int64_t p = 0; p < npan; p++) {
        unsigned char *dp = (unsigned char *)pw->panels + (size_t)p * (size_t)k * (size_t)nr * es;
        for (int c = 0; c < nr; c++) {
            int64_t row = p * nr + c;
            if (row >= n) {
                for (int64_t kk = 0; kk < k; kk++) memset(dp + ((size_t)kk * nr + c) * es, 0, es);
                continue;
            }
            const unsigned char *src = (const unsigned char *)w + (size_t)row * (size_t)k * es;
            if (es == 4) {
                const uint32_t *s4 = (const uint32_t *)src;
                uint32_t *d4 = (uint32_t *)dp;
                for (int64_t kk = 0; kk < k; kk++) d4[kk * nr + c] = s4[koff ? koff[kk] : kk];
            } else {
                const uint16_t *s2 = (const uint16_t *)src;
                uint16_t *d2 = (uint16_t *)dp;
                for (int64_t kk = 0; kk < k; kk++) d2[kk * nr + c] = s2[koff ? koff[kk] : kk];
            }
        }
    }
    return pw;
}

simd_pw *sd_simd_pack_q8(const sd_tensor *tw, const void *w, int64_t n, int64_t k, const int64_t *koff,
                         const void *bias, sd_dtype bdt, int nr, sd_q8_ukr_fn ukr) {
    sd_dtype dt = tw->dtype;
    if (!sd_q8_eligible(tw->ndim, tw->ne) || k % SD_Q8_BLOCK ||
        (dt != SD_Q8 && dt != SD_F32 && dt != SD_F16 && dt != SD_BF16) || (dt == SD_Q8 && !tw->scale))
        return NULL;
    int64_t npan = (n + nr - 1) / nr, nb = k / SD_Q8_BLOCK;
    size_t qbytes = (size_t)npan * (size_t)k * (size_t)nr;
    simd_pw *pw = sd_simd_pw_alloc(n, k, nr, SD_Q8, bias, bdt, qbytes + (size_t)npan * (size_t)nb * (size_t)nr * 2);
    size_t es = sd_dtype_size(dt);
    float *row = malloc((size_t)k * sizeof(float));
    unsigned char *raw = malloc((size_t)k * es);
    int8_t *qrow = malloc((size_t)k);
    uint16_t *srow = malloc((size_t)nb * 2);
    if (!pw || !row || !raw || !qrow || !srow) {
        free(pw), free(row), free(raw), free(qrow), free(srow);
        return NULL;
    }
    int8_t *pq = pw->panels;
    pw->scales = (uint16_t *)(pq + qbytes);
    pw->q8ukr = ukr;
    /* Stored blocks run along dim 1 (inner = the dims after it): element e
     * of a row has scale (e / inner / 32) * inner + e % inner. */
    int64_t inner = 1;
    for (int d = 2; d < tw->ndim; d++) inner *= tw->ne[d];
    for (int64_t r = 0; r < npan * nr; r++) {
        int64_t p = r / nr, c = r % nr;
        int8_t *dq = pq + (size_t)p * (size_t)k * (size_t)nr + (ukr ? 4 * c : c);
        uint16_t *ds = pw->scales + (size_t)p * (size_t)nb * (size_t)nr + c;
#define QAT(kk) dq[ukr ? ((kk) / 4 * nr * 4 + (kk) % 4) : (kk) * nr]
        if (r >= n) {
            for (int64_t kk = 0; kk < k; kk++) QAT(kk) = 0;
            for (int64_t b = 0; b < nb; b++) ds[b * nr] = 0;
            continue;
        }
        const unsigned char *src = (const unsigned char *)w + (size_t)r * (size_t)k * es;
        if (dt == SD_Q8) {
            const int8_t *qs = (const int8_t *)src;
            const uint16_t *ss = (const uint16_t *)tw->scale + r * (k / SD_Q8_BLOCK);
            for (int64_t kk = 0; kk < k; kk++) QAT(kk) = qs[koff ? koff[kk] : kk];
            for (int64_t b = 0; b < nb; b++) {
                int64_t e = koff ? koff[b * SD_Q8_BLOCK] : b * SD_Q8_BLOCK;
                ds[b * nr] = ss[e / inner / SD_Q8_BLOCK * inner + e % inner];
            }
        } else {
            /* the row in GEMM depth order, quantised per 32 of that order
             * (= per 32 input channels of one tap, the stored blocks) */
            if (!koff)
                sd_to_f32(row, src, dt, (size_t)k);
            else if (es == 2) { /* gather raw bits, then convert the run at once */
                for (int64_t kk = 0; kk < k; kk++) memcpy(raw + 2 * kk, src + 2 * (size_t)koff[kk], 2);
                sd_to_f32(row, raw, dt, (size_t)k);
            } else {
                for (int64_t kk = 0; kk < k; kk++) memcpy(&row[kk], src + 4 * (size_t)koff[kk], 4);
            }
            sd_q8_quantize_row(row, k, qrow, srow);
            for (int64_t kk = 0; kk < k; kk++) QAT(kk) = qrow[kk];
            for (int64_t b = 0; b < nb; b++) ds[b * nr] = srow[b];
        }
    }
#undef QAT
    free(row), free(raw), free(qrow), free(srow);
    return pw;
}

/* ------------------------------------------------- unpacked fallback -- */

typedef struct slow_job {
    const sd_cpu_ctx *c;
    const void *w, *bias;
    sd_dtype wdt, bdt;
    const sd_tensor *tw; /* the weight (SD_Q8: its scales and geometry) */
} slow_job;

static float elem(const void *p, sd_dtype dt, int64_t i) {
    switch (dt) {
    case SD_F16: return sd_f16_to_f32(((const uint16_t *)p)[i]);
    case SD_BF16: return sd_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

static float welem(const slow_job *j, int64_t i) {
    if (j->wdt != SD_Q8)
        return elem(j->w, j->wdt, i);
    const sd_tensor *t = j->tw;
    int64_t inner = t->ndim == 4 ? t->ne[2] * t->ne[3] : 1, row = t->ne[1] * inner;
    int64_t o = i / row, e = i % row;
    uint16_t h = ((const uint16_t *)t->scale)[o * (row / SD_Q8_BLOCK) + e / inner / SD_Q8_BLOCK * inner + e % inner];
    return sd_f16_to_f32(h) * (float)((const int8_t *)j->w)[i];
}

/* One output row (matmul) or output pixel (conv) per task. */
static void slow_task(void *ctx, int64_t m, int thread) {
    (void)thread;
    const slow_job *j = ctx;
    const sd_cpu_ctx *c = j->c;
    const sd_node *n = c->n;
    const sd_graph *g = c->g;
    const float *x = c->data[n->in[0]];
    float *out = c->data[n->out];
    const float *res = n->in[3] >= 0 ? c->data[n->in[3]] : NULL;
    const sd_tensor *tx = &g->t[n->in[0]], *tw = &g->t[n->in[1]];
    int64_t N = tw->ne[0];
    for (int64_t o = 0; o < N; o++) {
        double acc = j->bias ? elem(j->bias, j->bdt, o) : 0.0;
        if (n->op == SD_OP_MATMUL) {
            int64_t K = tw->ne[1];
            for (int64_t kk = 0; kk < K; kk++) acc += (double)x[m * K + kk] * welem(j, o * K + kk);
        } else {
            const sd_tensor *to = &g->t[n->out];
            int64_t H = tx->ne[1], W = tx->ne[2], Ci = tx->ne[3], kh = tw->ne[2], kw = tw->ne[3];
            int64_t Ho = to->ne[1], Wo = to->ne[2], b = m / (Ho * Wo), oy = m / Wo % Ho, ox = m % Wo;
            for (int64_t ky = 0; ky < kh; ky++)
                for (int64_t kx = 0; kx < kw; kx++) {
                    int64_t iy = oy * n->i[0] - n->i[1] + ky, ix = ox * n->i[0] - n->i[2] + kx;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                        continue;
                    const float *px = x + ((b * H + iy) * W + ix) * Ci;
                    for (int64_t ci = 0; ci < Ci; ci++)
                        acc += (double)px[ci] * welem(j, ((o * Ci + ci) * kh + ky) * kw + kx);
                }
        }
        if (res)
            acc += res[m * N + o];
        out[m * N + o] = (float)acc;
    }
}

void sd_simd_gemm_unpacked(const sd_cpu_ctx *c) {
    const sd_node *n = c->n;
    int w = n->in[1], b = n->in[2];
    slow_job j = {.c = c, .tw = &c->g->t[w]};
    /* An f32 copy (or an activation) when the backend made one, else raw. */
    j.w = c->data[w] ? c->data[w] : c->raw[w];
    j.wdt = c->data[w] ? SD_F32 : c->g->t[w].dtype;
    if (b >= 0) {
        j.bias = c->data[b] ? c->data[b] : c->raw[b];
        j.bdt = c->data[b] ? SD_F32 : c->g->t[b].dtype;
    }
    const sd_tensor *to = &c->g->t[n->out];
    int64_t rows = sd_tensor_nelem(to) / to->ne[to->ndim - 1];
    sd_pool_for(c->pool, rows, slow_task, &j);
}

/* ------------------------------------------------------------ dispatch -- */

typedef struct simd_cpu {
    int avx2, avx512, avx512bf16, neon;
    int neondot; /* Armv8.2 dot product (sdot), HWCAP_ASIMDDP */
    int avx512vnni; /* AVX512-VNNI + VL with the OS saving AVX-512 state: vpdpbusd ymm (EVEX) */
    int avxvnni;    /* AVX-VNNI: vpdpbusd ymm (VEX) */
} simd_cpu;

static simd_cpu detect(void) {
    simd_cpu f = {0};
#ifdef SIMD_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return f;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    int ymm_os = (lo & 0x6) == 0x6;         /* XMM + YMM state enabled by the OS */
    int zmm_os = ymm_os && (lo & 0xe0) == 0xe0; /* opmask + ZMM state */
    if (__get_cpuid_max(0, NULL) < 7)
        return f;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1,
        vl = (b >> 31) & 1;
    f.avx2 = ymm_os && avx2 && fma && f16c;
    f.avx512 = f.avx2 && zmm_os && f512 && dq && bw && vl;
    f.avx512vnni = f.avx2 && zmm_os && f512 && vl && ((c >> 11) & 1);
    if (f.avx2 && a >= 1) { /* leaf 7 subleaf 0 EAX = last subleaf */
        __cpuid_count(7, 1, a, b, c, d);
        f.avx512bf16 = f.avx512 && ((a >> 5) & 1);
        f.avxvnni = (a >> 4) & 1;
    }
#endif
#if defined(__aarch64__)
    f.neon = (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
    f.neondot = f.neon && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
    return f;
}

sd_q8_ukr_fn sd_simd_q8_vnni_ukr(void) {
#ifdef SIMD_X86
    simd_cpu f = detect();
    if (f.avx512vnni)
        return sd_q8_ukr_avx512vnni;
#ifdef SDVK_HAVE_AVXVNNI
    if (f.avxvnni)
        return sd_q8_ukr_avxvnni;
#endif
#endif
    return NULL;
}

int sd_cpu_simd_select(const char *isa, sd_cpu_kernels *k) {
    if (!isa || !*isa)
        isa = "auto";
    simd_cpu f = detect();
    const char *pick = NULL;
    int vnni = f.avx512vnni || f.avxvnni;
#if defined(SIMD_X86) && !defined(SDVK_HAVE_AVXVNNI)
    vnni = f.avx512vnni; /* this compiler could not build the VEX kernel */
#endif
    if (!strcmp(isa, "auto")) {
        pick = f.avx512         ? "avx512"
               : f.avx2 && vnni ? "avx2vnni"
               : f.avx2         ? "avx2"
               : f.neondot      ? "neondot"
               : f.neon         ? "neon"
                                : "scalar";
    } else if (!strcmp(isa, "scalar")) {
        pick = "scalar";
    } else if (!strcmp(isa, "avx2") || !strcmp(isa, "avx2vnni") || !strcmp(isa, "avx512") ||
               !strcmp(isa, "neon") || !strcmp(isa, "neondot")) {
        int have = !strcmp(isa, "avx2")       ? f.avx2
                   : !strcmp(isa, "avx2vnni") ? f.avx2 && vnni
                   : !strcmp(isa, "avx512")   ? f.avx512
                   : !strcmp(isa, "neondot")  ? f.neondot
                                              : f.neon;
        if (!have) {
            return sd_err(SDVK_ERR_UNSUPPORTED, "cpu isa '%s': this CPU (or this build) does not support it",
                          isa);
        }
        pick = isa;
    } else if (!strcmp(isa, "avx512bf16")) {
        /* Only on request: bf16 operands change the numerics. */
#ifdef SDVK_HAVE_AVX512BF16
        if (!f.avx512bf16)
            return sd_err(SDVK_ERR_UNSUPPORTED,
                          "cpu isa 'avx512bf16': this CPU lacks AVX-512 BF16 (CPUID.7.1:EAX bit 5)");
        pick = isa;
#else
        return sd_err(SDVK_ERR_UNSUPPORTED,
                      "cpu isa 'avx512bf16': this build has no AVX-512 BF16 kernels (compiler lacks "
                      "-mavx512bf16)");
#endif
    } else {
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "cpu isa '%s': unknown (expected auto, ref, scalar, avx2, avx2vnni, avx512, avx512bf16, "
                      "neon, neondot)", isa);
    }
    if (!strcmp(pick, "scalar"))
        sd_simd_install_scalar(k);
#ifdef SIMD_X86
    else if (!strcmp(pick, "avx2"))
        sd_simd_install_avx2(k);
    else if (!strcmp(pick, "avx2vnni"))
        sd_simd_install_avx2vnni(k);
    else if (!strcmp(pick, "avx512"))
        sd_simd_install_avx512(k);
#ifdef SDVK_HAVE_AVX512BF16
    else if (!strcmp(pick, "avx512bf16"))
        sd_simd_install_avx512bf16(k);
#endif
#endif
#if defined(__aarch64__)
    else if (!strcmp(pick, "neon"))
        sd_simd_install_neon(k);
    else if (!strcmp(pick, "neondot"))
        sd_simd_install_neondot(k);
#endif
    snprintf(k->isa, sizeof k->isa, "%s", pick);
    sd_log_verbose("cpu: %s kernels for matmul, conv2d, attention, group_norm, layer_norm "
                   "(cpu has avx2=%d avx512=%d avx512bf16=%d avx512vnni=%d avxvnni=%d neon=%d neondot=%d; "
                   "asked '%s')",
                   pick, f.avx2, f.avx512, f.avx512bf16, f.avx512vnni, f.avxvnni, f.neon, f.neondot, isa);
    return SDVK_OK;
}
