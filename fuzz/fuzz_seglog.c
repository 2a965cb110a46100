/*
 * fuzz_seglog.c — the durable Raft log (core/log/seglog.c): recovery of a directory whose
 * files are the fuzzer's bytes, on the simulated disk.
 *
 * Input: [flags u8] then parts (fuzz_util.h): the hard state, then up to 8 segments.
 *   flags bit 0: write part 0 as "hardstate" (else there is none);
 *   flags bit 1: write part 0 as "hardstate.tmp" too (a leftover recovery must remove);
 *   flags bits 2-3: segment_bytes of the store (the default, 64, 512, 4096), for the appends;
 *   flags bit 4: reseal: recompute the CRC of the hard state and of every record whose length
 *                field fits the file, so that mutations get past the checksums;
 *   flags bit 5: no "format" file (a format-1 directory, which open must refuse when it holds
 *                anything); else the format file of format 2 is written first.
 *   A segment part is [delta u8][contents]; its name is seg-<first>.log where first is the
 *   index of its first record (0 without one) plus delta read as a signed byte. Later parts
 *   with the same name replace earlier ones.
 *
 * Properties:
 *   1. log_seglog_verify (recovery run dry) changes no byte and no name, and agrees with
 *      log_seglog_open: the same result, the same entries (count, snapshot point, contents).
 *   2. Whatever open accepts loads as consecutive entries from snapshot + 1, every term
 *      covered by the hard state's term (L3 of seglog.c).
 *   3. The recovered store works: one more entry appended and synced, the store closed and
 *      opened again, loads exactly the old entries plus the new one and the hard state set.
 *   4. A refusal for corruption comes with a struct log_damage (kind set, the same from verify
 *      and open, the acknowledged index at least the damaged range's last index).
 */
#include <inttypes.h>

#include "common/crc32c.h"
#include "fuzz_disk.h"
#include "log/log.h"

#define SEGLOG_FZ_MAX_SEGMENTS 8
#define SEGLOG_FZ_HS_BYTES     48u
#define SEGLOG_FZ_REC_HEADER   25u /* crc, len, term, index, type */

static uint64_t seglog_fz_le(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void seglog_fz_put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes the CRC of every whole record (crc covers len through data) of a segment. */
static void seglog_fz_reseal_segment(uint8_t *p, size_t n)
{
    size_t off = 0;
    while (n - off >= SEGLOG_FZ_REC_HEADER) {
        uint64_t len = seglog_fz_le(p + off + 4, 4);
        if (len < SEGLOG_FZ_REC_HEADER - 8 || len > n - off - 8)
            return;
        seglog_fz_put32(p + off, rk_crc32c(0, p + off + 4, (size_t)len + 4));
        off += 8 + (size_t)len;
    }
}

static uint64_t seglog_fz_entry_hash(uint64_t h, const struct raft_entry *e)
{
    h = fz_hash_u64(h, e->term);
    h = fz_hash_u64(h, e->index);
    h = fz_hash_u64(h, e->type);
    h = fz_hash_u64(h, e->len);
    return e->len == 0 ? h : fz_hash(h, e->data, e->len);
}

/* What verify's visitor saw. */
struct seglog_fz_visit {
    bool hs_called;
    uint64_t snap_index;
    uint64_t entries;
    uint64_t hash;
};

static void seglog_fz_visit_hs(void *ctx, bool found, const struct raft_hard_state *hs,
                               uint64_t snapshot_index, uint64_t snapshot_term)
{
    struct seglog_fz_visit *v = ctx;
    FZ_CHECK(!v->hs_called, "hard_state visited twice");
    FZ_CHECK(found || (hs->term == 0 && hs->vote == 0 && snapshot_index == 0),
             "no hard state found, yet term %" PRIu64, hs->term);
    v->hs_called = true;
    v->snap_index = snapshot_index;
    fz_use(snapshot_term + hs->commit);
}

static void seglog_fz_visit_entry(void *ctx, const char *file, uint64_t offset,
                                  const struct raft_entry *e)
{
    struct seglog_fz_visit *v = ctx;
    FZ_CHECK(v->hs_called, "an entry before the hard state");
    FZ_CHECK(e->index == v->snap_index + 1 + v->entries,
             "%s@%" PRIu64 ": entry %" PRIu64 " visited after %" PRIu64 " from snapshot %" PRIu64,
             file, offset, e->index, v->entries, v->snap_index);
    v->entries++;
    v->hash = seglog_fz_entry_hash(v->hash, e);
}

static void seglog_fz_visit_notice(void *ctx, const struct log_verify_notice *n)
{
    (void)ctx;
    FZ_CHECK(n->text != NULL && n->text[0] != '\0', "a notice without text");
    fz_use(n->kind + n->offset + n->bytes);
}

/* Writes the directory the input describes. */
static void seglog_fz_write(struct fs *fs, struct fz_bytes *b, uint8_t flags)
{
    const uint8_t *p;
    size_t n;
    uint8_t *copy;
    if ((flags & 32) == 0) {
        uint8_t fmt[12] = {0, 0, 0, 0, 'R', 'K', 'L', 'F', 2, 0, 0, 0};
        seglog_fz_put32(fmt, rk_crc32c(0, fmt + 4, 8));
        fz_disk_write(fs, "format", fmt, sizeof(fmt));
    }
    if (fz_part(b, &p, &n)) {
        copy = malloc(n == 0 ? 1 : n);
        FZ_CHECK(copy != NULL, "out of memory");
        memcpy(copy, p, n);
        if ((flags & 16) != 0 && n >= SEGLOG_FZ_HS_BYTES)
            seglog_fz_put32(copy, rk_crc32c(0, copy + 4, SEGLOG_FZ_HS_BYTES - 4));
        if ((flags & 1) != 0)
            fz_disk_write(fs, "hardstate", copy, n);
        if ((flags & 2) != 0)
            fz_disk_write(fs, "hardstate.tmp", copy, n);
        free(copy);
    }
    for (int i = 0; i < SEGLOG_FZ_MAX_SEGMENTS && fz_part(b, &p, &n); i++) {
        if (n == 0)
            continue;
        int8_t delta = (int8_t)p[0];
        copy = malloc(n);
        FZ_CHECK(copy != NULL, "out of memory");
        memcpy(copy, p + 1, n - 1);
        if ((flags & 16) != 0)
            seglog_fz_reseal_segment(copy, n - 1);
        uint64_t first = n - 1 >= SEGLOG_FZ_REC_HEADER ? seglog_fz_le(copy + 16, 8) : 0;
        char name[FS_NAME_MAX + 1];
        snprintf(name, sizeof(name), "seg-%020" PRIu64 ".log", first + (uint64_t)(int64_t)delta);
        fz_disk_write(fs, name, copy, n - 1);
        free(copy);
    }
    fz_disk_sync_dir(fs);
}

/* What a load returned, digested (entries are borrowed only until the next call). */
struct seglog_fz_loaded {
    struct raft_hard_state hs;
    uint64_t snap_index, snap_term;
    size_t n;
    uint64_t hash;      /* of every entry */
    uint64_t last_term; /* of the last entry, or snap_term */
};

static void seglog_fz_load(struct log_store *s, struct seglog_fz_loaded *out, size_t hash_first)
{
    const struct raft_entry *es = NULL;
    struct rk_errmsg err = {{0}};
    memset(out, 0, sizeof(*out));
    int rc = s->ops->load(s, &out->hs, &out->snap_index, &out->snap_term, &es, &out->n, &err);
    FZ_CHECK(rc == RK_OK, "load after a successful open: %s: %s", rk_strerror(rc), err.text);
    out->last_term = out->snap_term;
    for (size_t i = 0; i < out->n; i++) {
        FZ_CHECK(es[i].index == out->snap_index + 1 + i, "entry %zu has index %" PRIu64, i,
                 es[i].index);
        FZ_CHECK(es[i].term <= out->hs.term, "L3: entry %" PRIu64 " of term %" PRIu64
                 " above the hard state's %" PRIu64, es[i].index, es[i].term, out->hs.term);
        FZ_CHECK(es[i].len == 0 || es[i].data != NULL, "entry %" PRIu64 " without data",
                 es[i].index);
        if (i < hash_first)
            out->hash = seglog_fz_entry_hash(out->hash, &es[i]);
        out->last_term = es[i].term;
    }
}

/* Property 3. Consumes s (destroys it). */
static void seglog_fz_extend(const struct log_seglog_config *cfg, struct log_store *s,
                             const struct seglog_fz_loaded *was)
{
    uint64_t last = was->snap_index + was->n;
    if (last == UINT64_MAX || was->hs.term == UINT64_MAX) {
        s->ops->destroy(s);
        return;
    }
    struct rk_errmsg err = {{0}};
    uint8_t data[3] = {'f', 'z', (uint8_t)was->n};
    uint64_t term = was->hs.term > was->last_term ? was->hs.term : was->last_term;
    if (term == 0)
        term = 1;
    struct raft_entry e = {term, last + 1, RAFT_ENTRY_NORMAL, sizeof(data), data};
    struct raft_hard_state hs = was->hs;
    if (hs.term != term) {
        hs.term = term;
        hs.vote = 0;
    }
    int rc = s->ops->set_hard_state(s, &hs, &err);
    if (rc == RK_OK)
        rc = s->ops->append(s, &e, 1, &err);
    if (rc == RK_OK)
        rc = s->ops->sync(s, &err);
    FZ_CHECK(rc == RK_OK, "appending %" PRIu64 " to a recovered log: %s: %s", e.index,
             rk_strerror(rc), err.text);
    s->ops->destroy(s);
    s = NULL;
    rc = log_seglog_open(cfg, &s, &err);
    FZ_CHECK(rc == RK_OK, "reopening after an append: %s: %s", rk_strerror(rc), err.text);
    struct seglog_fz_loaded now;
    seglog_fz_load(s, &now, was->n);
    FZ_CHECK(now.n == was->n + 1, "%zu entries after appending to %zu", now.n, was->n);
    FZ_CHECK(now.snap_index == was->snap_index && now.snap_term == was->snap_term,
             "snapshot point moved");
    FZ_CHECK(now.hash == was->hash, "the old entries changed");
    FZ_CHECK(now.last_term == term, "the new entry's term");
    FZ_CHECK(now.hs.term == hs.term && now.hs.vote == hs.vote,
             "hard state (%" PRIu64 ", %" PRIu64 ") reloaded as (%" PRIu64 ", %" PRIu64 ")",
             hs.term, hs.vote, now.hs.term, now.hs.vote);
    s->ops->destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t segment_bytes[4] = {0, 64, 512, 4096};
    struct fz_bytes b = {data, size};
    uint8_t flags = fz_u8(&b);
    struct simdisk *disk = simdisk_create(1);
    FZ_CHECK(disk != NULL, "out of memory");
    struct fs *fs = simdisk_fs(disk);
    seglog_fz_write(fs, &b, flags);
    struct log_damage vdamage, damage;
    struct log_seglog_config cfg = {fs, NULL, segment_bytes[(flags >> 2) & 3], &vdamage};

    /* Property 1: the dry run first, then the real one. */
    uint64_t before = fz_disk_digest(fs);
    struct seglog_fz_visit visit;
    memset(&visit, 0, sizeof(visit));
    struct log_verify_cb cb = {&visit, seglog_fz_visit_hs, seglog_fz_visit_entry,
                               seglog_fz_visit_notice};
    struct log_verify_stats st;
    struct rk_errmsg verr = {{0}}, err = {{0}};
    int rc_verify = log_seglog_verify(&cfg, &cb, &st, &verr);
    FZ_CHECK(fz_disk_digest(fs) == before, "log_seglog_verify changed the directory");
    struct log_store *s = NULL;
    cfg.damage = &damage;
    int rc = log_seglog_open(&cfg, &s, &err);
    cfg.damage = NULL;
    FZ_CHECK(rc == rc_verify, "verify says %s (%s), open says %s (%s)", rk_strerror(rc_verify),
             verr.text, rk_strerror(rc), err.text);
    /* Property 4. */
    FZ_CHECK((rc == RK_ECORRUPT) == (damage.kind != LOG_DAMAGE_NONE),
             "open: %s with damage kind %d", rk_strerror(rc), (int)damage.kind);
    FZ_CHECK(memcmp(&damage, &vdamage, sizeof(damage)) == 0 || rc != RK_ECORRUPT,
             "verify and open report different damage");
    FZ_CHECK(damage.acked_index >= damage.last_index, "acked index below the damaged range");
    if (rc != RK_OK) {
        FZ_CHECK(rc == RK_ECORRUPT || rc == RK_ETOOBIG || rc == RK_EINVAL || rc == RK_ENOMEM ||
                     rc == RK_EMALFORMED,
                 "open: %s: %s", rk_strerror(rc), err.text);
        FZ_CHECK(err.text[0] != '\0', "open failed without a message");
        simdisk_destroy(disk);
        return 0;
    }
    /* Property 2, and the rest of 1. */
    struct seglog_fz_loaded was;
    seglog_fz_load(s, &was, SIZE_MAX);
    FZ_CHECK(was.n == st.entries && visit.entries == st.entries,
             "open loads %zu entries, verify counts %" PRIu64 " and visits %" PRIu64, was.n,
             st.entries, visit.entries);
    FZ_CHECK(was.snap_index == st.snapshot_index && was.snap_term == st.snapshot_term,
             "snapshot point (%" PRIu64 ", %" PRIu64 ") != verify's (%" PRIu64 ", %" PRIu64 ")",
             was.snap_index, was.snap_term, st.snapshot_index, st.snapshot_term);
    FZ_CHECK(was.hash == visit.hash, "open and verify return different entries");
    /* Property 3. */
    seglog_fz_extend(&cfg, s, &was);
    simdisk_destroy(disk);
    return 0;
}
