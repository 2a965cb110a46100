/*
 * timeline.h — a picture of one simulation run (`sim --timeline OUT.svg`): each node's role and
 * term over virtual time, its crashes, pauses, armed crash points and storage failures, how much
 * of the cluster it can talk to (partitions and one-way cuts), the periods with disk faults on,
 * the client operations as bars per client, and — for a failed run — the failure's time and the
 * operations its check names, highlighted.
 *
 * The simulator records into it as the run goes (only when asked: it costs memory per op) and
 * writes one self-contained SVG at the end. The SVG depends only on what was recorded, so the
 * same seed draws the same bytes.
 */
#ifndef SIM_TIMELINE_H
#define SIM_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum tl_node_state {
    TL_DOWN = 0,
    TL_FOLLOWER,
    TL_CANDIDATE,
    TL_LEADER,
    TL_PAUSED,        /* running but stopped: no ticks, messages queue up */
    TL_DYING,         /* a crash point is armed */
    TL_PRE_CANDIDATE, /* campaigning in PreVote: no term bump yet */
};

enum tl_outcome { TL_OK = 0, TL_FAIL, TL_UNKNOWN, TL_PENDING };

struct timeline;

/* NULL when out of memory. */
struct timeline *tl_create(uint32_t nodes, uint32_t clients);
void tl_destroy(struct timeline *tl);

/* A node's state at t (kept only when it differs from the last one recorded): state, its term,
 * and how many nodes it can exchange messages with both ways, itself included (reach). */
void tl_node(struct timeline *tl, uint64_t t, uint32_t node, uint8_t state, uint64_t term,
             uint32_t reach);
/* A point event on a node's lane: a storage failure, a failed start (what: short, copied). */
void tl_mark(struct timeline *tl, uint64_t t, uint32_t node, const char *what);
/* Disk faults on or off from t on. */
void tl_disk_faults(struct timeline *tl, uint64_t t, bool on);
/* A client operation: invoked at t0, answered at t1 (outcome), or still pending at the end. op
 * is "get", "put" or "del"; key its number. */
void tl_op(struct timeline *tl, uint32_t client, uint64_t t0, uint64_t t1, const char *op,
           uint32_t key, uint8_t outcome);
/* Marks the op of client invoked at t0 (or every op on key, when client is 0) as named by the
 * failed check. */
void tl_highlight(struct timeline *tl, uint32_t client, uint64_t t0, uint32_t key);
/* The run's phases and, for a failed run, when and what failed (copied). */
void tl_phases(struct timeline *tl, uint64_t settle_at, uint64_t end_at);
void tl_failure(struct timeline *tl, uint64_t t, const char *what);

/* Writes the SVG, covering [0, until]. title is one line (copied into the picture, escaped).
 * Returns 0, or -1 if writing failed. */
int tl_write_svg(const struct timeline *tl, FILE *f, uint64_t until, const char *title);

#endif
