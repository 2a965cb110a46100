/*
 * cmd_keyspace.c — the keyspace commands (Redis's db.c): DEL, EXISTS, TOUCH, TYPE, KEYS, SCAN,
 * RANDOMKEY, DBSIZE. Every value raftkv stores is a string. KEYS, SCAN, RANDOMKEY and DBSIZE
 * read the state machine once a read barrier (a ReadIndex round) of their own has been
 * answered, which makes them linearizable like GET.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "glob.h"
#include "server.h"

/* The reply of a DEL command (REPLICA_CMD): its result is the count, an integer. */
static void count_del(struct node *n, struct item *it, uint32_t part,
                      const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    struct kv_res_iter ri;
    struct kv_res_item res;
    kv_res_begin(&ri, rp->val, rp->val_len);
    if (kv_res_next(&ri, &res) && res.type == KV_RES_INT)
        it->sum += res.num;
}

static void finish_sum(struct node *n, struct item *it)
{
    (void)n;
    add_integer(it, it->sum);
}

/* DEL (and UNLINK) key...: ONE entry that removes every key at once, as Redis's DEL; the
 * reply is the count, decided when it applies. */
void cmd_del(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
             uint32_t argc)
{
    uint32_t keys = argc - 1;
    for (uint32_t i = 0; i < keys; i++)
        n->kargs[i] = (struct kv_arg){.p = a[1 + i].ptr, .len = (uint32_t)a[1 + i].len};
    struct kv_op2 op = {.code = KV_C_DEL, .db = 0, .argc = keys, .argv = n->kargs};
    struct kv_cmd2 cmd = {.n_ops = 1, .ops = &op};
    it->on_reply = count_del;
    it->on_finish = finish_sum;
    if (!server_cmd(n, c, it, &cmd))
        add_error(it, "ERR DEL over the request limits");
}

/* The one reply of REPLICA_MGET: how many of the keys (repeats counted, as Redis) exist. */
static void count_found(struct node *n, struct item *it, uint32_t part,
                        const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    struct replica_mget_iter mi;
    replica_mget_begin(&mi, rp->val, rp->val_len);
    bool found;
    const uint8_t *val;
    uint32_t val_len;
    while (replica_mget_next(&mi, &found, &val, &val_len))
        it->sum += found;
}

/* EXISTS (and TOUCH) key...: one read barrier, every key read at one applied index. */
void cmd_exists(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    it->on_reply = count_found;
    it->on_finish = finish_sum;
    if (!server_mget(n, c, it, &a[1], argc - 1))
        add_error(it, "ERR EXISTS over the request limits");
}

static void done_type(struct node *n, struct item *it, uint32_t part,
                      const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    add_simple(it, rp->status == REPLICA_OK ? "string" : "none");
}

void cmd_type(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)argc;
    it->on_reply = done_type;
    it->done = false;
    server_request(n, c, it, 0, REPLICA_GET, &a[1], NULL, 0, 0);
}

/* ---- KEYS, SCAN -------------------------------------------------------------------------- */

struct keys_scan {
    const uint8_t *pat;
    size_t pat_len;
    struct item *out; /* encodes the keys (n->tmp's bytes, in the item's protocol) */
    int64_t n;
    bool oom;
};

static bool keys_one(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct keys_scan *ks = ctx;
    if (!glob_match(ks->pat, ks->pat_len, key, key_len))
        return true;
    size_t before = ks->out->bytes.len;
    add_bulk(ks->out, key, key_len);
    if (ks->out->bytes.len == before) {
        ks->oom = true;
        return false;
    }
    ks->n++;
    return true;
}

/* Every matching key in one reply, from the state machine as it is once the read barrier has
 * passed. The keys are encoded into a scratch item first: their count comes before them. */
static void keys_finish(struct node *n, struct item *it)
{
    struct item scratch = {.resp = it->resp, .bytes = n->tmp};
    scratch.bytes.off = scratch.bytes.len = 0;
    struct keys_scan ks = {.pat = it->aux.p, .pat_len = it->aux.len, .out = &scratch};
    int rc = it->no_match ? RK_OK : server_scan_keys(n, keys_one, &ks);
    n->tmp = scratch.bytes;
    if (rc != RK_OK || ks.oom) {
        add_error(it, rc != RK_OK ? "ERR cannot read the store" : "ERR out of memory");
    } else {
        if (it->sum == 1) { /* SCAN */
            add_array(it, 2);
            add_bulk(it, "0", 1);
        }
        add_array(it, ks.n);
        add_raw(it, n->tmp.p, n->tmp.len);
    }
    if (n->tmp.cap > ITEM_BUF_KEEP)
        buf_free(&n->tmp);
}

static void keys_start(struct node *n, struct client *c, struct item *it,
                       const struct resp_arg *pat, bool scan)
{
    if (!buf_append(&it->aux, pat->ptr, pat->len)) {
        add_error(it, "ERR out of memory");
        return;
    }
    it->sum = scan;
    it->on_finish = keys_finish;
    it->done = false;
    server_barrier(n, c, it);
}

void cmd_keys(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)argc;
    keys_start(n, c, it, &a[1], false);
}

/* Redis's parseScanCursorOrReply: strtoul, so "-1" and "+5" are cursors; a leading space,
 * trailing bytes or an overflow are not. */
static bool scan_cursor(const struct resp_arg *a, unsigned long *cursor)
{
    char text[64];
    if (a->len >= sizeof(text) || memchr(a->ptr, 0, a->len) != NULL)
        return false;
    memcpy(text, a->ptr, a->len);
    text[a->len] = 0;
    if (isspace((unsigned char)text[0]))
        return false;
    char *end = NULL;
    errno = 0;
    *cursor = strtoul(text, &end, 10);
    return *end == 0 && errno != ERANGE;
}

/* SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]: every match in one call, with cursor 0
 * (Redis allows it: COUNT is a hint). A cursor other than 0 can only be one this node never
 * gave out; the iteration it asks to continue is over: an empty page. */
void cmd_scan(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    static const struct resp_arg star = {.ptr = (const uint8_t *)"*", .len = 1};
    const struct resp_arg *pat = &star;
    unsigned long cursor = 0;
    if (!scan_cursor(&a[1], &cursor)) {
        add_error(it, "ERR invalid cursor");
        return;
    }
    for (uint32_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            add_error(it, "ERR syntax error");
            return;
        }
        if (arg_is(&a[i], "MATCH")) {
            pat = &a[i + 1];
        } else if (arg_is(&a[i], "COUNT")) {
            int64_t count = 0;
            if (!arg_int64(&a[i + 1], &count)) {
                add_error(it, "ERR value is not an integer or out of range");
                return;
            }
            if (count < 1) {
                add_error(it, "ERR syntax error");
                return;
            }
        } else if (arg_is(&a[i], "TYPE")) {
            it->no_match |= !arg_is(&a[i + 1], "string"); /* every value is a string */
        } else {
            add_error(it, "ERR syntax error");
            return;
        }
    }
    it->no_match |= cursor != 0;
    keys_start(n, c, it, pat, true);
}

/* ---- DBSIZE, RANDOMKEY ------------------------------------------------------------------- */

static void dbsize_finish(struct node *n, struct item *it)
{
    add_integer(it, (int64_t)server_key_count(n));
}

void cmd_dbsize(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    (void)a;
    (void)argc;
    it->on_finish = dbsize_finish;
    it->done = false;
    server_barrier(n, c, it);
}

struct pick {
    uint64_t skip;
    struct item *it;
    bool found;
};

static bool pick_one(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct pick *p = ctx;
    if (p->skip > 0) {
        p->skip--;
        return true;
    }
    add_bulk(p->it, key, key_len);
    p->found = true;
    return false;
}

static void randomkey_finish(struct node *n, struct item *it)
{
    uint64_t count = server_key_count(n);
    struct pick p = {.skip = count > 0 ? (uint64_t)random() % count : 0, .it = it};
    if (count > 0 && server_scan_keys(n, pick_one, &p) != RK_OK && !p.found) {
        add_error(it, "ERR cannot read the store");
        return;
    }
    if (!p.found)
        add_null(it);
}

/* RANDOMKEY: a key drawn uniformly from the keyspace (one pass over the keys), nil when empty. */
void cmd_randomkey(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                   uint32_t argc)
{
    (void)a;
    (void)argc;
    it->on_finish = randomkey_finish;
    it->done = false;
    server_barrier(n, c, it);
}
