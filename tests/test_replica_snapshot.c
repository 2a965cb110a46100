/*
 * test_replica_snapshot.c — log compaction and snapshot transfer in core/replica (thesis
 * chapter 5): a follower that needs entries the leader compacted away gets the leader's state
 * machine in SNAP chunks, installs it and goes on from its index.
 *
 * The harness (struct net) is test_replica.c's, with two differences. A crash keeps both the
 * log_memstore and the kv_memstore: they are the node's disk, and after a compaction the state
 * machine cannot be rebuilt from the log alone. And the FIFO looks into SNAP frames as it
 * delivers them: it counts them, can drop them all, can corrupt one (fixing up the frame CRC,
 * so that only the snapshot's own checks can catch it), and it watches the leader's raft
 * progress after every call into it, to see transfers start and end.
 *
 * As in test_replica.c: every request is answered exactly once, by the node it was submitted
 * to; frames between honest replicas are always accepted; no replica stops; nothing is random.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bitcask/bitcask.h"
#include "codec/codec.h"
#include "common/crc32c.h"
#include "kv/kv.h"
#include "kv/memstore.h"
#include "log/log.h"
#include "replica/replica.h"
#include "simdisk.h"

/* ---- the harness ------------------------------------------------------------------------ */

#define NET_MAX_NODES 3
#define NET_MAX_REQS  4096
#define NET_MAX_VAL   64
#define NET_MAX_STEPS 1000000

#define COMPACT_ENTRIES 20
#define COMPACT_KEEP    2
#define CHUNK_BYTES     32
#define SNAP_TIMEOUT    30
#define N_WRITES        100

struct net_frame {
    uint64_t from;
    uint64_t to;
    uint8_t *bytes;
    size_t len;
};

struct net_reply {
    uint32_t count;
    uint8_t status;
    int64_t num;
    uint8_t val[NET_MAX_VAL];
    uint32_t val_len;
    char reason[128];
};

struct net_node {
    struct replica_config cfg;
    struct replica *r; /* NULL: down */
    struct log_store *log;
    struct kv_store *store;
    bool isolated;
    /* A Bitcask store on a simulated disk, with deferred writes (net_new_bitcask): its jobs are
     * run after every call into the node, as a store thread would (net_store_io). */
    struct simdisk *disk;
    struct bitcask *bc;
    bool died; /* its disk reached its crash point: the node is crashed (net_collect) */
};

/* What the FIFO saw of snapshot transfers. */
struct net_snap_stats {
    uint64_t delivered[NET_MAX_NODES + 1];    /* SNAP frames delivered, by receiver */
    uint64_t first_chunks[NET_MAX_NODES + 1]; /* ... of them at offset 0 */
    uint64_t last_chunks[NET_MAX_NODES + 1];  /* ... of them ending at total */
    uint64_t dropped;                         /* SNAP frames dropped by drop_snap */
    /* The watched leader's progress: transfers to each follower that started and ended (raft's
     * snapshotting going up and down), and the ticks of the first of each. */
    uint64_t starts[NET_MAX_NODES + 1];
    uint64_t ends[NET_MAX_NODES + 1];
    uint64_t first_start_tick[NET_MAX_NODES + 1];
    uint64_t first_end_tick[NET_MAX_NODES + 1];
    bool snapshotting[NET_MAX_NODES + 1];
};

struct net {
    uint32_t n;
    struct net_node nodes[NET_MAX_NODES + 1];
    struct net_frame *q;
    size_t q_head, q_len, q_cap;
    uint64_t ticks;
    uint64_t next_req;
    uint64_t submitted_to[NET_MAX_REQS];
    struct net_reply replies[NET_MAX_REQS];
    /* SNAP frames: drop them all while set; corrupt the next one at this offset once. */
    bool drop_snap;
    bool corrupt_armed;
    uint64_t corrupt_seq;
    uint64_t watch; /* the leader whose progress is watched; 0: none */
    struct net_snap_stats snap;
};

static bool net_cut(const struct net *net, uint64_t from, uint64_t to)
{
    return net->nodes[from].isolated || net->nodes[to].isolated;
}

static void net_record_reply(struct net *net, uint64_t id, const struct replica_reply *rep)
{
    assert_true(rep->req_id > 0 && rep->req_id < NET_MAX_REQS);
    assert_int_equal(net->submitted_to[rep->req_id], id);
    struct net_reply *nr = &net->replies[rep->req_id];
    nr->count++;
    if (nr->count != 1)
        fail_msg("req %llu answered %u times", (unsigned long long)rep->req_id, nr->count);
    nr->status = rep->status;
    nr->num = rep->num;
    assert_true(rep->val_len <= NET_MAX_VAL);
    if (rep->val_len > 0)
        memcpy(nr->val, rep->val, rep->val_len);
    nr->val_len = rep->val_len;
    if (rep->reason != NULL)
        snprintf(nr->reason, sizeof(nr->reason), "%s", rep->reason);
}

/* After every call into node id: it has not stopped, and if it is the watched leader, note
 * transfers that started or ended. */
static void net_observe(struct net *net, uint64_t id)
{
    struct rk_errmsg why = {{0}};
    if (replica_failed(net->nodes[id].r, &why))
        fail_msg("node %llu stopped: %s", (unsigned long long)id, why.text);
    if (id != net->watch)
        return;
    const struct raft *r = replica_raft(net->nodes[id].r);
    for (uint32_t i = 0; i < net->n; i++) {
        struct raft_progress_status ps;
        if (!raft_progress(r, i, &ps))
            continue;
        bool *was = &net->snap.snapshotting[ps.id];
        if (ps.snapshotting && !*was) {
            if (net->snap.starts[ps.id]++ == 0)
                net->snap.first_start_tick[ps.id] = net->ticks;
        } else if (!ps.snapshotting && *was) {
            if (net->snap.ends[ps.id]++ == 0)
                net->snap.first_end_tick[ps.id] = net->ticks;
        }
        *was = ps.snapshotting;
    }
}

static void net_crash(struct net *net, uint64_t id);

/* The store's deferred writes run, in order, and handed back (bitcask.h, DEFERRED WRITES), then
 * replica_store_progress. True if any was; a job that reached the disk's crash point kills the
 * node (died). */
static bool net_store_io(struct net *net, uint64_t id)
{
    struct net_node *nd = &net->nodes[id];
    bool any = false;
    for (struct bc_io_job *j; nd->bc != NULL && !nd->died && (j = bc_io_take(nd->bc)) != NULL;) {
        if (simdisk_crashed(nd->disk) || bc_io_run(j) != RK_OK || simdisk_crashed(nd->disk)) {
            bc_io_free(j);
            nd->died = true;
            break;
        }
        struct rk_errmsg err = {{0}};
        if (bc_io_done(nd->bc, j, &err) != RK_OK) {
            assert_true(simdisk_crashed(nd->disk)); /* a switch's open after the crash point */
            nd->died = true;
            break;
        }
        any = true;
    }
    if (any && !nd->died)
        replica_store_progress(nd->r);
    return any && !nd->died;
}

static void net_collect_once(struct net *net, uint64_t id);

static void net_collect(struct net *net, uint64_t id)
{
    for (int i = 0;; i++) {
        assert_true(i < 1000);
        net_collect_once(net, id);
        if (!net_store_io(net, id))
            break;
    }
    if (net->nodes[id].died)
        net_crash(net, id); /* the jobs taken are gone with the process */
}

static void net_collect_once(struct net *net, uint64_t id)
{
    net_observe(net, id);
    struct replica_output out;
    replica_output(net->nodes[id].r, &out);
    for (size_t i = 0; i < out.n_frames; i++) {
        const struct replica_frame *f = &out.frames[i];
        assert_true(f->to >= 1 && f->to <= net->n && f->to != id);
        if (net_cut(net, id, f->to))
            continue;
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
    nd->cfg.store = nd->store;
    nd->cfg.log = nd->log;
    struct rk_errmsg err = {{0}};
    int rc = replica_create(&nd->cfg, &nd->r, &err);
    if (rc != RK_OK)
        fail_msg("replica %llu: %s", (unsigned long long)id, err.text);
}

static void net_open_bitcask(struct net_node *nd)
{
    struct bc_config c = {.fs = simdisk_fs(nd->disk), .max_file_bytes = 2048, .merge_id_gap = 2};
    struct rk_errmsg err = {{0}};
    int rc = bc_open(&c, &nd->bc, &err);
    if (rc != RK_OK)
        fail_msg("bc_open: %s", err.text);
    bc_set_deferred(nd->bc, NULL);
    nd->store = bc_kv_store(nd->bc);
}

/* Crash: the replica goes; its log store and kv store (the disk) stay. A Bitcask store loses
 * what its disk did not make durable (simdisk_crash) and is opened again, as at a restart. */
static void net_crash(struct net *net, uint64_t id)
{
    struct net_node *nd = &net->nodes[id];
    replica_destroy(nd->r);
    nd->r = NULL;
    if (nd->bc != NULL) {
        nd->store->ops->destroy(nd->store); /* bc_close: its jobs not taken are dropped */
        nd->bc = NULL;
        simdisk_crash(nd->disk);
        struct simdisk_faults none = {0};
        simdisk_set_faults(nd->disk, &none);
        nd->died = false;
        net_open_bitcask(nd);
    }
}

static void snapshot_config(struct replica_config *c)
{
    c->max_pending = 256;
    c->compact_entries = COMPACT_ENTRIES;
    c->compact_keep = COMPACT_KEEP;
    c->snapshot_chunk_bytes = CHUNK_BYTES;
    c->snapshot_timeout_ticks = SNAP_TIMEOUT;
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
        snapshot_config(&nd->cfg);
        if (tweak != NULL)
            tweak(&nd->cfg);
        assert_int_equal(log_memstore_create(rk_alloc_libc(), &nd->log), RK_OK);
        assert_int_equal(kv_memstore_create(rk_alloc_libc(), &nd->store), RK_OK);
        net_start(net, id);
    }
    return net;
}

/* As net_new, every node's store a Bitcask on a simulated disk with deferred writes: a snapshot
 * is installed by the streamed path (a staged replacement, core/bitcask/stage.c). */
static struct net *net_new_bitcask(uint32_t n, void (*tweak)(struct replica_config *c))
{
    struct net *net = net_new(n, tweak);
    for (uint64_t id = 1; id <= n; id++) {
        struct net_node *nd = &net->nodes[id];
        replica_destroy(nd->r);
        nd->r = NULL;
        nd->store->ops->destroy(nd->store);
        nd->disk = simdisk_create(100 + id);
        assert_non_null(nd->disk);
        net_open_bitcask(nd);
        net_start(net, id);
    }
    return net;
}

static void net_free(struct net *net)
{
    for (uint64_t id = 1; id <= net->n; id++) {
        if (net->nodes[id].r != NULL)
            replica_destroy(net->nodes[id].r);
        net->nodes[id].log->ops->destroy(net->nodes[id].log);
        net->nodes[id].store->ops->destroy(net->nodes[id].store);
        if (net->nodes[id].disk != NULL)
            simdisk_destroy(net->nodes[id].disk);
    }
    for (size_t i = net->q_head; i < net->q_len; i++)
        free(net->q[i].bytes);
    free(net->q);
    free(net);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Flips a data byte of the SNAP frame b and recomputes the frame CRC: the codec accepts it. */
static void corrupt_snap_frame(uint8_t *b, size_t len, uint32_t data_len)
{
    assert_true(data_len > 0 && data_len < len);
    b[len - data_len] ^= 0x5a;
    put_le32(b + 4, rk_crc32c(0, b + CODEC_FRAME_HEADER_SIZE, len - CODEC_FRAME_HEADER_SIZE));
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_decode(b, len, rk_alloc_libc(), &f, &err), RK_OK);
    codec_frame_free(rk_alloc_libc(), &f);
}

/* Looks at a SNAP frame on its way: counts it, drops or corrupts it. Returns false to drop. */
static bool net_pass_snap(struct net *net, struct net_frame *fr)
{
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_decode(fr->bytes, fr->len, rk_alloc_libc(), &f, &err), RK_OK);
    struct codec_snap s = f.snap;
    codec_frame_free(rk_alloc_libc(), &f);
    if (net->drop_snap) {
        net->snap.dropped++;
        return false;
    }
    if (net->corrupt_armed && s.seq == net->corrupt_seq && s.len > 0) {
        net->corrupt_armed = false;
        corrupt_snap_frame(fr->bytes, fr->len, s.len);
    }
    net->snap.delivered[fr->to]++;
    net->snap.first_chunks[fr->to] += s.seq == 0;
    net->snap.last_chunks[fr->to] += s.last;
    return true;
}

static bool net_deliver_one(struct net *net)
{
    if (net->q_head == net->q_len)
        return false;
    struct net_frame f = net->q[net->q_head++];
    struct net_node *nd = &net->nodes[f.to];
    bool snap =
        f.len > CODEC_FRAME_HEADER_SIZE && f.bytes[CODEC_FRAME_HEADER_SIZE] == CODEC_TYPE_SNAP;
    if (nd->r != NULL && !net_cut(net, f.from, f.to) && (!snap || net_pass_snap(net, &f))) {
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

static uint64_t net_elect(struct net *net)
{
    for (uint32_t i = 0; i < 500; i++) {
        net_tick_all(net);
        uint64_t leader = 0;
        for (uint64_t id = 1; id <= net->n; id++) {
            if (net->nodes[id].r != NULL && net_info(net, id).raft.role == RAFT_LEADER)
                leader = id;
        }
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

static uint64_t net_other(const struct net *net, uint64_t not1, uint64_t not2)
{
    for (uint64_t id = 1; id <= net->n; id++) {
        if (id != not1 && id != not2)
            return id;
    }
    fail_msg("no other node");
    return 0;
}

static uint64_t net_submit(struct net *net, uint64_t id, uint8_t op, const char *key,
                           const char *val, uint64_t client_id, uint64_t seq)
{
    assert_true(net->next_req < NET_MAX_REQS);
    uint64_t req_id = net->next_req++;
    net->submitted_to[req_id] = id;
    struct replica_request req = {.req_id = req_id,
                                  .op = op,
                                  .client_id = client_id,
                                  .seq = seq,
                                  .key = (const uint8_t *)key,
                                  .key_len = (uint32_t)strlen(key),
                                  .val = (const uint8_t *)val,
                                  .val_len = val == NULL ? 0 : (uint32_t)strlen(val)};
    replica_submit(net->nodes[id].r, &req);
    net_collect(net, id);
    return req_id;
}

static const struct net_reply *net_wait(struct net *net, uint64_t req_id, uint32_t max_ticks)
{
    net_deliver_all(net);
    for (uint32_t i = 0; net->replies[req_id].count == 0 && i < max_ticks; i++)
        net_tick_all(net);
    if (net->replies[req_id].count == 0)
        fail_msg("req %llu not answered within %u ticks", (unsigned long long)req_id, max_ticks);
    return &net->replies[req_id];
}

static const struct net_reply *net_do(struct net *net, uint64_t id, uint8_t op, const char *key,
                                      const char *val, uint64_t client_id, uint64_t seq)
{
    return net_wait(net, net_submit(net, id, op, key, val, client_id, seq), 100);
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

static void net_assert_all_answered(const struct net *net)
{
    for (uint64_t req = 1; req < net->next_req; req++) {
        if (net->replies[req].count != 1)
            fail_msg("req %llu answered %u times", (unsigned long long)req,
                     net->replies[req].count);
    }
}

static void key_of(char *buf, size_t cap, uint32_t i)
{
    snprintf(buf, cap, "key-%03u", i);
}

static void val_of(char *buf, size_t cap, uint32_t i)
{
    snprintf(buf, cap, "value-%03u", i);
}

/* n writes key-i = value-i at the leader, each waited for; a tick every ten lets the
 * replicas compact their logs as they go. */
static void write_n(struct net *net, uint64_t leader, uint32_t n, uint64_t client_id)
{
    char key[32], val[32];
    for (uint32_t i = 0; i < n; i++) {
        key_of(key, sizeof(key), i);
        val_of(val, sizeof(val), i);
        assert_status(
            net_do(net, leader, REPLICA_PUT, key, val, client_id, client_id == 0 ? 0 : i + 1),
            REPLICA_OK);
        if (i % 10 == 9)
            net_tick_all(net);
    }
    net_tick_all(net);
}

/* Ticks until follower f has installed `want` snapshots in its current incarnation. */
static void run_until_installed(struct net *net, uint64_t f, uint64_t want, uint32_t max_ticks)
{
    for (uint32_t i = 0; net_info(net, f).snapshots_installed < want; i++) {
        if (i >= max_ticks)
            fail_msg("node %llu installed %llu snapshots in %u ticks, want %llu",
                     (unsigned long long)f,
                     (unsigned long long)net_info(net, f).snapshots_installed, max_ticks,
                     (unsigned long long)want);
        net_tick_all(net);
    }
}

/* The common start: a leader, follower f cut off while N_WRITES writes commit and every log is
 * compacted past what f holds. Returns the leader; *f_out is f. */
static uint64_t lagging_follower(struct net *net, uint64_t *f_out, uint64_t client_id)
{
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    net->nodes[f].isolated = true;
    write_n(net, leader, N_WRITES, client_id);
    net_run(net, 2);
    struct replica_info li = net_info(net, leader), fi = net_info(net, f);
    assert_true(li.raft.snapshot_index > fi.raft.last_index);
    assert_true(li.raft.last_index - li.raft.snapshot_index <= COMPACT_ENTRIES + 1);
    net->watch = leader;
    *f_out = f;
    return leader;
}

/* Every user key 0..n-1 has its value on node id, through a linearizable GET there. */
static void assert_serves_all(struct net *net, uint64_t id, uint32_t n)
{
    char key[32], val[32];
    for (uint32_t i = 0; i < n; i++) {
        key_of(key, sizeof(key), i);
        val_of(val, sizeof(val), i);
        assert_value(net_do(net, id, REPLICA_GET, key, NULL, 0, 0), val);
    }
}

struct store_cmp {
    struct kv_store *other;
    uint64_t records;
    bool same;
};

static bool cmp_record(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                       uint32_t val_len)
{
    struct store_cmp *c = ctx;
    const uint8_t *v = NULL;
    uint32_t len = 0;
    if (key_len > 0 && key[0] == KV_KEY_META)
        return true; /* the replica's own bookkeeping (an installed snapshot's point) */
    c->records++;
    if (c->other->ops->get(c->other, key, key_len, &v, &len) != RK_OK || len != val_len ||
        (len > 0 && memcmp(v, val, len) != 0))
        c->same = false;
    return true;
}

static bool count_meta(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                       uint32_t val_len)
{
    (void)val;
    (void)val_len;
    if (key_len > 0 && key[0] == KV_KEY_META)
        ++*(uint64_t *)ctx;
    return true;
}

/* The stores of a and b hold the same records: user keys and client sessions alike (the
 * replicas' meta records aside). Their applied indexes may differ: a snapshot taken at a no-op
 * moves the receiver's store further than the sender's, whose no-ops write nothing. */
static void assert_same_store(struct net *net, uint64_t a, uint64_t b)
{
    struct kv_store *sa = net->nodes[a].store, *sb = net->nodes[b].store;
    struct store_cmp c = {.other = sb, .same = true};
    assert_int_equal(sa->ops->scan(sa, cmp_record, &c), RK_OK);
    assert_true(c.same);
    uint64_t meta_b = 0;
    assert_int_equal(sb->ops->scan(sb, count_meta, &meta_b), RK_OK);
    assert_int_equal(c.records, sb->ops->count(sb) - meta_b);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_follower_cut_off_during_compaction_catches_up_by_a_multi_chunk_snapshot(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t f = 0;
    uint64_t leader = lagging_follower(net, &f, 0);
    net->nodes[f].isolated = false;
    run_until_installed(net, f, 1, 50);
    assert_true(net->snap.delivered[f] > 1);
    assert_int_equal(net->snap.first_chunks[f], 1);
    assert_int_equal(net->snap.last_chunks[f], 1);
    assert_int_equal(net->snap.starts[f], 1);
    struct replica_info fi = net_info(net, f), li = net_info(net, leader);
    assert_int_equal(fi.snapshots_installed, 1);
    assert_int_equal(li.snapshots_sent, 1);
    assert_int_equal(li.snapshots_installed, 0);
    assert_int_equal(fi.keys, N_WRITES);
    assert_true(fi.raft.snapshot_index > 0);
    assert_serves_all(net, f, N_WRITES);
    /* It keeps up by appends afterwards: no second snapshot. */
    assert_status(net_do(net, leader, REPLICA_PUT, "after", "snapshot", 0, 0), REPLICA_OK);
    net_run(net, 3);
    assert_value(net_do(net, f, REPLICA_GET, "after", NULL, 0, 0), "snapshot");
    assert_int_equal(net_info(net, f).snapshots_installed, 1);
    assert_int_equal(net_info(net, leader).snapshots_sent, 1);
    assert_same_store(net, leader, f);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_snapshot_transfer_whose_chunks_are_dropped_is_abandoned_and_restarted(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t f = 0;
    uint64_t leader = lagging_follower(net, &f, 0);
    net->drop_snap = true;
    net->nodes[f].isolated = false;
    net_run(net, 3 * SNAP_TIMEOUT);
    /* Started, given up after the timeout without progress, started again: never completed. */
    assert_true(net->snap.dropped > 0);
    assert_true(net->snap.starts[f] >= 2);
    assert_true(net->snap.ends[f] >= 1);
    assert_true(net->snap.first_end_tick[f] - net->snap.first_start_tick[f] >= SNAP_TIMEOUT);
    assert_true(net->snap.first_end_tick[f] - net->snap.first_start_tick[f] <= SNAP_TIMEOUT + 1);
    assert_int_equal(net_info(net, leader).snapshots_sent, 0);
    assert_int_equal(net_info(net, f).snapshots_installed, 0);
    assert_int_equal(net->snap.delivered[f], 0);
    /* Frames flow again: the running (or next) transfer completes. */
    net->drop_snap = false;
    run_until_installed(net, f, 1, 3 * SNAP_TIMEOUT);
    assert_int_equal(net_info(net, leader).snapshots_sent, 1);
    assert_int_equal(net_info(net, f).snapshots_installed, 1);
    assert_serves_all(net, f, N_WRITES);
    assert_same_store(net, leader, f);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_follower_crashed_while_receiving_a_snapshot_gets_a_fresh_transfer(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t f = 0;
    uint64_t leader = lagging_follower(net, &f, 0);
    net->nodes[f].isolated = false;
    /* Deliver frame by frame (ticking when the queue runs dry) until f has 3 chunks. */
    for (uint32_t i = 0; net->snap.delivered[f] < 3; i++) {
        assert_true(i < 100000);
        if (!net_deliver_one(net)) {
            net->ticks++;
            for (uint64_t id = 1; id <= net->n; id++) {
                replica_tick(net->nodes[id].r);
                net_collect(net, id);
            }
        }
    }
    assert_int_equal(net_info(net, f).snapshots_installed, 0);
    net_crash(net, f);
    net_run(net, 3);
    net->nodes[f].cfg.raft.seed += 1000; /* a new incarnation */
    net_start(net, f);
    uint64_t first_chunks = net->snap.first_chunks[f];
    run_until_installed(net, f, 1, 4 * SNAP_TIMEOUT);
    /* A new transfer from offset 0: the half-received one was not resumed. */
    assert_true(net->snap.first_chunks[f] > first_chunks);
    assert_true(net->snap.starts[f] >= 2);
    assert_int_equal(net_info(net, leader).snapshots_sent, 1);
    assert_serves_all(net, f, N_WRITES);
    net_run(net, 3);
    assert_same_store(net, leader, f);
    assert_int_equal(net_info(net, f).raft.applied, net_info(net, leader).raft.applied);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_snapshot_chunk_corrupted_in_flight_is_refused_and_sent_again(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t f = 0;
    uint64_t leader = lagging_follower(net, &f, 0);
    net->corrupt_armed = true;
    net->corrupt_seq = 2; /* inside the records: only the running CRC can tell */
    net->nodes[f].isolated = false;
    for (uint32_t i = 0; net->corrupt_armed; i++) {
        assert_true(i < 50);
        net_tick_all(net);
    }
    /* Chunk 2 arrived damaged and was not taken: the follower's ack asks for it again at once,
     * and the same transfer goes on to the end (no new first chunk). */
    run_until_installed(net, f, 1, 4 * SNAP_TIMEOUT);
    assert_int_equal(net->snap.first_chunks[f], 1);
    net_run(net, 2);
    assert_int_equal(net_info(net, leader).snapshots_sent, 1);
    assert_serves_all(net, f, N_WRITES);
    assert_same_store(net, leader, f);
    net_assert_all_answered(net);
    net_free(net);
}

/* Hands f one SNAP chunk (records, with a running CRC good or not) from the leader, as the
 * current term's leader. */
static uint64_t feed_chunk_of(struct net *net, uint64_t leader, uint64_t f, uint64_t index,
                              uint32_t xfer, uint64_t seq, uint32_t crc0, bool last,
                              const uint8_t *records, size_t len, bool good_crc)
{
    struct replica_info fi = net_info(net, f);
    uint32_t crc = rk_crc32c(crc0, records, len);
    struct codec_snap s = {.from = leader,
                           .to = f,
                           .term = fi.raft.term,
                           .index = index,
                           .snap_term = fi.raft.term,
                           .xfer = xfer,
                           .seq = seq,
                           .last = last,
                           .crc = good_crc ? crc : crc ^ 1u,
                           .data = len > 0 ? records : NULL,
                           .len = (uint32_t)len};
    uint8_t frame[256];
    size_t n = 0;
    assert_true(codec_snap_size(CODEC_TYPE_SNAP, &s) <= sizeof(frame));
    assert_int_equal(codec_encode_snap(CODEC_TYPE_SNAP, &s, frame, sizeof(frame), &n), RK_OK);
    struct rk_errmsg err = {{0}};
    assert_int_equal(replica_recv(net->nodes[f].r, leader, frame, n, &err), RK_OK);
    struct replica_output out;
    replica_output(net->nodes[f].r, &out);
    /* No acknowledgment that it is done: the leader must not count it as installed. */
    uint64_t acked = UINT64_MAX;
    for (size_t i = 0; i < out.n_frames; i++) {
        struct codec_frame fr;
        assert_int_equal(
            codec_decode(out.frames[i].bytes, out.frames[i].len, rk_alloc_libc(), &fr, &err),
            RK_OK);
        if (fr.type == CODEC_TYPE_SNAP_ACK) {
            assert_false(fr.snap.done);
            assert_int_equal(fr.snap.xfer, xfer);
            acked = fr.snap.seq;
        }
        codec_frame_free(rk_alloc_libc(), &fr);
    }
    net_observe(net, f);
    return acked; /* UINT64_MAX: no acknowledgment */
}

static void feed_chunk(struct net *net, uint64_t leader, uint64_t f, uint64_t index, uint64_t seq,
                       bool last, const uint8_t *records, size_t len, bool good_crc)
{
    (void)feed_chunk_of(net, leader, f, index, 0, seq, 0, last, records, len, good_crc);
}

/* Thesis ch. 5, InstallSnapshot: a snapshot at or below the follower's commit index is one it
 * already holds: its first chunk is acknowledged as done at once, nothing staged or installed
 * (mutation 035: an older snapshot staged again; since the streamed install the switch drops it
 * when the log got past it, so the simulator no longer sees its effect, only this). */
static void test_snapshot_at_or_below_commit_is_acknowledged_as_held(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    assert_status(net_do(net, leader, REPLICA_PUT, "k", "v", 0, 0), REPLICA_OK);
    net_run(net, 4);
    struct replica_info fi = net_info(net, f);
    assert_true(fi.raft.commit >= 1);
    const uint8_t rec[] = {2, 0, 0, 0, 1, 0, 0, 0, 'u', 'z', 'x'};
    struct codec_snap s = {.from = leader,
                           .to = f,
                           .term = fi.raft.term,
                           .index = fi.raft.commit,
                           .snap_term = fi.raft.term,
                           .xfer = 9,
                           .seq = 0,
                           .last = false,
                           .crc = rk_crc32c(0, rec, sizeof(rec)),
                           .data = rec,
                           .len = (uint32_t)sizeof(rec)};
    uint8_t frame[256];
    size_t n = 0;
    assert_int_equal(codec_encode_snap(CODEC_TYPE_SNAP, &s, frame, sizeof(frame), &n), RK_OK);
    struct rk_errmsg err = {{0}};
    assert_int_equal(replica_recv(net->nodes[f].r, leader, frame, n, &err), RK_OK);
    struct replica_output out;
    replica_output(net->nodes[f].r, &out);
    int done = 0;
    for (size_t i = 0; i < out.n_frames; i++) {
        struct codec_frame fr;
        assert_int_equal(
            codec_decode(out.frames[i].bytes, out.frames[i].len, rk_alloc_libc(), &fr, &err),
            RK_OK);
        if (fr.type == CODEC_TYPE_SNAP_ACK) {
            assert_true(fr.snap.done);
            assert_int_equal(fr.snap.xfer, 9);
            done++;
        }
        codec_frame_free(rk_alloc_libc(), &fr);
    }
    net_observe(net, f);
    assert_int_equal(done, 1);
    assert_int_equal(net_info(net, f).snapshots_installed, fi.snapshots_installed);
    assert_value(net_do(net, f, REPLICA_GET, "k", NULL, 0, 0), "v");
    net_free(net);
}

static void test_a_duplicate_first_chunk_does_not_restart_the_transfer(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    assert_status(net_do(net, leader, REPLICA_PUT, "k", "v", 0, 0), REPLICA_OK);
    net_run(net, 2);
    uint64_t index = net_info(net, f).raft.commit + 50;
    const uint8_t rec[] = {2, 0, 0, 0, 1, 0, 0, 0, 'u', 'z', 'x'};
    uint32_t crc0 = rk_crc32c(0, rec, sizeof(rec));
    assert_int_equal(feed_chunk_of(net, leader, f, index, 7, 0, 0, false, rec, sizeof(rec), true),
                     1);
    assert_int_equal(
        feed_chunk_of(net, leader, f, index, 7, 1, crc0, false, rec, sizeof(rec), true), 2);
    /* The first chunk again (a resend that crossed its ack): still two chunks held. */
    assert_int_equal(feed_chunk_of(net, leader, f, index, 7, 0, 0, false, rec, sizeof(rec), true),
                     2);
    /* A transfer started over (another number) begins again at its first chunk. */
    assert_int_equal(feed_chunk_of(net, leader, f, index, 8, 0, 0, false, rec, sizeof(rec), true),
                     1);
    assert_int_equal(net_info(net, f).snapshots_installed, 0);
    net_free(net);
}

static void test_malformed_snapshot_blobs_are_refused_without_installing_anything(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    assert_status(net_do(net, leader, REPLICA_PUT, "k", "v", 0, 0), REPLICA_OK);
    net_run(net, 2);
    struct replica_info before = net_info(net, f);
    uint64_t index = before.raft.commit + 50;
    /* One record (its content never matters: every blob below is refused before it is read). */
    const uint8_t rec[] = {2, 0, 0, 0, 1, 0, 0, 0, 'u', 'z', 'x'};
    /* A bad running CRC. */
    feed_chunk(net, leader, f, index, 0, true, rec, sizeof(rec), false);
    /* Good CRC, a record whose key length runs past the end. */
    uint8_t long_rec[sizeof(rec)];
    memcpy(long_rec, rec, sizeof(rec));
    long_rec[0] = 200;
    feed_chunk(net, leader, f, index, 0, true, long_rec, sizeof(long_rec), true);
    /* Good CRC, bytes left over after the records (a partial record head). */
    uint8_t padded[sizeof(rec) + 3] = {0};
    memcpy(padded, rec, sizeof(rec));
    feed_chunk(net, leader, f, index, 0, true, padded, sizeof(padded), true);
    /* A transfer that does not start at chunk 0. */
    feed_chunk(net, leader, f, index, 1, true, rec, sizeof(rec), true);
    /* A good first chunk, then a last chunk whose CRC is not chained on it. */
    feed_chunk(net, leader, f, index, 0, false, rec, sizeof(rec), true);
    feed_chunk(net, leader, f, index, 1, true, rec, sizeof(rec), true);
    struct replica_info after = net_info(net, f);
    assert_int_equal(after.snapshots_installed, 0);
    assert_int_equal(after.raft.snapshot_index, before.raft.snapshot_index);
    assert_int_equal(after.raft.commit, before.raft.commit);
    assert_int_equal(after.keys, before.keys);
    /* And the follower goes on as before. */
    assert_value(net_do(net, f, REPLICA_GET, "k", NULL, 0, 0), "v");
    assert_status(net_do(net, f, REPLICA_PUT, "k2", "v2", 0, 0), REPLICA_OK);
    assert_value(net_do(net, f, REPLICA_GET, "k2", NULL, 0, 0), "v2");
    net_run(net, 2);
    assert_same_store(net, leader, f);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_sessions_travel_with_the_snapshot_so_a_retry_is_a_duplicate(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    net->nodes[f].isolated = true;
    /* Client 7's write is applied at the leader; then someone else overwrites the key. */
    assert_status(net_do(net, leader, REPLICA_PUT, "k", "from-7", 7, 1), REPLICA_OK);
    assert_status(net_do(net, leader, REPLICA_PUT, "k", "later", 0, 0), REPLICA_OK);
    write_n(net, leader, N_WRITES, 0);
    net_run(net, 2);
    assert_true(net_info(net, leader).raft.snapshot_index > net_info(net, f).raft.last_index);
    net->nodes[f].isolated = false;
    run_until_installed(net, f, 1, 50);
    assert_true(kv_session_count(replica_kv(net->nodes[f].r)) >= 1);
    /* Client 7 never saw its OK and retries on f: a duplicate everywhere, f included. */
    const struct net_reply *retry = net_do(net, f, REPLICA_PUT, "k", "from-7", 7, 1);
    assert_status(retry, REPLICA_OK);
    net_run(net, 3);
    for (uint64_t id = 1; id <= 3; id++)
        assert_value(net_do(net, id, REPLICA_GET, "k", NULL, 0, 0), "later");
    assert_same_store(net, leader, f);
    net_assert_all_answered(net);
    net_free(net);
}

static void test_follower_restarted_after_installing_a_snapshot_serves_the_same_values(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t f = 0;
    uint64_t leader = lagging_follower(net, &f, 0);
    net->nodes[f].isolated = false;
    run_until_installed(net, f, 1, 50);
    net_run(net, 2);
    net_crash(net, f);
    net->nodes[f].cfg.raft.seed += 1000;
    net_start(net, f);
    assert_int_equal(net_info(net, f).keys, N_WRITES);
    net_run(net, 3);
    assert_serves_all(net, f, N_WRITES);
    assert_int_equal(net_info(net, leader).snapshots_sent, 1); /* no second transfer */
    assert_same_store(net, leader, f);
    net_assert_all_answered(net);
    net_free(net);
}

/* Only writes without sessions, every key deleted again: the leader's state machine is empty
 * at a high index, and so is the snapshot. */
static void test_snapshot_of_an_empty_state_machine_installs_and_survives_a_restart(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    net->nodes[f].isolated = true;
    char key[32];
    for (uint32_t i = 0; i < N_WRITES / 2; i++) {
        key_of(key, sizeof(key), i);
        assert_status(net_do(net, leader, REPLICA_PUT, key, "v", 0, 0), REPLICA_OK);
        assert_status(net_do(net, leader, REPLICA_DEL, key, NULL, 0, 0), REPLICA_OK);
        if (i % 5 == 4)
            net_tick_all(net);
    }
    net_run(net, 2);
    assert_int_equal(net_info(net, leader).keys, 0);
    assert_true(net_info(net, leader).raft.snapshot_index > net_info(net, f).raft.last_index);
    net->nodes[f].isolated = false;
    net->watch = leader;
    run_until_installed(net, f, 1, 50);
    struct replica_info fi = net_info(net, f);
    assert_int_equal(fi.keys, 0);
    assert_int_equal(kv_applied_index(replica_kv(net->nodes[f].r)), fi.raft.applied);
    assert_status(net_do(net, f, REPLICA_GET, "key-000", NULL, 0, 0), REPLICA_NOT_FOUND);
    net_crash(net, f);
    net_start(net, f);
    net_run(net, 3);
    assert_status(net_do(net, f, REPLICA_GET, "key-001", NULL, 0, 0), REPLICA_NOT_FOUND);
    assert_status(net_do(net, leader, REPLICA_PUT, "k", "v", 0, 0), REPLICA_OK);
    assert_value(net_do(net, f, REPLICA_GET, "k", NULL, 0, 0), "v");
    net_assert_all_answered(net);
    net_free(net);
}

static void keep_nothing_config(struct replica_config *c)
{
    c->compact_entries = 1;
    c->compact_keep = 0;
}

/* kv.h: a no-op writes nothing to the store, so the log must keep every entry after the store's
 * own applied index; compaction past it would leave a restarted node with a state machine
 * behind the log's first entry. */
static void test_compaction_after_leader_noops_still_lets_every_node_restart(void **state)
{
    (void)state;
    struct net *net = net_new(3, keep_nothing_config);
    uint64_t leader = net_elect(net);
    assert_status(net_do(net, leader, REPLICA_PUT, "k", "v", 0, 0), REPLICA_OK);
    net_run(net, 3);
    /* Leadership moves twice: two no-ops on top of the last write, applied everywhere. */
    for (int i = 0; i < 2; i++) {
        uint64_t next = net_other(net, leader, 0);
        assert_int_equal(replica_transfer_leader(net->nodes[leader].r, next), RK_OK);
        net_collect(net, leader);
        for (int t = 0; t < 50 && net_info(net, next).raft.role != RAFT_LEADER; t++)
            net_tick_all(net);
        assert_int_equal(net_info(net, next).raft.role, RAFT_LEADER);
        leader = next;
        net_run(net, 3);
    }
    for (uint64_t id = 1; id <= 3; id++) {
        net_crash(net, id);
        net_start(net, id);
    }
    leader = net_elect(net);
    for (uint64_t id = 1; id <= 3; id++)
        assert_value(net_do(net, id, REPLICA_GET, "k", NULL, 0, 0), "v");
    net_assert_all_answered(net);
    net_free(net);
}

/* ---- expiry in snapshots -------------------------------------------------------------------- */

#define T0 1700000000000ull

static void net_set_time(struct net *net, uint64_t now_ms)
{
    for (uint64_t id = 1; id <= net->n; id++)
        if (net->nodes[id].r != NULL)
            replica_set_time_ms(net->nodes[id].r, now_ms);
}

/* One kv op (REPLICA_CMD) on node id, waited for: its encoded result. */
static const struct net_reply *net_cmd(struct net *net, uint64_t id, uint8_t code, uint16_t flags,
                                       int64_t num, const char *key, const char *val)
{
    struct kv_arg args[2] = {{(const uint8_t *)key, (uint32_t)strlen(key)},
                             {(const uint8_t *)val, val == NULL ? 0 : (uint32_t)strlen(val)}};
    struct kv_op2 op = {
        .code = code, .flags = flags, .num = num, .argc = val == NULL ? 1 : 2, .argv = args};
    struct kv_cmd2 c = {.n_ops = 1, .ops = &op};
    static uint8_t buf[256];
    size_t len = 0;
    assert_int_equal(kv_cmd2_encode(&c, buf, sizeof(buf), &len), RK_OK);
    assert_true(net->next_req < NET_MAX_REQS);
    uint64_t req_id = net->next_req++;
    net->submitted_to[req_id] = id;
    struct replica_request req = {
        .req_id = req_id, .op = REPLICA_CMD, .val = buf, .val_len = (uint32_t)len};
    replica_submit(net->nodes[id].r, &req);
    net_collect(net, id);
    const struct net_reply *r = net_wait(net, req_id, 100);
    assert_status(r, REPLICA_OK);
    return r;
}

/* The deadlines (the 'x' records behind the expiry table) and the state machine's clock are in
 * the snapshot: the follower that installs it answers the same TTLs and purges the same keys. */
static void test_deadlines_and_the_clock_travel_with_the_snapshot(void **state)
{
    (void)state;
    struct net *net = net_new(3, NULL);
    uint64_t leader = net_elect(net);
    uint64_t f = net_other(net, leader, 0);
    net_set_time(net, T0);
    net->nodes[f].isolated = true;
    net_cmd(net, leader, KV_C_SET, KV_F_EXP, 100, "long", "v");
    net_cmd(net, leader, KV_C_SET, KV_F_EXP | KV_F_MS, 5000, "short", "v");
    write_n(net, leader, N_WRITES, 0);
    net_run(net, 2);
    assert_true(net_info(net, leader).raft.snapshot_index > net_info(net, f).raft.last_index);
    net->nodes[f].isolated = false;
    run_until_installed(net, f, 1, 50);
    const struct kv *fkv = replica_kv(net->nodes[f].r);
    assert_int_equal(kv_clock_ms(fkv), T0);
    assert_int_equal(kv_expiring_count(fkv), 2);
    static const uint8_t pttl_5000[] = {':', 0x88, 0x13, 0, 0, 0, 0, 0, 0}; /* :5000 */
    const struct net_reply *r = net_cmd(net, f, KV_C_TTL, KV_F_MS, 0, "short", NULL);
    assert_int_equal(r->val_len, sizeof(pttl_5000));
    assert_memory_equal(r->val, pttl_5000, sizeof(pttl_5000));
    /* Past "short"'s deadline: the leader purges it through the log, f included. */
    net_set_time(net, T0 + 5000);
    net_run(net, 5);
    for (uint64_t id = 1; id <= 3; id++) {
        assert_int_equal(kv_expiring_count(replica_kv(net->nodes[id].r)), 1);
        assert_int_equal(net_info(net, id).keys, N_WRITES + 1);
    }
    assert_same_store(net, leader, f);
    net_assert_all_answered(net);
    net_free(net);
}

/* ---- the streamed install into a Bitcask store (STREAMED INSTALL in replica.c) ------------- */

static void tiny_snapshot_memory(struct replica_config *c)
{
    /* The path that collects a snapshot in memory would refuse this one (it is far bigger):
     * a follower that installs it streamed it. */
    c->max_snapshot_bytes = 64;
}

/* As tiny_snapshot_memory, in chunks of 512 bytes: a few, so that crashing at every disk call
 * of an install takes a few dozen runs. */
static void tiny_snapshot_memory_big_chunks(struct replica_config *c)
{
    tiny_snapshot_memory(c);
    c->snapshot_chunk_bytes = 512;
}

struct dir_names {
    int tmp;
    int merge;
};

static bool dir_name(void *ctx, const char *name)
{
    struct dir_names *d = ctx;
    size_t len = strlen(name);
    d->tmp += len > 4 && strcmp(name + len - 4, ".tmp") == 0;
    d->merge += strcmp(name, "MERGE") == 0;
    return true;
}

static struct dir_names net_dir(struct net *net, uint64_t id)
{
    struct dir_names d = {0, 0};
    struct fs *fs = simdisk_fs(net->nodes[id].disk);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->list(fs, dir_name, &d, &err), RK_OK);
    return d;
}

/* Ticks until follower f applied what the leader committed and knows the leader. */
static void run_until_caught_up(struct net *net, uint64_t leader, uint64_t f, uint32_t max_ticks)
{
    for (uint32_t i = 0;; i++) {
        if (net->nodes[f].r != NULL &&
            net_info(net, f).raft.applied >= net_info(net, leader).raft.commit &&
            net_info(net, f).raft.leader == leader)
            return;
        if (i >= max_ticks)
            fail_msg("node %llu did not catch up in %u ticks", (unsigned long long)f, max_ticks);
        net_tick_all(net);
    }
}

static void test_streamed_install_into_bitcask_serves_and_leaves_one_copy(void **state)
{
    (void)state;
    struct net *net = net_new_bitcask(3, tiny_snapshot_memory);
    uint64_t f = 0;
    uint64_t leader = lagging_follower(net, &f, 7);
    net->nodes[f].isolated = false;
    run_until_installed(net, f, 1, 400);
    assert_true(net->snap.delivered[f] > 3);
    assert_serves_all(net, f, N_WRITES);
    assert_same_store(net, leader, f);
    struct dir_names d = net_dir(net, f);
    assert_int_equal(d.tmp, 0);
    assert_int_equal(d.merge, 0);
    /* It keeps up by appends afterwards, and a restart finds the installed store. */
    assert_status(net_do(net, leader, REPLICA_PUT, "after", "snapshot", 0, 0), REPLICA_OK);
    net_run(net, 3);
    net_crash(net, f);
    net_start(net, f);
    run_until_caught_up(net, leader, f, 400);
    assert_value(net_do(net, f, REPLICA_GET, "after", NULL, 0, 0), "snapshot");
    assert_serves_all(net, f, N_WRITES);
    assert_same_store(net, leader, f);
    net_free(net);
}

/* The follower crashes at its store's k-th disk call after it is reconnected, for every k up to
 * past the end of the install: the staged outputs' writes, the switch's commit, renames, loading
 * and removals. Restarted, it holds the old store or the new one (never a mix: the checks
 * below), no *.tmp nor MERGE, and catches up to serve every value the leader has. */
static void test_crash_at_every_disk_call_of_a_streamed_install_recovers(void **state)
{
    (void)state;
    int crashed_old = 0, crashed_new = 0;
    for (uint64_t k = 1;; k++) {
        assert_true(k < 400);
        struct net *net = net_new_bitcask(3, tiny_snapshot_memory_big_chunks);
        uint64_t f = 0;
        uint64_t leader = lagging_follower(net, &f, 0);
        uint64_t snap_index = net_info(net, leader).raft.snapshot_index;
        struct simdisk_faults fl = {.torn_writes = (k % 2) == 0, .crash_at_call = k};
        simdisk_set_faults(net->nodes[f].disk, &fl);
        net->nodes[f].isolated = false;
        bool crashed = false;
        for (uint32_t i = 0; i < 400 && !crashed; i++) {
            if (net_info(net, f).snapshots_installed == 1)
                break;
            net_tick_all(net);
            crashed = net->nodes[f].r == NULL;
        }
        if (!crashed) { /* past the install's last disk call */
            assert_int_equal(net_info(net, f).snapshots_installed, 1);
            assert_true(crashed_old > 10 && crashed_new > 10); /* 100 and 44 when written */
            struct simdisk_faults none = {0};
            simdisk_set_faults(net->nodes[f].disk, &none);
            assert_serves_all(net, f, N_WRITES);
            net_free(net);
            break;
        }
        /* Reopened (net_crash): the old store, or the new one at the snapshot's index. */
        uint64_t applied = net->nodes[f].store->ops->applied_index(net->nodes[f].store);
        if (applied >= snap_index)
            crashed_new++;
        else
            crashed_old++;
        struct dir_names d = net_dir(net, f);
        assert_int_equal(d.tmp, 0);
        assert_int_equal(d.merge, 0);
        net->nodes[f].cfg.raft.seed += 1000 * k;
        net_start(net, f);
        run_until_caught_up(net, leader, f, 800);
        assert_serves_all(net, f, N_WRITES);
        assert_same_store(net, leader, f);
        net_free(net);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlines_and_the_clock_travel_with_the_snapshot),
        cmocka_unit_test(
            test_follower_cut_off_during_compaction_catches_up_by_a_multi_chunk_snapshot),
        cmocka_unit_test(
            test_snapshot_transfer_whose_chunks_are_dropped_is_abandoned_and_restarted),
        cmocka_unit_test(test_follower_crashed_while_receiving_a_snapshot_gets_a_fresh_transfer),
        cmocka_unit_test(test_snapshot_chunk_corrupted_in_flight_is_refused_and_sent_again),
        cmocka_unit_test(test_malformed_snapshot_blobs_are_refused_without_installing_anything),
        cmocka_unit_test(test_snapshot_at_or_below_commit_is_acknowledged_as_held),
        cmocka_unit_test(test_a_duplicate_first_chunk_does_not_restart_the_transfer),
        cmocka_unit_test(test_sessions_travel_with_the_snapshot_so_a_retry_is_a_duplicate),
        cmocka_unit_test(
            test_follower_restarted_after_installing_a_snapshot_serves_the_same_values),
        cmocka_unit_test(test_snapshot_of_an_empty_state_machine_installs_and_survives_a_restart),
        cmocka_unit_test(test_compaction_after_leader_noops_still_lets_every_node_restart),
        cmocka_unit_test(test_streamed_install_into_bitcask_serves_and_leaves_one_copy),
        cmocka_unit_test(test_crash_at_every_disk_call_of_a_streamed_install_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
