/*
 * kv_int.h — private to core/kv: the state machine's struct and the helpers its files share
 * (kv.c: sessions, version-1 apply, create; exec.c: version-2 apply and reads; exptab.c: the
 * in-memory expiry table; res.c: results; cmd2.c: the version-2 encoding).
 */
#ifndef RK_KV_INT_H
#define RK_KV_INT_H

#include "kv/acl.h"
#include "kv/kv.h"

/* ---- results being built (res.c) -------------------------------------------------------- */

struct kv_resbuf {
    const struct rk_alloc *alloc;
    uint8_t *buf;
    size_t len, cap;
    bool oom; /* sticky: an append failed */
};

void resbuf_reset(struct kv_resbuf *b);
void resbuf_free(struct kv_resbuf *b);
/* Empties b, and frees its memory when it grew past keep_bytes (a FLUSHDB's key list, a large
 * value once assembled): the next command starts from a small buffer again. */
void resbuf_trim(struct kv_resbuf *b, size_t keep_bytes);
#define KV_SCRATCH_KEEP_BYTES (1u << 20)
void res_status(struct kv_resbuf *b, const char *text);
void res_error(struct kv_resbuf *b, const char *text);
void res_int(struct kv_resbuf *b, int64_t v);
void res_bulk(struct kv_resbuf *b, const uint8_t *p, uint32_t len);
void res_nil(struct kv_resbuf *b);
void res_nil_array(struct kv_resbuf *b);
/* Starts an array of n elements: the caller appends exactly n values. */
void res_array(struct kv_resbuf *b, uint32_t n);

/* ---- the in-memory expiry table (exptab.c) ----------------------------------------------- */

/* (db, key) -> deadline for every key with a deadline: what Redis keeps as db->expires. It
 * answers "does this key have a deadline" without reading the store, and the leader's sweep
 * walks it. Open addressing, linear probing, backward-shift deletion; entries own a copy of
 * [db][key]. Rebuilt by kv_create from the 'x' records. */
struct exp_entry {
    uint64_t hash;
    uint64_t deadline_ms;
    uint8_t *dbkey; /* [db][key], owned; NULL: empty slot */
    uint32_t dbkey_len;
};

struct exptab {
    const struct rk_alloc *alloc;
    struct exp_entry *slots;
    uint32_t mask; /* slots - 1, or 0 with no slots */
    uint32_t n;
    uint32_t cursor; /* the sweep's position */
};

void exptab_init(struct exptab *t, const struct rk_alloc *a);
void exptab_free(struct exptab *t);
/* The deadline of dbkey, 0 if it has none. */
uint64_t exptab_get(const struct exptab *t, const uint8_t *dbkey, uint32_t len);
/* Sets (deadline > 0) or removes (deadline 0) dbkey's deadline. RK_OK or RK_ENOMEM (unchanged). */
int exptab_set(struct exptab *t, const uint8_t *dbkey, uint32_t len, uint64_t deadline_ms);
/* Calls fn for the entries of up to budget slots from the cursor on, advancing it; stops early
 * when fn returns false. */
void exptab_sweep(struct exptab *t, uint32_t budget,
                  bool (*fn)(void *ctx, const uint8_t *dbkey, uint32_t len, uint64_t deadline),
                  void *ctx);
void exptab_clear(struct exptab *t);

/* ---- the state machine ------------------------------------------------------------------ */

struct kv_session {
    uint64_t client_id;
    uint64_t last_seq;
    uint64_t last_index;
    int64_t last_num;
    uint8_t last_op;
    uint8_t last_status; /* KV_OK, or the error result of an INCRBY */
    uint32_t prev;       /* LRU neighbours, KV_NIL at the ends */
    uint32_t next;
};

struct kv_slot {
    uint64_t hash;
    uint32_t session; /* pool index + 1; 0: the slot is empty */
};

#define KV_NIL UINT32_MAX

/* The 'm' "kv" record. */
#define KV_META_KEY_BYTES 3u
#define KV_META_VERSION   1u
#define KV_META_BYTES     (1u + 8u + 8u * KV_DBS + KV_DBS + 8u * KV_DBS)
/* A user record's header: [flags u8][mod_index u64][deadline u64 if flags & REC_DEADLINE]. */
#define REC_DEADLINE   1u
#define REC_HEADER_MIN 9u
#define REC_HEADER_MAX 17u

struct kv_meta {
    uint64_t clock_ms;
    uint64_t del_index[KV_DBS];  /* by physical db */
    uint8_t dbmap[KV_DBS];       /* logical (SELECTed) db -> physical db (store prefix) */
    uint64_t swap_index[KV_DBS]; /* by logical db: the last SWAPDB that involved it */
};

struct kv {
    const struct rk_alloc *alloc;
    struct kv_store *store;
    uint64_t applied_index;
    uint8_t *key_buf;        /* KV_STORE_MAX_KEY_BYTES: a store key */
    uint8_t *key_buf2;       /* a second one (RENAME, COPY, 'x' records) */
    struct kv_session *pool; /* max_sessions */
    struct kv_slot *slots;   /* mask + 1 */
    uint32_t mask;
    uint32_t max_sessions;
    uint32_t n_sessions;
    uint32_t n_meta;   /* KV_KEY_META records in the store, kv's own included */
    bool has_meta;     /* the 'm' "kv" record exists */
    bool meta_dirty;   /* meta changed by the entry being applied: written at its end */
    uint32_t lru_head; /* least recently used */
    uint32_t lru_tail; /* most recently used */
    struct rk_errmsg last_err;

    /* Version 2. */
    struct kv_meta meta;         /* as of applied_index */
    uint64_t read_now_ms;        /* kv_set_read_time_ms; 0: the clock */
    uint64_t n_keys[KV_DBS];     /* user records per db, dbs 1.. (db 0: kv_count's difference) */
    uint64_t n_expiry_records;   /* 'x' records (== exp.n whenever an apply did not fail) */
    uint64_t n_expiring[KV_DBS]; /* of them, per db (INFO keyspace's expires=) */
    struct exptab exp;
    struct kv_resbuf res;  /* the result of the last command, or of kv_read */
    struct kv_resbuf tmp;  /* scratch: values being assembled, key lists */
    struct kv_resbuf tmp2; /* scratch: a second value (APPEND's old, COPY's) */

    /* ACL users (acl.h, acltab.c): sorted by name (bytewise, as Redis's rax), "default"
     * always among them; each owned. acl_gen counts the changes (not state: the node's cache
     * key). */
    struct kv_acl_user *users[KV_ACL_MAX_USERS];
    uint32_t n_users;
    uint64_t acl_gen;
    uint32_t n_acl_records; /* 'a' records in the store */
};

/* A user record as read from the store. */
struct kv_rec {
    bool exists; /* a record is stored (it may be expired) */
    bool live;   /* exists and not expired at the time asked */
    uint64_t mod_index;
    uint64_t deadline_ms; /* 0: none */
    const uint8_t *val;   /* borrowed until the next store call */
    uint32_t val_len;
};

/* Writes the store key ['0' + db][key] into buf; returns the length. */
uint32_t kv_user_key(uint8_t *buf, uint8_t db, const uint8_t *key, uint32_t key_len);
/* Reads the record of (db, key) as of time now_ms. RK_OK (also when absent: rec->exists),
 * RK_ECORRUPT, or the store's error. */
int kv_rec_get(struct kv *kv, uint8_t db, const uint8_t *key, uint32_t key_len, uint64_t now_ms,
               struct kv_rec *rec);
/* Writes (db, key) := val with the given deadline (0: none) and mod index = index, keeping the
 * key count (existed: whether a record was stored, or KV_EXISTED_UNKNOWN: then looked up only
 * where a count needs it, physical dbs >= 1), the 'x' record and the expiry table in step. A
 * deadline <= now_ms removes the key instead. Store writes first, memory last, each store
 * write idempotent: a retry after a failure writes the same (the count of a physical db >= 1
 * excepted: a retry finds the key its failed attempt created). */
#define KV_EXISTED_UNKNOWN (-1)
int kv_rec_put(struct kv *kv, uint64_t index, uint8_t db, const uint8_t *key, uint32_t key_len,
               const uint8_t *val, uint32_t val_len, uint64_t deadline_ms, uint64_t now_ms,
               int existed);
/* The same, by the physical db (a store prefix, as PURGE names its keys). The others take the
 * logical db (the client's SELECT) and map it through meta.dbmap (SWAPDB). */
int kv_rec_get_phys(struct kv *kv, uint8_t db, const uint8_t *key, uint32_t key_len,
                    uint64_t now_ms, struct kv_rec *rec);
int kv_rec_del_phys(struct kv *kv, uint64_t index, uint8_t db, const uint8_t *key, uint32_t key_len,
                    bool *existed);
/* Removes (db, key) if stored; *existed. Keeps counts, 'x', the table, del_index in step. */
int kv_rec_del(struct kv *kv, uint64_t index, uint8_t db, const uint8_t *key, uint32_t key_len,
               bool *existed);
/* The time reads use. */
uint64_t kv_read_now(const struct kv *kv);
/* Writes the 'm' "kv" record (meta) at index. */
int kv_meta_write(struct kv *kv, uint64_t index, const struct kv_meta *m);

/* acltab.c: the user table. */
/* Loads one 'a' record (kv_create's scan): RK_OK, RK_ECORRUPT, RK_EINVAL, RK_ENOMEM. */
int kv_acl_load(struct kv *kv, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                uint32_t val_len, struct rk_errmsg *err);
/* Adds the built-in default user if no record named it (kv_create, after the scan). */
int kv_acl_load_done(struct kv *kv, struct rk_errmsg *err);
void kv_acl_free(struct kv *kv);
/* The ops KV_C_ACL_SETUSER and KV_C_ACL_DELUSER. */
int kv_acl_exec(struct kv *kv, uint64_t index, const struct kv_op_view *op);
/* kv_valid's part: the table matches the 'a' records. */
bool kv_acl_valid(const struct kv *kv);

/* exec.c: applies a version-2 entry (kv_apply dispatches on the version byte). */
int kv_apply_v2(struct kv *kv, uint64_t index, const uint8_t *data, uint32_t len,
                struct kv_result *out);
/* Runs one op against the store at time now_ms, appending its result to kv->res. write is
 * false for kv_read (only read codes reach it then). */
int kv_exec_op(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now_ms);
/* bitops.c: the bitmap writes (SETBIT, BITOP) and reads (GETBIT, BITCOUNT, BITPOS), as
 * kv_exec_op runs an op: one value appended to kv->res (X2). */
int kv_bitops_exec(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now_ms);
int kv_bitops_read(struct kv *kv, const struct kv_op_view *op, uint64_t now_ms);

/* kv.c, for exec.c: the session plumbing. */
uint32_t kv_session_find(const struct kv *kv, uint64_t client_id);
int kv_session_write_cmd(struct kv *kv, uint64_t index, uint64_t client_id, uint64_t seq,
                         const uint8_t *res, uint32_t res_len);
int kv_session_evict_for(struct kv *kv, uint64_t index, uint32_t i, uint64_t *evicted);
void kv_session_applied(struct kv *kv, uint32_t i, uint64_t client_id, uint64_t seq, uint8_t op,
                        uint64_t index, uint64_t evicted);
/* A version-2 retry (seq <= last): the cached result into kv->res (or KV_STALE), the session
 * touched at index in the store and in memory. */
int kv_session_retry_cmd(struct kv *kv, uint64_t index, uint32_t i, uint64_t seq,
                         struct kv_result *out);

#endif
