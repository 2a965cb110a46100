/*
 * seglog.c — the durable log_store (log.h): the Raft log in segment files of CRC-framed records
 * and the hard state in a file replaced atomically, all through an injected struct fs.
 *
 * STATE OF THE DIRECTORY
 *
 *   seg-<first index, 20 digits>.log  segments, named after the index of their first record
 *                                     (zero-padded, so list order is index order)
 *   hardstate                         [crc32c u32][magic u32][term u64][vote u64][commit u64]
 *                                     [snapshot index u64][snapshot term u64]; crc covers
 *                                     magic..snapshot term
 *   hardstate.tmp                     a hard state being written; garbage once found at open
 *   format                            [crc32c u32][magic u32 "RKLF"][version u32 = 2], written
 *                                     (and synced, with the directory) before any other file
 *   promise                           [crc32c u32][magic u32 "RKPM"][index u64]: the promise
 *                                     of a repaired log or a new directory (LOG_PROMISE_NEW;
 *                                     log.h, REPAIR below); absent: none; one
 *                                     that does not check out: LOG_PROMISE_UNKNOWN (never less)
 *   promise.tmp                       a promise being written; garbage once found at open
 *   anything else                     ignored
 *
 * Record (little-endian): [crc32c u32][len u32][term u64][index u64][type u8][data]
 *   len counts the bytes after itself (17 + data bytes); crc covers len through data. The index
 *   is in the record so that a record can never be taken for another (a misplaced or stale one
 *   fails the index check); the record carries its own length so that a torn tail is recognized
 *   as one (it runs past the end of the file).
 * Commit record: the same framing with term 0, index 0 (no entry has index 0), type 0 and 16
 *   bytes of data: [last index u64][own offset u64] — the last entry index before it in the log,
 *   and the offset it sits at (so that a copy of one inside an entry's data, or one misplaced by
 *   the disk, is never believed). See TORN OR CORRUPT.
 *
 * FORMAT. Format 1 (before this commit record existed) had no `format` file; a directory with
 * segments or a hard state and no `format` file is refused (RK_EMALFORMED, "format 1"), never
 * read by the rules below, which would take its last segment's tail for unsynced bytes. The
 * format file is written before the first segment or hard state, so a directory without one
 * and without either is new; a bad format file beside nothing else is a first write that never
 * completed (written again), beside data it is corruption.
 *
 * TORN OR CORRUPT (the decision recovery makes for a record that does not check out)
 *   C1  Every byte of a segment that a sync made durable lies before a commit record appended
 *       by that sync or an earlier one: every fs sync of a segment (seal_last) first appends a
 *       commit record if the segment has bytes after its last one. A sync with nothing new to
 *       cover writes nothing. Cost: one small record in the same sync (group commit still makes
 *       one fs sync per batch: log_seglog_stats' fs_syncs, tests/test_seglog.c).
 *   C2  The tear model of fs.h D1 (and sim/simdisk.c): a crash keeps the durable bytes and a
 *       prefix of the unsynced ones, of which only the last sector may end in garbage. So a commit
 *       record that checks out (crc, own offset) proves that every byte before it is as written.
 *   The rule, in every segment: a bad record (crc, length, or a record that runs past the end)
 *   at offset X is corruption if a commit record that checks out lies after X in the same file
 *   (found by searching every offset after X, read twice: a bad read cannot make one appear);
 *   or if the segment is not the highest on disk (L2: it was synced whole, and ends with a commit
 *   record by C1). Otherwise — the highest segment, nothing after X vouched for — X lies after
 *   the last commit record, in bytes no sync ever returned for (C1): a torn tail, cut. A record
 *   that checks out but has the wrong index, and a commit record whose fields are wrong, are
 *   corruption anywhere (a tear does not write wrong records, C2).
 *   Entries after the last commit record of the highest segment that check out are kept (a crash
 *   may keep unsynced bytes, D1; nothing was acknowledged on them, and keeping them is as safe as
 *   any surviving unsynced byte) and sealed by open's final sync (settle), so C1 holds again.
 *   On corruption the open fails with RK_ECORRUPT and a struct log_damage (log.h): the file and
 *   offset, the index range the damage may cover (first: the index expected at X; last: the
 *   vouching commit record's last index), and the highest index this node may have acknowledged
 *   (the highest last index of any commit record that checks out, in that file after X or in any
 *   later segment, or the hard state's commit) — what a repair from peers must restore.
 *   What the rule cannot tell apart (argued in the design note, not detected): damage that
 *   destroys both the last bytes of the highest segment and the commit record after them (a
 *   truncation of the file, or one fault spanning both) looks like a tear. A single flipped bit,
 *   a lost or misdirected write of one append (the entries and their commit record are separate
 *   appends), a bad sector inside the data: all are detected. A bad commit record with nothing
 *   after it is taken as torn: the entries before it check out and are kept, so nothing is lost.
 *
 * INVARIANTS
 *   L1  Segment i holds the records first_i, first_i + 1, ... in order; in memory (segs[]) and
 *       in every durable state recovery accepts, first_{i+1} = last_i + 1.
 *   L2  Only the highest segment on disk may hold bytes that are not durable, and only the last
 *       segment in segs[] has an open handle (active). Before a segment is created above one
 *       with unsynced bytes, that one is synced (append's rotation; compact syncs a dirty last
 *       segment it dooms, since the next append starts a segment above it).
 *   L3  The log's terms are covered by the hard state's term in every state recovery returns
 *       (raft_create refuses an entry term above it, Raft I2): do_sync writes the hard state
 *       before the entries of its batch, and recovery raises the term where a crash left entries
 *       durable without the hard state that covers them (RECOVERY 4).
 *   L4  A truncation is durable before anything is written past it: the segments after the cut
 *       are removed and the directory synced, then the cut segment is truncated and synced (if
 *       the cut reaches into its durable bytes), all inside truncate().
 *   L5  Compacted segments are removed only after a hard state holding the new snapshot point
 *       is durable (do_sync), so a durable log always continues the durable snapshot point.
 *   L6  offs[i] is the offset of entry snap_index + 1 + i within its segment; there are
 *       last_index - snap_index of them.
 *
 *     set_hard_state / append / truncate / compact          sync (do_sync)
 *     (pending in memory, written; truncate: durable)  ------------------------> (durable)
 *               |                                    failure        |  failure
 *               +-------------------------------------------------- +-----> poisoned (reopen)
 *
 * GROUP COMMIT (sync = do_sync). The only fs syncs outside it: append's rotation syncs a full
 * segment it leaves with unsynced bytes (L2; never with the replica, which syncs every batch),
 * compact the same for a segment it dooms, truncate its cut (T2), open what it recovered.
 *   1. If term, vote or the snapshot point changed since the hard state was last written: write
 *      hardstate.tmp (open, truncate, append, sync, close), rename it to hardstate, sync_dir.
 *      A commit-only change is not written: raft.h says commit is a hint; it is written with the
 *      next hard state (raft_create clamps it to the log and raises it to the applied index).
 *   2. Sync the last segment if it holds unsynced bytes (by L2, the only one).
 *   3. sync_dir if a segment was created since the last sync_dir (step 1's covers it).
 *   4. Remove the compacted segments (L5). Their removal becomes durable at some later sync_dir;
 *      one brought back by a crash is wholly behind the durable snapshot point and recovery
 *      removes it again.
 *   So N appends and a sync cost one fs sync, plus a sync_dir when a segment was started, plus
 *   the hard state's sync and sync_dir when term, vote or snapshot point changed.
 *
 * TRUNCATE(from) and the crash argument (fs.h D1, D2, D4)
 *   T1. Remove every segment after the one holding `from` (k); sync_dir.
 *   T2. Truncate segment k at the offset of `from`; if that offset is below k's durable length,
 *       sync k.
 *   T3. Later appends write past the cut.
 *   A crash in T1 may undo any subset of the removes: segment k is untouched, so the log is a
 *   prefix of the old log that keeps everything before `from` (recovery stops at a gap). A crash
 *   in T2 may undo the truncate (D4): k has its durable bytes back and nothing after it survives
 *   (T1 is durable): the old log again, or its prefix up to from - 1. Either is safe: Raft deletes
 *   the entries from `from` on only because they conflict with the leader's log, and such
 *   entries were never committed (Figure 3, Log Matching and Leader Completeness); dropping some
 *   or all of them earlier than Raft asked is what a crash mid-truncation looks like anyway.
 *   Why T2 must not wait for the batch's sync: until a truncate is synced a crash may undo it
 *   (D4) while keeping a torn prefix of the bytes appended after it that lie past the old durable
 *   length (D1; sim/simdisk.c does exactly this). Recovery would then read old records up to the
 *   old durable length followed by new records: a tear in the middle of the file (which
 *   recovery must call corruption) or, when record boundaries line up, a valid-looking log that
 *   mixes entries of two leaders and breaks Log Matching. Why T1 comes before T2: were the cut
 *   and the new entries after it durable while a removal was undone, an old segment whose first
 *   index happened to continue the new entries would be read as their continuation.
 *   Cost: one sync_dir when segments are removed and one sync of k, on conflicts only.
 *
 * RECOVERY (log_seglog_open)
 *   1. hardstate.tmp is removed: the rename is the commit point, a leftover was never committed.
 *      hardstate is read (a missing one is the initial state; a bad one is corruption: it is
 *      synced before it is renamed into place, so it is never torn).
 *   2. Segments wholly behind the snapshot point (the next one starts at or below snapshot + 1)
 *      are leftovers of a compaction whose removal was undone (L5): removed, not read.
 *   3. The remaining segments are read in order; every record is checked (CRC, index). The chain
 *      stops at the first segment that does not continue it: one that starts past the expected
 *      index (a gap) is dropped with all after it. A gap can only come from a truncation whose
 *      removals were partly undone (T1: those entries are being deleted anyway) or from a
 *      segment begun after a compaction whose hard state never became durable: no do_sync that
 *      covered its entries returned (do_sync writes the hard state first), so none of them was
 *      acknowledged. Nothing synced and still wanted can sit behind a gap: T1 removes only
 *      entries being deleted and L5 only entries behind a durable snapshot point. An overlap (a
 *      segment starting below the expected index) has no such explanation: corruption.
 *   4. Torn or corrupt (above): a bad record nothing after it vouches for, in the highest
 *      segment, is a torn tail: it and everything after it are cut (truncate + sync). Any other
 *      bad record fails the open with RK_ECORRUPT naming file and offset, and a log_damage; so
 *      does a record whose index is not the one expected, a commit record whose last index or
 *      offset is wrong, and a segment other than the highest that does not end with a commit
 *      record. A bad read is not a bad disk: a record that does not check out is read again,
 *      and only two reads that agree are believed.
 *      Entries whose term is above the hard state's (a crash kept unsynced bytes, or the rotation
 *      sync made entries durable before their batch's hard state) raise the term to the highest
 *      such term and clear the vote. Safe: a node that voted in term T had (T, vote) durable
 *      before the vote left (votes are sent after sync), so its durable term would be >= T; and
 *      adopting a higher term with no vote is what any node does on hearing of that term (Figure
 *      2, "Rules for Servers") — here it hears of it from its own log, written by a leader of T.
 *      The raised hard state is written before open returns, so a term never goes back: a later
 *      truncation may remove the entries that justified it.
 *   5. A last segment wholly behind the snapshot point is removed (as 2). The last segment is
 *      sealed (a commit record after entries that have none, C1) and synced, and the directory
 *      too: a reopen without a crash finds bytes and names the previous process never made
 *      durable, and they are about to be treated as durable (L2).
 *
 * REPAIR (log_seglog_repair; the argument is in core/log/INTEGRITY.md). What the replica's
 *   storage open (core/replica/repair.c) does to a store that open refused: first the promise
 *   — the highest index this node may have acknowledged, which raft keeps it from voting below
 *   until a leader has given those entries back — is made durable in the `promise` file, and
 *   only then is anything cut (CUT: the damaged segment at the bad record, every later segment;
 *   in truncate's T1-then-T2 order) or removed (RESET: every segment; the hard state written
 *   again with its term and vote, commit and snapshot point 0). The promise only grows, and one
 *   that cannot be read is unknown, so no crash during a repair forgets it. The acknowledged
 *   index of a damage (struct log_damage) counts every commit record and every entry record that
 *   checks out after the bad bytes (search_commits, search_entries). A new directory gets an
 *   unknown promise before its format file (check_format: a new node and a wiped one look the
 *   same). The replica removes the file (set_promise 0) once the entries are durable again.
 *
 * VERIFY (log_seglog_verify) is this recovery run dry, so that an operator's check and an open can
 * never disagree: s->dry is set, and every change recovery would make becomes a notice instead
 * (cut_tail, remove_unkept, the hardstate.tmp removal, the term raise); settle and the hard-state
 * write are skipped; entries go to the visitor instead of held[] (visit_entry). Everything that
 * makes open fail makes verify fail, with the same message, and recovery_corrupt records where.
 *
 * Memory: 8 bytes per entry (offs) and 24 per segment; the entries read at open are held with
 * their data until the call after the first load (the replica's raft copies them), and a later
 * load reads the segments again. append allocates nothing per entry: its records are built in
 * one reusable buffer and written with one fs append.
 *
 * Ownership: struct seglog owns its handles and buffers; struct fs is borrowed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "log/log.h"

/* Record layout. */
#define SEGLOG_OFF_CRC      0u
#define SEGLOG_OFF_LEN      4u
#define SEGLOG_OFF_TERM     8u
#define SEGLOG_OFF_INDEX    16u
#define SEGLOG_OFF_TYPE     24u
#define SEGLOG_HEADER_BYTES 25u
#define SEGLOG_LEN_MIN      (SEGLOG_HEADER_BYTES - SEGLOG_OFF_TERM) /* len of an empty entry */
_Static_assert(SEGLOG_OFF_LEN == SEGLOG_OFF_CRC + 4, "record: len follows crc");
_Static_assert(SEGLOG_OFF_TERM == SEGLOG_OFF_LEN + 4, "record: term follows len");
_Static_assert(SEGLOG_OFF_INDEX == SEGLOG_OFF_TERM + 8, "record: index follows term");
_Static_assert(SEGLOG_OFF_TYPE == SEGLOG_OFF_INDEX + 8, "record: type follows index");
_Static_assert(SEGLOG_HEADER_BYTES == SEGLOG_OFF_TYPE + 1, "record: data follows type");
_Static_assert(SEGLOG_LEN_MIN == 17, "record: len of an empty entry");
#define SEGLOG_DATA_BYTES_MAX ((uint64_t)UINT32_MAX - SEGLOG_LEN_MIN)

/* Hard-state layout. */
#define SEGLOG_HS_OFF_MAGIC     4u
#define SEGLOG_HS_OFF_TERM      8u
#define SEGLOG_HS_OFF_VOTE      16u
#define SEGLOG_HS_OFF_COMMIT    24u
#define SEGLOG_HS_OFF_SNAP      32u
#define SEGLOG_HS_OFF_SNAP_TERM 40u
#define SEGLOG_HS_BYTES         48u
_Static_assert(SEGLOG_HS_BYTES == SEGLOG_HS_OFF_SNAP_TERM + 8, "hardstate layout");
#define SEGLOG_HS_MAGIC    0x53484b52u /* "RKHS" */

/* Commit record (TORN OR CORRUPT). */
#define SEGLOG_COMMIT_DATA_BYTES 16u
#define SEGLOG_COMMIT_BYTES      (SEGLOG_HEADER_BYTES + SEGLOG_COMMIT_DATA_BYTES)
#define SEGLOG_COMMIT_LEN        (SEGLOG_LEN_MIN + SEGLOG_COMMIT_DATA_BYTES)
_Static_assert(SEGLOG_COMMIT_BYTES == 41, "commit record: 25-byte header and two u64");

/* Format file. */
#define SEGLOG_FORMAT_NAME    "format"
#define SEGLOG_FORMAT_MAGIC   0x464c4b52u /* "RKLF" */
#define SEGLOG_FORMAT_VERSION 2u
#define SEGLOG_FORMAT_BYTES   12u
#define SEGLOG_HS_NAME     "hardstate"
/* Promise file (REPAIR). */
#define SEGLOG_PROMISE_NAME     "promise"
#define SEGLOG_PROMISE_TMP_NAME "promise.tmp"
#define SEGLOG_PROMISE_MAGIC    0x4d504b52u /* "RKPM" */
#define SEGLOG_PROMISE_BYTES    16u
#define SEGLOG_HS_TMP_NAME "hardstate.tmp"

#define SEGLOG_NAME_BYTES        (FS_NAME_MAX + 1)
#define SEGLOG_NAME_LEN          28 /* "seg-" + 20 digits + ".log" */
#define SEGLOG_SEGMENTS_MAX      (1u << 16)
#define SEGLOG_READ_CHUNK_BYTES  (256u << 10)
#define SEGLOG_READ_ATTEMPTS     4
/* The append buffer, grown past this by one big append, is given back afterwards. */
#define SEGLOG_KEEP_BUFFER_BYTES (1u << 20)
_Static_assert(SEGLOG_NAME_LEN < SEGLOG_NAME_BYTES, "segment names fit the fs");

struct seglog_seg {
    uint64_t first;   /* index of its first record: its name */
    uint64_t size;    /* bytes written */
    uint64_t synced;  /* bytes durable; == size for all but the last segment (L2) */
    uint64_t covered; /* the bytes before it lie before a commit record (C1); 0: unknown */
};

/* What the hardstate file on disk says (as of the last write). */
struct seglog_durable {
    uint64_t term;
    uint64_t vote;
    uint64_t snap_index;
    uint64_t snap_term;
};

/* log_seglog_verify's dry run (VERIFY): where recovery reports instead of changing things. */
struct seglog_dry {
    const struct log_verify_cb *cb; /* may be NULL */
    struct log_verify_stats *st;
};

struct seglog {
    struct log_store base; /* first: the replica sees only this */
    struct fs *fs;
    const struct rk_alloc *alloc;
    uint64_t segment_bytes;

    struct seglog_seg *segs; /* ascending first; contiguous (L1) */
    size_t n_segs;
    size_t segs_cap;
    struct fs_file *active; /* the last segment's handle; NULL iff n_segs == 0 (or poisoned) */
    bool dir_dirty;         /* a segment was created since the last sync_dir */

    uint64_t *offs; /* L6 */
    size_t offs_cap;
    uint64_t last_index;
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_hard_state hs; /* the latest set_hard_state (or what open found) */
    struct seglog_durable dur;

    uint64_t *doomed; /* first indexes of compacted segments to remove at the next sync */
    size_t n_doomed;
    size_t doomed_cap;

    uint8_t *wbuf; /* append's record buffer */
    size_t wbuf_cap;

    struct raft_entry *held; /* what load returns; data owned here */
    size_t n_held;
    size_t held_cap;
    bool holding;

    int poison; /* RK_OK, or the failure that made every later call fail */
    struct rk_errmsg poison_msg;
    struct log_seglog_stats stats;
    struct seglog_dry *dry;    /* NULL but in log_seglog_verify */
    struct log_damage damage; /* what recovery found (TORN OR CORRUPT) */
    uint64_t promised;        /* the promise file's (REPAIR); 0: none */
};

static const struct log_store_ops seglog_ops;

static struct seglog *seglog_of(struct log_store *ls)
{
    RK_ASSERT(ls->ops == &seglog_ops);
    return (struct seglog *)ls;
}

/* ---- little-endian codec and names ------------------------------------------------------ */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void seg_name(char *out, uint64_t first)
{
    RK_ASSERT(first >= 1);
    int n = snprintf(out, SEGLOG_NAME_BYTES, "seg-%020llu.log", (unsigned long long)first);
    RK_ASSERT(n == SEGLOG_NAME_LEN);
}

/* The first index a segment's name gives, or 0 if name is not a segment's. */
static uint64_t seg_name_first(const char *name)
{
    if (strlen(name) != SEGLOG_NAME_LEN || memcmp(name, "seg-", 4) != 0 ||
        strcmp(name + 24, ".log") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v;
}

/* Encodes entry e as a record at p (SEGLOG_HEADER_BYTES + e->len bytes). */
static void record_encode(uint8_t *p, const struct raft_entry *e)
{
    RK_ASSERT(e->len <= SEGLOG_DATA_BYTES_MAX);
    RK_ASSERT(e->data != NULL || e->len == 0);
    uint32_t len = SEGLOG_LEN_MIN + e->len;
    put_u32(p + SEGLOG_OFF_LEN, len);
    put_u64(p + SEGLOG_OFF_TERM, e->term);
    put_u64(p + SEGLOG_OFF_INDEX, e->index);
    p[SEGLOG_OFF_TYPE] = e->type;
    if (e->len > 0)
        memcpy(p + SEGLOG_HEADER_BYTES, e->data, e->len);
    put_u32(p + SEGLOG_OFF_CRC, rk_crc32c(0, p + SEGLOG_OFF_LEN, (size_t)len + 4));
}

/* Encodes a commit record at p for an end of the log at last_index, the record at offset off. */
static void commit_encode(uint8_t *p, uint64_t last_index, uint64_t off)
{
    memset(p, 0, SEGLOG_COMMIT_BYTES);
    put_u32(p + SEGLOG_OFF_LEN, SEGLOG_COMMIT_LEN);
    put_u64(p + SEGLOG_HEADER_BYTES, last_index);
    put_u64(p + SEGLOG_HEADER_BYTES + 8, off);
    put_u32(p + SEGLOG_OFF_CRC, rk_crc32c(0, p + SEGLOG_OFF_LEN, SEGLOG_COMMIT_LEN + 4));
}

/* True if the SEGLOG_COMMIT_BYTES at p are a commit record that checks out at offset off;
 * *last_index is then its last index. */
static bool commit_at(const uint8_t *p, uint64_t off, uint64_t *last_index)
{
    if (get_u32(p + SEGLOG_OFF_LEN) != SEGLOG_COMMIT_LEN || get_u64(p + SEGLOG_OFF_INDEX) != 0 ||
        get_u64(p + SEGLOG_OFF_TERM) != 0 || p[SEGLOG_OFF_TYPE] != 0 ||
        get_u64(p + SEGLOG_HEADER_BYTES + 8) != off)
        return false;
    if (get_u32(p + SEGLOG_OFF_CRC) != rk_crc32c(0, p + SEGLOG_OFF_LEN, SEGLOG_COMMIT_LEN + 4))
        return false;
    *last_index = get_u64(p + SEGLOG_HEADER_BYTES);
    return true;
}

/* ---- failures ------------------------------------------------------------------------------ */

/* Marks the store failed for good and returns rc; err already says why. */
static int seglog_poison(struct seglog *s, int rc, struct rk_errmsg *err)
{
    RK_ASSERT(rc != RK_OK);
    if (s->poison == RK_OK) {
        s->poison = rc;
        if (err != NULL)
            s->poison_msg = *err;
        else
            rk_errf(&s->poison_msg, rc, "%s", rk_strerror(rc));
    }
    return rc;
}

/* An fs call on a write path failed: the file's content (or the directory's) is unknown. */
static int seglog_fail(struct seglog *s, int rc, struct rk_errmsg *err, const char *name,
                       const char *what)
{
    rk_errwrap(err, rc, "%s: %s", name, what);
    return seglog_poison(s, rc, err);
}

static void release_held(struct seglog *s)
{
    for (size_t i = 0; i < s->n_held; i++)
        rk_free(s->alloc, s->held[i].data);
    rk_free(s->alloc, s->held);
    s->held = NULL;
    s->n_held = 0;
    s->held_cap = 0;
    s->holding = false;
}

/* The prologue of every op but load: ends load's borrow, refuses a poisoned store. */
static int seglog_enter(struct seglog *s, struct rk_errmsg *err)
{
    release_held(s);
    if (s->poison == RK_OK)
        return RK_OK;
    return rk_errf(err, s->poison, "seglog failed earlier and must be reopened: %s",
                   s->poison_msg.text);
}

static struct seglog_seg *last_seg(struct seglog *s)
{
    RK_ASSERT(s->n_segs > 0);
    return &s->segs[s->n_segs - 1];
}

/* ---- what recovery found: corruption, and (dry run) what it would change ------------------ */

static int recovery_corrupt(struct seglog *s, struct rk_errmsg *err, const char *name, uint64_t off,
                            bool say_offset, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Records the damage recovery found (the first one): kind, where, the index range. */
static void note_damage(struct seglog *s, enum log_damage_kind kind, const char *name,
                        uint64_t off, uint64_t first_index, uint64_t last_index)
{
    struct log_damage *d = &s->damage;
    if (d->kind != LOG_DAMAGE_NONE)
        return;
    d->kind = kind;
    snprintf(d->file, sizeof(d->file), "%s", name);
    d->offset = off;
    d->first_index = first_index;
    d->intact_last_index = first_index > 0 ? first_index - 1 : 0;
    d->last_index = last_index;
    if (last_index > d->acked_index)
        d->acked_index = last_index;
}

/* Recovery found corruption in file name at off: returns RK_ECORRUPT with the message
 * "name: offset off: what" (or "name: what"), and in a dry run remembers where for the caller.
 * A damage noted before (note_damage) gets the message as its problem; without one, the damage
 * is a LOG_DAMAGE_LAYOUT at name and off. */
static int recovery_corrupt(struct seglog *s, struct rk_errmsg *err, const char *name, uint64_t off,
                            bool say_offset, const char *fmt, ...)
{
    char what[sizeof(((struct log_verify_stats *)NULL)->problem)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    note_damage(s, LOG_DAMAGE_LAYOUT, name, off, 0, 0);
    if (s->damage.problem[0] == '\0')
        snprintf(s->damage.problem, sizeof(s->damage.problem), "%s", what);
    if (s->dry != NULL) {
        struct log_verify_stats *st = s->dry->st;
        snprintf(st->problem_file, sizeof(st->problem_file), "%s", name);
        st->problem_offset = off;
        memcpy(st->problem, what, sizeof(st->problem));
    }
    if (say_offset)
        return rk_errf(err, RK_ECORRUPT, "%s: offset %llu: %s", name, (unsigned long long)off,
                       what);
    return rk_errf(err, RK_ECORRUPT, "%s: %s", name, what);
}

static void dry_notice(struct seglog *s, enum log_verify_notice_kind kind, const char *file,
                       uint64_t off, uint64_t bytes, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* A dry run's report of a change recovery would make (VERIFY). */
static void dry_notice(struct seglog *s, enum log_verify_notice_kind kind, const char *file,
                       uint64_t off, uint64_t bytes, const char *fmt, ...)
{
    RK_ASSERT(s->dry != NULL);
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    struct log_verify_stats *st = s->dry->st;
    st->notices++;
    if (kind == LOG_VERIFY_LEFTOVER)
        st->leftovers++;
    if (kind == LOG_VERIFY_TORN_TAIL)
        st->torn_bytes += bytes;
    const struct log_verify_cb *cb = s->dry->cb;
    if (cb == NULL || cb->notice == NULL)
        return;
    struct log_verify_notice n = {
        .kind = kind, .file = file, .offset = off, .bytes = bytes, .text = text};
    cb->notice(cb->ctx, &n);
}

/* ---- reading: a window over a file, records checked twice before they are believed -------- */

static int pread_retry(struct seglog *s, struct fs_file *f, uint64_t off, void *buf, size_t len,
                       size_t *got, struct rk_errmsg *err)
{
    int rc = RK_OK;
    for (int attempt = 0; attempt < SEGLOG_READ_ATTEMPTS; attempt++) {
        rc = s->fs->ops->pread(s->fs, f, off, buf, len, got, err);
        if (rc != RK_EIO)
            break;
    }
    return rc;
}

struct seg_reader {
    struct seglog *s;
    struct fs_file *f;
    const char *name;
    uint64_t size; /* bytes of the file to read */
    uint8_t *buf;
    size_t cap;
    uint64_t base; /* file offset of buf[0] */
    size_t len;    /* bytes valid in buf */
};

/* Points *p at the bytes [off, off + n) clamped to the file (*got of them), reading a chunk when
 * they are not in the window. Valid until the next call. */
static int reader_get(struct seg_reader *r, uint64_t off, size_t n, const uint8_t **p, size_t *got,
                      struct rk_errmsg *err)
{
    RK_ASSERT(off <= r->size);
    if (n > r->size - off)
        n = (size_t)(r->size - off);
    *got = n;
    if (n == 0 || (off >= r->base && off + n <= r->base + r->len)) {
        *p = n == 0 ? NULL : r->buf + (off - r->base);
        return RK_OK;
    }
    uint64_t want = n > SEGLOG_READ_CHUNK_BYTES ? n : SEGLOG_READ_CHUNK_BYTES;
    if (want > r->size - off)
        want = r->size - off;
    if (!rk_grow(r->s->alloc, (void **)&r->buf, &r->cap, (size_t)want, 1))
        return rk_errf(err, RK_ENOMEM, "%s: no memory to read %llu bytes", r->name,
                       (unsigned long long)want);
    r->base = off;
    r->len = 0;
    size_t read = 0;
    int rc = pread_retry(r->s, r->f, off, r->buf, (size_t)want, &read, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: offset %llu", r->name, (unsigned long long)off);
    if (read != want)
        return rk_errf(err, RK_EIO, "%s: offset %llu: file shorter than its size", r->name,
                       (unsigned long long)(off + read));
    r->len = (size_t)want;
    *p = r->buf;
    return RK_OK;
}

enum seg_verdict {
    SEG_OK = 0,
    SEG_SHORT, /* the file ends inside the record */
    SEG_BAD,   /* a bad length or crc */
};

struct seg_record {
    enum seg_verdict verdict;
    uint64_t end; /* where the record ends, as far as its header can be believed */
    char problem[96];
    uint64_t term;
    uint64_t index;
    uint8_t type;
    uint32_t data_len;
    const uint8_t *data; /* in the reader's window: valid until its next get */
};

/* One read and verdict of the record at off; *print fingerprints the bytes it rests on. */
static int judge_record(struct seg_reader *r, uint64_t off, struct seg_record *c, uint32_t *print,
                        struct rk_errmsg *err)
{
    const uint8_t *p;
    size_t got;
    memset(c, 0, sizeof(*c));
    int rc = reader_get(r, off, SEGLOG_HEADER_BYTES, &p, &got, err);
    if (rc != RK_OK)
        return rc;
    *print = rk_crc32c(0, p, got);
    if (got < SEGLOG_HEADER_BYTES) {
        c->verdict = SEG_SHORT;
        c->end = r->size;
        snprintf(c->problem, sizeof(c->problem), "file ends inside a record header");
        return RK_OK;
    }
    uint32_t len = get_u32(p + SEGLOG_OFF_LEN);
    if (len < SEGLOG_LEN_MIN) {
        c->verdict = SEG_BAD;
        c->end = off + SEGLOG_HEADER_BYTES;
        snprintf(c->problem, sizeof(c->problem), "record length %lu below %u", (unsigned long)len,
                 SEGLOG_LEN_MIN);
        return RK_OK;
    }
    uint64_t total = (uint64_t)SEGLOG_OFF_TERM + len;
    c->end = off + total;
    if (total > r->size - off) {
        c->verdict = SEG_SHORT;
        snprintf(c->problem, sizeof(c->problem), "record of %llu bytes runs past the end (%llu)",
                 (unsigned long long)total, (unsigned long long)r->size);
        return RK_OK;
    }
    rc = reader_get(r, off, (size_t)total, &p, &got, err);
    if (rc != RK_OK)
        return rc;
    RK_ASSERT(got == total);
    uint32_t stored = get_u32(p + SEGLOG_OFF_CRC);
    uint32_t computed = rk_crc32c(0, p + SEGLOG_OFF_LEN, (size_t)total - SEGLOG_OFF_LEN);
    if (stored != computed) {
        *print = rk_crc32c(0, p, got);
        c->verdict = SEG_BAD;
        snprintf(c->problem, sizeof(c->problem), "crc32c 0x%08lx != 0x%08lx", (unsigned long)stored,
                 (unsigned long)computed);
        return RK_OK;
    }
    c->verdict = SEG_OK;
    c->term = get_u64(p + SEGLOG_OFF_TERM);
    c->index = get_u64(p + SEGLOG_OFF_INDEX);
    c->type = p[SEGLOG_OFF_TYPE];
    c->data_len = len - SEGLOG_LEN_MIN;
    c->data = p + SEGLOG_HEADER_BYTES;
    return RK_OK;
}

/* The record at off, checked; a verdict other than SEG_OK is believed only when two reads in a
 * row agree byte for byte (a flipped bit in a read is not a bad disk). */
static int check_record(struct seg_reader *r, uint64_t off, struct seg_record *c,
                        struct rk_errmsg *err)
{
    uint32_t prev_print = 0;
    uint64_t prev_end = 0;
    enum seg_verdict prev_verdict = SEG_OK;
    for (int attempt = 0; attempt < SEGLOG_READ_ATTEMPTS; attempt++) {
        if (attempt > 0)
            r->len = 0; /* read again */
        uint32_t print = 0;
        int rc = judge_record(r, off, c, &print, err);
        if (rc != RK_OK || c->verdict == SEG_OK)
            return rc;
        if (attempt > 0 && print == prev_print && c->end == prev_end && c->verdict == prev_verdict)
            return RK_OK;
        prev_print = print;
        prev_end = c->end;
        prev_verdict = c->verdict;
    }
    return rk_errf(err, RK_EIO, "%s: offset %llu: %d reads of the record disagree", r->name,
                   (unsigned long long)off, SEGLOG_READ_ATTEMPTS);
}

/* ---- scanning a segment (recovery and reload) ----------------------------------------------- */

enum scan_mode {
    SCAN_RECOVER, /* at open: builds offs, may cut the highest segment's tail */
    SCAN_RELOAD,  /* a later load: reads what the store wrote; anything wrong is an error */
};

struct scan {
    enum scan_mode mode;
    uint64_t expected;   /* the index the next record must have */
    uint64_t max_term;   /* of the records kept so far */
    uint64_t commit_end; /* in the segment being read: where its last commit record ends */
};

/* Keeps the checked record c at off: its offset (recovery) and a copy for load. */
static int keep_entry(struct seglog *s, const struct scan *sc, const struct seg_record *c,
                      uint64_t off, const char *name, struct rk_errmsg *err)
{
    if (sc->mode == SCAN_RECOVER) {
        RK_ASSERT(c->index == s->last_index + 1);
        size_t n = (size_t)(s->last_index - s->snap_index);
        if (!rk_grow(s->alloc, (void **)&s->offs, &s->offs_cap, n + 1, sizeof(*s->offs)))
            return rk_errf(err, RK_ENOMEM, "%s: no memory for the index", name);
        s->offs[n] = off;
        s->last_index = c->index;
    }
    if (!rk_grow(s->alloc, (void **)&s->held, &s->held_cap, s->n_held + 1, sizeof(*s->held)))
        return rk_errf(err, RK_ENOMEM, "%s: no memory for the entries", name);
    struct raft_entry *e = &s->held[s->n_held];
    *e = (struct raft_entry){
        .term = c->term, .index = c->index, .type = c->type, .len = c->data_len, .data = NULL};
    if (c->data_len > 0) {
        e->data = rk_malloc(s->alloc, c->data_len);
        if (e->data == NULL)
            return rk_errf(err, RK_ENOMEM, "%s: no memory for entry %llu", name,
                           (unsigned long long)c->index);
        memcpy(e->data, c->data, c->data_len);
    }
    s->n_held++;
    return RK_OK;
}

/* The dry run's keep_entry (VERIFY): the checked record c at off goes to the visitor, with its
 * data borrowed from the reader's window for the call. */
static void visit_entry(struct seglog *s, const struct seg_record *c, uint64_t off,
                        const char *name)
{
    RK_ASSERT(s->dry != NULL);
    RK_ASSERT(c->index == s->last_index + 1);
    s->last_index = c->index;
    struct log_verify_stats *st = s->dry->st;
    st->entries++;
    st->entry_bytes += SEGLOG_HEADER_BYTES + (uint64_t)c->data_len;
    const struct log_verify_cb *cb = s->dry->cb;
    if (cb == NULL || cb->entry == NULL)
        return;
    /* raft_entry's data is not const; the visitor is handed a const entry and must not write. */
    struct raft_entry e = {.term = c->term,
                           .index = c->index,
                           .type = c->type,
                           .len = c->data_len,
                           .data = c->data_len > 0 ? (uint8_t *)(uintptr_t)c->data : NULL};
    cb->entry(cb->ctx, name, off, &e);
}

/* Cuts the highest segment at `at` (recovery step 4); a dry run reports the cut instead. */
static int cut_tail(struct seglog *s, const char *name, struct fs_file *f, uint64_t *size,
                    uint64_t at, struct rk_errmsg *err)
{
    RK_ASSERT(at < *size);
    if (s->dry != NULL) {
        dry_notice(s, LOG_VERIFY_TORN_TAIL, name, at, *size - at,
                   "torn tail at %s offset %llu (would be cut on open)", name,
                   (unsigned long long)at);
        s->stats.cut_bytes += *size - at;
        *size = at;
        return RK_OK;
    }
    int rc = s->fs->ops->truncate(s->fs, f, at, err);
    if (rc == RK_OK)
        rc = s->fs->ops->sync(s->fs, f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: cutting the torn tail at offset %llu", name,
                          (unsigned long long)at);
    s->stats.cut_bytes += *size - at;
    *size = at;
    return RK_OK;
}

/* The commit records that check out at an offset in [from, end of file) of the segment r reads
 * (TORN OR CORRUPT): *found whether there is one, *first_last the last index of the first,
 * *max_last the highest last index. Every offset is tried (the bad record's length cannot be
 * believed). Read again when none is found: a bad read cannot make a commit record appear
 * (crc), but it could hide one. */
static int search_commits(struct seg_reader *r, uint64_t from, bool *found, uint64_t *first_last,
                          uint64_t *max_last, struct rk_errmsg *err)
{
    *found = false;
    *first_last = 0;
    *max_last = 0;
    for (int attempt = 0; attempt < 2 && !*found; attempt++) {
        r->len = 0; /* read again */
        for (uint64_t p = from; p < r->size && r->size - p >= SEGLOG_COMMIT_BYTES; p++) {
            const uint8_t *b = NULL;
            size_t got;
            int rc = reader_get(r, p, SEGLOG_COMMIT_BYTES, &b, &got, err);
            if (rc != RK_OK)
                return rc;
            uint64_t last = 0;
            if (got < SEGLOG_COMMIT_BYTES || !commit_at(b, p, &last))
                continue;
            if (!*found)
                *first_last = last;
            *found = true;
            *max_last = last > *max_last ? last : *max_last;
        }
    }
    r->len = 0;
    return RK_OK;
}

/* The highest index of an entry record that checks out (crc) at any offset in [from, end of
 * file) of the segment r reads, with an index in [min_index, min_index + 2^32): 0 if none. Such a
 * record past a damage may have been synced and acknowledged although the commit record that
 * covered it was lost (a lost or misdirected write of the commit record alone), so the promise
 * must cover it (struct log_damage's acked_index). An over-estimate (a record-like run of bytes
 * inside an entry's data) only delays the node's return to elections. */
static int search_entries(struct seg_reader *r, uint64_t from, uint64_t min_index,
                          uint64_t *max_index, struct rk_errmsg *err)
{
    *max_index = 0;
    r->len = 0;
    for (uint64_t p = from; p < r->size && r->size - p >= SEGLOG_HEADER_BYTES; p++) {
        const uint8_t *b;
        size_t got;
        int rc = reader_get(r, p, SEGLOG_HEADER_BYTES, &b, &got, err);
        if (rc != RK_OK)
            return rc;
        uint32_t len = get_u32(b + SEGLOG_OFF_LEN);
        uint64_t index = get_u64(b + SEGLOG_OFF_INDEX);
        if (got < SEGLOG_HEADER_BYTES || len < SEGLOG_LEN_MIN ||
            (uint64_t)SEGLOG_OFF_TERM + len > r->size - p || index < min_index ||
            index - min_index >= (1ull << 32) || index <= *max_index)
            continue;
        struct seg_record c;
        uint32_t print = 0;
        rc = judge_record(r, p, &c, &print, err);
        if (rc != RK_OK)
            return rc;
        if (c.verdict == SEG_OK && c.index == index)
            *max_index = index;
    }
    r->len = 0;
    return RK_OK;
}

/* Corruption at off of the segment r reads, where a record with index sc->expected should be:
 * the damage (its index range from the commit record that vouches for it, if any) and
 * RK_ECORRUPT. */
static int corrupt_record(struct seglog *s, const struct scan *sc, struct seg_reader *r,
                          uint64_t off, const char *problem, struct rk_errmsg *err)
{
    bool found = false;
    uint64_t first_last = 0;
    uint64_t max_last = 0;
    int rc = search_commits(r, off + 1, &found, &first_last, &max_last, err);
    if (rc != RK_OK)
        return rc;
    note_damage(s, LOG_DAMAGE_RECORD, r->name, off, sc->expected, first_last);
    if (max_last > s->damage.acked_index)
        s->damage.acked_index = max_last;
    uint64_t max_entry = 0;
    rc = search_entries(r, off + 1, sc->expected > 0 ? sc->expected : 1, &max_entry, err);
    if (rc != RK_OK)
        return rc;
    if (max_entry > s->damage.acked_index)
        s->damage.acked_index = max_entry;
    return recovery_corrupt(s, err, r->name, off, true, "%s%s", problem,
                            found ? " (in synced data: a commit record after it checks out)"
                                  : "");
}

/* A record at off that does not check out: torn or corrupt (TORN OR CORRUPT, recovery step 4). */
static int bad_record(struct seglog *s, const struct scan *sc, struct seg_reader *r, bool highest,
                      uint64_t off, const struct seg_record *c, uint64_t *size,
                      struct rk_errmsg *err)
{
    if (sc->mode != SCAN_RECOVER || !highest)
        return corrupt_record(s, sc, r, off, c->problem, err);
    bool found = false;
    uint64_t first_last = 0;
    uint64_t max_last = 0;
    int rc = search_commits(r, off + 1, &found, &first_last, &max_last, err);
    if (rc != RK_OK)
        return rc;
    if (found)
        return corrupt_record(s, sc, r, off, c->problem, err);
    return cut_tail(s, r->name, r->f, size, off, err); /* never synced (C1): torn */
}

/* A commit record that checked out (crc) at off: its fields must say where it is and where the
 * log ends (TORN OR CORRUPT). */
static int check_commit(struct seglog *s, struct scan *sc, struct seg_reader *r, uint64_t off,
                        const struct seg_record *c, struct rk_errmsg *err)
{
    uint64_t last = 0;
    if (c->data_len != SEGLOG_COMMIT_DATA_BYTES ||
        !commit_at(c->data - SEGLOG_HEADER_BYTES, off, &last))
        return corrupt_record(s, sc, r, off, "commit record with bad fields", err);
    if (last != sc->expected - 1) {
        char problem[96];
        snprintf(problem, sizeof(problem), "commit record says the log ends at %llu, not %llu",
                 (unsigned long long)last, (unsigned long long)(sc->expected - 1));
        return corrupt_record(s, sc, r, off, problem, err);
    }
    sc->commit_end = c->end;
    if (s->dry != NULL)
        s->dry->st->commit_records++;
    return RK_OK;
}

/* Reads every record of segment `name` (handle f, *size bytes) in order, checking each; keeps
 * the entries after the snapshot point. Recovery may cut the highest segment (*size shrinks). */
static int scan_segment(struct seglog *s, struct scan *sc, const char *name, struct fs_file *f,
                        uint64_t *size, bool highest, struct rk_errmsg *err)
{
    struct seg_reader r = {.s = s, .f = f, .name = name, .size = *size};
    uint64_t off = 0;
    int rc = RK_OK;
    sc->commit_end = 0;
    while (rc == RK_OK && off < *size) {
        struct seg_record c;
        rc = check_record(&r, off, &c, err);
        if (rc != RK_OK)
            break;
        if (c.verdict != SEG_OK) {
            rc = bad_record(s, sc, &r, highest, off, &c, size, err);
            break;
        }
        if (c.index == 0) {
            rc = check_commit(s, sc, &r, off, &c, err);
            off = c.end;
            continue;
        }
        if (c.index != sc->expected) {
            char problem[96];
            snprintf(problem, sizeof(problem), "index %llu, expected %llu",
                     (unsigned long long)c.index, (unsigned long long)sc->expected);
            rc = corrupt_record(s, sc, &r, off, problem, err);
            break;
        }
        if (c.term > sc->max_term)
            sc->max_term = c.term;
        if (s->dry != NULL && c.term > s->dry->st->max_term)
            s->dry->st->max_term = c.term;
        if (s->dry != NULL)
            s->dry->st->records++;
        if (c.index > s->snap_index && s->dry != NULL)
            visit_entry(s, &c, off, name);
        else if (c.index > s->snap_index)
            rc = keep_entry(s, sc, &c, off, name, err);
        sc->expected++;
        off = c.end;
    }
    /* C1 and L2: a segment below the highest was synced whole, so it ends with a commit record. */
    if (rc == RK_OK && sc->mode == SCAN_RECOVER && !highest && *size > 0 &&
        sc->commit_end != *size) {
        note_damage(s, LOG_DAMAGE_LAYOUT, name, sc->commit_end, 0, sc->expected - 1);
        rc = recovery_corrupt(s, err, name, sc->commit_end, true,
                              "no commit record after the last %llu bytes (a segment below the "
                              "highest was synced whole and ends with one)",
                              (unsigned long long)(*size - sc->commit_end));
    }
    rk_free(s->alloc, r.buf);
    return rc;
}

/* A later load: reads the segments again (the entries read at open were let go). */
static int reload(struct seglog *s, struct rk_errmsg *err)
{
    RK_ASSERT(!s->holding);
    s->stats.reloads++;
    struct scan sc = {.mode = SCAN_RELOAD, .expected = s->n_segs > 0 ? s->segs[0].first : 0};
    for (size_t i = 0; i < s->n_segs; i++) {
        const struct seglog_seg *g = &s->segs[i];
        RK_ASSERT(g->first == sc.expected);
        char name[SEGLOG_NAME_BYTES];
        seg_name(name, g->first);
        struct fs_file *f = s->active;
        if (i + 1 < s->n_segs) {
            int rc = s->fs->ops->open(s->fs, name, 0, &f, err);
            if (rc != RK_OK)
                return rk_errwrap(err, rc, "%s: open", name);
        }
        uint64_t size = g->size;
        int rc = scan_segment(s, &sc, name, f, &size, false, err);
        if (f != s->active)
            s->fs->ops->close(s->fs, f);
        if (rc != RK_OK)
            return rc;
    }
    if (s->n_held != s->last_index - s->snap_index)
        return rk_errf(err, RK_ECORRUPT, "segments hold %zu entries after %llu, the log %llu",
                       s->n_held, (unsigned long long)s->snap_index,
                       (unsigned long long)(s->last_index - s->snap_index));
    s->holding = true;
    return RK_OK;
}

/* ---- the hard state ------------------------------------------------------------------------- */

static bool hs_dirty(const struct seglog *s)
{
    return s->hs.term != s->dur.term || s->hs.vote != s->dur.vote ||
           s->snap_index != s->dur.snap_index || s->snap_term != s->dur.snap_term;
}

/* Writes the hard state atomically: hardstate.tmp, synced, renamed over hardstate, sync_dir
 * (D3: after a crash hardstate is the old or the new file, and the new one is complete). */
static int write_hardstate(struct seglog *s, struct rk_errmsg *err)
{
    uint8_t buf[SEGLOG_HS_BYTES];
    put_u32(buf + SEGLOG_HS_OFF_MAGIC, SEGLOG_HS_MAGIC);
    put_u64(buf + SEGLOG_HS_OFF_TERM, s->hs.term);
    put_u64(buf + SEGLOG_HS_OFF_VOTE, s->hs.vote);
    put_u64(buf + SEGLOG_HS_OFF_COMMIT, s->hs.commit);
    put_u64(buf + SEGLOG_HS_OFF_SNAP, s->snap_index);
    put_u64(buf + SEGLOG_HS_OFF_SNAP_TERM, s->snap_term);
    put_u32(buf, rk_crc32c(0, buf + 4, SEGLOG_HS_BYTES - 4));
    struct fs_file *f;
    int rc = s->fs->ops->open(s->fs, SEGLOG_HS_TMP_NAME, FS_CREATE, &f, err);
    if (rc != RK_OK)
        return seglog_fail(s, rc, err, SEGLOG_HS_TMP_NAME, "create");
    const char *what = "truncate";
    rc = s->fs->ops->truncate(s->fs, f, 0, err);
    if (rc == RK_OK) {
        what = "write";
        rc = s->fs->ops->append(s->fs, f, buf, sizeof(buf), err);
    }
    if (rc == RK_OK) {
        what = "sync";
        rc = s->fs->ops->sync(s->fs, f, err);
    }
    s->fs->ops->close(s->fs, f);
    if (rc != RK_OK)
        return seglog_fail(s, rc, err, SEGLOG_HS_TMP_NAME, what);
    rc = s->fs->ops->rename(s->fs, SEGLOG_HS_TMP_NAME, SEGLOG_HS_NAME, err);
    if (rc != RK_OK)
        return seglog_fail(s, rc, err, SEGLOG_HS_TMP_NAME, "rename to " SEGLOG_HS_NAME);
    rc = s->fs->ops->sync_dir(s->fs, err);
    if (rc != RK_OK)
        return seglog_fail(s, rc, err, SEGLOG_HS_NAME, "sync_dir");
    s->dir_dirty = false;
    s->dur = (struct seglog_durable){.term = s->hs.term,
                                     .vote = s->hs.vote,
                                     .snap_index = s->snap_index,
                                     .snap_term = s->snap_term};
    s->stats.hard_state_writes++;
    return RK_OK;
}

/* NULL if buf (got bytes) is a valid hard state, else what is wrong. */
static const char *hardstate_problem(const uint8_t *buf, size_t got, char *text, size_t n)
{
    if (got != SEGLOG_HS_BYTES) {
        snprintf(text, n, "%s%zu bytes, expected %u", got > SEGLOG_HS_BYTES ? "over " : "",
                 got - (got > SEGLOG_HS_BYTES), SEGLOG_HS_BYTES);
        return text;
    }
    uint32_t stored = get_u32(buf);
    uint32_t computed = rk_crc32c(0, buf + 4, SEGLOG_HS_BYTES - 4);
    if (stored != computed) {
        snprintf(text, n, "crc32c 0x%08lx != 0x%08lx", (unsigned long)stored,
                 (unsigned long)computed);
        return text;
    }
    if (get_u32(buf + SEGLOG_HS_OFF_MAGIC) != SEGLOG_HS_MAGIC)
        return "bad magic";
    return NULL;
}

static int read_hardstate(struct seglog *s, struct rk_errmsg *err)
{
    struct fs_file *f;
    int rc = s->fs->ops->open(s->fs, SEGLOG_HS_NAME, 0, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, SEGLOG_HS_NAME ": open");
    uint8_t buf[SEGLOG_HS_BYTES + 1]; /* one more: a longer file shows as such */
    uint32_t prev_print = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt == SEGLOG_READ_ATTEMPTS) {
            rc = rk_errf(err, RK_EIO, SEGLOG_HS_NAME ": %d reads disagree", attempt);
            break;
        }
        size_t got = 0;
        rc = pread_retry(s, f, 0, buf, sizeof(buf), &got, err);
        if (rc != RK_OK) {
            rk_errwrap(err, rc, SEGLOG_HS_NAME ": offset 0");
            break;
        }
        char text[64];
        const char *problem = hardstate_problem(buf, got, text, sizeof(text));
        if (problem == NULL)
            break;
        uint32_t print = rk_crc32c(0, buf, got) ^ (uint32_t)got;
        if (attempt > 0 && print == prev_print) {
            note_damage(s, LOG_DAMAGE_HARD_STATE, SEGLOG_HS_NAME, 0, 0, 0);
            rc = recovery_corrupt(s, err, SEGLOG_HS_NAME, 0, true, "%s", problem);
            break;
        }
        prev_print = print;
    }
    s->fs->ops->close(s->fs, f);
    if (rc != RK_OK)
        return rc;
    s->hs.term = get_u64(buf + SEGLOG_HS_OFF_TERM);
    s->hs.vote = get_u64(buf + SEGLOG_HS_OFF_VOTE);
    s->hs.commit = get_u64(buf + SEGLOG_HS_OFF_COMMIT);
    s->snap_index = get_u64(buf + SEGLOG_HS_OFF_SNAP);
    s->snap_term = get_u64(buf + SEGLOG_HS_OFF_SNAP_TERM);
    return RK_OK;
}

/* ---- group commit ----------------------------------------------------------------------- */

static int remove_if_there(struct seglog *s, const char *name, struct rk_errmsg *err)
{
    int rc = s->fs->ops->remove(s->fs, name, err);
    return rc == RK_ENOENT ? RK_OK : rc;
}

/* C1: appends a commit record to the last segment if it has bytes after its last one. Every fs
 * sync of a segment comes after this (sync_last, truncate's T2, settle). */
static int seal_last(struct seglog *s, struct rk_errmsg *err)
{
    struct seglog_seg *g = last_seg(s);
    RK_ASSERT(g->covered <= g->size);
    if (g->covered == g->size)
        return RK_OK;
    RK_ASSERT(s->active != NULL);
    uint8_t rec[SEGLOG_COMMIT_BYTES];
    commit_encode(rec, s->last_index, g->size);
    int rc = s->fs->ops->append(s->fs, s->active, rec, sizeof(rec), err);
    if (rc != RK_OK) {
        char name[SEGLOG_NAME_BYTES];
        seg_name(name, g->first);
        return seglog_fail(s, rc, err, name, "append of a commit record");
    }
    g->size += SEGLOG_COMMIT_BYTES;
    g->covered = g->size;
    s->stats.commit_records++;
    return RK_OK;
}

/* Seals the last segment and syncs it if it holds unsynced bytes (by L2, the only one that
 * may). */
static int sync_last(struct seglog *s, struct rk_errmsg *err)
{
    if (s->n_segs == 0)
        return RK_OK;
    int rc = seal_last(s, err);
    if (rc != RK_OK || last_seg(s)->size == last_seg(s)->synced)
        return rc;
    RK_ASSERT(s->active != NULL);
    rc = s->fs->ops->sync(s->fs, s->active, err);
    s->stats.fs_syncs++;
    if (rc != RK_OK) {
        char name[SEGLOG_NAME_BYTES];
        seg_name(name, last_seg(s)->first);
        return seglog_fail(s, rc, err, name, "sync");
    }
    last_seg(s)->synced = last_seg(s)->size;
    return RK_OK;
}

/* Makes everything written durable, in the order of GROUP COMMIT above. Poisons on failure. */
static int do_sync(struct seglog *s, struct rk_errmsg *err)
{
    int rc;
    if (hs_dirty(s) && (rc = write_hardstate(s, err)) != RK_OK)
        return rc;
    if ((rc = sync_last(s, err)) != RK_OK)
        return rc;
    if (s->dir_dirty) {
        rc = s->fs->ops->sync_dir(s->fs, err);
        if (rc != RK_OK)
            return seglog_fail(s, rc, err, "segments", "sync_dir");
        s->dir_dirty = false;
    }
    /* L5: the snapshot point that makes them garbage is durable. */
    RK_ASSERT(s->n_doomed == 0 || s->dur.snap_index == s->snap_index);
    char name[SEGLOG_NAME_BYTES];
    for (; s->n_doomed > 0; s->n_doomed--) {
        seg_name(name, s->doomed[s->n_doomed - 1]);
        RK_ASSERT(s->doomed[s->n_doomed - 1] <= s->snap_index);
        rc = remove_if_there(s, name, err);
        if (rc != RK_OK)
            return seglog_fail(s, rc, err, name, "remove");
    }
    return RK_OK;
}

/* ---- log_store ops ------------------------------------------------------------------------ */

static int seglog_load(struct log_store *ls, struct raft_hard_state *hs, uint64_t *snapshot_index,
                       uint64_t *snapshot_term, const struct raft_entry **entries,
                       size_t *n_entries, struct rk_errmsg *err)
{
    struct seglog *s = seglog_of(ls);
    if (s->poison != RK_OK)
        return seglog_enter(s, err);
    if (!s->holding) {
        int rc = reload(s, err);
        if (rc != RK_OK) {
            release_held(s);
            return rk_errwrap(err, rc, "seglog: load");
        }
    }
    RK_ASSERT(s->n_held == s->last_index - s->snap_index);
    RK_ASSERT(s->n_held == 0 || s->held[0].index == s->snap_index + 1);
    *hs = s->hs;
    *snapshot_index = s->snap_index;
    *snapshot_term = s->snap_term;
    *entries = s->held;
    *n_entries = s->n_held;
    return RK_OK;
}

/* The position in segs[] of the segment holding index (snap_index < index <= last_index). */
static size_t seg_holding(const struct seglog *s, uint64_t index)
{
    RK_ASSERT(index > s->snap_index && index <= s->last_index);
    size_t lo = 0;
    size_t hi = s->n_segs; /* the answer is in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid].first <= index)
            lo = mid;
        else
            hi = mid;
    }
    RK_ASSERT(s->segs[lo].first <= index);
    return lo;
}

/* T1: removes the segments after k, sync_dir; segment k becomes the active one. */
static int remove_after(struct seglog *s, size_t k, struct rk_errmsg *err)
{
    char name[SEGLOG_NAME_BYTES];
    RK_ASSERT(k + 1 < s->n_segs);
    s->fs->ops->close(s->fs, s->active);
    s->active = NULL;
    for (size_t j = s->n_segs; j > k + 1; j--) {
        seg_name(name, s->segs[j - 1].first);
        int rc = remove_if_there(s, name, err);
        if (rc != RK_OK)
            return seglog_fail(s, rc, err, name, "remove");
        s->n_segs--;
    }
    int rc = s->fs->ops->sync_dir(s->fs, err);
    if (rc != RK_OK)
        return seglog_fail(s, rc, err, "segments", "sync_dir");
    s->dir_dirty = false;
    RK_ASSERT(last_seg(s)->size == last_seg(s)->synced); /* L2: it was not the last */
    seg_name(name, last_seg(s)->first);
    rc = s->fs->ops->open(s->fs, name, 0, &s->active, err);
    if (rc != RK_OK)
        return seglog_fail(s, rc, err, name, "open");
    return RK_OK;
}

static int seglog_truncate(struct log_store *ls, uint64_t from, struct rk_errmsg *err)
{
    struct seglog *s = seglog_of(ls);
    int rc = seglog_enter(s, err);
    if (rc != RK_OK)
        return rc;
    if (from <= s->snap_index)
        return rk_errf(err, RK_EINVAL, "seglog: truncate from %llu, at or behind the snapshot %llu",
                       (unsigned long long)from, (unsigned long long)s->snap_index);
    if (from > s->last_index)
        return RK_OK;
    size_t k = seg_holding(s, from);
    uint64_t off = s->offs[from - s->snap_index - 1];
    if (k + 1 < s->n_segs && (rc = remove_after(s, k, err)) != RK_OK)
        return rc;
    struct seglog_seg *g = last_seg(s);
    RK_ASSERT(off <= g->size);
    if (off < g->size) {
        char name[SEGLOG_NAME_BYTES];
        seg_name(name, g->first);
        rc = s->fs->ops->truncate(s->fs, s->active, off, err);
        if (rc != RK_OK)
            return seglog_fail(s, rc, err, name, "truncate");
        g->size = off;
        if (g->covered > off)
            g->covered = 0; /* the commit record before the cut is unknown: seal again */
        s->last_index = from - 1;
        if (off < g->synced) { /* T2: durable before anything is written past it; sealed (C1) */
            g->synced = off;
            if ((rc = seal_last(s, err)) != RK_OK)
                return rc;
            rc = s->fs->ops->sync(s->fs, s->active, err);
            s->stats.fs_syncs++;
            if (rc != RK_OK)
                return seglog_fail(s, rc, err, name, "sync of a truncation");
            g->synced = g->size;
        }
    }
    s->last_index = from - 1;
    return RK_OK;
}

/* Starts segment seg-<last_index + 1> (segs has room). The last segment is synced (L2). */
static int start_segment(struct seglog *s, struct rk_errmsg *err)
{
    RK_ASSERT(s->n_segs < s->segs_cap);
    RK_ASSERT(s->n_segs == 0 || last_seg(s)->size == last_seg(s)->synced);
    if (s->active != NULL)
        s->fs->ops->close(s->fs, s->active);
    s->active = NULL;
    uint64_t first = s->last_index + 1;
    char name[SEGLOG_NAME_BYTES];
    seg_name(name, first);
    int rc = s->fs->ops->open(s->fs, name, FS_CREATE | FS_EXCL, &s->active, err);
    if (rc != RK_OK)
        return seglog_fail(s, rc, err, name, "create");
    s->segs[s->n_segs++] =
        (struct seglog_seg){.first = first, .size = 0, .synced = 0, .covered = 0};
    s->dir_dirty = true;
    return RK_OK;
}

/* Checks that entries continue the log; sums their record bytes. */
static int check_append(const struct seglog *s, const struct raft_entry *entries, size_t n,
                        size_t *bytes, struct rk_errmsg *err)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->index != s->last_index + 1 + i)
            return rk_errf(err, RK_EINVAL, "seglog: append of index %llu, expected %llu",
                           (unsigned long long)e->index,
                           (unsigned long long)(s->last_index + 1 + i));
        if (e->len > SEGLOG_DATA_BYTES_MAX || SEGLOG_HEADER_BYTES + (size_t)e->len > SIZE_MAX - sum)
            return rk_errf(err, RK_ETOOBIG, "seglog: entry %llu of %lu bytes",
                           (unsigned long long)e->index, (unsigned long)e->len);
        RK_ASSERT(e->data != NULL || e->len == 0);
        sum += SEGLOG_HEADER_BYTES + (size_t)e->len;
    }
    *bytes = sum;
    return RK_OK;
}

static int seglog_append(struct log_store *ls, const struct raft_entry *entries, size_t n,
                         struct rk_errmsg *err)
{
    struct seglog *s = seglog_of(ls);
    int rc = seglog_enter(s, err);
    if (rc != RK_OK || n == 0)
        return rc;
    size_t bytes = 0;
    if ((rc = check_append(s, entries, n, &bytes, err)) != RK_OK)
        return rc;
    /* Everything that can run out of memory, before anything is written. */
    size_t n_ents = (size_t)(s->last_index - s->snap_index);
    bool rotate = s->n_segs == 0 || last_seg(s)->size >= s->segment_bytes;
    if (rotate && s->n_segs >= SEGLOG_SEGMENTS_MAX)
        return rk_errf(err, RK_ETOOBIG, "seglog: %zu segments", s->n_segs);
    if (!rk_grow(s->alloc, (void **)&s->wbuf, &s->wbuf_cap, bytes, 1) ||
        !rk_grow(s->alloc, (void **)&s->offs, &s->offs_cap, n_ents + n, sizeof(*s->offs)) ||
        !rk_grow(s->alloc, (void **)&s->segs, &s->segs_cap, s->n_segs + 1, sizeof(*s->segs)))
        return rk_errf(err, RK_ENOMEM, "seglog: no memory to append %zu entries", n);
    if (rotate && ((rc = sync_last(s, err)) != RK_OK || (rc = start_segment(s, err)) != RK_OK))
        return rc;
    struct seglog_seg *g = last_seg(s);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        s->offs[n_ents + i] = g->size + at;
        record_encode(s->wbuf + at, &entries[i]);
        at += SEGLOG_HEADER_BYTES + (size_t)entries[i].len;
    }
    RK_ASSERT(at == bytes);
    rc = s->fs->ops->append(s->fs, s->active, s->wbuf, bytes, err);
    if (rc != RK_OK) {
        char name[SEGLOG_NAME_BYTES];
        seg_name(name, g->first);
        return seglog_fail(s, rc, err, name, "append");
    }
    g->size += bytes;
    s->last_index += n;
    if (s->wbuf_cap > SEGLOG_KEEP_BUFFER_BYTES) {
        rk_free(s->alloc, s->wbuf);
        s->wbuf = NULL;
        s->wbuf_cap = 0;
    }
    return RK_OK;
}

static int seglog_set_hard_state(struct log_store *ls, const struct raft_hard_state *hs,
                                 struct rk_errmsg *err)
{
    struct seglog *s = seglog_of(ls);
    int rc = seglog_enter(s, err);
    if (rc != RK_OK)
        return rc;
    if (hs->term < s->hs.term)
        return rk_errf(err, RK_EINVAL, "seglog: hard state term %llu below %llu",
                       (unsigned long long)hs->term, (unsigned long long)s->hs.term);
    s->hs = *hs;
    return RK_OK;
}

static int seglog_sync(struct log_store *ls, struct rk_errmsg *err)
{
    struct seglog *s = seglog_of(ls);
    int rc = seglog_enter(s, err);
    return rc != RK_OK ? rc : do_sync(s, err);
}

/* Whether compacting up to index dooms segs[i]: it starts at or before index and its last
 * entry (the next segment's first - 1) is at or before index. */
static bool seg_compacted(const struct seglog *s, size_t i, uint64_t index)
{
    uint64_t next_first = i + 1 < s->n_segs ? s->segs[i + 1].first : s->last_index + 1;
    return s->segs[i].first <= index && next_first <= index + 1;
}

static int seglog_compact(struct log_store *ls, uint64_t index, uint64_t term,
                          struct rk_errmsg *err)
{
    struct seglog *s = seglog_of(ls);
    int rc = seglog_enter(s, err);
    if (rc != RK_OK)
        return rc;
    if (index < s->snap_index || term == 0 || (index == s->snap_index && term != s->snap_term))
        return rk_errf(err, RK_EINVAL, "seglog: compact to (%llu, %llu), snapshot at (%llu, %llu)",
                       (unsigned long long)index, (unsigned long long)term,
                       (unsigned long long)s->snap_index, (unsigned long long)s->snap_term);
    if (index == s->snap_index)
        return RK_OK;
    size_t d = 0;
    while (d < s->n_segs && seg_compacted(s, d, index))
        d++;
    if (!rk_grow(s->alloc, (void **)&s->doomed, &s->doomed_cap, s->n_doomed + d,
                 sizeof(*s->doomed)))
        return rk_errf(err, RK_ENOMEM, "seglog: no memory to compact %zu segments", d);
    if (d > 0 && d == s->n_segs) {
        /* L2: the last segment is doomed, and the next append starts one above it. */
        if ((rc = sync_last(s, err)) != RK_OK)
            return rc;
        s->fs->ops->close(s->fs, s->active);
        s->active = NULL;
    }
    for (size_t i = 0; i < d; i++)
        s->doomed[s->n_doomed++] = s->segs[i].first;
    if (d > 0 && d < s->n_segs)
        memmove(s->segs, s->segs + d, (s->n_segs - d) * sizeof(*s->segs));
    s->n_segs -= d;
    if (index >= s->last_index) {
        s->last_index = index;
    } else {
        size_t drop = (size_t)(index - s->snap_index);
        memmove(s->offs, s->offs + drop, (size_t)(s->last_index - index) * sizeof(*s->offs));
    }
    s->snap_index = index;
    s->snap_term = term;
    RK_ASSERT(s->n_segs == 0 || s->segs[0].first <= s->snap_index + 1);
    return RK_OK;
}

static void seglog_destroy(struct log_store *ls)
{
    struct seglog *s = seglog_of(ls);
    release_held(s);
    if (s->active != NULL)
        s->fs->ops->close(s->fs, s->active);
    rk_free(s->alloc, s->segs);
    rk_free(s->alloc, s->offs);
    rk_free(s->alloc, s->doomed);
    rk_free(s->alloc, s->wbuf);
    rk_free(s->alloc, s);
}

static uint64_t seglog_promised(struct log_store *ls)
{
    return seglog_of(ls)->promised;
}

static int write_promise(struct seglog *s, uint64_t index, struct rk_errmsg *err);

static int seglog_set_promise(struct log_store *ls, uint64_t index, struct rk_errmsg *err)
{
    struct seglog *s = seglog_of(ls);
    int rc = seglog_enter(s, err);
    if (rc != RK_OK)
        return rc;
    if (index == s->promised)
        return RK_OK;
    rc = write_promise(s, index, err);
    return rc == RK_OK ? RK_OK : seglog_poison(s, rc, err);
}

static const struct log_store_ops seglog_ops = {
    .load = seglog_load,
    .truncate = seglog_truncate,
    .append = seglog_append,
    .set_hard_state = seglog_set_hard_state,
    .sync = seglog_sync,
    .compact = seglog_compact,
    .destroy = seglog_destroy,
    .promised = seglog_promised,
    .set_promise = seglog_set_promise,
};

/* ---- recovery ------------------------------------------------------------------------------ */

struct listing {
    const struct rk_alloc *alloc;
    uint64_t *firsts; /* of the segments, ascending */
    size_t n;
    size_t cap;
    bool hs;
    bool hs_tmp;
    bool promise;
    bool promise_tmp;
    bool format;
    bool nomem;
    bool too_many;
};

static bool list_one(void *ctx, const char *name)
{
    struct listing *ls = ctx;
    if (strcmp(name, SEGLOG_HS_NAME) == 0) {
        ls->hs = true;
        return true;
    }
    if (strcmp(name, SEGLOG_HS_TMP_NAME) == 0) {
        ls->hs_tmp = true;
        return true;
    }
    if (strcmp(name, SEGLOG_FORMAT_NAME) == 0) {
        ls->format = true;
        return true;
    }
    if (strcmp(name, SEGLOG_PROMISE_NAME) == 0) {
        ls->promise = true;
        return true;
    }
    if (strcmp(name, SEGLOG_PROMISE_TMP_NAME) == 0) {
        ls->promise_tmp = true;
        return true;
    }
    uint64_t first = seg_name_first(name);
    if (first == 0)
        return true; /* not ours */
    if (ls->n >= SEGLOG_SEGMENTS_MAX) {
        ls->too_many = true;
        return false;
    }
    if (!rk_grow(ls->alloc, (void **)&ls->firsts, &ls->cap, ls->n + 1, sizeof(*ls->firsts))) {
        ls->nomem = true;
        return false;
    }
    RK_ASSERT(ls->n == 0 || ls->firsts[ls->n - 1] < first); /* list is in strcmp order */
    ls->firsts[ls->n++] = first;
    return true;
}

/* Reads segment seg-<first> into segs[] (recovery step 3). */
static int recover_segment(struct seglog *s, struct scan *sc, uint64_t first, bool highest,
                           struct rk_errmsg *err)
{
    char name[SEGLOG_NAME_BYTES];
    seg_name(name, first);
    if (!rk_grow(s->alloc, (void **)&s->segs, &s->segs_cap, s->n_segs + 1, sizeof(*s->segs)))
        return rk_errf(err, RK_ENOMEM, "no memory for the segment table");
    struct fs_file *f;
    int rc = s->fs->ops->open(s->fs, name, 0, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: open", name);
    uint64_t size = 0;
    rc = s->fs->ops->size(s->fs, f, &size, err);
    if (rc != RK_OK)
        rk_errwrap(err, rc, "%s: size", name);
    else
        rc = scan_segment(s, sc, name, f, &size, highest, err);
    s->fs->ops->close(s->fs, f);
    if (rc == RK_OK)
        s->segs[s->n_segs++] = (struct seglog_seg){
            .first = first, .size = size, .synced = size, .covered = sc->commit_end};
    return rc;
}

/* Recovery steps 2 and 3: the chain of segments from firsts[lo]; *hi is where it stopped. */
static int recover_chain(struct seglog *s, const struct listing *ls, size_t lo, size_t *hi,
                         struct rk_errmsg *err)
{
    struct scan sc = {.mode = SCAN_RECOVER, .expected = lo < ls->n ? ls->firsts[lo] : 0};
    size_t i = lo;
    for (; i < ls->n; i++) {
        uint64_t first = ls->firsts[i];
        if (i == lo ? first > s->snap_index + 1 : first > sc.expected)
            break; /* a gap: dropped */
        char name[SEGLOG_NAME_BYTES];
        seg_name(name, first);
        if (first < sc.expected)
            return recovery_corrupt(s, err, name, 0, false,
                                    "overlaps the segment before, which ends at %llu",
                                    (unsigned long long)(sc.expected - 1));
        int rc = recover_segment(s, &sc, first, i + 1 == ls->n, err);
        if (rc != RK_OK)
            return rc;
    }
    *hi = i;
    if (sc.max_term > s->hs.term && s->dry != NULL)
        dry_notice(s, LOG_VERIFY_TERM_RAISE, SEGLOG_HS_NAME, 0, sc.max_term,
                   "entries of term %llu above the hard state's term %llu (open would raise the "
                   "term and clear the vote)",
                   (unsigned long long)sc.max_term, (unsigned long long)s->hs.term);
    if (sc.max_term > s->hs.term) { /* step 4: the log says a leader of max_term existed */
        s->hs.term = sc.max_term;
        s->hs.vote = RAFT_NONE;
        s->stats.term_raises++;
    }
    /* Step 5: a last segment wholly behind the snapshot point. */
    if (s->n_segs > 0 && last_seg(s)->first <= s->snap_index && sc.expected - 1 <= s->snap_index)
        s->n_segs--;
    return RK_OK;
}

/* Removes a segment recovery does not keep; a dry run reports it instead. */
static int remove_segment(struct seglog *s, uint64_t first, bool garbage, struct rk_errmsg *err)
{
    char name[SEGLOG_NAME_BYTES];
    seg_name(name, first);
    if (s->dry != NULL) {
        dry_notice(s, LOG_VERIFY_LEFTOVER, name, 0, 0, "%s %s (would be removed on open)", name,
                   garbage ? "is wholly behind the snapshot point" : "lies past a gap in the log");
        return RK_OK;
    }
    int rc = remove_if_there(s, name, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "%s: remove", name);
}

/* Removes what recovery does not keep: the segments before the chain and a last one wholly
 * behind the snapshot point (garbage), and those from hi on (dropped after a gap). */
static int remove_unkept(struct seglog *s, const struct listing *ls, size_t hi,
                         struct rk_errmsg *err)
{
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && i < ls->n; i++) {
        bool kept = s->n_segs > 0 && ls->firsts[i] >= s->segs[0].first &&
                    ls->firsts[i] <= last_seg(s)->first;
        if (kept)
            continue;
        if (i < hi)
            s->stats.garbage_segments++;
        else
            s->stats.dropped_segments++;
        rc = remove_segment(s, ls->firsts[i], i < hi, err);
    }
    return rc;
}

/* Step 5: makes what recovery accepted durable, and opens the last segment for appends. */
static int settle(struct seglog *s, struct rk_errmsg *err)
{
    if (s->n_segs > 0) {
        char name[SEGLOG_NAME_BYTES];
        seg_name(name, last_seg(s)->first);
        int rc = s->fs->ops->open(s->fs, name, 0, &s->active, err);
        if (rc == RK_OK)
            rc = seal_last(s, err);
        if (rc == RK_OK) {
            rc = s->fs->ops->sync(s->fs, s->active, err);
            s->stats.fs_syncs++;
        }
        if (rc != RK_OK)
            return rk_errwrap(err, rc, "%s", name);
    }
    int rc = s->fs->ops->sync_dir(s->fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "sync_dir");
}

/* ---- the promise (REPAIR) ------------------------------------------------------------------ */

/* Reads the promise file: *out its index, or LOG_PROMISE_UNKNOWN when it does not check out in
 * two reads that agree (a promise may only be over-estimated, never forgotten). */
static int read_promise(struct seglog *s, uint64_t *out, struct rk_errmsg *err)
{
    struct fs_file *f;
    int rc = s->fs->ops->open(s->fs, SEGLOG_PROMISE_NAME, 0, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, SEGLOG_PROMISE_NAME ": open");
    uint8_t buf[SEGLOG_PROMISE_BYTES + 1];
    uint32_t prev_print = 0;
    *out = LOG_PROMISE_UNKNOWN;
    for (int attempt = 0; attempt < SEGLOG_READ_ATTEMPTS; attempt++) {
        size_t got = 0;
        rc = pread_retry(s, f, 0, buf, sizeof(buf), &got, err);
        if (rc != RK_OK) {
            rk_errwrap(err, rc, SEGLOG_PROMISE_NAME ": read");
            break;
        }
        if (got == SEGLOG_PROMISE_BYTES && get_u32(buf + 4) == SEGLOG_PROMISE_MAGIC &&
            get_u32(buf) == rk_crc32c(0, buf + 4, SEGLOG_PROMISE_BYTES - 4)) {
            *out = get_u64(buf + 8);
            break;
        }
        uint32_t print = rk_crc32c(0, buf, got) ^ (uint32_t)got;
        if (attempt > 0 && print == prev_print) {
            rc = rk_errf(err, RK_ECORRUPT, SEGLOG_PROMISE_NAME ": does not check out");
            break; /* bad on disk: unknown */
        }
        prev_print = print;
    }
    s->fs->ops->close(s->fs, f);
    return rc;
}

/* Makes index the promise, durably (promise.tmp written and synced, renamed, directory synced);
 * 0 removes the file (and syncs the directory). */
static int write_promise(struct seglog *s, uint64_t index, struct rk_errmsg *err)
{
    int rc;
    if (index == 0) {
        rc = remove_if_there(s, SEGLOG_PROMISE_NAME, err);
        if (rc == RK_OK)
            rc = s->fs->ops->sync_dir(s->fs, err);
        if (rc != RK_OK)
            return rk_errwrap(err, rc, SEGLOG_PROMISE_NAME ": remove");
        s->promised = 0;
        return RK_OK;
    }
    uint8_t buf[SEGLOG_PROMISE_BYTES];
    put_u32(buf + 4, SEGLOG_PROMISE_MAGIC);
    put_u64(buf + 8, index);
    put_u32(buf, rk_crc32c(0, buf + 4, SEGLOG_PROMISE_BYTES - 4));
    struct fs_file *f;
    rc = s->fs->ops->open(s->fs, SEGLOG_PROMISE_TMP_NAME, FS_CREATE, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, SEGLOG_PROMISE_TMP_NAME ": create");
    rc = s->fs->ops->truncate(s->fs, f, 0, err);
    if (rc == RK_OK)
        rc = s->fs->ops->append(s->fs, f, buf, sizeof(buf), err);
    if (rc == RK_OK)
        rc = s->fs->ops->sync(s->fs, f, err);
    s->fs->ops->close(s->fs, f);
    if (rc == RK_OK)
        rc = s->fs->ops->rename(s->fs, SEGLOG_PROMISE_TMP_NAME, SEGLOG_PROMISE_NAME, err);
    if (rc == RK_OK)
        rc = s->fs->ops->sync_dir(s->fs, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, SEGLOG_PROMISE_NAME ": write");
    s->promised = index;
    return RK_OK;
}

/* Writes the format file (FORMAT): before any segment or hard state, synced with the
 * directory. */
static int write_format(struct seglog *s, struct rk_errmsg *err)
{
    uint8_t buf[SEGLOG_FORMAT_BYTES];
    put_u32(buf + 4, SEGLOG_FORMAT_MAGIC);
    put_u32(buf + 8, SEGLOG_FORMAT_VERSION);
    put_u32(buf, rk_crc32c(0, buf + 4, SEGLOG_FORMAT_BYTES - 4));
    struct fs_file *f;
    int rc = s->fs->ops->open(s->fs, SEGLOG_FORMAT_NAME, FS_CREATE, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, SEGLOG_FORMAT_NAME ": create");
    rc = s->fs->ops->truncate(s->fs, f, 0, err);
    if (rc == RK_OK)
        rc = s->fs->ops->append(s->fs, f, buf, sizeof(buf), err);
    if (rc == RK_OK)
        rc = s->fs->ops->sync(s->fs, f, err);
    s->fs->ops->close(s->fs, f);
    if (rc == RK_OK)
        rc = s->fs->ops->sync_dir(s->fs, err);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, SEGLOG_FORMAT_NAME ": write");
}

/* Reads the format file: RK_OK with *version, or RK_ECORRUPT (*version 0) when it never checks
 * out in SEGLOG_READ_ATTEMPTS reads, or an error. */
static int read_format(struct seglog *s, uint32_t *version, struct rk_errmsg *err)
{
    *version = 0;
    struct fs_file *f;
    int rc = s->fs->ops->open(s->fs, SEGLOG_FORMAT_NAME, 0, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, SEGLOG_FORMAT_NAME ": open");
    uint8_t buf[SEGLOG_FORMAT_BYTES + 1];
    uint32_t prev_print = 0;
    rc = rk_errf(err, RK_EIO, SEGLOG_FORMAT_NAME ": %d reads disagree", SEGLOG_READ_ATTEMPTS);
    for (int attempt = 0; attempt < SEGLOG_READ_ATTEMPTS; attempt++) {
        size_t got = 0;
        int r = pread_retry(s, f, 0, buf, sizeof(buf), &got, err);
        if (r != RK_OK) {
            rc = rk_errwrap(err, r, SEGLOG_FORMAT_NAME ": read");
            break;
        }
        if (got == SEGLOG_FORMAT_BYTES && get_u32(buf + 4) == SEGLOG_FORMAT_MAGIC &&
            get_u32(buf) == rk_crc32c(0, buf + 4, SEGLOG_FORMAT_BYTES - 4)) {
            *version = get_u32(buf + 8);
            rc = RK_OK;
            break;
        }
        /* A bad read is not a bad disk: only two reads that agree are believed. */
        uint32_t print = rk_crc32c(0, buf, got) ^ (uint32_t)got;
        if (attempt > 0 && print == prev_print) {
            rc = RK_ECORRUPT;
            break;
        }
        prev_print = print;
    }
    s->fs->ops->close(s->fs, f);
    return rc;
}

/* FORMAT: refuses format 1 and unknown versions; writes the format file of a new directory. */
static int check_format(struct seglog *s, const struct listing *ls, struct rk_errmsg *err)
{
    bool data = ls->n > 0 || ls->hs;
    uint32_t version = 0;
    int rc = RK_OK;
    if (ls->format) {
        rc = read_format(s, &version, err);
        if (rc == RK_ECORRUPT && data) {
            note_damage(s, LOG_DAMAGE_FORMAT, SEGLOG_FORMAT_NAME, 0, 0, 0);
            return recovery_corrupt(s, err, SEGLOG_FORMAT_NAME, 0, false,
                                    "does not check out (crc, magic or size)");
        }
        if (rc != RK_OK && rc != RK_ECORRUPT)
            return rc;
    } else if (data) {
        return rk_errf(err, RK_EMALFORMED,
                       "format 1 (segments or a hard state, no " SEGLOG_FORMAT_NAME
                       " file: written by an older raftkv); this build reads format %u only",
                       SEGLOG_FORMAT_VERSION);
    }
    if (version != 0 && version != SEGLOG_FORMAT_VERSION)
        return rk_errf(err, RK_EMALFORMED, SEGLOG_FORMAT_NAME ": format %lu; this build reads %u",
                       (unsigned long)version, SEGLOG_FORMAT_VERSION);
    if (version == 0 && s->dry == NULL) { /* new, or a first write that never completed */
        /* A new directory (a new node, or a wiped or replaced disk: it cannot tell which)
         * starts with an unknown promise (REPAIR, core/log/INTEGRITY.md "A lost data
         * directory"): raft keeps it out of elections until a leader has caught it up or every
         * other voter has shown an empty log (a new cluster). Written before the format file,
         * so that a directory with a format file has its promise. */
        int rc2 = write_promise(s, LOG_PROMISE_NEW, err);
        return rc2 != RK_OK ? rc2 : write_format(s, err);
    }
    if (s->dry == NULL) {
        /* What was read may be the page cache's copy of a write whose sync failed (a start that
         * failed there and is retried): make it durable before data is written beside it, or a
         * crash could leave data beside a format file that never reached the disk. */
        struct fs_file *f;
        rc = s->fs->ops->open(s->fs, SEGLOG_FORMAT_NAME, 0, &f, err);
        if (rc == RK_OK) {
            rc = s->fs->ops->sync(s->fs, f, err);
            s->fs->ops->close(s->fs, f);
        }
        if (rc == RK_OK)
            rc = s->fs->ops->sync_dir(s->fs, err);
        if (rc != RK_OK)
            return rk_errwrap(err, rc, SEGLOG_FORMAT_NAME ": sync");
    }
    return RK_OK;
}

/* The highest index the damaged node may have acknowledged (struct log_damage): the hard state's
 * commit and every commit record that checks out in the segments after the damaged file (all of
 * them when the damage is not in a segment). Best effort: a file that cannot be read is passed
 * over (the damage is reported either way). */
static void damage_acked(struct seglog *s, const struct listing *ls)
{
    struct log_damage *d = &s->damage;
    if (s->hs.commit > d->acked_index)
        d->acked_index = s->hs.commit;
    uint64_t after = seg_name_first(d->file);
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->firsts[i] <= after)
            continue;
        char name[SEGLOG_NAME_BYTES];
        seg_name(name, ls->firsts[i]);
        struct rk_errmsg scratch;
        struct fs_file *f;
        if (s->fs->ops->open(s->fs, name, 0, &f, &scratch) != RK_OK)
            continue;
        uint64_t size = 0;
        bool found = false;
        uint64_t first_last = 0;
        uint64_t max_last = 0;
        struct seg_reader r = {.s = s, .f = f, .name = name};
        if (s->fs->ops->size(s->fs, f, &size, &scratch) == RK_OK) {
            r.size = size;
            if (search_commits(&r, 0, &found, &first_last, &max_last, &scratch) == RK_OK &&
                max_last > d->acked_index)
                d->acked_index = max_last;
            uint64_t max_entry = 0;
            if (search_entries(&r, 0, ls->firsts[i], &max_entry, &scratch) == RK_OK &&
                max_entry > d->acked_index)
                d->acked_index = max_entry;
        }
        rk_free(s->alloc, r.buf);
        s->fs->ops->close(s->fs, f);
    }
}

/* A dry run hands what the hardstate file holds (found or not) to the visitor. */
static void dry_hard_state(struct seglog *s, bool found)
{
    struct log_verify_stats *st = s->dry->st;
    st->hard_state_found = found;
    st->hs = s->hs;
    st->snapshot_index = s->snap_index;
    st->snapshot_term = s->snap_term;
    const struct log_verify_cb *cb = s->dry->cb;
    if (cb != NULL && cb->hard_state != NULL)
        cb->hard_state(cb->ctx, found, &s->hs, s->snap_index, s->snap_term);
}

static int recover(struct seglog *s, struct rk_errmsg *err)
{
    struct listing ls = {.alloc = s->alloc};
    int rc = s->fs->ops->list(s->fs, list_one, &ls, err);
    if (rc != RK_OK)
        rk_errwrap(err, rc, "list");
    else if (ls.nomem)
        rc = rk_errf(err, RK_ENOMEM, "no memory to list the directory");
    else if (ls.too_many)
        rc = rk_errf(err, RK_ETOOBIG, "more than %u segments", SEGLOG_SEGMENTS_MAX);
    if (rc == RK_OK)
        rc = check_format(s, &ls, err);
    if (rc == RK_OK && ls.hs_tmp && s->dry != NULL)
        dry_notice(s, LOG_VERIFY_LEFTOVER, SEGLOG_HS_TMP_NAME, 0, 0,
                   SEGLOG_HS_TMP_NAME " was never committed (would be removed on open)");
    else if (rc == RK_OK && ls.hs_tmp &&
             (rc = remove_if_there(s, SEGLOG_HS_TMP_NAME, err)) != RK_OK)
        rk_errwrap(err, rc, SEGLOG_HS_TMP_NAME ": remove");
    if (rc == RK_OK && ls.hs)
        rc = read_hardstate(s, err);
    if (rc == RK_OK && ls.promise_tmp && s->dry != NULL)
        dry_notice(s, LOG_VERIFY_LEFTOVER, SEGLOG_PROMISE_TMP_NAME, 0, 0,
                   SEGLOG_PROMISE_TMP_NAME " was never committed (would be removed on open)");
    else if (rc == RK_OK && ls.promise_tmp &&
             (rc = remove_if_there(s, SEGLOG_PROMISE_TMP_NAME, err)) != RK_OK)
        rk_errwrap(err, rc, SEGLOG_PROMISE_TMP_NAME ": remove");
    if (rc == RK_OK && ls.promise) {
        /* One that does not check out or cannot be read is unknown: a promise may be
         * over-estimated, never forgotten (and the replica removes it once resolved). */
        struct rk_errmsg perr;
        if (read_promise(s, &s->promised, &perr) != RK_OK) {
            s->promised = LOG_PROMISE_UNKNOWN;
            if (s->dry != NULL)
                dry_notice(s, LOG_VERIFY_PROMISE, SEGLOG_PROMISE_NAME, 0, 0,
                           "%s (open takes the promise as unknown)", perr.text);
        }
    }
    if (rc == RK_OK && s->dry != NULL)
        dry_hard_state(s, ls.hs);
    s->dur = (struct seglog_durable){.term = s->hs.term,
                                     .vote = s->hs.vote,
                                     .snap_index = s->snap_index,
                                     .snap_term = s->snap_term};
    s->last_index = s->snap_index;
    size_t lo = 0;
    while (lo + 1 < ls.n && ls.firsts[lo] <= s->snap_index &&
           ls.firsts[lo + 1] <= s->snap_index + 1)
        lo++;
    size_t hi = lo;
    if (rc == RK_OK)
        rc = recover_chain(s, &ls, lo, &hi, err);
    if (rc == RK_OK)
        rc = remove_unkept(s, &ls, hi, err);
    if (rc == RK_OK && s->dry == NULL)
        rc = settle(s, err);
    /* A raised term is made durable like a cut tail (a dry run only reported both). */
    if (rc == RK_OK && s->dry == NULL && hs_dirty(s))
        rc = write_hardstate(s, err);
    if (rc == RK_ECORRUPT && s->damage.kind != LOG_DAMAGE_NONE &&
        s->damage.kind != LOG_DAMAGE_FORMAT)
        damage_acked(s, &ls);
    rk_free(s->alloc, ls.firsts);
    if (rc != RK_OK || s->dry != NULL)
        return rc;
    RK_ASSERT(s->n_held == s->last_index - s->snap_index);
    s->holding = true;
    return RK_OK;
}

/* A store not yet recovered, configured from c; the caller owns *out (seglog_destroy). */
static int seglog_new(const struct log_seglog_config *c, struct seglog **out, struct rk_errmsg *err)
{
    if (c == NULL || c->fs == NULL)
        return rk_errf(err, RK_EINVAL, "seglog: no fs");
    if (c->segment_bytes > LOG_SEGLOG_SEGMENT_BYTES_MAX)
        return rk_errf(err, RK_EINVAL, "seglog: segment_bytes %llu over %llu",
                       (unsigned long long)c->segment_bytes,
                       (unsigned long long)LOG_SEGLOG_SEGMENT_BYTES_MAX);
    const struct rk_alloc *a = c->alloc != NULL ? c->alloc : rk_alloc_libc();
    struct seglog *s = rk_malloc(a, sizeof(*s));
    if (s == NULL)
        return rk_errf(err, RK_ENOMEM, "seglog: no memory");
    memset(s, 0, sizeof(*s));
    s->base.ops = &seglog_ops;
    s->fs = c->fs;
    s->alloc = a;
    s->segment_bytes = c->segment_bytes != 0 ? c->segment_bytes : LOG_SEGLOG_DEFAULT_SEGMENT_BYTES;
    *out = s;
    return RK_OK;
}

int log_seglog_open(const struct log_seglog_config *c, struct log_store **out,
                    struct rk_errmsg *err)
{
    struct seglog *s = NULL;
    int rc = seglog_new(c, &s, err);
    if (rc != RK_OK)
        return rc;
    rc = recover(s, err);
    if (c->damage != NULL)
        *c->damage = s->damage;
    if (rc != RK_OK) {
        seglog_destroy(&s->base);
        return rk_errwrap(err, rc, "seglog: open");
    }
    *out = &s->base;
    return RK_OK;
}

int log_seglog_verify(const struct log_seglog_config *c, const struct log_verify_cb *cb,
                      struct log_verify_stats *st, struct rk_errmsg *err)
{
    RK_ASSERT(st != NULL);
    memset(st, 0, sizeof(*st));
    struct seglog *s = NULL;
    int rc = seglog_new(c, &s, err);
    if (rc != RK_OK)
        return rc;
    struct seglog_dry dry = {.cb = cb, .st = st};
    s->dry = &dry;
    rc = recover(s, err);
    RK_ASSERT(s->active == NULL && s->n_held == 0); /* a dry run opens nothing, holds nothing */
    st->segments = s->n_segs;
    for (size_t i = 0; i < s->n_segs; i++)
        st->segment_bytes += s->segs[i].size;
    st->first_index = s->snap_index + 1;
    st->last_index = s->last_index;
    st->damage = s->damage;
    st->promised = s->promised;
    if (c->damage != NULL)
        *c->damage = s->damage;
    RK_ASSERT(rc != RK_OK || st->entries == s->last_index - s->snap_index);
    seglog_destroy(&s->base);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "seglog: verify");
}

void log_seglog_stats(const struct log_store *ls, struct log_seglog_stats *out)
{
    RK_ASSERT(ls->ops == &seglog_ops);
    const struct seglog *s = (const struct seglog *)ls;
    *out = s->stats;
    out->segments = s->n_segs;
    out->snapshot_index = s->snap_index;
    out->last_index = s->last_index;
    out->commit = s->hs.commit;
}

/* REPAIR (log.h, core/log/INTEGRITY.md): the promise first, then the cut. The order of a CUT is
 * truncate's (T1 then T2): a crash in the middle leaves the damaged segment, which the next open
 * finds again (and the promise is already durable). */
static int repair_cut(struct seglog *s, const struct listing *ls, const struct log_repair *r,
                      struct rk_errmsg *err)
{
    uint64_t first = seg_name_first(r->file);
    if (first == 0)
        return rk_errf(err, RK_EINVAL, "seglog: repair: %s is not a segment", r->file);
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && i < ls->n; i++) {
        if (ls->firsts[i] > first)
            rc = remove_segment(s, ls->firsts[i], false, err);
    }
    if (rc == RK_OK)
        rc = s->fs->ops->sync_dir(s->fs, err);
    if (rc != RK_OK)
        return rc;
    if (r->offset == 0) {
        rc = remove_if_there(s, r->file, err);
        if (rc == RK_OK)
            rc = s->fs->ops->sync_dir(s->fs, err);
        return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "%s: remove", r->file);
    }
    struct fs_file *f;
    rc = s->fs->ops->open(s->fs, r->file, 0, &f, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s: open", r->file);
    uint64_t size = 0;
    rc = s->fs->ops->size(s->fs, f, &size, err);
    if (rc == RK_OK && size > r->offset) {
        rc = s->fs->ops->truncate(s->fs, f, r->offset, err);
        if (rc == RK_OK)
            rc = s->fs->ops->sync(s->fs, f, err);
    }
    s->fs->ops->close(s->fs, f);
    return rc == RK_OK ? RK_OK
                       : rk_errwrap(err, rc, "%s: cut at offset %llu", r->file,
                                    (unsigned long long)r->offset);
}

/* RESET: every segment goes, then the hard state is written again with commit and snapshot
 * point 0 (term and vote as they were, if hs_ok). */
static int repair_reset(struct seglog *s, const struct listing *ls, bool hs_ok,
                        struct rk_errmsg *err)
{
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && i < ls->n; i++)
        rc = remove_segment(s, ls->firsts[i], false, err);
    if (rc == RK_OK)
        rc = s->fs->ops->sync_dir(s->fs, err);
    if (rc == RK_OK)
        rc = write_format(s, err); /* it may be what could not be read (a write remaps) */
    if (rc != RK_OK)
        return rc;
    if (!hs_ok)
        s->hs = (struct raft_hard_state){0};
    s->hs.commit = 0;
    s->snap_index = 0;
    s->snap_term = 0;
    return write_hardstate(s, err);
}

int log_seglog_repair(const struct log_seglog_config *c, const struct log_repair *r,
                      struct rk_errmsg *err)
{
    struct seglog *s = NULL;
    int rc = seglog_new(c, &s, err);
    if (rc != RK_OK)
        return rc;
    struct listing ls = {.alloc = s->alloc};
    rc = s->fs->ops->list(s->fs, list_one, &ls, err);
    if (rc != RK_OK)
        rk_errwrap(err, rc, "list");
    else if (ls.nomem || ls.too_many)
        rc = rk_errf(err, RK_ENOMEM, "cannot list the directory");
    uint64_t cur = 0;
    if (rc == RK_OK && ls.promise && read_promise(s, &cur, err) != RK_OK)
        cur = LOG_PROMISE_UNKNOWN; /* unreadable: never less than unknown */
    bool hs_ok = true;
    if (rc == RK_OK && r->mode == LOG_REPAIR_RESET && ls.hs) {
        rc = read_hardstate(s, err);
        if (rc == RK_ECORRUPT || rc == RK_EIO) {
            hs_ok = false; /* term and vote are lost: the promise is unknown */
            rc = RK_OK;
        }
    }
    uint64_t want = cur > r->promise ? cur : r->promise;
    if (!hs_ok)
        want = LOG_PROMISE_UNKNOWN;
    s->promised = cur;
    if (rc == RK_OK && want != cur)
        rc = write_promise(s, want, err);
    if (rc == RK_OK) {
        switch (r->mode) {
        case LOG_REPAIR_PROMISE:
            break;
        case LOG_REPAIR_CUT:
            rc = repair_cut(s, &ls, r, err);
            break;
        case LOG_REPAIR_RESET:
            rc = repair_reset(s, &ls, hs_ok, err);
            break;
        case LOG_REPAIR_FORMAT:
            rc = write_format(s, err);
            break;
        default:
            rc = rk_errf(err, RK_EINVAL, "seglog: repair mode %d", (int)r->mode);
        }
    }
    rk_free(s->alloc, ls.firsts);
    seglog_destroy(&s->base);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "seglog: repair");
}
