/*
 * metrics.h — what raftkv-node counts for Prometheus, and the text it is served in (issue #18):
 * latency histograms, the per-command and per-error-kind tables, the text exposition format
 * (version 0.0.4) and the tiny HTTP/1.1 request parser of the /metrics endpoint. Nothing here
 * touches a socket or the node: metrics_serve.c collects from the node and serves; this file is
 * unit-tested on its own (tests/test_metrics.c).
 *
 * Invariants:
 *   M1  a histogram's buckets are fixed and log-scale: bucket k (0 <= k < METRICS_BUCKETS - 1)
 *       holds the observations of at most 2^(k + METRICS_BUCKET_SHIFT) microseconds and more
 *       than the bucket before; the last one is +Inf. An observation is O(1) (a bit scan and
 *       two relaxed atomic adds), so any thread may observe (the storage thread's log syncs).
 *   M2  the exposition of a histogram is consistent even while another thread observes: its
 *       _count is the sum of the buckets as read, and the cumulative buckets end with +Inf
 *       equal to _count.
 *   M3  every table is bounded: METRICS_CMDS_MAX commands, METRICS_ERR_KINDS error kinds (the
 *       rest counts as kind "other"); a full command table drops the latency of a new name.
 */
#ifndef NODE_METRICS_H
#define NODE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2^4 us = 16 us .. 2^25 us = 33.6 s, then +Inf (M1). */
#define METRICS_BUCKET_SHIFT 4
#define METRICS_BUCKETS      23
#define METRICS_CMDS_MAX     512 /* a power of two; the command table has about 150 rows */
#define METRICS_ERR_KINDS    32
#define METRICS_ERR_KIND_MAX 24 /* bytes of a kind's name, "WRONGTYPE" */

struct metrics_hist {
    _Atomic uint64_t bucket[METRICS_BUCKETS];
    _Atomic uint64_t sum_us;
};

/* Records one observation of us microseconds (M1). h may be NULL: nothing. */
void metrics_hist_observe(struct metrics_hist *h, uint64_t us);
/* The bucket an observation of us microseconds falls in. */
unsigned metrics_bucket_of(uint64_t us);
/* The upper bound of bucket k in seconds (k < METRICS_BUCKETS - 1). */
double metrics_bucket_le_s(unsigned k);

/* Client commands by name, keyed by the command table row's name pointer (static strings). */
struct metrics_cmd {
    const char *name; /* NULL: a free slot */
    uint64_t calls;   /* executed (an error reply counts in failed too) */
    uint64_t failed;  /* executed, with an error reply */
    uint64_t rejected; /* refused before it ran (arity, NOAUTH): not in calls */
    struct metrics_hist latency;
};
struct metrics_cmds {
    struct metrics_cmd slot[METRICS_CMDS_MAX];
    size_t n;
    uint64_t untracked; /* calls of a name that found the table full (M3) */
};
enum metrics_outcome {
    METRICS_CMD_OK,       /* ran, no error */
    METRICS_CMD_FAILED,   /* ran, error reply (Redis's failed_calls) */
    METRICS_CMD_REJECTED, /* refused before running (Redis's rejected_calls) */
};
/* One call of the command `name` (a pointer that stays valid: a row of the table) that took
 * us microseconds from being read to its reply being complete (not counted when rejected). */
void metrics_cmd_observe(struct metrics_cmds *t, const char *name, uint64_t us,
                         enum metrics_outcome o);

/* Error replies by kind: the first word of the error ("ERR", "WRONGTYPE", "TIMEOUT"). */
struct metrics_errs {
    char kind[METRICS_ERR_KINDS][METRICS_ERR_KIND_MAX + 1];
    uint64_t count[METRICS_ERR_KINDS];
    size_t n;
    uint64_t other; /* a kind that is not a word of capitals, or found the table full */
};
/* Counts the error line text (without the leading '-'; len bytes, up to its first space). */
void metrics_err_observe(struct metrics_errs *e, const char *text, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* The text exposition format, version 0.0.4                                                 */

/* A growing text; `failed` once an append ran out of memory (the text is then unusable). */
struct metrics_text {
    char *p;
    size_t len, cap;
    bool failed;
};
void metrics_text_free(struct metrics_text *t);
void metrics_textf(struct metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "# HELP name help" and "# TYPE name type": once per family, before its samples. type is
 * "counter", "gauge" or "histogram". */
void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help);
/* One sample: name{labels} value. labels: already formatted (`peer="2"`), or NULL or "". */
void metrics_u64(struct metrics_text *t, const char *name, const char *labels, uint64_t v);
void metrics_f64(struct metrics_text *t, const char *name, const char *labels, double v);
/* A histogram's samples: name_bucket{labels,le="..."} cumulative, +Inf, name_sum (seconds),
 * name_count (M2). */
void metrics_hist_write(struct metrics_text *t, const char *name, const char *labels,
                        const struct metrics_hist *h);
/* `key="value"` with value escaped as the format wants (\\, \", \n), into dst (always
 * terminated; cut short when it does not fit). */
void metrics_label(char *dst, size_t cap, const char *key, const char *value);

/* ------------------------------------------------------------------------------------------ */
/* HTTP/1.1 requests of the endpoint                                                          */

enum metrics_http_req {
    METRICS_HTTP_MORE = 0,    /* no complete head yet */
    METRICS_HTTP_METRICS,     /* GET /metrics (a query string is ignored) */
    METRICS_HTTP_NOT_FOUND,   /* a well-formed request for another path: 404 */
    METRICS_HTTP_BAD_METHOD,  /* /metrics with another method: 405 */
    METRICS_HTTP_BAD_REQUEST, /* not an HTTP/1.x request line: 400 */
    METRICS_HTTP_TOO_LARGE,   /* no end of head within max bytes: 431 */
};
/* Reads the request head in p[0, len) (CRLF or LF line ends); max: the most bytes a head may
 * take. The body, if any, is not read (every answer closes the connection). */
enum metrics_http_req metrics_http_parse(const char *p, size_t len, size_t max);
/* "ok", "not found", ...: for log lines. */
const char *metrics_http_req_name(enum metrics_http_req r);

#endif
