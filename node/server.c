/*
 * server.c — raftkv-node's loop (Redis's ae.c and server.c): one thread, one epoll loop
 * (level-triggered), non-blocking sockets:
 *   timerfd        every tick_ms: replica_tick (missed expirations are caught up, at most 10)
 *   signalfd       SIGTERM, SIGINT: stop accepting, finish or fail in-flight requests, exit 0 (N6)
 *   peer listen    peer.c; client listen: conn.c
 *
 * EVERY call into core/replica is in this file (tick, recv, submit_batch, flush, output, info,
 * scans, transfer): the rest of node/ goes through the server_* functions of server.h. Requests
 * parsed during one turn are submitted as one batch and the replica is flushed once at the end of
 * the turn (group commit, N5).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bitcask/bitcask.h"
#include "commands.h"
#include "common/alloc.h"
#include "fs_posix.h"
#include "kv/view.h"
#include "log/log.h"
#include "server.h"
#include "storage.h"
#include "tls.h"

/* ------------------------------------------------------------------------------------------ */
/* Logging and time                                                                         */

uint64_t g_node_id;

/* One line, in one write (the storage and merge threads log too): ts, level, node, the event
 * and its pairs if any, then msg quoted, with \ " and control characters escaped so that the
 * line stays one line a log shipper can split on spaces outside quotes (node/README.md
 * "Logs"). */
static void log_line(const char *level, const char *event, const char *kv, const char *msg)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    char q[2048];
    size_t k = 0;
    for (const char *p = msg; *p != 0 && k + 3 < sizeof(q); p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            q[k++] = '\\';
            q[k++] = (char)ch;
        } else if (ch == '\n') {
            q[k++] = '\\';
            q[k++] = 'n';
        } else {
            q[k++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
        }
    }
    q[k] = 0;
    if (strcmp(level, "warning") == 0)
        level = "warn";
    bool has_kv = kv != NULL && kv[0] != 0;
    fprintf(stderr, "ts=%s.%03ldZ level=%s node=%" PRIu64 "%s%s%s%s msg=\"%s\"\n", when,
            ts.tv_nsec / 1000000, level, g_node_id, event ? " event=" : "", event ? event : "",
            has_kv ? " " : "", has_kv ? kv : "", q);
}

void node_log(const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_line(level, NULL, NULL, line);
}

void node_event(const char *level, const char *event, const char *msg, const char *kv, ...)
{
    char pairs[1024] = "";
    if (kv != NULL) {
        va_list ap;
        va_start(ap, kv);
        vsnprintf(pairs, sizeof(pairs), kv, ap);
        va_end(ap);
    }
    log_line(level, event, pairs, msg);
}

void node_raft_log_sink(void *ctx, int level, const char *text)
{
    (void)ctx;
    /* syslog levels, as raft uses them: 3 error, 4 warning, 6 info, 7 debug */
    node_log(level <= 3 ? "error" : level <= 5 ? "warn" : level == 6 ? "info" : "debug", "%s", text);
}

uint64_t node_unix_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t node_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t node_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int ep_set(struct node *n, int op, int fd, uint32_t events, void *tag)
{
    struct epoll_event ev = {.events = events, .data.ptr = tag};
    if (epoll_ctl(n->ep, op, fd, &ev) != 0) {
        node_log("error", "epoll_ctl fd %d: %s", fd, strerror(errno));
        return -1;
    }
    return 0;
}

int node_resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(hostport, ':');
    if (colon == NULL || colon == hostport || (size_t)(colon - hostport) >= sizeof(host) ||
        colon[1] == 0)
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int node_listen(const struct sockaddr_storage *ss, socklen_t len, const char *what)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 512) != 0) {
        node_log("error", "cannot listen on %s: %s", what, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}


static void drain_outputs(struct node *n)
{
    struct replica_output out;
    replica_output(n->rep, &out);
    /* Log writes first, so the storage thread starts on them while the frames go out: a
     * leader's APPENDs leave before its own sync is done (§10.2.1). */
    if (out.n_log_jobs > 0 &&
        node_storage_submit(n->storage, (void *const *)out.log_jobs, out.n_log_jobs) != RK_OK)
        n->storage_failed = true;
    /* The store's writes of what was applied (bitcask.h, DEFERRED WRITES). */
    struct bc_io_job *sj = bc_io_take(n->bc);
    if (sj != NULL && node_storage_submit(n->store_io, (void *const *)&sj, 1) != RK_OK)
        n->storage_failed = true;
    for (size_t i = 0; i < out.n_frames; i++)
        peer_send(n, &out.frames[i]);
    for (size_t i = 0; i < out.n_replies; i++) {
        const struct replica_reply *rp = &out.replies[i];
        uint32_t s = (uint32_t)(rp->req_id % SLOTS_MAX);
        struct slot *sl = &n->slots[s];
        if (sl->req_id != rp->req_id || rp->req_id == 0) {
            node_log("warn", "reply for unknown request %" PRIu64, rp->req_id);
            continue;
        }
        struct client *c = sl->c;
        node_metrics_reply(n, sl, rp);
        item_on_reply(n, sl->it, sl->part, rp);
        sl->req_id = 0;
        n->free_slots[n->n_free_slots++] = s;
        c->outstanding--;
        n->outstanding--;
        conn_collect(n, c);
        conn_free_if_done(n, c);
    }
}

/* Submits the batch of this turn (N5). */
static void batch_flush(struct node *n)
{
    if (n->n_batch == 0)
        return;
    replica_submit_batch(n->rep, n->batch, n->n_batch);
    n->n_batch = 0;
    n->arena.len = n->arena.off = 0; /* the replica copied what it keeps */
    drain_outputs(n);
}

/* Makes room in the batch for one more request whose borrowed bytes need arena_bytes of the
 * arena (MSET's pairs). A full batch, or an arena that would have to move the bytes earlier
 * requests borrow, is submitted first. false when out of memory. */
bool server_batch_room(struct node *n, size_t arena_bytes)
{
    if (n->n_batch == BATCH_MAX ||
        (n->arena.len > 0 && n->arena.cap - n->arena.len < arena_bytes))
        batch_flush(n);
    return buf_reserve(&n->arena, arena_bytes);
}

/* Queues one replica request for part `part` of item it of client c. Key and value are borrowed
 * (from c's input buffer or the arena) until batch_flush (N5). cond: PUT_IF's; delta:
 * INCRBY's; 0 otherwise. */
void server_request(struct node *n, struct client *c, struct item *it, uint32_t part, uint8_t op,
                    const struct resp_arg *key, const struct resp_arg *val, uint8_t cond,
                    int64_t delta)
{
    if (n->n_batch == BATCH_MAX)
        batch_flush(n);
    if (n->n_free_slots == 0) {
        struct replica_reply rp = {.status = REPLICA_TRYAGAIN, .reason = "too many requests"};
        it->waiting++;
        item_on_reply(n, it, part, &rp);
        return;
    }
    uint32_t s = n->free_slots[--n->n_free_slots];
    n->slot_gen++;
    uint64_t req_id = n->slot_gen * SLOTS_MAX + s;
    bool read = replica_op_is_read(op) ||
                (op == REPLICA_CMD && kv_cmd2_is_read(val->ptr, (uint32_t)val->len));
    n->slots[s] = (struct slot){.req_id = req_id,
                                .c = c,
                                .it = it,
                                .op = op,
                                .part = part,
                                .read = read,
                                .submit_us = node_now_us()};
    it->waiting++;
    c->outstanding++;
    n->outstanding++;
    if (read)
        n->metrics->reads++;
    else
        n->metrics->proposals++;
    /* The connection's session: its requests take effect in the order they were sent, and a
     * write forwarded or retried inside the cluster applies at most once. A client that retries
     * after a TIMEOUT sends a new request (a new seq), as with Redis. */
    n->batch[n->n_batch++] = (struct replica_request){
        .req_id = req_id,
        .op = op,
        .client_id = c->session,
        .seq = read ? 0 : ++c->write_seq,
        .key = key->ptr,
        .key_len = (uint32_t)key->len,
        .val = val ? val->ptr : NULL,
        .val_len = val ? (uint32_t)val->len : 0,
        .cond = cond,
        .delta = delta,
    };
}

/* A command at least this big is encoded into a buffer of its own that the replica takes
 * (replica_request.val_take): a 64 MiB value is copied once on the loop, not twice. */
#define CMD_TAKE_BYTES (256u << 10)

/* server_request of a command kv_cmd2_encode wrote (val): marked encoded, so the replica does
 * not decode it again before apply (replica_request.encoded). The request queued, or NULL if it
 * was answered at once (no free slot). */
static struct replica_request *cmd_request(struct node *n, struct client *c, struct item *it,
                                           const struct resp_arg *key, const struct resp_arg *val)
{
    size_t before = n->n_batch;
    server_request(n, c, it, 0, REPLICA_CMD, key, val, 0, 0);
    if (n->n_batch == 0 || n->batch[n->n_batch - 1].val != val->ptr ||
        (n->n_batch <= before && before != BATCH_MAX))
        return NULL;
    struct replica_request *q = &n->batch[n->n_batch - 1];
    q->encoded = true;
    return q;
}

bool server_cmd(struct node *n, struct client *c, struct item *it, const struct kv_cmd2 *cmd)
{
    size_t size = kv_cmd2_size(cmd);
    if (size == SIZE_MAX || size > n->lim.max_command)
        return false;
    static const struct resp_arg no_key = {.ptr = (const uint8_t *)"", .len = 0};
    if (size >= CMD_TAKE_BYTES) {
        uint8_t *own = malloc(size); /* the replica's allocator is libc's (server_start) */
        size_t len = 0;
        if (own == NULL || kv_cmd2_encode(cmd, own, size, &len) != RK_OK) {
            free(own);
            return false;
        }
        struct resp_arg val = {.ptr = own, .len = len};
        struct replica_request *q = cmd_request(n, c, it, &no_key, &val);
        if (q != NULL)
            q->val_take = own;
        else
            free(own); /* answered at once (no free slot): never queued */
        return true;
    }
    if (!server_batch_room(n, size))
        return false;
    size_t len = 0;
    uint8_t *blob = n->arena.p + n->arena.len;
    if (kv_cmd2_encode(cmd, blob, n->arena.cap - n->arena.len, &len) != RK_OK)
        return false;
    n->arena.len += len;
    static const struct resp_arg none = {.ptr = (const uint8_t *)"", .len = 0};
    struct resp_arg val = {.ptr = blob, .len = len};
    cmd_request(n, c, it, &none, &val);
    return true;
}

bool server_mget(struct node *n, struct client *c, struct item *it, const struct resp_arg *keys,
                 uint32_t n_keys)
{
    for (uint32_t i = 0; i < n_keys; i++) {
        n->mkeys[i] = keys[i].ptr;
        n->mkey_lens[i] = (uint32_t)keys[i].len;
    }
    size_t size = replica_keys_size(n->mkeys, n->mkey_lens, n_keys);
    if (size == 0 || size > n->lim.max_command || !server_batch_room(n, size))
        return false;
    size_t len = 0;
    uint8_t *blob = n->arena.p + n->arena.len;
    if (replica_keys_encode(n->mkeys, n->mkey_lens, n_keys, blob, n->arena.cap - n->arena.len,
                            &len) != RK_OK)
        return false;
    n->arena.len += len;
    static const struct resp_arg none = {.ptr = (const uint8_t *)"", .len = 0};
    struct resp_arg val = {.ptr = blob, .len = len};
    server_request(n, c, it, 0, REPLICA_MGET, &none, &val, 0, 0);
    return true;
}

/* A read barrier: a GET whose value nobody needs, answered once this node's state machine has
 * applied everything committed when it was asked (ReadIndex). KEYS, SCAN and DBSIZE read the
 * state machine when it is answered, so they are linearizable like GET. */
void server_barrier(struct node *n, struct client *c, struct item *it)
{
    static const struct resp_arg none = {.ptr = (const uint8_t *)"", .len = 0};
    server_request(n, c, it, 0, REPLICA_GET, &none, NULL, 0, 0);
}

/* REPLICA_READ: the replica calls this when the read is served (replica.h config.on_read),
 * before its reply; the item encodes its reply from the state machine as applied now. */
static void on_read(void *ctx, struct replica *r, uint64_t req_id)
{
    (void)r;
    struct node *n = ctx;
    struct slot *sl = &n->slots[req_id % SLOTS_MAX];
    if (sl->req_id != req_id || req_id == 0 || sl->it->on_read == NULL)
        return;
    sl->it->on_read(n, sl->it);
}

void server_read(struct node *n, struct client *c, struct item *it)
{
    static const struct resp_arg none = {.ptr = (const uint8_t *)"", .len = 0};
    server_request(n, c, it, 0, REPLICA_READ, &none, NULL, 0, 0);
}

int server_scan_db(struct node *n, uint8_t db,
                   bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx)
{
    return replica_scan_db(n->rep, db, fn, ctx);
}

int server_scan_db_range(struct node *n, uint8_t db, uint64_t cursor, uint64_t budget,
                         bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx,
                         uint64_t *next)
{
    return replica_scan_db_range(n->rep, db, cursor, budget, fn, ctx, next);
}

const struct kv *server_kv(struct node *n)
{
    return replica_kv(n->rep);
}

void server_applied_at(struct node *n, uint64_t *index, uint64_t *term)
{
    *index = kv_applied_index(replica_kv(n->rep));
    *term = raft_term_at(replica_raft(n->rep), *index);
}

void server_peer_frame(struct node *n, uint64_t from, const uint8_t *frame, size_t len)
{
    struct rk_errmsg err = {{0}};
    int rc = replica_recv(n->rep, from, frame, len, &err);
    if (rc != RK_OK)
        node_log("debug", "peer %" PRIu64 ": frame dropped: %s", from, err.text);
    drain_outputs(n);
}

void server_peer_frame_pieces(struct node *n, uint64_t from, const uint8_t *frame, size_t len)
{
    struct rk_errmsg err = {{0}};
    int rc = replica_recv_pieces(n->rep, from, frame, len, &err);
    if (rc != RK_OK)
        node_log("debug", "peer %" PRIu64 ": frame dropped: %s", from, err.text);
    drain_outputs(n);
}

void server_frame_release(struct node *n, uint64_t hold)
{
    if (n->rep != NULL)
        replica_frame_release(n->rep, hold);
}

int server_scan_keys(struct node *n, bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len),
                     void *ctx)
{
    return replica_scan_keys(n->rep, fn, ctx);
}

uint64_t server_key_count(struct node *n)
{
    return kv_count(replica_kv(n->rep));
}

void server_info(struct node *n, struct replica_info *st)
{
    replica_info(n->rep, st);
}

/* DATA-DIR/incarnation: this node's start count, a decimal number below 2^24, incremented at
 * every start (a temporary file written and synced, renamed over it, the directory synced)
 * before any client is served, so that the session ids of this start (replica_client_id) were
 * never used by an earlier one. A file that does not hold such a number is replaced by a random
 * start (logged): ids stay unique with high probability, nothing is refused. */
static int next_incarnation(const char *dir, uint32_t *out)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/incarnation", dir);
    snprintf(tmp, sizeof(tmp), "%s/incarnation.tmp", dir);
    uint32_t cur = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        unsigned long v = 0;
        char extra;
        if (fscanf(f, "%lu %c", &v, &extra) != 1 || v > 0xffffffu) {
            if (getrandom(&cur, sizeof(cur), 0) != (ssize_t)sizeof(cur))
                cur = (uint32_t)node_now_ms();
            cur &= 0xffffffu;
            node_log("warn", "%s: not a start count; counting on from a random %u", path, cur);
        } else {
            cur = (uint32_t)v;
        }
        fclose(f);
    }
    uint32_t next = (cur + 1) & 0xffffffu;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char text[16];
    int len = snprintf(text, sizeof(text), "%u\n", next);
    bool ok = fd >= 0 && write(fd, text, (size_t)len) == len && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    ok = ok && rename(tmp, path) == 0;
    int dfd = ok ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    ok = ok && dfd >= 0 && fsync(dfd) == 0;
    if (dfd >= 0)
        close(dfd);
    if (!ok) {
        node_log("error", "%s: cannot write the start count: %s", path, strerror(errno));
        return -1;
    }
    *out = next;
    return 0;
}

static int open_storage(struct node *n, const char *dir)
{
    struct rk_errmsg err = {{0}};
    char path[PATH_MAX + 8];
    int rc = fs_posix_open(dir, true, &n->fs_root, &err);
    if (rc == RK_OK) {
        snprintf(path, sizeof(path), "%s/log", dir);
        rc = fs_posix_open(path, true, &n->fs_log, &err);
    }
    if (rc == RK_OK) {
        snprintf(path, sizeof(path), "%s/kv", dir);
        rc = fs_posix_open(path, true, &n->fs_kv, &err);
    }
    if (rc == RK_OK) {
        /* The log and the store, repaired from peers if damaged (issue #15: replica.h,
         * core/log/INTEGRITY.md). */
        struct replica_storage_config sc = {.log_fs = n->fs_log,
                                            .store_fs = n->fs_kv,
                                            .alloc = rk_alloc_libc(),
                                            .max_file_bytes = n->opt.store_file_bytes,
                                            .merge_id_gap = NODE_MERGE_ID_GAP};
        struct replica_storage st;
        rc = replica_storage_open(&sc, &st, &err);
        if (rc == RK_OK) {
            n->log = st.log;
            n->bc = st.bc;
            n->store = bc_kv_store(n->bc);
            struct kv_store *w = kv_views_wrap(rk_alloc_libc(), n->store);
            if (w == NULL)
                rc = rk_errf(&err, RK_ENOMEM, "no memory for the store's views (kv/view.h)");
            else
                n->store = w;
            if (st.repairs > 0) {
                char msg[1024];
                snprintf(msg, sizeof(msg), "repaired the data directory %.400s: %.500s", dir,
                         st.repaired);
                node_event("warn", "repair", msg, "repairs=%" PRIu32, (uint32_t)st.repairs);
            }
            node_merge_log_open(n->bc, node_log);
        }
    }
    if (rc == RK_OK)
        rc = fs_posix_open(path, false, &n->fs_merge, &err); /* DIR/kv, the merge thread's */
    if (rc == RK_OK)
        rc = fs_posix_open(path, false, &n->fs_store, &err); /* DIR/kv, the store thread's */
    if (rc == RK_OK)
        bc_set_deferred(n->bc, n->fs_store); /* the store's writes leave the loop */
    if (rc != RK_OK) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "cannot open the data directory %.400s: %.500s", dir, err.text);
        node_event("error", "storage_error", msg, "op=open");
    }
    return rc;
}

static void close_storage(struct node *n)
{
    if (n->store)
        n->store->ops->destroy(n->store); /* closes the bitcask */
    if (n->log)
        n->log->ops->destroy(n->log);
    fs_posix_close(n->fs_merge);
    fs_posix_close(n->fs_store);
    fs_posix_close(n->fs_kv);
    fs_posix_close(n->fs_log);
    fs_posix_close(n->fs_root);
}

static int setup_fds(struct node *n, const char *client_addr)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (node_resolve(client_addr, &ss, &sl) != 0) {
        node_log("error", "--client: cannot resolve '%s' (HOST:PORT)", client_addr);
        return -1;
    }
    n->ep = epoll_create1(EPOLL_CLOEXEC);
    n->plisten_fd = node_listen(&n->self_addr, n->self_addr_len, n->self_peer_addr);
    /* Port 0: no plaintext client port (config.c allows it only with a tls-port), as Redis's
     * `port 0`. The tls-port listens on the same host. */
    bool plain = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port != 0
                                          : ((struct sockaddr_in *)&ss)->sin_port != 0;
    n->clisten_fd = plain ? node_listen(&ss, sl, client_addr) : -1;
    n->tlisten_fd = -1;
    if (n->opt.tls_port != 0) {
        char what[300];
        snprintf(what, sizeof(what), "%s (tls-port %u)", client_addr, n->opt.tls_port);
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)n->opt.tls_port);
        else
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)n->opt.tls_port);
        n->tlisten_fd = node_listen(&ss, sl, what);
        if (n->tlisten_fd < 0)
            return -1;
    }
    if (n->ep < 0 || n->plisten_fd < 0 || (plain && n->clisten_fd < 0))
        return -1;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    /* SIGHUP reloads the TLS certificates (node/README.md "TLS"), through the signalfd like the
     * others, so nothing happens in a handler; without TLS it is logged and ignored, as Redis
     * ignores it: a closed terminal, or the kernel's hangup of an orphaned process group with a
     * stopped member, must not stop a node. */
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    n->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    n->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (n->signal_fd < 0 || n->timer_fd < 0) {
        node_log("error", "signalfd/timerfd: %s", strerror(errno));
        return -1;
    }
    struct itimerspec its = {
        .it_interval = {.tv_sec = n->tick_ms / 1000, .tv_nsec = (long)(n->tick_ms % 1000) * 1000000},
    };
    its.it_value = its.it_interval;
    timerfd_settime(n->timer_fd, 0, &its, NULL);
    n->timer_tag.kind = EV_TIMER;
    n->signal_tag.kind = EV_SIGNAL;
    n->plisten_tag.kind = EV_PEER_LISTEN;
    n->clisten_tag.kind = EV_CLIENT_LISTEN;
    n->tlisten_tag.kind = EV_TLS_LISTEN;
    for (size_t i = 0; i < PENDING_CONNS_MAX; i++) {
        n->pending[i].tag.kind = EV_PENDING;
        n->pending[i].c.fd = -1;
    }
    if (ep_set(n, EPOLL_CTL_ADD, n->timer_fd, EPOLLIN, &n->timer_tag) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, n->signal_fd, EPOLLIN, &n->signal_tag) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, n->plisten_fd, EPOLLIN, &n->plisten_tag) != 0 ||
        (n->clisten_fd >= 0 &&
         ep_set(n, EPOLL_CTL_ADD, n->clisten_fd, EPOLLIN, &n->clisten_tag) != 0) ||
        (n->tlisten_fd >= 0 &&
         ep_set(n, EPOLL_CTL_ADD, n->tlisten_fd, EPOLLIN, &n->tlisten_tag) != 0))
        return -1;
    return 0;
}

static void on_timer(struct node *n)
{
    uint64_t expirations = 0;
    if (read(n->timer_fd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
        return;
    if (expirations > TICKS_CATCHUP_MAX)
        expirations = TICKS_CATCHUP_MAX;
    for (uint64_t i = 0; i < expirations; i++) {
        replica_tick(n->rep);
        drain_outputs(n);
    }
    peer_timer(n);
    node_metrics_timer(n);
    node_merge_tick(n->merge, node_now_ms());
}

/* Log writes the storage thread finished: back to the replica, in order (replica.h). Deferred
 * like every other input: end_of_turn runs the ready loop once for all of them. */
static void on_storage_done(struct node *n)
{
    void *done[256];
    size_t k;
    while ((k = node_storage_take_done(n->storage, done, 256)) > 0) {
        for (size_t i = 0; i < k; i++)
            replica_log_job_done(n->rep, done[i]);
        drain_outputs(n);
    }
}

/* Store writes the store thread finished: known on disk, in order (bitcask.h); a log
 * compaction held back for them may go now (replica_store_progress). */
static void on_store_io_done(struct node *n)
{
    void *done[64];
    size_t k;
    while ((k = node_storage_take_done(n->store_io, done, 64)) > 0) {
        for (size_t i = 0; i < k; i++) {
            struct rk_errmsg err = {{0}};
            uint64_t failures_before, failures;
            (void)bc_hint_failure(n->bc, &failures_before);
            int rc = bc_io_done(n->bc, done[i], &err);
            if (rc != RK_OK && n->store_failed == RK_OK) {
                n->store_failed = rc;
                n->store_fail_msg = err;
            }
            const char *why = bc_hint_failure(n->bc, &failures);
            if (failures > failures_before) /* not a failure of the store */
                node_log("warn",
                         "store: no hint file for a data file it rolled away from (the next "
                         "start scans that file): %s",
                         why);
        }
        replica_store_progress(n->rep);
        drain_outputs(n);
    }
}

int server_tls_reload(struct node *n, const char *why)
{
    if (n->tls == NULL) {
        node_log("info", "%s: TLS is off (no tls-port, no tls-peers): nothing to reload", why);
        return -1;
    }
    char err[PATH_MAX + 512];
    if (node_tls_reload(n, &n->opt, err, sizeof(err)) != 0) {
        char msg[PATH_MAX + 600];
        snprintf(msg, sizeof(msg), "TLS reload failed, the certificates in use stay: %s", err);
        node_event("error", "tls_reload", msg, "by=%s ok=no", why);
        return -1;
    }
    node_event("info", "tls_reload", "TLS certificates reloaded: new connections use them",
               "by=%s ok=yes", why);
    return 0;
}

static void on_event(struct node *n, struct ev_tag *tag, uint32_t events)
{
    switch (tag->kind) {
    case EV_STORAGE:
        on_storage_done(n);
        break;
    case EV_STORE_IO:
        on_store_io_done(n);
        break;
    case EV_MERGE:
        node_merge_on_done(n->merge);
        break;
    case EV_TIMER:
        on_timer(n);
        break;
    case EV_SIGNAL: {
        struct signalfd_siginfo si = {0};
        if (read(n->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo == SIGHUP) {
            server_tls_reload(n, "sighup");
        } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            node_log("info", "signal %u: %s", si.ssi_signo,
                     n->stopping ? "stopping now" : "shutting down");
            n->stopping_again = n->stopping;
            n->stopping = true;
        }
        break;
    }
    case EV_PEER_LISTEN:
        peer_on_accept(n);
        break;
    case EV_CLIENT_LISTEN:
        conn_on_accept(n, n->clisten_fd, false);
        break;
    case EV_TLS_LISTEN:
        conn_on_accept(n, n->tlisten_fd, true);
        break;
    case EV_PEER:
        peer_on_event(n, (struct peer *)tag, events);
        break;
    case EV_PENDING:
        peer_on_pending_event(n, (struct pending *)tag, events);
        break;
    case EV_CLIENT:
        conn_on_event(n, (struct client *)tag, events);
        break;
    case EV_METRICS_LISTEN:
        node_metrics_on_accept(n);
        break;
    case EV_METRICS:
        node_metrics_on_event(n, (struct metrics_conn *)tag, events);
        break;
    }
}

/* End of a turn: submit the batch, write every connection, free finished clients. */
/* Memory bounded by bytes, not counts (issue 12 point 5). What a node holds grows with the
 * bytes of the entries raft keeps in memory: those not yet committed, and those applied but not
 * yet durable in the store (compaction, by entries and by bytes, drops only what the store
 * holds durably), whose values the log and store jobs also hold. Past max-log-memory of them,
 * no client input is read (conn_set_events) until compaction brings it back under: the clients
 * wait in TCP's backpressure, nothing is dropped. The bound is never below the compaction
 * trigger (the replica's compact_bytes, 64 MiB), so being over it means compaction is due and
 * waits only for the disks or a quorum. Checked once a turn: every turn ends with
 * conn_set_events for every client, and a finished job or a tick ends a turn. */
static void check_log_memory(struct node *n)
{
    struct raft_status st;
    raft_status(replica_raft(n->rep), &st);
    bool over = st.log_bytes > n->opt.max_log_memory_bytes;
    if (over && !n->log_memory_over) {
        n->log_memory_pauses++;
        uint64_t now = node_now_ms();
        if (now - n->log_memory_logged_ms >= 10000) {
            n->log_memory_logged_ms = now;
            node_log("info",
                     "client input paused: Raft holds %" PRIu64 " bytes of entries in memory, "
                     "over max-log-memory %" PRIu64 " (%" PRIu64 " pauses so far)",
                     st.log_bytes, n->opt.max_log_memory_bytes, n->log_memory_pauses);
        }
    }
    n->log_memory_over = over;
}

static void end_of_turn(struct node *n)
{
    /* Input left unparsed while the connection was at its in-flight bound. */
    for (struct client *c = n->clients; c != NULL; c = c->next)
        if (!c->closed && !n->stopping && c->parse_held && !c->watch_wait &&
            c->n_items < CLIENT_ITEMS_MAX / 2)
            conn_parse(n, c);
    batch_flush(n);
    /* Every frame and request of this turn was only fed to raft: one ready loop for all of
     * them, so they share one log sync (group commit) and one round of appends. */
    replica_flush(n->rep);
    drain_outputs(n);
    /* A WATCH answered in this turn releases its connection's held input (an EXEC after it
     * needs its versions): parse it now rather than at the next event. */
    for (int round = 0; round < 4 && n->reparse; round++) {
        n->reparse = false;
        for (struct client *c = n->clients; c != NULL; c = c->next)
            if (!c->closed && !n->stopping && c->parse_held && !c->watch_wait &&
                c->n_items < CLIENT_ITEMS_MAX / 2)
                conn_parse(n, c);
        batch_flush(n);
        replica_flush(n->rep);
        drain_outputs(n);
    }
    check_log_memory(n);
    keys_walks_step(n);   /* cmd_keyspace.c: each KEYS in progress, a bounded piece */
    acl_close_deleted(n); /* cmd_acl.c: the connections of a user ACL DELUSER removed */
    /* Peers first: the APPENDs of this turn's writes start the followers' syncs, which a
     * commit waits for, while the replies below only end requests already done (a send per
     * client: 50 of them before the APPENDs delayed every follower's sync by as many). */
    peer_flush_all(n);
    for (struct client *c = n->clients, *next; c != NULL; c = next) {
        next = c->next;
        conn_collect(n, c);
        conn_flush(n, c);
        conn_free_if_done(n, c);
    }
    peer_flush_all(n);
}

/* A turn that kept the loop from its timers for half the shortest election timeout or more
 * is counted (INFO raft: slow_turns, slowest_turn_ms) and logged, at most once a second, with
 * where the time went: a follower that misses its leader's heartbeats for that long may start
 * an election, and this line says why. */
static void note_slow_turn(struct node *n, uint64_t t0, uint64_t t1, uint64_t t2)
{
    uint64_t took = t2 - t0, bound = (uint64_t)n->opt.election_min * n->tick_ms / 2;
    if (took < bound || took == 0)
        return;
    n->slow_turns++;
    if (took > n->slowest_turn_ms)
        n->slowest_turn_ms = took;
    if (t2 - n->slow_turn_logged_ms < 1000)
        return;
    n->slow_turn_logged_ms = t2;
    char msg[160];
    snprintf(msg, sizeof(msg),
             "slow loop turn: %" PRIu64 " ms (events %" PRIu64 " ms, end of turn %" PRIu64
             " ms; half an election timeout is %" PRIu64 " ms)",
             took, t1 - t0, t2 - t1, bound);
    node_event("warn", "slow_turn", msg,
               "ms=%" PRIu64 " events_ms=%" PRIu64 " end_ms=%" PRIu64 " bound_ms=%" PRIu64
               " slow_turns=%" PRIu64,
               took, t1 - t0, t2 - t1, bound, n->slow_turns);
}

/* One turn of the loop: wait (at most timeout_ms, -1: no bound), handle what came, end the
 * turn. 0, or 1 when the node must stop at once (epoll or storage failed). */
static int turn(struct node *n, int timeout_ms)
{
    struct epoll_event evs[EVENTS_MAX];
    /* A TLS read left bytes inside OpenSSL (tls.h): no waiting, they are read this turn. */
    int k = epoll_wait(n->ep, evs, EVENTS_MAX, n->tls_more ? 0 : timeout_ms);
    n->turns++;
    n->tls_hs_spent_us = 0;
    if (k < 0 && errno != EINTR) {
        node_log("error", "epoll_wait: %s", strerror(errno));
        return 1;
    }
    /* The wall clock for expiry, once per turn (kv.h TIME; node/README.md "Expiry"). */
    replica_set_time_ms(n->rep, node_unix_us() / 1000u);
    /* The timer last: after a stall (a big value copied, a slow turn), the frames that waited
     * in the socket buffers are read before the ticks that passed meanwhile are counted, so a
     * follower that hears from its leader in this turn does not count the stall as silence. */
    uint64_t t0 = node_now_ms();
    bool timer = false;
    for (int i = 0; i < k; i++) {
        struct ev_tag *tag = evs[i].data.ptr;
        if (tag->kind == EV_TIMER)
            timer = true;
        else
            on_event(n, tag, evs[i].events);
    }
    if (n->tls_more) {
        n->tls_more = false;
        conn_tls_more(n);
        peer_tls_more(n);
    }
    if (timer)
        on_event(n, &n->timer_tag, EPOLLIN);
    uint64_t t1 = node_now_ms();
    end_of_turn(n);
    /* Members are dialed where their latest configuration says; copied and compared only when
     * it changed (a copy of a raft_conf every turn was a fifth of a leader's instructions at
     * one request a turn). */
    uint64_t conf_version = raft_conf_version(replica_raft(n->rep));
    bool conf_changed = conf_version != n->conf_version_seen;
    if (conf_changed) {
        struct raft_conf conf;
        replica_conf(n->rep, &conf, NULL);
        peer_sync_conf(n, &conf);
        n->conf_version_seen = conf_version;
    }
    node_metrics_turn(n, conf_changed);
    note_slow_turn(n, t0, t1, node_now_ms());
    struct rk_errmsg why = {{0}};
    if (replica_failed(n->rep, &why)) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "storage failed, stopping: %s", why.text);
        node_event("error", "storage_error", msg, "op=replica");
        return 1;
    }
    if (n->storage_failed) {
        node_event("error", "storage_error",
                   "storage failed, stopping: out of memory queueing log or store writes",
                   "op=submit");
        return 1;
    }
    if (n->store_failed != RK_OK) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "storage failed, stopping: the store's writes: %s",
                 n->store_fail_msg.text);
        node_event("error", "storage_error", msg, "op=store");
        return 1;
    }
    if (node_merge_install_step(n->merge) != RK_OK) {
        node_event("error", "storage_error",
                   "storage failed, stopping: the merge found the store damaged", "op=merge");
        return 1;
    }
    return 0;
}

/* SIGTERM/SIGINT (N6): stop accepting clients and reading requests; a leader hands its
 * leadership to a connected peer (thesis §3.10) so the cluster does not wait out an election
 * timeout; the loop keeps running — peers, ticks, replies — until every request in flight is
 * answered or shutdown_timeout_ms has passed; whatever is left is failed with an error that
 * says so; the replies are written; the caller syncs the store. A second signal cuts the wait
 * short. */
static int shutdown_node(struct node *n)
{
    if (n->clisten_fd >= 0) {
        epoll_ctl(n->ep, EPOLL_CTL_DEL, n->clisten_fd, NULL);
        close(n->clisten_fd);
    }
    n->clisten_fd = -1;
    if (n->tlisten_fd >= 0) {
        epoll_ctl(n->ep, EPOLL_CTL_DEL, n->tlisten_fd, NULL);
        close(n->tlisten_fd);
    }
    n->tlisten_fd = -1;
    for (struct client *c = n->clients; c != NULL; c = c->next)
        conn_set_events(n, c); /* stopping: no more reads */
    struct replica_info st;
    replica_info(n->rep, &st);
    uint64_t target = peer_transfer_target(n);
    bool transferring = st.raft.role == RAFT_LEADER && target != 0 &&
                        replica_transfer_leader(n->rep, target) == RK_OK;
    if (transferring)
        node_event("info", "leader_transfer", "handing leadership over at shutdown", "to=%" PRIu64,
                   target);
    uint64_t deadline = node_now_ms() + n->opt.shutdown_timeout_ms;
    while (!n->stopping_again) {
        replica_info(n->rep, &st);
        bool transfer_done = !transferring || st.raft.role != RAFT_LEADER;
        uint64_t now = node_now_ms();
        if ((n->outstanding == 0 && transfer_done) || now >= deadline)
            break;
        uint64_t left = deadline - now;
        if (turn(n, left > n->tick_ms ? (int)n->tick_ms : (int)left) != 0)
            return 1;
    }
    if (n->outstanding > 0)
        node_log("warn", "%" PRIu64 " requests still in flight at shutdown: failed", n->outstanding);
    keys_walks_free(n); /* their items are failed below, as the others in flight */
    for (struct client *c = n->clients; c != NULL; c = c->next) {
        for (struct item *it = c->head; it != NULL; it = it->next) {
            if (it->waiting == 0)
                continue;
            it->bytes.len = it->bytes.off = 0;
            add_error(it, it->is_read ? "TRYAGAIN node shutting down"
                                      : "TIMEOUT node shutting down: the write may or may not "
                                        "have been applied");
            it->waiting = 0;
            it->done = true;
        }
        c->outstanding = 0;
        c->no_input = true;
        conn_collect(n, c);
    }
    n->outstanding = 0;
    /* Write what the sockets take without waiting long for slow readers. */
    uint64_t flush_deadline = node_now_ms() + 200;
    for (bool pending = true; pending && node_now_ms() < flush_deadline;) {
        pending = false;
        for (struct client *c = n->clients, *next; c != NULL; c = next) {
            next = c->next;
            conn_flush(n, c);
            pending |= !c->closed && buf_unread(&c->out) > 0;
        }
        if (pending)
            poll(NULL, 0, 1);
    }
    for (struct client *c = n->clients, *next; c != NULL; c = next) {
        next = c->next;
        conn_close(n, c);
        conn_free_if_done(n, c);
    }
    close(n->plisten_fd);
    peer_close_all(n);
    return 0;
}

/* The length of the RESP reply at p if it is all there (0: not yet; -1: malformed). */
static long join_reply_len(const char *p, size_t len)
{
    const char *eol = memchr(p, '\n', len);
    if (eol == NULL)
        return 0;
    size_t head = (size_t)(eol - p) + 1;
    long n = strtol(p + 1, NULL, 10);
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
        return (long)head;
    case '$':
        if (n < 0)
            return (long)head;
        return len >= head + (size_t)n + 2 ? (long)(head + (size_t)n + 2) : 0;
    case '*': {
        size_t at = head;
        for (long i = 0; i < n; i++) {
            long k = join_reply_len(p + at, len - at);
            if (k <= 0)
                return k;
            at += (size_t)k;
        }
        return (long)at;
    }
    default:
        return -1;
    }
}

/* Sends the command argv to the client address hostport and reads its whole reply into out
 * (NUL-terminated), blocking, within 2 s. false: no complete reply. */
static bool join_exchange(const char *hostport, int argc, const char *const *argv, char *out,
                          size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (node_resolve(hostport, &ss, &sl) != 0)
        return false;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char req[1024];
    int len = snprintf(req, sizeof(req), "*%d\r\n", argc);
    for (int i = 0; i < argc && len < (int)sizeof(req); i++)
        len += snprintf(req + len, sizeof(req) - (size_t)len, "$%zu\r\n%s\r\n", strlen(argv[i]),
                        argv[i]);
    size_t got = 0;
    long whole = 0;
    bool ok = len < (int)sizeof(req) && connect(fd, (const struct sockaddr *)&ss, sl) == 0 &&
              write(fd, req, (size_t)len) == (ssize_t)len;
    while (ok && got + 1 < cap && whole == 0) {
        ssize_t k = read(fd, out + got, cap - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        whole = join_reply_len(out, got);
    }
    close(fd);
    out[got] = '\0';
    return ok && whole > 0;
}

/* One RAFTKV.MEMBER ADD of this node (with its peer and client addresses) to the client
 * address hostport: the first line of the reply into line; false if there was none. */
static bool join_ask(const struct node *n, const char *hostport, char *line, size_t cap)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, n->id);
    const char *argv[] = {"RAFTKV.MEMBER", "ADD", id, n->self_peer_addr, n->opt.client};
    if (!join_exchange(hostport, 5, argv, line, cap))
        return false;
    char *eol = strpbrk(line, "\r\n");
    if (eol != NULL)
        *eol = '\0';
    return true;
}

/* Reads a RESP line of type t at *p into out (cap bytes; a bulk string's bytes, an integer's
 * digits); false if it is not one. */
static bool join_take(const char **p, char t, char *out, size_t cap)
{
    const char *s = *p;
    if (s[0] != t)
        return false;
    const char *eol = strstr(s, "\r\n");
    if (eol == NULL)
        return false;
    if (t != '$') {
        snprintf(out, cap, "%.*s", (int)(eol - s - 1), s + 1);
        *p = eol + 2;
        return true;
    }
    long n = strtol(s + 1, NULL, 10);
    if (n < 0 || (size_t)n >= cap || strlen(eol + 2) < (size_t)n + 2)
        return false;
    memcpy(out, eol + 2, (size_t)n);
    out[n] = '\0';
    *p = eol + 2 + n + 2;
    return true;
}

/* --join (issue #17): learns the members' peer addresses, and the session bound's member count
 * (want_pool), from RAFTKV.MEMBER LIST at one of the addresses; without want_pool, checks that
 * the member's count is this node's (else *mismatch, logged). true once one answered. */
static bool join_learn(struct node *n, const char *list, bool want_pool, bool *mismatch)
{
    char copy[sizeof(((struct options *)0)->join)];
    snprintf(copy, sizeof(copy), "%s", list);
    static char reply[16384];
    const char *argv[] = {"RAFTKV.MEMBER", "LIST"};
    for (char *save = NULL, *host = strtok_r(copy, ",", &save); host != NULL;
         host = strtok_r(NULL, ",", &save)) {
        if (!join_exchange(host, 2, argv, reply, sizeof(reply)))
            continue;
        const char *p = reply;
        char f[RAFT_ADDR_MAX + 8], role[16], peer[RAFT_ADDR_MAX], client[RAFT_ADDR_MAX];
        if (!join_take(&p, '*', f, sizeof(f)) || atoi(f) < 5 || !join_take(&p, ':', f, sizeof(f)) ||
            !join_take(&p, ':', f, sizeof(f)) || !join_take(&p, ':', f, sizeof(f)) ||
            !join_take(&p, '*', f, sizeof(f)))
            continue;
        int members = atoi(f);
        bool ok = true;
        for (int i = 0; i < members && ok; i++) {
            uint64_t id = 0;
            ok = join_take(&p, '*', f, sizeof(f)) && join_take(&p, ':', f, sizeof(f)) &&
                 config_parse_u64(f, 1, UINT64_MAX, &id) &&
                 join_take(&p, '$', role, sizeof(role)) && join_take(&p, '$', peer, sizeof(peer)) &&
                 join_take(&p, '$', client, sizeof(client));
            if (ok && peer[0] != '\0')
                peer_learn(n, id, peer);
        }
        uint64_t pool = 0;
        if (!ok || !join_take(&p, ':', f, sizeof(f)) || !config_parse_u64(f, 1, 64, &pool))
            continue;
        if (want_pool) {
            n->n_pool = (uint32_t)pool;
        } else if (pool != n->n_pool) {
            /* Every replica must evict the same session (node/README.md "Sessions"). */
            node_log("error",
                     "--join: %s counts %" PRIu64 " members in its session bound, this node %u "
                     "(--peers or --session-members): they must be the same on every member",
                     host, pool, n->n_pool);
            *mismatch = true;
            return false;
        }
        node_event("info", "join_learn", "learned the members' addresses",
                   "via=%s members=%d session_members=%u", host, members, n->n_pool);
        return true;
    }
    return false;
}

/* --join: a new node asks the cluster to add it as a learner (issue #17), trying each address
 * until the leader takes it (a follower answers -NOTLEADER, a busy leader -TRYAGAIN), for up
 * to a minute. Nothing to do for a node that is a member already (a restart). 0 or 1. */
static int join_cluster(struct node *n, const char *list)
{
    struct raft_conf conf;
    replica_conf(n->rep, &conf, NULL);
    if (raft_conf_is_voter(&conf, n->id) || raft_conf_is_learner(&conf, n->id)) {
        node_log("info", "--join: already a member");
        return 0;
    }
    uint64_t deadline = node_now_ms() + 60000;
    char last[1400] = "no answer";
    while (node_now_ms() < deadline) {
        char copy[sizeof(((struct options *)0)->join)];
        snprintf(copy, sizeof(copy), "%s", list);
        for (char *save = NULL, *host = strtok_r(copy, ",", &save); host != NULL;
             host = strtok_r(NULL, ",", &save)) {
            char line[256];
            if (!join_ask(n, host, line, sizeof(line)))
                continue;
            snprintf(last, sizeof(last), "%s: %s", host, line);
            if (line[0] == ':') {
                node_event("info", "joined", "added as a learner", "via=%s index=%s", host,
                           line + 1);
                return 0;
            }
            if (strncmp(line, "-ERR", 4) == 0) {
                node_log("error", "--join refused by %s: %s", host, line + 1);
                return 1;
            }
        }
        struct timespec ts = {.tv_nsec = 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    node_log("error", "--join: not added within 60 s (last answer: %s)", last);
    return 1;
}

/* --voters: the first configuration's voters, each a node of --peers. A node not among them
 * starts outside the configuration (it may also be added later: issue #17); so does every node
 * once the store holds a configuration (replica_create). */
static int parse_voters(struct node *n, const struct options *o, struct raft_config *rc)
{
    if (o->voters[0] == '\0') {
        if (rc->n_voters == 0) {
            fprintf(stderr,
                    "raftkv-node: more than %d nodes in --peers: --voters must say which "
                    "are the voters\n",
                    RAFT_MAX_VOTERS);
            return -1;
        }
        return 0;
    }
    char copy[sizeof(o->voters)];
    snprintf(copy, sizeof(copy), "%s", o->voters);
    rc->n_voters = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        uint64_t id = 0;
        if (!config_parse_u64(tok, 1, UINT64_MAX, &id)) {
            fprintf(stderr, "raftkv-node: --voters: bad id '%s'\n", tok);
            return -1;
        }
        bool known = id == n->id;
        for (size_t i = 0; i < n->n_peers; i++)
            known = known || n->peers[i].id == id;
        for (uint32_t i = 0; i < rc->n_voters; i++)
            known = known && rc->voters[i] != id;
        if (!known || rc->n_voters == RAFT_MAX_VOTERS) {
            fprintf(stderr,
                    "raftkv-node: --voters: %s is not a node of --peers, is listed "
                    "twice, or makes more than %d\n",
                    tok, RAFT_MAX_VOTERS);
            return -1;
        }
        rc->voters[rc->n_voters++] = id;
    }
    if (rc->n_voters == 0) {
        fprintf(stderr, "raftkv-node: --voters: no id\n");
        return -1;
    }
    rc->allow_non_member = true; /* this node may be outside the first configuration */
    return 0;
}

/* Builds the replica over the data directory, opens the sockets and dials the peers. 0, 1 (a
 * failure, logged) or 2 (a bad --peers, printed). */
int server_start(struct node *n, const struct options *o)
{
    struct replica_config c;
    replica_config_default(&c);
    c.raft.id = o->id;
    if (peer_parse_list(n, o->peers, &c.raft) != 0 ||
        (o->peer_addr[0] != '\0' && peer_set_self(n, o->peer_addr) != 0) ||
        parse_voters(n, o, &c.raft) != 0)
        return 2;
    bool pool_known = n->n_peers > 0 || o->session_members != 0;
    if (o->session_members != 0)
        n->n_pool = o->session_members;
    if (o->join[0] != '\0') {
        c.raft.n_voters = 0; /* it learns the configuration from the leader */
        c.raft.allow_non_member = true;
    }
    /* Issue #17: the first configuration records the voters' peer addresses (--peers, the same
     * on every node); from then on the configuration is where members find each other. */
    for (uint32_t i = 0; i < c.raft.n_voters; i++) {
        struct raft_member_addr *a = &c.raft.addrs[c.raft.n_addrs];
        memset(a, 0, sizeof(*a));
        a->id = c.raft.voters[i];
        const char *addr = a->id == n->id ? n->self_peer_addr : "";
        for (size_t k = 0; k < n->n_peers; k++)
            if (n->peers[k].id == a->id)
                addr = n->peers[k].addr_text;
        if (addr[0] != '\0' && raft_addr_valid(addr)) {
            memcpy(a->peer, addr, strlen(addr)); /* raft_addr_valid: it fits */
            c.raft.n_addrs++;
        }
    }
    /* Issue #17: a learner that has kept up for 20 ticks within 64 entries becomes a voter. */
    c.auto_promote_ticks = 20;
    c.auto_promote_lag = 64;
    c.raft.election_ticks_min = o->election_min;
    c.raft.election_ticks_max = o->election_max;
    c.raft.heartbeat_ticks = o->heartbeat;
    c.raft.check_quorum = o->check_quorum;
    c.raft.pre_vote = o->pre_vote;
    c.raft.logger.fn = node_raft_log_sink;
    /* One setting, max-value-bytes, sizes the entry and the APPEND batch (common/limits.h). */
    c.raft.max_entry_bytes = (uint32_t)n->lim.max_entry;
    c.raft.max_append_bytes = (uint32_t)n->lim.append;
    c.max_pending = SLOTS_MAX;
    /* Every connection is a session (conn.c): room for every connection of every member at
     * once, from settings all members share (--peers, max-clients: node/README.md "Sessions"),
     * so that every replica evicts the same session. */
    c.on_read = on_read;
    c.read_ctx = n;
    c.request_timeout_ticks = (o->request_timeout_ms + o->tick_ms - 1) / o->tick_ms;
    /* Request ids carry a nonce from the seed: a restarted node must not reuse its old ones. */
    if (getrandom(&c.raft.seed, sizeof(c.raft.seed), 0) != (ssize_t)sizeof(c.raft.seed)) {
        node_log("error", "getrandom: %s", strerror(errno));
        return 1;
    }
    n->slots = calloc(SLOTS_MAX, sizeof(*n->slots));
    n->free_slots = calloc(SLOTS_MAX, sizeof(*n->free_slots));
    if (n->slots == NULL || n->free_slots == NULL)
        return 1;
    for (uint32_t i = 0; i < SLOTS_MAX; i++)
        n->free_slots[n->n_free_slots++] = SLOTS_MAX - 1 - i;

    if (open_storage(n, o->data_dir) != RK_OK || next_incarnation(o->data_dir, &n->incarnation) != 0) {
        close_storage(n);
        return 1;
    }
    if (o->join[0] != '\0') {
        /* A node that is not a member yet learns where the members are (and, without --peers,
         * the session bound's member count) from one of them. */
        struct raft_conf sc;
        bool member = replica_store_conf(n->store, &sc) == RK_OK &&
                      (raft_conf_is_voter(&sc, n->id) || raft_conf_is_learner(&sc, n->id));
        /* A member that knows its count asks once, to check that it agrees. */
        bool need = !member || !pool_known, learned = false, mismatch = false;
        uint64_t deadline = node_now_ms() + 60000;
        for (;;) {
            learned = join_learn(n, o->join, !pool_known, &mismatch);
            if (learned || mismatch || !need || node_now_ms() >= deadline)
                break;
            struct timespec ts = {.tv_nsec = 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (mismatch) {
            close_storage(n);
            return 1;
        }
        if (!pool_known && !learned) {
            node_log("error", "--join: no member answered RAFTKV.MEMBER LIST within 60 s: the "
                              "session bound is not known (--session-members, or --peers)");
            close_storage(n);
            return 1;
        }
    }
    struct raft_conf stored;
    if (!pool_known && o->join[0] == '\0' && replica_store_conf(n->store, &stored) == RK_OK &&
        stored.n_voters + stored.n_learners > 1) {
        /* A member restarted without --peers, --join or --session-members: its session bound
         * would count one node, unlike the others'. */
        node_log("error", "the session bound's member count is not known: give --session-members "
                          "(the value of RAFTKV.MEMBER LIST's last element), --peers or --join");
        close_storage(n);
        return 1;
    }
    uint64_t sessions = (uint64_t)n->n_pool * o->max_clients;
    c.max_sessions = sessions > KV_MAX_SESSIONS ? KV_MAX_SESSIONS : (uint32_t)sessions;
    n->session_bound = c.max_sessions;
    c.log = n->log;
    c.store = n->store;
    c.alloc = rk_alloc_libc();
    c.async_log = true; /* the storage thread writes the log: node/storage.h */
    c.frame_refs = true; /* big APPENDs point at the entries' data: peer.c sends them in pieces */
    struct rk_errmsg err = {{0}};
    if (replica_create(&c, &n->rep, &err) != RK_OK) {
        node_log("error", "cannot start the replica: %s", err.text);
        close_storage(n);
        return 1;
    }
    replica_set_deferred(n->rep, true); /* flushed once per loop turn: end_of_turn */
    if (o->join[0] != '\0' && join_cluster(n, o->join) != 0) {
        replica_destroy(n->rep);
        n->rep = NULL;
        close_storage(n);
        return 1;
    }
    if (node_storage_start(&n->storage, node_storage_run_log, node_storage_free_log, &err) !=
            RK_OK ||
        node_storage_start(&n->store_io, node_storage_run_store, node_storage_free_store, &err) !=
            RK_OK) {
        node_storage_stop(n->storage);
        n->storage = NULL;
        node_log("error", "cannot start: %s", err.text);
        replica_destroy(n->rep);
        n->rep = NULL;
        close_storage(n);
        return 1;
    }
    n->storage_tag.kind = EV_STORAGE;
    n->store_io_tag.kind = EV_STORE_IO;
    n->merge_tag.kind = EV_MERGE;
    struct bc_merge_policy mp = {.frag_percent = o->merge_frag_percent,
                                 .dead_bytes = o->merge_dead_bytes,
                                 .min_dead_bytes = o->merge_min_dead_bytes};
    if (node_merge_start(&n->merge, n->bc, n->fs_merge, &mp, node_log, &err) != RK_OK)
        node_log("error", "cannot start: %s", err.text);
    if (n->merge == NULL || node_tls_start(n) != 0 || setup_fds(n, o->client) != 0 ||
        node_metrics_start(n) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, node_storage_fd(n->storage), EPOLLIN, &n->storage_tag) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, node_storage_fd(n->store_io), EPOLLIN, &n->store_io_tag) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, node_merge_fd(n->merge), EPOLLIN, &n->merge_tag) != 0) {
        node_merge_stop(n->merge);
        n->merge = NULL;
        node_storage_stop(n->storage);
        n->storage = NULL;
        node_storage_stop(n->store_io);
        n->store_io = NULL;
        replica_destroy(n->rep);
        n->rep = NULL;
        close_storage(n);
        return 1;
    }
    fs_posix_sync_histogram(n->fs_log, &n->metrics->log_sync);
    fs_posix_sync_histogram(n->fs_store, &n->metrics->store_sync);
    char up[PATH_MAX + 512];
    snprintf(up, sizeof(up), "up: peers on %s, clients on %s, data in %s, %zu peers, tick %u ms",
             n->self_peer_addr, o->client, o->data_dir, n->n_peers, n->tick_ms);
    node_event("info", "start", up, "peer_addr=%s client_addr=%s tls_port=%u tls_peers=%s",
               n->self_peer_addr, o->client, o->tls_port, o->tls_peers ? "yes" : "no");
    struct raft_conf conf;
    replica_conf(n->rep, &conf, NULL);
    peer_sync_conf(n, &conf);
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].dialer && n->peers[i].addr_len != 0)
            peer_dial(n, &n->peers[i]);
    return 0;
}

int server_run(struct node *n)
{
    int rc = 0;
    while (!n->stopping && rc == 0)
        /* A merge install, a KEYS walk: a piece a turn, so no waiting while one is left. */
        rc = turn(n, node_merge_installing(n->merge) || n->keys_walks != NULL ? 0 : -1);
    if (rc == 0)
        rc = shutdown_node(n);
    node_merge_stop(n->merge); /* cancels a merge still copying (node/storage.h) */
    n->merge = NULL;
    /* The log's last writes finish before the store is synced and the log is closed. */
    node_storage_stop(n->storage);
    n->storage = NULL;
    /* Then the store's: its last sync queued, every job run and done, in order. */
    if (rc == 0 && n->store->ops->sync(n->store) == RK_OK) {
        struct bc_io_job *sj = bc_io_take(n->bc);
        if (sj != NULL && node_storage_submit(n->store_io, (void *const *)&sj, 1) != RK_OK)
            n->store_failed = RK_ENOMEM;
        while (n->store_failed == RK_OK && node_storage_pending(n->store_io) > 0) {
            struct pollfd p = {.fd = node_storage_fd(n->store_io), .events = POLLIN};
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                break;
            void *done[64];
            size_t k = node_storage_take_done(n->store_io, done, 64);
            for (size_t i = 0; i < k; i++) {
                struct rk_errmsg err = {{0}};
                int e = bc_io_done(n->bc, done[i], &err);
                if (e != RK_OK && n->store_failed == RK_OK)
                    n->store_failed = e;
            }
        }
    }
    node_storage_stop(n->store_io);
    n->store_io = NULL;
    if (rc == 0 && (n->store_failed != RK_OK || bc_io_out(n->bc) > 0 ||
                    bc_durable_index(n->bc) != bc_applied_index(n->bc))) {
        node_event("error", "storage_error", "sync of the state machine's store failed at shutdown",
                   "op=sync");
        rc = 1;
    }
    return rc;
}

void server_stop(struct node *n)
{
    backup_free(n);
    keys_walks_free(n);
    node_tls_stop(n);
    node_metrics_stop(n);
    node_storage_stop(n->storage); /* NULL after server_run */
    n->storage = NULL;
    node_storage_stop(n->store_io);
    n->store_io = NULL;
    node_merge_stop(n->merge);
    n->merge = NULL;
    if (n->rep != NULL)
        replica_destroy(n->rep);
    n->rep = NULL;
    close_storage(n);
}
