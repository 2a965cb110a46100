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
#include <xxhash.h>

#include "commands.h"
#include "glob.h"
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
    /* SCAN: the page is the keys whose hash is in [lo, hi]. */
    bool scan;
    uint64_t lo, hi;
};

/* SCAN's order: the top 48 bits of the key's XXH3 hash (the cursor's other 16 bits name a
 * snapshot, below). */
static uint64_t key_hash(const uint8_t *key, uint32_t len)
{
    return XXH3_64bits(key, len) >> 16;
}

#define H48_MAX ((1ull << 48) - 1)

static bool keys_one(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct keys_scan *ks = ctx;
    if (ks->scan) {
        uint64_t h = key_hash(key, key_len);
        if (h < ks->lo || h > ks->hi)
            return true;
    }
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

/* SCAN's page without a snapshot: the `cap` smallest hashes >= lo, kept in a max-heap. */
struct page {
    uint64_t *heap;
    uint32_t n, cap;
    uint64_t lo;
};

static void heap_down(uint64_t *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l] > h[m])
            m = l;
        if (r < n && h[r] > h[m])
            m = r;
        if (m == i)
            return;
        uint64_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static bool page_one(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct page *pg = ctx;
    uint64_t h = key_hash(key, key_len);
    if (h < pg->lo)
        return true;
    if (pg->n < pg->cap) {
        uint32_t i = pg->n++;
        pg->heap[i] = h;
        while (i > 0 && pg->heap[(i - 1) / 2] < pg->heap[i]) {
            uint64_t t = pg->heap[i];
            pg->heap[i] = pg->heap[(i - 1) / 2];
            pg->heap[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (h < pg->heap[0]) {
        pg->heap[0] = h;
        heap_down(pg->heap, pg->n, 0);
    }
    return true;
}

/* A SCAN page is at least this many keys (COUNT is a hint; Redis returns more too). */
#define SCAN_PAGE_MIN 1000u

/* ---- SCAN snapshots ---------------------------------------------------------------------- */

/* SCAN 0 of a database larger than one page takes a snapshot of its keys, sorted by hash, on the
 * node serving it; the cursors it hands out name it (16 bits: this node's id and a counter), so
 * that the next pages on this node are read from it in O(page), not with a pass over the
 * keyspace each. A snapshot taken at the iteration's start holds every key present for the
 * whole iteration (Redis's guarantee); it may also return keys deleted since (Redis allows it).
 * A cursor whose snapshot is not here (another node, a restart, evicted) continues by its hash
 * with a pass over the keys, as without snapshots. Ids only grow (mod 255), so a cursor never
 * meets a snapshot older than its own iteration. */
#define SCAN_SNAPS    4
#define SCAN_SNAP_MAX (256ull << 20) /* bytes of all snapshots together */

struct snap_ent {
    uint64_t h;
    uint32_t off; /* [len u32][key] in keys */
};

struct scan_snap {
    uint16_t tag;
    uint8_t db;
    uint64_t used; /* LRU: n->scan_clock when last read */
    uint32_t n;
    struct snap_ent *ent;
    struct buf keys;
    size_t bytes;
};

static void snap_free(struct scan_snap *s)
{
    if (s == NULL)
        return;
    free(s->ent);
    buf_free(&s->keys);
    free(s);
}

void keyspace_free(struct node *n)
{
    for (int i = 0; i < SCAN_SNAPS; i++) {
        snap_free(n->scan_snaps[i]);
        n->scan_snaps[i] = NULL;
    }
}

struct snap_build {
    struct scan_snap *s;
    size_t cap;
    size_t limit;
    bool failed;
};

static bool snap_one(void *ctx, const uint8_t *key, uint32_t key_len)
{
    struct snap_build *b = ctx;
    struct scan_snap *s = b->s;
    if (s->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        struct snap_ent *e = realloc(s->ent, cap * sizeof(*e));
        if (e == NULL) {
            b->failed = true;
            return false;
        }
        s->ent = e;
        b->cap = cap;
    }
    uint32_t len = key_len;
    if (s->keys.len > UINT32_MAX - 4 - key_len ||
        s->keys.len + b->cap * sizeof(*s->ent) > b->limit || !buf_append(&s->keys, &len, 4) ||
        !buf_append(&s->keys, key, key_len)) {
        b->failed = true;
        return false;
    }
    s->ent[s->n++] = (struct snap_ent){.h = key_hash(key, key_len),
                                       .off = (uint32_t)(s->keys.len - 4 - key_len)};
    return true;
}

static int ent_cmp(const void *a, const void *b)
{
    const struct snap_ent *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* A new snapshot of db (inside on_read), or NULL when it does not fit (then: no snapshot). */
static struct scan_snap *snap_take(struct node *n, uint8_t db)
{
    size_t others = 0;
    int slot = 0;
    for (int i = 0; i < SCAN_SNAPS; i++) {
        struct scan_snap *s = n->scan_snaps[i];
        if (s == NULL) {
            slot = i;
            break;
        }
        if (s->used < n->scan_snaps[slot]->used)
            slot = i;
    }
    snap_free(n->scan_snaps[slot]);
    n->scan_snaps[slot] = NULL;
    for (int i = 0; i < SCAN_SNAPS; i++)
        others += n->scan_snaps[i] ? n->scan_snaps[i]->bytes : 0;
    struct scan_snap *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    struct snap_build b = {.s = s, .limit = SCAN_SNAP_MAX - others};
    if (server_scan_db(n, db, snap_one, &b) != RK_OK || b.failed) {
        snap_free(s);
        return NULL;
    }
    qsort(s->ent, s->n, sizeof(*s->ent), ent_cmp);
    n->scan_seq = (uint8_t)(n->scan_seq % 255 + 1);
    s->tag = (uint16_t)((n->id & 0xff) << 8 | n->scan_seq);
    s->db = db;
    s->used = ++n->scan_clock;
    s->bytes = s->keys.cap + b.cap * sizeof(*s->ent);
    n->scan_snaps[slot] = s;
    return s;
}

static struct scan_snap *snap_find(struct node *n, uint16_t tag, uint8_t db)
{
    for (int i = 0; i < SCAN_SNAPS; i++) {
        struct scan_snap *s = n->scan_snaps[i];
        if (s != NULL && s->tag == tag && s->db == db) {
            s->used = ++n->scan_clock;
            return s;
        }
    }
    return NULL;
}

/* One page from a snapshot: the cap keys from hash lo on (and any after with the same hash).
 * The next cursor, 0 after the last page. */
static uint64_t snap_page(const struct scan_snap *s, uint64_t lo, uint64_t cap, bool none,
                          struct keys_scan *ks)
{
    uint32_t i = 0, hi = s->n;
    while (i < hi) { /* the first entry with h >= lo */
        uint32_t mid = i + (hi - i) / 2;
        if (s->ent[mid].h < lo)
            i = mid + 1;
        else
            hi = mid;
    }
    uint64_t end = (uint64_t)i + cap < s->n ? i + cap : s->n;
    while (end > i && end < s->n && s->ent[end].h == s->ent[end - 1].h)
        end++;
    ks->scan = false; /* the range is the snapshot's */
    for (uint64_t k = i; k < end && !none && !ks->oom; k++) {
        uint32_t len;
        memcpy(&len, s->keys.p + s->ent[k].off, 4);
        keys_one(ks, s->keys.p + s->ent[k].off + 4, len);
    }
    return end < s->n ? s->ent[end].h << 16 | s->tag : 0;
}

/* Every matching key in one reply (KEYS), or one page (SCAN), read inside the replica's
 * on_read callback: the state machine as of the read's applied index. The keys are encoded
 * into a scratch item first: their count comes before them. */
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
        .pat = h + 18, .pat_len = it->aux.len - it->aux.off - 18, .out = &scratch, .scan = scan};
    uint64_t next = 0;
    int rc = RK_OK;
    bool done = false;
    if (scan) {
        uint64_t live = kv_dbsize(server_kv(n), db);
        uint64_t cap = count < SCAN_PAGE_MIN ? SCAN_PAGE_MIN : count;
        uint64_t lo = cursor >> 16;
        uint16_t tag = (uint16_t)(cursor & 0xffff);
        bool last = cap >= live; /* every key at or after the cursor fits this page */
        struct scan_snap *snap = NULL;
        if (tag != 0)
            snap = snap_find(n, tag, db);
        else if (cursor == 0 && !last)
            snap = snap_take(n, db);
        if (snap != NULL) {
            next = snap_page(snap, lo, cap, it->no_match, &ks);
            done = true;
        } else {
            if (cap > live)
                cap = live;
            struct page pg = {
                .heap = malloc((size_t)(cap ? cap : 1) * 8), .cap = (uint32_t)cap, .lo = lo};
            if (pg.heap == NULL) {
                add_error(it, "ERR out of memory");
                return;
            }
            if (cap > 0)
                rc = server_scan_db(n, db, page_one, &pg);
            ks.lo = lo;
            ks.hi = H48_MAX;
            /* A full page may have more after it; a short one ends the iteration. Keys with
             * the page's last hash all belong to it (the pass below takes every h <= hi). */
            if (!last && pg.n == pg.cap && pg.n > 0) {
                ks.hi = pg.heap[0];
                next = pg.heap[0] < H48_MAX ? (pg.heap[0] + 1) << 16 : 0;
            }
            free(pg.heap);
        }
    }
    if (rc == RK_OK && !it->no_match && !done)
        rc = server_scan_db(n, db, keys_one, &ks);
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
 * the keys' hashes (the top 48 bits of XXH3) and 16 bits naming a snapshot of this node (see
 * "SCAN snapshots"): a page is the COUNT (at least SCAN_PAGE_MIN) keys with the smallest hashes
 * at or after the cursor's, filtered by MATCH and TYPE, and the next cursor is the next hash (0
 * after the last page). As Redis guarantees, a key present for the whole iteration is returned,
 * once, whatever is written meanwhile and on whichever node each page is served. */
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

static void randomkey_read(struct node *n, struct item *it)
{
    uint8_t db = (uint8_t)it->a1;
    uint64_t count = kv_dbsize(server_kv(n), db);
    /* count includes expired keys not yet purged: a draw past the live ones takes the first. */
    struct pick p = {.skip = count > 0 ? (uint64_t)random() % count : 0, .it = it};
    if (count > 0 && server_scan_db(n, db, pick_one, &p) != RK_OK && !p.found) {
        add_error(it, "ERR cannot read the store");
        return;
    }
    if (!p.found && count > 0) {
        p.skip = 0;
        server_scan_db(n, db, pick_one, &p);
    }
    if (!p.found)
        add_null(it);
}

/* RANDOMKEY: a key drawn uniformly from the database (one pass over its keys), nil if empty. */
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
