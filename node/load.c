/*
 * load.c — raftkv-load: a load generator that records every acknowledged write and checks the
 * cluster against that record later (integration tests, ci/bench).
 *
 *   raftkv-load write     --nodes H:P,... [-c CONNS] [-P DEPTH] [--duration S | -n N] [--log F]
 *   raftkv-load verify    --nodes H:P,... --log F
 *   raftkv-load failover  --nodes H:P,... --kill-pid PID [--after MS]
 *   raftkv-load fill      --nodes H:P,... --keys N [--key-size B] [--value-size B]
 *   raftkv-load wait-serving --node H:P --key K [--timeout S]
 *
 * (`raftkv-load CMD --help` gives every flag.) One thread, one epoll loop, CONNS non-blocking
 * connections with up to DEPTH requests in flight on each (pipelining).
 *
 * What a write run records. Connection c owns keys "<prefix>:<c>:<k>" (k < --keys) and writes
 * them round robin with values from one counter of its own that only grows, starting at the
 * wall clock in microseconds (so a later run with the same prefix writes larger values). With
 * --keys >= DEPTH the same key is never in flight twice on a connection. For each key the log
 * keeps the last acknowledged value and every value whose fate is unknown (connection lost,
 * -TIMEOUT, another error: it may still apply, even after a later acknowledged write of the
 * same key, as linearizability allows for a request that never completed) that is below it.
 * -TRYAGAIN is the node's promise that the command did not execute: not recorded.
 * verify then reads every logged key: the value must be at least the last acknowledged one
 * (later unacknowledged writes may have landed), or one of the recorded unknown-fate values.
 * Anything else (missing, or lower) is a lost acknowledged write.
 *
 * Invariants:
 *   L1  a connection's requests are answered in order (RESP): its in-flight FIFO holds one
 *       entry per request sent and not yet answered, at most DEPTH; a reply with none in
 *       flight is a protocol violation.
 *   L2  a write is counted acknowledged only on "+OK" to its own request (L1); on any other
 *       outcome its fate is unknown unless the reply is -TRYAGAIN.
 *   L3  reply bytes are untrusted: bounded buffer (LOAD_IN_MAX_BYTES), nesting depth and
 *       numbers; anything else closes the connection with a message naming the node, never
 *       an assert.
 *   L4  nothing waits without a deadline: connect and every request time out (--timeout-ms),
 *       which counts as a lost connection.
 *   L5  after an error reply or a lost connection, a connection stops sending, lets its
 *       in-flight requests finish (error replies) or fail (lost), and reconnects to the next
 *       node, with a backoff that grows on consecutive failures and resets on an ack.
 *
 * Exit status: 0 ok; 1 the check failed (verify found lost writes, failover saw no ack, no
 * write was acknowledged, wait-serving timed out, fill could not write every key); 2 usage or
 * setup error (bad flag, unresolvable address, unreadable log file).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/err.h"
#include "resp/resp.h"

#define LOAD_NODES_MAX        16
#define LOAD_CONNS_MAX        4096
#define LOAD_DEPTH_MAX        1024
#define LOAD_KEYS_TOTAL_MAX   ((uint64_t)1 << 26)
#define LOAD_PREFIX_MAX_BYTES 64
#define LOAD_KEY_MAX_BYTES    512
#define LOAD_VALUE_MAX_BYTES  (1u << 20)
#define LOAD_IN_MAX_BYTES     ((size_t)4 << 20) /* one reply never needs more (L3) */
#define LOAD_READ_CHUNK_BYTES ((size_t)64 << 10)
#define LOAD_DEPTH_REPLY_MAX  8
#define LOAD_UNKNOWN_MAX      ((size_t)1 << 22)
#define LOAD_BACKOFF_MAX_US   50000
#define LOAD_TICK_MS          1
#define LOAD_ERRS_SHOWN_MAX   5
#define LOAD_HIST_BUCKETS     (64 + 58 * 32)
#define LOAD_PROBES_PER_NODE  32

enum load_exit { LOAD_EXIT_OK = 0, LOAD_EXIT_FAIL = 1, LOAD_EXIT_USAGE = 2 };

enum load_cmd { CMD_WRITE, CMD_FAILOVER, CMD_FILL, CMD_VERIFY };

/* Outcome kinds, counted separately in the summary. */
enum load_kind {
    KIND_TRYAGAIN, /* -TRYAGAIN: certainly not executed */
    KIND_TIMEOUT,  /* -TIMEOUT from the node */
    KIND_ERR,      /* any other error reply */
    KIND_UNEXPECTED, /* a reply of the wrong type (e.g. SET answered with :1) */
    KIND_LOST,     /* in flight on a connection that was lost */
    KIND_COUNT
};
static const char *const load_kind_name[KIND_COUNT] = {"tryagain", "timeout", "err",
                                                        "unexpected", "lost"};

/* Why a connection was closed. */
enum load_drop {
    DROP_CONNECT, /* connect failed or timed out */
    DROP_CLOSED,  /* EOF or a socket error */
    DROP_STALL,   /* a request got no reply within --timeout-ms (L4) */
    DROP_MALFORMED,
    DROP_COUNT
};
static const char *const load_drop_name[DROP_COUNT] = {"connect_fail", "conn_closed",
                                                        "conn_stalled", "malformed"};

/* ------------------------------------------------------------------------------------------ */
/* Time and signals                                                                           */

static int64_t load_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t load_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static volatile sig_atomic_t load_stop_signal;

static void load_on_signal(int sig)
{
    load_stop_signal = sig;
}

static void load_signals_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = load_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------------------------------ */
/* Latency histogram: log-linear over microseconds, 32 sub-buckets per power of two (~3%).    */

struct load_hist {
    uint64_t count[LOAD_HIST_BUCKETS];
    uint64_t total;
};

static uint32_t load_hist_index(uint64_t v)
{
    if (v < 64)
        return (uint32_t)v;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v); /* e >= 6 */
    uint32_t sub = (uint32_t)(v >> (e - 5)) & 31u;
    return 64u + (e - 6u) * 32u + sub;
}

/* The middle of bucket i, in microseconds. */
static double load_hist_value(uint32_t i)
{
    if (i < 64)
        return (double)i;
    uint32_t e = (i - 64u) / 32u + 6u;
    uint32_t sub = (i - 64u) % 32u;
    double lo = (double)(((uint64_t)32u + sub) << (e - 5));
    return lo + (double)((uint64_t)1 << (e - 5)) / 2.0;
}

static void load_hist_add(struct load_hist *h, int64_t us)
{
    uint32_t i = load_hist_index(us < 0 ? 0 : (uint64_t)us);
    RK_ASSERT(i < LOAD_HIST_BUCKETS);
    h->count[i]++;
    h->total++;
}

/* The p-quantile (0 < p <= 1) in milliseconds; 0 when empty. */
static double load_hist_ms(const struct load_hist *h, double p)
{
    if (h->total == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->total + 0.5);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < LOAD_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want)
            return load_hist_value(i) / 1000.0;
    }
    return load_hist_value(LOAD_HIST_BUCKETS - 1) / 1000.0;
}

/* ------------------------------------------------------------------------------------------ */
/* Reply parser (L3): one RESP2 reply, iteratively; nested arrays are skipped.               */

enum load_reply_type { REP_STATUS, REP_ERROR, REP_INTEGER, REP_BULK, REP_NIL, REP_ARRAY };

struct load_reply {
    enum load_reply_type type;
    const uint8_t *ptr; /* STATUS, ERROR, BULK: borrowed from the input buffer */
    size_t len;
    int64_t n; /* INTEGER: the value; ARRAY: the element count */
};

static bool load_parse_i64(const uint8_t *p, size_t len, int64_t *out)
{
    bool neg = len > 0 && p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == len || len - i > 18)
        return false;
    int64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* One element at buf[*off..len): its header (and bulk body). RK_OK advances *off. */
static int load_elem_read(const uint8_t *buf, size_t len, size_t *off, struct load_reply *e,
                          struct rk_errmsg *err)
{
    size_t at = *off;
    const uint8_t *nl = len > at ? memchr(buf + at, '\n', len - at) : NULL;
    if (nl == NULL)
        return len - at > 4096 ? rk_errf(err, RK_EMALFORMED, "header line over 4096 bytes")
                               : RK_EAGAIN;
    size_t eol = (size_t)(nl - buf); /* the '\n' */
    if (eol < at + 2 || buf[eol - 1] != '\r')
        return rk_errf(err, RK_EMALFORMED, "offset %zu: line not ended by CRLF", at);
    const uint8_t *p = buf + at + 1;
    size_t plen = eol - 1 - (at + 1);
    size_t next = eol + 1;
    uint8_t kind = buf[at];
    *e = (struct load_reply){.ptr = p, .len = plen};
    if (kind == '+' || kind == '-') {
        e->type = kind == '+' ? REP_STATUS : REP_ERROR;
    } else if (kind == ':' || kind == '$' || kind == '*') {
        if (!load_parse_i64(p, plen, &e->n))
            return rk_errf(err, RK_EMALFORMED, "offset %zu: bad number after '%c'", at, kind);
        if (kind == ':') {
            e->type = REP_INTEGER;
        } else if (e->n == -1) {
            e->type = kind == '$' ? REP_NIL : REP_ARRAY;
            e->n = kind == '$' ? -1 : 0;
        } else if (e->n < 0 || (uint64_t)e->n > LOAD_IN_MAX_BYTES) {
            return rk_errf(err, RK_EMALFORMED, "offset %zu: '%c' of %" PRId64, at, kind, e->n);
        } else if (kind == '*') {
            e->type = REP_ARRAY;
        } else {
            if (len - next < (size_t)e->n + 2)
                return RK_EAGAIN;
            if (buf[next + (size_t)e->n] != '\r' || buf[next + (size_t)e->n + 1] != '\n')
                return rk_errf(err, RK_EMALFORMED, "offset %zu: bulk not ended by CRLF", at);
            e->type = REP_BULK;
            e->ptr = buf + next;
            e->len = (size_t)e->n;
            next += (size_t)e->n + 2;
        }
    } else {
        return rk_errf(err, RK_EMALFORMED, "offset %zu: unknown reply type byte 0x%02x", at,
                       kind);
    }
    *off = next;
    return RK_OK;
}

/* One whole reply at buf[0..len): RK_OK with *top and *consumed, RK_EAGAIN or RK_EMALFORMED. */
static int load_reply_parse(const uint8_t *buf, size_t len, struct load_reply *top,
                            size_t *consumed, struct rk_errmsg *err)
{
    int64_t due[LOAD_DEPTH_REPLY_MAX + 1];
    uint32_t depth = 0;
    size_t off = 0;
    int rc = load_elem_read(buf, len, &off, top, err);
    if (rc != RK_OK)
        return rc;
    due[0] = top->type == REP_ARRAY ? top->n : 0;
    while (depth > 0 || due[0] > 0) {
        if (due[depth] == 0) {
            depth--;
            continue;
        }
        struct load_reply e = {0};
        rc = load_elem_read(buf, len, &off, &e, err);
        if (rc != RK_OK)
            return rc;
        due[depth]--;
        if (e.type == REP_ARRAY && e.n > 0) {
            if (depth + 1 == LOAD_DEPTH_REPLY_MAX)
                return rk_errf(err, RK_EMALFORMED, "arrays nested over %d deep",
                               LOAD_DEPTH_REPLY_MAX);
            due[++depth] = e.n;
        }
    }
    *consumed = off;
    return RK_OK;
}

static bool load_reply_is(const struct load_reply *r, enum load_reply_type t, const char *s)
{
    size_t n = strlen(s);
    return r->type == t && r->len >= n && memcmp(r->ptr, s, n) == 0;
}

/* Decimal digits only (leading zeros allowed: padded values). */
static bool load_parse_value(const uint8_t *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Addresses                                                                                  */

struct load_addr {
    char text[128]; /* "host:port", for messages */
    struct sockaddr_storage sa;
    socklen_t sa_len;
};

static bool load_addr_resolve(const char *s, size_t len, struct load_addr *a)
{
    if (len == 0 || len >= sizeof(a->text)) {
        fprintf(stderr, "raftkv-load: bad address '%.*s' (want HOST:PORT)\n", (int)len, s);
        return false;
    }
    memcpy(a->text, s, len);
    a->text[len] = 0;
    char host[128];
    char *colon = strrchr(a->text, ':');
    if (colon == NULL || colon == a->text || colon[1] == 0) {
        fprintf(stderr, "raftkv-load: bad address '%s' (want HOST:PORT)\n", a->text);
        return false;
    }
    memcpy(host, a->text, (size_t)(colon - a->text));
    host[colon - a->text] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0 || res == NULL) {
        fprintf(stderr, "raftkv-load: cannot resolve '%s': %s\n", a->text, gai_strerror(rc));
        return false;
    }
    memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
    a->sa_len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

static bool load_nodes_parse(const char *list, struct load_addr *nodes, uint32_t *n_nodes)
{
    *n_nodes = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (*n_nodes == LOAD_NODES_MAX) {
            fprintf(stderr, "raftkv-load: --nodes: more than %d nodes\n", LOAD_NODES_MAX);
            return false;
        }
        if (!load_addr_resolve(p, len, &nodes[*n_nodes]))
            return false;
        (*n_nodes)++;
        p += len + (comma ? 1 : 0);
    }
    if (*n_nodes == 0) {
        fprintf(stderr, "raftkv-load: --nodes: no address given\n");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                    */

struct load_opts {
    enum load_cmd cmd;
    const char *nodes;
    uint32_t conns, depth;
    double duration_s;   /* write: 0 = until -n or a signal */
    uint64_t requests;   /* write: -n, 0 = unbounded */
    const char *log;
    const char *prefix;
    uint64_t keys;       /* write: keys per connection; fill: total keys */
    uint32_t key_size, value_size;
    int64_t timeout_ms;  /* per request (L4) */
    int pid;             /* failover */
    int64_t after_ms, linger_ms, probe_ms;
    double deadline_s;   /* failover: after the kill; verify: whole run; wait-serving */
    bool quiet;
};

/* ------------------------------------------------------------------------------------------ */
/* Connections and the loop                                                                   */

enum load_conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP, CONN_DRAINING };

struct load_req {
    uint64_t tag; /* write: the key index; fill, verify: the item index */
    uint64_t val; /* write: the value sent */
    int64_t sent_us;
};

struct load_conn {
    uint32_t id;
    int fd;
    uint32_t node;
    enum load_conn_state state;
    int64_t retry_at_us;
    int64_t connect_us;
    uint32_t fails; /* consecutive, for the backoff (L5) */
    bool want_out;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    uint8_t *in;
    size_t in_len, in_cap;
    struct load_req *fifo; /* ring of depth entries (L1) */
    uint32_t head, count;
    bool probe;        /* failover: one request per connection, to a fixed node */
    bool probe_sent;
    uint64_t next_key; /* write: round robin over this connection's keys */
    uint64_t seq;      /* write: the next value (only grows) */
};

/* One key of a write run or of a verify log. */
struct load_key {
    uint64_t acked; /* 0: never acknowledged */
};

struct load_unknown {
    uint64_t key;
    uint64_t val;
};

struct load {
    struct load_opts o;
    struct load_addr nodes[LOAD_NODES_MAX];
    uint32_t n_nodes;
    int ep;
    struct load_conn *conns; /* o.conns for the load, then the failover probes */
    uint32_t n_conns;
    int64_t start_us, end_us;
    bool stopping; /* no new requests; drain in-flight ones */
    int64_t drain_deadline_us;
    /* counters */
    uint64_t sent, acks;
    uint64_t kinds[KIND_COUNT];
    uint64_t drops[DROP_COUNT];
    uint32_t errs_shown;
    struct load_hist hist;
    /* write and failover */
    struct load_key *keys; /* conns * o.keys */
    struct load_unknown *unknown;
    size_t n_unknown, cap_unknown;
    bool unknown_overflow;
    uint64_t value_base;
    int64_t kill_us;       /* failover: 0 until the kill */
    int64_t first_after_us; /* failover: send time of the first request acked after the kill */
    int64_t first_ack_us;   /* failover: when that ack arrived */
    uint64_t acks_after_kill;
    int64_t first_load_ack_us; /* failover: the same, counting the steady load only */
    uint64_t probes, probes_acked, probes_abandoned;
    /* fill and verify: items handed out in order, failed ones again from a queue */
    uint64_t n_items, next_item, items_done;
    uint64_t *retry;
    size_t n_retry, cap_retry;
    /* verify */
    char **vkeys;
    uint64_t *vacked;
    uint64_t *vunk_off; /* unknown-fate values of key i: vunk[vunk_off[i] .. vunk_off[i+1]) */
    uint64_t *vunk;
    uint64_t v_ok, v_late, v_missing, v_lower;
    char *fill_value;
};

static void load_err_show(struct load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Errors go to stderr, the first LOAD_ERRS_SHOWN_MAX of them (a failover makes hundreds). */
static void load_err_show(struct load *l, const char *fmt, ...)
{
    if (l->o.quiet || l->errs_shown >= LOAD_ERRS_SHOWN_MAX) {
        l->errs_shown++;
        return;
    }
    l->errs_shown++;
    va_list ap;
    va_start(ap, fmt);
    fputs("raftkv-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bool load_buf_reserve(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *q = realloc(*p, c);
    if (q == NULL)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static void load_conn_events(struct load *l, struct load_conn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = c->id};
    if (epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = out;
}

static void load_on_lost(struct load *l, struct load_conn *c, const struct load_req *r);

/* Closes c: every request in flight is lost (fate unknown); c reconnects to the next node
 * after a backoff (L5). */
static void load_conn_drop(struct load *l, struct load_conn *c, enum load_drop why,
                           const char *what)
{
    if (why != DROP_COUNT) {
        l->drops[why]++;
        load_err_show(l, "%s: %s (%s)", l->nodes[c->node].text, what, load_drop_name[why]);
    }
    while (c->count > 0) {
        const struct load_req *r = &c->fifo[c->head];
        c->head = (c->head + 1) % l->o.depth;
        c->count--;
        l->kinds[KIND_LOST]++;
        load_on_lost(l, c, r);
    }
    if (c->fd >= 0) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = CONN_DOWN;
    c->head = 0;
    c->in_len = c->out_len = c->out_off = 0;
    if (c->probe) {
        c->probe_sent = false; /* retry_at_us already holds the next slot */
        return;
    }
    c->node = (c->node + 1) % l->n_nodes;
    c->fails++;
    int64_t backoff = c->fails <= 1 ? 0 : (int64_t)1000 << (c->fails < 8 ? c->fails - 2 : 6);
    c->retry_at_us = load_now_us() + (backoff > LOAD_BACKOFF_MAX_US ? LOAD_BACKOFF_MAX_US : backoff);
}

static void load_conn_open(struct load *l, struct load_conn *c, int64_t now)
{
    const struct load_addr *a = &l->nodes[c->node];
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        load_err_show(l, "socket: %s", strerror(errno));
        c->retry_at_us = now + LOAD_BACKOFF_MAX_US;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->connect_us = now;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = c->id};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        load_conn_drop(l, c, DROP_CONNECT, strerror(errno));
        return;
    }
    c->want_out = true;
    if (connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) == 0) {
        c->state = CONN_UP;
    } else if (errno == EINPROGRESS) {
        c->state = CONN_CONNECTING;
    } else {
        char what[160];
        snprintf(what, sizeof(what), "connect: %s", strerror(errno));
        load_conn_drop(l, c, DROP_CONNECT, what);
    }
}

/* Appends one command (an array of bulk strings) to c's output. */
static bool load_put_command(struct load_conn *c, uint32_t argc, const uint8_t *const *argv,
                             const size_t *lens)
{
    size_t need = resp_array_size(argc);
    for (uint32_t i = 0; i < argc; i++)
        need += resp_bulk_size(lens[i]);
    if (!load_buf_reserve(&c->out, &c->out_cap, c->out_len + need))
        return false;
    size_t pos = c->out_len;
    bool ok = resp_array(c->out, c->out_cap, &pos, argc);
    for (uint32_t i = 0; ok && i < argc; i++)
        ok = resp_bulk(c->out, c->out_cap, &pos, argv[i], lens[i]);
    RK_ASSERT(ok);
    c->out_len = pos;
    return true;
}

/* ---- the per-command parts: next request, reply, loss ------------------------------------ */

static size_t load_write_key(const struct load *l, const struct load_conn *c, uint64_t k,
                             char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s:%u:%" PRIu64, l->o.prefix, c->id, k);
    RK_ASSERT(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static size_t load_fill_key(const struct load *l, uint64_t i, char *buf, size_t cap)
{
    RK_ASSERT(l->o.key_size < cap);
    int n = snprintf(buf, cap, "%s%0*" PRIu64, l->o.prefix,
                     (int)(l->o.key_size - strlen(l->o.prefix)), i);
    RK_ASSERT(n > 0 && (size_t)n == l->o.key_size);
    return (size_t)n;
}

static bool load_take_item(struct load *l, uint64_t *item)
{
    if (l->n_retry > 0) {
        *item = l->retry[--l->n_retry];
        return true;
    }
    if (l->next_item < l->n_items) {
        *item = l->next_item++;
        return true;
    }
    return false;
}

static void load_give_back(struct load *l, uint64_t item)
{
    /* at most one entry per request in flight: conns * depth, allocated up front */
    RK_ASSERT(l->n_retry < l->cap_retry);
    l->retry[l->n_retry++] = item;
}

/* Queues c's next request, if there is one; false when there is nothing to send now. */
static bool load_next(struct load *l, struct load_conn *c, struct load_req *r)
{
    char key[LOAD_KEY_MAX_BYTES + 32];
    char val[48];
    const uint8_t *argv[3];
    size_t lens[3];
    if (l->o.cmd == CMD_WRITE || l->o.cmd == CMD_FAILOVER) {
        if (l->o.requests > 0 && l->sent >= l->o.requests)
            return false;
        r->tag = c->next_key;
        c->next_key = (c->next_key + 1) % l->o.keys;
        r->val = l->value_base + c->seq++;
        lens[1] = load_write_key(l, c, r->tag, key, sizeof(key));
        r->tag += (uint64_t)c->id * l->o.keys;
        int n = snprintf(val, sizeof(val), "%0*" PRIu64, (int)l->o.value_size, r->val);
        RK_ASSERT(n > 0 && (size_t)n < sizeof(val));
        lens[2] = (size_t)n;
        argv[0] = (const uint8_t *)"SET";
        argv[2] = (const uint8_t *)val;
    } else if (l->o.cmd == CMD_FILL) {
        if (!load_take_item(l, &r->tag))
            return false;
        lens[1] = load_fill_key(l, r->tag, key, sizeof(key));
        argv[0] = (const uint8_t *)"SET";
        argv[2] = (const uint8_t *)l->fill_value;
        lens[2] = l->o.value_size;
    } else {
        if (!load_take_item(l, &r->tag))
            return false;
        argv[0] = (const uint8_t *)"GET";
        argv[1] = (const uint8_t *)l->vkeys[r->tag];
        lens[1] = strlen(l->vkeys[r->tag]);
    }
    if (l->o.cmd != CMD_VERIFY)
        argv[1] = (const uint8_t *)key;
    lens[0] = 3;
    if (!load_put_command(c, l->o.cmd == CMD_VERIFY ? 2 : 3, argv, lens)) {
        fprintf(stderr, "raftkv-load: out of memory\n");
        exit(LOAD_EXIT_USAGE);
    }
    l->sent++;
    return true;
}

static void load_unknown_add(struct load *l, uint64_t key, uint64_t val)
{
    if (l->n_unknown == l->cap_unknown) {
        size_t cap = l->cap_unknown ? l->cap_unknown * 2 : 1024;
        struct load_unknown *u = cap <= LOAD_UNKNOWN_MAX
                                     ? realloc(l->unknown, cap * sizeof(*u))
                                     : NULL;
        if (u == NULL) {
            l->unknown_overflow = true;
            return;
        }
        l->unknown = u;
        l->cap_unknown = cap;
    }
    l->unknown[l->n_unknown++] = (struct load_unknown){.key = key, .val = val};
}

/* A request whose fate is unknown: recorded (write), or handed out again (fill, verify). */
static void load_on_lost(struct load *l, struct load_conn *c, const struct load_req *r)
{
    (void)c;
    if (l->o.cmd == CMD_WRITE || l->o.cmd == CMD_FAILOVER)
        load_unknown_add(l, r->tag, r->val);
    else
        load_give_back(l, r->tag);
}

static void load_on_ack(struct load *l, const struct load_req *r, int64_t now)
{
    l->acks++;
    load_hist_add(&l->hist, now - r->sent_us);
    if (l->o.cmd == CMD_WRITE || l->o.cmd == CMD_FAILOVER) {
        struct load_key *k = &l->keys[r->tag];
        RK_ASSERT(r->val > k->acked); /* one key never in flight twice on its connection */
        k->acked = r->val;
        if (l->kill_us > 0 && r->sent_us > l->kill_us) {
            l->acks_after_kill++;
            if (l->first_after_us == 0) {
                l->first_after_us = r->sent_us;
                l->first_ack_us = now;
            }
            if (r->tag / l->o.keys >= l->o.conns)
                l->probes_acked++;
            else if (l->first_load_ack_us == 0)
                l->first_load_ack_us = now;
        }
    } else {
        l->items_done++;
    }
}

/* Verify: compares one value read with the log. */
static void load_verify_check(struct load *l, uint64_t i, const struct load_reply *rep)
{
    uint64_t v = 0;
    const char *key = l->vkeys[i];
    if (rep->type == REP_NIL) {
        l->v_missing++;
        printf("MISSING %s acked=%" PRIu64 "\n", key, l->vacked[i]);
        return;
    }
    if (!load_parse_value(rep->ptr, rep->len, &v)) {
        l->v_lower++;
        printf("LOWER %s got='%.*s' acked=%" PRIu64 " (not a number)\n", key,
               (int)(rep->len > 40 ? 40 : rep->len), (const char *)rep->ptr, l->vacked[i]);
        return;
    }
    if (v >= l->vacked[i]) {
        l->v_ok++;
        return;
    }
    for (uint64_t j = l->vunk_off[i]; j < l->vunk_off[i + 1]; j++) {
        if (l->vunk[j] == v) {
            l->v_late++; /* an unacknowledged write that landed late: allowed */
            return;
        }
    }
    l->v_lower++;
    printf("LOWER %s got=%" PRIu64 " acked=%" PRIu64 "\n", key, v, l->vacked[i]);
}

/* One reply to r: classify it (L2). Returns false when it is an error (the connection then
 * drains and moves to another node, L5). */
static bool load_on_reply(struct load *l, struct load_conn *c, const struct load_req *r,
                          const struct load_reply *rep, int64_t now)
{
    enum load_kind kind = KIND_COUNT;
    if (rep->type == REP_ERROR) {
        kind = load_reply_is(rep, REP_ERROR, "TRYAGAIN") ? KIND_TRYAGAIN
               : load_reply_is(rep, REP_ERROR, "TIMEOUT") ? KIND_TIMEOUT
                                                          : KIND_ERR;
        if (kind != KIND_TRYAGAIN)
            load_err_show(l, "%s: -%.*s", l->nodes[c->node].text,
                          (int)(rep->len > 200 ? 200 : rep->len), (const char *)rep->ptr);
    } else if (l->o.cmd == CMD_VERIFY) {
        if (rep->type != REP_BULK && rep->type != REP_NIL)
            kind = KIND_UNEXPECTED;
    } else if (!load_reply_is(rep, REP_STATUS, "OK") || rep->len != 2) {
        kind = KIND_UNEXPECTED;
    }
    if (kind == KIND_COUNT) {
        if (l->o.cmd == CMD_VERIFY)
            load_verify_check(l, r->tag, rep);
        load_on_ack(l, r, now);
        c->fails = 0;
        return true;
    }
    l->kinds[kind]++;
    if (kind == KIND_UNEXPECTED)
        load_err_show(l, "%s: unexpected reply type %d", l->nodes[c->node].text, rep->type);
    if (l->o.cmd == CMD_WRITE || l->o.cmd == CMD_FAILOVER) {
        if (kind != KIND_TRYAGAIN)
            load_unknown_add(l, r->tag, r->val);
    } else {
        load_give_back(l, r->tag);
    }
    return false;
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Sends what c has buffered; registers for EPOLLOUT when the socket is full. */
static void load_conn_flush(struct load *l, struct load_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (k > 0) {
            c->out_off += (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out)
                load_conn_events(l, c, true);
            return;
        } else if (k < 0 && errno == EINTR) {
            continue;
        } else {
            char what[160];
            snprintf(what, sizeof(what), "send: %s", strerror(errno));
            load_conn_drop(l, c, DROP_CLOSED, what);
            return;
        }
    }
    c->out_off = c->out_len = 0;
    if (c->want_out)
        load_conn_events(l, c, false);
}

/* Tops c's pipeline up to depth and sends. */
static void load_conn_fill(struct load *l, struct load_conn *c, int64_t now)
{
    if (c->state != CONN_UP)
        return;
    while (!l->stopping && c->count < l->o.depth && !c->probe_sent) {
        struct load_req *r = &c->fifo[(c->head + c->count) % l->o.depth];
        if (!load_next(l, c, r))
            break;
        r->sent_us = now;
        c->count++;
        c->probe_sent = c->probe;
        l->probes += c->probe;
    }
    if (c->out_len > c->out_off)
        load_conn_flush(l, c);
}

/* Reads and handles every whole reply c has received. */
static void load_conn_read(struct load *l, struct load_conn *c, int64_t now)
{
    for (;;) {
        if (!load_buf_reserve(&c->in, &c->in_cap, c->in_len + LOAD_READ_CHUNK_BYTES)) {
            load_conn_drop(l, c, DROP_CLOSED, "out of memory for replies");
            return;
        }
        ssize_t k = recv(c->fd, c->in + c->in_len, LOAD_READ_CHUNK_BYTES, 0);
        if (k > 0) {
            c->in_len += (size_t)k;
            if ((size_t)k < LOAD_READ_CHUNK_BYTES)
                break;
        } else if (k == 0) {
            load_conn_drop(l, c, DROP_CLOSED, "connection closed by the node");
            return;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else if (errno != EINTR) {
            char what[160];
            snprintf(what, sizeof(what), "recv: %s", strerror(errno));
            load_conn_drop(l, c, DROP_CLOSED, what);
            return;
        }
    }
    size_t off = 0;
    bool failed = false;
    while (off < c->in_len) {
        struct load_reply rep;
        size_t used = 0;
        struct rk_errmsg err;
        int rc = load_reply_parse(c->in + off, c->in_len - off, &rep, &used, &err);
        if (rc == RK_EAGAIN && c->in_len - off < LOAD_IN_MAX_BYTES)
            break;
        if (rc != RK_OK || c->count == 0) {
            char what[RK_ERRMSG_SIZE + 64];
            snprintf(what, sizeof(what), "bad reply: %s",
                     rc == RK_EAGAIN ? "a reply over 4 MiB"
                     : rc != RK_OK   ? err.text
                                     : "a reply with no request in flight");
            load_conn_drop(l, c, DROP_MALFORMED, what);
            return;
        }
        struct load_req r = c->fifo[c->head];
        c->head = (c->head + 1) % l->o.depth;
        c->count--;
        if (!load_on_reply(l, c, &r, &rep, now))
            failed = true;
        off += used;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->probe && c->probe_sent && c->count == 0) {
        load_conn_drop(l, c, DROP_COUNT, NULL); /* answered: the next probe at its slot */
        return;
    }
    if (failed && c->state == CONN_UP)
        c->state = CONN_DRAINING;
    if (c->state == CONN_DRAINING && c->count == 0)
        load_conn_drop(l, c, DROP_COUNT, NULL); /* the error was counted: move on (L5) */
}

static void load_conn_event(struct load *l, struct load_conn *c, uint32_t events, int64_t now)
{
    if (c->state == CONN_CONNECTING) {
        int e = 0;
        socklen_t el = sizeof(e);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (e != 0) {
            char what[160];
            snprintf(what, sizeof(what), "connect: %s", strerror(e));
            load_conn_drop(l, c, DROP_CONNECT, what);
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN)))
            return;
        c->state = CONN_UP;
        load_conn_events(l, c, false);
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        load_conn_read(l, c, now);
        if (c->state == CONN_DOWN)
            return;
    }
    if ((events & EPOLLOUT) && c->out_len > c->out_off)
        load_conn_flush(l, c);
    load_conn_fill(l, c, now);
}

/* Failover probes (one per node every --probe-ms after the kill): a probe that has not been
 * answered by its next slot, LOAD_PROBES_PER_NODE slots later, is abandoned (its request's fate
 * unknown) so that a request held by a follower never keeps a new one from being sent. */
static void load_probe_abandon(struct load *l, struct load_conn *c)
{
    int64_t slot = c->retry_at_us;
    l->probes_abandoned += c->count;
    load_conn_drop(l, c, DROP_COUNT, NULL);
    c->retry_at_us = slot;
}

static void load_probes_start(struct load *l)
{
    for (uint32_t i = l->o.conns; i < l->n_conns; i++) {
        uint32_t k = (i - l->o.conns) / l->n_nodes;
        l->conns[i].retry_at_us = l->kill_us + (int64_t)k * l->o.probe_ms * 1000;
    }
}

/* A probe opening now takes its slot; the next one comes LOAD_PROBES_PER_NODE slots later. */
static void load_probe_opened(struct load *l, struct load_conn *c)
{
    c->retry_at_us += (int64_t)LOAD_PROBES_PER_NODE * l->o.probe_ms * 1000;
}

/* Timers: reconnects, stalled connects and requests (L4), idle pipelines to top up. */
static void load_sweep(struct load *l, int64_t now)
{
    for (uint32_t i = 0; i < l->n_conns; i++) {
        struct load_conn *c = &l->conns[i];
        if (c->probe && c->state != CONN_DOWN && now >= c->retry_at_us && !l->stopping)
            load_probe_abandon(l, c);
        if (c->state == CONN_DOWN) {
            if (!l->stopping && now >= c->retry_at_us) {
                if (c->probe)
                    load_probe_opened(l, c);
                load_conn_open(l, c, now);
            }
        } else if (c->state == CONN_CONNECTING) {
            if (now - c->connect_us > l->o.timeout_ms * 1000)
                load_conn_drop(l, c, DROP_CONNECT, "connect timed out");
        } else if (c->count > 0 && now - c->fifo[c->head].sent_us > l->o.timeout_ms * 1000) {
            load_conn_drop(l, c, DROP_STALL, "no reply in time");
        }
        if (c->state == CONN_UP && c->count < l->o.depth)
            load_conn_fill(l, c, now);
    }
}

static uint64_t load_in_flight(const struct load *l)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < l->n_conns; i++)
        n += l->conns[i].count;
    return n;
}

/* Whether the run is over (it then drains). */
static bool load_finished(struct load *l, int64_t now)
{
    if (load_stop_signal)
        return true;
    switch (l->o.cmd) {
    case CMD_WRITE:
        return (l->end_us > 0 && now >= l->end_us) ||
               (l->o.requests > 0 && l->sent >= l->o.requests && load_in_flight(l) == 0);
    case CMD_FAILOVER:
        return l->first_ack_us > 0 && now >= l->first_ack_us + l->o.linger_ms * 1000;
    case CMD_FILL:
    case CMD_VERIFY:
        return l->items_done == l->n_items || (l->end_us > 0 && now >= l->end_us);
    }
    return true;
}

/* Failover: the kill, once the load is steady (at least one ack) and --after has passed. */
static int load_failover_tick(struct load *l, int64_t now)
{
    if (l->kill_us == 0 && l->acks > 0 && now - l->start_us >= l->o.after_ms * 1000) {
        l->kill_us = load_now_us();
        if (kill(l->o.pid, SIGKILL) != 0) {
            fprintf(stderr, "raftkv-load: failover: kill -9 %d: %s\n", l->o.pid, strerror(errno));
            return LOAD_EXIT_USAGE;
        }
        load_probes_start(l);
        if (!l->o.quiet)
            fprintf(stderr, "raftkv-load: failover: sent SIGKILL to %d after %" PRIu64
                            " acks\n", l->o.pid, l->acks);
    }
    int64_t deadline_us = (int64_t)(l->o.deadline_s * 1e6);
    if (l->kill_us == 0 && now - l->start_us > l->o.after_ms * 1000 + deadline_us) {
        fprintf(stderr, "raftkv-load: failover: no write acknowledged in %.1f s: no kill\n",
                (double)(now - l->start_us) / 1e6);
        return LOAD_EXIT_FAIL;
    }
    if (l->kill_us > 0 && l->first_ack_us == 0 && now - l->kill_us > deadline_us) {
        fprintf(stderr, "raftkv-load: failover: no write acknowledged within %.1f s of the kill\n",
                l->o.deadline_s);
        return LOAD_EXIT_FAIL;
    }
    return -1;
}

/* Runs the loop until the command is finished and in-flight requests are drained. Returns -1,
 * or an exit status to stop at once (failover). */
static int load_run(struct load *l)
{
    l->start_us = load_now_us();
    if (l->o.duration_s > 0)
        l->end_us = l->start_us + (int64_t)(l->o.duration_s * 1e6);
    struct epoll_event evs[256];
    int64_t last_sweep = 0;
    for (;;) {
        int64_t now = load_now_us();
        if (!l->stopping && load_finished(l, now)) {
            l->stopping = true;
            l->drain_deadline_us = now + (l->o.timeout_ms < 2000 ? l->o.timeout_ms : 2000) * 1000;
        }
        if (l->stopping && (load_in_flight(l) == 0 || now >= l->drain_deadline_us))
            break;
        if (l->o.cmd == CMD_FAILOVER && !l->stopping) {
            int rc = load_failover_tick(l, now);
            if (rc >= 0)
                return rc;
            now = load_now_us(); /* requests sent from here on are stamped after a kill */
        }
        if (now - last_sweep >= LOAD_TICK_MS * 1000) {
            load_sweep(l, now);
            last_sweep = now;
        }
        int n = epoll_wait(l->ep, evs, 256, LOAD_TICK_MS);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "raftkv-load: epoll_wait: %s\n", strerror(errno));
            return LOAD_EXIT_USAGE;
        }
        now = load_now_us();
        for (int i = 0; i < n; i++) {
            struct load_conn *c = &l->conns[evs[i].data.u32];
            if (c->fd >= 0)
                load_conn_event(l, c, evs[i].events, now);
        }
    }
    /* what is still in flight is lost (write: fate unknown; fill, verify: not done) */
    for (uint32_t i = 0; i < l->n_conns; i++)
        if (l->conns[i].fd >= 0)
            load_conn_drop(l, &l->conns[i], DROP_COUNT, NULL);
    l->end_us = load_now_us();
    return -1;
}

static bool load_setup(struct load *l)
{
    if (!load_nodes_parse(l->o.nodes, l->nodes, &l->n_nodes))
        return false;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->n_conns = l->o.conns + (l->o.cmd == CMD_FAILOVER ? l->n_nodes * LOAD_PROBES_PER_NODE : 0);
    l->conns = calloc(l->n_conns, sizeof(*l->conns));
    l->cap_retry = (size_t)l->o.conns * l->o.depth;
    l->retry = calloc(l->cap_retry, sizeof(*l->retry));
    if (l->ep < 0 || l->conns == NULL || l->retry == NULL) {
        fprintf(stderr, "raftkv-load: setup: %s\n", strerror(errno));
        return false;
    }
    for (uint32_t i = 0; i < l->n_conns; i++) {
        struct load_conn *c = &l->conns[i];
        c->id = i;
        c->fd = -1;
        c->node = i % l->n_nodes;
        c->probe = i >= l->o.conns;
        if (c->probe)
            c->retry_at_us = INT64_MAX; /* started by the kill */
        c->fifo = calloc(l->o.depth, sizeof(*c->fifo));
        if (c->fifo == NULL) {
            fprintf(stderr, "raftkv-load: setup: out of memory\n");
            return false;
        }
    }
    return true;
}

static void load_print_summary(const struct load *l, const char *what)
{
    double secs = (double)(l->end_us - l->start_us) / 1e6;
    double rate = secs > 0 ? (double)l->acks / secs : 0;
    uint64_t errors = 0;
    for (int k = 0; k < KIND_COUNT; k++)
        errors += l->kinds[k];
    fprintf(stderr,
            "raftkv-load: %s: %.2f s, %u conns x depth %u over %u nodes: %" PRIu64
            " sent, %" PRIu64 " acked (%.0f/s), p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
            what, secs, l->o.conns, l->o.depth, l->n_nodes, l->sent, l->acks, rate,
            load_hist_ms(&l->hist, 0.50), load_hist_ms(&l->hist, 0.99),
            load_hist_ms(&l->hist, 1.0));
    fprintf(stderr, "raftkv-load: %s: errors %" PRIu64, what, errors);
    for (int k = 0; k < KIND_COUNT; k++)
        fprintf(stderr, ", %s %" PRIu64, load_kind_name[k], l->kinds[k]);
    for (int d = 0; d < DROP_COUNT; d++)
        fprintf(stderr, ", %s %" PRIu64, load_drop_name[d], l->drops[d]);
    fputc('\n', stderr);
    printf("duration_s=%.3f sent=%" PRIu64 " acks=%" PRIu64 " ops_per_s=%.1f p50_ms=%.3f"
           " p99_ms=%.3f max_ms=%.3f errors=%" PRIu64,
           secs, l->sent, l->acks, rate, load_hist_ms(&l->hist, 0.50),
           load_hist_ms(&l->hist, 0.99), load_hist_ms(&l->hist, 1.0), errors);
    for (int k = 0; k < KIND_COUNT; k++)
        printf(" %s=%" PRIu64, load_kind_name[k], l->kinds[k]);
    for (int d = 0; d < DROP_COUNT; d++)
        printf(" %s=%" PRIu64, load_drop_name[d], l->drops[d]);
    putchar('\n');
}

/* ------------------------------------------------------------------------------------------ */
/* The write log                                                                              */

static int load_unknown_cmp(const void *a, const void *b)
{
    const struct load_unknown *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->val < y->val ? -1 : x->val > y->val;
}

/* Writes FILE.tmp and renames it over FILE, so a log is whole or absent.
 * Line format: "KEY ACKED[ U1,U2,...]", the U being unknown-fate values below ACKED. */
static bool load_log_write(struct load *l)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", l->o.log) >= (int)sizeof(tmp)) {
        fprintf(stderr, "raftkv-load: --log: path too long\n");
        return false;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "raftkv-load: --log: cannot write %s: %s\n", tmp, strerror(errno));
        return false;
    }
    qsort(l->unknown, l->n_unknown, sizeof(*l->unknown), load_unknown_cmp);
    fprintf(f, "# raftkv-load write log: KEY LAST_ACKED [UNKNOWN_FATE_VALUES_BELOW_IT]\n");
    if (l->unknown_overflow)
        fprintf(f, "# note: unknown-fate values over %zu were not all recorded\n",
                LOAD_UNKNOWN_MAX);
    size_t u = 0;
    uint64_t total = (uint64_t)l->n_conns * l->o.keys;
    for (uint64_t i = 0; i < total; i++) {
        while (u < l->n_unknown && l->unknown[u].key < i)
            u++;
        if (l->keys[i].acked == 0)
            continue;
        char key[LOAD_KEY_MAX_BYTES + 32];
        struct load_conn fake = {.id = (uint32_t)(i / l->o.keys)};
        load_write_key(l, &fake, i % l->o.keys, key, sizeof(key));
        fprintf(f, "%s %" PRIu64, key, l->keys[i].acked);
        char sep = ' ';
        for (; u < l->n_unknown && l->unknown[u].key == i; u++) {
            if (l->unknown[u].val < l->keys[i].acked) {
                fprintf(f, "%c%" PRIu64, sep, l->unknown[u].val);
                sep = ',';
            }
        }
        fputc('\n', f);
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, l->o.log) != 0) {
        fprintf(stderr, "raftkv-load: --log: cannot write %s: %s\n", l->o.log, strerror(errno));
        return false;
    }
    return true;
}

/* Reads a write log into vkeys/vacked/vunk. */
static bool load_log_read(struct load *l)
{
    FILE *f = fopen(l->o.log, "r");
    if (f == NULL) {
        fprintf(stderr, "raftkv-load: --log: cannot read %s: %s\n", l->o.log, strerror(errno));
        return false;
    }
    size_t cap = 0, ucap = 0, nu = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    uint64_t lineno = 0;
    bool ok = true;
    l->n_items = 0;
    while (ok && (len = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = 0;
        if (len == 0 || line[0] == '#')
            continue;
        if (l->n_items + 2 > cap) {
            cap = cap ? cap * 2 : 1024;
            char **k = realloc(l->vkeys, cap * sizeof(*k));
            uint64_t *a = k ? realloc(l->vacked, cap * sizeof(*a)) : NULL;
            if (k) l->vkeys = k;
            if (a) l->vacked = a;
            uint64_t *o = a ? realloc(l->vunk_off, (cap + 1) * sizeof(*o)) : NULL;
            if (o == NULL) {
                ok = false;
                break;
            }
            l->vunk_off = o;
        }
        char *sp = strchr(line, ' ');
        char *end = NULL;
        if (sp == NULL || sp == line || sp - line > LOAD_KEY_MAX_BYTES) {
            ok = false;
            break;
        }
        *sp = 0;
        errno = 0;
        uint64_t acked = strtoull(sp + 1, &end, 10);
        if (errno != 0 || end == sp + 1 || acked == 0 || (*end != 0 && *end != ' ')) {
            ok = false;
            break;
        }
        l->vunk_off[l->n_items] = nu;
        while (*end == ' ' || *end == ',') {
            char *p = end + 1;
            uint64_t v = strtoull(p, &end, 10);
            if (end == p) {
                ok = false;
                break;
            }
            if (nu == ucap) {
                ucap = ucap ? ucap * 2 : 256;
                uint64_t *q = realloc(l->vunk, ucap * sizeof(*q));
                if (q == NULL) {
                    ok = false;
                    break;
                }
                l->vunk = q;
            }
            l->vunk[nu++] = v;
        }
        if (!ok || *end != 0) {
            ok = false;
            break;
        }
        l->vkeys[l->n_items] = strdup(line);
        l->vacked[l->n_items] = acked;
        if (l->vkeys[l->n_items] == NULL) {
            ok = false;
            break;
        }
        l->n_items++;
    }
    if (ok && l->vunk_off != NULL)
        l->vunk_off[l->n_items] = nu;
    free(line);
    fclose(f);
    if (!ok)
        fprintf(stderr, "raftkv-load: --log %s: line %" PRIu64 ": malformed (or out of memory)\n",
                l->o.log, lineno);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Commands                                                                                   */

static int load_cmd_write(struct load *l)
{
    uint64_t total = (uint64_t)l->n_conns * l->o.keys;
    l->keys = calloc(total, sizeof(*l->keys));
    if (l->keys == NULL) {
        fprintf(stderr, "raftkv-load: %" PRIu64 " keys: out of memory\n", total);
        return LOAD_EXIT_USAGE;
    }
    l->value_base = load_wall_us();
    if (l->o.log != NULL) { /* fail now rather than after the run */
        FILE *f = fopen(l->o.log, "a");
        if (f == NULL) {
            fprintf(stderr, "raftkv-load: --log: cannot write %s: %s\n", l->o.log,
                    strerror(errno));
            return LOAD_EXIT_USAGE;
        }
        fclose(f);
    }
    int rc = load_run(l);
    if (l->end_us == 0)
        l->end_us = load_now_us();
    bool fo = l->o.cmd == CMD_FAILOVER;
    load_print_summary(l, fo ? "failover" : "write");
    if (l->o.log != NULL && !load_log_write(l))
        return LOAD_EXIT_USAGE;
    if (fo && rc < 0) {
        double ms = (double)(l->first_ack_us - l->kill_us) / 1000.0;
        double sent_ms = (double)(l->first_after_us - l->kill_us) / 1000.0;
        double load_ms = l->first_load_ack_us == 0
                             ? -1
                             : (double)(l->first_load_ack_us - l->kill_us) / 1000.0;
        printf("failover_ms=%.1f first_sent_after_kill_ms=%.1f load_first_ack_ms=%.1f"
               " acks_after_kill=%" PRIu64 " probes=%" PRIu64 " probes_acked=%" PRIu64
               " probes_abandoned=%" PRIu64 "\n",
               ms, sent_ms, load_ms, l->acks_after_kill, l->probes, l->probes_acked,
               l->probes_abandoned);
        fprintf(stderr, "raftkv-load: failover: first write acknowledged %.1f ms after the kill"
                        " (sent %.1f ms after it); the steady load's first: %.1f ms\n",
                ms, sent_ms, load_ms);
    }
    if (rc >= 0)
        return rc;
    if (l->acks == 0) {
        fprintf(stderr, "raftkv-load: %s: no write was acknowledged\n", fo ? "failover" : "write");
        return LOAD_EXIT_FAIL;
    }
    return LOAD_EXIT_OK;
}

static int load_cmd_fill(struct load *l)
{
    l->n_items = l->o.keys;
    l->fill_value = malloc(l->o.value_size + 1);
    if (l->fill_value == NULL)
        return LOAD_EXIT_USAGE;
    for (uint32_t i = 0; i < l->o.value_size; i++)
        l->fill_value[i] = (char)('a' + i % 26);
    l->fill_value[l->o.value_size] = 0;
    l->o.duration_s = l->o.deadline_s;
    load_run(l);
    load_print_summary(l, "fill");
    printf("keys=%" PRIu64 " written=%" PRIu64 "\n", l->n_items, l->items_done);
    if (l->items_done != l->n_items) {
        fprintf(stderr, "raftkv-load: fill: only %" PRIu64 " of %" PRIu64 " keys written\n",
                l->items_done, l->n_items);
        return LOAD_EXIT_FAIL;
    }
    return LOAD_EXIT_OK;
}

static int load_cmd_verify(struct load *l)
{
    if (!load_log_read(l))
        return LOAD_EXIT_USAGE;
    if (l->o.deadline_s > 0)
        l->o.duration_s = l->o.deadline_s;
    load_run(l);
    uint64_t unread = l->n_items - l->items_done;
    fprintf(stderr, "raftkv-load: verify: %" PRIu64 " keys: %" PRIu64 " ok, %" PRIu64
                    " ok with a late unacknowledged write, %" PRIu64 " missing, %" PRIu64
                    " lower than acknowledged, %" PRIu64 " unread\n",
            l->n_items, l->v_ok, l->v_late, l->v_missing, l->v_lower, unread);
    printf("keys=%" PRIu64 " ok=%" PRIu64 " late=%" PRIu64 " missing=%" PRIu64 " lower=%" PRIu64
           " unread=%" PRIu64 "\n",
           l->n_items, l->v_ok, l->v_late, l->v_missing, l->v_lower, unread);
    if (unread > 0)
        fprintf(stderr, "raftkv-load: verify: %" PRIu64 " keys could not be read within %.0f s\n",
                unread, l->o.duration_s);
    return l->v_missing + l->v_lower + unread > 0 ? LOAD_EXIT_FAIL : LOAD_EXIT_OK;
}

/* wait-serving: GET key on one node until it answers with a value. Blocking, with poll. */
static int load_get_once(const struct load_addr *a, const char *key, int64_t deadline_us,
                         char *why, size_t why_cap)
{
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_cap, "socket: %s", strerror(errno));
        return -1;
    }
    uint8_t buf[8192];
    size_t len = 0, pos = 0;
    int rc = -1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) != 0 && errno != EINPROGRESS) {
        snprintf(why, why_cap, "connect: %s", strerror(errno));
        goto out_close;
    }
    int timeout_ms = (int)((deadline_us - load_now_us()) / 1000);
    if (timeout_ms <= 0 || poll(&p, 1, timeout_ms) != 1) {
        snprintf(why, why_cap, "connect timed out");
        goto out_close;
    }
    int e = 0;
    socklen_t el = sizeof(e);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e != 0) {
        snprintf(why, why_cap, "connect: %s", strerror(e));
        goto out_close;
    }
    size_t klen = strlen(key);
    if (!resp_array(buf, sizeof(buf), &pos, 2) ||
        !resp_bulk(buf, sizeof(buf), &pos, (const uint8_t *)"GET", 3) ||
        !resp_bulk(buf, sizeof(buf), &pos, (const uint8_t *)key, klen)) {
        snprintf(why, why_cap, "key too long");
        goto out_close;
    }
    if (send(fd, buf, pos, MSG_NOSIGNAL) != (ssize_t)pos) {
        snprintf(why, why_cap, "send: %s", strerror(errno));
        goto out_close;
    }
    for (;;) {
        struct load_reply rep;
        size_t used;
        struct rk_errmsg err;
        int prc = load_reply_parse(buf, len, &rep, &used, &err);
        if (prc == RK_OK) {
            if (rep.type == REP_BULK) {
                rc = 0;
            } else {
                snprintf(why, why_cap, "reply %s%.*s", rep.type == REP_NIL ? "nil" : "",
                         rep.type == REP_ERROR || rep.type == REP_STATUS ? (int)(rep.len > 100 ? 100 : rep.len) : 0,
                         (const char *)rep.ptr);
            }
            break;
        }
        if (prc != RK_EAGAIN || len == sizeof(buf)) {
            snprintf(why, why_cap, "bad reply: %s", prc == RK_EAGAIN ? "too long" : err.text);
            break;
        }
        p = (struct pollfd){.fd = fd, .events = POLLIN};
        timeout_ms = (int)((deadline_us - load_now_us()) / 1000);
        if (timeout_ms <= 0 || poll(&p, 1, timeout_ms) != 1) {
            snprintf(why, why_cap, "no reply in time");
            break;
        }
        ssize_t k = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (k <= 0) {
            snprintf(why, why_cap, "%s", k == 0 ? "connection closed" : strerror(errno));
            break;
        }
        len += (size_t)k;
    }
out_close:
    close(fd);
    return rc;
}

static int load_cmd_wait_serving(struct load *l)
{
    struct load_addr a;
    if (!load_addr_resolve(l->o.nodes, strlen(l->o.nodes), &a))
        return LOAD_EXIT_USAGE;
    int64_t start = load_now_us();
    int64_t deadline = start + (int64_t)(l->o.deadline_s * 1e6);
    char why[RK_ERRMSG_SIZE + 64] = "not tried";
    uint64_t tries = 0;
    /* a try that cannot get 10 ms is not started: its "timed out" would hide the last answer */
    while (!load_stop_signal && load_now_us() + 10000 < deadline) {
        tries++;
        int64_t try_deadline = load_now_us() + 1000000;
        if (try_deadline > deadline)
            try_deadline = deadline;
        if (load_get_once(&a, l->o.prefix, try_deadline, why, sizeof(why)) == 0) {
            double ms = (double)(load_now_us() - start) / 1000.0;
            printf("serving_ms=%.1f tries=%" PRIu64 "\n", ms, tries);
            return LOAD_EXIT_OK;
        }
        struct timespec ts = {.tv_nsec = 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "raftkv-load: wait-serving: %s did not serve GET %s within %.1f s (last: %s)\n",
            a.text, l->o.prefix, l->o.deadline_s, why);
    return LOAD_EXIT_FAIL;
}

/* ------------------------------------------------------------------------------------------ */
/* Command line                                                                               */

static void load_usage(FILE *f, const char *cmd)
{
    if (cmd == NULL) {
        fprintf(f,
                "usage: raftkv-load COMMAND [FLAGS]   (raftkv-load COMMAND --help for its flags)\n"
                "\n"
                "  write         write increasing values to keys of its own; --log records the\n"
                "                last acknowledged value of every key\n"
                "  verify        read every key of a --log and check nothing acknowledged was lost\n"
                "  failover      steady writes, kill -9 a process, time to the first ack after it\n"
                "  fill          write N keys of fixed sizes, fast (memory and restart figures)\n"
                "  wait-serving  poll one node until a GET of a key answers with a value\n"
                "\n"
                "Exit status: 0 ok; 1 the check failed (lost writes, no ack, timeout); 2 usage\n"
                "or setup error. Machine-readable results go to stdout as key=value lines;\n"
                "progress and errors (with the node they came from) to stderr.\n");
        return;
    }
    if (strcmp(cmd, "wait-serving") == 0) {
        fprintf(f, "usage: raftkv-load wait-serving --node HOST:PORT --key KEY [--timeout S]\n"
                   "\n"
                   "GET KEY on that node every 5 ms (each try bounded by 1 s) until it answers\n"
                   "with a value; prints serving_ms=... (from the start of this command).\n"
                   "  --timeout S   give up (exit 1) after S seconds (default 30)\n");
        return;
    }
    fprintf(f, "usage: raftkv-load %s --nodes HOST:PORT,HOST:PORT,... ", cmd);
    if (strcmp(cmd, "write") == 0)
        fprintf(f, "[-c CONNS] [-P DEPTH] [--duration S | -n N]\n"
                   "                         [--log FILE] [--prefix P] [--keys K] [-d BYTES]\n\n"
                   "Connection i writes keys P:i:0..K-1 round robin with values that only grow\n"
                   "(decimal, zero-padded to BYTES). On an error or a lost connection it moves to\n"
                   "the next node. At the end (duration, N requests, SIGINT or SIGTERM) it writes\n"
                   "the log and prints a summary.\n");
    else if (strcmp(cmd, "verify") == 0)
        fprintf(f, "--log FILE [-c CONNS] [-P DEPTH] [--timeout S]\n\n"
                   "Reads every key of a write log (GET is linearizable on any node). Exit 1,\n"
                   "with a MISSING or LOWER line per key, if a value is absent or below the last\n"
                   "acknowledged one (and not a recorded unknown-fate write).\n");
    else if (strcmp(cmd, "failover") == 0)
        fprintf(f, "--kill-pid PID [--after MS] [--linger MS]\n"
                   "                         [--probe-ms MS] [-c CONNS] [-P DEPTH] [--log FILE]\n"
                   "                         [--timeout S]\n\n"
                   "Writes on every node; after MS (default 1000, and at least one ack) sends\n"
                   "SIGKILL to PID (the caller finds the leader's), then prints failover_ms=...:\n"
                   "from the kill to the first ack of a request sent after it (necessarily\n"
                   "through a surviving node). A request in flight at the kill may be held by a\n"
                   "follower until its timeout, and a connection answers in order; so besides\n"
                   "the steady load, from the kill on a fresh connection to each node sends one\n"
                   "SET every --probe-ms (default 5; each abandoned after %d slots).\n"
                   "load_first_ack_ms is the steady load's own first ack after the kill. It stops\n"
                   "--linger MS (default 200) after that first ack; exit 1 if none came within\n"
                   "--timeout S (default 10) of the kill. Every write goes to --log as in write.\n",
                LOAD_PROBES_PER_NODE);
    else
        fprintf(f, "--keys N [--key-size B] [--value-size B]\n"
                   "                         [-c CONNS] [-P DEPTH] [--prefix P] [--timeout S]\n\n"
                   "SET N keys: P followed by the zero-padded index, B bytes in all; values of\n"
                   "the given size. A failed SET is retried on another node.\n");
    fprintf(f, "\n"
               "  -c CONNS         connections (default %s)\n"
               "  -P DEPTH         requests in flight per connection (default %s)\n"
               "  --timeout-ms MS  a request or connect with no answer for MS counts as a lost\n"
               "                   connection (default 3000)\n"
               "  -q, --quiet      no per-error lines on stderr\n",
            strcmp(cmd, "failover") == 0 ? "6" : strcmp(cmd, "write") == 0 ? "16" : "8",
            strcmp(cmd, "failover") == 0 ? "1" : strcmp(cmd, "write") == 0 ? "4" : "32");
    if (strcmp(cmd, "write") == 0 || strcmp(cmd, "failover") == 0)
        fprintf(f, "  --keys K         keys per connection, at least DEPTH (default 100)\n"
                   "  --prefix P       key prefix (default \"load\"; failover: \"failover\")\n");
}

static bool load_num(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = s && *s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (s == NULL || *s == 0 || *s == '-' || errno != 0 || *end != 0 || v < min || v > max) {
        fprintf(stderr, "raftkv-load: %s: want a whole number in [%" PRIu64 ", %" PRIu64
                        "], got '%s'\n", flag, min, max, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

static bool load_secs(const char *flag, const char *s, double *out)
{
    char *end = NULL;
    double v = s ? strtod(s, &end) : 0;
    if (s == NULL || end == s || *end != 0 || !(v > 0) || v > 1e6) {
        fprintf(stderr, "raftkv-load: %s: want seconds > 0, got '%s'\n", flag, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

/* Returns -1 to go on, or an exit status. */
static int load_parse(int argc, char **argv, struct load_opts *o)
{
    const char *cmd = argv[1];
    bool w = o->cmd == CMD_WRITE || o->cmd == CMD_FAILOVER;
    bool ws = strcmp(cmd, "wait-serving") == 0;
    uint64_t v = 0;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        const char *arg = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(f, "-h") == 0 || strcmp(f, "--help") == 0) {
            load_usage(stdout, cmd);
            return LOAD_EXIT_OK;
        } else if (strcmp(f, "-q") == 0 || strcmp(f, "--quiet") == 0) {
            o->quiet = true;
            continue;
        } else if (arg == NULL) {
            fprintf(stderr, "raftkv-load %s: %s needs a value (try --help)\n", cmd, f);
            return LOAD_EXIT_USAGE;
        }
        i++;
        if (!ws && strcmp(f, "--nodes") == 0) {
            o->nodes = arg;
        } else if (ws && strcmp(f, "--node") == 0) {
            o->nodes = arg;
        } else if (ws && strcmp(f, "--key") == 0) {
            o->prefix = arg;
        } else if (!ws && strcmp(f, "-c") == 0) {
            ok = load_num(f, arg, 1, LOAD_CONNS_MAX, &v);
            o->conns = (uint32_t)v;
        } else if (!ws && strcmp(f, "-P") == 0) {
            ok = load_num(f, arg, 1, LOAD_DEPTH_MAX, &v);
            o->depth = (uint32_t)v;
        } else if (o->cmd == CMD_WRITE && strcmp(f, "--duration") == 0) {
            ok = load_secs(f, arg, &o->duration_s);
        } else if (o->cmd == CMD_WRITE && strcmp(f, "-n") == 0) {
            ok = load_num(f, arg, 1, UINT64_MAX / 2, &o->requests);
        } else if ((w || o->cmd == CMD_VERIFY) && strcmp(f, "--log") == 0) {
            o->log = arg;
        } else if ((w || o->cmd == CMD_FILL) && strcmp(f, "--prefix") == 0) {
            o->prefix = arg;
        } else if ((w || o->cmd == CMD_FILL) && strcmp(f, "--keys") == 0) {
            ok = load_num(f, arg, 1, LOAD_KEYS_TOTAL_MAX, &o->keys);
        } else if (o->cmd == CMD_FILL && strcmp(f, "--key-size") == 0) {
            ok = load_num(f, arg, 1, LOAD_KEY_MAX_BYTES, &v);
            o->key_size = (uint32_t)v;
        } else if (o->cmd == CMD_FILL && strcmp(f, "--value-size") == 0) {
            ok = load_num(f, arg, 0, LOAD_VALUE_MAX_BYTES, &v);
            o->value_size = (uint32_t)v;
        } else if (w && strcmp(f, "-d") == 0) {
            ok = load_num(f, arg, 1, 40, &v);
            o->value_size = (uint32_t)v;
        } else if (o->cmd == CMD_FAILOVER && strcmp(f, "--kill-pid") == 0) {
            ok = load_num(f, arg, 2, INT32_MAX, &v);
            o->pid = (int)v;
        } else if (o->cmd == CMD_FAILOVER && strcmp(f, "--after") == 0) {
            ok = load_num(f, arg, 0, 3600000, &v);
            o->after_ms = (int64_t)v;
        } else if (o->cmd == CMD_FAILOVER && strcmp(f, "--probe-ms") == 0) {
            ok = load_num(f, arg, 1, 1000, &v);
            o->probe_ms = (int64_t)v;
        } else if (o->cmd == CMD_FAILOVER && strcmp(f, "--linger") == 0) {
            ok = load_num(f, arg, 0, 3600000, &v);
            o->linger_ms = (int64_t)v;
        } else if ((o->cmd != CMD_WRITE || ws) && strcmp(f, "--timeout") == 0) {
            ok = load_secs(f, arg, &o->deadline_s);
        } else if (!ws && strcmp(f, "--timeout-ms") == 0) {
            ok = load_num(f, arg, 1, 3600000, &v);
            o->timeout_ms = (int64_t)v;
        } else {
            fprintf(stderr, "raftkv-load %s: unknown flag %s (try --help)\n", cmd, f);
            return LOAD_EXIT_USAGE;
        }
        if (!ok)
            return LOAD_EXIT_USAGE;
    }
    const char *missing = o->nodes == NULL                               ? (ws ? "--node" : "--nodes")
                          : ws && o->prefix == NULL                      ? "--key"
                          : o->cmd == CMD_VERIFY && o->log == NULL       ? "--log"
                          : o->cmd == CMD_FAILOVER && o->pid == 0        ? "--kill-pid"
                          : o->cmd == CMD_FILL && !ws && o->keys == 0    ? "--keys"
                                                                         : NULL;
    if (missing != NULL) {
        fprintf(stderr, "raftkv-load %s: %s is required (try --help)\n", cmd, missing);
        return LOAD_EXIT_USAGE;
    }
    return -1;
}

static int load_check_opts(const char *cmd, struct load_opts *o)
{
    if (o->prefix == NULL)
        o->prefix = o->cmd == CMD_FAILOVER ? "failover" : o->cmd == CMD_FILL ? "k" : "load";
    size_t plen = strlen(o->prefix);
    if (strpbrk(o->prefix, " \t\r\n,") != NULL || plen > LOAD_PREFIX_MAX_BYTES) {
        fprintf(stderr, "raftkv-load %s: --prefix: no blanks or commas, at most %d bytes\n", cmd,
                LOAD_PREFIX_MAX_BYTES);
        return LOAD_EXIT_USAGE;
    }
    if (o->cmd == CMD_WRITE || o->cmd == CMD_FAILOVER) {
        if (o->keys == 0)
            o->keys = o->depth > 100 ? o->depth : 100;
        if (o->keys < o->depth) {
            fprintf(stderr, "raftkv-load %s: --keys (%" PRIu64 ") must be at least -P (%u): a key"
                            " is never in flight twice on one connection\n", cmd, o->keys,
                    o->depth);
            return LOAD_EXIT_USAGE;
        }
        if (o->keys * o->conns > LOAD_KEYS_TOTAL_MAX) {
            fprintf(stderr, "raftkv-load %s: -c x --keys over %" PRIu64 "\n", cmd,
                    LOAD_KEYS_TOTAL_MAX);
            return LOAD_EXIT_USAGE;
        }
    }
    if (o->cmd == CMD_FILL) {
        uint64_t digits = 1;
        for (uint64_t n = o->keys - 1; n >= 10; n /= 10)
            digits++;
        if (o->key_size < plen + digits) {
            fprintf(stderr, "raftkv-load fill: --key-size %u cannot hold the prefix '%s' and %"
                            PRIu64 " digits\n", o->key_size, o->prefix, digits);
            return LOAD_EXIT_USAGE;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    load_signals_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        load_usage(argc < 2 ? stderr : stdout, NULL);
        return argc < 2 ? LOAD_EXIT_USAGE : LOAD_EXIT_OK;
    }
    static struct load l; /* large (the histogram): not on the stack */
    const char *cmd = argv[1];
    struct load_opts *o = &l.o;
    *o = (struct load_opts){.conns = 8, .depth = 32, .timeout_ms = 3000, .key_size = 16,
                            .value_size = 100, .deadline_s = 30, .linger_ms = 200, .probe_ms = 5,
                            .after_ms = 1000};
    if (strcmp(cmd, "write") == 0) {
        o->cmd = CMD_WRITE;
        o->conns = 16;
        o->depth = 4;
        o->value_size = 1;
    } else if (strcmp(cmd, "failover") == 0) {
        o->cmd = CMD_FAILOVER;
        o->conns = 6;
        o->depth = 1;
        o->value_size = 1;
        o->deadline_s = 10;
    } else if (strcmp(cmd, "fill") == 0 || strcmp(cmd, "wait-serving") == 0) {
        o->cmd = CMD_FILL; /* wait-serving has a function of its own */
        o->deadline_s = strcmp(cmd, "fill") == 0 ? 600 : 30;
    } else if (strcmp(cmd, "verify") == 0) {
        o->cmd = CMD_VERIFY;
    } else {
        fprintf(stderr, "raftkv-load: unknown command '%s' (try --help)\n", cmd);
        return LOAD_EXIT_USAGE;
    }
    int rc = load_parse(argc, argv, o);
    if (rc >= 0)
        return rc;
    if (strcmp(cmd, "wait-serving") == 0)
        return load_cmd_wait_serving(&l);
    rc = load_check_opts(cmd, o);
    if (rc >= 0)
        return rc;
    if (!load_setup(&l))
        return LOAD_EXIT_USAGE;
    if (o->cmd == CMD_FILL)
        return load_cmd_fill(&l);
    if (o->cmd == CMD_VERIFY)
        return load_cmd_verify(&l);
    return load_cmd_write(&l);
}
