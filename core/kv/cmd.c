/*
 * cmd.c — encoding and strict decoding of kv commands, the data of a Raft entry (layout in
 * kv.h).
 *
 * The bytes handed to kv_cmd_decode are untrusted: they came from a client through the leader
 * and the log, and a bug or a corrupted entry must end as KV_BAD_COMMAND on every replica alike,
 * never as a crash. As in codec.c, reads go through a bounded reader whose first error is
 * sticky, so the decoder is a straight sequence of field reads and every message names the
 * field and its offset.
 *
 * Invariants:
 *   C1  kv_cmd_size(c) == KV_CMD_OVERHEAD_BYTES + key_len + val_len + kv_cmd_args_bytes(op),
 *       and the encoder writes exactly that many bytes (asserted).
 *   C2  Every command kv_cmd_encode accepts, kv_cmd_decode accepts and returns unchanged;
 *       every buffer kv_cmd_decode accepts re-encodes to the same bytes (one encoding per
 *       command: the decoder is as strict as the encoder).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv.h"

_Static_assert(KV_OP_PUT == 1 && KV_OP_DEL == 2, "kv ops are wire values: never renumber");
_Static_assert(KV_OP_PUT_IF == 3 && KV_OP_INCRBY == 4 && KV_OP_MSET == 5,
               "kv ops are wire values: never renumber");
_Static_assert(KV_COND_NX == 1 && KV_COND_XX == 2, "conditions are wire values");
_Static_assert(KV_CMD_OVERHEAD_BYTES == 26, "the command header is part of the log format");
_Static_assert(KV_CMD_MAX_BYTES <= UINT32_MAX, "a command's length fits an entry's u32 len");

#define OFF_VERSION   0u
#define OFF_OP        1u
#define OFF_CLIENT_ID 2u
#define OFF_SEQ       10u
#define OFF_KEY_LEN   18u
#define OFF_KEY       22u
_Static_assert(OFF_KEY + 4 == KV_CMD_OVERHEAD_BYTES, "header offsets add up");

static bool is_op(unsigned op)
{
    return op == KV_OP_PUT || op == KV_OP_DEL || op == KV_OP_PUT_IF || op == KV_OP_INCRBY ||
           op == KV_OP_MSET;
}

static bool is_cond(unsigned cond)
{
    return cond == KV_COND_NX || cond == KV_COND_XX;
}

/* Ops that carry no value. */
static bool op_has_no_value(unsigned op)
{
    return op == KV_OP_DEL || op == KV_OP_INCRBY;
}

size_t kv_cmd_args_bytes(uint8_t op)
{
    if (op == KV_OP_PUT_IF)
        return 1;
    if (op == KV_OP_INCRBY)
        return 8;
    return 0;
}

bool kv_parse_int64(const uint8_t *p, size_t len, int64_t *out)
{
    RK_ASSERT(p != NULL || len == 0);
    RK_ASSERT(out != NULL);
    if (len == 0 || len > KV_INT64_TEXT_BYTES)
        return false;
    if (len == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    bool negative = p[0] == '-';
    size_t i = negative ? 1 : 0;
    if (i == len || p[i] < '1' || p[i] > '9')
        return false; /* no digit, a leading zero, '+', a space, "-0" */
    /* Accumulate the magnitude in a u64: it holds 2^63, INT64_MIN's. */
    uint64_t mag = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(p[i] - '0');
        if (mag > (UINT64_MAX - digit) / 10)
            return false;
        mag = mag * 10 + digit;
    }
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (mag > limit)
        return false;
    *out = negative ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

const char *kv_op_name(uint8_t op)
{
    switch (op) {
    case KV_OP_PUT:
        return "PUT";
    case KV_OP_DEL:
        return "DEL";
    case KV_OP_PUT_IF:
        return "PUT_IF";
    case KV_OP_INCRBY:
        return "INCRBY";
    case KV_OP_MSET:
        return "MSET";
    case KV_OP_CMD:
        return "CMD"; /* a session's cached generic command, never a version-1 wire op */
    }
    return "?";
}

size_t kv_cmd_size(const struct kv_cmd *c)
{
    RK_ASSERT(c != NULL);
    /* At most 26 + 2 * (2^32 - 1) + 8: no wrap where size_t has 64 bits; saturate elsewhere. */
    uint64_t size = (uint64_t)KV_CMD_OVERHEAD_BYTES + c->key_len + c->val_len +
                    kv_cmd_args_bytes(c->op);
    return size > SIZE_MAX ? SIZE_MAX : (size_t)size;
}

/* ---- writer ----------------------------------------------------------------------------- */

/* Writes into a buffer already known to be large enough: overflow is a bug, hence asserts. */
struct cmd_writer {
    uint8_t *buf;
    size_t cap;
    size_t pos;
};

static void put_le(struct cmd_writer *w, uint64_t v, size_t n)
{
    RK_ASSERT(n <= w->cap - w->pos);
    for (size_t i = 0; i < n; i++)
        w->buf[w->pos + i] = (uint8_t)(v >> (8 * i));
    w->pos += n;
}

static void put_bytes(struct cmd_writer *w, const uint8_t *p, size_t n)
{
    RK_ASSERT(n <= w->cap - w->pos);
    if (n > 0)
        memcpy(w->buf + w->pos, p, n);
    w->pos += n;
}

int kv_cmd_encode(const struct kv_cmd *c, uint8_t *buf, size_t cap, size_t *out_len)
{
    RK_ASSERT(c != NULL);
    RK_ASSERT(out_len != NULL);
    RK_ASSERT(buf != NULL || cap == 0);
    RK_ASSERT(c->key != NULL || c->key_len == 0);
    RK_ASSERT(c->val != NULL || c->val_len == 0);
    /* C2: refuse here what the decoder would refuse, so a bad command fails at its source. */
    if (!is_op(c->op) || (op_has_no_value(c->op) && c->val_len != 0))
        return RK_EINVAL;
    if (c->op == KV_OP_PUT_IF ? !is_cond(c->cond) : c->cond != 0)
        return RK_EINVAL;
    if (c->op != KV_OP_INCRBY && c->delta != 0)
        return RK_EINVAL;
    if (c->client_id != 0 && c->seq == 0)
        return RK_EINVAL;
    if (c->key_len > KV_MAX_KEY_BYTES || c->val_len > KV_MAX_VALUE_BYTES)
        return RK_ETOOBIG;
    uint32_t n_pairs = 0;
    if (c->op == KV_OP_MSET &&
        (c->key_len != 0 || kv_pairs_check(c->val, c->val_len, &n_pairs, NULL) != RK_OK))
        return RK_EINVAL;
    size_t size = kv_cmd_size(c);
    if (size > cap)
        return RK_ETOOBIG;
    struct cmd_writer w = {.buf = buf, .cap = size, .pos = 0};
    put_le(&w, KV_CMD_VERSION, 1);
    put_le(&w, c->op, 1);
    put_le(&w, c->client_id, 8);
    put_le(&w, c->seq, 8);
    put_le(&w, c->key_len, 4);
    put_bytes(&w, c->key, c->key_len);
    put_le(&w, c->val_len, 4);
    put_bytes(&w, c->val, c->val_len);
    if (c->op == KV_OP_PUT_IF)
        put_le(&w, c->cond, 1);
    if (c->op == KV_OP_INCRBY)
        put_le(&w, (uint64_t)c->delta, 8);
    RK_ASSERT(w.pos == size); /* C1 */
    *out_len = size;
    return RK_OK;
}

/* ---- reader ----------------------------------------------------------------------------- */

/* A bounded reader over one command. The first error is sticky: later reads return zeros and
 * leave the message alone, so the decoder reads straight through and checks once. */
struct cmd_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int rc;
    struct rk_errmsg *err;
};

static void rd_fail(struct cmd_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rd_fail(struct cmd_reader *r, const char *fmt, ...)
{
    if (r->rc != RK_OK)
        return;
    r->rc = RK_EMALFORMED;
    char text[RK_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    rk_errf(r->err, RK_EMALFORMED, "kv command: %s", text);
}

static bool rd_ok(const struct cmd_reader *r)
{
    return r->rc == RK_OK;
}

/* Consumes n bytes and returns them, or NULL (and fails) when fewer remain. */
static const uint8_t *rd_take(struct cmd_reader *r, size_t n, const char *field)
{
    if (!rd_ok(r))
        return NULL;
    RK_ASSERT(r->pos <= r->len);
    size_t left = r->len - r->pos;
    if (n > left) {
        rd_fail(r, "%s at offset %zu: %zu bytes needed, only %zu left", field, r->pos, n, left);
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

static uint64_t rd_le(struct cmd_reader *r, size_t n, const char *field)
{
    const uint8_t *p = rd_take(r, n, field);
    uint64_t v = 0;
    for (size_t i = 0; p != NULL && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Reads a u32 length and checks it against limit before anything is taken for it, so that a
 * bogus length is reported as such and not as a truncation. */
static uint32_t rd_len(struct cmd_reader *r, const char *field, uint32_t limit)
{
    size_t at = r->pos;
    uint32_t n = (uint32_t)rd_le(r, 4, field);
    if (rd_ok(r) && n > limit)
        rd_fail(r, "%s at offset %zu: %" PRIu32 " is over the %" PRIu32 "-byte limit", field, at, n,
                limit);
    return rd_ok(r) ? n : 0;
}

int kv_cmd_decode(const uint8_t *buf, size_t len, struct kv_cmd *c, struct rk_errmsg *err)
{
    RK_ASSERT(buf != NULL || len == 0);
    RK_ASSERT(c != NULL);
    struct cmd_reader r = {.buf = buf, .len = len, .pos = 0, .rc = RK_OK, .err = err};
    memset(c, 0, sizeof(*c));

    uint8_t version = (uint8_t)rd_le(&r, 1, "version");
    if (rd_ok(&r) && version != KV_CMD_VERSION)
        rd_fail(&r, "version at offset %u: %u is not %u", OFF_VERSION, version, KV_CMD_VERSION);
    uint8_t op = (uint8_t)rd_le(&r, 1, "op");
    if (rd_ok(&r) && !is_op(op))
        rd_fail(&r, "op at offset %u: %u is not a kv op", OFF_OP, op);
    uint64_t client_id = rd_le(&r, 8, "client_id");
    uint64_t seq = rd_le(&r, 8, "seq");
    if (rd_ok(&r) && client_id != 0 && seq == 0)
        rd_fail(&r, "seq at offset %u: 0 with client_id %" PRIu64 " (sequence numbers start at 1)",
                OFF_SEQ, client_id);
    uint32_t key_len = rd_len(&r, "key_len", KV_MAX_KEY_BYTES);
    const uint8_t *key = rd_take(&r, key_len, "key");
    size_t val_len_at = r.pos;
    uint32_t val_len = rd_len(&r, "val_len", KV_MAX_VALUE_BYTES);
    if (rd_ok(&r) && op_has_no_value(op) && val_len != 0)
        rd_fail(&r, "val_len at offset %zu: %" PRIu32 " but a%s %s carries no value", val_len_at,
                val_len, op == KV_OP_INCRBY ? "n" : "", kv_op_name(op));
    size_t val_at = r.pos;
    const uint8_t *val = rd_take(&r, val_len, "val");
    if (rd_ok(&r) && op == KV_OP_MSET) {
        struct rk_errmsg perr = {{0}};
        uint32_t n_pairs = 0;
        if (key_len != 0)
            rd_fail(&r, "key_len at offset %u: %" PRIu32 " but an MSET carries no key",
                    OFF_KEY_LEN, key_len);
        else if (kv_pairs_check(val, val_len, &n_pairs, &perr) != RK_OK)
            rd_fail(&r, "val at offset %zu: %s", val_at, perr.text);
    }
    uint8_t cond = 0;
    int64_t delta = 0;
    if (op == KV_OP_PUT_IF) {
        size_t at = r.pos;
        cond = (uint8_t)rd_le(&r, 1, "cond");
        if (rd_ok(&r) && !is_cond(cond))
            rd_fail(&r, "cond at offset %zu: %u is neither NX (1) nor XX (2)", at, cond);
    }
    if (op == KV_OP_INCRBY)
        delta = (int64_t)rd_le(&r, 8, "delta");
    if (rd_ok(&r) && r.pos != len)
        rd_fail(&r, "end at offset %zu: %zu trailing bytes after the command", r.pos, len - r.pos);
    if (!rd_ok(&r))
        return r.rc;

    RK_ASSERT(r.pos == KV_CMD_OVERHEAD_BYTES + (size_t)key_len + val_len +
                           kv_cmd_args_bytes(op)); /* C1 */
    c->op = op;
    c->client_id = client_id;
    c->seq = seq;
    c->key = key_len == 0 ? NULL : key;
    c->key_len = key_len;
    c->val = val_len == 0 ? NULL : val;
    c->val_len = val_len;
    c->cond = cond;
    c->delta = delta;
    return RK_OK;
}

/* ---- MSET's pairs blob ------------------------------------------------------------------ */

size_t kv_pairs_size(const struct kv_pair *pairs, size_t n)
{
    RK_ASSERT(pairs != NULL || n == 0);
    uint64_t size = KV_PAIRS_HEADER_BYTES;
    for (size_t i = 0; i < n; i++)
        size += (uint64_t)KV_PAIR_OVERHEAD_BYTES + pairs[i].key_len + pairs[i].val_len;
    return size > SIZE_MAX ? SIZE_MAX : (size_t)size;
}

int kv_pairs_encode(const struct kv_pair *pairs, size_t n, uint8_t *buf, size_t cap,
                    size_t *out_len)
{
    RK_ASSERT(out_len != NULL);
    RK_ASSERT(buf != NULL || cap == 0);
    if (n == 0 || n > UINT32_MAX)
        return RK_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (pairs[i].key_len > KV_MAX_KEY_BYTES)
            return RK_EINVAL;
    size_t size = kv_pairs_size(pairs, n);
    if (size > KV_MAX_VALUE_BYTES || size > cap)
        return RK_ETOOBIG;
    struct cmd_writer w = {.buf = buf, .cap = size, .pos = 0};
    put_le(&w, n, 4);
    for (size_t i = 0; i < n; i++) {
        put_le(&w, pairs[i].key_len, 4);
        put_bytes(&w, pairs[i].key, pairs[i].key_len);
        put_le(&w, pairs[i].val_len, 4);
        put_bytes(&w, pairs[i].val, pairs[i].val_len);
    }
    RK_ASSERT(w.pos == size);
    *out_len = size;
    return RK_OK;
}

int kv_pairs_check(const uint8_t *blob, size_t len, uint32_t *count, struct rk_errmsg *err)
{
    RK_ASSERT(blob != NULL || len == 0);
    RK_ASSERT(count != NULL);
    struct rk_errmsg inner = {{0}};
    struct cmd_reader r = {.buf = blob, .len = len, .pos = 0, .rc = RK_OK, .err = &inner};
    uint32_t n = (uint32_t)rd_le(&r, 4, "count");
    if (rd_ok(&r) && n == 0)
        rd_fail(&r, "count at offset 0: 0 pairs (an MSET sets at least one key)");
    /* Every pair takes at least 8 bytes: a count beyond that is a lie, found before the walk. */
    if (rd_ok(&r) && n > (len - KV_PAIRS_HEADER_BYTES) / KV_PAIR_OVERHEAD_BYTES)
        rd_fail(&r, "count at offset 0: %" PRIu32 " pairs cannot fit %zu bytes", n, len);
    for (uint32_t i = 0; i < n && rd_ok(&r); i++) {
        uint32_t kl = rd_len(&r, "key_len", KV_MAX_KEY_BYTES);
        rd_take(&r, kl, "key");
        uint32_t vl = rd_len(&r, "val_len", KV_MAX_VALUE_BYTES);
        rd_take(&r, vl, "val");
    }
    if (rd_ok(&r) && r.pos != len)
        rd_fail(&r, "end at offset %zu: %zu trailing bytes after %" PRIu32 " pairs", r.pos,
                len - r.pos, n);
    if (!rd_ok(&r)) {
        /* cmd_reader's messages say "kv command: "; a blob's say "pairs: ". */
        const char *text = inner.text;
        const char *prefix = "kv command: ";
        if (strncmp(text, prefix, strlen(prefix)) == 0)
            text += strlen(prefix);
        rk_errf(err, r.rc, "pairs: %s", text);
        return r.rc;
    }
    *count = n;
    return RK_OK;
}

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void kv_pairs_begin(struct kv_pairs_iter *it, const uint8_t *blob, size_t len)
{
    RK_ASSERT(it != NULL);
    RK_ASSERT(len >= KV_PAIRS_HEADER_BYTES);
    it->buf = blob;
    it->len = len;
    it->pos = KV_PAIRS_HEADER_BYTES;
    it->left = load_u32(blob);
}

bool kv_pairs_next(struct kv_pairs_iter *it, struct kv_pair *out)
{
    RK_ASSERT(it != NULL && out != NULL);
    if (it->left == 0)
        return false;
    /* The blob was checked: every read below is in bounds (asserted all the same). */
    RK_ASSERT(it->len - it->pos >= KV_PAIR_OVERHEAD_BYTES);
    out->key_len = load_u32(it->buf + it->pos);
    out->key = it->buf + it->pos + 4;
    it->pos += 4 + (size_t)out->key_len;
    RK_ASSERT(it->pos + 4 <= it->len);
    out->val_len = load_u32(it->buf + it->pos);
    out->val = it->buf + it->pos + 4;
    it->pos += 4 + (size_t)out->val_len;
    RK_ASSERT(it->pos <= it->len);
    it->left--;
    return true;
}
