# The CUDA backend's own export set: installs the project's main build tree (with qmv::cuda
# when it was built with CUDA) into a scratch prefix and configures the find_package consumer
#   1. with the CUDA toolkit made unfindable (CMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit): a
#      CPU-only consumer must find qmv, build and run the README example;
#   2. where qmv::cuda was built, asking for the cuda component with the toolkit findable:
#      qmv::cuda must be defined.
#
# cmake -DBUILD_DIR=<main build> -DWORK_DIR=<scratch> -DHAVE_CUDA=ON|OFF -DQMV_SOURCE_DIR=<src>
#       -DQMV_VERSION=x.y.z [-DGENERATOR=<gen>] [-DMAKE_PROGRAM=<prog>] [-DC_COMPILER=<cc>]
#       -P cuda_split.cmake
cmake_minimum_required(VERSION 3.21)

foreach(var BUILD_DIR WORK_DIR QMV_SOURCE_DIR QMV_VERSION)
  if(NOT ${var})
    message(FATAL_ERROR "cuda_split.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT C_COMPILER)
  set(C_COMPILER cc)
endif()

function(step what)
  message(STATUS "[install-cuda-split] ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "[install-cuda-split] ${what} failed (${rc}):\n  ${cmd}")
  endif()
endfunction()

set(here "${CMAKE_CURRENT_LIST_DIR}")
set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(gen_args "-DCMAKE_C_COMPILER=${C_COMPILER}" -DCMAKE_BUILD_TYPE=Release)
if(GENERATOR)
  list(PREPEND gen_args -G "${GENERATOR}")
endif()
if(MAKE_PROGRAM)
  list(APPEND gen_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
string(REGEX MATCH "^[0-9]+\\.[0-9]+" major_minor "${QMV_VERSION}")

step("install the build tree" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
file(GLOB cuda_targets "${prefix}/lib*/cmake/qmv/qmvCudaTargets.cmake")
if(HAVE_CUDA AND NOT cuda_targets)
  message(FATAL_ERROR "a CUDA build installed no qmvCudaTargets.cmake")
endif()

step("configure a CPU-only consumer without the CUDA toolkit" "${CMAKE_COMMAND}"
     -S "${here}/find_package" -B "${WORK_DIR}/cpu_only" ${gen_args}
     "-DCMAKE_PREFIX_PATH=${prefix}" "-DQMV_WANT_VERSION=${major_minor}"
     "-DQMV_EXAMPLE=${QMV_SOURCE_DIR}/tests/example_readme.c"
     -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON)
step("build the CPU-only consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/cpu_only")
step("run the CPU-only consumer" "${WORK_DIR}/cpu_only/consumer")

if(HAVE_CUDA)
  step("configure a consumer of the cuda component" "${CMAKE_COMMAND}"
       -S "${here}/find_package" -B "${WORK_DIR}/cuda" ${gen_args}
       "-DCMAKE_PREFIX_PATH=${prefix}" "-DQMV_WANT_VERSION=${major_minor}"
       "-DQMV_EXAMPLE=${QMV_SOURCE_DIR}/tests/example_readme.c" -DQMV_EXPECT_CUDA=ON)
endif()
message(STATUS "[install-cuda-split] passed (CUDA backend in this build: ${HAVE_CUDA})")
