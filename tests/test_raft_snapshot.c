/*
 * test_raft_snapshot.c — log compaction and snapshots in core/raft (thesis chapter 5; Figure 13
 * of the extended paper for InstallSnapshot): raft_compact, the leader's rd.snapshot_needed and
 * raft_snapshot_done, raft_restore on a follower, and a node that starts from a snapshot point.
 *
 * Two kinds of tests. Those on one node drive node SELF (id 1 of voters 1..3) by hand: they load
 * a hard state and a log through raft_config, feed crafted messages and assert on the exact
 * outputs of the next ready batch. Those on a cluster use tests/support/raft_net, whose host
 * loop checks the ready contract, Election Safety and State Machine Safety at every step, and
 * whose disk keeps a snapshot point; there the test plays the host's part of a snapshot
 * transfer: when rd.snapshot_needed names a follower, it "installs" the leader's state by
 * calling raft_restore on the follower at the leader's compaction point, then
 * raft_snapshot_done on the leader.
 *
 * Nothing is random: every tick and every delivery is the test's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/raft.h"
#include "raft_net.h"

#define SELF           1
#define ELECTION_TICKS 10
#define MAX_LOG        32

/* ------------------------------------------------------------------------------------------ */
/* Helpers: one node by hand                                                                  */

/* The starting situation of node SELF in a cluster of voters 1..3. The log holds entries of
 * the terms in log[] at snap_index + 1, snap_index + 2, ... (0-terminated). */
struct setup {
    uint64_t term;
    uint64_t commit;
    uint64_t applied;
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t log[MAX_LOG];
};

/* clang-format off */
#define TERMS(...) {__VA_ARGS__, 0}
/* clang-format on */

static size_t terms_len(const uint64_t *terms)
{
    size_t n = 0;
    while (n < MAX_LOG && terms[n] != 0)
        n++;
    return n;
}

static size_t fill_entries(struct raft_entry *e, uint64_t first, const uint64_t *terms)
{
    size_t n = terms_len(terms);
    for (size_t i = 0; i < n; i++)
        e[i] = (struct raft_entry){.term = terms[i], .index = first + i, .type = RAFT_ENTRY_NORMAL};
    return n;
}

static void config_for(const struct setup *s, struct raft_config *c, struct raft_entry *ents)
{
    raft_config_default(c);
    c->id = SELF;
    c->n_voters = 3;
    for (uint32_t i = 0; i < c->n_voters; i++)
        c->voters[i] = i + 1;
    c->election_ticks_min = ELECTION_TICKS;
    c->election_ticks_max = ELECTION_TICKS;
    c->pre_vote = false;
    c->check_quorum = false;
    c->hard_state = (struct raft_hard_state){.term = s->term, .commit = s->commit};
    c->applied = s->applied;
    c->snapshot_index = s->snap_index;
    c->snapshot_term = s->snap_term;
    c->n_entries = fill_entries(ents, s->snap_index + 1, s->log);
    c->entries = ents;
}

static struct raft *make_node(struct setup s)
{
    struct raft_config c;
    struct raft_entry ents[MAX_LOG];
    config_for(&s, &c, ents);
    struct raft *r = NULL;
    struct rk_errmsg err = {{0}};
    int rc = raft_create(&c, &r, &err);
    if (rc != RK_OK)
        fail_msg("raft_create: %s: %s", rk_strerror(rc), err.text);
    return r;
}

static struct raft_status status_of(const struct raft *r)
{
    struct raft_status st;
    raft_status(r, &st);
    return st;
}

/* Takes and acknowledges every pending ready batch, as a host that persists and sends all. */
static void drain(struct raft *r)
{
    for (int guard = 0; raft_has_ready(r); guard++) {
        assert_true(guard < 100);
        struct raft_ready rd;
        raft_ready(r, &rd);
        raft_advance(r, &rd);
    }
}

static const struct raft_msg *find_in(const struct raft_msg *v, size_t n, uint8_t type, uint64_t to)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].type == type && (to == 0 || v[i].to == to))
            return &v[i];
    }
    return NULL;
}

/* Steps an APPEND from `from` in term with entries of the given terms after (prev, prev_term). */
static int step_append(struct raft *r, uint64_t from, uint64_t term, uint64_t prev,
                       uint64_t prev_term, uint64_t commit, const uint64_t *terms)
{
    struct raft_entry e[MAX_LOG];
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = from,
                         .to = SELF,
                         .term = term,
                         .log_index = prev,
                         .log_term = prev_term,
                         .commit = commit};
    m.n_entries = (uint32_t)fill_entries(e, prev + 1, terms);
    m.entries = m.n_entries > 0 ? e : NULL;
    return raft_step(r, &m);
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers: a cluster                                                                         */

static struct rn_net *cluster_new(uint32_t n)
{
    struct rn_net *net = calloc(1, sizeof(*net));
    assert_non_null(net);
    rn_init(net, n, NULL);
    return net;
}

static void cluster_free(struct rn_net *net)
{
    rn_destroy(net);
    free(net);
}

static struct raft_status node_status(struct rn_net *net, uint64_t id)
{
    return status_of(rn_raft(net, id));
}

/* Progress of follower id at leader (voters are 1..n: its position is id - 1). */
static struct raft_progress_status progress_at(struct rn_net *net, uint64_t leader, uint64_t id)
{
    struct raft_progress_status ps;
    assert_true(raft_progress(rn_raft(net, leader), (uint32_t)(id - 1), &ps));
    assert_int_equal(ps.id, id);
    return ps;
}

/* Queued messages of type (0: any) to `to`. */
static size_t queued_to(const struct rn_net *net, uint8_t type, uint64_t to)
{
    size_t n = 0;
    for (size_t i = 0; i < net->n_queue; i++) {
        const struct raft_msg *m = &net->queue[i].m;
        n += (type == 0 || m->type == type) && m->to == to;
    }
    return n;
}

static void propose_n(struct rn_net *net, uint64_t id, uint32_t n)
{
    char buf[32];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf), "cmd-%u", i);
        assert_int_equal(rn_propose(net, id, buf), RK_OK);
        rn_deliver_all(net);
    }
}

/* A leader ticks (heartbeats) and everything is delivered, until rd.snapshot_needed has named
 * follower `id` `want` times in all; asserts it happens within a few heartbeats. */
static void heartbeat_until_snapshot_requested(struct rn_net *net, uint64_t leader, uint64_t id,
                                               uint64_t want)
{
    for (int i = 0; rn_node(net, leader)->snapshot_requests[id] < want; i++) {
        assert_true(i < 5);
        rn_tick(net, leader);
        rn_deliver_all(net);
    }
    assert_int_equal(rn_node(net, leader)->snapshot_requests[id], want);
}

/*
 * The common start: leader 1 of 3 in term t; follower 3 cut off while n_cmds commands commit
 * with 2; the leader compacts its log up to its applied index; the cut is healed, and the
 * leader's next heartbeat round finds that 3 needs entries compacted away. Returns the
 * compaction point.
 */
static uint64_t lagging_follower_needs_snapshot(struct rn_net *net, uint32_t n_cmds)
{
    rn_elect(net, 1);
    rn_isolate(net, 3);
    propose_n(net, 1, n_cmds);
    struct raft_status st = node_status(net, 1);
    assert_int_equal(st.commit, st.last_index);
    assert_int_equal(st.applied, st.commit);
    assert_int_equal(rn_compact(net, 1, st.applied), RK_OK);
    rn_heal(net);
    heartbeat_until_snapshot_requested(net, 1, 3, 1);
    assert_true(progress_at(net, 1, 3).snapshotting);
    return st.applied;
}

/* The host's part of a snapshot transfer that succeeded: follower `to` now holds the leader's
 * state machine at the leader's compaction point. */
static void install_snapshot(struct rn_net *net, uint64_t leader, uint64_t to)
{
    struct raft_status ls = node_status(net, leader);
    assert_int_equal(raft_restore(rn_raft(net, to), ls.snapshot_index, ls.snapshot_term), RK_OK);
    rn_process(net, to);
    raft_snapshot_done(rn_raft(net, leader), to, ls.snapshot_index, true);
    rn_process(net, leader);
}

/* ------------------------------------------------------------------------------------------ */
/* raft_compact                                                                               */

static void test_compact_drops_entries_up_to_index_and_keeps_its_term(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .commit = 5, .log = TERMS(1, 1, 2, 2, 2)});
    drain(r);
    assert_int_equal(status_of(r).applied, 5);
    assert_int_equal(raft_compact(r, 3), RK_OK);
    for (uint64_t i = 1; i <= 3; i++)
        assert_null(raft_entry_at(r, i));
    assert_non_null(raft_entry_at(r, 4));
    assert_int_equal(raft_entry_at(r, 4)->index, 4);
    assert_int_equal(raft_term_at(r, 3), 2);
    assert_int_equal(raft_term_at(r, 2), 0); /* before the snapshot point: unknown */
    struct raft_status st = status_of(r);
    assert_int_equal(st.snapshot_index, 3);
    assert_int_equal(st.snapshot_term, 2);
    assert_int_equal(st.first_index, 4);
    assert_int_equal(st.last_index, 5);
    assert_int_equal(st.commit, 5);
    /* The host compacts its own store: nothing for it in a ready. */
    assert_false(raft_has_ready(r));
    raft_check_invariants(r);
    raft_destroy(r);
}

static void test_compact_beyond_applied_is_refused(void **state)
{
    (void)state;
    /* Committed up to 5 but applied only to 2 (the host has not taken the ready yet). */
    struct raft *r = make_node(
        (struct setup){.term = 2, .commit = 5, .applied = 2, .log = TERMS(1, 1, 2, 2, 2)});
    assert_int_equal(raft_compact(r, 3), RK_EINVAL);
    assert_int_equal(raft_compact(r, 6), RK_EINVAL);
    struct raft_status st = status_of(r);
    assert_int_equal(st.snapshot_index, 0);
    assert_non_null(raft_entry_at(r, 1));
    /* Up to applied is fine. */
    assert_int_equal(raft_compact(r, 2), RK_OK);
    assert_int_equal(status_of(r).snapshot_index, 2);
    raft_destroy(r);
}

static void test_compact_behind_the_snapshot_point_does_nothing(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .commit = 5, .log = TERMS(1, 1, 2, 2, 2)});
    drain(r);
    assert_int_equal(raft_compact(r, 4), RK_OK);
    assert_int_equal(raft_compact(r, 2), RK_OK);
    assert_int_equal(raft_compact(r, 4), RK_OK);
    struct raft_status st = status_of(r);
    assert_int_equal(st.snapshot_index, 4);
    assert_int_equal(st.snapshot_term, 2);
    assert_int_equal(st.last_index, 5);
    assert_non_null(raft_entry_at(r, 5));
    assert_false(raft_has_ready(r));
    raft_destroy(r);
}

/* ------------------------------------------------------------------------------------------ */
/* The leader: snapshot_needed and raft_snapshot_done                                          */

static void
test_leader_asks_once_for_a_snapshot_of_a_follower_behind_its_compaction_point(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    lagging_follower_needs_snapshot(net, 10);
    /* Not again while the transfer runs, however many heartbeats it answers. */
    for (int i = 0; i < 30; i++) {
        rn_tick(net, 1);
        rn_deliver_all(net);
    }
    assert_int_equal(rn_node(net, 1)->snapshot_requests[3], 1);
    assert_int_equal(rn_node(net, 1)->snapshot_requests[2], 0);
    assert_true(progress_at(net, 1, 3).snapshotting);
    assert_false(progress_at(net, 1, 2).snapshotting);
    cluster_free(net);
}

static void
test_leader_sends_no_append_to_a_snapshotting_follower_but_keeps_heartbeating(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    lagging_follower_needs_snapshot(net, 10);
    uint64_t heartbeats = 0;
    for (int i = 0; i < 20; i++) {
        rn_tick(net, 1);
        /* New entries too: they go to 2, not to 3. */
        if (i % 5 == 0)
            assert_int_equal(rn_propose(net, 1, "more"), RK_OK);
        assert_int_equal(queued_to(net, RAFT_MSG_APPEND, 3), 0);
        heartbeats += queued_to(net, RAFT_MSG_HEARTBEAT, 3);
        rn_deliver_all(net);
    }
    assert_int_equal(heartbeats, 20);
    /* 3 is still alive for the leader (CheckQuorum): it answers heartbeats. */
    assert_int_equal(node_status(net, 1).role, RAFT_LEADER);
    assert_int_equal(node_status(net, 3).leader, 1);
    assert_int_equal(node_status(net, 2).last_index, node_status(net, 1).last_index);
    cluster_free(net);
}

static void test_snapshot_done_resumes_replication_after_the_snapshot_index(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    uint64_t snap = lagging_follower_needs_snapshot(net, 10);
    propose_n(net, 1, 2); /* entries after the snapshot point: snap + 1, snap + 2 */
    install_snapshot(net, 1, 3);
    struct raft_progress_status ps = progress_at(net, 1, 3);
    assert_false(ps.snapshotting);
    assert_int_equal(ps.match, snap);
    assert_int_equal(ps.next, snap + 1);
    /* One APPEND to 3, anchored at the snapshot point, carrying what follows it. */
    assert_int_equal(queued_to(net, RAFT_MSG_APPEND, 3), 1);
    const struct raft_msg *m = NULL;
    for (size_t i = 0; i < net->n_queue; i++) {
        if (net->queue[i].m.type == RAFT_MSG_APPEND && net->queue[i].m.to == 3)
            m = &net->queue[i].m;
    }
    assert_non_null(m);
    assert_int_equal(m->log_index, snap);
    assert_int_equal(m->log_term, node_status(net, 1).snapshot_term);
    assert_int_equal(m->n_entries, 2);
    assert_int_equal(m->entries[0].index, snap + 1);
    rn_deliver_all(net);
    struct raft_status s3 = node_status(net, 3), s1 = node_status(net, 1);
    assert_int_equal(s3.last_index, s1.last_index);
    assert_int_equal(progress_at(net, 1, 3).match, s1.last_index);
    assert_true(progress_at(net, 1, 3).replicating);
    cluster_free(net);
}

static void test_follower_caught_up_by_snapshot_counts_toward_commit(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    uint64_t snap = lagging_follower_needs_snapshot(net, 10);
    /* Now 2 goes away: the leader's next entry needs 3 to commit. */
    rn_isolate(net, 2);
    assert_int_equal(rn_propose(net, 1, "needs-3"), RK_OK);
    rn_deliver_all(net);
    assert_int_equal(node_status(net, 1).commit, snap);
    assert_int_equal(node_status(net, 1).last_index, snap + 1);
    install_snapshot(net, 1, 3);
    rn_deliver_all(net);
    assert_int_equal(progress_at(net, 1, 3).match, snap + 1);
    assert_int_equal(node_status(net, 1).commit, snap + 1);
    rn_tick(net, 1); /* the heartbeat tells 3 the commit */
    rn_deliver_all(net);
    assert_int_equal(node_status(net, 3).commit, snap + 1);
    assert_int_equal(rn_node(net, 3)->applied, snap + 1);
    cluster_free(net);
}

static void test_failed_snapshot_is_asked_again_only_after_the_next_heartbeat_response(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    lagging_follower_needs_snapshot(net, 10);
    raft_snapshot_done(rn_raft(net, 1), 3, 0, false);
    rn_process(net, 1);
    /* No request in a loop, and nothing sent to 3 in its place. */
    assert_false(progress_at(net, 1, 3).snapshotting);
    assert_int_equal(rn_node(net, 1)->snapshot_requests[3], 1);
    assert_int_equal(queued_to(net, 0, 3), 0);
    rn_deliver_all(net);
    assert_int_equal(rn_node(net, 1)->snapshot_requests[3], 1);
    /* A heartbeat whose answer is lost: still nothing. */
    rn_tick(net, 1);
    assert_int_equal(queued_to(net, RAFT_MSG_HEARTBEAT, 3), 1);
    net->cut[3][1] = true; /* one way: 3 hears the heartbeat, its answer is lost */
    rn_deliver_all(net);
    rn_heal(net);
    assert_int_equal(rn_node(net, 1)->snapshot_requests[3], 1);
    assert_false(progress_at(net, 1, 3).snapshotting);
    /* The next answered heartbeat asks again, once. */
    heartbeat_until_snapshot_requested(net, 1, 3, 2);
    assert_true(progress_at(net, 1, 3).snapshotting);
    cluster_free(net);
}

static void test_snapshot_done_for_a_follower_not_snapshotting_is_ignored(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    rn_elect(net, 1);
    propose_n(net, 1, 3);
    struct raft_progress_status before = progress_at(net, 1, 2);
    raft_snapshot_done(rn_raft(net, 1), 2, 1, true);
    raft_snapshot_done(rn_raft(net, 1), 2, 1, false);
    raft_snapshot_done(rn_raft(net, 1), 1, 1, true); /* itself */
    raft_snapshot_done(rn_raft(net, 1), 9, 1, true); /* no such voter */
    rn_process(net, 1);
    struct raft_progress_status after = progress_at(net, 1, 2);
    assert_int_equal(after.match, before.match);
    assert_int_equal(after.next, before.next);
    assert_int_equal(after.replicating, before.replicating);
    assert_int_equal(rn_count(net, 0, 1), 0);
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* raft_restore on a follower (Figure 13, InstallSnapshot receiver)                            */

/* Figure 13, 6: "If existing log entry has same index and term as snapshot's last included
 * entry, retain log entries following it and reply". */
static void test_restore_with_a_matching_entry_keeps_the_entries_after_it(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .commit = 1, .log = TERMS(1, 1, 2, 2, 2)});
    drain(r);
    assert_int_equal(raft_restore(r, 3, 2), RK_OK);
    struct raft_status st = status_of(r);
    assert_int_equal(st.snapshot_index, 3);
    assert_int_equal(st.snapshot_term, 2);
    assert_int_equal(st.last_index, 5);
    assert_null(raft_entry_at(r, 3));
    assert_int_equal(raft_entry_at(r, 4)->term, 2);
    assert_int_equal(raft_entry_at(r, 5)->term, 2);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_restore);
    assert_int_equal(rd.truncate_from, 0); /* 4 and 5 stay on the disk too */
    assert_int_equal(rd.n_entries, 0);
    raft_advance(r, &rd);
    raft_check_invariants(r);
    raft_destroy(r);
}

/* Figure 13, 7: "Discard the entire log". What was durable beyond the index must go too. */
static void test_restore_without_a_matching_entry_discards_the_log(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 3, .commit = 1, .log = TERMS(1, 1, 2, 2, 2)});
    drain(r);
    assert_int_equal(raft_restore(r, 4, 3), RK_OK); /* entry 4 has term 2, not 3 */
    struct raft_status st = status_of(r);
    assert_int_equal(st.snapshot_index, 4);
    assert_int_equal(st.snapshot_term, 3);
    assert_int_equal(st.last_index, 4);
    assert_int_equal(st.last_term, 3);
    assert_null(raft_entry_at(r, 5));
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_restore);
    assert_int_equal(rd.truncate_from, 5);
    assert_int_equal(rd.n_entries, 0);
    raft_advance(r, &rd);
    raft_check_invariants(r);
    raft_destroy(r);
}

static void test_restore_beyond_the_log_discards_it_without_truncation(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 3, .commit = 1, .log = TERMS(1, 1, 2)});
    drain(r);
    assert_int_equal(raft_restore(r, 10, 3), RK_OK);
    struct raft_status st = status_of(r);
    assert_int_equal(st.snapshot_index, 10);
    assert_int_equal(st.last_index, 10);
    assert_int_equal(st.persisted_index, 10);
    assert_null(raft_entry_at(r, 3));
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_restore);
    assert_int_equal(rd.truncate_from, 0); /* nothing durable lay beyond 10 */
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* A conflict truncation still pending when the snapshot arrives, beyond the index + 1: the
 * durable entries between the index and it are stale too (the log is discarded). */
static void
test_restore_discarding_the_log_truncates_every_durable_entry_after_the_index(void **state)
{
    (void)state;
    struct raft *r =
        make_node((struct setup){.term = 2, .commit = 1, .log = TERMS(1, 1, 1, 1, 1, 1)});
    drain(r);
    /* Leader 2 of term 2 replaces 5 and 6: truncation from 5 pending. */
    assert_int_equal(step_append(r, 2, 2, 4, 1, 1, (const uint64_t[])TERMS(2)), RK_OK);
    /* Leader 3 of term 3 sends a snapshot whose last entry (3) has term 3. */
    struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 3, .to = SELF, .term = 3};
    assert_int_equal(raft_step(r, &hb), RK_OK);
    assert_int_equal(raft_restore(r, 3, 3), RK_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_restore);
    assert_int_equal(rd.restore_index, 3);
    assert_int_equal(rd.truncate_from, 4);
    assert_int_equal(rd.n_entries, 0);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* A conflict truncation still pending at or below the index: the host compacts to the index
 * and may do so before truncating (log.h refuses a truncation behind the snapshot point), so
 * the truncation moves to index + 1, where durable stale entries may still lie. */
static void test_restore_moves_a_pending_truncation_after_the_snapshot_point(void **state)
{
    (void)state;
    struct raft *r =
        make_node((struct setup){.term = 2, .commit = 1, .log = TERMS(1, 1, 1, 1, 1, 1)});
    drain(r);
    assert_int_equal(step_append(r, 2, 2, 2, 1, 1, (const uint64_t[])TERMS(2, 2, 2)), RK_OK);
    assert_int_equal(raft_restore(r, 4, 2), RK_OK); /* matches: 5 is kept */
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_restore);
    assert_int_equal(rd.restore_index, 4);
    assert_int_equal(rd.truncate_from, 5);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 5);
    assert_int_equal(rd.entries[0].term, 2);
    raft_advance(r, &rd);
    raft_destroy(r);
}

static void test_restore_moves_commit_and_applied_to_the_index(void **state)
{
    (void)state;
    struct raft *r =
        make_node((struct setup){.term = 2, .commit = 2, .applied = 1, .log = TERMS(1, 1, 2)});
    assert_int_equal(raft_restore(r, 8, 2), RK_OK);
    struct raft_status st = status_of(r);
    assert_int_equal(st.commit, 8);
    assert_int_equal(st.applied, 8);
    /* Nothing up to 8 is handed out to apply: the state machine is the snapshot. */
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_committed, 0);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.commit, 8);
    raft_advance(r, &rd);
    raft_check_invariants(r);
    raft_destroy(r);
}

static void test_restore_at_or_below_commit_is_stale(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .commit = 3, .log = TERMS(1, 1, 2, 2)});
    drain(r);
    assert_int_equal(raft_restore(r, 3, 2), RK_ESTALE);
    assert_int_equal(raft_restore(r, 2, 1), RK_ESTALE);
    struct raft_status st = status_of(r);
    assert_int_equal(st.snapshot_index, 0);
    assert_int_equal(st.commit, 3);
    assert_int_equal(st.last_index, 4);
    assert_false(raft_has_ready(r));
    raft_destroy(r);
}

static void test_restore_on_a_leader_is_refused(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    rn_elect(net, 1);
    struct raft_status before = node_status(net, 1);
    assert_int_equal(raft_restore(rn_raft(net, 1), before.last_index + 5, before.term), RK_EINVAL);
    struct raft_status after = node_status(net, 1);
    assert_int_equal(after.snapshot_index, 0);
    assert_int_equal(after.last_index, before.last_index);
    assert_int_equal(after.commit, before.commit);
    assert_int_equal(after.role, RAFT_LEADER);
    cluster_free(net);
}

static void test_restore_with_a_term_above_the_current_term_is_refused(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .commit = 1, .log = TERMS(1, 2)});
    drain(r);
    assert_int_equal(raft_restore(r, 5, 3), RK_EINVAL);
    assert_int_equal(raft_restore(r, 5, 0), RK_EINVAL);
    assert_int_equal(status_of(r).snapshot_index, 0);
    assert_false(raft_has_ready(r));
    raft_destroy(r);
}

static void test_ready_after_restore_carries_the_snapshot_point_once(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 3, .commit = 1, .log = TERMS(1, 1)});
    drain(r);
    assert_false(raft_has_ready(r));
    assert_int_equal(raft_restore(r, 6, 3), RK_OK);
    assert_true(raft_has_ready(r));
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_restore);
    assert_int_equal(rd.restore_index, 6);
    assert_int_equal(rd.restore_term, 3);
    raft_advance(r, &rd);
    assert_false(raft_has_ready(r));
    /* The next batch (a heartbeat's) says nothing of it. */
    struct raft_msg hb = {
        .type = RAFT_MSG_HEARTBEAT, .from = 2, .to = SELF, .term = 3, .commit = 6};
    assert_int_equal(raft_step(r, &hb), RK_OK);
    raft_ready(r, &rd);
    assert_false(rd.has_restore);
    raft_advance(r, &rd);
    raft_destroy(r);
}

static void test_append_at_the_snapshot_point_is_accepted_after_restore(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .commit = 1, .log = TERMS(1, 1, 1)});
    drain(r);
    assert_int_equal(raft_restore(r, 10, 2), RK_OK);
    drain(r);
    assert_int_equal(step_append(r, 2, 2, 10, 2, 11, (const uint64_t[])TERMS(2)), RK_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *m =
        find_in(rd.msgs_after_persist, rd.n_msgs_after_persist, RAFT_MSG_APPEND_RESP, 2);
    assert_non_null(m);
    assert_false(m->reject);
    assert_int_equal(m->index, 11);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 11);
    assert_int_equal(rd.n_committed, 0); /* applied once durable: the next batch */
    raft_advance(r, &rd);
    raft_ready(r, &rd);
    assert_int_equal(rd.n_committed, 1);
    assert_int_equal(rd.committed[0].index, 11);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).applied, 11);
    raft_check_invariants(r);
    raft_destroy(r);
}

/* An APPEND that starts before the snapshot point (sent before the leader knew) is checked from
 * the commit index on: what follows the snapshot point is appended. */
static void test_append_overlapping_the_snapshot_point_appends_what_follows_it(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .commit = 1, .log = TERMS(1, 1)});
    drain(r);
    assert_int_equal(raft_restore(r, 5, 2), RK_OK);
    drain(r);
    assert_int_equal(step_append(r, 2, 2, 2, 1, 7, (const uint64_t[])TERMS(2, 2, 2, 2, 2)), RK_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *m =
        find_in(rd.msgs_after_persist, rd.n_msgs_after_persist, RAFT_MSG_APPEND_RESP, 2);
    assert_non_null(m);
    assert_false(m->reject);
    assert_int_equal(m->index, 7);
    assert_int_equal(rd.n_entries, 2);
    assert_int_equal(rd.entries[0].index, 6);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).last_index, 7);
    assert_int_equal(status_of(r).commit, 7);
    raft_destroy(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Starting from a snapshot point                                                             */

static void test_config_with_a_snapshot_point_starts_the_log_after_it(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 3,
                                              .commit = 10,
                                              .applied = 10,
                                              .snap_index = 10,
                                              .snap_term = 2,
                                              .log = TERMS(2, 3)});
    struct raft_status st = status_of(r);
    assert_int_equal(st.snapshot_index, 10);
    assert_int_equal(st.snapshot_term, 2);
    assert_int_equal(st.first_index, 11);
    assert_int_equal(st.last_index, 12);
    assert_int_equal(st.last_term, 3);
    assert_int_equal(raft_term_at(r, 10), 2);
    assert_null(raft_entry_at(r, 10));
    assert_int_equal(raft_entry_at(r, 12)->term, 3);
    raft_destroy(r);
}

static void test_config_with_an_applied_index_behind_the_snapshot_point_is_refused(void **state)
{
    (void)state;
    struct raft_config c;
    struct raft_entry ents[MAX_LOG];
    struct setup s = {
        .term = 3, .commit = 10, .applied = 4, .snap_index = 10, .snap_term = 2, .log = TERMS(2)};
    config_for(&s, &c, ents);
    struct raft *r = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(raft_create(&c, &r, &err), RK_EINVAL);
    assert_null(r);
    assert_true(err.text[0] != '\0');
    /* Entries that do not start right after the snapshot point. */
    s.applied = 10;
    config_for(&s, &c, ents);
    ents[0].index = 12;
    assert_int_equal(raft_create(&c, &r, &err), RK_EINVAL);
    assert_null(r);
}

static void test_nodes_restarted_from_a_snapshot_point_elect_and_replicate(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    rn_elect(net, 1);
    propose_n(net, 1, 8);
    rn_run(net, 2); /* everyone applies everything */
    for (uint64_t id = 1; id <= 3; id++) {
        struct raft_status st = node_status(net, id);
        assert_int_equal(rn_compact(net, id, st.applied - 2), RK_OK);
        rn_crash(net, id);
    }
    for (uint64_t id = 1; id <= 3; id++) {
        rn_restart(net, id);
        struct raft_status st = node_status(net, id);
        assert_int_equal(st.snapshot_index, rn_node(net, id)->snap_index);
        assert_true(st.snapshot_index > 0);
    }
    rn_elect(net, 2);
    propose_n(net, 2, 3);
    rn_run(net, 2);
    struct raft_status s2 = node_status(net, 2);
    for (uint64_t id = 1; id <= 3; id++) {
        struct raft_status st = node_status(net, id);
        assert_int_equal(st.last_index, s2.last_index);
        assert_int_equal(st.commit, s2.last_index);
        assert_int_equal(rn_node(net, id)->applied, s2.last_index);
    }
    rn_check_consistency(net);
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* End to end                                                                                 */

static void test_follower_partitioned_while_the_leader_compacts_catches_up_by_snapshot(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3);
    rn_elect(net, 1);
    rn_isolate(net, 3);
    /* Writes commit and the leader compacts now and then, as a host would. */
    for (int round = 0; round < 4; round++) {
        propose_n(net, 1, 10);
        rn_run(net, 1);
        assert_int_equal(rn_compact(net, 1, node_status(net, 1).applied), RK_OK);
    }
    struct raft_status s1 = node_status(net, 1);
    assert_int_equal(s1.snapshot_index, s1.applied);
    assert_true(node_status(net, 3).last_index < s1.snapshot_index);
    rn_heal(net);
    /* Run the cluster; whenever the leader asks for a snapshot for 3, transfer one. */
    uint64_t transfers = 0;
    for (int i = 0; i < 20; i++) {
        rn_tick_all(net);
        rn_deliver_all(net);
        if (rn_node(net, 1)->snapshot_requests[3] > transfers) {
            install_snapshot(net, 1, 3);
            rn_deliver_all(net);
            transfers++;
        }
    }
    assert_int_equal(transfers, 1);
    assert_int_equal(rn_node(net, 3)->restores, 1);
    propose_n(net, 1, 5);
    rn_run(net, 2);
    s1 = node_status(net, 1);
    struct raft_status s3 = node_status(net, 3);
    assert_int_equal(s3.snapshot_index, s1.snapshot_index);
    assert_int_equal(s3.last_index, s1.last_index);
    assert_int_equal(s3.commit, s1.commit);
    assert_int_equal(rn_node(net, 3)->applied, s1.last_index);
    /* Its log matches the leader's, entry by entry, after the snapshot point. */
    for (uint64_t i = s1.snapshot_index + 1; i <= s1.last_index; i++) {
        const struct raft_entry *a = raft_entry_at(rn_raft(net, 1), i);
        const struct raft_entry *b = raft_entry_at(rn_raft(net, 3), i);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(a->term, b->term);
        assert_int_equal(a->len, b->len);
        if (a->len > 0)
            assert_memory_equal(a->data, b->data, a->len);
    }
    /* And so does its disk. */
    struct rn_node *d3 = rn_node(net, 3);
    assert_int_equal(d3->snap_index + d3->n_log, s1.last_index);
    rn_check_consistency(net);
    cluster_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* raft_compact */
        cmocka_unit_test(test_compact_drops_entries_up_to_index_and_keeps_its_term),
        cmocka_unit_test(test_compact_beyond_applied_is_refused),
        cmocka_unit_test(test_compact_behind_the_snapshot_point_does_nothing),
        /* The leader */
        cmocka_unit_test(
            test_leader_asks_once_for_a_snapshot_of_a_follower_behind_its_compaction_point),
        cmocka_unit_test(
            test_leader_sends_no_append_to_a_snapshotting_follower_but_keeps_heartbeating),
        cmocka_unit_test(test_snapshot_done_resumes_replication_after_the_snapshot_index),
        cmocka_unit_test(test_follower_caught_up_by_snapshot_counts_toward_commit),
        cmocka_unit_test(
            test_failed_snapshot_is_asked_again_only_after_the_next_heartbeat_response),
        cmocka_unit_test(test_snapshot_done_for_a_follower_not_snapshotting_is_ignored),
        /* raft_restore */
        cmocka_unit_test(test_restore_with_a_matching_entry_keeps_the_entries_after_it),
        cmocka_unit_test(test_restore_without_a_matching_entry_discards_the_log),
        cmocka_unit_test(test_restore_beyond_the_log_discards_it_without_truncation),
        cmocka_unit_test(
            test_restore_discarding_the_log_truncates_every_durable_entry_after_the_index),
        cmocka_unit_test(test_restore_moves_a_pending_truncation_after_the_snapshot_point),
        cmocka_unit_test(test_restore_moves_commit_and_applied_to_the_index),
        cmocka_unit_test(test_restore_at_or_below_commit_is_stale),
        cmocka_unit_test(test_restore_on_a_leader_is_refused),
        cmocka_unit_test(test_restore_with_a_term_above_the_current_term_is_refused),
        cmocka_unit_test(test_ready_after_restore_carries_the_snapshot_point_once),
        cmocka_unit_test(test_append_at_the_snapshot_point_is_accepted_after_restore),
        cmocka_unit_test(test_append_overlapping_the_snapshot_point_appends_what_follows_it),
        /* Starting from a snapshot point */
        cmocka_unit_test(test_config_with_a_snapshot_point_starts_the_log_after_it),
        cmocka_unit_test(test_config_with_an_applied_index_behind_the_snapshot_point_is_refused),
        cmocka_unit_test(test_nodes_restarted_from_a_snapshot_point_elect_and_replicate),
        /* End to end */
        cmocka_unit_test(
            test_follower_partitioned_while_the_leader_compacts_catches_up_by_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
