/*
 * test_kv_cmd.c — the generic (version 2) kv commands: encoding, transactions and WATCH, expiry
 * decided at the entry's stamp, the string and keyspace ops with Redis 7's replies and error
 * texts (checked by hand against redis-server 7), databases, sessions of generic commands, and
 * restarts over the same store.
 *
 * Results are rendered as text for the asserts: "+OK", ":5", "$value", "_" (nil), "-ERR ...",
 * "*2" followed by its elements, "N" (nil array), separated by single spaces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counting_alloc.h"

#include "kv/kv.h"
#include "kv/memstore.h"

#define T_MAX_ARGS 16

struct t {
    struct counting cnt;
    struct rk_alloc alloc;
    struct kv_store *store;
    struct kv *kv;
    uint64_t index;
    uint8_t db;
    struct kv_arg args[T_MAX_ARGS];
    char out[8192];
    uint8_t buf[1 << 16];
};

static struct t *t_open(void)
{
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->alloc = counting_alloc(&t->cnt);
    assert_int_equal(kv_memstore_create(&t->alloc, &t->store), RK_OK);
    struct kv_config cfg = {.alloc = &t->alloc, .store = t->store, .max_sessions = 4};
    assert_int_equal(kv_create(&cfg, &t->kv, NULL), RK_OK);
    return t;
}

/* A restart: a new kv over the same store. */
static void t_reopen(struct t *t)
{
    kv_destroy(t->kv);
    struct kv_config cfg = {.alloc = &t->alloc, .store = t->store, .max_sessions = 4};
    assert_int_equal(kv_create(&cfg, &t->kv, NULL), RK_OK);
}

static void t_close(struct t *t)
{
    assert_true(kv_valid(t->kv));
    kv_destroy(t->kv);
    t->store->ops->destroy(t->store);
    assert_int_equal(t->cnt.live, 0);
    free(t);
}

/* The result as text (see the top). */
static const char *render(struct t *t, const uint8_t *res, uint32_t len)
{
    assert_int_equal(kv_res_check(res, len, NULL), RK_OK);
    struct kv_res_iter it;
    struct kv_res_item item;
    kv_res_begin(&it, res, len);
    size_t pos = 0;
    t->out[0] = '\0';
    while (kv_res_next(&it, &item)) {
        int n = 0;
        const char *sep = pos == 0 ? "" : " ";
        switch (item.type) {
        case KV_RES_INT:
            n = snprintf(t->out + pos, sizeof(t->out) - pos, "%s:%lld", sep, (long long)item.num);
            break;
        case KV_RES_ARRAY:
            n = snprintf(t->out + pos, sizeof(t->out) - pos, "%s*%lld", sep, (long long)item.num);
            break;
        case KV_RES_NIL:
        case KV_RES_NIL_ARRAY:
            n = snprintf(t->out + pos, sizeof(t->out) - pos, "%s%s", sep,
                         item.type == KV_RES_NIL ? "_" : "N");
            break;
        default:
            n = snprintf(t->out + pos, sizeof(t->out) - pos, "%s%c%.*s", sep, item.type,
                         (int)item.len, (const char *)item.p);
            break;
        }
        assert_true(n > 0 && (size_t)n < sizeof(t->out) - pos);
        pos += (size_t)n;
    }
    return t->out;
}

/* An op of code over the NULL-terminated string args (va_list), in t->db. */
static struct kv_op2 vop(struct t *t, uint8_t code, uint16_t flags, int64_t num, va_list ap)
{
    uint32_t argc = 0;
    for (const char *a = va_arg(ap, const char *); a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < T_MAX_ARGS);
        t->args[argc].p = (const uint8_t *)a;
        t->args[argc].len = (uint32_t)strlen(a);
        argc++;
    }
    return (struct kv_op2){
        .code = code, .db = t->db, .flags = flags, .num = num, .argc = argc, .argv = t->args};
}

/* Applies encoded bytes at the next index; returns the result as text. */
static const char *apply_raw(struct t *t, const uint8_t *buf, size_t len, uint8_t want_status)
{
    struct kv_result r;
    assert_int_equal(kv_apply(t->kv, ++t->index, buf, (uint32_t)len, &r), RK_OK);
    assert_int_equal(r.status, want_status);
    if (want_status != KV_OK && want_status != KV_DUPLICATE)
        return "";
    assert_int_equal(r.op, KV_OP_CMD);
    return render(t, r.val, r.val_len);
}

static const char *apply_cmd2(struct t *t, const struct kv_cmd2 *c)
{
    size_t len = 0;
    for (uint32_t i = 0; i < c->n_ops; i++) {
        struct rk_errmsg err = {{0}};
        if (kv_op_check(&c->ops[i], &err) != RK_OK)
            fail_msg("op %u: %s", i, err.text);
    }
    assert_int_equal(kv_cmd2_encode(c, t->buf, sizeof(t->buf), &len), RK_OK);
    assert_int_equal(len, kv_cmd2_size(c));
    return apply_raw(t, t->buf, len, KV_OK);
}

/* One command applied with the leader's stamp now_ms, no session. */
static const char *cmd(struct t *t, uint64_t now_ms, uint8_t code, uint16_t flags, int64_t num, ...)
{
    va_list ap;
    va_start(ap, num);
    struct kv_op2 op = vop(t, code, flags, num, ap);
    va_end(ap);
    struct kv_cmd2 c = {.time_ms = now_ms, .n_ops = 1, .ops = &op};
    return apply_cmd2(t, &c);
}

/* One read outside the log at the node's read time now_ms. */
static const char *rd(struct t *t, uint64_t now_ms, uint8_t code, uint16_t flags, int64_t num, ...)
{
    va_list ap;
    va_start(ap, num);
    struct kv_op2 op = vop(t, code, flags, num, ap);
    va_end(ap);
    kv_set_read_time_ms(t->kv, now_ms);
    const uint8_t *res = NULL;
    uint32_t len = 0;
    assert_int_equal(kv_read(t->kv, &op, &res, &len), RK_OK);
    return render(t, res, len);
}

#define T0 1700000000000ull /* a Unix time in ms */

/* ---- encoding ------------------------------------------------------------------------------- */

static void cmd2_encodes_and_decodes_one_op_exactly(void **state)
{
    (void)state;
    struct t *t = t_open();
    struct kv_arg a[2] = {{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}};
    struct kv_op2 op = {
        .code = KV_C_SET, .db = 3, .flags = KV_F_NX | KV_F_EXP, .num = 10, .argc = 2, .argv = a};
    struct kv_cmd2 c = {.client_id = 7, .seq = 9, .time_ms = 123, .n_ops = 1, .ops = &op};
    size_t len = 0;
    assert_int_equal(kv_cmd2_encode(&c, t->buf, sizeof(t->buf), &len), RK_OK);
    assert_true(kv_cmd_is_v2(t->buf, len));
    struct kv_cmd2_view v;
    assert_int_equal(kv_cmd2_decode(t->buf, len, &v, NULL), RK_OK);
    assert_int_equal(v.client_id, 7);
    assert_int_equal(v.seq, 9);
    assert_int_equal(v.time_ms, 123);
    assert_int_equal(v.n_ops, 1);
    struct kv_cmd2_iter it;
    struct kv_op_view ov;
    kv_cmd2_ops(&v, &it);
    assert_true(kv_cmd2_next_op(&it, &ov));
    assert_int_equal(ov.code, KV_C_SET);
    assert_int_equal(ov.db, 3);
    assert_int_equal(ov.flags, KV_F_NX | KV_F_EXP);
    assert_int_equal(ov.num, 10);
    assert_int_equal(ov.argc, 2);
    assert_false(kv_cmd2_next_op(&it, &ov));
    /* The stamp and the session are patched in place at fixed offsets. */
    kv_cmd2_set_time(t->buf, len, 456);
    kv_cmd2_set_session(t->buf, len, 8, 10);
    assert_int_equal(kv_cmd2_decode(t->buf, len, &v, NULL), RK_OK);
    assert_int_equal(v.time_ms, 456);
    assert_int_equal(v.client_id, 8);
    assert_int_equal(v.seq, 10);
    t_close(t);
}

static void cmd2_refuses_what_redis_syntax_already_refuses(void **state)
{
    (void)state;
    struct kv_arg a[2] = {{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}};
    struct kv_op2 bad[] = {
        {.code = KV_C_SET, .flags = KV_F_NX | KV_F_XX, .argc = 2, .argv = a},
        {.code = KV_C_SET, .flags = KV_F_EXP, .num = 0, .argc = 2, .argv = a}, /* EX 0 */
        {.code = KV_C_SET, .flags = KV_F_EXP | KV_F_KEEPTTL, .num = 5, .argc = 2, .argv = a},
        {.code = KV_C_EXPIRE, .flags = KV_F_GT | KV_F_LT, .num = 5, .argc = 1, .argv = a},
        {.code = KV_C_EXPIRE, .num = INT64_MAX, .argc = 1, .argv = a}, /* seconds overflow */
        {.code = KV_C_GET, .argc = 2, .argv = a},
        {.code = KV_C_MSET, .argc = 1, .argv = a},
        {.code = KV_C_GET, .db = KV_DBS, .argc = 1, .argv = a},
        {.code = KV_C_MOVE, .num = KV_DBS, .argc = 1, .argv = a},
        {.code = KV_C_SETRANGE, .num = -1, .argc = 2, .argv = a},
        {.code = 99, .argc = 1, .argv = a},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rk_errmsg err = {{0}};
        assert_int_not_equal(kv_op_check(&bad[i], &err), RK_OK);
        assert_true(err.text[0] != '\0');
    }
}

static void cmd2_undecodable_entry_is_a_bad_command_everywhere(void **state)
{
    (void)state;
    struct t *t = t_open();
    struct kv_arg a[1] = {{(const uint8_t *)"k", 1}};
    struct kv_op2 op = {.code = KV_C_GET, .argc = 1, .argv = a};
    struct kv_cmd2 c = {.n_ops = 1, .ops = &op};
    size_t len = 0;
    assert_int_equal(kv_cmd2_encode(&c, t->buf, sizeof(t->buf), &len), RK_OK);
    t->buf[len] = 0;
    apply_raw(t, t->buf, len + 1, KV_BAD_COMMAND); /* a trailing byte */
    assert_non_null(strstr(kv_last_error(t->kv), "trailing"));
    t->buf[KV_CMD2_HEADER_BYTES + 4] = 99; /* an unknown op code */
    apply_raw(t, t->buf, len, KV_BAD_COMMAND);
    for (size_t cut = 0; cut < len; cut++)
        apply_raw(t, t->buf, cut, KV_BAD_COMMAND); /* every truncation */
    t_close(t);
}

/* ---- strings ------------------------------------------------------------------------------- */

static void set_get_and_del_answer_as_redis(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_SET, 0, 0, "k", "v", NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "k", NULL), "$v");
    assert_string_equal(rd(t, T0, KV_C_TYPE, 0, 0, "k", NULL), "+string");
    assert_string_equal(rd(t, T0, KV_C_TYPE, 0, 0, "nope", NULL), "+none");
    assert_string_equal(cmd(t, T0, KV_C_SET, 0, 0, "j", "w", NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_MGET, 0, 0, "k", "nope", "j", NULL), "*3 $v _ $w");
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "k", "k", "nope", NULL), ":2");
    /* DEL of several keys is one entry; repeats and missing keys count nothing. */
    assert_string_equal(cmd(t, T0, KV_C_DEL, 0, 0, "k", "k", "nope", "j", NULL), ":2");
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "k", NULL), "_");
    assert_int_equal(kv_count(t->kv), 0);
    t_close(t);
}

static void set_options_nx_xx_get_keepttl(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_XX, 0, "k", "v", NULL), "_");
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_NX, 0, "k", "v", NULL), "+OK");
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_NX, 0, "k", "w", NULL), "_");
    /* GET answers the old value whether or not the condition let the write happen. */
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_NX | KV_F_GET, 0, "k", "w", NULL), "$v");
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_GET, 0, "k", "w", NULL), "$v");
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_GET, 0, "new", "x", NULL), "_");
    assert_string_equal(cmd(t, T0, KV_C_SETNX, 0, 0, "new", "y", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_SETNX, 0, 0, "other", "y", NULL), ":1");
    /* KEEPTTL keeps the deadline; a plain SET drops it. */
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_EXP, 100, "k", "v", NULL), "+OK");
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_KEEPTTL, 0, "k", "v2", NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "k", NULL), ":100");
    assert_string_equal(cmd(t, T0, KV_C_SET, 0, 0, "k", "v3", NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "k", NULL), ":-1");
    assert_int_equal(kv_expiring_count(t->kv), 0);
    t_close(t);
}

static void getset_getdel_getex(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_GETDEL, 0, 0, "k", NULL), "_");
    cmd(t, T0, KV_C_SET, 0, 0, "k", "v", NULL);
    assert_string_equal(cmd(t, T0, KV_C_GETDEL, 0, 0, "k", NULL), "$v");
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "k", NULL), ":0");
    cmd(t, T0, KV_C_SET, 0, 0, "k", "v", NULL);
    assert_string_equal(cmd(t, T0, KV_C_GETEX, KV_F_EXP | KV_F_MS, 1500, "k", NULL), "$v");
    assert_string_equal(rd(t, T0, KV_C_TTL, KV_F_MS, 0, "k", NULL), ":1500");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "k", NULL), ":2"); /* (1500 + 500) / 1000 */
    assert_string_equal(cmd(t, T0, KV_C_GETEX, KV_F_PERSIST, 0, "k", NULL), "$v");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "k", NULL), ":-1");
    assert_string_equal(cmd(t, T0, KV_C_GETEX, KV_F_PERSIST, 0, "nope", NULL), "_");
    /* Redis looks the key up first: a time that overflows is nil for a missing key. */
    assert_string_equal(cmd(t, T0, KV_C_GETEX, KV_F_EXP | KV_F_MS, INT64_MAX, "nope", NULL), "_");
    assert_string_equal(cmd(t, T0, KV_C_GETEX, KV_F_EXP | KV_F_MS, INT64_MAX, "k", NULL),
                        "-ERR invalid expire time in 'getex' command");
    /* A deadline in the past removes the key, and GETEX still answers its value. */
    assert_string_equal(cmd(t, T0, KV_C_GETEX, KV_F_EXP | KV_F_ABS, 1, "k", NULL), "$v");
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "k", NULL), "_");
    assert_int_equal(kv_count(t->kv), 0);
    t_close(t);
}

static void incrby_keeps_the_ttl_and_answers_redis_errors(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_INCRBY, 0, 5, "n", NULL), ":5");
    assert_string_equal(cmd(t, T0, KV_C_INCRBY, 0, -7, "n", NULL), ":-2");
    cmd(t, T0, KV_C_EXPIRE, 0, 100, "n", NULL);
    assert_string_equal(cmd(t, T0, KV_C_INCRBY, 0, 1, "n", NULL), ":-1");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "n", NULL), ":100");
    cmd(t, T0, KV_C_SET, 0, 0, "s", "abc", NULL);
    assert_string_equal(cmd(t, T0, KV_C_INCRBY, 0, 1, "s", NULL),
                        "-ERR value is not an integer or out of range");
    cmd(t, T0, KV_C_SET, 0, 0, "big", "9223372036854775807", NULL);
    assert_string_equal(cmd(t, T0, KV_C_INCRBY, 0, 1, "big", NULL),
                        "-ERR increment or decrement would overflow");
    t_close(t);
}

static void incrbyfloat_formats_as_redis(void **state)
{
    (void)state;
    struct t *t = t_open();
    /* Each figure as redis-server 7 answered it. */
    cmd(t, T0, KV_C_SET, 0, 0, "f", "10.5", NULL);
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "f", "0.1", NULL), "$10.6");
    cmd(t, T0, KV_C_SET, 0, 0, "g", "5.0e3", NULL);
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "g", "200", NULL), "$5200");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "h", "3.0e-3", NULL), "$0.003");
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "g", NULL), "$5200");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "f", "-10.6", NULL), "$0");
    cmd(t, T0, KV_C_SET, 0, 0, "i", "abc", NULL);
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "i", "1", NULL),
                        "-ERR value is not a valid float");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "f", " 1", NULL),
                        "-ERR value is not a valid float");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "f", "1e5000", NULL),
                        "-ERR value is not a valid float"); /* overflow */
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "f", "inf", NULL),
                        "-ERR increment would produce NaN or Infinity");
    /* A value with a zero byte ("\0" "5", from SETRANGE's padding) is not a float (Redis's
     * string2ld parses every byte); it was read as "" = 0. */
    assert_string_equal(cmd(t, T0, KV_C_SETRANGE, 0, 1, "z", "5", NULL), ":2");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "z", "1", NULL),
                        "-ERR value is not a valid float");
    t_close(t);
}

static void append_setrange_strlen_getrange(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_APPEND, 0, 0, "s", "Hello", NULL), ":5");
    assert_string_equal(cmd(t, T0, KV_C_APPEND, 0, 0, "s", " World", NULL), ":11");
    assert_string_equal(rd(t, T0, KV_C_STRLEN, 0, 0, "s", NULL), ":11");
    assert_string_equal(rd(t, T0, KV_C_STRLEN, 0, 0, "nope", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_SETRANGE, 0, 6, "s", "Redis", NULL), ":11");
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "s", NULL), "$Hello Redis");
    /* Past the end: zero bytes fill the gap. Nothing to set on a missing key: 0, no key. */
    assert_string_equal(cmd(t, T0, KV_C_SETRANGE, 0, 2, "z", "ab", NULL), ":4");
    assert_string_equal(rd(t, T0, KV_C_STRLEN, 0, 0, "z", NULL), ":4");
    assert_string_equal(cmd(t, T0, KV_C_SETRANGE, 0, 2, "none", "", NULL), ":0");
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "none", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_SETRANGE, 0, KV_MAX_VALUE_BYTES, "s", "x", NULL),
                        "-ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    uint8_t end[8];
    struct kv_arg a[2] = {{(const uint8_t *)"s", 1}, {end, 8}};
    struct {
        int64_t start, end;
        const char *want;
    } ranges[] = {{0, 4, "$Hello"}, {-5, -1, "$Redis"},       {-1, -5, "$"},
                  {5, 2, "$"},      {0, 100, "$Hello Redis"}, {-100, 1, "$He"}};
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        for (int b = 0; b < 8; b++)
            end[b] = (uint8_t)((uint64_t)ranges[i].end >> (8 * b));
        struct kv_op2 op = {.code = KV_C_GETRANGE, .num = ranges[i].start, .argc = 2, .argv = a};
        const uint8_t *res = NULL;
        uint32_t len = 0;
        assert_int_equal(kv_read(t->kv, &op, &res, &len), RK_OK);
        assert_string_equal(render(t, res, len), ranges[i].want);
    }
    t_close(t);
}

static void mset_and_msetnx_are_all_or_nothing(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_MSET, 0, 0, "a", "1", "b", "2", "a", "3", NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_MGET, 0, 0, "a", "b", NULL), "*2 $3 $2");
    assert_string_equal(cmd(t, T0, KV_C_MSETNX, 0, 0, "c", "1", "a", "9", NULL), ":0");
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "c", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_MSETNX, 0, 0, "c", "1", "d", "2", NULL), ":1");
    assert_int_equal(kv_count(t->kv), 4);
    t_close(t);
}

/* ---- keyspace ------------------------------------------------------------------------------ */

static void rename_and_renamenx_move_value_and_ttl(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_RENAME, 0, 0, "nokey", "y", NULL), "-ERR no such key");
    assert_string_equal(cmd(t, T0, KV_C_RENAMENX, 0, 0, "nokey", "y", NULL), "-ERR no such key");
    cmd(t, T0, KV_C_SET, KV_F_EXP, 50, "x", "v", NULL);
    assert_string_equal(cmd(t, T0, KV_C_RENAME, 0, 0, "x", "x", NULL), "+OK");
    assert_string_equal(cmd(t, T0, KV_C_RENAMENX, 0, 0, "x", "x", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_RENAME, 0, 0, "x", "y", NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_MGET, 0, 0, "x", "y", NULL), "*2 _ $v");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "y", NULL), ":50");
    cmd(t, T0, KV_C_SET, 0, 0, "z", "w", NULL);
    assert_string_equal(cmd(t, T0, KV_C_RENAMENX, 0, 0, "y", "z", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_RENAME, 0, 0, "y", "z", NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "z", NULL), "$v");
    assert_int_equal(kv_count(t->kv), 1);
    assert_int_equal(kv_expiring_count(t->kv), 1);
    t_close(t);
}

static void copy_and_move_across_databases(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_SET, 0, 0, "k", "v", NULL);
    assert_string_equal(cmd(t, T0, KV_C_COPY, 0, 0, "k", "k", NULL),
                        "-ERR source and destination objects are the same");
    assert_string_equal(cmd(t, T0, KV_C_COPY, 0, 0, "nope", "k2", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_COPY, 0, 0, "k", "k2", NULL), ":1");
    assert_string_equal(cmd(t, T0, KV_C_COPY, 0, 0, "k", "k2", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_COPY, KV_F_REPLACE, 0, "k", "k2", NULL), ":1");
    assert_string_equal(cmd(t, T0, KV_C_COPY, 0, 5, "k", "k", NULL), ":1"); /* to db 5 */
    assert_string_equal(cmd(t, T0, KV_C_MOVE, 0, 0, "k", NULL),
                        "-ERR source and destination objects are the same");
    assert_string_equal(cmd(t, T0, KV_C_MOVE, 0, 5, "k", NULL), ":0"); /* db 5 has it */
    assert_string_equal(cmd(t, T0, KV_C_MOVE, 0, 6, "k", NULL), ":1");
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "k", NULL), ":0");
    t->db = 6;
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "k", NULL), "$v");
    assert_int_equal(kv_dbsize(t->kv, 0), 1);
    assert_int_equal(kv_dbsize(t->kv, 5), 1);
    assert_int_equal(kv_dbsize(t->kv, 6), 1);
    assert_int_equal(kv_count(t->kv), 3);
    t_close(t);
}

static bool count_key(void *ctx, const uint8_t *key, uint32_t key_len)
{
    (void)key;
    (void)key_len;
    (*(size_t *)ctx)++;
    return true;
}

static void databases_are_separate_and_flushed_alone_or_all(void **state)
{
    (void)state;
    struct t *t = t_open();
    for (uint8_t db = 0; db < 3; db++) {
        t->db = db;
        char v[2] = {(char)('0' + db), 0};
        cmd(t, T0, KV_C_MSET, 0, 0, "k", v, "j", v, NULL);
    }
    t->db = 1;
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "k", NULL), "$1");
    assert_string_equal(rd(t, T0, KV_C_DBSIZE, 0, 0, NULL), ":2");
    assert_string_equal(cmd(t, T0, KV_C_FLUSHDB, 0, 0, NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_DBSIZE, 0, 0, NULL), ":0");
    t->db = 2;
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "k", NULL), "$2");
    size_t n = 0;
    kv_set_read_time_ms(t->kv, T0);
    assert_int_equal(kv_scan_db(t->kv, 2, count_key, &n), RK_OK);
    assert_int_equal(n, 2); /* db 2's keys only */
    t->db = 0;
    assert_string_equal(cmd(t, T0, KV_C_FLUSHALL, 0, 0, NULL), "+OK");
    assert_int_equal(kv_count(t->kv), 0);
    for (uint8_t db = 0; db < KV_DBS; db++)
        assert_int_equal(kv_dbsize(t->kv, db), 0);
    t_close(t);
}

/* ---- expiry -------------------------------------------------------------------------------- */

static void expiry_is_decided_by_the_entrys_stamp_and_the_readers_now(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS, 100, "k", "v", NULL), "+OK");
    /* Reads on a node: the key is there before its deadline by the node's clock, not after. */
    assert_string_equal(rd(t, T0 + 99, KV_C_GET, 0, 0, "k", NULL), "$v");
    assert_string_equal(rd(t, T0 + 100, KV_C_GET, 0, 0, "k", NULL), "_");
    assert_string_equal(rd(t, T0 + 100, KV_C_TTL, 0, 0, "k", NULL), ":-2");
    kv_set_read_time_ms(t->kv, T0 + 100);
    const uint8_t *val = NULL;
    uint32_t len = 0;
    assert_int_equal(kv_get(t->kv, (const uint8_t *)"k", 1, &val, &len), RK_ENOENT);
    /* In the log: the entry's stamp decides. At T0 + 50 SETNX finds it; at T0 + 100 not. */
    assert_string_equal(cmd(t, T0 + 50, KV_C_SETNX, 0, 0, "k", "w", NULL), ":0");
    assert_string_equal(cmd(t, T0 + 100, KV_C_SETNX, 0, 0, "k", "w", NULL), ":1");
    assert_string_equal(rd(t, T0 + 100, KV_C_GET, 0, 0, "k", NULL), "$w");
    t_close(t);
}

static void the_state_machine_clock_never_goes_back(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0 + 1000, KV_C_SET, 0, 0, "a", "1", NULL);
    assert_int_equal(kv_clock_ms(t->kv), T0 + 1000);
    /* A new leader whose clock is behind: its stamps do not move time back. */
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_EXP, 10, "k", "v", NULL), "+OK");
    assert_int_equal(kv_clock_ms(t->kv), T0 + 1000);
    assert_string_equal(rd(t, T0 + 1000, KV_C_TTL, KV_F_MS | KV_F_ABS, 0, "k", NULL),
                        ":1700000011000"); /* relative to the clock, T0 + 1000 */
    /* And the clock survives a restart (kv's record). */
    t_reopen(t);
    assert_int_equal(kv_clock_ms(t->kv), T0 + 1000);
    t->index = kv_applied_index(t->kv);
    t_close(t);
}

static void expire_with_nx_xx_gt_lt_as_redis(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, 0, 100, "nope", NULL), ":0");
    cmd(t, T0, KV_C_SET, 0, 0, "x", "1", NULL);
    /* The sequence redis-server 7 answered 0 1 1 1, then TTL 10. */
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, KV_F_GT, 100, "x", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, KV_F_NX, 100, "x", NULL), ":1");
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, KV_F_LT, 50, "x", NULL), ":1");
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, KV_F_XX, 10, "x", NULL), ":1");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "x", NULL), ":10");
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, KV_F_NX, 100, "x", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, KV_F_GT, 5, "x", NULL), ":0");
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, KV_F_LT, 20, "x", NULL), ":0");
    assert_string_equal(rd(t, T0, KV_C_TTL, KV_F_ABS, 0, "x", NULL), ":1700000010");
    assert_string_equal(rd(t, T0, KV_C_TTL, KV_F_ABS | KV_F_MS, 0, "x", NULL), ":1700000010000");
    assert_string_equal(cmd(t, T0, KV_C_PERSIST, 0, 0, "x", NULL), ":1");
    assert_string_equal(cmd(t, T0, KV_C_PERSIST, 0, 0, "x", NULL), ":0");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "x", NULL), ":-1");
    /* The relative time overflowing with the clock: Redis's error, with the command's name. */
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, KV_F_MS, INT64_MAX, "x", NULL),
                        "-ERR invalid expire time in 'pexpire' command");
    assert_string_equal(
        cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS | KV_F_SETEX, INT64_MAX, "x", "v", NULL),
        "-ERR invalid expire time in 'psetex' command");
    assert_string_equal(cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS, INT64_MAX, "x", "v", NULL),
                        "-ERR invalid expire time in 'set' command");
    /* A deadline in the past removes the key (and answers 1). */
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, 0, -1, "x", NULL), ":1");
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "x", NULL), ":0");
    assert_int_equal(kv_count(t->kv), 0);
    assert_int_equal(kv_expiring_count(t->kv), 0);
    t_close(t);
}

static void expired_keys_are_purged_through_the_log_only_if_still_expired(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS, 10, "a", "1", NULL);
    cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS, 10, "b", "1", NULL);
    cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS, 1000, "c", "1", NULL);
    cmd(t, T0, KV_C_SET, 0, 0, "d", "1", NULL);
    const uint8_t *purge = NULL;
    size_t len = 0;
    uint32_t n = 0;
    assert_int_equal(kv_expired_command(t->kv, T0 + 5, KV_PURGE_MAX, 1024, &purge, &len, &n),
                     RK_OK);
    assert_int_equal(n, 0); /* nothing expired yet */
    assert_int_equal(kv_expired_command(t->kv, T0 + 20, KV_PURGE_MAX, 1024, &purge, &len, &n),
                     RK_OK);
    assert_int_equal(n, 2);
    uint8_t copy[256];
    assert_true(len <= sizeof(copy));
    memcpy(copy, purge, len);
    /* Meanwhile "a" gets a new value with no deadline: the purge must leave it. */
    cmd(t, T0 + 15, KV_C_SET, 0, 0, "a", "2", NULL);
    kv_cmd2_set_time(copy, len, T0 + 20); /* the leader's stamp */
    assert_string_equal(apply_raw(t, copy, len, KV_OK), ":1");
    assert_int_equal(kv_count(t->kv), 3);
    assert_string_equal(rd(t, T0 + 20, KV_C_MGET, 0, 0, "a", "b", "c", NULL), "*3 $2 _ $1");
    assert_int_equal(kv_expiring_count(t->kv), 1);
    t_close(t);
}

static void deadlines_survive_a_restart(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_SET, KV_F_EXP, 100, "k", "v", NULL);
    t->db = 3;
    cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS, 5, "j", "v", NULL);
    cmd(t, T0, KV_C_SET, 0, 0, "p", "v", NULL);
    t_reopen(t);
    t->index = kv_applied_index(t->kv);
    assert_int_equal(kv_expiring_count(t->kv), 2);
    assert_int_equal(kv_db_expiring(t->kv, 0), 1);
    assert_int_equal(kv_db_expiring(t->kv, 3), 1);
    assert_int_equal(kv_dbsize(t->kv, 3), 2);
    assert_int_equal(kv_dbsize(t->kv, 0), 1);
    assert_string_equal(rd(t, T0 + 1, KV_C_TTL, KV_F_MS, 0, "j", NULL), ":4");
    t->db = 0;
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "k", NULL), ":100");
    const uint8_t *purge = NULL;
    size_t len = 0;
    uint32_t n = 0;
    assert_int_equal(kv_expired_command(t->kv, T0 + 10, KV_PURGE_MAX, 1024, &purge, &len, &n),
                     RK_OK);
    assert_int_equal(n, 1); /* the rebuilt table finds db 3's "j" */
    t_close(t);
}

/* The sequence redis-server 7 answered by hand: in-place changes keep the time to live, moves
 * carry it, a deadline already past removes the key. */
static void ttl_is_kept_by_in_place_changes_and_carried_by_moves(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_ABS, 1, "k", "v", NULL); /* EXAT 1: gone at once */
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "k", NULL), ":0");
    assert_int_equal(kv_count(t->kv), 0);
    cmd(t, T0, KV_C_SET, KV_F_EXP, 100, "k", "v", NULL);
    assert_string_equal(cmd(t, T0, KV_C_APPEND, 0, 0, "k", "x", NULL), ":2");
    assert_string_equal(cmd(t, T0, KV_C_SETRANGE, 0, 0, "k", "", NULL), ":2");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "k", NULL), ":100");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "n", "1.5", NULL), "$1.5");
    cmd(t, T0, KV_C_EXPIRE, 0, 100, "n", NULL);
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "n", "1", NULL), "$2.5");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "n", NULL), ":100");
    cmd(t, T0, KV_C_RENAME, 0, 0, "n", "m", NULL);
    cmd(t, T0, KV_C_COPY, 0, 0, "m", "c", NULL);
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "c", NULL), ":100");
    assert_string_equal(cmd(t, T0, KV_C_MOVE, 0, 1, "c", NULL), ":1");
    t->db = 1;
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "c", NULL), ":100");
    t->db = 0;
    assert_string_equal(cmd(t, T0 + 2000, KV_C_SET, KV_F_GET | KV_F_KEEPTTL, 0, "k", "v", NULL),
                        "$vx");
    assert_string_equal(rd(t, T0 + 2000, KV_C_TTL, 0, 0, "k", NULL), ":98");
    assert_string_equal(cmd(t, T0, KV_C_MSETNX, 0, 0, "a", "1", "a", "2", NULL), ":1");
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "a", NULL), "$2");
    assert_string_equal(cmd(t, T0, KV_C_EXPIRE, 0, 0, "a", NULL), ":1");
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "a", NULL), ":0");
    cmd(t, T0, KV_C_SET, 0, 0, "g", "0x10", NULL); /* strtold's hex, as Redis */
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "g", "1", NULL), "$17");
    cmd(t, T0, KV_C_SET, 0, 0, "h", "1e3", NULL);
    assert_string_equal(cmd(t, T0, KV_C_INCRBY, 0, 1, "h", NULL),
                        "-ERR value is not an integer or out of range");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "h", "1", NULL), "$1001");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "nn", "1.0", NULL), "$1");
    assert_string_equal(cmd(t, T0, KV_C_INCRBYFLOAT, 0, 0, "nn", "0.30000000000000004", NULL),
                        "$1.30000000000000004");
    t_close(t);
}

/* redis-py's Lock: acquire with SET NX PX, then its scripts' ops with the right token only. */
static void lock_scripts_act_only_for_the_holder_of_the_token(void **state)
{
    (void)state;
    struct t *t = t_open();
    assert_string_equal(
        cmd(t, T0, KV_C_SET, KV_F_NX | KV_F_EXP | KV_F_MS, 10000, "lock", "tok1", NULL), "+OK");
    assert_string_equal(
        cmd(t, T0, KV_C_SET, KV_F_NX | KV_F_EXP | KV_F_MS, 10000, "lock", "tok2", NULL), "_");
    /* extend by 5 s (ADD), only with the right token and while the lock has a TTL (XX) */
    assert_string_equal(
        cmd(t, T0, KV_C_PEXPIREIFEQ, KV_F_XX | KV_F_ADD, 5000, "lock", "tok2", NULL), ":0");
    assert_string_equal(
        cmd(t, T0 + 1000, KV_C_PEXPIREIFEQ, KV_F_XX | KV_F_ADD, 5000, "lock", "tok1", NULL), ":1");
    assert_string_equal(rd(t, T0 + 1000, KV_C_TTL, KV_F_MS, 0, "lock", NULL), ":14000");
    /* reacquire: a new TTL from now */
    assert_string_equal(cmd(t, T0 + 1000, KV_C_PEXPIREIFEQ, 0, 3000, "lock", "tok1", NULL), ":1");
    assert_string_equal(rd(t, T0 + 1000, KV_C_TTL, KV_F_MS, 0, "lock", NULL), ":3000");
    /* release */
    assert_string_equal(cmd(t, T0 + 1000, KV_C_DELIFEQ, 0, 0, "lock", "tok2", NULL), ":0");
    assert_string_equal(cmd(t, T0 + 1000, KV_C_DELIFEQ, 0, 0, "lock", "tok1", NULL), ":1");
    assert_string_equal(cmd(t, T0 + 1000, KV_C_DELIFEQ, 0, 0, "lock", "tok1", NULL), ":0");
    /* an expired lock is nobody's */
    cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS, 10, "lock", "tok3", NULL);
    assert_string_equal(cmd(t, T0 + 2000, KV_C_DELIFEQ, 0, 0, "lock", "tok3", NULL), ":0");
    t_close(t);
}

/* ---- transactions and WATCH ----------------------------------------------------------------- */

static void exec_applies_every_op_in_one_entry_and_answers_an_array(void **state)
{
    (void)state;
    struct t *t = t_open();
    struct kv_arg k[1] = {{(const uint8_t *)"n", 1}};
    struct kv_arg kv2[2] = {{(const uint8_t *)"s", 1}, {(const uint8_t *)"x", 1}};
    struct kv_op2 ops[] = {
        {.code = KV_C_INCRBY, .num = 1, .argc = 1, .argv = k},
        {.code = KV_C_INCRBY, .num = 1, .argc = 1, .argv = k},
        {.code = KV_C_SET, .argc = 2, .argv = kv2},
        {.code = KV_C_INCRBY, .num = 1, .argc = 1, .argv = kv2}, /* an error inside EXEC */
        {.code = KV_C_GET, .argc = 1, .argv = k},
    };
    struct kv_cmd2 c = {.flags = KV_CMD2_MULTI, .time_ms = T0, .n_ops = 5, .ops = ops};
    uint64_t before = kv_applied_index(t->kv);
    assert_string_equal(apply_cmd2(t, &c),
                        "*5 :1 :2 +OK -ERR value is not an integer or out of range $2");
    assert_int_equal(kv_applied_index(t->kv), before + 1);
    /* An empty transaction: an empty array. */
    struct kv_cmd2 empty = {.flags = KV_CMD2_MULTI, .time_ms = T0};
    assert_string_equal(apply_cmd2(t, &empty), "*0");
    t_close(t);
}

/* WATCH as the node takes it: the version at the read time, the watch point now. */
static struct kv_watch watch(struct t *t, uint8_t db, const char *key)
{
    struct kv_watch w = {.db = db, .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key)};
    kv_set_read_time_ms(t->kv, T0);
    assert_int_equal(kv_watch_version(t->kv, db, w.key, w.key_len, &w.version), RK_OK);
    return w;
}

static const char *exec_watched(struct t *t, const struct kv_watch *w, uint32_t n_watch,
                                uint64_t point)
{
    static struct kv_arg a[2] = {{(const uint8_t *)"out", 3}, {(const uint8_t *)"1", 1}};
    static struct kv_op2 op = {.code = KV_C_SET, .argc = 2, .argv = a};
    struct kv_cmd2 c = {.flags = KV_CMD2_MULTI,
                        .time_ms = T0,
                        .watch_index = point,
                        .n_watch = n_watch,
                        .watches = w,
                        .n_ops = 1,
                        .ops = &op};
    return apply_cmd2(t, &c);
}

static void watch_aborts_exec_when_a_watched_key_changed(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_SET, 0, 0, "x", "30", NULL);
    /* Unchanged: EXEC runs. */
    struct kv_watch w = watch(t, 0, "x");
    assert_int_not_equal(w.version, 0);
    assert_string_equal(exec_watched(t, &w, 1, kv_applied_index(t->kv)), "*1 +OK");
    /* Modified after the WATCH (even to the same value): aborted, nothing applied. */
    w = watch(t, 0, "x");
    uint64_t point = kv_applied_index(t->kv);
    cmd(t, T0, KV_C_SET, 0, 0, "x", "30", NULL);
    cmd(t, T0, KV_C_DEL, 0, 0, "out", NULL);
    assert_string_equal(exec_watched(t, &w, 1, point), "N");
    assert_string_equal(rd(t, T0, KV_C_EXISTS, 0, 0, "out", NULL), ":0");
    /* Deleted, or given a deadline: aborted too. */
    w = watch(t, 0, "x");
    point = kv_applied_index(t->kv);
    cmd(t, T0, KV_C_EXPIRE, 0, 100, "x", NULL);
    assert_string_equal(exec_watched(t, &w, 1, point), "N");
    w = watch(t, 0, "x");
    point = kv_applied_index(t->kv);
    cmd(t, T0, KV_C_DEL, 0, 0, "x", NULL);
    assert_string_equal(exec_watched(t, &w, 1, point), "N");
    t_close(t);
}

static void watch_of_a_key_in_another_db_is_not_touched_by_this_db(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_SET, 0, 0, "x", "1", NULL);
    struct kv_watch w = watch(t, 0, "x");
    uint64_t point = kv_applied_index(t->kv);
    t->db = 1;
    cmd(t, T0, KV_C_SET, 0, 0, "x", "2", NULL);
    t->db = 0;
    assert_string_equal(exec_watched(t, &w, 1, point), "*1 +OK");
    t_close(t);
}

static void watch_of_an_absent_key(void **state)
{
    (void)state;
    struct t *t = t_open();
    /* Still absent: EXEC runs (and FLUSHALL of nothing touches nothing). */
    struct kv_watch w = watch(t, 0, "x");
    assert_int_equal(w.version, 0);
    uint64_t point = kv_applied_index(t->kv);
    cmd(t, T0, KV_C_FLUSHALL, 0, 0, NULL);
    assert_string_equal(exec_watched(t, &w, 1, point), "*1 +OK");
    /* Created since: aborted. */
    w = watch(t, 0, "x");
    point = kv_applied_index(t->kv);
    cmd(t, T0, KV_C_SET, 0, 0, "x", "1", NULL);
    assert_string_equal(exec_watched(t, &w, 1, point), "N");
    /* Created and deleted since: aborted (the db's deletion index moved). */
    cmd(t, T0, KV_C_DEL, 0, 0, "x", NULL);
    w = watch(t, 0, "x");
    point = kv_applied_index(t->kv);
    cmd(t, T0, KV_C_SET, 0, 0, "x", "1", NULL);
    cmd(t, T0, KV_C_DEL, 0, 0, "x", NULL);
    assert_string_equal(exec_watched(t, &w, 1, point), "N");
    t_close(t);
}

static void watch_sees_expiry_at_the_exec_stamp(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_SET, KV_F_EXP | KV_F_MS, 10, "x", "1", NULL);
    struct kv_watch w = watch(t, 0, "x");
    assert_int_not_equal(w.version, 0);
    uint64_t point = kv_applied_index(t->kv);
    static struct kv_arg a[2] = {{(const uint8_t *)"out", 3}, {(const uint8_t *)"1", 1}};
    struct kv_op2 op = {.code = KV_C_SET, .argc = 2, .argv = a};
    struct kv_cmd2 c = {.flags = KV_CMD2_MULTI,
                        .time_ms = T0 + 10,
                        .watch_index = point,
                        .n_watch = 1,
                        .watches = &w,
                        .n_ops = 1,
                        .ops = &op};
    assert_string_equal(apply_cmd2(t, &c), "N"); /* expired by the EXEC's stamp */
    t_close(t);
}

/* SWAPDB exchanges two databases in O(1) and survives a restart; Redis's WATCH rules for it. */
static void swapdb_exchanges_databases_and_touches_watched_keys_that_exist(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_MSET, 0, 0, "a", "0", "z", "0", NULL);
    t->db = 1;
    cmd(t, T0, KV_C_SET, KV_F_EXP, 100, "a", "1", NULL);
    t->db = 0;
    assert_string_equal(cmd(t, T0, KV_C_SWAPDB, 0, 1, NULL), "+OK");
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "a", NULL), "$1");
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "a", NULL), ":100");
    assert_string_equal(rd(t, T0, KV_C_DBSIZE, 0, 0, NULL), ":1");
    assert_int_equal(kv_db_expiring(t->kv, 0), 1);
    t->db = 1;
    assert_string_equal(rd(t, T0, KV_C_MGET, 0, 0, "a", "z", NULL), "*2 $0 $0");
    assert_string_equal(rd(t, T0, KV_C_DBSIZE, 0, 0, NULL), ":2");
    /* Writes, FLUSHDB and version-1 reads follow the mapping. */
    assert_string_equal(cmd(t, T0, KV_C_FLUSHDB, 0, 0, NULL), "+OK");
    assert_int_equal(kv_dbsize(t->kv, 1), 0);
    assert_int_equal(kv_dbsize(t->kv, 0), 1);
    t->db = 0;
    const uint8_t *val = NULL;
    uint32_t len = 0;
    assert_int_equal(kv_get(t->kv, (const uint8_t *)"a", 1, &val, &len), RK_OK);
    assert_memory_equal(val, "1", 1);
    t_reopen(t);
    t->index = kv_applied_index(t->kv);
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "a", NULL), "$1");
    /* WATCH: a key that exists is touched by a SWAPDB of its db; one absent from both is not. */
    struct kv_watch w = watch(t, 0, "a");
    uint64_t point = kv_applied_index(t->kv);
    cmd(t, T0, KV_C_SWAPDB, 0, 5, NULL);
    assert_string_equal(exec_watched(t, &w, 1, point), "N");
    w = watch(t, 0, "nowhere");
    point = kv_applied_index(t->kv);
    cmd(t, T0, KV_C_SWAPDB, 0, 5, NULL);
    assert_string_equal(exec_watched(t, &w, 1, point), "*1 +OK");
    /* Version-1 writes land in the db that logical 0 maps to, and count there (K6 at close). */
    uint64_t before = kv_dbsize(t->kv, 0);
    uint8_t buf[64];
    struct kv_cmd c = {.op = KV_OP_PUT, .key = (const uint8_t *)"v1", .key_len = 2,
                       .val = (const uint8_t *)"x", .val_len = 1};
    size_t n = 0;
    assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf), &n), RK_OK);
    for (int i = 0; i < 2; i++) {
        struct kv_result r;
        assert_int_equal(kv_apply(t->kv, ++t->index, buf, (uint32_t)n, &r), RK_OK);
    }
    assert_int_equal(kv_dbsize(t->kv, 0), before + 1);
    t_close(t);
}

/* ---- sessions ------------------------------------------------------------------------------ */

static void a_retried_generic_command_gets_its_cached_result(void **state)
{
    (void)state;
    struct t *t = t_open();
    cmd(t, T0, KV_C_SET, 0, 0, "k", "old", NULL);
    struct kv_arg a[2] = {{(const uint8_t *)"k", 1}, {(const uint8_t *)"new", 3}};
    struct kv_op2 op = {.code = KV_C_SET, .flags = KV_F_GET, .argc = 2, .argv = a};
    struct kv_cmd2 c = {.client_id = 42, .seq = 1, .time_ms = T0, .n_ops = 1, .ops = &op};
    size_t len = 0;
    assert_int_equal(kv_cmd2_encode(&c, t->buf, sizeof(t->buf), &len), RK_OK);
    assert_string_equal(apply_raw(t, t->buf, len, KV_OK), "$old");
    /* The retry is not applied again, and answers what the first apply answered. */
    assert_string_equal(apply_raw(t, t->buf, len, KV_DUPLICATE), "$old");
    /* Also after a restart: the result is in the session's record. */
    t_reopen(t);
    assert_string_equal(apply_raw(t, t->buf, len, KV_DUPLICATE), "$old");
    struct kv_session_info info;
    assert_int_equal(kv_session_get(t->kv, 42, &info), RK_OK);
    assert_int_equal(info.last_seq, 1);
    assert_int_equal(info.result.op, KV_OP_CMD);
    /* An older seq: stale. */
    c.seq = 2;
    assert_int_equal(kv_cmd2_encode(&c, t->buf, sizeof(t->buf), &len), RK_OK);
    assert_string_equal(apply_raw(t, t->buf, len, KV_OK), "$new");
    c.seq = 1;
    assert_int_equal(kv_cmd2_encode(&c, t->buf, sizeof(t->buf), &len), RK_OK);
    apply_raw(t, t->buf, len, KV_STALE);
    t_close(t);
}

static void version_one_ops_and_generic_ops_share_db_0(void **state)
{
    (void)state;
    struct t *t = t_open();
    uint8_t buf[128];
    struct kv_cmd c = {.op = KV_OP_PUT,
                       .key = (const uint8_t *)"k",
                       .key_len = 1,
                       .val = (const uint8_t *)"v1",
                       .val_len = 2};
    size_t len = 0;
    assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf), &len), RK_OK);
    struct kv_result r;
    assert_int_equal(kv_apply(t->kv, ++t->index, buf, (uint32_t)len, &r), RK_OK);
    assert_string_equal(rd(t, T0, KV_C_GET, 0, 0, "k", NULL), "$v1");
    cmd(t, T0, KV_C_EXPIRE, 0, 10, "k", NULL);
    /* A version-1 PUT is a plain SET: it drops the deadline. */
    assert_int_equal(kv_apply(t->kv, ++t->index, buf, (uint32_t)len, &r), RK_OK);
    assert_string_equal(rd(t, T0, KV_C_TTL, 0, 0, "k", NULL), ":-1");
    assert_int_equal(kv_expiring_count(t->kv), 0);
    t_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cmd2_encodes_and_decodes_one_op_exactly),
        cmocka_unit_test(cmd2_refuses_what_redis_syntax_already_refuses),
        cmocka_unit_test(cmd2_undecodable_entry_is_a_bad_command_everywhere),
        cmocka_unit_test(set_get_and_del_answer_as_redis),
        cmocka_unit_test(set_options_nx_xx_get_keepttl),
        cmocka_unit_test(getset_getdel_getex),
        cmocka_unit_test(incrby_keeps_the_ttl_and_answers_redis_errors),
        cmocka_unit_test(incrbyfloat_formats_as_redis),
        cmocka_unit_test(append_setrange_strlen_getrange),
        cmocka_unit_test(mset_and_msetnx_are_all_or_nothing),
        cmocka_unit_test(rename_and_renamenx_move_value_and_ttl),
        cmocka_unit_test(copy_and_move_across_databases),
        cmocka_unit_test(databases_are_separate_and_flushed_alone_or_all),
        cmocka_unit_test(expiry_is_decided_by_the_entrys_stamp_and_the_readers_now),
        cmocka_unit_test(the_state_machine_clock_never_goes_back),
        cmocka_unit_test(expire_with_nx_xx_gt_lt_as_redis),
        cmocka_unit_test(expired_keys_are_purged_through_the_log_only_if_still_expired),
        cmocka_unit_test(deadlines_survive_a_restart),
        cmocka_unit_test(ttl_is_kept_by_in_place_changes_and_carried_by_moves),
        cmocka_unit_test(lock_scripts_act_only_for_the_holder_of_the_token),
        cmocka_unit_test(exec_applies_every_op_in_one_entry_and_answers_an_array),
        cmocka_unit_test(watch_aborts_exec_when_a_watched_key_changed),
        cmocka_unit_test(watch_of_a_key_in_another_db_is_not_touched_by_this_db),
        cmocka_unit_test(watch_of_an_absent_key),
        cmocka_unit_test(watch_sees_expiry_at_the_exec_stamp),
        cmocka_unit_test(swapdb_exchanges_databases_and_touches_watched_keys_that_exist),
        cmocka_unit_test(a_retried_generic_command_gets_its_cached_result),
        cmocka_unit_test(version_one_ops_and_generic_ops_share_db_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
