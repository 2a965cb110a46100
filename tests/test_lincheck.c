/*
 * test_lincheck.c — sim/lincheck: the linearizability checker of the KV client history.
 *
 * One behaviour per test. Hand-written histories pin the model (GET/PUT/DEL on a register that
 * starts absent), the outcomes (ok, failed, unknown), the real-time order (a return and an
 * invocation at the same time are concurrent) and the report; long random histories built from
 * a sequential execution on a fixed seed pin the performance and the shrinking of evidence.
 *
 * Usage: test_lincheck [pattern]   runs only the tests whose name matches the pattern.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/prng.h"
#include "lincheck.h"

/* ---- recording ops ----------------------------------------------------------------------- */

static const uint8_t *bytes_of(const char *s)
{
    return (const uint8_t *)s;
}

static uint32_t len_of(const char *s)
{
    return s == NULL ? 0 : (uint32_t)strlen(s);
}

static uint64_t put(struct lin_history *h, uint64_t client, const char *key, const char *val,
                    uint64_t t0, uint64_t t1)
{
    uint64_t id =
        lin_invoke(h, client, t0, LIN_PUT, bytes_of(key), len_of(key), bytes_of(val), len_of(val));
    lin_complete(h, id, t1, LIN_OK, false, NULL, 0, 0);
    return id;
}

/* A PUT that timed out: it may or may not have taken effect. */
static uint64_t put_unknown(struct lin_history *h, uint64_t client, const char *key,
                            const char *val, uint64_t t0, uint64_t t1)
{
    uint64_t id =
        lin_invoke(h, client, t0, LIN_PUT, bytes_of(key), len_of(key), bytes_of(val), len_of(val));
    lin_complete(h, id, t1, LIN_UNKNOWN, false, NULL, 0, 0);
    return id;
}

/* val NULL: the GET returned nil. */
static uint64_t get(struct lin_history *h, uint64_t client, const char *key, const char *val,
                    uint64_t t0, uint64_t t1)
{
    uint64_t id = lin_invoke(h, client, t0, LIN_GET, bytes_of(key), len_of(key), NULL, 0);
    lin_complete(h, id, t1, LIN_OK, val != NULL, bytes_of(val), len_of(val), 0);
    return id;
}

static uint64_t del(struct lin_history *h, uint64_t client, const char *key, int64_t num,
                    uint64_t t0, uint64_t t1)
{
    uint64_t id = lin_invoke(h, client, t0, LIN_DEL, bytes_of(key), len_of(key), NULL, 0);
    lin_complete(h, id, t1, LIN_OK, false, NULL, 0, num);
    return id;
}

/* Checks h with the default budget and returns the verdict; h is destroyed. */
static int check_and_destroy(struct lin_history *h)
{
    struct lin_result r;
    int verdict = lin_check(h, 0, &r);
    assert_int_equal(verdict, r.verdict);
    if (verdict == LIN_VIOLATION)
        assert_non_null(r.explanation);
    else
        assert_null(r.explanation);
    lin_result_free(&r);
    lin_history_destroy(h);
    return verdict;
}


/* ---- connections, multi-key and read-modify-write ops ------------------------------------- */

static uint64_t op_c(struct lin_history *h, uint64_t conn, uint8_t op, const char *key,
                     const char *val, uint8_t cond, int64_t delta, uint64_t t0)
{
    const uint8_t *keys[1] = {bytes_of(key)};
    uint32_t key_lens[1] = {len_of(key)};
    const uint8_t *vals[1] = {bytes_of(val)};
    uint32_t val_lens[1] = {len_of(val)};
    struct lin_call c = {.client = conn, .conn = conn, .time = t0, .op = op, .n_keys = 1,
                         .keys = keys, .key_lens = key_lens, .vals = vals, .val_lens = val_lens,
                         .cond = cond, .delta = delta};
    return lin_invoke_call(h, &c);
}

/* A PUT on connection conn, completed ok at t1 (outcome LIN_UNKNOWN: timed out). */
static void put_c(struct lin_history *h, uint64_t conn, const char *key, const char *val,
                  uint64_t t0, uint64_t t1, uint8_t outcome)
{
    uint64_t id = op_c(h, conn, LIN_PUT, key, val, 0, 0, t0);
    lin_complete_ret(h, id, t1, outcome, NULL);
}

static void get_c(struct lin_history *h, uint64_t conn, const char *key, const char *val,
                  uint64_t t0, uint64_t t1)
{
    uint64_t id = op_c(h, conn, LIN_GET, key, NULL, 0, 0, t0);
    bool found = val != NULL;
    const uint8_t *vals[1] = {bytes_of(val)};
    uint32_t lens[1] = {len_of(val)};
    struct lin_return r = {.n_vals = 1, .found = &found, .vals = vals, .val_lens = lens};
    lin_complete_ret(h, id, t1, LIN_OK, &r);
}

static void incr(struct lin_history *h, uint64_t conn, const char *key, int64_t delta,
                 bool error, int64_t result, uint64_t t0, uint64_t t1)
{
    uint64_t id = op_c(h, conn, LIN_INCRBY, key, NULL, 0, delta, t0);
    struct lin_return r = {.num = result, .error = error};
    lin_complete_ret(h, id, t1, LIN_OK, &r);
}

static void put_if(struct lin_history *h, uint64_t conn, const char *key, const char *val,
                   uint8_t cond, int64_t written, uint64_t t0, uint64_t t1)
{
    uint64_t id = op_c(h, conn, LIN_PUT_IF, key, val, cond, 0, t0);
    struct lin_return r = {.num = written};
    lin_complete_ret(h, id, t1, LIN_OK, &r);
}

/* MSET of "k1=v1,k2=v2" style pairs given as two arrays of n. */
static void mset(struct lin_history *h, uint64_t conn, uint32_t n, const char *const *keys,
                 const char *const *vals, uint64_t t0, uint64_t t1, uint8_t outcome)
{
    const uint8_t *kp[LIN_MAX_KEYS], *vp[LIN_MAX_KEYS];
    uint32_t kl[LIN_MAX_KEYS], vl[LIN_MAX_KEYS];
    for (uint32_t i = 0; i < n; i++) {
        kp[i] = bytes_of(keys[i]);
        kl[i] = len_of(keys[i]);
        vp[i] = bytes_of(vals[i]);
        vl[i] = len_of(vals[i]);
    }
    struct lin_call c = {.client = conn, .conn = conn, .time = t0, .op = LIN_MSET, .n_keys = n,
                         .keys = kp, .key_lens = kl, .vals = vp, .val_lens = vl};
    uint64_t id = lin_invoke_call(h, &c);
    lin_complete_ret(h, id, t1, outcome, NULL);
}

/* MGET of n keys that returned vals (NULL: nil). */
static void mget(struct lin_history *h, uint64_t conn, uint32_t n, const char *const *keys,
                 const char *const *vals, uint64_t t0, uint64_t t1)
{
    const uint8_t *kp[LIN_MAX_KEYS], *vp[LIN_MAX_KEYS];
    uint32_t kl[LIN_MAX_KEYS], vl[LIN_MAX_KEYS];
    bool found[LIN_MAX_KEYS];
    for (uint32_t i = 0; i < n; i++) {
        kp[i] = bytes_of(keys[i]);
        kl[i] = len_of(keys[i]);
        vp[i] = bytes_of(vals[i]);
        vl[i] = len_of(vals[i]);
        found[i] = vals[i] != NULL;
    }
    struct lin_call c = {.client = conn, .conn = conn, .time = t0, .op = LIN_MGET, .n_keys = n,
                         .keys = kp, .key_lens = kl};
    uint64_t id = lin_invoke_call(h, &c);
    struct lin_return r = {.n_vals = n, .found = found, .vals = vp, .val_lens = vl};
    lin_complete_ret(h, id, t1, LIN_OK, &r);
}

/* A pipelined GET sent after a PUT on the same connection must see it, although the two
 * overlap in real time (the bug of issue #13: a follower served the read first). */
static void test_read_after_write_on_one_connection_must_see_it(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_c(h, 1, "k", "1", 0, 100, LIN_OK);
    get_c(h, 1, "k", NULL, 10, 50);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_same_ops_on_two_connections_are_concurrent(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_c(h, 1, "k", "1", 0, 100, LIN_OK);
    get_c(h, 2, "k", NULL, 10, 50);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

/* A write sent after a read on the same connection cannot be what the read saw. */
static void test_read_cannot_see_a_later_write_of_its_connection(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    get_c(h, 1, "k", "1", 0, 100);
    put_c(h, 1, "k", "1", 10, 50, LIN_OK);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

/* An op of unknown outcome may take effect at any time: it orders nothing after it. */
static void test_unknown_write_is_no_predecessor(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_c(h, 1, "k", "1", 0, 100, LIN_UNKNOWN);
    get_c(h, 1, "k", NULL, 10, 50);
    get_c(h, 2, "k", "1", 200, 210);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

/* Program order is transitive through ops on the connection. */
static void test_program_order_is_transitive(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_c(h, 1, "k", "1", 0, 100, LIN_OK);
    put_c(h, 1, "k", "2", 5, 100, LIN_OK);
    get_c(h, 1, "k", "1", 10, 100); /* after both writes: "2" */
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_connection_order_in_a_pending_register_history(void **state)
{
    (void)state;
    /* The register search's reductions of pending writes (twins) must respect order: the
     * second unknown PUT "x" waits for the GET before it. */
    struct lin_history *h = lin_history_create();
    put_c(h, 2, "k", "x", 0, 1, LIN_UNKNOWN);
    get_c(h, 1, "k", NULL, 0, 300);
    put_c(h, 1, "k", "x", 10, 11, LIN_UNKNOWN);
    get_c(h, 3, "k", "x", 20, 30);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_mget_sees_an_mset_whole(void **state)
{
    (void)state;
    static const char *const keys[2] = {"a", "b"};
    static const char *const one[2] = {"1", "1"};
    static const char *const two[2] = {"2", "2"};
    struct lin_history *h = lin_history_create();
    mset(h, 1, 2, keys, one, 0, 10, LIN_OK);
    mset(h, 1, 2, keys, two, 20, 30, LIN_OK);
    mget(h, 2, 2, keys, one, 15, 40);
    mget(h, 3, 2, keys, two, 15, 40);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_mget_seeing_half_an_mset_is_a_violation(void **state)
{
    (void)state;
    static const char *const keys[2] = {"a", "b"};
    static const char *const one[2] = {"1", "1"};
    static const char *const two[2] = {"2", "2"};
    static const char *const mixed[2] = {"2", "1"};
    struct lin_history *h = lin_history_create();
    mset(h, 1, 2, keys, one, 0, 10, LIN_OK);
    mset(h, 1, 2, keys, two, 20, 30, LIN_OK);
    mget(h, 2, 2, keys, mixed, 15, 40);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_mget_seeing_half_of_an_unknown_mset_is_a_violation(void **state)
{
    (void)state;
    static const char *const keys[2] = {"a", "b"};
    static const char *const one[2] = {"1", "1"};
    static const char *const half[2] = {"1", NULL};
    struct lin_history *h = lin_history_create();
    mset(h, 1, 2, keys, one, 0, 10, LIN_UNKNOWN);
    mget(h, 2, 2, keys, half, 15, 40);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_mget_and_get_agree_on_the_component(void **state)
{
    (void)state;
    static const char *const keys[2] = {"a", "b"};
    static const char *const one[2] = {"1", "1"};
    static const char *const nil[2] = {NULL, NULL};
    struct lin_history *h = lin_history_create();
    mset(h, 1, 2, keys, one, 0, 10, LIN_OK);
    get_c(h, 2, "b", "1", 20, 30);
    mget(h, 3, 2, keys, nil, 40, 50); /* after the GET saw the MSET */
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_components_join_keys_of_multi_key_ops(void **state)
{
    (void)state;
    static const char *const ab[2] = {"a", "b"};
    static const char *const bc[2] = {"b", "c"};
    static const char *const v[2] = {"1", "1"};
    struct lin_history *h = lin_history_create();
    mset(h, 1, 2, ab, v, 0, 10, LIN_OK);
    mset(h, 1, 2, bc, v, 20, 30, LIN_OK);
    put_c(h, 2, "d", "1", 0, 10, LIN_OK);
    get_c(h, 2, "e", NULL, 20, 30);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_LINEARIZABLE);
    assert_int_equal(r.keys_checked, 5);
    assert_int_equal(r.components, 3); /* {a, b, c}, {d}, {e} */
    lin_result_free(&r);
    lin_history_destroy(h);
}

static void test_incrby_counts_from_absent(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    incr(h, 1, "n", 5, false, 5, 0, 10);
    incr(h, 2, "n", -2, false, 3, 20, 30);
    get_c(h, 1, "n", "3", 40, 50);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_two_increments_returning_the_same_value_is_a_violation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    incr(h, 1, "n", 1, false, 1, 0, 10);
    incr(h, 2, "n", 1, false, 1, 0, 10);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_incrby_of_a_non_integer_is_an_error_and_writes_nothing(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_c(h, 1, "n", "abc", 0, 10, LIN_OK);
    incr(h, 1, "n", 1, true, 0, 20, 30);
    get_c(h, 1, "n", "abc", 40, 50);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
    h = lin_history_create();
    put_c(h, 1, "n", "7", 0, 10, LIN_OK);
    incr(h, 1, "n", 1, true, 0, 20, 30); /* 7 is an integer */
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_two_set_nx_cannot_both_write(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_if(h, 1, "k", "a", LIN_COND_NX, 1, 0, 10);
    put_if(h, 2, "k", "b", LIN_COND_NX, 1, 0, 10);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
    h = lin_history_create();
    put_if(h, 1, "k", "a", LIN_COND_NX, 1, 0, 10);
    put_if(h, 2, "k", "b", LIN_COND_NX, 0, 0, 10);
    get_c(h, 3, "k", "a", 20, 30);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_set_xx_on_an_absent_key_writes_nothing(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_if(h, 1, "k", "a", LIN_COND_XX, 1, 0, 10);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
    h = lin_history_create();
    put_if(h, 1, "k", "a", LIN_COND_XX, 0, 0, 10);
    get_c(h, 1, "k", NULL, 20, 30);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_multi_key_explanation_names_the_ops_and_connections(void **state)
{
    (void)state;
    static const char *const keys[2] = {"a", "b"};
    static const char *const one[2] = {"1", "1"};
    static const char *const nil[2] = {NULL, NULL};
    struct lin_history *h = lin_history_create();
    mset(h, 4, 2, keys, one, 0, 100, LIN_OK);
    mget(h, 4, 2, keys, nil, 10, 50); /* pipelined after the MSET on conn 4 */
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_VIOLATION);
    print_message("%s", r.explanation);
    assert_string_equal(r.key, "a");
    assert_int_equal(r.keys_violated, 2);
    assert_non_null(strstr(r.explanation, "conn 4  [0, 100]  MSET \"a\"=\"1\" \"b\"=\"1\" -> ok"));
    assert_non_null(strstr(r.explanation, "conn 4  [10, 50]  MGET \"a\" \"b\" -> [nil, nil]"));
    lin_result_free(&r);
    lin_history_destroy(h);
}

/* A sequential execution over one connection of every op kind, on key groups, pipelined
 * (each op invoked before the previous returns), checks as linearizable; the same history
 * with one read made stale fails. */
static void test_long_pipelined_history_of_every_op_kind(void **state)
{
    (void)state;
    for (int stale = 0; stale < 2; stale++) {
        struct lin_history *h = lin_history_create();
        struct rk_prng prng;
        rk_prng_seed(&prng, 42);
        static const char *const keys[4] = {"g0a", "g0b", "g1a", "g1b"};
        int64_t val[4] = {0, 0, 0, 0};
        bool present[4] = {false, false, false, false};
        uint64_t t = 0;
        bool injected = false;
        for (int i = 0; i < 2000; i++) {
            uint32_t k = (uint32_t)(rk_prng_next(&prng) % 4), g = k / 2 * 2;
            uint64_t conn = 1 + rk_prng_next(&prng) % 3;
            char v[32], w[32];
            const char *pair[2] = {keys[g], keys[g + 1]};
            switch (rk_prng_next(&prng) % 5) {
            case 0:
                val[k] = i;
                present[k] = true;
                snprintf(v, sizeof(v), "%d", i);
                put_c(h, conn, keys[k], v, t, t + 3, LIN_OK);
                break;
            case 1:
                val[k] = (present[k] ? val[k] : 0) + 2;
                present[k] = true;
                incr(h, conn, keys[k], 2, false, val[k], t, t + 3);
                break;
            case 2: {
                snprintf(v, sizeof(v), "%d", i);
                snprintf(w, sizeof(w), "%d", i + 1);
                const char *vals[2] = {v, w};
                val[g] = i;
                val[g + 1] = i + 1;
                present[g] = present[g + 1] = true;
                mset(h, conn, 2, pair, vals, t, t + 3, LIN_OK);
                break;
            }
            case 3: {
                char a[32], b[32];
                snprintf(a, sizeof(a), "%lld", (long long)val[g]);
                snprintf(b, sizeof(b), "%lld", (long long)val[g + 1]);
                const char *vals[2] = {present[g] ? a : NULL, present[g + 1] ? b : NULL};
                if (stale && i >= 1500 && !injected) {
                    vals[0] = "never written";
                    injected = true;
                }
                mget(h, conn, 2, pair, vals, t, t + 3);
                break;
            }
            default:
                put_if(h, conn, keys[k], "nx", LIN_COND_NX, present[k] ? 0 : 1, t, t + 3);
                if (!present[k]) {
                    present[k] = true;
                    val[k] = 0;
                    put_c(h, conn, keys[k], "0", t + 1, t + 4, LIN_OK);
                }
                break;
            }
            t += 2; /* the next op is invoked before this one returns */
        }
        assert_int_equal(check_and_destroy(h), stale ? LIN_VIOLATION : LIN_LINEARIZABLE);
    }
}

/* ---- the model ------------------------------------------------------------------------- */

static void test_empty_history_is_linearizable(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_LINEARIZABLE);
    assert_int_equal(r.keys_checked, 0);
    lin_result_free(&r);
    lin_history_destroy(h);
}

static void test_history_size_counts_invocations(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "a", "1", 0, 1);
    get(h, 1, "a", "1", 2, 3);
    lin_invoke(h, 2, 4, LIN_DEL, bytes_of("a"), 1, NULL, 0);
    assert_int_equal(lin_history_size(h), 3);
    lin_history_destroy(h);
}

static void test_sequential_history_is_linearizable(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    get(h, 1, "k", NULL, 0, 1);
    put(h, 1, "k", "1", 2, 3);
    get(h, 2, "k", "1", 4, 5);
    put(h, 2, "k", "2", 6, 7);
    get(h, 1, "k", "2", 8, 9);
    del(h, 1, "k", 1, 10, 11);
    get(h, 2, "k", NULL, 12, 13);
    del(h, 2, "k", 0, 14, 15);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_stale_read_after_completed_write_is_a_violation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    put(h, 1, "k", "2", 20, 30);
    get(h, 2, "k", "1", 40, 50);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_concurrent_write_and_read_may_see_the_old_value(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    put(h, 1, "k", "2", 20, 50);
    get(h, 2, "k", "1", 30, 40);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_concurrent_write_and_read_may_see_the_new_value(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    put(h, 1, "k", "2", 20, 50);
    get(h, 2, "k", "2", 30, 40);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_read_of_value_never_written_is_a_violation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    get(h, 2, "k", "7", 5, 15);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_read_before_any_write_is_nil(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    get(h, 2, "k", "1", 0, 5);
    put(h, 1, "k", "1", 10, 20);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_empty_value_is_not_nil(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "", 0, 10);
    get(h, 2, "k", "", 20, 30);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);

    h = lin_history_create();
    put(h, 1, "k", "", 0, 10);
    get(h, 2, "k", NULL, 20, 30);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_value_written_to_another_key_is_not_visible(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "a", "1", 0, 10);
    get(h, 2, "b", "1", 20, 30);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

/* Herlihy & Wing's point about registers: two writes, and two readers that see them in
 * opposite orders in real time. Either reader alone is fine; together no order exists. */
static void test_readers_seeing_writes_in_opposite_orders_is_a_violation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 100);
    put(h, 2, "k", "2", 0, 100);
    get(h, 3, "k", "1", 10, 20);
    get(h, 3, "k", "2", 30, 40);
    get(h, 4, "k", "2", 10, 20);
    get(h, 4, "k", "1", 30, 40);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_one_reader_seeing_both_writes_in_order_is_linearizable(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 100);
    put(h, 2, "k", "2", 0, 100);
    get(h, 3, "k", "1", 10, 20);
    get(h, 3, "k", "2", 30, 40);
    get(h, 4, "k", "1", 10, 20);
    get(h, 4, "k", "2", 30, 40);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

/* A returned at t and B invoked at t: the order is not proven, so they are concurrent. */
static void test_return_and_invoke_at_same_time_are_concurrent(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    get(h, 2, "k", NULL, 10, 20);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);

    h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    get(h, 2, "k", NULL, 11, 20);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_invocations_out_of_time_order_are_fine(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    get(h, 2, "k", "2", 40, 50);
    put(h, 1, "k", "2", 20, 30);
    put(h, 1, "k", "1", 0, 10);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

/* ---- outcomes -------------------------------------------------------------------------- */

static void test_unknown_put_seen_later_is_linearizable(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_unknown(h, 1, "k", "1", 0, 5);
    get(h, 2, "k", NULL, 10, 20);
    get(h, 2, "k", "1", 1000, 1010);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_unknown_put_never_seen_is_linearizable(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_unknown(h, 1, "k", "1", 0, 5);
    get(h, 2, "k", NULL, 10, 20);
    get(h, 2, "k", NULL, 1000, 1010);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

/* With no other writer, once the unknown PUT was seen it took effect: nil cannot come back. */
static void test_unknown_put_seen_then_unseen_is_a_violation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_unknown(h, 1, "k", "1", 0, 5);
    get(h, 2, "k", "1", 10, 20);
    get(h, 2, "k", NULL, 30, 40);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

/* Seen, unseen, seen: the PUT takes effect at most once. */
static void test_unknown_put_flip_flop_is_a_violation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 3, "k", "0", 0, 1);
    put_unknown(h, 1, "k", "1", 2, 5);
    get(h, 2, "k", "1", 10, 20);
    get(h, 2, "k", "0", 30, 40);
    get(h, 2, "k", "1", 50, 60);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

/* An unknown write may take effect only after its invocation. */
static void test_unknown_put_cannot_take_effect_before_its_invocation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    get(h, 2, "k", "1", 0, 10);
    put_unknown(h, 1, "k", "1", 20, 25);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_op_never_completed_counts_as_unknown(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    lin_invoke(h, 1, 0, LIN_PUT, bytes_of("k"), 1, bytes_of("1"), 1);
    get(h, 2, "k", NULL, 10, 20);
    get(h, 2, "k", "1", 1000, 1010);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_failed_put_is_dropped(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    uint64_t id = lin_invoke(h, 1, 0, LIN_PUT, bytes_of("k"), 1, bytes_of("1"), 1);
    lin_complete(h, id, 5, LIN_FAIL, false, NULL, 0, 0);
    get(h, 2, "k", "1", 10, 20);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_unknown_get_is_dropped(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    uint64_t id = lin_invoke(h, 1, 0, LIN_GET, bytes_of("k"), 1, NULL, 0);
    lin_complete(h, id, 5, LIN_UNKNOWN, true, bytes_of("never"), 5, 0);
    put(h, 2, "k", "1", 10, 20);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

/* ---- DEL ------------------------------------------------------------------------------- */

static void test_del_returning_one_on_never_written_key_is_a_violation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    del(h, 1, "k", 1, 0, 10);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_del_returns_one_then_zero_after_a_put(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    del(h, 2, "k", 1, 20, 30);
    del(h, 1, "k", 0, 40, 50);
    get(h, 2, "k", NULL, 60, 70);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

static void test_del_returning_zero_after_completed_put_is_a_violation(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    del(h, 2, "k", 0, 20, 30);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_two_concurrent_dels_cannot_both_remove_the_key(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    del(h, 2, "k", 1, 20, 30);
    del(h, 3, "k", 1, 20, 30);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_read_after_completed_del_is_nil(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    del(h, 1, "k", 1, 20, 30);
    get(h, 2, "k", "1", 40, 50);
    assert_int_equal(check_and_destroy(h), LIN_VIOLATION);
}

static void test_unknown_del_may_explain_a_nil_read(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "1", 0, 10);
    uint64_t id = lin_invoke(h, 2, 20, LIN_DEL, bytes_of("k"), 1, NULL, 0);
    lin_complete(h, id, 25, LIN_UNKNOWN, false, NULL, 0, 0);
    get(h, 3, "k", NULL, 40, 50);
    assert_int_equal(check_and_destroy(h), LIN_LINEARIZABLE);
}

/* ---- the report ------------------------------------------------------------------------ */

static void test_violation_on_one_key_is_reported_with_that_key(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "a", "1", 0, 10);
    put(h, 1, "b", "1", 0, 10);
    get(h, 2, "a", "1", 20, 30);
    put(h, 1, "b", "2", 20, 30);
    get(h, 2, "b", "1", 40, 50);
    put(h, 1, "c", "1", 40, 50);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_VIOLATION);
    assert_string_equal(r.key, "b");
    assert_int_equal(r.keys_checked, 3);
    assert_int_equal(r.keys_violated, 1);
    assert_int_equal(r.keys_gave_up, 0);
    lin_result_free(&r);
    lin_history_destroy(h);
}

static void test_explanation_names_the_key_and_the_ops(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 7, "user:1", "alice", 100, 110);
    put(h, 8, "user:1", "bob", 120, 130);
    get(h, 9, "user:1", "alice", 140, 150);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_VIOLATION);
    assert_string_equal(r.key, "user:1");
    assert_int_equal(r.evidence_ops, 3);
    const char *e = r.explanation;
    print_message("%s", e);
    assert_non_null(strstr(e, "key \"user:1\""));
    assert_non_null(strstr(e, "client 7  [100, 110]  PUT \"alice\" -> ok"));
    assert_non_null(strstr(e, "client 8  [120, 130]  PUT \"bob\" -> ok"));
    assert_non_null(strstr(e, "client 9  [140, 150]  GET -> \"alice\""));
    assert_non_null(strstr(e, "complete at time 150"));
    lin_result_free(&r);
    assert_null(r.explanation);
    lin_history_destroy(h);
}

static void test_explanation_shows_unknown_ops(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put_unknown(h, 1, "k", "1", 0, 5);
    get(h, 2, "k", "1", 10, 20);
    get(h, 2, "k", NULL, 30, 40);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_VIOLATION);
    assert_non_null(strstr(r.explanation, "client 1  [0, inf)  PUT \"1\" -> unknown (timed out"));
    assert_non_null(strstr(r.explanation, "GET -> nil"));
    lin_result_free(&r);
    lin_history_destroy(h);
}

/* Ops that play no part (other readers, earlier writes, later ops) are left out. */
static void test_evidence_leaves_out_unneeded_ops(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    put(h, 1, "k", "0", 0, 10);
    get(h, 2, "k", "0", 5, 15);
    put(h, 1, "k", "1", 20, 30);
    get(h, 3, "k", "1", 25, 35);
    del(h, 1, "k", 1, 40, 50);
    get(h, 2, "k", NULL, 45, 55);
    put(h, 1, "k", "2", 60, 70);
    get(h, 3, "k", "1", 80, 90); /* stale: "2" completed before */
    put(h, 1, "k", "3", 100, 110);
    get(h, 2, "k", "3", 120, 130);
    del(h, 3, "k", 1, 140, 150);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_VIOLATION);
    print_message("%s", r.explanation);
    assert_int_equal(r.evidence_ops, 3);
    assert_non_null(strstr(r.explanation, "[20, 30]  PUT \"1\""));
    assert_non_null(strstr(r.explanation, "[60, 70]  PUT \"2\""));
    assert_non_null(strstr(r.explanation, "[80, 90]  GET -> \"1\""));
    assert_null(strstr(r.explanation, "[100, 110]"));
    assert_null(strstr(r.explanation, "[0, 10]"));
    lin_result_free(&r);
    lin_history_destroy(h);
}

static void test_binary_key_is_escaped_in_the_result(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    const uint8_t key[] = {'k', 0x00, '"', 0xff};
    uint64_t id = lin_invoke(h, 1, 0, LIN_DEL, key, sizeof(key), NULL, 0);
    lin_complete(h, id, 10, LIN_OK, false, NULL, 0, 1);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_VIOLATION);
    assert_string_equal(r.key, "k\\x00\\x22\\xff");
    lin_result_free(&r);
    lin_history_destroy(h);
}

static void test_long_key_is_truncated_in_the_result(void **state)
{
    (void)state;
    char key[200];
    memset(key, 'x', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    struct lin_history *h = lin_history_create();
    del(h, 1, key, 1, 0, 10);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_VIOLATION);
    assert_int_equal(strlen(r.key), sizeof(r.key) - 1);
    assert_memory_equal(r.key, key, sizeof(r.key) - 4);
    assert_string_equal(r.key + sizeof(r.key) - 4, "...");
    lin_result_free(&r);
    lin_history_destroy(h);
}

/* ---- random histories ------------------------------------------------------------------ */

#define GEN_CLIENTS  8
#define GEN_KEYS     5
#define GEN_OPS      20000
#define GEN_VAL_SIZE 24
#define GEN_SEED     0x5eed1234u

struct gen_op {
    uint64_t client, inv, ret;
    uint32_t key;
    uint8_t type, outcome;
    bool found;             /* GET */
    int64_t num;            /* DEL */
    char val[GEN_VAL_SIZE]; /* PUT: written; GET: read */
};

struct gen {
    struct rk_prng prng;
    struct gen_op ops[GEN_OPS];
    bool present[GEN_KEYS];
    char value[GEN_KEYS][GEN_VAL_SIZE];
    uint64_t client_free[GEN_CLIENTS];
};

static const char *const gen_keys[GEN_KEYS] = {"k0", "k1", "k2", "k3", "k4"};

/* Applies op (at its linearization point) to the sequential register model. */
static void gen_apply(struct gen *g, struct gen_op *o)
{
    bool *present = &g->present[o->key];
    char *value = g->value[o->key];
    switch (o->type) {
    case LIN_GET:
        o->found = *present;
        if (*present)
            memcpy(o->val, value, GEN_VAL_SIZE);
        break;
    case LIN_PUT:
        *present = true;
        memcpy(value, o->val, GEN_VAL_SIZE);
        break;
    default:
        o->num = *present ? 1 : 0;
        *present = false;
        break;
    }
}

/* A client free at p, trying from a random one; -1 if all are busy. */
static int gen_pick_client(struct gen *g, uint64_t p)
{
    uint32_t c0 = (uint32_t)rk_prng_below(&g->prng, GEN_CLIENTS);
    for (uint32_t i = 0; i < GEN_CLIENTS; i++) {
        uint32_t c = (c0 + i) % GEN_CLIENTS;
        if (g->client_free[c] < p)
            return (int)c;
    }
    return -1;
}

/*
 * A sequential execution with linearization points 10 apart, each op's interval a random
 * window around its point (up to 40 either side, after the client's previous op): up to ~8
 * ops overlap. uncertain_pct of the writes time out (taking effect or not) or fail.
 */
static void gen_history(struct gen *g, uint32_t uncertain_pct)
{
    memset(g, 0, sizeof(*g));
    rk_prng_seed(&g->prng, GEN_SEED);
    uint64_t p = 100;
    for (uint32_t n = 0; n < GEN_OPS; p += 10) {
        int c = gen_pick_client(g, p);
        if (c < 0)
            continue;
        struct gen_op *o = &g->ops[n];
        uint64_t before = rk_prng_below(&g->prng, 40);
        o->client = (uint64_t)c + 1;
        o->inv = p - before > g->client_free[c] ? p - before : g->client_free[c] + 1;
        o->ret = p + rk_prng_below(&g->prng, 40);
        g->client_free[c] = o->ret;
        o->key = (uint32_t)rk_prng_below(&g->prng, GEN_KEYS);
        uint64_t r = rk_prng_below(&g->prng, 100);
        o->type = r < 50 ? LIN_GET : r < 85 ? LIN_PUT : LIN_DEL;
        if (o->type == LIN_PUT)
            snprintf(o->val, GEN_VAL_SIZE, "c%d-%u", c + 1, n);
        o->outcome = LIN_OK;
        if (o->type != LIN_GET && rk_prng_below(&g->prng, 100) < uncertain_pct)
            o->outcome = rk_prng_below(&g->prng, 2) ? LIN_UNKNOWN : LIN_FAIL;
        /* An unknown write takes effect or not; a failed one does not. */
        if (o->outcome == LIN_OK || (o->outcome == LIN_UNKNOWN && rk_prng_below(&g->prng, 2)))
            gen_apply(g, o);
        n++;
    }
}

static struct lin_history *gen_record(const struct gen *g)
{
    struct lin_history *h = lin_history_create();
    for (uint32_t i = 0; i < GEN_OPS; i++) {
        const struct gen_op *o = &g->ops[i];
        const char *key = gen_keys[o->key];
        uint32_t vlen = o->type == LIN_PUT ? len_of(o->val) : 0;
        uint64_t id = lin_invoke(h, o->client, o->inv, o->type, bytes_of(key), len_of(key),
                                 bytes_of(o->val), vlen);
        assert_int_equal(id, i);
    }
    for (uint32_t i = 0; i < GEN_OPS; i++) {
        const struct gen_op *o = &g->ops[i];
        uint32_t vlen = o->type == LIN_GET && o->found ? len_of(o->val) : 0;
        lin_complete(h, i, o->ret, o->outcome, o->found, bytes_of(o->val), vlen, o->num);
    }
    return h;
}

/* The last completed write on o's key that returned before o was invoked, from i down. */
static int gen_last_write_before(const struct gen *g, uint32_t key, uint64_t t, int from)
{
    for (int j = from; j >= 0; j--) {
        const struct gen_op *w = &g->ops[j];
        if (w->key == key && w->type != LIN_GET && w->outcome == LIN_OK && w->ret < t)
            return j;
    }
    return -1;
}

/*
 * Makes one GET from the middle on read a value overwritten before it was invoked: a PUT w of
 * that value returned before a write w2 was invoked, and w2 returned before the GET was
 * invoked. Values are unique, so no order explains it. Returns the GET's index.
 */
static uint32_t gen_inject_stale_read(struct gen *g, uint32_t *w_out, uint32_t *w2_out)
{
    for (uint32_t i = GEN_OPS / 2; i < GEN_OPS; i++) {
        struct gen_op *o = &g->ops[i];
        if (o->type != LIN_GET)
            continue;
        int w2 = gen_last_write_before(g, o->key, o->inv, (int)i - 1);
        if (w2 < 0)
            continue;
        int w = gen_last_write_before(g, o->key, g->ops[w2].inv, w2 - 1);
        while (w >= 0 && g->ops[w].type != LIN_PUT)
            w = gen_last_write_before(g, o->key, g->ops[w2].inv, w - 1);
        if (w < 0)
            continue;
        o->found = true;
        memcpy(o->val, g->ops[w].val, GEN_VAL_SIZE);
        *w_out = (uint32_t)w;
        *w2_out = (uint32_t)w2;
        return i;
    }
    fail_msg("no GET to make stale");
    return 0;
}

static void test_long_random_history_is_linearizable(void **state)
{
    (void)state;
    struct gen *g = malloc(sizeof(*g));
    assert_non_null(g);
    gen_history(g, 0);
    struct lin_history *h = gen_record(g);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_LINEARIZABLE);
    assert_int_equal(r.keys_checked, GEN_KEYS);
    assert_int_equal(r.keys_gave_up, 0);
    print_message("%d ops, %d keys, %d clients: %llu states\n", GEN_OPS, GEN_KEYS, GEN_CLIENTS,
                  (unsigned long long)r.states_explored);
    /* Lowe's just-in-time search linearizes such a history almost without backtracking. */
    assert_true(r.states_explored < 4 * (uint64_t)GEN_OPS);
    lin_result_free(&r);
    lin_history_destroy(h);
    free(g);
}

static void test_long_random_history_with_unknown_and_failed_writes_is_linearizable(void **state)
{
    (void)state;
    struct gen *g = malloc(sizeof(*g));
    assert_non_null(g);
    gen_history(g, 2);
    struct lin_history *h = gen_record(g);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_LINEARIZABLE);
    assert_int_equal(r.keys_gave_up, 0);
    print_message("with 2%% uncertain writes: %llu states\n",
                  (unsigned long long)r.states_explored);
    lin_result_free(&r);
    lin_history_destroy(h);
    free(g);
}

static void test_long_random_history_with_one_stale_read_is_a_violation(void **state)
{
    (void)state;
    struct gen *g = malloc(sizeof(*g));
    assert_non_null(g);
    gen_history(g, 0);
    uint32_t w, w2;
    uint32_t stale = gen_inject_stale_read(g, &w, &w2);
    struct lin_history *h = gen_record(g);
    struct lin_result r;
    assert_int_equal(lin_check(h, 0, &r), LIN_VIOLATION);
    print_message("stale read by op %u: %llu states, %llu shrinking\n%s", stale,
                  (unsigned long long)r.states_explored, (unsigned long long)r.shrink_states,
                  r.explanation);
    assert_string_equal(r.key, gen_keys[g->ops[stale].key]);
    assert_int_equal(r.keys_violated, 1);
    /* The evidence is the three ops that contradict each other. */
    assert_int_equal(r.evidence_ops, 3);
    char line[64];
    uint32_t ids[3] = {w, w2, stale};
    for (int i = 0; i < 3; i++) {
        snprintf(line, sizeof(line), "  op %u  client %llu  [%llu, %llu]", ids[i],
                 (unsigned long long)g->ops[ids[i]].client, (unsigned long long)g->ops[ids[i]].inv,
                 (unsigned long long)g->ops[ids[i]].ret);
        assert_non_null(strstr(r.explanation, line));
    }
    lin_result_free(&r);
    lin_history_destroy(h);
    free(g);
}

static void test_check_is_deterministic(void **state)
{
    (void)state;
    struct gen *g = malloc(sizeof(*g));
    assert_non_null(g);
    gen_history(g, 2);
    uint32_t w, w2;
    gen_inject_stale_read(g, &w, &w2);
    struct lin_history *h1 = gen_record(g);
    struct lin_history *h2 = gen_record(g);
    struct lin_result r1, r2;
    assert_int_equal(lin_check(h1, 0, &r1), LIN_VIOLATION);
    assert_int_equal(lin_check(h2, 0, &r2), LIN_VIOLATION);
    assert_string_equal(r1.explanation, r2.explanation);
    assert_int_equal(r1.states_explored, r2.states_explored);
    assert_int_equal(r1.shrink_states, r2.shrink_states);
    lin_result_free(&r1);
    /* Checking does not change the history: a second check of it gives the same. */
    assert_int_equal(lin_check(h1, 0, &r1), LIN_VIOLATION);
    assert_string_equal(r1.explanation, r2.explanation);
    lin_result_free(&r1);
    lin_result_free(&r2);
    lin_history_destroy(h1);
    lin_history_destroy(h2);
    free(g);
}

/* 16 PUTs and 16 GETs all concurrent, then a nil read that no order explains: proving that
 * takes every subset of the 32; a budget of 1000 states stops the search instead. */
static void test_tiny_budget_gives_up_on_highly_concurrent_history(void **state)
{
    (void)state;
    struct lin_history *h = lin_history_create();
    char val[8];
    for (int i = 0; i < 16; i++) {
        snprintf(val, sizeof(val), "%d", i);
        put(h, (uint64_t)i, "k", val, 0, 1000);
        get(h, (uint64_t)(16 + i), "k", val, 0, 1000);
    }
    get(h, 99, "k", NULL, 2000, 2010);
    put(h, 1, "other", "1", 0, 10);
    struct lin_result r;
    assert_int_equal(lin_check(h, 1000, &r), LIN_GAVE_UP);
    assert_int_equal(r.keys_checked, 2);
    assert_int_equal(r.keys_gave_up, 1);
    assert_int_equal(r.keys_violated, 0);
    assert_true(r.states_explored <= 1000 + 1 + 1);
    assert_null(r.explanation);
    lin_result_free(&r);
    lin_history_destroy(h);
}

/* ---- against brute force ------------------------------------------------------------------ */

#define SMALL_OPS_MAX 7

struct small_op {
    uint64_t inv, ret;
    uint8_t type, outcome; /* outcome 0: never completed */
    uint8_t in;            /* PUT: value 1 or 2 */
    uint8_t out;           /* GET: 0 nil, 1 or 2; DEL: removed count */
};

/* Does a precede b in real time? Only a completed op precedes, by returning strictly before. */
static bool small_precedes(const struct small_op *a, const struct small_op *b)
{
    return a->outcome == LIN_OK && a->ret < b->inv;
}

/* Is the sequence order[0 .. n) legal: real-time order kept, every completed output right? */
static bool small_legal(const struct small_op *ops, const uint32_t *order, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = i + 1; j < n; j++) {
            if (small_precedes(&ops[order[j]], &ops[order[i]]))
                return false;
        }
    }
    uint8_t reg = 0; /* 0 absent, else the value */
    for (uint32_t i = 0; i < n; i++) {
        const struct small_op *o = &ops[order[i]];
        bool ok = o->outcome == LIN_OK;
        if (o->type == LIN_GET && ok && o->out != reg)
            return false;
        if (o->type == LIN_DEL && ok && o->out != (reg != 0))
            return false;
        if (o->type == LIN_PUT)
            reg = o->in;
        if (o->type == LIN_DEL)
            reg = 0;
    }
    return true;
}

static bool next_permutation(uint32_t *a, uint32_t n)
{
    if (n < 2)
        return false;
    uint32_t i = n - 1;
    while (i > 0 && a[i - 1] >= a[i])
        i--;
    if (i == 0)
        return false;
    uint32_t j = n - 1;
    while (a[j] <= a[i - 1])
        j--;
    uint32_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
    for (uint32_t l = i, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return true;
}

/* Linearizable iff some subset holding every completed op (the others may not have taken
 * effect) has a legal order. Failed ops and GETs of unknown outcome never count. */
static bool small_linearizable(const struct small_op *ops, uint32_t n)
{
    uint32_t optional[SMALL_OPS_MAX], nopt = 0, base[SMALL_OPS_MAX], nbase = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (ops[i].outcome == LIN_FAIL || (ops[i].type == LIN_GET && ops[i].outcome != LIN_OK))
            continue;
        if (ops[i].outcome == LIN_OK)
            base[nbase++] = i;
        else
            optional[nopt++] = i;
    }
    for (uint32_t mask = 0; mask < (1u << nopt); mask++) {
        uint32_t order[SMALL_OPS_MAX], m = 0;
        for (uint32_t i = 0; i < nbase; i++)
            order[m++] = base[i];
        for (uint32_t i = 0; i < nopt; i++) {
            if (mask & (1u << i))
                order[m++] = optional[i];
        }
        /* Sorted ascending, so next_permutation visits every order. */
        for (uint32_t i = 1; i < m; i++) {
            for (uint32_t j = i; j > 0 && order[j - 1] > order[j]; j--) {
                uint32_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        }
        do {
            if (small_legal(ops, order, m))
                return true;
        } while (next_permutation(order, m));
    }
    return false;
}

static void small_random(struct rk_prng *p, struct small_op *ops, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct small_op *o = &ops[i];
        o->inv = rk_prng_below(p, 12);
        o->ret = o->inv + rk_prng_below(p, 6);
        uint64_t r = rk_prng_below(p, 10);
        o->type = r < 4 ? LIN_GET : r < 8 ? LIN_PUT : LIN_DEL;
        o->in = (uint8_t)(1 + rk_prng_below(p, 2));
        o->out = (uint8_t)rk_prng_below(p, o->type == LIN_GET ? 3 : 2);
        r = rk_prng_below(p, 10);
        o->outcome = r < 7 ? LIN_OK : r < 8 ? LIN_FAIL : r < 9 ? LIN_UNKNOWN : 0;
    }
}

static struct lin_history *small_record(const struct small_op *ops, uint32_t n)
{
    static const char *const vals[] = {"", "a", "b"};
    struct lin_history *h = lin_history_create();
    for (uint32_t i = 0; i < n; i++) {
        const struct small_op *o = &ops[i];
        uint64_t id = lin_invoke(h, i, o->inv, o->type, bytes_of("k"), 1, bytes_of(vals[o->in]), 1);
        if (o->outcome == 0)
            continue;
        bool found = o->type == LIN_GET && o->out != 0;
        lin_complete(h, id, o->ret, o->outcome, found, bytes_of(vals[o->out]), found ? 1 : 0,
                     o->out);
    }
    return h;
}

/* Thousands of small random histories with ties, unknown, failed and pending ops: the
 * checker agrees with trying every order of every subset of the ops that may count. */
static void test_agrees_with_brute_force_on_small_histories(void **state)
{
    (void)state;
    struct rk_prng p;
    rk_prng_seed(&p, 0xb207e);
    uint32_t violations = 0;
    for (int round = 0; round < 4000; round++) {
        struct small_op ops[SMALL_OPS_MAX];
        uint32_t n = 1 + (uint32_t)rk_prng_below(&p, SMALL_OPS_MAX);
        small_random(&p, ops, n);
        bool want = small_linearizable(ops, n);
        struct lin_history *h = small_record(ops, n);
        struct lin_result r;
        int verdict = lin_check(h, 0, &r);
        if (verdict != (want ? LIN_LINEARIZABLE : LIN_VIOLATION))
            fail_msg("round %d: checker says %d, brute force says %s", round, verdict,
                     want ? "linearizable" : "violation");
        if (verdict == LIN_VIOLATION) {
            violations++;
            assert_true(r.evidence_ops >= 1);
            assert_true(r.evidence_ops <= n);
        }
        lin_result_free(&r);
        lin_history_destroy(h);
    }
    /* Both verdicts are well represented. */
    assert_true(violations > 400);
    assert_true(violations < 3600);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_history_is_linearizable),
        cmocka_unit_test(test_history_size_counts_invocations),
        cmocka_unit_test(test_sequential_history_is_linearizable),
        cmocka_unit_test(test_stale_read_after_completed_write_is_a_violation),
        cmocka_unit_test(test_concurrent_write_and_read_may_see_the_old_value),
        cmocka_unit_test(test_concurrent_write_and_read_may_see_the_new_value),
        cmocka_unit_test(test_read_of_value_never_written_is_a_violation),
        cmocka_unit_test(test_read_before_any_write_is_nil),
        cmocka_unit_test(test_empty_value_is_not_nil),
        cmocka_unit_test(test_value_written_to_another_key_is_not_visible),
        cmocka_unit_test(test_readers_seeing_writes_in_opposite_orders_is_a_violation),
        cmocka_unit_test(test_one_reader_seeing_both_writes_in_order_is_linearizable),
        cmocka_unit_test(test_return_and_invoke_at_same_time_are_concurrent),
        cmocka_unit_test(test_invocations_out_of_time_order_are_fine),
        cmocka_unit_test(test_unknown_put_seen_later_is_linearizable),
        cmocka_unit_test(test_unknown_put_never_seen_is_linearizable),
        cmocka_unit_test(test_unknown_put_seen_then_unseen_is_a_violation),
        cmocka_unit_test(test_unknown_put_flip_flop_is_a_violation),
        cmocka_unit_test(test_unknown_put_cannot_take_effect_before_its_invocation),
        cmocka_unit_test(test_op_never_completed_counts_as_unknown),
        cmocka_unit_test(test_failed_put_is_dropped),
        cmocka_unit_test(test_unknown_get_is_dropped),
        cmocka_unit_test(test_del_returning_one_on_never_written_key_is_a_violation),
        cmocka_unit_test(test_del_returns_one_then_zero_after_a_put),
        cmocka_unit_test(test_del_returning_zero_after_completed_put_is_a_violation),
        cmocka_unit_test(test_two_concurrent_dels_cannot_both_remove_the_key),
        cmocka_unit_test(test_read_after_completed_del_is_nil),
        cmocka_unit_test(test_unknown_del_may_explain_a_nil_read),
        cmocka_unit_test(test_violation_on_one_key_is_reported_with_that_key),
        cmocka_unit_test(test_explanation_names_the_key_and_the_ops),
        cmocka_unit_test(test_explanation_shows_unknown_ops),
        cmocka_unit_test(test_evidence_leaves_out_unneeded_ops),
        cmocka_unit_test(test_binary_key_is_escaped_in_the_result),
        cmocka_unit_test(test_long_key_is_truncated_in_the_result),
        cmocka_unit_test(test_long_random_history_is_linearizable),
        cmocka_unit_test(test_long_random_history_with_unknown_and_failed_writes_is_linearizable),
        cmocka_unit_test(test_long_random_history_with_one_stale_read_is_a_violation),
        cmocka_unit_test(test_check_is_deterministic),
        cmocka_unit_test(test_tiny_budget_gives_up_on_highly_concurrent_history),
        cmocka_unit_test(test_agrees_with_brute_force_on_small_histories),
        cmocka_unit_test(test_read_after_write_on_one_connection_must_see_it),
        cmocka_unit_test(test_same_ops_on_two_connections_are_concurrent),
        cmocka_unit_test(test_read_cannot_see_a_later_write_of_its_connection),
        cmocka_unit_test(test_unknown_write_is_no_predecessor),
        cmocka_unit_test(test_program_order_is_transitive),
        cmocka_unit_test(test_connection_order_in_a_pending_register_history),
        cmocka_unit_test(test_mget_sees_an_mset_whole),
        cmocka_unit_test(test_mget_seeing_half_an_mset_is_a_violation),
        cmocka_unit_test(test_mget_seeing_half_of_an_unknown_mset_is_a_violation),
        cmocka_unit_test(test_mget_and_get_agree_on_the_component),
        cmocka_unit_test(test_components_join_keys_of_multi_key_ops),
        cmocka_unit_test(test_incrby_counts_from_absent),
        cmocka_unit_test(test_two_increments_returning_the_same_value_is_a_violation),
        cmocka_unit_test(test_incrby_of_a_non_integer_is_an_error_and_writes_nothing),
        cmocka_unit_test(test_two_set_nx_cannot_both_write),
        cmocka_unit_test(test_set_xx_on_an_absent_key_writes_nothing),
        cmocka_unit_test(test_multi_key_explanation_names_the_ops_and_connections),
        cmocka_unit_test(test_long_pipelined_history_of_every_op_kind),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
