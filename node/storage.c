/*
 * storage.c — see storage.h.
 *
 * Invariants:
 *   S1  a job is in exactly one of: queued (q), being run by the thread (run), done (d), or
 *       back with the loop; each list keeps submission order, and every job in run was
 *       submitted after every job in d and before every job in q.
 *   S2  the lock is held only to move pointers between lists, never across disk I/O.
 *   S3  the eventfd is non-zero whenever d is not empty (written after d grows, drained only
 *       when take_done empties d).
 *   S4  d's capacity is at least pending (reserved at submit), so the thread never allocates.
 */
#define _GNU_SOURCE

#include "storage.h"

#include <inttypes.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bitcask/bitcask.h"

struct job_list {
    void **v;
    size_t n, cap;
};

struct node_storage {
    node_storage_run_fn *run_fn;
    node_storage_free_fn *free_fn;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int efd;
    bool stop;
    struct job_list q;   /* submitted, not yet taken by the thread */
    struct job_list run; /* the thread's current group (only the thread touches it) */
    struct job_list d;   /* finished, not yet taken back by the loop */
    size_t pending;      /* q + run + d */
};

static bool list_reserve(struct job_list *l, size_t n)
{
    if (l->n + n <= l->cap)
        return true;
    size_t cap = l->cap ? l->cap : 64;
    while (cap < l->n + n)
        cap *= 2;
    void *v = realloc(l->v, cap * sizeof(*l->v));
    if (v == NULL)
        return false;
    l->v = v;
    l->cap = cap;
    return true;
}

static void *storage_main(void *arg)
{
    struct node_storage *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->q.n == 0 && !s->stop)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->q.n == 0) { /* stopping, and nothing left */
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        /* Take the whole queue: one group, one sync (S1: run was empty). */
        struct job_list tmp = s->run;
        s->run = s->q;
        s->q = tmp;
        s->q.n = 0;
        pthread_mutex_unlock(&s->lock);

        s->run_fn(s->run.v, s->run.n);

        pthread_mutex_lock(&s->lock);
        /* d has room: submit reserved it for every pending job (S4). */
        memcpy(s->d.v + s->d.n, s->run.v, s->run.n * sizeof(*s->run.v));
        s->d.n += s->run.n;
        s->run.n = 0;
        pthread_mutex_unlock(&s->lock);
        uint64_t one = 1;
        ssize_t w;
        do {
            w = write(s->efd, &one, sizeof(one)); /* S3 */
        } while (w < 0 && errno == EINTR);
    }
}

int node_storage_start(struct node_storage **out, node_storage_run_fn *run,
                       node_storage_free_fn *free_job, struct rk_errmsg *err)
{
    struct node_storage *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rk_errf(err, RK_ENOMEM, "storage thread: out of memory");
    s->run_fn = run;
    s->free_fn = free_job;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        int e = errno;
        free(s);
        return rk_errf(err, RK_EIO, "storage thread: eventfd: %s", strerror(e));
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    /* The thread takes no signals: they belong to the loop (signalfd). It inherits the mask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&s->thread, NULL, storage_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        close(s->efd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s);
        return rk_errf(err, RK_EIO, "storage thread: pthread_create: %s", strerror(e));
    }
    *out = s;
    return RK_OK;
}

int node_storage_fd(const struct node_storage *s)
{
    return s->efd;
}

int node_storage_submit(struct node_storage *s, void *const *jobs, size_t n)
{
    if (n == 0)
        return RK_OK;
    pthread_mutex_lock(&s->lock);
    /* S4: d can take every pending job, so the thread never allocates. */
    if (!list_reserve(&s->q, n) || !list_reserve(&s->d, s->pending + n - s->d.n)) {
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < n; i++)
            s->free_fn(jobs[i]);
        return RK_ENOMEM;
    }
    memcpy(s->q.v + s->q.n, jobs, n * sizeof(*jobs));
    s->q.n += n;
    s->pending += n;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return RK_OK;
}

size_t node_storage_take_done(struct node_storage *s, void **out, size_t cap)
{
    uint64_t count;
    pthread_mutex_lock(&s->lock);
    size_t n = s->d.n < cap ? s->d.n : cap;
    memcpy(out, s->d.v, n * sizeof(*out));
    memmove(s->d.v, s->d.v + n, (s->d.n - n) * sizeof(*s->d.v));
    s->d.n -= n;
    s->pending -= n;
    if (s->d.n == 0) {
        /* S3: drained under the lock, so a completion racing us writes after this read. */
        while (read(s->efd, &count, sizeof(count)) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

size_t node_storage_pending(const struct node_storage *s)
{
    pthread_mutex_t *lock = (pthread_mutex_t *)&s->lock;
    pthread_mutex_lock(lock);
    size_t n = s->pending;
    pthread_mutex_unlock(lock);
    return n;
}

void node_storage_stop(struct node_storage *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->d.n; i++)
        s->free_fn(s->d.v[i]);
    free(s->q.v);
    free(s->run.v);
    free(s->d.v);
    close(s->efd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}

void node_storage_run_log(void *const *jobs, size_t n)
{
    replica_log_run((struct replica_log_job *const *)jobs, n);
}

void node_storage_free_log(void *job)
{
    replica_log_job_free(job);
}

void node_storage_run_store(void *const *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bc_io_run(jobs[i]); /* the outcome stays in the job, for bc_io_done on the loop */
}

void node_storage_free_store(void *job)
{
    bc_io_free(job);
}

/* ---- the background merge ---------------------------------------------------------------- */

enum merge_state {
    MERGE_IDLE,
    MERGE_RUNNING,    /* the thread runs bc_merge_run */
    MERGE_INSTALLING, /* the loop installs, a chunk per turn */
    MERGE_CLEANING,   /* the thread runs bc_merge_cleanup */
};

struct node_merge {
    struct bitcask *bc;
    struct fs *fs;
    struct bc_merge_policy policy;
    node_merge_log_fn *log;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int efd;
    bool stop;
    /* Under lock: the job handed to the thread (todo) and handed back (done). */
    struct bc_merge_job *todo;
    bool todo_cleanup;
    struct bc_merge_job *done;
    /* The loop's. */
    enum merge_state state;
    struct bc_merge_job *job;
    uint64_t checked_ms;
    uint64_t started_ms;
    uint64_t bytes_before;
};

static uint64_t merge_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *merge_main(void *arg)
{
    struct node_merge *m = arg;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        while (m->todo == NULL && !m->stop)
            pthread_cond_wait(&m->wake, &m->lock);
        if (m->todo == NULL)
            break;
        struct bc_merge_job *j = m->todo;
        bool cleanup = m->todo_cleanup;
        m->todo = NULL;
        pthread_mutex_unlock(&m->lock);
        if (cleanup)
            bc_merge_cleanup(j);
        else
            bc_merge_run(j);
        pthread_mutex_lock(&m->lock);
        m->done = j;
        uint64_t one = 1;
        ssize_t w;
        do {
            w = write(m->efd, &one, sizeof(one));
        } while (w < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int node_merge_start(struct node_merge **out, struct bitcask *bc, struct fs *fs,
                     const struct bc_merge_policy *policy, node_merge_log_fn *log,
                     struct rk_errmsg *err)
{
    struct node_merge *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return rk_errf(err, RK_ENOMEM, "merge thread: out of memory");
    m->bc = bc;
    m->fs = fs;
    m->policy = *policy;
    m->log = log;
    m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m->efd < 0) {
        int e = errno;
        free(m);
        return rk_errf(err, RK_EIO, "merge thread: eventfd: %s", strerror(e));
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&m->thread, NULL, merge_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        close(m->efd);
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->wake);
        free(m);
        return rk_errf(err, RK_EIO, "merge thread: pthread_create: %s", strerror(e));
    }
    *out = m;
    return RK_OK;
}

int node_merge_fd(const struct node_merge *m)
{
    return m->efd;
}

static void merge_hand(struct node_merge *m, bool cleanup)
{
    pthread_mutex_lock(&m->lock);
    m->todo = m->job;
    m->todo_cleanup = cleanup;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

void node_merge_tick(struct node_merge *m, uint64_t now_ms)
{
    if (m == NULL || m->state != MERGE_IDLE || now_ms - m->checked_ms < 1000)
        return;
    m->checked_ms = now_ms;
    if (!bc_merge_wanted(m->bc, &m->policy))
        return;
    struct bc_merge_pick pick;
    bc_merge_pick(m->bc, &pick);
    struct rk_errmsg err = {{0}};
    int rc = bc_merge_prepare(m->bc, m->fs, &m->job, &err);
    if (rc != RK_OK || m->job == NULL) {
        if (rc != RK_OK)
            m->log("warn", "merge: cannot start: %s", err.text);
        return;
    }
    struct bc_stats st;
    bc_stats(m->bc, &st);
    m->bytes_before = st.total_bytes;
    m->started_ms = now_ms;
    m->log("info",
           "merge: started over %" PRIu32 " data files, %" PRIu64 " bytes of which %" PRIu64
           " dead",
           pick.inputs, pick.bytes, pick.dead_bytes);
    m->state = MERGE_RUNNING;
    merge_hand(m, false);
}

/* The merge is over (done or failed): the store may start another. */
static void merge_finish(struct node_merge *m)
{
    struct rk_errmsg err = {{0}};
    int rc = bc_merge_end(m->bc, m->job, &err);
    if (rc != RK_OK)
        m->log("warn", "merge: %s (no merge until a restart)", err.text);
    bc_merge_job_free(m->job);
    m->job = NULL;
    m->state = MERGE_IDLE;
}

void node_merge_on_done(struct node_merge *m)
{
    uint64_t count;
    pthread_mutex_lock(&m->lock);
    struct bc_merge_job *j = m->done;
    m->done = NULL;
    while (read(m->efd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    pthread_mutex_unlock(&m->lock);
    if (j == NULL)
        return;
    if (m->state == MERGE_RUNNING) {
        m->state = MERGE_INSTALLING; /* a failed run is reported by the first install step */
        return;
    }
    struct bc_stats st;
    bc_stats(m->bc, &st);
    m->log("info",
           "merge: done in %" PRIu64 " ms: store %" PRIu64 " -> %" PRIu64 " bytes (%" PRIu64
           " live)",
           merge_now_ms() - m->started_ms, m->bytes_before, st.total_bytes, st.live_bytes);
    merge_finish(m);
}

bool node_merge_installing(const struct node_merge *m)
{
    return m != NULL && m->state == MERGE_INSTALLING;
}

int node_merge_install_step(struct node_merge *m)
{
    if (!node_merge_installing(m))
        return RK_OK;
    bool done = false;
    struct rk_errmsg err = {{0}};
    int rc = bc_merge_install(m->bc, m->job, NODE_MERGE_CHUNK, &done, &err);
    if (rc != RK_OK) {
        m->log("warn", "merge: failed, the store is as before: %s", err.text);
        merge_finish(m);
        return rc == RK_ECORRUPT ? rc : RK_OK; /* ECORRUPT: poisoned (bc_merge_install) */
    }
    if (done) {
        m->state = MERGE_CLEANING;
        merge_hand(m, true);
    }
    return RK_OK;
}

void node_merge_stop(struct node_merge *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    if (m->state == MERGE_RUNNING) /* a run stops at its next record (before its commit) */
        bc_merge_cancel(m->job);
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    if (m->job != NULL) { /* unfinished: a valid state for the next open (bitcask.c, MERGE) */
        struct rk_errmsg err;
        bc_merge_end(m->bc, m->job, &err);
        bc_merge_job_free(m->job);
    }
    close(m->efd);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->wake);
    free(m);
}

void node_merge_log_open(struct bitcask *bc, node_merge_log_fn *log)
{
    struct bc_stats st;
    bc_stats(bc, &st);
    log("info",
        "store: %" PRIu64 " keys from %" PRIu32 " data files (%" PRIu64 " bytes, %" PRIu64
        " live): %" PRIu32 " from hint files, %" PRIu32 " scanned (%" PRIu64 " bytes read)",
        st.keys, st.data_files, st.total_bytes, st.live_bytes, st.hint_files_loaded,
        st.data_files_scanned, st.scanned_bytes);
    if (st.hints_ignored > 0) /* bitcask.h: a hint that does not check out costs a scan */
        log("warn",
            "store: %" PRIu32 " hint files did not check out, their data files scanned instead "
            "(the first: %s)",
            st.hints_ignored, st.hint_problem);
}
