/* Built when the Vulkan backend is not compiled in (SDVK_VULKAN=OFF). */
#include "backend.h"
#include "../core/status.h"

sdvk_status sd_backend_vulkan_create(const sd_vulkan_opts *o, sd_backend **out) {
    (void)o;
    *out = NULL;
    return sd_err(SDVK_ERR_UNSUPPORTED, "this sdvk was built without the Vulkan backend");
}

sdvk_status sd_vulkan_list_devices(FILE *f) {
    (void)f;
    return sd_err(SDVK_ERR_UNSUPPORTED, "this sdvk was built without the Vulkan backend");
}

int sd_vulkan_hw_devices(char *name, size_t n) {
    if (name && n)
        name[0] = 0;
    return -1;
}
