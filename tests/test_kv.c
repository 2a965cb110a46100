/*
 * test_kv.c — the replicated state machine: the command encoding (round trips, limits, strict
 * rejection of every malformed input with a message naming the field), the in-memory store
 * (Robin Hood table: growth, backward-shift deletion against a model, scan), kv_apply
 * (results, at-most-once retries, stale requests, bounded sessions with deterministic LRU
 * eviction, undecodable entries, and allocation failures that change nothing and leak nothing),
 * and durable sessions: restarts over the same store (a new kv over it), the store layout (user
 * and session namespaces, the session record), and the batch each entry writes, checked with a
 * recording store that can fail a write or end_batch.
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
#include <xxhash.h>

#include "common/prng.h"
#include "kv/kv.h"
#include "kv/memstore.h"

/* ---- helpers ---------------------------------------------------------------------------- */

#define SMALL_CMD_CAP 512

/* The ops kv_cmd_decode accepts. */
static bool is_known_op(unsigned op)
{
    return op == KV_OP_PUT || op == KV_OP_DEL || op == KV_OP_PUT_IF || op == KV_OP_INCRBY ||
           op == KV_OP_MSET;
}

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
    assert_int_equal(got->cond, want->cond);
    assert_int_equal(got->delta, want->delta);
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
    assert_int_equal(kv_create(&cfg, &f->kv, NULL), RK_OK);
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

/* ---- digest ------------------------------------------------------------------------------ */

static void fixture_restart(struct fixture *f, uint32_t max_sessions);

static uint64_t digest_of(struct kv *kv)
{
    uint64_t d = 0;
    assert_int_equal(kv_digest(kv, &d), RK_OK);
    return d;
}

/* Two state machines that apply the same entries have the same digest, also when one of them
 * restarted midway (its state rebuilt from the store). Different histories that end in the
 * same values do not: each key's mod index, the log index of its last write (kv.h, WATCH),
 * is part of the replicated state, so it is part of the digest too. */
static void digest_is_equal_for_the_same_entries_across_a_restart(void **state)
{
    (void)state;
    struct fixture a, b;
    fixture_open(&a, 16);
    fixture_open(&b, 16);
    struct fixture *both[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        put(both[i]->kv, 0, 0, "k3", "x");
        put(both[i]->kv, 0, 0, "k2", "v2");
        del(both[i]->kv, 0, 0, "k3");
        if (i == 1)
            fixture_restart(&b, 16);
        put(both[i]->kv, 0, 0, "k1", "v1");
        put(both[i]->kv, 0, 0, "k3", "v3");
    }
    assert_true(digest_of(a.kv) == digest_of(b.kv));
    /* The same values reached at other indexes: other mod indexes, another digest. */
    struct fixture c;
    fixture_open(&c, 16);
    put(c.kv, 0, 0, "k1", "v1");
    put(c.kv, 0, 0, "k2", "v2");
    put(c.kv, 0, 0, "k3", "v3");
    assert_true(digest_of(a.kv) != digest_of(c.kv));
    fixture_close(&a);
    fixture_close(&b);
    fixture_close(&c);
}

/* One value, one key name or one missing key changes the digest; so does moving a value from
 * one key to another (pairs are hashed together, not keys and values apart). */
static void digest_differs_for_any_different_pair(void **state)
{
    (void)state;
    struct fixture a, b, c, d;
    fixture_open(&a, 16);
    fixture_open(&b, 16);
    fixture_open(&c, 16);
    fixture_open(&d, 16);
    put(a.kv, 0, 0, "k1", "v1");
    put(a.kv, 0, 0, "k2", "v2");
    put(b.kv, 0, 0, "k1", "v1");
    put(b.kv, 0, 0, "k2", "v3");
    put(c.kv, 0, 0, "k1", "v1");
    put(d.kv, 0, 0, "k1", "v2");
    put(d.kv, 0, 0, "k2", "v1");
    uint64_t da = digest_of(a.kv);
    assert_true(da != digest_of(b.kv));
    assert_true(da != digest_of(c.kv));
    assert_true(da != digest_of(d.kv));
    fixture_close(&a);
    fixture_close(&b);
    fixture_close(&c);
    fixture_close(&d);
}

/* Sessions are state: the same keys written by another client (or with a session against
 * without one) give another digest. */
static void digest_covers_sessions(void **state)
{
    (void)state;
    struct fixture a, b;
    fixture_open(&a, 16);
    fixture_open(&b, 16);
    put(a.kv, 7, 1, "k1", "v1");
    put(b.kv, 0, 0, "k1", "v1");
    assert_true(digest_of(a.kv) != digest_of(b.kv));
    fixture_close(&a);
    fixture_close(&b);
}

/* The host's meta records (a snapshot's index and term) are not part of the state. */
static void digest_ignores_meta_records(void **state)
{
    (void)state;
    struct fixture a, b;
    fixture_open(&a, 16);
    fixture_open(&b, 16);
    put(a.kv, 0, 0, "k1", "v1");
    put(b.kv, 0, 0, "k1", "v1");
    uint64_t before = digest_of(b.kv);
    const uint8_t meta[] = {KV_KEY_META, 's', 'n', 'a', 'p'};
    const uint8_t val[] = {1, 2, 3};
    assert_int_equal(b.store->ops->put(b.store, 5, meta, sizeof(meta), val, sizeof(val)), RK_OK);
    assert_int_equal(b.store->ops->end_batch(b.store, 5), RK_OK);
    assert_true(digest_of(b.kv) == before);
    assert_true(digest_of(a.kv) == before);
    kv_destroy(b.kv);
    b.store->ops->destroy(b.store);
    assert_int_equal(b.cnt.live, 0);
    fixture_close(&a);
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
    assert_int_equal(kv_cmd_size(&c), KV_CMD_MAX_BYTES - 1);
    round_trip(&c);
    c.op = KV_OP_PUT_IF; /* the largest command: a PUT and its condition byte */
    c.cond = KV_COND_XX;
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
        if (is_known_op(op))
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
        if (is_known_op(op))
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
    assert_int_equal(kv_create(&cfg, &kv, NULL), RK_EINVAL);
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
    /* user key "a" of db 0 (kv.h: the store layout): '0' + key, a header (no deadline, mod
     * index 41), the value */
    static const uint8_t rec[] = {0, 41, 0, 0, 0, 0, 0, 0, 0, '1'};
    assert_int_equal(s->ops->put(s, 41, (const uint8_t *)"0a", 2, rec, sizeof(rec)), RK_OK);
    struct kv_config cfg = {.alloc = &a, .store = s};
    struct kv *kv = NULL;
    assert_int_equal(kv_create(&cfg, &kv, NULL), RK_OK);
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
    for (size_t n = 1; n <= 4; n++) { /* the kv, the pool, the table, the key buffer */
        cnt.fail_at = cnt.calls + n;
        struct kv_config cfg = {.alloc = &a, .store = s};
        struct kv *kv = (struct kv *)&cnt;
        assert_int_equal(kv_create(&cfg, &kv, NULL), RK_ENOMEM);
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
    /* An anonymous DEL allocates nothing: it still applies. A duplicate writes its session
     * record (its new place in the LRU order), which needs memory: it fails like any write,
     * and its session is not touched. */
    assert_int_equal(del(f.kv, 0, 0, "zzz").status, KV_OK);
    assert_int_equal(apply_cmd(f.kv, KV_OP_PUT, 1, 1, "a", "1", &r), RK_ENOMEM);
    assert_int_equal(r.status, KV_STORE_ERROR);
    assert_int_equal(kv_session_get(f.kv, 1, &info), RK_OK);
    assert_int_equal(info.last_index, 1);
    f.cnt.fail_from = 0;
    assert_int_equal(put(f.kv, 1, 1, "a", "1").status, KV_DUPLICATE);
    assert_int_equal(put(f.kv, 2, 1, "b", "2").status, KV_OK); /* the same command, retried */
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
    rc = kv_create(&cfg, &kv, NULL);
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

/* ---- durable sessions: restart, the store layout, batches -------------------------------- */

/* "Restarts" the replica over the store it had: a new kv over the same store, as after a crash
 * of a replica whose store is durable. */
static void fixture_restart(struct fixture *f, uint32_t max_sessions)
{
    assert_true(kv_valid(f->kv));
    kv_destroy(f->kv);
    f->kv = NULL;
    struct kv_config cfg = {.alloc = &f->alloc, .store = f->store, .max_sessions = max_sessions};
    struct rk_errmsg err = {{0}};
    int rc = kv_create(&cfg, &f->kv, &err);
    if (rc != RK_OK)
        fail_msg("kv_create after restart: %s: %s", rk_strerror(rc), err.text);
    assert_true(kv_valid(f->kv));
}

static void assert_same_sessions(const struct session_list *a, const struct session_list *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) { /* in eviction order */
        assert_int_equal(a->infos[i].client_id, b->infos[i].client_id);
        assert_int_equal(a->infos[i].last_seq, b->infos[i].last_seq);
        assert_int_equal(a->infos[i].last_index, b->infos[i].last_index);
        assert_int_equal(a->infos[i].result.status, b->infos[i].result.status);
        assert_int_equal(a->infos[i].result.op, b->infos[i].result.op);
        assert_int_equal(a->infos[i].result.seq, b->infos[i].result.seq);
        assert_int_equal(a->infos[i].result.num, b->infos[i].result.num);
    }
}

/* Applies a command whose key is key_len raw bytes at the next index. */
static struct kv_result apply_bytes(struct kv *kv, uint8_t op, uint64_t client_id, uint64_t seq,
                                    const uint8_t *key, uint32_t key_len, const char *val)
{
    struct kv_cmd c = cmd_of(op, client_id, seq, NULL, val);
    c.key = key;
    c.key_len = key_len;
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    struct kv_result r;
    assert_int_equal(kv_apply(kv, kv_applied_index(kv) + 1, buf, (uint32_t)len, &r), RK_OK);
    return r;
}

/* The scenario of the design note: a retry already answered as a duplicate before a crash is
 * still a duplicate after it, and is not applied again. */
static void kv_retry_after_restart_is_a_duplicate_with_the_cached_result(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 1, 1, "a", "1");
    put(f.kv, 2, 1, "a", "2");
    assert_int_equal(put(f.kv, 1, 1, "a", "1").status, KV_DUPLICATE);
    assert_value(f.kv, "a", "2");
    fixture_restart(&f, 0);
    assert_int_equal(kv_applied_index(f.kv), 3);
    assert_int_equal(kv_session_count(f.kv), 2);
    struct kv_result r = put(f.kv, 1, 1, "a", "1");
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.op, KV_OP_PUT);
    assert_int_equal(r.num, 0);
    assert_value(f.kv, "a", "2");
    assert_int_equal(put(f.kv, 1, 2, "a", "3").status, KV_OK); /* the next seq applies */
    assert_value(f.kv, "a", "3");
    fixture_close(&f);
}

static void kv_session_table_is_identical_after_restart_including_evictions(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 16);
    replay(f.kv, 77); /* 40 clients through 16 sessions, duplicates, stale copies */
    struct session_list before = {.n = 0}, after = {.n = 0};
    kv_session_scan(f.kv, collect_session, &before);
    assert_int_equal(before.n, 16);
    uint64_t count = kv_count(f.kv);
    uint64_t applied = kv_applied_index(f.kv);
    fixture_restart(&f, 16);
    kv_session_scan(f.kv, collect_session, &after);
    assert_same_sessions(&before, &after);
    assert_int_equal(kv_count(f.kv), count);
    /* The store's index: the last entry that wrote; no-ops and bad commands after it wrote
     * nothing and are replayed. */
    assert_true(kv_applied_index(f.kv) <= applied);
    assert_int_equal(kv_applied_index(f.kv), f.store->ops->applied_index(f.store));
    /* The next new client evicts the same session it would have evicted before the restart. */
    put(f.kv, 1000, 1, "k", "v");
    struct kv_session_info info;
    assert_int_equal(kv_session_get(f.kv, before.ids[0], &info), RK_ENOENT);
    assert_int_equal(kv_session_get(f.kv, before.ids[1], &info), RK_OK);
    fixture_close(&f);
}

static void kv_del_cached_num_survives_restart(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 0, 0, "a", "1");
    assert_int_equal(del(f.kv, 9, 4, "a").num, 1);
    assert_int_equal(del(f.kv, 8, 1, "never").num, 0);
    fixture_restart(&f, 0);
    struct kv_result r = del(f.kv, 9, 4, "a"); /* would remove nothing now */
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.op, KV_OP_DEL);
    assert_int_equal(r.num, 1);
    r = del(f.kv, 8, 1, "never");
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.num, 0);
    fixture_close(&f);
}

/* A log of entries as a replica would hold it: commands (new, retried, stale), anonymous
 * writes, undecodable entries and no-ops. */
#define RESTART_LOG_ENTRIES 6000u
#define RESTART_EVERY       997u

struct log_entry {
    bool noop;
    uint32_t len;
    uint8_t data[64];
};

static void make_log(uint64_t seed, struct log_entry *log, uint32_t n)
{
    struct rk_prng p;
    rk_prng_seed(&p, seed);
    uint64_t next_seq[REPLAY_CLIENTS + 1] = {0};
    char key[16];
    char val[16];
    for (uint32_t i = 0; i < n; i++) {
        struct log_entry *e = &log[i];
        uint64_t roll = rk_prng_below(&p, 100);
        e->noop = roll < 3;
        if (e->noop)
            continue;
        if (roll < 6) {
            e->len = (uint32_t)rk_prng_below(&p, 9);
            for (uint32_t b = 0; b < e->len; b++)
                e->data[b] = (uint8_t)rk_prng_next(&p);
            continue;
        }
        uint64_t c = rk_prng_below(&p, REPLAY_CLIENTS + 1);
        uint64_t kind = rk_prng_below(&p, 10);
        uint64_t seq;
        if (c == 0 || next_seq[c] == 0 || kind < 6)
            seq = ++next_seq[c];
        else if (kind < 9)
            seq = next_seq[c];
        else
            seq = rk_prng_range(&p, 1, next_seq[c]);
        snprintf(key, sizeof(key), "k%u", (unsigned)rk_prng_below(&p, 50));
        snprintf(val, sizeof(val), "v%u", (unsigned)i);
        bool is_del = rk_prng_below(&p, 4) == 0;
        struct kv_cmd cmd =
            cmd_of(is_del ? KV_OP_DEL : KV_OP_PUT, c, c == 0 ? 0 : seq, key, is_del ? NULL : val);
        size_t len = encode_ok(&cmd, e->data, sizeof(e->data));
        e->len = (uint32_t)len;
    }
}

static struct kv_result apply_entry(struct kv *kv, uint64_t index, const struct log_entry *e)
{
    struct kv_result r;
    memset(&r, 0, sizeof(r));
    if (e->noop) {
        kv_apply_noop(kv, index);
        r.status = 0xff; /* not a kv_status: marks a no-op */
        return r;
    }
    assert_int_equal(kv_apply(kv, index, e->data, e->len, &r), RK_OK);
    return r;
}

static void assert_result_equal(const struct kv_result *want, const struct kv_result *got)
{
    assert_int_equal(got->status, want->status);
    assert_int_equal(got->op, want->op);
    assert_int_equal(got->client_id, want->client_id);
    assert_int_equal(got->seq, want->seq);
    assert_int_equal(got->num, want->num);
    assert_int_equal(got->err, want->err);
}

static bool sum_user_keys(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                          uint32_t val_len)
{
    uint64_t *sum = ctx;
    *sum += XXH3_64bits(key, key_len) * 31 + XXH3_64bits(val, val_len);
    return true;
}

/* A replica that restarts now and then, and replays the log from its store's applied index as
 * a replica does, gives every entry the result the one that never restarted gave, and ends in
 * the same state: user keys, sessions, eviction order. */
static void kv_restarted_replica_stays_identical_to_one_that_never_restarted(void **state)
{
    (void)state;
    struct log_entry *log = calloc(RESTART_LOG_ENTRIES + 1, sizeof(*log));
    struct kv_result *want = calloc(RESTART_LOG_ENTRIES + 1, sizeof(*want));
    assert_non_null(log);
    assert_non_null(want);
    make_log(91, log + 1, RESTART_LOG_ENTRIES); /* log[i] is the entry at index i */
    struct fixture a, b;
    fixture_open(&a, 16);
    fixture_open(&b, 16);
    for (uint64_t i = 1; i <= RESTART_LOG_ENTRIES; i++)
        want[i] = apply_entry(a.kv, i, &log[i]);
    uint32_t restarts = 0;
    uint64_t restarted_at = 0;
    for (uint64_t i = 1; i <= RESTART_LOG_ENTRIES;) {
        struct kv_result got = apply_entry(b.kv, i, &log[i]);
        assert_result_equal(&want[i], &got);
        if (i % RESTART_EVERY != 0 || i == restarted_at) { /* once per point: the replay */
            i++;
            continue;
        }
        fixture_restart(&b, 16);
        restarted_at = i;
        restarts++;
        assert_true(kv_applied_index(b.kv) <= i);
        i = kv_applied_index(b.kv) + 1; /* the log replays what the store did not keep */
    }
    assert_int_equal(restarts, RESTART_LOG_ENTRIES / RESTART_EVERY);
    struct session_list la = {.n = 0}, lb = {.n = 0};
    kv_session_scan(a.kv, collect_session, &la);
    kv_session_scan(b.kv, collect_session, &lb);
    assert_same_sessions(&la, &lb);
    assert_int_equal(kv_count(a.kv), kv_count(b.kv));
    uint64_t sum_a = 0, sum_b = 0;
    assert_int_equal(kv_scan(a.kv, sum_user_keys, &sum_a), RK_OK);
    assert_int_equal(kv_scan(b.kv, sum_user_keys, &sum_b), RK_OK);
    assert_int_equal(sum_a, sum_b);
    fixture_close(&a);
    fixture_close(&b);
    free(log);
    free(want);
}

static void kv_user_keys_never_collide_with_session_keys(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    /* A user key equal to the store key of client 7's session, and one equal to the user
     * prefix alone. */
    static const uint8_t like_session[] = {KV_KEY_SESSION, 0, 0, 0, 0, 0, 0, 0, 7};
    static const uint8_t like_prefix[] = {KV_KEY_USER};
    assert_int_equal(apply_bytes(f.kv, KV_OP_PUT, 7, 1, like_session, 9, "user").status, KV_OK);
    assert_int_equal(apply_bytes(f.kv, KV_OP_PUT, 0, 0, like_prefix, 1, "prefix").status, KV_OK);
    assert_int_equal(apply_bytes(f.kv, KV_OP_PUT, 0, 0, NULL, 0, "empty").status, KV_OK);
    assert_int_equal(put(f.kv, 7, 2, "other", "x").status, KV_OK); /* rewrites 7's record */
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *val = NULL;
        uint32_t len = 0;
        assert_int_equal(kv_get(f.kv, like_session, 9, &val, &len), RK_OK);
        assert_int_equal(len, 4);
        assert_memory_equal(val, "user", 4);
        assert_int_equal(kv_get(f.kv, like_prefix, 1, &val, &len), RK_OK);
        assert_int_equal(len, 6);
        assert_int_equal(kv_get(f.kv, NULL, 0, &val, &len), RK_OK);
        assert_int_equal(len, 5);
        assert_int_equal(kv_count(f.kv), 4);
        struct kv_session_info info;
        assert_int_equal(kv_session_get(f.kv, 7, &info), RK_OK);
        assert_int_equal(info.last_seq, 2);
        fixture_restart(&f, 0); /* a collision would show here as a corrupt session record */
    }
    assert_int_equal(apply_bytes(f.kv, KV_OP_DEL, 0, 0, NULL, 0, NULL).num, 1);
    const uint8_t *val = NULL;
    uint32_t len = 0;
    assert_int_equal(kv_get(f.kv, like_prefix, 1, &val, &len), RK_OK); /* "u" is not "" */
    assert_int_equal(kv_count(f.kv), 3);
    fixture_close(&f);
}

struct key_list {
    char keys[16][8];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static bool collect_user_key(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                             uint32_t val_len)
{
    struct key_list *l = ctx;
    assert_true(l->n < 16);
    assert_true(key_len < sizeof(l->keys[0]));
    assert_int_equal(val_len, key_len + 1); /* every value is "=" + key */
    assert_int_equal(val[0], '=');
    assert_memory_equal(val + 1, key, key_len);
    memcpy(l->keys[l->n], key, key_len);
    l->keys[l->n][key_len] = '\0';
    l->n++;
    return l->stop_after == 0 || l->n < l->stop_after;
}

static void kv_count_and_scan_exclude_sessions(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 1, 1, "a", "=a");
    put(f.kv, 2, 1, "b", "=b");
    put(f.kv, 3, 1, "c", "=c");
    put(f.kv, 0, 0, "d", "=d");
    del(f.kv, 4, 1, "nothing");
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(f.store->ops->count(f.store), 4 + 4); /* 4 keys, 4 sessions */
        assert_int_equal(kv_count(f.kv), 4);
        struct key_list l = {.n = 0};
        assert_int_equal(kv_scan(f.kv, collect_user_key, &l), RK_OK);
        assert_int_equal(l.n, 4);
        bool seen[4] = {false};
        for (size_t i = 0; i < l.n; i++) {
            assert_int_equal(strlen(l.keys[i]), 1);
            assert_true(l.keys[i][0] >= 'a' && l.keys[i][0] <= 'd');
            seen[l.keys[i][0] - 'a'] = true;
        }
        assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
        struct key_list two = {.n = 0, .stop_after = 2};
        assert_int_equal(kv_scan(f.kv, collect_user_key, &two), RK_OK);
        assert_int_equal(two.n, 2);
        fixture_restart(&f, 0);
    }
    fixture_close(&f);
}

static void kv_store_keys_are_user_keys_plus_one_byte(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    uint8_t *key = malloc(KV_MAX_KEY_BYTES + 1);
    uint8_t *buf = malloc(KV_CMD_OVERHEAD_BYTES + KV_MAX_KEY_BYTES + 1);
    assert_non_null(key);
    assert_non_null(buf);
    key[0] = KV_KEY_USER;
    memset(key + 1, 'k', KV_MAX_KEY_BYTES);
    struct kv_cmd c = {.op = KV_OP_PUT,
                       .client_id = 1,
                       .seq = 1,
                       .key = key + 1,
                       .key_len = KV_MAX_KEY_BYTES,
                       .val = (const uint8_t *)"v",
                       .val_len = 1};
    size_t len = encode_ok(&c, buf, KV_CMD_OVERHEAD_BYTES + KV_MAX_KEY_BYTES + 1);
    struct kv_result r;
    assert_int_equal(kv_apply(f.kv, 1, buf, (uint32_t)len, &r), RK_OK);
    assert_int_equal(r.status, KV_OK);
    const uint8_t *val = NULL;
    uint32_t val_len = 0;
    assert_int_equal(f.store->ops->get(f.store, key, KV_MAX_KEY_BYTES + 1, &val, &val_len), RK_OK);
    assert_int_equal(kv_get(f.kv, key + 1, KV_MAX_KEY_BYTES, &val, &val_len), RK_OK);
    assert_int_equal(val_len, 1);
    /* A key over the user limit is never stored: absent, not an error and not a crash. */
    assert_int_equal(kv_get(f.kv, key, KV_MAX_KEY_BYTES + 1, &val, &val_len), RK_ENOENT);
    free(key);
    free(buf);
    fixture_close(&f);
}

static void kv_session_record_layout_is_fixed_width_little_endian(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 0, 0, "gone", "x");
    struct kv_result r;
    assert_int_equal(
        apply_cmd(f.kv, KV_OP_DEL, 0x0102030405060708ull, 0x1112131415161718ull, "gone", NULL, &r),
        RK_OK);
    assert_int_equal(r.num, 1);
    static const uint8_t key[] = {'s', 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    static const uint8_t want[] = {
        1,                                              /* version */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* last_seq */
        0,    2,                                        /* status KV_OK, op DEL */
        1,    0,    0,    0,    0,    0,    0,    0,    /* num */
        2,    0,    0,    0,    0,    0,    0,    0,    /* last_index */
    };
    _Static_assert(sizeof(want) == KV_SESSION_RECORD_BYTES, "the record's size");
    _Static_assert(sizeof(key) == KV_SESSION_KEY_BYTES, "the key's size");
    const uint8_t *val = NULL;
    uint32_t len = 0;
    assert_int_equal(f.store->ops->get(f.store, key, sizeof(key), &val, &len), RK_OK);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(val, want, sizeof(want));
    fixture_close(&f);
}

/* ---- a recording kv_store: logs the writes kv makes, and fails on demand ------------------ */

enum rs_kind { RS_PUT = 1, RS_DEL, RS_END };

struct rs_call {
    uint8_t kind;
    uint64_t index;
    uint8_t key[12]; /* the first bytes */
    uint32_t key_len;
};

#define RS_MAX_CALLS 16

struct rec_store {
    struct kv_store base;   /* first */
    struct kv_store *inner; /* the memstore that does the work */
    struct rs_call calls[RS_MAX_CALLS];
    size_t n_calls;
    size_t writes;        /* puts and dels so far */
    size_t fail_write_at; /* the put or del numbered so fails with RK_EIO, changing nothing */
    int fail_end_batch;   /* returned by end_batch (after nothing); RK_OK: never fails */
    size_t gets;          /* get calls */
    size_t value_scans;   /* scan calls (scan_keys does not count) */
};

static struct rec_store *to_rs(struct kv_store *s)
{
    return (struct rec_store *)s;
}

static int rs_log(struct rec_store *rs, uint8_t kind, uint64_t index, const uint8_t *key,
                  uint32_t key_len)
{
    if (kind != RS_END && ++rs->writes == rs->fail_write_at)
        return RK_EIO;
    assert_true(rs->n_calls < RS_MAX_CALLS);
    struct rs_call *c = &rs->calls[rs->n_calls++];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->index = index;
    c->key_len = key_len;
    if (key_len > 0)
        memcpy(c->key, key, key_len < sizeof(c->key) ? key_len : sizeof(c->key));
    return RK_OK;
}

static int rs_get(struct kv_store *s, const uint8_t *key, uint32_t key_len, const uint8_t **val,
                  uint32_t *val_len)
{
    to_rs(s)->gets++;
    struct kv_store *in = to_rs(s)->inner;
    return in->ops->get(in, key, key_len, val, val_len);
}

static int rs_put(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                  const uint8_t *val, uint32_t val_len)
{
    struct kv_store *in = to_rs(s)->inner;
    int rc = rs_log(to_rs(s), RS_PUT, index, key, key_len);
    return rc != RK_OK ? rc : in->ops->put(in, index, key, key_len, val, val_len);
}

static int rs_del(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                  bool *existed)
{
    struct kv_store *in = to_rs(s)->inner;
    int rc = rs_log(to_rs(s), RS_DEL, index, key, key_len);
    return rc != RK_OK ? rc : in->ops->del(in, index, key, key_len, existed);
}

static uint64_t rs_count(struct kv_store *s)
{
    struct kv_store *in = to_rs(s)->inner;
    return in->ops->count(in);
}

static uint64_t rs_applied_index(struct kv_store *s)
{
    struct kv_store *in = to_rs(s)->inner;
    return in->ops->applied_index(in);
}

static int rs_end_batch(struct kv_store *s, uint64_t index)
{
    struct rec_store *rs = to_rs(s);
    rs_log(rs, RS_END, index, NULL, 0);
    return rs->fail_end_batch != RK_OK ? rs->fail_end_batch
                                       : rs->inner->ops->end_batch(rs->inner, index);
}

static int rs_sync(struct kv_store *s)
{
    struct kv_store *in = to_rs(s)->inner;
    return in->ops->sync(in);
}

static int rs_scan(struct kv_store *s,
                   bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                              uint32_t val_len),
                   void *ctx)
{
    to_rs(s)->value_scans++;
    struct kv_store *in = to_rs(s)->inner;
    return in->ops->scan(in, fn, ctx);
}

/* scan_keys as a store whose values cost I/O has it: every key, no value. */
struct keys_only {
    bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
               uint32_t val_len);
    void *ctx;
};

static bool hide_value(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                       uint32_t val_len)
{
    (void)val;
    const struct keys_only *k = ctx;
    return k->fn(k->ctx, key, key_len, NULL, val_len);
}

static int rs_scan_keys(struct kv_store *s,
                        bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                   const uint8_t *val, uint32_t val_len),
                        void *ctx)
{
    struct kv_store *in = to_rs(s)->inner;
    struct keys_only k = {.fn = fn, .ctx = ctx};
    return in->ops->scan(in, hide_value, &k);
}

static void rs_destroy(struct kv_store *s)
{
    struct kv_store *in = to_rs(s)->inner;
    in->ops->destroy(in);
}

static const struct kv_store_ops rs_ops = {
    .get = rs_get,
    .put = rs_put,
    .del = rs_del,
    .count = rs_count,
    .applied_index = rs_applied_index,
    .end_batch = rs_end_batch,
    .sync = rs_sync,
    .scan = rs_scan,
    .destroy = rs_destroy,
};

static const struct kv_store_ops rs_keys_ops = {
    .get = rs_get,
    .put = rs_put,
    .del = rs_del,
    .count = rs_count,
    .applied_index = rs_applied_index,
    .end_batch = rs_end_batch,
    .sync = rs_sync,
    .scan = rs_scan,
    .scan_keys = rs_scan_keys,
    .destroy = rs_destroy,
};

struct rs_fixture {
    struct counting cnt;
    struct rk_alloc alloc;
    struct rec_store rs;
    struct kv *kv;
};

static void rs_open(struct rs_fixture *f, uint32_t max_sessions)
{
    memset(&f->rs, 0, sizeof(f->rs));
    f->rs.base.ops = &rs_ops;
    f->alloc = counting_alloc(&f->cnt);
    assert_int_equal(kv_memstore_create(&f->alloc, &f->rs.inner), RK_OK);
    struct kv_config cfg = {.alloc = &f->alloc, .store = &f->rs.base, .max_sessions = max_sessions};
    assert_int_equal(kv_create(&cfg, &f->kv, NULL), RK_OK);
}

static void rs_close(struct rs_fixture *f)
{
    assert_true(kv_valid(f->kv));
    kv_destroy(f->kv);
    f->rs.base.ops->destroy(&f->rs.base);
    assert_int_equal(f->cnt.live, 0);
}

/* Expects the calls since the last check to be the batch of index: the writes, each at index,
 * in the order given as "P<ns><byte>" / "D<ns><byte>" (namespace byte, then the first byte of
 * the user key or the low byte of the client id), then exactly one end_batch(index). */
static void assert_batch(struct rs_fixture *f, uint64_t index, const char *const *writes, size_t n)
{
    struct rec_store *rs = &f->rs;
    assert_int_equal(rs->n_calls, n == 0 ? 0 : n + 1);
    for (size_t i = 0; i < n; i++) {
        const struct rs_call *c = &rs->calls[i];
        assert_int_equal(c->kind, writes[i][0] == 'P' ? RS_PUT : RS_DEL);
        assert_int_equal(c->index, index);
        assert_int_equal(c->key[0], (uint8_t)writes[i][1]);
        if (writes[i][1] == KV_KEY_SESSION) {
            assert_int_equal(c->key_len, KV_SESSION_KEY_BYTES);
            assert_int_equal(c->key[8], (uint8_t)(writes[i][2] - '0'));
        } else {
            assert_int_equal(c->key[1], (uint8_t)writes[i][2]);
        }
    }
    if (n > 0) {
        assert_int_equal(rs->calls[n].kind, RS_END);
        assert_int_equal(rs->calls[n].index, index);
    }
    rs->n_calls = 0;
}

static void kv_apply_writes_each_entry_as_one_batch(void **state)
{
    (void)state;
    struct rs_fixture f;
    rs_open(&f, 2);
    put(f.kv, 0, 0, "a", "x");
    assert_batch(&f, 1, (const char *[]){"P0a"}, 1);
    put(f.kv, 1, 1, "b", "x");
    assert_batch(&f, 2, (const char *[]){"Ps1", "P0b"}, 2);
    put(f.kv, 2, 1, "c", "x");
    assert_batch(&f, 3, (const char *[]){"Ps2", "P0c"}, 2);
    put(f.kv, 3, 1, "d", "x"); /* evicts client 1, the least recently used */
    assert_batch(&f, 4, (const char *[]){"Ps3", "Ds1", "P0d"}, 3);
    assert_int_equal(put(f.kv, 3, 1, "d", "x").status, KV_DUPLICATE);
    assert_batch(&f, 5, (const char *[]){"Ps3"}, 1);
    put(f.kv, 2, 2, "c", "y");
    assert_batch(&f, 6, (const char *[]){"Ps2", "P0c"}, 2);
    assert_int_equal(put(f.kv, 2, 1, "c", "x").status, KV_STALE);
    assert_batch(&f, 7, (const char *[]){"Ps2"}, 1);
    assert_int_equal(del(f.kv, 3, 2, "a").num, 1);
    assert_batch(&f, 8, (const char *[]){"Ps3", "Pmk", "D0a"}, 3);
    del(f.kv, 0, 0, "b");
    assert_batch(&f, 9, (const char *[]){"Pmk", "D0b"}, 2);
    /* Nothing for an undecodable entry or a no-op (kv.h): replayed after a restart. */
    struct kv_result r;
    assert_int_equal(kv_apply(f.kv, 10, (const uint8_t *)"junk", 4, &r), RK_OK);
    assert_int_equal(r.status, KV_BAD_COMMAND);
    kv_apply_noop(f.kv, 11);
    assert_batch(&f, 11, NULL, 0);
    assert_int_equal(kv_applied_index(f.kv), 11);
    assert_int_equal(f.rs.inner->ops->applied_index(f.rs.inner), 9);
    rs_close(&f);
}

static void kv_failed_end_batch_is_a_store_error_and_applies_nothing(void **state)
{
    (void)state;
    struct rs_fixture f;
    rs_open(&f, 0);
    put(f.kv, 1, 1, "a", "1");
    f.rs.fail_end_batch = RK_EIO;
    struct kv_result r;
    for (int kind = 0; kind < 3; kind++) { /* a new command, a new session, a duplicate */
        uint64_t client = kind == 1 ? 2 : 1;
        uint64_t seq = kind == 0 ? 2 : 1;
        assert_int_equal(apply_cmd(f.kv, KV_OP_PUT, client, seq, "a", "2", &r), RK_EIO);
        assert_int_equal(r.status, KV_STORE_ERROR);
        assert_int_equal(r.err, RK_EIO);
        assert_int_equal(kv_applied_index(f.kv), 1);
        assert_int_equal(kv_session_count(f.kv), 1);
        struct kv_session_info info;
        assert_int_equal(kv_session_get(f.kv, 1, &info), RK_OK);
        assert_int_equal(info.last_seq, 1);
        assert_int_equal(info.last_index, 1);
    }
    /* The memstore under the fake kept the writes of the unclosed batches (a durable store
     * drops them when it is reopened): the replica stops here. */
    kv_destroy(f.kv);
    f.kv = NULL;
    f.rs.base.ops->destroy(&f.rs.base);
    assert_int_equal(f.cnt.live, 0);
}

/* A batch that failed part way is written whole by the retry of the same entry, with the same
 * result, over a store whose failed put or del changes nothing (kv.h). The batch of client 2's
 * DEL when client 1 holds the only session: client 2's record, client 1's deletion, kv's record
 * (db 0's deletion index), the data del; each write fails in turn. */
static void kv_retry_of_a_partly_written_batch_gives_the_same_result(void **state)
{
    (void)state;
    for (size_t fail = 1; fail <= 4; fail++) {
        struct rs_fixture f;
        rs_open(&f, 1);
        put(f.kv, 0, 0, "a", "1");
        put(f.kv, 1, 1, "b", "1");
        f.rs.writes = 0;
        f.rs.fail_write_at = fail;
        struct kv_result r;
        assert_int_equal(apply_cmd(f.kv, KV_OP_DEL, 2, 1, "a", NULL, &r), RK_EIO);
        assert_int_equal(r.status, KV_STORE_ERROR);
        assert_int_equal(kv_applied_index(f.kv), 2);
        f.rs.fail_write_at = 0;
        f.rs.n_calls = 0;
        r = del(f.kv, 2, 1, "a");
        assert_batch(&f, 3, (const char *[]){"Ps2", "Ds1", "Pmk", "D0a"}, 4);
        assert_int_equal(r.status, KV_OK);
        assert_int_equal(r.num, 1);  /* the key existed before the first attempt */
        assert_true(kv_valid(f.kv)); /* K5: the store's session records are the table's */
        struct kv_session_info info;
        assert_int_equal(kv_session_get(f.kv, 2, &info), RK_OK);
        assert_int_equal(info.result.num, 1);
        assert_int_equal(kv_session_get(f.kv, 1, &info), RK_ENOENT);
        assert_int_equal(kv_count(f.kv), 1);
        rs_close(&f);
    }
}

/* Writes a raw record into a store, as a damaged or foreign store would hold it. */
static void store_put_raw(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                          const uint8_t *val, uint32_t val_len)
{
    assert_int_equal(s->ops->put(s, index, key, key_len, val, val_len), RK_OK);
}

static int create_over(struct kv_store *s, struct rk_alloc *a, uint32_t max_sessions,
                       struct rk_errmsg *err)
{
    struct kv_config cfg = {.alloc = a, .store = s, .max_sessions = max_sessions};
    struct kv *kv = (struct kv *)s;
    int rc = kv_create(&cfg, &kv, err);
    if (rc != RK_OK)
        assert_null(kv);
    kv_destroy(kv);
    return rc;
}

static void assert_create_corrupt(struct kv_store *s, struct rk_alloc *a, const char *needle)
{
    struct rk_errmsg err = {{0}};
    assert_int_equal(create_over(s, a, 0, &err), RK_ECORRUPT);
    if (strstr(err.text, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.text, needle);
}

static void kv_create_refuses_a_session_record_that_does_not_decode(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    del(f.kv, 5, 1, "k");
    static const uint8_t key[] = {'s', 0, 0, 0, 0, 0, 0, 0, 5};
    const uint8_t *val = NULL;
    uint32_t len = 0;
    assert_int_equal(f.store->ops->get(f.store, key, sizeof(key), &val, &len), RK_OK);
    uint8_t good[KV_SESSION_RECORD_BYTES];
    memcpy(good, val, sizeof(good));
    uint8_t bad[KV_SESSION_RECORD_BYTES + 1];
    struct {
        size_t off;
        uint8_t byte;
        const char *needle;
    } cases[] = {
        {0, 3, "version 3 at offset 0 is not 1"},
        {0, 2, "a command's record of 27 bytes with a bad result"},
        {9, 1, "status 1, op 2"}, /* only an INCRBY caches an error status */
        {10, 9, "op 9"},
        {11, 2, "num 2"},
        {1, 0, "last_seq 0"},
        {19, 9, "past the store's applied index 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, good, sizeof(good));
        bad[cases[i].off] = cases[i].byte;
        store_put_raw(f.store, 1, key, sizeof(key), bad, sizeof(good));
        assert_create_corrupt(f.store, &f.alloc, cases[i].needle);
    }
    memcpy(bad, good, sizeof(good));
    store_put_raw(f.store, 1, key, sizeof(key), bad, sizeof(bad));
    assert_create_corrupt(f.store, &f.alloc, "session of client 5: 28 bytes, not 27");
    store_put_raw(f.store, 1, key, sizeof(key), good, sizeof(good));
    assert_int_equal(create_over(f.store, &f.alloc, 0, NULL), RK_OK);
    fixture_close(&f);
}

static void kv_create_refuses_two_sessions_last_used_at_one_index(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 5, 1, "k", "v");
    static const uint8_t key5[] = {'s', 0, 0, 0, 0, 0, 0, 0, 5};
    static const uint8_t key6[] = {'s', 0, 0, 0, 0, 0, 0, 0, 6};
    const uint8_t *val = NULL;
    uint32_t len = 0;
    assert_int_equal(f.store->ops->get(f.store, key5, sizeof(key5), &val, &len), RK_OK);
    uint8_t copy[KV_SESSION_RECORD_BYTES];
    memcpy(copy, val, sizeof(copy));
    store_put_raw(f.store, 1, key6, sizeof(key6), copy, sizeof(copy));
    assert_create_corrupt(f.store, &f.alloc, "both last used at index 1");
    bool existed = false;
    assert_int_equal(f.store->ops->del(f.store, 1, key6, sizeof(key6), &existed), RK_OK);
    fixture_close(&f);
}

static void kv_create_refuses_a_key_outside_both_namespaces(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    store_put_raw(f.store, 1, (const uint8_t *)"zyz", 3, (const uint8_t *)"v", 1);
    assert_create_corrupt(f.store, &f.alloc, "a key of 3 bytes starting with 0x7a");
    bool existed = false;
    assert_int_equal(f.store->ops->del(f.store, 2, (const uint8_t *)"zyz", 3, &existed), RK_OK);
    /* 'x' is the expiry index: its keys have a shape of their own. */
    store_put_raw(f.store, 1, (const uint8_t *)"xyz", 3, NULL, 0);
    assert_create_corrupt(f.store, &f.alloc, "an expiry record of 3 bytes");
    assert_int_equal(f.store->ops->del(f.store, 2, (const uint8_t *)"xyz", 3, &existed), RK_OK);
    /* The layout before databases and expiry. */
    store_put_raw(f.store, 1, (const uint8_t *)"ua", 2, (const uint8_t *)"v", 1);
    assert_create_corrupt(f.store, &f.alloc, "written by an older raftkv");
    assert_int_equal(f.store->ops->del(f.store, 2, (const uint8_t *)"ua", 2, &existed), RK_OK);
    store_put_raw(f.store, 3, (const uint8_t *)"s1234", 5, (const uint8_t *)"v", 1);
    assert_create_corrupt(f.store, &f.alloc, "a key of 5 bytes starting with 0x73");
    assert_int_equal(f.store->ops->del(f.store, 4, (const uint8_t *)"s1234", 5, &existed), RK_OK);
    store_put_raw(f.store, 5, NULL, 0, (const uint8_t *)"v", 1);
    assert_create_corrupt(f.store, &f.alloc, "a key of 0 bytes");
    assert_int_equal(f.store->ops->del(f.store, 6, NULL, 0, &existed), RK_OK);
    fixture_close(&f);
}

static void kv_create_refuses_more_session_records_than_max_sessions(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 3);
    put(f.kv, 1, 1, "k", "v");
    put(f.kv, 2, 1, "k", "v");
    put(f.kv, 3, 1, "k", "v");
    struct rk_errmsg err = {{0}};
    assert_int_equal(create_over(f.store, &f.alloc, 2, &err), RK_EINVAL);
    assert_non_null(strstr(err.text, "more session records than max_sessions (2)"));
    assert_int_equal(create_over(f.store, &f.alloc, 3, NULL), RK_OK);
    assert_int_equal(create_over(f.store, &f.alloc, 4, NULL), RK_OK); /* raising it is fine */
    fixture_close(&f);
}

/* ---- issue 6: conditional put, increment, multi-key set ---------------------------------- */

static struct kv_cmd put_if_of(uint8_t cond, uint64_t client_id, uint64_t seq, const char *key,
                               const char *val)
{
    struct kv_cmd c = cmd_of(KV_OP_PUT_IF, client_id, seq, key, val);
    c.cond = cond;
    return c;
}

/* Applies c at the next index; asserts kv_apply's RK_OK. */
static struct kv_result apply_c(struct kv *kv, const struct kv_cmd *c)
{
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(c, buf, sizeof(buf));
    struct kv_result r;
    assert_int_equal(kv_apply(kv, kv_applied_index(kv) + 1, buf, (uint32_t)len, &r), RK_OK);
    assert_true(kv_valid(kv));
    return r;
}

static struct kv_result put_if(struct kv *kv, uint8_t cond, uint64_t client_id, uint64_t seq,
                               const char *key, const char *val)
{
    struct kv_cmd c = put_if_of(cond, client_id, seq, key, val);
    return apply_c(kv, &c);
}

static void cmd_put_if_round_trips_with_its_condition_last(void **state)
{
    (void)state;
    struct kv_cmd nx = put_if_of(KV_COND_NX, 0, 0, "k", "v");
    round_trip(&nx);
    struct kv_cmd xx = put_if_of(KV_COND_XX, 7, 3, "key", "value");
    round_trip(&xx);
    struct kv_cmd empty = put_if_of(KV_COND_NX, 1, 1, NULL, NULL);
    round_trip(&empty);
    assert_int_equal(kv_cmd_size(&xx), KV_CMD_OVERHEAD_BYTES + 3 + 5 + 1);
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&xx, buf, sizeof(buf));
    assert_int_equal(buf[1], KV_OP_PUT_IF);
    assert_int_equal(buf[len - 1], KV_COND_XX);
    assert_string_equal(kv_op_name(KV_OP_PUT_IF), "PUT_IF");
}

static void cmd_put_if_bad_or_missing_condition_is_malformed(void **state)
{
    (void)state;
    struct kv_cmd c = put_if_of(KV_COND_NX, 1, 1, "k", "v");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    for (unsigned cond = 0; cond < 256; cond++) {
        if (cond == KV_COND_NX || cond == KV_COND_XX)
            continue;
        buf[len - 1] = (uint8_t)cond;
        assert_malformed(buf, len, "cond at offset 28");
    }
    assert_malformed(buf, len - 1, "cond at offset 28: 1 bytes needed");
    buf[len - 1] = KV_COND_XX;
    assert_malformed(buf, len + 1, "trailing bytes");
    /* A PUT's bytes with the op byte changed to PUT_IF lack the condition. */
    struct kv_cmd p = cmd_of(KV_OP_PUT, 1, 1, "k", "v");
    len = encode_ok(&p, buf, sizeof(buf));
    buf[1] = KV_OP_PUT_IF;
    assert_malformed(buf, len, "cond at offset");
}

static void cmd_encode_refuses_a_condition_where_it_does_not_belong(void **state)
{
    (void)state;
    uint8_t buf[SMALL_CMD_CAP];
    size_t out = 0;
    struct kv_cmd c = put_if_of(0, 1, 1, "k", "v");
    assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf), &out), RK_EINVAL);
    c.cond = 3;
    assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf), &out), RK_EINVAL);
    struct kv_cmd p = cmd_of(KV_OP_PUT, 1, 1, "k", "v");
    p.cond = KV_COND_NX;
    assert_int_equal(kv_cmd_encode(&p, buf, sizeof(buf), &out), RK_EINVAL);
    p.cond = 0;
    p.delta = 1;
    assert_int_equal(kv_cmd_encode(&p, buf, sizeof(buf), &out), RK_EINVAL);
}

static void kv_put_if_nx_writes_only_an_absent_key(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    struct kv_result r = put_if(f.kv, KV_COND_NX, 0, 0, "k", "first");
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.op, KV_OP_PUT_IF);
    assert_int_equal(r.num, 1);
    assert_value(f.kv, "k", "first");
    r = put_if(f.kv, KV_COND_NX, 0, 0, "k", "second");
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.num, 0);
    assert_value(f.kv, "k", "first");
    del(f.kv, 0, 0, "k");
    assert_int_equal(put_if(f.kv, KV_COND_NX, 0, 0, "k", "third").num, 1);
    assert_value(f.kv, "k", "third");
    assert_int_equal(kv_count(f.kv), 1);
    fixture_close(&f);
}

static void kv_put_if_xx_writes_only_a_present_key(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    assert_int_equal(put_if(f.kv, KV_COND_XX, 0, 0, "k", "v").num, 0);
    assert_value(f.kv, "k", NULL);
    assert_int_equal(kv_count(f.kv), 0);
    put(f.kv, 0, 0, "k", "old");
    assert_int_equal(put_if(f.kv, KV_COND_XX, 0, 0, "k", "new").num, 1);
    assert_value(f.kv, "k", "new");
    fixture_close(&f);
}

/* The decision is cached: a retry answers what the first apply decided, even though the
 * condition now holds the other way, and survives a restart. */
static void kv_put_if_duplicate_returns_the_decision_of_the_first_apply(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    assert_int_equal(put_if(f.kv, KV_COND_NX, 5, 1, "k", "a").num, 1);
    struct kv_result r = put_if(f.kv, KV_COND_NX, 5, 1, "k", "a");
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.op, KV_OP_PUT_IF);
    assert_int_equal(r.num, 1); /* not 0, though k now exists */
    assert_int_equal(put_if(f.kv, KV_COND_XX, 6, 1, "missing", "x").num, 0);
    fixture_restart(&f, 0);
    r = put_if(f.kv, KV_COND_NX, 5, 1, "k", "a");
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.num, 1);
    r = put_if(f.kv, KV_COND_XX, 6, 1, "missing", "x");
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.num, 0);
    assert_value(f.kv, "missing", NULL);
    assert_int_equal(put_if(f.kv, KV_COND_XX, 5, 2, "k", "b").num, 1);
    assert_value(f.kv, "k", "b");
    fixture_close(&f);
}

static struct kv_result incrby(struct kv *kv, uint64_t client_id, uint64_t seq, const char *key,
                               int64_t delta)
{
    struct kv_cmd c = cmd_of(KV_OP_INCRBY, client_id, seq, key, NULL);
    c.delta = delta;
    return apply_c(kv, &c);
}

static void cmd_incrby_round_trips_with_its_delta_last(void **state)
{
    (void)state;
    int64_t deltas[] = {0, 1, -1, INT64_MAX, INT64_MIN, 0x0102030405060708};
    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
        struct kv_cmd c = cmd_of(KV_OP_INCRBY, 3, 4, "n", NULL);
        c.delta = deltas[i];
        round_trip(&c);
    }
    struct kv_cmd c = cmd_of(KV_OP_INCRBY, 0, 0, "n", NULL);
    c.delta = 0x0102030405060708;
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    assert_int_equal(len, KV_CMD_OVERHEAD_BYTES + 1 + 8);
    static const uint8_t le[] = {8, 7, 6, 5, 4, 3, 2, 1};
    assert_memory_equal(buf + len - 8, le, 8);
    assert_string_equal(kv_op_name(KV_OP_INCRBY), "INCRBY");
}

static void cmd_incrby_with_a_value_or_without_its_delta_is_malformed(void **state)
{
    (void)state;
    struct kv_cmd c = cmd_of(KV_OP_INCRBY, 1, 1, "n", NULL);
    c.delta = 5;
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = encode_ok(&c, buf, sizeof(buf));
    for (size_t cut = 1; cut <= 8; cut++)
        assert_malformed(buf, len - cut, "delta at offset 27");
    assert_malformed(buf, len + 1, "trailing bytes");
    size_t out = 0;
    struct kv_cmd v = cmd_of(KV_OP_INCRBY, 1, 1, "n", "1");
    assert_int_equal(kv_cmd_encode(&v, buf, sizeof(buf), &out), RK_EINVAL);
    /* A PUT of "n" = 8 bytes, relabelled INCRBY: a value where none belongs. */
    struct kv_cmd p = cmd_of(KV_OP_PUT, 1, 1, "n", "12345678");
    len = encode_ok(&p, buf, sizeof(buf));
    buf[1] = KV_OP_INCRBY;
    assert_malformed(buf, len, "val_len at offset 23: 8 but an INCRBY carries no value");
}

static void kv_parse_int64_follows_redis_rules(void **state)
{
    (void)state;
    struct {
        const char *text;
        bool ok;
        int64_t want;
    } cases[] = {
        {"0", true, 0},
        {"7", true, 7},
        {"-7", true, -7},
        {"9223372036854775807", true, INT64_MAX},
        {"-9223372036854775808", true, INT64_MIN},
        {"9223372036854775808", false, 0},
        {"-9223372036854775809", false, 0},
        {"18446744073709551616", false, 0},
        {"99999999999999999999", false, 0},
        {"", false, 0},
        {"-", false, 0},
        {"-0", false, 0},
        {"01", false, 0},
        {"+1", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1a", false, 0},
        {"abc", false, 0},
        {"1.5", false, 0},
        {"000000000000000000001", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = 42;
        bool ok = kv_parse_int64((const uint8_t *)cases[i].text, strlen(cases[i].text), &got);
        if (ok != cases[i].ok)
            fail_msg("\"%s\": parsed %d, want %d", cases[i].text, ok, cases[i].ok);
        if (ok)
            assert_int_equal(got, cases[i].want);
    }
}

static void kv_incrby_counts_a_missing_key_as_zero_and_stores_text(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    struct kv_result r = incrby(f.kv, 0, 0, "n", 1);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.op, KV_OP_INCRBY);
    assert_int_equal(r.num, 1);
    assert_value(f.kv, "n", "1");
    assert_int_equal(incrby(f.kv, 0, 0, "n", 10).num, 11);
    assert_int_equal(incrby(f.kv, 0, 0, "n", -20).num, -9);
    assert_value(f.kv, "n", "-9");
    put(f.kv, 0, 0, "m", "-9223372036854775807");
    assert_int_equal(incrby(f.kv, 0, 0, "m", -1).num, INT64_MIN);
    assert_value(f.kv, "m", "-9223372036854775808");
    assert_int_equal(incrby(f.kv, 0, 0, "z", 0).num, 0);
    assert_value(f.kv, "z", "0");
    fixture_close(&f);
}

static void kv_incrby_of_a_non_integer_or_past_int64_writes_nothing(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    put(f.kv, 0, 0, "s", "abc");
    put(f.kv, 0, 0, "sp", " 1");
    put(f.kv, 0, 0, "max", "9223372036854775807");
    struct kv_result r = incrby(f.kv, 0, 0, "s", 1);
    assert_int_equal(r.status, KV_NOT_INTEGER);
    assert_int_equal(r.op, KV_OP_INCRBY);
    assert_int_equal(r.num, 0);
    assert_string_equal(kv_status_name(r.status), "not an integer");
    assert_int_equal(incrby(f.kv, 0, 0, "sp", 1).status, KV_NOT_INTEGER);
    r = incrby(f.kv, 0, 0, "max", 1);
    assert_int_equal(r.status, KV_OVERFLOW);
    assert_int_equal(r.num, 0);
    assert_int_equal(incrby(f.kv, 0, 0, "min", INT64_MIN).num, INT64_MIN);
    assert_int_equal(incrby(f.kv, 0, 0, "min", -1).status, KV_OVERFLOW);
    assert_value(f.kv, "s", "abc");
    assert_value(f.kv, "sp", " 1");
    assert_value(f.kv, "max", "9223372036854775807");
    assert_value(f.kv, "min", "-9223372036854775808");
    assert_int_equal(kv_applied_index(f.kv), 8);
    fixture_close(&f);
}

/* A retried INCRBY is not applied twice and answers what the first apply answered, error or
 * value, before and after a restart (the status is in the session record). */
static void kv_incrby_duplicate_returns_the_cached_value_or_error(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, 0);
    assert_int_equal(incrby(f.kv, 4, 1, "n", 5).num, 5);
    struct kv_result r = incrby(f.kv, 4, 1, "n", 5);
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.num, 5);
    assert_value(f.kv, "n", "5");
    put(f.kv, 0, 0, "s", "x");
    assert_int_equal(incrby(f.kv, 7, 1, "s", 1).status, KV_NOT_INTEGER);
    put(f.kv, 0, 0, "s", "1"); /* would succeed now: the retry must still answer the error */
    assert_int_equal(incrby(f.kv, 7, 1, "s", 1).status, KV_NOT_INTEGER);
    assert_int_equal(incrby(f.kv, 8, 1, "big", INT64_MAX).num, INT64_MAX);
    assert_int_equal(incrby(f.kv, 8, 2, "big", 1).status, KV_OVERFLOW);
    struct kv_session_info info;
    assert_int_equal(kv_session_get(f.kv, 7, &info), RK_OK);
    assert_int_equal(info.result.status, KV_NOT_INTEGER);
    fixture_restart(&f, 0);
    r = incrby(f.kv, 4, 1, "n", 5);
    assert_int_equal(r.status, KV_DUPLICATE);
    assert_int_equal(r.num, 5);
    assert_int_equal(incrby(f.kv, 7, 1, "s", 1).status, KV_NOT_INTEGER);
    assert_int_equal(incrby(f.kv, 8, 2, "big", 1).status, KV_OVERFLOW);
    assert_int_equal(incrby(f.kv, 7, 2, "s", 1).num, 2);
    assert_value(f.kv, "s", "2");
    assert_value(f.kv, "n", "5");
    fixture_close(&f);
}

/* ---- MSET ------------------------------------------------------------------------------- */

/* A pairs blob of n pairs "k<i>" = "v<i>" (texts from a static table). */
static size_t pairs_blob(const char *const *kvs, size_t n, uint8_t *buf, size_t cap)
{
    struct kv_pair pairs[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        pairs[i] = (struct kv_pair){.key = (const uint8_t *)kvs[2 * i],
                                    .key_len = (uint32_t)strlen(kvs[2 * i]),
                                    .val = (const uint8_t *)kvs[2 * i + 1],
                                    .val_len = (uint32_t)strlen(kvs[2 * i + 1])};
    size_t len = 0;
    assert_int_equal(kv_pairs_encode(pairs, n, buf, cap, &len), RK_OK);
    assert_int_equal(len, kv_pairs_size(pairs, n));
    return len;
}

static void assert_pairs_malformed(const uint8_t *blob, size_t len, const char *needle)
{
    uint32_t count = 77;
    struct rk_errmsg err = {{0}};
    assert_int_equal(kv_pairs_check(blob, len, &count, &err), RK_EMALFORMED);
    assert_int_equal(count, 77);
    if (strstr(err.text, needle) == NULL || strncmp(err.text, "pairs: ", 7) != 0)
        fail_msg("error \"%s\" does not contain \"%s\"", err.text, needle);
}

static void pairs_round_trip_in_order_with_empty_keys_and_values(void **state)
{
    (void)state;
    const char *kvs[] = {"a", "1", "", "empty key", "c", "", "a", "again"};
    uint8_t blob[256];
    size_t len = pairs_blob(kvs, 4, blob, sizeof(blob));
    assert_int_equal(len, KV_PAIRS_HEADER_BYTES + 4 * KV_PAIR_OVERHEAD_BYTES + 3 + 15);
    uint32_t count = 0;
    assert_int_equal(kv_pairs_check(blob, len, &count, NULL), RK_OK);
    assert_int_equal(count, 4);
    struct kv_pairs_iter it;
    struct kv_pair p;
    kv_pairs_begin(&it, blob, len);
    for (size_t i = 0; i < 4; i++) {
        assert_true(kv_pairs_next(&it, &p));
        assert_int_equal(p.key_len, strlen(kvs[2 * i]));
        assert_memory_equal(p.key, kvs[2 * i], p.key_len);
        assert_int_equal(p.val_len, strlen(kvs[2 * i + 1]));
        assert_memory_equal(p.val, kvs[2 * i + 1], p.val_len);
    }
    assert_false(kv_pairs_next(&it, &p));
}

static void pairs_encode_refuses_none_a_long_key_or_a_small_buffer(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len = 0;
    assert_int_equal(kv_pairs_encode(NULL, 0, buf, sizeof(buf), &len), RK_EINVAL);
    struct kv_pair big = {.key = buf, .key_len = KV_MAX_KEY_BYTES + 1};
    assert_int_equal(kv_pairs_encode(&big, 1, buf, sizeof(buf), &len), RK_EINVAL);
    struct kv_pair p = {.key = (const uint8_t *)"key", .key_len = 3,
                        .val = (const uint8_t *)"value", .val_len = 5};
    assert_int_equal(kv_pairs_encode(&p, 1, buf, kv_pairs_size(&p, 1) - 1, &len), RK_ETOOBIG);
    assert_int_equal(len, 0);
}

static void pairs_check_names_the_bad_field_and_its_offset(void **state)
{
    (void)state;
    const char *kvs[] = {"key", "value", "k2", "v2"};
    uint8_t blob[128];
    size_t len = pairs_blob(kvs, 2, blob, sizeof(blob));
    assert_pairs_malformed(blob, 3, "count at offset 0: 4 bytes needed");
    uint8_t zero[4] = {0};
    assert_pairs_malformed(zero, 4, "count at offset 0: 0 pairs");
    uint8_t lie[64];
    memcpy(lie, blob, len);
    lie[0] = 200; /* 200 pairs cannot fit the bytes */
    assert_pairs_malformed(lie, len, "cannot fit");
    lie[0] = 3; /* one more pair than there is */
    assert_pairs_malformed(lie, len, "key_len at offset 32: 4 bytes needed");
    lie[0] = 1; /* one pair and the other as trailing bytes */
    assert_pairs_malformed(lie, len, "end at offset 20: 12 trailing bytes after 1 pairs");
    memcpy(lie, blob, len);
    lie[4] = 0xff; /* a key_len within the limit but past the end */
    lie[5] = 0xff;
    assert_pairs_malformed(lie, len, "key at offset 8: 65535 bytes needed, only 24 left");
    lie[6] = 0xff; /* over the key limit */
    assert_pairs_malformed(lie, len, "key_len at offset 4: 16777215 is over the 65536-byte limit");
    for (size_t cut = 4; cut < len; cut++) { /* every truncation is refused */
        uint32_t count = 0;
        assert_int_equal(kv_pairs_check(blob, cut, &count, NULL), RK_EMALFORMED);
    }
}

static struct kv_cmd mset_of(uint64_t client_id, uint64_t seq, const uint8_t *blob, size_t len)
{
    struct kv_cmd c = cmd_of(KV_OP_MSET, client_id, seq, NULL, NULL);
    c.val = blob;
    c.val_len = (uint32_t)len;
    return c;
}

static void cmd_mset_round_trips_and_refuses_a_key_or_a_bad_blob(void **state)
{
    (void)state;
    const char *kvs[] = {"a", "1", "b", "2"};
    uint8_t blob[64];
    size_t blob_len = pairs_blob(kvs, 2, blob, sizeof(blob));
    struct kv_cmd c = mset_of(9, 4, blob, blob_len);
    round_trip(&c);
    assert_string_equal(kv_op_name(KV_OP_MSET), "MSET");
    uint8_t buf[SMALL_CMD_CAP];
    size_t len = 0;
    struct kv_cmd keyed = c;
    keyed.key = (const uint8_t *)"k";
    keyed.key_len = 1;
    assert_int_equal(kv_cmd_encode(&keyed, buf, sizeof(buf), &len), RK_EINVAL);
    struct kv_cmd bad = mset_of(9, 4, blob, blob_len - 1);
    assert_int_equal(kv_cmd_encode(&bad, buf, sizeof(buf), &len), RK_EINVAL);
    /* The decoder refuses the same, saying where. */
    struct kv_cmd put = cmd_of(KV_OP_PUT, 1, 1, "k", "v");
    len = encode_ok(&put, buf, sizeof(buf));
    buf[1] = KV_OP_MSET;
    assert_malformed(buf, len, "key_len at offset 18: 1 but an MSET carries no key");
    len = encode_ok(&c, buf, sizeof(buf));
    buf[KV_CMD_OVERHEAD_BYTES] = 7; /* the blob's count */
    assert_malformed(buf, len, "val at offset 26: pairs: count at offset 0: 7 pairs");
}

static struct kv_result mset(struct kv *kv, uint64_t client_id, uint64_t seq,
                             const char *const *kvs, size_t n)
{
    uint8_t blob[256];
    size_t blob_len = pairs_blob(kvs, n, blob, sizeof(blob));
    struct kv_cmd c = mset_of(client_id, seq, blob, blob_len);
    return apply_c(kv, &c);
}

static void kv_mset_writes_every_pair_in_one_batch_later_pairs_winning(void **state)
{
    (void)state;
    struct rs_fixture f;
    rs_open(&f, 0);
    const char *kvs[] = {"a", "1", "b", "2", "a", "3"};
    struct kv_result r = mset(f.kv, 0, 0, kvs, 3);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.op, KV_OP_MSET);
    assert_int_equal(r.num, 0);
    assert_batch(&f, 1, (const char *[]){"P0a", "P0b", "P0a"}, 3);
    assert_value(f.kv, "a", "3");
    assert_value(f.kv, "b", "2");
    assert_int_equal(kv_count(f.kv), 2);
    /* With a session: the record first, then the pairs; a retry applies nothing again. */
    const char *again[] = {"b", "new", "c", "x"};
    assert_int_equal(mset(f.kv, 5, 1, again, 2).status, KV_OK);
    assert_batch(&f, 2, (const char *[]){"Ps5", "P0b", "P0c"}, 3);
    put(f.kv, 0, 0, "b", "later");
    assert_int_equal(mset(f.kv, 5, 1, again, 2).status, KV_DUPLICATE);
    assert_value(f.kv, "b", "later");
    rs_close(&f);
}

/* A store that fails part way through an MSET's batch: the entry is not applied (the replica
 * stops; a durable store drops the unclosed batch), and its retry writes the whole batch. */
static void kv_mset_failing_part_way_applies_on_retry_whole(void **state)
{
    (void)state;
    const char *kvs[] = {"a", "1", "b", "2", "c", "3"};
    for (size_t fail = 1; fail <= 3; fail++) {
        struct rs_fixture f;
        rs_open(&f, 0);
        f.rs.writes = 0;
        f.rs.fail_write_at = fail;
        uint8_t blob[128], buf[SMALL_CMD_CAP];
        size_t blob_len = pairs_blob(kvs, 3, blob, sizeof(blob));
        struct kv_cmd c = mset_of(0, 0, blob, blob_len);
        size_t len = encode_ok(&c, buf, sizeof(buf));
        struct kv_result r;
        assert_int_equal(kv_apply(f.kv, 1, buf, (uint32_t)len, &r), RK_EIO);
        assert_int_equal(r.status, KV_STORE_ERROR);
        assert_int_equal(kv_applied_index(f.kv), 0);
        f.rs.fail_write_at = 0;
        f.rs.n_calls = 0;
        assert_int_equal(kv_apply(f.kv, 1, buf, (uint32_t)len, &r), RK_OK);
        assert_batch(&f, 1, (const char *[]){"P0a", "P0b", "P0c"}, 3);
        assert_value(f.kv, "c", "3");
        rs_close(&f);
    }
}

static bool count_key(void *ctx, const uint8_t *key, uint32_t key_len)
{
    (void)key, (void)key_len;
    (*(size_t *)ctx)++;
    return true;
}

/* A restart over a store with scan_keys reads the session records' values (get), never every
 * user value (no value scan), and finds the same sessions. */
static void kv_create_reads_only_session_values_where_the_store_can(void **state)
{
    (void)state;
    struct rs_fixture f;
    rs_open(&f, 0);
    put(f.kv, 1, 1, "a", "1");
    put(f.kv, 2, 1, "b", "2");
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof(key), "user-%d", i);
        put(f.kv, 0, 0, key, "a value nobody needs at start");
        f.rs.n_calls = 0; /* the call log is for batches; only counts matter here */
    }
    kv_destroy(f.kv);
    f.rs.base.ops = &rs_keys_ops;
    f.rs.gets = f.rs.value_scans = 0;
    struct kv_config cfg = {.alloc = &f.alloc, .store = &f.rs.base};
    assert_int_equal(kv_create(&cfg, &f.kv, NULL), RK_OK);
    assert_int_equal(f.rs.value_scans, 0);
    assert_int_equal(f.rs.gets, 3); /* the two session records, kv's own record (absent) */
    assert_int_equal(kv_session_count(f.kv), 2);
    struct kv_session_info info;
    assert_int_equal(kv_session_get(f.kv, 2, &info), RK_OK);
    assert_int_equal(info.last_seq, 1);
    assert_int_equal(info.last_index, 2);
    assert_int_equal(put(f.kv, 2, 1, "b", "2").status, KV_DUPLICATE);
    /* kv_scan_keys lists the user keys without reading a value. */
    size_t n = 0;
    f.rs.gets = 0;
    assert_int_equal(kv_scan_keys(f.kv, count_key, &n), RK_OK);
    assert_int_equal(n, 12);
    assert_int_equal(f.rs.value_scans, 0);
    assert_int_equal(f.rs.gets, 0);
    rs_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digest_is_equal_for_the_same_entries_across_a_restart),
        cmocka_unit_test(digest_differs_for_any_different_pair),
        cmocka_unit_test(digest_covers_sessions),
        cmocka_unit_test(digest_ignores_meta_records),
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
        cmocka_unit_test(kv_retry_after_restart_is_a_duplicate_with_the_cached_result),
        cmocka_unit_test(kv_session_table_is_identical_after_restart_including_evictions),
        cmocka_unit_test(kv_del_cached_num_survives_restart),
        cmocka_unit_test(kv_restarted_replica_stays_identical_to_one_that_never_restarted),
        cmocka_unit_test(kv_user_keys_never_collide_with_session_keys),
        cmocka_unit_test(kv_count_and_scan_exclude_sessions),
        cmocka_unit_test(kv_store_keys_are_user_keys_plus_one_byte),
        cmocka_unit_test(kv_session_record_layout_is_fixed_width_little_endian),
        cmocka_unit_test(kv_apply_writes_each_entry_as_one_batch),
        cmocka_unit_test(kv_failed_end_batch_is_a_store_error_and_applies_nothing),
        cmocka_unit_test(kv_retry_of_a_partly_written_batch_gives_the_same_result),
        cmocka_unit_test(kv_create_refuses_a_session_record_that_does_not_decode),
        cmocka_unit_test(kv_create_refuses_two_sessions_last_used_at_one_index),
        cmocka_unit_test(kv_create_refuses_a_key_outside_both_namespaces),
        cmocka_unit_test(kv_create_refuses_more_session_records_than_max_sessions),
        cmocka_unit_test(cmd_put_if_round_trips_with_its_condition_last),
        cmocka_unit_test(cmd_put_if_bad_or_missing_condition_is_malformed),
        cmocka_unit_test(cmd_encode_refuses_a_condition_where_it_does_not_belong),
        cmocka_unit_test(kv_put_if_nx_writes_only_an_absent_key),
        cmocka_unit_test(kv_put_if_xx_writes_only_a_present_key),
        cmocka_unit_test(kv_put_if_duplicate_returns_the_decision_of_the_first_apply),
        cmocka_unit_test(cmd_incrby_round_trips_with_its_delta_last),
        cmocka_unit_test(cmd_incrby_with_a_value_or_without_its_delta_is_malformed),
        cmocka_unit_test(kv_parse_int64_follows_redis_rules),
        cmocka_unit_test(kv_incrby_counts_a_missing_key_as_zero_and_stores_text),
        cmocka_unit_test(kv_incrby_of_a_non_integer_or_past_int64_writes_nothing),
        cmocka_unit_test(kv_incrby_duplicate_returns_the_cached_value_or_error),
        cmocka_unit_test(pairs_round_trip_in_order_with_empty_keys_and_values),
        cmocka_unit_test(pairs_encode_refuses_none_a_long_key_or_a_small_buffer),
        cmocka_unit_test(pairs_check_names_the_bad_field_and_its_offset),
        cmocka_unit_test(cmd_mset_round_trips_and_refuses_a_key_or_a_bad_blob),
        cmocka_unit_test(kv_mset_writes_every_pair_in_one_batch_later_pairs_winning),
        cmocka_unit_test(kv_mset_failing_part_way_applies_on_retry_whole),
        cmocka_unit_test(kv_create_reads_only_session_values_where_the_store_can),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
