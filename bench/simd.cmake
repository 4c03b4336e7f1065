# GEMM / conv / attention GFLOP/s of the SIMD CPU kernels vs the measured
# FMA peak and PyTorch fp32 (run by hand: build-x/bench/bench_gemm).
add_executable(bench_gemm ${CMAKE_CURRENT_LIST_DIR}/bench_gemm.c)
target_include_directories(bench_gemm PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_gemm PRIVATE sdvk)
