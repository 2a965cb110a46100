/*
 * test_storage.c — asynchronous log persistence: the replica's log jobs (replica.h) and
 * raftkv-node's storage thread (node/storage.c) that runs them.
 *
 * A small cluster of replicas with async_log over log_memstores: frames are delivered by the
 * test, and log jobs either run at once (replica_log_run) or go through a real storage thread.
 * What is checked: a leader's APPENDs leave before its own write is durable (the parallel
 * write, thesis §10.2.1); acknowledgments wait for the job that makes them true; nothing is
 * applied or answered before it is durable; jobs come back from the thread in order, grouped.
 */
#include <malloc.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "kv/memstore.h"
#include "log/log.h"
#include "replica/replica.h"
#include "storage.h"

#define N 3

struct frame {
    uint64_t from, to;
    uint8_t *bytes;
    size_t len;
    /* A frame in pieces (frame_refs): the copied pieces in bytes, the held ones pointed at, in
     * order; assembled only when delivered, so that a buffer freed too early is read then. */
    struct replica_seg segs[16];
    size_t n_segs;
    uint64_t hold;
};

struct cluster {
    uint32_t n;
    struct replica *r[N + 1];
    struct log_store *log[N + 1];
    struct kv_store *store[N + 1];
    struct frame q[4096];
    size_t nq;
    struct frame late[64]; /* frames in pieces kept back (keep_pieces_to) */
    size_t nlate;
    uint64_t keep_pieces_to; /* frames in pieces for this node go to late */
    /* Jobs handed out and not yet run, per node, in order. */
    struct replica_log_job *jobs[N + 1][256];
    size_t njobs[N + 1];
    uint32_t replies, ok_replies;
    uint64_t last_reply_id;
};

static void take(struct cluster *c, uint32_t id)
{
    struct replica_output out;
    replica_output(c->r[id], &out);
    for (size_t i = 0; i < out.n_frames; i++) {
        assert_true(c->nq < 4096);
        struct frame *f = &c->q[c->nq++];
        const struct replica_frame *of = &out.frames[i];
        f->from = id;
        f->to = of->to;
        f->len = of->len;
        f->n_segs = of->n_segs;
        f->hold = of->hold;
        f->bytes = malloc(f->len);
        if (of->n_segs == 0) {
            memcpy(f->bytes, of->bytes, f->len);
            continue;
        }
        assert_true(of->n_segs <= 16);
        assert_true(of->hold != 0);
        size_t at = 0;
        for (size_t k = 0; k < of->n_segs; k++) {
            f->segs[k] = of->segs[k];
            if (!of->segs[k].held) { /* valid until the next call: copied now */
                memcpy(f->bytes + at, of->segs[k].p, of->segs[k].len);
                f->segs[k].p = f->bytes + at;
            }
            at += of->segs[k].len;
        }
        assert_int_equal(at, f->len);
        if (f->to == c->keep_pieces_to) {
            assert_true(c->nlate < 64);
            c->late[c->nlate++] = *f;
            c->nq--;
        }
    }
    for (size_t i = 0; i < out.n_replies; i++) {
        c->replies++;
        c->last_reply_id = out.replies[i].req_id;
        if (out.replies[i].status == REPLICA_OK)
            c->ok_replies++;
    }
    for (size_t i = 0; i < out.n_log_jobs; i++) {
        assert_true(c->njobs[id] < 256);
        c->jobs[id][c->njobs[id]++] = out.log_jobs[i];
    }
}

/* Runs node id's jobs now (one group, one sync) and hands them back. */
static void run_jobs(struct cluster *c, uint32_t id)
{
    size_t n = c->njobs[id];
    if (n == 0)
        return;
    replica_log_run(c->jobs[id], n);
    c->njobs[id] = 0;
    for (size_t i = 0; i < n; i++)
        replica_log_job_done(c->r[id], c->jobs[id][i]);
    take(c, id);
}

/* Hands f to its node: a frame in pieces is assembled now (reading the entry data it points
 * at: ASan's use-after-free if the sender freed it), its hold released, and it goes in as a
 * reassembled frame (its own CRC is 0, replica_recv_pieces). */
static void deliver(struct cluster *c, struct frame *f)
{
    struct rk_errmsg err;
    if (f->n_segs > 0) {
        uint8_t *whole = malloc(f->len);
        size_t at = 0;
        for (size_t k = 0; k < f->n_segs; k++) {
            memcpy(whole + at, f->segs[k].p, f->segs[k].len);
            at += f->segs[k].len;
        }
        replica_frame_release(c->r[f->from], f->hold);
        assert_int_equal(replica_recv_pieces(c->r[f->to], f->from, whole, f->len, &err), RK_OK);
        free(whole);
    } else {
        replica_recv(c->r[f->to], f->from, f->bytes, f->len, &err);
    }
    free(f->bytes);
    take(c, (uint32_t)f->to);
}

static void run_jobs(struct cluster *c, uint32_t id);

/* Delivers every queued frame (and whatever they cause), running jobs as they appear unless
 * hold says which node's storage is stalled. */
static void settle(struct cluster *c, uint32_t hold)
{
    for (int round = 0; round < 10000; round++) {
        bool any = false;
        for (uint32_t id = 1; id <= c->n; id++) {
            if (id != hold && c->njobs[id] > 0) {
                run_jobs(c, id);
                any = true;
            }
        }
        if (c->nq > 0) {
            struct frame f = c->q[0];
            memmove(c->q, c->q + 1, (c->nq - 1) * sizeof(*c->q));
            c->nq--;
            deliver(c, &f);
            any = true;
        }
        if (!any)
            return;
    }
    fail_msg("cluster did not settle");
}

static void cluster_init_cfg(struct cluster *c, uint32_t n,
                             void (*adjust)(struct replica_config *cfg));

static void cluster_init(struct cluster *c, uint32_t n)
{
    cluster_init_cfg(c, n, NULL);
}

static void cluster_init_cfg(struct cluster *c, uint32_t n,
                             void (*adjust)(struct replica_config *cfg))
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    for (uint32_t id = 1; id <= n; id++) {
        assert_int_equal(log_memstore_create(rk_alloc_libc(), &c->log[id]), RK_OK);
        assert_int_equal(kv_memstore_create(rk_alloc_libc(), &c->store[id]), RK_OK);
        struct replica_config cfg;
        replica_config_default(&cfg);
        cfg.raft.id = id;
        cfg.raft.n_voters = n;
        for (uint32_t i = 0; i < n; i++)
            cfg.raft.voters[i] = i + 1;
        cfg.raft.seed = id;
        cfg.raft.election_ticks_min = 10;
        cfg.raft.election_ticks_max = 11;
        cfg.log = c->log[id];
        cfg.store = c->store[id];
        cfg.async_log = true;
        if (adjust != NULL)
            adjust(&cfg);
        struct rk_errmsg err;
        assert_int_equal(replica_create(&cfg, &c->r[id], &err), RK_OK);
    }
}

static void cluster_free(struct cluster *c)
{
    for (uint32_t id = 1; id <= c->n; id++) {
        for (size_t i = 0; i < c->njobs[id]; i++)
            replica_log_job_free(c->jobs[id][i]);
        replica_destroy(c->r[id]);
        c->log[id]->ops->destroy(c->log[id]);
        c->store[id]->ops->destroy(c->store[id]);
    }
    for (size_t i = 0; i < c->nq; i++)
        free(c->q[i].bytes);
    for (size_t i = 0; i < c->nlate; i++)
        free(c->late[i].bytes);
}

/* Node 1 times out first and wins. */
static void elect_1(struct cluster *c)
{
    for (int t = 0; t < 40; t++) {
        replica_tick(c->r[1]);
        take(c, 1);
        settle(c, 0);
        struct replica_info info;
        replica_info(c->r[1], &info);
        if (info.raft.role == RAFT_LEADER)
            return;
    }
    fail_msg("node 1 never became leader");
}

static void put(struct cluster *c, uint32_t id, uint64_t req_id, const char *key)
{
    struct replica_request req = {.req_id = req_id, .op = REPLICA_PUT,
                                  .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key),
                                  .val = (const uint8_t *)"v", .val_len = 1};
    replica_submit(c->r[id], &req);
    take(c, id);
}

static size_t frames_of_type(const struct cluster *c, uint64_t from, uint8_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nq; i++) {
        struct codec_frame f;
        struct rk_errmsg err;
        if (c->q[i].from != from ||
            codec_decode(c->q[i].bytes, c->q[i].len, rk_alloc_libc(), &f, &err) != RK_OK)
            continue;
        if (f.type < CODEC_TYPE_HANDSHAKE && f.msg.type == type)
            n++;
        codec_frame_free(rk_alloc_libc(), &f);
    }
    return n;
}

/* §10.2.1: the leader's APPENDs to both followers are out while its own log write is still a
 * job nobody has run; the write is answered only after it is durable on a majority. */
static void test_leader_sends_appends_before_its_own_sync(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 3);
    elect_1(&c);
    uint32_t before = c.ok_replies;
    put(&c, 1, 77, "k");
    assert_int_equal(c.njobs[1], 1);                            /* its own write: not run */
    assert_int_equal(frames_of_type(&c, 1, RAFT_MSG_APPEND), 2); /* already out */
    /* The followers persist and acknowledge; the leader's own job still stalled: the entry
     * commits on the two followers, and the leader, which applies only what it holds durably,
     * has not answered. */
    settle(&c, 1);
    assert_int_equal(c.ok_replies, before);
    struct replica_info info;
    replica_info(c.r[1], &info);
    assert_true(info.raft.persisted_index < info.raft.last_index);
    run_jobs(&c, 1);
    settle(&c, 0);
    assert_int_equal(c.ok_replies, before + 1);
    assert_int_equal(c.last_reply_id, 77);
    cluster_free(&c);
}

/* A follower's acknowledgment waits for its job: held while the job is out, released after. */
static void test_follower_ack_waits_for_its_sync(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 3);
    elect_1(&c);
    put(&c, 1, 78, "k");
    /* Deliver the leader's APPENDs to the followers only, running no follower job. */
    settle(&c, 2);
    assert_true(c.njobs[2] > 0);
    assert_int_equal(frames_of_type(&c, 2, RAFT_MSG_APPEND_RESP), 0);
    run_jobs(&c, 2);
    assert_true(frames_of_type(&c, 2, RAFT_MSG_APPEND_RESP) >= 1);
    settle(&c, 0);
    cluster_free(&c);
}

/* The storage thread: jobs of several writes go through it, come back in order, and every
 * write is answered OK once its job is back. */
static void test_storage_thread_runs_jobs_in_order(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 1);
    struct node_storage *st = NULL;
    struct rk_errmsg err;
    assert_int_equal(node_storage_start(&st, node_storage_run_log, node_storage_free_log, &err),
                     RK_OK);
    /* A one-node cluster elects itself through its own vote job. */
    for (int t = 0; t < 40 && c.ok_replies == 0; t++) {
        replica_tick(c.r[1]);
        take(&c, 1);
        run_jobs(&c, 1);
    }
    uint32_t want = 0;
    for (uint64_t i = 1; i <= 50; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
        put(&c, 1, 1000 + i, key);
        want++;
        assert_int_equal(node_storage_submit(st, (void *const *)c.jobs[1], c.njobs[1]), RK_OK);
        c.njobs[1] = 0;
    }
    uint32_t got_jobs = 0;
    while (c.ok_replies < want) {
        struct pollfd p = {.fd = node_storage_fd(st), .events = POLLIN};
        assert_true(poll(&p, 1, 10000) == 1);
        void *done[64];
        size_t n;
        while ((n = node_storage_take_done(st, done, 64)) > 0) {
            for (size_t i = 0; i < n; i++)
                replica_log_job_done(c.r[1], done[i]); /* asserts the order */
            got_jobs += (uint32_t)n;
            take(&c, 1);
            assert_int_equal(node_storage_submit(st, (void *const *)c.jobs[1], c.njobs[1]), RK_OK);
            c.njobs[1] = 0;
        }
    }
    assert_true(got_jobs >= want);
    assert_int_equal(c.ok_replies, want);
    assert_false(replica_failed(c.r[1], NULL));
    node_storage_stop(st);
    cluster_free(&c);
}

/* Frees with every byte overwritten first, so that a buffer read after its free shows it. */
static void *poison_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void *poison_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void poison_free(void *ctx, void *ptr)
{
    (void)ctx;
    if (ptr != NULL)
        memset(ptr, 0xA5, malloc_usable_size(ptr));
    free(ptr);
}

static const struct rk_alloc poison_alloc = {poison_malloc, poison_realloc, poison_free, NULL};

static void refs_and_eager_compaction(struct replica_config *cfg)
{
    cfg->alloc = &poison_alloc;
    cfg->frame_refs = true;
    cfg->compact_bytes = 64u << 10; /* a 300 KiB entry is dropped as soon as it is applied */
    cfg->compact_keep_bytes = 0;
    cfg->compact_keep = 0;
}

/* frame_refs: a big APPEND points at the leader's entry data instead of copying it; the leader
 * commits, applies and compacts the entry away (raft drops its buffer) while the frame to node 3
 * is still out; the buffer must outlive the frame: node 3 receives the right bytes when the
 * frame is assembled at last, and the buffer is freed once its hold is released. */
static void test_frame_refs_outlive_a_compaction(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init_cfg(&c, 3, refs_and_eager_compaction);
    elect_1(&c);
    size_t big = 300u << 10;
    uint8_t *val = malloc(big);
    for (size_t i = 0; i < big; i++)
        val[i] = (uint8_t)(i * 7 + (i >> 9));
    c.keep_pieces_to = 3;
    struct replica_request req = {.req_id = 77,
                                  .op = REPLICA_PUT,
                                  .key = (const uint8_t *)"big",
                                  .key_len = 3,
                                  .val = val,
                                  .val_len = (uint32_t)big};
    replica_submit(c.r[1], &req);
    take(&c, 1);
    settle(&c, 0);
    assert_int_equal(c.last_reply_id, 77); /* committed with node 2 */
    assert_true(c.nlate >= 1);             /* node 3's APPEND in pieces, held back */
    for (int t = 0; t < 12; t++) {         /* the store syncs (store_sync_ticks), then compaction */
        replica_tick(c.r[1]);
        take(&c, 1);
        settle(&c, 0);
    }
    struct replica_info info;
    replica_info(c.r[1], &info);
    assert_true(info.raft.snapshot_index >= info.raft.applied); /* compacted: entry dropped */
    size_t checked = 0;
    for (size_t k = 0; k < c.nlate; k++) { /* every held-back frame still carries the value */
        const struct frame *f = &c.late[k];
        uint8_t *whole = malloc(f->len);
        size_t at = 0;
        for (size_t j = 0; j < f->n_segs; j++) {
            memcpy(whole + at, f->segs[j].p, f->segs[j].len);
            at += f->segs[j].len;
        }
        struct codec_frame fr;
        struct rk_errmsg err;
        assert_int_equal(codec_decode_pieces(whole, f->len, rk_alloc_libc(), &fr, &err), RK_OK);
        for (uint32_t e = 0; e < fr.msg.n_entries; e++) {
            if (fr.msg.entries[e].len < big)
                continue;
            /* the kv command holds the value at its end */
            const uint8_t *d = fr.msg.entries[e].data;
            assert_memory_equal(d + fr.msg.entries[e].len - big, val, big);
            checked++;
        }
        codec_frame_free(rk_alloc_libc(), &fr);
        free(whole);
    }
    assert_true(checked >= 1);
    while (c.nlate > 0) {
        struct frame f = c.late[0];
        memmove(c.late, c.late + 1, (c.nlate - 1) * sizeof(*c.late));
        c.nlate--;
        deliver(&c, &f);
    }
    settle(&c, 0);
    struct replica_info i3;
    replica_info(c.r[3], &i3);
    assert_true(i3.raft.applied >= info.raft.applied);
    const uint8_t *got = NULL;
    uint32_t got_len = 0;
    assert_int_equal(replica_read_get(c.r[3], (const uint8_t *)"big", 3, &got, &got_len), RK_OK);
    assert_int_equal(got_len, big);
    assert_memory_equal(got, val, big); /* not the poison of a freed buffer */
    free(val);
    cluster_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leader_sends_appends_before_its_own_sync),
        cmocka_unit_test(test_follower_ack_waits_for_its_sync),
        cmocka_unit_test(test_storage_thread_runs_jobs_in_order),
        cmocka_unit_test(test_frame_refs_outlive_a_compaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
