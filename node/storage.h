/*
 * storage.h — raftkv-node's storage thread: runs the replica's log jobs (replica.h,
 * "Asynchronous persistence") off the event loop, as Redis's bio.c and etcd raft's
 * AsyncStorageWrites do.
 *
 * One thread, two queues: the loop submits jobs in the order the replica made them; the thread
 * takes every job waiting, writes them and syncs once for the whole group (group commit across
 * loop turns), then hands the group back and wakes the loop through one eventfd. Completions
 * come back in submission order. The jobs own their buffers; the thread touches nothing else
 * but the log store they name, which the loop never touches once the replica is created.
 *
 *   loop:   submit(jobs) ──► [queued] ──thread──► write all, one sync ──► [done] ──eventfd──►
 *   loop:   take_done() ──► replica_log_job_done() for each, in order
 */
#ifndef NODE_STORAGE_H
#define NODE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "replica/replica.h"

struct node_storage;

/* Starts the thread. The caller owns *out and stops it with node_storage_stop. */
int node_storage_start(struct node_storage **out, struct rk_errmsg *err);
/* Readable when finished jobs wait for node_storage_take_done (for epoll). */
int node_storage_fd(const struct node_storage *s);
/* Queues jobs (ownership passes to the storage until they come back). Never blocks on the
 * disk: at most on the queue's lock, which the thread holds only to move pointers. Returns
 * RK_ENOMEM if the queue could not grow (the jobs are then freed: the replica will fail as
 * when a write fails). */
int node_storage_submit(struct node_storage *s, struct replica_log_job *const *jobs, size_t n);
/* Moves up to cap finished jobs, oldest first, into out; returns how many. Clears the eventfd
 * when none are left. */
size_t node_storage_take_done(struct node_storage *s, struct replica_log_job **out, size_t cap);
/* Jobs submitted and not yet taken back. */
size_t node_storage_pending(const struct node_storage *s);
/* Lets the thread finish what was submitted, joins it, frees jobs never taken back, and frees
 * s. NULL does nothing. */
void node_storage_stop(struct node_storage *s);

#endif
