/*
 * cli.c — raftkv-cli: a small redis-cli for raftkv, plus `status --cluster`, a one-screen view
 * of every member's INFO.
 *
 *   raftkv-cli [-h HOST] [-p PORT] COMMAND [ARGS...]    one command, reply printed like redis-cli
 *   raftkv-cli status --cluster HOST:PORT,HOST:PORT,...  one row per member
 *   raftkv-cli [-h HOST] [-p PORT] backup [--chunk-bytes N] FILE
 *                                a consistent backup of the cluster (RAFTKV.BACKUP, cmd_backup.c)
 *                                into FILE (backup_file.h), written as FILE.part, then renamed
 *   --tls [--cacert FILE] [--cert FILE --key FILE]      over TLS (OpenSSL), as redis-cli's options:
 *                                                       the server's chain is verified against
 *                                                       FILE (or the system's CAs); no host name
 *                                                       check, as redis-cli
 *
 * Exit status: 0 ok; 1 an error reply, a connection failure, a timeout, a malformed reply, or
 * (status) no majority reachable that agrees on a leader; 2 a usage error.
 *
 * Invariants:
 *   C1  nothing waits without a deadline: connect, send and read all poll against one
 *       monotonic deadline per exchange, so the tool never hangs on a silent server.
 *   C2  reply bytes are untrusted: the reader bounds the total bytes buffered
 *       (CLI_REPLY_MAX_BYTES), the nesting depth (CLI_DEPTH_MAX), each header line
 *       (CLI_LINE_MAX_BYTES) and each number; anything else is a malformed reply with a message,
 *       never an assert. It never reads past the bytes received.
 *   C3  a command is retried only on -TRYAGAIN, which the node sends when the command certainly
 *       did not execute (an election is under way), and only until the reply deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "backup_file.h"
#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "kv/kv.h"
#include "resp/resp.h"

#define CLI_TIMEOUT_MS        5000
#define CLI_STATUS_TIMEOUT_MS 1000 /* per member: connect plus INFO */
#define CLI_RETRY_SLEEP_MS    100
#define CLI_REPLY_MAX_BYTES   ((size_t)256 << 20)
#define CLI_LINE_MAX_BYTES    ((size_t)64 << 10)
#define CLI_ARRAY_MAX_ELEMS   ((int64_t)1 << 24)
#define CLI_DEPTH_MAX         16
#define CLI_READ_CHUNK_BYTES  ((size_t)64 << 10)
#define CLI_MEMBERS_MAX       64
#define CLI_ADDR_MAX_BYTES    256
#define CLI_ERR_MAX_BYTES     (CLI_ADDR_MAX_BYTES + 384)
#define CLI_ARGS_MAX          RESP_MAX_ARGS_DEFAULT

enum cli_exit { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* ------------------------------------------------------------------------------------------ */
/* Time                                                                                       */

static int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cli_remaining_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - cli_now_ms();
    return left <= 0 ? 0 : (int)left;
}

/* ------------------------------------------------------------------------------------------ */
/* Connection (C1)                                                                            */

/* --tls: the context every connection of this run is made from (NULL: plaintext). */
static SSL_CTX *cli_tls;

struct cli_conn {
    int fd;
    SSL *ssl;                      /* --tls: the session over fd */
    char addr[CLI_ADDR_MAX_BYTES]; /* "host:port", for messages */
    char err[CLI_ERR_MAX_BYTES];   /* the last failure, naming addr */
};

/* Waits until fd is ready for events or the deadline passes. Returns 0, or an errno value. */
static int cli_wait(int fd, short events, int64_t deadline_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int left = cli_remaining_ms(deadline_ms);
        if (left == 0)
            return ETIMEDOUT;
        int k = poll(&p, 1, left);
        if (k > 0)
            return 0;
        if (k == 0)
            return ETIMEDOUT;
        if (errno != EINTR)
            return errno;
    }
}

/* Non-blocking connect to one resolved address. Returns 0 or an errno value. */
static int cli_connect_one(const struct addrinfo *ai, int64_t deadline_ms, int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return errno;
    int e = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        e = errno;
        if (e == EINPROGRESS) {
            e = cli_wait(fd, POLLOUT, deadline_ms);
            socklen_t len = sizeof(int);
            if (e == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
                e = errno;
        }
    }
    if (e != 0) {
        close(fd);
        return e;
    }
    *fd_out = fd;
    return 0;
}

/* What a TLS call that returned ret <= 0 waits for: POLLIN or POLLOUT; 0 with c->err set when
 * it failed (what, then OpenSSL's reason). */
static short cli_tls_wait_for(struct cli_conn *c, int ret, const char *what)
{
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return POLLIN;
    if (e == SSL_ERROR_WANT_WRITE)
        return POLLOUT;
    unsigned long code = ERR_get_error();
    const char *why = code != 0 ? ERR_reason_error_string(code) : NULL;
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK)
        why = X509_verify_cert_error_string(v);
    snprintf(c->err, sizeof(c->err), "%s %s over TLS: %s", what, c->addr,
             why != NULL                                              ? why
             : (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) ? "connection closed"
                                                                      : "TLS error");
    ERR_clear_error();
    return 0;
}

/* The TLS handshake on c's connected socket, before the deadline (C1). */
static bool cli_tls_handshake(struct cli_conn *c, int64_t deadline_ms)
{
    c->ssl = SSL_new(cli_tls);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(c->err, sizeof(c->err), "cannot start TLS to %s", c->addr);
        return false;
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return true;
        short ev = cli_tls_wait_for(c, r, "cannot connect to");
        int e = ev == 0 ? -1 : cli_wait(c->fd, ev, deadline_ms);
        if (e > 0)
            snprintf(c->err, sizeof(c->err), "cannot connect to %s over TLS: %s", c->addr,
                     strerror(e));
        if (e != 0)
            return false;
    }
}

/* --tls: the context from the options (files checked now, so a bad one is a usage error). */
static bool cli_tls_setup(const char *cacert, const char *cert, const char *key)
{
    cli_tls = SSL_CTX_new(TLS_client_method());
    if (cli_tls == NULL)
        return false;
    SSL_CTX_set_mode(cli_tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(cli_tls, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(cli_tls, SSL_VERIFY_PEER, NULL);
    const char *bad = NULL;
    if (cacert != NULL ? SSL_CTX_load_verify_locations(cli_tls, cacert, NULL) != 1
                       : SSL_CTX_set_default_verify_paths(cli_tls) != 1)
        bad = cacert != NULL ? cacert : "the system's CAs";
    else if (cert != NULL && SSL_CTX_use_certificate_chain_file(cli_tls, cert) != 1)
        bad = cert;
    else if (key != NULL && (SSL_CTX_use_PrivateKey_file(cli_tls, key, SSL_FILETYPE_PEM) != 1 ||
                             SSL_CTX_check_private_key(cli_tls) != 1))
        bad = key;
    if (bad == NULL)
        return true;
    unsigned long code = ERR_get_error();
    fprintf(stderr, "raftkv-cli: --tls: %s: %s\n", bad,
            code != 0 ? ERR_reason_error_string(code) : "cannot load");
    return false;
}

static void cli_close(struct cli_conn *c);

/* Connects to host:port before the deadline. Returns false with c->err set. */
static bool cli_connect(struct cli_conn *c, const char *host, const char *port, int64_t deadline_ms)
{
    c->fd = -1;
    c->ssl = NULL;
    snprintf(c->addr, sizeof(c->addr), "%s:%s", host, port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        snprintf(c->err, sizeof(c->err), "cannot resolve %s: %s", c->addr, gai_strerror(g));
        return false;
    }
    int e = ENOENT;
    for (const struct addrinfo *ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next)
        e = cli_connect_one(ai, deadline_ms, &c->fd);
    freeaddrinfo(res);
    if (c->fd < 0) {
        snprintf(c->err, sizeof(c->err), "cannot connect to %s: %s", c->addr, strerror(e));
        return false;
    }
    if (cli_tls == NULL || cli_tls_handshake(c, deadline_ms))
        return true;
    cli_close(c);
    return false;
}

static void cli_close(struct cli_conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl); /* no close_notify: the reply is in, the socket closes */
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static bool cli_send(struct cli_conn *c, const uint8_t *p, size_t len, int64_t deadline_ms)
{
    size_t off = 0;
    while (off < len && c->ssl != NULL) {
        size_t put = 0;
        ERR_clear_error();
        int r = SSL_write_ex(c->ssl, p + off, len - off, &put);
        if (r == 1) {
            off += put;
            continue;
        }
        short ev = cli_tls_wait_for(c, r, "cannot send to");
        int e = ev == 0 ? -1 : cli_wait(c->fd, ev, deadline_ms);
        if (e > 0)
            snprintf(c->err, sizeof(c->err), "cannot send to %s: %s", c->addr, strerror(e));
        if (e != 0)
            return false;
    }
    while (off < len) {
        ssize_t k = send(c->fd, p + off, len - off, MSG_NOSIGNAL);
        if (k > 0) {
            off += (size_t)k;
            continue;
        }
        int e = k < 0 ? errno : EPIPE;
        if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
            e = cli_wait(c->fd, POLLOUT, deadline_ms);
        if (e != 0) {
            snprintf(c->err, sizeof(c->err), "cannot send to %s: %s", c->addr, strerror(e));
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Reply reader (C2). Walks one RESP2 reply without recursion: a stack of the elements still  */
/* due at each array depth. Calls visit (may be NULL) on each element in order.               */

enum cli_reply_type {
    REPLY_STATUS,
    REPLY_ERROR,
    REPLY_INTEGER,
    REPLY_BULK,
    REPLY_NIL,
    REPLY_ARRAY
};

struct cli_elem {
    enum cli_reply_type type;
    const uint8_t *ptr; /* STATUS, ERROR, BULK: borrowed from the reply buffer */
    size_t len;
    int64_t n;      /* INTEGER: the value; ARRAY: the element count (-1: nil array) */
    uint32_t depth; /* 0: the top-level reply */
    int64_t index;  /* 1-based position in the parent array (0 at depth 0) */
};

typedef void cli_visit_fn(void *ctx, const struct cli_elem *e);

/* Strict decimal: optional '-', digits, no overflow. */
static bool cli_parse_i64(const uint8_t *p, size_t len, int64_t *out)
{
    bool neg = len > 0 && p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == len || len - i > 19)
        return false;
    int64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        int d = p[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return true;
}

/* Finds the header line at buf[off..len): its end (the '\r' of "\r\n"). */
static int cli_line(const uint8_t *buf, size_t len, size_t off, size_t *eol, struct rk_errmsg *err)
{
    size_t limit = len - off < CLI_LINE_MAX_BYTES ? len : off + CLI_LINE_MAX_BYTES;
    for (size_t i = off; i + 1 < limit; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            *eol = i;
            return RK_OK;
        }
    }
    if (len - off >= CLI_LINE_MAX_BYTES)
        return rk_errf(err, RK_EMALFORMED, "offset %zu: line over %zu bytes", off,
                       CLI_LINE_MAX_BYTES);
    return RK_EAGAIN;
}

/* Reads one element header at *off (and a bulk body); advances *off. */
static int cli_elem_read(const uint8_t *buf, size_t len, size_t *off, struct cli_elem *e,
                         struct rk_errmsg *err)
{
    size_t eol = 0;
    int rc = cli_line(buf, len, *off, &eol, err);
    if (rc != RK_OK)
        return rc;
    const uint8_t *p = buf + *off + 1;
    size_t plen = eol - *off - 1;
    uint8_t kind = buf[*off];
    size_t at = *off;
    size_t next = eol + 2;
    e->ptr = p;
    e->len = plen;
    e->n = 0;
    if (kind == '+' || kind == '-') {
        e->type = kind == '+' ? REPLY_STATUS : REPLY_ERROR;
    } else if (kind == ':' || kind == '$' || kind == '*') {
        if (!cli_parse_i64(p, plen, &e->n))
            return rk_errf(err, RK_EMALFORMED, "offset %zu: bad number after '%c'", at, kind);
        if (kind == ':') {
            e->type = REPLY_INTEGER;
        } else if (kind == '*') {
            if (e->n < -1 || e->n > CLI_ARRAY_MAX_ELEMS)
                return rk_errf(err, RK_EMALFORMED, "offset %zu: array of %" PRId64, at, e->n);
            e->type = REPLY_ARRAY;
        } else if (e->n == -1) {
            e->type = REPLY_NIL;
        } else {
            if (e->n < 0 || (uint64_t)e->n > CLI_REPLY_MAX_BYTES)
                return rk_errf(err, RK_EMALFORMED, "offset %zu: bulk of %" PRId64, at, e->n);
            if (len - next < (size_t)e->n + 2)
                return RK_EAGAIN;
            if (buf[next + (size_t)e->n] != '\r' || buf[next + (size_t)e->n + 1] != '\n')
                return rk_errf(err, RK_EMALFORMED, "offset %zu: bulk not ended by CRLF", at);
            e->type = REPLY_BULK;
            e->ptr = buf + next;
            e->len = (size_t)e->n;
            next += (size_t)e->n + 2;
        }
    } else {
        return rk_errf(err, RK_EMALFORMED, "offset %zu: unknown reply type byte 0x%02x", at, kind);
    }
    *off = next;
    return RK_OK;
}

/* One whole reply at buf[0..len): RK_OK with *consumed, RK_EAGAIN, or RK_EMALFORMED. */
static int cli_reply_walk(const uint8_t *buf, size_t len, cli_visit_fn *visit, void *ctx,
                          size_t *consumed, struct rk_errmsg *err)
{
    int64_t due[CLI_DEPTH_MAX + 1]; /* elements still due at each depth; due[0]: the reply */
    int64_t count[CLI_DEPTH_MAX + 1];
    uint32_t depth = 0;
    due[0] = 1;
    count[0] = 1;
    size_t off = 0;
    for (;;) {
        while (depth > 0 && due[depth] == 0)
            depth--;
        if (depth == 0 && due[0] == 0)
            break;
        struct cli_elem e;
        int rc = cli_elem_read(buf, len, &off, &e, err);
        if (rc != RK_OK)
            return rc;
        e.depth = depth;
        e.index = depth == 0 ? 0 : count[depth] - due[depth] + 1;
        due[depth]--;
        if (visit != NULL)
            visit(ctx, &e);
        if (e.type == REPLY_ARRAY && e.n > 0) {
            if (depth == CLI_DEPTH_MAX)
                return rk_errf(err, RK_EMALFORMED, "arrays nested over %d deep", CLI_DEPTH_MAX);
            depth++;
            due[depth] = e.n;
            count[depth] = e.n;
        }
    }
    RK_ASSERT(off <= len);
    *consumed = off;
    return RK_OK;
}

/* A reply read whole into buf (owned by the caller; free with free()). */
struct cli_reply {
    uint8_t *buf;
    size_t len, cap;
    struct cli_elem top;
};

static void cli_top_visit(void *ctx, const struct cli_elem *e)
{
    if (e->depth == 0)
        *(struct cli_elem *)ctx = *e;
}

/* Reads until one whole reply has arrived (earlier bytes are discarded by the caller). */
static bool cli_read_reply(struct cli_conn *c, struct cli_reply *r, int64_t deadline_ms)
{
    struct rk_errmsg err = {{0}};
    r->len = 0;
    for (;;) {
        size_t used = 0;
        int rc = cli_reply_walk(r->buf, r->len, cli_top_visit, &r->top, &used, &err);
        if (rc == RK_OK)
            return true;
        if (rc != RK_EAGAIN) {
            snprintf(c->err, sizeof(c->err), "malformed reply from %s: %s", c->addr, err.text);
            return false;
        }
        if (r->len == CLI_REPLY_MAX_BYTES) {
            snprintf(c->err, sizeof(c->err), "reply from %s over %zu bytes", c->addr,
                     CLI_REPLY_MAX_BYTES);
            return false;
        }
        if (r->cap - r->len < CLI_READ_CHUNK_BYTES && r->cap < CLI_REPLY_MAX_BYTES) {
            size_t cap = r->cap ? r->cap * 2 : CLI_READ_CHUNK_BYTES * 2;
            cap = cap > CLI_REPLY_MAX_BYTES ? CLI_REPLY_MAX_BYTES : cap;
            uint8_t *p = realloc(r->buf, cap);
            if (p == NULL) {
                snprintf(c->err, sizeof(c->err), "out of memory reading from %s", c->addr);
                return false;
            }
            r->buf = p;
            r->cap = cap;
        }
        if (c->ssl != NULL) {
            size_t got = 0;
            ERR_clear_error();
            int rr = SSL_read_ex(c->ssl, r->buf + r->len, r->cap - r->len, &got);
            if (rr == 1) {
                r->len += got;
                continue;
            }
            short ev = cli_tls_wait_for(c, rr, "cannot read from");
            int e = ev == 0 ? -1 : cli_wait(c->fd, ev, deadline_ms);
            if (e == ETIMEDOUT)
                snprintf(c->err, sizeof(c->err), "no reply from %s in time", c->addr);
            else if (e > 0)
                snprintf(c->err, sizeof(c->err), "cannot read from %s: %s", c->addr, strerror(e));
            if (e != 0)
                return false;
            continue;
        }
        ssize_t k = recv(c->fd, r->buf + r->len, r->cap - r->len, 0);
        if (k > 0) {
            r->len += (size_t)k;
            continue;
        }
        if (k == 0) {
            snprintf(c->err, sizeof(c->err), "%s closed the connection before a whole reply",
                     c->addr);
            return false;
        }
        int e = errno;
        if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
            e = cli_wait(c->fd, POLLIN, deadline_ms);
        if (e == ETIMEDOUT) {
            snprintf(c->err, sizeof(c->err), "no reply from %s in time: %s", c->addr, strerror(e));
            return false;
        }
        if (e != 0) {
            snprintf(c->err, sizeof(c->err), "cannot read from %s: %s", c->addr, strerror(e));
            return false;
        }
    }
}

/* Encodes argv as a RESP array of bulk strings into *out (malloc'ed; the caller frees). */
static bool cli_encode(int argc, char **argv, uint8_t **out, size_t *len)
{
    size_t size = resp_array_size(argc);
    for (int i = 0; i < argc; i++)
        size += resp_bulk_size(strlen(argv[i]));
    uint8_t *p = malloc(size);
    if (p == NULL)
        return false;
    size_t pos = 0;
    bool ok = resp_array(p, size, &pos, argc);
    for (int i = 0; i < argc && ok; i++)
        ok = resp_bulk(p, size, &pos, (const uint8_t *)argv[i], strlen(argv[i]));
    RK_ASSERT(ok);
    RK_ASSERT(pos == size);
    *out = p;
    *len = size;
    return true;
}

/* Sends argv and reads its reply, retrying on -TRYAGAIN until the deadline (C3). */
static bool cli_exchange(struct cli_conn *c, int argc, char **argv, struct cli_reply *r,
                         int64_t deadline_ms)
{
    uint8_t *req;
    size_t req_len;
    if (!cli_encode(argc, argv, &req, &req_len)) {
        snprintf(c->err, sizeof(c->err), "out of memory encoding the command");
        return false;
    }
    bool ok;
    for (;;) {
        ok = cli_send(c, req, req_len, deadline_ms) && cli_read_reply(c, r, deadline_ms);
        bool again = ok && r->top.type == REPLY_ERROR && r->top.len >= 8 &&
                     memcmp(r->top.ptr, "TRYAGAIN", 8) == 0;
        if (!again || cli_remaining_ms(deadline_ms) <= CLI_RETRY_SLEEP_MS)
            break;
        struct timespec ts = {.tv_nsec = CLI_RETRY_SLEEP_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(req);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Printing, as redis-cli does: nested arrays indent under their "N) " prefix.                */

struct cli_printer {
    FILE *out;
    bool line_open;                /* a prefix was printed; the element goes on this line */
    size_t col[CLI_DEPTH_MAX + 2]; /* column where depth d's prefixes start */
};

static void cli_print_visit(void *ctx, const struct cli_elem *e)
{
    struct cli_printer *pr = ctx;
    if (e->depth > 0) {
        if (!pr->line_open)
            fprintf(pr->out, "%*s", (int)pr->col[e->depth], "");
        int w = fprintf(pr->out, "%" PRId64 ") ", e->index);
        pr->col[e->depth + 1] = pr->col[e->depth] + (size_t)(w > 0 ? w : 0);
    } else {
        pr->col[1] = 0;
    }
    pr->line_open = false;
    switch (e->type) {
    case REPLY_STATUS:
    case REPLY_BULK:
        fwrite(e->ptr, 1, e->len, pr->out);
        break;
    case REPLY_ERROR:
        fputs("(error) ", pr->out);
        fwrite(e->ptr, 1, e->len, pr->out);
        break;
    case REPLY_INTEGER:
        fprintf(pr->out, "(integer) %" PRId64, e->n);
        break;
    case REPLY_NIL:
        fputs("(nil)", pr->out);
        break;
    case REPLY_ARRAY:
        if (e->n > 0) {
            pr->line_open = true;
            return; /* the first element follows on this line */
        }
        fputs(e->n == 0 ? "(empty array)" : "(nil)", pr->out);
        break;
    }
    fputc('\n', pr->out);
}

static void cli_print_reply(const struct cli_reply *r)
{
    struct cli_printer pr = {.out = stdout};
    size_t used;
    struct rk_errmsg err;
    int rc = cli_reply_walk(r->buf, r->len, cli_print_visit, &pr, &used, &err);
    RK_ASSERT(rc == RK_OK); /* the same bytes walked whole in cli_read_reply */
}

/* ------------------------------------------------------------------------------------------ */
/* status --cluster                                                                           */

struct cli_member {
    char host[CLI_ADDR_MAX_BYTES];
    char port[16];
    bool reachable;
    char err[CLI_ERR_MAX_BYTES];
    char role[16];
    uint64_t id, term, commit, applied, leader;
};

/* Splits "host:port" (or "[v6]:port") on its last ':'. */
static bool cli_member_parse(const char *text, size_t len, struct cli_member *m)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ':')
            colon = text + i;
    if (colon == NULL || colon == text || (size_t)(text + len - colon - 1) >= sizeof(m->port) ||
        colon + 1 == text + len)
        return false;
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(m->host))
        return false;
    memset(m, 0, sizeof(*m));
    memcpy(m->host, h, hlen);
    memcpy(m->port, colon + 1, (size_t)(text + len - colon - 1));
    return true;
}

/* The value of "name:" in INFO text as an unsigned number; 0 when absent or not a number. */
static uint64_t cli_info_u64(const struct cli_elem *info, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = (const char *)info->ptr;
    const char *end = p + info->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        eol = eol ? eol : end;
        if ((size_t)(eol - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == ':') {
            uint64_t v = 0;
            for (const char *q = p + nlen + 1; q < eol && *q >= '0' && *q <= '9'; q++) {
                if (v > (UINT64_MAX - 9) / 10)
                    return 0;
                v = v * 10 + (uint64_t)(*q - '0');
            }
            return v;
        }
        p = eol + 1;
    }
    return 0;
}

static void cli_info_role(const struct cli_elem *info, char *role, size_t cap)
{
    const char *p = (const char *)info->ptr;
    const char *end = p + info->len;
    snprintf(role, cap, "?");
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        eol = eol ? eol : end;
        if (eol - p > 5 && memcmp(p, "role:", 5) == 0) {
            size_t n = (size_t)(eol - p - 5);
            while (n > 0 && (p[5 + n - 1] == '\r' || p[5 + n - 1] == ' '))
                n--;
            n = n < cap - 1 ? n : cap - 1;
            for (size_t i = 0; i < n; i++)
                role[i] = (p[5 + i] >= 0x20 && p[5 + i] < 0x7f) ? p[5 + i] : '?';
            role[n] = '\0';
            return;
        }
        p = eol + 1;
    }
}

static void cli_member_query(struct cli_member *m)
{
    int64_t deadline_ms = cli_now_ms() + CLI_STATUS_TIMEOUT_MS;
    struct cli_conn c;
    struct cli_reply r = {0};
    char *argv[] = {"INFO"};
    if (!cli_connect(&c, m->host, m->port, deadline_ms)) {
        snprintf(m->err, sizeof(m->err), "%s", c.err);
        return;
    }
    if (!cli_exchange(&c, 1, argv, &r, deadline_ms)) {
        snprintf(m->err, sizeof(m->err), "%s", c.err);
    } else if (r.top.type != REPLY_BULK) {
        snprintf(m->err, sizeof(m->err), "INFO from %s: not a bulk string", c.addr);
    } else {
        m->reachable = true;
        cli_info_role(&r.top, m->role, sizeof(m->role));
        m->id = cli_info_u64(&r.top, "node_id");
        m->term = cli_info_u64(&r.top, "term");
        m->commit = cli_info_u64(&r.top, "commit_index");
        m->applied = cli_info_u64(&r.top, "applied_index");
        m->leader = cli_info_u64(&r.top, "leader_id");
    }
    free(r.buf);
    cli_close(&c);
}

/* Exit 0 iff a majority of the members is reachable and all reachable ones name one leader. */
static int cli_status(const char *list)
{
    static struct cli_member m[CLI_MEMBERS_MAX];
    size_t n = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == CLI_MEMBERS_MAX || !cli_member_parse(p, len, &m[n])) {
            fprintf(stderr,
                    "raftkv-cli: --cluster: bad member '%.*s' (want HOST:PORT, at most %d)\n",
                    (int)len, p, CLI_MEMBERS_MAX);
            return CLI_EXIT_USAGE;
        }
        n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    size_t up = 0;
    uint64_t leader = 0;
    bool agree = true;
    printf("%-4s %-24s %-10s %-8s %-10s %-10s %-6s %s\n", "ID", "ADDRESS", "ROLE", "TERM", "COMMIT",
           "APPLIED", "LEADER", "REACHABLE");
    for (size_t i = 0; i < n; i++) {
        char addr[CLI_ADDR_MAX_BYTES + 20];
        snprintf(addr, sizeof(addr), "%s:%s", m[i].host, m[i].port);
        cli_member_query(&m[i]);
        if (!m[i].reachable) {
            printf("%-4s %-24s %-10s %-8s %-10s %-10s %-6s no (%s)\n", "-", addr, "-", "-", "-",
                   "-", "-", m[i].err);
            continue;
        }
        up++;
        if (m[i].leader == 0 || (leader != 0 && m[i].leader != leader))
            agree = false;
        leader = leader ? leader : m[i].leader;
        printf("%-4" PRIu64 " %-24s %-10s %-8" PRIu64 " %-10" PRIu64 " %-10" PRIu64 " %-6" PRIu64
               " yes\n",
               m[i].id, addr, m[i].role, m[i].term, m[i].commit, m[i].applied, m[i].leader);
    }
    bool healthy = up > n / 2 && agree && leader != 0;
    if (healthy)
        printf("%zu/%zu reachable, leader %" PRIu64 "\n", up, n, leader);
    else
        printf("%zu/%zu reachable, %s\n", up, n,
               up <= n / 2 ? "no majority" : "no leader agreed on by every reachable member");
    return healthy ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ------------------------------------------------------------------------------------------ */
/* backup FILE (node/README.md "Backup and restore"; the format: backup_file.h)               */

#define CLI_BACKUP_TIMEOUT_MS 60000 /* per call: START waits for a read barrier, NEXT reads */

struct cli_ints {
    int64_t v[8];
    int n;
};

static void cli_ints_visit(void *ctx, const struct cli_elem *e)
{
    struct cli_ints *x = ctx;
    if (e->depth == 1 && e->type == REPLY_INTEGER && x->n < 8)
        x->v[x->n++] = e->n;
}

struct cli_backup {
    const char *file;
    const char *chunk_bytes; /* NULL: the node's default */
    char part[4096];
    int fd;
    bool bar; /* stderr is a terminal */
    struct backup_header h;
    uint64_t keys, bytes, est_keys, est_bytes;
    int64_t started_ms, shown_ms;
};

static bool cli_write_all(int fd, const void *p, size_t len, uint64_t off)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t k = pwrite(fd, b, len, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        b += k;
        len -= (size_t)k;
        off += (uint64_t)k;
    }
    return true;
}

static void cli_backup_progress(struct cli_backup *b, bool last)
{
    int64_t now = cli_now_ms();
    if (!b->bar || (!last && now - b->shown_ms < 200))
        return;
    b->shown_ms = now;
    double frac = b->est_bytes > 0 ? (double)b->h.body_bytes / (double)b->est_bytes : 1.0;
    if (frac > 1.0 || last)
        frac = 1.0;
    char bar[41];
    int fill = (int)(frac * 40);
    for (int i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    double secs = (double)(now - b->started_ms) / 1000.0;
    fprintf(stderr, "\r[%s] %3d%% %" PRIu64 " keys %.1f MB %.1f MB/s%s", bar, (int)(frac * 100),
            b->keys, (double)b->h.body_bytes / 1e6,
            secs > 0 ? (double)b->h.body_bytes / 1e6 / secs : 0.0, last ? "\n" : "");
    fflush(stderr);
}

/* One chunk from the node: checked (the same check restore makes) and appended. */
static bool cli_backup_chunk(struct cli_backup *b, const uint8_t *p, size_t len)
{
    struct rk_errmsg err = {{0}};
    uint32_t records = 0;
    uint64_t off = BACKUP_HEADER_BYTES + b->h.body_bytes;
    if (backup_chunk_check(p, len, off, b->h.chunks, &records, &err) != RK_OK) {
        fprintf(stderr, "raftkv-cli: backup: the node sent a bad chunk: %s\n", err.text);
        return false;
    }
    if (!cli_write_all(b->fd, p, len, off)) {
        fprintf(stderr, "raftkv-cli: backup: writing %s: %s\n", b->part, strerror(errno));
        return false;
    }
    size_t pos = BACKUP_CHUNK_HEAD_BYTES;
    const uint8_t *k, *v;
    uint32_t kl, vl;
    while (backup_record_next(p, len, &pos, &k, &kl, &v, &vl)) {
        if (k[0] >= KV_KEY_USER && k[0] < KV_KEY_USER + KV_DBS)
            b->keys++;
    }
    b->h.body_crc = rk_crc32c(b->h.body_crc, p, len);
    b->h.body_bytes += len;
    b->h.records += records;
    b->h.chunks++;
    cli_backup_progress(b, false);
    return true;
}

/* The header last, then fsync, rename and the directory's fsync: a FILE that exists is whole. */
static bool cli_backup_finish(struct cli_backup *b)
{
    uint8_t head[BACKUP_HEADER_BYTES];
    backup_header_encode(&b->h, head);
    if (!cli_write_all(b->fd, head, sizeof(head), 0) || fsync(b->fd) != 0) {
        fprintf(stderr, "raftkv-cli: backup: writing %s: %s\n", b->part, strerror(errno));
        return false;
    }
    if (rename(b->part, b->file) != 0) {
        fprintf(stderr, "raftkv-cli: backup: renaming %s to %s: %s\n", b->part, b->file,
                strerror(errno));
        return false;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", b->file);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = dfd >= 0 && fsync(dfd) == 0;
    if (dfd >= 0)
        close(dfd);
    if (!ok)
        fprintf(stderr, "raftkv-cli: backup: syncing the directory %s: %s\n", dir, strerror(errno));
    return ok;
}

static bool cli_backup_run(struct cli_conn *c, struct cli_backup *b)
{
    char *start[] = {"RAFTKV.BACKUP", "START", (char *)b->chunk_bytes};
    struct cli_reply r = {0};
    bool ok =
        cli_exchange(c, b->chunk_bytes ? 3 : 2, start, &r, cli_now_ms() + CLI_BACKUP_TIMEOUT_MS);
    struct cli_ints x = {0};
    size_t used = 0;
    struct rk_errmsg err = {{0}};
    if (!ok) {
        fprintf(stderr, "raftkv-cli: backup: %s\n", c->err);
    } else if (r.top.type != REPLY_ARRAY) {
        fprintf(stderr, "raftkv-cli: backup: %.*s\n", (int)r.top.len, (const char *)r.top.ptr);
        ok = false;
    } else if (cli_reply_walk(r.buf, r.len, cli_ints_visit, &x, &used, &err) != RK_OK || x.n != 6 ||
               x.v[0] <= 0) {
        fprintf(stderr, "raftkv-cli: backup: unexpected reply to RAFTKV.BACKUP START\n");
        ok = false;
    }
    if (!ok) {
        free(r.buf);
        return false;
    }
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, x.v[0]);
    b->h.index = (uint64_t)x.v[1];
    b->h.term = (uint64_t)x.v[2];
    b->h.cluster_id = (uint64_t)x.v[3];
    b->est_keys = (uint64_t)x.v[4];
    b->est_bytes = (uint64_t)x.v[5];
    char *next[] = {"RAFTKV.BACKUP", "NEXT", id};
    for (;;) {
        if (!cli_exchange(c, 3, next, &r, cli_now_ms() + CLI_BACKUP_TIMEOUT_MS)) {
            fprintf(stderr, "\nraftkv-cli: backup: %s\n", c->err);
            ok = false;
        } else if (r.top.type == REPLY_NIL) {
            break;
        } else if (r.top.type != REPLY_BULK) {
            fprintf(stderr, "\nraftkv-cli: backup: %.*s\n", (int)r.top.len,
                    (const char *)r.top.ptr);
            ok = false;
        } else {
            ok = cli_backup_chunk(b, r.top.ptr, r.top.len);
        }
        if (!ok)
            break;
    }
    free(r.buf);
    if (!ok) {
        char *abort_it[] = {"RAFTKV.BACKUP", "ABORT", id};
        struct cli_reply ar = {0};
        (void)cli_exchange(c, 3, abort_it, &ar, cli_now_ms() + CLI_TIMEOUT_MS);
        free(ar.buf);
    }
    return ok;
}

static int cli_backup(const char *host, const char *port, const char *file, const char *chunk)
{
    struct cli_backup b = {
        .file = file, .chunk_bytes = chunk, .fd = -1, .bar = isatty(STDERR_FILENO) != 0};
    if ((size_t)snprintf(b.part, sizeof(b.part), "%s.part", file) >= sizeof(b.part)) {
        fprintf(stderr, "raftkv-cli: backup: file name too long\n");
        return CLI_EXIT_USAGE;
    }
    struct cli_conn c;
    if (!cli_connect(&c, host, port, cli_now_ms() + CLI_TIMEOUT_MS)) {
        fprintf(stderr, "raftkv-cli: %s\n", c.err);
        return CLI_EXIT_FAIL;
    }
    b.fd = open(b.part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (b.fd < 0) {
        fprintf(stderr, "raftkv-cli: backup: cannot create %s: %s\n", b.part, strerror(errno));
        cli_close(&c);
        return CLI_EXIT_FAIL;
    }
    /* A zero header until the end: a .part file is never taken for a backup. */
    uint8_t zero[BACKUP_HEADER_BYTES] = {0};
    b.started_ms = cli_now_ms();
    bool ok = cli_write_all(b.fd, zero, sizeof(zero), 0);
    if (!ok)
        fprintf(stderr, "raftkv-cli: backup: writing %s: %s\n", b.part, strerror(errno));
    ok = ok && cli_backup_run(&c, &b);
    if (ok)
        cli_backup_progress(&b, true);
    ok = ok && cli_backup_finish(&b);
    close(b.fd);
    cli_close(&c);
    if (!ok) {
        unlink(b.part);
        return CLI_EXIT_FAIL;
    }
    double secs = (double)(cli_now_ms() - b.started_ms) / 1000.0;
    uint64_t size = BACKUP_HEADER_BYTES + b.h.body_bytes;
    printf("backup %s: index %" PRIu64 " term %" PRIu64 " cluster %" PRIu64 ": %" PRIu64
           " keys, %" PRIu64 " records, %" PRIu64 " bytes in %.2f s (%.1f MB/s)\n",
           file, b.h.index, b.h.term, b.h.cluster_id, b.keys, b.h.records, size, secs,
           secs > 0 ? (double)size / 1e6 / secs : 0.0);
    return CLI_EXIT_OK;
}
/* ------------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------------ */
/* member list|add|promote|remove (issue #17): RAFTKV.MEMBER at the leader among the nodes    */

#define CLI_MEMBER_WAIT_MS 15000

/* The first two integers of a RAFTKV.MEMBER LIST reply: the configuration's index and
 * whether it is committed. */
struct cli_conf_head {
    int64_t index, committed;
    bool seen_index, seen_committed;
};

static void cli_conf_visit(void *ctx, const struct cli_elem *e)
{
    struct cli_conf_head *h = ctx;
    if (e->depth != 1 || e->type != REPLY_INTEGER)
        return;
    if (e->index == 1) {
        h->index = e->n;
        h->seen_index = true;
    } else if (e->index == 2) {
        h->committed = e->n;
        h->seen_committed = true;
    }
}

/* Sends RAFTKV.MEMBER argv to each node in turn until one is not a follower (NOTLEADER); for
 * a change, then waits until LIST there shows the new configuration committed. */
static int cli_member(struct cli_member *m, size_t n, int argc, char **argv)
{
    bool change = strcasecmp(argv[1], "list") != 0;
    int64_t deadline_ms = cli_now_ms() + CLI_MEMBER_WAIT_MS;
    for (size_t i = 0; i < n; i++) {
        struct cli_conn c;
        struct cli_reply r = {0};
        if (!cli_connect(&c, m[i].host, m[i].port, deadline_ms)) {
            fprintf(stderr, "raftkv-cli: %s\n", c.err);
            continue;
        }
        if (!cli_exchange(&c, argc, argv, &r, deadline_ms)) {
            fprintf(stderr, "raftkv-cli: %s\n", c.err);
            free(r.buf);
            cli_close(&c);
            continue;
        }
        bool follower =
            r.top.type == REPLY_ERROR && r.top.len >= 9 && memcmp(r.top.ptr, "NOTLEADER", 9) == 0;
        if (follower && i + 1 < n) {
            free(r.buf);
            cli_close(&c);
            continue;
        }
        if (!change || r.top.type != REPLY_INTEGER) {
            cli_print_reply(&r);
            int rc = r.top.type == REPLY_ERROR ? CLI_EXIT_FAIL : CLI_EXIT_OK;
            free(r.buf);
            cli_close(&c);
            return rc;
        }
        int64_t index = r.top.n;
        char *list[] = {argv[0], "LIST"};
        for (;;) {
            free(r.buf);
            memset(&r, 0, sizeof(r));
            struct cli_conf_head h = {0};
            size_t used = 0;
            struct rk_errmsg err;
            if (cli_exchange(&c, 2, list, &r, deadline_ms) &&
                cli_reply_walk(r.buf, r.len, cli_conf_visit, &h, &used, &err) == RK_OK &&
                h.seen_index && h.seen_committed && h.index >= index && h.committed == 1) {
                printf("OK: configuration %" PRId64 " committed\n", h.index);
                free(r.buf);
                cli_close(&c);
                return CLI_EXIT_OK;
            }
            if (cli_remaining_ms(deadline_ms) <= CLI_RETRY_SLEEP_MS)
                break;
            struct timespec ts = {.tv_nsec = CLI_RETRY_SLEEP_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        fprintf(stderr,
                "raftkv-cli: configuration %" PRId64 " proposed at %s:%s, not seen "
                "committed within %d ms (leadership may have changed: check with "
                "`member list`)\n",
                index, m[i].host, m[i].port, CLI_MEMBER_WAIT_MS);
        free(r.buf);
        cli_close(&c);
        return CLI_EXIT_FAIL;
    }
    fprintf(stderr, "raftkv-cli: no node took the command\n");
    return CLI_EXIT_FAIL;
}

static void cli_usage(FILE *f)
{
    fprintf(
        f, "usage: raftkv-cli [-h HOST] [-p PORT] [TLS] COMMAND [ARGS...]\n"
           "       raftkv-cli [TLS] status --cluster HOST:PORT[,HOST:PORT...]\n"
           "       raftkv-cli [-h HOST] [-p PORT] [TLS] backup [--chunk-bytes N] FILE\n"
           "       raftkv-cli [TLS] [--cluster HOST:PORT,...] member list|add ID [PEER [CLIENT]]|\n"
           "         update ID PEER [CLIENT]|promote ID|remove ID (PEER, CLIENT: HOST:PORT)\n"
           "         (at the leader: tries each node in turn; a change waits until committed)\n"
           "TLS: --tls [--cacert FILE] [--cert FILE --key FILE], as redis-cli's options.\n"
           "HOST defaults to 127.0.0.1, PORT to 7001 (ci/cluster's node 1).\n"
           "Commands: get KEY, set KEY VALUE, del KEY..., ping, info; any other command is\n"
           "sent as is. Exit status: 0 ok, 1 error reply or connection failure, 2 usage.\n");
}

static int cli_command(const char *host, const char *port, int argc, char **argv)
{
    int64_t deadline_ms = cli_now_ms() + CLI_TIMEOUT_MS;
    struct cli_conn c;
    struct cli_reply r = {0};
    if (!cli_connect(&c, host, port, deadline_ms)) {
        fprintf(stderr, "raftkv-cli: %s\n", c.err);
        return CLI_EXIT_FAIL;
    }
    int rc = CLI_EXIT_FAIL;
    if (!cli_exchange(&c, argc, argv, &r, deadline_ms)) {
        fprintf(stderr, "raftkv-cli: %s\n", c.err);
    } else {
        cli_print_reply(&r);
        rc = r.top.type == REPLY_ERROR ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    free(r.buf);
    cli_close(&c);
    return rc;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *port = "7001";
    const char *cacert = NULL, *cert = NULL, *key = NULL;
    bool tls = false;
    const char *cluster = NULL;
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0) {
            cli_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(argv[i], "--cluster") == 0 && i + 1 < argc && i + 2 < argc &&
            strcmp(argv[i + 2], "member") == 0) {
            cluster = argv[i + 1];
            i += 2;
            continue;
        }
        if (strcmp(argv[i], "--tls") == 0) {
            tls = true;
            i++;
            continue;
        }
        const char **dst = strcmp(argv[i], "-h") == 0         ? &host
                           : strcmp(argv[i], "-p") == 0       ? &port
                           : strcmp(argv[i], "--cacert") == 0 ? &cacert
                           : strcmp(argv[i], "--cert") == 0   ? &cert
                           : strcmp(argv[i], "--key") == 0    ? &key
                                                              : NULL;
        if (i + 1 >= argc || dst == NULL) {
            fprintf(stderr, "raftkv-cli: bad option '%s'\n", argv[i]);
            cli_usage(stderr);
            return CLI_EXIT_USAGE;
        }
        *dst = argv[i + 1];
        i += 2;
    }
    if (!tls && (cacert != NULL || cert != NULL || key != NULL)) {
        fprintf(stderr, "raftkv-cli: --cacert, --cert and --key go with --tls\n");
        return CLI_EXIT_USAGE;
    }
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "raftkv-cli: --cert and --key go together\n");
        return CLI_EXIT_USAGE;
    }
    if (tls && !cli_tls_setup(cacert, cert, key))
        return CLI_EXIT_USAGE;
    if (i == argc || argc - i > (int)CLI_ARGS_MAX) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[i], "status") == 0) {
        if (argc - i == 3 && strcmp(argv[i + 1], "--cluster") == 0)
            return cli_status(argv[i + 2]);
        if (argc - i == 1) {
            char one[CLI_ADDR_MAX_BYTES + 20];
            snprintf(one, sizeof(one), "%s:%s", host, port);
            return cli_status(one);
        }
        fprintf(stderr, "raftkv-cli: usage: raftkv-cli status [--cluster HOST:PORT,...]\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[i], "backup") == 0) {
        if (argc - i == 4 && strcmp(argv[i + 1], "--chunk-bytes") == 0)
            return cli_backup(host, port, argv[i + 3], argv[i + 2]);
        if (argc - i != 2 || argv[i + 1][0] == '-') {
            fprintf(stderr, "raftkv-cli: usage: raftkv-cli [-h HOST] [-p PORT] backup "
                            "[--chunk-bytes N] FILE\n");
            return CLI_EXIT_USAGE;
        }
        return cli_backup(host, port, argv[i + 1], NULL);
    }
    if (strcmp(argv[i], "member") == 0) {
        int nargs = argc - i - 1; /* after "member" */
        bool list = nargs == 1 && strcasecmp(argv[i + 1], "list") == 0;
        bool change = (nargs >= 2 && nargs <= 4 && strcasecmp(argv[i + 1], "add") == 0) ||
                      (nargs >= 3 && nargs <= 4 && strcasecmp(argv[i + 1], "update") == 0) ||
                      (nargs == 2 && (strcasecmp(argv[i + 1], "promote") == 0 ||
                                      strcasecmp(argv[i + 1], "remove") == 0));
        if (!list && !change) {
            fprintf(stderr, "raftkv-cli: usage: raftkv-cli [--cluster HOST:PORT,...] member "
                            "list|add ID [PEER-HOST:PORT [CLIENT-HOST:PORT]]|"
                            "update ID PEER-HOST:PORT [CLIENT-HOST:PORT]|promote ID|remove ID\n");
            return CLI_EXIT_USAGE;
        }
        static struct cli_member m[CLI_MEMBERS_MAX];
        size_t n = 0;
        char one[CLI_ADDR_MAX_BYTES + 20];
        snprintf(one, sizeof(one), "%s:%s", host, port);
        const char *p = cluster != NULL ? cluster : one;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (n == CLI_MEMBERS_MAX || !cli_member_parse(p, len, &m[n])) {
                fprintf(stderr, "raftkv-cli: --cluster: bad node '%.*s'\n", (int)len, p);
                return CLI_EXIT_USAGE;
            }
            n++;
            if (comma == NULL)
                break;
            p = comma + 1;
        }
        char *args[5] = {"RAFTKV.MEMBER", NULL, NULL, NULL, NULL};
        for (int k = 0; k < nargs; k++)
            args[1 + k] = argv[i + 1 + k];
        return cli_member(m, n, 1 + nargs, args);
    }
    return cli_command(host, port, argc - i, argv + i);
}
