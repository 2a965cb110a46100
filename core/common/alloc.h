/*
 * alloc.h — the injected allocator. Core allocates only through one of these so that tests can
 * fail any allocation and the simulator can count memory.
 */
#ifndef RK_ALLOC_H
#define RK_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

struct rk_alloc {
    void *(*malloc_fn)(void *ctx, size_t size);
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
    void *ctx;
};

/* The libc allocator. Returns a pointer to a static, immutable table. */
const struct rk_alloc *rk_alloc_libc(void);

static inline void *rk_malloc(const struct rk_alloc *a, size_t size)
{
    return a->malloc_fn(a->ctx, size);
}

static inline void *rk_realloc(const struct rk_alloc *a, void *ptr, size_t size)
{
    return a->realloc_fn(a->ctx, ptr, size);
}

static inline void rk_free(const struct rk_alloc *a, void *ptr)
{
    if (ptr != NULL)
        a->free_fn(a->ctx, ptr);
}

/* Grows the array *v of *cap elements of elem bytes (doubling, from 8) so that it holds at
 * least need elements. Returns false, leaving *v and *cap as they were, when the allocator
 * fails or the size would overflow. */
bool rk_grow(const struct rk_alloc *a, void **v, size_t *cap, size_t need, size_t elem);

#endif
