/*
 * backup_restore.c — seeding a new member's data directory from a backup (backup_restore.h).
 */
#define _GNU_SOURCE
#include "backup_restore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "bitcask/bitcask.h"
#include "common/alloc.h"
#include "fs_posix.h"
#include "kv/kv.h"
#include "log/log.h"
#include "raft/raft.h"
#include "replica/replica.h"

/* The write order's hash (any seed but the keydir's 0 gives an order unrelated to it). */
#define RESTORE_ORDER_SEED 0x7265737472u

/* Bytes read at a record's offset at once: its head and, most often, all of it. */
#define RESTORE_READ_BYTES ((size_t)4096)

/* Puts per store batch: a batch is held in memory until end_batch (bitcask.h). */
#define RESTORE_BATCH_BYTES ((uint64_t)16 << 20)

struct file_reader {
    FILE *f;
};

static int file_read(void *ctx, void *buf, size_t len, size_t *got)
{
    struct file_reader *r = ctx;
    *got = fread(buf, 1, len, r->f);
    return *got < len && ferror(r->f) ? RK_EIO : RK_OK;
}

int backup_verify_file(const char *file, struct backup_header *h, struct rk_errmsg *err)
{
    struct file_reader r = {.f = fopen(file, "rb")};
    if (r.f == NULL)
        return rk_errf(err, errno == ENOENT ? RK_ENOENT : RK_EIO, "%s: %s", file, strerror(errno));
    int rc = backup_read(file_read, &r, h, NULL, NULL, err);
    fclose(r.f);
    return rc != RK_OK ? rk_errwrap(err, rc, "%s", file) : RK_OK;
}

/* --peers as raftkv-node takes it: ID=HOST:PORT,...; id must be one of them. *conf (when not
 * NULL): every node of it a voter, the new cluster's configuration. */
static int check_peers(const char *peers, uint64_t id, struct raft_conf *conf,
                       struct rk_errmsg *err)
{
    uint64_t ids[RAFT_MAX_VOTERS];
    uint32_t n = 0;
    bool self = false;
    const char *p = peers;
    if (conf != NULL)
        memset(conf, 0, sizeof(*conf));
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *colon = eq != NULL ? memchr(eq, ':', len - (size_t)(eq - p)) : NULL;
        char *num_end = NULL;
        errno = 0;
        unsigned long long v = strtoull(p, &num_end, 10);
        if (eq == NULL || colon == NULL || num_end != eq || errno != 0 || v == 0 ||
            colon == eq + 1 || colon + 1 == p + len)
            return rk_errf(err, RK_EINVAL, "--peers: '%.*s' is not ID=HOST:PORT", (int)len, p);
        for (uint32_t i = 0; i < n; i++)
            if (ids[i] == v)
                return rk_errf(err, RK_EINVAL, "--peers: id %llu twice", v);
        if (n == RAFT_MAX_VOTERS)
            return rk_errf(err, RK_EINVAL, "--peers: at most %d members", RAFT_MAX_VOTERS);
        if (conf != NULL && (size_t)(p + len - (eq + 1)) < RAFT_ADDR_MAX) {
            /* Issue #17: the restored cluster's configuration records the peer addresses. */
            struct raft_member_addr *a = &conf->addrs[n];
            memset(a, 0, sizeof(*a));
            a->id = v;
            memcpy(a->peer, eq + 1, (size_t)(p + len - (eq + 1)));
        }
        ids[n++] = v;
        self = self || v == id;
        p += len;
        if (*p == ',')
            p++;
    }
    if (n == 0)
        return rk_errf(err, RK_EINVAL, "--peers: no member");
    if (!self)
        return rk_errf(err, RK_EINVAL, "--peers does not name --id %" PRIu64, id);
    if (conf != NULL) {
        struct raft_conf c = {.n_voters = n};
        memcpy(c.voters, ids, n * sizeof(ids[0]));
        for (uint32_t i = 0; i < n; i++) {
            /* An address raft_conf_set_addr refuses (too long, not printable) stays out. */
            if (conf->addrs[i].id == ids[i])
                (void)raft_conf_set_addr(&c, &conf->addrs[i]);
        }
        *conf = c;
    }
    return RK_OK;
}

/* The records to write, in the order they are written: by a hash of the key that is not the
 * keydir's (R3 in backup_restore.h), each with its offset in the file. */
struct restore_ent {
    uint64_t order;
    uint64_t off;
};

struct restore_plan {
    struct restore_ent *ent;
    size_t n, cap;
    uint64_t keys, sessions;
    struct rk_errmsg *err;
};

static int plan_one(void *ctx, uint64_t off, const uint8_t *key, uint32_t key_len,
                    const uint8_t *val, uint32_t val_len)
{
    (void)val;
    (void)val_len;
    struct restore_plan *p = ctx;
    /* Client sessions stay behind: the new cluster's nodes start their incarnations (and so
     * their client ids, replica_client_id) afresh, and a new connection that met an old
     * session under its id would have its requests taken for stale retries. No client of the
     * old cluster retries against the new one, so no session is needed there. */
    if (key[0] == KV_KEY_SESSION) {
        p->sessions++;
        return RK_OK;
    }
    if (key[0] >= KV_KEY_USER && key[0] < KV_KEY_USER + KV_DBS)
        p->keys++;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        struct restore_ent *e = realloc(p->ent, cap * sizeof(*e));
        if (e == NULL)
            return rk_errf(p->err, RK_ENOMEM, "no memory for the index of %zu records", cap);
        p->ent = e;
        p->cap = cap;
    }
    p->ent[p->n++] = (struct restore_ent){
        .order = XXH3_64bits_withSeed(key, key_len, RESTORE_ORDER_SEED), .off = off};
    return RK_OK;
}

static int ent_cmp(const void *a, const void *b)
{
    const struct restore_ent *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* R1: reads and checks the whole file, and plans the writes. */
static int restore_plan(const char *file, struct backup_header *h, struct restore_plan *p,
                        struct rk_errmsg *err)
{
    struct file_reader r = {.f = fopen(file, "rb")};
    if (r.f == NULL)
        return rk_errf(err, errno == ENOENT ? RK_ENOENT : RK_EIO, "%s: %s", file, strerror(errno));
    p->err = err;
    int rc = backup_read(file_read, &r, h, plan_one, p, err);
    fclose(r.f);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "%s", file);
    if (p->n > 0)
        qsort(p->ent, p->n, sizeof(*p->ent), ent_cmp);
    return RK_OK;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *b = buf;
    while (len > 0) {
        ssize_t k = pread(fd, b, len, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k == 0 ? RK_EMALFORMED : RK_EIO;
        b += k;
        len -= (size_t)k;
        off += (uint64_t)k;
    }
    return RK_OK;
}

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The planned records, read again from the file at their offsets (checked in the first pass;
 * the lengths are checked against the limits again, should the file have changed since). */
static int restore_records(const char *file, const struct restore_plan *p, struct kv_store *st,
                           uint64_t index, struct rk_errmsg *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int rc = rk_errf(err, RK_EIO, "%s: %s", file, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    uint64_t size = (uint64_t)sb.st_size;
    size_t cap = RESTORE_READ_BYTES;
    uint8_t *buf = malloc(cap);
    uint64_t batch = 0;
    int rc = buf == NULL ? RK_ENOMEM : RK_OK;
    for (size_t i = 0; i < p->n && rc == RK_OK; i++) {
        /* One read for the head and, most often, the whole record. */
        uint64_t off = p->ent[i].off;
        size_t first = off < size && size - off < RESTORE_READ_BYTES ? (size_t)(size - off)
                                                                     : RESTORE_READ_BYTES;
        rc = first < BACKUP_RECORD_HEAD_BYTES ? RK_EMALFORMED : pread_all(fd, buf, first, off);
        uint32_t kl = rc == RK_OK ? get32le(buf) : 0, vl = rc == RK_OK ? get32le(buf + 4) : 0;
        if (rc == RK_OK && (kl == 0 || kl > BACKUP_KEY_MAX_BYTES || vl > BACKUP_VALUE_MAX_BYTES))
            rc = RK_EMALFORMED;
        size_t need = BACKUP_RECORD_HEAD_BYTES + (size_t)kl + vl;
        if (rc == RK_OK && need > cap) {
            uint8_t *nb = realloc(buf, need);
            rc = nb == NULL ? RK_ENOMEM : RK_OK;
            if (nb != NULL) {
                buf = nb;
                cap = need;
            }
        }
        if (rc == RK_OK && need > first)
            rc = pread_all(fd, buf + first, need - first, off + first);
        if (rc != RK_OK) {
            rc = rk_errf(err, rc,
                         "%s: re-reading the record at offset %" PRIu64 ": %s (did the file "
                         "change?)",
                         file, off, rk_strerror(rc));
            break;
        }
        const uint8_t *key = buf + BACKUP_RECORD_HEAD_BYTES;
        rc = st->ops->put(st, index, key, kl, key + kl, vl);
        batch += need + 32;
        if (rc == RK_OK && batch >= RESTORE_BATCH_BYTES) {
            batch = 0;
            rc = st->ops->end_batch(st, index);
        }
        if (rc != RK_OK)
            rc = rk_errf(err, rc, "writing the store: %s", rk_strerror(rc));
    }
    free(buf);
    close(fd);
    return rc;
}

/* The store: every planned record, then the snapshot point, synced; then checked as kv opens
 * it. */
static int restore_store(const struct backup_restore_config *c, const struct restore_plan *p,
                         struct kv_store *st, const struct backup_header *h, struct rk_errmsg *err)
{
    int rc = restore_records(c->file, p, st, h->index, err);
    if (rc != RK_OK)
        return rc;
    /* The new cluster's configuration, over the backed-up cluster's (whose members may be
     * other ids, or gone): the snapshot point carries it, as a leader's snapshot would. */
    struct raft_conf conf;
    rc = check_peers(c->peers, c->id, &conf, err);
    if (rc == RK_OK)
        rc = replica_store_put_conf(st, h->index, &conf);
    if (rc != RK_OK)
        return rk_errf(err, rc, "writing the configuration: %s", rk_strerror(rc));
    /* The snapshot point in the replica's own format (replica.c owns it). */
    rc = replica_store_snapshot_point(st, h->index, h->term);
    if (rc == RK_OK)
        rc = st->ops->end_batch(st, h->index);
    if (rc == RK_OK)
        rc = st->ops->sync(st);
    if (rc != RK_OK)
        return rk_errf(err, rc, "writing the store: %s", rk_strerror(rc));
    struct kv *kv = NULL;
    struct kv_config kc = {.alloc = rk_alloc_libc(), .store = st};
    rc = kv_create(&kc, &kv, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "the restored store does not open as the state machine");
    kv_destroy(kv);
    return RK_OK;
}

/* The log: empty from the snapshot point on, hard state term T, no promise. */
static int restore_log(struct log_store *log, const struct backup_header *h, struct rk_errmsg *err)
{
    int rc = log->ops->compact(log, h->index, h->term, err);
    struct raft_hard_state hs = {.term = h->term, .vote = RAFT_NONE, .commit = h->index};
    if (rc == RK_OK)
        rc = log->ops->set_hard_state(log, &hs, err);
    if (rc == RK_OK)
        rc = log->ops->sync(log, err);
    if (rc == RK_OK && log->ops->set_promise != NULL)
        rc = log->ops->set_promise(log, 0, err);
    return rc != RK_OK ? rk_errwrap(err, rc, "writing the log") : RK_OK;
}

static int write_note(const char *dir, const struct backup_restore_config *c,
                      const struct backup_header *h, struct rk_errmsg *err)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/restored", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return rk_errf(err, RK_EIO, "%s: %s", path, strerror(errno));
    /* What the member was restored for, for the operator: the store's configuration record
     * holds these voters (the nodes of --peers). */
    fprintf(f,
            "backup %s\ncluster_id %" PRIu64 "\nindex %" PRIu64 "\nterm %" PRIu64 "\nid %" PRIu64
            "\npeers %s\n",
            c->file, h->cluster_id, h->index, h->term, c->id, c->peers);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    return ok ? RK_OK : rk_errf(err, RK_EIO, "%s: %s", path, strerror(errno));
}

static int sync_dir(const char *dir, struct rk_errmsg *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    return ok ? RK_OK : rk_errf(err, RK_EIO, "%s: sync: %s", dir, strerror(errno));
}

static int build_dir(const struct backup_restore_config *c, const char *tmp,
                     const struct restore_plan *plan, struct backup_restore_result *out,
                     struct rk_errmsg *err)
{
    char path[PATH_MAX + 16];
    struct fs *root = NULL, *fs_log = NULL, *fs_kv = NULL;
    struct replica_storage st = {0};
    int rc = fs_posix_open(tmp, true, &root, err);
    if (rc == RK_OK) {
        snprintf(path, sizeof(path), "%s/log", tmp);
        rc = fs_posix_open(path, true, &fs_log, err);
    }
    if (rc == RK_OK) {
        snprintf(path, sizeof(path), "%s/kv", tmp);
        rc = fs_posix_open(path, true, &fs_kv, err);
    }
    if (rc == RK_OK) {
        /* The node's own open (server.c open_storage): the directory has its format files
         * exactly as raftkv-node makes them. */
        struct replica_storage_config sc = {
            .log_fs = fs_log, .store_fs = fs_kv, .alloc = rk_alloc_libc(), .no_repair = true};
        rc = replica_storage_open(&sc, &st, err);
    }
    if (rc == RK_OK && bc_reserve_keys(st.bc, plan->n + 1) != RK_OK)
        rc = rk_errf(err, RK_ENOMEM, "no memory for a keydir of %zu keys", plan->n + 1);
    if (rc == RK_OK)
        rc = restore_store(c, plan, bc_kv_store(st.bc), &out->header, err);
    if (rc == RK_OK)
        rc = restore_log(st.log, &out->header, err);
    if (st.log != NULL)
        st.log->ops->destroy(st.log);
    if (st.bc != NULL)
        bc_close(st.bc);
    fs_posix_close(fs_kv);
    fs_posix_close(fs_log);
    fs_posix_close(root);
    if (rc == RK_OK)
        rc = write_note(tmp, c, &out->header, err);
    if (rc == RK_OK)
        rc = sync_dir(tmp, err);
    return rc;
}

static int restore_checked(const struct backup_restore_config *c, const struct restore_plan *plan,
                           struct backup_restore_result *out, struct rk_errmsg *err);

int backup_restore(const struct backup_restore_config *c, struct backup_restore_result *out,
                   struct rk_errmsg *err)
{
    memset(out, 0, sizeof(*out));
    int rc = check_peers(c->peers, c->id, NULL, err);
    if (rc != RK_OK)
        return rc;
    struct stat sb;
    if (stat(c->data_dir, &sb) == 0 || errno != ENOENT) /* before reading a large file */
        return rk_errf(err, RK_EEXIST,
                       "--data-dir %s exists: restore makes a new directory (remove it first, "
                       "or choose another)",
                       c->data_dir);
    struct restore_plan plan = {0};
    rc = restore_plan(c->file, &out->header, &plan, err); /* R1 */
    out->keys = plan.keys;
    out->sessions = plan.sessions;
    if (rc == RK_OK)
        rc = restore_checked(c, &plan, out, err);
    free(plan.ent);
    return rc;
}

static int restore_checked(const struct backup_restore_config *c, const struct restore_plan *plan,
                           struct backup_restore_result *out, struct rk_errmsg *err)
{
    int rc;
    if (out->header.index == 0)
        return rk_errf(err, RK_EINVAL,
                       "%s: a backup at index 0 (an empty new cluster) has "
                       "nothing to restore: start the new members with empty directories",
                       c->file);
    struct stat sb;
    if (stat(c->data_dir, &sb) == 0 || errno != ENOENT)
        return rk_errf(err, RK_EEXIST,
                       "--data-dir %s exists: restore makes a new directory "
                       "(remove it first, or choose another)",
                       c->data_dir);
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.restoring", c->data_dir) >= sizeof(tmp) - 16)
        return rk_errf(err, RK_EINVAL, "--data-dir: path too long");
    if (stat(tmp, &sb) == 0)
        return rk_errf(err, RK_EEXIST, "%s exists (a restore that did not finish?): remove it",
                       tmp);
    rc = build_dir(c, tmp, plan, out, err);
    if (rc != RK_OK)
        return rk_errwrap(err, rc, "restoring into %s (left for inspection; remove it)", tmp);
    if (rename(tmp, c->data_dir) != 0) /* R2 */
        return rk_errf(err, RK_EIO, "renaming %s to %s: %s", tmp, c->data_dir, strerror(errno));
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", c->data_dir);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        snprintf(parent, sizeof(parent), ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    return sync_dir(parent, err);
}
