/* Loaders: .ckpt, diffusers folders, separate VAE, LoRA, embeddings.
 *
 *   test_loaders same REF OTHER         every network tensor of REF (a
 *                                       .safetensors) is in OTHER (any form)
 *                                       with the same dtype, shape and bytes,
 *                                       and OTHER has no network tensor more
 *   test_loaders vae MODEL VAE REF      MODEL opened with VAE: its
 *                                       first_stage_model.* tensors are REF's
 *                                       (bytes), everything else MODEL's
 *   test_loaders refuse PATH SUBSTR...  opening PATH fails with a message
 *                                       holding every SUBSTR
 *   test_loaders views PATH             views.ckpt / torch*_views.ckpt values
 *   test_loaders unit DATA MODEL CORPUS LoRA/embedding goldens (DATA =
 *                                       tests/data/loaders), bad LoRAs, key
 *                                       map round trip, every truncation of
 *                                       the ckpt seeds in CORPUS
 *   test_loaders merge MODEL OUT.safetensors LORA:W [LORA:W ...]
 *                                       (tools) merged float32 weights of
 *                                       every LoRA target, several LoRAs
 *                                       summed in the order given */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/npy.h"
#include "core/q8.h"
#include "core/status.h"
#include "io/ckpt.h"
#include "io/diffusers.h"
#include "io/embedding.h"
#include "io/keymap.h"
#include "io/lora.h"
#include "io/weights.h"

static int g_fail;
#define CHECK(c)                                                                      \
    do {                                                                              \
        if (!(c)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);     \
            g_fail++;                                                                 \
        }                                                                             \
    } while (0)

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static int is_network(const char *k) {
    return starts(k, SD_KM_UNET_PREFIX) || starts(k, SD_KM_VAE_PREFIX) ||
           (starts(k, SD_KM_CLIP_PREFIX) && !strstr(k, "position_ids"));
}

static int same_tensor(const sd_st_tensor *x, const sd_st_tensor *y) {
    return x->ndim == y->ndim && x->nbytes == y->nbytes && !strcmp(x->dtype_str, y->dtype_str) &&
           !memcmp(x->ne, y->ne, sizeof(int64_t) * (size_t)x->ndim) &&
           (!x->nbytes || !memcmp(x->data, y->data, x->nbytes)) &&
           /* 8-bit weights: their scales too */
           (x->dtype != SD_Q8 || (y->dtype == SD_Q8 && x->scale && y->scale &&
                                  !memcmp(x->scale, y->scale,
                                          (size_t)sd_q8_nscales(x->ndim, x->ne) * 2)));
}

static int cmd_same(const char *ref, const char *other) {
    sd_safetensors *a = NULL, *b = NULL;
    if (sd_weights_open(ref, NULL, &a) || sd_weights_open(other, NULL, &b)) {
        fprintf(stderr, "FAIL: %s\n", sdvk_last_error());
        sd_st_close(a);
        return 1;
    }
    int same = 0, bad = 0;
    for (int i = 0; i < a->n; i++) {
        if (!is_network(a->t[i].name))
            continue;
        const sd_st_tensor *y = sd_st_find(b, a->t[i].name);
        if (!y) {
            fprintf(stderr, "FAIL: %s missing from %s\n", a->t[i].name, other);
            bad++;
        } else if (!same_tensor(&a->t[i], y)) {
            fprintf(stderr, "FAIL: %s differs in %s\n", a->t[i].name, other);
            bad++;
        } else {
            same++;
        }
    }
    for (int i = 0; i < b->n; i++)
        if (is_network(b->t[i].name) && !sd_st_find(a, b->t[i].name)) {
            fprintf(stderr, "FAIL: %s in %s is not in %s\n", b->t[i].name, other, ref);
            bad++;
        }
    printf("%s: %d network tensors bit-identical to %s, %d problems (format %s)\n", other, same,
           ref, bad, sd_st_meta(b, "sdvk.format"));
    sd_st_close(a);
    sd_st_close(b);
    return bad || !same;
}

static int cmd_vae(const char *model, const char *vae, const char *ref) {
    sd_safetensors *m = NULL, *mv = NULL, *r = NULL;
    if (sd_weights_open(model, NULL, &m) || sd_weights_open(model, vae, &mv) ||
        sd_weights_open(ref, NULL, &r)) {
        fprintf(stderr, "FAIL: %s\n", sdvk_last_error());
        sd_st_close(m);
        sd_st_close(mv);
        return 1;
    }
    int n_vae = 0, n_other = 0, bad = 0;
    for (int i = 0; i < r->n; i++) {
        const sd_st_tensor *y = sd_st_find(mv, r->t[i].name);
        if (!y || !same_tensor(&r->t[i], y)) {
            fprintf(stderr, "FAIL: %s not taken from %s\n", r->t[i].name, vae);
            bad++;
        }
        n_vae++;
    }
    for (int i = 0; i < mv->n; i++)
        if (starts(mv->t[i].name, SD_KM_VAE_PREFIX) && !sd_st_find(r, mv->t[i].name)) {
            fprintf(stderr, "FAIL: %s left over from the model\n", mv->t[i].name);
            bad++;
        }
    for (int i = 0; i < m->n; i++) {
        if (starts(m->t[i].name, SD_KM_VAE_PREFIX))
            continue;
        const sd_st_tensor *y = sd_st_find(mv, m->t[i].name);
        if (!y || !same_tensor(&m->t[i], y)) {
            fprintf(stderr, "FAIL: %s changed\n", m->t[i].name);
            bad++;
        }
        n_other++;
    }
    printf("%s with --vae %s: %d VAE tensors from it, %d others unchanged, %d problems\n", model,
           vae, n_vae, n_other, bad);
    sd_st_close(m);
    sd_st_close(mv);
    sd_st_close(r);
    return bad || !n_vae;
}

static int cmd_refuse(const char *path, int n, char **subs) {
    sd_safetensors *st = NULL;
    sdvk_status s = sd_weights_open(path, NULL, &st);
    if (!s) {
        fprintf(stderr, "FAIL: %s opened\n", path);
        sd_st_close(st);
        return 1;
    }
    const char *msg = sdvk_last_error();
    printf("%s: refused (%d): %s\n", path, s, msg);
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (!strstr(msg, subs[i])) {
            fprintf(stderr, "FAIL: message lacks \"%s\"\n", subs[i]);
            bad = 1;
        }
    return bad;
}

static float f32_at(const sd_st_tensor *t, size_t i) {
    float v = 0;
    if (t && t->supported)
        sd_to_f32(&v, (const unsigned char *)t->data + i * sd_dtype_size(t->dtype), t->dtype, 1);
    return v;
}

static int cmd_views(const char *path) {
    sd_safetensors *st = NULL;
    if (sd_ckpt_open(path, &st)) {
        fprintf(stderr, "FAIL: %s\n", sdvk_last_error());
        return 1;
    }
    const sd_st_tensor *a = sd_st_find(st, "a"), *at = sd_st_find(st, "a_t"),
                       *row = sd_st_find(st, "row1"), *h = sd_st_find(st, "h"),
                       *i64 = sd_st_find(st, "i64");
    CHECK(a && a->ndim == 2 && a->ne[0] == 3 && a->ne[1] == 4);
    CHECK(at && at->ndim == 2 && at->ne[0] == 4 && at->ne[1] == 3);
    for (int r = 0; a && at && r < 3; r++)
        for (int c = 0; c < 4; c++) {
            CHECK(f32_at(a, (size_t)(r * 4 + c)) == (float)(r * 4 + c));
            CHECK(f32_at(at, (size_t)(c * 3 + r)) == (float)(r * 4 + c));
        }
    for (int c = 0; row && c < 4; c++) CHECK(f32_at(row, (size_t)c) == (float)(4 + c));
    CHECK(h && h->dtype == SD_F16 && f32_at(h, 0) == 1.5f && f32_at(h, 1) == -2.0f);
    CHECK(i64 && !i64->supported && !strcmp(i64->dtype_str, "I64"));
    /* a and row1 share one storage: no copy */
    CHECK(a && row && (const char *)row->data == (const char *)a->data + 16);
    const sd_st_tensor *col = sd_st_find(st, "col2"), *bf = sd_st_find(st, "bf"),
                       *sc = sd_st_find(st, "scalar"), *pa = sd_st_find(st, "param"),
                       *ne = sd_st_find(st, "nested.inner");
    for (int r = 0; col && r < 3; r++) CHECK(f32_at(col, (size_t)r) == (float)(r * 4 + 2));
    if (bf)
        CHECK(bf->dtype == SD_BF16 && f32_at(bf, 1) == -3.0f);
    if (sc)
        CHECK(sc->ndim == 0 && f32_at(sc, 0) == 2.5f);
    if (pa)
        CHECK(f32_at(pa, 1) == 0.25f);
    if (ne)
        CHECK(f32_at(ne, 0) == 4.0f);
    printf("%s: %d tensors, views checked\n", path, st->n);
    sd_st_close(st);
    return g_fail != 0;
}

/* ---- unit ---- */

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Target weight of the model as float32 with n elements (malloc'd). */
static float *target_f32(const sd_safetensors *model, const char *key, size_t *n) {
    const sd_st_tensor *t = sd_st_find(model, key);
    if (!t)
        return NULL;
    size_t ne = 1;
    for (int d = 0; d < t->ndim; d++) ne *= (size_t)t->ne[d];
    float *w = malloc(ne * sizeof *w);
    if (w && sd_st_tensor_f32(t, w, ne)) {
        free(w);
        return NULL;
    }
    *n = ne;
    return w;
}

static void check_golden(const char *data, const char *golden, const float *w, size_t n,
                         const char *what) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", data, golden);
    sd_npy g;
    if (sd_npy_load(p, &g)) {
        fprintf(stderr, "FAIL: %s\n", sdvk_last_error());
        g_fail++;
        return;
    }
    CHECK((size_t)sd_npy_nelem(&g) == n);
    if ((size_t)sd_npy_nelem(&g) == n) {
        double e = rel_l2(w, g.data, n);
        if (!(e <= 1e-6)) {
            fprintf(stderr, "FAIL: %s: rel L2 %.3g vs %s\n", what, e, golden);
            g_fail++;
        }
    }
    sd_npy_free(&g);
}

static void unit_loras(const char *data, const sd_safetensors *model) {
    char p[1024];
    snprintf(p, sizeof p, "%s/manifest.json", data);
    json_error_t je;
    json_t *man = json_load_file(p, 0, &je);
    if (!man) {
        fprintf(stderr, "FAIL: %s: %s\n", p, je.text);
        g_fail++;
        return;
    }
    size_t i, j;
    json_t *e, *c;
    int n_checks = 0;
    json_array_foreach(json_object_get(man, "loras"), i, e) {
        const char *file = json_string_value(json_object_get(e, "file"));
        snprintf(p, sizeof p, "%s/%s", data, file);
        sd_lora *l = NULL;
        if (sd_lora_load(p, model, &l)) {
            fprintf(stderr, "FAIL: %s\n", sdvk_last_error());
            g_fail++;
            continue;
        }
        CHECK(l->n_mods == json_integer_value(json_object_get(e, "n_mods")));
        CHECK(l->n_unet == json_integer_value(json_object_get(e, "n_unet")));
        CHECK(l->n_te == json_integer_value(json_object_get(e, "n_te")));
        CHECK(l->n_ignored == 0);
        printf("%s: %d modules (%d UNet, %d text encoder), %d ignored\n", file, l->n_mods, l->n_unet,
               l->n_te, l->n_ignored);
        json_array_foreach(json_object_get(e, "checks"), j, c) {
            const char *target = json_string_value(json_object_get(c, "target"));
            float wt = (float)json_number_value(json_object_get(c, "weight"));
            const sd_lora_mod *m = sd_lora_find(l, target);
            CHECK(m != NULL);
            size_t n = 0;
            float *w = target_f32(model, target, &n), *orig = w ? malloc(n * sizeof *orig) : NULL;
            if (!m || !w || !orig) {
                free(w);
                free(orig);
                continue;
            }
            memcpy(orig, w, n * sizeof *w);
            CHECK(sd_lora_apply(m, wt, w, n) == SDVK_OK);
            check_golden(data, json_string_value(json_object_get(c, "golden")), w, n, target);
            /* deterministic: the same call, the same bits */
            float *w2 = malloc(n * sizeof *w2);
            memcpy(w2, orig, n * sizeof *w2);
            sd_lora_apply(m, wt, w2, n);
            CHECK(!memcmp(w, w2, n * sizeof *w));
            /* undo: back to the original up to rounding */
            CHECK(sd_lora_unapply(m, wt, w, n) == SDVK_OK);
            CHECK(rel_l2(w, orig, n) < 1e-6);
            CHECK(sd_lora_apply(m, wt, w, n - 1) == SDVK_ERR_INVALID_ARG);
            free(w);
            free(w2);
            free(orig);
            n_checks++;
        }
        sd_lora_free(l);
    }
    json_array_foreach(json_object_get(man, "multi"), i, e) {
        const char *target = json_string_value(json_object_get(e, "target"));
        size_t n = 0;
        float *w = target_f32(model, target, &n);
        CHECK(w != NULL);
        json_array_foreach(json_object_get(e, "loras"), j, c) {
            snprintf(p, sizeof p, "%s/%s", data, json_string_value(json_array_get(c, 0)));
            sd_lora *l = NULL;
            CHECK(sd_lora_load(p, model, &l) == SDVK_OK);
            const sd_lora_mod *m = l ? sd_lora_find(l, target) : NULL;
            CHECK(m != NULL);
            if (m && w)
                sd_lora_apply(m, (float)json_number_value(json_array_get(c, 1)), w, n);
            sd_lora_free(l);
        }
        if (w)
            check_golden(data, json_string_value(json_object_get(e, "golden")), w, n, target);
        free(w);
        n_checks++;
    }
    json_array_foreach(json_object_get(man, "embeddings"), i, e) {
        snprintf(p, sizeof p, "%s/%s", data, json_string_value(json_object_get(e, "file")));
        int width = (int)json_integer_value(json_object_get(e, "width"));
        sd_ti_embedding *em = NULL;
        if (sd_embedding_load(p, width, &em)) {
            fprintf(stderr, "FAIL: %s\n", sdvk_last_error());
            g_fail++;
            continue;
        }
        CHECK(em->n_vec == json_integer_value(json_object_get(e, "n")));
        check_golden(data, json_string_value(json_object_get(e, "golden")), em->vec,
                     (size_t)em->n_vec * (size_t)em->width, p);
        printf("%s: embedding \"%s\"%s%s, %d x %d\n", json_string_value(json_object_get(e, "file")),
               em->name, em->token ? " token " : "", em->token ? em->token : "", em->n_vec, em->width);
        sd_embedding_free(em);
        /* the wrong text encoder width is refused, naming both widths */
        CHECK(sd_embedding_load(p, width * 2, &em) == SDVK_ERR_MODEL);
        CHECK(strstr(sdvk_last_error(), "wide") != NULL);
        n_checks++;
    }
    printf("LoRA/embedding goldens: %d checks\n", n_checks);
    json_decref(man);
}

/* A LoRA table written with sd_st_write from (name, shape) items, values 0.01. */
static sd_lora *try_lora(const sd_safetensors *model, const char *dir, const char *name,
                         int n, const char *const *keys, const int64_t (*shapes)[4],
                         const int *ndims, sdvk_status *st) {
    static float buf[65536];
    for (size_t i = 0; i < sizeof buf / sizeof *buf; i++) buf[i] = 0.01f;
    sd_st_write_item it[16];
    for (int i = 0; i < n; i++) {
        it[i].name = keys[i];
        it[i].dtype = SD_F32;
        it[i].ndim = ndims[i];
        for (int d = 0; d < 4; d++) it[i].ne[d] = shapes[i][d];
        it[i].data = buf;
    }
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (sd_st_write(p, it, n, NULL, 0)) {
        fprintf(stderr, "cannot write %s: %s\n", p, sdvk_last_error());
        exit(2);
    }
    sd_lora *l = NULL;
    *st = sd_lora_load(p, model, &l);
    return l;
}

static void unit_bad_loras(const sd_safetensors *model, const char *dir) {
    /* module names of the tiny model (level 0 has attention; 32 channels) */
#define Q "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    sdvk_status s;
    sd_lora *l;
    {   /* LoHa on a known module: an error naming it */
        const char *k[] = {Q ".hada_w1_a", Q ".hada_w1_b", Q ".alpha"};
        const int64_t sh[][4] = {{32, 4}, {4, 32}, {0}};
        const int nd[] = {2, 2, 0};
        l = try_lora(model, dir, "loha.safetensors", 3, k, sh, nd, &s);
        CHECK(s == SDVK_ERR_UNSUPPORTED && strstr(sdvk_last_error(), "LoHa"));
        sd_lora_free(l);
    }
    {   /* half a pair */
        const char *k[] = {Q ".lora_down.weight"};
        const int64_t sh[][4] = {{4, 32}};
        const int nd[] = {2};
        l = try_lora(model, dir, "half.safetensors", 1, k, sh, nd, &s);
        CHECK(s == SDVK_ERR_FORMAT && strstr(sdvk_last_error(), "no up"));
        sd_lora_free(l);
    }
    {   /* made for a wider model (SD 2.x-like 40 != 32) */
        const char *k[] = {Q ".lora_down.weight", Q ".lora_up.weight"};
        const int64_t sh[][4] = {{4, 40}, {40, 4}};
        const int nd[] = {2, 2};
        l = try_lora(model, dir, "wide.safetensors", 2, k, sh, nd, &s);
        CHECK(s == SDVK_ERR_MODEL && strstr(sdvk_last_error(), "does not fit"));
        sd_lora_free(l);
    }
    {   /* unknown modules and stray tensors are counted, the rest used */
        const char *k[] = {Q ".lora_down.weight", Q ".lora_up.weight",
                           "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
                           "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight",
                           "lora_unet_no_such_block.lora_down.weight", "random_tensor"};
        const int64_t sh[][4] = {{4, 32}, {32, 4}, {4, 8}, {8, 4}, {4, 4}, {3}};
        const int nd[] = {2, 2, 2, 2, 2, 1};
        l = try_lora(model, dir, "mixed.safetensors", 6, k, sh, nd, &s);
        CHECK(s == SDVK_OK && l && l->n_mods == 1 && l->n_ignored == 4);
        if (l)
            printf("mixed LoRA: %d module, %s\n", l->n_mods, l->ignored_note);
        sd_lora_free(l);
    }
    {   /* nothing for this model */
        const char *k[] = {"lora_unet_no_such_block.lora_down.weight"};
        const int64_t sh[][4] = {{4, 4}};
        const int nd[] = {2};
        l = try_lora(model, dir, "none.safetensors", 1, k, sh, nd, &s);
        CHECK(s == SDVK_ERR_MODEL && strstr(sdvk_last_error(), "no LoRA module matches"));
        sd_lora_free(l);
    }
    {   /* the same weight twice (kohya and PEFT spellings) */
        const char *k[] = {Q ".lora_down.weight", Q ".lora_up.weight",
                           "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight",
                           "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight"};
        const int64_t sh[][4] = {{4, 32}, {32, 4}, {4, 32}, {32, 4}};
        const int nd[] = {2, 2, 2, 2};
        l = try_lora(model, dir, "twice.safetensors", 4, k, sh, nd, &s);
        CHECK(s == SDVK_ERR_FORMAT && strstr(sdvk_last_error(), "both target"));
        sd_lora_free(l);
    }
    {   /* a Linear-shaped LoRA (SD 2.x-style proj_in) on the 1x1 conv proj_in */
        const char *k[] = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
                           "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight"};
        const int64_t sh[][4] = {{4, 32}, {32, 4}};
        const int nd[] = {2, 2};
        l = try_lora(model, dir, "linear_on_conv.safetensors", 2, k, sh, nd, &s);
        CHECK(s == SDVK_OK && l && l->n_mods == 1 && l->mods[0].in_dim == 32 &&
              !strcmp(l->mods[0].target, SD_KM_UNET_PREFIX "input_blocks.1.1.proj_in.weight"));
        sd_lora_free(l);
    }
    {   /* LoCon: 3x3 down, 1x1 up on a resnet conv; and a kernel mismatch */
        const char *k[] = {"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight",
                           "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight"};
        const int64_t sh[][4] = {{2, 32, 3, 3}, {32, 2, 1, 1}};
        const int nd[] = {4, 4};
        l = try_lora(model, dir, "locon.safetensors", 2, k, sh, nd, &s);
        CHECK(s == SDVK_OK && l && l->n_mods == 1 && l->mods[0].in_dim == 32 * 9);
        sd_lora_free(l);
        const int64_t sh2[][4] = {{2, 32, 1, 9}, {32, 2, 1, 1}};
        l = try_lora(model, dir, "locon_bad.safetensors", 2, k, sh2, nd, &s);
        CHECK(s == SDVK_ERR_MODEL && strstr(sdvk_last_error(), "kernel"));
        sd_lora_free(l);
    }
#undef Q
}

/* LDM -> diffusers -> LDM is the identity on every UNet/VAE/CLIP weight. */
static void unit_keymap(const sd_safetensors *model) {
    sd_km_layout L;
    sd_km_layout_from_ldm(model, &L);
    int n = 0;
    char d[512], back[512];
    for (int i = 0; i < model->n; i++) {
        const char *k = model->t[i].name;
        if (!is_network(k))
            continue;
        sd_km_part part;
        int ok = sd_km_from_ldm(&L, k, &part, d, sizeof d) && sd_km_to_ldm(part, &L, d, back, sizeof back);
        if (!ok || strcmp(back, k)) {
            fprintf(stderr, "FAIL: key map round trip %s -> %s -> %s\n", k, ok ? d : "?", ok ? back : "?");
            g_fail++;
        }
        n++;
    }
    printf("key map: %d keys round-trip (UNet %d levels x %d res, VAE %d levels x %d res)\n", n,
           L.unet_levels, L.unet_res, L.vae_levels, L.vae_res);
    /* module names too (LoRA targets) */
    sd_km_part part;
    CHECK(sd_km_from_ldm(&L, SD_KM_UNET_PREFIX "input_blocks.1.1.proj_in", &part, d, sizeof d) &&
          !strcmp(d, "down_blocks.0.attentions.0.proj_in") && part == SD_KM_UNET);
    CHECK(sd_km_to_ldm(SD_KM_UNET, &L, "up_blocks.0.upsamplers.0.conv", back, sizeof back) &&
          !strcmp(back, SD_KM_UNET_PREFIX "output_blocks.1.1.conv")); /* tiny: level 1 has no attention */
    CHECK(!sd_km_to_ldm(SD_KM_UNET, &L, "add_embedding.linear_1.weight", back, sizeof back));
}

/* Every prefix of a real ckpt, and single-byte damage in its zip records:
 * a clean error (or, for damage, possibly success), never a crash. */
static void unit_truncations(const char *corpus) {
    DIR *dir = opendir(corpus);
    if (!dir) {
        fprintf(stderr, "FAIL: %s: cannot list\n", corpus);
        g_fail++;
        return;
    }
    struct dirent *de;
    int files = 0;
    long cases = 0;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", corpus, de->d_name);
        size_t n;
        char *b = slurp(p, &n);
        if (!b)
            continue;
        files++;
        sd_safetensors *st = NULL;
        sdvk_status full = sd_ckpt_open_mem(b, n, p, &st);
        char full_msg[512];
        snprintf(full_msg, sizeof full_msg, "%s", full ? sdvk_last_error() : "opens");
        sd_st_close(st);
        for (size_t k = 0; k < n; k++) {
            /* a copy of exactly k bytes, so ASan sees any read past it */
            char *c = malloc(k ? k : 1);
            memcpy(c, b, k);
            st = NULL;
            sdvk_status s = sd_ckpt_open_mem(c, k, "cut", &st);
            if (!s)
                fprintf(stderr, "FAIL: %s cut to %zu bytes opened\n", p, k), g_fail++;
            else if (!sdvk_last_error()[0])
                fprintf(stderr, "FAIL: %s cut to %zu: no message\n", p, k), g_fail++;
            sd_st_close(st);
            free(c);
            cases++;
        }
        for (size_t k = 0; k < n; k += 7) {
            char *c = malloc(n);
            memcpy(c, b, n);
            c[k] ^= 0x5a;
            st = NULL;
            sdvk_status s = sd_ckpt_open_mem(c, n, "flip", &st);
            if (s && !sdvk_last_error()[0])
                fprintf(stderr, "FAIL: %s byte %zu flipped: no message\n", p, k), g_fail++;
            for (int i = 0; !s && i < st->n; i++) {
                /* touch every byte handed out */
                volatile unsigned char acc = 0;
                const unsigned char *q = st->t[i].data;
                for (size_t j = 0; j < st->t[i].nbytes; j++) acc ^= q[j];
                (void)acc;
            }
            sd_st_close(st);
            free(c);
            cases++;
        }
        printf("%s: %s; %zu truncations refused\n", de->d_name, full_msg, n);
        free(b);
    }
    closedir(dir);
    CHECK(files > 0);
    printf("truncation/corruption cases: %ld over %d files\n", cases, files);
}

/* A safetensors file whose header length (640 = 0x280) makes it start with
 * 0x80 0x02 like a pickle: still read as safetensors. */
static void unit_dispatch(const char *tmp) {
    char p[1024];
    snprintf(p, sizeof p, "%s/hdr640.safetensors", tmp);
    unsigned char b[8 + 640 + 4] = {0x80, 0x02};
    const char *js = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    memset(b + 8, ' ', 640);
    memcpy(b + 8, js, strlen(js));
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(b, 1, sizeof b, f) == sizeof b);
    if (f)
        fclose(f);
    CHECK(!sd_ckpt_magic(b, sizeof b));
    sd_safetensors *st = NULL;
    CHECK(sd_weights_file_open(p, &st) == SDVK_OK && st && st->n == 1);
    sd_st_close(st);
}

static int cmd_unit(const char *data, const char *model_path, const char *corpus, const char *tmp) {
    sd_safetensors *model = NULL;
    if (sd_weights_open(model_path, NULL, &model)) {
        fprintf(stderr, "FAIL: %s\n", sdvk_last_error());
        return 1;
    }
    unit_keymap(model);
    unit_loras(data, model);
    mkdir(tmp, 0777);
    unit_bad_loras(model, tmp);
    unit_dispatch(tmp);
    unit_truncations(corpus);
    sd_st_close(model);
    printf("%s\n", g_fail ? "FAILED" : "ok");
    return g_fail != 0;
}

/* ---- merge (tools) ---- */

static int cmd_merge(const char *model_path, const char *out, int n, char **specs) {
    sd_safetensors *model = NULL;
    if (sd_weights_open(model_path, NULL, &model)) {
        fprintf(stderr, "%s\n", sdvk_last_error());
        return 1;
    }
    sd_lora **ls = calloc((size_t)n, sizeof *ls);
    float *wts = calloc((size_t)n, sizeof *wts);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char *c = strrchr(specs[i], ':');
        if (!c) {
            fprintf(stderr, "merge: %s: expected LORA:WEIGHT\n", specs[i]);
            rc = 2;
            break;
        }
        *c = 0;
        wts[i] = strtof(c + 1, NULL);
        if (sd_lora_load(specs[i], model, &ls[i])) {
            fprintf(stderr, "%s\n", sdvk_last_error());
            rc = 1;
        } else if (ls[i]->n_ignored) {
            fprintf(stderr, "%s: %s\n", specs[i], ls[i]->ignored_note);
        }
    }
    /* the union of targets, each merged once with every LoRA in order */
    int cap = 0, nt = 0;
    const char **targets = NULL;
    for (int i = 0; i < n && !rc; i++)
        for (int j = 0; j < ls[i]->n_mods; j++) {
            int seen = 0;
            for (int k = 0; k < nt && !seen; k++) seen = !strcmp(targets[k], ls[i]->mods[j].target);
            if (seen)
                continue;
            if (nt == cap) {
                cap = cap ? 2 * cap : 256;
                targets = realloc(targets, (size_t)cap * sizeof *targets);
            }
            targets[nt++] = ls[i]->mods[j].target;
        }
    sd_st_write_item *items = calloc((size_t)(nt ? nt : 1), sizeof *items);
    float **bufs = calloc((size_t)(nt ? nt : 1), sizeof *bufs);
    for (int k = 0; k < nt && !rc; k++) {
        const sd_st_tensor *t = sd_st_find(model, targets[k]);
        size_t ne = 0;
        bufs[k] = target_f32(model, targets[k], &ne);
        if (!bufs[k]) {
            rc = 1;
            break;
        }
        for (int i = 0; i < n && !rc; i++) {
            const sd_lora_mod *m = sd_lora_find(ls[i], targets[k]);
            if (m && sd_lora_apply(m, wts[i], bufs[k], ne))
                rc = 1;
        }
        items[k] = (sd_st_write_item){targets[k], SD_F32, t->ndim, {0}, bufs[k]};
        memcpy(items[k].ne, t->ne, sizeof(int64_t) * (size_t)t->ndim);
    }
    if (!rc && sd_st_write(out, items, nt, NULL, 0)) {
        fprintf(stderr, "%s\n", sdvk_last_error());
        rc = 1;
    }
    if (!rc)
        printf("merged %d target weights from %d LoRA(s) into %s\n", nt, n, out);
    for (int k = 0; k < nt; k++) free(bufs[k]);
    free(bufs);
    free(items);
    free(targets);
    for (int i = 0; i < n; i++) sd_lora_free(ls[i]);
    free(ls);
    free(wts);
    sd_st_close(model);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "same"))
        return cmd_same(argv[2], argv[3]);
    if (argc >= 5 && !strcmp(argv[1], "vae"))
        return cmd_vae(argv[2], argv[3], argv[4]);
    if (argc >= 3 && !strcmp(argv[1], "refuse"))
        return cmd_refuse(argv[2], argc - 3, argv + 3);
    if (argc >= 3 && !strcmp(argv[1], "views"))
        return cmd_views(argv[2]);
    if (argc >= 6 && !strcmp(argv[1], "unit"))
        return cmd_unit(argv[2], argv[3], argv[4], argv[5]);
    if (argc >= 5 && !strcmp(argv[1], "merge"))
        return cmd_merge(argv[2], argv[3], argc - 4, argv + 4);
    fprintf(stderr, "usage: test_loaders same|vae|refuse|views|unit|merge ... (see the source)\n");
    return 2;
}
