/* Fuzz target: the .npy reader (`sdvk stage` inputs; goldens). The input is
 * a whole .npy file, read from memory (sd_npy_load_mem: the same parser as
 * sd_npy_load). On success: the shape and dtype are in range and the data
 * holds exactly the elements the shape promises (ASan checks the reads). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/npy.h"
#include "core/status.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_npy a;
    if (sd_npy_load_mem(data, size, "fuzz.npy", &a) != SDVK_OK) {
        FUZZ_CHECK_MSG();
        FUZZ_CHECK(a.data == NULL && a.ndim == 0);
        return 0;
    }
    FUZZ_CHECK(a.dtype == SD_F32 || a.dtype == SD_I32);
    FUZZ_CHECK(a.ndim >= 0 && a.ndim <= SD_NPY_MAX_DIMS);
    int64_t nz = 1;
    for (int i = 0; i < a.ndim; i++) {
        FUZZ_CHECK(a.ne[i] >= 0 && a.ne[i] <= SD_NPY_MAX_ELEMS);
        if (a.ne[i])
            nz *= a.ne[i];
        FUZZ_CHECK(nz <= SD_NPY_MAX_ELEMS);
    }
    int64_t n = sd_npy_nelem(&a);
    FUZZ_CHECK(n >= 0 && n <= SD_NPY_MAX_ELEMS && a.data != NULL);
    /* Every element came from the input: at least one byte each. */
    FUZZ_CHECK((uint64_t)n <= size);
    uint32_t acc = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, (const char *)a.data + 4 * i, 4);
        acc ^= v;
    }
    volatile uint32_t sink = acc;
    (void)sink;
    sd_npy_free(&a);
    FUZZ_CHECK(a.data == NULL);
    return 0;
}
