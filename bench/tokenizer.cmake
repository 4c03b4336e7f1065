# bench_tokenizer [VOCAB]: vocab load time and 10,000 typical prompts.
add_executable(bench_tokenizer ${CMAKE_CURRENT_LIST_DIR}/bench_tokenizer.c)
target_include_directories(bench_tokenizer PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_tokenizer PRIVATE sdvk)
