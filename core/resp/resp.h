/*
 * resp.h — RESP, the Redis protocol: parsing client requests and encoding replies in RESP2 and
 * RESP3 (the types a client gets after HELLO 3). Pure and bounded: every byte from a client is
 * untrusted.
 *
 * Requests are arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or inline commands
 * (`PING\r\n`, split on spaces, as redis-cli and telnet send). resp_parse looks at the unread
 * bytes of a connection and returns one whole request, RK_EAGAIN for a partial one, or
 * RK_EMALFORMED with a message ("Protocol error: expected '$', got 'x'") after which the
 * connection is closed, as Redis does. Limits (configurable): arguments per request, bytes
 * per argument (a value's 64 MiB plus slack), bytes of an inline line.
 */
#ifndef RESP_H
#define RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define RESP_MAX_ARGS_DEFAULT   1024u
#define RESP_MAX_BULK_DEFAULT   ((64u << 20) + (64u << 10))
#define RESP_MAX_INLINE_DEFAULT (64u << 10)

struct resp_limits {
    uint32_t max_args;   /* 0: RESP_MAX_ARGS_DEFAULT */
    uint64_t max_bulk;   /* 0: RESP_MAX_BULK_DEFAULT */
    uint32_t max_inline; /* 0: RESP_MAX_INLINE_DEFAULT */
};

/* One request: args[i] points into the parsed buffer (borrowed until the caller consumes
 * those bytes) or, for an inline argument whose quotes or escapes change its bytes, into
 * scratch (borrowed until the next resp_parse). args is caller-provided storage of max_args
 * entries; scratch is optional caller-provided storage of max_inline bytes, which is always
 * enough. Without scratch (NULL, 0) such an argument yields RK_ETOOBIG. */
struct resp_arg {
    const uint8_t *ptr;
    uint64_t len;
};

struct resp_request {
    uint32_t argc;
    struct resp_arg *args; /* caller-provided, capacity cap_args */
    uint32_t cap_args;
    uint8_t *scratch; /* optional, caller-provided, capacity cap_scratch bytes */
    size_t cap_scratch;
};

/* Parses one request from buf[0..len). RK_OK: *consumed bytes form it; RK_EAGAIN: need more
 * (*consumed = 0); RK_EMALFORMED or RK_ETOOBIG with err: close the connection. An empty line
 * or an empty array is skipped (RK_OK with argc 0). req->argc is 0 unless RK_OK. lim may be
 * NULL (all defaults); err may be NULL. Never reads buf[len] or beyond.
 *
 * Multibulk: `*<n>\r\n` then n times `$<len>\r\n<len bytes>\r\n`. Numbers are decimal,
 * without '+' or leading zeros; a count <= 0 (`*-1`, `*0`, `*-10`) is an empty request, as
 * Redis skips it; a negative bulk length is refused.
 * Over max_args, over cap_args, over max_bulk, over max_inline: RK_ETOOBIG.
 * Inline: one line ending in \n or \r\n, split on blanks; "..." takes \" \\ \n \r \t \b \a
 * and \xNN escapes, '...' takes \', and a closing quote must end the argument (Redis's
 * sdssplitargs). */
int resp_parse(const uint8_t *buf, size_t len, const struct resp_limits *lim,
               struct resp_request *req, size_t *consumed, struct rk_errmsg *err);

/* Reply encoders: append to out[*pos..cap); return false (writing nothing) when it does not
 * fit. resp_*_size give the exact size first. */
size_t resp_simple_size(const char *s);
bool resp_simple(uint8_t *out, size_t cap, size_t *pos, const char *s); /* +OK */
size_t resp_error_size(const char *s);
bool resp_error(uint8_t *out, size_t cap, size_t *pos, const char *s); /* -ERR ... */
size_t resp_integer_size(int64_t v);
bool resp_integer(uint8_t *out, size_t cap, size_t *pos, int64_t v); /* :1 */
size_t resp_bulk_size(uint64_t len);
bool resp_bulk(uint8_t *out, size_t cap, size_t *pos, const uint8_t *p, uint64_t len); /* $3 */
size_t resp_null_size(void);
bool resp_null(uint8_t *out, size_t cap, size_t *pos); /* $-1 */
size_t resp_array_size(int64_t n);
bool resp_array(uint8_t *out, size_t cap, size_t *pos, int64_t n); /* *2 header */


/* RESP3 (Redis 7's resp3 spec): the types RESP2 does not have. A driver that talks RESP2 to a
 * connection encodes them the RESP2 way itself (a map as an array of 2n, a double as a bulk
 * string, a boolean as :1/:0, a verbatim string as a bulk string). */
size_t resp3_null_size(void);
bool resp3_null(uint8_t *out, size_t cap, size_t *pos); /* _ : nil of any type */
size_t resp3_map_size(int64_t pairs);
bool resp3_map(uint8_t *out, size_t cap, size_t *pos, int64_t pairs); /* %2 header */
size_t resp3_set_size(int64_t n);
bool resp3_set(uint8_t *out, size_t cap, size_t *pos, int64_t n); /* ~2 header */
size_t resp3_bool_size(void);
bool resp3_bool(uint8_t *out, size_t cap, size_t *pos, bool v); /* #t */
/* ,<text>: text is the double as Redis 7.0 prints it (resp_double_text). */
size_t resp3_double_size(const char *text);
bool resp3_double(uint8_t *out, size_t cap, size_t *pos, const char *text);
/* =<len>\r\n<fmt>:<bytes>: fmt is three characters ("txt", "mkd"). */
size_t resp3_verbatim_size(uint64_t len);
bool resp3_verbatim(uint8_t *out, size_t cap, size_t *pos, const char *fmt, const uint8_t *p,
                    uint64_t len);
/* A double as Redis 7.0 writes it: "inf", "-inf", "nan" or printf's %.17g. Returns the length;
 * text needs RESP_DOUBLE_TEXT_MAX bytes. */
#define RESP_DOUBLE_TEXT_MAX 32u
size_t resp_double_text(double d, char *text);

#endif
