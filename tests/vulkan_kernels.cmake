# The Vulkan matmul kernel choice on faked device properties (no device, no
# Vulkan headers needed: vk_kernels.c is plain C, compiled in directly).
add_executable(test_vk_kernels ${CMAKE_CURRENT_SOURCE_DIR}/test_vk_kernels.c
  ${CMAKE_SOURCE_DIR}/src/backend/vulkan/vk_kernels.c)
target_include_directories(test_vk_kernels PRIVATE ${CMAKE_SOURCE_DIR}/src)
add_test(NAME vulkan_kernel_choice COMMAND test_vk_kernels)
set_tests_properties(vulkan_kernel_choice PROPERTIES LABELS "vulkan;unit")
