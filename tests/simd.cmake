# SIMD CPU kernels vs the reference kernels, every ISA this CPU has forced
# in turn (label simd; also ops, for the cross-compiled NEON run).
add_executable(test_simd ${CMAKE_CURRENT_LIST_DIR}/test_simd.c)
target_include_directories(test_simd PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_simd PRIVATE sdvk)
add_test(NAME simd_kernels COMMAND test_simd)
set_tests_properties(simd_kernels PROPERTIES LABELS "simd;ops" TIMEOUT 300)

# Run-time dispatch on other x86 CPUs, emulated: the same binary must pick
# the portable kernels without AVX2 (Nehalem) and AVX2 without AVX-512
# (Haswell), and pass there.
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" SDVK_TEST_ARCH)
find_program(SDVK_QEMU_X86_64 qemu-x86_64)
if(SDVK_QEMU_X86_64 AND SDVK_TEST_ARCH MATCHES "^(x86_64|amd64)$" AND NOT CMAKE_CROSSCOMPILING
   AND NOT SDVK_SANITIZE)
  add_test(NAME simd_dispatch_no_avx2
    COMMAND ${SDVK_QEMU_X86_64} -cpu Nehalem $<TARGET_FILE:test_simd> --expect-auto scalar)
  add_test(NAME simd_dispatch_avx2_only
    COMMAND ${SDVK_QEMU_X86_64} -cpu Haswell $<TARGET_FILE:test_simd> --expect-auto avx2)
  set_tests_properties(simd_dispatch_no_avx2 simd_dispatch_avx2_only PROPERTIES LABELS "simd" TIMEOUT 600)
endif()

# The same on aarch64 (the NEON job): a Cortex-A57 has no dot product, so
# auto must pick the plain NEON table (8-bit weights widened to f32), never
# the sdot one, and its kernels must run there.
if(CMAKE_CROSSCOMPILING AND SDVK_TEST_ARCH MATCHES "^(aarch64|arm64)$" AND SDVK_QEMU_AARCH64)
  add_test(NAME simd_dispatch_no_dotprod
    COMMAND ${SDVK_QEMU_AARCH64} -cpu cortex-a57 -L ${SDVK_AARCH64_SYSROOT} $<TARGET_FILE:test_simd>
            --expect-auto neon --quick)
  set_tests_properties(simd_dispatch_no_dotprod PROPERTIES LABELS "simd" TIMEOUT 600)
endif()

# --precision bf16 (AVX-512 BF16 GEMM): the tiny model's stages vs the
# PyTorch goldens at 50x the f32 tolerances (CLIP 5e-3, UNet/VAE 5e-2,
# sampling 1e-1; measured 3.3e-3, 1.1e-2, 2.4e-2) where the CPU has the
# ISA; elsewhere test_simd --probe-bf16 checks the refusal is clean (exit 2).
if(TARGET test_model)
  add_test(NAME model_stages_bf16 COMMAND sh -c
    "$<TARGET_FILE:test_simd> --probe-bf16; rc=$?; if [ $rc = 0 ]; then SDVK_CPU_ISA=avx512bf16 exec $<TARGET_FILE:test_model> ${SDVK_TEST_DATA}/tiny cpu 50; fi; [ $rc = 2 ]")
  set_tests_properties(model_stages_bf16 PROPERTIES LABELS "model;simd" TIMEOUT 300)
endif()
