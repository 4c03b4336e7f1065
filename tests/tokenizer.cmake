# Tokenizer tests (label "tokenizer"). The CLIP vocab is read from
# ${SDVK_SHARED}/clip (never copied into the repo).
set(SDVK_CLIP_VOCAB ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)
set(SDVK_CLIP_EXAMPLES ${SDVK_SHARED}/clip/tokenizer_examples.json)

add_executable(test_tokenizer ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer.c)
target_include_directories(test_tokenizer PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_tokenizer PRIVATE sdvk)
add_test(NAME tokenizer_unit COMMAND test_tokenizer ${SDVK_CLIP_VOCAB} ${SDVK_CLIP_EXAMPLES})
set_tests_properties(tokenizer_unit PROPERTIES LABELS "tokenizer")
