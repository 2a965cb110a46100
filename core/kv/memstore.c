/*
 * memstore.c — the in-memory kv_store (memstore.h).
 *
 * An open-addressing table of slots with Robin Hood linear probing (Celis 1986): a key that is
 * farther from its home slot takes the place of one that is nearer, so probe lengths stay short
 * and even at a load of 3/4, and a lookup can stop as soon as it meets a slot whose occupant is
 * nearer home than the probe (the key would have displaced it). Deletion shifts the following
 * run back by one slot (backward shift) instead of leaving a tombstone, so a table that sees
 * many deletes never degrades and never needs a rehash to clean up.
 *
 * Each live key owns one allocation, its record: the key bytes followed by the value bytes.
 *
 * Invariants (kv_memstore_valid checks all of them):
 *   M1  capacity is a power of two >= MS_CAPACITY_MIN, and mask == capacity - 1.
 *   M2  count is the number of occupied slots, and count <= capacity * 3 / 4.
 *   M3  an occupied slot's hash is XXH3_64bits of its key.
 *   M4  the Robin Hood order: dist(i + 1) <= dist(i) + 1 around the ring, with an empty slot
 *       counting as dist -1. Hence a key's slots from home to its position are all occupied
 *       (what linear probing needs), and lookup's early stop is sound.
 *   M5  no key is stored twice: a lookup of every stored key finds its own slot.
 *   M6  applied_index only grows, and only a successful put or del moves it (store.h S1, S2).
 *
 * Determinism (store.h S3): the slot of every key is a function of the hash (XXH3 unseeded,
 * the same on every machine) and of the order of puts, dels and growths, which is the order of
 * the log; scan walks the slots in order.
 */
#include "kv/memstore.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/assert.h"
#include "common/err.h"

#define MS_CAPACITY_MIN 16u

struct ms_slot {
    uint64_t hash;
    uint8_t *rec; /* key_len + val_len bytes: key, then value. NULL: the slot is empty. */
    uint32_t key_len;
    uint32_t val_len;
};

struct kv_memstore {
    struct kv_store base; /* first: ops receive &base and convert back */
    const struct rk_alloc *alloc;
    struct ms_slot *slots;
    size_t mask;
    uint64_t count;
    uint64_t applied_index;
};

_Static_assert(offsetof(struct kv_memstore, base) == 0, "the kv_store must be the first member");

static const struct kv_store_ops memstore_ops;

static struct kv_memstore *to_ms(struct kv_store *s)
{
    RK_ASSERT(s != NULL);
    RK_ASSERT(s->ops == &memstore_ops);
    return (struct kv_memstore *)s;
}

static uint64_t key_hash(const uint8_t *key, uint32_t key_len)
{
    return XXH3_64bits(key, key_len);
}

/* How far slot i's occupant sits from its home slot. */
static size_t slot_dist(const struct kv_memstore *ms, size_t i)
{
    RK_ASSERT(ms->slots[i].rec != NULL);
    return (i - (size_t)(ms->slots[i].hash & ms->mask)) & ms->mask;
}

static bool slot_holds(const struct ms_slot *sl, uint64_t hash, const uint8_t *key,
                       uint32_t key_len)
{
    return sl->hash == hash && sl->key_len == key_len &&
           (key_len == 0 || memcmp(sl->rec, key, key_len) == 0);
}

/* The slot that holds key, or SIZE_MAX. */
static size_t find_slot(const struct kv_memstore *ms, uint64_t hash, const uint8_t *key,
                        uint32_t key_len)
{
    size_t pos = (size_t)(hash & ms->mask);
    /* Bounded by the capacity: M2 guarantees an empty slot, M4 a stop before wrapping. */
    for (size_t dist = 0; dist <= ms->mask; dist++) {
        const struct ms_slot *sl = &ms->slots[pos];
        if (sl->rec == NULL || slot_dist(ms, pos) < dist)
            return SIZE_MAX; /* M4: key would have displaced this occupant */
        if (slot_holds(sl, hash, key, key_len))
            return pos;
        pos = (pos + 1) & ms->mask;
    }
    RK_ASSERT(!"a probe went round the whole table");
    return SIZE_MAX;
}

/* Places a slot whose key is not in the table; there must be a free slot. */
static void insert_slot(struct ms_slot *slots, size_t mask, struct ms_slot cur)
{
    RK_ASSERT(cur.rec != NULL);
    size_t pos = (size_t)(cur.hash & mask);
    size_t dist = 0;
    for (size_t step = 0; step <= mask; step++) {
        struct ms_slot *sl = &slots[pos];
        if (sl->rec == NULL) {
            *sl = cur;
            return;
        }
        size_t resident = (pos - (size_t)(sl->hash & mask)) & mask;
        if (resident < dist) { /* Robin Hood: the farther-from-home key takes the slot */
            struct ms_slot tmp = *sl;
            *sl = cur;
            cur = tmp;
            dist = resident;
        }
        pos = (pos + 1) & mask;
        dist++;
    }
    RK_ASSERT(!"insert into a full table");
}

/* Empties slot pos and shifts the run after it back by one (no tombstones). */
static void remove_slot(struct kv_memstore *ms, size_t pos)
{
    RK_ASSERT(ms->slots[pos].rec != NULL);
    for (size_t step = 0; step < ms->mask; step++) {
        size_t next = (pos + 1) & ms->mask;
        if (ms->slots[next].rec == NULL || slot_dist(ms, next) == 0)
            break; /* next is at home or absent: nothing after it probed past pos */
        ms->slots[pos] = ms->slots[next];
        pos = next;
    }
    memset(&ms->slots[pos], 0, sizeof(ms->slots[pos]));
}

static struct ms_slot *alloc_slots(const struct rk_alloc *a, size_t capacity)
{
    if (capacity > SIZE_MAX / sizeof(struct ms_slot))
        return NULL;
    struct ms_slot *slots = rk_malloc(a, capacity * sizeof(*slots));
    if (slots != NULL)
        memset(slots, 0, capacity * sizeof(*slots));
    return slots;
}

/* Doubles the table when one more key would pass a load of 3/4 (M2). Leaves the table as it
 * was on RK_ENOMEM. */
static int reserve_one(struct kv_memstore *ms)
{
    size_t capacity = ms->mask + 1;
    if ((ms->count + 1) * 4 <= (uint64_t)capacity * 3)
        return RK_OK;
    if (capacity > SIZE_MAX / 2)
        return RK_ENOMEM;
    size_t grown = capacity * 2;
    struct ms_slot *slots = alloc_slots(ms->alloc, grown);
    if (slots == NULL)
        return RK_ENOMEM;
    /* Reinserting in slot order is a function of the old layout: deterministic (S3). */
    for (size_t i = 0; i < capacity; i++) {
        if (ms->slots[i].rec != NULL)
            insert_slot(slots, grown - 1, ms->slots[i]);
    }
    rk_free(ms->alloc, ms->slots);
    ms->slots = slots;
    ms->mask = grown - 1;
    return RK_OK;
}

static size_t rec_size(uint32_t key_len, uint32_t val_len)
{
    size_t size = (size_t)key_len + val_len;
    return size == 0 ? 1 : size; /* never ask an allocator for 0 bytes */
}

static void note_index(struct kv_memstore *ms, uint64_t index)
{
    if (index > ms->applied_index)
        ms->applied_index = index;
}

/* ---- ops -------------------------------------------------------------------------------- */

static int ms_get(struct kv_store *s, const uint8_t *key, uint32_t key_len, const uint8_t **val,
                  uint32_t *val_len)
{
    struct kv_memstore *ms = to_ms(s);
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(val != NULL);
    RK_ASSERT(val_len != NULL);
    size_t pos = find_slot(ms, key_hash(key, key_len), key, key_len);
    if (pos == SIZE_MAX)
        return RK_ENOENT;
    *val = ms->slots[pos].rec + ms->slots[pos].key_len;
    *val_len = ms->slots[pos].val_len;
    return RK_OK;
}

/* Replaces the value of the key in slot pos. On RK_ENOMEM the old record is intact (S1). */
static int overwrite(struct kv_memstore *ms, size_t pos, const uint8_t *val, uint32_t val_len)
{
    struct ms_slot *sl = &ms->slots[pos];
    uint8_t *rec = rk_realloc(ms->alloc, sl->rec, rec_size(sl->key_len, val_len));
    if (rec == NULL)
        return RK_ENOMEM;
    if (val_len > 0)
        memcpy(rec + sl->key_len, val, val_len);
    sl->rec = rec;
    sl->val_len = val_len;
    return RK_OK;
}

static int ms_put(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                  const uint8_t *val, uint32_t val_len)
{
    struct kv_memstore *ms = to_ms(s);
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(val != NULL || val_len == 0);
    uint64_t hash = key_hash(key, key_len);
    size_t pos = find_slot(ms, hash, key, key_len);
    if (pos != SIZE_MAX) {
        int rc = overwrite(ms, pos, val, val_len);
        if (rc == RK_OK)
            note_index(ms, index);
        return rc;
    }
    /* Grow first, then allocate the record: a failure of either leaves the contents as they
     * were (a grown but otherwise unchanged table is the same store). */
    int rc = reserve_one(ms);
    if (rc != RK_OK)
        return rc;
    uint8_t *rec = rk_malloc(ms->alloc, rec_size(key_len, val_len));
    if (rec == NULL)
        return RK_ENOMEM;
    if (key_len > 0)
        memcpy(rec, key, key_len);
    if (val_len > 0)
        memcpy(rec + key_len, val, val_len);
    struct ms_slot sl = {.hash = hash, .rec = rec, .key_len = key_len, .val_len = val_len};
    insert_slot(ms->slots, ms->mask, sl);
    ms->count++;
    note_index(ms, index);
    RK_ASSERT(ms->count * 4 <= (uint64_t)(ms->mask + 1) * 3);
    return RK_OK;
}

static int ms_del(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                  bool *existed)
{
    struct kv_memstore *ms = to_ms(s);
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(existed != NULL);
    size_t pos = find_slot(ms, key_hash(key, key_len), key, key_len);
    *existed = pos != SIZE_MAX;
    if (*existed) {
        RK_ASSERT(ms->count > 0);
        rk_free(ms->alloc, ms->slots[pos].rec);
        remove_slot(ms, pos);
        ms->count--;
    }
    note_index(ms, index);
    return RK_OK;
}

static uint64_t ms_count(struct kv_store *s)
{
    return to_ms(s)->count;
}

static uint64_t ms_applied_index(struct kv_store *s)
{
    return to_ms(s)->applied_index;
}

static int ms_scan(struct kv_store *s,
                   bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                              uint32_t val_len),
                   void *ctx)
{
    struct kv_memstore *ms = to_ms(s);
    RK_ASSERT(fn != NULL);
    uint64_t count = ms->count;
    for (size_t i = 0; i <= ms->mask; i++) {
        const struct ms_slot *sl = &ms->slots[i];
        if (sl->rec != NULL && !fn(ctx, sl->rec, sl->key_len, sl->rec + sl->key_len, sl->val_len))
            break;
        RK_ASSERT(ms->count == count); /* fn must not mutate the store it scans */
    }
    return RK_OK;
}

/* The canonical order (store.h key_order): ascending 32-bit XXH3 hash, then bytes, then
 * length (bitcask's: a function of the keys alone, unlike the slots' order). */
static int ms_key_order(const uint8_t *a, uint32_t a_len, const uint8_t *b, uint32_t b_len)
{
    uint32_t ha = (uint32_t)(key_hash(a, a_len) >> 32), hb = (uint32_t)(key_hash(b, b_len) >> 32);
    if (ha != hb)
        return ha < hb ? -1 : 1;
    uint32_t n = a_len < b_len ? a_len : b_len;
    int c = n == 0 ? 0 : memcmp(a, b, n);
    if (c != 0)
        return c;
    return a_len == b_len ? 0 : a_len < b_len ? -1 : 1;
}

static int ms_slot_order(const void *x, const void *y)
{
    const struct ms_slot *a = *(const struct ms_slot *const *)x;
    const struct ms_slot *b = *(const struct ms_slot *const *)y;
    return ms_key_order(a->rec, a->key_len, b->rec, b->key_len);
}

/* store.h scan_after. A store in memory for tests and tools: each call sorts the keys after the
 * cursor (O(n log n) a call, and n pointers of memory), which a walk in small pieces pays per
 * piece. */
static int ms_scan_after(struct kv_store *s, const uint8_t *after, uint32_t after_len,
                         bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                    const uint8_t *val, uint32_t val_len),
                         void *ctx)
{
    struct kv_memstore *ms = to_ms(s);
    RK_ASSERT(fn != NULL);
    const struct ms_slot **v = NULL;
    size_t n = 0;
    if (ms->count > 0) {
        v = rk_malloc(ms->alloc, (size_t)ms->count * sizeof(*v));
        if (v == NULL)
            return RK_ENOMEM;
    }
    for (size_t i = 0; i <= ms->mask; i++) {
        const struct ms_slot *sl = &ms->slots[i];
        if (sl->rec != NULL &&
            (after == NULL || ms_key_order(sl->rec, sl->key_len, after, after_len) > 0))
            v[n++] = sl;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), ms_slot_order);
    uint64_t count = ms->count;
    for (size_t i = 0; i < n; i++) {
        if (!fn(ctx, v[i]->rec, v[i]->key_len, v[i]->rec + v[i]->key_len, v[i]->val_len))
            break;
        RK_ASSERT(ms->count == count); /* fn must not mutate the store it scans */
    }
    rk_free(ms->alloc, v);
    return RK_OK;
}

/* Nothing to close or make durable in memory. */
static int ms_end_batch(struct kv_store *s, uint64_t index)
{
    struct kv_memstore *ms = to_ms(s);
    RK_ASSERT(index >= ms->applied_index);
    return RK_OK;
}

static int ms_sync(struct kv_store *s)
{
    (void)to_ms(s);
    return RK_OK;
}

static void ms_destroy(struct kv_store *s)
{
    struct kv_memstore *ms = to_ms(s);
    for (size_t i = 0; i <= ms->mask; i++)
        rk_free(ms->alloc, ms->slots[i].rec);
    rk_free(ms->alloc, ms->slots);
    rk_free(ms->alloc, ms);
}

static const struct kv_store_ops memstore_ops = {
    .get = ms_get,
    .put = ms_put,
    .del = ms_del,
    .count = ms_count,
    .applied_index = ms_applied_index,
    .scan = ms_scan,
    .scan_after = ms_scan_after,
    .key_order = ms_key_order,
    .end_batch = ms_end_batch,
    .sync = ms_sync,
    .destroy = ms_destroy,
};

int kv_memstore_create(const struct rk_alloc *a, struct kv_store **out)
{
    RK_ASSERT(a != NULL);
    RK_ASSERT(out != NULL);
    *out = NULL;
    struct kv_memstore *ms = rk_malloc(a, sizeof(*ms));
    if (ms == NULL)
        return RK_ENOMEM;
    memset(ms, 0, sizeof(*ms));
    ms->slots = alloc_slots(a, MS_CAPACITY_MIN);
    if (ms->slots == NULL)
        goto err_free_ms;
    ms->base.ops = &memstore_ops;
    ms->alloc = a;
    ms->mask = MS_CAPACITY_MIN - 1;
    RK_ASSERT_SLOW(kv_memstore_valid(&ms->base));
    *out = &ms->base;
    return RK_OK;

err_free_ms:
    rk_free(a, ms);
    return RK_ENOMEM;
}

/* ---- introspection ---------------------------------------------------------------------- */

uint64_t kv_memstore_capacity(struct kv_store *s)
{
    return (uint64_t)to_ms(s)->mask + 1;
}

bool kv_memstore_valid(struct kv_store *s)
{
    struct kv_memstore *ms = to_ms(s);
    size_t capacity = ms->mask + 1;
    if (capacity < MS_CAPACITY_MIN || (capacity & ms->mask) != 0) /* M1 */
        return false;
    uint64_t occupied = 0;
    for (size_t i = 0; i < capacity; i++) {
        const struct ms_slot *sl = &ms->slots[i];
        size_t prev = (i - 1) & ms->mask;
        if (sl->rec == NULL)
            continue;
        occupied++;
        if (sl->hash != key_hash(sl->rec, sl->key_len)) /* M3 */
            return false;
        size_t dist = slot_dist(ms, i);
        /* M4 */
        if (dist > 0 && (ms->slots[prev].rec == NULL || dist > slot_dist(ms, prev) + 1))
            return false;
        if (find_slot(ms, sl->hash, sl->rec, sl->key_len) != i) /* M5 */
            return false;
    }
    return occupied == ms->count && ms->count * 4 <= (uint64_t)capacity * 3; /* M2 */
}
