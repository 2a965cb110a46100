/*
 * replica.h — one cluster member: raft + log store + kv state machine + the client requests
 * waiting on a commit or a read index. Both drivers (sim/ and node/) run exactly this code;
 * they only move bytes and time.
 *
 * Inputs: replica_tick, replica_recv (one peer frame), replica_submit (one client request).
 * Each input runs the Raft ready loop to completion (persist through the log store with one
 * sync per batch, apply committed entries, serve reads) and leaves outputs — frames for peers,
 * replies for clients — that the driver takes with replica_output. Outputs stay valid until the
 * next call into the replica.
 *
 * Every request gets exactly one reply: OK (done), NOT_FOUND (a GET of a missing key),
 * TRYAGAIN (certainly not executed: no leader, leadership changed before it was proposed, a
 * transfer in progress, ...; retrying is safe), TIMEOUT (the outcome is unknown: a write may
 * or may not have been applied), or ERROR (invalid request, or a command the state machine
 * answered with an error, such as an INCRBY of a value that is not an integer: nothing was
 * written; the reason is the text of a Redis error, without its "ERR " prefix).
 *
 * Writes: on the leader, proposed directly; on a follower, forwarded to the leader (FORWARD
 * frame), which answers with the (index, term) it proposed at. Either way the request waits
 * for the entry at that index to apply: if it applies with that term the reply carries its
 * result, otherwise the command was not applied (TRYAGAIN). Reads: ReadIndex (thesis §6.4) on
 * every node, served once the state machine has applied the read index.
 *
 * Program order per connection (issue #13): requests with the same non-zero client_id are one
 * connection (a session, thesis §6.3), submitted in the order the client sent them; each takes
 * effect after the ones submitted before it that were answered OK (or NOT_FOUND):
 *   - a read waits until every earlier write of its connection has a log index (is proposed,
 *     or acknowledged by the leader when forwarded) and is served at an applied index at least
 *     that high and at least its read index: it sees them (W then R);
 *   - a write is proposed only once every earlier read of its connection was answered: they
 *     do not see it (R then W); reads of a connection are answered in order (R then R);
 *   - writes of a connection apply in seq order or not at all (kv sessions): W then W.
 * A request waiting for an earlier one is held in the replica (no raft work); held past the
 * request timeout it gets TRYAGAIN (it was never proposed). Consecutive writes of a connection
 * are proposed together, consecutive reads go together, and connections never wait for each
 * other. After an outcome-unknown answer (TIMEOUT) the connection's later requests are not
 * ordered after that write: it may still apply later (as a crashed client in Knossos).
 * client_id 0: no connection, no ordering (each request on its own). A write's seq must be
 * 1, 2, 3, ... per client_id (kv.h); a read's seq is ignored (may be 0).
 */
#ifndef REPLICA_H
#define REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/err.h"
#include "kv/kv.h"
#include "bitcask/bitcask.h"
#include "log/log.h"
#include "raft/raft.h"

enum replica_op {
    REPLICA_GET = 1,
    REPLICA_PUT = 2,
    REPLICA_DEL = 3,
    REPLICA_PUT_IF = 4, /* put if cond holds at apply time (KV_OP_PUT_IF); num: 1 if written */
    REPLICA_INCRBY = 5, /* add delta (KV_OP_INCRBY), no value; num: the new value, or ERROR */
    REPLICA_MSET = 6,   /* no key; val is a kv pairs blob (kv_pairs_encode), applied at once */
    /* Any Redis data command or transaction: val is an encoded kv command (kv_cmd2_encode: one
     * op, or MULTI with watches and ops; its client_id, seq and time are written here: leave
     * them 0), no key. A plain command of one READ op (kv.h codes 1..31: GET, MGET, TTL, WATCH
     * ...) is served through ReadIndex on this node, like REPLICA_GET; anything else goes
     * through the log (writes, EXEC), stamped with the leader's time. The reply's val is the
     * encoded kv result (kv_res_check accepts it; kv_res_next walks it) with status OK; a
     * command the state machine refuses with a Redis error is still OK, the error is in the
     * result. */
    REPLICA_CMD = 7,
    /* Reads of several keys, one snapshot (issue #13.2): ONE read barrier, every key read at
     * one applied index, never key by key. No key; val is a keys blob (replica_keys_encode).
     * Reply OK: num = the number of keys, val = a results blob (replica_mget_next). */
    REPLICA_MGET = 8,
    /* A read barrier with a callback, for what reads the whole state machine (KEYS, SCAN,
     * DBSIZE): no key, no value. When it is served (at an applied index >= its read index and
     * its connection's writes) the replica calls config.on_read(config.read_ctx, r, req_id),
     * in which the driver reads the state machine (replica_scan_keys, replica_read_get) as of
     * that one index; then it replies OK with num = the number of user keys (DBSIZE). */
    REPLICA_READ = 9,
};

/* Whether op only reads (GET, MGET, READ). */
bool replica_op_is_read(uint8_t op);

/* The keys blob of an MGET: [count u32][key_len u32][key] ... count times, little-endian,
 * count in 1..REPLICA_MGET_MAX_KEYS, each key within KV_MAX_KEY_BYTES, nothing after; the
 * whole within KV_MAX_VALUE_BYTES. */
#define REPLICA_MGET_MAX_KEYS (1u << 20)
/* Its encoded size, and the encoding: RK_OK, RK_EINVAL (n out of range, a key over its
 * limit), RK_ETOOBIG (over KV_MAX_VALUE_BYTES or cap). */
size_t replica_keys_size(const uint8_t *const *keys, const uint32_t *key_lens, uint32_t n);
int replica_keys_encode(const uint8_t *const *keys, const uint32_t *key_lens, uint32_t n,
                        uint8_t *buf, size_t cap, size_t *out_len);

/* The results blob of an MGET reply: per key, in order, [found u8][val_len u32][val] (a key
 * not found: 0 and length 0). Walk it with replica_mget_next (borrowed from the blob). */
struct replica_mget_iter {
    const uint8_t *buf;
    size_t len, pos;
};
void replica_mget_begin(struct replica_mget_iter *it, const uint8_t *blob, size_t len);
/* The next key's result: true, or false after the last (or on a malformed blob). */
bool replica_mget_next(struct replica_mget_iter *it, bool *found, const uint8_t **val,
                       uint32_t *val_len);

enum replica_status {
    REPLICA_OK = 0,
    REPLICA_NOT_FOUND = 1,
    REPLICA_TRYAGAIN = 2,
    REPLICA_TIMEOUT = 3,
    REPLICA_ERROR = 4,
};

const char *replica_status_name(int status);

/* A cluster-unique client id for one connection (a session, thesis §6.3): the node's id
 * (1..255), its incarnation (a 24-bit number the node keeps on disk and increments at every
 * start, so that a restarted node never reuses an id whose session the state machine still
 * holds, with its last seq), and the connection's number in this incarnation (32 bits; at the
 * wrap the node starts a new incarnation). Never 0. */
uint64_t replica_client_id(uint64_t node_id, uint32_t incarnation, uint32_t counter);

struct replica_request {
    uint64_t req_id;    /* the driver's, echoed in the reply */
    uint8_t op;         /* enum replica_op */
    uint64_t client_id; /* the connection: session for at-most-once writes (thesis §6.3) and
                           program order (above); 0: none */
    uint64_t seq;       /* writes with a client_id: 1, 2, 3, ... per client; reads: ignored */
    const uint8_t *key; /* borrowed for the call */
    uint32_t key_len;
    const uint8_t *val;
    uint32_t val_len;
    uint8_t cond;  /* PUT_IF: enum kv_cond; otherwise 0 */
    int64_t delta; /* INCRBY: the increment; otherwise 0 */
    /* REPLICA_CMD only, optional: val itself, allocated with config.alloc, which the replica
     * takes (it frees it, or proposes it without a copy: a command of 64 MiB is not copied
     * again on the loop). NULL: val is borrowed for the call. */
    uint8_t *val_take;
    /* REPLICA_CMD only: val is what kv_cmd2_encode wrote in this process, which decodes (kv.h,
     * cmd2.c V2), so submit does not decode it again: the command is decoded once on the leader,
     * at apply, whose decode is the check every replica makes (bytes that do not decode end as
     * KV_BAD_COMMAND everywhere, kv.h). false: the bytes come from elsewhere and submit checks
     * them (a malformed command is refused before it takes a log entry). */
    bool encoded;
};

struct replica_reply {
    uint64_t req_id;
    uint8_t status;     /* enum replica_status */
    int64_t num;        /* DEL: keys removed; PUT_IF: 1 if written; INCRBY: the new value */
    const uint8_t *val; /* GET: the value; CMD: the encoded kv result (valid until the next
                           call into the replica) */
    uint32_t val_len;
    const char *reason; /* TRYAGAIN, TIMEOUT, ERROR: why, static text */
    uint64_t leader;    /* TRYAGAIN: the leader if known, else 0 */
};

/* A piece of a frame handed out in pieces (config.frame_refs). */
struct replica_seg {
    const uint8_t *p;
    size_t len;
    /* true: a Raft entry's data, valid until the frame's hold is released
     * (replica_frame_release); false: valid until the next call, like frame bytes. */
    bool held;
};

struct replica_frame {
    uint64_t to;
    const uint8_t *bytes; /* one codec frame; NULL for a frame in pieces */
    size_t len;           /* the frame's length, in one buffer or in pieces */
    /* config.frame_refs: a big APPEND comes as segs[0..n_segs), in order, without a copy of its
     * entries' data: the driver must write it as FRAG pieces (its CRC field is 0; codec.h),
     * and release hold once its bytes are written or dropped. n_segs 0, hold 0 otherwise. */
    const struct replica_seg *segs;
    size_t n_segs;
    uint64_t hold;
};

struct replica_log_job;

struct replica_output {
    const struct replica_frame *frames;
    size_t n_frames;
    const struct replica_reply *replies;
    size_t n_replies;
    /* async_log: log writes to run, in this order; the driver owns them from here on and hands
     * each back with replica_log_job_done (or frees it with replica_log_job_free). */
    struct replica_log_job *const *log_jobs;
    size_t n_log_jobs;
};

struct replica;

struct replica_config {
    struct raft_config raft; /* id, voters, timing, seed; loaded state comes from log */
    /* REPLICA_READ: called when the read is served, before its reply; it may only read the
     * state machine (replica_scan_keys, replica_read_get, replica_kv, replica_info), not
     * submit or tick. NULL: REPLICA_READ is a plain barrier. */
    void (*on_read)(void *ctx, struct replica *r, uint64_t req_id);
    void *read_ctx;
    struct log_store *log;  /* borrowed; outlives the replica (it survives a crash) */
    struct kv_store *store; /* borrowed */
    const struct rk_alloc *alloc;
    uint32_t request_timeout_ticks; /* a request not answered by then gets TIMEOUT */
    uint32_t max_pending;           /* requests waiting at once; beyond: TRYAGAIN */
    uint32_t max_sessions;
    /* The state machine's store is synced every this many ticks if it changed (0: never);
     * what it loses in a crash is replayed from the log. */
    uint32_t store_sync_ticks;
    /* Log compaction (thesis ch. 5): when the log holds more than compact_entries entries, the
     * state machine is synced and the log prefix up to applied - compact_keep is dropped; a
     * follower that needs a dropped entry gets a snapshot, streamed in snapshot_chunk_bytes
     * chunks, one unacknowledged chunk at a time, abandoned after snapshot_timeout_ticks
     * without progress. 0 compact_entries: never compact. */
    uint32_t compact_entries;
    uint32_t compact_keep;
    /* Compaction by bytes (memory bounded by bytes, not counts): when the entries held since
     * the last compaction carry more than compact_bytes of data, the prefix is dropped so that
     * at most compact_keep_bytes (and at most compact_keep entries) stay. 0: off. */
    uint64_t compact_bytes;
    uint64_t compact_keep_bytes;
    uint32_t snapshot_chunk_bytes;
    uint32_t snapshot_timeout_ticks;
    uint64_t max_snapshot_bytes; /* a larger incoming snapshot is refused */
    /* The leader's view for a snapshot stream saves values overwritten before the stream
     * reached them (kv/view.h); past this many bytes the transfer is abandoned and retried. */
    uint64_t snapshot_overlay_bytes;
    /* Asynchronous log persistence (see "Asynchronous persistence" below). false: every input
     * writes and syncs the log store before it returns. */
    bool async_log;
    uint32_t max_log_jobs; /* jobs out at once; beyond, no new ready is taken. 0: 1024 */
    /* With async_log only: an APPEND frame of more than CODEC_FRAG_MAX bytes is handed out in
     * pieces that point at its entries' data instead of copying it (replica_frame.segs): a
     * value of 64 MiB is not copied once per follower on the loop. The entries' buffers stay
     * allocated until every frame made before raft dropped them is released. */
    bool frame_refs;
    /* Automatic promotion (issue #17): the leader promotes a learner whose log has been
     * within auto_promote_lag entries of its own for auto_promote_ticks ticks in a row, one at
     * a time. 0 ticks: learners stay learners until promoted by replica_member_change. */
    uint32_t auto_promote_ticks;
    uint32_t auto_promote_lag;
};

/* Defaults: request timeout 50 ticks, 65536 pending, 4096 sessions, store synced every 10
 * ticks, compaction past 100000 entries keeping 1000 or past 64 MiB keeping 16 MiB, 64 KiB
 * snapshot chunks with a 100-tick timeout, snapshots up to 1 GiB, 1024 log jobs out, raft
 * defaults. */
void replica_config_default(struct replica_config *c);

struct replica;

/* Loads the log store, builds raft, replays nothing yet (committed entries apply with the
 * first input). Errors name what failed. */
int replica_create(const struct replica_config *c, struct replica **out, struct rk_errmsg *err);
/* Frees the replica; the log store and kv store stay with the caller. Pending requests are
 * dropped without replies (the process is going away). */
void replica_destroy(struct replica *r);

void replica_tick(struct replica *r);
/* One frame from peer `from` (codec-encoded, borrowed). A frame that does not decode, is not
 * from `from` or not for us is dropped: RK_EMALFORMED / RK_ECORRUPT / RK_EINVAL, err set. */
int replica_recv(struct replica *r, uint64_t from, const uint8_t *frame, size_t len,
                 struct rk_errmsg *err);
/* As replica_recv, for a frame reassembled from FRAG pieces whose CRCs the transport checked
 * (codec_reasm): the frame's own CRC field is not checked (codec_decode_pieces). */
int replica_recv_pieces(struct replica *r, uint64_t from, const uint8_t *frame, size_t len,
                        struct rk_errmsg *err);
/* The driver wrote or dropped the frame in pieces whose hold this is (replica_frame.hold): the
 * entry data it pointed at may be freed. Not an input: no outputs, no ready loop. */
void replica_frame_release(struct replica *r, uint64_t hold);
void replica_submit(struct replica *r, const struct replica_request *req);
/* Submits n requests as one input: one ready loop, so that the writes among them reach the log
 * store in one batch with one sync (group commit) and the followers in one APPEND. Each request
 * still gets its own reply. reqs and their bytes are borrowed for the call. */
void replica_submit_batch(struct replica *r, const struct replica_request *reqs, size_t n);
/* Leadership transfer (thesis §3.10), for operators and tests. */
int replica_transfer_leader(struct replica *r, uint64_t target);

/* Membership changes (core/raft/MEMBERSHIP.md): single-server, one at a time, on the leader.
 * RK_OK with *index the configuration entry's index: the change is done once the node's
 * applied index reaches it (replica_info: raft.applied) in the same configuration
 * (replica_conf's index). Otherwise raft's refusal: RK_ENOTLEADER with *leader the known
 * leader (0: none), RK_EBUSY (a learner to promote is not caught up yet, another change is
 * uncommitted, the leader has not committed an
 * entry of its term yet, a transfer: retry), RK_EINVAL (not a single-server change, an unknown
 * or already present id, the last voter), RK_ETOOBIG (a list is full). */
enum replica_member_op {
    REPLICA_MEMBER_ADD_LEARNER = 1, /* a new node joins as a learner */
    REPLICA_MEMBER_PROMOTE = 2,     /* a learner becomes a voter */
    REPLICA_MEMBER_REMOVE = 3,      /* a voter or a learner leaves (the leader too) */
    REPLICA_MEMBER_SET_ADDR = 4,    /* a member's addresses change (no voter changes) */
};
int replica_member_change(struct replica *r, uint8_t op, uint64_t id, uint64_t *index,
                          uint64_t *leader);
/* As replica_member_change for member a->id, with its addresses: recorded in the configuration
 * by ADD_LEARNER and SET_ADDR (raft_add_learner_addr, raft_set_member_addr), ignored by the
 * others. */
int replica_member_change_addr(struct replica *r, uint8_t op, const struct raft_member_addr *a,
                               uint64_t *index, uint64_t *leader);
/* The configuration in use (the latest in the log, committed or not) and its entry's index. */
void replica_conf(const struct replica *r, struct raft_conf *conf, uint64_t *index);

/* The configuration record of a state machine's store: what a snapshot of the store carries
 * (the configuration as of its index). replica_store_conf: RK_OK, RK_ENOENT (none: the
 * cluster's bootstrap configuration stands) or RK_ECORRUPT. replica_store_put_conf writes one
 * at index (a tool that seeds a new cluster from a backup writes the new members here). The
 * bytes are raft_conf_encode's. */
int replica_store_conf(struct kv_store *store, struct raft_conf *conf);
int replica_store_put_conf(struct kv_store *store, uint64_t index, const struct raft_conf *conf);

/* Group commit across inputs: once deferred, replica_recv and replica_submit(_batch) only feed
 * raft, and replica_flush runs the ready loop once for all of them (one log sync, one round of
 * appends). A driver that reads many frames per event-loop turn defers and flushes at the end
 * of the turn; otherwise every frame would cost a sync. Ticks always run the loop. */
void replica_set_deferred(struct replica *r, bool deferred);
void replica_flush(struct replica *r);

/* The driver's wall clock (Unix ms), for expiry (kv.h TIME): the leader stamps every CMD entry
 * it proposes with max(its last stamp, now_ms, the state machine's clock); reads on this node
 * treat a key whose deadline <= now_ms as absent; each tick the leader proposes the removal of
 * up to KV_PURGE_MAX keys whose deadline passed (one such entry in flight at a time). Call it
 * before every input (or once per loop turn). Never called (the simulator today): no entry
 * carries a time, nothing expires. */
void replica_set_time_ms(struct replica *r, uint64_t now_ms);

/* Outputs accumulated since the last call; valid until the next call into the replica. */
void replica_output(struct replica *r, struct replica_output *out);

/*
 * Asynchronous persistence (cfg.async_log; etcd raft's AsyncStorageWrites, thesis §10.2.1).
 * The replica then never writes its log store after replica_create: each ready batch that
 * changes the log becomes a job in replica_output's log_jobs, and the batch's other outputs
 * go out at once — a leader's APPENDs leave before its own log is synced, so the leader's and
 * the followers' syncs overlap. Messages that promise durability (vote replies and requests,
 * append acknowledgments) travel inside the job; entries are counted in the leader's quorum
 * and applied only once their job is back.
 *
 * The driver runs jobs off its event loop, in output order, one group at a time:
 * replica_log_run (or replica_log_run_writes, then replica_log_run_sync: one sync for the
 * group) touches only the jobs and the log store, never the replica, so it may run on a
 * storage thread. Then, on the replica's thread and in the same order, replica_log_job_done
 * hands each job back: its held frames join the outputs, raft learns what is durable, and
 * the job is freed. A failed job stops the replica (replica_failed), as a failed sync does.
 * A driver that drops jobs (a crash, shutdown) frees them with replica_log_job_free.
 */
void replica_log_run(struct replica_log_job *const *jobs, size_t n);
void replica_log_run_writes(struct replica_log_job *const *jobs, size_t n);
bool replica_log_jobs_need_sync(struct replica_log_job *const *jobs, size_t n);
void replica_log_run_sync(struct replica_log_job *const *jobs, size_t n);
void replica_log_job_done(struct replica *r, struct replica_log_job *job);
void replica_log_job_free(struct replica_log_job *job);
/* Jobs handed out and not yet done. */
uint32_t replica_log_jobs_out(const struct replica *r);

/* The state machine's store with deferred writes (bitcask.h, DEFERRED WRITES): the driver runs
 * the store's jobs off its loop as it runs log jobs (bc_io_take after every input, bc_io_run on
 * the worker, bc_io_done in order). Log compaction goes by what the store holds durably
 * (kv_store durable_index), and the log's compaction to an installed snapshot is held back
 * (not in replica_output's log_jobs) until the store holds that snapshot durably, as is the
 * follower's acknowledgment (done) of that snapshot to the leader. After
 * bc_io_done, the driver calls this, then replica_output: jobs held back may go now. */
void replica_store_progress(struct replica *r);

/* A storage failure (log store) stops the replica: it sends nothing more, answers new requests
 * TRYAGAIN, and leaves pending ones unanswered.
 * The driver should treat it as a crash. */
bool replica_failed(const struct replica *r, struct rk_errmsg *why);

struct replica_info {
    struct raft_status raft;
    uint64_t snapshots_sent;
    uint64_t snapshots_installed;
    uint64_t keys;
    uint32_t pending;
    uint64_t read_rounds; /* raft_counters.read_rounds */
};
void replica_info(const struct replica *r, struct replica_info *st);
/* The raft inside, read-only, for checkers. */
const struct raft *replica_raft(const struct replica *r);
const struct kv *replica_kv(const struct replica *r);

/* Calls fn for every user key of the state machine as applied now (kv_scan_keys: no value is
 * read). Not a linearizable read by itself: a driver runs it once a read (replica_submit GET)
 * has been answered, which makes it one. */
int replica_scan_keys(struct replica *r,
                      bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx);

/* As replica_scan_keys for the live keys of database db (kv_scan_db). */
int replica_scan_db(struct replica *r, uint8_t db,
                    bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx);

/* One page of replica_scan_db (kv_scan_db_range): SCAN and RANDOMKEY. */
int replica_scan_db_range(struct replica *r, uint8_t db, uint64_t cursor, uint64_t budget,
                          bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx,
                          uint64_t *next);

/* The value of key as applied now (kv_get: borrowed until the next call into the replica or
 * the next replica_read_get). Linearizable only inside config.on_read (REPLICA_READ). RK_OK,
 * RK_ENOENT, or the store's error. */
int replica_read_get(struct replica *r, const uint8_t *key, uint32_t key_len, const uint8_t **val,
                     uint32_t *val_len);

/*
 * Opening a node's storage, with repair from peers (issue #15, core/log/INTEGRITY.md). Both
 * drivers open the Raft log (seglog) and the state machine's store (Bitcask) through this, so
 * that the simulator runs exactly what the node runs.
 *
 * Damage that log_seglog_open or bc_open report (RK_ECORRUPT with a damage record, or a read
 * that keeps failing: RK_EIO) is repaired when peers can supply what it cost, never guessed:
 * replica_repair_plan decides, the log store first makes the promise durable (the highest index
 * the node may have acknowledged: raft_config.promised_index keeps it out of elections until a
 * leader has given those entries back), then the damaged data is cut or discarded, and both are
 * opened again. The plan:
 *   - a bad record in a log segment: the log is cut there (its intact prefix stays), the
 *     promise is what its commit records say was synced;
 *   - the log's hard state bad or unreadable: the log and the store are discarded and the
 *     promise is unknown (RAFT_PROMISE_UNKNOWN: term and vote are lost);
 *   - any other damage of the log (layout, an unreadable segment): the log and the store are
 *     discarded (term and vote kept), the promise as known, else unknown;
 *   - the store damaged: discarded; rebuilt from the log when the log starts at index 1,
 *     otherwise the log is discarded too (promise: its last index) and a leader sends a
 *     snapshot;
 *   - a store applied past the end of the (cut) log, or behind its snapshot point: both are
 *     discarded (promise: at least the applied index).
 * What is not repaired: damage that does not show (INTEGRITY.md, "Not detected"), and a repair
 * that does not converge in a few rounds (an fs that keeps failing): the open fails.
 */
struct replica_repair_input {
    /* The log: RK_OK (opened), RK_ECORRUPT (damage below) or RK_EIO (unreadable). */
    int log_rc;
    struct log_damage log_damage;
    uint64_t log_snapshot_index; /* when log_rc is RK_OK */
    uint64_t log_last_index;     /* when log_rc is RK_OK */
    /* The store: RK_OK, RK_ECORRUPT (damage below) or RK_EIO. */
    int store_rc;
    struct bc_damage store_damage;
    uint64_t store_applied;    /* when store_rc is RK_OK */
    uint64_t store_snap_index; /* when store_rc is RK_OK: its snapshot meta (0: none) */
};

struct replica_repair_plan {
    bool act;              /* false: nothing to repair */
    struct log_repair log; /* mode 0: the log is left as it is */
    bool discard_store;    /* remove every file of the store's directory */
    char text[480];        /* what will be done, for operators */
};

void replica_repair_plan(const struct replica_repair_input *in, struct replica_repair_plan *out);

struct replica_storage_config {
    struct fs *log_fs;            /* the log's directory (borrowed) */
    struct fs *store_fs;          /* the store's directory (borrowed) */
    const struct rk_alloc *alloc; /* NULL: libc */
    uint64_t segment_bytes;       /* log_seglog_config's */
    uint64_t max_file_bytes;      /* bc_config's */
    uint32_t merge_id_gap;        /* bc_config's */
    bool no_repair;               /* refuse damaged storage (RK_ECORRUPT) instead */
};

struct replica_storage {
    struct log_store *log; /* the caller owns both: log->ops->destroy, bc_close (or the */
    struct bitcask *bc;    /* kv_store's destroy) */
    uint32_t repairs;      /* repair rounds run (0: nothing was damaged) */
    char repaired[600];    /* what they did ("" if nothing) */
};

struct bitcask;
int replica_storage_open(const struct replica_storage_config *c, struct replica_storage *out,
                         struct rk_errmsg *err);

/* The index of the snapshot last installed into store (its meta record), 0 if none. */
uint64_t replica_store_snapshot_index(struct kv_store *store);
/* Puts the snapshot point record (index, term) into store at index, in the format snap_install
 * writes and replica_create reads: for a store seeded outside raft (raftkv-tool restore,
 * node/backup_restore.h), which then opens as one that installed a snapshot at (index, term).
 * The caller ends the batch and syncs. RK_OK or the store's error. */
int replica_store_snapshot_point(struct kv_store *store, uint64_t index, uint64_t term);

#endif
