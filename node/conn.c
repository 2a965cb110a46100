/*
 * conn.c — client connections (Redis's networking.c): accept, read, RESP parsing with the
 * configured limits, the per-connection FIFO of reply items (N3, N4), reply encoders in the
 * connection's protocol version, and writing replies out.
 *
 * A connection reads while it has fewer than CLIENT_ITEMS_MAX replies in flight and fewer than
 * CLIENT_OUT_MAX_BYTES unwritten; beyond, it stops reading until the backlog drains, so one
 * client cannot make the node buffer without bound. A protocol error is answered with
 * "-ERR Protocol error: ..." after the replies before it, then the connection closes, as Redis.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "commands.h"
#include "server.h"
#include "tls.h"

/* ------------------------------------------------------------------------------------------ */
/* Byte buffers                                                                               */

bool buf_reserve(struct buf *b, size_t n)
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

bool buf_append(struct buf *b, const void *src, size_t n)
{
    if (!buf_reserve(b, n))
        return false;
    if (n > 0)
        memcpy(b->p + b->len, src, n);
    b->len += n;
    return true;
}

void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------------------------------ */
/* Arguments                                                                                  */

bool arg_is(const struct resp_arg *a, const char *s)
{
    size_t l = strlen(s);
    return a->len == l && strncasecmp((const char *)a->ptr, s, l) == 0;
}

void arg_quote(char *dst, size_t cap, const struct resp_arg *a)
{
    size_t k = 0;
    for (uint64_t i = 0; i < a->len && i < 128 && k + 1 < cap; i++) {
        char ch = (char)a->ptr[i];
        dst[k++] = (ch == '\r' || ch == '\n') ? ' ' : ch;
    }
    dst[k] = 0;
}

bool arg_int64(const struct resp_arg *a, int64_t *v)
{
    return kv_parse_int64(a->ptr, a->len, v);
}

/* ------------------------------------------------------------------------------------------ */
/* Reply items                                                                                */

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

static struct item *item_new(struct node *n, struct client *c)
{
    struct item *it = item_get(n);
    if (it == NULL)
        return NULL;
    it->done = true; /* an immediate reply unless the command queues requests */
    it->resp = c->resp;
    it->read_us = node_now_us();
    it->c = c;
    if (c->tail)
        c->tail->next = it;
    else
        c->head = it;
    c->tail = it;
    c->n_items++;
    return it;
}

void item_status_error(struct item *it, uint8_t status, const char *reason)
{
    const char *r = reason ? reason : "";
    if (status == REPLICA_TRYAGAIN)
        add_errorf(it, "TRYAGAIN %s", r);
    else if (status == REPLICA_TIMEOUT)
        add_errorf(it, "TIMEOUT %s", r);
    else
        add_errorf(it, "ERR %s", r);
}

void item_hold(struct item *it)
{
    it->done = false;
    it->waiting++;
}

void item_release(struct node *n, struct item *it)
{
    struct replica_reply none = {.status = REPLICA_NOT_FOUND};
    item_on_reply(n, it, UINT32_MAX, &none);
}

void item_on_reply(struct node *n, struct item *it, uint32_t part, const struct replica_reply *rp)
{
    if (it->failed) {
        /* an earlier reply of this command failed: that error stands */
    } else if (rp->status != REPLICA_OK && rp->status != REPLICA_NOT_FOUND) {
        it->failed = true;
        it->bytes.len = it->bytes.off = 0;
        item_status_error(it, rp->status, rp->reason);
        n->stats.total_errors++;
    } else if (part != UINT32_MAX && it->on_reply != NULL) {
        it->on_reply(n, it, part, rp);
    }
    it->waiting--;
    if (it->waiting == 0) {
        if (!it->failed && it->on_finish != NULL)
            it->on_finish(n, it);
        if (it->on_done != NULL)
            it->on_done(n, it);
        it->done = true;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Encoders                                                                                   */

#define ENCODE(it, size, call)                                                                    \
    do {                                                                                          \
        struct buf *b_ = &(it)->bytes;                                                            \
        size_t pos_ = b_->len;                                                                    \
        if (buf_reserve(b_, (size)) && (call))                                                    \
            b_->len = pos_;                                                                       \
    } while (0)

#define OUT(it) (it)->bytes.p, (it)->bytes.cap, &pos_

void add_simple(struct item *it, const char *s)
{
    ENCODE(it, resp_simple_size(s), resp_simple(OUT(it), s));
}

void add_error(struct item *it, const char *s)
{
    ENCODE(it, resp_error_size(s), resp_error(OUT(it), s));
}

void add_errorf(struct item *it, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    add_error(it, line);
}

void add_integer(struct item *it, int64_t v)
{
    ENCODE(it, resp_integer_size(v), resp_integer(OUT(it), v));
}

void add_bulk(struct item *it, const void *p, uint64_t len)
{
    ENCODE(it, resp_bulk_size(len), resp_bulk(OUT(it), p, len));
}

void add_bulk_str(struct item *it, const char *s)
{
    add_bulk(it, s, strlen(s));
}

void add_null(struct item *it)
{
    if (it->resp == 3)
        ENCODE(it, resp3_null_size(), resp3_null(OUT(it)));
    else
        ENCODE(it, resp_null_size(), resp_null(OUT(it)));
}

void add_null_array(struct item *it)
{
    if (it->resp == 3)
        ENCODE(it, resp3_null_size(), resp3_null(OUT(it)));
    else
        ENCODE(it, resp_array_size(-1), resp_array(OUT(it), -1));
}

void add_array(struct item *it, int64_t k)
{
    ENCODE(it, resp_array_size(k), resp_array(OUT(it), k));
}

void add_map(struct item *it, int64_t pairs)
{
    if (it->resp == 3)
        ENCODE(it, resp3_map_size(pairs), resp3_map(OUT(it), pairs));
    else
        add_array(it, 2 * pairs);
}

void add_set(struct item *it, int64_t k)
{
    if (it->resp == 3)
        ENCODE(it, resp3_set_size(k), resp3_set(OUT(it), k));
    else
        add_array(it, k);
}

void add_double(struct item *it, double d)
{
    char text[RESP_DOUBLE_TEXT_MAX];
    size_t len = resp_double_text(d, text);
    if (it->resp == 3)
        ENCODE(it, resp3_double_size(text), resp3_double(OUT(it), text));
    else
        add_bulk(it, text, len);
}

void add_bool(struct item *it, bool v)
{
    if (it->resp == 3)
        ENCODE(it, resp3_bool_size(), resp3_bool(OUT(it), v));
    else
        add_integer(it, v ? 1 : 0);
}

void add_verbatim(struct item *it, const char *fmt3, const void *p, uint64_t len)
{
    if (it->resp == 3)
        ENCODE(it, resp3_verbatim_size(len), resp3_verbatim(OUT(it), fmt3, p, len));
    else
        add_bulk(it, p, len);
}

void add_raw(struct item *it, const void *p, size_t len)
{
    buf_append(&it->bytes, p, len);
}

/* ------------------------------------------------------------------------------------------ */
/* The FIFO                                                                                   */

void conn_free_if_done(struct node *n, struct client *c)
{
    if (!c->closed || c->outstanding > 0)
        return;
    for (struct item *it = c->head, *next; it != NULL; it = next) {
        next = it->next;
        item_put(n, it);
    }
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->multi_q);
    buf_free(&c->watch_q);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->n_clients--;
    free(c);
}

/* Moves the finished prefix of the FIFO to the out buffer (N3). */
void conn_collect(struct node *n, struct client *c)
{
    while (c->head != NULL && c->head->done && c->head->waiting == 0 && !c->head->dispatching) {
        struct item *it = c->head;
        node_metrics_item_done(n, it);
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
/* I/O                                                                                        */

void conn_set_events(struct node *n, struct client *c)
{
    if (c->closed)
        return;
    bool read = !c->no_input && !c->want_close && !n->stopping && c->n_items < CLIENT_ITEMS_MAX &&
                buf_unread(&c->out) < CLIENT_OUT_MAX_BYTES && !n->log_memory_over;
    bool write = buf_unread(&c->out) > 0;
    if (c->tls_hs) {
        read = !n->stopping;
        write = c->tls_hs_wants_write;
    } else if (read && !c->reading && node_tls_pending(c->ssl)) {
        /* Reading again, with bytes inside OpenSSL that epoll will not announce. */
        c->tls_more = true;
        n->tls_more = true;
    }
    if (read != c->reading || write != c->want_out) {
        c->reading = read;
        c->want_out = write;
        ep_set(n, EPOLL_CTL_MOD, c->fd, (read ? EPOLLIN : 0) | (write ? EPOLLOUT : 0), &c->tag);
    }
}

void conn_close(struct node *n, struct client *c)
{
    if (c->closed)
        return;
    epoll_ctl(n->ep, EPOLL_CTL_DEL, c->fd, NULL);
    node_tls_free(c->ssl);
    c->ssl = NULL;
    c->tls_hs = false;
    close(c->fd);
    c->fd = -1;
    c->closed = true;
    buf_free(&c->out);
    /* c->in stays until the turn's batch is submitted (N5); freed with c. */
}

static void sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, cap, "%s:%u", host, port);
}

static struct client *client_new(struct node *n, int fd)
{
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->tag.kind = EV_CLIENT;
    c->fd = fd;
    c->reading = true;
    c->id = ++n->next_client_id;
    if (n->sessions_made == UINT32_MAX) { /* 4 billion connections: a new incarnation */
        n->incarnation = (n->incarnation + 1) & 0xffffffu;
        n->sessions_made = 0;
    }
    c->session = replica_client_id(n->id, n->incarnation, ++n->sessions_made);
    c->resp = 2;
    c->authed = n->opt.requirepass[0] == 0;
    c->created_ms = c->last_ms = node_now_ms();
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        sockaddr_text(&ss, c->addr, sizeof(c->addr));
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        sockaddr_text(&ss, c->laddr, sizeof(c->laddr));
    return c;
}

/* A refusal's reason as one word for the log (node/README.md "TLS"), from OpenSSL's text. */
static const char *tls_reason_code(const char *why)
{
    static const struct {
        const char *has, *code;
    } codes[] = {
        {"expired", "tls_cert_expired"},
        {"not yet valid", "tls_cert_not_yet_valid"},
        {"does not name", "tls_name_mismatch"},
        {"did not return a certificate", "tls_no_cert"},
        {"certificate required", "tls_no_cert"},
        {"certificate verify failed", "tls_cert_untrusted"},
        {"unknown ca", "tls_cert_untrusted"},
        {"bad certificate", "tls_cert_untrusted"},
        {"wrong version number", "tls_not_tls"},
        {"http request", "tls_not_tls"},
        {"unsupported protocol", "tls_protocol"},
        {"no protocols available", "tls_protocol"},
        {"version too low", "tls_protocol"},
        {"protocol version", "tls_protocol"},
        {"timeout", "tls_timeout"},
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strstr(why, codes[i].has) != NULL)
            return codes[i].code;
    return "tls_handshake";
}

void conn_tls_refused(struct node *n, const char *event, const char *why, const char *kv)
{
    n->tls_refused++;
    n->tls_refused_peers += strcmp(event, "peer_refused") == 0;
    uint64_t now = node_now_ms();
    if (now - n->tls_refused_logged_ms >= 1000) {
        n->tls_refused_logged_ms = now;
        n->tls_refused_quiet = 0;
    }
    if (n->tls_refused_quiet >= 20) {
        n->tls_refused_quiet++;
        return;
    }
    n->tls_refused_quiet++;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s refused: %s",
             strcmp(event, "client_refused") == 0 ? "TLS client" : "TLS peer connection", why);
    node_event("warn", event, msg, "reason=%s %s refused_total=%" PRIu64, tls_reason_code(why),
               kv ? kv : "", n->tls_refused);
}

/* One step of a tls-port connection's handshake. true once it is done (reading may start);
 * false while it goes on, or when it failed (closed, logged). */
static bool client_tls_handshake(struct node *n, struct client *c)
{
    char why[256];
    enum tls_step st = node_tls_handshake(c->ssl, why, sizeof(why));
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        c->tls_hs_wants_write = st == TLS_WANT_WRITE;
        conn_set_events(n, c);
        return false;
    }
    if (st == TLS_CLOSED) {
        node_log("debug", "client %s: %s", c->addr, why);
        conn_close(n, c);
        return false;
    }
    if (st != TLS_DONE) {
        char kv[128];
        snprintf(kv, sizeof(kv), "addr=%s", c->addr);
        conn_tls_refused(n, "client_refused", why, kv);
        conn_close(n, c);
        return false;
    }
    c->tls_hs = false;
    c->tls_hs_wants_write = false;
    conn_set_events(n, c);
    return true;
}

void conn_on_accept(struct node *n, int listen_fd, bool tls)
{
    for (int k = 0; k < 64; k++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                node_log("warn", "accept (clients): %s", strerror(errno));
            return;
        }
        n->stats.connections_received++;
        if (n->n_clients >= n->opt.max_clients) {
            /* As Redis: say why, then close. What the client already sent is read first (a
             * close with unread bytes sends a reset, which can discard the reply). */
            static const char full[] = "-ERR max number of clients reached\r\n";
            char sink[4096];
            while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
            }
            /* On the tls-port the line would be garbage inside a TLS handshake: only closed. */
            ssize_t w = tls ? 0 : send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            shutdown(fd, SHUT_WR);
            close(fd);
            n->stats.rejected_connections++;
            node_event("warn", "client_refused", "client refused: max-clients reached",
                       "max_clients=%u", n->opt.max_clients);
            continue;
        }
        struct client *c = client_new(n, fd);
        if (c == NULL) {
            close(fd);
            continue;
        }
        if (tls) {
            c->ssl = node_tls_new(n, fd, true, false);
            c->tls_hs = true;
        }
        if ((tls && c->ssl == NULL) || ep_set(n, EPOLL_CTL_ADD, fd, EPOLLIN, &c->tag) != 0) {
            node_tls_free(c->ssl);
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
        if (c->ssl != NULL) {
            /* A read returns one TLS record at most: read on until OpenSSL wants the socket. */
            enum tls_step st = TLS_DONE;
            char why[256];
            size_t r = node_tls_read(c->ssl, c->in.p + c->in.len, room, &st, why, sizeof(why));
            c->in.len += r;
            got += r;
            if (r > 0 && !node_tls_pending(c->ssl))
                break; /* drained: what comes next epoll announces (as read's r < room) */
            if (r > 0)
                continue;
            if (st == TLS_WANT_WRITE) { /* a key update to answer: again next turn */
                c->tls_more = true;
                n->tls_more = true;
            } else if (st != TLS_WANT_READ) {
                if (st == TLS_FAILED)
                    node_log("debug", "client %s: TLS: %s", c->addr, why);
                eof = true;
            }
            break;
        }
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
    if (c->ssl != NULL && got >= CLIENT_READ_MAX_BYTES) {
        c->tls_more = true; /* stopped at the bound: the rest may be inside OpenSSL */
        n->tls_more = true;
    }
    n->stats.net_input_bytes += got;
    if (got > 0)
        c->last_ms = node_now_ms();
    conn_parse(n, c);
    if (eof)
        c->no_input = true; /* replies still go out; closed once the FIFO is empty */
}

void conn_on_event(struct node *n, struct client *c, uint32_t events)
{
    if (!c->closed && c->tls_hs) {
        if (n->tls_hs_spent_us >= TLS_HS_TURN_US) {
            /* This turn's share of handshake work is spent: the rest waits for the next turn,
             * so that a burst of new connections never holds heartbeats back (server.h). */
            c->tls_more = true;
            n->tls_more = true;
            return;
        }
        uint64_t t0 = node_now_us();
        bool done = client_tls_handshake(n, c);
        n->tls_hs_spent_us += node_now_us() - t0;
        if (!done)
            return;
        events |= EPOLLIN; /* what came with the handshake's last flight may be inside */
    }
    if (!c->closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        client_read(n, c);
}

void conn_tls_more(struct node *n)
{
    for (struct client *c = n->clients; c != NULL; c = c->next) {
        if (!c->tls_more || c->closed)
            continue;
        if (!c->reading) {
            c->tls_more = false; /* conn_set_events sets it again when reading resumes */
            continue;
        }
        c->tls_more = false;
        conn_on_event(n, c, EPOLLIN);
    }
}

/* Parses and executes the whole requests in c's input, up to the in-flight bound. */
void conn_parse(struct node *n, struct client *c)
{
    struct resp_request rq = {.args = n->args,
                              .cap_args = n->opt.max_args,
                              .scratch = n->inline_scratch,
                              .cap_scratch = n->opt.max_inline_bytes};
    c->parse_held = false;
    while (!c->no_input && !c->want_close) {
        if (c->n_items >= CLIENT_ITEMS_MAX || c->watch_wait) {
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
            struct item *it = item_new(n, c);
            if (it != NULL) {
                add_errorf(it, "ERR %s", err.text);
                it->close_after = true;
            }
            n->stats.total_errors++;
            c->no_input = true;
            conn_collect(n, c);
            break;
        }
        c->in.off += used; /* the bytes stay in place until the next read (N5) */
        if (rq.argc == 0)
            continue;
        struct item *it = item_new(n, c);
        if (it == NULL) {
            c->no_input = true;
            c->want_close = true;
            break;
        }
        c->commands++;
        n->stats.commands_processed++;
        it->dispatching = true;
        cmd_dispatch(n, c, it, &rq);
        it->dispatching = false;
        conn_collect(n, c);
        if (c->watch_wait) {
            /* A WATCH in flight: what follows (an EXEC) needs its versions (cmd_multi.c). */
            c->parse_held = true;
            break;
        }
    }
}

/* Writes c's replies; closes it when it asked to and everything is out. */
void conn_flush(struct node *n, struct client *c)
{
    if (c->closed)
        return;
    while (buf_unread(&c->out) > 0 && c->ssl != NULL && !c->tls_hs) {
        enum tls_step st = TLS_DONE;
        char why[256];
        size_t w = node_tls_write(c->ssl, c->out.p + c->out.off, buf_unread(&c->out), &st, why,
                                  sizeof(why));
        if (w > 0) {
            c->out.off += w;
            n->stats.net_output_bytes += w;
            continue;
        }
        if (st == TLS_WANT_WRITE || st == TLS_WANT_READ)
            break; /* the same bytes again when the socket takes them (tls.h) */
        conn_close(n, c);
        return;
    }
    while (buf_unread(&c->out) > 0 && c->ssl == NULL) {
        ssize_t w = send(c->fd, c->out.p + c->out.off, buf_unread(&c->out), MSG_NOSIGNAL);
        if (w > 0) {
            c->out.off += (size_t)w;
            n->stats.net_output_bytes += (uint64_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_close(n, c);
        return;
    }
    if (buf_unread(&c->out) == 0) {
        c->out.off = c->out.len = 0;
        if (c->want_close || (c->no_input && c->head == NULL)) {
            conn_close(n, c);
            return;
        }
    }
    conn_set_events(n, c);
}
