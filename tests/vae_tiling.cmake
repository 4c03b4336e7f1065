# VAE tiling and memory planning (label "tiling"): bands equal the whole
# VAE, auto mode under a budget, the CFG pair half by half. The model (tiny,
# VAE levels of different widths so resnets have 1x1 shortcuts) is made at
# test time by tools/make_model.py (numpy only, seeded).
add_executable(test_vae_tiling ${CMAKE_CURRENT_LIST_DIR}/test_vae_tiling.c)
target_link_libraries(test_vae_tiling PRIVATE sdvk m)
find_program(SDVK_VT_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
set(_tvae ${CMAKE_CURRENT_BINARY_DIR}/tiny_vae.safetensors)
if(SDVK_VT_PYTHON3)
  add_test(NAME tiling_make_model
    COMMAND ${SDVK_VT_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/make_model.py --config tiny_vae
            --dtype f16 --seed 5 -o ${_tvae})
  set_tests_properties(tiling_make_model PROPERTIES LABELS "tiling" FIXTURES_SETUP tiny_vae)
  add_test(NAME tiling_cpu COMMAND test_vae_tiling ${_tvae} cpu 1e-5)
  set_tests_properties(tiling_cpu PROPERTIES LABELS "tiling;model" FIXTURES_REQUIRED tiny_vae)
  add_test(NAME tiling_cpu_ref COMMAND test_vae_tiling ${_tvae} cpu 1e-5 quick)
  set_tests_properties(tiling_cpu_ref PROPERTIES LABELS "tiling;model" FIXTURES_REQUIRED tiny_vae
    ENVIRONMENT "SDVK_CPU_ISA=ref")
  foreach(p f32 f16)
    if(p STREQUAL "f16")
      set(_tol 2e-3)
    else()
      set(_tol 1e-5)
    endif()
    add_test(NAME tiling_vulkan_${p} COMMAND test_vae_tiling ${_tvae} vulkan ${_tol} quick)
    set_tests_properties(tiling_vulkan_${p} PROPERTIES LABELS "tiling;vulkan"
      FIXTURES_REQUIRED tiny_vae FAIL_REGULAR_EXPRESSION "validation error"
      ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_VK_PRECISION=${p};SDVK_VK_VALIDATION=1")
  endforeach()
endif()
