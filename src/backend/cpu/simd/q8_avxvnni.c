/* 8-bit weight GEMM micro-kernel with vpdpbusd ymm, VEX (AVX-VNNI: Alder
 * Lake and later, Zen 5). -mavx2 -mfma -mf16c -mavxvnni. */
#define Q8_UKR sd_q8_ukr_avxvnni
#define Q8_DOT(acc, ua, sb) acc = _mm256_dpbusd_avx_epi32(acc, ua, sb)
#include "q8dot_ymm.inc"
