/*
 * detect.c - whether this processor and operating system run the x86-64 kernel sets: CPUID
 * through __builtin_cpu_supports, which also checks that the OS saves the wider registers.
 * Compiled without ISA flags, so it runs anywhere.
 */
#include "x86_kernels.h"

#if defined(QMVI_HAVE_AVX2)
int qmvi_x86_runs_avx2(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
#endif

#if defined(QMVI_HAVE_AVX512)
int qmvi_x86_runs_avx512(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
#endif

typedef int qmvi_x86_detect_nonempty; /* ISO C forbids an empty translation unit */
