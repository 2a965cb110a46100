/*
 * memlog.c — the in-memory log_store. Entries and their data are copied; what was appended
 * before the last sync is what load returns (writes after it are kept too, as if the disk never
 * lost anything: the simulator's unforgiving disk arrives with the durable log). compact forgets
 * a prefix at once.
 */
#include <string.h>

#include "common/assert.h"
#include "log/log.h"

struct log_memstore {
    struct log_store base; /* first: the replica sees only this */
    const struct rk_alloc *alloc;
    struct raft_hard_state hs;
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_entry *ents; /* ents[i].index == snap_index + 1 + i */
    size_t n;
    size_t cap;
    uint64_t syncs;
    uint64_t promised;
};

static struct log_memstore *memlog_of(struct log_store *s)
{
    return (struct log_memstore *)s;
}

static int memlog_load(struct log_store *s, struct raft_hard_state *hs, uint64_t *snapshot_index,
                       uint64_t *snapshot_term, const struct raft_entry **entries,
                       size_t *n_entries, struct rk_errmsg *err)
{
    (void)err;
    struct log_memstore *m = memlog_of(s);
    *hs = m->hs;
    *snapshot_index = m->snap_index;
    *snapshot_term = m->snap_term;
    *entries = m->ents;
    *n_entries = m->n;
    return RK_OK;
}

static int memlog_truncate(struct log_store *s, uint64_t from, struct rk_errmsg *err)
{
    struct log_memstore *m = memlog_of(s);
    if (from <= m->snap_index)
        return rk_errf(err, RK_EINVAL, "memlog: truncate from index %llu, snapshot at %llu",
                       (unsigned long long)from, (unsigned long long)m->snap_index);
    uint64_t keep = from - 1 - m->snap_index;
    for (uint64_t i = keep; i < m->n; i++)
        rk_free(m->alloc, m->ents[i].data);
    if (keep < m->n)
        m->n = (size_t)keep;
    return RK_OK;
}

static int memlog_append(struct log_store *s, const struct raft_entry *entries, size_t n,
                         struct rk_errmsg *err)
{
    struct log_memstore *m = memlog_of(s);
    if (n == 0)
        return RK_OK;
    uint64_t last = m->snap_index + m->n;
    if (entries[0].index != last + 1)
        return rk_errf(err, RK_EINVAL, "memlog: append at index %llu, log ends at %llu",
                       (unsigned long long)entries[0].index, (unsigned long long)last);
    if (m->n + n > m->cap) {
        size_t cap = m->cap == 0 ? 64 : m->cap;
        while (cap < m->n + n)
            cap *= 2;
        struct raft_entry *v = rk_realloc(m->alloc, m->ents, cap * sizeof(*v));
        if (v == NULL)
            return rk_errf(err, RK_ENOMEM, "memlog: growing to %zu entries", cap);
        m->ents = v;
        m->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        struct raft_entry e = entries[i];
        if (e.len > 0) {
            e.data = rk_malloc(m->alloc, e.len);
            if (e.data == NULL)
                return rk_errf(err, RK_ENOMEM, "memlog: copying entry %llu",
                               (unsigned long long)e.index);
            memcpy(e.data, entries[i].data, e.len);
        } else {
            e.data = NULL;
        }
        m->ents[m->n++] = e;
    }
    return RK_OK;
}

static int memlog_set_hard_state(struct log_store *s, const struct raft_hard_state *hs,
                                 struct rk_errmsg *err)
{
    (void)err;
    memlog_of(s)->hs = *hs;
    return RK_OK;
}

static int memlog_sync(struct log_store *s, struct rk_errmsg *err)
{
    (void)err;
    memlog_of(s)->syncs++;
    return RK_OK;
}

static int memlog_compact(struct log_store *s, uint64_t index, uint64_t term, struct rk_errmsg *err)
{
    struct log_memstore *m = memlog_of(s);
    if (index < m->snap_index || term == 0 || (index == m->snap_index && term != m->snap_term))
        return rk_errf(err, RK_EINVAL, "memlog: compact to (%llu, %llu), snapshot at (%llu, %llu)",
                       (unsigned long long)index, (unsigned long long)term,
                       (unsigned long long)m->snap_index, (unsigned long long)m->snap_term);
    uint64_t drop = index - m->snap_index;
    if (drop > m->n)
        drop = m->n;
    for (uint64_t i = 0; i < drop; i++)
        rk_free(m->alloc, m->ents[i].data);
    if (drop > 0 && drop < m->n)
        memmove(m->ents, m->ents + drop, (size_t)(m->n - drop) * sizeof(*m->ents));
    m->n -= (size_t)drop;
    m->snap_index = index;
    m->snap_term = term;
    return RK_OK;
}

static void memlog_destroy(struct log_store *s)
{
    struct log_memstore *m = memlog_of(s);
    for (size_t i = 0; i < m->n; i++)
        rk_free(m->alloc, m->ents[i].data);
    rk_free(m->alloc, m->ents);
    rk_free(m->alloc, m);
}

static uint64_t memlog_promised(struct log_store *s)
{
    return memlog_of(s)->promised;
}

static int memlog_set_promise(struct log_store *s, uint64_t index, struct rk_errmsg *err)
{
    (void)err;
    memlog_of(s)->promised = index;
    return RK_OK;
}

static const struct log_store_ops memlog_ops = {
    .load = memlog_load,
    .truncate = memlog_truncate,
    .append = memlog_append,
    .set_hard_state = memlog_set_hard_state,
    .sync = memlog_sync,
    .compact = memlog_compact,
    .destroy = memlog_destroy,
    .promised = memlog_promised,
    .set_promise = memlog_set_promise,
};

int log_memstore_create(const struct rk_alloc *a, struct log_store **out)
{
    if (a == NULL)
        a = rk_alloc_libc();
    struct log_memstore *m = rk_malloc(a, sizeof(*m));
    if (m == NULL)
        return RK_ENOMEM;
    memset(m, 0, sizeof(*m));
    m->base.ops = &memlog_ops;
    m->alloc = a;
    *out = &m->base;
    return RK_OK;
}

uint64_t log_memstore_syncs(const struct log_store *s)
{
    RK_ASSERT(s->ops == &memlog_ops);
    return ((const struct log_memstore *)s)->syncs;
}
