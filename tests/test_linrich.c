/*
 * test_linrich.c — sim/linrich through sim/lincheck: the checker's model of generic kv commands
 * (REPLICA_CMD), transactions, WATCH and expiry under a clock bound.
 *
 * Hand-written histories, one behaviour per test: an EXEC is all or nothing, an aborted EXEC
 * writes nothing, WATCH must abort after a write and must not abort without one, a key is gone
 * after its deadline and live before it (within the clock bound), PTTL stays within the bound.
 * Times are microseconds; the clock bound is 25ms throughout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kv/kv.h"
#include "lincheck.h"

#define BOUND_US 25000u

/* ---- encoding commands and results ------------------------------------------------------- */

struct res {
    uint8_t b[512];
    uint32_t n;
};

static void res_u32(struct res *r, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        r->b[r->n++] = (uint8_t)(v >> (8 * i));
}

static void res_text(struct res *r, char type, const char *s)
{
    r->b[r->n++] = (uint8_t)type;
    res_u32(r, (uint32_t)strlen(s));
    memcpy(r->b + r->n, s, strlen(s));
    r->n += (uint32_t)strlen(s);
}

static void res_int(struct res *r, int64_t v)
{
    r->b[r->n++] = ':';
    for (int i = 0; i < 8; i++)
        r->b[r->n++] = (uint8_t)((uint64_t)v >> (8 * i));
}

static void res_array(struct res *r, uint32_t n)
{
    r->b[r->n++] = '*';
    res_u32(r, n);
}

static void res_one(struct res *r, char type)
{
    r->b[r->n++] = (uint8_t)type;
}

static struct kv_arg arg(const char *s)
{
    return (struct kv_arg){(const uint8_t *)s, (uint32_t)strlen(s)};
}

struct cmd {
    uint8_t b[512];
    size_t n;
};

/* One op; args as strings. */
static struct kv_op2 op(uint8_t code, uint16_t flags, int64_t num, uint32_t argc,
                        const struct kv_arg *argv)
{
    return (struct kv_op2){.code = code, .flags = flags, .num = num, .argc = argc, .argv = argv};
}

static void encode(struct cmd *c, bool multi, const struct kv_op2 *ops, uint32_t n_ops,
                   uint64_t watch_index, const struct kv_watch *watches, uint32_t n_watch)
{
    struct kv_cmd2 k = {.flags = multi ? KV_CMD2_MULTI : 0,
                        .n_ops = n_ops,
                        .ops = ops,
                        .watch_index = watch_index,
                        .n_watch = n_watch,
                        .watches = watches};
    assert_int_equal(kv_cmd2_encode(&k, c->b, sizeof(c->b), &c->n), RK_OK);
}

/* Records a generic command over keys (NULL-terminated), completed OK with res (NULL: timed
 * out, outcome unknown). */
static void record(struct lin_history *h, uint64_t client, uint8_t type, const struct cmd *c,
                   const char *const *keys, uint8_t slot, uint64_t t0, uint64_t t1,
                   const struct res *r)
{
    const uint8_t *kp[4];
    uint32_t kl[4], n = 0;
    for (; keys[n] != NULL; n++) {
        kp[n] = (const uint8_t *)keys[n];
        kl[n] = (uint32_t)strlen(keys[n]);
    }
    struct lin_call call = {.client = client,
                            .time = t0,
                            .op = type,
                            .n_keys = n,
                            .keys = kp,
                            .key_lens = kl,
                            .cmd = c->b,
                            .cmd_len = (uint32_t)c->n,
                            .watch_slot = slot};
    uint64_t id = lin_invoke_call(h, &call);
    struct lin_return ret = {.res = r != NULL ? r->b : NULL, .res_len = r != NULL ? r->n : 0};
    lin_complete_ret(h, id, t1, r != NULL ? LIN_OK : LIN_UNKNOWN, r != NULL ? &ret : NULL);
}

static void get(struct lin_history *h, const char *key, const char *val, uint64_t t0, uint64_t t1)
{
    uint64_t id =
        lin_invoke(h, 9, t0, LIN_GET, (const uint8_t *)key, (uint32_t)strlen(key), NULL, 0);
    lin_complete(h, id, t1, LIN_OK, val != NULL, (const uint8_t *)val,
                 val != NULL ? (uint32_t)strlen(val) : 0, 0);
}

static struct lin_history *history(void)
{
    struct lin_history *h = lin_history_create();
    lin_history_set_clock_bound(h, BOUND_US);
    return h;
}

static int check(struct lin_history *h)
{
    struct lin_result r;
    int verdict = lin_check(h, 0, &r);
    assert_true((verdict == LIN_VIOLATION) == (r.explanation != NULL));
    lin_result_free(&r);
    lin_history_destroy(h);
    return verdict;
}

static const char *const K12[] = {"k1", "k2", NULL};
static const char *const K1[] = {"k1", NULL};

/* EXEC[SET k1 a; SET k2 b] -> [OK, OK], then an MGET of both: both or neither. */
static int exec_then_mget(const char *v1, const char *v2)
{
    struct lin_history *h = history();
    struct kv_arg a1[2] = {arg("k1"), arg("a")}, a2[2] = {arg("k2"), arg("b")};
    struct kv_op2 ops[2] = {op(KV_C_SET, 0, 0, 2, a1), op(KV_C_SET, 0, 0, 2, a2)};
    struct cmd c;
    encode(&c, true, ops, 2, 0, NULL, 0);
    struct res r = {0};
    res_array(&r, 2);
    res_text(&r, '+', "OK");
    res_text(&r, '+', "OK");
    record(h, 1, LIN_CMD, &c, K12, 0, 0, 10, &r);
    const uint8_t *kp[2] = {(const uint8_t *)"k1", (const uint8_t *)"k2"};
    uint32_t kl[2] = {2, 2};
    struct lin_call mget = {
        .client = 2, .time = 20, .op = LIN_MGET, .n_keys = 2, .keys = kp, .key_lens = kl};
    uint64_t id = lin_invoke_call(h, &mget);
    bool found[2] = {v1 != NULL, v2 != NULL};
    const uint8_t *vals[2] = {(const uint8_t *)v1, (const uint8_t *)v2};
    uint32_t lens[2] = {v1 != NULL ? 1u : 0u, v2 != NULL ? 1u : 0u};
    struct lin_return ret = {.n_vals = 2, .found = found, .vals = vals, .val_lens = lens};
    lin_complete_ret(h, id, 30, LIN_OK, &ret);
    return check(h);
}

static void test_exec_is_all_or_nothing(void **state)
{
    (void)state;
    assert_int_equal(exec_then_mget("a", "b"), LIN_LINEARIZABLE);
    assert_int_equal(exec_then_mget("a", NULL), LIN_VIOLATION);
    assert_int_equal(exec_then_mget(NULL, NULL), LIN_VIOLATION);
}

/* PUT k1 x; WATCH k1 k2 (k1 live at version 7, k2 absent); maybe a PUT k1 y; EXEC[SET k2 z]
 * carrying those versions, answered committed or aborted. */
static int watch_exec(bool write_between, bool committed)
{
    struct lin_history *h = history();
    uint64_t id = lin_invoke(h, 3, 0, LIN_PUT, (const uint8_t *)"k1", 2, (const uint8_t *)"x", 1);
    lin_complete(h, id, 5, LIN_OK, false, NULL, 0, 0);
    struct kv_arg wk[2] = {arg("k1"), arg("k2")};
    struct kv_op2 w = op(KV_C_WATCH, 0, 0, 2, wk);
    struct cmd c;
    encode(&c, false, &w, 1, 0, NULL, 0);
    struct res r = {0};
    res_array(&r, 3);
    res_int(&r, 9);
    res_int(&r, 7);
    res_int(&r, 0);
    record(h, 1, LIN_CMD_READ, &c, K12, 1, 10, 15, &r);
    if (write_between) {
        id = lin_invoke(h, 3, 20, LIN_PUT, (const uint8_t *)"k1", 2, (const uint8_t *)"y", 1);
        lin_complete(h, id, 25, LIN_OK, false, NULL, 0, 0);
    }
    struct kv_arg sa[2] = {arg("k2"), arg("z")};
    struct kv_op2 set = op(KV_C_SET, 0, 0, 2, sa);
    struct kv_watch ws[2] = {{.db = 0, .version = 7, .key = (const uint8_t *)"k1", .key_len = 2},
                             {.db = 0, .version = 0, .key = (const uint8_t *)"k2", .key_len = 2}};
    encode(&c, true, &set, 1, 9, ws, 2);
    struct res e = {0};
    if (committed) {
        res_array(&e, 1);
        res_text(&e, '+', "OK");
    } else {
        res_one(&e, 'N');
    }
    record(h, 1, LIN_CMD, &c, K12, 1, 30, 40, &e);
    get(h, "k2", committed ? "z" : NULL, 50, 60);
    return check(h);
}

static void test_watch_aborts_exactly_after_a_write(void **state)
{
    (void)state;
    assert_int_equal(watch_exec(true, false), LIN_LINEARIZABLE);
    assert_int_equal(watch_exec(true, true), LIN_VIOLATION); /* a lost update */
    assert_int_equal(watch_exec(false, true), LIN_LINEARIZABLE);
    /* Nothing written: k2 was watched absent, and kv may abort for it (its db's deletions). */
    assert_int_equal(watch_exec(false, false), LIN_LINEARIZABLE);
}

/* WATCH k1 (live), nothing written, EXEC aborted: kv must not abort it. */
static void test_watch_does_not_abort_an_unchanged_live_key(void **state)
{
    (void)state;
    struct lin_history *h = history();
    uint64_t id = lin_invoke(h, 3, 0, LIN_PUT, (const uint8_t *)"k1", 2, (const uint8_t *)"x", 1);
    lin_complete(h, id, 5, LIN_OK, false, NULL, 0, 0);
    struct kv_arg wk[1] = {arg("k1")};
    struct kv_op2 w = op(KV_C_WATCH, 0, 0, 1, wk);
    struct cmd c;
    encode(&c, false, &w, 1, 0, NULL, 0);
    struct res r = {0};
    res_array(&r, 2);
    res_int(&r, 9);
    res_int(&r, 7);
    record(h, 1, LIN_CMD_READ, &c, K1, 2, 10, 15, &r);
    struct kv_arg sa[2] = {arg("k1"), arg("z")};
    struct kv_op2 set = op(KV_C_SET, 0, 0, 2, sa);
    struct kv_watch ws = {.db = 0, .version = 7, .key = (const uint8_t *)"k1", .key_len = 2};
    encode(&c, true, &set, 1, 9, &ws, 1);
    struct res e = {0};
    res_one(&e, 'N');
    record(h, 1, LIN_CMD, &c, K1, 2, 30, 40, &e);
    assert_int_equal(check(h), LIN_VIOLATION);
}

/* SET k1 a PX 100 at [0, 1ms], then a GET at [t0, t0 + 1ms] answering val. */
static int set_px_then_get(uint64_t t0, const char *val)
{
    struct lin_history *h = history();
    struct kv_arg sa[2] = {arg("k1"), arg("a")};
    struct kv_op2 set = op(KV_C_SET, KV_F_EXP | KV_F_MS, 100, 2, sa);
    struct cmd c;
    encode(&c, false, &set, 1, 0, NULL, 0);
    struct res r = {0};
    res_text(&r, '+', "OK");
    record(h, 1, LIN_CMD, &c, K1, 0, 0, 1000, &r);
    get(h, "k1", val, t0, t0 + 1000);
    return check(h);
}

static void test_key_is_gone_after_its_deadline_within_the_bound(void **state)
{
    (void)state;
    /* The deadline is in [75ms, 126ms] of true time (100ms after a clock 25ms off). */
    assert_int_equal(set_px_then_get(10000, "a"), LIN_LINEARIZABLE);
    assert_int_equal(set_px_then_get(10000, NULL), LIN_VIOLATION);    /* surely live */
    assert_int_equal(set_px_then_get(110000, "a"), LIN_LINEARIZABLE); /* either */
    assert_int_equal(set_px_then_get(110000, NULL), LIN_LINEARIZABLE);
    assert_int_equal(set_px_then_get(300000, "a"), LIN_VIOLATION); /* surely gone */
    assert_int_equal(set_px_then_get(300000, NULL), LIN_LINEARIZABLE);
}

/* SET k1 a PX 100 at [0, 1ms], PTTL at [50ms, 51ms] answering ttl. */
static int pttl(int64_t ttl)
{
    struct lin_history *h = history();
    struct kv_arg sa[2] = {arg("k1"), arg("a")};
    struct kv_op2 set = op(KV_C_SET, KV_F_EXP | KV_F_MS, 100, 2, sa);
    struct cmd c;
    encode(&c, false, &set, 1, 0, NULL, 0);
    struct res r = {0};
    res_text(&r, '+', "OK");
    record(h, 1, LIN_CMD, &c, K1, 0, 0, 1000, &r);
    struct kv_arg ta[1] = {arg("k1")};
    struct kv_op2 t = op(KV_C_TTL, KV_F_MS, 0, 1, ta);
    encode(&c, false, &t, 1, 0, NULL, 0);
    struct res p = {0};
    res_int(&p, ttl);
    record(h, 2, LIN_CMD_READ, &c, K1, 0, 50000, 51000, &p);
    return check(h);
}

static void test_pttl_stays_within_the_bound(void **state)
{
    (void)state;
    assert_int_equal(pttl(50), LIN_LINEARIZABLE);
    assert_int_equal(pttl(100), LIN_LINEARIZABLE); /* a read clock 25ms behind */
    assert_int_equal(pttl(150), LIN_VIOLATION);
    assert_int_equal(pttl(-1), LIN_VIOLATION); /* the deadline is gone */
    /* A read clock 25ms ahead (76ms) and a stamp 25ms behind (deadline 75ms): it may be gone. */
    assert_int_equal(pttl(-2), LIN_LINEARIZABLE);
}

/* An EXEC of unknown outcome may have taken effect, wholly or not at all. */
static void test_unknown_exec_is_still_all_or_nothing(void **state)
{
    (void)state;
    for (int whole = 0; whole < 2; whole++) {
        struct lin_history *h = history();
        struct kv_arg a1[2] = {arg("k1"), arg("a")}, a2[2] = {arg("k2"), arg("b")};
        struct kv_op2 ops[2] = {op(KV_C_SET, 0, 0, 2, a1), op(KV_C_SET, 0, 0, 2, a2)};
        struct cmd c;
        encode(&c, true, ops, 2, 0, NULL, 0);
        record(h, 1, LIN_CMD, &c, K12, 0, 0, 10, NULL);
        get(h, "k1", "a", 20, 30);
        get(h, "k2", whole ? "b" : NULL, 40, 50);
        assert_int_equal(check(h), whole ? LIN_LINEARIZABLE : LIN_VIOLATION);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_is_all_or_nothing),
        cmocka_unit_test(test_watch_aborts_exactly_after_a_write),
        cmocka_unit_test(test_watch_does_not_abort_an_unchanged_live_key),
        cmocka_unit_test(test_key_is_gone_after_its_deadline_within_the_bound),
        cmocka_unit_test(test_pttl_stays_within_the_bound),
        cmocka_unit_test(test_unknown_exec_is_still_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
