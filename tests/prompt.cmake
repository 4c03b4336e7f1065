# Prompt emphasis and long prompts through the pipeline on the tiny model.
add_executable(test_prompt ${CMAKE_CURRENT_LIST_DIR}/test_prompt.c)
target_include_directories(test_prompt PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_prompt PRIVATE sdvk)
add_test(NAME prompt_weights_long COMMAND test_prompt ${SDVK_TEST_DATA}/tiny/model.safetensors
         ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)
set_tests_properties(prompt_weights_long PROPERTIES LABELS "tokenizer;e2e")
