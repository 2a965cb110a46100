/*
 * raftkv_tool.c — raftkv-tool, for operators: checks, dumps and measures the data directory of a
 * STOPPED node (layout in node/README.md: DIR/log holds the Raft log, DIR/kv the store).
 *
 *   raftkv-tool check DIR   every CRC and structural rule of the log and the store, and what
 *                           the node checks at start (the store's applied index inside the log,
 *                           after finishing an installed snapshot: replica_create, raft_create);
 *                           exit 0 ok, 1 problems (every one that would stop the node starting,
 *                           with file and offset and a "repair:" line: what the node does about it
 *                           at its next start), 2 usage or I/O
 *   raftkv-tool dump DIR    the log's entries (kv commands decoded), then the store's live keys
 *   raftkv-tool stats DIR   sizes and counts
 *
 * Nothing here decodes a file format: the log and the store are read by their own modules'
 * verification entry points (log_seglog_verify, bc_verify: recovery run dry, see seglog.c and
 * recover.c), kv commands by kv_cmd_decode and session records by kv_session_record_decode. So
 * "check says ok" means "the node's open would succeed", and a notice is what that open would
 * change (cut a torn tail, remove a leftover, finish a merge).
 *
 *   raftkv-tool restore FILE --data-dir DIR --id N --peers LIST
 *                           a new member's directory from a backup (backup_restore.h)
 *
 * Invariant T1: check, dump and stats never modify DIR (restore only creates a new one). The
 * modules promise it (their verify makes no writing fs call); the tool does not rely on the
 * promise alone: both directories are opened through ro_fs, which refuses every writing call
 * and every open that could create.
 *
 * Output: reports on stdout, one fact per line; errors on stderr as "raftkv-tool: ...". Keys and
 * values are printed quoted, with \" \\ and \xNN escapes, cut after --width bytes.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_restore.h"
#include "bitcask/bitcask.h"
#include "common/assert.h"
#include "fs_posix.h"
#include "kv/acl.h"
#include "kv/kv.h"
#include "log/log.h"
#include "replica/replica.h"

#define TOOL_NAME          "raftkv-tool"
#define TOOL_EXIT_OK       0
#define TOOL_EXIT_PROBLEM  1
#define TOOL_EXIT_ERROR    2
#define TOOL_PATH_BYTES    4096
#define TOOL_WIDTH_DEFAULT 64u
#define TOOL_WIDTH_MAX     (1u << 30)
#define TOOL_LOG_SUBDIR    "log"
#define TOOL_KV_SUBDIR     "kv"

static const char tool_usage[] =
    "usage: " TOOL_NAME " check DIR\n"
    "       " TOOL_NAME " dump [--width N] DIR\n"
    "       " TOOL_NAME " stats DIR\n"
    "       " TOOL_NAME " restore FILE --data-dir DIR --id N --peers ID=HOST:PORT,...\n"
    "       " TOOL_NAME " --help\n"
    "\n"
    "Reads the data directory DIR of a stopped raftkv node (DIR/" TOOL_LOG_SUBDIR
    ": the Raft log, DIR/" TOOL_KV_SUBDIR ": the store)\n"
    "and never modifies it (restore writes a NEW directory only).\n"
    "\n"
    "  check   verify every checksum of the log (segments, commit records, hard state, format)\n"
    "          and of the store (data files, commit records, hint files, MERGE manifest), the\n"
    "          structural rules (log contiguity, record indexes, batch END markers, key\n"
    "          namespaces: 'u' user, 's' session, 'm' replica metadata such as an installed\n"
    "          snapshot), and what the node checks when it starts (the store's applied index\n"
    "          inside the log, after finishing an installed snapshot); print counts, then \"ok\"\n"
    "          or every problem that would stop the node starting, each with its file and\n"
    "          offset and a \"repair:\" line saying what the node does about it at its next\n"
    "          start. A torn tail (bytes never synced) the node would cut, and leftovers it\n"
    "          would remove, are notes, not problems.\n"
    "  dump    print the log's entries (index, term, type, the kv command) and then the store's\n"
    "          live keys (user keys with values, client sessions decoded). Keys and values are\n"
    "          quoted with \\\" \\\\ \\xNN escapes and cut after N bytes (--width, default 64;\n"
    "          0: never cut). Entries in index order; keys in the store's own order, which is\n"
    "          the same on every replica holding the same keys.\n"
    "  stats   sizes and counts: files and bytes per directory, log entries and bytes, the\n"
    "          store's live and dead bytes, keys, tombstones, hint coverage.\n"
    "  restore verify the backup FILE (raftkv-cli backup) whole, then seed a new member's\n"
    "          data directory DIR (which must not exist) from it, as etcdutl snapshot restore\n"
    "          does: the store holds the backup's records, the log starts after its index and\n"
    "          term. Restore every member of the new cluster from the same file, each with its\n"
    "          --id and the same --peers, then start them with those. A damaged file is\n"
    "          refused (exit 1) with the part and offset that do not check out.\n"
    "\n"
    "exit status: 0 ok; 1 a problem in the data (dump and stats stop at it too);\n"
    "             2 a usage error or an I/O error.\n";

/* ---- ro_fs: a struct fs that forwards reads and refuses everything else (T1) ------------- */

struct ro_fs {
    struct fs fs; /* first */
    struct fs *inner;
};

static struct fs *ro_inner(struct fs *fs)
{
    return ((struct ro_fs *)fs)->inner;
}

static int ro_refuse(struct rk_errmsg *err, const char *what)
{
    return rk_errf(err, RK_EINVAL, TOOL_NAME " is read-only: %s refused", what);
}

static int ro_open(struct fs *fs, const char *name, uint32_t flags, struct fs_file **out,
                   struct rk_errmsg *err)
{
    if (flags != 0)
        return ro_refuse(err, "create");
    return ro_inner(fs)->ops->open(ro_inner(fs), name, 0, out, err);
}

static void ro_close(struct fs *fs, struct fs_file *f)
{
    ro_inner(fs)->ops->close(ro_inner(fs), f);
}

static int ro_pread(struct fs *fs, struct fs_file *f, uint64_t off, void *buf, size_t len,
                    size_t *got, struct rk_errmsg *err)
{
    return ro_inner(fs)->ops->pread(ro_inner(fs), f, off, buf, len, got, err);
}

static int ro_size(struct fs *fs, struct fs_file *f, uint64_t *size, struct rk_errmsg *err)
{
    return ro_inner(fs)->ops->size(ro_inner(fs), f, size, err);
}

static int ro_list(struct fs *fs, bool (*fn)(void *ctx, const char *name), void *ctx,
                   struct rk_errmsg *err)
{
    return ro_inner(fs)->ops->list(ro_inner(fs), fn, ctx, err);
}

static int ro_append(struct fs *fs, struct fs_file *f, const void *buf, size_t len,
                     struct rk_errmsg *err)
{
    (void)fs, (void)f, (void)buf, (void)len;
    return ro_refuse(err, "append");
}

static int ro_pwrite(struct fs *fs, struct fs_file *f, uint64_t off, const void *buf, size_t len,
                     struct rk_errmsg *err)
{
    (void)fs, (void)f, (void)off, (void)buf, (void)len;
    return ro_refuse(err, "pwrite");
}

static int ro_sync(struct fs *fs, struct fs_file *f, struct rk_errmsg *err)
{
    (void)fs, (void)f;
    return ro_refuse(err, "sync");
}

static int ro_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct rk_errmsg *err)
{
    (void)fs, (void)f, (void)size;
    return ro_refuse(err, "truncate");
}

static int ro_rename(struct fs *fs, const char *from, const char *to, struct rk_errmsg *err)
{
    (void)fs, (void)from, (void)to;
    return ro_refuse(err, "rename");
}

static int ro_remove(struct fs *fs, const char *name, struct rk_errmsg *err)
{
    (void)fs, (void)name;
    return ro_refuse(err, "remove");
}

static int ro_sync_dir(struct fs *fs, struct rk_errmsg *err)
{
    (void)fs;
    return ro_refuse(err, "sync_dir");
}

static const struct fs_ops ro_ops = {
    .open = ro_open,
    .close = ro_close,
    .pread = ro_pread,
    .append = ro_append,
    .pwrite = ro_pwrite,
    .sync = ro_sync,
    .size = ro_size,
    .truncate = ro_truncate,
    .rename = ro_rename,
    .remove = ro_remove,
    .list = ro_list,
    .sync_dir = ro_sync_dir,
};

/* ---- the data directory -------------------------------------------------------------------- */

struct tool_dir {
    char path[TOOL_PATH_BYTES]; /* DIR/log or DIR/kv */
    struct fs *posix;           /* owned: fs_posix_close */
    struct ro_fs ro;            /* what the modules are given */
};

static int tool_dir_open(struct tool_dir *d, const char *dir, const char *sub,
                         struct rk_errmsg *err)
{
    memset(d, 0, sizeof(*d));
    int n = snprintf(d->path, sizeof(d->path), "%s/%s", dir, sub);
    if (n < 0 || (size_t)n >= sizeof(d->path))
        return rk_errf(err, RK_EINVAL, "%s: path too long", dir);
    int rc = fs_posix_open(d->path, false, &d->posix, err);
    if (rc != RK_OK)
        return rc;
    d->ro = (struct ro_fs){.fs = {.ops = &ro_ops}, .inner = d->posix};
    return RK_OK;
}

static void tool_dir_close(struct tool_dir *d)
{
    fs_posix_close(d->posix);
    d->posix = NULL;
}

struct dir_usage {
    struct fs *fs;
    uint64_t files;
    uint64_t bytes;
    int rc;
    struct rk_errmsg *err;
};

static bool dir_usage_one(void *ctx, const char *name)
{
    struct dir_usage *u = ctx;
    struct fs_file *f;
    u->rc = u->fs->ops->open(u->fs, name, 0, &f, u->err);
    if (u->rc != RK_OK)
        return false;
    uint64_t size = 0;
    u->rc = u->fs->ops->size(u->fs, f, &size, u->err);
    u->fs->ops->close(u->fs, f);
    u->files++;
    u->bytes += size;
    return u->rc == RK_OK;
}

/* Every file of the directory, ours or not: how many and how many bytes. */
static int dir_usage(struct tool_dir *d, uint64_t *files, uint64_t *bytes, struct rk_errmsg *err)
{
    struct dir_usage u = {.fs = &d->ro.fs, .rc = RK_OK, .err = err};
    int rc = u.fs->ops->list(u.fs, dir_usage_one, &u, err);
    if (rc == RK_OK)
        rc = u.rc;
    *files = u.files;
    *bytes = u.bytes;
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "%s", d->path);
}

/* ---- printing ------------------------------------------------------------------------------ */

/* Prints len bytes at p quoted and escaped, cut after width bytes (0: never). */
static void print_bytes(FILE *out, const uint8_t *p, uint32_t len, size_t width)
{
    size_t shown = width != 0 && len > width ? width : len;
    fputc('"', out);
    for (size_t i = 0; i < shown; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, out);
        else
            fprintf(out, "\\x%02x", c);
    }
    fputc('"', out);
    if (shown < len)
        fprintf(out, "... (%" PRIu32 " bytes)", len);
}

static const char *entry_type_name(uint8_t type)
{
    switch (type) {
    case RAFT_ENTRY_NORMAL:
        return "normal";
    case RAFT_ENTRY_NOOP:
        return "noop";
    case RAFT_ENTRY_CONF:
        return "conf";
    }
    return NULL;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b == 0 ? 0.0 : (double)a / (double)b;
}

/* ---- one run: the visitors and what they found -------------------------------------------- */

enum tool_cmd { TOOL_CHECK, TOOL_DUMP, TOOL_STATS };

struct tool_run {
    enum tool_cmd cmd;
    size_t width;
    FILE *out;   /* the report */
    FILE *notes; /* notices: the report for check, stderr otherwise */
    struct log_verify_stats log;
    struct bc_verify_stats bc;
    uint64_t user_keys;
    uint64_t sessions;
    uint64_t user_bytes; /* of user keys and values, prefixes excluded */
    uint64_t meta_keys;  /* 'm' keys: written by the replica (kv.h, KV_KEY_META) */
    bool msnap;          /* the store holds "msnap": a snapshot installed from a leader */
    uint64_t msnap_index;
    uint64_t msnap_term;
    uint64_t *terms; /* of the log's entries first_index.. (the msnap check needs one) */
    size_t n_terms;
    size_t cap_terms;
    bool terms_nomem;
    bool key_problem; /* a key kv_create would refuse */
    char key_problem_text[RK_ERRMSG_SIZE + 64];
    char problem[RK_ERRMSG_SIZE + 256]; /* the latest problem, printed after the counts */
    char repair[RK_ERRMSG_SIZE + 256];  /* what the node does about it at its next start */
    unsigned problems;
    int log_rc; /* what verification returned: the repair plan's input */
    int bc_rc;
    char pending[4 * (2 * RK_ERRMSG_SIZE + 600)]; /* check: the problem lines, for the end */
    size_t pending_len;
};

/* The key the replica writes when it installs a snapshot (core/replica/replica.c, snap_install):
 * 'm' "snap" -> [index u64][term u64], little-endian. */
static const uint8_t tool_msnap_key[] = {KV_KEY_META, 's', 'n', 'a', 'p'};

static uint64_t tool_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void on_hard_state(void *ctx, bool found, const struct raft_hard_state *hs,
                          uint64_t snapshot_index, uint64_t snapshot_term)
{
    struct tool_run *r = ctx;
    if (r->cmd != TOOL_DUMP)
        return;
    if (!found)
        fprintf(r->out, "hardstate none\n");
    else
        fprintf(r->out,
                "hardstate term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64 " snapshot %" PRIu64
                " term %" PRIu64 "\n",
                hs->term, hs->vote, hs->commit, snapshot_index, snapshot_term);
}

/* A generic (version 2) command: "EXEC" with its watches for a transaction, then each op as
 * NAME db D [flags 0x.. num N] "arg"..., the leader's stamp and the session. */
static void print_command_v2(struct tool_run *r, const uint8_t *data, uint32_t len)
{
    struct kv_cmd2_view v;
    struct rk_errmsg err;
    if (kv_cmd2_decode(data, len, &v, &err) != RK_OK) {
        fprintf(r->out, "undecodable (%" PRIu32 " bytes): %s", len, err.text);
        return;
    }
    if (v.flags & KV_CMD2_MULTI)
        fprintf(r->out, "EXEC %" PRIu32 " ops, %" PRIu32 " watches at %" PRIu64 ":", v.n_ops,
                v.n_watch, v.watch_index);
    struct kv_cmd2_iter it, ai;
    struct kv_op_view op;
    struct kv_arg a;
    kv_cmd2_ops(&v, &it);
    for (const char *sep = (v.flags & KV_CMD2_MULTI) ? " " : ""; kv_cmd2_next_op(&it, &op);
         sep = "; ") {
        fprintf(r->out, "%s%s db %u", sep, kv_code_name(op.code), op.db);
        if (op.flags != 0 || op.num != 0)
            fprintf(r->out, " flags 0x%x num %" PRId64, op.flags, op.num);
        kv_op_args(&op, &ai);
        while (kv_op_next_arg(&ai, &a)) {
            fputc(' ', r->out);
            print_bytes(r->out, a.p, a.len, r->width);
        }
    }
    fprintf(r->out, " at %" PRIu64 " ms", v.time_ms);
    if (v.client_id != 0)
        fprintf(r->out, " (client %" PRIu64 ", seq %" PRIu64 ")", v.client_id, v.seq);
    else
        fputs(" (no session)", r->out);
}

static void print_command(struct tool_run *r, const uint8_t *data, uint32_t len)
{
    struct kv_cmd c;
    struct rk_errmsg err;
    if (kv_cmd_is_v2(data, len)) {
        print_command_v2(r, data, len);
        return;
    }
    if (kv_cmd_decode(data, len, &c, &err) != RK_OK) {
        fprintf(r->out, "undecodable (%" PRIu32 " bytes): %s", len, err.text);
        return;
    }
    fprintf(r->out, "%s", kv_op_name(c.op));
    if (c.op == KV_OP_MSET) {
        struct kv_pairs_iter it;
        struct kv_pair p;
        kv_pairs_begin(&it, c.val, c.val_len);
        fprintf(r->out, " %" PRIu32 " pairs:", it.left);
        for (const char *sep = " "; kv_pairs_next(&it, &p); sep = ", ") {
            fputs(sep, r->out);
            print_bytes(r->out, p.key, p.key_len, r->width);
            fputs(" = ", r->out);
            print_bytes(r->out, p.val, p.val_len, r->width);
        }
    } else {
        fputc(' ', r->out);
        print_bytes(r->out, c.key, c.key_len, r->width);
    }
    if (c.op == KV_OP_PUT || c.op == KV_OP_PUT_IF) {
        fputs(" = ", r->out);
        print_bytes(r->out, c.val, c.val_len, r->width);
    }
    if (c.op == KV_OP_PUT_IF)
        fputs(c.cond == KV_COND_NX ? " if absent (NX)" : " if present (XX)", r->out);
    if (c.op == KV_OP_INCRBY)
        fprintf(r->out, " by %" PRId64, c.delta);
    if (c.client_id != 0)
        fprintf(r->out, " (client %" PRIu64 ", seq %" PRIu64 ")", c.client_id, c.seq);
    else
        fputs(" (no session)", r->out);
}

static void on_entry(void *ctx, const char *file, uint64_t offset, const struct raft_entry *e)
{
    struct tool_run *r = ctx;
    (void)file, (void)offset;
    if (!r->terms_nomem && r->n_terms == r->cap_terms) {
        size_t cap = r->cap_terms == 0 ? 1024 : 2 * r->cap_terms;
        uint64_t *t = realloc(r->terms, cap * sizeof(*t));
        if (t == NULL)
            r->terms_nomem = true;
        else
            r->terms = t, r->cap_terms = cap;
    }
    if (!r->terms_nomem)
        r->terms[r->n_terms++] = e->term;
    if (r->cmd != TOOL_DUMP)
        return;
    fprintf(r->out, "entry %" PRIu64 " term %" PRIu64 " ", e->index, e->term);
    const char *type = entry_type_name(e->type);
    if (type == NULL)
        fprintf(r->out, "type %u (%" PRIu32 " bytes)", e->type, e->len);
    else
        fputs(type, r->out);
    if (e->type == RAFT_ENTRY_NORMAL) {
        fputc(' ', r->out);
        print_command(r, e->data, e->len);
    }
    fputc('\n', r->out);
}

static void on_log_notice(void *ctx, const struct log_verify_notice *n)
{
    struct tool_run *r = ctx;
    fprintf(r->notes, "note: log: %s\n", n->text);
}

static void on_bc_notice(void *ctx, const struct bc_verify_notice *n)
{
    struct tool_run *r = ctx;
    fprintf(r->notes, "note: store: %s\n", n->text);
}

static bool key_refused(struct tool_run *r, const uint8_t *key, uint32_t key_len, const char *why)
{
    char shown[96];
    size_t n = 0;
    for (uint32_t i = 0; i < key_len && n + 5 < sizeof(shown); i++) {
        uint8_t c = key[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            shown[n++] = (char)c;
        else
            n += (size_t)snprintf(shown + n, sizeof(shown) - n, "\\x%02x", c);
    }
    shown[n] = '\0';
    r->key_problem = true;
    snprintf(r->key_problem_text, sizeof(r->key_problem_text), "store key \"%s\": %s", shown, why);
    return false;
}

/* One live key of the store: checked as kv_create checks it, printed by dump. */
static bool on_key(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                   uint32_t val_len)
{
    struct tool_run *r = ctx;
    if (key_len >= 1 && key[0] >= KV_KEY_USER && key[0] < KV_KEY_USER + KV_DBS) {
        uint8_t db = 0;
        const uint8_t *ukey = NULL, *uval = NULL;
        uint32_t ukey_len = 0, uval_len = 0;
        uint64_t mod = 0, deadline = 0;
        struct rk_errmsg err;
        if (val == NULL) /* scan_keys did not read it: dump needs it, check only the key */
            uval_len = val_len;
        else if (kv_user_record_decode(key, key_len, val, val_len, &db, &ukey, &ukey_len, &uval,
                                       &uval_len, &mod, &deadline, &err) != RK_OK)
            return key_refused(r, key, key_len, err.text);
        r->user_keys++;
        r->user_bytes += (uint64_t)key_len - 1 + uval_len;
        if (r->cmd == TOOL_DUMP) {
            fputs("key ", r->out);
            if (key[0] != KV_KEY_USER)
                fprintf(r->out, "(db %d) ", key[0] - KV_KEY_USER);
            print_bytes(r->out, key + 1, key_len - 1, r->width);
            fputs(" = ", r->out);
            if (uval != NULL)
                print_bytes(r->out, uval, uval_len, r->width);
            if (deadline != 0)
                fprintf(r->out, " (expires at %" PRIu64 " ms)", deadline);
            fputc('\n', r->out);
        }
        return true;
    }
    if (key_len >= 1 && key[0] == KV_KEY_EXPIRY)
        return true; /* the expiry index: not keys (kv.h) */
    if (key_len >= 1 && key[0] == KV_KEY_META) { /* kv_create accepts any (kv.c, load_record) */
        r->meta_keys++;
        bool msnap = key_len == sizeof(tool_msnap_key) &&
                     memcmp(key, tool_msnap_key, sizeof(tool_msnap_key)) == 0;
        if (msnap && val != NULL && val_len == 16) {
            r->msnap = true;
            r->msnap_index = tool_get64(val);
            r->msnap_term = tool_get64(val + 8);
        }
        if (r->cmd == TOOL_DUMP && r->msnap && msnap)
            fprintf(r->out, "meta snapshot index %" PRIu64 " term %" PRIu64 "\n", r->msnap_index,
                    r->msnap_term);
        else if (r->cmd == TOOL_DUMP) {
            fputs("meta ", r->out);
            print_bytes(r->out, key + 1, key_len - 1, r->width);
            fputs(" = ", r->out);
            print_bytes(r->out, val, val_len, r->width);
            fputc('\n', r->out);
        }
        return true;
    }
    if (key_len >= 1 && key[0] == KV_KEY_ACL) { /* an ACL user (core/kv/acl.h) */
        static struct kv_acl_user u;
        static char text[KV_ACL_DESCRIBE_MAX];
        if (val != NULL && kv_acl_decode(key + 1, key_len - 1, val, val_len, &u) != RK_OK)
            return key_refused(r, key, key_len, "an ACL user record that does not decode");
        if (r->cmd == TOOL_DUMP && val != NULL) {
            kv_acl_describe(&u, text, sizeof(text));
            fprintf(r->out, "acl user %s %s\n", u.name, text);
        }
        return true;
    }
    if (key_len == 0 || key[0] != KV_KEY_SESSION)
        return key_refused(r, key, key_len,
                           "in no namespace ('0'+db user, 's' session, 'x' expiry, "
                           "'m' replica metadata, 'a' ACL user)");
    struct kv_session_info s;
    struct rk_errmsg err;
    if (kv_session_record_decode(key, key_len, val, val_len, &s, &err) != RK_OK)
        return key_refused(r, key, key_len, err.text);
    if (s.last_index > r->bc.applied_index)
        return key_refused(r, key, key_len, "session's last index past the applied index");
    r->sessions++;
    if (r->cmd == TOOL_DUMP)
        fprintf(r->out,
                "session %" PRIu64 " last_seq %" PRIu64 " last_index %" PRIu64
                " result %s num %" PRId64 "\n",
                s.client_id, s.last_seq, s.last_index, kv_op_name(s.result.op), s.result.num);
    return true;
}

/* ---- verification -------------------------------------------------------------------------- */

static void add_problem(struct tool_run *r, const char *repair, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a problem that would stop the node starting, and what the node does about it at its
 * next start (repair); printed after the counts (check) or on stderr. */
static void add_problem(struct tool_run *r, const char *repair, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problem, sizeof(r->problem), fmt, ap);
    va_end(ap);
    snprintf(r->repair, sizeof(r->repair), "%s", repair);
    r->problems++;
    if (r->cmd != TOOL_CHECK) {
        fprintf(stderr, TOOL_NAME ": problem: %s\n" TOOL_NAME ": repair: %s\n", r->problem,
                r->repair);
        return;
    }
    size_t left = sizeof(r->pending) - r->pending_len;
    int n = snprintf(r->pending + r->pending_len, left, "problem: %s\nrepair: %s\n", r->problem,
                     r->repair);
    if (n > 0)
        r->pending_len += (size_t)n < left ? (size_t)n : left - 1;
}

/* What the node does at its next start about a damaged log (seglog.c, TORN OR CORRUPT). */
static void log_repair_text(const struct log_damage *d, char *out, size_t n)
{
    if (d->kind == LOG_DAMAGE_HARD_STATE) {
        snprintf(out, n,
                 "automatic (repair plan below): its term and vote are unknown, so it must not "
                 "vote again until a leader has given it back its log; the log's commit records "
                 "say it may have acknowledged entries up to index %" PRIu64,
                 d->acked_index);
        return;
    }
    if (d->kind == LOG_DAMAGE_FORMAT) {
        snprintf(out, n, "automatic (repair plan below): the format file is written again");
        return;
    }
    snprintf(out, n,
             "automatic (repair plan below): the log is whole up to index %" PRIu64
             ", the damage is in synced data (indexes %" PRIu64 "..%" PRIu64
             "), and this node may have acknowledged entries up to index %" PRIu64
             ", which it must get back from the other replicas before it votes again",
             d->intact_last_index, d->first_index, d->last_index, d->acked_index);
}

/* The verdict on one part's verification: ok (0), a problem (1: added), or an error (2:
 * printed). */
static int verdict(struct tool_run *r, const char *sub, int rc, const char *file, uint64_t off,
                   const char *problem, const char *repair, const struct rk_errmsg *err)
{
    if (rc == RK_OK && !r->key_problem)
        return TOOL_EXIT_OK;
    if (rc == RK_OK)
        add_problem(r, "none automatic: the node refuses to start (kv: the store has a key it "
                       "cannot load)", "%s: %s", sub, r->key_problem_text);
    else if (rc == RK_ECORRUPT && file[0] != '\0')
        add_problem(r, repair, "%s/%s offset %" PRIu64 ": %s", sub, file, off, problem);
    else if (rc == RK_ECORRUPT)
        add_problem(r, repair, "%s: %s", sub, err->text);
    else if (rc == RK_EMALFORMED) /* an older format: the node refuses it */
        add_problem(r, "none automatic: the node refuses to start (data of an older format)",
                    "%s: %s", sub, err->text);
    if (rc == RK_OK || rc == RK_ECORRUPT || rc == RK_EMALFORMED)
        return TOOL_EXIT_PROBLEM;
    fprintf(stderr, TOOL_NAME ": %s: %s: %s\n", sub, rk_strerror(rc), err->text);
    return TOOL_EXIT_ERROR;
}

static int verify_log(struct tool_run *r, struct tool_dir *d)
{
    struct log_seglog_config c = {.fs = &d->ro.fs};
    struct log_verify_cb cb = {
        .ctx = r, .hard_state = on_hard_state, .entry = on_entry, .notice = on_log_notice};
    struct rk_errmsg err = {{0}};
    if (r->cmd == TOOL_DUMP)
        fprintf(r->out, "# log %s\n", d->path);
    int rc = log_seglog_verify(&c, &cb, &r->log, &err);
    r->log_rc = rc;
    char repair[RK_ERRMSG_SIZE + 256];
    log_repair_text(&r->log.damage, repair, sizeof(repair));
    return verdict(r, TOOL_LOG_SUBDIR, rc, r->log.problem_file, r->log.problem_offset,
                   r->log.problem, repair, &err);
}

static int verify_store(struct tool_run *r, struct tool_dir *d)
{
    struct bc_config c = {.fs = &d->ro.fs};
    struct bc_verify_cb cb = {.ctx = r, .key = on_key, .notice = on_bc_notice};
    struct rk_errmsg err = {{0}};
    if (r->cmd == TOOL_DUMP)
        fprintf(r->out, "# store %s\n", d->path);
    int rc = bc_verify(&c, &cb, &r->bc, &err);
    r->bc_rc = rc;
    char repair[RK_ERRMSG_SIZE + 256];
    snprintf(repair, sizeof(repair),
             "automatic (repair plan below): the store is whole up to applied index "
             "%" PRIu64 "%s (the log, if it still holds the entries after it, or a snapshot from "
             "the leader, has what it lost)",
             r->bc.damage.intact_index,
             r->bc.damage.last_index > 0 ? ", and the damage is in synced data" : "");
    return verdict(r, TOOL_KV_SUBDIR, rc, r->bc.problem_file, r->bc.problem_offset, r->bc.problem,
                   repair, &err);
}

/* What replica_create and raft_create check at start, on what the log and the store hold: a
 * snapshot installed into the store but not into the log is finished (the log compacted to it),
 * then the store's applied index must lie in the log [snapshot index, last index]. */
static int check_start(struct tool_run *r)
{
    const struct log_verify_stats *l = &r->log;
    uint64_t snap = l->snapshot_index;
    uint64_t last = l->entries > 0 ? l->last_index : snap;
    bool finish = false;
    if (r->msnap && r->msnap_index > snap) {
        bool has = r->msnap_index <= last && !r->terms_nomem &&
                   r->msnap_index - snap - 1 < r->n_terms &&
                   r->terms[r->msnap_index - snap - 1] == r->msnap_term;
        if (!has) {
            finish = true;
            snap = last = r->msnap_index;
        }
    }
    if (finish)
        fprintf(r->cmd == TOOL_CHECK ? r->out : stderr,
                "note: start: the store holds snapshot %" PRIu64 " (term %" PRIu64
                ") the log does not: the node will compact its log to it\n",
                r->msnap_index, r->msnap_term);
    uint64_t applied = r->bc.applied_index;
    if (applied >= snap && applied <= last)
        return TOOL_EXIT_OK;
    add_problem(r,
                applied > last
                    ? "automatic (repair plan below; raft: applied index outside the log): the "
                      "store applied entries the log no longer has — the log lost synced entries "
                      "(a truncated file?); they must come back from the other replicas"
                    : "automatic (repair plan below; raft: applied index outside the log): the "
                      "store is behind the log's snapshot point — it lost batches the log no "
                      "longer has; a snapshot from the leader must replace it",
                "store applied index %" PRIu64 " outside the log [%" PRIu64 ", %" PRIu64 "]%s",
                applied, snap, last, finish ? " (after the snapshot's compaction)" : "");
    return TOOL_EXIT_PROBLEM;
}

/* What the node's next start does about the problems found (replica_storage_open, issue #15):
 * the same plan (replica_repair_plan) on what verification found, or why it refuses. */
static bool report_repair_plan(struct tool_run *r)
{
    if (r->problems == 0)
        return true;
    if (r->log_rc == RK_EMALFORMED || r->bc_rc == RK_EMALFORMED ||
        (r->log_rc == RK_ECORRUPT && r->log.damage.kind == LOG_DAMAGE_NONE) || r->key_problem) {
        fprintf(r->out, "repair plan: none: the node refuses to start (%s)\n",
                r->key_problem ? "a key it cannot load" : "data it does not read");
        return false;
    }
    size_t hl = strlen(r->bc.problem_file);
    bool hint_only =
        r->bc_rc == RK_ECORRUPT && hl > 5 && strcmp(r->bc.problem_file + hl - 5, ".hint") == 0;
    struct replica_repair_input in;
    memset(&in, 0, sizeof(in));
    in.log_rc = r->log_rc;
    in.log_damage = r->log.damage;
    in.log_snapshot_index = r->log.snapshot_index;
    in.log_last_index = r->log.entries > 0 ? r->log.last_index : r->log.snapshot_index;
    in.store_rc = hint_only ? RK_OK : r->bc_rc;
    in.store_damage = r->bc.damage;
    in.store_applied = r->bc.applied_index;
    in.store_snap_index = r->msnap ? r->msnap_index : 0;
    struct replica_repair_plan plan;
    replica_repair_plan(&in, &plan);
    if (!plan.act)
        fprintf(r->out, "repair plan: none needed (%s)\n",
                hint_only ? "a bad hint is not used: the data file is read instead"
                          : "the node starts as it is");
    else
        fprintf(r->out, "repair plan: %s; then it catches up from the leader\n", plan.text);
    return true;
}

/* ---- the reports --------------------------------------------------------------------------- */

static void report_log(const struct tool_run *r, const struct tool_dir *d, bool partial)
{
    const struct log_verify_stats *s = &r->log;
    fprintf(r->out, "log: %s%s\n", d->path, partial ? " (counts up to the problem)" : "");
    if (s->hard_state_found)
        fprintf(r->out, "  hard state: term %" PRIu64 ", vote %" PRIu64 ", commit %" PRIu64 "\n",
                s->hs.term, s->hs.vote, s->hs.commit);
    else
        fprintf(r->out, "  hard state: none\n");
    fprintf(r->out, "  snapshot: index %" PRIu64 ", term %" PRIu64 "\n", s->snapshot_index,
            s->snapshot_term);
    if (s->promised == LOG_PROMISE_NEW)
        fprintf(r->out, "  promise: unknown, a new directory (no vote until a leader has caught "
                        "it up, or every voter shows an empty log)\n");
    else if (s->promised == LOG_PROMISE_UNKNOWN)
        fprintf(r->out, "  promise: unknown (no vote until a leader has caught it up)\n");
    else if (s->promised != 0)
        fprintf(r->out,
                "  promise: %" PRIu64 " (repaired: no vote until it holds entries up to %" PRIu64
                " again)\n",
                s->promised, s->promised);
    fprintf(r->out, "  segments: %" PRIu64 " (%" PRIu64 " bytes)\n", s->segments, s->segment_bytes);
    if (s->entries == 0)
        fprintf(r->out, "  entries: 0\n");
    else
        fprintf(r->out,
                "  entries: %" PRIu64 ", index %" PRIu64 "..%" PRIu64 ", max term %" PRIu64 "\n",
                s->entries, s->first_index, s->last_index, s->max_term);
    if (s->torn_bytes > 0)
        fprintf(r->out, "  torn tail: %" PRIu64 " bytes (would be cut on open)\n", s->torn_bytes);
    if (s->leftovers > 0)
        fprintf(r->out, "  leftovers: %" PRIu64 " files (would be removed on open)\n",
                s->leftovers);
}

static void report_store(const struct tool_run *r, const struct tool_dir *d, bool partial)
{
    const struct bc_verify_stats *s = &r->bc;
    fprintf(r->out, "store: %s%s\n", d->path, partial ? " (counts up to the problem)" : "");
    fprintf(r->out, "  data files: %" PRIu32 " (%" PRIu64 " bytes)\n", s->data_files,
            s->data_bytes);
    fprintf(r->out,
            "  records: %" PRIu64 " in %" PRIu64 " batches, %" PRIu64 " tombstones, %" PRIu64
            " merge marks\n",
            s->records, s->batches, s->tombstones, s->marks);
    fprintf(r->out,
            "  live keys: %" PRIu64 " (%" PRIu64 " user keys, %" PRIu64
            " sessions), applied index %" PRIu64 "\n",
            s->keys, r->user_keys, r->sessions, s->applied_index);
    fprintf(r->out, "  hint files: %" PRIu32 " (covering %" PRIu64 " of %" PRIu64 " data bytes)\n",
            s->hint_files, s->hinted_bytes, s->data_bytes);
    if (s->merge_manifest)
        fprintf(r->out, "  MERGE: a committed merge (would be finished on open)\n");
    if (s->torn_bytes > 0)
        fprintf(r->out, "  torn tail: %" PRIu64 " bytes (would be cut on open)\n", s->torn_bytes);
    if (s->leftovers > 0)
        fprintf(r->out, "  leftovers: %" PRIu32 " files (would be removed on open)\n",
                s->leftovers);
}

static int report_stats(const struct tool_run *r, struct tool_dir *log, struct tool_dir *kv)
{
    uint64_t log_files, log_bytes, kv_files, kv_bytes;
    struct rk_errmsg err = {{0}};
    int rc = dir_usage(log, &log_files, &log_bytes, &err);
    if (rc == RK_OK)
        rc = dir_usage(kv, &kv_files, &kv_bytes, &err);
    if (rc != RK_OK) {
        fprintf(stderr, TOOL_NAME ": %s: %s\n", rk_strerror(rc), err.text);
        return TOOL_EXIT_ERROR;
    }
    const struct log_verify_stats *l = &r->log;
    const struct bc_verify_stats *b = &r->bc;
    FILE *o = r->out;
    fprintf(o, "log: %s: %" PRIu64 " files, %" PRIu64 " bytes\n", log->path, log_files, log_bytes);
    fprintf(o, "  segments: %" PRIu64 ", %" PRIu64 " bytes\n", l->segments, l->segment_bytes);
    fprintf(o, "  entries: %" PRIu64 ", %" PRIu64 " bytes (%.1f bytes per entry)\n", l->entries,
            l->entry_bytes, ratio(l->entry_bytes, l->entries));
    fprintf(o, "  records behind the snapshot point: %" PRIu64 "\n", l->records - l->entries);
    fprintf(o, "store: %s: %" PRIu64 " files, %" PRIu64 " bytes\n", kv->path, kv_files, kv_bytes);
    uint64_t dead = b->data_bytes - b->live_bytes;
    fprintf(o, "  data files: %" PRIu32 ", %" PRIu64 " bytes\n", b->data_files, b->data_bytes);
    fprintf(o, "  live bytes: %" PRIu64 " (%.1f%%), dead bytes: %" PRIu64 " (%.1f%%)\n",
            b->live_bytes, 100.0 * ratio(b->live_bytes, b->data_bytes), dead,
            100.0 * ratio(dead, b->data_bytes));
    if (dead == 0)
        fprintf(o, "  live/dead ratio: - (no dead bytes)\n");
    else
        fprintf(o, "  live/dead ratio: %.3f\n", ratio(b->live_bytes, dead));
    fprintf(o,
            "  keys: %" PRIu64 " (%" PRIu64 " user keys, %" PRIu64 " sessions), %" PRIu64
            " bytes of user keys and values\n",
            b->keys, r->user_keys, r->sessions, r->user_bytes);
    fprintf(o, "  records: %" PRIu64 ", tombstones: %" PRIu64 " (%.1f%% of records)\n", b->records,
            b->tombstones, 100.0 * ratio(b->tombstones, b->records));
    fprintf(o,
            "  hint files: %" PRIu32 ", %" PRIu64 " bytes; hint coverage: %" PRIu32 " of %" PRIu32
            " data files, %" PRIu64 " of %" PRIu64 " data bytes (%.1f%%)\n",
            b->hint_files, b->hint_bytes, b->hint_files, b->data_files, b->hinted_bytes,
            b->data_bytes, 100.0 * ratio(b->hinted_bytes, b->data_bytes));
    return TOOL_EXIT_OK;
}

/* ---- the commands -------------------------------------------------------------------------- */

static int run_command(struct tool_run *r, const char *dir)
{
    struct tool_dir log, kv;
    struct rk_errmsg err = {{0}};
    int rc = tool_dir_open(&log, dir, TOOL_LOG_SUBDIR, &err);
    if (rc != RK_OK) {
        fprintf(stderr, TOOL_NAME ": %s\n", err.text);
        return TOOL_EXIT_ERROR;
    }
    rc = tool_dir_open(&kv, dir, TOOL_KV_SUBDIR, &err);
    if (rc != RK_OK) {
        fprintf(stderr, TOOL_NAME ": %s\n", err.text);
        tool_dir_close(&log);
        return TOOL_EXIT_ERROR;
    }
    bool check = r->cmd == TOOL_CHECK;
    /* check reports every problem that would stop the node starting: the store is verified
     * after a log problem too; dump and stats stop at the first. */
    int status = verify_log(r, &log);
    if (check && status != TOOL_EXIT_ERROR)
        report_log(r, &log, status == TOOL_EXIT_PROBLEM);
    if (status == TOOL_EXIT_OK || (check && status == TOOL_EXIT_PROBLEM)) {
        int st = verify_store(r, &kv);
        if (check && st != TOOL_EXIT_ERROR)
            report_store(r, &kv, st == TOOL_EXIT_PROBLEM);
        if (st == TOOL_EXIT_ERROR || status == TOOL_EXIT_OK)
            status = st;
    }
    if (status == TOOL_EXIT_OK)
        status = check_start(r);
    bool repairable = true;
    if (check) {
        fputs(r->pending, r->out);
        repairable = report_repair_plan(r);
    }
    if (check && status == TOOL_EXIT_PROBLEM)
        fprintf(r->out, "%u problem%s: %s\n", r->problems, r->problems == 1 ? "" : "s",
                repairable ? "the node repairs at its next start (repair plan)"
                           : "the node would not start");
    if (check && status == TOOL_EXIT_OK)
        fprintf(r->out, "ok\n");
    if (r->cmd == TOOL_STATS && status == TOOL_EXIT_OK)
        status = report_stats(r, &log, &kv);
    tool_dir_close(&kv);
    tool_dir_close(&log);
    return status;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(TOOL_NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry '" TOOL_NAME " --help'.\n", stderr);
    va_end(ap);
    return TOOL_EXIT_ERROR;
}

static bool parse_width(const char *s, size_t *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v > TOOL_WIDTH_MAX)
        return false;
    *out = (size_t)v;
    return true;
}

/* restore FILE --data-dir DIR --id N --peers LIST (backup_restore.h). */
static int run_restore(int argc, char **argv)
{
    struct backup_restore_config c = {0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(tool_usage, stdout);
            return TOOL_EXIT_OK;
        } else if (strcmp(a, "--data-dir") == 0 && has) {
            c.data_dir = argv[++i];
        } else if (strcmp(a, "--peers") == 0 && has) {
            c.peers = argv[++i];
        } else if (strcmp(a, "--id") == 0 && has) {
            char *end = NULL;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (end == argv[i] || *end != '\0' || v == 0)
                return usage_error("--id needs a member id (a positive integer)");
            c.id = v;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("restore: unknown option '%s' (or its value is missing)", a);
        } else if (c.file != NULL) {
            return usage_error("restore: one backup file only (extra argument '%s')", a);
        } else {
            c.file = a;
        }
    }
    if (c.file == NULL || c.data_dir == NULL || c.id == 0 || c.peers == NULL)
        return usage_error("restore FILE --data-dir DIR --id N --peers ID=HOST:PORT,... (all "
                           "required)");
    struct backup_restore_result res;
    struct rk_errmsg err = {{0}};
    int rc = backup_restore(&c, &res, &err);
    if (rc != RK_OK) {
        fprintf(stderr, TOOL_NAME ": restore: %s\n", err.text);
        return rc == RK_ECORRUPT || rc == RK_EMALFORMED ? TOOL_EXIT_PROBLEM : TOOL_EXIT_ERROR;
    }
    printf("restored %s into %s: index %" PRIu64 " term %" PRIu64 " (cluster %" PRIu64 "), %" PRIu64
           " keys, %" PRIu64 " records (%" PRIu64 " client sessions left out)\n"
           "start it with: raftkv-node --id %" PRIu64 " --peers %s --data-dir %s ...\n",
           c.file, c.data_dir, res.header.index, res.header.term, res.header.cluster_id, res.keys,
           res.header.records, res.sessions, c.id, c.peers, c.data_dir);
    return TOOL_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct tool_run r = {.width = TOOL_WIDTH_DEFAULT, .out = stdout};
    if (argc < 2)
        return usage_error("a command is required: check, dump or stats");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(tool_usage, stdout);
        return TOOL_EXIT_OK;
    }
    if (strcmp(cmd, "restore") == 0)
        return run_restore(argc, argv);
    if (strcmp(cmd, "check") == 0)
        r.cmd = TOOL_CHECK;
    else if (strcmp(cmd, "dump") == 0)
        r.cmd = TOOL_DUMP;
    else if (strcmp(cmd, "stats") == 0)
        r.cmd = TOOL_STATS;
    else
        return usage_error("unknown command '%s' (check, dump, stats or restore)", cmd);
    const char *dir = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(tool_usage, stdout);
            return TOOL_EXIT_OK;
        } else if (strcmp(a, "--width") == 0 && r.cmd == TOOL_DUMP) {
            if (i + 1 >= argc || !parse_width(argv[i + 1], &r.width))
                return usage_error("--width needs a number of bytes (0: never cut)");
            i++;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option '%s'", a);
        } else if (dir != NULL) {
            return usage_error("one directory only (extra argument '%s')", a);
        } else {
            dir = a;
        }
    }
    if (dir == NULL)
        return usage_error("%s: the data directory DIR is required", cmd);
    r.notes = r.cmd == TOOL_CHECK ? stdout : stderr;
    int status = run_command(&r, dir);
    free(r.terms);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, TOOL_NAME ": writing the report failed\n");
        return TOOL_EXIT_ERROR;
    }
    return status;
}
