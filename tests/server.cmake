# `sdvk serve` (tools/server/): integration, load, browser and A1111
# compatibility tests, each starting its own server with the demo model on a
# free loopback port (tests/server/*.py, Python's standard library only).
# ctest label `server`.
if(NOT SDVK_HAVE_SERVER)
  message(STATUS "sdvk serve not built (no libmicrohttpd): no server tests")
  return()
endif()
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(WARNING "python3 not found: no server tests")
  return()
endif()
set(SDVK_SERVER_TESTS ${CMAKE_CURRENT_LIST_DIR}/server)
# The demo model is found through the build tree (SDVK_DEMO_MODEL).
foreach(case api img2img progress interrupt queue bad_input auth shutdown a1111_compat loras)
  add_test(NAME server_${case}
    COMMAND ${Python3_EXECUTABLE} ${SDVK_SERVER_TESTS}/test_server.py $<TARGET_FILE:sdvk_cli> ${case})
  set_tests_properties(server_${case} PROPERTIES LABELS "server" TIMEOUT 600)
endforeach()
set_tests_properties(server_bad_input PROPERTIES LABELS "server;bad-input")
add_test(NAME server_load
  COMMAND ${Python3_EXECUTABLE} ${SDVK_SERVER_TESTS}/load_test.py $<TARGET_FILE:sdvk_cli> 4 25)
# alone: the RSS comparison and the timing want the machine to themselves
set_tests_properties(server_load PROPERTIES LABELS "server" TIMEOUT 900 RUN_SERIAL ON)
# Headless Chromium drives the page; skipped (77) when chromium is missing.
add_test(NAME server_browser
  COMMAND ${Python3_EXECUTABLE} ${SDVK_SERVER_TESTS}/browser_test.py $<TARGET_FILE:sdvk_cli>
          ${CMAKE_BINARY_DIR}/server_browser_screenshot.png)
set_tests_properties(server_browser PROPERTIES LABELS "server;browser" TIMEOUT 600
  SKIP_RETURN_CODE 77)
