/*
 * cmd_backup.c — RAFTKV.BACKUP: a consistent copy of the state machine at one committed index,
 * streamed to raftkv-cli a chunk per call while the node keeps serving (node/README.md "Backup
 * and restore"; the file format: backup_file.h).
 *
 *   RAFTKV.BACKUP START [B]    (B: records bytes per chunk, BACKUP_CHUNK_MIN..1 MiB, default
 *                              1 MiB) after a read barrier (ReadIndex, as a GET): the session
 * starts at the applied index I; reply [id, I, term(I), cluster id, keys, live bytes] (the last two
 * for a progress bar: the store now) RAFTKV.BACKUP NEXT id      the next chunk (a bulk string: one
 * backup_file chunk, head and crc included), nil when there is no more (the session ends)
 *   RAFTKV.BACKUP ABORT id     ends the session
 *
 * How the copy stays at I while the store moves on (copy-on-write, as a fork-based snapshot
 * does, without the fork): the walk visits the keys in bitcask's canonical order (bc_scan_after:
 * a function of the set of keys alone), remembering the last key visited (the cursor). Every
 * put or del of the store goes through the wrapper store below; the first one at an index
 * above I to a key not yet visited saves the key's value at I (or "absent") in the overlay
 * before it goes through. The walk skips keys in the overlay; once it is done, the overlay's
 * present values are sent. So every key is sent once, with its value at I:
 *   W1  a key visited by the walk was not written above I before the walk reached it (else it
 *       would be in the overlay and skipped), so the walk read its value at I;
 *   W2  a key not visited when first written above I has its value at I in the overlay, sent
 *       at the end (absent: nothing sent);
 *   W3  the overlay only grows with keys written during the backup, bounded by
 *       BACKUP_OVERLAY_MAX_BYTES (past it the backup fails, and says why).
 * One NEXT does at most one chunk (BACKUP_CHUNK_TARGET bytes of records) of reads on the loop:
 * the walk is spread over as many loop turns as there are chunks.
 *
 * One session per node. A session with no call for BACKUP_IDLE_MS is taken over by the next
 * START.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "backup_file.h"
#include "bitcask/bitcask.h"
#include "common/assert.h"
#include "commands.h"
#include "server.h"

#define BACKUP_OVERLAY_MAX_BYTES ((uint64_t)256 << 20)
#define BACKUP_IDLE_MS           60000u
#define BACKUP_CHUNK_MIN         4096u

struct bk_ent {
    struct bk_ent *next;
    uint64_t hash;
    uint32_t key_len, val_len;
    bool present;
    uint8_t data[]; /* key then value */
};

struct node_backup {
    uint64_t id;
    uint64_t index, term;
    uint64_t last_ms;
    uint8_t *cursor; /* the last key the walk visited (malloc'ed), NULL before the first */
    uint32_t cursor_len;
    size_t cursor_cap;
    bool walk_done;
    bool stopped; /* the walk's callback filled the chunk */
    struct bk_ent **tab;
    size_t tab_cap, n_ent;
    size_t emit_at; /* after the walk: the overlay bucket being sent */
    uint64_t overlay_bytes;
    size_t chunk_target; /* records bytes a chunk is closed at */
    bool failed;
    char why[200];
    struct backup_chunk chunk;
};

struct backup_store {
    struct kv_store base; /* first: the replica calls through it */
    struct kv_store *inner;
    struct node *n;
};

static uint64_t backup_ids;

static void bk_free(struct node_backup *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->tab_cap; i++) {
        for (struct bk_ent *e = b->tab[i], *nx; e != NULL; e = nx) {
            nx = e->next;
            free(e);
        }
    }
    free(b->tab);
    free(b->cursor);
    backup_chunk_free(&b->chunk);
    free(b);
}

void backup_free(struct node *n)
{
    bk_free(n->backup);
    n->backup = NULL;
}

static void bk_fail(struct node_backup *b, const char *why)
{
    if (b->failed)
        return;
    b->failed = true;
    snprintf(b->why, sizeof(b->why), "%s", why);
    node_log("warn", "backup %" PRIu64 " failed: %s", b->id, why);
}

static struct bk_ent *ov_find(const struct node_backup *b, uint64_t h, const uint8_t *key,
                              uint32_t len)
{
    if (b->tab_cap == 0)
        return NULL;
    for (struct bk_ent *e = b->tab[h & (b->tab_cap - 1)]; e != NULL; e = e->next) {
        if (e->hash == h && e->key_len == len && memcmp(e->data, key, len) == 0)
            return e;
    }
    return NULL;
}

static bool ov_grow(struct node_backup *b)
{
    size_t cap = b->tab_cap ? b->tab_cap * 2 : 1024;
    struct bk_ent **t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return false;
    for (size_t i = 0; i < b->tab_cap; i++) {
        for (struct bk_ent *e = b->tab[i], *nx; e != NULL; e = nx) {
            nx = e->next;
            e->next = t[e->hash & (cap - 1)];
            t[e->hash & (cap - 1)] = e;
        }
    }
    free(b->tab);
    b->tab = t;
    b->tab_cap = cap;
    return true;
}

/* Saves key's value at the session's index before its first write above it (W2). */
static void bk_save(struct backup_store *w, const uint8_t *key, uint32_t key_len)
{
    struct node_backup *b = w->n->backup;
    uint64_t h = XXH3_64bits(key, key_len);
    if (ov_find(b, h, key, key_len) != NULL)
        return;
    const uint8_t *val = NULL;
    uint32_t val_len = 0;
    int rc = w->inner->ops->get(w->inner, key, key_len, &val, &val_len);
    if (rc != RK_OK && rc != RK_ENOENT) {
        bk_fail(b, "cannot read a value before it is overwritten");
        return;
    }
    bool present = rc == RK_OK;
    if (!present)
        val_len = 0;
    size_t size = sizeof(struct bk_ent) + key_len + val_len;
    if (b->overlay_bytes + size > BACKUP_OVERLAY_MAX_BYTES) {
        bk_fail(b, "over 256 MiB of keys were overwritten before the backup reached them (a "
                   "snapshot installed, or a heavy write load): try again");
        return;
    }
    if ((b->n_ent >= b->tab_cap && !ov_grow(b))) {
        bk_fail(b, "out of memory");
        return;
    }
    struct bk_ent *e = malloc(size);
    if (e == NULL) {
        bk_fail(b, "out of memory");
        return;
    }
    *e = (struct bk_ent){.hash = h, .key_len = key_len, .val_len = val_len, .present = present};
    memcpy(e->data, key, key_len);
    if (val_len > 0)
        memcpy(e->data + key_len, val, val_len);
    e->next = b->tab[h & (b->tab_cap - 1)];
    b->tab[h & (b->tab_cap - 1)] = e;
    b->n_ent++;
    b->overlay_bytes += size;
}

/* Whether a write at index to key needs its old value saved first. */
static bool bk_wants(const struct backup_store *w, uint64_t index, const uint8_t *key,
                     uint32_t key_len)
{
    const struct node_backup *b = w->n->backup;
    if (b == NULL || b->failed || b->walk_done || index <= b->index)
        return false;
    return b->cursor == NULL || bc_key_order(key, key_len, b->cursor, b->cursor_len) > 0;
}

static struct backup_store *bs(struct kv_store *s)
{
    return (struct backup_store *)s;
}

static int bs_get(struct kv_store *s, const uint8_t *key, uint32_t key_len, const uint8_t **val,
                  uint32_t *val_len)
{
    struct kv_store *in = bs(s)->inner;
    return in->ops->get(in, key, key_len, val, val_len);
}

static int bs_put(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                  const uint8_t *val, uint32_t val_len)
{
    struct backup_store *w = bs(s);
    if (!bk_wants(w, index, key, key_len))
        return w->inner->ops->put(w->inner, index, key, key_len, val, val_len);
    /* val may be borrowed from the store's read buffer (COPY, MOVE), which the get below may
     * reuse: it is copied first. */
    uint8_t *copy = malloc(val_len ? val_len : 1);
    if (copy == NULL)
        return RK_ENOMEM;
    if (val_len > 0)
        memcpy(copy, val, val_len);
    bk_save(w, key, key_len);
    int rc = w->inner->ops->put(w->inner, index, key, key_len, copy, val_len);
    free(copy);
    return rc;
}

static int bs_del(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                  bool *existed)
{
    struct backup_store *w = bs(s);
    if (bk_wants(w, index, key, key_len))
        bk_save(w, key, key_len);
    return w->inner->ops->del(w->inner, index, key, key_len, existed);
}

static uint64_t bs_count(struct kv_store *s)
{
    return bs(s)->inner->ops->count(bs(s)->inner);
}

static uint64_t bs_applied_index(struct kv_store *s)
{
    return bs(s)->inner->ops->applied_index(bs(s)->inner);
}

static int bs_end_batch(struct kv_store *s, uint64_t index)
{
    return bs(s)->inner->ops->end_batch(bs(s)->inner, index);
}

static int bs_sync(struct kv_store *s)
{
    return bs(s)->inner->ops->sync(bs(s)->inner);
}

static int bs_scan(struct kv_store *s,
                   bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                              uint32_t val_len),
                   void *ctx)
{
    return bs(s)->inner->ops->scan(bs(s)->inner, fn, ctx);
}

static int bs_scan_keys(struct kv_store *s,
                        bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                   const uint8_t *val, uint32_t val_len),
                        void *ctx)
{
    struct kv_store *in = bs(s)->inner;
    return in->ops->scan_keys != NULL ? in->ops->scan_keys(in, fn, ctx)
                                      : in->ops->scan(in, fn, ctx);
}

static int bs_scan_range(struct kv_store *s, uint32_t lo, uint64_t budget,
                         bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                    const uint8_t *val, uint32_t val_len),
                         void *ctx, uint64_t *next)
{
    return bs(s)->inner->ops->scan_range(bs(s)->inner, lo, budget, fn, ctx, next);
}

static int bs_reserve(struct kv_store *s, uint64_t n)
{
    struct kv_store *in = bs(s)->inner;
    return in->ops->reserve != NULL ? in->ops->reserve(in, n) : RK_OK;
}

static void bs_destroy(struct kv_store *s)
{
    struct kv_store *in = bs(s)->inner;
    free(s);
    in->ops->destroy(in);
}

static const struct kv_store_ops bs_ops = {
    .get = bs_get,
    .put = bs_put,
    .del = bs_del,
    .count = bs_count,
    .applied_index = bs_applied_index,
    .end_batch = bs_end_batch,
    .sync = bs_sync,
    .scan = bs_scan,
    .scan_keys = bs_scan_keys,
    .scan_range = bs_scan_range,
    .reserve = bs_reserve,
    .destroy = bs_destroy,
};

struct kv_store *backup_store_wrap(struct node *n, struct kv_store *inner)
{
    /* Every optional op the wrapper forwards must be there (bitcask has them all): a NULL
     * would make the wrapper claim what the store cannot do. */
    if (inner->ops->scan_keys == NULL || inner->ops->scan_range == NULL)
        return NULL;
    struct backup_store *w = malloc(sizeof(*w));
    if (w == NULL)
        return NULL;
    *w = (struct backup_store){.base = {.ops = &bs_ops}, .inner = inner, .n = n};
    return &w->base;
}

/* ------------------------------------------------------------------------------------------ */
/* The commands                                                                               */

static void start_read(struct node *n, struct item *it)
{
    uint64_t now = node_now_ms();
    struct node_backup *b = n->backup;
    if (b != NULL && !b->failed && now - b->last_ms < BACKUP_IDLE_MS) {
        add_errorf(it, "BUSY backup %" PRIu64 " is in progress on this node", b->id);
        return;
    }
    uint64_t index = 0, term = 0;
    server_applied_at(n, &index, &term);
    if (index > 0 && term == 0) {
        add_errorf(it, "TRYAGAIN the term of applied index %" PRIu64 " is not known here", index);
        return;
    }
    backup_free(n);
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        add_error(it, "ERR out of memory");
        return;
    }
    b->id = ++backup_ids;
    b->last_ms = now;
    memcpy(&b->chunk_target, it->aux.p + it->aux.off, sizeof(b->chunk_target));
    b->index = index;
    b->term = term;
    backup_chunk_reset(&b->chunk);
    n->backup = b;
    struct bc_stats st;
    bc_stats(n->bc, &st);
    add_array(it, 6);
    add_integer(it, (int64_t)b->id);
    add_integer(it, (int64_t)b->index);
    add_integer(it, (int64_t)b->term);
    add_integer(it, (int64_t)n->cluster_id);
    add_integer(it, (int64_t)st.keys);
    add_integer(it, (int64_t)st.live_bytes);
    node_log("info", "backup %" PRIu64 " started at index %" PRIu64 " term %" PRIu64, b->id,
             b->index, b->term);
}

static bool walk_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                     uint32_t val_len)
{
    struct node_backup *b = ctx;
    if (b->cursor_cap < key_len) {
        uint8_t *p = realloc(b->cursor, key_len);
        if (p == NULL) {
            bk_fail(b, "out of memory");
            b->stopped = true;
            return false;
        }
        b->cursor = p;
        b->cursor_cap = key_len;
    }
    bool skip = ov_find(b, XXH3_64bits(key, key_len), key, key_len) != NULL; /* W1, W2 */
    if (!skip && !backup_chunk_add(&b->chunk, key, key_len, val, val_len)) {
        bk_fail(b, "out of memory");
        b->stopped = true;
        return false;
    }
    memcpy(b->cursor, key, key_len);
    b->cursor_len = key_len;
    if (b->chunk.len - BACKUP_CHUNK_HEAD_BYTES >= b->chunk_target) {
        b->stopped = true;
        return false;
    }
    return true;
}

/* After the walk: the overlay's values, bucket by bucket, each entry freed once sent. */
static void emit_overlay(struct node_backup *b)
{
    while (b->emit_at < b->tab_cap && b->chunk.len - BACKUP_CHUNK_HEAD_BYTES < b->chunk_target) {
        struct bk_ent *e = b->tab[b->emit_at];
        if (e == NULL) {
            b->emit_at++;
            continue;
        }
        if (e->present &&
            !backup_chunk_add(&b->chunk, e->data, e->key_len, e->data + e->key_len, e->val_len)) {
            bk_fail(b, "out of memory");
            return;
        }
        b->tab[b->emit_at] = e->next;
        b->n_ent--;
        free(e);
    }
}

static void next_chunk(struct node *n, struct item *it, struct node_backup *b)
{
    b->last_ms = node_now_ms();
    backup_chunk_reset(&b->chunk);
    if (!b->walk_done) {
        struct rk_errmsg err = {{0}};
        b->stopped = false;
        int rc = bc_scan_after(n->bc, b->cursor, b->cursor_len, walk_one, b, &err);
        if (rc != RK_OK) {
            char why[sizeof(b->why)];
            snprintf(why, sizeof(why), "reading the store: %s", err.text);
            bk_fail(b, why);
        } else if (!b->stopped) {
            b->walk_done = true;
        }
    }
    if (b->walk_done && !b->failed)
        emit_overlay(b);
    if (b->failed) {
        add_errorf(it, "ERR backup %" PRIu64 " failed: %s", b->id, b->why);
        backup_free(n);
        return;
    }
    if (b->chunk.records == 0) {
        RK_ASSERT(b->walk_done && b->n_ent == 0);
        node_log("info", "backup %" PRIu64 " sent", b->id);
        add_null(it);
        backup_free(n);
        return;
    }
    backup_chunk_seal(&b->chunk);
    add_bulk(it, b->chunk.buf, b->chunk.len);
}

static bool parse_id(const struct resp_arg *a, uint64_t *id)
{
    char text[24];
    if (a->len == 0 || a->len >= sizeof(text))
        return false;
    memcpy(text, a->ptr, a->len);
    text[a->len] = '\0';
    return config_parse_u64(text, 1, UINT64_MAX, id);
}

static bool arg_is_word(const struct resp_arg *a, const char *w)
{
    return a->len == strlen(w) && strncasecmp((const char *)a->ptr, w, a->len) == 0;
}

void cmd_backup(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    if ((argc == 2 || argc == 3) && arg_is_word(&a[1], "START")) {
        uint64_t chunk = BACKUP_CHUNK_TARGET;
        if (argc == 3 &&
            (!parse_id(&a[2], &chunk) || chunk < BACKUP_CHUNK_MIN || chunk > BACKUP_CHUNK_TARGET)) {
            add_errorf(it, "ERR chunk bytes must be %u..%zu", BACKUP_CHUNK_MIN,
                       BACKUP_CHUNK_TARGET);
            return;
        }
        size_t target = (size_t)chunk;
        if (!buf_append(&it->aux, &target, sizeof(target))) {
            add_error(it, "ERR out of memory");
            return;
        }
        it->on_read = start_read;
        it->done = false;
        server_read(n, c, it);
        return;
    }
    uint64_t id = 0;
    bool next = argc == 3 && arg_is_word(&a[1], "NEXT");
    bool abort_it = argc == 3 && arg_is_word(&a[1], "ABORT");
    if (!next && !abort_it) {
        add_error(it, "ERR syntax: RAFTKV.BACKUP START [chunk-bytes] | NEXT id | ABORT id");
        return;
    }
    if (!parse_id(&a[2], &id) || n->backup == NULL || n->backup->id != id) {
        add_error(it, "ERR no such backup on this node (ended, failed, or taken over)");
        return;
    }
    if (abort_it) {
        node_log("info", "backup %" PRIu64 " aborted", id);
        backup_free(n);
        add_simple(it, "OK");
        return;
    }
    next_chunk(n, it, n->backup);
}
