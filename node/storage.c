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

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job_list {
    struct replica_log_job **v;
    size_t n, cap;
};

struct node_storage {
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

        replica_log_run(s->run.v, s->run.n);

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

int node_storage_start(struct node_storage **out, struct rk_errmsg *err)
{
    struct node_storage *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rk_errf(err, RK_ENOMEM, "storage thread: out of memory");
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

int node_storage_submit(struct node_storage *s, struct replica_log_job *const *jobs, size_t n)
{
    if (n == 0)
        return RK_OK;
    pthread_mutex_lock(&s->lock);
    /* S4: d can take every pending job, so the thread never allocates. */
    if (!list_reserve(&s->q, n) || !list_reserve(&s->d, s->pending + n - s->d.n)) {
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < n; i++)
            replica_log_job_free(jobs[i]);
        return RK_ENOMEM;
    }
    memcpy(s->q.v + s->q.n, jobs, n * sizeof(*jobs));
    s->q.n += n;
    s->pending += n;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return RK_OK;
}

size_t node_storage_take_done(struct node_storage *s, struct replica_log_job **out, size_t cap)
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
        replica_log_job_free(s->d.v[i]);
    free(s->q.v);
    free(s->run.v);
    free(s->d.v);
    close(s->efd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}
