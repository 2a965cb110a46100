/*
 * cmd_multi.c — state-machine commands and transactions (Redis's multi.c): how a data command
 * reaches the state machine (data_submit: one kv op, core/kv/kv.h "version 2", as ONE log entry
 * or a ReadIndex read), how its result becomes RESP (add_kv_res), and MULTI / EXEC / DISCARD /
 * WATCH / UNWATCH.
 *
 * MULTI queues, EXEC submits: every queued data command is one op of ONE transaction entry
 * (kv_cmd2 with KV_CMD2_MULTI), applied atomically on every replica. Between MULTI and EXEC a
 * command is answered +QUEUED; what it will answer is decided as Redis decides it:
 *   - unknown command, wrong arity, NOAUTH: the error now, and EXEC answers EXECABORT
 *     (commands.c, multi_dirty);
 *   - a syntax or value error of a queued command (SET k v BOGUS): QUEUED, and its slot of
 *     EXEC's reply is that error (as Redis, which finds it when EXEC runs the command);
 *   - PING, ECHO, SELECT: their reply is made when queued (they read nothing replicated);
 *     SELECT changes the database of the commands queued after it, and the connection's at EXEC;
 *   - any other command (KEYS, SCAN, CLIENT, INFO ...): its slot is an error (DEVIATIONS.md).
 * Queue entries (c->multi_q): 'O' + an op in the kv op layout ([code u8][db u8][flags u16]
 * [num i64][argc u32] argc x [len u32][bytes]); 'C' + [len u32] + the reply's RESP bytes; 'G'
 * + an EXISTS op + [len u32][error text]: nil if the key is missing, else the error (GETEX
 * with a bad time, which Redis refuses only for a key that exists).
 *
 * WATCH k...: a linearizable read (KV_C_WATCH, through ReadIndex) gives each key's version
 * (its mod index, 0 if absent) and the watch point; EXEC carries them and the state machine
 * aborts the transaction (nil array) if any changed (kv.h WATCH). While a WATCH is in flight
 * its connection parses nothing more (conn.c), so an EXEC after it carries its versions.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "server.h"

/* ---- results ----------------------------------------------------------------------------- */

static void le_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void add_text(struct item *it, const struct kv_res_item *r, bool error)
{
    if (!error && r->len == 2 && memcmp(r->p, "OK", 2) == 0) {
        add_raw(it, "+OK\r\n", 5); /* most writes' answer: the bytes add_simple would write */
        return;
    }
    char line[1024];
    size_t len = r->len < sizeof(line) - 1 ? r->len : sizeof(line) - 1;
    memcpy(line, r->p, len);
    line[len] = 0;
    if (error)
        add_error(it, line);
    else
        add_simple(it, line);
}

/* One value and its elements from a checked result (pre-order). false: none left. */
static bool add_kv_value(struct node *n, struct item *it, struct kv_res_iter *ri)
{
    struct kv_res_item r;
    if (!kv_res_next(ri, &r))
        return false;
    switch (r.type) {
    case KV_RES_STATUS:
        add_text(it, &r, false);
        break;
    case KV_RES_ERROR:
        add_text(it, &r, true);
        n->stats.total_errors++;
        break;
    case KV_RES_INT:
        add_integer(it, r.num);
        break;
    case KV_RES_BULK:
        add_bulk(it, r.p, r.len);
        break;
    case KV_RES_NIL:
        add_null(it);
        break;
    case KV_RES_NIL_ARRAY:
        add_null_array(it);
        break;
    case KV_RES_ARRAY:
        add_array(it, r.num);
        for (int64_t i = 0; i < r.num; i++)
            if (!add_kv_value(n, it, ri))
                return false;
        break;
    default:
        return false;
    }
    return true;
}

void add_kv_res(struct node *n, struct item *it, const uint8_t *res, size_t len)
{
    struct kv_res_iter ri;
    kv_res_begin(&ri, res, len);
    if (!add_kv_value(n, it, &ri))
        add_error(it, "ERR malformed state machine result");
}

static void done_res(struct node *n, struct item *it, uint32_t part, const struct replica_reply *rp)
{
    (void)part;
    add_kv_res(n, it, rp->val, rp->val_len);
}

uint8_t cur_db(const struct client *c)
{
    return c->in_multi ? c->multi_db : c->db;
}

/* ---- submitting ---------------------------------------------------------------------------- */

static bool queue_op(struct client *c, const struct kv_op2 *op)
{
    size_t need = 1 + 16;
    for (uint32_t i = 0; i < op->argc; i++)
        need += 4 + (size_t)op->argv[i].len;
    if (!buf_reserve(&c->multi_q, need))
        return false;
    uint8_t *p = c->multi_q.p + c->multi_q.len;
    p[0] = 'O';
    p[1] = op->code;
    p[2] = op->db;
    le_put(p + 3, op->flags, 2);
    le_put(p + 5, (uint64_t)op->num, 8);
    le_put(p + 13, op->argc, 4);
    size_t pos = 17;
    for (uint32_t i = 0; i < op->argc; i++) {
        le_put(p + pos, op->argv[i].len, 4);
        if (op->argv[i].len > 0)
            memcpy(p + pos + 4, op->argv[i].p, op->argv[i].len);
        pos += 4 + op->argv[i].len;
    }
    c->multi_q.len += need;
    return true;
}

void data_submit(struct node *n, struct client *c, struct item *it, const struct kv_op2 *op)
{
    if (c->in_multi) {
        if (!queue_op(c, op))
            add_error(it, "ERR out of memory");
        else
            it->queued = true;
        return;
    }
    struct kv_cmd2 cmd = {.n_ops = 1, .ops = op};
    it->on_reply = done_res;
    it->on_finish = NULL;
    it->is_read = op->code < KV_C_SET; /* a write's outcome at shutdown is unknown (N6) */
    if (server_cmd(n, c, it, &cmd))
        return;
    size_t size = kv_cmd2_size(&cmd);
    if (size > n->lim.max_command)
        add_errorf(it, "ERR command of %zu bytes over the %llu-byte limit (max-value-bytes)", size,
                   (unsigned long long)n->lim.max_command);
    else if (kv_op_check(op, NULL) != RK_OK)
        add_error(it, "ERR key over the 64 KiB limit");
    else
        add_error(it, "ERR out of memory");
}

/* Between MULTI and EXEC: an EXISTS op whose slot of EXEC's reply is nil if the key is
 * missing, else the error text (GETEX with a bad time: Redis looks the key up first). */
void multi_queue_probe(struct node *n, struct client *c, struct item *it, const struct kv_op2 *op,
                       const char *text)
{
    (void)n;
    size_t at = c->multi_q.len, tl = strlen(text);
    uint8_t len[4];
    le_put(len, tl, 4);
    if (!queue_op(c, op) || !buf_append(&c->multi_q, len, 4) ||
        !buf_append(&c->multi_q, text, tl)) {
        c->multi_q.len = at;
        add_error(it, "ERR out of memory");
        return;
    }
    c->multi_q.p[at] = 'G';
    it->queued = true;
}

/* commands.c, for a command run between MULTI and EXEC: the handler either queued an op
 * (it->queued) or answered at once (its reply is kept for EXEC's array); either way the
 * client now reads +QUEUED. */
void multi_queued(struct node *n, struct client *c, struct item *it)
{
    (void)n;
    bool ok = true;
    if (!it->queued) {
        size_t len = buf_unread(&it->bytes);
        ok = buf_reserve(&c->multi_q, 5 + len);
        if (ok) {
            uint8_t *p = c->multi_q.p + c->multi_q.len;
            p[0] = 'C';
            le_put(p + 1, len, 4);
            memcpy(p + 5, it->bytes.p + it->bytes.off, len);
            c->multi_q.len += 5 + len;
        }
    }
    c->multi_n++;
    it->bytes.off = it->bytes.len = 0;
    it->queued = false;
    it->done = true;
    it->waiting = 0;
    it->on_reply = NULL;
    it->on_finish = NULL;
    it->on_read = NULL;
    it->aux.off = it->aux.len = 0;
    if (!ok) {
        c->multi_dirty = true;
        add_error(it, "ERR out of memory");
        return;
    }
    add_simple(it, "QUEUED");
}

/* A queued command whose slot of EXEC's reply is an error (commands.c: not offered in MULTI). */
void multi_queue_error(struct node *n, struct client *c, struct item *it, const char *text)
{
    add_error(it, text);
    multi_queued(n, c, it);
}

static void unwatch(struct client *c)
{
    c->watch_q.off = c->watch_q.len = 0;
    c->watch_n = 0;
    c->watch_index = 0;
}

void multi_reset(struct client *c)
{
    c->in_multi = c->multi_dirty = false;
    c->multi_n = 0;
    c->multi_q.off = c->multi_q.len = 0;
    if (c->multi_q.cap > ITEM_BUF_KEEP)
        buf_free(&c->multi_q);
    unwatch(c);
    if (c->watch_q.cap > ITEM_BUF_KEEP)
        buf_free(&c->watch_q);
}

/* ---- MULTI, EXEC, DISCARD ------------------------------------------------------------------ */

void cmd_multi(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
               uint32_t argc)
{
    (void)n;
    (void)a;
    (void)argc;
    if (c->in_multi) {
        add_error(it, "ERR MULTI calls can not be nested");
        return;
    }
    c->in_multi = true;
    c->multi_dirty = false;
    c->multi_n = 0;
    c->multi_db = c->db;
    c->multi_q.off = c->multi_q.len = 0;
    add_simple(it, "OK");
}

void cmd_discard(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                 uint32_t argc)
{
    (void)n;
    (void)a;
    (void)argc;
    if (!c->in_multi) {
        add_error(it, "ERR DISCARD without MULTI");
        return;
    }
    multi_reset(c);
    add_simple(it, "OK");
}

/* An op entry of a queue: its size, and the op with its args into args[]. */
static size_t read_op(const uint8_t *p, struct kv_op2 *op, struct kv_arg *args)
{
    op->code = p[1];
    op->db = p[2];
    op->flags = (uint16_t)le_get(p + 3, 2);
    op->num = (int64_t)le_get(p + 5, 8);
    op->argc = (uint32_t)le_get(p + 13, 4);
    op->argv = args;
    size_t pos = 17;
    for (uint32_t i = 0; i < op->argc; i++) {
        uint32_t len = (uint32_t)le_get(p + pos, 4);
        if (args != NULL)
            args[i] = (struct kv_arg){.p = len > 0 ? p + pos + 4 : NULL, .len = len};
        pos += 4 + len;
    }
    return pos;
}

/* EXEC's reply: the queue (kept in it->aux) in order, each op's slot from the state machine's
 * array, each other slot as it was made when queued. */
static void exec_reply(struct node *n, struct item *it, const uint8_t *res, size_t res_len)
{
    struct kv_res_iter ri;
    struct kv_res_item top = {0};
    if (res != NULL) {
        kv_res_begin(&ri, res, res_len);
        if (!kv_res_next(&ri, &top) || (top.type != KV_RES_ARRAY && top.type != KV_RES_NIL_ARRAY)) {
            add_error(it, "ERR malformed state machine result");
            return;
        }
        if (top.type == KV_RES_NIL_ARRAY) { /* a watched key changed: nothing ran */
            add_null_array(it);
            return;
        }
    }
    add_array(it, it->parts);
    const uint8_t *p = it->aux.p + it->aux.off, *end = it->aux.p + it->aux.len;
    while (p < end) {
        if (p[0] == 'C') {
            size_t len = (size_t)le_get(p + 1, 4);
            add_raw(it, p + 5, len);
            p += 5 + len;
        } else if (p[0] == 'G') {
            struct kv_op2 op;
            p += read_op(p, &op, NULL);
            size_t tl = (size_t)le_get(p, 4);
            struct kv_res_item r;
            if (res != NULL && kv_res_next(&ri, &r) && r.type == KV_RES_INT && r.num == 0) {
                add_null(it);
            } else {
                char text[256];
                snprintf(text, sizeof(text), "%.*s", (int)tl, (const char *)p + 4);
                add_error(it, text);
            }
            p += 4 + tl;
        } else {
            struct kv_op2 op;
            p += read_op(p, &op, NULL);
            if (res == NULL || !add_kv_value(n, it, &ri))
                add_error(it, "ERR malformed state machine result");
        }
    }
}

static void done_exec(struct node *n, struct item *it, uint32_t part,
                      const struct replica_reply *rp)
{
    (void)part;
    exec_reply(n, it, rp->val, rp->val_len);
    /* A SELECT inside a transaction that WATCH could abort takes effect if it ran. */
    if (it->a2 && !(rp->val_len > 0 && rp->val[0] == KV_RES_NIL_ARRAY))
        it->c->db = (uint8_t)it->a1;
}

static void exec_released(struct node *n, struct item *it)
{
    it->c->watch_wait = false;
    n->reparse = true;
}

void cmd_exec(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)a;
    (void)argc;
    if (!c->in_multi) {
        add_error(it, "ERR EXEC without MULTI");
        return;
    }
    if (c->multi_dirty) {
        multi_reset(c);
        add_error(it, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    /* The queue moves to the item (its reply is assembled from it); the ops and watches are
     * read out of it into the transaction's entry. */
    struct buf q = c->multi_q;
    c->multi_q = it->aux;
    it->aux = q;
    it->parts = c->multi_n;
    /* SELECT inside it: the connection's database changes if the transaction runs. Without
     * watches it certainly does; with them, the commands after EXEC wait for its answer. */
    bool held = c->watch_n > 0 && c->multi_db != c->db;
    if (!held)
        c->db = c->multi_db;
    it->a1 = c->multi_db;
    it->a2 = held;
    uint32_t n_ops = 0, n_args = 0;
    for (const uint8_t *p = q.p + q.off, *end = q.p + q.len; p < end;) {
        if (p[0] == 'C') {
            p += 5 + (size_t)le_get(p + 1, 4);
            continue;
        }
        n_ops++;
        n_args += (uint32_t)le_get(p + 13, 4);
        struct kv_op2 op;
        bool probe = p[0] == 'G';
        p += read_op(p, &op, NULL);
        if (probe)
            p += 4 + (size_t)le_get(p, 4);
    }
    if (n_ops == 0 && c->watch_n == 0) {
        exec_reply(n, it, NULL, 0);
        multi_reset(c);
        return;
    }
    struct kv_op2 *ops = calloc(n_ops ? n_ops : 1, sizeof(*ops));
    struct kv_arg *args = calloc(n_args ? n_args : 1, sizeof(*args));
    struct kv_watch *ws = calloc(c->watch_n ? c->watch_n : 1, sizeof(*ws));
    bool ok = ops != NULL && args != NULL && ws != NULL && n_ops <= KV_CMD2_MAX_OPS;
    if (ok) {
        uint32_t k = 0, ka = 0;
        for (const uint8_t *p = q.p + q.off, *end = q.p + q.len; p < end;) {
            if (p[0] == 'C') {
                p += 5 + (size_t)le_get(p + 1, 4);
                continue;
            }
            bool probe = p[0] == 'G';
            p += read_op(p, &ops[k], args + ka);
            if (probe)
                p += 4 + (size_t)le_get(p, 4);
            ka += ops[k].argc;
            k++;
        }
        const uint8_t *w = c->watch_q.p + c->watch_q.off;
        for (uint32_t i = 0; i < c->watch_n; i++) {
            ws[i].db = w[0];
            ws[i].version = le_get(w + 1, 8);
            ws[i].key_len = (uint32_t)le_get(w + 9, 4);
            ws[i].key = w + 13;
            w += 13 + ws[i].key_len;
        }
        struct kv_cmd2 cmd = {.flags = KV_CMD2_MULTI,
                              .watch_index = c->watch_n > 0 ? c->watch_index : 0,
                              .n_watch = c->watch_n,
                              .watches = ws,
                              .n_ops = n_ops,
                              .ops = ops};
        it->on_reply = done_exec;
        it->is_read = false;
        if (held) {
            it->on_done = exec_released;
            c->watch_wait = true;
        }
        ok = server_cmd(n, c, it, &cmd);
        if (!ok && held) {
            it->on_done = NULL;
            c->watch_wait = false;
        }
    }
    free(ops);
    free(args);
    free(ws);
    multi_reset(c);
    if (!ok)
        add_error(it, "EXECABORT Transaction discarded because it is over the request limits.");
}

/* ---- WATCH, UNWATCH ------------------------------------------------------------------------ */

/* The reply of the WATCH read: [:point, :version per key]; the keys wait in it->aux as
 * [len u32][key]... in order. */
static void done_watch(struct node *n, struct item *it, uint32_t part,
                       const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    struct client *c = it->c;
    struct kv_res_iter ri;
    struct kv_res_item r;
    kv_res_begin(&ri, rp->val, rp->val_len);
    if (!kv_res_next(&ri, &r) || r.type != KV_RES_ARRAY || !kv_res_next(&ri, &r) ||
        r.type != KV_RES_INT) {
        add_error(it, "ERR malformed state machine result");
        return;
    }
    uint64_t point = (uint64_t)r.num;
    const uint8_t *k = it->aux.p + it->aux.off;
    for (int64_t i = 0; i < it->a1; i++) {
        uint32_t len = (uint32_t)le_get(k, 4);
        if (!kv_res_next(&ri, &r) || r.type != KV_RES_INT) {
            add_error(it, "ERR malformed state machine result");
            return;
        }
        if (!buf_reserve(&c->watch_q, 13 + (size_t)len)) {
            add_error(it, "ERR out of memory");
            return;
        }
        uint8_t *w = c->watch_q.p + c->watch_q.len;
        w[0] = (uint8_t)it->a2;
        le_put(w + 1, (uint64_t)r.num, 8);
        le_put(w + 9, len, 4);
        memcpy(w + 13, k + 4, len);
        c->watch_q.len += 13 + (size_t)len;
        c->watch_n++;
        k += 4 + len;
    }
    /* One watch point for all: the earliest is the conservative one (kv.h WATCH). */
    if (c->watch_index == 0 || point < c->watch_index)
        c->watch_index = point;
    add_simple(it, "OK");
}

static void watch_released(struct node *n, struct item *it)
{
    it->c->watch_wait = false;
    n->reparse = true;
}

void cmd_watch(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
               uint32_t argc)
{
    if (c->in_multi) {
        add_error(it, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    uint32_t keys = argc - 1;
    if ((uint64_t)c->watch_n + keys > KV_CMD2_MAX_WATCH) {
        add_errorf(it, "ERR more than %u watched keys", KV_CMD2_MAX_WATCH);
        return;
    }
    for (uint32_t i = 0; i < keys; i++) {
        uint8_t len[4];
        le_put(len, a[1 + i].len, 4);
        if (!buf_append(&it->aux, len, 4) || !buf_append(&it->aux, a[1 + i].ptr, a[1 + i].len)) {
            add_error(it, "ERR out of memory");
            return;
        }
        n->kargs[i] = (struct kv_arg){.p = a[1 + i].ptr, .len = (uint32_t)a[1 + i].len};
    }
    it->a1 = keys;
    it->a2 = c->db;
    struct kv_op2 op = {.code = KV_C_WATCH, .db = c->db, .argc = keys, .argv = n->kargs};
    struct kv_cmd2 cmd = {.n_ops = 1, .ops = &op};
    it->on_reply = done_watch;
    it->on_done = watch_released;
    c->watch_wait = true; /* before: a request refused at once completes inside server_cmd */
    if (!server_cmd(n, c, it, &cmd)) {
        c->watch_wait = false;
        it->on_done = NULL;
        add_error(it, "ERR WATCH over the request limits");
    }
}

void cmd_unwatch(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                 uint32_t argc)
{
    (void)n;
    (void)a;
    (void)argc;
    /* Inside MULTI it is queued and changes nothing: EXEC checks the watches first (and
     * forgets them after, as Redis). */
    if (!c->in_multi)
        unwatch(c);
    add_simple(it, "OK");
}
