/* alloc.c — the libc-backed rk_alloc. */
#include "alloc.h"

#include <stdint.h>
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

bool rk_grow(const struct rk_alloc *a, void **v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap == 0 ? 8 : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return false;
        ncap *= 2;
    }
    if (elem != 0 && ncap > SIZE_MAX / elem)
        return false;
    void *nv = rk_realloc(a, *v, ncap * elem);
    if (nv == NULL)
        return false;
    *v = nv;
    *cap = ncap;
    return true;
}
