/*
 * bitcask_int.h — private to core/bitcask: the keydir (keydir.c), the store's state, the record
 * codec and the buffered file reader shared by bitcask.c, recover.c and merge.c.
 */
#ifndef BITCASK_INT_H
#define BITCASK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bitcask/bitcask.h"
#include "common/alloc.h"
#include "common/err.h"
#include "fs/fs.h"

/* ---- keydir (keydir.c) ------------------------------------------------------------------ */

/* file_id of an entry whose record is still in the open batch's buffer (data ids start at 1). */
#define BC_FILE_PENDING 0u

/* One live key. Allocated alone (32 + key_len bytes); the tables hold pointers to it, so an
 * entry never moves while the tables grow. */
struct bc_kent {
    uint64_t index;   /* the Raft index that wrote the record */
    uint64_t offset;  /* of the record in its data file, or in the batch buffer if pending */
    uint32_t file_id; /* BC_FILE_PENDING: in the open batch */
    uint32_t val_len;
    uint32_t hash; /* bc_kd_hash(key) */
    uint32_t key_len;
    uint8_t key[];
};

struct bc_keydir {
    const struct rk_alloc *alloc;
    struct bc_kent **slots; /* 1 << bits pointers; NULL: empty */
    uint32_t bits;
    struct bc_kent **old; /* while growing: the table being drained, else NULL */
    uint32_t old_bits;
    size_t old_pos;       /* every old slot below it is empty */
    uint64_t count;       /* entries in both tables */
    uint64_t old_count;   /* of which in the old table */
    uint64_t entry_bytes; /* bytes of all entries */
    uint64_t moved;       /* entries moved by incremental growth, ever (for tests) */
};

uint32_t bc_kd_hash(const uint8_t *key, uint32_t key_len);
int bc_kd_init(struct bc_keydir *kd, const struct rk_alloc *a);
void bc_kd_free(struct bc_keydir *kd);
/* The entry of key, or NULL. */
struct bc_kent *bc_kd_find(const struct bc_keydir *kd, uint32_t hash, const uint8_t *key,
                           uint32_t key_len);
/* An empty table takes the capacity for n entries at once (bc_reserve_keys). */
int bc_kd_presize(struct bc_keydir *kd, uint64_t n);
/* Makes room for one more entry (may start a growth). RK_ENOMEM changes nothing. */
int bc_kd_reserve(struct bc_keydir *kd);
/* A new entry for key (not yet in the table), or NULL when out of memory. */
struct bc_kent *bc_kd_new(struct bc_keydir *kd, uint32_t hash, const uint8_t *key,
                          uint32_t key_len);
/* Inserts e, whose key is absent, after bc_kd_reserve; takes ownership. */
void bc_kd_insert(struct bc_keydir *kd, struct bc_kent *e);
/* Removes and frees e. */
void bc_kd_remove(struct bc_keydir *kd, struct bc_kent *e);
/* Frees an entry that never went in (bc_kd_new's undo). */
void bc_kd_discard(struct bc_keydir *kd, struct bc_kent *e);
/* A bounded step of an incremental growth; every mutating caller makes one. */
void bc_kd_step(struct bc_keydir *kd);
/* Finishes a growth now (scan wants one table). Allocates nothing. */
void bc_kd_finish(struct bc_keydir *kd);
/* Canonical iteration: ascending (hash, key), a function of the set of keys alone. Requires
 * no growth in progress (bc_kd_finish). *pos starts at 0; returns NULL at the end. */
struct bc_kent *bc_kd_next(const struct bc_keydir *kd, size_t *pos);
/* A range walk, with or without a growth in progress (read only): fn for each entry with
 * hash >= lo in ascending (hash, key), stopping after `budget` entries at the end of a hash
 * (so that a page never splits the keys of one hash) or when fn returns false. *next: the hash
 * to continue from (last + 1), or 0 when the walk reached the end. Returns the entries seen. */
size_t bc_kd_range(const struct bc_keydir *kd, uint32_t lo, uint64_t budget,
                   bool (*fn)(void *ctx, const struct bc_kent *e), void *ctx, uint64_t *next);
/* The canonical order: <0, 0, >0 as (hash, key) sorts before, with, after e's. */
int bc_kd_order(uint32_t hash, const uint8_t *key, uint32_t key_len, const struct bc_kent *e);
uint64_t bc_kd_bytes(const struct bc_keydir *kd);
bool bc_kd_valid(const struct bc_keydir *kd);

/* ---- the store -------------------------------------------------------------------------- */

struct bc_file {
    struct fs_file *f; /* NULL: no data file with this id (a gap, or the active not yet made) */
    uint64_t size;     /* bytes in the file (written, durable or not) */
    uint64_t live;     /* bytes of the records in it that the keydir points to */
    /* Deferred writes (io.c): bytes the worker is known to have written (the loop reads below
     * it from the file, above it from the jobs out). Unused otherwise. */
    uint64_t written;
    /* Its hint, if any, is the one written when the store rolled away from it (hint.c): such a
     * file was sealed, so it scans at open without its hint (bitcask.c, drop_hint). */
    bool roll_hint;
};

/* The file exists, or will once the deferred writes out are run (io.c): size counts its bytes
 * written or queued. */
static inline bool bc_file_made(const struct bc_file *f)
{
    return f->f != NULL || f->size > 0;
}

/* bc_verify's dry run of recovery (recover.c, VERIFY): where it reports instead of changing. */
struct bc_dry {
    const struct bc_verify_cb *cb; /* may be NULL */
    struct bc_verify_stats *st;
};

struct bitcask {
    struct kv_store base; /* first: kv_store ops convert back */
    struct fs *fs;
    const struct rk_alloc *alloc;
    uint64_t max_file_bytes;
    uint32_t merge_id_gap; /* ids left free above each new active file (bc_config) */
    uint32_t max_key_bytes;
    uint32_t max_value_bytes;

    struct bc_keydir kd;

    /* Data files by id: files[id - lo_id] for lo_id <= id <= active_id. */
    struct bc_file *files;
    size_t files_cap;
    uint32_t lo_id;
    uint32_t active_id;   /* receives appends; created at the first append */
    bool active_unsynced; /* the active file has bytes not yet synced */
    uint64_t covered;     /* the active file's bytes before it lie before a commit record */
    bool dir_dirty;       /* a file was created since the last sync_dir */

    /* The open batch(es): records waiting for bc_end_batch, CRCs filled in there. */
    uint8_t *batch;
    size_t batch_len;
    size_t batch_cap;
    size_t batch_start; /* where the current (not yet closed) batch begins */
    size_t batch_last;  /* the last record's offset, valid when batch_len > batch_start */
    /* The puts of the open batch(es), in buffer order (B5): pend[i] is the entry that points at
     * the record at pend_off[i], or NULL once a later put or a del of the same batch took that
     * key over. batch_settle moves these entries to the file without looking their keys up. */
    struct bc_kent **pend;
    uint64_t *pend_off;
    size_t n_pend, cap_pend, cap_pend_off;
    uint64_t batch_index;
    uint64_t applied_index; /* of the last complete batch */

    uint8_t *rbuf; /* bc_get's record buffer: what it returns is borrowed from here */
    size_t rbuf_cap;
    uint8_t *sbuf; /* bc_scan's, so that scan's fn may call bc_get */
    size_t sbuf_cap;

    int poison; /* RK_OK, or the failure that made every later call fail */
    struct rk_errmsg poison_msg;
    struct rk_errmsg kv_err; /* the message of the last kv_store op that failed */

    uint64_t live_bytes;
    uint32_t hint_files_loaded;
    uint32_t hints_ignored; /* at open: a hint that did not check out, its file scanned */
    char hint_problem[160]; /* the first of them: where and why */
    uint64_t hints_written; /* of rolled files, since open (hint.c) */
    uint64_t hint_failures; /* rolled files left without one (the open scans them) */
    char hint_failure[160]; /* the last of those failures */
    uint32_t data_files_scanned;
    uint64_t scanned_bytes;
    uint64_t cut_bytes;
    uint64_t commit_records;
    uint64_t fs_syncs;
    struct bc_damage damage; /* what recovery found (FORMAT 2, recover.c) */

    struct bc_dry *dry; /* NULL but in bc_verify */

    /* Deferred writes (bitcask.h, DEFERRED WRITES; io.c): the job being filled, and the jobs
     * taken by the driver and not yet done (FIFO: io_head .. io_tail, linked by next). */
    bool deferred;
    struct fs *io_fs;
    struct bc_io_job *io_cur;
    struct bc_io_job *io_head, *io_tail;
    uint64_t durable_index; /* the applied index of the last sync a done job ran */

    struct bc_merge_job *merge; /* the merge between bc_merge_prepare and bc_merge_end */
    /* A staged replacement (stage.c) between bc_stage_begin and its switch or abort; while it
     * commits (its switch queued), writes are refused. Outputs of later stages take ids from
     * stage_floor on (the removal of an aborted one's may still be queued). */
    struct bc_stage *stage;
    bool stage_committing;
    uint32_t stage_floor;
    uint64_t stages_done;
    uint64_t stage_queued; /* bytes of staged records in jobs not yet done (flow control) */
    /* What a switch replaced (the old keydir in a store shell): freed by the worker with the
     * next job (bc_io_run), not on the owner's thread. */
    struct bitcask *garbage;
    bool merge_stuck;           /* a merge left files it could not remove: none until reopen */
    uint64_t merges_done;
    uint64_t merged_bytes; /* bytes of the inputs of the merges done */
};

/* ---- little-endian codec ---------------------------------------------------------------- */

/* On a little-endian host one memcpy (one load or store) is the byte loop's result; the
 * compiler does not always merge the loop's byte accesses (record headers are written and read
 * per record). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BC_HOST_LE 1
#else
#define BC_HOST_LE 0
#endif

static inline void bc_put_u32(uint8_t *p, uint32_t v)
{
    if (BC_HOST_LE) {
        memcpy(p, &v, sizeof(v));
        return;
    }
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void bc_put_u64(uint8_t *p, uint64_t v)
{
    if (BC_HOST_LE) {
        memcpy(p, &v, sizeof(v));
        return;
    }
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t bc_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    if (BC_HOST_LE) {
        memcpy(&v, p, sizeof(v));
        return v;
    }
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t bc_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    if (BC_HOST_LE) {
        memcpy(&v, p, sizeof(v));
        return v;
    }
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A record header, decoded. */
struct bc_rec {
    uint32_t crc;
    uint64_t index;
    uint32_t flags; /* BC_REC_TOMBSTONE | BC_REC_END | BC_REC_MARK */
    uint32_t key_len;
    uint32_t val_len;
};

static inline uint64_t bc_rec_bytes(uint32_t key_len, uint32_t val_len)
{
    return (uint64_t)BC_HEADER_BYTES + key_len + val_len;
}

/* Writes a header with crc 0: the CRC is filled in by bc_rec_seal once the flags are final. */
void bc_rec_encode(uint8_t *p, uint64_t index, uint32_t flags, uint32_t key_len, uint32_t val_len);
void bc_rec_decode(const uint8_t *p, struct bc_rec *r);
/* NULL if the header can describe a record, else what is wrong with it. Untrusted bytes. */
const char *bc_rec_header_problem(const struct bc_rec *r);
/* Computes and stores the CRC of the record of len bytes at p. */
void bc_rec_seal(uint8_t *p, size_t len);
bool bc_rec_crc_ok(const uint8_t *p, size_t len);
/* Writes a commit record (BC_COMMIT_BYTES) at p: applied index, its own offset off. */
void bc_commit_encode(uint8_t *p, uint64_t index, uint64_t off);
/* True if the BC_COMMIT_BYTES at p are a commit record that checks out at offset off. */
bool bc_commit_at(const uint8_t *p, uint64_t off, uint64_t *index);

/* ---- names -------------------------------------------------------------------------------- */

#define BC_NAME_BYTES         (FS_NAME_MAX + 1)
#define BC_MERGE_NAME         "MERGE"
#define BC_MERGE_TMP_NAME     "MERGE.tmp"
#define BC_MERGE_MAGIC        0x474d4342u /* "BCMG" */
#define BC_MERGE_HEADER_BYTES 20u
#define BC_HINT_MAGIC         0x54484342u /* "BCHT": a merged file's hint, its live keys */
#define BC_HINT_ROLL_MAGIC    0x52484342u /* "BCHR": a rolled file's hint, every record (hint.c) */

/* "NNNNNNNNNN.<ext>": ext is "data", "hint", "data.tmp" or "hint.tmp". */
void bc_name(char *out, uint32_t id, const char *ext);
/* The id of a name "NNNNNNNNNN.<ext>", or 0 if name is not one. */
uint32_t bc_name_id(const char *name, const char *ext);

/* ---- files and failures ------------------------------------------------------------------ */

struct bc_file *bc_file_at(struct bitcask *bc, uint32_t id);
/* Makes files[] cover ids up to id. RK_ENOMEM changes nothing. */
int bc_files_cover(struct bitcask *bc, uint32_t id);
/* Marks the store failed for good (S5) and returns rc; err already says why. */
int bc_poison(struct bitcask *bc, int rc, struct rk_errmsg *err);
int bc_check_poison(const struct bitcask *bc, struct rk_errmsg *err);

/* fs pread, tried again (a few times) when it fails with RK_EIO: a failed read is not bad data,
 * and one that keeps failing is reported. */
int bc_pread(struct bitcask *bc, struct fs_file *f, uint64_t off, void *buf, size_t len,
             size_t *got, struct rk_errmsg *err);
/* Reads the record of entry e into *buf (grown as needed) and checks it: CRC, header against
 * the entry, key. A failed check is read again (a bad read is not bad data); a failure seen
 * twice alike is RK_ECORRUPT naming file and offset. On RK_OK *val points into *buf. */
int bc_read_entry(struct bitcask *bc, const struct bc_kent *e, uint8_t **buf, size_t *cap,
                  const uint8_t **val, struct rk_errmsg *err);

/* ---- buffered sequential reader (recovery and merge) ------------------------------------- */

#define BC_READ_CHUNK (256u << 10)

struct bc_reader {
    struct bitcask *bc;
    struct fs_file *f;
    const char *name; /* for messages */
    uint64_t size;    /* of the file */
    uint8_t *buf;
    size_t cap;
    uint64_t base; /* file offset of buf[0] */
    size_t len;    /* valid bytes in buf */
};

void bc_reader_init(struct bc_reader *r, struct bitcask *bc, struct fs_file *f, const char *name,
                    uint64_t size);
void bc_reader_free(struct bc_reader *r);
/* Makes [off, off + n) readable at *p, keeping the bytes from keep (<= off) in the buffer.
 * *got < n only at the end of the file. */
int bc_reader_get(struct bc_reader *r, uint64_t keep, uint64_t off, size_t n, const uint8_t **p,
                  size_t *got, struct rk_errmsg *err);
/* Forgets the buffered bytes from off on, so that they are read again. */
void bc_reader_forget(struct bc_reader *r, uint64_t off);

/* The verdict on one data record read through a reader. */
enum bc_check {
    BC_CHECK_OK,
    BC_CHECK_SHORT,  /* the file ends inside the record */
    BC_CHECK_HEADER, /* the header cannot describe a record */
    BC_CHECK_CRC,    /* the CRC does not match */
};

struct bc_checked {
    enum bc_check verdict;
    struct bc_rec rec;
    uint64_t end;         /* offset after the record as far as it could be judged */
    const char *problem;  /* for messages */
    const uint8_t *bytes; /* the whole record, in the reader's buffer, when OK */
};

/* Reads and judges the record at off; a bad verdict is read again until two reads agree byte
 * for byte (then it is what is on the disk) — at most a few times, then RK_EIO. */
int bc_check_record(struct bc_reader *r, uint64_t keep, uint64_t off, struct bc_checked *out,
                    struct rk_errmsg *err);

/* Moves the live bytes of a record of key_len, val_len from file from to file to (either
 * BC_FILE_PENDING: not in a file). */
static inline void bc_live_move(struct bitcask *bc, uint32_t from, uint32_t to, uint32_t key_len,
                                uint32_t val_len)
{
    uint64_t n = bc_rec_bytes(key_len, val_len);
    struct bc_file *f = from != BC_FILE_PENDING ? bc_file_at(bc, from) : NULL;
    if (f != NULL)
        f->live -= n;
    f = to != BC_FILE_PENDING ? bc_file_at(bc, to) : NULL;
    if (f != NULL)
        f->live += n;
}

/* ---- deferred writes (io.c) ------------------------------------------------------------- */

/* Queues the creation of the active file with its commit record at 0. */
int bc_io_create(struct bitcask *bc, uint32_t id, const uint8_t *commit, struct rk_errmsg *err);
/* Queues an append to file id at off: a copy of p (small: a commit record), or (take) the
 * buffer p itself, whose records the worker seals (CRCs) before the append; the job frees it. */
/* A closed batch of fewer than BC_IO_PACK_BYTES bytes, copied into the filling job (io.c, D5). */
#define BC_IO_PACK_BYTES (64u << 10)
int bc_io_append_batch(struct bitcask *bc, uint32_t id, uint64_t off, const uint8_t *p, size_t len,
                       struct rk_errmsg *err);
int bc_io_append(struct bitcask *bc, uint32_t id, uint64_t off, uint8_t *p, size_t len, bool take,
                 struct rk_errmsg *err);
int bc_io_sync(struct bitcask *bc, uint32_t id, struct rk_errmsg *err);
int bc_io_sync_dir(struct bitcask *bc, struct rk_errmsg *err);
/* Queues the hint of data file id, closed at size bytes (after its sync: hint.c). */
int bc_io_hint(struct bitcask *bc, uint32_t id, uint64_t size, struct rk_errmsg *err);
/* Marks the job being filled as making everything up to index durable. */
int bc_io_mark_sync(struct bitcask *bc, uint64_t index, struct rk_errmsg *err);
/* The bytes of the record of e if they are still in a job (not yet known written), else NULL. */
const uint8_t *bc_io_find(const struct bitcask *bc, const struct bc_kent *e);
/* The lowest file id a job not yet done writes or syncs (UINT32_MAX: none). */
uint32_t bc_io_low_id(const struct bitcask *bc);
void bc_io_close(struct bitcask *bc);

/* ---- staged replacement (stage.c) ------------------------------------------------------- */

/* The op that switches a staged replacement in (io.c IO_STAGE_COMMIT), on the worker: commit,
 * renames, the new keydir loaded, the old files removed. first_new/n_out: the outputs; keys: how
 * many records were staged (the keydir's size); manifest: the MERGE bytes. *shadow: the loaded
 * store (the caller owns it). */
int bc_stage_run_commit(struct fs *fs, const struct rk_alloc *alloc, uint32_t first_new,
                        uint64_t keys, const uint8_t *manifest, size_t manifest_len,
                        struct bitcask **shadow, struct rk_errmsg *err);
/* bc_io_done of that op, on the owner: the store becomes the shadow's. */
int bc_stage_switch(struct bitcask *bc, struct bitcask *shadow, struct rk_errmsg *err);
/* The lowest id the stage in progress writes (UINT32_MAX: none): live files stay below it. */
uint32_t bc_stage_limit(const struct bitcask *bc);
/* Frees the stage (bc_close). */
void bc_stage_free(struct bitcask *bc);
/* Queues the creation (commit: its commit record, else an empty hint), an append (p taken), a
 * sync of output id's data (hint false) or hint file, the removal of both, or the switch. */
int bc_io_tmp_create(struct bitcask *bc, uint32_t id, bool hint, const uint8_t *commit,
                     struct rk_errmsg *err);
int bc_io_tmp_append(struct bitcask *bc, uint32_t id, bool hint, uint8_t *p, size_t len,
                     struct rk_errmsg *err);
int bc_io_tmp_sync(struct bitcask *bc, uint32_t id, bool hint, struct rk_errmsg *err);
int bc_io_tmp_remove(struct bitcask *bc, uint32_t id, struct rk_errmsg *err);
int bc_io_stage_commit(struct bitcask *bc, uint32_t first_new, uint64_t keys, uint8_t *manifest,
                       size_t len, struct rk_errmsg *err);
/* Without deferred writes: runs what was queued now (take, run, done). */
int bc_io_run_now(struct bitcask *bc, struct rk_errmsg *err);

/* ---- recovery and merge ------------------------------------------------------------------- */

int bc_recover(struct bitcask *bc, struct rk_errmsg *err);
/* A store not yet recovered, configured from c (bitcask.c); the caller owns *out (bc_close). */
int bc_new(const struct bc_config *c, struct bitcask **out, struct rk_errmsg *err);
/* A merge's view of its inputs (merge.c): bc is a store of its own (its own fs and keydir) whose
 * file table covers lo_id..active_id - 1; the n data files ids (ascending) are opened and loaded
 * as recovery loads them (hint when it checks out, else a scan without the torn-tail
 * allowance: an immutable file was sealed and synced whole). Writes nothing. cancelled (may be
 * NULL), asked before each file, stops it with RK_EBUSY. */
int bc_recover_inputs(struct bitcask *bc, const uint32_t *ids, size_t n,
                      bool (*cancelled)(void *ctx), void *ctx, struct rk_errmsg *err);
/* Writes a hint trailer (BC_HINT_TRAILER_BYTES) at p (magic: BC_HINT_MAGIC or _ROLL_MAGIC). */
void bc_hint_trailer_encode(uint8_t *p, uint32_t magic, uint32_t data_id, uint32_t body_crc,
                            uint64_t entries, uint64_t data_bytes, uint64_t max_index);
/* Writes the hint of data file id, closed (synced whole) at size bytes, through fs: hint.c.
 * Touches only fs and alloc (a worker may run it). RK_OK, or why there is no hint (the data
 * file is then scanned at open). */
int bc_hint_build(struct fs *fs, const struct rk_alloc *alloc, uint32_t id, uint64_t size,
                  struct rk_errmsg *err);
/* Applies one record found by recovery (scan or hint): later index wins, equal index means the
 * later record of the same batch. */
int bc_recover_apply(struct bitcask *bc, uint32_t file_id, uint64_t off, const struct bc_rec *r,
                     const uint8_t *key);

#endif
