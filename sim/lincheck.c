/*
 * lincheck.c — linearizability of a KV client history: Wing & Gong search with Lowe's
 * just-in-time linearization and memoization as in Porcupine, per key; shrinking of a
 * violation to small evidence.
 *
 * Per key, the search runs over a doubly linked list of call and return events sorted by
 * (time, calls before returns, op order); an op that may have taken effect but never returned
 * (LIN_UNKNOWN, or never completed) is pending: its return is at +infinity, after every finite
 * event, and its output is free. The search walks the list from its head: at a call it tries
 * to linearize that op now (the model accepts its output in the current state, and the new
 * configuration is not known to fail), lifts the op's call and return out of the list and
 * restarts from the head; at a return it has met an op that had to be linearized already, so
 * it backtracks. It succeeds once every completed op is linearized (pending ones may never
 * take effect).
 *
 * Pending writes are where such searches blow up (Knossos and Porcupine alike); four exact
 * reductions keep them cheap here:
 *  - values no GET returns are one value (lin_key_number_values);
 *  - pending writes that nothing could observe, and surplus twins (pending writes of the same
 *    effect), are dropped before the search (lin_prune_pending);
 *  - twins are used in call order only, and a pending op only right before a completed one
 *    (lin_search_twins, lin_search_run);
 *  - a failed configuration rules out every configuration it dominates (lin_failed_dominates).
 *
 * Invariants:
 *  1. A key's ops are numbered in call order, so the set of completed ops linearized is almost
 *     always a prefix plus a few bits: it is stored run-length encoded (lin_bits_encode).
 *  2. Every push enters a configuration not dominated by a failed one, and every pop adds one
 *     to the failed table, which only grows: the search ends, within `budget` pushes.
 *  3. Register state: 0 = absent, 1 + v = holds the key's value number v.
 *  4. Nothing here reads a clock, draws a random number or depends on an address, so a given
 *     history always yields the same result and explanation.
 *
 * Search (lin_search_run):
 *
 *      at a call ──model accepts, config not failed──► push, lift op, go to head
 *        │   ▲                                            │
 *        │   └──────── next entry ◄──── rejected ─────────┘ (lin_search_try)
 *        ▼
 *      at a return ──completed ops tried, pending ops not──► pending ops, from the head
 *        ├──────────stack empty──► LIN_VIOLATION
 *        └──────────────────────► fail config, pop, unlift op, go on after it (lin_search_back)
 *
 * Shrinking a violation (lin_shrink): evidence is a sub-history H' built from the key's
 * history H by steps that can only make it easier to linearize, so H' not linearizable proves
 * H is not: (a) cut at an event (ops invoked later dropped, ops returning later pending:
 * Porcupine's prefix argument — the ops linearized before the cut in a linearization of H
 * form one of H'), (b) drop a GET (it changes no state), (c) free a DEL's output, (d) make a
 * write pending, (e) lin_prune_pending. The shortest failing cut and the latest failing start
 * of a window (ops before it relaxed by (b) and (d)) are found by bisection (failing is
 * monotone in both), then (b)-(d) are applied greedily in halving chunks (ddmin), keeping each
 * step that still fails; finally writes made pending are restored where that lets the rest
 * shrink further.
 */
#include "lincheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv.h"
#include "linrich.h"

#define LIN_NIL     (-1)
#define LIN_POS_INF UINT32_MAX
/* One search gives up when its table of failed configurations would exceed this. */
#define LIN_SEARCH_BYTES_MAX ((size_t)1 << 30)
#define LIN_GROUPS_MIN       1024u
/* One search gives up when it compares more than this many failed entries per budget state. */
#define LIN_WORK_PER_STATE 64u
/* Shrinking a violation: a trial may spend this many states plus so many times what the key's
 * own check took; the whole shrinking this many trials' worth, and at most so many budgets. */
#define LIN_SHRINK_TRIAL_STATES_MIN 10000u
#define LIN_SHRINK_TRIAL_KEY_STATES 2u
#define LIN_SHRINK_EFFORT_TRIALS    64u
#define LIN_SHRINK_EFFORT_BUDGETS   16u
/* The explanation lists at most this many ops (the last ones: the violation is at the end). */
#define LIN_EXPLAIN_OPS_MAX 200u
/* Values longer than this are shown truncated. */
#define LIN_VALUE_SHOW_BYTES_MAX 40u
/* Ops per key: node indices are int32_t and there are 2n + 1 nodes. */
#define LIN_KEY_OPS_MAX (UINT32_C(1) << 29)

/* ---- memory ---------------------------------------------------------------------------- */

/* An allocation failure aborts: the checker is a test tool (see lincheck.h). */
static void *lin_realloc_array(void *p, size_t count, size_t size)
{
    RK_ASSERT(size == 0 || count <= SIZE_MAX / size);
    size_t bytes = count * size;
    void *q = realloc(p, bytes == 0 ? 1 : bytes);
    RK_ASSERT(q != NULL);
    return q;
}

static void *lin_zalloc_array(size_t count, size_t size)
{
    void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
    RK_ASSERT(p != NULL);
    return p;
}

/* Makes room for need elements of size in *p (capacity *cap), doubling. */
static void *lin_reserve(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t c = *cap < 1024 ? 1024 : *cap;
    while (c < need)
        c *= 2;
    *cap = c;
    return lin_realloc_array(p, c, size);
}

/* ---- the history ----------------------------------------------------------------------- */

/* Where a key or value lives in lin_history.bytes. */
struct lin_slice {
    size_t off;
    uint32_t len;
    bool found; /* outputs: the key was present */
};

struct lin_hop {
    uint64_t client;
    uint64_t conn; /* 0: none */
    uint64_t call;
    uint64_t ret;
    size_t key_off; /* the first key, PUT input and GET output: in lin_history.bytes */
    size_t in_off;
    size_t out_off;
    uint32_t key_len;
    uint32_t in_len;
    uint32_t out_len;
    int64_t num;
    int64_t delta;
    size_t keys; /* every key: nkeys slices from here in lin_history.slices */
    size_t ins;  /* inputs (PUT, PUT_IF: 1; MSET: nkeys) */
    size_t outs; /* outputs (GET: 1; MGET: nkeys), set on completion */
    uint32_t nkeys;
    uint8_t type;
    uint8_t cond;
    uint8_t outcome; /* 0 = not completed (yet) */
    bool found;
    bool error;         /* INCRBY refused */
    uint8_t watch_slot; /* LIN_CMD */
};

struct lin_history {
    struct lin_hop *ops;
    size_t nops;
    size_t ops_cap;
    uint8_t *bytes;
    size_t nbytes;
    size_t bytes_cap;
    struct lin_slice *slices;
    size_t nslices;
    size_t slices_cap;
    uint64_t clock_bound_us;
};

struct lin_history *lin_history_create(void)
{
    return lin_zalloc_array(1, sizeof(struct lin_history));
}

void lin_history_destroy(struct lin_history *h)
{
    if (h == NULL)
        return;
    free(h->ops);
    free(h->bytes);
    free(h->slices);
    free(h);
}

void lin_history_set_clock_bound(struct lin_history *h, uint64_t bound_us)
{
    RK_ASSERT(h != NULL);
    h->clock_bound_us = bound_us;
}

size_t lin_history_size(const struct lin_history *h)
{
    RK_ASSERT(h != NULL);
    return h->nops;
}

/* Copies len bytes into the history's byte pool; returns their offset. */
static size_t lin_history_copy(struct lin_history *h, const uint8_t *p, uint32_t len)
{
    RK_ASSERT(p != NULL || len == 0);
    RK_ASSERT(h->nbytes <= SIZE_MAX / 2 - len);
    /* At least one byte, so that h->bytes + off is never arithmetic on NULL. */
    h->bytes = lin_reserve(h->bytes, &h->bytes_cap, h->nbytes + len + 1, 1);
    size_t off = h->nbytes;
    if (len > 0)
        memcpy(h->bytes + off, p, len);
    h->nbytes += len;
    return off;
}

/* Copies n byte strings as slices; returns the index of the first. */
static size_t lin_history_slices(struct lin_history *h, uint32_t n, const uint8_t *const *p,
                                 const uint32_t *len, const bool *found)
{
    h->slices = lin_reserve(h->slices, &h->slices_cap, h->nslices + n + 1, sizeof(*h->slices));
    size_t first = h->nslices;
    for (uint32_t i = 0; i < n; i++) {
        bool f = found == NULL || found[i];
        uint32_t l = f ? len[i] : 0;
        h->slices[h->nslices++] =
            (struct lin_slice){lin_history_copy(h, f ? p[i] : NULL, l), l, f};
    }
    return first;
}

static bool lin_op_valid(uint8_t op)
{
    return op >= LIN_GET && op <= LIN_CMD_READ;
}

static bool lin_op_cmd(uint8_t op)
{
    return op == LIN_CMD || op == LIN_CMD_READ;
}

static bool lin_op_multi(uint8_t op)
{
    return op == LIN_MSET || op == LIN_MGET || lin_op_cmd(op);
}

static bool lin_op_has_input(uint8_t op)
{
    return op == LIN_PUT || op == LIN_PUT_IF || op == LIN_MSET || lin_op_cmd(op);
}

static bool lin_op_reads_only(uint8_t op)
{
    return op == LIN_GET || op == LIN_MGET || op == LIN_CMD_READ;
}

uint64_t lin_invoke_call(struct lin_history *h, const struct lin_call *c)
{
    RK_ASSERT(h != NULL);
    RK_ASSERT(lin_op_valid(c->op));
    RK_ASSERT(c->n_keys >= 1 && c->n_keys <= LIN_MAX_KEYS);
    RK_ASSERT(lin_op_multi(c->op) || c->n_keys == 1);
    RK_ASSERT(c->op != LIN_PUT_IF || c->cond == LIN_COND_NX || c->cond == LIN_COND_XX);
    RK_ASSERT(h->nops < UINT32_MAX - 1); /* op ids are 32-bit inside */
    h->ops = lin_reserve(h->ops, &h->ops_cap, h->nops + 1, sizeof(*h->ops));
    struct lin_hop *o = &h->ops[h->nops];
    memset(o, 0, sizeof(*o));
    o->client = c->client;
    o->conn = c->conn;
    o->call = c->time;
    o->type = c->op;
    o->cond = c->cond;
    o->delta = c->delta;
    o->nkeys = c->n_keys;
    o->watch_slot = c->watch_slot;
    o->keys = lin_history_slices(h, c->n_keys, c->keys, c->key_lens, NULL);
    o->key_off = h->slices[o->keys].off;
    o->key_len = h->slices[o->keys].len;
    if (lin_op_cmd(c->op)) {
        RK_ASSERT(c->cmd != NULL && c->watch_slot <= LX_WATCH_SLOTS);
        o->ins = lin_history_slices(h, 1, &c->cmd, &c->cmd_len, NULL);
        o->in_off = h->slices[o->ins].off;
        o->in_len = h->slices[o->ins].len;
    } else if (lin_op_has_input(c->op)) {
        uint32_t nin = c->op == LIN_MSET ? c->n_keys : 1;
        o->ins = lin_history_slices(h, nin, c->vals, c->val_lens, NULL);
        o->in_off = h->slices[o->ins].off;
        o->in_len = h->slices[o->ins].len;
    }
    return h->nops++;
}

uint64_t lin_invoke(struct lin_history *h, uint64_t client, uint64_t time, uint8_t op,
                    const uint8_t *key, uint32_t key_len, const uint8_t *val, uint32_t val_len)
{
    RK_ASSERT(op == LIN_GET || op == LIN_PUT || op == LIN_DEL);
    RK_ASSERT(key != NULL || key_len == 0);
    const uint8_t *keys[1] = {key};
    const uint8_t *vals[1] = {val};
    struct lin_call c = {.client = client, .time = time, .op = op, .n_keys = 1, .keys = keys,
                         .key_lens = &key_len, .vals = vals, .val_lens = &val_len};
    return lin_invoke_call(h, &c);
}

void lin_complete_ret(struct lin_history *h, uint64_t op_id, uint64_t time, uint8_t outcome,
                      const struct lin_return *r)
{
    RK_ASSERT(h != NULL);
    RK_ASSERT(op_id < h->nops);
    RK_ASSERT(outcome == LIN_OK || outcome == LIN_FAIL || outcome == LIN_UNKNOWN);
    struct lin_hop *o = &h->ops[op_id];
    RK_ASSERT(o->outcome == 0); /* each op completes once */
    o->outcome = outcome;
    o->ret = time;
    if (outcome != LIN_OK || r == NULL)
        return;
    RK_ASSERT(time >= o->call);
    if (lin_op_cmd(o->type)) {
        RK_ASSERT(r->res != NULL && kv_res_check(r->res, r->res_len, NULL) == RK_OK);
        o->outs = lin_history_slices(h, 1, &r->res, &r->res_len, NULL);
        o->out_off = h->slices[o->outs].off;
        o->out_len = h->slices[o->outs].len;
        o->found = true;
    } else if (lin_op_reads_only(o->type)) {
        RK_ASSERT(r->n_vals == o->nkeys);
        o->outs = lin_history_slices(h, r->n_vals, r->vals, r->val_lens, r->found);
        o->found = h->slices[o->outs].found;
        o->out_off = h->slices[o->outs].off;
        o->out_len = h->slices[o->outs].len;
    }
    o->num = r->num;
    o->error = o->type == LIN_INCRBY && r->error;
}

void lin_complete(struct lin_history *h, uint64_t op_id, uint64_t time, uint8_t outcome, bool found,
                  const uint8_t *val, uint32_t val_len, int64_t num)
{
    RK_ASSERT(op_id < h->nops);
    const uint8_t *vals[1] = {val};
    struct lin_return r = {.num = num, .n_vals = h->ops[op_id].type == LIN_GET ? 1 : 0,
                           .found = &found, .vals = vals, .val_lens = &val_len};
    lin_complete_ret(h, op_id, time, outcome, &r);
}

/* ---- the ops of one key ---------------------------------------------------------------- */

#define LIN_KOP_PENDING 1u /* returns at +infinity; output unconstrained */
#define LIN_KOP_ANY_OUT 2u /* returns at its time; output unconstrained (shrinking, DEL only) */

struct lin_kop {
    uint64_t conn; /* 0: none */
    uint64_t call;
    uint64_t ret;      /* unused when pending */
    uint32_t hop;      /* index into lin_history.ops */
    uint32_t idx;      /* index in the key's ops as checked (the base of shrinking) */
    uint32_t call_pos; /* positions in the key's event order; ret_pos = LIN_POS_INF if pending */
    uint32_t ret_pos;
    uint32_t in_vid; /* PUT: the value's number among the key's distinct values */
    uint32_t out_vid;
    int64_t num;
    uint8_t type;
    uint8_t flags;
    bool found;
};

static bool lin_kop_constrained(const struct lin_kop *k)
{
    return (k->flags & (LIN_KOP_PENDING | LIN_KOP_ANY_OUT)) == 0;
}

/* A byte string with a tie-break, for sorting keys and values without a global. */
struct lin_ref {
    const uint8_t *p;
    uint32_t len;
    uint32_t idx;
};

/*
 * Sorts base[0 .. n) by cmp, which must be a total order (no two elements compare equal: then
 * the sorted array is unique, and this gives exactly what qsort gives). The arrays sorted here
 * come nearly in order (events and ops in call order, returns a few places late), so an
 * insertion sort does it in about n steps; past 16n element moves it hands the rest to qsort.
 */
static void lin_sort_nearly(void *base, size_t n, size_t size,
                            int (*cmp)(const void *, const void *))
{
    uint8_t *b = base;
    uint8_t tmp[64];
    RK_ASSERT(size <= sizeof(tmp));
    size_t budget = 16 * n;
    for (size_t i = 1; i < n; i++) {
        if (cmp(b + (i - 1) * size, b + i * size) < 0)
            continue;
        memcpy(tmp, b + i * size, size);
        size_t j = i;
        while (j > 0 && cmp(b + (j - 1) * size, tmp) > 0) {
            j--;
            if (budget-- == 0) {
                memcpy(b + i * size, tmp, size); /* untouched: element i is still in place */
                qsort(base, n, size, cmp);
                return;
            }
        }
        memmove(b + (j + 1) * size, b + j * size, (i - j) * size);
        memcpy(b + j * size, tmp, size);
    }
}

static int lin_ref_cmp_bytes(const struct lin_ref *x, const struct lin_ref *y)
{
    uint32_t min = x->len < y->len ? x->len : y->len;
    int c = min == 0 ? 0 : memcmp(x->p, y->p, min);
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int lin_ref_cmp(const void *a, const void *b)
{
    const struct lin_ref *x = a, *y = b;
    int c = lin_ref_cmp_bytes(x, y);
    if (c != 0)
        return c;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int lin_kop_cmp_call(const void *a, const void *b)
{
    const struct lin_kop *x = a, *y = b;
    if (x->call != y->call)
        return x->call < y->call ? -1 : 1;
    return (x->hop > y->hop) - (x->hop < y->hop);
}

/*
 * Numbers the distinct values of the key's ops (PUT inputs, GET outputs); returns how many.
 * Values that no GET returns share one number: a register holding one of them behaves like one
 * holding another (GETs of values and of nil reject both, DEL removes both, PUT replaces
 * both), so merging them changes no verdict, and it shrinks the state space.
 */
static uint32_t lin_key_number_values(const struct lin_history *h, struct lin_kop *ops, uint32_t n)
{
    struct lin_ref *refs = lin_zalloc_array((size_t)n, sizeof(*refs));
    uint32_t nrefs = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct lin_hop *o = &h->ops[ops[i].hop];
        if (o->type == LIN_PUT)
            refs[nrefs++] = (struct lin_ref){h->bytes + o->in_off, o->in_len, i};
        else if (o->type == LIN_GET && ops[i].found)
            refs[nrefs++] = (struct lin_ref){h->bytes + o->out_off, o->out_len, i};
    }
    qsort(refs, nrefs, sizeof(*refs), lin_ref_cmp);
    uint32_t nvals = 0, unread = UINT32_MAX;
    for (uint32_t a = 0, b; a < nrefs; a = b) {
        bool read = false;
        for (b = a; b < nrefs && lin_ref_cmp_bytes(&refs[a], &refs[b]) == 0; b++)
            read = read || ops[refs[b].idx].type == LIN_GET;
        if (!read && unread == UINT32_MAX)
            unread = nvals++;
        uint32_t id = read ? nvals++ : unread;
        for (uint32_t i = a; i < b; i++) {
            struct lin_kop *k = &ops[refs[i].idx];
            if (k->type == LIN_PUT)
                k->in_vid = id;
            else
                k->out_vid = id;
        }
    }
    free(refs);
    return nvals;
}

/*
 * Builds the checker's ops for one key from its history ops (refs, n of them): LIN_FAIL ops
 * and GETs of unknown outcome are dropped, writes of unknown outcome become pending. Sorted in
 * call order. Returns the number of ops; *nvals gets the number of distinct values.
 */
static uint32_t lin_key_ops(const struct lin_history *h, const struct lin_ref *refs, uint32_t n,
                            struct lin_kop *ops, uint32_t *nvals)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct lin_hop *o = &h->ops[refs[i].idx];
        if (o->outcome == LIN_FAIL)
            continue;
        bool pending = o->outcome != LIN_OK;
        if (pending && o->type == LIN_GET)
            continue;
        struct lin_kop *k = &ops[m++];
        memset(k, 0, sizeof(*k));
        k->conn = o->conn;
        k->call = o->call;
        k->ret = pending ? UINT64_MAX : o->ret;
        k->hop = refs[i].idx;
        k->type = o->type;
        k->flags = pending ? LIN_KOP_PENDING : 0;
        k->found = o->found;
        k->num = o->num;
    }
    lin_sort_nearly(ops, m, sizeof(*ops), lin_kop_cmp_call);
    *nvals = lin_key_number_values(h, ops, m);
    return m;
}

/* Orders op indices by (connection, history op id): program order within a connection. */
static int lin_conn_cmp(const void *a, const void *b, const struct lin_kop *ops)
{
    const struct lin_kop *x = &ops[*(const uint32_t *)a], *y = &ops[*(const uint32_t *)b];
    if (x->conn != y->conn)
        return x->conn < y->conn ? -1 : 1;
    return (x->hop > y->hop) - (x->hop < y->hop);
}

/* Bottom-up merge sort of idx by lin_conn_cmp (qsort has no context argument in C11). */
static void lin_conn_sort(uint32_t *idx, uint32_t *tmp, uint32_t n, const struct lin_kop *ops)
{
    for (uint32_t width = 1; width < n; width *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * width) {
            uint32_t mid = lo + width < n ? lo + width : n;
            uint32_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            uint32_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = lin_conn_cmp(&idx[b], &idx[a], ops) < 0 ? idx[b++] : idx[a++];
            while (a < mid)
                tmp[o++] = idx[a++];
            while (b < hi)
                tmp[o++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(*idx));
        if (width > n / 2)
            break; /* sorted; and width * 2 cannot overflow */
    }
}

/*
 * pred[i]: the connection-predecessor of ops[i] (lincheck.h): the latest op of its connection
 * recorded before it whose outcome counts (not pending), or UINT32_MAX. Pending ops are
 * nobody's predecessor. Returns whether any op has one.
 */
static bool lin_preds(const struct lin_kop *ops, uint32_t n, uint32_t *pred)
{
    uint32_t *idx = lin_zalloc_array(n, sizeof(*idx));
    uint32_t *tmp = lin_zalloc_array(n, sizeof(*tmp));
    for (uint32_t i = 0; i < n; i++) {
        idx[i] = i;
        pred[i] = UINT32_MAX;
    }
    lin_conn_sort(idx, tmp, n, ops);
    bool any = false;
    uint32_t last = UINT32_MAX;
    for (uint32_t j = 0; j < n; j++) {
        const struct lin_kop *k = &ops[idx[j]];
        if (j > 0 && ops[idx[j - 1]].conn != k->conn)
            last = UINT32_MAX;
        if (k->conn == 0)
            continue;
        pred[idx[j]] = last;
        any = any || last != UINT32_MAX;
        if ((k->flags & LIN_KOP_PENDING) == 0)
            last = idx[j];
    }
    free(tmp);
    free(idx);
    return any;
}

/* ---- events ---------------------------------------------------------------------------- */

enum { LIN_EV_CALL = 0, LIN_EV_RETURN = 1, LIN_EV_PENDING = 2 };

struct lin_event {
    uint64_t time;
    uint32_t op;
    uint8_t kind;
};

/*
 * Pending returns last; then by time; at equal times calls before returns (an op that returned
 * at t and one invoked at t are concurrent); then by op (call order): a total order.
 */
static int lin_event_cmp(const void *a, const void *b)
{
    const struct lin_event *x = a, *y = b;
    bool xp = x->kind == LIN_EV_PENDING, yp = y->kind == LIN_EV_PENDING;
    if (xp != yp)
        return xp ? 1 : -1;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return (x->op > y->op) - (x->op < y->op);
}

/* Fills ev[0 .. 2n) with the events of ops, sorted. */
static void lin_events_sort(const struct lin_kop *ops, uint32_t n, struct lin_event *ev)
{
    for (uint32_t i = 0; i < n; i++) {
        bool pending = (ops[i].flags & LIN_KOP_PENDING) != 0;
        RK_ASSERT(pending || ops[i].ret >= ops[i].call);
        ev[2 * i] = (struct lin_event){ops[i].call, i, LIN_EV_CALL};
        ev[2 * i + 1] = (struct lin_event){pending ? UINT64_MAX : ops[i].ret, i,
                                           pending ? LIN_EV_PENDING : LIN_EV_RETURN};
    }
    lin_sort_nearly(ev, 2 * (size_t)n, sizeof(*ev), lin_event_cmp);
}

/* Sets call_pos and ret_pos of every op from the sorted event order. */
static void lin_key_positions(struct lin_kop *ops, uint32_t n)
{
    struct lin_event *ev = lin_zalloc_array(2 * (size_t)n, sizeof(*ev));
    lin_events_sort(ops, n, ev);
    for (uint32_t i = 0; i < 2 * n; i++) {
        struct lin_kop *k = &ops[ev[i].op];
        if (ev[i].kind == LIN_EV_CALL)
            k->call_pos = i;
        else
            k->ret_pos = ev[i].kind == LIN_EV_RETURN ? i : LIN_POS_INF;
    }
    for (uint32_t i = 0; i < n; i++)
        RK_ASSERT(ops[i].call_pos < ops[i].ret_pos);
    free(ev);
}

static uint32_t lin_max_u32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

/* An output-constrained op that observes a state: who (an observer class) and until when. */
enum { LIN_OBS_ABSENT = 0, LIN_OBS_PRESENT = 1, LIN_OBS_VALUE = 2 /* + the value */ };

struct lin_obs {
    uint32_t cls;
    uint32_t ret_pos;
};

static int lin_obs_cmp(const void *a, const void *b)
{
    const struct lin_obs *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    return (x->ret_pos > y->ret_pos) - (x->ret_pos < y->ret_pos);
}

/* The observers of ops, sorted; returns how many (obs has room for n). GETs observe their
 * value or absence, DELs presence (removed one) or absence (removed none). */
static uint32_t lin_observers(const struct lin_kop *ops, uint32_t n, struct lin_obs *obs)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct lin_kop *k = &ops[i];
        if (!lin_kop_constrained(k) || k->type == LIN_PUT)
            continue;
        RK_ASSERT(k->ret_pos != LIN_POS_INF);
        uint32_t cls;
        if (k->type == LIN_GET)
            cls = k->found ? LIN_OBS_VALUE + k->out_vid : LIN_OBS_ABSENT;
        else
            cls = k->num == 0 ? LIN_OBS_ABSENT : LIN_OBS_PRESENT;
        obs[m++] = (struct lin_obs){cls, k->ret_pos};
    }
    qsort(obs, m, sizeof(*obs), lin_obs_cmp);
    return m;
}

/* How many observers of class cls return after position pos. */
static uint32_t lin_observers_after(const struct lin_obs *obs, uint32_t m, uint32_t cls,
                                    uint32_t pos)
{
    /* The first entry > (cls, pos), then the first entry of a later class. */
    uint32_t lo = 0, hi = m;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (obs[mid].cls < cls || (obs[mid].cls == cls && obs[mid].ret_pos <= pos))
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t first = lo;
    hi = m;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (obs[mid].cls <= cls)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - first;
}

/* How many observers of the state pending write k leaves return after position pos. */
static uint32_t lin_write_observers(const struct lin_obs *obs, uint32_t m, const struct lin_kop *k,
                                    uint32_t pos)
{
    if (k->type == LIN_DEL)
        return lin_observers_after(obs, m, LIN_OBS_ABSENT, pos);
    RK_ASSERT(k->type == LIN_PUT);
    return lin_observers_after(obs, m, LIN_OBS_VALUE + k->in_vid, pos) +
           lin_observers_after(obs, m, LIN_OBS_PRESENT, pos);
}

/*
 * Drops pending writes that cannot matter; returns the number of ops kept (in order, in
 * place). nvals bounds the value numbers. Both rules keep the verdict: without a pending
 * write a linearization stays one (it may never take effect); the converse is below.
 *
 * 1. A pending write w when no observer of the state it leaves (a GET of its value or nil, a
 *    DEL that removed one or none) returns after w's call. In a linearization with w, take
 *    the op q right after w: q returns after w's call, so it observes no such state, yet it
 *    is legal in it; so q is a PUT or a DEL with a free output (both leave a state that does
 *    not depend on the one before), or there is no q. Without w, every op stays legal.
 * 2. Twins (every pending DEL; pending PUTs of one value; a pending op with a connection-
 *    predecessor is nobody's twin) beyond the first j, j the number of observers of their
 *    state returning after the first one's call. By rule 1's argument
 *    a linearization needs a twin only right before an observer, so it uses at most j, and
 *    the i-th used can be the i-th invoked instead (lin_search_twins).
 */
static uint32_t lin_prune_pending(struct lin_kop *ops, uint32_t n, uint32_t nvals)
{
    struct lin_obs *obs = lin_zalloc_array(n, sizeof(*obs));
    uint32_t nobs = lin_observers(ops, n, obs);
    uint32_t nclasses = nvals + 1; /* twin classes: 0 DEL, 1 + v PUT of v */
    uint32_t *allowed = lin_zalloc_array(nclasses, sizeof(*allowed)); /* + 1; 0 = unset */
    uint32_t *pred = lin_zalloc_array(n, sizeof(*pred));
    lin_preds(ops, n, pred);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct lin_kop *k = &ops[i];
        if ((k->flags & LIN_KOP_PENDING) != 0) {
            RK_ASSERT(k->type != LIN_GET);
            uint32_t cls = k->type == LIN_DEL ? 0 : 1 + k->in_vid;
            RK_ASSERT(cls < nclasses);
            uint32_t seen = lin_write_observers(obs, nobs, k, k->call_pos);
            if (seen == 0)
                continue; /* rule 1 */
            if (pred[i] != UINT32_MAX) {
                ops[kept++] = *k; /* not a twin: it waits for its predecessor */
                continue;
            }
            if (allowed[cls] == 0)
                allowed[cls] = seen + 1; /* the first twin (ops are in call order) */
            if (allowed[cls] == 1)
                continue; /* rule 2 */
            allowed[cls]--;
        }
        ops[kept++] = *k;
    }
    free(pred);
    free(allowed);
    free(obs);
    return kept;
}

/* ---- the set of linearized ops --------------------------------------------------------- */

/* Words below lo are all ones and words from hi on are all zero: hints kept by set and clear
 * so that encoding skips the long linearized prefix. */
struct lin_bits {
    uint64_t *w;
    uint32_t nwords;
    uint32_t lo;
    uint32_t hi;
};

static void lin_bits_set(struct lin_bits *b, uint32_t i)
{
    uint32_t wi = i / 64;
    RK_ASSERT(wi < b->nwords);
    RK_ASSERT((b->w[wi] & (UINT64_C(1) << (i % 64))) == 0);
    b->w[wi] |= UINT64_C(1) << (i % 64);
    if (wi >= b->hi)
        b->hi = wi + 1;
}

static void lin_bits_clear(struct lin_bits *b, uint32_t i)
{
    uint32_t wi = i / 64;
    RK_ASSERT(wi < b->nwords);
    RK_ASSERT((b->w[wi] & (UINT64_C(1) << (i % 64))) != 0);
    b->w[wi] &= ~(UINT64_C(1) << (i % 64));
    if (wi < b->lo)
        b->lo = wi;
}

/* The first bit >= from (and < end, a multiple of 64) equal to `one`; end if none. */
static uint32_t lin_bits_find(const struct lin_bits *b, uint32_t from, uint32_t end, bool one)
{
    if (from >= end)
        return end;
    uint32_t wi = from / 64;
    uint64_t w = (one ? b->w[wi] : ~b->w[wi]) & (~UINT64_C(0) << (from % 64));
    while (w == 0) {
        wi++;
        if ((uint64_t)wi * 64 >= end)
            return end;
        w = one ? b->w[wi] : ~b->w[wi];
    }
    uint32_t pos = wi * 64 + (uint32_t)__builtin_ctzll(w);
    return pos < end ? pos : end;
}

/*
 * Run-length encodes the set into out: alternating runs of ones and zeros, starting with ones
 * (possibly 0), ending with the last one bit. Canonical: equal sets give equal encodings.
 * Returns the number of runs (at most nbits + 1).
 */
static uint32_t lin_bits_encode(struct lin_bits *b, uint32_t *out)
{
    while (b->lo < b->nwords && b->w[b->lo] == ~UINT64_C(0))
        b->lo++;
    RK_ASSERT(b->lo <= b->hi);
    while (b->hi > b->lo && b->w[b->hi - 1] == 0)
        b->hi--;
    uint32_t end = b->hi * 64;
    uint32_t start = 0, cur = b->lo * 64, nruns = 0;
    bool ones = true;
    for (;;) {
        uint32_t next = lin_bits_find(b, cur, end, !ones);
        if (!ones && next == end)
            break; /* trailing zeros are not encoded */
        out[nruns++] = next - start;
        if (next == end)
            break;
        start = cur = next;
        ones = !ones;
    }
    return nruns;
}

/* ---- the table of failed configurations ------------------------------------------------ */

/*
 * A configuration is (done: the completed ops linearized, used: the pending ops linearized,
 * the register state, after_pending: whether the last op linearized was pending). Once the
 * search has backtracked out of a configuration, no linearization continues from it, nor from
 * any configuration it dominates: same done and state, used a superset (an unused pending op
 * may always stay unused), after_pending no less restrictive. Without pending ops this is
 * Porcupine's cache of visited configurations (a configuration is never its own descendant,
 * as every step adds an op, so "visited" and "failed" coincide there).
 *
 * Configurations are grouped by (done, state) in an open-addressing hash table; each group
 * keeps a list of (used, after_pending) entries, the failed ones.
 */
struct lin_group {
    uint64_t hash; /* 0 = empty slot */
    size_t enc_off;
    uint32_t enc_len;
    uint32_t state;
    size_t first; /* entry index + 1; 0 = none */
};

struct lin_entry {
    size_t used_off; /* in lin_failed.words */
    size_t next;     /* entry index + 1; 0 = end */
    bool after_pending;
};

struct lin_failed {
    struct lin_group *groups;
    size_t cap; /* a power of two */
    size_t ngroups;
    uint32_t *enc;
    size_t enc_len, enc_cap;
    struct lin_entry *entries;
    size_t nentries, entries_cap;
    uint64_t *words;
    size_t words_len, words_cap;
    uint32_t used_words; /* words per used set */
};

static uint64_t lin_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t lin_group_hash(const uint32_t *enc, uint32_t len, uint32_t state)
{
    uint64_t h = lin_mix64(UINT64_C(0x9e3779b97f4a7c15) ^ state);
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ enc[i]) * UINT64_C(0x100000001b3) + (h >> 29);
    h = lin_mix64(h ^ len);
    return h == 0 ? 1 : h;
}

static size_t lin_failed_bytes(const struct lin_failed *f)
{
    return f->cap * sizeof(*f->groups) + f->enc_cap * sizeof(*f->enc) +
           f->entries_cap * sizeof(*f->entries) + f->words_cap * sizeof(*f->words);
}

static void lin_failed_fini(struct lin_failed *f)
{
    free(f->groups);
    free(f->enc);
    free(f->entries);
    free(f->words);
}

static void lin_failed_rehash(struct lin_failed *f)
{
    size_t cap = f->cap == 0 ? LIN_GROUPS_MIN : f->cap * 2;
    struct lin_group *groups = lin_zalloc_array(cap, sizeof(*groups));
    for (size_t i = 0; i < f->cap; i++) {
        if (f->groups[i].hash == 0)
            continue;
        size_t j = f->groups[i].hash & (cap - 1);
        while (groups[j].hash != 0)
            j = (j + 1) & (cap - 1);
        groups[j] = f->groups[i];
    }
    free(f->groups);
    f->groups = groups;
    f->cap = cap;
}

/* The slot of group (enc, state) with this hash: the group, or the empty slot for it. */
static struct lin_group *lin_failed_slot(const struct lin_failed *f, uint64_t hash,
                                         const uint32_t *enc, uint32_t len, uint32_t state)
{
    RK_ASSERT(f->cap > 0);
    size_t mask = f->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct lin_group *g = &f->groups[i];
        if (g->hash == 0)
            return g;
        if (g->hash == hash && g->state == state && g->enc_len == len &&
            memcmp(f->enc + g->enc_off, enc, (size_t)len * sizeof(*enc)) == 0)
            return g;
    }
}

static bool lin_words_subset(const uint64_t *a, const uint64_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if ((a[i] & ~b[i]) != 0)
            return false;
    }
    return true;
}

/* Is the configuration dominated by a failed one? Adds the entries compared to *work. */
static bool lin_failed_dominates(const struct lin_failed *f, const uint32_t *enc, uint32_t len,
                                 uint32_t state, const uint64_t *used, bool after_pending,
                                 uint64_t *work)
{
    if (f->ngroups == 0)
        return false;
    uint64_t hash = lin_group_hash(enc, len, state);
    const struct lin_group *g = lin_failed_slot(f, hash, enc, len, state);
    for (size_t e = g->hash == 0 ? 0 : g->first; e != 0; e = f->entries[e - 1].next) {
        const struct lin_entry *en = &f->entries[e - 1];
        (*work)++;
        /* No pending operations: used sets are empty (and f->words is NULL: NULL + 0 is
         * undefined behaviour in C, so it is not computed). */
        if ((!en->after_pending || after_pending) &&
            (f->used_words == 0 || lin_words_subset(f->words + en->used_off, used, f->used_words)))
            return true;
    }
    return false;
}

/* Records a configuration the search backtracked out of. */
static void lin_failed_add(struct lin_failed *f, const uint32_t *enc, uint32_t len, uint32_t state,
                           const uint64_t *used, bool after_pending)
{
    if ((f->ngroups + 1) * 2 > f->cap)
        lin_failed_rehash(f);
    uint64_t hash = lin_group_hash(enc, len, state);
    struct lin_group *g = lin_failed_slot(f, hash, enc, len, state);
    if (g->hash == 0) {
        f->enc = lin_reserve(f->enc, &f->enc_cap, f->enc_len + len, sizeof(*f->enc));
        memcpy(f->enc + f->enc_len, enc, (size_t)len * sizeof(*enc));
        *g = (struct lin_group){hash, f->enc_len, len, state, 0};
        f->enc_len += len;
        f->ngroups++;
    }
    f->words =
        lin_reserve(f->words, &f->words_cap, f->words_len + f->used_words, sizeof(*f->words));
    if (f->used_words > 0)
        memcpy(f->words + f->words_len, used, (size_t)f->used_words * sizeof(*used));
    f->entries = lin_reserve(f->entries, &f->entries_cap, f->nentries + 1, sizeof(*f->entries));
    f->entries[f->nentries] = (struct lin_entry){f->words_len, g->first, after_pending};
    f->words_len += f->used_words;
    g->first = ++f->nentries;
}

/* ---- the model: one register ----------------------------------------------------------- */

/* Applies op to state (0 = absent, 1 + v = value v); false if its output is impossible. */
static bool lin_model_step(const struct lin_kop *op, uint32_t state, uint32_t *next)
{
    switch (op->type) {
    case LIN_GET:
        /* Pending GETs are dropped and shrinking drops GETs rather than freeing their
         * output: every GET constrains (lin_prune_pending relies on it). */
        RK_ASSERT(lin_kop_constrained(op));
        *next = state;
        return op->found ? state == op->out_vid + 1 : state == 0;
    case LIN_PUT:
        *next = op->in_vid + 1;
        return true;
    case LIN_DEL:
        *next = 0;
        if (!lin_kop_constrained(op))
            return true;
        return op->num == (state != 0 ? 1 : 0);
    default:
        RK_ASSERT(!"unknown op type");
        return false;
    }
}

/* ---- the search ------------------------------------------------------------------------ */

struct lin_node {
    int32_t prev;
    int32_t next;
    int32_t match; /* a call: the node of its return; a return: LIN_NIL */
    uint32_t op;
};

struct lin_frame {
    int32_t node;   /* the call linearized */
    uint32_t state; /* the configuration before it */
    bool after_pending;
};

struct lin_search {
    const struct lin_kop *ops;
    uint32_t n;
    uint32_t *slot; /* per op: its bit in done (completed) or used (pending) */
    uint32_t *twin; /* per pending op: the previous pending op of same effect, or NIL */
    uint32_t *pred; /* per op: its connection-predecessor (completed), or UINT32_MAX */
    uint32_t npending;
    uint32_t remaining;    /* completed ops not yet linearized: 0 = success */
    struct lin_node *node; /* node[0]: the head sentinel; node[1 .. 2n]: events in order */
    struct lin_frame *stack;
    uint32_t sp;
    struct lin_bits done;
    uint64_t *used;
    uint32_t *enc; /* scratch for lin_bits_encode */
    struct lin_failed failed;
    uint32_t state;
    bool after_pending;
    uint64_t states; /* configurations entered */
    uint64_t work;   /* failed entries compared */
};

static bool lin_is_pending(const struct lin_search *s, uint32_t op)
{
    return (s->ops[op].flags & LIN_KOP_PENDING) != 0;
}

/* Builds the event list: node i + 1 is event i of the sorted order. */
static void lin_search_list(struct lin_search *s)
{
    uint32_t n = s->n, nodes = 2 * n + 1;
    struct lin_event *ev = lin_zalloc_array(2 * (size_t)n, sizeof(*ev));
    lin_events_sort(s->ops, n, ev);
    s->node = lin_zalloc_array(nodes, sizeof(*s->node));
    int32_t *ret_node = lin_zalloc_array(n, sizeof(*ret_node));
    for (uint32_t i = 0; i < nodes; i++) {
        struct lin_node *nd = &s->node[i];
        nd->prev = (int32_t)i - 1;
        nd->next = i + 1 < nodes ? (int32_t)i + 1 : LIN_NIL;
        nd->match = LIN_NIL;
        if (i > 0) {
            nd->op = ev[i - 1].op;
            if (ev[i - 1].kind != LIN_EV_CALL)
                ret_node[nd->op] = (int32_t)i;
        }
    }
    for (uint32_t i = 1; i < nodes; i++) {
        if (ev[i - 1].kind == LIN_EV_CALL)
            s->node[i].match = ret_node[s->node[i].op];
    }
    free(ret_node);
    free(ev);
}

/*
 * Pending ops of the same effect (every DEL; PUTs of one value) are interchangeable once
 * invoked: their outputs are free and their returns are all at infinity. A linearization that
 * uses some of them can use the earliest invoked instead (the i-th use comes after i of them
 * were invoked), so the search uses them in call order only: an op waits for its twin, the
 * previous one. That also makes the used set canonical, so failed configurations dominate.
 */
static void lin_search_twins(struct lin_search *s)
{
    uint32_t nclasses = 1; /* 0: DEL; 1 + v: PUT of value v */
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->ops[i].type == LIN_PUT && s->ops[i].in_vid + 2 > nclasses)
            nclasses = s->ops[i].in_vid + 2;
    }
    uint32_t *last = lin_zalloc_array(nclasses, sizeof(*last));
    for (uint32_t c = 0; c < nclasses; c++)
        last[c] = UINT32_MAX;
    s->twin = lin_zalloc_array(s->n, sizeof(*s->twin));
    for (uint32_t i = 0; i < s->n; i++) {
        s->twin[i] = UINT32_MAX;
        if (!lin_is_pending(s, i) || s->pred[i] != UINT32_MAX)
            continue; /* an op waiting for its predecessor is not interchangeable */
        RK_ASSERT(s->ops[i].type != LIN_GET);
        uint32_t c = s->ops[i].type == LIN_PUT ? s->ops[i].in_vid + 1 : 0;
        s->twin[i] = last[c];
        last[c] = i; /* ops are in call order */
    }
    free(last);
}

static void lin_search_init(struct lin_search *s, const struct lin_kop *ops, uint32_t n)
{
    RK_ASSERT(n < LIN_KEY_OPS_MAX);
    memset(s, 0, sizeof(*s));
    s->ops = ops;
    s->n = n;
    s->slot = lin_zalloc_array(n, sizeof(*s->slot));
    uint32_t ndone = 0;
    for (uint32_t i = 0; i < n; i++)
        s->slot[i] = lin_is_pending(s, i) ? s->npending++ : ndone++;
    s->remaining = ndone;
    s->pred = lin_zalloc_array(n, sizeof(*s->pred));
    lin_preds(ops, n, s->pred);
    lin_search_twins(s);
    lin_search_list(s);
    s->stack = lin_zalloc_array(n, sizeof(*s->stack));
    s->done.nwords = (ndone + 63) / 64;
    s->done.w = lin_zalloc_array(s->done.nwords, sizeof(*s->done.w));
    s->failed.used_words = (s->npending + 63) / 64;
    s->used = lin_zalloc_array(s->failed.used_words, sizeof(*s->used));
    s->enc = lin_zalloc_array((size_t)ndone + 1, sizeof(*s->enc));
}

static void lin_search_fini(struct lin_search *s)
{
    free(s->slot);
    free(s->twin);
    free(s->pred);
    free(s->node);
    free(s->stack);
    free(s->done.w);
    free(s->used);
    free(s->enc);
    lin_failed_fini(&s->failed);
}

static void lin_unlink(struct lin_search *s, int32_t i)
{
    struct lin_node *nd = &s->node[i];
    s->node[nd->prev].next = nd->next;
    if (nd->next != LIN_NIL)
        s->node[nd->next].prev = nd->prev;
}

static void lin_relink(struct lin_search *s, int32_t i)
{
    struct lin_node *nd = &s->node[i];
    s->node[nd->prev].next = i;
    if (nd->next != LIN_NIL)
        s->node[nd->next].prev = i;
}

/* Lifts a call and its return out of the list (Lowe); lin_unlift undoes it (dancing links). */
static void lin_lift(struct lin_search *s, int32_t call)
{
    lin_unlink(s, call);
    lin_unlink(s, s->node[call].match);
}

static void lin_unlift(struct lin_search *s, int32_t call)
{
    lin_relink(s, s->node[call].match);
    lin_relink(s, call);
}

static bool lin_search_used(const struct lin_search *s, uint32_t op)
{
    RK_ASSERT(lin_is_pending(s, op));
    uint32_t b = s->slot[op];
    return (s->used[b / 64] & (UINT64_C(1) << (b % 64))) != 0;
}

/* Has completed op been linearized? */
static bool lin_search_done(const struct lin_search *s, uint32_t op)
{
    RK_ASSERT(!lin_is_pending(s, op));
    uint32_t b = s->slot[op];
    return (s->done.w[b / 64] & (UINT64_C(1) << (b % 64))) != 0;
}

/* Marks op linearized or not: a bit in done or in used. */
static void lin_search_mark(struct lin_search *s, uint32_t op, bool on)
{
    uint32_t b = s->slot[op];
    if (!lin_is_pending(s, op)) {
        if (on)
            lin_bits_set(&s->done, b);
        else
            lin_bits_clear(&s->done, b);
        return;
    }
    uint64_t bit = UINT64_C(1) << (b % 64);
    RK_ASSERT(((s->used[b / 64] & bit) != 0) != on);
    s->used[b / 64] ^= bit;
}

/* Tries to linearize the op of call node e now; true if it was (pushed, lifted). */
static bool lin_search_try(struct lin_search *s, int32_t e)
{
    uint32_t op = s->node[e].op;
    bool pending = lin_is_pending(s, op);
    uint32_t next;
    if (!lin_model_step(&s->ops[op], s->state, &next))
        return false;
    if (pending && s->twin[op] != UINT32_MAX && !lin_search_used(s, s->twin[op]))
        return false;
    if (s->pred[op] != UINT32_MAX && !lin_search_done(s, s->pred[op]))
        return false; /* program order: its connection-predecessor first */
    lin_search_mark(s, op, true);
    uint32_t len = lin_bits_encode(&s->done, s->enc);
    if (lin_failed_dominates(&s->failed, s->enc, len, next, s->used, pending, &s->work)) {
        lin_search_mark(s, op, false);
        return false;
    }
    RK_ASSERT(s->sp < s->n);
    s->stack[s->sp++] = (struct lin_frame){e, s->state, s->after_pending};
    s->state = next;
    s->after_pending = pending;
    s->remaining -= pending ? 0 : 1;
    lin_lift(s, e);
    s->states++;
    return true;
}

/* Records the current configuration as failed and undoes the last linearization; returns
 * the node to continue from (the one after it) and the phase to continue in. */
static int32_t lin_search_back(struct lin_search *s, bool *pending_phase)
{
    RK_ASSERT(s->sp > 0);
    uint32_t len = lin_bits_encode(&s->done, s->enc);
    lin_failed_add(&s->failed, s->enc, len, s->state, s->used, s->after_pending);
    struct lin_frame f = s->stack[--s->sp];
    uint32_t op = s->node[f.node].op;
    bool pending = lin_is_pending(s, op);
    lin_search_mark(s, op, false);
    lin_unlift(s, f.node);
    s->state = f.state;
    s->after_pending = f.after_pending;
    s->remaining += pending ? 0 : 1;
    *pending_phase = pending;
    return s->node[f.node].next;
}

static bool lin_search_over(const struct lin_search *s, uint64_t budget)
{
    return s->states > budget || s->work / LIN_WORK_PER_STATE > budget ||
           lin_failed_bytes(&s->failed) > LIN_SEARCH_BYTES_MAX;
}

/*
 * The walk. At each configuration it tries the calls before the first return in the list:
 * first the completed ops (phase 0), then the pending ones (phase 1), so that the first visit
 * of a (done, state) uses few pending ops and dominates later visits. A pending op's output is
 * free and the next write overwrites it, so only the last of consecutive pending ops matters,
 * and one at the very end matters not at all: a pending op is only tried when the op before
 * was not pending, and the search succeeds once every completed op is linearized.
 */
static int lin_search_run(struct lin_search *s, uint64_t budget)
{
    bool pending_phase = false;
    int32_t e = s->node[0].next;
    for (;;) {
        if (s->remaining == 0)
            return LIN_LINEARIZABLE;
        /* Some completed op is left, and its return comes before every pending return. */
        RK_ASSERT(e != LIN_NIL);
        const struct lin_node *nd = &s->node[e];
        if (nd->match != LIN_NIL) {
            if (lin_is_pending(s, nd->op) == pending_phase && lin_search_try(s, e)) {
                if (lin_search_over(s, budget))
                    return LIN_GAVE_UP;
                pending_phase = false;
                e = s->node[0].next;
            } else {
                e = nd->next;
            }
            continue;
        }
        RK_ASSERT(!lin_is_pending(s, nd->op));
        if (!pending_phase && !s->after_pending && s->npending > 0) {
            pending_phase = true;
            e = s->node[0].next;
            continue;
        }
        /* Every op that could come next was tried: this configuration fails. */
        if (s->sp == 0)
            return LIN_VIOLATION;
        e = lin_search_back(s, &pending_phase);
        if (s->work / LIN_WORK_PER_STATE > budget)
            return LIN_GAVE_UP;
    }
}

/* Checks one key's ops (in call order); adds the states explored to *states. */
static int lin_search(const struct lin_kop *ops, uint32_t n, uint64_t budget, uint64_t *states)
{
    struct lin_search s;
    lin_search_init(&s, ops, n);
    int verdict = lin_search_run(&s, budget);
    *states += s.states;
    lin_search_fini(&s);
    return verdict;
}

/* ---- shrinking a violation ------------------------------------------------------------- */

/* How far an op of the failing history is relaxed in the evidence (lin_variant). */
enum { LIN_RELAX_NONE = 0, LIN_RELAX_ANY_OUT = 1, LIN_RELAX_PENDING = 2, LIN_RELAX_DROP = 3 };

struct lin_shrink {
    const struct lin_kop *base; /* the key's ops, in call order, positions set */
    uint32_t n;
    uint32_t nvals;
    uint8_t *relax; /* per base op: the evidence so far */
    uint8_t *trial;
    struct lin_kop *var; /* the variant last built */
    uint8_t *read;       /* per value: read by a GET of the variant */
    uint32_t *cand;
    uint64_t budget;       /* of the key's check, which proved the whole history fails */
    uint64_t trial_budget; /* of each trial */
    uint64_t spent;
    uint64_t effort_max;
    bool incomplete; /* stopped by effort_max */
    uint32_t cut;    /* events kept */
    uint32_t pinned; /* an op the passes leave alone, or UINT32_MAX */
};

/* Builds in sh->var the evidence that relax describes; returns its number of ops. */
static uint32_t lin_variant(struct lin_shrink *sh, const uint8_t *relax)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < sh->n; i++) {
        if (relax[i] == LIN_RELAX_DROP)
            continue;
        struct lin_kop k = sh->base[i];
        RK_ASSERT(k.type != LIN_GET || relax[i] == LIN_RELAX_NONE);
        if (relax[i] == LIN_RELAX_PENDING)
            k.flags |= LIN_KOP_PENDING;
        if (relax[i] == LIN_RELAX_ANY_OUT)
            k.flags |= LIN_KOP_ANY_OUT;
        sh->var[m++] = k;
    }
    /* As in lin_key_number_values: values no GET of the variant reads become one. */
    memset(sh->read, 0, sh->nvals);
    for (uint32_t i = 0; i < m; i++) {
        if (sh->var[i].type == LIN_GET && sh->var[i].found)
            sh->read[sh->var[i].out_vid] = 1;
    }
    for (uint32_t i = 0; i < m; i++) {
        if (sh->var[i].type == LIN_PUT && !sh->read[sh->var[i].in_vid])
            sh->var[i].in_vid = sh->nvals;
    }
    return lin_prune_pending(sh->var, m, sh->nvals + 1);
}

/* Is the variant relax describes proven not linearizable (within the effort left)? */
static bool lin_shrink_fails(struct lin_shrink *sh, const uint8_t *relax)
{
    if (sh->spent >= sh->effort_max) {
        sh->incomplete = true;
        return false;
    }
    uint32_t m = lin_variant(sh, relax);
    return lin_search(sh->var, m, sh->trial_budget, &sh->spent) == LIN_VIOLATION;
}

/* The relaxation of the first `cut` events: later calls dropped, later returns pending. */
static void lin_shrink_cut_relax(const struct lin_shrink *sh, uint32_t cut, uint8_t *relax)
{
    for (uint32_t i = 0; i < sh->n; i++) {
        const struct lin_kop *k = &sh->base[i];
        if (k->call_pos >= cut)
            relax[i] = LIN_RELAX_DROP;
        else if (k->ret_pos != LIN_POS_INF && k->ret_pos >= cut)
            relax[i] = k->type == LIN_GET ? LIN_RELAX_DROP : LIN_RELAX_PENDING;
        else
            relax[i] = LIN_RELAX_NONE;
    }
}

/* Bisects for the shortest failing cut: no events fail, all of them do. Positions come from
 * the key's events before unobserved pending writes were dropped: they may skip numbers. */
static void lin_shrink_cut(struct lin_shrink *sh)
{
    uint32_t lo = 0, hi = 0;
    for (uint32_t i = 0; i < sh->n; i++) {
        const struct lin_kop *k = &sh->base[i];
        hi = lin_max_u32(hi, 1 + (k->ret_pos == LIN_POS_INF ? k->call_pos : k->ret_pos));
    }
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        lin_shrink_cut_relax(sh, mid, sh->trial);
        if (lin_shrink_fails(sh, sh->trial))
            hi = mid;
        else
            lo = mid;
    }
    sh->cut = hi;
    lin_shrink_cut_relax(sh, hi, sh->relax);
}

/* Relaxes in relax every op invoked before event `start`: GETs dropped, writes pending. */
static void lin_shrink_window_relax(const struct lin_shrink *sh, uint32_t start, uint8_t *relax)
{
    for (uint32_t i = 0; i < sh->n; i++) {
        const struct lin_kop *k = &sh->base[i];
        if (k->call_pos >= start || relax[i] == LIN_RELAX_DROP)
            continue;
        relax[i] = k->type == LIN_GET ? LIN_RELAX_DROP : LIN_RELAX_PENDING;
    }
}

/*
 * Bisects for the latest start such that relaxing every op invoked before it still fails
 * (failing is monotone: a later start relaxes more). Most of a long history goes at once, and
 * its writes, pending and unobserved, are dropped: later trials stay small.
 */
static void lin_shrink_window(struct lin_shrink *sh)
{
    uint32_t lo = 0, hi = sh->cut;
    while (hi - lo > 1 && !sh->incomplete) {
        uint32_t mid = lo + (hi - lo) / 2;
        memcpy(sh->trial, sh->relax, sh->n);
        lin_shrink_window_relax(sh, mid, sh->trial);
        if (lin_shrink_fails(sh, sh->trial))
            lo = mid;
        else
            hi = mid;
    }
    lin_shrink_window_relax(sh, lo, sh->relax);
}

/* The relaxation pass `pass` tries for op i: 0 drops GETs and frees DEL outputs, 1 makes
 * writes pending. LIN_RELAX_NONE if that would not relax it further. */
static uint8_t lin_shrink_target(const struct lin_shrink *sh, int pass, uint32_t i)
{
    const struct lin_kop *k = &sh->base[i];
    uint8_t cur = sh->relax[i];
    uint8_t want;
    if (i == sh->pinned)
        want = LIN_RELAX_NONE;
    else if (k->type == LIN_GET)
        want = pass == 0 ? LIN_RELAX_DROP : LIN_RELAX_NONE;
    else if (k->flags & LIN_KOP_PENDING)
        want = LIN_RELAX_NONE;
    else if (pass == 0)
        want = k->type == LIN_DEL ? LIN_RELAX_ANY_OUT : LIN_RELAX_NONE;
    else
        want = LIN_RELAX_PENDING;
    return want > cur ? want : LIN_RELAX_NONE;
}

/* ddmin-style: relax the candidates in chunks that halve, keeping every chunk that still
 * fails, down to single ops. */
static void lin_shrink_pass(struct lin_shrink *sh, int pass)
{
    uint32_t nc = 0;
    for (uint32_t i = 0; i < sh->n; i++) {
        if (lin_shrink_target(sh, pass, i) != LIN_RELAX_NONE)
            sh->cand[nc++] = i;
    }
    uint32_t chunk = nc;
    while (nc > 0 && !sh->incomplete) {
        for (uint32_t start = 0; start < nc && !sh->incomplete; start += chunk) {
            uint32_t end = start + chunk < nc ? start + chunk : nc;
            memcpy(sh->trial, sh->relax, sh->n);
            for (uint32_t j = start; j < end; j++)
                sh->trial[sh->cand[j]] = lin_shrink_target(sh, pass, sh->cand[j]);
            if (!lin_shrink_fails(sh, sh->trial))
                continue;
            memcpy(sh->relax, sh->trial, sh->n);
            for (uint32_t j = start; j < end; j++)
                sh->cand[j] = UINT32_MAX;
        }
        uint32_t kept = 0;
        for (uint32_t j = 0; j < nc; j++) {
            if (sh->cand[j] != UINT32_MAX)
                sh->cand[kept++] = sh->cand[j];
        }
        nc = kept;
        if (chunk == 1)
            break;
        chunk = (chunk + 1) / 2;
    }
}

static uint64_t lin_min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/*
 * key_states: what proving the whole history failed took. A trial much harder than that is
 * poor evidence anyway, so trials get a few times as much; shrinking as a whole gets a
 * bounded multiple of a trial, and of the budget.
 */
static void lin_shrink_init(struct lin_shrink *sh, const struct lin_kop *base, uint32_t n,
                            uint32_t nvals, uint64_t budget, uint64_t key_states)
{
    memset(sh, 0, sizeof(*sh));
    sh->base = base;
    sh->n = n;
    sh->nvals = nvals;
    sh->relax = lin_zalloc_array(n, 1);
    sh->trial = lin_zalloc_array(n, 1);
    sh->var = lin_zalloc_array(n, sizeof(*sh->var));
    sh->read = lin_zalloc_array(nvals, 1);
    sh->cand = lin_zalloc_array(n, sizeof(*sh->cand));
    sh->pinned = UINT32_MAX;
    RK_ASSERT(key_states <= budget);
    key_states = lin_min_u64(key_states, UINT64_C(1) << 40);
    sh->budget = budget;
    sh->trial_budget =
        lin_min_u64(budget, LIN_SHRINK_TRIAL_STATES_MIN + LIN_SHRINK_TRIAL_KEY_STATES * key_states);
    sh->effort_max =
        lin_min_u64(budget, UINT64_MAX / LIN_SHRINK_EFFORT_BUDGETS) * LIN_SHRINK_EFFORT_BUDGETS;
    sh->effort_max = lin_min_u64(sh->effort_max, sh->trial_budget * LIN_SHRINK_EFFORT_TRIALS);
}

static void lin_shrink_fini(struct lin_shrink *sh)
{
    free(sh->relax);
    free(sh->trial);
    free(sh->var);
    free(sh->read);
    free(sh->cand);
}

/* Builds the evidence sh->relax describes; marks its ops in in_evidence; returns its size. */
static uint32_t lin_shrink_mark_evidence(struct lin_shrink *sh, uint8_t *in_evidence)
{
    uint32_t m = lin_variant(sh, sh->relax);
    memset(in_evidence, 0, sh->n);
    for (uint32_t j = 0; j < m; j++) {
        RK_ASSERT(sh->var[j].idx < sh->n);
        in_evidence[sh->var[j].idx] = 1;
    }
    return m;
}

/* Can base op i, a completed write the evidence counts as pending, be restored? */
static bool lin_shrink_restorable(const struct lin_shrink *sh, const uint8_t *in_evidence,
                                  uint32_t i)
{
    const struct lin_kop *k = &sh->base[i];
    return in_evidence[i] && sh->relax[i] == LIN_RELAX_PENDING &&
           (k->flags & LIN_KOP_PENDING) == 0 && k->ret_pos < sh->cut;
}

/*
 * Restores op `only` (or every restorable op if UINT32_MAX, pinning none) and shrinks the
 * rest again; keeps the result if the evidence of *m ops gets smaller.
 */
static void lin_shrink_try_restore(struct lin_shrink *sh, uint32_t only, uint8_t *in_evidence,
                                   uint8_t *saved, uint32_t *m)
{
    memcpy(saved, sh->relax, sh->n);
    for (uint32_t i = 0; i < sh->n; i++) {
        if ((only == UINT32_MAX || i == only) && lin_shrink_restorable(sh, in_evidence, i))
            sh->relax[i] = LIN_RELAX_NONE;
    }
    sh->pinned = only;
    lin_shrink_pass(sh, 0);
    lin_shrink_pass(sh, 1);
    sh->pinned = UINT32_MAX;
    if (lin_variant(sh, sh->relax) < *m)
        *m = lin_shrink_mark_evidence(sh, in_evidence);
    else
        memcpy(sh->relax, saved, sh->n);
}

/*
 * Completed writes that the evidence counts as pending (the window did that) can be what
 * keeps other ops in it, such as a GET showing that one took effect early, or pending ops
 * that such a GET observes. Restore them, all together, then one at a time, and shrink the
 * rest again, keeping what makes the evidence smaller. Restoring only adds constraints, so
 * the evidence still fails.
 */
static void lin_shrink_restore(struct lin_shrink *sh)
{
    uint8_t *saved = lin_zalloc_array(sh->n, 1);
    uint8_t *in_evidence = lin_zalloc_array(sh->n, 1);
    uint32_t m = lin_shrink_mark_evidence(sh, in_evidence);
    lin_shrink_try_restore(sh, UINT32_MAX, in_evidence, saved, &m);
    for (uint32_t i = 0; i < sh->n && !sh->incomplete; i++) {
        if (lin_shrink_restorable(sh, in_evidence, i))
            lin_shrink_try_restore(sh, i, in_evidence, saved, &m);
    }
    free(in_evidence);
    free(saved);
}

/* Shrinks the failing history sh->base to small evidence; returns its size (in sh->var). */
static uint32_t lin_shrink(struct lin_shrink *sh)
{
    lin_shrink_cut(sh);
    lin_shrink_window(sh);
    lin_shrink_pass(sh, 0);
    lin_shrink_pass(sh, 1);
    lin_shrink_restore(sh);
    uint32_t m = lin_variant(sh, sh->relax);
    /* Every accepted step was proven to fail (the whole history by the caller), and
     * lin_variant and lin_search are deterministic: the evidence fails again. */
    uint64_t recheck_states = 0;
    RK_ASSERT_SLOW(lin_search(sh->var, m, sh->budget, &recheck_states) == LIN_VIOLATION);
    (void)recheck_states;
    return m;
}

/* ---- explanation ----------------------------------------------------------------------- */

struct lin_buf {
    char *p;
    size_t len;
    size_t cap;
};

static void lin_buf_printf(struct lin_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void lin_buf_printf(struct lin_buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int w = vsnprintf(b->p == NULL ? NULL : b->p + b->len, room, fmt, ap);
        va_end(ap);
        RK_ASSERT(w >= 0);
        if ((size_t)w < room) {
            b->len += (size_t)w;
            return;
        }
        size_t cap = b->cap < 256 ? 256 : b->cap;
        while (cap - b->len <= (size_t)w)
            cap *= 2;
        b->p = lin_realloc_array(b->p, cap, 1);
        b->cap = cap;
    }
}

/* Escapes one byte for printing: printable ASCII but '"' and '\\' as is, else \xNN. */
static void lin_escape_byte(uint8_t c, char out[5])
{
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
        snprintf(out, 5, "%c", c);
    else
        snprintf(out, 5, "\\x%02x", c);
}

/* Writes p[0 .. len) escaped into dst (cap >= 4 bytes, NUL-terminated), ending with "..."
 * if it had to be cut; returns whether it was. */
static bool lin_escape_into(char *dst, size_t cap, const uint8_t *p, uint32_t len)
{
    RK_ASSERT(cap >= 4);
    size_t total = 0;
    char piece[5];
    for (uint32_t i = 0; i < len; i++) {
        lin_escape_byte(p[i], piece);
        total += strlen(piece);
    }
    size_t limit = total < cap ? cap - 1 : cap - 4;
    size_t used = 0;
    for (uint32_t i = 0; i < len; i++) {
        lin_escape_byte(p[i], piece);
        size_t pl = strlen(piece);
        if (used + pl > limit)
            break;
        memcpy(dst + used, piece, pl);
        used += pl;
    }
    if (total >= cap) {
        memcpy(dst + used, "...", 3);
        used += 3;
    }
    dst[used] = '\0';
    return total >= cap;
}

static void lin_buf_value(struct lin_buf *b, const uint8_t *p, uint32_t len)
{
    char text[LIN_VALUE_SHOW_BYTES_MAX * 4 + 4];
    bool cut = lin_escape_into(text, sizeof(text), p, len);
    lin_buf_printf(b, "\"%s\"", text);
    if (cut)
        lin_buf_printf(b, " (%u bytes)", (unsigned)len);
}

static void lin_buf_slice(struct lin_buf *b, const struct lin_history *h, size_t slice)
{
    const struct lin_slice *sl = &h->slices[slice];
    if (sl->found)
        lin_buf_value(b, h->bytes + sl->off, sl->len);
    else
        lin_buf_printf(b, "nil");
}

/* The op's name and inputs; keys shown when show_keys (a component of several keys). */
static void lin_explain_call(struct lin_buf *b, const struct lin_history *h,
                             const struct lin_hop *o, bool show_keys)
{
    static const char *const names[] = {"?", "GET", "PUT", "DEL", "INCRBY", "SET", "MSET", "MGET"};
    if (lin_op_cmd(o->type)) {
        char text[400];
        lx_describe_cmd(h->bytes + o->in_off, o->in_len, text, sizeof(text));
        lin_buf_printf(b, "%s", text);
        if (o->watch_slot != 0)
            lin_buf_printf(b, " (watch slot %u)", (unsigned)o->watch_slot);
        return;
    }
    lin_buf_printf(b, "%s", names[o->type]);
    for (uint32_t i = 0; i < o->nkeys; i++) {
        if (show_keys || o->nkeys > 1) {
            lin_buf_printf(b, " ");
            lin_buf_slice(b, h, o->keys + i);
        }
        if (o->type == LIN_MSET) {
            lin_buf_printf(b, "=");
            lin_buf_slice(b, h, o->ins + i);
        }
    }
    if (o->type == LIN_PUT || o->type == LIN_PUT_IF) {
        lin_buf_printf(b, " ");
        lin_buf_value(b, h->bytes + o->in_off, o->in_len);
    }
    if (o->type == LIN_PUT_IF)
        lin_buf_printf(b, " %s", o->cond == LIN_COND_NX ? "NX" : "XX");
    if (o->type == LIN_INCRBY)
        lin_buf_printf(b, " %lld", (long long)o->delta);
}

/* The op's result. */
static void lin_explain_result(struct lin_buf *b, const struct lin_history *h,
                               const struct lin_hop *o)
{
    if (lin_op_cmd(o->type)) {
        char text[400];
        lx_describe_res(h->bytes + o->out_off, o->out_len, text, sizeof(text));
        lin_buf_printf(b, "%s", text);
        return;
    }
    switch (o->type) {
    case LIN_PUT:
    case LIN_MSET:
        lin_buf_printf(b, "ok");
        return;
    case LIN_DEL:
    case LIN_PUT_IF:
        lin_buf_printf(b, "%lld", (long long)o->num);
        return;
    case LIN_INCRBY:
        if (o->error)
            lin_buf_printf(b, "error (not an integer)");
        else
            lin_buf_printf(b, "%lld", (long long)o->num);
        return;
    case LIN_GET:
        lin_buf_slice(b, h, o->outs);
        return;
    default:
        lin_buf_printf(b, "[");
        for (uint32_t i = 0; i < o->nkeys; i++) {
            lin_buf_printf(b, i == 0 ? "" : ", ");
            lin_buf_slice(b, h, o->outs + i);
        }
        lin_buf_printf(b, "]");
        return;
    }
}

/* One line of evidence: the op as recorded, and how the evidence relaxed it (flags). */
static void lin_explain_hop(struct lin_buf *b, const struct lin_history *h, uint32_t hop,
                            uint8_t flags, bool show_keys)
{
    const struct lin_hop *o = &h->ops[hop];
    bool returned = o->outcome == LIN_OK;
    lin_buf_printf(b, "  op %u  client %llu", (unsigned)hop, (unsigned long long)o->client);
    if (o->conn != 0)
        lin_buf_printf(b, " conn %llu", (unsigned long long)o->conn);
    lin_buf_printf(b, "  [%llu, ", (unsigned long long)o->call);
    if (returned)
        lin_buf_printf(b, "%llu]  ", (unsigned long long)o->ret);
    else
        lin_buf_printf(b, "inf)  ");
    lin_explain_call(b, h, o, show_keys);
    lin_buf_printf(b, " -> ");
    if (!returned) {
        lin_buf_printf(b, "unknown (%s: may or may not have taken effect)\n",
                       o->outcome == LIN_UNKNOWN ? "timed out" : "never completed");
        return;
    }
    lin_explain_result(b, h, o);
    if (flags & LIN_KOP_PENDING)
        lin_buf_printf(b, "  (evidence ignores its return: may or may not have taken effect)");
    else if (flags & LIN_KOP_ANY_OUT)
        lin_buf_printf(b, "  (evidence ignores its result)");
    lin_buf_printf(b, "\n");
}

static void lin_explain_op(struct lin_buf *b, const struct lin_history *h, const struct lin_kop *k)
{
    lin_explain_hop(b, h, k->hop, k->flags, false);
}

/* The time of the last event kept by the cut (the return that completes the violation). */
static bool lin_shrink_cut_time(const struct lin_shrink *sh, uint64_t *time)
{
    for (uint32_t i = 0; i < sh->n; i++) {
        if (sh->base[i].ret_pos == sh->cut - 1) {
            *time = sh->base[i].ret;
            return true;
        }
    }
    return false;
}

static char *lin_explain(const struct lin_history *h, const struct lin_shrink *sh, uint32_t m,
                         const char *key, uint32_t key_ops)
{
    struct lin_buf b = {0};
    lin_buf_printf(&b, "linearizability violation on key \"%s\"\n", key);
    lin_buf_printf(&b,
                   "These %u of the %u ops checked on this key already admit no legal order, "
                   "so the history is not linearizable.\nThe key starts absent; an op that "
                   "returned before another was invoked takes effect first;\nops whose "
                   "intervals overlap (or touch) may take effect in either order.\n",
                   m, key_ops);
    uint64_t t;
    if (lin_shrink_cut_time(sh, &t))
        lin_buf_printf(&b, "The violation is complete at time %llu.\n", (unsigned long long)t);
    if (sh->incomplete)
        lin_buf_printf(&b, "(Shrinking hit its effort limit: the evidence may not be minimal.)\n");
    uint32_t first = m > LIN_EXPLAIN_OPS_MAX ? m - LIN_EXPLAIN_OPS_MAX : 0;
    if (first > 0)
        lin_buf_printf(&b, "  ... %u earlier ops not shown\n", first);
    for (uint32_t i = first; i < m; i++)
        lin_explain_op(&b, h, &sh->var[i]);
    return b.p;
}

/* ---- the check ------------------------------------------------------------------------- */

/* Fills out's key, evidence and explanation for the failing key ops[0 .. m). */
static void lin_report_violation(const struct lin_history *h, const struct lin_ref *key,
                                 const struct lin_kop *ops, uint32_t m, uint32_t nvals,
                                 uint32_t key_ops, uint64_t budget, uint64_t key_states,
                                 struct lin_result *out)
{
    lin_escape_into(out->key, sizeof(out->key), key->p, key->len);
    struct lin_shrink sh;
    lin_shrink_init(&sh, ops, m, nvals, budget, key_states);
    uint32_t evidence = lin_shrink(&sh);
    out->shrink_states = sh.spent;
    out->evidence_ops = evidence;
    out->explanation = lin_explain(h, &sh, evidence, out->key, key_ops);
    lin_shrink_fini(&sh);
}

/* Checks one key: the history ops refs[0 .. n), all with the same key. */
static void lin_check_key(const struct lin_history *h, const struct lin_ref *refs, uint32_t n,
                          uint64_t budget, struct lin_result *out)
{
    RK_ASSERT(n > 0);
    RK_ASSERT(n < LIN_KEY_OPS_MAX);
    struct lin_kop *ops = lin_zalloc_array(n, sizeof(*ops));
    uint32_t nvals = 0;
    uint32_t key_ops = lin_key_ops(h, refs, n, ops, &nvals);
    lin_key_positions(ops, key_ops);
    uint32_t m = lin_prune_pending(ops, key_ops, nvals);
    for (uint32_t i = 0; i < m; i++)
        ops[i].idx = i;
    uint64_t key_states = 0;
    int verdict = lin_search(ops, m, budget, &key_states);
    out->states_explored += key_states;
    if (verdict == LIN_GAVE_UP)
        out->keys_gave_up++;
    if (verdict == LIN_VIOLATION) {
        out->keys_violated++;
        if (out->explanation == NULL)
            lin_report_violation(h, &refs[0], ops, m, nvals, key_ops, budget, key_states, out);
    }
    free(ops);
}

/* ---- components of several keys or richer ops: the plain search ----------------------- */

/*
 * A component that is not one GET/PUT/DEL register: its state is the value of each of its
 * keys (0 = absent, 1 + v = value v of an intern table that grows as INCRBY makes values),
 * and the search is Wing & Gong's with Lowe's just-in-time linearization and Porcupine's
 * cache of visited configurations (linearized set, state), the same event list as the
 * register search, and program order per connection. No reductions of pending ops: such
 * components should be small (multi-key ops on small fixed key groups).
 */
struct lin_vtab {
    uint8_t *bytes;
    size_t nbytes, bytes_cap;
    size_t *off; /* per value id - 1 */
    uint32_t *len;
    uint32_t n, cap;
    uint32_t *slot; /* open addressing: value id, 0 = empty */
    uint32_t slots; /* a power of two */
};

static uint64_t lin_bytes_hash(const uint8_t *p, uint32_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ len;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return lin_mix64(h);
}

static void lin_vtab_fini(struct lin_vtab *t)
{
    free(t->bytes);
    free(t->off);
    free(t->len);
    free(t->slot);
}

static uint32_t lin_vtab_find_slot(const struct lin_vtab *t, const uint8_t *p, uint32_t len)
{
    uint32_t mask = t->slots - 1;
    for (uint32_t i = (uint32_t)lin_bytes_hash(p, len) & mask;; i = (i + 1) & mask) {
        uint32_t id = t->slot[i];
        if (id == 0 || (t->len[id - 1] == len &&
                        (len == 0 || memcmp(t->bytes + t->off[id - 1], p, len) == 0)))
            return i;
    }
}

/* The id (>= 1) of value p[0 .. len), added if new. */
static uint32_t lin_vtab_intern(struct lin_vtab *t, const uint8_t *p, uint32_t len)
{
    if ((t->n + 1) * 2 > t->slots) {
        uint32_t slots = t->slots == 0 ? 64 : t->slots * 2;
        free(t->slot);
        t->slot = lin_zalloc_array(slots, sizeof(*t->slot));
        t->slots = slots;
        for (uint32_t id = 1; id <= t->n; id++)
            t->slot[lin_vtab_find_slot(t, t->bytes + t->off[id - 1], t->len[id - 1])] = id;
    }
    uint32_t i = lin_vtab_find_slot(t, p, len);
    if (t->slot[i] != 0)
        return t->slot[i];
    if (t->n == t->cap) {
        t->cap = t->cap == 0 ? 64 : t->cap * 2;
        t->off = lin_realloc_array(t->off, t->cap, sizeof(*t->off));
        t->len = lin_realloc_array(t->len, t->cap, sizeof(*t->len));
    }
    t->bytes = lin_reserve(t->bytes, &t->bytes_cap, t->nbytes + len + 1, 1);
    if (len > 0)
        memcpy(t->bytes + t->nbytes, p, len);
    t->off[t->n] = t->nbytes;
    t->len[t->n] = len;
    t->nbytes += len;
    t->slot[i] = ++t->n;
    return t->n;
}

/* Per op of a component (by its idx): where its keys, inputs and outputs are, as local key
 * indices and value ids, in lin_comp.words. */
struct lin_cop {
    uint32_t keys; /* nkeys local key indices */
    uint32_t ins;  /* value ids of the inputs */
    uint32_t outs; /* GET/MGET: value ids or 0 (nil) */
};

struct lin_comp {
    const struct lin_history *h;
    struct lin_kop *base; /* the component's ops, call order, idx = position */
    uint32_t n;
    uint32_t nkeys;
    struct lin_cop *cop;
    uint32_t *words;
    size_t nwords, words_cap;
    struct lin_vtab vals;
    uint32_t width;      /* words of a state: nkeys, or lx_width */
    struct lx_model *lx; /* a component with generic commands: their model (linrich.c) */
};

static uint32_t lin_comp_word(struct lin_comp *c, uint32_t w)
{
    c->words = lin_reserve(c->words, &c->words_cap, c->nwords + 1, sizeof(*c->words));
    c->words[c->nwords] = w;
    RK_ASSERT(c->nwords < UINT32_MAX);
    return (uint32_t)c->nwords++;
}

/* Applies op i of the component to state (nkeys values) into next; false if its output is
 * impossible there. */
static bool lin_comp_step(struct lin_comp *c, const struct lin_kop *k, const uint32_t *state,
                          uint32_t *next)
{
    const struct lin_hop *o = &c->h->ops[k->hop];
    const struct lin_cop *cp = &c->cop[k->idx];
    const uint32_t *keys = c->words + cp->keys;
    bool constrained = lin_kop_constrained(k);
    if (c->lx != NULL)
        return lx_step(c->lx, k->idx, constrained, k->call,
                       (k->flags & LIN_KOP_PENDING) ? UINT64_MAX : k->ret, state, next);
    memcpy(next, state, (size_t)c->nkeys * sizeof(*next));
    uint32_t cur = state[keys[0]];
    switch (o->type) {
    case LIN_GET:
    case LIN_MGET:
        RK_ASSERT(constrained);
        for (uint32_t j = 0; j < o->nkeys; j++) {
            if (state[keys[j]] != c->words[cp->outs + j])
                return false;
        }
        return true;
    case LIN_PUT:
        next[keys[0]] = c->words[cp->ins];
        return true;
    case LIN_MSET:
        for (uint32_t j = 0; j < o->nkeys; j++)
            next[keys[j]] = c->words[cp->ins + j];
        return true;
    case LIN_DEL:
        next[keys[0]] = 0;
        return !constrained || o->num == (cur != 0 ? 1 : 0);
    case LIN_PUT_IF: {
        bool holds = o->cond == LIN_COND_NX ? cur == 0 : cur != 0;
        if (holds)
            next[keys[0]] = c->words[cp->ins];
        return !constrained || o->num == (holds ? 1 : 0);
    }
    case LIN_INCRBY: {
        int64_t v = 0;
        bool ok = cur == 0 || kv_parse_int64(c->vals.bytes + c->vals.off[cur - 1],
                                             c->vals.len[cur - 1], &v);
        ok = ok && !((o->delta > 0 && v > INT64_MAX - o->delta) ||
                     (o->delta < 0 && v < INT64_MIN - o->delta));
        if (!ok)
            return !constrained || o->error;
        v += o->delta;
        if (constrained && (o->error || o->num != v))
            return false;
        char text[32];
        int len = snprintf(text, sizeof(text), "%lld", (long long)v);
        RK_ASSERT(len > 0 && (size_t)len < sizeof(text));
        next[keys[0]] = lin_vtab_intern(&c->vals, (const uint8_t *)text, (uint32_t)len);
        return true;
    }
    default:
        RK_ASSERT(!"unknown op type");
        return false;
    }
}

/* The visited configurations: (RLE of the linearized set, state), in a hash set. */
struct lin_seen {
    uint64_t *hash; /* 0 = empty */
    size_t *at;     /* offset of [len][enc ...][state ...] in data */
    size_t cap, n;
    uint32_t *data;
    size_t ndata, data_cap;
};

static void lin_seen_fini(struct lin_seen *v)
{
    free(v->hash);
    free(v->at);
    free(v->data);
}

static size_t lin_seen_bytes(const struct lin_seen *v)
{
    return v->cap * (sizeof(*v->hash) + sizeof(*v->at)) + v->data_cap * sizeof(*v->data);
}

/* Adds (enc, state); false if it was there already. */
static bool lin_seen_add(struct lin_seen *v, const uint32_t *enc, uint32_t len,
                         const uint32_t *state, uint32_t nstate)
{
    if ((v->n + 1) * 2 > v->cap) {
        size_t cap = v->cap == 0 ? 1024 : v->cap * 2;
        uint64_t *hash = lin_zalloc_array(cap, sizeof(*hash));
        size_t *at = lin_zalloc_array(cap, sizeof(*at));
        for (size_t i = 0; i < v->cap; i++) {
            if (v->hash[i] == 0)
                continue;
            size_t j = v->hash[i] & (cap - 1);
            while (hash[j] != 0)
                j = (j + 1) & (cap - 1);
            hash[j] = v->hash[i];
            at[j] = v->at[i];
        }
        free(v->hash);
        free(v->at);
        v->hash = hash;
        v->at = at;
        v->cap = cap;
    }
    uint64_t hv = lin_group_hash(enc, len, 0);
    for (uint32_t i = 0; i < nstate; i++)
        hv = lin_mix64(hv ^ state[i]) + i;
    hv = hv == 0 ? 1 : hv;
    size_t j = hv & (v->cap - 1);
    for (; v->hash[j] != 0; j = (j + 1) & (v->cap - 1)) {
        const uint32_t *d = v->data + v->at[j];
        if (v->hash[j] == hv && d[0] == len &&
            memcmp(d + 1, enc, (size_t)len * sizeof(*enc)) == 0 &&
            memcmp(d + 1 + len, state, (size_t)nstate * sizeof(*state)) == 0)
            return false;
    }
    v->data = lin_reserve(v->data, &v->data_cap, v->ndata + 1 + len + nstate, sizeof(*v->data));
    v->hash[j] = hv;
    v->at[j] = v->ndata;
    v->data[v->ndata] = len;
    memcpy(v->data + v->ndata + 1, enc, (size_t)len * sizeof(*enc));
    memcpy(v->data + v->ndata + 1 + len, state, (size_t)nstate * sizeof(*state));
    v->ndata += 1 + len + nstate;
    v->n++;
    return true;
}

/* Searches ops[0 .. n) of component c (a variant of c->base); adds the states to *states. */
static int lin_comp_search(struct lin_comp *c, const struct lin_kop *ops, uint32_t n,
                           uint64_t budget, uint64_t *states)
{
    struct lin_search s;
    memset(&s, 0, sizeof(s));
    s.ops = ops;
    s.n = n;
    s.pred = lin_zalloc_array(n, sizeof(*s.pred));
    lin_preds(ops, n, s.pred);
    lin_search_list(&s);
    for (uint32_t i = 0; i < n; i++)
        s.remaining += lin_is_pending(&s, i) ? 0 : 1;
    s.stack = lin_zalloc_array(n, sizeof(*s.stack));
    s.done.nwords = (n + 63) / 64;
    s.done.w = lin_zalloc_array(s.done.nwords, sizeof(*s.done.w));
    s.enc = lin_zalloc_array((size_t)n + 1, sizeof(*s.enc));
    uint32_t kn = c->width;
    uint32_t *st = lin_zalloc_array(((size_t)n + 2) * kn, sizeof(*st)); /* per depth */
    struct lin_seen seen = {0};
    int verdict = LIN_VIOLATION;
    int32_t e = s.node[0].next;
    for (;;) {
        if (s.remaining == 0) {
            verdict = LIN_LINEARIZABLE;
            break;
        }
        RK_ASSERT(e != LIN_NIL);
        const struct lin_node *nd = &s.node[e];
        uint32_t op = nd->op;
        if (nd->match != LIN_NIL) {
            uint32_t *cur = st + (size_t)s.sp * kn, *next = cur + kn;
            bool ok = (s.pred[op] == UINT32_MAX ||
                       (s.done.w[s.pred[op] / 64] >> (s.pred[op] % 64) & 1) != 0) &&
                      lin_comp_step(c, &ops[op], cur, next);
            if (ok) {
                lin_bits_set(&s.done, op);
                uint32_t len = lin_bits_encode(&s.done, s.enc);
                ok = lin_seen_add(&seen, s.enc, len, next, kn);
                if (!ok)
                    lin_bits_clear(&s.done, op);
            }
            if (!ok) {
                e = nd->next;
                continue;
            }
            s.stack[s.sp++] = (struct lin_frame){e, 0, false};
            s.remaining -= lin_is_pending(&s, op) ? 0 : 1;
            lin_lift(&s, e);
            s.states++;
            if (s.states > budget || lin_seen_bytes(&seen) > LIN_SEARCH_BYTES_MAX) {
                verdict = LIN_GAVE_UP;
                break;
            }
            e = s.node[0].next;
            continue;
        }
        /* A completed op's return: it had to be linearized already. */
        if (s.sp == 0)
            break;
        struct lin_frame f = s.stack[--s.sp];
        uint32_t back = s.node[f.node].op;
        lin_bits_clear(&s.done, back);
        lin_unlift(&s, f.node);
        s.remaining += lin_is_pending(&s, back) ? 0 : 1;
        e = s.node[f.node].next;
    }
    *states += s.states;
    lin_seen_fini(&seen);
    free(st);
    free(s.pred);
    free(s.node);
    free(s.stack);
    free(s.done.w);
    free(s.enc);
    return verdict;
}

/* The variant of the component's ops: events from `cut` on dropped (calls) or pending
 * (returns; reads dropped), ops invoked before `start` relaxed (reads dropped, writes
 * pending). Returns its size, in out. */
static uint32_t lin_comp_variant(const struct lin_comp *c, uint32_t start, uint32_t cut,
                                 struct lin_kop *out)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        struct lin_kop k = c->base[i];
        bool reads = lin_op_reads_only(k.type);
        if (k.call_pos >= cut)
            continue;
        bool late = k.ret_pos != LIN_POS_INF && k.ret_pos >= cut;
        if (late || k.call_pos < start) {
            if (reads)
                continue;
            k.flags |= LIN_KOP_PENDING;
        }
        out[m++] = k;
    }
    return m;
}

static void lin_comp_explain(struct lin_comp *c, const struct lin_kop *ops, uint32_t m,
                             const char *key, uint64_t complete_at, struct lin_result *out)
{
    struct lin_buf b = {0};
    lin_buf_printf(&b, "linearizability violation on the component of key \"%s\" (%u keys)\n",
                   key, c->nkeys);
    lin_buf_printf(&b,
                   "These %u of the %u ops checked on these keys already admit no legal order, "
                   "so the history is not linearizable.\nEvery key starts absent; an op that "
                   "returned before another was invoked takes effect first;\nops whose "
                   "intervals overlap (or touch) may take effect in either order; MSET and MGET "
                   "take effect at once;\nan op takes effect after the earlier completed ops of "
                   "its connection (conn).\n",
                   m, c->n);
    if (complete_at != UINT64_MAX)
        lin_buf_printf(&b, "The violation is complete at time %llu.\n",
                       (unsigned long long)complete_at);
    uint32_t first = m > LIN_EXPLAIN_OPS_MAX ? m - LIN_EXPLAIN_OPS_MAX : 0;
    if (first > 0)
        lin_buf_printf(&b, "  ... %u earlier ops not shown\n", first);
    for (uint32_t i = first; i < m; i++)
        lin_explain_hop(&b, c->h, ops[i].hop, ops[i].flags, true);
    out->explanation = b.p;
    out->evidence_ops = m;
}

/* Shrinks a failing component to the shortest failing cut and the latest failing window
 * start (failing is monotone in both, as in lin_shrink), and explains it. */
static void lin_comp_report(struct lin_comp *c, uint64_t budget, uint64_t comp_states,
                            const char *key, struct lin_result *out)
{
    /* As lin_shrink_init: a trial gets a few times what the whole check took (relaxed writes
     * become pending, which this search does not reduce: trials can blow up), and the
     * shrinking a bounded number of trials. */
    budget = lin_min_u64(budget, LIN_SHRINK_TRIAL_STATES_MIN +
                                     LIN_SHRINK_TRIAL_KEY_STATES * comp_states);
    struct lin_kop *var = lin_zalloc_array(c->n, sizeof(*var));
    uint32_t lo = 0, hi = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        const struct lin_kop *k = &c->base[i];
        hi = lin_max_u32(hi, 1 + (k->ret_pos == LIN_POS_INF ? k->call_pos : k->ret_pos));
    }
    uint64_t spent = 0, effort = budget * LIN_SHRINK_EFFORT_TRIALS;
    while (hi - lo > 1 && spent < effort) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t m = lin_comp_variant(c, 0, mid, var);
        if (lin_comp_search(c, var, m, budget, &spent) == LIN_VIOLATION)
            hi = mid;
        else
            lo = mid;
    }
    uint32_t cut = hi, start_lo = 0, start_hi = cut;
    while (start_hi - start_lo > 1 && spent < effort) {
        uint32_t mid = start_lo + (start_hi - start_lo) / 2;
        uint32_t m = lin_comp_variant(c, mid, cut, var);
        if (lin_comp_search(c, var, m, budget, &spent) == LIN_VIOLATION)
            start_lo = mid;
        else
            start_hi = mid;
    }
    uint32_t m = lin_comp_variant(c, start_lo, cut, var);
    uint64_t complete_at = UINT64_MAX;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->base[i].ret_pos == cut - 1)
            complete_at = c->base[i].ret;
    }
    out->shrink_states += spent;
    lin_comp_explain(c, var, m, key, complete_at, out);
    free(var);
}

/* Hands op k of the component to its generic model (lin_op_cmd ops or not). */
static void lin_comp_lx_add(struct lin_comp *c, const struct lin_kop *k,
                            const uint32_t *local_of_slice)
{
    const struct lin_history *h = c->h;
    const struct lin_hop *o = &h->ops[k->hop];
    const uint8_t *keys[LIN_MAX_KEYS], *vals[LIN_MAX_KEYS], *outs[LIN_MAX_KEYS];
    uint32_t key_lens[LIN_MAX_KEYS], val_lens[LIN_MAX_KEYS], out_lens[LIN_MAX_KEYS];
    uint32_t local[LIN_MAX_KEYS];
    bool found[LIN_MAX_KEYS];
    bool has_out = (k->flags & LIN_KOP_PENDING) == 0 && o->outcome == LIN_OK;
    uint32_t nin = o->type == LIN_MSET ? o->nkeys : lin_op_has_input(o->type) ? 1 : 0;
    for (uint32_t j = 0; j < o->nkeys; j++) {
        const struct lin_slice *sl = &h->slices[o->keys + j];
        keys[j] = h->bytes + sl->off;
        key_lens[j] = sl->len;
        local[j] = local_of_slice[o->keys + j];
    }
    for (uint32_t j = 0; j < nin; j++) {
        const struct lin_slice *sl = &h->slices[o->ins + j];
        vals[j] = h->bytes + sl->off;
        val_lens[j] = sl->len;
    }
    uint32_t nout = !has_out                     ? 0
                    : lin_op_cmd(o->type)        ? 1
                    : lin_op_reads_only(o->type) ? o->nkeys
                                                 : 0;
    for (uint32_t j = 0; j < nout; j++) {
        const struct lin_slice *sl = &h->slices[o->outs + j];
        outs[j] = h->bytes + sl->off;
        out_lens[j] = sl->len;
        found[j] = sl->found;
    }
    struct lx_desc d = {.type = o->type,
                        .nkeys = o->nkeys,
                        .local = local,
                        .keys = keys,
                        .key_lens = key_lens,
                        .vals = vals,
                        .val_lens = val_lens,
                        .cond = o->cond,
                        .delta = o->delta,
                        .has_out = has_out,
                        .num = o->num,
                        .error = o->error,
                        .found = found,
                        .outs = outs,
                        .out_lens = out_lens,
                        .watch_slot = o->watch_slot};
    if (lin_op_cmd(o->type)) {
        d.cmd = vals[0];
        d.cmd_len = val_lens[0];
        d.res = has_out ? outs[0] : NULL;
        d.res_len = has_out ? out_lens[0] : 0;
    }
    lx_add(c->lx, &d);
}

/* Checks one component: the history ops hops[0 .. n), over nkeys keys (local_of_slice: a key
 * slice's index among them), the first of which is key_ref. */
static void lin_check_comp(const struct lin_history *h, const uint32_t *hops, uint32_t n,
                           const uint32_t *local_of_slice, uint32_t nkeys,
                           const struct lin_ref *key_ref, uint64_t budget, struct lin_result *out)
{
    struct lin_comp c = {.h = h, .nkeys = nkeys};
    c.base = lin_zalloc_array(n, sizeof(*c.base));
    c.cop = lin_zalloc_array(n, sizeof(*c.cop));
    for (uint32_t i = 0; i < n; i++) {
        const struct lin_hop *o = &h->ops[hops[i]];
        bool pending = o->outcome != LIN_OK;
        if (o->outcome == LIN_FAIL || (pending && lin_op_reads_only(o->type)))
            continue;
        struct lin_kop *k = &c.base[c.n++];
        *k = (struct lin_kop){.conn = o->conn, .call = o->call,
                              .ret = pending ? UINT64_MAX : o->ret, .hop = hops[i],
                              .type = o->type, .flags = pending ? LIN_KOP_PENDING : 0};
    }
    lin_sort_nearly(c.base, c.n, sizeof(*c.base), lin_kop_cmp_call);
    lin_key_positions(c.base, c.n);
    c.width = nkeys;
    for (uint32_t i = 0; i < c.n && c.lx == NULL; i++) {
        if (lin_op_cmd(c.base[i].type))
            c.lx = lx_create(nkeys, h->clock_bound_us);
    }
    if (c.lx != NULL) {
        c.width = lx_width(c.lx);
        for (uint32_t i = 0; i < c.n; i++) {
            c.base[i].idx = i;
            lin_comp_lx_add(&c, &c.base[i], local_of_slice);
        }
    }
    for (uint32_t i = 0; i < c.n; i++) {
        struct lin_kop *k = &c.base[i];
        const struct lin_hop *o = &h->ops[k->hop];
        k->idx = i;
        if (c.lx != NULL)
            continue; /* the generic model keeps its own form of the ops */
        struct lin_cop *cp = &c.cop[i];
        cp->keys = (uint32_t)c.nwords;
        for (uint32_t j = 0; j < o->nkeys; j++)
            lin_comp_word(&c, local_of_slice[o->keys + j]);
        cp->ins = (uint32_t)c.nwords;
        uint32_t nin = o->type == LIN_MSET ? o->nkeys : lin_op_has_input(o->type) ? 1 : 0;
        for (uint32_t j = 0; j < nin; j++) {
            const struct lin_slice *sl = &h->slices[o->ins + j];
            lin_comp_word(&c, lin_vtab_intern(&c.vals, h->bytes + sl->off, sl->len));
        }
        cp->outs = (uint32_t)c.nwords;
        if (lin_op_reads_only(o->type) && !(k->flags & LIN_KOP_PENDING)) {
            for (uint32_t j = 0; j < o->nkeys; j++) {
                const struct lin_slice *sl = &h->slices[o->outs + j];
                lin_comp_word(&c, sl->found ? lin_vtab_intern(&c.vals, h->bytes + sl->off,
                                                              sl->len)
                                            : 0);
            }
        }
    }
    uint64_t states = 0;
    int verdict = lin_comp_search(&c, c.base, c.n, budget, &states);
    out->states_explored += states;
    if (verdict == LIN_GAVE_UP)
        out->keys_gave_up += nkeys;
    if (verdict == LIN_VIOLATION) {
        out->keys_violated += nkeys;
        if (out->explanation == NULL) {
            lin_escape_into(out->key, sizeof(out->key), key_ref->p, key_ref->len);
            lin_comp_report(&c, budget, states, out->key, out);
        }
    }
    lin_vtab_fini(&c.vals);
    lx_destroy(c.lx);
    free(c.words);
    free(c.cop);
    free(c.base);
}

/* ---- the check ------------------------------------------------------------------------- */

static uint32_t lin_uf_find(uint32_t *parent, uint32_t x)
{
    uint32_t root = x;
    while (parent[root] != root)
        root = parent[root];
    while (parent[x] != root) {
        uint32_t next = parent[x];
        parent[x] = root;
        x = next;
    }
    return root;
}

/* Joins the sets of a and b; the smaller id is the root, so a component's root is its first
 * key in byte order. */
static void lin_uf_union(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = lin_uf_find(parent, a);
    b = lin_uf_find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* Whether the component of ops hops[0 .. n), of one key, is a plain register. */
static bool lin_comp_is_register(const struct lin_history *h, const uint32_t *hops, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t t = h->ops[hops[i]].type;
        if (t != LIN_GET && t != LIN_PUT && t != LIN_DEL)
            return false;
    }
    return true;
}

int lin_check(struct lin_history *h, uint64_t budget, struct lin_result *out)
{
    RK_ASSERT(h != NULL);
    RK_ASSERT(out != NULL);
    RK_ASSERT(h->nops < UINT32_MAX);
    RK_ASSERT(h->nslices < UINT32_MAX);
    memset(out, 0, sizeof(*out));
    if (budget == 0)
        budget = LIN_BUDGET_DEFAULT;
    uint32_t n = (uint32_t)h->nops;
    /* Every key of every op, in byte order: key ids 0, 1, ... in that order. */
    uint32_t nk = 0;
    for (uint32_t i = 0; i < n; i++)
        nk += h->ops[i].nkeys;
    struct lin_ref *krefs = lin_zalloc_array(nk, sizeof(*krefs));
    uint32_t *key_of_slice = lin_zalloc_array(h->nslices + 1, sizeof(*key_of_slice));
    for (uint32_t i = 0, m = 0; i < n; i++) {
        const struct lin_hop *o = &h->ops[i];
        for (uint32_t j = 0; j < o->nkeys; j++) {
            const struct lin_slice *sl = &h->slices[o->keys + j];
            krefs[m++] = (struct lin_ref){h->bytes + sl->off, sl->len, (uint32_t)(o->keys + j)};
        }
    }
    qsort(krefs, nk, sizeof(*krefs), lin_ref_cmp);
    uint32_t nkeys = 0;
    uint32_t *key_ref = lin_zalloc_array((size_t)nk + 1, sizeof(*key_ref)); /* id -> a ref */
    for (uint32_t a = 0, b; a < nk; a = b) {
        for (b = a + 1; b < nk && lin_ref_cmp_bytes(&krefs[a], &krefs[b]) == 0; b++)
            ;
        key_ref[nkeys] = a;
        for (uint32_t i = a; i < b; i++)
            key_of_slice[krefs[i].idx] = nkeys;
        nkeys++;
    }
    out->keys_checked = nkeys;
    /* Components: keys joined by multi-key ops; a component's root is its first key. */
    uint32_t *parent = lin_zalloc_array((size_t)nkeys + 1, sizeof(*parent));
    for (uint32_t k = 0; k < nkeys; k++)
        parent[k] = k;
    for (uint32_t i = 0; i < n; i++) {
        const struct lin_hop *o = &h->ops[i];
        for (uint32_t j = 1; j < o->nkeys; j++)
            lin_uf_union(parent, key_of_slice[o->keys], key_of_slice[o->keys + j]);
    }
    /* A key's index within its component, in key order; the component's size. */
    uint32_t *local = lin_zalloc_array((size_t)nkeys + 1, sizeof(*local));
    uint32_t *size = lin_zalloc_array((size_t)nkeys + 1, sizeof(*size));
    for (uint32_t k = 0; k < nkeys; k++) {
        uint32_t root = lin_uf_find(parent, k);
        local[k] = size[root]++;
    }
    uint32_t *local_of_slice = lin_zalloc_array(h->nslices + 1, sizeof(*local_of_slice));
    for (uint32_t i = 0; i < nk; i++)
        local_of_slice[krefs[i].idx] = local[key_of_slice[krefs[i].idx]];
    /* Ops grouped by component (counting sort by root), in op order within each. */
    uint32_t *start = lin_zalloc_array((size_t)nkeys + 2, sizeof(*start));
    for (uint32_t i = 0; i < n; i++)
        start[lin_uf_find(parent, key_of_slice[h->ops[i].keys]) + 1]++;
    for (uint32_t k = 0; k < nkeys; k++)
        start[k + 1] += start[k];
    uint32_t *hops = lin_zalloc_array((size_t)n + 1, sizeof(*hops));
    uint32_t *fill = lin_zalloc_array((size_t)nkeys + 1, sizeof(*fill));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t root = lin_uf_find(parent, key_of_slice[h->ops[i].keys]);
        hops[start[root] + fill[root]++] = i;
    }
    struct lin_ref *refs = lin_zalloc_array((size_t)n + 1, sizeof(*refs));
    for (uint32_t root = 0; root < nkeys; root++) {
        uint32_t cn = start[root + 1] - start[root];
        if (cn == 0)
            continue;
        out->components++;
        const uint32_t *ch = hops + start[root];
        const struct lin_ref *kr = &krefs[key_ref[root]];
        if (size[root] == 1 && lin_comp_is_register(h, ch, cn)) {
            for (uint32_t i = 0; i < cn; i++)
                refs[i] = (struct lin_ref){kr->p, kr->len, ch[i]};
            lin_check_key(h, refs, cn, budget, out);
        } else {
            lin_check_comp(h, ch, cn, local_of_slice, size[root], kr, budget, out);
        }
    }
    free(refs);
    free(fill);
    free(hops);
    free(start);
    free(local_of_slice);
    free(size);
    free(local);
    free(parent);
    free(key_ref);
    free(key_of_slice);
    free(krefs);
    if (out->keys_violated > 0)
        out->verdict = LIN_VIOLATION;
    else if (out->keys_gave_up > 0)
        out->verdict = LIN_GAVE_UP;
    else
        out->verdict = LIN_LINEARIZABLE;
    RK_ASSERT((out->verdict == LIN_VIOLATION) == (out->explanation != NULL));
    return out->verdict;
}

void lin_result_free(struct lin_result *r)
{
    if (r == NULL)
        return;
    free(r->explanation);
    r->explanation = NULL;
}
