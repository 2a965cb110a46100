/*
 * test_kv.c — the replicated state machine: the command encoding (round trips, limits, strict
 * rejection of every malformed input with a message naming the field), the in-memory store
 * (Robin Hood table: growth, backward-shift deletion against a model, scan), and kv_apply
 * (results, at-most-once retries, stale requests, bounded sessions with deterministic LRU
 * eviction, undecodable entries, and allocation failures that change nothing and leak nothing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "common/prng.h"
#include "kv/kv.h"
#include "kv/memstore.h"

/* ---- a counting, failable allocator ---------------------------------------------------- */

struct counting {
    size_t live;      /* allocations not yet freed */
    size_t calls;     /* malloc/realloc calls so far */
    size_t fail_at;   /* the call numbered fail_at (1-based) fails; 0 = never */
    size_t fail_from; /* calls numbered >= fail_from fail; 0 = never */
};

static bool cnt_should_fail(struct counting *c)
{
    c->calls++;
    return (c->fail_at != 0 && c->calls == c->fail_at) ||
           (c->fail_from != 0 && c->calls >= c->fail_from);
}

static void *cnt_malloc(void *ctx, size_t size)
{
    struct counting *c = ctx;
    if (cnt_should_fail(c))
        return NULL;
    void *p = malloc(size == 0 ? 1 : size);
    if (p != NULL)
        c->live++;
    return p;
}

static void *cnt_realloc(void *ctx, void *ptr, size_t size)
{
    struct counting *c = ctx;
    if (cnt_should_fail(c))
        return NULL;
    void *p = realloc(ptr, size == 0 ? 1 : size);
    if (p != NULL && ptr == NULL)
        c->live++;
    return p;
}

static void cnt_free(void *ctx, void *ptr)
{
    struct counting *c = ctx;
    if (ptr == NULL)
        return;
    assert_true(c->live > 0);
    c->live--;
    free(ptr);
}

static struct rk_alloc counting_alloc(struct counting *c)
{
    memset(c, 0, sizeof(*c));
    struct rk_alloc a = {
        .malloc_fn = cnt_malloc, .realloc_fn = cnt_realloc, .free_fn = cnt_free, .ctx = c};
    return a;
}

/* ---- helpers ---------------------------------------------------------------------------- */

#define SMALL_CMD_CAP 512

static struct kv_cmd cmd_of(uint8_t op, uint64_t client_id, uint64_t seq, const char *key,
                            const char *val)
{
    struct kv_cmd c = {
        .op = op,
        .client_id = client_id,
        .seq = seq,
        .key = (const uint8_t *)key,
        .key_len = key == NULL ? 0 : (uint32_t)strlen(key),
        .val = (const uint8_t *)val,
        .val_len = val == NULL ? 0 : (uint32_t)strlen(val),
    };
    return c;
}

static size_t encode_ok(const struct kv_cmd *c, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    assert_int_equal(kv_cmd_encode(c, buf, cap, &len), RK_OK);
    assert_int_equal(len, kv_cmd_size(c));
    return len;
}

static void assert_cmd_equal(const struct kv_cmd *want, const struct kv_cmd *got)
{
    assert_int_equal(got->op, want->op);
    assert_int_equal(got->client_id, want->client_id);
    assert_int_equal(got->seq, want->seq);
    assert_int_equal(got->key_len, want->key_len);
    assert_int_equal(got->val_len, want->val_len);
    if (want->key_len == 0)
        assert_null(got->key);
    else
        assert_memory_equal(got->key, want->key, want->key_len);
    if (want->val_len == 0)
        assert_null(got->val);
    else
        assert_memory_equal(got->val, want->val, want->val_len);
}

static void assert_malformed(const uint8_t *buf, size_t len, const char *needle)
{
    struct kv_cmd c;
    struct rk_errmsg err = {{0}};
    assert_int_equal(kv_cmd_decode(buf, len, &c, &err), RK_EMALFORMED);
    if (strstr(err.text, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.text, needle);
    assert_non_null(strstr(err.text, "kv command: "));
}

static void round_trip(const struct kv_cmd *c)
{
    size_t size = kv_cmd_size(c);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(encode_ok(c, buf, size), size);
    struct kv_cmd got;
    struct rk_errmsg err = {{0}};
    assert_int_equal(kv_cmd_decode(buf, size, &got, &err), RK_OK);
    assert_cmd_equal(c, &got);
    assert_ptr_equal(got.key, c->key_len == 0 ? NULL : buf + 22); /* zero-copy */
    free(buf);
}

struct fixture {
    struct counting cnt;
    struct rk_alloc alloc;
    struct kv_store *store;
    struct kv *kv;
};

static void fixture_open(struct fixture *f, uint32_t max_sessions)
{
    f->alloc = counting_alloc(&f->cnt);
    assert_int_equal(kv_memstore_create(&f->alloc, &f->store), RK_OK);
    struct kv_config cfg = {.alloc = &f->alloc, .store = f->store, .max_sessions = max_sessions};
    assert_int_equal(kv_create(&cfg, &f->kv), RK_OK);
}

static void fixture_close(struct fixture *f)
{
    assert_true(kv_valid(f->kv));
    assert_true(kv_memstore_valid(f->store));
    kv_destroy(f->kv);
    f->store->ops->destroy(f->store);
    assert_int_equal(f->cnt.live, 0);
}

/* Applies one command at the next index and returns kv_apply's code. */
static int apply_cmd(struct kv *kv, uint8_t op, uint64_t client_id, uint64_t seq, const char *key,
                     const char *val, struct kv_result *res)
{
    struct kv_cmd c = cmd_of(op, client_id, seq, key, val);
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    return kv_apply(kv, kv_applied_index(kv) + 1, buf, (uint32_t)len, res);
}

static struct kv_result put(struct kv *kv, uint64_t client_id, uint64_t seq, const char *key,
                            const char *val)
{
    struct kv_result res;
    assert_int_equal(apply_cmd(kv, KV_OP_PUT, client_id, seq, key, val, &res), RK_OK);
    return res;
}

static struct kv_result del(struct kv *kv, uint64_t client_id, uint64_t seq, const char *key)
{
    struct kv_result res;
    assert_int_equal(apply_cmd(kv, KV_OP_DEL, client_id, seq, key, NULL, &res), RK_OK);
    return res;
}

static void assert_value(struct kv *kv, const char *key, const char *want)
{
    const uint8_t *val = NULL;
    uint32_t val_len = 0;
    int rc = kv_get(kv, (const uint8_t *)key, (uint32_t)strlen(key), &val, &val_len);
    if (want == NULL) {
        assert_int_equal(rc, RK_ENOENT);
        return;
    }
    assert_int_equal(rc, RK_OK);
    assert_int_equal(val_len, strlen(want));
    assert_memory_equal(val, want, val_len);
}

/* ---- command encoding ------------------------------------------------------------------- */

static void cmd_put_round_trips(void **state)
{
    (void)state;
    struct kv_cmd c =
        cmd_of(KV_OP_PUT, 0x0102030405060708ull, 0x1112131415161718ull, "key", "some value");
    round_trip(&c);
}

static void cmd_del_round_trips(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_DEL, 7, 9, "gone", NULL);
    round_trip(&c);
}

static void cmd_empty_key_and_value_round_trip(void **state)
{
    (void)state;
    struct kv_cmd put_empty = cmd_of(KV_OP_PUT, 0, 0, NULL, NULL);
    round_trip(&put_empty);
    assert_int_equal(kv_cmd_size(&put_empty), KV_CMD_OVERHEAD_BYTES);
    struct kv_cmd del_empty = cmd_of(KV_OP_DEL, 3, 1, NULL, NULL);
    round_trip(&del_empty);
    struct kv_cmd put_empty_val = cmd_of(KV_OP_PUT, 3, 2, "k", NULL);
    round_trip(&put_empty_val);
}

static void cmd_max_sizes_round_trip(void **state)
{
    (void)state;
    uint8_t *key = malloc(KV_MAX_KEY_BYTES);
    uint8_t *val = malloc(KV_MAX_VALUE_BYTES);
    assert_non_null(key);
    assert_non_null(val);
    for (uint32_t i = 0; i < KV_MAX_KEY_BYTES; i++)
        key[i] = (uint8_t)(i * 31 + 1);
    for (uint32_t i = 0; i < KV_MAX_VALUE_BYTES; i++)
        val[i] = (uint8_t)(i * 17 + 3);
    struct kv_cmd c = {.op = KV_OP_PUT,
                       .client_id = UINT64_MAX,
                       .seq = UINT64_MAX,
                       .key = key,
                       .key_len = KV_MAX_KEY_BYTES,
                       .val = val,
                       .val_len = KV_MAX_VALUE_BYTES};
    assert_int_equal(kv_cmd_size(&c), KV_CMD_MAX_BYTES);
    round_trip(&c);
    free(key);
    free(val);
}

static void cmd_layout_is_little_endian_fixed_width(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 0x0102030405060708ull, 0x1112131415161718ull, "ab", "xyz");
    static const uint8_t want[] = {
        1,    1,                                        /* version, op */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* client_id */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* seq */
        2,    0,    0,    0,    'a',  'b',              /* key_len, key */
        3,    0,    0,    0,    'x',  'y',  'z',        /* val_len, val */
    };
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

/* The field the decoder is reading when a command of this shape is cut at offset cut. */
static const char *field_at(size_t cut, uint32_t key_len, uint32_t val_len)
{
    (void)val_len;
    if (cut < 1)
        return "version at offset 0";
    if (cut < 2)
        return "op at offset 1";
    if (cut < 10)
        return "client_id at offset 2";
    if (cut < 18)
        return "seq at offset 10";
    if (cut < 22)
        return "key_len at offset 18";
    if (cut < 22 + (size_t)key_len)
        return "key at offset 22";
    if (cut < 26 + (size_t)key_len)
        return "val_len at offset";
    return "val at offset";
}

static void cmd_every_truncation_fails_naming_the_field(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 42, 7, "hello", "world!");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    for (size_t cut = 0; cut < len; cut++) {
        /* A copy of exactly cut bytes, so that ASan sees any read past the end. */
        uint8_t *part = malloc(cut == 0 ? 1 : cut);
        assert_non_null(part);
        memcpy(part, buf, cut);
        assert_malformed(cut == 0 ? NULL : part, cut, field_at(cut, c.key_len, c.val_len));
        assert_malformed(part, cut, "needed, only");
        free(part);
    }
}

static void cmd_bad_version_is_malformed(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 1, 1, "k", "v");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    for (unsigned v = 0; v < 256; v++) {
        if (v == KV_CMD_VERSION)
            continue;
        buf[0] = (uint8_t)v;
        assert_malformed(buf, len, "version at offset 0");
    }
}

static void cmd_bad_op_is_malformed(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 1, 1, "k", "v");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    for (unsigned op = 0; op < 256; op++) {
        if (op == KV_OP_PUT || op == KV_OP_DEL)
            continue;
        buf[1] = (uint8_t)op;
        assert_malformed(buf, len, "op at offset 1");
    }
}

static void cmd_trailing_bytes_are_malformed(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 1, 1, "k", "v");
    uint8_t buf[SMALL_CMD_CAP] = {0};
    size_t len = encode_ok(&c, buf, sizeof(buf));
    assert_malformed(buf, len + 1, "end at offset 28: 1 trailing bytes");
    assert_malformed(buf, len + 9, "9 trailing bytes");
}

static void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void cmd_lengths_over_limits_are_malformed(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 1, 1, "k", "v");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    /* Reported as over the limit, not as a truncation: the length is checked before the bytes. */
    store_le32(buf + 18, KV_MAX_KEY_BYTES + 1);
    assert_malformed(buf, len, "key_len at offset 18: 65537 is over the 65536-byte limit");
    store_le32(buf + 18, UINT32_MAX);
    assert_malformed(buf, len, "key_len at offset 18");

    len = encode_ok(&c, buf, sizeof(buf));
    store_le32(buf + 23, KV_MAX_VALUE_BYTES + 1);
    assert_malformed(buf, len, "val_len at offset 23: 67108865 is over the 67108864-byte limit");
}

static void cmd_del_with_value_is_malformed(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 1, 1, "k", "v");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    buf[1] = KV_OP_DEL;
    assert_malformed(buf, len, "val_len at offset 23: 1 but a DEL carries no value");
    struct kv_cmd d = cmd_of(KV_OP_DEL, 1, 1, "k", "v");
    size_t out = 0;
    assert_int_equal(kv_cmd_encode(&d, buf, sizeof(buf), &out), RK_EINVAL);
}

static void cmd_seq_zero_with_a_client_is_malformed(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 5, 1, "k", "v");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    memset(buf + 10, 0, 8);
    assert_malformed(buf, len, "seq at offset 10: 0 with client_id 5");
    struct kv_cmd z = cmd_of(KV_OP_PUT, 5, 0, "k", "v");
    size_t out = 0;
    assert_int_equal(kv_cmd_encode(&z, buf, sizeof(buf), &out), RK_EINVAL);
    /* Without a session, seq means nothing and 0 is fine. */
    struct kv_cmd anon = cmd_of(KV_OP_PUT, 0, 0, "k", "v");
    round_trip(&anon);
}

static void cmd_encode_refuses_key_and_value_over_limits(void **state)
{
    (void)state;
    static uint8_t dummy[1];
    uint8_t buf[SMALL_CMD_CAP];
    memset(buf, 0xAA, sizeof(buf));
    size_t out = 12345;
    /* The limits are checked before the bytes are touched: the pointers are never read. */
    struct kv_cmd big_key = {.op = KV_OP_PUT, .key = dummy, .key_len = KV_MAX_KEY_BYTES + 1};
    assert_int_equal(kv_cmd_encode(&big_key, buf, sizeof(buf), &out), RK_ETOOBIG);
    struct kv_cmd big_val = {.op = KV_OP_PUT, .val = dummy, .val_len = KV_MAX_VALUE_BYTES + 1};
    assert_int_equal(kv_cmd_encode(&big_val, buf, sizeof(buf), &out), RK_ETOOBIG);
    assert_int_equal(out, 12345);
    assert_int_equal(buf[0], 0xAA);
}

static void cmd_encode_refuses_small_buffer_writing_nothing(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_PUT, 1, 1, "key", "value");
    uint8_t buf[SMALL_CMD_CAP];
    memset(buf, 0xAA, sizeof(buf));
    size_t out = 12345;
    for (size_t cap = 0; cap < kv_cmd_size(&c); cap++)
        assert_int_equal(kv_cmd_encode(&c, buf, cap, &out), RK_ETOOBIG);
    assert_int_equal(kv_cmd_encode(&c, NULL, 0, &out), RK_ETOOBIG);
    assert_int_equal(out, 12345);
    assert_int_equal(buf[0], 0xAA);
}

static void cmd_encode_refuses_bad_op(void **state)
{
    (void)state;
    uint8_t buf[SMALL_CMD_CAP];
    size_t out = 0;
    for (unsigned op = 0; op < 256; op++) {
        if (op == KV_OP_PUT || op == KV_OP_DEL)
            continue;
        struct kv_cmd c = cmd_of((uint8_t)op, 1, 1, "k", NULL);
        assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf), &out), RK_EINVAL);
    }
}

/* C2: whatever random bytes decode re-encode to exactly the same bytes; the rest is refused
 * with RK_EMALFORMED. Mutations of valid commands reach deep into the decoder. */
static void cmd_decode_of_random_bytes_is_strict_and_safe(void **state)
{
    (void)state;
    struct rk_prng p;
    rk_prng_seed(&p, 0xC0FFEE);
    uint8_t buf[64];
    uint8_t again[128];
    size_t decoded = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len;
        if (iter % 2 == 0) {
            struct kv_cmd c = cmd_of((uint8_t)rk_prng_range(&p, 1, 2), rk_prng_below(&p, 3),
                                     rk_prng_range(&p, 1, 3), "key", NULL);
            c.val = (const uint8_t *)"val";
            c.val_len = c.op == KV_OP_PUT ? 3 : 0;
            len = encode_ok(&c, buf, sizeof(buf));
            size_t flips = rk_prng_range(&p, 1, 3);
            for (size_t i = 0; i < flips; i++)
                buf[rk_prng_below(&p, len)] ^= (uint8_t)(1u << rk_prng_below(&p, 8));
            len = (size_t)rk_prng_range(&p, len > 4 ? len - 4 : 0, len + 2);
        } else {
            len = (size_t)rk_prng_below(&p, sizeof(buf) + 1);
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rk_prng_next(&p);
        }
        uint8_t *copy = malloc(len == 0 ? 1 : len);
        assert_non_null(copy);
        memcpy(copy, buf, len);
        struct kv_cmd got;
        struct rk_errmsg err = {{0}};
        int rc = kv_cmd_decode(copy, len, &got, &err);
        if (rc == RK_OK) {
            decoded++;
            size_t out = 0;
            assert_int_equal(kv_cmd_encode(&got, again, sizeof(again), &out), RK_OK);
            assert_int_equal(out, len);
            assert_memory_equal(again, copy, len);
        } else {
            assert_int_equal(rc, RK_EMALFORMED);
            assert_non_null(strstr(err.text, "kv command: "));
        }
        free(copy);
    }
    assert_true(decoded > 1000); /* the mutations did produce valid commands too */
}

/* ---- memstore --------------------------------------------------------------------------- */

static void ms_put_str(struct kv_store *s, uint64_t index, const char *key, const char *val)
{
    assert_int_equal(s->ops->put(s, index, (const uint8_t *)key, (uint32_t)strlen(key),
                                 (const uint8_t *)val, (uint32_t)strlen(val)),
                     RK_OK);
}

static void ms_assert_value(struct kv_store *s, const char *key, const char *want)
{
    const uint8_t *val = NULL;
    uint32_t val_len = 0;
    int rc = s->ops->get(s, (const uint8_t *)key, (uint32_t)strlen(key), &val, &val_len);
    if (want == NULL) {
        assert_int_equal(rc, RK_ENOENT);
        return;
    }
    assert_int_equal(rc, RK_OK);
    assert_int_equal(val_len, strlen(want));
    assert_memory_equal(val, want, val_len);
}

static bool ms_del_str(struct kv_store *s, uint64_t index, const char *key)
{
    bool existed = false;
    assert_int_equal(s->ops->del(s, index, (const uint8_t *)key, (uint32_t)strlen(key), &existed),
                     RK_OK);
    return existed;
}

static struct kv_store *ms_open(struct counting *cnt, struct rk_alloc *a)
{
    *a = counting_alloc(cnt);
    struct kv_store *s = NULL;
    assert_int_equal(kv_memstore_create(a, &s), RK_OK);
    assert_non_null(s);
    return s;
}

static void ms_close(struct kv_store *s, struct counting *cnt)
{
    assert_true(kv_memstore_valid(s));
    s->ops->destroy(s);
    assert_int_equal(cnt->live, 0);
}

static void memstore_put_then_get(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    ms_put_str(s, 1, "alpha", "one");
    ms_put_str(s, 2, "beta", "two");
    ms_assert_value(s, "alpha", "one");
    ms_assert_value(s, "beta", "two");
    assert_int_equal(s->ops->count(s), 2);
    ms_close(s, &cnt);
}

static void memstore_get_of_absent_key_is_enoent(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    ms_assert_value(s, "nothing", NULL);
    ms_put_str(s, 1, "something", "x");
    ms_assert_value(s, "nothin", NULL);
    ms_assert_value(s, "somethin", NULL);
    ms_close(s, &cnt);
}

static void memstore_overwrite_replaces_value(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    ms_put_str(s, 1, "k", "short");
    ms_put_str(s, 2, "k", "a much longer value than before");
    ms_assert_value(s, "k", "a much longer value than before");
    ms_put_str(s, 3, "k", "");
    ms_assert_value(s, "k", "");
    assert_int_equal(s->ops->count(s), 1);
    ms_close(s, &cnt);
}

static void memstore_del_removes_and_reports_existed(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    ms_put_str(s, 1, "a", "1");
    ms_put_str(s, 2, "b", "2");
    assert_true(ms_del_str(s, 3, "a"));
    assert_false(ms_del_str(s, 4, "a"));
    assert_false(ms_del_str(s, 5, "never"));
    ms_assert_value(s, "a", NULL);
    ms_assert_value(s, "b", "2");
    assert_int_equal(s->ops->count(s), 1);
    ms_close(s, &cnt);
}

static void memstore_empty_key_is_a_key(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    assert_int_equal(s->ops->put(s, 1, NULL, 0, NULL, 0), RK_OK);
    const uint8_t *val = NULL;
    uint32_t val_len = 99;
    assert_int_equal(s->ops->get(s, NULL, 0, &val, &val_len), RK_OK);
    assert_int_equal(val_len, 0);
    assert_int_equal(s->ops->count(s), 1);
    bool existed = false;
    assert_int_equal(s->ops->del(s, 2, NULL, 0, &existed), RK_OK);
    assert_true(existed);
    assert_int_equal(s->ops->count(s), 0);
    ms_close(s, &cnt);
}

static void memstore_applied_index_is_the_highest_written(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    assert_int_equal(s->ops->applied_index(s), 0);
    ms_put_str(s, 5, "a", "1");
    assert_int_equal(s->ops->applied_index(s), 5);
    ms_del_str(s, 9, "absent"); /* a del that removes nothing still consumed index 9 */
    assert_int_equal(s->ops->applied_index(s), 9);
    ms_put_str(s, 7, "b", "2");
    assert_int_equal(s->ops->applied_index(s), 9);
    ms_close(s, &cnt);
}

#define GROWTH_KEYS 100000u

static void key_of(uint32_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "key-%08u", (unsigned)i);
}

static void memstore_grows_through_100k_keys_all_readable(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    char key[32];
    char val[32];
    uint64_t capacity = kv_memstore_capacity(s);
    for (uint32_t i = 0; i < GROWTH_KEYS; i++) {
        key_of(i, key, sizeof(key));
        snprintf(val, sizeof(val), "v%u", (unsigned)(i * 7));
        ms_put_str(s, i + 1, key, val);
        assert_true(s->ops->count(s) * 4 <= kv_memstore_capacity(s) * 3);
        capacity = kv_memstore_capacity(s);
    }
    assert_int_equal(s->ops->count(s), GROWTH_KEYS);
    assert_int_equal(capacity, 1u << 18); /* the smallest power of two at a load <= 3/4 */
    assert_true(kv_memstore_valid(s));
    for (uint32_t i = 0; i < GROWTH_KEYS; i++) {
        key_of(i, key, sizeof(key));
        snprintf(val, sizeof(val), "v%u", (unsigned)(i * 7));
        ms_assert_value(s, key, val);
    }
    ms_close(s, &cnt);
}

/* Keys whose home slot in a 16-slot table is home: found by search, so that a run of
 * colliding keys is certain. The hash is XXH3 of the bytes, as in memstore.c. */
static void colliding_keys(unsigned home, size_t n, char out[][16])
{
    size_t found = 0;
    for (unsigned i = 0; found < n; i++) {
        char key[16];
        snprintf(key, sizeof(key), "c%u", i);
        if ((XXH3_64bits(key, strlen(key)) & 15) == home)
            memcpy(out[found++], key, sizeof(key));
        assert_true(i < 1000000);
    }
}

/* A run that starts at the last slot wraps to slot 0, and keys whose home is slot 0 sit behind
 * it: deleting any one must shift the rest back so that every other key stays reachable. */
static void memstore_delete_shifts_colliding_run_back_across_the_wrap(void **state)
{
    (void)state;
    char at15[4][16];
    char at0[3][16];
    colliding_keys(15, 4, at15);
    colliding_keys(0, 3, at0);
    const char *keys[7];
    for (int order = 0; order < 7; order++) {
        struct counting cnt;
        struct rk_alloc a;
        struct kv_store *s = ms_open(&cnt, &a);
        assert_int_equal(kv_memstore_capacity(s), 16);
        /* Interleaved so that Robin Hood swaps happen on insertion too. */
        keys[0] = at0[0], keys[1] = at15[0], keys[2] = at15[1], keys[3] = at0[1];
        keys[4] = at15[2], keys[5] = at0[2], keys[6] = at15[3];
        for (int i = 0; i < 7; i++)
            ms_put_str(s, (uint64_t)i + 1, keys[i], keys[i]);
        assert_int_equal(kv_memstore_capacity(s), 16); /* 7 keys: no growth */
        assert_true(kv_memstore_valid(s));
        /* Delete keys[order], then every other key in turn, checking the rest each time. */
        for (int d = 0; d < 7; d++) {
            int victim = (order + d) % 7;
            assert_true(ms_del_str(s, 100 + (uint64_t)d, keys[victim]));
            assert_true(kv_memstore_valid(s));
            for (int k = 0; k < 7; k++) {
                bool gone = false;
                for (int e = 0; e <= d; e++)
                    gone = gone || k == (order + e) % 7;
                ms_assert_value(s, keys[k], gone ? NULL : keys[k]);
            }
        }
        assert_int_equal(s->ops->count(s), 0);
        ms_close(s, &cnt);
    }
}

#define MODEL_KEYS 3000u
#define MODEL_OPS  200000u

struct model_entry {
    bool present;
    uint32_t val; /* the value stored is the decimal text of val */
};

/* Random puts, overwrites and deletes over a small key space (so that the table keeps growing
 * and shrinking in occupancy and runs form and break) against an array model. */
static void memstore_random_ops_match_a_model(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    struct model_entry *model = calloc(MODEL_KEYS, sizeof(*model));
    assert_non_null(model);
    struct rk_prng p;
    rk_prng_seed(&p, 20240601);
    uint64_t live = 0;
    char key[32];
    char val[32];
    for (uint32_t op = 0; op < MODEL_OPS; op++) {
        uint32_t k = (uint32_t)rk_prng_below(&p, MODEL_KEYS);
        key_of(k, key, sizeof(key));
        uint64_t roll = rk_prng_below(&p, 100);
        if (roll < 50) { /* put: slightly more puts than dels keeps occupancy moving */
            uint32_t v = (uint32_t)rk_prng_next(&p);
            snprintf(val, sizeof(val), "%u", (unsigned)v);
            ms_put_str(s, op + 1, key, val);
            live += model[k].present ? 0 : 1;
            model[k].present = true;
            model[k].val = v;
        } else if (roll < 95) {
            assert_int_equal(ms_del_str(s, op + 1, key), model[k].present);
            live -= model[k].present ? 1 : 0;
            model[k].present = false;
        } else {
            if (model[k].present)
                snprintf(val, sizeof(val), "%u", (unsigned)model[k].val);
            ms_assert_value(s, key, model[k].present ? val : NULL);
        }
        assert_int_equal(s->ops->count(s), live);
        if (op % 20000 == 0)
            assert_true(kv_memstore_valid(s));
    }
    for (uint32_t k = 0; k < MODEL_KEYS; k++) {
        key_of(k, key, sizeof(key));
        if (model[k].present)
            snprintf(val, sizeof(val), "%u", (unsigned)model[k].val);
        ms_assert_value(s, key, model[k].present ? val : NULL);
    }
    assert_int_equal(s->ops->applied_index(s), MODEL_OPS);
    free(model);
    ms_close(s, &cnt);
}

#define SCAN_KEYS 5000u

struct scan_seen {
    uint8_t *seen; /* per key number: times visited */
    size_t visits;
    size_t stop_after; /* 0: never stop */
    uint64_t order_hash;
};

static bool scan_record(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                        uint32_t val_len)
{
    struct scan_seen *sc = ctx;
    char buf[32];
    assert_true(key_len < sizeof(buf));
    memcpy(buf, key, key_len);
    buf[key_len] = '\0';
    unsigned k = 0;
    assert_int_equal(sscanf(buf, "key-%u", &k), 1);
    assert_true(k < SCAN_KEYS);
    assert_int_equal(val_len, key_len); /* the value is the key */
    assert_memory_equal(val, key, key_len);
    sc->seen[k]++;
    sc->visits++;
    sc->order_hash = sc->order_hash * 1000003u + k;
    return sc->stop_after == 0 || sc->visits < sc->stop_after;
}

/* Puts keys 0..SCAN_KEYS-1 and deletes every third one. */
static struct kv_store *scan_fixture(struct counting *cnt, struct rk_alloc *a)
{
    struct kv_store *s = ms_open(cnt, a);
    char key[32];
    for (uint32_t i = 0; i < SCAN_KEYS; i++) {
        key_of(i, key, sizeof(key));
        ms_put_str(s, i + 1, key, key);
    }
    for (uint32_t i = 0; i < SCAN_KEYS; i += 3) {
        key_of(i, key, sizeof(key));
        assert_true(ms_del_str(s, SCAN_KEYS + i + 1, key));
    }
    return s;
}

static void memstore_scan_visits_each_live_key_once(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = scan_fixture(&cnt, &a);
    struct scan_seen sc = {.seen = calloc(SCAN_KEYS, 1)};
    assert_non_null(sc.seen);
    s->ops->scan(s, scan_record, &sc);
    for (uint32_t i = 0; i < SCAN_KEYS; i++)
        assert_int_equal(sc.seen[i], i % 3 == 0 ? 0 : 1);
    assert_int_equal(sc.visits, s->ops->count(s));
    free(sc.seen);
    ms_close(s, &cnt);
}

static void memstore_scan_stops_when_fn_returns_false(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = scan_fixture(&cnt, &a);
    struct scan_seen sc = {.seen = calloc(SCAN_KEYS, 1), .stop_after = 10};
    assert_non_null(sc.seen);
    s->ops->scan(s, scan_record, &sc);
    assert_int_equal(sc.visits, 10);
    free(sc.seen);
    ms_close(s, &cnt);
}

static void memstore_scan_order_is_a_function_of_history(void **state)
{
    (void)state;
    struct counting cnt1, cnt2;
    struct rk_alloc a1, a2;
    struct kv_store *s1 = scan_fixture(&cnt1, &a1);
    struct kv_store *s2 = scan_fixture(&cnt2, &a2);
    struct scan_seen sc1 = {.seen = calloc(SCAN_KEYS, 1)};
    struct scan_seen sc2 = {.seen = calloc(SCAN_KEYS, 1)};
    assert_non_null(sc1.seen);
    assert_non_null(sc2.seen);
    s1->ops->scan(s1, scan_record, &sc1);
    s2->ops->scan(s2, scan_record, &sc2);
    assert_int_equal(sc1.visits, sc2.visits);
    assert_int_equal(sc1.order_hash, sc2.order_hash);
    free(sc1.seen);
    free(sc2.seen);
    ms_close(s1, &cnt1);
    ms_close(s2, &cnt2);
}

static void memstore_create_fails_cleanly_without_memory(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 2; n++) {
        struct counting cnt;
        struct rk_alloc a = counting_alloc(&cnt);
        cnt.fail_at = n;
        struct kv_store *s = (struct kv_store *)&cnt; /* must be overwritten */
        assert_int_equal(kv_memstore_create(&a, &s), RK_ENOMEM);
        assert_null(s);
        assert_int_equal(cnt.live, 0);
    }
}

/* A put that cannot allocate (the record, the grown table, or the overwritten record) fails
 * with RK_ENOMEM and leaves the store exactly as it was (store.h S1). */
static void memstore_put_without_memory_changes_nothing(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    char key[32];
    /* 12 keys fill a 16-slot table to 3/4: the 13th needs a new record and a bigger table. */
    for (uint32_t i = 0; i < 12; i++) {
        key_of(i, key, sizeof(key));
        ms_put_str(s, i + 1, key, key);
    }
    assert_int_equal(kv_memstore_capacity(s), 16);
    key_of(12, key, sizeof(key));
    for (size_t n = 1; n <= 2; n++) { /* the table, then the record */
        cnt.fail_at = cnt.calls + n;
        assert_int_equal(s->ops->put(s, 50, (const uint8_t *)key, (uint32_t)strlen(key),
                                     (const uint8_t *)"v", 1),
                         RK_ENOMEM);
        assert_int_equal(s->ops->count(s), 12);
        assert_int_equal(s->ops->applied_index(s), 12);
        ms_assert_value(s, key, NULL);
        assert_true(kv_memstore_valid(s));
    }
    cnt.fail_at = cnt.calls + 1; /* the overwrite's realloc */
    key_of(3, key, sizeof(key));
    assert_int_equal(s->ops->put(s, 60, (const uint8_t *)key, (uint32_t)strlen(key),
                                 (const uint8_t *)"a new value", 11),
                     RK_ENOMEM);
    ms_assert_value(s, key, key);
    assert_int_equal(s->ops->applied_index(s), 12);
    cnt.fail_at = 0;
    ms_put_str(s, 61, key, "a new value");
    ms_assert_value(s, key, "a new value");
    ms_close(s, &cnt);
}

/* ---- kv_apply --------------------------------------------------------------------------- */

static void kv_put_applies_and_reports_ok(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    struct kv_result r = put(f.kv, 1, 1, "a", "1");
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.op, KV_OP_PUT);
    assert_int_equal(r.client_id, 1);
    assert_int_equal(r.seq, 1);
    assert_int_equal(r.num, 0);
    assert_int_equal(r.err, RK_OK);
    assert_value(f.kv, "a", "1");
    assert_int_equal(kv_count(f.kv), 1);
    assert_int_equal(kv_applied_index(f.kv), 1);
    assert_int_equal(f.store->ops->applied_index(f.store), 1);
    fixture_close(&f);
}

static void kv_del_reports_number_of_keys_removed(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 0, 0, "a", "1");
    struct kv_result r = del(f.kv, 0, 0, "a");
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.op, KV_OP_DEL);
    assert_int_equal(r.num, 1);
    assert_value(f.kv, "a", NULL);
    r = del(f.kv, 0, 0, "a");
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.num, 0);
    assert_int_equal(kv_count(f.kv), 0);
    assert_int_equal(kv_applied_index(f.kv), 3);
    fixture_close(&f);
}

static void kv_duplicate_retry_is_applied_once(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 1, 1, "a", "1");
    put(f.kv, 2, 1, "a", "2");
    struct kv_result r = put(f.kv, 1, 1, "a", "1"); /* client 1 retries: its reply was lost */
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.op, KV_OP_PUT);
    assert_int_equal(r.client_id, 1);
    assert_int_equal(r.seq, 1);
    assert_value(f.kv, "a", "2"); /* not overwritten by the re-applied older PUT */
    assert_int_equal(kv_applied_index(f.kv), 3);
    fixture_close(&f);
}

static void kv_duplicate_returns_the_cached_result(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 0, 0, "a", "1");
    struct kv_result first = del(f.kv, 9, 4, "a");
    assert_int_equal(first.num, 1);
    /* The retry would remove nothing now, but the answer is the one the first apply gave. */
    struct kv_result again = del(f.kv, 9, 4, "a");
    assert_int_equal(again.status, KV_DUPLICATE);
    assert_int_equal(again.op, KV_OP_DEL);
    assert_int_equal(again.num, 1);
    fixture_close(&f);
}

static void kv_stale_seq_is_not_applied(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 1, 1, "a", "old");
    put(f.kv, 1, 2, "a", "new");
    struct kv_result r = put(f.kv, 1, 1, "a", "old"); /* a delayed copy of seq 1 */
    assert_int_equal(r.status, KV_STALE);
    assert_int_equal(r.seq, 1);
    assert_value(f.kv, "a", "new");
    struct kv_session_info info;
    assert_int_equal(kv_session_get(f.kv, 1, &info), RK_OK);
    assert_int_equal(info.last_seq, 2);
    fixture_close(&f);
}

static void kv_next_seq_after_a_duplicate_is_applied(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 1, 1, "a", "1");
    assert_int_equal(put(f.kv, 1, 1, "a", "1").status, KV_DUPLICATE);
    assert_int_equal(put(f.kv, 1, 2, "a", "2").status, KV_OK);
    assert_value(f.kv, "a", "2");
    assert_int_equal(put(f.kv, 1, 5, "a", "5").status, KV_OK); /* gaps are allowed */
    assert_value(f.kv, "a", "5");
    fixture_close(&f);
}

static void kv_client_zero_is_never_deduplicated(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 0, 1, "a", "1");
    put(f.kv, 0, 1, "a", "2");
    assert_int_equal(put(f.kv, 0, 1, "a", "3").status, KV_OK);
    assert_value(f.kv, "a", "3");
    assert_int_equal(kv_session_count(f.kv), 0);
    fixture_close(&f);
}

/* Client ids in eviction order (least recently used first). */
struct session_list {
    uint64_t ids[64];
    struct kv_session_info infos[64];
    size_t n;
};

static bool collect_session(void *ctx, const struct kv_session_info *s)
{
    struct session_list *l = ctx;
    assert_true(l->n < 64);
    l->infos[l->n] = *s;
    l->ids[l->n++] = s->client_id;
    return true;
}

static void assert_sessions(struct kv *kv, const uint64_t *want, size_t n)
{
    struct session_list l = {.n = 0};
    kv_session_scan(kv, collect_session, &l);
    assert_int_equal(l.n, n);
    assert_int_equal(kv_session_count(kv), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(l.ids[i], want[i]);
}

static void kv_sessions_are_bounded_and_evict_the_least_recently_used(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 3);
    put(f.kv, 1, 1, "a", "x");
    put(f.kv, 2, 1, "a", "x");
    put(f.kv, 3, 1, "a", "x");
    assert_sessions(f.kv, (const uint64_t[]){1, 2, 3}, 3);
    put(f.kv, 1, 2, "a", "x"); /* client 1 is now the most recent */
    assert_sessions(f.kv, (const uint64_t[]){2, 3, 1}, 3);
    put(f.kv, 4, 1, "a", "x"); /* evicts 2 */
    assert_sessions(f.kv, (const uint64_t[]){3, 1, 4}, 3);
    struct kv_session_info info;
    assert_int_equal(kv_session_get(f.kv, 2, &info), RK_ENOENT);
    put(f.kv, 5, 1, "a", "x"); /* evicts 3 */
    put(f.kv, 6, 1, "a", "x"); /* evicts 1 */
    assert_sessions(f.kv, (const uint64_t[]){4, 5, 6}, 3);
    assert_true(kv_valid(f.kv));
    fixture_close(&f);
}

static void kv_duplicate_and_stale_commands_refresh_their_session(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 3);
    put(f.kv, 1, 2, "a", "x");
    put(f.kv, 2, 1, "a", "x");
    put(f.kv, 3, 1, "a", "x");
    assert_int_equal(put(f.kv, 1, 2, "a", "x").status, KV_DUPLICATE);
    assert_sessions(f.kv, (const uint64_t[]){2, 3, 1}, 3);
    assert_int_equal(put(f.kv, 2, 1, "a", "x").status, KV_DUPLICATE);
    assert_sessions(f.kv, (const uint64_t[]){3, 1, 2}, 3);
    assert_int_equal(put(f.kv, 1, 1, "a", "x").status, KV_STALE);
    assert_sessions(f.kv, (const uint64_t[]){3, 2, 1}, 3);
    struct kv_session_info info;
    assert_int_equal(kv_session_get(f.kv, 1, &info), RK_OK);
    assert_int_equal(info.last_index, kv_applied_index(f.kv));
    assert_int_equal(info.last_seq, 2);
    fixture_close(&f);
}

/* The documented limitation (kv.h, thesis §6.3): once a session is evicted, a retry of a
 * request it had applied cannot be recognised and is applied again. */
static void kv_retry_after_eviction_is_applied_again(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 1);
    put(f.kv, 1, 1, "a", "from-1");
    put(f.kv, 2, 1, "a", "from-2"); /* evicts client 1 */
    struct kv_result r = put(f.kv, 1, 1, "a", "from-1");
    assert_int_equal(r.status, KV_OK);
    assert_value(f.kv, "a", "from-1");
    fixture_close(&f);
}

static void kv_default_max_sessions_is_4096(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    for (uint64_t c = 1; c <= KV_DEFAULT_MAX_SESSIONS + 10; c++)
        put(f.kv, c, 1, "k", "v");
    assert_int_equal(kv_session_count(f.kv), KV_DEFAULT_MAX_SESSIONS);
    struct kv_session_info info;
    for (uint64_t c = 1; c <= 10; c++)
        assert_int_equal(kv_session_get(f.kv, c, &info), RK_ENOENT);
    assert_int_equal(kv_session_get(f.kv, 11, &info), RK_OK);
    assert_int_equal(kv_session_get(f.kv, KV_DEFAULT_MAX_SESSIONS + 10, &info), RK_OK);
    fixture_close(&f);
}

static void kv_create_rejects_too_many_sessions(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    struct kv_config cfg = {.alloc = &a, .store = s, .max_sessions = KV_MAX_SESSIONS + 1};
    struct kv *kv = (struct kv *)&cnt;
    assert_int_equal(kv_create(&cfg, &kv), RK_EINVAL);
    assert_null(kv);
    ms_close(s, &cnt);
}

/* Replays one seeded workload (many clients, more than max_sessions, with retries of the last
 * request, stale copies, anonymous writes, garbage entries and no-ops) into a fresh kv, and
 * folds every result into a digest. */
#define REPLAY_CLIENTS 40u
#define REPLAY_OPS     20000u

static uint64_t fold(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x100000001b3ull;
}

static uint64_t replay(struct kv *kv, uint64_t seed)
{
    struct rk_prng p;
    rk_prng_seed(&p, seed);
    uint64_t next_seq[REPLAY_CLIENTS + 1] = {0};
    uint64_t digest = 0xcbf29ce484222325ull;
    char key[16];
    char val[16];
    for (uint32_t op = 0; op < REPLAY_OPS; op++) {
        uint64_t index = kv_applied_index(kv) + 1;
        uint64_t roll = rk_prng_below(&p, 100);
        if (roll < 3) {
            kv_apply_noop(kv, index);
            continue;
        }
        struct kv_result r;
        if (roll < 6) {
            uint8_t junk[8];
            for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (uint8_t)rk_prng_next(&p);
            assert_int_equal(kv_apply(kv, index, junk, (uint32_t)rk_prng_below(&p, 9), &r), RK_OK);
        } else {
            uint64_t c = rk_prng_below(&p, REPLAY_CLIENTS + 1); /* 0: anonymous */
            uint64_t seq;
            uint64_t kind = rk_prng_below(&p, 10);
            if (c == 0 || next_seq[c] == 0 || kind < 6)
                seq = ++next_seq[c]; /* a new request */
            else if (kind < 9)
                seq = next_seq[c]; /* a retry of the last */
            else
                seq = rk_prng_range(&p, 1, next_seq[c]); /* a delayed copy */
            snprintf(key, sizeof(key), "k%u", (unsigned)rk_prng_below(&p, 50));
            snprintf(val, sizeof(val), "v%u", (unsigned)op);
            bool is_del = rk_prng_below(&p, 4) == 0;
            assert_int_equal(apply_cmd(kv, is_del ? KV_OP_DEL : KV_OP_PUT, c, c == 0 ? 0 : seq, key,
                                       is_del ? NULL : val, &r),
                             RK_OK);
        }
        digest = fold(digest, r.status);
        digest = fold(digest, r.op);
        digest = fold(digest, r.client_id);
        digest = fold(digest, r.seq);
        digest = fold(digest, (uint64_t)r.num);
    }
    return digest;
}

static void kv_replicas_fed_the_same_log_end_identical(void **state)
{
    (void)state;
    struct fixture f1, f2;
    fixture_open(&f1, 16);
    fixture_open(&f2, 16);
    uint64_t d1 = replay(f1.kv, 77);
    uint64_t d2 = replay(f2.kv, 77);
    assert_int_equal(d1, d2);
    assert_int_equal(kv_applied_index(f1.kv), kv_applied_index(f2.kv));
    assert_int_equal(kv_count(f1.kv), kv_count(f2.kv));

    struct session_list l1 = {.n = 0}, l2 = {.n = 0};
    kv_session_scan(f1.kv, collect_session, &l1);
    kv_session_scan(f2.kv, collect_session, &l2);
    assert_int_equal(l1.n, 16); /* 40 clients through 16 sessions: evictions happened */
    assert_int_equal(l1.n, l2.n);
    for (size_t i = 0; i < l1.n; i++) {
        assert_int_equal(l1.infos[i].client_id, l2.infos[i].client_id);
        assert_int_equal(l1.infos[i].last_seq, l2.infos[i].last_seq);
        assert_int_equal(l1.infos[i].last_index, l2.infos[i].last_index);
        assert_int_equal(l1.infos[i].result.op, l2.infos[i].result.op);
        assert_int_equal(l1.infos[i].result.num, l2.infos[i].result.num);
        if (i > 0) /* the eviction order is the order of last use */
            assert_true(l1.infos[i - 1].last_index < l1.infos[i].last_index);
    }
    /* A different log gives a different history: the digest is not trivially constant. */
    struct fixture f3;
    fixture_open(&f3, 16);
    assert_int_not_equal(replay(f3.kv, 78), d1);
    fixture_close(&f1);
    fixture_close(&f2);
    fixture_close(&f3);
}

static void kv_malformed_entry_is_a_bad_command_that_advances(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 1, 1, "a", "1");
    struct kv_result r;
    static const uint8_t junk[] = {9, 9, 9};
    assert_int_equal(kv_apply(f.kv, 2, junk, sizeof(junk), &r), RK_OK);
    assert_int_equal(r.status, KV_BAD_COMMAND);
    assert_int_equal(r.op, 0);
    assert_int_equal(kv_applied_index(f.kv), 2);
    assert_non_null(strstr(kv_last_error(f.kv), "kv command: version at offset 0"));
    assert_int_equal(kv_apply(f.kv, 3, NULL, 0, &r), RK_OK); /* an empty entry */
    assert_int_equal(r.status, KV_BAD_COMMAND);
    assert_int_equal(kv_applied_index(f.kv), 3);

    /* A truncated copy of client 1's next request: nothing applied, no session touched. */
    struct kv_cmd c = cmd_of(KV_OP_PUT, 1, 2, "a", "2");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    assert_int_equal(kv_apply(f.kv, 4, buf, (uint32_t)len - 1, &r), RK_OK);
    assert_int_equal(r.status, KV_BAD_COMMAND);
    assert_value(f.kv, "a", "1");
    struct kv_session_info info;
    assert_int_equal(kv_session_get(f.kv, 1, &info), RK_OK);
    assert_int_equal(info.last_seq, 1);
    assert_int_equal(info.last_index, 1);
    assert_int_equal(kv_count(f.kv), 1);
    fixture_close(&f);
}

static void kv_noop_advances_the_applied_index(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    kv_apply_noop(f.kv, 1);
    assert_int_equal(kv_applied_index(f.kv), 1);
    kv_apply_noop(f.kv, 5); /* indexes need only increase */
    assert_int_equal(kv_applied_index(f.kv), 5);
    struct kv_result r;
    assert_int_equal(apply_cmd(f.kv, KV_OP_PUT, 0, 0, "a", "1", &r), RK_OK);
    assert_int_equal(kv_applied_index(f.kv), 6);
    assert_int_equal(kv_count(f.kv), 1);
    fixture_close(&f);
}

static void kv_applied_index_starts_at_the_stores(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    ms_put_str(s, 41, "a", "1");
    struct kv_config cfg = {.alloc = &a, .store = s};
    struct kv *kv = NULL;
    assert_int_equal(kv_create(&cfg, &kv), RK_OK);
    assert_int_equal(kv_applied_index(kv), 41);
    assert_value(kv, "a", "1");
    kv_destroy(kv);
    ms_close(s, &cnt);
}

static void kv_create_fails_cleanly_without_memory(void **state)
{
    (void)state;
    struct counting cnt;
    struct rk_alloc a;
    struct kv_store *s = ms_open(&cnt, &a);
    size_t base = cnt.live;
    for (size_t n = 1; n <= 3; n++) {
        cnt.fail_at = cnt.calls + n;
        struct kv_config cfg = {.alloc = &a, .store = s};
        struct kv *kv = (struct kv *)&cnt;
        assert_int_equal(kv_create(&cfg, &kv), RK_ENOMEM);
        assert_null(kv);
        assert_int_equal(cnt.live, base);
    }
    cnt.fail_at = 0;
    ms_close(s, &cnt);
}

static void kv_store_error_changes_nothing_and_the_retry_applies(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 1, 1, "a", "1");
    f.cnt.fail_from = f.cnt.calls + 1; /* every allocation fails from now on */
    struct kv_result r;
    assert_int_equal(apply_cmd(f.kv, KV_OP_PUT, 2, 1, "b", "2", &r), RK_ENOMEM);
    assert_int_equal(r.status, KV_STORE_ERROR);
    assert_int_equal(r.err, RK_ENOMEM);
    assert_int_equal(kv_applied_index(f.kv), 1);
    assert_int_equal(kv_session_count(f.kv), 1); /* client 2's session was not opened */
    assert_int_equal(apply_cmd(f.kv, KV_OP_PUT, 1, 2, "a", "overwrite", &r), RK_ENOMEM);
    assert_value(f.kv, "a", "1");
    struct kv_session_info info;
    assert_int_equal(kv_session_get(f.kv, 1, &info), RK_OK);
    assert_int_equal(info.last_seq, 1); /* the failed seq 2 is not remembered as applied */
    /* A DEL allocates nothing: it still applies, and so do retries answered from the cache. */
    assert_int_equal(del(f.kv, 0, 0, "zzz").status, KV_OK);
    assert_int_equal(put(f.kv, 1, 1, "a", "1").status, KV_DUPLICATE);
    f.cnt.fail_from = 0;
    assert_int_equal(put(f.kv, 2, 1, "b", "2").status, KV_OK); /* the same entry, retried */
    assert_value(f.kv, "b", "2");
    assert_int_equal(kv_session_count(f.kv), 2);
    fixture_close(&f);
}

/* Fails each allocation of a whole run in turn (store, kv, and every apply), retrying a failed
 * apply as a replica would; every run ends in the state of the run that never failed, and
 * nothing leaks. */
#define SWEEP_OPS 300u

static uint64_t sweep_run(size_t fail_at, bool *failed)
{
    struct counting cnt;
    struct rk_alloc a = counting_alloc(&cnt);
    cnt.fail_at = fail_at;
    *failed = false;
    struct kv_store *s = NULL;
    int rc = kv_memstore_create(&a, &s);
    if (rc != RK_OK) {
        assert_int_equal(rc, RK_ENOMEM);
        assert_int_equal(cnt.live, 0);
        *failed = true;
        return 0;
    }
    struct kv_config cfg = {.alloc = &a, .store = s, .max_sessions = 8};
    struct kv *kv = NULL;
    rc = kv_create(&cfg, &kv);
    if (rc != RK_OK) {
        assert_int_equal(rc, RK_ENOMEM);
        s->ops->destroy(s);
        assert_int_equal(cnt.live, 0);
        *failed = true;
        return 0;
    }
    struct rk_prng p;
    rk_prng_seed(&p, 5);
    uint64_t digest = 0xcbf29ce484222325ull;
    char key[16];
    char val[32];
    for (uint32_t op = 0; op < SWEEP_OPS; op++) {
        uint64_t c = rk_prng_below(&p, 12);
        snprintf(key, sizeof(key), "k%u", (unsigned)rk_prng_below(&p, 40));
        snprintf(val, sizeof(val), "value-%u", (unsigned)op);
        bool is_del = rk_prng_below(&p, 5) == 0;
        struct kv_result r;
        uint64_t seq = c == 0 ? 0 : op + 1;
        uint64_t before = kv_applied_index(kv);
        rc = apply_cmd(kv, is_del ? KV_OP_DEL : KV_OP_PUT, c, seq, key, is_del ? NULL : val, &r);
        if (rc != RK_OK) {
            assert_int_equal(rc, RK_ENOMEM);
            assert_int_equal(r.status, KV_STORE_ERROR);
            assert_int_equal(kv_applied_index(kv), before);
            *failed = true;
            rc =
                apply_cmd(kv, is_del ? KV_OP_DEL : KV_OP_PUT, c, seq, key, is_del ? NULL : val, &r);
            assert_int_equal(rc, RK_OK);
        }
        digest = fold(fold(digest, r.status), (uint64_t)r.num);
    }
    assert_true(kv_valid(kv));
    assert_true(kv_memstore_valid(s));
    digest = fold(digest, kv_count(kv));
    digest = fold(digest, kv_session_count(kv));
    kv_destroy(kv);
    s->ops->destroy(s);
    assert_int_equal(cnt.live, 0);
    return digest;
}

static void kv_every_allocation_failure_is_survivable(void **state)
{
    (void)state;
    bool failed = false;
    uint64_t want = sweep_run(0, &failed);
    assert_false(failed);
    size_t n = 1;
    for (;; n++) {
        uint64_t got = sweep_run(n, &failed);
        if (!failed)
            break; /* past the last allocation of the run */
        if (got != 0)
            assert_int_equal(got, want);
    }
    assert_true(n > 50); /* the run did allocate: growth, records, overwrites */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cmd_put_round_trips),
        cmocka_unit_test(cmd_del_round_trips),
        cmocka_unit_test(cmd_empty_key_and_value_round_trip),
        cmocka_unit_test(cmd_max_sizes_round_trip),
        cmocka_unit_test(cmd_layout_is_little_endian_fixed_width),
        cmocka_unit_test(cmd_every_truncation_fails_naming_the_field),
        cmocka_unit_test(cmd_bad_version_is_malformed),
        cmocka_unit_test(cmd_bad_op_is_malformed),
        cmocka_unit_test(cmd_trailing_bytes_are_malformed),
        cmocka_unit_test(cmd_lengths_over_limits_are_malformed),
        cmocka_unit_test(cmd_del_with_value_is_malformed),
        cmocka_unit_test(cmd_seq_zero_with_a_client_is_malformed),
        cmocka_unit_test(cmd_encode_refuses_key_and_value_over_limits),
        cmocka_unit_test(cmd_encode_refuses_small_buffer_writing_nothing),
        cmocka_unit_test(cmd_encode_refuses_bad_op),
        cmocka_unit_test(cmd_decode_of_random_bytes_is_strict_and_safe),
        cmocka_unit_test(memstore_put_then_get),
        cmocka_unit_test(memstore_get_of_absent_key_is_enoent),
        cmocka_unit_test(memstore_overwrite_replaces_value),
        cmocka_unit_test(memstore_del_removes_and_reports_existed),
        cmocka_unit_test(memstore_empty_key_is_a_key),
        cmocka_unit_test(memstore_applied_index_is_the_highest_written),
        cmocka_unit_test(memstore_grows_through_100k_keys_all_readable),
        cmocka_unit_test(memstore_delete_shifts_colliding_run_back_across_the_wrap),
        cmocka_unit_test(memstore_random_ops_match_a_model),
        cmocka_unit_test(memstore_scan_visits_each_live_key_once),
        cmocka_unit_test(memstore_scan_stops_when_fn_returns_false),
        cmocka_unit_test(memstore_scan_order_is_a_function_of_history),
        cmocka_unit_test(memstore_create_fails_cleanly_without_memory),
        cmocka_unit_test(memstore_put_without_memory_changes_nothing),
        cmocka_unit_test(kv_put_applies_and_reports_ok),
        cmocka_unit_test(kv_del_reports_number_of_keys_removed),
        cmocka_unit_test(kv_duplicate_retry_is_applied_once),
        cmocka_unit_test(kv_duplicate_returns_the_cached_result),
        cmocka_unit_test(kv_stale_seq_is_not_applied),
        cmocka_unit_test(kv_next_seq_after_a_duplicate_is_applied),
        cmocka_unit_test(kv_client_zero_is_never_deduplicated),
        cmocka_unit_test(kv_sessions_are_bounded_and_evict_the_least_recently_used),
        cmocka_unit_test(kv_duplicate_and_stale_commands_refresh_their_session),
        cmocka_unit_test(kv_retry_after_eviction_is_applied_again),
        cmocka_unit_test(kv_default_max_sessions_is_4096),
        cmocka_unit_test(kv_create_rejects_too_many_sessions),
        cmocka_unit_test(kv_replicas_fed_the_same_log_end_identical),
        cmocka_unit_test(kv_malformed_entry_is_a_bad_command_that_advances),
        cmocka_unit_test(kv_noop_advances_the_applied_index),
        cmocka_unit_test(kv_applied_index_starts_at_the_stores),
        cmocka_unit_test(kv_create_fails_cleanly_without_memory),
        cmocka_unit_test(kv_store_error_changes_nothing_and_the_retry_applies),
        cmocka_unit_test(kv_every_allocation_failure_is_survivable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
