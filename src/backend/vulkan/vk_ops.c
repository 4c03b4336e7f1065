/* One compute dispatch per graph node: picks the shader and its
 * specialisation constants, binds the node's tensors as sub-ranges of the
 * arena / weight buffers, and fills the push constants. Semantics of every
 * op: src/core/ops.def. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/status.h"
#include "vk_internal.h"

#define MAX_GROUPS 65535u /* the guaranteed minimum of maxComputeWorkGroupCount */

/* Kernel family (shader) of every op, from src/core/ops.def: a family
 * ops.def names and this file does not know fails to compile. */
enum {
    FAM_matmul,
    FAM_norm,
    FAM_attention,
    FAM_eltwise,
    FAM_embed,
};
static const int k_family[SD_OP_COUNT] = {
#define SD_OP(ID, name, shader) FAM_##shader,
#include "../../core/ops.def"
#undef SD_OP
};

typedef struct node_io {
    VkDescriptorBufferInfo bi[SD_VK_BINDINGS];
} node_io;

static uint32_t ceil_div(uint64_t a, uint32_t b) { return (uint32_t)((a + b - 1) / b); }

/* Binds tensor t at `binding`: a descriptor range starting at the aligned
 * offset at or below the tensor, and the tensor's element offset in it. */
static sdvk_status bind_tensor(sd_vk_rec *r, node_io *io, int binding, int t, uint32_t *eoff) {
    const sd_tensor *T = &r->g->t[t];
    const sd_vk_loc *l = &r->loc[t];
    if (l->buf < 0)
        return sd_err(SDVK_ERR_BACKEND, "vulkan: tensor %s (t%d) has no device storage", T->name, t);
    const sd_vk_buf *b = &r->bufs[l->buf];
    VkDeviceSize start = l->off & ~(r->d->align - 1);
    VkDeviceSize need = l->off + (VkDeviceSize)sd_tensor_nelem(T) * l->esz - start;
    VkDeviceSize range = b->size - start;
    if (range > r->d->max_range)
        range = r->d->max_range;
    if (need > range)
        return sd_err(SDVK_ERR_UNSUPPORTED,
                      "vulkan: tensor %s needs a %llu-byte binding; the device's "
                      "maxStorageBufferRange is %llu (f16 precision halves it; or use the CPU backend)",
                      T->name, (unsigned long long)need, (unsigned long long)r->d->max_range);
    io->bi[binding] = (VkDescriptorBufferInfo){b->buf, start, range};
    *eoff = (uint32_t)((l->off - start) / l->esz);
    return SDVK_OK;
}

static sdvk_status dispatch(sd_vk_rec *r, node_io *io, const char *shader, const uint32_t *spec,
                            int nspec, int flags, const void *push, size_t push_size, uint32_t gx,
                            uint32_t gy, uint32_t gz) {
    if (gx > MAX_GROUPS || gy > MAX_GROUPS || gz > MAX_GROUPS)
        return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: %s: dispatch of %ux%ux%u workgroups is too large",
                      shader, gx, gy, gz);
    VkPipeline p;
    SD_TRY(sd_vk_pipeline_get2(r->d, shader, spec, nspec, flags, &p));
    /* A set may not change once bound in a recording command buffer, so a
     * node's dispatches (split group norm has three) share one write. */
    if (!r->set_written) {
        io->bi[5] = (VkDescriptorBufferInfo){r->bufs[r->state_buf].buf, 0, VK_WHOLE_SIZE};
        for (int i = 0; i < SD_VK_BINDINGS; i++)
            if (!io->bi[i].buffer)
                io->bi[i] = (VkDescriptorBufferInfo){r->bufs[r->dummy_buf].buf, 0, VK_WHOLE_SIZE};
        VkWriteDescriptorSet w[SD_VK_BINDINGS];
        for (int i = 0; i < SD_VK_BINDINGS; i++)
            w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                          .dstSet = r->set,
                                          .dstBinding = (uint32_t)i,
                                          .descriptorCount = 1,
                                          .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                          .pBufferInfo = &io->bi[i]};
        vkUpdateDescriptorSets(r->d->dev, SD_VK_BINDINGS, w, 0, NULL);
        r->set_written = 1;
    }
    vkCmdBindPipeline(r->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p);
    vkCmdBindDescriptorSets(r->cb, VK_PIPELINE_BIND_POINT_COMPUTE, r->d->playout, 0, 1, &r->set, 0,
                            NULL);
    uint8_t pc[SD_VK_PUSH_MAX] = {0};
    memcpy(pc, push, push_size);
    vkCmdPushConstants(r->cb, r->d->playout, VK_SHADER_STAGE_COMPUTE_BIT, 0, SD_VK_PUSH_MAX, pc);
    /* Indirect, from a host-visible table the host fills before each run:
     * a cancel raised during a run makes the `advance` dispatch zero the
     * table, so the steps still queued run no work (cancel between steps). */
    if ((uint32_t)r->n_dispatch >= r->ind_cap)
        return sd_err(SDVK_ERR_BACKEND, "vulkan: indirect dispatch table too small");
    uint32_t *ind = r->ind_host + 3 * r->n_dispatch;
    ind[0] = gx;
    ind[1] = gy;
    ind[2] = gz;
    vkCmdDispatchIndirect(r->cb, r->bufs[r->ind_buf].buf, (VkDeviceSize)r->n_dispatch * 12);
    /* Every node reads what earlier ones wrote: one global barrier after each. */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(r->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    r->n_dispatch++;
    return SDVK_OK;
}

int sd_vk_weight_layout(const sd_graph *g, int tensor) {
    for (int k = 0; k < g->nn; k++)
        if (g->n[k].op == SD_OP_CONV2D && g->n[k].in[1] == tensor)
            return 1;
    return 0;
}

int sd_vk_fused_next(const sd_vk_dev *d, const sd_graph *g, int k) {
    if (!d->fuse_geglu || k < 0 || k + 1 >= g->nn)
        return 0;
    const sd_node *a = &g->n[k], *b = &g->n[k + 1];
    if (a->op != SD_OP_MATMUL || b->op != SD_OP_GEGLU || a->in[3] >= 0 || b->in[0] != a->out)
        return 0;
    if (g->t[a->out].kind != SD_T_ACT || g->t[a->out].base >= 0)
        return 0;
    /* nothing else may read the product: no other node, no view of it */
    for (int j = 0; j < g->nn; j++)
        for (int i = 0; i < SD_MAX_IN; i++)
            if (j != k + 1 && g->n[j].in[i] == a->out)
                return 0;
    for (int t = 0; t < g->nt; t++)
        if (g->t[t].base == a->out)
            return 0;
    return 1;
}

/* MATMUL / CONV2D, and a MATMUL with the GEGLU after it folded into its
 * epilogue (geglu != NULL). The variant (vk_kernels.def) comes from the
 * device's plan and the problem size; its tile sets the grid. */
static sdvk_status rec_matmul(sd_vk_rec *r, const sd_node *n, const sd_node *geglu) {
    const sd_graph *g = r->g;
    const sd_vk_dev *d = r->d;
    const sd_tensor *X = &g->t[n->in[0]], *W = &g->t[n->in[1]];
    int out = geglu ? geglu->out : n->out;
    const sd_tensor *O = &g->t[out];
    struct {
        uint32_t M, N, K, oo, ox, ow, ob, ores, H, W, Ci, Ho, Wo, kw, stride, pt, pl;
    } pc = {0};
    node_io io = {0};
    int conv = n->op == SD_OP_CONV2D;
    pc.N = (uint32_t)(geglu ? W->ne[0] / 2 : W->ne[0]);
    if (conv) {
        pc.H = (uint32_t)X->ne[1];
        pc.W = (uint32_t)X->ne[2];
        pc.Ci = (uint32_t)X->ne[3];
        pc.Ho = (uint32_t)O->ne[1];
        pc.Wo = (uint32_t)O->ne[2];
        pc.kw = (uint32_t)W->ne[3];
        pc.K = (uint32_t)(W->ne[1] * W->ne[2] * W->ne[3]);
        pc.M = (uint32_t)(O->ne[0] * O->ne[1] * O->ne[2]);
        pc.stride = (uint32_t)n->i[0];
        pc.pt = (uint32_t)n->i[1];
        pc.pl = (uint32_t)n->i[2];
    } else {
        pc.K = (uint32_t)W->ne[1];
        pc.M = (uint32_t)(sd_tensor_nelem(X) / pc.K);
    }
    SD_TRY(bind_tensor(r, &io, 0, out, &pc.oo));
    SD_TRY(bind_tensor(r, &io, 1, n->in[0], &pc.ox));
    SD_TRY(bind_tensor(r, &io, 2, n->in[1], &pc.ow));
    if (n->in[2] >= 0)
        SD_TRY(bind_tensor(r, &io, 3, n->in[2], &pc.ob));
    if (n->in[3] >= 0)
        SD_TRY(bind_tensor(r, &io, 4, n->in[3], &pc.ores));
    int v = sd_vk_pick_variant(&d->plan, pc.M, geglu ? 2ull * pc.N : pc.N);
    const sd_vk_variant *kv = &sd_vk_variants[v];
    /* Vector loads (SIMT128: 4 elements, cooperative matrix: 8) need whole
     * vectors: rows (conv: input pixels) and both offsets aligned. */
    uint32_t q = kv->needs != SD_VK_NEED_NONE ? 8 : kv->bm == 128 ? 4 : 0;
    uint32_t vec = q && (conv ? pc.Ci : pc.K) % q == 0 && pc.ox % q == 0 && pc.ow % q == 0;
    uint32_t threads = sd_vk_variant_threads(v, d->caps.subgroup);
    uint32_t spec[9] = {n->in[2] >= 0, n->in[3] >= 0, (uint32_t)conv, vec, geglu != NULL,
                        d->plan.fm, d->plan.fn, d->plan.fk, threads};
    if (kv->needs == SD_VK_NEED_NONE)
        spec[5] = spec[6] = spec[7] = spec[8] = 0; /* unused: one pipeline per SIMT variant */
    char name[48];
    sd_vk_variant_spv(v, name, sizeof name);
    r->n_variant[conv][v]++;
    r->n_geglu_fused += geglu != NULL;
    r->n_vec += (int)vec;
    uint32_t cols = geglu ? kv->bn / 2 : kv->bn;
    return dispatch(r, &io, name, spec, 9,
                    kv->needs != SD_VK_NEED_NONE && d->subgroup_control ? SD_VK_PIPE_FULL_SUBGROUPS : 0,
                    &pc, sizeof pc, ceil_div(pc.N, cols), ceil_div(pc.M, kv->bm), 1);
}

/* Group shape of a norm node: rows (batch, or rows for layer norm), groups,
 * spatial size S, channels C. */
static void norm_shape(const sd_graph *g, const sd_node *n, int64_t *rows, uint32_t *G, uint32_t *S,
                       uint32_t *C) {
    const sd_tensor *X = &g->t[n->in[0]];
    int64_t c = X->ne[X->ndim - 1];
    if (n->op == SD_OP_GROUP_NORM) {
        *rows = X->ne[0];
        *G = (uint32_t)n->i[0];
        *S = (uint32_t)(sd_tensor_nelem(X) / (X->ne[0] * c));
    } else { /* layer norm: every row is one "group" of C channels */
        *rows = sd_tensor_nelem(X) / c;
        *G = 1;
        *S = 1;
    }
    *C = (uint32_t)c;
}

/* Groups above this many elements are split over several workgroups (two
 * passes: chunk statistics, then merge + normalise), so that a GPU gets
 * hundreds of workgroups instead of one per group. */
#define NORM_SPLIT_ABOVE 8192u
#define NORM_CHUNK_MIN 4096u
#define NORM_MAX_CHUNKS 32u /* the apply pass merges every chunk of every group */

static int norm_splits(uint64_t len, uint32_t G, sd_op op) {
    return op == SD_OP_GROUP_NORM && len > NORM_SPLIT_ABOVE && G <= 256;
}

static void norm_split(uint32_t n, uint32_t *chunks, uint32_t *chunk) {
    *chunk = ceil_div(n, NORM_MAX_CHUNKS);
    if (*chunk < NORM_CHUNK_MIN)
        *chunk = NORM_CHUNK_MIN;
    *chunks = ceil_div(n, *chunk);
}

VkDeviceSize sd_vk_node_scratch(const sd_graph *g, const sd_node *n) {
    if (n->op != SD_OP_GROUP_NORM && n->op != SD_OP_LAYER_NORM)
        return 0;
    int64_t rows;
    uint32_t G, S, C, chunks, chunk;
    norm_shape(g, n, &rows, &G, &S, &C);
    uint64_t len = (uint64_t)S * (C / G);
    if (!norm_splits(len, G, n->op))
        return 0;
    norm_split((uint32_t)len, &chunks, &chunk);
    return (VkDeviceSize)rows * G * chunks * 2 * 4;
}

static sdvk_status rec_norm(sd_vk_rec *r, const sd_node *n) {
    struct {
        uint32_t S, C, G, Cg, oo, ox, og, ob;
        float eps;
        uint32_t chunks, chunk, osc, ngroups, n_total;
    } pc = {0};
    node_io io = {0};
    int64_t rows;
    norm_shape(r->g, n, &rows, &pc.G, &pc.S, &pc.C);
    pc.Cg = pc.C / pc.G;
    pc.eps = n->f[0];
    pc.ngroups = (uint32_t)(rows * pc.G);
    pc.n_total = (uint32_t)sd_tensor_nelem(&r->g->t[n->out]);
    SD_TRY(bind_tensor(r, &io, 0, n->out, &pc.oo));
    SD_TRY(bind_tensor(r, &io, 1, n->in[0], &pc.ox));
    SD_TRY(bind_tensor(r, &io, 2, n->in[1], &pc.og));
    SD_TRY(bind_tensor(r, &io, 3, n->in[2], &pc.ob));
    uint32_t silu = n->op == SD_OP_GROUP_NORM && n->i[1];
    VkDeviceSize need = sd_vk_node_scratch(r->g, n);
    if (!need) {
        uint32_t spec[2] = {silu, 0};
        return dispatch(r, &io, "norm", spec, 2, 0, &pc, sizeof pc, pc.ngroups, 1, 1);
    }
    if (need > r->scratch_size)
        return sd_err(SDVK_ERR_BACKEND, "vulkan: group norm scratch not reserved");
    norm_split(pc.S * pc.Cg, &pc.chunks, &pc.chunk);
    io.bi[4] = (VkDescriptorBufferInfo){r->bufs[r->scratch_buf].buf, r->scratch_off, need};
    pc.osc = 0;
    r->n_norm_split++;
    uint32_t spec1[2] = {silu, 1}, spec2[2] = {silu, 2};
    SD_TRY(dispatch(r, &io, "norm", spec1, 2, 0, &pc, sizeof pc, pc.chunks, pc.ngroups, 1));
    /* 16 elements per thread; a grid-stride loop past 16384 workgroups */
    uint32_t blocks = ceil_div((uint64_t)pc.S * pc.C, 4096);
    return dispatch(r, &io, "norm", spec2, 2, 0, &pc, sizeof pc, blocks > 16384 ? 16384 : blocks,
                    (uint32_t)rows, 1);
}

/* Head dims the attention shader takes: at most 64, or 64 per thread with
 * 2/4/8 threads per query (SD heads: 40, 80, 160; VAE: 512). */
static int attn_tpq(uint32_t D) {
    uint32_t tpq = 1;
    while (tpq < 8 && D / tpq > 64) tpq *= 2;
    return D % tpq != 0 || D / tpq > 64 ? 0 : (int)tpq;
}

static sdvk_status rec_attention(sd_vk_rec *r, const sd_node *n) {
    const sd_tensor *Q = &r->g->t[n->in[0]], *K = &r->g->t[n->in[1]];
    struct {
        uint32_t Lq, Lk, H, oo, oq, ok, ov;
        float scale;
    } pc = {0};
    node_io io = {0};
    uint32_t H = (uint32_t)n->i[0], D = (uint32_t)(Q->ne[2] / H);
    /* Threads per query: the fewest (1, 2, 4, 8) that leave each thread at
     * most 64 elements of the head. */
    uint32_t tpq = (uint32_t)attn_tpq(D);
    if (!tpq)
        return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: attention head dim %u is not supported", D);
    pc.Lq = (uint32_t)Q->ne[1];
    pc.Lk = (uint32_t)K->ne[1];
    pc.H = H;
    pc.scale = n->f[0];
    SD_TRY(bind_tensor(r, &io, 0, n->out, &pc.oo));
    SD_TRY(bind_tensor(r, &io, 1, n->in[0], &pc.oq));
    SD_TRY(bind_tensor(r, &io, 2, n->in[1], &pc.ok));
    SD_TRY(bind_tensor(r, &io, 3, n->in[2], &pc.ov));
    /* K and V tiles of KT rows plus 64 x KT partial dots: (2 D + 64) KT
     * floats within the 16 KiB of shared memory every device has */
    uint32_t kt = 4096 / (2 * D + 64);
    if (kt > 32)
        kt = 32;
    if (kt < 1)
        kt = 1;
    const sd_vk_dev *d = r->d;
    uint32_t bkv = sd_vk_attn_block(&d->caps, &d->plan, D);
    /* testing hook: a smaller key block (16 or 32) than shared memory allows */
    const char *cap = getenv("SDVK_VK_ATTN_BKV");
    if (bkv && cap && atoi(cap) >= 16 && (uint32_t)atoi(cap) < bkv)
        bkv = atoi(cap) >= 32 ? 32 : 16;
    if (bkv) {
        /* the matrix units: same bindings, plus whether uvec4 loads fit */
        struct {
            uint32_t Lq, Lk, H, oo, oq, ok, ov;
            float scale;
            uint32_t vec;
        } pcc = {pc.Lq, pc.Lk, pc.H, pc.oo, pc.oq, pc.ok, pc.ov, pc.scale, 0};
        pcc.vec = D % 8 == 0 && pc.oq % 8 == 0 && pc.ok % 8 == 0 && pc.ov % 8 == 0;
        uint32_t cspec[9] = {D, (uint32_t)(n->i[1] != 0), bkv, 0, 0, d->plan.fm, d->plan.fn, d->plan.fk,
                             d->plan.threads_att};
        char name[48];
        sd_vk_variant_spv(d->plan.att, name, sizeof name);
        r->n_attn_coop++;
        return dispatch(r, &io, name, cspec, 9, d->subgroup_control ? SD_VK_PIPE_FULL_SUBGROUPS : 0, &pcc,
                        sizeof pcc, ceil_div(pc.Lq, sd_vk_variants[d->plan.att].wg * d->plan.fm),
                        (uint32_t)(Q->ne[0] * H), 1);
    }
    uint32_t spec[4] = {D, kt, (uint32_t)(n->i[1] != 0), tpq};
    return dispatch(r, &io, "attention", spec, 4, 0, &pc, sizeof pc, ceil_div(pc.Lq, 64 / tpq),
                    (uint32_t)(Q->ne[0] * H), 1);
}

typedef struct elt_pc {
    uint32_t n, oo, oa, ob, oc, od;
    uint32_t q[8];
    float f0, f1;
    uint32_t wide;
} elt_pc;

/* Push-constant bit for binding b when tensor t is an fp32 ("wide") tensor
 * in f16 mode (see place_activations in vk_backend.c). */
static uint32_t wide_bit(const sd_vk_rec *r, int t, int b) {
    return r->d->f16 && r->loc[t].esz == 4 && r->g->t[t].dtype != SD_I32 ? 1u << b : 0;
}

static sdvk_status rec_eltwise(sd_vk_rec *r, const sd_node *n) {
    const sd_graph *g = r->g;
    const sd_tensor *O = &g->t[n->out], *A = &g->t[n->in[0]];
    elt_pc pc = {0};
    node_io io = {0};
    const uint32_t op = (uint32_t)n->op; /* ops.glsl numbers ops as ops.def does */
    pc.n = (uint32_t)sd_tensor_nelem(O);
    pc.f0 = n->f[0];
    pc.f1 = n->f[1];
    if (op == SD_OP_GEGLU) {
        pc.q[0] = (uint32_t)O->ne[O->ndim - 1];
    } else if (op == SD_OP_ADD || op == SD_OP_MUL) {
        const sd_tensor *B = &g->t[n->in[1]];
        uint64_t stride = 1;
        for (int d = 0; d < 4; d++) {
            int da = O->ndim - 1 - d, db = B->ndim - 1 - d;
            pc.q[3 - d] = da >= 0 ? (uint32_t)O->ne[da] : 1;
            int64_t eb = db >= 0 ? B->ne[db] : 1;
            pc.q[7 - d] = eb == 1 ? 0 : (uint32_t)stride;
            stride *= (uint64_t)eb;
        }
    } else if (op == SD_OP_STEP_SELECT) {
        pc.q[0] = (uint32_t)A->ne[0];
    } else if (op == SD_OP_UPSAMPLE2X) {
        pc.q[0] = (uint32_t)A->ne[1];
        pc.q[1] = (uint32_t)A->ne[2];
        pc.q[2] = (uint32_t)A->ne[3];
        pc.q[3] = (uint32_t)O->ne[1];
        pc.q[4] = (uint32_t)O->ne[2];
    } else if (op == SD_OP_SAMPLER_STEP) {
        pc.q[0] = (uint32_t)n->i[0];
        pc.q[1] = (uint32_t)n->i[1];
        pc.q[2] = n->in[2] >= 0;
    } else if (op == SD_OP_CONCAT) {
        const sd_tensor *B = &g->t[n->in[1]];
        int axis = n->i[0];
        uint64_t inner = 1;
        for (int d = axis + 1; d < A->ndim; d++) inner *= (uint64_t)A->ne[d];
        pc.q[0] = (uint32_t)(A->ne[axis] * inner);
        pc.q[1] = (uint32_t)(B->ne[axis] * inner);
    }
    SD_TRY(bind_tensor(r, &io, 0, n->out, &pc.oo));
    pc.wide = wide_bit(r, n->out, 0);
    uint32_t *offs[4] = {&pc.oa, &pc.ob, &pc.oc, &pc.od};
    for (int k = 0; k < SD_MAX_IN; k++)
        if (n->in[k] >= 0) {
            SD_TRY(bind_tensor(r, &io, 1 + k, n->in[k], offs[k]));
            pc.wide |= wide_bit(r, n->in[k], 1 + k);
        }
    uint32_t groups = ceil_div(pc.n, 256);
    if (groups > 4096) /* grid-stride loop in the shader covers the rest */
        groups = 4096;
    uint32_t spec[1] = {op};
    return dispatch(r, &io, "eltwise", spec, 1, 0, &pc, sizeof pc, groups ? groups : 1, 1, 1);
}

/* Binds an embedding table, as two ranges (rows < *split at binding 2, the
 * rest at binding 4) when it exceeds maxStorageBufferRange (the CLIP token
 * table in f32 is 145 MiB; lavapipe allows 128 MiB per binding). */
static sdvk_status bind_table(sd_vk_rec *r, node_io *io, int t, uint32_t *off1, uint32_t *off2,
                              uint32_t *split) {
    const sd_tensor *T = &r->g->t[t];
    const sd_vk_loc *l = &r->loc[t];
    VkDeviceSize row = (VkDeviceSize)T->ne[1] * l->esz;
    VkDeviceSize bytes = (VkDeviceSize)T->ne[0] * row;
    if (l->buf < 0 || bytes + r->d->align <= r->d->max_range)
        return bind_tensor(r, io, 2, t, off1);
    const sd_vk_buf *b = &r->bufs[l->buf];
    VkDeviceSize rows1 = (r->d->max_range - r->d->align) / row;
    if (2 * rows1 < (VkDeviceSize)T->ne[0])
        return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: embedding table %s (%llu MiB) exceeds two "
                      "storage buffer ranges", T->name, (unsigned long long)(bytes >> 20));
    for (int part = 0; part < 2; part++) {
        VkDeviceSize off = l->off + (part ? rows1 * row : 0);
        VkDeviceSize start = off & ~(r->d->align - 1);
        VkDeviceSize range = b->size - start < r->d->max_range ? b->size - start : r->d->max_range;
        io->bi[part ? 4 : 2] = (VkDescriptorBufferInfo){b->buf, start, range};
        *(part ? off2 : off1) = (uint32_t)((off - start) / l->esz);
    }
    *split = (uint32_t)rows1;
    return SDVK_OK;
}

static sdvk_status rec_embed(sd_vk_rec *r, const sd_node *n, VkDeviceSize aux_off) {
    const sd_tensor *O = &r->g->t[n->out];
    struct {
        uint32_t n, C, V, oo, oids, otab, ofreq, ot, split, wide;
    } pc = {0};
    node_io io = {0};
    pc.n = (uint32_t)sd_tensor_nelem(O);
    pc.C = (uint32_t)O->ne[O->ndim - 1];
    SD_TRY(bind_tensor(r, &io, 0, n->out, &pc.oo));
    pc.wide = wide_bit(r, n->out, 0);
    uint32_t op = n->op == SD_OP_TIMESTEP_EMBED;
    if (!op) {
        pc.V = (uint32_t)r->g->t[n->in[1]].ne[0];
        pc.split = pc.V;
        SD_TRY(bind_tensor(r, &io, 1, n->in[0], &pc.oids));
        SD_TRY(bind_table(r, &io, n->in[1], &pc.otab, &pc.ot, &pc.split));
    } else {
        io.bi[3] = (VkDescriptorBufferInfo){r->bufs[r->dummy_buf].buf, 0, VK_WHOLE_SIZE};
        pc.ofreq = (uint32_t)(aux_off / 4);
        SD_TRY(bind_tensor(r, &io, 4, n->in[0], &pc.ot));
        pc.wide |= wide_bit(r, n->in[0], 4);
    }
    uint32_t groups = ceil_div(pc.n, 256);
    if (groups > 4096)
        groups = 4096;
    uint32_t spec[1] = {op};
    return dispatch(r, &io, "embed", spec, 1, 0, &pc, sizeof pc, groups ? groups : 1, 1, 1);
}

sdvk_status sd_vk_record_node(sd_vk_rec *r, const sd_node *n, VkDeviceSize aux_off) {
    if ((unsigned)n->op >= SD_OP_COUNT)
        return sd_err(SDVK_ERR_INVALID_ARG, "vulkan: unknown op %d", (int)n->op);
    int k = (int)(n - r->g->n);
    switch (k_family[n->op]) {
    case FAM_matmul:
        return rec_matmul(r, n, sd_vk_fused_next(r->d, r->g, k) ? n + 1 : NULL);
    case FAM_norm: return rec_norm(r, n);
    case FAM_attention: return rec_attention(r, n);
    case FAM_embed: return rec_embed(r, n, aux_off);
    case FAM_eltwise: return rec_eltwise(r, n);
    }
    return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: no shader for op %s", sd_op_name(n->op));
}

int sd_vk_node_supported(const sd_vk_dev *d, const sd_graph *g, const sd_node *n, char *why,
                         size_t nwhy) {
    (void)d;
    if ((unsigned)n->op >= SD_OP_COUNT) {
        snprintf(why, nwhy, "unknown op %d", (int)n->op);
        return 0;
    }
    switch (k_family[n->op]) {
    case FAM_attention: {
        const sd_tensor *Q = &g->t[n->in[0]];
        uint32_t D = (uint32_t)(Q->ne[2] / n->i[0]);
        if (!attn_tpq(D)) {
            snprintf(why, nwhy, "attention head dim %u is not supported by the shader (at most "
                     "64, or a multiple of 2/4/8 up to 512)", D);
            return 0;
        }
        return 1;
    }
    case FAM_eltwise:
        if (n->op == SD_OP_SAMPLER_STEP && n->i[1] > 16) {
            snprintf(why, nwhy, "sampler_step with %d registers (at most 16)", n->i[1]);
            return 0;
        }
        return 1;
    case FAM_matmul:
    case FAM_norm:
    case FAM_embed: return 1;
    }
    snprintf(why, nwhy, "no shader family for op %s", sd_op_name(n->op));
    return 0;
}

sdvk_status sd_vk_record_advance(sd_vk_rec *r) {
    node_io io = {0};
    /* binding 0: the indirect table, zeroed when the host raised cancel */
    io.bi[0] = (VkDescriptorBufferInfo){r->bufs[r->ind_buf].buf, 0, VK_WHOLE_SIZE};
    uint32_t words = 3 * ((uint32_t)r->n_dispatch + 1), spec[1] = {0};
    return dispatch(r, &io, "advance", spec, 0, 0, &words, sizeof words, 1, 1, 1);
}

void sd_vk_log_kernels(const sd_vk_rec *r) {
    char line[512];
    int o = 0;
    static const char *const opn[2] = {"matmul", "conv2d"};
    for (int c = 0; c < 2; c++)
        for (int v = 0; v < SD_VK_K_COUNT; v++) {
            if (!r->n_variant[c][v] || o >= (int)sizeof line - 80)
                continue;
            char name[48];
            sd_vk_variant_spv(v, name, sizeof name);
            o += snprintf(line + o, sizeof line - (size_t)o, "%s%s %dx %s (%s %ux%u)", o ? ", " : "",
                          opn[c], r->n_variant[c][v], name, sd_vk_variants[v].family,
                          sd_vk_variants[v].bm, sd_vk_variants[v].bn);
        }
    sd_log("vulkan: kernels recorded: %s; %d with vector loads; %d GEGLU fused into the matmul; "
           "%d group norms split over workgroups; %d attention on the matrix units",
           o ? line : "no matmul/conv2d", r->n_vec, r->n_geglu_fused, r->n_norm_split, r->n_attn_coop);
}
