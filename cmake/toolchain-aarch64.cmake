# Cross-compiling for aarch64 Linux with Debian's gcc-aarch64-linux-gnu;
# ctest runs the binaries under qemu-aarch64 (user mode) with the target
# sysroot, so NEON kernels are tested on an x86 host.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(SDVK_AARCH64_SYSROOT /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH ${SDVK_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
find_program(SDVK_QEMU_AARCH64 qemu-aarch64)
if(SDVK_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SDVK_QEMU_AARCH64} -L ${SDVK_AARCH64_SYSROOT})
endif()
