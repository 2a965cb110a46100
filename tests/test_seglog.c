/*
 * test_seglog.c — the durable Raft log (core/log/seglog.c) on the simulated disk (sim/simdisk.h):
 * reopen, group commit, crashes (unsynced data lost, torn tails, a crash at every fs call of a
 * hard-state write and of a truncation), rotation, compaction, corruption, poisoning, recovery
 * rules (leftover tmp, gaps, overlaps, term raise), bad reads, allocation failures, memlog's
 * compact, and a randomized model test of append/truncate/compact/sync/crash.
 *
 * The test encodes records itself (write_segment) from the format documented in seglog.c, so that
 * a change of format shows up here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/prng.h"
#include "log/log.h"
#include "simdisk.h"

/* ---- a counting, failable allocator ---------------------------------------------------- */

struct counting {
    size_t live;    /* allocations not yet freed */
    size_t calls;   /* malloc/realloc calls so far */
    size_t fail_at; /* the call numbered fail_at (1-based) fails; 0 = never */
};

#define CNT_HEADER 16u

static void *cnt_malloc(void *ctx, size_t size)
{
    struct counting *c = ctx;
    if (++c->calls == c->fail_at)
        return NULL;
    uint8_t *p = malloc(CNT_HEADER + size);
    if (p == NULL)
        return NULL;
    c->live++;
    return p + CNT_HEADER;
}

static void *cnt_realloc(void *ctx, void *ptr, size_t size)
{
    struct counting *c = ctx;
    if (++c->calls == c->fail_at)
        return NULL;
    uint8_t *base = ptr == NULL ? NULL : (uint8_t *)ptr - CNT_HEADER;
    uint8_t *p = realloc(base, CNT_HEADER + size);
    if (p == NULL)
        return NULL;
    if (ptr == NULL)
        c->live++;
    return p + CNT_HEADER;
}

static void cnt_free(void *ctx, void *ptr)
{
    struct counting *c = ctx;
    if (ptr == NULL)
        return;
    assert_true(c->live > 0);
    c->live--;
    free((uint8_t *)ptr - CNT_HEADER);
}

/* ---- a counting fs: forwards every call to the simulated disk ------------------------------ */

enum {
    C_OPEN,
    C_CLOSE,
    C_PREAD,
    C_APPEND,
    C_PWRITE,
    C_SYNC,
    C_SIZE,
    C_TRUNCATE,
    C_RENAME,
    C_REMOVE,
    C_LIST,
    C_SYNC_DIR,
    C_OPS
};

struct cfs {
    struct fs fs; /* first */
    struct fs *inner;
    uint64_t n[C_OPS];
};

static struct cfs *cfs_of(struct fs *fs)
{
    return (struct cfs *)fs;
}

static int cfs_open(struct fs *fs, const char *name, uint32_t flags, struct fs_file **out,
                    struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_OPEN]++;
    return c->inner->ops->open(c->inner, name, flags, out, err);
}

static void cfs_close(struct fs *fs, struct fs_file *f)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_CLOSE]++;
    c->inner->ops->close(c->inner, f);
}

static int cfs_pread(struct fs *fs, struct fs_file *f, uint64_t off, void *buf, size_t len,
                     size_t *got, struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_PREAD]++;
    return c->inner->ops->pread(c->inner, f, off, buf, len, got, err);
}

static int cfs_append(struct fs *fs, struct fs_file *f, const void *buf, size_t len,
                      struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_APPEND]++;
    return c->inner->ops->append(c->inner, f, buf, len, err);
}

static int cfs_pwrite(struct fs *fs, struct fs_file *f, uint64_t off, const void *buf, size_t len,
                      struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_PWRITE]++;
    return c->inner->ops->pwrite(c->inner, f, off, buf, len, err);
}

static int cfs_sync(struct fs *fs, struct fs_file *f, struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_SYNC]++;
    return c->inner->ops->sync(c->inner, f, err);
}

static int cfs_size(struct fs *fs, struct fs_file *f, uint64_t *size, struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_SIZE]++;
    return c->inner->ops->size(c->inner, f, size, err);
}

static int cfs_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_TRUNCATE]++;
    return c->inner->ops->truncate(c->inner, f, size, err);
}

static int cfs_rename(struct fs *fs, const char *from, const char *to, struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_RENAME]++;
    return c->inner->ops->rename(c->inner, from, to, err);
}

static int cfs_remove(struct fs *fs, const char *name, struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_REMOVE]++;
    return c->inner->ops->remove(c->inner, name, err);
}

static int cfs_list(struct fs *fs, bool (*fn)(void *ctx, const char *name), void *ctx,
                    struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_LIST]++;
    return c->inner->ops->list(c->inner, fn, ctx, err);
}

static int cfs_sync_dir(struct fs *fs, struct rk_errmsg *err)
{
    struct cfs *c = cfs_of(fs);
    c->n[C_SYNC_DIR]++;
    return c->inner->ops->sync_dir(c->inner, err);
}

static const struct fs_ops cfs_ops = {
    .open = cfs_open,
    .close = cfs_close,
    .pread = cfs_pread,
    .append = cfs_append,
    .pwrite = cfs_pwrite,
    .sync = cfs_sync,
    .size = cfs_size,
    .truncate = cfs_truncate,
    .rename = cfs_rename,
    .remove = cfs_remove,
    .list = cfs_list,
    .sync_dir = cfs_sync_dir,
};

/* ---- a store on a simulated disk ---------------------------------------------------------- */

struct env {
    struct simdisk *disk;
    struct cfs cfs;
    struct counting cnt;
    struct rk_alloc alloc;
    struct log_seglog_config cfg;
    struct log_store *log;
    struct rk_errmsg err;
};

static struct env *env_new(uint64_t seed, uint64_t segment_bytes)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->disk = simdisk_create(seed);
    assert_non_null(e->disk);
    e->cfs.fs.ops = &cfs_ops;
    e->cfs.inner = simdisk_fs(e->disk);
    e->alloc = (struct rk_alloc){
        .malloc_fn = cnt_malloc, .realloc_fn = cnt_realloc, .free_fn = cnt_free, .ctx = &e->cnt};
    e->cfg.fs = &e->cfs.fs;
    e->cfg.alloc = &e->alloc;
    e->cfg.segment_bytes = segment_bytes;
    return e;
}

static int env_open(struct env *e)
{
    assert_null(e->log);
    return log_seglog_open(&e->cfg, &e->log, &e->err);
}

static void env_open_ok(struct env *e)
{
    int rc = env_open(e);
    if (rc != RK_OK)
        fail_msg("log_seglog_open: %s: %s", rk_strerror(rc), e->err.text);
}

static void env_close(struct env *e)
{
    if (e->log != NULL)
        e->log->ops->destroy(e->log);
    e->log = NULL;
    assert_int_equal(e->cnt.live, 0); /* nothing leaked */
}

/* The process dies: the store is closed (writing nothing), the disk keeps what is durable. */
static void env_crash(struct env *e)
{
    env_close(e);
    simdisk_crash(e->disk);
}

static void env_free(struct env *e)
{
    env_close(e);
    simdisk_destroy(e->disk);
    free(e);
}

static void env_faults(struct env *e, const struct simdisk_faults *f)
{
    simdisk_set_faults(e->disk, f);
}

static void counts_reset(struct env *e)
{
    memset(e->cfs.n, 0, sizeof(e->cfs.n));
}

#define OK(e, call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != RK_OK)                                                                          \
            fail_msg("%s: %s: %s", #call, rk_strerror(rc_), (e)->err.text);                        \
    } while (0)

/* ---- entries ------------------------------------------------------------------------------- */

/* Entry contents are a function of (index, term, salt), so a test can check any entry it gets
 * back and two versions of an index never look alike. */
static uint32_t ent_len(uint64_t index, uint64_t term, uint32_t salt)
{
    return (uint32_t)((index * 7 + term * 3 + salt) % 61);
}

static uint8_t ent_byte(uint64_t index, uint64_t term, uint32_t salt, uint32_t i)
{
    return (uint8_t)(index * 131 + term * 31 + salt * 17 + i * 7 + 1);
}

#define ENT_DATA_MAX 1024u

struct ent_buf {
    struct raft_entry e[64];
    uint8_t data[64][ENT_DATA_MAX];
};

static void make_entry(struct raft_entry *e, uint8_t *data, uint64_t index, uint64_t term,
                       uint32_t salt, uint32_t len)
{
    assert_true(len <= ENT_DATA_MAX);
    for (uint32_t i = 0; i < len; i++)
        data[i] = ent_byte(index, term, salt, i);
    *e = (struct raft_entry){.term = term,
                             .index = index,
                             .type = RAFT_ENTRY_NORMAL,
                             .len = len,
                             .data = len > 0 ? data : NULL};
}

static bool entry_is(const struct raft_entry *x, uint64_t index, uint64_t term, uint32_t salt,
                     uint32_t len)
{
    if (x->index != index || x->term != term || x->len != len || x->type != RAFT_ENTRY_NORMAL)
        return false;
    if ((len == 0) != (x->data == NULL))
        return false;
    for (uint32_t i = 0; i < len; i++) {
        if (x->data[i] != ent_byte(index, term, salt, i))
            return false;
    }
    return true;
}

/* Appends first..last of term in calls of `per` entries, salt 0, each len bytes (or ent_len if
 * len is UINT32_MAX). */
static void append_range(struct env *e, uint64_t first, uint64_t last, uint64_t term, size_t per,
                         uint32_t len)
{
    static struct ent_buf b;
    for (uint64_t i = first; i <= last;) {
        size_t n = 0;
        for (; n < per && i <= last; n++, i++)
            make_entry(&b.e[n], b.data[n], i, term, 0,
                       len == UINT32_MAX ? ent_len(i, term, 0) : len);
        OK(e, e->log->ops->append(e->log, b.e, n, &e->err));
    }
}

static void set_hs(struct env *e, uint64_t term, uint64_t vote, uint64_t commit)
{
    struct raft_hard_state hs = {.term = term, .vote = vote, .commit = commit};
    OK(e, e->log->ops->set_hard_state(e->log, &hs, &e->err));
}

struct loaded {
    struct raft_hard_state hs;
    uint64_t snap_index;
    uint64_t snap_term;
    const struct raft_entry *ents;
    size_t n;
};

static void load(struct env *e, struct loaded *l)
{
    OK(e,
       e->log->ops->load(e->log, &l->hs, &l->snap_index, &l->snap_term, &l->ents, &l->n, &e->err));
    for (size_t i = 0; i < l->n; i++)
        assert_int_equal(l->ents[i].index, l->snap_index + 1 + i);
}

/* Asserts the loaded log is first..last of term (salt 0, lengths as append_range's). */
static void expect_range(const struct loaded *l, size_t at, uint64_t first, uint64_t last,
                         uint64_t term, uint32_t len)
{
    for (uint64_t i = first; i <= last; i++) {
        assert_true(at + (i - first) < l->n);
        const struct raft_entry *x = &l->ents[at + (i - first)];
        uint32_t n = len == UINT32_MAX ? ent_len(i, term, 0) : len;
        if (!entry_is(x, i, term, 0, n))
            fail_msg("entry %llu: got term %llu len %llu", (unsigned long long)i,
                     (unsigned long long)x->term, (unsigned long long)x->len);
    }
}

/* ---- the directory, seen through the disk ---------------------------------------------- */

struct names {
    char v[256][FS_NAME_MAX + 1];
    size_t n;
};

static bool names_add(void *ctx, const char *name)
{
    struct names *ns = ctx;
    assert_true(ns->n < 256);
    strcpy(ns->v[ns->n++], name);
    return true;
}

static void list_names(struct env *e, struct names *ns)
{
    struct fs *fs = simdisk_fs(e->disk);
    ns->n = 0;
    assert_int_equal(fs->ops->list(fs, names_add, ns, &e->err), RK_OK);
}

static bool has_name(struct env *e, const char *name)
{
    struct names ns;
    list_names(e, &ns);
    for (size_t i = 0; i < ns.n; i++) {
        if (strcmp(ns.v[i], name) == 0)
            return true;
    }
    return false;
}

static void seg_name(char *out, uint64_t first)
{
    snprintf(out, FS_NAME_MAX + 1, "seg-%020llu.log", (unsigned long long)first);
}

/* Writes a segment file by hand, durably, in the format of seglog.c: records
 * [crc32c u32][len u32][term u64][index u64][type u8][data], crc over len..data. */
/* The format file of format 2 (seglog.c, FORMAT): [crc32c u32]["RKLF" u32][version 2 u32]. */
static void write_format(struct env *e)
{
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    uint8_t buf[12] = {0, 0, 0, 0, 'R', 'K', 'L', 'F', 2, 0, 0, 0};
    uint32_t crc = rk_crc32c(0, buf + 4, 8);
    for (int b = 0; b < 4; b++)
        buf[b] = (uint8_t)(crc >> (8 * b));
    assert_int_equal(fs->ops->open(fs, "format", FS_CREATE, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->truncate(fs, f, 0, &e->err), RK_OK);
    assert_int_equal(fs->ops->append(fs, f, buf, sizeof(buf), &e->err), RK_OK);
    assert_int_equal(fs->ops->sync(fs, f, &e->err), RK_OK);
    fs->ops->close(fs, f);
}

static void write_segment(struct env *e, uint64_t first, uint64_t n, uint64_t term, uint32_t len)
{
    struct fs *fs = simdisk_fs(e->disk);
    char name[FS_NAME_MAX + 1];
    seg_name(name, first);
    struct fs_file *f;
    write_format(e);
    assert_int_equal(fs->ops->open(fs, name, FS_CREATE, &f, &e->err), RK_OK);
    uint64_t off = 0;
    for (uint64_t i = first; i < first + n; i++) {
        uint8_t rec[25 + ENT_DATA_MAX];
        uint32_t l = 17 + len;
        for (int b = 0; b < 4; b++)
            rec[4 + b] = (uint8_t)(l >> (8 * b));
        for (int b = 0; b < 8; b++) {
            rec[8 + b] = (uint8_t)(term >> (8 * b));
            rec[16 + b] = (uint8_t)(i >> (8 * b));
        }
        rec[24] = RAFT_ENTRY_NORMAL;
        for (uint32_t b = 0; b < len; b++)
            rec[25 + b] = ent_byte(i, term, 0, b);
        uint32_t crc = rk_crc32c(0, rec + 4, (size_t)l + 4);
        for (int b = 0; b < 4; b++)
            rec[b] = (uint8_t)(crc >> (8 * b));
        assert_int_equal(fs->ops->append(fs, f, rec, 25 + len, &e->err), RK_OK);
        off += 25 + len;
    }
    /* A sync of format 2 ends with a commit record: [crc][len 33][term 0][index 0][type 0]
     * [last index u64][its own offset u64]. */
    uint8_t commit[41] = {0};
    commit[4] = 33;
    for (int b = 0; b < 8; b++) {
        commit[25 + b] = (uint8_t)((first + n - 1) >> (8 * b));
        commit[33 + b] = (uint8_t)(off >> (8 * b));
    }
    uint32_t ccrc = rk_crc32c(0, commit + 4, 37);
    for (int b = 0; b < 4; b++)
        commit[b] = (uint8_t)(ccrc >> (8 * b));
    assert_int_equal(fs->ops->append(fs, f, commit, sizeof(commit), &e->err), RK_OK);
    assert_int_equal(fs->ops->sync(fs, f, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(fs->ops->sync_dir(fs, &e->err), RK_OK);
}

/* ---- basic behaviour ------------------------------------------------------------------------ */

static void test_append_sync_reopen_returns_same_entries_and_hard_state(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.hs.term, 0);
    assert_int_equal(l.snap_index, 0);
    set_hs(e, 3, 2, 7);
    append_range(e, 1, 10, 3, 4, UINT32_MAX);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    env_open_ok(e);
    load(e, &l);
    assert_int_equal(l.hs.term, 3);
    assert_int_equal(l.hs.vote, 2);
    assert_int_equal(l.hs.commit, 7);
    assert_int_equal(l.snap_index, 0);
    assert_int_equal(l.n, 10);
    expect_range(&l, 0, 1, 10, 3, UINT32_MAX);
    /* And it goes on from there. */
    append_range(e, 11, 12, 3, 1, UINT32_MAX);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_crash(e);
    env_open_ok(e);
    load(e, &l);
    assert_int_equal(l.n, 12);
    expect_range(&l, 0, 1, 12, 3, UINT32_MAX);
    env_free(e);
}

static void test_group_commit_n_appends_one_sync_is_one_fs_sync(void **state)
{
    (void)state;
    struct env *e = env_new(2, 0);
    env_open_ok(e);
    set_hs(e, 1, 1, 0);
    append_range(e, 1, 1, 1, 1, 8);
    OK(e, e->log->ops->sync(e->log, &e->err));

    /* 50 appends, one sync, nothing else changed: one fs append each, one fs sync. */
    counts_reset(e);
    append_range(e, 2, 51, 1, 1, 8);
    OK(e, e->log->ops->sync(e->log, &e->err));
    assert_int_equal(e->cfs.n[C_APPEND], 51); /* and the commit record (seglog.c, C1) */
    assert_int_equal(e->cfs.n[C_SYNC], 1);
    assert_int_equal(e->cfs.n[C_SYNC_DIR], 0);
    assert_int_equal(e->cfs.n[C_RENAME], 0);

    /* One append call of many entries: one fs append. */
    counts_reset(e);
    append_range(e, 52, 91, 1, 40, 8);
    OK(e, e->log->ops->sync(e->log, &e->err));
    assert_int_equal(e->cfs.n[C_APPEND], 2); /* the entries, then the commit record */
    assert_int_equal(e->cfs.n[C_SYNC], 1);

    /* A new term: the hard state file too (its sync, rename and sync_dir), still one batch. */
    counts_reset(e);
    append_range(e, 92, 95, 2, 1, 8);
    set_hs(e, 2, 3, 50);
    OK(e, e->log->ops->sync(e->log, &e->err));
    assert_int_equal(e->cfs.n[C_SYNC], 2);
    assert_int_equal(e->cfs.n[C_RENAME], 1);
    assert_int_equal(e->cfs.n[C_SYNC_DIR], 1);

    /* Nothing to do: no fs call at all. */
    counts_reset(e);
    OK(e, e->log->ops->sync(e->log, &e->err));
    uint64_t total = 0;
    for (int i = 0; i < C_OPS; i++)
        total += e->cfs.n[i];
    assert_int_equal(total, 0);
    env_free(e);
}

static void test_commit_only_change_is_written_lazily(void **state)
{
    (void)state;
    struct env *e = env_new(3, 0);
    env_open_ok(e);
    set_hs(e, 1, 2, 0);
    append_range(e, 1, 5, 1, 5, 8);
    OK(e, e->log->ops->sync(e->log, &e->err));
    counts_reset(e);
    set_hs(e, 1, 2, 5); /* commit only */
    OK(e, e->log->ops->sync(e->log, &e->err));
    assert_int_equal(e->cfs.n[C_RENAME], 0);
    assert_int_equal(e->cfs.n[C_SYNC], 0);
    env_crash(e);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.hs.term, 1);
    assert_int_equal(l.hs.vote, 2);
    assert_int_equal(l.hs.commit, 0); /* a hint: raft_create raises it to the applied index */
    /* The next hard state written carries the latest commit. */
    set_hs(e, 2, 0, 5);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_crash(e);
    env_open_ok(e);
    load(e, &l);
    assert_int_equal(l.hs.commit, 5);
    env_free(e);
}

static void test_unsynced_entries_lost_at_crash_synced_kept(void **state)
{
    (void)state;
    struct env *e = env_new(4, 0);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 10, 1, 3, UINT32_MAX);
    OK(e, e->log->ops->sync(e->log, &e->err));
    append_range(e, 11, 20, 1, 3, UINT32_MAX);
    set_hs(e, 2, 1, 0);
    env_crash(e); /* no torn writes: exactly the synced state */
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.n, 10);
    expect_range(&l, 0, 1, 10, 1, UINT32_MAX);
    assert_int_equal(l.hs.term, 1);
    assert_int_equal(l.hs.vote, 0);
    env_free(e);
}

/* With torn writes, over many seeds: the reopened log is a prefix of what was appended that holds
 * everything synced. */
static void test_torn_tail_cut_reopened_log_is_prefix(void **state)
{
    (void)state;
    uint64_t cuts = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct rk_prng p;
        rk_prng_seed(&p, seed);
        struct env *e = env_new(seed, 64 + rk_prng_below(&p, 2000));
        struct simdisk_faults f = {.torn_writes = true};
        env_faults(e, &f);
        env_open_ok(e);
        set_hs(e, 1, 0, 0);
        uint64_t last = 0;
        uint64_t synced = 0;
        uint32_t batches = 1 + (uint32_t)rk_prng_below(&p, 12);
        for (uint32_t b = 0; b < batches; b++) {
            uint64_t n = 1 + rk_prng_below(&p, 20);
            append_range(e, last + 1, last + n, 1, 1 + rk_prng_below(&p, 8), UINT32_MAX);
            last += n;
            if (rk_prng_below(&p, 3) == 0) {
                OK(e, e->log->ops->sync(e->log, &e->err));
                synced = last;
            }
        }
        env_crash(e);
        env_open_ok(e);
        struct loaded l;
        load(e, &l);
        assert_true(l.n >= synced);
        assert_true(l.n <= last);
        expect_range(&l, 0, 1, l.n, 1, UINT32_MAX);
        struct log_seglog_stats st;
        log_seglog_stats(e->log, &st);
        cuts += st.cut_bytes > 0;
        /* The cut tail is gone for good: append, sync, reopen. */
        append_range(e, l.n + 1, l.n + 3, 1, 3, UINT32_MAX);
        OK(e, e->log->ops->sync(e->log, &e->err));
        uint64_t n = l.n + 3;
        env_crash(e);
        env_open_ok(e);
        load(e, &l);
        assert_int_equal(l.n, n);
        expect_range(&l, 0, 1, n, 1, UINT32_MAX);
        env_free(e);
    }
    assert_true(cuts > 30); /* the rule was exercised */
}

/* A crash at every fs call of a hard-state write: afterwards the old or the new hard state,
 * never anything else, and the log untouched. */
static void test_hard_state_atomic_across_crash_at_every_call(void **state)
{
    (void)state;
    bool saw_old = false;
    bool saw_new = false;
    for (uint64_t k = 1;; k++) {
        assert_true(k < 100);
        struct env *e = env_new(k, 0);
        env_open_ok(e);
        set_hs(e, 1, 2, 3);
        append_range(e, 1, 3, 1, 3, 8);
        OK(e, e->log->ops->sync(e->log, &e->err));
        struct simdisk_faults f = {.torn_writes = true, .crash_at_call = k};
        env_faults(e, &f);
        set_hs(e, 2, 3, 3);
        int rc = e->log->ops->sync(e->log, &e->err);
        bool done = rc == RK_OK && !simdisk_crashed(e->disk);
        env_crash(e);
        env_open_ok(e);
        struct loaded l;
        load(e, &l);
        bool is_old = l.hs.term == 1 && l.hs.vote == 2;
        bool is_new = l.hs.term == 2 && l.hs.vote == 3;
        assert_true(is_old || is_new);
        if (done)
            assert_true(is_new);
        saw_old |= is_old;
        saw_new |= is_new;
        assert_int_equal(l.n, 3);
        expect_range(&l, 0, 1, 3, 1, 8);
        assert_false(has_name(e, "hardstate.tmp"));
        env_free(e);
        if (done)
            break;
    }
    assert_true(saw_old);
    assert_true(saw_new);
}

/* truncate, append, sync with a crash at every fs call (and torn tails): afterwards the log is
 * the old one or the new one (or a prefix of either that keeps the common part), never old
 * entries after new ones. Old and new records have the same size, so their boundaries line up:
 * the case where a truncate undone at the crash would make a mix that checks out. */
static void test_truncate_append_sync_crash_at_every_call_old_or_new(void **state)
{
    (void)state;
    bool saw_old_tail = false;
    bool saw_new_tail = false;
    for (uint64_t k = 1;; k++) {
        assert_true(k < 400);
        bool done = false;
        for (uint64_t seed = 1; seed <= 8; seed++) {
            struct env *e = env_new(k * 1000 + seed, 200);
            env_open_ok(e);
            set_hs(e, 1, 1, 0);
            append_range(e, 1, 30, 1, 1, 10);
            OK(e, e->log->ops->sync(e->log, &e->err));
            struct simdisk_faults f = {.torn_writes = true, .crash_at_call = k};
            env_faults(e, &f);
            int rc = RK_OK;
            struct raft_hard_state hs = {.term = 2, .vote = 2};
            rc = e->log->ops->set_hard_state(e->log, &hs, &e->err);
            if (rc == RK_OK)
                rc = e->log->ops->truncate(e->log, 12, &e->err);
            for (uint64_t i = 12; rc == RK_OK && i <= 40; i += 3) {
                static struct ent_buf b;
                size_t n = 0;
                for (uint64_t j = i; j < i + 3 && j <= 40; j++, n++)
                    make_entry(&b.e[n], b.data[n], j, 2, 0, 10);
                rc = e->log->ops->append(e->log, b.e, n, &e->err);
            }
            if (rc == RK_OK)
                rc = e->log->ops->sync(e->log, &e->err);
            done = rc == RK_OK && !simdisk_crashed(e->disk);
            env_crash(e);
            env_open_ok(e);
            struct loaded l;
            load(e, &l);
            assert_true(l.n >= 11);
            expect_range(&l, 0, 1, 11, 1, 10);
            if (l.n > 11) {
                uint64_t term = l.ents[11].term; /* the tail is all old or all new */
                assert_true(term == 1 || term == 2);
                expect_range(&l, 11, 12, l.n, term, 10);
                assert_true(l.n <= (term == 1 ? 30u : 40u));
                saw_old_tail |= term == 1;
                saw_new_tail |= term == 2;
            }
            if (done) {
                assert_int_equal(l.n, 40);
                assert_int_equal(l.hs.term, 2);
            }
            env_free(e);
        }
        if (done)
            break;
    }
    assert_true(saw_old_tail);
    assert_true(saw_new_tail);
}

static void test_rotation_across_segments(void **state)
{
    (void)state;
    struct env *e = env_new(5, 100);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 20, 1, 2, 20); /* 45-byte records, 2 per append: 90, then 180 >= 100 */
    OK(e, e->log->ops->sync(e->log, &e->err));
    struct names ns;
    list_names(e, &ns);
    /* Segments start at 1, 5, 9, ...: each holds two appends (the second takes it past 100). */
    size_t segs = 0;
    for (size_t i = 0; i < ns.n; i++) {
        if (strncmp(ns.v[i], "seg-", 4) != 0)
            continue;
        char want[FS_NAME_MAX + 1];
        seg_name(want, 1 + 4 * segs);
        assert_string_equal(ns.v[i], want);
        segs++;
    }
    assert_int_equal(segs, 5);
    struct log_seglog_stats st;
    log_seglog_stats(e->log, &st);
    assert_int_equal(st.segments, 5);
    env_crash(e);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.n, 20);
    expect_range(&l, 0, 1, 20, 1, 20);
    /* Truncating into an earlier segment removes the later ones. */
    OK(e, e->log->ops->truncate(e->log, 7, &e->err));
    assert_false(has_name(e, "seg-00000000000000000009.log"));
    assert_false(has_name(e, "seg-00000000000000000017.log"));
    append_range(e, 7, 12, 1, 1, 20);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_crash(e);
    env_open_ok(e);
    load(e, &l);
    assert_int_equal(l.n, 12);
    expect_range(&l, 0, 1, 12, 1, 20);
    env_free(e);
}

/* Two appends between syncs that fill a segment: the rotation syncs the full one first (L2). */
static void test_rotation_syncs_the_segment_it_leaves(void **state)
{
    (void)state;
    struct env *e = env_new(6, 100);
    struct simdisk_faults f = {.torn_writes = true};
    env_faults(e, &f);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 1, 1, 1, 20); /* 45 bytes in segment 1 */
    OK(e, e->log->ops->sync(e->log, &e->err));
    counts_reset(e);
    append_range(e, 2, 4, 1, 3, 20); /* 180 bytes, unsynced */
    append_range(e, 5, 7, 1, 3, 20); /* rotation: segment 1 synced, segment 5 created */
    assert_int_equal(e->cfs.n[C_SYNC], 1);
    assert_int_equal(e->cfs.n[C_SYNC_DIR], 0);
    env_crash(e);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_true(l.n >= 4 && l.n <= 7); /* segment 5's name was never made durable */
    expect_range(&l, 0, 1, l.n, 1, 20);
    env_free(e);
}

static void test_compact_removes_segments_and_load_returns_snapshot_point(void **state)
{
    (void)state;
    struct env *e = env_new(7, 100);
    env_open_ok(e);
    set_hs(e, 2, 0, 0);
    append_range(e, 1, 20, 2, 2, 20); /* segments 1, 5, 9, 13, 17 */
    OK(e, e->log->ops->sync(e->log, &e->err));
    OK(e, e->log->ops->compact(e->log, 10, 2, &e->err)); /* 10 is inside segment 9 */
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.snap_index, 10);
    assert_int_equal(l.snap_term, 2);
    assert_int_equal(l.n, 10);
    expect_range(&l, 0, 11, 20, 2, 20);
    OK(e, e->log->ops->sync(e->log, &e->err));
    assert_false(has_name(e, "seg-00000000000000000001.log"));
    assert_false(has_name(e, "seg-00000000000000000005.log"));
    assert_true(has_name(e, "seg-00000000000000000009.log"));
    env_crash(e);
    env_open_ok(e);
    load(e, &l);
    assert_int_equal(l.snap_index, 10);
    assert_int_equal(l.snap_term, 2);
    assert_int_equal(l.n, 10);
    expect_range(&l, 0, 11, 20, 2, 20);
    /* A snapshot beyond the log (installed from a leader): the log continues after it. */
    OK(e, e->log->ops->compact(e->log, 50, 2, &e->err));
    append_range(e, 51, 53, 2, 3, 20);
    OK(e, e->log->ops->sync(e->log, &e->err));
    assert_false(has_name(e, "seg-00000000000000000017.log"));
    assert_true(has_name(e, "seg-00000000000000000051.log"));
    env_crash(e);
    env_open_ok(e);
    load(e, &l);
    assert_int_equal(l.snap_index, 50);
    assert_int_equal(l.n, 3);
    expect_range(&l, 0, 51, 53, 2, 20);
    /* Compacting behind the snapshot point, or to it with another term, is refused. */
    assert_int_equal(e->log->ops->compact(e->log, 49, 2, &e->err), RK_EINVAL);
    assert_int_equal(e->log->ops->compact(e->log, 50, 1, &e->err), RK_EINVAL);
    OK(e, e->log->ops->compact(e->log, 50, 2, &e->err));
    assert_int_equal(e->log->ops->truncate(e->log, 50, &e->err), RK_EINVAL);
    env_free(e);
}

/* compact's segments come back after a crash before their removal was durable: they are behind
 * the snapshot point and removed at open. */
static void test_compacted_segments_brought_back_are_removed_at_open(void **state)
{
    (void)state;
    struct env *e = env_new(8, 100);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 20, 1, 2, 20);
    OK(e, e->log->ops->sync(e->log, &e->err));
    OK(e, e->log->ops->compact(e->log, 12, 1, &e->err));
    OK(e, e->log->ops->sync(e->log, &e->err)); /* hard state durable, removals not (no sync_dir) */
    env_crash(e);
    assert_true(has_name(e, "seg-00000000000000000001.log"));
    env_open_ok(e);
    struct log_seglog_stats st;
    log_seglog_stats(e->log, &st);
    assert_int_equal(st.garbage_segments, 3); /* 1, 5 and 9: up to 12 */
    assert_false(has_name(e, "seg-00000000000000000001.log"));
    assert_false(has_name(e, "seg-00000000000000000009.log"));
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.snap_index, 12);
    expect_range(&l, 0, 13, 20, 1, 20);
    env_free(e);
}

static void test_compact_crash_at_every_call(void **state)
{
    (void)state;
    for (uint64_t k = 1;; k++) {
        assert_true(k < 100);
        struct env *e = env_new(k, 100);
        env_open_ok(e);
        set_hs(e, 1, 0, 0);
        append_range(e, 1, 20, 1, 2, 20);
        OK(e, e->log->ops->sync(e->log, &e->err));
        struct simdisk_faults f = {.torn_writes = true, .crash_at_call = k};
        env_faults(e, &f);
        int rc = e->log->ops->compact(e->log, 14, 1, &e->err);
        static struct ent_buf b;
        make_entry(&b.e[0], b.data[0], 21, 1, 0, 20);
        if (rc == RK_OK)
            rc = e->log->ops->append(e->log, b.e, 1, &e->err);
        if (rc == RK_OK)
            rc = e->log->ops->sync(e->log, &e->err);
        bool done = rc == RK_OK && !simdisk_crashed(e->disk);
        env_crash(e);
        env_open_ok(e);
        struct loaded l;
        load(e, &l);
        assert_true(l.snap_index == 0 || l.snap_index == 14);
        uint64_t last = l.snap_index + l.n;
        assert_true(last == 20 || last == 21);
        expect_range(&l, 0, l.snap_index + 1, last, 1, 20);
        if (done) {
            assert_int_equal(l.snap_index, 14);
            assert_int_equal(last, 21);
        }
        env_free(e);
        if (done)
            break;
    }
}

/* ---- recovery rules ------------------------------------------------------------------------- */

static void test_corruption_in_non_tail_record_fails_open_naming_file_and_offset(void **state)
{
    (void)state;
    struct env *e = env_new(9, 0);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 100, 1, 10, 10); /* 35-byte records: 3500 bytes */
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    assert_int_equal(simdisk_corrupt(e->disk, "seg-00000000000000000001.log", 70 + 30, 0x10),
                     RK_OK);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "seg-00000000000000000001.log: offset 70: crc32c 0x"));
    assert_null(e->log);
    assert_int_equal(e->cnt.live, 0);
    env_free(e);
}

/* A bad record near the end of a segment that is not the highest is corruption too: only the
 * highest segment can have a torn tail (L2). */
static void test_corruption_at_end_of_lower_segment_fails_open(void **state)
{
    (void)state;
    struct env *e = env_new(10, 100);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 8, 1, 2, 20); /* segments 1 and 5, 180 bytes each */
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    assert_int_equal(simdisk_corrupt(e->disk, "seg-00000000000000000001.log", 170, 0x01), RK_OK);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "seg-00000000000000000001.log: offset 135: crc32c"));
    env_free(e);
}

static void test_corrupt_hard_state_fails_open(void **state)
{
    (void)state;
    struct env *e = env_new(11, 0);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    assert_int_equal(simdisk_corrupt(e->disk, "hardstate", 9, 0x04), RK_OK);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "hardstate: offset 0: crc32c"));
    env_free(e);
}

static void test_leftover_hard_state_tmp_is_removed(void **state)
{
    (void)state;
    struct env *e = env_new(12, 0);
    env_open_ok(e);
    set_hs(e, 4, 1, 0);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    /* A valid-looking but never committed (never renamed) hard state. */
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    assert_int_equal(fs->ops->open(fs, "hardstate", 0, &f, &e->err), RK_OK);
    uint8_t buf[48];
    size_t got;
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, 48, &got, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(fs->ops->open(fs, "hardstate.tmp", FS_CREATE, &f, &e->err), RK_OK);
    buf[8] = 9; /* another term: the crc no longer matches, nor matters */
    assert_int_equal(fs->ops->append(fs, f, buf, 48, &e->err), RK_OK);
    fs->ops->close(fs, f);
    env_open_ok(e);
    assert_false(has_name(e, "hardstate.tmp"));
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.hs.term, 4);
    env_free(e);
}

/* A segment past a gap (e.g. begun after a compaction whose hard state was never durable) is
 * dropped; one overlapping the one before is corruption. */
static void test_segment_after_gap_is_dropped(void **state)
{
    (void)state;
    struct env *e = env_new(13, 0);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 5, 1, 5, 10);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    write_segment(e, 100, 3, 1, 10);
    env_open_ok(e);
    struct log_seglog_stats st;
    log_seglog_stats(e->log, &st);
    assert_int_equal(st.dropped_segments, 1);
    assert_false(has_name(e, "seg-00000000000000000100.log"));
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.n, 5);
    expect_range(&l, 0, 1, 5, 1, 10);
    env_free(e);
}

static void test_overlapping_segment_fails_open(void **state)
{
    (void)state;
    struct env *e = env_new(14, 0);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 5, 1, 5, 10);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    write_segment(e, 3, 4, 1, 10);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "seg-00000000000000000003.log: overlaps"));
    env_free(e);
}

static void test_misplaced_record_fails_open(void **state)
{
    (void)state;
    struct env *e = env_new(15, 0);
    write_segment(e, 1, 3, 1, 10);
    /* A valid record in the wrong place: a copy of record 1 after record 3. */
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    OK(e, fs->ops->open(fs, "seg-00000000000000000001.log", 0, &f, &e->err));
    uint8_t rec[35];
    size_t got;
    OK(e, fs->ops->pread(fs, f, 0, rec, sizeof(rec), &got, &e->err));
    OK(e, fs->ops->append(fs, f, rec, sizeof(rec), &e->err));
    OK(e, fs->ops->sync(fs, f, &e->err));
    fs->ops->close(fs, f);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(
        strstr(e->err.text, "seg-00000000000000000001.log: offset 146: index 1, expected 4"));
    env_free(e);
}

/* Entries synced without a hard state that covers their term (a caller that syncs before
 * set_hard_state, or append's rotation sync): open raises the term to the log's, vote cleared. */
static void test_entries_above_hard_state_term_raise_it(void **state)
{
    (void)state;
    struct env *e = env_new(16, 0);
    env_open_ok(e);
    set_hs(e, 1, 2, 0);
    append_range(e, 1, 2, 1, 2, 10);
    OK(e, e->log->ops->sync(e->log, &e->err));
    append_range(e, 3, 4, 3, 2, 10);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_crash(e);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.hs.term, 3);
    assert_int_equal(l.hs.vote, 0);
    assert_int_equal(l.n, 4);
    struct log_seglog_stats st;
    log_seglog_stats(e->log, &st);
    assert_int_equal(st.term_raises, 1);
    env_free(e);
}

static void test_missing_hard_state_with_entries_raises_term(void **state)
{
    (void)state;
    struct env *e = env_new(17, 0);
    write_segment(e, 1, 4, 2, 10);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.hs.term, 2);
    assert_int_equal(l.n, 4);
    expect_range(&l, 0, 1, 4, 2, 10);
    env_free(e);
}


/* ---- torn or corrupt (seglog.c, TORN OR CORRUPT) ------------------------------------------- */

/* Layout of the decision tests: entries of 20 data bytes (45-byte records), synced 4 at a time
 * (4 records then a 41-byte commit record: 221 bytes a batch), segments of 512 bytes: segment 1
 * holds batches 1-3 (entries 1..12), segment 2 (the newest) batches 4-6 (entries 13..24). */
#define TC_REC     45u
#define TC_BATCH   (4u * TC_REC + 41u)
#define TC_SEG1    "seg-00000000000000000001.log"
#define TC_SEG2    "seg-00000000000000000013.log"
#define TC_ENTRIES 24u

static struct env *tc_build(uint64_t seed)
{
    struct env *e = env_new(seed, 512);
    env_open_ok(e);
    set_hs(e, 1, 1, 0);
    for (uint64_t b = 0; b < 6; b++) {
        append_range(e, 4 * b + 1, 4 * b + 4, 1, 4, 20);
        OK(e, e->log->ops->sync(e->log, &e->err));
    }
    env_close(e);
    return e;
}

/* The offset of entry i's record in its segment. */
static uint64_t tc_offset(uint64_t i)
{
    uint64_t k = (i - 1) % 12; /* position within its segment */
    return (k / 4) * TC_BATCH + (k % 4) * TC_REC;
}

struct tc_case {
    uint64_t index; /* the entry whose record is damaged */
    uint32_t at;    /* byte within its record: < 25 the header, else the data */
};

/* A flipped bit anywhere in synced data — first, middle or last record, of the newest or an
 * older segment, header or payload — is corruption, never a torn tail: open fails with
 * RK_ECORRUPT and the damage names file, offset, the batch's index range and the highest
 * acknowledged index; nothing is cut. */
static void test_synced_bit_flip_is_corruption_at_every_position(void **state)
{
    (void)state;
    static const struct tc_case cases[] = {
        {1, 30},  {1, 5},  {1, 17},  /* first record of the older segment: data, len, index */
        {6, 40},  {6, 10}, {12, 30}, /* middle; last record of the older segment */
        {13, 30}, {13, 4}, {18, 26}, /* first, middle record of the newest */
        {24, 30}, {24, 5}, {24, 0},  /* the last record of the newest: data, len, crc */
        {21, 24},                    /* the type byte */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct tc_case *c = &cases[k];
        struct env *e = tc_build(100 + k);
        const char *file = c->index <= 12 ? TC_SEG1 : TC_SEG2;
        uint64_t off = tc_offset(c->index);
        assert_int_equal(simdisk_corrupt(e->disk, file, off + c->at, 0x10), RK_OK);
        struct log_damage d;
        memset(&d, 0xee, sizeof(d));
        e->cfg.damage = &d;
        int rc = env_open(e);
        if (rc != RK_ECORRUPT)
            fail_msg("case %zu (entry %llu byte %u): %s: %s", k, (unsigned long long)c->index,
                     c->at, rk_strerror(rc), e->err.text);
        assert_int_equal(d.kind, LOG_DAMAGE_RECORD);
        assert_string_equal(d.file, file);
        assert_int_equal(d.offset, off);
        assert_int_equal(d.first_index, c->index);
        assert_int_equal(d.intact_last_index, c->index - 1);
        assert_int_equal(d.last_index, (c->index - 1) / 4 * 4 + 4); /* its batch's last */
        assert_int_equal(d.acked_index, TC_ENTRIES);
        assert_non_null(strstr(e->err.text, file));
        /* Nothing was cut: with the bit flipped back, the whole log is there. */
        assert_int_equal(simdisk_corrupt(e->disk, file, off + c->at, 0x10), RK_OK);
        e->cfg.damage = NULL;
        env_open_ok(e);
        struct loaded l;
        load(e, &l);
        assert_int_equal(l.n, TC_ENTRIES);
        env_free(e);
    }
}

/* The sequence: the last record of the newest segment, synced and acknowledged, has a
 * flipped bit in its value. The old rule cut it as a torn tail; now it is corruption. */
static void test_flipped_last_record_of_newest_segment_is_not_cut(void **state)
{
    (void)state;
    struct env *e = tc_build(7);
    assert_int_equal(simdisk_corrupt(e->disk, TC_SEG2, tc_offset(24) + 40, 0x01), RK_OK);
    struct log_damage d;
    e->cfg.damage = &d;
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_int_equal(d.first_index, 24);
    assert_int_equal(d.acked_index, 24);
    assert_non_null(strstr(e->err.text, "commit record after it checks out"));
    env_free(e);
}

/* A bad commit record: the last one of the newest segment (nothing after it) is taken as torn,
 * and costs nothing — the entries before it check out and are kept, and sealed again; an
 * earlier one (vouched for by a later commit record) or one in an older segment is corruption. */
static void test_bad_commit_record_last_is_harmless_earlier_is_corruption(void **state)
{
    (void)state;
    struct env *e = tc_build(8);
    uint64_t last_commit = 2 * TC_BATCH + 4 * TC_REC;
    assert_int_equal(simdisk_corrupt(e->disk, TC_SEG2, last_commit + 30, 0x02), RK_OK);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.n, TC_ENTRIES);
    expect_range(&l, 0, 1, TC_ENTRIES, 1, 20);
    struct log_seglog_stats st;
    log_seglog_stats(e->log, &st);
    assert_int_equal(st.cut_bytes, 41);
    assert_int_equal(st.commit_records, 1); /* sealed again at open */
    env_close(e);
    /* Sealed: the same flip now finds a commit record after it. */
    env_crash(e);
    assert_int_equal(simdisk_corrupt(e->disk, TC_SEG2, tc_offset(24) + 30, 0x02), RK_OK);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    env_free(e);

    e = tc_build(9);
    assert_int_equal(simdisk_corrupt(e->disk, TC_SEG2, 4 * TC_REC + 30, 0x02), RK_OK);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    env_free(e);
    e = tc_build(10);
    assert_int_equal(simdisk_corrupt(e->disk, TC_SEG1, 2 * TC_BATCH + 4 * TC_REC + 30, 0x02),
                     RK_OK);
    struct log_damage d;
    e->cfg.damage = &d;
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_int_equal(d.kind, LOG_DAMAGE_RECORD);
    assert_string_equal(d.file, TC_SEG1);
    env_free(e);
}

/* Bytes no sync returned for: a bad record after the last commit record is a torn tail, cut at
 * open, wherever it is (not only in the last 512 bytes). */
static void test_unsynced_bad_record_is_torn_and_cut(void **state)
{
    (void)state;
    for (uint64_t at = 0; at < 4; at++) {
        struct env *e = tc_build(20 + at);
        env_open_ok(e);
        append_range(e, 25, 28, 1, 4, 20); /* written (a new segment), never synced */
        env_close(e);                       /* a reopen without a crash still finds them */
        assert_int_equal(
            simdisk_corrupt(e->disk, "seg-00000000000000000025.log", at * TC_REC + 30, 0x04),
            RK_OK);
        env_open_ok(e);
        struct loaded l;
        load(e, &l);
        assert_int_equal(l.n, TC_ENTRIES + at);
        struct log_seglog_stats st;
        log_seglog_stats(e->log, &st);
        assert_int_equal(st.cut_bytes, (4 - at) * TC_REC);
        env_free(e);
    }
}

/* Group commit keeps its cost: a batch of appends and its sync is one fs sync, with or without
 * the commit record, however many batches. */
static void test_commit_records_cost_no_sync(void **state)
{
    (void)state;
    struct env *e = env_new(30, 0);
    env_open_ok(e);
    set_hs(e, 1, 1, 0);
    OK(e, e->log->ops->sync(e->log, &e->err));
    counts_reset(e);
    for (uint64_t b = 0; b < 100; b++) {
        append_range(e, 10 * b + 1, 10 * b + 10, 1, 5, 8);
        OK(e, e->log->ops->sync(e->log, &e->err));
    }
    assert_int_equal(e->cfs.n[C_SYNC], 100);
    assert_int_equal(e->cfs.n[C_APPEND], 300); /* two appends of entries, one commit record */
    struct log_seglog_stats st;
    log_seglog_stats(e->log, &st);
    assert_int_equal(st.commit_records, 100);
    env_free(e);
}

/* A directory of format 1 (segments, no format file) is refused, not read; a bad format file
 * beside data is corruption; beside nothing it is a first write that never completed. */
static void test_format_1_refused_bad_format_file(void **state)
{
    (void)state;
    struct env *e = tc_build(40);
    struct fs *fs = simdisk_fs(e->disk);
    assert_int_equal(fs->ops->remove(fs, "format", &e->err), RK_OK);
    assert_int_equal(env_open(e), RK_EMALFORMED);
    assert_non_null(strstr(e->err.text, "format 1"));
    write_format(e);
    assert_int_equal(simdisk_corrupt(e->disk, "format", 9, 0x01), RK_OK);
    struct log_damage d;
    e->cfg.damage = &d;
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_int_equal(d.kind, LOG_DAMAGE_FORMAT);
    assert_int_equal(d.acked_index, 0); /* no search: nothing of the log is read */
    env_free(e);

    e = env_new(41, 0);
    write_format(e);
    assert_int_equal(simdisk_corrupt(e->disk, "format", 9, 0x01), RK_OK);
    env_open_ok(e);
    env_free(e);
}

/* The hard state damaged: corruption with LOG_DAMAGE_HARD_STATE, and the acknowledged index
 * found in the segments' commit records. */
static void test_bad_hard_state_damage_names_acked_index(void **state)
{
    (void)state;
    struct env *e = tc_build(50);
    assert_int_equal(simdisk_corrupt(e->disk, "hardstate", 10, 0x01), RK_OK);
    struct log_damage d;
    e->cfg.damage = &d;
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_int_equal(d.kind, LOG_DAMAGE_HARD_STATE);
    assert_int_equal(d.acked_index, TC_ENTRIES);
    env_free(e);
}

/* A lost write (the entries of the last batch never reached the media, their commit record did)
 * and a misdirected one (a record of another place written over synced data): both corruption. */
static void test_lost_and_misdirected_writes_are_corruption(void **state)
{
    (void)state;
    struct env *e = tc_build(60);
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    uint8_t zeros[4 * TC_REC] = {0};
    OK(e, fs->ops->open(fs, TC_SEG2, 0, &f, &e->err));
    OK(e, fs->ops->pwrite(fs, f, 2 * TC_BATCH, zeros, sizeof(zeros), &e->err));
    OK(e, fs->ops->sync(fs, f, &e->err));
    fs->ops->close(fs, f);
    struct log_damage d;
    e->cfg.damage = &d;
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_int_equal(d.first_index, 21);
    assert_int_equal(d.last_index, 24);
    env_free(e);

    e = tc_build(61);
    fs = simdisk_fs(e->disk);
    uint8_t rec[TC_REC];
    size_t got;
    OK(e, fs->ops->open(fs, TC_SEG2, 0, &f, &e->err));
    OK(e, fs->ops->pread(fs, f, 0, rec, sizeof(rec), &got, &e->err));
    OK(e, fs->ops->pwrite(fs, f, tc_offset(24), rec, sizeof(rec), &e->err));
    OK(e, fs->ops->sync(fs, f, &e->err));
    fs->ops->close(fs, f);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "index 13, expected 24"));
    env_free(e);
}

/* Verify reports the same damage as open, changing nothing. */
static void test_verify_reports_the_damage_open_would(void **state)
{
    (void)state;
    struct env *e = tc_build(70);
    assert_int_equal(simdisk_corrupt(e->disk, TC_SEG1, tc_offset(6) + 30, 0x08), RK_OK);
    struct log_verify_stats st;
    struct log_seglog_config c = e->cfg;
    assert_int_equal(log_seglog_verify(&c, NULL, &st, &e->err), RK_ECORRUPT);
    assert_int_equal(st.damage.kind, LOG_DAMAGE_RECORD);
    assert_int_equal(st.damage.first_index, 6);
    assert_int_equal(st.damage.last_index, 8);
    assert_int_equal(st.damage.acked_index, TC_ENTRIES);
    struct log_damage d;
    e->cfg.damage = &d;
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_memory_equal(&d, &st.damage, sizeof(d));
    env_free(e);
}


/* The simulated disk's persistent damage (sim/simdisk.h: bit rot, a bad sector, a lost or a
 * misdirected write, one event between crashes) never costs a synced entry silently: the reopened
 * log holds every entry a sync returned for, or the open fails (RK_ECORRUPT with a damage that
 * covers an index it lost, or RK_EIO for an unreadable sector). Over many seeds and all four. */
static void test_persistent_damage_is_detected_never_a_shorter_log(void **state)
{
    (void)state;
    int refused = 0, damaged = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        struct env *e = env_new(seed, 700);
        env_open_ok(e);
        set_hs(e, 1, 1, 0);
        struct simdisk_faults f = {0};
        switch (seed % 4) {
        case 0: f.rot_per_crash = 1; break;
        case 1: f.lse_per_crash = 1; break;
        case 2: f.lost_write = 0.2; break;
        default: f.misdirected_write = 0.2; break;
        }
        f.torn_writes = true;
        env_faults(e, &f);
        uint64_t synced = 0;
        uint64_t n = 3 + seed % 17;
        for (uint64_t b = 0; b < n; b++) {
            append_range(e, synced + 1, synced + 3, 1, 3, 1 + (uint32_t)(seed % 40));
            OK(e, e->log->ops->sync(e->log, &e->err));
            synced += 3;
        }
        append_range(e, synced + 1, synced + 2, 1, 2, 9); /* never synced */
        env_crash(e);
        damaged += simdisk_damage(e->disk) > 0;
        struct simdisk_faults none = {0};
        env_faults(e, &none);
        struct log_damage d;
        e->cfg.damage = &d;
        int rc = env_open(e);
        if (rc == RK_OK) {
            struct loaded l;
            load(e, &l);
            if (l.n < synced)
                fail_msg("seed %llu: %zu entries, %llu synced (%s)", (unsigned long long)seed, l.n,
                         (unsigned long long)synced, simdisk_damage_text(e->disk));
        } else if (rc == RK_ECORRUPT) {
            refused++;
            assert_int_not_equal(d.kind, LOG_DAMAGE_NONE);
            assert_true(d.acked_index >= d.last_index);
        } else if (rc != RK_EIO) {
            fail_msg("seed %llu: %s: %s", (unsigned long long)seed, rk_strerror(rc), e->err.text);
        } else {
            refused++;
        }
        env_free(e);
    }
    assert_true(damaged > 200);
    assert_true(refused > 50);
}

/* Issue #15, repair (log.h, log_seglog_repair): after any one persistent damage the store is
 * repaired as replica_storage_open does it — a bad record in a segment cut there, anything else
 * reset — and then opens; what it loads is a prefix of what was written (entries checked byte
 * by byte), the promise covers every synced entry it no longer holds, and it only grows; the
 * term survives unless the hard state was what was lost (then the promise is unknown). */
static void test_repair_keeps_a_prefix_and_promises_what_it_lost(void **state)
{
    (void)state;
    int cut = 0, reset = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        struct env *e = env_new(seed, 700);
        env_open_ok(e);
        set_hs(e, 3, 1, 0);
        struct simdisk_faults f = {0};
        switch (seed % 4) {
        case 0:
            f.rot_per_crash = 1;
            break;
        case 1:
            f.lse_per_crash = 1;
            break;
        case 2:
            f.lost_write = 0.2;
            break;
        default:
            f.misdirected_write = 0.2;
            break;
        }
        f.torn_writes = true;
        env_faults(e, &f);
        uint64_t synced = 0;
        uint64_t n = 3 + seed % 17;
        uint32_t len = 1 + (uint32_t)(seed % 40);
        for (uint64_t b = 0; b < n; b++) {
            append_range(e, synced + 1, synced + 3, 1, 3, len);
            OK(e, e->log->ops->sync(e->log, &e->err));
            synced += 3;
        }
        env_crash(e);
        struct simdisk_faults none = {0};
        env_faults(e, &none);
        struct log_damage d;
        e->cfg.damage = &d;
        int rc = env_open(e);
        e->cfg.damage = NULL;
        if (rc != RK_OK) {
            assert_true(rc == RK_ECORRUPT || rc == RK_EIO);
            struct log_repair r = {.mode = LOG_REPAIR_RESET};
            if (rc == RK_ECORRUPT && d.kind == LOG_DAMAGE_RECORD && d.first_index > 0 &&
                strncmp(d.file, "seg-", 4) == 0) {
                r.mode = LOG_REPAIR_CUT;
                snprintf(r.file, sizeof(r.file), "%s", d.file);
                r.offset = d.offset;
                cut++;
            } else {
                reset++;
            }
            if (rc == RK_ECORRUPT && d.kind == LOG_DAMAGE_FORMAT)
                r.mode = LOG_REPAIR_FORMAT;
            r.promise = rc == RK_ECORRUPT ? d.acked_index : LOG_PROMISE_UNKNOWN;
            if (r.promise == 0)
                r.promise = LOG_PROMISE_UNKNOWN;
            OK(e, log_seglog_repair(&e->cfg, &r, &e->err));
            rc = env_open(e);
            if (rc != RK_OK && r.mode == LOG_REPAIR_FORMAT) { /* the next round */
                r.mode = LOG_REPAIR_RESET;
                OK(e, log_seglog_repair(&e->cfg, &r, &e->err));
                rc = env_open(e);
            }
            if (rc != RK_OK)
                fail_msg("seed %llu: reopen after repair: %s: %s (%s)", (unsigned long long)seed,
                         rk_strerror(rc), e->err.text, simdisk_damage_text(e->disk));
        }
        struct loaded l;
        load(e, &l);
        for (size_t i = 0; i < l.n; i++) {
            if (!entry_is(&l.ents[i], l.snap_index + 1 + i, 1, 0, len))
                fail_msg("seed %llu: entry %llu is not what was written", (unsigned long long)seed,
                         (unsigned long long)(l.snap_index + 1 + i));
        }
        uint64_t promised = e->log->ops->promised(e->log);
        if (l.n < synced && promised < synced)
            fail_msg("seed %llu: holds %zu of %llu synced entries, promise %llu (%s)",
                     (unsigned long long)seed, l.n, (unsigned long long)synced,
                     (unsigned long long)promised, simdisk_damage_text(e->disk));
        if (promised != LOG_PROMISE_UNKNOWN)
            assert_int_equal(l.hs.term, 3); /* term and vote kept */
        /* Cleared once the entries are back (the replica does it then); durable at once. */
        OK(e, e->log->ops->set_promise(e->log, 0, &e->err));
        env_crash(e);
        env_open_ok(e);
        assert_int_equal(e->log->ops->promised(e->log), 0);
        env_free(e);
    }
    assert_true(cut > 20);
    assert_true(reset > 20);
}

/* ---- failures ------------------------------------------------------------------------------- */

static void test_poison_after_failed_sync(void **state)
{
    (void)state;
    struct env *e = env_new(18, 0);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 3, 1, 3, 10);
    OK(e, e->log->ops->sync(e->log, &e->err));
    append_range(e, 4, 6, 1, 3, 10);
    struct simdisk_faults f = {.sync_error = 1};
    env_faults(e, &f);
    assert_int_equal(e->log->ops->sync(e->log, &e->err), RK_EIO);
    struct simdisk_faults none = {0};
    env_faults(e, &none);
    /* Every later call fails, even though the disk works again (fs.h: a failed sync is fatal). */
    static struct ent_buf b;
    make_entry(&b.e[0], b.data[0], 7, 1, 0, 10);
    assert_int_equal(e->log->ops->append(e->log, b.e, 1, &e->err), RK_EIO);
    assert_non_null(strstr(e->err.text, "must be reopened"));
    assert_int_equal(e->log->ops->sync(e->log, &e->err), RK_EIO);
    struct raft_hard_state hs = {.term = 2};
    assert_int_equal(e->log->ops->set_hard_state(e->log, &hs, &e->err), RK_EIO);
    assert_int_equal(e->log->ops->truncate(e->log, 2, &e->err), RK_EIO);
    assert_int_equal(e->log->ops->compact(e->log, 2, 1, &e->err), RK_EIO);
    struct loaded l;
    assert_int_equal(
        e->log->ops->load(e->log, &l.hs, &l.snap_index, &l.snap_term, &l.ents, &l.n, &e->err),
        RK_EIO);
    env_crash(e);
    env_open_ok(e);
    load(e, &l);
    assert_int_equal(l.n, 3);
    env_free(e);
}

static void test_poison_after_failed_append(void **state)
{
    (void)state;
    struct env *e = env_new(19, 0);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 3, 1, 3, 10);
    OK(e, e->log->ops->sync(e->log, &e->err));
    struct simdisk_faults f = {.write_error = 1};
    env_faults(e, &f);
    static struct ent_buf b;
    for (int i = 0; i < 5; i++)
        make_entry(&b.e[i], b.data[i], 4 + (uint64_t)i, 1, 0, 100);
    int rc = e->log->ops->append(e->log, b.e, 5, &e->err);
    assert_true(rc == RK_EIO || rc == RK_ENOSPC);
    struct simdisk_faults none = {0};
    env_faults(e, &none);
    assert_int_equal(e->log->ops->sync(e->log, &e->err), rc);
    /* Reopen without a crash: the partial append is a torn tail, cut. */
    env_close(e);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_true(l.n >= 3 && l.n <= 8);
    expect_range(&l, 0, 1, 3, 1, 10);
    env_free(e);
}

static void test_misuse_is_refused_without_poison(void **state)
{
    (void)state;
    struct env *e = env_new(20, 0);
    env_open_ok(e);
    set_hs(e, 2, 0, 0);
    append_range(e, 1, 3, 2, 3, 10);
    static struct ent_buf b;
    make_entry(&b.e[0], b.data[0], 5, 2, 0, 10); /* skips 4 */
    assert_int_equal(e->log->ops->append(e->log, b.e, 1, &e->err), RK_EINVAL);
    assert_non_null(strstr(e->err.text, "append of index 5, expected 4"));
    make_entry(&b.e[0], b.data[0], 4, 2, 0, 10);
    make_entry(&b.e[1], b.data[1], 6, 2, 0, 10); /* a hole inside the call */
    assert_int_equal(e->log->ops->append(e->log, b.e, 2, &e->err), RK_EINVAL);
    assert_int_equal(e->log->ops->truncate(e->log, 0, &e->err), RK_EINVAL);
    struct raft_hard_state hs = {.term = 1};
    assert_int_equal(e->log->ops->set_hard_state(e->log, &hs, &e->err), RK_EINVAL);
    OK(e, e->log->ops->truncate(e->log, 9, &e->err)); /* beyond the end: nothing */
    append_range(e, 4, 4, 2, 1, 10);                  /* still usable */
    OK(e, e->log->ops->sync(e->log, &e->err));
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.n, 4);
    env_free(e);
}

static void test_allocation_failure_at_append_changes_nothing(void **state)
{
    (void)state;
    struct env *e = env_new(21, 0);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 1, 1, 1, 10);
    static struct ent_buf b;
    for (int i = 0; i < 40; i++)
        make_entry(&b.e[i], b.data[i], 2 + (uint64_t)i, 1, 0, 900);
    e->cnt.fail_at = e->cnt.calls + 1;
    assert_int_equal(e->log->ops->append(e->log, b.e, 40, &e->err), RK_ENOMEM);
    e->cnt.fail_at = 0;
    OK(e, e->log->ops->append(e->log, b.e, 40, &e->err));
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_crash(e);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.n, 41);
    env_free(e);
}

static void test_allocation_failure_at_open_fails_cleanly(void **state)
{
    (void)state;
    struct env *e = env_new(22, 100);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 30, 1, 2, 20);
    OK(e, e->log->ops->compact(e->log, 3, 1, &e->err));
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    for (size_t k = 1;; k++) {
        assert_true(k < 1000);
        e->cnt.calls = 0;
        e->cnt.fail_at = k;
        int rc = env_open(e);
        e->cnt.fail_at = 0;
        if (rc == RK_OK) {
            struct loaded l;
            load(e, &l);
            assert_int_equal(l.n, 27);
            env_close(e);
            break;
        }
        assert_int_equal(rc, RK_ENOMEM);
        assert_int_equal(e->cnt.live, 0);
    }
    env_free(e);
}

/* Bad reads (a flipped bit, an I/O error) are read again: open succeeds with the right log, or
 * fails with RK_EIO, never with RK_ECORRUPT. */
static void test_bad_reads_are_not_corruption(void **state)
{
    (void)state;
    int opened = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        struct env *e = env_new(seed, 500);
        env_open_ok(e);
        set_hs(e, 1, 0, 0);
        append_range(e, 1, 60, 1, 4, UINT32_MAX);
        OK(e, e->log->ops->sync(e->log, &e->err));
        env_close(e);
        struct simdisk_faults f = {.bitflip_per_read = 0.3, .read_error = 0.1};
        env_faults(e, &f);
        int rc = env_open(e);
        struct simdisk_faults none = {0};
        env_faults(e, &none);
        if (rc == RK_OK) {
            opened++;
            struct loaded l;
            load(e, &l);
            assert_int_equal(l.n, 60);
            expect_range(&l, 0, 1, 60, 1, UINT32_MAX);
        } else if (rc != RK_EIO) {
            fail_msg("seed %llu: %s: %s", (unsigned long long)seed, rk_strerror(rc), e->err.text);
        }
        env_free(e);
    }
    assert_true(opened > 30);
}

/* A load after the first reads the segments again and returns the same, unsynced bytes too. */
static void test_second_load_reads_the_segments_again(void **state)
{
    (void)state;
    struct env *e = env_new(23, 100);
    env_open_ok(e);
    set_hs(e, 1, 0, 0);
    append_range(e, 1, 12, 1, 2, 20);
    OK(e, e->log->ops->sync(e->log, &e->err));
    OK(e, e->log->ops->compact(e->log, 6, 1, &e->err));
    append_range(e, 13, 14, 1, 2, 20);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.snap_index, 6);
    assert_int_equal(l.n, 8);
    expect_range(&l, 0, 7, 14, 1, 20);
    load(e, &l); /* twice in a row: the same */
    assert_int_equal(l.n, 8);
    struct log_seglog_stats st;
    log_seglog_stats(e->log, &st);
    assert_int_equal(st.reloads, 1);
    env_free(e);
}

/* memlog (core/log/memlog.c) implements compact with the same meaning. */
static void test_memlog_compact_returns_snapshot_point(void **state)
{
    (void)state;
    struct log_store *m;
    assert_int_equal(log_memstore_create(NULL, &m), RK_OK);
    struct rk_errmsg err;
    static struct ent_buf b;
    for (int i = 0; i < 10; i++)
        make_entry(&b.e[i], b.data[i], 1 + (uint64_t)i, 1, 0, 5);
    assert_int_equal(m->ops->append(m, b.e, 10, &err), RK_OK);
    assert_int_equal(m->ops->compact(m, 4, 1, &err), RK_OK);
    struct raft_hard_state hs;
    uint64_t si, st;
    const struct raft_entry *ents;
    size_t n;
    assert_int_equal(m->ops->load(m, &hs, &si, &st, &ents, &n, &err), RK_OK);
    assert_int_equal(si, 4);
    assert_int_equal(st, 1);
    assert_int_equal(n, 6);
    assert_true(entry_is(&ents[0], 5, 1, 0, 5));
    assert_int_equal(m->ops->truncate(m, 4, &err), RK_EINVAL);
    assert_int_equal(m->ops->truncate(m, 8, &err), RK_OK);
    assert_int_equal(m->ops->compact(m, 20, 1, &err), RK_OK);
    assert_int_equal(m->ops->load(m, &hs, &si, &st, &ents, &n, &err), RK_OK);
    assert_int_equal(si, 20);
    assert_int_equal(n, 0);
    make_entry(&b.e[0], b.data[0], 21, 1, 0, 5);
    assert_int_equal(m->ops->append(m, b.e, 1, &err), RK_OK);
    assert_int_equal(m->ops->compact(m, 19, 1, &err), RK_EINVAL);
    m->ops->destroy(m);
}

/* ---- bad arguments and malformed hard states ------------------------------------------------ */

static void test_bad_config_is_refused_and_creates_nothing(void **state)
{
    (void)state;
    struct env *e = env_new(30, LOG_SEGLOG_SEGMENT_BYTES_MAX + 1);
    assert_int_equal(env_open(e), RK_EINVAL);
    assert_non_null(strstr(e->err.text, "segment_bytes"));
    assert_null(e->log);
    assert_int_equal(e->cnt.live, 0);
    assert_int_equal(e->cfs.n[C_OPEN], 0); /* refused before touching the disk */
    assert_int_equal(e->cfs.n[C_LIST], 0);
    e->cfg.segment_bytes = LOG_SEGLOG_SEGMENT_BYTES_MAX; /* the limit itself is fine */
    env_open_ok(e);
    env_close(e);
    struct log_seglog_config none = {.fs = NULL};
    assert_int_equal(log_seglog_open(&none, &e->log, &e->err), RK_EINVAL);
    assert_non_null(strstr(e->err.text, "no fs"));
    assert_null(e->log);
    env_free(e);
}

/* Replaces the hard state file with bytes; the crc at offset 0 recomputed when fix_crc. */
static void put_hard_state_bytes(struct env *e, uint8_t *buf, size_t n, bool fix_crc)
{
    if (fix_crc) {
        uint32_t crc = rk_crc32c(0, buf + 4, n - 4);
        for (int i = 0; i < 4; i++)
            buf[i] = (uint8_t)(crc >> (8 * i));
    }
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    assert_int_equal(fs->ops->remove(fs, "hardstate", &e->err), RK_OK);
    assert_int_equal(fs->ops->open(fs, "hardstate", FS_CREATE, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->append(fs, f, buf, n, &e->err), RK_OK);
    assert_int_equal(fs->ops->sync(fs, f, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(fs->ops->sync_dir(fs, &e->err), RK_OK);
}

/* The hard state is 48 bytes with a crc and a magic: any other length, or the right crc over a
 * wrong magic, is corruption that names what is wrong, never a hard state taken on trust. */
static void test_hard_state_of_wrong_size_or_magic_fails_open(void **state)
{
    (void)state;
    struct env *e = env_new(31, 0);
    env_open_ok(e);
    set_hs(e, 5, 2, 0);
    OK(e, e->log->ops->sync(e->log, &e->err));
    env_close(e);
    struct fs *fs = simdisk_fs(e->disk);
    struct fs_file *f;
    uint8_t good[48];
    size_t got = 0;
    assert_int_equal(fs->ops->open(fs, "hardstate", 0, &f, &e->err), RK_OK);
    assert_int_equal(fs->ops->pread(fs, f, 0, good, sizeof(good), &got, &e->err), RK_OK);
    fs->ops->close(fs, f);
    assert_int_equal(got, 48);

    uint8_t buf[64];
    memcpy(buf, good, 48);
    put_hard_state_bytes(e, buf, 47, false);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "47 bytes, expected 48"));
    assert_int_equal(e->cnt.live, 0);

    memcpy(buf, good, 48);
    buf[48] = 0;
    put_hard_state_bytes(e, buf, 49, false);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "over 48 bytes, expected 48"));

    memcpy(buf, good, 48);
    buf[4] ^= 0xff; /* the magic, under a crc that matches */
    put_hard_state_bytes(e, buf, 48, true);
    assert_int_equal(env_open(e), RK_ECORRUPT);
    assert_non_null(strstr(e->err.text, "bad magic"));
    assert_int_equal(e->cnt.live, 0);

    memcpy(buf, good, 48);
    put_hard_state_bytes(e, buf, 48, false); /* the original opens again */
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    assert_int_equal(l.hs.term, 5);
    assert_int_equal(l.hs.vote, 2);
    env_free(e);
}

/* memlog refuses an append that does not continue the log, and an allocation failure is an
 * error, not a crash or a gap in the log. */
static void test_memlog_refuses_gaps_and_reports_allocation_failures(void **state)
{
    (void)state;
    struct counting cnt = {0};
    struct rk_alloc alloc = {
        .malloc_fn = cnt_malloc, .realloc_fn = cnt_realloc, .free_fn = cnt_free, .ctx = &cnt};
    struct log_store *m = NULL;
    cnt.fail_at = 1;
    assert_int_equal(log_memstore_create(&alloc, &m), RK_ENOMEM);
    assert_null(m);
    assert_int_equal(cnt.live, 0);
    cnt.fail_at = 0;
    assert_int_equal(log_memstore_create(&alloc, &m), RK_OK);

    struct rk_errmsg err;
    static struct ent_buf b;
    for (int i = 0; i < 4; i++)
        make_entry(&b.e[i], b.data[i], 1 + (uint64_t)i, 1, 0, 5);
    assert_int_equal(m->ops->append(m, b.e, 0, &err), RK_OK); /* nothing to do */
    assert_int_equal(m->ops->append(m, &b.e[1], 1, &err), RK_EINVAL);
    assert_non_null(strstr(err.text, "append at index 2, log ends at 0"));
    assert_int_equal(m->ops->append(m, b.e, 2, &err), RK_OK);
    assert_int_equal(m->ops->append(m, b.e, 1, &err), RK_EINVAL); /* behind the end */

    cnt.fail_at = cnt.calls + 1; /* the copy of entry 3's data */
    assert_int_equal(m->ops->append(m, &b.e[2], 1, &err), RK_ENOMEM);
    assert_non_null(strstr(err.text, "copying entry 3"));
    cnt.fail_at = 0;
    struct raft_hard_state hs;
    uint64_t si, st;
    const struct raft_entry *ents;
    size_t n;
    assert_int_equal(m->ops->load(m, &hs, &si, &st, &ents, &n, &err), RK_OK);
    assert_int_equal(n, 2); /* the failed append left no entry, and no hole */
    assert_int_equal(m->ops->append(m, &b.e[2], 2, &err), RK_OK);
    assert_int_equal(m->ops->load(m, &hs, &si, &st, &ents, &n, &err), RK_OK);
    assert_int_equal(n, 4);
    assert_true(entry_is(&ents[3], 4, 1, 0, 5));
    m->ops->destroy(m);
    assert_int_equal(cnt.live, 0);
}

/* ---- the randomized model test -------------------------------------------------------------- */

#define M_MAX_INDEX   1024u
#define M_MAX_VERSION 64u

struct ment {
    uint64_t term; /* 0: unknown to the model (inside a snapshot installed beyond the log) */
    uint32_t salt;
    uint32_t len;
};

/* One state of the store as the model sees it: after an op (or the last sync). */
struct mver {
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t term;
    uint64_t vote;
    uint64_t last;
    struct ment ents[M_MAX_INDEX + 1]; /* by index, including the compacted ones */
};

struct model {
    struct mver v[M_MAX_VERSION]; /* v[0]: the state as of the last sync (or open) */
    size_t n;                     /* versions: v[n - 1] is the latest */
};

static struct mver *m_cur(struct model *m)
{
    return &m->v[m->n - 1];
}

/* Starts a new version from the latest, for an op about to be made. */
static struct mver *m_next(struct model *m)
{
    assert_true(m->n < M_MAX_VERSION);
    m->v[m->n] = m->v[m->n - 1];
    m->n++;
    return m_cur(m);
}

static void m_synced(struct model *m)
{
    m->v[0] = *m_cur(m);
    m->n = 1;
}

/* Index i of the log is the same in every version from v[0] on (or compacted in it). */
static bool m_stable(const struct model *m, uint64_t i)
{
    const struct ment *a = &m->v[0].ents[i];
    for (size_t k = 0; k < m->n; k++) {
        const struct mver *v = &m->v[k];
        if (i <= v->snap_index)
            continue;
        if (i > v->last || v->ents[i].term != a->term || v->ents[i].salt != a->salt)
            return false;
    }
    return true;
}

/* What every crash must keep: the entries synced in v[0] that no later op removed. */
static uint64_t m_must_keep(const struct model *m)
{
    uint64_t i = 0;
    while (i < m->v[0].last && m_stable(m, i + 1))
        i++;
    return i;
}

static bool m_matches(const struct mver *v, const struct loaded *l)
{
    if (l->snap_index + l->n > v->last)
        return false;
    for (size_t k = 0; k < l->n; k++) {
        uint64_t i = l->snap_index + 1 + k;
        const struct ment *x = &v->ents[i];
        if (x->term == 0 || !entry_is(&l->ents[k], i, x->term, x->salt, x->len))
            return false;
    }
    return true;
}

/* Checks a store reopened after a crash against the model, then makes it the new v[0]. */
static void m_check_reopened(struct model *m, const struct loaded *l, uint64_t iter)
{
    uint64_t last = l->snap_index + l->n;
    uint64_t keep = m_must_keep(m);
    if (last < keep)
        fail_msg("iteration %llu: log ends at %llu, synced up to %llu", (unsigned long long)iter,
                 (unsigned long long)last, (unsigned long long)keep);
    size_t match = SIZE_MAX;
    bool snap_ok = false;
    bool hs_ok = false;
    uint64_t max_term = 0;
    for (size_t k = 0; k < l->n; k++)
        max_term = l->ents[k].term > max_term ? l->ents[k].term : max_term;
    for (size_t k = 0; k < m->n; k++) {
        const struct mver *v = &m->v[k];
        if (match == SIZE_MAX && m_matches(v, l))
            match = k;
        snap_ok |= v->snap_index == l->snap_index && v->snap_term == l->snap_term;
        hs_ok |= v->term == l->hs.term && v->vote == l->hs.vote;
        /* Raised by recovery to the log's term (seglog.c RECOVERY 4). */
        hs_ok |= l->hs.vote == RAFT_NONE && l->hs.term == max_term && v->term < max_term;
    }
    if (match == SIZE_MAX)
        fail_msg("iteration %llu: the log (snapshot %llu, last %llu) matches no version",
                 (unsigned long long)iter, (unsigned long long)l->snap_index,
                 (unsigned long long)last);
    if (!snap_ok || !hs_ok)
        fail_msg("iteration %llu: snapshot (%llu, %llu) or hard state (%llu, %llu) unknown",
                 (unsigned long long)iter, (unsigned long long)l->snap_index,
                 (unsigned long long)l->snap_term, (unsigned long long)l->hs.term,
                 (unsigned long long)l->hs.vote);
    assert_true(max_term <= l->hs.term); /* raft_create's I2 */
    struct mver nv = m->v[match];
    nv.snap_index = l->snap_index;
    nv.snap_term = l->snap_term;
    nv.term = l->hs.term;
    nv.vote = l->hs.vote;
    nv.last = last;
    m->v[0] = nv;
    m->n = 1;
}

/* Checks the live store against the latest version exactly. */
static void m_check_live(const struct model *m, const struct loaded *l)
{
    const struct mver *v = &m->v[m->n - 1];
    assert_int_equal(l->snap_index, v->snap_index);
    assert_int_equal(l->snap_term, v->snap_term);
    assert_int_equal(l->snap_index + l->n, v->last);
    assert_int_equal(l->hs.term, v->term);
    assert_int_equal(l->hs.vote, v->vote);
    assert_true(m_matches(v, l));
}

static bool m_trace;

#define MTRACE(...)                                                                                \
    do {                                                                                           \
        if (m_trace)                                                                               \
            fprintf(stderr, __VA_ARGS__);                                                          \
    } while (0)

struct mrun {
    struct env *e;
    struct model *m;
    struct rk_prng p;
    uint64_t iter;
    bool dead; /* an op failed: the store is poisoned or the disk crashed */
};

/* What the model runs exercised, summed over seeds: the test checks it is not vacuous. */
static struct {
    uint64_t reopens;
    uint64_t failed_ops;
    uint64_t live_checks;
    uint64_t cuts;
    uint64_t raises;
    uint64_t garbage;
    uint64_t dropped;
    uint64_t reloads;
} m_seen;

static void mr_fail_or_ok(struct mrun *r, int rc)
{
    if (rc == RK_OK)
        return;
    if (rc == RK_EINVAL || rc == RK_ECORRUPT)
        fail_msg("iteration %llu: %s: %s", (unsigned long long)r->iter, rk_strerror(rc),
                 r->e->err.text);
    r->dead = true;
    m_seen.failed_ops++;
}

static void mr_append(struct mrun *r)
{
    static struct ent_buf b;
    struct mver *v = m_next(r->m);
    size_t n = 1 + (size_t)rk_prng_below(&r->p, 6);
    if (v->last + n > M_MAX_INDEX - 8)
        n = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t i = v->last + 1 + k;
        uint32_t salt = (uint32_t)rk_prng_next(&r->p);
        uint32_t len = rk_prng_below(&r->p, 10) == 0 ? 300 + (uint32_t)rk_prng_below(&r->p, 700)
                                                     : (uint32_t)rk_prng_below(&r->p, 60);
        v->ents[i] = (struct ment){.term = v->term, .salt = salt, .len = len};
        make_entry(&b.e[k], b.data[k], i, v->term, salt, len);
    }
    v->last += n;
    int rc = r->e->log->ops->append(r->e->log, b.e, n, &r->e->err);
    MTRACE("%llu: append %zu -> last %llu term %llu: %d\n", (unsigned long long)r->iter, n,
           (unsigned long long)v->last, (unsigned long long)v->term, rc);
    mr_fail_or_ok(r, rc);
}

static void mr_set_hs(struct mrun *r)
{
    struct mver *v = m_next(r->m);
    if (rk_prng_below(&r->p, 2) == 0) {
        v->term++;
        v->vote = rk_prng_below(&r->p, 4);
    } else if (v->vote == RAFT_NONE) {
        v->vote = 1 + rk_prng_below(&r->p, 3);
    }
    struct raft_hard_state hs = {
        .term = v->term, .vote = v->vote, .commit = rk_prng_below(&r->p, v->last + 1)};
    int rc = r->e->log->ops->set_hard_state(r->e->log, &hs, &r->e->err);
    MTRACE("%llu: hs %llu %llu: %d\n", (unsigned long long)r->iter, (unsigned long long)hs.term,
           (unsigned long long)hs.vote, rc);
    mr_fail_or_ok(r, rc);
}

static void mr_truncate(struct mrun *r)
{
    struct mver *v = m_next(r->m);
    uint64_t from = v->snap_index + 1 + rk_prng_below(&r->p, v->last - v->snap_index + 1);
    if (from <= v->last)
        v->last = from - 1;
    int rc = r->e->log->ops->truncate(r->e->log, from, &r->e->err);
    MTRACE("%llu: truncate %llu: %d\n", (unsigned long long)r->iter, (unsigned long long)from, rc);
    mr_fail_or_ok(r, rc);
}

static void mr_compact(struct mrun *r)
{
    struct mver *v = m_next(r->m);
    uint64_t index = v->snap_index + 1 + rk_prng_below(&r->p, v->last - v->snap_index + 4);
    if (index > M_MAX_INDEX - 16)
        index = v->snap_index + 1;
    uint64_t term = index <= v->last ? v->ents[index].term : v->term;
    for (uint64_t i = v->last + 1; i <= index; i++)
        v->ents[i] = (struct ment){0}; /* installed from a snapshot: unknown */
    if (index > v->last)
        v->last = index;
    v->snap_index = index;
    v->snap_term = term;
    int rc = r->e->log->ops->compact(r->e->log, index, term, &r->e->err);
    MTRACE("%llu: compact %llu %llu: %d\n", (unsigned long long)r->iter, (unsigned long long)index,
           (unsigned long long)term, rc);
    mr_fail_or_ok(r, rc);
}

static void mr_sync(struct mrun *r)
{
    int rc = r->e->log->ops->sync(r->e->log, &r->e->err);
    MTRACE("%llu: sync: %d %s\n", (unsigned long long)r->iter, rc, rc ? r->e->err.text : "");
    mr_fail_or_ok(r, rc);
    if (rc == RK_OK)
        m_synced(r->m);
}

/* The process dies (or the store failed); reopen — sometimes crashing during recovery too. */
static void mr_crash_and_reopen(struct mrun *r)
{
    struct env *e = r->e;
    struct log_seglog_stats st;
    log_seglog_stats(e->log, &st);
    m_seen.reloads += st.reloads;
    env_crash(e);
    if (rk_prng_below(&r->p, 4) == 0) {
        struct simdisk_faults f = {.torn_writes = true,
                                   .crash_at_call = 1 + rk_prng_below(&r->p, 12)};
        env_faults(e, &f);
        if (env_open(e) == RK_OK)
            env_close(e);
        simdisk_crash(e->disk);
    }
    struct simdisk_faults f = {.torn_writes = true};
    env_faults(e, &f);
    env_open_ok(e);
    struct loaded l;
    load(e, &l);
    MTRACE("%llu: reopened: snap %llu last %llu hs %llu %llu\n", (unsigned long long)r->iter,
           (unsigned long long)l.snap_index, (unsigned long long)(l.snap_index + l.n),
           (unsigned long long)l.hs.term, (unsigned long long)l.hs.vote);
    m_check_reopened(r->m, &l, r->iter);
    r->dead = false;
    log_seglog_stats(e->log, &st);
    m_seen.reopens++;
    m_seen.cuts += st.cut_bytes > 0;
    m_seen.raises += st.term_raises;
    m_seen.garbage += st.garbage_segments;
    m_seen.dropped += st.dropped_segments;
    if (st.dropped_segments > 0)
        MTRACE("%llu: DROPPED %llu\n", (unsigned long long)r->iter,
               (unsigned long long)st.dropped_segments);
}

static void mr_arm_faults(struct mrun *r)
{
    struct simdisk_faults f = {.torn_writes = true};
    uint64_t pick = rk_prng_below(&r->p, 10);
    if (pick < 3)
        f.crash_at_call = 1 + rk_prng_below(&r->p, 25);
    else if (pick == 3)
        f.write_error = 0.02;
    else if (pick == 4)
        f.sync_error = 0.02;
    MTRACE("%llu: faults: crash at %llu write %g sync %g\n", (unsigned long long)r->iter,
           (unsigned long long)f.crash_at_call, f.write_error, f.sync_error);
    env_faults(r->e, &f);
}

static void model_run(uint64_t seed, uint64_t iterations)
{
    struct mrun r = {.m = calloc(1, sizeof(struct model))};
    assert_non_null(r.m);
    rk_prng_seed(&r.p, seed);
    r.e = env_new(seed, 64 + rk_prng_below(&r.p, 1500));
    r.m->n = 1;
    env_open_ok(r.e);
    set_hs(r.e, 1, 0, 0); /* Raft entries have terms >= 1 (0 is the model's "unknown") */
    OK(r.e, r.e->log->ops->sync(r.e->log, &r.e->err));
    r.m->v[0].term = 1;
    mr_arm_faults(&r);
    for (r.iter = 0; r.iter < iterations; r.iter++) {
        struct mver *v = m_cur(r.m);
        if (r.dead || simdisk_crashed(r.e->disk)) {
            mr_crash_and_reopen(&r);
            mr_arm_faults(&r);
            continue;
        }
        uint64_t op = rk_prng_below(&r.p, 100);
        if (v->last - v->snap_index > 200 && op < 40)
            op = 40; /* keep the log short: compact */
        if (op < 30)
            mr_append(&r);
        else if (op < 38)
            mr_set_hs(&r);
        else if (op < 46)
            mr_truncate(&r);
        else if (op < 52)
            mr_compact(&r);
        else if (op < 80)
            mr_sync(&r);
        else if (op < 84 && !simdisk_crashed(r.e->disk)) {
            struct loaded l;
            int rc = r.e->log->ops->load(r.e->log, &l.hs, &l.snap_index, &l.snap_term, &l.ents,
                                         &l.n, &r.e->err);
            mr_fail_or_ok(&r, rc);
            if (rc == RK_OK) {
                m_check_live(r.m, &l);
                m_seen.live_checks++;
            }
        } else if (op < 92) {
            mr_crash_and_reopen(&r);
            mr_arm_faults(&r);
        } else {
            mr_arm_faults(&r);
        }
    }
    env_free(r.e);
    free(r.m);
}

static void test_model_random_ops_and_crashes(void **state)
{
    (void)state;
    m_trace = getenv("SEGLOG_TRACE") != NULL;
    const char *one = getenv("SEGLOG_SEED");
    if (one != NULL) {
        model_run(strtoull(one, NULL, 10), 2000);
        return;
    }
    for (uint64_t seed = 1; seed <= 100; seed++)
        model_run(seed, 2000);
    if (m_trace)
        fprintf(stderr,
                "reopens %llu failed ops %llu live checks %llu cuts %llu raises %llu garbage %llu "
                "dropped %llu reloads %llu\n",
                (unsigned long long)m_seen.reopens, (unsigned long long)m_seen.failed_ops,
                (unsigned long long)m_seen.live_checks, (unsigned long long)m_seen.cuts,
                (unsigned long long)m_seen.raises, (unsigned long long)m_seen.garbage,
                (unsigned long long)m_seen.dropped, (unsigned long long)m_seen.reloads);
    assert_true(m_seen.reopens > 5000);
    assert_true(m_seen.failed_ops > 1000);
    assert_true(m_seen.live_checks > 2000);
    assert_true(m_seen.cuts > 300);
    assert_true(m_seen.raises > 20);
    assert_true(m_seen.garbage > 100);
    assert_true(m_seen.reloads > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_sync_reopen_returns_same_entries_and_hard_state),
        cmocka_unit_test(test_group_commit_n_appends_one_sync_is_one_fs_sync),
        cmocka_unit_test(test_commit_only_change_is_written_lazily),
        cmocka_unit_test(test_unsynced_entries_lost_at_crash_synced_kept),
        cmocka_unit_test(test_torn_tail_cut_reopened_log_is_prefix),
        cmocka_unit_test(test_hard_state_atomic_across_crash_at_every_call),
        cmocka_unit_test(test_truncate_append_sync_crash_at_every_call_old_or_new),
        cmocka_unit_test(test_rotation_across_segments),
        cmocka_unit_test(test_rotation_syncs_the_segment_it_leaves),
        cmocka_unit_test(test_compact_removes_segments_and_load_returns_snapshot_point),
        cmocka_unit_test(test_compacted_segments_brought_back_are_removed_at_open),
        cmocka_unit_test(test_compact_crash_at_every_call),
        cmocka_unit_test(test_corruption_in_non_tail_record_fails_open_naming_file_and_offset),
        cmocka_unit_test(test_corruption_at_end_of_lower_segment_fails_open),
        cmocka_unit_test(test_corrupt_hard_state_fails_open),
        cmocka_unit_test(test_leftover_hard_state_tmp_is_removed),
        cmocka_unit_test(test_segment_after_gap_is_dropped),
        cmocka_unit_test(test_overlapping_segment_fails_open),
        cmocka_unit_test(test_misplaced_record_fails_open),
        cmocka_unit_test(test_entries_above_hard_state_term_raise_it),
        cmocka_unit_test(test_missing_hard_state_with_entries_raises_term),
        cmocka_unit_test(test_synced_bit_flip_is_corruption_at_every_position),
        cmocka_unit_test(test_flipped_last_record_of_newest_segment_is_not_cut),
        cmocka_unit_test(test_bad_commit_record_last_is_harmless_earlier_is_corruption),
        cmocka_unit_test(test_unsynced_bad_record_is_torn_and_cut),
        cmocka_unit_test(test_commit_records_cost_no_sync),
        cmocka_unit_test(test_format_1_refused_bad_format_file),
        cmocka_unit_test(test_bad_hard_state_damage_names_acked_index),
        cmocka_unit_test(test_lost_and_misdirected_writes_are_corruption),
        cmocka_unit_test(test_verify_reports_the_damage_open_would),
        cmocka_unit_test(test_persistent_damage_is_detected_never_a_shorter_log),
        cmocka_unit_test(test_repair_keeps_a_prefix_and_promises_what_it_lost),
        cmocka_unit_test(test_poison_after_failed_sync),
        cmocka_unit_test(test_poison_after_failed_append),
        cmocka_unit_test(test_misuse_is_refused_without_poison),
        cmocka_unit_test(test_allocation_failure_at_append_changes_nothing),
        cmocka_unit_test(test_allocation_failure_at_open_fails_cleanly),
        cmocka_unit_test(test_bad_reads_are_not_corruption),
        cmocka_unit_test(test_second_load_reads_the_segments_again),
        cmocka_unit_test(test_memlog_compact_returns_snapshot_point),
        cmocka_unit_test(test_bad_config_is_refused_and_creates_nothing),
        cmocka_unit_test(test_hard_state_of_wrong_size_or_magic_fails_open),
        cmocka_unit_test(test_memlog_refuses_gaps_and_reports_allocation_failures),
        cmocka_unit_test(test_model_random_ops_and_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
