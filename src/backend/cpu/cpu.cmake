# CPU backend: the backend itself and the plain-C reference kernels.
file(GLOB SDVK_CPU_SOURCES CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_LIST_DIR}/*.c ${CMAKE_CURRENT_LIST_DIR}/ref/*.c)
list(REMOVE_ITEM SDVK_CPU_SOURCES ${CMAKE_CURRENT_LIST_DIR}/simd_none.c)
target_sources(sdvk PRIVATE ${SDVK_CPU_SOURCES})
# SIMD kernels (per-ISA files with their own flags) live in simd/simd.cmake.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/simd/simd.cmake)
  include(${CMAKE_CURRENT_LIST_DIR}/simd/simd.cmake)
endif()
# simd_none.c holds a weak fallback for sd_cpu_simd_select. In a static
# library a weak definition can still shadow the strong one (the linker takes
# the first archive member that defines the symbol), so it is only built when
# no SIMD source defines the function (simd.cmake may also set
# SDVK_CPU_HAVE_SIMD_SELECT).
if(NOT SDVK_CPU_HAVE_SIMD_SELECT)
  file(GLOB_RECURSE _sdvk_simd_c CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/simd/*.c)
  foreach(_f ${_sdvk_simd_c})
    file(STRINGS ${_f} _hit REGEX "^[a-z_ ]*int[ \t]+sd_cpu_simd_select[ \t]*\\(")
    if(_hit)
      set(SDVK_CPU_HAVE_SIMD_SELECT ON)
    endif()
  endforeach()
endif()
if(NOT SDVK_CPU_HAVE_SIMD_SELECT)
  target_sources(sdvk PRIVATE ${CMAKE_CURRENT_LIST_DIR}/simd_none.c)
endif()
