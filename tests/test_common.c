/*
 * test_common.c — core/common: error codes and messages, the PRNG, the libc allocator.
 *
 * One behaviour per test. Every random test runs on a fixed seed, so a failure is reproducible.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/prng.h"

#define UNKNOWN_ERROR "unknown error"

/* A message with guard bytes on both sides: formatting must never write outside it. */
#define GUARD_SIZE 32
#define GUARD_BYTE 0xA5
struct guarded_msg {
    unsigned char before[GUARD_SIZE];
    struct rk_errmsg msg;
    unsigned char after[GUARD_SIZE];
};

static void guarded_init(struct guarded_msg *g)
{
    memset(g, GUARD_BYTE, sizeof(*g));
    g->msg.text[0] = '\0';
}

static void assert_guards_intact(const struct guarded_msg *g)
{
    for (size_t i = 0; i < GUARD_SIZE; i++) {
        assert_int_equal(g->before[i], GUARD_BYTE);
        assert_int_equal(g->after[i], GUARD_BYTE);
    }
}

/* A string of RK_ERRMSG_SIZE * 4 characters: far longer than any message can hold. */
static const char *long_text(void)
{
    static char text[RK_ERRMSG_SIZE * 4 + 1];
    for (size_t i = 0; i < sizeof(text) - 1; i++)
        text[i] = (char)('a' + i % 26);
    text[sizeof(text) - 1] = '\0';
    return text;
}

/* ---- rk_strerror ---------------------------------------------------------------------- */

static void strerror_names_every_code(void **state)
{
    (void)state;
    for (int err = 0; err < RK_ERR_COUNT; err++) {
        const char *s = rk_strerror(err);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, UNKNOWN_ERROR);
    }
}

static void strerror_messages_are_distinct(void **state)
{
    (void)state;
    for (int a = 0; a < RK_ERR_COUNT; a++)
        for (int b = a + 1; b < RK_ERR_COUNT; b++)
            assert_string_not_equal(rk_strerror(a), rk_strerror(b));
}

static void strerror_out_of_range_is_unknown(void **state)
{
    (void)state;
    assert_string_equal(rk_strerror(-1), UNKNOWN_ERROR);
    assert_string_equal(rk_strerror(RK_ERR_COUNT), UNKNOWN_ERROR);
    assert_string_equal(rk_strerror(INT_MAX), UNKNOWN_ERROR);
    assert_string_equal(rk_strerror(INT_MIN), UNKNOWN_ERROR);
}

/* ---- rk_errf / rk_errwrap ------------------------------------------------------------- */

static void errf_formats_message_and_returns_err(void **state)
{
    (void)state;
    struct rk_errmsg msg;
    int rc = rk_errf(&msg, RK_ECORRUPT, "segment %d: offset %u: %s", 3, 4096u, "crc mismatch");
    assert_int_equal(rc, RK_ECORRUPT);
    assert_string_equal(msg.text, "segment 3: offset 4096: crc mismatch");
}

static void errf_truncates_long_message_without_overflow(void **state)
{
    (void)state;
    struct guarded_msg g;
    guarded_init(&g);
    const char *text = long_text();
    int rc = rk_errf(&g.msg, RK_EMALFORMED, "%s", text);
    assert_int_equal(rc, RK_EMALFORMED);
    assert_int_equal(strlen(g.msg.text), RK_ERRMSG_SIZE - 1);
    assert_memory_equal(g.msg.text, text, RK_ERRMSG_SIZE - 1);
    assert_guards_intact(&g);
}

static void errf_with_null_msg_returns_err(void **state)
{
    (void)state;
    assert_int_equal(rk_errf(NULL, RK_EIO, "ignored %d", 1), RK_EIO);
}

static void errwrap_prefixes_context_and_returns_err(void **state)
{
    (void)state;
    struct rk_errmsg msg;
    rk_errf(&msg, RK_ECORRUPT, "crc mismatch");
    int rc = rk_errwrap(&msg, RK_ECORRUPT, "offset %d", 4096);
    assert_int_equal(rc, RK_ECORRUPT);
    rc = rk_errwrap(&msg, RK_EIO, "segment %d", 3);
    assert_int_equal(rc, RK_EIO);
    assert_string_equal(msg.text, "segment 3: offset 4096: crc mismatch");
}

static void errwrap_truncates_long_chain_without_overflow(void **state)
{
    (void)state;
    struct guarded_msg g;
    guarded_init(&g);
    rk_errf(&g.msg, RK_ECORRUPT, "%s", long_text());
    for (int i = 0; i < 64; i++) {
        rk_errwrap(&g.msg, RK_ECORRUPT, "context %d %s", i, long_text());
        assert_true(strlen(g.msg.text) < RK_ERRMSG_SIZE);
        assert_guards_intact(&g);
    }
    assert_int_equal(strlen(g.msg.text), RK_ERRMSG_SIZE - 1);
}

static void errwrap_keeps_outermost_context_when_truncating(void **state)
{
    (void)state;
    struct rk_errmsg msg;
    rk_errf(&msg, RK_ECORRUPT, "%s", long_text());
    rk_errwrap(&msg, RK_ECORRUPT, "file %s", "00000007.log");
    const char *want = "file 00000007.log: abc";
    assert_memory_equal(msg.text, want, strlen(want));
    assert_int_equal(strlen(msg.text), RK_ERRMSG_SIZE - 1);
}

static void errwrap_with_null_msg_returns_err(void **state)
{
    (void)state;
    assert_int_equal(rk_errwrap(NULL, RK_ENOSPC, "ignored %d", 1), RK_ENOSPC);
}

/* ---- rk_prng -------------------------------------------------------------------------- */

static void prng_same_seed_gives_same_sequence(void **state)
{
    (void)state;
    struct rk_prng a, b;
    rk_prng_seed(&a, 12345);
    rk_prng_seed(&b, 12345);
    for (int i = 0; i < 10000; i++)
        assert_true(rk_prng_next(&a) == rk_prng_next(&b));
}

static void prng_different_seeds_give_different_sequences(void **state)
{
    (void)state;
    /* Neighbouring seeds are the likeliest to collide if the seeding were weak. */
    for (uint64_t seed = 0; seed < 64; seed++) {
        struct rk_prng a, b;
        rk_prng_seed(&a, seed);
        rk_prng_seed(&b, seed + 1);
        int equal = 0;
        for (int i = 0; i < 64; i++)
            equal += rk_prng_next(&a) == rk_prng_next(&b);
        assert_int_equal(equal, 0);
    }
}

static void prng_matches_reference_xoshiro256starstar(void **state)
{
    (void)state;
    /*
     * xoshiro256** seeded by splitmix64, computed by an independent implementation of the two
     * public-domain reference algorithms. Pins the generator: a simulator seed must replay the
     * same run on every build and every version.
     */
    static const uint64_t seed42[] = {
        0x15780b2e0c2ec716ULL,
        0x6104d9866d113a7eULL,
        0xae17533239e499a1ULL,
        0xecb8ad4703b360a1ULL,
    };
    struct rk_prng p;
    rk_prng_seed(&p, 42);
    for (size_t i = 0; i < sizeof(seed42) / sizeof(seed42[0]); i++)
        assert_true(rk_prng_next(&p) == seed42[i]);
}

static void prng_below_stays_below_bound(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {
        1, 2, 3, 7, 10, 1000, 1ULL << 32, (1ULL << 63) + 1, UINT64_MAX - 1, UINT64_MAX,
    };
    struct rk_prng p;
    rk_prng_seed(&p, 7);
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++)
        for (int i = 0; i < 10000; i++)
            assert_true(rk_prng_below(&p, bounds[b]) < bounds[b]);
}

static void prng_below_is_roughly_uniform(void **state)
{
    (void)state;
    /*
     * Pearson's chi-square over 10 buckets (9 degrees of freedom: mean 9, and 27.9 is the
     * 99.9th percentile). The bound of 40 is generous; the seed is fixed, so the test is
     * deterministic and a failure means a real bias, not bad luck.
     */
    enum { BUCKETS = 10, DRAWS = 100000 };
    uint64_t count[BUCKETS] = {0};
    struct rk_prng p;
    rk_prng_seed(&p, 2024);
    for (int i = 0; i < DRAWS; i++)
        count[rk_prng_below(&p, BUCKETS)]++;
    double expected = (double)DRAWS / BUCKETS;
    double chi2 = 0;
    for (int b = 0; b < BUCKETS; b++) {
        double d = (double)count[b] - expected;
        chi2 += d * d / expected;
    }
    assert_true(chi2 < 40.0);
}

static void prng_range_includes_both_ends(void **state)
{
    (void)state;
    struct rk_prng p;
    rk_prng_seed(&p, 99);
    bool seen_lo = false, seen_hi = false;
    for (int i = 0; i < 10000; i++) {
        uint64_t v = rk_prng_range(&p, 5, 8);
        assert_true(v >= 5);
        assert_true(v <= 8);
        seen_lo |= v == 5;
        seen_hi |= v == 8;
    }
    assert_true(seen_lo);
    assert_true(seen_hi);
}

static void prng_range_of_one_value_returns_it(void **state)
{
    (void)state;
    struct rk_prng p;
    rk_prng_seed(&p, 5);
    for (int i = 0; i < 100; i++) {
        assert_true(rk_prng_range(&p, 17, 17) == 17);
        assert_true(rk_prng_range(&p, UINT64_MAX, UINT64_MAX) == UINT64_MAX);
    }
}

static void prng_range_full_span_is_next(void **state)
{
    (void)state;
    /* hi - lo + 1 overflows for [0, UINT64_MAX]: the whole output of next() is the answer. */
    struct rk_prng a, b;
    rk_prng_seed(&a, 3);
    rk_prng_seed(&b, 3);
    for (int i = 0; i < 100; i++)
        assert_true(rk_prng_range(&a, 0, UINT64_MAX) == rk_prng_next(&b));
}

/* ---- rk_alloc_libc -------------------------------------------------------------------- */

static void alloc_libc_malloc_realloc_free(void **state)
{
    (void)state;
    const struct rk_alloc *a = rk_alloc_libc();
    assert_non_null(a);
    unsigned char *p = rk_malloc(a, 16);
    assert_non_null(p);
    for (int i = 0; i < 16; i++)
        p[i] = (unsigned char)i;
    p = rk_realloc(a, p, 1 << 16);
    assert_non_null(p);
    for (int i = 0; i < 16; i++)
        assert_int_equal(p[i], i);
    p[(1 << 16) - 1] = 0xff;
    rk_free(a, p);
}

static void alloc_libc_zero_size_returns_non_null(void **state)
{
    (void)state;
    const struct rk_alloc *a = rk_alloc_libc();
    void *p = rk_malloc(a, 0);
    assert_non_null(p);
    p = rk_realloc(a, p, 0);
    assert_non_null(p);
    rk_free(a, p);
}

static void alloc_free_of_null_is_a_no_op(void **state)
{
    (void)state;
    rk_free(rk_alloc_libc(), NULL);
}

static void alloc_libc_is_one_shared_table(void **state)
{
    (void)state;
    assert_ptr_equal(rk_alloc_libc(), rk_alloc_libc());
}

/* ---- limits ------------------------------------------------------------------------------ */

static void limits_each_layer_holds_the_one_before(void **state)
{
    (void)state;
    static const uint64_t values[] = {RK_LIMITS_VALUE_MIN, 4096, RK_LIMITS_VALUE_DEFAULT,
                                      (60ull << 20), RK_LIMITS_VALUE_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct rk_limits l;
        struct rk_errmsg err;
        assert_int_equal(rk_limits_derive(values[i], &l, &err), RK_OK);
        assert_int_equal(l.max_value, values[i]);
        /* A SET of the largest key and value is one command, one entry. */
        assert_true(l.max_value + l.max_key < l.max_command);
        assert_true(l.max_command <= l.max_entry);
        /* That entry alone in an APPEND (or a FORWARD) is one frame... */
        assert_true(l.max_entry < l.max_frame);
        /* ...and two such frames fit a peer's queue beside a window of ordinary appends. */
        assert_true(2 * l.max_frame + l.append <= l.peer_queue);
    }
}

static void limits_out_of_range_are_refused_with_the_range(void **state)
{
    (void)state;
    struct rk_limits l = {0};
    struct rk_errmsg err;
    assert_int_equal(rk_limits_derive(RK_LIMITS_VALUE_MIN - 1, &l, &err), RK_EINVAL);
    assert_non_null(strstr(err.text, "outside"));
    assert_int_equal(rk_limits_derive(RK_LIMITS_VALUE_MAX + 1, &l, &err), RK_EINVAL);
    assert_int_equal(l.max_value, 0); /* untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strerror_names_every_code),
        cmocka_unit_test(strerror_messages_are_distinct),
        cmocka_unit_test(strerror_out_of_range_is_unknown),
        cmocka_unit_test(errf_formats_message_and_returns_err),
        cmocka_unit_test(errf_truncates_long_message_without_overflow),
        cmocka_unit_test(errf_with_null_msg_returns_err),
        cmocka_unit_test(errwrap_prefixes_context_and_returns_err),
        cmocka_unit_test(errwrap_truncates_long_chain_without_overflow),
        cmocka_unit_test(errwrap_keeps_outermost_context_when_truncating),
        cmocka_unit_test(errwrap_with_null_msg_returns_err),
        cmocka_unit_test(prng_same_seed_gives_same_sequence),
        cmocka_unit_test(prng_different_seeds_give_different_sequences),
        cmocka_unit_test(prng_matches_reference_xoshiro256starstar),
        cmocka_unit_test(prng_below_stays_below_bound),
        cmocka_unit_test(prng_below_is_roughly_uniform),
        cmocka_unit_test(prng_range_includes_both_ends),
        cmocka_unit_test(prng_range_of_one_value_returns_it),
        cmocka_unit_test(prng_range_full_span_is_next),
        cmocka_unit_test(alloc_libc_malloc_realloc_free),
        cmocka_unit_test(alloc_libc_zero_size_returns_non_null),
        cmocka_unit_test(alloc_free_of_null_is_a_no_op),
        cmocka_unit_test(alloc_libc_is_one_shared_table),
        cmocka_unit_test(limits_each_layer_holds_the_one_before),
        cmocka_unit_test(limits_out_of_range_are_refused_with_the_range),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
