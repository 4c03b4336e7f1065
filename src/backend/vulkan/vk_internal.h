/* Vulkan backend internals, shared by the files of src/backend/vulkan:
 *   vk_device.c   loader (volk), instance, validation messenger, device
 *                 choice and listing, pipelines and the pipeline cache
 *   vk_backend.c  the sd_backend vtable: memory, upload, recording, replay
 *   vk_ops.c      one dispatch per graph node (pipeline, push constants)
 * Shaders live in shaders/ and are embedded at build time (sdvk_spirv.c). */
#ifndef SD_VK_INTERNAL_H
#define SD_VK_INTERNAL_H

#include <volk.h>

#include "../backend.h"
#include "vk_kernels.h"

#define SD_VK_BINDINGS 6 /* 0 out, 1..4 inputs, 5 step state */
#define SD_VK_MAX_SPEC 10
#define SD_VK_PUSH_MAX 128

/* VK_KHR_cooperative_matrix arrived in Vulkan headers 1.3.255; Debian 12
 * ships 1.3.239. The few declarations sdvk needs, as the registry has them. */
#ifndef VK_KHR_cooperative_matrix
#define VK_KHR_cooperative_matrix 1
#define VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME "VK_KHR_cooperative_matrix"
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR ((VkStructureType)1000506000)
#define VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR ((VkStructureType)1000506001)
typedef struct VkCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    uint32_t AType, BType, CType, ResultType; /* VkComponentTypeKHR */
    VkBool32 saturatingAccumulation;
    uint32_t scope; /* VkScopeKHR */
} VkCooperativeMatrixPropertiesKHR;
typedef struct VkPhysicalDeviceCooperativeMatrixFeaturesKHR {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix;
    VkBool32 cooperativeMatrixRobustBufferAccess;
} VkPhysicalDeviceCooperativeMatrixFeaturesKHR;
typedef VkResult(VKAPI_PTR *PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(
    VkPhysicalDevice, uint32_t *, VkCooperativeMatrixPropertiesKHR *);
#endif

/* Pipeline creation flags (sd_vk_pipeline_get2). */
#define SD_VK_PIPE_FULL_SUBGROUPS 1 /* require full subgroups of the device's size */

typedef struct sd_vk_pipeline {
    char shader[32];
    uint32_t spec[SD_VK_MAX_SPEC];
    int nspec;
    int flags;
    VkPipeline p;
} sd_vk_pipeline;

typedef struct sd_vk_dev {
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memp;
    int has_16bit_storage;
    int f16;              /* tensors stored as 16-bit floats */
    int has_timestamps;
    VkDeviceSize max_range;  /* maxStorageBufferRange */
    VkDeviceSize max_alloc;  /* maxMemoryAllocationSize */
    VkDeviceSize arena_block; /* largest activation buffer: max_alloc (lower in tests) */
    VkDeviceSize align;      /* storage buffer offset alignment (>= 16) */
    VkCommandPool cpool;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout playout;
    VkPipelineCache pcache;
    char cache_path[512];
    sd_vk_pipeline *pipes;
    int npipes, cap_pipes;
    int verbose;
    int validation;
    /* matmul / conv2d kernels: the device's capabilities and the choice */
    sd_vk_caps caps;
    sd_vk_mm_plan plan;
    int subgroup_control;  /* VK_EXT_subgroup_size_control enabled with full subgroups */
    int fuse_geglu;        /* fold GEGLU into the preceding matmul (SDVK_VK_FUSE=0: off) */
} sd_vk_dev;

/* A device buffer with its own memory; `map` is non-NULL for host-visible
 * buffers (staging, step state). */
typedef struct sd_vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map;
} sd_vk_buf;

/* Where one tensor lives on the device. */
typedef struct sd_vk_loc {
    int buf;            /* index into sd_bgraph.bufs, -1 = not on the device */
    VkDeviceSize off;   /* byte offset in that buffer */
    uint32_t esz;       /* element size there: 2 (f16) or 4 */
} sd_vk_loc;

/* Validation messages of severity error seen since process start (tests
 * fail when this is non-zero). */
int sd_vk_validation_errors(void);

/* ---- vk_device.c ---- */
/* Loads Vulkan, creates the instance and picks a device (index -1 = best).
 * SDVK_ERR_UNSUPPORTED when no loader, driver or usable device exists. */
sdvk_status sd_vk_dev_init(sd_vk_dev *d, const sd_vulkan_opts *o);
void sd_vk_dev_destroy(sd_vk_dev *d);
sdvk_status sd_vk_check(VkResult r, const char *what);
/* Pipeline for shader "<name>" in the current precision, with spec constants. */
sdvk_status sd_vk_pipeline_get(sd_vk_dev *d, const char *shader, const uint32_t *spec, int nspec,
                               VkPipeline *out);
/* The same with creation flags (SD_VK_PIPE_*). */
sdvk_status sd_vk_pipeline_get2(sd_vk_dev *d, const char *shader, const uint32_t *spec, int nspec,
                                int flags, VkPipeline *out);
/* Whether SPIR-V "<name>.<f32|f16>" is embedded in this build. */
int sd_vk_spirv_embedded(const char *name, int f16);
sdvk_status sd_vk_buf_create(sd_vk_dev *d, VkDeviceSize size, int host_visible, sd_vk_buf *b);
void sd_vk_buf_destroy(sd_vk_dev *d, sd_vk_buf *b);

/* ---- vk_ops.c ---- */
/* What recording one node needs from the prepared graph. */
typedef struct sd_vk_rec {
    sd_vk_dev *d;
    const sd_graph *g;
    const sd_vk_loc *loc;  /* per tensor id */
    const sd_vk_buf *bufs;
    int nbufs;
    int state_buf;         /* index of the step state buffer */
    int dummy_buf;         /* the aux buffer: host-made tables; bound to unused bindings */
    VkCommandBuffer cb;
    VkDescriptorSet set;   /* this node's set (written by sd_vk_record_node) */
    int set_written;       /* the set is written once per node, before it is bound */
    int scratch_buf;       /* device scratch (split group norm statistics) */
    VkDeviceSize scratch_off, scratch_size;
    int n_dispatch;
    int ind_buf;           /* host-visible indirect dispatch table (3 uint32 per dispatch) */
    uint32_t *ind_host;    /* its mapping */
    uint32_t ind_cap;      /* dispatches it has room for */
    /* --verbose: kernels recorded, per op (0 matmul, 1 conv2d) and variant */
    int n_variant[2][SD_VK_K_COUNT];
    int n_geglu_fused, n_norm_split, n_vec, n_attn_coop;
} sd_vk_rec;

/* Validates the node for this device and records its dispatch. aux_off:
 * byte offset of the node's host-made table in the aux buffer (timestep
 * frequencies), else unused. A node that sd_vk_fused_next says absorbs the
 * next node records both (the caller then skips the next one). */
sdvk_status sd_vk_record_node(sd_vk_rec *r, const sd_node *n, VkDeviceSize aux_off);
/* 1 when node k and node k + 1 run as one dispatch: a MATMUL (no residual)
 * whose output only the GEGLU right after it reads. */
int sd_vk_fused_next(const sd_vk_dev *d, const sd_graph *g, int k);
/* --verbose summary of the kernels a recording used. */
void sd_vk_log_kernels(const sd_vk_rec *r);
/* Scratch bytes the node needs (split group norm), 0 when none. */
VkDeviceSize sd_vk_node_scratch(const sd_graph *g, const sd_node *n);
/* Whether the shaders take node n as built; else the reason, naming the op. */
int sd_vk_node_supported(const sd_vk_dev *d, const sd_graph *g, const sd_node *n, char *why,
                         size_t nwhy);
/* Records the step-counter advance (which also zeroes the indirect table
 * when a cancel was raised). */
sdvk_status sd_vk_record_advance(sd_vk_rec *r);
/* Per-node weight layout wanted at upload: 1 = conv weight re-laid to
 * [Co][kh][kw][Ci]; 0 = as in the checkpoint. */
int sd_vk_weight_layout(const sd_graph *g, int tensor);

#endif
