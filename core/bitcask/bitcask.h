/*
 * bitcask.h — the storage engine of the state machine (Sheehy & Smith, "Bitcask: A
 * Log-Structured Hash Table for Fast Key/Value Data"), pure: all I/O through struct fs.
 *
 * Files in the fs directory:
 *   NNNNNNNNNN.data   records, appended to the highest id (the active file; each open starts a
 *                     new one, at its first append), the rest immutable; ids need not be
 *                     consecutive (bc_config.merge_id_gap leaves room for a merge's outputs)
 *   NNNNNNNNNN.hint   for an immutable data file: where each live key is (written by merge), or
 *                     where each record is (written when the store rolls to a new data file)
 *   MERGE             a manifest while a merge (or a staged replacement) switches files in
 *
 * Data record, little-endian:
 *   [crc32c u32][index u64][flags|key size u32][value size u32][key][value]
 * crc32c covers everything after itself. index is the Raft log index that wrote the record.
 * The top bits of the key-size word are flags: BC_REC_TOMBSTONE (a delete: no value bytes),
 * BC_REC_END (the last record of a batch), BC_REC_MARK (written by merge only: no key, no
 * value, just the highest index of all the records it merged, so that the applied index survives
 * a merge that dropped the last batch's tombstone) and BC_REC_COMMIT (a commit record: no key,
 * an 8-byte value holding its own offset, index the applied index when it was written; see
 * FORMAT 2 below). The other flag bits must be zero.
 *
 * FORMAT 2 (the torn-or-corrupt decision; recover.c): every data file starts with a commit
 * record at offset 0 (the format mark: a data file whose first record is anything else was
 * written by an older raftkv and is refused with RK_EMALFORMED, never read), and every sync of a
 * data file first appends a commit record after bytes no commit record covers (between batches).
 * So a bad record with a commit record that checks out after it lies in synced data: corruption
 * (RK_ECORRUPT and a struct bc_damage), never a torn tail; only bytes after the last commit
 * record of the last data file were never synced and may be cut. One small append per sync; no
 * more syncs. (Format 1 binaries refuse format-2 files: the COMMIT flag is reserved there.)
 * Keys are at most 64 KiB, values at most 64 MiB (both configurable lower), a batch at most
 * BC_MAX_BATCH_BYTES; beyond them a clear error and nothing written.
 *
 * ROLL HINTS (hint.c): when the store rolls to a new active file, the one it leaves (sealed and
 * synced whole) gets a hint too, read back from the file by whoever runs the store's disk work
 * (the deferred-writes worker, io.c), written under a .tmp name, synced and renamed: so a store
 * that never merged restarts from hints. Its trailer's magic says so; it has one entry per
 * record after the commit record at offset 0 (tombstones and commit records too, their flags as
 * the record's), so it tells recovery what a scan would apply. A hint that is missing or does
 * not check out costs a scan of its data file, never data (bc_stats: hints_ignored).
 *
 * Hint record, little-endian, one per live key of a merged data file, then a trailer:
 *   [crc32c u32][index u64][flags|key size u32][value size u32][offset u64][key]
 *   trailer: [crc32c u32][magic u32][data file id u32][crc32c of all entries u32]
 *            [entries u64][data file bytes u64][highest index u64]
 * A hint that does not check out in every field is ignored and its data file scanned.
 *
 * Batches: the records a state machine writes for one Raft index (a value and the client's
 * session, say) form a batch, written with one append at bc_end_batch. Recovery drops a batch
 * whose END record is missing at the tail (a torn write), so a batch is all or nothing, and
 * bc_applied_index() is the index of the last complete batch.
 *
 * The keydir — key -> (file, offset, value size, index) — is an open-addressing hash table
 * (XXH3), resized incrementally so no put pauses for a full rehash; it costs the key's length
 * plus a few dozen bytes per key. get is one hash lookup and one pread, and every read checks
 * the CRC: a bad record is an RK_ECORRUPT error naming file and offset, never wrong data.
 *
 * Recovery (bc_open): every data file in id order, from its hint file when the hint is valid,
 * otherwise by scanning; a torn tail of the last data file is cut (truncated; the exact rule is
 * at the top of bitcask.c), corruption anywhere else fails the open with an error naming file
 * and offset. Later records win by index. What recovery found is then synced.
 *
 * Merge (bc_merge, or in steps beside the running store: bc_merge_prepare..bc_merge_end): the
 * newest records of the immutable files are rewritten into new data files with hint files,
 * switched in atomically, and the old files removed; a crash at any point of a merge leaves a
 * store that reopens with every key's newest value.
 */
#ifndef BITCASK_H
#define BITCASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/err.h"
#include "fs/fs.h"
#include "kv/store.h"

#define BC_REC_TOMBSTONE      (1u << 31)
#define BC_REC_END            (1u << 30)
#define BC_REC_MARK           (1u << 29)
#define BC_REC_COMMIT         (1u << 28)
#define BC_REC_FLAGS_RESERVED 0x0f000000u
#define BC_COMMIT_VALUE_BYTES 8u
#define BC_COMMIT_BYTES       (BC_HEADER_BYTES + BC_COMMIT_VALUE_BYTES)
#define BC_REC_KEY_MASK       0x00ffffffu
#define BC_HEADER_BYTES       20u
#define BC_HINT_HEADER_BYTES  28u
#define BC_HINT_TRAILER_BYTES 40u
#define BC_MAX_KEY_BYTES      ((64u << 10) + 1) /* a 64 KiB user key plus kv's namespace byte */
#define BC_MAX_VALUE_BYTES    (64u << 20)
/* A batch (the records of one index) is at most this many bytes, written and read. */
#define BC_MAX_BATCH_BYTES (256u << 20)
/* Data file ids are 1..BC_MAX_FILE_ID; at most BC_MAX_FILES of them at once. */
#define BC_MAX_FILE_ID 4000000000u
#define BC_MAX_FILES   (1u << 20)
#define BC_MAX_MERGE_ID_GAP 4096u

/* What an open (or verify) that found corruption knows about it (FORMAT 2): the store must not
 * be used as whole; the Raft log (or a snapshot from the leader) has what it lost. */
enum bc_damage_kind {
    BC_DAMAGE_NONE = 0,
    BC_DAMAGE_RECORD, /* a record in synced data does not check out */
    BC_DAMAGE_LAYOUT, /* a file not closed by a commit record, a commit record in a batch */
    BC_DAMAGE_OTHER,  /* a hint, the MERGE manifest, file ids: see problem */
};

struct bc_damage {
    enum bc_damage_kind kind;
    char file[FS_NAME_MAX + 1];
    uint64_t offset;
    uint64_t intact_index; /* the applied index of the last whole batch read before it */
    uint64_t last_index;   /* the applied index of the commit record after the damage (0: none)
                              — the store had batches up to here durable */
    char problem[128];
};

struct bc_config {
    struct fs *fs;                /* borrowed: the directory of this store */
    const struct rk_alloc *alloc; /* NULL: libc */
    uint64_t max_file_bytes;      /* rotate the active file past this; 0: 64 MiB */
    uint32_t max_key_bytes;       /* 0: BC_MAX_KEY_BYTES */
    uint32_t max_value_bytes;     /* 0: BC_MAX_VALUE_BYTES */
    struct bc_damage *damage;     /* NULL, or set by bc_open and bc_verify (kind NONE: none) */
    /* Ids left free below each new active file for a background merge's outputs (merge.c,
     * bc_merge_prepare); 0: none (bc_merge still works, a background merge only when the
     * active file is not yet made). At most BC_MAX_MERGE_ID_GAP. */
    uint32_t merge_id_gap;
};

struct bitcask;

/* Opens (creating if empty) and recovers the store. */
int bc_open(const struct bc_config *c, struct bitcask **out, struct rk_errmsg *err);
/* Closes files and frees memory; writes nothing (an open batch is dropped). */
void bc_close(struct bitcask *bc);

/* The value of key: borrowed until the next call on bc. RK_ENOENT if absent; RK_ECORRUPT or
 * RK_EIO with err naming the file and offset. */
int bc_get(struct bitcask *bc, const uint8_t *key, uint32_t key_len, const uint8_t **val,
           uint32_t *val_len, struct rk_errmsg *err);
/* Adds a record to the open batch of index (index >= the last batch's; a new index starts a
 * new batch). Visible to bc_get at once; written at bc_end_batch. RK_ETOOBIG over limits. A
 * failure (RK_ETOOBIG, RK_ENOMEM) changes nothing (store.h S1). */
int bc_put(struct bitcask *bc, uint64_t index, const uint8_t *key, uint32_t key_len,
           const uint8_t *val, uint32_t val_len, struct rk_errmsg *err);
int bc_del(struct bitcask *bc, uint64_t index, const uint8_t *key, uint32_t key_len, bool *existed,
           struct rk_errmsg *err);
/* Writes the open batch with one append (rotating first if the active file is full). */
int bc_end_batch(struct bitcask *bc, struct rk_errmsg *err);
/* Makes everything written durable: the active file, and the directory if files came or went.
 * After any failed write or sync the store is poisoned: every later call fails until reopened
 * (store.h S5). */
int bc_sync(struct bitcask *bc, struct rk_errmsg *err);
/* Compacts every data file (see above and bitcask.c): syncs and closes the active file first
 * (the next append starts a new one), then runs the steps below in a row. RK_EINVAL while a
 * batch is open; RK_EBUSY while a merge in steps is in progress. A failure that leaves files
 * only an open sorts out poisons the store (reopen finishes or undoes the merge); others
 * (RK_ENOMEM, RK_ECORRUPT: a bad input record) undo it and leave the store usable. */
int bc_merge(struct bitcask *bc, struct rk_errmsg *err);

/*
 * The merge in the background (merge.c, MERGE IN STEPS): bc_merge is these steps run one after
 * the other. The store's owner (the node's event loop, the simulator) calls prepare, install and
 * end; run and cleanup do every disk I/O of the merge and touch only the job, so they may run on
 * another thread (with an fs of their own: fs implementations are not thread-safe) while the
 * store keeps serving reads and writes. Between prepare and end no other merge can start.
 *
 *   bc_merge_prepare   owner   O(files), no I/O: picks the inputs (immutable data files, the
 *                              oldest first) and the ids of the outputs
 *   bc_merge_run       worker  reads the inputs (hints when they check out), writes the merged
 *                              files with hints, syncs them, commits (MERGE), renames them
 *   bc_merge_install   owner   a bounded number of keydir entries repointed per call; on the
 *                              last call the outputs are taken in and the inputs let go
 *   bc_merge_cleanup   worker  removes the inputs and MERGE
 *   bc_merge_end       owner   the job is over (whatever happened); then bc_merge_job_free
 *
 * A crash at any point leaves a store that opens with every key's newest value.
 */
struct bc_merge_job;

/* When to merge (the Bitcask paper's implementation, riak's bitcask: frag_merge_trigger and
 * dead_bytes_merge_trigger): the inputs a merge would take have dead bytes (records the keydir
 * no longer points to) of at least frag_percent of their bytes, or of at least dead_bytes; and
 * never fewer than min_dead_bytes (a merge is not worth its I/O for less). */
struct bc_merge_policy {
    uint32_t frag_percent; /* 0: this trigger off */
    uint64_t dead_bytes;   /* 0: this trigger off */
    uint64_t min_dead_bytes;
};

/* What a merge would take now: the inputs bc_merge_prepare would pick, their bytes and dead
 * bytes. O(files), no I/O. */
struct bc_merge_pick {
    uint32_t inputs;
    uint64_t bytes;
    uint64_t dead_bytes;
};
void bc_merge_pick(struct bitcask *bc, struct bc_merge_pick *pick);
/* True if policy says merge now (and no merge is in progress). */
bool bc_merge_wanted(struct bitcask *bc, const struct bc_merge_policy *policy);

/* Starts a merge of what bc_merge_pick picks. fs: the directory of bc for run and cleanup (NULL:
 * bc's own, when they run on the owner's thread). RK_OK with *job NULL: nothing to merge; RK_EBUSY
 * while another merge is in progress; the store's failure if it is poisoned. */
int bc_merge_prepare(struct bitcask *bc, struct fs *fs, struct bc_merge_job **job,
                     struct rk_errmsg *err);
/* All the disk work of the merge up to its commit and the renames; returns the outcome, kept in
 * the job for install. Touches nothing but the job and its fs. */
int bc_merge_run(struct bc_merge_job *job);
/* Installs at most max_entries keydir entries (0: all). *done: the merge is installed (the
 * outputs serve reads, the inputs are no longer used) and cleanup may run. An error of run
 * (before the commit: the store unchanged and usable; after it: reopen finishes the merge) is
 * returned here with *done false: skip cleanup, call bc_merge_end. */
int bc_merge_install(struct bitcask *bc, struct bc_merge_job *job, size_t max_entries, bool *done,
                     struct rk_errmsg *err);
/* Removes the inputs and MERGE (durably), and frees what install read (the merge's keydir, of
 * every key of the inputs: not on the owner's thread). */
int bc_merge_cleanup(struct bc_merge_job *job);
/* The job is over: bc may start another merge. A cleanup that failed stops merges until reopen
 * (its files are removed then). *err: the cleanup's failure, if any. */
int bc_merge_end(struct bitcask *bc, struct bc_merge_job *job, struct rk_errmsg *err);
/* Frees the job and closes its files (after bc_merge_end, or when its store is gone: a crash
 * drops the job, and the next open finishes or undoes the merge). NULL does nothing. */
void bc_merge_job_free(struct bc_merge_job *job);
/* Any thread: asks a run in progress (or to come) to stop before its commit; it then fails with
 * RK_EBUSY, its outputs removed, the store as before. After the commit it has no effect. */
void bc_merge_cancel(struct bc_merge_job *job);
/* The job's message after run or cleanup failed (for logs). */
const char *bc_merge_job_error(const struct bc_merge_job *job);

/*
 * DEFERRED WRITES (io.c): the disk part of writes and syncs off the owner's thread, as the log's
 * jobs are (replica.h, "Asynchronous persistence"). Once bc_set_deferred is on, bc_end_batch
 * and bc_sync do no I/O: the owner decides where each batch goes (file, offset, rotation, commit
 * records) and the keydir points there at once, but the appends, creations and syncs are queued
 * in a job (struct bc_io_job) that the driver takes (bc_io_take), runs off the owner's thread
 * (bc_io_run: the job and its fs only, never the store) and hands back in order (bc_io_done).
 * Until a job is done, reads of its records are served from its buffers (which the job owns:
 * a batch buffer moves into it, nothing is copied) and a record's CRC is computed by the
 * worker. What the store reports as durable (bc_durable_index, the kv_store's durable_index) is
 * the applied index of the last sync a DONE job ran: only that may be relied on by log
 * compaction; a crash loses the jobs not done (the next open recovers what reached the disk).
 * A failed job poisons the store at bc_io_done. A merge takes no file a job not yet done
 * writes or syncs.
 *
 *   owner: put/del/end_batch/sync ──► job filling ──bc_io_take──► driver ──worker: bc_io_run──►
 *   owner: bc_io_done (in take order): files known written, durable index, buffers freed
 */
struct bc_io_job;
/* Turns deferred writes on (before any write after bc_open). fs: the directory for the worker
 * (NULL: bc's own, when the worker is the owner's thread, as in the simulator). */
void bc_set_deferred(struct bitcask *bc, struct fs *fs);
/* The job filled since the last take (NULL: nothing queued). The driver owns it: bc_io_run,
 * then bc_io_done; or bc_io_free when dropping it (a crash: the store is closed too). */
struct bc_io_job *bc_io_take(struct bitcask *bc);
/* Worker side: runs the job's writes and syncs in order; the outcome stays in the job. */
int bc_io_run(struct bc_io_job *job);
/* Whether the job syncs (its cost is a sync: for a simulator's latency). */
bool bc_io_job_syncs(const struct bc_io_job *job);
/* Whether the job switches a staged replacement in (for a simulator's crash points). */
bool bc_io_job_switches(const struct bc_io_job *job);
/* Owner side, in take order: the job's writes are known on disk (or the store poisoned). Frees
 * the job. RK_OK or the job's failure (err). */
int bc_io_done(struct bitcask *bc, struct bc_io_job *job, struct rk_errmsg *err);
void bc_io_free(struct bc_io_job *job);
/* The applied index the disk holds for sure: the last sync a done job ran (deferred), else the
 * applied index (what bc_sync made durable). */
uint64_t bc_durable_index(const struct bitcask *bc);
/* Jobs taken and not yet done, plus the one filling (0: every write is on disk or dropped). */
size_t bc_io_out(const struct bitcask *bc);

/*
 * STAGED REPLACEMENT (stage.c; the protocol and its crash analysis are at its top): the whole
 * store replaced by a stream of records (a follower installing a snapshot), written as they come
 * into outputs of their own (*.data.tmp with hints, ids above every live file) through the
 * deferred jobs, and switched in by the MERGE protocol with every live file as an input: a crash
 * leaves the old store or the new one, never a mix, and after the switch only the new one is on
 * disk. The owner's work is O(records of the call) per call; the new keydir is loaded and the
 * old one freed by the worker. The live store keeps serving and taking writes until the commit.
 *
 *   bc_stage_begin    no I/O; RK_EBUSY while another stage is in progress or a merge left files
 *   bc_stage_put      a record of the new store, at the stage's index (keys must be unique)
 *   bc_stage_flush    the records put so far queued for the worker (without deferred writes:
 *                     written now)
 *   bc_stage_commit   queues the switch; RK_EBUSY while a merge is in progress (nothing
 *                     changed: call again later). From here until the switch is done
 *                     (bc_stage_state NONE again, bc_applied_index the stage's), puts and dels
 *                     fail with RK_EBUSY and bc_sync does nothing. Without deferred writes the
 *                     switch is done on return.
 *   bc_stage_abort    before the commit: the outputs' removal queued, the stage gone
 * No merge starts while a stage is in progress (bc_merge_prepare: RK_EBUSY).
 */
enum bc_stage_state { BC_STAGE_NONE = 0, BC_STAGE_FILLING, BC_STAGE_COMMITTING };
int bc_stage_begin(struct bitcask *bc, uint64_t index, struct rk_errmsg *err);
int bc_stage_put(struct bitcask *bc, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                 uint32_t val_len, struct rk_errmsg *err);
int bc_stage_flush(struct bitcask *bc, struct rk_errmsg *err);
int bc_stage_commit(struct bitcask *bc, struct rk_errmsg *err);
void bc_stage_abort(struct bitcask *bc);
int bc_stage_state(const struct bitcask *bc);
/* Bytes staged and queued that the worker has not yet written (bc_io_done): a sender of records
 * waits for this to fall before it stages more, so that what is queued stays bounded. */
uint64_t bc_stage_queued_bytes(const struct bitcask *bc);

uint64_t bc_count(const struct bitcask *bc);
/* The index of the last complete batch (0 if none). */
uint64_t bc_applied_index(const struct bitcask *bc);
/* Calls fn for every live key with its value (read and checked); stops when fn returns false.
 * Order: ascending (32-bit XXH3 hash, key bytes) — a function of the set of live keys alone,
 * the same on every replica whatever its history of restarts, merges and table growth (store.h
 * S3, and more). fn may call bc_get but nothing that changes the store. */
int bc_scan(struct bitcask *bc,
            bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                       uint32_t val_len),
            void *ctx, struct rk_errmsg *err);
/* As bc_scan, from the keydir alone: val is NULL (val_len its size) but for a key written in
 * the open batch. No I/O. */
int bc_scan_keys(struct bitcask *bc,
                 bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                            uint32_t val_len),
                 void *ctx, struct rk_errmsg *err);

/* As bc_scan_keys, for the keys whose hash (bc_scan's order) is >= lo, in that order, in pages:
 * stops after `budget` keys at the end of a hash, or when fn returns false; *next is the hash
 * to continue from, 0 after the last key. O(budget) (plus the slots passed over), with or
 * without a keydir growth in progress, and nothing in the store moves: what SCAN pages and
 * RANDOMKEY use, so that neither costs a pass over the keyspace. */
int bc_scan_range(struct bitcask *bc, uint32_t lo, uint64_t budget,
                  bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                             uint32_t val_len),
                  void *ctx, uint64_t *next, struct rk_errmsg *err);
/* Resumable bc_scan (raftkv-cli backup walks the store a bounded piece per loop turn): calls fn
 * for every live key that sorts AFTER (after, after_len) in bc_scan's order, or for every key
 * when after is NULL, in that order, with its value read and checked; stops when fn returns
 * false. The order is a function of the set of keys alone, so a caller that remembers the last
 * key it was given resumes where it stopped whatever was written in between. Walks from the
 * cursor's hash (bc_kd_range: with or without a keydir growth in progress, nothing moved), so a
 * piece costs what it visits, not a pass over the keyspace. */
int bc_scan_after(struct bitcask *bc, const uint8_t *after, uint32_t after_len,
                  bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                             uint32_t val_len),
                  void *ctx, struct rk_errmsg *err);
/* An EMPTY store makes room in its keydir for n keys at once (otherwise nothing). For a bulk
 * load whose keys come in bc_scan's order (raftkv-tool restore): the keydir's home slot is the
 * hash's top bits, so keys in ascending hash order, put into a table sized for the keys so far,
 * all crowd its first slots into one run that every later put walks (quadratic); a table sized
 * for all of them from the start spreads them as it will hold them. RK_OK or RK_ENOMEM. */
int bc_reserve_keys(struct bitcask *bc, uint64_t n);
/* bc_scan's order on two keys: <0, 0, >0 (32-bit XXH3 hash, then bytes, then length). */
int bc_key_order(const uint8_t *a, uint32_t a_len, const uint8_t *b, uint32_t b_len);

struct bc_stats {
    uint32_t data_files;
    uint64_t keys;
    uint64_t live_bytes;   /* bytes of the records the keydir points to */
    uint64_t total_bytes;  /* bytes of all data files */
    uint64_t keydir_bytes; /* the keydir's tables and entries */
    /* What bc_open did: */
    uint32_t hint_files_loaded; /* data files recovered from their hint file */
    uint32_t hints_ignored;     /* hint files that did not check out: their data files scanned */
    const char *hint_problem;   /* the first of them, where and why ("" if none; valid until
                                   the store changes) */
    uint32_t data_files_scanned;
    uint64_t scanned_bytes; /* data file bytes read and checked by recovery */
    uint64_t cut_bytes;     /* torn tail cut from the last data file */
    uint64_t commit_records; /* written since open (FORMAT 2) */
    uint64_t fs_syncs;       /* fs syncs of data files since open (one per bc_sync with bytes) */
    uint64_t merges_done;    /* since open */
    uint64_t merged_bytes;   /* bytes of the data files those merges replaced */
    uint64_t hints_written;  /* hint files of rolled data files, since open (ROLL HINTS) */
    uint64_t hint_failures;  /* rolled data files left without a hint, since open */
    const char *hint_failure; /* the last such failure ("" if none; valid as hint_problem) */
    bool merging;            /* a merge is between bc_merge_prepare and bc_merge_end */
};
void bc_stats(const struct bitcask *bc, struct bc_stats *st);
/* O(1): the last roll hint that could not be written ("" if none) and *count, all of them since
 * open (bc_stats' hint_failure and hint_failures), for a driver to log each once. */
const char *bc_hint_failure(const struct bitcask *bc, uint64_t *count);

/* The store as the state machine's kv_store (kv/store.h). Valid until bc_close; its destroy op
 * closes the bitcask. */
struct kv_store *bc_kv_store(struct bitcask *bc);

/*
 * Verification of a store that is not open (bc_verify): recovery run dry. Every data file is
 * scanned record by record (CRC, header, batch END markers, batch size) as bc_open would, every
 * hint file and a MERGE manifest are checked in every field, with the same decoders and the same
 * rules (the torn-tail rule, the roll-forward of a committed merge), but nothing is written, cut,
 * renamed or removed: what bc_open would change without failing is reported as a notice, and
 * what it would refuse is the error. Stricter than bc_open in two ways, both corruption that
 * bc_open would not see until a read: a data file that has a valid hint is scanned all the same,
 * and its hint must say what the data file says, entry by entry (bc_open believes it without
 * reading the data file); and a hint that does not check out is an error (bc_open would ignore
 * it and scan; a hint is written whole and synced before its merge commits, so a bad one is a
 * bad disk or a bug).
 */
enum bc_verify_notice_kind {
    BC_VERIFY_TORN_TAIL = 1, /* the last data file from offset on: bc_open would cut it */
    BC_VERIFY_LEFTOVER,      /* a file bc_open would remove: a *.tmp of a merge that never
                                committed, a hint without its data file, an input of a merge */
    BC_VERIFY_MERGE,         /* MERGE: bc_open would finish the committed merge it describes */
    BC_VERIFY_RENAME,        /* a merged file under its tmp name: bc_open would rename it */
};

struct bc_verify_notice {
    enum bc_verify_notice_kind kind;
    const char *file; /* borrowed for the call */
    uint64_t offset;  /* TORN_TAIL: where the cut would be; else 0 */
    uint64_t bytes;   /* TORN_TAIL: bytes that would be cut; else 0 */
    const char *text; /* a sentence for operators, borrowed for the call */
};

/* One data record of a complete batch, as recovery applies it. key and val are borrowed for the
 * call (NULL when empty). */
struct bc_verify_record {
    uint64_t index;
    uint32_t flags; /* BC_REC_TOMBSTONE | BC_REC_END | BC_REC_MARK */
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *val;
    uint32_t val_len;
};

/* The visitor; every member may be NULL. record is called for every record bc_open would apply,
 * file by file in id order and in file order, with notices where they are found; then, once
 * everything checked out, key for every live key (bc_scan's order, read and checked; false
 * stops the walk, which is not an error). */
struct bc_verify_cb {
    void *ctx;
    void (*record)(void *ctx, const char *file, uint64_t offset, const struct bc_verify_record *r);
    bool (*key)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                uint32_t val_len);
    void (*notice)(void *ctx, const struct bc_verify_notice *n);
};

struct bc_verify_stats {
    bool merge_manifest;   /* a committed merge is to be finished */
    uint32_t data_files;   /* that bc_open would read */
    uint64_t data_bytes;   /* their bytes, a torn tail not counted */
    uint32_t hint_files;   /* beside those data files, each checked */
    uint64_t hint_bytes;   /* their bytes */
    uint64_t hinted_bytes; /* bytes of the data files that have a hint */
    uint64_t records;      /* in complete batches; of which: */
    uint64_t tombstones;
    uint64_t marks;
    uint64_t batches;
    uint64_t keys;          /* live keys after recovery */
    uint64_t live_bytes;    /* bytes of their records */
    uint64_t applied_index; /* bc_applied_index() after bc_open */
    uint64_t torn_bytes;    /* bc_open would cut them */
    uint32_t leftovers;     /* files bc_open would remove */
    uint32_t notices;
    uint64_t commit_records; /* read and checked */
    struct bc_damage damage; /* when it returns RK_ECORRUPT: what bc_open would report */
    /* Where the error points when bc_verify returns RK_ECORRUPT: file ("" when the problem is
     * not in one file), offset, and what is wrong. */
    char problem_file[FS_NAME_MAX + 1];
    uint64_t problem_offset;
    char problem[128];
};

/* Verifies the store in c->fs (the limits of c are ignored: bc_open does not check records
 * against them either) without modifying anything: no fs call that writes, syncs, renames or
 * removes is made. Returns RK_OK when bc_open would succeed (notices say what it would change),
 * RK_ECORRUPT when it would refuse the store or a hint is bad (err and st->problem* say where
 * and why), or RK_EIO / RK_ENOMEM, in which case nothing is known. *st is filled as far as
 * verification went (data files: those opened, with the bytes read). Memory: as bc_open (the
 * keydir). */
int bc_verify(const struct bc_config *c, const struct bc_verify_cb *cb, struct bc_verify_stats *st,
              struct rk_errmsg *err);

#endif
