/* Zip reader (see zip.h). Layout (APPNOTE.TXT): local headers and data,
 * then the central directory, then the end-of-central-directory record
 * (EOCD), preceded by the zip64 EOCD record and locator when a size or
 * offset does not fit 32 bits. The central directory is authoritative
 * (local headers may carry zero sizes with a data descriptor). */
#include "zip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../core/status.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* [off, off + len) inside the image, without overflow. */
static int inside(const sd_zip *z, uint64_t off, uint64_t len) {
    return off <= z->size && len <= z->size - off;
}

int sd_zip_magic(const void *p, size_t n) {
    return n >= 4 && rd32(p) == SIG_LOCAL;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const sd_zip_entry *)a)->name, ((const sd_zip_entry *)b)->name);
}

void sd_zip_close(sd_zip *z) {
    if (!z)
        return;
    for (int i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

/* Finds the EOCD: it is the last 22+ bytes, before a comment of up to 64 KiB. */
static sdvk_status find_eocd(const sd_zip *z, uint64_t *at) {
    if (z->size < 22)
        return sd_err(SDVK_ERR_FORMAT, "%s: %llu bytes, too short for a zip archive (truncated?)",
                      z->label, (unsigned long long)z->size);
    uint64_t lo = z->size > 22 + 65535 ? z->size - 22 - 65535 : 0;
    for (uint64_t p = z->size - 22;; p--) {
        if (rd32(z->base + p) == SIG_EOCD && rd16(z->base + p + 20) == z->size - p - 22) {
            *at = p;
            return SDVK_OK;
        }
        if (p == lo)
            break;
    }
    return sd_err(SDVK_ERR_FORMAT,
                  "%s: no zip end-of-central-directory record (file truncated or not a zip)",
                  z->label);
}

/* Reads one zip64 extended-information field (id 1) for the values that
 * were 0xFFFFFFFF in the fixed header, in the order the spec gives. */
static sdvk_status zip64_extra(const sd_zip *z, const uint8_t *ex, size_t exlen, const char *name,
                               uint64_t *usize, uint64_t *csize, uint64_t *off) {
    size_t p = 0;
    while (p + 4 <= exlen) {
        uint16_t id = rd16(ex + p), len = rd16(ex + p + 2);
        if (len > exlen - p - 4)
            return sd_err(SDVK_ERR_FORMAT, "%s: entry \"%s\": extra field runs past its end",
                          z->label, name);
        if (id == 1) {
            const uint8_t *f = ex + p + 4;
            size_t q = 0;
            uint64_t *want[3] = {usize, csize, off};
            for (int i = 0; i < 3; i++) {
                if (*want[i] != 0xFFFFFFFFu)
                    continue;
                if (q + 8 > len)
                    return sd_err(SDVK_ERR_FORMAT, "%s: entry \"%s\": zip64 field too short",
                                  z->label, name);
                *want[i] = rd64(f + q);
                q += 8;
            }
            return SDVK_OK;
        }
        p += 4 + (size_t)len;
    }
    if (*usize == 0xFFFFFFFFu || *csize == 0xFFFFFFFFu || *off == 0xFFFFFFFFu)
        return sd_err(SDVK_ERR_FORMAT, "%s: entry \"%s\": zip64 sizes missing", z->label, name);
    return SDVK_OK;
}

sdvk_status sd_zip_open(const void *base, size_t size, const char *label, sd_zip *z) {
    memset(z, 0, sizeof *z);
    z->label = label ? label : "(zip)";
    z->base = base;
    z->size = size;
    uint64_t eocd = 0;
    SD_TRY(find_eocd(z, &eocd));
    const uint8_t *e = z->base + eocd;
    uint64_t n_entries = rd16(e + 10), cd_size = rd32(e + 12), cd_off = rd32(e + 16);
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0 || rd16(e + 8) != rd16(e + 10))
        return sd_err(SDVK_ERR_FORMAT, "%s: multi-disk zip archives are not supported", z->label);
    if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        /* zip64: the locator sits right before the EOCD. */
        if (eocd < 20 || rd32(z->base + eocd - 20) != SIG_LOC64)
            return sd_err(SDVK_ERR_FORMAT, "%s: zip64 archive without a zip64 locator", z->label);
        uint64_t r = rd64(z->base + eocd - 20 + 8);
        if (!inside(z, r, 56) || r > eocd - 20 || rd32(z->base + r) != SIG_EOCD64)
            return sd_err(SDVK_ERR_FORMAT, "%s: bad zip64 end-of-central-directory record",
                          z->label);
        const uint8_t *e64 = z->base + r;
        n_entries = rd64(e64 + 32);
        cd_size = rd64(e64 + 40);
        cd_off = rd64(e64 + 48);
        if (rd64(e64 + 24) != n_entries)
            return sd_err(SDVK_ERR_FORMAT, "%s: multi-disk zip archives are not supported",
                          z->label);
    }
    if (!inside(z, cd_off, cd_size) || cd_off + cd_size > eocd)
        return sd_err(SDVK_ERR_FORMAT,
                      "%s: central directory [%llu, +%llu) outside the archive (%llu bytes; "
                      "truncated?)",
                      z->label, (unsigned long long)cd_off, (unsigned long long)cd_size,
                      (unsigned long long)z->size);
    if (n_entries > cd_size / 46)
        return sd_err(SDVK_ERR_FORMAT, "%s: %llu entries cannot fit a %llu-byte central directory",
                      z->label, (unsigned long long)n_entries, (unsigned long long)cd_size);
    z->e = calloc(n_entries ? (size_t)n_entries : 1, sizeof *z->e);
    if (!z->e)
        return sd_err(SDVK_ERR_OOM, "%s: out of memory", z->label);
    uint64_t p = cd_off, end = cd_off + cd_size;
    sdvk_status s = SDVK_OK;
    for (uint64_t i = 0; i < n_entries; i++) {
        if (end - p < 46 || rd32(z->base + p) != SIG_CENTRAL) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: central directory entry %llu is damaged", z->label,
                       (unsigned long long)i);
            break;
        }
        const uint8_t *c = z->base + p;
        uint64_t nl = rd16(c + 28), xl = rd16(c + 30), cl = rd16(c + 32);
        if (end - p - 46 < nl + xl + cl) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: central directory entry %llu runs past its end",
                       z->label, (unsigned long long)i);
            break;
        }
        if (memchr(c + 46, 0, (size_t)nl)) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: entry %llu has a NUL byte in its name", z->label,
                       (unsigned long long)i);
            break;
        }
        sd_zip_entry *en = &z->e[z->n];
        if (!(en->name = malloc((size_t)nl + 1))) {
            s = sd_err(SDVK_ERR_OOM, "%s: out of memory", z->label);
            break;
        }
        memcpy(en->name, c + 46, (size_t)nl);
        en->name[nl] = 0;
        z->n++;
        en->flags = rd16(c + 8);
        en->method = rd16(c + 10);
        en->crc = rd32(c + 16);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), loff = rd32(c + 42);
        if ((s = zip64_extra(z, c + 46 + nl, (size_t)xl, en->name, &usize, &csize, &loff)))
            break;
        /* The local header gives where the data starts (its own name and
         * extra lengths; torch pads the extra field to align data). */
        if (!inside(z, loff, 30) || rd32(z->base + loff) != SIG_LOCAL) {
            s = sd_err(SDVK_ERR_FORMAT, "%s: entry \"%s\": local header at %llu missing (truncated?)",
                       z->label, en->name, (unsigned long long)loff);
            break;
        }
        uint64_t data = loff + 30 + rd16(z->base + loff + 26) + rd16(z->base + loff + 28);
        if (!inside(z, data, csize)) {
            s = sd_err(SDVK_ERR_FORMAT,
                       "%s: entry \"%s\": %llu bytes at offset %llu run past the end of the "
                       "archive (%llu bytes; truncated?)",
                       z->label, en->name, (unsigned long long)csize, (unsigned long long)data,
                       (unsigned long long)z->size);
            break;
        }
        en->csize = csize;
        en->usize = usize;
        en->data_off = data;
        p += 46 + nl + xl + cl;
    }
    if (!s && z->n > 1) {
        /* Sorted for sd_zip_find; a name given twice would be ambiguous. */
        qsort(z->e, (size_t)z->n, sizeof *z->e, cmp_entry);
        for (int i = 1; i < z->n && !s; i++)
            if (!strcmp(z->e[i].name, z->e[i - 1].name))
                s = sd_err(SDVK_ERR_FORMAT, "%s: entry \"%s\" appears twice", z->label,
                           z->e[i].name);
    }
    if (s)
        sd_zip_close(z);
    return s;
}

const sd_zip_entry *sd_zip_find(const sd_zip *z, const char *name) {
    if (!z->n)
        return NULL;
    sd_zip_entry key = {.name = (char *)name};
    return bsearch(&key, z->e, (size_t)z->n, sizeof *z->e, cmp_entry);
}

static uint32_t crc_of(const uint8_t *p, uint64_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

sdvk_status sd_zip_get(const sd_zip *z, const sd_zip_entry *e, uint64_t max_inflate, int check_crc,
                       const uint8_t **data, void **owned) {
    *data = NULL;
    *owned = NULL;
    if (e->flags & 1)
        return sd_err(SDVK_ERR_UNSUPPORTED, "%s: entry \"%s\" is encrypted", z->label, e->name);
    const uint8_t *src = z->base + e->data_off;
    if (e->method == 0) {
        if (e->csize != e->usize)
            return sd_err(SDVK_ERR_FORMAT, "%s: stored entry \"%s\": sizes %llu and %llu differ",
                          z->label, e->name, (unsigned long long)e->csize,
                          (unsigned long long)e->usize);
        if (check_crc && crc_of(src, e->usize) != e->crc)
            return sd_err(SDVK_ERR_FORMAT, "%s: entry \"%s\": CRC mismatch (file corrupt)", z->label,
                          e->name);
        *data = src;
        return SDVK_OK;
    }
    if (e->method != 8)
        return sd_err(SDVK_ERR_UNSUPPORTED,
                      "%s: entry \"%s\" uses zip compression method %d (only stored and "
                      "deflated are supported)",
                      z->label, e->name, e->method);
    if (e->usize > max_inflate || e->usize > SIZE_MAX - 1)
        return sd_err(SDVK_ERR_FORMAT, "%s: deflated entry \"%s\" claims %llu bytes (limit %llu)",
                      z->label, e->name, (unsigned long long)e->usize,
                      (unsigned long long)max_inflate);
    uint8_t *out = malloc(e->usize ? (size_t)e->usize : 1);
    if (!out)
        return sd_err(SDVK_ERR_OOM, "%s: entry \"%s\": out of memory inflating %llu bytes", z->label,
                      e->name, (unsigned long long)e->usize);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) {
        free(out);
        return sd_err(SDVK_ERR_OOM, "%s: cannot start zlib", z->label);
    }
    uint64_t in_left = e->csize, out_left = e->usize;
    const uint8_t *ip = src;
    uint8_t *op = out;
    int rc = Z_OK;
    while (rc == Z_OK) {
        /* zlib counts in uInt: feed at most 1 GiB at a time. */
        uInt ni = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        uInt no = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
        zs.next_in = (Bytef *)ip;
        zs.avail_in = ni;
        zs.next_out = op;
        zs.avail_out = no;
        rc = inflate(&zs, Z_NO_FLUSH);
        ip += ni - zs.avail_in;
        in_left -= ni - zs.avail_in;
        op += no - zs.avail_out;
        out_left -= no - zs.avail_out;
        if (rc == Z_OK && ni == zs.avail_in && no == zs.avail_out)
            rc = Z_BUF_ERROR; /* no progress: input ended or output full */
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || out_left != 0) {
        free(out);
        return sd_err(SDVK_ERR_FORMAT, "%s: deflated entry \"%s\" is corrupt or truncated",
                      z->label, e->name);
    }
    if (crc_of(out, e->usize) != e->crc) {
        free(out);
        return sd_err(SDVK_ERR_FORMAT, "%s: entry \"%s\": CRC mismatch (file corrupt)", z->label,
                      e->name);
    }
    *data = out;
    *owned = out;
    return SDVK_OK;
}
