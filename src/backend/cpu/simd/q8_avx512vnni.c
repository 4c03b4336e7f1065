/* 8-bit weight GEMM micro-kernel with vpdpbusd ymm, EVEX (AVX512-VNNI +
 * AVX512-VL: Ice Lake, Sapphire Rapids, Zen 4). -mavx512f -mavx512vl
 * -mavx512vnni -mavx2 -mfma -mf16c. */
#define Q8_UKR sd_q8_ukr_avx512vnni
#define Q8_DOT(acc, ua, sb) acc = _mm256_dpbusd_epi32(acc, ua, sb)
#include "q8dot_ymm.inc"
