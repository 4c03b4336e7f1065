# bench_vulkan [--sd] [--reps R] [--precision f32|f16] [--device N] [--verbose]:
# SD-shaped matmul / conv / attention / group norm on the Vulkan backend vs
# the CPU backend (run by hand; prints a note and exits 0 without a device).
add_executable(bench_vulkan ${CMAKE_CURRENT_LIST_DIR}/bench_vulkan.c)
target_include_directories(bench_vulkan PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_vulkan PRIVATE sdvk)
