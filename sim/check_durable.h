/* check_durable — what each node's Raft log holds durably, modelled from the log jobs the
 * simulator's storage thread completed (independent of raft's own persisted index), for the
 * commit durability check of sim.c: an entry is committed only once it is durable on a majority
 * (Figure 2, "updated on stable storage before responding to RPCs"; §10.2.1, a leader counts
 * itself only for what its own disk holds). */
#ifndef RK_SIM_CHECK_DURABLE_H
#define RK_SIM_CHECK_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct raft;
struct raft_entry;
struct replica_log_job;

struct durable_log {
    uint64_t base;   /* entries up to here are covered by the node's snapshot point */
    uint64_t last;   /* the last durable entry (>= base) */
    uint64_t *terms; /* terms[i - base - 1] for base < i <= last; 0: not durable */
    size_t cap;
    uint64_t cut; /* a truncation from here was under way at the last crash (0: none) */
};

/* The durable log of a node that just started: what it recovered (its log as raft loaded it). */
void durable_log_reset(struct durable_log *d, const struct raft *r);

/* A job whose writes a successful sync made durable: its compaction, truncation and entries.
 * A job that failed (its write or its group's sync) records its truncation as under way. */
void durable_log_synced(struct durable_log *d, const struct replica_log_job *job);

/* A crash: jobs[0, n) were dropped; those already written may have begun a truncation (the
 * seglog makes its removals durable at once, T1/T2), so entries from the lowest such
 * truncate_from on may be gone after the restart without anything being wrong. */
void durable_log_crash(struct durable_log *d, struct replica_log_job *const *jobs, size_t n);

/* At a restart, when the log has just been opened: 0 if what it loaded (the snapshot point and
 * entries[0, n), consecutive from snapshot_index + 1) holds every entry this node had synced
 * (or a snapshot point past it), else the first index it lost. */
uint64_t durable_log_lost(const struct durable_log *d, uint64_t snapshot_index,
                          const struct raft_entry *entries, size_t n);

/* Whether the node's disk holds the entry (index, term), or a snapshot point at or past it. */
bool durable_log_holds(const struct durable_log *d, uint64_t index, uint64_t term);

void durable_log_free(struct durable_log *d);

#endif
