/* simalloc — the allocator the simulator gives its replicas (their Raft, log, Bitcask and state
 * machine): small blocks come from per-size free lists, so that the many short-lived buffers
 * of a run (entries, batches, store jobs, decoded frames) cost no malloc and free each (they
 * were 6% of a run). Blocks of more than 64 KiB go to libc.
 *
 * Invariants:
 *   A1. Every block carries a 16-byte header before it naming its size class (or libc), so
 *       free and realloc need no size; the block itself is 16-byte aligned, as malloc's.
 *   A2. A freed small block goes back to its class's list and is handed out again; the
 *       memory of the lists is returned by sim_alloc_destroy only, after the run.
 *   A3. Under AddressSanitizer it is libc itself (sim_alloc_create returns NULL and
 *       sim_alloc_get gives rk_alloc_libc()), so that ASan still sees every use after free.
 *
 * Not thread-safe: one per simulation run, which is single-threaded. */
#ifndef RK_SIM_SIMALLOC_H
#define RK_SIM_SIMALLOC_H

#include "common/alloc.h"

struct sim_alloc;

/* A new pool, or NULL (under ASan, or out of memory: then use libc). */
struct sim_alloc *sim_alloc_create(void);

/* The rk_alloc of pool p (NULL: libc). Valid until sim_alloc_destroy(p). */
const struct rk_alloc *sim_alloc_get(const struct sim_alloc *p);

/* Frees the pool and all of its memory: every block taken from it must be dead by then. */
void sim_alloc_destroy(struct sim_alloc *p);

#endif
