/*
 * test_scenario.c — sim/scenario: the scenario language (scenarios/README.md).
 *
 * One behaviour per test: defaults, every setting, every action and node-set form, lexical
 * details (comments, CRLF, tabs), number edge cases, every error with its exact message, line
 * and column, the checks that wait for the whole file, the print/parse round trip, and a
 * deterministic mutation loop that holds the parser to being total. Scenarios are large
 * (~400 KiB), so the tests share static ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/prng.h"
#include "scenario.h"

#define FILE_NAME "t.scn"
#define MS        1000ULL
#define SEC       1000000ULL

static struct scenario scn_a;
static struct scenario scn_b;
static struct scenario scn_c;
static char text_buf[1 << 20];
static char print_buf[1 << 20];

/* ---- helpers ------------------------------------------------------------------------------ */

static int parse_into(const char *text, struct scenario *s, struct rk_errmsg *err)
{
    err->text[0] = '\0';
    return scn_parse(text, strlen(text), FILE_NAME, s, err);
}

/* Parses text into scn_a and fails the test, showing the message, unless it is valid. */
static const struct scenario *parse_ok(const char *text)
{
    struct rk_errmsg err;
    int rc = parse_into(text, &scn_a, &err);
    if (rc != RK_OK)
        fail_msg("unexpected error: %s", err.text);
    return &scn_a;
}

/* Parses n bytes (which may hold NULs) and asserts the exact error message. */
static void assert_error_n(const char *text, size_t n, const char *message)
{
    struct rk_errmsg err;
    err.text[0] = '\0';
    int rc = scn_parse(text, n, FILE_NAME, &scn_a, &err);
    assert_int_equal(rc, RK_EMALFORMED);
    assert_string_equal(err.text, message);
}

static void assert_error(const char *text, const char *message)
{
    assert_error_n(text, strlen(text), message);
}

static void assert_sets_equal(const struct scn_set *a, const struct scn_set *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->n_ids, b->n_ids);
    for (uint32_t i = 0; i < a->n_ids && i < SCN_MAX_NODES; i++)
        assert_int_equal(a->ids[i], b->ids[i]);
}

static void assert_steps_equal(const struct scn_step *a, const struct scn_step *b, bool lines)
{
    assert_int_equal(a->at_us, b->at_us);
    assert_int_equal(a->action, b->action);
    assert_int_equal(a->n_groups, b->n_groups);
    for (uint32_t g = 0; g < a->n_groups && g < SCN_MAX_GROUPS; g++)
        assert_sets_equal(&a->groups[g], &b->groups[g]);
    assert_true(a->factor == b->factor);
    assert_int_equal(a->param, b->param);
    if (lines)
        assert_int_equal(a->line, b->line);
}

/* Field by field; lines: compare the steps' source lines too. */
static void assert_scenarios_equal(const struct scenario *a, const struct scenario *b, bool lines)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->nodes, b->nodes);
    assert_int_equal(a->tick_us, b->tick_us);
    assert_int_equal(a->election_ticks_min, b->election_ticks_min);
    assert_int_equal(a->election_ticks_max, b->election_ticks_max);
    assert_int_equal(a->heartbeat_ticks, b->heartbeat_ticks);
    assert_int_equal(a->pre_vote, b->pre_vote);
    assert_int_equal(a->check_quorum, b->check_quorum);
    assert_int_equal(a->latency_us_min, b->latency_us_min);
    assert_int_equal(a->latency_us_max, b->latency_us_max);
    assert_true(a->drop == b->drop);
    assert_true(a->duplicate == b->duplicate);
    assert_true(a->reorder == b->reorder);
    assert_int_equal(a->reorder_us_max, b->reorder_us_max);
    assert_int_equal(a->clients, b->clients);
    assert_int_equal(a->keys, b->keys);
    assert_int_equal(a->mix_get, b->mix_get);
    assert_int_equal(a->mix_put, b->mix_put);
    assert_int_equal(a->mix_del, b->mix_del);
    assert_int_equal(a->mix_incr, b->mix_incr);
    assert_int_equal(a->mix_putif, b->mix_putif);
    assert_int_equal(a->mix_mset, b->mix_mset);
    assert_int_equal(a->mix_mget, b->mix_mget);
    assert_int_equal(a->mix_txn, b->mix_txn);
    assert_int_equal(a->mix_watch, b->mix_watch);
    assert_int_equal(a->mix_expire, b->mix_expire);
    assert_int_equal(a->mix_append, b->mix_append);
    assert_int_equal(a->mix_getdel, b->mix_getdel);
    assert_int_equal(a->mix_setnx, b->mix_setnx);
    assert_int_equal(a->mix_rename, b->mix_rename);
    assert_int_equal(a->mix_scan, b->mix_scan);
    assert_int_equal(a->mix_keys, b->mix_keys);
    assert_int_equal(a->mix_bits, b->mix_bits);
    assert_int_equal(a->wallclock_us, b->wallclock_us);
    assert_int_equal(a->pipeline, b->pipeline);
    assert_int_equal(a->pipeline_followers, b->pipeline_followers);
    assert_int_equal(a->think_us_min, b->think_us_min);
    assert_int_equal(a->think_us_max, b->think_us_max);
    assert_int_equal(a->timeout_us, b->timeout_us);
    assert_int_equal(a->duration_us, b->duration_us);
    assert_int_equal(a->expect_leader_us, b->expect_leader_us);
    assert_int_equal(a->expect_complete_us, b->expect_complete_us);
    assert_int_equal(a->expect_recovery_us, b->expect_recovery_us);
    assert_int_equal(a->expect_available_us, b->expect_available_us);
    assert_int_equal(a->expect_unavailable_us, b->expect_unavailable_us);
    assert_int_equal(a->expect_stepdown_elections, b->expect_stepdown_elections);
    assert_int_equal(a->ticks_aligned, b->ticks_aligned);
    assert_int_equal(a->n_refusals, b->n_refusals);
    for (uint32_t i = 0; i < a->n_refusals && i < SCN_MAX_REFUSALS; i++)
        assert_string_equal(a->refusals[i], b->refusals[i]);
    assert_true(a->chaos.crash_per_s == b->chaos.crash_per_s);
    assert_true(a->chaos.partition_per_s == b->chaos.partition_per_s);
    assert_true(a->chaos.pause_per_s == b->chaos.pause_per_s);
    assert_true(a->chaos.skew_per_s == b->chaos.skew_per_s);
    assert_int_equal(a->chaos.downtime_us_min, b->chaos.downtime_us_min);
    assert_int_equal(a->chaos.downtime_us_max, b->chaos.downtime_us_max);
    assert_int_equal(a->swarm, b->swarm);
    assert_int_equal(a->n_steps, b->n_steps);
    for (uint32_t i = 0; i < a->n_steps && i < SCN_MAX_STEPS; i++)
        assert_steps_equal(&a->steps[i], &b->steps[i], lines);
}

/* Parses text, then prints the result into print_buf and returns it. */
static const char *print_parsed(const char *text)
{
    const struct scenario *s = parse_ok(text);
    size_t n = scn_print(s, print_buf, sizeof(print_buf));
    assert_true(n < sizeof(print_buf));
    return print_buf;
}

/* The ids of a set, as "1 2 3", for compact assertions. */
static const char *ids_text(const struct scn_set *set)
{
    static char text[64];
    size_t n = 0;
    text[0] = '\0';
    for (uint32_t i = 0; i < set->n_ids && i < SCN_MAX_NODES; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, i ? " %u" : "%u", set->ids[i]);
    return text;
}

static const char rich_scenario[] = "# a scenario that sets everything and uses every action\n"
                                    "nodes 5\n"
                                    "tick 2.5ms aligned\n"
                                    "election 12 30\n"
                                    "heartbeat 3\n"
                                    "prevote off\n"
                                    "checkquorum off\n"
                                    "latency 500us 7ms\n"
                                    "drop 0.05\n"
                                    "duplicate 2.5%\n"
                                    "reorder 0.1 15ms\n"
                                    "clients 16\n"
                                    "keys 40\n"
                                    "mix del 1 get 7 put 3\n"
                                    "think 0s 1.5ms\n"
                                    "timeout 750ms\n"
                                    "duration 1.5s\n"
                                    "expect leader within 2s\n"
                                    "expect complete within 4.25s\n"
                                    "expect recovery within 7s\n"
                                    "expect available within 3s\n"
                                    "expect unavailable below 2s\n"
                                    "expect stepdown within 4 elections\n"
                                    "expect refusal could not\n"
                                    "expect refusal bit  rot\n"
                                    "chaos crash 0.1\n"
                                    "chaos partition 1e-3\n"
                                    "chaos pause 0.3333333333333333\n"
                                    "chaos skew 2\n"
                                    "chaos downtime 100ms 2s\n"
                                    "swarm on\n"
                                    "at 0s partition 1 2 | 3 4 | rest\n"
                                    "at 10ms partition random\n"
                                    "at 10ms partition leader | random minority | follower\n"
                                    "at 20ms partition random majority | random\n"
                                    "at 30ms oneway leader -> all\n"
                                    "at 30ms oneway 5 4 -> 1\n"
                                    "at 40ms isolate random minority\n"
                                    "at 50ms heal\n"
                                    "at 60ms crash follower\n"
                                    "at 70ms restart all\n"
                                    "at 80ms pause 2 3\n"
                                    "at 90ms resume all\n"
                                    "at 100ms skew random 0.5\n"
                                    "at 100ms skew 1 2 1.25\n"
                                    "at 200ms set drop 0.2\n"
                                    "at 200ms set duplicate 1%\n"
                                    "at 300ms set reorder 0.7\n"
                                    "at 400ms set latency 1ms 20ms\n"
                                    "at 1.5s heal\n";

/* ---- defaults ---------------------------------------------------------------------------- */

static void defaults_match_the_documented_values(void **state)
{
    (void)state;
    struct scenario *s = &scn_a;
    scn_defaults(s);
    assert_string_equal(s->name, "");
    assert_int_equal(s->nodes, 3);
    assert_int_equal(s->tick_us, 10 * MS);
    assert_int_equal(s->election_ticks_min, 10);
    assert_int_equal(s->election_ticks_max, 20);
    assert_int_equal(s->heartbeat_ticks, 1);
    assert_true(s->pre_vote);
    assert_true(s->check_quorum);
    assert_int_equal(s->latency_us_min, 1 * MS);
    assert_int_equal(s->latency_us_max, 5 * MS);
    assert_true(s->drop == 0.0 && s->duplicate == 0.0 && s->reorder == 0.0);
    assert_int_equal(s->reorder_us_max, 50 * MS);
    assert_int_equal(s->clients, 4);
    assert_int_equal(s->keys, 3);
    assert_int_equal(s->mix_get, 50);
    assert_int_equal(s->mix_put, 40);
    assert_int_equal(s->mix_del, 10);
    assert_int_equal(s->think_us_min, 0);
    assert_int_equal(s->think_us_max, 10 * MS);
    assert_int_equal(s->timeout_us, 1 * SEC);
    assert_int_equal(s->duration_us, 10 * SEC);
    assert_int_equal(s->expect_leader_us, 0);
    assert_int_equal(s->expect_complete_us, 0);
    assert_true(s->chaos.crash_per_s == 0.0 && s->chaos.partition_per_s == 0.0);
    assert_true(s->chaos.pause_per_s == 0.0 && s->chaos.skew_per_s == 0.0);
    assert_int_equal(s->chaos.downtime_us_min, 1 * SEC);
    assert_int_equal(s->chaos.downtime_us_max, 3 * SEC);
    assert_false(s->swarm);
    assert_int_equal(s->n_steps, 0);
}

static void empty_text_gives_the_defaults(void **state)
{
    (void)state;
    scn_defaults(&scn_b);
    memcpy(scn_b.name, FILE_NAME, sizeof(FILE_NAME));
    assert_scenarios_equal(parse_ok(""), &scn_b, true);
    struct rk_errmsg err;
    assert_int_equal(scn_parse(NULL, 0, FILE_NAME, &scn_a, &err), RK_OK);
    assert_scenarios_equal(&scn_a, &scn_b, true);
}

static void name_is_the_file_name_cut_to_fit(void **state)
{
    (void)state;
    char name[300];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct rk_errmsg err;
    assert_int_equal(scn_parse("", 0, name, &scn_a, &err), RK_OK);
    assert_int_equal(strlen(scn_a.name), sizeof(scn_a.name) - 1);
    assert_memory_equal(scn_a.name, name, sizeof(scn_a.name) - 1);
    assert_int_equal(scn_parse("", 0, "dir/x.scn", &scn_a, &err), RK_OK);
    assert_string_equal(scn_a.name, "dir/x.scn");
}

/* ---- settings ---------------------------------------------------------------------------- */

static void setting_nodes(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("nodes 1\n")->nodes, 1);
    assert_int_equal(parse_ok("nodes 9\n")->nodes, 9);
    assert_int_equal(parse_ok("nodes 05\n")->nodes, 5);
}

static void setting_tick(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("tick 1us")->tick_us, 1);
    assert_int_equal(parse_ok("tick 2.5ms")->tick_us, 2500);
}

static void setting_election_and_heartbeat(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("election 15 15\nheartbeat 14\n");
    assert_int_equal(s->election_ticks_min, 15);
    assert_int_equal(s->election_ticks_max, 15);
    assert_int_equal(s->heartbeat_ticks, 14);
}

static void setting_on_off_switches(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("prevote off\ncheckquorum off\nswarm on\n");
    assert_false(s->pre_vote);
    assert_false(s->check_quorum);
    assert_true(s->swarm);
    s = parse_ok("prevote on\ncheckquorum on\nswarm off\n");
    assert_true(s->pre_vote);
    assert_true(s->check_quorum);
    assert_false(s->swarm);
}

static void setting_latency(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("latency 0us 0us\n");
    assert_int_equal(s->latency_us_min, 0);
    assert_int_equal(s->latency_us_max, 0);
    s = parse_ok("latency 2ms 2ms\n");
    assert_int_equal(s->latency_us_min, 2000);
    assert_int_equal(s->latency_us_max, 2000);
}

static void setting_drop_and_duplicate(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("drop 0.25\nduplicate 10%\n");
    assert_true(s->drop == 0.25);
    assert_true(s->duplicate == 0.1);
}

static void setting_reorder_with_and_without_delay(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("reorder 0.05 20ms\n");
    assert_true(s->reorder == 0.05);
    assert_int_equal(s->reorder_us_max, 20 * MS);
    s = parse_ok("reorder 0.5 0us\nlatency 1ms 9ms\n");
    assert_int_equal(s->reorder_us_max, 0);
}

static void setting_reorder_delay_defaults_to_ten_latencies_wherever_latency_is(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("reorder 0.1\nlatency 1ms 7ms\n")->reorder_us_max, 70 * MS);
    assert_int_equal(parse_ok("latency 1ms 3ms\n")->reorder_us_max, 30 * MS);
    /* Ten latencies may pass the one-year limit: the default stops at it. */
    assert_int_equal(parse_ok("latency 0s 31536000s\n")->reorder_us_max, SCN_MAX_DURATION_US);
}

static void setting_clients_and_keys(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("clients 64\nkeys 1000\n");
    assert_int_equal(s->clients, 64);
    assert_int_equal(s->keys, 1000);
    s = parse_ok("clients 1\nkeys 1\n");
    assert_int_equal(s->clients, 1);
    assert_int_equal(s->keys, 1);
}

static void setting_generic_mix_and_wallclock(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("mix txn 1 watch 2 expire 3 append 4 getdel 5 setnx 6 "
                                        "rename 7\npipeline 2\nwallclock 40ms\n");
    assert_int_equal(s->mix_txn, 1);
    assert_int_equal(s->mix_watch, 2);
    assert_int_equal(s->mix_expire, 3);
    assert_int_equal(s->mix_append, 4);
    assert_int_equal(s->mix_getdel, 5);
    assert_int_equal(s->mix_setnx, 6);
    assert_int_equal(s->mix_rename, 7);
    assert_int_equal(s->mix_get, 0);
    assert_int_equal(s->wallclock_us, 40000);
    assert_error("mix txn 1\n", "t.scn:1:5: expected only get, put and del weights without "
                                "`pipeline N` (N > 0), got 'txn'");
}

static void setting_mix_of_every_kind_and_pipeline(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("mix mget 7 get 1 incr 4 mset 6 putif 5\npipeline 8 followers\n");
    assert_int_equal(s->mix_get, 1);
    assert_int_equal(s->mix_put, 0);
    assert_int_equal(s->mix_incr, 4);
    assert_int_equal(s->mix_putif, 5);
    assert_int_equal(s->mix_mset, 6);
    assert_int_equal(s->mix_mget, 7);
    assert_int_equal(s->pipeline, 8);
    assert_true(s->pipeline_followers);
    s = parse_ok("pipeline 2\n");
    assert_int_equal(s->pipeline, 2);
    assert_false(s->pipeline_followers);
    assert_int_equal(s->mix_incr, 0);
    assert_error("mix incr 1\n", "t.scn:1:5: expected only get, put and del weights without `pipeline N` (N > 0), got 'incr'");
    assert_error("pipeline 65\n", "t.scn:1:10: expected a pipeline depth (0..64), got '65'");
    assert_error("pipeline 2 leader\n", "t.scn:1:12: expected followers or end of line, got 'leader'");
}

static void setting_mix_in_any_order_and_unnamed_weights_zero(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("mix del 3 put 2 get 1\n");
    assert_int_equal(s->mix_get, 1);
    assert_int_equal(s->mix_put, 2);
    assert_int_equal(s->mix_del, 3);
    s = parse_ok("mix put 1\n");
    assert_int_equal(s->mix_get, 0);
    assert_int_equal(s->mix_put, 1);
    assert_int_equal(s->mix_del, 0);
}

static void setting_think_timeout_duration(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("think 1ms 20ms\ntimeout 500ms\nduration 20s\n");
    assert_int_equal(s->think_us_min, 1 * MS);
    assert_int_equal(s->think_us_max, 20 * MS);
    assert_int_equal(s->timeout_us, 500 * MS);
    assert_int_equal(s->duration_us, 20 * SEC);
}

/* The end-of-run and availability expectations, and aligned ticks. */
static void setting_expect_recovery_availability_refusal(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("");
    assert_int_equal(s->expect_recovery_us, 10 * SEC);
    assert_int_equal(s->expect_stepdown_elections, 0);
    assert_int_equal(s->expect_available_us, 0);
    assert_int_equal(s->expect_unavailable_us, 0);
    assert_int_equal(s->n_refusals, 0);
    assert_false(s->ticks_aligned);
    s = parse_ok("expect recovery within 3s\nexpect stepdown within 2 elections\n"
                 "expect available within 1.5s\nexpect unavailable below 800ms\n"
                 "expect refusal applied index  outside\tthe log # a comment\n"
                 "expect refusal bit rot\ntick 5ms aligned\n");
    assert_int_equal(s->expect_recovery_us, 3 * SEC);
    assert_int_equal(s->expect_stepdown_elections, 2);
    assert_int_equal(s->expect_available_us, 1500 * MS);
    assert_int_equal(s->expect_unavailable_us, 800 * MS);
    assert_int_equal(s->n_refusals, 2);
    assert_string_equal(s->refusals[0], "applied index outside the log");
    assert_string_equal(s->refusals[1], "bit rot");
    assert_true(s->ticks_aligned);
    assert_int_equal(s->tick_us, 5 * MS);
    s = parse_ok("expect recovery off\nexpect stepdown off\n");
    assert_int_equal(s->expect_recovery_us, 0);
    assert_int_equal(s->expect_stepdown_elections, 0);
    const char *text = print_parsed("expect refusal outside the log\ntick 5ms aligned\n"
                                    "expect stepdown within 3 elections\n");
    assert_non_null(strstr(text, "\ntick 5ms aligned\n"));
    assert_non_null(strstr(text, "\nexpect stepdown within 3 elections\n"));
    assert_non_null(strstr(text, "\nexpect refusal outside the log\n"));
}

static void setting_expect_within_and_off(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("expect leader within 2s\nexpect complete within 5s\n");
    assert_int_equal(s->expect_leader_us, 2 * SEC);
    assert_int_equal(s->expect_complete_us, 5 * SEC);
    s = parse_ok("expect leader off\nexpect complete off\n");
    assert_int_equal(s->expect_leader_us, 0);
    assert_int_equal(s->expect_complete_us, 0);
}

static void setting_chaos_rates_and_downtime(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("chaos crash 0.1\nchaos partition 2\nchaos pause 0\n"
                                        "chaos skew 1000\nchaos downtime 0s 10s\n");
    assert_true(s->chaos.crash_per_s == 0.1);
    assert_true(s->chaos.partition_per_s == 2.0);
    assert_true(s->chaos.pause_per_s == 0.0);
    assert_true(s->chaos.skew_per_s == SCN_MAX_CHAOS_RATE);
    assert_int_equal(s->chaos.downtime_us_min, 0);
    assert_int_equal(s->chaos.downtime_us_max, 10 * SEC);
}

static void settings_may_follow_steps(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("at 1s crash 5\nnodes 5\nduration 2s\n");
    assert_int_equal(s->nodes, 5);
    assert_int_equal(s->n_steps, 1);
    assert_int_equal(s->steps[0].groups[0].ids[0], 5);
}

/* ---- steps ------------------------------------------------------------------------------- */

static void step_partition_of_id_groups(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("nodes 5\nat 2s partition 1 2 | 3 4 5\n");
    assert_int_equal(s->n_steps, 1);
    const struct scn_step *st = &s->steps[0];
    assert_int_equal(st->at_us, 2 * SEC);
    assert_int_equal(st->action, SCN_PARTITION);
    assert_int_equal(st->line, 2);
    assert_int_equal(st->n_groups, 2);
    assert_int_equal(st->groups[0].kind, SCN_SET_IDS);
    assert_string_equal(ids_text(&st->groups[0]), "1 2");
    assert_string_equal(ids_text(&st->groups[1]), "3 4 5");
}

static void step_partition_of_many_groups_with_rest(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("nodes 9\nat 0s partition 3 | leader | rest | 9 1\n");
    const struct scn_step *st = &s->steps[0];
    assert_int_equal(st->n_groups, 4);
    assert_string_equal(ids_text(&st->groups[0]), "3");
    assert_int_equal(st->groups[1].kind, SCN_SET_LEADER);
    assert_int_equal(st->groups[2].kind, SCN_SET_REST);
    assert_int_equal(st->groups[2].n_ids, 0);
    assert_string_equal(ids_text(&st->groups[3]), "9 1");
}

static void step_partition_of_nine_singletons(void **state)
{
    (void)state;
    const struct scenario *s =
        parse_ok("nodes 9\nat 0s partition 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9\n");
    assert_int_equal(s->steps[0].n_groups, SCN_MAX_GROUPS);
    assert_string_equal(ids_text(&s->steps[0].groups[8]), "9");
}

static void step_partition_random_splits_in_halves(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("at 1s partition random\n");
    assert_int_equal(s->steps[0].action, SCN_PARTITION);
    assert_int_equal(s->steps[0].n_groups, 0);
}

static void step_partition_random_node_is_a_group(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("at 1s partition random | rest\n");
    assert_int_equal(s->steps[0].n_groups, 2);
    assert_int_equal(s->steps[0].groups[0].kind, SCN_SET_RANDOM);
    assert_int_equal(s->steps[0].groups[1].kind, SCN_SET_REST);
}

static void step_every_set_form(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint8_t kind;
    } forms[] = {
        {"leader", SCN_SET_LEADER},
        {"follower", SCN_SET_FOLLOWER},
        {"random", SCN_SET_RANDOM},
        {"random minority", SCN_SET_RANDOM_MINORITY},
        {"random majority", SCN_SET_RANDOM_MAJORITY},
        {"all", SCN_SET_ALL},
        {"2", SCN_SET_IDS},
        {"3 1 2", SCN_SET_IDS},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "at 1s crash %s\n", forms[i].text);
        const struct scenario *s = parse_ok(text);
        assert_int_equal(s->steps[0].action, SCN_CRASH);
        assert_int_equal(s->steps[0].n_groups, 1);
        assert_int_equal(s->steps[0].groups[0].kind, forms[i].kind);
        if (forms[i].kind == SCN_SET_IDS)
            assert_string_equal(ids_text(&s->steps[0].groups[0]), forms[i].text);
        else
            assert_int_equal(s->steps[0].groups[0].n_ids, 0);
    }
}

static void step_oneway_from_set_to_set(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("at 1s oneway 1 2 -> 3\nat 2s oneway leader -> all\n");
    assert_int_equal(s->steps[0].action, SCN_ONEWAY);
    assert_int_equal(s->steps[0].n_groups, 2);
    assert_string_equal(ids_text(&s->steps[0].groups[0]), "1 2");
    assert_string_equal(ids_text(&s->steps[0].groups[1]), "3");
    assert_int_equal(s->steps[1].groups[0].kind, SCN_SET_LEADER);
    assert_int_equal(s->steps[1].groups[1].kind, SCN_SET_ALL);
}

static void step_isolate_and_heal(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("at 1s isolate leader\nat 2s heal\n");
    assert_int_equal(s->steps[0].action, SCN_ISOLATE);
    assert_int_equal(s->steps[0].groups[0].kind, SCN_SET_LEADER);
    assert_int_equal(s->steps[1].action, SCN_HEAL);
    assert_int_equal(s->steps[1].n_groups, 0);
}

static void step_crash_restart_pause_resume(void **state)
{
    (void)state;
    const struct scenario *s =
        parse_ok("at 1s crash 1\nat 2s restart all\nat 3s pause follower\nat 4s resume 2 3\n");
    assert_int_equal(s->n_steps, 4);
    assert_int_equal(s->steps[0].action, SCN_CRASH);
    assert_int_equal(s->steps[1].action, SCN_RESTART);
    assert_int_equal(s->steps[1].groups[0].kind, SCN_SET_ALL);
    assert_int_equal(s->steps[2].action, SCN_PAUSE);
    assert_int_equal(s->steps[2].groups[0].kind, SCN_SET_FOLLOWER);
    assert_int_equal(s->steps[3].action, SCN_RESUME);
    assert_string_equal(ids_text(&s->steps[3].groups[0]), "2 3");
}

static void step_skew_takes_the_last_token_as_factor(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("at 1s skew 1 2 2\nat 2s skew leader 0.5\n"
                                        "at 3s skew random minority 100\n");
    assert_int_equal(s->steps[0].action, SCN_SKEW);
    assert_string_equal(ids_text(&s->steps[0].groups[0]), "1 2");
    assert_true(s->steps[0].factor == 2.0);
    assert_int_equal(s->steps[1].groups[0].kind, SCN_SET_LEADER);
    assert_true(s->steps[1].factor == 0.5);
    assert_int_equal(s->steps[2].groups[0].kind, SCN_SET_RANDOM_MINORITY);
    assert_true(s->steps[2].factor == SCN_MAX_SKEW);
}

static void step_set_network_probabilities(void **state)
{
    (void)state;
    const struct scenario *s =
        parse_ok("at 1s set drop 0.2\nat 1s set duplicate 5%\nat 1s set reorder 1\n");
    assert_int_equal(s->steps[0].action, SCN_SET_NET);
    assert_int_equal(s->steps[0].param, SCN_NET_DROP);
    assert_true(s->steps[0].factor == 0.2);
    assert_int_equal(s->steps[1].param, SCN_NET_DUPLICATE);
    assert_true(s->steps[1].factor == 0.05);
    assert_int_equal(s->steps[2].param, SCN_NET_REORDER);
    assert_true(s->steps[2].factor == 1.0);
}

static void step_set_latency_makes_a_min_and_a_max_step(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("\nat 3s set latency 2ms 1.5s\n");
    assert_int_equal(s->n_steps, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s->steps[i].action, SCN_SET_NET);
        assert_int_equal(s->steps[i].at_us, 3 * SEC);
        assert_int_equal(s->steps[i].line, 2);
    }
    assert_int_equal(s->steps[0].param, SCN_NET_LATENCY_MIN);
    assert_true(s->steps[0].factor == 2000.0);
    assert_int_equal(s->steps[1].param, SCN_NET_LATENCY_MAX);
    assert_true(s->steps[1].factor == 1500000.0);
}

static void steps_at_the_same_time_keep_file_order(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("at 1s crash 1\nat 1s restart 1\nat 1s heal\n");
    assert_int_equal(s->steps[0].action, SCN_CRASH);
    assert_int_equal(s->steps[1].action, SCN_RESTART);
    assert_int_equal(s->steps[2].action, SCN_HEAL);
    assert_int_equal(s->steps[2].line, 3);
}

static void step_at_the_duration_is_allowed(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("duration 5s\nat 5s heal\n")->n_steps, 1);
}

static void at_most_max_steps_are_accepted(void **state)
{
    (void)state;
    size_t n = 0;
    for (int i = 0; i < SCN_MAX_STEPS; i++)
        n += (size_t)snprintf(text_buf + n, sizeof(text_buf) - n, "at 1s heal\n");
    assert_int_equal(parse_ok(text_buf)->n_steps, SCN_MAX_STEPS);
}

/* ---- lexical ----------------------------------------------------------------------------- */

static void comments_blank_lines_and_tabs_are_ignored(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("# top comment\n\n   \n\t\n"
                                        "\tnodes\t5   # five\n"
                                        "  # indented comment\n"
                                        "at\t1s  crash   1\t2\n");
    assert_int_equal(s->nodes, 5);
    assert_int_equal(s->n_steps, 1);
    assert_int_equal(s->steps[0].line, 7);
    assert_string_equal(ids_text(&s->steps[0].groups[0]), "1 2");
}

static void hash_ends_a_token_and_the_line(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("nodes 5#no space needed\nkeys 7#\n");
    assert_int_equal(s->nodes, 5);
    assert_int_equal(s->keys, 7);
}

static void crlf_line_endings_are_accepted(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("nodes 5\r\n\r\n# c\r\nat 1s crash 1\r\nkeys 9\r");
    assert_int_equal(s->nodes, 5);
    assert_int_equal(s->keys, 9);
    assert_int_equal(s->steps[0].line, 4);
}

static void last_line_needs_no_newline(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("nodes 7")->nodes, 7);
}

static void line_of_exactly_max_bytes_is_accepted(void **state)
{
    (void)state;
    memcpy(text_buf, "nodes 4 #", 9);
    memset(text_buf + 9, 'x', SCN_MAX_LINE_BYTES - 9);
    memcpy(text_buf + SCN_MAX_LINE_BYTES, "\r\n", 3);
    assert_int_equal(parse_ok(text_buf)->nodes, 4);
}

/* ---- numbers ----------------------------------------------------------------------------- */

static void durations_in_every_unit(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("tick 500us")->tick_us, 500);
    assert_int_equal(parse_ok("tick 10ms")->tick_us, 10 * MS);
    assert_int_equal(parse_ok("tick 1.5s")->tick_us, 1500 * MS);
    assert_int_equal(parse_ok("tick 0.25ms")->tick_us, 250);
    assert_int_equal(parse_ok("tick 007s")->tick_us, 7 * SEC);
}

static void duration_fractions_round_to_the_nearest_microsecond(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("tick 1.5us")->tick_us, 2);
    assert_int_equal(parse_ok("tick 1.49999us")->tick_us, 1);
    assert_int_equal(parse_ok("tick 1.2345ms")->tick_us, 1235);
    assert_int_equal(parse_ok("tick 1.2344999ms")->tick_us, 1234);
    assert_int_equal(parse_ok("tick 0.0000005s")->tick_us, 1);
    assert_int_equal(parse_ok("tick 2.0000004999999999999999s")->tick_us, 2 * SEC);
    assert_int_equal(parse_ok("tick 0.9999995s")->tick_us, 1 * SEC);
}

static void duration_of_one_year_is_the_largest(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("duration 31536000s")->duration_us, SCN_MAX_DURATION_US);
    assert_int_equal(parse_ok("duration 31536000000000us")->duration_us, SCN_MAX_DURATION_US);
    assert_error("duration 31536000000001us",
                 "t.scn:1:10: expected a duration of at most one year (31536000s), got "
                 "'31536000000001us'");
    /* Rounding may reach the limit, but not pass it. */
    assert_int_equal(parse_ok("duration 31535999.9999995s")->duration_us, SCN_MAX_DURATION_US);
    assert_error("duration 31536000.0000005s",
                 "t.scn:1:10: expected a duration of at most one year (31536000s), got "
                 "'31536000.0000005s'");
}

static void duration_of_many_digits_does_not_overflow(void **state)
{
    (void)state;
    assert_error("duration 99999999999999999999999999999999999999s",
                 "t.scn:1:10: expected a duration of at most one year (31536000s), got "
                 "'99999999999999999999999999999999...'");
    assert_error("duration 18446744073709551617us",
                 "t.scn:1:10: expected a duration of at most one year (31536000s), got "
                 "'18446744073709551617us'");
}

static void probabilities_as_decimals_percents_and_exponents(void **state)
{
    (void)state;
    assert_true(parse_ok("drop 0")->drop == 0.0);
    assert_true(parse_ok("drop 1")->drop == 1.0);
    assert_true(parse_ok("drop 1.000")->drop == 1.0);
    assert_true(parse_ok("drop 0.05")->drop == 0.05);
    assert_true(parse_ok("drop 5%")->drop == 0.05);
    assert_true(parse_ok("drop 0%")->drop == 0.0);
    assert_true(parse_ok("drop 100%")->drop == 1.0);
    assert_true(parse_ok("drop 2.5%")->drop == 0.025);
    assert_true(parse_ok("drop 0.1%")->drop == 0.001);
    assert_true(parse_ok("drop 1e-3")->drop == 0.001);
    assert_true(parse_ok("drop 5E-1")->drop == 0.5);
    assert_true(parse_ok("drop 0.01e+2")->drop == 1.0);
    assert_true(parse_ok("drop 1e-400")->drop == 0.0);
}

/* ---- errors: lines and tokens ------------------------------------------------------------ */

static void error_unknown_command(void **state)
{
    (void)state;
    assert_error(
        "nodes 3\n  foo 1\n",
        "t.scn:2:3: expected a command (nodes, members, tick, election, heartbeat, prevote, "
        "checkquorum, replication, snapshot, latency, drop, duplicate, reorder, clients, "
        "keys, mix, think, timeout, duration, expect, chaos, disk, swarm, at), got 'foo'");
}

static void error_keywords_are_case_sensitive(void **state)
{
    (void)state;
    assert_error(
        "Nodes 3",
        "t.scn:1:1: expected a command (nodes, members, tick, election, heartbeat, prevote, "
        "checkquorum, replication, snapshot, latency, drop, duplicate, reorder, clients, "
        "keys, mix, think, timeout, duration, expect, chaos, disk, swarm, at), got 'Nodes'");
    assert_error("prevote ON", "t.scn:1:9: expected on or off, got 'ON'");
}

static void error_trailing_token(void **state)
{
    (void)state;
    assert_error("nodes 3 4\n", "t.scn:1:9: expected end of line, got '4'");
    assert_error("at 1s heal now\n", "t.scn:1:12: expected end of line, got 'now'");
}

static void error_missing_argument_is_at_end_of_line(void **state)
{
    (void)state;
    assert_error("nodes", "t.scn:1:6: expected a node count (1..9), got end of line");
    assert_error("keys 3\nclients   # none\n",
                 "t.scn:2:8: expected a client count (1..64), got end of line");
}

static void error_setting_given_twice(void **state)
{
    (void)state;
    assert_error("nodes 3\n\nnodes 5\n",
                 "t.scn:3:1: expected each setting once (nodes is already set on line 1), got "
                 "'nodes'");
    assert_error("expect leader off\nexpect complete off\nexpect leader within 1s\n",
                 "t.scn:3:8: expected each setting once (expect leader is already set on line "
                 "1), got 'leader'");
    assert_error("chaos crash 1\nchaos crash 2\n",
                 "t.scn:2:7: expected each setting once (chaos crash is already set on line 1), "
                 "got 'crash'");
}

static void error_nul_byte(void **state)
{
    (void)state;
    static const char text[] = "nodes 3\nkeys 4\0 # after\n";
    assert_error_n(text, sizeof(text) - 1,
                   "t.scn:2:7: expected text without NUL bytes, got '\\x00'");
    static const char in_comment[] = "# \0\n";
    assert_error_n(in_comment, sizeof(in_comment) - 1,
                   "t.scn:1:3: expected text without NUL bytes, got '\\x00'");
}

static void error_line_too_long(void **state)
{
    (void)state;
    memcpy(text_buf, "nodes 3\n#", 9);
    memset(text_buf + 9, 'y', SCN_MAX_LINE_BYTES);
    text_buf[9 + SCN_MAX_LINE_BYTES] = '\0';
    assert_error(text_buf, "t.scn:2:4097: expected a line of at most 4096 bytes, got 'y'");
    text_buf[9 + SCN_MAX_LINE_BYTES] = 'z';
    memset(text_buf + 10 + SCN_MAX_LINE_BYTES, 'z', 40);
    text_buf[50 + SCN_MAX_LINE_BYTES] = '\0';
    assert_error(text_buf, "t.scn:2:4097: expected a line of at most 4096 bytes, got "
                           "'yzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz...'");
}

static void error_too_many_lines(void **state)
{
    (void)state;
    memset(text_buf, '\n', SCN_MAX_LINES);
    memcpy(text_buf + SCN_MAX_LINES, "nodes 3\n", 9);
    assert_error(text_buf, "t.scn:100001:1: expected at most 100000 lines, got 'nodes 3'");
    text_buf[SCN_MAX_LINES] = '\0';
    parse_ok(text_buf);
}

static void error_token_is_escaped_and_cut(void **state)
{
    (void)state;
    assert_error("keys it's\\\x01\x7f\xc3\xa9",
                 "t.scn:1:6: expected a key count (1..1000), got 'it\\'s\\\\\\x01\\x7f\\xc3"
                 "\\xa9'");
    assert_error("keys 123456789012345678901234567890123456789",
                 "t.scn:1:6: expected a key count (1..1000), got "
                 "'12345678901234567890123456789012...'");
    assert_error("keys 1\r2\r\n", "t.scn:1:6: expected a key count (1..1000), got '1\\x0d2'");
}

/* ---- errors: values ---------------------------------------------------------------------- */

static void error_count_out_of_range(void **state)
{
    (void)state;
    assert_error("nodes 0", "t.scn:1:7: expected a node count (1..9), got '0'");
    assert_error("nodes 10", "t.scn:1:7: expected a node count (1..9), got '10'");
    assert_error("nodes three", "t.scn:1:7: expected a node count (1..9), got 'three'");
    assert_error("nodes -1", "t.scn:1:7: expected a node count (1..9), got '-1'");
    assert_error("clients 65", "t.scn:1:9: expected a client count (1..64), got '65'");
    assert_error("keys 0", "t.scn:1:6: expected a key count (1..1000), got '0'");
    assert_error("keys 1001", "t.scn:1:6: expected a key count (1..1000), got '1001'");
    assert_error("heartbeat 0", "t.scn:1:11: expected a heartbeat interval in ticks (1..1000000), "
                                "got '0'");
}

static void error_duration_without_unit(void **state)
{
    (void)state;
    assert_error("tick 10", "t.scn:1:6: expected a unit after the number (us, ms or s), got '10'");
    assert_error("tick 1.5", "t.scn:1:6: expected a unit after the number (us, ms or s), got "
                             "'1.5'");
}

static void error_duration_negative(void **state)
{
    (void)state;
    assert_error("tick -1ms", "t.scn:1:6: expected a duration of at least 0, got '-1ms'");
}

static void error_duration_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {"1.ms",   ".5s", "10min", "ms",  "1e3ms",
                                      "1.5.5s", "+1s", "1S",    "1,5s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64];
        char message[160];
        snprintf(text, sizeof(text), "tick %s", bad[i]);
        snprintf(message, sizeof(message),
                 "t.scn:1:6: expected a duration (e.g. 500us, 10ms, 1.5s), got '%s'", bad[i]);
        assert_error(text, message);
    }
    /* A space between number and unit makes two tokens. */
    assert_error("tick 1 s", "t.scn:1:6: expected a unit after the number (us, ms or s), got '1'");
}

static void error_duration_zero_where_positive(void **state)
{
    (void)state;
    assert_error("tick 0s", "t.scn:1:6: expected a duration of at least 1us, got '0s'");
    assert_error("tick 0.4us", "t.scn:1:6: expected a duration of at least 1us, got '0.4us'");
    assert_error("timeout 0ms", "t.scn:1:9: expected a duration of at least 1us, got '0ms'");
    assert_error("duration 0s", "t.scn:1:10: expected a duration of at least 1us, got '0s'");
    assert_error("expect leader within 0s",
                 "t.scn:1:22: expected a duration of at least 1us, got '0s'");
}

static void error_range_max_below_min(void **state)
{
    (void)state;
    assert_error("latency 5ms 1ms",
                 "t.scn:1:13: expected a maximum of at least the minimum (5ms), got '1ms'");
    assert_error("think 1.5s 1s",
                 "t.scn:1:12: expected a maximum of at least the minimum (1500ms), got '1s'");
    assert_error("chaos downtime 2s 1999ms",
                 "t.scn:1:19: expected a maximum of at least the minimum (2s), got '1999ms'");
    assert_error("election 20 10",
                 "t.scn:1:13: expected a maximum of at least the minimum (20), got '10'");
    assert_error("at 1s set latency 3ms 2ms",
                 "t.scn:1:23: expected a maximum of at least the minimum (3ms), got '2ms'");
}

static void error_election_not_above_heartbeat_blames_the_later_line(void **state)
{
    (void)state;
    assert_error("heartbeat 5\nelection 5 9\n",
                 "t.scn:2:10: expected an election timeout minimum above the heartbeat interval "
                 "(5 ticks), got '5'");
    assert_error("election 5 9\n\nheartbeat 6\n",
                 "t.scn:3:11: expected a heartbeat interval below the election timeout minimum "
                 "(5 ticks), got '6'");
    assert_error("heartbeat 10\n", "t.scn:1:11: expected a heartbeat interval below the election "
                                   "timeout minimum (10 ticks), got '10'");
}

static void error_on_off(void **state)
{
    (void)state;
    assert_error("swarm yes", "t.scn:1:7: expected on or off, got 'yes'");
    assert_error("checkquorum", "t.scn:1:12: expected on or off, got end of line");
}

static void error_probability_out_of_range(void **state)
{
    (void)state;
    assert_error("drop 1.5", "t.scn:1:6: expected a probability in [0, 1] (or 0%..100%), got "
                             "'1.5'");
    assert_error("drop 101%", "t.scn:1:6: expected a probability in [0, 1] (or 0%..100%), got "
                              "'101%'");
    assert_error("duplicate 1e400",
                 "t.scn:1:11: expected a probability in [0, 1] (or 0%..100%), got '1e400'");
}

static void error_probability_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc", "-0.1", ".5",  "1.",  "%",   "5%%", "1e",
                                      "1e+", "5e1%", "0x1", "nan", "inf", "0.5x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64];
        char message[160];
        snprintf(text, sizeof(text), "drop %s", bad[i]);
        snprintf(message, sizeof(message),
                 "t.scn:1:6: expected a probability (e.g. 0.05 or 5%%), got '%s'", bad[i]);
        assert_error(text, message);
    }
    assert_error("reorder", "t.scn:1:8: expected a probability (e.g. 0.05 or 5%), got end of line");
}

static void error_reorder_delay_then_more(void **state)
{
    (void)state;
    assert_error("reorder 0.1 5ms 6ms", "t.scn:1:17: expected end of line, got '6ms'");
    assert_error("reorder 0.1 5", "t.scn:1:13: expected a unit after the number (us, ms or s), "
                                  "got '5'");
}

static void error_mix(void **state)
{
    (void)state;
    assert_error("mix",
                 "t.scn:1:4: expected get, put, del, incr, putif, mset, mget, txn, watch, expire, "
                 "append, getdel, setnx, rename, scan, keys or bits, got end of line");
    assert_error("mix get 1 set 2",
                 "t.scn:1:11: expected get, put, del, incr, putif, mset, mget, txn, watch, "
                 "expire, append, getdel, setnx, rename, scan, keys or bits, got 'set'");
    assert_error("mix get 1 get 2",
                 "t.scn:1:11: expected each kind (get, put, del, ...) at most once, got 'get'");
    assert_error("mix put", "t.scn:1:8: expected a weight (0..1000000), got end of line");
    assert_error("mix put 1000001", "t.scn:1:9: expected a weight (0..1000000), got '1000001'");
    assert_error("mix get 0 del 0", "t.scn:1:15: expected at least one weight above 0, got '0'");
}

static void error_expect(void **state)
{
    (void)state;
    assert_error("expect quorum within 1s",
                 "t.scn:1:8: expected leader, complete, recovery, available, unavailable, "
                 "stepdown, refusal or disk, got 'quorum'");
    assert_error("expect unavailable within 1s", "t.scn:1:20: expected below or off, got 'within'");
    assert_error("expect stepdown within 2", "t.scn:1:25: expected elections, got end of line");
    assert_error("expect stepdown within 0 elections",
                 "t.scn:1:24: expected a number of election timeouts (1..1000), got '0'");
    assert_error("expect refusal", "t.scn:1:15: expected the text of a reason (e.g. outside the "
                                   "log), got end of line");
    assert_error("expect refusal a\nexpect refusal b\nexpect refusal c\nexpect refusal d\n"
                 "expect refusal e\n",
                 "t.scn:5:8: expected at most 4 expect refusal lines, got 'refusal'");
    assert_error("expect recovery within 1s\nexpect recovery off",
                 "t.scn:2:8: expected each setting once (expect recovery is already set on line "
                 "1), got 'recovery'");
    assert_error("tick 10ms phased", "t.scn:1:11: expected aligned or end of line, got 'phased'");
    assert_error("expect leader 1s", "t.scn:1:15: expected within or off, got '1s'");
    assert_error("expect complete within",
                 "t.scn:1:23: expected a duration (e.g. 500us, 10ms, 1.5s), got end of line");
}

static void error_chaos(void **state)
{
    (void)state;
    assert_error("chaos",
                 "t.scn:1:6: expected crash, partition, pause, skew, member or downtime, got end "
                 "of line");
    assert_error(
        "chaos disk 1",
        "t.scn:1:7: expected crash, partition, pause, skew, member or downtime, got 'disk'");
    assert_error("chaos crash -1",
                 "t.scn:1:13: expected a rate in events per second (a decimal such as 1.5), got "
                 "'-1'");
    assert_error("chaos pause 1000.5",
                 "t.scn:1:13: expected a rate in events per second in [0, 1000], got '1000.5'");
    assert_error("chaos skew 5%",
                 "t.scn:1:12: expected a rate in events per second (a decimal such as 1.5), got "
                 "'5%'");
}

/* ---- errors: steps ----------------------------------------------------------------------- */

static void error_step_without_time_or_action(void **state)
{
    (void)state;
    assert_error("at", "t.scn:1:3: expected a duration (e.g. 500us, 10ms, 1.5s), got end of line");
    assert_error("at 1s",
                 "t.scn:1:6: expected an action (partition, oneway, isolate, heal, crash, "
                 "restart, pause, resume, skew, add, promote, remove, set), got end of line");
    assert_error("at 1s explode 1",
                 "t.scn:1:7: expected an action (partition, oneway, isolate, "
                 "heal, crash, restart, pause, resume, skew, add, promote, remove, set), got "
                 "'explode'");
    assert_error("at crash 1", "t.scn:1:4: expected a duration (e.g. 500us, 10ms, 1.5s), got "
                               "'crash'");
}

static void error_time_going_backwards(void **state)
{
    (void)state;
    assert_error("at 1s heal\n# x\nat 2s heal\nat 1999ms crash 1\n",
                 "t.scn:4:4: expected a time of at least 2s, that of the step on line 3, got "
                 "'1999ms'");
}

static void steps_may_come_after_the_duration(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok("at 1s heal\nat 12s crash 1\nduration 2.5s\n");
    assert_int_equal(s->n_steps, 2);
    assert_int_equal(s->steps[1].at_us, 12 * SEC);
}

static void error_too_many_steps(void **state)
{
    (void)state;
    size_t n = 0;
    for (int i = 0; i <= SCN_MAX_STEPS; i++)
        n += (size_t)snprintf(text_buf + n, sizeof(text_buf) - n, "at 1s heal\n");
    assert_error(text_buf, "t.scn:1025:1: expected at most 1024 steps, got 'at'");
}

static void error_set_latency_needs_two_free_steps(void **state)
{
    (void)state;
    size_t n = 0;
    for (int i = 0; i < SCN_MAX_STEPS - 1; i++)
        n += (size_t)snprintf(text_buf + n, sizeof(text_buf) - n, "at 1s heal\n");
    snprintf(text_buf + n, sizeof(text_buf) - n, " at 1s set latency 1ms 2ms\n");
    assert_error(text_buf,
                 "t.scn:1024:2: expected at most 1024 steps (`set latency` makes two), got 'at'");
}

static void error_partition_needs_two_groups(void **state)
{
    (void)state;
    assert_error("at 1s partition 1 2", "t.scn:1:20: expected '|' and another group, got end of "
                                        "line");
    assert_error("at 1s partition leader 2", "t.scn:1:24: expected '|' and another group, got '2'");
    assert_error("at 1s partition 1 | 2 3 leader",
                 "t.scn:1:25: expected '|' or end of line, got 'leader'");
    assert_error("at 1s partition", "t.scn:1:16: expected a partition group (leader, follower, "
                                    "random, random minority, random majority, rest or node ids), "
                                    "got end of line");
    assert_error("at 1s partition 1 |", "t.scn:1:20: expected a partition group (leader, "
                                        "follower, random, random minority, random majority, rest "
                                        "or node ids), got end of line");
    assert_error("at 1s partition 1 || 2", "t.scn:1:19: expected '|' and another group, got '||'");
    assert_error("at 1s partition 1|2", "t.scn:1:17: expected a node id (1..9), got '1|2'");
}

static void error_partition_group_all(void **state)
{
    (void)state;
    assert_error("at 1s partition 1 | all",
                 "t.scn:1:21: expected a partition group (leader, follower, random, random "
                 "minority, random majority, rest or node ids), got 'all'");
}

static void error_partition_two_rest_groups(void **state)
{
    (void)state;
    assert_error("at 1s partition rest | 1 | rest",
                 "t.scn:1:28: expected at most one 'rest' group, got 'rest'");
}

static void error_partition_ten_groups(void **state)
{
    (void)state;
    assert_error("at 1s partition leader | leader | leader | leader | leader | leader | leader | "
                 "leader | leader | leader",
                 "t.scn:1:96: expected at most 9 partition groups, got '|'");
}

static void error_rest_outside_partition(void **state)
{
    (void)state;
    assert_error("at 1s crash rest", "t.scn:1:13: expected a node set (leader, follower, random, "
                                     "random minority, random majority, all or node ids), got "
                                     "'rest'");
}

static void error_isolate_all(void **state)
{
    (void)state;
    assert_error("at 1s isolate all", "t.scn:1:15: expected a node set (leader, follower, random, "
                                      "random minority, random majority or node ids), got 'all'");
}

static void error_unknown_set(void **state)
{
    (void)state;
    assert_error("at 1s pause minority", "t.scn:1:13: expected a node set (leader, follower, "
                                         "random, random minority, random majority, all or node "
                                         "ids), got 'minority'");
    assert_error("at 1s pause", "t.scn:1:12: expected a node set (leader, follower, random, "
                                "random minority, random majority, all or node ids), got end of "
                                "line");
    assert_error("at 1s crash random minority majority",
                 "t.scn:1:29: expected end of line, got 'majority'");
}

static void error_node_id_malformed(void **state)
{
    (void)state;
    assert_error("at 1s crash 0", "t.scn:1:13: expected a node id (1..9), got '0'");
    assert_error("at 1s crash 1 10", "t.scn:1:15: expected a node id (1..9), got '10'");
    assert_error("at 1s crash 1 2x", "t.scn:1:15: expected a node id (1..9), got '2x'");
    assert_error("at 1s crash 1 -2", "t.scn:1:15: expected end of line, got '-2'");
}

static void error_node_id_named_twice(void **state)
{
    (void)state;
    assert_error("at 1s crash 1 2 1",
                 "t.scn:1:17: expected a node id not already named in this step (column 13), got "
                 "'1'");
    assert_error("at 1s partition 1 2 | 3 2",
                 "t.scn:1:25: expected a node id not already named in this step (column 19), got "
                 "'2'");
    assert_error("at 1s oneway 3 -> 3",
                 "t.scn:1:19: expected a node id not already named in this step (column 14), got "
                 "'3'");
}

static void error_oneway_without_arrow(void **state)
{
    (void)state;
    assert_error("at 1s oneway 1 2 3", "t.scn:1:19: expected '->', got end of line");
    assert_error("at 1s oneway 1 leader", "t.scn:1:16: expected '->', got 'leader'");
    assert_error("at 1s oneway 1->2", "t.scn:1:14: expected a node id (1..9), got '1->2'");
}

static void error_skew_factor(void **state)
{
    (void)state;
    assert_error("at 1s skew 1", "t.scn:1:13: expected a clock rate factor (a decimal such as "
                                 "1.5), got end of line");
    assert_error("at 1s skew", "t.scn:1:11: expected a node set (leader, follower, random, random "
                               "minority, random majority, all or node ids), got end of line");
    assert_error("at 1s skew 1 0", "t.scn:1:14: expected a clock rate factor in [0.01, 100], got "
                                   "'0'");
    assert_error("at 1s skew leader 100.5",
                 "t.scn:1:19: expected a clock rate factor in [0.01, 100], got '100.5'");
    assert_error("at 1s skew leader 2 3", "t.scn:1:21: expected end of line, got '3'");
    assert_error("at 1s skew 1.5", "t.scn:1:12: expected a node id (1..9), got '1.5'");
}

static void error_set_parameter(void **state)
{
    (void)state;
    assert_error("at 1s set loss 0.1",
                 "t.scn:1:11: expected drop, duplicate, reorder or latency, got 'loss'");
    assert_error("at 1s set", "t.scn:1:10: expected drop, duplicate, reorder or latency, got end "
                              "of line");
    assert_error("at 1s set drop", "t.scn:1:15: expected a probability (e.g. 0.05 or 5%), got end "
                                   "of line");
    assert_error("at 1s set reorder 0.1 5ms", "t.scn:1:23: expected end of line, got '5ms'");
    assert_error("at 1s set latency 1ms", "t.scn:1:22: expected a duration (e.g. 500us, 10ms, "
                                          "1.5s), got end of line");
}

/* ---- errors found after the last line ---------------------------------------------------- */

static void error_node_id_above_nodes_found_after_nodes(void **state)
{
    (void)state;
    assert_error("at 1s crash 1 2\nat 2s partition 2 | 1 5 4\nnodes 3\n",
                 "t.scn:2:23: expected a node id in 1..3 (nodes 3), got '5'");
    assert_error("at 1s oneway 4 -> 1\nnodes 3\n",
                 "t.scn:1:14: expected a node id in 1..3 (nodes 3), got '4'");
    assert_error("at 1s crash 4\n", "t.scn:1:13: expected a node id in 1..3 (nodes 3), got '4'");
    assert_error("at 1s crash 2\nat 2s pause 2\nnodes 1\n",
                 "t.scn:1:13: expected a node id in 1..1 (nodes 1), got '2'");
}

static void error_random_minority_needs_three_nodes(void **state)
{
    (void)state;
    assert_error("at 1s crash   random minority\nnodes 2\n",
                 "t.scn:1:15: expected at least 3 nodes for a random minority (nodes 2), got "
                 "'random'");
    assert_error("nodes 1\nat 1s partition leader | random minority\n",
                 "t.scn:2:26: expected at least 3 nodes for a random minority (nodes 1), got "
                 "'random'");
    parse_ok("nodes 3\nat 1s crash random minority\n");
    parse_ok("nodes 1\nat 1s crash random majority\n");
}

static void error_random_partition_needs_two_nodes(void **state)
{
    (void)state;
    assert_error("nodes 1\nat 1s partition random\n",
                 "t.scn:2:17: expected at least 2 nodes for a random partition (nodes 1), got "
                 "'random'");
    parse_ok("nodes 2\nat 1s partition random\n");
}

static void error_crlf_line_positions_are_exact(void **state)
{
    (void)state;
    assert_error("nodes 3\r\nat 1s crash 9\r\n",
                 "t.scn:2:13: expected a node id in 1..3 (nodes 3), got '9'");
    assert_error("nodes 3\r\nkeys\r\n", "t.scn:2:5: expected a key count (1..1000), got end of "
                                        "line");
}

/* ---- printing ---------------------------------------------------------------------------- */

static void setting_replication_sets_batch_and_window(void **state)
{
    (void)state;
    static struct scenario s;
    struct rk_errmsg err = {{0}};
    const char *text = "replication 1 4\n";
    assert_int_equal(scn_parse(text, strlen(text), "t.scn", &s, &err), RK_OK);
    assert_int_equal(s.append_entries, 1);
    assert_int_equal(s.inflight, 4);
    assert_error("replication 0 4", "t.scn:1:13: expected entries per AppendEntries (1..65536), got '0'");
    assert_error("replication 8", "t.scn:1:14: expected AppendEntries in flight per follower (1..1024), "
                                  "got end of line");
}

static void setting_disk_parses_every_kind(void **state)
{
    (void)state;
    static struct scenario s;
    struct rk_errmsg err = {{0}};
    const char *text = "disk torn on\ndisk bitflip 0.01\ndisk errors 1%\ndisk slow 2ms\n"
                       "disk crashpoints on\ndisk merge 3s\ndisk rotate 65536\ndisk sync 4\n";
    assert_int_equal(scn_parse(text, strlen(text), "t.scn", &s, &err), RK_OK);
    assert_true(s.disk.torn);
    assert_true(s.disk.crashpoints);
    assert_true(s.disk.bitflip == 0.01);
    assert_true(s.disk.errors == 0.01);
    assert_int_equal(s.disk.sync_us, 2000);
    assert_int_equal(s.disk.merge_us, 3000000);
    assert_int_equal(s.disk.file_bytes, 65536);
    assert_int_equal(s.disk.sync_ticks, 4);
    assert_error("disk spin 3",
                 "t.scn:1:6: expected torn, bitflip, errors, slow, crashpoints, "
                 "merge, rotate, sync, rot, badsector, lost, misdirect, io, storeio, damaged or wipe, got "
                 "'spin'");
    assert_error("disk torn on\ndisk torn off", "t.scn:2:6: expected each setting once (disk "
                                                 "torn is already set on line 1), got 'torn'");
}

/* Persistent damage (sim/simdisk.h): four probabilities, printed back only when set. */
static void setting_disk_damage_parses_and_prints_back(void **state)
{
    (void)state;
    static struct scenario s;
    struct rk_errmsg err = {{0}};
    const char *text = "disk rot 0.3\ndisk badsector 10%\ndisk lost 0.002\ndisk misdirect 0.001\n";
    assert_int_equal(scn_parse(text, strlen(text), "t.scn", &s, &err), RK_OK);
    assert_true(s.disk.rot == 0.3);
    assert_true(s.disk.badsector == 0.1);
    assert_true(s.disk.lost == 0.002);
    assert_true(s.disk.misdirect == 0.001);
    const char *printed = print_parsed(text);
    assert_non_null(strstr(printed, "\ndisk rot 0.3\ndisk badsector 0.1\ndisk lost 0.002\n"
                                    "disk misdirect 0.001\n"));
    assert_null(strstr(print_parsed(""), "disk rot "));
    assert_error("disk rot 2", "t.scn:1:10: expected a probability in [0, 1] (or 0%..100%), got '2'");
    /* How many nodes it may strike (issue #15): printed back only when set, at most nodes. */
    const char *wipe = "disk wipe 0.25\n";
    assert_int_equal(scn_parse(wipe, strlen(wipe), "t.scn", &s, &err), RK_OK);
    assert_true(s.disk.wipe == 0.25);
    assert_non_null(strstr(print_parsed(wipe), "\ndisk wipe 0.25\n"));
    const char *all = "nodes 5\ndisk rot 0.3\ndisk damaged 5\n";
    assert_int_equal(scn_parse(all, strlen(all), "t.scn", &s, &err), RK_OK);
    assert_int_equal(s.disk.damaged_nodes, 5);
    assert_non_null(strstr(print_parsed(all), "\ndisk damaged 5\nswarm off\n"));
    assert_null(strstr(print_parsed(""), "disk damaged"));
    const char *too_many = "nodes 3\ndisk damaged 4\n";
    assert_int_equal(scn_parse(too_many, strlen(too_many), "t.scn", &s, &err), RK_EMALFORMED);
}

/* disk io MIN MAX: the log writes' latency range, printed back only when not the default. */
static void setting_disk_io_parses_and_prints_back(void **state)
{
    (void)state;
    static struct scenario s;
    struct rk_errmsg err = {{0}};
    assert_int_equal(scn_parse("", 0, "t.scn", &s, &err), RK_OK);
    assert_int_equal(s.disk.io_us_min, 20);
    assert_int_equal(s.disk.io_us_max, 400);
    const char *text = "disk io 100us 8ms\n";
    assert_int_equal(scn_parse(text, strlen(text), "t.scn", &s, &err), RK_OK);
    assert_int_equal(s.disk.io_us_min, 100);
    assert_int_equal(s.disk.io_us_max, 8000);
    assert_non_null(strstr(print_parsed(text), "\ndisk io 100us 8ms\n"));
    assert_null(strstr(print_parsed(""), "disk io "));
}

/* disk storeio MIN MAX: the store's deferred writes' latency range, likewise. */
static void setting_disk_storeio_parses_and_prints_back(void **state)
{
    (void)state;
    static struct scenario s;
    struct rk_errmsg err = {{0}};
    assert_int_equal(scn_parse("", 0, "t.scn", &s, &err), RK_OK);
    assert_int_equal(s.disk.store_io_us_min, 20);
    assert_int_equal(s.disk.store_io_us_max, 400);
    const char *text = "disk storeio 1ms 40ms\n";
    assert_int_equal(scn_parse(text, strlen(text), "t.scn", &s, &err), RK_OK);
    assert_int_equal(s.disk.store_io_us_min, 1000);
    assert_int_equal(s.disk.store_io_us_max, 40000);
    assert_non_null(strstr(print_parsed(text), "\ndisk storeio 1ms 40ms\n"));
    assert_null(strstr(print_parsed(""), "disk storeio "));
}

static void print_of_defaults_lists_every_setting(void **state)
{
    (void)state;
    const char *text = print_parsed("");
    assert_string_equal(text, "# scenario: t.scn\n"
                              "nodes 3\n"
                              "tick 10ms\n"
                              "election 10 20\n"
                              "heartbeat 1\n"
                              "prevote on\n"
                              "checkquorum on\n"
                              "replication 256 32\n"
                              "latency 1ms 5ms\n"
                              "drop 0\n"
                              "duplicate 0\n"
                              "reorder 0 50ms\n"
                              "clients 4\n"
                              "keys 3\n"
                              "mix get 50 put 40 del 10\n"
                              "think 0s 10ms\n"
                              "timeout 1s\n"
                              "duration 10s\n"
                              "expect leader off\n"
                              "expect complete off\n"
                              "expect recovery within 10s\n"
                              "expect available off\n"
                              "expect unavailable off\n"
                              "expect stepdown off\n"
                              "chaos crash 0\n"
                              "chaos partition 0\n"
                              "chaos pause 0\n"
                              "chaos skew 0\n"
                              "chaos downtime 1s 3s\n"
                              "disk torn off\n"
                              "disk bitflip 0\n"
                              "disk errors 0\n"
                              "disk slow 0s\n"
                              "disk crashpoints off\n"
                              "disk merge 0s\n"
                              "disk rotate 1048576\n"
                              "disk sync 10\n"
                              "swarm off\n");
}

/* Membership (issue #17): `members N`, `chaos member RATE` and the add, promote and remove
 * steps parse, print back and parse again the same; members beyond nodes is an error. */
static void membership_settings_and_steps_round_trip(void **state)
{
    (void)state;
    const char *text = "nodes 7\nmembers 3\nchaos member 0.5\nat 1s add 4\n"
                       "at 2s promote 4\nat 3s remove leader\nat 4s remove random\n";
    const struct scenario *s = parse_ok(text);
    assert_int_equal(s->members, 3);
    assert_true(s->chaos.member_per_s == 0.5);
    assert_int_equal(s->n_steps, 4);
    assert_int_equal(s->steps[0].action, SCN_ADD);
    assert_int_equal(s->steps[1].action, SCN_PROMOTE);
    assert_int_equal(s->steps[2].action, SCN_REMOVE);
    assert_int_equal(s->steps[2].groups[0].kind, SCN_SET_LEADER);
    const char *printed = print_parsed(text);
    assert_non_null(strstr(printed, "\nmembers 3\n"));
    assert_non_null(strstr(printed, "\nchaos member 0.5\n"));
    assert_non_null(strstr(printed, "at 1s add 4\nat 2s promote 4\nat 3s remove leader\n"
                                    "at 4s remove random\n"));
    static char again[sizeof(print_buf)];
    memcpy(again, printed, strlen(printed) + 1);
    const struct scenario *t = parse_ok(again);
    assert_int_equal(t->members, 3);
    assert_int_equal(t->n_steps, 4);
    assert_error("nodes 3\nmembers 4", "t.scn:2:9: expected at most 3 members (nodes 3), got "
                                       "'4'");
}

static void print_writes_steps_in_canonical_form(void **state)
{
    (void)state;
    const char *text = print_parsed(rich_scenario);
    const char *steps = strstr(text, "at 0s");
    assert_non_null(steps);
    assert_string_equal(steps, "at 0s partition 1 2 | 3 4 | rest\n"
                               "at 10ms partition random\n"
                               "at 10ms partition leader | random minority | follower\n"
                               "at 20ms partition random majority | random\n"
                               "at 30ms oneway leader -> all\n"
                               "at 30ms oneway 5 4 -> 1\n"
                               "at 40ms isolate random minority\n"
                               "at 50ms heal\n"
                               "at 60ms crash follower\n"
                               "at 70ms restart all\n"
                               "at 80ms pause 2 3\n"
                               "at 90ms resume all\n"
                               "at 100ms skew random 0.5\n"
                               "at 100ms skew 1 2 1.25\n"
                               "at 200ms set drop 0.2\n"
                               "at 200ms set duplicate 0.01\n"
                               "at 300ms set reorder 0.7\n"
                               "at 400ms set latency 1ms 20ms\n"
                               "at 1500ms heal\n");
    assert_non_null(strstr(text, "\ntick 2500us aligned\n"));
    assert_non_null(strstr(text, "\nduplicate 0.025\n"));
    assert_non_null(strstr(text, "\nchaos partition 0.001\n"));
    assert_non_null(strstr(text, "\nchaos pause 0.3333333333333333\n"));
    assert_non_null(strstr(text, "\nchaos skew 2\n"));
    assert_non_null(strstr(text, "\nexpect complete within 4250ms\n"));
}

static void print_then_parse_gives_the_same_scenario(void **state)
{
    (void)state;
    struct rk_errmsg err;
    assert_int_equal(parse_into(rich_scenario, &scn_b, &err), RK_OK);
    size_t n = scn_print(&scn_b, print_buf, sizeof(print_buf));
    assert_int_equal(n, strlen(print_buf));
    if (parse_into(print_buf, &scn_c, &err) != RK_OK)
        fail_msg("%s\n%s", err.text, print_buf);
    assert_scenarios_equal(&scn_b, &scn_c, false);
}

static void print_of_a_printed_scenario_is_a_fixed_point(void **state)
{
    (void)state;
    static char again[1 << 16];
    struct rk_errmsg err;
    assert_int_equal(parse_into(rich_scenario, &scn_b, &err), RK_OK);
    scn_print(&scn_b, print_buf, sizeof(print_buf));
    assert_int_equal(parse_into(print_buf, &scn_b, &err), RK_OK);
    scn_print(&scn_b, again, sizeof(again));
    assert_string_equal(again, print_buf);
    assert_int_equal(parse_into(again, &scn_c, &err), RK_OK);
    assert_scenarios_equal(&scn_b, &scn_c, true);
}

static void print_writes_whole_numbers_without_exponent(void **state)
{
    (void)state;
    const char *text = print_parsed("chaos crash 1000\nchaos pause 1e2\nat 1s skew 1 1e1\n");
    assert_non_null(strstr(text, "\nchaos crash 1000\n"));
    assert_non_null(strstr(text, "\nchaos pause 100\n"));
    assert_non_null(strstr(text, "\nat 1s skew 1 10\n"));
}

static void print_round_trips_awkward_doubles(void **state)
{
    (void)state;
    struct rk_errmsg err;
    assert_int_equal(
        parse_into("drop 0.1e-300\nduplicate 0.30000000000000004\nreorder 1e-5\n"
                   "chaos crash 999.99999999999989\nat 1s skew 1 0.010000000000000002\n",
                   &scn_b, &err),
        RK_OK);
    scn_print(&scn_b, print_buf, sizeof(print_buf));
    assert_int_equal(parse_into(print_buf, &scn_c, &err), RK_OK);
    assert_scenarios_equal(&scn_b, &scn_c, false);
}

static void print_reports_the_length_needed_and_never_overflows(void **state)
{
    (void)state;
    parse_ok(rich_scenario);
    size_t need = scn_print(&scn_a, NULL, 0);
    assert_true(need > 100);
    char small[64 + 16];
    memset(small, 0x5a, sizeof(small));
    assert_int_equal(scn_print(&scn_a, small, 64), need);
    assert_int_equal(strlen(small), 63);
    for (size_t i = 64; i < sizeof(small); i++)
        assert_int_equal((unsigned char)small[i], 0x5a);
    assert_int_equal(scn_print(&scn_a, print_buf, need + 1), need);
    assert_int_equal(strlen(print_buf), need);
    assert_int_equal(scn_print(&scn_a, small, 1), need);
    assert_int_equal(small[0], '\0');
}

static void print_escapes_the_name_in_its_comment(void **state)
{
    (void)state;
    struct rk_errmsg err;
    assert_int_equal(scn_parse("", 0, "a\nb'c", &scn_b, &err), RK_OK);
    scn_print(&scn_b, print_buf, sizeof(print_buf));
    assert_memory_equal(print_buf, "# scenario: a\\x0ab\\'c\nnodes 3\n", 30);
    assert_int_equal(scn_parse(print_buf, strlen(print_buf), "a\nb'c", &scn_c, &err), RK_OK);
}

/* The complete example in scenarios/README.md; keep the two in step. */
static const char readme_example[] =
    "# partition.scn — the leader is cut off from the majority while clients keep writing.\n"
    "# Expect: the old leader stops serving, a new one is elected, no acknowledged write is\n"
    "# lost, and once everything heals every client gets an answer.\n"
    "\n"
    "nodes 5\n"
    "tick 10ms                  # one Raft tick = 10ms of virtual time\n"
    "election 10 20             # election timeout 100ms..200ms\n"
    "heartbeat 2\n"
    "latency 1ms 5ms\n"
    "drop 1%                    # a little loss all the time\n"
    "clients 8\n"
    "keys 5                     # few keys: many concurrent operations per key\n"
    "mix get 50 put 40 del 10\n"
    "timeout 500ms\n"
    "duration 20s\n"
    "expect leader within 2s    # measured from the settle phase\n"
    "expect complete within 5s\n"
    "\n"
    "at 2s   isolate leader     # whoever leads at 2s\n"
    "at 6s   heal\n"
    "at 8s   partition random minority | rest\n"
    "at 9s   crash leader       # the leader of the majority side, if it has one yet\n"
    "at 12s  heal\n"
    "at 12s  restart all\n"
    "at 14s  set latency 5ms 50ms\n"
    "at 15s  oneway 1 -> 2 3    # 1 still hears 2 and 3, but they never hear it\n"
    "at 17s  heal\n"
    "at 17s  set latency 1ms 5ms\n";

static void readme_example_parses(void **state)
{
    (void)state;
    const struct scenario *s = parse_ok(readme_example);
    assert_int_equal(s->nodes, 5);
    assert_int_equal(s->n_steps, 12);
    assert_int_equal(s->steps[2].action, SCN_PARTITION);
    assert_int_equal(s->steps[2].groups[0].kind, SCN_SET_RANDOM_MINORITY);
}

/* ---- robustness -------------------------------------------------------------------------- */

static const char *const fuzz_tokens[] = {
    "nodes",     "at",       "partition", "|",       "->",    "rest",
    "random",    "minority", "majority",  "leader",  "all",   "0",
    "1",         "9",        "10",        "1.5s",    "0ms",   "99999999999999999999s",
    "1e999",     "5%",       "#",         "\n",      "\r\n",  "\r",
    " ",         "\t",       "set",       "latency", "skew",  "chaos",
    "expect",    "within",   "off",       "mix",     "get",   "-",
    ".",         "%",        "\xff",      "heal",    "crash", "election",
    "heartbeat", "duration",
};

/* One random edit of buf[0..*n): a byte changed, a cut, a token inserted, a span removed, a
 * line doubled. */
static void mutate(struct rk_prng *rng, char *buf, size_t *n, size_t cap)
{
    size_t len = *n;
    size_t at = len ? (size_t)rk_prng_below(rng, len + 1) : 0;
    switch (rk_prng_below(rng, 6)) {
    case 0:
        if (len)
            buf[at % len] = (char)rk_prng_below(rng, 256);
        break;
    case 1:
        *n = at;
        break;
    case 2: {
        const char *tok =
            fuzz_tokens[rk_prng_below(rng, sizeof(fuzz_tokens) / sizeof(fuzz_tokens[0]))];
        size_t tl = strlen(tok) + 1;
        if (len + tl > cap)
            break;
        memmove(buf + at + tl, buf + at, len - at);
        memcpy(buf + at, tok, tl - 1);
        buf[at + tl - 1] = rk_prng_below(rng, 4) == 0 ? '\0' : ' ';
        *n = len + tl;
        break;
    }
    case 3: {
        size_t span = (size_t)rk_prng_below(rng, 16);
        if (at + span > len)
            span = len - at;
        memmove(buf + at, buf + at + span, len - at - span);
        *n = len - span;
        break;
    }
    case 4: {
        size_t span = (size_t)rk_prng_below(rng, 64);
        if (at + span > len)
            span = len - at;
        if (len + span > cap)
            break;
        memmove(buf + at + span, buf + at, len - at);
        *n = len + span;
        break;
    }
    default:
        if (len)
            buf[at % len] ^= (char)(1u << rk_prng_below(rng, 8));
        break;
    }
}

/* Every failure must be "t.scn:LINE:COL: expected ...", with LINE within the text; every success
 * must survive a print/parse round trip. Returns whether text parsed. */
static bool check_mutant(const char *buf, size_t n)
{
    struct rk_errmsg err;
    memset(err.text, 0x7e, sizeof(err.text));
    int rc = scn_parse(buf, n, FILE_NAME, &scn_b, &err);
    if (rc == RK_OK) {
        assert_true(scn_b.n_steps <= SCN_MAX_STEPS);
        size_t need = scn_print(&scn_b, print_buf, sizeof(print_buf));
        assert_true(need < sizeof(print_buf));
        if (scn_parse(print_buf, need, FILE_NAME, &scn_c, &err) != RK_OK)
            fail_msg("reprint does not parse: %s\n%s", err.text, print_buf);
        assert_scenarios_equal(&scn_b, &scn_c, false);
        return true;
    }
    assert_int_equal(rc, RK_EMALFORMED);
    assert_non_null(memchr(err.text, '\0', sizeof(err.text)));
    unsigned line = 0;
    unsigned col = 0;
    int used = 0;
    if (sscanf(err.text, FILE_NAME ":%u:%u: expected %n", &line, &col, &used) != 2 || used == 0)
        fail_msg("bad message: %s", err.text);
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    assert_true(line >= 1 && line <= lines);
    assert_true(col >= 1 && col <= SCN_MAX_LINE_BYTES + 1);
    return false;
}

static void mutated_scenarios_never_crash_and_errors_name_the_file(void **state)
{
    (void)state;
    static char buf[sizeof(rich_scenario) + 4096];
    struct rk_prng rng;
    rk_prng_seed(&rng, 20240611);
    size_t parsed = 0;
    for (int variant = 0; variant < 20000; variant++) {
        size_t n = sizeof(rich_scenario) - 1;
        memcpy(buf, rich_scenario, n);
        int edits = 1 + (int)rk_prng_below(&rng, 4);
        for (int e = 0; e < edits; e++)
            mutate(&rng, buf, &n, sizeof(buf));
        parsed += check_mutant(buf, n);
    }
    /* Worth its time only if both outcomes are common: valid variants test the round trip. */
    assert_true(parsed > 500);
    assert_true(parsed < 19500);
}

static void every_prefix_of_a_valid_scenario_is_handled(void **state)
{
    (void)state;
    for (size_t n = 0; n <= sizeof(rich_scenario) - 1; n++)
        check_mutant(rich_scenario, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_match_the_documented_values),
        cmocka_unit_test(empty_text_gives_the_defaults),
        cmocka_unit_test(name_is_the_file_name_cut_to_fit),
        cmocka_unit_test(setting_nodes),
        cmocka_unit_test(setting_tick),
        cmocka_unit_test(setting_election_and_heartbeat),
        cmocka_unit_test(setting_on_off_switches),
        cmocka_unit_test(setting_latency),
        cmocka_unit_test(setting_drop_and_duplicate),
        cmocka_unit_test(setting_reorder_with_and_without_delay),
        cmocka_unit_test(setting_reorder_delay_defaults_to_ten_latencies_wherever_latency_is),
        cmocka_unit_test(setting_clients_and_keys),
        cmocka_unit_test(setting_mix_in_any_order_and_unnamed_weights_zero),
        cmocka_unit_test(setting_think_timeout_duration),
        cmocka_unit_test(setting_expect_within_and_off),
        cmocka_unit_test(setting_expect_recovery_availability_refusal),
        cmocka_unit_test(setting_chaos_rates_and_downtime),
        cmocka_unit_test(settings_may_follow_steps),
        cmocka_unit_test(step_partition_of_id_groups),
        cmocka_unit_test(step_partition_of_many_groups_with_rest),
        cmocka_unit_test(step_partition_of_nine_singletons),
        cmocka_unit_test(step_partition_random_splits_in_halves),
        cmocka_unit_test(step_partition_random_node_is_a_group),
        cmocka_unit_test(step_every_set_form),
        cmocka_unit_test(step_oneway_from_set_to_set),
        cmocka_unit_test(step_isolate_and_heal),
        cmocka_unit_test(step_crash_restart_pause_resume),
        cmocka_unit_test(step_skew_takes_the_last_token_as_factor),
        cmocka_unit_test(step_set_network_probabilities),
        cmocka_unit_test(step_set_latency_makes_a_min_and_a_max_step),
        cmocka_unit_test(steps_at_the_same_time_keep_file_order),
        cmocka_unit_test(step_at_the_duration_is_allowed),
        cmocka_unit_test(at_most_max_steps_are_accepted),
        cmocka_unit_test(comments_blank_lines_and_tabs_are_ignored),
        cmocka_unit_test(hash_ends_a_token_and_the_line),
        cmocka_unit_test(crlf_line_endings_are_accepted),
        cmocka_unit_test(last_line_needs_no_newline),
        cmocka_unit_test(line_of_exactly_max_bytes_is_accepted),
        cmocka_unit_test(durations_in_every_unit),
        cmocka_unit_test(duration_fractions_round_to_the_nearest_microsecond),
        cmocka_unit_test(duration_of_one_year_is_the_largest),
        cmocka_unit_test(duration_of_many_digits_does_not_overflow),
        cmocka_unit_test(probabilities_as_decimals_percents_and_exponents),
        cmocka_unit_test(error_unknown_command),
        cmocka_unit_test(error_keywords_are_case_sensitive),
        cmocka_unit_test(error_trailing_token),
        cmocka_unit_test(error_missing_argument_is_at_end_of_line),
        cmocka_unit_test(error_setting_given_twice),
        cmocka_unit_test(error_nul_byte),
        cmocka_unit_test(error_line_too_long),
        cmocka_unit_test(error_too_many_lines),
        cmocka_unit_test(error_token_is_escaped_and_cut),
        cmocka_unit_test(error_count_out_of_range),
        cmocka_unit_test(error_duration_without_unit),
        cmocka_unit_test(error_duration_negative),
        cmocka_unit_test(error_duration_malformed),
        cmocka_unit_test(error_duration_zero_where_positive),
        cmocka_unit_test(error_range_max_below_min),
        cmocka_unit_test(error_election_not_above_heartbeat_blames_the_later_line),
        cmocka_unit_test(error_on_off),
        cmocka_unit_test(error_probability_out_of_range),
        cmocka_unit_test(error_probability_malformed),
        cmocka_unit_test(error_reorder_delay_then_more),
        cmocka_unit_test(error_mix),
        cmocka_unit_test(setting_mix_of_every_kind_and_pipeline),
        cmocka_unit_test(setting_generic_mix_and_wallclock),
        cmocka_unit_test(error_expect),
        cmocka_unit_test(error_chaos),
        cmocka_unit_test(error_step_without_time_or_action),
        cmocka_unit_test(error_time_going_backwards),
        cmocka_unit_test(steps_may_come_after_the_duration),
        cmocka_unit_test(error_too_many_steps),
        cmocka_unit_test(error_set_latency_needs_two_free_steps),
        cmocka_unit_test(error_partition_needs_two_groups),
        cmocka_unit_test(error_partition_group_all),
        cmocka_unit_test(error_partition_two_rest_groups),
        cmocka_unit_test(error_partition_ten_groups),
        cmocka_unit_test(error_rest_outside_partition),
        cmocka_unit_test(error_isolate_all),
        cmocka_unit_test(error_unknown_set),
        cmocka_unit_test(error_node_id_malformed),
        cmocka_unit_test(error_node_id_named_twice),
        cmocka_unit_test(error_oneway_without_arrow),
        cmocka_unit_test(error_skew_factor),
        cmocka_unit_test(error_set_parameter),
        cmocka_unit_test(error_node_id_above_nodes_found_after_nodes),
        cmocka_unit_test(error_random_minority_needs_three_nodes),
        cmocka_unit_test(error_random_partition_needs_two_nodes),
        cmocka_unit_test(error_crlf_line_positions_are_exact),
        cmocka_unit_test(setting_replication_sets_batch_and_window),
        cmocka_unit_test(setting_disk_parses_every_kind),
        cmocka_unit_test(setting_disk_damage_parses_and_prints_back),
        cmocka_unit_test(setting_disk_io_parses_and_prints_back),
        cmocka_unit_test(setting_disk_storeio_parses_and_prints_back),
        cmocka_unit_test(print_of_defaults_lists_every_setting),
        cmocka_unit_test(print_writes_steps_in_canonical_form),
        cmocka_unit_test(membership_settings_and_steps_round_trip),
        cmocka_unit_test(print_then_parse_gives_the_same_scenario),
        cmocka_unit_test(print_of_a_printed_scenario_is_a_fixed_point),
        cmocka_unit_test(print_writes_whole_numbers_without_exponent),
        cmocka_unit_test(print_round_trips_awkward_doubles),
        cmocka_unit_test(print_reports_the_length_needed_and_never_overflows),
        cmocka_unit_test(print_escapes_the_name_in_its_comment),
        cmocka_unit_test(readme_example_parses),
        cmocka_unit_test(mutated_scenarios_never_crash_and_errors_name_the_file),
        cmocka_unit_test(every_prefix_of_a_valid_scenario_is_handled),
    };
    return cmocka_run_group_tests_name("scenario", tests, NULL, NULL);
}
