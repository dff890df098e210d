# Cross-compiling for 64-bit ARM Linux with the Debian/Ubuntu GNU toolchain
# (apt-get install g++-aarch64-linux-gnu qemu-user). Usage:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=scripts/toolchain-aarch64.cmake -DFLASHDIP_TESTS=ON
# Run the results with: qemu-aarch64 -L /usr/aarch64-linux-gnu [-cpu max|cortex-a72] build-arm64/test_kernels
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(FLASHDIP_CROSS_PREFIX "aarch64-linux-gnu-" CACHE STRING "Cross toolchain prefix")
set(CMAKE_C_COMPILER ${FLASHDIP_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${FLASHDIP_CROSS_PREFIX}g++)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Lets CMake run cross-built test executables (e.g. try_run, ctest) through qemu.
find_program(FLASHDIP_QEMU_AARCH64 qemu-aarch64)
if(FLASHDIP_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FLASHDIP_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
endif()
