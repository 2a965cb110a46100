/*
 * counting_alloc.c — the unit tests' counting, failable allocator (counting_alloc.h).
 */
#include "counting_alloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static bool cnt_should_fail(struct counting *c, size_t size)
{
    c->calls++;
    if (size > c->max_size)
        c->max_size = size;
    return (c->fail_at != 0 && c->calls == c->fail_at) ||
           (c->fail_from != 0 && c->calls >= c->fail_from);
}

static void *cnt_malloc(void *ctx, size_t size)
{
    struct counting *c = ctx;
    if (cnt_should_fail(c, size))
        return NULL;
    void *p = malloc(size == 0 ? 1 : size);
    if (p != NULL) {
        memset(p, 0xa5, size == 0 ? 1 : size);
        c->live++;
    }
    return p;
}

static void *cnt_realloc(void *ctx, void *ptr, size_t size)
{
    struct counting *c = ctx;
    if (cnt_should_fail(c, size))
        return NULL;
    void *p = realloc(ptr, size == 0 ? 1 : size);
    if (p != NULL && ptr == NULL)
        c->live++;
    return p;
}

static void cnt_free(void *ctx, void *ptr)
{
    struct counting *c = ctx;
    if (ptr == NULL)
        return;
    assert_true(c->live > 0);
    c->live--;
    free(ptr);
}

struct rk_alloc counting_alloc(struct counting *c)
{
    memset(c, 0, sizeof(*c));
    struct rk_alloc a = {
        .malloc_fn = cnt_malloc, .realloc_fn = cnt_realloc, .free_fn = cnt_free, .ctx = c};
    return a;
}
