/* assert.c — the failure path of RK_ASSERT: print file:line and the expression, abort. */
#include "assert.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void rk_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}
