/*
 * backup_restore.h — `raftkv-tool restore`: seeds a new member's data directory from a backup
 * (backup_file.h), as `etcdutl snapshot restore` does.
 *
 * What a restored directory holds (the same on every member restored from one file, so that the
 * members of the new cluster agree on it):
 *   DIR/kv   every record of the backup but the client sessions (see plan_one), written at
 *            the backup's index I, and the replica's
 *            snapshot point record (index I, term T: what a snapshot installed from a leader
 *            leaves, replica.c snap_install; written by replica_store_snapshot_point, so that
 *            the record's format stays replica.c's), and the configuration record of the NEW
 *            cluster (every node of --peers a voter, replica_store_put_conf), replacing the
 *            backed-up cluster's;
 *   DIR/log  empty, compacted to (I, T); hard state term T, no vote, commit I; NO promise file.
 *            A new directory carries the promise RAFT_PROMISE_NEW (seglog.c: it cannot tell a
 *            new node from a wiped disk, so it keeps out of elections until a leader caught it
 *            up, or every voter showed an empty log). A restored one holds exactly the
 *            committed state I of the old cluster and promised nothing beyond it, so its
 *            promise is cleared: the restored members elect a leader among themselves.
 *   DIR/restored   what it was restored from and for whom (text, for the operator).
 *
 * R1  the backup is read and checked whole before anything is written (a damaged file leaves
 *     nothing behind);
 * R2  the directory is built as DIR.restoring and renamed to DIR only once synced: DIR never
 *     exists half restored; an existing DIR is refused.
 * R3  the records are written in the order of a hash of the key other than the keydir's, not in
 *     the file's order. The file is in bc_scan's order (ascending keydir hash), and a store whose
 *     data file is in that order would make every later open (bitcask recovery, which inserts
 *     keys in file order into a keydir growing with them) quadratic: the keydir's home slot is
 *     the hash's top bits, so hash-ordered keys crowd the first slots of a table sized for the
 *     keys so far into one run (bc_reserve_keys). The first pass keeps 16 bytes per record (the
 *     order and the record's offset); the second reads each record again at its offset.
 */
#ifndef NODE_BACKUP_RESTORE_H
#define NODE_BACKUP_RESTORE_H

#include <stdint.h>

#include "backup_file.h"
#include "common/err.h"

struct backup_restore_config {
    const char *file;     /* the backup */
    const char *data_dir; /* the member's new data directory (must not exist) */
    uint64_t id;          /* the member's id, one of peers' */
    const char *peers;    /* ID=HOST:PORT,... as raftkv-node --peers takes it */
};

struct backup_restore_result {
    struct backup_header header;
    uint64_t keys;     /* user keys (every database) */
    uint64_t sessions; /* client sessions in the file, left out */
};

/* Checks the file (R1), then builds the directory (R2). RK_OK, or an error whose message says
 * what and where (file offset, or the directory's file). */
int backup_restore(const struct backup_restore_config *c, struct backup_restore_result *out,
                   struct rk_errmsg *err);
/* Checks a backup file without writing anything (backup_read over the file). */
int backup_verify_file(const char *file, struct backup_header *h, struct rk_errmsg *err);

#endif
