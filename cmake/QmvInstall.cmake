# Install rules, the exported CMake package (find_package(qmv CONFIG)) and qmv.pc.
# Included from the root CMakeLists.txt when QMV_INSTALL is ON.
include(CMakePackageConfigHelpers)

set(QMV_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/qmv"
    CACHE STRING "Where to install qmvConfig.cmake, relative to the prefix")
mark_as_advanced(QMV_INSTALL_CMAKEDIR)

install(TARGETS qmv EXPORT qmvTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT qmv_development
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT qmv_runtime
          NAMELINK_COMPONENT qmv_development
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT qmv_runtime)
install(FILES "${PROJECT_SOURCE_DIR}/include/qmv.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT qmv_development)

if(QMV_HAVE_CUDA)
  # Its own export set (qmvCudaTargets.cmake), loaded only for the cuda component.
  install(TARGETS qmv_cuda EXPORT qmvCudaTargets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT qmv_development
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT qmv_runtime
            NAMELINK_COMPONENT qmv_development
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT qmv_runtime)
  if(EXISTS "${PROJECT_SOURCE_DIR}/include/qmv_cuda.h")
    install(FILES "${PROJECT_SOURCE_DIR}/include/qmv_cuda.h"
            DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT qmv_development)
  endif()
endif()

# ---- CMake package ----
# A static libqmv.a carries $<LINK_ONLY:OpenMP::OpenMP_C>, so its consumers need OpenMP found.
# (Computed here, not tested in the template: @BUILD_SHARED_LIBS@ is empty when unset.)
if(QMV_HAVE_OPENMP AND NOT _qmv_type STREQUAL "SHARED_LIBRARY")
  set(QMV_CONFIG_FIND_OPENMP ON)
else()
  set(QMV_CONFIG_FIND_OPENMP OFF)
endif()

install(EXPORT qmvTargets NAMESPACE qmv:: FILE qmvTargets.cmake
        DESTINATION "${QMV_INSTALL_CMAKEDIR}" COMPONENT qmv_development)
if(QMV_HAVE_CUDA)
  install(EXPORT qmvCudaTargets NAMESPACE qmv:: FILE qmvCudaTargets.cmake
          DESTINATION "${QMV_INSTALL_CMAKEDIR}" COMPONENT qmv_development)
endif()
# The same package from the build tree, without installing: find_package(qmv CONFIG) with
# qmv_DIR set to the build directory (qmvConfig.cmake below sits beside these files).
export(EXPORT qmvTargets NAMESPACE qmv:: FILE "${PROJECT_BINARY_DIR}/qmvTargets.cmake")
if(QMV_HAVE_CUDA)
  export(EXPORT qmvCudaTargets NAMESPACE qmv:: FILE "${PROJECT_BINARY_DIR}/qmvCudaTargets.cmake")
endif()
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/qmvConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/qmvConfig.cmake"
  INSTALL_DESTINATION "${QMV_INSTALL_CMAKEDIR}")
# Before 1.0 a minor release may break the ABI, so only the same minor version is compatible.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/qmvConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/qmvConfig.cmake" "${PROJECT_BINARY_DIR}/qmvConfigVersion.cmake"
        DESTINATION "${QMV_INSTALL_CMAKEDIR}" COMPONENT qmv_development)

# ---- pkg-config ----
# Relocatable: prefix is found from the .pc file's own directory (${pcfiledir}, which pkg-config
# and pkgconf set), so `cmake --install --prefix P` and a moved tree give right paths for any P.
# Paths are relative to ${prefix} unless the install dirs are absolute; an absolute libdir pins
# the prefix too.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(QMV_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _qmv_pc_up "/qmv_prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/qmv_prefix")
  string(REGEX REPLACE "/$" "" _qmv_pc_up "${_qmv_pc_up}")
  set(QMV_PC_PREFIX "\${pcfiledir}/${_qmv_pc_up}")
endif()
foreach(_qmv_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_qmv_dir}}")
    set(QMV_PC_${_qmv_dir} "${CMAKE_INSTALL_${_qmv_dir}}")
  else()
    set(QMV_PC_${_qmv_dir} "\${prefix}/${CMAKE_INSTALL_${_qmv_dir}}")
  endif()
endforeach()

# Libs.private: what a static libqmv.a needs at link time (pkg-config --static).
set(QMV_PC_LIBS_PRIVATE "")
if(QMV_HAVE_OPENMP)
  string(APPEND QMV_PC_LIBS_PRIVATE " ${OpenMP_C_FLAGS}")
endif()
if(UNIX)
  string(APPEND QMV_PC_LIBS_PRIVATE " -lm")
endif()
string(STRIP "${QMV_PC_LIBS_PRIVATE}" QMV_PC_LIBS_PRIVATE)

configure_file("${PROJECT_SOURCE_DIR}/cmake/qmv.pc.in" "${PROJECT_BINARY_DIR}/qmv.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/qmv.pc"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig" COMPONENT qmv_development)

if(QMV_HAVE_CUDA)
  set(QMV_PC_CUDA_CFLAGS "")
  foreach(_qmv_inc IN LISTS CUDAToolkit_INCLUDE_DIRS)
    string(APPEND QMV_PC_CUDA_CFLAGS " -I${_qmv_inc}")
  endforeach()
  set(QMV_PC_CUDA_LIBS_PRIVATE "")
  if(NOT _qmv_type STREQUAL "SHARED_LIBRARY" AND "stdc++" IN_LIST CMAKE_CUDA_IMPLICIT_LINK_LIBRARIES)
    set(QMV_PC_CUDA_LIBS_PRIVATE "-lstdc++")
  endif()
  configure_file("${PROJECT_SOURCE_DIR}/cmake/qmv-cuda.pc.in" "${PROJECT_BINARY_DIR}/qmv-cuda.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/qmv-cuda.pc"
          DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig" COMPONENT qmv_development)
endif()
