# The shared library inside the Python package (pip install ., pyproject.toml): one file,
# named after its soname, beside python/qmv/*.py, where qmv/_capi.py loads it. Wheels cannot
# hold symlinks, so the versioned name chain of a normal install is not reproduced.
# Included from the root CMakeLists.txt when scikit-build-core drives the build (SKBUILD).
get_target_property(_qmv_py_type qmv TYPE)
if(NOT _qmv_py_type STREQUAL "SHARED_LIBRARY")
  message(FATAL_ERROR "qmv: the Python package needs the shared library (BUILD_SHARED_LIBS=ON)")
endif()
install(FILES "$<TARGET_FILE:qmv>" DESTINATION qmv
        RENAME "${CMAKE_SHARED_LIBRARY_PREFIX}qmv${CMAKE_SHARED_LIBRARY_SUFFIX}.${QMV_SOVERSION}"
        COMPONENT qmv_python)
