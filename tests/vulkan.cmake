# Vulkan backend tests (label "vulkan"): every op against the CPU reference
# with the validation layer on (f32 and f16), SD channel counts, replay of
# one recorded graph over steps, and the no-driver fallback. In CI they run
# on Mesa lavapipe; without any driver they test the fallback and say so.
add_executable(test_vulkan ${CMAKE_CURRENT_SOURCE_DIR}/test_vulkan.c)
target_include_directories(test_vulkan PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_vulkan PRIVATE sdvk)
if(SDVK_HAVE_VULKAN)
  target_include_directories(test_vulkan PRIVATE ${SDVK_VOLK_DIR})
else()
  target_compile_definitions(test_vulkan PRIVATE SDVK_NO_VULKAN)
endif()

set(_vk_env "XDG_RUNTIME_DIR=/tmp" "XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache")
foreach(p f32 f16)
  add_test(NAME vulkan_conformance_${p} COMMAND test_vulkan conformance ${p})
  add_test(NAME vulkan_sd_shapes_${p} COMMAND test_vulkan sd ${p})
  add_test(NAME vulkan_replay_${p} COMMAND test_vulkan replay ${p})
  add_test(NAME vulkan_big_table_${p} COMMAND test_vulkan bigtable ${p})
  set_tests_properties(vulkan_conformance_${p} vulkan_sd_shapes_${p} vulkan_replay_${p}
    vulkan_big_table_${p}
    PROPERTIES LABELS "vulkan" ENVIRONMENT "${_vk_env}" FAIL_REGULAR_EXPRESSION "validation error")
endforeach()
add_test(NAME vulkan_fallback_no_driver COMMAND test_vulkan fallback)
set_tests_properties(vulkan_fallback_no_driver PROPERTIES LABELS "vulkan"
  ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;VK_ICD_FILENAMES=/nonexistent;VK_DRIVER_FILES=/nonexistent")

# The tiny SD model, every stage against the PyTorch goldens (tests/model.cmake's
# test_model), on Vulkan. Only where a Vulkan driver is installed: without one
# the fallback test above covers the backend. f16 storage carries ~1e-3
# relative error through a whole stage, hence tolerance scale 10 there.
file(GLOB _vk_icds /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json)
# vulkan_model_stages_NAME: precision PREC, tolerance scale TOL, then any
# extra environment entries.
function(sdvk_vk_model_test name prec tol)
  add_test(NAME vulkan_model_stages_${name} COMMAND test_model ${SDVK_TEST_DATA}/tiny vulkan ${tol})
  set_tests_properties(vulkan_model_stages_${name} PROPERTIES LABELS "vulkan;model"
    ENVIRONMENT "${_vk_env};SDVK_VK_PRECISION=${prec};SDVK_VK_VALIDATION=1;${ARGN}"
    FAIL_REGULAR_EXPRESSION "validation error")
endfunction()
if(SDVK_HAVE_VULKAN AND _vk_icds AND TARGET test_model)
  sdvk_vk_model_test(f32 f32 1)
  sdvk_vk_model_test(f16 f16 10)
  # The same stages with the activations split into small blocks, as on a
  # device whose maxMemoryAllocationSize is below the arena (SDVK_VK_ARENA_BLOCK
  # lowers the block size; the tiny model's largest activation is 1 MiB fp32).
  sdvk_vk_model_test(split_f32 f32 1 SDVK_VK_ARENA_BLOCK=1048576)
  sdvk_vk_model_test(split_f16 f16 10 SDVK_VK_ARENA_BLOCK=524288)
endif()
