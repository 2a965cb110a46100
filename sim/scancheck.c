/*
 * scancheck.c — see scancheck.h.
 */
#include "scancheck.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

#define SC_PATTERN_BYTES 32

struct sc_op {
    uint8_t cls;
    uint8_t outcome; /* 0: still open */
    uint64_t invoked, done;
};

struct sc_key {
    uint32_t *ops; /* ids, in invocation order */
    uint32_t n, cap;
};

struct sc_rd {
    const char *what;
    uint32_t client;
    uint64_t t0, t1;
    char pattern[SC_PATTERN_BYTES];
    uint32_t *keys;
    uint32_t n;
    uint64_t dbsize;
};

struct sc_history {
    uint32_t n_keys;
    struct sc_key *keys; /* 1-based */
    struct sc_op *ops;   /* 1-based: id 0 is none */
    uint32_t n_ops, cap_ops;
    struct sc_rd *rds;
    uint32_t n_rds, cap_rds;
    bool no_expiry;
};

void sc_set_no_expiry(struct sc_history *h, bool no_expiry)
{
    h->no_expiry = no_expiry;
}

static void *grow(void *p, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return p;
    uint32_t c = *cap < 16 ? 16 : *cap;
    while (c < need)
        c *= 2;
    void *q = realloc(p, (size_t)c * size);
    if (q == NULL)
        abort(); /* the simulator's allocations are fatal when they fail (sim.c xmalloc) */
    *cap = c;
    return q;
}

struct sc_history *sc_new(uint32_t keys)
{
    struct sc_history *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->n_keys = keys;
    h->keys = calloc((size_t)keys + 1, sizeof(*h->keys));
    if (h->keys == NULL) {
        free(h);
        return NULL;
    }
    h->n_ops = 1;
    h->ops = grow(NULL, &h->cap_ops, 1, sizeof(*h->ops));
    memset(&h->ops[0], 0, sizeof(h->ops[0]));
    return h;
}

void sc_free(struct sc_history *h)
{
    if (h == NULL)
        return;
    for (uint32_t k = 1; k <= h->n_keys; k++)
        free(h->keys[k].ops);
    for (uint32_t i = 0; i < h->n_rds; i++)
        free(h->rds[i].keys);
    free(h->keys);
    free(h->ops);
    free(h->rds);
    free(h);
}

uint32_t sc_op(struct sc_history *h, uint8_t cls, const uint32_t *keys, uint32_t n, uint64_t at)
{
    uint32_t id = h->n_ops;
    h->ops = grow(h->ops, &h->cap_ops, id + 1, sizeof(*h->ops));
    h->ops[id] = (struct sc_op){.cls = cls, .invoked = at};
    h->n_ops++;
    for (uint32_t i = 0; i < n; i++) {
        if (keys[i] == 0 || keys[i] > h->n_keys)
            continue;
        struct sc_key *k = &h->keys[keys[i]];
        k->ops = grow(k->ops, &k->cap, k->n + 1, sizeof(*k->ops));
        k->ops[k->n++] = id;
    }
    return id;
}

void sc_done(struct sc_history *h, uint32_t id, uint8_t outcome, uint64_t at)
{
    if (id == 0 || id >= h->n_ops)
        return;
    h->ops[id].outcome = outcome;
    h->ops[id].done = at;
}

void sc_read(struct sc_history *h, const char *what, uint32_t client, uint64_t t0, uint64_t t1,
             const char *pattern, const uint32_t *keys, uint32_t n, uint64_t dbsize)
{
    h->rds = grow(h->rds, &h->cap_rds, h->n_rds + 1, sizeof(*h->rds));
    struct sc_rd *r = &h->rds[h->n_rds++];
    memset(r, 0, sizeof(*r));
    r->what = what;
    r->client = client;
    r->t0 = t0;
    r->t1 = t1;
    snprintf(r->pattern, sizeof(r->pattern), "%s", pattern);
    r->n = n;
    r->keys = malloc((size_t)(n > 0 ? n : 1) * sizeof(*r->keys));
    if (r->keys == NULL)
        abort();
    if (n > 0)
        memcpy(r->keys, keys, (size_t)n * sizeof(*keys));
    r->dbsize = dbsize;
}

/* Answered, and when: an op still open or of unknown outcome may take effect at any time. */
static bool answered_before(const struct sc_op *o, uint64_t t)
{
    return o->outcome == LIN_OK && o->done < t;
}

static bool may_remove(uint8_t cls)
{
    return cls == SC_DEL || cls == SC_CHANGE;
}

static bool may_create(uint8_t cls)
{
    return cls == SC_SET || cls == SC_CREATE || cls == SC_CHANGE;
}

static bool certainly_present(const struct sc_history *h, uint32_t key, uint64_t t0, uint64_t t1)
{
    const struct sc_key *k = &h->keys[key];
    /* The set answered before t0 that was invoked last: a later-invoked one rules out more
     * removals (those answered before it was invoked), so it is the best witness. */
    const struct sc_op *w = NULL;
    for (uint32_t i = 0; i < k->n; i++) {
        const struct sc_op *o = &h->ops[k->ops[i]];
        if (o->cls == SC_SET && answered_before(o, t0) && (w == NULL || o->invoked > w->invoked))
            w = o;
    }
    if (w == NULL)
        return false;
    for (uint32_t i = 0; i < k->n; i++) {
        const struct sc_op *o = &h->ops[k->ops[i]];
        if (o == w || !may_remove(o->cls) || o->outcome == LIN_FAIL || o->invoked > t1)
            continue;
        if (!answered_before(o, w->invoked))
            return false;
    }
    return true;
}

static bool certainly_absent(const struct sc_history *h, uint32_t key, uint64_t t0, uint64_t t1)
{
    const struct sc_key *k = &h->keys[key];
    const struct sc_op *d = NULL;
    bool created = false;
    for (uint32_t i = 0; i < k->n; i++) {
        const struct sc_op *o = &h->ops[k->ops[i]];
        if (o->outcome == LIN_FAIL || o->invoked > t1)
            continue;
        if (may_create(o->cls))
            created = true;
        if (o->cls == SC_DEL && answered_before(o, t0) && (d == NULL || o->invoked > d->invoked))
            d = o;
    }
    if (!created)
        return true;
    if (d == NULL)
        return false;
    for (uint32_t i = 0; i < k->n; i++) {
        const struct sc_op *o = &h->ops[k->ops[i]];
        if (!may_create(o->cls) || o->outcome == LIN_FAIL || o->invoked > t1)
            continue;
        if (!answered_before(o, d->invoked))
            return false;
    }
    return true;
}

static bool key_matches(const char *pattern, uint32_t key)
{
    char name[16];
    snprintf(name, sizeof(name), "k%" PRIu32, key);
    return fnmatch(pattern, name, 0) == 0;
}

bool sc_check(struct sc_history *h, char *why, size_t cap, uint64_t *reads, uint64_t *required)
{
    *reads = h->n_rds;
    *required = 0;
    uint8_t *seen = calloc((size_t)h->n_keys + 1, 1);
    if (seen == NULL)
        abort();
    bool ok = true;
    for (uint32_t i = 0; i < h->n_rds && ok; i++) {
        const struct sc_rd *r = &h->rds[i];
        memset(seen, 0, (size_t)h->n_keys + 1);
        char head[160];
        snprintf(head, sizeof(head),
                 "%s: c%" PRIu32 "'s %s MATCH %s over %" PRIu64 ".%06" PRIu64 "s..%" PRIu64
                 ".%06" PRIu64 "s",
                 r->what, r->client, r->what, r->pattern, r->t0 / 1000000, r->t0 % 1000000,
                 r->t1 / 1000000, r->t1 % 1000000);
        for (uint32_t j = 0; j < r->n && ok; j++) {
            uint32_t key = r->keys[j];
            if (key == 0 || key > h->n_keys) {
                snprintf(why, cap, "%s returned a name that is no key of the workload", head);
                ok = false;
            } else if (seen[key]) {
                snprintf(why, cap, "%s returned k%" PRIu32 " twice", head, key);
                ok = false;
            } else if (!key_matches(r->pattern, key)) {
                snprintf(why, cap, "%s returned k%" PRIu32 ", which does not match", head, key);
                ok = false;
            } else if (certainly_absent(h, key, r->t0, r->t1)) {
                snprintf(why, cap, "%s returned k%" PRIu32 ", absent for the whole of it", head,
                         key);
                ok = false;
            }
            if (ok)
                seen[key] = 1;
        }
        uint64_t present = 0, possible = 0;
        for (uint32_t key = 1; key <= h->n_keys && ok; key++) {
            bool p = certainly_present(h, key, r->t0, r->t1);
            present += p;
            possible += !certainly_absent(h, key, r->t0, r->t1);
            if (!p || !key_matches(r->pattern, key))
                continue;
            (*required)++;
            if (!seen[key]) {
                snprintf(why, cap, "%s did not return k%" PRIu32 ", present for the whole of it",
                         head, key);
                ok = false;
            }
        }
        if (ok && r->dbsize != UINT64_MAX && h->no_expiry && strcmp(r->pattern, "*") == 0 &&
            r->n != r->dbsize) {
            snprintf(why, cap, "%s returned %" PRIu32 " keys, but DBSIZE at its index is %" PRIu64,
                     head, r->n, r->dbsize);
            ok = false;
        }
        if (ok && r->dbsize != UINT64_MAX && (r->dbsize < present || r->dbsize > possible)) {
            snprintf(why, cap,
                     "%s: DBSIZE %" PRIu64 " at the same index, but %" PRIu64
                     " keys were present for the whole read and at most %" PRIu64 " may have been",
                     head, r->dbsize, present, possible);
            ok = false;
        }
    }
    free(seen);
    return ok;
}
