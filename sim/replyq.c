/* replyq.c — see replyq.h. A node has few connections with few requests in flight each
 * (`clients`, `pipeline`): linear searches over small arrays. */
#include "replyq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rq_entry {
    uint64_t req_id;
    uint64_t tick; /* the node's tick when it arrived */
    void *rep;     /* the replica's reply; NULL: none yet */
    bool answered; /* rep came (a second one is refused) */
    uint32_t holds;
};

struct rq_conn {
    uint64_t session;
    bool closed;
    struct rq_entry *e; /* e[head .. n): the FIFO */
    size_t head, n, cap;
};

struct replyq {
    rq_send_fn send;
    void *ctx;
    struct rq_conn *conns;
    size_t n_conns, cap_conns;
};

static void *rq_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    return q;
}

struct replyq *rq_new(rq_send_fn send, void *ctx)
{
    struct replyq *q = rq_xrealloc(NULL, sizeof(*q));
    *q = (struct replyq){.send = send, .ctx = ctx};
    return q;
}

static void conn_clear(struct rq_conn *c)
{
    for (size_t i = c->head; i < c->n; i++)
        free(c->e[i].rep);
    free(c->e);
}

void rq_reset(struct replyq *q)
{
    for (size_t i = 0; i < q->n_conns; i++)
        conn_clear(&q->conns[i]);
    q->n_conns = 0;
}

void rq_free(struct replyq *q)
{
    if (q == NULL)
        return;
    rq_reset(q);
    free(q->conns);
    free(q);
}

static struct rq_conn *conn_find(struct replyq *q, uint64_t session)
{
    for (size_t i = 0; i < q->n_conns; i++)
        if (q->conns[i].session == session)
            return &q->conns[i];
    return NULL;
}

void rq_arrive(struct replyq *q, uint64_t session, uint64_t req_id, uint64_t tick, bool closed)
{
    struct rq_conn *c = conn_find(q, session);
    if (c == NULL) {
        if (q->n_conns == q->cap_conns) {
            q->cap_conns = q->cap_conns ? q->cap_conns * 2 : 8;
            q->conns = rq_xrealloc(q->conns, q->cap_conns * sizeof(*q->conns));
        }
        c = &q->conns[q->n_conns++];
        *c = (struct rq_conn){.session = session};
    }
    c->closed = c->closed || closed;
    if (c->n == c->cap) {
        if (c->head > 0) {
            memmove(c->e, c->e + c->head, (c->n - c->head) * sizeof(*c->e));
            c->n -= c->head;
            c->head = 0;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 8;
            c->e = rq_xrealloc(c->e, c->cap * sizeof(*c->e));
        }
    }
    c->e[c->n++] = (struct rq_entry){.req_id = req_id, .tick = tick};
}

static struct rq_entry *entry_find(struct replyq *q, uint64_t req_id)
{
    for (size_t i = 0; i < q->n_conns; i++) {
        struct rq_conn *c = &q->conns[i];
        for (size_t k = c->head; k < c->n; k++)
            if (c->e[k].req_id == req_id)
                return &c->e[k];
    }
    return NULL;
}

bool rq_reply(struct replyq *q, uint64_t req_id, void *rep, char *why, size_t cap)
{
    struct rq_entry *e = entry_find(q, req_id);
    if (e == NULL || e->answered) {
        snprintf(why, cap,
                 "reply %s for request %#" PRIx64 " (client %" PRIu64 " connection %" PRIu64
                 " request %" PRIu64 "): every request gets exactly one reply",
                 e == NULL ? "from the replica with no request waiting" : "twice from the replica",
                 req_id, req_id >> 48, (req_id >> 32) & 0xffffu, (req_id >> 8) & 0xffffffu);
        free(rep);
        return false;
    }
    e->rep = rep;
    e->answered = true;
    return true;
}

void rq_hold(struct replyq *q, uint64_t req_id)
{
    struct rq_entry *e = entry_find(q, req_id);
    if (e != NULL)
        e->holds++;
}

void rq_unhold(struct replyq *q, uint64_t req_id)
{
    struct rq_entry *e = entry_find(q, req_id);
    if (e != NULL && e->holds > 0)
        e->holds--;
}

void rq_close(struct replyq *q, uint64_t session)
{
    struct rq_conn *c = conn_find(q, session);
    if (c != NULL)
        c->closed = true;
}

void rq_flush(struct replyq *q)
{
    for (size_t i = 0; i < q->n_conns;) {
        struct rq_conn *c = &q->conns[i];
        while (c->head < c->n && c->e[c->head].answered && c->e[c->head].holds == 0) {
            void *rep = c->e[c->head].rep;
            c->e[c->head].rep = NULL;
            c->head++;
            if (c->closed)
                free(rep); /* the client left: the node writes to no one */
            else
                q->send(q->ctx, rep);
        }
        if (c->head == c->n)
            c->head = c->n = 0;
        if (c->closed && c->n == 0) { /* freed with its last request (N4) */
            conn_clear(c);
            q->conns[i] = q->conns[--q->n_conns];
            continue;
        }
        i++;
    }
}

bool rq_check(const struct replyq *q, uint64_t tick, uint64_t timeout_ticks, char *why, size_t cap)
{
    for (size_t i = 0; i < q->n_conns; i++) {
        const struct rq_conn *c = &q->conns[i];
        for (size_t k = c->head; k < c->n; k++) {
            const struct rq_entry *e = &c->e[k];
            if (e->answered || tick - e->tick <= timeout_ticks + 2)
                continue;
            snprintf(why, cap,
                     "request %#" PRIx64 " (client %" PRIu64 " connection %" PRIu64
                     " request %" PRIu64 "), received at tick %" PRIu64
                     ", has no reply at tick %" PRIu64 " although the request timeout is %" PRIu64
                     " ticks: a reply was lost (%zu requests of the connection held behind it)",
                     e->req_id, e->req_id >> 48, (e->req_id >> 32) & 0xffffu,
                     (e->req_id >> 8) & 0xffffffu, e->tick, tick, timeout_ticks, c->n - k - 1);
            return false;
        }
    }
    return true;
}

size_t rq_pending(const struct replyq *q)
{
    size_t n = 0;
    for (size_t i = 0; i < q->n_conns; i++)
        n += q->conns[i].n - q->conns[i].head;
    return n;
}
