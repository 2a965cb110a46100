/*
 * exptab.c — the in-memory expiry table: (db, key) -> deadline for every key with a deadline
 * (kv_int.h). Open addressing with linear probing and backward-shift deletion, keys hashed with
 * XXH3-64, load <= 1/2.
 *
 * Invariants:
 *   E1  n == the number of occupied slots; mask + 1 is a power of two with n * 2 <= mask + 1
 *       (or no slots at all when nothing was ever inserted).
 *   E2  Every occupied slot is reachable from its home slot without crossing an empty one (no
 *       tombstones: deletion shifts the run back).
 *   E3  No two slots hold the same [db][key]; every deadline is > 0.
 * The table is the same function of the applied entries on every replica, but nothing that the
 * replicas must agree on depends on its slot order: only the leader's sweep walks it, and what
 * the sweep finds becomes a log entry.
 */
#include <string.h>

#include <xxhash.h>

#include "common/assert.h"
#include "kv/kv_int.h"

#define EXP_MIN_SLOTS 64u

void exptab_init(struct exptab *t, const struct rk_alloc *a)
{
    memset(t, 0, sizeof(*t));
    t->alloc = a;
}

void exptab_clear(struct exptab *t)
{
    if (t->slots != NULL) {
        for (uint64_t i = 0; i <= t->mask; i++) {
            rk_free(t->alloc, t->slots[i].dbkey);
            t->slots[i].dbkey = NULL;
        }
    }
    t->n = 0;
    t->cursor = 0;
}

void exptab_free(struct exptab *t)
{
    exptab_clear(t);
    rk_free(t->alloc, t->slots);
    t->slots = NULL;
    t->mask = 0;
}

static uint32_t find_slot(const struct exptab *t, uint64_t h, const uint8_t *k, uint32_t len,
                          bool *found)
{
    uint32_t pos = (uint32_t)(h & t->mask);
    for (uint64_t step = 0; step <= t->mask; step++) {
        const struct exp_entry *e = &t->slots[pos];
        if (e->dbkey == NULL) {
            *found = false;
            return pos;
        }
        if (e->hash == h && e->dbkey_len == len && memcmp(e->dbkey, k, len) == 0) {
            *found = true;
            return pos;
        }
        pos = (pos + 1) & t->mask;
    }
    RK_ASSERT(!"the expiry table has no empty slot (E1)");
    *found = false;
    return 0;
}

uint64_t exptab_get(const struct exptab *t, const uint8_t *dbkey, uint32_t len)
{
    if (t->n == 0)
        return 0;
    bool found = false;
    uint32_t pos = find_slot(t, XXH3_64bits(dbkey, len), dbkey, len, &found);
    return found ? t->slots[pos].deadline_ms : 0;
}

static int grow(struct exptab *t)
{
    uint64_t old_slots = t->slots == NULL ? 0 : (uint64_t)t->mask + 1;
    uint64_t slots = old_slots == 0 ? EXP_MIN_SLOTS : old_slots * 2;
    if (slots > (1ull << 31))
        return RK_ENOMEM;
    struct exp_entry *ns = rk_malloc(t->alloc, (size_t)slots * sizeof(*ns));
    if (ns == NULL)
        return RK_ENOMEM;
    memset(ns, 0, (size_t)slots * sizeof(*ns));
    struct exp_entry *old = t->slots;
    t->slots = ns;
    t->mask = (uint32_t)(slots - 1);
    for (uint64_t i = 0; i < old_slots; i++) {
        if (old[i].dbkey == NULL)
            continue;
        bool found = false;
        uint32_t pos = find_slot(t, old[i].hash, old[i].dbkey, old[i].dbkey_len, &found);
        RK_ASSERT(!found);
        t->slots[pos] = old[i];
    }
    rk_free(t->alloc, old);
    t->cursor = 0;
    return RK_OK;
}

static void remove_at(struct exptab *t, uint32_t pos)
{
    rk_free(t->alloc, t->slots[pos].dbkey);
    memset(&t->slots[pos], 0, sizeof(t->slots[pos]));
    t->n--;
    /* Backward shift (E2): move back every entry of the run that may live at pos. */
    uint32_t hole = pos;
    uint32_t next = (pos + 1) & t->mask;
    for (uint64_t step = 0; step < t->mask && t->slots[next].dbkey != NULL; step++) {
        uint32_t home = (uint32_t)(t->slots[next].hash & t->mask);
        /* The entry at next may move to hole when hole lies on its path from home. */
        bool movable = ((next - home) & t->mask) >= ((next - hole) & t->mask);
        if (movable) {
            t->slots[hole] = t->slots[next];
            memset(&t->slots[next], 0, sizeof(t->slots[next]));
            hole = next;
        }
        next = (next + 1) & t->mask;
    }
}

int exptab_set(struct exptab *t, const uint8_t *dbkey, uint32_t len, uint64_t deadline_ms)
{
    uint64_t h = XXH3_64bits(dbkey, len);
    bool found = false;
    uint32_t pos = 0;
    if (t->slots != NULL)
        pos = find_slot(t, h, dbkey, len, &found);
    if (deadline_ms == 0) {
        if (found)
            remove_at(t, pos);
        return RK_OK;
    }
    if (found) {
        t->slots[pos].deadline_ms = deadline_ms;
        return RK_OK;
    }
    if (t->slots == NULL || ((uint64_t)t->n + 1) * 2 > (uint64_t)t->mask + 1) {
        int rc = grow(t);
        if (rc != RK_OK)
            return rc;
        pos = find_slot(t, h, dbkey, len, &found);
        RK_ASSERT(!found);
    }
    uint8_t *copy = rk_malloc(t->alloc, len == 0 ? 1 : len);
    if (copy == NULL)
        return RK_ENOMEM;
    memcpy(copy, dbkey, len);
    t->slots[pos] =
        (struct exp_entry){.hash = h, .deadline_ms = deadline_ms, .dbkey = copy, .dbkey_len = len};
    t->n++;
    return RK_OK;
}

void exptab_sweep(struct exptab *t, uint32_t budget,
                  bool (*fn)(void *ctx, const uint8_t *dbkey, uint32_t len, uint64_t deadline),
                  void *ctx)
{
    if (t->n == 0 || t->slots == NULL)
        return;
    for (uint32_t i = 0; i < budget && i <= t->mask; i++) {
        uint32_t pos = t->cursor & t->mask;
        t->cursor = (pos + 1) & t->mask;
        const struct exp_entry *e = &t->slots[pos];
        if (e->dbkey != NULL && !fn(ctx, e->dbkey, e->dbkey_len, e->deadline_ms))
            return;
    }
}
