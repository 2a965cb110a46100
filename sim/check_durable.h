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
struct replica_log_job;

struct durable_log {
    uint64_t base;   /* entries up to here are covered by the node's snapshot point */
    uint64_t last;   /* the last durable entry (>= base) */
    uint64_t *terms; /* terms[i - base - 1] for base < i <= last; 0: not durable */
    size_t cap;
};

/* The durable log of a node that just started: what it recovered (its log as raft loaded it). */
void durable_log_reset(struct durable_log *d, const struct raft *r);

/* A job whose writes a successful sync made durable: its compaction, truncation and entries. */
void durable_log_synced(struct durable_log *d, const struct replica_log_job *job);

/* Whether the node's disk holds the entry (index, term), or a snapshot point at or past it. */
bool durable_log_holds(const struct durable_log *d, uint64_t index, uint64_t term);

void durable_log_free(struct durable_log *d);

#endif
