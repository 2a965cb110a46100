/*
 * cmd2.c — the version-2 (generic) command encoding: ops, transactions with their watches
 * (layout and op table in kv.h).
 *
 * As cmd.c: the bytes handed to kv_cmd2_decode are untrusted (a client through the leader and the
 * log); a bad entry must end as KV_BAD_COMMAND on every replica alike. The decoder is as strict as
 * the encoder (every op passes kv_op_check both ways), so one command has one encoding:
 *   V1  kv_cmd2_size(c) is exactly what kv_cmd2_encode writes (asserted).
 *   V2  what kv_cmd2_encode accepts, kv_cmd2_decode accepts; the iterators only walk buffers the
 *       decoder accepted (their reads are asserted in bounds, not checked).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv_int.h"

_Static_assert(KV_CMD2_OFF_TIME + 8 == KV_CMD2_HEADER_BYTES, "header offsets add up");
_Static_assert(KV_C_GET == 1 && KV_C_SET == 32 && KV_C_PURGE == 51 && KV_C_PEXPIREIFEQ == 53,
               "op codes are wire values");

#define OP_HEADER_BYTES (1u + 1u + 2u + 8u + 4u)

/* What a code accepts; rules[] is indexed by the code (a wire value below 256), a hole has no
 * name. */
struct op_rule {
    uint8_t code;
    const char *name;
    uint32_t argc_min, argc_max; /* argc_max 0: unbounded (KV_OP_MAX_ARGS) */
    uint16_t flags;              /* allowed */
    uint8_t shape;               /* how its args split into keys and values */
};

enum {
    SHAPE_KEYS = 0, /* every arg a key */
    SHAPE_KEY_VAL,  /* key value */
    SHAPE_PAIRS,    /* (key value)..., an even count */
    SHAPE_KEY_I64,  /* key, then an 8-byte i64 */
    SHAPE_DB_KEYS,  /* (db u8 + key)... */
};

#define EXPF (KV_F_EXP | KV_F_MS | KV_F_ABS)

static const struct op_rule rules[] = {
    [KV_C_GET] = {KV_C_GET, "GET", 1, 1, 0, SHAPE_KEYS},
    [KV_C_MGET] = {KV_C_MGET, "MGET", 1, 0, 0, SHAPE_KEYS},
    [KV_C_EXISTS] = {KV_C_EXISTS, "EXISTS", 1, 0, 0, SHAPE_KEYS},
    [KV_C_STRLEN] = {KV_C_STRLEN, "STRLEN", 1, 1, 0, SHAPE_KEYS},
    [KV_C_GETRANGE] = {KV_C_GETRANGE, "GETRANGE", 2, 2, 0, SHAPE_KEY_I64},
    [KV_C_TTL] = {KV_C_TTL, "TTL", 1, 1, KV_F_MS | KV_F_ABS, SHAPE_KEYS},
    [KV_C_TYPE] = {KV_C_TYPE, "TYPE", 1, 1, 0, SHAPE_KEYS},
    [KV_C_DBSIZE] = {KV_C_DBSIZE, "DBSIZE", 0, 0, 0, SHAPE_KEYS},
    [KV_C_WATCH] = {KV_C_WATCH, "WATCH", 1, 0, 0, SHAPE_KEYS},
    [KV_C_GETBIT] = {KV_C_GETBIT, "GETBIT", 1, 1, 0, SHAPE_KEYS},
    [KV_C_BITCOUNT] = {KV_C_BITCOUNT, "BITCOUNT", 1, 5, 0, SHAPE_KEYS},
    [KV_C_BITPOS] = {KV_C_BITPOS, "BITPOS", 1, 5, 0, SHAPE_KEYS},
    [KV_C_SET] = {KV_C_SET, "SET", 2, 2,
                  KV_F_NX | KV_F_XX | KV_F_GET | KV_F_KEEPTTL | EXPF | KV_F_SETEX, SHAPE_KEY_VAL},
    [KV_C_SETNX] = {KV_C_SETNX, "SETNX", 2, 2, 0, SHAPE_KEY_VAL},
    [KV_C_GETDEL] = {KV_C_GETDEL, "GETDEL", 1, 1, 0, SHAPE_KEYS},
    [KV_C_GETEX] = {KV_C_GETEX, "GETEX", 1, 1, KV_F_PERSIST | EXPF, SHAPE_KEYS},
    [KV_C_DEL] = {KV_C_DEL, "DEL", 1, 0, 0, SHAPE_KEYS},
    [KV_C_INCRBY] = {KV_C_INCRBY, "INCRBY", 1, 1, 0, SHAPE_KEYS},
    [KV_C_INCRBYFLOAT] = {KV_C_INCRBYFLOAT, "INCRBYFLOAT", 2, 2, 0, SHAPE_KEY_VAL},
    [KV_C_APPEND] = {KV_C_APPEND, "APPEND", 2, 2, 0, SHAPE_KEY_VAL},
    [KV_C_SETRANGE] = {KV_C_SETRANGE, "SETRANGE", 2, 2, 0, SHAPE_KEY_VAL},
    [KV_C_MSET] = {KV_C_MSET, "MSET", 2, 0, 0, SHAPE_PAIRS},
    [KV_C_MSETNX] = {KV_C_MSETNX, "MSETNX", 2, 0, 0, SHAPE_PAIRS},
    [KV_C_EXPIRE] = {KV_C_EXPIRE, "EXPIRE", 1, 1,
                     KV_F_MS | KV_F_ABS | KV_F_NX | KV_F_XX | KV_F_GT | KV_F_LT, SHAPE_KEYS},
    [KV_C_PERSIST] = {KV_C_PERSIST, "PERSIST", 1, 1, 0, SHAPE_KEYS},
    [KV_C_RENAME] = {KV_C_RENAME, "RENAME", 2, 2, 0, SHAPE_KEYS},
    [KV_C_RENAMENX] = {KV_C_RENAMENX, "RENAMENX", 2, 2, 0, SHAPE_KEYS},
    [KV_C_COPY] = {KV_C_COPY, "COPY", 2, 2, KV_F_REPLACE, SHAPE_KEYS},
    [KV_C_MOVE] = {KV_C_MOVE, "MOVE", 1, 1, 0, SHAPE_KEYS},
    [KV_C_FLUSHDB] = {KV_C_FLUSHDB, "FLUSHDB", 0, 0, 0, SHAPE_KEYS},
    [KV_C_FLUSHALL] = {KV_C_FLUSHALL, "FLUSHALL", 0, 0, 0, SHAPE_KEYS},
    [KV_C_PURGE] = {KV_C_PURGE, "PURGE", 1, KV_PURGE_MAX, 0, SHAPE_DB_KEYS},
    [KV_C_DELIFEQ] = {KV_C_DELIFEQ, "DELIFEQ", 2, 2, 0, SHAPE_KEY_VAL},
    [KV_C_PEXPIREIFEQ] = {KV_C_PEXPIREIFEQ, "PEXPIREIFEQ", 2, 2, KV_F_XX | KV_F_ADD, SHAPE_KEY_VAL},
    [KV_C_SWAPDB] = {KV_C_SWAPDB, "SWAPDB", 0, 0, 0, SHAPE_KEYS},
    [KV_C_ACL_SETUSER] = {KV_C_ACL_SETUSER, "ACL_SETUSER", 1, 0, 0, SHAPE_KEYS},
    [KV_C_ACL_DELUSER] = {KV_C_ACL_DELUSER, "ACL_DELUSER", 1, 0, 0, SHAPE_KEYS},
    [KV_C_SETBIT] = {KV_C_SETBIT, "SETBIT", 1, 1, 0, SHAPE_KEYS},
    [KV_C_BITOP] = {KV_C_BITOP, "BITOP", 2, 0, 0, SHAPE_KEYS},
};

static const struct op_rule *rule_of(uint8_t code)
{
    if (code >= sizeof(rules) / sizeof(rules[0]) || rules[code].name == NULL)
        return NULL;
    RK_ASSERT(rules[code].code == code);
    return &rules[code];
}

const char *kv_code_name(uint8_t code)
{
    const struct op_rule *r = rule_of(code);
    return r == NULL ? "?" : r->name;
}

/* The limit on arg i of an op of this shape. */
static uint32_t arg_limit(uint8_t shape, uint32_t i)
{
    switch (shape) {
    case SHAPE_KEY_VAL:
        return i == 0 ? KV_MAX_KEY_BYTES : KV_MAX_VALUE_BYTES;
    case SHAPE_PAIRS:
        return i % 2 == 0 ? KV_MAX_KEY_BYTES : KV_MAX_VALUE_BYTES;
    case SHAPE_KEY_I64:
        return i == 0 ? KV_MAX_KEY_BYTES : 8u;
    case SHAPE_DB_KEYS:
        return KV_MAX_KEY_BYTES + 1u;
    default:
        return KV_MAX_KEY_BYTES;
    }
}

/* A PURGE arg is a user store key: ['0' + db][key]. */
static bool purge_arg_ok(const uint8_t *p, uint32_t n)
{
    return n >= 1 && p[0] >= KV_KEY_USER && p[0] < KV_KEY_USER + KV_DBS;
}

/* The checks on an op's fields other than its args' bytes. */
static int check_fields(uint8_t code, uint8_t db, uint16_t flags, int64_t num, uint32_t argc,
                        struct rk_errmsg *err)
{
    const struct op_rule *r = rule_of(code);
    if (r == NULL)
        return rk_errf(err, RK_EINVAL, "op code %u is unknown", code);
    if (db >= KV_DBS || (code == KV_C_FLUSHALL && db != 0))
        return rk_errf(err, RK_EINVAL, "%s: db %u is out of range", r->name, db);
    if ((flags & ~r->flags) != 0)
        return rk_errf(err, RK_EINVAL, "%s: flags 0x%x are not its", r->name,
                       (unsigned)(flags & ~r->flags));
    uint32_t max = r->argc_max == 0 ? KV_OP_MAX_ARGS : r->argc_max;
    if (argc < r->argc_min || argc > max || (r->shape == SHAPE_PAIRS && argc % 2 != 0))
        return rk_errf(err, RK_EINVAL, "%s: %" PRIu32 " arguments", r->name, argc);
    if ((flags & KV_F_NX) && (flags & (KV_F_XX | KV_F_GT | KV_F_LT)))
        return rk_errf(err, RK_EINVAL, "%s: NX with XX, GT or LT", r->name);
    if ((flags & KV_F_GT) && (flags & KV_F_LT))
        return rk_errf(err, RK_EINVAL, "%s: GT with LT", r->name);
    bool timed = code == KV_C_SET || code == KV_C_GETEX;
    if (timed && (flags & (KV_F_MS | KV_F_ABS)) && !(flags & KV_F_EXP))
        return rk_errf(err, RK_EINVAL, "%s: a time unit without a time", r->name);
    if (timed && (flags & KV_F_EXP) && (flags & (KV_F_KEEPTTL | KV_F_PERSIST)))
        return rk_errf(err, RK_EINVAL, "%s: a time with KEEPTTL or PERSIST", r->name);
    if ((flags & KV_F_SETEX) && (flags & (KV_F_EXP | KV_F_ABS)) != KV_F_EXP)
        return rk_errf(err, RK_EINVAL, "%s: SETEX without a relative time", r->name);
    if (timed && (flags & KV_F_EXP) ? num <= 0 : false)
        return rk_errf(err, RK_EINVAL, "%s: time %" PRId64 " is not positive", r->name, num);
    /* Seconds must fit milliseconds (Redis refuses them before anything else). */
    if ((timed || code == KV_C_EXPIRE) && !(flags & KV_F_MS) &&
        (num > INT64_MAX / 1000 || num < INT64_MIN / 1000))
        return rk_errf(err, RK_EINVAL, "%s: %" PRId64 " seconds overflow", r->name, num);
    bool num_used = (timed && (flags & KV_F_EXP)) || code == KV_C_INCRBY || code == KV_C_SETRANGE ||
                    code == KV_C_EXPIRE || code == KV_C_COPY || code == KV_C_MOVE ||
                    code == KV_C_GETRANGE || code == KV_C_PEXPIREIFEQ || code == KV_C_SWAPDB ||
                    code == KV_C_GETBIT || code == KV_C_BITPOS || code == KV_C_SETBIT ||
                    code == KV_C_BITOP;
    if (!num_used && num != 0)
        return rk_errf(err, RK_EINVAL, "%s: num %" PRId64 " unused", r->name, num);
    if (code == KV_C_SETRANGE && num < 0)
        return rk_errf(err, RK_EINVAL, "SETRANGE: offset %" PRId64 " is negative", num);
    /* Bitmaps (bitops.c): offsets below 2^32 (Redis's 512 MB), a bit 0|1, BITOP's four ops. */
    if (code == KV_C_GETBIT && (num < 0 || num > (int64_t)UINT32_MAX))
        return rk_errf(err, RK_EINVAL, "GETBIT: offset %" PRId64 " out of range", num);
    if (code == KV_C_SETBIT && (num < 0 || num > (int64_t)UINT32_MAX * 2 + 1))
        return rk_errf(err, RK_EINVAL, "SETBIT: num %" PRId64 " out of range", num);
    if (code == KV_C_BITPOS && num != 0 && num != 1)
        return rk_errf(err, RK_EINVAL, "BITPOS: bit %" PRId64 " is not 0 or 1", num);
    if (code == KV_C_BITOP && (num < 0 || num > 3 || (num == 3 && argc != 2)))
        return rk_errf(err, RK_EINVAL, "BITOP: op %" PRId64 " with %" PRIu32 " arguments", num,
                       argc);
    if ((code == KV_C_COPY || code == KV_C_MOVE || code == KV_C_SWAPDB) &&
        (num < 0 || num >= KV_DBS))
        return rk_errf(err, RK_EINVAL, "%s: db %" PRId64 " is out of range", r->name, num);
    return RK_OK;
}

int kv_op_check(const struct kv_op2 *op, struct rk_errmsg *err)
{
    RK_ASSERT(op != NULL);
    int rc = check_fields(op->code, op->db, op->flags, op->num, op->argc, err);
    if (rc != RK_OK)
        return rc;
    const struct op_rule *r = rule_of(op->code);
    for (uint32_t i = 0; i < op->argc; i++) {
        RK_ASSERT(op->argv[i].p != NULL || op->argv[i].len == 0);
        uint32_t limit = arg_limit(r->shape, i);
        if (op->argv[i].len > limit)
            return rk_errf(err, RK_ETOOBIG, "%s: argument %" PRIu32 " over %" PRIu32 " bytes",
                           r->name, i, limit);
        if (r->shape == SHAPE_KEY_I64 && i == 1 && op->argv[i].len != 8)
            return rk_errf(err, RK_EINVAL, "%s: argument 1 is not 8 bytes", r->name);
        if (r->shape == SHAPE_DB_KEYS && !purge_arg_ok(op->argv[i].p, op->argv[i].len))
            return rk_errf(err, RK_EINVAL, "%s: argument %" PRIu32 " has no valid db", r->name, i);
    }
    return RK_OK;
}

/* ---- encoding --------------------------------------------------------------------------- */

static uint64_t op_size(const struct kv_op2 *op)
{
    uint64_t n = OP_HEADER_BYTES;
    for (uint32_t i = 0; i < op->argc; i++)
        n += 4 + (uint64_t)op->argv[i].len;
    return n;
}

size_t kv_cmd2_size(const struct kv_cmd2 *c)
{
    RK_ASSERT(c != NULL);
    uint64_t n = KV_CMD2_HEADER_BYTES + 4;
    if (c->flags & KV_CMD2_MULTI) {
        n += 8 + 4;
        for (uint32_t i = 0; i < c->n_watch; i++)
            n += 1 + 8 + 4 + (uint64_t)c->watches[i].key_len;
    }
    for (uint32_t i = 0; i < c->n_ops; i++)
        n += op_size(&c->ops[i]);
    return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

struct w2 {
    uint8_t *buf;
    size_t cap, pos;
};

static void w_le(struct w2 *w, uint64_t v, size_t n)
{
    RK_ASSERT(n <= w->cap - w->pos);
    for (size_t i = 0; i < n; i++)
        w->buf[w->pos + i] = (uint8_t)(v >> (8 * i));
    w->pos += n;
}

static void w_bytes(struct w2 *w, const uint8_t *p, size_t n)
{
    RK_ASSERT(n <= w->cap - w->pos);
    if (n > 0)
        memcpy(w->buf + w->pos, p, n);
    w->pos += n;
}

int kv_cmd2_encode(const struct kv_cmd2 *c, uint8_t *buf, size_t cap, size_t *out_len)
{
    RK_ASSERT(c != NULL && out_len != NULL);
    RK_ASSERT(buf != NULL || cap == 0);
    bool multi = (c->flags & KV_CMD2_MULTI) != 0;
    if ((c->flags & ~KV_CMD2_MULTI) != 0 || (!multi && (c->n_ops != 1 || c->n_watch != 0)) ||
        c->n_ops > KV_CMD2_MAX_OPS || c->n_watch > KV_CMD2_MAX_WATCH ||
        (c->client_id != 0 && c->seq == 0))
        return RK_EINVAL;
    for (uint32_t i = 0; i < c->n_watch; i++) {
        if (c->watches[i].db >= KV_DBS)
            return RK_EINVAL;
        if (c->watches[i].key_len > KV_MAX_KEY_BYTES)
            return RK_ETOOBIG;
    }
    for (uint32_t i = 0; i < c->n_ops; i++) {
        int rc = kv_op_check(&c->ops[i], NULL);
        if (rc != RK_OK)
            return rc;
    }
    size_t size = kv_cmd2_size(c);
    if (size > cap || size > KV_CMD_MAX_BYTES)
        return RK_ETOOBIG;
    struct w2 w = {.buf = buf, .cap = size};
    w_le(&w, KV_CMD2_VERSION, 1);
    w_le(&w, c->flags, 1);
    w_le(&w, c->client_id, 8);
    w_le(&w, c->seq, 8);
    w_le(&w, c->time_ms, 8);
    if (multi) {
        w_le(&w, c->watch_index, 8);
        w_le(&w, c->n_watch, 4);
        for (uint32_t i = 0; i < c->n_watch; i++) {
            w_le(&w, c->watches[i].db, 1);
            w_le(&w, c->watches[i].version, 8);
            w_le(&w, c->watches[i].key_len, 4);
            w_bytes(&w, c->watches[i].key, c->watches[i].key_len);
        }
    }
    w_le(&w, c->n_ops, 4);
    for (uint32_t i = 0; i < c->n_ops; i++) {
        const struct kv_op2 *op = &c->ops[i];
        w_le(&w, op->code, 1);
        w_le(&w, op->db, 1);
        w_le(&w, op->flags, 2);
        w_le(&w, (uint64_t)op->num, 8);
        w_le(&w, op->argc, 4);
        for (uint32_t j = 0; j < op->argc; j++) {
            w_le(&w, op->argv[j].len, 4);
            w_bytes(&w, op->argv[j].p, op->argv[j].len);
        }
    }
    RK_ASSERT(w.pos == size); /* V1 */
    *out_len = size;
    return RK_OK;
}

bool kv_cmd2_is_read(const uint8_t *data, size_t len)
{
    /* header, n_ops u32, then the op's code */
    return len > KV_CMD2_HEADER_BYTES + 4 && data[0] == KV_CMD2_VERSION && data[1] == 0 &&
           data[KV_CMD2_HEADER_BYTES + 4] >= 1 && data[KV_CMD2_HEADER_BYTES + 4] < KV_C_SET;
}

bool kv_cmd_is_v2(const uint8_t *data, size_t len)
{
    return len >= KV_CMD2_HEADER_BYTES && data[0] == KV_CMD2_VERSION;
}

static void le_store(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void kv_cmd2_set_time(uint8_t *data, size_t len, uint64_t time_ms)
{
    RK_ASSERT(kv_cmd_is_v2(data, len));
    le_store(data + KV_CMD2_OFF_TIME, time_ms);
}

void kv_cmd2_set_session(uint8_t *data, size_t len, uint64_t client_id, uint64_t seq)
{
    RK_ASSERT(kv_cmd_is_v2(data, len));
    le_store(data + KV_CMD2_OFF_CLIENT_ID, client_id);
    le_store(data + KV_CMD2_OFF_SEQ, seq);
}

/* ---- decoding --------------------------------------------------------------------------- */

struct r2 {
    const uint8_t *buf;
    size_t len, pos;
    int rc;
    struct rk_errmsg *err;
};

static void r_fail(struct r2 *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void r_fail(struct r2 *r, const char *fmt, ...)
{
    if (r->rc != RK_OK)
        return;
    r->rc = RK_EMALFORMED;
    char text[RK_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    rk_errf(r->err, RK_EMALFORMED, "kv command: %s", text);
}

static const uint8_t *r_take(struct r2 *r, size_t n, const char *field)
{
    if (r->rc != RK_OK)
        return NULL;
    if (n > r->len - r->pos) {
        r_fail(r, "%s at offset %zu: %zu bytes needed, only %zu left", field, r->pos, n,
               r->len - r->pos);
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

/* A little-endian field of n bytes. The usual sizes are spelled out, so that the compiler makes
 * each one load (a loop of byte shifts stays a loop: ~90 instructions per command). */
static uint64_t ld(const uint8_t *p, size_t n)
{
    switch (n) {
    case 1:
        return p[0];
    case 2:
        return (uint64_t)p[0] | (uint64_t)p[1] << 8;
    case 4:
        return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
    case 8:
        return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
               (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
               (uint64_t)p[7] << 56;
    default: {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v |= (uint64_t)p[i] << (8 * i);
        return v;
    }
    }
}

static uint64_t r_le(struct r2 *r, size_t n, const char *field)
{
    const uint8_t *p = r_take(r, n, field);
    return p == NULL ? 0 : ld(p, n);
}

/* Decodes and checks one op at r->pos. */
static void r_op(struct r2 *r, uint32_t i)
{
    size_t at = r->pos;
    uint8_t code = (uint8_t)r_le(r, 1, "op code");
    uint8_t db = (uint8_t)r_le(r, 1, "op db");
    uint16_t flags = (uint16_t)r_le(r, 2, "op flags");
    int64_t num = (int64_t)r_le(r, 8, "op num");
    uint32_t argc = (uint32_t)r_le(r, 4, "op argc");
    if (r->rc != RK_OK)
        return;
    /* The message only for a failed check: no 256-byte buffer cleared per op. */
    if (check_fields(code, db, flags, num, argc, NULL) != RK_OK) {
        struct rk_errmsg why = {{0}};
        check_fields(code, db, flags, num, argc, &why);
        r_fail(r, "op %" PRIu32 " at offset %zu: %s", i, at, why.text);
        return;
    }
    const struct op_rule *rule = rule_of(code);
    /* Every arg takes at least 4 bytes: a count beyond that is a lie, found before the walk. */
    if (argc > (r->len - r->pos) / 4) {
        r_fail(r, "op %" PRIu32 " at offset %zu: %" PRIu32 " arguments cannot fit", i, at, argc);
        return;
    }
    for (uint32_t j = 0; j < argc && r->rc == RK_OK; j++) {
        size_t arg_at = r->pos;
        uint32_t n = (uint32_t)r_le(r, 4, "arg len");
        uint32_t limit = arg_limit(rule->shape, j);
        if (r->rc == RK_OK && n > limit)
            r_fail(r,
                   "arg %" PRIu32 " of op %" PRIu32 " at offset %zu: %" PRIu32
                   " bytes, over %" PRIu32,
                   j, i, arg_at, n, limit);
        const uint8_t *p = r_take(r, n, "arg");
        if (r->rc != RK_OK)
            return;
        if (rule->shape == SHAPE_KEY_I64 && j == 1 && n != 8)
            r_fail(r, "arg 1 of op %" PRIu32 " at offset %zu: not 8 bytes", i, arg_at);
        if (rule->shape == SHAPE_DB_KEYS && !purge_arg_ok(p, n))
            r_fail(r, "arg %" PRIu32 " of op %" PRIu32 " at offset %zu: no valid db", j, i, arg_at);
    }
}

int kv_cmd2_decode(const uint8_t *buf, size_t len, struct kv_cmd2_view *v, struct rk_errmsg *err)
{
    RK_ASSERT(buf != NULL || len == 0);
    RK_ASSERT(v != NULL);
    memset(v, 0, sizeof(*v));
    struct r2 r = {.buf = buf, .len = len, .err = err};
    uint8_t version = (uint8_t)r_le(&r, 1, "version");
    if (r.rc == RK_OK && version != KV_CMD2_VERSION)
        r_fail(&r, "version at offset 0: %u is not %u", version, KV_CMD2_VERSION);
    uint8_t flags = (uint8_t)r_le(&r, 1, "flags");
    if (r.rc == RK_OK && (flags & ~KV_CMD2_MULTI) != 0)
        r_fail(&r, "flags at offset 1: 0x%02x", flags);
    v->client_id = r_le(&r, 8, "client_id");
    v->seq = r_le(&r, 8, "seq");
    if (r.rc == RK_OK && v->client_id != 0 && v->seq == 0)
        r_fail(&r, "seq at offset %u: 0 with a client id", KV_CMD2_OFF_SEQ);
    v->time_ms = r_le(&r, 8, "time_ms");
    if (flags & KV_CMD2_MULTI) {
        v->watch_index = r_le(&r, 8, "watch_index");
        v->n_watch = (uint32_t)r_le(&r, 4, "n_watch");
        if (r.rc == RK_OK && v->n_watch > KV_CMD2_MAX_WATCH)
            r_fail(&r, "n_watch: %" PRIu32 " is over %u", v->n_watch, KV_CMD2_MAX_WATCH);
        v->watch_at = r.pos;
        for (uint32_t i = 0; i < v->n_watch && r.rc == RK_OK; i++) {
            size_t at = r.pos;
            uint8_t db = (uint8_t)r_le(&r, 1, "watch db");
            r_le(&r, 8, "watch version");
            uint32_t kl = (uint32_t)r_le(&r, 4, "watch key_len");
            if (r.rc == RK_OK && (db >= KV_DBS || kl > KV_MAX_KEY_BYTES))
                r_fail(&r, "watch %" PRIu32 " at offset %zu: db %u, key of %" PRIu32 " bytes", i,
                       at, db, kl);
            r_take(&r, kl, "watch key");
        }
    }
    v->n_ops = (uint32_t)r_le(&r, 4, "n_ops");
    if (r.rc == RK_OK &&
        (v->n_ops > KV_CMD2_MAX_OPS || (!(flags & KV_CMD2_MULTI) && v->n_ops != 1)))
        r_fail(&r, "n_ops: %" PRIu32 " (a plain command has 1, a transaction at most %u)", v->n_ops,
               KV_CMD2_MAX_OPS);
    v->ops_at = r.pos;
    for (uint32_t i = 0; i < v->n_ops && r.rc == RK_OK; i++)
        r_op(&r, i);
    if (r.rc == RK_OK && r.pos != len)
        r_fail(&r, "end at offset %zu: %zu trailing bytes", r.pos, len - r.pos);
    if (r.rc != RK_OK) {
        memset(v, 0, sizeof(*v));
        return r.rc;
    }
    v->flags = flags;
    v->buf = buf;
    v->len = len;
    return RK_OK;
}

void kv_cmd2_watches(const struct kv_cmd2_view *v, struct kv_cmd2_iter *it)
{
    *it =
        (struct kv_cmd2_iter){.buf = v->buf, .len = v->len, .pos = v->watch_at, .left = v->n_watch};
}

bool kv_cmd2_next_watch(struct kv_cmd2_iter *it, struct kv_watch *out)
{
    if (it->left == 0)
        return false;
    const uint8_t *p = it->buf + it->pos;
    RK_ASSERT(it->len - it->pos >= 13);
    out->db = p[0];
    out->version = ld(p + 1, 8);
    out->key_len = (uint32_t)ld(p + 9, 4);
    out->key = p + 13;
    it->pos += 13 + (size_t)out->key_len;
    RK_ASSERT(it->pos <= it->len);
    it->left--;
    return true;
}

void kv_cmd2_ops(const struct kv_cmd2_view *v, struct kv_cmd2_iter *it)
{
    *it = (struct kv_cmd2_iter){.buf = v->buf, .len = v->len, .pos = v->ops_at, .left = v->n_ops};
}

bool kv_cmd2_next_op(struct kv_cmd2_iter *it, struct kv_op_view *out)
{
    if (it->left == 0)
        return false;
    const uint8_t *p = it->buf + it->pos;
    RK_ASSERT(it->len - it->pos >= OP_HEADER_BYTES);
    out->code = p[0];
    out->db = p[1];
    out->flags = (uint16_t)ld(p + 2, 2);
    out->num = (int64_t)ld(p + 4, 8);
    out->argc = (uint32_t)ld(p + 12, 4);
    out->args = p + OP_HEADER_BYTES;
    size_t pos = it->pos + OP_HEADER_BYTES;
    for (uint32_t i = 0; i < out->argc; i++) {
        RK_ASSERT(it->len - pos >= 4);
        pos += 4 + (size_t)ld(it->buf + pos, 4);
        RK_ASSERT(pos <= it->len);
    }
    out->args_len = pos - it->pos - OP_HEADER_BYTES;
    it->pos = pos;
    it->left--;
    return true;
}

void kv_op_args(const struct kv_op_view *op, struct kv_cmd2_iter *it)
{
    *it = (struct kv_cmd2_iter){.buf = op->args, .len = op->args_len, .pos = 0, .left = op->argc};
}

bool kv_op_next_arg(struct kv_cmd2_iter *it, struct kv_arg *out)
{
    if (it->left == 0)
        return false;
    RK_ASSERT(it->len - it->pos >= 4);
    out->len = (uint32_t)ld(it->buf + it->pos, 4);
    out->p = out->len == 0 ? NULL : it->buf + it->pos + 4;
    it->pos += 4 + (size_t)out->len;
    RK_ASSERT(it->pos <= it->len);
    it->left--;
    return true;
}
