/*
 * sim.c — the deterministic simulator: a discrete-event loop over virtual time that runs real
 * replicas (core/replica) and feeds them every byte through core/codec, with a network, clients
 * and faults whose every choice comes from one seeded PRNG.
 *
 * Events are ordered by (virtual time, insertion number): the insertion number is the
 * deterministic tie-break. Checkers run after every event on the node it touched: Election
 * Safety, Log Matching, Leader Completeness and State Machine Safety (Raft Figure 3); at the end
 * the client history is checked for linearizability (sim/lincheck) and the scenario's liveness
 * expectations are verified.
 *
 * Nothing here reads a clock or the environment: the same scenario and seed print the same
 * bytes.
 */
#include "sim.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/assert.h"
#include "codec/codec.h"
#include "common/prng.h"
#include "bitcask/bitcask.h"
#include "check_durable.h"
#include "kv/kv.h"
#include "kv/view.h"
#include "lincheck.h"
#include "linrich.h"
#include "log/log.h"
#include "replica/replica.h"
#include "replyq.h"
#include "scancheck.h"
#include "simalloc.h"
#include "simdisk.h"
#include "timeline.h"
#include "workload.h"

#define SIM_SETTLE_DEFAULT_US (5u * 1000000u)
/* Op kinds of `mix`: get put del incr putif mset mget, then the generic commands (enum wl_kind
 * WL_TXN, WL_WATCH, WL_EXPIRE, WL_APPEND, WL_GETDEL, WL_SETNX, WL_RENAME), then scan and keys
 * (the reads of the whole keyspace, checked by sim/scancheck), then bits (WL_BITS). */
#define SIM_MIX_KINDS         17
#define SIM_MIX_KIND_SCAN     14
#define SIM_MIX_KIND_KEYS     15
#define SIM_MIX_KIND_BITS     16 /* WL_BITS */
/* The connection ops that read the whole keyspace (REPLICA_READ; not lincheck's ops). */
#define SIM_OP_SCAN           30 /* one page of a SCAN iteration */
#define SIM_OP_KEYS           31 /* KEYS pattern, with DBSIZE at the same index */
#define SIM_MAX_ATTEMPT       0xffffu

enum ev_type {
    EV_TICK = 1,
    EV_DELIVER,      /* a peer frame arrives */
    EV_CLIENT_REQ,   /* a client request arrives at a node */
    EV_CLIENT_REPLY, /* a reply arrives at a client */
    EV_CLIENT_NEXT,  /* a client starts its next op */
    EV_CLIENT_RETRY, /* a client retries after TRYAGAIN */
    EV_CLIENT_TIMEOUT,
    EV_STEP,       /* scenario step */
    EV_CHAOS,      /* a random fault of kind a */
    EV_CHAOS_UNDO, /* its end */
    EV_SETTLE,     /* the last fault heals */
    EV_CHECK_LEADER,
    EV_CHECK_COMPLETE,
    EV_END,
    EV_START_RETRY, /* a node whose start failed tries again (a = start generation) */
    EV_DIE,         /* a crash point that never came: crash now (a = start generation) */
    EV_MERGE,       /* Bitcask merge on a node */
    EV_STORAGE,     /* a node's storage finished a group of log writes (a = storage gen) */
    EV_MERGE_STEP,  /* the next step of a node's background merge (a = merge gen) */
    EV_STORE_IO,    /* a node's store thread finished a job of deferred writes (a = store gen) */
};

#define SIM_START_ERROR_BYTES 200
/* bc_config.merge_id_gap of the nodes' stores (raftkv-node's is larger: its files are). */
#define SIM_MERGE_ID_GAP 16

struct sim_msg {
    uint32_t from;
    uint32_t to;
    size_t len;
    size_t cap;           /* bytes[] room (kept for reuse, see msg_new) */
    struct sim_msg *next; /* in the free list */
    uint8_t bytes[];
};

struct sim_creq {
    uint32_t client;
    uint32_t attempt;
    uint64_t seq;
    uint8_t op;
    uint8_t key[16];
    uint32_t key_len;
    uint8_t val[32];
    uint32_t val_len;
    /* Connection clients (`pipeline`): the request as the replica gets it. */
    uint64_t req_id;    /* 0: a one-op client's (client, seq, attempt) */
    uint64_t client_id; /* the connection's session */
    uint64_t node_inc;  /* the incarnation of the node the connection was made to */
    uint8_t rop;        /* enum replica_op */
    uint8_t cond;
    int64_t delta;
    uint8_t blob[WL_CMD_BYTES]; /* MSET's pairs, MGET's keys, CMD's encoded command */
    uint32_t blob_len;
    struct sim_creq *next_free; /* in sim.creq_pool */
};

struct sim_crep {
    uint32_t client;
    uint32_t attempt;
    uint64_t seq;
    uint32_t node;
    uint8_t status;
    int64_t num;
    uint64_t leader;
    uint64_t req_id;
    bool not_integer; /* ERROR: the state machine's "not an integer" (INCRBY) */
    uint32_t val_len;
    uint8_t val[]; /* the reply's value (a GET's, an MGET's blob, a CMD's result), whole */
};

struct event {
    uint64_t t;
    uint64_t seq;
    uint8_t type;
    uint32_t node;
    uint64_t a; /* type-specific: tick generation, client, step index, chaos kind */
    uint64_t b;
    void *payload; /* sim_msg, sim_creq or sim_crep; owned by the event */
};

/* The event queue's wheel: EV_WHEEL buckets of 2^EV_BUCKET_SHIFT us each (about a second in
 * all), each bucket's events sorted, the earliest last. */
#define EV_BUCKET_SHIFT 8
#define EV_WHEEL        4096
#define EV_WHEEL_FIRST  4 /* each bucket's first room, in one block for all (no malloc each) */
struct ev_bucket {
    struct event *v;
    uint32_t n, cap;
};

struct sim_node {
    uint32_t id;
    struct replica *rep;
    struct log_store *log;   /* the durable Raft log, on logdisk */
    struct simdisk *logdisk; /* the log's directory; survives crashes */
    struct simdisk *disk;    /* the state machine's directory; survives crashes */
    struct bitcask *bc;
    struct kv_store *store; /* bc_kv_store(bc); with `mix keys`, the views wrapper in front */
    struct sim_walk *walks; /* KEYS walks in progress on this node (sim_walks_step) */
    /* Connection clients (`pipeline`): its connections' reply FIFOs, as node/conn.c keeps them
     * (replyq.h): replies leave in request order; a crash drops them. */
    struct replyq *rq;
    uint64_t incarnation;   /* crashes so far: a connection made before the last one is dead */
    bool dying;             /* a crash point is armed: crash at the disk's next calls */
    uint64_t busy_until;    /* a slow sync stalls the node until then */
    /* Asynchronous log persistence (replica.h), as raftkv-node's storage thread does it: jobs
     * queue here in order; the first n_running are written and their group's sync is due at
     * the next EV_STORAGE of this storage_gen (a crash moves the gen on, dropping them). */
    struct replica_log_job **jobq;
    size_t n_jobq, cap_jobq, n_running;
    uint64_t storage_gen;
    struct durable_log dur; /* what its log disk holds, from the jobs synced (check_durable.h) */
    /* The store's deferred writes (bitcask.h, DEFERRED WRITES), as raftkv-node's store thread
     * runs them: jobs queue here in order; the head runs at the next EV_STORE_IO of this
     * store_gen, after the disk's latency (plus a sync's when it syncs); a crash drops them. */
    struct bc_io_job **sjobq;
    size_t n_sjobq, cap_sjobq;
    bool s_running;
    uint64_t store_gen;
    /* The background merge, as raftkv-node runs it (bitcask.h, MERGE IN STEPS): prepared on
     * the node, run and cleaned up by its storage thread (an event each, after a latency),
     * installed in small chunks between other events; a crash drops it (merge_gen moves on). */
    struct bc_merge_job *merge_job;
    int merge_stage; /* the step EV_MERGE_STEP runs next: 0 run, 1 install, 2 cleanup, 3 end */
    uint64_t merge_gen;
    uint64_t start_gen;     /* restart attempts after a failed open */
    char start_error[SIM_START_ERROR_BYTES]; /* why the last start failed; "" if it did not */
    uint64_t ticks;       /* ticks taken since the run began (the node's own clock) */
    uint64_t cutoff_tick; /* a leader cut off from a majority since this tick; 0: it is not */
    bool up;
    bool paused;
    bool damaged; /* its disks took persistent damage (disk rot|badsector|lost|misdirect): a
                     refusal to start (the damage detected) is then the expected outcome */
    uint64_t damage_seen[2]; /* damage events of logdisk and disk traced so far */
    uint32_t repairs;        /* starts that repaired damaged storage */
    bool wiped;              /* its disks were wiped since its last open (`disk wipe`) */
    /* Membership (`members`, `add`, `chaos member`): a joiner starts with an empty
     * configuration (a new node, or one wiped to be added again); ever_member: it was in a
     * configuration once, so adding it again first gives it an empty disk (a new member). */
    bool joiner;
    bool ever_member;
    /* Its address (issue #17, `move`): generation 0 is the one of the first configuration (as
     * --peers); each move takes the next. sim_route_ok: a message between two nodes goes
     * through only if the dialer (the lower id, as node/peer.c) holds its current address. */
    uint32_t addr_gen;
    uint64_t up_since; /* virtual time of its last start */
    double rate;
    uint64_t tick_gen;
    struct event *held; /* deliveries held while paused */
    size_t n_held, cap_held;
    /* Checker state. */
    uint64_t lm_index; /* log verified for Log Matching up to here ... */
    uint64_t lm_term;  /* ... whose entry had this term */
    uint64_t sm_applied;
    uint64_t sm_installed; /* snapshots_installed checked (check_snapshot_state) */
    uint64_t ct_done; /* commits recorded from this node's leadership up to here */
    enum raft_role role;
    uint64_t term;
    /* Its wall clock (expiry, kv.h TIME): true time + wall_off_us, which drifts with the
     * clock's rate and stays within the scenario's `wallclock` bound; updated at wall_at. */
    int64_t wall_off_us;
    uint64_t wall_at;
};

/* An op in flight on a connection (`pipeline`). */
struct sim_cop {
    uint32_t rseq; /* the connection's request number (24 bits in the req_id) */
    uint64_t op_id;
    uint8_t op; /* enum lin_op */
    uint64_t invoked_at;
    uint8_t wl;       /* enum wl_kind of a generic command; 0: a plain op */
    uint32_t n_parts; /* keys read: GET 1, MGET its group */
    bool found[SCN_KEY_GROUP];
    uint32_t val_lens[SCN_KEY_GROUP];
    uint32_t sc_id; /* a write's id in the scan checker's history (0: none) */
    /* SIM_OP_SCAN, SIM_OP_KEYS: the page asked for (pattern index, cursor, COUNT) and, once
     * the node served it (sim_on_read, at the read's applied index), the key numbers it
     * returned (owned; 0 for a name that is no key of the workload) and the next cursor. */
    uint8_t pat;
    bool served;
    uint32_t count;
    uint64_t cursor, next;
    uint32_t *got;
    uint32_t n_got;
};

struct sim_client {
    uint32_t id;
    /* Connection clients (`pipeline`): one session per connection, several ops in flight. */
    bool connected;
    uint32_t node;       /* the node connected to */
    uint32_t gen;        /* connections made so far (16 bits in the req_id) */
    uint64_t session;    /* the replica's client id: unique per connection */
    uint64_t node_inc;   /* the node's incarnation when it connected (sim_node.incarnation) */
    uint64_t dead_session; /* a connection its node reset (a crash): nothing more arrives */
    uint64_t wseq;       /* the session's last write seq */
    uint32_t rseq;       /* requests sent on this connection */
    uint64_t arrive_at;  /* the last request's arrival: requests arrive in order (TCP) */
    uint64_t reply_at;   /* the last reply's arrival: replies come back in order */
    bool next_armed;     /* an EV_CLIENT_NEXT is scheduled */
    uint32_t n_cops;
    struct sim_cop cops[SCN_MAX_PIPELINE];
    /* A watched transaction (`mix watch`): 1 WATCH in flight, 2 its EXEC to send, 3 the EXEC
     * in flight; on this connection (w_gen), over the group w_first.., in slot w_slot. */
    uint8_t w_state;
    uint8_t w_slot;
    uint32_t w_gen;
    uint32_t w_first, w_key;
    struct wl_watch w_seen;
    /* A SCAN iteration (`mix scan`): 0 none, 1 its next page due, 2 a page in flight; begun at
     * scan_t0, at scan_cursor now, with MATCH scan_pat and COUNT scan_count; the keys returned
     * so far. hop: the connection moves to another node once its requests are answered. */
    uint8_t scan_state;
    uint8_t scan_pat;
    uint32_t scan_count;
    uint64_t scan_cursor;
    uint64_t scan_t0;
    uint32_t *scan_got;
    uint32_t n_scan_got, cap_scan_got;
    bool hop;
    bool busy;
    bool done; /* no more ops */
    uint64_t seq;
    uint64_t op_id;
    uint8_t op;
    uint32_t key;
    uint32_t attempt;
    bool maybe_executed;
    bool timer_armed;
    uint64_t deadline; /* of the current attempt */
    uint64_t invoked_at;
    char val[32];
};

struct lm_entry {
    uint64_t index;
    uint64_t term;
    uint64_t hash;
    uint64_t prev_term;
    uint32_t node;
    bool used;
};

/* What is known committed at an index: the entry's term, and the lowest term of a leader that
 * counted it committed. Leader Completeness binds only leaders of later terms. */
struct ct_entry {
    uint64_t entry_term;
    uint64_t commit_term;
    uint32_t node;
    bool used;
};

struct sm_entry {
    uint64_t term;
    uint64_t hash;
    uint32_t node;
    bool used;
    /* A leader's state machine digest (kv_digest) when its applied index was this one: what a
     * snapshot taken at this index must install (check_snapshot_state). */
    bool has_digest;
    uint32_t digest_node;
    uint64_t digest;
};

#define SIM_WIPE_MAX 4096
struct wipe_names {
    char names[SIM_WIPE_MAX][FS_NAME_MAX + 1];
    size_t n;
};

struct sim {
    /* Delivered frames' buffers, kept for the next frames (a malloc and a free per frame were 3%
     * of a run); at most SIM_MSG_POOL of them. */
    struct sim_msg *msg_pool;
    uint32_t n_msg_pool;
    /* Client requests delivered, kept for the next (a calloc and a free each were 1%). */
    struct sim_creq *creq_pool;
    uint32_t n_creq_pool;
    const struct scenario *scn;
    const struct sim_options *opt;
    FILE *out;
    struct sim_result *res;
    struct rk_prng prng;
    /* The store's write jobs draw from a stream of their own (seeded from the seed), so that
     * they leave every other draw of a run as it was without them. */
    struct rk_prng store_prng;
    uint64_t now;
    uint64_t ev_seq;
    struct sim_alloc *pool; /* the replicas' allocator (simalloc.h); NULL: libc */
    /* The event queue (ev_push): a wheel of buckets for the next second, a heap beyond. */
    struct ev_bucket *wheel;            /* EV_WHEEL buckets, or NULL before the first push */
    struct event *wheel_store;          /* EV_WHEEL_FIRST events per bucket, then their own */
    uint64_t wheel_bits[EV_WHEEL / 64]; /* which buckets hold events */
    size_t n_wheel;                     /* events in the wheel */
    struct event *heap;
    size_t n_heap, cap_heap;
    bool failed;

    /* Effective settings (the scenario's, or drawn by swarm). */
    double drop, duplicate, reorder;
    uint64_t latency_min, latency_max, reorder_max;
    uint64_t io_us_min, io_us_max; /* a group of log writes takes this long, plus its sync */
    uint64_t store_io_us_min, store_io_us_max; /* a job of the store's writes, likewise */
    struct scn_chaos chaos;
    bool chaos_on;
    bool disk_faults; /* the scenario's disk faults are on (until settle) */
    /* Persistent damage (disk rot|badsector|lost|misdirect): the scenario's, or swarm's draw. */
    double dmg_rot, dmg_badsector, dmg_lost, dmg_misdirect;
    double dmg_wipe; /* `disk wipe P`: a crash loses the whole data directory */
    /* Raft settings (swarm varies them too: small batches and windows expose bugs that
     * batching hides, e.g. a Figure 8 commit that a batched no-op would mask). */
    bool pre_vote, check_quorum;
    uint32_t append_entries, inflight;
    uint32_t compact_entries, compact_keep;
    uint64_t compact_bytes, compact_keep_bytes; /* 0: the replica's defaults */

    uint32_t n;
    struct sim_node nodes[SCN_MAX_NODES + 1]; /* 1-based */
    /* Membership changes waiting for a leader to take them (steps and `chaos member`), in
     * order; the voters (bit i: node i) of the latest configuration a leader has committed. */
    struct {
        uint8_t op; /* enum replica_member_op */
        uint32_t id;
        uint64_t since;
    } mreq[32];
    uint32_t n_mreq;
    uint32_t voters_mask;
    uint32_t learners_mask;
    uint64_t voters_at; /* the commit index that configuration was read at */
    bool blocked[SCN_MAX_NODES + 1][SCN_MAX_NODES + 1];

    struct sim_client *clients;
    struct lin_history *hist;
    struct sc_history *sc; /* `mix scan`/`keys`: the scan checker's history; NULL: none */

    /* Checkers. */
    uint64_t *leader_of_term;
    size_t cap_terms;
    struct lm_entry *lm;
    size_t lm_cap, lm_used;
    struct sm_entry *sm;
    size_t sm_cap;
    uint64_t sm_max;
    struct ct_entry *ct;
    size_t ct_cap;
    uint64_t ct_max;

    /* Liveness. */
    uint64_t settle_at;
    uint64_t leader_seen_at; /* first time after settle a leader was seen; 0: not yet */
    uint64_t end_at;

    /* Availability (sim/README.md "Availability"): re-evaluated after an event that may have
     * changed which nodes run, who can talk to whom, or who leads. */
    bool ticks_aligned;
    bool avail_dirty;
    /* A node moved (`move`) and some running node may not dial its new address yet: who can
     * talk to whom may change at any event (sim_route_ok), so availability is re-evaluated
     * after each, until every running node's configuration has caught up. */
    bool route_watch;
    bool moved;             /* some node moved once */
    bool healthy;           /* a healthy majority exists now */
    uint64_t healthy_since; /* ... since then */
    uint32_t healthy_mask;  /* ... these nodes (bit i: node i) */
    bool unavailable;       /* healthy, and no usable leader */
    uint64_t avail_changed_at;
    uint64_t unavailable_us; /* total so far */
    bool ended;              /* EV_END has passed: the recovery phase */

    uint32_t mix[SIM_MIX_KINDS]; /* the op kinds' weights: the scenario's, or drawn by swarm */
    uint64_t wallclock_us;       /* the wall clocks' bound (`wallclock`), or drawn by swarm */
    uint8_t *wslots;     /* per key group, LX_WATCH_SLOTS flags: a WATCH-EXEC pair holds it */
    uint64_t fail_at;    /* when the first check failed */
    struct timeline *tl; /* --timeline: what the picture needs; NULL: not recording */
    bool closing;        /* the ops still open at the end are being closed */
};

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                     */

static void sim_printf(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sim_printf(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->out, fmt, ap);
    va_end(ap);
}

static void trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(struct sim *s, const char *fmt, ...)
{
    if (!s->opt->trace)
        return;
    fprintf(s->out, "%4" PRIu64 ".%06" PRIu64 " ", s->now / 1000000, s->now % 1000000);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->out, fmt, ap);
    va_end(ap);
    fputc('\n', s->out);
}

static void fail(struct sim *s, int verdict, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct sim *s, int verdict, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    s->fail_at = s->now;
    s->res->verdict = verdict;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->what, sizeof(s->res->what), fmt, ap);
    va_end(ap);
}

static void avail_check_op(struct sim *s, const struct sim_client *c);
static const char *op_name(uint8_t op);

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
    if (p == NULL) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    return p;
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);
    if (p == NULL) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size == 0 ? 1 : size);
    if (q == NULL) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    return q;
}

/* ------------------------------------------------------------------------------------------ */
/* Event queue: events in (t, seq) order                                                      */

/* Events due within about a second of now (nearly all: frames, ticks, storage completions,
 * client operations and their timeouts) go into a wheel of buckets of a quarter millisecond,
 * each bucket sorted; the others into a heap. The next event is the earlier of the first
 * non-empty bucket's earliest and the heap's top. A bucket b (t >> EV_BUCKET_SHIFT) is in the
 * wheel only while b < now's bucket + EV_WHEEL, so the buckets of the events in the wheel are
 * all distinct modulo EV_WHEEL, and the first one found from now's slot is the earliest. The
 * order is exactly (t, seq), as with the heap alone (which was 11% of a run). */

static bool ev_less(const struct event *a, const struct event *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

/* A 4-ary heap: half the depth of a binary one, and the four children of a node share a
 * cache line or two. */
#define EV_ARITY 4

static void ev_heap_push(struct sim *s, const struct event *ev)
{
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 1024;
        s->heap = xrealloc(s->heap, s->cap_heap * sizeof(*s->heap));
    }
    struct event e = *ev;
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / EV_ARITY;
        if (!ev_less(&e, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = e;
}

static struct event ev_heap_pop(struct sim *s)
{
    RK_ASSERT(s->n_heap > 0);
    struct event top = s->heap[0];
    struct event last = s->heap[--s->n_heap];
    size_t n = s->n_heap, i = 0;
    for (;;) {
        size_t first = EV_ARITY * i + 1;
        if (first >= n)
            break;
        size_t end = first + EV_ARITY < n ? first + EV_ARITY : n;
        size_t best = first;
        for (size_t c = first + 1; c < end; c++) {
            if (ev_less(&s->heap[c], &s->heap[best]))
                best = c;
        }
        if (!ev_less(&s->heap[best], &last))
            break;
        s->heap[i] = s->heap[best];
        i = best;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

static void ev_push(struct sim *s, uint64_t t, uint8_t type, uint32_t node, uint64_t a, uint64_t b,
                    void *payload)
{
    struct event e = {
        .t = t, .seq = s->ev_seq++, .type = type, .node = node, .a = a, .b = b, .payload = payload};
    uint64_t bucket = t >> EV_BUCKET_SHIFT;
    if (t < s->now || bucket - (s->now >> EV_BUCKET_SHIFT) >= EV_WHEEL) {
        ev_heap_push(s, &e);
        return;
    }
    if (s->wheel == NULL) {
        s->wheel = xcalloc(EV_WHEEL, sizeof(*s->wheel));
        s->wheel_store = xmalloc((size_t)EV_WHEEL * EV_WHEEL_FIRST * sizeof(*s->wheel_store));
        for (size_t k = 0; k < EV_WHEEL; k++) {
            s->wheel[k].v = s->wheel_store + k * EV_WHEEL_FIRST;
            s->wheel[k].cap = EV_WHEEL_FIRST;
        }
    }
    size_t slot = (size_t)(bucket % EV_WHEEL);
    struct ev_bucket *bk = &s->wheel[slot];
    if (bk->n == bk->cap) {
        bool first = bk->cap == EV_WHEEL_FIRST;
        bk->cap *= 2;
        struct event *v =
            first ? xmalloc(bk->cap * sizeof(*v)) : xrealloc(bk->v, bk->cap * sizeof(*v));
        if (first)
            memcpy(v, bk->v, bk->n * sizeof(*v));
        bk->v = v;
    }
    /* Sorted with the earliest last: e goes after every later event. */
    uint32_t i = bk->n++;
    while (i > 0 && ev_less(&bk->v[i - 1], &e)) {
        bk->v[i] = bk->v[i - 1];
        i--;
    }
    bk->v[i] = e;
    s->wheel_bits[slot / 64] |= (uint64_t)1 << (slot % 64);
    s->n_wheel++;
}

/* The wheel's first non-empty bucket from now's (there must be one). */
static struct ev_bucket *ev_wheel_first(const struct sim *s)
{
    size_t slot = (size_t)((s->now >> EV_BUCKET_SHIFT) % EV_WHEEL);
    size_t w = slot / 64;
    uint64_t bits = s->wheel_bits[w] & (~(uint64_t)0 << (slot % 64));
    for (size_t k = 0; bits == 0; k++) {
        RK_ASSERT(k < EV_WHEEL / 64);
        w = (w + 1) % (EV_WHEEL / 64);
        bits = s->wheel_bits[w];
    }
    return &s->wheel[w * 64 + (size_t)__builtin_ctzll(bits)];
}

static size_t ev_count(const struct sim *s)
{
    return s->n_wheel + s->n_heap;
}

/* The next event, not taken (the queue must not be empty). */
static const struct event *ev_peek(const struct sim *s)
{
    const struct event *h = s->n_heap > 0 ? &s->heap[0] : NULL;
    if (s->n_wheel == 0)
        return h;
    const struct ev_bucket *bk = ev_wheel_first(s);
    const struct event *w = &bk->v[bk->n - 1];
    return h != NULL && ev_less(h, w) ? h : w;
}

static struct event ev_pop(struct sim *s)
{
    RK_ASSERT(ev_count(s) > 0);
    if (s->n_wheel == 0)
        return ev_heap_pop(s);
    struct ev_bucket *bk = ev_wheel_first(s);
    if (s->n_heap > 0 && ev_less(&s->heap[0], &bk->v[bk->n - 1]))
        return ev_heap_pop(s);
    struct event e = bk->v[--bk->n];
    if (bk->n == 0) {
        size_t slot = (size_t)(bk - s->wheel);
        s->wheel_bits[slot / 64] &= ~((uint64_t)1 << (slot % 64));
    }
    s->n_wheel--;
    return e;
}

/* ------------------------------------------------------------------------------------------ */
/* Randomness                                                                                 */

static uint64_t rnd_range(struct sim *s, uint64_t lo, uint64_t hi)
{
    return rk_prng_range(&s->prng, lo, hi);
}

static double rnd_unit(struct sim *s)
{
    return (double)(rk_prng_next(&s->prng) >> 11) * (1.0 / 9007199254740992.0);
}

static bool rnd_chance(struct sim *s, double p)
{
    return p > 0 && rnd_unit(s) < p;
}

/* ------------------------------------------------------------------------------------------ */
/* Nodes                                                                                      */

static uint64_t tick_interval(const struct sim *s, const struct sim_node *nd)
{
    double us = (double)s->scn->tick_us / nd->rate;
    return us < 1 ? 1 : (uint64_t)us;
}

/* `tick DUR aligned`: the time to the next multiple of the tick, so that every node (and
 * every restarted one) ticks at the same instants. */
static uint64_t aligned_delay(const struct sim *s)
{
    uint64_t r = s->now % s->scn->tick_us;
    return s->scn->tick_us - r;
}

/* The wall clock's epoch (Unix us; a multiple of 1000): virtual time 0. */
#define SIM_WALL_EPOCH_US UINT64_C(1700000000000000)

/* Brings nd's wall clock offset up to now: it drifts with the clock rate (`skew`), within the
 * scenario's `wallclock` bound (NTP keeps a real clock so; 0: exact). */
static void wall_update(struct sim *s, struct sim_node *nd)
{
    int64_t bound = (int64_t)s->wallclock_us;
    if (s->now > nd->wall_at && nd->rate != 1.0 && bound > 0) {
        double drift = (double)(s->now - nd->wall_at) * (nd->rate - 1.0);
        double off = (double)nd->wall_off_us + drift;
        nd->wall_off_us = off > (double)bound    ? bound
                          : off < -(double)bound ? -bound
                                                 : (int64_t)off;
    }
    nd->wall_at = s->now;
}

/* The node's wall clock in Unix ms, as raftkv-node reads it every loop turn
 * (replica_set_time_ms: the leader's stamps, every read's now). */
static uint64_t wall_ms(struct sim *s, struct sim_node *nd)
{
    wall_update(s, nd);
    return (uint64_t)((int64_t)(SIM_WALL_EPOCH_US + s->now) + nd->wall_off_us) / 1000u;
}

static void schedule_tick(struct sim *s, struct sim_node *nd, uint64_t delay)
{
    ev_push(s, s->now + delay, EV_TICK, nd->id, nd->tick_gen, 0, NULL);
}

/* The scenario's disk faults, until the settle phase heals them (torn writes and slowness
 * stay: they are how the disk is, not faults that come and go). */
static struct simdisk_faults disk_faults(const struct sim *s, const struct sim_node *nd)
{
    const struct scn_disk *d = &s->scn->disk;
    /* Persistent damage strikes a minority only — the highest ids — so that a healthy majority
     * always holds every committed entry: a damaged node repairs from peers (replica.h,
     * replica_storage_open) and catches up; damage on a majority would stop the cluster (it
     * must not guess), which the end-of-run check would report. */
    uint32_t k = d->damaged_nodes != 0 ? d->damaged_nodes : (s->n - 1) / 2; /* `disk damaged` */
    bool damage = s->disk_faults && nd->id > s->n - k;
    struct simdisk_faults f = {
        .torn_writes = d->torn,
        .bitflip_per_read = s->disk_faults ? d->bitflip : 0,
        .read_error = s->disk_faults ? d->errors : 0,
        .write_error = s->disk_faults ? d->errors : 0,
        .sync_error = s->disk_faults ? d->errors : 0,
        .sync_us = d->sync_us,
        .rot_per_crash = damage ? s->dmg_rot : 0,
        .lse_per_crash = damage ? s->dmg_badsector : 0,
        .lost_write = damage ? s->dmg_lost : 0,
        .misdirected_write = damage ? s->dmg_misdirect : 0,
    };
    return f;
}

/* Removes every file of a disk (a wiped or replaced disk: `disk wipe`). */
static bool wipe_one_name(void *ctx, const char *name)
{
    struct wipe_names *w = ctx;
    if (w->n < SIM_WIPE_MAX)
        snprintf(w->names[w->n++], FS_NAME_MAX + 1, "%s", name);
    return w->n < SIM_WIPE_MAX;
}

static void wipe_disk(struct simdisk *d)
{
    static struct wipe_names w;
    struct fs *fs = simdisk_fs(d);
    for (int round = 0; round < 64; round++) {
        w.n = 0;
        struct rk_errmsg err;
        if (fs->ops->list(fs, wipe_one_name, &w, &err) != RK_OK || w.n == 0)
            break;
        for (size_t i = 0; i < w.n; i++)
            fs->ops->remove(fs, w.names[i], &err);
        fs->ops->sync_dir(fs, &err);
    }
}

/* At a crash, `disk wipe P`: the damaged nodes may lose their whole data directory (issue #15.3:
 * a new disk; the node must not vote as if it had never promised anything). */
static void maybe_wipe(struct sim *s, struct sim_node *nd)
{
    const struct scn_disk *d = &s->scn->disk;
    uint32_t k = d->damaged_nodes != 0 ? d->damaged_nodes : (s->n - 1) / 2;
    if (!s->disk_faults || s->dmg_wipe <= 0 || nd->id <= s->n - k || !rnd_chance(s, s->dmg_wipe))
        return;
    wipe_disk(nd->logdisk);
    wipe_disk(nd->disk);
    nd->wiped = true; /* its next open loses what it had synced: media loss, not a log bug */
    nd->damaged = true;
    trace(s, "n%u lost its data directory (disk wipe)", nd->id);
    if (s->tl != NULL)
        tl_mark(s->tl, s->now, nd->id, "data directory wiped");
}

/* After a crash: whether the node's disks took persistent damage (traced once). */
static void note_disk_damage(struct sim *s, struct sim_node *nd)
{
    struct simdisk *disks[2] = {nd->logdisk, nd->disk};
    for (int k = 0; k < 2; k++) {
        if (simdisk_damage(disks[k]) == nd->damage_seen[k])
            continue;
        nd->damage_seen[k] = simdisk_damage(disks[k]);
        nd->damaged = true;
        trace(s, "n%u %s disk damage: %s", nd->id, k == 0 ? "log" : "store",
              simdisk_damage_text(disks[k]));
    }
}

static void disk_faults_on(struct sim *s, struct sim_node *nd)
{
    struct simdisk_faults f = disk_faults(s, nd);
    simdisk_set_faults(nd->disk, &f);
    simdisk_set_faults(nd->logdisk, &f);
}

static bool node_disk_crashed(const struct sim_node *nd)
{
    return simdisk_crashed(nd->disk) || simdisk_crashed(nd->logdisk);
}

/* Opens the node's Raft log and Bitcask as raftkv-node does (replica_storage_open): recovery
 * cuts torn tails, and damage is repaired from peers (issue #15: the damaged data is cut or
 * discarded after a durable promise; the node catches up from a leader). A failure here (an
 * injected read error during recovery, a repair that cannot be done) is retried later, as an
 * operator would restart a node. */
static int open_storage(struct sim *s, struct sim_node *nd)
{
    struct replica_storage_config rc_cfg = {
        .log_fs = simdisk_fs(nd->logdisk),
        .store_fs = simdisk_fs(nd->disk),
        .alloc = sim_alloc_get(s->pool),
        .segment_bytes = s->scn->disk.file_bytes,
        .max_file_bytes = s->scn->disk.file_bytes,
        .merge_id_gap = SIM_MERGE_ID_GAP,
    };
    struct replica_storage st;
    struct rk_errmsg err = {{0}};
    int rc = replica_storage_open(&rc_cfg, &st, &err);
    if (rc != RK_OK) {
        trace(s, "n%u cannot open its storage: %s", nd->id, err.text);
        snprintf(nd->start_error, sizeof(nd->start_error), "cannot open its storage: %s", err.text);
        return rc;
    }
    if (st.repairs > 0) {
        trace(s, "n%u repaired its storage: %s", nd->id, st.repaired);
        /* Crashes alone (torn tails, lost unsynced bytes) never damage storage: a repair there
         * means a store or log that broke its durability rule (the log compacted past what the
         * store held on disk, say). */
        if (!nd->damaged)
            fail(s, SIM_FAIL_SAFETY, "n%u needed a repair but its disks took no damage: %s",
                 nd->id, st.repaired);
        nd->repairs++;
        if (s->tl != NULL)
            tl_mark(s->tl, s->now, nd->id, "repaired its storage");
    }
    nd->log = st.log;
    nd->bc = st.bc;
    nd->store = bc_kv_store(nd->bc);
    if (s->scn->mix_keys > 0) {
        /* As raftkv-node: KEYS walks views of the store (kv/view.h), so writes go through
         * the views wrapper. */
        nd->store = kv_views_wrap(sim_alloc_get(s->pool), nd->store);
        if (nd->store == NULL) {
            fprintf(stderr, "sim: out of memory\n");
            abort();
        }
    }
    bc_set_deferred(nd->bc, NULL); /* as raftkv-node: the store is written off the loop */
    return RK_OK;
}

static void schedule_start_retry(struct sim *s, struct sim_node *nd);

/* The storage contract of the log (core/log/seglog.c, TORN OR CORRUPT; scenarios/README.md,
 * persistent damage): a log that opens holds every entry it had synced — a torn tail loses only
 * unsynced bytes, and damage in synced data must be detected and refuse the open. Entries a
 * truncation under way at the crash was removing may be gone (durable_log_crash). */
static void check_log_reopened(struct sim *s, struct sim_node *nd)
{
    struct raft_hard_state hs;
    uint64_t snap_index = 0, snap_term = 0;
    const struct raft_entry *e = NULL;
    size_t n = 0;
    struct rk_errmsg err = {{0}};
    if (nd->log->ops->load(nd->log, &hs, &snap_index, &snap_term, &e, &n, &err) != RK_OK)
        return; /* the replica's own load will fail and say why */
    uint64_t lost = durable_log_lost(&nd->dur, snap_index, e, n);
    if (lost == 0)
        return;
    fail(s, SIM_FAIL_SAFETY,
         "durability: n%u opened its log without entry %" PRIu64 " (term %" PRIu64
         "), which it had synced: the log holds (%" PRIu64 ", %" PRIu64 "]%s",
         nd->id, lost, nd->dur.terms[lost - nd->dur.base - 1], snap_index, snap_index + n,
         nd->damaged ? "; its disk took persistent damage, which the open must detect and repair"
                     : "");
}

/* Node id's peer and client addresses at generation gen (issue #17): what raftkv-node's
 * configuration records. */
static void sim_member_addr(uint32_t id, uint32_t gen, struct raft_member_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->id = id;
    snprintf(a->peer, sizeof(a->peer), "10.0.0.%u:%u", id, 7000 + gen);
    snprintf(a->client, sizeof(a->client), "10.0.0.%u:%u", id, 6000 + gen);
}

/* Whether node d dials node o at o's current address: the one d's latest configuration
 * records (none recorded: a joiner that learned it from a member's LIST, current then). */
static bool sim_knows_addr(const struct sim *s, uint32_t d, uint32_t o)
{
    const struct sim_node *nd = &s->nodes[d];
    if (!nd->up || nd->rep == NULL)
        return false;
    const struct raft_member_addr *rec = raft_conf_addr(raft_conf_view(replica_raft(nd->rep)), o);
    if (rec == NULL)
        return true;
    struct raft_member_addr now;
    sim_member_addr(o, s->nodes[o].addr_gen, &now);
    return strcmp(rec->peer, now.peer) == 0;
}

/* node/peer.c PEER_REVERSE_DIAL_MS */
#define SIM_REVERSE_DIAL_US 3000000u

/* Whether messages between a and b get through (issue #17): node/peer.c "Who dials" — the lower
 * id dials the address its configuration records for the other; the higher id dials too once
 * it has had no connection for PEER_REVERSE_DIAL_MS (counted here from the later start of the
 * two). Only in membership scenarios (`members`), where configurations carry addresses. */
static bool sim_route_ok(const struct sim *s, uint32_t a, uint32_t b)
{
    if (s->scn->members == 0 || a == b || !s->moved)
        return true; /* every address is still the first one */
    const struct sim_node *lo = &s->nodes[a < b ? a : b], *hi = &s->nodes[a < b ? b : a];
    if (!lo->up || !hi->up)
        return true; /* a message in flight from a node that crashed since: delivered */
    if (sim_knows_addr(s, lo->id, hi->id))
        return true;
    uint64_t since = lo->up_since > hi->up_since ? lo->up_since : hi->up_since;
    return s->now - since >= SIM_REVERSE_DIAL_US && sim_knows_addr(s, hi->id, lo->id);
}

static void sim_on_read(void *ctx, struct replica *r, uint64_t req_id);

static int node_start(struct sim *s, struct sim_node *nd)
{
    disk_faults_on(s, nd);
    uint32_t repairs = nd->repairs;
    int rc = open_storage(s, nd);
    /* A repair cuts synced entries on purpose (under a promise); a wiped disk lost them. The
     * model is reset to what the log holds once the replica is up (durable_log_reset). */
    if (rc == RK_OK && nd->repairs == repairs && !nd->wiped)
        check_log_reopened(s, nd);
    if (rc == RK_OK) { /* what the node logs at its start: a restart's cost (node/storage.c) */
        struct bc_stats bs;
        bc_stats(nd->bc, &bs);
        if (bs.data_files > 0)
            trace(s,
                  "n%u opened its store: %" PRIu32 " data files, %" PRIu32 " from hints, %" PRIu32
                  " scanned, %" PRIu32 " hints ignored",
                  nd->id, bs.data_files, bs.hint_files_loaded, bs.data_files_scanned,
                  bs.hints_ignored);
    }
    if (rc == RK_OK)
        nd->wiped = false;
    if (rc != RK_OK) {
        if (s->tl != NULL) {
            char m[300];
            snprintf(m, sizeof(m), "could not start: %s", nd->start_error);
            tl_mark(s->tl, s->now, nd->id, m);
        }
        if (simdisk_crashed(nd->disk))
            simdisk_crash(nd->disk);
        if (simdisk_crashed(nd->logdisk))
            simdisk_crash(nd->logdisk);
        note_disk_damage(s, nd);
        if (nd->damaged)
            trace(s, "n%u could not start on its damaged disk (retried)", nd->id);
        schedule_start_retry(s, nd);
        return rc;
    }
    struct replica_config c;
    replica_config_default(&c);
    c.raft.id = nd->id;
    uint32_t members = s->scn->members != 0 ? s->scn->members : s->n;
    c.raft.n_voters = nd->joiner ? 0 : members;
    for (uint32_t i = 0; i < c.raft.n_voters; i++)
        c.raft.voters[i] = i + 1;
    c.raft.allow_non_member = nd->joiner;
    if (s->scn->members != 0) {
        c.auto_promote_ticks = 10;
        c.auto_promote_lag = 20;
        /* The first configuration records the first addresses (raftkv-node: --peers). */
        for (uint32_t i = 0; i < c.raft.n_voters; i++)
            sim_member_addr(c.raft.voters[i], 0, &c.raft.addrs[c.raft.n_addrs++]);
    }
    c.raft.election_ticks_min = s->scn->election_ticks_min;
    c.raft.election_ticks_max = s->scn->election_ticks_max;
    c.raft.heartbeat_ticks = s->scn->heartbeat_ticks;
    c.raft.pre_vote = s->pre_vote;
    c.raft.check_quorum = s->check_quorum;
    c.raft.max_append_entries = s->append_entries;
    c.raft.max_inflight = s->inflight;
    c.raft.seed = rk_prng_next(&s->prng);
    c.log = nd->log;
    c.store = nd->store;
    c.alloc = sim_alloc_get(s->pool);
    c.async_log = true; /* as raftkv-node runs it: the log is written off the loop */
    c.max_pending = 1024;
    c.store_sync_ticks = s->scn->disk.sync_ticks;
    c.compact_entries = s->compact_entries;
    c.compact_keep = s->compact_keep;
    if (s->compact_bytes != 0) {
        c.compact_bytes = s->compact_bytes;
        c.compact_keep_bytes = s->compact_keep_bytes;
    }
    c.snapshot_timeout_ticks = 50;
    c.on_read = sim_on_read;
    c.read_ctx = s;
    /* Small chunks: a transfer spans many messages, so faults land in the middle of one. */
    c.snapshot_chunk_bytes = 64;
    uint64_t ticks = s->scn->timeout_us / s->scn->tick_us;
    c.request_timeout_ticks = ticks < 1 ? 1 : (uint32_t)ticks;
    struct rk_errmsg err = {{0}};
    rc = replica_create(&c, &nd->rep, &err);
    if (rc != RK_OK) {
        trace(s, "n%u could not start%s: %s", nd->id,
              nd->damaged ? " (its disk is damaged: expected)" : "", err.text);
        snprintf(nd->start_error, sizeof(nd->start_error), "%s", err.text);
        if (s->tl != NULL)
            tl_mark(s->tl, s->now, nd->id, nd->start_error);
        nd->store->ops->destroy(nd->store); /* closes the bitcask */
        nd->store = NULL;
        nd->bc = NULL;
        nd->log->ops->destroy(nd->log);
        nd->log = NULL;
        schedule_start_retry(s, nd);
        return rc;
    }
    nd->up = true;
    nd->up_since = s->now; /* its peer connections start anew (sim_route_ok) */
    {
        struct raft_status rs;
        raft_status(replica_raft(nd->rep), &rs);
        if (rs.promised_index != 0)
            trace(s, "n%u starts with a promise: %s%" PRIu64 " (no vote until then)", nd->id,
                  rs.promised_index == RAFT_PROMISE_UNKNOWN ? "unknown, "
                  : rs.promised_index == RAFT_PROMISE_NEW   ? "new directory, "
                                                            : "",
                  RAFT_PROMISE_IS_UNKNOWN(rs.promised_index) ? 0 : rs.promised_index);
    }
    nd->start_error[0] = '\0';
    nd->cutoff_tick = 0;
    s->avail_dirty = true;
    nd->dying = false;
    nd->busy_until = 0;
    nd->paused = false;
    nd->lm_index = 0;
    nd->lm_term = 0;
    nd->sm_applied = 0;
    nd->sm_installed = 0;
    nd->ct_done = 0;
    nd->role = RAFT_FOLLOWER;
    nd->term = 0;
    durable_log_reset(&nd->dur, replica_raft(nd->rep));
    nd->tick_gen++;
    schedule_tick(s, nd,
                  s->ticks_aligned ? aligned_delay(s) : rnd_range(s, 1, tick_interval(s, nd)));
    return RK_OK;
}

#define SIM_MSG_POOL    256
#define SIM_CREQ_POOL   64
#define SIM_MSG_MIN_CAP 256

static struct sim_msg *msg_new(struct sim *s, size_t len)
{
    struct sim_msg *m = s->msg_pool;
    if (m != NULL) {
        s->msg_pool = m->next;
        s->n_msg_pool--;
        if (m->cap < len) {
            free(m);
            m = NULL;
        }
    }
    if (m == NULL) {
        size_t cap = len < SIM_MSG_MIN_CAP ? SIM_MSG_MIN_CAP : len;
        m = xmalloc(sizeof(*m) + cap);
        m->cap = cap;
    }
    return m;
}

/* An event's payload, freed: a frame's buffer goes back to the pool. */
static void free_payload(struct sim *s, struct event *e)
{
    struct sim_msg *m = e->payload;
    e->payload = NULL;
    if (m == NULL)
        return;
    if (e->type == EV_CLIENT_REQ && s->n_creq_pool < SIM_CREQ_POOL) {
        struct sim_creq *q = (struct sim_creq *)m;
        q->next_free = s->creq_pool;
        s->creq_pool = q;
        s->n_creq_pool++;
        return;
    }
    if (e->type != EV_DELIVER || s->n_msg_pool >= SIM_MSG_POOL || m->cap > 64 * 1024) {
        free(m);
        return;
    }
    m->next = s->msg_pool;
    s->msg_pool = m;
    s->n_msg_pool++;
}

/* A zeroed client request (freed by free_payload). */
static struct sim_creq *creq_new(struct sim *s)
{
    struct sim_creq *q = s->creq_pool;
    if (q == NULL)
        return xcalloc(1, sizeof(*q));
    s->creq_pool = q->next_free;
    s->n_creq_pool--;
    memset(q, 0, sizeof(*q));
    return q;
}

/* The storage thread dies with the process: what it had not synced is the disk's to keep or
 * lose (simdisk_crash). */
static void storage_drop(struct sim_node *nd)
{
    durable_log_crash(&nd->dur, nd->jobq, nd->n_jobq);
    for (size_t i = 0; i < nd->n_jobq; i++)
        replica_log_job_free(nd->jobq[i]);
    nd->n_jobq = 0;
    nd->n_running = 0;
    nd->storage_gen++;
    for (size_t i = 0; i < nd->n_sjobq; i++)
        bc_io_free(nd->sjobq[i]); /* never run: what it would have written is lost */
    nd->n_sjobq = 0;
    nd->s_running = false;
    nd->store_gen++;
    bc_merge_job_free(nd->merge_job); /* the merge dies with the process: open sorts it out */
    nd->merge_job = NULL;
    nd->merge_gen++;
}

static void sim_walks_free(struct sim_node *nd);

static void node_crash(struct sim *s, struct sim_node *nd)
{
    if (!nd->up)
        return;
    sim_walks_free(nd); /* a KEYS in progress dies with the process: its client times out */
    rq_reset(nd->rq);   /* and its connections with their replies */
    nd->incarnation++;
    storage_drop(nd);
    replica_destroy(nd->rep);
    nd->rep = NULL;
    nd->store->ops->destroy(nd->store); /* closes the bitcask, writing nothing */
    nd->store = NULL;
    nd->bc = NULL;
    nd->log->ops->destroy(nd->log); /* closes the log, writing nothing */
    nd->log = NULL;
    simdisk_crash(nd->disk); /* what was not synced is gone (torn tails if enabled) */
    simdisk_crash(nd->logdisk);
    note_disk_damage(s, nd);
    maybe_wipe(s, nd);
    nd->dying = false;
    nd->up = false;
    nd->paused = false;
    nd->tick_gen++;
    for (size_t i = 0; i < nd->n_held; i++)
        free_payload(s, &nd->held[i]);
    nd->n_held = 0;
    s->avail_dirty = true;
    trace(s, "n%u crash", nd->id);
}

static void node_restart(struct sim *s, struct sim_node *nd)
{
    if (nd->up)
        return;
    trace(s, "n%u restart", nd->id);
    nd->start_gen++; /* supersedes a pending retry */
    node_start(s, nd);
}

static void schedule_start_retry(struct sim *s, struct sim_node *nd)
{
    nd->start_gen++;
    ev_push(s, s->now + 200000, EV_START_RETRY, nd->id, nd->start_gen, 0, NULL);
}

/* A crash step: at once, or — with crash points — at one of the node's next few disk calls, in
 * the middle of whatever it is writing (or after 100ms if it writes nothing). */
static void node_crash_step(struct sim *s, struct sim_node *nd)
{
    if (!nd->up || nd->dying)
        return;
    if (!s->scn->disk.crashpoints) {
        node_crash(s, nd);
        return;
    }
    struct simdisk_faults f = disk_faults(s, nd);
    f.crash_at_call = rnd_range(s, 1, 30);
    /* Half the time in the log's writes (a ready batch half persisted), half in the state
     * machine's. */
    simdisk_set_faults(rnd_chance(s, 0.5) ? nd->logdisk : nd->disk, &f);
    nd->dying = true;
    s->avail_dirty = true;
    trace(s, "n%u will crash at disk call %" PRIu64, nd->id, f.crash_at_call);
    ev_push(s, s->now + 100000, EV_DIE, nd->id, nd->start_gen, 0, NULL);
}

static void node_pause(struct sim *s, struct sim_node *nd)
{
    if (!nd->up || nd->paused)
        return;
    nd->paused = true;
    nd->tick_gen++;
    s->avail_dirty = true;
    trace(s, "n%u pause", nd->id);
}

static void node_resume(struct sim *s, struct sim_node *nd)
{
    if (!nd->up || !nd->paused)
        return;
    nd->paused = false;
    trace(s, "n%u resume (%zu held)", nd->id, nd->n_held);
    /* What arrived during the pause is processed now, in arrival order. */
    for (size_t i = 0; i < nd->n_held; i++) {
        struct event *e = &nd->held[i];
        ev_push(s, s->now, e->type, e->node, e->a, e->b, e->payload);
    }
    nd->n_held = 0;
    nd->tick_gen++;
    s->avail_dirty = true;
    schedule_tick(s, nd, s->ticks_aligned ? aligned_delay(s) : 1);
}

static void node_hold(struct sim_node *nd, const struct event *e)
{
    if (nd->n_held == nd->cap_held) {
        nd->cap_held = nd->cap_held ? nd->cap_held * 2 : 64;
        nd->held = xrealloc(nd->held, nd->cap_held * sizeof(*nd->held));
    }
    nd->held[nd->n_held++] = *e;
}

/* The leader with the highest term among running nodes, or 0. */
/* Configurations (core/raft/MEMBERSHIP.md): node bit masks (bit i: node i). */
static uint32_t conf_mask(const struct raft_conf *c, bool learners)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < c->n_voters; i++)
        m |= c->voters[i] <= SCN_MAX_NODES ? 1u << c->voters[i] : 0;
    for (uint32_t i = 0; learners && i < c->n_learners; i++)
        m |= c->learners[i] <= SCN_MAX_NODES ? 1u << c->learners[i] : 0;
    return m;
}

/* The latest configuration in a running node's log: its voters, or its members. */
static uint32_t node_conf_mask(const struct sim_node *nd, bool learners)
{
    /* Read in place: a copy of the configuration (its member addresses) cost 5% of a run. */
    return conf_mask(raft_conf_view(replica_raft(nd->rep)), learners);
}

static uint32_t majority_of(uint32_t mask)
{
    return (uint32_t)__builtin_popcount(mask) / 2 + 1;
}

static uint32_t current_leader(struct sim *s)
{
    uint32_t best = 0;
    uint64_t best_term = 0;
    for (uint32_t i = 1; i <= s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        if (!nd->up)
            continue;
        struct replica_info st;
        replica_info(nd->rep, &st);
        if (st.raft.role == RAFT_LEADER && st.raft.term > best_term) {
            best = i;
            best_term = st.raft.term;
        }
    }
    return best;
}

/* ------------------------------------------------------------------------------------------ */
/* Checkers                                                                                   */

static uint64_t entry_hash(const struct raft_entry *e)
{
    uint64_t h = XXH3_64bits(e->data, e->len);
    return h ^ ((uint64_t)e->type * 0x9e3779b97f4a7c15ULL);
}

static void describe_entry(char *buf, size_t cap, const struct raft_entry *e)
{
    if (e->type == RAFT_ENTRY_NOOP) {
        snprintf(buf, cap, "no-op");
        return;
    }
    struct raft_conf conf;
    if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &conf) == RK_OK) {
        snprintf(buf, cap, "configuration: %u voters, %u learners", conf.n_voters, conf.n_learners);
        return;
    }
    struct kv_cmd c;
    if (kv_cmd_decode(e->data, e->len, &c, NULL) != RK_OK) {
        snprintf(buf, cap, "%u bytes, not a command", e->len);
        return;
    }
    snprintf(buf, cap, "%s %.*s%s%.*s (client %" PRIu64 " seq %" PRIu64 ")",
             kv_op_name(c.op), (int)(c.key_len > 40 ? 40 : c.key_len),
             (const char *)c.key, c.op == KV_OP_PUT ? "=" : "",
             (int)(c.val_len > 40 ? 40 : c.val_len), c.val != NULL ? (const char *)c.val : "",
             c.client_id, c.seq);
}

/* The entry a node holds at index, described, or why it cannot be shown. */
static void describe_at(struct sim *s, uint32_t node, uint64_t index, char *buf, size_t cap)
{
    const struct sim_node *nd = &s->nodes[node];
    const struct raft_entry *e = nd->up ? raft_entry_at(replica_raft(nd->rep), index) : NULL;
    if (e == NULL) {
        snprintf(buf, cap, "(no longer in n%u's log)", node);
        return;
    }
    char d[128];
    describe_entry(d, sizeof(d), e);
    snprintf(buf, cap, "%s (term %" PRIu64 ")", d, e->term);
}

static void check_election_safety(struct sim *s, struct sim_node *nd, uint64_t term)
{
    if (term >= s->cap_terms) {
        size_t cap = s->cap_terms ? s->cap_terms : 256;
        while (cap <= term)
            cap *= 2;
        s->leader_of_term = xrealloc(s->leader_of_term, cap * sizeof(*s->leader_of_term));
        memset(s->leader_of_term + s->cap_terms, 0,
               (cap - s->cap_terms) * sizeof(*s->leader_of_term));
        s->cap_terms = cap;
    }
    uint64_t *l = &s->leader_of_term[term];
    if (*l != 0 && *l != nd->id)
        fail(s, SIM_FAIL_SAFETY,
             "election safety: n%" PRIu64 " and n%u are both leaders of term %" PRIu64, *l, nd->id,
             term);
    *l = nd->id;
}

static struct lm_entry *lm_slot(struct sim *s, uint64_t index, uint64_t term)
{
    if (s->lm_used * 2 >= s->lm_cap) {
        size_t old_cap = s->lm_cap;
        struct lm_entry *old = s->lm;
        s->lm_cap = old_cap ? old_cap * 2 : 4096;
        s->lm = xcalloc(s->lm_cap, sizeof(*s->lm));
        s->lm_used = 0;
        for (size_t i = 0; i < old_cap; i++) {
            if (!old[i].used)
                continue;
            struct lm_entry *e = lm_slot(s, old[i].index, old[i].term);
            *e = old[i];
            s->lm_used++;
        }
        free(old);
    }
    uint64_t h = (index * 0x9e3779b97f4a7c15ULL) ^ (term * 0xc2b2ae3d27d4eb4fULL);
    size_t mask = s->lm_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (!s->lm[i].used || (s->lm[i].index == index && s->lm[i].term == term))
            return &s->lm[i];
    }
}

/* Log Matching (Figure 3): entries with the same index and term hold the same command and
 * follow the same history. Checked by induction: every (index, term) pair maps to one
 * (command, previous term) across all nodes and all time. */
static void check_log_matching(struct sim *s, struct sim_node *nd, const struct raft_status *st)
{
    const struct raft *r = replica_raft(nd->rep);
    /* Entries compacted into a snapshot are no longer there to compare: they were committed,
     * and what was committed was checked when it was. */
    if (nd->lm_index < st->snapshot_index) {
        nd->lm_index = st->snapshot_index;
        nd->lm_term = st->snapshot_term;
    }
    /* A truncated or replaced suffix is verified again. */
    while (nd->lm_index > st->snapshot_index &&
           (nd->lm_index > st->last_index || raft_term_at(r, nd->lm_index) != nd->lm_term)) {
        nd->lm_index--;
        nd->lm_term = raft_term_at(r, nd->lm_index);
    }
    for (uint64_t i = nd->lm_index + 1; i <= st->last_index && !s->failed; i++) {
        const struct raft_entry *e = raft_entry_at(r, i);
        RK_ASSERT(e != NULL);
        uint64_t prev_term = raft_term_at(r, i - 1);
        uint64_t hash = entry_hash(e);
        struct lm_entry *slot = lm_slot(s, i, e->term);
        if (!slot->used) {
            *slot = (struct lm_entry){.index = i,
                                      .term = e->term,
                                      .hash = hash,
                                      .prev_term = prev_term,
                                      .node = nd->id,
                                      .used = true};
            s->lm_used++;
        } else if (slot->hash != hash || slot->prev_term != prev_term) {
            char d[128], o[160];
            describe_entry(d, sizeof(d), e);
            describe_at(s, slot->node, i, o, sizeof(o));
            fail(s, SIM_FAIL_SAFETY,
                 "log matching: index %" PRIu64 " term %" PRIu64 " differs: n%u has %s after "
                 "term %" PRIu64 "; n%u had %s after term %" PRIu64,
                 i, e->term, nd->id, d, prev_term, slot->node, o, slot->prev_term);
        }
        nd->lm_index = i;
        nd->lm_term = e->term;
    }
}

static struct sm_entry *sm_slot(struct sim *s, uint64_t i)
{
    if (i >= s->sm_cap) {
        size_t cap = s->sm_cap ? s->sm_cap : 4096;
        while (cap <= i)
            cap *= 2;
        s->sm = xrealloc(s->sm, cap * sizeof(*s->sm));
        memset(s->sm + s->sm_cap, 0, (cap - s->sm_cap) * sizeof(*s->sm));
        s->sm_cap = cap;
    }
    return &s->sm[i];
}

/* Snapshots are the state at their index (kv/view.h V1-V3: the leader streams a pinned view
 * while it goes on applying): a leader's digest is noted at each applied index it is seen at,
 * and a node seen right after it installed a snapshot (its applied index the snapshot's) must
 * have the digest noted there. A state that mixes in later writes is caught here even when
 * replaying the later entries (deduplicated by the sessions that came with it) would hide it
 * by the end of the run. Only with log compaction on: a digest reads the whole store. */
static void check_snapshot_state(struct sim *s, struct sim_node *nd, const struct raft_status *st,
                                 bool applied_moved)
{
    if (s->compact_entries == 0 || st->applied == 0)
        return;
    struct replica_info info;
    replica_info(nd->rep, &info);
    bool installed = info.snapshots_installed != nd->sm_installed;
    nd->sm_installed = info.snapshots_installed;
    bool leader_moved = st->role == RAFT_LEADER && applied_moved;
    if (!(installed && st->applied == st->snapshot_index) && !leader_moved)
        return;
    uint64_t d = 0;
    if (kv_digest(replica_kv(nd->rep), &d) != RK_OK)
        return; /* a read fault: recoverability checks the store at the end */
    struct sm_entry *slot = sm_slot(s, st->applied);
    if (!slot->has_digest) {
        slot->has_digest = true;
        slot->digest_node = nd->id;
        slot->digest = d;
    } else if (slot->digest != d) {
        fail(s, SIM_FAIL_SAFETY,
             "state machine safety: n%u's state at applied index %" PRIu64 "%s (digest %016" PRIx64
             ") differs from n%u's there (digest %016" PRIx64 ")",
             nd->id, st->applied, installed ? ", just installed from a snapshot," : "", d,
             slot->digest_node, slot->digest);
    }
}

/* State Machine Safety (Figure 3): no two nodes apply different commands at one index. */
static void check_state_machine(struct sim *s, struct sim_node *nd, const struct raft_status *st)
{
    const struct raft *r = replica_raft(nd->rep);
    if (st->applied < nd->sm_applied)
        nd->sm_applied = 0; /* restarted: it applies again from scratch */
    if (nd->sm_applied < st->snapshot_index)
        nd->sm_applied = st->snapshot_index; /* installed from a snapshot, not applied here */
    bool applied_moved = st->applied != nd->sm_applied;
    for (uint64_t i = nd->sm_applied + 1; i <= st->applied && !s->failed; i++) {
        const struct raft_entry *e = raft_entry_at(r, i);
        RK_ASSERT(e != NULL);
        struct sm_entry *slot = sm_slot(s, i);
        uint64_t hash = entry_hash(e);
        if (!slot->used) {
            slot->term = e->term;
            slot->hash = hash;
            slot->node = nd->id;
            slot->used = true;
            if (i > s->sm_max)
                s->sm_max = i;
        } else if (slot->term != e->term || slot->hash != hash) {
            char d[128], o[160];
            describe_entry(d, sizeof(d), e);
            describe_at(s, slot->node, i, o, sizeof(o));
            fail(s, SIM_FAIL_SAFETY,
                 "state machine safety: at index %" PRIu64 " n%u applied %s (term %" PRIu64
                 "), n%u applied term %" PRIu64 ": %s",
                 i, nd->id, d, e->term, slot->node, slot->term, o);
        }
    }
    nd->sm_applied = st->applied;
    if (!s->failed)
        check_snapshot_state(s, nd, st, applied_moved);
}

/* Leader Completeness (Figure 3): "if a log entry is committed in a given term, then that entry
 * will be present in the logs of the leaders for all higher-numbered terms". Checked both ways:
 * a new leader against every commit of an earlier term, and a new commit against every running
 * leader of a later term. */
static void check_leader_has(struct sim *s, struct sim_node *nd, uint64_t i)
{
    const struct ct_entry *c = &s->ct[i];
    const struct raft *r = replica_raft(nd->rep);
    struct raft_status st;
    raft_status(r, &st);
    if (i < st.snapshot_index)
        return; /* compacted into its snapshot: committed, so it holds it */
    uint64_t t = raft_term_at(r, i);
    if (c->used && c->commit_term < nd->term && t != c->entry_term)
        fail(s, SIM_FAIL_SAFETY,
             "leader completeness: n%u is leader of term %" PRIu64
             " without the entry committed at index %" PRIu64 " (term %" PRIu64
             ", committed by n%u in term %" PRIu64 "); it has term %" PRIu64 " there",
             nd->id, nd->term, i, c->entry_term, c->node, c->commit_term, t);
}

static void check_leader_completeness(struct sim *s, struct sim_node *nd)
{
    for (uint64_t i = 1; i <= s->ct_max && !s->failed; i++)
        check_leader_has(s, nd, i);
}

/* Which running nodes could win an election on the strength of their logs: voters of their own
 * latest configuration whose log is at least as up-to-date (§5.4.1) as the logs of a majority
 * of that configuration's voters, counting only voters that would hear them (a node drops the
 * vote requests of a sender outside its own configuration, and one under a promise grants
 * none). Counting running nodes only
 * under-approximates the set, so what the check below reports is always real. */
static uint32_t electable_nodes(struct sim *s, uint32_t *out)
{
    uint64_t last_term[SCN_MAX_NODES + 1], last_index[SCN_MAX_NODES + 1];
    bool gated[SCN_MAX_NODES + 1];
    for (uint32_t i = 1; i <= s->n; i++) {
        if (!s->nodes[i].up)
            continue;
        struct raft_status st;
        raft_status(replica_raft(s->nodes[i].rep), &st);
        last_term[i] = st.last_term;
        last_index[i] = st.last_index;
        /* Under a promise (issue #15: a new or repaired directory) a node neither votes nor
         * stands until a leader has given it an entry of its term: by then it holds a log no
         * stale candidate can beat. */
        gated[i] = st.commit < st.promised_index;
    }
    uint32_t members[SCN_MAX_NODES + 1]; /* each running node's latest members */
    for (uint32_t j = 1; j <= s->n; j++)
        members[j] = s->nodes[j].up ? node_conf_mask(&s->nodes[j], true) : 0;
    uint32_t k = 0;
    for (uint32_t i = 1; i <= s->n; i++) {
        if (!s->nodes[i].up)
            continue;
        uint32_t voters = node_conf_mask(&s->nodes[i], false);
        if (!(voters >> i & 1) || gated[i])
            continue; /* never campaigns, or not now */
        uint32_t dominated = 0;
        for (uint32_t j = 1; j <= s->n; j++) {
            if (!(voters >> j & 1) || !s->nodes[j].up ||
                (j != i && (gated[j] || !(members[j] >> i & 1))))
                continue;
            if (last_term[i] > last_term[j] ||
                (last_term[i] == last_term[j] && last_index[i] >= last_index[j]))
                dominated++;
        }
        if (dominated >= majority_of(voters))
            out[k++] = i;
    }
    return k;
}

/* The safety argument of §5.4 made a check: a committed entry is on a majority, so every log
 * that could still win an election holds it. A commit that breaks this (Figure 8's counting of
 * an old term's replicas) is caught when it happens, not only if the bad election follows. */
static void check_committed_on_electable(struct sim *s, uint64_t from, uint64_t to)
{
    uint32_t ids[SCN_MAX_NODES];
    uint32_t k = electable_nodes(s, ids);
    for (uint32_t j = 0; j < k && !s->failed; j++) {
        const struct raft *r = replica_raft(s->nodes[ids[j]].rep);
        struct raft_status rs;
        raft_status(r, &rs);
        for (uint64_t i = from; i <= to && !s->failed; i++) {
            const struct ct_entry *c = &s->ct[i];
            /* Not recorded: a leader's snapshot point skipped past it (record_commits starts
             * there), so there is nothing to compare with (it read as term 0 before). */
            if (!c->used || i < rs.snapshot_index)
                continue; /* in its snapshot */
            uint64_t t = raft_term_at(r, i);
            if (t != c->entry_term)
                fail(s, SIM_FAIL_SAFETY,
                     "commit safety: n%u committed index %" PRIu64 " (term %" PRIu64
                     ") in term %" PRIu64 ", but n%u could still be elected without it (it has "
                     "term %" PRIu64 " there)",
                     c->node, i, c->entry_term, c->commit_term, ids[j], t);
        }
    }
}

/* Figure 2 ("updated on stable storage before responding to RPCs") and §10.2.1 (a leader
 * counts itself only for entries on its own disk): an entry is committed only once a majority
 * of the voters of the committing leader's configuration (the latest in its log, thesis §4.1;
 * learners never count) holds it durably. What a node holds durably comes from the log jobs its
 * storage synced (check_durable.h), not from raft's own persisted index, so a Raft or replica layer
 * that counts an unsynced write (its own or a follower's early acknowledgment) is caught at the
 * commit, without waiting for the crash that would lose the entry. */
/* One exception: a voter that synced the entry, acknowledged it and then lost it to injected
 * damage (its directory repaired at restart) may still be counted by a leader that had its
 * acknowledgment before hearing of the loss: nothing in the protocol can tell an acknowledgment
 * that was true when sent from one still true. Such a node restarts under a promise that covers
 * what it acknowledged (issue #15: it neither votes nor stands until a leader has given it back
 * every entry up to the promise), so it counts here for the entries up to its known promise, as
 * the electable-set check counts it out of elections: a committed entry stays on a majority of
 * the voters that can elect a leader. (A new directory's unknown promise counts nothing: it never
 * acknowledged.) */
static bool promised_holds(const struct sim_node *nd, uint64_t index)
{
    if (!nd->up)
        return false;
    struct raft_status st;
    raft_status(replica_raft(nd->rep), &st);
    return !RAFT_PROMISE_IS_UNKNOWN(st.promised_index) && st.commit < st.promised_index &&
           index <= st.promised_index;
}

static void check_commit_durable(struct sim *s, const struct sim_node *nd, uint64_t index,
                                 uint64_t term)
{
    uint32_t held = 0;
    char lacking[4 * SCN_MAX_NODES + 1];
    size_t len = 0;
    lacking[0] = '\0';
    uint32_t voters = node_conf_mask(nd, false);
    for (uint32_t j = 1; j <= s->n; j++) {
        if (!(voters >> j & 1))
            continue;
        if (durable_log_holds(&s->nodes[j].dur, index, term) ||
            promised_holds(&s->nodes[j], index))
            held++;
        else
            len += (size_t)snprintf(lacking + len, sizeof(lacking) - len, " n%u", j);
    }
    if (held < majority_of(voters))
        fail(s, SIM_FAIL_SAFETY,
             "commit durability: n%u committed index %" PRIu64 " (term %" PRIu64
             ") in term %" PRIu64 ", but only %u of the %u voters of its configuration hold it "
             "on disk (not synced on:%s)",
             nd->id, index, term, nd->term, held, (uint32_t)__builtin_popcount(voters), lacking);
}

/* Records what a leader has committed, in its term. */
static void record_commits(struct sim *s, struct sim_node *nd, const struct raft_status *st)
{
    if (st->role != RAFT_LEADER)
        return;
    const struct raft *r = replica_raft(nd->rep);
    uint64_t first_new = s->ct_max + 1;
    if (nd->ct_done > st->commit)
        nd->ct_done = 0;
    if (nd->ct_done < st->snapshot_index)
        nd->ct_done = st->snapshot_index; /* its snapshot: committed before, recorded then */
    for (uint64_t i = nd->ct_done + 1; i <= st->commit && !s->failed; i++) {
        if (i >= s->ct_cap) {
            size_t cap = s->ct_cap ? s->ct_cap : 4096;
            while (cap <= i)
                cap *= 2;
            s->ct = xrealloc(s->ct, cap * sizeof(*s->ct));
            memset(s->ct + s->ct_cap, 0, (cap - s->ct_cap) * sizeof(*s->ct));
            s->ct_cap = cap;
        }
        struct ct_entry *c = &s->ct[i];
        uint64_t t = raft_term_at(r, i);
        if (!c->used) {
            *c = (struct ct_entry){
                .entry_term = t, .commit_term = st->term, .node = nd->id, .used = true};
            if (i > s->ct_max)
                s->ct_max = i;
            check_commit_durable(s, nd, i, t);
        } else if (c->entry_term != t) {
            fail(s, SIM_FAIL_SAFETY,
                 "leader completeness: n%u (term %" PRIu64 ") committed index %" PRIu64
                 " with term %" PRIu64 ", n%u had committed term %" PRIu64
                 " there in term %" PRIu64,
                 nd->id, st->term, i, t, c->node, c->entry_term, c->commit_term);
        } else if (st->term < c->commit_term) {
            c->commit_term = st->term;
            c->node = nd->id;
        }
        /* Every running leader of a later term must hold it already. */
        for (uint32_t j = 1; j <= s->n && !s->failed; j++) {
            struct sim_node *o = &s->nodes[j];
            if (o != nd && o->up && o->role == RAFT_LEADER && o->term > c->commit_term)
                check_leader_has(s, o, i);
        }
    }
    nd->ct_done = st->commit;
    if (s->ct_max >= first_new)
        check_committed_on_electable(s, first_new, s->ct_max);
    /* The cluster's committed configuration, for the availability figures. */
    struct raft_conf at_commit;
    const struct raft_conf *conf = raft_conf_view(r);
    /* The latest configuration (read in place), when its entry is committed (or it is the
     * snapshot's): the common case, without raft_conf_at's walk back through the log on every
     * commit. */
    if (st->conf_index > st->commit && st->commit > s->voters_at &&
        raft_conf_at(r, st->commit, &at_commit) == RK_OK)
        conf = &at_commit;
    else if (st->conf_index > st->commit)
        conf = NULL;
    if (st->commit > s->voters_at && conf != NULL) {
        uint32_t voters = conf_mask(conf, false), members = conf_mask(conf, true);
        bool changed = voters != s->voters_mask || (members & ~voters) != s->learners_mask;
        if (changed) {
            char text[8 * SCN_MAX_NODES + 32];
            size_t len = 0;
            text[0] = '\0';
            for (uint32_t i = 1; i <= s->n; i++) {
                if (members >> i & 1)
                    len += (size_t)snprintf(text + len, sizeof(text) - len, " n%u%s", i,
                                            voters >> i & 1 ? "" : "(learner)");
            }
            trace(s, "configuration committed by n%u at %" PRIu64 ":%s", nd->id, st->commit, text);
        }
        s->voters_mask = voters;
        s->learners_mask = members & ~voters;
        s->voters_at = st->commit;
        /* The figures depend on the committed voters, and with membership changes on each
         * leader's latest configuration too, which a commit may follow; without them, a commit
         * that leaves the voters as they were changes nothing there (every other input of
         * avail_update marks it dirty where it changes), and recomputing it after every commit
         * cost 2% of a run. */
        if (changed || s->scn->members != 0)
            s->avail_dirty = true;
    }
}

/* route_watch: stays on while some pair of running nodes cannot reach each other because
 * the dialer's configuration holds an old address. */
static void route_watch_update(struct sim *s)
{
    s->avail_dirty = true;
    for (uint32_t a = 1; a <= s->n; a++) {
        for (uint32_t b = a + 1; b <= s->n; b++) {
            if (s->nodes[a].up && s->nodes[b].up && !sim_route_ok(s, a, b))
                return;
        }
    }
    s->route_watch = false;
}

static void check_node(struct sim *s, struct sim_node *nd)
{
    if (s->route_watch)
        route_watch_update(s);
    if (!nd->up || s->failed)
        return;
    struct rk_errmsg why;
    if (node_disk_crashed(nd)) {
        trace(s, "n%u reached its crash point", nd->id);
        node_crash(s, nd);
        return;
    }
    if (replica_failed(nd->rep, &why)) {
        /* A storage failure stops the replica; a supervisor restarts the process. */
        trace(s, "n%u stopped: %s", nd->id, why.text);
        if (s->tl != NULL) {
            char m[300];
            snprintf(m, sizeof(m), "stopped: %s", why.text);
            tl_mark(s->tl, s->now, nd->id, m);
        }
        node_crash(s, nd);
        schedule_start_retry(s, nd);
        return;
    }
    /* Disk usage is measured only where a scenario bounds it (it costs a walk of the files). */
    uint64_t used =
        s->scn->expect_disk_bytes > 0 ? simdisk_bytes(nd->disk) + simdisk_bytes(nd->logdisk) : 0;
    if (used > s->res->max_disk_bytes)
        s->res->max_disk_bytes = used;
    if (s->scn->expect_disk_bytes > 0 && used > s->scn->expect_disk_bytes)
        fail(s, SIM_FAIL_LIVENESS,
             "disk bound: n%u holds %" PRIu64 " bytes (log %" PRIu64 ", store %" PRIu64
             "), over the %" PRIu64 " the scenario allows",
             nd->id, used, simdisk_bytes(nd->logdisk), simdisk_bytes(nd->disk),
             s->scn->expect_disk_bytes);
    uint64_t busy = simdisk_take_busy_us(nd->disk) + simdisk_take_busy_us(nd->logdisk);
    if (busy > 0)
        nd->busy_until = s->now + busy;
    struct replica_info st;
    raft_status(replica_raft(nd->rep), &st.raft);
    if (st.raft.term > s->res->max_term)
        s->res->max_term = st.raft.term;
    bool new_leader =
        st.raft.role == RAFT_LEADER && (nd->role != RAFT_LEADER || nd->term != st.raft.term);
    if (st.raft.role != nd->role || (s->tl != NULL && st.raft.term != nd->term))
        s->avail_dirty = true;
    if (st.raft.role != nd->role || st.raft.term != nd->term)
        trace(s, "n%u %s term %" PRIu64 " (leader %" PRIu64 ")", nd->id,
              raft_role_name(st.raft.role), st.raft.term, st.raft.leader);
    nd->role = st.raft.role;
    nd->term = st.raft.term;
    check_log_matching(s, nd, &st.raft);
    check_state_machine(s, nd, &st.raft);
    if (st.raft.role == RAFT_LEADER)
        check_election_safety(s, nd, st.raft.term);
    if (new_leader) {
        s->res->leaders_elected++;
        check_leader_completeness(s, nd);
    }
    record_commits(s, nd, &st.raft);
}

/* ------------------------------------------------------------------------------------------ */
/* Network                                                                                    */

static uint64_t latency(struct sim *s)
{
    return rnd_range(s, s->latency_min, s->latency_max);
}

/* One trace line for a peer frame: who, what type, and the fields that matter. */
static void trace_frame_now(struct sim *s, const char *what, uint32_t from, uint32_t to,
                            const uint8_t *bytes, size_t len)
{
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    if (codec_decode(bytes, len, rk_alloc_libc(), &f, &err) != RK_OK) {
        trace(s, "n%u -> n%u %s: undecodable frame: %s", from, to, what, err.text);
        return;
    }
    if (f.type == CODEC_TYPE_FORWARD || f.type == CODEC_TYPE_FORWARD_RESP) {
        trace(s, "n%u -> n%u %s %s id %" PRIx64 " index %" PRIu64 " term %" PRIu64, from, to, what,
              f.type == CODEC_TYPE_FORWARD ? "FORWARD" : "FORWARD_RESP", f.fwd.id, f.fwd.index,
              f.fwd.term);
    } else if (f.type == CODEC_TYPE_SNAP || f.type == CODEC_TYPE_SNAP_ACK) {
        trace(s, "n%u -> n%u %s %s index %" PRIu64 " seq %" PRIu64 " len %u%s%s", from, to, what,
              f.type == CODEC_TYPE_SNAP ? "SNAP" : "SNAP_ACK", f.snap.index, f.snap.seq, f.snap.len,
              f.snap.last ? " last" : "", f.snap.done ? " done" : "");
    } else if (f.type != CODEC_TYPE_HANDSHAKE) {
        const struct raft_msg *m = &f.msg;
        trace(s,
              "n%u -> n%u %s %s term %" PRIu64 " log %" PRIu64 "/%" PRIu64
              " entries %u commit %" PRIu64 " index %" PRIu64 "%s",
              from, to, what, raft_msg_type_name(m->type), m->term, m->log_index, m->log_term,
              m->n_entries, m->commit, m->index, m->reject ? " reject" : "");
    }
    codec_frame_free(rk_alloc_libc(), &f);
}

/* With --trace only (checked here, inline: a frame is traced at every send and delivery). */
static inline void trace_frame(struct sim *s, const char *what, uint32_t from, uint32_t to,
                               const uint8_t *bytes, size_t len)
{
    if (s->opt->trace)
        trace_frame_now(s, what, from, to, bytes, len);
}

static void net_send(struct sim *s, uint32_t from, const struct replica_frame *f)
{
    if (f->to < 1 || f->to > s->n) {
        fail(s, SIM_FAIL_SAFETY, "n%u sent a frame to unknown node %" PRIu64, from, f->to);
        return;
    }
    s->res->msgs_sent++;
    if (rnd_chance(s, s->drop)) {
        s->res->msgs_dropped++;
        trace_frame(s, "dropped", from, (uint32_t)f->to, f->bytes, f->len);
        return;
    }
    int copies = rnd_chance(s, s->duplicate) ? 2 : 1;
    if (copies == 2)
        s->res->msgs_duplicated++;
    for (int i = 0; i < copies; i++) {
        struct sim_msg *m = msg_new(s, f->len);
        m->from = from;
        m->to = (uint32_t)f->to;
        m->len = f->len;
        memcpy(m->bytes, f->bytes, f->len);
        uint64_t delay = latency(s);
        if (rnd_chance(s, s->reorder))
            delay += rnd_range(s, 0, s->reorder_max);
        ev_push(s, s->now + delay, EV_DELIVER, m->to, 0, 0, m);
    }
}

/* The storage "thread" takes every job queued and writes them now; their one sync completes
 * after the disk's latency (plus a slow disk's sync cost), when EV_STORAGE hands them back.
 * Meanwhile the node goes on: its messages, ticks and clients interleave with the write. */
static void storage_start(struct sim *s, struct sim_node *nd)
{
    if (nd->n_running > 0 || nd->n_jobq == 0)
        return;
    nd->n_running = nd->n_jobq;
    replica_log_run_writes(nd->jobq, nd->n_running);
    uint64_t delay = rnd_range(s, s->io_us_min, s->io_us_max);
    if (replica_log_jobs_need_sync(nd->jobq, nd->n_running))
        delay += s->scn->disk.sync_us;
    ev_push(s, s->now + delay, EV_STORAGE, nd->id, nd->storage_gen, 0, NULL);
}

static void drain(struct sim *s, struct sim_node *nd);

/* The store thread: one job at a time, in order (bc_io_run, then bc_io_done on the node). */
static void store_start(struct sim *s, struct sim_node *nd)
{
    if (nd->s_running || nd->n_sjobq == 0)
        return;
    nd->s_running = true;
    uint64_t delay = rk_prng_range(&s->store_prng, s->store_io_us_min, s->store_io_us_max);
    if (bc_io_job_syncs(nd->sjobq[0]))
        delay += s->scn->disk.sync_us;
    ev_push(s, s->now + delay, EV_STORE_IO, nd->id, nd->store_gen, 0, NULL);
}

static void store_switch_crash_point(struct sim *s, struct sim_node *nd);

static void store_take(struct sim *s, struct sim_node *nd)
{
    for (struct bc_io_job *j; (j = bc_io_take(nd->bc)) != NULL;) {
        if (bc_io_job_switches(j))
            store_switch_crash_point(s, nd);
        if (nd->n_sjobq == nd->cap_sjobq) {
            nd->cap_sjobq = nd->cap_sjobq ? nd->cap_sjobq * 2 : 16;
            nd->sjobq = xrealloc(nd->sjobq, nd->cap_sjobq * sizeof(*nd->sjobq));
        }
        nd->sjobq[nd->n_sjobq++] = j;
    }
    store_start(s, nd);
}


static void on_store_io(struct sim *s, struct sim_node *nd)
{
    struct bc_io_job *j = nd->sjobq[0];
    memmove(nd->sjobq, nd->sjobq + 1, (nd->n_sjobq - 1) * sizeof(*nd->sjobq));
    nd->n_sjobq--;
    nd->s_running = false;
    int rc = bc_io_run(j);
    (void)simdisk_take_busy_us(nd->disk); /* the sync's cost was this event's delay */
    if (node_disk_crashed(nd)) { /* a crash point the job's disk calls reached */
        bc_io_free(j);
        return;
    }
    struct rk_errmsg err = {{0}};
    bool switches = bc_io_job_switches(j);
    rc = bc_io_done(nd->bc, j, &err);
    if (rc != RK_OK) {
        trace(s, "n%u stopped: its store's writes failed: %s", nd->id, err.text);
        node_crash(s, nd);
        schedule_start_retry(s, nd);
        return;
    }
    if (switches)
        trace(s, "n%u store: a staged snapshot switched in at %" PRIu64, nd->id,
              bc_applied_index(nd->bc));
    replica_store_progress(nd->rep);
    drain(s, nd);
    store_start(s, nd);
}

static void on_storage(struct sim *s, struct sim_node *nd)
{
    replica_log_run_sync(nd->jobq, nd->n_running);
    (void)simdisk_take_busy_us(nd->logdisk); /* the sync's cost was this event's delay */
    size_t n = nd->n_running;
    if (replica_log_jobs_need_sync(nd->jobq, n)) { /* else nothing was written */
        for (size_t i = 0; i < n; i++)
            durable_log_synced(&nd->dur, nd->jobq[i]);
    }
    for (size_t i = 0; i < n; i++)
        replica_log_job_done(nd->rep, nd->jobq[i]);
    memmove(nd->jobq, nd->jobq + n, (nd->n_jobq - n) * sizeof(*nd->jobq));
    nd->n_jobq -= n;
    nd->n_running = 0;
    drain(s, nd);
    /* As raftkv-node's storage thread does (node/storage.c): done with a group, it takes
     * whatever was queued meanwhile at once, new jobs from this drain or not. Without this a
     * queue left behind waited for the node's next job, which after the last write never came
     * (slow_log_disk.scn seed 82, once heartbeat replies stopped waiting for log writes: the
     * leader's last entry never synced, so never applied). */
    storage_start(s, nd);
}

/* A reply leaves a node's reply FIFO (replyq.h): to its client, after the network's latency,
 * behind the connection's earlier replies (TCP). */
static void conn_reply_send(void *ctx, void *rep)
{
    struct sim *s = ctx;
    struct sim_crep *c = rep;
    struct sim_client *cl = &s->clients[c->client - 1];
    uint64_t at = s->now + latency(s);
    at = at > cl->reply_at ? at : cl->reply_at;
    cl->reply_at = at;
    ev_push(s, at, EV_CLIENT_REPLY, 0, c->client, 0, c);
}

/* Takes a node's outputs: frames onto the network, replies back to clients, log writes to its
 * storage. */
static void drain(struct sim *s, struct sim_node *nd)
{
    if (!nd->up)
        return;
    struct replica_output out;
    replica_output(nd->rep, &out);
    if (out.n_log_jobs > 0) {
        if (nd->n_jobq + out.n_log_jobs > nd->cap_jobq) {
            nd->cap_jobq = (nd->n_jobq + out.n_log_jobs) * 2;
            nd->jobq = xrealloc(nd->jobq, nd->cap_jobq * sizeof(*nd->jobq));
        }
        memcpy(nd->jobq + nd->n_jobq, out.log_jobs, out.n_log_jobs * sizeof(*nd->jobq));
        nd->n_jobq += out.n_log_jobs;
        storage_start(s, nd);
    }
    store_take(s, nd);
    for (size_t i = 0; i < out.n_frames; i++)
        net_send(s, nd->id, &out.frames[i]);
    for (size_t i = 0; i < out.n_replies; i++) {
        const struct replica_reply *r = &out.replies[i];
        struct sim_crep *c = xcalloc(1, sizeof(*c) + r->val_len);
        c->client = (uint32_t)(r->req_id >> 48);
        c->seq = (r->req_id >> 16) & 0xffffffffu;
        c->attempt = (uint32_t)(r->req_id & 0xffff);
        c->node = nd->id;
        c->status = r->status;
        c->num = r->num;
        c->leader = r->leader;
        c->val_len = r->val_len;
        if (r->val_len > 0)
            memcpy(c->val, r->val, c->val_len);
        c->req_id = r->req_id;
        trace(s, "n%u reply to c%u: %s%s%s", nd->id, c->client, replica_status_name(r->status),
              r->reason != NULL ? ": " : "", r->reason != NULL ? r->reason : "");
        c->not_integer = r->status == REPLICA_ERROR && r->reason != NULL &&
                         strstr(r->reason, "not an integer") != NULL;
        if (s->scn->pipeline > 0) {
            /* Into its connection's FIFO: it leaves in request order (a KEYS once its walk is
             * done, sim_walks_step), exactly once. */
            char why[256];
            if (!rq_reply(nd->rq, c->req_id, c, why, sizeof(why)))
                fail(s, SIM_FAIL_SAFETY, "n%u: %s", nd->id, why);
            continue;
        }
        ev_push(s, s->now + latency(s), EV_CLIENT_REPLY, 0, c->client, 0, c);
    }
    if (s->scn->pipeline > 0)
        rq_flush(nd->rq);
}

/* ------------------------------------------------------------------------------------------ */
/* Clients                                                                                    */

/* Decimal digits of v at p (no terminator); returns how many. snprintf's "%" PRIu64 without its
 * cost (it was 4% of a run: a few of these per client op). */
static uint32_t fmt_u64(char *p, uint64_t v)
{
    char tmp[20];
    uint32_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (uint32_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

static void key_name(uint32_t key, uint8_t *buf, uint32_t *len)
{
    buf[0] = 'k'; /* "k%u": at most 11 bytes of the 16 */
    *len = 1 + fmt_u64((char *)buf + 1, key);
    buf[*len] = 0;
}

static void client_send(struct sim *s, struct sim_client *c, uint32_t node)
{
    if (c->attempt >= SIM_MAX_ATTEMPT) {
        c->attempt = 0; /* wraps; old replies are told apart by seq and attempt together */
    }
    c->attempt++;
    struct sim_creq *q = creq_new(s);
    q->client = c->id;
    q->attempt = c->attempt;
    q->seq = c->seq;
    q->op = c->op;
    key_name(c->key, q->key, &q->key_len);
    q->val_len = (uint32_t)strlen(c->val);
    memcpy(q->val, c->val, q->val_len);
    if (node == 0)
        node = (uint32_t)rnd_range(s, 1, s->n);
    ev_push(s, s->now + latency(s), EV_CLIENT_REQ, node, 0, 0, q);
    /* One timer per client, re-armed lazily: the deadline is the latest attempt's. */
    c->deadline = s->now + s->scn->timeout_us;
    if (!c->timer_armed) {
        c->timer_armed = true;
        ev_push(s, c->deadline, EV_CLIENT_TIMEOUT, 0, c->id, 0, NULL);
    }
}

static uint8_t pick_op(struct sim *s)
{
    const struct scenario *scn = s->scn;
    uint64_t total = (uint64_t)scn->mix_get + scn->mix_put + scn->mix_del;
    uint64_t x = rnd_range(s, 0, total - 1);
    if (x < scn->mix_get)
        return LIN_GET;
    if (x < (uint64_t)scn->mix_get + scn->mix_put)
        return LIN_PUT;
    return LIN_DEL;
}

static void conn_next(struct sim *s, struct sim_client *c);

static void client_next(struct sim *s, struct sim_client *c)
{
    if (s->scn->pipeline > 0) {
        conn_next(s, c);
        return;
    }
    if (s->now >= s->scn->duration_us) {
        c->done = true;
        return;
    }
    c->busy = true;
    c->seq++;
    c->op = pick_op(s);
    c->key = (uint32_t)rnd_range(s, 1, s->scn->keys);
    c->maybe_executed = false;
    c->attempt = 0;
    c->invoked_at = s->now;
    {
        /* "c%u-%" PRIu64, cut to the buffer as snprintf would */
        char v[48];
        uint32_t n = 0;
        v[n++] = 'c';
        n += fmt_u64(v + n, c->id);
        v[n++] = '-';
        n += fmt_u64(v + n, c->seq);
        if (n > sizeof(c->val) - 1)
            n = sizeof(c->val) - 1;
        memcpy(c->val, v, n);
        c->val[n] = 0;
    }
    uint8_t key[16];
    uint32_t key_len;
    key_name(c->key, key, &key_len);
    c->op_id = lin_invoke(s->hist, c->id, s->now, c->op, key, key_len, (const uint8_t *)c->val,
                          c->op == LIN_PUT ? (uint32_t)strlen(c->val) : 0);
    s->res->ops_invoked++;
    trace(s, "c%u invoke %s k%u%s%s", c->id,
          c->op == LIN_GET   ? "get"
          : c->op == LIN_PUT ? "put"
                             : "del",
          c->key, c->op == LIN_PUT ? "=" : "", c->op == LIN_PUT ? c->val : "");
    client_send(s, c, 0);
}

static void client_complete(struct sim *s, struct sim_client *c, uint8_t outcome, bool found,
                            const uint8_t *val, uint32_t val_len, int64_t num)
{
    avail_check_op(s, c);
    if (s->tl != NULL)
        tl_op(s->tl, c->id, c->invoked_at, s->now, op_name(c->op), c->key,
              s->closing            ? TL_PENDING
              : outcome == LIN_OK   ? TL_OK
              : outcome == LIN_FAIL ? TL_FAIL
                                    : TL_UNKNOWN);
    lin_complete(s->hist, c->op_id, s->now, outcome, found, val, val_len, num);
    if (outcome == LIN_OK)
        s->res->ops_ok++;
    else if (outcome == LIN_FAIL)
        s->res->ops_failed++;
    else
        s->res->ops_unknown++;
    trace(s, "c%u %s %s", c->id,
          outcome == LIN_OK     ? "ok"
          : outcome == LIN_FAIL ? "fail"
                                : "unknown",
          c->op == LIN_GET ? (found ? "found" : "nil") : "");
    c->busy = false;
    ev_push(s, s->now + rnd_range(s, s->scn->think_us_min, s->scn->think_us_max), EV_CLIENT_NEXT, 0,
            c->id, 0, NULL);
}

/* Gives up on the current op: its outcome is unknown if an attempt may have executed it. */
static void conn_break(struct sim *s, struct sim_client *c);

static void client_give_up(struct sim *s, struct sim_client *c)
{
    if (s->scn->pipeline > 0) {
        conn_break(s, c);
        return;
    }
    bool unknown = c->op != LIN_GET && c->maybe_executed;
    client_complete(s, c, unknown ? LIN_UNKNOWN : LIN_FAIL, false, NULL, 0, 0);
}

static bool client_may_retry(const struct sim *s)
{
    return s->now < s->end_at;
}

static void conn_on_reply(struct sim *s, const struct sim_crep *r);

static void on_client_reply(struct sim *s, const struct sim_crep *r)
{
    if (s->scn->pipeline > 0) {
        conn_on_reply(s, r);
        return;
    }
    struct sim_client *c = &s->clients[r->client - 1];
    trace(s, "n%u -> c%u %s seq %" PRIu64 " attempt %u", r->node, r->client,
          replica_status_name(r->status), r->seq, r->attempt);
    if (!c->busy || r->seq != c->seq)
        return; /* an earlier op's late answer */
    switch (r->status) {
    case REPLICA_OK:
        /* Any attempt's success is the op's: retries share (client, seq), so the command was
         * applied once and this is its result. */
        client_complete(s, c, LIN_OK, c->op == LIN_GET, r->val, r->val_len, r->num);
        return;
    case REPLICA_NOT_FOUND:
        client_complete(s, c, LIN_OK, false, NULL, 0, 0);
        return;
    case REPLICA_ERROR:
        client_give_up(s, c);
        return;
    case REPLICA_TIMEOUT:
        c->maybe_executed = true;
        return; /* the client-side timeout retries */
    case REPLICA_TRYAGAIN:
        if (r->attempt != c->attempt)
            return;
        if (!client_may_retry(s)) {
            client_give_up(s, c);
            return;
        }
        /* Retry soon, at the leader if the node named one. */
        ev_push(s, s->now + rnd_range(s, s->scn->tick_us, 5 * s->scn->tick_us), EV_CLIENT_RETRY, 0,
                c->id, (uint64_t)r->leader << 32 | c->attempt, NULL);
        return;
    }
}

static void conn_on_timeout(struct sim *s, struct sim_client *c);

static void on_client_timeout(struct sim *s, struct sim_client *c)
{
    if (s->scn->pipeline > 0) {
        conn_on_timeout(s, c);
        return;
    }
    c->timer_armed = false;
    if (!c->busy)
        return;
    if (s->now < c->deadline) {
        c->timer_armed = true;
        ev_push(s, c->deadline, EV_CLIENT_TIMEOUT, 0, c->id, 0, NULL);
        return;
    }
    if (c->op != LIN_GET)
        c->maybe_executed = true;
    if (!client_may_retry(s)) {
        client_give_up(s, c);
        return;
    }
    client_send(s, c, 0);
}

/* ---- connection clients (`pipeline N`) ---------------------------------------------------- */

/*
 * A connection client models a pipelining RESP client: one connection to one node, up to
 * `pipeline` requests in flight, requests arriving in the order they were sent and replies
 * coming back in order, one session (client id, seq) per connection for its writes. Every op
 * is recorded with the connection, so the checker holds the node to program order. A reply
 * ends its op (TRYAGAIN or ERROR: not executed; TIMEOUT: unknown); a request unanswered after
 * `timeout` breaks the connection: its ops in flight end unknown (a read: not executed), and
 * the client connects again (a new connection, a new session) for its next op. Keys: k1..kN;
 * MSET and MGET use a whole group of SCN_KEY_GROUP consecutive keys, so that the checker's
 * components stay small.
 */
#define CONN_REQ_ID(c, rseq)                                                                     \
    ((uint64_t)(c)->id << 48 | (uint64_t)((c)->gen & 0xffffu) << 32 |                            \
     (uint64_t)((rseq) & 0xffffffu) << 8)

static uint32_t conn_group_first(const struct sim *s, uint32_t key)
{
    (void)s;
    return (key - 1) / SCN_KEY_GROUP * SCN_KEY_GROUP + 1;
}

static uint32_t conn_group_size(const struct sim *s, uint32_t first)
{
    uint32_t n = s->scn->keys - first + 1;
    return n < SCN_KEY_GROUP ? n : SCN_KEY_GROUP;
}

/* Draws an op kind (an index into s->mix). */
static uint32_t conn_pick_kind(struct sim *s)
{
    uint64_t total = 0;
    for (int i = 0; i < SIM_MIX_KINDS; i++)
        total += s->mix[i];
    uint64_t x = rnd_range(s, 0, total - 1);
    for (uint32_t i = 0; i < SIM_MIX_KINDS; i++) {
        if (x < s->mix[i])
            return i;
        x -= s->mix[i];
    }
    return 0;
}

static const char *conn_op_name(uint8_t op)
{
    static const char *const names[] = {"?",     "get",  "put",  "del", "incrby",
                                        "putif", "mset", "mget", "cmd", "cmd read"};
    if (op == SIM_OP_SCAN)
        return "scan";
    if (op == SIM_OP_KEYS)
        return "keys";
    return op < 10 ? names[op] : "?";
}

static void conn_connect(struct sim *s, struct sim_client *c)
{
    uint32_t leader = current_leader(s);
    uint32_t node = (uint32_t)rnd_range(s, 1, s->n);
    if (s->scn->pipeline_followers && s->n > 1 && node == leader)
        node = node % s->n + 1; /* the next one: not the leader */
    c->connected = true;
    c->node = node;
    c->gen++;
    c->session = (uint64_t)c->id << 32 | c->gen;
    c->node_inc = s->nodes[node].incarnation;
    c->wseq = 0;
    c->rseq = 0;
    trace(s, "c%u connects to n%u (connection %u)", c->id, node, c->gen);
}

static bool conn_is_read(uint8_t op)
{
    return op == LIN_GET || op == LIN_MGET || op == LIN_CMD_READ || op == SIM_OP_SCAN ||
           op == SIM_OP_KEYS;
}

static uint8_t *conn_wslot(struct sim *s, uint32_t first, uint8_t slot)
{
    return &s->wslots[(first - 1) / SCN_KEY_GROUP * LX_WATCH_SLOTS + slot];
}

/* A watched transaction's op ends (a WATCH answered OK goes on in conn_on_reply): its slot is
 * free again, but after an EXEC of unknown outcome, which may still take effect at any time
 * (the slot stays taken for the rest of the run: lincheck judges that EXEC by it). */
static void conn_watch_end(struct sim *s, struct sim_client *c, const struct sim_cop *op,
                           uint8_t outcome)
{
    if (op->wl != WL_WATCH && op->wl != WL_EXEC)
        return;
    if (op->wl == WL_WATCH && outcome == LIN_OK)
        return;
    if (!(op->wl == WL_EXEC && outcome == LIN_UNKNOWN))
        *conn_wslot(s, c->w_first, c->w_slot) = 0;
    c->w_state = 0;
}

/* Ends op i of the connection with outcome and outputs; removes it. */
static void conn_complete(struct sim *s, struct sim_client *c, uint32_t i, uint8_t outcome,
                          const struct lin_return *r)
{
    struct sim_cop *op = &c->cops[i];
    if (op->op != SIM_OP_SCAN && op->op != SIM_OP_KEYS)
        lin_complete_ret(s->hist, op->op_id, s->now, outcome, outcome == LIN_OK ? r : NULL);
    if (op->sc_id != 0)
        sc_done(s->sc, op->sc_id, outcome, s->now);
    if (op->op == SIM_OP_SCAN && outcome != LIN_OK && c->scan_state == 2)
        c->scan_state = 1; /* the same page again, on this connection or the next */
    free(op->got);
    if (outcome == LIN_OK)
        s->res->ops_ok++;
    else if (outcome == LIN_FAIL)
        s->res->ops_failed++;
    else
        s->res->ops_unknown++;
    trace(s, "c%u %s %s", c->id, outcome == LIN_OK ? "ok" : outcome == LIN_FAIL ? "fail" : "unknown",
          conn_op_name(op->op));
    conn_watch_end(s, c, op, outcome);
    memmove(&c->cops[i], &c->cops[i + 1], (c->n_cops - i - 1) * sizeof(c->cops[0]));
    c->n_cops--;
    c->busy = c->n_cops > 0;
    if (c->busy)
        c->invoked_at = c->cops[0].invoked_at;
}

/* The connection breaks: every op in flight ends unknown (a read: not executed). */
static void conn_break(struct sim *s, struct sim_client *c)
{
    if (c->connected) /* the node throws away what it still answers on it */
        rq_close(s->nodes[c->node].rq, c->session);
    while (c->n_cops > 0) {
        uint8_t op = c->cops[0].op;
        conn_complete(s, c, 0, conn_is_read(op) ? LIN_FAIL : LIN_UNKNOWN, NULL);
    }
    if (c->w_state == 2) { /* a WATCH answered, its EXEC not sent: abandoned */
        *conn_wslot(s, c->w_first, c->w_slot) = 0;
        c->w_state = 0;
    }
    c->connected = false;
}

static void conn_arm_next(struct sim *s, struct sim_client *c)
{
    if (c->next_armed)
        return;
    c->next_armed = true;
    ev_push(s, s->now + rnd_range(s, s->scn->think_us_min, s->scn->think_us_max), EV_CLIENT_NEXT,
            0, c->id, 0, NULL);
}

/* Sends one generic command of kind (enum wl_kind) on the connection (REPLICA_CMD). */
static void conn_send_cmd(struct sim *s, struct sim_client *c, uint8_t kind)
{
    uint32_t key = kind == WL_EXEC ? c->w_key : (uint32_t)rnd_range(s, 1, s->scn->keys);
    uint32_t first = conn_group_first(s, key), n = conn_group_size(s, first);
    if (kind == WL_RENAME && n < 2)
        kind = WL_SETNX;
    if (kind == WL_WATCH) {
        uint8_t slot = 0;
        while (slot < LX_WATCH_SLOTS && *conn_wslot(s, first, slot) != 0)
            slot++;
        if (c->w_state != 0 || slot == LX_WATCH_SLOTS) {
            kind = WL_TXN; /* one watched transaction at a time; the group's slots all taken */
        } else {
            *conn_wslot(s, first, slot) = 1;
            c->w_state = 1;
            c->w_slot = slot;
            c->w_gen = c->gen;
            c->w_first = first;
            c->w_key = key;
        }
    }
    struct wl_cmd cmd;
    uint64_t uniq = c->id * UINT64_C(1000000000) + UINT64_C(500000000) + s->res->ops_invoked;
    wl_build(&s->prng, kind, key, first, n, uniq, &c->w_seen, &cmd);
    struct sim_creq *q = creq_new(s);
    struct sim_cop *op = &c->cops[c->n_cops];
    memset(op, 0, sizeof(*op));
    op->op = cmd.read ? LIN_CMD_READ : LIN_CMD;
    op->wl = kind;
    op->rseq = ++c->rseq;
    op->invoked_at = s->now;
    uint8_t names[SCN_KEY_GROUP][16];
    const uint8_t *kp[SCN_KEY_GROUP];
    uint32_t kl[SCN_KEY_GROUP];
    for (uint32_t j = 0; j < cmd.n_keys; j++) {
        key_name(cmd.keys[j], names[j], &kl[j]);
        kp[j] = names[j];
    }
    q->client = c->id;
    q->req_id = CONN_REQ_ID(c, op->rseq);
    q->client_id = c->session;
    q->node_inc = c->node_inc;
    q->seq = cmd.read ? c->wseq + 1 : ++c->wseq;
    q->op = op->op;
    q->rop = REPLICA_CMD;
    memcpy(q->blob, cmd.buf, cmd.len);
    q->blob_len = cmd.len;
    if (kind == WL_EXEC)
        c->w_state = 3;
    struct lin_call call = {.client = c->id,
                            .conn = c->session,
                            .time = s->now,
                            .op = op->op,
                            .n_keys = cmd.n_keys,
                            .keys = kp,
                            .key_lens = kl,
                            .cmd = cmd.buf,
                            .cmd_len = cmd.len,
                            .watch_slot = kind == WL_WATCH || kind == WL_EXEC ? c->w_slot + 1 : 0};
    if (s->sc != NULL && !cmd.read)
        op->sc_id = sc_op(s->sc, SC_CHANGE, cmd.keys, cmd.n_keys, s->now);
    op->op_id = lin_invoke_call(s->hist, &call);
    s->res->ops_invoked++;
    c->n_cops++;
    if (c->n_cops == 1)
        c->invoked_at = s->now;
    c->busy = true;
    if (s->opt->trace) {
        char text[200];
        lx_describe_cmd(cmd.buf, cmd.len, text, sizeof(text));
        trace(s, "c%u invoke %s on connection %u (%u in flight)", c->id, text, c->gen, c->n_cops);
    }
    uint64_t at = s->now + latency(s);
    at = at > c->arrive_at ? at : c->arrive_at;
    c->arrive_at = at;
    ev_push(s, at, EV_CLIENT_REQ, c->node, 0, 0, q);
    if (!c->timer_armed) {
        c->timer_armed = true;
        ev_push(s, s->now + s->scn->timeout_us, EV_CLIENT_TIMEOUT, 0, c->id, 0, NULL);
    }
}

/* MATCH patterns of `mix scan` and `mix keys` (fnmatch(3) and Redis's glob agree on them). */
static const char *const scan_patterns[] = {"*", "*", "k1*", "k?", "*[02468]", "k[1-3]*"};
#define SCAN_PATTERNS (sizeof(scan_patterns) / sizeof(scan_patterns[0]))

/* Sends a read of the whole keyspace (REPLICA_READ, as raftkv-node sends SCAN and KEYS): the
 * next page of the connection's SCAN iteration (op SIM_OP_SCAN), or KEYS (SIM_OP_KEYS, a
 * pattern drawn here). sim_on_read serves it when the replica does. */
static void conn_send_whole(struct sim *s, struct sim_client *c, uint8_t kind)
{
    struct sim_creq *q = creq_new(s);
    struct sim_cop *op = &c->cops[c->n_cops];
    memset(op, 0, sizeof(*op));
    op->op = kind;
    op->rseq = ++c->rseq;
    op->invoked_at = s->now;
    if (kind == SIM_OP_SCAN) {
        op->pat = c->scan_pat;
        op->cursor = c->scan_cursor;
        op->count = c->scan_count;
        c->scan_state = 2;
    } else {
        op->pat = (uint8_t)rnd_range(s, 0, SCAN_PATTERNS - 1);
    }
    q->client = c->id;
    q->req_id = CONN_REQ_ID(c, op->rseq);
    q->client_id = c->session;
    q->node_inc = c->node_inc;
    q->seq = c->wseq + 1;
    q->op = kind;
    q->rop = REPLICA_READ;
    s->res->ops_invoked++;
    c->n_cops++;
    if (c->n_cops == 1)
        c->invoked_at = s->now;
    c->busy = true;
    trace(s, "c%u invoke %s %s cursor %" PRIu64 " count %u on connection %u (%u in flight)",
          c->id, conn_op_name(kind), scan_patterns[op->pat], op->cursor, op->count, c->gen,
          c->n_cops);
    uint64_t at = s->now + latency(s);
    at = at > c->arrive_at ? at : c->arrive_at;
    c->arrive_at = at;
    ev_push(s, at, EV_CLIENT_REQ, c->node, 0, 0, q);
    if (!c->timer_armed) {
        c->timer_armed = true;
        ev_push(s, s->now + s->scn->timeout_us, EV_CLIENT_TIMEOUT, 0, c->id, 0, NULL);
    }
}

/* The replica serves a REPLICA_READ (replica.h config.on_read): a connection's SCAN page or
 * KEYS reads the state machine as of the read's applied index, as raftkv-node's keys_read
 * does. A SCAN page passes over COUNT records (raftkv-node reads at least 1000, so that a
 * page here covers a few keys and an iteration spans many pages, faults and nodes). */
struct sim_page {
    struct sim_cop *op;
    const char *pattern;
    uint32_t keys;
    uint32_t cap;
};

static bool sim_page_key(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct sim_page *pg = ctx;
    char name[64];
    uint32_t n = key_len < sizeof(name) - 1 ? key_len : (uint32_t)sizeof(name) - 1;
    memcpy(name, key, n);
    name[n] = 0;
    if (fnmatch(pg->pattern, name, 0) != 0)
        return true;
    uint32_t num = 0;
    bool ok = n >= 2 && n == key_len && name[0] == 'k' && name[1] != '0';
    for (uint32_t i = 1; ok && i < n; i++) {
        ok = name[i] >= '0' && name[i] <= '9' && num < 100000000u;
        num = num * 10 + (uint32_t)(name[i] - '0');
    }
    if (pg->op->n_got == pg->cap) {
        pg->cap = pg->cap < 16 ? 16 : pg->cap * 2;
        pg->op->got = xrealloc(pg->op->got, pg->cap * sizeof(*pg->op->got));
    }
    pg->op->got[pg->op->n_got++] = ok && num <= pg->keys ? num : 0;
    return true;
}

/* KEYS as raftkv-node runs it (node/cmd_keyspace.c): the read's callback opens a view of the
 * store at the read's applied index (kv/view.h), the node walks it a piece per loop turn (here:
 * per tick, SIM_KEYS_PIECE_BYTES, so that a walk spans ticks, writes, pauses and crashes), and
 * the reply leaves when the walk is done (its entry in the connection's reply FIFO is held till
 * then: replyq.h); a crash drops the walk and the reply. */
#define SIM_KEYS_PIECE_BYTES 256u

struct sim_walk {
    struct sim_walk *next;
    uint64_t req_id;
    struct kv_view *view;
    uint8_t phys;
    uint64_t now_ms;
    struct sim_cop res; /* got, n_got: the keys given out so far */
    struct sim_page pg;
    bool done, failed;
};

static bool sim_walk_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                         uint32_t val_len)
{
    struct sim_walk *w = ctx;
    if (key_len < 1 || key[0] != KV_KEY_USER + w->phys)
        return true;
    uint8_t db = 0;
    const uint8_t *ukey = NULL, *uval = NULL;
    uint32_t ukey_len = 0, uval_len = 0;
    uint64_t mod = 0, deadline = 0;
    if (kv_user_record_decode(key, key_len, val, val_len, &db, &ukey, &ukey_len, &uval, &uval_len,
                              &mod, &deadline, NULL) != RK_OK)
        return true;
    if (deadline != 0 && deadline <= w->now_ms)
        return true;
    return sim_page_key(&w->pg, ukey, ukey_len);
}

static bool sim_walk_start(struct sim *s, struct replica *r, struct sim_cop *op, uint64_t req_id)
{
    if (s->scn->mix_keys == 0)
        return false;
    struct sim_node *nd = NULL;
    for (uint32_t i = 1; i <= s->n && nd == NULL; i++)
        if (s->nodes[i].up && s->nodes[i].rep == r)
            nd = &s->nodes[i];
    RK_ASSERT(nd != NULL && kv_views_is_wrapper(nd->store));
    struct sim_walk *w = xcalloc(1, sizeof(*w));
    struct rk_errmsg err = {{0}};
    if (kv_view_open(nd->store, UINT64_MAX, &w->view, &err) != RK_OK) {
        fprintf(stderr, "sim: kv_view_open: %s\n", err.text);
        abort();
    }
    w->req_id = req_id;
    w->phys = kv_db_physical(replica_kv(r), 0);
    w->now_ms = kv_read_time_ms(replica_kv(r));
    w->pg =
        (struct sim_page){.op = &w->res, .pattern = scan_patterns[op->pat], .keys = s->scn->keys};
    w->next = nd->walks;
    nd->walks = w;
    rq_hold(nd->rq, req_id); /* the reply waits for the walk, its connection's behind it */
    return true;
}

static void sim_walk_free(struct sim_walk *w)
{
    kv_view_close(w->view);
    free(w->res.got);
    free(w);
}

static void sim_walks_free(struct sim_node *nd)
{
    while (nd->walks != NULL) {
        struct sim_walk *w = nd->walks;
        nd->walks = w->next;
        sim_walk_free(w);
    }
}

/* Each KEYS walk of the node a piece; one that is done hands its keys to its op and releases
 * its place in its connection's reply FIFO (replyq.h: the reply, and those behind it, leave). */
static void sim_walks_step(struct sim *s, struct sim_node *nd)
{
    struct sim_walk **pw = &nd->walks;
    while (*pw != NULL) {
        struct sim_walk *w = *pw;
        struct rk_errmsg err = {{0}};
        bool done = false;
        if (!w->done &&
            kv_view_next(w->view, SIM_KEYS_PIECE_BYTES, 0, sim_walk_one, w, &done, &err) != RK_OK) {
            w->failed = true;
            done = true;
        }
        w->done = w->done || done;
        if (!w->done) {
            pw = &w->next;
            continue;
        }
        *pw = w->next;
        trace(s, "n%u KEYS walk done: %u keys%s", nd->id, w->res.n_got,
              w->failed ? ", failed" : "");
        uint32_t client = (uint32_t)(w->req_id >> 48);
        struct sim_client *c = &s->clients[client - 1];
        uint32_t gen = (uint32_t)(w->req_id >> 32) & 0xffffu;
        uint32_t rseq = (uint32_t)(w->req_id >> 8) & 0xffffffu;
        for (uint32_t i = 0; c->connected && gen == (c->gen & 0xffffu) && i < c->n_cops; i++) {
            struct sim_cop *op = &c->cops[i];
            if ((op->rseq & 0xffffffu) != rseq || op->op != SIM_OP_KEYS)
                continue;
            free(op->got);
            op->got = w->res.got;
            op->n_got = w->res.n_got;
            op->served = !w->failed;
            w->res.got = NULL;
        }
        rq_unhold(nd->rq, w->req_id);
        rq_flush(nd->rq);
        sim_walk_free(w);
    }
}

static void sim_on_read(void *ctx, struct replica *r, uint64_t req_id)
{
    struct sim *s = ctx;
    uint32_t client = (uint32_t)(req_id >> 48);
    if (client == 0 || client > s->scn->clients || s->scn->pipeline == 0)
        return;
    struct sim_client *c = &s->clients[client - 1];
    uint32_t gen = (uint32_t)(req_id >> 32) & 0xffffu;
    uint32_t rseq = (uint32_t)(req_id >> 8) & 0xffffffu;
    if (!c->connected || gen != (c->gen & 0xffffu))
        return; /* a broken connection's: its reply is dropped */
    uint32_t i = 0;
    while (i < c->n_cops && (c->cops[i].rseq & 0xffffffu) != rseq)
        i++;
    if (i == c->n_cops || (c->cops[i].op != SIM_OP_SCAN && c->cops[i].op != SIM_OP_KEYS))
        return;
    struct sim_cop *op = &c->cops[i];
    free(op->got);
    op->got = NULL;
    op->n_got = 0;
    struct sim_page pg = {.op = op, .pattern = scan_patterns[op->pat], .keys = s->scn->keys};
    int rc;
    if (op->op == SIM_OP_KEYS && sim_walk_start(s, r, op, req_id))
        return; /* served by the walk, over the next ticks */
    if (op->op == SIM_OP_SCAN)
        rc = replica_scan_db_range(r, 0, op->cursor, op->count, sim_page_key, &pg, &op->next);
    else
        rc = replica_scan_db(r, 0, sim_page_key, &pg);
    op->served = rc == RK_OK; /* else the node answers an error */
}

/* Sends one new op on the connection. */
static void conn_send_op(struct sim *s, struct sim_client *c)
{
    static const uint8_t plain[7] = {LIN_GET,    LIN_PUT,  LIN_DEL, LIN_INCRBY,
                                     LIN_PUT_IF, LIN_MSET, LIN_MGET};
    static const uint8_t generic[7] = {WL_TXN,    WL_WATCH, WL_EXPIRE, WL_APPEND,
                                       WL_GETDEL, WL_SETNX, WL_RENAME};
    if (c->w_state == 2) {
        conn_send_cmd(s, c, WL_EXEC);
        return;
    }
    if (c->scan_state == 1) {
        conn_send_whole(s, c, SIM_OP_SCAN);
        return;
    }
    uint32_t kind = conn_pick_kind(s);
    if (kind == SIM_MIX_KIND_SCAN && c->scan_state == 0) {
        /* A new iteration: cursor 0, a MATCH and a COUNT of 1..8. */
        c->scan_pat = (uint8_t)rnd_range(s, 0, SCAN_PATTERNS - 1);
        c->scan_count = (uint32_t)rnd_range(s, 1, 8);
        c->scan_cursor = 0;
        c->scan_t0 = s->now;
        c->n_scan_got = 0;
        conn_send_whole(s, c, SIM_OP_SCAN);
        return;
    }
    if (kind == SIM_MIX_KIND_KEYS) {
        conn_send_whole(s, c, SIM_OP_KEYS);
        return;
    }
    if (kind == SIM_MIX_KIND_BITS) {
        conn_send_cmd(s, c, WL_BITS);
        return;
    }
    if (kind == SIM_MIX_KIND_SCAN)
        kind = 0; /* a page of this connection's iteration is in flight: a GET instead */
    if (kind >= 7) {
        conn_send_cmd(s, c, generic[kind - 7]);
        return;
    }
    struct sim_creq *q = creq_new(s);
    struct sim_cop *op = &c->cops[c->n_cops];
    memset(op, 0, sizeof(*op));
    op->op = plain[kind];
    op->rseq = ++c->rseq;
    op->invoked_at = s->now;
    op->n_parts = 1;
    uint32_t key = (uint32_t)rnd_range(s, 1, s->scn->keys);
    uint32_t first = conn_group_first(s, key), n_keys = 1;
    if (op->op == LIN_MSET || op->op == LIN_MGET)
        n_keys = conn_group_size(s, first);
    uint8_t names[SCN_KEY_GROUP][16], vals[SCN_KEY_GROUP][32];
    const uint8_t *kp[SCN_KEY_GROUP], *vp[SCN_KEY_GROUP];
    uint32_t kl[SCN_KEY_GROUP], vl[SCN_KEY_GROUP];
    struct kv_pair pairs[SCN_KEY_GROUP];
    for (uint32_t j = 0; j < n_keys; j++) {
        key_name(n_keys > 1 ? first + j : key, names[j], &kl[j]);
        kp[j] = names[j];
        /* Unique integers (INCRBY can work on them), 1000 apart (INCRBY's deltas are 1..9). */
        vl[j] =
            fmt_u64((char *)vals[j], (uint64_t)(c->id * UINT64_C(1000000000000) +
                                                (s->res->ops_invoked * SCN_KEY_GROUP + j) * 1000u));
        vals[j][vl[j]] = 0; /* at most 20 digits of the 32 */
        vp[j] = vals[j];
        pairs[j] = (struct kv_pair){names[j], kl[j], vals[j], vl[j]};
    }
    bool write = op->op != LIN_GET && op->op != LIN_MGET;
    q->client = c->id;
    q->req_id = CONN_REQ_ID(c, op->rseq);
    q->client_id = c->session;
    q->node_inc = c->node_inc;
    q->seq = write ? ++c->wseq : c->wseq + 1;
    q->op = op->op;
    memcpy(q->key, names[0], kl[0]);
    q->key_len = kl[0];
    struct lin_call call = {.client = c->id, .conn = c->session, .time = s->now, .op = op->op,
                            .n_keys = n_keys, .keys = kp, .key_lens = kl, .vals = vp,
                            .val_lens = vl};
    switch (op->op) {
    case LIN_GET:
        q->rop = REPLICA_GET;
        break;
    case LIN_PUT:
        q->rop = REPLICA_PUT;
        break;
    case LIN_DEL:
        q->rop = REPLICA_DEL;
        break;
    case LIN_INCRBY:
        q->rop = REPLICA_INCRBY;
        q->delta = call.delta = (int64_t)rnd_range(s, 1, 9) * (rnd_chance(s, 0.25) ? -1 : 1);
        break;
    case LIN_PUT_IF:
        q->rop = REPLICA_PUT_IF;
        q->cond = call.cond = rnd_chance(s, 0.5) ? LIN_COND_NX : LIN_COND_XX;
        break;
    case LIN_MSET: {
        q->rop = REPLICA_MSET;
        size_t len = 0;
        int rc = kv_pairs_encode(pairs, n_keys, q->blob, sizeof(q->blob), &len);
        RK_ASSERT(rc == RK_OK);
        q->blob_len = (uint32_t)len;
        break;
    }
    default: { /* LIN_MGET: one snapshot of the group (REPLICA_MGET) */
        q->rop = REPLICA_MGET;
        op->n_parts = n_keys;
        size_t len = 0;
        int rc = replica_keys_encode(kp, kl, n_keys, q->blob, sizeof(q->blob), &len);
        RK_ASSERT(rc == RK_OK);
        q->blob_len = (uint32_t)len;
        break;
    }
    }
    if (op->op == LIN_PUT || op->op == LIN_PUT_IF) {
        memcpy(q->val, vals[0], vl[0]);
        q->val_len = vl[0];
    }
    if (s->sc != NULL && write) {
        uint32_t nums[SCN_KEY_GROUP];
        for (uint32_t j = 0; j < n_keys; j++)
            nums[j] = n_keys > 1 ? first + j : key;
        uint8_t cls = op->op == LIN_PUT || op->op == LIN_MSET ? SC_SET
                      : op->op == LIN_DEL                     ? SC_DEL
                                                              : SC_CREATE;
        op->sc_id = sc_op(s->sc, cls, nums, n_keys, s->now);
    }
    op->op_id = lin_invoke_call(s->hist, &call);
    s->res->ops_invoked++;
    c->n_cops++;
    if (c->n_cops == 1)
        c->invoked_at = s->now;
    c->busy = true;
    trace(s, "c%u invoke %s k%u on connection %u (%u in flight)", c->id, conn_op_name(op->op),
          n_keys > 1 ? first : key, c->gen, c->n_cops);
    uint64_t at = s->now + latency(s);
    at = at > c->arrive_at ? at : c->arrive_at;
    c->arrive_at = at;
    ev_push(s, at, EV_CLIENT_REQ, c->node, 0, 0, q);
    if (!c->timer_armed) {
        c->timer_armed = true;
        ev_push(s, s->now + s->scn->timeout_us, EV_CLIENT_TIMEOUT, 0, c->id, 0, NULL);
    }
}

/* EV_CLIENT_NEXT: fill the pipeline. */
static void conn_next(struct sim *s, struct sim_client *c)
{
    c->next_armed = false;
    if (s->now >= s->scn->duration_us) {
        c->done = c->n_cops == 0;
        return;
    }
    if (!c->connected)
        conn_connect(s, c);
    if (c->hop) {
        /* Between two pages of its SCAN iteration the client moves to another node, once the
         * requests it sent are answered (as a client reconnecting would). */
        if (c->n_cops > 0)
            return;
        c->hop = false;
        trace(s, "c%u leaves n%u between two SCAN pages", c->id, c->node);
        conn_break(s, c);
        conn_connect(s, c);
    }
    while (c->n_cops < s->scn->pipeline)
        conn_send_op(s, c);
}

static void conn_on_timeout(struct sim *s, struct sim_client *c)
{
    c->timer_armed = false;
    if (c->n_cops == 0)
        return;
    uint64_t deadline = c->cops[0].invoked_at + s->scn->timeout_us;
    if (s->now < deadline) {
        c->timer_armed = true;
        ev_push(s, deadline, EV_CLIENT_TIMEOUT, 0, c->id, 0, NULL);
        return;
    }
    trace(s, "c%u connection %u times out", c->id, c->gen);
    conn_break(s, c);
    conn_arm_next(s, c);
}

/* A SCAN page or KEYS answered OK: the page's keys join the iteration, which ends after the
 * page whose next cursor is 0 (then the checker gets it); KEYS goes to the checker at once,
 * with DBSIZE as the replica counted it at the same index (the reply's num). */
static void conn_whole_done(struct sim *s, struct sim_client *c, const struct sim_cop *op,
                            uint64_t dbsize)
{
    if (op->op == SIM_OP_KEYS) {
        sc_read(s->sc, "keys", c->id, op->invoked_at, s->now, scan_patterns[op->pat], op->got,
                op->n_got, dbsize);
        return;
    }
    uint32_t need = c->n_scan_got + op->n_got;
    if (need > c->cap_scan_got) {
        c->cap_scan_got = need * 2;
        c->scan_got = xrealloc(c->scan_got, c->cap_scan_got * sizeof(*c->scan_got));
    }
    if (op->n_got > 0)
        memcpy(c->scan_got + c->n_scan_got, op->got, op->n_got * sizeof(*op->got));
    c->n_scan_got = need;
    trace(s, "c%u scan page: %u keys, next cursor %" PRIu64, c->id, op->n_got, op->next);
    if (op->next == 0) {
        sc_read(s->sc, "scan", c->id, c->scan_t0, s->now, scan_patterns[c->scan_pat],
                c->scan_got, c->n_scan_got, UINT64_MAX);
        c->scan_state = 0;
        return;
    }
    c->scan_cursor = op->next;
    c->scan_state = 1;
    c->hop = rnd_chance(s, 1.0 / 3);
}

/* A reply on the connection: ends its op. */
static void conn_on_reply(struct sim *s, const struct sim_crep *r)
{
    struct sim_client *c = &s->clients[r->client - 1];
    uint32_t gen = (uint32_t)(r->req_id >> 32) & 0xffffu;
    uint32_t rseq = (uint32_t)(r->req_id >> 8) & 0xffffffu;
    trace(s, "n%u -> c%u %s (connection %u request %u)", r->node, r->client,
          replica_status_name(r->status), gen, rseq);
    if (!c->connected || gen != (c->gen & 0xffffu))
        return; /* a broken connection's */
    uint32_t i = 0;
    while (i < c->n_cops && (c->cops[i].rseq & 0xffffffu) != rseq)
        i++;
    if (i != 0) {
        /* Exactly one reply per request, in the order they were sent (node/server.h N3). */
        fail(s, SIM_FAIL_SAFETY,
             "reply order: n%u's reply to client %u's request %u on connection %u %s (its "
             "oldest request in flight is %u)",
             r->node, r->client, rseq, gen,
             i == c->n_cops ? "answers nothing in flight (a second reply?)"
                            : "overtakes an earlier request's",
             c->n_cops > 0 ? c->cops[0].rseq & 0xffffffu : 0);
        return;
    }
    struct sim_cop *op = &c->cops[i];
    bool write = !conn_is_read(op->op);
    struct lin_return ret = {.num = r->num};
    if ((op->op == SIM_OP_SCAN || op->op == SIM_OP_KEYS) && r->status == REPLICA_OK &&
        op->served) {
        conn_whole_done(s, c, op, (uint64_t)r->num);
        conn_complete(s, c, i, LIN_OK, &ret);
        conn_arm_next(s, c);
        return;
    }
    if (op->op == SIM_OP_SCAN || op->op == SIM_OP_KEYS) {
        conn_complete(s, c, i, LIN_FAIL, NULL); /* not served: an error, or no answer */
        conn_arm_next(s, c);
        return;
    }
    bool cmd = op->op == LIN_CMD || op->op == LIN_CMD_READ;
    switch (r->status) {
    case REPLICA_OK:
    case REPLICA_NOT_FOUND:
        if (cmd) {
            ret.res = r->val;
            ret.res_len = r->val_len;
            if (op->wl == WL_WATCH) {
                bool ok =
                    wl_watch_parse(r->val, r->val_len, conn_group_size(s, c->w_first), &c->w_seen);
                RK_ASSERT(ok);
                c->w_state = c->w_gen == c->gen ? 2 : 0;
                if (c->w_state == 0)
                    *conn_wslot(s, c->w_first, c->w_slot) = 0;
            }
            conn_complete(s, c, i, LIN_OK, &ret);
            break;
        }
        /* The values as the reply has them (lincheck copies them), whatever their length
         * (APPEND and SETRANGE make long ones). */
        const uint8_t *vals[SCN_KEY_GROUP] = {NULL};
        if (op->op == LIN_MGET) {
            /* One snapshot of the group: the values of every key at one index. */
            struct replica_mget_iter it;
            replica_mget_begin(&it, r->val, r->val_len);
            for (uint32_t j = 0; j < op->n_parts; j++) {
                bool ok = replica_mget_next(&it, &op->found[j], &vals[j], &op->val_lens[j]);
                RK_ASSERT(ok);
            }
        } else if (op->op == LIN_GET) {
            op->found[0] = r->status == REPLICA_OK;
            op->val_lens[0] = r->val_len;
            vals[0] = r->val;
        }
        if (op->op == LIN_GET || op->op == LIN_MGET) {
            ret.n_vals = op->n_parts;
            ret.found = op->found;
            ret.vals = vals;
            ret.val_lens = op->val_lens;
            conn_complete(s, c, i, LIN_OK, &ret);
        } else {
            conn_complete(s, c, i, LIN_OK, &ret);
        }
        break;
    case REPLICA_ERROR:
        if (op->op == LIN_INCRBY && r->not_integer) {
            ret.error = true;
            conn_complete(s, c, i, LIN_OK, &ret);
        } else {
            conn_complete(s, c, i, LIN_FAIL, NULL); /* refused: nothing written */
        }
        break;
    case REPLICA_TIMEOUT:
        conn_complete(s, c, i, write ? LIN_UNKNOWN : LIN_FAIL, NULL);
        break;
    default: /* TRYAGAIN: not executed */
        conn_complete(s, c, i, LIN_FAIL, NULL);
        break;
    }
    conn_arm_next(s, c);
}

/* A connection's request reaches its node. */
static void conn_submit(struct sim *s, struct sim_node *nd, const struct sim_creq *q)
{
    struct replica_request req = {
        .req_id = q->req_id,
        .op = q->rop,
        .client_id = q->client_id,
        .seq = q->seq,
        .key = q->key,
        .key_len = q->key_len,
        .cond = q->cond,
        .delta = q->delta,
    };
    if (q->rop == REPLICA_PUT || q->rop == REPLICA_PUT_IF) {
        req.val = q->val;
        req.val_len = q->val_len;
    }
    if (q->rop == REPLICA_MSET || q->rop == REPLICA_MGET || q->rop == REPLICA_CMD) {
        req.key_len = 0;
        req.val = q->blob;
        req.val_len = q->blob_len;
    }
    /* As the node's (server_cmd): wl_build's kv_cmd2_encode made it, so it is decoded once, at
     * apply (replica_request.encoded). */
    req.encoded = q->rop == REPLICA_CMD;
    /* Its entry in the connection's reply FIFO, in the order the node reads requests. */
    const struct sim_client *c = &s->clients[q->client - 1];
    rq_arrive(nd->rq, q->client_id, q->req_id, nd->ticks,
              !c->connected || c->session != q->client_id);
    replica_submit(nd->rep, &req);
    drain(s, nd);
}

static void conn_submit(struct sim *s, struct sim_node *nd, const struct sim_creq *q);

static void on_client_req(struct sim *s, struct sim_node *nd, struct event *e)
{
    struct sim_creq *q = e->payload;
    trace(s, "c%u -> n%u %s %.*s seq %" PRIu64 " attempt %u%s", q->client, nd->id,
          conn_op_name(q->op),
          (int)q->key_len, (const char *)q->key, q->seq, q->attempt,
          nd->up ? "" : " (node down: lost)");
    if (q->req_id != 0) {
        /* A connection's: one that reached a node down, or made to an earlier incarnation of
         * it, is reset (TCP): this request and every later one on it are lost (the client
         * times out), so none of them reaches a restarted node out of order. */
        struct sim_client *c = &s->clients[q->client - 1];
        if (!nd->up || q->node_inc != nd->incarnation || q->client_id == c->dead_session) {
            c->dead_session = q->client_id;
            trace(s, "c%u's connection to n%u was reset: request lost", q->client, nd->id);
            return;
        }
    }
    if (!nd->up)
        return; /* lost: the client times out */
    if (nd->paused) {
        node_hold(nd, e);
        e->payload = NULL;
        return;
    }
    if (q->req_id != 0) {
        conn_submit(s, nd, q);
        return;
    }
    struct replica_request req = {
        .req_id = (uint64_t)q->client << 48 | (q->seq & 0xffffffffu) << 16 | q->attempt,
        .op = q->op == LIN_GET   ? REPLICA_GET
              : q->op == LIN_PUT ? REPLICA_PUT
                                 : REPLICA_DEL,
        .client_id = q->client,
        .seq = q->seq,
        .key = q->key,
        .key_len = q->key_len,
        .val = q->val,
        .val_len = q->op == LIN_PUT ? q->val_len : 0,
    };
    replica_submit(nd->rep, &req);
    drain(s, nd);
}

/* ------------------------------------------------------------------------------------------ */
/* Scenario steps and chaos                                                                   */

static void shuffle(struct sim *s, uint32_t *v, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)rnd_range(s, 0, i - 1);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Resolves a set to node ids; returns the count (0: nothing to do, e.g. no leader). */
static uint32_t resolve(struct sim *s, const struct scn_set *set, uint32_t *out)
{
    uint32_t all[SCN_MAX_NODES];
    for (uint32_t i = 0; i < s->n; i++)
        all[i] = i + 1;
    switch (set->kind) {
    case SCN_SET_IDS:
        memcpy(out, set->ids, set->n_ids * sizeof(*out));
        return set->n_ids;
    case SCN_SET_LEADER: {
        uint32_t l = current_leader(s);
        out[0] = l;
        return l != 0;
    }
    case SCN_SET_FOLLOWER: {
        uint32_t l = current_leader(s), n = 0;
        for (uint32_t i = 1; i <= s->n; i++) {
            if (i != l)
                all[n++] = i;
        }
        if (n == 0)
            return 0;
        out[0] = all[rnd_range(s, 0, n - 1)];
        return 1;
    }
    case SCN_SET_RANDOM:
        out[0] = (uint32_t)rnd_range(s, 1, s->n);
        return 1;
    case SCN_SET_RANDOM_MINORITY:
    case SCN_SET_RANDOM_MAJORITY: {
        uint32_t k = set->kind == SCN_SET_RANDOM_MINORITY ? (s->n - 1) / 2 : s->n / 2 + 1;
        shuffle(s, all, s->n);
        memcpy(out, all, k * sizeof(*out));
        return k;
    }
    case SCN_SET_ALL:
        memcpy(out, all, s->n * sizeof(*out));
        return s->n;
    }
    return 0;
}

/* The nodes not in ids[0..n): into out, returns the count. */
static uint32_t complement(const struct sim *s, const uint32_t *ids, uint32_t n, uint32_t *out)
{
    uint32_t k = 0;
    for (uint32_t i = 1; i <= s->n; i++) {
        bool in = false;
        for (uint32_t j = 0; j < n; j++)
            in |= ids[j] == i;
        if (!in)
            out[k++] = i;
    }
    return k;
}

static void heal(struct sim *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
    s->avail_dirty = true;
}

/* Nodes in different groups cannot talk; nodes in no group form one more group. */
static void apply_partition(struct sim *s, const struct scn_step *st)
{
    uint32_t group[SCN_MAX_NODES + 1];
    for (uint32_t i = 0; i <= s->n; i++)
        group[i] = UINT32_MAX;
    uint32_t rest_group = UINT32_MAX;
    if (st->n_groups == 0) { /* random halves */
        uint32_t all[SCN_MAX_NODES];
        for (uint32_t i = 0; i < s->n; i++)
            all[i] = i + 1;
        shuffle(s, all, s->n);
        uint32_t cut = (uint32_t)rnd_range(s, 1, s->n > 1 ? s->n - 1 : 1);
        for (uint32_t i = 0; i < s->n; i++)
            group[all[i]] = i < cut ? 0 : 1;
    } else {
        for (uint32_t g = 0; g < st->n_groups; g++) {
            if (st->groups[g].kind == SCN_SET_REST) {
                rest_group = g;
                continue;
            }
            uint32_t ids[SCN_MAX_NODES];
            uint32_t k = resolve(s, &st->groups[g], ids);
            for (uint32_t i = 0; i < k; i++) {
                if (group[ids[i]] == UINT32_MAX)
                    group[ids[i]] = g;
            }
        }
    }
    for (uint32_t i = 1; i <= s->n; i++) {
        if (group[i] == UINT32_MAX)
            group[i] = rest_group != UINT32_MAX ? rest_group : SCN_MAX_GROUPS;
    }
    heal(s);
    for (uint32_t a = 1; a <= s->n; a++) {
        for (uint32_t b = 1; b <= s->n; b++)
            s->blocked[a][b] = group[a] != group[b];
    }
    if (s->opt->trace) {
        char buf[128];
        size_t len = 0;
        for (uint32_t i = 1; i <= s->n && len < sizeof(buf) - 16; i++)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, " n%u:%u", i, group[i]);
        trace(s, "partition groups%s", buf);
    }
}

static void for_each_node(struct sim *s, const struct scn_set *set,
                          void (*fn)(struct sim *, struct sim_node *))
{
    uint32_t ids[SCN_MAX_NODES];
    uint32_t k = resolve(s, set, ids);
    if (k == 0)
        trace(s, "step skipped: no such node now");
    for (uint32_t i = 0; i < k; i++)
        fn(s, &s->nodes[ids[i]]);
}

static void set_skew(struct sim *s, struct sim_node *nd, double rate)
{
    wall_update(s, nd);
    nd->rate = rate;
    trace(s, "n%u clock rate %.3f", nd->id, rate);
}

/* ------------------------------------------------------------------------------------------ */
/* Membership changes (core/raft/MEMBERSHIP.md), as an operator makes them                    */

#define SIM_MEMBER_PATIENCE_US 10000000 /* a change not taken within 10 s is dropped */

static const char *member_op_name(uint8_t op)
{
    return op == REPLICA_MEMBER_ADD_LEARNER ? "add"
           : op == REPLICA_MEMBER_PROMOTE   ? "promote"
           : op == REPLICA_MEMBER_SET_ADDR  ? "update"
                                            : "remove";
}

/* Queues a change; the leader takes it at its next tick (member_try). */
static void member_queue(struct sim *s, uint8_t op, uint32_t id)
{
    if (s->n_mreq == sizeof(s->mreq) / sizeof(s->mreq[0])) {
        trace(s, "membership: %s n%u dropped (queue full)", member_op_name(op), id);
        return;
    }
    s->mreq[s->n_mreq].op = op;
    s->mreq[s->n_mreq].id = id;
    s->mreq[s->n_mreq].since = s->now;
    s->n_mreq++;
    trace(s, "membership: %s n%u queued", member_op_name(op), id);
}

static void member_pop(struct sim *s)
{
    memmove(s->mreq, s->mreq + 1, (s->n_mreq - 1) * sizeof(s->mreq[0]));
    s->n_mreq--;
}

/* A node that was a member once joins again as a new node: an empty disk, no configuration
 * (as `raftkv-node --join` on a wiped directory). Only once its removal is committed. */
static void member_rejoin(struct sim *s, struct sim_node *nd)
{
    bool was_up = nd->up;
    node_crash(s, nd);
    wipe_disk(nd->logdisk);
    wipe_disk(nd->disk);
    nd->wiped = true;
    nd->joiner = true;
    nd->ever_member = false;
    trace(s, "n%u: new empty disk, to join again", nd->id);
    if (s->tl != NULL)
        tl_mark(s->tl, s->now, nd->id, "new empty disk, to join again");
    if (was_up)
        node_restart(s, nd);
}

/* The leader nd takes the first queued change: done, retried at its next tick while refused
 * for now (another change uncommitted, no entry of its term committed yet), or dropped. */
static void member_try(struct sim *s, struct sim_node *nd)
{
    if (!nd->up || nd->paused)
        return;
    struct raft_status st;
    raft_status(replica_raft(nd->rep), &st);
    if (st.role != RAFT_LEADER)
        return;
    if (s->n_mreq == 0 && s->scn->members != 0 && st.conf_index <= st.commit) {
        /* An operator who moved a node checks `member list` and runs `member update` again
         * until the configuration records its address (the entry may have been cut). */
        const struct raft_conf *c = raft_conf_view(replica_raft(nd->rep));
        for (uint32_t i = 0; i < c->n_addrs; i++) {
            uint32_t id = (uint32_t)c->addrs[i].id;
            if (id == 0 || id > s->n || s->nodes[id].addr_gen == 0)
                continue;
            struct raft_member_addr now;
            sim_member_addr(id, s->nodes[id].addr_gen, &now);
            if (strcmp(now.peer, c->addrs[i].peer) != 0) {
                member_queue(s, REPLICA_MEMBER_SET_ADDR, id);
                break;
            }
        }
    }
    if (s->n_mreq == 0)
        return;
    uint8_t op = s->mreq[0].op;
    uint32_t id = s->mreq[0].id;
    if (s->now - s->mreq[0].since > SIM_MEMBER_PATIENCE_US) {
        trace(s, "membership: %s n%u dropped (not taken within 10s)", member_op_name(op), id);
        member_pop(s);
        return;
    }
    struct sim_node *t = &s->nodes[id];
    if (op == REPLICA_MEMBER_ADD_LEARNER && t->ever_member &&
        !(node_conf_mask(nd, true) >> id & 1)) {
        if (st.conf_index > st.commit)
            return; /* its removal is not committed yet */
        member_rejoin(s, t);
    }
    uint64_t index = 0, leader = 0;
    struct raft_member_addr addr;
    sim_member_addr(id, t->addr_gen, &addr); /* ADD and UPDATE record it */
    int rc = replica_member_change_addr(nd->rep, op, &addr, &index, &leader);
    drain(s, nd);
    if (rc == RK_EBUSY || rc == RK_ENOTLEADER)
        return;
    trace(s, "membership: n%u %s n%u: %s (index %" PRIu64 ")", nd->id, member_op_name(op), id,
          rc == RK_OK ? "proposed" : rk_strerror(rc), index);
    if (rc == RK_OK && op == REPLICA_MEMBER_ADD_LEARNER)
        t->ever_member = true;
    if (rc == RK_OK && s->tl != NULL) {
        char m[64];
        snprintf(m, sizeof(m), "%s n%u", member_op_name(op), id);
        tl_mark(s->tl, s->now, nd->id, m);
    }
    member_pop(s);
}

/* `chaos member`: one random change, when none is waiting: add a node outside the
 * configuration, promote a learner, remove a voter (while more than 3 remain; the leader too)
 * or a learner, or move a member to a new address (as `move N`). */
static void member_move(struct sim *s, struct sim_node *nd);

static void chaos_member(struct sim *s)
{
    uint32_t l = current_leader(s);
    if (l == 0 || s->n_mreq > 0)
        return;
    uint32_t voters = node_conf_mask(&s->nodes[l], false);
    uint32_t members = node_conf_mask(&s->nodes[l], true);
    uint32_t learners = members & ~voters;
    uint32_t outside = 0;
    for (uint32_t i = 1; i <= s->n; i++)
        outside |= members >> i & 1 ? 0 : 1u << i;
    uint32_t removable = learners | (__builtin_popcount(voters) > 3 ? voters : 0);
    uint32_t pick = (uint32_t)rnd_range(s, 0, 3);
    const uint32_t sets[4] = {outside, learners, removable, members};
    const uint8_t ops[3] = {REPLICA_MEMBER_ADD_LEARNER, REPLICA_MEMBER_PROMOTE,
                            REPLICA_MEMBER_REMOVE};
    for (uint32_t k = 0; k < 4; k++) {
        uint32_t which = (pick + k) % 4, set = sets[which];
        if (set == 0)
            continue;
        uint32_t nth = (uint32_t)rnd_range(s, 0, (uint64_t)__builtin_popcount(set) - 1);
        for (uint32_t i = 1; i <= s->n; i++) {
            if ((set >> i & 1) && nth-- == 0) {
                if (which == 3)
                    member_move(s, &s->nodes[i]);
                else
                    member_queue(s, ops[which], i);
                return;
            }
        }
    }
}

/* `move N`: the node restarts at its next address (its disk kept, as a process restarted on
 * another port), and the operator records the address (RAFTKV.MEMBER UPDATE). Until a
 * node's configuration records it, that node cannot reach it (sim_route_ok). */
static void member_move(struct sim *s, struct sim_node *nd)
{
    bool was_up = nd->up;
    if (was_up)
        node_crash(s, nd);
    nd->addr_gen++;
    s->route_watch = true;
    s->moved = true;
    s->avail_dirty = true;
    trace(s, "n%u moves to its address generation %u", nd->id, nd->addr_gen);
    if (s->tl != NULL)
        tl_mark(s->tl, s->now, nd->id, "moved to a new address");
    if (was_up)
        node_restart(s, nd);
    member_queue(s, REPLICA_MEMBER_SET_ADDR, nd->id);
}

static void member_step(struct sim *s, const struct scn_step *st, uint8_t op)
{
    uint32_t ids[SCN_MAX_NODES];
    uint32_t k = resolve(s, &st->groups[0], ids);
    if (k == 0)
        trace(s, "step skipped: no such node now");
    for (uint32_t i = 0; i < k; i++)
        member_queue(s, op, ids[i]);
}

static void run_step(struct sim *s, const struct scn_step *st)
{
    uint32_t a[SCN_MAX_NODES], b[SCN_MAX_NODES];
    uint32_t na, nb;
    switch (st->action) {
    case SCN_PARTITION:
        apply_partition(s, st);
        break;
    case SCN_ONEWAY:
        s->avail_dirty = true;
        if (st->groups[0].kind == SCN_SET_REST) {
            nb = resolve(s, &st->groups[1], b);
            na = complement(s, b, nb, a);
        } else {
            na = resolve(s, &st->groups[0], a);
            nb = st->groups[1].kind == SCN_SET_REST ? complement(s, a, na, b)
                                                    : resolve(s, &st->groups[1], b);
        }
        for (uint32_t i = 0; i < na; i++) {
            for (uint32_t j = 0; j < nb; j++) {
                if (a[i] != b[j])
                    s->blocked[a[i]][b[j]] = true;
            }
        }
        trace(s, "oneway cut (%u -> %u nodes)", na, nb);
        break;
    case SCN_ISOLATE:
        s->avail_dirty = true;
        na = resolve(s, &st->groups[0], a);
        for (uint32_t i = 0; i < na; i++) {
            for (uint32_t j = 1; j <= s->n; j++) {
                if (j != a[i]) {
                    s->blocked[a[i]][j] = true;
                    s->blocked[j][a[i]] = true;
                }
            }
            trace(s, "n%u isolated", a[i]);
        }
        break;
    case SCN_HEAL:
        heal(s);
        trace(s, "heal");
        break;
    case SCN_CRASH:
        for_each_node(s, &st->groups[0], node_crash_step);
        break;
    case SCN_RESTART:
        for_each_node(s, &st->groups[0], node_restart);
        break;
    case SCN_PAUSE:
        for_each_node(s, &st->groups[0], node_pause);
        break;
    case SCN_RESUME:
        for_each_node(s, &st->groups[0], node_resume);
        break;
    case SCN_SKEW:
        na = resolve(s, &st->groups[0], a);
        for (uint32_t i = 0; i < na; i++)
            set_skew(s, &s->nodes[a[i]], st->factor);
        break;
    case SCN_ADD:
        member_step(s, st, REPLICA_MEMBER_ADD_LEARNER);
        break;
    case SCN_PROMOTE:
        member_step(s, st, REPLICA_MEMBER_PROMOTE);
        break;
    case SCN_REMOVE:
        member_step(s, st, REPLICA_MEMBER_REMOVE);
        break;
    case SCN_MOVE:
        for_each_node(s, &st->groups[0], member_move);
        break;
    case SCN_SET_NET:
        switch (st->param) {
        case SCN_NET_DROP:
            s->drop = st->factor;
            break;
        case SCN_NET_DUPLICATE:
            s->duplicate = st->factor;
            break;
        case SCN_NET_REORDER:
            s->reorder = st->factor;
            break;
        case SCN_NET_LATENCY_MIN:
            s->latency_min = (uint64_t)st->factor;
            break;
        case SCN_NET_LATENCY_MAX:
            s->latency_max = (uint64_t)st->factor;
            break;
        }
        if (s->latency_max < s->latency_min)
            s->latency_max = s->latency_min;
        trace(s,
              "network: drop %.3f duplicate %.3f reorder %.3f latency %" PRIu64 "..%" PRIu64 "us",
              s->drop, s->duplicate, s->reorder, s->latency_min, s->latency_max);
        break;
    }
}

enum chaos_kind {
    CHAOS_CRASH = 0,
    CHAOS_PARTITION,
    CHAOS_PAUSE,
    CHAOS_SKEW,
    CHAOS_MEMBER,
    CHAOS_KINDS
};

static double chaos_rate(const struct sim *s, int kind)
{
    switch (kind) {
    case CHAOS_CRASH:
        return s->chaos.crash_per_s;
    case CHAOS_PARTITION:
        return s->chaos.partition_per_s;
    case CHAOS_PAUSE:
        return s->chaos.pause_per_s;
    case CHAOS_MEMBER:
        return s->chaos.member_per_s;
    default:
        return s->chaos.skew_per_s;
    }
}

static void chaos_schedule(struct sim *s, int kind)
{
    double rate = chaos_rate(s, kind);
    if (rate <= 0)
        return;
    /* Exponential inter-arrival times: a Poisson process of `rate` events per second. */
    double u = rnd_unit(s);
    double wait_s = -log(1.0 - u) / rate;
    if (wait_s > 1e6)
        wait_s = 1e6;
    ev_push(s, s->now + 1 + (uint64_t)(wait_s * 1e6), EV_CHAOS, 0, (uint64_t)kind, 0, NULL);
}

static void chaos_member(struct sim *s);

/* A crash point inside a staged snapshot install (bitcask.h, STAGED REPLACEMENT): with disk
 * crash points on, a third of the switches taken get the node killed at one of the store's next
 * few disk calls — the outputs' last syncs, the MERGE commit, the renames, the loading, the
 * removals — so that both outcomes of recovery (the old store, the new one) are reached. */
static void store_switch_crash_point(struct sim *s, struct sim_node *nd)
{
    trace(s, "n%u store: a staged snapshot's switch queued", nd->id);
    /* While faults are on only (settle restarts every node once; a crash after it would not
     * be undone), and restarted as a chaos crash is. */
    if (!s->chaos_on || !s->scn->disk.crashpoints || nd->dying || !rnd_chance(s, 0.33))
        return;
    struct simdisk_faults f = disk_faults(s, nd);
    f.crash_at_call = rnd_range(s, 1, 40);
    simdisk_set_faults(nd->disk, &f);
    nd->dying = true;
    s->avail_dirty = true;
    trace(s, "n%u will crash at store disk call %" PRIu64 " (in a snapshot's switch)", nd->id,
          f.crash_at_call);
    ev_push(s, s->now + 100000, EV_DIE, nd->id, nd->start_gen, 0, NULL);
    uint64_t down = rnd_range(s, s->chaos.downtime_us_min, s->chaos.downtime_us_max);
    ev_push(s, s->now + 100000 + down, EV_CHAOS_UNDO, nd->id, CHAOS_CRASH, 0, NULL);
}

static void on_chaos(struct sim *s, int kind)
{
    if (!s->chaos_on)
        return;
    if (kind == CHAOS_MEMBER) {
        chaos_member(s);
        chaos_schedule(s, kind);
        return;
    }
    uint32_t victim = (uint32_t)rnd_range(s, 1, s->n);
    struct sim_node *nd = &s->nodes[victim];
    uint64_t down = rnd_range(s, s->chaos.downtime_us_min, s->chaos.downtime_us_max);
    switch (kind) {
    case CHAOS_CRASH:
        node_crash_step(s, nd);
        break;
    case CHAOS_PARTITION: {
        struct scn_step st = {.action = SCN_PARTITION, .n_groups = 0};
        apply_partition(s, &st);
        break;
    }
    case CHAOS_PAUSE:
        node_pause(s, nd);
        break;
    case CHAOS_SKEW:
        set_skew(s, nd, 0.5 + 1.5 * rnd_unit(s));
        break;
    }
    ev_push(s, s->now + down, EV_CHAOS_UNDO, victim, (uint64_t)kind, 0, NULL);
    chaos_schedule(s, kind);
}

static void on_chaos_undo(struct sim *s, int kind, struct sim_node *nd)
{
    switch (kind) {
    case CHAOS_CRASH:
        node_restart(s, nd);
        break;
    case CHAOS_PARTITION:
        heal(s);
        trace(s, "heal");
        break;
    case CHAOS_PAUSE:
        node_resume(s, nd);
        break;
    case CHAOS_SKEW:
        set_skew(s, nd, 1.0);
        break;
    }
}

/* The last fault heals: every node runs, the network is whole, chaos stops. */
static void on_settle(struct sim *s)
{
    trace(s, "settle: heal, restart and resume everything");
    s->chaos_on = false;
    s->disk_faults = false;
    if (s->tl != NULL)
        tl_disk_faults(s->tl, s->now, false);
    heal(s);
    for (uint32_t i = 1; i <= s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        if (nd->dying)
            node_crash(s, nd);
        if (nd->up)
            disk_faults_on(s, nd);
        node_restart(s, nd);
        node_resume(s, nd);
    }
    s->leader_seen_at = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Availability (sim/README.md "Availability")                                                 */

static bool node_healthy(const struct sim_node *nd)
{
    return nd->up && !nd->paused && !nd->dying;
}

static bool connected(const struct sim *s, uint32_t a, uint32_t b)
{
    return a == b || (!s->blocked[a][b] && !s->blocked[b][a] && sim_route_ok(s, a, b));
}

/* The largest set of healthy nodes that can all talk to each other both ways, if it is a
 * majority of the cluster: its bit mask, else 0. n <= 9: every subset is tried (512 at most),
 * and this runs only when something changed. */
static uint32_t healthy_majority(const struct sim *s)
{
    uint32_t healthy = 0;
    for (uint32_t i = 1; i <= s->n; i++) {
        if (node_healthy(&s->nodes[i]))
            healthy |= 1u << i;
    }
    uint32_t best = 0, best_n = 0;
    for (uint32_t m = healthy; m != 0; m = (m - 1) & healthy) {
        uint32_t k = (uint32_t)__builtin_popcount(m);
        if (k <= best_n ||
            (uint32_t)__builtin_popcount(m & s->voters_mask) < majority_of(s->voters_mask))
            continue;
        bool clique = true;
        for (uint32_t a = 1; a <= s->n && clique; a++) {
            for (uint32_t b = a + 1; b <= s->n && clique; b++) {
                if ((m >> a & 1) && (m >> b & 1) && !connected(s, a, b))
                    clique = false;
            }
        }
        if (clique) {
            best = m;
            best_n = k;
        }
    }
    return best;
}

/* A usable leader: a healthy node that leads and can talk both ways with a majority of the
 * cluster's healthy nodes (itself included), so it can commit and answer. */
static bool usable_leader(const struct sim *s)
{
    for (uint32_t l = 1; l <= s->n; l++) {
        const struct sim_node *nd = &s->nodes[l];
        if (!node_healthy(nd) || nd->role != RAFT_LEADER)
            continue;
        uint32_t k = 0, voters = node_conf_mask(nd, false);
        for (uint32_t j = 1; j <= s->n; j++)
            k += (voters >> j & 1) && node_healthy(&s->nodes[j]) && connected(s, l, j);
        if (k >= majority_of(voters))
            return true;
    }
    return false;
}

static void avail_check_pending(struct sim *s);

/* --timeline: every node's state, term and reach now (timeline.c keeps changes only). */
static void tl_sample(struct sim *s)
{
    for (uint32_t i = 1; i <= s->n; i++) {
        const struct sim_node *nd = &s->nodes[i];
        uint8_t state = !nd->up                          ? TL_DOWN
                        : nd->paused                     ? TL_PAUSED
                        : nd->dying                      ? TL_DYING
                        : nd->role == RAFT_LEADER        ? TL_LEADER
                        : nd->role == RAFT_CANDIDATE     ? TL_CANDIDATE
                        : nd->role == RAFT_PRE_CANDIDATE ? TL_PRE_CANDIDATE
                                                         : TL_FOLLOWER;
        uint32_t reach = 0;
        for (uint32_t j = 1; nd->up && j <= s->n; j++)
            reach += (j == i || node_healthy(&s->nodes[j])) && connected(s, i, j);
        tl_node(s->tl, s->now, i, state, nd->up ? nd->term : 0, reach);
    }
}

/* Closes the current interval of the unavailability figure and opens the next. */
static void avail_update(struct sim *s)
{
    s->avail_dirty = false;
    if (s->ended)
        return;
    if (s->unavailable)
        s->unavailable_us += s->now - s->avail_changed_at;
    s->avail_changed_at = s->now;
    uint32_t mask = healthy_majority(s);
    bool healthy = mask != 0;
    if (s->healthy && !healthy && s->scn->expect_available_us > 0)
        avail_check_pending(s); /* ops that overran while it was healthy */
    /* The clock of `expect available` restarts when the majority loses a member: an op sent to
     * the node that left must wait for its client's timeout. A node that joins changes
     * nothing. */
    if (healthy && (!s->healthy || (mask & s->healthy_mask) != s->healthy_mask))
        s->healthy_since = s->now;
    s->healthy = healthy;
    s->healthy_mask = mask;
    s->unavailable = healthy && !usable_leader(s);
}

static const char *op_name(uint8_t op)
{
    return op == LIN_GET ? "get" : op == LIN_PUT ? "put" : "del";
}

/* `expect available within D`: an op invoked while a healthy majority existed, which has
 * existed ever since, is answered within D. Checked when the op completes, when the majority
 * is lost, and at the end. */
static void avail_check_op(struct sim *s, const struct sim_client *c)
{
    uint64_t d = s->scn->expect_available_us;
    if (d == 0 || !c->busy || !s->healthy || s->healthy_since > c->invoked_at ||
        s->now - c->invoked_at <= d || s->ended)
        return;
    char nodes[64];
    size_t len = 0;
    nodes[0] = '\0';
    for (uint32_t i = 1; i <= s->n && len < sizeof(nodes) - 8; i++) {
        if (s->healthy_mask >> i & 1)
            len += (size_t)snprintf(nodes + len, sizeof(nodes) - len, " n%u", i);
    }
    if (s->tl != NULL && !s->failed)
        tl_highlight(s->tl, c->id, c->invoked_at, 0);
    fail(s, SIM_FAIL_LIVENESS,
         "availability: client %u's %s k%u (invoked at %" PRIu64 "ms) not answered within %" PRIu64
         "ms although a healthy majority (%s) was connected from %" PRIu64 "ms on",
         c->id, op_name(c->op), c->key, c->invoked_at / 1000, d / 1000, nodes + 1,
         s->healthy_since / 1000);
}

/* After each tick of nd (connection clients): every request it received has its replica's
 * reply by the request timeout (replyq.h), whether or not the cluster is available: a reply
 * dropped on a leadership change fails here, not as one more client timeout. */
static void check_replies(struct sim *s, struct sim_node *nd)
{
    if (s->scn->pipeline == 0 || !nd->up)
        return;
    uint64_t ticks = s->scn->timeout_us / s->scn->tick_us; /* node_start's request timeout */
    char why[512];
    if (!rq_check(nd->rq, nd->ticks, ticks < 1 ? 1 : ticks, why, sizeof(why)))
        fail(s, SIM_FAIL_LIVENESS, "lost reply: n%u: %s", nd->id, why);
}

static void avail_check_pending(struct sim *s)
{
    for (uint32_t i = 0; i < s->scn->clients && !s->failed; i++)
        avail_check_op(s, &s->clients[i]);
}

/* `expect stepdown within N elections`, after each tick of nd: a leader cut off from a
 * majority (it cannot exchange messages with enough healthy nodes, itself included) must stop
 * leading within N maximum election timeouts, counted in its own ticks (so a skewed clock or a
 * pause does not make it look slow). CheckQuorum is what makes this hold (thesis §6.2). */
static void check_stepdown(struct sim *s, struct sim_node *nd)
{
    if (!nd->up || nd->role != RAFT_LEADER) {
        nd->cutoff_tick = 0;
        return;
    }
    uint32_t k = 0, voters = node_conf_mask(nd, false);
    for (uint32_t j = 1; j <= s->n; j++)
        k += (voters >> j & 1) && node_healthy(&s->nodes[j]) && connected(s, nd->id, j);
    if (k >= majority_of(voters)) {
        nd->cutoff_tick = 0;
        return;
    }
    if (nd->cutoff_tick == 0) {
        nd->cutoff_tick = nd->ticks;
        return;
    }
    uint64_t limit = (uint64_t)s->scn->expect_stepdown_elections * s->scn->election_ticks_max;
    if (nd->ticks - nd->cutoff_tick > limit)
        fail(s, SIM_FAIL_LIVENESS,
             "stepdown: n%u still leads term %" PRIu64 " %" PRIu64 " ticks after it was cut off "
             "from a majority (it reaches %u of its %u voters); the bound is %u elections (%" PRIu64
             " ticks)",
             nd->id, nd->term, nd->ticks - nd->cutoff_tick, k, (uint32_t)__builtin_popcount(voters),
             s->scn->expect_stepdown_elections, limit);
}

/* ------------------------------------------------------------------------------------------ */
/* Recoverability: the end-of-run check                                                        */

/* Whether a start failure is one the scenario expects (`expect refusal TEXT`). A node whose
 * disk took persistent damage is no exception: it repairs from its peers (issue #15). */
static bool refusal_expected(const struct sim *s, const struct sim_node *nd)
{
    if (nd->up || nd->start_error[0] == '\0')
        return false;
    for (uint32_t i = 0; i < s->scn->n_refusals; i++) {
        if (strstr(nd->start_error, s->scn->refusals[i]) != NULL)
            return true;
    }
    return false;
}

/* The first node that is down for a reason the scenario does not expect, and why, into buf;
 * 0 if none. */
static uint32_t node_down_reason(const struct sim *s, char *buf, size_t cap)
{
    for (uint32_t i = 1; i <= s->n; i++) {
        const struct sim_node *nd = &s->nodes[i];
        if (nd->up || refusal_expected(s, nd))
            continue;
        if (nd->start_error[0] != '\0')
            snprintf(buf, cap, "n%u could not start: %s", i, nd->start_error);
        else
            snprintf(buf, cap, "n%u is down (no start has failed: it was stopped last)", i);
        return i;
    }
    return 0;
}

/* Every running node holds the leader's log up to its commit index, which covers the whole
 * log, and has applied it; every node is running but those whose refusal to start is
 * expected. If not, why not into buf. */
static bool converged(struct sim *s, char *buf, size_t cap)
{
    if (node_down_reason(s, buf, cap) != 0)
        return false;
    uint32_t l = current_leader(s);
    if (l == 0) {
        snprintf(buf, cap, "no leader");
        return false;
    }
    struct raft_status ls;
    raft_status(replica_raft(s->nodes[l].rep), &ls);
    if (ls.commit != ls.last_index) {
        snprintf(buf, cap, "leader n%u has committed %" PRIu64 " of its %" PRIu64 " entries", l,
                 ls.commit, ls.last_index);
        return false;
    }
    uint32_t members = node_conf_mask(&s->nodes[l], true);
    for (uint32_t i = 1; i <= s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        if (!nd->up || !(members >> i & 1))
            continue; /* a node outside the configuration (removed, or never added) idles */
        struct raft_status st;
        raft_status(replica_raft(nd->rep), &st);
        if (st.last_index != ls.last_index || st.last_term != ls.last_term ||
            st.commit != ls.commit || st.applied != ls.commit) {
            snprintf(buf, cap,
                     "n%u is not caught up: last index %" PRIu64 " (term %" PRIu64
                     "), commit %" PRIu64 ", applied %" PRIu64 "; leader n%u: last index %" PRIu64
                     " (term %" PRIu64 "), commit %" PRIu64,
                     i, st.last_index, st.last_term, st.commit, st.applied, l, ls.last_index,
                     ls.last_term, ls.commit);
            return false;
        }
    }
    return true;
}

/* All running nodes' state machines have one digest (kv_digest): none lost or invented an
 * applied entry, whatever its path (restarts, snapshots, merges). */
static void compare_digests(struct sim *s)
{
    uint32_t first = 0;
    uint64_t want = 0;
    uint32_t l = current_leader(s);
    uint32_t members = l != 0 ? node_conf_mask(&s->nodes[l], true) : ~0u;
    for (uint32_t i = 1; i <= s->n && !s->failed; i++) {
        struct sim_node *nd = &s->nodes[i];
        if (!nd->up || !(members >> i & 1))
            continue;
        uint64_t d = 0;
        int rc = kv_digest(replica_kv(nd->rep), &d);
        struct raft_status st;
        raft_status(replica_raft(nd->rep), &st);
        if (rc != RK_OK) {
            fail(s, SIM_FAIL_RECOVERY, "recoverability: n%u's state machine cannot be read: %s", i,
                 rk_strerror(rc));
        } else if (first == 0) {
            first = i;
            want = d;
        } else if (d != want) {
            fail(s, SIM_FAIL_RECOVERY,
                 "recoverability: n%u's state machine differs from n%u's at applied index %" PRIu64
                 " (digest %016" PRIx64 " vs %016" PRIx64 "; %" PRIu64 " vs %" PRIu64 " keys)",
                 i, first, st.applied, d, want, kv_count(replica_kv(nd->rep)),
                 kv_count(replica_kv(s->nodes[first].rep)));
        }
    }
}

static bool run_one(struct sim *s);

/* Issue #15: a cluster whose nodes hold promises it cannot get back halts rather than guess.
 * Expected, and only that: no leader, every node up, fewer than a quorum of them free of a
 * promise (raft's promised_index: no vote while commit is below it), and either `disk damaged N`
 * beyond a minority, or every gated node damaged or a new directory that never met its whole
 * cluster (a new cluster's first election needs every voter: a node that was cut off before it,
 * beside a wiped one, leaves fewer than a quorum able to vote). Why into buf. */
static bool halted_as_expected(struct sim *s, char *buf, size_t cap)
{
    uint32_t minority = (s->n - 1) / 2;
    if (current_leader(s) != 0)
        return false;
    bool beyond = s->scn->disk.damaged_nodes > minority;
    uint32_t free = 0, gated = 0;
    for (uint32_t i = 1; i <= s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        if (!nd->up)
            return false;
        struct raft_status st;
        raft_status(replica_raft(nd->rep), &st);
        if (!RAFT_PROMISE_IS_UNKNOWN(st.promised_index) && st.commit >= st.promised_index) {
            free++;
            continue;
        }
        gated++;
        bool never_met = st.promised_index == RAFT_PROMISE_NEW && st.last_index == 0;
        if (!beyond && !nd->damaged && !never_met)
            return false;
    }
    if (free >= s->n / 2 + 1)
        return false;
    snprintf(buf, cap,
             "no leader: %u of %u nodes hold promises of entries no leader has given back (%s; "
             "the cluster must not guess)",
             gated, s->n,
             beyond ? "the damage struck a majority" : "a damaged node beside new ones");
    return true;
}

/* After EV_END: the cluster must converge (every node up, logs equal and fully committed and
 * applied) within expect_recovery_us more, and then every state machine must be equal. */
static void check_recovery(struct sim *s)
{
    uint64_t window = s->scn->expect_recovery_us;
    if (window == 0 || s->failed)
        return;
    /* Never less than ten maximum election timeouts of the slowest clock: a scenario with long
     * ticks or a clock left slow needs that long for an election, which is not a failure. */
    double slowest = 1.0;
    for (uint32_t i = 1; i <= s->n; i++) {
        if (s->nodes[i].rate < slowest)
            slowest = s->nodes[i].rate;
    }
    double elections = 10.0 * s->scn->election_ticks_max * (double)s->scn->tick_us / slowest;
    if (elections > (double)window)
        window =
            elections < (double)SCN_MAX_DURATION_US ? (uint64_t)elections : SCN_MAX_DURATION_US;
    s->ended = true;
    uint64_t deadline = s->now + window;
    uint64_t next_look = s->now;
    char why[SIM_START_ERROR_BYTES + 64];
    why[0] = '\0';
    bool ok = false;
    while (!s->failed) {
        if (s->now >= next_look) {
            if (converged(s, why, sizeof(why))) {
                ok = true;
                break;
            }
            next_look = s->now + s->scn->tick_us;
        }
        if (ev_count(s) == 0 || ev_peek(s)->t > deadline)
            break;
        run_one(s);
    }
    if (s->failed)
        return;
    s->res->recovered_us = s->now - s->end_at;
    if (!ok && halted_as_expected(s, why, sizeof(why))) {
        trace(s, "halted as expected: %s", why);
        s->res->halted = true;
        return; /* the state machines of a halted cluster need not be equal */
    }
    if (!ok) {
        fail(s, SIM_FAIL_RECOVERY, "recoverability (%" PRIu64 "ms after the end of the run): %s",
             window / 1000, why);
        return;
    }
    compare_digests(s);
}

/* ------------------------------------------------------------------------------------------ */
/* The loop                                                                                   */

static void handle(struct sim *s, struct event *e);

/* Runs the next event; false after EV_END. */
static bool run_one(struct sim *s)
{
    struct event e = ev_pop(s);
    RK_ASSERT(e.t >= s->now);
    s->now = e.t;
    s->res->events++;
    handle(s, &e);
    free_payload(s, &e);
    if (s->avail_dirty) {
        avail_update(s);
        if (s->tl != NULL)
            tl_sample(s);
    }
    if (e.type == EV_END)
        return false;
    if (s->now >= s->settle_at && s->leader_seen_at == 0 && current_leader(s) != 0)
        s->leader_seen_at = s->now;
    return true;
}

/* One step of the node's background merge (EV_MERGE_STEP; the steps of bitcask.h). run and
 * cleanup are the storage thread's; install goes a few entries at a time, so that client
 * writes, reads and crashes come in between, as on the node's event loop. A merge that fails
 * leaves the store usable (bitcask.c, MERGE): it is traced and dropped. */
static void merge_step(struct sim *s, struct sim_node *nd)
{
    struct bc_merge_job *j = nd->merge_job;
    struct rk_errmsg err = {{0}};
    int rc = RK_OK;
    bool done = false;
    uint64_t delay = 0;
    switch (nd->merge_stage) {
    case 0:
        rc = bc_merge_run(j);
        trace(s, "n%u merge run: %s%s%s", nd->id, rk_strerror(rc), rc == RK_OK ? "" : ": ",
              bc_merge_job_error(j));
        nd->merge_stage = 1;
        delay = rnd_range(s, 100, 2000);
        break;
    case 1:
        rc = bc_merge_install(nd->bc, j, (size_t)rnd_range(s, 1, 8), &done, &err);
        if (rc != RK_OK) {
            trace(s, "n%u merge install: %s: %s", nd->id, rk_strerror(rc), err.text);
            bc_merge_end(nd->bc, j, &err);
            bc_merge_job_free(j);
            nd->merge_job = NULL;
            check_node(s, nd);
            return;
        }
        if (done) {
            trace(s, "n%u merge installed", nd->id);
            nd->merge_stage = 2;
            delay = rnd_range(s, 1000, 20000);
        } else {
            delay = rnd_range(s, 100, 2000);
        }
        break;
    case 2:
        rc = bc_merge_cleanup(j);
        trace(s, "n%u merge cleanup: %s%s%s", nd->id, rk_strerror(rc), rc == RK_OK ? "" : ": ",
              bc_merge_job_error(j));
        nd->merge_stage = 3;
        delay = rnd_range(s, 100, 2000);
        break;
    default:
        rc = bc_merge_end(nd->bc, j, &err);
        bc_merge_job_free(j);
        nd->merge_job = NULL;
        trace(s, "n%u merge: %s", nd->id, rc == RK_OK ? "done" : err.text);
        check_node(s, nd);
        return;
    }
    ev_push(s, s->now + delay, EV_MERGE_STEP, nd->id, nd->merge_gen, 0, NULL);
    check_node(s, nd); /* a crash point the merge's disk calls reached */
}

static void handle(struct sim *s, struct event *e)
{
    struct sim_node *nd = e->node >= 1 && e->node <= s->n ? &s->nodes[e->node] : NULL;
    bool node_event = e->type == EV_TICK || e->type == EV_DELIVER || e->type == EV_CLIENT_REQ ||
                      e->type == EV_STORAGE;
    if (node_event && nd->up && nd->busy_until > s->now) {
        /* The node is still in a slow sync: what arrives waits for it. */
        ev_push(s, nd->busy_until, e->type, e->node, e->a, e->b, e->payload);
        e->payload = NULL;
        return;
    }
    if (node_event && nd->up && nd->rep != NULL)
        replica_set_time_ms(nd->rep, wall_ms(s, nd));
    switch (e->type) {
    case EV_START_RETRY:
        if (!nd->up && e->a == nd->start_gen) {
            trace(s, "n%u retries its start", nd->id);
            node_start(s, nd);
        }
        return;
    case EV_DIE:
        if (nd->up && nd->dying && e->a == nd->start_gen)
            node_crash(s, nd);
        return;
    case EV_MERGE:
        if (nd->up && !nd->paused && !nd->dying && nd->merge_job == NULL) {
            struct rk_errmsg err = {{0}};
            int rc = bc_merge_prepare(nd->bc, NULL, &nd->merge_job, &err);
            trace(s, "n%u merge: %s%s%s", nd->id,
                  nd->merge_job != NULL ? "prepared" : rk_strerror(rc), rc == RK_OK ? "" : ": ",
                  rc == RK_OK ? "" : err.text);
            if (nd->merge_job != NULL) {
                nd->merge_stage = 0;
                ev_push(s, s->now + rnd_range(s, 1000, 50000), EV_MERGE_STEP, e->node,
                        nd->merge_gen, 0, NULL);
            }
        }
        ev_push(s, s->now + rnd_range(s, s->scn->disk.merge_us / 2, s->scn->disk.merge_us * 3 / 2),
                EV_MERGE, e->node, 0, 0, NULL);
        return;
    case EV_MERGE_STEP:
        if (!nd->up || e->a != nd->merge_gen || nd->merge_job == NULL)
            return;
        if (nd->paused) { /* the storage thread is stopped with its process */
            node_hold(nd, e);
            return;
        }
        merge_step(s, nd);
        return;
    case EV_STORE_IO:
        if (!nd->up || e->a != nd->store_gen)
            return;
        if (nd->paused) {
            node_hold(nd, e);
            return;
        }
        on_store_io(s, nd);
        check_node(s, nd);
        return;
    case EV_STORAGE:
        if (!nd->up || e->a != nd->storage_gen)
            return;
        if (nd->paused) { /* the storage thread is stopped with its process */
            node_hold(nd, e);
            return;
        }
        on_storage(s, nd);
        check_node(s, nd);
        return;
    case EV_TICK:
        if (!nd->up || nd->paused || e->a != nd->tick_gen)
            return;
        nd->ticks++;
        replica_tick(nd->rep);
        drain(s, nd);
        sim_walks_step(s, nd);
        check_replies(s, nd);
        check_node(s, nd);
        member_try(s, nd);
        if (s->scn->expect_stepdown_elections > 0)
            check_stepdown(s, nd);
        if (nd->up && e->a == nd->tick_gen)
            schedule_tick(s, nd, tick_interval(s, nd));
        return;
    case EV_DELIVER: {
        struct sim_msg *m = e->payload;
        if (!nd->up || s->blocked[m->from][m->to] || !sim_route_ok(s, m->from, m->to)) {
            trace_frame(s,
                        !nd->up                      ? "to a crashed node"
                        : s->blocked[m->from][m->to] ? "cut"
                                                     : "stale address",
                        m->from, m->to, m->bytes, m->len);
            return;
        }
        if (nd->paused) {
            node_hold(nd, e);
            e->payload = NULL;
            return;
        }
        trace_frame(s, "deliver", m->from, m->to, m->bytes, m->len);
        struct rk_errmsg err;
        err.text[0] = 0; /* not the whole 256 bytes cleared per frame */
        int rc = replica_recv(nd->rep, m->from, m->bytes, m->len, &err);
        if (rc != RK_OK && rc != RK_EINVAL)
            fail(s, SIM_FAIL_SAFETY, "n%u could not decode a frame from n%u: %s", m->to, m->from,
                 err.text);
        drain(s, nd);
        check_node(s, nd);
        return;
    }
    case EV_CLIENT_REQ:
        on_client_req(s, nd, e);
        if (nd->up)
            check_node(s, nd);
        return;
    case EV_CLIENT_REPLY:
        on_client_reply(s, e->payload);
        return;
    case EV_CLIENT_NEXT:
        client_next(s, &s->clients[e->a - 1]);
        return;
    case EV_CLIENT_RETRY: {
        struct sim_client *c = &s->clients[e->a - 1];
        if (c->busy && (e->b & 0xffffffffu) == c->attempt) {
            uint32_t hint = (uint32_t)(e->b >> 32);
            client_send(s, c, hint != 0 && rnd_chance(s, 0.5) ? hint : 0);
        }
        return;
    }
    case EV_CLIENT_TIMEOUT:
        on_client_timeout(s, &s->clients[e->a - 1]);
        return;
    case EV_STEP:
        trace(s, "step line %u", s->scn->steps[e->a].line);
        run_step(s, &s->scn->steps[e->a]);
        return;
    case EV_CHAOS:
        on_chaos(s, (int)e->a);
        return;
    case EV_CHAOS_UNDO:
        if (s->chaos_on)
            on_chaos_undo(s, (int)e->a, nd);
        return;
    case EV_SETTLE:
        on_settle(s);
        return;
    case EV_CHECK_LEADER:
        if (s->leader_seen_at == 0 && current_leader(s) == 0) {
            char why[SIM_START_ERROR_BYTES + 64];
            if (node_down_reason(s, why, sizeof(why)) != 0)
                fail(s, SIM_FAIL_RECOVERY,
                     "recoverability: %s (and no leader within %" PRIu64
                     "ms after the last fault healed)",
                     why, s->scn->expect_leader_us / 1000);
            fail(s, SIM_FAIL_LIVENESS,
                 "liveness: no leader within %" PRIu64 "ms after the last fault healed",
                 s->scn->expect_leader_us / 1000);
        }
        return;
    case EV_CHECK_COMPLETE:
        for (uint32_t i = 0; i < s->scn->clients && !s->failed; i++) {
            char why[SIM_START_ERROR_BYTES + 64];
            if (s->clients[i].busy && s->tl != NULL)
                tl_highlight(s->tl, s->clients[i].id, s->clients[i].invoked_at, 0);
            if (s->clients[i].busy && node_down_reason(s, why, sizeof(why)) != 0)
                fail(s, SIM_FAIL_RECOVERY,
                     "recoverability: %s (and client %u's op still pending %" PRIu64
                     "ms after the last fault healed)",
                     why, s->clients[i].id, s->scn->expect_complete_us / 1000);
            struct sim_client *c = &s->clients[i];
            if (c->busy && s->tl != NULL)
                tl_highlight(s->tl, c->id, c->invoked_at, 0);
            if (c->busy)
                fail(s, SIM_FAIL_LIVENESS,
                     "liveness: client %u's op (invoked at %" PRIu64 "ms) still pending %" PRIu64
                     "ms after the last fault healed",
                     c->id, c->invoked_at / 1000, s->scn->expect_complete_us / 1000);
        }
        return;
    case EV_END:
        return;
    }
}

static void draw_swarm(struct sim *s)
{
    /* Swarm testing (Groce et al.; TigerBeetle's VOPR): each seed picks its own mix of faults,
     * some switched off entirely, so that seeds explore different corners. */
    s->drop = rnd_chance(s, 0.5) ? 0.2 * rnd_unit(s) : 0;
    s->duplicate = rnd_chance(s, 0.5) ? 0.1 * rnd_unit(s) : 0;
    s->reorder = rnd_chance(s, 0.5) ? 0.3 * rnd_unit(s) : 0;
    s->chaos.crash_per_s = rnd_chance(s, 0.5) ? 0.5 * rnd_unit(s) : 0;
    s->chaos.partition_per_s = rnd_chance(s, 0.5) ? 0.5 * rnd_unit(s) : 0;
    s->chaos.pause_per_s = rnd_chance(s, 0.5) ? 0.3 * rnd_unit(s) : 0;
    s->chaos.skew_per_s = rnd_chance(s, 0.5) ? 0.3 * rnd_unit(s) : 0;
    static const uint32_t batches[] = {1, 2, 3, 8, 64, 256};
    static const uint32_t windows[] = {1, 2, 4, 32};
    s->append_entries = batches[rnd_range(s, 0, sizeof(batches) / sizeof(batches[0]) - 1)];
    s->inflight = windows[rnd_range(s, 0, sizeof(windows) / sizeof(windows[0]) - 1)];
    s->pre_vote = rnd_chance(s, 0.8);
    s->check_quorum = rnd_chance(s, 0.8);
    if (rnd_chance(s, 0.5)) {
        s->compact_entries = (uint32_t)rnd_range(s, 50, 2000);
        s->compact_keep = (uint32_t)rnd_range(s, 0, 100);
        if (rnd_chance(s, 0.5)) { /* by bytes too, as the node does (64 MiB there) */
            s->compact_bytes = rnd_range(s, 200, 4000);
            s->compact_keep_bytes = rnd_range(s, 0, 400);
        }
    }
    if (s->chaos.downtime_us_max == 0) {
        s->chaos.downtime_us_min = 100000;
        s->chaos.downtime_us_max = 3000000;
    }
}

/* Swarm with connection clients: each op kind of the scenario's mix is kept or left out, so
 * that seeds also differ in which ops race (at least one kind stays). */
static void draw_swarm_mix(struct sim *s)
{
    uint32_t kept[SIM_MIX_KINDS];
    bool any = false;
    for (int i = 0; i < SIM_MIX_KINDS; i++) {
        /* Kinds added later are drawn only when the scenario weighs them, so that the draws of
         * the scenarios that do not stay what they were. */
        if (i >= SIM_MIX_KIND_SCAN && s->mix[i] == 0) {
            kept[i] = 0;
            continue;
        }
        kept[i] = rnd_chance(s, 0.5) ? s->mix[i] : 0;
        any = any || kept[i] > 0;
    }
    if (any)
        memcpy(s->mix, kept, sizeof(kept));
    /* The wall clocks' bound too, when the scenario has one: exact, or off by up to 1, 10 or
     * 50 ms (expiry is judged within it). */
    static const uint64_t bounds[] = {0, 1000, 10000, 50000};
    if (s->wallclock_us > 0)
        s->wallclock_us = bounds[rnd_range(s, 0, 3)];
}

/* Swarm draws added later, after the others, so that the earlier draws of a seed stay what
 * they were: aligned tick phases and equal latencies (symmetry that randomized timeouts must
 * break on their own), and slow, variable log writes (1 seed in 4: what the commit durability
 * check needs to see a leader count an unsynced write). */
static void draw_swarm_more(struct sim *s)
{
    if (rnd_chance(s, 0.25))
        s->ticks_aligned = true;
    if (rnd_chance(s, 0.2))
        s->latency_max = s->latency_min;
}

/* Persistent damage (issue #15) in 1 seed of 5, when the scenario sets none: the damaged
 * minority must repair from peers and catch up. Drawn last, so that the draws before it stay
 * what they were for every seed. */
static void draw_swarm_damage(struct sim *s)
{
    bool none = s->dmg_rot == 0 && s->dmg_badsector == 0 && s->dmg_lost == 0 &&
                s->dmg_misdirect == 0 && s->dmg_wipe == 0;
    if (rnd_chance(s, 0.2) && none) {
        s->dmg_rot = rnd_chance(s, 0.5) ? 0.3 : 0;
        s->dmg_badsector = rnd_chance(s, 0.5) ? 0.1 : 0;
        s->dmg_lost = rnd_chance(s, 0.5) ? 0.002 : 0;
        s->dmg_misdirect = rnd_chance(s, 0.5) ? 0.002 : 0;
        s->dmg_wipe = rnd_chance(s, 0.5) ? 0.05 : 0;
    }
    if (rnd_chance(s, 0.25)) { /* log writes slower than the network (`disk io`) */
        s->io_us_min = 100;
        s->io_us_max = 8000;
    }
    if (rk_prng_below(&s->store_prng, 4) == 0) { /* store writes slower (`disk storeio`) */
        s->store_io_us_min = 1000;
        s->store_io_us_max = 40000;
    }
}

static void setup(struct sim *s)
{
    const struct scenario *scn = s->scn;
    s->pool = sim_alloc_create();
    rk_prng_seed(&s->prng, s->opt->seed);
    rk_prng_seed(&s->store_prng, s->opt->seed ^ 0x53544f5245494fULL); /* "STOREIO" */
    s->n = scn->nodes;
    s->drop = scn->drop;
    s->duplicate = scn->duplicate;
    s->reorder = scn->reorder;
    s->latency_min = scn->latency_us_min;
    s->latency_max = scn->latency_us_max;
    s->io_us_min = scn->disk.io_us_min;
    s->io_us_max = scn->disk.io_us_max;
    s->store_io_us_min = scn->disk.store_io_us_min;
    s->store_io_us_max = scn->disk.store_io_us_max;
    s->reorder_max = scn->reorder_us_max;
    s->chaos = scn->chaos;
    s->pre_vote = scn->pre_vote;
    s->check_quorum = scn->check_quorum;
    s->append_entries = scn->append_entries;
    s->inflight = scn->inflight;
    s->compact_entries = scn->compact_entries;
    s->compact_keep = scn->compact_keep;
    s->dmg_rot = scn->disk.rot;
    s->dmg_badsector = scn->disk.badsector;
    s->dmg_lost = scn->disk.lost;
    s->dmg_misdirect = scn->disk.misdirect;
    s->dmg_wipe = scn->disk.wipe;
    if (s->opt->swarm || scn->swarm)
        draw_swarm(s);
    s->ticks_aligned = scn->ticks_aligned;
    if (s->opt->swarm || scn->swarm)
        draw_swarm_more(s);
    const uint32_t mix[SIM_MIX_KINDS] = {
        scn->mix_get,    scn->mix_put,    scn->mix_del,   scn->mix_incr,   scn->mix_putif,
        scn->mix_mset,   scn->mix_mget,   scn->mix_txn,   scn->mix_watch,  scn->mix_expire,
        scn->mix_append, scn->mix_getdel, scn->mix_setnx, scn->mix_rename, scn->mix_scan,
        scn->mix_keys,   scn->mix_bits};
    memcpy(s->mix, mix, sizeof(mix));
    if (scn->mix_scan + scn->mix_keys > 0) {
        s->sc = sc_new(scn->keys);
        if (s->sc == NULL) {
            fprintf(stderr, "sim: out of memory\n");
            abort();
        }
        /* Deadlines come only from `expire` and from the transactions (`txn`, `watch`). */
        sc_set_no_expiry(s->sc, scn->mix_expire + scn->mix_txn + scn->mix_watch == 0);
    }
    s->wallclock_us = scn->wallclock_us;
    if ((s->opt->swarm || scn->swarm) && scn->pipeline > 0)
        draw_swarm_mix(s);
    if (s->opt->swarm || scn->swarm)
        draw_swarm_damage(s);
    if ((s->opt->swarm || scn->swarm) && scn->members != 0 && scn->members < scn->nodes) {
        /* Membership changes among the pool of nodes, in most seeds (scenarios that set
         * `members` only: the draws of every other scenario stay what they were). */
        s->chaos.member_per_s = rnd_chance(s, 0.8) ? 0.1 + 0.9 * rnd_unit(s) : 0;
    }
    lin_history_set_clock_bound(s->hist, s->wallclock_us);
    s->wslots = xcalloc(((size_t)scn->keys + SCN_KEY_GROUP - 1) / SCN_KEY_GROUP, LX_WATCH_SLOTS);
    s->chaos_on = true;
    s->disk_faults = true;
    s->avail_dirty = true;
    uint64_t last_step = scn->n_steps > 0 ? scn->steps[scn->n_steps - 1].at_us : 0;
    s->settle_at = scn->duration_us > last_step ? scn->duration_us : last_step;
    uint64_t tail = scn->expect_leader_us > scn->expect_complete_us ? scn->expect_leader_us
                                                                    : scn->expect_complete_us;
    s->end_at = s->settle_at + (tail > 0 ? tail : SIM_SETTLE_DEFAULT_US);
    uint32_t members = scn->members != 0 ? scn->members : s->n;
    s->voters_mask = ((1u << (members + 1)) - 1) & ~1u;
    for (uint32_t i = 1; i <= s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        nd->id = i;
        nd->rq = rq_new(conn_reply_send, s);
        nd->rate = 1.0;
        nd->joiner = i > members; /* a spare: a new node that may be added */
        nd->ever_member = !nd->joiner;
        if (s->wallclock_us > 0)
            nd->wall_off_us =
                (int64_t)rnd_range(s, 0, 2 * s->wallclock_us) - (int64_t)s->wallclock_us;
        nd->disk = simdisk_create(rk_prng_next(&s->prng));
        nd->logdisk = simdisk_create(rk_prng_next(&s->prng));
        if (nd->disk == NULL || nd->logdisk == NULL) {
            fprintf(stderr, "sim: out of memory\n");
            abort();
        }
        node_start(s, nd);
        if (scn->disk.merge_us > 0)
            ev_push(s, rnd_range(s, 1, scn->disk.merge_us), EV_MERGE, i, 0, 0, NULL);
    }
    s->clients = xcalloc(scn->clients, sizeof(*s->clients));
    for (uint32_t i = 0; i < scn->clients; i++) {
        s->clients[i].id = i + 1;
        ev_push(s, rnd_range(s, 0, scn->think_us_max + scn->tick_us), EV_CLIENT_NEXT, 0, i + 1, 0,
                NULL);
    }
    for (uint32_t i = 0; i < scn->n_steps; i++)
        ev_push(s, scn->steps[i].at_us, EV_STEP, 0, i, 0, NULL);
    for (int k = 0; k < CHAOS_KINDS; k++)
        chaos_schedule(s, k);
    ev_push(s, s->settle_at, EV_SETTLE, 0, 0, 0, NULL);
    if (scn->expect_leader_us > 0)
        ev_push(s, s->settle_at + scn->expect_leader_us, EV_CHECK_LEADER, 0, 0, 0, NULL);
    if (scn->expect_complete_us > 0)
        ev_push(s, s->settle_at + scn->expect_complete_us, EV_CHECK_COMPLETE, 0, 0, 0, NULL);
    ev_push(s, s->end_at, EV_END, 0, 0, 0, NULL);
}

static void teardown(struct sim *s)
{
    while (ev_count(s) > 0) {
        struct event e = ev_pop(s);
        free_payload(s, &e);
    }
    free(s->heap);
    for (size_t i = 0; s->wheel != NULL && i < EV_WHEEL; i++) {
        if (s->wheel[i].cap > EV_WHEEL_FIRST)
            free(s->wheel[i].v);
    }
    free(s->wheel);
    free(s->wheel_store);
    for (uint32_t i = 1; i <= s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        storage_drop(nd);
        free(nd->jobq);
        free(nd->sjobq);
        durable_log_free(&nd->dur);
        sim_walks_free(nd);
        rq_free(nd->rq);
        if (nd->up) {
            replica_destroy(nd->rep);
            nd->store->ops->destroy(nd->store);
            nd->log->ops->destroy(nd->log);
        }
        simdisk_destroy(nd->disk);
        simdisk_destroy(nd->logdisk);
        for (size_t j = 0; j < nd->n_held; j++)
            free_payload(s, &nd->held[j]);
        free(nd->held);
    }
    for (uint32_t i = 0; s->clients != NULL && i < s->scn->clients; i++)
        free(s->clients[i].scan_got);
    free(s->clients);
    free(s->wslots);
    sc_free(s->sc);
    lin_history_destroy(s->hist);
    tl_destroy(s->tl);
    free(s->leader_of_term);
    free(s->lm);
    free(s->sm);
    free(s->ct);
    while (s->msg_pool != NULL) {
        struct sim_msg *m = s->msg_pool;
        s->msg_pool = m->next;
        free(m);
    }
    s->n_msg_pool = 0;
    while (s->creq_pool != NULL) {
        struct sim_creq *q = s->creq_pool;
        s->creq_pool = q->next_free;
        free(q);
    }
    s->n_creq_pool = 0;
    sim_alloc_destroy(s->pool); /* last: the nodes' memory came from it */
    s->pool = NULL;
}

/* --timeline: the picture of the run, recovery phase included. A file that cannot be
 * written is said on stderr (the run's verdict stands). */
static void write_timeline(struct sim *s)
{
    if (s->tl == NULL)
        return;
    if (s->failed)
        tl_failure(s->tl, s->fail_at, s->res->what);
    char title[256];
    snprintf(title, sizeof(title), "%s, seed %" PRIu64 ": %s", s->scn->name, s->opt->seed,
             s->failed ? "FAIL" : "PASS");
    FILE *f = fopen(s->opt->timeline, "w");
    if (f == NULL || tl_write_svg(s->tl, f, s->now, title) != 0 || fclose(f) != 0)
        fprintf(stderr, "sim: %s: cannot write the timeline\n", s->opt->timeline);
}

static void report(struct sim *s, const struct lin_result *lr, const char *scan_note)
{
    struct sim_result *res = s->res;
    const char *verdict = res->verdict == SIM_PASS ? "PASS" : "FAIL";
    char disk[64] = "";
    if (s->scn->expect_disk_bytes > 0)
        snprintf(disk, sizeof(disk), "; disk max %" PRIu64 " KiB",
                 (res->max_disk_bytes + 1023) / 1024);
    if (res->halted) /* appended to the same field: a halted run says so on its line */
        snprintf(disk + strlen(disk), sizeof(disk) - strlen(disk), "; halted (promises)");
    sim_printf(s,
               "seed %" PRIu64 ": %s  %" PRIu64 ".%03" PRIu64 "s virtual, %" PRIu64
               " events; ops %" PRIu64 " (ok %" PRIu64 ", failed %" PRIu64 ", unknown %" PRIu64
               "); leaders %" PRIu64 ", max term %" PRIu64 "; msgs %" PRIu64 " (dropped %" PRIu64
               ", duplicated %" PRIu64 ")%s; unavailable %" PRIu64 "ms; linearizability %s"
               " (%u keys)%s\n",
               s->opt->seed, verdict, res->virtual_us / 1000000, res->virtual_us / 1000 % 1000,
               res->events, res->ops_invoked, res->ops_ok, res->ops_failed, res->ops_unknown,
               res->leaders_elected, res->max_term, res->msgs_sent, res->msgs_dropped,
               res->msgs_duplicated, disk, res->unavailable_us / 1000,
               lr->verdict == LIN_LINEARIZABLE ? "ok"
               : lr->verdict == LIN_GAVE_UP    ? "gave up (search budget)"
                                               : "VIOLATED",
               lr->keys_checked, scan_note);
    if (res->verdict != SIM_PASS) {
        sim_printf(s, "  failed check: %s\n", res->what);
        if (lr->verdict == LIN_VIOLATION && lr->explanation != NULL)
            sim_printf(s, "%s\n", lr->explanation);
        sim_printf(s, "  replay: build/bin/sim --seed %" PRIu64 "%s %s\n", s->opt->seed,
                   s->opt->swarm ? " --swarm" : "", s->opt->path ? s->opt->path : s->scn->name);
    }
    if (s->opt->timeline != NULL)
        sim_printf(s, "  timeline: %s\n", s->opt->timeline);
}

int sim_run(const struct scenario *scn, const struct sim_options *o, FILE *out,
            struct sim_result *res)
{
    struct sim *s = xcalloc(1, sizeof(*s));
    memset(res, 0, sizeof(*res));
    s->scn = scn;
    s->opt = o;
    s->out = out;
    s->res = res;
    s->hist = lin_history_create();
    if (o->timeline != NULL) {
        s->tl = tl_create(scn->nodes, scn->clients);
        if (s->tl == NULL) {
            fprintf(stderr, "sim: out of memory\n");
            abort();
        }
        const struct scn_disk *d = &scn->disk;
        tl_disk_faults(s->tl, 0, d->bitflip > 0 || d->errors > 0);
    }
    setup(s);
    if (s->tl != NULL)
        tl_phases(s->tl, s->settle_at, s->end_at);
    if (s->opt->trace || s->opt->swarm || scn->swarm)
        sim_printf(s,
                   "seed %" PRIu64 ": %u nodes, %u clients; drop %.3f duplicate %.3f reorder %.3f;"
                   " chaos/s crash %.3f partition %.3f pause %.3f skew %.3f; prevote %s"
                   " checkquorum %s; append %u entries, window %u; snapshot %u %u bytes %" PRIu64 " %" PRIu64
                   "\n",
                   o->seed, s->n, scn->clients, s->drop, s->duplicate, s->reorder,
                   s->chaos.crash_per_s, s->chaos.partition_per_s, s->chaos.pause_per_s,
                   s->chaos.skew_per_s, s->pre_vote ? "on" : "off", s->check_quorum ? "on" : "off",
                   s->append_entries, s->inflight, s->compact_entries, s->compact_keep,
                   s->compact_bytes, s->compact_keep_bytes);
    if ((s->opt->trace || s->opt->swarm || scn->swarm) &&
        (s->dmg_rot > 0 || s->dmg_badsector > 0 || s->dmg_lost > 0 || s->dmg_misdirect > 0 ||
         s->dmg_wipe > 0))
        sim_printf(
            s,
            "seed %" PRIu64 ": damage rot %.3f badsector %.3f lost %.4f misdirect %.4f wipe %.3f\n",
            o->seed, s->dmg_rot, s->dmg_badsector, s->dmg_lost, s->dmg_misdirect, s->dmg_wipe);
    while (ev_count(s) > 0 && !s->failed) {
        if (!run_one(s))
            break;
    }
    res->virtual_us = s->now;
    /* The unavailability figure covers the run up to its end (the settle phase included). */
    avail_update(s);
    s->ended = true;
    res->unavailable_us = s->unavailable_us;
    if (scn->expect_available_us > 0)
        avail_check_pending(s);
    if (scn->expect_unavailable_us > 0 && s->unavailable_us >= scn->expect_unavailable_us)
        fail(s, SIM_FAIL_LIVENESS,
             "availability: unavailable for %" PRIu64 "ms in all (no usable leader while a "
             "healthy majority was connected), not below %" PRIu64 "ms",
             s->unavailable_us / 1000, scn->expect_unavailable_us / 1000);
    /* Ops still open at the end never got an answer: unknown (a GET: no effect). A write whose
     * attempt is still in flight may have executed although no attempt timed out yet (a run
     * that stops at a failed check: a GET that saw such a write's value read as a violation). */
    s->closing = true;
    for (uint32_t i = 0; i < scn->clients; i++) {
        struct sim_client *c = &s->clients[i];
        if (c->busy) {
            c->maybe_executed = true;
            client_give_up(s, c);
        }
    }
    s->closing = false;
    /* The scan checker's verdict (sim/scancheck.h), failed after linearizability's. */
    char scan_note[96] = "", scan_why[256] = "";
    bool scan_ok = true;
    if (s->sc != NULL) {
        uint64_t reads = 0, required = 0;
        scan_ok = sc_check(s->sc, scan_why, sizeof(scan_why), &reads, &required);
        snprintf(scan_note, sizeof(scan_note),
                 "; scan/keys %s (%" PRIu64 " reads, %" PRIu64 " keys due)", scan_ok ? "ok" : "VIOLATED",
                 reads, required);
    }
    /* Linearizability first: a violation is the stronger finding, and the recovery phase does
     * not touch the history (every op is closed above). */
    struct lin_result lr;
    memset(&lr, 0, sizeof(lr));
    lin_check(s->hist, o->lin_budget, &lr);
    if (lr.verdict == LIN_VIOLATION)
        fail(s, SIM_FAIL_LINEARIZABILITY, "linearizability: key %s", lr.key);
    if (!scan_ok)
        fail(s, SIM_FAIL_LINEARIZABILITY, "%s", scan_why);
    check_recovery(s);
    if (lr.verdict == LIN_VIOLATION && s->tl != NULL && lr.key[0] == 'k')
        tl_highlight(s->tl, 0, 0, (uint32_t)strtoul(lr.key + 1, NULL, 10));
    write_timeline(s);
    res->lin_gave_up = lr.verdict == LIN_GAVE_UP;
    report(s, &lr, scan_note);
    lin_result_free(&lr);
    teardown(s);
    free(s);
    return RK_OK;
}
