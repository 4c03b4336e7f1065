// Cooperative matrices for sdvk's kernels (matmul_coop.comp,
// attention_coop.comp): one spelling for GL_KHR_cooperative_matrix
// (COOPMAT_KHR=1), GL_NV_cooperative_matrix (COOPMAT_NV=1) and a plain-GLSL
// test double (COOPMAT_EMU=1, coopmat_emu.glsl). Needs the spec constants
// FM, FN, FK (fragment shape) declared by the includer before use.
// Fragments: MAT_A (FM x FK fp16), MAT_B (FK x FN fp16), MAT_C (FM x FN
// fp32); loads and stores work on the kernel's shared uvec4 array `sh`
// (offsets and strides in uvec4 units, 8 fp16 or 4 fp32 each).
#if COOPMAT_KHR
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_cooperative_matrix : require
#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, FM, FK, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, FK, FN, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, FM, FN, gl_MatrixUseAccumulator>
#define CM_ZERO MAT_C(0.0)
#define CM_LOAD_ROW(m, a, off, st) coopMatLoad(m, a, off, st, gl_CooperativeMatrixLayoutRowMajor)
#define CM_LOAD_COL(m, a, off, st) coopMatLoad(m, a, off, st, gl_CooperativeMatrixLayoutColumnMajor)
#define CM_STORE_ROW(m, a, off, st) coopMatStore(m, a, off, st, gl_CooperativeMatrixLayoutRowMajor)
#define CM_MAD(a, b, c) coopMatMulAdd(a, b, c)
#elif COOPMAT_NV
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_NV_cooperative_matrix : require
#define MAT_A fcoopmatNV<16, gl_ScopeSubgroup, FM, FK>
#define MAT_B fcoopmatNV<16, gl_ScopeSubgroup, FK, FN>
#define MAT_C fcoopmatNV<32, gl_ScopeSubgroup, FM, FN>
#define CM_ZERO MAT_C(0.0)
#define CM_LOAD_ROW(m, a, off, st) coopMatLoadNV(m, a, off, st, false)
#define CM_LOAD_COL(m, a, off, st) coopMatLoadNV(m, a, off, st, true)
#define CM_STORE_ROW(m, a, off, st) coopMatStoreNV(m, a, off, st, false)
#define CM_MAD(a, b, c) coopMatMulAddNV(a, b, c)
#elif COOPMAT_EMU
// Test double of the cooperative-matrix operations in plain GLSL, so that
// lavapipe runs everything else of this kernel (tiling, shared layouts,
// offsets and strides, conv gather, epilogue): an A / B "fragment" is its
// (offset, stride) in the shared uvec4 array, read the way the extensions
// define loads (element (i, j) at offset + i * stride + j row-major, or
// + j * stride + i column-major, in units of the array's element; 8 fp16
// per uvec4); an accumulator's FM x FN elements are spread over the
// subgroup's lanes (element e on lane e % subgroup size). Only chosen when
// forced (SDVK_VK_KERNELS=coopmat_emu); needs subgroups of 8 or more.
#define MAT_A EmuAB
#define MAT_B EmuAB
#define MAT_C EmuC
#define CM_ZERO emu_zero()
#define CM_LOAD_ROW(m, a, off, st) m = EmuAB(off, st, 0)
#define CM_LOAD_COL(m, a, off, st) m = EmuAB(off, st, 1)
#define CM_STORE_ROW(m, a, off, st) emu_store(m, off, st)
#define CM_MAD(a, b, c) emu_mad(a, b, c)
#else
#error define COOPMAT_NV, COOPMAT_KHR or COOPMAT_EMU
#endif
