/*
 * memstore.h — the in-memory kv_store: an open-addressing hash table with Robin Hood linear
 * probing and backward-shift deletion (no tombstones), keys hashed with XXH3-64.
 *
 * Used by the simulator and the tests until Bitcask lands, and as the reference a Bitcask store
 * is compared against. Nothing is durable: applied_index restarts at 0 with a new store.
 */
#ifndef RK_KV_MEMSTORE_H
#define RK_KV_MEMSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/alloc.h"
#include "kv/store.h"

/* Creates an empty store that allocates through a (borrowed: it must outlive the store).
 * RK_OK and *out, owned by the caller and freed with (*out)->ops->destroy(*out); RK_ENOMEM. */
int kv_memstore_create(const struct rk_alloc *a, struct kv_store **out);

/* Introspection for tests and slow asserts. s must have been made by kv_memstore_create. */
/* Number of slots of the table (a power of two). */
uint64_t kv_memstore_capacity(struct kv_store *s);
/* Checks every invariant of the table (M1–M5 in memstore.c) in O(capacity). */
bool kv_memstore_valid(struct kv_store *s);

#endif
