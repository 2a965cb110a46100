/*
 * storage.h — raftkv-node's storage threads: one runs the replica's log jobs (replica.h,
 * "Asynchronous persistence") off the event loop, as Redis's bio.c and etcd raft's
 * AsyncStorageWrites do; another, with the same code, the store's deferred writes (bitcask.h,
 * DEFERRED WRITES: appends, file rotations and syncs of the state machine's Bitcask, with an fs
 * handle of its own), so that a big value's store write or a 64 MiB data file's fsync at a
 * rotation never stalls the loop, nor waits behind the log's syncs.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "replica/replica.h"

struct node_storage;

/* Starts the thread. The caller owns *out and stops it with node_storage_stop. */
typedef void node_storage_run_fn(void *const *jobs, size_t n);
typedef void node_storage_free_fn(void *job);
/* The log's jobs (replica_log_run: one sync for a group) and the store's (bc_io_run each). */
void node_storage_run_log(void *const *jobs, size_t n);
void node_storage_free_log(void *job);
void node_storage_run_store(void *const *jobs, size_t n);
void node_storage_free_store(void *job);
int node_storage_start(struct node_storage **out, node_storage_run_fn *run,
                       node_storage_free_fn *free_job, struct rk_errmsg *err);
/* Readable when finished jobs wait for node_storage_take_done (for epoll). */
int node_storage_fd(const struct node_storage *s);
/* Queues jobs (ownership passes to the storage until they come back). Never blocks on the
 * disk: at most on the queue's lock, which the thread holds only to move pointers. Returns
 * RK_ENOMEM if the queue could not grow (the jobs are then freed: the replica will fail as
 * when a write fails). */
int node_storage_submit(struct node_storage *s, void *const *jobs, size_t n);
/* Moves up to cap finished jobs, oldest first, into out; returns how many. Clears the eventfd
 * when none are left. */
size_t node_storage_take_done(struct node_storage *s, void **out, size_t cap);
/* Jobs submitted and not yet taken back. */
size_t node_storage_pending(const struct node_storage *s);
/* Lets the thread finish what was submitted, joins it, frees jobs never taken back, and frees
 * s. NULL does nothing. */
void node_storage_stop(struct node_storage *s);

/*
 * The background merge of the store (bitcask.h, MERGE IN STEPS), as Bitcask's implementation
 * triggers it (riak's frag and dead-bytes triggers: struct bc_merge_policy). A thread of its own
 * (a merge takes seconds; the log's storage thread must not wait behind it) with an fs of its
 * own on the store's directory runs bc_merge_run and bc_merge_cleanup; the loop does the O(files)
 * steps and installs the merged keydir entries a bounded chunk per loop turn.
 *
 *   loop (tick, once a second): bc_merge_wanted? prepare ──► thread: run ──eventfd──►
 *   loop: install NODE_MERGE_CHUNK entries per turn ... done ──► thread: cleanup ──eventfd──►
 *   loop: end (logged)
 *
 * The loop never waits for the thread but at stop (node_merge_stop cancels a run, which stops
 * at its next record, or waits for a cleanup); a crash instead is safe at any point: the next
 * open finishes or undoes the merge.
 */
struct bitcask;
struct bc_merge_policy;
struct fs;
struct node_merge;
typedef void node_merge_log_fn(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define NODE_MERGE_CHUNK 2048 /* keydir entries installed per loop turn */
/* bc_config.merge_id_gap: ids kept free above each new data file for a merge's outputs. 256
 * takes a merge of up to about 126 files of store-file-bytes at once. */
#define NODE_MERGE_ID_GAP 256

/* Logs what bc_open did (hint files loaded, files scanned): a restart's cost. */
void node_merge_log_open(struct bitcask *bc, node_merge_log_fn *log);

/* Starts the thread. bc and fs (the store's directory, a handle of the thread's own: fs_posix is
 * not thread-safe) are borrowed until node_merge_stop. log: where it says what it does. */
int node_merge_start(struct node_merge **out, struct bitcask *bc, struct fs *fs,
                     const struct bc_merge_policy *policy, node_merge_log_fn *log,
                     struct rk_errmsg *err);
/* Readable when a step of the thread finished (for epoll): call node_merge_on_done. */
int node_merge_fd(const struct node_merge *m);
/* On the timer: checks the trigger at most once a second (O(files)); starts a merge. */
void node_merge_tick(struct node_merge *m, uint64_t now_ms);
/* The thread's step finished: run -> install, cleanup -> end. */
void node_merge_on_done(struct node_merge *m);
/* True while entries wait to be installed: the loop should not block in epoll_wait. */
bool node_merge_installing(const struct node_merge *m);
/* One chunk of the install (nothing if not installing). RK_OK, or the store's failure (it is
 * then poisoned: the node stops as after any storage failure). */
int node_merge_install_step(struct node_merge *m);
/* Cancels a run in progress (bc_merge_cancel: it stops at its next record), waits for the step
 * in progress, joins the thread, drops an unfinished merge (the next open finishes or undoes
 * it) and frees m. NULL does nothing. */
void node_merge_stop(struct node_merge *m);

#endif
