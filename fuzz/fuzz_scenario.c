/*
 * fuzz_scenario.c — the scenario language parser (sim/scenario.c) on arbitrary text.
 *
 * Input: the text of a .scn file (the shipped scenarios are the seed corpus).
 *
 * Properties (scenario.h):
 *   1. scn_parse is total: RK_OK, or RK_EMALFORMED with a message "fuzz.scn:LINE:COL: ...".
 *   2. For a scenario that parsed: scn_print's size is what it writes; parsing the printed text
 *      gives the same scenario, every field compared (but the steps' line numbers); printing
 *      that again gives the same text.
 */
#include <inttypes.h>

#include "fuzz_util.h"
#include "scenario.h"

#define SCN_FZ_NAME "fuzz.scn"

/* About 400 KiB each: not on the stack. */
static struct scenario scn_fz_a, scn_fz_b;

static bool scn_fz_set_equal(const struct scn_set *a, const struct scn_set *b)
{
    if (a->kind != b->kind || a->n_ids != b->n_ids || a->n_ids > SCN_MAX_NODES)
        return false;
    for (uint32_t i = 0; i < a->n_ids; i++)
        if (a->ids[i] != b->ids[i])
            return false;
    return true;
}

static void scn_fz_steps_equal(const struct scenario *a, const struct scenario *b)
{
    FZ_CHECK(a->n_steps == b->n_steps && a->n_steps <= SCN_MAX_STEPS, "n_steps %" PRIu32
             " != %" PRIu32, a->n_steps, b->n_steps);
    for (uint32_t i = 0; i < a->n_steps; i++) {
        const struct scn_step *x = &a->steps[i], *y = &b->steps[i];
        FZ_CHECK(x->at_us == y->at_us && x->action == y->action && x->n_groups == y->n_groups &&
                     x->n_groups <= SCN_MAX_GROUPS,
                 "step %" PRIu32 " (line %" PRIu32 "): time, action or groups", i, x->line);
        FZ_CHECK(x->factor == y->factor && x->param == y->param,
                 "step %" PRIu32 " (line %" PRIu32 "): factor %.17g != %.17g or param", i, x->line,
                 x->factor, y->factor);
        for (uint32_t g = 0; g < x->n_groups; g++)
            FZ_CHECK(scn_fz_set_equal(&x->groups[g], &y->groups[g]),
                     "step %" PRIu32 " (line %" PRIu32 "): group %" PRIu32, i, x->line, g);
    }
}

#define SCN_FZ_SAME(field) FZ_CHECK(a->field == b->field, "%s differs after a round trip", #field)

static void scn_fz_equal(const struct scenario *a, const struct scenario *b)
{
    FZ_CHECK(strcmp(a->name, b->name) == 0, "name '%s' != '%s'", a->name, b->name);
    SCN_FZ_SAME(nodes);
    SCN_FZ_SAME(tick_us);
    SCN_FZ_SAME(election_ticks_min);
    SCN_FZ_SAME(election_ticks_max);
    SCN_FZ_SAME(heartbeat_ticks);
    SCN_FZ_SAME(pre_vote);
    SCN_FZ_SAME(check_quorum);
    SCN_FZ_SAME(append_entries);
    SCN_FZ_SAME(inflight);
    SCN_FZ_SAME(compact_entries);
    SCN_FZ_SAME(compact_keep);
    SCN_FZ_SAME(latency_us_min);
    SCN_FZ_SAME(latency_us_max);
    SCN_FZ_SAME(drop);
    SCN_FZ_SAME(duplicate);
    SCN_FZ_SAME(reorder);
    SCN_FZ_SAME(reorder_us_max);
    SCN_FZ_SAME(clients);
    SCN_FZ_SAME(keys);
    SCN_FZ_SAME(mix_get);
    SCN_FZ_SAME(mix_put);
    SCN_FZ_SAME(mix_del);
    SCN_FZ_SAME(think_us_min);
    SCN_FZ_SAME(think_us_max);
    SCN_FZ_SAME(timeout_us);
    SCN_FZ_SAME(duration_us);
    SCN_FZ_SAME(expect_leader_us);
    SCN_FZ_SAME(expect_complete_us);
    SCN_FZ_SAME(expect_disk_bytes);
    SCN_FZ_SAME(chaos.crash_per_s);
    SCN_FZ_SAME(chaos.partition_per_s);
    SCN_FZ_SAME(chaos.pause_per_s);
    SCN_FZ_SAME(chaos.skew_per_s);
    SCN_FZ_SAME(chaos.downtime_us_min);
    SCN_FZ_SAME(chaos.downtime_us_max);
    SCN_FZ_SAME(disk.torn);
    SCN_FZ_SAME(disk.bitflip);
    SCN_FZ_SAME(disk.errors);
    SCN_FZ_SAME(disk.sync_us);
    SCN_FZ_SAME(disk.crashpoints);
    SCN_FZ_SAME(disk.merge_us);
    SCN_FZ_SAME(disk.file_bytes);
    SCN_FZ_SAME(disk.sync_ticks);
    SCN_FZ_SAME(swarm);
    scn_fz_steps_equal(a, b);
}

/* Prints s into a fresh exact-size buffer (the caller frees it), checking the size contract. */
static char *scn_fz_print(const struct scenario *s, size_t *len)
{
    size_t need = scn_print(s, NULL, 0);
    char *buf = malloc(need + 1);
    FZ_CHECK(buf != NULL, "out of memory");
    size_t wrote = scn_print(s, buf, need + 1);
    FZ_CHECK(wrote == need && strlen(buf) == need, "scn_print: %zu, then %zu, strlen %zu", need,
             wrote, strlen(buf));
    *len = need;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rk_errmsg err = {{0}};
    int rc = scn_parse((const char *)data, size, SCN_FZ_NAME, &scn_fz_a, &err);
    if (rc != RK_OK) {
        FZ_CHECK(rc == RK_EMALFORMED, "scn_parse: %s", rk_strerror(rc));
        FZ_CHECK(strncmp(err.text, SCN_FZ_NAME ":", strlen(SCN_FZ_NAME) + 1) == 0,
                 "error message without file name: '%s'", err.text);
        fz_use(fz_hash(0, err.text, strlen(err.text)));
        return 0;
    }
    size_t len = 0, len2 = 0;
    char *text = scn_fz_print(&scn_fz_a, &len);
    rc = scn_parse(text, len, SCN_FZ_NAME, &scn_fz_b, &err);
    FZ_CHECK(rc == RK_OK, "the printed scenario does not parse: %s\n%s", err.text, text);
    scn_fz_equal(&scn_fz_a, &scn_fz_b);
    char *again = scn_fz_print(&scn_fz_b, &len2);
    FZ_CHECK(len == len2 && memcmp(text, again, len) == 0, "printing twice differs:\n%s\n----\n%s",
             text, again);
    fz_use(fz_hash(0, text, len));
    free(again);
    free(text);
    return 0;
}
