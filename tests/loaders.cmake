# Loaders (issue 15): .ckpt (zip + restricted pickle), diffusers folders,
# separate VAE, LoRA and textual-inversion files. Variants of the tiny model
# are made at test time by tools/make_test_variants.py (python3 + numpy: no
# torch); LoRA/embedding fixtures and their numpy goldens are committed in
# tests/data/loaders (tools/make_lora.py).
add_executable(test_loaders ${CMAKE_CURRENT_LIST_DIR}/test_loaders.c)
target_include_directories(test_loaders PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_loaders PRIVATE sdvk)

set(SDVK_LD_TINY ${SDVK_TEST_DATA}/tiny)
set(SDVK_LD_WORK ${CMAKE_CURRENT_BINARY_DIR}/loaders_work)
set(SDVK_LD_CORPUS ${CMAKE_CURRENT_LIST_DIR}/fuzz/corpus/ckpt)

add_test(NAME loaders_unit
  COMMAND test_loaders unit ${SDVK_TEST_DATA}/loaders ${SDVK_LD_TINY}/model.safetensors
          ${SDVK_LD_CORPUS} ${CMAKE_CURRENT_BINARY_DIR}/loaders_unit_tmp)
set_tests_properties(loaders_unit PROPERTIES LABELS "unit;loaders;bad-input" TIMEOUT 300)
foreach(seed torch113_views torch215_views)
  add_test(NAME loaders_views_${seed} COMMAND test_loaders views ${SDVK_LD_CORPUS}/${seed}.ckpt)
  set_tests_properties(loaders_views_${seed} PROPERTIES LABELS "unit;loaders")
endforeach()

find_program(SDVK_LD_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(SDVK_LD_PYTHON3)
  add_test(NAME loaders_make_variants
    COMMAND ${SDVK_LD_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/make_test_variants.py
            --model ${SDVK_LD_TINY}/model.safetensors --diffusers ${SDVK_LD_TINY}/diffusers
            -o ${SDVK_LD_WORK})
  set_tests_properties(loaders_make_variants PROPERTIES LABELS "unit;loaders"
                       FIXTURES_SETUP loaders_variants)

  function(sdvk_loaders_test name labels)
    add_test(NAME loaders_${name} COMMAND ${ARGN})
    set_tests_properties(loaders_${name} PROPERTIES LABELS "${labels}"
                         FIXTURES_REQUIRED loaders_variants)
  endfunction()

  # Tensor by tensor: the same bytes as the .safetensors.
  foreach(v tiny tiny_nowrap tiny_zip64 tiny_deflate lightning)
    sdvk_loaders_test(same_${v} "unit;loaders"
      test_loaders same ${SDVK_LD_TINY}/model.safetensors ${SDVK_LD_WORK}/${v}.ckpt)
  endforeach()
  foreach(v diffusers diffusers_mixed)
    sdvk_loaders_test(same_${v} "unit;loaders"
      test_loaders same ${SDVK_LD_TINY}/model.safetensors ${SDVK_LD_WORK}/${v})
  endforeach()
  sdvk_loaders_test(views_zipwriter "unit;loaders" test_loaders views ${SDVK_LD_WORK}/views.ckpt)
  # A separate VAE in four forms replaces exactly the first_stage_model.* tensors.
  foreach(v vae_plain.safetensors vae.ckpt vae_diffusers vae_ref.safetensors)
    string(REGEX REPLACE "[.].*" "" tag ${v})
    sdvk_loaders_test(vae_${tag}_${v} "unit;loaders"
      test_loaders vae ${SDVK_LD_TINY}/model.safetensors ${SDVK_LD_WORK}/${v}
                   ${SDVK_LD_WORK}/vae_ref.safetensors)
  endforeach()
  # Refusals with clear messages.
  sdvk_loaders_test(refuse_legacy "loaders;bad-input"
    test_loaders refuse ${SDVK_LD_WORK}/legacy.pt "legacy" "PyTorch < 1.6")
  foreach(pct 1 10 50 90 99)
    sdvk_loaders_test(refuse_pkl_cut_${pct} "loaders;bad-input"
      test_loaders refuse ${SDVK_LD_WORK}/pkl_cut_${pct}.ckpt "pkl_cut_${pct}.ckpt" "pickle")
  endforeach()
  sdvk_loaders_test(refuse_storage_missing "loaders;bad-input"
    test_loaders refuse ${SDVK_LD_WORK}/storage_missing.ckpt "archive/data/3" "missing")
  sdvk_loaders_test(refuse_storage_short "loaders;bad-input"
    test_loaders refuse ${SDVK_LD_WORK}/storage_short.ckpt "storage 3")
  # configs but no weights (the committed manifest folder)
  sdvk_loaders_test(refuse_not_pipeline "loaders;bad-input"
    test_loaders refuse ${SDVK_LD_TINY}/diffusers "not a diffusers pipeline")

  # Through the CLI: stage outputs bit-identical; malicious pickles refused.
  foreach(case stage_tiny stage_tiny_zip64 stage_diffusers
          evil_system evil_eval evil_popen evil_getattr evil_stackglobal)
    if(case MATCHES "^evil")
      set(labels "loaders;bad-input;cli")
    else()
      set(labels "loaders;cli;e2e")
    endif()
    sdvk_loaders_test(${case} "${labels}"
      sh ${CMAKE_CURRENT_LIST_DIR}/test_loaders.sh $<TARGET_FILE:sdvk_cli> $<TARGET_FILE:test_loaders>
         ${SDVK_LD_WORK} ${SDVK_LD_TINY} ${case})
  endforeach()
endif()
