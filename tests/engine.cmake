# The long-lived engine (label "engine"): resident weights prepared once for
# several requests, the graph cache, keep/trim, and cancellation, through the
# public API on the CPU and on Vulkan.
add_executable(test_engine ${CMAKE_CURRENT_LIST_DIR}/test_engine.c)
target_link_libraries(test_engine PRIVATE sdvk Threads::Threads)
set(_eng_vocab ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)
if(EXISTS ${_eng_vocab})
  add_test(NAME engine_resident_cpu COMMAND test_engine ${SDVK_TEST_DATA}/tiny/model.safetensors ${_eng_vocab} cpu)
  add_test(NAME engine_resident_vulkan COMMAND test_engine ${SDVK_TEST_DATA}/tiny/model.safetensors ${_eng_vocab} vulkan)
  set_tests_properties(engine_resident_cpu PROPERTIES LABELS "engine")
  set_tests_properties(engine_resident_vulkan PROPERTIES LABELS "engine;vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_VK_VALIDATION=1"
    FAIL_REGULAR_EXPRESSION "validation error")
  foreach(b cpu vulkan)
    add_test(NAME engine_preview_${b} COMMAND test_engine ${SDVK_TEST_DATA}/tiny/model.safetensors
             ${_eng_vocab} ${b} preview ${SDVK_TEST_DATA}/taesd/taesd.safetensors)
  endforeach()
  set_tests_properties(engine_preview_cpu PROPERTIES LABELS "engine")
  set_tests_properties(engine_preview_vulkan PROPERTIES LABELS "engine;vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_VK_VALIDATION=1"
    FAIL_REGULAR_EXPRESSION "validation error")
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/models/demo/sdvk-demo.safetensors)
  set(_demo ${CMAKE_SOURCE_DIR}/models/demo)
  add_test(NAME engine_cancel_cpu COMMAND test_engine ${_demo}/sdvk-demo.safetensors ${_demo}/tokenizer cpu cancel)
  add_test(NAME engine_cancel_vulkan COMMAND test_engine ${_demo}/sdvk-demo.safetensors ${_demo}/tokenizer vulkan cancel)
  set_tests_properties(engine_cancel_cpu PROPERTIES LABELS "engine" RUN_SERIAL TRUE)
  set_tests_properties(engine_cancel_vulkan PROPERTIES LABELS "engine;vulkan" RUN_SERIAL TRUE
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache")
endif()
