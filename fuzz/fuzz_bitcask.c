/*
 * fuzz_bitcask.c — the storage engine's recovery (core/bitcask): data files, hint files and a
 * merge manifest made of the fuzzer's bytes, on the simulated disk.
 *
 * Input: [flags u8] then up to 12 parts (fuzz_util.h), each [file u8][contents]:
 *   file bits 0-2: the data file id - 1 (ids 1..8);
 *   file bits 3-5: which file: 0-1 NNNNNNNNNN.data, 2-3 NNNNNNNNNN.hint, 4 .data.tmp, 5 .hint.tmp,
 *                  6 MERGE, 7 MERGE.tmp.
 *   Later parts with the same name replace earlier ones.
 *   flags bit 0: reseal: recompute the CRC of every data record, hint entry, hint trailer (and
 *                its entry count and entries' CRC) and manifest whose lengths fit, so that
 *                mutations get past the checksums;
 *   flags bit 1: merge after the write of property 3;
 *   flags bits 2-3: max_file_bytes (the default, 64, 512, 4096), for the writes.
 *
 * Properties:
 *   1. bc_verify (recovery run dry) changes no byte and no name; where it succeeds, bc_open does
 *      too, with the same live keys and values in the same order and the same applied index;
 *      where bc_open refuses the store, bc_verify did too (it may be stricter: bitcask.h).
 *   2. What bc_open accepts reads back: bc_scan visits bc_count keys, and bc_get of each gives
 *      the value bc_scan gave.
 *   3. The recovered store works: a put in a new batch, synced (and a merge, when flags ask),
 *      then a close and an open give exactly the same keys and values and applied index.
 *   All three are checked for every input, resealed ones with a hint file included. A resealed
 *   hint can disagree with its data file, which a bad disk cannot do: bc_open checks what it can
 *   without reading the data file (recover.c, HINTS), bc_verify matches the two entry by entry,
 *   and bc_merge refuses (RK_ECORRUPT) to drop a file that lacks a record the keydir has.
 */
#include <inttypes.h>

#include "bitcask/bitcask.h"
#include "common/crc32c.h"
#include "fuzz_disk.h"

#define BC_FZ_MAX_PARTS 12

static uint64_t bc_fz_le(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void bc_fz_put(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void bc_fz_reseal_data(uint8_t *p, size_t n)
{
    size_t off = 0;
    while (n - off >= BC_HEADER_BYTES) {
        uint64_t len = BC_HEADER_BYTES + (bc_fz_le(p + off + 12, 4) & BC_REC_KEY_MASK) +
                       bc_fz_le(p + off + 16, 4);
        if (len > n - off)
            return;
        bc_fz_put(p + off, rk_crc32c(0, p + off + 4, (size_t)len - 4), 4);
        off += (size_t)len;
    }
}

static void bc_fz_reseal_hint(uint8_t *p, size_t n)
{
    if (n < BC_HINT_TRAILER_BYTES)
        return;
    size_t end = n - BC_HINT_TRAILER_BYTES, off = 0;
    uint32_t body = 0;
    uint64_t entries = 0;
    while (end - off >= BC_HINT_HEADER_BYTES) {
        uint64_t len = BC_HINT_HEADER_BYTES + (bc_fz_le(p + off + 12, 4) & BC_REC_KEY_MASK);
        if (len > end - off)
            break;
        bc_fz_put(p + off, rk_crc32c(0, p + off + 4, (size_t)len - 4), 4);
        body = rk_crc32c(body, p + off, (size_t)len);
        entries++;
        off += (size_t)len;
    }
    uint8_t *t = p + end;
    bc_fz_put(t + 12, body, 4);
    bc_fz_put(t + 16, entries, 8);
    bc_fz_put(t, rk_crc32c(0, t + 4, BC_HINT_TRAILER_BYTES - 4), 4);
}

static void bc_fz_write(struct fs *fs, struct fz_bytes *b, uint8_t flags)
{
    static const char *const exts[8] = {"data",     "data",     "hint", "hint",
                                        "data.tmp", "hint.tmp", NULL,   NULL};
    const uint8_t *p;
    size_t n;
    for (int i = 0; i < BC_FZ_MAX_PARTS && fz_part(b, &p, &n); i++) {
        if (n == 0)
            continue;
        unsigned id = 1 + (p[0] & 7), kind = (p[0] >> 3) & 7;
        uint8_t *copy = malloc(n);
        FZ_CHECK(copy != NULL, "out of memory");
        memcpy(copy, p + 1, n - 1);
        char name[FS_NAME_MAX + 1];
        if (exts[kind] != NULL)
            snprintf(name, sizeof(name), "%010u.%s", id, exts[kind]);
        else
            snprintf(name, sizeof(name), "%s", kind == 6 ? "MERGE" : "MERGE.tmp");
        if ((flags & 1) != 0) {
            if (kind < 2 || kind == 4)
                bc_fz_reseal_data(copy, n - 1);
            else if (kind < 4 || kind == 5)
                bc_fz_reseal_hint(copy, n - 1);
            else if (n - 1 >= 4)
                bc_fz_put(copy, rk_crc32c(0, copy + 4, n - 5), 4);
        }
        fz_disk_write(fs, name, copy, n - 1);
        free(copy);
    }
    fz_disk_sync_dir(fs);
}

/* A digest of the live keys and values in bc_scan's order (or bc_verify's key visits). */
struct bc_fz_keys {
    struct bitcask *bc; /* NULL: do not bc_get */
    uint64_t n;
    uint64_t hash;
    uint64_t max_index; /* of the records bc_verify visited */
};

static bool bc_fz_key(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                      uint32_t val_len)
{
    struct bc_fz_keys *k = ctx;
    uint64_t h = fz_hash_u64(k->hash, key_len);
    h = fz_hash(h, key, key_len);
    h = fz_hash_u64(h, val_len);
    uint64_t vh = fz_hash(0, val, val_len);
    k->hash = fz_hash_u64(h, vh);
    k->n++;
    if (k->bc != NULL) {
        /* val is borrowed until the next call on bc: hashed above, before this one. */
        const uint8_t *got = NULL;
        uint32_t got_len = 0;
        struct rk_errmsg err = {{0}};
        int rc = bc_get(k->bc, key, key_len, &got, &got_len, &err);
        FZ_CHECK(rc == RK_OK || rc == RK_ECORRUPT, "bc_get of a scanned key: %s: %s",
                 rk_strerror(rc), err.text);
        if (rc == RK_OK)
            FZ_CHECK(got_len == val_len && fz_hash(0, got, got_len) == vh,
                     "bc_get and bc_scan disagree on a value");
    }
    return true;
}

/* Scans bc: RK_OK with *keys filled, or the scan's error (a bad record read). */
static int bc_fz_scan(struct bitcask *bc, struct bc_fz_keys *keys)
{
    struct rk_errmsg err = {{0}};
    memset(keys, 0, sizeof(*keys));
    keys->bc = bc;
    int rc = bc_scan(bc, bc_fz_key, keys, &err);
    if (rc != RK_OK) {
        FZ_CHECK(rc == RK_ECORRUPT, "bc_scan: %s: %s", rk_strerror(rc), err.text);
        return rc;
    }
    FZ_CHECK(keys->n == bc_count(bc), "bc_scan visits %" PRIu64 " keys, bc_count says %" PRIu64,
             keys->n, bc_count(bc));
    return RK_OK;
}

static void bc_fz_notice(void *ctx, const struct bc_verify_notice *n)
{
    (void)ctx;
    FZ_CHECK(n->text != NULL && n->text[0] != '\0', "a notice without text");
    fz_use(n->kind + n->offset + n->bytes);
}

static void bc_fz_record(void *ctx, const char *file, uint64_t offset,
                         const struct bc_verify_record *r)
{
    struct bc_fz_keys *k = ctx;
    if (r->index > k->max_index)
        k->max_index = r->index;
    FZ_CHECK(r->key_len == 0 || r->key != NULL, "%s@%" PRIu64 ": key", file, offset);
    FZ_CHECK(r->val_len == 0 || r->val != NULL, "%s@%" PRIu64 ": value", file, offset);
    fz_use(r->index + r->flags + fz_hash(0, r->key, r->key_len) + fz_hash(0, r->val, r->val_len));
}

/* Property 3: a put, a sync, maybe a merge; close; open; the same contents. */
static void bc_fz_extend(const struct bc_config *cfg, struct bitcask *bc, uint8_t flags,
                         uint64_t max_index)
{
    struct rk_errmsg err = {{0}};
    /* Above every record's index, not just the last batch's: files whose indexes go back (B2
     * broken) would otherwise let an old record of the key win at the reopen. */
    uint64_t index = (bc_applied_index(bc) > max_index ? bc_applied_index(bc) : max_index) + 1;
    if (index == 0 || index >= UINT64_MAX - 1) {
        bc_close(bc);
        return;
    }
    static const uint8_t key[] = {'f', 'z', 'k'}, val[] = {'f', 'z', 'v'};
    int rc = bc_put(bc, index, key, sizeof(key), val, sizeof(val), &err);
    if (rc == RK_OK)
        rc = bc_end_batch(bc, &err);
    if (rc == RK_OK)
        rc = bc_sync(bc, &err);
    FZ_CHECK(rc == RK_OK, "writing to a recovered store: %s: %s", rk_strerror(rc), err.text);
    if ((flags & 2) != 0) {
        rc = bc_merge(bc, &err);
        FZ_CHECK(rc == RK_OK || rc == RK_ECORRUPT, "bc_merge: %s: %s", rk_strerror(rc), err.text);
    }
    struct bc_fz_keys before, after;
    rc = bc_fz_scan(bc, &before);
    uint64_t applied = bc_applied_index(bc);
    FZ_CHECK(applied == index, "applied index %" PRIu64 " after writing %" PRIu64, applied, index);
    bc_close(bc);
    bc = NULL;
    int rc2 = bc_open(cfg, &bc, &err);
    FZ_CHECK(rc2 == RK_OK, "reopening after a write: %s: %s", rk_strerror(rc2), err.text);
    FZ_CHECK(bc_applied_index(bc) == applied, "applied index %" PRIu64 " reopened as %" PRIu64,
             applied, bc_applied_index(bc));
    rc2 = bc_fz_scan(bc, &after);
    FZ_CHECK(rc2 == rc, "scan before the reopen: %s, after: %s", rk_strerror(rc), rk_strerror(rc2));
    if (rc == RK_OK)
        FZ_CHECK(after.n == before.n && after.hash == before.hash,
                 "%" PRIu64 " keys before the reopen, %" PRIu64 " after, or other values", before.n,
                 after.n);
    bc_close(bc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t file_bytes[4] = {0, 64, 512, 4096};
    struct fz_bytes b = {data, size};
    uint8_t flags = fz_u8(&b);
    struct simdisk *disk = simdisk_create(1);
    FZ_CHECK(disk != NULL, "out of memory");
    struct fs *fs = simdisk_fs(disk);
    bc_fz_write(fs, &b, flags);
    struct bc_config cfg = {fs, NULL, file_bytes[(flags >> 2) & 3], 0, 0, NULL, 0};

    /* Property 1: the dry run first. */
    uint64_t before = fz_disk_digest(fs);
    struct bc_fz_keys vkeys;
    memset(&vkeys, 0, sizeof(vkeys));
    struct bc_verify_cb cb = {&vkeys, bc_fz_record, bc_fz_key, bc_fz_notice};
    struct bc_verify_stats st;
    struct rk_errmsg verr = {{0}}, err = {{0}};
    int rc_verify = bc_verify(&cfg, &cb, &st, &verr);
    FZ_CHECK(fz_disk_digest(fs) == before, "bc_verify changed the directory");
    FZ_CHECK(rc_verify == RK_OK || rc_verify == RK_ECORRUPT || rc_verify == RK_ENOMEM ||
                 rc_verify == RK_EMALFORMED,
             "bc_verify: %s: %s", rk_strerror(rc_verify), verr.text);
    struct bitcask *bc = NULL;
    struct bc_damage damage;
    cfg.damage = &damage;
    int rc = bc_open(&cfg, &bc, &err);
    cfg.damage = NULL;
    FZ_CHECK(rc != RK_ECORRUPT || damage.kind != BC_DAMAGE_NONE, "RK_ECORRUPT without damage");
    FZ_CHECK(rc == RK_OK || rc == RK_ECORRUPT || rc == RK_ENOMEM || rc == RK_ENOSPC ||
                 rc == RK_EMALFORMED,
             "bc_open: %s: %s", rk_strerror(rc), err.text);
    FZ_CHECK(rc_verify != RK_OK || rc == RK_OK, "verify passed, open says %s: %s", rk_strerror(rc),
             err.text);
    FZ_CHECK(rc != RK_ECORRUPT || rc_verify == RK_ECORRUPT, "open says %s, verify %s: %s", err.text,
             rk_strerror(rc_verify), verr.text);
    if (rc != RK_OK) {
        FZ_CHECK(err.text[0] != '\0', "bc_open failed without a message");
        simdisk_destroy(disk);
        return 0;
    }
    /* Property 2, and the rest of 1. */
    struct bc_fz_keys keys;
    int rc_scan = bc_fz_scan(bc, &keys);
    struct bc_stats bs;
    bc_stats(bc, &bs);
    if (rc_verify == RK_OK) {
        FZ_CHECK(rc_scan == RK_OK, "verify passed, a scan after open failed");
        FZ_CHECK(keys.n == vkeys.n && keys.n == st.keys && keys.hash == vkeys.hash,
                 "open has %" PRIu64 " keys, verify %" PRIu64 " (stats %" PRIu64 ") or others",
                 keys.n, vkeys.n, st.keys);
        FZ_CHECK(bc_applied_index(bc) == st.applied_index,
                 "applied index %" PRIu64 " after open, %" PRIu64 " by verify",
                 bc_applied_index(bc), st.applied_index);
    }
    bc_fz_extend(&cfg, bc, flags, vkeys.max_index);
    simdisk_destroy(disk);
    return 0;
}
