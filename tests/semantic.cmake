# Semantic tests (label "semantic"): the trained demo model (models/demo/)
# must draw what fixed prompts ask for, by measurable properties (colours of
# shape and background, position), on the CPU backend and on Vulkan; a
# negated CFG scale must make the pass rate collapse. See tests/test_semantic.c.
set(SDVK_DEMO_DIR ${CMAKE_SOURCE_DIR}/models/demo)
if(EXISTS ${SDVK_DEMO_DIR}/sdvk-demo.safetensors)
  add_executable(test_semantic ${CMAKE_CURRENT_LIST_DIR}/test_semantic.c)
  target_link_libraries(test_semantic PRIVATE sdvk m)
  # A case passes when the shape colour, the background colour and the
  # shape's position are all right (test_semantic's default --check all).
  # The default sampler (DPM++ 2M Karras), Euler a and the DDPM the model
  # was first checked with, 20 steps each.
  add_test(NAME semantic_cpu COMMAND test_semantic ${SDVK_DEMO_DIR} cpu --min-rate 0.9)
  add_test(NAME semantic_cpu_euler_a COMMAND test_semantic ${SDVK_DEMO_DIR} cpu --min-rate 0.9
           --sampler euler_a --scheduler discrete)
  add_test(NAME semantic_cpu_ddpm COMMAND test_semantic ${SDVK_DEMO_DIR} cpu --min-rate 0.9
           --sampler ddpm --scheduler discrete)
  # Without a Vulkan driver test_semantic runs the CPU path and says so.
  # One seed per prompt there: lavapipe is far slower than the CPU backend.
  add_test(NAME semantic_vulkan COMMAND test_semantic ${SDVK_DEMO_DIR} vulkan --seeds 1 --min-rate 0.9)
  # Negative control: guidance pointing away from the prompt (eps = uncond -
  # 7.5 (cond - uncond)) must make the pass rate collapse. Measured on the
  # colours alone, the easier check, so the collapse is not just lost
  # positions.
  add_test(NAME semantic_cfg_negated COMMAND test_semantic ${SDVK_DEMO_DIR} cpu --cfg -7.5
           --check colours --expect-max-rate 0.5)
  # The demo vocabulary (tools/demo/bpe.py) through the C tokenizer: the ids
  # tools/demo/bpe.py gives ("a"=320, "red"=554, "circle"=532, BOS 587, EOS 588).
  add_test(NAME semantic_tokenizer COMMAND sdvk_cli tokenize --vocab ${SDVK_DEMO_DIR}/tokenizer
           -- "a red circle")
  set_tests_properties(semantic_tokenizer PROPERTIES PASS_REGULAR_EXPRESSION "^587,320,554,532,588,588,")
  # Inpainting: a shape painted into the masked half of a blue picture, the
  # other half unchanged pixel for pixel.
  add_test(NAME semantic_inpaint_cpu COMMAND test_semantic ${SDVK_DEMO_DIR} cpu --inpaint --min-rate 0.9)
  add_test(NAME semantic_inpaint_vulkan COMMAND test_semantic ${SDVK_DEMO_DIR} vulkan --inpaint
           --seeds 1 --min-rate 0.9)
  set_tests_properties(semantic_inpaint_vulkan PROPERTIES LABELS "semantic;vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache")
  set_tests_properties(semantic_cpu semantic_cpu_euler_a semantic_cpu_ddpm semantic_cfg_negated
    semantic_inpaint_cpu
    semantic_tokenizer PROPERTIES LABELS "semantic")
  set_tests_properties(semantic_vulkan PROPERTIES LABELS "semantic;vulkan"
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache")
endif()
