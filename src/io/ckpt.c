/* torch.save zip archives as tensor tables (see ckpt.h). */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/status.h"
#include "pickle.h"
#include "zip.h"

/* Deflate cannot expand data by more than about 1032:1. */
#define MAX_RATIO 1032u
/* data.pkl of a real checkpoint is well under 10 MB. */
#define MAX_PICKLE (256ull << 20)

typedef struct ck {
    sd_zip z;
    char prefix[256];
    sd_safetensors *out;
    const uint8_t **inflated; /* per zip entry, once inflated (owned by out) */
} ck;

int sd_ckpt_magic(const void *p, size_t n) {
    /* A legacy file starts with the pickled magic number: PROTO n, LONG1.
     * The LONG1 byte matters: a safetensors file whose header is 640 bytes
     * long also starts 0x80 0x02, followed by zeros. */
    const uint8_t *b = p;
    return sd_zip_magic(p, n) || (n >= 3 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5 && b[2] == 0x8a);
}

static uint64_t inflate_cap(const sd_zip_entry *e) { return e->csize * MAX_RATIO + 1024; }

static sdvk_status storage_fn(void *ud, const char *key, const uint8_t **data, uint64_t *nbytes) {
    ck *c = ud;
    char name[400];
    snprintf(name, sizeof name, "%s/data/%s", c->prefix, key);
    const sd_zip_entry *e = sd_zip_find(&c->z, name);
    if (!e)
        return sd_err(SDVK_ERR_FORMAT, "%s: storage \"%s\" is missing from the archive (truncated?)",
                      c->z.label, name);
    size_t idx = (size_t)(e - c->z.e);
    if (c->inflated[idx]) {
        *data = c->inflated[idx];
        *nbytes = e->usize;
        return SDVK_OK;
    }
    void *owned = NULL;
    SD_TRY(sd_zip_get(&c->z, e, inflate_cap(e), 0, data, &owned));
    if (owned) {
        SD_TRY(sd_st_adopt(c->out, owned, (size_t)(e->usize ? e->usize : 1), 0));
        c->inflated[idx] = owned;
    }
    *nbytes = e->usize;
    return SDVK_OK;
}

/* Fills `out` from the archive image base[0, size). */
static sdvk_status parse(const uint8_t *base, size_t size, const char *label, sd_safetensors *out) {
    if (!sd_zip_magic(base, size)) {
        if (sd_ckpt_magic(base, size))
            return sd_err(SDVK_ERR_UNSUPPORTED,
                          "%s: a legacy (PyTorch < 1.6, non-zip) torch.save file; load and save "
                          "it again with a current PyTorch, or convert it to .safetensors",
                          label);
        return sd_err(SDVK_ERR_FORMAT, "%s: not a PyTorch checkpoint (no zip header)", label);
    }
    ck c;
    memset(&c, 0, sizeof c);
    c.out = out;
    SD_TRY(sd_zip_open(base, size, label, &c.z));
    sdvk_status s = SDVK_OK;
    const sd_zip_entry *pkl = NULL;
    void *pkl_owned = NULL;
    for (int i = 0; i < c.z.n; i++) {
        const char *nm = c.z.e[i].name, *sl = strchr(nm, '/');
        if (!sl || strcmp(sl, "/data.pkl"))
            continue;
        if (pkl) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: several data.pkl entries (\"%s\", \"%s\")", label,
                       pkl->name, nm);
            goto done;
        }
        if ((size_t)(sl - nm) >= sizeof c.prefix) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: archive folder name too long", label);
            goto done;
        }
        pkl = &c.z.e[i];
        memcpy(c.prefix, nm, (size_t)(sl - nm));
        c.prefix[sl - nm] = 0;
    }
    if (!pkl) {
        s = sd_err(SDVK_ERR_FORMAT,
                   "%s: a zip archive without <name>/data.pkl: not a torch.save checkpoint", label);
        goto done;
    }
    char bo[300];
    snprintf(bo, sizeof bo, "%s/byteorder", c.prefix);
    const sd_zip_entry *boe = sd_zip_find(&c.z, bo);
    if (boe) {
        const uint8_t *d;
        void *own;
        if ((s = sd_zip_get(&c.z, boe, 64, 1, &d, &own)) != SDVK_OK)
            goto done;
        int big = boe->usize >= 3 && !memcmp(d, "big", 3);
        free(own);
        if (big) {
            s = sd_err(SDVK_ERR_UNSUPPORTED, "%s: big-endian checkpoint (not supported)", label);
            goto done;
        }
    }
    if (!(c.inflated = calloc((size_t)c.z.n, sizeof *c.inflated))) {
        s = sd_err(SDVK_ERR_OOM, "%s: out of memory", label);
        goto done;
    }
    const uint8_t *pd;
    uint64_t cap = inflate_cap(pkl) < MAX_PICKLE ? inflate_cap(pkl) : MAX_PICKLE;
    if ((s = sd_zip_get(&c.z, pkl, cap, 1, &pd, &pkl_owned)) != SDVK_OK)
        goto done;
    s = sd_pickle_tensors(pd, (size_t)pkl->usize, label, storage_fn, &c, (uint64_t)size + (1u << 20),
                          out);
    if (!s)
        s = sd_st_seal(out);
done:
    free(pkl_owned);
    free(c.inflated);
    sd_zip_close(&c.z);
    return s;
}

sdvk_status sd_ckpt_open_mem(const void *data, size_t size, const char *label,
                             sd_safetensors **out) {
    *out = NULL;
    if (!data && size)
        return sd_err(SDVK_ERR_INVALID_ARG, "sd_ckpt_open_mem: no data");
    sd_safetensors *st;
    SD_TRY(sd_st_new(label && *label ? label : "(memory)", &st));
    sdvk_status s = parse(data ? data : (const void *)"", size, st->path, st);
    if (s) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SDVK_OK;
}

sdvk_status sd_ckpt_open(const char *path, sd_safetensors **out) {
    *out = NULL;
    sd_safetensors *st;
    SD_TRY(sd_st_new(path, &st));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sdvk_status s = sd_err(SDVK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        sd_st_close(st);
        return s;
    }
    struct stat sb;
    sdvk_status s = SDVK_OK;
    if (fstat(fd, &sb) != 0)
        s = sd_err(SDVK_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        s = sd_err(SDVK_ERR_IO, "%s: not a regular file", path);
    else if (sb.st_size < 4)
        s = sd_err(SDVK_ERR_FORMAT, "%s: %lld bytes, too short for a checkpoint", path,
                   (long long)sb.st_size);
    void *map = NULL;
    if (!s) {
        map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
            s = sd_err(SDVK_ERR_IO, "%s: cannot mmap: %s", path, strerror(errno));
        else
            s = sd_st_adopt(st, map, (size_t)sb.st_size, 1);
    }
    close(fd);
    if (!s)
        s = parse(map, (size_t)sb.st_size, path, st);
    if (s) {
        sd_st_close(st);
        return s;
    }
    *out = st;
    return SDVK_OK;
}
