/*
 * fs.h — the file-system interface core/ does all its I/O through (SQLite's VFS pattern).
 *
 * One struct fs is one flat directory (a data directory); names are 1..FS_NAME_MAX bytes of
 * [A-Za-z0-9._-], never "." or "..". Two implementations: POSIX for the node (node/fs_posix.c)
 * and the simulator's unforgiving in-memory disk (sim/simdisk.c).
 *
 * Durability contract (what a crash may keep), which every caller must respect because the
 * simulated disk enforces it:
 *   D1  bytes written (append, pwrite) are durable only once sync on that file returned RK_OK;
 *       a crash keeps the durable bytes and, possibly, a prefix of what followed (a torn tail,
 *       whose last sector may hold garbage).
 *   D2  a create, rename or remove is durable only once sync_dir returned RK_OK; before that a
 *       crash may undo it (a created file vanishes, a renamed one has its old name back, a
 *       removed one is back with its durable bytes).
 *   D3  rename replaces `to` atomically: after a crash either the old or the new file is there.
 *   D4  an overwrite (pwrite below the synced length) and a truncate are durable only after
 *       sync too; before that a crash may undo them. A failed append may have moved the end
 *       of the file: truncate back, or treat the file as lost.
 * Besides RK_EIO and RK_ENOSPC, calls return RK_EINVAL (a bad name or flags; FS_EXCL needs
 * FS_CREATE), RK_ENOENT and RK_EEXIST as documented below.
 * Any call may fail with RK_EIO or RK_ENOSPC (the simulated disk injects both); a failed write
 * may have written part of its bytes; a failed sync leaves the file's durability unknown, and
 * the caller must not assume anything since the last successful sync is durable — nor trust a
 * later sync of the same file (Linux may drop the dirty pages and report the next fsync as a
 * success): a failed sync is fatal for what the file holds. A create, rename or remove that
 * returned an error may still have happened.
 *
 * Reads are untrusted: the simulated disk may flip a bit or fail a sector. Everything read is
 * checked (CRC) by the caller.
 */
#ifndef FS_H
#define FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define FS_NAME_MAX 64

enum fs_open_flags {
    FS_CREATE = 1u << 0, /* create if missing */
    FS_EXCL = 1u << 1,   /* with FS_CREATE: fail with RK_EEXIST if it exists */
};

struct fs;
struct fs_file; /* owned by the fs; valid until close */

struct fs_ops {
    /* Opens name for reading and writing. RK_ENOENT if missing and not FS_CREATE. */
    int (*open)(struct fs *fs, const char *name, uint32_t flags, struct fs_file **out,
                struct rk_errmsg *err);
    void (*close)(struct fs *fs, struct fs_file *f);
    /* Reads up to len bytes at off into buf; *got < len only at the end of the file. */
    int (*pread)(struct fs *fs, struct fs_file *f, uint64_t off, void *buf, size_t len,
                 size_t *got, struct rk_errmsg *err);
    /* Writes len bytes at the end of the file. */
    int (*append)(struct fs *fs, struct fs_file *f, const void *buf, size_t len,
                  struct rk_errmsg *err);
    /* Writes len bytes at off (extending the file if needed). */
    int (*pwrite)(struct fs *fs, struct fs_file *f, uint64_t off, const void *buf, size_t len,
                  struct rk_errmsg *err);
    /* Makes the file's bytes durable (D1). */
    int (*sync)(struct fs *fs, struct fs_file *f, struct rk_errmsg *err);
    int (*size)(struct fs *fs, struct fs_file *f, uint64_t *size, struct rk_errmsg *err);
    int (*truncate)(struct fs *fs, struct fs_file *f, uint64_t size, struct rk_errmsg *err);
    /* Renames from to to, replacing to (D3). RK_ENOENT if from is missing. */
    int (*rename)(struct fs *fs, const char *from, const char *to, struct rk_errmsg *err);
    /* Removes name. RK_ENOENT if missing. Open handles stay usable until closed. */
    int (*remove)(struct fs *fs, const char *name, struct rk_errmsg *err);
    /* Calls fn for every file name, in strcmp order; stops early if fn returns false. */
    int (*list)(struct fs *fs, bool (*fn)(void *ctx, const char *name), void *ctx,
                struct rk_errmsg *err);
    /* Makes creates, renames and removes durable (D2). */
    int (*sync_dir)(struct fs *fs, struct rk_errmsg *err);
};

struct fs {
    const struct fs_ops *ops;
};

/* True if name is a valid file name for this interface. */
bool fs_name_valid(const char *name);

#endif
