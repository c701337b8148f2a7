# qmv_target_defaults(<target>): the compile settings every qmv C (and CUDA) target gets.
# Target-scoped only: nothing here touches global flags, so add_subdirectory users keep theirs.
#
# - C17 without GNU extensions.
# - No FMA contraction and no fast-math: the canonical order (docs/ORDER.md) writes every
#   fused multiply-add explicitly, so the compiler must neither invent nor remove one.
# - CUDA: -fmad=false, IEEE division and square root, no flush-to-zero.
# - Warnings -Wall -Wextra -Wshadow, errors with QMV_WERROR=ON.
# - libm.
function(qmv_target_defaults target)
  set_target_properties(${target} PROPERTIES
    C_STANDARD 17
    C_STANDARD_REQUIRED ON
    C_EXTENSIONS OFF)
  set(_gnu_c "$<AND:$<COMPILE_LANGUAGE:C>,$<C_COMPILER_ID:GNU,Clang,AppleClang>>")
  target_compile_options(${target} PRIVATE
    "$<${_gnu_c}:-ffp-contract=off;-fno-fast-math;-Wall;-Wextra;-Wshadow>"
    "$<$<COMPILE_LANGUAGE:CUDA>:-fmad=false;-ftz=false;-prec-div=true;-prec-sqrt=true>")
  if(QMV_WERROR)
    target_compile_options(${target} PRIVATE
      "$<${_gnu_c}:-Werror>"
      "$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>")
  endif()
  if(UNIX)
    target_link_libraries(${target} PRIVATE m)
  endif()
endfunction()
