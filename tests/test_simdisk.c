/*
 * test_simdisk.c — the simulator's disk (sim/simdisk.c): it keeps what the durability contract
 * of core/fs/fs.h (D1–D3) promises and nothing more, injects its faults at the configured
 * rates, and replays exactly from a seed.
 *
 * One behaviour per test. Every random test runs on fixed seeds, so a failure is reproducible.
 * The last test checks the disk against a naive model (full durable copies) over random
 * workloads with crashes.
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

#include "common/err.h"
#include "common/prng.h"
#include "fs/fs.h"
#include "simdisk.h"

#define SECTOR_BYTES 512u
#define CONTENT_MAX  (64u * 1024u)

/* ---- helpers ------------------------------------------------------------------------------ */

static struct fs_file *open_ok(struct fs *fs, const char *name, uint32_t flags)
{
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    int rc = fs->ops->open(fs, name, flags, &f, &err);
    if (rc != RK_OK)
        fail_msg("open %s: %s (%s)", name, rk_strerror(rc), err.text);
    assert_non_null(f);
    return f;
}

static void append_ok(struct fs *fs, struct fs_file *f, const void *buf, size_t len)
{
    struct rk_errmsg err = {{0}};
    int rc = fs->ops->append(fs, f, buf, len, &err);
    if (rc != RK_OK)
        fail_msg("append: %s (%s)", rk_strerror(rc), err.text);
}

static void pwrite_ok(struct fs *fs, struct fs_file *f, uint64_t off, const void *buf, size_t len)
{
    struct rk_errmsg err = {{0}};
    int rc = fs->ops->pwrite(fs, f, off, buf, len, &err);
    if (rc != RK_OK)
        fail_msg("pwrite: %s (%s)", rk_strerror(rc), err.text);
}

static void sync_ok(struct fs *fs, struct fs_file *f)
{
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->sync(fs, f, &err), RK_OK);
}

static void sync_dir_ok(struct fs *fs)
{
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->sync_dir(fs, &err), RK_OK);
}

static uint64_t size_of(struct fs *fs, struct fs_file *f)
{
    uint64_t size = 0;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->size(fs, f, &size, &err), RK_OK);
    return size;
}

/* Creates name with content, syncs the file and the directory: a durable file. */
static void make_durable_file(struct fs *fs, const char *name, const char *content)
{
    struct fs_file *f = open_ok(fs, name, FS_CREATE);
    append_ok(fs, f, content, strlen(content));
    sync_ok(fs, f);
    sync_dir_ok(fs);
    fs->ops->close(fs, f);
}

/* The whole content of name into buf (NUL-terminated, at most CONTENT_MAX bytes); returns the
 * open's error code (RK_ENOENT for a missing file). */
static int read_file(struct fs *fs, const char *name, char *buf, size_t *len)
{
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    int rc = fs->ops->open(fs, name, 0, &f, &err);
    if (rc != RK_OK)
        return rc;
    size_t got = 0;
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, CONTENT_MAX, &got, &err), RK_OK);
    assert_true(got < CONTENT_MAX);
    buf[got] = '\0';
    if (len != NULL)
        *len = got;
    fs->ops->close(fs, f);
    return RK_OK;
}

static void assert_content(struct fs *fs, const char *name, const char *want)
{
    static char buf[CONTENT_MAX + 1];
    assert_int_equal(read_file(fs, name, buf, NULL), RK_OK);
    assert_string_equal(buf, want);
}

static void assert_missing(struct fs *fs, const char *name)
{
    static char buf[CONTENT_MAX + 1];
    assert_int_equal(read_file(fs, name, buf, NULL), RK_ENOENT);
}

struct name_list {
    char names[64][FS_NAME_MAX + 1];
    size_t count;
    size_t stop_after; /* 0: never stop */
};

static bool collect_name(void *ctx, const char *name)
{
    struct name_list *l = ctx;
    assert_true(l->count < 64);
    snprintf(l->names[l->count], sizeof(l->names[0]), "%s", name);
    l->count++;
    return l->stop_after == 0 || l->count < l->stop_after;
}

static void list_ok(struct fs *fs, struct name_list *l)
{
    struct rk_errmsg err = {{0}};
    l->count = 0;
    assert_int_equal(fs->ops->list(fs, collect_name, l, &err), RK_OK);
}

static unsigned popcount8(uint8_t x)
{
    unsigned n = 0;
    for (; x != 0; x &= (uint8_t)(x - 1))
        n++;
    return n;
}

/* ---- reading and writing --------------------------------------------------------------------- */

static void write_then_read_returns_the_bytes(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "a.data", FS_CREATE);
    append_ok(fs, f, "hello ", 6);
    append_ok(fs, f, "world", 5);
    pwrite_ok(fs, f, 0, "J", 1);
    pwrite_ok(fs, f, 14, "!", 1); /* extends with a zero-filled hole */
    assert_int_equal(size_of(fs, f), 15);

    char buf[32];
    size_t got = 0;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 15);
    assert_memory_equal(buf, "Jello world\0\0\0!", 15);
    assert_int_equal(fs->ops->pread(fs, f, 6, buf, 5, &got, &err), RK_OK);
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(fs->ops->pread(fs, f, 100, buf, 5, &got, &err), RK_OK);
    assert_int_equal(got, 0);

    struct rk_errmsg terr = {{0}};
    assert_int_equal(fs->ops->truncate(fs, f, 5, &terr), RK_OK);
    assert_int_equal(size_of(fs, f), 5);
    assert_int_equal(simdisk_bytes(d), 5);
    fs->ops->close(fs, f);
    assert_content(fs, "a.data", "Jello");
    simdisk_destroy(d);
}

static void open_flags_follow_the_contract(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->open(fs, "x", 0, &f, &err), RK_ENOENT);
    assert_null(f);
    f = open_ok(fs, "x", FS_CREATE | FS_EXCL);
    struct fs_file *g = NULL;
    assert_int_equal(fs->ops->open(fs, "x", FS_CREATE | FS_EXCL, &g, &err), RK_EEXIST);
    g = open_ok(fs, "x", FS_CREATE); /* exists: opened, not truncated */
    append_ok(fs, f, "ab", 2);
    assert_int_equal(size_of(fs, g), 2);
    struct fs_file *h = NULL;
    assert_int_equal(fs->ops->open(fs, "x", 1u << 7, &h, &err), RK_EINVAL);
    assert_int_equal(fs->ops->open(fs, "x", FS_EXCL, &h, &err), RK_EINVAL);
    assert_null(h);
    fs->ops->close(fs, f);
    fs->ops->close(fs, g);
    simdisk_destroy(d);
}

static void removed_file_stays_usable_through_open_handle(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "gone", FS_CREATE);
    append_ok(fs, f, "abc", 3);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->remove(fs, "gone", &err), RK_OK);
    assert_missing(fs, "gone");
    assert_int_equal(fs->ops->remove(fs, "gone", &err), RK_ENOENT);
    append_ok(fs, f, "def", 3);
    char buf[8];
    size_t got = 0;
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 6);
    assert_memory_equal(buf, "abcdef", 6);
    assert_int_equal(simdisk_bytes(d), 6); /* still held, as on a real disk */
    fs->ops->close(fs, f);
    assert_int_equal(simdisk_bytes(d), 0);
    simdisk_destroy(d);
}

static void rename_replaces_target_and_keeps_handles(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "to", "old");
    struct fs_file *old = open_ok(fs, "to", 0);
    struct fs_file *f = open_ok(fs, "from", FS_CREATE);
    append_ok(fs, f, "new", 3);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->rename(fs, "from", "to", &err), RK_OK);
    assert_missing(fs, "from");
    assert_content(fs, "to", "new");
    append_ok(fs, f, "er", 2); /* the handle follows the file, not the name */
    assert_content(fs, "to", "newer");
    char buf[4];
    size_t got = 0;
    assert_int_equal(fs->ops->pread(fs, old, 0, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "old", 3);
    assert_int_equal(fs->ops->rename(fs, "from", "x", &err), RK_ENOENT);
    assert_int_equal(fs->ops->rename(fs, "to", "to", &err), RK_OK);
    assert_content(fs, "to", "newer");
    fs->ops->close(fs, old);
    fs->ops->close(fs, f);
    simdisk_destroy(d);
}

/* ---- D1: file bytes ---------------------------------------------------------------------------
 */

static void unsynced_append_is_lost_at_crash_synced_is_kept(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "log", FS_CREATE);
    sync_dir_ok(fs);
    append_ok(fs, f, "kept", 4);
    sync_ok(fs, f);
    append_ok(fs, f, "lost", 4);
    simdisk_crash(d);
    assert_content(fs, "log", "kept");
    simdisk_destroy(d);
}

static void crash_without_torn_writes_keeps_exactly_the_durable_bytes(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        struct simdisk *d = simdisk_create(seed);
        struct fs *fs = simdisk_fs(d);
        make_durable_file(fs, "f", "0123456789");
        struct fs_file *f = open_ok(fs, "f", 0);
        append_ok(fs, f, "abcdefghij", 10);
        simdisk_crash(d);
        assert_content(fs, "f", "0123456789");
        simdisk_destroy(d);
    }
}

static void pwrite_below_durable_length_reverts_at_crash(void **state)
{
    (void)state;
    /* Three and a half pages, so that the overwrite straddles a page boundary. */
    enum { N = 4096 * 3 + 2048 };
    static char orig[N + 1];
    for (size_t i = 0; i < N; i++)
        orig[i] = (char)('a' + i % 26);
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "f", orig);
    struct fs_file *f = open_ok(fs, "f", 0);
    static char junk[6000];
    memset(junk, 'Z', sizeof(junk));
    pwrite_ok(fs, f, 3000, junk, sizeof(junk));
    pwrite_ok(fs, f, 0, "!", 1);
    static char buf[CONTENT_MAX + 1];
    size_t len = 0;
    assert_int_equal(read_file(fs, "f", buf, &len), RK_OK);
    assert_int_equal(len, N);
    assert_int_equal(buf[0], '!');
    assert_int_equal(buf[3000], 'Z');
    simdisk_crash(d);
    assert_content(fs, "f", orig);
    simdisk_destroy(d);
}

static void truncate_below_durable_length_reverts_at_crash(void **state)
{
    (void)state;
    enum { N = 4096 * 2 + 100 };
    static char orig[N + 1];
    for (size_t i = 0; i < N; i++)
        orig[i] = (char)('A' + i % 26);
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "f", orig);
    struct fs_file *f = open_ok(fs, "f", 0);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->truncate(fs, f, 10, &err), RK_OK);
    append_ok(fs, f, "xyz", 3);
    assert_int_equal(size_of(fs, f), 13);
    simdisk_crash(d);
    assert_content(fs, "f", orig);
    simdisk_destroy(d);
}

/* Torn tails: durable bytes [0, DL), TAIL unsynced bytes after them that cross a sector
 * boundary. Over many seeds a crash keeps every prefix length of the tail, never more; the
 * durable bytes never change; garbage appears, and only in the last sector kept. */
static void torn_tail_keeps_every_prefix_and_garbage_only_past_durable(void **state)
{
    (void)state;
    enum { DL = 1000, TAIL = 100, SEEDS = 3000 };
    static char durable[DL + 1];
    static char tail[TAIL];
    for (size_t i = 0; i < DL; i++)
        durable[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < TAIL; i++)
        tail[i] = (char)('0' + i % 10);
    struct simdisk_faults faults = {.torn_writes = true};
    bool seen[TAIL + 1] = {false};
    unsigned garbled = 0;
    static char buf[CONTENT_MAX + 1];
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct simdisk *d = simdisk_create(seed);
        struct fs *fs = simdisk_fs(d);
        simdisk_set_faults(d, &faults);
        make_durable_file(fs, "t", durable);
        struct fs_file *f = open_ok(fs, "t", 0);
        append_ok(fs, f, tail, TAIL);
        simdisk_crash(d);
        size_t len = 0;
        assert_int_equal(read_file(fs, "t", buf, &len), RK_OK);
        assert_in_range(len, DL, DL + TAIL);
        seen[len - DL] = true;
        assert_memory_equal(buf, durable, DL);
        size_t sector = len == 0 ? 0 : (len - 1) / SECTOR_BYTES * SECTOR_BYTES;
        bool differs = false;
        for (size_t i = DL; i < len; i++) {
            if (buf[i] != tail[i - DL]) {
                assert_true(i >= sector);
                differs = true;
            }
        }
        garbled += differs;
        /* What survived a crash is on the media: a second crash keeps it all. */
        fs->ops->close(fs, f);
        simdisk_crash(d);
        size_t again = 0;
        static char buf2[CONTENT_MAX + 1];
        assert_int_equal(read_file(fs, "t", buf2, &again), RK_OK);
        assert_int_equal(again, len);
        assert_memory_equal(buf2, buf, len);
        simdisk_destroy(d);
    }
    for (size_t k = 0; k <= TAIL; k++) {
        if (!seen[k])
            fail_msg("a torn tail of %zu bytes never happened", k);
    }
    assert_in_range(garbled, SEEDS / 4, SEEDS * 3 / 4); /* about half */
}

/* ---- D2, D3: the directory ----------------------------------------------------------------------
 */

static void created_file_without_sync_dir_vanishes_at_crash(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "new", FS_CREATE);
    append_ok(fs, f, "data", 4);
    sync_ok(fs, f); /* the bytes are durable, the name is not */
    simdisk_crash(d);
    assert_missing(fs, "new");
    assert_int_equal(simdisk_bytes(d), 0);
    fs->ops->close(fs, f);
    simdisk_destroy(d);
}

static void rename_without_sync_dir_is_undone_at_crash(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "a", "content");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->rename(fs, "a", "b", &err), RK_OK);
    simdisk_crash(d);
    assert_content(fs, "a", "content");
    assert_missing(fs, "b");
    simdisk_destroy(d);
}

static void rename_over_target_without_sync_dir_brings_old_target_back(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "MANIFEST", "old");
    make_durable_file(fs, "MANIFEST.tmp", "new");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->rename(fs, "MANIFEST.tmp", "MANIFEST", &err), RK_OK);
    assert_content(fs, "MANIFEST", "new");
    simdisk_crash(d);
    assert_content(fs, "MANIFEST", "old");
    assert_content(fs, "MANIFEST.tmp", "new");
    simdisk_destroy(d);
}

static void remove_without_sync_dir_is_undone_at_crash(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "f", "durable");
    struct fs_file *f = open_ok(fs, "f", 0);
    append_ok(fs, f, "+unsynced", 9);
    fs->ops->close(fs, f);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->remove(fs, "f", &err), RK_OK);
    simdisk_crash(d);
    assert_content(fs, "f", "durable"); /* back, with its durable bytes */
    simdisk_destroy(d);
}

static void with_sync_and_sync_dir_everything_is_durable(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "removed", "x");
    make_durable_file(fs, "replaced", "old");
    struct fs_file *f = open_ok(fs, "created", FS_CREATE);
    append_ok(fs, f, "c", 1);
    sync_ok(fs, f);
    fs->ops->close(fs, f);
    f = open_ok(fs, "tmp", FS_CREATE);
    append_ok(fs, f, "new", 3);
    sync_ok(fs, f);
    fs->ops->close(fs, f);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->rename(fs, "tmp", "replaced", &err), RK_OK);
    assert_int_equal(fs->ops->remove(fs, "removed", &err), RK_OK);
    sync_dir_ok(fs);
    simdisk_crash(d);
    struct name_list l = {.stop_after = 0};
    list_ok(fs, &l);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.names[0], "created");
    assert_string_equal(l.names[1], "replaced");
    assert_content(fs, "created", "c");
    assert_content(fs, "replaced", "new");
    simdisk_destroy(d);
}

/* ---- faults -----------------------------------------------------------------------------------
 */

static void bitflip_changes_one_bit_of_returned_bytes_not_stored(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(7);
    struct fs *fs = simdisk_fs(d);
    char orig[300];
    for (size_t i = 0; i < sizeof(orig); i++)
        orig[i] = (char)i;
    struct fs_file *f = open_ok(fs, "f", FS_CREATE);
    append_ok(fs, f, orig, sizeof(orig));
    struct simdisk_faults faults = {.bitflip_per_read = 1.0};
    simdisk_set_faults(d, &faults);
    struct rk_errmsg err = {{0}};
    for (int round = 0; round < 200; round++) {
        char buf[sizeof(orig)];
        size_t got = 0;
        assert_int_equal(fs->ops->pread(fs, f, 0, buf, sizeof(buf), &got, &err), RK_OK);
        assert_int_equal(got, sizeof(orig));
        unsigned flipped = 0;
        for (size_t i = 0; i < sizeof(orig); i++)
            flipped += popcount8((uint8_t)(buf[i] ^ orig[i]));
        assert_int_equal(flipped, 1);
    }
    struct simdisk_faults none = {0};
    simdisk_set_faults(d, &none);
    char buf[sizeof(orig)];
    size_t got = 0;
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, sizeof(buf), &got, &err), RK_OK);
    assert_memory_equal(buf, orig, sizeof(orig));
    fs->ops->close(fs, f);
    simdisk_destroy(d);
}


/* ---- persistent damage (simdisk.h) ---------------------------------------------------------- */

/* A file of n durable bytes, byte i = i * 7 + 3, synced with its name. */
static void pd_file(struct fs *fs, const char *name, size_t n)
{
    uint8_t buf[8192];
    assert_true(n <= sizeof(buf));
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    struct fs_file *f = open_ok(fs, name, FS_CREATE);
    append_ok(fs, f, buf, n);
    sync_ok(fs, f);
    fs->ops->close(fs, f);
    sync_dir_ok(fs);
}

/* Bits of name that differ from pd_file's content (n bytes expected). */
static unsigned pd_flipped(struct fs *fs, const char *name, size_t n)
{
    char buf[8192];
    size_t len = sizeof(buf);
    assert_int_equal(read_file(fs, name, buf, &len), RK_OK);
    assert_int_equal(len, n);
    unsigned flipped = 0;
    for (size_t i = 0; i < n; i++)
        flipped += popcount8((uint8_t)((uint8_t)buf[i] ^ (uint8_t)(i * 7 + 3)));
    return flipped;
}

static void bit_rot_at_a_crash_is_one_persistent_bit_in_durable_bytes(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(21);
    struct fs *fs = simdisk_fs(d);
    pd_file(fs, "a", 3000);
    pd_file(fs, "b", 1000);
    struct simdisk_faults rot = {.rot_per_crash = 1.0};
    simdisk_set_faults(d, &rot);
    simdisk_crash(d);
    assert_int_equal(simdisk_damage(d), 1);
    assert_non_null(strstr(simdisk_damage_text(d), "bit rot in "));
    assert_int_equal(pd_flipped(fs, "a", 3000) + pd_flipped(fs, "b", 1000), 1);
    struct simdisk_faults none = {0};
    simdisk_set_faults(d, &none);
    simdisk_crash(d); /* on the media: it stays */
    assert_int_equal(pd_flipped(fs, "a", 3000) + pd_flipped(fs, "b", 1000), 1);
    assert_int_equal(simdisk_damage(d), 1);
    simdisk_destroy(d);
}

static void latent_sector_error_fails_every_read_of_its_sector_until_rewritten(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(22);
    struct fs *fs = simdisk_fs(d);
    pd_file(fs, "a", 3000);
    assert_int_equal(simdisk_bad_sector(d, "a", 1100), RK_OK);
    struct fs_file *f = open_ok(fs, "a", 0);
    struct rk_errmsg err = {{0}};
    char buf[1024];
    size_t got;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fs->ops->pread(fs, f, 1000, buf, 100, &got, &err), RK_EIO);
        assert_non_null(strstr(err.text, "latent sector error at 1024"));
    }
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, 1024, &got, &err), RK_OK); /* before it */
    assert_int_equal(fs->ops->pread(fs, f, 1536, buf, 512, &got, &err), RK_OK); /* after it */
    simdisk_crash(d); /* persists */
    fs->ops->close(fs, f);
    f = open_ok(fs, "a", 0);
    assert_int_equal(fs->ops->pread(fs, f, 1030, buf, 1, &got, &err), RK_EIO);
    pwrite_ok(fs, f, 1024, buf, 512); /* a write remaps the sector */
    assert_int_equal(fs->ops->pread(fs, f, 1030, buf, 1, &got, &err), RK_OK);
    fs->ops->close(fs, f);
    /* From the fault settings: one file gets one at a crash. */
    struct simdisk_faults lse = {.lse_per_crash = 1.0};
    simdisk_set_faults(d, &lse);
    simdisk_crash(d);
    assert_int_equal(simdisk_damage(d), 1);
    assert_non_null(strstr(simdisk_damage_text(d), "latent sector error in a at offset "));
    simdisk_destroy(d);
}

static void lost_write_reads_back_until_the_crash_then_is_zeros(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(23);
    struct fs *fs = simdisk_fs(d);
    pd_file(fs, "a", 1000);
    struct simdisk_faults lost = {.lost_write = 1.0};
    simdisk_set_faults(d, &lost);
    struct fs_file *f = open_ok(fs, "a", 0);
    uint8_t w[200];
    memset(w, 0xab, sizeof(w));
    append_ok(fs, f, w, sizeof(w)); /* lost */
    append_ok(fs, f, w, 100);       /* not: one event between crashes */
    sync_ok(fs, f);
    struct rk_errmsg err = {{0}};
    uint8_t buf[300];
    size_t got;
    assert_int_equal(fs->ops->pread(fs, f, 1000, buf, 300, &got, &err), RK_OK);
    assert_int_equal(buf[0], 0xab); /* the page cache has it */
    fs->ops->close(fs, f);
    simdisk_crash(d);
    assert_int_equal(simdisk_damage(d), 1);
    assert_non_null(strstr(simdisk_damage_text(d), "lost write in a at offset 1000"));
    f = open_ok(fs, "a", 0);
    assert_int_equal(size_of(fs, f), 1300);
    assert_int_equal(fs->ops->pread(fs, f, 1000, buf, 300, &got, &err), RK_OK);
    for (int i = 0; i < 200; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[200], 0xab);
    fs->ops->close(fs, f);
    assert_int_equal(pd_flipped(fs, "a", 1300) > 0, 1); /* (the tail differs from pd_file's) */
    simdisk_destroy(d);
}

static void lost_write_never_synced_or_overwritten_is_no_damage(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(24);
    struct fs *fs = simdisk_fs(d);
    pd_file(fs, "a", 1000);
    struct simdisk_faults lost = {.lost_write = 1.0};
    simdisk_set_faults(d, &lost);
    struct fs_file *f = open_ok(fs, "a", 0);
    uint8_t w[200] = {1};
    append_ok(fs, f, w, sizeof(w)); /* lost, but never synced: gone at the crash anyway */
    fs->ops->close(fs, f);
    simdisk_crash(d);
    assert_int_equal(simdisk_damage(d), 0);
    f = open_ok(fs, "a", 0);
    append_ok(fs, f, w, sizeof(w)); /* lost */
    assert_int_equal(fs->ops->truncate(fs, f, 1000, &(struct rk_errmsg){{0}}), RK_OK);
    sync_ok(fs, f);
    fs->ops->close(fs, f);
    simdisk_crash(d);
    assert_int_equal(simdisk_damage(d), 0); /* cut before it was synced */
    simdisk_destroy(d);
}

static void misdirected_write_lands_on_an_older_block_and_is_lost_in_place(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct simdisk *d = simdisk_create(seed);
        struct fs *fs = simdisk_fs(d);
        pd_file(fs, "a", 4000);
        struct simdisk_faults mis = {.misdirected_write = 1.0};
        simdisk_set_faults(d, &mis);
        struct fs_file *f = open_ok(fs, "a", 0);
        uint8_t w[100];
        memset(w, 0xcd, sizeof(w));
        append_ok(fs, f, w, sizeof(w));
        sync_ok(fs, f);
        fs->ops->close(fs, f);
        simdisk_crash(d);
        assert_int_equal(simdisk_damage(d), 1);
        char buf[8192];
        size_t len = sizeof(buf);
        assert_int_equal(read_file(fs, "a", buf, &len), RK_OK);
        assert_int_equal(len, 4100);
        for (size_t i = 4000; i < 4100; i++)
            assert_int_equal((uint8_t)buf[i], 0);
        /* 100 bytes of 0xcd, ending at least a sector before the old durable end. */
        size_t at = 0;
        while (at < 4000 && (uint8_t)buf[at] == (uint8_t)(at * 7 + 3))
            at++;
        assert_true(at + 100 <= 4000 - 512);
        for (size_t i = at; i < at + 100; i++)
            assert_int_equal((uint8_t)buf[i], 0xcd);
        simdisk_destroy(d);
    }
}

static void read_errors_happen_at_the_configured_rate(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(11);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "f", FS_CREATE);
    append_ok(fs, f, "abc", 3);
    struct simdisk_faults faults = {.read_error = 0.1};
    simdisk_set_faults(d, &faults);
    unsigned failed = 0;
    for (int i = 0; i < 10000; i++) {
        char buf[3] = {0};
        size_t got = 99;
        struct rk_errmsg err = {{0}};
        int rc = fs->ops->pread(fs, f, 0, buf, sizeof(buf), &got, &err);
        if (rc == RK_OK) {
            assert_int_equal(got, 3);
            assert_memory_equal(buf, "abc", 3);
        } else {
            assert_int_equal(rc, RK_EIO);
            assert_int_equal(got, 0);
            assert_non_null(strstr(err.text, "read from f"));
            failed++;
        }
    }
    assert_in_range(failed, 800, 1200);
    fs->ops->close(fs, f);
    simdisk_destroy(d);
}

static void write_errors_happen_at_the_configured_rate_after_a_prefix(void **state)
{
    (void)state;
    enum { CHUNK = 16, ROUNDS = 4000 };
    struct simdisk *d = simdisk_create(12);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "0000000001.data", FS_CREATE);
    struct simdisk_faults faults = {.write_error = 0.2};
    simdisk_set_faults(d, &faults);
    unsigned failed = 0, eio = 0, enospc = 0, partial = 0;
    uint64_t size = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char chunk[CHUNK];
        memset(chunk, 'a' + i % 26, sizeof(chunk));
        struct rk_errmsg err = {{0}};
        int rc = fs->ops->append(fs, f, chunk, sizeof(chunk), &err);
        uint64_t now = size_of(fs, f);
        if (rc == RK_OK) {
            assert_int_equal(now, size + CHUNK);
        } else {
            assert_true(rc == RK_EIO || rc == RK_ENOSPC);
            assert_true(now < size + CHUNK);
            assert_true(now >= size);
            assert_non_null(strstr(err.text, "simdisk: append to 0000000001.data"));
            failed++;
            eio += rc == RK_EIO;
            enospc += rc == RK_ENOSPC;
            partial += now > size;
        }
        if (now > size) { /* the prefix written is the prefix given */
            char buf[CHUNK];
            size_t got = 0;
            assert_int_equal(fs->ops->pread(fs, f, size, buf, (size_t)(now - size), &got, &err),
                             RK_OK);
            assert_memory_equal(buf, chunk, (size_t)(now - size));
        }
        size = now;
    }
    assert_in_range(failed, ROUNDS * 15 / 100, ROUNDS * 25 / 100);
    assert_true(eio > failed / 4);
    assert_true(enospc > failed / 4);
    assert_true(partial > failed / 2);
    fs->ops->close(fs, f);
    simdisk_destroy(d);
}

static void sync_errors_happen_at_the_configured_rate(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(13);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "f", FS_CREATE);
    struct simdisk_faults faults = {.sync_error = 0.25};
    simdisk_set_faults(d, &faults);
    unsigned failed = 0;
    for (int i = 0; i < 4000; i++) {
        struct rk_errmsg err = {{0}};
        int rc = i % 2 == 0 ? fs->ops->sync(fs, f, &err) : fs->ops->sync_dir(fs, &err);
        if (rc != RK_OK) {
            assert_int_equal(rc, RK_EIO);
            failed++;
        }
    }
    assert_in_range(failed, 800, 1200);
    fs->ops->close(fs, f);
    simdisk_destroy(d);
}

static void failed_sync_makes_nothing_durable(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(14);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "f", "old");
    struct fs_file *f = open_ok(fs, "f", 0);
    append_ok(fs, f, "+new", 4);
    struct fs_file *g = open_ok(fs, "created", FS_CREATE);
    struct simdisk_faults faults = {.sync_error = 1.0};
    simdisk_set_faults(d, &faults);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->sync(fs, f, &err), RK_EIO);
    assert_non_null(strstr(err.text, "sync of f"));
    assert_int_equal(fs->ops->sync_dir(fs, &err), RK_EIO);
    simdisk_crash(d);
    assert_content(fs, "f", "old");
    assert_missing(fs, "created");
    fs->ops->close(fs, f);
    fs->ops->close(fs, g);
    simdisk_destroy(d);
}

static void crash_at_call_fails_that_call_and_later_until_crash(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct simdisk_faults faults = {.crash_at_call = 4};
    simdisk_set_faults(d, &faults);
    assert_int_equal(simdisk_calls(d), 0);
    struct fs_file *f = open_ok(fs, "f", FS_CREATE); /* call 1 */
    append_ok(fs, f, "abc", 3);                      /* call 2 */
    sync_dir_ok(fs);                                 /* call 3 */
    assert_false(simdisk_crashed(d));
    assert_int_equal(simdisk_calls(d), 3);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->sync(fs, f, &err), RK_EIO); /* call 4: the crash point */
    assert_true(simdisk_crashed(d));
    assert_non_null(strstr(err.text, "sync of f"));
    assert_int_equal(fs->ops->append(fs, f, "def", 3, &err), RK_EIO);
    assert_int_equal(fs->ops->sync_dir(fs, &err), RK_EIO);
    struct fs_file *g = NULL;
    assert_int_equal(fs->ops->open(fs, "g", FS_CREATE, &g, &err), RK_EIO);
    assert_null(g);
    assert_int_equal(simdisk_calls(d), 7);
    assert_true(simdisk_crashed(d));
    fs->ops->close(fs, f);
    simdisk_crash(d);
    assert_false(simdisk_crashed(d));
    /* The file was created and named durably, its bytes never synced; the crash point is
     * cleared, so the disk works again. */
    assert_content(fs, "f", "");
    f = open_ok(fs, "f", 0);
    append_ok(fs, f, "xyz", 3);
    sync_ok(fs, f);
    fs->ops->close(fs, f);
    assert_content(fs, "f", "xyz");
    simdisk_destroy(d);
}

static void writes_after_the_crash_point_write_nothing(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "f", FS_CREATE);
    append_ok(fs, f, "abc", 3);
    struct simdisk_faults faults = {.crash_at_call = 1};
    simdisk_set_faults(d, &faults);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->append(fs, f, "def", 3, &err), RK_EIO);
    assert_int_equal(fs->ops->pwrite(fs, f, 0, "X", 1, &err), RK_EIO);
    assert_int_equal(fs->ops->truncate(fs, f, 0, &err), RK_EIO);
    assert_int_equal(fs->ops->remove(fs, "f", &err), RK_EIO);
    assert_int_equal(simdisk_bytes(d), 3);
    fs->ops->close(fs, f);
    simdisk_destroy(d);
}

static void stale_handles_after_crash_are_safe(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "f", "abc");
    struct fs_file *f = open_ok(fs, "f", 0);
    struct fs_file *never_closed = open_ok(fs, "f", 0);
    struct fs_file *orphan = open_ok(fs, "tmp", FS_CREATE);
    simdisk_crash(d);
    struct rk_errmsg err = {{0}};
    char buf[4];
    size_t got = 7;
    uint64_t size = 0;
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, sizeof(buf), &got, &err), RK_EIO);
    assert_int_equal(got, 0);
    assert_non_null(strstr(err.text, "stale"));
    assert_int_equal(fs->ops->append(fs, f, "x", 1, &err), RK_EIO);
    assert_int_equal(fs->ops->pwrite(fs, f, 0, "x", 1, &err), RK_EIO);
    assert_int_equal(fs->ops->sync(fs, f, &err), RK_EIO);
    assert_int_equal(fs->ops->size(fs, f, &size, &err), RK_EIO);
    assert_int_equal(fs->ops->truncate(fs, f, 0, &err), RK_EIO);
    assert_int_equal(fs->ops->append(fs, orphan, "x", 1, &err), RK_EIO);
    assert_content(fs, "f", "abc");
    /* A new handle works, and a name reused after the crash does not reach stale handles. */
    struct fs_file *g = open_ok(fs, "tmp", FS_CREATE);
    append_ok(fs, g, "new", 3);
    fs->ops->close(fs, f);
    fs->ops->close(fs, orphan);
    fs->ops->close(fs, g);
    assert_content(fs, "tmp", "new");
    (void)never_closed; /* freed by simdisk_destroy (the sanitizer build checks) */
    simdisk_destroy(d);
}

/* ---- determinism
 * ---------------------------------------------------------------------------------- */

/* A hash of everything a random workload under every fault observes. */
static uint64_t faulty_workload(uint64_t seed)
{
    struct simdisk *d = simdisk_create(seed);
    struct fs *fs = simdisk_fs(d);
    struct simdisk_faults faults = {.torn_writes = true,
                                    .bitflip_per_read = 0.1,
                                    .read_error = 0.1,
                                    .write_error = 0.1,
                                    .sync_error = 0.1,
                                    .sync_us = 5};
    simdisk_set_faults(d, &faults);
    struct rk_prng ops; /* the call sequence: the same for every disk seed */
    rk_prng_seed(&ops, 99);
    uint64_t h = 1469598103934665603ull;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ull)
    struct fs_file *f = NULL;
    for (int i = 0; i < 3000; i++) {
        struct rk_errmsg err = {{0}};
        char name[8];
        snprintf(name, sizeof(name), "f%u", (unsigned)rk_prng_below(&ops, 4));
        uint8_t buf[700];
        for (size_t k = 0; k < sizeof(buf); k++)
            buf[k] = (uint8_t)(i + k);
        size_t len = (size_t)rk_prng_below(&ops, sizeof(buf));
        int rc = RK_OK;
        switch (rk_prng_below(&ops, 8)) {
        case 0:
            if (f != NULL)
                fs->ops->close(fs, f);
            f = NULL;
            rc = fs->ops->open(fs, name, FS_CREATE, &f, &err);
            break;
        case 1:
        case 2:
            rc = f == NULL ? RK_OK : fs->ops->append(fs, f, buf, len, &err);
            break;
        case 3:
            if (f != NULL) {
                size_t got = 0;
                rc = fs->ops->pread(fs, f, rk_prng_below(&ops, 2000), buf, len, &got, &err);
                MIX(got);
                for (size_t k = 0; k < got; k++)
                    MIX(buf[k]);
            }
            break;
        case 4:
            rc = f == NULL ? RK_OK : fs->ops->sync(fs, f, &err);
            break;
        case 5:
            rc = fs->ops->sync_dir(fs, &err);
            break;
        case 6:
            rc = fs->ops->rename(fs, name, "f0", &err);
            break;
        default:
            if (rk_prng_below(&ops, 10) == 0) {
                simdisk_crash(d);
                MIX(simdisk_bytes(d));
            }
            break;
        }
        MIX(rc);
    }
#undef MIX
    if (f != NULL)
        fs->ops->close(fs, f);
    h ^= simdisk_bytes(d) + simdisk_take_busy_us(d);
    simdisk_destroy(d);
    return h;
}

static void same_seed_same_calls_same_results(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++)
        assert_int_equal(faulty_workload(seed), faulty_workload(seed));
    /* The faults do come from the seed. */
    assert_int_not_equal(faulty_workload(1), faulty_workload(2));
}

/* ---- the directory listing, names
 * ---------------------------------------------------------------- */

static void list_reports_current_names_in_strcmp_order(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    const char *names[] = {"b",  "a.hint", "B", "0000000010.data", "0000000002.data", "_x",
                           "-y", "a",      "z"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        fs->ops->close(fs, open_ok(fs, names[i], FS_CREATE));
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->remove(fs, "z", &err), RK_OK);
    struct name_list l = {.stop_after = 0};
    list_ok(fs, &l);
    const char *want[] = {"-y", "0000000002.data", "0000000010.data", "B", "_x", "a", "a.hint",
                          "b"};
    assert_int_equal(l.count, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < l.count; i++)
        assert_string_equal(l.names[i], want[i]);
    l.stop_after = 3;
    list_ok(fs, &l);
    assert_int_equal(l.count, 3);
    simdisk_destroy(d);
}

static void invalid_names_are_refused(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    char long_name[FS_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *bad[] = {"", ".", "..", "a/b", "a b", "../x", "é", long_name};
    make_durable_file(fs, "ok", "x");
    struct rk_errmsg err = {{0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fs_file *f = NULL;
        assert_int_equal(fs->ops->open(fs, bad[i], FS_CREATE, &f, &err), RK_EINVAL);
        assert_null(f);
        assert_int_equal(fs->ops->rename(fs, "ok", bad[i], &err), RK_EINVAL);
        assert_int_equal(fs->ops->rename(fs, bad[i], "ok", &err), RK_EINVAL);
        assert_int_equal(fs->ops->remove(fs, bad[i], &err), RK_EINVAL);
        assert_int_equal(simdisk_corrupt(d, bad[i], 0, 1), RK_EINVAL);
    }
    long_name[FS_NAME_MAX] = '\0'; /* exactly FS_NAME_MAX: valid */
    fs->ops->close(fs, open_ok(fs, long_name, FS_CREATE));
    struct name_list l = {.stop_after = 0};
    list_ok(fs, &l);
    assert_int_equal(l.count, 2);
    simdisk_destroy(d);
}

/* ---- the simulator's side
 * ------------------------------------------------------------------------- */

static void corrupt_flips_the_bit_in_current_and_durable_bytes(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    make_durable_file(fs, "f", "abcd");
    assert_int_equal(simdisk_corrupt(d, "f", 1, 0x01), RK_OK);
    assert_content(fs, "f", "accd");
    simdisk_crash(d);
    assert_content(fs, "f", "accd");
    /* The same when the page was overwritten since the sync (its durable copy is aside). */
    struct fs_file *f = open_ok(fs, "f", 0);
    pwrite_ok(fs, f, 0, "W", 1);
    assert_int_equal(simdisk_corrupt(d, "f", 2, 0x02), RK_OK);
    assert_content(fs, "f", "Wcad");
    fs->ops->close(fs, f);
    simdisk_crash(d);
    assert_content(fs, "f", "acad");
    assert_int_equal(simdisk_corrupt(d, "f", 4, 0x01), RK_EINVAL);
    assert_int_equal(simdisk_corrupt(d, "nope", 0, 0x01), RK_ENOENT);
    simdisk_destroy(d);
}

static void busy_time_accumulates_per_sync_and_resets_on_take(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct simdisk_faults faults = {.sync_us = 250};
    simdisk_set_faults(d, &faults);
    struct fs_file *f = open_ok(fs, "f", FS_CREATE);
    append_ok(fs, f, "x", 1);
    assert_int_equal(simdisk_take_busy_us(d), 0);
    sync_ok(fs, f);
    sync_ok(fs, f);
    sync_dir_ok(fs);
    assert_int_equal(simdisk_take_busy_us(d), 750);
    assert_int_equal(simdisk_take_busy_us(d), 0);
    sync_ok(fs, f);
    assert_int_equal(simdisk_take_busy_us(d), 250);
    fs->ops->close(fs, f);
    simdisk_destroy(d);
}

static void set_faults_restarts_the_call_counter(void **state)
{
    (void)state;
    struct simdisk *d = simdisk_create(1);
    struct fs *fs = simdisk_fs(d);
    struct fs_file *f = open_ok(fs, "f", FS_CREATE);
    struct rk_errmsg err = {{0}};
    struct name_list l = {.stop_after = 0};
    list_ok(fs, &l);
    assert_int_equal(fs->ops->remove(fs, "nope", &err), RK_ENOENT); /* failures count too */
    fs->ops->close(fs, f);
    assert_int_equal(simdisk_calls(d), 4);
    struct simdisk_faults none = {0};
    simdisk_set_faults(d, &none);
    assert_int_equal(simdisk_calls(d), 0);
    simdisk_destroy(d);
}

/* ---- against a naive model
 * --------------------------------------------------------------------------- */

/* The model keeps full copies: current and durable bytes per inode, current and durable names.
 * simdisk must agree with it after every crash (torn writes off: the crash is exact). */
#define M_FILES   6
#define M_INODES  128
#define M_HANDLES 4
#define M_BYTES   (4096 * 5)

struct m_inode {
    bool used;
    uint8_t cur[M_BYTES];
    size_t cur_len;
    uint8_t dur[M_BYTES];
    size_t dur_len;
};

struct model {
    struct m_inode ino[M_INODES];
    int cur[M_FILES]; /* name i -> inode, -1: none */
    int dur[M_FILES];
    struct fs_file *h[M_HANDLES];
    int h_ino[M_HANDLES];
};

static void m_name(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "file%d", i);
}

static int m_new_inode(struct model *m)
{
    /* Inodes are never reused in the model, so a slot is used at most once per run. */
    for (int i = 0; i < M_INODES; i++) {
        if (!m->ino[i].used) {
            memset(&m->ino[i], 0, sizeof(m->ino[i]));
            m->ino[i].used = true;
            return i;
        }
    }
    fail_msg("model out of inodes");
    return -1;
}

static void m_check(struct model *m, struct fs *fs)
{
    static char buf[CONTENT_MAX + 1];
    for (int i = 0; i < M_FILES; i++) {
        char name[16];
        m_name(name, sizeof(name), i);
        size_t len = 0;
        int rc = read_file(fs, name, buf, &len);
        if (m->cur[i] < 0) {
            assert_int_equal(rc, RK_ENOENT);
            continue;
        }
        assert_int_equal(rc, RK_OK);
        const struct m_inode *in = &m->ino[m->cur[i]];
        assert_int_equal(len, in->cur_len);
        assert_memory_equal(buf, in->cur, len);
    }
}

static void m_write(struct model *m, struct fs *fs, struct rk_prng *r, int h)
{
    struct m_inode *in = &m->ino[m->h_ino[h]];
    uint8_t buf[6000];
    size_t len = (size_t)rk_prng_below(r, sizeof(buf));
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)rk_prng_next(r);
    bool append = rk_prng_below(r, 2) == 0;
    size_t off = append ? in->cur_len : (size_t)rk_prng_below(r, in->cur_len + 3000);
    if (off + len > M_BYTES)
        return;
    if (append)
        append_ok(fs, m->h[h], buf, len);
    else
        pwrite_ok(fs, m->h[h], off, buf, len);
    if (len == 0)
        return;
    if (off > in->cur_len)
        memset(in->cur + in->cur_len, 0, off - in->cur_len);
    memcpy(in->cur + off, buf, len);
    if (off + len > in->cur_len)
        in->cur_len = off + len;
}

static void m_step(struct model *m, struct simdisk *d, struct rk_prng *r)
{
    struct fs *fs = simdisk_fs(d);
    struct rk_errmsg err = {{0}};
    int a = (int)rk_prng_below(r, M_FILES);
    int b = (int)rk_prng_below(r, M_FILES);
    int h = (int)rk_prng_below(r, M_HANDLES);
    char na[16], nb[16];
    m_name(na, sizeof(na), a);
    m_name(nb, sizeof(nb), b);
    switch (rk_prng_below(r, 10)) {
    case 0: /* open, creating */
        if (m->h[h] != NULL)
            fs->ops->close(fs, m->h[h]);
        m->h[h] = open_ok(fs, na, FS_CREATE);
        if (m->cur[a] < 0)
            m->cur[a] = m_new_inode(m);
        m->h_ino[h] = m->cur[a];
        break;
    case 1:
    case 2:
        if (m->h[h] != NULL)
            m_write(m, fs, r, h);
        break;
    case 3:
        if (m->h[h] != NULL) {
            struct m_inode *in = &m->ino[m->h_ino[h]];
            size_t size = (size_t)rk_prng_below(r, in->cur_len + 5000);
            if (size > M_BYTES)
                break;
            assert_int_equal(fs->ops->truncate(fs, m->h[h], size, &err), RK_OK);
            if (size > in->cur_len)
                memset(in->cur + in->cur_len, 0, size - in->cur_len);
            in->cur_len = size;
        }
        break;
    case 4:
        if (m->h[h] != NULL) {
            sync_ok(fs, m->h[h]);
            struct m_inode *in = &m->ino[m->h_ino[h]];
            memcpy(in->dur, in->cur, in->cur_len);
            in->dur_len = in->cur_len;
        }
        break;
    case 5:
        assert_int_equal(fs->ops->rename(fs, na, nb, &err), m->cur[a] < 0 ? RK_ENOENT : RK_OK);
        if (m->cur[a] >= 0 && a != b) {
            m->cur[b] = m->cur[a];
            m->cur[a] = -1;
        }
        break;
    case 6:
        assert_int_equal(fs->ops->remove(fs, na, &err), m->cur[a] < 0 ? RK_ENOENT : RK_OK);
        m->cur[a] = -1;
        break;
    case 7:
        sync_dir_ok(fs);
        memcpy(m->dur, m->cur, sizeof(m->cur));
        break;
    case 8:
        if (m->h[h] != NULL) {
            fs->ops->close(fs, m->h[h]);
            m->h[h] = NULL;
        }
        break;
    default:
        if (rk_prng_below(r, 4) != 0)
            break;
        simdisk_crash(d);
        for (int i = 0; i < M_HANDLES; i++) {
            /* Half the stale handles are closed after the crash, half dropped. */
            if (m->h[i] != NULL && rk_prng_below(r, 2) == 0)
                fs->ops->close(fs, m->h[i]);
            m->h[i] = NULL;
        }
        memcpy(m->cur, m->dur, sizeof(m->cur));
        for (int i = 0; i < M_INODES; i++) {
            struct m_inode *in = &m->ino[i];
            memcpy(in->cur, in->dur, in->dur_len);
            in->cur_len = in->dur_len;
        }
        m_check(m, fs);
        break;
    }
}

static void agrees_with_a_naive_model_across_crashes(void **state)
{
    (void)state;
    static struct model m;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        memset(&m, 0, sizeof(m));
        for (int i = 0; i < M_FILES; i++) {
            m.cur[i] = -1;
            m.dur[i] = -1;
        }
        struct rk_prng r;
        rk_prng_seed(&r, seed);
        struct simdisk *d = simdisk_create(seed);
        for (int step = 0; step < 1000; step++) {
            m_step(&m, d, &r);
            /* The model's inode table only grows; stop a run before it fills. */
            int used = 0;
            for (int i = 0; i < M_INODES; i++)
                used += m.ino[i].used;
            if (used >= M_INODES - 1)
                break;
        }
        m_check(&m, simdisk_fs(d));
        simdisk_crash(d);
        memcpy(m.cur, m.dur, sizeof(m.cur));
        for (int i = 0; i < M_INODES; i++) {
            memcpy(m.ino[i].cur, m.ino[i].dur, m.ino[i].dur_len);
            m.ino[i].cur_len = m.ino[i].dur_len;
        }
        m_check(&m, simdisk_fs(d));
        simdisk_destroy(d); /* frees the dropped stale handles */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write_then_read_returns_the_bytes),
        cmocka_unit_test(open_flags_follow_the_contract),
        cmocka_unit_test(removed_file_stays_usable_through_open_handle),
        cmocka_unit_test(rename_replaces_target_and_keeps_handles),
        cmocka_unit_test(unsynced_append_is_lost_at_crash_synced_is_kept),
        cmocka_unit_test(crash_without_torn_writes_keeps_exactly_the_durable_bytes),
        cmocka_unit_test(pwrite_below_durable_length_reverts_at_crash),
        cmocka_unit_test(truncate_below_durable_length_reverts_at_crash),
        cmocka_unit_test(torn_tail_keeps_every_prefix_and_garbage_only_past_durable),
        cmocka_unit_test(created_file_without_sync_dir_vanishes_at_crash),
        cmocka_unit_test(rename_without_sync_dir_is_undone_at_crash),
        cmocka_unit_test(rename_over_target_without_sync_dir_brings_old_target_back),
        cmocka_unit_test(remove_without_sync_dir_is_undone_at_crash),
        cmocka_unit_test(with_sync_and_sync_dir_everything_is_durable),
        cmocka_unit_test(bitflip_changes_one_bit_of_returned_bytes_not_stored),
        cmocka_unit_test(read_errors_happen_at_the_configured_rate),
        cmocka_unit_test(write_errors_happen_at_the_configured_rate_after_a_prefix),
        cmocka_unit_test(sync_errors_happen_at_the_configured_rate),
        cmocka_unit_test(failed_sync_makes_nothing_durable),
        cmocka_unit_test(crash_at_call_fails_that_call_and_later_until_crash),
        cmocka_unit_test(writes_after_the_crash_point_write_nothing),
        cmocka_unit_test(stale_handles_after_crash_are_safe),
        cmocka_unit_test(same_seed_same_calls_same_results),
        cmocka_unit_test(list_reports_current_names_in_strcmp_order),
        cmocka_unit_test(invalid_names_are_refused),
        cmocka_unit_test(corrupt_flips_the_bit_in_current_and_durable_bytes),
        cmocka_unit_test(busy_time_accumulates_per_sync_and_resets_on_take),
        cmocka_unit_test(set_faults_restarts_the_call_counter),
        cmocka_unit_test(agrees_with_a_naive_model_across_crashes),
        cmocka_unit_test(bit_rot_at_a_crash_is_one_persistent_bit_in_durable_bytes),
        cmocka_unit_test(latent_sector_error_fails_every_read_of_its_sector_until_rewritten),
        cmocka_unit_test(lost_write_reads_back_until_the_crash_then_is_zeros),
        cmocka_unit_test(lost_write_never_synced_or_overwritten_is_no_damage),
        cmocka_unit_test(misdirected_write_lands_on_an_older_block_and_is_lost_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
