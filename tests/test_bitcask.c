/*
 * test_bitcask.c — the Bitcask engine on the simulated disk (sim/simdisk.h): reads and writes,
 * batches, rotation, merge and hint files, recovery (clean, crashed, torn, corrupt), limits,
 * poisoning after a failed write, the keydir's memory and incremental growth, the canonical scan
 * order, a randomized crash test against a model, bit flips on read, and allocation failures.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, for the throughput figures */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bitcask/bitcask.h"
#include "bitcask/bitcask_int.h"
#include "common/crc32c.h"
#include "common/prng.h"
#include "kv/kv.h"
#include "kv/memstore.h"
#include "simdisk.h"

/* ---- a counting, failable allocator ---------------------------------------------------- */

struct counting {
    size_t live;       /* allocations not yet freed */
    size_t live_bytes; /* bytes requested by them */
    size_t peak_bytes;
    size_t calls;     /* malloc/realloc calls so far */
    size_t fail_at;   /* the call numbered fail_at (1-based) fails; 0 = never */
    size_t fail_from; /* calls numbered >= fail_from fail; 0 = never */
};

#define CNT_HEADER 16u /* the block's size, kept in front of it */

static bool cnt_should_fail(struct counting *c)
{
    c->calls++;
    return (c->fail_at != 0 && c->calls == c->fail_at) ||
           (c->fail_from != 0 && c->calls >= c->fail_from);
}

static void cnt_note(struct counting *c, size_t add, size_t sub)
{
    c->live_bytes = c->live_bytes + add - sub;
    if (c->live_bytes > c->peak_bytes)
        c->peak_bytes = c->live_bytes;
}

static void *cnt_malloc(void *ctx, size_t size)
{
    struct counting *c = ctx;
    if (cnt_should_fail(c))
        return NULL;
    uint8_t *p = malloc(CNT_HEADER + size);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof(size));
    c->live++;
    cnt_note(c, size, 0);
    return p + CNT_HEADER;
}

static void *cnt_realloc(void *ctx, void *ptr, size_t size)
{
    struct counting *c = ctx;
    if (cnt_should_fail(c))
        return NULL;
    size_t old = 0;
    uint8_t *base = NULL;
    if (ptr != NULL) {
        base = (uint8_t *)ptr - CNT_HEADER;
        memcpy(&old, base, sizeof(old));
    }
    uint8_t *p = realloc(base, CNT_HEADER + size);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof(size));
    if (ptr == NULL)
        c->live++;
    cnt_note(c, size, old);
    return p + CNT_HEADER;
}

static void cnt_free(void *ctx, void *ptr)
{
    struct counting *c = ctx;
    if (ptr == NULL)
        return;
    uint8_t *base = (uint8_t *)ptr - CNT_HEADER;
    size_t size;
    memcpy(&size, base, sizeof(size));
    assert_true(c->live > 0);
    c->live--;
    cnt_note(c, 0, size);
    free(base);
}

/* ---- a store on a simulated disk ---------------------------------------------------------- */

struct env {
    struct simdisk *disk;
    struct counting cnt;
    struct rk_alloc alloc;
    struct bc_config cfg;
    struct bitcask *bc;
    struct rk_errmsg err;
};

static struct env *env_new(uint64_t seed, uint64_t max_file_bytes)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->disk = simdisk_create(seed);
    assert_non_null(e->disk);
    e->alloc = (struct rk_alloc){
        .malloc_fn = cnt_malloc, .realloc_fn = cnt_realloc, .free_fn = cnt_free, .ctx = &e->cnt};
    e->cfg.fs = simdisk_fs(e->disk);
    e->cfg.alloc = &e->alloc;
    e->cfg.max_file_bytes = max_file_bytes;
    return e;
}

static int env_open(struct env *e)
{
    assert_null(e->bc);
    return bc_open(&e->cfg, &e->bc, &e->err);
}

static void env_open_ok(struct env *e)
{
    int rc = env_open(e);
    if (rc != RK_OK)
        fail_msg("bc_open: %s: %s", rk_strerror(rc), e->err.text);
}

static void env_close(struct env *e)
{
    bc_close(e->bc);
    e->bc = NULL;
    assert_int_equal(e->cnt.live, 0); /* nothing leaked */
}

static void env_reopen(struct env *e)
{
    env_close(e);
    env_open_ok(e);
}

static void env_crash_reopen(struct env *e)
{
    env_close(e);
    simdisk_crash(e->disk);
    env_open_ok(e);
}

static void env_free(struct env *e)
{
    if (e->bc != NULL)
        env_close(e);
    simdisk_destroy(e->disk);
    free(e);
}

static void ok(struct env *e, int rc)
{
    if (rc != RK_OK)
        fail_msg("%s: %s", rk_strerror(rc), e->err.text);
}

static void put_s(struct env *e, uint64_t index, const char *key, const char *val)
{
    ok(e, bc_put(e->bc, index, (const uint8_t *)key, (uint32_t)strlen(key), (const uint8_t *)val,
                 (uint32_t)strlen(val), &e->err));
}

static bool del_s(struct env *e, uint64_t index, const char *key)
{
    bool existed = false;
    ok(e, bc_del(e->bc, index, (const uint8_t *)key, (uint32_t)strlen(key), &existed, &e->err));
    return existed;
}

static void end(struct env *e)
{
    ok(e, bc_end_batch(e->bc, &e->err));
}

static void sync_(struct env *e)
{
    ok(e, bc_sync(e->bc, &e->err));
}

/* One batch of one put, ended. */
static void put1(struct env *e, uint64_t index, const char *key, const char *val)
{
    put_s(e, index, key, val);
    end(e);
}

static int get_s(struct env *e, const char *key, const uint8_t **val, uint32_t *len)
{
    return bc_get(e->bc, (const uint8_t *)key, (uint32_t)strlen(key), val, len, &e->err);
}

static void expect(struct env *e, const char *key, const char *want)
{
    const uint8_t *val;
    uint32_t len;
    int rc = get_s(e, key, &val, &len);
    if (want == NULL) {
        if (rc != RK_ENOENT)
            fail_msg("%s: expected absent, got %s", key, rk_strerror(rc));
        return;
    }
    if (rc != RK_OK)
        fail_msg("%s: %s: %s", key, rk_strerror(rc), e->err.text);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(val, want, len);
}

static struct bc_stats stats(struct env *e)
{
    struct bc_stats st;
    bc_stats(e->bc, &st);
    return st;
}

/* ---- the directory, as the test sees it ------------------------------------------------- */

struct names {
    char v[64][FS_NAME_MAX + 1];
    int n;
    int data;
    int hint;
    int tmp;
    bool merge;
};

static bool names_one(void *ctx, const char *name)
{
    struct names *ns = ctx;
    size_t len = strlen(name);
    if (ns->n < 64)
        memcpy(ns->v[ns->n], name, len + 1);
    ns->n++;
    ns->data += len == 15 && strcmp(name + 10, ".data") == 0;
    ns->hint += len == 15 && strcmp(name + 10, ".hint") == 0;
    ns->tmp += len > 4 && strcmp(name + len - 4, ".tmp") == 0;
    ns->merge = ns->merge || strcmp(name, "MERGE") == 0;
    return true;
}

static struct names list_names(struct env *e)
{
    struct names ns;
    memset(&ns, 0, sizeof(ns));
    struct fs *fs = simdisk_fs(e->disk);
    assert_int_equal(fs->ops->list(fs, names_one, &ns, &e->err), RK_OK);
    return ns;
}

/* Removes every hint file: the data files are then scanned at open (their damage found there). */
static void remove_hints(struct env *e)
{
    struct names ns = list_names(e);
    struct fs *fs = simdisk_fs(e->disk);
    for (int i = 0; i < ns.n && i < 64; i++) {
        size_t len = strlen(ns.v[i]);
        if (len > 5 && strcmp(ns.v[i] + len - 5, ".hint") == 0)
            assert_int_equal(fs->ops->remove(fs, ns.v[i], &e->err), RK_OK);
    }
    assert_int_equal(list_names(e).hint, 0);
}

static uint64_t file_size(struct env *e, const char *name)
{
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    assert_int_equal(fs->ops->open(fs, name, 0, &f, &e->err), RK_OK);
    uint64_t size = 0;
    assert_int_equal(fs->ops->size(fs, f, &size, &e->err), RK_OK);
    fs->ops->close(fs, f);
    return size;
}

static void create_file(struct env *e, const char *name, const char *content)
{
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    assert_int_equal(fs->ops->open(fs, name, FS_CREATE, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->append(fs, f, content, strlen(content), &e->err), RK_OK);
    assert_int_equal(fs->ops->sync(fs, f, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(fs->ops->sync_dir(fs, &e->err), RK_OK);
}

static void print_dir(struct env *e, const char *when)
{
    struct names ns = list_names(e);
    fprintf(stderr, "  directory %s:", when);
    for (int i = 0; i < ns.n && i < 64; i++) {
        if (simdisk_crashed(e->disk))
            fprintf(stderr, " %s", ns.v[i]);
        else
            fprintf(stderr, " %s(%llu)", ns.v[i], (unsigned long long)file_size(e, ns.v[i]));
    }
    fprintf(stderr, "\n");
}

static void set_faults(struct env *e, const struct simdisk_faults *f)
{
    simdisk_set_faults(e->disk, f);
}

static void no_faults(struct env *e)
{
    struct simdisk_faults f;
    memset(&f, 0, sizeof(f));
    simdisk_set_faults(e->disk, &f);
}

/* ---- reads and writes ------------------------------------------------------------------- */

/* ---- deferred writes (bitcask.h, DEFERRED WRITES) ---------------------------------------- */

/* Runs every job queued, in order, as a worker would, and hands each back. */
static void io_all(struct env *e)
{
    for (struct bc_io_job *j; (j = bc_io_take(e->bc)) != NULL;) {
        ok(e, bc_io_run(j) == RK_OK ? RK_OK : RK_EIO);
        ok(e, bc_io_done(e->bc, j, &e->err));
    }
    assert_int_equal(bc_io_out(e->bc), 0);
}

/* Writes land in jobs: visible at once (from the jobs' buffers), on disk only when a job ran,
 * durable only when a job that syncs is done; files rotate as without deferral. */
static void deferred_writes_read_from_jobs_then_files(void **state)
{
    (void)state;
    struct env *e = env_new(1, 512);
    env_open_ok(e);
    bc_set_deferred(e->bc, NULL);
    char key[16], val[64];
    for (uint64_t i = 1; i <= 60; i++) {
        snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
        snprintf(val, sizeof(val), "value %llu of some length", (unsigned long long)i);
        put1(e, i, key, val);
    }
    sync_(e);
    assert_int_equal(bc_applied_index(e->bc), 60);
    assert_int_equal(bc_durable_index(e->bc), 0); /* queued, not run */
    assert_int_equal(list_names(e).data, 0);      /* not even a file made */
    expect(e, "k7", "value 7 of some length");
    expect(e, "k60", "value 60 of some length");
    struct bc_io_job *j = bc_io_take(e->bc);
    assert_non_null(j);
    assert_true(bc_io_job_syncs(j));
    expect(e, "k33", "value 33 of some length"); /* taken, not run: from the job */
    ok(e, bc_io_run(j));
    expect(e, "k34", "value 34 of some length"); /* run, not done: from the job still */
    ok(e, bc_io_done(e->bc, j, &e->err));
    assert_int_equal(bc_durable_index(e->bc), 60);
    assert_true(list_names(e).data > 3); /* rotated at 512 bytes */
    for (uint64_t i = 1; i <= 60; i++) {
        snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
        snprintf(val, sizeof(val), "value %llu of some length", (unsigned long long)i);
        expect(e, key, val); /* from the files */
    }
    assert_true(del_s(e, 61, "k5"));
    end(e);
    sync_(e);
    io_all(e);
    env_crash_reopen(e);
    assert_int_equal(bc_applied_index(e->bc), 61);
    expect(e, "k5", NULL);
    expect(e, "k60", "value 60 of some length");
    env_free(e);
}

/* A crash drops the jobs not run: the store reopens with what the last done sync made durable
 * (and perhaps more, never less), every batch whole. */
static void deferred_writes_not_run_are_lost_at_a_crash(void **state)
{
    (void)state;
    struct env *e = env_new(2, 1024);
    env_open_ok(e);
    bc_set_deferred(e->bc, NULL);
    for (uint64_t i = 1; i <= 10; i++)
        put1(e, i, "a", "durable");
    sync_(e);
    io_all(e);
    assert_int_equal(bc_durable_index(e->bc), 10);
    put1(e, 11, "a", "lost");
    put1(e, 12, "b", "lost too");
    sync_(e);
    struct bc_io_job *j = bc_io_take(e->bc);
    assert_non_null(j);
    expect(e, "a", "lost"); /* visible while queued */
    assert_int_equal(bc_durable_index(e->bc), 10);
    bc_io_free(j); /* the worker dies with the process */
    env_crash_reopen(e);
    assert_int_equal(bc_applied_index(e->bc), 10);
    expect(e, "a", "durable");
    expect(e, "b", NULL);
    env_free(e);
}

static void put_then_get_returns_the_value(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "alpha", "one");
    expect(e, "alpha", "one");
    assert_int_equal(bc_count(e->bc), 1);
    env_free(e);
}

static void get_of_a_missing_key_is_enoent(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    expect(e, "nothing", NULL);
    put1(e, 1, "alpha", "one");
    expect(e, "alph", NULL);
    env_free(e);
}

static void overwrite_returns_the_latest_value(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k", "first");
    put1(e, 2, "k", "second, longer");
    put1(e, 3, "k", "3");
    expect(e, "k", "3");
    assert_int_equal(bc_count(e->bc), 1);
    env_free(e);
}

static void del_removes_the_key_and_says_whether_it_existed(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k", "v");
    assert_true(del_s(e, 2, "k"));
    end(e);
    expect(e, "k", NULL);
    assert_false(del_s(e, 3, "k"));
    end(e);
    assert_int_equal(bc_count(e->bc), 0);
    assert_int_equal(bc_applied_index(e->bc), 3); /* a del of an absent key still advances */
    env_free(e);
}

static void open_batch_is_visible_before_end_batch(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "old", "o");
    put_s(e, 2, "a", "pending");
    assert_true(del_s(e, 2, "old"));
    expect(e, "a", "pending");
    expect(e, "old", NULL);
    assert_int_equal(bc_applied_index(e->bc), 1);
    end(e);
    assert_int_equal(bc_applied_index(e->bc), 2);
    expect(e, "a", "pending");
    env_free(e);
}

static void values_survive_a_clean_reopen(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put_s(e, 1, "a", "1");
    put_s(e, 1, "b", "2");
    end(e);
    put1(e, 2, "empty", "");
    put1(e, 3, "", "empty key");
    sync_(e);
    env_reopen(e);
    expect(e, "a", "1");
    expect(e, "b", "2");
    expect(e, "empty", "");
    expect(e, "", "empty key");
    assert_int_equal(bc_count(e->bc), 4);
    assert_int_equal(bc_applied_index(e->bc), 3);
    env_free(e);
}

static void tombstone_survives_reopen(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "gone", "soon");
    put1(e, 2, "kept", "here");
    del_s(e, 3, "gone");
    end(e);
    sync_(e);
    env_reopen(e);
    expect(e, "gone", NULL);
    expect(e, "kept", "here");
    assert_int_equal(bc_count(e->bc), 1);
    assert_int_equal(bc_applied_index(e->bc), 3);
    env_reopen(e); /* and again, from a directory with two files */
    expect(e, "gone", NULL);
    env_free(e);
}

static void a_new_index_closes_the_open_batch(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put_s(e, 1, "a", "1");
    put_s(e, 1, "b", "1");
    put_s(e, 2, "a", "2"); /* closes batch 1 */
    end(e);
    sync_(e);
    env_reopen(e);
    expect(e, "a", "2");
    expect(e, "b", "1");
    assert_int_equal(bc_applied_index(e->bc), 2);
    env_free(e);
}

static void same_key_twice_in_a_batch_keeps_the_later(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put_s(e, 1, "k", "first");
    put_s(e, 1, "k", "second");
    del_s(e, 1, "x");
    put_s(e, 1, "x", "after the tombstone");
    end(e);
    sync_(e);
    expect(e, "k", "second");
    env_reopen(e);
    expect(e, "k", "second");
    expect(e, "x", "after the tombstone");
    ok(e, bc_merge(e->bc, &e->err));
    env_reopen(e);
    expect(e, "k", "second");
    expect(e, "x", "after the tombstone");
    env_free(e);
}

/* ---- rotation and merge ----------------------------------------------------------------- */

static void rotation_creates_files_and_reads_across_them(void **state)
{
    (void)state;
    struct env *e = env_new(1, 256);
    env_open_ok(e);
    char key[32];
    char val[64];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "key-%03d", i);
        snprintf(val, sizeof(val), "value number %d, padded to take some room", i);
        put1(e, (uint64_t)i + 1, key, val);
    }
    sync_(e);
    struct bc_stats st = stats(e);
    assert_true(st.data_files >= 20);
    assert_int_equal(list_names(e).data, (int)st.data_files);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "key-%03d", i);
        snprintf(val, sizeof(val), "value number %d, padded to take some room", i);
        expect(e, key, val);
    }
    env_reopen(e);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "key-%03d", i);
        snprintf(val, sizeof(val), "value number %d, padded to take some room", i);
        expect(e, key, val);
    }
    env_free(e);
}

/* 10 keys overwritten 20 times and 5 of them deleted, over files of ~512 bytes. */
static void write_churn(struct env *e, uint64_t *index)
{
    char key[16];
    char val[48];
    for (int round = 0; round < 20; round++) {
        for (int k = 0; k < 10; k++) {
            snprintf(key, sizeof(key), "k%d", k);
            snprintf(val, sizeof(val), "round %d of key %d", round, k);
            put1(e, ++*index, key, val);
        }
    }
    for (int k = 0; k < 10; k += 2) {
        snprintf(key, sizeof(key), "k%d", k);
        del_s(e, ++*index, key);
        end(e);
    }
}

static void expect_churned(struct env *e)
{
    char key[16];
    char val[48];
    for (int k = 0; k < 10; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        snprintf(val, sizeof(val), "round 19 of key %d", k);
        expect(e, key, k % 2 == 0 ? NULL : val);
    }
    assert_int_equal(bc_count(e->bc), 5);
    assert_int_equal(bc_applied_index(e->bc), 205);
}

static void merge_shrinks_the_files_and_keeps_the_contents(void **state)
{
    (void)state;
    struct env *e = env_new(1, 512);
    env_open_ok(e);
    uint64_t index = 0;
    write_churn(e, &index);
    struct bc_stats before = stats(e);
    ok(e, bc_merge(e->bc, &e->err));
    struct bc_stats after = stats(e);
    expect_churned(e);
    assert_true(after.total_bytes * 4 < before.total_bytes);
    assert_true(after.data_files < before.data_files);
    assert_int_equal(after.live_bytes, before.live_bytes);
    struct names ns = list_names(e);
    assert_int_equal(ns.tmp, 0);
    assert_false(ns.merge);
    assert_true(ns.hint >= 1);
    /* Still writable, and the new writes go after the merged files. */
    put1(e, ++index, "k0", "back");
    expect(e, "k0", "back");
    sync_(e);
    env_reopen(e);
    expect(e, "k0", "back");
    expect(e, "k1", "round 19 of key 1");
    env_free(e);
}

static void merge_writes_hints_that_the_next_open_uses(void **state)
{
    (void)state;
    struct env *e = env_new(1, 512);
    env_open_ok(e);
    uint64_t index = 0;
    write_churn(e, &index);
    sync_(e);
    env_reopen(e);
    struct bc_stats scanned = stats(e);
    /* Every file rolled away from has its hint (ROLL HINTS); the last one is scanned. */
    assert_int_equal(scanned.hint_files_loaded + 1, scanned.data_files);
    ok(e, bc_merge(e->bc, &e->err));
    env_reopen(e);
    struct bc_stats hinted = stats(e);
    expect_churned(e);
    assert_true(hinted.hint_files_loaded >= 1);
    assert_int_equal(hinted.hint_files_loaded, hinted.data_files); /* every file merged */
    assert_int_equal(hinted.scanned_bytes, 0);
    assert_true(scanned.scanned_bytes > 0);
    env_free(e);
}

static void bad_hint_falls_back_to_scanning_the_data_file(void **state)
{
    (void)state;
    struct env *e = env_new(1, 1 << 20);
    env_open_ok(e);
    uint64_t index = 0;
    write_churn(e, &index);
    sync_(e);
    env_reopen(e);
    ok(e, bc_merge(e->bc, &e->err));
    struct names ns = list_names(e);
    const char *hint = NULL;
    for (int i = 0; i < ns.n; i++)
        hint = strstr(ns.v[i], ".hint") != NULL ? ns.v[i] : hint;
    assert_non_null(hint);
    char name[FS_NAME_MAX + 1];
    strcpy(name, hint);
    env_close(e);
    assert_int_equal(simdisk_corrupt(e->disk, name, 30, 0x10), RK_OK); /* the first entry's key */
    env_open_ok(e);
    expect_churned(e);
    assert_int_equal(stats(e).hint_files_loaded, 0);
    assert_true(stats(e).scanned_bytes > 0);
    env_close(e);
    /* A truncated hint (the trailer gone) is not used either. */
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    assert_int_equal(fs->ops->open(fs, name, 0, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->truncate(fs, f, file_size(e, name) - 1, &e->err), RK_OK);
    fs->ops->close(fs, f);
    env_open_ok(e);
    expect_churned(e);
    assert_int_equal(stats(e).hint_files_loaded, 0);
    env_free(e);
}

static void merge_keeps_the_applied_index_when_it_drops_the_last_tombstone(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k", "v");
    del_s(e, 2, "k");
    end(e);
    sync_(e);
    env_reopen(e); /* no active file: everything is immutable */
    ok(e, bc_merge(e->bc, &e->err));
    assert_int_equal(bc_applied_index(e->bc), 2);
    env_reopen(e);
    assert_int_equal(bc_applied_index(e->bc), 2);
    assert_int_equal(bc_count(e->bc), 0);
    env_free(e);
}

static void merge_refuses_while_a_batch_is_open(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k", "v");
    env_reopen(e);
    put_s(e, 2, "k", "w");
    assert_int_equal(bc_merge(e->bc, &e->err), RK_EINVAL);
    end(e);
    ok(e, bc_merge(e->bc, &e->err));
    expect(e, "k", "w");
    env_free(e);
}

/* bc_merge closes the active file first, so the only file a store has is merged too. */
static void merge_of_an_empty_store_does_nothing_and_takes_the_active_file(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    ok(e, bc_merge(e->bc, &e->err));
    assert_int_equal(list_names(e).data, 0);
    put1(e, 1, "k", "v");
    ok(e, bc_merge(e->bc, &e->err)); /* only the active file */
    assert_int_equal(list_names(e).hint, 1);
    assert_int_equal(list_names(e).data, 1);
    expect(e, "k", "v");
    env_free(e);
}

static void repeated_merges_and_reopens_keep_the_contents(void **state)
{
    (void)state;
    struct env *e = env_new(1, 300);
    env_open_ok(e);
    uint64_t index = 0;
    for (int cycle = 0; cycle < 5; cycle++) {
        write_churn(e, &index);
        ok(e, bc_merge(e->bc, &e->err));
        if (cycle % 2 == 0)
            env_reopen(e);
        char key[16];
        char val[48];
        for (int k = 1; k < 10; k += 2) {
            snprintf(key, sizeof(key), "k%d", k);
            snprintf(val, sizeof(val), "round 19 of key %d", k);
            expect(e, key, val);
        }
        assert_int_equal(bc_count(e->bc), 5);
        assert_int_equal(bc_applied_index(e->bc), index);
    }
    env_free(e);
}

static void open_removes_what_an_unfinished_merge_left(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k", "v");
    sync_(e);
    env_close(e);
    create_file(e, "0000000009.data.tmp", "half a merge");
    create_file(e, "0000000009.hint.tmp", "half a hint");
    create_file(e, "MERGE.tmp", "half a manifest");
    create_file(e, "0000000005.hint", "a hint without its data file");
    env_open_ok(e);
    struct names ns = list_names(e);
    assert_int_equal(ns.tmp, 0);
    assert_int_equal(ns.hint, 1); /* 0000000001.hint: the last file's, written by this open */
    assert_true(strcmp(ns.v[1], "0000000001.hint") == 0);
    assert_int_equal(ns.data, 1);
    expect(e, "k", "v");
    env_free(e);
}

static void corrupt_manifest_fails_the_open(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k", "v");
    sync_(e);
    env_close(e);
    create_file(e, "MERGE", "not a manifest at all");
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "MERGE"));
    assert_int_equal(e->cnt.live, 0);
    env_free(e);
}

/* Replaces (or creates) a file with n bytes, durably. */
static void write_bytes(struct env *e, const char *name, const uint8_t *buf, size_t n)
{
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    int rc = fs->ops->remove(fs, name, &e->err);
    assert_true(rc == RK_OK || rc == RK_ENOENT);
    assert_int_equal(fs->ops->open(fs, name, FS_CREATE, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->append(fs, f, buf, n, &e->err), RK_OK);
    assert_int_equal(fs->ops->sync(fs, f, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(fs->ops->sync_dir(fs, &e->err), RK_OK);
}

/* A MERGE manifest (bitcask_int.h): [crc32c][magic][first new id][new ids][old ids][old id]...,
 * the crc over everything after itself. Returns its size. */
static size_t make_manifest(uint8_t *buf, uint32_t magic, uint32_t first_new, uint32_t n_new,
                            uint32_t n_old, const uint32_t *old, uint32_t old_given)
{
    bc_put_u32(buf + 4, magic);
    bc_put_u32(buf + 8, first_new);
    bc_put_u32(buf + 12, n_new);
    bc_put_u32(buf + 16, n_old);
    for (uint32_t i = 0; i < old_given; i++)
        bc_put_u32(buf + BC_MERGE_HEADER_BYTES + 4 * i, old[i]);
    size_t n = BC_MERGE_HEADER_BYTES + 4 * (size_t)old_given;
    bc_put_u32(buf, rk_crc32c(0, buf + 4, n - 4));
    return n;
}

/* A manifest whose crc checks out but whose fields do not is corruption, named in the error, and
 * the refused open leaves the store as it was. */
static void manifest_with_bad_fields_fails_the_open_naming_the_problem(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k", "v");
    sync_(e);
    env_close(e);
    const uint32_t one = 1;
    const uint32_t nine = 9;
    struct {
        uint32_t magic, first_new, n_new, n_old, old_given;
        const uint32_t *old;
        const char *problem;
    } cases[] = {
        {0x12345678u, 5, 1, 1, 1, &one, "bad magic"},
        {BC_MERGE_MAGIC, 5, 1, 2, 1, &one, "size does not match its id count"},
        {BC_MERGE_MAGIC, 0, 1, 1, 1, &one, "bad merged ids"},
        {BC_MERGE_MAGIC, 5, 0, 1, 1, &one, "bad merged ids"},
        {BC_MERGE_MAGIC, BC_MAX_FILE_ID, 2, 1, 1, &one, "bad merged ids"},
        {BC_MERGE_MAGIC, 5, 1, 1, 1, &nine, "bad replaced id"},
        /* Well formed, but neither 0000000005.data.tmp nor 0000000005.data exists. */
        {BC_MERGE_MAGIC, 5, 1, 1, 1, &one, "merged file 0000000005.data is missing"},
    };
    uint8_t buf[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = make_manifest(buf, cases[i].magic, cases[i].first_new, cases[i].n_new,
                                 cases[i].n_old, cases[i].old, cases[i].old_given);
        write_bytes(e, "MERGE", buf, n);
        assert_int_equal(env_open(e), RK_ECORRUPT);
        if (strstr(e->err.text, "MERGE") == NULL || strstr(e->err.text, cases[i].problem) == NULL)
            fail_msg("case %zu: expected \"%s\", got \"%s\"", i, cases[i].problem, e->err.text);
        assert_null(e->bc);
        assert_int_equal(e->cnt.live, 0);
    }
    write_bytes(e, "MERGE", (const uint8_t *)"short", 5);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "too short"));
    struct fs *fs = simdisk_fs(e->disk);
    assert_int_equal(fs->ops->remove(fs, "MERGE", &e->err), RK_OK);
    env_open_ok(e);
    expect(e, "k", "v");
    assert_int_equal(list_names(e).data, 1);
    env_free(e);
}

/* A hint is trusted only for the data file its trailer names: a valid hint copied beside
 * another data file is ignored and that file scanned. */
static void hint_of_another_data_file_is_ignored(void **state)
{
    (void)state;
    struct env *e = env_new(1, 100);
    env_open_ok(e);
    uint64_t index = 0;
    write_churn(e, &index);
    sync_(e);
    env_reopen(e);
    ok(e, bc_merge(e->bc, &e->err));
    env_reopen(e);
    uint32_t hints = stats(e).hint_files_loaded;
    assert_true(hints >= 2);
    struct names ns = list_names(e);
    char first[FS_NAME_MAX + 1] = "";
    char second[FS_NAME_MAX + 1] = "";
    for (int i = 0; i < ns.n && i < 64; i++) {
        if (strstr(ns.v[i], ".hint") == NULL)
            continue;
        if (first[0] == '\0')
            strcpy(first, ns.v[i]);
        else if (second[0] == '\0')
            strcpy(second, ns.v[i]);
    }
    assert_true(second[0] != '\0');
    env_close(e);
    uint64_t size = file_size(e, first);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    size_t got = 0;
    assert_int_equal(fs->ops->open(fs, first, 0, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, size, &got, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(got, size);
    write_bytes(e, second, buf, size);
    free(buf);
    env_open_ok(e);
    expect_churned(e);
    assert_int_equal(stats(e).hint_files_loaded, hints - 1);
    assert_true(stats(e).scanned_bytes > 0);
    env_free(e);
}

/* ---- hints that disagree with their data file -------------------------------------------- */

/* A hint entry (bitcask.h): [crc u32][index u64][flags | key size u32][value size u32]
 * [data offset u64][key]. Appends it at buf + *n; its crc is over everything after itself. */
static void put_hint_entry(uint8_t *buf, size_t *n, uint64_t index, uint32_t flags, const char *key,
                           uint32_t val_len, uint64_t data_off)
{
    uint8_t *h = buf + *n;
    uint32_t key_len = (uint32_t)strlen(key);
    bc_rec_encode(h, index, flags, key_len, val_len);
    bc_put_u64(h + 20, data_off);
    memcpy(h + BC_HINT_HEADER_BYTES, key, key_len);
    size_t len = BC_HINT_HEADER_BYTES + key_len;
    bc_put_u32(h, rk_crc32c(0, h + 4, len - 4));
    *n += len;
}

/* Seals the entries buf[0, *n) of a hint of data file id with a trailer whose every CRC holds,
 * as merge would (the entries' count and CRC computed here). */
static void seal_hint(uint8_t *buf, size_t *n, uint32_t id, uint64_t data_bytes, uint64_t max_index)
{
    uint32_t body = 0;
    uint64_t entries = 0;
    for (size_t off = 0; off < *n; entries++) {
        size_t len = BC_HINT_HEADER_BYTES + (bc_get_u32(buf + off + 12) & BC_REC_KEY_MASK);
        body = rk_crc32c(body, buf + off, len);
        off += len;
    }
    bc_hint_trailer_encode(buf + *n, BC_HINT_MAGIC, id, body, entries, data_bytes, max_index);
    *n += BC_HINT_TRAILER_BYTES;
}

/* A data record of key and val (index, flags), sealed, at buf + *n. */
static void put_data_record(uint8_t *buf, size_t *n, uint64_t index, uint32_t flags,
                            const char *key, const char *val)
{
    uint32_t key_len = (uint32_t)strlen(key);
    uint32_t val_len = (uint32_t)strlen(val);
    bc_rec_encode(buf + *n, index, flags, key_len, val_len);
    memcpy(buf + *n + BC_HEADER_BYTES, key, key_len);
    memcpy(buf + *n + BC_HEADER_BYTES + key_len, val, val_len);
    size_t len = (size_t)bc_rec_bytes(key_len, val_len);
    bc_rec_seal(buf + *n, len);
    *n += len;
}

/* The commit record every data file starts with (bitcask.h, FORMAT 2), at buf + *n. */
static void put_commit(uint8_t *buf, size_t *n, uint64_t index)
{
    bc_commit_encode(buf + *n, index, *n);
    *n += BC_COMMIT_BYTES;
}

/* 0000000001.data holds k1 = v1 (index 1) and k2 = v2 (index 2), synced; the store closed. */
static struct env *env_with_two_keys(void)
{
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k1", "v1");
    put1(e, 2, "k2", "v2");
    sync_(e);
    env_close(e);
    return e;
}

static int verify(struct env *e, struct bc_verify_stats *st)
{
    memset(st, 0, sizeof(*st));
    return bc_verify(&e->cfg, NULL, st, &e->err);
}

static bool visit_nothing(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                          uint32_t val_len)
{
    (void)ctx;
    (void)key;
    (void)key_len;
    (void)val;
    (void)val_len;
    return true;
}

static void assert_text_has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", want, text);
}

/* fuzz/regress/bitcask/merge-leaves-keydir-on-removed-file: the last data file is one garbage
 * record (what a torn tail looks like) beside a hint whose CRCs hold. Its first entry describes a
 * record there, its second points past the end of the file. The open used to apply the first
 * entry, give up on the hint, cut the "torn tail" and keep the key pointing into the cut bytes;
 * a merge then removed the file under it and the next scan tripped an assertion. A file with a
 * hint was written whole by a merge: it has no torn tail, and the store is refused, naming the
 * hint, where it goes wrong, and the data file, whose bytes stay. bc_verify refuses it too. */
static void hint_beside_a_garbage_last_file_fails_the_open_and_cuts_nothing(void **state)
{
    (void)state;
    struct env *e = env_with_two_keys();
    uint8_t data[BC_COMMIT_BYTES + BC_HEADER_BYTES];
    size_t dn = 0;
    put_commit(data, &dn, 0);
    bc_rec_encode(data + dn, 3, BC_REC_END, 0, 0); /* crc left 0: garbage */
    write_bytes(e, "0000000002.data", data, sizeof(data));
    uint8_t hint[256];
    size_t n = 0;
    put_hint_entry(hint, &n, 3, BC_REC_END, "", 0, BC_COMMIT_BYTES);
    put_hint_entry(hint, &n, 3, BC_REC_END, "k2", 5, BC_COMMIT_BYTES + BC_HEADER_BYTES);
    seal_hint(hint, &n, 2, sizeof(data), 3);
    write_bytes(e, "0000000002.hint", hint, n);

    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_null(e->bc);
    assert_int_equal(e->cnt.live, 0);
    assert_text_has(e->err.text, "0000000002.hint: offset 28: entry points past the end of the "
                                 "data file");
    assert_text_has(e->err.text, "0000000002.data: offset 28: crc mismatch");
    assert_int_equal(file_size(e, "0000000002.data"), sizeof(data)); /* nothing cut */
    assert_int_equal(file_size(e, "0000000002.hint"), n);

    struct bc_verify_stats st;
    assert_int_equal(verify(e, &st), RK_ECORRUPT);
    assert_string_equal(st.problem_file, "0000000002.data");
    assert_int_equal(st.problem_offset, BC_COMMIT_BYTES);
    env_free(e);
}

/* A hint that applied entries and then stopped checking out is not used, and the scan of its
 * data file must back every entry it applied: here the file holds k3 where the hint said k1 (at
 * index 4, above k1's record in file 1). Taken as it was, k1 would point at k3's record and its
 * value in file 1 would be lost; the open is refused instead, naming the hint. */
static void hint_entries_that_the_scan_does_not_back_fail_the_open(void **state)
{
    (void)state;
    struct env *e = env_with_two_keys();
    uint8_t data[64];
    size_t dn = 0;
    put_commit(data, &dn, 0);
    put_data_record(data, &dn, 3, BC_REC_END, "k3", "v3");
    write_bytes(e, "0000000002.data", data, dn);
    uint8_t hint[256];
    size_t n = 0;
    put_hint_entry(hint, &n, 4, BC_REC_END, "k1", 2, BC_COMMIT_BYTES);
    put_hint_entry(hint, &n, 4, BC_REC_END, "k2", 2, dn); /* past the end */
    seal_hint(hint, &n, 2, dn, 4);
    write_bytes(e, "0000000002.hint", hint, n);

    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_int_equal(e->cnt.live, 0);
    assert_text_has(e->err.text, "0000000002.hint: 1 entries (one at index 4, a 2-byte key) for "
                                 "records 0000000002.data does not have");
    assert_text_has(e->err.text, "offset 30: entry points past the end of the data file");
    struct bc_verify_stats st;
    assert_int_equal(verify(e, &st), RK_ECORRUPT);
    assert_string_equal(st.problem_file, "0000000002.hint");
    env_free(e);
}

/* A hint that checks out on its own (sizes, offsets, CRCs, highest index) is believed by the open
 * without reading its data file, so a wrong key in it is only found by a read (ECORRUPT), by
 * bc_verify (which matches the hint against the data file), and by a merge: the merge must not
 * remove the file under a key it found no record of. It is refused before it commits; the store
 * stays as it was and a scan reports the corruption instead of tripping an assertion. */
static void merge_refuses_a_key_whose_hint_entry_has_no_record(void **state)
{
    (void)state;
    struct env *e = env_with_two_keys();
    uint8_t data[64];
    size_t dn = 0;
    put_commit(data, &dn, 0);
    put_data_record(data, &dn, 3, BC_REC_END, "k3", "v3");
    write_bytes(e, "0000000002.data", data, dn);
    uint8_t hint[256];
    size_t n = 0;
    put_hint_entry(hint, &n, 3, BC_REC_END, "k9", 2, BC_COMMIT_BYTES);
    seal_hint(hint, &n, 2, dn, 3);
    write_bytes(e, "0000000002.hint", hint, n);

    struct bc_verify_stats st;
    assert_int_equal(verify(e, &st), RK_ECORRUPT);
    assert_string_equal(st.problem_file, "0000000002.hint");
    assert_int_equal(st.problem_offset, 0);
    assert_text_has(e->err.text, "entry's key is not its record's");

    env_open_ok(e);
    assert_int_equal(stats(e).hint_files_loaded, 1);
    put1(e, 5, "k4", "v4");
    sync_(e);
    assert_int_equal(bc_merge(e->bc, &e->err), RK_ECORRUPT);
    assert_text_has(e->err.text, "merge: 0000000002.data: offset 28: no record of the keydir's key "
                                 "(index 3) there");
    struct names ns = list_names(e);
    assert_int_equal(ns.tmp, 0);
    assert_int_equal(ns.data, 3);
    const uint8_t *val;
    uint32_t len;
    assert_int_equal(get_s(e, "k9", &val, &len), RK_ECORRUPT);
    assert_text_has(e->err.text, "0000000002.data: offset 28: record holds another key");
    assert_int_equal(list_names(e).hint, 1); /* a merge's hint stays (bitcask.c, drop_hint) */
    expect(e, "k1", "v1");
    expect(e, "k4", "v4");
    assert_int_equal(bc_scan(e->bc, visit_nothing, NULL, &e->err), RK_ECORRUPT);
    assert_text_has(e->err.text, "0000000002.data: offset 28");
    env_free(e);
}

/* The keydir grows from 1024 to 2048 slots at the 897th key and then drains the old table a
 * little at each call: deleting every key at once removes many from the old table. None may
 * survive, in memory or after a reopen that replays the same puts and deletes. */
static void deleting_every_key_while_the_keydir_drains_leaves_none(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    char key[16];
    uint64_t index = 0;
    for (int i = 0; i < 897; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        put1(e, ++index, key, "v");
    }
    assert_int_equal(bc_count(e->bc), 897);
    for (int i = 0; i < 897; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        assert_true(del_s(e, ++index, key));
        end(e);
        assert_int_equal(bc_count(e->bc), 896 - (uint64_t)i);
    }
    for (int i = 0; i < 897; i += 97) {
        snprintf(key, sizeof(key), "key%d", i);
        expect(e, key, NULL);
    }
    sync_(e);
    env_reopen(e);
    assert_int_equal(bc_count(e->bc), 0);
    assert_int_equal(bc_applied_index(e->bc), index);
    snprintf(key, sizeof(key), "key%d", 500);
    expect(e, key, NULL);
    env_free(e);
}

/* ---- recovery --------------------------------------------------------------------------- */

static void key_of(char *out, size_t n, int i)
{
    snprintf(out, n, "key-%04d", i);
}

/* Deterministic value of key i written at index: its length varies, up to ~300 bytes. */
static void value_of(char *out, size_t n, int i, uint64_t index)
{
    int len = snprintf(out, n, "v%d@%llu:", i, (unsigned long long)index);
    size_t want = (size_t)((i * 37 + (int)index * 11) % 300);
    for (; (size_t)len < want && (size_t)len + 1 < n; len++)
        out[len] = (char)('a' + (len + i) % 26);
    out[len] = '\0';
}

/* Batches 1..n, batch i putting key i. */
static void put_numbered(struct env *e, int from, int to)
{
    char key[32];
    char val[400];
    for (int i = from; i <= to; i++) {
        key_of(key, sizeof(key), i);
        value_of(val, sizeof(val), i, (uint64_t)i);
        put1(e, (uint64_t)i, key, val);
    }
}

/* Keys 1..n present with their values, n+1..upto absent, applied index n. */
static void expect_numbered(struct env *e, int n, int upto)
{
    char key[32];
    char val[400];
    for (int i = 1; i <= upto; i++) {
        key_of(key, sizeof(key), i);
        value_of(val, sizeof(val), i, (uint64_t)i);
        expect(e, key, i <= n ? val : NULL);
    }
    assert_int_equal(bc_applied_index(e->bc), (uint64_t)n);
    assert_int_equal(bc_count(e->bc), (uint64_t)n);
}

/* A merge writes its hints in the keydir's order (ascending hash): the open that loads them
 * sizes the keydir for all their entries first (recover.c presize_from_hints), so the load
 * never grows the table, and never clusters every key in its first slots (quadratic). */
static void hinted_open_sizes_the_keydir_for_every_hint_entry_first(void **state)
{
    (void)state;
    struct env *e = env_new(1, 64 << 10);
    env_open_ok(e);
    put_numbered(e, 1, 20000);
    sync_(e);
    ok(e, bc_merge(e->bc, &e->err));
    env_reopen(e);
    assert_true(stats(e).hint_files_loaded >= 2);
    assert_int_equal(stats(e).scanned_bytes, 0);
    assert_int_equal(e->bc->kd.count, 20000);
    assert_null(e->bc->kd.old);
    assert_int_equal(e->bc->kd.moved, 0); /* no growth while loading */
    assert_true(e->bc->kd.count * 8 <= ((uint64_t)1 << e->bc->kd.bits) * 7);
    assert_true(bc_kd_valid(&e->bc->kd));
    env_free(e);
}

/* A snapshot install's bulk load (replica.c snap_install): the keys come in scan's order; the
 * store op reserve, on an empty (or emptied) store, sizes the keydir for all of them, and the
 * load then never grows it. */
struct sorted_keys {
    char v[1000][16];
    int n;
};

static int sorted_order(const void *a, const void *b)
{
    const char *x = a, *y = b;
    return bc_key_order((const uint8_t *)x, (uint32_t)strlen(x), (const uint8_t *)y,
                        (uint32_t)strlen(y));
}

static void reserve_before_a_load_in_scan_order_keeps_the_keydir_from_growing(void **state)
{
    (void)state;
    static struct sorted_keys ns;
    ns.n = 1000;
    for (int i = 0; i < ns.n; i++)
        snprintf(ns.v[i], sizeof(ns.v[i]), "k%d", i);
    qsort(ns.v, (size_t)ns.n, sizeof(ns.v[0]), sorted_order); /* scan's order */
    struct env *e = env_new(3, 0);
    env_open_ok(e);
    struct kv_store *st = bc_kv_store(e->bc);
    /* A new follower's empty store, then a snapshot's records in scan's order. */
    assert_int_equal(st->ops->reserve(st, (uint64_t)ns.n), RK_OK);
    uint32_t bits = e->bc->kd.bits;
    for (int i = 0; i < ns.n; i++)
        put_s(e, 1, ns.v[i], "v");
    end(e);
    assert_int_equal(e->bc->kd.count, (uint64_t)ns.n);
    assert_int_equal(e->bc->kd.moved, 0); /* no growth while loading */
    assert_int_equal(e->bc->kd.bits, bits);
    assert_true(bc_kd_valid(&e->bc->kd));
    assert_int_equal(st->ops->reserve(st, 1u << 20), RK_OK); /* not empty: nothing */
    assert_int_equal(e->bc->kd.bits, bits);
    /* Emptied by deletes (an install's first step): a reserve takes effect again. */
    for (int i = 0; i < ns.n; i++)
        assert_true(del_s(e, 2, ns.v[i]));
    end(e);
    assert_int_equal(st->ops->reserve(st, (uint64_t)ns.n * 8), RK_OK);
    assert_true(e->bc->kd.bits > bits);
    assert_true(bc_kd_valid(&e->bc->kd));
    env_free(e);
}

static void crash_loses_unsynced_batches_and_keeps_the_synced(void **state)
{
    (void)state;
    struct env *e = env_new(7, 0);
    env_open_ok(e);
    put_numbered(e, 1, 10);
    sync_(e);
    put_numbered(e, 11, 20);
    env_crash_reopen(e);
    expect_numbered(e, 10, 20);
    assert_int_equal(stats(e).cut_bytes, 0); /* no torn writes: nothing to cut */
    env_free(e);
}

static void crash_loses_a_file_created_but_not_made_durable(void **state)
{
    (void)state;
    struct env *e = env_new(7, 400);
    env_open_ok(e);
    put_numbered(e, 1, 10);
    sync_(e);
    int files = list_names(e).data;
    put_numbered(e, 11, 30); /* rotates: new files, their names not yet durable */
    assert_true(list_names(e).data > files);
    env_crash_reopen(e);
    expect_numbered(e, 10, 30);
    assert_int_equal(list_names(e).data, files);
    env_free(e);
}

static void torn_tail_is_cut_and_leaves_a_prefix_of_batches(void **state)
{
    (void)state;
    int cut = 0;
    for (uint64_t seed = 1; seed <= 150; seed++) {
        struct env *e = env_new(seed, 0);
        env_open_ok(e);
        put_numbered(e, 1, 5);
        sync_(e);
        put_numbered(e, 6, 25);
        struct simdisk_faults f = {.torn_writes = true};
        set_faults(e, &f);
        env_close(e);
        simdisk_crash(e->disk);
        no_faults(e);
        env_open_ok(e);
        int n = (int)bc_applied_index(e->bc);
        assert_true(n >= 5 && n <= 25);
        expect_numbered(e, n, 25);
        cut += stats(e).cut_bytes > 0;
        env_reopen(e); /* the cut was made durable: nothing more to cut */
        assert_int_equal(stats(e).cut_bytes, 0);
        expect_numbered(e, n, 25);
        put_numbered(e, n + 1, n + 3); /* and the store goes on from there */
        sync_(e);
        env_crash_reopen(e);
        expect_numbered(e, n + 3, n + 3);
        env_free(e);
    }
    assert_true(cut > 20);
}

static void partial_append_is_cut_on_reopen(void **state)
{
    (void)state;
    int cut = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct env *e = env_new(seed, 0);
        env_open_ok(e);
        put_numbered(e, 1, 5);
        put_s(e, 6, "big", "a batch whose append fails part way, leaving a prefix on disk");
        put_s(e, 6, "other", "the second record of that batch");
        struct simdisk_faults f = {.write_error = 1.0};
        set_faults(e, &f);
        assert_int_not_equal(bc_end_batch(e->bc, &e->err), RK_OK);
        no_faults(e);
        env_reopen(e); /* no crash: the prefix is still there */
        expect_numbered(e, 5, 5);
        expect(e, "big", NULL);
        cut += stats(e).cut_bytes > 0;
        env_free(e);
    }
    assert_true(cut > 10);
}

static void flipped_bit_in_an_immutable_file_fails_the_open_naming_file_and_offset(void **state)
{
    (void)state;
    struct env *e = env_new(1, 300);
    env_open_ok(e);
    put_numbered(e, 1, 12);
    sync_(e);
    env_close(e);
    /* 0000000001.data holds key-0001's record at 0 and key-0002's after it. Without its hint
     * it is scanned at open (with one, the damage is found at read: see
     * damage_in_a_hinted_file_is_found_at_read_then_by_the_next_open). */
    assert_true(list_names(e).data > 2);
    remove_hints(e);
    char val[400];
    value_of(val, sizeof(val), 1, 1);
    uint64_t second = BC_COMMIT_BYTES + BC_HEADER_BYTES + 8 + strlen(val);
    assert_true(file_size(e, "0000000001.data") > second + 30);
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.data", second + 25, 0x04), RK_OK);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    char want[64];
    snprintf(want, sizeof(want), "0000000001.data: offset %llu:", (unsigned long long)second);
    assert_non_null(strstr(e->err.text, want));
    assert_non_null(strstr(e->err.text, "crc mismatch"));
    assert_int_equal(e->cnt.live, 0);
    env_free(e);
}

/* FORMAT 2: the last record of the last file, synced, has a flipped bit. The old rule cut it as
 * a torn tail (it lay in the last 512 bytes); a commit record after it now makes it corruption,
 * with a damage record saying where and which indexes. */
static void flipped_bit_in_the_last_record_of_the_last_file_is_corruption(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put_numbered(e, 1, 3);
    sync_(e);
    env_close(e);
    uint64_t size = file_size(e, "0000000001.data");
    char val[400];
    value_of(val, sizeof(val), 3, 3);
    uint64_t last = size - BC_COMMIT_BYTES - (BC_HEADER_BYTES + 8 + strlen(val));
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.data", size - BC_COMMIT_BYTES - 3, 1),
                     RK_OK);
    struct bc_damage d;
    e->cfg.damage = &d;
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_int_equal(d.kind, BC_DAMAGE_RECORD);
    assert_string_equal(d.file, "0000000001.data");
    assert_int_equal(d.offset, last);
    assert_int_equal(d.intact_index, 2);
    assert_int_equal(d.last_index, 3);
    assert_non_null(strstr(e->err.text, "commit record after it checks out"));
    env_free(e);
}

/* The last commit record of the last file damaged: nothing vouches for it, so it is cut as a
 * torn tail — and costs nothing, for the batches before it check out and are kept (and sealed
 * again). */
static void flipped_bit_in_the_last_commit_record_costs_nothing(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put_numbered(e, 1, 3);
    sync_(e);
    env_close(e);
    uint64_t size = file_size(e, "0000000001.data");
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.data", size - 3, 0x01), RK_OK);
    env_open_ok(e);
    expect_numbered(e, 3, 3);
    assert_int_equal(stats(e).cut_bytes, BC_COMMIT_BYTES);
    assert_int_equal(stats(e).commit_records, 1); /* sealed again */
    env_free(e);
}

/* Batches appended and never synced (a failed sync, a process gone before it) lie after the
 * last commit record: a bad record there is a torn tail, cut wherever it is in the file. */
static void unsynced_bad_batch_is_torn_anywhere(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put_numbered(e, 1, 3);
    sync_(e);
    uint64_t synced = file_size(e, "0000000001.data");
    put_numbered(e, 4, 30); /* ~4 KB, appended, never synced */
    env_close(e);
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.data", synced + 25, 0x01), RK_OK);
    env_open_ok(e);
    expect_numbered(e, 3, 3);
    expect(e, "key-0004", NULL);
    assert_true(stats(e).cut_bytes > 3000);
    assert_int_equal(file_size(e, "0000000001.data"), synced);
    env_free(e);
}

/* Group commit keeps its cost: each bc_sync with batches behind it is one fs sync, however many
 * batches, plus one small append (the commit record). */
static void commit_records_cost_no_sync(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    for (uint64_t b = 0; b < 50; b++) {
        put_numbered(e, (int)(4 * b + 1), (int)(4 * b + 4));
        sync_(e);
    }
    struct bc_stats st = stats(e);
    assert_int_equal(st.fs_syncs, 50);
    assert_int_equal(st.commit_records, 51); /* the file's first, and one per sync */
    env_free(e);
}

static void flipped_bit_in_the_middle_of_the_last_file_is_corruption(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put_numbered(e, 1, 20); /* ~3 KB: the first record is far from the last 512 bytes */
    sync_(e);
    env_close(e);
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.data", BC_COMMIT_BYTES + 22, 0x80),
                     RK_OK);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "0000000001.data: offset 28: crc mismatch"));
    env_free(e);
}

static void garbled_header_in_the_middle_of_the_last_file_is_corruption(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put_numbered(e, 1, 20);
    sync_(e);
    env_close(e);
    /* The first record's key size gets a reserved flag bit: a header that cannot be. */
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.data", BC_COMMIT_BYTES + 15, 0x01),
                     RK_OK);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "0000000001.data: offset 28: reserved flag bits"));
    env_free(e);
}

static void get_of_a_corrupt_record_is_ecorrupt_naming_file_and_offset(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "first", "value one");
    put1(e, 2, "second", "value two");
    sync_(e);
    uint64_t off = BC_COMMIT_BYTES + BC_HEADER_BYTES + 5 + 9;
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.data", off + BC_HEADER_BYTES + 8, 1),
                     RK_OK);
    const uint8_t *val;
    uint32_t len;
    assert_int_equal(get_s(e, "second", &val, &len), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "0000000001.data: offset 62: crc mismatch"));
    expect(e, "first", "value one");
    env_free(e);
}


/* ---- torn or corrupt: every record position (bitcask.h, FORMAT 2) ---------------------- */

struct pos_rec {
    char file[32];
    uint64_t off;
    uint64_t index;
};

struct pos_list {
    struct pos_rec v[64];
    int n;
};

static void pos_record(void *ctx, const char *file, uint64_t offset,
                       const struct bc_verify_record *r)
{
    struct pos_list *l = ctx;
    if (l->n < 64 && (r->flags & BC_REC_MARK) == 0) {
        snprintf(l->v[l->n].file, sizeof(l->v[l->n].file), "%s", file);
        l->v[l->n].off = offset;
        l->v[l->n].index = r->index;
        l->n++;
    }
}

/* Keys 1..12, one batch each, synced every 3, in data files of ~1500 bytes; the records' places
 * (file, offset, index) in *l. */
static struct env *pos_build(uint64_t seed, struct pos_list *l)
{
    struct env *e = env_new(seed, 1500);
    env_open_ok(e);
    for (int b = 0; b < 4; b++) {
        put_numbered(e, 3 * b + 1, 3 * b + 3);
        sync_(e);
    }
    env_close(e);
    memset(l, 0, sizeof(*l));
    struct bc_verify_cb cb = {.ctx = l, .record = pos_record};
    struct bc_verify_stats st;
    assert_int_equal(bc_verify(&e->cfg, &cb, &st, &e->err), RK_OK);
    assert_int_equal(l->n, 12);
    return e;
}

/* A flipped bit in synced data — the first, a middle and the last record, of an older file and
 * of the last one, in the header (index, sizes) or the payload (key, value) — is corruption with
 * a damage record naming file, offset and the applied index intact before it; never a cut. */
static void synced_bit_flip_is_corruption_at_every_record_position(void **state)
{
    (void)state;
    struct pos_list l;
    struct env *probe = pos_build(1, &l);
    int last_file_first = 11;
    while (last_file_first > 0 && strcmp(l.v[last_file_first - 1].file, l.v[11].file) == 0)
        last_file_first--;
    assert_true(strcmp(l.v[0].file, l.v[11].file) != 0); /* more than one file */
    env_free(probe);
    const int picks[] = {0, 1, 5, last_file_first, 11};
    const uint32_t ats[] = {5, 13, 17, BC_HEADER_BYTES + 2, BC_HEADER_BYTES + 9};
    int cases = 0;
    for (size_t p = 0; p < sizeof(picks) / sizeof(picks[0]); p++) {
        for (size_t a = 0; a < sizeof(ats) / sizeof(ats[0]); a++) {
            struct env *e = pos_build(1, &l);
            remove_hints(e); /* scanned at open, where the damage is to be found */
            const struct pos_rec *r = &l.v[picks[p]];
            assert_int_equal(simdisk_corrupt(e->disk, r->file, r->off + ats[a], 0x02), RK_OK);
            struct bc_damage d;
            e->cfg.damage = &d;
            int rc = env_open(e);
            if (rc != RK_ECORRUPT)
                fail_msg("record %d (%s offset %llu) byte %u: %s: %s", picks[p], r->file,
                         (unsigned long long)r->off, ats[a], rk_strerror(rc), e->err.text);
            assert_int_equal(d.kind, BC_DAMAGE_RECORD);
            assert_string_equal(d.file, r->file);
            assert_int_equal(d.offset, r->off);
            assert_true(d.intact_index < r->index);
            env_free(e);
            cases++;
        }
    }
    assert_int_equal(cases, 25);
}

/* Hints: a bad hint is not used (the data file is scanned instead) and costs nothing; a flipped
 * bit in a merged data file whose hint checks out is not seen by the open (it believes the hint)
 * but by a read of that key (RK_ECORRUPT) and by bc_verify. */
static void hint_damage_is_harmless_merged_data_damage_is_found_by_read_and_verify(void **state)
{
    (void)state;
    struct env *e = env_new(3, 1500);
    env_open_ok(e);
    put_numbered(e, 1, 12);
    sync_(e);
    put_numbered(e, 13, 14); /* an active file beside the merged ones */
    ok(e, bc_merge(e->bc, &e->err));
    sync_(e);
    env_close(e);
    struct names ns = list_names(e);
    assert_true(ns.hint > 0);
    char hint[32] = "";
    for (int i = 0; i < ns.n && i < 64; i++)
        if (strstr(ns.v[i], ".hint") != NULL && hint[0] == '\0')
            snprintf(hint, sizeof(hint), "%s", ns.v[i]);
    char data[32];
    snprintf(data, sizeof(data), "%.10s.data", hint);
    assert_int_equal(simdisk_corrupt(e->disk, hint, 30, 0x01), RK_OK);
    env_open_ok(e);
    expect_numbered(e, 14, 14);
    assert_int_equal(stats(e).hint_files_loaded + 1, (uint32_t)ns.hint);
    env_close(e);
    assert_int_equal(simdisk_corrupt(e->disk, hint, 30, 0x01), RK_OK); /* the hint whole again */
    assert_int_equal(simdisk_corrupt(e->disk, data, BC_COMMIT_BYTES + 25, 0x01), RK_OK);
    env_open_ok(e); /* believes the hint */
    struct bc_verify_stats st;
    assert_int_equal(verify(e, &st), RK_ECORRUPT);
    assert_string_equal(st.problem_file, data);
    int corrupt = 0;
    char key[32];
    for (int i = 1; i <= 14; i++) {
        key_of(key, sizeof(key), i);
        const uint8_t *val;
        uint32_t len;
        corrupt += get_s(e, key, &val, &len) == RK_ECORRUPT;
    }
    assert_int_equal(corrupt, 1);
    env_free(e);
}

/* The simulated disk's persistent damage (bit rot, a bad sector, a lost or a misdirected write;
 * one event between crashes) never costs a synced batch silently: the reopened store has every
 * synced key with its value and an applied index at least the synced one, or the open fails
 * (RK_ECORRUPT with a damage, or RK_EIO). */
/* ---- hints of rolled files (bitcask.h, ROLL HINTS) ------------------------------------- */

/* Writes keys 1..40 over several rolled files of 1500 bytes, with an overwrite in the same file
 * and across files and a tombstone, so that hints hold every kind of record; synced (and, when
 * deferred, every job run). */
static void roll_fixture(struct env *e, bool deferred)
{
    env_open_ok(e);
    if (deferred)
        bc_set_deferred(e->bc, NULL);
    char key[32];
    char val[400];
    put_numbered(e, 1, 20);
    key_of(key, sizeof(key), 5);
    assert_true(del_s(e, 21, key));
    end(e);
    put1(e, 22, "again", "first");
    put1(e, 23, "again", "second"); /* the same file, probably */
    for (int i = 24; i <= 40; i++) {
        key_of(key, sizeof(key), i);
        value_of(val, sizeof(val), i, (uint64_t)i);
        put1(e, (uint64_t)i, key, val);
    }
    key_of(key, sizeof(key), 3);
    value_of(val, sizeof(val), 3, 41);
    put1(e, 41, key, val); /* a later file than key 3's first record */
    sync_(e);
    if (deferred)
        io_all(e);
}

static void expect_roll_fixture(struct env *e)
{
    char key[32];
    char val[400];
    for (int i = 1; i <= 40; i++) {
        if (i >= 21 && i <= 23)
            continue;
        key_of(key, sizeof(key), i);
        value_of(val, sizeof(val), i, i == 3 ? 41 : (uint64_t)i);
        expect(e, key, i == 5 ? NULL : val);
    }
    expect(e, "again", "second");
    assert_int_equal(bc_applied_index(e->bc), 41);
    assert_int_equal(bc_count(e->bc), 37);
}

/* A store that never merged: every data file it rolled away from gets a hint (written by the
 * worker when writes are deferred, as on a node and in the simulator), and the next open loads
 * those files from their hints, scanning only the last one; bc_verify finds every hint true to
 * its data file, entry by entry. */
static void rolled_files_get_hints_that_the_next_open_uses(void **state)
{
    (void)state;
    for (int deferred = 0; deferred <= 1; deferred++) {
        struct env *e = env_new(7, 1500);
        roll_fixture(e, deferred);
        struct bc_stats before = stats(e);
        assert_true(before.data_files >= 4);
        assert_int_equal(before.hints_written + 1, before.data_files);
        assert_int_equal(before.hint_failures, 0);
        struct names ns = list_names(e);
        assert_int_equal(ns.hint + 1, ns.data);
        assert_int_equal(ns.tmp, 0);
        env_crash_reopen(e); /* what the sync made durable: the hints' renames too */
        struct bc_stats after = stats(e);
        assert_int_equal(after.hint_files_loaded + 1, after.data_files);
        assert_int_equal(after.data_files_scanned, 1);
        assert_int_equal(after.hints_ignored, 0);
        assert_true(after.scanned_bytes < before.total_bytes / 2);
        expect_roll_fixture(e);
        env_close(e);
        struct bc_verify_stats vs;
        ok(e, bc_verify(&e->cfg, NULL, &vs, &e->err));
        assert_int_equal(vs.hint_files, vs.data_files); /* the last one's written by the open */
        env_open_ok(e);
        assert_int_equal(stats(e).hint_files_loaded, stats(e).data_files);
        assert_int_equal(stats(e).data_files_scanned, 0);
        expect_roll_fixture(e);
        env_free(e);
    }
}

/* A roll hint that does not check out, or is missing, costs a scan of its data file, never
 * data; the open says which hint it ignored and why. */
static void bad_or_missing_roll_hint_falls_back_to_scanning(void **state)
{
    (void)state;
    struct env *e = env_new(8, 1500);
    roll_fixture(e, false);
    env_close(e);
    uint32_t data_files = (uint32_t)list_names(e).data;
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.hint", 30, 0x10), RK_OK);
    struct fs *fs = simdisk_fs(e->disk);
    assert_int_equal(fs->ops->remove(fs, "0000000002.hint", &e->err), RK_OK);
    env_open_ok(e);
    struct bc_stats st = stats(e);
    assert_int_equal(st.hint_files_loaded + 3, data_files);
    assert_int_equal(st.data_files_scanned, 3);
    assert_int_equal(st.hints_ignored, 1);
    assert_non_null(strstr(st.hint_problem, "0000000001.hint: offset 0:"));
    expect_roll_fixture(e);
    env_free(e);
}

/* A crash at every fs call of writes that roll files, their hints included (deferred, as on a
 * node): the store reopens with every batch a done sync made durable, no .tmp left, and every
 * hint it kept true to its data file (bc_verify). */
static void crash_at_any_call_while_rolling_keeps_the_store_and_its_hints_true(void **state)
{
    (void)state;
    int crashes = 0;
    for (uint64_t k = 1;; k++) {
        struct env *e = env_new(k, 600);
        env_open_ok(e);
        bc_set_deferred(e->bc, NULL);
        put_numbered(e, 1, 6);
        sync_(e);
        io_all(e);
        struct simdisk_faults f = {.torn_writes = (k % 2) == 0, .crash_at_call = k};
        set_faults(e, &f);
        put_numbered(e, 7, 20);
        sync_(e);
        for (struct bc_io_job *j; (j = bc_io_take(e->bc)) != NULL;) {
            if (simdisk_crashed(e->disk) || bc_io_run(j) != RK_OK || simdisk_crashed(e->disk)) {
                bc_io_free(j);
                continue;
            }
            if (bc_io_done(e->bc, j, &e->err) != RK_OK) /* its open of the new file */
                assert_true(simdisk_crashed(e->disk));
        }
        if (!simdisk_crashed(e->disk)) { /* past the last fs call */
            no_faults(e);
            assert_true(stats(e).hints_written >= 3);
            env_free(e);
            break;
        }
        crashes++;
        bc_close(e->bc); /* the process dies with its jobs (freed above) */
        e->bc = NULL;
        simdisk_crash(e->disk);
        no_faults(e);
        env_open_ok(e);
        uint64_t applied = bc_applied_index(e->bc);
        assert_true(applied >= 6);
        expect_numbered(e, (int)applied, 20);
        assert_int_equal(list_names(e).tmp, 0);
        env_close(e);
        struct bc_verify_stats vs;
        ok(e, bc_verify(&e->cfg, NULL, &vs, &e->err));
        env_free(e);
    }
    assert_true(crashes > 20);
}

/* A hint is believed without reading its data file, so damage there is found at read: the read
 * fails (RK_ECORRUPT, never wrong data) and drops the hint, so that the next open scans the file
 * and reports the damage where it is (a struct bc_damage: the replica repairs from peers). */
static void damage_in_a_hinted_file_is_found_at_read_then_by_the_next_open(void **state)
{
    (void)state;
    struct env *e = env_new(9, 1500);
    roll_fixture(e, false);
    env_close(e);
    char key[32];
    char val[400];
    key_of(key, sizeof(key), 1);
    value_of(val, sizeof(val), 1, 1);
    uint64_t at = BC_COMMIT_BYTES + BC_HEADER_BYTES + strlen(key) + strlen(val) / 2;
    assert_int_equal(simdisk_corrupt(e->disk, "0000000001.data", at, 0x08), RK_OK);
    env_open_ok(e);
    assert_int_equal(stats(e).hint_files_loaded + 1, stats(e).data_files);
    const uint8_t *got;
    uint32_t got_len;
    assert_int_equal(get_s(e, key, &got, &got_len), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "0000000001.data: offset"));
    assert_non_null(strstr(e->err.text, "hint removed"));
    env_close(e);
    simdisk_crash(e->disk); /* the removal was made durable */
    struct bc_damage d;
    e->cfg.damage = &d;
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_int_equal(d.kind, BC_DAMAGE_RECORD);
    assert_string_equal(d.file, "0000000001.data");
    assert_int_equal(d.offset, BC_COMMIT_BYTES);
    env_free(e);
}

static void persistent_damage_is_detected_never_a_shorter_store(void **state)
{
    (void)state;
    int refused = 0, damaged = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct env *e = env_new(seed, 1500);
        env_open_ok(e);
        struct simdisk_faults f = {.torn_writes = true};
        switch (seed % 4) {
        case 0: f.rot_per_crash = 1; break;
        case 1: f.lse_per_crash = 1; break;
        case 2: f.lost_write = 0.2; break;
        default: f.misdirected_write = 0.2; break;
        }
        set_faults(e, &f);
        int synced = 0;
        int batches = 2 + (int)(seed % 9);
        for (int b = 0; b < batches; b++) {
            put_numbered(e, synced + 1, synced + 3);
            sync_(e);
            synced += 3;
        }
        put_numbered(e, synced + 1, synced + 2); /* never synced */
        bc_close(e->bc);
        e->bc = NULL;
        simdisk_crash(e->disk);
        damaged += simdisk_damage(e->disk) > 0;
        no_faults(e);
        struct bc_damage d;
        e->cfg.damage = &d;
        int rc = env_open(e);
        if (rc == RK_OK) {
            if (bc_applied_index(e->bc) < (uint64_t)synced)
                fail_msg("seed %llu: applied %llu, synced %d (%s)", (unsigned long long)seed,
                         (unsigned long long)bc_applied_index(e->bc), synced,
                         simdisk_damage_text(e->disk));
            char key[32];
            char val[400];
            for (int i = 1; i <= synced; i++) {
                key_of(key, sizeof(key), i);
                value_of(val, sizeof(val), i, (uint64_t)i);
                const uint8_t *got;
                uint32_t got_len;
                int grc = get_s(e, key, &got, &got_len);
                if (grc == RK_EIO) { /* a bad sector in a hinted file: found at read */
                    refused++;
                    break;
                }
                if (grc == RK_ECORRUPT) {
                    /* In a file recovery took from its hint: found at read, the hint dropped,
                     * and the next open finds the damage where it is. */
                    assert_non_null(strstr(e->err.text, "hint removed"));
                    env_close(e);
                    rc = env_open(e);
                    assert_int_equal(rc, RK_ECORRUPT);
                    assert_int_not_equal(d.kind, BC_DAMAGE_NONE);
                    refused++;
                    break;
                }
                expect(e, key, val);
            }
        } else if (rc == RK_ECORRUPT) {
            refused++;
            assert_int_not_equal(d.kind, BC_DAMAGE_NONE);
        } else if (rc == RK_EIO) {
            refused++;
        } else {
            fail_msg("seed %llu: %s: %s", (unsigned long long)seed, rk_strerror(rc), e->err.text);
        }
        env_free(e);
    }
    assert_true(damaged > 150);
    assert_true(refused > 30);
}

/* ---- limits and failures ---------------------------------------------------------------- */

static void key_over_the_limit_is_etoobig_and_writes_nothing(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    e->cfg.max_key_bytes = 8;
    env_open_ok(e);
    assert_int_equal(
        bc_put(e->bc, 1, (const uint8_t *)"123456789", 9, (const uint8_t *)"v", 1, &e->err),
        RK_ETOOBIG);
    assert_non_null(strstr(e->err.text, "key of 9 bytes is over the limit of 8 bytes"));
    bool existed;
    assert_int_equal(bc_del(e->bc, 1, (const uint8_t *)"123456789", 9, &existed, &e->err),
                     RK_ETOOBIG);
    end(e);
    sync_(e);
    assert_int_equal(list_names(e).n, 0);
    assert_int_equal(bc_applied_index(e->bc), 0);
    put1(e, 1, "12345678", "at the limit is fine");
    expect(e, "12345678", "at the limit is fine");
    env_free(e);
}

static void value_over_the_limit_is_etoobig_and_writes_nothing(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    e->cfg.max_value_bytes = 16;
    env_open_ok(e);
    assert_int_equal(bc_put(e->bc, 1, (const uint8_t *)"k", 1, (const uint8_t *)"seventeen bytes!!",
                            17, &e->err),
                     RK_ETOOBIG);
    assert_non_null(strstr(e->err.text, "value of 17 bytes is over the limit of 16 bytes"));
    end(e);
    assert_int_equal(list_names(e).n, 0);
    expect(e, "k", NULL);
    env_free(e);
}

static void default_limits_are_64_kib_keys_and_64_mib_values(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    size_t big = BC_MAX_VALUE_BYTES + 1;
    uint8_t *buf = calloc(1, big);
    assert_non_null(buf);
    assert_int_equal(bc_put(e->bc, 1, buf, BC_MAX_KEY_BYTES + 1, buf, 1, &e->err), RK_ETOOBIG);
    assert_int_equal(bc_put(e->bc, 1, buf, 1, buf, (uint32_t)big, &e->err), RK_ETOOBIG);
    ok(e, bc_put(e->bc, 1, buf, BC_MAX_KEY_BYTES, buf, 1000, &e->err));
    end(e);
    free(buf);
    assert_int_equal(bc_count(e->bc), 1);
    e->cfg.max_key_bytes = BC_MAX_KEY_BYTES + 1;
    struct bitcask *other;
    assert_int_equal(bc_open(&e->cfg, &other, &e->err), RK_EINVAL);
    env_free(e);
}

static void failed_sync_poisons_the_store_until_reopened(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    put1(e, 1, "k", "v");
    struct simdisk_faults f = {.sync_error = 1.0};
    set_faults(e, &f);
    assert_int_equal(bc_sync(e->bc, &e->err), RK_EIO);
    no_faults(e);
    const uint8_t *val;
    uint32_t len;
    bool existed;
    assert_int_equal(bc_sync(e->bc, &e->err), RK_EIO);
    assert_non_null(strstr(e->err.text, "must be reopened"));
    assert_int_equal(get_s(e, "k", &val, &len), RK_EIO);
    assert_int_equal(bc_put(e->bc, 2, (const uint8_t *)"k", 1, val, 0, &e->err), RK_EIO);
    assert_int_equal(bc_del(e->bc, 2, (const uint8_t *)"k", 1, &existed, &e->err), RK_EIO);
    assert_int_equal(bc_end_batch(e->bc, &e->err), RK_EIO);
    assert_int_equal(bc_merge(e->bc, &e->err), RK_EIO);
    env_reopen(e);
    expect(e, "k", "v");
    env_free(e);
}

static void failed_append_poisons_and_the_keydir_never_points_at_unwritten_bytes(void **state)
{
    (void)state;
    struct env *e = env_new(3, 0);
    env_open_ok(e);
    put1(e, 1, "k", "old");
    put_s(e, 2, "k", "new, never written");
    struct simdisk_faults f = {.crash_at_call = 1};
    set_faults(e, &f);
    assert_int_equal(bc_end_batch(e->bc, &e->err), RK_EIO);
    const uint8_t *val;
    uint32_t len;
    assert_int_equal(get_s(e, "k", &val, &len), RK_EIO);
    env_crash_reopen(e);
    expect(e, "k", NULL); /* "old" was never synced either */
    put1(e, 1, "k", "old");
    sync_(e);
    put_s(e, 2, "k", "new");
    f.crash_at_call = 1;
    set_faults(e, &f);
    assert_int_equal(bc_end_batch(e->bc, &e->err), RK_EIO);
    env_crash_reopen(e);
    expect(e, "k", "old");
    env_free(e);
}

/* ---- the keydir ------------------------------------------------------------------------- */

static void keydir_costs_at_most_80_bytes_per_16_byte_key(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    size_t base = 0; /* everything the store allocated counts */
    char key[17];
    double worst = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "%016d", i);
        ok(e, bc_put(e->bc, (uint64_t)i + 1, (const uint8_t *)key, 16, (const uint8_t *)"12345678",
                     8, &e->err));
        end(e);
        if (i >= 9999 && (i + 1) % 1000 == 0) {
            double per_key = (double)(e->cnt.live_bytes - base) / (i + 1);
            worst = per_key > worst ? per_key : worst;
            assert_true(per_key <= 16 + 64);
        }
    }
    struct bc_stats st = stats(e);
    double per_key = (double)(e->cnt.live_bytes - base) / 100000;
    printf("keydir: 100000 keys of 16 bytes: %.1f bytes/key allocated (keydir %.1f), worst "
           "%.1f from 10k keys on\n",
           per_key, (double)st.keydir_bytes / 100000, worst);
    assert_true(per_key <= 16 + 64);
    env_free(e);
}

/* The keydir's range walk (SCAN's pages): from any hash, the entries at or after it in
 * ascending (hash, key); pages chained by their next cursor list every entry exactly once, in
 * order, each page ending at the end of a hash; the same with a growth in progress. Hashes are
 * forced to collide (a few per value) and to crowd the top of the range (wrapped runs). */
struct range_seen {
    uint32_t n, cap;
    const struct bc_kent **e;
};

static bool range_collect(void *ctx, const struct bc_kent *e)
{
    struct range_seen *r = ctx;
    assert_true(r->n < r->cap);
    r->e[r->n++] = e;
    return true;
}

static int kent_order(const void *a, const void *b)
{
    const struct bc_kent *x = *(const struct bc_kent *const *)a;
    const struct bc_kent *y = *(const struct bc_kent *const *)b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    uint32_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static uint32_t forced_hash(uint32_t i)
{
    uint32_t h = bc_kd_hash((const uint8_t *)&i, sizeof(i));
    if (i % 5 == 0)
        return UINT32_MAX - (h & 63); /* crowd the top: runs wrap round the table's end */
    return h & ~7u;                   /* eight keys may share a hash value */
}

static void check_ranges(const struct bc_keydir *kd, uint64_t seed)
{
    uint32_t n = (uint32_t)kd->count;
    const struct bc_kent **all = calloc(n + 1, sizeof(*all));
    assert_non_null(all);
    struct range_seen r = {.cap = n + 1, .e = all};
    uint64_t next = 1;
    bc_kd_range(kd, 0, UINT64_MAX, range_collect, &r, &next);
    assert_int_equal(r.n, n);
    assert_int_equal(next, 0);
    const struct bc_kent **sorted = malloc((n + 1) * sizeof(*sorted));
    assert_non_null(sorted);
    memcpy(sorted, all, n * sizeof(*all));
    qsort(sorted, n, sizeof(*sorted), kent_order);
    for (uint32_t i = 0; i < n; i++)
        assert_ptr_equal(all[i], sorted[i]); /* the walk is already in order */
    /* Pages of every budget chain to the whole, each ending at the end of a hash. */
    static const uint64_t budgets[] = {1, 3, 10, 1000};
    for (size_t b = 0; b < sizeof(budgets) / sizeof(budgets[0]); b++) {
        uint32_t got = 0;
        uint64_t cursor = 0;
        do {
            r.n = 0;
            bc_kd_range(kd, (uint32_t)cursor, budgets[b], range_collect, &r, &next);
            assert_true(r.n >= (next != 0 ? budgets[b] : 0));
            for (uint32_t i = 0; i < r.n; i++)
                assert_ptr_equal(r.e[i], sorted[got + i]);
            got += r.n;
            if (next != 0) {
                assert_true(got < n);
                assert_int_equal(next, (uint64_t)sorted[got - 1]->hash + 1);
                assert_true(sorted[got]->hash >= next); /* no hash split between pages */
            }
            cursor = next;
        } while (cursor != 0);
        assert_int_equal(got, n);
    }
    /* From any point: the first entries with hash >= lo. */
    for (int t = 0; t < 200; t++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t lo = t % 3 == 0 ? forced_hash((uint32_t)(seed >> 40)) : (uint32_t)(seed >> 32);
        uint32_t first = 0;
        while (first < n && sorted[first]->hash < lo)
            first++;
        r.n = 0;
        bc_kd_range(kd, lo, 5, range_collect, &r, &next);
        for (uint32_t i = 0; i < r.n; i++)
            assert_ptr_equal(r.e[i], sorted[first + i]);
        assert_true(r.n == n - first || r.n >= 5);
    }
    free(all);
    free(sorted);
}

static void keydir_range_pages_list_every_key_once_in_order(void **state)
{
    (void)state;
    struct bc_keydir kd;
    assert_int_equal(bc_kd_init(&kd, rk_alloc_libc()), RK_OK);
    uint32_t checked_mid_drain = 0;
    for (uint32_t i = 0; i < 6000; i++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "k%u", i);
        assert_int_equal(bc_kd_reserve(&kd), RK_OK);
        struct bc_kent *ent = bc_kd_new(&kd, forced_hash(i), (const uint8_t *)key, (uint32_t)len);
        assert_non_null(ent);
        bc_kd_insert(&kd, ent);
        bc_kd_step(&kd);
        if (i % 397 == 0 || (kd.old != NULL && i % 13 == 0 && checked_mid_drain < 40)) {
            checked_mid_drain += kd.old != NULL;
            check_ranges(&kd, i);
        }
    }
    assert_true(checked_mid_drain > 10);
    bc_kd_finish(&kd);
    check_ranges(&kd, 7);
    bc_kd_free(&kd);
}

static void keydir_grows_a_bounded_step_at_a_time(void **state)
{
    (void)state;
    struct bc_keydir kd;
    assert_int_equal(bc_kd_init(&kd, rk_alloc_libc()), RK_OK);
    char key[16];
    uint64_t draining_calls = 0;
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        uint32_t h = bc_kd_hash((const uint8_t *)key, (uint32_t)n);
        assert_int_equal(bc_kd_reserve(&kd), RK_OK);
        struct bc_kent *ent = bc_kd_new(&kd, h, (const uint8_t *)key, (uint32_t)n);
        assert_non_null(ent);
        ent->index = (uint64_t)i;
        bc_kd_insert(&kd, ent);
        uint64_t moved = kd.moved;
        bc_kd_step(&kd);
        assert_true(kd.moved - moved <= 32); /* the pause is bounded */
        draining_calls += kd.old != NULL;
        if (kd.old != NULL && i % 7919 == 0) {
            assert_true(bc_kd_valid(&kd)); /* both tables valid mid-drain */
            for (int j = 0; j <= i; j += 97) {
                n = snprintf(key, sizeof(key), "k%d", j);
                h = bc_kd_hash((const uint8_t *)key, (uint32_t)n);
                struct bc_kent *f = bc_kd_find(&kd, h, (const uint8_t *)key, (uint32_t)n);
                assert_non_null(f);
                assert_int_equal(f->index, j);
            }
        }
    }
    assert_true(draining_calls > 1000); /* growth really was spread over many calls */
    /* Deletes during a drain keep both tables valid. */
    for (int i = 0; i < 200000; i += 2) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        struct bc_kent *f = bc_kd_find(&kd, bc_kd_hash((const uint8_t *)key, (uint32_t)n),
                                       (const uint8_t *)key, (uint32_t)n);
        assert_non_null(f);
        bc_kd_remove(&kd, f);
        bc_kd_step(&kd);
    }
    assert_true(bc_kd_valid(&kd));
    assert_int_equal(kd.count, 100000);
    bc_kd_free(&kd);
}

/* ---- scan and the kv_store --------------------------------------------------------------- */

struct seen {
    char keys[600][16];
    int n;
    uint64_t sum; /* of value lengths */
};

static bool seen_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                     uint32_t val_len)
{
    struct seen *s = ctx;
    assert_true(s->n < 600 && key_len < 16);
    memcpy(s->keys[s->n], key, key_len);
    s->keys[s->n][key_len] = '\0';
    s->n++;
    s->sum += val_len;
    (void)val;
    return true;
}

static struct seen *scan_all(struct env *e)
{
    struct seen *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    ok(e, bc_scan(e->bc, seen_one, s, &e->err));
    return s;
}

static void scan_visits_every_live_key_once_with_its_value(void **state)
{
    (void)state;
    struct env *e = env_new(1, 700);
    env_open_ok(e);
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        put1(e, (uint64_t)i + 1, key, i % 3 == 0 ? "" : "xyz");
    }
    put_s(e, 301, "pending", "in the open batch");
    struct seen *s = scan_all(e);
    assert_int_equal(s->n, 301);
    assert_int_equal(s->sum, 200 * 3 + strlen("in the open batch"));
    for (int i = 0; i < s->n; i++)
        for (int j = i + 1; j < s->n; j++)
            assert_string_not_equal(s->keys[i], s->keys[j]);
    free(s);
    env_free(e);
}

struct keys_seen {
    struct seen s;
    int with_value; /* callbacks that got a value */
    int pending_value_ok;
};

static bool key_seen(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                     uint32_t val_len)
{
    struct keys_seen *k = ctx;
    if (val != NULL) {
        k->with_value++;
        k->pending_value_ok += key_len == 7 && memcmp(key, "pending", 7) == 0 && val_len == 17 &&
                               memcmp(val, "in the open batch", 17) == 0;
    }
    return seen_one(&k->s, key, key_len, val, val_len);
}

/* scan_keys: the same keys in the same order as scan, sizes but no values (no I/O), except a
 * key of the open batch whose value is in memory anyway. */
static void scan_keys_lists_the_keys_of_scan_without_reading_values(void **state)
{
    (void)state;
    struct env *e = env_new(1, 700);
    env_open_ok(e);
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        put1(e, (uint64_t)i + 1, key, i % 3 == 0 ? "" : "xyz");
    }
    put_s(e, 301, "pending", "in the open batch");
    struct seen *all = scan_all(e);
    struct keys_seen *k = calloc(1, sizeof(*k));
    assert_non_null(k);
    ok(e, bc_scan_keys(e->bc, key_seen, k, &e->err));
    assert_int_equal(k->s.n, all->n);
    assert_int_equal(k->s.sum, all->sum);
    assert_memory_equal(k->s.keys, all->keys, sizeof(all->keys));
    assert_int_equal(k->with_value, 1);
    assert_int_equal(k->pending_value_ok, 1);
    free(k);
    free(all);
    env_free(e);
}

static void scan_order_is_a_function_of_the_key_set_alone(void **state)
{
    (void)state;
    char key[16];
    struct env *a = env_new(1, 0);
    env_open_ok(a);
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "o%d", i);
        put1(a, (uint64_t)i + 1, key, "a");
    }
    for (int i = 0; i < 500; i += 3) {
        snprintf(key, sizeof(key), "o%d", i);
        del_s(a, 501 + (uint64_t)i, key);
        end(a);
    }
    /* b: another order, other keys that come and go, another file size. */
    struct env *b = env_new(2, 300);
    env_open_ok(b);
    uint64_t index = 0;
    for (int i = 499; i >= 0; i--) {
        snprintf(key, sizeof(key), "o%d", i);
        if (i % 3 != 0)
            put1(b, ++index, key, "b");
        snprintf(key, sizeof(key), "tmp%d", i);
        put1(b, ++index, key, "t");
    }
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "tmp%d", i);
        del_s(b, ++index, key);
        end(b);
    }
    struct seen *sa = scan_all(a);
    struct seen *sb = scan_all(b);
    assert_int_equal(sa->n, 333);
    assert_int_equal(sb->n, 333);
    assert_memory_equal(sa->keys, sb->keys, sizeof(sa->keys));
    /* The same after a restart and a merge. */
    sync_(a);
    env_reopen(a);
    ok(a, bc_merge(a->bc, &a->err));
    env_reopen(a);
    struct seen *sc = scan_all(a);
    assert_memory_equal(sa->keys, sc->keys, sizeof(sa->keys));
    free(sa);
    free(sb);
    free(sc);
    env_free(a);
    env_free(b);
}

static void kv_store_ops_drive_the_bitcask(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    struct kv_store *s = bc_kv_store(e->bc);
    assert_int_equal(s->ops->put(s, 1, (const uint8_t *)"a", 1, (const uint8_t *)"x", 1), RK_OK);
    assert_int_equal(s->ops->applied_index(s), 1); /* S2: the open batch counts */
    assert_int_equal(s->ops->end_batch(s, 1), RK_OK);
    bool existed = false;
    assert_int_equal(s->ops->del(s, 2, (const uint8_t *)"b", 1, &existed), RK_OK);
    assert_false(existed);
    assert_int_equal(s->ops->end_batch(s, 2), RK_OK);
    assert_int_equal(s->ops->end_batch(s, 3), RK_OK); /* nothing written for 3: no-op */
    assert_int_equal(s->ops->applied_index(s), 2);
    assert_int_equal(s->ops->sync(s), RK_OK);
    const uint8_t *val;
    uint32_t len;
    assert_int_equal(s->ops->get(s, (const uint8_t *)"a", 1, &val, &len), RK_OK);
    assert_int_equal(len, 1);
    assert_memory_equal(val, "x", 1);
    assert_int_equal(s->ops->get(s, (const uint8_t *)"b", 1, &val, &len), RK_ENOENT);
    assert_int_equal(s->ops->count(s), 1);
    struct seen seen;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(s->ops->scan(s, seen_one, &seen), RK_OK);
    assert_int_equal(seen.n, 1);
    s->ops->destroy(s);
    e->bc = NULL;
    assert_int_equal(e->cnt.live, 0);
    env_open_ok(e);
    assert_int_equal(bc_applied_index(e->bc), 2);
    env_free(e);
}

/* ---- a randomized crash test against a model ---------------------------------------------- */

#define MODEL_KEYS    24
#define MODEL_HISTORY 512

/* The model: per key, the index of the batch that wrote its value (0: absent). A value is a
 * function of (key, index), so this is the whole state. */
struct model {
    uint64_t index;
    uint64_t wrote[MODEL_KEYS];
    uint32_t len[MODEL_KEYS];
};

struct rnd {
    struct env *e;
    struct rk_prng prng;
    struct model cur;
    /* Every state at a batch boundary from the last successful sync on: the store must come
     * back as one of them. */
    struct model hist[MODEL_HISTORY];
    int n_hist;
    uint8_t val[4096];
};

static void model_value(uint8_t *out, int k, uint64_t index, uint32_t len)
{
    struct rk_prng p;
    rk_prng_seed(&p, (uint64_t)k * 1000003u + index);
    for (uint32_t i = 0; i < len; i++)
        out[i] = (uint8_t)rk_prng_next(&p);
}

static void model_key(char *out, int k)
{
    snprintf(out, 16, "mk%02d", k);
}

static void hist_push(struct rnd *r)
{
    if (r->n_hist == MODEL_HISTORY) { /* keep the oldest (the synced one) and the newest */
        memmove(&r->hist[1], &r->hist[2], (MODEL_HISTORY - 2) * sizeof(r->hist[0]));
        r->n_hist--;
    }
    r->hist[r->n_hist++] = r->cur;
}

static void hist_synced(struct rnd *r)
{
    r->hist[0] = r->cur;
    r->n_hist = 1;
}

/* One batch of 1-3 puts and dels. False if the store failed (a fault). */
static bool rnd_batch(struct rnd *r)
{
    struct env *e = r->e;
    struct model next = r->cur;
    next.index++;
    int n = 1 + (int)rk_prng_below(&r->prng, 3);
    for (int i = 0; i < n; i++) {
        int k = (int)rk_prng_below(&r->prng, MODEL_KEYS);
        char key[16];
        model_key(key, k);
        int rc;
        if (rk_prng_below(&r->prng, 4) == 0) {
            bool existed;
            rc = bc_del(e->bc, next.index, (const uint8_t *)key, (uint32_t)strlen(key), &existed,
                        &e->err);
            if (rc == RK_OK)
                assert_int_equal(existed, next.wrote[k] != 0);
            next.wrote[k] = 0;
        } else {
            uint32_t len = (uint32_t)rk_prng_below(&r->prng, 8) == 0
                               ? (uint32_t)rk_prng_below(&r->prng, 4000)
                               : (uint32_t)rk_prng_below(&r->prng, 120);
            model_value(r->val, k, next.index, len);
            rc = bc_put(e->bc, next.index, (const uint8_t *)key, (uint32_t)strlen(key), r->val, len,
                        &e->err);
            next.wrote[k] = next.index;
            next.len[k] = len;
        }
        if (rc != RK_OK)
            return false;
    }
    int rc = bc_end_batch(e->bc, &e->err);
    /* A batch whose end failed must not come back torn; whole, it would be no lie. */
    r->cur = next;
    hist_push(r);
    return rc == RK_OK;
}

/* Compares the result of a get of key k with the model. */
static void rnd_compare(struct rnd *r, const struct model *m, int k, int rc, const uint8_t *val,
                        uint32_t len)
{
    if (m->wrote[k] == 0) {
        if (rc != RK_ENOENT)
            fail_msg("mk%02d: expected absent at index %llu, got %s (%s)", k,
                     (unsigned long long)m->index, rk_strerror(rc), r->e->err.text);
        return;
    }
    if (rc != RK_OK)
        fail_msg("mk%02d: %s: %s", k, rk_strerror(rc), r->e->err.text);
    assert_int_equal(len, m->len[k]);
    model_value(r->val, k, m->wrote[k], len);
    assert_memory_equal(val, r->val, len);
}

static void rnd_check_key(struct rnd *r, const struct model *m, int k)
{
    char key[16];
    model_key(key, k);
    const uint8_t *val = NULL;
    uint32_t len = 0;
    int rc = get_s(r->e, key, &val, &len);
    rnd_compare(r, m, k, rc, val, len);
}

/* After a reopen: the store is one of the states since the last sync, by its applied index. */
static void rnd_verify_reopened(struct rnd *r)
{
    uint64_t applied = bc_applied_index(r->e->bc);
    int at = -1;
    for (int i = 0; i < r->n_hist; i++)
        at = r->hist[i].index == applied ? i : at;
    if (at < 0)
        fail_msg("reopened at index %llu, not a batch boundary since the last sync (%llu..%llu)",
                 (unsigned long long)applied, (unsigned long long)r->hist[0].index,
                 (unsigned long long)r->hist[r->n_hist - 1].index);
    const struct model *m = &r->hist[at];
    uint64_t count = 0;
    for (int k = 0; k < MODEL_KEYS; k++) {
        rnd_check_key(r, m, k);
        count += m->wrote[k] != 0;
    }
    assert_int_equal(bc_count(r->e->bc), count);
    r->cur = *m;
    /* What a reopen finds is not durable unless it was: keep the candidates up to it. */
    r->n_hist = at + 1;
}

static bool rnd_verbose(void)
{
    return getenv("BC_VERBOSE") != NULL;
}

/* Random operations until a fault stops the store or n ops are done. */
static void rnd_ops(struct rnd *r, int n)
{
    struct env *e = r->e;
    for (int op = 0; op < n; op++) {
        uint64_t x = rk_prng_below(&r->prng, 100);
        if (x < 60) {
            bool done = rnd_batch(r);
            if (rnd_verbose())
                fprintf(stderr, "  batch %llu: %s\n", (unsigned long long)r->cur.index,
                        done ? "ok" : e->err.text);
            if (!done)
                return;
        } else if (x < 75) {
            int rc = bc_sync(e->bc, &e->err);
            if (rnd_verbose())
                fprintf(stderr, "  sync: %s\n", rc == RK_OK ? "ok" : e->err.text);
            if (rc != RK_OK)
                return;
            hist_synced(r);
        } else if (x < 82) {
            int rc = bc_merge(e->bc, &e->err);
            if (rnd_verbose())
                fprintf(stderr, "  merge: %s\n", rc == RK_OK ? "ok" : e->err.text);
            if (rc != RK_OK)
                return;
            hist_synced(r); /* merge syncs first */
        } else {
            int k = (int)rk_prng_below(&r->prng, MODEL_KEYS);
            char key[16];
            model_key(key, k);
            const uint8_t *val = NULL;
            uint32_t len = 0;
            int rc = get_s(e, key, &val, &len);
            if (rc != RK_OK && rc != RK_ENOENT)
                return; /* the disk died under it */
            rnd_compare(r, &r->cur, k, rc, val, len);
        }
    }
}

static void rnd_episode(uint64_t seed, uint64_t *crashes, uint64_t *cuts)
{
    static const uint64_t file_sizes[] = {200, 700, 3000, 1 << 20};
    struct rnd *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    rk_prng_seed(&r->prng, seed);
    r->e = env_new(seed, file_sizes[rk_prng_below(&r->prng, 4)]);
    env_open_ok(r->e);
    hist_synced(r);
    for (int cycle = 0; cycle < 4; cycle++) {
        struct simdisk_faults f = {.torn_writes = true};
        uint64_t mode = rk_prng_below(&r->prng, 3);
        if (mode == 0)
            f.crash_at_call = 1 + rk_prng_below(&r->prng, 200);
        else if (mode == 2)
            f.write_error = f.sync_error = 0.03;
        set_faults(r->e, &f);
        if (rnd_verbose())
            fprintf(stderr, " cycle %d: mode %llu, crash at call %llu\n", cycle,
                    (unsigned long long)mode, (unsigned long long)f.crash_at_call);
        rnd_ops(r, 1 + (int)rk_prng_below(&r->prng, 80));
        if (rnd_verbose() && f.crash_at_call == 0) /* (it would move the crash point) */
            print_dir(r->e, "before the crash");
        env_close(r->e);
        if (mode != 2 || rk_prng_below(&r->prng, 2) == 0) {
            simdisk_crash(r->e->disk);
            ++*crashes;
        }
        /* Sometimes the restart crashes too, in the middle of its recovery. */
        if (rk_prng_below(&r->prng, 4) == 0) {
            struct simdisk_faults g = {.torn_writes = true,
                                       .crash_at_call = 1 + rk_prng_below(&r->prng, 30)};
            set_faults(r->e, &g);
            int rc = env_open(r->e);
            if (rnd_verbose())
                fprintf(stderr, " reopen with a crash at call %llu: %s\n",
                        (unsigned long long)g.crash_at_call, rc == RK_OK ? "ok" : r->e->err.text);
            if (rc == RK_OK)
                env_close(r->e);
            simdisk_crash(r->e->disk);
        }
        no_faults(r->e);
        if (rnd_verbose())
            print_dir(r->e, "after the crash");
        env_open_ok(r->e);
        *cuts += stats(r->e).cut_bytes > 0;
        if (rnd_verbose())
            fprintf(stderr, " reopened at %llu, cut %llu bytes\n",
                    (unsigned long long)bc_applied_index(r->e->bc),
                    (unsigned long long)stats(r->e).cut_bytes);
        rnd_verify_reopened(r);
    }
    env_free(r->e);
    free(r);
}

static void random_operations_and_crashes_match_the_model(void **state)
{
    (void)state;
    uint64_t crashes = 0;
    uint64_t cuts = 0;
    int episodes = 4000;
    const char *many = getenv("BC_EPISODES"); /* a longer hunt */
    if (many != NULL)
        episodes = atoi(many);
    const char *one = getenv("BC_SEED"); /* replay one episode: BC_SEED=n BC_VERBOSE=1 */
    for (uint64_t seed = 1; seed <= (uint64_t)episodes; seed++) {
        if (one != NULL && strtoull(one, NULL, 10) != seed)
            continue;
        if (getenv("BC_VERBOSE") != NULL)
            fprintf(stderr, "episode %llu\n", (unsigned long long)seed);
        rnd_episode(seed, &crashes, &cuts);
    }
    printf("random crash test: %d episodes, %llu crashes, %llu torn tails cut\n", episodes,
           (unsigned long long)crashes, (unsigned long long)cuts);
    assert_true(cuts > 500);
}

/* The churned contents and applied index (expect_churned with more written after). */
static void expect_churned_and(struct env *e, uint64_t applied)
{
    char key[16];
    char val[48];
    for (int k = 0; k < 10; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        snprintf(val, sizeof(val), "round 19 of key %d", k);
        expect(e, key, k % 2 == 0 ? NULL : val);
    }
    assert_int_equal(bc_count(e->bc), 5);
    assert_int_equal(bc_applied_index(e->bc), applied);
}

/* ---- merge in steps (bitcask.h, MERGE IN STEPS in merge.c) ------------------------------- */

/* merge_fixture with ids left free above each new active file, so that the background merge
 * has room for its outputs below the active file. */
static struct env *steps_fixture(void)
{
    struct env *e = env_new(43, 512);
    e->cfg.merge_id_gap = 64;
    env_open_ok(e);
    uint64_t index = 0;
    write_churn(e, &index);
    sync_(e);
    env_reopen(e);
    put1(e, ++index, "k1", "round 19 of key 1"); /* and an active file */
    sync_(e);
    return e;
}

/* What the store holds after steps_fixture and steps_writes(e, upto) (synced). */
static void steps_expect(struct env *e, int upto)
{
    char key[16];
    char val[48];
    for (int k = 0; k < 10; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        snprintf(val, sizeof(val), "round 19 of key %d", k);
        const char *want = k % 2 == 0 ? NULL : val;
        if (k == 1 && upto >= 1)
            want = "k1 rewritten during the merge";
        if (k == 3 && upto >= 1)
            want = NULL;
        if (k == 5 && upto >= 2)
            want = "k5 rewritten during the install";
        if (k == 7 && upto >= 2)
            want = NULL;
        expect(e, key, want);
    }
    expect(e, "k10", upto >= 1 ? "new during the merge" : NULL);
    assert_int_equal(bc_count(e->bc), upto >= 2 ? 4 : upto >= 1 ? 5 : 5);
}

/* The writes made while a merge runs: 1 between prepare and run's end, 2 during install. */
static void steps_writes(struct env *e, int which)
{
    uint64_t index = bc_applied_index(e->bc);
    if (which == 1) {
        put1(e, ++index, "k1", "k1 rewritten during the merge");
        del_s(e, ++index, "k3");
        end(e);
        put1(e, ++index, "k10", "new during the merge");
    } else {
        put1(e, ++index, "k5", "k5 rewritten during the install");
        del_s(e, ++index, "k7");
        end(e);
    }
    sync_(e);
}

static void merge_in_steps_keeps_what_is_written_meanwhile_and_its_hints_are_used(void **state)
{
    (void)state;
    struct env *e = steps_fixture();
    struct bc_stats before = stats(e);
    struct bc_merge_policy policy = {.frag_percent = 40, .min_dead_bytes = 1024};
    assert_true(bc_merge_wanted(e->bc, &policy));
    struct bc_merge_job *j;
    ok(e, bc_merge_prepare(e->bc, NULL, &j, &e->err));
    assert_non_null(j);
    assert_false(bc_merge_wanted(e->bc, &policy)); /* one at a time */
    struct bc_merge_job *other;
    assert_int_equal(bc_merge_prepare(e->bc, NULL, &other, &e->err), RK_EBUSY);
    steps_writes(e, 1); /* overwrite, delete, new key: while the merge runs */
    ok(e, bc_merge_run(j));
    steps_expect(e, 1);
    bool done = false;
    int chunks = 0;
    for (int w = 0; !done; chunks++) {
        ok(e, bc_merge_install(e->bc, j, 1, &done, &e->err));
        if (w++ == 0)
            steps_writes(e, 2); /* and during the install */
        steps_expect(e, 2);     /* reads work at every step */
    }
    assert_true(chunks > 3);
    ok(e, bc_merge_cleanup(j));
    ok(e, bc_merge_end(e->bc, j, &e->err));
    bc_merge_job_free(j);
    struct bc_stats after = stats(e);
    assert_int_equal(after.merges_done, 1);
    assert_true(after.total_bytes < before.total_bytes);
    assert_true(after.data_files < before.data_files);
    struct names ns = list_names(e);
    assert_int_equal(ns.tmp, 0);
    assert_false(ns.merge);
    assert_true(ns.hint >= 1);
    steps_expect(e, 2);
    assert_false(bc_merge_wanted(e->bc, &policy));
    env_reopen(e);
    assert_true(stats(e).hint_files_loaded >= 1);
    steps_expect(e, 2);
    env_crash_reopen(e);
    steps_expect(e, 2);
    /* And a second merge, over the outputs of the first and the files written since. */
    ok(e, bc_merge(e->bc, &e->err));
    steps_expect(e, 2);
    env_reopen(e);
    steps_expect(e, 2);
    env_free(e);
}

/* With few free ids after the closed files (a small merge_id_gap, a big store), the merge still
 * takes every closed file: its outputs are fewer and bigger than max_file_bytes. */
static void a_merge_in_a_small_id_gap_takes_every_closed_file(void **state)
{
    (void)state;
    struct env *e = env_new(44, 512);
    e->cfg.merge_id_gap = 6;
    env_open_ok(e);
    uint64_t index = 0;
    write_churn(e, &index);
    put1(e, ++index, "k1", "round 19 of key 1");
    sync_(e);
    struct bc_stats before = stats(e);
    assert_true(before.data_files > 10);
    struct bc_merge_pick pick;
    bc_merge_pick(e->bc, &pick);
    assert_int_equal(pick.inputs, before.data_files - 1); /* all but the active file */
    struct bc_merge_job *j;
    ok(e, bc_merge_prepare(e->bc, NULL, &j, &e->err));
    ok(e, bc_merge_run(j));
    bool done = false;
    while (!done)
        ok(e, bc_merge_install(e->bc, j, 3, &done, &e->err));
    ok(e, bc_merge_cleanup(j));
    ok(e, bc_merge_end(e->bc, j, &e->err));
    bc_merge_job_free(j);
    struct bc_stats after = stats(e);
    assert_true(after.data_files <= 1 + 6);
    assert_true(after.total_bytes < before.total_bytes / 2);
    expect_churned_and(e, 206);
    env_crash_reopen(e);
    assert_true(stats(e).hint_files_loaded >= 1);
    expect_churned_and(e, 206);
    env_free(e);
}

/* A cancelled run (a node stopping) fails before its commit: outputs removed, store as before. */
static void a_cancelled_run_changes_nothing(void **state)
{
    (void)state;
    struct env *e = steps_fixture();
    struct bc_stats before = stats(e);
    struct bc_merge_job *j;
    ok(e, bc_merge_prepare(e->bc, NULL, &j, &e->err));
    bc_merge_cancel(j);
    assert_int_equal(bc_merge_run(j), RK_EBUSY);
    assert_text_has(bc_merge_job_error(j), "cancelled");
    bool done = true;
    assert_int_equal(bc_merge_install(e->bc, j, 0, &done, &e->err), RK_EBUSY);
    assert_false(done);
    ok(e, bc_merge_end(e->bc, j, &e->err));
    bc_merge_job_free(j);
    struct names ns = list_names(e);
    assert_int_equal(ns.tmp, 0);
    assert_false(ns.merge);
    assert_int_equal(stats(e).data_files, before.data_files);
    steps_expect(e, 0);
    ok(e, bc_merge(e->bc, &e->err)); /* and the next merge runs */
    steps_expect(e, 0);
    env_free(e);
}

/* A crash at every step of a merge in steps — and at every fs call of run and cleanup — with
 * writes made meanwhile, reopens with every key's newest value (bitcask.c, MERGE). */
static void crash_at_any_step_of_a_merge_in_steps_keeps_every_newest_value(void **state)
{
    (void)state;
    int crashes = 0;
    int rolled_forward = 0;
    for (uint64_t k = 1;; k++) {
        struct env *e = steps_fixture();
        struct bc_merge_job *j;
        ok(e, bc_merge_prepare(e->bc, NULL, &j, &e->err));
        assert_non_null(j);
        steps_writes(e, 1);
        struct simdisk_faults f = {.torn_writes = (k % 2) == 0, .crash_at_call = k};
        set_faults(e, &f);
        int upto = 1;
        bool done = false;
        if (bc_merge_run(j) == RK_OK && !simdisk_crashed(e->disk)) {
            no_faults(e); /* the owner's install reads and opens: no crash point there */
            ok(e, bc_merge_install(e->bc, j, 2, &done, &e->err));
            steps_writes(e, 2);
            upto = 2;
            while (!done)
                ok(e, bc_merge_install(e->bc, j, 2, &done, &e->err));
            set_faults(e, &f);
            bc_merge_cleanup(j);
        }
        bool crashed = simdisk_crashed(e->disk);
        if (!crashed) { /* past the last fs call of the merge */
            no_faults(e);
            ok(e, bc_merge_end(e->bc, j, &e->err));
            bc_merge_job_free(j);
            steps_expect(e, 2);
            env_free(e);
            break;
        }
        crashes++;
        /* The process dies: the job and the store are dropped as they are. */
        bc_merge_job_free(j);
        env_close(e);
        simdisk_crash(e->disk);
        no_faults(e);
        env_open_ok(e);
        rolled_forward += stats(e).hint_files_loaded > 0;
        steps_expect(e, upto);
        struct names ns = list_names(e);
        assert_int_equal(ns.tmp, 0);
        assert_false(ns.merge);
        ok(e, bc_merge(e->bc, &e->err)); /* and a merge still works */
        steps_expect(e, upto);
        env_free(e);
    }
    assert_true(crashes > 20);
    assert_true(rolled_forward > 3);
}

/* A run that fails before its commit (a write or a sync of its outputs fails) leaves the store
 * as it was and usable, its outputs removed; another merge can start. */
static void a_failed_run_leaves_the_store_usable(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        struct env *e = steps_fixture();
        struct bc_merge_job *j;
        ok(e, bc_merge_prepare(e->bc, NULL, &j, &e->err));
        struct simdisk_faults f = {.write_error = mode == 0 ? 1.0 : 0.0,
                                   .sync_error = mode == 1 ? 1.0 : 0.0};
        set_faults(e, &f);
        assert_int_not_equal(bc_merge_run(j), RK_OK);
        no_faults(e);
        bool done = true;
        assert_int_not_equal(bc_merge_install(e->bc, j, 0, &done, &e->err), RK_OK);
        assert_false(done);
        ok(e, bc_merge_end(e->bc, j, &e->err));
        bc_merge_job_free(j);
        struct names ns = list_names(e);
        assert_int_equal(ns.tmp, 0);
        assert_false(ns.merge);
        steps_writes(e, 1); /* the store still works */
        steps_expect(e, 1);
        struct bc_merge_job *again;
        ok(e, bc_merge_prepare(e->bc, NULL, &again, &e->err));
        assert_non_null(again);
        ok(e, bc_merge_run(again));
        bool d = false;
        while (!d)
            ok(e, bc_merge_install(e->bc, again, 0, &d, &e->err));
        ok(e, bc_merge_cleanup(again));
        ok(e, bc_merge_end(e->bc, again, &e->err));
        bc_merge_job_free(again);
        steps_expect(e, 1);
        env_reopen(e);
        steps_expect(e, 1);
        env_free(e);
    }
}

/* ---- staged replacement (bitcask.h, STAGED REPLACEMENT; stage.c) -------------------------- */

/* The store before a stage: "o1".."o40" at indexes 1..40 in several rotated files, deferred
 * writes, everything done. */
static struct env *stage_fixture(uint64_t seed)
{
    struct env *e = env_new(seed, 512);
    env_open_ok(e);
    bc_set_deferred(e->bc, NULL);
    char key[16], val[32];
    for (uint64_t i = 1; i <= 40; i++) {
        snprintf(key, sizeof(key), "o%llu", (unsigned long long)i);
        snprintf(val, sizeof(val), "old value %llu", (unsigned long long)i);
        put1(e, i, key, val);
    }
    sync_(e);
    io_all(e);
    return e;
}

static void stage_put_s(struct env *e, const char *key, const char *val)
{
    ok(e, bc_stage_put(e->bc, (const uint8_t *)key, (uint32_t)strlen(key), (const uint8_t *)val,
                       (uint32_t)strlen(val), &e->err));
}

/* Stages "n1".."n<count>" (and "o3", replaced) at index 100, flushing every 7 records. */
static void stage_fill(struct env *e, int count)
{
    ok(e, bc_stage_begin(e->bc, 100, &e->err));
    char key[16], val[32];
    for (int i = 1; i <= count; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        snprintf(val, sizeof(val), "new value %d", i);
        stage_put_s(e, key, val);
        if (i % 7 == 0)
            ok(e, bc_stage_flush(e->bc, &e->err));
    }
    stage_put_s(e, "o3", "o3 in the snapshot");
    ok(e, bc_stage_flush(e->bc, &e->err));
}

static void expect_old(struct env *e)
{
    char key[16], val[32];
    for (uint64_t i = 1; i <= 40; i++) {
        snprintf(key, sizeof(key), "o%llu", (unsigned long long)i);
        snprintf(val, sizeof(val), "old value %llu", (unsigned long long)i);
        expect(e, key, val);
    }
    expect(e, "n1", NULL);
    assert_int_equal(bc_count(e->bc), 40);
}

static void expect_new(struct env *e, int count)
{
    char key[16], val[32];
    for (int i = 1; i <= count; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        snprintf(val, sizeof(val), "new value %d", i);
        expect(e, key, val);
    }
    expect(e, "o1", NULL);
    expect(e, "o3", "o3 in the snapshot");
    assert_int_equal(bc_count(e->bc), (uint64_t)count + 1);
    assert_int_equal(bc_applied_index(e->bc), 100);
}

/* The stage's records go to disk as they come (not kept), the live store serves and takes writes
 * meanwhile, and the switch leaves the new store alone on disk: only its files, no *.tmp, no
 * MERGE; a reopen reads it from its hints. */
static void staged_replacement_switches_in_and_leaves_one_copy(void **state)
{
    (void)state;
    struct env *e = stage_fixture(7);
    struct names before = list_names(e);
    assert_true(before.data >= 3);
    stage_fill(e, 60);
    assert_int_equal(bc_stage_state(e->bc), BC_STAGE_FILLING);
    io_all(e);
    assert_true(list_names(e).tmp >= 2); /* the outputs, under their tmp names */
    put1(e, 41, "o41", "written while staging");
    expect(e, "o41", "written while staging");
    expect(e, "n1", NULL); /* nothing staged is visible */
    sync_(e);
    io_all(e);
    ok(e, bc_stage_commit(e->bc, &e->err));
    assert_int_equal(bc_stage_state(e->bc), BC_STAGE_COMMITTING);
    assert_int_equal(bc_put(e->bc, 42, (const uint8_t *)"x", 1, (const uint8_t *)"y", 1, &e->err),
                     RK_EBUSY);
    expect(e, "o41", "written while staging"); /* the old store until the switch */
    io_all(e);
    assert_int_equal(bc_stage_state(e->bc), BC_STAGE_NONE);
    expect_new(e, 60);
    expect(e, "o41", NULL);
    assert_int_equal(bc_durable_index(e->bc), 100);
    struct names after = list_names(e);
    assert_int_equal(after.tmp, 0);
    assert_false(after.merge);
    assert_int_equal(after.data, after.hint); /* the outputs, each with its hint */
    assert_int_equal(after.data, (int)stats(e).data_files);
    put1(e, 101, "n1", "after the switch");
    sync_(e);
    io_all(e);
    env_crash_reopen(e);
    assert_int_equal(bc_applied_index(e->bc), 101);
    expect(e, "n1", "after the switch");
    expect(e, "n2", "new value 2");
    expect(e, "o2", NULL);
    assert_true(stats(e).hint_files_loaded >= 1);
    env_close(e);
    struct bc_verify_stats vs;
    ok(e, bc_verify(&e->cfg, NULL, &vs, &e->err));
    env_free(e);
}

/* Abort before the commit: the outputs are removed, the store is as it was, and another stage
 * can begin and switch in. No merge starts while a stage lasts; a stage does not commit while a
 * merge is in progress. */
static void staged_replacement_aborts_and_waits_for_a_merge(void **state)
{
    (void)state;
    struct env *e = stage_fixture(8);
    stage_fill(e, 20);
    struct bc_merge_job *j = NULL;
    assert_int_equal(bc_merge_prepare(e->bc, NULL, &j, &e->err), RK_EBUSY);
    bc_stage_abort(e->bc);
    assert_int_equal(bc_stage_state(e->bc), BC_STAGE_NONE);
    io_all(e);
    assert_int_equal(list_names(e).tmp, 0);
    expect_old(e);
    env_reopen(e); /* the active file closed: a merge has inputs and room */
    bc_set_deferred(e->bc, NULL);
    expect_old(e);
    ok(e, bc_merge_prepare(e->bc, NULL, &j, &e->err));
    assert_non_null(j);
    stage_fill(e, 30);
    assert_int_equal(bc_stage_commit(e->bc, &e->err), RK_EBUSY); /* one MERGE at a time */
    assert_int_equal(bc_stage_state(e->bc), BC_STAGE_FILLING);
    ok(e, bc_merge_run(j));
    bool done = false;
    while (!done)
        ok(e, bc_merge_install(e->bc, j, 0, &done, &e->err));
    ok(e, bc_merge_cleanup(j));
    ok(e, bc_merge_end(e->bc, j, &e->err));
    bc_merge_job_free(j);
    ok(e, bc_stage_commit(e->bc, &e->err));
    io_all(e);
    expect_new(e, 30);
    assert_int_equal(list_names(e).tmp, 0);
    env_reopen(e);
    expect_new(e, 30);
    env_free(e);
}

/* Without deferred writes the stage writes at each flush and switches in at the commit. */
static void staged_replacement_without_deferred_writes(void **state)
{
    (void)state;
    struct env *e = env_new(9, 512);
    env_open_ok(e);
    put1(e, 1, "o1", "old");
    sync_(e);
    stage_fill(e, 25);
    ok(e, bc_stage_commit(e->bc, &e->err));
    assert_int_equal(bc_stage_state(e->bc), BC_STAGE_NONE);
    expect_new(e, 25);
    env_crash_reopen(e);
    expect_new(e, 25);
    assert_int_equal(list_names(e).tmp, 0);
    env_free(e);
}

/* A crash at every fs call of a staged replacement — its outputs' writes, the commit, the
 * renames, the loading and the removals — reopens with the old store whole or the new one
 * whole, never a mix, and with no *.tmp nor MERGE left and no file of the other store. */
static void crash_at_any_call_of_a_staged_replacement_leaves_old_or_new(void **state)
{
    (void)state;
    int olds = 0, news = 0;
    for (uint64_t k = 1;; k++) {
        struct env *e = stage_fixture(100 + k);
        struct simdisk_faults f = {.torn_writes = (k % 2) == 0, .crash_at_call = k};
        set_faults(e, &f);
        stage_fill(e, 40);
        int rc = bc_stage_commit(e->bc, &e->err);
        for (struct bc_io_job *j; (j = bc_io_take(e->bc)) != NULL;) {
            if (simdisk_crashed(e->disk) || bc_io_run(j) != RK_OK || simdisk_crashed(e->disk)) {
                bc_io_free(j);
                continue;
            }
            if (bc_io_done(e->bc, j, &e->err) != RK_OK) /* the switch's opens */
                assert_true(simdisk_crashed(e->disk));
        }
        if (!simdisk_crashed(e->disk)) { /* past the last fs call */
            ok(e, rc);
            no_faults(e);
            expect_new(e, 40);
            env_free(e);
            break;
        }
        bc_close(e->bc); /* the process dies with its jobs (freed above) */
        e->bc = NULL;
        simdisk_crash(e->disk);
        no_faults(e);
        env_open_ok(e);
        if (bc_applied_index(e->bc) == 100) {
            expect_new(e, 40);
            news++;
        } else {
            assert_int_equal(bc_applied_index(e->bc), 40);
            expect_old(e);
            olds++;
        }
        struct names ns = list_names(e);
        assert_int_equal(ns.tmp, 0);
        assert_false(ns.merge);
        assert_int_equal(ns.data, (int)stats(e).data_files); /* no file of the other store */
        env_close(e);
        struct bc_verify_stats vs;
        ok(e, bc_verify(&e->cfg, NULL, &vs, &e->err));
        env_free(e);
    }
    assert_true(olds > 10);
    assert_true(news > 3);
}

/* ---- merge: a crash at every fs call ------------------------------------------------------ */

/* A store of several files with dead records and tombstones, reopened (all immutable). */
static struct env *merge_fixture(void)
{
    struct env *e = env_new(42, 512);
    env_open_ok(e);
    uint64_t index = 0;
    write_churn(e, &index);
    sync_(e);
    env_reopen(e);
    put1(e, ++index, "k1", "round 19 of key 1"); /* and an active file */
    sync_(e);
    return e;
}

static void expect_fixture(struct env *e)
{
    char key[16];
    char val[48];
    for (int k = 0; k < 10; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        snprintf(val, sizeof(val), "round 19 of key %d", k);
        expect(e, key, k % 2 == 0 ? NULL : val);
    }
    assert_int_equal(bc_count(e->bc), 5);
    assert_int_equal(bc_applied_index(e->bc), 206);
    struct names ns = list_names(e);
    assert_int_equal(ns.tmp, 0);
    assert_false(ns.merge);
}

static void crash_at_any_call_of_a_merge_reopens_with_the_same_contents(void **state)
{
    (void)state;
    uint64_t calls = 0;
    int rolled_forward = 0;
    for (uint64_t k = 1;; k++) {
        struct env *e = merge_fixture();
        struct simdisk_faults f = {.torn_writes = (k % 2) == 0, .crash_at_call = k};
        set_faults(e, &f);
        int rc = bc_merge(e->bc, &e->err);
        if (!simdisk_crashed(e->disk)) {
            ok(e, rc);
            no_faults(e); /* the crash point is past the merge's last call */
            calls = k - 1;
            expect_fixture(e);
            env_free(e);
            break;
        }
        /* (A crash point on a close, which cannot fail, may still let the merge finish.) */
        env_close(e);
        simdisk_crash(e->disk);
        no_faults(e);
        env_open_ok(e);
        rolled_forward += stats(e).hint_files_loaded > 0;
        expect_fixture(e);
        ok(e, bc_merge(e->bc, &e->err)); /* and a merge still works */
        expect_fixture(e);
        env_reopen(e);
        expect_fixture(e);
        env_free(e);
    }
    assert_true(calls > 20);
    assert_true(rolled_forward > 3); /* some crashes came after the commit point */
}

static void crash_during_the_recovery_of_a_crashed_merge_is_harmless(void **state)
{
    (void)state;
    /* Merge crash points after the commit (MERGE durable), then a crash at every call of the
     * recovery that rolls it forward. */
    int tried = 0;
    for (uint64_t k = 1; k < 200; k += 3) {
        for (uint64_t j = 1;; j++) {
            struct env *e = merge_fixture();
            struct simdisk_faults f = {.crash_at_call = k};
            set_faults(e, &f);
            int rc = bc_merge(e->bc, &e->err);
            bool crashed = simdisk_crashed(e->disk);
            env_close(e);
            if (!crashed) {
                ok(e, rc);
                env_free(e);
                k = 1000; /* past the merge's last call: done */
                break;
            }
            simdisk_crash(e->disk);
            if (!list_names(e).merge) { /* before the commit: nothing to roll forward */
                env_free(e);
                break;
            }
            struct simdisk_faults g = {.crash_at_call = j};
            set_faults(e, &g);
            rc = env_open(e);
            bool open_crashed = simdisk_crashed(e->disk);
            if (rc == RK_OK)
                env_close(e);
            simdisk_crash(e->disk);
            no_faults(e);
            env_open_ok(e);
            expect_fixture(e);
            env_free(e);
            tried++;
            if (!open_crashed)
                break;
        }
    }
    assert_true(tried > 20);
}

/* ---- bit flips on read ------------------------------------------------------------------- */

static void bit_flips_and_read_errors_never_return_wrong_data(void **state)
{
    (void)state;
    struct env *e = env_new(5, 2000);
    env_open_ok(e);
    put_numbered(e, 1, 150);
    sync_(e);
    env_reopen(e);
    ok(e, bc_merge(e->bc, &e->err)); /* hint files too */
    put_numbered(e, 151, 200);
    sync_(e);
    env_close(e);
    int opened = 0;
    int good = 0;
    int refused = 0;
    for (int trial = 0; trial < 60; trial++) {
        struct simdisk_faults f = {.bitflip_per_read = trial < 30 ? 0.5 : 0.05,
                                   .read_error = trial % 2 == 0 ? 0.2 : 0};
        set_faults(e, &f);
        int rc = env_open(e);
        if (rc != RK_OK) {
            assert_true(rc == RK_ECORRUPT || rc == RK_EIO);
            continue;
        }
        opened++;
        char key[32];
        char val[400];
        for (int i = 1; i <= 200; i++) {
            key_of(key, sizeof(key), i);
            value_of(val, sizeof(val), i, (uint64_t)i);
            const uint8_t *got;
            uint32_t len;
            rc = get_s(e, key, &got, &len);
            if (rc == RK_OK) {
                assert_int_equal(len, strlen(val));
                assert_memory_equal(got, val, len);
                good++;
            } else {
                assert_true(rc == RK_ECORRUPT || rc == RK_EIO);
                refused++;
            }
        }
        env_close(e);
    }
    /* Opening under bit flips changed nothing on the disk. */
    no_faults(e);
    env_open_ok(e);
    expect_numbered(e, 200, 200);
    assert_true(opened > 10);
    assert_true(good > 1000);
    printf("bit flips: %d of 60 opens succeeded; gets: %d right, %d refused, 0 wrong\n", opened,
           good, refused);
    env_free(e);
}

/* ---- allocation failures ----------------------------------------------------------------- */

static void open_without_memory_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    struct env *e = env_new(9, 600);
    env_open_ok(e);
    put_numbered(e, 1, 40);
    sync_(e);
    env_reopen(e);
    ok(e, bc_merge(e->bc, &e->err));
    put_numbered(e, 41, 60);
    sync_(e);
    env_close(e);
    int failures = 0;
    for (size_t k = 1;; k++) {
        e->cnt.fail_at = e->cnt.calls + k;
        int rc = env_open(e);
        e->cnt.fail_at = 0;
        if (rc == RK_OK)
            break;
        assert_int_equal(rc, RK_ENOMEM);
        assert_int_equal(e->cnt.live, 0);
        failures++;
    }
    assert_true(failures > 5);
    expect_numbered(e, 60, 60);
    env_free(e);
}

static void put_and_del_without_memory_change_nothing(void **state)
{
    (void)state;
    struct env *e = env_new(9, 0);
    env_open_ok(e);
    put_numbered(e, 1, 14); /* the 15th key makes the keydir grow */
    for (size_t k = 1;; k++) {
        e->cnt.fail_at = e->cnt.calls + k;
        int rc =
            bc_put(e->bc, 15, (const uint8_t *)"key-0015", 8, (const uint8_t *)"v", 1, &e->err);
        e->cnt.fail_at = 0;
        if (rc == RK_OK)
            break;
        assert_int_equal(rc, RK_ENOMEM);
        expect_numbered(e, 14, 15);
    }
    end(e);
    expect(e, "key-0015", "v");
    e->cnt.fail_from = e->cnt.calls + 1;
    bool existed;
    char big[5000] = {0};
    int rc = bc_put(e->bc, 16, (const uint8_t *)"key-0001", 8, (const uint8_t *)big, sizeof(big),
                    &e->err);
    assert_int_equal(rc, RK_ENOMEM);
    e->cnt.fail_from = 0;
    ok(e, bc_del(e->bc, 16, (const uint8_t *)"key-0001", 8, &existed, &e->err));
    assert_true(existed);
    end(e);
    expect(e, "key-0001", NULL);
    env_free(e);
}

static void get_without_memory_is_enomem(void **state)
{
    (void)state;
    struct env *e = env_new(9, 0);
    env_open_ok(e);
    put_numbered(e, 1, 3);
    env_reopen(e);
    e->cnt.fail_from = e->cnt.calls + 1;
    const uint8_t *val;
    uint32_t len;
    assert_int_equal(get_s(e, "key-0001", &val, &len), RK_ENOMEM);
    e->cnt.fail_from = 0;
    expect_numbered(e, 3, 3);
    env_free(e);
}

static void merge_without_memory_leaves_the_store_usable(void **state)
{
    (void)state;
    struct env *e = env_new(9, 500);
    env_open_ok(e);
    uint64_t index = 0;
    write_churn(e, &index);
    int failures = 0;
    for (size_t k = 1;; k++) {
        e->cnt.fail_at = e->cnt.calls + k;
        int rc = bc_merge(e->bc, &e->err);
        e->cnt.fail_at = 0;
        if (rc == RK_OK)
            break;
        assert_int_equal(rc, RK_ENOMEM);
        struct names ns = list_names(e);
        assert_int_equal(ns.tmp, 0);
        assert_false(ns.merge);
        expect_churned(e);
        failures++;
    }
    assert_true(failures > 5);
    expect_churned(e);
    put1(e, ++index, "k0", "after");
    sync_(e);
    env_reopen(e);
    expect(e, "k0", "after");
    env_free(e);
}

/* ---- the state machine over the bitcask --------------------------------------------------- */

/* Entry i: client 1 + i % 4 (seq = its count so far) puts "key<i % 7>" = "val<i>". */
static size_t kv_entry(int i, uint8_t *buf, size_t cap)
{
    char key[16];
    char val[16];
    int kn = snprintf(key, sizeof(key), "key%d", i % 7);
    int vn = snprintf(val, sizeof(val), "val%d", i);
    struct kv_cmd c = {.op = KV_OP_PUT,
                       .client_id = 1 + (uint64_t)(i % 4),
                       .seq = 1 + (uint64_t)((i - 1) / 4),
                       .key = (const uint8_t *)key,
                       .key_len = (uint32_t)kn,
                       .val = (const uint8_t *)val,
                       .val_len = (uint32_t)vn};
    size_t len = 0;
    assert_int_equal(kv_cmd_encode(&c, buf, cap, &len), RK_OK);
    return len;
}

/* SCAN's pages through the kv layer: over Bitcask (the keydir's range walk) and over the
 * in-memory store (its fallback, a pass per page), the same keys per page for the same cursor,
 * session records passed over, and the pages of an iteration list every key once. */
struct page_keys {
    char keys[4096][16];
    uint32_t n;
};

static bool page_key(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct page_keys *p = ctx;
    assert_true(p->n < 4096 && key_len < 16);
    memcpy(p->keys[p->n], key, key_len);
    p->keys[p->n++][key_len] = 0;
    return true;
}

static int str_order(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void scan_pages_agree_on_bitcask_and_memstore(void **state)
{
    (void)state;
    struct env *e = env_new(11, 0);
    env_open_ok(e);
    struct kv_config kc = {.alloc = rk_alloc_libc(), .store = bc_kv_store(e->bc)};
    struct kv *bkv, *mkv;
    assert_int_equal(kv_create(&kc, &bkv, &e->err), RK_OK);
    struct kv_store *ms;
    assert_int_equal(kv_memstore_create(rk_alloc_libc(), &ms), RK_OK);
    kc.store = ms;
    assert_int_equal(kv_create(&kc, &mkv, &e->err), RK_OK);
    uint8_t buf[128];
    for (int i = 1; i <= 700; i++) {
        char key[16];
        int kn = snprintf(key, sizeof(key), "k%d", i % 500);
        struct kv_cmd c = {.op = i % 9 == 0 ? KV_OP_DEL : KV_OP_PUT,
                           .client_id = (uint64_t)(i % 3), /* 0: no session */
                           .seq = 1 + (uint64_t)i,
                           .key = (const uint8_t *)key,
                           .key_len = (uint32_t)kn,
                           .val = (const uint8_t *)"v",
                           .val_len = i % 9 == 0 ? 0 : 1};
        size_t len = 0;
        assert_int_equal(kv_cmd_encode(&c, buf, sizeof(buf), &len), RK_OK);
        struct kv_result res;
        assert_int_equal(kv_apply(bkv, (uint64_t)i, buf, (uint32_t)len, &res), RK_OK);
        assert_int_equal(kv_apply(mkv, (uint64_t)i, buf, (uint32_t)len, &res), RK_OK);
    }
    static struct page_keys bp, mp, all;
    for (uint64_t budget = 1; budget <= 1024; budget *= 4) {
        all.n = 0;
        uint64_t cursor = 0, bnext, mnext;
        uint32_t pages = 0;
        do {
            memset(&bp, 0, sizeof(bp));
            memset(&mp, 0, sizeof(mp));
            assert_int_equal(kv_scan_db_range(bkv, 0, cursor, budget, page_key, &bp, &bnext),
                             RK_OK);
            assert_int_equal(kv_scan_db_range(mkv, 0, cursor, budget, page_key, &mp, &mnext),
                             RK_OK);
            assert_int_equal(bnext, mnext);
            assert_int_equal(bp.n, mp.n);
            qsort(bp.keys, bp.n, 16, str_order);
            qsort(mp.keys, mp.n, 16, str_order);
            assert_memory_equal(bp.keys, mp.keys, (size_t)bp.n * 16);
            memcpy(all.keys[all.n], bp.keys, (size_t)bp.n * 16);
            all.n += bp.n;
            cursor = bnext;
            pages++;
        } while (cursor != 0);
        assert_int_equal(all.n, kv_dbsize(bkv, 0));
        qsort(all.keys, all.n, 16, str_order);
        for (uint32_t i = 1; i < all.n; i++)
            assert_true(strcmp(all.keys[i - 1], all.keys[i]) < 0); /* none twice */
        assert_true(budget > 64 || pages > 4);
    }
    uint64_t next = 1;
    bp.n = 0;
    assert_int_equal(kv_scan_db_range(bkv, 0, 1ull << 32, 10, page_key, &bp, &next), RK_OK);
    assert_int_equal(bp.n, 0);
    assert_int_equal(next, 0); /* past the end */
    kv_destroy(bkv);
    kv_destroy(mkv);
    ms->ops->destroy(ms);
    env_close(e);
    env_free(e);
}

static void kv_sessions_survive_a_crash_of_the_bitcask_under_them(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        struct env *e = env_new(seed, 600);
        env_open_ok(e);
        struct kv_config kc = {.alloc = rk_alloc_libc(), .store = bc_kv_store(e->bc)};
        struct kv *kv;
        assert_int_equal(kv_create(&kc, &kv, &e->err), RK_OK);
        uint8_t buf[128];
        int synced = 0;
        for (int i = 1; i <= 100; i++) {
            struct kv_result res;
            assert_int_equal(
                kv_apply(kv, (uint64_t)i, buf, (uint32_t)kv_entry(i, buf, sizeof(buf)), &res),
                RK_OK);
            assert_int_equal(res.status, KV_OK);
            if (i % 10 == (int)(seed % 10)) {
                sync_(e);
                synced = i;
            }
        }
        kv_destroy(kv);
        struct simdisk_faults f = {.torn_writes = true};
        set_faults(e, &f);
        env_close(e);
        simdisk_crash(e->disk);
        no_faults(e);
        env_open_ok(e);
        kc.store = bc_kv_store(e->bc);
        assert_int_equal(kv_create(&kc, &kv, &e->err), RK_OK);
        assert_true(kv_valid(kv));
        int applied = (int)kv_applied_index(kv);
        assert_true(applied >= synced && applied <= 100);
        /* A retry of an entry the store kept is a duplicate; the log replays the rest. */
        struct kv_result res;
        if (applied > 0) {
            assert_int_equal(kv_apply(kv, (uint64_t)applied + 1000, buf,
                                      (uint32_t)kv_entry(applied, buf, sizeof(buf)), &res),
                             RK_OK);
            assert_int_equal(res.status, KV_DUPLICATE);
        }
        for (int i = applied + 1; i <= 100; i++) {
            assert_int_equal(kv_apply(kv, (uint64_t)i + 1000, buf,
                                      (uint32_t)kv_entry(i, buf, sizeof(buf)), &res),
                             RK_OK);
            assert_int_equal(res.status, KV_OK);
        }
        for (int k = 0; k < 7; k++) {
            char key[16];
            char want[16];
            snprintf(key, sizeof(key), "key%d", k);
            int last = 100 - (100 - k) % 7;
            snprintf(want, sizeof(want), "val%d", last);
            const uint8_t *val;
            uint32_t len;
            assert_int_equal(kv_get(kv, (const uint8_t *)key, (uint32_t)strlen(key), &val, &len),
                             RK_OK);
            assert_int_equal(len, strlen(want));
            assert_memory_equal(val, want, len);
        }
        assert_true(kv_valid(kv));
        kv_destroy(kv);
        env_free(e);
    }
}

/* ---- performance ------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void throughput_on_simdisk(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    e->cfg.alloc = NULL; /* libc, as in production */
    env_open_ok(e);
    enum { N = 200000 };
    char key[17];
    uint8_t val[100];
    memset(val, 'v', sizeof(val));
    double t0 = now_s();
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "%016d", i);
        ok(e, bc_put(e->bc, (uint64_t)i + 1, (const uint8_t *)key, 16, val, sizeof(val), &e->err));
        end(e);
        if (i % 1000 == 999)
            sync_(e);
    }
    double t1 = now_s();
    struct rk_prng p;
    rk_prng_seed(&p, 1);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "%016d", (int)rk_prng_below(&p, N));
        const uint8_t *got;
        uint32_t len;
        ok(e, bc_get(e->bc, (const uint8_t *)key, 16, &got, &len, &e->err));
    }
    double t2 = now_s();
    printf("simdisk, 16-byte keys, 100-byte values: %.0f puts/s (one batch each, a sync per "
           "1000), %.0f random gets/s\n",
           N / (t1 - t0), N / (t2 - t1));
    bc_close(e->bc);
    e->bc = NULL;
    simdisk_destroy(e->disk);
    free(e);
}

/* bc_scan_after (raftkv-cli backup): a walk resumed from the last key it was given visits, in
 * bc_scan's order, every key that stays in the store from start to end exactly once, whatever
 * is inserted and deleted between the pieces, the keydir growing meanwhile. */
struct after_walk {
    char last[32];
    uint32_t last_len;
    bool have_last;
    int in_piece, piece;
    uint8_t seen[4000];
    bool ordered;
};

static bool after_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                      uint32_t val_len)
{
    struct after_walk *w = ctx;
    assert_non_null(val);
    assert_int_equal(val_len, key_len); /* each value is its key */
    assert_memory_equal(val, key, key_len);
    if (w->have_last && bc_key_order(key, key_len, (const uint8_t *)w->last, w->last_len) <= 0)
        w->ordered = false;
    assert_true(key_len < sizeof(w->last));
    memcpy(w->last, key, key_len);
    w->last_len = key_len;
    w->have_last = true;
    unsigned n = 0;
    w->last[key_len] = '\0'; /* the key is not terminated */
    if (key[0] == 'k' && sscanf(w->last + 1, "%u", &n) == 1 && n < 4000)
        w->seen[n]++;
    return ++w->in_piece < w->piece;
}

static void scan_after_resumes_in_order_across_writes(void **state)
{
    (void)state;
    struct env *e = env_new(7, 0);
    env_open_ok(e);
    char key[32];
    uint64_t index = 1;
    for (unsigned i = 0; i < 3000; i++) {
        int len = snprintf(key, sizeof(key), "k%u", i);
        ok(e, bc_put(e->bc, index, (const uint8_t *)key, (uint32_t)len, (const uint8_t *)key,
                     (uint32_t)len, &e->err));
    }
    end(e);
    struct after_walk w = {.piece = 37, .ordered = true};
    bool mid_growth = false; /* a piece started while the keydir had two tables */
    for (int round = 0; round < 1000; round++) {
        w.in_piece = 0;
        mid_growth = mid_growth || e->bc->kd.old != NULL;
        ok(e, bc_scan_after(e->bc, w.have_last ? (const uint8_t *)w.last : NULL, w.last_len,
                            after_one, &w, &e->err));
        if (w.in_piece < w.piece)
            break; /* the end */
        /* Between pieces: new keys (the table grows), and deletes of k3000.. only. */
        index++;
        for (unsigned j = 0; j < 20; j++) {
            int len = snprintf(key, sizeof(key), "n%d.%u", round, j);
            ok(e, bc_put(e->bc, index, (const uint8_t *)key, (uint32_t)len, (const uint8_t *)key,
                         (uint32_t)len, &e->err));
        }
        int len = snprintf(key, sizeof(key), "n%d.%u", round > 0 ? round - 1 : 0, 3u);
        bool existed = false;
        ok(e, bc_del(e->bc, index, (const uint8_t *)key, (uint32_t)len, &existed, &e->err));
        end(e);
    }
    assert_true(w.ordered);
    assert_true(mid_growth);
    for (unsigned i = 0; i < 3000; i++)
        assert_int_equal(w.seen[i], 1);
    env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_then_get_returns_the_value),
        cmocka_unit_test(get_of_a_missing_key_is_enoent),
        cmocka_unit_test(overwrite_returns_the_latest_value),
        cmocka_unit_test(del_removes_the_key_and_says_whether_it_existed),
        cmocka_unit_test(open_batch_is_visible_before_end_batch),
        cmocka_unit_test(values_survive_a_clean_reopen),
        cmocka_unit_test(deferred_writes_read_from_jobs_then_files),
        cmocka_unit_test(deferred_writes_not_run_are_lost_at_a_crash),
        cmocka_unit_test(tombstone_survives_reopen),
        cmocka_unit_test(a_new_index_closes_the_open_batch),
        cmocka_unit_test(same_key_twice_in_a_batch_keeps_the_later),
        cmocka_unit_test(rotation_creates_files_and_reads_across_them),
        cmocka_unit_test(merge_shrinks_the_files_and_keeps_the_contents),
        cmocka_unit_test(merge_writes_hints_that_the_next_open_uses),
        cmocka_unit_test(hinted_open_sizes_the_keydir_for_every_hint_entry_first),
        cmocka_unit_test(reserve_before_a_load_in_scan_order_keeps_the_keydir_from_growing),
        cmocka_unit_test(bad_hint_falls_back_to_scanning_the_data_file),
        cmocka_unit_test(merge_keeps_the_applied_index_when_it_drops_the_last_tombstone),
        cmocka_unit_test(merge_refuses_while_a_batch_is_open),
        cmocka_unit_test(merge_of_an_empty_store_does_nothing_and_takes_the_active_file),
        cmocka_unit_test(repeated_merges_and_reopens_keep_the_contents),
        cmocka_unit_test(open_removes_what_an_unfinished_merge_left),
        cmocka_unit_test(corrupt_manifest_fails_the_open),
        cmocka_unit_test(manifest_with_bad_fields_fails_the_open_naming_the_problem),
        cmocka_unit_test(hint_of_another_data_file_is_ignored),
        cmocka_unit_test(hint_beside_a_garbage_last_file_fails_the_open_and_cuts_nothing),
        cmocka_unit_test(hint_entries_that_the_scan_does_not_back_fail_the_open),
        cmocka_unit_test(merge_refuses_a_key_whose_hint_entry_has_no_record),
        cmocka_unit_test(deleting_every_key_while_the_keydir_drains_leaves_none),
        cmocka_unit_test(crash_loses_unsynced_batches_and_keeps_the_synced),
        cmocka_unit_test(crash_loses_a_file_created_but_not_made_durable),
        cmocka_unit_test(torn_tail_is_cut_and_leaves_a_prefix_of_batches),
        cmocka_unit_test(partial_append_is_cut_on_reopen),
        cmocka_unit_test(flipped_bit_in_an_immutable_file_fails_the_open_naming_file_and_offset),
        cmocka_unit_test(flipped_bit_in_the_last_record_of_the_last_file_is_corruption),
        cmocka_unit_test(flipped_bit_in_the_last_commit_record_costs_nothing),
        cmocka_unit_test(unsynced_bad_batch_is_torn_anywhere),
        cmocka_unit_test(commit_records_cost_no_sync),
        cmocka_unit_test(rolled_files_get_hints_that_the_next_open_uses),
        cmocka_unit_test(bad_or_missing_roll_hint_falls_back_to_scanning),
        cmocka_unit_test(crash_at_any_call_while_rolling_keeps_the_store_and_its_hints_true),
        cmocka_unit_test(damage_in_a_hinted_file_is_found_at_read_then_by_the_next_open),
        cmocka_unit_test(persistent_damage_is_detected_never_a_shorter_store),
        cmocka_unit_test(synced_bit_flip_is_corruption_at_every_record_position),
        cmocka_unit_test(hint_damage_is_harmless_merged_data_damage_is_found_by_read_and_verify),
        cmocka_unit_test(flipped_bit_in_the_middle_of_the_last_file_is_corruption),
        cmocka_unit_test(garbled_header_in_the_middle_of_the_last_file_is_corruption),
        cmocka_unit_test(get_of_a_corrupt_record_is_ecorrupt_naming_file_and_offset),
        cmocka_unit_test(key_over_the_limit_is_etoobig_and_writes_nothing),
        cmocka_unit_test(value_over_the_limit_is_etoobig_and_writes_nothing),
        cmocka_unit_test(default_limits_are_64_kib_keys_and_64_mib_values),
        cmocka_unit_test(failed_sync_poisons_the_store_until_reopened),
        cmocka_unit_test(failed_append_poisons_and_the_keydir_never_points_at_unwritten_bytes),
        cmocka_unit_test(keydir_costs_at_most_80_bytes_per_16_byte_key),
        cmocka_unit_test(keydir_grows_a_bounded_step_at_a_time),
        cmocka_unit_test(keydir_range_pages_list_every_key_once_in_order),
        cmocka_unit_test(scan_visits_every_live_key_once_with_its_value),
        cmocka_unit_test(scan_keys_lists_the_keys_of_scan_without_reading_values),
        cmocka_unit_test(scan_order_is_a_function_of_the_key_set_alone),
        cmocka_unit_test(kv_store_ops_drive_the_bitcask),
        cmocka_unit_test(random_operations_and_crashes_match_the_model),
        cmocka_unit_test(crash_at_any_call_of_a_merge_reopens_with_the_same_contents),
        cmocka_unit_test(merge_in_steps_keeps_what_is_written_meanwhile_and_its_hints_are_used),
        cmocka_unit_test(crash_at_any_step_of_a_merge_in_steps_keeps_every_newest_value),
        cmocka_unit_test(a_failed_run_leaves_the_store_usable),
        cmocka_unit_test(staged_replacement_switches_in_and_leaves_one_copy),
        cmocka_unit_test(staged_replacement_aborts_and_waits_for_a_merge),
        cmocka_unit_test(staged_replacement_without_deferred_writes),
        cmocka_unit_test(crash_at_any_call_of_a_staged_replacement_leaves_old_or_new),
        cmocka_unit_test(a_cancelled_run_changes_nothing),
        cmocka_unit_test(a_merge_in_a_small_id_gap_takes_every_closed_file),
        cmocka_unit_test(crash_during_the_recovery_of_a_crashed_merge_is_harmless),
        cmocka_unit_test(bit_flips_and_read_errors_never_return_wrong_data),
        cmocka_unit_test(open_without_memory_fails_cleanly_at_every_allocation),
        cmocka_unit_test(put_and_del_without_memory_change_nothing),
        cmocka_unit_test(get_without_memory_is_enomem),
        cmocka_unit_test(merge_without_memory_leaves_the_store_usable),
        cmocka_unit_test(kv_sessions_survive_a_crash_of_the_bitcask_under_them),
        cmocka_unit_test(scan_pages_agree_on_bitcask_and_memstore),
        cmocka_unit_test(scan_after_resumes_in_order_across_writes),
        cmocka_unit_test(throughput_on_simdisk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
