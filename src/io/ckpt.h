/* PyTorch checkpoints (.ckpt, .pt, .bin) written by torch.save since
 * PyTorch 1.6: a zip archive holding <name>/data.pkl (the pickled object)
 * and <name>/data/<key> (one entry per storage, stored uncompressed and
 * 64-byte aligned). Read without running any Python: the zip through
 * zip.h, the pickle through the restricted interpreter of pickle.h. Tensor
 * data stays in the file's mapping; only deflated entries and
 * non-contiguous views are copied. */
#ifndef SD_CKPT_H
#define SD_CKPT_H

#include <stddef.h>

#include "safetensors.h"

/* Opens `path` as a tensor table (sealed; names as in pickle.h: the
 * "state_dict" wrapper removed, nested keys joined with '.'). A pre-1.6
 * (non-zip) torch.save file, a pickle that imports anything but the
 * allowed globals, or any size or offset outside the file is refused with
 * a message naming the file. */
sdvk_status sd_ckpt_open(const char *path, sd_safetensors **out);
/* The same on a caller's buffer, which must outlive the table. */
sdvk_status sd_ckpt_open_mem(const void *data, size_t size, const char *label,
                             sd_safetensors **out);
/* 1 if the bytes start like a torch.save file (zip, or a legacy pickle). */
int sd_ckpt_magic(const void *p, size_t n);

#endif
