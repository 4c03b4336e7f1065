/* Restricted pickle interpreter for torch.save archives. It never executes
 * anything: it builds plain values (None, bools, ints, floats, strings,
 * bytes, tuples, lists, dicts, sets), tensors through
 * torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter
 * with persistent-id storages, and inert placeholders for the few other
 * globals A1111's safe unpickler allows (pytorch_lightning ModelCheckpoint,
 * numpy scalar/dtype/ndarray, _codecs.encode, torch.nn ParameterDict,
 * torch dtypes). Any other global (os.system, builtins.eval, ...) stops the
 * parse with a message naming it. */
#ifndef SD_PICKLE_H
#define SD_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

/* Returns the bytes of storage `key` (the archive's data/<key>): *data
 * must stay valid as long as the table `out` given to sd_pickle_tensors
 * (adopt owned memory into it). */
typedef sdvk_status (*sd_pk_storage_fn)(void *ud, const char *key, const uint8_t **data,
                                        uint64_t *nbytes);

/* Runs the pickle pkl[0, n) and adds every tensor it holds to `out`
 * (unsealed), named by its path of dict keys joined with '.'
 * ("string_to_param.*"); list and tuple items are named by index. When the
 * top level is a dict with a "state_dict" dict, only that dict is read
 * (A1111/Lightning checkpoints). Tensors of dtypes other than F32/F16/BF16
 * are added with supported = 0. Non-contiguous tensors are copied into
 * memory owned by `out`, at most copy_budget bytes in all. */
sdvk_status sd_pickle_tensors(const uint8_t *pkl, size_t n, const char *label, sd_pk_storage_fn fn,
                              void *ud, uint64_t copy_budget, sd_safetensors *out);

#endif
