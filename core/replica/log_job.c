/*
 * log_job.c — the storage side of asynchronous log persistence (replica.h): running jobs
 * against the log store. These functions touch only the jobs and the log store they name,
 * never the replica, so a driver may run them on a thread of their own; core/ itself stays
 * single-threaded (the functions share nothing with the loop but the jobs handed over).
 *
 * Invariant: jobs run in the order the replica made them (seq), each written exactly once,
 * and a group's sync follows all its writes. A job that fails poisons the log store (log.h),
 * so every later job of this replica fails too; the replica stops when the first failure comes
 * back to it.
 */
#include "replica/log_job.h"

#include <string.h>

#include "common/assert.h"

struct replica_log_job *log_job_alloc(const struct rk_alloc *a, size_t n_entries,
                                      size_t data_bytes, size_t n_frames, size_t frame_bytes)
{
    size_t head = (sizeof(struct replica_log_job) + 15) & ~(size_t)15;
    size_t ents = (n_entries * sizeof(struct raft_entry) + 15) & ~(size_t)15;
    size_t frs = (n_frames * sizeof(struct log_job_frame) + 15) & ~(size_t)15;
    if (data_bytes > SIZE_MAX / 2 || frame_bytes > SIZE_MAX / 2 ||
        head + ents + frs > SIZE_MAX - data_bytes - frame_bytes)
        return NULL;
    uint8_t *p = rk_malloc(a, head + ents + frs + data_bytes + frame_bytes);
    if (p == NULL)
        return NULL;
    struct replica_log_job *job = (struct replica_log_job *)p;
    memset(job, 0, sizeof(*job));
    job->alloc = a;
    job->entries = n_entries > 0 ? (struct raft_entry *)(p + head) : NULL;
    job->frames = n_frames > 0 ? (struct log_job_frame *)(p + head + ents) : NULL;
    job->bytes = p + head + ents + frs;
    return job;
}

void replica_log_job_free(struct replica_log_job *job)
{
    if (job != NULL)
        rk_free(job->alloc, job);
}

static int log_job_write(struct replica_log_job *job)
{
    struct log_store *log = job->log;
    int rc = RK_OK;
    if (job->has_compact)
        rc = log->ops->compact(log, job->compact_index, job->compact_term, &job->err);
    if (rc == RK_OK && job->truncate_from != 0)
        rc = log->ops->truncate(log, job->truncate_from, &job->err);
    if (rc == RK_OK && job->n_entries > 0)
        rc = log->ops->append(log, job->entries, job->n_entries, &job->err);
    if (rc == RK_OK && job->has_hard_state)
        rc = log->ops->set_hard_state(log, &job->hard_state, &job->err);
    if (rc == RK_OK && job->clear_promise && log->ops->set_promise != NULL)
        rc = log->ops->set_promise(log, 0, &job->err);
    return rc;
}

void replica_log_run_writes(struct replica_log_job *const *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct replica_log_job *job = jobs[i];
        RK_ASSERT(!job->written);
        RK_ASSERT(i == 0 || job->seq == jobs[i - 1]->seq + 1);
        job->written = true;
        job->rc = log_job_write(job);
    }
}

bool replica_log_jobs_need_sync(struct replica_log_job *const *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->need_sync)
            return true;
    }
    return false;
}

void replica_log_run_sync(struct replica_log_job *const *jobs, size_t n)
{
    if (n == 0 || !replica_log_jobs_need_sync(jobs, n))
        return;
    /* One sync for the group: it makes every write before it durable (group commit). */
    struct rk_errmsg err;
    int rc = jobs[n - 1]->log->ops->sync(jobs[n - 1]->log, &err);
    if (rc == RK_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->rc == RK_OK) {
            jobs[i]->rc = rc;
            jobs[i]->err = err;
        }
    }
}

void replica_log_run(struct replica_log_job *const *jobs, size_t n)
{
    replica_log_run_writes(jobs, n);
    replica_log_run_sync(jobs, n);
}
