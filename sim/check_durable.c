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
    if (!job->written || job->rc != RK_OK)
        return;
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
