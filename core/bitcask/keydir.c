/*
 * keydir.c — the bitcask's in-memory index: key -> (file id, offset, value size, index).
 *
 * An open-addressing table of pointers to entries, Robin Hood linear probing with backward-shift
 * deletion (as in kv/memstore.c), with two refinements:
 *
 * Canonical layout. A key's home slot is the TOP bits of its 32-bit hash, and keys with the
 * same home are kept in ascending (hash, key) order. The layout is then a function of the set of
 * keys and the capacity alone, not of the order of inserts and deletes (Blelloch & Golovin,
 * "Strongly history-independent hashing", 2007), and reading the slots in order — the wrapped
 * prefix last — visits the keys in ascending (hash, key) order whatever the capacity. So scan's
 * order (store.h S3) is the same on every replica, before and after a restart or a merge.
 *
 * Incremental growth. When one more key would pass a load of 7/8, a table of twice the size is
 * allocated and becomes the table inserts go to; the old one is drained by every later
 * mutating call (bc_kd_step), BC_KD_STEP units of work each (a unit: look at one old slot, or
 * move one entry). A move is a Robin Hood insert into the new table plus a backward-shift
 * delete from the old, so the old table stays a valid table and a lookup just tries both.
 * Why this rather than a bounded doubling: a full rehash of n keys chases n pointers (a cache
 * miss each, ~100 ms per million keys); here no call does more than BC_KD_STEP moves. The one
 * O(n) step left is zeroing the new table (memset, a few ms per million keys). The drain is
 * sure to end before the new table needs to grow: it starts at 7/8 of the old capacity C, must
 * visit C slots and move at most 7/8 C entries, and gets BC_KD_STEP units per insert, while the
 * next growth is 7/8 C inserts away (asserted: a growth never finds a drain in progress unless
 * bc_kd_finish ran it to the end, which scan does anyway).
 *
 * Memory: 8 bytes per slot (1.14x to 2.3x the keys; 3.4x while draining) plus 32 + key bytes
 * per entry: about 60 bytes per 16-byte key.
 *
 * Invariants (bc_kd_valid):
 *   K1  bits >= BC_KD_BITS_MIN; count <= 7/8 of the current table's slots.
 *   K2  each entry's hash is bc_kd_hash(key); home(e) = hash >> (32 - bits).
 *   K3  Robin Hood order in each table: along a run, (distance from home, then (hash, key) at
 *       equal home) never breaks ring order: dist(i+1) <= dist(i) + 1, and an entry at its
 *       home's neighbour with the same home sorts after its predecessor.
 *   K4  every key is in exactly one table; old slots below old_pos are empty.
 *   K5  count == entries in both tables; old_count == entries in the old one.
 */
#include "bitcask/bitcask_int.h"

#include <xxhash.h>

#include "common/assert.h"

#define BC_KD_BITS_MIN 4u
#define BC_KD_STEP     32u

uint32_t bc_kd_hash(const uint8_t *key, uint32_t key_len)
{
    return (uint32_t)(XXH3_64bits(key, key_len) >> 32);
}

static size_t kd_cap(uint32_t bits)
{
    return (size_t)1 << bits;
}

static size_t kd_home(uint32_t hash, uint32_t bits)
{
    RK_ASSERT(bits >= BC_KD_BITS_MIN && bits <= 32);
    return (size_t)(hash >> (32 - bits));
}

static size_t kd_dist(struct bc_kent *const *slots, uint32_t bits, size_t pos)
{
    RK_ASSERT(slots[pos] != NULL);
    return (pos - kd_home(slots[pos]->hash, bits)) & (kd_cap(bits) - 1);
}

/* Total order on keys: hash, then bytes, then length. */
static int kd_cmp(uint32_t hash, const uint8_t *key, uint32_t key_len, const struct bc_kent *e)
{
    if (hash != e->hash)
        return hash < e->hash ? -1 : 1;
    uint32_t n = key_len < e->key_len ? key_len : e->key_len;
    int c = n == 0 ? 0 : memcmp(key, e->key, n);
    if (c != 0)
        return c;
    if (key_len != e->key_len)
        return key_len < e->key_len ? -1 : 1;
    return 0;
}

/* The slot holding key in one table, or SIZE_MAX. Stops where the key would have displaced. */
static size_t tbl_find(struct bc_kent *const *slots, uint32_t bits, uint32_t hash,
                       const uint8_t *key, uint32_t key_len)
{
    size_t mask = kd_cap(bits) - 1;
    size_t pos = kd_home(hash, bits);
    for (size_t dist = 0; dist <= mask; dist++) {
        const struct bc_kent *e = slots[pos];
        if (e == NULL)
            return SIZE_MAX;
        size_t resident = kd_dist(slots, bits, pos);
        if (resident < dist)
            return SIZE_MAX;
        if (resident == dist) {
            int c = kd_cmp(hash, key, key_len, e);
            if (c == 0)
                return pos;
            if (c < 0)
                return SIZE_MAX; /* same home, and the run is sorted: key would be here */
        }
        pos = (pos + 1) & mask;
    }
    RK_ASSERT(!"a keydir probe went round the whole table");
    return SIZE_MAX;
}

/* Places e (absent) in a table with a free slot, keeping K3. */
static void tbl_insert(struct bc_kent **slots, uint32_t bits, struct bc_kent *e)
{
    size_t mask = kd_cap(bits) - 1;
    size_t pos = kd_home(e->hash, bits);
    size_t dist = 0;
    for (size_t step = 0; step <= mask; step++) {
        struct bc_kent *r = slots[pos];
        if (r == NULL) {
            slots[pos] = e;
            return;
        }
        size_t resident = kd_dist(slots, bits, pos);
        bool take =
            resident < dist || (resident == dist && kd_cmp(e->hash, e->key, e->key_len, r) < 0);
        if (take) {
            slots[pos] = e;
            e = r;
            dist = resident;
        }
        pos = (pos + 1) & mask;
        dist++;
    }
    RK_ASSERT(!"insert into a full keydir table");
}

/* Empties slot pos and shifts the run after it back by one. */
static void tbl_remove_at(struct bc_kent **slots, uint32_t bits, size_t pos)
{
    size_t mask = kd_cap(bits) - 1;
    RK_ASSERT(slots[pos] != NULL);
    for (size_t step = 0; step < mask; step++) {
        size_t next = (pos + 1) & mask;
        if (slots[next] == NULL || kd_dist(slots, bits, next) == 0)
            break;
        slots[pos] = slots[next];
        pos = next;
    }
    slots[pos] = NULL;
}

static struct bc_kent **tbl_alloc(const struct rk_alloc *a, uint32_t bits)
{
    if (bits > 32 || kd_cap(bits) > SIZE_MAX / sizeof(struct bc_kent *))
        return NULL;
    struct bc_kent **slots = rk_malloc(a, kd_cap(bits) * sizeof(*slots));
    if (slots != NULL)
        memset(slots, 0, kd_cap(bits) * sizeof(*slots));
    return slots;
}

int bc_kd_init(struct bc_keydir *kd, const struct rk_alloc *a)
{
    memset(kd, 0, sizeof(*kd));
    kd->alloc = a;
    kd->bits = BC_KD_BITS_MIN;
    kd->slots = tbl_alloc(a, kd->bits);
    return kd->slots == NULL ? RK_ENOMEM : RK_OK;
}

static void tbl_free_entries(const struct rk_alloc *a, struct bc_kent **slots, uint32_t bits)
{
    for (size_t i = 0; slots != NULL && i < kd_cap(bits); i++)
        rk_free(a, slots[i]);
}

void bc_kd_free(struct bc_keydir *kd)
{
    tbl_free_entries(kd->alloc, kd->slots, kd->bits);
    tbl_free_entries(kd->alloc, kd->old, kd->old_bits);
    rk_free(kd->alloc, kd->slots);
    rk_free(kd->alloc, kd->old);
    memset(kd, 0, sizeof(*kd));
}

struct bc_kent *bc_kd_find(const struct bc_keydir *kd, uint32_t hash, const uint8_t *key,
                           uint32_t key_len)
{
    RK_ASSERT(key != NULL || key_len == 0);
    size_t pos = tbl_find(kd->slots, kd->bits, hash, key, key_len);
    if (pos != SIZE_MAX)
        return kd->slots[pos];
    if (kd->old == NULL)
        return NULL;
    pos = tbl_find(kd->old, kd->old_bits, hash, key, key_len);
    return pos == SIZE_MAX ? NULL : kd->old[pos];
}

/* Moves old entries into the new table, budget units of work at most. */
static void kd_drain(struct bc_keydir *kd, size_t budget)
{
    while (kd->old != NULL && budget > 0) {
        if (kd->old_pos == kd_cap(kd->old_bits)) {
            RK_ASSERT(kd->old_count == 0);
            rk_free(kd->alloc, kd->old);
            kd->old = NULL;
            kd->old_bits = 0;
            kd->old_pos = 0;
            break;
        }
        struct bc_kent *e = kd->old[kd->old_pos];
        budget--;
        if (e == NULL) {
            kd->old_pos++;
            continue;
        }
        /* The backward shift may pull the next entry of the run into old_pos: look again. */
        tbl_remove_at(kd->old, kd->old_bits, kd->old_pos);
        tbl_insert(kd->slots, kd->bits, e);
        kd->old_count--;
        kd->moved++;
    }
}

void bc_kd_step(struct bc_keydir *kd)
{
    kd_drain(kd, BC_KD_STEP);
}

void bc_kd_finish(struct bc_keydir *kd)
{
    /* Bounded: each unit visits a slot or moves an entry, and both are finite. */
    kd_drain(kd, SIZE_MAX);
    RK_ASSERT(kd->old == NULL);
}

int bc_kd_reserve(struct bc_keydir *kd)
{
    if ((kd->count + 1) * 8 <= (uint64_t)kd_cap(kd->bits) * 7)
        return RK_OK;
    if (kd->bits >= 32)
        return RK_ENOMEM;
    struct bc_kent **grown = tbl_alloc(kd->alloc, kd->bits + 1);
    if (grown == NULL)
        return RK_ENOMEM;
    /* Only a scan-less run of more than 7/8 C inserts without steps could get here mid-drain;
     * finishing it keeps two tables at most. */
    bc_kd_finish(kd);
    kd->old = kd->slots;
    kd->old_bits = kd->bits;
    kd->old_pos = 0;
    kd->old_count = kd->count;
    kd->slots = grown;
    kd->bits++;
    return RK_OK;
}

struct bc_kent *bc_kd_new(struct bc_keydir *kd, uint32_t hash, const uint8_t *key, uint32_t key_len)
{
    RK_ASSERT(key != NULL || key_len == 0);
    struct bc_kent *e = rk_malloc(kd->alloc, sizeof(*e) + key_len);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->hash = hash;
    e->key_len = key_len;
    if (key_len > 0)
        memcpy(e->key, key, key_len);
    kd->entry_bytes += sizeof(*e) + key_len;
    return e;
}

void bc_kd_discard(struct bc_keydir *kd, struct bc_kent *e)
{
    RK_ASSERT(kd->entry_bytes >= sizeof(*e) + e->key_len);
    kd->entry_bytes -= sizeof(*e) + e->key_len;
    rk_free(kd->alloc, e);
}

void bc_kd_insert(struct bc_keydir *kd, struct bc_kent *e)
{
    RK_ASSERT(e != NULL);
    RK_ASSERT((kd->count + 1) * 8 <= (uint64_t)kd_cap(kd->bits) * 7);
    RK_ASSERT_SLOW(bc_kd_find(kd, e->hash, e->key, e->key_len) == NULL);
    tbl_insert(kd->slots, kd->bits, e);
    kd->count++;
}

void bc_kd_remove(struct bc_keydir *kd, struct bc_kent *e)
{
    RK_ASSERT(e != NULL);
    RK_ASSERT(kd->count > 0);
    size_t pos = tbl_find(kd->slots, kd->bits, e->hash, e->key, e->key_len);
    if (pos != SIZE_MAX) {
        RK_ASSERT(kd->slots[pos] == e);
        tbl_remove_at(kd->slots, kd->bits, pos);
    } else {
        RK_ASSERT(kd->old != NULL);
        pos = tbl_find(kd->old, kd->old_bits, e->hash, e->key, e->key_len);
        RK_ASSERT(pos != SIZE_MAX && kd->old[pos] == e);
        tbl_remove_at(kd->old, kd->old_bits, pos);
        kd->old_count--;
    }
    kd->count--;
    bc_kd_discard(kd, e);
}

struct bc_kent *bc_kd_next(const struct bc_keydir *kd, size_t *pos)
{
    RK_ASSERT(kd->old == NULL);
    size_t cap = kd_cap(kd->bits);
    /* The wrapped prefix: entries at the start whose home is near the end come last. */
    size_t wrapped = 0;
    while (wrapped < cap && kd->slots[wrapped] != NULL &&
           kd_home(kd->slots[wrapped]->hash, kd->bits) > wrapped)
        wrapped++;
    while (*pos < cap) {
        struct bc_kent *e = kd->slots[(wrapped + *pos) & (cap - 1)];
        (*pos)++;
        if (e != NULL)
            return e;
    }
    return NULL;
}

/* One table's part of a range walk: its entries with hash >= lo in ascending (hash, key).
 * The slots from lo's home to the end, then the wrapped prefix (entries at the start whose
 * home is near the end, which sort last). Entries at or after lo's home but homed before it
 * have smaller hashes and are passed over; an entry homed at or after lo's home sits at or
 * after it, or in the wrapped prefix, whose slots hold only wrapped entries: so the walk
 * starts past the prefix when lo's home falls inside it. */
struct kd_walk {
    struct bc_kent *const *slots;
    uint32_t bits;
    uint32_t lo;
    size_t pos, end; /* the current stretch of slots [pos, end) */
    size_t wrapped;  /* length of the wrapped prefix */
    bool in_prefix;  /* the second stretch, [0, wrapped) */
};

static void walk_init(struct kd_walk *w, struct bc_kent *const *slots, uint32_t bits, uint32_t lo)
{
    size_t cap = kd_cap(bits);
    size_t wrapped = 0;
    while (wrapped < cap && slots[wrapped] != NULL && kd_home(slots[wrapped]->hash, bits) > wrapped)
        wrapped++;
    size_t home = kd_home(lo, bits);
    *w = (struct kd_walk){.slots = slots,
                          .bits = bits,
                          .lo = lo,
                          .pos = home > wrapped ? home : wrapped,
                          .end = cap,
                          .wrapped = wrapped};
}

static struct bc_kent *walk_peek(struct kd_walk *w)
{
    for (;;) {
        while (w->pos < w->end) {
            struct bc_kent *e = w->slots[w->pos];
            if (e != NULL && e->hash >= w->lo)
                return e;
            w->pos++;
        }
        if (w->in_prefix || w->wrapped == 0)
            return NULL;
        w->in_prefix = true;
        w->pos = 0;
        w->end = w->wrapped;
    }
}

size_t bc_kd_range(const struct bc_keydir *kd, uint32_t lo, uint64_t budget,
                   bool (*fn)(void *ctx, const struct bc_kent *e), void *ctx, uint64_t *next)
{
    struct kd_walk a, b = {0};
    walk_init(&a, kd->slots, kd->bits, lo);
    bool two = kd->old != NULL;
    if (two)
        walk_init(&b, kd->old, kd->old_bits, lo);
    size_t seen = 0;
    bool have_last = false;
    uint32_t last = 0;
    *next = 0;
    for (;;) {
        struct bc_kent *ea = walk_peek(&a), *eb = two ? walk_peek(&b) : NULL, *e = ea;
        if (eb != NULL && (ea == NULL || kd_cmp(eb->hash, eb->key, eb->key_len, ea) < 0))
            e = eb;
        if (e == NULL)
            return seen; /* the end of the keyspace: *next stays 0 */
        if (have_last && seen >= budget && e->hash != last) {
            *next = (uint64_t)last + 1;
            return seen;
        }
        if (e == ea)
            a.pos++;
        else
            b.pos++;
        seen++;
        have_last = true;
        last = e->hash;
        if (!fn(ctx, e)) {
            *next = last < UINT32_MAX ? (uint64_t)last + 1 : 0;
            return seen;
        }
    }
}

uint64_t bc_kd_bytes(const struct bc_keydir *kd)
{
    uint64_t tables = kd_cap(kd->bits) * sizeof(struct bc_kent *);
    if (kd->old != NULL)
        tables += kd_cap(kd->old_bits) * sizeof(struct bc_kent *);
    return tables + kd->entry_bytes;
}

static bool tbl_valid(const struct bc_keydir *kd, struct bc_kent *const *slots, uint32_t bits,
                      size_t from, uint64_t *n)
{
    size_t mask = kd_cap(bits) - 1;
    for (size_t i = 0; i <= mask; i++) {
        const struct bc_kent *e = slots[i];
        if (e == NULL)
            continue;
        if (i < from)
            return false; /* K4: drained slots stay empty */
        (*n)++;
        if (e->hash != bc_kd_hash(e->key, e->key_len)) /* K2 */
            return false;
        size_t dist = kd_dist(slots, bits, i);
        size_t prev = (i - 1) & mask;
        if (dist > 0) { /* K3 */
            if (slots[prev] == NULL || dist > kd_dist(slots, bits, prev) + 1)
                return false;
            if (dist == kd_dist(slots, bits, prev) + 1 &&
                kd_cmp(e->hash, e->key, e->key_len, slots[prev]) <= 0)
                return false;
        }
        if (bc_kd_find(kd, e->hash, e->key, e->key_len) != e) /* K4 */
            return false;
    }
    return true;
}

bool bc_kd_valid(const struct bc_keydir *kd)
{
    if (kd->bits < BC_KD_BITS_MIN || kd->count * 8 > (uint64_t)kd_cap(kd->bits) * 7) /* K1 */
        return false;
    uint64_t n_new = 0;
    uint64_t n_old = 0;
    if (!tbl_valid(kd, kd->slots, kd->bits, 0, &n_new))
        return false;
    if (kd->old != NULL && !tbl_valid(kd, kd->old, kd->old_bits, kd->old_pos, &n_old))
        return false;
    return n_old == kd->old_count && n_new + n_old == kd->count; /* K5 */
}
