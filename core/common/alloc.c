/* alloc.c — the libc-backed rk_alloc. */
#include "alloc.h"

#include <stdlib.h>

static void *libc_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size == 0 ? 1 : size);
}

static void *libc_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size == 0 ? 1 : size);
}

static void libc_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static const struct rk_alloc rk_alloc_libc_table = {
    .malloc_fn = libc_malloc,
    .realloc_fn = libc_realloc,
    .free_fn = libc_free,
    .ctx = NULL,
};

const struct rk_alloc *rk_alloc_libc(void)
{
    return &rk_alloc_libc_table;
}
