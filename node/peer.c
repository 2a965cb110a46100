/*
 * peer.c — peer transport: one TCP connection per pair of members (the lower id dials), a codec
 * handshake in both directions before anything else (N1), reconnection with exponential backoff
 * (PEER_BACKOFF_MIN_MS .. PEER_BACKOFF_MAX_MS), and a bounded send queue per peer (N2). Frames
 * that passed the handshake go to the replica through server_peer_frame (server.c).
 *
 * Two lanes (protocol 2, codec.h FRAG). A frame of more than CODEC_FRAG_MAX bytes (an APPEND of
 * a big value) goes out in FRAG pieces, and small frames are written between the pieces, so a
 * heartbeat, a vote or an acknowledgment waits for at most one piece, not for the whole 64 MiB
 * (head-of-line blocking on the one TCP connection cost an election per big value). Order:
 *   - out holds small frames, written whole and in order; bulk holds the big frames and the data
 *     frames (APPEND, SNAP, FORWARD) queued while a big frame is there, in order. So APPENDs
 *     keep their order among themselves, and only control frames (heartbeats, votes, responses,
 *     read index) overtake a big frame: Raft tolerates any reordering (the simulator reorders
 *     every message), and these are the messages whose delay costs elections.
 *   - what out held when bulk became non-empty goes before bulk's head (ctl_first); after that
 *     the two lanes take turns one unit at a time (a run of out's bytes, or one piece).
 *   - a unit is written to the end before the next starts: frames never interleave mid-frame.
 * Who dials (issue #17): the lower id of a pair, at the address its latest configuration
 * records for the other (peer_sync_conf). That address may be old (the lower id was away while
 * the other moved and `member update` recorded it, and the other is the leader it would learn
 * the new one from): so the higher id dials too once it has had no connection for
 * PEER_REVERSE_DIAL_MS, and the lower id accepts such a connection while it has none that got
 * past the handshake. The last connection to arrive replaces the one before, as before.
 * Coming in, FRAG pieces are collected by codec_reasm into one buffer of exactly the frame's
 * size (no growing buffer, no memmove of what is already in), and the connection's input
 * buffer stays within a few pieces.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "codec/codec.h"
#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc32c.h"
#include "server.h"
#include "tls.h"

enum { PCONN_UNIT_NONE = 0, PCONN_UNIT_CTL, PCONN_UNIT_BULK };

/* Why a TLS step failed, for the `why` of the functions below (one loop thread). */
static char tls_why[256];

/* A new connection's state: nothing queued, no piece half in; with tls-peers, a TLS session
 * whose handshake comes first (tls.h T1). false: out of memory. */
static bool pconn_init(struct node *n, struct pconn *c, int fd, bool dialer)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->opened_ms = node_now_ms();
    if (node_tls_peers(n)) {
        c->ssl = node_tls_new(n, fd, false, dialer);
        c->tls_hs = true;
        if (c->ssl == NULL)
            return false;
    }
    codec_reasm_init(&c->reasm, rk_alloc_libc(), (uint32_t)n->lim.max_frame);
    return true;
}

static void pframe_free(struct node *n, struct pframe *f)
{
    if (f->hold != 0)
        server_frame_release(n, f->hold);
    free(f);
}

static void pconn_close(struct node *n, struct pconn *c)
{
    node_tls_free(c->ssl);
    if (c->fd >= 0) {
        epoll_ctl(n->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    buf_free(&c->in);
    buf_free(&c->out);
    for (struct pframe *f = c->bulk_head, *next; f != NULL; f = next) {
        next = f->next;
        pframe_free(n, f);
    }
    if (c->reasm.alloc != NULL)
        codec_reasm_free(&c->reasm);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static bool pconn_queue_handshake(const struct node *n, struct pconn *c)
{
    uint8_t hs[CODEC_HANDSHAKE_FRAME_SIZE];
    size_t len = 0;
    struct codec_handshake h = {
        .version = CODEC_PROTOCOL_VERSION,
        .cluster_id = n->cluster_id,
        .node_id = n->id,
        .session_bound = n->session_bound,
    };
    if (codec_encode_handshake(&h, hs, sizeof(hs), &len) != RK_OK)
        return false;
    return buf_append(&c->out, hs, len);
}

void peer_lost(struct node *n, struct peer *p, const char *why)
{
    if (p->c.hs_in) {
        node_event("warn", "peer_lost", why, "peer=%" PRIu64 " addr=%s", p->id, p->addr_text);
        p->down_since_ms = node_now_ms();
    }
    pconn_close(n, &p->c);
    {
        p->retry_at_ms = node_now_ms() + p->backoff_ms;
        p->backoff_ms = p->backoff_ms * 2 > PEER_BACKOFF_MAX_MS ? PEER_BACKOFF_MAX_MS
                                                                : p->backoff_ms * 2;
    }
}

void peer_dial(struct node *n, struct peer *p)
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
    bool init = pconn_init(n, &p->c, fd, true);
    p->c.connecting = rc != 0;
    p->c.want_out = true;
    if (!init || !pconn_queue_handshake(n, &p->c) ||
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

size_t peers_connected(const struct node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_peers; i++)
        k += n->peers[i].c.fd >= 0 && n->peers[i].c.hs_in;
    return k;
}

/* The frame types whose order among themselves matters to the receiver's progress (an APPEND
 * overtaken by the next is refused and sent again; snapshot chunks go in order); they queue
 * behind a big frame, the others overtake it. */
static bool is_data_frame(const uint8_t *bytes, size_t len)
{
    if (len <= CODEC_FRAME_HEADER_SIZE)
        return true;
    uint8_t type = bytes[CODEC_FRAME_HEADER_SIZE];
    return type == RAFT_MSG_APPEND || type == CODEC_TYPE_SNAP || type == CODEC_TYPE_FORWARD;
}

/* Queues frame f behind the big ones: its copied segments (or its bytes) are copied, its held
 * segments pointed at. false: out of memory. */
static bool bulk_push(struct pconn *c, const struct replica_frame *f)
{
    size_t n_segs = f->n_segs > 0 ? f->n_segs : 1, copied = 0;
    for (size_t i = 0; i < f->n_segs; i++)
        copied += f->segs[i].held ? 0 : f->segs[i].len;
    if (f->n_segs == 0)
        copied = f->len;
    struct pframe *q = malloc(sizeof(*q) + n_segs * sizeof(q->segs[0]) + copied);
    if (q == NULL)
        return false;
    *q = (struct pframe){.len = f->len, .hold = f->hold, .n_segs = n_segs};
    uint8_t *bytes = (uint8_t *)(q->segs + n_segs);
    if (f->n_segs == 0) {
        memcpy(bytes, f->bytes, f->len);
        q->segs[0] = (struct pseg){.p = bytes, .len = f->len};
    }
    for (size_t i = 0; i < f->n_segs; i++) {
        const struct replica_seg *sg = &f->segs[i];
        if (!sg->held) {
            memcpy(bytes, sg->p, sg->len);
            q->segs[i] = (struct pseg){.p = bytes, .len = sg->len};
            bytes += sg->len;
        } else {
            q->segs[i] = (struct pseg){.p = sg->p, .len = sg->len};
        }
    }
    if (c->bulk_head == NULL) {
        c->bulk_head = q;
        c->ctl_first = buf_unread(&c->out); /* queued before: goes before */
    } else {
        c->bulk_tail->next = q;
    }
    c->bulk_tail = q;
    c->bulk_bytes += q->len;
    return true;
}

/* Queues one frame for its peer (N2): big ones and the data frames behind them in bulk, the
 * rest in out (see "Two lanes" above). A frame in pieces is always big (replica.h). */
void peer_send(struct node *n, const struct replica_frame *f)
{
    RK_ASSERT(f->n_segs == 0 || f->len > CODEC_FRAG_MAX); /* its CRC is 0: FRAG pieces only */
    struct peer *p = peer_by_id(n, f->to);
    bool ok = p != NULL && p->c.fd >= 0 &&
              buf_unread(&p->c.out) + p->c.bulk_bytes + f->len <= n->lim.peer_queue;
    if (ok) {
        bool bulk =
            f->len > CODEC_FRAG_MAX || (p->c.bulk_head != NULL && is_data_frame(f->bytes, f->len));
        ok = bulk ? bulk_push(&p->c, f) : buf_append(&p->c.out, f->bytes, f->len);
    }
    if (ok) {
        p->bytes_out += f->len;
        /* The frame's header (and type) is its bytes, or its first piece. */
        if (f->n_segs == 0)
            node_metrics_frame(n->metrics->msgs_out, f->bytes, f->len);
        else
            node_metrics_frame(n->metrics->msgs_out, f->segs[0].p, f->segs[0].len);
        return;
    }
    if (p != NULL)
        p->dropped_frames++;
    if (f->hold != 0)
        server_frame_release(n, f->hold);
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
    if (hs.session_bound != n->session_bound) {
        /* Every replica must evict the same session (node/README.md "Sessions"): members whose
         * bounds differ would apply the same log to different states. */
        rk_errf(err, RK_EINVAL,
                "node %" PRIu64 " keeps at most %" PRIu32 " sessions, this node %" PRIu32
                ": max-clients and --session-members (or the nodes of --peers) must be the same "
                "on every member",
                hs.node_id, hs.session_bound, n->session_bound);
        return 0;
    }
    return hs.node_id;
}

/* Reads what is there into c->in. Returns false on EOF or error (why set). A TLS read returns
 * one record (16 KiB) at most: more rounds for about the same bytes; one that stops at the
 * bound marks the connection to be read again (tls_more: epoll cannot see OpenSSL's bytes). */
static bool pconn_read(struct node *n, struct pconn *c, const char **why)
{
    int max_rounds = c->ssl != NULL ? 80 : 16;
    for (int rounds = 0; rounds < max_rounds; rounds++) {
        if (!buf_reserve(&c->in, 65536)) {
            *why = "out of memory";
            return false;
        }
        size_t room = c->in.cap - c->in.len;
        if (c->ssl != NULL) {
            enum tls_step st = TLS_DONE;
            size_t got =
                node_tls_read(c->ssl, c->in.p + c->in.len, room, &st, tls_why, sizeof(tls_why));
            c->in.len += got;
            if (got > 0 && !node_tls_pending(c->ssl))
                return true; /* drained for now: epoll says when more comes */
            if (got > 0)
                continue;
            if (st == TLS_WANT_READ)
                return true;
            if (st == TLS_WANT_WRITE)
                break; /* a key update to answer: again next turn */
            *why = st == TLS_CLOSED ? "closed by peer" : tls_why;
            return false;
        }
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
    if (c->ssl != NULL) {
        c->tls_more = true;
        n->tls_more = true;
    }
    return true;
}

/* Feeds the complete frames of p's input to the replica. Returns false to drop the link. */
static bool peer_feed(struct node *n, struct peer *p, const char **why)
{
    struct rk_errmsg err = {{0}};
    for (;;) {
        size_t flen = 0;
        int rc = codec_frame_peek(p->c.in.p + p->c.in.off, buf_unread(&p->c.in),
                                  (uint32_t)n->lim.max_frame, &flen, &err);
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
                char msg[300];
                snprintf(msg, sizeof(msg), "peer refused: %s",
                         id == 0 ? err.text : "it is another node");
                node_event("warn", "peer_refused", msg, "peer=%" PRIu64 " addr=%s", p->id,
                           p->addr_text);
                *why = "handshake refused";
                return false;
            }
            p->c.hs_in = true;
            p->down_since_ms = 0;
            p->backoff_ms = PEER_BACKOFF_MIN_MS;
            node_event("info", "peer_connected", "peer connected", "peer=%" PRIu64 " addr=%s",
                       p->id, p->addr_text);
        } else {
            p->bytes_in += flen;
            const uint8_t *whole = NULL;
            size_t wlen = 0;
            rc = codec_reasm_feed(&p->c.reasm, frame, flen, &whole, &wlen, &err);
            if (rc != RK_OK && rc != RK_EAGAIN) {
                node_log("warn", "peer %" PRIu64 ": %s", p->id, err.text);
                *why = "bad frame piece";
                return false;
            }
            if (rc == RK_OK)
                node_metrics_frame(n->metrics->msgs_in, whole, wlen);
            if (rc == RK_OK && whole == frame)
                server_peer_frame(n, p->id, whole, wlen);
            else if (rc == RK_OK)
                server_peer_frame_pieces(n, p->id, whole, wlen);
        }
        p->c.in.off += flen;
    }
}

#define UNIT_IOV_MAX 16

/* Fills iov (at most cap) with the bytes [from, from + n) of f; returns how many iovecs, and in
 * *got how many bytes they hold (less than n when cap ran out). */
static int pframe_iov(const struct pframe *f, size_t from, size_t n, struct iovec *iov, int cap,
                      size_t *got)
{
    int k = 0;
    size_t pos = 0;
    *got = 0;
    for (size_t i = 0; i < f->n_segs && k < cap && *got < n; i++) {
        const struct pseg *sg = &f->segs[i];
        if (pos + sg->len <= from) {
            pos += sg->len;
            continue;
        }
        size_t at = from > pos ? from - pos : 0;
        size_t take = sg->len - at < n - *got ? sg->len - at : n - *got;
        iov[k++] = (struct iovec){.iov_base = (uint8_t *)sg->p + at, .iov_len = take};
        *got += take;
        pos += sg->len;
    }
    return k;
}

/* Starts the next unit to write (see "Two lanes"). false: nothing is queued. */
static bool unit_start(struct pconn *c)
{
    bool ctl = buf_unread(&c->out) > 0, bulk = c->bulk_head != NULL;
    if (!ctl && !bulk)
        return false;
    if (ctl && (!bulk || c->ctl_first > 0 || !c->last_ctl)) {
        c->unit = PCONN_UNIT_CTL;
        c->last_ctl = true;
        c->unit_left = buf_unread(&c->out);
        return true;
    }
    struct pframe *f = c->bulk_head;
    size_t left = f->len - f->sent;
    c->unit = PCONN_UNIT_BULK;
    c->last_ctl = false;
    if (f->len <= CODEC_FRAG_MAX) { /* a small data frame behind a big one: whole */
        c->unit_hdr_len = 0;
        c->unit_piece = left;
    } else {
        /* A piece: at most CODEC_FRAG_MAX bytes in at most UNIT_IOV_MAX - 1 segments. */
        struct iovec iov[UNIT_IOV_MAX - 1];
        size_t piece = 0;
        int k = pframe_iov(f, f->sent, left < CODEC_FRAG_MAX ? left : CODEC_FRAG_MAX, iov,
                           UNIT_IOV_MAX - 1, &piece);
        uint32_t crc =
            codec_frag_begin(c->unit_hdr, (uint32_t)f->len, (uint32_t)f->sent, (uint32_t)piece);
        for (int i = 0; i < k; i++)
            crc = rk_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
        codec_frag_seal(c->unit_hdr, crc);
        c->unit_hdr_len = CODEC_FRAG_HEADER_SIZE;
        c->unit_piece = piece;
    }
    c->unit_left = c->unit_hdr_len + c->unit_piece;
    return true;
}

/* The unit's bytes still to write (at most UNIT_IOV_MAX iovecs). */
static int unit_iov(const struct pconn *c, struct iovec iov[UNIT_IOV_MAX])
{
    if (c->unit == PCONN_UNIT_CTL) {
        iov[0] = (struct iovec){.iov_base = c->out.p + c->out.off, .iov_len = c->unit_left};
        return 1;
    }
    size_t done = c->unit_hdr_len + c->unit_piece - c->unit_left;
    int k = 0;
    if (done < c->unit_hdr_len) {
        iov[k++] = (struct iovec){.iov_base = (uint8_t *)c->unit_hdr + done,
                                  .iov_len = c->unit_hdr_len - done};
        done = c->unit_hdr_len;
    }
    size_t from = c->bulk_head->sent + (done - c->unit_hdr_len), got = 0;
    k += pframe_iov(c->bulk_head, from, c->unit_hdr_len + c->unit_piece - done, iov + k,
                    UNIT_IOV_MAX - k, &got);
    return k;
}

/* w bytes of the unit went out. */
static void unit_advance(struct node *n, struct pconn *c, size_t w)
{
    RK_ASSERT(w <= c->unit_left);
    c->unit_left -= w;
    if (c->unit == PCONN_UNIT_CTL) {
        c->out.off += w;
        c->ctl_first = c->ctl_first > w ? c->ctl_first - w : 0;
    }
    if (c->unit_left > 0)
        return;
    if (c->unit == PCONN_UNIT_BULK) {
        struct pframe *f = c->bulk_head;
        f->sent += c->unit_piece;
        if (f->sent == f->len) {
            c->bulk_head = f->next;
            if (c->bulk_head == NULL)
                c->bulk_tail = NULL;
            c->bulk_bytes -= f->len;
            pframe_free(n, f);
        }
    }
    c->unit = PCONN_UNIT_NONE;
}

/* Bulk bytes started per flush: the rest waits for the next turn (EPOLLOUT stays registered,
 * so that is at once), so one loop turn never spends long copying a big value into sockets
 * while timers and other peers wait. The same bound as a client's input per turn. */
#define PEER_BULK_PER_FLUSH (1u << 20)

/* Writes what is queued, unit by unit; registers EPOLLOUT while something is left. */
static bool pconn_flush(struct node *n, struct pconn *c, void *tag, const char **why)
{
    if (c->fd < 0 || c->connecting || c->tls_hs)
        return true;
    size_t bulk_started = 0;
    for (;;) {
        if (c->unit == PCONN_UNIT_NONE) {
            if (bulk_started >= PEER_BULK_PER_FLUSH && buf_unread(&c->out) == 0)
                break;
            if (!unit_start(c))
                break;
            if (c->unit == PCONN_UNIT_BULK)
                bulk_started += c->unit_left;
        }
        struct iovec iov[UNIT_IOV_MAX];
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)unit_iov(c, iov)};
        if (c->ssl != NULL) {
            /* TLS: no sendmsg; the unit's first segment, one SSL_write at a time. A write that
             * must wait is retried with the same bytes: the unit does not change until it is
             * written (unit_advance), and its held segments stay until then (tls.h T3). */
            enum tls_step st = TLS_DONE;
            size_t w = node_tls_write(c->ssl, iov[0].iov_base, iov[0].iov_len, &st, tls_why,
                                      sizeof(tls_why));
            if (w > 0) {
                unit_advance(n, c, w);
                continue;
            }
            if (st == TLS_WANT_WRITE || st == TLS_WANT_READ)
                break;
            *why = st == TLS_CLOSED ? "closed by peer" : tls_why;
            return false;
        }
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w > 0) {
            unit_advance(n, c, (size_t)w);
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
    bool want = buf_unread(&c->out) > 0 || c->bulk_head != NULL;
    if (want != c->want_out) {
        c->want_out = want;
        ep_set(n, EPOLL_CTL_MOD, c->fd, EPOLLIN | (want ? EPOLLOUT : 0), tag);
    }
    return true;
}

/* One step of a connection's TLS handshake: 1 done (the codec handshake queued in out may go),
 * 0 going on (epoll set for what it waits for), -1 failed (why), -2 closed before a byte of a
 * handshake came (a port probe: not logged as a refusal). */
static int pconn_tls_step(struct node *n, struct pconn *c, void *tag, const char **why)
{
    enum tls_step st = node_tls_handshake(c->ssl, tls_why, sizeof(tls_why));
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        bool w = st == TLS_WANT_WRITE;
        if (w != c->want_out) {
            c->want_out = w;
            ep_set(n, EPOLL_CTL_MOD, c->fd, EPOLLIN | (w ? EPOLLOUT : 0), tag);
        }
        return 0;
    }
    if (st != TLS_DONE) {
        *why = tls_why;
        return st == TLS_CLOSED ? -2 : -1;
    }
    c->tls_hs = false;
    c->want_out = true;
    ep_set(n, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLOUT, tag);
    return 1;
}

void peer_on_event(struct node *n, struct peer *p, uint32_t events)
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
    if (p->c.tls_hs) {
        if (p->c.connecting)
            return;
        int r = pconn_tls_step(n, &p->c, &p->tag, &why);
        if (r == 0)
            return;
        char name[256];
        if (r > 0 && tls_peer_name(n->opt.tls_peer_names, p->id, name, sizeof(name)) &&
            !node_tls_name_ok(p->c.ssl, name, tls_why, sizeof(tls_why))) {
            why = tls_why;
            r = -1;
        }
        if (r < 0) {
            char kv[200];
            snprintf(kv, sizeof(kv), "peer=%" PRIu64 " addr=%s side=dialer", p->id, p->addr_text);
            conn_tls_refused(n, "peer_refused", why, kv);
            peer_lost(n, p, why);
            return;
        }
        events |= EPOLLIN; /* bytes may have come with the handshake's last flight */
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (!pconn_read(n, &p->c, &why)) {
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

void peer_on_accept(struct node *n)
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
            node_event("warn", "peer_refused", "too many peer connections awaiting a handshake",
                       "limit=%d", PENDING_CONNS_MAX);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        bool init = pconn_init(n, &pd->c, fd, false);
        pd->used = true;
        pd->accepted_ms = node_now_ms();
        pd->c.want_out = true;
        if (!init || !pconn_queue_handshake(n, &pd->c) ||
            ep_set(n, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT, &pd->tag) != 0) {
            pconn_close(n, &pd->c);
            pd->used = false;
        }
    }
}

/* The remote address of a socket, for logs. */
static void peer_addr_text(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, cap, "%s:%u", host, port);
}

/* An accepted connection: once its handshake checks out it becomes its peer's connection
 * (replacing an older one: the dialer reconnected, so the old one is dead). */
void peer_on_pending_event(struct node *n, struct pending *pd, uint32_t events)
{
    const char *why = "error";
    struct rk_errmsg err = {{0}};
    if (!pd->used)
        return;
    char addr[INET6_ADDRSTRLEN + 8] = "?";
    if (pd->c.tls_hs) {
        int r = pconn_tls_step(n, &pd->c, &pd->tag, &why);
        if (r == 0)
            return;
        if (r == -2)
            goto err_drop; /* logged at debug */
        if (r < 0) {
            char kv[128];
            peer_addr_text(pd->c.fd, addr, sizeof(addr));
            snprintf(kv, sizeof(kv), "addr=%s side=acceptor", addr);
            conn_tls_refused(n, "peer_refused", why, kv);
            why = NULL;
            goto err_drop;
        }
        events |= EPOLLIN;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !pconn_read(n, &pd->c, &why))
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
        /* "Who dials": the higher id dials too when we have not reached it for a while. */
        const struct peer *q = peer_by_id(n, id);
        if (q != NULL && q->c.fd >= 0 && q->c.hs_in) {
            rk_errf(&err, RK_EINVAL, "node %" PRIu64 " dialed us while our connection is up", id);
            id = 0;
        }
    }
    char name[256];
    if (id != 0 && pd->c.ssl != NULL &&
        tls_peer_name(n->opt.tls_peer_names, id, name, sizeof(name)) &&
        !node_tls_name_ok(pd->c.ssl, name, tls_why, sizeof(tls_why))) {
        rk_errf(&err, RK_EINVAL, "node %" PRIu64 ": %s", id, tls_why);
        peer_addr_text(pd->c.fd, addr, sizeof(addr));
        char kv[128];
        snprintf(kv, sizeof(kv), "peer=%" PRIu64 " addr=%s side=acceptor", id, addr);
        conn_tls_refused(n, "peer_refused", err.text, kv);
        why = NULL;
        goto err_drop;
    }
    if (id == 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "peer connection refused: %s", err.text);
        node_event("warn", "peer_refused", msg, NULL);
        why = NULL;
        goto err_drop;
    }
    struct peer *p = peer_by_id(n, id);
    if (p->c.fd >= 0)
        pconn_close(n, &p->c);
    p->c = pd->c;
    p->c.hs_in = true;
    p->down_since_ms = 0;
    p->c.in.off += flen;
    memset(&pd->c, 0, sizeof(pd->c));
    pd->c.fd = -1;
    pd->used = false;
    ep_set(n, EPOLL_CTL_MOD, p->c.fd, EPOLLIN | EPOLLOUT, &p->tag);
    p->c.want_out = true;
    node_event("info", "peer_connected", "peer connected", "peer=%" PRIu64 " addr=%s", p->id,
               p->addr_text);
    if (!peer_feed(n, p, &why) || !pconn_flush(n, &p->c, &p->tag, &why))
        peer_lost(n, p, why);
    return;

err_drop:
    if (why != NULL)
        node_log("debug", "unidentified peer connection dropped: %s", why);
    pconn_close(n, &pd->c);
    pd->used = false;
}

/* Parses --peers into n->peers (every member but self) and self's address. */
int peer_parse_list(struct node *n, const char *list, struct raft_config *rc)
{
    char *copy = strdup(list);
    bool self_seen = false;
    uint64_t ids[RAFT_MAX_MEMBERS];
    uint32_t n_ids = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        uint64_t id = 0;
        if (eq == NULL) {
            fprintf(stderr, "raftkv-node: --peers: '%s' is not ID=HOST:PORT\n", tok);
            goto err_free;
        }
        *eq = 0;
        if (!config_parse_u64(tok, 1, UINT64_MAX, &id)) {
            fprintf(stderr, "raftkv-node: --peers: bad id '%s'\n", tok);
            goto err_free;
        }
        for (uint32_t i = 0; i < n_ids; i++)
            if (ids[i] == id) {
                fprintf(stderr, "raftkv-node: --peers: id %" PRIu64 " twice\n", id);
                goto err_free;
            }
        if (n_ids == RAFT_MAX_MEMBERS) {
            fprintf(stderr, "raftkv-node: --peers: at most %d nodes\n", RAFT_MAX_MEMBERS);
            goto err_free;
        }
        struct sockaddr_storage ss;
        socklen_t sl = 0;
        if (node_resolve(eq + 1, &ss, &sl) != 0) {
            fprintf(stderr, "raftkv-node: --peers: cannot resolve '%s' (HOST:PORT)\n", eq + 1);
            goto err_free;
        }
        ids[n_ids++] = id;
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
        p->down_since_ms = node_now_ms();
    }
    if (!self_seen && n->opt.peer_addr[0] == '\0') {
        fprintf(stderr,
                "raftkv-node: --peers does not list --id %" PRIu64
                " (nor is there a --peer-addr)\n",
                n->id);
        goto err_free;
    }
    if (!self_seen && n_ids < RAFT_MAX_MEMBERS)
        ids[n_ids++] = n->id; /* --peer-addr: this node counts in the pool and the voters */
    /* The first configuration: every node listed, unless --voters names some (server.c). */
    n->n_pool = n_ids;
    rc->n_voters = n_ids <= RAFT_MAX_VOTERS ? n_ids : 0;
    memcpy(rc->voters, ids, rc->n_voters * sizeof(*ids));
    free(copy);
    return 0;

err_free:
    free(copy);
    return -1;
}

int peer_set_self(struct node *n, const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (strlen(addr) >= RAFT_ADDR_MAX || !raft_addr_valid(addr) ||
        node_resolve(addr, &ss, &sl) != 0) {
        fprintf(stderr, "raftkv-node: --peer-addr: cannot resolve '%s' (HOST:PORT)\n", addr);
        return -1;
    }
    n->self_addr = ss;
    n->self_addr_len = sl;
    snprintf(n->self_peer_addr, sizeof(n->self_peer_addr), "%s", addr);
    return 0;
}

/* A slot for a new peer: a free one, else the one of a node outside the configuration the
 * table last followed (a removed member, or a --peers entry that never joined). */
static struct peer *peer_slot(struct node *n)
{
    if (n->n_peers < RAFT_MAX_MEMBERS)
        return &n->peers[n->n_peers++];
    for (size_t i = 0; i < n->n_peers; i++) {
        struct peer *p = &n->peers[i];
        if (!raft_conf_is_voter(&n->peer_conf, p->id) &&
            !raft_conf_is_learner(&n->peer_conf, p->id)) {
            pconn_close(n, &p->c);
            return p;
        }
    }
    return NULL;
}

struct peer *peer_learn(struct node *n, uint64_t id, const char *addr)
{
    if (id == n->id || id == 0)
        return NULL;
    struct peer *p = peer_by_id(n, id);
    if (p != NULL && (addr[0] == '\0' || strcmp(p->addr_text, addr) == 0))
        return p;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (addr[0] != '\0' && node_resolve(addr, &ss, &sl) != 0) {
        node_event("warn", "peer_addr", "cannot resolve a member's peer address",
                   "peer=%" PRIu64 " addr=%s", id, addr);
        return p;
    }
    if (p == NULL) {
        p = peer_slot(n);
        if (p == NULL)
            return NULL;
        memset(p, 0, sizeof(*p));
        p->tag.kind = EV_PEER;
        p->id = id;
        p->dialer = n->id < id;
        p->c.fd = -1;
        p->backoff_ms = PEER_BACKOFF_MIN_MS;
        p->down_since_ms = node_now_ms();
    } else {
        node_event("info", "peer_addr", "a member's peer address changed",
                   "peer=%" PRIu64 " from=%s to=%s", id, p->addr_text, addr);
        if (p->c.fd >= 0 && (p->dialer || !p->c.hs_in))
            peer_lost(n, p, "its address changed");
        p->retry_at_ms = 0; /* dial the new address now */
        p->backoff_ms = PEER_BACKOFF_MIN_MS;
    }
    snprintf(p->addr_text, sizeof(p->addr_text), "%s", addr);
    p->addr = ss;
    p->addr_len = sl;
    return p;
}

void peer_sync_conf(struct node *n, const struct raft_conf *c)
{
    if (n->peer_conf_set && memcmp(c, &n->peer_conf, sizeof(*c)) == 0)
        return;
    struct raft_conf conf = *c;
    n->peer_conf = conf;
    n->peer_conf_set = true;
    for (uint32_t i = 0; i < conf.n_addrs; i++) {
        const struct raft_member_addr *a = &conf.addrs[i];
        if (a->id == n->id) {
            if (a->peer[0] != '\0' && strcmp(a->peer, n->self_peer_addr) != 0)
                node_event("warn", "peer_addr",
                           "the configuration records another peer address for this node: "
                           "the others dial that one (RAFTKV.MEMBER UPDATE)",
                           "recorded=%s listening=%s", a->peer, n->self_peer_addr);
            continue;
        }
        if (a->peer[0] != '\0')
            peer_learn(n, a->id, a->peer);
    }
}

static bool peer_connected(const struct node *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].id == id)
            return n->peers[i].c.fd >= 0 && n->peers[i].c.hs_in;
    return false;
}

uint64_t peer_transfer_target(const struct node *n)
{
    /* A connected voter, the most caught up: a learner cannot take the office, and the one
     * with the highest match needs the fewest entries before the TimeoutNow. */
    const struct raft *r = replica_raft(n->rep);
    uint64_t best = 0, best_match = 0;
    struct raft_progress_status ps;
    for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
        if (!raft_progress(r, i, &ps) || ps.learner || !peer_connected(n, ps.id))
            continue;
        if (best == 0 || ps.match > best_match) {
            best = ps.id;
            best_match = ps.match;
        }
    }
    return best;
}

void peer_timer(struct node *n)
{
    uint64_t now = node_now_ms();
    for (size_t i = 0; i < n->n_peers; i++) {
        struct peer *p = &n->peers[i];
        bool reverse = !p->dialer && p->down_since_ms != 0 &&
                       now - p->down_since_ms >= PEER_REVERSE_DIAL_MS; /* "Who dials" */
        if ((p->dialer || reverse) && p->c.fd < 0 && now >= p->retry_at_ms && p->addr_len != 0)
            peer_dial(n, p);
        else if (p->c.fd >= 0 && p->c.tls_hs && now - p->c.opened_ms >= HANDSHAKE_TIMEOUT_MS) {
            char kv[200];
            snprintf(kv, sizeof(kv), "peer=%" PRIu64 " addr=%s side=dialer", p->id, p->addr_text);
            conn_tls_refused(n, "peer_refused", "no TLS handshake within the timeout", kv);
            peer_lost(n, p, "no TLS handshake within the timeout");
        }
    }
    /* A connection that never says who it is must not hold a slot forever. */
    for (size_t i = 0; i < PENDING_CONNS_MAX; i++) {
        struct pending *pd = &n->pending[i];
        if (pd->used && now - pd->accepted_ms >= HANDSHAKE_TIMEOUT_MS) {
            char msg[96];
            snprintf(msg, sizeof(msg), "peer connection dropped: no handshake within %u ms",
                     HANDSHAKE_TIMEOUT_MS);
            node_event("warn", "peer_refused", msg, "timeout_ms=%u", HANDSHAKE_TIMEOUT_MS);
            pconn_close(n, &pd->c);
            pd->used = false;
        }
    }
}

void peer_flush_all(struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++) {
        const char *why = "error";
        struct peer *p = &n->peers[i];
        if (p->c.fd >= 0 && !pconn_flush(n, &p->c, &p->tag, &why))
            peer_lost(n, p, why);
    }
}

void peer_tls_more(struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++) {
        struct peer *p = &n->peers[i];
        if (p->c.fd >= 0 && p->c.tls_more) {
            p->c.tls_more = false;
            peer_on_event(n, p, EPOLLIN);
        }
    }
    for (size_t i = 0; i < PENDING_CONNS_MAX; i++) {
        struct pending *pd = &n->pending[i];
        if (pd->used && pd->c.tls_more) {
            pd->c.tls_more = false;
            peer_on_pending_event(n, pd, EPOLLIN);
        }
    }
}

void peer_close_all(struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++)
        pconn_close(n, &n->peers[i].c);
    for (size_t i = 0; i < PENDING_CONNS_MAX; i++)
        if (n->pending[i].used)
            pconn_close(n, &n->pending[i].c);
}
