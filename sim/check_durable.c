/* check_durable — see check_durable.h. */
#include "check_durable.h"
#include <stdlib.h>
#include <string.h>
#include "common/assert.h"
#include "common/err.h"
#include "raft/raft.h"
#include "replica/log_job.h"

static void reserve(struct durable_log *d, uint64_t last)
{
    size_t need = (size_t)(last - d->base);
    if (need <= d->cap)
        return;
    size_t cap = d->cap ? d->cap : 256;
    while (cap < need)
        cap *= 2;
    uint64_t *t = realloc(d->terms, cap * sizeof(*t));
    RK_ASSERT(t != NULL);
    d->terms = t;
    d->cap = cap;
}

/* Entries up to index now lie behind the snapshot point (Raft §7; log.h compact). */
static void compact(struct durable_log *d, uint64_t index)
{
    if (index <= d->base)
        return;
    if (index >= d->last) {
        d->base = d->last = index;
        return;
    }
    size_t drop = (size_t)(index - d->base);
    memmove(d->terms, d->terms + drop, (size_t)(d->last - index) * sizeof(*d->terms));
    d->base = index;
}

void durable_log_reset(struct durable_log *d, const struct raft *r)
{
    struct raft_status st;
    raft_status(r, &st);
    d->cut = 0;
    d->base = d->last = st.snapshot_index;
    if (st.last_index <= st.snapshot_index)
        return;
    reserve(d, st.last_index);
    for (uint64_t i = st.snapshot_index + 1; i <= st.last_index; i++)
        d->terms[i - d->base - 1] = raft_term_at(r, i);
    d->last = st.last_index;
}

void durable_log_synced(struct durable_log *d, const struct replica_log_job *job)
{
    if (!job->written)
        return;
    if (job->rc != RK_OK) { /* the node stops; a truncation it began may be durable (T1/T2) */
        if (job->truncate_from != 0 && (d->cut == 0 || job->truncate_from < d->cut))
            d->cut = job->truncate_from;
        return;
    }
    if (job->has_compact)
        compact(d, job->compact_index);
    if (job->truncate_from != 0 && job->truncate_from <= d->last)
        d->last = job->truncate_from > d->base ? job->truncate_from - 1 : d->base;
    for (size_t k = 0; k < job->n_entries; k++) {
        const struct raft_entry *e = &job->entries[k];
        if (e->index <= d->base)
            continue;
        reserve(d, e->index);
        for (uint64_t i = d->last + 1; i < e->index; i++)
            d->terms[i - d->base - 1] = 0; /* a gap: nothing known durable there */
        d->terms[e->index - d->base - 1] = e->term;
        d->last = e->index; /* an append replaces whatever followed (log.h append) */
    }
}

void durable_log_crash(struct durable_log *d, struct replica_log_job *const *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t from = jobs[i]->truncate_from;
        if (jobs[i]->written && from != 0 && (d->cut == 0 || from < d->cut))
            d->cut = from;
    }
}

uint64_t durable_log_lost(const struct durable_log *d, uint64_t snapshot_index,
                          const struct raft_entry *entries, size_t n)
{
    uint64_t last = d->last;
    if (d->cut != 0 && d->cut <= last)
        last = d->cut - 1;
    for (uint64_t i = (snapshot_index > d->base ? snapshot_index : d->base) + 1; i <= last; i++) {
        if (i > snapshot_index + n ||
            entries[i - snapshot_index - 1].term != d->terms[i - d->base - 1])
            return i;
    }
    return 0;
}

bool durable_log_holds(const struct durable_log *d, uint64_t index, uint64_t term)
{
    if (index <= d->base)
        return true;
    return index <= d->last && d->terms[index - d->base - 1] == term;
}

void durable_log_free(struct durable_log *d)
{
    free(d->terms);
    memset(d, 0, sizeof(*d));
}
