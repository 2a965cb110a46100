/*
 * test_acl.c — ACL users (issue #18): the rule language of core/kv/acl.c (Redis 7's ACL SETUSER,
 * error texts checked by hand against redis-server 7.0.15), the record (round trip, every
 * truncation and byte flip refused or decoded to a valid user), the category table, the
 * matcher of node/acl.c (commands by name and category, keys by pattern and access), and the
 * users as state-machine ops: applied, refused atomically, deleted, and back after a restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acl.h"
#include "counting_alloc.h"
#include "kv/acl.h"
#include "kv/kv.h"
#include "kv/memstore.h"

#define HASH_A "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
#define HASH_B "43bb00d0ce7790a53b91256b370c887b24791a5539a6fbfb70c5870e8c91ae5d"

static char desc[KV_ACL_DESCRIBE_MAX];
static char why[256];

/* Applies the rules (NULL-terminated) to u; returns the first error's text, or "" */
static const char *rules(struct kv_acl_user *u, ...)
{
    va_list ap;
    va_start(ap, u);
    why[0] = 0;
    for (const char *r = va_arg(ap, const char *); r != NULL; r = va_arg(ap, const char *))
        if (kv_acl_rule(u, (const uint8_t *)r, strlen(r), why, sizeof(why)) != RK_OK)
            break;
    va_end(ap);
    return why;
}

static const char *describe(const struct kv_acl_user *u)
{
    kv_acl_describe(u, desc, sizeof(desc));
    return desc;
}

static struct kv_acl_user *user(const char *name)
{
    static struct kv_acl_user u;
    kv_acl_user_new(&u, (const uint8_t *)name, strlen(name));
    return &u;
}

/* ---- the rule language ------------------------------------------------------------------- */

static void new_and_default_users_describe_as_redis(void **state)
{
    (void)state;
    assert_string_equal(describe(user("u")), "off resetchannels -@all");
    struct kv_acl_user d;
    kv_acl_user_default(&d);
    assert_string_equal(describe(&d), "on nopass ~* &* +@all");
}

static void rules_apply_in_order_as_redis(void **state)
{
    (void)state;
    struct kv_acl_user *u = user("alice");
    assert_string_equal(
        rules(u, "on", "#" HASH_A, "~k*", "%R~r*", "+@read", "-get", "+set", "&ch", NULL), "");
    assert_string_equal(describe(u),
                        "on #" HASH_A " ~k* %R~r* resetchannels &ch -@all +@read -get +set");
    /* %R then %W of one pattern: one pattern with both */
    assert_string_equal(rules(u, "%W~r*", NULL), "");
    assert_string_equal(describe(u),
                        "on #" HASH_A " ~k* ~r* resetchannels &ch -@all +@read -get +set");
    u = user("u7");
    rules(u, "%R~a", "%W~b", "%RW~c", "~d", NULL);
    assert_string_equal(describe(u), "off %R~a %W~b ~c ~d resetchannels -@all");
    u = user("u8");
    rules(u, "#" HASH_A, "#" HASH_B, "!" HASH_A, "nopass", NULL);
    assert_string_equal(describe(u), "off nopass resetchannels -@all");
    rules(u, "#" HASH_B, NULL); /* a password clears nopass */
    assert_string_equal(describe(u), "off #" HASH_B " resetchannels -@all");
    rules(u, "resetpass", "allkeys", "allchannels", "allcommands", "on", NULL);
    assert_string_equal(describe(u), "on ~* &* +@all");
    rules(u, "reset", NULL);
    assert_string_equal(describe(u), "off sanitize-payload resetchannels -@all");
}

static void a_later_rule_replaces_an_earlier_one_of_the_same_name(void **state)
{
    (void)state;
    struct kv_acl_user *u = user("u");
    rules(u, "+get", "+GET", "-get", "+set", NULL);
    assert_string_equal(describe(u), "off resetchannels -@all -get +set");
    rules(u, "+config|get", "+config|set", "-config", NULL);
    assert_string_equal(describe(u), "off resetchannels -@all -get +set -config");
    rules(u, "+@read", "-@READ", NULL);
    assert_string_equal(describe(u), "off resetchannels -@all -get +set -config -@read");
    rules(u, "+@all", NULL);
    assert_string_equal(describe(u), "off resetchannels +@all");
    rules(u, "-@dangerous", "nocommands", NULL);
    assert_string_equal(describe(u), "off resetchannels -@all");
}

static void bad_rules_get_redis_errors_and_change_nothing(void **state)
{
    (void)state;
    struct kv_acl_user *u = user("u");
    rules(u, "on", "allkeys", NULL);
    char before[KV_ACL_DESCRIBE_MAX];
    snprintf(before, sizeof(before), "%s", describe(u));
    static const struct {
        const char *rule, *why;
    } cases[] = {
        {"bogus", "Syntax error"},
        {"%X~a", "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and "
                 "does not have any effect. Try 'resetkeys' to start with an empty list of "
                 "patterns"},
        {"~b", "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and "
               "does not have any effect. Try 'resetkeys' to start with an empty list of "
               "patterns"},
        {"+@foo", "Unknown command or category name in ACL"},
        {"+", "Unknown command or category name in ACL"},
        {"+a|b|c", "Unknown command or category name in ACL"},
        {"#abc", "The password hash must be exactly 64 characters and contain only lowercase "
                 "hexadecimal characters"},
        {"#"
         "30C952FAB122C3F9759F02A6D95C3758B246B4FEE239957B2D4FEE46E26170C4",
         "The password hash must be exactly 64 characters and contain only lowercase "
         "hexadecimal characters"},
        {"!" HASH_B, "The password you are trying to remove from the user does not exist"},
        {">clear", "a clear-text password must be hashed by the node"},
        {"(~a +get)", "raftkv does not support selectors"},
        {"", "Syntax error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            kv_acl_rule(u, (const uint8_t *)cases[i].rule, strlen(cases[i].rule), why, sizeof(why)),
            RK_EINVAL);
        assert_string_equal(why, cases[i].why);
        assert_string_equal(describe(u), before);
    }
    u = user("c");
    rules(u, "&*", NULL);
    assert_string_equal(rules(u, "&x", NULL),
                        "Adding a pattern after the * pattern (or the 'allchannels' flag) is not "
                        "valid and does not have any effect. Try 'resetchannels' to start with an "
                        "empty list of channels");
}

static void limits_are_errors_not_overflows(void **state)
{
    (void)state;
    struct kv_acl_user *u = user("u");
    char r[8];
    for (int i = 0; i < (int)KV_ACL_MAX_PATTERNS; i++) {
        snprintf(r, sizeof(r), "~k%d", i);
        assert_string_equal(rules(u, r, NULL), "");
    }
    assert_string_equal(rules(u, "~more", NULL), "raftkv keeps at most 16 key patterns per user");
    assert_string_equal(rules(u, "~k3", NULL), ""); /* a repeat is no new pattern */
    char big[KV_ACL_MAX_PATTERN_BYTES + 3];
    memset(big, 'x', sizeof(big) - 1);
    big[0] = '&';
    big[sizeof(big) - 1] = 0;
    assert_string_equal(rules(u, big, NULL), "raftkv keeps patterns of at most 256 bytes");
}

static void user_names(void **state)
{
    (void)state;
    assert_true(kv_acl_name_ok((const uint8_t *)"alice", 5));
    assert_false(kv_acl_name_ok((const uint8_t *)"a b", 3));
    assert_false(kv_acl_name_ok((const uint8_t *)"a\0b", 3));
    assert_false(kv_acl_name_ok((const uint8_t *)"", 0));
}

/* ---- the record --------------------------------------------------------------------------- */

static void records_round_trip_and_refuse_damage(void **state)
{
    (void)state;
    struct kv_acl_user *u = user("alice");
    rules(u, "on", "#" HASH_A, "#" HASH_B, "~k*", "%R~r*", "&ch", "+@read", "-get", "+config|get",
          NULL);
    static uint8_t rec[sizeof(struct kv_acl_user) + 64];
    size_t len = kv_acl_encode(u, rec, sizeof(rec));
    assert_true(len > 0);
    assert_int_equal(kv_acl_encode(u, rec, len - 1), 0); /* too small: nothing */
    len = kv_acl_encode(u, rec, sizeof(rec));
    static struct kv_acl_user got;
    assert_int_equal(kv_acl_decode((const uint8_t *)"alice", 5, rec, len, &got), RK_OK);
    char want[KV_ACL_DESCRIBE_MAX];
    snprintf(want, sizeof(want), "%s", describe(u));
    assert_string_equal(describe(&got), want);
    /* every truncation and trailing byte refused */
    for (size_t n = 0; n < len; n++)
        assert_int_equal(kv_acl_decode((const uint8_t *)"alice", 5, rec, n, &got), RK_ECORRUPT);
    rec[len] = 0;
    assert_int_equal(kv_acl_decode((const uint8_t *)"alice", 5, rec, len + 1, &got), RK_ECORRUPT);
    /* every flipped byte: refused, or a user whose record is exactly those bytes */
    static uint8_t again[sizeof(struct kv_acl_user) + 64];
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            rec[i] ^= (uint8_t)(1u << bit);
            if (kv_acl_decode((const uint8_t *)"alice", 5, rec, len, &got) == RK_OK) {
                assert_int_equal(kv_acl_encode(&got, again, sizeof(again)), len);
                assert_memory_equal(again, rec, len);
            }
            rec[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(kv_acl_decode((const uint8_t *)"a b", 3, rec, len, &got), RK_ECORRUPT);
}

/* ---- categories and the matcher (node/acl.c) ---------------------------------------------- */

static void categories_are_redis_7s_in_its_order(void **state)
{
    (void)state;
    /* redis-cli ACL CAT against redis-server 7.0.15 */
    static const char *const want[] = {
        "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
        "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
        "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting"};
    assert_int_equal(sizeof(want) / sizeof(want[0]), KV_ACL_CATEGORIES);
    for (uint32_t i = 0; i < KV_ACL_CATEGORIES; i++) {
        assert_string_equal(kv_acl_category_name(i), want[i]);
        assert_int_equal(kv_acl_category((const uint8_t *)want[i], strlen(want[i])), (int)i);
    }
    assert_int_equal(kv_acl_category((const uint8_t *)"ADMIN", 5), 13);
    assert_int_equal(kv_acl_category((const uint8_t *)"all", 3), -1);
    assert_int_equal(kv_acl_category((const uint8_t *)"nosuch", 6), -1);
}

#define CAT(name) (1u << kv_acl_category((const uint8_t *)(name), strlen(name)))

static void commands_allowed_by_name_category_and_order(void **state)
{
    (void)state;
    uint32_t get = CAT("read") | CAT("string") | CAT("fast");
    uint32_t del = CAT("keyspace") | CAT("write") | CAT("slow");
    uint32_t cfg = CAT("admin") | CAT("slow") | CAT("dangerous");
    struct kv_acl_user *u = user("u");
    assert_false(acl_cmd_allowed(u, "get", get));
    rules(u, "+@read", NULL);
    assert_true(acl_cmd_allowed(u, "get", get));
    assert_false(acl_cmd_allowed(u, "del", del));
    rules(u, "-get", NULL);
    assert_false(acl_cmd_allowed(u, "get", get));
    rules(u, "+@string", NULL); /* later: get is a string command */
    assert_true(acl_cmd_allowed(u, "get", get));
    rules(u, "+config|get", NULL);
    assert_true(acl_cmd_allowed(u, "config|get", cfg));
    assert_false(acl_cmd_allowed(u, "config|set", cfg));
    rules(u, "+config", NULL); /* the container covers its subcommands */
    assert_true(acl_cmd_allowed(u, "config|set", cfg));
    assert_false(acl_cmd_allowed(u, "configx", cfg));
    rules(u, "+@all", "-@admin", NULL);
    assert_true(acl_cmd_allowed(u, "del", del));
    assert_false(acl_cmd_allowed(u, "config|get", cfg));
    /* a command raftkv adds later, tagged @admin in the table, is refused by -@admin */
    assert_false(acl_cmd_allowed(u, "raftkv.member|add", CAT("admin") | CAT("slow")));
}

static void keys_allowed_by_pattern_and_access(void **state)
{
    (void)state;
    struct kv_acl_user *u = user("u");
    rules(u, "~app:*", "%R~ro:*", "%W~wo:?", NULL);
    const uint8_t rw = KV_ACL_KEY_READ | KV_ACL_KEY_WRITE;
    assert_true(acl_key_allowed(u, (const uint8_t *)"app:1", 5, rw));
    assert_false(acl_key_allowed(u, (const uint8_t *)"other", 5, 0));
    assert_true(acl_key_allowed(u, (const uint8_t *)"ro:1", 4, KV_ACL_KEY_READ));
    assert_false(acl_key_allowed(u, (const uint8_t *)"ro:1", 4, KV_ACL_KEY_WRITE));
    assert_true(acl_key_allowed(u, (const uint8_t *)"ro:1", 4, 0));
    assert_true(acl_key_allowed(u, (const uint8_t *)"wo:x", 4, KV_ACL_KEY_WRITE));
    assert_false(acl_key_allowed(u, (const uint8_t *)"wo:xy", 5, KV_ACL_KEY_WRITE));
    rules(u, "allkeys", NULL);
    assert_true(acl_key_allowed(u, (const uint8_t *)"\xff\x00", 2, rw));
    assert_int_equal(acl_key_need("RW access update variable_flags"), rw);
    assert_int_equal(acl_key_need("RO access"), KV_ACL_KEY_READ);
    assert_int_equal(acl_key_need("OW update"), KV_ACL_KEY_WRITE);
    assert_int_equal(acl_key_need("RM delete"), KV_ACL_KEY_WRITE);
    assert_int_equal(acl_key_need("RO"), 0);
}

/* ---- users in the state machine ----------------------------------------------------------- */

struct t {
    struct counting cnt;
    struct rk_alloc alloc;
    struct kv_store *store;
    struct kv *kv;
    uint64_t index;
    char out[512];
    uint8_t buf[4096];
};

static void t_reopen(struct t *t)
{
    kv_destroy(t->kv);
    struct kv_config cfg = {.alloc = &t->alloc, .store = t->store};
    assert_int_equal(kv_create(&cfg, &t->kv, NULL), RK_OK);
    assert_true(kv_valid(t->kv));
}

/* Applies op code with the NULL-terminated args; the result as "+OK", ":1" or "-ERR ...". */
static const char *op(struct t *t, uint8_t code, ...)
{
    struct kv_arg args[16];
    uint32_t argc = 0;
    va_list ap;
    va_start(ap, code);
    for (const char *a = va_arg(ap, const char *); a != NULL; a = va_arg(ap, const char *)) {
        args[argc].p = (const uint8_t *)a;
        args[argc++].len = (uint32_t)strlen(a);
    }
    va_end(ap);
    struct kv_op2 o = {.code = code, .argc = argc, .argv = args};
    struct kv_cmd2 c = {.n_ops = 1, .ops = &o};
    size_t len = 0;
    assert_int_equal(kv_cmd2_encode(&c, t->buf, sizeof(t->buf), &len), RK_OK);
    struct kv_result r;
    assert_int_equal(kv_apply(t->kv, ++t->index, t->buf, (uint32_t)len, &r), RK_OK);
    assert_int_equal(r.status, KV_OK);
    struct kv_res_iter it;
    struct kv_res_item item;
    kv_res_begin(&it, r.val, r.val_len);
    assert_true(kv_res_next(&it, &item));
    if (item.type == KV_RES_INT)
        snprintf(t->out, sizeof(t->out), ":%lld", (long long)item.num);
    else
        snprintf(t->out, sizeof(t->out), "%c%.*s", item.type, (int)item.len, (const char *)item.p);
    return t->out;
}

static const char *user_desc(struct t *t, const char *name)
{
    const struct kv_acl_user *u = kv_acl_user(t->kv, (const uint8_t *)name, strlen(name));
    return u == NULL ? "(none)" : describe(u);
}

static void users_are_replicated_state_that_survives_a_restart(void **state)
{
    (void)state;
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->alloc = counting_alloc(&t->cnt);
    assert_int_equal(kv_memstore_create(&t->alloc, &t->store), RK_OK);
    struct kv_config cfg = {.alloc = &t->alloc, .store = t->store};
    assert_int_equal(kv_create(&cfg, &t->kv, NULL), RK_OK);
    assert_int_equal(kv_acl_count(t->kv), 1);
    assert_false(kv_acl_default_set(t->kv));
    uint64_t digest0 = 0, digest1 = 0;
    assert_int_equal(kv_digest(t->kv, &digest0), RK_OK);
    uint64_t gen = kv_acl_generation(t->kv);

    assert_string_equal(op(t, KV_C_ACL_SETUSER, "bob", "on", "#" HASH_A, "~b:*", "+@read", NULL),
                        "+OK");
    assert_true(kv_acl_generation(t->kv) != gen);
    assert_string_equal(user_desc(t, "bob"), "on #" HASH_A " ~b:* resetchannels -@all +@read");
    /* a failing rule: the reply, and bob as he was */
    assert_string_equal(op(t, KV_C_ACL_SETUSER, "bob", "off", "bogus", NULL),
                        "-ERR Error in ACL SETUSER modifier 'bogus': Syntax error");
    assert_string_equal(user_desc(t, "bob"), "on #" HASH_A " ~b:* resetchannels -@all +@read");
    assert_string_equal(op(t, KV_C_ACL_SETUSER, "a b", NULL),
                        "-ERR Usernames can't contain spaces or null characters");
    assert_string_equal(op(t, KV_C_ACL_SETUSER, "default", "resetpass", "#" HASH_B, NULL), "+OK");
    assert_true(kv_acl_default_set(t->kv));
    assert_string_equal(op(t, KV_C_ACL_SETUSER, "amy", NULL), "+OK");
    /* name order, as Redis lists them */
    assert_int_equal(kv_acl_count(t->kv), 3);
    assert_string_equal(kv_acl_at(t->kv, 0)->name, "amy");
    assert_string_equal(kv_acl_at(t->kv, 1)->name, "bob");
    assert_string_equal(kv_acl_at(t->kv, 2)->name, "default");
    assert_int_equal(kv_count(t->kv), 0); /* users are not keys (DBSIZE) */
    assert_true(kv_valid(t->kv));
    assert_int_equal(kv_digest(t->kv, &digest1), RK_OK);
    assert_true(digest1 != digest0);

    t_reopen(t);
    assert_string_equal(user_desc(t, "bob"), "on #" HASH_A " ~b:* resetchannels -@all +@read");
    assert_string_equal(user_desc(t, "default"), "on #" HASH_B " ~* &* +@all");
    assert_int_equal(kv_acl_count(t->kv), 3);
    uint64_t digest2 = 0;
    assert_int_equal(kv_digest(t->kv, &digest2), RK_OK);
    assert_int_equal(digest2, digest1);

    assert_string_equal(op(t, KV_C_ACL_DELUSER, "bob", "default", NULL),
                        "-ERR The 'default' user cannot be removed");
    assert_string_equal(user_desc(t, "bob"), "on #" HASH_A " ~b:* resetchannels -@all +@read");
    assert_string_equal(op(t, KV_C_ACL_DELUSER, "bob", "nobody", "bob", NULL), ":1");
    assert_string_equal(user_desc(t, "bob"), "(none)");
    assert_true(kv_valid(t->kv));
    t_reopen(t);
    assert_string_equal(user_desc(t, "bob"), "(none)");
    assert_int_equal(kv_acl_count(t->kv), 2);

    /* a replaced state machine (snapshot install) starts from the generation it is given */
    kv_destroy(t->kv);
    cfg.acl_generation = 1000;
    assert_int_equal(kv_create(&cfg, &t->kv, NULL), RK_OK);
    assert_int_equal(kv_acl_generation(t->kv), 1000);

    kv_destroy(t->kv);
    t->store->ops->destroy(t->store);
    assert_int_equal(t->cnt.live, 0);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_and_default_users_describe_as_redis),
        cmocka_unit_test(rules_apply_in_order_as_redis),
        cmocka_unit_test(a_later_rule_replaces_an_earlier_one_of_the_same_name),
        cmocka_unit_test(bad_rules_get_redis_errors_and_change_nothing),
        cmocka_unit_test(limits_are_errors_not_overflows),
        cmocka_unit_test(user_names),
        cmocka_unit_test(records_round_trip_and_refuse_damage),
        cmocka_unit_test(categories_are_redis_7s_in_its_order),
        cmocka_unit_test(commands_allowed_by_name_category_and_order),
        cmocka_unit_test(keys_allowed_by_pattern_and_access),
        cmocka_unit_test(users_are_replicated_state_that_survives_a_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
