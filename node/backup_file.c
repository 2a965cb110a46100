/*
 * backup_file.c — the backup file's format (backup_file.h): encoding of the header and chunks,
 * and the checking reader. No I/O of its own: the reader pulls bytes through a callback, so the
 * tool reads a file and the fuzzer a buffer with the same code.
 */
#include "backup_file.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"

_Static_assert(BACKUP_HEADER_BYTES == 64, "header layout");
_Static_assert(BACKUP_CHUNK_MAX_BYTES < UINT32_MAX, "a chunk's length fits its u32");

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void backup_header_encode(const struct backup_header *h, uint8_t out[BACKUP_HEADER_BYTES])
{
    put32(out, BACKUP_MAGIC);
    put32(out + 4, BACKUP_VERSION);
    put64(out + 8, h->cluster_id);
    put64(out + 16, h->index);
    put64(out + 24, h->term);
    put64(out + 32, h->records);
    put64(out + 40, h->chunks);
    put64(out + 48, h->body_bytes);
    put32(out + 56, h->body_crc);
    put32(out + 60, rk_crc32c(0, out, 60));
}

int backup_header_decode(const uint8_t *p, size_t len, struct backup_header *h,
                         struct rk_errmsg *err)
{
    if (len < BACKUP_HEADER_BYTES)
        return rk_errf(err, RK_EMALFORMED,
                       "header (offset 0): %zu bytes, a backup starts with %u: not a backup, or "
                       "cut short",
                       len, BACKUP_HEADER_BYTES);
    if (get32(p) != BACKUP_MAGIC)
        return rk_errf(err, RK_EMALFORMED,
                       "header (offset 0): magic 0x%08" PRIx32 ", not \"RKBK\": not a raftkv "
                       "backup, or a backup that was never finished",
                       get32(p));
    if (get32(p + 60) != rk_crc32c(0, p, 60))
        return rk_errf(err, RK_ECORRUPT,
                       "header (offset 0): crc32c 0x%08" PRIx32 " stored, 0x%08" PRIx32
                       " computed: the header is damaged",
                       get32(p + 60), rk_crc32c(0, p, 60));
    if (get32(p + 4) != BACKUP_VERSION)
        return rk_errf(err, RK_EMALFORMED,
                       "header (offset 4): format version %" PRIu32 "; this build reads %u",
                       get32(p + 4), BACKUP_VERSION);
    *h = (struct backup_header){.cluster_id = get64(p + 8),
                                .index = get64(p + 16),
                                .term = get64(p + 24),
                                .records = get64(p + 32),
                                .chunks = get64(p + 40),
                                .body_bytes = get64(p + 48),
                                .body_crc = get32(p + 56)};
    if (h->index > 0 && h->term == 0)
        return rk_errf(err, RK_EMALFORMED, "header (offset 24): index %" PRIu64 " with term 0",
                       h->index);
    return RK_OK;
}

void backup_chunk_reset(struct backup_chunk *c)
{
    c->len = BACKUP_CHUNK_HEAD_BYTES;
    c->records = 0;
    if (c->buf != NULL)
        memset(c->buf, 0, BACKUP_CHUNK_HEAD_BYTES);
}

bool backup_chunk_add(struct backup_chunk *c, const uint8_t *key, uint32_t key_len,
                      const uint8_t *val, uint32_t val_len)
{
    if (key_len == 0 || key_len > BACKUP_KEY_MAX_BYTES || val_len > BACKUP_VALUE_MAX_BYTES)
        return false;
    if (c->len < BACKUP_CHUNK_HEAD_BYTES)
        c->len = BACKUP_CHUNK_HEAD_BYTES;
    size_t need = c->len + BACKUP_RECORD_HEAD_BYTES + key_len + val_len;
    if (need > c->cap) {
        size_t cap = c->cap ? c->cap : 64u << 10;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(c->buf, cap);
        if (p == NULL)
            return false;
        c->buf = p;
        c->cap = cap;
    }
    uint8_t *at = c->buf + c->len;
    put32(at, key_len);
    put32(at + 4, val_len);
    memcpy(at + 8, key, key_len);
    if (val_len > 0)
        memcpy(at + 8 + key_len, val, val_len);
    c->len = need;
    c->records++;
    return true;
}

void backup_chunk_seal(struct backup_chunk *c)
{
    RK_ASSERT(c->buf != NULL); /* a chunk holds a record at least */
    RK_ASSERT(c->records > 0);
    RK_ASSERT(c->len >= BACKUP_CHUNK_HEAD_BYTES);
    RK_ASSERT(c->len - BACKUP_CHUNK_HEAD_BYTES <= BACKUP_CHUNK_MAX_BYTES);
    put32(c->buf + 4, (uint32_t)(c->len - BACKUP_CHUNK_HEAD_BYTES));
    put32(c->buf + 8, c->records);
    put32(c->buf, rk_crc32c(0, c->buf + 4, c->len - 4));
}

void backup_chunk_free(struct backup_chunk *c)
{
    free(c->buf);
    memset(c, 0, sizeof(*c));
}

uint32_t backup_chunk_body_len(const uint8_t head[BACKUP_CHUNK_HEAD_BYTES])
{
    return get32(head + 4);
}

int backup_chunk_check(const uint8_t *p, size_t len, uint64_t file_off, uint64_t n,
                       uint32_t *records, struct rk_errmsg *err)
{
    if (len < BACKUP_CHUNK_HEAD_BYTES)
        return rk_errf(err, RK_EMALFORMED,
                       "chunk %" PRIu64 " (offset %" PRIu64 "): %zu bytes, "
                       "shorter than its head",
                       n, file_off, len);
    uint32_t body = get32(p + 4);
    if (body > BACKUP_CHUNK_MAX_BYTES || (size_t)body != len - BACKUP_CHUNK_HEAD_BYTES)
        return rk_errf(err, RK_EMALFORMED,
                       "chunk %" PRIu64 " (offset %" PRIu64 "): length %" PRIu32 " does not fit", n,
                       file_off, body);
    uint32_t crc = rk_crc32c(0, p + 4, len - 4);
    if (crc != get32(p))
        return rk_errf(err, RK_ECORRUPT,
                       "chunk %" PRIu64 " (offset %" PRIu64 ", %zu bytes): crc32c 0x%08" PRIx32
                       " stored, 0x%08" PRIx32 " computed: damaged",
                       n, file_off, len, get32(p), crc);
    uint32_t want = get32(p + 8), got = 0;
    if (body == 0)
        return rk_errf(err, RK_EMALFORMED,
                       "chunk %" PRIu64 " (offset %" PRIu64 "): empty (a chunk holds a record "
                       "at least)",
                       n, file_off);
    size_t pos = BACKUP_CHUNK_HEAD_BYTES;
    while (pos < len) {
        if (len - pos < BACKUP_RECORD_HEAD_BYTES)
            return rk_errf(err, RK_EMALFORMED,
                           "chunk %" PRIu64 " record %" PRIu32 " (offset %" PRIu64
                           "): head cut short",
                           n, got, file_off + pos);
        uint32_t kl = get32(p + pos), vl = get32(p + pos + 4);
        if (kl == 0 || kl > BACKUP_KEY_MAX_BYTES || vl > BACKUP_VALUE_MAX_BYTES ||
            len - pos - BACKUP_RECORD_HEAD_BYTES < (uint64_t)kl + vl)
            return rk_errf(err, RK_EMALFORMED,
                           "chunk %" PRIu64 " record %" PRIu32 " (offset %" PRIu64 "): key %" PRIu32
                           " and value %" PRIu32 " bytes do not fit",
                           n, got, file_off + pos, kl, vl);
        pos += BACKUP_RECORD_HEAD_BYTES + (size_t)kl + vl;
        got++;
    }
    if (got != want)
        return rk_errf(err, RK_EMALFORMED,
                       "chunk %" PRIu64 " (offset %" PRIu64 "): %" PRIu32 " records, its head "
                       "says %" PRIu32,
                       n, file_off, got, want);
    *records = got;
    return RK_OK;
}

bool backup_record_next(const uint8_t *p, size_t len, size_t *pos, const uint8_t **key,
                        uint32_t *key_len, const uint8_t **val, uint32_t *val_len)
{
    if (*pos + BACKUP_RECORD_HEAD_BYTES > len)
        return false;
    uint32_t kl = get32(p + *pos), vl = get32(p + *pos + 4);
    RK_ASSERT(len - *pos - BACKUP_RECORD_HEAD_BYTES >= (uint64_t)kl + vl); /* checked chunk */
    *key = p + *pos + BACKUP_RECORD_HEAD_BYTES;
    *key_len = kl;
    *val = *key + kl;
    *val_len = vl;
    *pos += BACKUP_RECORD_HEAD_BYTES + (size_t)kl + vl;
    return true;
}

/* Exactly len bytes, or RK_EMALFORMED naming what was cut short. */
static int read_exact(backup_read_fn *rd, void *rctx, void *buf, size_t len, uint64_t off,
                      const char *what, struct rk_errmsg *err)
{
    size_t got = 0;
    int rc = rd(rctx, buf, len, &got);
    if (rc != RK_OK)
        return rk_errf(err, rc, "%s (offset %" PRIu64 "): read failed: %s", what, off,
                       rk_strerror(rc));
    if (got != len)
        return rk_errf(err, RK_EMALFORMED,
                       "%s (offset %" PRIu64 "): the file ends after %zu of its %zu bytes: cut "
                       "short",
                       what, off, got, len);
    return RK_OK;
}

static int read_body(backup_read_fn *rd, void *rctx, const struct backup_header *h,
                     backup_record_fn *fn, void *fctx, uint8_t **buf, size_t *cap,
                     struct rk_errmsg *err)
{
    uint64_t off = BACKUP_HEADER_BYTES, end = BACKUP_HEADER_BYTES + h->body_bytes;
    uint64_t chunks = 0, records = 0;
    uint32_t crc = 0;
    char what[64];
    while (off < end) {
        snprintf(what, sizeof(what), "chunk %" PRIu64 " head", chunks);
        if (end - off < BACKUP_CHUNK_HEAD_BYTES)
            return rk_errf(err, RK_EMALFORMED,
                           "%s (offset %" PRIu64 "): %" PRIu64 " body bytes left, less than a "
                           "chunk head",
                           what, off, end - off);
        uint8_t head[BACKUP_CHUNK_HEAD_BYTES];
        int rc = read_exact(rd, rctx, head, sizeof(head), off, what, err);
        if (rc != RK_OK)
            return rc;
        uint32_t body = backup_chunk_body_len(head);
        if (body > BACKUP_CHUNK_MAX_BYTES || body > end - off - BACKUP_CHUNK_HEAD_BYTES)
            return rk_errf(err, RK_EMALFORMED,
                           "chunk %" PRIu64 " (offset %" PRIu64 "): length %" PRIu32
                           " runs past the body (%" PRIu64 " bytes left) or the limit: damaged",
                           chunks, off, body, end - off - BACKUP_CHUNK_HEAD_BYTES);
        size_t len = BACKUP_CHUNK_HEAD_BYTES + (size_t)body;
        if (len > *cap) {
            uint8_t *p = realloc(*buf, len);
            if (p == NULL)
                return rk_errf(err, RK_ENOMEM, "chunk %" PRIu64 ": no memory for %zu bytes", chunks,
                               len);
            *buf = p;
            *cap = len;
        }
        memcpy(*buf, head, sizeof(head));
        snprintf(what, sizeof(what), "chunk %" PRIu64, chunks);
        rc = read_exact(rd, rctx, *buf + sizeof(head), body, off + sizeof(head), what, err);
        if (rc != RK_OK)
            return rc;
        uint32_t n = 0;
        rc = backup_chunk_check(*buf, len, off, chunks, &n, err);
        if (rc != RK_OK)
            return rc;
        crc = rk_crc32c(crc, *buf, len);
        for (size_t pos = BACKUP_CHUNK_HEAD_BYTES; fn != NULL;) {
            const uint8_t *k, *v;
            uint32_t kl, vl;
            uint64_t at = off + pos;
            if (!backup_record_next(*buf, len, &pos, &k, &kl, &v, &vl))
                break;
            rc = fn(fctx, at, k, kl, v, vl);
            if (rc != RK_OK)
                return rc;
        }
        records += n;
        chunks++;
        off += len;
    }
    if (chunks != h->chunks || records != h->records)
        return rk_errf(err, RK_EMALFORMED,
                       "body: %" PRIu64 " chunks and %" PRIu64 " records, the header says %" PRIu64
                       " and %" PRIu64,
                       chunks, records, h->chunks, h->records);
    if (crc != h->body_crc)
        return rk_errf(err, RK_ECORRUPT,
                       "body: crc32c 0x%08" PRIx32 " computed, the header says 0x%08" PRIx32, crc,
                       h->body_crc);
    uint8_t extra;
    size_t got = 0;
    int rc = rd(rctx, &extra, 1, &got);
    if (rc != RK_OK)
        return rk_errf(err, rc, "end (offset %" PRIu64 "): read failed: %s", end, rk_strerror(rc));
    if (got != 0)
        return rk_errf(err, RK_EMALFORMED,
                       "end (offset %" PRIu64 "): bytes after the body the header announces", end);
    return RK_OK;
}

int backup_read(backup_read_fn *rd, void *rctx, struct backup_header *h, backup_record_fn *fn,
                void *fctx, struct rk_errmsg *err)
{
    uint8_t head[BACKUP_HEADER_BYTES];
    size_t got = 0;
    int rc = rd(rctx, head, sizeof(head), &got);
    if (rc != RK_OK)
        return rk_errf(err, rc, "header (offset 0): read failed: %s", rk_strerror(rc));
    rc = backup_header_decode(head, got, h, err);
    if (rc != RK_OK)
        return rc;
    if (h->body_bytes > UINT64_MAX - BACKUP_HEADER_BYTES)
        return rk_errf(err, RK_EMALFORMED, "header (offset 48): body of %" PRIu64 " bytes",
                       h->body_bytes);
    uint8_t *buf = NULL;
    size_t cap = 0;
    rc = read_body(rd, rctx, h, fn, fctx, &buf, &cap, err);
    free(buf);
    return rc;
}
