/* Vulkan runtime: loader (volk), instance, validation messenger, device
 * choice and listing, buffers, pipelines and the on-disk pipeline cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/status.h"
#include "vk_internal.h"

typedef struct sd_vk_spirv {
    const char *name;
    const uint32_t *words;
    size_t n;
} sd_vk_spirv;
extern const sd_vk_spirv sd_vk_spirv_table[]; /* generated: build/shaders/sdvk_spirv.c */

static int g_validation_errors; /* updated atomically from driver threads */


int sd_vk_validation_errors(void) { return __atomic_load_n(&g_validation_errors, __ATOMIC_SEQ_CST); }

static VKAPI_ATTR VkBool32 VKAPI_CALL on_debug(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                               VkDebugUtilsMessageTypeFlagsEXT type,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data,
                                               void *user) {
    (void)type;
    (void)user;
    if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        __atomic_add_fetch(&g_validation_errors, 1, __ATOMIC_SEQ_CST);
        sd_logl(SDVK_LOG_ERROR, "vulkan validation error: %s", data->pMessage);
    } else if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        sd_logl(SDVK_LOG_WARN, "vulkan validation warning: %s", data->pMessage);
    }
    return VK_FALSE;
}

static const char *vk_result_str(VkResult r) {
    switch (r) {
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
    case VK_ERROR_INITIALIZATION_FAILED: return "initialization failed";
    case VK_ERROR_DEVICE_LOST: return "device lost";
    case VK_ERROR_LAYER_NOT_PRESENT: return "layer not present";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "extension not present";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "feature not present";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "incompatible driver";
    case VK_ERROR_TOO_MANY_OBJECTS: return "too many objects";
    case VK_TIMEOUT: return "timeout";
    default: return "error";
    }
}

sdvk_status sd_vk_check(VkResult r, const char *what) {
    if (r == VK_SUCCESS)
        return SDVK_OK;
    sdvk_status s = (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
                        ? SDVK_ERR_OOM
                        : SDVK_ERR_BACKEND;
    return sd_err(s, "vulkan: %s failed: %s (VkResult %d)", what, vk_result_str(r), (int)r);
}

int sd_vk_spirv_embedded(const char *name, int f16) {
    char full[64];
    snprintf(full, sizeof full, "%s.%s", name, f16 ? "f16" : "f32");
    for (const sd_vk_spirv *e = sd_vk_spirv_table; e->name; e++)
        if (!strcmp(e->name, full))
            return 1;
    return 0;
}

/* ---- loader and instance ------------------------------------------------ */

static sdvk_status load_vulkan(void) {
    static int loaded = 0; /* volkInitialize only resolves global entry points */
    if (loaded)
        return SDVK_OK;
    if (volkInitialize() != VK_SUCCESS)
        return sd_err(SDVK_ERR_UNSUPPORTED,
                      "vulkan: no Vulkan loader (libvulkan.so.1) found; install a Vulkan driver "
                      "or use the CPU backend");
    loaded = 1;
    return SDVK_OK;
}

static int has_layer(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n)
        return 0;
    VkLayerProperties *p = calloc(n, sizeof *p);
    int found = 0;
    if (p && vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(p[i].layerName, name))
                found = 1;
    free(p);
    return found;
}

static int has_instance_ext(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || !n)
        return 0;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    int found = 0;
    if (p && vkEnumerateInstanceExtensionProperties(NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(p[i].extensionName, name))
                found = 1;
    free(p);
    return found;
}

static sdvk_status create_instance(sd_vk_dev *d, int validation) {
    /* validation: 0 off, 1 required, 2 wanted (skipped with a note when the
     * layer is missing) */
    SD_TRY(load_vulkan());
    const char *layers[1], *exts[1];
    uint32_t nl = 0, ne = 0;
    if (validation == 2 && !has_layer("VK_LAYER_KHRONOS_validation")) {
        sd_log("vulkan: SDVK_VK_VALIDATION is set but VK_LAYER_KHRONOS_validation is not "
               "installed; running without validation");
        validation = 0;
    }
    if (validation) {
        if (!has_layer("VK_LAYER_KHRONOS_validation"))
            return sd_err(SDVK_ERR_UNSUPPORTED,
                          "vulkan: validation requested but VK_LAYER_KHRONOS_validation is not "
                          "installed (package vulkan-validationlayers)");
        layers[nl++] = "VK_LAYER_KHRONOS_validation";
        if (has_instance_ext(VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
            exts[ne++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    }
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "sdvk",
                             .pEngineName = "sdvk",
                             .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app,
                               .enabledLayerCount = nl,
                               .ppEnabledLayerNames = layers,
                               .enabledExtensionCount = ne,
                               .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateInstance(&ci, NULL, &d->inst);
    if (r != VK_SUCCESS) {
        d->inst = VK_NULL_HANDLE;
        return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: cannot create an instance (%s): no usable driver",
                      vk_result_str(r));
    }
    volkLoadInstance(d->inst);
    if (ne) {
        VkDebugUtilsMessengerCreateInfoEXT mi = {
            .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
            .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
            .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
            .pfnUserCallback = on_debug};
        SD_TRY(sd_vk_check(vkCreateDebugUtilsMessengerEXT(d->inst, &mi, NULL, &d->messenger),
                           "vkCreateDebugUtilsMessengerEXT"));
    }
    return SDVK_OK;
}

/* ---- physical devices ---------------------------------------------------- */

typedef struct dev_info {
    VkPhysicalDevice pd;
    VkPhysicalDeviceProperties props;
    char driver[160];
    uint64_t local_mem;
    int storage16, fp16, int8, coopmat, compute_q;
    int usable;
    /* matmul kernel choice: capabilities (caps.f16 is set by the caller) */
    sd_vk_caps caps;
    int subgroup_control; /* VK_EXT_subgroup_size_control with computeFullSubgroups */
} dev_info;

static int has_dev_ext(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n)
        return 0;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    int found = 0;
    if (p && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(p[i].extensionName, name))
                found = 1;
    free(p);
    return found;
}

/* Which matmul variants this build embeds for a precision (bit per variant). */
static uint32_t built_variants(int f16) {
    uint32_t m = 0;
    char name[48];
    for (int v = 0; v < SD_VK_K_COUNT; v++) {
        sd_vk_variant_spv(v, name, sizeof name);
        if (sd_vk_spirv_embedded(name, f16))
            m |= 1u << v;
    }
    return m;
}

/* Limits, subgroup size, and the cooperative matrix shapes of both
 * extensions: the input of the matmul kernel choice (vk_kernels.c). */
static void query_caps(VkInstance inst, VkPhysicalDevice pd, dev_info *di) {
    sd_vk_caps *c = &di->caps;
    /* the instance asks for Vulkan 1.1, so shaderFloat16 is enabled through
     * VK_KHR_shader_float16_int8 */
    c->shader_f16 = di->fp16 && has_dev_ext(pd, "VK_KHR_shader_float16_int8");
    c->cpu = di->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    c->shared_bytes = di->props.limits.maxComputeSharedMemorySize;
    c->max_invocations = di->props.limits.maxComputeWorkGroupInvocations;
    VkPhysicalDeviceSubgroupProperties sp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sp};
    vkGetPhysicalDeviceProperties2(pd, &p2);
    c->subgroup = sp.subgroupSize;
    int has_ssc = has_dev_ext(pd, "VK_EXT_subgroup_size_control");
    int has_nv = has_dev_ext(pd, "VK_NV_cooperative_matrix");
    int has_khr = has_dev_ext(pd, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT ssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV fnv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR fkhr = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    void **next = &f2.pNext;
    if (has_ssc) {
        *next = &ssc;
        next = &ssc.pNext;
    }
    if (has_nv) {
        *next = &fnv;
        next = &fnv.pNext;
    }
    if (has_khr) {
        *next = &fkhr;
        next = &fkhr.pNext;
    }
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    /* full subgroups of the reported size: what the cooperative-matrix
     * kernel's subgroup tiling assumes */
    if (has_ssc && ssc.subgroupSizeControl && ssc.computeFullSubgroups) {
        VkPhysicalDeviceSubgroupSizeControlPropertiesEXT sz = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
        p2.pNext = &sz;
        vkGetPhysicalDeviceProperties2(pd, &p2);
        di->subgroup_control = (sz.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                               c->subgroup >= sz.minSubgroupSize && c->subgroup <= sz.maxSubgroupSize;
    }
    if (has_nv && fnv.cooperativeMatrix && vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) {
        uint32_t n = 0;
        if (vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, NULL) == VK_SUCCESS && n) {
            VkCooperativeMatrixPropertiesNV *pr = calloc(n, sizeof *pr);
            for (uint32_t i = 0; pr && i < n; i++)
                pr[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
            if (pr && vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, pr) >= 0) {
                for (uint32_t i = 0; i < n && c->n_nv < SD_VK_MAX_CM_SHAPES; i++)
                    c->nv[c->n_nv++] = (sd_vk_cm_shape){pr[i].MSize, pr[i].NSize, pr[i].KSize,
                                                         (uint32_t)pr[i].AType, (uint32_t)pr[i].BType,
                                                         (uint32_t)pr[i].CType, (uint32_t)pr[i].DType,
                                                         (uint32_t)pr[i].scope};
                c->cm_nv = 1;
            }
            free(pr);
        }
    }
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get_khr =
        has_khr && fkhr.cooperativeMatrix
            ? (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)vkGetInstanceProcAddr(
                  inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
            : NULL;
    if (get_khr) {
        uint32_t n = 0;
        if (get_khr(pd, &n, NULL) == VK_SUCCESS && n) {
            VkCooperativeMatrixPropertiesKHR *pr = calloc(n, sizeof *pr);
            for (uint32_t i = 0; pr && i < n; i++)
                pr[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
            if (pr && get_khr(pd, &n, pr) >= 0) {
                for (uint32_t i = 0; i < n && c->n_khr < SD_VK_MAX_CM_SHAPES; i++)
                    c->khr[c->n_khr++] = (sd_vk_cm_shape){pr[i].MSize, pr[i].NSize, pr[i].KSize,
                                                           pr[i].AType, pr[i].BType, pr[i].CType,
                                                           pr[i].ResultType, pr[i].scope};
                c->cm_khr = 1;
            }
            free(pr);
        }
    }
}

static void query_device(VkInstance inst, VkPhysicalDevice pd, dev_info *di) {
    memset(di, 0, sizeof *di);
    di->pd = pd;
    vkGetPhysicalDeviceProperties(pd, &di->props);
    di->compute_q = -1;
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof *qf);
    if (qf) {
        vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
        for (uint32_t i = 0; i < nq; i++)
            if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && di->compute_q < 0)
                di->compute_q = (int)i;
        free(qf);
    }
    di->usable = di->props.apiVersion >= VK_API_VERSION_1_1 && di->compute_q >= 0;
    if (di->props.apiVersion < VK_API_VERSION_1_1)
        return; /* the *2 queries below need 1.1 */

    int v12 = di->props.apiVersion >= VK_API_VERSION_1_2;
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    if (v12 || has_dev_ext(pd, "VK_KHR_driver_properties"))
        p2.pNext = &drv;
    vkGetPhysicalDeviceProperties2(pd, &p2);
    if (p2.pNext)
        snprintf(di->driver, sizeof di->driver, "%.60s %.90s", drv.driverName, drv.driverInfo);
    else
        snprintf(di->driver, sizeof di->driver, "driver version 0x%x", di->props.driverVersion);

    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16i8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16};
    if (v12 || has_dev_ext(pd, "VK_KHR_shader_float16_int8"))
        s16.pNext = &f16i8;
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    di->storage16 = s16.storageBuffer16BitAccess;
    di->fp16 = f16i8.shaderFloat16;
    di->int8 = f16i8.shaderInt8;
    di->coopmat = has_dev_ext(pd, "VK_KHR_cooperative_matrix") ? 2
                  : has_dev_ext(pd, "VK_NV_cooperative_matrix") ? 1
                                                                 : 0;
    query_caps(inst, pd, di);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            di->local_mem += mp.memoryHeaps[i].size;
}

static int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

/* All physical devices, queried; *n = count. Caller frees. */
static sdvk_status enum_devices(VkInstance inst, dev_info **out, uint32_t *n) {
    *out = NULL;
    *n = 0;
    uint32_t cnt = 0;
    VkResult r = vkEnumeratePhysicalDevices(inst, &cnt, NULL);
    if (r != VK_SUCCESS || cnt == 0)
        return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: no Vulkan device found (no driver installed?)");
    VkPhysicalDevice *pds = calloc(cnt, sizeof *pds);
    dev_info *di = calloc(cnt, sizeof *di);
    if (!pds || !di) {
        free(pds), free(di);
        return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
    }
    r = vkEnumeratePhysicalDevices(inst, &cnt, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(pds), free(di);
        return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: cannot enumerate devices (%s)", vk_result_str(r));
    }
    for (uint32_t i = 0; i < cnt; i++) query_device(inst, pds[i], &di[i]);
    free(pds);
    *out = di;
    *n = cnt;
    return SDVK_OK;
}

sdvk_status sd_vulkan_list_devices(FILE *f) {
    sd_vk_dev d;
    memset(&d, 0, sizeof d);
    SD_TRY(create_instance(&d, 0));
    dev_info *di;
    uint32_t n;
    sdvk_status s = enum_devices(d.inst, &di, &n);
    if (s == SDVK_OK) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t v = di[i].props.apiVersion;
            fprintf(f,
                    "%u: %s (%s)\n   driver: %s\n   Vulkan %u.%u.%u, %.1f GiB device-local, "
                    "fp16 storage %s, fp16 math %s, int8 %s, cooperative matrix %s%s\n",
                    i, di[i].props.deviceName, type_name(di[i].props.deviceType), di[i].driver,
                    VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v),
                    (double)di[i].local_mem / (1024.0 * 1024.0 * 1024.0),
                    di[i].storage16 ? "yes" : "no", di[i].fp16 ? "yes" : "no",
                    di[i].int8 ? "yes" : "no",
                    di[i].coopmat == 2 ? "yes (KHR)" : di[i].coopmat ? "yes (NV)" : "no",
                    di[i].usable ? "" : "  [unusable: needs Vulkan 1.1 and a compute queue]");
            if (!di[i].usable)
                continue;
            /* the kernel families each op would run, per storage precision */
            for (int f16 = di[i].storage16; f16 >= 0; f16--) {
                sd_vk_caps c = di[i].caps;
                c.f16 = f16;
                c.built = built_variants(f16);
                sd_vk_mm_plan pl;
                sd_vk_plan_kernels(&c, getenv("SDVK_VK_KERNELS"), getenv("SDVK_VK_ATTN"), &pl);
                char desc[400];
                sd_vk_plan_describe(&pl, desc, sizeof desc);
                fprintf(f, "   kernels (%s): matmul/conv2d %s; group/layer norm: simt\n",
                        f16 ? "f16" : "f32", desc);
            }
        }
        free(di);
    }
    vkDestroyInstance(d.inst, NULL);
    return s;
}

int sd_vulkan_hw_devices(char *name, size_t n) {
    if (name && n)
        name[0] = 0;
    sd_vk_dev d;
    memset(&d, 0, sizeof d);
    if (create_instance(&d, 0) != SDVK_OK)
        return -1;
    dev_info *di;
    uint32_t cnt;
    int hw = -1;
    if (enum_devices(d.inst, &di, &cnt) == SDVK_OK) {
        hw = 0;
        for (uint32_t i = 0; i < cnt; i++) {
            if (di[i].usable && di[i].props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU)
                hw++;
            else if (name && n && !name[0])
                snprintf(name, n, "%s", di[i].props.deviceName);
        }
        free(di);
    }
    vkDestroyInstance(d.inst, NULL);
    return hw;
}

/* ---- device -------------------------------------------------------------- */

static void cache_load(sd_vk_dev *d) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[400];
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/sdvk", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/sdvk", home);
    else
        dir[0] = 0;
    void *data = NULL;
    size_t size = 0;
    if (dir[0]) {
        snprintf(d->cache_path, sizeof d->cache_path, "%s/pipelines-%08x-%08x.bin", dir,
                 d->props.vendorID, d->props.deviceID);
        FILE *f = fopen(d->cache_path, "rb");
        if (f) {
            if (fseek(f, 0, SEEK_END) == 0) {
                long sz = ftell(f);
                if (sz > 0 && sz < (64L << 20) && fseek(f, 0, SEEK_SET) == 0 &&
                    (data = malloc((size_t)sz)) != NULL) {
                    size = fread(data, 1, (size_t)sz, f);
                    /* a header from another driver build is rejected by the
                     * driver itself; check the UUID to avoid even trying */
                    if (size < 32 || memcmp((char *)data + 16, d->props.pipelineCacheUUID,
                                            VK_UUID_SIZE) != 0)
                        size = 0;
                }
            }
            fclose(f);
        }
    }
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = size,
                                    .pInitialData = size ? data : NULL};
    if (vkCreatePipelineCache(d->dev, &ci, NULL, &d->pcache) != VK_SUCCESS)
        d->pcache = VK_NULL_HANDLE; /* best effort: run without a cache */
    free(data);
}

static void cache_save(sd_vk_dev *d) {
    if (!d->pcache || !d->cache_path[0])
        return;
    size_t size = 0;
    if (vkGetPipelineCacheData(d->dev, d->pcache, &size, NULL) != VK_SUCCESS || !size)
        return;
    void *data = malloc(size);
    if (!data)
        return;
    if (vkGetPipelineCacheData(d->dev, d->pcache, &size, data) == VK_SUCCESS) {
        /* mkdir -p of the last two levels (…/.cache/sdvk); failures are ignored */
        char dir[512];
        snprintf(dir, sizeof dir, "%s", d->cache_path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = 0;
            char *p2 = strrchr(dir, '/');
            if (p2) {
                *p2 = 0;
                mkdir(dir, 0700);
                *p2 = '/';
            }
            mkdir(dir, 0700);
        }
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", d->cache_path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        if (f) {
            int ok = fwrite(data, 1, size, f) == size;
            ok = (fclose(f) == 0) && ok;
            if (!ok || rename(tmp, d->cache_path) != 0)
                remove(tmp);
        }
    }
    free(data);
}

/* Cooperative-matrix pipelines are built once at init: a driver that
 * advertises a shape but cannot build the pipeline sends the device back
 * to the SIMT kernels (said in --verbose) instead of failing a prepare. */
static void probe_coop(sd_vk_dev *d) {
    if (!d->plan.coop)
        return;
    int vs[2] = {d->plan.big, d->plan.small};
    for (int i = 0; i < 2; i++) {
        if (sd_vk_variants[vs[i]].needs == SD_VK_NEED_NONE)
            continue;
        char name[48];
        sd_vk_variant_spv(vs[i], name, sizeof name);
        uint32_t spec[9] = {0, 0, 0, 0, 0, d->plan.fm, d->plan.fn, d->plan.fk,
                            vs[i] == d->plan.big ? d->plan.threads_big : d->plan.threads_small};
        VkPipeline p;
        if (sd_vk_pipeline_get2(d, name, spec, 9, d->subgroup_control ? SD_VK_PIPE_FULL_SUBGROUPS : 0,
                                &p) != SDVK_OK) {
            char why[256];
            snprintf(why, sizeof why, "the driver could not build %.40s: %.120s", name, sdvk_last_error());
            sd_vk_plan_matmul(&d->caps, "simt", &d->plan);
            snprintf(d->plan.why, sizeof d->plan.why, "%.150s", why);
            sd_log("vulkan: cooperative matrix disabled: %s", why);
            return;
        }
    }
    uint32_t bkv = sd_vk_attn_block(&d->caps, &d->plan, 40);
    if (d->plan.att >= 0 && bkv) {
        char name[48];
        sd_vk_variant_spv(d->plan.att, name, sizeof name);
        uint32_t spec[9] = {40, 0, bkv, 0, 0, d->plan.fm, d->plan.fn, d->plan.fk, d->plan.threads_att};
        VkPipeline p;
        if (sd_vk_pipeline_get2(d, name, spec, 9, d->subgroup_control ? SD_VK_PIPE_FULL_SUBGROUPS : 0,
                                &p) != SDVK_OK) {
            sd_log("vulkan: cooperative-matrix attention disabled: the driver could not build %s: %s", name,
                   sdvk_last_error());
            d->plan.att = -1;
        }
    }
}

sdvk_status sd_vk_dev_init(sd_vk_dev *d, const sd_vulkan_opts *o) {
    memset(d, 0, sizeof *d);
    const char *env_val = getenv("SDVK_VK_VALIDATION");
    /* 1: asked for by the caller (required); 2: by the environment (best effort) */
    d->validation = o->validation ? 1 : (env_val && atoi(env_val) > 0) ? 2 : 0;
    d->verbose = o->verbose;
    SD_TRY(create_instance(d, d->validation));
    dev_info *di;
    uint32_t n;
    SD_TRY(enum_devices(d->inst, &di, &n));
    int pick = -1;
    if (o->device_index >= 0) {
        if ((uint32_t)o->device_index >= n || !di[o->device_index].usable) {
            free(di);
            return sd_err(SDVK_ERR_INVALID_ARG,
                          "vulkan: device index %d: %s (%u device(s); sdvk_list_devices lists them)",
                          o->device_index,
                          (uint32_t)o->device_index >= n ? "no such device" : "not usable", n);
        }
        pick = o->device_index;
    } else {
        for (uint32_t i = 0; i < n; i++)
            if (di[i].usable && (pick < 0 || type_rank(di[i].props.deviceType) <
                                                 type_rank(di[pick].props.deviceType)))
                pick = (int)i;
    }
    if (pick < 0) {
        free(di);
        return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: no device with Vulkan 1.1 and a compute queue");
    }
    dev_info info = di[pick];
    free(di);
    d->pd = info.pd;
    d->props = info.props;
    d->qfam = (uint32_t)info.compute_q;
    d->has_16bit_storage = info.storage16;
    /* SDVK_VK_PRECISION=f32|f16 overrides the option (tests, debugging). */
    int precision = o->precision;
    const char *penv = getenv("SDVK_VK_PRECISION");
    if (penv && !strcmp(penv, "f32"))
        precision = 1;
    else if (penv && !strcmp(penv, "f16"))
        precision = 2;
    if (precision == 2 && !info.storage16)
        return sd_err(SDVK_ERR_UNSUPPORTED, "vulkan: precision f16 needs storageBuffer16BitAccess, "
                                            "which %s lacks", info.props.deviceName);
    if (precision < 0 || precision > 2)
        return sd_err(SDVK_ERR_INVALID_ARG, "vulkan: precision %s is not a Vulkan precision "
                      "(auto, f32 or f16)", precision == 3 ? "bf16" : "?");
    d->f16 = precision == 2 || (precision == 0 && info.storage16);
    /* the matmul / conv2d kernels (SDVK_VK_KERNELS forces a family) */
    d->caps = info.caps;
    d->caps.f16 = d->f16;
    d->caps.built = built_variants(d->f16);
    sd_vk_plan_kernels(&d->caps, getenv("SDVK_VK_KERNELS"), getenv("SDVK_VK_ATTN"), &d->plan);
    d->subgroup_control = d->plan.coop && info.subgroup_control;
    const char *fuse = getenv("SDVK_VK_FUSE");
    d->fuse_geglu = !(fuse && !strcmp(fuse, "0"));
    vkGetPhysicalDeviceMemoryProperties(d->pd, &d->memp);
    d->max_range = d->props.limits.maxStorageBufferRange;
    /* Testing hook: a lower limit exercises the split-binding paths with
     * small tensors (it can never raise the device's limit). */
    const char *lim = getenv("SDVK_VK_MAX_STORAGE_RANGE");
    if (lim && strtoull(lim, NULL, 10) >= 4096 && strtoull(lim, NULL, 10) < d->max_range)
        d->max_range = strtoull(lim, NULL, 10);
    d->align = d->props.limits.minStorageBufferOffsetAlignment;
    if (d->align < 16)
        d->align = 16;
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &m3};
    vkGetPhysicalDeviceProperties2(d->pd, &p2);
    d->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : ((VkDeviceSize)1 << 30);
    /* Testing hook, as above: a smaller activation block exercises the
     * split arena with a tiny model. */
    d->arena_block = d->max_alloc;
    const char *alim = getenv("SDVK_VK_ARENA_BLOCK");
    if (alim && strtoull(alim, NULL, 10) >= 65536 && strtoull(alim, NULL, 10) < d->max_alloc)
        d->arena_block = strtoull(alim, NULL, 10);

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->pd, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq, sizeof *qf);
    if (qf) {
        vkGetPhysicalDeviceQueueFamilyProperties(d->pd, &nq, qf);
        d->has_timestamps = qf[d->qfam].timestampValidBits > 0;
        free(qf);
    }

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = d->qfam,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = d->f16 ? VK_TRUE : VK_FALSE};
    /* Cooperative matrices: the extension, its feature, fp16 arithmetic,
     * and full subgroups of a fixed size where the device can promise them. */
    VkPhysicalDeviceShaderFloat16Int8Features f16i8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = VK_TRUE};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cm_nv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE};
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cm_khr = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR,
        .cooperativeMatrix = VK_TRUE};
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT ssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
        .subgroupSizeControl = VK_TRUE,
        .computeFullSubgroups = VK_TRUE};
    const char *exts[3];
    uint32_t next_ = 0;
    void **chain = &s16.pNext;
    if (d->plan.coop == 1 || d->plan.coop == 2) {
        exts[next_++] = "VK_KHR_shader_float16_int8";
        *chain = &f16i8;
        chain = &f16i8.pNext;
        if (d->plan.coop == 2) {
            exts[next_++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
            *chain = &cm_khr;
            chain = &cm_khr.pNext;
        } else {
            exts[next_++] = "VK_NV_cooperative_matrix";
            *chain = &cm_nv;
            chain = &cm_nv.pNext;
        }
    }
    if (d->subgroup_control) {
        exts[next_++] = "VK_EXT_subgroup_size_control";
        *chain = &ssc;
    }
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = &s16,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi,
                             .enabledExtensionCount = next_,
                             .ppEnabledExtensionNames = exts};
    SD_TRY(sd_vk_check(vkCreateDevice(d->pd, &ci, NULL, &d->dev), "vkCreateDevice"));
    volkLoadDevice(d->dev);
    vkGetDeviceQueue(d->dev, d->qfam, 0, &d->queue);

    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = d->qfam};
    SD_TRY(sd_vk_check(vkCreateCommandPool(d->dev, &pi, NULL, &d->cpool), "vkCreateCommandPool"));
    VkDescriptorSetLayoutBinding b[SD_VK_BINDINGS];
    for (int i = 0; i < SD_VK_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = SD_VK_BINDINGS,
                                          .pBindings = b};
    SD_TRY(sd_vk_check(vkCreateDescriptorSetLayout(d->dev, &li, NULL, &d->dsl),
                       "vkCreateDescriptorSetLayout"));
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = SD_VK_PUSH_MAX};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &d->dsl,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pr};
    SD_TRY(sd_vk_check(vkCreatePipelineLayout(d->dev, &pli, NULL, &d->playout),
                       "vkCreatePipelineLayout"));
    cache_load(d);
    probe_coop(d);
    if (d->verbose) {
        char desc[400];
        sd_vk_plan_describe(&d->plan, desc, sizeof desc);
        sd_log("vulkan: %s (%s), %s storage, maxStorageBufferRange %llu MiB, pipeline cache %s",
               d->props.deviceName, info.driver, d->f16 ? "f16" : "f32",
               (unsigned long long)(d->max_range >> 20), d->pcache ? d->cache_path : "off");
        sd_log("vulkan: kernels: matmul/conv2d %s%s; group/layer norm: simt", desc,
               d->fuse_geglu ? "; GEGLU fused into its matmul" : "");
    }
    return SDVK_OK;
}

void sd_vk_dev_destroy(sd_vk_dev *d) {
    if (d->dev) {
        vkDeviceWaitIdle(d->dev);
        for (int i = 0; i < d->npipes; i++) vkDestroyPipeline(d->dev, d->pipes[i].p, NULL);
        if (d->pcache) {
            cache_save(d);
            vkDestroyPipelineCache(d->dev, d->pcache, NULL);
        }
        if (d->playout)
            vkDestroyPipelineLayout(d->dev, d->playout, NULL);
        if (d->dsl)
            vkDestroyDescriptorSetLayout(d->dev, d->dsl, NULL);
        if (d->cpool)
            vkDestroyCommandPool(d->dev, d->cpool, NULL);
        vkDestroyDevice(d->dev, NULL);
    }
    free(d->pipes);
    if (d->messenger)
        vkDestroyDebugUtilsMessengerEXT(d->inst, d->messenger, NULL);
    if (d->inst)
        vkDestroyInstance(d->inst, NULL);
    memset(d, 0, sizeof *d);
}

/* ---- buffers --------------------------------------------------------------- */

static int find_mem_type(const sd_vk_dev *d, uint32_t bits, VkMemoryPropertyFlags want,
                         VkMemoryPropertyFlags avoid) {
    for (uint32_t i = 0; i < d->memp.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = d->memp.memoryTypes[i].propertyFlags;
        if ((bits & (1u << i)) && (f & want) == want && !(f & avoid))
            return (int)i;
    }
    return -1;
}

sdvk_status sd_vk_buf_create(sd_vk_dev *d, VkDeviceSize size, int host_visible, sd_vk_buf *b) {
    memset(b, 0, sizeof *b);
    if (size == 0)
        size = 16;
    if (size > d->max_alloc)
        return sd_err(SDVK_ERR_OOM,
                      "vulkan: buffer of %llu MiB exceeds the device's maxMemoryAllocationSize "
                      "(%llu MiB)",
                      (unsigned long long)(size >> 20), (unsigned long long)(d->max_alloc >> 20));
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT |
                                      VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    SD_TRY(sd_vk_check(vkCreateBuffer(d->dev, &bi, NULL, &b->buf), "vkCreateBuffer"));
    b->size = size;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    int t;
    if (host_visible) {
        t = find_mem_type(d, req.memoryTypeBits,
                          VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                              VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
        if (t < 0)
            t = find_mem_type(d, req.memoryTypeBits,
                              VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                              0);
    } else {
        t = find_mem_type(d, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        if (t < 0)
            t = find_mem_type(d, req.memoryTypeBits, 0, 0);
    }
    if (t < 0) {
        sd_vk_buf_destroy(d, b);
        return sd_err(SDVK_ERR_BACKEND, "vulkan: no suitable memory type");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)t};
    sdvk_status s = sd_vk_check(vkAllocateMemory(d->dev, &ai, NULL, &b->mem), "vkAllocateMemory");
    if (s == SDVK_OK)
        s = sd_vk_check(vkBindBufferMemory(d->dev, b->buf, b->mem, 0), "vkBindBufferMemory");
    if (s == SDVK_OK && host_visible)
        s = sd_vk_check(vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map), "vkMapMemory");
    if (s != SDVK_OK) {
        sd_vk_buf_destroy(d, b);
        return s;
    }
    return SDVK_OK;
}

void sd_vk_buf_destroy(sd_vk_dev *d, sd_vk_buf *b) {
    if (b->buf)
        vkDestroyBuffer(d->dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(d->dev, b->mem, NULL); /* also unmaps */
    memset(b, 0, sizeof *b);
}

/* ---- pipelines --------------------------------------------------------------- */

sdvk_status sd_vk_pipeline_get(sd_vk_dev *d, const char *shader, const uint32_t *spec, int nspec,
                               VkPipeline *out) {
    return sd_vk_pipeline_get2(d, shader, spec, nspec, 0, out);
}

sdvk_status sd_vk_pipeline_get2(sd_vk_dev *d, const char *shader, const uint32_t *spec, int nspec,
                                int flags, VkPipeline *out) {
    if (nspec > SD_VK_MAX_SPEC)
        return sd_err(SDVK_ERR_BACKEND, "vulkan: %s: %d specialisation constants", shader, nspec);
    for (int i = 0; i < d->npipes; i++) {
        sd_vk_pipeline *p = &d->pipes[i];
        if (p->nspec == nspec && p->flags == flags && !strcmp(p->shader, shader) &&
            !memcmp(p->spec, spec, (size_t)nspec * sizeof *spec)) {
            *out = p->p;
            return SDVK_OK;
        }
    }
    char name[64];
    snprintf(name, sizeof name, "%s.%s", shader, d->f16 ? "f16" : "f32");
    const sd_vk_spirv *sp = NULL;
    for (const sd_vk_spirv *e = sd_vk_spirv_table; e->name; e++)
        if (!strcmp(e->name, name))
            sp = e;
    if (!sp)
        return sd_err(SDVK_ERR_BACKEND, "vulkan: shader %s is not embedded in this build", name);
    if (d->npipes == d->cap_pipes) {
        int cap = d->cap_pipes ? d->cap_pipes * 2 : 32;
        sd_vk_pipeline *np = realloc(d->pipes, (size_t)cap * sizeof *np);
        if (!np)
            return sd_err(SDVK_ERR_OOM, "vulkan: out of memory");
        d->pipes = np;
        d->cap_pipes = cap;
    }
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = sp->n * 4,
                                   .pCode = sp->words};
    VkShaderModule mod;
    SD_TRY(sd_vk_check(vkCreateShaderModule(d->dev, &mi, NULL, &mod), "vkCreateShaderModule"));
    VkSpecializationMapEntry me[SD_VK_MAX_SPEC];
    for (int i = 0; i < nspec; i++)
        me[i] = (VkSpecializationMapEntry){.constantID = (uint32_t)i,
                                           .offset = (uint32_t)(4 * i),
                                           .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = (uint32_t)nspec,
                               .pMapEntries = me,
                               .dataSize = (size_t)nspec * 4,
                               .pData = spec};
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT rs = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT,
        .requiredSubgroupSize = d->caps.subgroup};
    int full = (flags & SD_VK_PIPE_FULL_SUBGROUPS) && d->subgroup_control;
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .pNext = full ? &rs : NULL,
                  .flags = full ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT_EXT : 0,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = nspec ? &si : NULL},
        .layout = d->playout};
    VkPipeline p;
    VkResult r = vkCreateComputePipelines(d->dev, d->pcache, 1, &ci, NULL, &p);
    vkDestroyShaderModule(d->dev, mod, NULL);
    SD_TRY(sd_vk_check(r, "vkCreateComputePipelines"));
    sd_vk_pipeline *e = &d->pipes[d->npipes++];
    memset(e, 0, sizeof *e);
    snprintf(e->shader, sizeof e->shader, "%s", shader);
    memcpy(e->spec, spec, (size_t)nspec * sizeof *spec);
    e->nspec = nspec;
    e->flags = flags;
    e->p = p;
    *out = p;
    return SDVK_OK;
}
