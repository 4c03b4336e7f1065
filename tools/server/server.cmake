# `sdvk serve` (tools/server/): an HTTP server built into the `sdvk` binary
# on libmicrohttpd (Debian: libmicrohttpd-dev). Without it, `sdvk serve`
# says how to get it and everything else builds as before.
option(SDVK_SERVER "Build `sdvk serve` (needs libmicrohttpd)" ON)
if(SDVK_SERVER)
  find_path(MHD_INCLUDE_DIR microhttpd.h)
  find_library(MHD_LIBRARY microhttpd)
endif()
if(SDVK_SERVER AND MHD_INCLUDE_DIR AND MHD_LIBRARY)
  set(SDVK_HAVE_SERVER ON)
  message(STATUS "sdvk serve: libmicrohttpd found (${MHD_LIBRARY})")
  # The web page, embedded as a C array at build time.
  set(SDVK_INDEX_C ${CMAKE_BINARY_DIR}/server_index_html.c)
  add_custom_command(OUTPUT ${SDVK_INDEX_C}
    COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_SOURCE_DIR}/tools/server/index.html
            -DOUT=${SDVK_INDEX_C} -DNAME=sv_index_html -P ${CMAKE_SOURCE_DIR}/tools/server/embed.cmake
    DEPENDS ${CMAKE_SOURCE_DIR}/tools/server/index.html ${CMAKE_SOURCE_DIR}/tools/server/embed.cmake
    COMMENT "Embedding tools/server/index.html")
  set(SDVK_SERVER_SOURCES
    ${CMAKE_SOURCE_DIR}/tools/server/serve.c ${CMAKE_SOURCE_DIR}/tools/server/http.c
    ${CMAKE_SOURCE_DIR}/tools/server/jobs.c ${CMAKE_SOURCE_DIR}/tools/server/response.c)
  # Request parsing and base64 without HTTP: also linked by the fuzz
  # harnesses (tests/fuzz/fuzz_server_json.c, fuzz_base64.c).
  add_library(sdvk_server_core STATIC
    ${CMAKE_SOURCE_DIR}/tools/server/request.c ${CMAKE_SOURCE_DIR}/tools/server/base64.c)
  target_include_directories(sdvk_server_core PUBLIC ${CMAKE_SOURCE_DIR}/tools/server)
  target_link_libraries(sdvk_server_core PUBLIC sdvk)
  target_sources(sdvk_cli PRIVATE ${SDVK_SERVER_SOURCES} ${SDVK_INDEX_C})
  target_include_directories(sdvk_cli PRIVATE ${MHD_INCLUDE_DIR})
  target_link_libraries(sdvk_cli PRIVATE sdvk_server_core ${MHD_LIBRARY})
else()
  set(SDVK_HAVE_SERVER OFF)
  if(SDVK_SERVER)
    message(WARNING "libmicrohttpd not found: building sdvk without `sdvk serve` "
                    "(install libmicrohttpd-dev, or run tools/install_deps.sh)")
  endif()
  target_sources(sdvk_cli PRIVATE ${CMAKE_SOURCE_DIR}/tools/server/serve_none.c)
endif()
