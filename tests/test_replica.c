/*
 * test_replica.c — core/replica through its public API: N replicas over log_memstores and
 * kv_memstores, frames carried by a FIFO the test controls, client replies collected by req_id.
 *
 * The harness (struct net) checks as it goes what every test relies on: each request is
 * answered exactly once, by the node it was submitted to, and every TRYAGAIN, TIMEOUT or ERROR
 * says why. Frames between honest replicas are always accepted. Nothing is random: a test
 * decides every tick and every delivery; raft's seeds are the node ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "kv/kv.h"
#include "kv/memstore.h"
#include "log/log.h"
#include "replica/replica.h"

/* ---- the harness ------------------------------------------------------------------------ */

#define NET_MAX_NODES  5
#define NET_MAX_REQS   8192
#define NET_MAX_VAL    64
#define NET_MAX_REASON 128
#define NET_MAX_STEPS  1000000 /* frames delivered by one net_deliver_all */

struct net_frame {
    uint64_t from;
    uint64_t to;
    uint8_t *bytes; /* owned by the queue */
    size_t len;
};

struct net_reply {
    uint32_t count; /* replies seen for this req_id: must end at exactly 1 */
    uint8_t status;
    int64_t num;
    uint8_t val[NET_MAX_VAL];
    uint32_t val_len;
    char reason[NET_MAX_REASON];
    uint64_t leader;
    uint64_t tick; /* net ticks when it arrived */
};

struct net_node {
    struct replica_config cfg;
    struct replica *r; /* NULL: down */
    struct log_store *log;
    struct kv_store *store;
    bool isolated; /* every frame from or to it is dropped */
};

struct net {
    uint32_t n;
    struct net_node nodes[NET_MAX_NODES + 1]; /* by id; [0] unused */
    struct net_frame *q;
    size_t q_head, q_len, q_cap; /* FIFO: q[q_head .. q_len) */
    uint64_t ticks;
    uint64_t next_req;
    uint64_t submitted_to[NET_MAX_REQS]; /* node id, 0: not submitted */
    uint64_t submitted_tick[NET_MAX_REQS];
    struct net_reply replies[NET_MAX_REQS];
    bool cut[NET_MAX_NODES + 1][NET_MAX_NODES + 1]; /* [from][to]: frames dropped */
    uint64_t n_replies;                             /* replies seen, all requests */
    uint64_t frames_dropped;
};

static bool net_cut(const struct net *net, uint64_t from, uint64_t to)
{
    return net->nodes[from].isolated || net->nodes[to].isolated || net->cut[from][to];
}

static void net_record_reply(struct net *net, uint64_t id, const struct replica_reply *rep)
{
    assert_true(rep->req_id > 0 && rep->req_id < NET_MAX_REQS);
    if (net->submitted_to[rep->req_id] != id)
        fail_msg("node %llu answered req %llu submitted to node %llu", (unsigned long long)id,
                 (unsigned long long)rep->req_id,
                 (unsigned long long)net->submitted_to[rep->req_id]);
    struct net_reply *nr = &net->replies[rep->req_id];
    nr->count++;
    net->n_replies++;
    if (nr->count != 1)
        fail_msg("req %llu answered %u times (now %s)", (unsigned long long)rep->req_id, nr->count,
                 replica_status_name(rep->status));
    nr->status = rep->status;
    nr->num = rep->num;
    nr->leader = rep->leader;
    nr->tick = net->ticks;
    assert_true(rep->val_len <= NET_MAX_VAL);
    if (rep->val_len > 0) {
        assert_non_null(rep->val);
        memcpy(nr->val, rep->val, rep->val_len);
    }
    nr->val_len = rep->val_len;
    if (rep->status == REPLICA_TRYAGAIN || rep->status == REPLICA_TIMEOUT ||
        rep->status == REPLICA_ERROR) {
        assert_non_null(rep->reason);
        assert_true(rep->reason[0] != '\0');
    }
    if (rep->reason != NULL)
        snprintf(nr->reason, sizeof(nr->reason), "%s", rep->reason);
}

/* Takes node id's outputs: frames into the FIFO (unless cut), replies into net->replies. */
static void net_collect(struct net *net, uint64_t id)
{
    struct replica_output out;
    replica_output(net->nodes[id].r, &out);
    for (size_t i = 0; i < out.n_frames; i++) {
        const struct replica_frame *f = &out.frames[i];
        assert_true(f->to >= 1 && f->to <= net->n && f->to != id);
        if (net_cut(net, id, f->to)) {
            net->frames_dropped++;
            continue;
        }
        if (net->q_len == net->q_cap) {
            if (net->q_head > 0) {
                memmove(net->q, net->q + net->q_head, (net->q_len - net->q_head) * sizeof(*net->q));
                net->q_len -= net->q_head;
                net->q_head = 0;
            }
            if (net->q_len == net->q_cap) {
                net->q_cap = net->q_cap == 0 ? 64 : 2 * net->q_cap;
                net->q = realloc(net->q, net->q_cap * sizeof(*net->q));
                assert_non_null(net->q);
            }
        }
        uint8_t *copy = malloc(f->len);
        assert_non_null(copy);
        memcpy(copy, f->bytes, f->len);
        net->q[net->q_len++] =
            (struct net_frame){.from = id, .to = f->to, .bytes = copy, .len = f->len};
    }
    for (size_t i = 0; i < out.n_replies; i++)
        net_record_reply(net, id, &out.replies[i]);
}

static void net_start(struct net *net, uint64_t id)
{
    struct net_node *nd = &net->nodes[id];
    assert_null(nd->r);
    assert_int_equal(kv_memstore_create(rk_alloc_libc(), &nd->store), RK_OK);
    nd->cfg.store = nd->store;
    nd->cfg.log = nd->log;
    struct rk_errmsg err = {{0}};
    int rc = replica_create(&nd->cfg, &nd->r, &err);
    if (rc != RK_OK)
        fail_msg("replica %llu: %s", (unsigned long long)id, err.text);
}

/* Crash: the replica and its state machine go, the log store stays. Queued frames to it will
 * be dropped at delivery. */
static void net_crash(struct net *net, uint64_t id)
{
    struct net_node *nd = &net->nodes[id];
    replica_destroy(nd->r);
    nd->r = NULL;
    nd->store->ops->destroy(nd->store);
    nd->store = NULL;
}

static struct net *net_new(uint32_t n, void (*tweak)(struct replica_config *c))
{
    assert_true(n >= 1 && n <= NET_MAX_NODES);
    struct net *net = calloc(1, sizeof(*net));
    assert_non_null(net);
    net->n = n;
    net->next_req = 1;
    for (uint64_t id = 1; id <= n; id++) {
        struct net_node *nd = &net->nodes[id];
        replica_config_default(&nd->cfg);
        nd->cfg.raft.id = id;
        nd->cfg.raft.n_voters = n;
        for (uint32_t i = 0; i < n; i++)
            nd->cfg.raft.voters[i] = i + 1;
        nd->cfg.raft.seed = id;
        if (tweak != NULL)
            tweak(&nd->cfg);
        assert_int_equal(log_memstore_create(rk_alloc_libc(), &nd->log), RK_OK);
        net_start(net, id);
    }
    return net;
}

static void net_free(struct net *net)
{
    for (uint64_t id = 1; id <= net->n; id++) {
        if (net->nodes[id].r != NULL)
            net_crash(net, id);
        net->nodes[id].log->ops->destroy(net->nodes[id].log);
    }
    for (size_t i = net->q_head; i < net->q_len; i++)
        free(net->q[i].bytes);
    free(net->q);
    free(net);
}

/* Delivers the frame at the head of the FIFO; false when it is empty. */
static bool net_deliver_one(struct net *net)
{
    if (net->q_head == net->q_len)
        return false;
    struct net_frame f = net->q[net->q_head++];
    struct net_node *nd = &net->nodes[f.to];
    if (nd->r == NULL || net_cut(net, f.from, f.to)) {
        net->frames_dropped++;
    } else {
        struct rk_errmsg err = {{0}};
        int rc = replica_recv(nd->r, f.from, f.bytes, f.len, &err);
        if (rc != RK_OK)
            fail_msg("node %llu refused a frame from %llu: %s", (unsigned long long)f.to,
                     (unsigned long long)f.from, err.text);
        net_collect(net, f.to);
    }
    free(f.bytes);
    return true;
}

static void net_deliver_all(struct net *net)
{
    uint32_t steps = 0;
    while (net_deliver_one(net))
        assert_true(++steps < NET_MAX_STEPS);
}

static void net_tick_all(struct net *net)
{
    net->ticks++;
    for (uint64_t id = 1; id <= net->n; id++) {
        if (net->nodes[id].r == NULL)
            continue;
        replica_tick(net->nodes[id].r);
        net_collect(net, id);
    }
    net_deliver_all(net);
}

static void net_run(struct net *net, uint32_t ticks)
{
    for (uint32_t i = 0; i < ticks; i++)
        net_tick_all(net);
}

static struct replica_info net_info(const struct net *net, uint64_t id)
{
    struct replica_info st;
    replica_info(net->nodes[id].r, &st);
    return st;
}

/* The leader of the highest term among up nodes, or 0. */
static uint64_t net_leader(const struct net *net)
{
    uint64_t leader = 0, term = 0;
    for (uint64_t id = 1; id <= net->n; id++) {
        if (net->nodes[id].r == NULL)
            continue;
        struct replica_info st = net_info(net, id);
        if (st.raft.role == RAFT_LEADER && st.raft.term >= term) {
            leader = id;
            term = st.raft.term;
        }
    }
    return leader;
}

/* Ticks until one leader is known to every up, connected node; returns it. */
static uint64_t net_elect(struct net *net)
{
    for (uint32_t i = 0; i < 500; i++) {
        net_tick_all(net);
        uint64_t leader = net_leader(net);
        if (leader == 0 || net->nodes[leader].isolated)
            continue;
        bool all = true;
        for (uint64_t id = 1; id <= net->n; id++) {
            if (net->nodes[id].r != NULL && !net->nodes[id].isolated)
                all = all && net_info(net, id).raft.leader == leader;
        }
        if (all)
            return leader;
    }
    fail_msg("no leader after 500 ticks");
    return 0;
}

/* Some up node other than `not`. */
static uint64_t net_other(const struct net *net, uint64_t not1, uint64_t not2)
{
    for (uint64_t id = 1; id <= net->n; id++) {
        if (id != not1 && id != not2 && net->nodes[id].r != NULL)
            return id;
    }
    fail_msg("no other node");
    return 0;
}

/* Submits *req (its req_id is assigned here) to node id. */
static uint64_t net_submit_req(struct net *net, uint64_t id, struct replica_request req)
{
    assert_true(net->next_req < NET_MAX_REQS);
    uint64_t req_id = net->next_req++;
    net->submitted_to[req_id] = id;
    net->submitted_tick[req_id] = net->ticks;
    req.req_id = req_id;
    replica_submit(net->nodes[id].r, &req);
    net_collect(net, id);
    return req_id;
}

static uint64_t net_submit_full(struct net *net, uint64_t id, uint8_t op, const uint8_t *key,
                                uint32_t key_len, const uint8_t *val, uint32_t val_len,
                                uint64_t client_id, uint64_t seq)
{
    struct replica_request req = {.op = op,
                                  .client_id = client_id,
                                  .seq = seq,
                                  .key = key,
                                  .key_len = key_len,
                                  .val = val,
                                  .val_len = val_len};
    return net_submit_req(net, id, req);
}

static uint64_t net_submit(struct net *net, uint64_t id, uint8_t op, const char *key,
                           const char *val, uint64_t client_id, uint64_t seq)
{
    return net_submit_full(net, id, op, (const uint8_t *)key, (uint32_t)strlen(key),
                           (const uint8_t *)val, val == NULL ? 0 : (uint32_t)strlen(val), client_id,
                           seq);
}

/* The reply to req_id, or NULL if none yet. */
static const struct net_reply *net_reply(const struct net *net, uint64_t req_id)
{
    const struct net_reply *nr = &net->replies[req_id];
    return nr->count == 0 ? NULL : nr;
}

/* Delivers and ticks until req_id is answered (at most max_ticks ticks). */
static const struct net_reply *net_wait(struct net *net, uint64_t req_id, uint32_t max_ticks)
{
    net_deliver_all(net);
    for (uint32_t i = 0; net_reply(net, req_id) == NULL && i < max_ticks; i++)
        net_tick_all(net);
    const struct net_reply *nr = net_reply(net, req_id);
    if (nr == NULL)
        fail_msg("req %llu not answered within %u ticks", (unsigned long long)req_id, max_ticks);
    return nr;
}

static void assert_status(const struct net_reply *nr, uint8_t want)
{
    if (nr->status != want)
        fail_msg("status %s (%s), want %s", replica_status_name(nr->status), nr->reason,
                 replica_status_name(want));
}

static void assert_value(const struct net_reply *nr, const char *want)
{
    assert_status(nr, REPLICA_OK);
    assert_int_equal(nr->val_len, strlen(want));
    assert_memory_equal(nr->val, want, strlen(want));
}

/* Submits and waits: the reply. */
static const struct net_reply *net_do(struct net *net, uint64_t id, uint8_t op, const char *key,
                                      const char *val, uint64_t client_id, uint64_t seq)
{
    return net_wait(net, net_submit(net, id, op, key, val, client_id, seq), 100);
}

/* Every request submitted so far has been answered exactly once. */
static void net_assert_all_answered(const struct net *net)
{
    for (uint64_t req = 1; req < net->next_req; req++) {
        if (net->replies[req].count != 1)
            fail_msg("req %llu answered %u times", (unsigned long long)req,
                     net->replies[req].count);
    }
}

/* The value of key in node id's state machine, read straight from its store, where the user
 * key K of db 0 is stored as '0' + K, its value after a header (kv.h: the store layout). */
static bool net_store_get(const struct net *net, uint64_t id, const char *key, const char *want)
{
    struct kv_store *s = net->nodes[id].store;
    char skey[64];
    int n = snprintf(skey, sizeof(skey), "%c%s", KV_KEY_USER, key);
    assert_true(n > 0 && (size_t)n < sizeof(skey));
    const uint8_t *val = NULL;
    uint32_t len = 0;
    int rc = s->ops->get(s, (const uint8_t *)skey, (uint32_t)n, &val, &len);
    if (want == NULL)
        return rc == RK_ENOENT;
    uint8_t db = 0;
    const uint8_t *ukey = NULL, *uval = NULL;
    uint32_t ukey_len = 0, uval_len = 0;
    uint64_t mod = 0, deadline = 0;
    return rc == RK_OK &&
           kv_user_record_decode((const uint8_t *)skey, (uint32_t)n, val, len, &db, &ukey,
                                 &ukey_len, &uval, &uval_len, &mod, &deadline, NULL) == RK_OK &&
           uval_len == strlen(want) && memcmp(uval, want, uval_len) == 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_leader_elected_by_ticks_serves_put_get_and_del(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);

    assert_status(net_do(net, leader, REPLICA_PUT, "x", "v1", 0, 0), REPLICA_OK);
    /* Linearizable reads on every node, submitted right after the PUT's OK: a follower that
     * has not applied it yet must wait for the read index rather than answer stale. */
    uint64_t gets[NET_MAX_NODES + 1];
    for (uint64_t id = 1; id <= 3; id++)
        gets[id] = net_submit(net, id, REPLICA_GET, "x", NULL, 0, 0);
    for (uint64_t id = 1; id <= 3; id++)
        assert_value(net_wait(net, gets[id], 100), "v1");

    for (uint64_t id = 1; id <= 3; id++)
        assert_status(net_do(net, id, REPLICA_GET, "missing", NULL, 0, 0), REPLICA_NOT_FOUND);

    const struct net_reply *del = net_do(net, leader, REPLICA_DEL, "x", NULL, 0, 0);
    assert_status(del, REPLICA_OK);
    assert_int_equal(del->num, 1);
    del = net_do(net, leader, REPLICA_DEL, "x", NULL, 0, 0);
    assert_status(del, REPLICA_OK);
    assert_int_equal(del->num, 0);
    assert_status(net_do(net, net_other(net, leader, 0), REPLICA_GET, "x", NULL, 0, 0),
                  REPLICA_NOT_FOUND);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_write_on_follower_is_forwarded_and_applied_everywhere(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t follower = net_other(net, leader, 0);

    assert_status(net_do(net, follower, REPLICA_PUT, "y", "v2", 0, 0), REPLICA_OK);
    /* The follower's own state machine has it by the time it says OK. */
    assert_true(net_store_get(net, follower, "y", "v2"));
    net_run(net, 3);
    for (uint64_t id = 1; id <= 3; id++)
        assert_true(net_store_get(net, id, "y", "v2"));

    /* The result travels back: the forwarded DEL reports what the leader's apply did. */
    const struct net_reply *del = net_do(net, follower, REPLICA_DEL, "y", NULL, 0, 0);
    assert_status(del, REPLICA_OK);
    assert_int_equal(del->num, 1);
    del = net_do(net, follower, REPLICA_DEL, "y", NULL, 0, 0);
    assert_status(del, REPLICA_OK);
    assert_int_equal(del->num, 0);
    net_run(net, 3);
    for (uint64_t id = 1; id <= 3; id++)
        assert_true(net_store_get(net, id, "y", NULL));
    net_assert_all_answered(net);
    net_free(net);
}

static void test_read_on_a_lagging_follower_waits_for_the_read_index(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    /* The PUT commits without f, which then asks for x before it has the entry: the read
     * index it gets is above what it applied, and it must wait rather than say NOT_FOUND. */
    net->nodes[f].isolated = true;
    uint64_t put = net_submit(net, leader, REPLICA_PUT, "x", "v", 0, 0);
    net_deliver_all(net);
    assert_status(net_reply(net, put), REPLICA_OK);
    net->nodes[f].isolated = false;
    assert_true(net_store_get(net, f, "x", NULL));
    assert_int_equal(net_info(net, f).raft.leader, leader);
    assert_value(net_do(net, f, REPLICA_GET, "x", NULL, 0, 0), "v");
    net_assert_all_answered(net);
    net_free(net);
}

static void test_requests_without_a_known_leader_get_tryagain(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t get = net_submit(net, 1, REPLICA_GET, "k", NULL, 0, 0);
    uint64_t put = net_submit(net, 2, REPLICA_PUT, "k", "v", 0, 0);
    uint64_t del = net_submit(net, 3, REPLICA_DEL, "k", NULL, 9, 1);
    /* Answered within the call, before any tick: nothing hangs waiting for a leader. */
    uint64_t reqs[] = {get, put, del};
    for (size_t i = 0; i < 3; i++) {
        const struct net_reply *nr = net_reply(net, reqs[i]);
        assert_non_null(nr);
        assert_status(nr, REPLICA_TRYAGAIN);
        assert_int_equal(nr->leader, 0);
        assert_int_equal(nr->tick, 0);
    }
    for (uint64_t id = 1; id <= 3; id++)
        assert_int_equal(net_info(net, id).pending, 0);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_retried_write_with_the_same_session_is_applied_once(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f1 = net_other(net, leader, 0);
    uint64_t f2 = net_other(net, leader, f1);

    assert_status(net_do(net, leader, REPLICA_PUT, "x", "1", 1, 1), REPLICA_OK);
    assert_status(net_do(net, f1, REPLICA_PUT, "x", "2", 2, 1), REPLICA_OK);
    /* Client 1 never saw its OK and retries on another node. */
    assert_status(net_do(net, f2, REPLICA_PUT, "x", "1", 1, 1), REPLICA_OK);
    for (uint64_t id = 1; id <= 3; id++)
        assert_value(net_do(net, id, REPLICA_GET, "x", NULL, 0, 0), "2");

    /* A retried DEL gets the first DEL's result (1 key removed), not a second apply's 0. */
    const struct net_reply *del = net_do(net, leader, REPLICA_DEL, "x", NULL, 3, 1);
    assert_status(del, REPLICA_OK);
    assert_int_equal(del->num, 1);
    del = net_do(net, f1, REPLICA_DEL, "x", NULL, 3, 1);
    assert_status(del, REPLICA_OK);
    assert_int_equal(del->num, 1);
    /* And a retry of client 1's PUT after the DEL still does not bring x back. */
    assert_status(net_do(net, f2, REPLICA_PUT, "x", "1", 1, 1), REPLICA_OK);
    assert_status(net_do(net, leader, REPLICA_GET, "x", NULL, 0, 0), REPLICA_NOT_FOUND);
    net_assert_all_answered(net);
    net_free(net);
}

#define TIMEOUT_TICKS 30
#define SLACK_TICKS   2

static void timeout_config(struct replica_config *c)
{
    c->request_timeout_ticks = TIMEOUT_TICKS;
}

static void test_requests_at_an_isolated_leader_end_in_timeout_or_tryagain(void **state)
{
    (void)state;
    struct net *net = net_new(3, timeout_config);
    uint64_t leader = net_elect(net);
    uint64_t follower = net_other(net, leader, 0);
    net->nodes[leader].isolated = true;

    uint64_t put_l = net_submit(net, leader, REPLICA_PUT, "a", "1", 0, 0);
    uint64_t get_l = net_submit(net, leader, REPLICA_GET, "a", NULL, 0, 0);
    uint64_t put_f = net_submit(net, follower, REPLICA_PUT, "b", "1", 0, 0);
    uint64_t get_f = net_submit(net, follower, REPLICA_GET, "b", NULL, 0, 0);
    uint64_t reqs[] = {put_l, get_l, put_f, get_f};
    net_run(net, TIMEOUT_TICKS + SLACK_TICKS);
    for (size_t i = 0; i < 4; i++) {
        const struct net_reply *nr = net_reply(net, reqs[i]);
        if (nr == NULL)
            fail_msg("req %llu unanswered after %d ticks", (unsigned long long)reqs[i],
                     TIMEOUT_TICKS + SLACK_TICKS);
        assert_true(nr->tick - net->submitted_tick[reqs[i]] <= TIMEOUT_TICKS + SLACK_TICKS);
    }
    /* The writes may have been proposed: their outcome is unknown. Reads never execute. */
    assert_status(net_reply(net, put_l), REPLICA_TIMEOUT);
    assert_status(net_reply(net, put_f), REPLICA_TIMEOUT);
    assert_status(net_reply(net, get_l), REPLICA_TRYAGAIN);
    assert_status(net_reply(net, get_f), REPLICA_TRYAGAIN);

    /* Healing brings no second answer (the harness fails on one) and leaves nothing pending. */
    net->nodes[leader].isolated = false;
    net_run(net, 50);
    for (uint64_t id = 1; id <= 3; id++)
        assert_int_equal(net_info(net, id).pending, 0);
    net_assert_all_answered(net);
    net_free(net);
}

static void long_timeout_config(struct replica_config *c)
{
    c->request_timeout_ticks = 1000;
}

/* True when some entry of node id's raft log is a command on key. */
static bool log_has_key(const struct net *net, uint64_t id, const char *key)
{
    const struct raft *r = replica_raft(net->nodes[id].r);
    struct raft_status st;
    raft_status(r, &st);
    for (uint64_t i = st.first_index; i <= st.last_index; i++) {
        const struct raft_entry *e = raft_entry_at(r, i);
        assert_non_null(e);
        if (e->type != RAFT_ENTRY_NORMAL)
            continue;
        struct kv_cmd c;
        assert_int_equal(kv_cmd_decode(e->data, e->len, &c, NULL), RK_OK);
        if (c.key_len == strlen(key) && memcmp(c.key, key, c.key_len) == 0)
            return true;
    }
    return false;
}

static void test_write_on_a_deposed_leader_is_never_acknowledged(void **state)
{
    (void)state;
    struct net *net = net_new(3, long_timeout_config);
    uint64_t old = net_elect(net);
    assert_status(net_do(net, old, REPLICA_PUT, "a", "1", 0, 0), REPLICA_OK);

    net->nodes[old].isolated = true;
    uint64_t lost = net_submit(net, old, REPLICA_PUT, "z", "lost", 0, 0);
    uint64_t read = net_submit(net, old, REPLICA_GET, "a", NULL, 0, 0);
    assert_true(log_has_key(net, old, "z")); /* proposed: in the old leader's log */

    uint64_t leader = 0;
    for (uint32_t i = 0; i < 200 && (leader == 0 || leader == old); i++) {
        net_tick_all(net);
        leader = net_leader(net);
    }
    assert_true(leader != 0 && leader != old);
    assert_status(net_do(net, leader, REPLICA_PUT, "w", "new", 0, 0), REPLICA_OK);

    net->nodes[old].isolated = false;
    const struct net_reply *nr = net_wait(net, lost, 200);
    /* With a timeout this long, only the overwrite of its entry can end it. */
    assert_status(nr, REPLICA_TRYAGAIN);
    assert_status(net_wait(net, read, 200), REPLICA_TRYAGAIN);
    net_run(net, 5);
    for (uint64_t id = 1; id <= 3; id++) {
        assert_false(log_has_key(net, id, "z"));
        assert_true(net_store_get(net, id, "z", NULL));
        assert_true(net_store_get(net, id, "w", "new"));
    }
    assert_status(net_do(net, old, REPLICA_GET, "z", NULL, 0, 0), REPLICA_NOT_FOUND);
    net_assert_all_answered(net);
    net_free(net);
}

/* A write forwarded to a leader that then loses its leadership before acknowledging it: the
 * follower answers TIMEOUT (the outcome is unknown) as soon as it learns of the new leader, not
 * after the request timeout. */
static void test_forward_to_a_deposed_leader_ends_when_the_leader_changes(void **state)
{
    (void)state;
    struct net *net = net_new(3, long_timeout_config);
    uint64_t old = net_elect(net);
    uint64_t follower = net_other(net, old, 0);
    net->nodes[old].isolated = true;
    uint64_t fwd = net_submit(net, follower, REPLICA_PUT, "f", "1", 0, 0);
    net_deliver_all(net);
    assert_null(net_reply(net, fwd)); /* the forward went nowhere: no answer yet */
    uint64_t leader = 0;
    for (uint32_t i = 0; i < 200 && (leader == 0 || leader == old); i++) {
        net_tick_all(net);
        leader = net_leader(net);
    }
    assert_true(leader != 0 && leader != old);
    const struct net_reply *nr = net_wait(net, fwd, 50);
    assert_status(nr, REPLICA_TIMEOUT);
    assert_non_null(strstr(nr->reason, "leadership changed"));
    assert_true(nr->tick - net->submitted_tick[fwd] < 1000); /* well before the timeout */
    /* The new leader takes writes through the same follower. */
    assert_status(net_do(net, follower, REPLICA_PUT, "g", "2", 0, 0), REPLICA_OK);
    net->nodes[old].isolated = false;
    net_run(net, 50);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_restarted_replica_reapplies_its_log_and_serves_the_same_data(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    char key[16], val[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        assert_status(net_do(net, leader, REPLICA_PUT, key, val, 1, (uint64_t)i + 1), REPLICA_OK);
    }
    assert_int_equal(net_do(net, leader, REPLICA_DEL, "k3", NULL, 1, 11)->num, 1);
    net_run(net, 3); /* f learns the commit index of everything */
    struct replica_info before = net_info(net, f);
    assert_int_equal(before.keys, 9);
    assert_true(before.raft.applied == before.raft.commit);

    net_crash(net, f);
    net->nodes[f].cfg.raft.seed += 1000; /* a new incarnation draws new randomness */
    net_start(net, f);
    assert_int_equal(net_info(net, f).keys, 0); /* nothing replayed before the first input */
    /* One input, alone: the committed prefix it persisted applies without any leader. */
    replica_tick(net->nodes[f].r);
    net_collect(net, f);
    struct replica_info after = net_info(net, f);
    assert_true(after.raft.applied >= before.raft.commit);
    assert_int_equal(after.keys, 9);
    assert_true(net_store_get(net, f, "k0", "v0"));
    assert_true(net_store_get(net, f, "k3", NULL));
    for (uint32_t i = 0; i < 50 && net_info(net, f).raft.leader != leader; i++)
        net_tick_all(net);
    assert_int_equal(net_info(net, f).raft.leader, leader);

    /* Sessions were rebuilt by the replay: client 1's retry of its last command (the DEL,
     * seq 11) gets the cached result instead of a second apply. */
    const struct net_reply *retry = net_do(net, f, REPLICA_DEL, "k3", NULL, 1, 11);
    assert_status(retry, REPLICA_OK);
    assert_int_equal(retry->num, 1);
    /* Catches up with writes made meanwhile. */
    assert_status(net_do(net, leader, REPLICA_PUT, "k10", "v10", 2, 1), REPLICA_OK);
    assert_value(net_do(net, f, REPLICA_GET, "k10", NULL, 0, 0), "v10");
    assert_value(net_do(net, f, REPLICA_GET, "k9", NULL, 0, 0), "v9");
    for (int i = 0; i <= 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        assert_true(net_store_get(net, f, key, i == 3 ? NULL : val));
    }
    net_assert_all_answered(net);
    net_free(net);
}

/* Feeds one frame to node id as if from `from`: it must be refused with a message, answer no
 * client and leave the pending requests as they were. */
static void assert_frame_refused(struct net *net, uint64_t id, uint64_t from, const uint8_t *b,
                                 size_t len, int want_rc)
{
    uint32_t pending = net_info(net, id).pending;
    uint64_t replies = net->n_replies;
    struct rk_errmsg err = {{0}};
    int rc = replica_recv(net->nodes[id].r, from, b, len, &err);
    if (rc == RK_OK)
        fail_msg("node %llu accepted a bad frame of %zu bytes", (unsigned long long)id, len);
    if (want_rc != RK_OK)
        assert_int_equal(rc, want_rc);
    assert_true(err.text[0] != '\0');
    net_collect(net, id);
    assert_int_equal(net->n_replies, replies);
    assert_int_equal(net_info(net, id).pending, pending);
}

static void test_bad_frames_are_refused_with_a_message_and_the_replica_keeps_working(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    uint64_t g = net_other(net, leader, f);
    /* A request in flight at f (its READ_INDEX stays queued), so that "nothing answered"
     * means something. */
    uint64_t waiting = net_submit(net, f, REPLICA_GET, "k", NULL, 0, 0);
    assert_null(net_reply(net, waiting));

    /* A genuine frame from the leader to f: a heartbeat. */
    replica_tick(net->nodes[leader].r);
    net_collect(net, leader);
    uint8_t real[256];
    size_t real_len = 0;
    for (size_t i = net->q_head; i < net->q_len; i++) {
        if (net->q[i].from == leader && net->q[i].to == f && net->q[i].len <= sizeof(real)) {
            memcpy(real, net->q[i].bytes, net->q[i].len);
            real_len = net->q[i].len;
        }
    }
    assert_true(real_len > CODEC_FRAME_HEADER_SIZE + 1);

    uint8_t garbage[64];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)(i * 37 + 11);
    assert_frame_refused(net, f, leader, garbage, sizeof(garbage), RK_OK);
    assert_frame_refused(net, f, leader, garbage, 0, RK_EMALFORMED);
    assert_frame_refused(net, f, leader, real, real_len - 1, RK_EMALFORMED);
    assert_frame_refused(net, f, leader, real, CODEC_FRAME_HEADER_SIZE, RK_EMALFORMED);
    uint8_t flipped[256];
    memcpy(flipped, real, real_len);
    flipped[real_len - 1] ^= 0x40;
    assert_frame_refused(net, f, leader, flipped, real_len, RK_ECORRUPT);
    /* The leader's frame on the link from g: it claims another sender. */
    assert_frame_refused(net, f, g, real, real_len, RK_EINVAL);
    /* The leader's frame for f, delivered to g: not for it. */
    assert_frame_refused(net, g, leader, real, real_len, RK_EINVAL);

    uint8_t buf[256];
    size_t len = 0;
    struct codec_handshake hs = {
        .version = CODEC_PROTOCOL_VERSION, .cluster_id = 1, .node_id = leader};
    assert_int_equal(codec_encode_handshake(&hs, buf, sizeof(buf), &len), RK_OK);
    assert_frame_refused(net, f, leader, buf, len, RK_EINVAL);

    /* A non-member is heard only as a leader (core/raft/MEMBERSHIP.md): its vote request is
     * refused. */
    struct raft_msg stranger = {.type = RAFT_MSG_VOTE, .from = 7, .to = f, .term = 99};
    assert_int_equal(codec_encode_msg(&stranger, buf, sizeof(buf), &len), RK_OK);
    assert_frame_refused(net, f, 7, buf, len, RK_EINVAL);

    const uint8_t data[] = "not a command";
    struct codec_forward fwd = {
        .from = g, .to = leader, .id = 1, .data = data, .len = sizeof(data)};
    assert_int_equal(codec_encode_forward(CODEC_TYPE_FORWARD, &fwd, buf, sizeof(buf), &len), RK_OK);
    assert_frame_refused(net, leader, f, buf, len, RK_EINVAL); /* sent by g, came from f */
    struct codec_forward resp = {.from = leader, .to = g, .id = 1};
    assert_int_equal(codec_encode_forward(CODEC_TYPE_FORWARD_RESP, &resp, buf, sizeof(buf), &len),
                     RK_OK);
    assert_frame_refused(net, f, leader, buf, len, RK_EINVAL); /* meant for g */

    /* Still working: the read in flight completes, new requests succeed, nothing was applied
     * from the forged FORWARD. */
    assert_status(net_wait(net, waiting, 100), REPLICA_NOT_FOUND);
    assert_status(net_do(net, f, REPLICA_PUT, "k", "v", 0, 0), REPLICA_OK);
    assert_value(net_do(net, f, REPLICA_GET, "k", NULL, 0, 0), "v");
    assert_int_equal(net_leader(net), leader);
    assert_int_equal(net_info(net, leader).keys, 1);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_invalid_requests_get_error_at_once(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    uint8_t *key = malloc(KV_MAX_KEY_BYTES + 1);
    assert_non_null(key);
    memset(key, 'k', KV_MAX_KEY_BYTES + 1);
    /* Never touched by a correct replica: it refuses the length first. */
    uint8_t *big = malloc((size_t)KV_MAX_VALUE_BYTES + 1);
    assert_non_null(big);
    const uint8_t v[] = "v";

    uint64_t nodes[] = {leader, f};
    for (size_t n = 0; n < 2; n++) {
        uint64_t id = nodes[n];
        uint64_t reqs[] = {
            net_submit_full(net, id, REPLICA_PUT, key, KV_MAX_KEY_BYTES + 1, v, 1, 0, 0),
            net_submit_full(net, id, REPLICA_GET, key, KV_MAX_KEY_BYTES + 1, NULL, 0, 0, 0),
            net_submit_full(net, id, REPLICA_DEL, key, KV_MAX_KEY_BYTES + 1, NULL, 0, 0, 0),
            net_submit_full(net, id, 0, key, 1, NULL, 0, 0, 0),
            net_submit_full(net, id, REPLICA_DEL + 1, key, 1, v, 1, 0, 0),
            net_submit_full(net, id, 255, key, 1, NULL, 0, 0, 0),
            net_submit_full(net, id, REPLICA_PUT, key, 1, v, 1, 7, 0),
            net_submit_full(net, id, REPLICA_DEL, key, 1, NULL, 0, 7, 0),
            net_submit_full(net, id, REPLICA_PUT, key, 1, big, KV_MAX_VALUE_BYTES + 1, 0, 0),
        };
        for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
            const struct net_reply *nr = net_reply(net, reqs[i]);
            if (nr == NULL)
                fail_msg("invalid request %zu at node %llu not answered at once", i,
                         (unsigned long long)id);
            assert_status(nr, REPLICA_ERROR);
        }
        assert_int_equal(net_info(net, id).pending, 0);
    }
    /* The limits themselves are valid: the largest key, through a forward. */
    assert_status(
        net_wait(net, net_submit_full(net, f, REPLICA_PUT, key, KV_MAX_KEY_BYTES, v, 1, 0, 0), 100),
        REPLICA_OK);
    assert_value(
        net_wait(net,
                 net_submit_full(net, leader, REPLICA_GET, key, KV_MAX_KEY_BYTES, NULL, 0, 0, 0),
                 100),
        "v");
    assert_int_equal(net_info(net, leader).keys, 1);
    free(big);
    free(key);
    net_assert_all_answered(net);
    net_free(net);
}

#define GROUP_PUTS 100

/* ---- program order per connection (issue #13) --------------------------------------------- */

/* A follower gets SET then GET of one connection in one go (a pipeline): the GET waits for
 * the SET's index (the leader's FORWARD_RESP), then for its own read index, and sees the SET.
 * (scenarios/pipeline_followers.scn shows the stale read this prevents, with the reordering
 * this FIFO network cannot produce.) */
static void test_pipelined_read_after_write_on_a_follower_sees_the_write(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    uint64_t put = net_submit(net, f, REPLICA_PUT, "x", "v1", 7, 1);
    uint64_t get = net_submit(net, f, REPLICA_GET, "x", NULL, 7, 0);
    /* The GET is held: only the FORWARD left the follower, no ReadIndex yet. */
    assert_int_equal(net->q_len - net->q_head, 1);
    const struct net_reply *g = net_wait(net, get, 100);
    assert_status(net_wait(net, put, 100), REPLICA_OK);
    assert_value(g, "v1");
    net_assert_all_answered(net);
    net_free(net);
}

/* GET then SET of one connection: the SET waits for the GET to be served, so the GET does not
 * see it; a SET of another connection is proposed at once. */
static void test_write_after_a_pending_read_of_its_connection_waits_for_it(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    assert_status(net_do(net, leader, REPLICA_PUT, "x", "old", 0, 0), REPLICA_OK);
    uint64_t last0 = net_info(net, leader).raft.last_index;
    uint64_t get = net_submit(net, leader, REPLICA_GET, "x", NULL, 7, 0);
    uint64_t put = net_submit(net, leader, REPLICA_PUT, "x", "new", 7, 1);
    uint64_t other = net_submit(net, leader, REPLICA_PUT, "y", "z", 8, 1);
    /* Nothing delivered yet: the read waits for its heartbeat round, connection 7's write is
     * held behind it, connection 8's write is in the log. */
    assert_int_equal(net_info(net, leader).raft.last_index, last0 + 1);
    assert_null(net_reply(net, get));
    assert_value(net_wait(net, get, 100), "old");
    assert_status(net_wait(net, put, 100), REPLICA_OK);
    assert_status(net_wait(net, other, 100), REPLICA_OK);
    assert_true(net->replies[put].tick >= net->replies[get].tick);
    assert_value(net_do(net, leader, REPLICA_GET, "x", NULL, 7, 0), "new");
    net_assert_all_answered(net);
    net_free(net);
}

/* Writes of one connection pipelined together are proposed together: one batch, one sync on
 * the leader, and a read after them sees the last. */
static void test_consecutive_writes_of_a_connection_are_proposed_together(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t syncs0 = log_memstore_syncs(net->nodes[leader].log);
    uint64_t last0 = net_info(net, leader).raft.last_index;
    struct replica_request reqs[5];
    static const char *const vals[4] = {"1", "2", "3", "4"};
    for (int i = 0; i < 5; i++) {
        uint64_t req_id = net->next_req++;
        net->submitted_to[req_id] = leader;
        reqs[i] = (struct replica_request){.req_id = req_id,
                                           .op = i < 4 ? REPLICA_PUT : REPLICA_GET,
                                           .client_id = 9,
                                           .seq = i < 4 ? (uint64_t)i + 1 : 0,
                                           .key = (const uint8_t *)"x",
                                           .key_len = 1,
                                           .val = i < 4 ? (const uint8_t *)vals[i] : NULL,
                                           .val_len = i < 4 ? 1 : 0};
    }
    replica_submit_batch(net->nodes[leader].r, reqs, 5);
    net_collect(net, leader);
    assert_int_equal(net_info(net, leader).raft.last_index, last0 + 4);
    assert_int_equal(log_memstore_syncs(net->nodes[leader].log) - syncs0, 1);
    for (int i = 0; i < 4; i++)
        assert_status(net_wait(net, reqs[i].req_id, 100), REPLICA_OK);
    assert_value(net_wait(net, reqs[4].req_id, 100), "4");
    net_assert_all_answered(net);
    net_free(net);
}

/* A request held behind an earlier one of its connection that never completes ends with
 * TRYAGAIN at its timeout: it was never proposed. */
static void test_a_request_held_behind_its_connection_times_out_with_tryagain(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    net->cut[f][leader] = true; /* the forward is lost: the write stays unplaced */
    uint64_t put = net_submit(net, f, REPLICA_PUT, "x", "v", 7, 1);
    uint64_t get = net_submit(net, f, REPLICA_GET, "x", NULL, 7, 0);
    uint64_t free_get = net_submit(net, f, REPLICA_GET, "x", NULL, 8, 0);
    const struct net_reply *g = net_wait(net, get, 200);
    assert_status(g, REPLICA_TRYAGAIN);
    assert_non_null(strstr(g->reason, "earlier request of the same connection"));
    assert_status(net_reply(net, put), REPLICA_TIMEOUT);
    /* Connection 8 did not wait for connection 7 (its read index was lost too, on the same
     * cut link: it ends with TRYAGAIN on its own timeout, no later). */
    assert_non_null(net_reply(net, free_get));
    net_assert_all_answered(net);
    assert_int_equal(net_info(net, f).pending, 0);
    net_free(net);
}

static void tweak_few_slots(struct replica_config *c)
{
    c->max_pending = 6; /* a connection index of 16 entries: probe chains and deletions */
}

/* Many connections come and go through a small table: every request is answered, every read
 * sees its connection's writes, and the table empties. */
static void test_connections_come_and_go_through_a_small_table(void **state)
{
    (void)state;
    struct net *net = net_new(3, tweak_few_slots);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    uint64_t seq[40] = {0};
    for (uint32_t round = 0; round < 200; round++) {
        uint64_t client = 1 + (round * 7) % 40;
        char val[16];
        snprintf(val, sizeof(val), "%u", round);
        uint64_t put = net_submit(net, f, REPLICA_PUT, "k", val, client, ++seq[client - 1]);
        uint64_t get = net_submit(net, f, REPLICA_GET, "k", NULL, client, 0);
        uint64_t other = net_submit(net, f, REPLICA_GET, "k", NULL, 1 + (round * 11) % 40, 0);
        if (round % 3 == 0)
            net_tick_all(net);
        else
            net_deliver_all(net);
        const struct net_reply *g = net_wait(net, get, 100);
        if (net_reply(net, put)->status == REPLICA_OK)
            assert_value(g, val); /* nobody else wrote since */
        net_wait(net, other, 100);
    }
    net_run(net, 60);
    net_assert_all_answered(net);
    assert_int_equal(net_info(net, f).pending, 0);
    net_free(net);
}

/* ---- multi-key reads: one snapshot (issue #13.2) ------------------------------------------ */

static uint64_t net_submit_mget(struct net *net, uint64_t id, uint32_t n, const char *const *keys,
                                uint64_t client_id)
{
    const uint8_t *kp[8];
    uint32_t kl[8];
    assert_true(n <= 8);
    for (uint32_t i = 0; i < n; i++) {
        kp[i] = (const uint8_t *)keys[i];
        kl[i] = (uint32_t)strlen(keys[i]);
    }
    static uint8_t blob[256];
    size_t len = 0;
    assert_int_equal(replica_keys_encode(kp, kl, n, blob, sizeof(blob), &len), RK_OK);
    assert_int_equal(len, replica_keys_size(kp, kl, n));
    struct replica_request req = {
        .op = REPLICA_MGET, .client_id = client_id, .val = blob, .val_len = (uint32_t)len};
    return net_submit_req(net, id, req);
}

/* Asserts that an MGET reply holds want[i] (NULL: nil) for each of n keys. */
static void assert_mget(const struct net_reply *nr, uint32_t n, const char *const *want)
{
    assert_status(nr, REPLICA_OK);
    assert_int_equal(nr->num, n);
    struct replica_mget_iter it;
    replica_mget_begin(&it, nr->val, nr->val_len);
    for (uint32_t i = 0; i < n; i++) {
        bool found = false;
        const uint8_t *val = NULL;
        uint32_t len = 0;
        assert_true(replica_mget_next(&it, &found, &val, &len));
        assert_int_equal(found, want[i] != NULL);
        if (want[i] != NULL) {
            assert_int_equal(len, strlen(want[i]));
            assert_memory_equal(val, want[i], len);
        }
    }
    bool found;
    const uint8_t *val;
    uint32_t len;
    assert_false(replica_mget_next(&it, &found, &val, &len));
}

/* An MGET on a follower costs one ReadIndex, not one per key, and reads every key at one
 * index; pipelined after an MSET of its connection, it sees all of it. */
static void test_mget_is_one_read_barrier_and_one_snapshot(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    static const char *const keys[3] = {"a", "b", "c"};
    static const char *const before[3] = {NULL, NULL, NULL};
    assert_mget(net_wait(net, net_submit_mget(net, f, 3, keys, 0), 100), 3, before);
    size_t queued = net->q_len - net->q_head;
    uint64_t get = net_submit_mget(net, f, 3, keys, 0);
    assert_int_equal(net->q_len - net->q_head, queued + 1); /* one ReadIndex for three keys */
    assert_mget(net_wait(net, get, 100), 3, before);

    struct kv_pair pairs[2] = {{(const uint8_t *)"a", 1, (const uint8_t *)"1", 1},
                               {(const uint8_t *)"b", 1, (const uint8_t *)"2", 1}};
    uint8_t blob[64];
    size_t len = 0;
    assert_int_equal(kv_pairs_encode(pairs, 2, blob, sizeof(blob), &len), RK_OK);
    struct replica_request mset = {
        .op = REPLICA_MSET, .client_id = 5, .seq = 1, .val = blob, .val_len = (uint32_t)len};
    uint64_t w = net_submit_req(net, f, mset);
    uint64_t r = net_submit_mget(net, f, 3, keys, 5);
    static const char *const after[3] = {"1", "2", NULL};
    assert_mget(net_wait(net, r, 100), 3, after);
    assert_status(net_wait(net, w, 100), REPLICA_OK);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_mget_with_a_bad_keys_blob_gets_error(void **state)
{
    (void)state;
    struct net *net = net_new(1, NULL);
    uint64_t leader = net_elect(net);
    static const uint8_t zero[4] = {0, 0, 0, 0};      /* no keys */
    static const uint8_t cut[6] = {1, 0, 0, 0, 9, 0}; /* a key length cut short */
    static const uint8_t extra[10] = {1, 0, 0, 0, 1, 0, 0, 0, 'k', 'x'}; /* a byte after */
    const uint8_t *blobs[3] = {zero, cut, extra};
    const uint32_t lens[3] = {sizeof(zero), sizeof(cut), sizeof(extra)};
    for (int i = 0; i < 3; i++) {
        struct replica_request req = {.op = REPLICA_MGET, .val = blobs[i], .val_len = lens[i]};
        const struct net_reply *nr = net_wait(net, net_submit_req(net, leader, req), 1);
        assert_status(nr, REPLICA_ERROR);
        assert_non_null(strstr(nr->reason, "keys blob"));
    }
    uint8_t buf[16];
    size_t len = 0;
    const uint8_t *k[1] = {(const uint8_t *)"key"};
    uint32_t kl[1] = {3};
    assert_int_equal(replica_keys_encode(k, kl, 0, buf, sizeof(buf), &len), RK_EINVAL);
    assert_int_equal(replica_keys_encode(k, kl, 1, buf, 8, &len), RK_ETOOBIG);
    net_free(net);
}

/* What on_read saw: the keys, as the callback ran. */
static struct {
    uint64_t calls;
    uint64_t req_id;
    uint64_t keys;
    bool saw_new;
} read_seen;

static bool count_key(void *ctx, const uint8_t *key, uint32_t key_len)
{
    (void)ctx;
    read_seen.keys++;
    if (key_len == 3 && memcmp(key, "new", 3) == 0)
        read_seen.saw_new = true;
    return true;
}

static void record_read(void *ctx, struct replica *r, uint64_t req_id)
{
    (void)ctx;
    read_seen.calls++;
    read_seen.req_id = req_id;
    read_seen.keys = 0;
    read_seen.saw_new = false;
    assert_int_equal(replica_scan_keys(r, count_key, NULL), RK_OK);
    const uint8_t *val = NULL;
    uint32_t len = 0;
    assert_int_equal(replica_read_get(r, (const uint8_t *)"new", 3, &val, &len),
                     read_seen.saw_new ? RK_OK : RK_ENOENT);
}

static void tweak_on_read(struct replica_config *c)
{
    c->on_read = record_read;
}

/* SET newkey; DBSIZE (or KEYS) pipelined on a follower: the barrier's callback runs at a
 * state that holds the new key, and the reply counts it. */
static void test_read_barrier_calls_back_at_one_state_after_the_connections_writes(void **state)
{
    (void)state;
    memset(&read_seen, 0, sizeof(read_seen));
    struct net *net = net_new(3, tweak_on_read);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    assert_status(net_do(net, leader, REPLICA_PUT, "old", "1", 0, 0), REPLICA_OK);
    uint64_t put = net_submit(net, f, REPLICA_PUT, "new", "2", 3, 1);
    struct replica_request bar = {.op = REPLICA_READ, .client_id = 3};
    uint64_t rd = net_submit_req(net, f, bar);
    const struct net_reply *nr = net_wait(net, rd, 100);
    assert_status(nr, REPLICA_OK);
    assert_int_equal(read_seen.calls, 1);
    assert_int_equal(read_seen.req_id, rd);
    assert_true(read_seen.saw_new);
    assert_int_equal(read_seen.keys, 2);
    assert_int_equal(nr->num, 2); /* DBSIZE */
    assert_status(net_wait(net, put, 100), REPLICA_OK);
    struct replica_request bad = {.op = REPLICA_READ, .key = (const uint8_t *)"k", .key_len = 1};
    assert_status(net_wait(net, net_submit_req(net, f, bad), 1), REPLICA_ERROR);
    net_assert_all_answered(net);
    net_free(net);
}

/* ---- sessions: at most once inside the cluster (issue #13.3) ----------------------------- */

/* Copies the last frame queued (a FORWARD just sent): the network delivers it twice. */
static void net_duplicate_last(struct net *net)
{
    assert_true(net->q_len > net->q_head);
    struct net_frame f = net->q[net->q_len - 1];
    uint8_t *copy = malloc(f.len);
    assert_non_null(copy);
    memcpy(copy, f.bytes, f.len);
    if (net->q_len == net->q_cap) {
        net->q_cap = 2 * net->q_cap;
        net->q = realloc(net->q, net->q_cap * sizeof(*net->q));
        assert_non_null(net->q);
    }
    f.bytes = copy;
    net->q[net->q_len++] = f;
}

/* An INCRBY forwarded twice (a duplicated FORWARD) applies once with a session, twice
 * without one: why every connection of the node must be a session. */
static void test_a_duplicated_forward_applies_once_with_a_session(void **state)
{
    (void)state;
    for (uint64_t client = 0; client <= 1; client++) {
        struct net *net = net_new(3, NULL);
        uint64_t leader = net_elect(net);
        uint64_t f = net_other(net, leader, 0);
        uint64_t cid = client ? replica_client_id(f, 7, 1) : 0;
        struct replica_request inc = {.op = REPLICA_INCRBY,
                                      .client_id = cid,
                                      .seq = client,
                                      .key = (const uint8_t *)"n",
                                      .key_len = 1,
                                      .delta = 1};
        uint64_t req = net_submit_req(net, f, inc);
        net_duplicate_last(net);
        const struct net_reply *nr = net_wait(net, req, 100);
        assert_status(nr, REPLICA_OK);
        assert_int_equal(nr->num, 1);
        net_run(net, 5);
        assert_value(net_do(net, leader, REPLICA_GET, "n", NULL, 0, 0), client ? "1" : "2");
        net_assert_all_answered(net);
        net_free(net);
    }
}

static void test_client_ids_are_unique_per_node_incarnation_and_connection(void **state)
{
    (void)state;
    uint64_t a = replica_client_id(1, 0, 0), b = replica_client_id(1, 0, 1);
    uint64_t c = replica_client_id(1, 1, 0), d = replica_client_id(2, 0, 0);
    assert_true(a != 0 && a != b && a != c && a != d && b != c && b != d && c != d);
    assert_true(replica_client_id(255, (1u << 24) - 1, UINT32_MAX) !=
                replica_client_id(254, 0, UINT32_MAX));
}

static void test_puts_submitted_together_share_log_syncs(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t syncs0[NET_MAX_NODES + 1];
    for (uint64_t id = 1; id <= 3; id++)
        syncs0[id] = log_memstore_syncs(net->nodes[id].log);

    struct replica_request reqs[GROUP_PUTS];
    char keys[GROUP_PUTS][8];
    for (int i = 0; i < GROUP_PUTS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "g%d", i);
        assert_true(net->next_req < NET_MAX_REQS);
        uint64_t req_id = net->next_req++;
        net->submitted_to[req_id] = leader;
        reqs[i] = (struct replica_request){.req_id = req_id,
                                           .op = REPLICA_PUT,
                                           .key = (const uint8_t *)keys[i],
                                           .key_len = (uint32_t)strlen(keys[i]),
                                           .val = (const uint8_t *)"v",
                                           .val_len = 1};
    }
    replica_submit_batch(net->nodes[leader].r, reqs, GROUP_PUTS);
    net_collect(net, leader);
    assert_int_equal(net_info(net, leader).pending, GROUP_PUTS);
    for (int i = 0; i < GROUP_PUTS; i++)
        assert_status(net_wait(net, reqs[i].req_id, 10), REPLICA_OK);
    net_run(net, 3); /* followers learn the commit index */
    for (uint64_t id = 1; id <= 3; id++) {
        uint64_t syncs = log_memstore_syncs(net->nodes[id].log) - syncs0[id];
        print_message("node %llu%s: %llu syncs for %d writes\n", (unsigned long long)id,
                      id == leader ? " (leader)" : "", (unsigned long long)syncs, GROUP_PUTS);
        assert_true(syncs > 0);
        assert_true(syncs <= GROUP_PUTS / 10);
        assert_int_equal(net_info(net, id).keys, GROUP_PUTS);
    }
    /* The leader wrote one batch; learning that it committed costs no sync (commit is a
     * hint in the hard state). */
    assert_int_equal(log_memstore_syncs(net->nodes[leader].log) - syncs0[leader], 1);
    net_assert_all_answered(net);
    net_free(net);
}

/* More writes than the replica remembers results for (REPLICA_RECENT, 4096) commit at once. */
#define JUMP_WRITES 4500

static void test_writes_committed_in_one_large_jump_all_get_their_result(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    /* The followers store every entry, but their acknowledgments are lost: the leader's commit
     * index stays put until the cut heals, then jumps over all of them. */
    for (uint64_t id = 1; id <= 3; id++)
        net->cut[id][leader] = id != leader;
    static struct replica_request reqs[JUMP_WRITES];
    static char keys[JUMP_WRITES][8];
    for (int i = 0; i < JUMP_WRITES; i++) {
        snprintf(keys[i], sizeof(keys[i]), "j%d", i);
        uint64_t req_id = net->next_req++;
        assert_true(req_id < NET_MAX_REQS);
        net->submitted_to[req_id] = leader;
        reqs[i] = (struct replica_request){.req_id = req_id,
                                           .op = REPLICA_DEL,
                                           .key = (const uint8_t *)keys[i],
                                           .key_len = (uint32_t)strlen(keys[i])};
    }
    uint64_t commit0 = net_info(net, leader).raft.commit;
    replica_submit_batch(net->nodes[leader].r, reqs, JUMP_WRITES);
    net_collect(net, leader);
    net_deliver_all(net);
    assert_int_equal(net_info(net, leader).raft.commit, commit0);
    memset(net->cut, 0, sizeof(net->cut));
    net_run(net, 5);
    assert_true(net_info(net, leader).raft.commit >= commit0 + JUMP_WRITES);
    for (int i = 0; i < JUMP_WRITES; i++) {
        const struct net_reply *nr = net_reply(net, reqs[i].req_id);
        assert_non_null(nr);
        assert_status(nr, REPLICA_OK);
        assert_int_equal(nr->num, 0);
    }
    net_assert_all_answered(net);
    net_free(net);
}

static void small_pending_config(struct replica_config *c)
{
    c->max_pending = 4;
}

static void test_requests_beyond_max_pending_get_tryagain(void **state)
{
    (void)state;
    struct net *net = net_new(3, small_pending_config);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    uint64_t reqs[4];
    char key[16];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof(key), "p%d", i);
        reqs[i] = net_submit(net, i % 2 == 0 ? leader : f, REPLICA_PUT, key, "v", 0, 0);
        assert_null(net_reply(net, reqs[i]));
    }
    /* f holds two; the leader holds two of its own and proposed f's two: its bound is on
     * client requests, not forwarded ones. Fill the leader up with reads. */
    uint64_t r1 = net_submit(net, leader, REPLICA_GET, "p0", NULL, 0, 0);
    uint64_t r2 = net_submit(net, leader, REPLICA_GET, "p0", NULL, 0, 0);
    assert_int_equal(net_info(net, leader).pending, 4);
    uint64_t over = net_submit(net, leader, REPLICA_PUT, "over", "v", 0, 0);
    const struct net_reply *nr = net_reply(net, over);
    assert_non_null(nr);
    assert_status(nr, REPLICA_TRYAGAIN);
    assert_string_equal(nr->reason, "too many requests in flight");
    assert_int_equal(nr->leader, leader);

    for (int i = 0; i < 4; i++)
        assert_status(net_wait(net, reqs[i], 100), REPLICA_OK);
    assert_value(net_wait(net, r1, 100), "v");
    assert_value(net_wait(net, r2, 100), "v");
    /* Slots come back. */
    assert_int_equal(net_info(net, leader).pending, 0);
    assert_status(net_do(net, leader, REPLICA_PUT, "over", "v", 0, 0), REPLICA_OK);
    assert_status(net_reply(net, over), REPLICA_TRYAGAIN); /* and the refusal stood alone */
    net_assert_all_answered(net);
    net_free(net);
}

/* ---- issue 6 commands -------------------------------------------------------------------- */

static const struct net_reply *net_put_if(struct net *net, uint64_t id, uint8_t cond,
                                          const char *key, const char *val)
{
    struct replica_request req = {.op = REPLICA_PUT_IF,
                                  .key = (const uint8_t *)key,
                                  .key_len = (uint32_t)strlen(key),
                                  .val = (const uint8_t *)val,
                                  .val_len = (uint32_t)strlen(val),
                                  .cond = cond};
    return net_wait(net, net_submit_req(net, id, req), 100);
}

/* The condition is decided by the leader's apply and the decision travels back to the
 * follower the request came through. */
static void test_put_if_is_decided_at_apply_and_answered_through_a_follower(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t follower = net_other(net, leader, 0);
    const struct net_reply *r = net_put_if(net, follower, KV_COND_XX, "k", "v0");
    assert_status(r, REPLICA_OK);
    assert_int_equal(r->num, 0);
    r = net_put_if(net, follower, KV_COND_NX, "k", "v1");
    assert_status(r, REPLICA_OK);
    assert_int_equal(r->num, 1);
    r = net_put_if(net, leader, KV_COND_NX, "k", "v2");
    assert_status(r, REPLICA_OK);
    assert_int_equal(r->num, 0);
    r = net_put_if(net, follower, KV_COND_XX, "k", "v3");
    assert_status(r, REPLICA_OK);
    assert_int_equal(r->num, 1);
    net_run(net, 3);
    for (uint64_t id = 1; id <= 3; id++)
        assert_true(net_store_get(net, id, "k", "v3"));
    assert_status(net_put_if(net, leader, 0, "k", "v"), REPLICA_ERROR);
    assert_status(net_put_if(net, leader, 3, "k", "v"), REPLICA_ERROR);
    net_assert_all_answered(net);
    net_free(net);
}

static const struct net_reply *net_incrby(struct net *net, uint64_t id, const char *key,
                                          int64_t delta)
{
    struct replica_request req = {.op = REPLICA_INCRBY,
                                  .key = (const uint8_t *)key,
                                  .key_len = (uint32_t)strlen(key),
                                  .delta = delta};
    return net_wait(net, net_submit_req(net, id, req), 100);
}

/* The new value, or the state machine's error as a Redis error text, reaches the follower. */
static void test_incrby_answers_the_new_value_or_a_redis_error(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t follower = net_other(net, leader, 0);
    const struct net_reply *r = net_incrby(net, follower, "n", 1);
    assert_status(r, REPLICA_OK);
    assert_int_equal(r->num, 1);
    r = net_incrby(net, leader, "n", 10);
    assert_status(r, REPLICA_OK);
    assert_int_equal(r->num, 11);
    assert_status(net_do(net, leader, REPLICA_PUT, "s", "abc", 0, 0), REPLICA_OK);
    r = net_incrby(net, follower, "s", 1);
    assert_status(r, REPLICA_ERROR);
    assert_string_equal(r->reason, "value is not an integer or out of range");
    r = net_incrby(net, follower, "n", INT64_MAX);
    assert_status(r, REPLICA_ERROR);
    assert_string_equal(r->reason, "increment or decrement would overflow");
    net_run(net, 3);
    for (uint64_t id = 1; id <= 3; id++) {
        assert_true(net_store_get(net, id, "n", "11"));
        assert_true(net_store_get(net, id, "s", "abc"));
    }
    net_assert_all_answered(net);
    net_free(net);
}

/* ---- generic commands (REPLICA_CMD) --------------------------------------------------------- */

#define T0 1700000000000ull

static void net_set_time(struct net *net, uint64_t now_ms)
{
    for (uint64_t id = 1; id <= net->n; id++)
        if (net->nodes[id].r != NULL)
            replica_set_time_ms(net->nodes[id].r, now_ms);
}

/* A kv result as text: "+OK", ":5", "$v", "_", "-ERR ...", "*2 ...", "N" (test_kv_cmd.c). */
static const char *res_text(const uint8_t *res, uint32_t len)
{
    static char out[512];
    assert_int_equal(kv_res_check(res, len, NULL), RK_OK);
    struct kv_res_iter it;
    struct kv_res_item item;
    kv_res_begin(&it, res, len);
    size_t pos = 0;
    out[0] = '\0';
    while (kv_res_next(&it, &item)) {
        const char *sep = pos == 0 ? "" : " ";
        int n;
        if (item.type == KV_RES_INT || item.type == KV_RES_ARRAY)
            n = snprintf(out + pos, sizeof(out) - pos, "%s%c%lld", sep, item.type,
                         (long long)item.num);
        else if (item.type == KV_RES_NIL || item.type == KV_RES_NIL_ARRAY)
            n = snprintf(out + pos, sizeof(out) - pos, "%s%s", sep,
                         item.type == KV_RES_NIL ? "_" : "N");
        else
            n = snprintf(out + pos, sizeof(out) - pos, "%s%c%.*s", sep, item.type, (int)item.len,
                         (const char *)item.p);
        assert_true(n > 0 && (size_t)n < sizeof(out) - pos);
        pos += (size_t)n;
    }
    return out;
}

/* Submits an encoded kv command to node id and waits for its result, as text. */
static const char *net_cmd2(struct net *net, uint64_t id, const struct kv_cmd2 *c,
                            uint64_t client_id, uint64_t seq)
{
    static uint8_t buf[1024];
    size_t len = 0;
    assert_int_equal(kv_cmd2_encode(c, buf, sizeof(buf), &len), RK_OK);
    const struct net_reply *r = net_wait(
        net, net_submit_full(net, id, REPLICA_CMD, NULL, 0, buf, (uint32_t)len, client_id, seq),
        100);
    assert_status(r, REPLICA_OK);
    return res_text(r->val, r->val_len);
}

/* One op of code over the NULL-terminated args, db 0, no session. */
static const char *net_cmd(struct net *net, uint64_t id, uint8_t code, uint16_t flags, int64_t num,
                           ...)
{
    struct kv_arg args[8];
    uint32_t argc = 0;
    va_list ap;
    va_start(ap, num);
    for (const char *a = va_arg(ap, const char *); a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < 8);
        args[argc++] = (struct kv_arg){.p = (const uint8_t *)a, .len = (uint32_t)strlen(a)};
    }
    va_end(ap);
    struct kv_op2 op = {.code = code, .flags = flags, .num = num, .argc = argc, .argv = args};
    struct kv_cmd2 c = {.n_ops = 1, .ops = &op};
    return net_cmd2(net, id, &c, 0, 0);
}

static void test_cmd_writes_and_reads_answer_kv_results_on_every_node(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t follower = net_other(net, leader, 0);
    net_set_time(net, T0);
    assert_string_equal(net_cmd(net, follower, KV_C_SET, 0, 0, "k", "v", NULL), "+OK");
    assert_string_equal(net_cmd(net, follower, KV_C_GET, 0, 0, "k", NULL), "$v");
    assert_string_equal(net_cmd(net, leader, KV_C_GET, 0, 0, "nope", NULL), "_");
    assert_string_equal(net_cmd(net, follower, KV_C_INCRBY, 0, 1, "k", NULL),
                        "-ERR value is not an integer or out of range");
    assert_string_equal(net_cmd(net, leader, KV_C_SET, KV_F_GET, 0, "k", "w", NULL), "$v");
    assert_string_equal(net_cmd(net, follower, KV_C_MGET, 0, 0, "k", "nope", NULL), "*2 $w _");
    /* Version-1 ops see the same data (db 0). */
    assert_value(net_do(net, follower, REPLICA_GET, "k", NULL, 0, 0), "w");
    net_run(net, 3);
    for (uint64_t id = 1; id <= 3; id++)
        assert_true(net_store_get(net, id, "k", "w"));
    /* A read does not go through the log: no entry for it. */
    struct replica_info before = net_info(net, leader);
    net_cmd(net, follower, KV_C_EXISTS, 0, 0, "k", NULL);
    assert_int_equal(net_info(net, leader).raft.last_index, before.raft.last_index);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_cmd_entries_carry_the_leaders_time_not_the_followers(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t follower = net_other(net, leader, 0);
    net_set_time(net, T0);
    replica_set_time_ms(net->nodes[leader].r, T0 + 1000); /* the leader's clock is ahead */
    assert_string_equal(net_cmd(net, follower, KV_C_SET, KV_F_EXP, 10, "k", "v", NULL), "+OK");
    net_run(net, 3);
    for (uint64_t id = 1; id <= 3; id++)
        assert_int_equal(kv_clock_ms(replica_kv(net->nodes[id].r)), T0 + 1000);
    /* The deadline is the leader's stamp + 10 s, read with each node's own clock. */
    assert_string_equal(net_cmd(net, leader, KV_C_TTL, KV_F_MS | KV_F_ABS, 0, "k", NULL),
                        ":1700000011000");
    assert_string_equal(net_cmd(net, follower, KV_C_TTL, KV_F_MS, 0, "k", NULL), ":11000");
    /* Stamps never go back on the leader, even if its clock does. */
    replica_set_time_ms(net->nodes[leader].r, T0);
    assert_string_equal(net_cmd(net, leader, KV_C_SET, 0, 0, "j", "v", NULL), "+OK");
    assert_int_equal(kv_clock_ms(replica_kv(net->nodes[leader].r)), T0 + 1000);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_cmd_exec_with_watch_through_a_follower(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t follower = net_other(net, leader, 0);
    net_set_time(net, T0);
    net_cmd(net, leader, KV_C_SET, 0, 0, "x", "1", NULL);
    struct kv_arg out[2] = {{(const uint8_t *)"out", 3}, {(const uint8_t *)"1", 1}};
    struct kv_arg inc[1] = {{(const uint8_t *)"x", 1}};
    struct kv_op2 ops[2] = {{.code = KV_C_SET, .argc = 2, .argv = out},
                            {.code = KV_C_INCRBY, .num = 5, .argc = 1, .argv = inc}};
    for (int round = 0; round < 2; round++) {
        /* WATCH on the follower: the watch point and x's version, read through ReadIndex. */
        const char *w = net_cmd(net, follower, KV_C_WATCH, 0, 0, "x", NULL);
        long long point = 0, version = 0;
        assert_int_equal(sscanf(w, "*2 :%lld :%lld", &point, &version), 2);
        assert_true(point > 0 && version > 0);
        if (round == 0)
            net_cmd(net, leader, KV_C_SET, 0, 0, "x", "1", NULL); /* another client's write */
        struct kv_watch watch = {
            .key = (const uint8_t *)"x", .key_len = 1, .version = (uint64_t)version};
        struct kv_cmd2 c = {.flags = KV_CMD2_MULTI,
                            .watch_index = (uint64_t)point,
                            .n_watch = 1,
                            .watches = &watch,
                            .n_ops = 2,
                            .ops = ops};
        assert_string_equal(net_cmd2(net, follower, &c, 0, 0), round == 0 ? "N" : "*2 +OK :6");
    }
    assert_string_equal(net_cmd(net, leader, KV_C_GET, 0, 0, "x", NULL), "$6");
    net_assert_all_answered(net);
    net_free(net);
}

static void test_expired_keys_are_removed_through_the_log_by_the_leader(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    net_set_time(net, T0);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        net_cmd(net, leader, KV_C_SET, KV_F_EXP | KV_F_MS, i < 70 ? 50 : 100000, key, "v", NULL);
    }
    net_run(net, 5);
    assert_int_equal(net_info(net, leader).keys, 100);
    /* Expired by every reader's clock at once, before any purge. */
    net_set_time(net, T0 + 50);
    assert_string_equal(net_cmd(net, net_other(net, leader, 0), KV_C_EXISTS, 0, 0, "k0", NULL),
                        ":0");
    net_run(net, 10); /* KV_PURGE_MAX keys per entry, one entry in flight */
    for (uint64_t id = 1; id <= 3; id++) {
        assert_int_equal(net_info(net, id).keys, 30);
        assert_int_equal(kv_expiring_count(replica_kv(net->nodes[id].r)), 30);
    }
    net_assert_all_answered(net);
    net_free(net);
}

static void test_cmd_retry_with_a_session_gets_the_first_result(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t follower = net_other(net, leader, 0);
    struct kv_arg a[1] = {{(const uint8_t *)"n", 1}};
    struct kv_op2 op = {.code = KV_C_INCRBY, .num = 1, .argc = 1, .argv = a};
    struct kv_cmd2 c = {.n_ops = 1, .ops = &op};
    assert_string_equal(net_cmd2(net, follower, &c, 9, 1), ":1");
    assert_string_equal(net_cmd2(net, leader, &c, 9, 1), ":1"); /* not applied again */
    assert_string_equal(net_cmd2(net, follower, &c, 9, 2), ":2");
    net_assert_all_answered(net);
    net_free(net);
}

static void test_cmd_that_does_not_decode_is_an_error_at_once(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    static const uint8_t junk[] = {2, 0, 1, 2, 3};
    const struct net_reply *r = net_wait(
        net, net_submit_full(net, leader, REPLICA_CMD, NULL, 0, junk, sizeof(junk), 0, 0), 1);
    assert_status(r, REPLICA_ERROR);
    assert_string_equal(r->reason, "malformed kv command");
    net_assert_all_answered(net);
    net_free(net);
}

/* Issue #15: what the storage open does about each kind of damage (replica_repair_plan). */
static void test_repair_plan_cuts_discards_and_promises(void **state)
{
    (void)state;
    struct replica_repair_plan p;
    /* Nothing damaged, the store within the log: nothing to do. */
    struct replica_repair_input in = {.log_rc = RK_OK,
                                      .log_snapshot_index = 0,
                                      .log_last_index = 50,
                                      .store_rc = RK_OK,
                                      .store_applied = 40};
    replica_repair_plan(&in, &p);
    assert_false(p.act);
    /* A bad record in a segment: cut there; the promise is what the commit records said. */
    struct replica_repair_input cut = in;
    cut.log_rc = RK_ECORRUPT;
    cut.log_damage = (struct log_damage){.kind = LOG_DAMAGE_RECORD,
                                         .file = "seg-00000000000000000001.log",
                                         .offset = 900,
                                         .intact_last_index = 44,
                                         .first_index = 45,
                                         .last_index = 48,
                                         .acked_index = 50};
    replica_repair_plan(&cut, &p);
    assert_true(p.act);
    assert_int_equal(p.log.mode, LOG_REPAIR_CUT);
    assert_string_equal(p.log.file, "seg-00000000000000000001.log");
    assert_int_equal(p.log.offset, 900);
    assert_int_equal(p.log.promise, 50);
    assert_false(p.discard_store); /* applied 40 <= 44: the store stays */
    /* ... but a store that applied past the cut goes, with the log. */
    cut.store_applied = 47;
    replica_repair_plan(&cut, &p);
    assert_int_equal(p.log.mode, LOG_REPAIR_RESET);
    assert_true(p.discard_store);
    assert_int_equal(p.log.promise, 50);
    /* A lost hard state: everything goes, the promise is unknown. */
    struct replica_repair_input hs = in;
    hs.log_rc = RK_ECORRUPT;
    hs.log_damage = (struct log_damage){.kind = LOG_DAMAGE_HARD_STATE, .file = "hardstate"};
    replica_repair_plan(&hs, &p);
    assert_int_equal(p.log.mode, LOG_REPAIR_RESET);
    assert_true(p.discard_store);
    assert_int_equal(p.log.promise, LOG_PROMISE_UNKNOWN);
    /* An unreadable log: the same, term and vote kept by the repair if they can be read. */
    struct replica_repair_input io = in;
    io.log_rc = RK_EIO;
    replica_repair_plan(&io, &p);
    assert_int_equal(p.log.mode, LOG_REPAIR_RESET);
    assert_int_equal(p.log.promise, LOG_PROMISE_UNKNOWN);
    /* A damaged store beside a log from index 1: rebuilt from the log, the log untouched. */
    struct replica_repair_input st = in;
    st.store_rc = RK_ECORRUPT;
    replica_repair_plan(&st, &p);
    assert_true(p.act);
    assert_int_equal(p.log.mode, 0);
    assert_true(p.discard_store);
    /* ... beside a compacted log: both go (a snapshot from the leader), promise its end. */
    st.log_snapshot_index = 20;
    replica_repair_plan(&st, &p);
    assert_int_equal(p.log.mode, LOG_REPAIR_RESET);
    assert_true(p.discard_store);
    assert_int_equal(p.log.promise, 50);
    /* A store ahead of an undamaged log (a truncated segment): both go, promise the applied. */
    struct replica_repair_input ahead = in;
    ahead.store_applied = 60;
    replica_repair_plan(&ahead, &p);
    assert_int_equal(p.log.mode, LOG_REPAIR_RESET);
    assert_int_equal(p.log.promise, 60);
    /* ... unless an installed snapshot explains it (replica_create finishes it). */
    ahead.store_snap_index = 60;
    replica_repair_plan(&ahead, &p);
    assert_false(p.act);
    /* A store behind the log's snapshot point: both go. */
    struct replica_repair_input behind = in;
    behind.log_snapshot_index = 45;
    replica_repair_plan(&behind, &p);
    assert_int_equal(p.log.mode, LOG_REPAIR_RESET);
    assert_int_equal(p.log.promise, 50);
}

/* Issue #17: a new node with an empty configuration is added as a learner, catches up by a
 * snapshot (the configuration inside it), is promoted automatically once caught up, and holds
 * its configuration in its store; then the leader removes itself and the rest go on. */
static void tweak_member(struct replica_config *c)
{
    c->compact_entries = 20;
    c->compact_keep = 5;
    c->auto_promote_ticks = 3;
    c->auto_promote_lag = 5;
    if (c->raft.id == 4) {
        c->raft.n_voters = 0;
        c->raft.allow_non_member = true;
    } else {
        c->raft.n_voters = 3;
    }
}

static void test_new_member_joins_by_snapshot_is_promoted_and_the_leader_can_leave(void **state)
{
    (void)state;
    struct net *net = net_new(4, tweak_member);
    net->nodes[4].isolated = true;
    uint64_t leader = net_elect(net);
    char key[16], val[16];
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        assert_status(net_do(net, leader, REPLICA_PUT, key, val, 0, 0), REPLICA_OK);
    }
    net_run(net, 20);
    assert_true(net_info(net, leader).raft.snapshot_index > 0);
    net->nodes[4].isolated = false;
    /* Not a member yet: it turns clients away at once rather than forward what it cannot
     * follow. */
    const struct net_reply *away = net_do(net, 4, REPLICA_PUT, "x", "y", 0, 0);
    assert_status(away, REPLICA_TRYAGAIN);
    assert_non_null(strstr(away->reason, "not a member"));
    uint64_t index = 0, known = 0;
    assert_int_equal(
        replica_member_change(net->nodes[leader].r, REPLICA_MEMBER_ADD_LEARNER, 4, &index, &known),
        RK_OK);
    net_collect(net, leader);
    struct raft_conf conf;
    for (uint32_t i = 0; i < 200; i++) {
        net_tick_all(net);
        replica_conf(net->nodes[4].r, &conf, NULL);
        if (raft_conf_is_voter(&conf, 4))
            break;
    }
    assert_true(raft_conf_is_voter(&conf, 4)); /* promoted without a command */
    assert_true(net_info(net, 4).snapshots_installed >= 1);
    assert_true(net_store_get(net, 4, "k0", "v0"));
    assert_true(net_store_get(net, 4, "k59", "v59"));
    /* The configuration is in its store, where the snapshot and the entry put it. */
    struct raft_conf stored;
    assert_int_equal(replica_store_conf(net->nodes[4].store, &stored), RK_OK);
    assert_true(raft_conf_is_voter(&stored, 4));
    assert_true(net_info(net, 4).raft.voter);
    /* The leader removes itself: it steps down once that commits, another takes over. */
    assert_int_equal(
        replica_member_change(net->nodes[leader].r, REPLICA_MEMBER_REMOVE, leader, &index, &known),
        RK_OK);
    net_collect(net, leader);
    uint64_t next = 0;
    for (uint32_t i = 0; i < 100 && (next == 0 || next == leader); i++) {
        net_tick_all(net);
        next = net_leader(net);
    }
    assert_true(next != 0 && next != leader);
    assert_false(net_info(net, leader).raft.voter);
    assert_status(net_do(net, next, REPLICA_PUT, "after", "x", 0, 0), REPLICA_OK);
    assert_true(net_store_get(net, 4, "after", "x") || next != 4);
    net_assert_all_answered(net);
    net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leader_elected_by_ticks_serves_put_get_and_del),
        cmocka_unit_test(test_write_on_follower_is_forwarded_and_applied_everywhere),
        cmocka_unit_test(test_read_on_a_lagging_follower_waits_for_the_read_index),
        cmocka_unit_test(test_requests_without_a_known_leader_get_tryagain),
        cmocka_unit_test(test_retried_write_with_the_same_session_is_applied_once),
        cmocka_unit_test(test_requests_at_an_isolated_leader_end_in_timeout_or_tryagain),
        cmocka_unit_test(test_write_on_a_deposed_leader_is_never_acknowledged),
        cmocka_unit_test(test_forward_to_a_deposed_leader_ends_when_the_leader_changes),
        cmocka_unit_test(test_restarted_replica_reapplies_its_log_and_serves_the_same_data),
        cmocka_unit_test(test_bad_frames_are_refused_with_a_message_and_the_replica_keeps_working),
        cmocka_unit_test(test_invalid_requests_get_error_at_once),
        cmocka_unit_test(test_puts_submitted_together_share_log_syncs),
        cmocka_unit_test(test_writes_committed_in_one_large_jump_all_get_their_result),
        cmocka_unit_test(test_new_member_joins_by_snapshot_is_promoted_and_the_leader_can_leave),
        cmocka_unit_test(test_requests_beyond_max_pending_get_tryagain),
        cmocka_unit_test(test_put_if_is_decided_at_apply_and_answered_through_a_follower),
        cmocka_unit_test(test_incrby_answers_the_new_value_or_a_redis_error),
        cmocka_unit_test(test_cmd_writes_and_reads_answer_kv_results_on_every_node),
        cmocka_unit_test(test_cmd_entries_carry_the_leaders_time_not_the_followers),
        cmocka_unit_test(test_cmd_exec_with_watch_through_a_follower),
        cmocka_unit_test(test_expired_keys_are_removed_through_the_log_by_the_leader),
        cmocka_unit_test(test_cmd_retry_with_a_session_gets_the_first_result),
        cmocka_unit_test(test_cmd_that_does_not_decode_is_an_error_at_once),
        cmocka_unit_test(test_pipelined_read_after_write_on_a_follower_sees_the_write),
        cmocka_unit_test(test_write_after_a_pending_read_of_its_connection_waits_for_it),
        cmocka_unit_test(test_consecutive_writes_of_a_connection_are_proposed_together),
        cmocka_unit_test(test_a_request_held_behind_its_connection_times_out_with_tryagain),
        cmocka_unit_test(test_connections_come_and_go_through_a_small_table),
        cmocka_unit_test(test_mget_is_one_read_barrier_and_one_snapshot),
        cmocka_unit_test(test_mget_with_a_bad_keys_blob_gets_error),
        cmocka_unit_test(test_read_barrier_calls_back_at_one_state_after_the_connections_writes),
        cmocka_unit_test(test_a_duplicated_forward_applies_once_with_a_session),
        cmocka_unit_test(test_client_ids_are_unique_per_node_incarnation_and_connection),
        cmocka_unit_test(test_repair_plan_cuts_discards_and_promises),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
