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

/* "PUT", "DEL", "PUT_IF", "INCRBY", "MSET", or "?" for anything else. Static strings. */
const char *kv_op_name(uint8_t op);

/* ---- the store layout (durable: part of the on-disk format) ------------------------------ */

/* The kv keeps two namespaces in its store, told apart by the key's first byte:
 *
 *     'u' + K     user key K (0..KV_MAX_KEY_BYTES bytes); the value is the user's value
 *     's' + C     the session of client C (u64 big-endian, so that a sorted store keeps the
 *                 sessions together, in client id order); the value is a session record
 *
 * Session record, little-endian, fixed width (KV_SESSION_RECORD_BYTES):
 *     [version u8 = 1][last_seq u64][status u8][op u8][num i64][last_index u64]
 * last_seq and (status, op, num) are the cached result of the client's last applied command;
 * status is KV_OK, or KV_NOT_INTEGER / KV_OVERFLOW (with num 0) for an INCRBY;
 * last_index is the log index of the client's last command (the LRU key). A record is checked
 * before it is written (asserts) and after it is read (RK_ECORRUPT). Nothing else is stored:
 * kv_create refuses a store holding a key of neither shape.
 *
 * A store must accept keys of KV_STORE_MAX_KEY_BYTES: a user key at the limit plus its prefix. */
#define KV_KEY_USER             'u'
#define KV_KEY_SESSION          's'
/* Records of the host's own (the replica keeps the index and term of an installed snapshot
 * there, written in the same batch as the snapshot); kv loads past them and does not count
 * them as user keys. */
#define KV_KEY_META             'm'
#define KV_STORE_MAX_KEY_BYTES  (KV_MAX_KEY_BYTES + 1u)
#define KV_SESSION_KEY_BYTES    9u
#define KV_SESSION_VERSION      1u
#define KV_SESSION_RECORD_BYTES 27u

/* ---- the state machine ------------------------------------------------------------------ */

/* The largest max_sessions accepted: bounds the memory kv_create reserves. */
#define KV_MAX_SESSIONS         (1u << 20)
#define KV_DEFAULT_MAX_SESSIONS 4096u

struct kv_config {
    const struct rk_alloc *alloc; /* borrowed; must outlive the kv */
    struct kv_store *store;       /* borrowed; must outlive the kv */
    uint32_t max_sessions;        /* default KV_DEFAULT_MAX_SESSIONS when 0 */
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
};

struct kv;

/* Creates a state machine over c->store, which may hold the state of an earlier run (a restart
 * over a durable store). The session table (max_sessions sessions) and a key buffer are reserved
 * here, once: kv_apply allocates nothing of its own. The table is rebuilt from the store's
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
 * end_batch: out->status is KV_STORE_ERROR and out->err the same code. The entry is NOT applied:
 * kv_applied_index() and the session table are unchanged. The store may hold part of the
 * entry's batch, never closed (the writes before the failed one, store.h S1). A store error is
 * local to this replica, so the entry must not be skipped (this replica would diverge):
 *   - over a durable store the replica must stop (store.h S5: a failed end_batch is fatal, and
 *     the unclosed batch is dropped when the store is reopened); after the restart the entry is
 *     replayed from the log, from the store's applied_index on.
 *   - over a store whose failed put or del changes nothing and whose end_batch cannot fail (the
 *     memstore), the caller may instead retry kv_apply with the same index and data: the retry
 *     writes the same batch again (see above: the data op is last) and gives the same result.
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

uint64_t kv_applied_index(const struct kv *kv);

/* The value of user key key, borrowed until the next kv_apply. RK_OK; RK_ENOENT if absent (a
 * key over KV_MAX_KEY_BYTES is always absent); or the store's error. Session records are not
 * user keys: no key reaches them. */
int kv_get(struct kv *kv, const uint8_t *key, uint32_t key_len, const uint8_t **val,
           uint32_t *val_len);

/* Number of live user keys: the store's count less its session records (one per session).
 * Exact whenever the last kv_apply did not fail. */
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
 * get per session: for tests and slow asserts. K5 (the store's records match the table) holds
 * whenever the last kv_apply did not fail. */
bool kv_valid(const struct kv *kv);

/* "ok", "duplicate", "stale", "bad command", "store error", "not an integer", "overflow", or
 * "?". Static strings. */
const char *kv_status_name(uint8_t status);

#endif
