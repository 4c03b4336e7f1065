# TAESD (src/model/taesd.c): decode/encode of a tiny random TAESD against
# diffusers' AutoencoderTiny goldens (tools/make_taesd.py, tests/data/taesd),
# both key layouts, on the CPU (SIMD and reference kernels) and on Vulkan
# (f16 storage: 1e-2).
add_executable(test_taesd ${CMAKE_CURRENT_LIST_DIR}/test_taesd.c)
target_include_directories(test_taesd PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_taesd PRIVATE sdvk)
add_test(NAME taesd_cpu COMMAND test_taesd ${SDVK_TEST_DATA}/taesd cpu 1e-3)
add_test(NAME taesd_ref COMMAND test_taesd ${SDVK_TEST_DATA}/taesd cpu 1e-3)
set_tests_properties(taesd_cpu PROPERTIES LABELS "model")
set_tests_properties(taesd_ref PROPERTIES LABELS "model" ENVIRONMENT "SDVK_CPU_ISA=ref")
add_test(NAME taesd_vulkan COMMAND test_taesd ${SDVK_TEST_DATA}/taesd vulkan 1e-2)
set_tests_properties(taesd_vulkan PROPERTIES LABELS "model;vulkan"
  ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache")
