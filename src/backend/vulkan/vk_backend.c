/* The Vulkan sd_backend: weights uploaded once to device-local memory,
 * activations in one planned arena, each prepared graph recorded into ONE
 * command buffer at prepare time and replayed for every step. The step
 * index lives in a small device buffer that the host sets once per run and
 * the last dispatch of each replay advances, so run(first, n) is a single
 * submit of n replays and a single fence wait. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/status.h"
#include "vk_internal.h"

#define STAGING_MAX ((VkDeviceSize)64 << 20)
#define WEIGHT_BLOCK_MAX ((VkDeviceSize)1 << 30)

/* Buffers of a prepared graph: the step counter, the aux tables, the
 * indirect dispatch table, the arena
 * (all activations, or only scratch and fp32 side tensors when the
 * activations are split into blocks), the activation blocks, then the weight
 * blocks. */
enum { BUF_STATE = 0, BUF_AUX = 1, BUF_IND = 2, BUF_ARENA = 3 };

typedef struct vk_backend {
    sd_backend base;
    sd_vk_dev d;
    sd_vk_buf staging;
    VkFence fence;
    /* --verbose counters */
    long n_recorded, n_submits;
} vk_backend;

struct sd_bgraph {
    const sd_graph *g;
    sd_vk_loc *loc;   /* per tensor */
    sd_vk_buf *bufs;  /* BUF_* then weight blocks */
    int nbufs;
    VkDeviceSize *aux_off; /* per node */
    VkDescriptorPool dpool;
    VkCommandBuffer cb;
    VkQueryPool qpool; /* [0] start, [1] end, [2 + k] after node k when profiling */
    uint32_t nqueries;
    int n_dispatch;   /* per replay */
    int has_step_select;
    VkDeviceSize scratch_off, scratch_size; /* in the arena buffer */
    int64_t step_limit; /* smallest STEP_SELECT table length */
    int n_act_blocks;   /* activation blocks after BUF_ARENA (0: all in BUF_ARENA) */
    VkDeviceSize act_bytes;
    int wbase;   /* first weight block (the weight set's buffers, not owned) */
    int n_owned; /* bufs[0 .. n_owned) are this graph's own buffers */
    uint32_t *ind; /* the indirect dispatch table as recorded (restored each run) */
    uint32_t ind_words;
    sd_bweights *own_w; /* private weight set (prepare without one) */
};

/* One resident weight: where it lives, and what it was made from. */
typedef struct vk_went {
    const void *key;  /* checkpoint data pointer */
    sd_dtype dtype;
    int64_t nelem;
    int layout;       /* sd_vk_weight_layout */
    sd_tensor t;      /* descriptor (shape for the conv re-layout) */
    int block;
    VkDeviceSize off;
    uint32_t esz;
} vk_went;

/* A network's weights on the device: blocks of device-local memory, each
 * sized for the weights one prepare added, and where each weight lives. */
struct sd_bweights {
    sd_vk_buf *blocks;
    int nblocks;
    vk_went *e;
    int n, cap;
    long prepared;
    size_t bytes;
};

static vk_backend *VB(sd_backend *b) { return (vk_backend *)b; }

/* ---- one-shot transfers ------------------------------------------------ */

typedef void (*rec_fn)(VkCommandBuffer cb, void *ctx);

static sdvk_status submit_once(vk_backend *vb, rec_fn fn, void *ctx) {
    sd_vk_dev *d = &vb->d;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = d->cpool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkCommandBuffer cb;
    SD_TRY(sd_vk_check(vkAllocateCommandBuffers(d->dev, &ai, &cb), "vkAllocateCommandBuffers"));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    sdvk_status s = sd_vk_check(vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
    if (s == SDVK_OK) {
        fn(cb, ctx);
        s = sd_vk_check(vkEndCommandBuffer(cb), "vkEndCommandBuffer");
    }
    if (s == SDVK_OK) {
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                           .commandBufferCount = 1,
                           .pCommandBuffers = &cb};
        s = sd_vk_check(vkResetFences(d->dev, 1, &vb->fence), "vkResetFences");
        if (s == SDVK_OK)
            s = sd_vk_check(vkQueueSubmit(d->queue, 1, &si, vb->fence), "vkQueueSubmit");
        if (s == SDVK_OK)
            s = sd_vk_check(vkWaitForFences(d->dev, 1, &vb->fence, VK_TRUE, UINT64_MAX),
                            "vkWaitForFences");
    }
    vkFreeCommandBuffers(d->dev, d->cpool, 1, &cb);
    return s;
}

typedef struct copy_ctx {
    VkBuffer src, dst;
    VkDeviceSize src_off, dst_off, size;
    int to_host; /* 1: device -> staging (wait for compute first) */
} copy_ctx;

static void rec_copy(VkCommandBuffer cb, void *p) {
    copy_ctx *c = p;
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkBufferCopy r = {c->src_off, c->dst_off, c->size};
    vkCmdCopyBuffer(cb, c->src, c->dst, 1, &r);
    VkMemoryBarrier mb2 = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                           .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                           .dstAccessMask = c->to_host ? VK_ACCESS_HOST_READ_BIT
                                                       : VK_ACCESS_SHADER_READ_BIT |
                                                             VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         c->to_host ? VK_PIPELINE_STAGE_HOST_BIT : VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         0, 1, &mb2, 0, NULL, 0, NULL);
}

static sdvk_status ensure_staging(vk_backend *vb, VkDeviceSize size) {
    if (size > STAGING_MAX)
        size = STAGING_MAX;
    if (vb->staging.buf && vb->staging.size >= size)
        return SDVK_OK;
    sd_vk_buf_destroy(&vb->d, &vb->staging);
    VkDeviceSize sz = size < ((VkDeviceSize)1 << 20) ? ((VkDeviceSize)1 << 20) : size;
    return sd_vk_buf_create(&vb->d, sz, 1, &vb->staging);
}

/* Converts element range [e0, e0+n) of a host array into device form. */
typedef void (*pack_fn)(void *dst, const void *src, size_t e0, size_t n, void *ctx);

/* Host -> device through the staging buffer, in chunks of whole elements. */
static sdvk_status upload(vk_backend *vb, VkBuffer dst, VkDeviceSize dst_off, size_t nelem,
                          uint32_t esz, pack_fn pack, const void *src, void *ctx) {
    SD_TRY(ensure_staging(vb, (VkDeviceSize)nelem * esz));
    size_t chunk = (size_t)(vb->staging.size / esz);
    for (size_t e0 = 0; e0 < nelem; e0 += chunk) {
        size_t n = nelem - e0 < chunk ? nelem - e0 : chunk;
        pack(vb->staging.map, src, e0, n, ctx);
        copy_ctx c = {vb->staging.buf, dst, 0, dst_off + (VkDeviceSize)e0 * esz,
                      (VkDeviceSize)n * esz, 0};
        SD_TRY(submit_once(vb, rec_copy, &c));
    }
    return SDVK_OK;
}

static void pack_f32_to_f16(void *dst, const void *src, size_t e0, size_t n, void *ctx) {
    (void)ctx;
    const float *s = (const float *)src + e0;
    uint16_t *o = dst;
    for (size_t i = 0; i < n; i++) o[i] = sd_f32_to_f16(s[i]);
}
static void pack_copy4(void *dst, const void *src, size_t e0, size_t n, void *ctx) {
    (void)ctx;
    memcpy(dst, (const char *)src + e0 * 4, n * 4);
}
static void pack_raw(void *dst, const void *src, size_t e0, size_t n, void *ctx) {
    uint32_t esz = *(const uint32_t *)ctx;
    memcpy(dst, (const char *)src + e0 * esz, n * esz);
}

/* ---- prepare ------------------------------------------------------------ */

static void release_graph(vk_backend *vb, sd_bgraph *bg) {
    if (!bg)
        return;
    sd_vk_dev *d = &vb->d;
    vkDeviceWaitIdle(d->dev);
    if (bg->cb)
        vkFreeCommandBuffers(d->dev, d->cpool, 1, &bg->cb);
    if (bg->qpool)
        vkDestroyQueryPool(d->dev, bg->qpool, NULL);
    if (bg->dpool)
        vkDestroyDescriptorPool(d->dev, bg->dpool, NULL);
    for (int i = 0; i < bg->n_owned; i++) sd_vk_buf_destroy(d, &bg->bufs[i]);
    free(bg->bufs);
    free(bg->loc);
    free(bg->aux_off);
    free(bg->ind);
    if (bg->own_w)
        vb->base.v->weights_destroy(&vb->base, bg->own_w);
    free(bg);
}

static int tensor_used(const sd_graph *g, int t) {
    for (int k = 0; k < g->nn; k++)
        for (int j = 0; j < SD_MAX_IN; j++)
            if (g->n[k].in[j] == t)
                return 1;
    return 0;
}

/* Weight t as device data (f32 or f16; int32 copied), conv kernels re-laid
 * from OIHW to [O][kh][kw][I] for the implicit GEMM. Returns malloc'd data. */
static void *convert_weight(const sd_vk_dev *d, const sd_tensor *T, const void *data, int layout,
                            uint32_t *esz) {
    size_t n = (size_t)sd_tensor_nelem(T);
    if (T->dtype == SD_I32) {
        *esz = 4;
        void *o = malloc(n * 4);
        if (o)
            memcpy(o, data, n * 4);
        return o;
    }
    float *f = malloc(n * sizeof(float));
    if (!f)
        return NULL;
    sd_weight_to_f32(T, data, f); /* any dtype; q8 (SD_Q8) is dequantised here */
    if (layout == 1 && T->ndim == 4) {
        size_t O = (size_t)T->ne[0], I = (size_t)T->ne[1], KH = (size_t)T->ne[2],
               KW = (size_t)T->ne[3];
        float *r = malloc(n * sizeof(float));
        if (!r) {
            free(f);
            return NULL;
        }
        for (size_t o = 0; o < O; o++)
            for (size_t i = 0; i < I; i++)
                for (size_t y = 0; y < KH; y++)
                    for (size_t x = 0; x < KW; x++)
                        r[((o * KH + y) * KW + x) * I + i] = f[((o * I + i) * KH + y) * KW + x];
        free(f);
        f = r;
    }
    if (!d->f16) {
        *esz = 4;
        return f;
    }
    *esz = 2;
    uint16_t *h = malloc(n * 2);
    if (h)
        for (size_t i = 0; i < n; i++) h[i] = sd_f32_to_f16(f[i]);
    free(f);
    return h;
}

static sdvk_status add_buf(vk_backend *vb, sd_bgraph *bg, VkDeviceSize size, int host) {
    sd_vk_buf *nb = realloc(bg->bufs, (size_t)(bg->nbufs + 1) * sizeof *nb);
    if (!nb)
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    bg->bufs = nb;
    SD_TRY(sd_vk_buf_create(&vb->d, size, host, &bg->bufs[bg->nbufs]));
    bg->nbufs++;
    bg->n_owned = bg->nbufs; /* own buffers come before the weight set's */
    return SDVK_OK;
}

/* Whether node k's shader can read and write fp32 tensors in f16 mode. A
 * GEGLU folded into its matmul runs in the matmul's shader. */
static int wide_capable(const sd_vk_dev *d, const sd_graph *g, int k) {
    if (k > 0 && sd_vk_fused_next(d, g, k - 1))
        return 0;
    switch (g->n[k].op) {
    case SD_OP_MATMUL:
    case SD_OP_CONV2D:
    case SD_OP_GROUP_NORM:
    case SD_OP_LAYER_NORM:
    case SD_OP_ATTENTION: return 0;
    default: return 1;
    }
}

static sdvk_status place_activations(vk_backend *vb, sd_bgraph *bg) {
    const sd_graph *g = bg->g;
    sd_vk_dev *d = &vb->d;
    /* f16 halves every float offset; int32 tensors (token ids) keep 4-byte
     * elements, so in f16 mode they get their own space after the arena. */
    const VkDeviceSize div = d->f16 ? 2 : 1;
    VkDeviceSize arena = (g->arena_size / div + 255) / 256 * 256;
    /* device scratch, shared by the nodes that need one */
    bg->scratch_size = 0;
    for (int k = 0; k < g->nn; k++) {
        VkDeviceSize sc = sd_vk_node_scratch(g, &g->n[k]);
        if (sc > bg->scratch_size)
            bg->scratch_size = sc;
    }
    VkDeviceSize side = (bg->scratch_size + 255) / 256 * 256; /* scratch + side tensors */
    VkDeviceSize *ioff = calloc((size_t)g->nt, sizeof *ioff);
    /* f16 mode: small tensors that only element-wise ops produce and read
     * (sampler coefficients, timesteps, the latent carried between steps)
     * stay fp32 ("wide"), so that f16 rounding does not compound over steps. */
    unsigned char *wide = calloc((size_t)g->nt, 1);
    size_t *off = NULL;
    if (!ioff || !wide) {
        free(ioff), free(wide);
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    }
    if (d->f16) {
        for (int i = 0; i < g->nt; i++) {
            const sd_tensor *t = &g->t[i];
            wide[i] = t->base < 0 && t->kind != SD_T_WEIGHT && t->dtype == SD_F32 &&
                      sd_tensor_nelem(t) <= (1 << 20);
        }
        for (int k = 0; k < g->nn; k++) {
            const sd_node *n = &g->n[k];
            if (wide_capable(d, g, k))
                continue;
            wide[sd_graph_root(g, n->out)] = 0;
            for (int j = 0; j < SD_MAX_IN; j++)
                if (n->in[j] >= 0)
                    wide[sd_graph_root(g, n->in[j])] = 0;
        }
        for (int i = 0; i < g->nt; i++) {
            const sd_tensor *t = &g->t[i];
            if (t->kind != SD_T_WEIGHT && t->base < 0 && (t->dtype == SD_I32 || wide[i])) {
                ioff[i] = side;
                side += (sd_tensor_nbytes(t) + 255) / 256 * 256;
            }
        }
    }
    /* Everything in one buffer when the device allows an allocation that
     * big; otherwise the activations are re-placed so that none straddles a
     * block of maxMemoryAllocationSize, and each block is its own buffer. */
    VkDeviceSize blk = 0, last_blk = 0;
    sdvk_status s = SDVK_OK;
    if (arena + side > d->arena_block) {
        blk = d->arena_block / 256 * 256;
        size_t top;
        off = malloc((size_t)g->nt * sizeof *off);
        if (!off)
            s = sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
        else if (side > blk)
            s = sd_err(SDVK_ERR_OOM,
                       "vulkan: fp32 side tensors (%llu MiB) exceed the device's "
                       "maxMemoryAllocationSize",
                       (unsigned long long)(side >> 20));
        else if ((s = sd_graph_place(g, (size_t)(blk * div), off, &top)) != SDVK_OK)
            sd_err_prefix(s, "vulkan: splitting the activations into %.2f MiB blocks "
                             "(maxMemoryAllocationSize)",
                          (double)blk / 1048576.0);
        if (s == SDVK_OK) {
            bg->n_act_blocks = (int)((top + blk * div - 1) / (blk * div));
            last_blk = ((top - (size_t)(bg->n_act_blocks - 1) * blk * div) / div + 255) / 256 * 256;
            arena = 0;
        }
    }
    bg->scratch_off = arena;
    for (int i = 0; i < g->nt && s == SDVK_OK; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->kind == SD_T_WEIGHT)
            continue;
        int r = sd_graph_root(g, i);
        uint32_t esz = t->dtype == SD_I32 ? 4 : (uint32_t)(4 / div);
        if (d->f16 && (t->dtype == SD_I32 || wide[r])) {
            bg->loc[i] = (sd_vk_loc){BUF_ARENA, arena + ioff[r] + (t->offset - g->t[r].offset), 4};
        } else if (blk) {
            VkDeviceSize o = off[i], b = o / (blk * div);
            bg->loc[i] = (sd_vk_loc){BUF_ARENA + 1 + (int)b, (o - b * blk * div) / div, esz};
        } else {
            bg->loc[i] = (sd_vk_loc){BUF_ARENA, t->offset / div, esz};
        }
    }
    free(ioff);
    free(wide);
    free(off);
    SD_TRY(s);
    SD_TRY(add_buf(vb, bg, arena + side, 0)); /* BUF_ARENA */
    bg->act_bytes = arena + side;
    for (int b = 0; b < bg->n_act_blocks; b++) {
        VkDeviceSize sz = b == bg->n_act_blocks - 1 ? last_blk : blk;
        SD_TRY(add_buf(vb, bg, sz, 0));
        bg->act_bytes += sz;
    }
    return SDVK_OK;
}

static vk_went *wfind(sd_bweights *w, const sd_tensor *t, int layout) {
    for (int i = 0; i < w->n; i++) {
        vk_went *e = &w->e[i];
        if (e->key == t->data && e->dtype == t->dtype && e->nelem == sd_tensor_nelem(t) &&
            e->layout == layout)
            return e;
    }
    return NULL;
}

static sdvk_status vk_weights_create(sd_backend *b, sd_bweights **out) {
    (void)b;
    *out = calloc(1, sizeof **out);
    return *out ? SDVK_OK : sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
}

static void vk_weights_destroy(sd_backend *b, sd_bweights *w) {
    if (!w)
        return;
    vk_backend *vb = VB(b);
    if (w->nblocks)
        vkDeviceWaitIdle(vb->d.dev);
    for (int i = 0; i < w->nblocks; i++) sd_vk_buf_destroy(&vb->d, &w->blocks[i]);
    free(w->blocks);
    free(w->e);
    free(w);
}

static void vk_weights_stats(sd_backend *b, const sd_bweights *w, sd_weight_stats *st) {
    (void)b;
    memset(st, 0, sizeof *st);
    if (!w)
        return;
    st->prepared = w->prepared;
    st->entries = w->n;
    st->bytes = w->bytes;
}

static sdvk_status upload_weight(vk_backend *vb, sd_bweights *w, const vk_went *e,
                                 const void *data) {
    uint32_t esz;
    void *dev = convert_weight(&vb->d, &e->t, data, e->layout, &esz);
    if (!dev)
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory converting weight %s", e->t.name);
    sdvk_status s = upload(vb, w->blocks[e->block].buf, e->off, (size_t)e->nelem, esz, pack_raw,
                           dev, &esz);
    free(dev);
    return s;
}

static sdvk_status vk_weights_update(sd_backend *b, sd_bweights *w, const void *key,
                                     const float *f32, size_t n) {
    vk_backend *vb = VB(b);
    if (!w)
        return SDVK_OK;
    for (int i = 0; i < w->n; i++) {
        vk_went *e = &w->e[i];
        if (e->key != key)
            continue;
        if ((size_t)e->nelem != n)
            return sd_err(SDVK_ERR_INVALID_ARG, "vulkan: update of %s with %zu values (it has %lld)",
                          e->t.name, n, (long long)e->nelem);
        vk_went tmp = *e;
        if (f32)
            tmp.t.dtype = SD_F32; /* NULL: back to the checkpoint's values */
        /* the device copy has the same element size whatever the source dtype */
        vkDeviceWaitIdle(vb->d.dev);
        SD_TRY(upload_weight(vb, w, &tmp, f32 ? (const void *)f32 : e->key));
    }
    return SDVK_OK;
}

/* Resolves every weight of the graph in the weight set, uploading the ones
 * it lacks into new blocks sized for them; the graph then binds the set's
 * blocks (appended to its buffer list, not owned). */
static sdvk_status place_weights(vk_backend *vb, sd_bgraph *bg, sd_bweights *w) {
    const sd_graph *g = bg->g;
    sd_vk_dev *d = &vb->d;
    VkDeviceSize block_max = d->max_alloc < WEIGHT_BLOCK_MAX ? d->max_alloc : WEIGHT_BLOCK_MAX;
    int first_new = w->n, nblk0 = w->nblocks, blk = -1, nblk = 0;
    VkDeviceSize fill = block_max, *blk_size = NULL;
    sdvk_status s = SDVK_OK;
    /* Pass 1: find each used weight, or place it in a new block. */
    for (int i = 0; i < g->nt && s == SDVK_OK; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->kind != SD_T_WEIGHT || !tensor_used(g, i))
            continue;
        if (!t->data) {
            s = sd_err(SDVK_ERR_INVALID_ARG, "vulkan: weight %s has no data", t->name);
            break;
        }
        int lay = sd_vk_weight_layout(g, i);
        if (wfind(w, t, lay))
            continue;
        uint32_t esz = t->dtype == SD_I32 ? 4 : d->f16 ? 2 : 4;
        VkDeviceSize sz = (VkDeviceSize)sd_tensor_nelem(t) * esz;
        if (sz > block_max) {
            s = sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: weight %s (%llu MiB) exceeds the largest "
                       "allocation the device allows", t->name, (unsigned long long)(sz >> 20));
            break;
        }
        fill = (fill + d->align - 1) / d->align * d->align;
        if (fill + sz > block_max) {
            VkDeviceSize *nbs = realloc(blk_size, (size_t)(nblk + 1) * sizeof *nbs);
            if (!nbs) {
                s = sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
                break;
            }
            blk_size = nbs;
            blk = nblk++;
            fill = 0;
        }
        if (w->n == w->cap) {
            int cap = w->cap ? 2 * w->cap : 256;
            vk_went *ne = realloc(w->e, (size_t)cap * sizeof *ne);
            if (!ne) {
                s = sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
                break;
            }
            w->e = ne;
            w->cap = cap;
        }
        w->e[w->n++] = (vk_went){t->data, t->dtype, sd_tensor_nelem(t), lay, *t, nblk0 + blk, fill,
                                 esz};
        fill += sz;
        blk_size[blk] = fill;
    }
    if (s == SDVK_OK && nblk) {
        sd_vk_buf *nb = realloc(w->blocks, (size_t)(nblk0 + nblk) * sizeof *nb);
        if (!nb)
            s = sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
        else
            w->blocks = nb;
        for (int k = 0; k < nblk && s == SDVK_OK; k++) {
            s = sd_vk_buf_create(d, blk_size[k], 0, &w->blocks[nblk0 + k]);
            if (s == SDVK_OK) {
                w->nblocks++;
                w->bytes += blk_size[k];
            }
        }
    }
    free(blk_size);
    /* Pass 2: upload the new ones (each unique weight once). */
    for (int i = first_new; i < w->n && s == SDVK_OK; i++) {
        s = upload_weight(vb, w, &w->e[i], w->e[i].key);
        if (s == SDVK_OK)
            w->prepared++;
    }
    if (s != SDVK_OK) { /* forget entries whose blocks were not made or filled */
        w->n = first_new;
        while (w->nblocks > nblk0) sd_vk_buf_destroy(d, &w->blocks[--w->nblocks]);
        return s;
    }
    /* The graph binds the set's blocks. */
    sd_vk_buf *nb = realloc(bg->bufs, (size_t)(bg->nbufs + w->nblocks) * sizeof *nb);
    if (!nb)
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    bg->bufs = nb;
    bg->wbase = bg->nbufs;
    for (int k = 0; k < w->nblocks; k++) bg->bufs[bg->nbufs++] = w->blocks[k];
    for (int i = 0; i < g->nt; i++) {
        const sd_tensor *t = &g->t[i];
        if (t->kind != SD_T_WEIGHT || !tensor_used(g, i))
            continue;
        const vk_went *e = wfind(w, t, sd_vk_weight_layout(g, i));
        bg->loc[i] = (sd_vk_loc){bg->wbase + e->block, e->off, e->esz};
    }
    return SDVK_OK;
}

/* Host-made tables (timestep frequencies, f32) in the aux buffer, which
 * also serves as the placeholder bound to unused shader bindings. */
static sdvk_status make_aux(vk_backend *vb, sd_bgraph *bg) {
    const sd_graph *g = bg->g;
    VkDeviceSize size = 256;
    for (int k = 0; k < g->nn; k++)
        if (g->n[k].op == SD_OP_TIMESTEP_EMBED) {
            bg->aux_off[k] = size;
            size += ((VkDeviceSize)g->n[k].i[0] / 2 * 4 + 255) / 256 * 256;
        }
    SD_TRY(add_buf(vb, bg, size, 1)); /* BUF_AUX: host-visible, written directly */
    float *a = bg->bufs[BUF_AUX].map;
    memset(a, 0, (size_t)size);
    for (int k = 0; k < g->nn; k++)
        if (g->n[k].op == SD_OP_TIMESTEP_EMBED) {
            int half = g->n[k].i[0] / 2;
            float *f = a + bg->aux_off[k] / 4;
            for (int j = 0; j < half; j++) f[j] = expf(-logf(10000.0f) * (float)j / (float)half);
        }
    return SDVK_OK;
}

static sdvk_status record(vk_backend *vb, sd_bgraph *bg) {
    sd_vk_dev *d = &vb->d;
    const sd_graph *g = bg->g;
    uint32_t nsets = (uint32_t)g->nn + 1;
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, nsets * SD_VK_BINDINGS};
    VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = nsets,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    SD_TRY(sd_vk_check(vkCreateDescriptorPool(d->dev, &pi, NULL, &bg->dpool),
                       "vkCreateDescriptorPool"));
    VkDescriptorSetLayout *layouts = malloc(nsets * sizeof *layouts);
    VkDescriptorSet *sets = malloc(nsets * sizeof *sets);
    if (!layouts || !sets) {
        free(layouts), free(sets);
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    }
    for (uint32_t i = 0; i < nsets; i++) layouts[i] = d->dsl;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = bg->dpool,
                                      .descriptorSetCount = nsets,
                                      .pSetLayouts = layouts};
    sdvk_status s = sd_vk_check(vkAllocateDescriptorSets(d->dev, &ai, sets),
                                "vkAllocateDescriptorSets");
    free(layouts);
    if (s != SDVK_OK) {
        free(sets);
        return s;
    }
    const char *prof = getenv("SDVK_VK_PROFILE");
    int profile = d->verbose && prof && atoi(prof) > 0;
    bg->nqueries = profile ? (uint32_t)g->nn + 2 : 2;
    if (d->has_timestamps) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = bg->nqueries};
        if (vkCreateQueryPool(d->dev, &qi, NULL, &bg->qpool) != VK_SUCCESS)
            bg->qpool = VK_NULL_HANDLE; /* timings are optional */
    }
    VkCommandBufferAllocateInfo ci = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = d->cpool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    s = sd_vk_check(vkAllocateCommandBuffers(d->dev, &ci, &bg->cb), "vkAllocateCommandBuffers");
    /* SIMULTANEOUS_USE: one submit lists this command buffer n times. */
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT};
    if (s == SDVK_OK)
        s = sd_vk_check(vkBeginCommandBuffer(bg->cb, &bi), "vkBeginCommandBuffer");
    if (s == SDVK_OK) {
        VkCommandBuffer cb = bg->cb;
        /* Order this replay after the previous one and after uploads. */
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                               VK_ACCESS_HOST_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                               VK_ACCESS_INDIRECT_COMMAND_READ_BIT};
        vkCmdPipelineBarrier(cb,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                                 VK_PIPELINE_STAGE_HOST_BIT,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT,
                             0, 1, &mb, 0, NULL, 0, NULL);
        if (bg->qpool) {
            vkCmdResetQueryPool(cb, bg->qpool, 0, bg->nqueries);
            vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, bg->qpool, 0);
        }
        sd_vk_rec r = {.d = d,
                       .g = g,
                       .loc = bg->loc,
                       .bufs = bg->bufs,
                       .nbufs = bg->nbufs,
                       .state_buf = BUF_STATE,
                       .dummy_buf = BUF_AUX,
                       .scratch_buf = BUF_ARENA,
                       .scratch_off = bg->scratch_off,
                       .scratch_size = bg->scratch_size,
                       .ind_buf = BUF_IND,
                       .ind_host = bg->bufs[BUF_IND].map,
                       .ind_cap = (uint32_t)(bg->bufs[BUF_IND].size / 12),
                       .cb = cb};
        for (int k = 0; k < g->nn && s == SDVK_OK; k++) {
            r.set = sets[k];
            r.set_written = 0;
            /* a fused pair (matmul + GEGLU) records as node k; node k + 1
             * then has no dispatch and its profile slot repeats k's time */
            int fused = sd_vk_fused_next(d, g, k);
            s = sd_vk_record_node(&r, &g->n[k], bg->aux_off[k]);
            if (s != SDVK_OK)
                sd_err_prefix(s, "node %d (%s)", k, sd_op_name(g->n[k].op));
            else if (bg->qpool && bg->nqueries > 2)
                for (int j = 0; j <= fused; j++)
                    vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, bg->qpool,
                                        2 + (uint32_t)(k + j));
            k += fused;
        }
        bg->n_dispatch = r.n_dispatch;
        if (s == SDVK_OK && d->verbose)
            sd_vk_log_kernels(&r);
        if (s == SDVK_OK) {
            r.set = sets[g->nn];
            r.set_written = 0;
            s = sd_vk_record_advance(&r);
        }
        bg->ind_words = 3 * (uint32_t)r.n_dispatch;
        if (s == SDVK_OK && !(bg->ind = malloc(bg->ind_words * 4u)))
            s = sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
        if (s == SDVK_OK)
            memcpy(bg->ind, r.ind_host, bg->ind_words * 4u);
        if (s == SDVK_OK) {
            /* The host polls the step counter during a run (live progress). */
            VkMemoryBarrier hb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                  .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                                  .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
            vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                                 0, 1, &hb, 0, NULL, 0, NULL);
        }
        if (s == SDVK_OK && bg->qpool)
            vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, bg->qpool, 1);
        sdvk_status se = sd_vk_check(vkEndCommandBuffer(cb), "vkEndCommandBuffer");
        if (s == SDVK_OK)
            s = se;
    }
    free(sets);
    if (s == SDVK_OK)
        vb->n_recorded++;
    return s;
}

static sdvk_status vk_prepare(sd_backend *b, const sd_graph *g, sd_bweights *w, sd_bgraph **out) {
    vk_backend *vb = VB(b);
    *out = NULL;
    if (g->status)
        return sd_err(g->status, "vulkan prepare: graph has a build error: %s", g->err);
    if (!g->planned)
        return sd_err(SDVK_ERR_INVALID_ARG, "vulkan: graph is not planned (call sd_graph_plan)");
    SD_TRY(sd_backend_check_graph(b, g));
    sd_bgraph *bg = calloc(1, sizeof *bg);
    if (!bg)
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    bg->g = g;
    bg->loc = calloc((size_t)g->nt, sizeof *bg->loc);
    bg->aux_off = calloc((size_t)g->nn + 1, sizeof *bg->aux_off);
    if (!bg->loc || !bg->aux_off) {
        release_graph(vb, bg);
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    }
    for (int i = 0; i < g->nt; i++) bg->loc[i].buf = -1;
    bg->step_limit = INT64_MAX;
    for (int k = 0; k < g->nn; k++)
        if (g->n[k].op == SD_OP_STEP_SELECT) {
            bg->has_step_select = 1;
            int64_t s = g->t[g->n[k].in[0]].ne[0];
            if (s < bg->step_limit)
                bg->step_limit = s;
        }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sdvk_status s = add_buf(vb, bg, 256, 1); /* BUF_STATE: the step counter, host-visible */
    if (s == SDVK_OK)
        s = make_aux(vb, bg);
    if (s == SDVK_OK) /* BUF_IND: at most 3 dispatches per node (split norms) + advance */
        s = add_buf(vb, bg, ((VkDeviceSize)g->nn * 3 + 2) * 12, 1);
    if (s == SDVK_OK)
        s = place_activations(vb, bg);
    if (s == SDVK_OK && !w && (s = vk_weights_create(b, &bg->own_w)) == SDVK_OK)
        w = bg->own_w;
    if (s == SDVK_OK)
        s = place_weights(vb, bg, w);
    if (s == SDVK_OK)
        s = record(vb, bg);
    if (s != SDVK_OK) {
        release_graph(vb, bg);
        return s;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (vb->d.verbose)
        sd_log("vulkan: prepared graph (%d nodes, %d dispatches/step, activations %.1f MiB in "
               "%d buffer(s), %d weight block(s)) in %.0f ms; command buffers recorded: %ld",
               g->nn, bg->n_dispatch + 1, (double)bg->act_bytes / 1048576.0, 1 + bg->n_act_blocks,
               w->nblocks,
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
               vb->n_recorded);
    *out = bg;
    return SDVK_OK;
}

static void vk_release(sd_backend *b, sd_bgraph *bg) { release_graph(VB(b), bg); }

/* ---- write / read ----------------------------------------------------------- */

static sdvk_status check_io(const sd_bgraph *bg, int tensor, size_t nbytes, int writing) {
    const sd_graph *g = bg->g;
    if (tensor < 0 || tensor >= g->nt)
        return sd_err(SDVK_ERR_INVALID_ARG, "vulkan: tensor id %d out of range", tensor);
    const sd_tensor *t = &g->t[tensor];
    int r = sd_graph_root(g, tensor);
    sd_tkind k = g->t[r].kind;
    if (writing ? k != SD_T_INPUT : (k != SD_T_INPUT && k != SD_T_OUTPUT))
        return sd_err(SDVK_ERR_INVALID_ARG, "vulkan: tensor %s is not a graph %s", t->name,
                      writing ? "input" : "input or output");
    if (nbytes != (size_t)sd_tensor_nelem(t) * 4)
        return sd_err(SDVK_ERR_INVALID_ARG, "vulkan: tensor %s: %zu bytes given, %zu expected",
                      t->name, nbytes, (size_t)sd_tensor_nelem(t) * 4);
    return SDVK_OK;
}

static sdvk_status vk_write(sd_backend *b, sd_bgraph *bg, int tensor, const void *src, size_t nbytes) {
    vk_backend *vb = VB(b);
    SD_TRY(check_io(bg, tensor, nbytes, 1));
    const sd_vk_loc *l = &bg->loc[tensor];
    size_t n = nbytes / 4;
    return upload(vb, bg->bufs[l->buf].buf, l->off, n, l->esz,
                  l->esz == 2 ? pack_f32_to_f16 : pack_copy4, src, NULL);
}

static sdvk_status vk_read(sd_backend *b, sd_bgraph *bg, int tensor, void *dst, size_t nbytes) {
    vk_backend *vb = VB(b);
    SD_TRY(check_io(bg, tensor, nbytes, 0));
    const sd_vk_loc *l = &bg->loc[tensor];
    size_t n = nbytes / 4;
    SD_TRY(ensure_staging(vb, (VkDeviceSize)n * l->esz));
    size_t chunk = (size_t)(vb->staging.size / l->esz);
    for (size_t e0 = 0; e0 < n; e0 += chunk) {
        size_t m = n - e0 < chunk ? n - e0 : chunk;
        copy_ctx c = {bg->bufs[l->buf].buf, vb->staging.buf, l->off + (VkDeviceSize)e0 * l->esz, 0,
                      (VkDeviceSize)m * l->esz, 1};
        SD_TRY(submit_once(vb, rec_copy, &c));
        if (l->esz == 2) {
            const uint16_t *h = vb->staging.map;
            float *o = (float *)dst + e0;
            for (size_t i = 0; i < m; i++) o[i] = sd_f16_to_f32(h[i]);
        } else {
            memcpy((char *)dst + e0 * 4, vb->staging.map, m * 4);
        }
    }
    return SDVK_OK;
}

/* ---- run ---------------------------------------------------------------- */

/* SDVK_VK_PROFILE=1 with --verbose: the slowest nodes of the last replay. */
static void log_profile(const sd_vk_dev *d, const sd_bgraph *bg) {
    uint32_t nq = bg->nqueries;
    uint64_t *ts = malloc(nq * sizeof *ts);
    int *order = malloc((nq - 2) * sizeof *order);
    if (ts && order &&
        vkGetQueryPoolResults(d->dev, bg->qpool, 0, nq, nq * sizeof *ts, ts, sizeof *ts,
                              VK_QUERY_RESULT_64_BIT) == VK_SUCCESS) {
        int nn = (int)nq - 2;
        for (int k = 0; k < nn; k++) order[k] = k;
#define NODE_NS(k) ((k) == 0 ? ts[2] - ts[0] : ts[2 + (k)] - ts[1 + (k)])
        for (int a = 1; a < nn; a++) /* insertion sort, slowest first */
            for (int b = a; b > 0 && NODE_NS(order[b]) > NODE_NS(order[b - 1]); b--) {
                int t = order[b];
                order[b] = order[b - 1];
                order[b - 1] = t;
            }
        for (int i = 0; i < nn && i < 12; i++) {
            int k = order[i];
            const sd_tensor *o = &bg->g->t[bg->g->n[k].out];
            sd_log("vulkan:   node %4d %-14s out [%lld,%lld,%lld,%lld] %9.3f ms", k,
                   sd_op_name(bg->g->n[k].op), (long long)o->ne[0],
                   (long long)(o->ndim > 1 ? o->ne[1] : 1), (long long)(o->ndim > 2 ? o->ne[2] : 1),
                   (long long)(o->ndim > 3 ? o->ne[3] : 1),
                   (double)NODE_NS(k) * d->props.limits.timestampPeriod / 1e6);
        }
#undef NODE_NS
    }
    free(ts);
    free(order);
}

static sdvk_status vk_run(sd_backend *b, sd_bgraph *bg, int first, int n, sd_step_cb cb, void *user) {
    vk_backend *vb = VB(b);
    sd_vk_dev *d = &vb->d;
    if (n <= 0)
        return SDVK_OK;
    if (first < 0 || (bg->has_step_select && (int64_t)first + n > bg->step_limit))
        return sd_err(SDVK_ERR_INVALID_ARG,
                      "vulkan: steps %d..%d are outside the graph's step tables (%lld entries)",
                      first, first + n - 1, (long long)bg->step_limit);
    volatile uint32_t *state = bg->bufs[BUF_STATE].map;
    state[0] = (uint32_t)first;
    state[1] = 0; /* cancel */
    memcpy(bg->bufs[BUF_IND].map, bg->ind, bg->ind_words * 4u);
    VkCommandBuffer *cbs = malloc((size_t)n * sizeof *cbs);
    if (!cbs)
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    for (int i = 0; i < n; i++) cbs[i] = bg->cb;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = (uint32_t)n,
                       .pCommandBuffers = cbs};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sdvk_status s = sd_vk_check(vkResetFences(d->dev, 1, &vb->fence), "vkResetFences");
    if (s == SDVK_OK)
        s = sd_vk_check(vkQueueSubmit(d->queue, 1, &si, vb->fence), "vkQueueSubmit");
    /* One fence for the whole run; while waiting, the host polls the
     * device's step counter and reports each step as it completes, so
     * progress is live. A cancel asked for by the callback takes effect
     * when the submitted steps are done (the replays are already queued). */
    int reported = 0, cancel_at = -1;
    while (s == SDVK_OK) {
        VkResult w = vkWaitForFences(d->dev, 1, &vb->fence, VK_TRUE,
                                     cb || b->cancel ? 2000000ull : UINT64_MAX);
        if (w != VK_TIMEOUT && w != VK_SUCCESS) {
            s = sd_vk_check(w, "vkWaitForFences (graph run)");
            break;
        }
        int done = n;
        if (w == VK_TIMEOUT) {
            uint32_t c = state[0];
            done = c >= (uint32_t)first && c - (uint32_t)first <= (uint32_t)n ? (int)(c - (uint32_t)first) : 0;
        }
        for (; cb && cancel_at < 0 && reported < done; reported++)
            if (cb(user, first + reported))
                cancel_at = first + reported;
        if (cancel_at < 0 && sd_backend_cancelled(b))
            cancel_at = first + reported;
        if (cancel_at >= 0)
            state[1] = 1; /* the queued steps' dispatches become empty */
        if (w == VK_SUCCESS)
            break;
    }
    free(cbs);
    SD_TRY(s);
    vb->n_submits++;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (d->verbose) {
        double gpu_ms = -1;
        uint64_t ts[2];
        if (bg->qpool && vkGetQueryPoolResults(d->dev, bg->qpool, 0, 2, sizeof ts, ts, sizeof ts[0],
                                               VK_QUERY_RESULT_64_BIT) == VK_SUCCESS)
            gpu_ms = (double)(ts[1] - ts[0]) * d->props.limits.timestampPeriod / 1e6;
        sd_log("vulkan: run steps %d..%d: 1 submit of %d replay(s), %d dispatches/step, GPU "
               "%.2f ms/step (last replay), wall %.1f ms; totals: %ld command buffer(s) "
               "recorded, %ld graph submit(s)",
               first, first + n - 1, n, bg->n_dispatch + 1, gpu_ms,
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
               vb->n_recorded, vb->n_submits);
    }
    if (d->verbose && bg->qpool && bg->nqueries > 2)
        log_profile(d, bg);
    if (cancel_at >= 0)
        return sd_err(SDVK_ERR_CANCELLED, "cancelled at step %d", cancel_at);
    return SDVK_OK;
}

static void vk_destroy(sd_backend *b) {
    vk_backend *vb = VB(b);
    if (vb->d.dev) {
        vkDeviceWaitIdle(vb->d.dev);
        sd_vk_buf_destroy(&vb->d, &vb->staging);
        if (vb->fence)
            vkDestroyFence(vb->d.dev, vb->fence, NULL);
    }
    sd_vk_dev_destroy(&vb->d);
    free(vb);
}

static int vk_supports(sd_backend *b, const sd_graph *g, int k, char *why, size_t n) {
    return sd_vk_node_supported(&VB(b)->d, g, &g->n[k], why, n);
}

static const sd_backend_vtbl vk_vtbl = {
    .weights_create = vk_weights_create,
    .weights_destroy = vk_weights_destroy,
    .weights_stats = vk_weights_stats,
    .weights_update = vk_weights_update,
    .supports = vk_supports,
    .prepare = vk_prepare,
    .release = vk_release,
    .write = vk_write,
    .read = vk_read,
    .run = vk_run,
    .destroy = vk_destroy,
};

sdvk_status sd_backend_vulkan_create(const sd_vulkan_opts *o, sd_backend **out) {
    *out = NULL;
    sd_vulkan_opts def = {.device_index = -1};
    if (!o)
        o = &def;
    vk_backend *vb = calloc(1, sizeof *vb);
    if (!vb)
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    vb->base.v = &vk_vtbl;
    sdvk_status s = sd_vk_dev_init(&vb->d, o);
    if (s == SDVK_OK) {
        VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        s = sd_vk_check(vkCreateFence(vb->d.dev, &fi, NULL, &vb->fence), "vkCreateFence");
    }
    if (s != SDVK_OK) {
        vk_destroy(&vb->base);
        return s;
    }
    snprintf(vb->base.name, sizeof vb->base.name, "vulkan: %.130s (%s)", vb->d.props.deviceName,
             vb->d.f16 ? "f16" : "f32");
    vb->base.host_cpu = vb->d.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    /* what planning (VAE tiling, CFG halves) may count on: the largest
     * device-local heap, and one binding's range in float32 bytes */
    for (uint32_t i = 0; i < vb->d.memp.memoryHeapCount; i++)
        if ((vb->d.memp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            vb->d.memp.memoryHeaps[i].size > vb->base.mem_total)
            vb->base.mem_total = vb->d.memp.memoryHeaps[i].size;
    vb->base.max_tensor = (uint64_t)vb->d.max_range * (vb->d.f16 ? 2 : 1);
    *out = &vb->base;
    return SDVK_OK;
}
