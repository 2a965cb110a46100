/*
 * fs_posix.h — the node's struct fs (core/fs/fs.h) over one POSIX directory.
 *
 * One struct fs is one open directory; every file operation is relative to its descriptor
 * (openat, renameat, unlinkat, fstatat), so renaming or replacing the path afterwards does not
 * send I/O elsewhere. errno is mapped here, at each call site: ENOENT -> RK_ENOENT, EEXIST ->
 * RK_EEXIST, ENOSPC and EDQUOT -> RK_ENOSPC, anything else -> RK_EIO, with a message naming the
 * call, the file and strerror ("fdatasync 0000000001.data: Input/output error"). A name that
 * fails fs_name_valid is RK_EINVAL.
 *
 * Durability, beyond what fs.h asks:
 *   P1  create (an open that made the file), rename and remove fsync the directory before they
 *       return, so the node is safe even if a caller forgets sync_dir; sync_dir still fsyncs.
 *   P2  a failed sync is sticky: Linux may drop the dirty pages and clear the error, so a retry
 *       could report success for bytes that are gone ("fsyncgate", PostgreSQL 2018). After one
 *       failure, every later sync of that handle fails; after a failed directory fsync, every
 *       later sync_dir, create, rename and remove of that fs fails.
 *   P3  append writes at the file's current size, kept per open file (inode) and shared by all
 *       its handles in this fs — not per handle, so two handles of one file cannot overwrite
 *       each other's appends, and not read with fstat at every append (one syscall per append
 *       instead of two). The size is read again after a failed write or truncate. Nothing
 *       outside this fs may write to its files while they are open. (O_APPEND is not used: on
 *       Linux it makes pwrite ignore its offset.)
 *
 * Not thread-safe: one fs and its handles belong to one thread (the node's event loop).
 */
#ifndef NODE_FS_POSIX_H
#define NODE_FS_POSIX_H

#include <stdbool.h>

#include "common/err.h"
#include "fs/fs.h"

/*
 * Opens the directory dir as a struct fs. With create_dir, creates dir (its last component
 * only, mode 0755) if missing and fsyncs its parent so that the creation is durable. Returns
 * RK_OK and *out (owned by the caller: release it with fs_posix_close), or RK_ENOENT (missing
 * and not create_dir, or a missing parent), RK_ENOMEM, RK_EIO, with a message naming dir.
 */
int fs_posix_open(const char *dir, bool create_dir, struct fs **out, struct rk_errmsg *err);

/* Every later file sync of fs records its duration in h (node/metrics.h: any thread may
 * observe), NULL: none. h is borrowed until fs_posix_close. */
struct metrics_hist;
void fs_posix_sync_histogram(struct fs *fs, struct metrics_hist *h);

/* Closes the directory and frees fs. Every file handle must have been closed. NULL: no-op. */
void fs_posix_close(struct fs *fs);

#endif
