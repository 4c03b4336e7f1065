# IO modules: safetensors, npy, images (bad input generated at run time in
# a temp dir; no committed fixtures).
foreach(t safetensors npy image)
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c)
  target_include_directories(test_${t} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(test_${t} PRIVATE sdvk)
  add_test(NAME io_${t} COMMAND test_${t})
  set_tests_properties(io_${t} PROPERTIES LABELS "unit;bad-input" TIMEOUT 60)
endforeach()
