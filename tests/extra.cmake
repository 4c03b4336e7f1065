# Extra networks (label "extra"): LoRA, textual-inversion embeddings and clip
# skip against diffusers (goldens in tests/data/extra, made by
# tools/make_extra_goldens.py), LoRA switching in one context against fresh
# contexts (test_extra switch), a malicious .ckpt LoRA named in a prompt,
# and `sdvk convert` (label "convert").
add_executable(test_extra ${CMAKE_CURRENT_LIST_DIR}/test_extra.c)
target_link_libraries(test_extra PRIVATE sdvk m)

set(SDVK_EX_DATA ${SDVK_TEST_DATA}/extra)
set(SDVK_EX_VOCAB ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)
set(SDVK_EX_WORK ${CMAKE_CURRENT_BINARY_DIR}/extra_work)
set(SDVK_EX_VARIANTS ${CMAKE_CURRENT_BINARY_DIR}/loaders_work) # tests/loaders.cmake's fixture
set(_ex_vk_env "XDG_RUNTIME_DIR=/tmp" "XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache" "SDVK_VK_VALIDATION=1")

# extra_NAME: tests/test_extra.sh CASE [ARGS], with these labels
function(sdvk_extra_sh name case labels)
  add_test(NAME extra_${name}
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_extra.sh $<TARGET_FILE:sdvk_cli>
            $<TARGET_FILE:sdvk_cli_check> $<TARGET_FILE:test_loaders> ${SDVK_EX_WORK}
            ${SDVK_TEST_DATA} ${SDVK_EX_VOCAB} ${case} ${ARGN})
  set_tests_properties(extra_${name} PROPERTIES LABELS "${labels}")
endfunction()

# The .ckpt / diffusers variants and malicious pickles come from
# tools/make_test_variants.py, a fixture of tests/loaders.cmake (read after
# this file; it is defined under the same condition).
find_program(SDVK_EX_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)

if(EXISTS ${SDVK_EX_VOCAB} AND EXISTS ${SDVK_EX_DATA}/cases.txt)
  # One test per golden: `sdvk stage unet|clip` with --lora / --prompt /
  # --embd-dir / --clip-skip against diffusers' output.
  file(STRINGS ${SDVK_EX_DATA}/cases.txt _ex_cases)
  foreach(line IN LISTS _ex_cases)
    string(REGEX MATCH "^[^\t]+" name "${line}")
    sdvk_extra_sh(${name} golden "extra;cli" ${name})
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
  # nothing runs.
  if(SDVK_EX_PYTHON3)
    foreach(case evil_tag_generate evil_tag_stage)
      sdvk_extra_sh(${case} ${case} "extra;cli;bad-input" ${SDVK_EX_VARIANTS})
      set_tests_properties(extra_${case} PROPERTIES FIXTURES_REQUIRED loaders_variants)
    endforeach()
  endif()
endif()

# sdvk convert: dtypes, LoRAs merged == LoRAs at run time, the API
sdvk_extra_sh(convert_types convert_types "extra;cli;convert")
sdvk_extra_sh(convert_q8 convert_q8 "extra;cli;convert")
sdvk_extra_sh(convert_lora convert_lora "extra;cli;convert")
add_test(NAME extra_convert_api
  COMMAND test_extra convert_api ${SDVK_TEST_DATA}/tiny/model.safetensors
          ${SDVK_TEST_DATA}/loaders/lora_kohya_r8.safetensors ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(extra_convert_api PROPERTIES LABELS "extra;convert;bad-input")
# .ckpt / diffusers folder / separate VAE to one file; bad inputs
if(SDVK_EX_PYTHON3)
  foreach(case convert_ckpt convert_diffusers convert_vae convert_bad)
    set(_labels "extra;cli;convert")
    if(case STREQUAL convert_bad)
      set(_labels "extra;cli;convert;bad-input")
    endif()
    sdvk_extra_sh(${case} ${case} "${_labels}" ${SDVK_EX_VARIANTS})
    set_tests_properties(extra_${case} PROPERTIES FIXTURES_REQUIRED loaders_variants)
  endforeach()
endif()
