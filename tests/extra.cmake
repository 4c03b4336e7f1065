# Extra networks (label "extra"): LoRA, textual-inversion embeddings and clip
# skip against diffusers (goldens in tests/data/extra, made by
# tools/make_extra_goldens.py), LoRA switching in one context against fresh
# contexts (test_extra switch), a malicious .ckpt LoRA named in a prompt,
# and `sdvk convert`.
add_executable(test_extra ${CMAKE_CURRENT_LIST_DIR}/test_extra.c)
target_link_libraries(test_extra PRIVATE sdvk m)

set(SDVK_EX_DATA ${SDVK_TEST_DATA}/extra)
set(SDVK_EX_VOCAB ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)
set(SDVK_EX_WORK ${CMAKE_CURRENT_BINARY_DIR}/extra_work)
set(_ex_vk_env "XDG_RUNTIME_DIR=/tmp" "XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache" "SDVK_VK_VALIDATION=1")

if(EXISTS ${SDVK_EX_VOCAB} AND EXISTS ${SDVK_EX_DATA}/cases.txt)
  # One test per golden: `sdvk stage unet|clip` with --lora / --prompt /
  # --embd-dir / --clip-skip against diffusers' output.
  file(STRINGS ${SDVK_EX_DATA}/cases.txt _ex_cases)
  foreach(line IN LISTS _ex_cases)
    string(REGEX MATCH "^[^\t]+" name "${line}")
    add_test(NAME extra_${name}
      COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_extra.sh $<TARGET_FILE:sdvk_cli>
              $<TARGET_FILE:sdvk_cli_check> $<TARGET_FILE:test_loaders> ${SDVK_EX_WORK} ${SDVK_TEST_DATA} ${SDVK_EX_VOCAB}
              golden ${name})
    set_tests_properties(extra_${name} PROPERTIES LABELS "extra;cli")
  endforeach()

  add_test(NAME extra_switch_cpu
    COMMAND test_extra switch ${SDVK_TEST_DATA}/tiny/model.safetensors ${SDVK_EX_VOCAB}
            ${SDVK_TEST_DATA}/loaders cpu)
  set_tests_properties(extra_switch_cpu PROPERTIES LABELS "extra;engine")
  add_test(NAME extra_switch_vulkan
    COMMAND test_extra switch ${SDVK_TEST_DATA}/tiny/model.safetensors ${SDVK_EX_VOCAB}
            ${SDVK_TEST_DATA}/loaders vulkan)
  set_tests_properties(extra_switch_vulkan PROPERTIES LABELS "extra;engine;vulkan"
    ENVIRONMENT "${_ex_vk_env}" FAIL_REGULAR_EXPRESSION "validation error")

  # A .ckpt LoRA whose pickle runs a command, named in a prompt tag: refused,
  # nothing runs (tools/make_test_variants.py's evil_*.ckpt, tests/loaders.cmake).
  # (the fixture's test is in loaders.cmake, read after this file, with the
  # same condition)
  find_program(SDVK_EX_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(SDVK_EX_PYTHON3)
    foreach(case evil_tag_generate evil_tag_stage)
      add_test(NAME extra_${case}
        COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_extra.sh $<TARGET_FILE:sdvk_cli>
                $<TARGET_FILE:sdvk_cli_check> $<TARGET_FILE:test_loaders> ${SDVK_EX_WORK} ${SDVK_TEST_DATA} ${SDVK_EX_VOCAB}
                ${case} ${CMAKE_CURRENT_BINARY_DIR}/loaders_work)
      set_tests_properties(extra_${case} PROPERTIES LABELS "extra;cli;bad-input"
                           FIXTURES_REQUIRED loaders_variants)
    endforeach()
    # sdvk convert: .ckpt / diffusers folder / separate VAE to one file,
    # bad inputs
    foreach(case convert_ckpt convert_diffusers convert_vae convert_bad)
      add_test(NAME extra_${case}
        COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_extra.sh $<TARGET_FILE:sdvk_cli>
                $<TARGET_FILE:sdvk_cli_check> $<TARGET_FILE:test_loaders> ${SDVK_EX_WORK}
                ${SDVK_TEST_DATA} ${SDVK_EX_VOCAB} ${case} ${CMAKE_CURRENT_BINARY_DIR}/loaders_work)
      set(_labels "extra;cli;convert")
      if(case STREQUAL convert_bad)
        set(_labels "extra;cli;convert;bad-input")
      endif()
      set_tests_properties(extra_${case} PROPERTIES LABELS "${_labels}"
                           FIXTURES_REQUIRED loaders_variants)
    endforeach()
  endif()
  add_test(NAME extra_convert_api
    COMMAND test_extra convert_api ${SDVK_TEST_DATA}/tiny/model.safetensors
            ${SDVK_TEST_DATA}/loaders/lora_kohya_r8.safetensors ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(extra_convert_api PROPERTIES LABELS "extra;convert;bad-input")
  # sdvk convert: dtypes, LoRAs merged == LoRAs at run time
  foreach(case convert_types convert_lora)
    add_test(NAME extra_${case}
      COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_extra.sh $<TARGET_FILE:sdvk_cli>
              $<TARGET_FILE:sdvk_cli_check> $<TARGET_FILE:test_loaders> ${SDVK_EX_WORK}
              ${SDVK_TEST_DATA} ${SDVK_EX_VOCAB} ${case})
    set_tests_properties(extra_${case} PROPERTIES LABELS "extra;cli;convert")
  endforeach()
endif()
