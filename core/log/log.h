/*
 * log.h — where a replica keeps its Raft log and hard state: an interface, so that the same
 * replica runs over memory (memlog.c: tests) and over segment files on an injected fs (seglog.c:
 * the durable log).
 *
 * Contract (the ready/advance order of raft.h): the replica calls truncate, append and
 * set_hard_state for one ready batch, then sync once; only after sync returns RK_OK may it send
 * the messages that depend on the batch. What a store returned from load must be exactly what
 * was synced: a crash may drop anything written after the last sync, never what came before.
 * Two liberties, both safe for Raft (seglog.c argues them): a truncate may be durable before the
 * sync (a crash may then leave the log cut at `from`, or cut at a segment boundary beyond it),
 * and load may return a term raised to the highest term in the log, with no vote, when a crash
 * left entries durable without the hard state of their batch.
 * An implementation embeds struct log_store as its first member (SQLite's VFS pattern).
 *
 * Indexes: the log holds the entries snapshot_index + 1 .. last; compact moves the snapshot point
 * forward (forgetting the prefix), truncate cuts the suffix, append continues at last + 1.
 * Every call but load and destroy may be refused with RK_EINVAL (a misuse: an append that does
 * not continue the log, a truncate or compact behind the snapshot point) without changing
 * anything. A store whose write or sync failed is poisoned: every later call fails (fs.h: a failed
 * sync is fatal); reopening recovers what is durable.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/err.h"
#include "fs/fs.h"
#include "raft/raft.h"

struct log_store;

struct log_store_ops {
    /* Loads what is durable. *entries (consecutive, from snapshot_index + 1) and their data are
     * borrowed until the next call on the store. */
    int (*load)(struct log_store *s, struct raft_hard_state *hs, uint64_t *snapshot_index,
                uint64_t *snapshot_term, const struct raft_entry **entries, size_t *n_entries,
                struct rk_errmsg *err);
    /* Removes entries with index >= from (from > snapshot index; beyond the last: nothing). */
    int (*truncate)(struct log_store *s, uint64_t from, struct rk_errmsg *err);
    /* Appends entries (copied); the first continues the log. */
    int (*append)(struct log_store *s, const struct raft_entry *entries, size_t n,
                  struct rk_errmsg *err);
    int (*set_hard_state)(struct log_store *s, const struct raft_hard_state *hs,
                          struct rk_errmsg *err);
    /* Makes everything above durable. */
    int (*sync)(struct log_store *s, struct rk_errmsg *err);
    /* Log compaction (Raft §7): forgets the entries up to and including index, which a snapshot
     * now covers, and remembers (index, term) as the snapshot point that load returns. index may
     * lie beyond the last entry (a snapshot installed from the leader): the log is then empty
     * and continues at index + 1. Entries after index stay: a caller whose log conflicts with
     * the snapshot truncates first (Figure 13, step 7). Compacting to the current snapshot point
     * again (same term) does nothing; behind it is RK_EINVAL. Durable at the next sync. */
    int (*compact)(struct log_store *s, uint64_t index, uint64_t term, struct rk_errmsg *err);
    /* Closes the store, writing nothing (what was not synced may be lost, as at a crash). */
    void (*destroy)(struct log_store *s);
    /* Issue #15, repair from peers (core/log/INTEGRITY.md). The promise this store carries:
     * the highest index this node may have acknowledged that its log may no longer hold (0:
     * none; LOG_PROMISE_UNKNOWN: not known at all, the hard state was lost), which the replica
     * hands to raft as raft_config.promised_index. NULL op: none. */
    uint64_t (*promised)(struct log_store *s);
    /* Sets the promise (0 clears it), durable when it returns (not at the next sync): the
     * replica clears it only once the entries up to it are durable again. NULL op: refused. */
    int (*set_promise)(struct log_store *s, uint64_t index, struct rk_errmsg *err);
};

/* A promise that is not known (raft.h RAFT_PROMISE_UNKNOWN): a lost hard state; and that of a
 * new directory (RAFT_PROMISE_NEW), which a new cluster may resolve. */
#define LOG_PROMISE_UNKNOWN UINT64_MAX
#define LOG_PROMISE_NEW     (UINT64_MAX - 1)

struct log_store {
    const struct log_store_ops *ops;
};

/* An in-memory store: everything appended is "durable" at sync. It outlives the replica that
 * uses it, so that a simulated crash and restart finds the log again. Counts syncs. */
int log_memstore_create(const struct rk_alloc *a, struct log_store **out);
uint64_t log_memstore_syncs(const struct log_store *s);

/*
 * The durable store (seglog.c): the log in segment files of CRC-framed records, the hard state
 * in a file replaced atomically, everything through c->fs, a directory of its own (no other
 * files may be written there). Every sync ends what it makes durable with a commit record, so
 * that opening can tell a torn write from corruption for certain (seglog.c, TORN OR CORRUPT):
 * bytes after the last commit record of the highest segment were never synced, and only they
 * may be cut as a torn tail; a bad record that a commit record vouches for is corruption, and
 * the open fails with RK_ECORRUPT, naming file and offset in err and describing the damage in
 * *c->damage (struct log_damage) so that the replica can act on it. An injected bad read is
 * read again (RK_EIO when reads keep disagreeing, or when a range can never be read).
 *
 * Format 2 (this one) is recorded in a file `format`, written when the directory is first used.
 * A directory of format 1 (segments or a hard state, no `format` file: an older raftkv) is
 * refused with RK_EMALFORMED and a message that says so; it is not read.
 *
 * Memory: entries are not kept. The store keeps 8 bytes per entry (its offset, for truncate)
 * and 24 per segment; the entries read at open are held (with their data) only until the call
 * after the first load, and a later load reads the segments again.
 */
#define LOG_SEGLOG_DEFAULT_SEGMENT_BYTES (8ull << 20)
#define LOG_SEGLOG_SEGMENT_BYTES_MAX     (1ull << 30)

/* What an open (or verify) that found corruption knows about it: the replica must not take the
 * log as whole (Protocol-Aware Recovery, Alagappan et al., FAST'18: a corrupted entry is not
 * an absent one). Indexes are 0 when unknown. */
enum log_damage_kind {
    LOG_DAMAGE_NONE = 0,
    LOG_DAMAGE_RECORD,     /* a record in synced data does not check out (crc, length, index) */
    LOG_DAMAGE_HARD_STATE, /* hardstate does not check out: term and vote are unknown */
    LOG_DAMAGE_FORMAT,     /* the format file does not check out */
    LOG_DAMAGE_LAYOUT,     /* segments overlap, or a segment lacks its closing commit record */
};

struct log_damage {
    enum log_damage_kind kind;
    char file[FS_NAME_MAX + 1];
    uint64_t offset;            /* of the bad record (or structure) in file */
    uint64_t intact_last_index; /* the log is whole up to here (the entry before the damage) */
    uint64_t first_index;       /* the first index the damage may cover */
    uint64_t last_index;        /* the last index the damage may cover: the last index of the
                                   commit record that vouches for the bad bytes (0: unknown) */
    uint64_t acked_index;       /* the highest index this node may have acknowledged: the
                                   highest last index of any commit record found, or a hard
                                   state's commit; a repair must restore the log up to here */
    char problem[128];
};

struct log_seglog_config {
    struct fs *fs;                /* borrowed; must outlive the store */
    const struct rk_alloc *alloc; /* NULL: libc */
    /* A new segment is started by the first append after the last one reached this size
     * (an append is never split, so a segment may exceed it by one append). 0: the default;
     * at most LOG_SEGLOG_SEGMENT_BYTES_MAX. */
    uint64_t segment_bytes;
    /* NULL, or set by open and verify: kind NONE unless they found damage (TORN OR CORRUPT). */
    struct log_damage *damage;
};

/* What recovery found and what the store did, for tests and operators. */
struct log_seglog_stats {
    uint64_t segments;          /* live segment files */
    uint64_t cut_bytes;         /* cut at open: torn tails */
    uint64_t dropped_segments;  /* removed at open: past a gap in the indexes */
    uint64_t garbage_segments;  /* removed at open: wholly behind the snapshot point */
    uint64_t term_raises;       /* opens that raised the term to the log's (seglog.c) */
    uint64_t hard_state_writes; /* hardstate files written */
    uint64_t commit_records;    /* commit records written (one per sync that made bytes durable) */
    uint64_t fs_syncs;          /* fs sync calls on segments (group commit: one per batch) */
    uint64_t reloads;           /* loads that read the segments again */
    uint64_t snapshot_index;    /* the log holds snapshot_index + 1 .. last_index */
    uint64_t last_index;
    uint64_t commit; /* the hard state's (a hint: raft.h) */
};

/* Opens (creating if empty) the store in c->fs. The caller owns *out and frees it with its
 * destroy op. On failure *out is untouched and err says why. */
int log_seglog_open(const struct log_seglog_config *c, struct log_store **out,
                    struct rk_errmsg *err);
void log_seglog_stats(const struct log_store *s, struct log_seglog_stats *out);

/*
 * Verification of a store that is not open (log_seglog_verify): recovery run dry. Every record
 * and the hard state are read and checked exactly as log_seglog_open would (the same decoders,
 * the same rules: CRCs, record indexes, contiguity of the segments, the torn-tail rule), but
 * nothing is written, cut or removed: what open would change without failing is reported as a
 * notice instead, and what open would refuse is the error.
 */
enum log_verify_notice_kind {
    LOG_VERIFY_TORN_TAIL = 1, /* the highest segment's tail from offset on: open would cut it */
    LOG_VERIFY_LEFTOVER,      /* a file open would remove: hardstate.tmp, a segment wholly
                                 behind the snapshot point, or one past a gap in the indexes */
    LOG_VERIFY_TERM_RAISE,    /* entries above the hard state's term: open would raise it */
    LOG_VERIFY_PROMISE,       /* the promise file does not check out (or cannot be read): open
                                 takes the promise as unknown (never less) */
};

struct log_verify_notice {
    enum log_verify_notice_kind kind;
    const char *file; /* borrowed for the call */
    uint64_t offset;  /* TORN_TAIL: where the cut would be; else 0 */
    uint64_t bytes;   /* TORN_TAIL: bytes that would be cut; TERM_RAISE: the raised term */
    const char *text; /* a sentence for operators ("torn tail at seg-...: offset 4096 (would be
                         cut on open)"), borrowed for the call */
};

/* The visitor; every member may be NULL. Called in this order: hard_state once, then entry for
 * each entry open would load (index after the snapshot point, ascending), with notices where
 * they are found. Nothing a callback is given outlives the call. */
struct log_verify_cb {
    void *ctx;
    /* What the hardstate file holds (all zeros and found == false when there is none). */
    void (*hard_state)(void *ctx, bool found, const struct raft_hard_state *hs,
                       uint64_t snapshot_index, uint64_t snapshot_term);
    /* One entry, in segment file at offset (the record's first byte). */
    void (*entry)(void *ctx, const char *file, uint64_t offset, const struct raft_entry *e);
    void (*notice)(void *ctx, const struct log_verify_notice *n);
};

struct log_verify_stats {
    bool hard_state_found;
    struct raft_hard_state hs; /* as on disk: before any term raise */
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    uint64_t segments;      /* segment files open would keep */
    uint64_t segment_bytes; /* their bytes, a torn tail not counted */
    uint64_t records;       /* records read and checked in them (behind the snapshot too) */
    uint64_t entries;       /* entries open would load: first_index..last_index */
    uint64_t entry_bytes;   /* their record bytes (headers and data) */
    uint64_t first_index;   /* snapshot_index + 1 */
    uint64_t last_index;    /* snapshot_index when the log is empty */
    uint64_t max_term;      /* the highest term of a record read */
    uint64_t torn_bytes;    /* open would cut them */
    uint64_t leftovers;     /* files open would remove */
    uint64_t notices;
    uint64_t commit_records; /* read and checked */
    struct log_damage damage; /* when verify returns RK_ECORRUPT: what open would report */
    uint64_t promised;        /* the promise file's index (0: none; LOG_PROMISE_UNKNOWN) */
    /* Where the error points when verify returns RK_ECORRUPT: file ("" when the problem is not
     * in one file), the offset of the bad record, and what is wrong with it. */
    char problem_file[FS_NAME_MAX + 1];
    uint64_t problem_offset;
    char problem[128];
};

/* Verifies the store in c->fs (c->segment_bytes is ignored) without modifying anything: no fs
 * call that writes, syncs, renames or removes is made. Returns RK_OK when open would succeed
 * (notices say what it would change), RK_ECORRUPT when open would refuse the store (err and
 * st->problem* say where and why), or RK_EIO / RK_ENOMEM / RK_ETOOBIG / RK_EINVAL, in which case
 * nothing is known. *st is filled as far as verification went. Memory: as open, less the
 * entries (each is read, handed to cb->entry, and let go). After RK_ECORRUPT the counts cover
 * what was read before the problem (segments and segment_bytes: the segments read whole). */
int log_seglog_verify(const struct log_seglog_config *c, const struct log_verify_cb *cb,
                      struct log_verify_stats *st, struct rk_errmsg *err);

/*
 * Repair (issue #15, core/log/INTEGRITY.md): what the replica's storage open does to a log
 * that log_seglog_open refused with RK_ECORRUPT, before it opens it again. Every mode first
 * makes the promise durable (the `promise` file: [crc32c u32][magic u32 "RKPM"][index u64],
 * written to promise.tmp, synced, renamed, directory synced; the index only grows, and
 * LOG_PROMISE_UNKNOWN stays), and only then removes anything, so that a crash in the middle of
 * a repair never forgets what the node may have acknowledged.
 */
enum log_repair_mode {
    LOG_REPAIR_PROMISE = 1, /* only the promise: nothing is cut */
    LOG_REPAIR_CUT,         /* cut the log at the damage: file at offset and every later
                               segment go; the intact prefix stays */
    LOG_REPAIR_RESET,       /* remove every segment; the hard state keeps its term and vote
                               (when it checks out; else term 0, no vote, and the promise
                               becomes LOG_PROMISE_UNKNOWN), commit 0, snapshot point 0 */
    LOG_REPAIR_FORMAT,      /* write the format file again (it carries nothing else) */
};

struct log_repair {
    enum log_repair_mode mode;
    char file[FS_NAME_MAX + 1]; /* CUT: the damaged segment */
    uint64_t offset;            /* CUT: where its intact prefix ends */
    uint64_t promise;           /* raised to at least this (0: kept as it is) */
};

/* Applies r to the log store in c->fs (not open). RK_OK, or the fs's error (nothing is known:
 * run it again). */
int log_seglog_repair(const struct log_seglog_config *c, const struct log_repair *r,
                      struct rk_errmsg *err);

#endif
