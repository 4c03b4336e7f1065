# Tokenizer tests (label "tokenizer"). The CLIP vocab is read from
# ${SDVK_SHARED}/clip (never copied into the repo).
set(SDVK_CLIP_VOCAB ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)
set(SDVK_CLIP_EXAMPLES ${SDVK_SHARED}/clip/tokenizer_examples.json)

add_executable(test_tokenizer ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer.c)
target_include_directories(test_tokenizer PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_tokenizer PRIVATE sdvk)
add_test(NAME tokenizer_unit COMMAND test_tokenizer ${SDVK_CLIP_VOCAB} ${SDVK_CLIP_EXAMPLES})
set_tests_properties(tokenizer_unit PROPERTIES LABELS "tokenizer")

# Cross-check against the independent Python model (tools/clip_tokenize.py):
# thousands of generated prompts (accents, emoji, scripts, punctuation runs,
# contractions, odd whitespace, special tokens) and A1111 weight syntax.
add_executable(test_tokenizer_dump ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer_dump.c)
target_include_directories(test_tokenizer_dump PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_tokenizer_dump PRIVATE sdvk)
find_program(SDVK_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(SDVK_PYTHON3)
  add_test(NAME tokenizer_crosscheck
    COMMAND ${SDVK_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/clip_tokenize.py --vocab ${SDVK_CLIP_VOCAB}
            --crosscheck $<TARGET_FILE:test_tokenizer_dump> --count 3000)
  set_tests_properties(tokenizer_crosscheck PROPERTIES LABELS "tokenizer")
endif()

# `sdvk tokenize` end to end: all worked examples (padded and --no-pad),
# generated prompts, SDVK_VOCAB, `--`, --file, empty/invalid/huge input and
# the error messages.
if(SDVK_PYTHON3)
  add_test(NAME tokenizer_cli
    COMMAND ${SDVK_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/clip_tokenize.py --vocab ${SDVK_CLIP_VOCAB}
            --cli-check $<TARGET_FILE:sdvk_cli> --examples ${SDVK_CLIP_EXAMPLES})
  set_tests_properties(tokenizer_cli PROPERTIES LABELS "tokenizer")
endif()
