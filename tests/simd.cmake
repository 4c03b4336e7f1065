# SIMD CPU kernels vs the reference kernels, every ISA this CPU has forced
# in turn (label simd; also ops, for the cross-compiled NEON run).
add_executable(test_simd ${CMAKE_CURRENT_LIST_DIR}/test_simd.c)
target_include_directories(test_simd PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_simd PRIVATE sdvk)
add_test(NAME simd_kernels COMMAND test_simd)
set_tests_properties(simd_kernels PROPERTIES LABELS "simd;ops" TIMEOUT 300)
