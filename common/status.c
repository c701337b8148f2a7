/*
 * status.c - status strings, the per-thread last-error message, and versions.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static const char *const qmvi_status_text[] = {
#define QMV_X_(name, value, text) [value] = text,
    QMV_STATUS_LIST(QMV_X_)
#undef QMV_X_
};

const char *qmv_status_string(qmv_status status)
{
    size_t n = sizeof qmvi_status_text / sizeof qmvi_status_text[0];
    if ((unsigned)status >= n || !qmvi_status_text[status])
        return "unknown status";
    return qmvi_status_text[status];
}

/* Per-thread, so that concurrent calls never see each other's messages. */
static _Thread_local char qmvi_last_error[256];

const char *qmv_last_error(void)
{
    return qmvi_last_error;
}

qmv_status qmvi_fail(qmv_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(qmvi_last_error, sizeof qmvi_last_error, fmt, ap);
    va_end(ap);
    return status;
}

qmv_status qmvi_ok(void)
{
    qmvi_last_error[0] = '\0';
    return QMV_STATUS_OK;
}

unsigned qmv_version_number(void)
{
    return QMV_VERSION_NUMBER;
}

const char *qmv_version_string(void)
{
    return QMV_VERSION_STRING;
}

unsigned qmv_order_version(void)
{
    return QMV_ORDER_VERSION;
}
