/*
 * recover.c — bc_open's recovery: finish or undo an interrupted merge, clear what a merge left,
 * then rebuild the keydir from every data file in id order, from its hint file when the hint
 * checks out, else by scanning it (the torn-tail rule of bitcask.c for the last file).
 *
 * Everything read here is untrusted. Sizes are checked against the limits of bitcask.h and the
 * file's size before anything is allocated; a bad record is reported with file and offset.
 *
 * HINTS. A hint is believed without reading its data file (that is what makes a restart fast),
 * so it is checked as far as sizes and offsets allow: its own CRCs and trailer, the data file's
 * size, entries laid out one record after another from offset 0 as merge writes them, and the
 * MARK record the last merged file ends with (one header read) carrying the trailer's highest
 * index (hint_entries, hint_mark). A hint that does not check out is not used and its data file
 * is scanned instead, with two rules, because a merge writes and syncs a file and its hint whole
 * before it commits: the scan gives no torn-tail allowance (a file with a hint has no torn tail
 * to cut, and its bytes stay), and every key the hint applied before it stopped checking out must
 * be backed by the scan (mark_hinted_keys, confirm_hinted_keys) — else the open is refused, for
 * such an entry replaced what an older file had of the key. A hint whose CRCs hold and which still
 * disagrees with its data file is a bug, not a bad disk; what the open cannot see without reading
 * the data file, bc_verify reports (dry_match_hint) and bc_merge refuses (merge.c).
 *
 * VERIFY (bc_verify) is this recovery run dry, so that an operator's check and an open can never
 * disagree: bc->dry is set, and every change recovery would make becomes a notice instead
 * (dry_roll_forward for roll_forward, clear_leftovers, cut_tail); the final syncs are skipped;
 * every record applied is also handed to the visitor (dry_record). Checks are added (see
 * bitcask.h): every data file is scanned even when its hint is valid — without the torn-tail
 * allowance, as bc_open scans a file with a hint — and then every hint is checked in full
 * (dry_check_hint) and against its data file, entry by entry (dry_match_hint). note_corrupt
 * records where the first corruption is.
 */
#include "bitcask/bitcask_int.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/assert.h"
#include "common/crc32c.h"

#define BC_CHECK_ATTEMPTS    4

/* ---- the buffered reader ---------------------------------------------------------------- */

void bc_reader_init(struct bc_reader *r, struct bitcask *bc, struct fs_file *f, const char *name,
                    uint64_t size)
{
    memset(r, 0, sizeof(*r));
    r->bc = bc;
    r->f = f;
    r->name = name;
    r->size = size;
}

void bc_reader_free(struct bc_reader *r)
{
    rk_free(r->bc->alloc, r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->len = 0;
}

void bc_reader_forget(struct bc_reader *r, uint64_t off)
{
    if (off < r->base)
        r->len = 0;
    else if (off - r->base < r->len)
        r->len = (size_t)(off - r->base);
}

int bc_reader_get(struct bc_reader *r, uint64_t keep, uint64_t off, size_t n, const uint8_t **p,
                  size_t *got, struct rk_errmsg *err)
{
    RK_ASSERT(keep <= off);
    if (off >= r->size)
        n = 0;
    else if (n > r->size - off)
        n = (size_t)(r->size - off);
    if (off >= r->base && off + n <= r->base + r->len) {
        *p = r->buf + (off - r->base);
        *got = n;
        return RK_OK;
    }
    if (keep < r->base || keep > r->base + r->len) {
        r->base = keep;
        r->len = 0;
    } else if (keep > r->base) {
        size_t drop = (size_t)(keep - r->base);
        memmove(r->buf, r->buf + drop, r->len - drop);
        r->base = keep;
        r->len -= drop;
    }
    /* Read what is needed and a chunk beyond it, within the file. */
    uint64_t want = off + n - r->base + BC_READ_CHUNK;
    if (want > r->size - r->base)
        want = r->size - r->base;
    if (!rk_grow(r->bc->alloc, (void **)&r->buf, &r->cap, (size_t)want, 1))
        return rk_errf(err, RK_ENOMEM, "%s: no memory to read %llu bytes", r->name,
                       (unsigned long long)want);
    size_t from = r->len;
    size_t read = 0;
    int rc = bc_pread(r->bc, r->f, r->base + from, r->buf + from, (size_t)want - from, &read, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: offset %llu", r->name,
                          (unsigned long long)(r->base + from));
    if (read != (size_t)want - from)
        return rk_errf(err, RK_EIO, "%s: offset %llu: file shorter than its size", r->name,
                       (unsigned long long)(r->base + from + read));
    r->len = (size_t)want;
    *p = r->buf + (off - r->base);
    *got = n;
    return RK_OK;
}

/* One read and verdict; *print fingerprints the bytes the verdict rests on. */
static int judge_record(struct bc_reader *r, uint64_t keep, uint64_t off, struct bc_checked *c,
                        uint32_t *print, struct rk_errmsg *err)
{
    const uint8_t *p = NULL;
    size_t got = 0;
    memset(c, 0, sizeof(*c));
    int rc = bc_reader_get(r, keep, off, BC_HEADER_BYTES, &p, &got, err);
    if (rc != RK_OK)
        return rc;
    *print = rk_crc32c(0, p, got);
    if (got < BC_HEADER_BYTES) {
        c->verdict = BC_CHECK_SHORT;
        c->end = r->size;
        c->problem = "file ends inside a record header";
        return RK_OK;
    }
    bc_rec_decode(p, &c->rec);
    c->problem = bc_rec_header_problem(&c->rec);
    if (c->problem != NULL) {
        c->verdict = BC_CHECK_HEADER;
        c->end = off + BC_HEADER_BYTES;
        return RK_OK;
    }
    uint64_t len = bc_rec_bytes(c->rec.key_len, c->rec.val_len);
    c->end = off + len;
    if (len > r->size - off) {
        c->verdict = BC_CHECK_SHORT;
        c->problem = "record runs past the end of the file";
        return RK_OK;
    }
    rc = bc_reader_get(r, keep, off, (size_t)len, &p, &got, err);
    if (rc != RK_OK)
        return rc;
    RK_ASSERT(got == len);
    if (!bc_rec_crc_ok(p, (size_t)len)) {
        *print = rk_crc32c(0, p, (size_t)len);
        c->verdict = BC_CHECK_CRC;
        c->problem = "crc mismatch";
        return RK_OK;
    }
    c->verdict = BC_CHECK_OK;
    c->bytes = p;
    return RK_OK;
}

int bc_check_record(struct bc_reader *r, uint64_t keep, uint64_t off, struct bc_checked *out,
                    struct rk_errmsg *err)
{
    uint32_t prev_print = 0;
    uint64_t prev_end = 0;
    for (int attempt = 0; attempt < BC_CHECK_ATTEMPTS; attempt++) {
        if (attempt > 0)
            bc_reader_forget(r, off);
        uint32_t print = 0;
        int rc = judge_record(r, keep, off, out, &print, err);
        if (rc != RK_OK || out->verdict == BC_CHECK_OK)
            return rc;
        if (attempt > 0 && print == prev_print && out->end == prev_end)
            return RK_OK; /* two reads agree: this is what is on the disk */
        prev_print = print;
        prev_end = out->end;
    }
    return rk_errf(err, RK_EIO, "%s: offset %llu: %d reads of the record disagree", r->name,
                   (unsigned long long)off, BC_CHECK_ATTEMPTS);
}

/* ---- what recovery found: corruption, and (dry run) what it would change --------------- */

static void note_corrupt(struct bitcask *bc, const char *name, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Recovery found corruption in file name ("": in no one file) at off. A dry run remembers where
 * and what for bc_verify's caller; the message in err is the one an open gives. */
static void note_corrupt(struct bitcask *bc, const char *name, uint64_t off, const char *fmt, ...)
{
    char what[sizeof(bc->damage.problem)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    struct bc_damage *d = &bc->damage;
    if (d->kind == BC_DAMAGE_NONE) {
        d->kind = BC_DAMAGE_OTHER;
        snprintf(d->file, sizeof(d->file), "%s", name);
        d->offset = off;
        d->intact_index = bc->applied_index;
    }
    if (d->problem[0] == '\0')
        memcpy(d->problem, what, sizeof(d->problem));
    if (bc->dry == NULL)
        return;
    struct bc_verify_stats *st = bc->dry->st;
    snprintf(st->problem_file, sizeof(st->problem_file), "%s", name);
    st->problem_offset = off;
    memcpy(st->problem, what, sizeof(st->problem));
}

/* Records the damage a data file's scan found (FORMAT 2): the first one. */
static void note_damage(struct bitcask *bc, enum bc_damage_kind kind, const char *name,
                        uint64_t off, uint64_t last_index)
{
    struct bc_damage *d = &bc->damage;
    if (d->kind != BC_DAMAGE_NONE)
        return;
    d->kind = kind;
    snprintf(d->file, sizeof(d->file), "%s", name);
    d->offset = off;
    d->intact_index = bc->applied_index;
    d->last_index = last_index;
}

static void dry_notice(struct bitcask *bc, enum bc_verify_notice_kind kind, const char *file,
                       uint64_t off, uint64_t bytes, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* A dry run's report of a change recovery would make (VERIFY). */
static void dry_notice(struct bitcask *bc, enum bc_verify_notice_kind kind, const char *file,
                       uint64_t off, uint64_t bytes, const char *fmt, ...)
{
    RK_ASSERT(bc->dry != NULL);
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    struct bc_verify_stats *st = bc->dry->st;
    st->notices++;
    if (kind == BC_VERIFY_LEFTOVER)
        st->leftovers++;
    if (kind == BC_VERIFY_TORN_TAIL)
        st->torn_bytes += bytes;
    const struct bc_verify_cb *cb = bc->dry->cb;
    if (cb == NULL || cb->notice == NULL)
        return;
    struct bc_verify_notice n = {
        .kind = kind, .file = file, .offset = off, .bytes = bytes, .text = text};
    cb->notice(cb->ctx, &n);
}

/* A dry run's view of a record recovery applies (VERIFY): counted and handed to the visitor. */
static void dry_record(struct bitcask *bc, const char *file, uint64_t off, const struct bc_rec *rec,
                       const uint8_t *p)
{
    struct bc_verify_stats *st = bc->dry->st;
    st->records++;
    st->tombstones += (rec->flags & BC_REC_TOMBSTONE) != 0;
    st->marks += (rec->flags & BC_REC_MARK) != 0;
    st->batches += (rec->flags & BC_REC_END) != 0;
    const struct bc_verify_cb *cb = bc->dry->cb;
    if (cb == NULL || cb->record == NULL)
        return;
    const uint8_t *key = p + BC_HEADER_BYTES;
    struct bc_verify_record r = {.index = rec->index,
                                 .flags = rec->flags,
                                 .key = rec->key_len > 0 ? key : NULL,
                                 .key_len = rec->key_len,
                                 .val = rec->val_len > 0 ? key + rec->key_len : NULL,
                                 .val_len = rec->val_len};
    cb->record(cb->ctx, file, off, &r);
}

/* ---- applying records ------------------------------------------------------------------- */

int bc_recover_apply(struct bitcask *bc, uint32_t file_id, uint64_t off, const struct bc_rec *r,
                     const uint8_t *key)
{
    if (r->index > bc->applied_index)
        bc->applied_index = r->index;
    if ((r->flags & BC_REC_MARK) != 0)
        return RK_OK;
    uint32_t hash = bc_kd_hash(key, r->key_len);
    struct bc_kent *e = bc_kd_find(&bc->kd, hash, key, r->key_len);
    /* B2 makes an older record impossible; should one appear, the newer one still wins. */
    if (e != NULL && e->index > r->index)
        return RK_OK;
    if ((r->flags & BC_REC_TOMBSTONE) != 0) {
        if (e != NULL) {
            bc->live_bytes -= bc_rec_bytes(e->key_len, e->val_len);
            bc_live_move(bc, e->file_id, BC_FILE_PENDING, e->key_len, e->val_len);
            bc_kd_remove(&bc->kd, e);
            bc_kd_step(&bc->kd);
        }
        return RK_OK;
    }
    bool fresh = e == NULL;
    if (fresh) {
        if (bc_kd_reserve(&bc->kd) != RK_OK ||
            (e = bc_kd_new(&bc->kd, hash, key, r->key_len)) == NULL)
            return RK_ENOMEM;
    } else {
        bc->live_bytes -= bc_rec_bytes(e->key_len, e->val_len);
        bc_live_move(bc, e->file_id, BC_FILE_PENDING, e->key_len, e->val_len);
    }
    e->index = r->index;
    e->offset = off;
    e->file_id = file_id;
    e->val_len = r->val_len;
    bc_live_move(bc, BC_FILE_PENDING, file_id, r->key_len, r->val_len);
    bc->live_bytes += bc_rec_bytes(r->key_len, r->val_len);
    if (fresh)
        bc_kd_insert(&bc->kd, e);
    bc_kd_step(&bc->kd);
    return RK_OK;
}

/* Applies the records of the complete batch [start, end), checked and still buffered. */
static int apply_batch(struct bitcask *bc, struct bc_reader *r, uint32_t id, uint64_t start,
                       uint64_t end, struct rk_errmsg *err)
{
    const uint8_t *p;
    size_t got;
    int rc = bc_reader_get(r, start, start, (size_t)(end - start), &p, &got, err);
    if (rc != RK_OK)
        return rc;
    RK_ASSERT(got == end - start);
    for (uint64_t off = start; off < end;) {
        struct bc_rec rec;
        bc_rec_decode(p, &rec);
        uint64_t len = bc_rec_bytes(rec.key_len, rec.val_len);
        if (bc->dry != NULL)
            dry_record(bc, r->name, off, &rec, p);
        if (bc_recover_apply(bc, id, off, &rec, p + BC_HEADER_BYTES) != RK_OK)
            return rk_errf(err, RK_ENOMEM, "%s: no memory for the keydir", r->name);
        p += len;
        off += len;
    }
    return RK_OK;
}

/* Cuts the last data file (id, read as name) at the start of its incomplete batch; a dry run
 * reports the cut instead. */
static int cut_tail(struct bitcask *bc, uint32_t id, const char *name, uint64_t at,
                    struct rk_errmsg *err)
{
    struct bc_file *f = bc_file_at(bc, id);
    RK_ASSERT(at < f->size);
    if (bc->dry != NULL) {
        dry_notice(bc, BC_VERIFY_TORN_TAIL, name, at, f->size - at,
                   "torn tail at %s offset %llu (would be cut on open)", name,
                   (unsigned long long)at);
        bc->cut_bytes += f->size - at;
        f->size = at;
        return RK_OK;
    }
    int rc = bc->fs->ops->truncate(bc->fs, f->f, at, err);
    if (rc == RK_OK)
        rc = bc->fs->ops->sync(bc->fs, f->f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: cutting the torn tail at offset %llu", name,
                          (unsigned long long)at);
    bc->cut_bytes += f->size - at;
    f->size = at;
    return RK_OK;
}

/* The commit records that check out at an offset in [from, end of file) of the data file r
 * reads (FORMAT 2): *found whether there is one, *index the applied index of the first. Every
 * offset is tried; read again when none is found (a bad read could hide one, never make one). */
static int search_commits(struct bc_reader *r, uint64_t from, bool *found, uint64_t *index,
                          struct rk_errmsg *err)
{
    *found = false;
    *index = 0;
    for (int attempt = 0; attempt < 2 && !*found; attempt++) {
        bc_reader_forget(r, 0);
        for (uint64_t p = from; p < r->size && r->size - p >= BC_COMMIT_BYTES && !*found; p++) {
            const uint8_t *b = NULL;
            size_t got;
            int rc = bc_reader_get(r, p, p, BC_COMMIT_BYTES, &b, &got, err);
            if (rc != RK_OK)
                return rc;
            *found = got == BC_COMMIT_BYTES && bc_commit_at(b, p, index);
        }
    }
    bc_reader_forget(r, 0);
    return RK_OK;
}

/* Corruption at off of data file r reads: the damage and RK_ECORRUPT. */
static int corrupt_at(struct bitcask *bc, struct bc_reader *r, enum bc_damage_kind kind,
                      uint64_t off, const char *problem, struct rk_errmsg *err)
{
    bool found = false;
    uint64_t index = 0;
    int rc = search_commits(r, off + 1, &found, &index, err);
    if (rc != RK_OK)
        return rc;
    note_damage(bc, kind, r->name, off, found ? index : 0);
    const char *why = found ? " (in synced data: a commit record after it checks out)" : "";
    note_corrupt(bc, r->name, off, "%s%s", problem, why);
    return rk_errf(err, RK_ECORRUPT, "%s: offset %llu: %s%s", r->name, (unsigned long long)off,
                   problem, why);
}

/* A record that does not check out: torn or corrupt (bitcask.h, FORMAT 2). Only in the last
 * data file (with no hint: merge wrote and synced it whole), and only with no commit record
 * after it — bytes no sync returned for — is it a torn tail, cut from its batch's start. */
static int bad_record(struct bitcask *bc, struct bc_reader *r, uint32_t id, bool last,
                      uint64_t batch_start, uint64_t off, const struct bc_checked *c,
                      struct rk_errmsg *err)
{
    if (!last)
        return corrupt_at(bc, r, BC_DAMAGE_RECORD, off, c->problem, err);
    bool found = false;
    uint64_t index = 0;
    int rc = search_commits(r, off + 1, &found, &index, err);
    if (rc != RK_OK)
        return rc;
    if (found)
        return corrupt_at(bc, r, BC_DAMAGE_RECORD, off, c->problem, err);
    return cut_tail(bc, id, r->name, batch_start, err);
}

/* A commit record (checked) at off, start the batch being read (FORMAT 2): between batches, at
 * its own offset, and (but the format mark at 0 and in merged files) with the applied index of
 * what came before it. RK_OK, or corruption. */
static int check_commit(struct bitcask *bc, struct bc_reader *r, bool hinted, uint64_t start,
                        uint64_t off, const struct bc_checked *c, struct rk_errmsg *err)
{
    uint64_t index = 0;
    if (start != off)
        return corrupt_at(bc, r, BC_DAMAGE_LAYOUT, off, "commit record inside a batch", err);
    if (!bc_commit_at(c->bytes, off, &index))
        return corrupt_at(bc, r, BC_DAMAGE_RECORD, off, "commit record with a wrong offset", err);
    if (off > 0 && !hinted && index != bc->applied_index) {
        char problem[96];
        snprintf(problem, sizeof(problem), "commit record says applied %llu, the files %llu",
                 (unsigned long long)index, (unsigned long long)bc->applied_index);
        return corrupt_at(bc, r, BC_DAMAGE_RECORD, off, problem, err);
    }
    if (bc->dry != NULL)
        bc->dry->st->commit_records++;
    return RK_OK;
}

/* Rebuilds the keydir from data file id (read as name) by reading every record. *commit_end:
 * where its last commit record ends. */
static int scan_data(struct bitcask *bc, uint32_t id, const char *name, bool last, bool hinted,
                     uint64_t *commit_end, struct rk_errmsg *err)
{
    struct bc_file *f = bc_file_at(bc, id);
    struct bc_reader r;
    bc_reader_init(&r, bc, f->f, name, f->size);
    bc->data_files_scanned++;
    bc->scanned_bytes += f->size;
    uint64_t start = 0; /* of the batch being read */
    uint64_t off = 0;
    int rc = RK_OK;
    *commit_end = 0;
    while (off < f->size) {
        struct bc_checked c;
        rc = bc_check_record(&r, start, off, &c, err);
        if (rc != RK_OK)
            break;
        if (c.verdict != BC_CHECK_OK) {
            rc = bad_record(bc, &r, id, last, start, off, &c, err);
            break;
        }
        if (off == 0 && (c.rec.flags & BC_REC_COMMIT) == 0) { /* FORMAT 2: the format mark */
            /* A format-2 file whose mark was overwritten (a misdirected write of a whole record)
             * still has commit records after it; a format-1 file never has one. */
            bool found = false;
            uint64_t index = 0;
            rc = search_commits(&r, 1, &found, &index, err);
            if (rc != RK_OK)
                break;
            if (found) {
                rc = corrupt_at(bc, &r, BC_DAMAGE_RECORD, 0,
                                "a record where the commit record that opens the file should be",
                                err);
                break;
            }
            rc = rk_errf(err, RK_EMALFORMED,
                         "%s: format 1 (no commit record at offset 0: written by an older "
                         "raftkv); this build reads format 2 only",
                         name);
            break;
        }
        if ((c.rec.flags & BC_REC_COMMIT) != 0) {
            rc = check_commit(bc, &r, hinted, start, off, &c, err);
            if (rc != RK_OK)
                break;
            off = c.end;
            start = off;
            *commit_end = off;
            continue;
        }
        if (c.end - start > BC_MAX_BATCH_BYTES) {
            note_corrupt(bc, name, off, "batch over %lu bytes", (unsigned long)BC_MAX_BATCH_BYTES);
            rc = rk_errf(err, RK_ECORRUPT, "%s: offset %llu: batch over %lu bytes", name,
                         (unsigned long long)off, (unsigned long)BC_MAX_BATCH_BYTES);
            break;
        }
        off = c.end;
        if ((c.rec.flags & BC_REC_END) != 0) {
            rc = apply_batch(bc, &r, id, start, off, err);
            if (rc != RK_OK)
                break;
            start = off;
        }
    }
    if (rc == RK_OK && start < f->size) { /* whole records, but the last batch has no END */
        if (last)
            rc = cut_tail(bc, id, name, start, err); /* after the last commit record: torn */
        else
            rc = corrupt_at(bc, &r, BC_DAMAGE_LAYOUT, start, "file ends inside a batch", err);
    }
    /* FORMAT 2: a file the store appended to and moved on from was sealed before its sync. */
    if (rc == RK_OK && !last && !hinted && f->size > 0 && *commit_end != f->size)
        rc = corrupt_at(bc, &r, BC_DAMAGE_LAYOUT, *commit_end,
                        "no commit record after the last batch of a file synced whole", err);
    bc_reader_free(&r);
    return rc;
}

/* ---- hint files ------------------------------------------------------------------------- */

struct hint_trailer {
    bool roll; /* BC_HINT_ROLL_MAGIC: every record of a rolled file (hint.c), else a merge's */
    uint32_t data_id;
    uint32_t body_crc;
    uint64_t entries;
    uint64_t data_bytes;
    uint64_t max_index;
};

void bc_hint_trailer_encode(uint8_t *p, uint32_t magic, uint32_t data_id, uint32_t body_crc,
                            uint64_t entries, uint64_t data_bytes, uint64_t max_index)
{
    RK_ASSERT(magic == BC_HINT_MAGIC || magic == BC_HINT_ROLL_MAGIC);
    bc_put_u32(p + 4, magic);
    bc_put_u32(p + 8, data_id);
    bc_put_u32(p + 12, body_crc);
    bc_put_u64(p + 16, entries);
    bc_put_u64(p + 24, data_bytes);
    bc_put_u64(p + 32, max_index);
    bc_put_u32(p, rk_crc32c(0, p + 4, BC_HINT_TRAILER_BYTES - 4));
}

/* NULL if the trailer at p checks out, else what is wrong with it. */
static const char *hint_trailer_decode(const uint8_t *p, struct hint_trailer *t)
{
    if (bc_get_u32(p) != rk_crc32c(0, p + 4, BC_HINT_TRAILER_BYTES - 4))
        return "trailer crc mismatch";
    if (bc_get_u32(p + 4) != BC_HINT_MAGIC && bc_get_u32(p + 4) != BC_HINT_ROLL_MAGIC)
        return "trailer with a bad magic";
    t->roll = bc_get_u32(p + 4) == BC_HINT_ROLL_MAGIC;
    t->data_id = bc_get_u32(p + 8);
    t->body_crc = bc_get_u32(p + 12);
    t->entries = bc_get_u64(p + 16);
    t->data_bytes = bc_get_u64(p + 24);
    t->max_index = bc_get_u64(p + 32);
    return NULL;
}

/* Where a hint file does not check out, and why: an open scans the data file instead, a dry run
 * reports it (VERIFY). */
struct hint_verdict {
    uint64_t offset;
    const char *problem; /* NULL: the hint checks out */
};

static int hint_malformed(struct hint_verdict *v, uint64_t off, const char *problem)
{
    v->offset = off;
    v->problem = problem;
    return RK_EMALFORMED;
}

/* NULL if the hint entry header rec (at an entry of len bytes, end - off left before the
 * trailer) can describe an entry of a data file of t->data_bytes, else what is wrong. */
static const char *hint_entry_problem(const struct bc_rec *rec, uint64_t rec_off, uint64_t len,
                                      uint64_t left, const struct hint_trailer *t)
{
    const char *problem = bc_rec_header_problem(rec);
    if (problem != NULL)
        return problem;
    /* A merge's hint has the live records it copied, END set; a rolled file's has every record
     * after the commit record at 0: tombstones and commit records too (hint.c, H1). */
    if (!t->roll && (rec->flags & ~BC_REC_END) != 0)
        return "entry with a flag other than END";
    if (t->roll && (rec->flags & ~(BC_REC_END | BC_REC_TOMBSTONE | BC_REC_COMMIT)) != 0)
        return "entry with a flag other than END, TOMBSTONE or COMMIT";
    if (len > left)
        return "entry runs into the trailer";
    if (rec_off > t->data_bytes ||
        bc_rec_bytes(rec->key_len, rec->val_len) > t->data_bytes - rec_off)
        return "entry points past the end of the data file";
    return NULL;
}

/* Reads the hint entries [0, end): RK_OK, RK_EMALFORMED (*v: not usable, scan instead), or an
 * error. Besides each entry's own checks, the entries must describe the data file the way merge
 * writes it (mg_copy, mg_write): one record after the other from offset 0, ending at the end of
 * the file or one MARK header before it, no index above the trailer's — sizes and offsets only,
 * the data file is not read. With apply, entries are applied as they are read, *applied counts
 * them: if the hint fails half way, load_files has the scan that follows confirm every one
 * (confirm_hinted_keys), for a hint's entry that its data file does not back must not stay. */
static int hint_entries(struct bitcask *bc, struct bc_reader *r, uint32_t id,
                        const struct hint_trailer *t, uint64_t end, bool apply, uint64_t *applied,
                        uint64_t *covered, uint64_t *max_index, struct hint_verdict *v,
                        struct rk_errmsg *err)
{
    uint64_t n = 0;
    uint32_t body = 0;
    uint64_t next = BC_COMMIT_BYTES; /* where the next entry's record must start in the data file
                                        (FORMAT 2: after the commit record at 0) */
    *max_index = 0;
    for (uint64_t off = 0; off < end;) {
        const uint8_t *p;
        size_t got;
        int rc = bc_reader_get(r, off, off, BC_HINT_HEADER_BYTES, &p, &got, err);
        if (rc != RK_OK)
            return rc;
        if (got < BC_HINT_HEADER_BYTES || off + BC_HINT_HEADER_BYTES > end)
            return hint_malformed(v, off, "entry header runs into the trailer");
        struct bc_rec rec;
        bc_rec_decode(p, &rec);
        uint64_t rec_off = bc_get_u64(p + 20);
        uint64_t len = BC_HINT_HEADER_BYTES + (uint64_t)rec.key_len;
        const char *problem = hint_entry_problem(&rec, rec_off, len, end - off, t);
        if (problem == NULL && rec_off != next)
            problem = "entry does not start where the previous one's record ends";
        if (problem == NULL && rec.index > t->max_index)
            problem = "entry index above the trailer's highest index";
        if (problem != NULL)
            return hint_malformed(v, off, problem);
        rc = bc_reader_get(r, off, off, (size_t)len, &p, &got, err);
        if (rc != RK_OK)
            return rc;
        if (bc_get_u32(p) != rk_crc32c(0, p + 4, (size_t)len - 4))
            return hint_malformed(v, off, "entry crc mismatch");
        body = rk_crc32c(body, p, (size_t)len);
        if (apply && (rec.flags & BC_REC_COMMIT) == 0 &&
            bc_recover_apply(bc, id, rec_off, &rec, p + BC_HINT_HEADER_BYTES) != RK_OK)
            return rk_errf(err, RK_ENOMEM, "%s: no memory for the keydir", r->name);
        *applied += apply;
        next = rec_off + bc_rec_bytes(rec.key_len, rec.val_len);
        *max_index = rec.index > *max_index ? rec.index : *max_index;
        n++;
        off += len;
    }
    *covered = next;
    if (next != t->data_bytes && t->data_bytes - next != BC_HEADER_BYTES)
        return hint_malformed(v, end, "entries do not cover the data file");
    if (n != t->entries)
        return hint_malformed(v, end, "entry count does not match the trailer");
    if (body != t->body_crc)
        return hint_malformed(v, end, "entries' crc does not match the trailer");
    return RK_OK;
}

/* The data file's end after the hint's entries (covered..data_bytes): nothing, or the MARK
 * record of the last file a merge wrote; and the trailer's highest index that of the entries and
 * the MARK. Reads one record header (no value) at most: RK_OK, RK_EMALFORMED, or an error. */
static int hint_mark(struct bitcask *bc, uint32_t id, const struct hint_trailer *t,
                     uint64_t covered, uint64_t max_index, uint64_t end, struct hint_verdict *v,
                     struct rk_errmsg *err)
{
    if (covered < t->data_bytes) {
        char name[BC_NAME_BYTES];
        bc_name(name, id, "data");
        struct bc_file *f = bc_file_at(bc, id);
        struct bc_reader r;
        struct bc_checked c;
        bc_reader_init(&r, bc, f->f, name, f->size);
        int rc = bc_check_record(&r, covered, covered, &c, err);
        bc_reader_free(&r);
        if (rc != RK_OK)
            return rc;
        if (c.verdict != BC_CHECK_OK || c.rec.flags != (BC_REC_MARK | BC_REC_END))
            return hint_malformed(v, end,
                                  "data file does not end with the MARK record its "
                                  "entries leave room for");
        max_index = c.rec.index > max_index ? c.rec.index : max_index;
    }
    if (max_index != t->max_index)
        return hint_malformed(v, end, "trailer's highest index is not its data file's");
    return RK_OK;
}

/* Reads hint file name of data file id: RK_OK (with apply, its keys applied), RK_EMALFORMED (*v
 * says where and why), or an error (a read error, RK_ENOMEM). *size: the hint's bytes; *t: its
 * trailer, when RK_OK; *applied: the entries applied, whatever the outcome. */
static int read_hint(struct bitcask *bc, uint32_t id, const char *name, bool apply,
                     struct hint_verdict *v, uint64_t *size, struct hint_trailer *t,
                     uint64_t *applied, struct rk_errmsg *err)
{
    struct fs_file *hf;
    int rc = bc->fs->ops->open(bc->fs, name, 0, &hf, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: open", name);
    *size = 0;
    rc = bc->fs->ops->size(bc->fs, hf, size, err);
    if (rc != RK_OK || *size < BC_HINT_TRAILER_BYTES) {
        bc->fs->ops->close(bc->fs, hf);
        return rc != RK_OK ? rk_errwrap(err, rc, "%s: size", name)
                           : hint_malformed(v, 0, "shorter than a trailer");
    }
    struct bc_reader r;
    bc_reader_init(&r, bc, hf, name, *size);
    const uint8_t *p;
    size_t got;
    uint64_t end = *size - BC_HINT_TRAILER_BYTES;
    rc = bc_reader_get(&r, end, end, BC_HINT_TRAILER_BYTES, &p, &got, err);
    const char *problem = rc == RK_OK ? hint_trailer_decode(p, t) : NULL;
    if (problem != NULL)
        rc = hint_malformed(v, end, problem);
    else if (rc == RK_OK && t->data_id != id)
        rc = hint_malformed(v, end, "trailer names another data file");
    else if (rc == RK_OK && t->data_bytes != bc_file_at(bc, id)->size)
        rc = hint_malformed(v, end, "trailer's data file size is not the data file's");
    uint64_t covered = 0;
    uint64_t max_index = 0;
    if (rc == RK_OK) {
        bc_reader_forget(&r, 0);
        rc = hint_entries(bc, &r, id, t, end, apply, applied, &covered, &max_index, v, err);
    }
    if (rc == RK_OK)
        rc = hint_mark(bc, id, t, covered, max_index, end, v, err);
    if (rc == RK_OK && apply && t->max_index > bc->applied_index)
        bc->applied_index = t->max_index;
    bc_reader_free(&r);
    bc->fs->ops->close(bc->fs, hf);
    return rc;
}

/* Loads data file id's keys from its hint file name: RK_OK, RK_EMALFORMED (scan the data file
 * instead; *v says where and why), or RK_ENOMEM. A read error is also a reason to scan instead.
 * *applied: the entries applied before the hint stopped checking out (confirm_hinted_keys). */
static int load_hint(struct bitcask *bc, uint32_t id, const char *name, struct hint_verdict *v,
                     uint64_t *applied, struct rk_errmsg *err)
{
    struct rk_errmsg scratch;
    struct hint_trailer t;
    uint64_t size;
    *v = (struct hint_verdict){0, NULL};
    int rc = read_hint(bc, id, name, true, v, &size, &t, applied, &scratch);
    if (rc == RK_OK)
        bc_file_at(bc, id)->roll_hint = t.roll;
    if (rc == RK_ENOMEM)
        return rk_errf(err, rc, "%s", scratch.text);
    if (rc != RK_OK && rc != RK_EMALFORMED)
        *v = (struct hint_verdict){0, "could not be read"};
    return rc == RK_OK ? RK_OK : RK_EMALFORMED;
}

/* An offset no record has: a key whose hint entry a fallback scan has yet to confirm. */
#define BC_OFFSET_UNCONFIRMED UINT64_MAX

/* Before the scan of data file id whose hint applied entries and then stopped checking out:
 * every key the keydir has in file id came from that hint, and is marked for the scan to
 * confirm (bc_recover_apply repoints a key at each record it applies). O(keys), on this path
 * only. */
static void mark_hinted_keys(struct bitcask *bc, uint32_t id)
{
    bc_kd_finish(&bc->kd);
    size_t pos = 0;
    for (struct bc_kent *e; (e = bc_kd_next(&bc->kd, &pos)) != NULL;) {
        if (e->file_id == id)
            e->offset = BC_OFFSET_UNCONFIRMED;
    }
}

/* After that scan: a key still marked has a hint entry that the data file does not back (no
 * record of the key, or only an older one). It cannot be taken back — it replaced what an older
 * file said of the key — so the store is refused, naming the hint (v: where it stopped). */
static int confirm_hinted_keys(struct bitcask *bc, uint32_t id, const char *hint, const char *data,
                               const struct hint_verdict *v, struct rk_errmsg *err)
{
    bc_kd_finish(&bc->kd);
    size_t pos = 0;
    uint64_t unconfirmed = 0;
    const struct bc_kent *first = NULL;
    for (const struct bc_kent *e; (e = bc_kd_next(&bc->kd, &pos)) != NULL;) {
        if (e->file_id != id || e->offset != BC_OFFSET_UNCONFIRMED)
            continue;
        unconfirmed++;
        first = first != NULL ? first : e;
    }
    if (unconfirmed == 0)
        return RK_OK;
    return rk_errf(err, RK_ECORRUPT,
                   "%s: %llu entries (one at index %llu, a %lu-byte key) for records %s does not "
                   "have; the hint stops checking out at offset %llu: %s",
                   hint, (unsigned long long)unconfirmed, (unsigned long long)first->index,
                   (unsigned long)first->key_len, data, (unsigned long long)v->offset, v->problem);
}

/* The dry run's load_hint (VERIFY): a hint that does not check out is an error; its keys are
 * not applied (the data file is scanned all the same). *t: its trailer, when RK_OK. */
static int dry_check_hint(struct bitcask *bc, uint32_t id, const char *name, struct hint_trailer *t,
                          struct rk_errmsg *err)
{
    struct hint_verdict v = {0};
    uint64_t size = 0;
    uint64_t applied = 0;
    int rc = read_hint(bc, id, name, false, &v, &size, t, &applied, err);
    if (rc == RK_EMALFORMED) {
        note_corrupt(bc, name, v.offset, "%s", v.problem);
        return rk_errf(err, RK_ECORRUPT,
                       "%s: offset %llu: %s (an open would ignore the hint and scan the data file)",
                       name, (unsigned long long)v.offset, v.problem);
    }
    if (rc != RK_OK)
        return rc;
    struct bc_verify_stats *st = bc->dry->st;
    st->hint_files++;
    st->hint_bytes += size;
    st->hinted_bytes += bc_file_at(bc, id)->size;
    return RK_OK;
}

/* NULL if the checked data record c (at the offset hint entry rec names) is the record the entry
 * describes (key at key), else what differs. */
static const char *hint_record_mismatch(const struct bc_checked *c, const struct bc_rec *rec,
                                        const uint8_t *key)
{
    if (c->verdict != BC_CHECK_OK)
        return "entry points at a record that does not check out";
    if (c->rec.index != rec->index || c->rec.flags != rec->flags)
        return "entry's index or flags are not its record's";
    if (c->rec.key_len != rec->key_len || c->rec.val_len != rec->val_len)
        return "entry's key or value size is not its record's";
    if (rec->key_len > 0 && memcmp(c->bytes + BC_HEADER_BYTES, key, rec->key_len) != 0)
        return "entry's key is not its record's";
    return NULL;
}

/* The dry run's check of a hint against its data file, both already checked on their own
 * (VERIFY): bc_open believes a valid hint without reading the data file, so that a hint and its
 * file may tell bc_open and bc_verify different stores unless they say the same thing — entry by
 * entry the record at its offset, after the last entry nothing or a MARK record, and the
 * trailer's highest index the file's. Reads the hint again: a dry run is not meant to be fast. */
static int dry_match_hint(struct bitcask *bc, uint32_t id, const char *hint, const char *data,
                          const struct hint_trailer *t, struct rk_errmsg *err)
{
    struct bc_file *f = bc_file_at(bc, id);
    struct fs_file *hf;
    int rc = bc->fs->ops->open(bc->fs, hint, 0, &hf, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: open", hint);
    uint64_t size = 0;
    rc = bc->fs->ops->size(bc->fs, hf, &size, err);
    if (rc != RK_OK || size < BC_HINT_TRAILER_BYTES) {
        bc->fs->ops->close(bc->fs, hf);
        return rc != RK_OK ? rk_errwrap(err, rc, "%s: size", hint)
                           : rk_errf(err, RK_EIO, "%s: shorter than when it was checked", hint);
    }
    struct bc_reader hr;
    struct bc_reader dr;
    bc_reader_init(&hr, bc, hf, hint, size);
    bc_reader_init(&dr, bc, f->f, data, f->size);
    uint64_t end = size - BC_HINT_TRAILER_BYTES;
    uint64_t at = end; /* where in the hint the problem is */
    uint64_t next = BC_COMMIT_BYTES; /* the data record after the last entry's (FORMAT 2: the
                                        file starts with a commit record) */
    uint64_t max_index = 0;
    const char *problem = NULL;
    struct bc_checked c;
    for (uint64_t off = 0; rc == RK_OK && problem == NULL && off < end;) {
        const uint8_t *p;
        size_t got;
        rc = bc_reader_get(&hr, off, off, BC_HINT_HEADER_BYTES, &p, &got, err);
        struct bc_rec rec;
        if (rc == RK_OK && got < BC_HINT_HEADER_BYTES)
            rc = rk_errf(err, RK_EIO, "%s: offset %llu: shorter than when it was checked", hint,
                         (unsigned long long)off);
        if (rc != RK_OK)
            break;
        bc_rec_decode(p, &rec);
        uint64_t rec_off = bc_get_u64(p + 20);
        size_t len = BC_HINT_HEADER_BYTES + (size_t)rec.key_len;
        rc = bc_reader_get(&hr, off, off, len, &p, &got, err);
        if (rc == RK_OK)
            rc = bc_check_record(&dr, rec_off, rec_off, &c, err);
        if (rc != RK_OK)
            break;
        problem = got < len ? "entry runs past the hint"
                            : hint_record_mismatch(&c, &rec, p + BC_HINT_HEADER_BYTES);
        at = off;
        max_index = rec.index > max_index ? rec.index : max_index;
        next = c.end;
        off += len;
    }
    if (rc == RK_OK && problem == NULL && next < f->size) {
        at = end;
        rc = bc_check_record(&dr, next, next, &c, err);
        if (rc == RK_OK &&
            (c.verdict != BC_CHECK_OK || (c.rec.flags & BC_REC_MARK) == 0 || c.end != f->size))
            problem = "data file has records the hint has no entry for";
        else if (rc == RK_OK)
            max_index = c.rec.index > max_index ? c.rec.index : max_index;
    }
    if (rc == RK_OK && problem == NULL && max_index != t->max_index) {
        at = end;
        problem = "trailer's highest index is not the data file's";
    }
    bc_reader_free(&hr);
    bc_reader_free(&dr);
    bc->fs->ops->close(bc->fs, hf);
    if (rc != RK_OK || problem == NULL)
        return rc;
    note_corrupt(bc, hint, at, "%s (%s)", problem, data);
    return rk_errf(err, RK_ECORRUPT, "%s: offset %llu: %s (%s)", hint, (unsigned long long)at,
                   problem, data);
}

/* ---- the directory ---------------------------------------------------------------------- */

struct listing {
    const struct rk_alloc *alloc;
    uint32_t *data; /* ids, ascending (list is in strcmp order, ids are 10 digits) */
    size_t n_data, cap_data;
    uint32_t *hint;
    size_t n_hint, cap_hint;
    char (*tmp)[BC_NAME_BYTES]; /* *.tmp names, ascending ("": adopted by dry_roll_forward) */
    size_t n_tmp, cap_tmp;
    bool merge;
    bool nomem;
    /* Dry run only: ids of the merged files still under their tmp names (dry_roll_forward). */
    uint32_t *data_tmp;
    size_t n_data_tmp, cap_data_tmp;
    uint32_t *hint_tmp;
    size_t n_hint_tmp, cap_hint_tmp;
};

static bool add_id(struct listing *ls, uint32_t **v, size_t *n, size_t *cap, uint32_t id)
{
    if (!rk_grow(ls->alloc, (void **)v, cap, *n + 1, sizeof(**v))) {
        ls->nomem = true;
        return false;
    }
    (*v)[(*n)++] = id;
    return true;
}

static bool list_one(void *ctx, const char *name)
{
    struct listing *ls = ctx;
    uint32_t id;
    size_t len = strlen(name);
    if ((id = bc_name_id(name, "data")) != 0)
        return add_id(ls, &ls->data, &ls->n_data, &ls->cap_data, id);
    if ((id = bc_name_id(name, "hint")) != 0)
        return add_id(ls, &ls->hint, &ls->n_hint, &ls->cap_hint, id);
    if (strcmp(name, BC_MERGE_NAME) == 0) {
        ls->merge = true;
        return true;
    }
    if (len > 4 && len < BC_NAME_BYTES && strcmp(name + len - 4, ".tmp") == 0) {
        if (!rk_grow(ls->alloc, (void **)&ls->tmp, &ls->cap_tmp, ls->n_tmp + 1, sizeof(*ls->tmp))) {
            ls->nomem = true;
            return false;
        }
        memcpy(ls->tmp[ls->n_tmp++], name, len + 1);
    }
    return true; /* anything else is not ours */
}

static void listing_free(struct listing *ls)
{
    rk_free(ls->alloc, ls->data);
    rk_free(ls->alloc, ls->hint);
    rk_free(ls->alloc, ls->tmp);
    rk_free(ls->alloc, ls->data_tmp);
    rk_free(ls->alloc, ls->hint_tmp);
    memset(ls, 0, sizeof(*ls));
}

static int list_dir(struct bitcask *bc, struct listing *ls, struct rk_errmsg *err)
{
    listing_free(ls);
    ls->alloc = bc->alloc;
    int rc = bc->fs->ops->list(bc->fs, list_one, ls, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "list");
    if (ls->nomem)
        return rk_errf(err, RK_ENOMEM, "no memory to list the directory");
    for (size_t i = 1; i < ls->n_data; i++)
        RK_ASSERT(ls->data[i - 1] < ls->data[i]);
    return RK_OK;
}

static bool listed(const uint32_t *v, size_t n, uint32_t id)
{
    size_t lo = 0;
    size_t hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] == id)
            return true;
        if (v[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* The name data file (or its hint) id is read under: the final one, or in a dry run its tmp
 * name while a committed merge's rename is pending. */
static void file_name(const struct listing *ls, uint32_t id, bool hint, char *out)
{
    if (hint)
        bc_name(out, id, listed(ls->hint_tmp, ls->n_hint_tmp, id) ? "hint.tmp" : "hint");
    else
        bc_name(out, id, listed(ls->data_tmp, ls->n_data_tmp, id) ? "data.tmp" : "data");
}

static int remove_if_there(struct bitcask *bc, const char *name, struct rk_errmsg *err)
{
    int rc = bc->fs->ops->remove(bc->fs, name, err);
    if (rc == RK_ENOENT)
        return RK_OK;
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "%s: remove", name);
}

static int sync_dir(struct bitcask *bc, struct rk_errmsg *err)
{
    int rc = bc->fs->ops->sync_dir(bc->fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "sync_dir");
}

/* ---- the merge manifest ----------------------------------------------------------------- */

struct manifest {
    uint32_t first_new;
    uint32_t n_new;
    uint32_t n_old;
    const uint8_t *old; /* n_old ids, u32 little-endian */
};

/* NULL if the n bytes at p are a valid manifest, else what is wrong. */
static const char *manifest_problem(const uint8_t *p, size_t n, struct manifest *m)
{
    if (n < BC_MERGE_HEADER_BYTES)
        return "too short";
    if (bc_get_u32(p) != rk_crc32c(0, p + 4, n - 4))
        return "crc mismatch";
    if (bc_get_u32(p + 4) != BC_MERGE_MAGIC)
        return "bad magic";
    m->first_new = bc_get_u32(p + 8);
    m->n_new = bc_get_u32(p + 12);
    m->n_old = bc_get_u32(p + 16);
    m->old = p + BC_MERGE_HEADER_BYTES;
    if (m->n_old > BC_MAX_FILES || n != BC_MERGE_HEADER_BYTES + 4 * (size_t)m->n_old)
        return "size does not match its id count";
    if (m->first_new == 0 || m->n_new == 0 || m->n_new > BC_MAX_FILES ||
        m->first_new > BC_MAX_FILE_ID - m->n_new + 1)
        return "bad merged ids";
    for (uint32_t i = 0; i < m->n_old; i++) {
        uint32_t id = bc_get_u32(m->old + 4 * i);
        if (id == 0 || id >= m->first_new)
            return "bad replaced id";
    }
    return NULL;
}

/* Reads MERGE into *buf (caller frees). A bad manifest is read again; two reads that agree
 * make it corruption. */
static int read_manifest(struct bitcask *bc, uint8_t **buf, struct manifest *m,
                         struct rk_errmsg *err)
{
    struct fs_file *f;
    int rc = bc->fs->ops->open(bc->fs, BC_MERGE_NAME, 0, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, BC_MERGE_NAME);
    uint64_t size = 0;
    rc = bc->fs->ops->size(bc->fs, f, &size, err);
    if (rc == RK_OK && size > BC_MERGE_HEADER_BYTES + 4ull * BC_MAX_FILES) {
        note_corrupt(bc, BC_MERGE_NAME, 0, "%llu bytes, too big", (unsigned long long)size);
        rc = rk_errf(err, RK_ECORRUPT, "%llu bytes, too big", (unsigned long long)size);
    }
    if (rc == RK_OK && (*buf = rk_malloc(bc->alloc, (size_t)size + 1)) == NULL)
        rc = rk_errf(err, RK_ENOMEM, "no memory");
    uint32_t prev_print = 0;
    for (int attempt = 0; rc == RK_OK; attempt++) {
        size_t got = 0;
        rc = bc_pread(bc, f, 0, *buf, (size_t)size, &got, err);
        if (rc != RK_OK)
            break;
        const char *problem = manifest_problem(*buf, got, m);
        if (problem == NULL)
            break;
        uint32_t print = rk_crc32c(0, *buf, got);
        if (attempt > 0 && print == prev_print)
            note_corrupt(bc, BC_MERGE_NAME, 0, "%s", problem);
        if (attempt > 0 && print == prev_print)
            rc = rk_errf(err, RK_ECORRUPT, "%s", problem);
        else if (attempt + 1 == BC_CHECK_ATTEMPTS)
            rc = rk_errf(err, RK_EIO, "reads disagree");
        prev_print = print;
    }
    bc->fs->ops->close(bc->fs, f);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, BC_MERGE_NAME);
}

/* Finishes the switch of a committed merge (bitcask.c, MERGE). Idempotent. */
static int roll_forward(struct bitcask *bc, const struct manifest *m, struct rk_errmsg *err)
{
    char tmp[BC_NAME_BYTES];
    char final[BC_NAME_BYTES];
    for (uint32_t id = m->first_new; id - m->first_new < m->n_new; id++) {
        bc_name(tmp, id, "data.tmp");
        bc_name(final, id, "data");
        int rc = bc->fs->ops->rename(bc->fs, tmp, final, err);
        if (rc == RK_ENOENT) { /* renamed before: the final name must be there */
            struct fs_file *f;
            rc = bc->fs->ops->open(bc->fs, final, 0, &f, err);
            if (rc == RK_ENOENT)
                return rk_errf(err, RK_ECORRUPT, "MERGE: merged file %s is missing", final);
            if (rc == RK_OK)
                bc->fs->ops->close(bc->fs, f);
        }
        if (rc != RK_OK)
            return rk_errwrap(err, rc, "MERGE: %s", final);
        bc_name(tmp, id, "hint.tmp");
        bc_name(final, id, "hint");
        rc = bc->fs->ops->rename(bc->fs, tmp, final, err);
        if (rc != RK_OK && rc != RK_ENOENT)
            return rk_errwrap(err, rc, "MERGE: %s", final);
    }
    int rc = sync_dir(bc, err);
    for (uint32_t i = 0; rc == RK_OK && i < m->n_old; i++) {
        uint32_t id = bc_get_u32(m->old + 4 * i);
        bc_name(final, id, "data");
        rc = remove_if_there(bc, final, err);
        bc_name(final, id, "hint");
        if (rc == RK_OK)
            rc = remove_if_there(bc, final, err);
    }
    if (rc == RK_OK)
        rc = sync_dir(bc, err);
    if (rc == RK_OK)
        rc = remove_if_there(bc, BC_MERGE_NAME, err);
    if (rc == RK_OK)
        rc = sync_dir(bc, err);
    return rc;
}

/* The position of name among the *.tmp names (ascending: list is in strcmp order), or n_tmp. */
static size_t tmp_position(const struct listing *ls, const char *name)
{
    size_t lo = 0;
    size_t hi = ls->n_tmp;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ls->tmp[mid], name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return ls->n_tmp;
}

/* Inserts id into the ascending set v (nothing if there). False when out of memory. */
static bool insert_id(struct listing *ls, uint32_t **v, size_t *n, size_t *cap, uint32_t id)
{
    size_t at = 0;
    while (at < *n && (*v)[at] < id)
        at++;
    if (at < *n && (*v)[at] == id)
        return true;
    if (!add_id(ls, v, n, cap, id))
        return false;
    memmove(*v + at + 1, *v + at, (*n - 1 - at) * sizeof(**v));
    (*v)[at] = id;
    return true;
}

/* Removes id from the ascending set v; whether it was there. */
static bool drop_id(uint32_t *v, size_t *n, uint32_t id)
{
    size_t at = 0;
    while (at < *n && v[at] < id)
        at++;
    if (at == *n || v[at] != id)
        return false;
    memmove(v + at, v + at + 1, (*n - 1 - at) * sizeof(*v));
    (*n)--;
    return true;
}

/* The dry run's roll_forward for merged file id (ext "data" or "hint"): what the rename of its
 * tmp file would leave, read from the tmp name (VERIFY). A missing merged data file is corruption,
 * as in roll_forward. */
static int dry_adopt(struct bitcask *bc, struct listing *ls, uint32_t id, bool hint,
                     struct rk_errmsg *err)
{
    char tmp[BC_NAME_BYTES];
    char final[BC_NAME_BYTES];
    bc_name(tmp, id, hint ? "hint.tmp" : "data.tmp");
    bc_name(final, id, hint ? "hint" : "data");
    uint32_t **set = hint ? &ls->hint : &ls->data;
    size_t *n = hint ? &ls->n_hint : &ls->n_data;
    size_t *cap = hint ? &ls->cap_hint : &ls->cap_data;
    size_t t = tmp_position(ls, tmp);
    if (t < ls->n_tmp) { /* roll_forward renames it, replacing a final one */
        ls->tmp[t][0] = '\0';
        bool ok = insert_id(ls, set, n, cap, id) &&
                  (hint ? add_id(ls, &ls->hint_tmp, &ls->n_hint_tmp, &ls->cap_hint_tmp, id)
                        : add_id(ls, &ls->data_tmp, &ls->n_data_tmp, &ls->cap_data_tmp, id));
        if (!ok)
            return rk_errf(err, RK_ENOMEM, "no memory to list the directory");
        dry_notice(bc, BC_VERIFY_RENAME, tmp, 0, 0, "%s is merged (would be renamed to %s on open)",
                   tmp, final);
        return RK_OK;
    }
    if (hint || listed(*set, *n, id))
        return RK_OK;
    note_corrupt(bc, BC_MERGE_NAME, 0, "merged file %s is missing", final);
    return rk_errf(err, RK_ECORRUPT, "MERGE: merged file %s is missing", final);
}

/* The dry run's roll_forward (VERIFY): changes the listing into the one roll_forward would
 * leave — the merged files in (under their tmp names where the rename is pending), the inputs
 * out — and reports each change. */
static int dry_roll_forward(struct bitcask *bc, const struct manifest *m, struct listing *ls,
                            struct rk_errmsg *err)
{
    bc->dry->st->merge_manifest = true;
    dry_notice(bc, BC_VERIFY_MERGE, BC_MERGE_NAME, 0, 0,
               "MERGE: a committed merge of %lu files into %lu (open would finish it)",
               (unsigned long)m->n_old, (unsigned long)m->n_new);
    for (uint32_t i = 0; i < m->n_old; i++) {
        uint32_t id = bc_get_u32(m->old + 4 * i);
        char name[BC_NAME_BYTES];
        bc_name(name, id, "data");
        if (drop_id(ls->data, &ls->n_data, id))
            dry_notice(bc, BC_VERIFY_LEFTOVER, name, 0, 0,
                       "%s was merged (would be removed on open)", name);
        bc_name(name, id, "hint");
        if (drop_id(ls->hint, &ls->n_hint, id))
            dry_notice(bc, BC_VERIFY_LEFTOVER, name, 0, 0,
                       "%s was merged (would be removed on open)", name);
    }
    int rc = RK_OK;
    for (uint32_t id = m->first_new; rc == RK_OK && id - m->first_new < m->n_new; id++) {
        rc = dry_adopt(bc, ls, id, false, err);
        if (rc == RK_OK)
            rc = dry_adopt(bc, ls, id, true, err);
    }
    return rc;
}

/* Removes what no committed merge needs: *.tmp files and hints without a data file. A dry run
 * reports them instead. */
static int clear_leftovers(struct bitcask *bc, const struct listing *ls, struct rk_errmsg *err)
{
    bool removed = false;
    for (size_t i = 0; i < ls->n_tmp; i++) {
        if (ls->tmp[i][0] == '\0') /* adopted by dry_roll_forward */
            continue;
        if (bc->dry != NULL) {
            dry_notice(bc, BC_VERIFY_LEFTOVER, ls->tmp[i], 0, 0,
                       "%s is left by a merge that never committed or a hint never finished "
                       "(would be removed on open)",
                       ls->tmp[i]);
            continue;
        }
        int rc = remove_if_there(bc, ls->tmp[i], err);
        if (rc != RK_OK)
            return rc;
        removed = true;
    }
    for (size_t i = 0; i < ls->n_hint; i++) {
        if (listed(ls->data, ls->n_data, ls->hint[i]))
            continue;
        char name[BC_NAME_BYTES];
        file_name(ls, ls->hint[i], true, name);
        if (bc->dry != NULL) {
            dry_notice(bc, BC_VERIFY_LEFTOVER, name, 0, 0,
                       "%s has no data file (would be removed on open)", name);
            continue;
        }
        int rc = remove_if_there(bc, name, err);
        if (rc != RK_OK)
            return rc;
        removed = true;
    }
    return removed ? sync_dir(bc, err) : RK_OK;
}

/* ---- the data files --------------------------------------------------------------------- */

static int open_data(struct bitcask *bc, uint32_t id, const char *name, struct rk_errmsg *err)
{
    struct bc_file *f = bc_file_at(bc, id);
    int rc = bc->fs->ops->open(bc->fs, name, 0, &f->f, err);
    if (rc == RK_OK) {
        rc = bc->fs->ops->size(bc->fs, f->f, &f->size, err);
        if (rc != RK_OK) {
            bc->fs->ops->close(bc->fs, f->f);
            f->f = NULL;
        }
    }
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "%s", name);
}

/* The keydir sized for every entry the hint files name, before any is loaded. A merge writes
 * its files, and so their hints, in the keydir's canonical order (ascending hash); loaded in
 * that order into a table sized for the keys so far, every key's home slot (its hash's top
 * bits) falls in the table's first few slots and each insert walks one run that holds all the
 * keys before it: quadratic (80,000 keys took 5 s, a million would take hours). In a table
 * sized for all of them, the keys spread as the table will hold them. Best effort: a trailer
 * that cannot be read adds nothing here (the load itself then diagnoses it). A rolled file's
 * hint (hint.c) is not counted: it has an entry per record, not per key (a key overwritten a
 * million times is a million entries), in write order, which spreads the hashes anyway. */
static void presize_from_hints(struct bitcask *bc, const struct listing *ls)
{
    uint64_t total = 0;
    for (size_t i = 0; i < ls->n_data; i++) {
        uint32_t id = ls->data[i];
        if (!listed(ls->hint, ls->n_hint, id))
            continue;
        char name[BC_NAME_BYTES];
        file_name(ls, id, true, name);
        struct rk_errmsg scratch;
        struct fs_file *hf;
        if (bc->fs->ops->open(bc->fs, name, 0, &hf, &scratch) != RK_OK)
            continue;
        uint64_t size = 0;
        if (bc->fs->ops->size(bc->fs, hf, &size, &scratch) == RK_OK &&
            size >= BC_HINT_TRAILER_BYTES) {
            struct bc_reader r;
            bc_reader_init(&r, bc, hf, name, size);
            const uint8_t *p;
            size_t got;
            uint64_t end = size - BC_HINT_TRAILER_BYTES;
            struct hint_trailer t;
            if (bc_reader_get(&r, end, end, BC_HINT_TRAILER_BYTES, &p, &got, &scratch) == RK_OK &&
                hint_trailer_decode(p, &t) == NULL && !t.roll && t.entries <= size)
                total += t.entries;
            bc_reader_free(&r);
        }
        bc->fs->ops->close(bc->fs, hf);
    }
    if (total > 0)
        (void)bc_kd_presize(&bc->kd, total); /* RK_ENOMEM: the load grows it as it goes */
}

static int load_files(struct bitcask *bc, const struct listing *ls, struct rk_errmsg *err)
{
    if (ls->n_data == 0)
        return bc_files_cover(bc, bc->active_id) == RK_OK
                   ? RK_OK
                   : rk_errf(err, RK_ENOMEM, "no memory for the file table");
    uint32_t lo = ls->data[0];
    uint32_t hi = ls->data[ls->n_data - 1];
    if (hi - lo >= BC_MAX_FILES || hi >= BC_MAX_FILE_ID - 1 - bc->merge_id_gap) {
        note_corrupt(bc, "", 0, "data file ids %lu..%lu: over the limits", (unsigned long)lo,
                     (unsigned long)hi);
        return rk_errf(err, RK_ECORRUPT, "data file ids %lu..%lu: over the limits",
                       (unsigned long)lo, (unsigned long)hi);
    }
    bc->lo_id = lo;
    /* A new active file, made at the first append, merge_id_gap ids above (merge.c). */
    bc->active_id = hi + 1 + bc->merge_id_gap;
    uint64_t commit_end = 0; /* of the file scanned last */
    bool hi_hinted = listed(ls->hint, ls->n_hint, hi);
    if (bc_files_cover(bc, bc->active_id) != RK_OK)
        return rk_errf(err, RK_ENOMEM, "no memory for the file table");
    if (bc->dry == NULL)
        presize_from_hints(bc, ls);
    for (size_t i = 0; i < ls->n_data; i++) {
        uint32_t id = ls->data[i];
        char name[BC_NAME_BYTES];
        file_name(ls, id, false, name);
        int rc = open_data(bc, id, name, err);
        if (rc != RK_OK)
            return rc;
        bool hinted = listed(ls->hint, ls->n_hint, id);
        char hint[BC_NAME_BYTES];
        file_name(ls, id, true, hint);
        /* A data file with a hint was written whole and synced by a merge before it committed:
         * it cannot have a torn tail, so it is scanned without the allowance, by an open whose
         * hint failed as by a dry run. */
        bool last = id == hi && !hinted;
        if (bc->dry != NULL) { /* VERIFY: the data file scanned all the same, then the hint
                                  checked on its own and against it (a bad data record is
                                  reported where it is, not as the hint's) */
            struct hint_trailer t;
            if ((rc = scan_data(bc, id, name, last, hinted, &commit_end, err)) != RK_OK)
                return rc;
            if (hinted && (rc = dry_check_hint(bc, id, hint, &t, err)) != RK_OK)
                return rc;
            if (hinted && (rc = dry_match_hint(bc, id, hint, name, &t, err)) != RK_OK)
                return rc;
            continue;
        }
        struct hint_verdict v = {0, NULL};
        uint64_t applied = 0;
        if (hinted) {
            rc = load_hint(bc, id, hint, &v, &applied, err);
            if (rc == RK_OK) {
                bc->hint_files_loaded++;
                continue;
            }
            if (rc != RK_EMALFORMED)
                return rc;
            if (bc->hints_ignored++ == 0)
                snprintf(bc->hint_problem, sizeof(bc->hint_problem), "%s: offset %llu: %s", hint,
                         (unsigned long long)v.offset, v.problem);
            if (applied > 0)
                mark_hinted_keys(bc, id);
        }
        rc = scan_data(bc, id, name, last, hinted, &commit_end, err);
        if (rc != RK_OK && hinted)
            return rk_errwrap(err, rc, "%s: offset %llu: %s; scanning %s instead", hint,
                              (unsigned long long)v.offset, v.problem, name);
        if (rc == RK_OK && applied > 0)
            rc = confirm_hinted_keys(bc, id, hint, name, &v, err);
        if (rc != RK_OK)
            return rc;
    }
    if (bc->dry != NULL)
        return RK_OK;
    /* B1: what was found is made durable before anything is appended above it. A store
     * closed without a sync and reopened without a crash still has the last file's unsynced
     * tail (and maybe names not yet durable); were the next file created above it, a crash
     * could tear a file that is no longer the last. */
    char name[BC_NAME_BYTES];
    bc_name(name, hi, "data");
    struct bc_file *f = bc_file_at(bc, hi);
    int rc = RK_OK;
    if (!hi_hinted && commit_end < f->size) {
        /* FORMAT 2: batches that survived after the last commit record are about to be taken
         * as durable; sealed before the sync, as bc_sync would have. */
        uint8_t rec[BC_COMMIT_BYTES];
        bc_commit_encode(rec, bc->applied_index, f->size);
        rc = bc->fs->ops->append(bc->fs, f->f, rec, sizeof(rec), err);
        if (rc == RK_OK) {
            f->size += BC_COMMIT_BYTES;
            bc->commit_records++;
        }
    }
    if (rc == RK_OK)
        rc = bc->fs->ops->sync(bc->fs, f->f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: sync", name);
    rc = sync_dir(bc, err);
    /* The last file is immutable from here on (the next append starts a new one) and synced
     * whole: it gets its hint now, as a file the store rolled away from does (hint.c), so that
     * a node restarted again and again does not keep one more file to scan per restart. */
    if (rc == RK_OK && !hi_hinted && f->size > BC_COMMIT_BYTES) {
        struct rk_errmsg herr;
        f->roll_hint = true;
        if (bc_hint_build(bc->fs, bc->alloc, hi, f->size, &herr) == RK_OK) {
            bc->hints_written++;
            rc = sync_dir(bc, err);
        } else {
            bc->hint_failures++;
            snprintf(bc->hint_failure, sizeof(bc->hint_failure), "%.150s", herr.text);
        }
    }
    return rc;
}

int bc_recover_inputs(struct bitcask *bc, const uint32_t *ids, size_t n,
                      bool (*cancelled)(void *ctx), void *ctx, struct rk_errmsg *err)
{
    RK_ASSERT(bc->dry == NULL);
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        if (cancelled != NULL && cancelled(ctx))
            return rk_errf(err, RK_EBUSY, "merge: cancelled");
        char name[BC_NAME_BYTES];
        char hint[BC_NAME_BYTES];
        bc_name(name, id, "data");
        bc_name(hint, id, "hint");
        int rc = open_data(bc, id, name, err);
        if (rc != RK_OK)
            return rc;
        struct fs_file *hf;
        rc = bc->fs->ops->open(bc->fs, hint, 0, &hf, err);
        bool hinted = rc == RK_OK;
        if (rc == RK_OK)
            bc->fs->ops->close(bc->fs, hf);
        else if (rc != RK_ENOENT)
            return rk_errwrap(err, rc, "%s: open", hint);
        struct hint_verdict v = {0, NULL};
        uint64_t applied = 0;
        if (hinted) {
            rc = load_hint(bc, id, hint, &v, &applied, err);
            if (rc == RK_OK) {
                bc->hint_files_loaded++;
                continue;
            }
            if (rc != RK_EMALFORMED)
                return rc;
            if (applied > 0)
                mark_hinted_keys(bc, id);
        }
        uint64_t commit_end = 0;
        rc = scan_data(bc, id, name, false, hinted, &commit_end, err);
        if (rc == RK_OK && applied > 0)
            rc = confirm_hinted_keys(bc, id, hint, name, &v, err);
        if (rc != RK_OK)
            return rc;
    }
    return RK_OK;
}

int bc_recover(struct bitcask *bc, struct rk_errmsg *err)
{
    struct listing ls;
    memset(&ls, 0, sizeof(ls));
    int rc = list_dir(bc, &ls, err);
    if (rc == RK_OK && ls.merge) {
        uint8_t *buf = NULL;
        struct manifest m = {0};
        rc = read_manifest(bc, &buf, &m, err);
        if (rc == RK_OK && bc->dry != NULL) {
            rc = dry_roll_forward(bc, &m, &ls, err);
        } else if (rc == RK_OK) {
            rc = roll_forward(bc, &m, err);
            if (rc == RK_OK)
                rc = list_dir(bc, &ls, err);
        }
        rk_free(bc->alloc, buf);
    }
    if (rc == RK_OK)
        rc = clear_leftovers(bc, &ls, err);
    if (rc == RK_OK)
        rc = load_files(bc, &ls, err);
    listing_free(&ls);
    if (rc == RK_ECORRUPT && bc->damage.kind == BC_DAMAGE_NONE) {
        bc->damage.kind = BC_DAMAGE_OTHER;
        snprintf(bc->damage.problem, sizeof(bc->damage.problem), "%.120s", err->text);
    }
    return rc;
}
