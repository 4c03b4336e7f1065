# Op tests: reference kernels vs PyTorch goldens, backend-vs-backend
# conformance (cpu "auto" i.e. SIMD when built, against "ref"), and graph /
# planner unit tests.
foreach(t test_ops_ref test_conformance test_graph)
  add_executable(${t} ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c)
  target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${t} PRIVATE sdvk)
endforeach()

add_test(NAME ops_ref_vs_torch COMMAND test_ops_ref ${SDVK_TEST_DATA}/ops)
set_tests_properties(ops_ref_vs_torch PROPERTIES LABELS "ops")

add_test(NAME ops_conformance_cpu COMMAND test_conformance)
set_tests_properties(ops_conformance_cpu PROPERTIES LABELS "ops;simd")

add_test(NAME graph_planner COMMAND test_graph)
set_tests_properties(graph_planner PROPERTIES LABELS "unit")

# The same cases with the CPU's Winograd conv taking every 3x3 stride-1 conv
# (by default it takes only large ones), so its transforms meet every
# padding, tail and residual case above.
add_test(NAME ops_conformance_cpu_winograd COMMAND test_conformance)
set_tests_properties(ops_conformance_cpu_winograd PROPERTIES LABELS "ops;simd"
  ENVIRONMENT "SDVK_CPU_WINOGRAD=on;SDVK_CONFORMANCE_OPS=conv2d,chain")
