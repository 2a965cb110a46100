/*
 * shrink.c — delta debugging of a failing scenario (shrink.h).
 *
 *   in ─► check it fails ─► loop until nothing shrinks or the run budget is spent:
 *            steps:   ddmin — remove chunks of n/2, n/4, ..., 1 steps (a `set latency` pair is
 *                     one unit), keep any removal that still fails
 *            faults:  each chaos rate, disk fault and network probability to 0, one at a time
 *            size:    clients to 1 or halved, nodes to 1 or an odd size below, keys to 1,
 *                     duration halved
 *        ◄─ the smallest scenario that still failed, and its seed
 *
 * Invariants: best always fails with the original check (it starts as the input, which is
 * re-run first); every candidate is a scenario scn_parse accepted (print, then parse); the loop
 * is bounded by max_runs simulations.
 */
#define _POSIX_C_SOURCE 200809L

#include "shrink.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

#define SHRINK_DEFAULT_RUNS 400u
#define SHRINK_TEXT_BYTES   (1u << 20)
#define SHRINK_MIN_DURATION (100u * 1000u) /* 100ms: shorter runs say nothing */

struct shrinker {
    const struct sim_options *o;
    int verdict;
    char check[128];
    uint32_t max_runs;
    uint32_t extra_seeds;
    uint32_t runs;
    uint64_t seed;         /* best's failing seed */
    struct sim_result res; /* best's failing run */
    struct scenario *best;
    struct scenario *cand; /* a candidate being built */
    struct scenario *parsed;
    char *text;
    FILE *null;
    FILE *progress;
};

void shrink_check_name(const char *what, char *buf, size_t cap)
{
    RK_ASSERT(cap > 0);
    size_t n = strcspn(what, ":(");
    while (n > 0 && what[n - 1] == ' ')
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, what, n);
    buf[n] = '\0';
}

static bool same_check(const struct shrinker *k, const struct sim_result *r)
{
    char name[128];
    if (r->verdict != k->verdict)
        return false;
    shrink_check_name(r->what, name, sizeof(name));
    return strcmp(name, k->check) == 0;
}

/* Whether cand (normalized through print and parse) still fails with the check; if so it
 * becomes best. */
static bool try_candidate(struct shrinker *k, const char *what)
{
    size_t n = scn_print(k->cand, k->text, SHRINK_TEXT_BYTES);
    if (n >= SHRINK_TEXT_BYTES)
        return false;
    if (scn_parse(k->text, n, k->cand->name, k->parsed, NULL) != RK_OK)
        return false; /* not a scenario the language accepts (e.g. an id above nodes) */
    for (uint32_t i = 0; i <= k->extra_seeds && k->runs < k->max_runs; i++) {
        struct sim_options o = *k->o;
        o.seed = k->seed + i;
        o.trace = false;
        struct sim_result r;
        k->runs++;
        sim_run(k->parsed, &o, k->null, &r);
        if (same_check(k, &r)) {
            struct scenario *t = k->best;
            k->best = k->parsed;
            k->parsed = t;
            k->seed = o.seed;
            k->res = r;
            if (k->progress != NULL)
                fprintf(k->progress,
                        "shrink: %s: still fails (seed %" PRIu64 ", %u steps, %u nodes, "
                        "%u clients, duration %" PRIu64 "ms)\n",
                        what, k->seed, k->best->n_steps, k->best->nodes, k->best->clients,
                        k->best->duration_us / 1000);
            return true;
        }
    }
    return false;
}

static bool budget_left(const struct shrinker *k)
{
    return k->runs < k->max_runs;
}

/* The start index of each unit of steps (a `set latency` pair is one), into units. */
static uint32_t step_units(const struct scenario *s, uint32_t *units)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_steps; i++) {
        const struct scn_step *st = &s->steps[i];
        bool second_half = i > 0 && st->action == SCN_SET_NET && st->param == SCN_NET_LATENCY_MAX &&
                           s->steps[i - 1].action == SCN_SET_NET &&
                           s->steps[i - 1].param == SCN_NET_LATENCY_MIN &&
                           s->steps[i - 1].at_us == st->at_us;
        if (!second_half)
            units[n++] = i;
    }
    return n;
}

/* cand := best without units [from, to). */
static void without_units(struct shrinker *k, const uint32_t *units, uint32_t n_units,
                          uint32_t from, uint32_t to)
{
    *k->cand = *k->best;
    uint32_t lo = units[from];
    uint32_t hi = to < n_units ? units[to] : k->best->n_steps;
    uint32_t removed = hi - lo;
    memmove(&k->cand->steps[lo], &k->best->steps[hi],
            (k->best->n_steps - hi) * sizeof(k->cand->steps[0]));
    k->cand->n_steps -= removed;
}

/* ddmin over the steps: returns whether anything was removed. */
static bool shrink_steps(struct shrinker *k)
{
    static uint32_t units[SCN_MAX_STEPS];
    bool any = false;
    uint32_t n = step_units(k->best, units);
    uint32_t chunk = n / 2 > 0 ? n / 2 : 1;
    while (n > 0 && budget_left(k)) {
        bool removed = false;
        for (uint32_t from = 0; from < n && budget_left(k);) {
            uint32_t to = from + chunk < n ? from + chunk : n;
            without_units(k, units, n, from, to);
            char what[64];
            snprintf(what, sizeof(what), "without %u step%s", to - from, to - from == 1 ? "" : "s");
            if (try_candidate(k, what)) {
                removed = any = true;
                n = step_units(k->best, units);
            } else {
                from = to;
            }
        }
        if (chunk == 1 && !removed)
            break;
        if (!removed)
            chunk /= 2;
        else if (chunk > n / 2 && n / 2 > 0)
            chunk = n / 2;
    }
    return any;
}

/* One simplification at a time: each edits cand (a copy of best) and says what it did, or
 * returns false if it has nothing to change. */
static bool simplify(const struct scenario *b, struct scenario *c, int which, char *what,
                     size_t cap)
{
    *c = *b;
    switch (which) {
#define SHRINK_ZERO(field, label)                                                                  \
    if (b->field == 0)                                                                             \
        return false;                                                                              \
    c->field = 0;                                                                                  \
    snprintf(what, cap, "%s", label);                                                              \
    return true
    case 0:
        SHRINK_ZERO(chaos.crash_per_s, "chaos crash 0");
    case 1:
        SHRINK_ZERO(chaos.partition_per_s, "chaos partition 0");
    case 2:
        SHRINK_ZERO(chaos.pause_per_s, "chaos pause 0");
    case 3:
        SHRINK_ZERO(chaos.skew_per_s, "chaos skew 0");
    case 4:
        SHRINK_ZERO(disk.bitflip, "disk bitflip 0");
    case 5:
        SHRINK_ZERO(disk.errors, "disk errors 0");
    case 6:
        SHRINK_ZERO(disk.sync_us, "disk slow 0s");
    case 7:
        SHRINK_ZERO(disk.merge_us, "disk merge 0s");
    case 8:
        SHRINK_ZERO(drop, "drop 0");
    case 9:
        SHRINK_ZERO(duplicate, "duplicate 0");
    case 10:
        SHRINK_ZERO(reorder, "reorder 0");
    case 11:
        SHRINK_ZERO(disk.torn, "disk torn off");
    case 12:
        SHRINK_ZERO(disk.crashpoints, "disk crashpoints off");
#undef SHRINK_ZERO
    case 13:
        if (b->clients <= 1)
            return false;
        c->clients = 1;
        snprintf(what, cap, "clients 1");
        return true;
    case 14:
        if (b->clients <= 2)
            return false;
        c->clients = b->clients / 2;
        snprintf(what, cap, "clients %u", c->clients);
        return true;
    case 15:
        if (b->nodes <= 1)
            return false;
        c->nodes = 1;
        snprintf(what, cap, "nodes 1");
        return true;
    case 16:
        if (b->nodes <= 3)
            return false;
        c->nodes = 3;
        snprintf(what, cap, "nodes 3");
        return true;
    case 17:
        if (b->nodes <= 2)
            return false;
        c->nodes = b->nodes - (b->nodes % 2 == 1 ? 2 : 1);
        snprintf(what, cap, "nodes %u", c->nodes);
        return true;
    case 18:
        if (b->duration_us / 2 < SHRINK_MIN_DURATION)
            return false;
        c->duration_us = b->duration_us / 2;
        snprintf(what, cap, "duration %" PRIu64 "ms", c->duration_us / 1000);
        return true;
    case 19:
        if (b->keys <= 1)
            return false;
        c->keys = 1;
        snprintf(what, cap, "keys 1");
        return true;
    default:
        return false;
    }
}
#define SHRINK_SIMPLIFICATIONS 20

static bool shrink_settings(struct shrinker *k)
{
    bool any = false;
    for (int w = 0; w < SHRINK_SIMPLIFICATIONS && budget_left(k); w++) {
        char what[64];
        if (!simplify(k->best, k->cand, w, what, sizeof(what)))
            continue;
        if (try_candidate(k, what)) {
            any = true;
            if (w == 18 || w == 14 || w == 17)
                w--; /* halve again, or step down again */
        }
    }
    return any;
}

int sim_shrink(const struct scenario *in, const struct sim_options *o,
               const struct sim_result *failed, const struct shrink_options *so,
               struct scenario *out, uint64_t *out_seed, struct sim_result *out_res,
               struct shrink_stats *stats, FILE *progress)
{
    RK_ASSERT(in != NULL && out != NULL && in != out);
    RK_ASSERT(failed->verdict != SIM_PASS);
    struct shrinker k;
    memset(&k, 0, sizeof(k));
    k.o = o;
    k.verdict = failed->verdict;
    shrink_check_name(failed->what, k.check, sizeof(k.check));
    k.max_runs = so != NULL && so->max_runs > 0 ? so->max_runs : SHRINK_DEFAULT_RUNS;
    k.extra_seeds = so != NULL ? so->extra_seeds : 2;
    k.seed = o->seed;
    k.progress = progress;
    k.best = malloc(sizeof(*k.best));
    k.cand = malloc(sizeof(*k.cand));
    k.parsed = malloc(sizeof(*k.parsed));
    k.text = malloc(SHRINK_TEXT_BYTES);
    k.null = fopen("/dev/null", "w");
    int rc = RK_ENOMEM;
    if (k.best == NULL || k.cand == NULL || k.parsed == NULL || k.text == NULL || k.null == NULL)
        goto err_free;
    /* The input itself, normalized, with extra seeds off: it must fail as reported. */
    *k.cand = *in;
    uint32_t extra = k.extra_seeds;
    k.extra_seeds = 0;
    *k.best = *in;
    rc = RK_EINVAL;
    if (!try_candidate(&k, "as given"))
        goto err_free;
    k.extra_seeds = extra;
    memset(stats, 0, sizeof(*stats));
    stats->steps_before = in->n_steps;
    stats->nodes_before = in->nodes;
    stats->clients_before = in->clients;
    stats->duration_before_us = in->duration_us;
    for (int round = 0; round < 8 && budget_left(&k); round++) {
        bool a = shrink_steps(&k);
        bool b = shrink_settings(&k);
        if (!a && !b)
            break;
    }
    *out = *k.best;
    *out_seed = k.seed;
    *out_res = k.res;
    stats->runs = k.runs;
    stats->steps_after = out->n_steps;
    stats->nodes_after = out->nodes;
    stats->clients_after = out->clients;
    stats->duration_after_us = out->duration_us;
    rc = RK_OK;
err_free:
    if (k.null != NULL)
        fclose(k.null);
    free(k.text);
    free(k.parsed);
    free(k.cand);
    free(k.best);
    return rc;
}
