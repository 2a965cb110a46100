/*
 * log_job.h — private to core/replica: one batch of log writes on its way to storage
 * (asynchronous persistence, replica.h). A job owns a copy of the entries array and of the
 * frames it holds, and borrows the entries' data from raft (a value of megabytes is not copied
 * again): raft may cut or compact its in-memory log while the job is being written, because
 * the buffers of the entries it drops are freed only once every job made before the drop is
 * back (replica.c, dropped_take). The storage side reads the job, that data and the log store.
 *
 * Layout: one allocation holding the struct, the entries array, the held frames' records, and
 * one byte area with the encoded frames.
 */
#ifndef REPLICA_LOG_JOB_H
#define REPLICA_LOG_JOB_H

#include "replica/replica.h"

struct log_job_frame {
    uint64_t to;
    size_t off; /* into bytes */
    size_t len;
};

struct replica_log_job {
    const struct rk_alloc *alloc;
    struct log_store *log;
    uint64_t seq; /* replica-assigned, consecutive: jobs come back in this order */
    /* What to write, in this order (raft.h step 2). */
    bool has_compact;
    uint64_t compact_index;
    uint64_t compact_term;
    uint64_t truncate_from; /* 0: none */
    /* Not handed out before the store's durable index reaches it (a snapshot's compaction:
     * replica.c, store_gate). 0: no wait. */
    uint64_t wait_store;
    struct raft_entry *entries;
    size_t n_entries;
    bool has_hard_state;
    struct raft_hard_state hard_state;
    bool need_sync;
    /* Clear the log store's promise (log.h set_promise) after the writes above: the entries
     * up to it are durable already (replica.c, maybe_clear_promise). */
    bool clear_promise;
    /* The last entry written (0, 0 without entries): raft_persisted's argument. */
    uint64_t last_index;
    uint64_t last_term;
    /* Messages that promise what this job makes durable: released when it is. */
    struct log_job_frame *frames;
    size_t n_frames;
    uint8_t *bytes;
    /* The outcome, set by the storage side. */
    bool written;
    int rc;
    struct rk_errmsg err;
};

/* Allocates a job with room for n_entries entries carrying data_bytes of data and n_frames
 * frames of frame_bytes in all. NULL when out of memory. */
struct replica_log_job *log_job_alloc(const struct rk_alloc *a, size_t n_entries,
                                      size_t data_bytes, size_t n_frames, size_t frame_bytes);

#endif
