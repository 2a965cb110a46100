/*
 * test_raft_member.c — membership changes in core/raft (core/raft/MEMBERSHIP.md): the
 * configuration entry and its encoding, learners, single-server changes with Ongaro's 2015 fix,
 * removing the leader, a removed node that cannot disrupt, configurations that revert when their
 * entry is cut, and the configuration of a snapshot.
 *
 * Over tests/support/raft_net, which checks the ready contract, Election Safety and State
 * Machine Safety at every step. Nodes 1..3 start as the voters; nodes 4 and 5 (when present)
 * start with an empty configuration, as a new node that joins does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft_net.h"

static bool g_pre_vote = true;

static void three_voters(struct raft_config *c)
{
    c->n_voters = 3;
    for (uint32_t i = 0; i < 3; i++)
        c->voters[i] = i + 1;
    c->pre_vote = g_pre_vote;
    if (c->id > 3) {
        c->n_voters = 0; /* joins: learns its configuration from the leader */
        c->allow_non_member = true;
    }
}

static struct rn_net *cluster_new(uint32_t n)
{
    struct rn_net *net = calloc(1, sizeof(*net));
    assert_non_null(net);
    rn_init(net, n, three_voters);
    return net;
}

static void cluster_free(struct rn_net *net)
{
    rn_destroy(net);
    free(net);
    g_pre_vote = true;
}

static struct raft_status status_of(struct rn_net *net, uint64_t id)
{
    struct raft_status st;
    raft_status(rn_raft(net, id), &st);
    return st;
}

static struct raft_conf conf_of(struct rn_net *net, uint64_t id)
{
    struct raft_conf c;
    raft_conf_current(rn_raft(net, id), &c, NULL);
    return c;
}

static bool sees_learner(struct rn_net *net, uint64_t id, uint64_t who)
{
    struct raft_conf c = conf_of(net, id);
    return raft_conf_is_learner(&c, who);
}

static bool sees_voter(struct rn_net *net, uint64_t id, uint64_t who)
{
    struct raft_conf c = conf_of(net, id);
    return raft_conf_is_voter(&c, who);
}

/* Runs a membership operation on the leader, then delivers until quiet. */
static int change(struct rn_net *net, uint64_t leader,
                  int (*op)(struct raft *, uint64_t, uint64_t *, uint64_t *), uint64_t id)
{
    uint64_t index = 0, known = 0;
    int rc = op(rn_raft(net, leader), id, &index, &known);
    rn_process_all(net);
    rn_deliver_all(net);
    return rc;
}

static bool drop_appends(struct rn_net *net, const struct raft_msg *m)
{
    (void)net;
    return m->type != RAFT_MSG_APPEND;
}

/* ------------------------------------------------------------------------------------------ */

static void test_conf_encoding_round_trips_and_refuses_malformed_bytes(void **state)
{
    (void)state;
    struct raft_conf c = {.n_voters = 3, .n_learners = 2, .voters = {1, 2, 7}, .learners = {9, 4}};
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len = raft_conf_encode(&c, buf);
    assert_int_equal(len, raft_conf_encoded_size(&c));
    struct raft_conf d;
    assert_int_equal(raft_conf_decode(buf, len, &d), RK_OK);
    assert_memory_equal(&c, &d, sizeof(c));
    assert_int_equal(raft_conf_decode(buf, len - 1, &d), RK_EMALFORMED);
    uint8_t bad[RAFT_CONF_ENCODED_MAX];
    memcpy(bad, buf, len);
    bad[0] = 2; /* version */
    assert_int_equal(raft_conf_decode(bad, len, &d), RK_EMALFORMED);
    memcpy(bad, buf, len);
    bad[3 + 8 * 4] = 1; /* learner 4 becomes 1: a voter too */
    assert_int_equal(raft_conf_decode(bad, len, &d), RK_EMALFORMED);
    struct raft_conf none = {.n_learners = 1, .learners = {3}};
    len = 3 + 8;
    buf[0] = 1, buf[1] = 0, buf[2] = 1;
    memset(buf + 3, 0, 8);
    buf[3] = 3;
    assert_int_equal(raft_conf_decode(buf, len, &d), RK_EMALFORMED); /* no voter */
    (void)none;
}

/* Issue #17: addresses ride in the configuration (version 2); a configuration without any is
 * still written, and read, as version 1, byte for byte as before. */
static void test_conf_addresses_round_trip_and_version_1_still_loads(void **state)
{
    (void)state;
    /* Version 1, as written before addresses were carried: voters 1, 2; learner 3. */
    uint8_t v1[3 + 24] = {1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3};
    struct raft_conf c;
    assert_int_equal(raft_conf_decode(v1, sizeof(v1), &c), RK_OK);
    assert_int_equal(c.n_voters, 2);
    assert_int_equal(c.n_addrs, 0);
    assert_null(raft_conf_addr(&c, 1));
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    assert_int_equal(raft_conf_encode(&c, buf), sizeof(v1));
    assert_memory_equal(buf, v1, sizeof(v1));

    struct raft_member_addr a = {.id = 3, .peer = "10.0.0.3:7003", .client = "10.0.0.3:6383"};
    assert_int_equal(raft_conf_set_addr(&c, &a), RK_OK);
    struct raft_member_addr b = {.id = 1, .peer = "h1:7001"};
    assert_int_equal(raft_conf_set_addr(&c, &b), RK_OK);
    struct raft_member_addr stranger = {.id = 9, .peer = "h9:1"};
    assert_int_equal(raft_conf_set_addr(&c, &stranger), RK_EINVAL);
    struct raft_member_addr space = {.id = 2, .peer = "h 2:1"};
    assert_int_equal(raft_conf_set_addr(&c, &space), RK_EINVAL);
    size_t len = raft_conf_encode(&c, buf);
    assert_int_equal(buf[0], 2);
    assert_int_equal(len, raft_conf_encoded_size(&c));
    struct raft_conf d;
    assert_int_equal(raft_conf_decode(buf, len, &d), RK_OK);
    assert_memory_equal(&c, &d, sizeof(c));
    assert_string_equal(raft_conf_addr(&d, 3)->client, "10.0.0.3:6383");
    assert_string_equal(raft_conf_addr(&d, 1)->peer, "h1:7001");
    assert_string_equal(raft_conf_addr(&d, 1)->client, "");
    /* Every cut of the bytes is refused, and so is trailing garbage. */
    for (size_t k = 0; k < len; k++)
        assert_int_equal(raft_conf_decode(buf, k, &d), RK_EMALFORMED);
    buf[len] = 0;
    assert_int_equal(raft_conf_decode(buf, len + 1, &d), RK_EMALFORMED);
    /* An address of a non-member, one twice, a control byte. */
    uint8_t bad[RAFT_CONF_ENCODED_MAX];
    size_t at = 3 + 24 + 1; /* the first address's id */
    memcpy(bad, buf, len);
    bad[at] = 9;
    assert_int_equal(raft_conf_decode(bad, len, &d), RK_EMALFORMED);
    memcpy(bad, buf, len);
    bad[at] = buf[at + 8 + 1 + 13 + 1 + 13]; /* the second's id */
    assert_int_equal(raft_conf_decode(bad, len, &d), RK_EMALFORMED);
    memcpy(bad, buf, len);
    bad[at + 8 + 1] = '\n';
    assert_int_equal(raft_conf_decode(bad, len, &d), RK_EMALFORMED);
    memcpy(bad, buf, len);
    bad[at + 8 + 1 + 5] = '\0'; /* a NUL inside (the codec fuzz target found it accepted) */
    assert_int_equal(raft_conf_decode(bad, len, &d), RK_EMALFORMED);
    /* Both addresses empty drops the entry; the last one gone, version 1 again. */
    struct raft_member_addr none3 = {.id = 3}, none1 = {.id = 1};
    assert_int_equal(raft_conf_set_addr(&c, &none3), RK_OK);
    assert_int_equal(raft_conf_set_addr(&c, &none1), RK_OK);
    assert_int_equal(raft_conf_encode(&c, buf), sizeof(v1));
    assert_memory_equal(buf, v1, sizeof(v1));
}

/* ADD with an address records it; an address change is a configuration entry every node
 * follows; REMOVE drops the member's addresses. */
static void test_member_addresses_follow_the_configuration(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(4);
    rn_elect(net, 1);
    uint64_t index = 0, leader = 0;
    struct raft_member_addr a4 = {.id = 4, .peer = "h4:7004", .client = "h4:6004"};
    assert_int_equal(raft_add_learner_addr(rn_raft(net, 1), &a4, &index, &leader), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    for (uint64_t id = 1; id <= 4; id++) {
        struct raft_conf c = conf_of(net, id);
        assert_non_null(raft_conf_addr(&c, 4));
        assert_string_equal(raft_conf_addr(&c, 4)->peer, "h4:7004");
    }
    struct raft_member_addr moved = {.id = 4, .peer = "h4:8004", .client = "h4:6004"};
    assert_int_equal(raft_set_member_addr(rn_raft(net, 2), &moved, &index, &leader), RK_ENOTLEADER);
    struct raft_member_addr stranger = {.id = 7, .peer = "h7:1"};
    assert_int_equal(raft_set_member_addr(rn_raft(net, 1), &stranger, &index, &leader), RK_EINVAL);
    assert_int_equal(raft_set_member_addr(rn_raft(net, 1), &moved, &index, &leader), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    for (uint64_t id = 1; id <= 4; id++) {
        struct raft_conf c = conf_of(net, id);
        assert_string_equal(raft_conf_addr(&c, 4)->peer, "h4:8004");
        assert_true(raft_conf_is_learner(&c, 4));
        assert_int_equal(status_of(net, id).commit, index);
    }
    assert_int_equal(change(net, 1, raft_remove_member, 4), RK_OK);
    struct raft_conf c = conf_of(net, 1);
    assert_null(raft_conf_addr(&c, 4));
    assert_int_equal(c.n_addrs, 0);
    cluster_free(net);
}

static void test_learner_receives_the_log_but_never_counts_in_a_quorum(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(4);
    rn_elect(net, 1);
    assert_int_equal(change(net, 1, raft_add_learner, 4), RK_OK);
    assert_true(sees_learner(net, 4, 4));
    assert_false(status_of(net, 4).voter);
    assert_int_equal(rn_propose(net, 1, "a"), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    assert_int_equal(status_of(net, 4).commit, status_of(net, 1).last_index);
    /* With both other voters gone, the learner's acknowledgment commits nothing. */
    rn_isolate(net, 2);
    rn_isolate(net, 3);
    uint64_t commit = status_of(net, 1).commit;
    assert_int_equal(rn_propose(net, 1, "b"), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    assert_int_equal(status_of(net, 4).last_index, status_of(net, 1).last_index);
    assert_int_equal(status_of(net, 1).commit, commit);
    /* Nor does it keep the leader in office (CheckQuorum). */
    rn_run(net, 25);
    assert_int_not_equal(status_of(net, 1).role, RAFT_LEADER);
    cluster_free(net);
}

static void test_learner_never_campaigns(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(4);
    rn_elect(net, 1);
    assert_int_equal(change(net, 1, raft_add_learner, 4), RK_OK);
    uint64_t term = status_of(net, 4).term;
    rn_isolate(net, 4);
    uint64_t elections = 0;
    for (int i = 0; i < 200; i++) {
        rn_tick(net, 4);
        rn_process(net, 4);
    }
    struct raft_counters c;
    raft_counters(rn_raft(net, 4), &c);
    elections = c.elections;
    assert_int_equal(elections, 0);
    assert_int_equal(status_of(net, 4).term, term);
    assert_int_equal(rn_count(net, 0, 4), 0);
    /* raft_campaign and TimeoutNow do nothing either. */
    raft_campaign(rn_raft(net, 4));
    rn_process(net, 4);
    assert_int_equal(status_of(net, 4).role, RAFT_FOLLOWER);
    assert_int_equal(raft_transfer_leader(rn_raft(net, 1), 4), RK_EINVAL);
    cluster_free(net);
}

static void test_promoted_learner_counts_in_the_new_majority(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(4);
    rn_elect(net, 1);
    assert_int_equal(change(net, 1, raft_add_learner, 4), RK_OK);
    assert_int_equal(change(net, 1, raft_promote, 4), RK_OK);
    for (uint64_t id = 1; id <= 4; id++) {
        assert_int_equal(conf_of(net, id).n_voters, 4);
        assert_true(status_of(net, id).voter);
    }
    /* Four voters: a majority is three. Two are not enough, as leader or as candidates. */
    rn_isolate(net, 3);
    rn_isolate(net, 4);
    uint64_t commit = status_of(net, 1).commit;
    assert_int_equal(rn_propose(net, 1, "x"), RK_OK);
    rn_run(net, 3);
    assert_int_equal(status_of(net, 1).commit, commit);
    rn_run(net, 100);
    assert_int_not_equal(status_of(net, 1).role, RAFT_LEADER);
    assert_int_not_equal(status_of(net, 2).role, RAFT_LEADER);
    /* Three of the four elect and commit, with the new voter among them. */
    rn_heal(net);
    rn_isolate(net, 1);
    rn_run(net, 100);
    uint64_t l = rn_leader(net);
    assert_true(l >= 2 && l <= 4);
    assert_int_equal(rn_propose(net, l, "y"), RK_OK);
    rn_run(net, 3);
    assert_int_equal(status_of(net, l).commit, status_of(net, l).last_index);
    cluster_free(net);
}

/* Ongaro's fix (raft-dev, 2015): no change before the leader has committed an entry of its own
 * term. Removing the rule makes this test fail. */
static void test_change_waits_for_an_entry_of_the_leaders_term_to_commit(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(4);
    net->filter = drop_appends; /* the no-op of the new leader stays uncommitted */
    raft_campaign(rn_raft(net, 1));
    rn_process_all(net);
    rn_deliver_all(net);
    assert_int_equal(status_of(net, 1).role, RAFT_LEADER);
    uint64_t index = 0, leader = 0;
    assert_int_equal(raft_add_learner(rn_raft(net, 1), 4, &index, &leader), RK_EBUSY);
    net->filter = NULL;
    rn_run(net, 2);
    assert_int_equal(status_of(net, 1).commit, status_of(net, 1).last_index);
    assert_int_equal(raft_add_learner(rn_raft(net, 1), 4, &index, &leader), RK_OK);
    cluster_free(net);
}

static void test_one_change_at_a_time_and_one_voter_at_a_time(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(5);
    rn_elect(net, 1);
    struct raft *r = rn_raft(net, 1);
    uint64_t index = 0, leader = 0;
    net->filter = drop_appends;
    assert_int_equal(raft_add_learner(r, 4, &index, &leader), RK_OK);
    assert_int_equal(raft_add_learner(r, 5, &index, &leader), RK_EBUSY);
    net->filter = NULL;
    rn_run(net, 2);
    assert_int_equal(raft_add_learner(r, 5, &index, &leader), RK_OK);
    rn_run(net, 2);
    /* Two voters at once: not a single-server change. */
    struct raft_conf c = conf_of(net, 1);
    c.n_learners = 0;
    c.voters[c.n_voters++] = 4;
    c.voters[c.n_voters++] = 5;
    assert_int_equal(raft_propose_conf(r, &c, &index, &leader), RK_EINVAL);
    assert_int_equal(raft_promote(r, 2, &index, &leader), RK_EINVAL);     /* not a learner */
    assert_int_equal(raft_add_learner(r, 3, &index, &leader), RK_EINVAL); /* a member */
    assert_int_equal(raft_add_learner(rn_raft(net, 2), 7, &index, &leader), RK_ENOTLEADER);
    assert_int_equal(leader, 1);
    cluster_free(net);
}

/* As etcd: a learner is promoted only once it holds everything committed (thesis §4.2.1). */
static void test_learner_promoted_only_once_caught_up(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(4);
    rn_elect(net, 1);
    rn_isolate(net, 4);
    assert_int_equal(change(net, 1, raft_add_learner, 4), RK_OK);
    assert_int_equal(rn_propose(net, 1, "a"), RK_OK);
    rn_run(net, 3);
    uint64_t index = 0, leader = 0;
    assert_int_equal(raft_promote(rn_raft(net, 1), 4, &index, &leader), RK_EBUSY);
    rn_heal(net);
    rn_run(net, 3);
    assert_int_equal(raft_promote(rn_raft(net, 1), 4, &index, &leader), RK_OK);
    cluster_free(net);
}

static void test_removed_leader_steps_down_once_committed_and_hands_over(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    rn_elect(net, 1);
    uint64_t index = 0, leader = 0;
    assert_int_equal(raft_remove_member(rn_raft(net, 1), 1, &index, &leader), RK_OK);
    /* Until the removal commits it still leads, without counting itself. */
    assert_int_equal(status_of(net, 1).role, RAFT_LEADER);
    assert_false(status_of(net, 1).voter);
    rn_process_all(net);
    rn_deliver_all(net);
    assert_int_not_equal(status_of(net, 1).role, RAFT_LEADER);
    /* TimeoutNow: a new leader without waiting for an election timeout. */
    uint64_t l = rn_leader(net);
    assert_true(l == 2 || l == 3);
    assert_int_equal(conf_of(net, l).n_voters, 2);
    assert_int_equal(rn_propose(net, l, "after"), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    assert_int_equal(status_of(net, l).commit, status_of(net, l).last_index);
    /* The old leader stands no more. */
    uint64_t term = status_of(net, 1).term;
    rn_isolate(net, 1);
    for (int i = 0; i < 100; i++)
        rn_tick(net, 1);
    rn_process(net, 1);
    assert_int_equal(status_of(net, 1).term, term);
    cluster_free(net);
}

/* Thesis §4.2.3: a removed server that never heard of its removal times out and asks for
 * votes; without PreVote its term rises. The others must not follow its term. */
static void test_removed_node_cannot_disrupt_the_cluster(void **state)
{
    (void)state;
    g_pre_vote = false;
    struct rn_net *net = cluster_new(3);
    rn_elect(net, 1);
    rn_isolate(net, 3);
    uint64_t index = 0, leader = 0;
    assert_int_equal(raft_remove_member(rn_raft(net, 1), 3, &index, &leader), RK_OK);
    rn_run(net, 3);
    assert_true(status_of(net, 1).commit >= index);
    assert_true(sees_voter(net, 3, 3)); /* it does not know */
    uint64_t term = status_of(net, 1).term;
    rn_heal(net);
    for (int i = 0; i < 300; i++)
        rn_run(net, 1);
    assert_true(status_of(net, 3).term > term); /* it did try */
    assert_int_equal(status_of(net, 1).term, term);
    assert_int_equal(status_of(net, 1).role, RAFT_LEADER);
    assert_int_equal(status_of(net, 2).term, term);
    cluster_free(net);
}

/* Thesis §4.1: the latest configuration in the log is used, committed or not, and reverts
 * when its entry is cut. */
static void test_uncommitted_configuration_reverts_when_its_entry_is_cut(void **state)
{
    (void)state;
    struct rn_net *net = calloc(1, sizeof(*net));
    assert_non_null(net);
    rn_init(net, 5, NULL); /* five voters */
    rn_elect(net, 1);
    rn_cut(net, 1, 3);
    rn_cut(net, 1, 4);
    rn_cut(net, 1, 5);
    uint64_t index = 0, leader = 0;
    struct raft_conf c = conf_of(net, 1);
    c.n_voters--; /* removes 5 */
    assert_int_equal(raft_propose_conf(rn_raft(net, 1), &c, &index, &leader), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    assert_int_equal(conf_of(net, 2).n_voters, 4);
    assert_int_equal(status_of(net, 2).conf_index, index);
    rn_heal(net);
    rn_isolate(net, 1);
    rn_isolate(net, 2);
    rn_run(net, 60);
    uint64_t l = rn_leader(net);
    assert_true(l >= 3);
    assert_int_equal(rn_propose(net, l, "x"), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    rn_heal(net);
    rn_isolate(net, 1);
    rn_run(net, 3);
    assert_int_equal(conf_of(net, 2).n_voters, 5);
    assert_int_equal(status_of(net, 2).conf_index, 0);
    rn_destroy(net);
    free(net);
}

static void test_snapshot_carries_the_configuration(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(4);
    rn_elect(net, 1);
    assert_int_equal(change(net, 1, raft_add_learner, 4), RK_OK);
    assert_int_equal(rn_propose(net, 1, "a"), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    uint64_t at = status_of(net, 1).commit;
    assert_int_equal(rn_compact(net, 1, at), RK_OK);
    struct raft_conf c;
    assert_int_equal(raft_conf_at(rn_raft(net, 1), at, &c), RK_OK);
    assert_true(raft_conf_is_learner(&c, 4));
    assert_int_equal(status_of(net, 1).conf_index, 0); /* the snapshot's now */
    assert_true(sees_learner(net, 1, 4));
    assert_int_equal(raft_conf_at(rn_raft(net, 1), at - 1, &c), RK_EINVAL);

    /* A new node with an empty configuration installs it. */
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 4;
    cfg.allow_non_member = true;
    cfg.hard_state.term = status_of(net, 1).term; /* as a leader's message would have set it */
    struct raft *r = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(raft_create(&cfg, &r, &err), RK_OK);
    assert_int_equal(raft_restore_conf(r, at, status_of(net, 1).term, &c), RK_OK);
    struct raft_status st;
    raft_status(r, &st);
    assert_int_equal(st.n_voters, 3);
    assert_int_equal(st.n_learners, 1);
    assert_false(st.voter);
    raft_destroy(r);
    cluster_free(net);
}

static void test_new_node_with_empty_configuration_joins_through_the_log(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(5);
    rn_elect(net, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rn_propose(net, 1, "w"), RK_OK);
    rn_process_all(net);
    rn_deliver_all(net);
    /* Not a member: it stays quiet. */
    for (int i = 0; i < 50; i++)
        rn_tick(net, 5);
    rn_process(net, 5);
    assert_int_equal(rn_count(net, 0, 5), 0);
    assert_int_equal(change(net, 1, raft_add_learner, 5), RK_OK);
    rn_run(net, 3);
    assert_int_equal(status_of(net, 5).commit, status_of(net, 1).commit);
    assert_int_equal(change(net, 1, raft_promote, 5), RK_OK);
    assert_int_equal(change(net, 1, raft_add_learner, 4), RK_OK);
    assert_int_equal(change(net, 1, raft_promote, 4), RK_OK);
    rn_run(net, 3);
    for (uint64_t id = 1; id <= 5; id++)
        assert_int_equal(conf_of(net, id).n_voters, 5);
    /* Shrink back, removing the leader among others. */
    assert_int_equal(change(net, 1, raft_remove_member, 2), RK_OK);
    assert_int_equal(change(net, 1, raft_remove_member, 1), RK_OK);
    rn_run(net, 3);
    uint64_t l = rn_leader(net);
    assert_true(l >= 3);
    assert_int_equal(conf_of(net, l).n_voters, 3);
    assert_int_equal(rn_propose(net, l, "z"), RK_OK);
    rn_run(net, 3);
    assert_int_equal(status_of(net, l).commit, status_of(net, l).last_index);
    rn_check_consistency(net);
    cluster_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_encoding_round_trips_and_refuses_malformed_bytes),
        cmocka_unit_test(test_conf_addresses_round_trip_and_version_1_still_loads),
        cmocka_unit_test(test_member_addresses_follow_the_configuration),
        cmocka_unit_test(test_learner_receives_the_log_but_never_counts_in_a_quorum),
        cmocka_unit_test(test_learner_never_campaigns),
        cmocka_unit_test(test_promoted_learner_counts_in_the_new_majority),
        cmocka_unit_test(test_change_waits_for_an_entry_of_the_leaders_term_to_commit),
        cmocka_unit_test(test_one_change_at_a_time_and_one_voter_at_a_time),
        cmocka_unit_test(test_learner_promoted_only_once_caught_up),
        cmocka_unit_test(test_removed_leader_steps_down_once_committed_and_hands_over),
        cmocka_unit_test(test_removed_node_cannot_disrupt_the_cluster),
        cmocka_unit_test(test_uncommitted_configuration_reverts_when_its_entry_is_cut),
        cmocka_unit_test(test_snapshot_carries_the_configuration),
        cmocka_unit_test(test_new_node_with_empty_configuration_joins_through_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
