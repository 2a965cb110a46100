/*
 * bitcask.c — the storage engine (bitcask.h): records, batches, reads, sync, the kv_store.
 * Recovery is in recover.c, merge in merge.c, the keydir in keydir.c.
 *
 * STATE OF THE DIRECTORY
 *
 *   NNNNNNNNNN.data    data files, ids 1.. ; the highest is the last one written to
 *   NNNNNNNNNN.hint    beside a data file written by merge, or one the store rolled away from
 *                      (ROLL HINTS of bitcask.h, hint.c)
 *   *.tmp              a merge in progress (data, hint, MERGE.tmp), a staged replacement's
 *                      outputs (stage.c), or a roll hint being written; never read as data
 *   MERGE              a merge's manifest: [crc32c u32][magic u32][first new id u32]
 *                      [new ids u32][old ids u32][old id u32]...; present only while a merge
 *                      (or a staged replacement: stage.c, every file an input) switches files
 *                      (between its commit and its cleanup)
 *
 * Invariants:
 *   B1  Only the highest-id data file may end with bytes that are not durable: a file is synced
 *       before the next id is created (rotation), merge syncs everything before it starts, and
 *       recovery syncs the last file and the directory (a reopen without a crash finds bytes
 *       and names the previous process never made durable).
 *   B2  Per key, reading the data files in id order and each file front to back meets the key's
 *       records in non-decreasing index order; so "a later record wins" at recovery is "the
 *       highest index wins", and a tombstone can simply remove the key. (Appends are in index
 *       order; a merged file holds only records the keydir pointed to — the newest of their
 *       key, whose key then has no record in any other surviving file — see MERGE below.)
 *   B3  The keydir points only at bytes that were written: entries of the open batch point into
 *       its buffer (BC_FILE_PENDING) and move to the file only after the append succeeded; a
 *       failed append or sync poisons the store (every later call fails; reopen rebuilds).
 *   B4  applied_index is the index of the last batch whose append succeeded.
 *   B5  Every keydir entry with file_id BC_FILE_PENDING is pend[i] for exactly one i, with
 *       pend_off[i] == its offset; every other pend[i] is NULL (a key written again or deleted
 *       in the same batch); pend_off ascends. So batch_settle needs no key lookups.
 *
 *      bc_put/bc_del             bc_end_batch               bc_sync
 *   (records in the buffer) ---> (appended: written) -----> (durable)
 *            |                         |  failure                |  failure
 *            +-------------------------+-------------------------+------> poisoned (reopen)
 *
 * BATCHES AND THE TORN TAIL
 *
 * bc_put and bc_del append records to a memory buffer (CRCs filled in at bc_end_batch, once
 * the flags are final); a put or del for a new index closes the batch before it by setting
 * BC_REC_END on its last record. bc_end_batch closes the last batch and writes the whole buffer
 * with one append. Recovery applies a batch only when it meets its END record.
 *
 * The torn-tail rule (FORMAT 2 of bitcask.h; the decision is argued in core/log/seglog.c, TORN
 * OR CORRUPT, and is the same here). C1: every data file starts with a commit record, and every
 * fs sync of a data file the store appends to (bc_sync, rotation, recovery's final sync) first
 * appends one after the batches no commit record covers (seal_active); a sync with nothing new
 * writes nothing. C2 (fs.h D1): a crash keeps the durable bytes and a prefix of the rest whose
 * last sector may end in garbage, so a commit record that checks out proves the bytes before it
 * are as written. So, in the LAST data file (if it has no hint: merge wrote and synced it whole
 * with its hint before it committed), a record that does not check out, or whole records that end
 * without END, after which no commit record checks out, lie in bytes no sync returned for: a torn
 * tail, cut from the start of its batch (truncate + sync). A bad record with a commit record
 * after it, any bad record or incomplete batch in another file, a file the store moved on from
 * that does not end with a commit record, a commit record inside a batch or with a wrong offset
 * or applied index: corruption, and the open fails with RK_ECORRUPT naming file and offset and a
 * struct bc_damage (bitcask.h). A bad commit record with nothing after it is taken as torn, and
 * costs nothing (the batches before it check out and are kept). What the rule cannot tell apart:
 * damage that destroys the last batches of the last file and the commit record after them
 * together (a truncated file) — the Raft log still has those batches and applies them again. A
 * bad read is not a bad disk: every failed check is read again, and only two reads that agree
 * byte for byte are believed (bc_check_record, bc_read_entry).
 *
 * MERGE (merge.c): the protocol and its crash analysis
 *
 * Inputs: the oldest data files, every one immutable (synced whole: B1), up to a last input L;
 * every file older than an input is an input. Outputs: ids from L + 1, free up to the next file
 * (bc_config.merge_id_gap keeps ids free above each new active file; an active file not yet
 * made is moved up), so the merged files sort after every input and before every file not an
 * input — the active one and whatever is written while the merge runs. bc_merge first closes
 * the active file (sync) so that every file is an input; the background merge (bitcask.h,
 * MERGE IN STEPS in merge.c) takes only what is immutable already and does no I/O on the
 * owner's thread. B2 holds: a merged record is the newest of its key among the inputs, every
 * record of the key in a later file is newer and sorts after it, and a later tombstone still
 * removes it at open.
 *   0. The inputs are durable (B1). (Dropping an old record is only safe if the record that
 *      superseded it is durable.)
 *   1. Load the inputs into a keydir of the merge's own (each key's newest record among them;
 *      tombstones remove). Read every input record (checked); copy those that keydir points at
 *      — END set, each its own batch — into NNNNNNNNNN.data.tmp, rotating at max_file_bytes,
 *      with a hint entry each in NNNNNNNNNN.hint.tmp; end with a MARK record holding the highest
 *      index of all input records. Tombstones are dropped: every older record of their key is
 *      in an input, which is removed, and every record in a later file is newer. Sync every tmp
 *      file; sync_dir.
 *   2. Write MERGE.tmp (the manifest), sync it, rename it to MERGE, sync_dir.   <- commit point
 *   3. Rename each tmp file to its final name; sync_dir.
 *      (Install: each keydir entry that still points at the input record copied is pointed at
 *      its copy; entries written since stay. The inputs are read until then.)
 *   4. Remove every input data file and its hint; sync_dir.
 *   5. Remove MERGE; sync_dir.
 * Recovery (recover.c), before it reads any data file:
 *   - MERGE present and valid: roll forward — rename the tmp files still there, check that
 *     every merged data file exists, remove the listed inputs (missing is fine), sync_dir,
 *     remove MERGE, sync_dir. Idempotent, so a crash during it is repeated harmlessly.
 *   - MERGE present but invalid: corruption (it was durable before any rename), open fails.
 *   - Then every *.tmp left (no MERGE: the merge never committed) is removed, and stray hints.
 * Crash analysis (D1-D3 of fs.h):
 *   during 0-1: no MERGE; tmp files are removed at open; inputs untouched.             same
 *   during 2 before the rename is durable: MERGE.tmp, no MERGE: removed.                same
 *   after the rename is durable: the tmp files were synced and their names made durable
 *     (sync_dir in 1) before it, so every merged file is complete: roll forward. The merged
 *     files hold exactly the live records of the inputs, A is untouched and durable.    same
 *   during 3 (a rename undone or not, D3 atomic): tmp or final name exists: roll forward.
 *   during 4: some inputs may be back (D2): roll forward removes them.                  same
 *   during 5: MERGE may be back: roll forward finds only finals and no inputs.          same
 * The live store is never changed by steps 1-5 (only install changes it, after step 3), so a
 * failed merge leaves it usable: before the commit the tmp files are removed (should that fail,
 * no merge starts until a reopen removes them); after it, no merge starts until a reopen
 * finishes it. bc_merge, which promised a merged store, poisons the store in those two cases.
 * Crash rules (tests/test_bitcask.c, "merge in steps"): a crash at any step, the live store
 * written meanwhile included, reopens with every key's newest value.
 *
 * Ownership: struct bitcask owns its files, keydir and buffers; struct fs is borrowed.
 */
#include "bitcask/bitcask_int.h"

#include <stdio.h>

#include "common/assert.h"
#include "common/crc32c.h"

#define BC_DEFAULT_MAX_FILE_BYTES (64ull << 20)
#define BC_READ_ATTEMPTS          4
/* A buffer grown past this by one big record is given back afterwards. */
#define BC_KEEP_BUFFER_BYTES (1u << 20)
#define BC_KEEP_PEND         4096u /* pend slots kept between batches (B5) */

static const struct kv_store_ops bc_kv_ops;

/* ---- record codec ----------------------------------------------------------------------- */

void bc_rec_encode(uint8_t *p, uint64_t index, uint32_t flags, uint32_t key_len, uint32_t val_len)
{
    RK_ASSERT((flags & ~(BC_REC_TOMBSTONE | BC_REC_END | BC_REC_MARK | BC_REC_COMMIT)) == 0);
    RK_ASSERT(key_len <= BC_REC_KEY_MASK);
    bc_put_u32(p, 0);
    bc_put_u64(p + 4, index);
    bc_put_u32(p + 12, flags | key_len);
    bc_put_u32(p + 16, val_len);
}

void bc_rec_decode(const uint8_t *p, struct bc_rec *r)
{
    uint32_t kw = bc_get_u32(p + 12);
    r->crc = bc_get_u32(p);
    r->index = bc_get_u64(p + 4);
    r->flags = kw & ~BC_REC_KEY_MASK;
    r->key_len = kw & BC_REC_KEY_MASK;
    r->val_len = bc_get_u32(p + 16);
}

const char *bc_rec_header_problem(const struct bc_rec *r)
{
    if ((r->flags & BC_REC_FLAGS_RESERVED) != 0)
        return "reserved flag bits set";
    if (r->key_len > BC_MAX_KEY_BYTES)
        return "key size over the limit";
    if (r->val_len > BC_MAX_VALUE_BYTES)
        return "value size over the limit";
    if ((r->flags & BC_REC_TOMBSTONE) != 0 && r->val_len != 0)
        return "tombstone with a value";
    if ((r->flags & BC_REC_MARK) != 0 &&
        ((r->flags & BC_REC_TOMBSTONE) != 0 || r->key_len != 0 || r->val_len != 0))
        return "index mark with a key or value";
    if ((r->flags & BC_REC_COMMIT) != 0 &&
        (r->flags != BC_REC_COMMIT || r->key_len != 0 || r->val_len != BC_COMMIT_VALUE_BYTES))
        return "commit record with other flags, a key, or a value not of 8 bytes";
    return NULL;
}

void bc_commit_encode(uint8_t *p, uint64_t index, uint64_t off)
{
    bc_rec_encode(p, index, BC_REC_COMMIT, 0, BC_COMMIT_VALUE_BYTES);
    bc_put_u64(p + BC_HEADER_BYTES, off);
    bc_rec_seal(p, BC_COMMIT_BYTES);
}

bool bc_commit_at(const uint8_t *p, uint64_t off, uint64_t *index)
{
    if (bc_get_u32(p + 12) != BC_REC_COMMIT || bc_get_u32(p + 16) != BC_COMMIT_VALUE_BYTES ||
        bc_get_u64(p + BC_HEADER_BYTES) != off || !bc_rec_crc_ok(p, BC_COMMIT_BYTES))
        return false;
    *index = bc_get_u64(p + 4);
    return true;
}

void bc_rec_seal(uint8_t *p, size_t len)
{
    RK_ASSERT(len >= BC_HEADER_BYTES);
    bc_put_u32(p, rk_crc32c(0, p + 4, len - 4));
}

bool bc_rec_crc_ok(const uint8_t *p, size_t len)
{
    RK_ASSERT(len >= BC_HEADER_BYTES);
    return bc_get_u32(p) == rk_crc32c(0, p + 4, len - 4);
}

/* ---- names and files -------------------------------------------------------------------- */

void bc_name(char *out, uint32_t id, const char *ext)
{
    RK_ASSERT(id >= 1 && id <= BC_MAX_FILE_ID);
    /* "%010lu.%s" by hand: it names the file of every record read and written, and snprintf
     * was 4% of a simulation's instructions. A uint32_t has at most 10 digits. */
    for (int i = 9; i >= 0; i--, id /= 10)
        out[i] = (char)('0' + id % 10);
    out[10] = '.';
    size_t len = strlen(ext);
    RK_ASSERT(11 + len < BC_NAME_BYTES);
    memcpy(out + 11, ext, len + 1);
}

uint32_t bc_name_id(const char *name, const char *ext)
{
    uint64_t id = 0;
    for (int i = 0; i < 10; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        id = id * 10 + (uint64_t)(name[i] - '0');
    }
    if (name[10] != '.' || strcmp(name + 11, ext) != 0)
        return 0;
    return id >= 1 && id <= BC_MAX_FILE_ID ? (uint32_t)id : 0;
}

struct bc_file *bc_file_at(struct bitcask *bc, uint32_t id)
{
    if (id < bc->lo_id || id > bc->active_id)
        return NULL;
    return &bc->files[id - bc->lo_id];
}

int bc_files_cover(struct bitcask *bc, uint32_t id)
{
    RK_ASSERT(id >= bc->lo_id);
    if (id - bc->lo_id >= BC_MAX_FILES)
        return RK_ENOMEM;
    size_t need = (size_t)(id - bc->lo_id) + 1;
    size_t had = bc->files_cap;
    if (!rk_grow(bc->alloc, (void **)&bc->files, &bc->files_cap, need, sizeof(*bc->files)))
        return RK_ENOMEM;
    if (bc->files_cap > had)
        memset(bc->files + had, 0, (bc->files_cap - had) * sizeof(*bc->files));
    return RK_OK;
}

int bc_poison(struct bitcask *bc, int rc, struct rk_errmsg *err)
{
    RK_ASSERT(rc != RK_OK);
    if (bc->poison == RK_OK) {
        bc->poison = rc;
        if (err != NULL)
            bc->poison_msg = *err;
        else
            rk_errf(&bc->poison_msg, rc, "%s", rk_strerror(rc));
    }
    return rc;
}

int bc_check_poison(const struct bitcask *bc, struct rk_errmsg *err)
{
    if (bc->poison == RK_OK)
        return RK_OK;
    return rk_errf(err, bc->poison, "bitcask failed earlier and must be reopened: %s",
                   bc->poison_msg.text);
}

/* ---- reads ------------------------------------------------------------------------------ */

int bc_pread(struct bitcask *bc, struct fs_file *f, uint64_t off, void *buf, size_t len,
             size_t *got, struct rk_errmsg *err)
{
    int rc = RK_OK;
    for (int attempt = 0; attempt < BC_READ_ATTEMPTS; attempt++) {
        rc = bc->fs->ops->pread(bc->fs, f, off, buf, len, got, err);
        if (rc != RK_EIO)
            break;
    }
    return rc;
}

/* NULL if buf (got bytes read for entry e) holds e's record intact, else what is wrong. */
static const char *entry_record_problem(const uint8_t *buf, size_t got, const struct bc_kent *e)
{
    size_t len = (size_t)bc_rec_bytes(e->key_len, e->val_len);
    if (got < len)
        return "record runs past the end of the file";
    if (!bc_rec_crc_ok(buf, len))
        return "crc mismatch";
    struct bc_rec r;
    bc_rec_decode(buf, &r);
    if (r.key_len != e->key_len || r.val_len != e->val_len || r.index != e->index ||
        (r.flags & (BC_REC_TOMBSTONE | BC_REC_MARK)) != 0)
        return "record does not match the keydir";
    if (e->key_len > 0 && memcmp(buf + BC_HEADER_BYTES, e->key, e->key_len) != 0)
        return "record holds another key";
    return NULL;
}

/* A record that does not check out in a data file whose hint recovery may have believed
 * (recover.c, HINTS: a hint is not checked against its data file): the hint goes, so that the
 * next open scans the file (only on RK_ECORRUPT, two reads alike: a read error may pass) and finds
 * the damage where it is (FORMAT 2: a struct bc_damage, and the replica's repair from peers)
 * instead of believing the hint again. True if one was there. */
static bool drop_hint(struct bitcask *bc, uint32_t id)
{
    /* A merged file is not sealed by commit records (its hint stands for them: recover.c): it
     * keeps its hint, and its damage is found at read only. */
    if (bc->dry != NULL || !bc_file_at(bc, id)->roll_hint)
        return false;
    char name[BC_NAME_BYTES];
    bc_name(name, id, "hint");
    struct rk_errmsg scratch;
    if (bc->fs->ops->remove(bc->fs, name, &scratch) != RK_OK)
        return false;
    (void)bc->fs->ops->sync_dir(bc->fs, &scratch); /* best effort: else a crash brings it back */
    return true;
}

int bc_read_entry(struct bitcask *bc, const struct bc_kent *e, uint8_t **buf, size_t *cap,
                  const uint8_t **val, struct rk_errmsg *err)
{
    struct bc_file *f = bc_file_at(bc, e->file_id);
    const uint8_t *queued = bc_io_find(bc, e);
    if (queued != NULL) { /* deferred: not yet known written (io.c, D2) */
        *val = queued + BC_HEADER_BYTES + e->key_len;
        return RK_OK;
    }
    RK_ASSERT(f != NULL && f->f != NULL);
    size_t len = (size_t)bc_rec_bytes(e->key_len, e->val_len);
    if (!rk_grow(bc->alloc, (void **)buf, cap, len, 1))
        return rk_errf(err, RK_ENOMEM, "no memory for a record of %zu bytes", len);
    char name[BC_NAME_BYTES];
    bc_name(name, e->file_id, "data");
    uint32_t prev_print = 0;
    for (int attempt = 0; attempt < BC_READ_ATTEMPTS; attempt++) {
        size_t got = 0;
        int rc = bc_pread(bc, f->f, e->offset, *buf, len, &got, err);
        if (rc != RK_OK)
            return rk_errwrap(err, rc, "%s: offset %llu", name, (unsigned long long)e->offset);
        const char *problem = entry_record_problem(*buf, got, e);
        if (problem == NULL) {
            *val = *buf + BC_HEADER_BYTES + e->key_len;
            return RK_OK;
        }
        uint32_t print = rk_crc32c(0, *buf, got);
        if (attempt > 0 && print == prev_print) {
            bool dropped = drop_hint(bc, e->file_id);
            return rk_errf(err, RK_ECORRUPT, "%s: offset %llu: %s%s", name,
                           (unsigned long long)e->offset, problem,
                           dropped ? " (its hint removed: the next open scans the file)" : "");
        }
        prev_print = print;
    }
    return rk_errf(err, RK_EIO, "%s: offset %llu: %d reads of the record disagree", name,
                   (unsigned long long)e->offset, BC_READ_ATTEMPTS);
}

/* Gives back a buffer that one big record grew. */
static void trim_buffer(struct bitcask *bc, uint8_t **buf, size_t *cap)
{
    if (*cap > BC_KEEP_BUFFER_BYTES) {
        rk_free(bc->alloc, *buf);
        *buf = NULL;
        *cap = 0;
    }
}

int bc_get(struct bitcask *bc, const uint8_t *key, uint32_t key_len, const uint8_t **val,
           uint32_t *val_len, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(val != NULL && val_len != NULL);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (key_len > BC_MAX_KEY_BYTES)
        return RK_ENOENT;
    const struct bc_kent *e = bc_kd_find(&bc->kd, bc_kd_hash(key, key_len), key, key_len);
    if (e == NULL)
        return RK_ENOENT;
    if (e->file_id == BC_FILE_PENDING) {
        RK_ASSERT(e->offset + bc_rec_bytes(e->key_len, e->val_len) <= bc->batch_len);
        *val = bc->batch + e->offset + BC_HEADER_BYTES + e->key_len;
        *val_len = e->val_len;
        return RK_OK;
    }
    if (bc->rbuf_cap > BC_KEEP_BUFFER_BYTES &&
        bc_rec_bytes(e->key_len, e->val_len) <= BC_KEEP_BUFFER_BYTES)
        trim_buffer(bc, &bc->rbuf, &bc->rbuf_cap);
    rc = bc_read_entry(bc, e, &bc->rbuf, &bc->rbuf_cap, val, err);
    if (rc == RK_OK)
        *val_len = e->val_len;
    return rc;
}

/* ---- writes ----------------------------------------------------------------------------- */

/* Checks a put or del before anything changes (S1), and reserves its room in the buffer. */
static int check_write(struct bitcask *bc, uint64_t index, uint32_t key_len, uint32_t val_len,
                       struct rk_errmsg *err)
{
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    if (bc->stage_committing) /* stage.c: the live files are about to be replaced */
        return rk_errf(err, RK_EBUSY, "a staged replacement is switching in");
    /* Programmer errors: the state machine applies indexes in order. */
    RK_ASSERT(index >= bc->applied_index);
    RK_ASSERT(bc->batch_len == 0 || index >= bc->batch_index);
    if (key_len > bc->max_key_bytes)
        return rk_errf(err, RK_ETOOBIG, "key of %lu bytes is over the limit of %lu bytes",
                       (unsigned long)key_len, (unsigned long)bc->max_key_bytes);
    if (val_len > bc->max_value_bytes)
        return rk_errf(err, RK_ETOOBIG, "value of %lu bytes is over the limit of %lu bytes",
                       (unsigned long)val_len, (unsigned long)bc->max_value_bytes);
    uint64_t rec_bytes = bc_rec_bytes(key_len, val_len);
    bool same_batch = bc->batch_len > bc->batch_start && index == bc->batch_index;
    uint64_t batch_bytes = (same_batch ? bc->batch_len - bc->batch_start : 0) + rec_bytes;
    if (batch_bytes > BC_MAX_BATCH_BYTES)
        return rk_errf(err, RK_ETOOBIG, "a batch of %llu bytes is over the limit of %lu bytes",
                       (unsigned long long)batch_bytes, (unsigned long)BC_MAX_BATCH_BYTES);
    if (!rk_grow(bc->alloc, (void **)&bc->batch, &bc->batch_cap, bc->batch_len + rec_bytes, 1) ||
        !rk_grow(bc->alloc, (void **)&bc->pend, &bc->cap_pend, bc->n_pend + 1, sizeof(*bc->pend)) ||
        !rk_grow(bc->alloc, (void **)&bc->pend_off, &bc->cap_pend_off, bc->n_pend + 1,
                 sizeof(*bc->pend_off)))
        return rk_errf(err, RK_ENOMEM, "no memory for a batch of %llu bytes",
                       (unsigned long long)(bc->batch_len + rec_bytes));
    return RK_OK;
}

/* B5: a pending entry's record is superseded (a later put or a del of its key in the batch):
 * its pend slot, found by its offset, no longer names it. */
static void pend_drop(struct bitcask *bc, const struct bc_kent *e)
{
    RK_ASSERT(e->file_id == BC_FILE_PENDING);
    size_t lo = 0, hi = bc->n_pend;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bc->pend_off[mid] < e->offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    RK_ASSERT(lo < bc->n_pend && bc->pend_off[lo] == e->offset && bc->pend[lo] == e);
    bc->pend[lo] = NULL;
}

/* Appends a record to the buffer (room reserved by check_write); returns its offset there. A
 * new index closes the batch before it. */
static size_t batch_add(struct bitcask *bc, uint64_t index, uint32_t flags, const uint8_t *key,
                        uint32_t key_len, const uint8_t *val, uint32_t val_len)
{
    if (bc->batch_len > bc->batch_start && index != bc->batch_index) {
        uint8_t *last = bc->batch + bc->batch_last;
        bc_put_u32(last + 12, bc_get_u32(last + 12) | BC_REC_END);
        bc->batch_start = bc->batch_len;
    }
    size_t off = bc->batch_len;
    uint8_t *p = bc->batch + off;
    RK_ASSERT(off + bc_rec_bytes(key_len, val_len) <= bc->batch_cap);
    bc_rec_encode(p, index, flags, key_len, val_len);
    if (key_len > 0)
        memcpy(p + BC_HEADER_BYTES, key, key_len);
    if (val_len > 0)
        memcpy(p + BC_HEADER_BYTES + key_len, val, val_len);
    bc->batch_len += (size_t)bc_rec_bytes(key_len, val_len);
    bc->batch_last = off;
    bc->batch_index = index;
    return off;
}

int bc_put(struct bitcask *bc, uint64_t index, const uint8_t *key, uint32_t key_len,
           const uint8_t *val, uint32_t val_len, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(val != NULL || val_len == 0);
    int rc = check_write(bc, index, key_len, val_len, err);
    if (rc != RK_OK)
        return rc;
    uint32_t hash = bc_kd_hash(key, key_len);
    struct bc_kent *e = bc_kd_find(&bc->kd, hash, key, key_len);
    bool fresh = e == NULL;
    if (fresh) {
        if (bc_kd_reserve(&bc->kd) != RK_OK || (e = bc_kd_new(&bc->kd, hash, key, key_len)) == NULL)
            return rk_errf(err, RK_ENOMEM, "no memory for a keydir entry");
    } else {
        if (e->file_id == BC_FILE_PENDING)
            pend_drop(bc, e);
        bc->live_bytes -= bc_rec_bytes(e->key_len, e->val_len);
        bc_live_move(bc, e->file_id, BC_FILE_PENDING, e->key_len, e->val_len);
    }
    /* Nothing can fail from here on. */
    e->offset = batch_add(bc, index, 0, key, key_len, val, val_len);
    bc->pend[bc->n_pend] = e; /* room reserved by check_write */
    bc->pend_off[bc->n_pend++] = e->offset;
    e->file_id = BC_FILE_PENDING;
    e->val_len = val_len;
    e->index = index;
    bc->live_bytes += bc_rec_bytes(key_len, val_len);
    if (fresh)
        bc_kd_insert(&bc->kd, e);
    bc_kd_step(&bc->kd);
    return RK_OK;
}

/* A tombstone is written even for an absent key: it carries the batch's index (S2). */
int bc_del(struct bitcask *bc, uint64_t index, const uint8_t *key, uint32_t key_len, bool *existed,
           struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    RK_ASSERT(key != NULL || key_len == 0);
    RK_ASSERT(existed != NULL);
    int rc = check_write(bc, index, key_len, 0, err);
    if (rc != RK_OK)
        return rc;
    struct bc_kent *e = bc_kd_find(&bc->kd, bc_kd_hash(key, key_len), key, key_len);
    *existed = e != NULL;
    batch_add(bc, index, BC_REC_TOMBSTONE, key, key_len, NULL, 0);
    if (e != NULL) {
        if (e->file_id == BC_FILE_PENDING)
            pend_drop(bc, e);
        bc->live_bytes -= bc_rec_bytes(e->key_len, e->val_len);
        bc_live_move(bc, e->file_id, BC_FILE_PENDING, e->key_len, e->val_len);
        bc_kd_remove(&bc->kd, e);
    }
    bc_kd_step(&bc->kd);
    return RK_OK;
}

/* FORMAT 2 (C1 of seglog.c, the same rule): appends a commit record to the active file if it has
 * bytes no commit record covers. Every fs sync of a data file the store appends to comes after
 * it (bc_sync, rotation; recovery seals the last file before its sync). */
static int seal_active(struct bitcask *bc, struct rk_errmsg *err)
{
    struct bc_file *a = bc_file_at(bc, bc->active_id);
    if (a == NULL || !bc_file_made(a) || bc->covered == a->size)
        return RK_OK;
    RK_ASSERT(bc->covered < a->size);
    uint8_t rec[BC_COMMIT_BYTES];
    bc_commit_encode(rec, bc->applied_index, a->size);
    int rc = bc->deferred
                 ? bc_io_append(bc, bc->active_id, a->size, rec, sizeof(rec), false, err)
                 : bc->fs->ops->append(bc->fs, a->f, rec, sizeof(rec), err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "append of a commit record");
    a->size += BC_COMMIT_BYTES;
    bc->covered = a->size;
    bc->commit_records++;
    return RK_OK;
}

/* The hint of the data file the store rolls away from, closed (synced whole) at size bytes
 * (bitcask.h, ROLL HINTS): queued for the worker, or written now when writes are not deferred.
 * A hint that could not be written is counted, not a failure: its file is scanned at open. */
static int roll_hint(struct bitcask *bc, uint32_t id, uint64_t size, struct rk_errmsg *err)
{
    bc_file_at(bc, id)->roll_hint = true;
    if (bc->deferred)
        return bc_io_hint(bc, id, size, err);
    struct rk_errmsg herr;
    if (bc_hint_build(bc->fs, bc->alloc, id, size, &herr) == RK_OK) {
        bc->hints_written++;
    } else {
        bc->hint_failures++;
        snprintf(bc->hint_failure, sizeof(bc->hint_failure), "%.150s", herr.text);
    }
    return RK_OK;
}

/* Makes the active file ready for len more bytes: rotates it (sealed and synced first: B1) when
 * they would take it past max_file_bytes, and creates it if it does not exist yet, starting with
 * its commit record at offset 0 (the format mark, FORMAT 2). */
static int prepare_active(struct bitcask *bc, size_t len, struct rk_errmsg *err)
{
    struct bc_file *a = bc_file_at(bc, bc->active_id);
    if (bc_file_made(a) && a->size > 0 && a->size + len > bc->max_file_bytes) {
        /* The new active file leaves merge_id_gap ids free below it for a merge's outputs
         * (merge.c: they must sort between their inputs and every later file). */
        uint32_t next = bc->active_id + 1 + bc->merge_id_gap;
        if (bc->active_id >= BC_MAX_FILE_ID - 1 - bc->merge_id_gap)
            return rk_errf(err, RK_ENOSPC, "out of data file ids");
        /* A staged replacement's outputs must sort after every live file (stage.c): until it
         * switches in, the active file grows past max_file_bytes rather than reach them. */
        if (next >= bc_stage_limit(bc))
            return RK_OK;
        if (bc_files_cover(bc, next) != RK_OK)
            return rk_errf(err, RK_ENOMEM, "no memory for the file table");
        a = bc_file_at(bc, bc->active_id); /* the table may have moved */
        if (bc->active_unsynced) {
            int rc = seal_active(bc, err);
            if (rc == RK_OK)
                rc = bc->deferred ? bc_io_sync(bc, bc->active_id, err)
                                  : bc->fs->ops->sync(bc->fs, a->f, err);
            bc->fs_syncs += !bc->deferred; /* deferred: counted when the job is done */
            if (rc != RK_OK)
                return rk_errwrap(err, rc, "sync before rotation");
            bc->active_unsynced = false;
        }
        int rc = roll_hint(bc, bc->active_id, a->size, err);
        if (rc != RK_OK)
            return rc;
        bc->active_id = next;
        a = bc_file_at(bc, bc->active_id);
    }
    if (bc->deferred && !bc_file_made(a)) {
        uint8_t rec[BC_COMMIT_BYTES];
        bc_commit_encode(rec, bc->applied_index, 0);
        int rc = bc_io_create(bc, bc->active_id, rec, err);
        if (rc != RK_OK)
            return rc;
        a->size = BC_COMMIT_BYTES;
        a->written = 0;
        bc->covered = BC_COMMIT_BYTES;
        bc->dir_dirty = true;
        bc->active_unsynced = true;
        bc->commit_records++;
    }
    if (a->f == NULL && !bc->deferred) {
        char name[BC_NAME_BYTES];
        bc_name(name, bc->active_id, "data");
        int rc = bc->fs->ops->open(bc->fs, name, FS_CREATE | FS_EXCL, &a->f, err);
        if (rc != RK_OK)
            return rk_errwrap(err, rc, "%s: create", name);
        a->size = 0;
        bc->dir_dirty = true;
        uint8_t rec[BC_COMMIT_BYTES];
        bc_commit_encode(rec, bc->applied_index, 0);
        rc = bc->fs->ops->append(bc->fs, a->f, rec, sizeof(rec), err);
        if (rc != RK_OK)
            return rk_errwrap(err, rc, "%s: append of its commit record", name);
        a->size = BC_COMMIT_BYTES;
        bc->covered = BC_COMMIT_BYTES;
        bc->active_unsynced = true;
        bc->commit_records++;
    }
    return RK_OK;
}

/* After the append: the keydir entries of the buffer's records point at the file (B3), found
 * through pend (B5), which is then empty. */
static void batch_settle(struct bitcask *bc, uint64_t file_off)
{
    for (size_t i = 0; i < bc->n_pend; i++) {
        struct bc_kent *e = bc->pend[i];
        if (e == NULL)
            continue;
        RK_ASSERT(e->file_id == BC_FILE_PENDING && e->offset == bc->pend_off[i]);
        e->file_id = bc->active_id;
        e->offset = file_off + bc->pend_off[i];
        bc_live_move(bc, BC_FILE_PENDING, e->file_id, e->key_len, e->val_len);
    }
    bc->n_pend = 0;
    if (bc->cap_pend > BC_KEEP_PEND) { /* a big batch once: not kept for the small ones */
        rk_free(bc->alloc, bc->pend);
        rk_free(bc->alloc, bc->pend_off);
        bc->pend = NULL;
        bc->pend_off = NULL;
        bc->cap_pend = bc->cap_pend_off = 0;
    }
}

/* bc_end_batch with deferred writes (io.c): placed now, the keydir pointing there, the bytes
 * in the job (the worker seals and appends them): a small batch copied into the job's packed
 * buffer (io.c, D5; the store keeps its buffer for the next batch), a big one's buffer moved
 * into the job (no copy). */
static int end_batch_deferred(struct bitcask *bc, struct rk_errmsg *err)
{
    int rc = prepare_active(bc, bc->batch_len, err);
    struct bc_file *a = bc_file_at(bc, bc->active_id);
    bool pack = bc->batch_len < BC_IO_PACK_BYTES;
    if (rc == RK_OK)
        rc = pack ? bc_io_append_batch(bc, bc->active_id, a->size, bc->batch, bc->batch_len, err)
                  : bc_io_append(bc, bc->active_id, a->size, bc->batch, bc->batch_len, true, err);
    if (rc != RK_OK)
        return bc_poison(bc, rc, err);
    batch_settle(bc, a->size);
    a->size += bc->batch_len;
    bc->active_unsynced = true;
    bc->applied_index = bc->batch_index;
    if (!pack) {
        bc->batch = NULL; /* the job's now (D4) */
        bc->batch_cap = 0;
    }
    bc->batch_len = 0;
    bc->batch_start = 0;
    return RK_OK;
}

int bc_end_batch(struct bitcask *bc, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK || bc->batch_len == 0)
        return rc;
    uint8_t *last = bc->batch + bc->batch_last;
    bc_put_u32(last + 12, bc_get_u32(last + 12) | BC_REC_END);
    if (bc->deferred)
        return end_batch_deferred(bc, err);
    for (size_t off = 0; off < bc->batch_len;) {
        struct bc_rec r;
        bc_rec_decode(bc->batch + off, &r);
        size_t len = (size_t)bc_rec_bytes(r.key_len, r.val_len);
        bc_rec_seal(bc->batch + off, len);
        off += len;
    }
    rc = prepare_active(bc, bc->batch_len, err);
    if (rc != RK_OK)
        return bc_poison(bc, rc, err);
    struct bc_file *a = bc_file_at(bc, bc->active_id);
    rc = bc->fs->ops->append(bc->fs, a->f, bc->batch, bc->batch_len, err);
    if (rc != RK_OK) {
        char name[BC_NAME_BYTES];
        bc_name(name, bc->active_id, "data");
        return bc_poison(bc, rk_errwrap(err, rc, "%s: append", name), err);
    }
    batch_settle(bc, a->size);
    a->size += bc->batch_len;
    bc->active_unsynced = true;
    bc->applied_index = bc->batch_index;
    bc->batch_len = 0;
    bc->batch_start = 0;
    trim_buffer(bc, &bc->batch, &bc->batch_cap);
    return RK_OK;
}

int bc_sync(struct bitcask *bc, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    struct bc_file *a = bc_file_at(bc, bc->active_id);
    if (bc->stage_committing)
        return RK_OK; /* stage.c: the live files are being replaced; the switch is the sync */
    if (bc->deferred) {
        if (bc->active_unsynced) {
            rc = seal_active(bc, err);
            if (rc == RK_OK)
                rc = bc_io_sync(bc, bc->active_id, err);
            if (rc != RK_OK)
                return bc_poison(bc, rc, err);
            bc->active_unsynced = false;
        }
        if (bc->dir_dirty) {
            rc = bc_io_sync_dir(bc, err);
            if (rc != RK_OK)
                return bc_poison(bc, rc, err);
            bc->dir_dirty = false;
        }
        rc = bc_io_mark_sync(bc, bc->applied_index, err);
        return rc == RK_OK ? RK_OK : bc_poison(bc, rc, err);
    }
    if (bc->active_unsynced) {
        RK_ASSERT(a->f != NULL);
        rc = seal_active(bc, err);
        if (rc == RK_OK)
            rc = bc->fs->ops->sync(bc->fs, a->f, err);
        bc->fs_syncs++;
        if (rc != RK_OK)
            return bc_poison(bc, rk_errwrap(err, rc, "sync"), err);
        bc->active_unsynced = false;
    }
    if (bc->dir_dirty) {
        rc = bc->fs->ops->sync_dir(bc->fs, err);
        if (rc != RK_OK)
            return bc_poison(bc, rk_errwrap(err, rc, "sync_dir"), err);
        bc->dir_dirty = false;
    }
    return RK_OK;
}

/* ---- queries ---------------------------------------------------------------------------- */

uint64_t bc_count(const struct bitcask *bc)
{
    return bc->kd.count;
}

uint64_t bc_applied_index(const struct bitcask *bc)
{
    return bc->applied_index;
}

uint64_t bc_durable_index(const struct bitcask *bc)
{
    return bc->deferred ? bc->durable_index : bc->applied_index;
}

static int scan_impl(struct bitcask *bc, bool with_values,
                     bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                const uint8_t *val, uint32_t val_len),
                     void *ctx, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    RK_ASSERT(fn != NULL);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    bc_kd_finish(&bc->kd); /* one table: the canonical order, and nothing moves during fn */
    size_t pos = 0;
    uint64_t count = bc->kd.count;
    for (const struct bc_kent *e; (e = bc_kd_next(&bc->kd, &pos)) != NULL;) {
        const uint8_t *val = NULL;
        if (e->file_id == BC_FILE_PENDING) {
            val = bc->batch + e->offset + BC_HEADER_BYTES + e->key_len;
        } else if (with_values) {
            rc = bc_read_entry(bc, e, &bc->sbuf, &bc->sbuf_cap, &val, err);
            if (rc != RK_OK)
                break;
        }
        bool go_on = fn(ctx, e->key, e->key_len, val, e->val_len);
        RK_ASSERT(bc->kd.count == count); /* fn must not change the store it scans */
        if (!go_on)
            break;
    }
    trim_buffer(bc, &bc->sbuf, &bc->sbuf_cap);
    return rc;
}

int bc_scan(struct bitcask *bc,
            bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                       uint32_t val_len),
            void *ctx, struct rk_errmsg *err)
{
    return scan_impl(bc, true, fn, ctx, err);
}

int bc_scan_keys(struct bitcask *bc,
                 bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                            uint32_t val_len),
                 void *ctx, struct rk_errmsg *err)
{
    return scan_impl(bc, false, fn, ctx, err);
}

struct range_ctx {
    struct bitcask *bc;
    bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
               uint32_t val_len);
    void *ctx;
};

static bool range_one(void *ctx, const struct bc_kent *e)
{
    struct range_ctx *r = ctx;
    const uint8_t *val = NULL;
    if (e->file_id == BC_FILE_PENDING)
        val = r->bc->batch + e->offset + BC_HEADER_BYTES + e->key_len;
    return r->fn(r->ctx, e->key, e->key_len, val, e->val_len);
}

int bc_scan_range(struct bitcask *bc, uint32_t lo, uint64_t budget,
                  bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                             uint32_t val_len),
                  void *ctx, uint64_t *next, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    RK_ASSERT(fn != NULL);
    RK_ASSERT(next != NULL);
    *next = 0;
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    struct range_ctx r = {.bc = bc, .fn = fn, .ctx = ctx};
    uint64_t count = bc->kd.count;
    bc_kd_range(&bc->kd, lo, budget, range_one, &r, next);
    RK_ASSERT(bc->kd.count == count); /* fn must not change the store it scans */
    return RK_OK;
}

struct after_ctx {
    struct bitcask *bc;
    const uint8_t *after;
    uint32_t after_len;
    uint32_t hash;
    bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
               uint32_t val_len);
    void *ctx;
    int rc;
    struct rk_errmsg *err;
};

static bool after_one(void *ctx, const struct bc_kent *e)
{
    struct after_ctx *a = ctx;
    if (a->after != NULL && bc_kd_order(a->hash, a->after, a->after_len, e) >= 0)
        return true; /* at or before the cursor: visited already */
    const uint8_t *val = NULL;
    if (e->file_id == BC_FILE_PENDING) {
        val = a->bc->batch + e->offset + BC_HEADER_BYTES + e->key_len;
    } else {
        a->rc = bc_read_entry(a->bc, e, &a->bc->sbuf, &a->bc->sbuf_cap, &val, a->err);
        if (a->rc != RK_OK)
            return false;
    }
    return a->fn(a->ctx, e->key, e->key_len, val, e->val_len);
}

int bc_scan_after(struct bitcask *bc, const uint8_t *after, uint32_t after_len,
                  bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                             uint32_t val_len),
                  void *ctx, struct rk_errmsg *err)
{
    RK_ASSERT(bc != NULL);
    RK_ASSERT(fn != NULL);
    int rc = bc_check_poison(bc, err);
    if (rc != RK_OK)
        return rc;
    /* bc_kd_range, not bc_kd_next: it walks both tables of a growth in progress, so no call
     * pays for finishing one (O(keys)). */
    struct after_ctx a = {
        .bc = bc, .after = after, .after_len = after_len, .fn = fn, .ctx = ctx, .err = err};
    a.hash = after != NULL ? bc_kd_hash(after, after_len) : 0;
    uint64_t count = bc->kd.count, next = 0;
    bc_kd_range(&bc->kd, a.hash, UINT64_MAX, after_one, &a, &next);
    RK_ASSERT(bc->kd.count == count); /* fn must not change the store it scans */
    trim_buffer(bc, &bc->sbuf, &bc->sbuf_cap);
    return a.rc;
}

int bc_reserve_keys(struct bitcask *bc, uint64_t n)
{
    RK_ASSERT(bc != NULL);
    return bc_kd_presize(&bc->kd, n);
}

int bc_key_order(const uint8_t *a, uint32_t a_len, const uint8_t *b, uint32_t b_len)
{
    uint32_t ha = bc_kd_hash(a, a_len), hb = bc_kd_hash(b, b_len);
    if (ha != hb)
        return ha < hb ? -1 : 1;
    uint32_t n = a_len < b_len ? a_len : b_len;
    int c = n == 0 ? 0 : memcmp(a, b, n);
    if (c != 0)
        return c;
    return a_len == b_len ? 0 : a_len < b_len ? -1 : 1;
}

const char *bc_hint_failure(const struct bitcask *bc, uint64_t *count)
{
    *count = bc->hint_failures;
    return bc->hint_failure;
}

void bc_stats(const struct bitcask *bc, struct bc_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (uint32_t id = bc->lo_id; id <= bc->active_id; id++) {
        const struct bc_file *f = &bc->files[id - bc->lo_id];
        if (bc_file_made(f)) {
            st->data_files++;
            st->total_bytes += f->size;
        }
    }
    st->keys = bc->kd.count;
    st->live_bytes = bc->live_bytes;
    st->keydir_bytes = bc_kd_bytes(&bc->kd);
    st->hint_files_loaded = bc->hint_files_loaded;
    st->hints_ignored = bc->hints_ignored;
    st->hint_problem = bc->hint_problem;
    st->hints_written = bc->hints_written;
    st->hint_failures = bc->hint_failures;
    st->hint_failure = bc->hint_failure;
    st->data_files_scanned = bc->data_files_scanned;
    st->scanned_bytes = bc->scanned_bytes;
    st->cut_bytes = bc->cut_bytes;
    st->commit_records = bc->commit_records;
    st->fs_syncs = bc->fs_syncs;
    st->merges_done = bc->merges_done;
    st->merged_bytes = bc->merged_bytes;
    st->merging = bc->merge != NULL;
}

/* ---- open and close --------------------------------------------------------------------- */

int bc_new(const struct bc_config *c, struct bitcask **out, struct rk_errmsg *err)
{
    if (c->fs == NULL)
        return rk_errf(err, RK_EINVAL, "bitcask: no fs");
    if (c->max_key_bytes > BC_MAX_KEY_BYTES || c->max_value_bytes > BC_MAX_VALUE_BYTES)
        return rk_errf(err, RK_EINVAL, "bitcask: limits over %lu-byte keys, %lu-byte values",
                       (unsigned long)BC_MAX_KEY_BYTES, (unsigned long)BC_MAX_VALUE_BYTES);
    const struct rk_alloc *a = c->alloc != NULL ? c->alloc : rk_alloc_libc();
    struct bitcask *bc = rk_malloc(a, sizeof(*bc));
    if (bc == NULL)
        return rk_errf(err, RK_ENOMEM, "bitcask: no memory");
    memset(bc, 0, sizeof(*bc));
    bc->base.ops = &bc_kv_ops;
    bc->fs = c->fs;
    bc->alloc = a;
    bc->max_file_bytes = c->max_file_bytes != 0 ? c->max_file_bytes : BC_DEFAULT_MAX_FILE_BYTES;
    bc->merge_id_gap =
        c->merge_id_gap < BC_MAX_MERGE_ID_GAP ? c->merge_id_gap : BC_MAX_MERGE_ID_GAP;
    bc->max_key_bytes = c->max_key_bytes != 0 ? c->max_key_bytes : BC_MAX_KEY_BYTES;
    bc->max_value_bytes = c->max_value_bytes != 0 ? c->max_value_bytes : BC_MAX_VALUE_BYTES;
    bc->lo_id = 1;
    bc->active_id = 1;
    int rc = bc_kd_init(&bc->kd, a);
    if (rc != RK_OK) {
        bc_close(bc);
        return rk_errf(err, rc, "bitcask: no memory");
    }
    *out = bc;
    return RK_OK;
}

int bc_open(const struct bc_config *c, struct bitcask **out, struct rk_errmsg *err)
{
    RK_ASSERT(c != NULL && out != NULL);
    *out = NULL;
    struct bitcask *bc;
    int rc = bc_new(c, &bc, err);
    if (rc != RK_OK)
        return rc;
    rc = bc_recover(bc, err);
    if (c->damage != NULL)
        *c->damage = bc->damage;
    if (rc != RK_OK)
        goto err_close;
    RK_ASSERT_SLOW(bc_kd_valid(&bc->kd));
    *out = bc;
    return RK_OK;

err_close:
    bc_close(bc);
    return rc;
}

int bc_verify(const struct bc_config *c, const struct bc_verify_cb *cb, struct bc_verify_stats *st,
              struct rk_errmsg *err)
{
    RK_ASSERT(c != NULL && st != NULL);
    memset(st, 0, sizeof(*st));
    struct bitcask *bc;
    int rc = bc_new(c, &bc, err);
    if (rc != RK_OK)
        return rc;
    struct bc_dry dry = {.cb = cb, .st = st};
    bc->dry = &dry; /* recover.c, VERIFY: recovery run dry */
    rc = bc_recover(bc, err);
    RK_ASSERT_SLOW(rc != RK_OK || bc_kd_valid(&bc->kd));
    struct bc_stats now = {0}; /* after a failure: as far as recovery went */
    if (bc->files != NULL)     /* bc_recover failed before it made the file table */
        bc_stats(bc, &now);
    st->data_files = now.data_files;
    st->data_bytes = now.total_bytes;
    st->keys = now.keys;
    st->live_bytes = now.live_bytes;
    st->applied_index = bc->applied_index;
    st->damage = bc->damage;
    if (c->damage != NULL)
        *c->damage = bc->damage;
    RK_ASSERT(bc->cut_bytes == st->torn_bytes);
    if (rc == RK_OK && cb != NULL && cb->key != NULL)
        rc = bc_scan(bc, cb->key, cb->ctx, err);
    bc_close(bc);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "bitcask: verify");
}

void bc_close(struct bitcask *bc)
{
    if (bc == NULL)
        return;
    const struct rk_alloc *a = bc->alloc;
    for (uint32_t id = bc->lo_id; bc->files != NULL && id <= bc->active_id; id++) {
        struct bc_file *f = &bc->files[id - bc->lo_id];
        if (f->f != NULL)
            bc->fs->ops->close(bc->fs, f->f);
    }
    bc_io_close(bc);
    bc_stage_free(bc);
    bc_close(bc->garbage);
    bc_kd_free(&bc->kd);
    rk_free(a, bc->files);
    rk_free(a, bc->batch);
    rk_free(a, bc->pend);
    rk_free(a, bc->pend_off);
    rk_free(a, bc->rbuf);
    rk_free(a, bc->sbuf);
    rk_free(a, bc);
}

/* ---- the kv_store ------------------------------------------------------------------------ */

static struct bitcask *to_bc(struct kv_store *s)
{
    RK_ASSERT(s != NULL && s->ops == &bc_kv_ops);
    return (struct bitcask *)s;
}

_Static_assert(offsetof(struct bitcask, base) == 0, "the kv_store must be the first member");

static int kvb_get(struct kv_store *s, const uint8_t *key, uint32_t key_len, const uint8_t **val,
                   uint32_t *val_len)
{
    struct bitcask *bc = to_bc(s);
    return bc_get(bc, key, key_len, val, val_len, &bc->kv_err);
}

static int kvb_put(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                   const uint8_t *val, uint32_t val_len)
{
    struct bitcask *bc = to_bc(s);
    return bc_put(bc, index, key, key_len, val, val_len, &bc->kv_err);
}

static int kvb_del(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                   bool *existed)
{
    struct bitcask *bc = to_bc(s);
    return bc_del(bc, index, key, key_len, existed, &bc->kv_err);
}

static uint64_t kvb_count(struct kv_store *s)
{
    return bc_count(to_bc(s));
}

/* S2: the highest index given to a put or del, the open batch's included. */
static uint64_t kvb_applied_index(struct kv_store *s)
{
    struct bitcask *bc = to_bc(s);
    return bc->batch_len > 0 ? bc->batch_index : bc->applied_index;
}

static int kvb_end_batch(struct kv_store *s, uint64_t index)
{
    struct bitcask *bc = to_bc(s);
    RK_ASSERT(bc->batch_len == 0 || index == bc->batch_index);
    return bc_end_batch(bc, &bc->kv_err);
}

static uint64_t kvb_durable_index(struct kv_store *s)
{
    return bc_durable_index(to_bc(s));
}

static int kvb_sync(struct kv_store *s)
{
    struct bitcask *bc = to_bc(s);
    return bc_sync(bc, &bc->kv_err);
}

static int kvb_scan(struct kv_store *s,
                    bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                               uint32_t val_len),
                    void *ctx)
{
    struct bitcask *bc = to_bc(s);
    return bc_scan(bc, fn, ctx, &bc->kv_err);
}

static int kvb_scan_keys(struct kv_store *s,
                         bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                    const uint8_t *val, uint32_t val_len),
                         void *ctx)
{
    struct bitcask *bc = to_bc(s);
    return bc_scan_keys(bc, fn, ctx, &bc->kv_err);
}

static int kvb_scan_range(struct kv_store *s, uint32_t lo, uint64_t budget,
                          bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                     const uint8_t *val, uint32_t val_len),
                          void *ctx, uint64_t *next)
{
    struct bitcask *bc = to_bc(s);
    return bc_scan_range(bc, lo, budget, fn, ctx, next, &bc->kv_err);
}

static int kvb_scan_after(struct kv_store *s, const uint8_t *after, uint32_t after_len,
                          bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                     const uint8_t *val, uint32_t val_len),
                          void *ctx)
{
    struct bitcask *bc = to_bc(s);
    return bc_scan_after(bc, after, after_len, fn, ctx, &bc->kv_err);
}

static void kvb_destroy(struct kv_store *s)
{
    bc_close(to_bc(s));
}

static int kvb_reserve(struct kv_store *s, uint64_t n)
{
    return bc_reserve_keys(to_bc(s), n);
}

static int kvb_stage_begin(struct kv_store *s, uint64_t index)
{
    struct bitcask *bc = to_bc(s);
    return bc_stage_begin(bc, index, &bc->kv_err);
}

static int kvb_stage_put(struct kv_store *s, const uint8_t *key, uint32_t key_len,
                         const uint8_t *val, uint32_t val_len)
{
    struct bitcask *bc = to_bc(s);
    return bc_stage_put(bc, key, key_len, val, val_len, &bc->kv_err);
}

static int kvb_stage_flush(struct kv_store *s)
{
    struct bitcask *bc = to_bc(s);
    return bc_stage_flush(bc, &bc->kv_err);
}

static int kvb_stage_commit(struct kv_store *s)
{
    struct bitcask *bc = to_bc(s);
    return bc_stage_commit(bc, &bc->kv_err);
}

static void kvb_stage_abort(struct kv_store *s)
{
    bc_stage_abort(to_bc(s));
}

_Static_assert((int)BC_STAGE_NONE == (int)KV_STAGE_NONE &&
                   (int)BC_STAGE_FILLING == (int)KV_STAGE_FILLING &&
                   (int)BC_STAGE_COMMITTING == (int)KV_STAGE_COMMITTING,
               "bitcask's stage states are kv_store's");

static int kvb_stage_state(struct kv_store *s)
{
    return bc_stage_state(to_bc(s));
}

static uint64_t kvb_stage_queued(struct kv_store *s)
{
    return bc_stage_queued_bytes(to_bc(s));
}

static const struct kv_store_ops bc_kv_ops = {
    .get = kvb_get,
    .put = kvb_put,
    .del = kvb_del,
    .count = kvb_count,
    .applied_index = kvb_applied_index,
    .end_batch = kvb_end_batch,
    .sync = kvb_sync,
    .durable_index = kvb_durable_index,
    .scan = kvb_scan,
    .scan_keys = kvb_scan_keys,
    .scan_range = kvb_scan_range,
    .scan_after = kvb_scan_after,
    .key_order = bc_key_order,
    .reserve = kvb_reserve,
    .stage_begin = kvb_stage_begin,
    .stage_put = kvb_stage_put,
    .stage_flush = kvb_stage_flush,
    .stage_commit = kvb_stage_commit,
    .stage_abort = kvb_stage_abort,
    .stage_state = kvb_stage_state,
    .stage_queued = kvb_stage_queued,
    .destroy = kvb_destroy,
};

struct kv_store *bc_kv_store(struct bitcask *bc)
{
    RK_ASSERT(bc != NULL);
    return &bc->base;
}
