/*
 * merge.c — the merge: rewrites the newest records of the immutable data files into new files
 * with hint files and switches them in, in steps that let it run beside the store (bitcask.h,
 * bc_merge_prepare..bc_merge_end; bc_merge runs them in a row). The protocol and its crash
 * analysis are at the top of bitcask.c (MERGE); recovery's half of it is in recover.c.
 *
 * MERGE IN STEPS. The merge is a function of its input files alone, which nothing writes any
 * more, so it needs nothing of the live store while it runs:
 *   prepare (owner, O(files), no I/O) picks the inputs: the oldest data files, all immutable, up
 *     to the last one after which enough ids are free for the outputs (bc_config.merge_id_gap
 *     leaves ids free above each new active file; an active file not yet made is simply moved
 *     up). Every file older than an input is an input, so a tombstone can be dropped.
 *   run (worker, its own fs) loads the inputs into a store of its own (the shadow: recovery's
 *     code, hints when they check out), so that its keydir holds each key's newest record among
 *     the inputs, then copies exactly those records (step 1 of MERGE), commits (step 2) and
 *     renames the outputs (step 3). Reads of the live store keep using the inputs meanwhile.
 *   install (owner, bounded chunks) repoints each live keydir entry that still points where the
 *     shadow's does (file and offset: the very record copied) at its copy; an entry rewritten
 *     since (a put, a delete) is left alone: the copy is then a dead record of the output. On
 *     the last chunk the outputs join the file table and the inputs leave it.
 *   cleanup (worker) removes the inputs and MERGE (steps 4 and 5).
 * Ordering: the outputs take ids between the last input and the next file, so at open (id
 * order) they come after every input and before every file written during or after the merge:
 * B2 holds for every key, and a later tombstone still wins over a merged record.
 *
 * Memory: the shadow's keydir (the keys of the inputs), two write buffers and a read buffer, and
 * one struct mg_update (24 bytes) per record copied.
 */
#include "bitcask/bitcask_int.h"

#include <stdatomic.h>

#include "common/assert.h"
#include "common/crc32c.h"

#define BC_MERGE_FLUSH_BYTES (1u << 20)

struct mg_update {
    struct bc_kent *e;
    uint64_t offset;
    uint32_t file_id;
    uint32_t input_id; /* where e points until the switch (in the padding: still 24 bytes) */
};

struct mg_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
};

struct mg {
    struct bitcask *bc; /* the shadow (MERGE IN STEPS) */
    uint32_t first_new;
    uint32_t room;   /* ids reserved for the outputs from first_new */
    const atomic_bool *cancel; /* bc_merge_cancel: stop before the commit */
    uint32_t n_new;  /* outputs opened so far: ids first_new .. first_new + n_new - 1 */
    uint64_t *sizes; /* of each output data file */
    size_t sizes_cap;
    struct fs_file *data; /* the output being written, or NULL */
    struct fs_file *hint;
    struct mg_buf dbuf; /* data bytes not yet appended */
    struct mg_buf hbuf;
    uint64_t data_size; /* of the output being written, buffered bytes included */
    uint64_t hint_entries;
    uint32_t hint_crc;
    uint64_t out_max_index; /* highest index in the output being written */
    uint64_t max_index;     /* highest index of every input record */
    struct mg_update *upd;
    size_t n_upd;
    size_t cap_upd;
    bool write_failed; /* an fs write, sync or directory call failed: poison */
};

static int mg_write_error(struct mg *m, int rc, const char *what, uint32_t id,
                          struct rk_errmsg *err)
{
    m->write_failed = true;
    return rk_errwrap(err, rc, "merge: %s of %010lu", what, (unsigned long)id);
}

static int mg_reserve(struct mg *m, struct mg_buf *b, size_t n, struct rk_errmsg *err)
{
    if (!rk_grow(m->bc->alloc, (void **)&b->p, &b->cap, b->len + n, 1))
        return rk_errf(err, RK_ENOMEM, "merge: no memory for a %zu-byte buffer", b->len + n);
    return RK_OK;
}

static int mg_flush(struct mg *m, struct rk_errmsg *err)
{
    struct fs *fs = m->bc->fs;
    uint32_t id = m->first_new + m->n_new - 1;
    if (m->dbuf.len > 0) {
        int rc = fs->ops->append(fs, m->data, m->dbuf.p, m->dbuf.len, err);
        if (rc != RK_OK)
            return mg_write_error(m, rc, "append data", id, err);
        m->dbuf.len = 0;
    }
    if (m->hbuf.len > 0) {
        int rc = fs->ops->append(fs, m->hint, m->hbuf.p, m->hbuf.len, err);
        if (rc != RK_OK)
            return mg_write_error(m, rc, "append hint", id, err);
        m->hbuf.len = 0;
    }
    return RK_OK;
}

/* Flushes, seals the hint with its trailer, syncs and closes the output being written. */
static int mg_close_output(struct mg *m, struct rk_errmsg *err)
{
    struct fs *fs = m->bc->fs;
    uint32_t id = m->first_new + m->n_new - 1;
    int rc = mg_reserve(m, &m->hbuf, BC_HINT_TRAILER_BYTES, err);
    if (rc != RK_OK)
        return rc;
    bc_hint_trailer_encode(m->hbuf.p + m->hbuf.len, BC_HINT_MAGIC, id, m->hint_crc, m->hint_entries,
                           m->data_size, m->out_max_index);
    m->hbuf.len += BC_HINT_TRAILER_BYTES;
    rc = mg_flush(m, err);
    if (rc == RK_OK && (rc = fs->ops->sync(fs, m->data, err)) != RK_OK)
        rc = mg_write_error(m, rc, "sync data", id, err);
    if (rc == RK_OK && (rc = fs->ops->sync(fs, m->hint, err)) != RK_OK)
        rc = mg_write_error(m, rc, "sync hint", id, err);
    if (rc != RK_OK)
        return rc;
    fs->ops->close(fs, m->data);
    fs->ops->close(fs, m->hint);
    m->data = NULL;
    m->hint = NULL;
    m->sizes[m->n_new - 1] = m->data_size;
    return RK_OK;
}

static int mg_open_output(struct mg *m, struct rk_errmsg *err)
{
    struct fs *fs = m->bc->fs;
    RK_ASSERT(m->data == NULL && m->hint == NULL);
    if (m->n_new >= m->room || m->first_new > BC_MAX_FILE_ID - m->n_new)
        return rk_errf(err, RK_ENOSPC, "merge: more outputs than the %lu ids it reserved",
                       (unsigned long)m->room);
    if (!rk_grow(m->bc->alloc, (void **)&m->sizes, &m->sizes_cap, m->n_new + 1, sizeof(*m->sizes)))
        return rk_errf(err, RK_ENOMEM, "merge: no memory");
    uint32_t id = m->first_new + m->n_new;
    char name[BC_NAME_BYTES];
    bc_name(name, id, "data.tmp");
    int rc = fs->ops->open(fs, name, FS_CREATE | FS_EXCL, &m->data, err);
    if (rc != RK_OK)
        return mg_write_error(m, rc, "create data", id, err);
    m->n_new++; /* from here on, abort removes it */
    bc_name(name, id, "hint.tmp");
    rc = fs->ops->open(fs, name, FS_CREATE | FS_EXCL, &m->hint, err);
    if (rc != RK_OK)
        return mg_write_error(m, rc, "create hint", id, err);
    m->sizes[m->n_new - 1] = 0;
    /* FORMAT 2 (bitcask.h): a data file starts with a commit record at offset 0. A merged file
     * needs no other: it is synced whole with its hint before the merge commits, and recovery
     * gives a file with a hint no torn-tail allowance. */
    RK_ASSERT(m->dbuf.len == 0);
    rc = mg_reserve(m, &m->dbuf, BC_COMMIT_BYTES, err);
    if (rc != RK_OK)
        return rc;
    bc_commit_encode(m->dbuf.p, 0, 0);
    m->dbuf.len = BC_COMMIT_BYTES;
    m->data_size = BC_COMMIT_BYTES;
    m->hint_entries = 0;
    m->hint_crc = 0;
    m->out_max_index = 0;
    return RK_OK;
}

/* Makes room for a record of len bytes in the output, moving to a new one when it is full. */
static int mg_room(struct mg *m, uint64_t len, struct rk_errmsg *err)
{
    int rc = RK_OK;
    if (m->data != NULL && m->data_size > BC_COMMIT_BYTES &&
        m->data_size + len > m->bc->max_file_bytes)
        rc = mg_close_output(m, err);
    if (rc == RK_OK && m->data == NULL)
        rc = mg_open_output(m, err);
    return rc;
}

/* Copies the checked record at bytes (of len bytes) for entry e, END set, with a hint entry. */
static int mg_copy(struct mg *m, struct bc_kent *e, const uint8_t *bytes, size_t len,
                   struct rk_errmsg *err)
{
    int rc = mg_room(m, len, err);
    size_t hlen = BC_HINT_HEADER_BYTES + e->key_len;
    if (rc == RK_OK)
        rc = mg_reserve(m, &m->dbuf, len, err);
    if (rc == RK_OK)
        rc = mg_reserve(m, &m->hbuf, hlen, err);
    if (rc == RK_OK &&
        !rk_grow(m->bc->alloc, (void **)&m->upd, &m->cap_upd, m->n_upd + 1, sizeof(*m->upd)))
        rc = rk_errf(err, RK_ENOMEM, "merge: no memory for %zu updates", m->n_upd + 1);
    if (rc != RK_OK)
        return rc;
    uint8_t *d = m->dbuf.p + m->dbuf.len;
    memcpy(d, bytes, len);
    bc_put_u32(d + 12, bc_get_u32(d + 12) | BC_REC_END);
    bc_rec_seal(d, len);
    uint8_t *h = m->hbuf.p + m->hbuf.len;
    bc_rec_encode(h, e->index, BC_REC_END, e->key_len, e->val_len);
    bc_put_u64(h + 20, m->data_size);
    memcpy(h + BC_HINT_HEADER_BYTES, e->key, e->key_len);
    bc_put_u32(h, rk_crc32c(0, h + 4, hlen - 4));
    m->hint_crc = rk_crc32c(m->hint_crc, h, hlen);
    m->upd[m->n_upd++] = (struct mg_update){.e = e,
                                            .offset = m->data_size,
                                            .file_id = m->first_new + m->n_new - 1,
                                            .input_id = e->file_id};
    m->dbuf.len += len;
    m->hbuf.len += hlen;
    m->data_size += len;
    m->hint_entries++;
    if (e->index > m->out_max_index)
        m->out_max_index = e->index;
    return m->dbuf.len >= BC_MERGE_FLUSH_BYTES ? mg_flush(m, err) : RK_OK;
}

/* Step 1 for one input: copies the records the keydir points at. */
static int mg_copy_file(struct mg *m, uint32_t id, struct rk_errmsg *err)
{
    struct bitcask *bc = m->bc;
    struct bc_file *f = bc_file_at(bc, id);
    char name[BC_NAME_BYTES];
    bc_name(name, id, "data");
    struct bc_reader r;
    bc_reader_init(&r, bc, f->f, name, f->size);
    int rc = RK_OK;
    for (uint64_t off = 0; rc == RK_OK && off < f->size;) {
        if (m->cancel != NULL && atomic_load_explicit(m->cancel, memory_order_relaxed)) {
            rc = rk_errf(err, RK_EBUSY, "merge: cancelled");
            break;
        }
        struct bc_checked c;
        rc = bc_check_record(&r, off, off, &c, err);
        if (rc != RK_OK)
            break;
        if (c.verdict != BC_CHECK_OK) {
            rc = rk_errf(err, RK_ECORRUPT, "merge: %s: offset %llu: %s", name,
                         (unsigned long long)off, c.problem);
            break;
        }
        if ((c.rec.flags & BC_REC_COMMIT) != 0) { /* FORMAT 2: not data */
            off = c.end;
            continue;
        }
        if (c.rec.index > m->max_index)
            m->max_index = c.rec.index;
        if ((c.rec.flags & (BC_REC_TOMBSTONE | BC_REC_MARK)) == 0) {
            const uint8_t *key = c.bytes + BC_HEADER_BYTES;
            struct bc_kent *e =
                bc_kd_find(&bc->kd, bc_kd_hash(key, c.rec.key_len), key, c.rec.key_len);
            if (e != NULL && e->file_id == id && e->offset == off &&
                (e->index != c.rec.index || e->val_len != c.rec.val_len)) {
                /* The keydir came from a hint that disagrees with its data file. */
                rc = rk_errf(err, RK_ECORRUPT,
                             "merge: %s: offset %llu: record is not the one the keydir has", name,
                             (unsigned long long)off);
                break;
            }
            if (e != NULL && e->file_id == id && e->offset == off)
                rc = mg_copy(m, e, c.bytes, (size_t)(c.end - off), err);
        }
        off = c.end;
    }
    bc_reader_free(&r);
    return rc;
}

/* The keys the keydir has in the inputs, counted; *one: one of them, if any. */
static uint64_t mg_count_in_inputs(struct mg *m, const struct bc_kent **one)
{
    struct bitcask *bc = m->bc;
    bc_kd_finish(&bc->kd);
    size_t pos = 0;
    uint64_t in_inputs = 0;
    *one = NULL;
    for (const struct bc_kent *e; (e = bc_kd_next(&bc->kd, &pos)) != NULL;) {
        RK_ASSERT(e->file_id != BC_FILE_PENDING); /* no batch is open */
        if (e->file_id >= bc->active_id)
            continue;
        in_inputs++;
        *one = e;
    }
    return in_inputs;
}

/* After step 1's copies: every key the keydir has in an input must have been copied, for the
 * inputs are removed. One that was not points at a record its file does not have — only a hint
 * that disagrees with its data file can do that (recover.c believes a valid hint without
 * reading the data file) — and the merge is refused before it commits, the store as it was. To
 * name one such key, the copied keys are pointed at their copies for a second count, and back. */
static int mg_check_copied(struct mg *m, struct rk_errmsg *err)
{
    const struct bc_kent *one;
    uint64_t in_inputs = mg_count_in_inputs(m, &one);
    RK_ASSERT(m->n_upd <= in_inputs); /* each key is copied at most once: at its offset */
    uint64_t missing = in_inputs - m->n_upd;
    if (missing == 0)
        return RK_OK;
    for (size_t i = 0; i < m->n_upd; i++)
        m->upd[i].e->file_id = m->upd[i].file_id;
    RK_ASSERT(mg_count_in_inputs(m, &one) == missing);
    RK_ASSERT(one != NULL);
    uint32_t id = one->file_id;
    uint64_t off = one->offset;
    uint64_t index = one->index;
    for (size_t i = 0; i < m->n_upd; i++)
        m->upd[i].e->file_id = m->upd[i].input_id;
    char name[BC_NAME_BYTES];
    bc_name(name, id, "data");
    return rk_errf(err, RK_ECORRUPT,
                   "merge: %s: offset %llu: no record of the keydir's key (index %llu) there, "
                   "nor of %llu more keys: a hint disagrees with its data file",
                   name, (unsigned long long)off, (unsigned long long)index,
                   (unsigned long long)(missing - 1));
}

/* Step 1: every input copied, then the MARK record, every output synced, names durable. */
static int mg_write(struct mg *m, struct rk_errmsg *err)
{
    struct bitcask *bc = m->bc;
    for (uint32_t id = bc->lo_id; id < bc->active_id; id++) {
        if (bc_file_at(bc, id)->f == NULL)
            continue;
        int rc = mg_copy_file(m, id, err);
        if (rc != RK_OK)
            return rc;
    }
    int rc = mg_check_copied(m, err);
    if (rc != RK_OK)
        return rc;
    rc = mg_room(m, BC_HEADER_BYTES, err);
    if (rc == RK_OK)
        rc = mg_reserve(m, &m->dbuf, BC_HEADER_BYTES, err);
    if (rc != RK_OK)
        return rc;
    uint8_t *d = m->dbuf.p + m->dbuf.len;
    bc_rec_encode(d, m->max_index, BC_REC_MARK | BC_REC_END, 0, 0);
    bc_rec_seal(d, BC_HEADER_BYTES);
    m->dbuf.len += BC_HEADER_BYTES;
    m->data_size += BC_HEADER_BYTES;
    if (m->max_index > m->out_max_index)
        m->out_max_index = m->max_index;
    rc = mg_close_output(m, err);
    if (rc == RK_OK && (rc = bc->fs->ops->sync_dir(bc->fs, err)) != RK_OK)
        rc = mg_write_error(m, rc, "sync_dir after", m->first_new, err);
    return rc;
}

/* Undoes step 1 (an error before the commit): the outputs are removed. *leftovers: some could
 * not be (open removes them; no merge until then, for the names would collide). */
static int mg_abort(struct mg *m, int rc, bool *leftovers, struct rk_errmsg *err)
{
    struct fs *fs = m->bc->fs;
    if (m->data != NULL)
        fs->ops->close(fs, m->data);
    if (m->hint != NULL)
        fs->ops->close(fs, m->hint);
    m->data = NULL;
    m->hint = NULL;
    for (uint32_t i = 0; i < m->n_new; i++) {
        static const char *const exts[] = {"data.tmp", "hint.tmp"};
        for (int k = 0; k < 2; k++) {
            char name[BC_NAME_BYTES];
            struct rk_errmsg scratch;
            bc_name(name, m->first_new + i, exts[k]);
            int rm = fs->ops->remove(fs, name, &scratch);
            if (rm != RK_OK && rm != RK_ENOENT && !*leftovers) {
                rk_errwrap(err, rc, "merge: and removing %s failed (%s)", name, scratch.text);
                *leftovers = true;
            }
        }
    }
    return rc;
}

/* Step 2: MERGE.tmp written and synced, renamed to MERGE, made durable. *renamed: the rename
 * was tried (from then on the merge may have committed). */
static int mg_manifest(struct mg *m, bool *renamed, struct rk_errmsg *err)
{
    struct bitcask *bc = m->bc;
    struct fs *fs = bc->fs;
    size_t n_old = 0;
    for (uint32_t id = bc->lo_id; id < bc->active_id; id++)
        n_old += bc_file_at(bc, id)->f != NULL;
    size_t len = BC_MERGE_HEADER_BYTES + 4 * n_old;
    uint8_t *buf = rk_malloc(bc->alloc, len);
    if (buf == NULL)
        return rk_errf(err, RK_ENOMEM, "merge: no memory");
    size_t n = 0;
    bc_put_u32(buf + 4, BC_MERGE_MAGIC);
    bc_put_u32(buf + 8, m->first_new);
    bc_put_u32(buf + 12, m->n_new);
    for (uint32_t id = bc->lo_id; id < bc->active_id; id++) {
        if (bc_file_at(bc, id)->f != NULL)
            bc_put_u32(buf + BC_MERGE_HEADER_BYTES + 4 * n++, id);
    }
    bc_put_u32(buf + 16, (uint32_t)n);
    RK_ASSERT(n == n_old);
    bc_put_u32(buf, rk_crc32c(0, buf + 4, len - 4));
    struct fs_file *f;
    int rc = fs->ops->open(fs, BC_MERGE_TMP_NAME, FS_CREATE | FS_EXCL, &f, err);
    if (rc == RK_OK) {
        rc = fs->ops->append(fs, f, buf, len, err);
        if (rc == RK_OK)
            rc = fs->ops->sync(fs, f, err);
        fs->ops->close(fs, f);
        *renamed = rc == RK_OK;
        if (rc == RK_OK)
            rc = fs->ops->rename(fs, BC_MERGE_TMP_NAME, BC_MERGE_NAME, err);
        if (rc == RK_OK)
            rc = fs->ops->sync_dir(fs, err);
    }
    rk_free(bc->alloc, buf);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "merge: writing %s", BC_MERGE_NAME);
}

/* Step 3: the outputs under their final names, made durable. */
static int mg_rename_outputs(struct mg *m, struct rk_errmsg *err)
{
    struct fs *fs = m->bc->fs;
    char from[BC_NAME_BYTES];
    char to[BC_NAME_BYTES];
    int rc = RK_OK;
    for (uint32_t i = 0; rc == RK_OK && i < m->n_new; i++) {
        bc_name(from, m->first_new + i, "data.tmp");
        bc_name(to, m->first_new + i, "data");
        rc = fs->ops->rename(fs, from, to, err);
        bc_name(from, m->first_new + i, "hint.tmp");
        bc_name(to, m->first_new + i, "hint");
        if (rc == RK_OK)
            rc = fs->ops->rename(fs, from, to, err);
    }
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "merge: renaming the merged files");
}

static void mg_free(struct mg *m, const struct rk_alloc *a)
{
    rk_free(a, m->sizes);
    rk_free(a, m->dbuf.p);
    rk_free(a, m->hbuf.p);
    rk_free(a, m->upd);
    memset(m, 0, sizeof(*m));
}

/* ---- the merge in steps ------------------------------------------------------------------- */

enum mg_stage {
    MG_PREPARED,  /* run next */
    MG_RAN,       /* install next (run's outcome in rc) */
    MG_INSTALLED, /* cleanup next */
    MG_CLEANED,   /* end next */
};

struct bc_merge_job {
    struct fs *fs; /* run's and cleanup's */
    const struct rk_alloc *alloc;
    uint64_t max_file_bytes; /* of the outputs (mg_out_bytes) */
    uint32_t *inputs;        /* ids, ascending */
    size_t n_inputs;
    uint64_t input_bytes;
    uint32_t first_new; /* the outputs' ids: first_new .. first_new + room - 1 */
    uint32_t room;
    enum mg_stage stage;
    struct bitcask *shadow; /* run: the inputs' keydir; install reads it */
    struct mg m;
    int rc;          /* run's or cleanup's outcome */
    bool committed;  /* MERGE was (or may have been) made durable */
    bool leftovers;  /* files were left that only an open removes */
    bool files_in;   /* install took the outputs into the file table */
    size_t next_upd; /* install's progress */
    atomic_bool cancel; /* bc_merge_cancel */
    struct rk_errmsg err;
};

/* The ids needed for the outputs of inputs of bytes, in files of max_bytes: pairs of consecutive
 * outputs hold more than max_bytes (an output is closed only when the next record does not
 * fit), plus the last one and the MARK record. */
static uint64_t mg_need(uint64_t bytes, uint64_t max_bytes)
{
    return 2 * (bytes / max_bytes) + 4;
}

/* A merge needs at least this many free ids after its last input: with fewer, the outputs
 * would have to be huge. */
#define MG_MIN_ROOM 6u

/* The size of the merge's output files for inputs of bytes and room free ids (MG_MIN_ROOM or
 * more): max_file_bytes, or more when that many would not fit the room (then fewer, bigger
 * files: a data file may be larger than max_file_bytes, as one of a single big batch is). */
static uint64_t mg_out_bytes(uint64_t bytes, uint64_t room, uint64_t max_file_bytes)
{
    RK_ASSERT(room >= MG_MIN_ROOM);
    if (mg_need(bytes, max_file_bytes) <= room)
        return max_file_bytes;
    uint64_t m = (2 * bytes + (room - 4) - 1) / (room - 4); /* 2 * (bytes / m) <= room - 4 */
    return m > max_file_bytes ? m : max_file_bytes;
}

/* The pick (bitcask.h): every closed file up to the last one after which at least MG_MIN_ROOM
 * ids are free (or an active file not yet made, whose id can move up). *last: the last input's
 * id (0: none); *room: the ids free after it (UINT32_MAX: as many as wanted). O(ids). */
static void mg_pick(struct bitcask *bc, struct bc_merge_pick *pick, uint32_t *last, uint32_t *room)
{
    memset(pick, 0, sizeof(*pick));
    *last = 0;
    *room = 0;
    /* Deferred writes (io.c): a file a job not yet done writes or syncs is no input, nor any
     * after it; it then stands where the active file would (made: its ids cannot move). */
    uint32_t stop = bc->active_id;
    uint32_t low = bc_io_low_id(bc);
    if (low < stop)
        stop = low;
    bool has_active = bc_file_made(bc_file_at(bc, stop));
    uint32_t n = 0;
    uint64_t bytes = 0;
    uint64_t dead = 0;
    uint32_t prev = 0; /* the last closed file met */
    for (uint32_t id = bc->lo_id; id <= stop; id++) {
        struct bc_file *f = bc_file_at(bc, id);
        bool end = id == stop;
        if (!bc_file_made(f) && !end)
            continue;
        if (prev != 0) { /* the prefix up to prev, followed by the free ids before id */
            uint32_t free_ids = end && !has_active ? UINT32_MAX : id - prev - 1;
            if (free_ids >= MG_MIN_ROOM) {
                *pick = (struct bc_merge_pick){.inputs = n, .bytes = bytes, .dead_bytes = dead};
                *last = prev;
                *room = free_ids;
            }
        }
        if (end)
            break;
        n++;
        bytes += f->size;
        dead += f->size - f->live;
        prev = id;
    }
}

void bc_merge_pick(struct bitcask *bc, struct bc_merge_pick *pick)
{
    uint32_t last;
    uint32_t room;
    mg_pick(bc, pick, &last, &room);
}

bool bc_merge_wanted(struct bitcask *bc, const struct bc_merge_policy *policy)
{
    if (bc->merge != NULL || bc->merge_stuck || bc->stage != NULL || bc->poison != RK_OK)
        return false;
    struct bc_merge_pick p;
    bc_merge_pick(bc, &p);
    if (p.inputs == 0 || p.dead_bytes < policy->min_dead_bytes || p.dead_bytes == 0)
        return false;
    return (policy->frag_percent > 0 && p.dead_bytes * 100 >= p.bytes * policy->frag_percent) ||
           (policy->dead_bytes > 0 && p.dead_bytes >= policy->dead_bytes);
}

int bc_merge_prepare(struct bitcask *bc, struct fs *fs, struct bc_merge_job **out,
                     struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL && out != NULL);
    *out = NULL;
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (bc->merge != NULL)
        return rk_errf(err, RK_EBUSY, "merge: one is in progress");
    if (bc->merge_stuck)
        return rk_errf(err, RK_EBUSY, "merge: an earlier one left files; reopen the store first");
    if (bc->stage != NULL) /* stage.c: one MERGE at a time, and the stage's takes every file */
        return rk_errf(err, RK_EBUSY, "merge: a staged replacement is in progress");
    struct bc_merge_pick pick;
    uint32_t last;
    uint32_t room;
    mg_pick(bc, &pick, &last, &room);
    if (pick.inputs == 0)
        return RK_OK;
    uint64_t need = mg_need(pick.bytes, bc->max_file_bytes);
    need = need > MG_MIN_ROOM ? need : MG_MIN_ROOM;
    bool move_active = room == UINT32_MAX && bc->active_id - last - 1 < need;
    if (room == UINT32_MAX) { /* the active file, not yet made, moves up if need be */
        if (need > BC_MAX_FILE_ID - 1 - bc->merge_id_gap - last)
            return rk_errf(err, RK_ENOSPC, "merge: out of data file ids");
        room = (uint32_t)(move_active ? need : bc->active_id - last - 1);
    }
    struct bc_merge_job *j = rk_malloc(bc->alloc, sizeof(*j));
    uint32_t *ids = rk_malloc(bc->alloc, pick.inputs * sizeof(*ids));
    if (j == NULL || ids == NULL ||
        (move_active &&
         bc_files_cover(bc, (uint32_t)(last + 1 + need + bc->merge_id_gap)) != RK_OK)) {
        rk_free(bc->alloc, j);
        rk_free(bc->alloc, ids);
        return rk_errf(err, RK_ENOMEM, "merge: no memory");
    }
    if (move_active)
        bc->active_id = (uint32_t)(last + 1 + need + bc->merge_id_gap);
    memset(j, 0, sizeof(*j));
    atomic_init(&j->cancel, false);
    j->fs = fs != NULL ? fs : bc->fs;
    j->alloc = bc->alloc;
    j->max_file_bytes = mg_out_bytes(pick.bytes, room, bc->max_file_bytes);
    j->inputs = ids;
    for (uint32_t id = bc->lo_id; id <= last; id++) {
        struct bc_file *f = bc_file_at(bc, id);
        if (f->f != NULL)
            ids[j->n_inputs++] = id;
    }
    RK_ASSERT(j->n_inputs == pick.inputs);
    j->input_bytes = pick.bytes;
    j->first_new = last + 1;
    j->room = room;
    j->stage = MG_PREPARED;
    bc->merge = j;
    *out = j;
    return RK_OK;
}

static bool mg_cancelled(void *ctx)
{
    struct bc_merge_job *j = ctx;
    return atomic_load_explicit(&j->cancel, memory_order_relaxed);
}

/* Run, up to the commit: the shadow loaded, step 1. */
static int mg_run_write(struct bc_merge_job *j)
{
    struct bc_config c = {.fs = j->fs, .alloc = j->alloc, .max_file_bytes = j->max_file_bytes};
    int rc = bc_new(&c, &j->shadow, &j->err);
    if (rc != RK_OK)
        return rc;
    struct bitcask *sh = j->shadow;
    sh->lo_id = j->inputs[0];
    sh->active_id = j->inputs[j->n_inputs - 1] + 1;
    if (bc_files_cover(sh, sh->active_id) != RK_OK)
        return rk_errf(&j->err, RK_ENOMEM, "merge: no memory");
    rc = bc_recover_inputs(sh, j->inputs, j->n_inputs, mg_cancelled, j, &j->err);
    if (rc != RK_OK)
        return rk_errwrap(&j->err, rc, "merge: reading the inputs");
    j->m.bc = sh;
    j->m.first_new = j->first_new;
    j->m.room = j->room;
    j->m.cancel = &j->cancel;
    rc = mg_write(&j->m, &j->err);
    if (rc != RK_OK)
        rc = mg_abort(&j->m, rc, &j->leftovers, &j->err);
    return rc;
}

int bc_merge_run(struct bc_merge_job *j)
{
    RK_ASSERT(j != NULL && j->stage == MG_PREPARED);
    j->stage = MG_RAN;
    int rc = mg_run_write(j);
    if (rc == RK_OK) {
        rc = mg_manifest(&j->m, &j->committed, &j->err);
        if (rc != RK_OK && !j->committed) { /* not committed: undone */
            struct rk_errmsg scratch;
            int rm = j->fs->ops->remove(j->fs, BC_MERGE_TMP_NAME, &scratch);
            if (rm != RK_OK && rm != RK_ENOENT)
                j->leftovers = true;
            rc = mg_abort(&j->m, rc, &j->leftovers, &j->err);
        }
    }
    if (rc == RK_OK)
        rc = mg_rename_outputs(&j->m, &j->err);
    if (rc != RK_OK && j->committed)
        j->leftovers = true; /* reopen finishes the merge (or removes MERGE.tmp) */
    /* The shadow's files are no longer read (install reads its keydir only). */
    struct bitcask *sh = j->shadow;
    for (size_t i = 0; sh != NULL && i < sh->files_cap; i++) {
        struct bc_file *f = &sh->files[i];
        if (f->f != NULL)
            sh->fs->ops->close(sh->fs, f->f);
        f->f = NULL;
    }
    if (rc != RK_OK) { /* install will not read the shadow: freed here, off the owner's thread */
        mg_free(&j->m, j->alloc);
        bc_close(j->shadow);
        j->shadow = NULL;
    }
    j->rc = rc;
    return rc;
}

/* The last chunk of install: outputs in, inputs out, ids tidied. */
static int mg_install_files(struct bitcask *bc, struct bc_merge_job *j, struct rk_errmsg *err)
{
    for (size_t i = 0; i < j->n_inputs; i++) {
        struct bc_file *f = bc_file_at(bc, j->inputs[i]);
        if (f->live != 0) {
            /* The shadow saw every record of the inputs, and every key it had was copied
             * (mg_check_copied): only a keydir that disagrees with the files gets here. The
             * committed merge would lose the record at the next open: stop now. */
            char name[BC_NAME_BYTES];
            bc_name(name, j->inputs[i], "data");
            bc->merge_stuck = true;
            rk_errf(err, RK_ECORRUPT, "merge: %s still has %llu live bytes the merge did not copy",
                    name, (unsigned long long)f->live);
            return bc_poison(bc, RK_ECORRUPT, err);
        }
    }
    for (size_t i = 0; i < j->n_inputs; i++) {
        struct bc_file *f = bc_file_at(bc, j->inputs[i]);
        bc->fs->ops->close(bc->fs, f->f);
        *f = (struct bc_file){0};
    }
    uint32_t lo = bc->lo_id;
    while (lo < bc->active_id && !bc_file_made(bc_file_at(bc, lo)))
        lo++;
    if (lo > bc->lo_id) {
        size_t keep = (size_t)(bc->active_id - lo) + 1;
        memmove(bc->files, bc->files + (lo - bc->lo_id), keep * sizeof(*bc->files));
        memset(bc->files + keep, 0, (bc->files_cap - keep) * sizeof(*bc->files));
        bc->lo_id = lo;
    }
    /* An active file not yet made comes down to just above the last file (and its gap). */
    if (!bc_file_made(bc_file_at(bc, bc->active_id))) {
        uint32_t hi = bc->active_id;
        while (hi > bc->lo_id && !bc_file_made(bc_file_at(bc, hi - 1)))
            hi--;
        uint32_t want =
            hi == bc->lo_id && !bc_file_made(bc_file_at(bc, hi)) ? hi : hi + bc->merge_id_gap;
        if (want < bc->active_id && want >= bc->lo_id)
            bc->active_id = want;
    }
    bc->merges_done++;
    bc->merged_bytes += j->input_bytes;
    return RK_OK;
}

int bc_merge_install(struct bitcask *bc, struct bc_merge_job *j, size_t max_entries, bool *done,
                     struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL && j != NULL && done != NULL);
    RK_ASSERT(bc->merge == j && j->stage == MG_RAN);
    *done = false;
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (j->rc != RK_OK)
        return rk_errf(err, j->rc, "%s", j->err.text);
    struct mg *m = &j->m;
    if (!j->files_in) {
        for (uint32_t i = 0; i < m->n_new; i++) {
            char name[BC_NAME_BYTES];
            uint32_t id = m->first_new + i;
            struct bc_file *f = bc_file_at(bc, id);
            RK_ASSERT(f != NULL && f->f == NULL);
            bc_name(name, id, "data");
            rc = bc->fs->ops->open(bc->fs, name, 0, &f->f, err);
            if (rc != RK_OK) {
                for (uint32_t k = 0; k < i; k++) {
                    struct bc_file *g = bc_file_at(bc, m->first_new + k);
                    bc->fs->ops->close(bc->fs, g->f);
                    g->f = NULL;
                }
                bc->merge_stuck = true; /* committed: reopen finishes it */
                return rk_errwrap(err, rc, "merge: opening %s", name);
            }
            f->size = m->sizes[i];
            f->written = m->sizes[i]; /* whole on disk (deferred writes: io.c, D2) */
            f->live = 0;
        }
        j->files_in = true;
    }
    size_t end = m->n_upd;
    if (max_entries > 0 && end - j->next_upd > max_entries)
        end = j->next_upd + max_entries;
    for (size_t i = j->next_upd; i < end; i++) {
        const struct mg_update *u = &m->upd[i];
        const struct bc_kent *se = u->e; /* where the record was in the inputs */
        struct bc_kent *e = bc_kd_find(&bc->kd, se->hash, se->key, se->key_len);
        if (e == NULL || e->file_id != u->input_id || e->offset != se->offset)
            continue; /* rewritten since: the copy is a dead record */
        RK_ASSERT(e->index == se->index && e->val_len == se->val_len);
        bc_live_move(bc, e->file_id, u->file_id, e->key_len, e->val_len);
        e->file_id = u->file_id;
        e->offset = u->offset;
    }
    j->next_upd = end;
    if (end < m->n_upd)
        return RK_OK;
    rc = mg_install_files(bc, j, err);
    if (rc != RK_OK)
        return rc;
    RK_ASSERT_SLOW(bc_kd_valid(&bc->kd));
    j->stage = MG_INSTALLED;
    *done = true;
    return RK_OK;
}

int bc_merge_cleanup(struct bc_merge_job *j)
{
    RK_ASSERT(j != NULL && j->stage == MG_INSTALLED);
    j->stage = MG_CLEANED;
    /* The shadow's keydir (O(keys of the inputs)) is freed here, off the owner's thread. */
    mg_free(&j->m, j->alloc);
    bc_close(j->shadow);
    j->shadow = NULL;
    struct fs *fs = j->fs;
    struct rk_errmsg *err = &j->err;
    char name[BC_NAME_BYTES];
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && i < j->n_inputs; i++) {
        bc_name(name, j->inputs[i], "data");
        rc = fs->ops->remove(fs, name, err);
        bc_name(name, j->inputs[i], "hint");
        if (rc == RK_OK && (rc = fs->ops->remove(fs, name, err)) == RK_ENOENT)
            rc = RK_OK;
    }
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    if (rc == RK_OK)
        rc = fs->ops->remove(fs, BC_MERGE_NAME, err);
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    if (rc != RK_OK) {
        rk_errwrap(err, rc, "merge: removing the merged files");
        j->leftovers = true;
    }
    j->rc = rc;
    return rc;
}

int bc_merge_end(struct bitcask *bc, struct bc_merge_job *j, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL && j != NULL && bc->merge == j);
    bc->merge = NULL;
    /* Leftovers, or a committed merge that was not installed: only an open sorts them out. */
    if (j->leftovers || (j->committed && j->stage == MG_RAN))
        bc->merge_stuck = true;
    if (j->stage == MG_CLEANED && j->rc != RK_OK)
        return rk_errf(err, j->rc, "%s", j->err.text);
    return RK_OK;
}

void bc_merge_job_free(struct bc_merge_job *j)
{
    if (j == NULL)
        return;
    struct mg *m = &j->m;
    if (m->bc != NULL) {
        struct fs *fs = m->bc->fs;
        if (m->data != NULL)
            fs->ops->close(fs, m->data);
        if (m->hint != NULL)
            fs->ops->close(fs, m->hint);
    }
    mg_free(m, j->alloc);
    bc_close(j->shadow);
    rk_free(j->alloc, j->inputs);
    rk_free(j->alloc, j);
}

void bc_merge_cancel(struct bc_merge_job *j)
{
    atomic_store_explicit(&j->cancel, true, memory_order_relaxed);
}

const char *bc_merge_job_error(const struct bc_merge_job *j)
{
    return j->rc == RK_OK ? "" : j->err.text;
}

int bc_merge(struct bitcask *bc, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (bc->batch_len > 0)
        return rk_errf(err, RK_EINVAL, "merge: a batch is open; end it first");
    if (bc->stage != NULL)
        return rk_errf(err, RK_EBUSY, "merge: a staged replacement is in progress");
    if (bc->deferred)
        return rk_errf(err, RK_EINVAL, "merge: writes are deferred; merge in steps");
    rc = bc_sync(bc, err); /* step 0, and the promise to the caller, inputs or not */
    if (rc != RK_OK)
        return rc;
    /* The active file becomes an input: the next one is made at the next append. */
    if (bc_file_at(bc, bc->active_id)->f != NULL) {
        if (bc->active_id >= BC_MAX_FILE_ID - 1 - bc->merge_id_gap)
            return rk_errf(err, RK_ENOSPC, "out of data file ids");
        if (bc_files_cover(bc, bc->active_id + 1) != RK_OK)
            return rk_errf(err, RK_ENOMEM, "merge: no memory for the file table");
        bc->active_id++;
    }
    struct bc_merge_job *j;
    rc = bc_merge_prepare(bc, NULL, &j, err);
    if (rc != RK_OK || j == NULL)
        return rc;
    bool done = false;
    bc_merge_run(j);
    rc = bc_merge_install(bc, j, 0, &done, err);
    if (rc == RK_OK) {
        bc_merge_cleanup(j);
        rc = bc_merge_end(bc, j, err);
    } else {
        struct rk_errmsg scratch;
        bc_merge_end(bc, j, &scratch);
    }
    /* A merge that committed and was not finished here is finished by the next open: the store
     * must be reopened (S5), as after any failed fs call. */
    if (rc != RK_OK && bc->merge_stuck && bc->poison == RK_OK)
        bc_poison(bc, rc, err);
    bc_merge_job_free(j);
    return rc;
}
