/*
 * fuzz_helpers.h - what every qmv fuzz harness shares (docs: STYLE.md section 4):
 *
 * - QMV_FUZZ_ASSERT: always on (also with NDEBUG), prints the failed property and aborts, so
 *   libFuzzer records the input as a crash and the regression driver fails.
 * - qf_producer: a zstd-style data producer. Parameters are consumed from the END of the
 *   input, the payload (matrix bytes) is taken from the start, so a mutation of the payload
 *   does not shift the parameters and vice versa.
 * - qf_buf: buffers placed against guard pages (mmap, PROT_NONE neighbours, as libdeflate's
 *   fuzzers do). The buffer's last byte is the last byte before the upper guard page (up to
 *   align-1 bytes of slack); under ASan the slack on both sides is poisoned as well, so any
 *   access outside [p, p + n) faults deterministically, with or without a sanitizer.
 * - Poison helpers: outputs are filled with a pattern before a call and compared after, so
 *   "nothing is written on error" (qmv.h) is checked byte for byte.
 */
#ifndef QMV_FUZZ_HELPERS_H
#define QMV_FUZZ_HELPERS_H

/* mmap/MAP_ANONYMOUS under -std=c17 (include this header first). */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmv.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define QF_HAVE_MMAP 1
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QF_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define QF_ASAN 1
#endif
#ifdef QF_ASAN
#include <sanitizer/asan_interface.h>
#define QF_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define QF_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define QF_POISON(p, n) ((void)(p), (void)(n))
#define QF_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- Assertions ---------------------------------------------------------------------- */

#define QMV_FUZZ_ASSERT(cond, ...)                                                          \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: property failed: %s\n  ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n  last error: %s\n", qmv_last_error());                     \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* Every status qmv.h documents. */
static inline int qf_status_documented(qmv_status st)
{
    return (unsigned)st <= (unsigned)QMV_STATUS_OVERFLOW;
}

/* ---- Data producer (zstd tests/fuzz/fuzz_data_producer.c style) ---------------------- */

typedef struct {
    const uint8_t *data;
    size_t size; /* bytes not consumed yet: parameters come off the end */
} qf_producer;

static inline qf_producer qf_producer_make(const uint8_t *data, size_t size)
{
    qf_producer p = {data, size};
    return p;
}

/* A value in [min, max], consuming as many bytes from the end as the range needs; 0 bytes
 * left gives min. */
static inline uint32_t qf_u32_range(qf_producer *p, uint32_t min, uint32_t max)
{
    if (min >= max)
        return min;
    uint32_t range = max - min, v = 0;
    for (uint32_t bits = 0; bits < 32 && (range >> bits) != 0 && p->size; bits += 8)
        v = (v << 8) | p->data[--p->size];
    if (range != UINT32_MAX)
        v %= range + 1;
    return min + v;
}

static inline uint32_t qf_u32(qf_producer *p)
{
    return qf_u32_range(p, 0, UINT32_MAX);
}

static inline int qf_bool(qf_producer *p)
{
    return (int)qf_u32_range(p, 0, 1);
}

/* Picks one of n values. */
#define QF_PICK(p, arr) ((arr)[qf_u32_range((p), 0, (uint32_t)(sizeof(arr) / sizeof((arr)[0]) - 1))])

/* A supported format drawn from the input: a mode, then for affine its bits and group size. */
static inline qmv_format qf_draw_format(qf_producer *p)
{
    static const int affine_bits[] = {2, 3, 4, 5, 6, 8, 1};
    static const int affine_groups[] = {32, 64, 128};
    qmv_format f;
    const qmv_mode mode = (qmv_mode)qf_u32_range(p, 0, QMV_MODE_COUNT - 1);
    qmv_format_default(mode, &f);
    if (mode == QMV_MODE_AFFINE) {
        f.bits = QF_PICK(p, affine_bits);
        f.group_size = QF_PICK(p, affine_groups);
    }
    return f;
}

/* Fills dst[0..n) from the payload (the unconsumed prefix), cycling it; zeros if none. The
 * payload is not consumed: parameters are drawn before, so it is whatever is left. */
static inline void qf_fill(const qf_producer *p, size_t *cursor, void *dst, size_t n)
{
    uint8_t *d = (uint8_t *)dst;
    if (!p->size) {
        memset(d, 0, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        d[i] = p->data[*cursor % p->size];
        (*cursor)++;
    }
}

/* ---- Guard-page buffers -------------------------------------------------------------- */

typedef struct {
    uint8_t *p;  /* the buffer, n bytes, never NULL (n == 0 points at the guard page) */
    size_t n;
    void *map;
    size_t map_len;
} qf_buf;

static inline size_t qf_page(void)
{
#ifdef QF_HAVE_MMAP
    static size_t pg;
    if (!pg)
        pg = (size_t)sysconf(_SC_PAGESIZE);
    return pg;
#else
    return 4096;
#endif
}

/* n bytes aligned to `align` (a power of two <= 16), ending within align-1 bytes of a guard
 * page. Aborts on allocation failure (inputs are kept small, so that is a harness bug). */
static inline qf_buf qf_alloc(size_t n, size_t align)
{
    qf_buf b = {0};
    const size_t pg = qf_page();
    const size_t body = (n + pg - 1) / pg * pg;
    b.n = n;
#ifdef QF_HAVE_MMAP
    b.map_len = body + 2 * pg;
    void *m = mmap(NULL, b.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        fprintf(stderr, "qf_alloc: mmap of %zu bytes failed\n", b.map_len);
        abort();
    }
    b.map = m;
    uint8_t *lo = (uint8_t *)m + pg, *hi = lo + body;
    if (mprotect(m, pg, PROT_NONE) || mprotect(hi, pg, PROT_NONE)) {
        fprintf(stderr, "qf_alloc: mprotect failed\n");
        abort();
    }
    b.p = (uint8_t *)(((uintptr_t)hi - n) & ~(uintptr_t)(align - 1));
    QF_POISON(lo, (size_t)(b.p - lo));
    QF_POISON(b.p + n, (size_t)(hi - (b.p + n)));
#else
    (void)align;
    b.map_len = n ? n : 1;
    b.map = malloc(b.map_len);
    if (!b.map)
        abort();
    b.p = (uint8_t *)b.map;
#endif
    return b;
}

static inline void qf_free(qf_buf *b)
{
    if (!b->map)
        return;
#ifdef QF_HAVE_MMAP
    QF_UNPOISON((uint8_t *)b->map + qf_page(), b->map_len - 2 * qf_page());
    munmap(b->map, b->map_len);
#else
    free(b->map);
#endif
    b->map = NULL;
    b->p = NULL;
}

/* The poison pattern written into outputs before a call. */
#define QF_POISON_BYTE 0xA5u

static inline void qf_poison(qf_buf *b)
{
    memset(b->p, QF_POISON_BYTE, b->n);
}

/* 1 when every byte of [p, p+n) still holds the poison pattern. */
static inline int qf_is_poisoned(const void *p, size_t n)
{
    const uint8_t *q = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++)
        if (q[i] != QF_POISON_BYTE)
            return 0;
    return 1;
}

/* ---- Float bits ---------------------------------------------------------------------- */

static inline uint32_t qf_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float qf_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Element i of a buffer of dtype t as a float32 (exact widening: fp16/bf16 bit code). */
static inline float qf_load(qmv_dtype t, const void *p, size_t i)
{
    if (t == QMV_DTYPE_F32) {
        float f;
        memcpy(&f, (const uint8_t *)p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const uint8_t *)p + 2 * i, 2);
    if (t == QMV_DTYPE_BF16)
        return qf_f32((uint32_t)h << 16);
    /* binary16 -> binary32 */
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F)
        return qf_f32(s | 0x7F800000u | (m << 13));
    if (e == 0) {
        if (!m)
            return qf_f32(s);
        float v = (float)m * 0x1p-24f;
        return s ? -v : v;
    }
    return qf_f32(s | ((e + 112u) << 23) | (m << 13));
}

#endif /* QMV_FUZZ_HELPERS_H */
