/*
 * test_verify.c — the read-only verification entry points, log_seglog_verify (core/log) and
 * bc_verify (core/bitcask), on the simulated disk (sim/simdisk.h): a clean store verifies with
 * the right counts and visits; a byte flipped anywhere in a segment, the hard state, a data file,
 * a hint or the MERGE manifest is reported with that file and an offset at or before the flipped
 * byte (or, in the last file's last sector, as a torn tail); a torn tail and leftovers are
 * notices, not errors; verification never modifies the disk (every writing fs call fails the
 * test, and the files are compared before and after); and verify agrees with open: what verify
 * reports as the live keys after a merge interrupted at any fs call is what bc_open finds.
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
#include "common/crc32c.h"
#include "log/log.h"
#include "simdisk.h"

/* ---- a read-only fs: forwards reads to the simulated disk, fails the test on any write ---- */

struct rofs {
    struct fs fs; /* first */
    struct fs *inner;
};

static struct fs *inner_of(struct fs *fs)
{
    return ((struct rofs *)fs)->inner;
}

static int ro_open(struct fs *fs, const char *name, uint32_t flags, struct fs_file **out,
                   struct rk_errmsg *err)
{
    if (flags != 0)
        fail_msg("verify opened %s with flags %u", name, (unsigned)flags);
    return inner_of(fs)->ops->open(inner_of(fs), name, flags, out, err);
}

static void ro_close(struct fs *fs, struct fs_file *f)
{
    inner_of(fs)->ops->close(inner_of(fs), f);
}

static int ro_pread(struct fs *fs, struct fs_file *f, uint64_t off, void *buf, size_t len,
                    size_t *got, struct rk_errmsg *err)
{
    return inner_of(fs)->ops->pread(inner_of(fs), f, off, buf, len, got, err);
}

static int ro_size(struct fs *fs, struct fs_file *f, uint64_t *size, struct rk_errmsg *err)
{
    return inner_of(fs)->ops->size(inner_of(fs), f, size, err);
}

static int ro_list(struct fs *fs, bool (*fn)(void *ctx, const char *name), void *ctx,
                   struct rk_errmsg *err)
{
    return inner_of(fs)->ops->list(inner_of(fs), fn, ctx, err);
}

static int ro_append(struct fs *fs, struct fs_file *f, const void *buf, size_t len,
                     struct rk_errmsg *err)
{
    (void)fs, (void)f, (void)buf, (void)len, (void)err;
    fail_msg("verify appended");
    return RK_EIO;
}

static int ro_pwrite(struct fs *fs, struct fs_file *f, uint64_t off, const void *buf, size_t len,
                     struct rk_errmsg *err)
{
    (void)fs, (void)f, (void)off, (void)buf, (void)len, (void)err;
    fail_msg("verify wrote");
    return RK_EIO;
}

static int ro_sync(struct fs *fs, struct fs_file *f, struct rk_errmsg *err)
{
    (void)fs, (void)f, (void)err;
    fail_msg("verify synced a file");
    return RK_EIO;
}

static int ro_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct rk_errmsg *err)
{
    (void)fs, (void)f, (void)size, (void)err;
    fail_msg("verify truncated");
    return RK_EIO;
}

static int ro_rename(struct fs *fs, const char *from, const char *to, struct rk_errmsg *err)
{
    (void)fs, (void)err;
    fail_msg("verify renamed %s to %s", from, to);
    return RK_EIO;
}

static int ro_remove(struct fs *fs, const char *name, struct rk_errmsg *err)
{
    (void)fs, (void)err;
    fail_msg("verify removed %s", name);
    return RK_EIO;
}

static int ro_sync_dir(struct fs *fs, struct rk_errmsg *err)
{
    (void)fs, (void)err;
    fail_msg("verify synced the directory");
    return RK_EIO;
}

static const struct fs_ops ro_ops = {
    .open = ro_open,
    .close = ro_close,
    .pread = ro_pread,
    .append = ro_append,
    .pwrite = ro_pwrite,
    .sync = ro_sync,
    .size = ro_size,
    .truncate = ro_truncate,
    .rename = ro_rename,
    .remove = ro_remove,
    .list = ro_list,
    .sync_dir = ro_sync_dir,
};

/* ---- the disk as the test sees it --------------------------------------------------------- */

#define FILES_MAX 64

struct image {
    int n;
    char name[FILES_MAX][FS_NAME_MAX + 1];
    uint8_t *bytes[FILES_MAX];
    uint64_t size[FILES_MAX];
    uint64_t total;
};

static bool image_name(void *ctx, const char *name)
{
    struct image *im = ctx;
    assert_true(im->n < FILES_MAX);
    snprintf(im->name[im->n++], FS_NAME_MAX + 1, "%s", name);
    return true;
}

/* Every file's name and bytes. */
static void image_take(struct simdisk *d, struct image *im)
{
    struct fs *fs = simdisk_fs(d);
    struct rk_errmsg err;
    memset(im, 0, sizeof(*im));
    assert_int_equal(fs->ops->list(fs, image_name, im, &err), RK_OK);
    for (int i = 0; i < im->n; i++) {
        struct fs_file *f;
        assert_int_equal(fs->ops->open(fs, im->name[i], 0, &f, &err), RK_OK);
        assert_int_equal(fs->ops->size(fs, f, &im->size[i], &err), RK_OK);
        im->bytes[i] = malloc(im->size[i] + 1);
        assert_non_null(im->bytes[i]);
        size_t got = 0;
        assert_int_equal(fs->ops->pread(fs, f, 0, im->bytes[i], im->size[i], &got, &err), RK_OK);
        assert_int_equal(got, im->size[i]);
        fs->ops->close(fs, f);
    }
    im->total = simdisk_bytes(d);
}

static void image_free(struct image *im)
{
    for (int i = 0; i < im->n; i++)
        free(im->bytes[i]);
    memset(im, 0, sizeof(*im));
}

static void image_equal(const struct image *a, const struct image *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->total, b->total);
    for (int i = 0; i < a->n; i++) {
        assert_string_equal(a->name[i], b->name[i]);
        assert_int_equal(a->size[i], b->size[i]);
        assert_memory_equal(a->bytes[i], b->bytes[i], a->size[i]);
    }
}

static int image_find(const struct image *im, const char *name)
{
    for (int i = 0; i < im->n; i++) {
        if (strcmp(im->name[i], name) == 0)
            return i;
    }
    return -1;
}

/* Appends n garbage bytes to file name, synced (a torn write that reached the disk). */
static void append_garbage(struct simdisk *d, const char *name, size_t n)
{
    struct fs *fs = simdisk_fs(d);
    struct rk_errmsg err;
    struct fs_file *f;
    uint8_t junk[64];
    assert_true(n <= sizeof(junk));
    memset(junk, 0xa5, sizeof(junk));
    assert_int_equal(fs->ops->open(fs, name, 0, &f, &err), RK_OK);
    assert_int_equal(fs->ops->append(fs, f, junk, n, &err), RK_OK);
    assert_int_equal(fs->ops->sync(fs, f, &err), RK_OK);
    fs->ops->close(fs, f);
}

/* ---- what the visitors saw ---------------------------------------------------------------- */

#define NOTES_MAX 32
#define SEEN_MAX  4096

struct seen {
    int hard_states;
    bool hs_found;
    struct raft_hard_state hs;
    uint64_t entries;
    uint64_t next_index; /* the index the next entry must have (0: any) */
    bool entry_data_ok;
    int notes;
    int kind[NOTES_MAX];
    char file[NOTES_MAX][FS_NAME_MAX + 1];
    uint64_t offset[NOTES_MAX];
    uint64_t bytes[NOTES_MAX];
    uint64_t records;
    uint64_t tombstones;
    int keys;
    char key[SEEN_MAX][32];
    char val[SEEN_MAX][32];
};

static void note(struct seen *s, int kind, const char *file, uint64_t offset, uint64_t bytes,
                 const char *text)
{
    assert_non_null(text);
    assert_true(strlen(text) > 0);
    assert_true(s->notes < NOTES_MAX);
    s->kind[s->notes] = kind;
    snprintf(s->file[s->notes], FS_NAME_MAX + 1, "%s", file);
    s->offset[s->notes] = offset;
    s->bytes[s->notes] = bytes;
    s->notes++;
}

static int find_note(const struct seen *s, int kind)
{
    for (int i = 0; i < s->notes; i++) {
        if (s->kind[i] == kind)
            return i;
    }
    return -1;
}

/* ---- the log ------------------------------------------------------------------------------ */

/* Entry data is a function of the index, so the visitor can check every byte. */
static uint32_t ent_len(uint64_t index)
{
    return (uint32_t)(index * 7 % 41);
}

static uint8_t ent_byte(uint64_t index, uint32_t i)
{
    return (uint8_t)(index * 131 + i * 7 + 1);
}

static void log_hard_state(void *ctx, bool found, const struct raft_hard_state *hs,
                           uint64_t snapshot_index, uint64_t snapshot_term)
{
    struct seen *s = ctx;
    (void)snapshot_index, (void)snapshot_term;
    assert_int_equal(s->entries, 0); /* before any entry */
    s->hard_states++;
    s->hs_found = found;
    s->hs = *hs;
}

static void log_entry(void *ctx, const char *file, uint64_t offset, const struct raft_entry *e)
{
    struct seen *s = ctx;
    (void)offset;
    assert_non_null(strstr(file, "seg-"));
    if (s->next_index != 0)
        assert_int_equal(e->index, s->next_index);
    s->next_index = e->index + 1;
    s->entries++;
    bool ok = e->len == ent_len(e->index) && e->type == RAFT_ENTRY_NORMAL;
    for (uint32_t i = 0; ok && i < e->len; i++)
        ok = e->data[i] == ent_byte(e->index, i);
    s->entry_data_ok = s->entry_data_ok && ok;
}

static void log_notice(void *ctx, const struct log_verify_notice *n)
{
    note(ctx, (int)n->kind, n->file, n->offset, n->bytes, n->text);
}

struct lenv {
    struct simdisk *disk;
    struct rofs ro;
    struct log_seglog_config cfg;    /* on the disk itself: for writing */
    struct log_seglog_config ro_cfg; /* read-only: for verify */
    struct rk_errmsg err;
    struct seen seen;
    struct log_verify_cb cb;
    struct log_verify_stats st;
};

static struct lenv *lenv_new(uint64_t segment_bytes)
{
    struct lenv *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->disk = simdisk_create(7);
    assert_non_null(e->disk);
    e->ro = (struct rofs){.fs = {.ops = &ro_ops}, .inner = simdisk_fs(e->disk)};
    e->cfg = (struct log_seglog_config){.fs = simdisk_fs(e->disk), .segment_bytes = segment_bytes};
    e->ro_cfg = (struct log_seglog_config){.fs = &e->ro.fs};
    e->cb = (struct log_verify_cb){
        .ctx = &e->seen, .hard_state = log_hard_state, .entry = log_entry, .notice = log_notice};
    return e;
}

static void lenv_free(struct lenv *e)
{
    simdisk_destroy(e->disk);
    free(e);
}

#define LOK(e, call)                                                                               \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != RK_OK)                                                                          \
            fail_msg("%s: %s: %s", #call, rk_strerror(rc_), (e)->err.text);                        \
    } while (0)

/* Appends entries [from, to] of term term in batches of 10, each synced. */
static void log_write(struct lenv *e, struct log_store *log, uint64_t from, uint64_t to,
                      uint64_t term)
{
    static uint8_t data[10][64];
    struct raft_entry batch[10];
    for (uint64_t i = from; i <= to;) {
        size_t n = 0;
        for (; n < 10 && i <= to; n++, i++) {
            uint32_t len = ent_len(i);
            for (uint32_t k = 0; k < len; k++)
                data[n][k] = ent_byte(i, k);
            batch[n] = (struct raft_entry){.term = term,
                                           .index = i,
                                           .type = RAFT_ENTRY_NORMAL,
                                           .len = len,
                                           .data = len > 0 ? data[n] : NULL};
        }
        LOK(e, log->ops->append(log, batch, n, &e->err));
        LOK(e, log->ops->sync(log, &e->err));
    }
}

/* A log of entries 1..n (term 2), hard state (3, 2, commit), in segments of segment_bytes. */
static struct lenv *log_fixture(uint64_t n, uint64_t segment_bytes)
{
    struct lenv *e = lenv_new(segment_bytes);
    struct log_store *log;
    LOK(e, log_seglog_open(&e->cfg, &log, &e->err));
    struct raft_hard_state hs = {.term = 3, .vote = 2, .commit = n / 2};
    LOK(e, log->ops->set_hard_state(log, &hs, &e->err));
    log_write(e, log, 1, n, 2);
    log->ops->destroy(log);
    return e;
}

static int lverify(struct lenv *e)
{
    memset(&e->seen, 0, sizeof(e->seen));
    e->seen.entry_data_ok = true;
    return log_seglog_verify(&e->ro_cfg, &e->cb, &e->st, &e->err);
}

static void lverify_ok(struct lenv *e)
{
    int rc = lverify(e);
    if (rc != RK_OK)
        fail_msg("log_seglog_verify: %s: %s", rk_strerror(rc), e->err.text);
}

static int count_prefix(const struct image *im, const char *prefix)
{
    int n = 0;
    for (int i = 0; i < im->n; i++)
        n += strncmp(im->name[i], prefix, strlen(prefix)) == 0;
    return n;
}

static void clean_log_verifies_with_counts(void **state)
{
    (void)state;
    struct lenv *e = log_fixture(300, 2048);
    struct image before;
    image_take(e->disk, &before);
    lverify_ok(e);
    assert_true(e->st.hard_state_found);
    assert_int_equal(e->st.hs.term, 3);
    assert_int_equal(e->st.hs.vote, 2);
    assert_int_equal(e->st.hs.commit, 150);
    assert_int_equal(e->st.snapshot_index, 0);
    assert_int_equal(e->st.entries, 300);
    assert_int_equal(e->st.records, 300);
    assert_int_equal(e->st.first_index, 1);
    assert_int_equal(e->st.last_index, 300);
    assert_int_equal(e->st.max_term, 2);
    assert_int_equal(e->st.notices, 0);
    assert_int_equal(e->st.torn_bytes, 0);
    assert_string_equal(e->st.problem_file, "");
    int segs = count_prefix(&before, "seg-");
    assert_true(segs > 3);
    assert_int_equal(e->st.segments, (uint64_t)segs);
    uint64_t bytes = 0;
    for (int i = 0; i < before.n; i++)
        bytes += strncmp(before.name[i], "seg-", 4) == 0 ? before.size[i] : 0;
    assert_int_equal(e->st.segment_bytes, bytes);
    /* Nothing behind the snapshot; every sync ended with a 41-byte commit record (seglog.c). */
    assert_true(e->st.commit_records >= (uint64_t)segs);
    assert_int_equal(e->st.entry_bytes + 41 * e->st.commit_records, bytes);
    assert_int_equal(e->seen.hard_states, 1);
    assert_true(e->seen.hs_found);
    assert_int_equal(e->seen.entries, 300);
    assert_true(e->seen.entry_data_ok);
    struct image after;
    image_take(e->disk, &after);
    image_equal(&before, &after);
    image_free(&before);
    image_free(&after);
    lenv_free(e);
}

static void empty_log_verifies(void **state)
{
    (void)state;
    struct lenv *e = lenv_new(0);
    lverify_ok(e);
    assert_false(e->st.hard_state_found);
    assert_int_equal(e->seen.hard_states, 1);
    assert_false(e->seen.hs_found);
    assert_int_equal(e->st.segments, 0);
    assert_int_equal(e->st.entries, 0);
    assert_int_equal(e->st.first_index, 1);
    assert_int_equal(e->st.last_index, 0);
    lenv_free(e);
}

static void compacted_log_counts_from_the_snapshot(void **state)
{
    (void)state;
    struct lenv *e = log_fixture(100, 512);
    struct log_store *log;
    LOK(e, log_seglog_open(&e->cfg, &log, &e->err));
    LOK(e, log->ops->compact(log, 55, 2, &e->err));
    LOK(e, log->ops->sync(log, &e->err));
    log->ops->destroy(log);
    lverify_ok(e);
    assert_int_equal(e->st.snapshot_index, 55);
    assert_int_equal(e->st.snapshot_term, 2);
    assert_int_equal(e->st.first_index, 56);
    assert_int_equal(e->st.last_index, 100);
    assert_int_equal(e->st.entries, 45);
    assert_int_equal(e->seen.entries, 45);
    assert_true(e->st.records >= 45); /* the first segment may start behind the snapshot */
    assert_true(e->seen.entry_data_ok);
    lenv_free(e);
}

/* The verdict on one flipped byte: an error naming the file at or before it, or — in the highest
 * segment only — a torn tail there. (By the torn-tail rule a flip in the last sector looks like a
 * tear, and so does a flipped length that makes a record run past the end of the file.) */
static void expect_log_flip_reported(struct lenv *e, const char *name, uint64_t off, uint64_t size,
                                     bool highest)
{
    int rc = lverify(e);
    if (rc == RK_ECORRUPT) {
        if (strcmp(e->st.problem_file, name) != 0 || e->st.problem_offset > off)
            fail_msg("flip at %s:%llu reported at %s:%llu (%s)", name, (unsigned long long)off,
                     e->st.problem_file, (unsigned long long)e->st.problem_offset, e->err.text);
        assert_non_null(strstr(e->err.text, name));
        assert_true(strlen(e->st.problem) > 0);
        return;
    }
    if (rc != RK_OK)
        fail_msg("flip at %s:%llu: %s: %s", name, (unsigned long long)off, rk_strerror(rc),
                 e->err.text);
    if (strcmp(name, "promise") == 0) { /* taken as unknown: a notice, never less */
        int k = find_note(&e->seen, LOG_VERIFY_PROMISE);
        if (k < 0 && e->st.promised < LOG_PROMISE_NEW)
            fail_msg("flip at promise:%llu: not reported, promise %llu", (unsigned long long)off,
                     (unsigned long long)e->st.promised);
        return;
    }
    int i = find_note(&e->seen, LOG_VERIFY_TORN_TAIL);
    if (i < 0 || !highest)
        fail_msg("flip at %s:%llu (of %llu) not reported", name, (unsigned long long)off,
                 (unsigned long long)size);
    assert_string_equal(e->seen.file[i], name);
    assert_true(e->seen.offset[i] <= off);
    assert_int_equal(e->seen.bytes[i], size - e->seen.offset[i]);
}

static void flipped_byte_in_log_is_reported_where_it_is(void **state)
{
    (void)state;
    struct lenv *e = log_fixture(60, 700);
    struct image im;
    image_take(e->disk, &im);
    int highest = -1;
    for (int i = 0; i < im.n; i++)
        highest = strncmp(im.name[i], "seg-", 4) == 0 ? i : highest;
    assert_true(highest > 0);
    for (int i = 0; i < im.n; i++) {
        for (uint64_t off = 0; off < im.size[i]; off++) {
            assert_int_equal(simdisk_corrupt(e->disk, im.name[i], off, 0x08), RK_OK);
            expect_log_flip_reported(e, im.name[i], off, im.size[i], i == highest);
            assert_int_equal(simdisk_corrupt(e->disk, im.name[i], off, 0x08), RK_OK);
        }
    }
    lverify_ok(e); /* every flip was undone */
    image_free(&im);
    lenv_free(e);
}

static void torn_log_tail_is_a_notice(void **state)
{
    (void)state;
    struct lenv *e = log_fixture(40, 4096);
    struct image im;
    image_take(e->disk, &im);
    int last = im.n - 1;
    assert_int_equal(strncmp(im.name[last], "seg-", 4), 0);
    append_garbage(e->disk, im.name[last], 11);
    struct image before;
    image_take(e->disk, &before);
    lverify_ok(e);
    assert_int_equal(e->st.entries, 40);
    assert_int_equal(e->st.torn_bytes, 11);
    assert_int_equal(e->seen.notes, 1);
    assert_int_equal(e->seen.kind[0], LOG_VERIFY_TORN_TAIL);
    assert_string_equal(e->seen.file[0], im.name[last]);
    assert_int_equal(e->seen.offset[0], im.size[last]);
    assert_int_equal(e->seen.bytes[0], 11);
    struct image after;
    image_take(e->disk, &after);
    image_equal(&before, &after);
    /* open agrees: it cuts exactly that */
    struct log_store *log;
    LOK(e, log_seglog_open(&e->cfg, &log, &e->err));
    struct log_seglog_stats ls;
    log_seglog_stats(log, &ls);
    assert_int_equal(ls.cut_bytes, 11);
    log->ops->destroy(log);
    image_free(&im);
    image_free(&before);
    image_free(&after);
    lenv_free(e);
}

/* A leftover hardstate.tmp, a segment past a gap, entries above the hard state's term: notices
 * that name what open would do, and open then does it. */
static void log_leftovers_are_notices(void **state)
{
    (void)state;
    struct lenv *e = lenv_new(256);
    struct log_store *log;
    LOK(e, log_seglog_open(&e->cfg, &log, &e->err));
    struct raft_hard_state hs = {.term = 1, .vote = 1, .commit = 0};
    LOK(e, log->ops->set_hard_state(log, &hs, &e->err));
    log_write(e, log, 1, 30, 1);
    log->ops->destroy(log);
    /* A segment far past the end (a gap), a leftover hardstate.tmp. */
    struct image im;
    image_take(e->disk, &im);
    int last = im.n - 1;
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    assert_int_equal(fs->ops->open(fs, "seg-00000000000000000900.log", FS_CREATE, &f, &e->err),
                     RK_OK);
    assert_int_equal(fs->ops->append(fs, f, im.bytes[last], im.size[last], &e->err), RK_OK);
    assert_int_equal(fs->ops->sync(fs, f, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(fs->ops->open(fs, "hardstate.tmp", FS_CREATE, &f, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(fs->ops->sync_dir(fs, &e->err), RK_OK);
    lverify_ok(e);
    assert_int_equal(e->st.leftovers, 2);
    assert_int_equal(e->st.last_index, 30);
    int i = find_note(&e->seen, LOG_VERIFY_LEFTOVER);
    assert_true(i >= 0);
    assert_string_equal(e->seen.file[i], "hardstate.tmp");
    assert_string_equal(e->seen.file[i + 1], "seg-00000000000000000900.log");
    assert_int_equal(e->seen.kind[i + 1], LOG_VERIFY_LEFTOVER);
    LOK(e, log_seglog_open(&e->cfg, &log, &e->err));
    log->ops->destroy(log);
    struct image after;
    image_take(e->disk, &after);
    assert_int_equal(image_find(&after, "hardstate.tmp"), -1);
    assert_int_equal(image_find(&after, "seg-00000000000000000900.log"), -1);
    image_free(&im);
    image_free(&after);
    lenv_free(e);
}

static void log_term_above_hard_state_is_a_notice(void **state)
{
    (void)state;
    struct lenv *e = lenv_new(0);
    struct log_store *log;
    LOK(e, log_seglog_open(&e->cfg, &log, &e->err));
    struct raft_hard_state hs = {.term = 2, .vote = 1, .commit = 0};
    LOK(e, log->ops->set_hard_state(log, &hs, &e->err));
    log_write(e, log, 1, 5, 2);
    /* An entry of term 4 durable without a hard state of term 4 (seglog.c, RECOVERY 4). */
    log_write(e, log, 6, 6, 4);
    log->ops->destroy(log);
    lverify_ok(e);
    assert_int_equal(e->st.hs.term, 2); /* as on disk */
    assert_int_equal(e->st.hs.vote, 1);
    assert_int_equal(e->st.max_term, 4);
    assert_int_equal(e->seen.notes, 1);
    assert_int_equal(e->seen.kind[0], LOG_VERIFY_TERM_RAISE);
    assert_int_equal(e->seen.bytes[0], 4);
    assert_string_equal(e->seen.file[0], "hardstate");
    LOK(e, log_seglog_open(&e->cfg, &log, &e->err)); /* open raises it */
    struct log_seglog_stats ls;
    log_seglog_stats(log, &ls);
    assert_int_equal(ls.term_raises, 1);
    log->ops->destroy(log);
    lverify_ok(e);
    assert_int_equal(e->st.hs.term, 4);
    assert_int_equal(e->seen.notes, 0);
    lenv_free(e);
}

static void log_overlap_is_an_error_at_the_segment(void **state)
{
    (void)state;
    struct lenv *e = log_fixture(30, 256);
    struct image im;
    image_take(e->disk, &im);
    /* A copy of the first segment named as if it began at index 2: it overlaps. */
    int first = image_find(&im, "seg-00000000000000000001.log");
    int second = first + 1;
    assert_true(first >= 0 && second < im.n);
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    assert_int_equal(fs->ops->remove(fs, im.name[second], &e->err), RK_OK);
    assert_int_equal(fs->ops->open(fs, "seg-00000000000000000002.log", FS_CREATE, &f, &e->err),
                     RK_OK);
    assert_int_equal(fs->ops->append(fs, f, im.bytes[first], im.size[first], &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(lverify(e), RK_ECORRUPT);
    assert_string_equal(e->st.problem_file, "seg-00000000000000000002.log");
    assert_non_null(strstr(e->st.problem, "overlaps"));
    image_free(&im);
    lenv_free(e);
}

/* ---- the store ---------------------------------------------------------------------------- */

static void bc_record(void *ctx, const char *file, uint64_t offset,
                      const struct bc_verify_record *r)
{
    struct seen *s = ctx;
    (void)offset;
    assert_non_null(strstr(file, ".data"));
    s->records++;
    s->tombstones += (r->flags & BC_REC_TOMBSTONE) != 0;
}

static bool bc_key(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                   uint32_t val_len)
{
    struct seen *s = ctx;
    assert_true(s->keys < SEEN_MAX);
    assert_true(key_len < 32 && val_len < 32);
    memcpy(s->key[s->keys], key, key_len);
    s->key[s->keys][key_len] = '\0';
    memcpy(s->val[s->keys], val, val_len);
    s->val[s->keys][val_len] = '\0';
    s->keys++;
    return true;
}

static void bc_notice(void *ctx, const struct bc_verify_notice *n)
{
    note(ctx, (int)n->kind, n->file, n->offset, n->bytes, n->text);
}

struct benv {
    struct simdisk *disk;
    struct rofs ro;
    struct bc_config cfg;
    struct bc_config ro_cfg;
    struct rk_errmsg err;
    struct seen seen;
    struct bc_verify_cb cb;
    struct bc_verify_stats st;
    /* the model: key i holds vals[i] ("" if absent) */
    char vals[64][32];
};

#define BKEYS 40

static struct benv *benv_new(uint64_t seed)
{
    struct benv *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->disk = simdisk_create(seed);
    assert_non_null(e->disk);
    e->ro = (struct rofs){.fs = {.ops = &ro_ops}, .inner = simdisk_fs(e->disk)};
    e->cfg = (struct bc_config){.fs = simdisk_fs(e->disk), .max_file_bytes = 600};
    e->ro_cfg = (struct bc_config){.fs = &e->ro.fs};
    e->cb = (struct bc_verify_cb){
        .ctx = &e->seen, .record = bc_record, .key = bc_key, .notice = bc_notice};
    return e;
}

static void benv_free(struct benv *e)
{
    simdisk_destroy(e->disk);
    free(e);
}

#define BOK(e, call)                                                                               \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != RK_OK)                                                                          \
            fail_msg("%s: %s: %s", #call, rk_strerror(rc_), (e)->err.text);                        \
    } while (0)

/* Batches [from, to): index i puts key (i % BKEYS) = "v<i>", every 7th also deletes another. */
static void bc_write(struct benv *e, struct bitcask *bc, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        char key[16];
        char val[32];
        snprintf(key, sizeof(key), "k%02u", (unsigned)(i % BKEYS));
        snprintf(val, sizeof(val), "v%llu", (unsigned long long)i);
        BOK(e, bc_put(bc, i, (const uint8_t *)key, (uint32_t)strlen(key), (const uint8_t *)val,
                      (uint32_t)strlen(val), &e->err));
        snprintf(e->vals[i % BKEYS], sizeof(e->vals[0]), "%s", val);
        if (i % 7 == 0) {
            unsigned victim = (unsigned)((i * 3 + 1) % BKEYS);
            snprintf(key, sizeof(key), "k%02u", victim);
            bool existed;
            BOK(e, bc_del(bc, i, (const uint8_t *)key, (uint32_t)strlen(key), &existed, &e->err));
            e->vals[victim][0] = '\0';
        }
        BOK(e, bc_end_batch(bc, &e->err));
    }
    BOK(e, bc_sync(bc, &e->err));
}

/* Batches 1..199, a merge, batches 200..259: merged files with hints, then plain ones. */
static struct benv *bc_fixture(void)
{
    struct benv *e = benv_new(11);
    struct bitcask *bc;
    BOK(e, bc_open(&e->cfg, &bc, &e->err));
    bc_write(e, bc, 1, 200);
    BOK(e, bc_merge(bc, &e->err));
    bc_write(e, bc, 200, 260);
    bc_close(bc);
    return e;
}

static int bverify(struct benv *e)
{
    memset(&e->seen, 0, sizeof(e->seen));
    return bc_verify(&e->ro_cfg, &e->cb, &e->st, &e->err);
}

static void bverify_ok(struct benv *e)
{
    int rc = bverify(e);
    if (rc != RK_OK)
        fail_msg("bc_verify: %s: %s", rk_strerror(rc), e->err.text);
}

static bool collect_key(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                        uint32_t val_len)
{
    return bc_key(ctx, key, key_len, val, val_len);
}

/* What bc_open finds: the same keys, values and order as verify's key visitor saw. */
static void expect_open_agrees(struct benv *e)
{
    struct seen *opened = calloc(1, sizeof(*opened));
    assert_non_null(opened);
    struct bitcask *bc;
    BOK(e, bc_open(&e->cfg, &bc, &e->err));
    BOK(e, bc_scan(bc, collect_key, opened, &e->err));
    assert_int_equal(bc_count(bc), e->st.keys);
    assert_int_equal(bc_applied_index(bc), e->st.applied_index);
    bc_close(bc);
    assert_int_equal(opened->keys, e->seen.keys);
    for (int i = 0; i < opened->keys; i++) {
        assert_string_equal(opened->key[i], e->seen.key[i]);
        assert_string_equal(opened->val[i], e->seen.val[i]);
    }
    free(opened);
}

static void clean_store_verifies_with_counts(void **state)
{
    (void)state;
    struct benv *e = bc_fixture();
    struct image before;
    image_take(e->disk, &before);
    bverify_ok(e);
    int data = 0;
    int hints = 0;
    uint64_t data_bytes = 0;
    for (int i = 0; i < before.n; i++) {
        size_t len = strlen(before.name[i]);
        if (len > 5 && strcmp(before.name[i] + len - 5, ".data") == 0) {
            data++;
            data_bytes += before.size[i];
        }
        hints += len > 5 && strcmp(before.name[i] + len - 5, ".hint") == 0;
    }
    assert_true(hints > 0);
    assert_true(data > hints);
    assert_int_equal(e->st.data_files, data);
    assert_int_equal(e->st.data_bytes, data_bytes);
    assert_int_equal(e->st.hint_files, hints);
    assert_true(e->st.hinted_bytes > 0 && e->st.hinted_bytes < data_bytes);
    assert_false(e->st.merge_manifest);
    assert_int_equal(e->st.notices, 0);
    assert_int_equal(e->st.applied_index, 259);
    int live = 0;
    for (int i = 0; i < BKEYS; i++)
        live += e->vals[i][0] != '\0';
    assert_int_equal(e->st.keys, live);
    assert_int_equal(e->seen.keys, live);
    for (int i = 0; i < e->seen.keys; i++) {
        int k = atoi(e->seen.key[i] + 1);
        assert_string_equal(e->seen.val[i], e->vals[k]);
    }
    assert_int_equal(e->seen.records, e->st.records);
    assert_int_equal(e->seen.tombstones, e->st.tombstones);
    assert_true(e->st.tombstones > 0);
    assert_int_equal(e->st.marks, 1);
    assert_true(e->st.live_bytes > 0 && e->st.live_bytes < e->st.data_bytes);
    struct image after;
    image_take(e->disk, &after);
    image_equal(&before, &after);
    expect_open_agrees(e);
    image_free(&before);
    image_free(&after);
    benv_free(e);
}

static void flipped_byte_in_store_is_reported_where_it_is(void **state)
{
    (void)state;
    struct benv *e = bc_fixture();
    struct image im;
    image_take(e->disk, &im);
    int highest = -1;
    for (int i = 0; i < im.n; i++)
        highest = strstr(im.name[i], ".data") != NULL ? i : highest;
    char hint_of_highest[FS_NAME_MAX + 1];
    snprintf(hint_of_highest, sizeof(hint_of_highest), "%.10s.hint", im.name[highest]);
    bool torn_allowed = image_find(&im, hint_of_highest) < 0;
    int checked = 0;
    for (int i = 0; i < im.n; i++) {
        for (uint64_t off = 0; off < im.size[i]; off++) {
            assert_int_equal(simdisk_corrupt(e->disk, im.name[i], off, 0x20), RK_OK);
            int rc = bverify(e);
            if (rc == RK_ECORRUPT) {
                if (strcmp(e->st.problem_file, im.name[i]) != 0 || e->st.problem_offset > off)
                    fail_msg("flip at %s:%llu reported at %s:%llu (%s)", im.name[i],
                             (unsigned long long)off, e->st.problem_file,
                             (unsigned long long)e->st.problem_offset, e->err.text);
            } else {
                if (rc != RK_OK)
                    fail_msg("%s:%llu: %s", im.name[i], (unsigned long long)off, e->err.text);
                int n = find_note(&e->seen, BC_VERIFY_TORN_TAIL);
                if (n < 0 || i != highest || !torn_allowed)
                    fail_msg("flip at %s:%llu not reported", im.name[i], (unsigned long long)off);
                assert_string_equal(e->seen.file[n], im.name[i]);
                assert_true(e->seen.offset[n] <= off);
            }
            assert_int_equal(simdisk_corrupt(e->disk, im.name[i], off, 0x20), RK_OK);
            checked++;
        }
    }
    assert_true(checked > 1000);
    bverify_ok(e);
    image_free(&im);
    benv_free(e);
}

static void torn_store_tail_is_a_notice(void **state)
{
    (void)state;
    struct benv *e = benv_new(3);
    struct bitcask *bc;
    BOK(e, bc_open(&e->cfg, &bc, &e->err));
    bc_write(e, bc, 1, 10);
    bc_close(bc);
    struct image im;
    image_take(e->disk, &im);
    int last = im.n - 1;
    append_garbage(e->disk, im.name[last], 13);
    struct image before;
    image_take(e->disk, &before);
    bverify_ok(e);
    assert_int_equal(e->st.torn_bytes, 13);
    assert_int_equal(e->seen.notes, 1);
    assert_int_equal(e->seen.kind[0], BC_VERIFY_TORN_TAIL);
    assert_string_equal(e->seen.file[0], im.name[last]);
    assert_int_equal(e->seen.offset[0], im.size[last]);
    assert_int_equal(e->st.applied_index, 9);
    struct image after;
    image_take(e->disk, &after);
    image_equal(&before, &after);
    expect_open_agrees(e);
    image_free(&im);
    image_free(&before);
    image_free(&after);
    benv_free(e);
}

/* A batch whose END record is missing at the tail is torn from its first record on. */
static void store_batch_without_end_is_torn(void **state)
{
    (void)state;
    struct benv *e = benv_new(4);
    struct bitcask *bc;
    BOK(e, bc_open(&e->cfg, &bc, &e->err));
    bc_write(e, bc, 1, 5);
    bc_close(bc);
    struct image im;
    image_take(e->disk, &im);
    int last = im.n - 1;
    /* Copy the last batch (one put and nothing else: index 4) without its END flag. */
    uint64_t rec = 20 + 3 + 2; /* header, "k04", "v4" */
    uint8_t copy[64];
    /* (before the commit record the sync ended the file with: bitcask.h, FORMAT 2) */
    memcpy(copy, im.bytes[last] + im.size[last] - BC_COMMIT_BYTES - rec, rec);
    assert_true((copy[15] & 0x40) != 0); /* END: bit 30 of the key-size word at 12 */
    copy[15] &= (uint8_t)~0x40;
    /* reseal: crc32c over everything after the crc */
    uint32_t crc = rk_crc32c(0, copy + 4, rec - 4);
    for (int i = 0; i < 4; i++)
        copy[i] = (uint8_t)(crc >> (8 * i));
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    assert_int_equal(fs->ops->open(fs, im.name[last], 0, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->append(fs, f, copy, rec, &e->err), RK_OK);
    fs->ops->close(fs, f);
    bverify_ok(e);
    assert_int_equal(e->seen.notes, 1);
    assert_int_equal(e->seen.kind[0], BC_VERIFY_TORN_TAIL);
    assert_int_equal(e->seen.offset[0], im.size[last]);
    assert_int_equal(e->seen.bytes[0], rec);
    image_free(&im);
    benv_free(e);
}

static void corrupt_merge_manifest_is_an_error(void **state)
{
    (void)state;
    struct benv *e = bc_fixture();
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    uint8_t junk[24] = {1, 2, 3};
    assert_int_equal(fs->ops->open(fs, "MERGE", FS_CREATE, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->append(fs, f, junk, sizeof(junk), &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(bverify(e), RK_ECORRUPT);
    assert_string_equal(e->st.problem_file, "MERGE");
    assert_int_equal(e->st.problem_offset, 0);
    benv_free(e);
}

/* A merge interrupted at every fs call in turn: whatever the disk holds, verify reports no
 * error, modifies nothing, and reports the live keys bc_open then finds. Where a committed
 * merge is pending (MERGE present), verify says so and reads the merged files under their
 * tmp names. */
static void interrupted_merge_verifies_as_open_recovers(void **state)
{
    (void)state;
    bool saw_manifest = false;
    bool saw_leftover = false;
    for (uint64_t at = 1;; at++) {
        struct benv *e = benv_new(21);
        struct bitcask *bc;
        BOK(e, bc_open(&e->cfg, &bc, &e->err));
        bc_write(e, bc, 1, 120);
        struct simdisk_faults faults = {.crash_at_call = at};
        simdisk_set_faults(e->disk, &faults);
        int rc = bc_merge(bc, &e->err);
        bc_close(bc);
        bool crashed = simdisk_crashed(e->disk);
        simdisk_crash(e->disk);
        struct image before;
        image_take(e->disk, &before);
        bverify_ok(e);
        saw_manifest = saw_manifest || e->st.merge_manifest;
        saw_leftover = saw_leftover || e->st.leftovers > 0;
        struct image after;
        image_take(e->disk, &after);
        image_equal(&before, &after);
        expect_open_agrees(e);
        image_free(&before);
        image_free(&after);
        benv_free(e);
        if (!crashed) {
            assert_int_equal(rc, RK_OK);
            break;
        }
        assert_true(at < 10000);
    }
    assert_true(saw_manifest);
    assert_true(saw_leftover);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clean_log_verifies_with_counts),
        cmocka_unit_test(empty_log_verifies),
        cmocka_unit_test(compacted_log_counts_from_the_snapshot),
        cmocka_unit_test(flipped_byte_in_log_is_reported_where_it_is),
        cmocka_unit_test(torn_log_tail_is_a_notice),
        cmocka_unit_test(log_leftovers_are_notices),
        cmocka_unit_test(log_term_above_hard_state_is_a_notice),
        cmocka_unit_test(log_overlap_is_an_error_at_the_segment),
        cmocka_unit_test(clean_store_verifies_with_counts),
        cmocka_unit_test(flipped_byte_in_store_is_reported_where_it_is),
        cmocka_unit_test(torn_store_tail_is_a_notice),
        cmocka_unit_test(store_batch_without_end_is_torn),
        cmocka_unit_test(corrupt_merge_manifest_is_an_error),
        cmocka_unit_test(interrupted_merge_verifies_as_open_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
