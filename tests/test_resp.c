/*
 * test_resp.c — RESP2: every request form, pipelining, partial input at every byte, binary
 * safety, each protocol error with Redis's wording, the limits, a random-bytes robustness loop,
 * and the exact bytes and sizes of every reply encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/prng.h"
#include "resp/resp.h"

#define ARGS_CAP    16
#define SCRATCH_CAP 256

struct fixture {
    struct resp_arg args[ARGS_CAP];
    uint8_t scratch[SCRATCH_CAP];
    struct resp_request req;
    struct resp_limits lim;
    struct rk_errmsg err;
    size_t consumed;
};

static struct fixture fx;

static void fx_reset(void)
{
    memset(&fx, 0, sizeof(fx));
    fx.req.args = fx.args;
    fx.req.cap_args = ARGS_CAP;
    fx.req.scratch = fx.scratch;
    fx.req.cap_scratch = SCRATCH_CAP;
}

static int parse_n(const void *buf, size_t len)
{
    /* An exactly sized heap copy, so that the sanitizer sees any read past len. */
    uint8_t *copy = malloc(len == 0 ? 1 : len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    fx.consumed = 12345;
    fx.err.text[0] = '\0';
    int rc = resp_parse(copy, len, &fx.lim, &fx.req, &fx.consumed, &fx.err);
    /* Arguments pointing into copy are only checked by callers that want them; they use
     * parse_keep. */
    free(copy);
    return rc;
}

/* Parses from buf itself (arguments stay valid). */
static int parse_keep(const void *buf, size_t len)
{
    fx.consumed = 12345;
    fx.err.text[0] = '\0';
    return resp_parse(buf, len, &fx.lim, &fx.req, &fx.consumed, &fx.err);
}

#define PARSE(lit)      parse_n((lit), sizeof(lit) - 1)
#define PARSE_KEEP(lit) parse_keep((lit), sizeof(lit) - 1)

static void assert_arg(uint32_t i, const void *want, size_t want_len)
{
    assert_true(i < fx.req.argc);
    assert_int_equal(fx.req.args[i].len, want_len);
    if (want_len > 0)
        assert_memory_equal(fx.req.args[i].ptr, want, want_len);
}

#define ASSERT_ARG(i, lit) assert_arg((i), (lit), sizeof(lit) - 1)

static void assert_error(int rc, int want_rc, const char *want_msg)
{
    assert_int_equal(rc, want_rc);
    assert_string_equal(fx.err.text, want_msg);
    assert_int_equal(fx.consumed, 0);
    assert_int_equal(fx.req.argc, 0);
}

static int setup(void **state)
{
    (void)state;
    fx_reset();
    return 0;
}

/* ---- request forms ----------------------------------------------------------------------- */

static void test_multibulk_request_yields_its_arguments(void **state)
{
    (void)state;
    static const char in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n";
    assert_int_equal(PARSE_KEEP(in), RK_OK);
    assert_int_equal(fx.consumed, sizeof(in) - 1);
    assert_int_equal(fx.req.argc, 3);
    ASSERT_ARG(0, "SET");
    ASSERT_ARG(1, "k");
    ASSERT_ARG(2, "value");
    /* Multibulk arguments are borrowed from the buffer itself. */
    assert_ptr_equal(fx.req.args[0].ptr, (const uint8_t *)in + 8);
}

static void test_multibulk_empty_argument_is_allowed(void **state)
{
    (void)state;
    static const char in[] = "*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
    assert_int_equal(PARSE_KEEP(in), RK_OK);
    assert_int_equal(fx.consumed, sizeof(in) - 1);
    assert_int_equal(fx.req.argc, 2);
    ASSERT_ARG(1, "");
}

static void test_multibulk_empty_and_null_arrays_are_argc_zero(void **state)
{
    (void)state;
    assert_int_equal(PARSE("*0\r\n"), RK_OK);
    assert_int_equal(fx.consumed, 4);
    assert_int_equal(fx.req.argc, 0);
    assert_int_equal(PARSE("*-1\r\n"), RK_OK);
    assert_int_equal(fx.consumed, 5);
    assert_int_equal(fx.req.argc, 0);
}

static void test_multibulk_negative_count_is_skipped_like_redis(void **state)
{
    (void)state;
    assert_int_equal(PARSE("*-10\r\n"), RK_OK);
    assert_int_equal(fx.consumed, 6);
    assert_int_equal(fx.req.argc, 0);
    assert_int_equal(PARSE("*-2147483649\r\n"), RK_OK);
    assert_int_equal(fx.req.argc, 0);
}

static void test_inline_request_splits_on_spaces_and_tabs(void **state)
{
    (void)state;
    static const char in[] = "  SET\tkey \t value  \r\n";
    assert_int_equal(PARSE_KEEP(in), RK_OK);
    assert_int_equal(fx.consumed, sizeof(in) - 1);
    assert_int_equal(fx.req.argc, 3);
    ASSERT_ARG(0, "SET");
    ASSERT_ARG(1, "key");
    ASSERT_ARG(2, "value");
}

static void test_inline_request_ends_at_lf_or_crlf(void **state)
{
    (void)state;
    assert_int_equal(PARSE_KEEP("PING\n"), RK_OK);
    assert_int_equal(fx.consumed, 5);
    assert_int_equal(fx.req.argc, 1);
    ASSERT_ARG(0, "PING");
    assert_int_equal(PARSE_KEEP("PING\r\n"), RK_OK);
    assert_int_equal(fx.consumed, 6);
    assert_int_equal(fx.req.argc, 1);
    ASSERT_ARG(0, "PING");
}

static void test_inline_empty_line_is_argc_zero(void **state)
{
    (void)state;
    assert_int_equal(PARSE("\r\n"), RK_OK);
    assert_int_equal(fx.consumed, 2);
    assert_int_equal(fx.req.argc, 0);
    assert_int_equal(PARSE("\n"), RK_OK);
    assert_int_equal(fx.consumed, 1);
    assert_int_equal(fx.req.argc, 0);
    assert_int_equal(PARSE(" \t \r\n"), RK_OK);
    assert_int_equal(fx.consumed, 5);
    assert_int_equal(fx.req.argc, 0);
}

static void test_inline_double_quotes_take_escapes(void **state)
{
    (void)state;
    static const char in[] = "SET \"a b\\\"c\\x41\\x7a\\n\\\\\" \"\"\r\n";
    assert_int_equal(PARSE_KEEP(in), RK_OK);
    assert_int_equal(fx.consumed, sizeof(in) - 1);
    assert_int_equal(fx.req.argc, 3);
    ASSERT_ARG(0, "SET");
    ASSERT_ARG(1, "a b\"cAz\n\\");
    ASSERT_ARG(2, "");
}

static void test_inline_single_quotes_take_only_escaped_quote(void **state)
{
    (void)state;
    assert_int_equal(PARSE_KEEP("ECHO 'it\\'s \\x41 \"x\"'\n"), RK_OK);
    assert_int_equal(fx.req.argc, 2);
    ASSERT_ARG(1, "it's \\x41 \"x\"");
}

static void test_inline_bare_prefix_joins_quoted_part(void **state)
{
    (void)state;
    assert_int_equal(PARSE_KEEP("ECHO ab\"c d\"\n"), RK_OK);
    assert_int_equal(fx.req.argc, 2);
    ASSERT_ARG(1, "abc d");
}

static void test_inline_quotes_without_escapes_need_no_scratch(void **state)
{
    (void)state;
    static const char in[] = "ECHO \"hello world\"\n";
    fx.req.scratch = NULL;
    fx.req.cap_scratch = 0;
    assert_int_equal(PARSE_KEEP(in), RK_OK);
    assert_int_equal(fx.req.argc, 2);
    ASSERT_ARG(1, "hello world");
    assert_ptr_equal(fx.req.args[1].ptr, (const uint8_t *)in + 6);
}

static void test_inline_escape_without_scratch_is_toobig(void **state)
{
    (void)state;
    fx.req.scratch = NULL;
    fx.req.cap_scratch = 0;
    assert_error(PARSE("ECHO \"\\x41\"\n"), RK_ETOOBIG,
                 "Protocol error: unescaping inline arguments needs 1 bytes of scratch, have 0");
}

static void test_inline_unbalanced_quotes_is_error(void **state)
{
    (void)state;
    const char *msg = "Protocol error: unbalanced quotes in request";
    assert_error(PARSE("ECHO \"abc\r\n"), RK_EMALFORMED, msg);
    assert_error(PARSE("ECHO 'abc\n"), RK_EMALFORMED, msg);
    assert_error(PARSE("ECHO \"abc\"d\n"), RK_EMALFORMED, msg);
    assert_error(PARSE("ECHO \"abc\\\"\n"), RK_EMALFORMED, msg);
}

static void test_pipelined_requests_parse_one_at_a_time(void **state)
{
    (void)state;
    static const char in[] = "*1\r\n$4\r\nPING\r\nECHO hi\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1";
    const uint8_t *p = (const uint8_t *)in;
    size_t left = sizeof(in) - 1;
    static const uint32_t want_argc[] = {1, 2, 0, 2};
    for (size_t i = 0; i < sizeof(want_argc) / sizeof(want_argc[0]); i++) {
        assert_int_equal(parse_keep(p, left), RK_OK);
        assert_int_equal(fx.req.argc, want_argc[i]);
        assert_true(fx.consumed > 0 && fx.consumed <= left);
        if (i == 1)
            ASSERT_ARG(1, "hi");
        if (i == 3)
            ASSERT_ARG(0, "GET");
        p += fx.consumed;
        left -= fx.consumed;
    }
    assert_int_equal(left, 2);
    assert_int_equal(parse_keep(p, left), RK_EAGAIN);
    assert_int_equal(fx.consumed, 0);
}

/* ---- partial input --------------------------------------------------------------------- */

static void check_every_prefix_is_eagain(const char *in, size_t len, uint32_t argc)
{
    for (size_t n = 0; n < len; n++) {
        assert_int_equal(parse_n(in, n), RK_EAGAIN);
        assert_int_equal(fx.consumed, 0);
        assert_int_equal(fx.req.argc, 0);
    }
    assert_int_equal(parse_n(in, len), RK_OK);
    assert_int_equal(fx.consumed, len);
    assert_int_equal(fx.req.argc, argc);
}

static void test_every_prefix_of_multibulk_is_eagain(void **state)
{
    (void)state;
    static const char in[] = "*3\r\n$3\r\nSET\r\n$10\r\nkey\r\n\0\0\r\nx\r\n$0\r\n\r\n";
    check_every_prefix_is_eagain(in, sizeof(in) - 1, 3);
}

static void test_every_prefix_of_inline_is_eagain(void **state)
{
    (void)state;
    static const char in[] = "SET \"k\\x41\" 'v v' plain\r\n";
    check_every_prefix_is_eagain(in, sizeof(in) - 1, 4);
}

static void test_every_prefix_of_empty_array_is_eagain(void **state)
{
    (void)state;
    check_every_prefix_is_eagain("*-1\r\n", 5, 0);
}

/* ---- binary safety ----------------------------------------------------------------------- */

static void test_bulk_arguments_are_binary_safe(void **state)
{
    (void)state;
    static const char in[] = "*2\r\n$4\r\n\0\r\n\0\r\n$6\r\n$1\r\n*1\r\n";
    assert_int_equal(PARSE_KEEP(in), RK_OK);
    assert_int_equal(fx.consumed, sizeof(in) - 1);
    assert_int_equal(fx.req.argc, 2);
    assert_arg(0, "\0\r\n\0", 4);
    ASSERT_ARG(1, "$1\r\n*1");
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_bad_multibulk_count_is_invalid_multibulk_length(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "*x\r\n",
        "*\r\n",
        "*-0\r\n",
        "*+1\r\n",
        "*01\r\n",
        "* 1\r\n",
        "*1 \r\n",
        "*1\rx",
        "*2147483648\r\n",
        "*99999999999999999999\r\n",
        "*1-\r\n",
        "*--1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_error(parse_n(bad[i], strlen(bad[i])), RK_EMALFORMED,
                     "Protocol error: invalid multibulk length");
}

static void test_missing_dollar_is_expected_dollar_error(void **state)
{
    (void)state;
    assert_error(PARSE("*1\r\n:1\r\n"), RK_EMALFORMED, "Protocol error: expected '$', got ':'");
    assert_error(PARSE("*2\r\n$1\r\na\r\nb"), RK_EMALFORMED,
                 "Protocol error: expected '$', got 'b'");
    assert_error(PARSE("*1\r\n\0"), RK_EMALFORMED, "Protocol error: expected '$', got '\\x00'");
}

static void test_bad_bulk_length_is_invalid_bulk_length(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "*1\r\n$-1\r\n", "*1\r\n$x\r\n",  "*1\r\n$\r\n", "*1\r\n$+3\r\n",
        "*1\r\n$03\r\n", "*1\r\n$3x\r\n", "*1\r\n$3\rx", "*1\r\n$9223372036854775808\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_error(parse_n(bad[i], strlen(bad[i])), RK_EMALFORMED,
                     "Protocol error: invalid bulk length");
}

static void test_bulk_without_trailing_crlf_is_error(void **state)
{
    (void)state;
    assert_error(PARSE("*1\r\n$3\r\nabcd\r\n"), RK_EMALFORMED,
                 "Protocol error: bulk argument of 3 bytes not followed by CRLF");
}

/* ---- limits ------------------------------------------------------------------------------ */

static void test_args_over_max_args_is_toobig(void **state)
{
    (void)state;
    fx.lim.max_args = 2;
    assert_error(PARSE("*3\r\n"), RK_ETOOBIG, "Protocol error: too many arguments (3, limit 2)");
    assert_error(PARSE("a b c d\r\n"), RK_ETOOBIG,
                 "Protocol error: too many arguments (4, limit 2)");
    assert_int_equal(PARSE("*2\r\n$1\r\na\r\n$1\r\nb\r\n"), RK_OK);
    assert_int_equal(PARSE("a b\r\n"), RK_OK);
}

static void test_args_over_default_max_args_is_toobig(void **state)
{
    (void)state;
    assert_error(PARSE("*1025\r\n"), RK_ETOOBIG,
                 "Protocol error: too many arguments (1025, limit 1024)");
}

static void test_args_over_capacity_is_toobig(void **state)
{
    (void)state;
    fx.req.cap_args = 2;
    assert_error(PARSE("*3\r\n"), RK_ETOOBIG, "Protocol error: too many arguments (3, capacity 2)");
    assert_error(PARSE("a b c\r\n"), RK_ETOOBIG,
                 "Protocol error: too many arguments (3, capacity 2)");
}

static void test_bulk_over_max_bulk_is_toobig(void **state)
{
    (void)state;
    fx.lim.max_bulk = 4;
    assert_int_equal(PARSE("*1\r\n$4\r\nabcd\r\n"), RK_OK);
    assert_error(PARSE("*1\r\n$5\r\n"), RK_ETOOBIG,
                 "Protocol error: invalid bulk length (5 bytes, limit 4)");
}

static void test_inline_over_max_inline_is_toobig(void **state)
{
    (void)state;
    fx.lim.max_inline = 4;
    /* At the limit, with either line ending. */
    assert_int_equal(PARSE("abcd\r\n"), RK_OK);
    assert_int_equal(PARSE("abcd\n"), RK_OK);
    /* Not yet decidable: may still end in \r\n. */
    assert_int_equal(PARSE("abcd\r"), RK_EAGAIN);
    const char *msg = "Protocol error: too big inline request";
    assert_error(PARSE("abcde\n"), RK_ETOOBIG, msg);
    assert_error(PARSE("abcde\r\n"), RK_ETOOBIG, msg);
    assert_error(PARSE("abcdef"), RK_ETOOBIG, msg); /* no newline in sight */
}

static void test_huge_declared_lengths_wait_without_overflow(void **state)
{
    (void)state;
    fx.lim.max_bulk = UINT64_MAX;
    fx.lim.max_args = UINT32_MAX;
    assert_int_equal(PARSE("*1\r\n$9223372036854775807\r\nabc"), RK_EAGAIN);
    assert_int_equal(fx.consumed, 0);
    assert_error(PARSE("*2147483647\r\n"), RK_ETOOBIG,
                 "Protocol error: too many arguments (2147483647, capacity 16)");
    fx.lim.max_bulk = 0;
    assert_error(PARSE("*1\r\n$9223372036854775807\r\n"), RK_ETOOBIG,
                 "Protocol error: invalid bulk length (9223372036854775807 bytes, limit 67174400)");
}

static void test_null_limits_and_null_err_are_allowed(void **state)
{
    (void)state;
    static const char in[] = "*1\r\n$4\r\nPING\r\n";
    size_t consumed = 0;
    assert_int_equal(
        resp_parse((const uint8_t *)in, sizeof(in) - 1, NULL, &fx.req, &consumed, NULL), RK_OK);
    assert_int_equal(consumed, sizeof(in) - 1);
    assert_int_equal(resp_parse((const uint8_t *)"*x\r\n", 4, NULL, &fx.req, &consumed, NULL),
                     RK_EMALFORMED);
}

/* ---- robustness ------------------------------------------------------------------------- */

static bool arg_is_within(const struct resp_arg *a, const uint8_t *base, size_t len)
{
    return a->ptr >= base && a->len <= len && (size_t)(a->ptr - base) <= len - a->len;
}

static const char *const seeds[] = {
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n",
    "PING\r\n",
    "SET \"a\\x41\" 'b\\'c'\n",
    "*0\r\n",
    "*-1\r\n",
    "*1\r\n$0\r\n\r\n",
    "\r\n",
};
static const char alphabet[] = "*$-+0123456789\r\n \t\"'\\xaZ";

/* Either random bytes from a protocol-heavy alphabet or a mutated valid request. */
static size_t random_input(struct rk_prng *rng, uint8_t *buf, size_t cap)
{
    size_t len;
    if (rk_prng_below(rng, 2) == 0) {
        len = (size_t)rk_prng_below(rng, cap + 1);
        for (size_t i = 0; i < len; i++)
            buf[i] = rk_prng_below(rng, 4) == 0
                         ? (uint8_t)rk_prng_below(rng, 256)
                         : (uint8_t)alphabet[rk_prng_below(rng, sizeof(alphabet) - 1)];
        return len;
    }
    const char *s = seeds[rk_prng_below(rng, sizeof(seeds) / sizeof(seeds[0]))];
    len = strlen(s);
    memcpy(buf, s, len);
    uint64_t flips = rk_prng_below(rng, 4);
    for (uint64_t f = 0; f < flips; f++)
        buf[rk_prng_below(rng, len)] = (uint8_t)alphabet[rk_prng_below(rng, sizeof(alphabet) - 1)];
    return (size_t)rk_prng_below(rng, len + 1); /* and maybe truncated */
}

static void test_random_bytes_never_crash_or_overconsume(void **state)
{
    (void)state;
    struct rk_prng rng;
    rk_prng_seed(&rng, 0x5eed);
    uint8_t tmp[64];
    uint8_t scratch[8];
    fx.req.cap_args = 4;
    fx.req.scratch = scratch;
    fx.req.cap_scratch = sizeof(scratch);
    fx.lim.max_inline = 40;
    fx.lim.max_bulk = 16;
    size_t outcomes[RK_ERR_COUNT] = {0};
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = random_input(&rng, tmp, sizeof(tmp));
        uint8_t *buf = malloc(len == 0 ? 1 : len); /* exactly sized: ASan catches overreads */
        assert_non_null(buf);
        memcpy(buf, tmp, len);
        size_t consumed = 99;
        int rc = resp_parse(buf, len, &fx.lim, &fx.req, &consumed, &fx.err);
        assert_true(rc >= 0 && rc < RK_ERR_COUNT);
        outcomes[rc]++;
        if (rc == RK_OK) {
            assert_true(consumed > 0 && consumed <= len);
            assert_true(fx.req.argc <= fx.req.cap_args);
            for (uint32_t i = 0; i < fx.req.argc; i++)
                assert_true(arg_is_within(&fx.req.args[i], buf, len) ||
                            arg_is_within(&fx.req.args[i], scratch, sizeof(scratch)));
        } else {
            assert_true(rc == RK_EAGAIN || rc == RK_EMALFORMED || rc == RK_ETOOBIG);
            assert_int_equal(consumed, 0);
            assert_int_equal(fx.req.argc, 0);
        }
        free(buf);
    }
    /* The loop must reach every outcome, or it tests less than it seems to. */
    print_message("ok %zu eagain %zu malformed %zu toobig %zu\n", outcomes[RK_OK],
                  outcomes[RK_EAGAIN], outcomes[RK_EMALFORMED], outcomes[RK_ETOOBIG]);
    assert_true(outcomes[RK_OK] > 1000);
    assert_true(outcomes[RK_EAGAIN] > 1000);
    assert_true(outcomes[RK_EMALFORMED] > 1000);
    assert_true(outcomes[RK_ETOOBIG] > 100);
}

/* ---- encoders ----------------------------------------------------------------------------- */

static uint8_t out[128];

static void check_encoded(size_t pos, size_t size, const char *want, size_t want_len)
{
    assert_int_equal(size, want_len);
    assert_int_equal(pos, want_len);
    assert_memory_equal(out, want, want_len);
}

#define CHECK_ENCODED(pos, size, lit) check_encoded((pos), (size), (lit), sizeof(lit) - 1)

static void test_simple_string_encodes_exactly(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp_simple(out, sizeof(out), &pos, "OK"));
    CHECK_ENCODED(pos, resp_simple_size("OK"), "+OK\r\n");
}

static void test_error_encodes_exactly(void **state)
{
    (void)state;
    size_t pos = 0;
    const char *e = "ERR unknown command 'FOO'";
    assert_true(resp_error(out, sizeof(out), &pos, e));
    CHECK_ENCODED(pos, resp_error_size(e), "-ERR unknown command 'FOO'\r\n");
}

static void test_integers_encode_in_decimal(void **state)
{
    (void)state;
    static const struct {
        int64_t v;
        const char *want;
    } cases[] = {
        {0, ":0\r\n"},
        {1, ":1\r\n"},
        {-1, ":-1\r\n"},
        {10, ":10\r\n"},
        {INT64_MAX, ":9223372036854775807\r\n"},
        {INT64_MIN, ":-9223372036854775808\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t pos = 0;
        assert_true(resp_integer(out, sizeof(out), &pos, cases[i].v));
        check_encoded(pos, resp_integer_size(cases[i].v), cases[i].want, strlen(cases[i].want));
    }
}

static void test_bulk_encodes_length_data_and_crlf(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp_bulk(out, sizeof(out), &pos, (const uint8_t *)"a\r\n\0b", 5));
    CHECK_ENCODED(pos, resp_bulk_size(5), "$5\r\na\r\n\0b\r\n");
    pos = 0;
    assert_true(resp_bulk(out, sizeof(out), &pos, NULL, 0));
    CHECK_ENCODED(pos, resp_bulk_size(0), "$0\r\n\r\n");
    assert_int_equal(resp_bulk_size(1234567), 1 + 7 + 2 + 1234567 + 2);
}

static void test_null_encodes_as_minus_one_bulk(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp_null(out, sizeof(out), &pos));
    CHECK_ENCODED(pos, resp_null_size(), "$-1\r\n");
}

static void test_array_header_encodes_count(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp_array(out, sizeof(out), &pos, 2));
    CHECK_ENCODED(pos, resp_array_size(2), "*2\r\n");
    pos = 0;
    assert_true(resp_array(out, sizeof(out), &pos, 0));
    CHECK_ENCODED(pos, resp_array_size(0), "*0\r\n");
    pos = 0;
    assert_true(resp_array(out, sizeof(out), &pos, -1));
    CHECK_ENCODED(pos, resp_array_size(-1), "*-1\r\n");
}

static void test_encoders_append_at_pos(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp_array(out, sizeof(out), &pos, 2));
    assert_true(resp_bulk(out, sizeof(out), &pos, (const uint8_t *)"k", 1));
    assert_true(resp_integer(out, sizeof(out), &pos, 7));
    static const char want[] = "*2\r\n$1\r\nk\r\n:7\r\n";
    assert_int_equal(pos, sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);
}

static void test_encoders_write_nothing_when_it_does_not_fit(void **state)
{
    (void)state;
    memset(out, 'z', sizeof(out));
    size_t cap = 4; /* one byte short of "+OK\r\n" and of ":10\r\n" */
    size_t pos = 0;
    assert_false(resp_simple(out, cap, &pos, "OK"));
    assert_false(resp_error(out, cap, &pos, "OK"));
    assert_false(resp_integer(out, cap, &pos, 10));
    assert_false(resp_bulk(out, cap, &pos, NULL, 0));
    assert_false(resp_null(out, cap, &pos));
    assert_false(resp_array(out, cap, &pos, 10));
    assert_int_equal(pos, 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 'z');
    /* Exactly fitting is fine. */
    assert_true(resp_simple(out, 5, &pos, "OK"));
    assert_int_equal(pos, 5);
    assert_false(resp_simple(out, 5, &pos, ""));
}

/* ---- RESP3 encoders ------------------------------------------------------------------------ */

static void test_resp3_null_is_underscore(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp3_null(out, sizeof(out), &pos));
    CHECK_ENCODED(pos, resp3_null_size(), "_\r\n");
}

static void test_resp3_map_header_counts_pairs(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp3_map(out, sizeof(out), &pos, 7));
    CHECK_ENCODED(pos, resp3_map_size(7), "%7\r\n");
    pos = 0;
    assert_true(resp3_map(out, sizeof(out), &pos, 0));
    CHECK_ENCODED(pos, resp3_map_size(0), "%0\r\n");
}

static void test_resp3_set_header_counts_members(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp3_set(out, sizeof(out), &pos, 12));
    CHECK_ENCODED(pos, resp3_set_size(12), "~12\r\n");
}

static void test_resp3_booleans_are_t_and_f(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp3_bool(out, sizeof(out), &pos, true));
    CHECK_ENCODED(pos, resp3_bool_size(), "#t\r\n");
    pos = 0;
    assert_true(resp3_bool(out, sizeof(out), &pos, false));
    CHECK_ENCODED(pos, resp3_bool_size(), "#f\r\n");
}

static void test_resp3_double_as_redis_7_0_prints_it(void **state)
{
    (void)state;
    char text[RESP_DOUBLE_TEXT_MAX];
    assert_int_equal(resp_double_text(1.5, text), 3);
    assert_string_equal(text, "1.5");
    resp_double_text(0.1, text);
    assert_string_equal(text, "0.10000000000000001"); /* %.17g, as Redis 7.0 */
    resp_double_text(1.0 / 0.0, text);
    assert_string_equal(text, "inf");
    resp_double_text(-1.0 / 0.0, text);
    assert_string_equal(text, "-inf");
    size_t pos = 0;
    resp_double_text(3.0, text);
    assert_true(resp3_double(out, sizeof(out), &pos, text));
    CHECK_ENCODED(pos, resp3_double_size(text), ",3\r\n");
}

static void test_resp3_verbatim_counts_its_format_prefix(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_true(resp3_verbatim(out, sizeof(out), &pos, "txt", (const uint8_t *)"Some string", 11));
    CHECK_ENCODED(pos, resp3_verbatim_size(11), "=15\r\ntxt:Some string\r\n");
    pos = 0;
    assert_true(resp3_verbatim(out, sizeof(out), &pos, "txt", NULL, 0));
    CHECK_ENCODED(pos, resp3_verbatim_size(0), "=4\r\ntxt:\r\n");
}

static void test_resp3_encoders_write_nothing_when_it_does_not_fit(void **state)
{
    (void)state;
    memset(out, 'z', sizeof(out));
    size_t pos = 0;
    assert_false(resp3_null(out, 2, &pos));
    assert_false(resp3_map(out, 3, &pos, 10));
    assert_false(resp3_set(out, 3, &pos, 10));
    assert_false(resp3_bool(out, 3, &pos, true));
    assert_false(resp3_double(out, 3, &pos, "1.5"));
    assert_false(resp3_verbatim(out, 10, &pos, "txt", (const uint8_t *)"ab", 2));
    assert_int_equal(pos, 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 'z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_multibulk_request_yields_its_arguments, setup),
        cmocka_unit_test_setup(test_multibulk_empty_argument_is_allowed, setup),
        cmocka_unit_test_setup(test_multibulk_empty_and_null_arrays_are_argc_zero, setup),
        cmocka_unit_test_setup(test_multibulk_negative_count_is_skipped_like_redis, setup),
        cmocka_unit_test_setup(test_inline_request_splits_on_spaces_and_tabs, setup),
        cmocka_unit_test_setup(test_inline_request_ends_at_lf_or_crlf, setup),
        cmocka_unit_test_setup(test_inline_empty_line_is_argc_zero, setup),
        cmocka_unit_test_setup(test_inline_double_quotes_take_escapes, setup),
        cmocka_unit_test_setup(test_inline_single_quotes_take_only_escaped_quote, setup),
        cmocka_unit_test_setup(test_inline_bare_prefix_joins_quoted_part, setup),
        cmocka_unit_test_setup(test_inline_quotes_without_escapes_need_no_scratch, setup),
        cmocka_unit_test_setup(test_inline_escape_without_scratch_is_toobig, setup),
        cmocka_unit_test_setup(test_inline_unbalanced_quotes_is_error, setup),
        cmocka_unit_test_setup(test_pipelined_requests_parse_one_at_a_time, setup),
        cmocka_unit_test_setup(test_every_prefix_of_multibulk_is_eagain, setup),
        cmocka_unit_test_setup(test_every_prefix_of_inline_is_eagain, setup),
        cmocka_unit_test_setup(test_every_prefix_of_empty_array_is_eagain, setup),
        cmocka_unit_test_setup(test_bulk_arguments_are_binary_safe, setup),
        cmocka_unit_test_setup(test_bad_multibulk_count_is_invalid_multibulk_length, setup),
        cmocka_unit_test_setup(test_missing_dollar_is_expected_dollar_error, setup),
        cmocka_unit_test_setup(test_bad_bulk_length_is_invalid_bulk_length, setup),
        cmocka_unit_test_setup(test_bulk_without_trailing_crlf_is_error, setup),
        cmocka_unit_test_setup(test_args_over_max_args_is_toobig, setup),
        cmocka_unit_test_setup(test_args_over_default_max_args_is_toobig, setup),
        cmocka_unit_test_setup(test_args_over_capacity_is_toobig, setup),
        cmocka_unit_test_setup(test_bulk_over_max_bulk_is_toobig, setup),
        cmocka_unit_test_setup(test_inline_over_max_inline_is_toobig, setup),
        cmocka_unit_test_setup(test_huge_declared_lengths_wait_without_overflow, setup),
        cmocka_unit_test_setup(test_null_limits_and_null_err_are_allowed, setup),
        cmocka_unit_test_setup(test_random_bytes_never_crash_or_overconsume, setup),
        cmocka_unit_test(test_simple_string_encodes_exactly),
        cmocka_unit_test(test_error_encodes_exactly),
        cmocka_unit_test(test_integers_encode_in_decimal),
        cmocka_unit_test(test_bulk_encodes_length_data_and_crlf),
        cmocka_unit_test(test_null_encodes_as_minus_one_bulk),
        cmocka_unit_test(test_array_header_encodes_count),
        cmocka_unit_test(test_encoders_append_at_pos),
        cmocka_unit_test(test_encoders_write_nothing_when_it_does_not_fit),
        cmocka_unit_test(test_resp3_null_is_underscore),
        cmocka_unit_test(test_resp3_map_header_counts_pairs),
        cmocka_unit_test(test_resp3_set_header_counts_members),
        cmocka_unit_test(test_resp3_booleans_are_t_and_f),
        cmocka_unit_test(test_resp3_double_as_redis_7_0_prints_it),
        cmocka_unit_test(test_resp3_verbatim_counts_its_format_prefix),
        cmocka_unit_test(test_resp3_encoders_write_nothing_when_it_does_not_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
