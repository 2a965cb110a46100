/*
 * main.c — raftkv-node: one cluster member as a POSIX process. It moves bytes and time for
 * core/replica and decides nothing itself.
 *
 * One thread, one epoll loop (level-triggered), non-blocking sockets:
 *   timerfd    every tick_ms: replica_tick (missed expirations are caught up, at most 10)
 *   signalfd   SIGTERM, SIGINT: stop accepting, finish or fail in-flight requests, exit 0 (N6)
 *   peer listen   accepts connections from peers with a LOWER id; a node dials every peer with
 *                 a higher id, so each pair has exactly one connection, used both ways
 *   client listen accepts RESP2 clients
 *
 * Invariants:
 *   N1  every peer connection starts with a codec handshake in both directions; nothing is fed
 *       to the replica from a connection before its handshake checked out (cluster id, a known
 *       node id, the right side of the dial rule).
 *   N2  a peer's send queue holds at most PEER_QUEUE_MAX_BYTES; frames beyond are dropped, as
 *       is every frame for a peer with no connection (Raft tolerates loss).
 *   N3  every client request gets exactly one reply item in its connection's FIFO, in request
 *       order; the FIFO is written out only up to its first unfinished item (pipelining).
 *   N4  a client struct is freed only when it is closed AND no replica request of it is pending
 *       (each replica request gets exactly one reply, replica.h), so a slot never dangles.
 *   N5  requests parsed during one loop turn are submitted as one batch (group commit) before
 *       any client input buffer is compacted or freed, or the arena reset: they borrow their
 *       bytes from them.
 *   N6  a shutdown answers every request it read: with its result if it completes within
 *       shutdown_timeout_ms, otherwise with an error saying the node is shutting down.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bitcask/bitcask.h"
#include "codec/codec.h"
#include "common/alloc.h"
#include "common/err.h"
#include "fs_posix.h"
#include "storage.h"
#include "kv/kv.h"
#include "log/log.h"
#include "glob.h"
#include "replica/replica.h"
#include "resp/resp.h"

#define PEER_QUEUE_MAX_BYTES  (64ull << 20)
#define PEER_BACKOFF_MIN_MS   50
#define PEER_BACKOFF_MAX_MS   2000
#define PENDING_CONNS_MAX     16
#define CLIENT_ITEMS_MAX      4096          /* replies in flight per connection: read pauses */
#define CLIENT_OUT_MAX_BYTES  (256ull << 20) /* unwritten reply bytes: read pauses */
#define CLIENT_READ_MAX_BYTES (1u << 20)    /* read per connection per loop turn */
#define SLOTS_MAX             65536u        /* replica requests in flight (= max_pending) */
#define BATCH_MAX             4096u
#define EVENTS_MAX            256
#define TICKS_CATCHUP_MAX     10
#define ITEM_POOL_MAX         65536u        /* reply items kept for reuse */
#define ITEM_BUF_KEEP         16384u        /* an item buffer larger than this is freed */
#define HANDSHAKE_TIMEOUT_MS  5000u         /* a peer connection silent this long is dropped */
#ifndef RAFTKV_VERSION
#define RAFTKV_VERSION "0"
#endif

/* ------------------------------------------------------------------------------------------ */
/* Logging                                                                                    */

static uint64_t g_node_id;

static void node_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void node_log(const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "raftkv-node %" PRIu64 " %s: %s\n", g_node_id, level, line);
}

static void raft_log_sink(void *ctx, int level, const char *text)
{
    (void)ctx;
    /* syslog levels, as raft uses them: 3 error, 4 warning, 6 info, 7 debug */
    node_log(level <= 3 ? "error" : level <= 5 ? "warn" : level == 6 ? "info" : "debug", "%s", text);
}

/* ------------------------------------------------------------------------------------------ */
/* Byte buffers: [off, len) unread; compacted before growing.                                  */

struct buf {
    uint8_t *p;
    size_t off, len, cap;
};

static size_t buf_unread(const struct buf *b)
{
    return b->len - b->off;
}

/* Makes room for n more bytes at p + len. Returns false when out of memory. */
static bool buf_reserve(struct buf *b, size_t n)
{
    if (b->off > 0 && (b->off == b->len || b->cap - b->len < n)) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

static bool buf_append(struct buf *b, const void *src, size_t n)
{
    if (!buf_reserve(b, n))
        return false;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return true;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                      */

enum ev_kind { EV_TIMER = 1, EV_SIGNAL, EV_PEER_LISTEN, EV_CLIENT_LISTEN, EV_PEER, EV_PENDING, EV_CLIENT,
               EV_STORAGE };

struct ev_tag {
    enum ev_kind kind;
};

/* One peer TCP connection's bytes. */
struct pconn {
    int fd; /* -1: none */
    bool connecting;
    bool hs_in; /* the other side's handshake arrived and checked out (N1) */
    bool want_out;
    struct buf in, out;
};

struct peer {
    struct ev_tag tag; /* EV_PEER */
    uint64_t id;
    char addr_text[128];
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool dialer; /* we dial it: our id is lower */
    struct pconn c;
    uint64_t backoff_ms;
    uint64_t retry_at_ms; /* dialer: when to dial again (0: now) */
    uint64_t dropped_frames;
};

/* An accepted peer connection whose handshake has not arrived yet. */
struct pending {
    struct ev_tag tag; /* EV_PENDING */
    bool used;
    uint64_t accepted_ms; /* dropped when no handshake came within HANDSHAKE_TIMEOUT_MS */
    struct pconn c;
};

/* One reply in a client's FIFO. A command may wait on several replica requests (DEL, EXISTS). */
enum item_kind {
    ITEM_DONE,
    ITEM_GET,
    ITEM_SET,
    ITEM_SET_IF,
    ITEM_INT,
    ITEM_SUM_DEL,
    ITEM_SUM_EXISTS,
    ITEM_MGET,
    ITEM_KEYS,
    ITEM_SCAN,
    ITEM_DBSIZE
};

struct item {
    struct item *next;
    enum item_kind kind;
    uint32_t waiting; /* replica replies still due */
    uint32_t parts;   /* MGET: keys */
    int64_t sum;
    bool failed;      /* a replica reply was an error: bytes hold it */
    bool close_after; /* QUIT */
    bool no_match;    /* SCAN with a TYPE other than string, or a cursor not 0: empty reply */
    struct buf bytes; /* the encoded reply once waiting == 0 */
    struct buf aux;   /* MGET: the values as they arrive; KEYS/SCAN: the pattern */
};

struct client {
    struct ev_tag tag; /* EV_CLIENT */
    struct client *prev, *next;
    int fd;
    bool closed;      /* socket gone; struct stays while outstanding > 0 (N4) */
    bool no_input;    /* EOF, QUIT or a protocol error: nothing more is read or parsed */
    bool want_close;  /* a QUIT or error reply went out: close once the out buffer is written */
    bool reading;     /* EPOLLIN registered */
    bool want_out;    /* EPOLLOUT registered */
    bool parse_held;  /* parsing stopped at CLIENT_ITEMS_MAX with input left */
    uint32_t outstanding; /* replica requests of this client pending */
    uint32_t n_items;
    struct item *head, *tail;
    struct buf in, out;
};

struct slot {
    uint64_t req_id; /* 0: free */
    struct client *c;
    struct item *it;
    uint32_t part; /* which of the item's requests (MGET: the key's position) */
    uint8_t op;
};

/* Every setting, from the command line and --config FILE (the same names without "--"). */
struct options {
    uint64_t id;
    uint64_t cluster_id;
    char peers[4096];
    char client[256];
    char data_dir[PATH_MAX];
    uint32_t tick_ms;
    uint32_t election_min, election_max, heartbeat;
    uint32_t request_timeout_ms;
    uint32_t shutdown_timeout_ms;
    uint32_t max_clients;
    uint32_t max_args;
    uint64_t max_arg_bytes;
    uint32_t max_inline_bytes;
};

struct node {
    uint64_t id;
    uint64_t cluster_id;
    uint32_t tick_ms;
    int ep;
    struct ev_tag timer_tag, signal_tag, plisten_tag, clisten_tag;
    int timer_fd, signal_fd, plisten_fd, clisten_fd;
    struct peer peers[RAFT_MAX_VOTERS];
    size_t n_peers; /* every member but self */
    char self_peer_addr[128];
    struct sockaddr_storage self_addr;
    socklen_t self_addr_len;
    struct pending pending[PENDING_CONNS_MAX];
    struct client *clients; /* list of every live or draining client */
    struct slot *slots;
    uint32_t *free_slots;
    uint32_t n_free_slots;
    uint64_t slot_gen;
    struct replica_request batch[BATCH_MAX];
    size_t n_batch;
    struct buf arena;      /* bytes the batch's requests borrow besides client input (MSET) */
    struct options opt;
    struct resp_limits limits;
    struct resp_arg *args; /* opt.max_args of them: one parsed request */
    uint8_t *inline_scratch; /* opt.max_inline_bytes: unescaped inline arguments */
    struct kv_pair *pairs;   /* opt.max_args / 2: MSET's */
    struct item *free_items; /* the pool (item_get, item_put) */
    size_t n_free_items;
    struct buf tmp;          /* KEYS/SCAN: the keys before their count is known */
    size_t n_clients;
    uint64_t outstanding;    /* replica requests of every client */
    uint64_t started_ms;
    struct fs *fs_root, *fs_log, *fs_kv;
    /* The log is written and synced on this thread (node/storage.h); the loop never waits. */
    struct node_storage *storage;
    struct ev_tag storage_tag;
    bool storage_failed;
    struct log_store *log;
    struct bitcask *bc;
    struct kv_store *store;
    struct replica *rep;
    bool stopping;       /* a signal came: shutting down (N6) */
    bool stopping_again; /* a second one: stop waiting for in-flight requests */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int ep_set(struct node *n, int op, int fd, uint32_t events, void *tag)
{
    struct epoll_event ev = {.events = events, .data.ptr = tag};
    if (epoll_ctl(n->ep, op, fd, &ev) != 0) {
        node_log("error", "epoll_ctl fd %d: %s", fd, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Peers                                                                                      */

static void pconn_close(struct node *n, struct pconn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(n->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    buf_free(&c->in);
    buf_free(&c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static bool pconn_queue_handshake(const struct node *n, struct pconn *c)
{
    uint8_t hs[CODEC_HANDSHAKE_FRAME_SIZE];
    size_t len = 0;
    struct codec_handshake h = {
        .version = CODEC_PROTOCOL_VERSION, .cluster_id = n->cluster_id, .node_id = n->id};
    if (codec_encode_handshake(&h, hs, sizeof(hs), &len) != RK_OK)
        return false;
    return buf_append(&c->out, hs, len);
}

static void peer_lost(struct node *n, struct peer *p, const char *why)
{
    if (p->c.hs_in)
        node_log("warn", "peer %" PRIu64 " (%s): connection lost: %s", p->id, p->addr_text, why);
    pconn_close(n, &p->c);
    if (p->dialer) {
        p->retry_at_ms = now_ms() + p->backoff_ms;
        p->backoff_ms = p->backoff_ms * 2 > PEER_BACKOFF_MAX_MS ? PEER_BACKOFF_MAX_MS
                                                                : p->backoff_ms * 2;
    }
}

static void peer_dial(struct node *n, struct peer *p)
{
    int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        node_log("error", "socket: %s", strerror(errno));
        peer_lost(n, p, "socket failed");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = connect(fd, (struct sockaddr *)&p->addr, p->addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        peer_lost(n, p, strerror(errno));
        return;
    }
    p->c.fd = fd;
    p->c.connecting = rc != 0;
    p->c.want_out = true;
    if (!pconn_queue_handshake(n, &p->c) ||
        ep_set(n, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT, &p->tag) != 0) {
        peer_lost(n, p, "out of memory");
    }
}

static struct peer *peer_by_id(struct node *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].id == id)
            return &n->peers[i];
    return NULL;
}

static size_t peers_connected(const struct node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_peers; i++)
        k += n->peers[i].c.fd >= 0 && n->peers[i].c.hs_in;
    return k;
}

/* Queues one frame for peer `to` (N2). */
static void peer_send(struct node *n, uint64_t to, const uint8_t *bytes, size_t len)
{
    struct peer *p = peer_by_id(n, to);
    if (p == NULL || p->c.fd < 0 || buf_unread(&p->c.out) + len > PEER_QUEUE_MAX_BYTES ||
        !buf_append(&p->c.out, bytes, len)) {
        if (p != NULL)
            p->dropped_frames++;
        return;
    }
}

/* Checks a handshake frame (N1). Returns the peer's id, or 0 (err set) to refuse. */
static uint64_t handshake_check(struct node *n, const uint8_t *frame, size_t len,
                                struct rk_errmsg *err)
{
    struct codec_frame f;
    memset(&f, 0, sizeof(f));
    int rc = codec_decode(frame, len, rk_alloc_libc(), &f, err);
    if (rc != RK_OK)
        return 0;
    uint8_t type = f.type;
    struct codec_handshake hs = f.hs;
    codec_frame_free(rk_alloc_libc(), &f);
    if (type != CODEC_TYPE_HANDSHAKE) {
        rk_errf(err, RK_EMALFORMED, "first frame has type %u, not a handshake", type);
        return 0;
    }
    if (hs.cluster_id != n->cluster_id) {
        rk_errf(err, RK_EINVAL, "cluster id %" PRIu64 ", ours is %" PRIu64, hs.cluster_id,
                n->cluster_id);
        return 0;
    }
    if (peer_by_id(n, hs.node_id) == NULL) {
        rk_errf(err, RK_EINVAL, "unknown node id %" PRIu64, hs.node_id);
        return 0;
    }
    return hs.node_id;
}

/* Reads what is there into c->in. Returns false on EOF or error (why set). */
static bool pconn_read(struct pconn *c, const char **why)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        if (!buf_reserve(&c->in, 65536)) {
            *why = "out of memory";
            return false;
        }
        size_t room = c->in.cap - c->in.len;
        ssize_t r = read(c->fd, c->in.p + c->in.len, room);
        if (r > 0) {
            c->in.len += (size_t)r;
            if ((size_t)r < room)
                return true; /* drained for now (level-triggered: epoll says when more comes) */
            continue;
        }
        if (r == 0) {
            *why = "closed by peer";
            return false;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return true;
        *why = strerror(errno);
        return false;
    }
    return true;
}

static void drain_outputs(struct node *n);

/* Feeds the complete frames of p's input to the replica. Returns false to drop the link. */
static bool peer_feed(struct node *n, struct peer *p, const char **why)
{
    struct rk_errmsg err = {{0}};
    for (;;) {
        size_t flen = 0;
        int rc = codec_frame_peek(p->c.in.p + p->c.in.off, buf_unread(&p->c.in),
                                  CODEC_MAX_FRAME_DEFAULT, &flen, &err);
        if (rc == RK_EAGAIN)
            return true;
        if (rc != RK_OK) {
            node_log("warn", "peer %" PRIu64 ": %s", p->id, err.text);
            *why = "bad frame";
            return false;
        }
        const uint8_t *frame = p->c.in.p + p->c.in.off;
        if (!p->c.hs_in) {
            uint64_t id = handshake_check(n, frame, flen, &err);
            if (id != p->id) {
                node_log("warn", "peer %" PRIu64 " (%s) refused: %s", p->id, p->addr_text,
                         id == 0 ? err.text : "it is another node");
                *why = "handshake refused";
                return false;
            }
            p->c.hs_in = true;
            p->backoff_ms = PEER_BACKOFF_MIN_MS;
            node_log("info", "peer %" PRIu64 " (%s) connected", p->id, p->addr_text);
        } else {
            rc = replica_recv(n->rep, p->id, frame, flen, &err);
            if (rc != RK_OK)
                node_log("debug", "peer %" PRIu64 ": frame dropped: %s", p->id, err.text);
            drain_outputs(n);
        }
        p->c.in.off += flen;
    }
}

/* Writes what is queued; registers EPOLLOUT while something is left. */
static bool pconn_flush(struct node *n, struct pconn *c, void *tag, const char **why)
{
    if (c->fd < 0 || c->connecting)
        return true;
    while (buf_unread(&c->out) > 0) {
        ssize_t w = send(c->fd, c->out.p + c->out.off, buf_unread(&c->out), MSG_NOSIGNAL);
        if (w > 0) {
            c->out.off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        *why = w < 0 ? strerror(errno) : "send returned 0";
        return false;
    }
    if (buf_unread(&c->out) == 0) {
        c->out.off = c->out.len = 0;
    }
    bool want = buf_unread(&c->out) > 0;
    if (want != c->want_out) {
        c->want_out = want;
        ep_set(n, EPOLL_CTL_MOD, c->fd, EPOLLIN | (want ? EPOLLOUT : 0), tag);
    }
    return true;
}

static void on_peer_event(struct node *n, struct peer *p, uint32_t events)
{
    const char *why = "error";
    if (p->c.fd < 0)
        return;
    if (p->c.connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(p->c.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr != 0) {
            peer_lost(n, p, strerror(soerr));
            return;
        }
        p->c.connecting = false;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (!pconn_read(&p->c, &why) ) {
            peer_feed(n, p, &why); /* whatever arrived before the end */
            peer_lost(n, p, why);
            return;
        }
        if (!peer_feed(n, p, &why)) {
            peer_lost(n, p, why);
            return;
        }
    }
    if (!pconn_flush(n, &p->c, &p->tag, &why))
        peer_lost(n, p, why);
}

static void on_peer_accept(struct node *n)
{
    for (int k = 0; k < 64; k++) {
        int fd = accept4(n->plisten_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                node_log("warn", "accept (peers): %s", strerror(errno));
            return;
        }
        struct pending *pd = NULL;
        for (size_t i = 0; i < PENDING_CONNS_MAX; i++)
            if (!n->pending[i].used) {
                pd = &n->pending[i];
                break;
            }
        if (pd == NULL) {
            node_log("warn", "too many peer connections awaiting a handshake: refused");
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        memset(&pd->c, 0, sizeof(pd->c));
        pd->used = true;
        pd->accepted_ms = now_ms();
        pd->c.fd = fd;
        pd->c.want_out = true;
        if (!pconn_queue_handshake(n, &pd->c) ||
            ep_set(n, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT, &pd->tag) != 0) {
            pconn_close(n, &pd->c);
            pd->used = false;
        }
    }
}

/* An accepted connection: once its handshake checks out it becomes its peer's connection
 * (replacing an older one: the dialer reconnected, so the old one is dead). */
static void on_pending_event(struct node *n, struct pending *pd, uint32_t events)
{
    const char *why = "error";
    struct rk_errmsg err = {{0}};
    if (!pd->used)
        return;
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !pconn_read(&pd->c, &why))
        goto err_drop;
    size_t flen = 0;
    int rc = codec_frame_peek(pd->c.in.p + pd->c.in.off, buf_unread(&pd->c.in),
                              CODEC_HANDSHAKE_FRAME_SIZE, &flen, &err);
    if (rc == RK_EAGAIN) {
        if (!pconn_flush(n, &pd->c, &pd->tag, &why))
            goto err_drop;
        return;
    }
    uint64_t id = rc == RK_OK ? handshake_check(n, pd->c.in.p + pd->c.in.off, flen, &err) : 0;
    if (id != 0 && id > n->id) {
        rk_errf(&err, RK_EINVAL, "node %" PRIu64 " dialed us, but the lower id dials", id);
        id = 0;
    }
    if (id == 0) {
        node_log("warn", "peer connection refused: %s", err.text);
        why = NULL;
        goto err_drop;
    }
    struct peer *p = peer_by_id(n, id);
    if (p->c.fd >= 0)
        pconn_close(n, &p->c);
    p->c = pd->c;
    p->c.hs_in = true;
    p->c.in.off += flen;
    memset(&pd->c, 0, sizeof(pd->c));
    pd->c.fd = -1;
    pd->used = false;
    ep_set(n, EPOLL_CTL_MOD, p->c.fd, EPOLLIN | EPOLLOUT, &p->tag);
    p->c.want_out = true;
    node_log("info", "peer %" PRIu64 " (%s) connected", p->id, p->addr_text);
    if (!peer_feed(n, p, &why) || !pconn_flush(n, &p->c, &p->tag, &why))
        peer_lost(n, p, why);
    return;

err_drop:
    if (why != NULL)
        node_log("debug", "unidentified peer connection dropped: %s", why);
    pconn_close(n, &pd->c);
    pd->used = false;
}

/* ------------------------------------------------------------------------------------------ */
/* Clients: reply items                                                                       */

/* Items are recycled through the node's pool (no allocation per request once warm); a buffer
 * that grew past ITEM_BUF_KEEP goes back to the allocator instead. */
static struct item *item_get(struct node *n)
{
    struct item *it = n->free_items;
    if (it != NULL) {
        n->free_items = it->next;
        n->n_free_items--;
    } else {
        it = calloc(1, sizeof(*it));
        if (it == NULL)
            return NULL;
    }
    struct buf bytes = it->bytes, aux = it->aux;
    bytes.off = bytes.len = aux.off = aux.len = 0;
    *it = (struct item){.bytes = bytes, .aux = aux};
    return it;
}

static void item_put(struct node *n, struct item *it)
{
    if (it->bytes.cap > ITEM_BUF_KEEP)
        buf_free(&it->bytes);
    if (it->aux.cap > ITEM_BUF_KEEP)
        buf_free(&it->aux);
    if (n->n_free_items >= ITEM_POOL_MAX) {
        buf_free(&it->bytes);
        buf_free(&it->aux);
        free(it);
        return;
    }
    it->next = n->free_items;
    n->free_items = it;
    n->n_free_items++;
}

static void client_free_if_done(struct node *n, struct client *c)
{
    if (!c->closed || c->outstanding > 0)
        return;
    for (struct item *it = c->head, *next; it != NULL; it = next) {
        next = it->next;
        item_put(n, it);
    }
    buf_free(&c->in);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->n_clients--;
    free(c);
}

static struct item *item_new(struct node *n, struct client *c, enum item_kind kind)
{
    struct item *it = item_get(n);
    if (it == NULL)
        return NULL;
    it->kind = kind;
    if (c->tail)
        c->tail->next = it;
    else
        c->head = it;
    c->tail = it;
    c->n_items++;
    return it;
}

/* Encoders into an item's bytes; false when out of memory. */
static bool put_simple(struct buf *b, const char *s)
{
    size_t pos = b->len;
    return buf_reserve(b, resp_simple_size(s)) && resp_simple(b->p, b->cap, &pos, s) &&
           (b->len = pos, true);
}

static bool put_error(struct buf *b, const char *s)
{
    size_t pos = b->len;
    return buf_reserve(b, resp_error_size(s)) && resp_error(b->p, b->cap, &pos, s) &&
           (b->len = pos, true);
}

static bool put_integer(struct buf *b, int64_t v)
{
    size_t pos = b->len;
    return buf_reserve(b, resp_integer_size(v)) && resp_integer(b->p, b->cap, &pos, v) &&
           (b->len = pos, true);
}

static bool put_bulk(struct buf *b, const uint8_t *p, uint64_t len)
{
    size_t pos = b->len;
    return buf_reserve(b, resp_bulk_size(len)) && resp_bulk(b->p, b->cap, &pos, p, len) &&
           (b->len = pos, true);
}

static bool put_null(struct buf *b)
{
    size_t pos = b->len;
    return buf_reserve(b, resp_null_size()) && resp_null(b->p, b->cap, &pos) &&
           (b->len = pos, true);
}

static bool put_array(struct buf *b, int64_t k)
{
    size_t pos = b->len;
    return buf_reserve(b, resp_array_size(k)) && resp_array(b->p, b->cap, &pos, k) &&
           (b->len = pos, true);
}

/* An error line from a replica status and reason. */
static void put_status_error(struct buf *b, uint8_t status, const char *reason)
{
    char line[256];
    const char *r = reason ? reason : "";
    if (status == REPLICA_TRYAGAIN)
        snprintf(line, sizeof(line), "TRYAGAIN %s", r);
    else if (status == REPLICA_TIMEOUT)
        snprintf(line, sizeof(line), "TIMEOUT %s", r);
    else
        snprintf(line, sizeof(line), "ERR %s", r);
    put_error(b, line);
}

/* MGET keeps its values in aux as they arrive, in any order: n offsets (u64, NO_VALUE for a
 * missing key) first, then [len u64][bytes] per value found. */
#define NO_VALUE UINT64_MAX

static bool mget_begin(struct item *it, uint32_t keys)
{
    if (!buf_reserve(&it->aux, (size_t)keys * 8))
        return false;
    for (uint32_t i = 0; i < keys; i++) {
        uint64_t none = NO_VALUE;
        memcpy(it->aux.p + (size_t)i * 8, &none, 8);
    }
    it->aux.len = (size_t)keys * 8;
    it->parts = keys;
    return true;
}

static void mget_store(struct item *it, uint32_t part, const uint8_t *val, uint32_t len)
{
    uint64_t off = it->aux.len, len64 = len;
    if (part >= it->parts || !buf_append(&it->aux, &len64, 8) || !buf_append(&it->aux, val, len)) {
        it->failed = true;
        it->bytes.len = 0;
        put_error(&it->bytes, "ERR out of memory");
        return;
    }
    memcpy(it->aux.p + (size_t)part * 8, &off, 8);
}

static void mget_finish(struct item *it)
{
    put_array(&it->bytes, it->parts);
    for (uint32_t i = 0; i < it->parts; i++) {
        uint64_t off, len;
        memcpy(&off, it->aux.p + (size_t)i * 8, 8);
        if (off == NO_VALUE) {
            put_null(&it->bytes);
            continue;
        }
        memcpy(&len, it->aux.p + off, 8);
        put_bulk(&it->bytes, it->aux.p + off + 8, len);
    }
}

/* KEYS pattern and SCAN 0 [MATCH pattern] [TYPE string]: every matching key in one reply, from
 * the state machine as it is once the read barrier (a ReadIndex round) is passed. SCAN always
 * returns cursor 0: one call is the whole iteration (Redis allows it; COUNT is a hint). */
struct keys_scan {
    const uint8_t *pat;
    size_t pat_len;
    struct buf *out;
    int64_t n;
    bool oom;
};

static bool keys_one(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct keys_scan *ks = ctx;
    if (!glob_match(ks->pat, ks->pat_len, key, key_len))
        return true;
    if (!put_bulk(ks->out, key, key_len)) {
        ks->oom = true;
        return false;
    }
    ks->n++;
    return true;
}

static void keys_finish(struct node *n, struct item *it)
{
    n->tmp.off = n->tmp.len = 0;
    struct keys_scan ks = {.pat = it->aux.p, .pat_len = it->aux.len, .out = &n->tmp};
    int rc = it->no_match ? RK_OK : replica_scan_keys(n->rep, keys_one, &ks);
    if (rc != RK_OK || ks.oom) {
        put_error(&it->bytes, rc != RK_OK ? "ERR cannot read the store" : "ERR out of memory");
        return;
    }
    if (it->kind == ITEM_SCAN) {
        put_array(&it->bytes, 2);
        put_bulk(&it->bytes, (const uint8_t *)"0", 1);
    }
    put_array(&it->bytes, ks.n);
    buf_append(&it->bytes, n->tmp.p, n->tmp.len);
    if (n->tmp.cap > ITEM_BUF_KEEP)
        buf_free(&n->tmp);
}

/* A replica reply lands in its item (part: which of the item's requests); the item is finished
 * when its last reply arrives. */
static void item_on_reply(struct node *n, struct item *it, uint32_t part,
                          const struct replica_reply *rp)
{
    if (it->failed) {
        /* an earlier reply of this command failed: that error stands */
    } else if (rp->status != REPLICA_OK && rp->status != REPLICA_NOT_FOUND) {
        it->failed = true;
        it->bytes.len = it->bytes.off = 0;
        put_status_error(&it->bytes, rp->status, rp->reason);
    } else if (it->kind == ITEM_GET) {
        if (rp->status == REPLICA_OK)
            put_bulk(&it->bytes, rp->val, rp->val_len);
        else
            put_null(&it->bytes);
    } else if (it->kind == ITEM_MGET) {
        if (rp->status == REPLICA_OK)
            mget_store(it, part, rp->val, rp->val_len);
    } else if (it->kind == ITEM_SET) {
        put_simple(&it->bytes, "OK");
    } else if (it->kind == ITEM_INT) {
        put_integer(&it->bytes, rp->num);
    } else if (it->kind == ITEM_SET_IF) {
        if (rp->num == 1)
            put_simple(&it->bytes, "OK");
        else
            put_null(&it->bytes); /* the condition did not hold: nil, as Redis */
    } else if (it->kind == ITEM_SUM_DEL) {
        it->sum += rp->status == REPLICA_OK ? rp->num : 0;
    } else if (it->kind == ITEM_SUM_EXISTS) {
        it->sum += rp->status == REPLICA_OK;
    } else if (it->kind == ITEM_KEYS || it->kind == ITEM_SCAN) {
        keys_finish(n, it);
    } else if (it->kind == ITEM_DBSIZE) {
        put_integer(&it->bytes, (int64_t)kv_count(replica_kv(n->rep)));
    }
    it->waiting--;
    if (it->waiting > 0 || it->failed) {
        /* more to come, or the error is the reply */
    } else if (it->kind == ITEM_SUM_DEL || it->kind == ITEM_SUM_EXISTS) {
        put_integer(&it->bytes, it->sum);
    } else if (it->kind == ITEM_MGET) {
        mget_finish(it);
    }
    if (it->waiting == 0)
        it->kind = ITEM_DONE;
}

/* Moves the finished prefix of the FIFO to the out buffer (N3). */
static void client_collect(struct node *n, struct client *c)
{
    while (c->head != NULL && c->head->kind == ITEM_DONE && c->head->waiting == 0) {
        struct item *it = c->head;
        if (!c->closed && !c->want_close)
            buf_append(&c->out, it->bytes.p + it->bytes.off, buf_unread(&it->bytes));
        if (it->close_after)
            c->want_close = true;
        c->head = it->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->n_items--;
        item_put(n, it);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Replica outputs                                                                            */

static void drain_outputs(struct node *n)
{
    struct replica_output out;
    replica_output(n->rep, &out);
    /* Log writes first, so the storage thread starts on them while the frames go out: a
     * leader's APPENDs leave before its own sync is done (§10.2.1). A submission that fails
     * (out of memory) lost its jobs: the replica's log is unusable, so the node stops. */
    if (out.n_log_jobs > 0 && node_storage_submit(n->storage, out.log_jobs, out.n_log_jobs) != RK_OK)
        n->storage_failed = true;
    for (size_t i = 0; i < out.n_frames; i++)
        peer_send(n, out.frames[i].to, out.frames[i].bytes, out.frames[i].len);
    for (size_t i = 0; i < out.n_replies; i++) {
        const struct replica_reply *rp = &out.replies[i];
        uint32_t s = (uint32_t)(rp->req_id % SLOTS_MAX);
        struct slot *sl = &n->slots[s];
        if (sl->req_id != rp->req_id || rp->req_id == 0) {
            node_log("warn", "reply for unknown request %" PRIu64, rp->req_id);
            continue;
        }
        struct client *c = sl->c;
        item_on_reply(n, sl->it, sl->part, rp);
        sl->req_id = 0;
        n->free_slots[n->n_free_slots++] = s;
        c->outstanding--;
        n->outstanding--;
        client_collect(n, c);
        client_free_if_done(n, c);
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
static bool batch_room(struct node *n, size_t arena_bytes)
{
    if (n->n_batch == BATCH_MAX ||
        (n->arena.len > 0 && n->arena.cap - n->arena.len < arena_bytes))
        batch_flush(n);
    return buf_reserve(&n->arena, arena_bytes);
}

/* Queues one replica request for part `part` of item it of client c. Key and value are borrowed
 * (from c's input buffer or the arena) until batch_flush (N5). cond: PUT_IF's; delta:
 * INCRBY's; 0 otherwise. */
static void request_add_full(struct node *n, struct client *c, struct item *it, uint32_t part,
                             uint8_t op, const struct resp_arg *key, const struct resp_arg *val,
                             uint8_t cond, int64_t delta)
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
    n->slots[s] = (struct slot){.req_id = req_id, .c = c, .it = it, .op = op, .part = part};
    it->waiting++;
    c->outstanding++;
    n->outstanding++;
    /* client_id 0: no session. A TCP connection neither duplicates nor replays a request, and
     * a client that retries after a TIMEOUT retries as a new request, as with Redis. */
    n->batch[n->n_batch++] = (struct replica_request){
        .req_id = req_id,
        .op = op,
        .client_id = 0,
        .key = key->ptr,
        .key_len = (uint32_t)key->len,
        .val = val ? val->ptr : NULL,
        .val_len = val ? (uint32_t)val->len : 0,
        .cond = cond,
        .delta = delta,
    };
}

static void request_add(struct node *n, struct client *c, struct item *it, uint8_t op,
                        const struct resp_arg *key, const struct resp_arg *val)
{
    request_add_full(n, c, it, 0, op, key, val, 0, 0);
}

/* A read barrier: a GET whose value nobody needs, answered once this node's state machine has
 * applied everything committed when it was asked (ReadIndex). KEYS, SCAN and DBSIZE read the
 * state machine when it is answered, so they are linearizable like GET. */
static void request_barrier(struct node *n, struct client *c, struct item *it)
{
    static const struct resp_arg none = {.ptr = (const uint8_t *)"", .len = 0};
    request_add(n, c, it, REPLICA_GET, &none, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Clients: commands                                                                          */

static bool arg_is(const struct resp_arg *a, const char *s)
{
    size_t l = strlen(s);
    return a->len == l && strncasecmp((const char *)a->ptr, s, l) == 0;
}

/* Copies an argument for an error line: at most 128 bytes, CR and LF as spaces (Redis does the
 * same so that the reply stays one line). */
static void arg_quote(char *dst, size_t cap, const struct resp_arg *a)
{
    size_t k = 0;
    for (uint64_t i = 0; i < a->len && i < 128 && k + 1 < cap; i++) {
        char ch = (char)a->ptr[i];
        dst[k++] = (ch == '\r' || ch == '\n') ? ' ' : ch;
    }
    dst[k] = 0;
}

static void reply_unknown(struct buf *b, const struct resp_request *rq)
{
    char line[1024], word[132];
    arg_quote(word, sizeof(word), &rq->args[0]);
    int k = snprintf(line, sizeof(line), "ERR unknown command '%s', with args beginning with: ",
                     word);
    for (uint32_t i = 1; i < rq->argc && k > 0 && (size_t)k < sizeof(line); i++) {
        arg_quote(word, sizeof(word), &rq->args[i]);
        k += snprintf(line + k, sizeof(line) - (size_t)k, "'%s' ", word);
    }
    put_error(b, line);
}

static void reply_arity(struct buf *b, const struct resp_arg *cmd)
{
    char line[256], word[132];
    arg_quote(word, sizeof(word), cmd);
    for (char *p = word; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    snprintf(line, sizeof(line), "ERR wrong number of arguments for '%s' command", word);
    put_error(b, line);
}

static void reply_info(struct node *n, struct buf *b)
{
    struct replica_info st;
    replica_info(n->rep, &st);
    const char *role = st.raft.role == RAFT_LEADER      ? "leader"
                       : st.raft.role == RAFT_CANDIDATE ? "candidate"
                                                        : "follower";
    char text[1024];
    int k = snprintf(text, sizeof(text),
                     "# Server\r\nraftkv_version:%s\r\nprocess_id:%ld\r\nuptime_in_seconds:%" PRIu64
                     "\r\n\r\n# Clients\r\nconnected_clients:%zu\r\n\r\n"
                     "# Replication\r\nrole:%s\r\nnode_id:%" PRIu64 "\r\nleader_id:%" PRIu64
                     "\r\nterm:%" PRIu64 "\r\ncommit_index:%" PRIu64 "\r\napplied_index:%" PRIu64
                     "\r\nlast_log_index:%" PRIu64 "\r\nkeys:%" PRIu64
                     "\r\nconnected_peers:%zu\r\npending_requests:%u\r\n",
                     RAFTKV_VERSION, (long)getpid(), (now_ms() - n->started_ms) / 1000,
                     n->n_clients, role, n->id, st.raft.leader, st.raft.term, st.raft.commit,
                     st.raft.applied, st.raft.last_index, st.keys, peers_connected(n), st.pending);
    put_bulk(b, (const uint8_t *)text, (uint64_t)k);
}

/* INCR key, DECR key, INCRBY key n, DECRBY key n: one INCRBY in the state machine, which
 * decides at apply time (a missing key counts as 0; Redis's errors for a stored value that is
 * not an integer and for an overflow). */
static void command_incr(struct node *n, struct client *c, struct item *it,
                         const struct resp_arg *a, uint32_t argc)
{
    bool by = arg_is(&a[0], "INCRBY") || arg_is(&a[0], "DECRBY");
    bool decr = arg_is(&a[0], "DECR") || arg_is(&a[0], "DECRBY");
    if (argc != (by ? 3u : 2u)) {
        reply_arity(&it->bytes, &a[0]);
        return;
    }
    int64_t delta = 1;
    if (by && !kv_parse_int64(a[2].ptr, a[2].len, &delta)) {
        put_error(&it->bytes, "ERR value is not an integer or out of range");
        return;
    }
    if (decr && delta == INT64_MIN) {
        put_error(&it->bytes, "ERR decrement would overflow"); /* Redis's DECRBY check */
        return;
    }
    it->kind = ITEM_INT;
    request_add_full(n, c, it, 0, REPLICA_INCRBY, &a[1], NULL, 0, decr ? -delta : delta);
}

/* MSET k1 v1 k2 v2 ...: one entry (a kv pairs blob in the arena), so every pair is applied at
 * once or none is, as in Redis. */
static void command_mset(struct node *n, struct client *c, struct item *it,
                         const struct resp_arg *a, uint32_t argc)
{
    if (argc < 3 || argc % 2 == 0) {
        reply_arity(&it->bytes, &a[0]);
        return;
    }
    size_t n_pairs = (argc - 1) / 2;
    for (size_t i = 0; i < n_pairs; i++) {
        const struct resp_arg *k = &a[1 + 2 * i], *v = &a[2 + 2 * i];
        if (k->len > KV_MAX_KEY_BYTES) {
            put_error(&it->bytes, "ERR key over the 64 KiB limit");
            return;
        }
        n->pairs[i] = (struct kv_pair){.key = k->ptr, .key_len = (uint32_t)k->len,
                                       .val = v->ptr, .val_len = (uint32_t)v->len};
    }
    size_t size = kv_pairs_size(n->pairs, n_pairs);
    if (size > KV_MAX_VALUE_BYTES) {
        put_error(&it->bytes, "ERR MSET over the 64 MiB command limit");
        return;
    }
    if (!batch_room(n, size)) {
        put_error(&it->bytes, "ERR out of memory");
        return;
    }
    size_t len = 0;
    uint8_t *blob = n->arena.p + n->arena.len;
    if (kv_pairs_encode(n->pairs, n_pairs, blob, n->arena.cap - n->arena.len, &len) != RK_OK) {
        put_error(&it->bytes, "ERR cannot encode the pairs");
        return;
    }
    n->arena.len += len;
    struct resp_arg none = {.ptr = (const uint8_t *)"", .len = 0};
    struct resp_arg pairs = {.ptr = blob, .len = len};
    it->kind = ITEM_SET;
    request_add_full(n, c, it, 0, REPLICA_MSET, &none, &pairs, 0, 0);
}

/* KEYS pattern, SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]. */
static void command_keys(struct node *n, struct client *c, struct item *it,
                         const struct resp_arg *a, uint32_t argc)
{
    struct buf *b = &it->bytes;
    bool scan = arg_is(&a[0], "SCAN");
    const struct resp_arg star = {.ptr = (const uint8_t *)"*", .len = 1};
    const struct resp_arg *pat = &star;
    if (!scan) {
        if (argc != 2) {
            reply_arity(b, &a[0]);
            return;
        }
        pat = &a[1];
    } else {
        int64_t cursor = 0, count = 0;
        if (argc < 2) {
            reply_arity(b, &a[0]);
            return;
        }
        if (!kv_parse_int64(a[1].ptr, a[1].len, &cursor) || cursor < 0) {
            put_error(b, "ERR invalid cursor");
            return;
        }
        for (uint32_t i = 2; i < argc; i += 2) {
            if (i + 1 >= argc) {
                put_error(b, "ERR syntax error");
                return;
            }
            if (arg_is(&a[i], "MATCH")) {
                pat = &a[i + 1];
            } else if (arg_is(&a[i], "COUNT")) {
                if (!kv_parse_int64(a[i + 1].ptr, a[i + 1].len, &count)) {
                    put_error(b, "ERR value is not an integer or out of range");
                    return;
                }
                if (count < 1) {
                    put_error(b, "ERR syntax error");
                    return;
                }
            } else if (arg_is(&a[i], "TYPE")) {
                it->no_match |= !arg_is(&a[i + 1], "string"); /* every value is a string */
            } else {
                put_error(b, "ERR syntax error");
                return;
            }
        }
        /* Our cursors are only ever 0: one call returns the whole keyspace. A later cursor
         * can only be one we never gave out; the iteration it asks to continue is over. */
        it->no_match |= cursor != 0;
    }
    if (!buf_append(&it->aux, pat->ptr, pat->len)) {
        put_error(b, "ERR out of memory");
        return;
    }
    it->kind = scan ? ITEM_SCAN : ITEM_KEYS;
    request_barrier(n, c, it);
}

/* MGET k1 k2 ...: one linearizable GET per key; the reply lists them in order. */
static void command_mget(struct node *n, struct client *c, struct item *it,
                         const struct resp_arg *a, uint32_t argc)
{
    if (argc < 2) {
        reply_arity(&it->bytes, &a[0]);
        return;
    }
    if (!mget_begin(it, argc - 1)) {
        put_error(&it->bytes, "ERR out of memory");
        return;
    }
    it->kind = ITEM_MGET;
    it->waiting = 1; /* held until every key is queued, so it cannot finish early */
    for (uint32_t i = 1; i < argc; i++)
        request_add_full(n, c, it, i - 1, REPLICA_GET, &a[i], NULL, 0, 0);
    struct replica_reply none = {.status = REPLICA_NOT_FOUND};
    item_on_reply(n, it, UINT32_MAX, &none);
}

/* CONFIG GET pattern: the settings a Redis client may ask for at start-up (redis-benchmark asks
 * for "save" and "appendonly"); CONFIG SET/RESETSTAT/REWRITE are refused. */
static void command_config(struct node *n, struct buf *b, const struct resp_arg *a, uint32_t argc)
{
    if (argc < 2 || !arg_is(&a[1], "GET")) {
        if (argc >= 2) {
            char word[132], line[200];
            arg_quote(word, sizeof(word), &a[1]);
            snprintf(line, sizeof(line), "ERR CONFIG %s is not supported by raftkv", word);
            put_error(b, line);
        } else {
            reply_arity(b, &a[0]);
        }
        return;
    }
    if (argc != 3) {
        reply_arity(b, &a[0]);
        return;
    }
    char maxclients[24];
    snprintf(maxclients, sizeof(maxclients), "%u", n->opt.max_clients);
    const char *settings[][2] = {{"save", ""},
                                 {"appendonly", "yes"},
                                 {"appendfsync", "always"},
                                 {"databases", "1"},
                                 {"maxclients", maxclients}};
    size_t k = 0, nset = sizeof(settings) / sizeof(settings[0]);
    for (size_t i = 0; i < nset; i++)
        k += glob_match(a[2].ptr, a[2].len, (const uint8_t *)settings[i][0],
                        strlen(settings[i][0]));
    put_array(b, (int64_t)(2 * k));
    for (size_t i = 0; i < nset; i++)
        if (glob_match(a[2].ptr, a[2].len, (const uint8_t *)settings[i][0],
                       strlen(settings[i][0]))) {
            put_bulk(b, (const uint8_t *)settings[i][0], strlen(settings[i][0]));
            put_bulk(b, (const uint8_t *)settings[i][1], strlen(settings[i][1]));
        }
}

/* One parsed request: appends its item to c's FIFO; replica requests go to the batch. */
static void client_command(struct node *n, struct client *c, const struct resp_request *rq)
{
    const struct resp_arg *a = rq->args;
    uint32_t argc = rq->argc;
    struct item *it = item_new(n, c, ITEM_DONE);
    if (it == NULL) {
        c->no_input = true;
        c->want_close = true;
        return;
    }
    struct buf *b = &it->bytes;
    if (arg_is(&a[0], "GET") || arg_is(&a[0], "SET") || arg_is(&a[0], "DEL") ||
        arg_is(&a[0], "EXISTS")) {
        bool get = arg_is(&a[0], "GET"), set = arg_is(&a[0], "SET");
        if ((get && argc != 2) || (set && argc < 3) || (!get && !set && argc < 2)) {
            reply_arity(b, &a[0]);
        } else if (set && argc > 3) {
            /* SET key value NX|XX; every other option (EX, PX, KEEPTTL, GET, ...) is refused. */
            bool nx = arg_is(&a[3], "NX"), xx = arg_is(&a[3], "XX");
            if (argc != 4 || (!nx && !xx)) {
                put_error(b, "ERR syntax error");
            } else {
                it->kind = ITEM_SET_IF;
                request_add_full(n, c, it, 0, REPLICA_PUT_IF, &a[1], &a[2],
                                 nx ? KV_COND_NX : KV_COND_XX, 0);
            }
        } else if (get || set) {
            it->kind = get ? ITEM_GET : ITEM_SET;
            request_add(n, c, it, get ? REPLICA_GET : REPLICA_PUT, &a[1], set ? &a[2] : NULL);
        } else {
            bool del = arg_is(&a[0], "DEL");
            it->kind = del ? ITEM_SUM_DEL : ITEM_SUM_EXISTS;
            /* Each key is its own replica request: not atomic across keys (Redis's DEL is). */
            it->waiting = 1; /* held until every key is queued, so it cannot finish early */
            for (uint32_t i = 1; i < argc; i++)
                request_add_full(n, c, it, i - 1, del ? REPLICA_DEL : REPLICA_GET, &a[i], NULL,
                                 0, 0);
            struct replica_reply none = {.status = REPLICA_NOT_FOUND};
            item_on_reply(n, it, UINT32_MAX, &none);
        }
    } else if (arg_is(&a[0], "MGET")) {
        command_mget(n, c, it, a, argc);
    } else if (arg_is(&a[0], "MSET")) {
        command_mset(n, c, it, a, argc);
    } else if (arg_is(&a[0], "INCR") || arg_is(&a[0], "DECR") || arg_is(&a[0], "INCRBY") ||
               arg_is(&a[0], "DECRBY")) {
        command_incr(n, c, it, a, argc);
    } else if (arg_is(&a[0], "KEYS") || arg_is(&a[0], "SCAN")) {
        command_keys(n, c, it, a, argc);
    } else if (arg_is(&a[0], "PING")) {
        if (argc == 1)
            put_simple(b, "PONG");
        else if (argc == 2)
            put_bulk(b, a[1].ptr, a[1].len);
        else
            reply_arity(b, &a[0]);
    } else if (arg_is(&a[0], "ECHO")) {
        if (argc == 2)
            put_bulk(b, a[1].ptr, a[1].len);
        else
            reply_arity(b, &a[0]);
    } else if (arg_is(&a[0], "SELECT")) {
        if (argc != 2)
            reply_arity(b, &a[0]);
        else if (a[1].len == 1 && a[1].ptr[0] == '0')
            put_simple(b, "OK");
        else
            put_error(b, "ERR DB index is out of range");
    } else if (arg_is(&a[0], "QUIT")) {
        put_simple(b, "OK");
        it->close_after = true;
        c->no_input = true;
    } else if (arg_is(&a[0], "DBSIZE")) {
        if (argc != 1) {
            reply_arity(b, &a[0]);
        } else {
            it->kind = ITEM_DBSIZE;
            request_barrier(n, c, it);
        }
    } else if (arg_is(&a[0], "INFO")) {
        reply_info(n, b);
    } else if (arg_is(&a[0], "COMMAND")) {
        put_array(b, 0); /* enough for redis-cli's start-up COMMAND DOCS */
    } else if (arg_is(&a[0], "CONFIG")) {
        command_config(n, b, a, argc);
    } else {
        reply_unknown(b, rq);
    }
    client_collect(n, c);
}

/* ------------------------------------------------------------------------------------------ */
/* Clients: I/O                                                                               */

static void client_set_events(struct node *n, struct client *c)
{
    if (c->closed)
        return;
    bool read = !c->no_input && !c->want_close && !n->stopping && c->n_items < CLIENT_ITEMS_MAX &&
                buf_unread(&c->out) < CLIENT_OUT_MAX_BYTES;
    bool write = buf_unread(&c->out) > 0;
    if (read != c->reading || write != c->want_out) {
        c->reading = read;
        c->want_out = write;
        ep_set(n, EPOLL_CTL_MOD, c->fd, (read ? EPOLLIN : 0) | (write ? EPOLLOUT : 0), &c->tag);
    }
}

static void client_close(struct node *n, struct client *c)
{
    if (c->closed)
        return;
    epoll_ctl(n->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->closed = true;
    buf_free(&c->out);
    /* c->in stays until the turn's batch is submitted (N5); freed with c. */
}

static void on_client_accept(struct node *n)
{
    for (int k = 0; k < 64; k++) {
        int fd = accept4(n->clisten_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                node_log("warn", "accept (clients): %s", strerror(errno));
            return;
        }
        if (n->n_clients >= n->opt.max_clients) {
            /* As Redis: say why, then close. What the client already sent is read first (a
             * close with unread bytes sends a reset, which can discard the reply). */
            static const char full[] = "-ERR max number of clients reached\r\n";
            char sink[4096];
            while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
            }
            ssize_t w = send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            shutdown(fd, SHUT_WR);
            close(fd);
            node_log("warn", "client refused: max-clients (%u) reached", n->opt.max_clients);
            continue;
        }
        struct client *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->tag.kind = EV_CLIENT;
        c->fd = fd;
        c->reading = true;
        if (ep_set(n, EPOLL_CTL_ADD, fd, EPOLLIN, &c->tag) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = n->clients;
        if (n->clients)
            n->clients->prev = c;
        n->clients = c;
        n->n_clients++;
    }
}

static void client_parse(struct node *n, struct client *c);

static void client_read(struct node *n, struct client *c)
{
    bool eof = false;
    size_t got = 0;
    while (got < CLIENT_READ_MAX_BYTES) {
        if (!buf_reserve(&c->in, 65536)) {
            c->want_close = true;
            return;
        }
        size_t room = c->in.cap - c->in.len;
        ssize_t r = read(c->fd, c->in.p + c->in.len, room);
        if (r > 0) {
            c->in.len += (size_t)r;
            got += (size_t)r;
            if ((size_t)r < room)
                break; /* drained for now: epoll (level-triggered) says when more comes, which
                          spares a read that would only say EAGAIN */
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            eof = true;
        break;
    }
    client_parse(n, c);
    if (eof)
        c->no_input = true; /* replies still go out; closed once the FIFO is empty */
}

/* Parses and executes the whole requests in c's input, up to the in-flight bound. */
static void client_parse(struct node *n, struct client *c)
{
    struct resp_request rq = {.args = n->args,
                              .cap_args = n->opt.max_args,
                              .scratch = n->inline_scratch,
                              .cap_scratch = n->opt.max_inline_bytes};
    c->parse_held = false;
    while (!c->no_input && !c->want_close) {
        if (c->n_items >= CLIENT_ITEMS_MAX) {
            c->parse_held = true;
            break;
        }
        size_t used = 0;
        struct rk_errmsg err = {{0}};
        int rc = resp_parse(c->in.p + c->in.off, buf_unread(&c->in), &n->limits, &rq, &used,
                            &err);
        if (rc == RK_EAGAIN)
            break;
        if (rc != RK_OK) {
            /* A protocol error or a request over the limits: the reply says which, then the
             * connection closes (what follows cannot be framed), as Redis does. */
            struct item *it = item_new(n, c, ITEM_DONE);
            char line[300];
            snprintf(line, sizeof(line), "ERR %s", err.text);
            if (it != NULL) {
                put_error(&it->bytes, line);
                it->close_after = true;
            }
            c->no_input = true;
            client_collect(n, c);
            break;
        }
        c->in.off += used; /* the bytes stay in place until the next read (N5) */
        if (rq.argc > 0)
            client_command(n, c, &rq);
    }
}

/* Writes c's replies; closes it when it asked to and everything is out. */
static void client_flush(struct node *n, struct client *c)
{
    if (c->closed)
        return;
    while (buf_unread(&c->out) > 0) {
        ssize_t w = send(c->fd, c->out.p + c->out.off, buf_unread(&c->out), MSG_NOSIGNAL);
        if (w > 0) {
            c->out.off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        client_close(n, c);
        return;
    }
    if (buf_unread(&c->out) == 0) {
        c->out.off = c->out.len = 0;
        if (c->want_close || (c->no_input && c->head == NULL)) {
            client_close(n, c);
            return;
        }
    }
    client_set_events(n, c);
}

/* ------------------------------------------------------------------------------------------ */
/* Set-up                                                                                     */

static int resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *len)
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

static int listen_on(const struct sockaddr_storage *ss, socklen_t len, const char *what)
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


static void usage(FILE *f)
{
    fprintf(f,
            "usage: raftkv-node --id N --peers ID=HOST:PORT,... --client HOST:PORT --data-dir DIR\n"
            "                   [--config FILE] [OPTION VALUE]... [--help]\n"
            "\n"
            "  --id N                   this node's id, one of the ids in --peers\n"
            "  --peers LIST             every member (this one too): id=host:port for peer traffic\n"
            "  --client HOST:PORT       where Redis-protocol clients connect\n"
            "  --data-dir DIR           durable state: DIR/log (Raft log), DIR/kv (Bitcask)\n"
            "  --config FILE            settings from FILE: one `name = value` per line, names as\n"
            "                           the options here without \"--\" (# or ; comments); an\n"
            "                           option given on the command line wins over the file\n"
            "  --cluster-id N           peers of another cluster are refused (default 1)\n"
            "  --tick-ms MS             one Raft tick (default 10)\n"
            "  --election-ticks A B     election timeout drawn from [A, B] ticks (default 10 20;\n"
            "                           in a file: election-ticks = 10 20)\n"
            "  --heartbeat-ticks N      leader heartbeat interval (default 2)\n"
            "  --request-timeout-ms MS  a request not answered by then gets -TIMEOUT (default 2000)\n"
            "  --shutdown-timeout-ms MS on SIGTERM/SIGINT, how long in-flight requests may take to\n"
            "                           finish before they are failed (default 3000)\n"
            "  --max-clients N          connections beyond are refused (default 10000)\n"
            "  --max-args N             arguments per request (default 65536)\n"
            "  --max-arg-bytes N        bytes per argument (default 67174400: a 64 MiB value)\n"
            "  --max-inline-bytes N     bytes of an inline (telnet-style) request (default 65536)\n");
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s == 0 || *s == '-')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != 0 || v < min || v > max)
        return false;
    *out = v;
    return true;
}

enum opt_kind { OPT_U64, OPT_U32, OPT_TEXT, OPT_PAIR };

/* The settings table, shared by the command line and the config file. */
struct opt_def {
    const char *name;
    enum opt_kind kind;
    size_t off; /* in struct options */
    uint64_t min, max; /* numbers; OPT_TEXT: the buffer's size in max */
    const char *hint;
};

#define OPT_NUM(name, kind, field, min, max, hint) \
    {name, kind, offsetof(struct options, field), min, max, hint}
#define OPT_STR(name, field, hint) \
    {name, OPT_TEXT, offsetof(struct options, field), 1, sizeof(((struct options *)0)->field), hint}

static const struct opt_def opt_defs[] = {
    OPT_NUM("id", OPT_U64, id, 1, UINT64_MAX, "an integer >= 1"),
    OPT_NUM("cluster-id", OPT_U64, cluster_id, 0, UINT64_MAX, "an integer"),
    OPT_STR("peers", peers, "ID=HOST:PORT,..."),
    OPT_STR("client", client, "HOST:PORT"),
    OPT_STR("data-dir", data_dir, "a directory"),
    OPT_NUM("tick-ms", OPT_U32, tick_ms, 1, 10000, "1..10000"),
    OPT_NUM("election-ticks", OPT_PAIR, election_min, 1, 100000, "two integers MIN MAX, MIN < MAX"),
    OPT_NUM("heartbeat-ticks", OPT_U32, heartbeat, 1, 100000, "1..100000"),
    OPT_NUM("request-timeout-ms", OPT_U32, request_timeout_ms, 10, 3600000, "10..3600000"),
    OPT_NUM("shutdown-timeout-ms", OPT_U32, shutdown_timeout_ms, 0, 3600000, "0..3600000"),
    OPT_NUM("max-clients", OPT_U32, max_clients, 1, 1000000, "1..1000000"),
    OPT_NUM("max-args", OPT_U32, max_args, 3, 1u << 20, "3..1048576"),
    OPT_NUM("max-arg-bytes", OPT_U64, max_arg_bytes, 1, RESP_MAX_BULK_DEFAULT,
            "1..67174400"),
    OPT_NUM("max-inline-bytes", OPT_U32, max_inline_bytes, 64, 1u << 20, "64..1048576"),
};

static const struct opt_def *opt_find(const char *name)
{
    for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++)
        if (strcmp(opt_defs[i].name, name) == 0)
            return &opt_defs[i];
    return NULL;
}

/* Sets one setting from its text; false (and why in *hint) when the value is bad. */
static bool opt_set(struct options *o, const struct opt_def *d, const char *value)
{
    char *field = (char *)o + d->off;
    uint64_t v = 0, v2 = 0;
    switch (d->kind) {
    case OPT_U64:
        if (!parse_u64(value, d->min, d->max, &v))
            return false;
        memcpy(field, &v, sizeof(v));
        return true;
    case OPT_U32: {
        if (!parse_u64(value, d->min, d->max, &v))
            return false;
        uint32_t v32 = (uint32_t)v;
        memcpy(field, &v32, sizeof(v32));
        return true;
    }
    case OPT_TEXT:
        if (*value == 0 || strlen(value) >= d->max)
            return false;
        memcpy(field, value, strlen(value) + 1);
        return true;
    case OPT_PAIR: {
        char a[32], b[32], extra;
        /* MIN < MAX: the timeout must be randomized, or nodes that start together can split
         * the vote round after round (Raft §5.2). */
        if (sscanf(value, "%31s %31s %c", a, b, &extra) != 2 || !parse_u64(a, d->min, d->max, &v) ||
            v >= d->max || !parse_u64(b, v + 1, d->max, &v2))
            return false;
        o->election_min = (uint32_t)v;
        o->election_max = (uint32_t)v2;
        return true;
    }
    }
    return false;
}

struct config_ctx {
    struct options *o;
    char error[512];
};

/* inih's handler: name = value, outside any section or in [raftkv]. */
static int config_line(void *user, const char *section, const char *name, const char *value)
{
    struct config_ctx *cx = user;
    if (section[0] != 0 && strcmp(section, "raftkv") != 0) {
        snprintf(cx->error, sizeof(cx->error), "unknown section [%s] (use none, or [raftkv])",
                 section);
        return 0;
    }
    /* inih takes "; ..." after a value as a comment; "# ..." too, as in most config files. */
    char text[4096];
    snprintf(text, sizeof(text), "%s", value);
    for (char *h = strchr(text, '#'); h != NULL; h = strchr(h + 1, '#'))
        if (h > text && (h[-1] == ' ' || h[-1] == '\t')) {
            *h = 0;
            break;
        }
    for (size_t k = strlen(text); k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t'); k--)
        text[k - 1] = 0;
    value = text;
    const struct opt_def *d = opt_find(name);
    if (d == NULL || strcmp(name, "config") == 0) {
        snprintf(cx->error, sizeof(cx->error), "unknown setting '%s' (see --help)", name);
        return 0;
    }
    if (!opt_set(cx->o, d, value)) {
        snprintf(cx->error, sizeof(cx->error), "bad value for %s: '%.200s' (%s)", name, value,
                 d->hint);
        return 0;
    }
    return 1;
}

static int load_config(const char *path, struct options *o)
{
    struct config_ctx cx = {.o = o};
    int rc = ini_parse(path, config_line, &cx);
    if (rc == -1) {
        fprintf(stderr, "raftkv-node: --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (rc != 0) {
        fprintf(stderr, "raftkv-node: %s line %d: %s\n", path, rc,
                cx.error[0] ? cx.error : "not `name = value`");
        return -1;
    }
    return 0;
}

/* Returns 0 ok, 1 help shown, -1 error (printed). The config file is read first, wherever
 * --config stands, so that the command line wins. */
static int parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){.cluster_id = 1,
                          .tick_ms = 10,
                          .election_min = 10,
                          .election_max = 20,
                          .heartbeat = 2,
                          .request_timeout_ms = 2000,
                          .shutdown_timeout_ms = 3000,
                          .max_clients = 10000,
                          .max_args = 65536,
                          .max_arg_bytes = RESP_MAX_BULK_DEFAULT,
                          .max_inline_bytes = RESP_MAX_INLINE_DEFAULT};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *f = argv[i];
            if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
                usage(stdout);
                return 1;
            }
            if (strncmp(f, "--", 2) != 0) {
                fprintf(stderr, "raftkv-node: unexpected argument '%s' (try --help)\n", f);
                return -1;
            }
            const struct opt_def *d = opt_find(f + 2);
            bool config = strcmp(f, "--config") == 0;
            if (d == NULL && !config) {
                fprintf(stderr, "raftkv-node: unknown option '%s' (try --help)\n", f);
                return -1;
            }
            int need = d != NULL && d->kind == OPT_PAIR ? 2 : 1;
            if (i + need >= argc) {
                fprintf(stderr, "raftkv-node: %s needs %s (try --help)\n", f,
                        need == 2 ? "two values" : "a value");
                return -1;
            }
            char value[64];
            const char *v = argv[i + 1];
            if (need == 2) {
                snprintf(value, sizeof(value), "%.30s %.30s", argv[i + 1], argv[i + 2]);
                v = value;
            }
            i += need;
            if (config) {
                if (pass == 0 && load_config(v, o) != 0)
                    return -1;
            } else if (pass == 1 && !opt_set(o, d, v)) {
                fprintf(stderr, "raftkv-node: bad value for %s: '%s' (%s)\n", f, v, d->hint);
                return -1;
            }
        }
    }
    const char *missing = o->id == 0            ? "--id"
                          : o->peers[0] == 0    ? "--peers"
                          : o->client[0] == 0   ? "--client"
                          : o->data_dir[0] == 0 ? "--data-dir"
                                                : NULL;
    if (missing != NULL) {
        fprintf(stderr, "raftkv-node: %s is required (try --help)\n", missing);
        return -1;
    }
    if (o->heartbeat >= o->election_min) {
        fprintf(stderr, "raftkv-node: --heartbeat-ticks must be below the election minimum\n");
        return -1;
    }
    return 0;
}

/* Parses --peers into n->peers (every member but self) and self's address. */
static int parse_peers(struct node *n, const char *list, struct raft_config *rc)
{
    char *copy = strdup(list);
    bool self_seen = false;
    rc->n_voters = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        uint64_t id = 0;
        if (eq == NULL) {
            fprintf(stderr, "raftkv-node: --peers: '%s' is not ID=HOST:PORT\n", tok);
            goto err_free;
        }
        *eq = 0;
        if (!parse_u64(tok, 1, UINT64_MAX, &id)) {
            fprintf(stderr, "raftkv-node: --peers: bad id '%s'\n", tok);
            goto err_free;
        }
        for (uint32_t i = 0; i < rc->n_voters; i++)
            if (rc->voters[i] == id) {
                fprintf(stderr, "raftkv-node: --peers: id %" PRIu64 " twice\n", id);
                goto err_free;
            }
        if (rc->n_voters == RAFT_MAX_VOTERS) {
            fprintf(stderr, "raftkv-node: --peers: at most %d members\n", RAFT_MAX_VOTERS);
            goto err_free;
        }
        struct sockaddr_storage ss;
        socklen_t sl = 0;
        if (resolve(eq + 1, &ss, &sl) != 0) {
            fprintf(stderr, "raftkv-node: --peers: cannot resolve '%s' (HOST:PORT)\n", eq + 1);
            goto err_free;
        }
        rc->voters[rc->n_voters++] = id;
        if (id == n->id) {
            self_seen = true;
            n->self_addr = ss;
            n->self_addr_len = sl;
            snprintf(n->self_peer_addr, sizeof(n->self_peer_addr), "%s", eq + 1);
            continue;
        }
        struct peer *p = &n->peers[n->n_peers++];
        memset(p, 0, sizeof(*p));
        p->tag.kind = EV_PEER;
        p->id = id;
        snprintf(p->addr_text, sizeof(p->addr_text), "%s", eq + 1);
        p->addr = ss;
        p->addr_len = sl;
        p->dialer = n->id < id;
        p->c.fd = -1;
        p->backoff_ms = PEER_BACKOFF_MIN_MS;
    }
    if (!self_seen) {
        fprintf(stderr, "raftkv-node: --peers does not list --id %" PRIu64 "\n", n->id);
        goto err_free;
    }
    free(copy);
    return 0;

err_free:
    free(copy);
    return -1;
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
        struct log_seglog_config lc = {.fs = n->fs_log, .alloc = rk_alloc_libc()};
        rc = log_seglog_open(&lc, &n->log, &err);
    }
    if (rc == RK_OK) {
        struct bc_config bcc = {.fs = n->fs_kv, .alloc = rk_alloc_libc()};
        rc = bc_open(&bcc, &n->bc, &err);
        if (rc == RK_OK)
            n->store = bc_kv_store(n->bc);
    }
    if (rc != RK_OK)
        node_log("error", "cannot open the data directory %s: %s", dir, err.text);
    return rc;
}

static void close_storage(struct node *n)
{
    if (n->store)
        n->store->ops->destroy(n->store); /* closes the bitcask */
    if (n->log)
        n->log->ops->destroy(n->log);
    fs_posix_close(n->fs_kv);
    fs_posix_close(n->fs_log);
    fs_posix_close(n->fs_root);
}

static int setup_fds(struct node *n, const char *client_addr)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (resolve(client_addr, &ss, &sl) != 0) {
        node_log("error", "--client: cannot resolve '%s' (HOST:PORT)", client_addr);
        return -1;
    }
    n->ep = epoll_create1(EPOLL_CLOEXEC);
    n->plisten_fd = listen_on(&n->self_addr, n->self_addr_len, n->self_peer_addr);
    n->clisten_fd = listen_on(&ss, sl, client_addr);
    if (n->ep < 0 || n->plisten_fd < 0 || n->clisten_fd < 0)
        return -1;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
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
    for (size_t i = 0; i < PENDING_CONNS_MAX; i++) {
        n->pending[i].tag.kind = EV_PENDING;
        n->pending[i].c.fd = -1;
    }
    if (ep_set(n, EPOLL_CTL_ADD, n->timer_fd, EPOLLIN, &n->timer_tag) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, n->signal_fd, EPOLLIN, &n->signal_tag) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, n->plisten_fd, EPOLLIN, &n->plisten_tag) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, n->clisten_fd, EPOLLIN, &n->clisten_tag) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The loop                                                                                   */

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
    uint64_t now = now_ms();
    for (size_t i = 0; i < n->n_peers; i++) {
        struct peer *p = &n->peers[i];
        if (p->dialer && p->c.fd < 0 && now >= p->retry_at_ms)
            peer_dial(n, p);
    }
    /* A connection that never says who it is must not hold a slot forever. */
    for (size_t i = 0; i < PENDING_CONNS_MAX; i++) {
        struct pending *pd = &n->pending[i];
        if (pd->used && now - pd->accepted_ms >= HANDSHAKE_TIMEOUT_MS) {
            node_log("warn", "peer connection dropped: no handshake within %u ms",
                     HANDSHAKE_TIMEOUT_MS);
            pconn_close(n, &pd->c);
            pd->used = false;
        }
    }
}

/* Log writes the storage thread finished: back to the replica, in order (replica.h). Deferred
 * like every other input: end_of_turn runs the ready loop once for all of them. */
static void on_storage_done(struct node *n)
{
    struct replica_log_job *done[256];
    size_t k;
    while ((k = node_storage_take_done(n->storage, done, 256)) > 0) {
        for (size_t i = 0; i < k; i++)
            replica_log_job_done(n->rep, done[i]);
        drain_outputs(n);
    }
}

static void on_event(struct node *n, struct ev_tag *tag, uint32_t events)
{
    switch (tag->kind) {
    case EV_STORAGE:
        on_storage_done(n);
        break;
    case EV_TIMER:
        on_timer(n);
        break;
    case EV_SIGNAL: {
        struct signalfd_siginfo si;
        if (read(n->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            node_log("info", "signal %u: %s", si.ssi_signo,
                     n->stopping ? "stopping now" : "shutting down");
            n->stopping_again = n->stopping;
            n->stopping = true;
        }
        break;
    }
    case EV_PEER_LISTEN:
        on_peer_accept(n);
        break;
    case EV_CLIENT_LISTEN:
        on_client_accept(n);
        break;
    case EV_PEER:
        on_peer_event(n, (struct peer *)tag, events);
        break;
    case EV_PENDING:
        on_pending_event(n, (struct pending *)tag, events);
        break;
    case EV_CLIENT: {
        struct client *c = (struct client *)tag;
        if (!c->closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
            client_read(n, c);
        break;
    }
    }
}

/* End of a turn: submit the batch, write every connection, free finished clients. */
static void end_of_turn(struct node *n)
{
    /* Input left unparsed while the connection was at its in-flight bound. */
    for (struct client *c = n->clients; c != NULL; c = c->next)
        if (!c->closed && !n->stopping && c->parse_held && c->n_items < CLIENT_ITEMS_MAX / 2)
            client_parse(n, c);
    batch_flush(n);
    /* Every frame and request of this turn was only fed to raft: one ready loop for all of
     * them, so they share one log sync (group commit) and one round of appends. */
    replica_flush(n->rep);
    drain_outputs(n);
    for (struct client *c = n->clients, *next; c != NULL; c = next) {
        next = c->next;
        client_collect(n, c);
        client_flush(n, c);
        client_free_if_done(n, c);
    }
    for (size_t i = 0; i < n->n_peers; i++) {
        const char *why = "error";
        struct peer *p = &n->peers[i];
        if (p->c.fd >= 0 && !pconn_flush(n, &p->c, &p->tag, &why))
            peer_lost(n, p, why);
    }
}

/* One turn of the loop: wait (at most timeout_ms, -1: no bound), handle what came, end the
 * turn. 0, or 1 when the node must stop at once (epoll or storage failed). */
static int turn(struct node *n, int timeout_ms)
{
    struct epoll_event evs[EVENTS_MAX];
    int k = epoll_wait(n->ep, evs, EVENTS_MAX, timeout_ms);
    if (k < 0 && errno != EINTR) {
        node_log("error", "epoll_wait: %s", strerror(errno));
        return 1;
    }
    for (int i = 0; i < k; i++)
        on_event(n, evs[i].data.ptr, evs[i].events);
    end_of_turn(n);
    struct rk_errmsg why = {{0}};
    if (replica_failed(n->rep, &why)) {
        node_log("error", "storage failed, stopping: %s", why.text);
        return 1;
    }
    if (n->storage_failed) {
        node_log("error", "storage failed, stopping: out of memory queueing log writes");
        return 1;
    }
    return 0;
}

/* A connected peer to hand leadership to on shutdown, or 0. */
static uint64_t transfer_target(struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].c.fd >= 0 && n->peers[i].c.hs_in)
            return n->peers[i].id;
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
    epoll_ctl(n->ep, EPOLL_CTL_DEL, n->clisten_fd, NULL);
    close(n->clisten_fd);
    n->clisten_fd = -1;
    for (struct client *c = n->clients; c != NULL; c = c->next)
        client_set_events(n, c); /* stopping: no more reads */
    struct replica_info st;
    replica_info(n->rep, &st);
    uint64_t target = transfer_target(n);
    bool transferring = st.raft.role == RAFT_LEADER && target != 0 &&
                        replica_transfer_leader(n->rep, target) == RK_OK;
    if (transferring)
        node_log("info", "handing leadership to node %" PRIu64, target);
    uint64_t deadline = now_ms() + n->opt.shutdown_timeout_ms;
    while (!n->stopping_again) {
        replica_info(n->rep, &st);
        bool transfer_done = !transferring || st.raft.role != RAFT_LEADER;
        uint64_t now = now_ms();
        if ((n->outstanding == 0 && transfer_done) || now >= deadline)
            break;
        uint64_t left = deadline - now;
        if (turn(n, left > n->tick_ms ? (int)n->tick_ms : (int)left) != 0)
            return 1;
    }
    if (n->outstanding > 0)
        node_log("warn", "%" PRIu64 " requests still in flight at shutdown: failed", n->outstanding);
    for (struct client *c = n->clients; c != NULL; c = c->next) {
        for (struct item *it = c->head; it != NULL; it = it->next) {
            if (it->waiting == 0)
                continue;
            bool read = it->kind == ITEM_GET || it->kind == ITEM_MGET || it->kind == ITEM_KEYS ||
                        it->kind == ITEM_SCAN || it->kind == ITEM_DBSIZE ||
                        it->kind == ITEM_SUM_EXISTS;
            it->bytes.len = it->bytes.off = 0;
            put_error(&it->bytes, read ? "TRYAGAIN node shutting down"
                                       : "TIMEOUT node shutting down: the write may or may not "
                                         "have been applied");
            it->waiting = 0;
            it->kind = ITEM_DONE;
        }
        c->outstanding = 0;
        c->no_input = true;
        client_collect(n, c);
    }
    n->outstanding = 0;
    /* Write what the sockets take without waiting long for slow readers. */
    uint64_t flush_deadline = now_ms() + 200;
    for (bool pending = true; pending && now_ms() < flush_deadline;) {
        pending = false;
        for (struct client *c = n->clients, *next; c != NULL; c = next) {
            next = c->next;
            client_flush(n, c);
            pending |= !c->closed && buf_unread(&c->out) > 0;
        }
        if (pending)
            poll(NULL, 0, 1);
    }
    for (struct client *c = n->clients, *next; c != NULL; c = next) {
        next = c->next;
        client_close(n, c);
        client_free_if_done(n, c);
    }
    close(n->plisten_fd);
    for (size_t i = 0; i < n->n_peers; i++)
        pconn_close(n, &n->peers[i].c);
    for (size_t i = 0; i < PENDING_CONNS_MAX; i++)
        if (n->pending[i].used)
            pconn_close(n, &n->pending[i].c);
    return 0;
}

static int run(struct node *n)
{
    while (!n->stopping)
        if (turn(n, -1) != 0)
            return 1;
    return shutdown_node(n);
}

int main(int argc, char **argv)
{
    struct options o;
    int prc = parse_args(argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    g_node_id = o.id;
    static struct node node;
    struct node *n = &node;
    n->id = o.id;
    n->cluster_id = o.cluster_id;
    n->tick_ms = o.tick_ms;
    n->opt = o;
    n->started_ms = now_ms();
    n->limits = (struct resp_limits){.max_args = o.max_args,
                                     .max_bulk = o.max_arg_bytes,
                                     .max_inline = o.max_inline_bytes};
    n->args = calloc(o.max_args, sizeof(*n->args));
    n->inline_scratch = malloc(o.max_inline_bytes);
    n->pairs = calloc(o.max_args / 2, sizeof(*n->pairs));
    if (n->args == NULL || n->inline_scratch == NULL || n->pairs == NULL) {
        node_log("error", "out of memory for --max-args %u", o.max_args);
        return 1;
    }

    struct replica_config c;
    replica_config_default(&c);
    c.raft.id = o.id;
    if (parse_peers(n, o.peers, &c.raft) != 0)
        return 2;
    c.raft.election_ticks_min = o.election_min;
    c.raft.election_ticks_max = o.election_max;
    c.raft.heartbeat_ticks = o.heartbeat;
    c.raft.logger.fn = raft_log_sink;
    c.max_pending = SLOTS_MAX;
    c.request_timeout_ticks = (o.request_timeout_ms + o.tick_ms - 1) / o.tick_ms;
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

    if (open_storage(n, o.data_dir) != RK_OK) {
        close_storage(n);
        return 1;
    }
    c.log = n->log;
    c.store = n->store;
    c.alloc = rk_alloc_libc();
    c.async_log = true;
    struct rk_errmsg err = {{0}};
    if (replica_create(&c, &n->rep, &err) != RK_OK) {
        node_log("error", "cannot start the replica: %s", err.text);
        close_storage(n);
        return 1;
    }
    replica_set_deferred(n->rep, true); /* flushed once per loop turn: end_of_turn */
    if (node_storage_start(&n->storage, &err) != RK_OK) {
        node_log("error", "cannot start: %s", err.text);
        replica_destroy(n->rep);
        close_storage(n);
        return 1;
    }
    n->storage_tag.kind = EV_STORAGE;
    if (setup_fds(n, o.client) != 0 ||
        ep_set(n, EPOLL_CTL_ADD, node_storage_fd(n->storage), EPOLLIN, &n->storage_tag) != 0) {
        node_storage_stop(n->storage);
        replica_destroy(n->rep);
        close_storage(n);
        return 1;
    }
    node_log("info", "up: peers on %s, clients on %s, data in %s, %zu peers, tick %u ms",
             n->self_peer_addr, o.client, o.data_dir, n->n_peers, n->tick_ms);
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].dialer)
            peer_dial(n, &n->peers[i]);
    int rc = run(n);
    /* The log's last writes finish before the store is synced and the log closed. */
    node_storage_stop(n->storage);
    if (rc == 0 && n->store->ops->sync(n->store) != RK_OK) {
        node_log("error", "sync of the state machine's store failed at shutdown");
        rc = 1;
    }
    replica_destroy(n->rep);
    close_storage(n);
    node_log("info", rc == 0 ? "stopped" : "stopped after an error");
    return rc;
}
