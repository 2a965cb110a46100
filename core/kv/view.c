/*
 * view.c — pinned copy-on-write views of a store (view.h: the invariants V1-V4).
 *
 * Per view: the cursor (the last key given out), the overlay (a chained hash table of saved
 * entries, by XXH3-64 of the key) and a min-heap, by the store's key_order, of the overlay's
 * present entries not yet given out. An entry leaves the table and the heap when the walk
 * passes its key: then no later write can want it saved again (the key is not after the
 * cursor any more).
 *
 *   open ──kv_view_next──> walking ──(scan_after finds nothing more)──> heap drain ──> done
 *     \______________________ any failure (V4, ENOMEM, read error) ______> failed (sticky)
 */
#include "kv/view.h"

#include <string.h>
#include <xxhash.h>

#include "common/assert.h"

struct view_ent {
    struct view_ent *next; /* hash chain */
    uint64_t hash;
    uint32_t key_len, val_len;
    bool present;
    uint8_t data[]; /* key then value */
};

struct kv_view {
    struct views *w; /* NULL once the wrapper is gone */
    const struct rk_alloc *a;
    struct kv_view *prev, *next;
    uint64_t index;
    uint64_t overlay_max_bytes, overlay_bytes;
    bool has_cursor; /* false before the first key */
    uint8_t *cursor; /* the last key given out (cursor_len bytes; NULL when cursor_cap is 0) */
    uint32_t cursor_len;
    size_t cursor_cap;
    bool walk_done;
    int failed; /* RK_OK while healthy */
    struct rk_errmsg why;
    struct view_ent **tab;
    size_t tab_cap, n_ent;
    struct view_ent **heap;
    size_t heap_len, heap_cap;
};

struct views {
    struct kv_store base; /* first: callers use it as the store */
    struct kv_store *inner;
    const struct rk_alloc *a;
    struct kv_view *head;
    uint32_t n_views;
};

static const struct kv_store_ops views_ops, views_ops_no_range, views_ops_stage;

static struct views *vw(struct kv_store *s)
{
    RK_ASSERT(kv_views_is_wrapper(s));
    return (struct views *)s;
}

/* ---- the overlay ------------------------------------------------------------------------ */

static void view_fail(struct kv_view *v, int rc, const char *what)
{
    if (v->failed != RK_OK)
        return;
    v->failed = rc;
    rk_errf(&v->why, rc, "view at index %llu: %s", (unsigned long long)v->index, what);
}

static struct view_ent *ov_find(const struct kv_view *v, uint64_t h, const uint8_t *key,
                                uint32_t len)
{
    if (v->tab_cap == 0)
        return NULL;
    for (struct view_ent *e = v->tab[h & (v->tab_cap - 1)]; e != NULL; e = e->next) {
        if (e->hash == h && e->key_len == len && memcmp(e->data, key, len) == 0)
            return e;
    }
    return NULL;
}

static void ov_unlink(struct kv_view *v, struct view_ent *e)
{
    struct view_ent **pp = &v->tab[e->hash & (v->tab_cap - 1)];
    while (*pp != e) {
        RK_ASSERT(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = e->next;
    v->n_ent--;
    v->overlay_bytes -= sizeof(*e) + e->key_len + e->val_len;
}

static bool ov_grow(const struct rk_alloc *a, struct kv_view *v)
{
    size_t cap = v->tab_cap ? v->tab_cap * 2 : 256;
    struct view_ent **t = rk_malloc(a, cap * sizeof(*t));
    if (t == NULL)
        return false;
    memset(t, 0, cap * sizeof(*t));
    for (size_t i = 0; i < v->tab_cap; i++) {
        for (struct view_ent *e = v->tab[i], *nx; e != NULL; e = nx) {
            nx = e->next;
            e->next = t[e->hash & (cap - 1)];
            t[e->hash & (cap - 1)] = e;
        }
    }
    rk_free(a, v->tab);
    v->tab = t;
    v->tab_cap = cap;
    return true;
}

static int ent_order(const struct views *w, const struct view_ent *x, const struct view_ent *y)
{
    return w->inner->ops->key_order(x->data, x->key_len, y->data, y->key_len);
}

static void heap_push(const struct views *w, struct kv_view *v, struct view_ent *e)
{
    size_t i = v->heap_len++;
    RK_ASSERT(v->heap_len <= v->heap_cap);
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (ent_order(w, v->heap[p], e) <= 0)
            break;
        v->heap[i] = v->heap[p];
        i = p;
    }
    v->heap[i] = e;
}

static struct view_ent *heap_pop(const struct views *w, struct kv_view *v)
{
    RK_ASSERT(v->heap_len > 0);
    struct view_ent *top = v->heap[0], *last = v->heap[--v->heap_len];
    size_t i = 0, n = v->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ent_order(w, v->heap[c + 1], v->heap[c]) < 0)
            c++;
        if (ent_order(w, last, v->heap[c]) <= 0)
            break;
        v->heap[i] = v->heap[c];
        i = c;
    }
    if (n > 0)
        v->heap[i] = last;
    return top;
}

/* Saves (key, its value at the view's index) in v's overlay (V2); val NULL: absent. */
static void ov_save(struct views *w, struct kv_view *v, uint64_t h, const uint8_t *key,
                    uint32_t key_len, const uint8_t *val, uint32_t val_len)
{
    size_t size = sizeof(struct view_ent) + key_len + (val != NULL ? val_len : 0);
    if (v->overlay_bytes + size > v->overlay_max_bytes) {
        view_fail(v, RK_ETOOBIG,
                  "more bytes of keys were overwritten before the walk reached them than the "
                  "view's overlay bound (a heavy write load or a snapshot install): try again");
        return;
    }
    if (v->n_ent >= v->tab_cap && !ov_grow(w->a, v)) {
        view_fail(v, RK_ENOMEM, "out of memory for the overlay");
        return;
    }
    if (val != NULL && v->heap_len == v->heap_cap &&
        !rk_grow(w->a, (void **)&v->heap, &v->heap_cap, v->heap_len + 1, sizeof(*v->heap))) {
        view_fail(v, RK_ENOMEM, "out of memory for the overlay");
        return;
    }
    struct view_ent *e = rk_malloc(w->a, size);
    if (e == NULL) {
        view_fail(v, RK_ENOMEM, "out of memory for the overlay");
        return;
    }
    *e = (struct view_ent){.hash = h,
                           .key_len = key_len,
                           .val_len = val != NULL ? val_len : 0,
                           .present = val != NULL};
    memcpy(e->data, key, key_len);
    if (e->val_len > 0)
        memcpy(e->data + key_len, val, val_len);
    e->next = v->tab[h & (v->tab_cap - 1)];
    v->tab[h & (v->tab_cap - 1)] = e;
    v->n_ent++;
    v->overlay_bytes += size;
    if (e->present)
        heap_push(w, v, e);
}

/* Whether a write at index to key must save the key's old value in v first. */
static bool view_wants(const struct views *w, const struct kv_view *v, uint64_t index,
                       const uint8_t *key, uint32_t key_len)
{
    if (v->failed != RK_OK || v->walk_done || index <= v->index)
        return false;
    return !v->has_cursor || w->inner->ops->key_order(key, key_len, v->cursor, v->cursor_len) > 0;
}

/* Before a write at index to key: saves its value now in every view that wants it. Returns
 * RK_OK, or an error of the read (then the write must not happen: the views would be wrong;
 * the caller's write fails and may be retried, S1). */
static int views_before_write(struct views *w, uint64_t index, const uint8_t *key, uint32_t key_len)
{
    uint64_t h = 0;
    bool read = false;
    const uint8_t *val = NULL;
    uint32_t val_len = 0;
    for (struct kv_view *v = w->head; v != NULL; v = v->next) {
        if (!view_wants(w, v, index, key, key_len))
            continue;
        if (h == 0)
            h = XXH3_64bits(key, key_len) | 1; /* never 0: 0 says "not hashed yet" */
        if (ov_find(v, h, key, key_len) != NULL)
            continue; /* saved by an earlier write */
        if (!read) {
            int rc = w->inner->ops->get(w->inner, key, key_len, &val, &val_len);
            if (rc != RK_OK && rc != RK_ENOENT)
                return rc;
            if (rc == RK_ENOENT)
                val = NULL;
            read = true;
        }
        ov_save(w, v, h, key, key_len, val, val_len);
    }
    return RK_OK;
}

/* ---- the wrapper store ------------------------------------------------------------------ */

static int vs_get(struct kv_store *s, const uint8_t *key, uint32_t key_len, const uint8_t **val,
                  uint32_t *val_len)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->get(in, key, key_len, val, val_len);
}

static bool any_wants(const struct views *w, uint64_t index, const uint8_t *key, uint32_t key_len)
{
    for (const struct kv_view *v = w->head; v != NULL; v = v->next) {
        if (view_wants(w, v, index, key, key_len))
            return true;
    }
    return false;
}

static int vs_put(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                  const uint8_t *val, uint32_t val_len)
{
    struct views *w = vw(s);
    if (!any_wants(w, index, key, key_len))
        return w->inner->ops->put(w->inner, index, key, key_len, val, val_len);
    /* val may be borrowed from the store's read buffer (COPY, MOVE), which the get of the old
     * value may reuse: copied first. */
    uint8_t *copy = rk_malloc(w->a, val_len ? val_len : 1);
    if (copy == NULL)
        return RK_ENOMEM;
    if (val_len > 0)
        memcpy(copy, val, val_len);
    int rc = views_before_write(w, index, key, key_len);
    if (rc == RK_OK)
        rc = w->inner->ops->put(w->inner, index, key, key_len, copy, val_len);
    rk_free(w->a, copy);
    return rc;
}

static int vs_del(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
                  bool *existed)
{
    struct views *w = vw(s);
    int rc = any_wants(w, index, key, key_len) ? views_before_write(w, index, key, key_len) : RK_OK;
    if (rc != RK_OK)
        return rc;
    return w->inner->ops->del(w->inner, index, key, key_len, existed);
}

static uint64_t vs_count(struct kv_store *s)
{
    return vw(s)->inner->ops->count(vw(s)->inner);
}

static uint64_t vs_applied_index(struct kv_store *s)
{
    return vw(s)->inner->ops->applied_index(vw(s)->inner);
}

static int vs_end_batch(struct kv_store *s, uint64_t index)
{
    return vw(s)->inner->ops->end_batch(vw(s)->inner, index);
}

static int vs_sync(struct kv_store *s)
{
    return vw(s)->inner->ops->sync(vw(s)->inner);
}

static uint64_t vs_durable_index(struct kv_store *s)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->durable_index != NULL ? in->ops->durable_index(in) : in->ops->applied_index(in);
}

static int vs_scan(struct kv_store *s,
                   bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                              uint32_t val_len),
                   void *ctx)
{
    return vw(s)->inner->ops->scan(vw(s)->inner, fn, ctx);
}

static int vs_scan_keys(struct kv_store *s,
                        bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                   const uint8_t *val, uint32_t val_len),
                        void *ctx)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->scan_keys != NULL ? in->ops->scan_keys(in, fn, ctx)
                                      : in->ops->scan(in, fn, ctx);
}

static int vs_scan_range(struct kv_store *s, uint32_t lo, uint64_t budget,
                         bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                    const uint8_t *val, uint32_t val_len),
                         void *ctx, uint64_t *next)
{
    return vw(s)->inner->ops->scan_range(vw(s)->inner, lo, budget, fn, ctx, next);
}

static int vs_reserve(struct kv_store *s, uint64_t n)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->reserve != NULL ? in->ops->reserve(in, n) : RK_OK;
}

/* A staged replacement (store.h) goes to the inner store; the views are of the store as it was
 * and end at the switch (vs_stage_commit: nothing pinned survives a replacement). */
static int vs_stage_begin(struct kv_store *s, uint64_t index)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->stage_begin(in, index);
}

static int vs_stage_put(struct kv_store *s, const uint8_t *key, uint32_t key_len,
                        const uint8_t *val, uint32_t val_len)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->stage_put(in, key, key_len, val, val_len);
}

static int vs_stage_flush(struct kv_store *s)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->stage_flush(in);
}

static int vs_stage_commit(struct kv_store *s)
{
    struct views *w = vw(s);
    int rc = w->inner->ops->stage_commit(w->inner);
    if (rc == RK_OK) {
        for (struct kv_view *v = w->head; v != NULL; v = v->next)
            view_fail(v, RK_ESTALE, "the store was replaced (a snapshot installed)");
    }
    return rc;
}

static void vs_stage_abort(struct kv_store *s)
{
    struct kv_store *in = vw(s)->inner;
    in->ops->stage_abort(in);
}

static int vs_stage_state(struct kv_store *s)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->stage_state(in);
}

static uint64_t vs_stage_queued(struct kv_store *s)
{
    struct kv_store *in = vw(s)->inner;
    return in->ops->stage_queued(in);
}

static struct kv_store *views_free(struct views *w)
{
    for (struct kv_view *v = w->head; v != NULL; v = v->next) {
        view_fail(v, RK_ESTALE, "the store was closed");
        v->w = NULL;
    }
    struct kv_store *in = w->inner;
    rk_free(w->a, w);
    return in;
}

static void vs_destroy(struct kv_store *s)
{
    struct kv_store *in = views_free(vw(s));
    in->ops->destroy(in);
}

struct kv_store *kv_views_unwrap(struct kv_store *wrapper)
{
    return views_free(vw(wrapper));
}

static const struct kv_store_ops views_ops = {
    .get = vs_get,
    .put = vs_put,
    .del = vs_del,
    .count = vs_count,
    .applied_index = vs_applied_index,
    .end_batch = vs_end_batch,
    .sync = vs_sync,
    .durable_index = vs_durable_index,
    .scan = vs_scan,
    .scan_keys = vs_scan_keys,
    .scan_range = vs_scan_range,
    /* No scan_after nor key_order: views are how the wrapper's store is walked. */
    .reserve = vs_reserve,
    .destroy = vs_destroy,
};

/* For an inner store with a staged replacement (store.h): the same, and those. */
static const struct kv_store_ops views_ops_stage = {
    .get = vs_get,
    .put = vs_put,
    .del = vs_del,
    .count = vs_count,
    .applied_index = vs_applied_index,
    .end_batch = vs_end_batch,
    .sync = vs_sync,
    .durable_index = vs_durable_index,
    .scan = vs_scan,
    .scan_keys = vs_scan_keys,
    .scan_range = vs_scan_range,
    .reserve = vs_reserve,
    .stage_begin = vs_stage_begin,
    .stage_put = vs_stage_put,
    .stage_flush = vs_stage_flush,
    .stage_commit = vs_stage_commit,
    .stage_abort = vs_stage_abort,
    .stage_state = vs_stage_state,
    .stage_queued = vs_stage_queued,
    .destroy = vs_destroy,
};

/* For an inner store without scan_range (the store in memory): the wrapper must not claim it. */
static const struct kv_store_ops views_ops_no_range = {
    .get = vs_get,
    .put = vs_put,
    .del = vs_del,
    .count = vs_count,
    .applied_index = vs_applied_index,
    .end_batch = vs_end_batch,
    .sync = vs_sync,
    .durable_index = vs_durable_index,
    .scan = vs_scan,
    .scan_keys = vs_scan_keys,
    .reserve = vs_reserve,
    .destroy = vs_destroy,
};

struct kv_store *kv_views_wrap(const struct rk_alloc *a, struct kv_store *inner)
{
    RK_ASSERT(a != NULL && inner != NULL);
    /* Every optional op the wrapper forwards must be there: a NULL would make the wrapper
     * claim what the store cannot do (hence two tables, with and without scan_range). */
    if (inner->ops->scan_after == NULL || inner->ops->key_order == NULL)
        return NULL;
    struct views *w = rk_malloc(a, sizeof(*w));
    if (w == NULL)
        return NULL;
    const struct kv_store_ops *ops = inner->ops->scan_range == NULL    ? &views_ops_no_range
                                     : inner->ops->stage_begin != NULL ? &views_ops_stage
                                                                       : &views_ops;
    *w = (struct views){.base = {.ops = ops}, .inner = inner, .a = a};
    return &w->base;
}

bool kv_views_is_wrapper(const struct kv_store *s)
{
    return s != NULL &&
           (s->ops == &views_ops || s->ops == &views_ops_no_range || s->ops == &views_ops_stage);
}

uint32_t kv_views_open_count(const struct kv_store *wrapper)
{
    RK_ASSERT(kv_views_is_wrapper(wrapper));
    return ((const struct views *)wrapper)->n_views;
}

/* ---- views ------------------------------------------------------------------------------ */

int kv_view_open(struct kv_store *wrapper, uint64_t overlay_max_bytes, struct kv_view **out,
                 struct rk_errmsg *err)
{
    if (!kv_views_is_wrapper(wrapper))
        return rk_errf(err, RK_EINVAL, "the store has no view wrapper (kv_views_wrap)");
    struct views *w = vw(wrapper);
    struct kv_view *v = rk_malloc(w->a, sizeof(*v));
    if (v == NULL)
        return rk_errf(err, RK_ENOMEM, "out of memory for a view");
    *v = (struct kv_view){.w = w,
                          .a = w->a,
                          .index = w->inner->ops->applied_index(w->inner),
                          .overlay_max_bytes = overlay_max_bytes,
                          .next = w->head};
    if (w->head != NULL)
        w->head->prev = v;
    w->head = v;
    w->n_views++;
    *out = v;
    return RK_OK;
}

uint64_t kv_view_index(const struct kv_view *v)
{
    return v->index;
}

uint64_t kv_view_overlay_bytes(const struct kv_view *v)
{
    return v->overlay_bytes;
}

struct walk {
    struct kv_view *v;
    uint64_t budget_bytes, given_bytes;
    uint32_t head_bytes;
    kv_view_fn *fn;
    void *ctx;
    bool stopped;
};

static bool set_cursor(struct kv_view *v, const struct rk_alloc *a, const uint8_t *key,
                       uint32_t key_len)
{
    if (v->cursor_cap < key_len && !rk_grow(a, (void **)&v->cursor, &v->cursor_cap, key_len, 1)) {
        view_fail(v, RK_ENOMEM, "out of memory for the cursor");
        return false;
    }
    if (key_len > 0)
        memcpy(v->cursor, key, key_len);
    v->cursor_len = key_len;
    v->has_cursor = true;
    return true;
}

static bool give(struct walk *k, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                 uint32_t val_len)
{
    if (!k->fn(k->ctx, key, key_len, val, val_len)) {
        view_fail(k->v, RK_ENOMEM, "the consumer failed (out of memory)");
        return false;
    }
    k->given_bytes += (uint64_t)k->head_bytes + key_len + val_len;
    return true;
}

/* Gives out the top of the heap (an overlay entry) and forgets it: the cursor passes it. */
static bool give_top(struct walk *k)
{
    struct views *w = k->v->w;
    struct view_ent *e = heap_pop(w, k->v);
    bool ok = give(k, e->data, e->key_len, e->data + e->key_len, e->val_len) &&
              set_cursor(k->v, w->a, e->data, e->key_len);
    ov_unlink(k->v, e);
    rk_free(w->a, e);
    return ok;
}

static bool walk_one(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                     uint32_t val_len)
{
    struct walk *k = ctx;
    struct kv_view *v = k->v;
    struct views *w = v->w;
    if (k->given_bytes >= k->budget_bytes) {
        k->stopped = true;
        return false;
    }
    /* Overlay entries that sort before key come first (V3). */
    while (v->heap_len > 0 &&
           w->inner->ops->key_order(v->heap[0]->data, v->heap[0]->key_len, key, key_len) < 0) {
        if (!give_top(k) || k->given_bytes >= k->budget_bytes) {
            k->stopped = true;
            return false;
        }
    }
    struct view_ent *e = ov_find(v, XXH3_64bits(key, key_len) | 1, key, key_len);
    bool ok;
    if (e == NULL) {
        ok = give(k, key, key_len, val, val_len) && set_cursor(v, w->a, key, key_len); /* V1 */
    } else if (e->present) {
        RK_ASSERT(v->heap[0] == e); /* all smaller ones were given above */
        ok = give_top(k);           /* V2 */
    } else {
        ov_unlink(v, e); /* created above the index: not in the view */
        rk_free(w->a, e);
        ok = set_cursor(v, w->a, key, key_len);
    }
    if (!ok) {
        k->stopped = true;
        return false;
    }
    return true;
}

int kv_view_next(struct kv_view *v, uint64_t budget_bytes, uint32_t record_head_bytes,
                 kv_view_fn *fn, void *ctx, bool *done, struct rk_errmsg *err)
{
    RK_ASSERT(fn != NULL && done != NULL);
    *done = false;
    if (v->w == NULL)
        view_fail(v, RK_ESTALE, "the store was closed");
    if (v->failed != RK_OK)
        return rk_errf(err, v->failed, "%s", v->why.text);
    struct views *w = v->w;
    struct walk k = {.v = v,
                     .budget_bytes = budget_bytes ? budget_bytes : 1,
                     .head_bytes = record_head_bytes,
                     .fn = fn,
                     .ctx = ctx};
    if (!v->walk_done) {
        /* No cursor: from the first key; a cursor of length 0 is "after the empty key". */
        static const uint8_t empty[1] = {0};
        const uint8_t *after = !v->has_cursor ? NULL : v->cursor_len > 0 ? v->cursor : empty;
        int rc = w->inner->ops->scan_after(w->inner, after, v->cursor_len, walk_one, &k);
        if (rc != RK_OK)
            view_fail(v, rc, "reading the store failed");
        else if (!k.stopped)
            v->walk_done = true;
    }
    while (v->failed == RK_OK && v->walk_done && v->heap_len > 0 && k.given_bytes < k.budget_bytes)
        give_top(&k);
    if (v->failed != RK_OK)
        return rk_errf(err, v->failed, "%s", v->why.text);
    *done = v->walk_done && v->heap_len == 0;
    return RK_OK;
}

void kv_view_close(struct kv_view *v)
{
    if (v == NULL)
        return;
    struct views *w = v->w;
    const struct rk_alloc *a = v->a;
    if (w != NULL) { /* else the wrapper is gone and forgot its views (vs_destroy) */
        if (v->prev != NULL)
            v->prev->next = v->next;
        else
            w->head = v->next;
        if (v->next != NULL)
            v->next->prev = v->prev;
        w->n_views--;
    }
    for (size_t i = 0; i < v->tab_cap; i++) {
        for (struct view_ent *e = v->tab[i], *nx; e != NULL; e = nx) {
            nx = e->next;
            rk_free(a, e);
        }
    }
    rk_free(a, v->tab);
    rk_free(a, v->heap);
    rk_free(a, v->cursor);
    rk_free(a, v);
}
