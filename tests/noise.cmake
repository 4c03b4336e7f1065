# Noise generators (src/sample/noise.h): torch CPU randn bit for bit against
# goldens of torch itself (tools/make_rng_goldens.py), the CUDA Philox stream
# against an independent numpy model (tools/philox_ref.py). `test_noise
# --bench` prints ns per normal.
add_executable(test_noise ${CMAKE_CURRENT_LIST_DIR}/test_noise.c)
target_include_directories(test_noise PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_noise PRIVATE sdvk)
add_test(NAME test_noise COMMAND test_noise ${SDVK_TEST_DATA}/rng)
set_tests_properties(test_noise PROPERTIES LABELS "unit;rng" TIMEOUT 120)
