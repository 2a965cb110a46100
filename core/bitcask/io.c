/*
 * io.c — deferred writes (bitcask.h, DEFERRED WRITES): the owner queues the disk operations of
 * its writes and syncs into a job; a worker runs the job with an fs of its own; the owner learns
 * of it in order.
 *
 * Invariants:
 *   D1  Jobs are run and done in the order they were taken, each op of a job in queue order, so
 *       the files are written exactly as the synchronous path would have written them (the same
 *       bytes at the same offsets, the same commit records, syncs and rotations): recovery's
 *       rules (bitcask.c, the torn tail, B1) hold unchanged.
 *   D2  A keydir entry points at (file, offset) as soon as its batch is queued. Below
 *       files[id].written the owner reads the file (its handle was opened when the job that made
 *       the file was done); at or above it, the bytes are in a job taken or filling, found by
 *       bc_io_find. written only grows, at bc_io_done, after the worker's append returned.
 *   D3  durable_index moves only at bc_io_done of a job that ran a sync marked by bc_io_mark_sync
 *       (every op before it in D1 order is then on disk).
 *   D4  A job owns its buffers; the worker writes the CRC fields of a taken batch buffer while
 *       the owner may read its value bytes (different bytes: no race); the owner frees nothing a
 *       job holds before bc_io_done.
 *   D5  Small batches are packed (bc_io_append_batch): copied one after the other into a buffer
 *       of BC_IO_PACK_BYTES that the filling job's last APPEND owns while each starts where the
 *       one before it ended in the same file, so a job of many small writes costs one append
 *       (one write call) per buffer, not one per batch, and the store keeps its batch buffer
 *       (no allocation per write). A packed buffer is allocated whole and never grows, so what
 *       bc_io_find returned into it stays valid until bc_io_done (D4); the same bytes go to the
 *       same offsets in the same order (D1).
 */
#include "bitcask/bitcask_int.h"

#include <stdio.h>

#include "common/assert.h"

enum io_kind {
    IO_CREATE,
    IO_APPEND,
    IO_SYNC,
    IO_SYNC_DIR,
    IO_HINT,
    /* A staged replacement's outputs (stage.c), under their tmp names: never the live store's
     * files, never found by bc_io_find (not in apps). */
    IO_TMP_CREATE,
    IO_TMP_APPEND,
    IO_TMP_SYNC,
    IO_TMP_REMOVE,
    IO_STAGE_COMMIT, /* id: the first output; off: the records staged; p: the MERGE manifest */
};

struct io_op {
    uint8_t kind;
    bool seal;   /* APPEND of a batch buffer: the worker computes its records' CRCs */
    bool hint;   /* IO_TMP_*: the output's hint file, not its data file */
    uint32_t id; /* data file */
    uint64_t off; /* HINT: the data file's size */
    uint8_t *p;   /* APPEND: the bytes (owned by the job); CREATE: its commit record */
    size_t len;
    size_t cap; /* a packed APPEND (bc_io_append_batch): p's room; otherwise 0 */
};

struct bc_io_job {
    const struct rk_alloc *alloc;
    struct fs *fs;
    struct io_op *ops;
    size_t n_ops, cap_ops;
    /* The APPEND ops, by index into ops: ascending (file id, offset), for D1 appends in order
     * (bc_io_find's binary search). */
    size_t *apps;
    size_t n_apps, cap_apps;
    bool syncs;
    bool mark;           /* makes mark_index durable */
    uint64_t mark_index; /* the applied index at the sync */
    uint64_t fs_syncs;
    uint64_t hints_written; /* HINT ops that wrote their hint */
    uint64_t hint_failures; /* and those that did not (not a failure of the job) */
    struct rk_errmsg hint_err;
    struct bc_io_job *next;
    struct bitcask *shadow;  /* IO_STAGE_COMMIT: the store it loaded, for bc_stage_switch */
    struct bitcask *garbage; /* what a switch replaced: freed by bc_io_run (or bc_io_free) */
    int rc;
    struct rk_errmsg err;
};

void bc_set_deferred(struct bitcask *bc, struct fs *fs)
{
    RK_ASSERT(bc->batch_len == 0);
    bc->deferred = true;
    bc->io_fs = fs != NULL ? fs : bc->fs;
    bc->durable_index = bc->applied_index;
    /* Every file recovery left is on disk whole. */
    for (uint32_t id = bc->lo_id; id <= bc->active_id; id++)
        bc->files[id - bc->lo_id].written = bc->files[id - bc->lo_id].size;
}

static struct io_op *io_push(struct bitcask *bc, struct rk_errmsg *err)
{
    if (bc->io_cur == NULL) {
        struct bc_io_job *j = rk_malloc(bc->alloc, sizeof(*j));
        if (j == NULL) {
            rk_errf(err, RK_ENOMEM, "no memory for a write job");
            return NULL;
        }
        memset(j, 0, sizeof(*j));
        j->alloc = bc->alloc;
        j->fs = bc->io_fs != NULL ? bc->io_fs : bc->fs;
        j->garbage = bc->garbage; /* freed off the owner's thread */
        bc->garbage = NULL;
        bc->io_cur = j;
    }
    struct bc_io_job *j = bc->io_cur;
    if (!rk_grow(j->alloc, (void **)&j->ops, &j->cap_ops, j->n_ops + 1, sizeof(*j->ops)) ||
        !rk_grow(j->alloc, (void **)&j->apps, &j->cap_apps, j->n_apps + 1, sizeof(*j->apps))) {
        rk_errf(err, RK_ENOMEM, "no memory for a write job");
        return NULL;
    }
    struct io_op *op = &j->ops[j->n_ops++];
    memset(op, 0, sizeof(*op));
    return op;
}

/* Notes the op just pushed if it is an APPEND (room reserved by io_push). */
static void io_note(struct bitcask *bc)
{
    struct bc_io_job *j = bc->io_cur;
    const struct io_op *op = &j->ops[j->n_ops - 1];
    if (op->kind != IO_APPEND)
        return;
    RK_ASSERT(j->n_apps == 0 || j->ops[j->apps[j->n_apps - 1]].id < op->id ||
              (j->ops[j->apps[j->n_apps - 1]].id == op->id &&
               j->ops[j->apps[j->n_apps - 1]].off < op->off));
    j->apps[j->n_apps++] = j->n_ops - 1;
}

static int io_small(struct bitcask *bc, uint8_t kind, uint32_t id, uint64_t off, const uint8_t *p,
                    size_t len, struct rk_errmsg *err)
{
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = rk_malloc(bc->alloc, len);
        if (copy == NULL)
            return rk_errf(err, RK_ENOMEM, "no memory for a write job");
        memcpy(copy, p, len);
    }
    struct io_op *op = io_push(bc, err);
    if (op == NULL) {
        rk_free(bc->alloc, copy);
        return RK_ENOMEM;
    }
    *op = (struct io_op){.kind = kind, .id = id, .off = off, .p = copy, .len = len};
    io_note(bc);
    return RK_OK;
}

int bc_io_create(struct bitcask *bc, uint32_t id, const uint8_t *commit, struct rk_errmsg *err)
{
    return io_small(bc, IO_CREATE, id, 0, commit, BC_COMMIT_BYTES, err);
}

int bc_io_append(struct bitcask *bc, uint32_t id, uint64_t off, uint8_t *p, size_t len, bool take,
                 struct rk_errmsg *err)
{
    if (!take)
        return io_small(bc, IO_APPEND, id, off, p, len, err);
    struct io_op *op = io_push(bc, err);
    if (op == NULL)
        return RK_ENOMEM;
    *op = (struct io_op){.kind = IO_APPEND, .seal = true, .id = id, .off = off, .p = p, .len = len};
    io_note(bc);
    return RK_OK;
}

int bc_io_append_batch(struct bitcask *bc, uint32_t id, uint64_t off, const uint8_t *p, size_t len,
                       struct rk_errmsg *err)
{
    RK_ASSERT(len > 0 && len < BC_IO_PACK_BYTES);
    struct bc_io_job *j = bc->io_cur;
    struct io_op *last = j != NULL && j->n_ops > 0 ? &j->ops[j->n_ops - 1] : NULL;
    if (last != NULL && last->kind == IO_APPEND && last->seal && last->id == id &&
        last->off + last->len == off && last->len + len <= last->cap) {
        /* D5: the op's buffer never moves (bc_io_find's pointers into it stay good). */
        memcpy(last->p + last->len, p, len);
        last->len += len;
        return RK_OK;
    }
    uint8_t *buf = rk_malloc(bc->alloc, BC_IO_PACK_BYTES);
    if (buf == NULL)
        return rk_errf(err, RK_ENOMEM, "no memory for a write job");
    struct io_op *op = io_push(bc, err);
    if (op == NULL) {
        rk_free(bc->alloc, buf);
        return RK_ENOMEM;
    }
    memcpy(buf, p, len);
    *op = (struct io_op){.kind = IO_APPEND,
                         .seal = true,
                         .id = id,
                         .off = off,
                         .p = buf,
                         .len = len,
                         .cap = BC_IO_PACK_BYTES};
    io_note(bc);
    return RK_OK;
}

int bc_io_sync(struct bitcask *bc, uint32_t id, struct rk_errmsg *err)
{
    int rc = io_small(bc, IO_SYNC, id, 0, NULL, 0, err);
    if (rc == RK_OK)
        bc->io_cur->syncs = true;
    return rc;
}

int bc_io_sync_dir(struct bitcask *bc, struct rk_errmsg *err)
{
    int rc = io_small(bc, IO_SYNC_DIR, 0, 0, NULL, 0, err);
    if (rc == RK_OK)
        bc->io_cur->syncs = true;
    return rc;
}

int bc_io_hint(struct bitcask *bc, uint32_t id, uint64_t size, struct rk_errmsg *err)
{
    int rc = io_small(bc, IO_HINT, id, size, NULL, 0, err);
    if (rc == RK_OK)
        bc->io_cur->syncs = true; /* the hint file's */
    return rc;
}

int bc_io_tmp_create(struct bitcask *bc, uint32_t id, bool hint, const uint8_t *commit,
                     struct rk_errmsg *err)
{
    int rc = io_small(bc, IO_TMP_CREATE, id, 0, commit, commit != NULL ? BC_COMMIT_BYTES : 0, err);
    if (rc == RK_OK)
        bc->io_cur->ops[bc->io_cur->n_ops - 1].hint = hint;
    return rc;
}

int bc_io_tmp_append(struct bitcask *bc, uint32_t id, bool hint, uint8_t *p, size_t len,
                     struct rk_errmsg *err)
{
    struct io_op *op = io_push(bc, err);
    if (op == NULL)
        return RK_ENOMEM;
    *op = (struct io_op){.kind = IO_TMP_APPEND, .hint = hint, .id = id, .p = p, .len = len};
    bc->stage_queued += len;
    return RK_OK;
}

int bc_io_tmp_sync(struct bitcask *bc, uint32_t id, bool hint, struct rk_errmsg *err)
{
    int rc = io_small(bc, IO_TMP_SYNC, id, 0, NULL, 0, err);
    if (rc == RK_OK) {
        bc->io_cur->ops[bc->io_cur->n_ops - 1].hint = hint;
        bc->io_cur->syncs = true;
    }
    return rc;
}

int bc_io_tmp_remove(struct bitcask *bc, uint32_t id, struct rk_errmsg *err)
{
    return io_small(bc, IO_TMP_REMOVE, id, 0, NULL, 0, err);
}

int bc_io_stage_commit(struct bitcask *bc, uint32_t first_new, uint64_t keys, uint8_t *manifest,
                       size_t len, struct rk_errmsg *err)
{
    struct io_op *op = io_push(bc, err);
    if (op == NULL)
        return RK_ENOMEM;
    *op = (struct io_op){
        .kind = IO_STAGE_COMMIT, .id = first_new, .off = keys, .p = manifest, .len = len};
    bc->io_cur->syncs = true;
    return RK_OK;
}

int bc_io_mark_sync(struct bitcask *bc, uint64_t index, struct rk_errmsg *err)
{
    if (bc->io_cur == NULL) {
        if (bc->io_head == NULL) { /* nothing out: the disk has it all already */
            bc->durable_index = index;
            return RK_OK;
        }
        /* An empty job, behind the ones out: durable when they are. */
        if (io_push(bc, err) == NULL)
            return RK_ENOMEM;
        bc->io_cur->n_ops = 0;
    }
    bc->io_cur->mark = true;
    bc->io_cur->mark_index = index;
    return RK_OK;
}

struct bc_io_job *bc_io_take(struct bitcask *bc)
{
    struct bc_io_job *j = bc->io_cur;
    if (j == NULL)
        return NULL;
    bc->io_cur = NULL;
    j->next = NULL;
    if (bc->io_tail != NULL)
        bc->io_tail->next = j;
    else
        bc->io_head = j;
    bc->io_tail = j;
    return j;
}

bool bc_io_job_syncs(const struct bc_io_job *job)
{
    return job->syncs;
}

bool bc_io_job_switches(const struct bc_io_job *job)
{
    return job->n_ops > 0 && job->ops[job->n_ops - 1].kind == IO_STAGE_COMMIT;
}

size_t bc_io_out(const struct bitcask *bc)
{
    size_t n = bc->io_cur != NULL;
    for (const struct bc_io_job *j = bc->io_head; j != NULL; j = j->next)
        n++;
    return n;
}

/* D4: the CRCs of a batch buffer's records (bitcask.c seals them there when not deferred). */
static void io_seal(uint8_t *p, size_t len)
{
    for (size_t off = 0; off < len;) {
        struct bc_rec r;
        bc_rec_decode(p + off, &r);
        size_t n = (size_t)bc_rec_bytes(r.key_len, r.val_len);
        RK_ASSERT(off + n <= len);
        bc_rec_seal(p + off, n);
        off += n;
    }
}

/* An op of a staged replacement (stage.c): the outputs under their tmp names, and the switch. */
static int io_run_stage_op(struct bc_io_job *job, const struct io_op *op)
{
    struct fs *fs = job->fs;
    char name[BC_NAME_BYTES];
    bc_name(name, op->id, op->hint ? "hint.tmp" : "data.tmp");
    if (op->kind == IO_STAGE_COMMIT) {
        int rc = bc_stage_run_commit(fs, job->alloc, op->id, op->off, op->p, op->len, &job->shadow,
                                     &job->err);
        return rc == RK_OK ? RK_OK : rk_errwrap(&job->err, rc, "staged replacement");
    }
    if (op->kind == IO_TMP_REMOVE) {
        int rc = fs->ops->remove(fs, name, &job->err);
        if (rc == RK_OK || rc == RK_ENOENT) {
            bc_name(name, op->id, "hint.tmp");
            rc = fs->ops->remove(fs, name, &job->err);
        }
        return rc == RK_OK || rc == RK_ENOENT ? RK_OK
                                              : rk_errwrap(&job->err, rc, "%s: remove", name);
    }
    struct fs_file *f = NULL;
    uint32_t flags = op->kind == IO_TMP_CREATE ? FS_CREATE | FS_EXCL : 0;
    int rc = fs->ops->open(fs, name, flags, &f, &job->err);
    if (rc != RK_OK)
        return rk_errwrap(&job->err, rc, "%s: open", name);
    if (op->len > 0 && (op->kind == IO_TMP_CREATE || op->kind == IO_TMP_APPEND))
        rc = fs->ops->append(fs, f, op->p, op->len, &job->err);
    else if (op->kind == IO_TMP_SYNC)
        rc = fs->ops->sync(fs, f, &job->err);
    job->fs_syncs += op->kind == IO_TMP_SYNC;
    fs->ops->close(fs, f);
    return rc == RK_OK ? RK_OK : rk_errwrap(&job->err, rc, "%s", name);
}

int bc_io_run(struct bc_io_job *job)
{
    struct fs *fs = job->fs;
    struct fs_file *f = NULL; /* the file of the last op, kept open across ops */
    uint32_t f_id = 0;
    int rc = RK_OK;
    char name[BC_NAME_BYTES];
    uint32_t name_id = 0; /* the file id name holds: formatted once per file, not per op */
    for (size_t i = 0; rc == RK_OK && i < job->n_ops; i++) {
        struct io_op *op = &job->ops[i];
        if (op->kind == IO_SYNC_DIR) {
            rc = fs->ops->sync_dir(fs, &job->err);
            if (rc != RK_OK)
                rk_errwrap(&job->err, rc, "sync_dir");
            continue;
        }
        if (op->kind == IO_HINT) { /* after the ops that wrote and synced the file (D1) */
            struct rk_errmsg herr;
            if (bc_hint_build(fs, job->alloc, op->id, op->off, &herr) == RK_OK) {
                job->hints_written++;
            } else {
                job->hint_failures++;
                job->hint_err = herr;
            }
            continue;
        }
        if (op->kind >= IO_TMP_CREATE) {
            rc = io_run_stage_op(job, op);
            continue;
        }
        if (op->id != name_id) {
            bc_name(name, op->id, "data"); /* for the open and the error messages below */
            name_id = op->id;
        }
        if (op->id != f_id || op->kind == IO_CREATE) {
            if (f != NULL)
                fs->ops->close(fs, f);
            f = NULL;
            f_id = 0;
            uint32_t flags = op->kind == IO_CREATE ? FS_CREATE | FS_EXCL : 0;
            rc = fs->ops->open(fs, name, flags, &f, &job->err);
            if (rc != RK_OK) {
                rk_errwrap(&job->err, rc, "%s: %s", name,
                           op->kind == IO_CREATE ? "create" : "open");
                break;
            }
            f_id = op->id;
        }
        switch (op->kind) {
        case IO_CREATE:
            rc = fs->ops->append(fs, f, op->p, op->len, &job->err);
            if (rc != RK_OK)
                rk_errwrap(&job->err, rc, "%s: append of its commit record", name);
            break;
        case IO_APPEND:
            if (op->seal)
                io_seal(op->p, op->len);
            rc = fs->ops->append(fs, f, op->p, op->len, &job->err);
            if (rc != RK_OK)
                rk_errwrap(&job->err, rc, "%s: append", name);
            break;
        case IO_SYNC:
            rc = fs->ops->sync(fs, f, &job->err);
            job->fs_syncs++;
            if (rc != RK_OK)
                rk_errwrap(&job->err, rc, "%s: sync", name);
            break;
        default:
            RK_ASSERT(!"bc_io_run: unknown op");
        }
    }
    if (f != NULL)
        fs->ops->close(fs, f);
    bc_close(job->garbage); /* a switched-out keydir: O(its keys), here rather than on the loop */
    job->garbage = NULL;
    job->rc = rc;
    return rc;
}

void bc_io_free(struct bc_io_job *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->n_ops; i++)
        rk_free(job->alloc, job->ops[i].p);
    rk_free(job->alloc, job->ops);
    rk_free(job->alloc, job->apps);
    bc_close(job->shadow);
    bc_close(job->garbage);
    rk_free(job->alloc, job);
}

int bc_io_done(struct bitcask *bc, struct bc_io_job *job, struct rk_errmsg *err)
{
    RK_ASSERT(job == bc->io_head); /* D1 */
    bc->io_head = job->next;
    if (bc->io_head == NULL)
        bc->io_tail = NULL;
    int rc = job->rc;
    if (rc != RK_OK) {
        *err = job->err;
        bc_io_free(job);
        return bc_poison(bc, rc, err);
    }
    bc->fs_syncs += job->fs_syncs;
    bc->hints_written += job->hints_written;
    if (job->hint_failures > 0) {
        bc->hint_failures += job->hint_failures;
        snprintf(bc->hint_failure, sizeof(bc->hint_failure), "%.150s", job->hint_err.text);
    }
    for (size_t i = 0; rc == RK_OK && i < job->n_ops; i++) {
        const struct io_op *op = &job->ops[i];
        if (op->kind == IO_STAGE_COMMIT) { /* the last op of its job (stage.c) */
            struct bitcask *shadow = job->shadow;
            job->shadow = NULL;
            rc = bc_stage_switch(bc, shadow, err);
            break;
        }
        if (op->kind == IO_TMP_APPEND) {
            RK_ASSERT(bc->stage_queued >= op->len);
            bc->stage_queued -= op->len;
            continue;
        }
        struct bc_file *f =
            op->kind < IO_TMP_CREATE && op->kind != IO_SYNC_DIR ? bc_file_at(bc, op->id) : NULL;
        if (f == NULL)
            continue; /* a file merge has removed since (it was written whole first) */
        if (op->kind == IO_CREATE && f->f == NULL) {
            char name[BC_NAME_BYTES];
            bc_name(name, op->id, "data");
            rc = bc->fs->ops->open(bc->fs, name, 0, &f->f, err);
            if (rc != RK_OK) {
                rk_errwrap(err, rc, "%s: open", name);
                break;
            }
            f->written = op->len;
        } else if (op->kind == IO_APPEND && op->off + op->len > f->written) {
            f->written = op->off + op->len; /* D2 */
        }
    }
    if (rc == RK_OK && job->mark && job->mark_index > bc->durable_index)
        bc->durable_index = job->mark_index; /* D3 (a switch may have moved it past) */
    bc_io_free(job);
    return rc == RK_OK ? RK_OK : bc_poison(bc, rc, err);
}

/* The bytes [off, off + len) of file id if an APPEND of j holds them: a binary search of its
 * appends, ascending (id, offset). */
static const uint8_t *job_find(const struct bc_io_job *j, uint32_t id, uint64_t off, size_t len)
{
    size_t lo = 0, hi = j->n_apps; /* the first append after (id, off) is in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct io_op *op = &j->ops[j->apps[mid]];
        if (op->id < id || (op->id == id && op->off <= off))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct io_op *op = &j->ops[j->apps[lo - 1]];
    if (op->id == id && off + len <= op->off + op->len)
        return op->p + (off - op->off);
    return NULL;
}

const uint8_t *bc_io_find(const struct bitcask *bc, const struct bc_kent *e)
{
    if (!bc->deferred)
        return NULL;
    const struct bc_file *f = &bc->files[e->file_id - bc->lo_id];
    if (e->offset < f->written)
        return NULL;
    size_t len = (size_t)bc_rec_bytes(e->key_len, e->val_len);
    for (const struct bc_io_job *j = bc->io_head; j != NULL; j = j->next) {
        const uint8_t *p = job_find(j, e->file_id, e->offset, len);
        if (p != NULL)
            return p;
    }
    const uint8_t *p = bc->io_cur != NULL ? job_find(bc->io_cur, e->file_id, e->offset, len) : NULL;
    RK_ASSERT(p != NULL); /* D2 */
    return p;
}

uint32_t bc_io_low_id(const struct bitcask *bc)
{
    uint32_t low = UINT32_MAX;
    for (const struct bc_io_job *j = bc->io_head;; j = j->next) {
        if (j == NULL)
            j = bc->io_cur;
        if (j == NULL)
            break;
        for (size_t i = 0; i < j->n_ops; i++)
            if (j->ops[i].kind != IO_SYNC_DIR && j->ops[i].kind < IO_TMP_CREATE &&
                j->ops[i].id < low)
                low = j->ops[i].id;
        if (j == bc->io_cur)
            break;
    }
    return low;
}

int bc_io_run_now(struct bitcask *bc, struct rk_errmsg *err)
{
    RK_ASSERT(!bc->deferred);
    struct bc_io_job *j = bc_io_take(bc);
    if (j == NULL)
        return RK_OK;
    bc_io_run(j);
    return bc_io_done(bc, j, err);
}

void bc_io_close(struct bitcask *bc)
{
    /* Jobs taken belong to the driver (bc_io_free); the one filling is the store's. */
    bc_io_free(bc->io_cur);
    bc->io_cur = NULL;
    bc->io_head = bc->io_tail = NULL;
}
