# The `sdvk` command line, through the real binary (tests/test_cli.sh).
# Bad-input cases need no model; the e2e cases run the tiny model of
# tests/data/tiny and are added only when it (and the CLIP vocab) exist.
add_executable(sdvk_cli_check ${CMAKE_CURRENT_LIST_DIR}/cli_check.c)
target_include_directories(sdvk_cli_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(sdvk_cli_check PRIVATE sdvk)

set(SDVK_CLI_VOCAB ${SDVK_SHARED}/clip/bpe_simple_vocab_16e6.txt.gz)
set(SDVK_CLI_WORK ${CMAKE_CURRENT_BINARY_DIR}/cli_work)

function(sdvk_cli_test case labels)
  add_test(NAME cli_${case}
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_cli.sh $<TARGET_FILE:sdvk_cli>
            $<TARGET_FILE:sdvk_cli_check> ${SDVK_CLI_WORK} ${SDVK_TEST_DATA} ${SDVK_CLI_VOCAB} ${case})
  set_tests_properties(cli_${case} PROPERTIES LABELS "${labels}" ${ARGN})
endfunction()

foreach(case
    no_args help version unknown_flag missing_value stray_arg no_model demo_default no_prompt prompt_twice
    width_mult8 width_range height_small width_junk steps_zero steps_big steps_overflow
    strength_zero strength_big cfg_abc cfg_nan cfg_inline seed_junk seed_negative threads_neg
    backend_unknown precision_bad vocab_missing vocab_none flag_with_value
    model_missing model_dir model_garbage init_missing init_garbage out_unwritable
    stage_no_args stage_unknown stage_no_output stage_missing_latent stage_garbage_latent
    stage_wrong_rank stage_context_rank stage_missing_opt stage_wrong_opt stage_bad_token
    stage_token_range stage_float_tokens stage_timestep stage_garbage_model selftest_bad)
  sdvk_cli_test(${case} "cli;bad-input")
endforeach()

if(EXISTS ${SDVK_TEST_DATA}/tiny/model.safetensors AND EXISTS ${SDVK_CLI_VOCAB})
  sdvk_cli_test(e2e_txt2img "cli;e2e" FIXTURES_SETUP cli_txt2img_png)
  sdvk_cli_test(e2e_repeat "cli;e2e" FIXTURES_REQUIRED cli_txt2img_png)
  sdvk_cli_test(e2e_img2img "cli;e2e" FIXTURES_REQUIRED cli_txt2img_png)
  sdvk_cli_test(e2e_random_seed "cli;e2e")
  foreach(case e2e_stage_clip e2e_stage_unet e2e_stage_vae e2e_stage_sample)
    sdvk_cli_test(${case} "cli;e2e")
  endforeach()
  sdvk_cli_test(e2e_stage_bad_shape "cli;bad-input")
  sdvk_cli_test(e2e_size_model "cli;e2e")
  # The newcomer's rough edges (resident-engine issue, list 5): each case
  # failed before its fix.
  foreach(case native_size model_before_vocab demo_vocab_env size_before_stop bf16_vulkan
          options_not_apply threads_cap progress_notty verbose_timings stdout_png batch_count
          ckpt_message design_link outpaint inpaint_mask hires batch_size preview preview_taesd
          vae_tiling)
    sdvk_cli_test(${case} "cli;e2e")
  endforeach()
  sdvk_cli_test(verbose_timings_vulkan "cli;e2e;vulkan")
  set_tests_properties(cli_verbose_timings_vulkan PROPERTIES
    ENVIRONMENT "XDG_RUNTIME_DIR=/tmp;XDG_CACHE_HOME=${CMAKE_BINARY_DIR}/vk-cache")
endif()
