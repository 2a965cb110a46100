/*
 * gen_corpus.c — fuzz-gen-corpus: writes the seed corpus of every fuzz target, made by the real
 * encoders and writers (so that the fuzzers start from inputs that reach deep):
 *   codec/     one frame of every Raft message type, handshake, forward(_resp), snap(_ack), and a
 *              stream of several frames
 *   resp/      requests as clients send them: multibulk (made with the reply encoders), inline,
 *              pipelined, partial
 *   scenario/  every shipped scenarios/NAME.scn, and the canonical form of the defaults
 *   seglog/    directories written by log_seglog (appends, rotation, compaction, truncation, a
 *              torn tail after a crash) on the simulated disk
 *   bitcask/   directories written by bitcask (batches, deletes, rotation, merge with hint files,
 *              a merge interrupted by a crash, a torn tail)
 *   sim/       fault schedules (fuzz_sim.c reads its input as choices)
 * in the input formats the targets document at their top. Deterministic: the same files every
 * run.
 *
 * Usage: fuzz-gen-corpus OUT_DIR SCENARIOS_DIR   (from the top: build/bin/fuzz-gen-corpus
 *        fuzz/corpus scenarios); files of the same name are replaced, others left alone.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "backup_file.h"
#include "bitcask/bitcask.h"
#include "codec/codec.h"
#include "common/crc32c.h"
#include "common/prng.h"
#include "fuzz_disk.h"
#include "kv/kv.h"
#include "log/log.h"
#include "resp/resp.h"
#include "scenario.h"

#define GEN_BUF_BYTES (1u << 20)

static const char *gen_out;
static unsigned gen_files;

struct gen_buf {
    uint8_t *p;
    size_t len;
};

static void gen_reset(struct gen_buf *b)
{
    if (b->p == NULL) {
        b->p = malloc(GEN_BUF_BYTES);
        FZ_CHECK(b->p != NULL, "out of memory");
    }
    b->len = 0;
}

static void gen_add(struct gen_buf *b, const void *p, size_t n)
{
    FZ_CHECK(b->len + n <= GEN_BUF_BYTES, "corpus file too big");
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void gen_u8(struct gen_buf *b, uint8_t v)
{
    gen_add(b, &v, 1);
}

/* A part of the length-prefixed format (fuzz_util.h). */
static void gen_part(struct gen_buf *b, const uint8_t *p, size_t n)
{
    FZ_CHECK(n <= UINT16_MAX, "a part of %zu bytes", n);
    gen_u8(b, (uint8_t)n);
    gen_u8(b, (uint8_t)(n >> 8));
    gen_add(b, p, n);
}

static void gen_mkdir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz-gen-corpus: mkdir %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void gen_write(const char *target, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", gen_out, target);
    gen_mkdir(path);
    snprintf(path, sizeof(path), "%s/%s/%s", gen_out, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "fuzz-gen-corpus: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    gen_files++;
}

/* ---- codec ------------------------------------------------------------------------------ */

static uint8_t gen_entry_data[3][16] = {{'s', 'e', 't', ' ', 'k', '1', ' ', 'v', '1'},
                                        {'d', 'e', 'l', ' ', 'k', '2'},
                                        {0}};

static void gen_codec_msg(struct gen_buf *stream, const struct raft_msg *m)
{
    uint8_t frame[1024];
    size_t len = 0;
    int rc = codec_encode_msg(m, frame, sizeof(frame), &len);
    FZ_CHECK(rc == RK_OK, "encode %s", raft_msg_type_name(m->type));
    struct gen_buf b = {0};
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_add(&b, frame, len);
    char name[64];
    snprintf(name, sizeof(name), "msg-%s", raft_msg_type_name(m->type));
    gen_write("codec", name, b.p, b.len);
    gen_add(stream, frame, len);
    free(b.p);
}

static void gen_codec(void)
{
    struct gen_buf stream = {0};
    gen_reset(&stream);
    gen_u8(&stream, 0);
    struct raft_entry es[3] = {
        {7, 101, RAFT_ENTRY_NOOP, 0, NULL},
        {7, 102, RAFT_ENTRY_NORMAL, 9, gen_entry_data[0]},
        {7, 103, RAFT_ENTRY_NORMAL, 6, gen_entry_data[1]},
    };
    for (uint8_t t = RAFT_MSG_PRE_VOTE; t < RAFT_MSG_TYPE_COUNT; t++) {
        struct raft_msg m;
        memset(&m, 0, sizeof(m));
        m.type = t, m.from = 1, m.to = 2, m.term = 7;
        switch (t) {
        case RAFT_MSG_PRE_VOTE:
        case RAFT_MSG_VOTE:
            m.log_index = 100, m.log_term = 6, m.transfer = t == RAFT_MSG_VOTE;
            break;
        case RAFT_MSG_PRE_VOTE_RESP:
        case RAFT_MSG_VOTE_RESP:
            m.reject = t == RAFT_MSG_PRE_VOTE_RESP;
            break;
        case RAFT_MSG_APPEND:
            m.log_index = 100, m.log_term = 6, m.commit = 99, m.n_entries = 3, m.entries = es;
            break;
        case RAFT_MSG_APPEND_RESP:
            m.reject = true, m.index = 100, m.conflict_term = 5, m.conflict_index = 90;
            break;
        case RAFT_MSG_HEARTBEAT:
            m.commit = 103, m.ctx = 42;
            break;
        case RAFT_MSG_HEARTBEAT_RESP:
        case RAFT_MSG_READ_INDEX:
            m.ctx = 42;
            break;
        case RAFT_MSG_READ_INDEX_RESP:
            m.ctx = 42, m.index = 103;
            break;
        default:
            break;
        }
        gen_codec_msg(&stream, &m);
    }
    gen_write("codec", "stream-all-messages", stream.p, stream.len);

    uint8_t frame[512];
    size_t len = 0;
    struct gen_buf b = {0};
    struct codec_handshake hs = {CODEC_PROTOCOL_VERSION, 0x1234, 3, 20000};
    FZ_CHECK(codec_encode_handshake(&hs, frame, sizeof(frame), &len) == RK_OK, "handshake");
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_add(&b, frame, len);
    gen_write("codec", "handshake", b.p, b.len);

    struct codec_forward fwd = {2, 1, 77, gen_entry_data[0], 9, 0, 0, 0, 0};
    FZ_CHECK(codec_encode_forward(CODEC_TYPE_FORWARD, &fwd, frame, sizeof(frame), &len) == RK_OK,
             "forward");
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_add(&b, frame, len);
    gen_write("codec", "forward", b.p, b.len);
    struct codec_forward resp = {1, 2, 77, NULL, 0, CODEC_FORWARD_NOT_LEADER, 0, 7, 3};
    FZ_CHECK(codec_encode_forward(CODEC_TYPE_FORWARD_RESP, &resp, frame, sizeof(frame), &len) ==
                 RK_OK,
             "forward_resp");
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_add(&b, frame, len);
    gen_write("codec", "forward-resp", b.p, b.len);

    struct codec_snap snap = {.from = 1,
                              .to = 2,
                              .term = 7,
                              .index = 500,
                              .snap_term = 6,
                              .xfer = 11,
                              .seq = 3,
                              .crc = 0x12345678u,
                              .last = true,
                              .data = gen_entry_data[0],
                              .len = 9};
    FZ_CHECK(codec_encode_snap(CODEC_TYPE_SNAP, &snap, frame, sizeof(frame), &len) == RK_OK,
             "snap");
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_add(&b, frame, len);
    gen_write("codec", "snap", b.p, b.len);
    /* The same chunk with mode 1 (the target re-seals the CRC): mutations reach the fields. */
    b.p[0] = 1;
    gen_write("codec", "snap-reseal", b.p, b.len);
    struct codec_snap ack = {
        .from = 2, .to = 1, .term = 7, .index = 500, .xfer = 11, .seq = 4, .done = true};
    FZ_CHECK(codec_encode_snap(CODEC_TYPE_SNAP_ACK, &ack, frame, sizeof(frame), &len) == RK_OK,
             "snap_ack");
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_add(&b, frame, len);
    gen_write("codec", "snap-ack", b.p, b.len);
    /* Configuration entries (property 3), version 1 and version 2 (with addresses). */
    struct raft_conf conf = {.n_voters = 3, .n_learners = 1, .voters = {1, 2, 3}, .learners = {4}};
    uint8_t cbuf[RAFT_CONF_ENCODED_MAX];
    size_t clen = raft_conf_encode(&conf, cbuf);
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_add(&b, cbuf, clen);
    gen_write("codec", "conf-v1", b.p, b.len);
    struct raft_member_addr a1 = {.id = 1, .peer = "127.0.0.1:7001", .client = "127.0.0.1:6001"};
    struct raft_member_addr a4 = {.id = 4, .peer = "node4.example:7004"};
    FZ_CHECK(raft_conf_set_addr(&conf, &a1) == RK_OK && raft_conf_set_addr(&conf, &a4) == RK_OK,
             "conf addresses");
    clen = raft_conf_encode(&conf, cbuf);
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_add(&b, cbuf, clen);
    gen_write("codec", "conf-v2", b.p, b.len);
    free(b.p);
    free(stream.p);
}

/* ---- resp ------------------------------------------------------------------------------- */

/* Appends a multibulk request of the space-separated words of cmd, made by the encoders. */
static void gen_resp_cmd(struct gen_buf *b, int argc, const char *const *argv)
{
    uint8_t out[1024];
    size_t pos = 0;
    FZ_CHECK(resp_array(out, sizeof(out), &pos, argc), "array");
    for (int i = 0; i < argc; i++)
        FZ_CHECK(resp_bulk(out, sizeof(out), &pos, (const uint8_t *)argv[i], strlen(argv[i])),
                 "bulk");
    gen_add(b, out, pos);
}

static void gen_resp_file(const char *name, uint8_t limits, uint8_t seed, const char *raw,
                          int argc, const char *const *argv)
{
    struct gen_buf b = {0};
    gen_reset(&b);
    gen_u8(&b, limits);
    gen_u8(&b, seed);
    if (argv != NULL)
        gen_resp_cmd(&b, argc, argv);
    if (raw != NULL)
        gen_add(&b, raw, strlen(raw));
    gen_write("resp", name, b.p, b.len);
    free(b.p);
}

static void gen_resp(void)
{
    static const char *const set[] = {"SET", "key:1", "hello"};
    static const char *const set_nx[] = {"SET", "k", "v", "NX"};
    static const char *const get[] = {"GET", "key:1"};
    static const char *const del[] = {"DEL", "a", "b", "c"};
    static const char *const incrby[] = {"INCRBY", "counter", "-5"};
    static const char *const echo[] = {"ECHO", "\x01\x02\r\n\xff"};
    static const char *const command[] = {"COMMAND"};
    gen_resp_file("set", 0, 1, NULL, 3, set);
    gen_resp_file("set-nx", 0, 2, NULL, 4, set_nx);
    gen_resp_file("get", 0, 3, NULL, 2, get);
    gen_resp_file("del", 0, 4, NULL, 4, del);
    gen_resp_file("incrby", 0, 5, NULL, 3, incrby);
    gen_resp_file("echo-binary", 0, 6, NULL, 2, echo);
    gen_resp_file("command", 0, 7, NULL, 1, command);
    gen_resp_file("small-limits", 1, 8, NULL, 4, del);
    gen_resp_file("inline-ping", 0, 9, "PING\r\n", 0, NULL);
    gen_resp_file("inline-quotes", 0, 10,
                  "SET \"a b\\x41\\n\" 'it\\'s'\r\nGET \"\\\"q\\\"\"\n", 0, NULL);
    gen_resp_file("inline-no-scratch", 2, 11, "SET \"a\\tb\" c\r\n", 0, NULL);
    gen_resp_file("empty-lines", 0, 12, "\r\n\n*0\r\n*-1\r\nPING\n", 0, NULL);
    gen_resp_file("partial", 0, 13, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel", 0, NULL);
    gen_resp_file("malformed-dollar", 0, 14, "*2\r\n$3\r\nGET\r\n:1\r\n", 0, NULL);
    gen_resp_file("negative-bulk", 0, 15, "*1\r\n$-1\r\n", 0, NULL);
    /* A pipeline: three requests in one buffer. */
    struct gen_buf b = {0};
    gen_reset(&b);
    gen_u8(&b, 0);
    gen_u8(&b, 16);
    gen_resp_cmd(&b, 3, set);
    gen_resp_cmd(&b, 2, get);
    gen_add(&b, "PING\r\n", 6);
    gen_resp_cmd(&b, 4, del);
    gen_write("resp", "pipeline", b.p, b.len);
    free(b.p);
}

/* ---- scenario --------------------------------------------------------------------------- */

static struct scenario gen_scn;

static void gen_scenario(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "fuzz-gen-corpus: %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (len > 4 && strcmp(name + len - 4, ".scn") == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            FILE *f = fopen(path, "rb");
            FZ_CHECK(f != NULL, "%s: %s", path, strerror(errno));
            static uint8_t text[1 << 16];
            size_t got = fread(text, 1, sizeof(text), f);
            fclose(f);
            gen_write("scenario", name, text, got);
        }
        free(names[i]);
    }
    free(names);
    scn_defaults(&gen_scn);
    snprintf(gen_scn.name, sizeof(gen_scn.name), "defaults.scn");
    static char text[1 << 16];
    size_t len = scn_print(&gen_scn, text, sizeof(text));
    FZ_CHECK(len < sizeof(text), "defaults too long");
    gen_write("scenario", "defaults-canonical.scn", (const uint8_t *)text, len);
}

/* ---- seglog ----------------------------------------------------------------------------- */

struct gen_log {
    struct simdisk *disk;
    struct fs *fs;
    struct log_seglog_config cfg;
    struct log_store *s;
    struct rk_errmsg err;
};

static void gen_log_open(struct gen_log *g)
{
    int rc = log_seglog_open(&g->cfg, &g->s, &g->err);
    FZ_CHECK(rc == RK_OK, "log open: %s", g->err.text);
}

static void gen_log_init(struct gen_log *g, uint64_t segment_bytes)
{
    memset(g, 0, sizeof(*g));
    g->disk = simdisk_create(7);
    FZ_CHECK(g->disk != NULL, "out of memory");
    g->fs = simdisk_fs(g->disk);
    g->cfg = (struct log_seglog_config){g->fs, NULL, segment_bytes, NULL};
    gen_log_open(g);
}

/* Appends entries from..to of term, with a hard state of that term, and syncs (if sync). */
static void gen_log_append(struct gen_log *g, uint64_t from, uint64_t to, uint64_t term,
                           uint64_t commit, bool sync)
{
    struct raft_hard_state hs = {term, 1, commit};
    FZ_CHECK(g->s->ops->set_hard_state(g->s, &hs, &g->err) == RK_OK, "hs: %s", g->err.text);
    for (uint64_t i = from; i <= to; i++) {
        char data[32];
        int n = snprintf(data, sizeof(data), "put k%" PRIu64 " v%" PRIu64, i % 5, i);
        struct raft_entry e = {term, i, i % 7 == 0 ? RAFT_ENTRY_NOOP : RAFT_ENTRY_NORMAL,
                               i % 7 == 0 ? 0 : (uint32_t)n, i % 7 == 0 ? NULL : (uint8_t *)data};
        FZ_CHECK(g->s->ops->append(g->s, &e, 1, &g->err) == RK_OK, "append: %s", g->err.text);
    }
    if (sync)
        FZ_CHECK(g->s->ops->sync(g->s, &g->err) == RK_OK, "sync: %s", g->err.text);
}

/* Writes the store's directory in fuzz_seglog's format with flags. */
static void gen_log_emit(struct gen_log *g, const char *name, uint8_t flags)
{
    if (g->s != NULL)
        g->s->ops->destroy(g->s);
    g->s = NULL;
    static struct fz_names names;
    fz_disk_list(g->fs, &names);
    struct gen_buf b = {0};
    gen_reset(&b);
    size_t hs_len = 0;
    uint8_t *hs = NULL;
    for (uint32_t i = 0; i < names.n; i++)
        if (strcmp(names.name[i], "hardstate") == 0)
            hs = fz_disk_read(g->fs, names.name[i], &hs_len);
    gen_u8(&b, (uint8_t)(flags | (hs != NULL ? 1 : 0)));
    gen_part(&b, hs, hs_len);
    free(hs);
    for (uint32_t i = 0; i < names.n; i++) {
        if (strncmp(names.name[i], "seg-", 4) != 0)
            continue;
        size_t n = 0;
        uint8_t *seg = fz_disk_read(g->fs, names.name[i], &n);
        FZ_CHECK(n + 1 <= UINT16_MAX, "segment too big");
        gen_u8(&b, (uint8_t)(n + 1));
        gen_u8(&b, (uint8_t)((n + 1) >> 8));
        gen_u8(&b, 0); /* delta: the name matches the first record */
        gen_add(&b, seg, n);
        free(seg);
    }
    gen_write("seglog", name, b.p, b.len);
    free(b.p);
    simdisk_destroy(g->disk);
}

static void gen_seglog(void)
{
    struct gen_log g;
    gen_log_init(&g, 0);
    gen_log_emit(&g, "empty", 0);

    gen_log_init(&g, 0);
    gen_log_append(&g, 1, 6, 1, 4, true);
    gen_log_emit(&g, "six-entries", 0);

    gen_log_init(&g, 256);
    gen_log_append(&g, 1, 10, 1, 8, true);
    gen_log_append(&g, 11, 24, 3, 20, true);
    gen_log_emit(&g, "rotated-segments", 2 << 2);

    gen_log_init(&g, 256);
    gen_log_append(&g, 1, 24, 2, 24, true);
    FZ_CHECK(g.s->ops->compact(g.s, 15, 2, &g.err) == RK_OK, "compact: %s", g.err.text);
    FZ_CHECK(g.s->ops->sync(g.s, &g.err) == RK_OK, "sync: %s", g.err.text);
    gen_log_emit(&g, "compacted", 1 << 2);

    gen_log_init(&g, 0);
    gen_log_append(&g, 1, 12, 2, 5, true);
    FZ_CHECK(g.s->ops->truncate(g.s, 8, &g.err) == RK_OK, "truncate: %s", g.err.text);
    gen_log_append(&g, 8, 10, 4, 6, true);
    gen_log_emit(&g, "truncated-and-rewritten", 0);

    /* A crash with torn writes: a tail of unsynced records, cut by recovery. */
    gen_log_init(&g, 0);
    gen_log_append(&g, 1, 5, 1, 3, true);
    struct simdisk_faults torn = {.torn_writes = true};
    simdisk_set_faults(g.disk, &torn);
    gen_log_append(&g, 6, 30, 1, 3, false);
    simdisk_crash(g.disk);
    g.s->ops->destroy(g.s);
    g.s = NULL;
    gen_log_emit(&g, "torn-tail", 0);

    /* Resealed by the target: a mutation inside a record keeps its CRC right. */
    gen_log_init(&g, 128);
    gen_log_append(&g, 1, 8, 5, 8, true);
    gen_log_emit(&g, "reseal", 16 | (1 << 2));
}

/* ---- bitcask ---------------------------------------------------------------------------- */

struct gen_bc {
    struct simdisk *disk;
    struct fs *fs;
    struct bc_config cfg;
    struct bitcask *bc;
    struct rk_errmsg err;
};

static void gen_bc_init(struct gen_bc *g, uint64_t max_file_bytes)
{
    memset(g, 0, sizeof(*g));
    g->disk = simdisk_create(9);
    FZ_CHECK(g->disk != NULL, "out of memory");
    g->fs = simdisk_fs(g->disk);
    g->cfg = (struct bc_config){g->fs, NULL, max_file_bytes, 0, 0, NULL, 0};
    FZ_CHECK(bc_open(&g->cfg, &g->bc, &g->err) == RK_OK, "bc_open: %s", g->err.text);
}

/* Batches from..to: each puts key index%keys (and deletes one every fifth), one batch each. */
static void gen_bc_batches(struct gen_bc *g, uint64_t from, uint64_t to, unsigned keys, bool sync)
{
    for (uint64_t i = from; i <= to; i++) {
        char key[16], val[32];
        int kn = snprintf(key, sizeof(key), "k%u", (unsigned)(i % keys));
        int vn = snprintf(val, sizeof(val), "value-%" PRIu64, i);
        FZ_CHECK(bc_put(g->bc, i, (uint8_t *)key, (uint32_t)kn, (uint8_t *)val, (uint32_t)vn,
                        &g->err) == RK_OK,
                 "put: %s", g->err.text);
        if (i % 5 == 0) {
            bool existed;
            kn = snprintf(key, sizeof(key), "k%u", (unsigned)((i + 1) % keys));
            FZ_CHECK(bc_del(g->bc, i, (uint8_t *)key, (uint32_t)kn, &existed, &g->err) == RK_OK,
                     "del: %s", g->err.text);
        }
        FZ_CHECK(bc_end_batch(g->bc, &g->err) == RK_OK, "end_batch: %s", g->err.text);
    }
    if (sync)
        FZ_CHECK(bc_sync(g->bc, &g->err) == RK_OK, "sync: %s", g->err.text);
}

/* Writes the store's directory in fuzz_bitcask's format with flags. */
static void gen_bc_emit(struct gen_bc *g, const char *name, uint8_t flags)
{
    if (g->bc != NULL)
        bc_close(g->bc);
    g->bc = NULL;
    static struct fz_names names;
    fz_disk_list(g->fs, &names);
    struct gen_buf b = {0};
    gen_reset(&b);
    gen_u8(&b, flags);
    for (uint32_t i = 0; i < names.n; i++) {
        const char *n = names.name[i];
        unsigned id = 0, kind;
        char ext[16] = "";
        if (strcmp(n, "MERGE") == 0)
            kind = 6;
        else if (strcmp(n, "MERGE.tmp") == 0)
            kind = 7;
        else if (sscanf(n, "%10u.%15s", &id, ext) == 2 && id >= 1 && id <= 8)
            kind = strcmp(ext, "data") == 0       ? 0
                   : strcmp(ext, "hint") == 0     ? 2
                   : strcmp(ext, "data.tmp") == 0 ? 4
                   : strcmp(ext, "hint.tmp") == 0 ? 5
                                                  : 8;
        else
            kind = 8;
        FZ_CHECK(kind < 8, "%s: no way to name it in fuzz_bitcask's format", n);
        size_t len = 0;
        uint8_t *file = fz_disk_read(g->fs, n, &len);
        FZ_CHECK(len + 1 <= UINT16_MAX, "file too big");
        gen_u8(&b, (uint8_t)(len + 1));
        gen_u8(&b, (uint8_t)((len + 1) >> 8));
        gen_u8(&b, (uint8_t)((kind << 3) | (id == 0 ? 0 : id - 1)));
        gen_add(&b, file, len);
        free(file);
    }
    gen_write("bitcask", name, b.p, b.len);
    free(b.p);
    simdisk_destroy(g->disk);
}

static void gen_bitcask(void)
{
    struct gen_bc g;
    gen_bc_init(&g, 0);
    gen_bc_emit(&g, "empty", 0);

    gen_bc_init(&g, 0);
    gen_bc_batches(&g, 1, 8, 4, true);
    gen_bc_emit(&g, "batches", 0);

    gen_bc_init(&g, 300);
    gen_bc_batches(&g, 1, 20, 6, true);
    gen_bc_emit(&g, "rotated", 2 << 2);

    gen_bc_init(&g, 300);
    gen_bc_batches(&g, 1, 20, 3, true);
    FZ_CHECK(bc_merge(g.bc, &g.err) == RK_OK, "merge: %s", g.err.text);
    gen_bc_batches(&g, 21, 23, 3, true);
    gen_bc_emit(&g, "merged-with-hints", 0);

    gen_bc_init(&g, 300);
    gen_bc_batches(&g, 1, 12, 3, true);
    FZ_CHECK(bc_merge(g.bc, &g.err) == RK_OK, "merge: %s", g.err.text);
    gen_bc_emit(&g, "merged-reseal-merge-again", 1 | 2 | (2 << 2));

    /* Merges interrupted by a crash at several fs calls: tmp files, a MERGE manifest. */
    for (uint64_t at = 6; at <= 30; at += 6) {
        gen_bc_init(&g, 300);
        gen_bc_batches(&g, 1, 12, 3, true);
        struct simdisk_faults crash = {.crash_at_call = at};
        simdisk_set_faults(g.disk, &crash);
        int rc = bc_merge(g.bc, &g.err);
        simdisk_crash(g.disk);
        bc_close(g.bc);
        g.bc = NULL;
        char name[64];
        snprintf(name, sizeof(name), "merge-crash-at-call-%" PRIu64 "%s", at,
                 rc == RK_OK ? "-done" : "");
        gen_bc_emit(&g, name, 0);
    }

    /* A torn tail after a crash. */
    gen_bc_init(&g, 0);
    gen_bc_batches(&g, 1, 4, 3, true);
    struct simdisk_faults torn = {.torn_writes = true};
    simdisk_set_faults(g.disk, &torn);
    gen_bc_batches(&g, 5, 40, 3, false);
    simdisk_crash(g.disk);
    bc_close(g.bc);
    g.bc = NULL;
    gen_bc_emit(&g, "torn-tail", 0);
}

/* ---- sim -------------------------------------------------------------------------------- */

/* ---- kvcmd ------------------------------------------------------------------------------ */

/* One generic command of one op into b as a part. */
static void gen_kv_op(struct gen_buf *b, uint64_t time_ms, uint64_t client, uint64_t seq,
                      uint8_t code, uint8_t db, uint16_t flags, int64_t num, uint32_t argc,
                      const char *const *argv)
{
    struct kv_arg args[8];
    for (uint32_t i = 0; i < argc; i++)
        args[i] = (struct kv_arg){.p = (const uint8_t *)argv[i], .len = (uint32_t)strlen(argv[i])};
    struct kv_op2 op = {
        .code = code, .db = db, .flags = flags, .num = num, .argc = argc, .argv = args};
    struct kv_cmd2 c = {
        .client_id = client, .seq = seq, .time_ms = time_ms, .n_ops = 1, .ops = &op};
    uint8_t buf[512];
    size_t len = 0;
    FZ_CHECK(kv_cmd2_encode(&c, buf, sizeof(buf), &len) == RK_OK, "kv op %u", code);
    gen_part(b, buf, len);
}

/* Entries for fuzz_kvcmd: writes with deadlines in several dbs, a transaction with a watch,
 * version-1 ops, the leader's purge, a restart (0xfe) and a read time (0xfd). */
static void gen_kvcmd(void)
{
    struct gen_buf b = {0};
    gen_reset(&b);
    const uint64_t t0 = 1700000000000ull;
    gen_kv_op(&b, t0, 0, 0, KV_C_SET, 0, KV_F_EXP, 10, 2, (const char *[]){"k", "v"});
    gen_kv_op(&b, t0, 1, 1, KV_C_SET, 3, KV_F_EXP | KV_F_MS | KV_F_GET, 50, 2,
              (const char *[]){"j", "w"});
    gen_kv_op(&b, t0 + 1, 1, 2, KV_C_INCRBY, 0, 0, 5, 1, (const char *[]){"n"});
    gen_kv_op(&b, t0 + 2, 0, 0, KV_C_APPEND, 0, 0, 0, 2, (const char *[]){"k", "tail"});
    gen_kv_op(&b, t0 + 3, 0, 0, KV_C_EXPIRE, 0, KV_F_GT, 100, 1, (const char *[]){"k"});
    gen_kv_op(&b, t0 + 4, 0, 0, KV_C_RENAME, 0, 0, 0, 2, (const char *[]){"k", "k2"});
    gen_kv_op(&b, t0 + 5, 0, 0, KV_C_COPY, 0, 0, 4, 2, (const char *[]){"k2", "k2"});
    gen_kv_op(&b, t0 + 6, 0, 0, KV_C_INCRBYFLOAT, 0, 0, 0, 2, (const char *[]){"f", "1.5"});
    gen_kv_op(&b, t0 + 7, 0, 0, KV_C_MSET, 1, 0, 0, 4, (const char *[]){"a", "1", "b", "2"});
    static const uint8_t restart = 0xfe;
    gen_part(&b, &restart, 1);
    gen_kv_op(&b, t0 + 100, 0, 0, KV_C_PURGE, 0, 0, 0, 2, (const char *[]){"3j", "0k2"});
    gen_kv_op(&b, t0 + 100, 0, 0, KV_C_GET, 0, 0, 0, 1, (const char *[]){"k2"});
    gen_kv_op(&b, t0 + 100, 0, 0, KV_C_FLUSHDB, 1, 0, 0, 0, NULL);
    /* A transaction watching "n" at index 3 (its version then: the index that wrote it). */
    struct kv_arg set[2] = {{(const uint8_t *)"out", 3}, {(const uint8_t *)"1", 1}};
    struct kv_arg del[1] = {{(const uint8_t *)"n", 1}};
    struct kv_op2 ops[2] = {{.code = KV_C_SET, .argc = 2, .argv = set},
                            {.code = KV_C_DEL, .argc = 1, .argv = del}};
    struct kv_watch w = {.db = 0, .version = 3, .key = (const uint8_t *)"n", .key_len = 1};
    struct kv_cmd2 multi = {.flags = KV_CMD2_MULTI,
                            .time_ms = t0 + 101,
                            .watch_index = 3,
                            .n_watch = 1,
                            .watches = &w,
                            .n_ops = 2,
                            .ops = ops};
    uint8_t buf[512];
    size_t len = 0;
    FZ_CHECK(kv_cmd2_encode(&multi, buf, sizeof(buf), &len) == RK_OK, "multi");
    gen_part(&b, buf, len);
    struct kv_cmd v1 = {.op = KV_OP_PUT,
                        .key = (const uint8_t *)"v1",
                        .key_len = 2,
                        .val = (const uint8_t *)"x",
                        .val_len = 1};
    FZ_CHECK(kv_cmd_encode(&v1, buf, sizeof(buf), &len) == RK_OK, "v1");
    gen_part(&b, buf, len);
    uint8_t read_time[9] = {0xfd};
    for (int i = 0; i < 8; i++)
        read_time[1 + i] = (uint8_t)((t0 + 200) >> (8 * i));
    gen_part(&b, read_time, sizeof(read_time));
    gen_kv_op(&b, 0, 0, 0, KV_C_TTL, 0, KV_F_MS, 0, 1, (const char *[]){"k2"});
    gen_write("kvcmd", "mixed", b.p, b.len);
    free(b.p);
}

/* ACL users for fuzz_kvcmd (core/kv/acl.h): SETUSER with every kind of rule, a refused rule, a
 * transaction that makes one, DELUSER (and of default: refused), a restart that reloads them. */
static void gen_kvcmd_acl(void)
{
    struct gen_buf b = {0};
    gen_reset(&b);
    const char *hash = "#30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4";
    gen_kv_op(&b, 0, 0, 0, KV_C_ACL_SETUSER, 0, 0, 0, 8,
              (const char *[]){"alice", "on", hash, "~k*", "%R~r*", "&ch", "+@read", "-get"});
    gen_kv_op(&b, 0, 0, 0, KV_C_ACL_SETUSER, 0, 0, 0, 6,
              (const char *[]){"bob", "nopass", "allkeys", "+@all", "-@dangerous", "+config|get"});
    gen_kv_op(&b, 0, 0, 0, KV_C_ACL_SETUSER, 0, 0, 0, 3, (const char *[]){"bob", "~x", "bogus"});
    gen_kv_op(&b, 0, 0, 0, KV_C_ACL_SETUSER, 0, 0, 0, 3,
              (const char *[]){"default", "resetpass", hash});
    struct kv_arg mk[2] = {{(const uint8_t *)"carol", 5}, {(const uint8_t *)"reset", 5}};
    struct kv_arg set[2] = {{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}};
    struct kv_op2 ops[2] = {{.code = KV_C_SET, .argc = 2, .argv = set},
                            {.code = KV_C_ACL_SETUSER, .argc = 2, .argv = mk}};
    struct kv_cmd2 multi = {.flags = KV_CMD2_MULTI, .n_ops = 2, .ops = ops};
    uint8_t buf[512];
    size_t len = 0;
    FZ_CHECK(kv_cmd2_encode(&multi, buf, sizeof(buf), &len) == RK_OK, "multi");
    gen_part(&b, buf, len);
    static const uint8_t restart = 0xfe;
    gen_part(&b, &restart, 1);
    gen_kv_op(&b, 0, 0, 0, KV_C_ACL_DELUSER, 0, 0, 0, 2, (const char *[]){"bob", "default"});
    gen_kv_op(&b, 0, 0, 0, KV_C_ACL_DELUSER, 0, 0, 0, 3, (const char *[]){"bob", "nobody", "bob"});
    gen_part(&b, &restart, 1);
    gen_write("kvcmd", "acl", b.p, b.len);
    free(b.p);
}

static void gen_sim(void)
{
    struct rk_prng prng;
    rk_prng_seed(&prng, 2024);
    for (int i = 0; i < 12; i++) {
        uint8_t bytes[96];
        size_t n = 32 + (size_t)rk_prng_below(&prng, sizeof(bytes) - 32);
        for (size_t j = 0; j < n; j++)
            bytes[j] = (uint8_t)rk_prng_next(&prng);
        char name[32];
        snprintf(name, sizeof(name), "random-%02d", i);
        gen_write("sim", name, bytes, n);
    }
    /* All choices 0: three nodes, defaults, no step. */
    static const uint8_t zero[4] = {0};
    gen_write("sim", "quiet", zero, sizeof(zero));
}


/* ---- backup ------------------------------------------------------------------------------ */

/* A backup file of n records in chunks closed at target bytes (raftkv-cli's layout), behind the
 * flags byte of fuzz_backup.c. */
static void gen_backup_file(const char *name, uint8_t flags, unsigned n, size_t target)
{
    static struct gen_buf b;
    gen_reset(&b);
    gen_u8(&b, flags);
    size_t head = b.len;
    uint8_t zero[BACKUP_HEADER_BYTES] = {0};
    gen_add(&b, zero, sizeof(zero));
    struct backup_header h = {.cluster_id = 1, .index = 100 + n, .term = 3};
    struct backup_chunk c = {0};
    backup_chunk_reset(&c);
    for (unsigned i = 0; i <= n; i++) {
        if (i < n) {
            char key[32], val[64];
            int kl = snprintf(key, sizeof(key), "%ckey%u", i % 3 ? '0' + (int)(i % 16) : 's', i);
            int vl = snprintf(val, sizeof(val), "value-%u", i * 7919u);
            FZ_CHECK(backup_chunk_add(&c, (const uint8_t *)key, (uint32_t)kl,
                                      (const uint8_t *)val, (uint32_t)(i % 5 ? vl : 0)),
                     "chunk add");
        }
        if (c.records > 0 && (i == n || c.len - BACKUP_CHUNK_HEAD_BYTES >= target)) {
            backup_chunk_seal(&c);
            gen_add(&b, c.buf, c.len);
            h.body_crc = rk_crc32c(h.body_crc, c.buf, c.len);
            h.body_bytes += c.len;
            h.records += c.records;
            h.chunks++;
            backup_chunk_reset(&c);
        }
    }
    backup_chunk_free(&c);
    backup_header_encode(&h, b.p + head);
    gen_write("backup", name, b.p, b.len);
}

static void gen_backup(void)
{
    gen_backup_file("empty", 0, 0, 256);
    gen_backup_file("one", 0, 1, 256);
    gen_backup_file("chunks", 0, 40, 256);
    gen_backup_file("chunks-reseal", 1, 40, 256);
    gen_backup_file("big-chunk-reseal", 1, 30, 1u << 20);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz-gen-corpus OUT_DIR SCENARIOS_DIR\n"
                        "  e.g. build/bin/fuzz-gen-corpus fuzz/corpus scenarios\n");
        return 2;
    }
    gen_out = argv[1];
    gen_mkdir(gen_out);
    gen_codec();
    gen_resp();
    gen_scenario(argv[2]);
    gen_seglog();
    gen_bitcask();
    gen_sim();
    gen_kvcmd();
    gen_backup();
    gen_kvcmd_acl();
    printf("fuzz-gen-corpus: %u files under %s\n", gen_files, gen_out);
    return 0;
}
