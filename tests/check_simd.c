/*
 * check_simd.c - the CPU tiers of qmv_qmv() (issue 4).
 *
 * 1. Tier selection: qmv_cpu_tiers_supported() is exactly what this build compiled and the
 *    processor runs (CPUID through __builtin_cpu_supports), qmv_cpu_tier_select(0) is the best
 *    of it, a per-call mask narrows it, an exec from an older header (struct_size ending before
 *    cpu_tiers) gets the default, and the QMV_CPU_TIERS environment variable narrows every
 *    call (checked in child processes of this program, since the variable is read once).
 * 2. The property grid once per tier, forced through exec.cpu_tiers: every mode, bit width and
 *    group size; x, y and scale dtypes; M = 1..9; K with partial blocks, a half chunk (nvfp4),
 *    lanes that wrap and K beyond one x tile; padded strides, broadcast x, shared and batched W;
 *    1, 2 and 3 threads; data with NaN codes, NaN/Inf/subnormal x and extreme scales. Each
 *    output is compared with qmv_qmv_reference() by memcmp over the whole y buffer plus a
 *    guard (so nothing outside the outputs is written). A tier the processor lacks is skipped
 *    (reported, not failed).
 * 3. With --quick (ctest's check_simd_quick, and the run under qemu-user in .ci/arm64.sh,
 *    where the scalar tier's grid, three thread counts and the selection probes' fork are too
 *    slow): the grid of 2. for every SIMD tier this build and processor have, on one thread.
 */
#define _POSIX_C_SOURCE 200809L /* fork, execv, setenv, waitpid */
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "kernels.h" /* qmvi_tiers_built, qmvi_exec_kernels (internal; tests link qmv_internal) */

static const char *self_path;
static int quick; /* --quick: the reduced grid (3. above) */

/* ---- 1. selection ---------------------------------------------------------------------- */

static unsigned cpu_tiers_expected(void)
{
    unsigned m = QMV_CPU_TIER_SCALAR;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        m |= QMV_CPU_TIER_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        m |= QMV_CPU_TIER_AVX512;
#endif
#if defined(__aarch64__)
    m |= QMV_CPU_TIER_NEON; /* Advanced SIMD is part of every AArch64 processor */
#endif
    return m & qmvi_tiers_built();
}

static qmv_cpu_tier best_of(unsigned m)
{
    return (m & QMV_CPU_TIER_AVX512) ? QMV_CPU_TIER_AVX512
           : (m & QMV_CPU_TIER_AVX2) ? QMV_CPU_TIER_AVX2
           : (m & QMV_CPU_TIER_NEON) ? QMV_CPU_TIER_NEON
                                     : QMV_CPU_TIER_SCALAR;
}

START_TEST(test_select_best)
{
    if (getenv("QMV_CPU_TIERS")) /* the whole run is narrowed: the env test covers it */
        return;
    const unsigned sup = qmv_cpu_tiers_supported();
    ck_assert_msg(sup == cpu_tiers_expected(), "supported 0x%x, expected 0x%x (built 0x%x)", sup,
                  cpu_tiers_expected(), qmvi_tiers_built());
    ck_assert(sup & QMV_CPU_TIER_SCALAR);
    ck_assert_int_eq(qmv_cpu_tier_select(0), best_of(sup));
    ck_assert_int_eq(qmv_cpu_tier_select(QMV_CPU_TIER_ALL), best_of(sup));
    ck_assert_int_eq(qmv_cpu_tier_select(QMV_CPU_TIER_SCALAR), QMV_CPU_TIER_SCALAR);
    ck_assert_int_eq(qmv_cpu_tier_select(QMV_CPU_TIER_AVX2),
                     (sup & QMV_CPU_TIER_AVX2) ? QMV_CPU_TIER_AVX2 : QMV_CPU_TIER_SCALAR);
    ck_assert_int_eq(qmv_cpu_tier_select(QMV_CPU_TIER_AVX512),
                     (sup & QMV_CPU_TIER_AVX512) ? QMV_CPU_TIER_AVX512 : QMV_CPU_TIER_SCALAR);
    ck_assert_int_eq(qmv_cpu_tier_select(QMV_CPU_TIER_AVX2 | QMV_CPU_TIER_SCALAR),
                     best_of(sup & (QMV_CPU_TIER_AVX2 | QMV_CPU_TIER_SCALAR)));
    ck_assert_str_eq(qmv_cpu_tier_name(QMV_CPU_TIER_SCALAR), "scalar");
    ck_assert_str_eq(qmv_cpu_tier_name(QMV_CPU_TIER_AVX2), "avx2");
    ck_assert_str_eq(qmv_cpu_tier_name(QMV_CPU_TIER_AVX512), "avx512");
    ck_assert_str_eq(qmv_cpu_tier_name(QMV_CPU_TIER_NEON), "neon");
    ck_assert_ptr_null(qmv_cpu_tier_name((qmv_cpu_tier)0));
    ck_assert_ptr_null(qmv_cpu_tier_name((qmv_cpu_tier)3));

    /* what a call runs on, through exec */
    ck_assert_int_eq(qmvi_exec_tier(NULL), best_of(sup));
    qmv_exec e = QMV_EXEC_INIT;
    ck_assert_int_eq(qmvi_exec_tier(&e), best_of(sup));
    e.cpu_tiers = QMV_CPU_TIER_SCALAR;
    ck_assert_int_eq(qmvi_exec_tier(&e), QMV_CPU_TIER_SCALAR);
    e.cpu_tiers = 1u << 7; /* a tier this library does not know: the one that always runs */
    ck_assert_int_eq(qmvi_exec_tier(&e), QMV_CPU_TIER_SCALAR);
    e.cpu_tiers = (1u << 7) | QMV_CPU_TIER_AVX512;
    ck_assert_int_eq(qmvi_exec_tier(&e), best_of(sup & QMV_CPU_TIER_AVX512));
    /* an older caller: struct_size ends before cpu_tiers, whose bytes are then ignored */
    e.cpu_tiers = QMV_CPU_TIER_SCALAR;
    e.struct_size = offsetof(qmv_exec, cpu_tiers);
    ck_assert_int_eq(qmvi_exec_tier(&e), best_of(sup));
}
END_TEST

/* Every tier of QMV_CPU_TIER_ALL has a name that maps back to it, and a kernel set whose
 * entry points are all there wherever the processor runs it; nothing else has a name. */
START_TEST(test_tier_table)
{
    const unsigned sup = qmv_cpu_tiers_supported();
    ck_assert_uint_eq(QMV_CPU_TIER_ALL, QMV_CPU_TIER_SCALAR | QMV_CPU_TIER_AVX2 |
                                            QMV_CPU_TIER_AVX512 | QMV_CPU_TIER_NEON);
    for (unsigned b = 1; b != 0; b <<= 1) {
        const char *name = qmv_cpu_tier_name((qmv_cpu_tier)b);
        if (!(b & QMV_CPU_TIER_ALL)) {
            ck_assert_msg(!name, "bit 0x%x is no tier but is named %s", b, name);
            continue;
        }
        ck_assert_msg(name != NULL, "tier 0x%x has no name", b);
        qmv_cpu_tier t = (qmv_cpu_tier)0;
        ck_assert_int_eq(qmv_cpu_tier_from_name(name, &t), QMV_STATUS_OK);
        ck_assert_uint_eq(t, b);
        if (!(sup & b) || getenv("QMV_CPU_TIERS"))
            continue;
        qmv_exec e = QMV_EXEC_INIT;
        e.cpu_tiers = b;
        const qmvi_kernel_set *k = qmvi_exec_kernels(&e);
        ck_assert_uint_eq(k->tier, b);
        ck_assert_str_eq(k->name, name);
        ck_assert(k->qmv && k->quantize_row && k->non_finite && k->dequantize_row);
    }
    qmv_cpu_tier t = QMV_CPU_TIER_AVX2;
    ck_assert_int_eq(qmv_cpu_tier_from_name("avx", &t), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_cpu_tier_from_name("avx5120", &t), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_cpu_tier_from_name("AVX2", &t), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_cpu_tier_from_name("", &t), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_uint_eq(t, QMV_CPU_TIER_AVX2); /* untouched on error */
    ck_assert_int_eq(qmv_cpu_tier_from_name(NULL, &t), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_cpu_tier_from_name("scalar", NULL), QMV_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* Runs this program as "--probe MASK" with QMV_CPU_TIERS set to env (NULL: unset); returns the
 * tier the child's qmv_cpu_tier_select(MASK) chose. */
static int probe(const char *env, unsigned mask)
{
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork failed");
    if (pid == 0) {
        if (env)
            setenv("QMV_CPU_TIERS", env, 1);
        else
            unsetenv("QMV_CPU_TIERS");
        char arg[32];
        snprintf(arg, sizeof arg, "%u", mask);
        char *const argv[] = {(char *)self_path, (char *)"--probe", arg, NULL};
        execv(self_path, argv);
        _exit(125);
    }
    int st = 0;
    ck_assert(waitpid(pid, &st, 0) == pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) < 64, "probe child failed (status 0x%x)", st);
    return WEXITSTATUS(st);
}

START_TEST(test_env_narrows)
{
    const unsigned sup = cpu_tiers_expected();
    ck_assert_int_eq(probe(NULL, 0), best_of(sup));
    ck_assert_int_eq(probe("", 0), best_of(sup));
    ck_assert_int_eq(probe("scalar", 0), QMV_CPU_TIER_SCALAR);
    ck_assert_int_eq(probe("avx2", 0), best_of(sup & QMV_CPU_TIER_AVX2));
    ck_assert_int_eq(probe("avx512", 0), best_of(sup & QMV_CPU_TIER_AVX512));
    ck_assert_int_eq(probe("neon", 0), best_of(sup & QMV_CPU_TIER_NEON));
    ck_assert_int_eq(probe("avx2,avx512", 0),
                     best_of(sup & (QMV_CPU_TIER_AVX2 | QMV_CPU_TIER_AVX512)));
    ck_assert_int_eq(probe(" avx512 , scalar", 0),
                     best_of(sup & (QMV_CPU_TIER_AVX512 | QMV_CPU_TIER_SCALAR)));
    ck_assert_int_eq(probe("scalar,avx2", 0),
                     best_of(sup & (QMV_CPU_TIER_SCALAR | QMV_CPU_TIER_AVX2)));
    ck_assert_int_eq(probe("sse9", 0), QMV_CPU_TIER_SCALAR); /* names nothing known */
    /* intersected with the per-call mask */
    ck_assert_int_eq(probe("avx2,avx512", QMV_CPU_TIER_SCALAR), QMV_CPU_TIER_SCALAR);
    ck_assert_int_eq(probe("avx512", QMV_CPU_TIER_AVX2), QMV_CPU_TIER_SCALAR);
    ck_assert_int_eq(probe("avx2", QMV_CPU_TIER_AVX2 | QMV_CPU_TIER_AVX512),
                     best_of(sup & QMV_CPU_TIER_AVX2));
}
END_TEST

/* ---- 2. the grid ------------------------------------------------------------------------ */

enum { DATA_PLAIN, DATA_SPECIAL };

typedef struct {
    int L, M, N;
    int64_t K;
    int w_shared, x_bcast_batch, x_row0, pad;
    qmv_dtype xd, yd, sd;
    int data;
} shape;

typedef struct {
    qmv_qmatrix w;
    qmv_vectors v;
    uint32_t *packed;
    unsigned char *scales, *biases, *x;
    float g;
    size_t y_alloc;
} prob;

#define GUARD 64

static float rand_x(tu_rng *r, int data)
{
    const uint32_t u = tu_u32(r);
    if (data == DATA_SPECIAL) {
        switch (u & 63) {
        case 0:
            return NAN;
        case 1:
            return INFINITY;
        case 2:
            return -INFINITY;
        case 3:
            return ldexpf((float)(u >> 8 & 0xFFFF), -150); /* float32 subnormal */
        case 4:
            return -0.0f;
        case 5:
            return ldexpf((float)(u >> 8 & 0xFF), -24); /* float16 subnormal */
        default:
            break;
        }
    }
    if ((u & 15) == 7)
        return 0.0f;
    return ldexpf((float)tu_range(r, -(1 << 24), 1 << 24), -24);
}

static void prob_free(prob *p)
{
    free(p->packed);
    free(p->scales);
    free(p->biases);
    free(p->x);
}

static void prob_make(prob *p, const tu_fmt *f, const shape *sh, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    tu_rng rng = {seed}, *r = &rng;
    const int affine = f->mode == QMV_MODE_AFFINE;
    const int64_t K = sh->K, N = sh->N, M = sh->M, L = sh->L, pad = sh->pad;
    const int64_t wpr = K * f->bits / 32, G = K / f->group;
    const size_t ssz = affine ? tu_dsize(sh->sd) : 1;
    const int64_t prs = wpr + pad, srs = G + 2 * pad;
    const int64_t pbs = sh->w_shared ? 0 : N * prs + 3 * pad, sbs = sh->w_shared ? 0 : N * srs + pad;
    const int64_t Lw = sh->w_shared ? 1 : L;
    const int64_t np = (Lw - 1) * pbs + (N - 1) * prs + wpr, ns = (Lw - 1) * sbs + (N - 1) * srs + G;
    p->packed = tu_malloc((size_t)np * 4);
    for (int64_t i = 0; i < np; i++) {
        uint32_t u = tu_u32(r);
        if (f->mode == QMV_MODE_MXFP8 && sh->data == DATA_PLAIN)
            for (int s = 0; s < 32; s += 8)
                if (((u >> s) & 0x7Fu) == 0x7Fu)
                    u ^= 1u << s; /* no NaN codes: the decoder's fast path */
        p->packed[i] = u;
    }
    p->scales = tu_malloc((size_t)ns * ssz);
    if (affine)
        p->biases = tu_malloc((size_t)ns * ssz);
    for (int64_t i = 0; i < ns; i++) {
        if (affine) {
            const int wild = sh->data == DATA_SPECIAL && (tu_u32(r) & 31) == 0;
            const float s = wild ? rand_x(r, DATA_SPECIAL)
                                 : ldexpf((float)tu_range(r, -(1 << 16), 1 << 16), -16 - f->bits);
            const float t = wild ? rand_x(r, DATA_SPECIAL)
                                 : ldexpf((float)tu_range(r, -(1 << 16), 1 << 16), -17);
            tu_store(sh->sd, p->scales, i, s);
            tu_store(sh->sd, p->biases, i, t);
        } else if (sh->data == DATA_SPECIAL) {
            p->scales[i] = (unsigned char)tu_u32(r); /* every byte: E8M0 0 and 0xFF, E4M3 NaN */
        } else if (f->mode == QMV_MODE_NVFP4) {
            p->scales[i] = (unsigned char)tu_range(r, 0x20, 0x48);
        } else {
            p->scales[i] = (unsigned char)tu_range(r, 118, 130);
        }
    }
    p->g = 0.37f;
    const size_t xsz = tu_dsize(sh->xd);
    const int64_t xrs = sh->x_row0 ? 0 : K + 3 * pad;
    const int64_t xbs = sh->x_bcast_batch ? 0 : (M - 1) * xrs + K + 5 * pad;
    const int64_t nx = (sh->x_bcast_batch ? 0 : (L - 1) * xbs) + (M - 1) * xrs + K;
    p->x = tu_malloc((size_t)nx * xsz);
    for (int64_t i = 0; i < nx; i++)
        tu_store(sh->xd, p->x, i, rand_x(r, sh->data));
    const int64_t yrs = N + 3 * pad, ybs = (M - 1) * yrs + N + 2 * pad;
    const int64_t ny = (L - 1) * ybs + (M - 1) * yrs + N;

    qmv_qmatrix *w = &p->w;
    w->format = tu_format(f);
    w->scale_dtype = affine ? sh->sd : QMV_DTYPE_F32;
    w->rows = N;
    w->k = K;
    w->packed = p->packed;
    w->packed_bytes = (size_t)np * 4;
    w->packed_row_stride = prs;
    w->packed_batch_stride = pbs;
    w->scales = p->scales;
    w->scales_bytes = (size_t)ns * ssz;
    w->biases = affine ? p->biases : NULL;
    w->biases_bytes = affine ? (size_t)ns * ssz : 0;
    w->scales_row_stride = srs;
    w->scales_batch_stride = sbs;
    w->global_scale = f->global ? &p->g : NULL;
    qmv_vectors *v = &p->v;
    v->batch = L;
    v->m = M;
    v->x_dtype = sh->xd;
    v->x = p->x;
    v->x_bytes = (size_t)nx * xsz;
    v->x_row_stride = xrs;
    v->x_batch_stride = xbs;
    v->y_dtype = sh->yd;
    v->y_bytes = (size_t)ny * tu_dsize(sh->yd);
    v->y_row_stride = yrs;
    v->y_batch_stride = ybs;
    p->y_alloc = v->y_bytes + GUARD;
}

static const char *desc(const tu_fmt *f, const shape *s)
{
    static char buf[200];
    snprintf(buf, sizeof buf, "%s b%d g%d%s L%d M%d N%d K%lld x=%s y=%s s=%s shared=%d xbb=%d "
             "xr0=%d pad=%d data=%d",
             tu_mname(f->mode), f->bits, f->group, f->global ? "+gs" : "", s->L, s->M, s->N,
             (long long)s->K, tu_dname(s->xd), tu_dname(s->yd), tu_dname(s->sd), s->w_shared,
             s->x_bcast_batch, s->x_row0, s->pad, s->data);
    return buf;
}

/* The tier's result for each thread count equals the reference, byte for byte, guard too. */
static void check_tier(const tu_fmt *f, const shape *sh, uint64_t seed, unsigned tier)
{
    prob p;
    prob_make(&p, f, sh, seed);
    unsigned char *ref = tu_malloc(p.y_alloc), *got = tu_malloc(p.y_alloc);
    memset(ref, 0xA5, p.y_alloc);
    p.v.y = ref;
    ck_assert_msg(qmv_qmv_reference(&p.w, &p.v) == QMV_STATUS_OK, "reference: %s [%s]",
                  qmv_last_error(), desc(f, sh));
    static const int threads[] = {1, 2, 3};
    for (size_t t = 0; t < (quick ? 1 : sizeof threads / sizeof threads[0]); t++) {
        memset(got, 0xA5, p.y_alloc);
        p.v.y = got;
        qmv_exec e = QMV_EXEC_INIT;
        e.num_threads = threads[t];
        e.cpu_tiers = tier;
        ck_assert_msg(qmv_qmv(&p.w, &p.v, &e) == QMV_STATUS_OK, "qmv_qmv: %s [%s]",
                      qmv_last_error(), desc(f, sh));
        const long d = tu_first_diff(got, ref, p.y_alloc);
        ck_assert_msg(d < 0, "%s, %d threads: y byte %ld is 0x%02x, reference 0x%02x [%s]",
                      qmv_cpu_tier_name((qmv_cpu_tier)tier), threads[t], d, d >= 0 ? got[d] : 0,
                      d >= 0 ? ref[d] : 0, desc(f, sh));
    }
    free(ref);
    free(got);
    prob_free(&p);
}

/* K values: one group, 3 groups (48 = a chunk and a half for nvfp4), 16 (nvfp4's half chunk
 * alone), a block and a bit (partial block), 4096 + g (lanes not filled twice), 8192 + g
 * (lanes wrap), 16384 + 512 (beyond one x tile of a single vector). */
static int k_list(const tu_fmt *f, int64_t *ks)
{
    const int64_t g = f->group;
    int n = 0;
    ks[n++] = g;
    ks[n++] = 3 * g;
    if (g == 16)
        ks[n++] = 16 + 32 * 17; /* a half chunk after a full block */
    ks[n++] = 512 + 2 * g;
    ks[n++] = 4096 + g;
    ks[n++] = 8192 + g;
    ks[n++] = 16384 + 512;
    return n;
}

static void run_grid(int fi, unsigned tier)
{
    if (!(qmv_cpu_tiers_supported() & tier)) {
        fprintf(stderr, "check_simd: SKIPPED: %s tier not supported by this processor or build\n",
                qmv_cpu_tier_name((qmv_cpu_tier)tier));
        return;
    }
    const tu_fmt *f = &TU_FMTS[fi];
    int64_t ks[8];
    const int nk = k_list(f, ks);
    const int ncombo = f->mode == QMV_MODE_AFFINE ? 27 : 9;
    int case_no = 0;
    for (int ki = 0; ki < nk; ki++) {
        /* M = 1..9 over the K values; big K with few rows and vectors to bound the time */
        const int big = ks[ki] > 4096;
        for (int m = 1; m <= 9; m += big ? 4 : 1) {
            const int combo = (case_no * 7 + fi * 5) % ncombo;
            shape sh = {1, m, big ? 5 : 37, ks[ki], 0, 0, 0, case_no & 1,
                        (qmv_dtype)(combo % 3), (qmv_dtype)(combo / 3 % 3),
                        (qmv_dtype)(combo / 9 % 3), (case_no % 3 == 2) ? DATA_SPECIAL : DATA_PLAIN};
            check_tier(f, &sh, 100u + (uint64_t)(fi * 1000 + case_no), tier);
            case_no++;
        }
    }
    /* layouts: batches with shared / per-batch W, broadcast x, one row, rows not a multiple
     * of the rows in flight */
    static const struct {
        int L, M, N, shared, xbb, xr0, pad;
    } lay[] = {{3, 2, 67, 1, 0, 0, 1}, {3, 5, 3, 0, 1, 0, 1}, {2, 9, 1, 0, 0, 1, 0},
               {2, 4, 130, 0, 0, 0, 1}, {1, 3, 2, 0, 0, 1, 1}};
    for (size_t li = 0; li < sizeof lay / sizeof lay[0]; li++) {
        const int combo = (int)(li * 11 + (size_t)fi) % ncombo;
        shape sh = {lay[li].L, lay[li].M, lay[li].N, 3 * (int64_t)f->group + 512, lay[li].shared,
                    lay[li].xbb, lay[li].xr0, lay[li].pad, (qmv_dtype)(combo % 3),
                    (qmv_dtype)(combo / 3 % 3), (qmv_dtype)(combo / 9 % 3), (int)(li & 1)};
        check_tier(f, &sh, 5000u + (uint64_t)(fi * 100 + (int)li), tier);
    }
}

START_TEST(test_grid_scalar)
{
    run_grid(_i, QMV_CPU_TIER_SCALAR);
}
END_TEST

START_TEST(test_grid_avx2)
{
    run_grid(_i, QMV_CPU_TIER_AVX2);
}
END_TEST

START_TEST(test_grid_avx512)
{
    run_grid(_i, QMV_CPU_TIER_AVX512);
}
END_TEST

START_TEST(test_grid_neon)
{
    run_grid(_i, QMV_CPU_TIER_NEON);
}
END_TEST

/* --quick: every SIMD tier present (the scalar tier's grid is check_qmv's) */
START_TEST(test_grid_quick)
{
    for (unsigned tier = QMV_CPU_TIER_SCALAR << 1; tier <= QMV_CPU_TIER_ALL; tier <<= 1)
        if ((tier & QMV_CPU_TIER_ALL) && (qmv_cpu_tiers_supported() & tier))
            run_grid(_i, tier);
}
END_TEST

/* k = 0 and empty outputs go through every tier's entry too */
START_TEST(test_empty)
{
    for (unsigned tier = 1; tier <= QMV_CPU_TIER_ALL; tier <<= 1) {
        if (!(tier & QMV_CPU_TIER_ALL))
            continue;
        const tu_fmt *f = &TU_FMTS[_i];
        shape sh = {1, 2, 3, 0, 0, 0, 0, 0, QMV_DTYPE_F32, QMV_DTYPE_F32, QMV_DTYPE_F32, 0};
        check_tier(f, &sh, 1, tier);
    }
}
END_TEST

static Suite *simd_suite(void)
{
    Suite *s = suite_create("simd");
    TCase *tc;
    if (quick) {
        tc = tcase_create("grid_quick");
        tcase_set_timeout(tc, 600);
        tcase_add_loop_test(tc, test_grid_quick, 0, TU_NFMTS);
        tcase_add_loop_test(tc, test_empty, 0, TU_NFMTS);
        suite_add_tcase(s, tc);
        return s;
    }
    tc = tcase_create("select");
    tcase_add_test(tc, test_select_best);
    tcase_add_test(tc, test_tier_table);
    tcase_add_test(tc, test_env_narrows);
    suite_add_tcase(s, tc);
    struct {
        const char *name;
        const TTest *fn;
    } grids[] = {{"grid_scalar", test_grid_scalar},
                 {"grid_avx2", test_grid_avx2},
                 {"grid_avx512", test_grid_avx512},
                 {"grid_neon", test_grid_neon},
                 {"empty", test_empty}};
    for (size_t i = 0; i < sizeof grids / sizeof grids[0]; i++) {
        tc = tcase_create(grids[i].name);
        tcase_set_timeout(tc, 600);
        tcase_add_loop_test(tc, grids[i].fn, 0, TU_NFMTS);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--probe") == 0)
        return (int)qmv_cpu_tier_select((unsigned)strtoul(argv[2], NULL, 10));
    self_path = strchr(argv[0], '/') ? argv[0] : "/proc/self/exe";
    quick = argc == 2 && strcmp(argv[1], "--quick") == 0;
    SRunner *sr = srunner_create(simd_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
