# Fuzz targets (tests/fuzz/README.md). Each fuzz_<t>.c defines
# LLVMFuzzerTestOneInput and builds as
#  - fuzz_replay_<t>: a plain main() (tests/fuzz/replay_main.c) that runs every
#    seed of tests/fuzz/corpus/<t> and every past crash of tests/fuzz/crashes/<t>;
#    a ctest under any compiler (so also in the ASan/UBSan build);
#  - fuzz_<t>: the libFuzzer binary, with -DSDVK_FUZZ=ON and clang
#    (tests/fuzz/campaign.sh builds those in build-fuzz/).
set(SDVK_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR}/fuzz)
set(SDVK_FUZZ_VOCAB ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)
foreach(t safetensors image prompt npy ckpt lora)
  if(NOT EXISTS ${SDVK_FUZZ_DIR}/fuzz_${t}.c)
    continue()
  endif()
  if(t STREQUAL "prompt" AND NOT EXISTS ${SDVK_FUZZ_VOCAB})
    continue()
  endif()
  set(targets fuzz_replay_${t})
  add_executable(fuzz_replay_${t} ${SDVK_FUZZ_DIR}/fuzz_${t}.c ${SDVK_FUZZ_DIR}/replay_main.c)
  if(SDVK_FUZZ)
    add_executable(fuzz_${t} ${SDVK_FUZZ_DIR}/fuzz_${t}.c)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    list(APPEND targets fuzz_${t})
  endif()
  foreach(x ${targets})
    target_include_directories(${x} PRIVATE ${CMAKE_SOURCE_DIR}/src ${SDVK_FUZZ_DIR})
    target_compile_definitions(${x} PRIVATE SDVK_FUZZ_VOCAB="${SDVK_FUZZ_VOCAB}")
    target_link_libraries(${x} PRIVATE sdvk)
  endforeach()
  set(_replay ${SDVK_FUZZ_DIR}/corpus/${t})
  if(EXISTS ${SDVK_FUZZ_DIR}/crashes/${t})
    list(APPEND _replay ${SDVK_FUZZ_DIR}/crashes/${t})
  endif()
  add_test(NAME fuzz_replay_${t} COMMAND fuzz_replay_${t} ${_replay})
  set_tests_properties(fuzz_replay_${t} PROPERTIES LABELS "fuzz;bad-input" TIMEOUT 300)
endforeach()
