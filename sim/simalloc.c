/* simalloc — see simalloc.h. */
#include "simalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIM_ALLOC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_ALLOC_ASAN 1
#endif
#endif

#define SIM_ALLOC_HDR       16u
#define SIM_ALLOC_SMALL_MAX 65536u
#define SIM_ALLOC_CLASSES   24u
#define SIM_ALLOC_LARGE     0xffu /* the header's class of a libc block */
#define SIM_ALLOC_SLAB      (1024u * 1024u)

/* The capacity of each class: 16 to 128 by 16, then 192 to 65536; a size rounds up to one. */
static const uint32_t class_bytes[SIM_ALLOC_CLASSES] = {
    16,  32,   48,   64,   80,   96,   112,  128,  192,   256,   384,   512,
    768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 32768, 65536};

struct free_block {
    struct free_block *next;
};

struct slab {
    struct slab *next;
};

struct sim_alloc {
    struct rk_alloc table;
    struct free_block *free[SIM_ALLOC_CLASSES];
    struct slab *slabs;
    uint8_t *bump; /* the rest of the newest slab */
    size_t bump_left;
};

static uint32_t class_of(size_t size)
{
    if (size <= 128)
        return size == 0 ? 0 : (uint32_t)((size - 1) / 16);
    uint32_t c = 8;
    while (class_bytes[c] < size)
        c++;
    return c;
}

static void *pool_malloc(void *ctx, size_t size)
{
    struct sim_alloc *p = ctx;
    if (size > SIM_ALLOC_SMALL_MAX) {
        if (size > SIZE_MAX - SIM_ALLOC_HDR)
            return NULL;
        uint8_t *h = malloc(size + SIM_ALLOC_HDR);
        if (h == NULL)
            return NULL;
        h[0] = SIM_ALLOC_LARGE;
        return h + SIM_ALLOC_HDR;
    }
    uint32_t c = class_of(size);
    uint8_t *h;
    if (p->free[c] != NULL) {
        struct free_block *b = p->free[c];
        p->free[c] = b->next;
        h = (uint8_t *)b - SIM_ALLOC_HDR;
    } else {
        size_t need = SIM_ALLOC_HDR + class_bytes[c];
        if (p->bump_left < need) {
            struct slab *s = malloc(SIM_ALLOC_SLAB);
            if (s == NULL)
                return NULL;
            s->next = p->slabs;
            p->slabs = s;
            p->bump = (uint8_t *)s + SIM_ALLOC_HDR; /* the slab's link in its first 16 bytes */
            p->bump_left = SIM_ALLOC_SLAB - SIM_ALLOC_HDR;
        }
        h = p->bump;
        p->bump += need;
        p->bump_left -= need;
    }
    h[0] = (uint8_t)c;
    return h + SIM_ALLOC_HDR;
}

static void pool_free(void *ctx, void *ptr)
{
    struct sim_alloc *p = ctx;
    if (ptr == NULL)
        return;
    uint8_t *h = (uint8_t *)ptr - SIM_ALLOC_HDR;
    if (h[0] == SIM_ALLOC_LARGE) {
        free(h);
        return;
    }
    RK_ASSERT(h[0] < SIM_ALLOC_CLASSES);
    struct free_block *b = ptr;
    b->next = p->free[h[0]];
    p->free[h[0]] = b;
}

static void *pool_realloc(void *ctx, void *ptr, size_t size)
{
    if (ptr == NULL)
        return pool_malloc(ctx, size);
    uint8_t *h = (uint8_t *)ptr - SIM_ALLOC_HDR;
    if (h[0] == SIM_ALLOC_LARGE && size > SIM_ALLOC_SMALL_MAX) {
        if (size > SIZE_MAX - SIM_ALLOC_HDR)
            return NULL;
        uint8_t *n = realloc(h, size + SIM_ALLOC_HDR);
        return n == NULL ? NULL : n + SIM_ALLOC_HDR;
    }
    if (h[0] != SIM_ALLOC_LARGE && size <= class_bytes[h[0]] && size > 0)
        return ptr; /* it fits where it is */
    void *n = pool_malloc(ctx, size);
    if (n == NULL)
        return NULL;
    /* A libc block's size is unknown here but at least SIM_ALLOC_SMALL_MAX + 1 > size. */
    size_t old = h[0] == SIM_ALLOC_LARGE ? size : class_bytes[h[0]];
    memcpy(n, ptr, old < size ? old : size);
    pool_free(ctx, ptr);
    return n;
}

struct sim_alloc *sim_alloc_create(void)
{
#ifdef SIM_ALLOC_ASAN
    (void)pool_malloc; /* not used under ASan (A3) */
    (void)pool_realloc;
    (void)pool_free;
    return NULL;
#else
    struct sim_alloc *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->table = (struct rk_alloc){
        .malloc_fn = pool_malloc, .realloc_fn = pool_realloc, .free_fn = pool_free, .ctx = p};
    return p;
#endif
}

const struct rk_alloc *sim_alloc_get(const struct sim_alloc *p)
{
    return p != NULL ? &p->table : rk_alloc_libc();
}

void sim_alloc_destroy(struct sim_alloc *p)
{
    if (p == NULL)
        return;
    while (p->slabs != NULL) {
        struct slab *s = p->slabs;
        p->slabs = s->next;
        free(s);
    }
    free(p);
}
