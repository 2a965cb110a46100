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
 *
 * Apply order: decode, find the session, answer a retry from the cache, else write to the store
 * and only then record the session. A store error therefore leaves everything as it was
 * (kv.h), and a retry of the same entry is safe.
 */
#include "kv/kv.h"

#include <string.h>

#include <xxhash.h>

#include "common/assert.h"

#define KV_NIL          UINT32_MAX
#define TABLE_MIN_SLOTS 16u

struct kv_session {
    uint64_t client_id;
    uint64_t last_seq;
    uint64_t last_index;
    int64_t last_num;
    uint8_t last_op;
    uint32_t prev; /* LRU neighbours, KV_NIL at the ends */
    uint32_t next;
};

struct kv_slot {
    uint64_t hash;
    uint32_t session; /* pool index + 1; 0: the slot is empty */
};

struct kv {
    const struct rk_alloc *alloc;
    struct kv_store *store;
    uint64_t applied_index;
    struct kv_session *pool; /* max_sessions */
    struct kv_slot *slots;   /* mask + 1 */
    uint32_t mask;
    uint32_t max_sessions;
    uint32_t n_sessions;
    uint32_t lru_head; /* least recently used */
    uint32_t lru_tail; /* most recently used */
    struct rk_errmsg last_err;
};

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
    out->result.status = KV_OK;
    out->result.op = s->last_op;
    out->result.client_id = s->client_id;
    out->result.seq = s->last_seq;
    out->result.num = s->last_num;
    out->result.err = RK_OK;
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

int kv_create(const struct kv_config *c, struct kv **out)
{
    RK_ASSERT(c != NULL);
    RK_ASSERT(out != NULL);
    RK_ASSERT(c->alloc != NULL);
    RK_ASSERT(c->store != NULL);
    *out = NULL;
    uint32_t max_sessions = c->max_sessions == 0 ? KV_DEFAULT_MAX_SESSIONS : c->max_sessions;
    if (max_sessions > KV_MAX_SESSIONS)
        return RK_EINVAL;
    uint32_t n_slots = table_slots_for(max_sessions);

    struct kv *kv = rk_malloc(c->alloc, sizeof(*kv));
    if (kv == NULL)
        return RK_ENOMEM;
    memset(kv, 0, sizeof(*kv));
    kv->pool = rk_malloc(c->alloc, (size_t)max_sessions * sizeof(*kv->pool));
    if (kv->pool == NULL)
        goto err_free_kv;
    kv->slots = rk_malloc(c->alloc, (size_t)n_slots * sizeof(*kv->slots));
    if (kv->slots == NULL)
        goto err_free_pool;
    memset(kv->pool, 0, (size_t)max_sessions * sizeof(*kv->pool));
    memset(kv->slots, 0, (size_t)n_slots * sizeof(*kv->slots));
    kv->alloc = c->alloc;
    kv->store = c->store;
    kv->applied_index = c->store->ops->applied_index(c->store);
    kv->mask = n_slots - 1;
    kv->max_sessions = max_sessions;
    kv->lru_head = KV_NIL;
    kv->lru_tail = KV_NIL;
    RK_ASSERT_SLOW(kv_valid(kv));
    *out = kv;
    return RK_OK;

err_free_pool:
    rk_free(c->alloc, kv->pool);
err_free_kv:
    rk_free(c->alloc, kv);
    return RK_ENOMEM;
}

void kv_destroy(struct kv *kv)
{
    if (kv == NULL)
        return;
    const struct rk_alloc *a = kv->alloc;
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
        out->status = KV_DUPLICATE;
        out->op = s->last_op;
        out->num = s->last_num;
    } else {
        out->status = KV_STALE;
        out->num = 0;
    }
}

/* Runs the command against the store. On error nothing changed (store.h S1). */
static int execute(struct kv *kv, uint64_t index, const struct kv_cmd *c, struct kv_result *out)
{
    struct kv_store *st = kv->store;
    if (c->op == KV_OP_PUT) {
        out->num = 0;
        return st->ops->put(st, index, c->key, c->key_len, c->val, c->val_len);
    }
    RK_ASSERT(c->op == KV_OP_DEL); /* kv_cmd_decode accepts nothing else */
    bool existed = false;
    int rc = st->ops->del(st, index, c->key, c->key_len, &existed);
    out->num = rc == RK_OK && existed ? 1 : 0;
    return rc;
}

/* Remembers the result of the command just applied for its client. */
static void session_record(struct kv *kv, uint32_t i, const struct kv_cmd *c, uint64_t index,
                           const struct kv_result *res)
{
    if (i == KV_NIL)
        i = session_open(kv, c->client_id);
    struct kv_session *s = &kv->pool[i];
    RK_ASSERT(s->client_id == c->client_id);
    RK_ASSERT(c->seq > s->last_seq);
    s->last_seq = c->seq;
    s->last_op = c->op;
    s->last_num = res->num;
    session_touch(kv, i, index);
}

int kv_apply(struct kv *kv, uint64_t index, const uint8_t *data, uint32_t len,
             struct kv_result *out)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(out != NULL);
    RK_ASSERT(data != NULL || len == 0);
    RK_ASSERT(index > kv->applied_index);
    memset(out, 0, sizeof(*out));

    struct kv_cmd c;
    if (kv_cmd_decode(data, len, &c, &kv->last_err) != RK_OK) {
        /* Every replica decodes the same bytes the same way: skipping is deterministic. */
        out->status = KV_BAD_COMMAND;
        kv->applied_index = index;
        return RK_OK;
    }
    out->op = c.op;
    out->client_id = c.client_id;
    out->seq = c.seq;

    uint32_t s = c.client_id == 0 ? KV_NIL : session_find(kv, c.client_id);
    if (s != KV_NIL && c.seq <= kv->pool[s].last_seq) {
        answer_retry(&kv->pool[s], &c, out);
        session_touch(kv, s, index);
        kv->applied_index = index;
        return RK_OK;
    }

    int rc = execute(kv, index, &c, out);
    if (rc != RK_OK) {
        out->status = KV_STORE_ERROR;
        out->num = 0;
        out->err = rc;
        return rc; /* not applied: the caller retries this index or stops (kv.h) */
    }
    out->status = KV_OK;
    if (c.client_id != 0)
        session_record(kv, s, &c, index, out);
    kv->applied_index = index;
    return RK_OK;
}

void kv_apply_noop(struct kv *kv, uint64_t index)
{
    RK_ASSERT(kv != NULL);
    RK_ASSERT(index > kv->applied_index);
    kv->applied_index = index;
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
    RK_ASSERT(kv != NULL);
    return kv->store->ops->get(kv->store, key, key_len, val, val_len);
}

uint64_t kv_count(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv->store->ops->count(kv->store);
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

bool kv_valid(const struct kv *kv)
{
    RK_ASSERT(kv != NULL);
    return kv->n_sessions <= kv->max_sessions && lru_valid(kv) && table_valid(kv);
}
