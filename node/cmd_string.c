/*
 * cmd_string.c — the string commands (Redis's t_string.c): GET, SET with every option, SETNX,
 * SETEX, PSETEX, GETSET, GETDEL, GETEX, MGET, MSET, MSETNX, INCR/DECR/INCRBY/DECRBY,
 * INCRBYFLOAT, APPEND, SETRANGE, STRLEN, GETRANGE/SUBSTR. Each parses Redis's syntax and makes
 * the checks Redis makes before it looks at a key (with Redis's words), then hands ONE state
 * machine op (core/kv/kv.h "version 2") to data_submit: a write is one log entry, stamped with
 * the leader's time; a read is a linearizable ReadIndex read on the node that serves it. What
 * depends on the data or the clock (NX/XX, a non-integer value, overflows, sizes) is decided
 * by the state machine, which answers Redis's errors. Arity was checked by the table.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "server.h"

static struct kv_arg karg(const struct resp_arg *a)
{
    return (struct kv_arg){.p = a->len > 0 ? a->ptr : NULL, .len = (uint32_t)a->len};
}

/* An op of code over the arguments a[from .. argc) (borrowed: n->kargs). */
static void submit_args(struct node *n, struct client *c, struct item *it, uint8_t code,
                        uint16_t flags, int64_t num, const struct resp_arg *a, uint32_t from,
                        uint32_t argc)
{
    for (uint32_t i = from; i < argc; i++)
        n->kargs[i - from] = karg(&a[i]);
    struct kv_op2 op = {.code = code,
                        .db = cur_db(c),
                        .flags = flags,
                        .num = num,
                        .argc = argc - from,
                        .argv = n->kargs};
    data_submit(n, c, it, &op);
}

void expire_time_error(struct item *it, const char *cmd)
{
    add_errorf(it, "ERR invalid expire time in '%s' command", cmd);
}

/* Redis's getExpireMillisecondsOrReply, the part that looks at no key: an integer, positive,
 * and seconds that fit milliseconds. */
static bool expire_arg(struct item *it, const struct resp_arg *a, bool ms, const char *cmd,
                       int64_t *out)
{
    if (!arg_int64(a, out)) {
        add_error(it, "ERR value is not an integer or out of range");
        return false;
    }
    if (*out <= 0 || (!ms && *out > INT64_MAX / 1000)) {
        expire_time_error(it, cmd);
        return false;
    }
    return true;
}

/* ---- GET --------------------------------------------------------------------------------- */

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

/* GET key: in database 0 outside a transaction, the replica's own GET (the hot path); else the
 * GET op. */
void cmd_get(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
             uint32_t argc)
{
    if (c->in_multi || c->db != 0) {
        submit_args(n, c, it, KV_C_GET, 0, 0, a, 1, argc);
        return;
    }
    it->on_reply = done_get;
    it->done = false;
    server_request(n, c, it, 0, REPLICA_GET, &a[1], NULL, 0, 0);
}

/* ---- SET and its options ----------------------------------------------------------------- */

enum { SET_CMD = 0, GETEX_CMD = 1 };

/* Redis's parseExtendedStringArgumentsOrReply for SET (kind SET_CMD) and GETEX (GETEX_CMD),
 * from a[from]: the flags (KV_F_*) and the time argument, or false with the error replied. */
static bool parse_ext(struct item *it, const struct resp_arg *a, uint32_t from, uint32_t argc,
                      int kind, uint16_t *flags, const struct resp_arg **time)
{
    *flags = 0;
    *time = NULL;
    bool set = kind == SET_CMD;
    for (uint32_t j = from; j < argc; j++) {
        const struct resp_arg *o = &a[j];
        bool next = j + 1 < argc;
        uint16_t f = *flags;
        bool timed = (f & KV_F_EXP) != 0;
        if (arg_is(o, "NX") && !(f & KV_F_XX) && set) {
            *flags |= KV_F_NX;
        } else if (arg_is(o, "XX") && !(f & KV_F_NX) && set) {
            *flags |= KV_F_XX;
        } else if (arg_is(o, "GET") && set) {
            *flags |= KV_F_GET;
        } else if (arg_is(o, "KEEPTTL") && !(f & KV_F_PERSIST) && !timed && set) {
            *flags |= KV_F_KEEPTTL;
        } else if (arg_is(o, "PERSIST") && !set && !timed && !(f & KV_F_KEEPTTL)) {
            *flags |= KV_F_PERSIST;
        } else if ((arg_is(o, "EX") || arg_is(o, "PX") || arg_is(o, "EXAT") || arg_is(o, "PXAT")) &&
                   !(f & (KV_F_KEEPTTL | KV_F_PERSIST)) && next) {
            /* Redis: the same unit may repeat (the last wins), two different ones may not. */
            uint16_t unit = KV_F_EXP | (arg_is(o, "PX") || arg_is(o, "PXAT") ? KV_F_MS : 0) |
                            (arg_is(o, "EXAT") || arg_is(o, "PXAT") ? KV_F_ABS : 0);
            if (timed && (f & (KV_F_EXP | KV_F_MS | KV_F_ABS)) != unit) {
                add_error(it, "ERR syntax error");
                return false;
            }
            *flags = (uint16_t)((f & ~(KV_F_MS | KV_F_ABS)) | unit);
            *time = &a[++j];
        } else {
            add_error(it, "ERR syntax error");
            return false;
        }
    }
    return true;
}

/* SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL] */
void cmd_set(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
             uint32_t argc)
{
    uint16_t flags;
    const struct resp_arg *time;
    int64_t num = 0;
    if (!parse_ext(it, a, 3, argc, SET_CMD, &flags, &time) ||
        (time != NULL && !expire_arg(it, time, flags & KV_F_MS, "set", &num)))
        return;
    submit_args(n, c, it, KV_C_SET, flags, num, a, 1, 3);
}

/* SETEX key seconds value, PSETEX key ms value */
void cmd_setex(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
               uint32_t argc)
{
    (void)argc;
    bool ms = arg_is(&a[0], "PSETEX");
    int64_t num = 0;
    if (!expire_arg(it, &a[2], ms, ms ? "psetex" : "setex", &num))
        return;
    struct resp_arg kv[2] = {a[1], a[3]};
    submit_args(n, c, it, KV_C_SET, (uint16_t)(KV_F_EXP | KV_F_SETEX | (ms ? KV_F_MS : 0)), num, kv,
                0, 2);
}

/* GETEX with a bad time: Redis looks the key up first (a missing key is nil) and only then
 * refuses the time. The probe is an EXISTS read; the error waits in aux. */
static void done_getex_bad(struct node *n, struct item *it, uint32_t part,
                           const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    struct kv_res_iter ri;
    struct kv_res_item r;
    kv_res_begin(&ri, rp->val, rp->val_len);
    if (kv_res_next(&ri, &r) && r.type == KV_RES_INT && r.num == 0) {
        add_null(it);
        return;
    }
    char line[256];
    size_t len =
        it->aux.len - it->aux.off < sizeof(line) - 1 ? it->aux.len - it->aux.off : sizeof(line) - 1;
    memcpy(line, it->aux.p + it->aux.off, len);
    line[len] = 0;
    add_error(it, line);
}

/* GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST] */
void cmd_getex(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
               uint32_t argc)
{
    uint16_t flags;
    const struct resp_arg *time;
    int64_t num = 0;
    if (!parse_ext(it, a, 2, argc, GETEX_CMD, &flags, &time))
        return;
    if (time != NULL && !expire_arg(it, time, flags & KV_F_MS, "getex", &num)) {
        /* it->bytes holds the error line: keep its text for after the probe. */
        const uint8_t *e = it->bytes.p + it->bytes.off;
        size_t el = buf_unread(&it->bytes);
        if (c->in_multi && el >= 3 && el < 200 && e[0] == '-') {
            char text[200];
            snprintf(text, sizeof(text), "%.*s", (int)(el - 3), (const char *)e + 1);
            it->bytes.off = it->bytes.len = 0;
            n->kargs[0] =
                (struct kv_arg){.p = a[1].len ? a[1].ptr : NULL, .len = (uint32_t)a[1].len};
            struct kv_op2 op = {.code = KV_C_EXISTS, .db = cur_db(c), .argc = 1, .argv = n->kargs};
            multi_queue_probe(n, c, it, &op, text);
            return;
        }
        if (!c->in_multi && el >= 3 && e[0] == '-' && buf_append(&it->aux, e + 1, el - 3)) {
            it->bytes.off = it->bytes.len = 0;
            submit_args(n, c, it, KV_C_EXISTS, 0, 0, a, 1, 2);
            it->on_reply = done_getex_bad;
        }
        return;
    }
    submit_args(n, c, it, KV_C_GETEX, flags, num, a, 1, 2);
}

/* GETSET key value = SET key value GET */
void cmd_getset(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    submit_args(n, c, it, KV_C_SET, KV_F_GET, 0, a, 1, argc);
}

/* Commands that are one op over all their arguments: SETNX, GETDEL, APPEND, INCRBYFLOAT,
 * STRLEN, MGET (the row's name says which). */
void cmd_string_op(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                   uint32_t argc)
{
    uint8_t code = arg_is(&a[0], "SETNX")         ? KV_C_SETNX
                   : arg_is(&a[0], "GETDEL")      ? KV_C_GETDEL
                   : arg_is(&a[0], "APPEND")      ? KV_C_APPEND
                   : arg_is(&a[0], "INCRBYFLOAT") ? KV_C_INCRBYFLOAT
                   : arg_is(&a[0], "STRLEN")      ? KV_C_STRLEN
                                                  : KV_C_MGET;
    submit_args(n, c, it, code, 0, 0, a, 1, argc);
}

/* MSET k1 v1 k2 v2 ..., MSETNX: one op, every pair at once or none, as Redis. */
void cmd_mset(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    bool nx = arg_is(&a[0], "MSETNX");
    if (argc % 2 == 0) {
        cmd_arity_error(it, cmd_lookup(a[0].ptr, a[0].len));
        return;
    }
    submit_args(n, c, it, nx ? KV_C_MSETNX : KV_C_MSET, 0, 0, a, 1, argc);
}

/* MGET k1 k2 ...: one op, read at one applied index after one read barrier. */
void cmd_mget(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    submit_args(n, c, it, KV_C_MGET, 0, 0, a, 1, argc);
}

/* INCR key, DECR key, INCRBY key n, DECRBY key n: one INCRBY op, decided at apply time (a
 * missing key counts as 0; Redis's errors for a value that is not an integer, an overflow). */
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
    submit_args(n, c, it, KV_C_INCRBY, 0, decr ? -delta : delta, a, 1, 2);
}

/* STRLEN key */
void cmd_strlen(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    submit_args(n, c, it, KV_C_STRLEN, 0, 0, a, 1, argc);
}

/* GETRANGE key start end (and its old name SUBSTR): num = start, the end as 8 bytes. */
void cmd_getrange(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                  uint32_t argc)
{
    (void)argc;
    int64_t start = 0, end = 0;
    if (!arg_int64(&a[2], &start) || !arg_int64(&a[3], &end)) {
        add_error(it, "ERR value is not an integer or out of range");
        return;
    }
    uint8_t e[8];
    for (int i = 0; i < 8; i++)
        e[i] = (uint8_t)((uint64_t)end >> (8 * i));
    struct resp_arg args[2] = {a[1], {.ptr = e, .len = 8}};
    submit_args(n, c, it, KV_C_GETRANGE, 0, start, args, 0, 2);
}

/* SETRANGE key offset value */
void cmd_setrange(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                  uint32_t argc)
{
    (void)argc;
    int64_t off = 0;
    if (!arg_int64(&a[2], &off)) {
        add_error(it, "ERR value is not an integer or out of range");
        return;
    }
    if (off < 0) {
        add_error(it, "ERR offset is out of range");
        return;
    }
    struct resp_arg kv[2] = {a[1], a[3]};
    submit_args(n, c, it, KV_C_SETRANGE, 0, off, kv, 0, 2);
}
