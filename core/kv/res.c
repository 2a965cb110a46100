/*
 * res.c — the generic result encoding (kv.h "results"): a writer for the state machine and a
 * strict checker and walker for its readers.
 *
 * The writer appends to a growing buffer through the injected allocator; a failed growth is
 * sticky (oom), checked once by the caller when the command is done (kv_apply then fails with
 * RK_ENOMEM: the entry is not applied, the replica stops as after a store error).
 */
#include <string.h>

#include "common/assert.h"
#include "kv/kv_int.h"

#define RES_MAX_DEPTH 2u

void resbuf_reset(struct kv_resbuf *b)
{
    b->len = 0;
    b->oom = false;
}

void resbuf_trim(struct kv_resbuf *b, size_t keep_bytes)
{
    if (b->cap > keep_bytes) {
        rk_free(b->alloc, b->buf);
        b->buf = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->oom = false;
}

void resbuf_free(struct kv_resbuf *b)
{
    rk_free(b->alloc, b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}

static uint8_t *res_reserve(struct kv_resbuf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (!rk_grow(b->alloc, (void **)&b->buf, &b->cap, b->len + n, 1)) {
        b->oom = true;
        return NULL;
    }
    uint8_t *p = b->buf + b->len;
    b->len += n;
    return p;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void res_bytes(struct kv_resbuf *b, uint8_t type, const uint8_t *p, uint32_t len)
{
    uint8_t *d = res_reserve(b, 5 + (size_t)len);
    if (d == NULL)
        return;
    d[0] = type;
    put_u32(d + 1, len);
    if (len > 0)
        memcpy(d + 5, p, len);
}

void res_status(struct kv_resbuf *b, const char *text)
{
    res_bytes(b, KV_RES_STATUS, (const uint8_t *)text, (uint32_t)strlen(text));
}

void res_error(struct kv_resbuf *b, const char *text)
{
    res_bytes(b, KV_RES_ERROR, (const uint8_t *)text, (uint32_t)strlen(text));
}

void res_bulk(struct kv_resbuf *b, const uint8_t *p, uint32_t len)
{
    res_bytes(b, KV_RES_BULK, p, len);
}

void res_int(struct kv_resbuf *b, int64_t v)
{
    uint8_t *d = res_reserve(b, 9);
    if (d == NULL)
        return;
    d[0] = KV_RES_INT;
    for (int i = 0; i < 8; i++)
        d[1 + i] = (uint8_t)((uint64_t)v >> (8 * i));
}

void res_nil(struct kv_resbuf *b)
{
    uint8_t *d = res_reserve(b, 1);
    if (d != NULL)
        d[0] = KV_RES_NIL;
}

void res_nil_array(struct kv_resbuf *b)
{
    uint8_t *d = res_reserve(b, 1);
    if (d != NULL)
        d[0] = KV_RES_NIL_ARRAY;
}

void res_array(struct kv_resbuf *b, uint32_t n)
{
    uint8_t *d = res_reserve(b, 5);
    if (d == NULL)
        return;
    d[0] = KV_RES_ARRAY;
    put_u32(d + 1, n);
}

void kv_res_begin(struct kv_res_iter *it, const uint8_t *buf, size_t len)
{
    it->buf = buf;
    it->len = len;
    it->pos = 0;
}

/* Reads one item at it->pos without checking (kv_res_check did); false at the end. */
bool kv_res_next(struct kv_res_iter *it, struct kv_res_item *out)
{
    memset(out, 0, sizeof(*out));
    if (it->pos >= it->len)
        return false;
    const uint8_t *p = it->buf + it->pos;
    out->type = p[0];
    switch (p[0]) {
    case KV_RES_STATUS:
    case KV_RES_ERROR:
    case KV_RES_BULK:
        out->len = get_u32(p + 1);
        out->p = p + 5;
        it->pos += 5 + (size_t)out->len;
        break;
    case KV_RES_INT: {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)p[1 + i] << (8 * i);
        out->num = (int64_t)v;
        it->pos += 9;
        break;
    }
    case KV_RES_ARRAY:
        out->num = get_u32(p + 1);
        it->pos += 5;
        break;
    default:
        it->pos += 1;
        break;
    }
    RK_ASSERT(it->pos <= it->len);
    return true;
}

/* Checks the value at *pos (depth levels of arrays allowed below it). */
static int check_value(const uint8_t *buf, size_t len, size_t *pos, unsigned depth,
                       struct rk_errmsg *err)
{
    if (*pos >= len)
        return rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: a value is missing", *pos);
    uint8_t t = buf[*pos];
    size_t at = *pos;
    switch (t) {
    case KV_RES_STATUS:
    case KV_RES_ERROR:
    case KV_RES_BULK: {
        if (len - at < 5)
            return rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: truncated length", at);
        uint32_t n = get_u32(buf + at + 1);
        if (len - at - 5 < n)
            return rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: %u bytes, %zu left", at, n,
                           len - at - 5);
        *pos = at + 5 + n;
        return RK_OK;
    }
    case KV_RES_INT:
        if (len - at < 9)
            return rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: truncated integer", at);
        *pos = at + 9;
        return RK_OK;
    case KV_RES_NIL:
    case KV_RES_NIL_ARRAY:
        *pos = at + 1;
        return RK_OK;
    case KV_RES_ARRAY: {
        if (depth == 0)
            return rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: arrays nested too deep", at);
        if (len - at < 5)
            return rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: truncated count", at);
        uint32_t n = get_u32(buf + at + 1);
        if (n > len - at - 5) /* every element takes at least one byte */
            return rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: %u elements cannot fit", at,
                           n);
        *pos = at + 5;
        for (uint32_t i = 0; i < n; i++) {
            int rc = check_value(buf, len, pos, depth - 1, err);
            if (rc != RK_OK)
                return rc;
        }
        return RK_OK;
    }
    }
    return rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: type 0x%02x is unknown", at, t);
}

int kv_res_check(const uint8_t *buf, size_t len, struct rk_errmsg *err)
{
    RK_ASSERT(buf != NULL || len == 0);
    size_t pos = 0;
    int rc = check_value(buf, len, &pos, RES_MAX_DEPTH, err);
    if (rc == RK_OK && pos != len)
        rc = rk_errf(err, RK_EMALFORMED, "kv result: offset %zu: %zu trailing bytes", pos,
                     len - pos);
    return rc;
}
