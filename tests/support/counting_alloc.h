/*
 * counting_alloc.h — an injected allocator (core/common/alloc.h) for unit tests: counts live
 * blocks and calls, records the largest request, fails on demand, and fills new blocks with
 * 0xa5 as a debugging malloc does, so code cannot rely on fresh zeroes.
 */
#ifndef COUNTING_ALLOC_H
#define COUNTING_ALLOC_H

#include <stddef.h>

#include "common/alloc.h"

struct counting {
    size_t live;      /* allocations not yet freed */
    size_t calls;     /* malloc/realloc calls so far */
    size_t max_size;  /* largest single request */
    size_t fail_at;   /* the call numbered fail_at (1-based) fails; 0 = never */
    size_t fail_from; /* calls numbered >= fail_from fail; 0 = never */
};

/* Zeroes *c and returns an allocator counting into it. A free of a block it did not count
 * fails the test (cmocka). */
struct rk_alloc counting_alloc(struct counting *c);

#endif
