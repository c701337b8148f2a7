/*
 * qmv_x86.h - the hooks of qmv_simd_driver.h that the x86-64 tiers (qmv_avx2.c, qmv_avx512.c)
 * write alike, on the intrinsics of their register width: QMVX_V(_op) is _mm256_op or
 * _mm512_op. Included by a tier file after qmv_simd_driver.h and after defining
 *   QMVX_VPREFIX          _mm256 or _mm512
 *   wreg_load(p)          QMVD_NL words of a block at p as a qmvd_vi
 *   wreg_pair(lo, hi, h)  the 128-bit lanes of lo and hi that hold words 4h .. 4h+3 of their
 *                         chunks (8-bit codes), paired into one register
 * Internal.
 */
#ifndef QMV_CPU_X86_QMV_X86_H
#define QMV_CPU_X86_QMV_X86_H

#if !defined(QMVX_VPREFIX) || !defined(QMV_SIMD_DRIVER_H)
#error "qmv_x86.h: include qmv_simd_driver.h and define QMVX_VPREFIX first"
#endif

#define QMVX_CAT_(a, b) a##b
#define QMVX_CAT(a, b) QMVX_CAT_(a, b)
#define QMVX_V(op) QMVX_CAT(QMVX_VPREFIX, op) /* QMVX_V(_unpacklo_epi32): the tier's intrinsic */

QMVD_INLINE qmvd_vf qmvd_fzero(void)
{
    return QMVX_V(_setzero_ps)();
}

QMVD_INLINE qmvd_vf qmvd_fload(const float *p)
{
    return QMVX_V(_load_ps)(p);
}

QMVD_INLINE qmvd_vf qmvd_fma(qmvd_vf a, qmvd_vf b, qmvd_vf c)
{
    return QMVX_V(_fmadd_ps)(a, b, c);
}

/* The value table is one register: vpermps picks entry c of it. */
QMVD_INLINE qmvd_lut qmvd_lut_load(const float *lut)
{
    return QMVX_V(_loadu_ps)(lut);
}

QMVD_INLINE void qmvd_prefetch(const void *p)
{
    _mm_prefetch((const char *)p, _MM_HINT_T1);
}

/* In-lane 4x4 transpose of dwords: o[j] lane g dword q = a[q] lane g dword j. */
QMVD_INLINE void qmvx_transpose4(const qmvd_vi a[4], qmvd_vi o[4])
{
    const qmvd_vi t0 = QMVX_V(_unpacklo_epi32)(a[0], a[1]);
    const qmvd_vi t1 = QMVX_V(_unpackhi_epi32)(a[0], a[1]);
    const qmvd_vi t2 = QMVX_V(_unpacklo_epi32)(a[2], a[3]);
    const qmvd_vi t3 = QMVX_V(_unpackhi_epi32)(a[2], a[3]);
    o[0] = QMVX_V(_unpacklo_epi64)(t0, t2);
    o[1] = QMVX_V(_unpackhi_epi64)(t0, t2);
    o[2] = QMVX_V(_unpacklo_epi64)(t1, t3);
    o[3] = QMVX_V(_unpackhi_epi64)(t1, t3);
}

/* W_{4h} .. W_{4h+3} of a 4-bit (h = 0) or 8-bit (h = 0, 1) block without gathers. 4-bit:
 * register q (QMVD_NL words) holds one chunk of 4 words per 128-bit lane, so one transpose
 * gives W_0..W_3. 8-bit: the 128-bit lanes with words 4h .. 4h+3 of registers q and q + 4 are
 * paired first (wreg_pair). The transposes leave the chunks in the tier's permuted lane order
 * (its chunk_of_lane). */
QMVD_INLINE void qmvd_w_quad(const uint32_t *blk, int bits, int h, qmvd_vi *W)
{
    qmvd_vi a[4];
    for (int q = 0; q < 4; q++) {
        const qmvd_vi lo = wreg_load(blk + QMVD_NL * q);
        a[q] = bits == 4 ? lo : wreg_pair(lo, wreg_load(blk + QMVD_NL * (q + 4)), h);
    }
    qmvx_transpose4(a, W);
}

#endif /* QMV_CPU_X86_QMV_X86_H */
