# SIMD CPU kernels: one file per ISA with its own flags, chosen at run time
# by dispatch.c (baseline flags), so one x86-64 binary runs everywhere.
set(SDVK_SIMD_DIR ${CMAKE_CURRENT_LIST_DIR})
set(SDVK_SIMD_SOURCES ${SDVK_SIMD_DIR}/dispatch.c ${SDVK_SIMD_DIR}/gemm_scalar.c)
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" SDVK_SIMD_ARCH)
if(SDVK_SIMD_ARCH MATCHES "^(x86_64|amd64|i[3-6]86|x86)$")
  list(APPEND SDVK_SIMD_SOURCES ${SDVK_SIMD_DIR}/gemm_avx2.c ${SDVK_SIMD_DIR}/gemm_avx512.c
       ${SDVK_SIMD_DIR}/q8_avx2.c ${SDVK_SIMD_DIR}/q8_avx512vnni.c)
  # 8-bit weight micro-kernels (q8dot.h): vpmaddubsw, vpdpbusd EVEX, vpdpbusd VEX
  set_source_files_properties(${SDVK_SIMD_DIR}/q8_avx2.c PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${SDVK_SIMD_DIR}/q8_avx512vnni.c PROPERTIES
    COMPILE_OPTIONS "-mavx512f;-mavx512vl;-mavx512vnni;-mavx2;-mfma;-mf16c")
  include(CheckCCompilerFlag)
  check_c_compiler_flag(-mavxvnni SDVK_CC_AVXVNNI)
  if(SDVK_CC_AVXVNNI)
    list(APPEND SDVK_SIMD_SOURCES ${SDVK_SIMD_DIR}/q8_avxvnni.c)
    set_source_files_properties(${SDVK_SIMD_DIR}/q8_avxvnni.c PROPERTIES
      COMPILE_OPTIONS "-mavxvnni;-mavx2;-mfma;-mf16c")
    target_compile_definitions(sdvk PRIVATE SDVK_HAVE_AVXVNNI=1)
  endif()
  set_source_files_properties(${SDVK_SIMD_DIR}/gemm_avx2.c PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-fno-trapping-math")
  set_source_files_properties(${SDVK_SIMD_DIR}/gemm_avx512.c PROPERTIES
    COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx2;-mfma;-mf16c;-fno-trapping-math")
  # AVX-512 BF16 (VDPBF16PS) for --precision bf16, where the compiler has it.
  include(CheckCCompilerFlag)
  check_c_compiler_flag(-mavx512bf16 SDVK_CC_AVX512BF16)
  if(SDVK_CC_AVX512BF16)
    list(APPEND SDVK_SIMD_SOURCES ${SDVK_SIMD_DIR}/gemm_avx512bf16.c)
    set_source_files_properties(${SDVK_SIMD_DIR}/gemm_avx512bf16.c PROPERTIES
      COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512bf16;-mavx2;-mfma;-mf16c;-fno-trapping-math")
    target_compile_definitions(sdvk PUBLIC SDVK_HAVE_AVX512BF16=1)
  endif()
elseif(SDVK_SIMD_ARCH MATCHES "^(aarch64|arm64)$")
  list(APPEND SDVK_SIMD_SOURCES ${SDVK_SIMD_DIR}/gemm_neon.c ${SDVK_SIMD_DIR}/q8_neondot.c)
  set_source_files_properties(${SDVK_SIMD_DIR}/gemm_neon.c PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")
  # sdot micro-kernel; called only where HWCAP has ASIMDDP (dispatch.c)
  set_source_files_properties(${SDVK_SIMD_DIR}/q8_neondot.c PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod")
endif()
# -fno-trapping-math (we never read FP exception flags) lets the compiler
# if-convert the clamps in simd_expf, so softmax/SiLU/GELU loops vectorise
# without AVX-512 masking too.
set_source_files_properties(${SDVK_SIMD_DIR}/gemm_scalar.c PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")
# Every kernel file includes the shared driver.
set_source_files_properties(${SDVK_SIMD_SOURCES} PROPERTIES
  OBJECT_DEPENDS "${SDVK_SIMD_DIR}/simd_kernels.inc;${SDVK_SIMD_DIR}/simd.h;${SDVK_SIMD_DIR}/q8dot.h;${SDVK_SIMD_DIR}/q8dot_ymm.inc")
target_sources(sdvk PRIVATE ${SDVK_SIMD_SOURCES})
# simd_none.c has a weak sd_cpu_simd_select; in a static archive the linker
# would stop at that member, so make it pull dispatch.o (strong) as well.
target_link_options(sdvk INTERFACE "LINKER:--undefined=sd_simd_pack_weights")
