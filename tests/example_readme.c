/* Quantize a 4 x 64 float32 matrix to mxfp4, then compute y = x . W^T for one vector x. */
#include <stdint.h>
#include <stdio.h>

#include "qmv.h"

#define N 4  /* rows of W = outputs */
#define K 64 /* columns, a multiple of the group size (32 for mxfp4) */

static int failed(qmv_status st, const char *what)
{
    if (st != QMV_STATUS_OK)
        fprintf(stderr, "%s: %s (%s)\n", what, qmv_status_string(st), qmv_last_error());
    return st != QMV_STATUS_OK;
}

int main(void)
{
    float w[N * K], x[K], y[N];
    for (int i = 0; i < N * K; i++)
        w[i] = (float)(i % 13) / 4.0f - 1.5f;
    for (int i = 0; i < K; i++)
        x[i] = 1.0f / (float)(i + 1);

    /* mxfp4: 4-bit E2M1 codes packed into uint32 words, one E8M0 scale byte per 32. */
    qmv_format fmt;
    uint32_t packed[N * K * 4 / 32];
    uint8_t scales[N * K / 32];
    qmv_quant_out out = {packed, sizeof packed, scales, sizeof scales, NULL, 0};
    if (failed(qmv_format_default(QMV_MODE_MXFP4, &fmt), "format") ||
        failed(qmv_quantize(&fmt, QMV_PROFILE_MLX_CPU, NULL, QMV_DTYPE_F32, w, sizeof w, N, K, K,
                            &out, NULL),
               "quantize"))
        return 1;

    qmv_qmatrix wq;
    qmv_vectors v = {.batch = 1,
                     .m = 1,
                     .x_dtype = QMV_DTYPE_F32,
                     .x = x,
                     .x_bytes = sizeof x,
                     .x_row_stride = K,
                     .y_dtype = QMV_DTYPE_F32,
                     .y = y,
                     .y_bytes = sizeof y,
                     .y_row_stride = N};
    if (failed(qmv_qmatrix_dense(&fmt, QMV_DTYPE_F32, N, K, packed, scales, NULL, &wq),
               "qmatrix") ||
        failed(qmv_qmv(&wq, &v, NULL), "qmv"))
        return 1;

    printf("y[0] = %.9g\n", y[0]);
    return 0;
}
