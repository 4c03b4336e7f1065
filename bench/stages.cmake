add_executable(bench_stages ${CMAKE_CURRENT_LIST_DIR}/bench_stages.c)
target_include_directories(bench_stages PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_stages PRIVATE sdvk)
# Time to first / second image in one context (resident weights).
add_executable(bench_engine ${CMAKE_CURRENT_LIST_DIR}/bench_engine.c)
target_link_libraries(bench_engine PRIVATE sdvk)
