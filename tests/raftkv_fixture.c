/*
 * raftkv_fixture.c — raftkv-fixture DIR: writes a real data directory (node/README.md) for the
 * end-to-end test of raftkv-tool (tests/raftkv_tool.sh), through fs_posix and the real modules:
 *
 *   DIR/log  the Raft log (log_seglog_open, appends and syncs in batches of 10, 4 KiB segments):
 *            entry 1 a no-op of term 1, entries 2..FIXTURE_ENTRIES kv commands of term 2; hard
 *            state term 2, vote 1, commit FIXTURE_ENTRIES
 *   DIR/kv   the store those entries make (kv_apply over bc_open's store, 4 KiB data files):
 *            entries up to FIXTURE_MERGE_AT, a merge (bc_merge: merged files with hints), the
 *            rest, synced
 *
 * Entry i (i >= 2): client i % 4 (0: no session) with its own seq 1, 2, ...; every 9th is a DEL
 * of "key-<i % 97>", the others PUT "key-<i % 97>" = "value-<i>" but entry 50 (PUT_IF NX
 * "key-50" = "fifty"), 51 (INCRBY "counter" by -3) and 52 (MSET "m1" = "x", "m2" = "y"); entry
 * 100's value is 300 bytes with non-printable ones (for escaping and cutting). The last entry is the known one the test
 * looks for: PUT "known-key" = "known-value" by client 9, seq 1.
 *
 * raftkv-fixture --snapshot DIR: the same entries and store, as a node that installed a snapshot
 * of index FIXTURE_SNAP_AT from its leader looks (core/replica/replica.c, snap_install): the
 * store holds the replica's metadata key 'm' "snap" = [index u64][term u64] written in the
 * snapshot's batch, and the log is compacted to (FIXTURE_SNAP_AT, 2) with the entries after it.
 * Prints nothing on success; exit 1 with a message on any failure.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bitcask/bitcask.h"
#include "fs_posix.h"
#include "kv/kv.h"
#include "log/log.h"

#define FIXTURE_ENTRIES  302u
#define FIXTURE_MERGE_AT 200u
#define FIXTURE_BATCH    10u
#define FIXTURE_SNAP_AT  250u

static bool fixture_snapshot; /* --snapshot */

static void fixture_die(const char *what, int rc, const struct rk_errmsg *err)
{
    fprintf(stderr, "raftkv-fixture: %s: %s: %s\n", what, rk_strerror(rc), err->text);
    exit(1);
}

/* The command of entry index (>= 2) into buf; its length. */
static size_t fixture_command(uint64_t index, uint64_t *seqs, uint8_t *buf, size_t cap)
{
    char key[32];
    static uint8_t val[512];
    struct kv_cmd c = {.op = KV_OP_PUT};
    if (index == 53) {
        /* A generic command: SET with EX 10 in db 2, stamped at 1000 ms. */
        struct kv_arg args[2] = {{(const uint8_t *)"db2-key", 7}, {(const uint8_t *)"v", 1}};
        struct kv_op2 op = {
            .code = KV_C_SET, .db = 2, .flags = KV_F_EXP, .num = 10, .argc = 2, .argv = args};
        struct kv_cmd2 c2 = {.time_ms = 1000, .n_ops = 1, .ops = &op};
        size_t len2 = 0;
        if (kv_cmd2_encode(&c2, buf, cap, &len2) != RK_OK) {
            fprintf(stderr, "raftkv-fixture: encode 53\n");
            exit(1);
        }
        return len2;
    }
    if (index == FIXTURE_ENTRIES) {
        c.client_id = 9;
        c.seq = 1;
        c.key = (const uint8_t *)"known-key";
        c.key_len = 9;
        c.val = (const uint8_t *)"known-value";
        c.val_len = 11;
    } else {
        c.client_id = index % 4;
        c.seq = c.client_id == 0 ? 0 : ++seqs[c.client_id];
        snprintf(key, sizeof(key), "key-%02u", (unsigned)(index % 97));
        c.key = (const uint8_t *)key;
        c.key_len = (uint32_t)strlen(key);
        if (index % 9 == 0) {
            c.op = KV_OP_DEL;
        } else if (index == 50) {
            c.op = KV_OP_PUT_IF;
            c.cond = KV_COND_NX;
            c.val = (const uint8_t *)"fifty";
            c.val_len = 5;
        } else if (index == 51) {
            c.op = KV_OP_INCRBY;
            c.key = (const uint8_t *)"counter";
            c.key_len = 7;
            c.delta = -3;
        } else if (index == 52) {
            static const struct kv_pair pairs[] = {
                {.key = (const uint8_t *)"m1", .key_len = 2, .val = (const uint8_t *)"x", .val_len = 1},
                {.key = (const uint8_t *)"m2", .key_len = 2, .val = (const uint8_t *)"y", .val_len = 1},
            };
            size_t blob_len = 0;
            if (kv_pairs_encode(pairs, 2, val, sizeof(val), &blob_len) != RK_OK) {
                fprintf(stderr, "raftkv-fixture: pairs of entry 52\n");
                exit(1);
            }
            c.op = KV_OP_MSET;
            c.key = NULL;
            c.key_len = 0;
            c.val = val;
            c.val_len = (uint32_t)blob_len;
        } else if (index == 100) {
            for (uint32_t i = 0; i < 300; i++)
                val[i] = (uint8_t)(i % 7 == 0 ? i % 32 : 'a' + i % 26);
            c.val = val;
            c.val_len = 300;
        } else {
            c.val_len = (uint32_t)snprintf((char *)val, sizeof(val), "value-%" PRIu64, index);
            c.val = val;
        }
    }
    size_t len = 0;
    int rc = kv_cmd_encode(&c, buf, cap, &len);
    if (rc != RK_OK) {
        fprintf(stderr, "raftkv-fixture: encode %" PRIu64 ": %s\n", index, rk_strerror(rc));
        exit(1);
    }
    return len;
}

static struct fs *fixture_dir(const char *dir, const char *sub)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    struct fs *fs;
    struct rk_errmsg err = {{0}};
    int rc = fs_posix_open(path, true, &fs, &err);
    if (rc != RK_OK)
        fixture_die(path, rc, &err);
    return fs;
}

static void write_log(struct fs *fs, uint8_t (*data)[600], size_t *lens)
{
    struct log_seglog_config c = {.fs = fs, .segment_bytes = 4096};
    struct log_store *log;
    struct rk_errmsg err = {{0}};
    int rc = log_seglog_open(&c, &log, &err);
    if (rc != RK_OK)
        fixture_die("log open", rc, &err);
    struct raft_hard_state hs = {.term = 2, .vote = 1, .commit = FIXTURE_ENTRIES};
    if ((rc = log->ops->set_hard_state(log, &hs, &err)) != RK_OK)
        fixture_die("set_hard_state", rc, &err);
    for (uint64_t i = 1; i <= FIXTURE_ENTRIES;) {
        struct raft_entry batch[FIXTURE_BATCH];
        size_t n = 0;
        for (; n < FIXTURE_BATCH && i <= FIXTURE_ENTRIES; n++, i++)
            batch[n] = (struct raft_entry){.term = i == 1 ? 1 : 2,
                                           .index = i,
                                           .type = i == 1 ? RAFT_ENTRY_NOOP : RAFT_ENTRY_NORMAL,
                                           .len = (uint32_t)lens[i],
                                           .data = lens[i] > 0 ? data[i] : NULL};
        if ((rc = log->ops->append(log, batch, n, &err)) != RK_OK)
            fixture_die("append", rc, &err);
        if ((rc = log->ops->sync(log, &err)) != RK_OK)
            fixture_die("sync", rc, &err);
    }
    if (fixture_snapshot) {
        if ((rc = log->ops->compact(log, FIXTURE_SNAP_AT, 2, &err)) != RK_OK)
            fixture_die("compact", rc, &err);
        if ((rc = log->ops->sync(log, &err)) != RK_OK)
            fixture_die("sync", rc, &err);
    }
    log->ops->destroy(log);
}

static void apply_range(struct kv *kv, uint64_t from, uint64_t to, uint8_t (*data)[600],
                        size_t *lens)
{
    for (uint64_t i = from; i <= to; i++) {
        if (i == 1) {
            kv_apply_noop(kv, i);
            continue;
        }
        struct kv_result res;
        int rc = kv_apply(kv, i, data[i], (uint32_t)lens[i], &res);
        if (rc != RK_OK || res.status != KV_OK) {
            fprintf(stderr, "raftkv-fixture: apply %" PRIu64 ": %s, %s\n", i, rk_strerror(rc),
                    kv_status_name(res.status));
            exit(1);
        }
    }
}

static void write_store(struct fs *fs, uint8_t (*data)[600], size_t *lens)
{
    struct bc_config c = {.fs = fs, .max_file_bytes = 4096};
    struct bitcask *bc;
    struct rk_errmsg err = {{0}};
    int rc = bc_open(&c, &bc, &err);
    if (rc != RK_OK)
        fixture_die("bc_open", rc, &err);
    struct kv_config kc = {.alloc = rk_alloc_libc(), .store = bc_kv_store(bc)};
    struct kv *kv;
    if ((rc = kv_create(&kc, &kv, &err)) != RK_OK)
        fixture_die("kv_create", rc, &err);
    apply_range(kv, 1, FIXTURE_MERGE_AT, data, lens);
    if ((rc = bc_merge(bc, &err)) != RK_OK)
        fixture_die("bc_merge", rc, &err);
    if (fixture_snapshot) {
        apply_range(kv, FIXTURE_MERGE_AT + 1, FIXTURE_SNAP_AT, data, lens);
        /* snap_install's metadata key, in a batch of the snapshot's index. */
        static const uint8_t key[] = {KV_KEY_META, 's', 'n', 'a', 'p'};
        uint8_t meta[16];
        for (int b = 0; b < 8; b++) {
            meta[b] = (uint8_t)((uint64_t)FIXTURE_SNAP_AT >> (8 * b));
            meta[8 + b] = (uint8_t)(2u >> (8 * b));
        }
        if ((rc = bc_put(bc, FIXTURE_SNAP_AT, key, sizeof(key), meta, sizeof(meta), &err)) !=
                RK_OK ||
            (rc = bc_end_batch(bc, &err)) != RK_OK)
            fixture_die("the snapshot's metadata", rc, &err);
        apply_range(kv, FIXTURE_SNAP_AT + 1, FIXTURE_ENTRIES, data, lens);
    } else {
        apply_range(kv, FIXTURE_MERGE_AT + 1, FIXTURE_ENTRIES, data, lens);
    }
    if ((rc = bc_sync(bc, &err)) != RK_OK)
        fixture_die("bc_sync", rc, &err);
    kv_destroy(kv);
    bc_close(bc);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--snapshot") == 0) {
        fixture_snapshot = true;
        argv++;
        argc--;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: raftkv-fixture [--snapshot] DIR (created; DIR/log and DIR/kv "
                        "inside)\n");
        return 2;
    }
    if (mkdir(argv[1], 0755) != 0) {
        perror(argv[1]);
        return 1;
    }
    static uint8_t data[FIXTURE_ENTRIES + 1][600];
    static size_t lens[FIXTURE_ENTRIES + 1];
    uint64_t seqs[4] = {0};
    for (uint64_t i = 2; i <= FIXTURE_ENTRIES; i++)
        lens[i] = fixture_command(i, seqs, data[i], sizeof(data[i]));
    struct fs *log = fixture_dir(argv[1], "log");
    struct fs *kv = fixture_dir(argv[1], "kv");
    write_log(log, data, lens);
    write_store(kv, data, lens);
    fs_posix_close(log);
    fs_posix_close(kv);
    return 0;
}
