/*
 * test_glob.c — Redis's glob patterns as KEYS and SCAN MATCH use them (node/glob.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "glob.h"

static bool m(const char *pat, const char *s)
{
    return glob_match((const uint8_t *)pat, strlen(pat), (const uint8_t *)s, strlen(s));
}

static void stars_and_question_marks(void **state)
{
    (void)state;
    assert_true(m("*", ""));
    assert_true(m("*", "anything"));
    assert_true(m("user:*", "user:1"));
    assert_true(m("user:*", "user:"));
    assert_false(m("user:*", "use"));
    assert_true(m("*:name", "user:42:name"));
    assert_true(m("h?llo", "hello"));
    assert_false(m("h?llo", "hllo"));
    assert_true(m("a*b*c", "aXXbYYc"));
    assert_false(m("a*b*c", "aXXbYY"));
    assert_true(m("**x", "x"));
    assert_true(m("", ""));
    assert_false(m("", "a"));
    assert_true(m("a*", "a"));
    assert_false(m("abc", "abcd"));
    assert_true(m("*abc", "ababc"));
}

static void classes_ranges_and_negation(void **state)
{
    (void)state;
    assert_true(m("h[ae]llo", "hello"));
    assert_true(m("h[ae]llo", "hallo"));
    assert_false(m("h[ae]llo", "hillo"));
    assert_true(m("h[^e]llo", "hallo"));
    assert_false(m("h[^e]llo", "hello"));
    assert_true(m("h[a-b]llo", "hbllo"));
    assert_true(m("h[b-a]llo", "hallo")); /* reversed range, as Redis */
    assert_false(m("h[a-b]llo", "hcllo"));
    assert_true(m("[\\]]", "]"));
    assert_true(m("x[abc", "xc")); /* unterminated class runs to the end */
}

static void escapes_and_binary_bytes(void **state)
{
    (void)state;
    assert_true(m("a\\*b", "a*b"));
    assert_false(m("a\\*b", "aXb"));
    assert_true(m("a\\?", "a?"));
    assert_true(m("trailing\\", "trailing\\"));
    const uint8_t key[] = {'k', 0, 'z'};
    const uint8_t pat[] = {'k', 0, '*'};
    assert_true(glob_match(pat, sizeof(pat), key, sizeof(key)));
    assert_false(glob_match((const uint8_t *)"k", 1, key, sizeof(key)));
}

/* The case that makes naive backtracking exponential: answers at once here. */
static void many_stars_do_not_blow_up(void **state)
{
    (void)state;
    char pat[200], s[4001];
    size_t k = 0;
    for (int i = 0; i < 60; i++) {
        pat[k++] = 'a';
        pat[k++] = '*';
    }
    pat[k++] = 'b';
    pat[k] = 0;
    memset(s, 'a', 4000);
    s[4000] = 0;
    assert_false(m(pat, s));
    s[3999] = 'b';
    assert_true(m(pat, s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stars_and_question_marks),
        cmocka_unit_test(classes_ranges_and_negation),
        cmocka_unit_test(escapes_and_binary_bytes),
        cmocka_unit_test(many_stars_do_not_blow_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
