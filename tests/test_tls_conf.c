/*
 * test_tls_conf.c — the TLS settings' values (node/tls_conf.c): tls-protocols, tls-auth-clients
 * and tls-peer-names as the node parses and checks them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tls_conf.h"

static void protocols_default_is_both(void **state)
{
    (void)state;
    unsigned m = 0;
    assert_true(tls_parse_protocols("", &m));
    assert_int_equal(m, TLS_PROTO_12 | TLS_PROTO_13);
    m = 0;
    assert_true(tls_parse_protocols(NULL, &m));
    assert_int_equal(m, TLS_PROTO_12 | TLS_PROTO_13);
}

static void protocols_words_in_any_order(void **state)
{
    (void)state;
    unsigned m = 0;
    assert_true(tls_parse_protocols("TLSv1.3", &m));
    assert_int_equal(m, TLS_PROTO_13);
    assert_true(tls_parse_protocols("tlsv1.2", &m));
    assert_int_equal(m, TLS_PROTO_12);
    assert_true(tls_parse_protocols("  TLSv1.3   TLSv1.2 ", &m));
    assert_int_equal(m, TLS_PROTO_12 | TLS_PROTO_13);
}

static void protocols_refuses_unknown_and_repeats(void **state)
{
    (void)state;
    unsigned m = 7;
    assert_false(tls_parse_protocols("TLSv1.1", &m));
    assert_false(tls_parse_protocols("TLSv1.2 TLSv1.2", &m));
    assert_false(tls_parse_protocols("TLSv1.2,TLSv1.3", &m));
    assert_false(tls_parse_protocols("TLSv1.20", &m));
    assert_int_equal(m, 7); /* untouched on failure */
}

static void auth_clients_words(void **state)
{
    (void)state;
    enum tls_auth a = TLS_AUTH_NO;
    assert_true(tls_parse_auth("yes", &a));
    assert_int_equal(a, TLS_AUTH_YES);
    assert_true(tls_parse_auth("NO", &a));
    assert_int_equal(a, TLS_AUTH_NO);
    assert_true(tls_parse_auth("optional", &a));
    assert_int_equal(a, TLS_AUTH_OPTIONAL);
    assert_false(tls_parse_auth("maybe", &a));
    assert_false(tls_parse_auth("", &a));
    assert_false(tls_parse_auth(NULL, &a));
}

static void peer_names_valid_lists(void **state)
{
    (void)state;
    char why[200];
    assert_true(tls_check_peer_names("", why, sizeof(why)));
    assert_true(tls_check_peer_names("1=n1.raftkv,2=n2.raftkv,3=n3", why, sizeof(why)));
    assert_true(tls_check_peer_names("18446744073709551615=*.example.com", why, sizeof(why)));
}

static void peer_names_bad_lists_say_why(void **state)
{
    (void)state;
    char why[200] = "";
    assert_false(tls_check_peer_names("1=a,1=b", why, sizeof(why)));
    assert_non_null(strstr(why, "twice"));
    assert_false(tls_check_peer_names("0=a", why, sizeof(why)));
    assert_false(tls_check_peer_names("1=", why, sizeof(why)));
    assert_false(tls_check_peer_names("=a", why, sizeof(why)));
    assert_false(tls_check_peer_names("1a=b", why, sizeof(why)));
    assert_false(tls_check_peer_names("1=a b", why, sizeof(why)));
    assert_false(tls_check_peer_names("1=a,", why, sizeof(why)));
    assert_non_null(strstr(why, "trailing"));
    assert_false(tls_check_peer_names("18446744073709551616=a", why, sizeof(why)));
}

static void peer_name_lookup(void **state)
{
    (void)state;
    char out[64];
    const char *list = "1=n1.raftkv,22=n22,3=n3.raftkv";
    assert_true(tls_peer_name(list, 22, out, sizeof(out)));
    assert_string_equal(out, "n22");
    assert_true(tls_peer_name(list, 3, out, sizeof(out)));
    assert_string_equal(out, "n3.raftkv");
    assert_false(tls_peer_name(list, 2, out, sizeof(out)));
    assert_false(tls_peer_name("", 1, out, sizeof(out)));
    char tiny[4];
    assert_false(tls_peer_name(list, 1, tiny, sizeof(tiny))); /* does not fit: not truncated */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(protocols_default_is_both),
        cmocka_unit_test(protocols_words_in_any_order),
        cmocka_unit_test(protocols_refuses_unknown_and_repeats),
        cmocka_unit_test(auth_clients_words),
        cmocka_unit_test(peer_names_valid_lists),
        cmocka_unit_test(peer_names_bad_lists_say_why),
        cmocka_unit_test(peer_name_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
