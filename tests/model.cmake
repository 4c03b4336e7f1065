# Tiny SD-layout model: every stage against PyTorch goldens.
add_executable(test_model ${CMAKE_CURRENT_LIST_DIR}/test_model.c)
target_include_directories(test_model PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_model PRIVATE sdvk)
add_test(NAME model_stages_ref COMMAND test_model ${SDVK_TEST_DATA}/tiny cpu)
set_tests_properties(model_stages_ref PROPERTIES LABELS "model" ENVIRONMENT "SDVK_CPU_ISA=ref")
add_test(NAME model_stages_cpu COMMAND test_model ${SDVK_TEST_DATA}/tiny cpu)
set_tests_properties(model_stages_cpu PROPERTIES LABELS "model")
