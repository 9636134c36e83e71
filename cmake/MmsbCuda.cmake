# CUDA detection for libmmsb_kernels.
#
# MMSB_WITH_CUDA defaults to ON when a working nvcc is found (check_language(CUDA)), OFF otherwise,
# and OFF in sanitizer builds. Without CUDA everything else builds, and libmmsb_kernels holds the CPU
# reference backend only.
#
# nvcc is looked for on PATH and in /usr/local/cuda/bin. Its host compiler is a GCC the toolkit
# supports (g++-12 on Debian 12, else g++), not the clang-19 that builds the rest: nvcc rejects
# host compilers newer than it knows. Both use libstdc++, so the objects link together.
# Override with CUDACXX / CUDAHOSTCXX or -DCMAKE_CUDA_COMPILER / -DCMAKE_CUDA_HOST_COMPILER.

set(MMSB_CUDA_ARCHITECTURES "90-real;75-virtual" CACHE STRING
    "CUDA targets: sm_90 code plus compute_75 PTX that any newer GPU can JIT")

set(_mmsb_cuda_default OFF)
if(MMSB_SANITIZE STREQUAL "" AND NOT (DEFINED MMSB_WITH_CUDA AND NOT MMSB_WITH_CUDA))
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(MMSB_NVCC nvcc HINTS /usr/local/cuda/bin)
    mark_as_advanced(MMSB_NVCC)
    if(MMSB_NVCC)
      set(ENV{CUDACXX} "${MMSB_NVCC}")
    endif()
  endif()
  if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER AND NOT DEFINED ENV{CUDAHOSTCXX})
    find_program(MMSB_CUDA_HOST_CXX NAMES g++-12 g++)
    mark_as_advanced(MMSB_CUDA_HOST_CXX)
    if(MMSB_CUDA_HOST_CXX)
      set(ENV{CUDAHOSTCXX} "${MMSB_CUDA_HOST_CXX}")
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(_mmsb_cuda_default ON)
  endif()
endif()

option(MMSB_WITH_CUDA "Build the CUDA kernels (default: when nvcc works)" ${_mmsb_cuda_default})

if(MMSB_WITH_CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "MMSB_WITH_CUDA=ON but no working CUDA compiler was found")
  endif()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES ${MMSB_CUDA_ARCHITECTURES})
  endif()
  # Static cudart: test and benchmark binaries run as they are on any machine with a driver.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "MMSB: CUDA kernels ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, host ${CMAKE_CUDA_HOST_COMPILER}, archs ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "MMSB: CUDA kernels OFF (CPU reference backend only)")
endif()
