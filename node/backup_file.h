/*
 * backup_file.h — the file `raftkv-cli backup` writes and `raftkv-tool restore` reads: the
 * state machine of a cluster at one committed index (node/README.md "Backup and restore").
 *
 * FORMAT, version 1 (little-endian)
 *
 *   header, 64 bytes:
 *     0  magic u32 "RKBK"      4  version u32 (1)
 *     8  cluster id u64       16  index u64: the Raft index the content is the state at
 *    24  term u64: that entry's term
 *    32  records u64          40  chunks u64          48  body bytes u64 (after the header)
 *    56  body crc32c u32: of every body byte, chunk heads included
 *    60  header crc32c u32: of bytes 0..59
 *   body: chunks, each
 *     [crc32c u32 of the next 8 bytes and the records][records bytes u32][record count u32]
 *     then records [key len u32][value len u32][key][value]; a chunk holds one record at
 *     least
 *   Nothing after the last chunk.
 *
 * The records are the store's own (kv's namespaces: user keys of every database, expiry index,
 * client sessions, metadata): restoring them all gives the same state machine. The header is
 * written last (raftkv-cli writes FILE.part, then the header, fsync, rename), so a file whose
 * header checks out was written to the end.
 *
 * Invariants of the reader (it is fuzzed: fuzz/fuzz_backup.c):
 *   B1  every length is checked against what is left before it is used; memory is bounded by
 *       the largest chunk (BACKUP_CHUNK_MAX_BYTES);
 *   B2  damage is an RK_ECORRUPT/RK_EMALFORMED error whose message names the part (header,
 *       chunk N, record M) and its file offset, never an assert;
 *   B3  backup_read calls the record callback only for records of chunks whose CRC checked
 *       out; a caller that must not act on a damaged file reads it twice (verify, then apply).
 */
#ifndef NODE_BACKUP_FILE_H
#define NODE_BACKUP_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define BACKUP_MAGIC             0x4b424b52u /* "RKBK" */
#define BACKUP_VERSION           1u
#define BACKUP_HEADER_BYTES      64u
#define BACKUP_CHUNK_HEAD_BYTES  12u
#define BACKUP_RECORD_HEAD_BYTES 8u
#define BACKUP_KEY_MAX_BYTES     ((64u << 10) + 1) /* bitcask.h BC_MAX_KEY_BYTES */
#define BACKUP_VALUE_MAX_BYTES   (64u << 20)       /* bitcask.h BC_MAX_VALUE_BYTES */
#define BACKUP_CHUNK_TARGET      ((size_t)1 << 20) /* records bytes a chunk is closed at */
/* A chunk holds records up to BACKUP_CHUNK_TARGET, plus one that may pass it. */
#define BACKUP_CHUNK_MAX_BYTES                                                                     \
    (BACKUP_CHUNK_TARGET + BACKUP_RECORD_HEAD_BYTES + BACKUP_KEY_MAX_BYTES + BACKUP_VALUE_MAX_BYTES)

struct backup_header {
    uint64_t cluster_id;
    uint64_t index;
    uint64_t term;
    uint64_t records;
    uint64_t chunks;
    uint64_t body_bytes;
    uint32_t body_crc;
};

void backup_header_encode(const struct backup_header *h, uint8_t out[BACKUP_HEADER_BYTES]);
/* RK_OK, or RK_EMALFORMED/RK_ECORRUPT with what is wrong (magic, version, crc). */
int backup_header_decode(const uint8_t *p, size_t len, struct backup_header *h,
                         struct rk_errmsg *err);

/* A chunk being built: buf holds the head then the records (malloc'ed; owned). */
struct backup_chunk {
    uint8_t *buf;
    size_t len, cap;
    uint32_t records;
};

/* Starts an empty chunk (keeps buf). */
void backup_chunk_reset(struct backup_chunk *c);
/* Appends a record; false when out of memory (c unchanged) or when a length is over the limits
 * (the store's own, so never for a record read from a store). */
bool backup_chunk_add(struct backup_chunk *c, const uint8_t *key, uint32_t key_len,
                      const uint8_t *val, uint32_t val_len);
/* Writes the head (lengths, crc): c->buf[0..len) is then the chunk as it goes in the file.
 * Requires a record at least. */
void backup_chunk_seal(struct backup_chunk *c);
void backup_chunk_free(struct backup_chunk *c);

/* Checks one whole chunk p[0..len) (head and records): crc, record framing and count, limits.
 * file_off and n (its number, from 0) go in the message. *records: its record count. */
int backup_chunk_check(const uint8_t *p, size_t len, uint64_t file_off, uint64_t n,
                       uint32_t *records, struct rk_errmsg *err);
/* The records bytes a chunk head announces (unchecked: backup_chunk_check checks). */
uint32_t backup_chunk_body_len(const uint8_t head[BACKUP_CHUNK_HEAD_BYTES]);
/* The records of a chunk that checked out, one per call from *pos = BACKUP_CHUNK_HEAD_BYTES;
 * false at the end. key and val point into p. */
bool backup_record_next(const uint8_t *p, size_t len, size_t *pos, const uint8_t **key,
                        uint32_t *key_len, const uint8_t **val, uint32_t *val_len);

/* Reads len bytes into buf: *got < len only at the end of the input. RK_OK or an I/O error. */
typedef int backup_read_fn(void *ctx, void *buf, size_t len, size_t *got);
/* Called per record, in file order, with the file offset of its head (its record bytes can be
 * read again there: [key len u32][value len u32][key][value]); not RK_OK stops the read with
 * that code. */
typedef int backup_record_fn(void *ctx, uint64_t off, const uint8_t *key, uint32_t key_len,
                             const uint8_t *val, uint32_t val_len);

/* Reads and checks a whole backup (B1..B3): header, every chunk, the totals, the body crc and
 * the end of the input. *h is the header (valid when RK_OK). fn may be NULL (verify only). */
int backup_read(backup_read_fn *rd, void *rctx, struct backup_header *h, backup_record_fn *fn,
                void *fctx, struct rk_errmsg *err);

#endif
