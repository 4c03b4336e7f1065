# Samplers and schedules (label "samplers"): every sampler x {discrete,
# karras} on the tiny model against k-diffusion / diffusers trajectories
# (tests/data/samplers, made by tools/check_samplers.py), on the CPU and on
# Vulkan (f32 and f16 storage; there also one recorded graph, one submit).
add_executable(test_samplers ${CMAKE_CURRENT_LIST_DIR}/test_samplers.c)
target_link_libraries(test_samplers PRIVATE sdvk m)
set(_smp ${SDVK_TEST_DATA}/samplers ${SDVK_TEST_DATA}/tiny/model.safetensors)
add_test(NAME samplers_cpu COMMAND test_samplers ${_smp} cpu 1e-4)
set_tests_properties(samplers_cpu PROPERTIES LABELS "samplers;model")
add_test(NAME samplers_cpu_ref COMMAND test_samplers ${_smp} cpu 1e-4)
set_tests_properties(samplers_cpu_ref PROPERTIES LABELS "samplers;model" ENVIRONMENT "SDVK_CPU_ISA=ref")
foreach(p f32 f16)
  if(p STREQUAL "f16")
    set(_tol 2e-2)
  else()
    set(_tol 1e-4)
  endif()
  add_test(NAME samplers_vulkan_${p} COMMAND test_samplers ${_smp} vulkan ${_tol})
  set_tests_properties(samplers_vulkan_${p} PROPERTIES LABELS "samplers;vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_VK_PRECISION=${p};SDVK_VK_VALIDATION=1"
    FAIL_REGULAR_EXPRESSION "validation error")
endforeach()
