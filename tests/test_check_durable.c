/*
 * test_check_durable.c — sim/check_durable: the model of what a node's Raft log holds on disk,
 * built from the log jobs its storage synced, behind the simulator's commit durability check
 * and its durability check at every log open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "check_durable.h"
#include "common/err.h"
#include "raft/raft.h"
#include "replica/log_job.h"

#define MAX_E 16

/* A job that was written and synced: truncate_from (0: none), then entries first.. with terms. */
struct job {
    struct replica_log_job j;
    struct raft_entry e[MAX_E];
};

static struct replica_log_job *job(struct job *b, uint64_t truncate_from, uint64_t first,
                                   const uint64_t *terms, size_t n)
{
    memset(b, 0, sizeof(*b));
    b->j.written = true;
    b->j.rc = RK_OK;
    b->j.truncate_from = truncate_from;
    for (size_t i = 0; i < n; i++)
        b->e[i] = (struct raft_entry){.term = terms[i], .index = first + i};
    b->j.entries = b->e;
    b->j.n_entries = n;
    return &b->j;
}

/* Appends, a truncation and new entries over it: holds reports the synced log's (index, term). */
static void synced_jobs_build_the_durable_log(void **state)
{
    (void)state;
    struct durable_log d = {0};
    struct job b;
    durable_log_synced(&d, job(&b, 0, 1, (const uint64_t[]){1, 1, 2, 2}, 4));
    assert_true(durable_log_holds(&d, 4, 2));
    assert_false(durable_log_holds(&d, 4, 1));
    assert_false(durable_log_holds(&d, 5, 2));
    durable_log_synced(&d, job(&b, 3, 3, (const uint64_t[]){3}, 1));
    assert_true(durable_log_holds(&d, 2, 1));
    assert_true(durable_log_holds(&d, 3, 3));
    assert_false(durable_log_holds(&d, 3, 2));
    assert_false(durable_log_holds(&d, 4, 2)); /* truncated */
    durable_log_free(&d);
}

/* A job that was written but not synced changes nothing; one that failed marks its truncation. */
static void unsynced_or_failed_jobs_do_not_count(void **state)
{
    (void)state;
    struct durable_log d = {0};
    struct job b;
    durable_log_synced(&d, job(&b, 0, 1, (const uint64_t[]){1, 1, 1}, 3));
    struct replica_log_job *j = job(&b, 2, 2, (const uint64_t[]){2}, 1);
    j->rc = RK_EIO;
    durable_log_synced(&d, j);
    assert_true(durable_log_holds(&d, 3, 1)); /* the failed job made nothing durable */
    /* Reopened with only entry 1: entries 2 and 3 were being truncated, so nothing is lost. */
    const struct raft_entry one[] = {{.term = 1, .index = 1}};
    assert_int_equal(durable_log_lost(&d, 0, one, 1), 0);
    durable_log_free(&d);
}

/* A reopened log that lost a synced entry is reported at the first one lost; a crash with a
 * truncation under way excuses what it was removing, not what lies before it. */
static void reopened_log_must_hold_what_was_synced(void **state)
{
    (void)state;
    struct durable_log d = {0};
    struct job b;
    durable_log_synced(&d, job(&b, 0, 1, (const uint64_t[]){1, 1, 1, 1}, 4));
    const struct raft_entry two[] = {{.term = 1, .index = 1}, {.term = 1, .index = 2}};
    assert_int_equal(durable_log_lost(&d, 0, two, 2), 3);
    const struct raft_entry other[] = {{.term = 1, .index = 1}, {.term = 2, .index = 2}};
    assert_int_equal(durable_log_lost(&d, 0, other, 2), 2);
    assert_int_equal(durable_log_lost(&d, 4, NULL, 0), 0); /* a snapshot point covers them */
    struct replica_log_job *j = job(&b, 3, 3, (const uint64_t[]){2}, 1);
    j->rc = RK_OK;
    durable_log_crash(&d, &j, 1); /* written, not synced: a truncation from 3 under way */
    assert_int_equal(durable_log_lost(&d, 0, two, 2), 0);
    const struct raft_entry none[] = {{.term = 1, .index = 1}};
    assert_int_equal(durable_log_lost(&d, 0, none, 1), 2);
    durable_log_free(&d);
}

/* A compaction moves the snapshot point: entries behind it are held, those after keep their
 * terms; a snapshot installed past the end empties the log. */
static void compaction_moves_the_snapshot_point(void **state)
{
    (void)state;
    struct durable_log d = {0};
    struct job b;
    durable_log_synced(&d, job(&b, 0, 1, (const uint64_t[]){1, 1, 2, 2, 3}, 5));
    struct replica_log_job *j = job(&b, 0, 0, NULL, 0);
    j->has_compact = true;
    j->compact_index = 3;
    durable_log_synced(&d, j);
    assert_true(durable_log_holds(&d, 1, 9));
    assert_true(durable_log_holds(&d, 4, 2));
    assert_true(durable_log_holds(&d, 5, 3));
    assert_false(durable_log_holds(&d, 5, 2));
    j = job(&b, 0, 0, NULL, 0);
    j->has_compact = true;
    j->compact_index = 10;
    durable_log_synced(&d, j);
    assert_true(durable_log_holds(&d, 10, 7));
    assert_false(durable_log_holds(&d, 11, 4));
    durable_log_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(synced_jobs_build_the_durable_log),
        cmocka_unit_test(unsynced_or_failed_jobs_do_not_count),
        cmocka_unit_test(reopened_log_must_hold_what_was_synced),
        cmocka_unit_test(compaction_moves_the_snapshot_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
