/* Opening a model with an optional separate VAE (placeholder until the
 * loaders land): recognises a PyTorch .ckpt before the safetensors parser
 * misreads its zip header as a header length. */
#include <stdio.h>
#include <string.h>

#include "../core/status.h"
#include "model.h"

sdvk_status sd_model_open_ex(const char *path, const char *vae_path, sd_model **out) {
    if (vae_path)
        return sd_err(SDVK_ERR_UNSUPPORTED, "a separate VAE file is not supported yet");
    FILE *f = fopen(path, "rb");
    unsigned char head[4] = {0};
    if (f) {
        size_t n = fread(head, 1, 4, f);
        fclose(f);
        if (n == 4 && !memcmp(head, "PK\003\004", 4))
            return sd_err(SDVK_ERR_FORMAT, "%s is a PyTorch .ckpt (a zip archive); sdvk reads "
                          ".safetensors: convert it, e.g. with safetensors' convert script", path);
    }
    return sd_model_open(path, out);
}
