# Untrusted input (issue 19): decoder limits and refusals, the resampler
# against PIL, resource limits of the parsers, and the `sdvk` binary failing
# fast on hostile files (tests/fuzz/crashes holds the inputs).
set(SDVK_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR}/fuzz)
set(SDVK_LIMITS_VOCAB ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)

add_executable(test_image_limits ${CMAKE_CURRENT_LIST_DIR}/test_image_limits.c)
add_executable(test_input_limits ${CMAKE_CURRENT_LIST_DIR}/test_input_limits.c)
foreach(t test_image_limits test_input_limits)
  target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${t} PRIVATE sdvk)
endforeach()
add_test(NAME limits_image
  COMMAND test_image_limits ${SDVK_FUZZ_DIR} ${SDVK_TEST_DATA}/resize/pil_lanczos.bin)
set(input_args ${SDVK_FUZZ_DIR} ${SDVK_TEST_DATA}/tiny/model.safetensors)
if(EXISTS ${SDVK_LIMITS_VOCAB})
  list(APPEND input_args ${SDVK_LIMITS_VOCAB})
endif()
add_test(NAME limits_input COMMAND test_input_limits ${input_args})
set_tests_properties(limits_image limits_input PROPERTIES LABELS "unit;bad-input" TIMEOUT 120)

add_executable(run_measured ${CMAKE_CURRENT_LIST_DIR}/run_measured.c)
set(limits_cli_cases init_huge_png init_64k_png init_huge_jpeg init_truncated_jpeg init_pgm16
    init_png16 init_bad_huffman stage_huge_png model_2e40 model_zero_dim model_intmin)
if(EXISTS ${SDVK_TEST_DATA}/tiny/model.safetensors AND EXISTS ${SDVK_LIMITS_VOCAB})
  list(APPEND limits_cli_cases prompt_100k)
endif()
foreach(case ${limits_cli_cases})
  add_test(NAME limits_cli_${case}
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_limits_cli.sh $<TARGET_FILE:sdvk_cli>
            $<TARGET_FILE:run_measured> ${SDVK_FUZZ_DIR} ${SDVK_LIMITS_VOCAB}
            ${SDVK_TEST_DATA}/tiny/model.safetensors ${CMAKE_CURRENT_BINARY_DIR}/limits_work ${case})
  set_tests_properties(limits_cli_${case} PROPERTIES LABELS "cli;bad-input" TIMEOUT 60)
endforeach()
