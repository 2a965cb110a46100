/*
 * bitops.c — the bitmap ops of the version-2 state machine (kv.h): GETBIT, BITCOUNT, BITPOS
 * (reads), SETBIT and BITOP (writes), with Redis 7.0's replies and errors (bitops.c there).
 *
 * Where Redis parses an argument only after it looked the key up (BITCOUNT's range and its
 * BYTE|BIT, BITPOS's range: a missing key answers 0 or -1 whatever follows), the op carries
 * those arguments as the client sent them and they are parsed here, in Redis's order; what
 * Redis parses first (offsets, bit values, BITOP's operation) the node parses (kv.h table).
 *
 * Bits are numbered from the most significant bit of byte 0, as Redis numbers them.
 */
#include <string.h>

#include "common/assert.h"
#include "kv/kv_int.h"

#define ERR_NOT_INT "ERR value is not an integer or out of range"
#define ERR_SYNTAX  "ERR syntax error"
#define ERR_TOO_BIG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

static bool arg_is(const struct kv_arg *a, const char *word)
{
    size_t n = strlen(word);
    if (a->len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = a->p[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)word[i])
            return false;
    }
    return true;
}

static bool bit_at(const uint8_t *v, uint64_t bit)
{
    return (v[bit >> 3] >> (7 - (bit & 7))) & 1;
}

/* The range [*s, *e] of bits a BITCOUNT/BITPOS start/end selects, Redis's way: negative
 * indexes count from the end (of the bytes, or of the bits with BIT), then clamped; false when
 * it is empty. totlen: the string's length in the range's unit. */
static bool clamp_range(int64_t start, int64_t end, int64_t totlen, bool isbit, uint64_t *s,
                        uint64_t *e)
{
    if (start < 0)
        start = totlen + start;
    if (end < 0)
        end = totlen + end;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= totlen)
        end = totlen - 1;
    if (start > end)
        return false;
    *s = isbit ? (uint64_t)start : (uint64_t)start * 8;
    *e = isbit ? (uint64_t)end : (uint64_t)end * 8 + 7;
    return true;
}

static uint64_t popcount_bits(const uint8_t *v, uint64_t s, uint64_t e)
{
    uint64_t n = 0;
    while (s <= e && (s & 7) != 0)
        n += bit_at(v, s++);
    while (s + 7 <= e) {
        n += (uint64_t)__builtin_popcount(v[s >> 3]);
        s += 8;
    }
    while (s <= e)
        n += bit_at(v, s++);
    return n;
}

/* BITCOUNT key [start end [BYTE|BIT]]: args key, then what followed it, unparsed. */
static void bitcount(struct kv *kv, const struct kv_op_view *op, const struct kv_rec *rec)
{
    struct kv_cmd2_iter it;
    struct kv_arg a[4] = {{0}};
    kv_op_args(op, &it);
    for (uint32_t i = 0; i < op->argc && i < 4; i++)
        kv_op_next_arg(&it, &a[i]);
    if (!rec->live) {
        res_int(&kv->res, 0);
        return;
    }
    int64_t len = rec->val_len;
    if (op->argc == 1) {
        res_int(&kv->res,
                len == 0 ? 0 : (int64_t)popcount_bits(rec->val, 0, (uint64_t)len * 8 - 1));
        return;
    }
    if (op->argc != 3 && op->argc != 4) {
        res_error(&kv->res, ERR_SYNTAX);
        return;
    }
    int64_t start = 0, end = 0;
    if (!kv_parse_int64(a[1].p, a[1].len, &start) || !kv_parse_int64(a[2].p, a[2].len, &end)) {
        res_error(&kv->res, ERR_NOT_INT);
        return;
    }
    bool isbit = false;
    if (op->argc == 4) {
        if (arg_is(&a[3], "bit")) {
            isbit = true;
        } else if (!arg_is(&a[3], "byte")) {
            res_error(&kv->res, ERR_SYNTAX);
            return;
        }
    }
    uint64_t s = 0, e = 0;
    if ((start < 0 && end < 0 && start > end) ||
        !clamp_range(start, end, isbit ? len * 8 : len, isbit, &s, &e)) {
        res_int(&kv->res, 0);
        return;
    }
    res_int(&kv->res, (int64_t)popcount_bits(rec->val, s, e));
}

/* BITPOS key bit [start [end [BYTE|BIT]]]: num = the bit (the node parsed it), args key, then
 * what followed the bit, unparsed. */
static void bitpos(struct kv *kv, const struct kv_op_view *op, const struct kv_rec *rec)
{
    struct kv_cmd2_iter it;
    struct kv_arg a[4] = {{0}};
    kv_op_args(op, &it);
    for (uint32_t i = 0; i < op->argc && i < 4; i++)
        kv_op_next_arg(&it, &a[i]);
    bool want = op->num != 0;
    if (!rec->live) {
        res_int(&kv->res, want ? -1 : 0); /* an endless run of zeros */
        return;
    }
    int64_t len = rec->val_len;
    int64_t start = 0, end = len - 1;
    bool isbit = false, end_given = false;
    if (op->argc >= 2 && op->argc <= 4) {
        if (!kv_parse_int64(a[1].p, a[1].len, &start)) {
            res_error(&kv->res, ERR_NOT_INT);
            return;
        }
        if (op->argc == 4) {
            if (arg_is(&a[3], "bit")) {
                isbit = true;
            } else if (!arg_is(&a[3], "byte")) {
                res_error(&kv->res, ERR_SYNTAX);
                return;
            }
        }
        if (op->argc >= 3) {
            if (!kv_parse_int64(a[2].p, a[2].len, &end)) {
                res_error(&kv->res, ERR_NOT_INT);
                return;
            }
            end_given = true;
        } else {
            end = isbit ? len * 8 + 7 : len - 1;
        }
    } else if (op->argc != 1) {
        res_error(&kv->res, ERR_SYNTAX);
        return;
    }
    uint64_t s = 0, e = 0;
    if (!clamp_range(start, end, isbit ? len * 8 : len, isbit, &s, &e)) {
        res_int(&kv->res, -1); /* an empty range holds neither a 0 nor a 1 */
        return;
    }
    for (uint64_t b = s; b <= e; b++) {
        if (bit_at(rec->val, b) == want) {
            res_int(&kv->res, (int64_t)b);
            return;
        }
    }
    /* No such bit in the range: looking for a 0 without an explicit end, the string counts as
     * padded with zeros, so the answer is the first bit after the range's last byte. */
    res_int(&kv->res, want || end_given ? -1 : (int64_t)((e / 8 + 1) * 8));
}

int kv_bitops_read(struct kv *kv, const struct kv_op_view *op, uint64_t now)
{
    struct kv_cmd2_iter it;
    struct kv_arg key;
    kv_op_args(op, &it);
    bool got = kv_op_next_arg(&it, &key);
    RK_ASSERT(got);
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, key.p, key.len, now, &rec);
    if (rc != RK_OK)
        return rc;
    switch (op->code) {
    case KV_C_GETBIT: {
        uint64_t off = (uint64_t)op->num;
        res_int(&kv->res, rec.live && (off >> 3) < rec.val_len ? bit_at(rec.val, off) : 0);
        return RK_OK;
    }
    case KV_C_BITCOUNT:
        bitcount(kv, op, &rec);
        return RK_OK;
    case KV_C_BITPOS:
        bitpos(kv, op, &rec);
        return RK_OK;
    default:
        break;
    }
    RK_ASSERT(!"not a bitmap read");
    return RK_OK;
}

/* SETBIT key: num = offset * 2 + bit. The string grows with zero bytes to hold the bit; its
 * time to live stays (Redis changes the string in place). */
static int op_setbit(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_cmd2_iter it;
    struct kv_arg key;
    kv_op_args(op, &it);
    bool got = kv_op_next_arg(&it, &key);
    RK_ASSERT(got);
    uint64_t off = (uint64_t)op->num >> 1;
    bool on = (op->num & 1) != 0;
    uint64_t byte = off >> 3;
    if (byte + 1 > KV_MAX_VALUE_BYTES) {
        res_error(&kv->res, ERR_TOO_BIG); /* kv.h: raftkv's values stop at 64 MiB */
        return RK_OK;
    }
    struct kv_rec rec;
    int rc = kv_rec_get(kv, op->db, key.p, key.len, now, &rec);
    if (rc != RK_OK)
        return rc;
    uint32_t old_len = rec.live ? rec.val_len : 0;
    uint32_t len = byte + 1 > old_len ? (uint32_t)(byte + 1) : old_len;
    if (!rk_grow(kv->alloc, (void **)&kv->tmp2.buf, &kv->tmp2.cap, len, 1))
        return RK_ENOMEM;
    uint8_t *v = kv->tmp2.buf;
    if (old_len > 0)
        memcpy(v, rec.val, old_len);
    if (len > old_len)
        memset(v + old_len, 0, len - old_len);
    bool was = bit_at(v, off);
    uint8_t mask = (uint8_t)(1u << (7 - (off & 7)));
    v[byte] = on ? (uint8_t)(v[byte] | mask) : (uint8_t)(v[byte] & ~mask);
    rc = kv_rec_put(kv, index, op->db, key.p, key.len, v, len, rec.live ? rec.deadline_ms : 0, now,
                    rec.exists);
    if (rc == RK_OK)
        res_int(&kv->res, was);
    return rc;
}

/* BITOP: num = AND 0, OR 1, XOR 2, NOT 3; args dest, src... (NOT: one src). A missing source is
 * an empty string (zeros to the longest source's length); the result is written to dest with
 * no time to live, or dest is deleted when every source is empty. Answers the result's
 * length. */
static int op_bitop(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    struct kv_cmd2_iter it;
    struct kv_arg dest, src;
    kv_op_args(op, &it);
    bool got = kv_op_next_arg(&it, &dest);
    RK_ASSERT(got);
    /* Pass 1: the longest source. */
    uint32_t maxlen = 0;
    struct kv_rec rec;
    int rc = RK_OK;
    while (kv_op_next_arg(&it, &src)) {
        rc = kv_rec_get(kv, op->db, src.p, src.len, now, &rec);
        if (rc != RK_OK)
            return rc;
        if (rec.live && rec.val_len > maxlen)
            maxlen = rec.val_len;
    }
    if (maxlen == 0) {
        bool existed = false;
        rc = kv_rec_del(kv, index, op->db, dest.p, dest.len, &existed);
        if (rc == RK_OK)
            res_int(&kv->res, 0);
        return rc;
    }
    if (!rk_grow(kv->alloc, (void **)&kv->tmp2.buf, &kv->tmp2.cap, maxlen, 1))
        return RK_ENOMEM;
    uint8_t *v = kv->tmp2.buf;
    /* Pass 2: fold each source in (a store value is borrowed until the next store call: X3). */
    kv_op_args(op, &it);
    kv_op_next_arg(&it, &dest);
    bool first = true;
    while (kv_op_next_arg(&it, &src)) {
        rc = kv_rec_get(kv, op->db, src.p, src.len, now, &rec);
        if (rc != RK_OK)
            return rc;
        uint32_t n = rec.live ? rec.val_len : 0;
        for (uint32_t i = 0; i < maxlen; i++) {
            uint8_t b = i < n ? rec.val[i] : 0;
            if (first)
                v[i] = op->num == 3 ? (uint8_t)~b : b;
            else if (op->num == 0)
                v[i] &= b;
            else if (op->num == 1)
                v[i] |= b;
            else
                v[i] ^= b;
        }
        first = false;
    }
    rc = kv_rec_put(kv, index, op->db, dest.p, dest.len, v, maxlen, 0, now, KV_EXISTED_UNKNOWN);
    if (rc == RK_OK)
        res_int(&kv->res, maxlen);
    return rc;
}

int kv_bitops_exec(struct kv *kv, uint64_t index, const struct kv_op_view *op, uint64_t now)
{
    if (op->code == KV_C_SETBIT)
        return op_setbit(kv, index, op, now);
    RK_ASSERT(op->code == KV_C_BITOP);
    return op_bitop(kv, index, op, now);
}
