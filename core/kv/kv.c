/*
 * kv.c — the replicated state machine: apply, and the client session table (kv.h).
 *
 * Sessions live in a pool of max_sessions structs reserved by kv_create, found by client id
 * through an open-addressing table (Robin Hood probing, backward-shift deletion, as in
 * memstore.c) and chained in an intrusive doubly linked LRU list. Opening a session when the
 * pool is full evicts the list's head and reuses its struct, so kv_apply never allocates and
 * cannot fail on its own account: its only failure is the store's.
 *
 * Invariants (kv_valid checks them):
 *   K1  n_sessions <= max_sessions; the live sessions are pool[0, n_sessions), and the LRU list
 *       holds each of them exactly once.
 *   K2  The LRU list runs from head to tail in strictly increasing last_index, and every
 *       last_index <= applied_index: kv_apply moves a session to the tail at a fresh, larger
 *       index, so the head is always the least recently used (the eviction victim).
 *   K3  The table holds one slot per live session, under the XXH3 hash of its client id, in
 *       Robin Hood order, and its capacity keeps the load <= 3/4 at max_sessions.
 *   K4  A live session has client_id != 0 and last_seq >= 1; no two share a client id.
 *   K5  Durability: every live session has a record in the store under 's' + client id that
 *       decodes to it (last_seq, cached result, last_index), and the store holds no other
 *       session record; so the store holds n_sessions session records, and kv_count is the
 *       store's count less n_sessions, the meta records and the 'x' records. Holds whenever
 *       the last kv_apply did not fail.
 *   K6  Layout (version 2): n_keys[db] (db >= 1) is the number of user records of db; every
 *       user record decodes, its mod index is in (0, applied_index], and the expiry table holds
 *       exactly its deadline (none: absent); the 'x' records are exactly the table's entries.
 *
 * Apply order: decode, find the session, plan the batch (the session record, the evicted
 * session's record, the data op: kv.h), write it and close it with end_batch, and only then
 * change memory (the session table, the applied index). A store error therefore leaves the
 * memory as it was, and, the data op being last, a retry of the same entry writes the same
 * batch.
 *
 * Restart (kv_create): the session records are loaded into pool[0, n) by one scan, sorted by
 * last_index (a heap sort: no recursion, no allocation), and linked in that order, so the table
 * and its LRU order are a function of the records alone (K2 and K5 give back the same table).
 */
#include "kv/kv_int.h"

#include <inttypes.h>
#include <string.h>

#include <xxhash.h>

#include "common/assert.h"

#define TABLE_MIN_SLOTS 16u

const char *kv_status_name(uint8_t status)
{
    switch (status) {
    case KV_OK:
        return "ok";
    case KV_DUPLICATE:
        return "duplicate";
    case KV_STALE:
        return "stale";
    case KV_BAD_COMMAND:
        return "bad command";
    case KV_STORE_ERROR:
        return "store error";
    case KV_NOT_INTEGER:
        return "not an integer";
    case KV_OVERFLOW:
        return "overflow";
    }
    return "?";
}

/* ---- the session table ------------------------------------------------------------------ */

static uint64_t client_hash(uint64_t client_id)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(client_id >> (8 * i));
    return XXH3_64bits(le, sizeof(le)); /* the same on every replica, whatever its byte order */
}

static uint32_t slot_dist(const struct kv *kv, uint32_t pos)
{
    RK_ASSERT(kv->slots[pos].session != 0);
    return (pos - (uint32_t)(kv->slots[pos].hash & kv->mask)) & kv->mask;
}

/* The slot of client_id's session, or KV_NIL. */
static uint32_t table_find(const struct kv *kv, uint64_t client_id, uint64_t hash)
{
    uint32_t pos = (uint32_t)(hash & kv->mask);
    for (uint32_t dist = 0; dist <= kv->mask; dist++) {
        const struct kv_slot *sl = &kv->slots[pos];
        if (sl->session == 0 || slot_dist(kv, pos) < dist)
            return KV_NIL; /* K3: the client would have displaced this occupant */
        if (sl->hash == hash && kv->pool[sl->session - 1].client_id == client_id)
            return pos;
        pos = (pos + 1) & kv->mask;
    }
    RK_ASSERT(!"a probe went round the whole session table");
    return KV_NIL;
}

static void table_insert(struct kv *kv, uint64_t hash, uint32_t session)
{
    struct kv_slot cur = {.hash = hash, .session = session + 1};
    uint32_t pos = (uint32_t)(hash & kv->mask);
    uint32_t dist = 0;
    for (uint32_t step = 0; step <= kv->mask; step++) {
        struct kv_slot *sl = &kv->slots[pos];
        if (sl->session == 0) {
            *sl = cur;
            return;
        }
        uint32_t resident = slot_dist(kv, pos);
        if (resident < dist) { /* Robin Hood: the farther-from-home entry takes the slot */
            struct kv_slot tmp = *sl;
            *sl = cur;
            cur = tmp;
            dist = resident;
        }
        pos = (pos + 1) & kv->mask;
        dist++;
    }
    RK_ASSERT(!"insert into a full session table");
}

/* Empties slot pos and shifts the run after it back by one (no tombstones). */
static void table_remove(struct kv *kv, uint32_t pos)
{
    RK_ASSERT(kv->slots[pos].session != 0);
    for (uint32_t step = 0; step < kv->mask; step++) {
        uint32_t next = (pos + 1) & kv->mask;
        if (kv->slots[next].session == 0 || slot_dist(kv, next) == 0)
            break;
        kv->slots[pos] = kv->slots[next];
        pos = next;
    }
    memset(&kv->slots[pos], 0, sizeof(kv->slots[pos]));
}

/* ---- the LRU list ----------------------------------------------------------------------- */

static void lru_unlink(struct kv *kv, uint32_t i)
{
    struct kv_session *s = &kv->pool[i];
    if (s->prev == KV_NIL)
        kv->lru_head = s->next;
    else
        kv->pool[s->prev].next = s->next;
    if (s->next == KV_NIL)
        kv->lru_tail = s->prev;
    else
        kv->pool[s->next].prev = s->prev;
    s->prev = KV_NIL;
    s->next = KV_NIL;
}

static void lru_push_tail(struct kv *kv, uint32_t i)
{
    struct kv_session *s = &kv->pool[i];
    s->prev = kv->lru_tail;
    s->next = KV_NIL;
    if (kv->lru_tail == KV_NIL)
        kv->lru_head = i;
    else
        kv->pool[kv->lru_tail].next = i;
    kv->lru_tail = i;
}

/* Marks session i used by the command at index (K2: index is the largest yet). */
static void session_touch(struct kv *kv, uint32_t i, uint64_t index)
{
    RK_ASSERT(index > kv->pool[i].last_index);
    if (kv->lru_tail != i) {
        lru_unlink(kv, i);
        lru_push_tail(kv, i);
    }
    kv->pool[i].last_index = index;
}

/* The pool index of client_id's session, or KV_NIL. */
static uint32_t session_find(const struct kv *kv, uint64_t client_id)
{
    RK_ASSERT(client_id != 0);
    uint32_t pos = table_find(kv, client_id, client_hash(client_id));
    return pos == KV_NIL ? KV_NIL : kv->slots[pos].session - 1;
}

/* Opens a session for client_id (which has none), evicting the least recently used one when
 * the pool is full. Cannot fail: the pool and table were reserved by kv_create. */
static uint32_t session_open(struct kv *kv, uint64_t client_id)
{
    uint32_t i;
    if (kv->n_sessions < kv->max_sessions) {
        i = kv->n_sessions++;
    } else {
        i = kv->lru_head; /* K2: the lowest last_index */
        RK_ASSERT(i != KV_NIL);
        uint64_t victim = kv->pool[i].client_id;
        uint32_t pos = table_find(kv, victim, client_hash(victim));
        RK_ASSERT(pos != KV_NIL);
        table_remove(kv, pos);
        lru_unlink(kv, i);
    }
    struct kv_session *s = &kv->pool[i];
    memset(s, 0, sizeof(*s));
    s->client_id = client_id;
    s->prev = KV_NIL;
    s->next = KV_NIL;
    table_insert(kv, client_hash(client_id), i);
    lru_push_tail(kv, i);
    return i;
}

static void session_info(const struct kv_session *s, struct kv_session_info *out)
{
    memset(out, 0, sizeof(*out));
    out->client_id = s->client_id;
    out->last_seq = s->last_seq;
    out->last_index = s->last_index;
    out->result.status = s->last_status;
    out->result.op = s->last_op;
    out->result.client_id = s->client_id;
    out->result.seq = s->last_seq;
    out->result.num = s->last_num;
    out->result.err = RK_OK;
}

/* ---- the store layout (kv.h) ------------------------------------------------------------ */

#define REC_OFF_VERSION    0u
#define REC_OFF_LAST_SEQ   1u
#define REC_OFF_STATUS     9u
#define REC_OFF_OP         10u
#define REC_OFF_NUM        11u
#define REC_OFF_LAST_INDEX 19u
_Static_assert(REC_OFF_LAST_INDEX + 8 == KV_SESSION_RECORD_BYTES, "session record offsets add up");
_Static_assert(KV_SESSION_KEY_BYTES == 1 + sizeof(uint64_t), "a session key is 's' + u64");
_Static_assert(KV_KEY_USER != KV_KEY_SESSION, "the namespaces are disjoint");
_Static_assert(KV_STORE_MAX_KEY_BYTES > KV_MAX_KEY_BYTES, "room for the prefix");

static void le_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Big-endian, so that a store that keeps keys sorted keeps sessions in client id order. */
static void session_key(uint64_t client_id, uint8_t out[KV_SESSION_KEY_BYTES])
{
    RK_ASSERT(client_id != 0);
    out[0] = KV_KEY_SESSION;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)(client_id >> (8 * (7 - i)));
}

/* What a stored session must be (K4 and a cached result kv_apply can give). Checked before a
 * record is written (asserted) and after one is read (RK_ECORRUPT). */
static bool session_fields_valid(const struct kv_session *s)
{
    if (s->client_id == 0 || s->last_seq == 0 || s->last_index == 0)
        return false;
    if (s->last_status != KV_OK)
        return s->last_op == KV_OP_INCRBY && s->last_num == 0 &&
               (s->last_status == KV_NOT_INTEGER || s->last_status == KV_OVERFLOW);
    switch (s->last_op) {
    case KV_OP_PUT:
    case KV_OP_MSET:
        return s->last_num == 0;
    case KV_OP_DEL:
    case KV_OP_PUT_IF:
        return s->last_num == 0 || s->last_num == 1;
    case KV_OP_INCRBY:
        return true; /* any int64 */
    case KV_OP_CMD:
        return s->last_num == 0; /* the result is in the record's tail */
    }
    return false;
}

static void session_encode(const struct kv_session *s, uint8_t rec[KV_SESSION_RECORD_BYTES])
{
    RK_ASSERT(session_fields_valid(s));
    memset(rec, 0, KV_SESSION_RECORD_BYTES);
    rec[REC_OFF_VERSION] = KV_SESSION_VERSION;
    le_put(rec + REC_OFF_LAST_SEQ, s->last_seq);
    rec[REC_OFF_STATUS] = s->last_status; /* the cached result: KV_OK or an INCRBY's error */
    rec[REC_OFF_OP] = s->last_op;
    le_put(rec + REC_OFF_NUM, (uint64_t)s->last_num);
    le_put(rec + REC_OFF_LAST_INDEX, s->last_index);
}

/* Decodes the session record val (untrusted: it came from the store) of the session key key
 * into *s. K2 needs last_index <= applied_index, the store's. */
static int session_decode(const uint8_t *key, const uint8_t *val, uint32_t val_len,
                          uint64_t applied_index, struct kv_session *s, struct rk_errmsg *err)
{
    uint64_t client_id = 0;
    for (int i = 0; i < 8; i++)
        client_id = client_id << 8 | key[1 + i];
    memset(s, 0, sizeof(*s));
    if (client_id == 0)
        return rk_errf(err, RK_ECORRUPT, "kv store: a session record for client id 0");
    if (val_len < KV_SESSION_RECORD_BYTES)
        return rk_errf(err, RK_ECORRUPT,
                       "kv store: session of client %" PRIu64 ": %" PRIu32 " bytes, not %u",
                       client_id, val_len, KV_SESSION_RECORD_BYTES);
    uint8_t version = val[REC_OFF_VERSION];
    if (version != KV_SESSION_VERSION && version != KV_SESSION_VERSION_CMD)
        return rk_errf(err, RK_ECORRUPT,
                       "kv store: session of client %" PRIu64 ": version %u at offset %u is not %u",
                       client_id, val[REC_OFF_VERSION], REC_OFF_VERSION, KV_SESSION_VERSION);
    /* Version 1: exactly the fixed fields, not a generic command's. Version 2: a generic
     * command's, followed by its result (kv.h). */
    bool is_cmd = val[REC_OFF_OP] == KV_OP_CMD;
    if (version == KV_SESSION_VERSION && (val_len != KV_SESSION_RECORD_BYTES || is_cmd))
        return rk_errf(err, RK_ECORRUPT,
                       "kv store: session of client %" PRIu64 ": %" PRIu32 " bytes, not %u",
                       client_id, val_len, KV_SESSION_RECORD_BYTES);
    if (version == KV_SESSION_VERSION_CMD) {
        const uint8_t *t = val + KV_SESSION_RECORD_BYTES;
        uint32_t n =
            val_len >= KV_SESSION_RECORD_BYTES + 4
                ? (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24
                : 0;
        if (!is_cmd || val_len < KV_SESSION_RECORD_BYTES + 4 ||
            n != val_len - KV_SESSION_RECORD_BYTES - 4 || n > KV_SESSION_MAX_RESULT ||
            kv_res_check(val + KV_SESSION_RECORD_BYTES + 4, n, NULL) != RK_OK)
            return rk_errf(err, RK_ECORRUPT,
                           "kv store: session of client %" PRIu64 ": a command's record of %" PRIu32
                           " bytes with a bad result",
                           client_id, val_len);
    }
    uint64_t num = le_get(val + REC_OFF_NUM);
    s->client_id = client_id;
    s->last_seq = le_get(val + REC_OFF_LAST_SEQ);
    s->last_op = val[REC_OFF_OP];
    s->last_status = val[REC_OFF_STATUS];
    s->last_num = (int64_t)num; /* two's complement: session_fields_valid checks the range */
    s->last_index = le_get(val + REC_OFF_LAST_INDEX);
    s->prev = KV_NIL;
    s->next = KV_NIL;
    if (!session_fields_valid(s))
        return rk_errf(err, RK_ECORRUPT,
                       "kv store: session of client %" PRIu64 ": last_seq %" PRIu64
                       ", status %u, op %u, num %" PRIu64 ", last_index %" PRIu64
                       " is not a session",
                       client_id, s->last_seq, s->last_status, s->last_op, num, s->last_index);
    if (s->last_index > applied_index)
        return rk_errf(err, RK_ECORRUPT,
                       "kv store: session of client %" PRIu64 ": last_index %" PRIu64
                       " is past the store's applied index %" PRIu64,
                       client_id, s->last_index, applied_index);
    return RK_OK;
}

int kv_session_record_decode(const uint8_t *key, uint32_t key_len, const uint8_t *val,
                             uint32_t val_len, struct kv_session_info *out, struct rk_errmsg *err)
{
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(val != NULL || val_len == 0);
    RK_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    if (key_len != KV_SESSION_KEY_BYTES || key[0] != KV_KEY_SESSION)
        return rk_errf(err, RK_ECORRUPT, "kv store: a key of %" PRIu32 " bytes is not a session's",
                       key_len);
    struct kv_session s;
    int rc = session_decode(key, val, val_len, UINT64_MAX, &s, err);
    if (rc == RK_OK)
        session_info(&s, out);
    return rc;
}

/* ---- create and destroy ----------------------------------------------------------------- */

/* The smallest power of two >= TABLE_MIN_SLOTS that keeps n sessions at a load <= 3/4. */
static uint32_t table_slots_for(uint32_t n)
{
    uint64_t slots = TABLE_MIN_SLOTS;
    while ((uint64_t)n * 4 > slots * 3)
        slots *= 2;
    RK_ASSERT(slots <= UINT32_MAX); /* n <= KV_MAX_SESSIONS */
    return (uint32_t)slots;
}

_Static_assert(KV_MAX_SESSIONS <= (1u << 30), "the session table's slot count fits in u32");

struct load_ctx {
    struct kv *kv;
    uint64_t applied_index; /* the store's */
    int rc;
    struct rk_errmsg *err;
};

/* The store's scan_keys where it has one (values only where cheap), else its scan. */
static int store_scan_keys(struct kv_store *st,
                           bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                      const uint8_t *val, uint32_t val_len),
                           void *ctx)
{
    if (st->ops->scan_keys != NULL)
        return st->ops->scan_keys(st, fn, ctx);
    return st->ops->scan(st, fn, ctx);
}

/* Scan callback of kv_create: loads a session record into the next free pool struct, passes
 * over a user key, refuses anything else. */
static bool load_record(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                        uint32_t val_len)
{
    struct load_ctx *l = ctx;
    struct kv *kv = l->kv;
    if (key_len >= 1 && key[0] >= KV_KEY_USER && key[0] < KV_KEY_USER + KV_DBS) {
        if (key_len <= KV_MAX_KEY_BYTES + 1) {
            kv->n_keys[key[0] - KV_KEY_USER]++;
            return true;
        }
        l->rc = rk_errf(l->err, RK_ECORRUPT,
                        "kv store: a user key of %" PRIu32 " bytes, over the %u-byte limit",
                        key_len - 1, KV_MAX_KEY_BYTES);
        return false;
    }
    if (key_len >= 1 && key[0] == KV_KEY_EXPIRY) {
        /* 'x' + deadline (big-endian) + a user store key (kv.h). */
        uint64_t deadline = 0;
        for (uint32_t i = 0; i < 8 && i + 1 < key_len; i++)
            deadline = deadline << 8 | key[1 + i];
        if (key_len < 10 || key[9] < KV_KEY_USER || key[9] >= KV_KEY_USER + KV_DBS ||
            deadline == 0 || key_len > KV_STORE_MAX_KEY_BYTES) {
            l->rc = rk_errf(l->err, RK_ECORRUPT,
                            "kv store: an expiry record of %" PRIu32 " bytes is not "
                            "'x' + deadline + a user key",
                            key_len);
            return false;
        }
        l->rc = exptab_set(&kv->exp, key + 9, key_len - 9, deadline);
        if (l->rc != RK_OK) {
            rk_errf(l->err, l->rc, "kv store: loading the expiry index");
            return false;
        }
        kv->n_expiry_records++;
        kv->n_expiring[key[9] - KV_KEY_USER]++;
        return true;
    }
    if (key_len >= 1 && key[0] == KV_KEY_LEGACY_USER) {
        l->rc = rk_errf(l->err, RK_ECORRUPT,
                        "kv store: a user key in the layout before databases and expiry ('u' + "
                        "key); this version keeps '0' + db + key with a header (kv.h): the data "
                        "directory was written by an older raftkv");
        return false;
    }
    if (key_len >= 1 && key[0] == KV_KEY_META) {
        kv->n_meta++;
        return true;
    }
    if (key_len >= 1 && key[0] == KV_KEY_ACL) {
        if (val == NULL) { /* scan_keys: the store did not read it */
            l->rc = kv->store->ops->get(kv->store, key, key_len, &val, &val_len);
            if (l->rc != RK_OK) {
                rk_errf(l->err, l->rc, "kv store: reading a user record: %s", rk_strerror(l->rc));
                return false;
            }
        }
        l->rc = kv_acl_load(kv, key, key_len, val, val_len, l->err);
        return l->rc == RK_OK;
    }
    if (key_len != KV_SESSION_KEY_BYTES || key[0] != KV_KEY_SESSION) {
        l->rc = rk_errf(l->err, RK_ECORRUPT,
                        "kv store: a key of %" PRIu32 " bytes starting with 0x%02x is neither a "
                        "user key ('0' + db + key), an expiry record, nor a session ('s' + u64)",
                        key_len, key_len > 0 ? key[0] : 0u);
        return false;
    }
    if (kv->n_sessions == kv->max_sessions) {
        l->rc = rk_errf(l->err, RK_EINVAL,
                        "kv store: more session records than max_sessions (%" PRIu32 ")",
                        kv->max_sessions);
        return false;
    }
    if (val == NULL) { /* scan_keys: the store did not read it */
        l->rc = kv->store->ops->get(kv->store, key, key_len, &val, &val_len);
        if (l->rc != RK_OK) {
            rk_errf(l->err, l->rc, "kv store: reading a session record: %s", rk_strerror(l->rc));
            return false;
        }
    }
    l->rc = session_decode(key, val, val_len, l->applied_index, &kv->pool[kv->n_sessions], l->err);
    if (l->rc != RK_OK)
        return false;
    kv->n_sessions++;
    return true;
}

/* Restores the heap order below pool[root] among pool[0, n): the largest last_index on top. */
static void heap_sift_down(struct kv_session *pool, uint32_t root, uint32_t n)
{
    for (uint32_t step = 0; step < 32; step++) { /* the heap's depth: n < 2^32 */
        uint64_t child = 2 * (uint64_t)root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && pool[child + 1].last_index > pool[child].last_index)
            child++;
        if (pool[root].last_index >= pool[child].last_index)
            return;
        struct kv_session tmp = pool[root];
        pool[root] = pool[child];
        pool[child] = tmp;
        root = (uint32_t)child;
    }
    RK_ASSERT(!"a sift went deeper than the heap");
}

/* Sorts pool[0, n) by last_index, ascending (heap sort: in place, no recursion). */
static void sessions_sort(struct kv_session *pool, uint32_t n)
{
    for (uint32_t i = n / 2; i > 0; i--)
        heap_sift_down(pool, i - 1, n);
    for (uint32_t end = n; end > 1; end--) {
        struct kv_session tmp = pool[0];
        pool[0] = pool[end - 1];
        pool[end - 1] = tmp;
        heap_sift_down(pool, 0, end - 1);
    }
}

static int sessions_index(struct kv *kv, struct rk_errmsg *err);

/* Rebuilds the session table from the store's records (K5), in LRU order by last_index. */
static int sessions_load(struct kv *kv, struct rk_errmsg *err)
{
    struct load_ctx l = {.kv = kv, .applied_index = kv->applied_index, .rc = RK_OK, .err = err};
    /* Keys only where the store can: a restart reads the sessions' values, not every user's. */
    int rc = store_scan_keys(kv->store, load_record, &l);
    if (rc == RK_OK)
        rc = l.rc;
    else if (l.rc == RK_OK)
        rk_errf(err, rc, "kv store: scanning for sessions: %s", rk_strerror(rc));
    return rc == RK_OK ? sessions_index(kv, err) : rc;
}

/* The session table (K5) from the sessions loaded into the pool, in LRU order by last_index. */
static int sessions_index(struct kv *kv, struct rk_errmsg *err)
{
    uint32_t n = kv->n_sessions;
    sessions_sort(kv->pool, n);
    for (uint32_t i = 0; i < n; i++) {
        /* K2: one command touches one session, so no two sessions share a last_index. */
        if (i > 0 && kv->pool[i].last_index == kv->pool[i - 1].last_index)
            return rk_errf(err, RK_ECORRUPT,
                           "kv store: sessions of clients %" PRIu64 " and %" PRIu64
                           " both last used at index %" PRIu64,
                           kv->pool[i - 1].client_id, kv->pool[i].client_id,
                           kv->pool[i].last_index);
        RK_ASSERT(i == 0 || kv->pool[i].last_index > kv->pool[i - 1].last_index);
        table_insert(kv, client_hash(kv->pool[i].client_id), i);
        lru_push_tail(kv, i);
    }
    return RK_OK;
}

static const uint8_t meta_key[KV_META_KEY_BYTES] = {KV_KEY_META, 'k', 'v'};

/* Reads the 'm' "kv" record (kv.h), if any: the clock and the deletion indexes. */
static int meta_load(struct kv *kv, struct rk_errmsg *err)
{
    const uint8_t *val = NULL;
    uint32_t len = 0;
    int rc = kv->store->ops->get(kv->store, meta_key, sizeof(meta_key), &val, &len);
    if (rc == RK_ENOENT)
        return RK_OK;
    if (rc != RK_OK)
        return rk_errf(err, rc, "kv store: reading kv's record: %s", rk_strerror(rc));
    bool perm = len == KV_META_BYTES;
    uint32_t seen = 0;
    for (uint32_t d = 0; perm && d < KV_DBS; d++) {
        uint8_t p = val[9 + 8 * KV_DBS + d];
        perm = p < KV_DBS && !(seen & (1u << p));
        seen |= perm ? 1u << p : 0;
    }
    if (!perm || val[0] != KV_META_VERSION)
        return rk_errf(err, RK_ECORRUPT,
                       "kv store: kv's record (clock, deletion indexes) of %" PRIu32
                       " bytes, version %u: not %u bytes of version %u with a permutation of dbs",
                       len, len > 0 ? val[0] : 0u, KV_META_BYTES, KV_META_VERSION);
    kv->meta.clock_ms = le_get(val + 1);
    for (uint32_t d = 0; d < KV_DBS; d++) {
        kv->meta.del_index[d] = le_get(val + 9 + 8 * d);
        kv->meta.dbmap[d] = val[9 + 8 * KV_DBS + d];
        kv->meta.swap_index[d] = le_get(val + 9 + 9 * KV_DBS + 8 * d);
    }
    kv->has_meta = true;
    return RK_OK;
}

int kv_meta_write(struct kv *kv, uint64_t index, const struct kv_meta *m)
{
    uint8_t rec[KV_META_BYTES];
    rec[0] = KV_META_VERSION;
    le_put(rec + 1, m->clock_ms);
    for (uint32_t d = 0; d < KV_DBS; d++) {
        le_put(rec + 9 + 8 * d, m->del_index[d]);
        rec[9 + 8 * KV_DBS + d] = m->dbmap[d];
        le_put(rec + 9 + 9 * KV_DBS + 8 * d, m->swap_index[d]);
    }
    int rc = kv->store->ops->put(kv->store, index, meta_key, sizeof(meta_key), rec, sizeof(rec));
    if (rc == RK_OK && !kv->has_meta) {
        kv->has_meta = true;
        kv->n_meta++;
    }
    return rc;
}

static bool lru_valid(const struct kv *kv) __attribute__((unused));
static bool table_valid(const struct kv *kv) __attribute__((unused));

static int kv_new(const struct kv_config *c, struct kv **out, struct rk_errmsg *err);

int kv_create(const struct kv_config *c, struct kv **out, struct rk_errmsg *err)
{
    RK_ASSERT(out != NULL);
    *out = NULL;
    struct kv *kv = NULL;
    int rc = kv_new(c, &kv, err);
    if (rc != RK_OK)
        return rc;
    rc = sessions_load(kv, err);
    if (rc == RK_OK)
        rc = meta_load(kv, err);
    if (rc == RK_OK)
        rc = kv_acl_load_done(kv, err);
    if (rc != RK_OK) {
        kv_destroy(kv);
        return rc;
    }
    /* The in-memory invariants only: kv_valid also reads the store, and a read error from
     * the disk is not a programmer error. */
    RK_ASSERT_SLOW(lru_valid(kv) && table_valid(kv));
    *out = kv;
    return RK_OK;
}

int kv_load_begin(const struct kv_config *c, uint64_t applied_index, struct kv **out,
                  struct rk_errmsg *err)
{
    int rc = kv_new(c, out, err);
    if (rc == RK_OK)
        (*out)->applied_index = applied_index;
    return rc;
}

int kv_load_record(struct kv *kv, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                   uint32_t val_len, struct rk_errmsg *err)
{
    RK_ASSERT(val != NULL || val_len == 0);
    static const uint8_t none[1] = {0};
    struct load_ctx l = {.kv = kv, .applied_index = kv->applied_index, .rc = RK_OK, .err = err};
    (void)load_record(&l, key, key_len, val != NULL ? val : none, val_len);
    return l.rc;
}

#ifdef RK_SLOW_ASSERTS
/* A state machine loaded record by record is the one kv_create would make from the store (the
 * slow check of kv_load_end: a pass over the store, in debug, sim and fuzz builds). */
static bool loaded_matches_store(const struct kv *kv)
{
    struct kv_config c = {.alloc = kv->alloc,
                          .store = kv->store,
                          .max_sessions = kv->max_sessions,
                          .acl_generation = kv->acl_gen};
    struct kv *fresh = NULL;
    if (kv_create(&c, &fresh, NULL) != RK_OK)
        return true; /* a read error or no memory: nothing to compare */
    bool same = fresh->n_sessions == kv->n_sessions && fresh->n_meta == kv->n_meta &&
                fresh->n_expiry_records == kv->n_expiry_records && fresh->n_users == kv->n_users &&
                memcmp(fresh->n_keys, kv->n_keys, sizeof(kv->n_keys)) == 0 &&
                memcmp(fresh->n_expiring, kv->n_expiring, sizeof(kv->n_expiring)) == 0;
    for (uint32_t i = 0; same && i < kv->n_sessions; i++)
        same = fresh->pool[i].client_id == kv->pool[i].client_id &&
               fresh->pool[i].last_index == kv->pool[i].last_index;
    kv_destroy(fresh);
    return same;
}
#endif

int kv_load_end(struct kv *kv, struct rk_errmsg *err)
{
    RK_ASSERT(kv->store->ops->applied_index(kv->store) == kv->applied_index);
    int rc = sessions_index(kv, err);
    if (rc == RK_OK)
        rc = meta_load(kv, err);
    if (rc == RK_OK)
        rc = kv_acl_load_done(kv, err);
    RK_ASSERT_SLOW(rc != RK_OK || (lru_valid(kv) && table_valid(kv)));
    RK_ASSERT_SLOW(rc != RK_OK || loaded_matches_store(kv));
    return rc;
}

/* The state machine, allocated and empty (kv_create: then loaded from the store). */
static int kv_new(const struct kv_config *c, struct kv **out, struct rk_errmsg *err)
{
    RK_ASSERT(c != NULL);
    RK_ASSERT(out != NULL);
    RK_ASSERT(c->alloc != NULL);
    RK_ASSERT(c->store != NULL);
    *out = NULL;
    uint32_t max_sessions = c->max_sessions == 0 ? KV_DEFAULT_MAX_SESSIONS : c->max_sessions;
    if (max_sessions > KV_MAX_SESSIONS)
        return rk_errf(err, RK_EINVAL, "kv: max_sessions %" PRIu32 " is over %u", max_sessions,
                       KV_MAX_SESSIONS);
    uint32_t n_slots = table_slots_for(max_sessions);

    struct kv *kv = rk_malloc(c->alloc, sizeof(*kv));
    if (kv == NULL)
        return rk_errf(err, RK_ENOMEM, "kv: allocating the state machine");
    memset(kv, 0, sizeof(*kv));
    kv->alloc = c->alloc;
    kv->pool = rk_malloc(c->alloc, (size_t)max_sessions * sizeof(*kv->pool));
    kv->slots = rk_malloc(c->alloc, (size_t)n_slots * sizeof(*kv->slots));
    kv->key_buf = rk_malloc(c->alloc, KV_STORE_MAX_KEY_BYTES);
    kv->key_buf2 = rk_malloc(c->alloc, KV_STORE_MAX_KEY_BYTES);
    exptab_init(&kv->exp, c->alloc);
    kv->res.alloc = kv->tmp.alloc = kv->tmp2.alloc = c->alloc;
    if (kv->pool == NULL || kv->slots == NULL || kv->key_buf == NULL || kv->key_buf2 == NULL) {
        kv_destroy(kv);
        return rk_errf(err, RK_ENOMEM, "kv: allocating %" PRIu32 " sessions", max_sessions);
    }
    memset(kv->pool, 0, (size_t)max_sessions * sizeof(*kv->pool));
    memset(kv->slots, 0, (size_t)n_slots * sizeof(*kv->slots));
    for (uint32_t d = 0; d < KV_DBS; d++)
        kv->meta.dbmap[d] = (uint8_t)d; /* no SWAPDB yet (meta_load reads the record's) */
    kv->store = c->store;
    kv->applied_index = c->store->ops->applied_index(c->store);
    kv->mask = n_slots - 1;
    kv->max_sessions = max_sessions;
    kv->acl_gen = c->acl_generation;
    kv->lru_head = KV_NIL;
    kv->lru_tail = KV_NIL;
    *out = kv;
    return RK_OK;
}

void kv_destroy(struct kv *kv)
{
    if (kv == NULL)
        return;
    const struct rk_alloc *a = kv->alloc;
    rk_free(a, kv->key_buf);
    rk_free(a, kv->key_buf2);
    kv_acl_free(kv);
    exptab_free(&kv->exp);
    resbuf_free(&kv->res);
    resbuf_free(&kv->tmp);
    resbuf_free(&kv->tmp2);
    rk_free(a, kv->slots);
    rk_free(a, kv->pool);
    rk_free(a, kv);
}

/* ---- apply ------------------------------------------------------------------------------ */

/* Answers a command whose seq the session has already seen: the cached result (thesis §6.3)
 * if it is the last one, else KV_STALE: that result is gone. Nothing is applied. */
static void answer_retry(const struct kv_session *s, const struct kv_cmd *c, struct kv_result *out)
{
    RK_ASSERT(c->seq <= s->last_seq);
    if (c->seq == s->last_seq) {
        /* A retry gets the original answer: an INCRBY's error is repeated as it was. */
        out->status = s->last_status == KV_OK ? KV_DUPLICATE : s->last_status;
        out->op = s->last_op;
        out->num = s->last_num;
    } else {
        out->status = KV_STALE;
        out->num = 0;
    }
}

static int store_failed(struct kv_result *out, int rc)
{
    RK_ASSERT(rc != RK_OK);
    out->status = KV_STORE_ERROR;
    out->num = 0;
    out->err = rc;
    return rc; /* not applied: the caller stops the replica or retries this index (kv.h) */
}

static int write_session(struct kv *kv, uint64_t index, const struct kv_session *s)
{
    RK_ASSERT(s->last_index == index);
    uint8_t key[KV_SESSION_KEY_BYTES];
    uint8_t rec[KV_SESSION_RECORD_BYTES];
    session_key(s->client_id, key);
    session_encode(s, rec);
    return kv->store->ops->put(kv->store, index, key, sizeof(key), rec, sizeof(rec));
}

static int delete_session(struct kv *kv, uint64_t index, uint64_t client_id)
{
    uint8_t key[KV_SESSION_KEY_BYTES];
    session_key(client_id, key);
    bool existed = false; /* false when a retry repeats a deletion that succeeded (kv.h) */
    return kv->store->ops->del(kv->store, index, key, sizeof(key), &existed);
}

/* An INCRBY's result over the stored value val (a missing key counts as 0): KV_OK and the new
 * value, or KV_NOT_INTEGER / KV_OVERFLOW (Redis's two errors) and 0. */
static void incr_result(const struct kv_cmd *c, const uint8_t *val, uint32_t val_len,
                        bool exists, uint8_t *out_status, int64_t *out_num)
{
    RK_ASSERT(c->op == KV_OP_INCRBY);
    int64_t old = 0;
    if (exists && !kv_parse_int64(val, val_len, &old)) {
        *out_status = KV_NOT_INTEGER;
        return;
    }
    int64_t sum = 0;
    if (__builtin_add_overflow(old, c->delta, &sum)) {
        *out_status = KV_OVERFLOW;
        return;
    }
    *out_num = sum;
}

/* An int64 as base-10 text into buf (KV_INT64_TEXT_BYTES); returns its length. */
static uint32_t int64_text(int64_t v, uint8_t buf[KV_INT64_TEXT_BYTES])
{
    uint8_t rev[KV_INT64_TEXT_BYTES];
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    uint32_t n = 0;
    do {
        rev[n++] = (uint8_t)('0' + mag % 10);
        mag /= 10;
    } while (mag > 0);
    uint32_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = rev[--n];
    RK_ASSERT(len <= KV_INT64_TEXT_BYTES);
    return len;
}

/* What the planning read found. */
struct plan {
    bool stored;          /* a record is stored (perhaps expired): a DEL removes it */
    uint64_t deadline_ms; /* its deadline (an INCRBY keeps it) */
};

/* The result of c against the store as it is now, read before anything of c's batch is written
 * (kv.h: a session's record, written first, caches it): *out_status KV_OK or an INCRBY's error,
 * *out_num the num of the result. A key expired by the state machine's clock is absent (kv.h
 * TIME: version-1 entries carry no stamp and use the clock as it is). A PUT or MSET reads
 * nothing. */
static int plan_result(struct kv *kv, const struct kv_cmd *c, uint8_t *out_status, int64_t *out_num,
                       struct plan *pl)
{
    *out_status = KV_OK;
    *out_num = 0;
    memset(pl, 0, sizeof(*pl));
    if (c->op == KV_OP_PUT || c->op == KV_OP_MSET)
        return RK_OK;
    struct kv_rec rec;
    int rc = kv_rec_get(kv, 0, c->key, c->key_len, kv->meta.clock_ms, &rec);
    if (rc != RK_OK)
        return rc;
    pl->stored = rec.exists;
    pl->deadline_ms = rec.live ? rec.deadline_ms : 0;
    bool exists = rec.live;
    if (c->op == KV_OP_DEL)
        *out_num = exists ? 1 : 0;
    else if (c->op == KV_OP_PUT_IF)
        *out_num = (c->cond == KV_COND_NX) != exists ? 1 : 0;
    else
        incr_result(c, exists ? rec.val : NULL, exists ? rec.val_len : 0, exists, out_status,
                    out_num);
    return RK_OK;
}

/* The command's data op against the store, given its planned result (status, num); *out_num
 * its result (a DEL: live keys removed). Every write goes through kv_rec_put/kv_rec_del, which
 * keep the expiry index in step; db 0 (version 1 has no databases). */
static int write_data(struct kv *kv, uint64_t index, const struct kv_cmd *c, uint8_t status,
                      int64_t num, const struct plan *pl, int64_t *out_num)
{
    uint64_t now = kv->meta.clock_ms;
    *out_num = num;
    switch (c->op) {
    case KV_OP_PUT:
        return kv_rec_put(kv, index, 0, c->key, c->key_len, c->val, c->val_len, 0, now,
                          KV_EXISTED_UNKNOWN);
    case KV_OP_PUT_IF:
        return num == 1 ? kv_rec_put(kv, index, 0, c->key, c->key_len, c->val, c->val_len, 0, now,
                                     KV_EXISTED_UNKNOWN)
                        : RK_OK;
    case KV_OP_MSET: {
        /* Every pair in this one batch, in order: all of them land or none (store.h S5). */
        struct kv_pairs_iter it;
        struct kv_pair pr;
        kv_pairs_begin(&it, c->val, c->val_len);
        while (kv_pairs_next(&it, &pr)) {
            int rc = kv_rec_put(kv, index, 0, pr.key, pr.key_len, pr.val, pr.val_len, 0, now,
                                KV_EXISTED_UNKNOWN);
            if (rc != RK_OK)
                return rc;
        }
        return RK_OK;
    }
    case KV_OP_INCRBY: {
        if (status != KV_OK)
            return RK_OK; /* an error result writes nothing */
        uint8_t text[KV_INT64_TEXT_BYTES];
        uint32_t text_len = int64_text(num, text);
        /* Redis's INCR keeps the key's time to live. */
        return kv_rec_put(kv, index, 0, c->key, c->key_len, text, text_len, pl->deadline_ms, now,
                          KV_EXISTED_UNKNOWN);
    }
    default:
        break;
    }
    RK_ASSERT(c->op == KV_OP_DEL); /* kv_cmd_decode accepts nothing else */
    if (!pl->stored)
        return RK_OK;
    bool existed = false;
    int rc = kv_rec_del(kv, index, 0, c->key, c->key_len, &existed);
    RK_ASSERT(rc != RK_OK || existed);
    return rc;
}

/* The batch of a command that applies (kv.h): for a client with a session, its new record
 * (holding the result planned by reading the store first), the deletion of the evicted
 * session's record if the pool is full, kv's record when a DEL moves a deletion index, then the
 * data op, which comes last so that a failed batch can be retried exactly. *evicted: the
 * evicted client, 0 if none. */
static int write_command(struct kv *kv, uint64_t index, uint32_t i, const struct kv_cmd *c,
                         struct kv_result *out, uint64_t *evicted)
{
    *evicted = 0;
    uint8_t status = KV_OK;
    int64_t num = 0;
    struct plan pl;
    int rc = plan_result(kv, c, &status, &num, &pl);
    if (rc != RK_OK)
        return rc;
    out->status = status;
    if (c->client_id != 0) {
        struct kv_session next = {.client_id = c->client_id,
                                  .last_seq = c->seq,
                                  .last_index = index,
                                  .last_num = num,
                                  .last_op = c->op,
                                  .last_status = status};
        rc = write_session(kv, index, &next);
        if (rc != RK_OK)
            return rc;
        if (i == KV_NIL && kv->n_sessions == kv->max_sessions) {
            *evicted = kv->pool[kv->lru_head].client_id; /* K2: session_open's victim */
            rc = delete_session(kv, index, *evicted);
            if (rc != RK_OK)
                return rc;
        }
    }
    if (c->op == KV_OP_DEL && pl.stored) {
        /* WATCH's deletion index for db 0 (kv.h), before the data op (retry: see above). */
        struct kv_meta m = kv->meta;
        m.del_index[kv->meta.dbmap[0]] = index;
        rc = kv_meta_write(kv, index, &m);
        if (rc != RK_OK)
            return rc;
    }
    rc = write_data(kv, index, c, status, num, &pl, &out->num);
    kv->meta_dirty = false; /* written above */
    /* nothing else in the batch touched the key */
    RK_ASSERT(rc != RK_OK || c->client_id == 0 || out->num == num);
    return rc;
}

/* Remembers the result of the command just applied for its client. */
static void session_record(struct kv *kv, uint32_t i, const struct kv_cmd *c, uint64_t index,
                           const struct kv_result *res, uint64_t evicted)
{
    if (i == KV_NIL) {
        RK_ASSERT(evicted == (kv->n_sessions == kv->max_sessions
                                  ? kv->pool[kv->lru_head].client_id
                                  : 0)); /* the record deleted in the batch */
        i = session_open(kv, c->client_id);
    }
    struct kv_session *s = &kv->pool[i];
    RK_ASSERT(s->client_id == c->client_id);
    RK_ASSERT(c->seq > s->last_seq);
    s->last_seq = c->seq;
    s->last_op = c->op;
    s->last_status = res->status;
    s->last_num = res->num;
    session_touch(kv, i, index);
}

/* A command with a client id and seq <= the session's last: nothing applied, but the session is
 * used at index, in memory and in its record (kv.h: the LRU order survives a restart). */
/* Writes a version-2 session record (kv.h) built in kv->tmp2: the fixed fields of s, then the
 * result (res, or an error in its place when it is over KV_SESSION_MAX_RESULT). */
static int write_session_cmd(struct kv *kv, uint64_t index, const struct kv_session *s,
                             const uint8_t *res, uint32_t res_len)
{
    static const char too_big[] = "ERR raftkv: the result of this retried command was too large "
                                  "to keep (the command was applied)";
    uint8_t big[sizeof(too_big) + 8];
    if (res_len > KV_SESSION_MAX_RESULT) {
        uint32_t n = (uint32_t)sizeof(too_big) - 1;
        big[0] = KV_RES_ERROR;
        for (int i = 0; i < 4; i++)
            big[1 + i] = (uint8_t)(n >> (8 * i));
        memcpy(big + 5, too_big, n);
        res = big;
        res_len = 5 + n;
    }
    RK_ASSERT(s->last_op == KV_OP_CMD && s->last_index == index);
    size_t need = KV_SESSION_RECORD_BYTES + 4 + (size_t)res_len;
    if (!rk_grow(kv->alloc, (void **)&kv->tmp2.buf, &kv->tmp2.cap, need, 1))
        return RK_ENOMEM;
    uint8_t *rec = kv->tmp2.buf;
    session_encode(s, rec);
    rec[REC_OFF_VERSION] = KV_SESSION_VERSION_CMD;
    for (int i = 0; i < 4; i++)
        rec[KV_SESSION_RECORD_BYTES + i] = (uint8_t)(res_len >> (8 * i));
    if (res_len > 0)
        memmove(rec + KV_SESSION_RECORD_BYTES + 4, res, res_len);
    uint8_t key[KV_SESSION_KEY_BYTES];
    session_key(s->client_id, key);
    return kv->store->ops->put(kv->store, index, key, sizeof(key), rec, (uint32_t)need);
}

/* Reads the cached result of a version-2 session record into kv->res. */
static int read_session_result(struct kv *kv, uint64_t client_id)
{
    uint8_t key[KV_SESSION_KEY_BYTES];
    session_key(client_id, key);
    const uint8_t *val = NULL;
    uint32_t len = 0;
    int rc = kv->store->ops->get(kv->store, key, sizeof(key), &val, &len);
    if (rc != RK_OK)
        return rc == RK_ENOENT ? RK_ECORRUPT : rc; /* K5: it is there */
    struct kv_session got;
    rc = session_decode(key, val, len, UINT64_MAX, &got, &kv->last_err);
    if (rc != RK_OK)
        return rc;
    RK_ASSERT(got.last_op == KV_OP_CMD);
    resbuf_reset(&kv->res);
    uint32_t n = len - KV_SESSION_RECORD_BYTES - 4;
    if (!rk_grow(kv->alloc, (void **)&kv->res.buf, &kv->res.cap, n, 1))
        return RK_ENOMEM;
    memcpy(kv->res.buf, val + KV_SESSION_RECORD_BYTES + 4, n);
    kv->res.len = n;
    return RK_OK;
}

/* Rewrites session i's record as used at index, in its own version (the LRU order must survive
 * a restart: kv.h). A version-2 record's result is read into kv->res first and written back. */
static int touch_record(struct kv *kv, uint64_t index, uint32_t i)
{
    struct kv_session touched = kv->pool[i];
    touched.last_index = index;
    if (touched.last_op != KV_OP_CMD)
        return write_session(kv, index, &touched);
    int rc = read_session_result(kv, touched.client_id);
    if (rc != RK_OK)
        return rc;
    return write_session_cmd(kv, index, &touched, kv->res.buf, (uint32_t)kv->res.len);
}

static int apply_seen(struct kv *kv, uint64_t index, uint32_t i, const struct kv_cmd *c,
                      struct kv_result *out)
{
    int rc = touch_record(kv, index, i);
    if (rc == RK_OK)
        rc = kv->store->ops->end_batch(kv->store, index);
    if (rc != RK_OK)
        return store_failed(out, rc);
    answer_retry(&kv->pool[i], c, out);
    if (out->op == KV_OP_CMD && out->status == KV_DUPLICATE) {
        /* A version-1 retry of a generic command's seq: the cached result, as it is. */
        out->val = kv->res.buf;
        out->val_len = (uint32_t)kv->res.len;
    }
    session_touch(kv, i, index);
    kv->applied_index = index;
    return RK_OK;
}

/* ---- session plumbing for exec.c (kv_int.h) ---------------------------------------------- */

uint32_t kv_session_find(const struct kv *kv, uint64_t client_id)
{
    return session_find(kv, client_id);
}

int kv_session_write_cmd(struct kv *kv, uint64_t index, uint64_t client_id, uint64_t seq,
                         const uint8_t *res, uint32_t res_len)
{
    struct kv_session next = {.client_id = client_id,
                              .last_seq = seq,
                              .last_index = index,
                              .last_op = KV_OP_CMD,
                              .last_status = KV_OK};
    return write_session_cmd(kv, index, &next, res, res_len);
}

int kv_session_evict_for(struct kv *kv, uint64_t index, uint32_t i, uint64_t *evicted)
{
    *evicted = 0;
    if (i != KV_NIL || kv->n_sessions < kv->max_sessions)
        return RK_OK;
    *evicted = kv->pool[kv->lru_head].client_id; /* K2: session_open's victim */
    return delete_session(kv, index, *evicted);
}

void kv_session_applied(struct kv *kv, uint32_t i, uint64_t client_id, uint64_t seq, uint8_t op,
                        uint64_t index, uint64_t evicted)
{
    struct kv_cmd c = {.op = op, .client_id = client_id, .seq = seq};
    struct kv_result res = {.status = KV_OK, .op = op};
    session_record(kv, i, &c, index, &res, evicted);
}

int kv_session_retry_cmd(struct kv *kv, uint64_t index, uint32_t i, uint64_t seq,
                         struct kv_result *out)
{
    struct kv_cmd c = {.op = KV_OP_CMD, .client_id = kv->pool[i].client_id, .seq = seq};
    return apply_seen(kv, index, i, &c, out);
}

int kv_apply(struct kv *kv, uint64_t index, const uint8_t *data, uint32_t len,
             struct kv_result *out)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(out != NULL);
    RK_ASSERT(data != NULL || len == 0);
    RK_ASSERT(index > kv->applied_index);
    memset(out, 0, sizeof(*out));
    if (len > 0 && data[0] == KV_CMD2_VERSION)
        return kv_apply_v2(kv, index, data, len, out);

    struct kv_cmd c;
    if (kv_cmd_decode(data, len, &c, &kv->last_err) != RK_OK) {
        /* Every replica decodes the same bytes the same way: skipping is deterministic. Nothing
         * is written: a restart replays the entry, as harmlessly (kv.h). */
        out->status = KV_BAD_COMMAND;
        kv->applied_index = index;
        return RK_OK;
    }
    out->op = c.op;
    out->client_id = c.client_id;
    out->seq = c.seq;

    uint32_t s = c.client_id == 0 ? KV_NIL : session_find(kv, c.client_id);
    if (s != KV_NIL && c.seq <= kv->pool[s].last_seq)
        return apply_seen(kv, index, s, &c, out);

    uint64_t evicted = 0;
    int rc = write_command(kv, index, s, &c, out, &evicted);
    if (rc == RK_OK)
        rc = kv->store->ops->end_batch(kv->store, index);
    if (rc != RK_OK)
        return store_failed(out, rc);
    if (c.client_id != 0)
        session_record(kv, s, &c, index, out, evicted);
    kv->applied_index = index;
    return RK_OK;
}

void kv_apply_noop(struct kv *kv, uint64_t index)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(index > kv->applied_index);
    kv->applied_index = index; /* nothing written: a restart replays the no-op (kv.h) */
}

int kv_apply_meta(struct kv *kv, uint64_t index, const uint8_t *key, uint32_t key_len,
                  const uint8_t *val, uint32_t val_len)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(index > kv->applied_index);
    RK_ASSERT(key_len > 0 && key[0] == KV_KEY_META);
    const uint8_t *old = NULL;
    uint32_t old_len = 0;
    bool existed = kv->store->ops->get(kv->store, key, key_len, &old, &old_len) == RK_OK;
    int rc = kv->store->ops->put(kv->store, index, key, key_len, val, val_len);
    if (rc == RK_OK)
        rc = kv->store->ops->end_batch(kv->store, index);
    if (rc != RK_OK)
        return rc;
    if (!existed)
        kv->n_meta++;
    kv->applied_index = index;
    return RK_OK;
}

/* ---- queries ---------------------------------------------------------------------------- */

uint64_t kv_applied_index(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv->applied_index;
}

int kv_get(struct kv *kv, const uint8_t *key, uint32_t key_len, const uint8_t **val,
           uint32_t *val_len)
{
    uint64_t deadline = 0;
    return kv_get_db(kv, 0, key, key_len, val, val_len, &deadline);
}

int kv_get_db(struct kv *kv, uint8_t db, const uint8_t *key, uint32_t key_len, const uint8_t **val,
              uint32_t *val_len, uint64_t *deadline_ms)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(db < KV_DBS);
    if (key_len > KV_MAX_KEY_BYTES)
        return RK_ENOENT; /* never stored: kv_cmd_decode refuses it */
    struct kv_rec rec;
    int rc = kv_rec_get(kv, db, key, key_len, kv_read_now(kv), &rec);
    if (rc != RK_OK)
        return rc;
    if (!rec.live)
        return RK_ENOENT;
    *val = rec.val;
    *val_len = rec.val_len;
    *deadline_ms = rec.deadline_ms;
    return RK_OK;
}

void kv_set_read_time_ms(struct kv *kv, uint64_t now_ms)
{
    RK_ASSERT(kv != NULL);
    kv->read_now_ms = now_ms;
}

uint64_t kv_clock_ms(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv->meta.clock_ms;
}

uint64_t kv_expiring_count(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv->exp.n;
}

uint64_t kv_db_expiring(const struct kv *kv, uint8_t db)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(db < KV_DBS);
    return kv->n_expiring[kv->meta.dbmap[db]];
}

uint64_t kv_dbsize(const struct kv *kv, uint8_t db)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(db < KV_DBS);
    uint8_t p = kv->meta.dbmap[db]; /* SWAPDB */
    if (p != 0)
        return kv->n_keys[p];
    uint64_t all = kv_count(kv);
    for (uint32_t d = 1; d < KV_DBS; d++) {
        RK_ASSERT(all >= kv->n_keys[d]);
        all -= kv->n_keys[d];
    }
    return all;
}

uint64_t kv_count(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    uint64_t count = kv->store->ops->count(kv->store);
    /* K5; also after a failed apply, whose batch writes a session record before it deletes
     * the evicted one. The 'x' records are not keys of their own. */
    uint64_t other =
        (uint64_t)kv->n_sessions + kv->n_meta + kv->n_expiry_records + kv->n_acl_records;
    RK_ASSERT(count >= other);
    return count - other;
}

struct user_scan_ctx {
    struct kv *kv;
    uint8_t db;
    uint64_t now_ms;
    bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
               uint32_t val_len);
    bool (*key_fn)(void *ctx, const uint8_t *key, uint32_t key_len); /* kv_scan_keys */
    void *ctx;
    int rc; /* a record that did not decode */
};

static bool scan_user_key(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                          uint32_t val_len)
{
    struct user_scan_ctx *u = ctx;
    if (key_len == 0 || key[0] != KV_KEY_USER + u->db)
        return true; /* another db, a session record, an expiry record */
    /* Expired keys are absent (kv.h TIME); the in-memory table knows without a value read. */
    uint64_t deadline = exptab_get(&u->kv->exp, key, key_len);
    if (deadline != 0 && deadline <= u->now_ms)
        return true;
    if (u->key_fn != NULL)
        return u->key_fn(u->ctx, key + 1, key_len - 1);
    struct kv_rec rec;
    memset(&rec, 0, sizeof(rec));
    u->rc = kv_user_record_decode(key, key_len, val, val_len, &u->db, &(const uint8_t *){NULL},
                                  &(uint32_t){0}, &rec.val, &rec.val_len, &rec.mod_index,
                                  &rec.deadline_ms, &u->kv->last_err);
    if (u->rc != RK_OK)
        return false;
    return u->fn(u->ctx, key + 1, key_len - 1, rec.val, rec.val_len);
}

int kv_scan_db(struct kv *kv, uint8_t db,
               bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(fn != NULL);
    RK_ASSERT(db < KV_DBS);
    struct user_scan_ctx u = {
        .kv = kv, .db = kv->meta.dbmap[db], .now_ms = kv_read_now(kv), .key_fn = fn, .ctx = ctx};
    int rc = store_scan_keys(kv->store, scan_user_key, &u);
    return rc != RK_OK ? rc : u.rc;
}

/* A store without scan_range: one pass finds the budget smallest hashes >= lo (a max-heap),
 * a second hands over the keys with hash in [lo, hi]. O(store) per page: the in-memory store
 * of tests and the simulator only. The hash is bitcask's keydir hash, so the cursors mean the
 * same on either store. */
struct range_heap {
    uint64_t *h;
    uint64_t n, cap;
    uint32_t lo, hi;
    uint64_t after; /* keys with a hash above hi: none, and this page is the last */
    bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
               uint32_t val_len);
    void *ctx;
};

static uint32_t range_hash(const uint8_t *key, uint32_t key_len)
{
    return (uint32_t)(XXH3_64bits(key, key_len) >> 32);
}

static bool range_heap_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                           uint32_t val_len)
{
    (void)val;
    (void)val_len;
    struct range_heap *r = ctx;
    uint64_t h = range_hash(key, key_len);
    if (h < r->lo)
        return true;
    uint64_t *a = r->h, i;
    if (r->n < r->cap) {
        for (i = r->n++; i > 0 && a[(i - 1) / 2] < h; i = (i - 1) / 2)
            a[i] = a[(i - 1) / 2];
        a[i] = h;
    } else if (h < a[0]) {
        for (i = 0;;) { /* sift h down from the root */
            uint64_t l = 2 * i + 1, m = l + 1 < r->n && a[l + 1] > a[l] ? l + 1 : l;
            if (l >= r->n || a[m] <= h)
                break;
            a[i] = a[m];
            i = m;
        }
        a[i] = h;
    }
    return true;
}

static bool range_pass_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                           uint32_t val_len)
{
    struct range_heap *r = ctx;
    uint32_t h = range_hash(key, key_len);
    r->after += h > r->hi;
    return h < r->lo || h > r->hi || r->fn(r->ctx, key, key_len, val, val_len);
}

static int store_scan_range(struct kv *kv, uint32_t lo, uint64_t budget,
                            bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                       const uint8_t *val, uint32_t val_len),
                            void *ctx, uint64_t *next)
{
    struct kv_store *st = kv->store;
    if (st->ops->scan_range != NULL)
        return st->ops->scan_range(st, lo, budget, fn, ctx, next);
    uint64_t total = st->ops->count(st);
    struct range_heap r = {
        .cap = budget < total ? budget : total, .lo = lo, .hi = UINT32_MAX, .fn = fn, .ctx = ctx};
    *next = 0;
    if (r.cap > 0 && r.cap < total) {
        r.h = rk_malloc(kv->alloc, r.cap * sizeof(*r.h));
        if (r.h == NULL)
            return RK_ENOMEM;
        int rc = store_scan_keys(st, range_heap_one, &r);
        if (rc == RK_OK && r.n == r.cap && r.h[0] < UINT32_MAX) {
            r.hi = (uint32_t)r.h[0];
            *next = (uint64_t)r.hi + 1;
        }
        rk_free(kv->alloc, r.h);
        if (rc != RK_OK)
            return rc;
    }
    int rc = store_scan_keys(st, range_pass_one, &r);
    if (r.after == 0)
        *next = 0;
    return rc;
}

int kv_scan_db_range(struct kv *kv, uint8_t db, uint64_t cursor, uint64_t budget,
                     bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx,
                     uint64_t *next)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(fn != NULL);
    RK_ASSERT(db < KV_DBS);
    RK_ASSERT(next != NULL);
    *next = 0;
    if (cursor > UINT32_MAX)
        return RK_OK; /* past every hash: the iteration is over */
    struct user_scan_ctx u = {
        .kv = kv, .db = kv->meta.dbmap[db], .now_ms = kv_read_now(kv), .key_fn = fn, .ctx = ctx};
    int rc = store_scan_range(kv, (uint32_t)cursor, budget ? budget : 1, scan_user_key, &u, next);
    return rc != RK_OK ? rc : u.rc;
}

uint8_t kv_db_physical(const struct kv *kv, uint8_t db)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(db < KV_DBS);
    return kv->meta.dbmap[db];
}

uint64_t kv_read_time_ms(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv_read_now(kv);
}

int kv_scan_keys(struct kv *kv, bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len),
                 void *ctx)
{
    return kv_scan_db(kv, 0, fn, ctx);
}

int kv_scan(struct kv *kv,
            bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                       uint32_t val_len),
            void *ctx)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(fn != NULL);
    struct user_scan_ctx u = {
        .kv = kv, .db = kv->meta.dbmap[0], .now_ms = kv_read_now(kv), .fn = fn, .ctx = ctx};
    int rc = kv->store->ops->scan(kv->store, scan_user_key, &u);
    return rc != RK_OK ? rc : u.rc;
}

struct digest_ctx {
    uint64_t sum;
    uint64_t pairs;
};

static bool digest_pair(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                        uint32_t val_len)
{
    struct digest_ctx *d = ctx;
    if (key_len > 0 && key[0] == KV_KEY_META)
        return true;
    /* The value's hash is seeded by the key's, so (k, v) and (k', v') collide only by chance;
     * the final multiply spreads each pair over all 64 bits before the (commutative) sum. */
    uint64_t h = XXH3_64bits_withSeed(val, val_len, XXH3_64bits(key, key_len));
    d->sum += (h | 1) * 0x9e3779b97f4a7c15ULL;
    d->pairs++;
    return true;
}

int kv_digest(const struct kv *kv, uint64_t *out)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(out != NULL);
    struct digest_ctx d = {0, 0};
    int rc = kv->store->ops->scan(kv->store, digest_pair, &d);
    if (rc != RK_OK)
        return rc;
    *out = d.sum ^ (d.pairs * 0xc2b2ae3d27d4eb4fULL);
    return RK_OK;
}

uint32_t kv_session_count(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv->n_sessions;
}

const char *kv_last_error(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv->last_err.text;
}

int kv_session_get(const struct kv *kv, uint64_t client_id, struct kv_session_info *out)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(out != NULL);
    if (client_id == 0)
        return RK_ENOENT;
    uint32_t i = session_find(kv, client_id);
    if (i == KV_NIL)
        return RK_ENOENT;
    session_info(&kv->pool[i], out);
    return RK_OK;
}

void kv_session_scan(const struct kv *kv, bool (*fn)(void *ctx, const struct kv_session_info *s),
                     void *ctx)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(fn != NULL);
    uint32_t i = kv->lru_head;
    for (uint32_t n = 0; n < kv->n_sessions; n++) {
        RK_ASSERT(i != KV_NIL);
        struct kv_session_info info;
        session_info(&kv->pool[i], &info);
        if (!fn(ctx, &info))
            return;
        i = kv->pool[i].next;
    }
    RK_ASSERT(i == KV_NIL);
}

/* ---- invariants ------------------------------------------------------------------------- */

static bool lru_valid(const struct kv *kv)
{
    uint32_t i = kv->lru_head;
    uint32_t prev = KV_NIL;
    uint64_t last_index = 0;
    for (uint32_t n = 0; n < kv->n_sessions; n++) { /* K1: exactly n_sessions links */
        if (i == KV_NIL || i >= kv->n_sessions || kv->pool[i].prev != prev)
            return false;
        const struct kv_session *s = &kv->pool[i];
        if (s->last_index <= last_index || s->last_index > kv->applied_index) /* K2 */
            return false;
        if (s->client_id == 0 || s->last_seq == 0) /* K4 */
            return false;
        last_index = s->last_index;
        prev = i;
        i = s->next;
    }
    return i == KV_NIL && kv->lru_tail == prev;
}

static bool table_valid(const struct kv *kv)
{
    uint32_t occupied = 0;
    for (uint32_t pos = 0; pos <= kv->mask; pos++) {
        const struct kv_slot *sl = &kv->slots[pos];
        if (sl->session == 0)
            continue;
        occupied++;
        if (sl->session > kv->n_sessions)
            return false;
        uint64_t client_id = kv->pool[sl->session - 1].client_id;
        if (sl->hash != client_hash(client_id))
            return false;
        uint32_t prev = (pos - 1) & kv->mask;
        uint32_t dist = slot_dist(kv, pos);
        /* K3: Robin Hood order */
        if (dist > 0 && (kv->slots[prev].session == 0 || dist > slot_dist(kv, prev) + 1))
            return false;
        if (table_find(kv, client_id, sl->hash) != pos) /* K4: one session per client id */
            return false;
    }
    return occupied == kv->n_sessions &&
           (uint64_t)kv->max_sessions * 4 <= ((uint64_t)kv->mask + 1) * 3;
}

/* K5: each live session's record is in the store and decodes to it; the store's session
 * records are exactly these (counted by a scan). */
static bool count_session_record(void *ctx, const uint8_t *key, uint32_t key_len,
                                 const uint8_t *val, uint32_t val_len)
{
    (void)val;
    (void)val_len;
    uint64_t *n = ctx;
    if (key_len > 0 && key[0] == KV_KEY_SESSION)
        (*n)++;
    return true;
}

static bool records_valid(const struct kv *kv)
{
    struct kv_store *st = kv->store;
    for (uint32_t i = 0; i < kv->n_sessions; i++) {
        const struct kv_session *s = &kv->pool[i];
        uint8_t key[KV_SESSION_KEY_BYTES];
        session_key(s->client_id, key);
        const uint8_t *val = NULL;
        uint32_t val_len = 0;
        struct kv_session got;
        if (st->ops->get(st, key, sizeof(key), &val, &val_len) != RK_OK ||
            session_decode(key, val, val_len, UINT64_MAX, &got, NULL) != RK_OK)
            return false;
        if (got.last_seq != s->last_seq || got.last_index != s->last_index ||
            got.last_op != s->last_op || got.last_num != s->last_num ||
            got.last_status != s->last_status)
            return false;
    }
    uint64_t n_records = 0;
    return st->ops->scan(st, count_session_record, &n_records) == RK_OK &&
           n_records == kv->n_sessions;
}

/* K6: the per-db key counts, the 'x' records, the expiry table and the records' deadlines agree
 * (kv.h STORE LAYOUT). */
struct layout_count {
    const struct kv *kv;
    uint64_t keys[KV_DBS];
    uint64_t expiry;
    bool ok;
};

static bool count_layout(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                         uint32_t val_len)
{
    struct layout_count *c = ctx;
    if (key_len >= 1 && key[0] >= KV_KEY_USER && key[0] < KV_KEY_USER + KV_DBS) {
        c->keys[key[0] - KV_KEY_USER]++;
        uint8_t db = 0;
        const uint8_t *k = NULL, *v = NULL;
        uint32_t kl = 0, vl = 0;
        uint64_t mod = 0, deadline = 0;
        if (kv_user_record_decode(key, key_len, val, val_len, &db, &k, &kl, &v, &vl, &mod,
                                  &deadline, NULL) != RK_OK ||
            exptab_get(&c->kv->exp, key, key_len) != deadline || mod == 0 ||
            mod > c->kv->applied_index)
            c->ok = false;
    } else if (key_len >= 10 && key[0] == KV_KEY_EXPIRY) {
        uint64_t deadline = 0;
        for (int i = 0; i < 8; i++)
            deadline = deadline << 8 | key[1 + i];
        c->expiry++;
        if (exptab_get(&c->kv->exp, key + 9, key_len - 9) != deadline)
            c->ok = false;
    }
    return true;
}

static bool layout_valid(const struct kv *kv)
{
    struct layout_count c = {.kv = kv, .ok = true};
    if (kv->store->ops->scan(kv->store, count_layout, &c) != RK_OK || !c.ok)
        return false;
    uint64_t expiring = 0;
    for (uint32_t d = 0; d < KV_DBS; d++)
        expiring += kv->n_expiring[d];
    if (expiring != c.expiry)
        return false;
    for (uint32_t d = 1; d < KV_DBS; d++)
        if (c.keys[d] != kv->n_keys[d])
            return false;
    return c.expiry == kv->n_expiry_records && c.expiry == kv->exp.n;
}

bool kv_valid(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv->n_sessions <= kv->max_sessions && lru_valid(kv) && table_valid(kv) &&
           records_valid(kv) && layout_valid(kv) && kv_acl_valid(kv);
}
