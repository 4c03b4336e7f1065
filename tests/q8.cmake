# 8-bit weights: quantiser, the stored q8 .safetensors form, and the tiny
# model with q8 made at load vs a converted q8 file (bit-identical) vs the
# PyTorch goldens, on the reference kernels and the SIMD ones.
add_executable(test_q8 ${CMAKE_CURRENT_LIST_DIR}/test_q8.c)
target_include_directories(test_q8 PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_q8 PRIVATE sdvk)
add_test(NAME q8_weights_cpu COMMAND test_q8 ${SDVK_TEST_DATA}/tiny)
set_tests_properties(q8_weights_cpu PROPERTIES LABELS "model;simd")
add_test(NAME q8_weights_ref COMMAND test_q8 ${SDVK_TEST_DATA}/tiny)
set_tests_properties(q8_weights_ref PROPERTIES LABELS "model" ENVIRONMENT "SDVK_CPU_ISA=ref")
