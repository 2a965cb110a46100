/*
 * cmd_string.c — the string commands (Redis's t_string.c): GET, SET [NX|XX], MGET, MSET,
 * INCR/DECR/INCRBY/DECRBY, STRLEN, GETRANGE/SUBSTR. Writes are replicated operations of the
 * state machine (core/kv); reads are linearizable GETs (ReadIndex) on whichever node serves
 * them. Arity was checked by the table before a handler runs.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "server.h"

/* ---- completions ------------------------------------------------------------------------- */

static void done_get(struct node *n, struct item *it, uint32_t part, const struct replica_reply *rp)
{
    (void)part;
    if (rp->status == REPLICA_OK) {
        n->stats.keyspace_hits++;
        add_bulk(it, rp->val, rp->val_len);
    } else {
        n->stats.keyspace_misses++;
        add_null(it);
    }
}

static void done_ok(struct node *n, struct item *it, uint32_t part, const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    (void)rp;
    add_simple(it, "OK");
}

static void done_set_if(struct node *n, struct item *it, uint32_t part,
                        const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    if (rp->num == 1)
        add_simple(it, "OK");
    else
        add_null(it); /* the condition did not hold: nil, as Redis */
}

static void done_int(struct node *n, struct item *it, uint32_t part, const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    add_integer(it, rp->num);
}

static void done_strlen(struct node *n, struct item *it, uint32_t part,
                        const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    add_integer(it, rp->status == REPLICA_OK ? (int64_t)rp->val_len : 0);
}

/* Redis's getrangeCommand on the value (a missing key is the empty string). */
static void done_getrange(struct node *n, struct item *it, uint32_t part,
                          const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    int64_t start = it->a1, end = it->a2;
    int64_t len = rp->status == REPLICA_OK ? (int64_t)rp->val_len : 0;
    if (start < 0 && end < 0 && start > end) {
        add_bulk(it, "", 0);
        return;
    }
    if (start < 0)
        start = len + start;
    if (end < 0)
        end = len + end;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= len)
        end = len - 1;
    if (start > end || len == 0)
        add_bulk(it, "", 0);
    else
        add_bulk(it, rp->val + start, (uint64_t)(end - start + 1));
}

/* ---- handlers ---------------------------------------------------------------------------- */

void cmd_get(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
             uint32_t argc)
{
    (void)argc;
    it->on_reply = done_get;
    it->done = false;
    server_request(n, c, it, 0, REPLICA_GET, &a[1], NULL, 0, 0);
}

/* SET key value [NX | XX] — Redis's parseExtendedStringArgumentsOrReply: NX and XX may repeat
 * but not mix. The expiry options and GET need replicated operations raftkv does not have yet:
 * "ERR syntax error" (node/DEVIATIONS.md). */
void cmd_set(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
             uint32_t argc)
{
    bool nx = false, xx = false;
    for (uint32_t j = 3; j < argc; j++) {
        if (arg_is(&a[j], "NX") && !xx) {
            nx = true;
        } else if (arg_is(&a[j], "XX") && !nx) {
            xx = true;
        } else {
            add_error(it, "ERR syntax error");
            return;
        }
    }
    it->done = false;
    if (nx || xx) {
        it->on_reply = done_set_if;
        server_request(n, c, it, 0, REPLICA_PUT_IF, &a[1], &a[2], nx ? KV_COND_NX : KV_COND_XX,
                       0);
    } else {
        it->on_reply = done_ok;
        server_request(n, c, it, 0, REPLICA_PUT, &a[1], &a[2], 0, 0);
    }
}

/* MGET keeps its values in aux as they arrive, in any order: n offsets (u64, NO_VALUE for a
 * missing key) first, then [len u64][bytes] per value found. */
#define NO_VALUE UINT64_MAX

static void mget_store(struct node *n, struct item *it, uint32_t part,
                       const struct replica_reply *rp)
{
    if (rp->status != REPLICA_OK) {
        n->stats.keyspace_misses++;
        return;
    }
    n->stats.keyspace_hits++;
    uint64_t off = it->aux.len, len64 = rp->val_len;
    if (part >= it->parts || !buf_append(&it->aux, &len64, 8) ||
        !buf_append(&it->aux, rp->val, rp->val_len)) {
        it->failed = true;
        it->bytes.len = 0;
        add_error(it, "ERR out of memory");
        return;
    }
    memcpy(it->aux.p + (size_t)part * 8, &off, 8);
}

static void mget_finish(struct node *n, struct item *it)
{
    (void)n;
    add_array(it, it->parts);
    for (uint32_t i = 0; i < it->parts; i++) {
        uint64_t off, len;
        memcpy(&off, it->aux.p + (size_t)i * 8, 8);
        if (off == NO_VALUE) {
            add_null(it);
            continue;
        }
        memcpy(&len, it->aux.p + off, 8);
        add_bulk(it, it->aux.p + off + 8, len);
    }
}

/* The one reply of REPLICA_MGET: every key's result, read at one applied index. */
static void mget_store_all(struct node *n, struct item *it, uint32_t part,
                           const struct replica_reply *rp)
{
    (void)part;
    struct replica_mget_iter mi;
    replica_mget_begin(&mi, rp->val, rp->val_len);
    bool found;
    const uint8_t *val;
    uint32_t val_len;
    for (uint32_t i = 0; i < it->parts && replica_mget_next(&mi, &found, &val, &val_len); i++) {
        if (!found) {
            mget_store(n, it, i, &(struct replica_reply){.status = REPLICA_NOT_FOUND});
            continue;
        }
        mget_store(n, it, i,
                   &(struct replica_reply){.status = REPLICA_OK, .val = val, .val_len = val_len});
    }
}

/* MGET k1 k2 ...: one read barrier and one snapshot (REPLICA_MGET): every key is read at the
 * same applied index, so an MSET is seen whole or not at all; the reply lists them in order. */
void cmd_mget(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    uint32_t keys = argc - 1;
    if (!buf_reserve(&it->aux, (size_t)keys * 8)) {
        add_error(it, "ERR out of memory");
        return;
    }
    for (uint32_t i = 0; i < keys; i++) {
        uint64_t none = NO_VALUE;
        memcpy(it->aux.p + (size_t)i * 8, &none, 8);
    }
    it->aux.len = (size_t)keys * 8;
    it->parts = keys;
    it->on_reply = mget_store_all;
    it->on_finish = mget_finish;
    if (!server_mget(n, c, it, &a[1], keys))
        add_error(it, "ERR MGET over the request limits");
}

/* MSET k1 v1 k2 v2 ...: one entry (a kv pairs blob in the arena), so every pair is applied at
 * once or none is, as in Redis. */
void cmd_mset(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    if (argc % 2 == 0) {
        cmd_arity_error(it, cmd_lookup((const uint8_t *)"mset", 4));
        return;
    }
    size_t n_pairs = (argc - 1) / 2;
    for (size_t i = 0; i < n_pairs; i++) {
        const struct resp_arg *k = &a[1 + 2 * i], *v = &a[2 + 2 * i];
        if (k->len > KV_MAX_KEY_BYTES) {
            add_error(it, "ERR key over the 64 KiB limit");
            return;
        }
        n->pairs[i] = (struct kv_pair){.key = k->ptr, .key_len = (uint32_t)k->len,
                                       .val = v->ptr, .val_len = (uint32_t)v->len};
    }
    size_t size = kv_pairs_size(n->pairs, n_pairs);
    if (size > n->lim.max_value) {
        char text[128];
        snprintf(text, sizeof(text), "ERR MSET of %zu bytes over the %llu-byte limit (max-value-bytes)",
                 size, (unsigned long long)n->lim.max_value);
        add_error(it, text);
        return;
    }
    if (!server_batch_room(n, size)) {
        add_error(it, "ERR out of memory");
        return;
    }
    size_t len = 0;
    uint8_t *blob = n->arena.p + n->arena.len;
    if (kv_pairs_encode(n->pairs, n_pairs, blob, n->arena.cap - n->arena.len, &len) != RK_OK) {
        add_error(it, "ERR cannot encode the pairs");
        return;
    }
    n->arena.len += len;
    struct resp_arg none = {.ptr = (const uint8_t *)"", .len = 0};
    struct resp_arg pairs = {.ptr = blob, .len = len};
    it->on_reply = done_ok;
    it->done = false;
    server_request(n, c, it, 0, REPLICA_MSET, &none, &pairs, 0, 0);
}

/* INCR key, DECR key, INCRBY key n, DECRBY key n: one INCRBY in the state machine, which
 * decides at apply time (a missing key counts as 0; Redis's errors for a stored value that is
 * not an integer and for an overflow). */
void cmd_incr(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    bool by = argc == 3;
    bool decr = arg_is(&a[0], "DECR") || arg_is(&a[0], "DECRBY");
    int64_t delta = 1;
    if (by && !arg_int64(&a[2], &delta)) {
        add_error(it, "ERR value is not an integer or out of range");
        return;
    }
    if (decr && delta == INT64_MIN) {
        add_error(it, "ERR decrement would overflow"); /* Redis's DECRBY check */
        return;
    }
    it->on_reply = done_int;
    it->done = false;
    server_request(n, c, it, 0, REPLICA_INCRBY, &a[1], NULL, 0, decr ? -delta : delta);
}

/* STRLEN key: the length of the value a linearizable GET returns (0 for a missing key). */
void cmd_strlen(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    (void)argc;
    it->on_reply = done_strlen;
    it->done = false;
    server_request(n, c, it, 0, REPLICA_GET, &a[1], NULL, 0, 0);
}

/* GETRANGE key start end (and its old name SUBSTR): the range is cut from a linearizable GET's
 * value as Redis cuts it. */
void cmd_getrange(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                  uint32_t argc)
{
    (void)argc;
    if (!arg_int64(&a[2], &it->a1) || !arg_int64(&a[3], &it->a2)) {
        add_error(it, "ERR value is not an integer or out of range");
        return;
    }
    it->on_reply = done_getrange;
    it->done = false;
    server_request(n, c, it, 0, REPLICA_GET, &a[1], NULL, 0, 0);
}
