/*
 * merge.c — bc_merge: rewrites the live records of the immutable data files into new files with
 * hint files and switches them in. The protocol and its crash analysis are at the top of
 * bitcask.c (MERGE); recovery's half of it is in recover.c.
 *
 * Memory: besides two write buffers and a read buffer, one struct mg_update (24 bytes) per
 * record copied, so that the keydir is repointed only once the switch is durable.
 */
#include "bitcask/bitcask_int.h"

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
    struct bitcask *bc;
    uint32_t first_new;
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
    bc_hint_trailer_encode(m->hbuf.p + m->hbuf.len, id, m->hint_crc, m->hint_entries, m->data_size,
                           m->out_max_index);
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
    if (m->n_new >= BC_MAX_FILES || m->first_new > BC_MAX_FILE_ID - m->n_new)
        return rk_errf(err, RK_ENOSPC, "merge: out of data file ids");
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

/* Undoes step 1 (an error before the commit). An fs write error poisons instead (S5). */
static int mg_abort(struct mg *m, int rc, struct rk_errmsg *err)
{
    struct fs *fs = m->bc->fs;
    if (m->data != NULL)
        fs->ops->close(fs, m->data);
    if (m->hint != NULL)
        fs->ops->close(fs, m->hint);
    m->data = NULL;
    m->hint = NULL;
    if (m->write_failed)
        return bc_poison(m->bc, rc, err);
    for (uint32_t i = 0; i < m->n_new; i++) {
        static const char *const exts[] = {"data.tmp", "hint.tmp"};
        for (int k = 0; k < 2; k++) {
            char name[BC_NAME_BYTES];
            struct rk_errmsg scratch;
            bc_name(name, m->first_new + i, exts[k]);
            int rm = fs->ops->remove(fs, name, &scratch);
            if (rm != RK_OK && rm != RK_ENOENT) {
                /* Harmless on disk (open removes *.tmp) but the next merge would trip on it. */
                rk_errwrap(err, rc, "merge: and removing %s failed (%s)", name, scratch.text);
                return bc_poison(m->bc, rc, err);
            }
        }
    }
    return rc;
}

/* Step 2: MERGE.tmp written and synced, renamed to MERGE, made durable. */
static int mg_manifest(struct mg *m, uint8_t *buf, size_t len, struct rk_errmsg *err)
{
    struct bitcask *bc = m->bc;
    struct fs *fs = bc->fs;
    size_t n = 0;
    bc_put_u32(buf + 4, BC_MERGE_MAGIC);
    bc_put_u32(buf + 8, m->first_new);
    bc_put_u32(buf + 12, m->n_new);
    for (uint32_t id = bc->lo_id; id < bc->active_id; id++) {
        if (bc_file_at(bc, id)->f != NULL)
            bc_put_u32(buf + BC_MERGE_HEADER_BYTES + 4 * n++, id);
    }
    bc_put_u32(buf + 16, (uint32_t)n);
    RK_ASSERT(BC_MERGE_HEADER_BYTES + 4 * n == len);
    bc_put_u32(buf, rk_crc32c(0, buf + 4, len - 4));
    struct fs_file *f;
    int rc = fs->ops->open(fs, BC_MERGE_TMP_NAME, FS_CREATE | FS_EXCL, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "merge: create %s", BC_MERGE_TMP_NAME);
    rc = fs->ops->append(fs, f, buf, len, err);
    if (rc == RK_OK)
        rc = fs->ops->sync(fs, f, err);
    fs->ops->close(fs, f);
    if (rc == RK_OK)
        rc = fs->ops->rename(fs, BC_MERGE_TMP_NAME, BC_MERGE_NAME, err);
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "merge: writing %s", BC_MERGE_NAME);
}

/* Steps 3-5: renames, removes, manifest gone; each made durable. */
static int mg_switch_files(struct mg *m, struct rk_errmsg *err)
{
    struct bitcask *bc = m->bc;
    struct fs *fs = bc->fs;
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
    for (uint32_t id = bc->lo_id; rc == RK_OK && id < bc->active_id; id++) {
        if (bc_file_at(bc, id)->f == NULL)
            continue;
        bc_name(to, id, "data");
        rc = fs->ops->remove(fs, to, err);
        bc_name(to, id, "hint");
        if (rc == RK_OK && (rc = fs->ops->remove(fs, to, err)) == RK_ENOENT)
            rc = RK_OK;
    }
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    if (rc == RK_OK)
        rc = fs->ops->remove(fs, BC_MERGE_NAME, err);
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "merge: switching files");
}

/* The in-memory half of the switch: a new file table (allocated by the caller), the merged
 * files opened, the inputs closed, the keydir repointed. */
static int mg_adopt(struct mg *m, struct bc_file *files, size_t cap, struct rk_errmsg *err)
{
    struct bitcask *bc = m->bc;
    struct fs *fs = bc->fs;
    struct bc_file *active = bc_file_at(bc, bc->active_id);
    uint32_t lo = active->f != NULL ? bc->active_id : m->first_new;
    for (uint32_t i = 0; i < m->n_new; i++) {
        char name[BC_NAME_BYTES];
        struct bc_file *f = &files[m->first_new + i - lo];
        bc_name(name, m->first_new + i, "data");
        int rc = fs->ops->open(fs, name, 0, &f->f, err);
        if (rc != RK_OK) {
            for (uint32_t j = 0; j < i; j++)
                fs->ops->close(fs, files[m->first_new + j - lo].f);
            rk_free(bc->alloc, files);
            return rk_errwrap(err, rc, "merge: reopening %s", name);
        }
        f->size = m->sizes[i];
    }
    for (uint32_t id = bc->lo_id; id < bc->active_id; id++) {
        struct bc_file *f = bc_file_at(bc, id);
        if (f->f != NULL)
            fs->ops->close(fs, f->f);
    }
    if (active->f != NULL)
        files[0] = *active;
    rk_free(bc->alloc, bc->files);
    bc->files = files;
    bc->files_cap = cap;
    bc->lo_id = lo;
    bc->active_id = m->first_new + m->n_new;
    bc->active_unsynced = false;
    bc->dir_dirty = false;
    for (size_t i = 0; i < m->n_upd; i++) {
        m->upd[i].e->file_id = m->upd[i].file_id;
        m->upd[i].e->offset = m->upd[i].offset;
    }
    return RK_OK;
}

static void mg_free(struct mg *m)
{
    const struct rk_alloc *a = m->bc->alloc;
    rk_free(a, m->sizes);
    rk_free(a, m->dbuf.p);
    rk_free(a, m->hbuf.p);
    rk_free(a, m->upd);
}

/* Steps 2-5 and the adoption, with everything they need allocated first. */
static int mg_commit(struct mg *m, struct rk_errmsg *err)
{
    struct bitcask *bc = m->bc;
    size_t n_old = 0;
    for (uint32_t id = bc->lo_id; id < bc->active_id; id++)
        n_old += bc_file_at(bc, id)->f != NULL;
    size_t len = BC_MERGE_HEADER_BYTES + 4 * n_old;
    uint8_t *manifest = rk_malloc(bc->alloc, len);
    bool has_active = bc_file_at(bc, bc->active_id)->f != NULL;
    uint32_t lo = has_active ? bc->active_id : m->first_new;
    size_t cap = (size_t)(m->first_new + m->n_new - lo) + 1;
    struct bc_file *files = rk_malloc(bc->alloc, cap * sizeof(*files));
    if (manifest == NULL || files == NULL) {
        rk_free(bc->alloc, manifest);
        rk_free(bc->alloc, files);
        return mg_abort(m, rk_errf(err, RK_ENOMEM, "merge: no memory"), err);
    }
    memset(files, 0, cap * sizeof(*files));
    int rc = mg_manifest(m, manifest, len, err);
    rk_free(bc->alloc, manifest);
    if (rc == RK_OK)
        rc = mg_switch_files(m, err);
    if (rc != RK_OK) {
        rk_free(bc->alloc, files);
        return bc_poison(bc, rc, err);
    }
    rc = mg_adopt(m, files, cap, err);
    return rc == RK_OK ? RK_OK : bc_poison(bc, rc, err);
}

int bc_merge(struct bitcask *bc, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (bc->batch_len > 0)
        return rk_errf(err, RK_EINVAL, "merge: a batch is open; end it first");
    rc = bc_sync(bc, err); /* step 0, and the promise to the caller, inputs or not */
    if (rc != RK_OK)
        return rc;
    bool inputs = false;
    for (uint32_t id = bc->lo_id; id < bc->active_id; id++)
        inputs = inputs || bc_file_at(bc, id)->f != NULL;
    if (!inputs)
        return RK_OK;
    struct mg m;
    memset(&m, 0, sizeof(m));
    m.bc = bc;
    m.first_new = bc_file_at(bc, bc->active_id)->f != NULL ? bc->active_id + 1 : bc->active_id;
    rc = mg_write(&m, err);
    if (rc != RK_OK)
        rc = mg_abort(&m, rc, err);
    else
        rc = mg_commit(&m, err);
    mg_free(&m);
    RK_ASSERT_SLOW(rc != RK_OK || bc_kd_valid(&bc->kd));
    return rc;
}
