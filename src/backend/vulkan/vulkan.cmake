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
# One SPIR-V: glslang -> (spirv-opt) -> spirv-val (a failure breaks the build).
function(sdvk_spirv out_var name comp defs)
  set(spv ${_spv_dir}/${name}.spv)
  set(opt_cmd "")
  if(SDVK_SPIRV_OPT)
    set(opt_cmd COMMAND ${SDVK_SPIRV_OPT} -O ${spv}.raw -o ${spv}.raw)
  endif()
  set(d "")
  foreach(x ${defs})
    list(APPEND d -D${x})
  endforeach()
  add_custom_command(OUTPUT ${spv}
    COMMAND ${SDVK_GLSLANG} --target-env vulkan1.1 -V ${d} -I${_shader_dir} -I${_spv_dir} -o ${spv}.raw ${comp}
    ${opt_cmd}
    COMMAND ${SDVK_SPIRV_VAL} --target-env vulkan1.1 ${spv}.raw
    COMMAND ${CMAKE_COMMAND} -E rename ${spv}.raw ${spv}
    DEPENDS ${comp} ${_sdvk_glsl} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/vk_kernels.def
    COMMENT "SPIR-V ${name}"
    VERBATIM)
  set(${out_var} ${${out_var}} ${spv} PARENT_SCOPE)
endfunction()

# What the found compiler can build beyond core GLSL: cooperative matrices
# (GL_NV_cooperative_matrix since glslang 7.11; GL_KHR_cooperative_matrix
# since glslang 13, and a spirv-val that knows SPV_KHR_cooperative_matrix).
# A test shader per extension, compiled and validated now, as llama.cpp's
# ggml-vulkan does; the variants that need what fails are left out.
function(sdvk_feature_test var ext body)
  set(dir ${CMAKE_BINARY_DIR}/shader_feature_tests)
  file(MAKE_DIRECTORY ${dir})
  file(WRITE ${dir}/${var}.comp "#version 450\n#extension ${ext} : require\n#extension GL_KHR_memory_scope_semantics : require\n#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require\nlayout(local_size_x = 32) in;\nlayout(constant_id = 0) const uint FM = 16;\nlayout(std430, binding = 0) buffer O { float o[]; };\nshared uvec4 sh[256];\nvoid main() {\n${body}\n}\n")
  execute_process(COMMAND ${SDVK_GLSLANG} --target-env vulkan1.1 -V ${dir}/${var}.comp -o ${dir}/${var}.spv
    RESULT_VARIABLE rc1 OUTPUT_VARIABLE out1 ERROR_VARIABLE out1)
  set(rc2 1)
  if(rc1 EQUAL 0)
    execute_process(COMMAND ${SDVK_SPIRV_VAL} --target-env vulkan1.1 ${dir}/${var}.spv
      RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2 ERROR_VARIABLE out2)
  endif()
  if(rc2 EQUAL 0 AND SDVK_SPIRV_OPT) # the build optimises every shader too
    execute_process(COMMAND ${SDVK_SPIRV_OPT} -O ${dir}/${var}.spv -o ${dir}/${var}.opt.spv
      RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2 ERROR_VARIABLE out2)
    if(NOT rc2 EQUAL 0)
      set(out2 "spirv-opt: ${out2}")
    endif()
  endif()
  if(rc1 EQUAL 0 AND rc2 EQUAL 0)
    set(${var} ON PARENT_SCOPE)
    set(${var}_WHY "" PARENT_SCOPE)
  elseif(NOT rc1 EQUAL 0)
    set(${var} OFF PARENT_SCOPE)
    set(${var}_WHY "${SDVK_GLSLANG} cannot compile ${ext}" PARENT_SCOPE)
  else()
    set(${var} OFF PARENT_SCOPE)
    string(REGEX REPLACE "\n.*" "" out2 "${out2}")
    set(${var}_WHY "the SPIRV-Tools found reject its SPIR-V (${out2})" PARENT_SCOPE)
  endif()
endfunction()
sdvk_feature_test(SDVK_GLSL_COOPMAT_NV GL_NV_cooperative_matrix
  "fcoopmatNV<16, gl_ScopeSubgroup, FM, 16> a; fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> b;\nfcoopmatNV<32, gl_ScopeSubgroup, FM, 16> c = fcoopmatNV<32, gl_ScopeSubgroup, FM, 16>(0.0);\ncoopMatLoadNV(a, sh, 0, 2, false); coopMatLoadNV(b, sh, 64, 2, true);\nc = coopMatMulAddNV(a, b, c); coopMatStoreNV(c, o, 0, 16, false);")
sdvk_feature_test(SDVK_GLSL_COOPMAT_KHR GL_KHR_cooperative_matrix
  "coopmat<float16_t, gl_ScopeSubgroup, FM, 16, gl_MatrixUseA> a; coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB> b;\ncoopmat<float, gl_ScopeSubgroup, FM, 16, gl_MatrixUseAccumulator> c = coopmat<float, gl_ScopeSubgroup, FM, 16, gl_MatrixUseAccumulator>(0.0);\ncoopMatLoad(a, sh, 0, 2, gl_CooperativeMatrixLayoutRowMajor); coopMatLoad(b, sh, 64, 2, gl_CooperativeMatrixLayoutColumnMajor);\nc = coopMatMulAdd(a, b, c); coopMatStore(c, o, 0, 16, gl_CooperativeMatrixLayoutRowMajor);")

# The matmul / conv2d variants: one SPIR-V per row of vk_kernels.def and
# precision, with the row's tile as macros (the host reads the same row).
set(_kdef ${CMAKE_CURRENT_LIST_DIR}/vk_kernels.def)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_kdef})
file(STRINGS ${_kdef} _k_lines REGEX "^SD_VK_KERNEL\\(")
set(_k_sources "")
set(_k_built "")
set(_k_skipped "")
foreach(l ${_k_lines})
  # (CMake keeps 9 groups: the family, for the host only, is not captured)
  string(REGEX MATCH "^SD_VK_KERNEL\\(([A-Z0-9_]+), *[a-z_]+, *([a-z_0-9]+), *([0-9]+), *([0-9]+), *([0-9]+), *([0-9]+), *([A-Z_]+), *([A-Z0-9_]+), *\"([^\"]*)\"\\)" _m "${l}")
  if(NOT _m)
    message(FATAL_ERROR "vk_kernels.def: cannot parse: ${l}")
  endif()
  set(_id ${CMAKE_MATCH_1})
  set(_src ${CMAKE_MATCH_2})
  set(_defs BM=${CMAKE_MATCH_3} BN=${CMAKE_MATCH_4} BK=${CMAKE_MATCH_5} WG=${CMAKE_MATCH_6})
  set(_needs ${CMAKE_MATCH_7})
  set(_prec ${CMAKE_MATCH_8})
  string(REPLACE " " ";" _extra "${CMAKE_MATCH_9}")
  list(APPEND _defs ${_extra})
  list(APPEND _k_sources ${_shader_dir}/${_src}.comp)
  if(_needs STREQUAL "COOPMAT_NV" AND NOT SDVK_GLSL_COOPMAT_NV)
    list(APPEND _k_skipped "${_id} (${SDVK_GLSL_COOPMAT_NV_WHY})")
    continue()
  endif()
  if(_needs STREQUAL "COOPMAT_KHR" AND NOT SDVK_GLSL_COOPMAT_KHR)
    list(APPEND _k_skipped "${_id} (${SDVK_GLSL_COOPMAT_KHR_WHY})")
    continue()
  endif()
  string(TOLOWER "${_id}" _name)
  set(_precs f16)
  if(_prec STREQUAL "F32_F16")
    set(_precs f32 f16)
  endif()
  foreach(p ${_precs})
    if(p STREQUAL "f16")
      set(_pd F16=1)
    else()
      set(_pd F16=0)
    endif()
    sdvk_spirv(_spvs ${_name}.${p} ${_shader_dir}/${_src}.comp "${_defs};${_pd}")
  endforeach()
  list(APPEND _k_built ${_id})
endforeach()
string(REPLACE ";" " " _k_built_s "${_k_built}")
message(STATUS "sdvk Vulkan matmul/conv kernels built: ${_k_built_s}")
foreach(s ${_k_skipped})
  message(STATUS "sdvk Vulkan kernel not built: ${s}")
endforeach()
if(_k_skipped)
  message(STATUS "  (point SDVK_GLSLANG / SDVK_SPIRV_VAL at newer tools, e.g. the LunarG SDK's, to build them)")
endif()

# Every other shader: f32 and f16, no extra macros.
foreach(comp ${_sdvk_comps})
  if(comp IN_LIST _k_sources)
    continue()
  endif()
  get_filename_component(name ${comp} NAME_WE)
  sdvk_spirv(_spvs ${name}.f32 ${comp} "F16=0")
  sdvk_spirv(_spvs ${name}.f16 ${comp} "F16=1")
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
