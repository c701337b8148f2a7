/*
 * format.c - the mode traits table, names, format validation and layout sizes.
 */
#include <string.h>

#include "internal.h"

#define QMVI_BITS(b) (1u << (b))
#define QMVI_GROUP(g) (1u << (g)) /* g = log2(group size) */

const qmvi_mode_traits qmvi_traits[QMV_MODE_COUNT] = {
    [QMV_MODE_AFFINE] = {.name = "affine",
                         .default_bits = 4,
                         .default_group = 64,
                         .bits_mask = QMVI_BITS(1) | QMVI_BITS(2) | QMVI_BITS(3) | QMVI_BITS(4) | QMVI_BITS(5) |
                                      QMVI_BITS(6) | QMVI_BITS(8),
                         .group_mask = QMVI_GROUP(5) | QMVI_GROUP(6) | QMVI_GROUP(7),
                         .has_bias = 1,
                         .elem = QMVI_ELEM_UINT,
                         .scale = QMVI_SCALE_FLOAT},
    [QMV_MODE_MXFP4] = {.name = "mxfp4",
                        .default_bits = 4,
                        .default_group = 32,
                        .bits_mask = QMVI_BITS(4),
                        .group_mask = QMVI_GROUP(5),
                        .elem = QMVI_ELEM_E2M1,
                        .scale = QMVI_SCALE_E8M0,
                        .elem_max = 6.0f,
                        .emax_elem = 2},
    [QMV_MODE_NVFP4] = {.name = "nvfp4",
                        .default_bits = 4,
                        .default_group = 16,
                        .bits_mask = QMVI_BITS(4),
                        .group_mask = QMVI_GROUP(4),
                        .elem = QMVI_ELEM_E2M1,
                        .scale = QMVI_SCALE_E4M3,
                        .elem_max = 6.0f,
                        .emax_elem = 2},
    [QMV_MODE_MXFP8] = {.name = "mxfp8",
                        .default_bits = 8,
                        .default_group = 32,
                        .bits_mask = QMVI_BITS(8),
                        .group_mask = QMVI_GROUP(5),
                        .elem = QMVI_ELEM_E4M3,
                        .scale = QMVI_SCALE_E8M0,
                        .elem_max = 448.0f,
                        .emax_elem = 8},
};

static const char *const qmvi_dtype_names[QMV_DTYPE_COUNT] = {"float32", "float16", "bfloat16"};
static const char *const qmvi_profile_names[QMV_PROFILE_COUNT] = {"mlx-cpu", "mlx-cuda", "ocp"};

const char *qmv_dtype_name(qmv_dtype dtype)
{
    return (unsigned)dtype < QMV_DTYPE_COUNT ? qmvi_dtype_names[dtype] : NULL;
}

const char *qmv_mode_name(qmv_mode mode)
{
    return (unsigned)mode < QMV_MODE_COUNT ? qmvi_traits[mode].name : NULL;
}

const char *qmv_profile_name(qmv_profile profile)
{
    return (unsigned)profile < QMV_PROFILE_COUNT ? qmvi_profile_names[profile] : NULL;
}

/* Looks name up in a table of n names; returns the index or -1. */
static int qmvi_lookup(const char *name, const char *(*name_of)(int), int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, name_of(i)) == 0)
            return i;
    return -1;
}

static const char *qmvi_dtype_name_i(int i)
{
    return qmv_dtype_name((qmv_dtype)i);
}
static const char *qmvi_mode_name_i(int i)
{
    return qmv_mode_name((qmv_mode)i);
}
static const char *qmvi_profile_name_i(int i)
{
    return qmv_profile_name((qmv_profile)i);
}

static qmv_status qmvi_from_name(const char *kind, const char *name, const char *(*name_of)(int),
                                 int n, int *out)
{
    if (!name || !out)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "%s name: NULL pointer", kind);
    int i = qmvi_lookup(name, name_of, n);
    if (i < 0)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "unknown %s '%.64s'", kind, name);
    *out = i;
    return qmvi_ok();
}

qmv_status qmv_dtype_from_name(const char *name, qmv_dtype *out)
{
    int i = 0;
    QMVI_TRY(qmvi_from_name("dtype", name, qmvi_dtype_name_i, QMV_DTYPE_COUNT, out ? &i : NULL));
    *out = (qmv_dtype)i;
    return QMV_STATUS_OK;
}

qmv_status qmv_mode_from_name(const char *name, qmv_mode *out)
{
    int i = 0;
    QMVI_TRY(qmvi_from_name("mode", name, qmvi_mode_name_i, QMV_MODE_COUNT, out ? &i : NULL));
    *out = (qmv_mode)i;
    return QMV_STATUS_OK;
}

qmv_status qmv_profile_from_name(const char *name, qmv_profile *out)
{
    int i = 0;
    QMVI_TRY(qmvi_from_name("profile", name, qmvi_profile_name_i, QMV_PROFILE_COUNT,
                            out ? &i : NULL));
    *out = (qmv_profile)i;
    return QMV_STATUS_OK;
}

size_t qmv_dtype_size(qmv_dtype dtype)
{
    switch (dtype) {
    case QMV_DTYPE_F32:
        return 4;
    case QMV_DTYPE_F16:
    case QMV_DTYPE_BF16:
        return 2;
    default:
        return 0;
    }
}

qmv_status qmv_format_default(qmv_mode mode, qmv_format *out)
{
    if (!out)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "format_default: out is NULL");
    if ((unsigned)mode >= QMV_MODE_COUNT)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "mode %d out of range", (int)mode);
    out->mode = mode;
    out->bits = qmvi_traits[mode].default_bits;
    out->group_size = qmvi_traits[mode].default_group;
    return qmvi_ok();
}

qmv_status qmvi_check_format(const qmv_format *fmt)
{
    if (!fmt)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "format is NULL");
    if ((unsigned)fmt->mode >= QMV_MODE_COUNT)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "mode %d out of range", (int)fmt->mode);
    const qmvi_mode_traits *t = &qmvi_traits[fmt->mode];
    int g = fmt->group_size;
    int g_ok = g > 0 && (g & (g - 1)) == 0 && g < (1 << 16) &&
               (t->group_mask & (1u << __builtin_ctz((unsigned)g)));
    if (!g_ok)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED, "%s: group size %d not supported", t->name, g);
    if (fmt->bits <= 0 || fmt->bits > 8 || !(t->bits_mask & (1u << fmt->bits)))
        return qmvi_fail(QMV_STATUS_UNSUPPORTED, "%s: %d bits not supported", t->name,
                         fmt->bits);
    return QMV_STATUS_OK;
}

qmv_status qmv_format_validate(const qmv_format *fmt)
{
    QMVI_TRY(qmvi_check_format(fmt));
    return qmvi_ok();
}

qmv_status qmvi_check_dtype(qmv_dtype t, const char *what)
{
    if ((unsigned)t >= QMV_DTYPE_COUNT)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "%s: dtype %d out of range", what, (int)t);
    return QMV_STATUS_OK;
}

size_t qmvi_scale_elem_size(const qmv_format *fmt, qmv_dtype scale_dtype)
{
    return qmvi_traits[fmt->mode].scale == QMVI_SCALE_FLOAT ? qmv_dtype_size(scale_dtype) : 1;
}

/* Validates fmt, scale dtype and a rows x k shape; fills the dense layout. */
static qmv_status qmvi_layout(const qmv_format *fmt, qmv_dtype scale_dtype, int64_t rows,
                              int64_t k, qmv_layout *out)
{
    QMVI_TRY(qmvi_check_format(fmt));
    if (qmvi_traits[fmt->mode].scale == QMVI_SCALE_FLOAT)
        QMVI_TRY(qmvi_check_dtype(scale_dtype, "scale dtype"));
    if (rows < 0 || k < 0)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "negative shape %lld x %lld",
                         (long long)rows, (long long)k);
    if (k % fmt->group_size)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                         "k = %lld is not a multiple of the group size %d", (long long)k,
                         fmt->group_size);
    int64_t words = k / 32 * fmt->bits + (k % 32) * fmt->bits / 32; /* exact: k*bits % 32 == 0 */
    int64_t groups = k / fmt->group_size;
    int64_t pb, sb;
    size_t es = qmvi_scale_elem_size(fmt, scale_dtype);
    if (!qmvi_mul_ok(rows, words, &pb) || !qmvi_mul_ok(pb, 4, &pb) ||
        !qmvi_mul_ok(rows, groups, &sb) || !qmvi_mul_ok(sb, (int64_t)es, &sb) ||
        (uint64_t)pb > SIZE_MAX || (uint64_t)sb > SIZE_MAX)
        return qmvi_fail(QMV_STATUS_OVERFLOW, "a %lld x %lld matrix does not fit in memory",
                         (long long)rows, (long long)k);
    out->words_per_row = words;
    out->groups_per_row = groups;
    out->packed_bytes = (size_t)pb;
    out->scales_bytes = (size_t)sb;
    out->biases_bytes = qmvi_traits[fmt->mode].has_bias ? (size_t)sb : 0;
    return QMV_STATUS_OK;
}

qmv_status qmv_layout_query(const qmv_format *fmt, qmv_dtype scale_dtype, int64_t rows,
                            int64_t k, qmv_layout *out)
{
    qmv_layout l = {0};
    if (!out)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "layout_query: out is NULL");
    QMVI_TRY(qmvi_layout(fmt, scale_dtype, rows, k, &l));
    *out = l;
    return qmvi_ok();
}

qmv_status qmv_qmatrix_dense(const qmv_format *fmt, qmv_dtype scale_dtype, int64_t rows,
                             int64_t k, const uint32_t *packed, const void *scales,
                             const void *biases, qmv_qmatrix *out)
{
    qmv_layout l = {0};
    if (!out)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmatrix_dense: out is NULL");
    QMVI_TRY(qmvi_layout(fmt, scale_dtype, rows, k, &l));
    qmv_qmatrix m;
    memset(&m, 0, sizeof m);
    m.format = *fmt;
    m.scale_dtype = qmvi_traits[fmt->mode].scale == QMVI_SCALE_FLOAT ? scale_dtype : QMV_DTYPE_F32;
    m.rows = rows;
    m.k = k;
    m.packed = packed;
    m.packed_bytes = l.packed_bytes;
    m.packed_row_stride = l.words_per_row;
    m.scales = scales;
    m.scales_bytes = l.scales_bytes;
    m.biases = biases;
    m.biases_bytes = l.biases_bytes;
    m.scales_row_stride = l.groups_per_row;
    *out = m;
    return qmvi_ok();
}
