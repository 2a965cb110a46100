/*
 * log.h — where a replica keeps its Raft log and hard state: an interface, so that the same
 * replica runs over memory (tests, the simulator until the durable log lands) and over segment
 * files on an injected fs (the durable log).
 *
 * Contract (the ready/advance order of raft.h): the replica calls truncate, append and
 * set_hard_state for one ready batch, then sync once; only after sync returns RK_OK may it send
 * the messages that depend on the batch. What a store returned from load must be exactly what
 * was synced: a crash may drop anything written after the last sync, never what came before.
 * An implementation embeds struct log_store as its first member (SQLite's VFS pattern).
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/err.h"
#include "raft/raft.h"

struct log_store;

struct log_store_ops {
    /* Loads what is durable. *entries (consecutive, from snapshot_index + 1) and their data are
     * borrowed until the next call on the store. */
    int (*load)(struct log_store *s, struct raft_hard_state *hs, uint64_t *snapshot_index,
                uint64_t *snapshot_term, const struct raft_entry **entries, size_t *n_entries,
                struct rk_errmsg *err);
    /* Removes entries with index >= from. */
    int (*truncate)(struct log_store *s, uint64_t from, struct rk_errmsg *err);
    /* Appends entries (copied); the first continues the log. */
    int (*append)(struct log_store *s, const struct raft_entry *entries, size_t n,
                  struct rk_errmsg *err);
    int (*set_hard_state)(struct log_store *s, const struct raft_hard_state *hs,
                          struct rk_errmsg *err);
    /* Makes everything above durable. */
    int (*sync)(struct log_store *s, struct rk_errmsg *err);
    void (*destroy)(struct log_store *s);
};

struct log_store {
    const struct log_store_ops *ops;
};

/* An in-memory store: everything appended is "durable" at sync. It outlives the replica that
 * uses it, so that a simulated crash and restart finds the log again. Counts syncs. */
int log_memstore_create(const struct rk_alloc *a, struct log_store **out);
uint64_t log_memstore_syncs(const struct log_store *s);

#endif
