# The Vulkan matmul kernel choice on faked device properties (no device, no
# Vulkan headers needed: vk_kernels.c is plain C, compiled in directly).
add_executable(test_vk_kernels ${CMAKE_CURRENT_SOURCE_DIR}/test_vk_kernels.c
  ${CMAKE_SOURCE_DIR}/src/backend/vulkan/vk_kernels.c)
target_include_directories(test_vk_kernels PRIVATE ${CMAKE_SOURCE_DIR}/src)
add_test(NAME vulkan_kernel_choice COMMAND test_vk_kernels)
set_tests_properties(vulkan_kernel_choice PROPERTIES LABELS "vulkan;unit")

# Every SIMT matmul variant on the device, whatever the automatic choice
# (lavapipe picks SIMT128 everywhere): the matmul-family conformance cases
# (matmul, conv2d, the fused GEGLU, the chain) with the kernel family forced,
# and the fused GEGLU switched off, validation layer on.
if(SDVK_HAVE_VULKAN AND TARGET test_vulkan)
  set(_vkk_env "XDG_RUNTIME_DIR=/tmp" "XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache"
               "SDVK_CONFORMANCE_OPS=matmul,conv2d,geglu,chain")
  foreach(k simt64 simt128k8)
    foreach(p f32 f16)
      add_test(NAME vulkan_conformance_mm_${k}_${p} COMMAND test_vulkan conformance ${p})
      set_tests_properties(vulkan_conformance_mm_${k}_${p} PROPERTIES LABELS "vulkan"
        ENVIRONMENT "${_vkk_env};SDVK_VK_KERNELS=${k}" FAIL_REGULAR_EXPRESSION "validation error")
    endforeach()
  endforeach()
  # The cooperative-matrix kernel with its matrix operations emulated in
  # plain GLSL (lavapipe has no matrix units): its tiling, shared layouts,
  # conv gather, vector loads and GEGLU/bias/residual epilogue, on the 128
  # tile with 16x16x16 fragments and the 64 tile with 16x8x16.
  # (the 64 tile skips the conv cases: its conv gather is the 128 tile's
  # code, and emulated on lavapipe they cost a minute of CI)
  add_test(NAME vulkan_conformance_mm_coopmat_emu_f16 COMMAND test_vulkan conformance f16)
  set_tests_properties(vulkan_conformance_mm_coopmat_emu_f16 PROPERTIES LABELS "vulkan"
    ENVIRONMENT "${_vkk_env};SDVK_VK_KERNELS=coopmat_emu" FAIL_REGULAR_EXPRESSION "validation error")
  add_test(NAME vulkan_conformance_mm_coopmat_emu8_f16 COMMAND test_vulkan conformance f16)
  set_tests_properties(vulkan_conformance_mm_coopmat_emu8_f16 PROPERTIES LABELS "vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_CONFORMANCE_OPS=matmul,geglu,chain;SDVK_VK_KERNELS=coopmat_emu8"
    FAIL_REGULAR_EXPRESSION "validation error")
  # The attention kernel on the matrix units, emulated: key blocks of 32
  # (what lavapipe's 32 KiB allow at head dims <= 64) and 16 (forced).
  add_test(NAME vulkan_conformance_attn_coopmat_emu_f16 COMMAND test_vulkan conformance f16)
  set_tests_properties(vulkan_conformance_attn_coopmat_emu_f16 PROPERTIES LABELS "vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_CONFORMANCE_OPS=attention;SDVK_VK_KERNELS=coopmat_emu"
    FAIL_REGULAR_EXPRESSION "validation error")
  add_test(NAME vulkan_conformance_attn_coopmat_emu8_bkv16_f16 COMMAND test_vulkan conformance f16)
  set_tests_properties(vulkan_conformance_attn_coopmat_emu8_bkv16_f16 PROPERTIES LABELS "vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_CONFORMANCE_OPS=attention;SDVK_VK_KERNELS=coopmat_emu8;SDVK_VK_ATTN_BKV=16"
    FAIL_REGULAR_EXPRESSION "validation error")
  add_test(NAME vulkan_conformance_mm_nofuse_f16 COMMAND test_vulkan conformance f16)
  set_tests_properties(vulkan_conformance_mm_nofuse_f16 PROPERTIES LABELS "vulkan"
    ENVIRONMENT "${_vkk_env};SDVK_VK_FUSE=0" FAIL_REGULAR_EXPRESSION "validation error")
  add_test(NAME vulkan_sd_shapes_simt64_f16 COMMAND test_vulkan sd f16)
  set_tests_properties(vulkan_sd_shapes_simt64_f16 PROPERTIES LABELS "vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_VK_KERNELS=simt64"
    FAIL_REGULAR_EXPRESSION "validation error")
endif()
