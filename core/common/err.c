/* err.c — strerror and bounded error-message formatting. */
#include "err.h"

#include "assert.h"

#include <stdio.h>
#include <string.h>

static const char *const rk_err_names[RK_ERR_COUNT] = {
    [RK_OK] = "ok",
    [RK_ENOMEM] = "out of memory",
    [RK_EINVAL] = "invalid argument",
    [RK_ENOTLEADER] = "not the leader",
    [RK_ENOLEADER] = "no leader known",
    [RK_EBUSY] = "busy: retry later",
    [RK_ETOOBIG] = "over a configured limit",
    [RK_EMALFORMED] = "malformed input",
    [RK_ECORRUPT] = "checksum mismatch",
    [RK_EAGAIN] = "incomplete input",
    [RK_EIO] = "I/O error",
    [RK_ENOSPC] = "no space left",
    [RK_ENOENT] = "not found",
    [RK_ESTALE] = "overtaken by a leadership change",
    [RK_EEXIST] = "already exists",
};

const char *rk_strerror(int err)
{
    if (err < 0 || err >= RK_ERR_COUNT || rk_err_names[err] == NULL)
        return "unknown error";
    return rk_err_names[err];
}

int rk_errf(struct rk_errmsg *msg, int err, const char *fmt, ...)
{
    if (msg == NULL)
        return err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg->text, sizeof(msg->text), fmt, ap);
    va_end(ap);
    return err;
}

int rk_errwrap(struct rk_errmsg *msg, int err, const char *fmt, ...)
{
    if (msg == NULL)
        return err;
    char prefix[RK_ERRMSG_SIZE];
    char old[RK_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, msg->text, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    /* Truncation is intended: the outermost context survives and the innermost tail is cut. */
    int n = snprintf(msg->text, sizeof(msg->text), "%s: %s", prefix, old);
    RK_ASSERT(n >= 0);
    return err;
}
