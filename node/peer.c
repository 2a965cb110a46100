/*
 * peer.c — peer transport: one TCP connection per pair of members (the lower id dials), a codec
 * handshake in both directions before anything else (N1), reconnection with exponential backoff
 * (PEER_BACKOFF_MIN_MS .. PEER_BACKOFF_MAX_MS), and a bounded send queue per peer (N2). Frames
 * that passed the handshake go to the replica through server_peer_frame (server.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/codec.h"
#include "common/alloc.h"
#include "server.h"

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

void peer_lost(struct node *n, struct peer *p, const char *why)
{
    if (p->c.hs_in)
        node_event("warn", "peer_lost", why, "peer=%" PRIu64 " addr=%s", p->id, p->addr_text);
    pconn_close(n, &p->c);
    if (p->dialer) {
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

size_t peers_connected(const struct node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_peers; i++)
        k += n->peers[i].c.fd >= 0 && n->peers[i].c.hs_in;
    return k;
}

/* Queues one frame for peer `to` (N2). */
void peer_send(struct node *n, uint64_t to, const uint8_t *bytes, size_t len)
{
    struct peer *p = peer_by_id(n, to);
    if (p == NULL || p->c.fd < 0 || buf_unread(&p->c.out) + len > n->lim.peer_queue ||
        !buf_append(&p->c.out, bytes, len)) {
        if (p != NULL)
            p->dropped_frames++;
        return;
    }
    p->bytes_out += len;
    node_metrics_frame(n->metrics->msgs_out, bytes, len);
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
            p->backoff_ms = PEER_BACKOFF_MIN_MS;
            node_event("info", "peer_connected", "peer connected", "peer=%" PRIu64 " addr=%s",
                       p->id, p->addr_text);
        } else {
            p->bytes_in += flen;
            node_metrics_frame(n->metrics->msgs_in, frame, flen);
            server_peer_frame(n, p->id, frame, flen);
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
        memset(&pd->c, 0, sizeof(pd->c));
        pd->used = true;
        pd->accepted_ms = node_now_ms();
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
void peer_on_pending_event(struct node *n, struct pending *pd, uint32_t events)
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
        if (!config_parse_u64(tok, 1, UINT64_MAX, &id)) {
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
        if (node_resolve(eq + 1, &ss, &sl) != 0) {
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

uint64_t peer_transfer_target(const struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].c.fd >= 0 && n->peers[i].c.hs_in)
            return n->peers[i].id;
    return 0;
}

void peer_timer(struct node *n)
{
    uint64_t now = node_now_ms();
    for (size_t i = 0; i < n->n_peers; i++) {
        struct peer *p = &n->peers[i];
        if (p->dialer && p->c.fd < 0 && now >= p->retry_at_ms)
            peer_dial(n, p);
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

void peer_close_all(struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++)
        pconn_close(n, &n->peers[i].c);
    for (size_t i = 0; i < PENDING_CONNS_MAX; i++)
        if (n->pending[i].used)
            pconn_close(n, &n->pending[i].c);
}
