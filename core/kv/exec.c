/*
 * exec.c — the version-2 (generic) state machine: apply of a command or a transaction, WATCH,
 * expiry, the Redis string and keyspace ops, reads outside the log, and the leader's expiry
 * sweep (kv.h, "Generic commands ...").
 *
 * Every decision uses `now`, the state machine's clock after this entry's stamp (apply) or the
 * node's read time (kv_read): never a clock of its own. Replies and error texts are Redis 7's
 * (t_string.c, db.c, expire.c), checked against a real redis-server.
 *
 * Invariants:
 *   X1  An op writes only through kv_rec_put / kv_rec_del (rec.c), so the expiry index, the key
 *       counts and the deletion indexes follow every write.
 *   X2  An op appends exactly one value to kv->res (a transaction: an array of n_ops values, or
 *       one nil array when a watch failed, and then nothing is written).
 *   X3  A value read from the store (kv_rec.val) is used before the next store call, or copied.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv_int.h"

#define ERR_NOT_INT   "ERR value is not an integer or out of range"
#define ERR_OVERFLOW  "ERR increment or decrement would overflow"
#define ERR_NOT_FLOAT "ERR value is not a valid float"
#define ERR_NAN       "ERR increment would produce NaN or Infinity"
#define ERR_TOO_BIG   "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
#define ERR_NO_KEY    "ERR no such key"
#define ERR_SAME      "ERR source and destination objects are the same"

/* The first n args of op into a[] (the rest are walked by the caller). */
static void first_args(const struct kv_op_view *op, struct kv_arg *a, uint32_t n)
{
    struct kv_cmd2_iter it;
    kv_op_args(op, &it);
    for (uint32_t i = 0; i < n; i++) {
        bool got = kv_op_next_arg(&it, &a[i]);
        RK_ASSERT(got); /* kv_op_check: the op's arity */
    }
}

/* The deadline (Unix ms) an expiry option asks for, relative times from now: true, or false
 * when it overflows (Redis: "invalid expire time"). *when may be <= now: already expired. */
static bool deadline_for(int64_t num, uint16_t flags, uint64_t now, int64_t *when)
{
    int64_t ms = num;
    if (!(flags & KV_F_MS))
        ms = num * 1000; /* kv_op_check: no overflow */
    if (flags & KV_F_ABS) {
        *when = ms;
        return true;
    }
    if (now > (uint64_t)INT64_MAX || ms > INT64_MAX - (int64_t)now)
        return false;
    *when = ms + (int64_t)now;
    return true;
}

static void expire_error(struct kv *kv, const char *cmd)
{
    char text[80];
    snprintf(text, sizeof(text), "ERR invalid expire time in '%s' command", cmd);
    res_error(&kv->res, text);
}

static const char *expire_name(uint16_t flags)
{
    if (flags & KV_F_ABS)
        return (flags & KV_F_MS) ? "pexpireat" : "expireat";
    return (flags & KV_F_MS) ? "pexpire" : "expire";
}

/* An int64 as text; returns its length. */
static uint32_t i64_text(int64_t v, char buf[KV_INT64_TEXT_BYTES + 1])
{
    int n = snprintf(buf, KV_INT64_TEXT_BYTES + 1, "%" PRId64, v);
    RK_ASSERT(n > 0 && n <= (int)KV_INT64_TEXT_BYTES);
    return (uint32_t)n;
}

/* ---- strings ------------------------------------------------------------------------------ */

static int op_set(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[2];
    first_args(op, a, 2);
    int64_t when = 0;
    if ((op->flags & KV_F_EXP) && !deadline_for(op->num, op->flags, now, &when)) {
        expire_error(kv, !(op->flags & KV_F_SETEX) ? "set"
                         : (op->flags & KV_F_MS)   ? "psetex"
                                                   : "setex");
        return RK_OK;
    }
    struct kv_rec rec;
    memset(&rec, 0, sizeof(rec));
    int existed = KV_EXISTED_UNKNOWN;
    if (op->flags & (KV_F_NX | KV_F_XX | KV_F_GET | KV_F_KEEPTTL)) {
        /* A plain SET needs nothing of the old record: no read (a disk read in Bitcask). */
        int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
        if (rc != RK_OK)
            return rc;
        existed = rec.exists;
    }
    bool cond_fails = ((op->flags & KV_F_NX) && rec.live) || ((op->flags & KV_F_XX) && !rec.live);
    if (op->flags & KV_F_GET) {
        if (rec.live)
            res_bulk(&kv->res, rec.val, rec.val_len); /* copied before the put (X3) */
        else
            res_nil(&kv->res);
    }
    if (cond_fails) {
        if (!(op->flags & KV_F_GET))
            res_nil(&kv->res);
        return RK_OK;
    }
    uint64_t deadline = 0;
    if (op->flags & KV_F_EXP)
        deadline = when <= (int64_t)now ? now : (uint64_t)when; /* <= now: removed (rec.c) */
    else if ((op->flags & KV_F_KEEPTTL) && rec.live)
        deadline = rec.deadline_ms;
    int rc =
        kv_rec_put(kv, index, op->db, a[0].p, a[0].len, a[1].p, a[1].len, deadline, now, existed);
    if (rc == RK_OK && !(op->flags & KV_F_GET))
        res_status(&kv->res, "OK");
    return rc;
}

static int op_setnx(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[2];
    first_args(op, a, 2);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    if (rec.live) {
        res_int(&kv->res, 0);
        return RK_OK;
    }
    rc = kv_rec_put(kv, index, op->db, a[0].p, a[0].len, a[1].p, a[1].len, 0, now, rec.exists);
    if (rc == RK_OK)
        res_int(&kv->res, 1);
    return rc;
}

static int op_getdel(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[1];
    first_args(op, a, 1);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    if (!rec.live) {
        res_nil(&kv->res);
        return RK_OK;
    }
    res_bulk(&kv->res, rec.val, rec.val_len);
    bool existed = false;
    return kv_rec_del(kv, index, op->db, a[0].p, a[0].len, &existed);
}

static int op_getex(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[1];
    first_args(op, a, 1);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    if (!rec.live) {
        res_nil(&kv->res); /* Redis looks the key up before it checks the time */
        return RK_OK;
    }
    int64_t when = 0;
    if ((op->flags & KV_F_EXP) && !deadline_for(op->num, op->flags, now, &when)) {
        expire_error(kv, "getex");
        return RK_OK;
    }
    res_bulk(&kv->res, rec.val, rec.val_len);
    uint64_t deadline = rec.deadline_ms;
    if (op->flags & KV_F_EXP)
        deadline = when <= (int64_t)now ? now : (uint64_t)when;
    else if (op->flags & KV_F_PERSIST)
        deadline = 0;
    if (deadline == rec.deadline_ms)
        return RK_OK; /* a plain GETEX, or PERSIST of a key without a deadline: no write */
    return kv_rec_put(kv, index, op->db, a[0].p, a[0].len, rec.val, rec.val_len, deadline, now,
                      true);
}

static int op_incrby(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[1];
    first_args(op, a, 1);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    int64_t old = 0, sum = 0;
    if (rec.live && !kv_parse_int64(rec.val, rec.val_len, &old)) {
        res_error(&kv->res, ERR_NOT_INT);
        return RK_OK;
    }
    if (__builtin_add_overflow(old, op->num, &sum)) {
        res_error(&kv->res, ERR_OVERFLOW);
        return RK_OK;
    }
    char text[KV_INT64_TEXT_BYTES + 1];
    uint32_t n = i64_text(sum, text);
    /* Redis's INCR keeps the time to live. */
    rc = kv_rec_put(kv, index, op->db, a[0].p, a[0].len, (const uint8_t *)text, n,
                    rec.live ? rec.deadline_ms : 0, now, rec.exists);
    if (rc == RK_OK)
        res_int(&kv->res, sum);
    return rc;
}

#define LD_TEXT_BYTES 5120u /* Redis's MAX_LONG_DOUBLE_CHARS */

/* Redis's string2ld: strtold over the whole text, no leading space, no NaN, and no overflow or
 * underflow (Redis reads errno; core reads none: an infinite result from finite text, or zero
 * from text with a non-zero digit before its exponent, is that range error). */
static bool parse_ld(const uint8_t *p, uint32_t len, long double *out)
{
    char buf[LD_TEXT_BYTES];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, p, len);
    buf[len] = '\0';
    if (buf[0] == ' ' || (buf[0] >= '\t' && buf[0] <= '\r'))
        return false;
    char *end = NULL;
    long double v = strtold(buf, &end);
    /* Every byte parsed, as Redis's string2ld: a NUL inside the value ends the C string early
     * (a value SETRANGE padded with zero bytes is not a float). */
    if (end == NULL || *end != '\0' || (size_t)(end - buf) != len || isnan(v))
        return false;
    bool has_inf_text = false, nonzero_mantissa = false;
    for (uint32_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == 'i' || c == 'I')
            has_inf_text = true;
        if (c == 'e' || c == 'E' || c == 'p' || c == 'P')
            break;
        if (c >= '1' && c <= '9')
            nonzero_mantissa = true;
    }
    if (isinf(v) && !has_inf_text)
        return false; /* overflow */
    if (v == 0 && nonzero_mantissa)
        return false; /* underflow */
    *out = v;
    return true;
}

/* Redis's ld2string(LD_STR_HUMAN): "%.17Lf", trailing zeros (and a bare '.') dropped, "-0" as
 * "0". Returns the length, 0 when it does not fit. */
static uint32_t ld_text(long double v, char *buf, size_t cap)
{
    int l = snprintf(buf, cap, "%.17Lf", v);
    if (l < 0 || (size_t)l + 1 > cap)
        return 0;
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.')
            l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return (uint32_t)l;
}

static int op_incrbyfloat(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[2];
    first_args(op, a, 2);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    long double old = 0, incr = 0;
    if ((rec.live && !parse_ld(rec.val, rec.val_len, &old)) || !parse_ld(a[1].p, a[1].len, &incr)) {
        res_error(&kv->res, ERR_NOT_FLOAT);
        return RK_OK;
    }
    long double sum = old + incr;
    if (isnan(sum) || isinf(sum)) {
        res_error(&kv->res, ERR_NAN);
        return RK_OK;
    }
    char local[LD_TEXT_BYTES];
    uint32_t n = ld_text(sum, local, sizeof(local));
    if (n == 0) {
        res_error(&kv->res, ERR_NAN);
        return RK_OK;
    }
    rc = kv_rec_put(kv, index, op->db, a[0].p, a[0].len, (const uint8_t *)local, n,
                    rec.live ? rec.deadline_ms : 0, now, rec.exists);
    if (rc == RK_OK)
        res_bulk(&kv->res, (const uint8_t *)local, n);
    return rc;
}

/* old (or nothing) with add written at offset, into kv->tmp2: the new value. */
static bool compose(struct kv *kv, const uint8_t *old, uint32_t old_len, uint64_t offset,
                    const uint8_t *add, uint32_t add_len, uint32_t *out_len)
{
    uint64_t end = offset + add_len;
    uint64_t len = end > old_len ? end : old_len;
    RK_ASSERT(len <= KV_MAX_VALUE_BYTES);
    if (!rk_grow(kv->alloc, (void **)&kv->tmp2.buf, &kv->tmp2.cap, len == 0 ? 1 : (size_t)len, 1))
        return false;
    uint8_t *v = kv->tmp2.buf;
    if (old_len > 0)
        memcpy(v, old, old_len);
    if (offset > old_len)
        memset(v + old_len, 0, (size_t)(offset - old_len));
    if (add_len > 0)
        memcpy(v + offset, add, add_len);
    *out_len = (uint32_t)len;
    return true;
}

static int op_append_setrange(struct kv *kv, uint64_t index, const struct kv_op_view *op,
                              uint64_t now)
{
    struct kv_arg a[2];
    first_args(op, a, 2);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    uint32_t old_len = rec.live ? rec.val_len : 0;
    bool append = op->code == KV_C_APPEND;
    uint64_t offset = append ? old_len : (uint64_t)op->num;
    if (!append && a[1].len == 0) {
        res_int(&kv->res, old_len); /* Redis: nothing to set, nothing created */
        return RK_OK;
    }
    if (offset + a[1].len > KV_MAX_VALUE_BYTES) {
        res_error(&kv->res, ERR_TOO_BIG);
        return RK_OK;
    }
    uint32_t len = 0;
    if (!compose(kv, rec.live ? rec.val : NULL, old_len, offset, a[1].p, a[1].len, &len))
        return RK_ENOMEM;
    /* APPEND and SETRANGE change the string in place: the time to live stays. */
    rc = kv_rec_put(kv, index, op->db, a[0].p, a[0].len, kv->tmp2.buf, len,
                    rec.live ? rec.deadline_ms : 0, now, rec.exists);
    if (rc == RK_OK)
        res_int(&kv->res, len);
    return rc;
}

static int op_mset(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_cmd2_iter it;
    struct kv_arg k, v;
    struct kv_rec rec;
    if (op->code == KV_C_MSETNX) {
        kv_op_args(op, &it);
        while (kv_op_next_arg(&it, &k) && kv_op_next_arg(&it, &v)) {
            int rc = kv_rec_get(kv, op->db, k.p, k.len, now, &rec);
            if (rc != RK_OK)
                return rc;
            if (rec.live) {
                res_int(&kv->res, 0);
                return RK_OK;
            }
        }
    }
    kv_op_args(op, &it);
    while (kv_op_next_arg(&it, &k) && kv_op_next_arg(&it, &v)) {
        /* No read: kv_rec_put looks up only what a key count needs. */
        int rc = kv_rec_put(kv, index, op->db, k.p, k.len, v.p, v.len, 0, now, KV_EXISTED_UNKNOWN);
        if (rc != RK_OK)
            return rc;
    }
    if (op->code == KV_C_MSETNX)
        res_int(&kv->res, 1);
    else
        res_status(&kv->res, "OK");
    return RK_OK;
}

/* ---- keyspace ----------------------------------------------------------------------------- */

static int op_del(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_cmd2_iter it;
    struct kv_arg k;
    int64_t n = 0;
    kv_op_args(op, &it);
    while (kv_op_next_arg(&it, &k)) {
        struct kv_rec rec;
        int rc = kv_rec_get(kv, op->db, k.p, k.len, now, &rec);
        if (rc != RK_OK)
            return rc;
        if (!rec.exists)
            continue;
        bool existed = false;
        rc = kv_rec_del(kv, index, op->db, k.p, k.len, &existed);
        if (rc != RK_OK)
            return rc;
        n += rec.live ? 1 : 0; /* an expired key was already gone for Redis */
    }
    res_int(&kv->res, n);
    return RK_OK;
}

static int op_expire(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[1];
    first_args(op, a, 1);
    int64_t when = 0;
    if (!deadline_for(op->num, op->flags, now, &when)) {
        expire_error(kv, expire_name(op->flags));
        return RK_OK;
    }
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    uint64_t cur = rec.live ? rec.deadline_ms : 0; /* 0: none, Redis's -1 (infinite) */
    bool refused = !rec.live || ((op->flags & KV_F_NX) && cur != 0) ||
                   ((op->flags & KV_F_XX) && cur == 0) ||
                   ((op->flags & KV_F_GT) && (cur == 0 || when <= (int64_t)cur)) ||
                   ((op->flags & KV_F_LT) && cur != 0 && when >= (int64_t)cur);
    if (refused) {
        res_int(&kv->res, 0);
        return RK_OK;
    }
    uint64_t deadline = when <= (int64_t)now ? now : (uint64_t)when; /* <= now: removed */
    rc = kv_rec_put(kv, index, op->db, a[0].p, a[0].len, rec.val, rec.val_len, deadline, now, true);
    if (rc == RK_OK)
        res_int(&kv->res, 1);
    return rc;
}

static int op_persist(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[1];
    first_args(op, a, 1);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    if (!rec.live || rec.deadline_ms == 0) {
        res_int(&kv->res, 0);
        return RK_OK;
    }
    rc = kv_rec_put(kv, index, op->db, a[0].p, a[0].len, rec.val, rec.val_len, 0, now, true);
    if (rc == RK_OK)
        res_int(&kv->res, 1);
    return rc;
}

static bool same_key(struct kv_arg a, struct kv_arg b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int op_rename(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[2];
    first_args(op, a, 2);
    bool nx = op->code == KV_C_RENAMENX;
    struct kv_rec src, dst;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &src);
    if (rc != RK_OK)
        return rc;
    if (!src.live) {
        res_error(&kv->res, ERR_NO_KEY);
        return RK_OK;
    }
    if (same_key(a[0], a[1])) {
        if (nx)
            res_int(&kv->res, 0);
        else
            res_status(&kv->res, "OK");
        return RK_OK;
    }
    /* The source's value is copied before the destination is read (X3). */
    uint32_t len = 0;
    if (!compose(kv, src.val, src.val_len, 0, NULL, 0, &len))
        return RK_ENOMEM;
    uint64_t deadline = src.deadline_ms;
    rc = kv_rec_get(kv, op->db, a[1].p, a[1].len, now, &dst);
    if (rc != RK_OK)
        return rc;
    if (nx && dst.live) {
        res_int(&kv->res, 0);
        return RK_OK;
    }
    rc = kv_rec_put(kv, index, op->db, a[1].p, a[1].len, kv->tmp2.buf, len, deadline, now,
                    dst.exists);
    bool existed = false;
    if (rc == RK_OK)
        rc = kv_rec_del(kv, index, op->db, a[0].p, a[0].len, &existed);
    if (rc == RK_OK) {
        if (nx)
            res_int(&kv->res, 1);
        else
            res_status(&kv->res, "OK");
    }
    return rc;
}

static int op_copy_move(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    bool move = op->code == KV_C_MOVE;
    struct kv_arg a[2];
    first_args(op, a, move ? 1 : 2);
    if (move)
        a[1] = a[0];
    uint8_t dst_db = (uint8_t)op->num;
    if (dst_db == op->db && same_key(a[0], a[1])) {
        res_error(&kv->res, ERR_SAME);
        return RK_OK;
    }
    struct kv_rec src, dst;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &src);
    if (rc != RK_OK)
        return rc;
    if (!src.live) {
        res_int(&kv->res, 0);
        return RK_OK;
    }
    uint32_t len = 0;
    if (!compose(kv, src.val, src.val_len, 0, NULL, 0, &len))
        return RK_ENOMEM;
    src.val = NULL; /* X3: its copy is kv->tmp2 */
    src.val_len = 0;
    rc = kv_rec_get(kv, dst_db, a[1].p, a[1].len, now, &dst);
    if (rc != RK_OK)
        return rc;
    if (dst.live && (move || !(op->flags & KV_F_REPLACE))) {
        res_int(&kv->res, 0);
        return RK_OK;
    }
    rc = kv_rec_put(kv, index, dst_db, a[1].p, a[1].len, kv->tmp2.buf, len, src.deadline_ms, now,
                    dst.exists);
    bool existed = false;
    if (rc == RK_OK && move)
        rc = kv_rec_del(kv, index, op->db, a[0].p, a[0].len, &existed);
    if (rc == RK_OK)
        res_int(&kv->res, 1);
    return rc;
}

struct key_collect {
    struct kv *kv;
    uint8_t lo, hi; /* store key prefixes to take: [lo, hi] */
    bool oom;
};

static bool collect_user_key(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                             uint32_t val_len)
{
    (void)val;
    (void)val_len;
    struct key_collect *c = ctx;
    if (key_len == 0 || key[0] < c->lo || key[0] > c->hi)
        return true;
    struct kv_resbuf *b = &c->kv->tmp2;
    if (!rk_grow(c->kv->alloc, (void **)&b->buf, &b->cap, b->len + 4 + key_len, 1)) {
        c->oom = true;
        return false;
    }
    for (int i = 0; i < 4; i++)
        b->buf[b->len + i] = (uint8_t)(key_len >> (8 * i));
    memcpy(b->buf + b->len + 4, key, key_len);
    b->len += 4 + key_len;
    return true;
}

/* FLUSHDB / FLUSHALL: every user key of the db(s), collected first (no store write while a scan
 * runs), then removed in this one batch. O(keys). */
static int op_flush(struct kv *kv, uint64_t index, const struct kv_op_view *op)
{
    bool all = op->code == KV_C_FLUSHALL;
    uint8_t phys = kv->meta.dbmap[op->db]; /* the store prefix of the SELECTed db (SWAPDB) */
    struct key_collect c = {.kv = kv,
                            .lo = (uint8_t)(KV_KEY_USER + (all ? 0 : phys)),
                            .hi = (uint8_t)(KV_KEY_USER + (all ? KV_DBS - 1 : phys))};
    resbuf_reset(&kv->tmp2);
    struct kv_store *st = kv->store;
    int rc = st->ops->scan_keys != NULL ? st->ops->scan_keys(st, collect_user_key, &c)
                                        : st->ops->scan(st, collect_user_key, &c);
    if (rc == RK_OK && c.oom)
        rc = RK_ENOMEM;
    for (size_t pos = 0; rc == RK_OK && pos < kv->tmp2.len;) {
        const uint8_t *p = kv->tmp2.buf + pos;
        uint32_t kl =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        bool existed = false;
        rc = kv_rec_del_phys(kv, index, (uint8_t)(p[4] - KV_KEY_USER), p + 5, kl - 1, &existed);
        pos += 4 + (size_t)kl;
    }
    if (rc == RK_OK)
        res_status(&kv->res, "OK");
    return rc;
}

/* SWAPDB db num: O(1), the two logical dbs exchange their physical ones (kv.h DATABASES). */
static int op_swapdb(struct kv *kv, uint64_t index, const struct kv_op_view *op)
{
    uint8_t a = op->db, b = (uint8_t)op->num;
    if (a != b) {
        uint8_t t = kv->meta.dbmap[a];
        kv->meta.dbmap[a] = kv->meta.dbmap[b];
        kv->meta.dbmap[b] = t;
        kv->meta.swap_index[a] = index;
        kv->meta.swap_index[b] = index;
        kv->meta_dirty = true;
    }
    res_status(&kv->res, "OK");
    return RK_OK;
}

/* The leader's sweep: removes each key whose deadline is still <= now (kv.h TIME). */
static int op_purge(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_cmd2_iter it;
    struct kv_arg k;
    int64_t n = 0;
    kv_op_args(op, &it);
    while (kv_op_next_arg(&it, &k)) {
        uint8_t db = (uint8_t)(k.p[0] - KV_KEY_USER); /* physical: a store key */
        struct kv_rec rec;
        int rc = kv_rec_get_phys(kv, db, k.p + 1, k.len - 1, now, &rec);
        if (rc != RK_OK)
            return rc;
        if (!rec.exists || rec.live)
            continue; /* rewritten since the leader looked, or already gone */
        bool existed = false;
        rc = kv_rec_del_phys(kv, index, db, k.p + 1, k.len - 1, &existed);
        if (rc != RK_OK)
            return rc;
        n++;
    }
    res_int(&kv->res, n);
    return RK_OK;
}

/* The scripts of redis-py's Lock and of Redlock (kv.h): act only while the key holds token. */
static int op_if_token(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_arg a[2];
    first_args(op, a, 2);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    if (!rec.live || !same_key((struct kv_arg){rec.val, rec.val_len}, a[1])) {
        res_int(&kv->res, 0);
        return RK_OK;
    }
    if (op->code == KV_C_DELIFEQ) {
        bool existed = false;
        rc = kv_rec_del(kv, index, op->db, a[0].p, a[0].len, &existed);
        if (rc == RK_OK)
            res_int(&kv->res, 1);
        return rc;
    }
    if ((op->flags & KV_F_XX) && rec.deadline_ms == 0) {
        res_int(&kv->res, 0); /* Lock.extend: "if expiration < 0 then return 0" */
        return RK_OK;
    }
    int64_t ttl = op->num, when = 0;
    if ((op->flags & KV_F_ADD) && rec.deadline_ms != 0 &&
        __builtin_add_overflow(ttl, (int64_t)(rec.deadline_ms - now), &ttl)) {
        expire_error(kv, "pexpire");
        return RK_OK;
    }
    if (!deadline_for(ttl, KV_F_MS, now, &when)) {
        expire_error(kv, "pexpire");
        return RK_OK;
    }
    uint64_t deadline = when <= (int64_t)now ? now : (uint64_t)when; /* <= now: removed */
    rc = kv_rec_put(kv, index, op->db, a[0].p, a[0].len, rec.val, rec.val_len, deadline, now, true);
    if (rc == RK_OK)
        res_int(&kv->res, 1);
    return rc;
}

/* ---- reads -------------------------------------------------------------------------------- */

/* Redis's getrangeCommand: start and end inclusive, negative from the end, clamped. */
static void getrange(struct kv *kv, int64_t start, struct kv_arg end_arg, const struct kv_rec *rec)
{
    int64_t end = 0;
    for (int i = 0; i < 8; i++)
        end |= (int64_t)((uint64_t)end_arg.p[i] << (8 * i));
    int64_t len = rec->live ? rec->val_len : 0;
    if (!rec->live || (start < 0 && end < 0 && start > end)) {
        res_bulk(&kv->res, NULL, 0);
        return;
    }
    if (start < 0)
        start = len + start;
    if (end < 0)
        end = len + end;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= len)
        end = len - 1;
    if (start > end || len == 0)
        res_bulk(&kv->res, NULL, 0);
    else
        res_bulk(&kv->res, rec->val + start, (uint32_t)(end - start + 1));
}

static int op_read(struct kv *kv, const struct kv_op_view *op, uint64_t now)
{
    struct kv_cmd2_iter it;
    struct kv_arg k;
    struct kv_rec rec;
    int rc = RK_OK;
    switch (op->code) {
    case KV_C_MGET:
    case KV_C_EXISTS: {
        bool mget = op->code == KV_C_MGET;
        int64_t n = 0;
        if (mget)
            res_array(&kv->res, op->argc);
        kv_op_args(op, &it);
        while (rc == RK_OK && kv_op_next_arg(&it, &k)) {
            rc = kv_rec_get(kv, op->db, k.p, k.len, now, &rec);
            if (rc == RK_OK && mget && rec.live)
                res_bulk(&kv->res, rec.val, rec.val_len);
            else if (rc == RK_OK && mget)
                res_nil(&kv->res);
            n += rc == RK_OK && rec.live ? 1 : 0;
        }
        if (rc == RK_OK && !mget)
            res_int(&kv->res, n);
        return rc;
    }
    case KV_C_DBSIZE:
        res_int(&kv->res, (int64_t)kv_dbsize(kv, op->db));
        return RK_OK;
    case KV_C_GETBIT:
    case KV_C_BITCOUNT:
    case KV_C_BITPOS:
        return kv_bitops_read(kv, op, now);
    case KV_C_WATCH:
        /* The watch point and each key's version, at one moment (kv.h WATCH). */
        res_array(&kv->res, op->argc + 1);
        res_int(&kv->res, (int64_t)kv->applied_index);
        kv_op_args(op, &it);
        while (rc == RK_OK && kv_op_next_arg(&it, &k)) {
            rc = kv_rec_get(kv, op->db, k.p, k.len, now, &rec);
            res_int(&kv->res, rc == RK_OK && rec.live ? (int64_t)rec.mod_index : 0);
        }
        return rc;
    default:
        break;
    }
    struct kv_arg a[2];
    first_args(op, a, op->code == KV_C_GETRANGE ? 2 : 1);
    rc = kv_rec_get(kv, op->db, a[0].p, a[0].len, now, &rec);
    if (rc != RK_OK)
        return rc;
    switch (op->code) {
    case KV_C_GET:
        if (rec.live)
            res_bulk(&kv->res, rec.val, rec.val_len);
        else
            res_nil(&kv->res);
        return RK_OK;
    case KV_C_STRLEN:
        res_int(&kv->res, rec.live ? rec.val_len : 0);
        return RK_OK;
    case KV_C_TYPE:
        res_status(&kv->res, rec.live ? "string" : "none");
        return RK_OK;
    case KV_C_TTL: {
        if (!rec.live || rec.deadline_ms == 0) {
            res_int(&kv->res, rec.live ? -1 : -2);
            return RK_OK;
        }
        int64_t t =
            (op->flags & KV_F_ABS) ? (int64_t)rec.deadline_ms : (int64_t)(rec.deadline_ms - now);
        if (t < 0)
            t = 0;
        res_int(&kv->res, (op->flags & KV_F_MS) ? t : (t + 500) / 1000);
        return RK_OK;
    }
    case KV_C_GETRANGE:
        getrange(kv, op->num, a[1], &rec);
        return RK_OK;
    }
    RK_ASSERT(!"a read op without a case");
    return RK_OK;
}

int kv_exec_op(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    switch (op->code) {
    case KV_C_SET:
        return op_set(kv, index, op, now);
    case KV_C_SETNX:
        return op_setnx(kv, index, op, now);
    case KV_C_GETDEL:
        return op_getdel(kv, index, op, now);
    case KV_C_GETEX:
        return op_getex(kv, index, op, now);
    case KV_C_DEL:
        return op_del(kv, index, op, now);
    case KV_C_INCRBY:
        return op_incrby(kv, index, op, now);
    case KV_C_INCRBYFLOAT:
        return op_incrbyfloat(kv, index, op, now);
    case KV_C_APPEND:
    case KV_C_SETRANGE:
        return op_append_setrange(kv, index, op, now);
    case KV_C_MSET:
    case KV_C_MSETNX:
        return op_mset(kv, index, op, now);
    case KV_C_EXPIRE:
        return op_expire(kv, index, op, now);
    case KV_C_PERSIST:
        return op_persist(kv, index, op, now);
    case KV_C_RENAME:
    case KV_C_RENAMENX:
        return op_rename(kv, index, op, now);
    case KV_C_COPY:
    case KV_C_MOVE:
        return op_copy_move(kv, index, op, now);
    case KV_C_FLUSHDB:
    case KV_C_FLUSHALL:
        return op_flush(kv, index, op);
    case KV_C_SWAPDB:
        return op_swapdb(kv, index, op);
    case KV_C_PURGE:
        return op_purge(kv, index, op, now);
    case KV_C_DELIFEQ:
    case KV_C_PEXPIREIFEQ:
        return op_if_token(kv, index, op, now);
    case KV_C_ACL_SETUSER:
    case KV_C_ACL_DELUSER:
        return kv_acl_exec(kv, index, op);
    case KV_C_SETBIT:
    case KV_C_BITOP:
        return kv_bitops_exec(kv, index, op, now);
    default:
        break;
    }
    RK_ASSERT(op->code < KV_C_SET); /* kv_cmd2_decode: a known code */
    return op_read(kv, op, now);
}

/* ---- apply -------------------------------------------------------------------------------- */

/* WATCH (kv.h): whether every watched key is as the client saw it at the watch point. */
static int watches_hold(struct kv *kv, const struct kv_cmd2_view *v, uint64_t now, bool *ok)
{
    *ok = true;
    struct kv_cmd2_iter it;
    struct kv_watch w;
    kv_cmd2_watches(v, &it);
    while (*ok && kv_cmd2_next_watch(&it, &w)) {
        struct kv_rec rec;
        int rc = kv_rec_get(kv, w.db, w.key, w.key_len, now, &rec);
        if (rc != RK_OK)
            return rc;
        if (w.version != 0)
            *ok = rec.live && rec.mod_index == w.version;
        else
            *ok = !rec.live && !(rec.exists && rec.mod_index > v->watch_index) &&
                  kv->meta.del_index[kv->meta.dbmap[w.db]] <= v->watch_index;
        /* SWAPDB touches the watched keys that exist (Redis: touchAllWatchedKeysInDb): one
         * that existed at the WATCH or exists now. */
        if (*ok && kv->meta.swap_index[w.db] > v->watch_index && (w.version != 0 || rec.live))
            *ok = false;
    }
    return RK_OK;
}

/* The ops of v against the store, their results into kv->res (X2). */
static int run_ops(struct kv *kv, uint64_t index, const struct kv_cmd2_view *v, uint64_t now)
{
    if (v->flags & KV_CMD2_MULTI) {
        bool ok = true;
        int rc = watches_hold(kv, v, now, &ok);
        if (rc != RK_OK)
            return rc;
        if (!ok) {
            res_nil_array(&kv->res); /* EXEC aborted: nothing of it is applied */
            return RK_OK;
        }
        res_array(&kv->res, v->n_ops);
    }
    struct kv_cmd2_iter it;
    struct kv_op_view op;
    kv_cmd2_ops(v, &it);
    while (kv_cmd2_next_op(&it, &op)) {
        int rc = kv_exec_op(kv, index, &op, now);
        if (rc != RK_OK)
            return rc;
    }
    return RK_OK;
}

int kv_apply_v2(struct kv *kv, uint64_t index, const uint8_t *data, uint32_t len,
                struct kv_result *out)
{
    struct kv_cmd2_view v;
    if (kv_cmd2_decode(data, len, &v, &kv->last_err) != RK_OK) {
        out->status = KV_BAD_COMMAND; /* deterministic on every replica; nothing written */
        kv->applied_index = index;
        return RK_OK;
    }
    out->op = KV_OP_CMD;
    out->client_id = v.client_id;
    out->seq = v.seq;
    uint32_t s = v.client_id == 0 ? KV_NIL : kv_session_find(kv, v.client_id);
    if (s != KV_NIL && v.seq <= kv->pool[s].last_seq)
        return kv_session_retry_cmd(kv, index, s, v.seq, out);

    struct kv_meta saved = kv->meta;
    /* TIME (kv.h): the clock never goes back, whatever the stamp of a new leader. */
    if (v.time_ms > kv->meta.clock_ms) {
        kv->meta.clock_ms = v.time_ms;
        kv->meta_dirty = true;
    }
    uint64_t now = kv->meta.clock_ms;
    /* The last command's result is no longer anyone's (kv_result.val: until the next call). */
    resbuf_trim(&kv->res, KV_SCRATCH_KEEP_BYTES);
    int rc = run_ops(kv, index, &v, now);
    if (rc == RK_OK && kv->res.oom)
        rc = RK_ENOMEM;
    RK_ASSERT_SLOW(rc != RK_OK || kv_res_check(kv->res.buf, kv->res.len, NULL) == RK_OK);
    uint64_t evicted = 0;
    if (rc == RK_OK && v.client_id != 0) {
        rc =
            kv_session_write_cmd(kv, index, v.client_id, v.seq, kv->res.buf, (uint32_t)kv->res.len);
        if (rc == RK_OK)
            rc = kv_session_evict_for(kv, index, s, &evicted);
    }
    if (rc == RK_OK && kv->meta_dirty)
        rc = kv_meta_write(kv, index, &kv->meta);
    if (rc == RK_OK)
        rc = kv->store->ops->end_batch(kv->store, index);
    kv->meta_dirty = false;
    resbuf_trim(&kv->tmp, KV_SCRATCH_KEEP_BYTES);
    resbuf_trim(&kv->tmp2, KV_SCRATCH_KEEP_BYTES);
    if (rc != RK_OK) {
        /* Not retryable (kv.h): the caller stops; memory other than the clock may be off. */
        kv->meta = saved;
        out->status = KV_STORE_ERROR;
        out->err = rc;
        return rc;
    }
    if (v.client_id != 0)
        kv_session_applied(kv, s, v.client_id, v.seq, KV_OP_CMD, index, evicted);
    kv->applied_index = index;
    out->status = KV_OK;
    out->val = kv->res.buf;
    out->val_len = (uint32_t)kv->res.len;
    return RK_OK;
}

/* ---- outside the log ---------------------------------------------------------------------- */

int kv_read(struct kv *kv, const struct kv_op2 *op, const uint8_t **res, uint32_t *res_len)
{
    RK_ASSERT(kv != NULL && op != NULL);
    RK_ASSERT(op->code < KV_C_SET);
    RK_ASSERT(kv_op_check(op, NULL) == RK_OK);
    /* The args as a checked view would hold them, packed in kv->tmp (reads write nothing). */
    resbuf_reset(&kv->tmp);
    size_t need = 0;
    for (uint32_t i = 0; i < op->argc; i++)
        need += 4 + (size_t)op->argv[i].len;
    if (!rk_grow(kv->alloc, (void **)&kv->tmp.buf, &kv->tmp.cap, need == 0 ? 1 : need, 1))
        return RK_ENOMEM;
    size_t pos = 0;
    for (uint32_t i = 0; i < op->argc; i++) {
        uint32_t n = op->argv[i].len;
        for (int b = 0; b < 4; b++)
            kv->tmp.buf[pos + b] = (uint8_t)(n >> (8 * b));
        if (n > 0)
            memcpy(kv->tmp.buf + pos + 4, op->argv[i].p, n);
        pos += 4 + n;
    }
    struct kv_op_view v = {.code = op->code,
                           .db = op->db,
                           .flags = op->flags,
                           .num = op->num,
                           .argc = op->argc,
                           .args = kv->tmp.buf,
                           .args_len = need};
    resbuf_reset(&kv->res);
    int rc = op_read(kv, &v, kv_read_now(kv));
    if (rc == RK_OK && kv->res.oom)
        rc = RK_ENOMEM;
    if (rc != RK_OK)
        return rc;
    *res = kv->res.buf;
    *res_len = (uint32_t)kv->res.len;
    return RK_OK;
}

int kv_read_cmd(struct kv *kv, const uint8_t *data, size_t len, const uint8_t **res,
                uint32_t *res_len)
{
    RK_ASSERT(kv != NULL && res != NULL && res_len != NULL);
    struct kv_cmd2_view v;
    if (kv_cmd2_decode(data, len, &v, &kv->last_err) != RK_OK || (v.flags & KV_CMD2_MULTI))
        return RK_EINVAL;
    struct kv_cmd2_iter it;
    struct kv_op_view op;
    kv_cmd2_ops(&v, &it);
    bool got = kv_cmd2_next_op(&it, &op);
    RK_ASSERT(got); /* a plain command has one op */
    if (op.code >= KV_C_SET)
        return RK_EINVAL;
    resbuf_reset(&kv->res);
    int rc = op_read(kv, &op, kv_read_now(kv));
    if (rc == RK_OK && kv->res.oom)
        rc = RK_ENOMEM;
    if (rc != RK_OK)
        return rc;
    *res = kv->res.buf;
    *res_len = (uint32_t)kv->res.len;
    return RK_OK;
}

int kv_watch_version(struct kv *kv, uint8_t db, const uint8_t *key, uint32_t key_len,
                     uint64_t *version)
{
    RK_ASSERT(kv != NULL && version != NULL);
    RK_ASSERT(db < KV_DBS);
    *version = 0;
    if (key_len > KV_MAX_KEY_BYTES)
        return RK_OK;
    struct kv_rec rec;
    int rc = kv_rec_get(kv, db, key, key_len, kv_read_now(kv), &rec);
    if (rc == RK_OK && rec.live)
        *version = rec.mod_index;
    return rc;
}

struct sweep_ctx {
    uint64_t now;
    uint32_t max, n;
    struct kv_arg args[KV_PURGE_MAX];
};

static bool sweep_take(void *ctx, const uint8_t *dbkey, uint32_t len, uint64_t deadline)
{
    struct sweep_ctx *c = ctx;
    if (deadline > c->now)
        return true;
    c->args[c->n++] = (struct kv_arg){.p = dbkey, .len = len};
    return c->n < c->max;
}

int kv_expired_command(struct kv *kv, uint64_t now_ms, uint32_t max, uint32_t budget,
                       const uint8_t **cmd, size_t *cmd_len, uint32_t *n)
{
    RK_ASSERT(kv != NULL && cmd != NULL && cmd_len != NULL && n != NULL);
    RK_ASSERT(max >= 1 && max <= KV_PURGE_MAX);
    *cmd = NULL;
    *cmd_len = 0;
    *n = 0;
    struct sweep_ctx c = {.now = now_ms, .max = max};
    exptab_sweep(&kv->exp, budget, sweep_take, &c);
    if (c.n == 0)
        return RK_OK;
    struct kv_op2 op = {.code = KV_C_PURGE, .argc = c.n, .argv = c.args};
    struct kv_cmd2 cm = {.n_ops = 1, .ops = &op};
    size_t size = kv_cmd2_size(&cm);
    if (!rk_grow(kv->alloc, (void **)&kv->tmp2.buf, &kv->tmp2.cap, size, 1))
        return RK_ENOMEM;
    int rc = kv_cmd2_encode(&cm, kv->tmp2.buf, kv->tmp2.cap, cmd_len);
    RK_ASSERT(rc == RK_OK);
    *cmd = kv->tmp2.buf;
    *n = c.n;
    return RK_OK;
}
