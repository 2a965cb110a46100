/*
 * kv.h — the replicated state machine: the command encoding (the data of a Raft entry), the
 * apply step, and client sessions, so that a retried command is applied at most once
 * (thesis §6.3).
 *
 * Every replica applies the same committed entries in the same order and must end in the same
 * state, so everything kv_apply decides is a function of (the entries applied so far, the
 * configuration): no clock, no randomness, no dependence on memory addresses. That includes
 * which sessions exist, which one is evicted, and what an undecodable entry does.
 *
 * Sessions (thesis §6.3). A client with a non-zero client_id numbers its requests seq = 1, 2, …
 * and retries a request with the same seq until it gets an answer. The state machine keeps, per
 * client, the last seq it applied and that command's result:
 *
 *     no session, or seq > last_seq   apply; remember (seq, result)            KV_OK
 *     seq == last_seq                  do not apply; return the cached result   KV_DUPLICATE
 *     seq <  last_seq                  do not apply; the result is forgotten    KV_STALE
 *     client_id == 0                   always apply, nothing remembered         KV_OK
 *
 * so one outstanding request per client is deduplicated exactly. Every command that reaches
 * the state machine with a client id (including a duplicate or a stale one) marks its session
 * as used at that log index.
 *
 * Sessions are bounded (max_sessions): opening one more evicts the least recently used session,
 * the one whose last command has the lowest log index. Every replica evicts the same one. The
 * limitation, as in the thesis: a client whose session was evicted and who then retries a
 * request that had been applied gets it applied a second time (kv cannot tell it from a new
 * request). Size max_sessions above the number of clients active at once.
 *
 * Sessions are durable: they are part of the state machine's state, kept in the same store as
 * the data and written in the same batch as the command they record (store.h S5), so a replica
 * that restarts over a durable store finds them exactly as they were at the store's
 * applied_index, and the Raft log replays what came after. kv_create rebuilds the table (ids,
 * seqs, cached results, LRU order) from the stored records; see "the store layout" below.
 *
 * What each entry writes, as one batch closed by end_batch(index):
 *
 *     new command, client_id == 0     the data op                              then end_batch
 *     new command with a session      its session record; the deletion of the evicted
 *                                     session's record, if one is evicted; the data op
 *                                                                              then end_batch
 *     duplicate or stale command      its session record (the new last_index)  then end_batch
 *     undecodable entry, Raft no-op   nothing
 *
 * An undecodable entry and a no-op write nothing because they change nothing but the applied
 * index: after a restart the store's applied_index may be below them, and replaying them is
 * harmless. Hence the Raft log must keep every entry after the index the store has made
 * durable (its applied_index after the last sync), and log compaction must go by that index,
 * not by kv_applied_index(). A
 * duplicate does write: its session moved in the LRU order, and an order kept in memory only
 * would be lost by a restart, after which this replica would evict a different session than
 * the others. In the batch of a new command the data op comes last: it is the only write whose
 * outcome a retry could observe (a DEL's "existed"), so a batch that failed part way can be
 * retried exactly (kv_apply). A DEL with a session, a PUT_IF and an INCRBY read the key first,
 * to decide their result (and, with a session, to cache it in the record written before the
 * data op).
 *
 * Ownership: struct kv owns its session table and a key buffer; the store is borrowed and must
 * outlive it.
 *
 * ==== Generic commands, transactions, expiry, databases (issue #16) ====
 *
 * WHY. One replica op and one kv op per Redis command, with a num in the reply, does not scale
 * to the ~30 write commands and transactions Redis clients need. Alongside the version-1 ops
 * above (kept: the simulator and the node use them) there is ONE generic entry format
 * (version 2, "kv_cmd2" below): a header, an optional WATCH list, and a list of ops, each a Redis
 * command with its options already parsed by the node (code, db, flags, one number, byte-string
 * arguments). A plain command is a list of one; MULTI/EXEC is a list of n applied as ONE entry,
 * atomically (one store batch) on every replica. The state machine answers with a generic
 * result (kv_res below: status, error with Redis's exact text, integer, bulk, nil, array, nil
 * array) that the replica hands to the driver as the reply's bytes (REPLICA_CMD): the node only
 * turns it into RESP2 or RESP3.
 *
 * STORE LAYOUT, version 2 (replaces 'u' + key; a store holding a 'u' record is refused):
 *     '0'+db key          a user key of database db (< KV_DBS): ONE prefix byte, '0'..'?', says
 *                         both "user key" and its db; the value is
 *                         [flags u8][mod_index u64][deadline_ms u64 if flags & 1][value]
 *                         mod_index: the log index of the entry that last wrote the key (value
 *                         or deadline): WATCH's version. deadline_ms: absolute Unix ms.
 *     'x' deadline K      the expiry index: one empty record per key with a deadline (deadline
 *                         u64 big-endian; K the user store key above), so that a restart
 *                         rebuilds the in-memory expiry table from keys alone (scan_keys: no
 *                         value is read). The table ((db, key) -> deadline, Redis's
 *                         db->expires) tells a write whether a key has a deadline without a
 *                         store read, and the leader's sweep walks it.
 *     'm' "kv"            kv's own state: [version u8 = 1][clock_ms u64][del_index u64 x KV_DBS]
 *                         [dbmap u8 x KV_DBS][swap_index u64 x KV_DBS] (the state-machine
 *                         clock; per physical db the last index that removed a key; the
 *                         logical -> physical db permutation and, per logical db, its last
 *                         SWAPDB), written in the batch of any entry that changes them.
 * The mod index lives in the value, not in the store's record index, so that it travels in
 * snapshots (which rewrite every record at the snapshot's index) and survives merges and
 * restarts unchanged; the clock and the deletion indexes are records too, so they also come
 * back with a restart (the replayed entries compute the same) and arrive with a snapshot.
 *
 * TIME AND EXPIRY (deterministic). No replica reads a clock while applying. The leader stamps
 * each version-2 entry with its wall time when it proposes it (replica_set_time_ms; stamp =
 * max(last stamp, now, the state machine's clock), so monotonic per leader). Applying an entry
 * first advances the state machine's clock: clock = max(clock, stamp), so the clock never goes
 * back across leader changes, and every replica computes the same clock at every index. Every
 * decision of an entry ("is this key expired?", "EXPIRE k 10" = clock + 10 s) uses that clock.
 * Version-1 entries carry no stamp and use the clock as it is. A key whose deadline <= clock is
 * absent for the entry (a write overwrites it, a read sees nothing); keys are REMOVED only
 * through the log: each tick the leader walks a bounded part of the expiry table, takes up to
 * KV_PURGE_MAX keys whose deadline passed by its clock (kv_expired_command) and proposes them
 * as a PURGE op; a PURGE deletes a key only if the
 * key's deadline is still <= the entry's clock (it may have been rewritten since). Reads on any
 * node (kv_get, kv_read) treat a key whose deadline <= that node's injected now
 * (kv_set_read_time_ms) as absent.
 * Clock-skew assumption (as etcd leases assume bounded drift): the wall clocks of the nodes
 * differ by at most a bound E (NTP: tens of ms). Then (1) a read on any node returns a key at
 * most E after its deadline as the leader's clock saw it (a node whose clock is behind by E
 * still serves it for E), and never hides a key more than E before its deadline; (2) after a
 * failover the new leader's stamps may lag the old one's by E, and the state machine's clock
 * then stands still (max) until the new leader's clock catches up: an expiry is delayed by at
 * most E, never advanced. Relative times (EX, EXPIRE k 10) are relative to the entry's clock.
 *
 * WATCH (decided in the state machine). At WATCH time the node performs a linearizable read
 * (a read barrier) and takes, for each watched key, kv_watch_version(): the key's mod index if it
 * is live at the node's now, else 0, together with the watch point W = kv_applied_index() at
 * that moment (>= the read index). EXEC carries (W, [(db, key, version)]). Applying it, kv
 * aborts the whole transaction (result: nil array, nothing written) if any watched key:
 *     version != 0: is not live now, or its mod index != version (modified, deleted, expired,
 *                   overwritten: every write gives a new, larger mod index);
 *     version == 0: is live now, or has a record (even expired) with mod index > W, or any key of
 *                   its db was removed after W (del_index[db] > W): created-and-deleted since.
 * The last rule is conservative: a watch on an ABSENT key also aborts when another key of the
 * same db was deleted (DEL, expiry, FLUSHDB ...) after the WATCH (Redis would not abort). A
 * spurious abort is safe (the client retries); a missed one is not. The per-key versions are
 * exact; they hold across leader changes and on followers because they are log indexes.
 *
 * DATABASES. KV_DBS (16) databases, the db number in every op and in the store key; per-db key
 * counts are kept in memory (rebuilt by kv_create from the keys). FLUSHDB/FLUSHALL remove every
 * key of one/all dbs in one batch (O(keys)). MOVE moves one key. SWAPDB is O(1): an op's db is
 * the client's LOGICAL db, mapped to the PHYSICAL db of the store prefix through a permutation
 * kept in the 'm' "kv" record (dbmap); SWAPDB exchanges two entries of it. A watched key of a
 * db involved in a SWAPDB after the WATCH aborts EXEC if it existed at the WATCH or exists now
 * (Redis's rule). Keys and counts in the store, the expiry index and raftkv-tool are physical.
 *
 * Generic entries write, as one batch: the ops' data writes, in op order (with their 'x'
 * records), then the session record (which caches the encoded result, up to
 * KV_SESSION_MAX_RESULT bytes), the evicted session's deletion, then the 'm' "kv" record if the
 * clock or a deletion index changed. Unlike version 1 this batch is NOT retryable after a store
 * error part way (ops read what earlier ops wrote): the caller must stop (the replica does) and
 * the log replays the entry over the durable store after the restart.
 */
#ifndef RK_KV_H
#define RK_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/err.h"
#include "kv/memstore.h"
#include "kv/store.h"

/* ---- command encoding ------------------------------------------------------------------- */

/* Command encoding (the data of a Raft entry). Little-endian, fixed-width:
 * [version u8 = 1][op u8][client_id u64][seq u64][key_len u32][key][val_len u32][val][args]
 *
 * args depend on the op (KV_CMD_ARGS_BYTES): none for PUT, DEL and MSET; [cond u8] for PUT_IF;
 * [delta i64] for INCRBY.
 *
 *     PUT      key := val
 *     DEL      remove key; num = keys removed (0 or 1)
 *     PUT_IF   key := val if cond holds when the entry applies (NX: key absent, XX: key
 *              present); num = 1 if written, else 0. Decided at apply time: linearizable.
 *     INCRBY   key := key + delta (a missing key counts as 0), no value; num = the new value.
 *              A stored value that is not a base-10 int64 (kv_parse_int64) gives the result
 *              status KV_NOT_INTEGER, an overflow KV_OVERFLOW; either way nothing is written.
 *     MSET     no key; val is a pairs blob (kv_pairs_encode): every pair is written in ONE
 *              batch, in order (a later pair of the same key wins); num = 0.
 *
 * Decoding is strict, so that every command has exactly one encoding: the version is 1, op is
 * one of the above, a DEL or INCRBY carries no value, an MSET no key and a valid pairs blob,
 * cond is NX or XX, seq is not 0 when client_id is not 0, the key and value are within the
 * limits below, and no byte follows the args. */
enum kv_op {
    KV_OP_PUT = 1,
    KV_OP_DEL = 2,
    KV_OP_PUT_IF = 3,
    KV_OP_INCRBY = 4,
    KV_OP_MSET = 5,
    /* Not a version-1 wire op (kv_cmd_decode refuses it): the op a session record caches for a
     * generic (version 2) command, whose result is the encoded kv_res kept in the record. */
    KV_OP_CMD = 6,
}; /* wire values: never renumber */

enum kv_cond { KV_COND_NX = 1, KV_COND_XX = 2 }; /* wire values: never renumber */

#define KV_CMD_VERSION     1u
#define KV_MAX_KEY_BYTES   (64u << 10)
#define KV_MAX_VALUE_BYTES (64u << 20)
/* Everything but the key, value and args bytes. */
#define KV_CMD_OVERHEAD_BYTES (1u + 1u + 8u + 8u + 4u + 4u)
/* The widest args (INCRBY's delta). */
#define KV_CMD_MAX_ARGS_BYTES 8u
/* The largest valid command: a PUT_IF of the largest key and value. */
#define KV_CMD_MAX_BYTES (KV_CMD_OVERHEAD_BYTES + KV_MAX_KEY_BYTES + KV_MAX_VALUE_BYTES + 1u)

struct kv_cmd {
    uint8_t op;         /* enum kv_op */
    uint64_t client_id; /* 0: no session (no deduplication) */
    uint64_t seq;       /* per client, starts at 1, increases by one per new request */
    const uint8_t *key; /* borrowed; may be NULL when key_len == 0 */
    uint32_t key_len;
    const uint8_t *val; /* PUT, PUT_IF: the value; MSET: the pairs blob; else 0/NULL. Borrowed. */
    uint32_t val_len;
    uint8_t cond;  /* PUT_IF: enum kv_cond; 0 for every other op */
    int64_t delta; /* INCRBY: the increment; 0 for every other op */
};

/* The number of args bytes of op (see above); 0 for an unknown op. */
size_t kv_cmd_args_bytes(uint8_t op);

/* The exact encoded size of c: KV_CMD_OVERHEAD_BYTES + key_len + val_len + its args. */
size_t kv_cmd_size(const struct kv_cmd *c);

/* Encodes c into buf[0..cap). RK_OK and *out_len = kv_cmd_size(c); RK_EINVAL for an unknown
 * op, a DEL or INCRBY with a value, an MSET with a key or a bad pairs blob, a cond or delta on
 * an op that has none (or a cond that is not NX or XX), or seq 0 with a client id; RK_ETOOBIG
 * when the key or value is over its limit or cap is too small. Nothing is written on error. */
int kv_cmd_encode(const struct kv_cmd *c, uint8_t *buf, size_t cap, size_t *out_len);

/* Decodes buf[0..len) (untrusted) into *c. Zero-copy: c->key and c->val point into buf (NULL
 * when their length is 0), so buf must outlive c. RK_EMALFORMED with a message
 * "kv command: <field> at offset N: ..." in *err (which may be NULL). */
int kv_cmd_decode(const uint8_t *buf, size_t len, struct kv_cmd *c, struct rk_errmsg *err);

/* Parses p[0..len) (untrusted) as a base-10 int64 by Redis's rules (string2ll): an optional
 * '-', then digits without a leading zero (but "0"), nothing else (no spaces, no '+'), and the
 * value fits an int64. true and *out, or false. */
bool kv_parse_int64(const uint8_t *p, size_t len, int64_t *out);

/* The longest text of an int64 ("-9223372036854775808"). */
#define KV_INT64_TEXT_BYTES 20u

/* ---- MSET's pairs blob ------------------------------------------------------------------ */

/* [count u32][key_len u32][key][val_len u32][val] ... count times, nothing after. count >= 1,
 * each key within KV_MAX_KEY_BYTES; the whole blob is MSET's value, within KV_MAX_VALUE_BYTES. */
#define KV_PAIRS_HEADER_BYTES 4u
#define KV_PAIR_OVERHEAD_BYTES 8u

struct kv_pair {
    const uint8_t *key; /* borrowed */
    uint32_t key_len;
    const uint8_t *val; /* borrowed */
    uint32_t val_len;
};

/* The encoded size of a blob of n pairs, and writes it: RK_OK, RK_EINVAL for n == 0 or a key
 * over its limit, RK_ETOOBIG when the blob would be over KV_MAX_VALUE_BYTES or cap is too
 * small. */
size_t kv_pairs_size(const struct kv_pair *pairs, size_t n);
int kv_pairs_encode(const struct kv_pair *pairs, size_t n, uint8_t *buf, size_t cap,
                    size_t *out_len);

/* Walks a blob (untrusted until kv_pairs_check accepted it). */
struct kv_pairs_iter {
    const uint8_t *buf;
    size_t len, pos;
    uint32_t left; /* pairs still to read */
};

/* Checks blob[0..len) strictly (the layout above). RK_OK and *count; RK_EMALFORMED with
 * "pairs: <field> at offset N: ..." in *err (may be NULL). */
int kv_pairs_check(const uint8_t *blob, size_t len, uint32_t *count, struct rk_errmsg *err);

/* Starts an iteration over a blob kv_pairs_check accepted. */
void kv_pairs_begin(struct kv_pairs_iter *it, const uint8_t *blob, size_t len);

/* The next pair (borrowed from the blob): true, or false after the last. */
bool kv_pairs_next(struct kv_pairs_iter *it, struct kv_pair *out);

/* "PUT", "DEL", "PUT_IF", "INCRBY", "MSET", "CMD", or "?" for anything else. Static strings. */
const char *kv_op_name(uint8_t op);

/* ---- the store layout (durable: part of the on-disk format) ------------------------------ */

/* The kv's namespaces in its store, told apart by the key's first byte:
 *
 *     '0'+db K    user key K of database db (see "STORE LAYOUT, version 2" at the top)
 *     'x' ...     the expiry index (same place)
 *     'm' "kv"    kv's clock and deletion indexes (same place); other 'm' keys: the host's
 *     'a' + N     ACL user N (kv/acl.h: its record)
 *     's' + C     the session of client C (u64 big-endian, so that a sorted store keeps the
 *                 sessions together, in client id order); the value is a session record
 *
 * Session record, little-endian, fixed width (KV_SESSION_RECORD_BYTES):
 *     [version u8 = 1][last_seq u64][status u8][op u8][num i64][last_index u64]
 * last_seq and (status, op, num) are the cached result of the client's last applied command;
 * status is KV_OK, or KV_NOT_INTEGER / KV_OVERFLOW (with num 0) for an INCRBY;
 * last_index is the log index of the client's last command (the LRU key). A generic command's
 * session record is version 2: the same fields (op KV_OP_CMD, status KV_OK, num 0) followed by
 * [result_len u32][result] (an encoded kv_res, at most KV_SESSION_MAX_RESULT). A record is checked
 * before it is written (asserts) and after it is read (RK_ECORRUPT). Nothing else is stored:
 * kv_create refuses a store holding a key of neither shape.
 *
 * A store must accept keys of KV_STORE_MAX_KEY_BYTES: a user key at the limit plus its prefix. */
#define KV_KEY_USER             '0' /* '0' + db, then the key: see "STORE LAYOUT, version 2" */
#define KV_KEY_EXPIRY           'x' /* 'x' + deadline u64 big-endian + user store key, empty */
#define KV_KEY_LEGACY_USER      'u' /* the layout before databases and expiry: refused */
#define KV_KEY_SESSION          's'
/* Records of the host's own (the replica keeps the index and term of an installed snapshot
 * there, written in the same batch as the snapshot); kv loads past them and does not count
 * them as user keys. */
#define KV_KEY_META             'm'
#define KV_STORE_MAX_KEY_BYTES  (KV_MAX_KEY_BYTES + 10u) /* 'x' + deadline + db + key */
#define KV_SESSION_KEY_BYTES    9u
#define KV_SESSION_VERSION      1u
#define KV_SESSION_RECORD_BYTES 27u /* version 1; version 2 adds 4 + the result */
#define KV_SESSION_VERSION_CMD  2u

/* ---- the state machine ------------------------------------------------------------------ */

/* The largest max_sessions accepted: bounds the memory kv_create reserves. */
#define KV_MAX_SESSIONS         (1u << 20)
#define KV_DEFAULT_MAX_SESSIONS 4096u

struct kv_config {
    const struct rk_alloc *alloc; /* borrowed; must outlive the kv */
    struct kv_store *store;       /* borrowed; must outlive the kv */
    uint32_t max_sessions;        /* default KV_DEFAULT_MAX_SESSIONS when 0 */
    /* The first kv_acl_generation. A host that replaces its kv (a snapshot install) passes the
     * old one's + 1, so that what caches users by generation sees the change. */
    uint64_t acl_generation;
};

enum kv_status {
    KV_OK = 0,
    KV_DUPLICATE = 1,   /* already applied: cached result returned */
    KV_STALE = 2,       /* seq below the session's last: result no longer known */
    KV_BAD_COMMAND = 3, /* the entry's data did not decode: ignored deterministically */
    KV_STORE_ERROR = 4, /* the store failed: the entry was NOT applied (see kv_apply) */
    /* An INCRBY applied with an error result: nothing written but its session record. A
     * retry of it (seq == last_seq) gets the same status again, not KV_DUPLICATE. */
    KV_NOT_INTEGER = 5, /* the stored value is not a base-10 int64 */
    KV_OVERFLOW = 6,    /* the new value would not fit an int64 */
};

struct kv_result {
    uint8_t status; /* enum kv_status */
    uint8_t op;     /* the command's op; 0 for KV_BAD_COMMAND */
    uint64_t client_id, seq;
    int64_t num; /* DEL: keys removed (0 or 1); PUT_IF: 1 if written; INCRBY: the new value;
                    PUT, MSET, and an error status: 0 */
    int err;     /* KV_STORE_ERROR: the rk_err from the store; otherwise RK_OK */
    /* A generic command (op KV_OP_CMD), KV_OK or KV_DUPLICATE: its result, an encoded kv_res
     * (kv_res_check accepts it), borrowed until the next call into the kv. Else NULL, 0. */
    const uint8_t *val;
    uint32_t val_len;
};

struct kv;

/* Creates a state machine over c->store, which may hold the state of an earlier run (a restart
 * over a durable store). The session table (max_sessions sessions) and key buffers are reserved
 * here, once. kv_apply allocates only for what grows with the data: the in-memory expiry table
 * (one entry per key with a deadline, rebuilt here from the 'x' records) and the buffers of
 * values and results it assembles (kept and reused). The table is rebuilt from the store's
 * session records with one scan of the store, in LRU order by their stored last_index (a
 * function of the records only, not of the scan order: deterministic). The applied index
 * starts at the store's applied_index.
 *
 * RK_OK and *out (owned by the caller, freed with kv_destroy). Otherwise *out is NULL, *err
 * (which may be NULL) says why, and: RK_EINVAL when max_sessions > KV_MAX_SESSIONS or the store
 * holds more session records than max_sessions (it was lowered since they were written);
 * RK_ECORRUPT for a stored key or session record that does not decode (naming the key);
 * RK_ENOMEM; or the store's scan error. */
int kv_create(const struct kv_config *c, struct kv **out, struct rk_errmsg *err);
/* kv_create in pieces, for a store being replaced record by record (a staged snapshot install,
 * store.h): begin makes the state machine for c->store as it will be at applied_index, each of
 * the new store's records is fed as it is staged (what kv_create's scan would have visited:
 * val not NULL), and end — once the store holds them all (switched in) — finishes it as
 * kv_create would have, without a pass over the keys. Errors as kv_create's; after a failure of
 * record or end, kv_destroy. */
int kv_load_begin(const struct kv_config *c, uint64_t applied_index, struct kv **out,
                  struct rk_errmsg *err);
int kv_load_record(struct kv *kv, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                   uint32_t val_len, struct rk_errmsg *err);
int kv_load_end(struct kv *kv, struct rk_errmsg *err);

/* Frees the kv and its sessions; does not destroy the store. NULL is a no-op. */
void kv_destroy(struct kv *kv);

/*
 * Applies the committed entry at index (must be > kv_applied_index, strictly increasing;
 * asserted). data is the raw entry data (borrowed for the call). Deterministic: every replica
 * applying the same sequence gets the same results and the same session table.
 *
 * RK_OK: the entry is consumed, kv_applied_index() == index, and *out says what happened:
 * KV_OK, KV_DUPLICATE (cached result of the earlier apply: num, op), KV_STALE, or
 * KV_BAD_COMMAND (data did not decode; nothing else changed; kv_last_error says why).
 *
 * Any other return is the store's error (RK_ENOMEM, an I/O error) from a get, put, del or
 * end_batch, RK_ENOMEM from kv's own buffers or expiry table, or RK_ECORRUPT for a stored
 * record that does not decode: out->status is KV_STORE_ERROR and out->err the same code. The entry
 * is NOT applied: kv_applied_index() and the session table are unchanged. The store may hold part
 * of the entry's batch, never closed (the writes before the failed one, store.h S1). A store error
 * is local to this replica, so the entry must not be skipped (this replica would diverge):
 *   - over a durable store the replica must stop (store.h S5: a failed end_batch is fatal, and
 *     the unclosed batch is dropped when the store is reopened); after the restart the entry is
 *     replayed from the log, from the store's applied_index on.
 *   - over a store whose failed put or del changes nothing and whose end_batch cannot fail (the
 *     memstore), the caller may instead retry a VERSION-1 entry with the same index and data: the
 * retry writes the same batch again (see above: the data op is last) and gives the same result.
 *
 * A durable store keeps the batches of applied commands (and of duplicates); it does not keep
 * the applied index of an undecodable entry or a no-op (nothing is written for them), so after
 * a restart kv_applied_index() may be lower than before it: the log replays those entries.
 *
 * O(1) apart from the store's own work: sessions are a hash map and an intrusive LRU list.
 */
int kv_apply(struct kv *kv, uint64_t index, const uint8_t *data, uint32_t len,
             struct kv_result *out);

/* Advances the applied index over an entry that carries no command (a Raft no-op). Writes
 * nothing: the index is advanced in memory only, and a restart replays the no-op, harmlessly. */
void kv_apply_noop(struct kv *kv, uint64_t index);

/* Applies an entry of the host's own at index (the replica's configuration record: a Raft
 * configuration entry) as one batch: puts key (KV_KEY_META first) = val and advances the
 * applied index. Not a user key: kv_count and kv_digest leave it out. RK_OK or the store's
 * error (the applied index then stays). */
int kv_apply_meta(struct kv *kv, uint64_t index, const uint8_t *key, uint32_t key_len,
                  const uint8_t *val, uint32_t val_len);

uint64_t kv_applied_index(const struct kv *kv);

/* The value of user key key of db 0, borrowed until the next kv_apply. RK_OK; RK_ENOENT if
 * absent or expired at the read time (kv_set_read_time_ms; a key over KV_MAX_KEY_BYTES is
 * always absent); RK_ECORRUPT for a record that does not decode; or the store's error. Session
 * records are not user keys: no key reaches them. */
int kv_get(struct kv *kv, const uint8_t *key, uint32_t key_len, const uint8_t **val,
           uint32_t *val_len);

/* Number of user keys over all databases (including expired keys not yet purged). Exact
 * whenever the last kv_apply did not fail. */
uint64_t kv_count(const struct kv *kv);

/* Calls fn for every live user key (without its prefix) and its value, both borrowed for one
 * call of fn; session records are skipped. The order is the store's (deterministic, store.h
 * S3). Stops when fn returns false; fn must not call kv_apply. RK_OK or the store's error. */
int kv_scan(struct kv *kv,
            bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                       uint32_t val_len),
            void *ctx);

/* As kv_scan, keys only: no value is read (a store's scan_keys). */
int kv_scan_keys(struct kv *kv, bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len),
                 void *ctx);

uint32_t kv_session_count(const struct kv *kv);

/* Why the last KV_BAD_COMMAND was ignored ("kv command: op at offset 1: ..."); "" if none yet.
 * Valid until the next kv_apply. */
const char *kv_last_error(const struct kv *kv);

/* ---- ACL users (kv/acl.h) ------------------------------------------------------------------ */

/* The user named name, or NULL; borrowed until the next kv_apply. "default" always exists. */
const struct kv_acl_user *kv_acl_user(const struct kv *kv, const uint8_t *name, size_t len);
/* The users in name order (ACL USERS, ACL LIST): i < kv_acl_count. */
uint32_t kv_acl_count(const struct kv *kv);
const struct kv_acl_user *kv_acl_at(const struct kv *kv, uint32_t i);
/* Changes with every applied ACL change (a key for caches of compiled permissions). */
uint64_t kv_acl_generation(const struct kv *kv);
/* Whether a user record was written for "default" (else it is the built-in one). */
bool kv_acl_default_set(const struct kv *kv);

/* ---- session introspection (tests, debugging, later: snapshots) -------------------------- */

struct kv_session_info {
    uint64_t client_id;
    uint64_t last_seq;       /* seq of the last command applied for this client */
    uint64_t last_index;     /* log index of the client's last command: the LRU key */
    struct kv_result result; /* the cached result of last_seq (status KV_OK) */
};

/* RK_OK and *out for client_id's session; RK_ENOENT if it has none. */
int kv_session_get(const struct kv *kv, uint64_t client_id, struct kv_session_info *out);

/* Calls fn for every session from the least to the most recently used (the eviction order);
 * stops when fn returns false. fn must not call kv_apply. */
void kv_session_scan(const struct kv *kv, bool (*fn)(void *ctx, const struct kv_session_info *s),
                     void *ctx);

/* Decodes one stored session record (untrusted: tools read it off a store): key is the store
 * key ('s' + client id, KV_SESSION_KEY_BYTES), val the record. RK_OK and *out, or RK_ECORRUPT
 * with *err (may be NULL) saying what is wrong — kv_create's checks, less the bound by the
 * store's applied index. */
int kv_session_record_decode(const uint8_t *key, uint32_t key_len, const uint8_t *val,
                             uint32_t val_len, struct kv_session_info *out, struct rk_errmsg *err);

/* An order-independent digest of the state machine: every user key with its value and every
 * session record in the store (the host's KV_KEY_META records are left out: they describe how
 * the store got its state, not the state). Two replicas that applied the same entries have
 * the same digest whatever their histories (a snapshot install, a restart, a merge): the pairs
 * are hashed one by one (XXH3, key and value apart so that no two pairs share an encoding) and
 * the hashes added, so the store's scan order does not matter. For checkers (the simulator's
 * end-of-run recoverability check) and tests. RK_OK and *out, or the store's scan error. */
int kv_digest(const struct kv *kv, uint64_t *out);

/* Checks the session table's invariants (K1–K5 in kv.c) in O(max_sessions), K5 with one store
 * get per session, and K6 (the key counts per db, the 'x' records, the in-memory expiry table
 * and the records' deadlines agree) with one scan of the store: for tests. K5 and K6 hold
 * whenever the last kv_apply did not fail. */
bool kv_valid(const struct kv *kv);

/* "ok", "duplicate", "stale", "bad command", "store error", "not an integer", "overflow", or
 * "?". Static strings. */
const char *kv_status_name(uint8_t status);

/* ==== generic commands (version 2) ========================================================= */

#define KV_DBS                16u
#define KV_CMD2_VERSION       2u
#define KV_CMD2_HEADER_BYTES  26u /* [version u8][flags u8][client_id u64][seq u64][time_ms u64] */
#define KV_CMD2_OFF_CLIENT_ID 2u
#define KV_CMD2_OFF_SEQ       10u
#define KV_CMD2_OFF_TIME      18u
#define KV_CMD2_MULTI         1u /* header flag: a transaction (EXEC): the result is an array */
#define KV_CMD2_MAX_OPS       (1u << 16)
#define KV_CMD2_MAX_WATCH     (1u << 16)
#define KV_OP_MAX_ARGS        (1u << 20)
/* The most keys one PURGE op removes (the leader's expiry sweep, per tick). */
#define KV_PURGE_MAX 64u
/* A session caches a generic command's result up to this size; a larger one is replaced by an
 * error reply for a retry ("result too large to keep"). */
#define KV_SESSION_MAX_RESULT (1u << 20)

/*
 * Entry layout (little-endian):
 *   [version u8 = 2][flags u8][client_id u64][seq u64][time_ms u64]
 *   if flags & MULTI: [watch_index u64][n_watch u32] n_watch x [db u8][version u64][len u32][key]
 *   [n_ops u32] n_ops x op
 *   op: [code u8][db u8][flags u16][num i64][argc u32] argc x [len u32][bytes]
 * time_ms is 0 when the driver encodes it; the leader writes its stamp there when it proposes
 * (kv_cmd2_set_time). client_id/seq are written by the replica from the request. A plain command
 * has flags 0, n_ops 1; a transaction MULTI, n_ops 0..KV_CMD2_MAX_OPS. Decoding is strict (every
 * op obeys kv_op_check, nothing trails).
 *
 * Ops: the node parses the Redis syntax (and answers syntax/arity errors itself); an op carries
 * the decision-relevant parts. Keys and values are byte strings (args). Codes 1..31 read only
 * (also usable with kv_read, outside the log), 32.. write. "db" is the SELECTed database.
 *
 *  code          args             flags / num                          result (Redis's)
 *  GET           key                                                   bulk | nil
 *  MGET          key...                                                array of bulk | nil
 *  EXISTS        key...                                                int (repeats count)
 *  STRLEN        key                                                   int
 *  GETRANGE      key              num: start, args[1]: end as i64 LE   bulk (SUBSTR too)
 *  TTL           key              MS: ms; ABS: EXPIRETIME form         int (-2 / -1 / t)
 *  TYPE          key                                                   status string|none
 *  DBSIZE        -                                                     int
 *  WATCH         key...           (the node's WATCH, not in a transaction) array: :point, then
 *                                 :version per key (kv_watch_version), point = the applied index
 *  GETBIT        key              num: bit offset (0..2^32-1)          int 0|1
 *  BITCOUNT      key arg...       args: what followed the key, as sent int | error
 *                                 (0..4 of them; parsed here, after the lookup, as Redis does)
 *  BITPOS        key arg...       num: the bit (0|1); args: what       int | error
 *                                 followed the bit, as sent (0..4)
 *  SET           key value        NX XX GET KEEPTTL, EXP(+MS,ABS) num  OK|nil, or GET's bulk
 *                                 (SETEX, PSETEX: EXP [MS] SETEX; GETSET: GET)
 *  SETNX         key value                                             int 1|0
 *  GETDEL        key                                                   bulk | nil
 *  GETEX         key              PERSIST, or EXP(+MS,ABS) num, or 0   bulk | nil
 *  DEL           key...                                                int (UNLINK too)
 *  INCRBY        key              num: delta                           int | error
 *  INCRBYFLOAT   key incr                                              bulk | error
 *  APPEND        key value                                             int
 *  SETRANGE      key value        num: offset (>= 0)                   int | error
 *  MSET          (key value)...                                        OK
 *  MSETNX        (key value)...                                        int 1|0
 *  EXPIRE        key              num; MS, ABS; NX XX GT LT            int 1|0 | error
 *  PERSIST       key                                                   int 1|0
 *  RENAME        src dst                                               OK | error no such key
 *  RENAMENX      src dst                                               int | error
 *  COPY          src dst          num: destination db; REPLACE         int 1|0 | error
 *  MOVE          key              num: destination db                  int 1|0 | error
 *  FLUSHDB       -                                                     OK
 *  FLUSHALL      -                (db ignored, 0)                      OK
 *  SWAPDB        -                db and num: the two dbs              OK
 *  ACL_SETUSER   name rule...     (kv/acl.h: rules applied at apply)   OK | error
 *  ACL_DELUSER   name...                                               int | error
 *  SETBIT        key              num: offset * 2 + bit (offset        int 0|1 | error
 *                                 0..2^32-1)
 *  BITOP         dest src...      num: AND 0, OR 1, XOR 2, NOT 3 (NOT: int (dest's length)
 *                                 one src)
 *  PURGE         ('0'+db, key)... the leader's expiry sweep (store keys) int: keys removed
 *  DELIFEQ       key token                                             int 1 (deleted) | 0
 *  PEXPIREIFEQ   key token        num: ms; XX: only if it has a TTL;   int 1 | 0
 *                                 ADD: num + the remaining TTL
 *    (the two are what the Lua scripts of redis-py's Lock (release, reacquire, extend) and of
 *    Redlock's release do: the node may answer EVALSHA of exactly those scripts with them)
 *
 * Redis commands onto ops (the node's side; "s" = seconds, "ms" = KV_F_MS):
 *   GETSET k v = SET GET; SETEX k s v = SET EXP SETEX num=s; PSETEX = the same with MS;
 *   SET EX s | PX ms | EXAT s | PXAT ms = EXP [MS] [ABS]; UNLINK = DEL; INCR/DECR/DECRBY =
 *   INCRBY num=1/-1/-n (DECRBY of INT64_MIN: the node answers Redis's "decrement would
 *   overflow"); SUBSTR = GETRANGE; TOUCH = EXISTS; PTTL = TTL MS; EXPIRETIME = TTL ABS;
 *   PEXPIRETIME = TTL MS ABS; PEXPIRE/EXPIREAT/PEXPIREAT = EXPIRE MS / ABS / MS ABS;
 *   COPY ... DB d = num d (default: the current db); FLUSHDB/FLUSHALL [ASYNC|SYNC] ignore the
 *   option. Checks that Redis makes before looking at any key are the node's (and kv_op_check
 *   refuses what they refuse): syntax, NX with XX, GT with LT, EX 0 or negative ("invalid expire
 *   time in 'set' command"), seconds that overflow milliseconds, a negative SETRANGE offset,
 *   a db out of range. What depends on the data or the clock (an overflow of clock + time, a
 *   non-integer value, sizes) is decided here.
 */
enum kv_code {
    KV_C_GET = 1,
    KV_C_MGET = 2,
    KV_C_EXISTS = 3,
    KV_C_STRLEN = 4,
    KV_C_GETRANGE = 5,
    KV_C_TTL = 6,
    KV_C_TYPE = 7,
    KV_C_DBSIZE = 8,
    KV_C_WATCH = 9,
    KV_C_GETBIT = 10,
    KV_C_BITCOUNT = 11,
    KV_C_BITPOS = 12,
    KV_C_SET = 32,
    KV_C_SETNX = 33,
    KV_C_GETDEL = 34,
    KV_C_GETEX = 35,
    KV_C_DEL = 36,
    KV_C_INCRBY = 37,
    KV_C_INCRBYFLOAT = 38,
    KV_C_APPEND = 39,
    KV_C_SETRANGE = 40,
    KV_C_MSET = 41,
    KV_C_MSETNX = 42,
    KV_C_EXPIRE = 43,
    KV_C_PERSIST = 44,
    KV_C_RENAME = 45,
    KV_C_RENAMENX = 46,
    KV_C_COPY = 47,
    KV_C_MOVE = 48,
    KV_C_FLUSHDB = 49,
    KV_C_FLUSHALL = 50,
    KV_C_PURGE = 51,
    KV_C_DELIFEQ = 52,
    KV_C_PEXPIREIFEQ = 53,
    KV_C_SWAPDB = 54,
    KV_C_ACL_SETUSER = 55, /* name rule...: ACL SETUSER (acl.h; ">pass" already hashed) */
    KV_C_ACL_DELUSER = 56, /* name...: ACL DELUSER */
    KV_C_SETBIT = 57,
    KV_C_BITOP = 58,
}; /* wire values: never renumber */

enum kv_flag {
    KV_F_NX = 1u << 0,
    KV_F_XX = 1u << 1,
    KV_F_GT = 1u << 2,
    KV_F_LT = 1u << 3,
    KV_F_GET = 1u << 4,     /* SET ... GET (GETSET) */
    KV_F_KEEPTTL = 1u << 5, /* SET ... KEEPTTL */
    KV_F_PERSIST = 1u << 6, /* GETEX ... PERSIST */
    KV_F_REPLACE = 1u << 7, /* COPY ... REPLACE */
    KV_F_EXP = 1u << 8,     /* SET/GETEX: num is an expiry (EX PX EXAT PXAT; SETEX PSETEX) */
    KV_F_MS = 1u << 9,      /* the time is in milliseconds, else seconds */
    KV_F_ABS = 1u << 10,    /* the time is an absolute Unix time, else relative to the clock */
    KV_F_SETEX = 1u << 11,  /* SET: it is SETEX/PSETEX (Redis's error names that command) */
    KV_F_ADD = 1u << 12,    /* PEXPIREIFEQ: num is added to the key's time to live */
};                          /* wire values */

struct kv_arg {
    const uint8_t *p; /* borrowed; NULL when len == 0 */
    uint32_t len;
};

/* One op to encode (argv borrowed). */
struct kv_op2 {
    uint8_t code; /* enum kv_code */
    uint8_t db;   /* < KV_DBS */
    uint16_t flags;
    int64_t num;
    uint32_t argc;
    const struct kv_arg *argv;
};

struct kv_watch {
    uint8_t db;
    uint64_t version; /* kv_watch_version at WATCH time: the mod index, or 0 for "absent" */
    const uint8_t *key;
    uint32_t key_len;
};

/* A command to encode. */
struct kv_cmd2 {
    uint8_t flags;      /* KV_CMD2_MULTI or 0 */
    uint64_t client_id; /* usually 0 here: the replica writes the request's */
    uint64_t seq;
    uint64_t time_ms;     /* usually 0 here: the leader stamps it */
    uint64_t watch_index; /* MULTI: the watch point W (kv.h WATCH); 0 without watches */
    uint32_t n_watch;
    const struct kv_watch *watches;
    uint32_t n_ops;
    const struct kv_op2 *ops;
};

/* Checks one op against the table above: known code, db < KV_DBS, only its flags, argc in its
 * range, num in range (db numbers < KV_DBS, offsets >= 0, positive SET/GETEX times ...). RK_OK
 * or RK_EINVAL with *err (may be NULL) saying what. The node should parse so that this holds; a
 * failing op is a bug, or bad bytes in a log entry. */
int kv_op_check(const struct kv_op2 *op, struct rk_errmsg *err);

/* The exact encoded size of c; SIZE_MAX when it cannot fit a size_t. */
size_t kv_cmd2_size(const struct kv_cmd2 *c);

/* Encodes c into buf[0..cap): RK_OK and *out_len = kv_cmd2_size(c); RK_EINVAL for an op that
 * kv_op_check refuses, too many ops, watches or args, watches without MULTI, a plain command
 * with n_ops != 1, seq 0 with a client id; RK_ETOOBIG for a key or value over its limit or cap
 * too small. Nothing written on error. */
int kv_cmd2_encode(const struct kv_cmd2 *c, uint8_t *buf, size_t cap, size_t *out_len);

/* Whether data is a version-2 command (its first byte; not a full check). */
bool kv_cmd_is_v2(const uint8_t *data, size_t len);

/* Writes the stamp / session into an encoded version-2 command in place (len >= header). */
void kv_cmd2_set_time(uint8_t *data, size_t len, uint64_t time_ms);
void kv_cmd2_set_session(uint8_t *data, size_t len, uint64_t client_id, uint64_t seq);

/* A decoded command: a view into the (borrowed) buffer. */
struct kv_cmd2_view {
    uint8_t flags;
    uint64_t client_id, seq, time_ms, watch_index;
    uint32_t n_watch, n_ops;
    const uint8_t *buf;
    size_t len;
    size_t watch_at, ops_at; /* offsets of the first watch and of the first op */
};

/* One op of a decoded command. */
struct kv_op_view {
    uint8_t code, db;
    uint16_t flags;
    int64_t num;
    uint32_t argc;
    const uint8_t *args; /* argc x [len u32][bytes], checked */
    size_t args_len;
};

struct kv_cmd2_iter {
    const uint8_t *buf;
    size_t len, pos;
    uint32_t left;
};

/* Decodes buf[0..len) (untrusted) strictly. RK_OK, or RK_EMALFORMED with
 * "kv command: <field> at offset N: ..." in *err (may be NULL). */
int kv_cmd2_decode(const uint8_t *buf, size_t len, struct kv_cmd2_view *v, struct rk_errmsg *err);

/* Iterate a decoded command's watches and ops (borrowed from its buffer). */
void kv_cmd2_watches(const struct kv_cmd2_view *v, struct kv_cmd2_iter *it);
bool kv_cmd2_next_watch(struct kv_cmd2_iter *it, struct kv_watch *out);
void kv_cmd2_ops(const struct kv_cmd2_view *v, struct kv_cmd2_iter *it);
bool kv_cmd2_next_op(struct kv_cmd2_iter *it, struct kv_op_view *out);
/* The args of an op, in order. */
void kv_op_args(const struct kv_op_view *op, struct kv_cmd2_iter *it);
bool kv_op_next_arg(struct kv_cmd2_iter *it, struct kv_arg *out);

/* "GET", "SET", ... or "?". Static. */
const char *kv_code_name(uint8_t code);

/* ==== results ============================================================================== */

/* A result is one value, encoded (little-endian):
 *   '+' [len u32][text]   simple status ("OK", "string")
 *   '-' [len u32][text]   error, the whole Redis text ("ERR no such key")
 *   ':' [i64]             integer
 *   '$' [len u32][bytes]  bulk string
 *   '_'                   nil (null bulk: RESP2 $-1, RESP3 _)
 *   '*' [n u32] n values  array (EXEC's replies, MGET)
 *   'N'                   nil array (an EXEC aborted by WATCH: RESP2 *-1, RESP3 _)
 * Depth is at most 2 (EXEC of MGET). */
enum kv_res_type {
    KV_RES_STATUS = '+',
    KV_RES_ERROR = '-',
    KV_RES_INT = ':',
    KV_RES_BULK = '$',
    KV_RES_NIL = '_',
    KV_RES_ARRAY = '*',
    KV_RES_NIL_ARRAY = 'N',
};

struct kv_res_item {
    uint8_t type;     /* enum kv_res_type */
    int64_t num;      /* INT: the value; ARRAY: the count */
    const uint8_t *p; /* STATUS, ERROR, BULK: the bytes (borrowed) */
    uint32_t len;
};

/* Checks buf[0..len) holds exactly one value (untrusted: e.g. a session record read from disk).
 * RK_OK or RK_EMALFORMED with *err (may be NULL). */
int kv_res_check(const uint8_t *buf, size_t len, struct rk_errmsg *err);

/* Walks a checked result in pre-order: an ARRAY item is followed by its num elements. */
struct kv_res_iter {
    const uint8_t *buf;
    size_t len, pos;
};
void kv_res_begin(struct kv_res_iter *it, const uint8_t *buf, size_t len);
bool kv_res_next(struct kv_res_iter *it, struct kv_res_item *out);

/* ==== time, reads, watches, databases ======================================================= */

/* The node's now (Unix ms) for reads: kv_get, kv_get_db, kv_read, kv_watch_version, kv_scan_db
 * treat a key whose deadline <= it as absent. 0 (the default): the state machine's clock. */
void kv_set_read_time_ms(struct kv *kv, uint64_t now_ms);

/* The state machine's clock: the max stamp of the version-2 entries applied (kv.h TIME). */
uint64_t kv_clock_ms(const struct kv *kv);

/* The value and deadline (0: none) of a live key of db. RK_OK (borrowed until the next call),
 * RK_ENOENT, RK_ECORRUPT for a stored record that does not decode, or the store's error. */
int kv_get_db(struct kv *kv, uint8_t db, const uint8_t *key, uint32_t key_len, const uint8_t **val,
              uint32_t *val_len, uint64_t *deadline_ms);

/* Executes a read op (codes 1..31; kv_op_check must accept it) on the state as applied now, at
 * the read time: RK_OK and *res an encoded result borrowed until the next call, or the store's
 * error. Not linearizable by itself: run it after a read barrier (a ReadIndex read). */
int kv_read(struct kv *kv, const struct kv_op2 *op, const uint8_t **res, uint32_t *res_len);

/* Executes an encoded plain command whose op is a read (codes 1..31) as kv_read does: what the
 * replica runs for a REPLICA_CMD read once its read index is applied. RK_OK and the result
 * (borrowed until the next call); RK_EINVAL when data is not such a command; store errors. */
int kv_read_cmd(struct kv *kv, const uint8_t *data, size_t len, const uint8_t **res,
                uint32_t *res_len);

/* Whether data is a plain version-2 command of one read op (cheap: header and op code only;
 * the decode is kv_read_cmd's). */
bool kv_cmd2_is_read(const uint8_t *data, size_t len);

/* WATCH: the version of a key as applied now (its mod index if live at the read time, else 0).
 * Take kv_applied_index() at the same moment as the watch point. RK_OK or the store's error. */
int kv_watch_version(struct kv *kv, uint8_t db, const uint8_t *key, uint32_t key_len,
                     uint64_t *version);

/* Keys of db (including those expired but not yet purged, as Redis's DBSIZE). */
uint64_t kv_dbsize(const struct kv *kv, uint8_t db);

/* As kv_scan_keys for the live keys of one db (expiry checked at the read time). */
int kv_scan_db(struct kv *kv, uint8_t db,
               bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx);

/* A page of kv_scan_db, for SCAN and RANDOMKEY: the live keys of db among the store's next
 * `budget` records (of any db or kind) from the cursor on, in the order of a 32-bit hash of the
 * stored key, ascending, a page never splitting the keys of one hash. *next: the cursor of the
 * next page, 0 when this one reached the end (cursor 0 starts; a cursor above 2^32 - 1 is
 * past the end). The order is a function of the set of keys alone (the same on every replica,
 * after restarts and merges), so a key present from the first page to the last is returned
 * whatever happens in between on whichever node serves each page (Redis's SCAN guarantee),
 * and no key is returned twice. O(budget) on
 * Bitcask; a pass over the store on the in-memory store. */
int kv_scan_db_range(struct kv *kv, uint8_t db, uint64_t cursor, uint64_t budget,
                     bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx,
                     uint64_t *next);

/* What a walk of a pinned view (kv/view.h) opened at the applied index now needs to give out
 * the keys kv_scan_db(db) would: the physical db whose store records ('0' + it, then the key:
 * kv_user_record_decode) hold db's keys now (SWAPDB permutes them), and the read time (a key
 * whose deadline <= it is expired). */
uint8_t kv_db_physical(const struct kv *kv, uint8_t db);
uint64_t kv_read_time_ms(const struct kv *kv);

/* Keys with a deadline, over all dbs, and in db (INFO keyspace's expires=). */
uint64_t kv_expiring_count(const struct kv *kv);
uint64_t kv_db_expiring(const struct kv *kv, uint8_t db);

/* The leader's expiry sweep: an encoded version-2 PURGE command (no session, time 0: stamp it)
 * of up to max (<= KV_PURGE_MAX) keys whose deadline <= now_ms, found by scanning at most
 * budget slots of the in-memory expiry table from where the last call stopped. RK_OK and
 * *n keys (0: nothing to do, *cmd NULL); *cmd borrowed until the next call into the kv;
 * RK_ENOMEM. */
int kv_expired_command(struct kv *kv, uint64_t now_ms, uint32_t max, uint32_t budget,
                       const uint8_t **cmd, size_t *cmd_len, uint32_t *n);

/* Decodes a stored user record ('0' + db, key; untrusted: tools): RK_OK with the db, the key
 * (without prefix), the value, its mod index and deadline (0: none); RK_ECORRUPT. */
int kv_user_record_decode(const uint8_t *key, uint32_t key_len, const uint8_t *val,
                          uint32_t val_len, uint8_t *db, const uint8_t **ukey, uint32_t *ukey_len,
                          const uint8_t **uval, uint32_t *uval_len, uint64_t *mod_index,
                          uint64_t *deadline_ms, struct rk_errmsg *err);

#endif
