# Editing (label "editing"): img2img, masked img2img and a 9-channel
# inpainting UNet against diffusers' pipelines, and the UNet/VAE at odd latent
# sizes against diffusers' models (goldens in tests/data/editing from
# tools/check_inpaint.py and tools/check_odd_sizes.py on the tiny model). The
# 9-channel tiny model is made at test time (tools/make_model.py --inpaint:
# numpy only, seeded, so it is the model the goldens were made with).
add_executable(test_editing ${CMAKE_CURRENT_LIST_DIR}/test_editing.c)
target_link_libraries(test_editing PRIVATE sdvk m)
find_program(SDVK_ED_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
set(_ed ${SDVK_TEST_DATA}/editing)
set(_tiny ${SDVK_TEST_DATA}/tiny/model.safetensors)
set(_tiny9 ${CMAKE_CURRENT_BINARY_DIR}/tiny_inpaint.safetensors)
if(SDVK_ED_PYTHON3)
  add_test(NAME editing_make_inpaint_model
    COMMAND ${SDVK_ED_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/make_model.py --config tiny --dtype f16
            --seed 7 --inpaint -o ${_tiny9})
  set_tests_properties(editing_make_inpaint_model PROPERTIES LABELS "editing"
    FIXTURES_SETUP tiny_inpaint)
  add_test(NAME editing_inpaint_cpu COMMAND test_editing inpaint ${_ed}/inpaint ${_tiny} ${_tiny9} cpu 1e-4)
  set_tests_properties(editing_inpaint_cpu PROPERTIES LABELS "editing;model" FIXTURES_REQUIRED tiny_inpaint)
  foreach(p f32 f16)
    if(p STREQUAL "f16")
      set(_tol 2e-2)
    else()
      set(_tol 1e-4)
    endif()
    add_test(NAME editing_inpaint_vulkan_${p}
      COMMAND test_editing inpaint ${_ed}/inpaint ${_tiny} ${_tiny9} vulkan ${_tol})
    set_tests_properties(editing_inpaint_vulkan_${p} PROPERTIES LABELS "editing;vulkan"
      FIXTURES_REQUIRED tiny_inpaint FAIL_REGULAR_EXPRESSION "validation error"
      ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_VK_PRECISION=${p};SDVK_VK_VALIDATION=1")
  endforeach()
endif()
add_test(NAME editing_odd_sizes_cpu COMMAND test_editing odd ${_ed}/odd ${_tiny} cpu 1e-4)
set_tests_properties(editing_odd_sizes_cpu PROPERTIES LABELS "editing;model")
add_test(NAME editing_odd_sizes_vulkan COMMAND test_editing odd ${_ed}/odd ${_tiny} vulkan 1e-4)
set_tests_properties(editing_odd_sizes_vulkan PROPERTIES LABELS "editing;vulkan"
  FAIL_REGULAR_EXPRESSION "validation error"
  ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache;SDVK_VK_PRECISION=f32;SDVK_VK_VALIDATION=1")
