/*
 * fuzz_backup.c — the backup file reader (node/backup_file.h, what raftkv-tool restore reads).
 *
 * Input: [flags u8][a backup file]. Flag bit 0: before reading, reseal the file (every chunk's
 * crc, then the header's totals, body crc and crc recomputed over what is there) so that
 * mutations inside records reach the framing checks instead of stopping at a crc.
 *
 * Properties:
 *   - backup_read is total: RK_OK or RK_EMALFORMED/RK_ECORRUPT with a message, never a crash
 *     or a read out of bounds (B1, B2);
 *   - on RK_OK, the records handed out are exactly the header's count, and every chunk, rebuilt
 *     from its records (backup_chunk_add, backup_chunk_seal), is byte for byte the input's: what
 *     decodes re-encodes to the same bytes;
 *   - a resealed file whose chunks all check out reads back RK_OK.
 */
#include "backup_file.h"
#include "common/crc32c.h"
#include "fuzz_util.h"

struct fz_mem {
    const uint8_t *p;
    size_t len, off;
};

static int fz_mem_read(void *ctx, void *buf, size_t len, size_t *got)
{
    struct fz_mem *m = ctx;
    size_t n = m->len - m->off < len ? m->len - m->off : len;
    if (n > 0)
        memcpy(buf, m->p + m->off, n);
    m->off += n;
    *got = n;
    return RK_OK;
}

struct fz_count {
    uint64_t records, bytes;
};

static int fz_count_one(void *ctx, uint64_t off, const uint8_t *key, uint32_t key_len,
                        const uint8_t *val, uint32_t val_len)
{
    struct fz_count *c = ctx;
    FZ_CHECK(off >= BACKUP_HEADER_BYTES + BACKUP_CHUNK_HEAD_BYTES, "record offset %llu",
             (unsigned long long)off);
    FZ_CHECK(key_len > 0 && key != NULL, "an empty key handed out");
    FZ_CHECK(val != NULL || val_len == 0, "a value pointer missing");
    fz_use(key[0] ^ key[key_len - 1] ^ (val_len ? val[val_len - 1] : 0));
    c->records++;
    c->bytes += BACKUP_RECORD_HEAD_BYTES + (uint64_t)key_len + val_len;
    return RK_OK;
}

static void fz_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t fz_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recomputes every crc and total over the chunks that frame. Returns whether every chunk, as
 * framed, passes backup_chunk_check (then the file must read back). */
static bool fz_reseal(uint8_t *p, size_t len)
{
    if (len < BACKUP_HEADER_BYTES)
        return false;
    struct backup_header h = {0};
    h.cluster_id = 1;
    memcpy(&h.index, p + 16, 8); /* whatever is there: only its shape matters */
    memcpy(&h.term, p + 24, 8);
    if (h.index > 0 && h.term == 0)
        h.term = 1;
    size_t off = BACKUP_HEADER_BYTES;
    bool all_ok = true;
    while (len - off >= BACKUP_CHUNK_HEAD_BYTES) {
        uint32_t body = backup_chunk_body_len(p + off);
        if (body > len - off - BACKUP_CHUNK_HEAD_BYTES)
            break;
        size_t n = BACKUP_CHUNK_HEAD_BYTES + body;
        fz_put32(p + off, rk_crc32c(0, p + off + 4, n - 4));
        struct rk_errmsg err = {{0}};
        uint32_t recs = 0;
        if (backup_chunk_check(p + off, n, off, h.chunks, &recs, &err) != RK_OK)
            all_ok = false;
        h.body_crc = rk_crc32c(h.body_crc, p + off, n);
        h.records += recs;
        h.chunks++;
        off += n;
    }
    h.body_bytes = off - BACKUP_HEADER_BYTES;
    backup_header_encode(&h, p);
    return all_ok && off == len;
}

/* Every chunk rebuilt from its records equals the input's bytes. */
static void fz_reencode(const uint8_t *p, size_t len)
{
    struct backup_chunk c = {0};
    size_t off = BACKUP_HEADER_BYTES;
    while (off < len) {
        size_t n = BACKUP_CHUNK_HEAD_BYTES + backup_chunk_body_len(p + off);
        backup_chunk_reset(&c);
        size_t pos = BACKUP_CHUNK_HEAD_BYTES;
        const uint8_t *k, *v;
        uint32_t kl, vl;
        while (backup_record_next(p + off, n, &pos, &k, &kl, &v, &vl))
            FZ_CHECK(backup_chunk_add(&c, k, kl, v, vl), "a record read back is refused");
        backup_chunk_seal(&c);
        FZ_CHECK(c.len == n && memcmp(c.buf, p + off, n) == 0,
                 "chunk at offset %zu re-encodes differently", off);
        off += n;
    }
    backup_chunk_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    size_t len = size - 1;
    uint8_t *p = malloc(len ? len : 1);
    FZ_CHECK(p != NULL, "out of memory");
    if (len > 0)
        memcpy(p, data + 1, len);
    bool must_read = (flags & 1) != 0 && fz_reseal(p, len);
    struct fz_mem m = {.p = p, .len = len};
    struct backup_header h;
    struct fz_count cnt = {0};
    struct rk_errmsg err = {{0}};
    int rc = backup_read(fz_mem_read, &m, &h, fz_count_one, &cnt, &err);
    FZ_CHECK(rc == RK_OK || rc == RK_EMALFORMED || rc == RK_ECORRUPT, "rc %d: %s", rc, err.text);
    FZ_CHECK(rc == RK_OK || err.text[0] != '\0', "an error without a message");
    FZ_CHECK(!must_read || rc == RK_OK, "a resealed file is refused: %s", err.text);
    if (rc == RK_OK) {
        FZ_CHECK(cnt.records == h.records, "%llu records, header %llu",
                 (unsigned long long)cnt.records, (unsigned long long)h.records);
        FZ_CHECK(cnt.bytes + h.chunks * BACKUP_CHUNK_HEAD_BYTES == h.body_bytes,
                 "record bytes do not add up to the body");
        FZ_CHECK(fz_get32(p) == BACKUP_MAGIC, "read a file without the magic");
        fz_reencode(p, len);
    }
    free(p);
    return 0;
}
