# Vulkan compute backend: volk (runtime loader, no link-time libvulkan),
# GLSL shaders compiled to SPIR-V at build time and embedded in the library.
# Decision: when the shader tools or volk are missing, the backend is turned
# off with a warning (vulkan_none.c is built instead), so the rest of the
# tree still builds; -DSDVK_VULKAN_REQUIRED=ON makes that an error instead.
option(SDVK_VULKAN_REQUIRED "Fail the configure when the Vulkan backend cannot be built" OFF)
find_program(SDVK_GLSLANG glslangValidator)
find_program(SDVK_SPIRV_VAL spirv-val)
find_program(SDVK_SPIRV_OPT spirv-opt)
find_path(SDVK_VOLK_DIR volk.c PATHS /usr/include /usr/local/include)
find_path(SDVK_VULKAN_HEADERS vulkan/vulkan_core.h)

set(_sdvk_vk_missing "")
foreach(v SDVK_GLSLANG SDVK_SPIRV_VAL SDVK_VOLK_DIR SDVK_VULKAN_HEADERS)
  if(NOT ${v})
    list(APPEND _sdvk_vk_missing ${v})
  endif()
endforeach()

if(_sdvk_vk_missing)
  set(_msg "Vulkan backend disabled: missing ${_sdvk_vk_missing} (install glslang-tools, spirv-tools, libvulkan-volk-dev, libvulkan-dev)")
  if(SDVK_VULKAN_REQUIRED)
    message(FATAL_ERROR "${_msg}")
  endif()
  message(WARNING "${_msg}")
  target_sources(sdvk PRIVATE ${CMAKE_SOURCE_DIR}/src/backend/vulkan_none.c)
  set(SDVK_HAVE_VULKAN OFF)
  return()
endif()
set(SDVK_HAVE_VULKAN ON)

# The library globs src/backend/*.c, which picks up the no-Vulkan stub: drop it.
get_target_property(_sdvk_srcs sdvk SOURCES)
list(FILTER _sdvk_srcs EXCLUDE REGEX "vulkan_none\\.c$")
set_target_properties(sdvk PROPERTIES SOURCES "${_sdvk_srcs}")

set(_shader_dir ${CMAKE_SOURCE_DIR}/shaders)
set(_spv_dir ${CMAKE_BINARY_DIR}/shaders)
file(MAKE_DIRECTORY ${_spv_dir})
file(GLOB _sdvk_comps CONFIGURE_DEPENDS ${_shader_dir}/*.comp)
file(GLOB _sdvk_glsl CONFIGURE_DEPENDS ${_shader_dir}/*.glsl)

# ops.glsl: the op codes of src/core/ops.def for the shaders (OP_<ID> = its
# index), so C and GLSL share one op list. Regenerated when ops.def changes.
set(_ops_def ${CMAKE_SOURCE_DIR}/src/core/ops.def)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_ops_def})
file(STRINGS ${_ops_def} _op_lines REGEX "^SD_OP\\(")
set(_ops_glsl "// Generated from src/core/ops.def by src/backend/vulkan/vulkan.cmake; do not edit.\n")
set(_op_i 0)
foreach(l ${_op_lines})
  string(REGEX REPLACE "^SD_OP\\(([A-Z0-9_]+),.*" "\\1" _op_id "${l}")
  string(APPEND _ops_glsl "const uint OP_${_op_id} = ${_op_i}u;\n")
  math(EXPR _op_i "${_op_i} + 1")
endforeach()
file(CONFIGURE OUTPUT ${_spv_dir}/ops.glsl CONTENT "${_ops_glsl}")
list(APPEND _sdvk_glsl ${_spv_dir}/ops.glsl)
set(_spvs "")
foreach(comp ${_sdvk_comps})
  get_filename_component(name ${comp} NAME_WE)
  foreach(variant f32 f16)
    if(variant STREQUAL "f16")
      set(def -DF16=1)
    else()
      set(def -DF16=0)
    endif()
    set(spv ${_spv_dir}/${name}.${variant}.spv)
    set(opt_cmd "")
    if(SDVK_SPIRV_OPT)
      set(opt_cmd COMMAND ${SDVK_SPIRV_OPT} -O ${spv}.raw -o ${spv}.raw)
    endif()
    add_custom_command(OUTPUT ${spv}
      COMMAND ${SDVK_GLSLANG} --target-env vulkan1.1 -V ${def} -I${_shader_dir} -I${_spv_dir} -o ${spv}.raw ${comp}
      ${opt_cmd}
      COMMAND ${SDVK_SPIRV_VAL} --target-env vulkan1.1 ${spv}.raw
      COMMAND ${CMAKE_COMMAND} -E rename ${spv}.raw ${spv}
      DEPENDS ${comp} ${_sdvk_glsl}
      COMMENT "SPIR-V ${name}.${variant}"
      VERBATIM)
    list(APPEND _spvs ${spv})
  endforeach()
endforeach()
set(_spv_c ${_spv_dir}/sdvk_spirv.c)
add_custom_command(OUTPUT ${_spv_c}
  COMMAND ${CMAKE_COMMAND} -DOUT=${_spv_c} "-DSPV=${_spvs}" -P ${_shader_dir}/embed_spirv.cmake
  DEPENDS ${_spvs} ${_shader_dir}/embed_spirv.cmake
  COMMENT "Embedding SPIR-V"
  VERBATIM)

file(GLOB SDVK_VK_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
# volk.c is Debian's copy (libvulkan-volk-dev); it warns under -Wextra.
set(_volk_c ${CMAKE_BINARY_DIR}/volk_impl.c)
file(CONFIGURE OUTPUT ${_volk_c} CONTENT "#include \"${SDVK_VOLK_DIR}/volk.c\"\n")
set_source_files_properties(${_volk_c} PROPERTIES COMPILE_OPTIONS "-w")
target_sources(sdvk PRIVATE ${SDVK_VK_SOURCES} ${_spv_c} ${_volk_c})
target_include_directories(sdvk PRIVATE ${SDVK_VOLK_DIR})
