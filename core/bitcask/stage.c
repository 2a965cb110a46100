/*
 * stage.c — STAGED REPLACEMENT (bitcask.h): the whole store replaced by a stream of records (a
 * snapshot a follower installs), with Bitcask's merge protocol (bitcask.c, MERGE) as the switch.
 *
 * The records are written as they come, a chunk at a time, into outputs of their own —
 * NNNNNNNNNN.data.tmp with a merge-style hint in NNNNNNNNNN.hint.tmp, at ids above every file
 * of the live store — through the deferred jobs (io.c: the worker does the I/O, in order with the
 * live store's writes). Nothing of the stage is in the live keydir, and the live store keeps
 * serving (and applying) meanwhile. The commit (bc_stage_commit) queues one op, run by the
 * worker (bc_stage_run_commit):
 *   1. the outputs' last bytes (a MARK at the stage's index ends the last one), their syncs,
 *      then sync_dir: the outputs complete and named durably;
 *   2. MERGE (written as MERGE.tmp, synced, renamed, sync_dir) naming the outputs as the merged
 *      files and EVERY file of the live store as an input                  <- the switch
 *   3. the outputs renamed to their final names, sync_dir;
 *   4. the outputs' hints loaded into a store of the worker's own (the new keydir, built off
 *      the owner's thread, sized from the records staged);
 *   5. every input and its hint removed, sync_dir, MERGE removed, sync_dir.
 * Then, at bc_io_done, the owner swaps the new keydir and file table in (O(outputs)) and the old
 * keydir leaves with the next job, freed by the worker.
 *
 * Crash analysis: it is the MERGE protocol's (bitcask.c) with inputs = every live file. Before
 * MERGE is durable: the outputs are *.tmp, which recovery removes: the old store, whole. After:
 * recovery rolls forward (renames the outputs, removes every input): the new store, whole. The
 * outputs sort after every input (their ids are above the live store's, whose rotations are
 * kept below them while the stage lasts: bc_stage_limit), so B2 holds through the roll forward.
 * No mix is possible: an input is removed only after MERGE is durable, and once it is, every
 * input goes. After the switch only the outputs remain: no second copy on disk.
 *
 * Rules: one stage at a time; no merge starts while a stage lasts (bc_merge_prepare: RK_EBUSY),
 * and a stage commits only when no merge is in progress (RK_EBUSY: try again later), so there is
 * one MERGE at a time. From the commit to its bc_io_done, writes are refused (RK_EBUSY: the live
 * files are about to go) and bc_sync does nothing; the caller (core/replica) holds its applies
 * until bc_stage_state is NONE again.
 *
 * Memory: the records of one chunk (until bc_stage_flush queues them) and their hint entries;
 * the new keydir is built by the worker at the commit.
 */
#include "bitcask/bitcask_int.h"

#include "common/assert.h"
#include "common/crc32c.h"

/* Rotations of the live store's active file a stage leaves room for below its outputs (more,
 * and the active file grows past max_file_bytes until the switch: bc_stage_limit). */
#define BC_STAGE_ROTATIONS 4u
/* Records buffered before they are queued even without a flush. */
#define BC_STAGE_FLUSH_BYTES (1u << 20)

struct bc_stage {
    uint64_t index;
    uint32_t first_new;
    uint32_t n_out;     /* outputs made: first_new .. first_new + n_out - 1 */
    bool open;          /* the last output is being written */
    uint64_t data_size; /* of the open output: queued and buffered bytes */
    uint64_t hint_entries;
    uint32_t hint_crc;
    uint64_t out_max_index;
    uint64_t keys; /* records staged */
    uint8_t *dbuf;
    size_t dlen, dcap;
    uint8_t *hbuf;
    size_t hlen, hcap;
};

uint32_t bc_stage_limit(const struct bitcask *bc)
{
    return bc->stage != NULL ? bc->stage->first_new : UINT32_MAX;
}

uint64_t bc_stage_queued_bytes(const struct bitcask *bc)
{
    return bc->stage_queued;
}

int bc_stage_state(const struct bitcask *bc)
{
    return bc->stage == NULL      ? BC_STAGE_NONE
           : bc->stage_committing ? BC_STAGE_COMMITTING
                                  : BC_STAGE_FILLING;
}

void bc_stage_free(struct bitcask *bc)
{
    struct bc_stage *st = bc->stage;
    if (st == NULL)
        return;
    rk_free(bc->alloc, st->dbuf);
    rk_free(bc->alloc, st->hbuf);
    rk_free(bc->alloc, st);
    bc->stage = NULL;
    bc->stage_committing = false;
}

int bc_stage_begin(struct bitcask *bc, uint64_t index, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL && index > 0);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (bc->stage != NULL)
        return rk_errf(err, RK_EBUSY, "stage: one is in progress");
    if (bc->merge_stuck)
        return rk_errf(err, RK_EBUSY, "stage: a merge left files; reopen the store first");
    uint64_t first =
        (uint64_t)bc->active_id + 1 + (uint64_t)(bc->merge_id_gap + 1) * BC_STAGE_ROTATIONS;
    if (first < bc->stage_floor)
        first = bc->stage_floor;
    if (first >= BC_MAX_FILE_ID - BC_MAX_FILES - 1 - bc->merge_id_gap)
        return rk_errf(err, RK_ENOSPC, "stage: out of data file ids");
    struct bc_stage *st = rk_malloc(bc->alloc, sizeof(*st));
    if (st == NULL)
        return rk_errf(err, RK_ENOMEM, "stage: no memory");
    *st = (struct bc_stage){.index = index, .first_new = (uint32_t)first};
    bc->stage = st;
    bc->stage_committing = false;
    return RK_OK;
}

static int stage_fail(struct bitcask *bc, int rc, struct rk_errmsg *err)
{
    /* A queue that failed halfway (no memory) leaves the outputs' files unknown: as any failed
     * write, it poisons (S5); the next open removes the *.tmp files. */
    return bc_poison(bc, rk_errwrap(err, rc, "stage"), err);
}

/* The buffered records and hint entries handed to the worker (the job takes the buffers). */
static int stage_queue(struct bitcask *bc, struct rk_errmsg *err)
{
    struct bc_stage *st = bc->stage;
    uint32_t id = st->first_new + st->n_out - 1;
    if (st->dlen > 0) {
        int rc = bc_io_tmp_append(bc, id, false, st->dbuf, st->dlen, err);
        if (rc != RK_OK)
            return stage_fail(bc, rc, err);
        st->dbuf = NULL;
        st->dlen = st->dcap = 0;
    }
    if (st->hlen > 0) {
        int rc = bc_io_tmp_append(bc, id, true, st->hbuf, st->hlen, err);
        if (rc != RK_OK)
            return stage_fail(bc, rc, err);
        st->hbuf = NULL;
        st->hlen = st->hcap = 0;
    }
    return RK_OK;
}

static int stage_reserve(struct bitcask *bc, uint8_t **buf, size_t *cap, size_t need,
                         struct rk_errmsg *err)
{
    if (!rk_grow(bc->alloc, (void **)buf, cap, need, 1))
        return rk_errf(err, RK_ENOMEM, "stage: no memory for %zu bytes", need);
    return RK_OK;
}

/* The open output ends: its hint's trailer, everything queued, both files synced. */
static int stage_close_output(struct bitcask *bc, struct rk_errmsg *err)
{
    struct bc_stage *st = bc->stage;
    uint32_t id = st->first_new + st->n_out - 1;
    int rc = stage_reserve(bc, &st->hbuf, &st->hcap, st->hlen + BC_HINT_TRAILER_BYTES, err);
    if (rc != RK_OK)
        return stage_fail(bc, rc, err);
    bc_hint_trailer_encode(st->hbuf + st->hlen, BC_HINT_MAGIC, id, st->hint_crc, st->hint_entries,
                           st->data_size, st->out_max_index);
    st->hlen += BC_HINT_TRAILER_BYTES;
    rc = stage_queue(bc, err);
    if (rc == RK_OK && (rc = bc_io_tmp_sync(bc, id, false, err)) == RK_OK)
        rc = bc_io_tmp_sync(bc, id, true, err);
    if (rc != RK_OK)
        return bc->poison != RK_OK ? rc : stage_fail(bc, rc, err);
    st->open = false;
    return RK_OK;
}

/* Room for a record of len bytes: the open output, or a new one when it is full (as merge's). */
static int stage_room(struct bitcask *bc, uint64_t len, struct rk_errmsg *err)
{
    struct bc_stage *st = bc->stage;
    if (st->open && st->data_size > BC_COMMIT_BYTES && st->data_size + len > bc->max_file_bytes) {
        int rc = stage_close_output(bc, err);
        if (rc != RK_OK)
            return rc;
    }
    if (st->open)
        return RK_OK;
    if (st->n_out >= BC_MAX_FILES / 2)
        return stage_fail(bc, rk_errf(err, RK_ENOSPC, "stage: too many outputs"), err);
    uint32_t id = st->first_new + st->n_out;
    /* FORMAT 2: a data file starts with a commit record; a staged output, like a merged one,
     * needs no other (synced whole with its hint before the switch). */
    uint8_t rec[BC_COMMIT_BYTES];
    bc_commit_encode(rec, 0, 0);
    int rc = bc_io_tmp_create(bc, id, false, rec, err);
    if (rc == RK_OK)
        rc = bc_io_tmp_create(bc, id, true, NULL, err);
    if (rc != RK_OK)
        return stage_fail(bc, rc, err);
    st->n_out++;
    st->open = true;
    st->data_size = BC_COMMIT_BYTES;
    st->hint_entries = 0;
    st->hint_crc = 0;
    st->out_max_index = 0;
    return RK_OK;
}

int bc_stage_put(struct bitcask *bc, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                 uint32_t val_len, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL && bc->stage != NULL && !bc->stage_committing);
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(val != NULL || val_len == 0);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (key_len > bc->max_key_bytes || val_len > bc->max_value_bytes)
        return rk_errf(err, RK_ETOOBIG,
                       "stage: a record of a %lu-byte key and a %lu-byte value "
                       "is over the limits",
                       (unsigned long)key_len, (unsigned long)val_len);
    struct bc_stage *st = bc->stage;
    size_t len = (size_t)bc_rec_bytes(key_len, val_len);
    size_t hlen = BC_HINT_HEADER_BYTES + (size_t)key_len;
    rc = stage_room(bc, len, err);
    if (rc != RK_OK)
        return rc;
    if ((rc = stage_reserve(bc, &st->dbuf, &st->dcap, st->dlen + len, err)) != RK_OK ||
        (rc = stage_reserve(bc, &st->hbuf, &st->hcap, st->hlen + hlen, err)) != RK_OK)
        return rc; /* nothing staged */
    uint8_t *d = st->dbuf + st->dlen;
    bc_rec_encode(d, st->index, BC_REC_END, key_len, val_len);
    if (key_len > 0)
        memcpy(d + BC_HEADER_BYTES, key, key_len);
    if (val_len > 0)
        memcpy(d + BC_HEADER_BYTES + key_len, val, val_len);
    bc_rec_seal(d, len);
    uint8_t *h = st->hbuf + st->hlen;
    bc_rec_encode(h, st->index, BC_REC_END, key_len, val_len);
    bc_put_u64(h + 20, st->data_size);
    if (key_len > 0)
        memcpy(h + BC_HINT_HEADER_BYTES, key, key_len);
    bc_put_u32(h, rk_crc32c(0, h + 4, hlen - 4));
    st->hint_crc = rk_crc32c(st->hint_crc, h, hlen);
    st->dlen += len;
    st->hlen += hlen;
    st->data_size += len;
    st->hint_entries++;
    st->out_max_index = st->index;
    st->keys++;
    return st->dlen >= BC_STAGE_FLUSH_BYTES ? stage_queue(bc, err) : RK_OK;
}

int bc_stage_flush(struct bitcask *bc, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL && bc->stage != NULL && !bc->stage_committing);
    int rc = bc_check_poison(bc, err);
    if (rc == RK_OK && bc->stage->open)
        rc = stage_queue(bc, err);
    if (rc == RK_OK && !bc->deferred)
        rc = bc_io_run_now(bc, err);
    return rc;
}

/* MERGE's bytes (bitcask.c): the outputs as the merged files, every live file as an input. */
static uint8_t *stage_manifest(struct bitcask *bc, size_t *len)
{
    struct bc_stage *st = bc->stage;
    uint32_t n_old = 0;
    for (uint32_t id = bc->lo_id; id <= bc->active_id; id++)
        n_old += bc_file_made(bc_file_at(bc, id));
    *len = BC_MERGE_HEADER_BYTES + 4 * (size_t)n_old;
    uint8_t *buf = rk_malloc(bc->alloc, *len);
    if (buf == NULL)
        return NULL;
    bc_put_u32(buf + 4, BC_MERGE_MAGIC);
    bc_put_u32(buf + 8, st->first_new);
    bc_put_u32(buf + 12, st->n_out);
    bc_put_u32(buf + 16, n_old);
    size_t n = 0;
    for (uint32_t id = bc->lo_id; id <= bc->active_id; id++) {
        if (bc_file_made(bc_file_at(bc, id))) {
            RK_ASSERT(id < st->first_new); /* bc_stage_limit */
            bc_put_u32(buf + BC_MERGE_HEADER_BYTES + 4 * n++, id);
        }
    }
    RK_ASSERT(n == n_old);
    bc_put_u32(buf, rk_crc32c(0, buf + 4, *len - 4));
    return buf;
}

int bc_stage_commit(struct bitcask *bc, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL && bc->stage != NULL && !bc->stage_committing);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (bc->merge != NULL)
        return rk_errf(err, RK_EBUSY, "stage: a merge is in progress (one MERGE at a time)");
    if (bc->batch_len > 0)
        return rk_errf(err, RK_EINVAL, "stage: a batch is open; end it first");
    struct bc_stage *st = bc->stage;
    /* The MARK: the applied index after the switch (and after a reopen) is the stage's. */
    rc = stage_room(bc, BC_HEADER_BYTES, err);
    if (rc != RK_OK)
        return rc;
    rc = stage_reserve(bc, &st->dbuf, &st->dcap, st->dlen + BC_HEADER_BYTES, err);
    if (rc != RK_OK)
        return stage_fail(bc, rc, err);
    uint8_t *d = st->dbuf + st->dlen;
    bc_rec_encode(d, st->index, BC_REC_MARK | BC_REC_END, 0, 0);
    bc_rec_seal(d, BC_HEADER_BYTES);
    st->dlen += BC_HEADER_BYTES;
    st->data_size += BC_HEADER_BYTES;
    st->out_max_index = st->index;
    rc = stage_close_output(bc, err);
    if (rc != RK_OK)
        return rc;
    size_t len = 0;
    uint8_t *manifest = stage_manifest(bc, &len);
    if (manifest == NULL)
        return stage_fail(bc, rk_errf(err, RK_ENOMEM, "no memory for the manifest"), err);
    rc = bc_io_stage_commit(bc, st->first_new, st->keys, manifest, len, err);
    if (rc != RK_OK) {
        rk_free(bc->alloc, manifest);
        return stage_fail(bc, rc, err);
    }
    bc->stage_committing = true;
    return bc->deferred ? RK_OK : bc_io_run_now(bc, err);
}

void bc_stage_abort(struct bitcask *bc)
{
    struct bc_stage *st = bc->stage;
    if (st == NULL)
        return;
    RK_ASSERT(!bc->stage_committing);
    bc->stage_floor = st->first_new + st->n_out;
    struct rk_errmsg err;
    for (uint32_t i = 0; i < st->n_out && bc->poison == RK_OK; i++) {
        /* Queued after the stage's own ops (D1). Should it fail, the next open removes them. */
        if (bc_io_tmp_remove(bc, st->first_new + i, &err) != RK_OK)
            break;
    }
    bc_stage_free(bc);
    if (!bc->deferred && bc->poison == RK_OK)
        (void)bc_io_run_now(bc, &err);
}

/* ---- the worker's half ------------------------------------------------------------------ */

/* Step 2: MERGE.tmp written, synced, renamed to MERGE, made durable. */
static int stage_write_manifest(struct fs *fs, const uint8_t *manifest, size_t len,
                                struct rk_errmsg *err)
{
    struct fs_file *f;
    int rc = fs->ops->open(fs, BC_MERGE_TMP_NAME, FS_CREATE | FS_EXCL, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: create", BC_MERGE_TMP_NAME);
    rc = fs->ops->append(fs, f, manifest, len, err);
    if (rc == RK_OK)
        rc = fs->ops->sync(fs, f, err);
    fs->ops->close(fs, f);
    if (rc == RK_OK)
        rc = fs->ops->rename(fs, BC_MERGE_TMP_NAME, BC_MERGE_NAME, err);
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "writing %s", BC_MERGE_NAME);
}

/* Step 3: the outputs under their final names, made durable. */
static int stage_rename_outputs(struct fs *fs, uint32_t first_new, uint32_t n_new,
                                struct rk_errmsg *err)
{
    char from[BC_NAME_BYTES];
    char to[BC_NAME_BYTES];
    int rc = RK_OK;
    for (uint32_t i = 0; rc == RK_OK && i < n_new; i++) {
        bc_name(from, first_new + i, "data.tmp");
        bc_name(to, first_new + i, "data");
        rc = fs->ops->rename(fs, from, to, err);
        bc_name(from, first_new + i, "hint.tmp");
        bc_name(to, first_new + i, "hint");
        if (rc == RK_OK)
            rc = fs->ops->rename(fs, from, to, err);
    }
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "renaming the staged files");
}

/* Step 4: the outputs loaded (from their hints) into a store of the worker's own. */
static int stage_load(struct fs *fs, const struct rk_alloc *alloc, uint32_t first_new,
                      uint32_t n_new, uint64_t keys, struct bitcask **out, struct rk_errmsg *err)
{
    struct bc_config c = {.fs = fs, .alloc = alloc};
    struct bitcask *sh = NULL;
    int rc = bc_new(&c, &sh, err);
    if (rc != RK_OK)
        return rc;
    *out = sh;
    uint32_t *ids = rk_malloc(alloc, (size_t)n_new * sizeof(*ids));
    sh->lo_id = first_new;
    sh->active_id = first_new + n_new;
    if (ids == NULL || bc_files_cover(sh, sh->active_id) != RK_OK) {
        rk_free(alloc, ids);
        return rk_errf(err, RK_ENOMEM, "no memory to load the staged files");
    }
    /* The records came in the keydir's canonical order (ascending hash): loaded into a table
     * sized for the keys so far, they would crowd its first slots (recover.c,
     * presize_from_hints). */
    (void)bc_kd_presize(&sh->kd, keys);
    for (uint32_t i = 0; i < n_new; i++)
        ids[i] = first_new + i;
    rc = bc_recover_inputs(sh, ids, n_new, NULL, NULL, err);
    rk_free(alloc, ids);
    for (uint32_t id = sh->lo_id; id < sh->active_id; id++) {
        struct bc_file *f = bc_file_at(sh, id);
        if (f->f != NULL)
            fs->ops->close(fs, f->f); /* the owner opens its own (bc_stage_switch) */
        f->f = NULL;
    }
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "loading the staged files");
}

/* Step 5: the inputs removed, then MERGE. */
static int stage_remove_inputs(struct fs *fs, const uint8_t *manifest, struct rk_errmsg *err)
{
    uint32_t n_old = bc_get_u32(manifest + 16);
    char name[BC_NAME_BYTES];
    int rc = RK_OK;
    for (uint32_t i = 0; rc == RK_OK && i < n_old; i++) {
        uint32_t id = bc_get_u32(manifest + BC_MERGE_HEADER_BYTES + 4 * (size_t)i);
        bc_name(name, id, "data");
        rc = fs->ops->remove(fs, name, err);
        bc_name(name, id, "hint");
        if (rc == RK_OK && (rc = fs->ops->remove(fs, name, err)) == RK_ENOENT)
            rc = RK_OK;
    }
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    if (rc == RK_OK)
        rc = fs->ops->remove(fs, BC_MERGE_NAME, err);
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "removing the replaced files");
}

int bc_stage_run_commit(struct fs *fs, const struct rk_alloc *alloc, uint32_t first_new,
                        uint64_t keys, const uint8_t *manifest, size_t manifest_len,
                        struct bitcask **shadow, struct rk_errmsg *err)
{
    RK_ASSERT(manifest_len >= BC_MERGE_HEADER_BYTES);
    RK_ASSERT(bc_get_u32(manifest + 8) == first_new);
    uint32_t n_new = bc_get_u32(manifest + 12);
    *shadow = NULL;
    /* Step 1's end: the outputs' names durable (their bytes were synced by the ops before). */
    int rc = fs->ops->sync_dir(fs, err);
    if (rc == RK_OK)
        rc = stage_write_manifest(fs, manifest, manifest_len, err);
    if (rc == RK_OK)
        rc = stage_rename_outputs(fs, first_new, n_new, err);
    if (rc == RK_OK)
        rc = stage_load(fs, alloc, first_new, n_new, keys, shadow, err);
    if (rc == RK_OK)
        rc = stage_remove_inputs(fs, manifest, err);
    return rc;
}

/* ---- the owner's half of the switch ------------------------------------------------------- */

int bc_stage_switch(struct bitcask *bc, struct bitcask *sh, struct rk_errmsg *err)
{
    struct bc_stage *st = bc->stage;
    RK_ASSERT(st != NULL && bc->stage_committing && sh != NULL);
    RK_ASSERT(bc->batch_len == 0);
    uint32_t n_new = st->n_out;
    /* The outputs opened under their final names before anything changes. */
    size_t cap = (size_t)n_new + 1 + bc->merge_id_gap;
    struct bc_file *files = rk_malloc(bc->alloc, cap * sizeof(*files));
    if (files == NULL) {
        bc_close(sh);
        return rk_errf(err, RK_ENOMEM, "stage: no memory for the file table");
    }
    memset(files, 0, cap * sizeof(*files));
    for (uint32_t i = 0; i < n_new; i++) {
        char name[BC_NAME_BYTES];
        uint32_t id = st->first_new + i;
        const struct bc_file *sf = bc_file_at(sh, id);
        bc_name(name, id, "data");
        int rc = bc->fs->ops->open(bc->fs, name, 0, &files[i].f, err);
        if (rc != RK_OK) {
            for (uint32_t k = 0; k < i; k++)
                bc->fs->ops->close(bc->fs, files[k].f);
            rk_free(bc->alloc, files);
            bc_close(sh);
            return rk_errwrap(err, rc, "stage: opening %s", name);
        }
        files[i].size = sf->size;
        files[i].written = sf->size; /* whole on disk (io.c, D2) */
        files[i].live = sf->live;
        files[i].roll_hint = false; /* a merged file's hint */
    }
    for (uint32_t id = bc->lo_id; id <= bc->active_id; id++) {
        struct bc_file *f = bc_file_at(bc, id);
        if (f->f != NULL)
            bc->fs->ops->close(bc->fs, f->f);
    }
    rk_free(bc->alloc, bc->files);
    bc->files = files;
    bc->files_cap = cap;
    bc->lo_id = st->first_new;
    bc->active_id = st->first_new + n_new + bc->merge_id_gap; /* made at the next append */
    /* The keydirs trade places: the shadow leaves with the old one (freed by the worker). */
    struct bc_keydir old = bc->kd;
    bc->kd = sh->kd;
    sh->kd = old;
    RK_ASSERT(sh->applied_index == st->index);
    bc->live_bytes = sh->live_bytes;
    bc->applied_index = st->index;
    bc->batch_index = st->index;
    bc->durable_index = st->index;
    bc->covered = 0;
    bc->active_unsynced = false;
    bc->dir_dirty = false;
    bc->stage_floor = 0;
    bc->stages_done++;
    if (bc->deferred) { /* freed with the next job, by the worker (io.c) */
        bc_close(bc->garbage);
        bc->garbage = sh;
    } else {
        bc_close(sh);
    }
    bc_stage_free(bc);
    RK_ASSERT_SLOW(bc_kd_valid(&bc->kd));
    return RK_OK;
}
