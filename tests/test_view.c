/*
 * test_view.c — pinned copy-on-write views (core/kv/view.h) over Bitcask on the simulated disk:
 * several views open at once at different indexes, walked in small pieces while puts and dels
 * go on, each gives exactly the store's content at its index, in canonical order (V1-V3); the
 * overlay bound fails a view with RK_ETOOBIG and leaves the others and the store alone (V4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bitcask/bitcask.h"
#include "common/prng.h"
#include "kv/view.h"
#include "simdisk.h"

#define N_KEYS  300
#define N_VIEWS 3

struct model {
    bool present[N_KEYS];
    uint32_t ver[N_KEYS]; /* the value is "v<ver>-<key>" */
};

struct env {
    struct simdisk *disk;
    struct bitcask *bc;
    struct kv_store *st; /* the wrapper */
    uint64_t index;
    struct model m;
};

static void env_open(struct env *e, uint64_t seed)
{
    memset(e, 0, sizeof(*e));
    e->disk = simdisk_create(seed);
    assert_non_null(e->disk);
    struct bc_config cfg = {
        .fs = simdisk_fs(e->disk), .alloc = rk_alloc_libc(), .max_file_bytes = 64u << 10};
    struct rk_errmsg err;
    assert_int_equal(bc_open(&cfg, &e->bc, &err), RK_OK);
    e->st = kv_views_wrap(rk_alloc_libc(), bc_kv_store(e->bc));
    assert_non_null(e->st);
    assert_true(kv_views_is_wrapper(e->st));
}

static void env_close(struct env *e)
{
    e->st->ops->destroy(e->st); /* the bitcask too */
    simdisk_destroy(e->disk);
}

static int key_of(char *buf, size_t cap, uint32_t k)
{
    return snprintf(buf, cap, "key:%u", k);
}

static int val_of(char *buf, size_t cap, uint32_t k, uint32_t ver)
{
    return snprintf(buf, cap, "v%u-%u", ver, k);
}

/* One batch at the next index: a put or a del of a random key. */
static void write_one(struct env *e, struct rk_prng *p)
{
    uint32_t k = (uint32_t)rk_prng_below(p, N_KEYS);
    char key[32], val[32];
    int kl = key_of(key, sizeof(key), k);
    uint64_t index = ++e->index;
    if (rk_prng_below(p, 4) == 0) {
        bool existed;
        assert_int_equal(e->st->ops->del(e->st, index, (uint8_t *)key, (uint32_t)kl, &existed),
                         RK_OK);
        assert_int_equal(existed, e->m.present[k]);
        e->m.present[k] = false;
    } else {
        uint32_t ver = (uint32_t)index;
        int vl = val_of(val, sizeof(val), k, ver);
        assert_int_equal(e->st->ops->put(e->st, index, (uint8_t *)key, (uint32_t)kl, (uint8_t *)val,
                                         (uint32_t)vl),
                         RK_OK);
        e->m.present[k] = true;
        e->m.ver[k] = ver;
    }
    assert_int_equal(e->st->ops->end_batch(e->st, index), RK_OK);
}

struct seen {
    struct model want;
    bool got[N_KEYS];
    uint32_t n;
    uint8_t last[32];
    uint32_t last_len;
};

static bool check_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                      uint32_t val_len)
{
    struct seen *s = ctx;
    char kbuf[32], vbuf[32];
    assert_true(key_len < sizeof(kbuf));
    memcpy(kbuf, key, key_len);
    kbuf[key_len] = '\0';
    unsigned k = 0;
    assert_int_equal(sscanf(kbuf, "key:%u", &k), 1);
    assert_true(k < N_KEYS);
    assert_true(s->want.present[k]); /* live at the view's index */
    assert_false(s->got[k]);         /* once */
    s->got[k] = true;
    int vl = val_of(vbuf, sizeof(vbuf), k, s->want.ver[k]);
    assert_int_equal(val_len, (uint32_t)vl); /* its value at the index */
    assert_memory_equal(val, vbuf, val_len);
    if (s->n > 0) /* ascending canonical order (V3) */
        assert_true(bc_key_order(s->last, s->last_len, key, key_len) < 0);
    memcpy(s->last, key, key_len);
    s->last_len = key_len;
    s->n++;
    return true;
}

static void views_stay_at_their_index_while_the_store_moves(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct env e;
        env_open(&e, seed);
        struct rk_prng p;
        rk_prng_seed(&p, seed);
        for (int i = 0; i < 400; i++)
            write_one(&e, &p);
        struct kv_view *v[N_VIEWS] = {0};
        struct seen *s = calloc(N_VIEWS, sizeof(*s));
        assert_non_null(s);
        bool done[N_VIEWS] = {0};
        uint32_t n_done = 0, opened = 0;
        while (n_done < N_VIEWS) {
            if (opened < N_VIEWS && rk_prng_below(&p, 8) == 0) {
                struct rk_errmsg err;
                assert_int_equal(kv_view_open(e.st, 1u << 20, &v[opened], &err), RK_OK);
                assert_int_equal(kv_view_index(v[opened]), e.index);
                s[opened].want = e.m;
                opened++;
            }
            for (uint32_t i = 0; i < opened; i++) {
                if (done[i] || rk_prng_below(&p, 2) == 0)
                    continue;
                struct rk_errmsg err;
                uint64_t budget = rk_prng_range(&p, 1, 200);
                assert_int_equal(kv_view_next(v[i], budget, 8, check_one, &s[i], &done[i], &err),
                                 RK_OK);
                if (done[i])
                    n_done++;
            }
            for (int w = (int)rk_prng_below(&p, 6); w > 0; w--)
                write_one(&e, &p);
        }
        assert_int_equal(kv_views_open_count(e.st), N_VIEWS);
        for (uint32_t i = 0; i < N_VIEWS; i++) {
            for (uint32_t k = 0; k < N_KEYS; k++)
                assert_int_equal(s[i].got[k], s[i].want.present[k]); /* every live key */
            kv_view_close(v[i]);
        }
        assert_int_equal(kv_views_open_count(e.st), 0);
        free(s);
        env_close(&e);
    }
}

static bool count_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                      uint32_t val_len)
{
    (void)key, (void)key_len, (void)val, (void)val_len;
    (*(uint32_t *)ctx)++;
    return true;
}

static void an_overlay_over_its_bound_fails_that_view_only(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 7);
    struct rk_prng p;
    rk_prng_seed(&p, 7);
    for (uint32_t k = 0; k < N_KEYS; k++) { /* every key present */
        char key[32], val[32];
        int kl = key_of(key, sizeof(key), k), vl = val_of(val, sizeof(val), k, 1);
        assert_int_equal(e.st->ops->put(e.st, ++e.index, (uint8_t *)key, (uint32_t)kl,
                                        (uint8_t *)val, (uint32_t)vl),
                         RK_OK);
        assert_int_equal(e.st->ops->end_batch(e.st, e.index), RK_OK);
        e.m.present[k] = true;
        e.m.ver[k] = 1;
    }
    struct kv_view *small, *big;
    struct rk_errmsg err;
    assert_int_equal(kv_view_open(e.st, 512, &small, &err), RK_OK);
    assert_int_equal(kv_view_open(e.st, 1u << 20, &big, &err), RK_OK);
    for (int i = 0; i < 200; i++) /* writes ahead of both walks */
        write_one(&e, &p);
    assert_true(kv_view_overlay_bytes(big) > 512);
    uint32_t n = 0;
    bool done = false;
    assert_int_equal(kv_view_next(small, 100, 0, count_one, &n, &done, &err), RK_ETOOBIG);
    assert_non_null(strstr(err.text, "overlay bound"));
    assert_int_equal(kv_view_next(small, 100, 0, count_one, &n, &done, &err), RK_ETOOBIG);
    assert_int_equal(n, 0);
    while (!done)
        assert_int_equal(kv_view_next(big, 100, 0, count_one, &n, &done, &err), RK_OK);
    assert_int_equal(n, N_KEYS); /* all present at its index */
    kv_view_close(small);
    kv_view_close(big);
    env_close(&e);
}

static void a_view_outliving_its_store_fails_instead_of_dangling(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 3);
    struct kv_view *v;
    struct rk_errmsg err;
    assert_int_equal(kv_view_open(e.st, 1u << 20, &v, &err), RK_OK);
    env_close(&e);
    uint32_t n = 0;
    bool done = false;
    assert_int_equal(kv_view_next(v, 100, 0, count_one, &n, &done, &err), RK_ESTALE);
    kv_view_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(views_stay_at_their_index_while_the_store_moves),
        cmocka_unit_test(an_overlay_over_its_bound_fails_that_view_only),
        cmocka_unit_test(a_view_outliving_its_store_fails_instead_of_dangling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
