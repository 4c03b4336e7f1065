# The shared library, installation, pkg-config and CMake package files.
#
# libsdvk.so is the static library's objects (built position independent)
# linked whole, exporting only the public API (sdvk_* symbols, see
# cmake/sdvk.map). pkg-config links the shared library; find_package(sdvk)
# gives sdvk::sdvk (static) and sdvk::sdvk_shared.
include(GNUInstallDirs)

file(WRITE ${CMAKE_BINARY_DIR}/sdvk_shared_stub.c "/* libsdvk.so: the objects of libsdvk.a */\n")
add_library(sdvk_shared SHARED ${CMAKE_BINARY_DIR}/sdvk_shared_stub.c)
target_link_libraries(sdvk_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,sdvk>")
target_link_options(sdvk_shared PRIVATE "LINKER:--version-script=${CMAKE_SOURCE_DIR}/cmake/sdvk.map")
target_include_directories(sdvk_shared PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
                                              $<INSTALL_INTERFACE:include>)
set_target_properties(sdvk_shared PROPERTIES OUTPUT_NAME sdvk VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR} LINK_DEPENDS ${CMAKE_SOURCE_DIR}/cmake/sdvk.map)

install(TARGETS sdvk_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS sdvk sdvk_shared EXPORT sdvkTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/sdvk.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(EXISTS ${CMAKE_SOURCE_DIR}/models/demo)
  install(DIRECTORY models/demo DESTINATION ${CMAKE_INSTALL_DATADIR}/sdvk/models
    PATTERN "*.pt" EXCLUDE)
endif()

# pkg-config
set(SDVK_PC_LIBS_PRIVATE "-lpng -ljpeg -lz -lutf8proc -ljansson -lm -lpthread ${CMAKE_DL_LIBS}")
list(JOIN SDVK_EXTRA_PC_LIBS " " _extra)
string(APPEND SDVK_PC_LIBS_PRIVATE " ${_extra}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/sdvk.pc.in ${CMAKE_BINARY_DIR}/sdvk.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/sdvk.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# find_package(sdvk)
include(CMakePackageConfigHelpers)
install(EXPORT sdvkTargets NAMESPACE sdvk:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sdvk)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/sdvkConfig.cmake.in
  ${CMAKE_BINARY_DIR}/sdvkConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sdvk
  PATH_VARS CMAKE_INSTALL_DATADIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/sdvkConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/sdvkConfig.cmake ${CMAKE_BINARY_DIR}/sdvkConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sdvk)
