# Installs qmv into a scratch prefix (configured for another, then moved) and builds consumer projects against it:
#   find_package/   find_package(qmv CONFIG REQUIRED) + qmv::qmv, from the installed tree and
#                   from the build tree (export())
#   pkgconfig/      a plain Makefile using pkg-config
#   subdirectory/   add_subdirectory(<qmv source>) + qmv::qmv (static variant only)
# Each consumer builds and runs tests/example_readme.c, the README's API example.
#
# cmake -DQMV_SOURCE_DIR=<src> -DWORK_DIR=<scratch> -DVARIANT=static|shared -DQMV_VERSION=x.y.z
#       [-DGENERATOR=<gen>] [-DMAKE_PROGRAM=<prog>] [-DC_COMPILER=<cc>] [-DWERROR=ON|OFF]
#       -P run.cmake
cmake_minimum_required(VERSION 3.21)

foreach(var QMV_SOURCE_DIR WORK_DIR VARIANT QMV_VERSION)
  if(NOT ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT VARIANT MATCHES "^(static|shared)$")
  message(FATAL_ERROR "run.cmake: VARIANT must be static or shared")
endif()
if(NOT C_COMPILER)
  set(C_COMPILER cc)
endif()
if(NOT WERROR)
  set(WERROR OFF)
endif()

function(step what)
  message(STATUS "[install-test ${VARIANT}] ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "[install-test ${VARIANT}] ${what} failed (${rc}):\n  ${cmd}")
  endif()
endfunction()

set(here "${CMAKE_CURRENT_LIST_DIR}")
set(example "${QMV_SOURCE_DIR}/tests/example_readme.c")
# qmv is configured for one prefix, installed into another with --prefix, and the installed
# tree is then moved: every consumer below uses the moved tree, so the CMake package and qmv.pc
# must find their files relative to themselves.
set(configured_prefix "${WORK_DIR}/configured-prefix") # never written
set(install_prefix "${WORK_DIR}/install-prefix")
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
if(VARIANT STREQUAL "shared")
  set(shared ON)
else()
  set(shared OFF)
endif()

# ---- Build and install qmv ----
step("configure qmv" "${CMAKE_COMMAND}" -S "${QMV_SOURCE_DIR}" -B "${WORK_DIR}/build" ${gen_args}
     "-DCMAKE_INSTALL_PREFIX=${configured_prefix}" "-DBUILD_SHARED_LIBS=${shared}"
     "-DQMV_WERROR=${WERROR}" -DQMV_BUILD_TESTS=OFF -DQMV_BUILD_TOOLS=OFF -DQMV_CUDA=OFF)
step("build qmv" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --parallel 2)
step("install qmv" "${CMAKE_COMMAND}" --install "${WORK_DIR}/build" --prefix "${install_prefix}")
file(RENAME "${install_prefix}" "${prefix}")
if(EXISTS "${configured_prefix}")
  message(FATAL_ERROR "cmake --install --prefix wrote into the configured prefix ${configured_prefix}")
endif()

file(GLOB pc_file "${prefix}/lib*/pkgconfig/qmv.pc")
file(GLOB config_file "${prefix}/lib*/cmake/qmv/qmvConfig.cmake")
if(NOT EXISTS "${prefix}/include/qmv.h" OR NOT pc_file OR NOT config_file)
  message(FATAL_ERROR "install is missing qmv.h, qmv.pc or qmvConfig.cmake under ${prefix}")
endif()
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
get_filename_component(libdir "${pc_dir}" DIRECTORY)
if(shared)
  file(GLOB lib "${libdir}/libqmv.so*")
else()
  file(GLOB lib "${libdir}/libqmv.a")
endif()
if(NOT lib)
  message(FATAL_ERROR "install has no ${VARIANT} libqmv in ${libdir}")
endif()

# ---- find_package consumer ----
string(REGEX MATCH "^[0-9]+\\.[0-9]+" major_minor "${QMV_VERSION}")
step("configure find_package consumer" "${CMAKE_COMMAND}" -S "${here}/find_package"
     -B "${WORK_DIR}/find_package" ${gen_args} "-DCMAKE_PREFIX_PATH=${prefix}"
     "-DQMV_WANT_VERSION=${major_minor}" "-DQMV_EXAMPLE=${example}")
step("build find_package consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/find_package")
step("run find_package consumer" "${WORK_DIR}/find_package/consumer")

# ---- find_package consumer of the build tree (export(): qmv_DIR is the build directory) ----
step("configure build-tree find_package consumer" "${CMAKE_COMMAND}" -S "${here}/find_package"
     -B "${WORK_DIR}/find_package_build_tree" ${gen_args} "-Dqmv_DIR=${WORK_DIR}/build"
     "-DQMV_WANT_VERSION=${major_minor}" "-DQMV_EXAMPLE=${example}")
step("build build-tree find_package consumer" "${CMAKE_COMMAND}" --build
     "${WORK_DIR}/find_package_build_tree")
step("run build-tree find_package consumer" "${WORK_DIR}/find_package_build_tree/consumer")

# ---- pkg-config consumer (shared: plain --libs must be enough) ----
find_program(MAKE_EXE NAMES gmake make REQUIRED)
find_program(PKG_CONFIG_EXE NAMES pkg-config pkgconf REQUIRED)
if(shared)
  set(pc_libs "PC_LIBS=--libs")
else()
  set(pc_libs "PC_LIBS=--libs --static")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${pc_dir}"
                        "${PKG_CONFIG_EXE}" --modversion qmv
                OUTPUT_VARIABLE pc_version OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT pc_version STREQUAL QMV_VERSION)
  message(FATAL_ERROR "pkg-config --modversion qmv gave '${pc_version}', expected ${QMV_VERSION}")
endif()
# qmv.pc's directories are those of the moved tree, not of either prefix qmv was built for.
foreach(var includedir libdir)
  execute_process(COMMAND "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${pc_dir}"
                          "${PKG_CONFIG_EXE}" --variable=${var} qmv
                  OUTPUT_VARIABLE pc_dir_value OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(var STREQUAL "includedir")
    set(want "${prefix}/include")
  else()
    set(want "${libdir}")
  endif()
  file(REAL_PATH "${want}" want)
  if(NOT IS_DIRECTORY "${pc_dir_value}")
    message(FATAL_ERROR "pkg-config --variable=${var} qmv gave '${pc_dir_value}', not a directory "
                        "(qmv.pc is not relocatable; expected ${want})")
  endif()
  file(REAL_PATH "${pc_dir_value}" got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "pkg-config --variable=${var} qmv gave '${pc_dir_value}' = ${got}, "
                        "expected ${want}")
  endif()
endforeach()
file(MAKE_DIRECTORY "${WORK_DIR}/pkgconfig")
step("build pkg-config consumer" "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${pc_dir}"
     "${MAKE_EXE}" -C "${here}/pkgconfig" "CC=${C_COMPILER}" "PKG_CONFIG=${PKG_CONFIG_EXE}"
     "${pc_libs}" "SRC=${example}" "OUT=${WORK_DIR}/pkgconfig/consumer")
step("run pkg-config consumer" "${CMAKE_COMMAND}" -E env "LD_LIBRARY_PATH=${libdir}"
     "${WORK_DIR}/pkgconfig/consumer")

# ---- add_subdirectory consumer ----
if(NOT shared)
  step("configure add_subdirectory consumer" "${CMAKE_COMMAND}" -S "${here}/subdirectory"
       -B "${WORK_DIR}/subdirectory" ${gen_args} "-DQMV_SOURCE_DIR=${QMV_SOURCE_DIR}"
       "-DQMV_EXAMPLE=${example}" "-DQMV_WERROR=${WERROR}")
  step("build add_subdirectory consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/subdirectory"
       --parallel 2)
  step("run add_subdirectory consumer" "${WORK_DIR}/subdirectory/consumer")
endif()

message(STATUS "[install-test ${VARIANT}] all consumers built and ran")
