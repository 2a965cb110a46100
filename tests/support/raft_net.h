/*
 * raft_net.h — a tiny in-memory cluster of raft nodes for unit tests.
 *
 * Each node is a struct raft plus what a host would keep: a "disk" (hard state and log,
 * deep-copied at each ready as the ready/advance contract says) and the list of entries it
 * applied. Messages go through one FIFO queue that tests can inspect, reorder, drop or deliver
 * one at a time. Nothing here is random: a test controls every tick and every delivery.
 *
 * The host loop (rn_process) checks the ready contract as it goes: a message that depends on
 * persistence never shows up among the messages that may leave at once; entries and hard state
 * are written before msgs_after_persist are queued; committed entries are applied in order with
 * no gaps and never differ between nodes at one index (State Machine Safety).
 */
#ifndef RAFT_NET_H
#define RAFT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define RN_MAX_APPLIED 65536

struct rn_msg {
    struct raft_msg m; /* entries and their data deep-copied, owned by the queue */
};

struct rn_node {
    struct raft *r;
    bool down;
    /* The disk. */
    struct raft_hard_state hs;
    struct raft_entry *log; /* log[i].index == snap_index + 1 + i; data owned */
    size_t n_log;
    size_t cap_log;
    /* The snapshot point: the log starts after it (rn_compact, or a ready with has_restore);
     * 0 until a compaction. */
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t syncs; /* readies that had something to persist */
    /* The state machine: terms of the entries applied, by index (1-based); 0 for the indexes a
     * restored snapshot covered (their terms are unknown here). */
    uint64_t applied_term[RN_MAX_APPLIED + 1];
    uint64_t applied;
    /* Snapshots: times rd.snapshot_needed named each follower (by id), readies with
     * has_restore. */
    uint64_t snapshot_requests[RAFT_MAX_VOTERS + 1];
    uint64_t restores;
    /* Read states received, in order. */
    struct raft_read_state reads[256];
    size_t n_reads;
};

struct rn_net;
/* Returns false to drop the message. Called when a message is delivered. */
typedef bool (*rn_filter_fn)(struct rn_net *net, const struct raft_msg *m);

struct rn_net {
    uint32_t n;
    struct rn_node nodes[RAFT_MAX_VOTERS]; /* node id = index + 1 */
    struct rn_msg *queue;
    size_t n_queue;
    size_t cap_queue;
    bool cut[RAFT_MAX_VOTERS + 1][RAFT_MAX_VOTERS + 1]; /* cut[from][to]: drop */
    rn_filter_fn filter;
    void *filter_ctx;
    /* Statistics of delivered messages by type. */
    uint64_t delivered[RAFT_MSG_TYPE_COUNT];
    /* Leaders seen, by term, for Election Safety. */
    uint64_t leader_of_term[4096];
    void (*tweak)(struct raft_config *c);
};

/* n nodes with ids 1..n; tweak (may be NULL) adjusts each config after defaults are set. The
 * default config in tests: election 10..20 ticks, heartbeat 1, pre_vote and check_quorum on,
 * seed = id. */
void rn_init(struct rn_net *net, uint32_t n, void (*tweak)(struct raft_config *c));
void rn_destroy(struct rn_net *net);

struct raft *rn_raft(struct rn_net *net, uint64_t id);
struct rn_node *rn_node(struct rn_net *net, uint64_t id);

/* Runs the host loop of one node until it has no ready: persist, queue messages, apply. */
void rn_process(struct rn_net *net, uint64_t id);
void rn_process_all(struct rn_net *net);

/* Delivers the queued message at position i (removing it) to its target and processes the
 * target. Messages to a down node or across a cut are dropped. */
void rn_deliver_at(struct rn_net *net, size_t i);
/* Delivers until the queue is empty (bounded by max_steps; asserts it drained). */
void rn_deliver_all(struct rn_net *net);
/* Drops every queued message. */
void rn_drop_all(struct rn_net *net);

void rn_tick(struct rn_net *net, uint64_t id);
/* Ticks every up node once, then processes them. */
void rn_tick_all(struct rn_net *net);
/* Ticks all and delivers everything, k times. */
void rn_run(struct rn_net *net, uint32_t k);

/* Starts an election at id (raft_campaign), then delivers until quiet. */
void rn_campaign(struct rn_net *net, uint64_t id);
/* The leader of the highest term among up nodes, or 0. */
uint64_t rn_leader(struct rn_net *net);
/* Elects id: campaigns and delivers; asserts it became leader. */
void rn_elect(struct rn_net *net, uint64_t id);

/* Proposes a short string at id; returns the raft error. */
int rn_propose(struct rn_net *net, uint64_t id, const char *s);

/* Partitions. */
void rn_isolate(struct rn_net *net, uint64_t id);
void rn_cut(struct rn_net *net, uint64_t a, uint64_t b); /* both directions */
void rn_heal(struct rn_net *net);

/* Crash: the raft state is discarded, only the disk remains (what was synced). */
void rn_crash(struct rn_net *net, uint64_t id);
/* Restart from the disk. applied = what the state machine had applied. */
void rn_restart(struct rn_net *net, uint64_t id);

/* Drops the queued message at position i. */
void rn_drop_at(struct rn_net *net, size_t i);
/* Queues a deep copy of the message at position i at the end of the queue: a duplicate. */
void rn_duplicate_at(struct rn_net *net, size_t i);

/* Replaces the disk of node id with copies of hs and entries (entries[i].index must be i + 1),
 * discards its raft state and starts it again from that disk with nothing applied: a node that
 * starts from a given state, e.g. the logs of Figures 7 and 8 of the Raft paper. Commits up
 * to hs->commit are applied at the next rn_process. */
void rn_load(struct rn_net *net, uint64_t id, const struct raft_hard_state *hs,
             const struct raft_entry *entries, size_t n_entries);

/* Log compaction at node id as a host does it: raft_compact, then the same on its disk.
 * Returns raft_compact's error (the disk is left alone unless RK_OK). */
int rn_compact(struct rn_net *net, uint64_t id, uint64_t index);

/* Count queued messages of a type (0 = any) from `from` (0 = any). */
size_t rn_count(const struct rn_net *net, uint8_t type, uint64_t from);

/* Checks that the logs of all nodes agree on every index they share up to the lowest commit
 * (Log Matching for committed prefixes; indexes compacted away at either node are skipped) and
 * that applied entries agree. */
void rn_check_consistency(struct rn_net *net);

#endif
