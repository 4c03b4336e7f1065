# Installing like a library (label "install"): a fresh build of this source
# tree installed into a temporary prefix, its build folder deleted, then
# programs built with pkg-config and find_package(sdvk) and the installed CLI
# run on the installed demo model (tests/install/test_install.sh).
if(EXISTS ${CMAKE_SOURCE_DIR}/models/demo/sdvk-demo.safetensors)
  add_test(NAME install_pkgconfig_find_package
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/install/test_install.sh ${CMAKE_SOURCE_DIR}
            ${CMAKE_CURRENT_BINARY_DIR}/install_work)
  set_tests_properties(install_pkgconfig_find_package PROPERTIES LABELS "install" TIMEOUT 900)
endif()
