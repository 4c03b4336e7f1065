/* Deterministic Gaussian noise from a 64-bit seed (xoshiro256** with
 * Box-Muller), identical on every platform and backend. */
#ifndef SD_RNG_H
#define SD_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sd_rng {
    uint64_t s[4];
} sd_rng;

void sd_rng_seed(sd_rng *r, uint64_t seed);
uint64_t sd_rng_u64(sd_rng *r);
/* n standard normal floats. */
void sd_rng_normal(sd_rng *r, float *out, size_t n);

#endif
