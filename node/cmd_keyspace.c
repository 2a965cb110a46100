/*
 * cmd_keyspace.c — the keyspace commands (Redis's db.c, expire.c): DEL/UNLINK, EXISTS/TOUCH,
 * TYPE, KEYS, SCAN, RANDOMKEY, DBSIZE, EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT, TTL/PTTL/EXPIRETIME/
 * PEXPIRETIME, PERSIST, RENAME, RENAMENX, COPY, MOVE, FLUSHDB, FLUSHALL, SWAPDB. Every value
 * raftkv stores is a string.
 *
 * Each data command is ONE state-machine op (data_submit, cmd_multi.c). KEYS, SCAN and
 * RANDOMKEY read the whole database: they are one REPLICA_READ each (one read barrier; the
 * keys are read inside the replica's on_read callback at that one applied index), so they are
 * linearizable like GET and see every earlier write of their connection.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "commands.h"
#include "common/assert.h"
#include "glob.h"
#include "kv/view.h"
#include "server.h"

static void submit_keys(struct node *n, struct client *c, struct item *it, uint8_t code,
                        uint16_t flags, int64_t num, const struct resp_arg *a, uint32_t from,
                        uint32_t argc)
{
    for (uint32_t i = from; i < argc; i++)
        n->kargs[i - from] =
            (struct kv_arg){.p = a[i].len > 0 ? a[i].ptr : NULL, .len = (uint32_t)a[i].len};
    struct kv_op2 op = {.code = code,
                        .db = cur_db(c),
                        .flags = flags,
                        .num = num,
                        .argc = argc - from,
                        .argv = n->kargs};
    data_submit(n, c, it, &op);
}

/* Redis's getIntFromObjectOrReply: msg (NULL: Redis's generic words) for what is not an int. */
bool arg_int_reply(struct item *it, const struct resp_arg *a, const char *msg, int64_t *v)
{
    if (!arg_int64(a, v)) {
        add_error(it, msg ? msg : "ERR value is not an integer or out of range");
        return false;
    }
    if (*v < INT32_MIN || *v > INT32_MAX) {
        add_error(it, msg ? msg
                          : "ERR value is out of range, value must between -2147483648 and "
                            "2147483647");
        return false;
    }
    return true;
}

/* DEL, UNLINK, EXISTS, TOUCH, TYPE, TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST, RENAME,
 * RENAMENX, DBSIZE: one op over the arguments (the row's name says which). */
void cmd_key_op(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    static const struct {
        const char *name;
        uint8_t code;
        uint16_t flags;
    } ops[] = {
        {"DEL", KV_C_DEL, 0},
        {"UNLINK", KV_C_DEL, 0},
        {"EXISTS", KV_C_EXISTS, 0},
        {"TOUCH", KV_C_EXISTS, 0},
        {"TYPE", KV_C_TYPE, 0},
        {"TTL", KV_C_TTL, 0},
        {"PTTL", KV_C_TTL, KV_F_MS},
        {"EXPIRETIME", KV_C_TTL, KV_F_ABS},
        {"PEXPIRETIME", KV_C_TTL, KV_F_MS | KV_F_ABS},
        {"PERSIST", KV_C_PERSIST, 0},
        {"RENAME", KV_C_RENAME, 0},
        {"RENAMENX", KV_C_RENAMENX, 0},
        {"DBSIZE", KV_C_DBSIZE, 0},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (arg_is(&a[0], ops[i].name)) {
            submit_keys(n, c, it, ops[i].code, ops[i].flags, 0, a, 1, argc);
            return;
        }
    add_error(it, "ERR unknown key command");
}

/* ---- EXPIRE ------------------------------------------------------------------------------- */

/* EXPIRE key seconds [NX | XX | GT | LT] (and PEXPIRE, EXPIREAT, PEXPIREAT): Redis's
 * expireGenericCommand up to the key lookup. */
void cmd_expire(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    bool ms = arg_is(&a[0], "PEXPIRE") || arg_is(&a[0], "PEXPIREAT");
    bool abs = arg_is(&a[0], "EXPIREAT") || arg_is(&a[0], "PEXPIREAT");
    uint16_t flags = (uint16_t)((ms ? KV_F_MS : 0) | (abs ? KV_F_ABS : 0));
    for (uint32_t j = 3; j < argc; j++) {
        if (arg_is(&a[j], "NX")) {
            flags |= KV_F_NX;
        } else if (arg_is(&a[j], "XX")) {
            flags |= KV_F_XX;
        } else if (arg_is(&a[j], "GT")) {
            flags |= KV_F_GT;
        } else if (arg_is(&a[j], "LT")) {
            flags |= KV_F_LT;
        } else {
            char opt[132];
            arg_quote(opt, sizeof(opt), &a[j]);
            add_errorf(it, "ERR Unsupported option %s", opt);
            return;
        }
    }
    if ((flags & KV_F_NX) && (flags & (KV_F_XX | KV_F_GT | KV_F_LT))) {
        add_error(it, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & KV_F_GT) && (flags & KV_F_LT)) {
        add_error(it, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    int64_t when = 0;
    if (!arg_int64(&a[2], &when)) {
        add_error(it, "ERR value is not an integer or out of range");
        return;
    }
    if (!ms && (when > INT64_MAX / 1000 || when < INT64_MIN / 1000)) {
        char name[16];
        snprintf(name, sizeof(name), "%s%s", ms ? "pexpire" : "expire", abs ? "at" : "");
        expire_time_error(it, name);
        return;
    }
    submit_keys(n, c, it, KV_C_EXPIRE, flags, when, a, 1, 2);
}

/* ---- RENAME, COPY, MOVE, FLUSHDB, FLUSHALL, SWAPDB ----------------------------------------- */

/* COPY source destination [DB destination-db] [REPLACE] */
void cmd_copy(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    int64_t db = cur_db(c);
    uint16_t flags = 0;
    for (uint32_t j = 3; j < argc; j++) {
        if (arg_is(&a[j], "REPLACE")) {
            flags |= KV_F_REPLACE;
        } else if (arg_is(&a[j], "DB") && j + 1 < argc) {
            if (!arg_int_reply(it, &a[j + 1], NULL, &db))
                return;
            if (db < 0 || db >= (int64_t)n->opt.databases) {
                add_error(it, "ERR DB index is out of range");
                return;
            }
            j++;
        } else {
            add_error(it, "ERR syntax error");
            return;
        }
    }
    if (db == cur_db(c) && a[1].len == a[2].len && memcmp(a[1].ptr, a[2].ptr, a[1].len) == 0) {
        add_error(it, "ERR source and destination objects are the same");
        return;
    }
    submit_keys(n, c, it, KV_C_COPY, flags, db, a, 1, 3);
}

/* MOVE key db */
void cmd_move(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)argc;
    int64_t db = 0;
    if (!arg_int_reply(it, &a[2], NULL, &db))
        return;
    if (db < 0 || db >= (int64_t)n->opt.databases) {
        add_error(it, "ERR DB index is out of range");
        return;
    }
    if (db == cur_db(c)) {
        add_error(it, "ERR source and destination objects are the same");
        return;
    }
    submit_keys(n, c, it, KV_C_MOVE, 0, db, a, 1, 2);
}

/* FLUSHDB [ASYNC | SYNC], FLUSHALL [ASYNC | SYNC]: the option changes nothing here. */
void cmd_flush(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
               uint32_t argc)
{
    if (argc > 2 || (argc == 2 && !arg_is(&a[1], "ASYNC") && !arg_is(&a[1], "SYNC"))) {
        add_error(it, "ERR syntax error");
        return;
    }
    bool all = arg_is(&a[0], "FLUSHALL");
    struct kv_op2 op = {.code = all ? KV_C_FLUSHALL : KV_C_FLUSHDB, .db = all ? 0 : cur_db(c)};
    data_submit(n, c, it, &op);
}

/* SWAPDB index1 index2 */
void cmd_swapdb(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    (void)argc;
    int64_t d1 = 0, d2 = 0;
    if (!arg_int_reply(it, &a[1], "ERR invalid first DB index", &d1) ||
        !arg_int_reply(it, &a[2], "ERR invalid second DB index", &d2))
        return;
    if (d1 < 0 || d2 < 0 || d1 >= (int64_t)n->opt.databases || d2 >= (int64_t)n->opt.databases) {
        add_error(it, "ERR DB index is out of range");
        return;
    }
    struct kv_op2 op = {.code = KV_C_SWAPDB, .db = (uint8_t)d1, .num = d2};
    data_submit(n, c, it, &op);
}

/* ---- KEYS, SCAN, RANDOMKEY (REPLICA_READ) -------------------------------------------------- */

struct keys_scan {
    const uint8_t *pat;
    size_t pat_len;
    struct item *out; /* encodes the keys (n->tmp's bytes, in the item's protocol) */
    int64_t n;
    bool oom;
    bool none; /* SCAN TYPE of a type no key has */
};

static bool keys_one(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct keys_scan *ks = ctx;
    if (ks->none || !glob_match(ks->pat, ks->pat_len, key, key_len))
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

/* A SCAN page passes over at least this many of the store's records (COUNT is a hint; Redis
 * returns more too): a round trip per 10 keys would make a full iteration slow for nothing. */
#define SCAN_PAGE_MIN 1000u
/* The most records a page of a sparse database reads (a few ms). */
#define SCAN_SPREAD_MAX 65536u

static void keys_walk_start(struct node *n, struct item *it, uint8_t db);

/* One page (SCAN) read inside the replica's on_read callback: the state machine as of the
 * read's applied index; or (KEYS) the start of a walk of a view at that index. The keys are
 * encoded into a scratch item first: their count comes before them. */
static void keys_read(struct node *n, struct item *it)
{
    struct item scratch = {.resp = it->resp, .bytes = n->tmp};
    scratch.bytes.off = scratch.bytes.len = 0;
    /* aux: [db u8][scan u8][cursor u64][count u64][pattern] */
    const uint8_t *h = it->aux.p + it->aux.off;
    uint8_t db = h[0];
    bool scan = h[1] != 0;
    uint64_t cursor, count;
    memcpy(&cursor, h + 2, 8);
    memcpy(&count, h + 10, 8);
    struct keys_scan ks = {
        .pat = h + 18, .pat_len = it->aux.len - it->aux.off - 18, .out = &scratch};
    uint64_t next = 0;
    int rc = RK_OK;
    if (scan) {
        ks.none = it->no_match; /* the page still advances the cursor, with no key */
        /* The store holds every database: a page reads records in proportion to the share of
         * them this one has (so that it holds about COUNT keys), up to a bound on its work. */
        uint64_t live = kv_dbsize(server_kv(n), db), total = 0;
        for (uint8_t d = 0; d < KV_DBS; d++)
            total += kv_dbsize(server_kv(n), d);
        uint64_t page = count < SCAN_PAGE_MIN ? SCAN_PAGE_MIN : count;
        if (live > 0 && total / live > 1) {
            uint64_t spread =
                total / live > SCAN_SPREAD_MAX / page ? SCAN_SPREAD_MAX : page * (total / live);
            page = spread > page ? spread : page;
        }
        if (live > 0)
            rc = server_scan_db_range(n, db, cursor, page, keys_one, &ks, &next);
    } else {
        keys_walk_start(n, it, db); /* the reply comes from the walk */
        if (n->tmp.cap > ITEM_BUF_KEEP)
            buf_free(&n->tmp);
        return;
    }
    n->tmp = scratch.bytes;
    if (rc != RK_OK || ks.oom) {
        add_error(it, rc != RK_OK ? "ERR cannot read the store" : "ERR out of memory");
    } else {
        if (scan) {
            char text[24];
            int len = snprintf(text, sizeof(text), "%" PRIu64, next);
            add_array(it, 2);
            add_bulk(it, text, (uint64_t)len);
        }
        add_array(it, ks.n);
        add_raw(it, n->tmp.p, n->tmp.len);
    }
    if (n->tmp.cap > ITEM_BUF_KEEP)
        buf_free(&n->tmp);
}

/* ---- KEYS: a pinned view, walked a piece per loop turn ---------------------------------------
 *
 * KEYS reads every key of the database at one applied index I (issue 13 point 2), without
 * stalling the loop: the read's callback opens a copy-on-write view of the store at I
 * (core/kv/view.h) and holds the item; each loop turn then walks the view for at most
 * KEYS_TURN_BYTES of records (keys_walks_step), and the last piece encodes the reply and
 * releases the item. The connection's replies stay in order: the ones after KEYS wait in its
 * FIFO behind it (its later commands run meanwhile, but KEYS sees none of them: the view stays
 * at I whatever is written). The view's overlay (the values at I of keys written during the
 * walk, not yet passed) is bounded by KEYS_OVERLAY_MAX_BYTES: past it, the KEYS fails with an
 * error that says so (DEVIATIONS D4). */
#define KEYS_TURN_BYTES        ((uint64_t)4 << 10)
#define KEYS_OVERLAY_MAX_BYTES ((uint64_t)64 << 20)

struct keys_walk {
    struct keys_walk *next;
    struct client *c;
    struct item *it;
    struct kv_view *view;
    uint8_t phys;    /* the store prefix ('0' + phys) of the database's keys at I */
    uint64_t now_ms; /* the read time at I: a key whose deadline <= it is expired */
    struct buf out;  /* the keys, encoded in the item's protocol */
    int64_t n;
    bool oom;
};

static bool keys_walk_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                          uint32_t val_len)
{
    struct keys_walk *w = ctx;
    if (key_len < 1 || key[0] != KV_KEY_USER + w->phys)
        return true; /* another database's key, or the state machine's own records */
    uint8_t db = 0;
    const uint8_t *ukey = NULL, *uval = NULL;
    uint32_t ukey_len = 0, uval_len = 0;
    uint64_t mod = 0, deadline = 0;
    if (kv_user_record_decode(key, key_len, val, val_len, &db, &ukey, &ukey_len, &uval, &uval_len,
                              &mod, &deadline, NULL) != RK_OK)
        return true; /* kv_scan_db passes over a record that does not decode too */
    if (deadline != 0 && deadline <= w->now_ms)
        return true;
    const uint8_t *h = w->it->aux.p + w->it->aux.off;
    if (!glob_match(h + 18, w->it->aux.len - w->it->aux.off - 18, ukey, ukey_len))
        return true;
    struct item scratch = {.resp = w->it->resp, .bytes = w->out};
    size_t before = scratch.bytes.len;
    add_bulk(&scratch, ukey, ukey_len);
    w->out = scratch.bytes;
    if (w->out.len == before) {
        w->oom = true;
        return false;
    }
    w->n++;
    return true;
}

/* Ends walk w (unlinked by the caller): its reply if reply, its view, its hold on the item. */
static void keys_walk_end(struct node *n, struct keys_walk *w, bool reply, const char *error)
{
    struct item *it = w->it;
    if (reply && error != NULL) {
        add_error(it, error);
    } else if (reply) {
        add_array(it, w->n);
        add_raw(it, w->out.p, w->out.len);
    }
    kv_view_close(w->view);
    buf_free(&w->out);
    struct client *c = w->c;
    free(w);
    if (!reply)
        return; /* shutdown: the caller fails the item and frees the connections */
    item_release(n, it);
    c->outstanding--;
    conn_collect(n, c);
    conn_flush(n, c);
    conn_free_if_done(n, c);
}

void keys_walks_step(struct node *n)
{
    struct keys_walk **pw = &n->keys_walks;
    while (*pw != NULL) {
        struct keys_walk *w = *pw;
        bool done = false;
        int rc = RK_OK;
        struct rk_errmsg err = {{0}};
        if (!w->c->closed)
            rc = kv_view_next(w->view, KEYS_TURN_BYTES, 0, keys_walk_one, w, &done, &err);
        if (!w->c->closed && rc == RK_OK && !w->oom && !done) {
            pw = &w->next;
            continue;
        }
        *pw = w->next;
        char text[300];
        const char *error = NULL;
        if (w->oom || rc == RK_ENOMEM) {
            error = "ERR out of memory";
        } else if (rc != RK_OK) {
            snprintf(text, sizeof(text), "ERR KEYS could not finish at its index: %s", err.text);
            error = text;
        }
        keys_walk_end(n, w, true, error);
    }
}

void keys_walks_free(struct node *n)
{
    while (n->keys_walks != NULL) {
        struct keys_walk *w = n->keys_walks;
        n->keys_walks = w->next;
        keys_walk_end(n, w, false, NULL);
    }
}

/* KEYS, inside the read's callback (at its applied index): opens the view and holds the item. */
static void keys_walk_start(struct node *n, struct item *it, uint8_t db)
{
    struct keys_walk *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        add_error(it, "ERR out of memory");
        return;
    }
    struct rk_errmsg err = {{0}};
    if (kv_view_open(n->store, KEYS_OVERLAY_MAX_BYTES, &w->view, &err) != RK_OK) {
        free(w);
        add_errorf(it, "ERR KEYS cannot start: %s", err.text);
        return;
    }
    /* The view is at the store's applied index: the read's, or below it when the entries
     * after it wrote nothing to the store (a leader's no-op): the same state. */
    RK_ASSERT(kv_view_index(w->view) <= kv_applied_index(server_kv(n)));
    w->c = it->c;
    w->it = it;
    w->phys = kv_db_physical(server_kv(n), db);
    w->now_ms = kv_read_time_ms(server_kv(n));
    item_hold(it);
    w->c->outstanding++; /* the connection stays while the walk refers to it (N4) */
    w->next = n->keys_walks;
    n->keys_walks = w;
}

static void keys_start(struct node *n, struct client *c, struct item *it,
                       const struct resp_arg *pat, bool scan, uint64_t cursor, uint64_t count)
{
    uint8_t h[18] = {cur_db(c), scan};
    memcpy(h + 2, &cursor, 8);
    memcpy(h + 10, &count, 8);
    if (!buf_append(&it->aux, h, sizeof(h)) || !buf_append(&it->aux, pat->ptr, pat->len)) {
        add_error(it, "ERR out of memory");
        return;
    }
    it->on_read = keys_read;
    it->done = false;
    server_read(n, c, it);
}

void cmd_keys(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)argc;
    keys_start(n, c, it, &a[1], false, 0, 0);
}

/* Redis's parseScanCursorOrReply: strtoul, so "-1" and "+5" are cursors; a leading space,
 * trailing bytes or an overflow are not. */
static bool scan_cursor(const struct resp_arg *a, unsigned long long *cursor)
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
    *cursor = strtoull(text, &end, 10);
    return *end == 0 && errno != ERANGE;
}

/* SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]. The cursor is a position in the order of
 * the stored keys' 32-bit hashes (kv_scan_db_range): a page reads the next COUNT (at least
 * SCAN_PAGE_MIN) records of the store from the cursor's hash on, in O(page), returns the live
 * keys of the database among them that MATCH (and TYPE), and the next cursor is the hash after
 * the page's last (0 after the last page); a page may hold fewer keys than COUNT, even none,
 * as Redis's may. The order is the same on every node and after restarts and merges, so, as
 * Redis guarantees, a key present for the whole iteration is returned whatever is written
 * meanwhile and on whichever node each page is served; unlike Redis, never twice. */
void cmd_scan(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    static const struct resp_arg star = {.ptr = (const uint8_t *)"*", .len = 1};
    const struct resp_arg *pat = &star;
    unsigned long long cursor = 0;
    uint64_t count = 10;
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
            int64_t v = 0;
            if (!arg_int64(&a[i + 1], &v)) {
                add_error(it, "ERR value is not an integer or out of range");
                return;
            }
            if (v < 1) {
                add_error(it, "ERR syntax error");
                return;
            }
            count = (uint64_t)v;
        } else if (arg_is(&a[i], "TYPE")) {
            /* every value is a string; the last TYPE wins, as Redis */
            it->no_match = !arg_is(&a[i + 1], "string");
        } else {
            add_error(it, "ERR syntax error");
            return;
        }
    }
    keys_start(n, c, it, pat, true, cursor, count);
}

/* ---- RANDOMKEY ----------------------------------------------------------------------------- */

struct pick {
    struct item *it;
    bool found;
};

static bool pick_one(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct pick *p = ctx;
    add_bulk(p->it, key, key_len);
    p->found = true;
    return false;
}

#define RANDOMKEY_PAGE 4096u

static void randomkey_read(struct node *n, struct item *it)
{
    uint8_t db = (uint8_t)it->a1;
    struct pick p = {.it = it};
    if (kv_dbsize(server_kv(n), db) > 0) {
        /* The first live key at or after a random point of the hash order, wrapping once. */
        uint32_t start = 0;
        if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != (ssize_t)sizeof(start))
            start = (uint32_t)node_now_us() * 2654435761u; /* no entropy yet: still varies */
        uint64_t cursor = start, next = 0;
        bool wrapped = false;
        while (!p.found) {
            if (server_scan_db_range(n, db, cursor, RANDOMKEY_PAGE, pick_one, &p, &next) != RK_OK) {
                add_error(it, "ERR cannot read the store");
                return;
            }
            if (next == 0) {
                if (wrapped)
                    break; /* counted keys all expired, not yet purged */
                wrapped = true;
            } else if (wrapped && next > start) {
                break;
            }
            cursor = next;
        }
    }
    if (!p.found)
        add_null(it);
}

/* RANDOMKEY: the key after a random point of SCAN's hash order (O(page), as Redis's draw is
 * not exactly uniform either: keys after long gaps are likelier), nil if the db is empty. */
void cmd_randomkey(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                   uint32_t argc)
{
    (void)a;
    (void)argc;
    it->a1 = cur_db(c);
    it->on_read = randomkey_read;
    it->done = false;
    server_read(n, c, it);
}
