# CPU backend: the backend itself and the plain-C reference kernels.
file(GLOB SDVK_CPU_SOURCES CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_LIST_DIR}/*.c ${CMAKE_CURRENT_LIST_DIR}/ref/*.c)
target_sources(sdvk PRIVATE ${SDVK_CPU_SOURCES})
# SIMD kernels (per-ISA files with their own flags) live in simd/simd.cmake.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/simd/simd.cmake)
  include(${CMAKE_CURRENT_LIST_DIR}/simd/simd.cmake)
endif()
