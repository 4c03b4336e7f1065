/* Fuzz target: PyTorch checkpoints (.ckpt/.pt/.bin: zip + restricted pickle).
 *
 * Input: the bytes of a torch.save file, read from memory with
 * sd_ckpt_open_mem (zip directory, zip64, deflate, pickle interpreter,
 * tensor views). An input that does not start like a zip is run as a bare
 * data.pkl instead, every storage key answered with the same 4 KiB of
 * zeros: inside a zip the CRC of data.pkl stops almost every mutation of
 * the pickle, so this is how the interpreter itself gets fuzzed. A failure
 * must leave a message and no table; a success must hand out only tensors
 * whose bytes lie inside the input, the storage stand-in or memory the
 * table owns (every byte is read, so ASan sees a stray pointer), with names
 * that sd_st_find finds. Seeds: tests/fuzz/corpus/ckpt (real torch 1.13 and
 * 2.x files from tools/make_variants.py seeds, and their data.pkl). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "fuzz_common.h"
#include "io/ckpt.h"
#include "io/pickle.h"
#include "io/zip.h"

static uint8_t g_storage[4096];

static sdvk_status zero_storage(void *ud, const char *key, const uint8_t **data, uint64_t *n) {
    (void)ud;
    (void)key;
    *data = g_storage;
    *n = sizeof g_storage;
    return SDVK_OK;
}

static size_t item_size(const char *dt) {
    static const struct {
        const char *n;
        size_t s;
    } t[] = {{"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I64", 8}, {"I32", 4},  {"I16", 2},
             {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"C64", 8}, {"C128", 16}, {"numpy", 0}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(t[i].n, dt))
            return t[i].s;
    return (size_t)-1;
}

static int inside(const void *p, size_t n, const void *base, size_t size) {
    const uint8_t *a = p, *b = base;
    return a >= b && n <= size && (size_t)(a - b) <= size - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_safetensors *st = (sd_safetensors *)1;
    sdvk_status s;
    if (sd_zip_magic(data, size)) {
        s = sd_ckpt_open_mem(data, size, "fuzz.ckpt", &st);
    } else {
        s = sd_st_new("fuzz.pkl", &st);
        FUZZ_CHECK(s == SDVK_OK);
        s = sd_pickle_tensors(data, size, "fuzz.pkl", zero_storage, NULL, size + 4096, st);
        if (!s)
            s = sd_st_seal(st);
        if (s) {
            sd_st_close(st);
            st = NULL;
        }
    }
    if (s != SDVK_OK) {
        FUZZ_CHECK(st == NULL);
        FUZZ_CHECK_MSG();
        return 0;
    }
    FUZZ_CHECK(st != NULL);
    for (int i = 0; i < st->n; i++) {
        const sd_st_tensor *t = &st->t[i];
        FUZZ_CHECK(t->name && t->name[0]);
        FUZZ_CHECK(sd_st_find(st, t->name) == t);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= SD_ST_MAX_DIMS);
        size_t isz = item_size(t->dtype_str);
        FUZZ_CHECK(isz != (size_t)-1);
        uint64_t ne = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_CHECK(t->ne[d] >= 0);
            ne *= (uint64_t)t->ne[d];
        }
        FUZZ_CHECK(t->nbytes == ne * isz || !strcmp(t->dtype_str, "numpy"));
        if (!t->nbytes)
            continue;
        int ok = inside(t->data, t->nbytes, data, size) ||
                 inside(t->data, t->nbytes, g_storage, sizeof g_storage);
        for (int r = 0; !ok && r < st->n_regions; r++)
            ok = inside(t->data, t->nbytes, st->regions[r].base, st->regions[r].size);
        FUZZ_CHECK(ok);
        volatile uint8_t acc = 0;
        const uint8_t *p = t->data;
        for (size_t j = 0; j < t->nbytes; j++) acc ^= p[j];
        (void)acc;
    }
    sd_st_close(st);
    return 0;
}
