/*
 * pack.h - MLX's packed layout: code i of a row occupies bits [i*b, (i+1)*b) of a
 * little-endian bit stream of uint32 words (FORMATS.md §1.5). 3-, 5- and 6-bit codes may
 * straddle two words, so codes are read through a 64-bit window, never per word.
 */
#ifndef QMV_COMMON_PACK_H
#define QMV_COMMON_PACK_H

#include <stdint.h>

/* Code i of a row of `bits`-bit codes. Reads row[(i*bits)/32] and, only when the code
 * straddles, the next word. */
static inline unsigned qmvi_code_get(const uint32_t *row, int64_t i, int bits)
{
    uint64_t bit = (uint64_t)i * (uint64_t)bits;
    uint64_t word = bit >> 5;
    unsigned off = (unsigned)(bit & 31u);
    uint64_t v = row[word] >> off;
    if (off + (unsigned)bits > 32u)
        v |= (uint64_t)row[word + 1] << (32u - off);
    return (unsigned)(v & ((1u << bits) - 1u));
}

/* ORs code c (already < 2^bits) into position i of a zero-initialised row. */
static inline void qmvi_code_put(uint32_t *row, int64_t i, int bits, unsigned c)
{
    uint64_t bit = (uint64_t)i * (uint64_t)bits;
    uint64_t word = bit >> 5;
    unsigned off = (unsigned)(bit & 31u);
    row[word] |= (uint32_t)((uint64_t)c << off);
    if (off + (unsigned)bits > 32u)
        row[word + 1] |= (uint32_t)(c >> (32u - off));
}

#endif /* QMV_COMMON_PACK_H */
