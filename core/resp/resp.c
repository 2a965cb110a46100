/*
 * resp.c — RESP request parsing and RESP2/RESP3 reply encoding. The formats are in resp.h.
 *
 * Invariants of resp_parse:
 *   P1. Every read of buf is at an index < len, checked just before the read: a partial request
 *       is RK_EAGAIN at any byte, and no declared length is trusted before it is compared with
 *       the bytes actually present.
 *   P2. Nothing is allocated. Arguments point into buf or into the caller's scratch.
 *   P3. Every loop is bounded: a number line by its 19 digits, the arguments by max_args, an
 *       inline line by max_inline.
 *   P4. On success 0 < *consumed <= len; otherwise *consumed == 0 and req->argc == 0.
 *
 * The encoders compute the exact size first and write nothing when it does not fit, so a
 * caller can always retry the same reply into a bigger buffer.
 */
#include "resp/resp.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"

/* "-9223372036854775808": the longest decimal int64. */
#define INT64_DIGITS_MAX 19u
#define CRLF_SIZE        2u

struct resp_lim {
    uint64_t max_args;
    uint64_t max_bulk;
    uint64_t max_inline;
};

static struct resp_lim resolve_limits(const struct resp_limits *lim)
{
    struct resp_lim r = {RESP_MAX_ARGS_DEFAULT, RESP_MAX_BULK_DEFAULT, RESP_MAX_INLINE_DEFAULT};
    if (lim != NULL && lim->max_args != 0)
        r.max_args = lim->max_args;
    if (lim != NULL && lim->max_bulk != 0)
        r.max_bulk = lim->max_bulk;
    if (lim != NULL && lim->max_inline != 0)
        r.max_inline = lim->max_inline;
    return r;
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/*
 * Reads "<decimal>\r\n" at buf[*pos]: an optional '-', then digits without a leading zero (but
 * "0" itself), no overflow of int64, then exactly CRLF. RK_OK advances *pos past the CRLF;
 * RK_EAGAIN and RK_EMALFORMED leave it. The caller words the error.
 */
static int parse_number_line(const uint8_t *buf, size_t len, size_t *pos, int64_t *out)
{
    size_t i = *pos;
    /* The usual line first (every header of a request): 1 to 9 digits, no sign, no leading
     * zero, then CRLF; it cannot overflow. Anything else takes the checks below. */
    if (i < len && buf[i] >= '1' && buf[i] <= '9') {
        uint64_t v = (uint64_t)(buf[i] - '0');
        size_t j = i + 1;
        while (j < len && j - i < 9 && is_digit(buf[j])) {
            v = v * 10 + (uint64_t)(buf[j] - '0');
            j++;
        }
        if (len - j >= 2 && buf[j] == '\r' && buf[j + 1] == '\n') {
            *pos = j + 2;
            *out = (int64_t)v;
            return RK_OK;
        }
    }
    bool negative = false;
    uint64_t v = 0;
    unsigned digits = 0;

    if (i < len && buf[i] == '-') {
        negative = true;
        i++;
    }
    for (;;) {
        if (i == len)
            return RK_EAGAIN;
        uint8_t c = buf[i];
        if (c == '\r')
            break;
        if (!is_digit(c))
            return RK_EMALFORMED;
        if (digits > 0 && v == 0)
            return RK_EMALFORMED; /* a leading zero */
        uint64_t d = (uint64_t)(c - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return RK_EMALFORMED; /* overflow: bounds the loop at 19 digits (P3) */
        v = v * 10 + d;
        digits++;
        i++;
    }
    RK_ASSERT(digits <= INT64_DIGITS_MAX);
    if (digits == 0 || (negative && v == 0))
        return RK_EMALFORMED;
    i++; /* the '\r' */
    if (i == len)
        return RK_EAGAIN;
    if (buf[i] != '\n')
        return RK_EMALFORMED;
    *pos = i + 1;
    *out = negative ? -(int64_t)v : (int64_t)v;
    return RK_OK;
}

/* Redis prints the offending byte with %c; a non-printable one is shown as \xNN instead so that
 * the message stays one printable line. */
static int multibulk_expected_dollar(struct rk_errmsg *err, uint8_t c)
{
    if (c >= 0x20 && c < 0x7f)
        return rk_errf(err, RK_EMALFORMED, "Protocol error: expected '$', got '%c'", (char)c);
    return rk_errf(err, RK_EMALFORMED, "Protocol error: expected '$', got '\\x%02x'", c);
}

static int check_argc(uint64_t argc, const struct resp_lim *lim, const struct resp_request *req,
                      struct rk_errmsg *err)
{
    if (argc > lim->max_args)
        return rk_errf(err, RK_ETOOBIG,
                       "Protocol error: too many arguments (%" PRIu64 ", limit %" PRIu64 ")", argc,
                       lim->max_args);
    if (argc > req->cap_args)
        return rk_errf(err, RK_ETOOBIG,
                       "Protocol error: too many arguments (%" PRIu64 ", capacity %" PRIu32 ")",
                       argc, req->cap_args);
    return RK_OK;
}

/* One `$<len>\r\n<bytes>\r\n` at buf[*pos]; RK_OK advances *pos past it and fills *arg. */
static int multibulk_arg(const uint8_t *buf, size_t len, size_t *pos, const struct resp_lim *lim,
                         struct resp_arg *arg, struct rk_errmsg *err)
{
    size_t p = *pos;
    if (p == len)
        return RK_EAGAIN;
    if (buf[p] != '$')
        return multibulk_expected_dollar(err, buf[p]);
    p++;
    int64_t n = 0;
    int rc = parse_number_line(buf, len, &p, &n);
    if (rc == RK_EAGAIN)
        return rc;
    if (rc != RK_OK || n < 0)
        return rk_errf(err, RK_EMALFORMED, "Protocol error: invalid bulk length");
    if ((uint64_t)n > lim->max_bulk)
        return rk_errf(err, RK_ETOOBIG,
                       "Protocol error: invalid bulk length (%" PRId64 " bytes, limit %" PRIu64 ")",
                       n, lim->max_bulk);
    RK_ASSERT(p <= len);
    /* n <= INT64_MAX, so n + 2 cannot wrap (P1: compare before trusting). */
    if ((uint64_t)(len - p) < (uint64_t)n + CRLF_SIZE)
        return RK_EAGAIN;
    size_t data_end = p + (size_t)n;
    if (buf[data_end] != '\r' || buf[data_end + 1] != '\n')
        return rk_errf(err, RK_EMALFORMED,
                       "Protocol error: bulk argument of %" PRId64 " bytes not followed by CRLF",
                       n);
    arg->ptr = buf + p;
    arg->len = (uint64_t)n;
    *pos = data_end + CRLF_SIZE;
    return RK_OK;
}

static int parse_multibulk(const uint8_t *buf, size_t len, const struct resp_lim *lim,
                           struct resp_request *req, size_t *consumed, struct rk_errmsg *err)
{
    RK_ASSERT(len > 0);
    RK_ASSERT(buf[0] == '*');
    size_t pos = 1;
    int64_t n = 0;
    int rc = parse_number_line(buf, len, &pos, &n);
    if (rc == RK_EAGAIN)
        return rc;
    /* Redis (processMultibulkBuffer) skips any count <= 0, `*-10` too: an empty request, not
     * an error; only the null array -1 is a real RESP value. */
    if (rc != RK_OK || n > INT32_MAX)
        return rk_errf(err, RK_EMALFORMED, "Protocol error: invalid multibulk length");
    if (n > 0) {
        rc = check_argc((uint64_t)n, lim, req, err);
        if (rc != RK_OK)
            return rc;
    }
    for (int64_t i = 0; i < n; i++) {
        rc = multibulk_arg(buf, len, &pos, lim, &req->args[i], err);
        if (rc != RK_OK)
            return rc;
    }
    req->argc = n > 0 ? (uint32_t)n : 0;
    *consumed = pos;
    return RK_OK;
}

/* ---- inline requests (Redis's sdssplitargs, without NUL termination) ------------------- */

struct inline_cursor {
    const uint8_t *line;
    size_t n;         /* line length without the line ending */
    size_t p;         /* next byte */
    uint8_t *scratch; /* may be NULL */
    size_t cap;       /* scratch capacity */
    size_t used;      /* bytes of scratch wanted so far; only those < cap are written */
    /* The current token: verbatim while its bytes are a contiguous run of line. */
    bool verbatim;
    size_t vstart;
    size_t vlen;
    size_t dstart; /* where the token starts in scratch once it is not verbatim */
};

static bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void token_scratch_put(struct inline_cursor *c, uint8_t b)
{
    if (c->used < c->cap)
        c->scratch[c->used] = b;
    c->used++;
}

/* The token stops being a slice of line: copy what it has so far into scratch. */
static void token_unverbatim(struct inline_cursor *c)
{
    if (!c->verbatim)
        return;
    c->verbatim = false;
    c->dstart = c->used;
    for (size_t i = 0; i < c->vlen; i++)
        token_scratch_put(c, c->line[c->vstart + i]);
}

/* A byte of the token that is the next byte of line. */
static void token_put_raw(struct inline_cursor *c)
{
    if (c->verbatim)
        c->vlen++;
    else
        token_scratch_put(c, c->line[c->p]);
    c->p++;
}

/* A byte of the token that differs from line (an escape): the token goes to scratch. */
static void token_put_decoded(struct inline_cursor *c, uint8_t b, size_t advance)
{
    token_unverbatim(c);
    token_scratch_put(c, b);
    c->p += advance;
}

static uint8_t escape_value(uint8_t c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

/* Inside "...": c->p is past the opening quote. true: closed, c->p past the closing quote. */
static bool inline_double_quoted(struct inline_cursor *c)
{
    const uint8_t *s = c->line;
    while (c->p < c->n) {
        size_t p = c->p;
        if (s[p] == '\\' && c->n - p >= 4 && s[p + 1] == 'x' && hex_value(s[p + 2]) >= 0 &&
            hex_value(s[p + 3]) >= 0) {
            token_put_decoded(c, (uint8_t)(hex_value(s[p + 2]) * 16 + hex_value(s[p + 3])), 4);
        } else if (s[p] == '\\' && c->n - p >= 2) {
            token_put_decoded(c, escape_value(s[p + 1]), 2);
        } else if (s[p] == '"') {
            c->p++;
            return true;
        } else {
            token_put_raw(c);
        }
    }
    return false;
}

/* Inside '...': only \' is an escape. */
static bool inline_single_quoted(struct inline_cursor *c)
{
    const uint8_t *s = c->line;
    while (c->p < c->n) {
        size_t p = c->p;
        if (s[p] == '\\' && c->n - p >= 2 && s[p + 1] == '\'') {
            token_put_decoded(c, '\'', 2);
        } else if (s[p] == '\'') {
            c->p++;
            return true;
        } else {
            token_put_raw(c);
        }
    }
    return false;
}

/*
 * One argument at c->p (not blank, not the end): bare bytes, then at most one quoted part,
 * which must end the argument. false: unbalanced quotes.
 */
static bool inline_token(struct inline_cursor *c, struct resp_arg *arg)
{
    c->verbatim = true;
    c->vstart = c->p;
    c->vlen = 0;
    c->dstart = c->used;
    while (c->p < c->n && !is_blank(c->line[c->p])) {
        uint8_t q = c->line[c->p];
        if (q != '"' && q != '\'') {
            token_put_raw(c);
            continue;
        }
        c->p++;
        if (c->vlen > 0)
            token_unverbatim(c); /* bare bytes, then a quote: not one slice of line */
        else
            c->vstart = c->p;
        bool closed = q == '"' ? inline_double_quoted(c) : inline_single_quoted(c);
        if (!closed || (c->p < c->n && !is_blank(c->line[c->p])))
            return false;
        break;
    }
    if (c->verbatim) {
        arg->ptr = c->line + c->vstart;
        arg->len = c->vlen;
    } else if (c->used > c->cap) {
        arg->ptr = NULL; /* scratch too small: the caller reports it */
        arg->len = 0;
    } else {
        arg->ptr = c->scratch + c->dstart;
        arg->len = c->used - c->dstart;
    }
    return true;
}

/* Splits line[0..n) into req->args. Counts every argument even past the limits, so that the
 * error can say how many there were. */
static int inline_split(const uint8_t *line, size_t n, const struct resp_lim *lim,
                        struct resp_request *req, struct rk_errmsg *err)
{
    struct inline_cursor c = {
        .line = line, .n = n, .scratch = req->scratch, .cap = req->scratch ? req->cap_scratch : 0};
    uint64_t argc = 0;
    uint64_t store_max = lim->max_args < req->cap_args ? lim->max_args : req->cap_args;
    for (;;) {
        while (c.p < n && is_blank(line[c.p]))
            c.p++;
        if (c.p == n)
            break;
        struct resp_arg arg;
        size_t p_before = c.p;
        if (!inline_token(&c, &arg))
            return rk_errf(err, RK_EMALFORMED, "Protocol error: unbalanced quotes in request");
        RK_ASSERT(c.p > p_before); /* P3: each token consumes at least one byte */
        if (argc < store_max)
            req->args[argc] = arg;
        argc++;
    }
    int rc = check_argc(argc, lim, req, err);
    if (rc != RK_OK)
        return rc;
    if (c.used > c.cap)
        return rk_errf(err, RK_ETOOBIG,
                       "Protocol error: unescaping inline arguments needs %zu bytes of scratch, "
                       "have %zu",
                       c.used, c.cap);
    req->argc = (uint32_t)argc;
    return RK_OK;
}

static int parse_inline(const uint8_t *buf, size_t len, const struct resp_lim *lim,
                        struct resp_request *req, size_t *consumed, struct rk_errmsg *err)
{
    /* A line of max_inline bytes, then \r\n, lies within the first max_inline + 2 bytes. */
    size_t scan = len;
    if ((uint64_t)scan > lim->max_inline + CRLF_SIZE)
        scan = (size_t)(lim->max_inline + CRLF_SIZE);
    const uint8_t *nl = memchr(buf, '\n', scan);
    if (nl == NULL) {
        if ((uint64_t)len >= lim->max_inline + CRLF_SIZE)
            return rk_errf(err, RK_ETOOBIG, "Protocol error: too big inline request");
        return RK_EAGAIN;
    }
    size_t end = (size_t)(nl - buf);
    size_t line_len = end;
    if (line_len > 0 && buf[line_len - 1] == '\r')
        line_len--;
    if ((uint64_t)line_len > lim->max_inline)
        return rk_errf(err, RK_ETOOBIG, "Protocol error: too big inline request");
    int rc = inline_split(buf, line_len, lim, req, err);
    if (rc != RK_OK)
        return rc;
    *consumed = end + 1;
    return RK_OK;
}

int resp_parse(const uint8_t *buf, size_t len, const struct resp_limits *lim,
               struct resp_request *req, size_t *consumed, struct rk_errmsg *err)
{
    RK_ASSERT(buf != NULL || len == 0);
    RK_ASSERT(req != NULL);
    RK_ASSERT(req->args != NULL || req->cap_args == 0);
    RK_ASSERT(consumed != NULL);
    struct resp_lim l = resolve_limits(lim);
    req->argc = 0;
    *consumed = 0;
    if (len == 0)
        return RK_EAGAIN;
    int rc = buf[0] == '*' ? parse_multibulk(buf, len, &l, req, consumed, err)
                           : parse_inline(buf, len, &l, req, consumed, err);
    if (rc != RK_OK) {
        req->argc = 0; /* P4 */
        *consumed = 0;
        return rc;
    }
    RK_ASSERT(*consumed > 0);
    RK_ASSERT(*consumed <= len);
    RK_ASSERT(req->argc <= req->cap_args);
    return RK_OK;
}

/* ---- encoders ------------------------------------------------------------------------ */

static uint64_t magnitude(int64_t v)
{
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN too */
}

static size_t decimal_digits(uint64_t u)
{
    size_t d = 1;
    while (u >= 10) {
        u /= 10;
        d++;
    }
    return d;
}

static size_t decimal_size(int64_t v)
{
    return (v < 0 ? 1 : 0) + decimal_digits(magnitude(v));
}

/* Writes <prefix><decimal v>\r\n at out; returns the bytes written. */
static size_t write_header(uint8_t *out, uint8_t prefix, int64_t v)
{
    uint8_t tmp[INT64_DIGITS_MAX + 1];
    size_t n = 0;
    uint64_t u = magnitude(v);
    do {
        tmp[n++] = (uint8_t)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    size_t w = 0;
    out[w++] = prefix;
    if (v < 0)
        out[w++] = '-';
    while (n > 0)
        out[w++] = tmp[--n];
    out[w++] = '\r';
    out[w++] = '\n';
    return w;
}

static bool fits(size_t cap, const size_t *pos, size_t size)
{
    RK_ASSERT(pos != NULL);
    RK_ASSERT(*pos <= cap);
    return cap - *pos >= size;
}

static bool is_one_line(const char *s)
{
    return s[strcspn(s, "\r\n")] == '\0';
}

static bool write_line(uint8_t *out, size_t cap, size_t *pos, uint8_t prefix, const char *s)
{
    RK_ASSERT(s != NULL);
    RK_ASSERT(is_one_line(s)); /* a reply line with CRLF in it would forge replies */
    size_t n = strlen(s);
    if (!fits(cap, pos, 1 + n + CRLF_SIZE))
        return false;
    uint8_t *o = out + *pos;
    o[0] = prefix;
    memcpy(o + 1, s, n);
    o[1 + n] = '\r';
    o[2 + n] = '\n';
    *pos += 1 + n + CRLF_SIZE;
    return true;
}

size_t resp_simple_size(const char *s)
{
    RK_ASSERT(s != NULL);
    RK_ASSERT(is_one_line(s));
    return 1 + strlen(s) + CRLF_SIZE;
}

bool resp_simple(uint8_t *out, size_t cap, size_t *pos, const char *s)
{
    return write_line(out, cap, pos, '+', s);
}

size_t resp_error_size(const char *s)
{
    return resp_simple_size(s);
}

bool resp_error(uint8_t *out, size_t cap, size_t *pos, const char *s)
{
    return write_line(out, cap, pos, '-', s);
}

size_t resp_integer_size(int64_t v)
{
    return 1 + decimal_size(v) + CRLF_SIZE;
}

bool resp_integer(uint8_t *out, size_t cap, size_t *pos, int64_t v)
{
    size_t size = resp_integer_size(v);
    if (!fits(cap, pos, size))
        return false;
    size_t w = write_header(out + *pos, ':', v);
    RK_ASSERT(w == size);
    *pos += w;
    return true;
}

size_t resp_bulk_size(uint64_t len)
{
    RK_ASSERT(len <= (uint64_t)INT64_MAX);
    RK_ASSERT(len <= (uint64_t)SIZE_MAX - 32); /* the header and CRLF must not wrap */
    return 1 + decimal_size((int64_t)len) + CRLF_SIZE + (size_t)len + CRLF_SIZE;
}

bool resp_bulk(uint8_t *out, size_t cap, size_t *pos, const uint8_t *p, uint64_t len)
{
    RK_ASSERT(p != NULL || len == 0);
    size_t size = resp_bulk_size(len);
    if (!fits(cap, pos, size))
        return false;
    uint8_t *o = out + *pos;
    size_t w = write_header(o, '$', (int64_t)len);
    if (len > 0)
        memcpy(o + w, p, (size_t)len);
    w += (size_t)len;
    o[w++] = '\r';
    o[w++] = '\n';
    RK_ASSERT(w == size);
    *pos += w;
    return true;
}

size_t resp_null_size(void)
{
    return 5; /* $-1\r\n */
}

bool resp_null(uint8_t *out, size_t cap, size_t *pos)
{
    if (!fits(cap, pos, resp_null_size()))
        return false;
    size_t w = write_header(out + *pos, '$', -1);
    RK_ASSERT(w == resp_null_size());
    *pos += w;
    return true;
}

size_t resp_array_size(int64_t n)
{
    RK_ASSERT(n >= -1); /* -1 is the null array */
    return 1 + decimal_size(n) + CRLF_SIZE;
}

bool resp_array(uint8_t *out, size_t cap, size_t *pos, int64_t n)
{
    size_t size = resp_array_size(n);
    if (!fits(cap, pos, size))
        return false;
    size_t w = write_header(out + *pos, '*', n);
    RK_ASSERT(w == size);
    *pos += w;
    return true;
}

/* ---- RESP3 ---------------------------------------------------------------------------------- */

size_t resp3_null_size(void)
{
    return 3; /* _\r\n */
}

bool resp3_null(uint8_t *out, size_t cap, size_t *pos)
{
    if (!fits(cap, pos, resp3_null_size()))
        return false;
    memcpy(out + *pos, "_\r\n", 3);
    *pos += 3;
    return true;
}

static bool write_count(uint8_t *out, size_t cap, size_t *pos, uint8_t prefix, int64_t n)
{
    RK_ASSERT(n >= 0);
    size_t size = 1 + decimal_size(n) + CRLF_SIZE;
    if (!fits(cap, pos, size))
        return false;
    size_t w = write_header(out + *pos, prefix, n);
    RK_ASSERT(w == size);
    *pos += w;
    return true;
}

size_t resp3_map_size(int64_t pairs)
{
    RK_ASSERT(pairs >= 0);
    return 1 + decimal_size(pairs) + CRLF_SIZE;
}

bool resp3_map(uint8_t *out, size_t cap, size_t *pos, int64_t pairs)
{
    return write_count(out, cap, pos, '%', pairs);
}

size_t resp3_set_size(int64_t n)
{
    return resp3_map_size(n);
}

bool resp3_set(uint8_t *out, size_t cap, size_t *pos, int64_t n)
{
    return write_count(out, cap, pos, '~', n);
}

size_t resp3_bool_size(void)
{
    return 4; /* #t\r\n */
}

bool resp3_bool(uint8_t *out, size_t cap, size_t *pos, bool v)
{
    if (!fits(cap, pos, resp3_bool_size()))
        return false;
    memcpy(out + *pos, v ? "#t\r\n" : "#f\r\n", 4);
    *pos += 4;
    return true;
}

size_t resp3_double_size(const char *text)
{
    RK_ASSERT(text != NULL);
    RK_ASSERT(is_one_line(text));
    return 1 + strlen(text) + CRLF_SIZE;
}

bool resp3_double(uint8_t *out, size_t cap, size_t *pos, const char *text)
{
    return write_line(out, cap, pos, ',', text);
}

size_t resp3_verbatim_size(uint64_t len)
{
    RK_ASSERT(len <= (uint64_t)INT64_MAX - 4);
    return resp_bulk_size(len + 4); /* "txt:" counts in the length */
}

bool resp3_verbatim(uint8_t *out, size_t cap, size_t *pos, const char *fmt, const uint8_t *p,
                    uint64_t len)
{
    RK_ASSERT(fmt != NULL && strlen(fmt) == 3);
    RK_ASSERT(p != NULL || len == 0);
    size_t size = resp3_verbatim_size(len);
    if (!fits(cap, pos, size))
        return false;
    uint8_t *o = out + *pos;
    size_t w = write_header(o, '=', (int64_t)(len + 4));
    memcpy(o + w, fmt, 3);
    o[w + 3] = ':';
    w += 4;
    if (len > 0)
        memcpy(o + w, p, (size_t)len);
    w += (size_t)len;
    o[w++] = '\r';
    o[w++] = '\n';
    RK_ASSERT(w == size);
    *pos += w;
    return true;
}

size_t resp_double_text(double d, char *text)
{
    /* Redis 7.0's addReplyDouble: inf and -inf spelled out, otherwise %.17g. */
    int k;
    if (isinf(d))
        k = snprintf(text, RESP_DOUBLE_TEXT_MAX, "%s", d > 0 ? "inf" : "-inf");
    else if (isnan(d))
        k = snprintf(text, RESP_DOUBLE_TEXT_MAX, "nan");
    else
        k = snprintf(text, RESP_DOUBLE_TEXT_MAX, "%.17g", d);
    RK_ASSERT(k > 0 && (size_t)k < RESP_DOUBLE_TEXT_MAX);
    return (size_t)k;
}
