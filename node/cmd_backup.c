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
 * The copy stays at I while the store moves on through a copy-on-write view of the store
 * (core/kv/view.h: the walk in bitcask's canonical order, the overlay of values saved before
 * their first write above I, bounded by BACKUP_OVERLAY_MAX_BYTES: past it the backup fails and
 * says why). The node's store is the views wrapper (server.c), which any number of views share
 * (other sessions of other features). One NEXT does at most one chunk (the session's chunk bytes
 * of records) of reads on the loop: the walk is spread over as many loop turns as chunks.
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

#include "backup_file.h"
#include "bitcask/bitcask.h"
#include "commands.h"
#include "common/assert.h"
#include "kv/view.h"
#include "server.h"

#define BACKUP_OVERLAY_MAX_BYTES ((uint64_t)256 << 20)
#define BACKUP_IDLE_MS           60000u
#define BACKUP_CHUNK_MIN         4096u

struct node_backup {
    uint64_t id;
    uint64_t index, term;
    uint64_t last_ms;
    struct kv_view *view;
    size_t chunk_target; /* records bytes a chunk is closed at */
    struct backup_chunk chunk;
};

static uint64_t backup_ids;

static void bk_free(struct node_backup *b)
{
    if (b == NULL)
        return;
    kv_view_close(b->view);
    backup_chunk_free(&b->chunk);
    free(b);
}

void backup_free(struct node *n)
{
    bk_free(n->backup);
    n->backup = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The commands                                                                               */

static void start_read(struct node *n, struct item *it)
{
    uint64_t now = node_now_ms();
    struct node_backup *b = n->backup;
    if (b != NULL && now - b->last_ms < BACKUP_IDLE_MS) {
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
    struct rk_errmsg err = {{0}};
    int rc = kv_view_open(n->store, BACKUP_OVERLAY_MAX_BYTES, &b->view, &err);
    if (rc != RK_OK) {
        free(b);
        add_errorf(it, "ERR cannot start a backup: %s", err.text);
        return;
    }
    /* The store's last write may be older than the applied index (entries that wrote nothing):
     * the content is the same at both. */
    RK_ASSERT(kv_view_index(b->view) <= index);
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

static bool chunk_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                      uint32_t val_len)
{
    return backup_chunk_add(ctx, key, key_len, val, val_len);
}

static void next_chunk(struct node *n, struct item *it, struct node_backup *b)
{
    b->last_ms = node_now_ms();
    backup_chunk_reset(&b->chunk);
    struct rk_errmsg err = {{0}};
    bool done = false;
    int rc = kv_view_next(b->view, b->chunk_target, BACKUP_RECORD_HEAD_BYTES, chunk_one, &b->chunk,
                          &done, &err);
    if (rc != RK_OK) {
        node_log("warn", "backup %" PRIu64 " failed: %s", b->id, err.text);
        add_errorf(it, "ERR backup %" PRIu64 " failed: %s", b->id, err.text);
        backup_free(n);
        return;
    }
    if (b->chunk.records == 0) {
        RK_ASSERT(done);
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
