/*
 * linrich.c — the model of generic kv commands, transactions, WATCH and expiry for lincheck's
 * component search (linrich.h).
 *
 * State, per key of the component (LX_KW words): V (0 absent, LX_ANY unknown, else a value
 * id), DLO and DHI (the key's deadline lies in [DLO, DHI], in wall-clock ms shifted by
 * LX_TIME_BASE; DHI == 0: no deadline), MOD (the id, idx + 1, of the op that last wrote the key:
 * WATCH's version; LX_ANY unknown). Then LX_WATCH_SLOTS x nkeys words: what a WATCH saw of each
 * key, ((MOD << 1) | live) + 1, or 0 (unknown: EXEC may abort or not).
 *
 * Time (kv.h TIME). A node's wall clock is at most E (clock_bound_us) off true (virtual) time.
 * A log entry's clock C is the max of the leader stamps so far: each stamp is the proposing
 * leader's clock (or its last stamp, or the state machine's clock), so for an op invoked at
 * `call` and answered at `ret`, C is in [call - E, ret + E]; a read on a node uses that node's
 * clock at serve time, in the same window. A version-1 write (PUT, DEL, INCRBY, PUT_IF, MSET)
 * carries no stamp: its C has no lower bound. A key with deadline d is
 *     surely absent for the op   when DHI <= lo (d <= C),
 *     surely live                when DLO >  hi (d >  C),
 *     either                     otherwise: both hypotheses are tried,
 * where [lo, hi] is the op's window in ms. A deadline set by an op ("PX ms") is C + ms, in
 * [lo + ms, hi + ms]. So a read may return a key up to 2E + the op's own duration after the
 * deadline as the leader that set it saw it, never more: a node that returns it later fails
 * the check. Keys are removed by PURGE entries the checker does not see; a PURGE removes a key
 * only once its deadline passed by the entry's clock, which the "either" window covers.
 *
 * Hypotheses: each key an op touches that is "either" (or unknown) is tried live and absent (at
 * most 2^3 combinations over a key group); an absent hypothesis hides the key from the op only:
 * a key the op does not write keeps its state. The outputs pick the hypotheses that hold; when
 * several do (or the op is pending), the next states are merged: a key on which they differ
 * becomes unknown (LX_ANY), which any later op may read as anything until a blind write (SET,
 * MSET) defines it again. Sound (a violation found is one), not complete.
 *
 * Transactions: all sub-ops in one step, with one result array, or none (a nil array) when a
 * WATCH failed. WATCH (kv.h): a key seen live at the WATCH must abort EXEC iff it is not live
 * at EXEC or was written since (MOD differs); a key seen absent must abort iff it is live at
 * EXEC or was written since, and may abort anyway (kv's conservative rule: any deletion in its
 * db after the watch point aborts it).
 */
#include "linrich.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv.h"
#include "lincheck.h"

#define LX_KW  4u
#define LX_ANY UINT32_MAX
#define LX_INF (UINT32_MAX - 1u)
/* Wall-clock ms are shifted by this much (17 minutes), so that call - E stays positive. */
#define LX_TIME_BASE (UINT64_C(1) << 20)
#define LX_MAX_ARGS  8u
#define LX_PUTIF1    200u /* a version-1 PUT_IF: SET NX/XX answering 1 or 0 */

enum { W_V = 0, W_DLO = 1, W_DHI = 2, W_MOD = 3 };

struct lx_sub {
    uint8_t code;
    uint8_t nargs;
    uint16_t flags;
    int64_t num;
    uint32_t arg[LX_MAX_ARGS]; /* key positions: local key index; values: value id */
};

struct lx_item {
    uint8_t type; /* enum kv_res_type */
    int64_t num;
    uint32_t vid;
};

struct lx_op {
    uint32_t sub, nsubs;
    uint32_t item, nitems;
    uint8_t slot;
    bool multi, unstamped, has_out, watch;
};

struct lx_model {
    uint32_t nkeys, width;
    uint64_t bound_us;
    struct lx_op *ops;
    uint32_t nops, ops_cap;
    struct lx_sub *subs;
    uint32_t nsubs, subs_cap;
    struct lx_item *items;
    uint32_t nitems, items_cap;
    /* Values: interned byte strings, ids from 1. */
    uint8_t *bytes;
    size_t nbytes, bytes_cap;
    size_t *off;
    uint32_t *len;
    uint32_t nvals, vals_cap;
    uint32_t *slot;
    uint32_t slots;
    /* Scratch: candidates of one step. */
    uint32_t *cand;
    uint32_t *work;
};

static void *lx_grow(void *p, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return p;
    uint32_t c = *cap == 0 ? 16 : *cap;
    while (c < need)
        c *= 2;
    void *q = realloc(p, (size_t)c * size);
    RK_ASSERT(q != NULL);
    *cap = c;
    return q;
}

/* ---- values ------------------------------------------------------------------------------ */

static uint64_t lx_hash(const uint8_t *p, uint32_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ len;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h ^ (h >> 29);
}

static uint32_t lx_find_slot(const struct lx_model *m, const uint8_t *p, uint32_t len)
{
    uint32_t mask = m->slots - 1;
    for (uint32_t i = (uint32_t)lx_hash(p, len) & mask;; i = (i + 1) & mask) {
        uint32_t id = m->slot[i];
        if (id == 0 ||
            (m->len[id - 1] == len && (len == 0 || memcmp(m->bytes + m->off[id - 1], p, len) == 0)))
            return i;
    }
}

static uint32_t lx_intern(struct lx_model *m, const uint8_t *p, uint32_t len)
{
    if ((m->nvals + 1) * 2 > m->slots) {
        uint32_t slots = m->slots == 0 ? 64 : m->slots * 2;
        free(m->slot);
        m->slot = calloc(slots, sizeof(*m->slot));
        RK_ASSERT(m->slot != NULL);
        m->slots = slots;
        for (uint32_t id = 1; id <= m->nvals; id++)
            m->slot[lx_find_slot(m, m->bytes + m->off[id - 1], m->len[id - 1])] = id;
    }
    uint32_t i = lx_find_slot(m, p, len);
    if (m->slot[i] != 0)
        return m->slot[i];
    uint32_t cap = m->vals_cap;
    m->off = lx_grow(m->off, &cap, m->nvals + 1, sizeof(*m->off));
    m->len = lx_grow(m->len, &m->vals_cap, m->nvals + 1, sizeof(*m->len));
    if (m->nbytes + len + 1 > m->bytes_cap) {
        size_t c = m->bytes_cap == 0 ? 256 : m->bytes_cap;
        while (c < m->nbytes + len + 1)
            c *= 2;
        m->bytes = realloc(m->bytes, c);
        RK_ASSERT(m->bytes != NULL);
        m->bytes_cap = c;
    }
    if (len > 0)
        memcpy(m->bytes + m->nbytes, p, len);
    m->off[m->nvals] = m->nbytes;
    m->len[m->nvals] = len;
    m->nbytes += len;
    m->slot[i] = ++m->nvals;
    return m->nvals;
}

/* ---- building ---------------------------------------------------------------------------- */

struct lx_model *lx_create(uint32_t nkeys, uint64_t clock_bound_us)
{
    RK_ASSERT(nkeys >= 1 && nkeys <= 8); /* keys join only within a key group */
    struct lx_model *m = calloc(1, sizeof(*m));
    RK_ASSERT(m != NULL);
    m->nkeys = nkeys;
    m->width = nkeys * LX_KW + LX_WATCH_SLOTS * nkeys;
    m->bound_us = clock_bound_us;
    /* Up to 2^3 hypotheses x 2 outcomes, plus the working state. */
    m->cand = calloc((size_t)m->width * 17, sizeof(*m->cand));
    m->work = calloc(m->width, sizeof(*m->work));
    RK_ASSERT(m->cand != NULL && m->work != NULL);
    return m;
}

void lx_destroy(struct lx_model *m)
{
    if (m == NULL)
        return;
    free(m->ops);
    free(m->subs);
    free(m->items);
    free(m->bytes);
    free(m->off);
    free(m->len);
    free(m->slot);
    free(m->cand);
    free(m->work);
    free(m);
}

uint32_t lx_width(const struct lx_model *m)
{
    return m->width;
}

static struct lx_sub *lx_new_sub(struct lx_model *m, uint8_t code)
{
    m->subs = lx_grow(m->subs, &m->subs_cap, m->nsubs + 1, sizeof(*m->subs));
    struct lx_sub *s = &m->subs[m->nsubs++];
    memset(s, 0, sizeof(*s));
    s->code = code;
    return s;
}

static void lx_item(struct lx_model *m, uint8_t type, int64_t num, uint32_t vid)
{
    m->items = lx_grow(m->items, &m->items_cap, m->nitems + 1, sizeof(*m->items));
    m->items[m->nitems++] = (struct lx_item){type, num, vid};
}

static uint32_t lx_key_local(const struct lx_desc *d, const uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < d->nkeys; i++) {
        if (d->key_lens[i] == len && (len == 0 || memcmp(d->keys[i], p, len) == 0))
            return d->local[i];
    }
    RK_ASSERT(!"a command key that the op did not list");
    return 0;
}

static bool lx_arg_is_value(uint8_t code, uint32_t i)
{
    switch (code) {
    case KV_C_SET:
    case KV_C_SETNX:
    case KV_C_APPEND:
    case KV_C_SETRANGE:
        return i == 1;
    case KV_C_MSET:
    case KV_C_MSETNX:
        return i % 2 == 1;
    case KV_C_BITCOUNT: /* key, then its range as sent */
    case KV_C_BITPOS:
        return i >= 1;
    case KV_C_ACL_SETUSER: /* a user name and rules: no key */
    case KV_C_ACL_DELUSER:
        return true;
    default:
        return false;
    }
}

/* The plain ops (lincheck.h) as sub-ops with Redis-shaped results. */
static void lx_add_plain(struct lx_model *m, struct lx_op *op, const struct lx_desc *d)
{
    op->unstamped = d->type != LIN_GET && d->type != LIN_MGET;
    struct lx_sub *s = NULL;
    switch (d->type) {
    case LIN_GET:
    case LIN_MGET:
        s = lx_new_sub(m, d->type == LIN_GET ? KV_C_GET : KV_C_MGET);
        break;
    case LIN_PUT:
    case LIN_PUT_IF:
        s = lx_new_sub(m, d->type == LIN_PUT ? KV_C_SET : LX_PUTIF1);
        s->flags = d->type == LIN_PUT ? 0 : d->cond == LIN_COND_NX ? KV_F_NX : KV_F_XX;
        break;
    case LIN_DEL:
        s = lx_new_sub(m, KV_C_DEL);
        break;
    case LIN_INCRBY:
        s = lx_new_sub(m, KV_C_INCRBY);
        s->num = d->delta;
        break;
    case LIN_MSET:
        s = lx_new_sub(m, KV_C_MSET);
        break;
    default:
        RK_ASSERT(!"unknown op type");
        return;
    }
    for (uint32_t i = 0; i < d->nkeys && (uint32_t)s->nargs + 2 <= LX_MAX_ARGS; i++) {
        s->arg[s->nargs++] = d->local[i];
        if (d->type == LIN_MSET || (i == 0 && (d->type == LIN_PUT || d->type == LIN_PUT_IF)))
            s->arg[s->nargs++] = lx_intern(m, d->vals[i], d->val_lens[i]);
    }
    op->nsubs = 1;
    if (!d->has_out)
        return;
    switch (d->type) {
    case LIN_GET:
        lx_item(m, d->found[0] ? KV_RES_BULK : KV_RES_NIL, 0,
                d->found[0] ? lx_intern(m, d->outs[0], d->out_lens[0]) : 0);
        break;
    case LIN_MGET:
        lx_item(m, KV_RES_ARRAY, d->nkeys, 0);
        for (uint32_t i = 0; i < d->nkeys; i++)
            lx_item(m, d->found[i] ? KV_RES_BULK : KV_RES_NIL, 0,
                    d->found[i] ? lx_intern(m, d->outs[i], d->out_lens[i]) : 0);
        break;
    case LIN_PUT:
    case LIN_MSET:
        lx_item(m, KV_RES_STATUS, 0, 0);
        break;
    case LIN_INCRBY:
        lx_item(m, d->error ? KV_RES_ERROR : KV_RES_INT, d->error ? 0 : d->num, 0);
        break;
    default: /* DEL, PUT_IF */
        lx_item(m, KV_RES_INT, d->num, 0);
        break;
    }
}

static void lx_add_cmd(struct lx_model *m, struct lx_op *op, const struct lx_desc *d)
{
    struct kv_cmd2_view v;
    int rc = kv_cmd2_decode(d->cmd, d->cmd_len, &v, NULL);
    RK_ASSERT(rc == RK_OK);
    op->multi = (v.flags & KV_CMD2_MULTI) != 0;
    op->slot = d->watch_slot;
    op->watch = op->multi && v.n_watch > 0;
    struct kv_cmd2_iter it, ai;
    struct kv_op_view ov;
    kv_cmd2_ops(&v, &it);
    while (kv_cmd2_next_op(&it, &ov)) {
        struct lx_sub *s = lx_new_sub(m, ov.code);
        s->flags = ov.flags;
        s->num = ov.num;
        RK_ASSERT(ov.argc <= LX_MAX_ARGS);
        kv_op_args(&ov, &ai);
        struct kv_arg a;
        while (kv_op_next_arg(&ai, &a)) {
            s->arg[s->nargs] = lx_arg_is_value(ov.code, s->nargs) ? lx_intern(m, a.p, a.len)
                                                                  : lx_key_local(d, a.p, a.len);
            s->nargs++;
        }
        op->nsubs++;
    }
    if (op->watch) {
        /* The watched keys: as a WATCH sub-op's args, kept before the ops (code KV_C_WATCH). */
        struct lx_sub *s = lx_new_sub(m, KV_C_WATCH);
        s->flags = 1; /* the EXEC's watch list, not a WATCH read */
        struct kv_watch w;
        kv_cmd2_watches(&v, &ai);
        while (kv_cmd2_next_watch(&ai, &w) && s->nargs < LX_MAX_ARGS)
            s->arg[s->nargs++] = lx_key_local(d, w.key, w.key_len);
    }
    if (!d->has_out)
        return;
    struct kv_res_iter ri;
    struct kv_res_item item;
    kv_res_begin(&ri, d->res, d->res_len);
    while (kv_res_next(&ri, &item))
        lx_item(m, item.type, item.num,
                item.type == KV_RES_BULK ? lx_intern(m, item.p, item.len) : 0);
}

void lx_add(struct lx_model *m, const struct lx_desc *d)
{
    m->ops = lx_grow(m->ops, &m->ops_cap, m->nops + 1, sizeof(*m->ops));
    struct lx_op *op = &m->ops[m->nops++];
    memset(op, 0, sizeof(*op));
    op->sub = m->nsubs;
    op->item = m->nitems;
    op->has_out = d->has_out;
    if (d->type == LIN_CMD || d->type == LIN_CMD_READ)
        lx_add_cmd(m, op, d);
    else
        lx_add_plain(m, op, d);
    op->nitems = m->nitems - op->item;
}

/* ---- output matching --------------------------------------------------------------------- */

struct lx_cmp {
    const struct lx_item *exp;
    uint32_t n, pos;
    bool on;  /* outputs constrained */
    bool bad; /* a mismatch */
};

static const struct lx_item *lx_next(struct lx_cmp *c)
{
    if (!c->on || c->bad)
        return NULL;
    if (c->pos >= c->n) {
        c->bad = true;
        return NULL;
    }
    return &c->exp[c->pos++];
}

static void lx_expect(struct lx_cmp *c, uint8_t type, int64_t num, uint32_t vid)
{
    const struct lx_item *e = lx_next(c);
    if (e == NULL)
        return;
    if (e->type != type || ((type == KV_RES_INT || type == KV_RES_ARRAY) && e->num != num) ||
        (type == KV_RES_BULK && e->vid != vid))
        c->bad = true;
}

static void lx_expect_range(struct lx_cmp *c, int64_t lo, int64_t hi)
{
    const struct lx_item *e = lx_next(c);
    if (e != NULL && (e->type != KV_RES_INT || e->num < lo || e->num > hi))
        c->bad = true;
}

/* Any one value (with its elements, if an array). */
static void lx_expect_any(struct lx_cmp *c)
{
    const struct lx_item *e = lx_next(c);
    if (e != NULL && e->type == KV_RES_ARRAY) {
        for (int64_t i = 0; i < e->num && !c->bad; i++)
            lx_expect_any(c);
    }
}

/* ---- the step ---------------------------------------------------------------------------- */

struct lx_ctx {
    struct lx_model *m;
    uint32_t *w;     /* the working state */
    uint32_t id;     /* the op's MOD */
    uint64_t lo, hi; /* the op's clock window, in shifted ms */
    uint8_t written; /* bit per local key (nkeys <= 8 here) */
    struct lx_cmp cmp;
};

static uint32_t *lx_key(uint32_t *w, uint32_t k)
{
    return w + (size_t)k * LX_KW;
}

static uint32_t lx_sat(uint64_t v)
{
    return v >= LX_INF ? LX_INF : (uint32_t)v;
}

static void lx_put(struct lx_ctx *x, uint32_t k, uint32_t v, uint32_t dlo, uint32_t dhi)
{
    uint32_t *kw = lx_key(x->w, k);
    kw[W_V] = v;
    kw[W_DLO] = dlo;
    kw[W_DHI] = dhi;
    kw[W_MOD] = x->id;
    x->written |= (uint8_t)(1u << k);
}

static void lx_del(struct lx_ctx *x, uint32_t k)
{
    lx_put(x, k, 0, 0, 0);
}

/* The key becomes unknown (an op whose effect on it cannot be told). */
static void lx_havoc(struct lx_ctx *x, uint32_t k)
{
    uint32_t *kw = lx_key(x->w, k);
    kw[W_V] = LX_ANY;
    kw[W_DLO] = kw[W_DHI] = 0;
    kw[W_MOD] = LX_ANY;
    x->written |= (uint8_t)(1u << k);
}

static bool lx_is_write(uint8_t code)
{
    return code >= KV_C_SET;
}

static bool lx_is_key_arg(uint8_t code, uint32_t i)
{
    if (code == LX_PUTIF1)
        return i == 0;
    return !lx_arg_is_value(code, i);
}

/* Bit i of a value (bit 0: the most significant of byte 0), Redis's numbering. */
static int lx_bit(const uint8_t *v, uint32_t len, uint64_t i)
{
    return (i >> 3) < len ? (v[i >> 3] >> (7 - (i & 7))) & 1 : 0;
}

/* The bitmap sub-ops (the workload's forms: BITCOUNT of the whole value or of a byte range,
 * BITPOS of the whole value, offsets below 64 bytes), on values of up to 64 bytes; a longer
 * one makes the result free and what the op writes unknown. */
static void lx_run_bits(struct lx_ctx *x, const struct lx_sub *s, uint32_t v0, uint32_t *k0)
{
    struct lx_model *m = x->m;
    const uint32_t *a = s->arg;
    const uint8_t *v = v0 != 0 ? m->bytes + m->off[v0 - 1] : NULL;
    uint32_t len = v0 != 0 ? m->len[v0 - 1] : 0;
    uint8_t text[64];
    switch (s->code) {
    case KV_C_GETBIT:
        lx_expect(&x->cmp, KV_RES_INT, lx_bit(v, len, (uint64_t)s->num), 0);
        return;
    case KV_C_BITCOUNT: {
        int64_t lo = 0, hi = (int64_t)len - 1, n = 0;
        if (s->nargs == 3) {
            int64_t st = 0, en = 0;
            bool ok = kv_parse_int64(m->bytes + m->off[a[1] - 1], m->len[a[1] - 1], &st) &&
                      kv_parse_int64(m->bytes + m->off[a[2] - 1], m->len[a[2] - 1], &en);
            RK_ASSERT(ok);
            lo = st < 0 ? (int64_t)len + st : st;
            hi = en < 0 ? (int64_t)len + en : en;
            lo = lo < 0 ? 0 : lo;
            hi = hi < 0 ? 0 : hi >= (int64_t)len ? (int64_t)len - 1 : hi;
            if (st < 0 && en < 0 && st > en)
                hi = lo - 1;
        }
        for (int64_t i = lo * 8; v0 != 0 && i <= hi * 8 + 7 && hi >= lo; i++)
            n += lx_bit(v, len, (uint64_t)i);
        lx_expect(&x->cmp, KV_RES_INT, n, 0);
        return;
    }
    case KV_C_BITPOS: {
        RK_ASSERT(s->nargs == 1);
        int want = s->num != 0;
        int64_t pos = v0 == 0 ? (want ? -1 : 0) : -1;
        for (uint64_t i = 0; v0 != 0 && i < (uint64_t)len * 8 && pos < 0; i++)
            if (lx_bit(v, len, i) == want)
                pos = (int64_t)i;
        if (v0 != 0 && pos < 0 && !want && len > 0)
            pos = (int64_t)len * 8; /* zeros follow the value */
        lx_expect(&x->cmp, KV_RES_INT, pos, 0);
        return;
    }
    case KV_C_SETBIT: {
        uint64_t off = (uint64_t)s->num >> 1;
        uint32_t n = (uint32_t)(off >> 3) + 1 > len ? (uint32_t)(off >> 3) + 1 : len;
        if (n > sizeof(text)) {
            lx_expect_any(&x->cmp);
            lx_havoc(x, a[0]);
            return;
        }
        memset(text, 0, sizeof(text));
        if (len > 0)
            memcpy(text, v, len);
        lx_expect(&x->cmp, KV_RES_INT, lx_bit(text, n, off), 0);
        uint8_t mask = (uint8_t)(1u << (7 - (off & 7)));
        text[off >> 3] =
            (s->num & 1) ? (uint8_t)(text[off >> 3] | mask) : (uint8_t)(text[off >> 3] & ~mask);
        lx_put(x, a[0], lx_intern(m, text, n), v0 != 0 ? k0[W_DLO] : 0, v0 != 0 ? k0[W_DHI] : 0);
        return;
    }
    default: { /* BITOP: AND 0, OR 1, XOR 2, NOT 3 over the sources a[1..] into a[0] */
        uint32_t maxlen = 0;
        for (uint32_t i = 1; i < s->nargs; i++) {
            uint32_t sv = lx_key(x->w, a[i])[W_V];
            maxlen = sv != 0 && m->len[sv - 1] > maxlen ? m->len[sv - 1] : maxlen;
        }
        if (maxlen > sizeof(text)) {
            lx_expect_any(&x->cmp);
            lx_havoc(x, a[0]);
            return;
        }
        for (uint32_t j = 0; j < maxlen; j++) {
            uint8_t acc = 0;
            for (uint32_t i = 1; i < s->nargs; i++) {
                uint32_t sv = lx_key(x->w, a[i])[W_V];
                uint8_t b = sv != 0 && j < m->len[sv - 1] ? m->bytes[m->off[sv - 1] + j] : 0;
                acc = i == 1        ? (s->num == 3 ? (uint8_t)~b : b)
                      : s->num == 0 ? (uint8_t)(acc & b)
                      : s->num == 1 ? (uint8_t)(acc | b)
                                    : (uint8_t)(acc ^ b);
            }
            text[j] = acc;
        }
        lx_expect(&x->cmp, KV_RES_INT, maxlen, 0);
        if (maxlen == 0) {
            if (lx_key(x->w, a[0])[W_V] != 0)
                lx_del(x, a[0]);
        } else {
            lx_put(x, a[0], lx_intern(m, text, maxlen), 0, 0);
        }
        return;
    }
    }
}

/* One sub-op on the working state. */
static void lx_run(struct lx_ctx *x, const struct lx_sub *s)
{
    struct lx_model *m = x->m;
    uint32_t *w = x->w;
    const uint32_t *a = s->arg;
    /* ACL users touch no key: SETUSER of the workload's valid rules is +OK; DELUSER's count
     * depends on users, which the model does not follow (the digests check them). */
    if (s->code == KV_C_ACL_SETUSER) {
        lx_expect(&x->cmp, KV_RES_STATUS, 0, 0);
        return;
    }
    if (s->code == KV_C_ACL_DELUSER) {
        lx_expect_any(&x->cmp);
        return;
    }
    /* A key of unknown state: the result is free, what the op may write becomes unknown (but
     * for blind writes, which define their keys whatever they held). */
    bool any = false;
    for (uint32_t i = 0; i < s->nargs; i++)
        if (lx_is_key_arg(s->code, i) && lx_key(w, a[i])[W_V] == LX_ANY)
            any = true;
    bool blind =
        (s->code == KV_C_SET && (s->flags & (KV_F_NX | KV_F_XX | KV_F_GET | KV_F_KEEPTTL)) == 0) ||
        s->code == KV_C_MSET;
    if (any && !blind) {
        lx_expect_any(&x->cmp);
        if (lx_is_write(s->code)) {
            for (uint32_t i = 0; i < s->nargs; i++)
                if (lx_is_key_arg(s->code, i))
                    lx_havoc(x, a[i]);
        }
        return;
    }
    uint32_t *k0 = lx_key(w, a[0]);
    uint32_t v0 = k0[W_V];
    switch (s->code) {
    case KV_C_GET:
        lx_expect(&x->cmp, v0 != 0 ? KV_RES_BULK : KV_RES_NIL, 0, v0);
        return;
    case KV_C_MGET:
        lx_expect(&x->cmp, KV_RES_ARRAY, s->nargs, 0);
        for (uint32_t i = 0; i < s->nargs; i++) {
            uint32_t v = lx_key(w, a[i])[W_V];
            lx_expect(&x->cmp, v != 0 ? KV_RES_BULK : KV_RES_NIL, 0, v);
        }
        return;
    case KV_C_TTL: {
        RK_ASSERT((s->flags & KV_F_MS) && !(s->flags & KV_F_ABS));
        if (v0 == 0 || k0[W_DHI] == 0) {
            lx_expect(&x->cmp, KV_RES_INT, v0 == 0 ? -2 : -1, 0);
            return;
        }
        int64_t lo = (int64_t)k0[W_DLO] - (int64_t)x->hi;
        int64_t hi = k0[W_DHI] >= LX_INF ? INT64_MAX : (int64_t)k0[W_DHI] - (int64_t)x->lo;
        lx_expect_range(&x->cmp, lo < 1 ? 1 : lo, hi);
        return;
    }
    case KV_C_SET:
    case LX_PUTIF1: {
        RK_ASSERT(!(s->flags & KV_F_ABS));
        bool fails = ((s->flags & KV_F_NX) && v0 != 0) || ((s->flags & KV_F_XX) && v0 == 0);
        if (s->code == LX_PUTIF1)
            lx_expect(&x->cmp, KV_RES_INT, fails ? 0 : 1, 0);
        else if (s->flags & KV_F_GET) /* GETSET: the old value, whether or not it writes */
            lx_expect(&x->cmp, v0 != 0 ? KV_RES_BULK : KV_RES_NIL, 0, v0);
        else
            lx_expect(&x->cmp, fails ? KV_RES_NIL : KV_RES_STATUS, 0, 0);
        if (fails)
            return;
        if ((s->flags & KV_F_KEEPTTL) && !(s->flags & KV_F_EXP)) {
            lx_put(x, a[0], a[1], v0 != 0 ? k0[W_DLO] : 0, v0 != 0 ? k0[W_DHI] : 0);
        } else if (s->flags & KV_F_EXP) {
            RK_ASSERT((s->flags & KV_F_MS) && s->num > 0);
            lx_put(x, a[0], a[1], lx_sat(x->lo + (uint64_t)s->num),
                   lx_sat(x->hi >= LX_INF ? LX_INF : x->hi + (uint64_t)s->num));
        } else {
            lx_put(x, a[0], a[1], 0, 0);
        }
        return;
    }
    case KV_C_STRLEN:
        lx_expect(&x->cmp, KV_RES_INT, v0 != 0 ? m->len[v0 - 1] : 0, 0);
        return;
    case KV_C_EXISTS: {
        int64_t n = 0;
        for (uint32_t i = 0; i < s->nargs; i++)
            n += lx_key(w, a[i])[W_V] != 0 ? 1 : 0;
        lx_expect(&x->cmp, KV_RES_INT, n, 0);
        return;
    }
    case KV_C_GETEX: {
        RK_ASSERT(!(s->flags & KV_F_ABS) && (!(s->flags & KV_F_EXP) || (s->flags & KV_F_MS)));
        lx_expect(&x->cmp, v0 != 0 ? KV_RES_BULK : KV_RES_NIL, 0, v0);
        if (v0 == 0)
            return;
        if (s->flags & KV_F_EXP) {
            /* kv writes only when the new deadline differs from the old one, which the model
             * cannot tell for sure: the key's version becomes unknown. */
            lx_put(x, a[0], v0, lx_sat(x->lo + (uint64_t)s->num),
                   lx_sat(x->hi >= LX_INF ? LX_INF : x->hi + (uint64_t)s->num));
            lx_key(w, a[0])[W_MOD] = LX_ANY;
        } else if ((s->flags & KV_F_PERSIST) && k0[W_DHI] != 0) {
            lx_put(x, a[0], v0, 0, 0);
        }
        return;
    }
    case KV_C_SETRANGE: {
        const uint8_t *add = m->bytes + m->off[a[1] - 1];
        uint32_t add_len = m->len[a[1] - 1], old_len = v0 != 0 ? m->len[v0 - 1] : 0;
        RK_ASSERT(s->num >= 0);
        uint64_t off = (uint64_t)s->num, end = off + add_len;
        uint64_t len = end > old_len ? end : old_len;
        if (add_len == 0) {
            lx_expect(&x->cmp, KV_RES_INT, old_len, 0);
            return;
        }
        char text[64];
        if (len > sizeof(text)) {
            lx_expect_any(&x->cmp);
            lx_havoc(x, a[0]);
            return;
        }
        memset(text, 0, sizeof(text));
        if (old_len > 0)
            memcpy(text, m->bytes + m->off[v0 - 1], old_len);
        memcpy(text + off, add, add_len);
        lx_expect(&x->cmp, KV_RES_INT, (int64_t)len, 0);
        lx_put(x, a[0], lx_intern(m, (const uint8_t *)text, (uint32_t)len), v0 != 0 ? k0[W_DLO] : 0,
               v0 != 0 ? k0[W_DHI] : 0);
        return;
    }
    case KV_C_RENAMENX:
    case KV_C_COPY: {
        RK_ASSERT(a[0] != a[1] && (s->code == KV_C_RENAMENX || s->num == 0));
        uint32_t *k1 = lx_key(w, a[1]);
        bool nx = s->code == KV_C_RENAMENX;
        if (v0 == 0) {
            lx_expect(&x->cmp, nx ? KV_RES_ERROR : KV_RES_INT, 0, 0);
            return;
        }
        if (k1[W_V] != 0 && (nx || !(s->flags & KV_F_REPLACE))) {
            lx_expect(&x->cmp, KV_RES_INT, 0, 0);
            return;
        }
        lx_expect(&x->cmp, KV_RES_INT, 1, 0);
        uint32_t dlo = k0[W_DLO], dhi = k0[W_DHI];
        lx_put(x, a[1], v0, dlo, dhi);
        if (nx)
            lx_del(x, a[0]);
        return;
    }
    case KV_C_SETNX:
        lx_expect(&x->cmp, KV_RES_INT, v0 != 0 ? 0 : 1, 0);
        if (v0 == 0)
            lx_put(x, a[0], a[1], 0, 0);
        return;
    case KV_C_GETDEL:
        lx_expect(&x->cmp, v0 != 0 ? KV_RES_BULK : KV_RES_NIL, 0, v0);
        if (v0 != 0)
            lx_del(x, a[0]);
        return;
    case KV_C_DEL: {
        int64_t n = 0;
        for (uint32_t i = 0; i < s->nargs; i++) {
            if (lx_key(w, a[i])[W_V] != 0) {
                n++;
                lx_del(x, a[i]);
            }
        }
        lx_expect(&x->cmp, KV_RES_INT, n, 0);
        return;
    }
    case KV_C_INCRBY:
    case KV_C_APPEND: {
        const uint8_t *old = v0 != 0 ? m->bytes + m->off[v0 - 1] : NULL;
        uint32_t old_len = v0 != 0 ? m->len[v0 - 1] : 0;
        char text[64];
        uint32_t len = 0;
        if (s->code == KV_C_INCRBY) {
            int64_t cur = 0, sum = 0;
            if ((v0 != 0 && !kv_parse_int64(old, old_len, &cur)) ||
                __builtin_add_overflow(cur, s->num, &sum)) {
                lx_expect(&x->cmp, KV_RES_ERROR, 0, 0);
                return;
            }
            lx_expect(&x->cmp, KV_RES_INT, sum, 0);
            len = (uint32_t)snprintf(text, sizeof(text), "%" PRId64, sum);
        } else {
            uint32_t add = m->len[a[1] - 1];
            if (old_len + add > sizeof(text)) {
                /* Too long to build here: the result is free, the key unknown. */
                lx_expect_any(&x->cmp);
                lx_havoc(x, a[0]);
                return;
            }
            if (old_len > 0)
                memcpy(text, old, old_len);
            memcpy(text + old_len, m->bytes + m->off[a[1] - 1], add);
            len = old_len + add;
            lx_expect(&x->cmp, KV_RES_INT, len, 0);
        }
        uint32_t dlo = v0 != 0 ? k0[W_DLO] : 0, dhi = v0 != 0 ? k0[W_DHI] : 0;
        lx_put(x, a[0], lx_intern(m, (const uint8_t *)text, len), dlo, dhi);
        return;
    }
    case KV_C_MSET:
    case KV_C_MSETNX: {
        bool nx = s->code == KV_C_MSETNX;
        bool live = false;
        for (uint32_t i = 0; i + 1 < s->nargs; i += 2)
            live = live || lx_key(w, a[i])[W_V] != 0;
        if (nx && live) {
            lx_expect(&x->cmp, KV_RES_INT, 0, 0);
            return;
        }
        for (uint32_t i = 0; i + 1 < s->nargs; i += 2)
            lx_put(x, a[i], a[i + 1], 0, 0);
        lx_expect(&x->cmp, nx ? KV_RES_INT : KV_RES_STATUS, 1, 0);
        return;
    }
    case KV_C_EXPIRE:
        RK_ASSERT((s->flags & KV_F_MS) && !(s->flags & ~KV_F_MS) && s->num > 0);
        lx_expect(&x->cmp, KV_RES_INT, v0 != 0 ? 1 : 0, 0);
        if (v0 != 0)
            lx_put(x, a[0], v0, lx_sat(x->lo + (uint64_t)s->num),
                   lx_sat(x->hi >= LX_INF ? LX_INF : x->hi + (uint64_t)s->num));
        return;
    case KV_C_PERSIST: {
        bool yes = v0 != 0 && k0[W_DHI] != 0;
        lx_expect(&x->cmp, KV_RES_INT, yes ? 1 : 0, 0);
        if (yes)
            lx_put(x, a[0], v0, 0, 0);
        return;
    }
    case KV_C_GETBIT:
    case KV_C_BITCOUNT:
    case KV_C_BITPOS:
    case KV_C_SETBIT:
    case KV_C_BITOP:
        lx_run_bits(x, s, v0, k0);
        return;
    case KV_C_RENAME: {
        RK_ASSERT(a[0] != a[1]);
        if (v0 == 0) {
            lx_expect(&x->cmp, KV_RES_ERROR, 0, 0);
            return;
        }
        lx_expect(&x->cmp, KV_RES_STATUS, 0, 0);
        uint32_t dlo = k0[W_DLO], dhi = k0[W_DHI];
        lx_put(x, a[1], v0, dlo, dhi);
        lx_del(x, a[0]);
        return;
    }
    default:
        RK_ASSERT(!"a command the model does not have");
        return;
    }
}

/* The liveness of key state kw for an op with window [lo, hi]: 1 live, 0 absent, -1 either. */
static int lx_live(const uint32_t *kw, uint64_t lo, uint64_t hi)
{
    if (kw[W_V] == 0)
        return 0;
    if (kw[W_V] == LX_ANY)
        return -1;
    if (kw[W_DHI] == 0)
        return 1;
    if (kw[W_DHI] <= lo)
        return 0;
    if (kw[W_DLO] > hi)
        return 1;
    return -1;
}

/* What a WATCH saw of a key: live at the watch, and its MOD. */
static uint32_t lx_slot_word(const uint32_t *kw)
{
    if (kw[W_MOD] == LX_ANY || kw[W_V] == LX_ANY)
        return 0;
    return ((kw[W_MOD] << 1) | (kw[W_V] != 0 ? 1u : 0u)) + 1;
}

/* The watches of an EXEC against state w (a hypothesis already applied): whether it may abort
 * and whether it must (kv.h WATCH; an unknown slot or key: it may). */
static void lx_watch_rule(const struct lx_model *m, const struct lx_op *op, const uint32_t *w,
                          bool *may_abort, bool *must_abort)
{
    *may_abort = false;
    *must_abort = false;
    if (!op->watch)
        return;
    const struct lx_sub *ws = &m->subs[op->sub + op->nsubs];
    RK_ASSERT(ws->code == KV_C_WATCH && ws->flags == 1);
    for (uint32_t i = 0; i < ws->nargs; i++) {
        uint32_t k = ws->arg[i];
        const uint32_t *kw = w + (size_t)k * LX_KW;
        uint32_t sw =
            op->slot == 0 ? 0 : w[(size_t)m->nkeys * LX_KW + (size_t)(op->slot - 1) * m->nkeys + k];
        if (sw == 0 || kw[W_MOD] == LX_ANY || kw[W_V] == LX_ANY) {
            *may_abort = true;
            continue;
        }
        uint32_t mod = (sw - 1) >> 1;
        bool seen_live = ((sw - 1) & 1) != 0, live = kw[W_V] != 0;
        bool must = seen_live ? (!live || kw[W_MOD] != mod) : (live || kw[W_MOD] != mod);
        *must_abort = *must_abort || must;
        *may_abort = *may_abort || must || !seen_live;
    }
}

bool lx_step(struct lx_model *m, uint32_t idx, bool constrained, uint64_t call, uint64_t ret,
             const uint32_t *state, uint32_t *next)
{
    RK_ASSERT(idx < m->nops);
    const struct lx_op *op = &m->ops[idx];
    uint32_t W = m->width;
    uint64_t shift = LX_TIME_BASE * 1000;
    uint64_t lo = op->unstamped ? 0 : (call + shift - m->bound_us) / 1000;
    uint64_t hi = ret == UINT64_MAX ? LX_INF : (ret + shift + m->bound_us) / 1000;
    constrained = constrained && op->has_out;
    /* The keys the op touches that may be live or absent. */
    uint32_t touched = 0;
    for (uint32_t j = 0; j <= op->nsubs; j++) {
        if (j == op->nsubs && !op->watch)
            break;
        const struct lx_sub *s = &m->subs[op->sub + j];
        for (uint32_t i = 0; i < s->nargs; i++)
            if (lx_is_key_arg(s->code, i))
                touched |= 1u << s->arg[i];
    }
    uint32_t maybe[8], nmaybe = 0;
    for (uint32_t k = 0; k < m->nkeys && k < 8; k++) {
        if ((touched >> k & 1) && lx_live(state + (size_t)k * LX_KW, lo, hi) < 0)
            maybe[nmaybe++] = k;
    }
    RK_ASSERT(nmaybe <= 3 || !"more keys per op than a key group");
    uint32_t ncand = 0;
    bool read_watch = !op->multi && m->subs[op->sub].code == KV_C_WATCH;
    for (uint32_t h = 0; h < (1u << nmaybe); h++) {
        /* The hypothesis: the absent keys hidden from the op. */
        memcpy(m->work, state, (size_t)W * sizeof(*state));
        for (uint32_t k = 0; k < m->nkeys; k++) {
            uint32_t *kw = lx_key(m->work, k);
            int l = lx_live(kw, lo, hi);
            for (uint32_t q = 0; q < nmaybe; q++)
                if (maybe[q] == k)
                    l = (h >> q & 1) ? 1 : 0;
            if (l == 0 && kw[W_V] != 0) {
                kw[W_V] = 0;
                kw[W_DLO] = kw[W_DHI] = 0;
            }
        }
        bool may_abort = false, must_abort = false;
        lx_watch_rule(m, op, m->work, &may_abort, &must_abort);
        for (int outcome = 0; outcome < 2; outcome++) {
            bool abort = outcome == 1;
            if (abort ? !may_abort : must_abort)
                continue;
            uint32_t *cand = m->cand + (size_t)ncand * W;
            memcpy(cand, m->work, (size_t)W * sizeof(*cand));
            struct lx_ctx x = {.m = m,
                               .w = cand,
                               .id = idx + 1,
                               .lo = lo,
                               .hi = hi,
                               .cmp = {m->items + op->item, op->nitems, 0, constrained, false}};
            if (abort) {
                lx_expect(&x.cmp, KV_RES_NIL_ARRAY, 0, 0);
            } else {
                if (op->multi)
                    lx_expect(&x.cmp, KV_RES_ARRAY, op->nsubs, 0);
                for (uint32_t j = 0; j < op->nsubs && !x.cmp.bad; j++) {
                    const struct lx_sub *s = &m->subs[op->sub + j];
                    if (read_watch) {
                        lx_expect(&x.cmp, KV_RES_ARRAY, s->nargs + 1, 0);
                        lx_expect_any(&x.cmp); /* the watch point */
                        for (uint32_t i = 0; i < s->nargs; i++) {
                            uint32_t *kw = lx_key(cand, s->arg[i]);
                            const struct lx_item *e = lx_next(&x.cmp);
                            bool live = kw[W_V] != 0;
                            if (e != NULL && (e->type != KV_RES_INT || (e->num != 0) != live))
                                x.cmp.bad = true;
                            if (op->slot != 0)
                                cand[(size_t)m->nkeys * LX_KW + (size_t)(op->slot - 1) * m->nkeys +
                                     s->arg[i]] = lx_slot_word(kw);
                        }
                        continue;
                    }
                    lx_run(&x, s);
                }
            }
            if (x.cmp.bad || (constrained && x.cmp.pos != x.cmp.n))
                continue;
            /* Keys the op did not write keep their state (deadline included). */
            for (uint32_t k = 0; k < m->nkeys; k++) {
                if (!(x.written >> k & 1))
                    memcpy(lx_key(cand, k), state + (size_t)k * LX_KW, LX_KW * sizeof(*cand));
            }
            ncand++;
        }
    }
    if (ncand == 0)
        return false;
    memcpy(next, m->cand, (size_t)W * sizeof(*next));
    for (uint32_t c = 1; c < ncand; c++) {
        const uint32_t *o = m->cand + (size_t)c * W;
        for (uint32_t k = 0; k < m->nkeys; k++) {
            uint32_t *a = lx_key(next, k);
            const uint32_t *b = o + (size_t)k * LX_KW;
            if (memcmp(a, b, LX_KW * sizeof(*a)) != 0) {
                a[W_MOD] = a[W_MOD] == b[W_MOD] ? a[W_MOD] : LX_ANY;
                a[W_V] = LX_ANY;
                a[W_DLO] = a[W_DHI] = 0;
            }
        }
        for (uint32_t i = m->nkeys * LX_KW; i < W; i++)
            if (next[i] != o[i])
                next[i] = 0;
    }
    return true;
}

/* ---- descriptions ------------------------------------------------------------------------ */

struct lx_out {
    char *p;
    uint32_t cap, len;
};

static void lx_printf(struct lx_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void lx_printf(struct lx_out *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((uint32_t)n >= o->cap - o->len) {
        o->len = o->cap - 1;
        if (o->cap > 4)
            memcpy(o->p + o->cap - 4, "...", 4);
        return;
    }
    o->len += (uint32_t)n;
}

static void lx_bytes(struct lx_out *o, const uint8_t *p, uint32_t len)
{
    lx_printf(o, "\"");
    for (uint32_t i = 0; i < len && i < 40; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            lx_printf(o, "%c", p[i]);
        else
            lx_printf(o, "\\x%02x", p[i]);
    }
    lx_printf(o, len > 40 ? "...\"" : "\"");
}

void lx_describe_cmd(const uint8_t *cmd, uint32_t len, char *buf, uint32_t cap)
{
    struct lx_out o = {buf, cap, 0};
    buf[0] = '\0';
    struct kv_cmd2_view v;
    if (kv_cmd2_decode(cmd, len, &v, NULL) != RK_OK) {
        lx_printf(&o, "(undecodable command)");
        return;
    }
    struct kv_cmd2_iter it, ai;
    if (v.flags & KV_CMD2_MULTI) {
        lx_printf(&o, "EXEC[");
        struct kv_watch w;
        kv_cmd2_watches(&v, &ai);
        bool first = true;
        while (kv_cmd2_next_watch(&ai, &w)) {
            if (first)
                lx_printf(&o, "WATCH(@%" PRIu64 ")", v.watch_index);
            lx_printf(&o, " ");
            lx_bytes(&o, w.key, w.key_len);
            lx_printf(&o, "=%" PRIu64, w.version);
            first = false;
        }
        if (!first)
            lx_printf(&o, "; ");
    }
    struct kv_op_view op;
    kv_cmd2_ops(&v, &it);
    bool first = true;
    while (kv_cmd2_next_op(&it, &op)) {
        lx_printf(&o, "%s%s", first ? "" : "; ", kv_code_name(op.code));
        first = false;
        kv_op_args(&op, &ai);
        struct kv_arg a;
        while (kv_op_next_arg(&ai, &a)) {
            lx_printf(&o, " ");
            lx_bytes(&o, a.p, a.len);
        }
        static const char *const flags[] = {"NX",  "XX",      "GT",      "LT",
                                            "GET", "KEEPTTL", "PERSIST", "REPLACE"};
        for (int f = 0; f < 8; f++) {
            if (op.flags & (1u << f))
                lx_printf(&o, " %s", flags[f]);
        }
        if ((op.flags & KV_F_EXP) || op.code == KV_C_EXPIRE)
            lx_printf(&o, " PX %" PRId64, op.num);
        else if (op.code == KV_C_INCRBY || op.code == KV_C_SETRANGE)
            lx_printf(&o, " %s%" PRId64, op.code == KV_C_SETRANGE ? "at " : "", op.num);
    }
    if (v.flags & KV_CMD2_MULTI)
        lx_printf(&o, "]");
}

void lx_describe_res(const uint8_t *res, uint32_t len, char *buf, uint32_t cap)
{
    struct lx_out o = {buf, cap, 0};
    buf[0] = '\0';
    struct kv_res_iter it;
    struct kv_res_item item;
    kv_res_begin(&it, res, len);
    int64_t left[4] = {0};
    int depth = 0;
    while (kv_res_next(&it, &item)) {
        switch (item.type) {
        case KV_RES_STATUS:
        case KV_RES_ERROR:
            lx_printf(&o, "%s%.*s", item.type == KV_RES_ERROR ? "-" : "+", (int)item.len,
                      (const char *)item.p);
            break;
        case KV_RES_INT:
            lx_printf(&o, ":%" PRId64, item.num);
            break;
        case KV_RES_BULK:
            lx_bytes(&o, item.p, item.len);
            break;
        case KV_RES_NIL:
            lx_printf(&o, "nil");
            break;
        case KV_RES_NIL_ARRAY:
            lx_printf(&o, "nil-array (aborted)");
            break;
        default:
            break;
        }
        if (item.type == KV_RES_ARRAY) {
            lx_printf(&o, "[");
            if (depth < 3)
                left[++depth] = item.num;
            if (item.num > 0)
                continue;
            lx_printf(&o, "]");
            depth--;
        }
        while (depth > 0 && --left[depth] == 0) {
            lx_printf(&o, "]");
            depth--;
        }
        if (depth > 0)
            lx_printf(&o, ", ");
    }
}
