/*
 * hint.c — the hint file of a data file the store rolled away from (bitcask.h, ROLL HINTS): so
 * that a store that never merged still restarts from hints, not by reading every value.
 *
 * Written from the data file itself, after the sync that closed it, by whoever runs the store's
 * disk work: the worker of a deferred-writes job (io.c, IO_HINT) or the owner when writes are not
 * deferred (bitcask.c, prepare_active). Only fs and an allocator are touched, never the store.
 * The owner's memory does not grow with the file: the data file is read back in chunks (it was
 * just written: the page cache has it) and the hint is written as it goes.
 *
 * Invariants:
 *   H1  A hint is written only from records whose CRC checked out when read back here, every
 *       one of them from offset BC_COMMIT_BYTES to the end, commit records and tombstones
 *       included (one entry per record, in file order): so it says what a scan of the data file
 *       would apply, and recovery checks it as it checks a merge's hint (recover.c, HINTS). A
 *       record that does not check out leaves no hint: recovery scans that file (and its rules
 *       on bad records apply there).
 *   H2  Crash-safe: NNNNNNNNNN.hint.tmp is written, synced, then renamed to NNNNNNNNNN.hint.
 *       A crash before the rename leaves a .tmp that the next open removes (no MERGE names it);
 *       a rename not yet durable leaves no hint (the next sync_dir of the store makes it
 *       durable). Either way the data file is scanned, which is always correct.
 *   H3  The data file is immutable from its rotation on (bitcask.c, B1), so the hint stays true
 *       until a merge removes both (merge.c removes an input's hint with it).
 */
#include "bitcask/bitcask_int.h"

#include "common/assert.h"
#include "common/crc32c.h"

#define HINT_CHUNK_BYTES (256u << 10)
#define HINT_FLUSH_BYTES (256u << 10)

struct hint_build {
    struct fs *fs;
    const struct rk_alloc *alloc;
    struct fs_file *data;
    struct fs_file *hint;
    const char *data_name;
    const char *hint_name;
    uint64_t size; /* of the data file */
    uint8_t *rbuf; /* HINT_CHUNK_BYTES: the data file from rbase, rlen bytes */
    uint64_t rbase;
    size_t rlen;
    uint8_t *hbuf; /* hint bytes not yet appended */
    size_t hlen, hcap;
};

/* Makes [off, off + n) of the data file readable at *p (n <= HINT_CHUNK_BYTES). */
static int hb_get(struct hint_build *b, uint64_t off, size_t n, const uint8_t **p,
                  struct rk_errmsg *err)
{
    RK_ASSERT(n <= HINT_CHUNK_BYTES);
    if (off < b->rbase || off + n > b->rbase + b->rlen) {
        size_t got = 0;
        int rc = b->fs->ops->pread(b->fs, b->data, off, b->rbuf, HINT_CHUNK_BYTES, &got, err);
        if (rc != RK_OK)
            return rk_errwrap(err, rc, "%s: read at offset %llu", b->data_name,
                              (unsigned long long)off);
        b->rbase = off;
        b->rlen = got;
        if (got < n)
            return rk_errf(err, RK_EMALFORMED, "%s: offset %llu: shorter than its size",
                           b->data_name, (unsigned long long)off);
    }
    *p = b->rbuf + (off - b->rbase);
    return RK_OK;
}

static int hb_flush(struct hint_build *b, struct rk_errmsg *err)
{
    if (b->hlen == 0)
        return RK_OK;
    int rc = b->fs->ops->append(b->fs, b->hint, b->hbuf, b->hlen, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: append", b->hint_name);
    b->hlen = 0;
    return RK_OK;
}

static int hb_room(struct hint_build *b, size_t n, struct rk_errmsg *err)
{
    if (!rk_grow(b->alloc, (void **)&b->hbuf, &b->hcap, b->hlen + n, 1))
        return rk_errf(err, RK_ENOMEM, "no memory for a hint");
    return RK_OK;
}

/* Checks the record at off (header sane, inside the file, CRC over every byte read back: H1)
 * and adds its hint entry. *end: the offset after it. */
static int hb_record(struct hint_build *b, uint64_t off, uint32_t *body_crc, uint64_t *max_index,
                     uint64_t *end, struct rk_errmsg *err)
{
    const uint8_t *p = NULL;
    int rc = hb_get(b, off, BC_HEADER_BYTES, &p, err);
    if (rc != RK_OK)
        return rc;
    struct bc_rec r;
    bc_rec_decode(p, &r);
    const char *problem = bc_rec_header_problem(&r);
    if (problem == NULL && (r.flags & BC_REC_MARK) != 0)
        problem = "a MARK record (written by merge only)";
    if (problem == NULL && bc_rec_bytes(r.key_len, r.val_len) > b->size - off)
        problem = "record runs past the end of the file";
    if (problem != NULL)
        return rk_errf(err, RK_EMALFORMED, "%s: offset %llu: %s", b->data_name,
                       (unsigned long long)off, problem);
    size_t head = BC_HEADER_BYTES + r.key_len;
    rc = hb_get(b, off, head, &p, err);
    if (rc != RK_OK)
        return rc;
    size_t hlen = BC_HINT_HEADER_BYTES + r.key_len;
    rc = hb_room(b, hlen, err);
    if (rc != RK_OK)
        return rc;
    uint8_t *h = b->hbuf + b->hlen; /* written before p can move (the value's reads) */
    bc_rec_encode(h, r.index, r.flags, r.key_len, r.val_len);
    bc_put_u64(h + 20, off);
    memcpy(h + BC_HINT_HEADER_BYTES, p + BC_HEADER_BYTES, r.key_len);
    uint32_t crc = rk_crc32c(0, p + 4, head - 4);
    for (uint64_t at = off + head, stop = off + bc_rec_bytes(r.key_len, r.val_len); at < stop;) {
        size_t n = stop - at < HINT_CHUNK_BYTES ? (size_t)(stop - at) : HINT_CHUNK_BYTES;
        rc = hb_get(b, at, n, &p, err);
        if (rc != RK_OK)
            return rc;
        crc = rk_crc32c(crc, p, n);
        at += n;
    }
    if (crc != r.crc)
        return rk_errf(err, RK_EMALFORMED, "%s: offset %llu: record crc mismatch", b->data_name,
                       (unsigned long long)off);
    bc_put_u32(h, rk_crc32c(0, h + 4, hlen - 4));
    *body_crc = rk_crc32c(*body_crc, h, hlen);
    *max_index = r.index > *max_index ? r.index : *max_index;
    b->hlen += hlen;
    *end = off + bc_rec_bytes(r.key_len, r.val_len);
    return b->hlen >= HINT_FLUSH_BYTES ? hb_flush(b, err) : RK_OK;
}

/* Every record after the commit record at 0, then the trailer; the hint file synced. */
static int hb_write(struct hint_build *b, uint32_t id, struct rk_errmsg *err)
{
    const uint8_t *p = NULL;
    int rc = hb_get(b, 0, BC_COMMIT_BYTES, &p, err);
    uint64_t index;
    if (rc == RK_OK && !bc_commit_at(p, 0, &index))
        rc = rk_errf(err, RK_EMALFORMED, "%s: no commit record at offset 0", b->data_name);
    uint32_t body_crc = 0;
    uint64_t entries = 0;
    uint64_t max_index = 0;
    for (uint64_t off = BC_COMMIT_BYTES; rc == RK_OK && off < b->size; entries++)
        rc = hb_record(b, off, &body_crc, &max_index, &off, err);
    if (rc == RK_OK)
        rc = hb_room(b, BC_HINT_TRAILER_BYTES, err);
    if (rc != RK_OK)
        return rc;
    bc_hint_trailer_encode(b->hbuf + b->hlen, BC_HINT_ROLL_MAGIC, id, body_crc, entries, b->size,
                           max_index);
    b->hlen += BC_HINT_TRAILER_BYTES;
    rc = hb_flush(b, err);
    if (rc == RK_OK && (rc = b->fs->ops->sync(b->fs, b->hint, err)) != RK_OK)
        rk_errwrap(err, rc, "%s: sync", b->hint_name);
    return rc;
}

int bc_hint_build(struct fs *fs, const struct rk_alloc *alloc, uint32_t id, uint64_t size,
                  struct rk_errmsg *err)
{
    char data[BC_NAME_BYTES];
    char tmp[BC_NAME_BYTES];
    char hint[BC_NAME_BYTES];
    bc_name(data, id, "data");
    bc_name(tmp, id, "hint.tmp");
    bc_name(hint, id, "hint");
    struct hint_build b = {
        .fs = fs, .alloc = alloc, .data_name = data, .hint_name = tmp, .size = size};
    int rc = fs->ops->open(fs, data, 0, &b.data, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: open", data);
    uint64_t on_disk = 0;
    rc = fs->ops->size(fs, b.data, &on_disk, err);
    if (rc == RK_OK && on_disk != size)
        rc = rk_errf(err, RK_EMALFORMED, "%s: %llu bytes, the store wrote %llu", data,
                     (unsigned long long)on_disk, (unsigned long long)size);
    b.rbuf = rc == RK_OK ? rk_malloc(alloc, HINT_CHUNK_BYTES) : NULL;
    if (rc == RK_OK && b.rbuf == NULL)
        rc = rk_errf(err, RK_ENOMEM, "no memory for a hint");
    if (rc == RK_OK) {
        struct rk_errmsg scratch; /* a .tmp left by a hint that failed before (H2) */
        int rm = fs->ops->remove(fs, tmp, &scratch);
        if (rm != RK_OK && rm != RK_ENOENT)
            rc = rk_errf(err, rm, "%s", scratch.text);
    }
    if (rc == RK_OK && (rc = fs->ops->open(fs, tmp, FS_CREATE | FS_EXCL, &b.hint, err)) != RK_OK)
        rk_errwrap(err, rc, "%s: create", tmp);
    if (rc == RK_OK)
        rc = hb_write(&b, id, err);
    if (b.hint != NULL)
        fs->ops->close(fs, b.hint);
    if (rc == RK_OK && (rc = fs->ops->rename(fs, tmp, hint, err)) != RK_OK)
        rk_errwrap(err, rc, "%s: rename to %s", tmp, hint);
    if (rc != RK_OK && b.hint != NULL) {
        struct rk_errmsg scratch;
        (void)fs->ops->remove(fs, tmp, &scratch); /* else the next open removes it (H2) */
    }
    fs->ops->close(fs, b.data);
    rk_free(alloc, b.rbuf);
    rk_free(alloc, b.hbuf);
    return rc;
}
