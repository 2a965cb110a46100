/*
 * test_raft_cluster.c — multi-node behaviour of core/raft over the in-memory cluster of
 * tests/support/raft_net: Figures 7 and 8 of the Raft paper, elections (split votes, PreVote,
 * CheckQuorum, leader stickiness), ReadIndex, leadership transfer, fast log back-up, batching
 * and pipelining, crashes, and a randomized safety test.
 *
 * The harness checks the ready contract, Election Safety and State Machine Safety at every step;
 * each test asserts on top of that the behaviour it is named after. Nothing is random except the
 * randomized test, which draws everything from an rk_prng seeded by its seed.
 *
 * A struct rn_net holds the applied terms of every node (megabytes): it lives on the heap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/prng.h"
#include "raft_net.h"

#define ELECTION_TICKS_MIN 10 /* raft_config_default */
#define ELECTION_TICKS_MAX 20

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

static struct rn_net *cluster_new(uint32_t n, void (*tweak)(struct raft_config *c))
{
    struct rn_net *net = calloc(1, sizeof(*net));
    assert_non_null(net);
    rn_init(net, n, tweak);
    return net;
}

static void cluster_free(struct rn_net *net)
{
    rn_destroy(net);
    free(net);
}

static struct raft_status status_of(struct rn_net *net, uint64_t id)
{
    struct raft_status st;
    assert_false(rn_node(net, id)->down);
    raft_status(rn_raft(net, id), &st);
    return st;
}

static struct raft_counters counters_of(struct rn_net *net, uint64_t id)
{
    struct raft_counters c;
    raft_counters(rn_raft(net, id), &c);
    return c;
}

/* Progress of follower id as the leader sees it (voters are 1..n, at positions 0..n-1). */
static struct raft_progress_status progress_of(struct rn_net *net, uint64_t leader, uint64_t id)
{
    struct raft_progress_status ps;
    assert_true(raft_progress(rn_raft(net, leader), (uint32_t)(id - 1), &ps));
    return ps;
}

static uint32_t count_leaders(struct rn_net *net)
{
    uint32_t n = 0;
    for (uint64_t id = 1; id <= net->n; id++) {
        if (!rn_node(net, id)->down && status_of(net, id).role == RAFT_LEADER)
            n++;
    }
    return n;
}

static void tweak_no_pre_vote(struct raft_config *c)
{
    c->pre_vote = false;
}

static void tweak_no_check_quorum(struct raft_config *c)
{
    c->check_quorum = false;
}

/* Loads node id with a log whose entry i + 1 has term terms[i]. An entry's data names its index
 * and term, so that two nodes hold the same data exactly when they hold the same entry. */
static void load_log(struct rn_net *net, uint64_t id, uint64_t term, uint64_t commit,
                     const uint64_t *terms, size_t n)
{
    struct raft_entry *es = calloc(n > 0 ? n : 1, sizeof(*es));
    char(*bufs)[32] = calloc(n > 0 ? n : 1, sizeof(*bufs));
    assert_non_null(es);
    assert_non_null(bufs);
    for (size_t i = 0; i < n; i++) {
        int len =
            snprintf(bufs[i], sizeof(bufs[i]), "i%zut%llu", i + 1, (unsigned long long)terms[i]);
        es[i].term = terms[i];
        es[i].index = i + 1;
        es[i].type = RAFT_ENTRY_NORMAL;
        es[i].len = (uint32_t)len;
        es[i].data = (uint8_t *)bufs[i];
    }
    struct raft_hard_state hs = {.term = term, .vote = RAFT_NONE, .commit = commit};
    rn_load(net, id, &hs, es, n);
    free(bufs);
    free(es);
}

/* Node b holds exactly node a's log, in memory and on its disk. */
static void assert_same_log(struct rn_net *net, uint64_t a, uint64_t b)
{
    struct raft_status sa = status_of(net, a), sb = status_of(net, b);
    assert_int_equal(sa.last_index, sb.last_index);
    for (uint64_t i = 1; i <= sa.last_index; i++) {
        const struct raft_entry *ea = raft_entry_at(rn_raft(net, a), i);
        const struct raft_entry *eb = raft_entry_at(rn_raft(net, b), i);
        assert_non_null(ea);
        assert_non_null(eb);
        assert_int_equal(ea->term, eb->term);
        assert_int_equal(ea->type, eb->type);
        assert_int_equal(ea->len, eb->len);
        if (ea->len > 0)
            assert_memory_equal(ea->data, eb->data, ea->len);
    }
    const struct rn_node *na = rn_node(net, a), *nb = rn_node(net, b);
    assert_int_equal(na->n_log, sa.last_index);
    assert_int_equal(nb->n_log, sb.last_index);
    for (size_t i = 0; i < na->n_log; i++)
        assert_int_equal(na->log[i].term, nb->log[i].term);
}

/* A predicate over queued messages: true holds the message back. */
typedef bool (*hold_fn)(struct rn_net *net, const struct raft_msg *m, const void *ctx);

/* Delivers, first in first out, every message that hold does not hold back, including those
 * sent in reaction, until only held messages remain queued. */
static void deliver_unless(struct rn_net *net, hold_fn hold, const void *ctx)
{
    for (uint32_t guard = 0;; guard++) {
        assert_true(guard < 1000000);
        size_t i = 0;
        while (i < net->n_queue && hold(net, &net->queue[i].m, ctx))
            i++;
        if (i == net->n_queue)
            return;
        rn_deliver_at(net, i);
    }
}

static bool hold_all_but_type(struct rn_net *net, const struct raft_msg *m, const void *ctx)
{
    (void)net;
    return m->type != *(const uint8_t *)ctx;
}

/* Delivers the queued messages of one type (and later ones of that type), nothing else. */
static void deliver_type(struct rn_net *net, uint8_t type)
{
    deliver_unless(net, hold_all_but_type, &type);
}

static bool hold_appends_from(struct rn_net *net, const struct raft_msg *m, const void *ctx)
{
    (void)net;
    return m->type == RAFT_MSG_APPEND && m->from == *(const uint64_t *)ctx;
}

static bool hold_append_resps(struct rn_net *net, const struct raft_msg *m, const void *ctx)
{
    (void)net;
    (void)ctx;
    return m->type == RAFT_MSG_APPEND_RESP;
}

/* The wire: drop rules and statistics of what was delivered, through rn_net's filter. */
struct wire_drop {
    uint64_t from; /* 0: any */
    uint64_t to;   /* 0: any */
    uint8_t type;  /* 0: any */
};

struct wire {
    struct wire_drop drops[16];
    size_t n_drops;
    uint64_t delivered[RAFT_MAX_VOTERS + 1][RAFT_MSG_TYPE_COUNT]; /* by receiver and type */
    uint64_t rejects_from[RAFT_MAX_VOTERS + 1]; /* APPEND_RESP rejections, by sender */
    /* Types of the messages from trace_from to trace_to, in delivery order. */
    uint64_t trace_from;
    uint64_t trace_to;
    uint8_t trace[4096];
    size_t n_trace;
    /* The receiver's last index when the last TIMEOUT_NOW reached it. */
    uint64_t last_index_at_timeout_now;
};

static bool wire_filter(struct rn_net *net, const struct raft_msg *m)
{
    struct wire *w = net->filter_ctx;
    for (size_t i = 0; i < w->n_drops; i++) {
        const struct wire_drop *d = &w->drops[i];
        if ((d->from == 0 || d->from == m->from) && (d->to == 0 || d->to == m->to) &&
            (d->type == 0 || d->type == m->type))
            return false;
    }
    w->delivered[m->to][m->type]++;
    if (m->type == RAFT_MSG_APPEND_RESP && m->reject)
        w->rejects_from[m->from]++;
    if (m->from == w->trace_from && m->to == w->trace_to) {
        assert_true(w->n_trace < sizeof(w->trace));
        w->trace[w->n_trace++] = m->type;
    }
    if (m->type == RAFT_MSG_TIMEOUT_NOW)
        w->last_index_at_timeout_now = status_of(net, m->to).last_index;
    return true;
}

static void wire_attach(struct rn_net *net, struct wire *w)
{
    memset(w, 0, sizeof(*w));
    net->filter = wire_filter;
    net->filter_ctx = w;
}

static void wire_drop(struct wire *w, uint64_t from, uint64_t to, uint8_t type)
{
    assert_true(w->n_drops < sizeof(w->drops) / sizeof(w->drops[0]));
    w->drops[w->n_drops++] = (struct wire_drop){.from = from, .to = to, .type = type};
}

/* Ticks (and delivers) until cond holds, at most max_ticks times; returns the ticks used. */
static uint32_t run_until(struct rn_net *net, bool (*cond)(struct rn_net *net, uint64_t arg),
                          uint64_t arg, uint32_t max_ticks)
{
    uint32_t t = 0;
    while (!cond(net, arg) && t < max_ticks) {
        rn_run(net, 1);
        t++;
    }
    return t;
}

static bool one_leader(struct rn_net *net, uint64_t arg)
{
    (void)arg;
    return count_leaders(net) == 1;
}

/* Every up node holds and applied the log of leader: committed and applied everywhere. */
static bool caught_up(struct rn_net *net, uint64_t leader)
{
    struct raft_status sl = status_of(net, leader);
    for (uint64_t id = 1; id <= net->n; id++) {
        if (rn_node(net, id)->down)
            continue;
        struct raft_status s = status_of(net, id);
        if (s.last_index != sl.last_index || s.commit != sl.last_index ||
            rn_node(net, id)->applied != sl.last_index)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Figure 7                                                                                   */

/* Figure 7 of the Raft paper: the terms of each log, index 1 first. */
static const uint64_t fig7_leader[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
static const uint64_t fig7_a[] = {1, 1, 1, 4, 4, 5, 5, 6, 6};
static const uint64_t fig7_b[] = {1, 1, 1, 4};
static const uint64_t fig7_c[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6};
static const uint64_t fig7_d[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7};
static const uint64_t fig7_e[] = {1, 1, 1, 4, 4, 4, 4};
static const uint64_t fig7_f[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};

static void test_figure7_new_leader_makes_every_follower_log_match_its_own(void **state)
{
    (void)state;
    static const struct {
        const uint64_t *terms;
        size_t n;
        uint64_t max_rejects; /* §5.3: one rejected AppendEntries per conflicting term */
    } followers[] = {
        {fig7_a, 9, 1},  /* (a) misses index 10 */
        {fig7_b, 4, 1},  /* (b) misses 5..10 */
        {fig7_c, 11, 0}, /* (c) has an extra term-6 entry */
        {fig7_d, 12, 0}, /* (d) has two extra term-7 entries */
        {fig7_e, 7, 2},  /* (e) misses 8..10, conflicting term 4 at 6..7 */
        {fig7_f, 11, 2}, /* (f) conflicting terms 2 and 3 at 4..11 */
    };
    struct rn_net *net = cluster_new(7, NULL);
    /* The leader of term 8 is node 1, (a)–(f) are nodes 2–7; every node is in term 7. */
    load_log(net, 1, 7, 0, fig7_leader, 10);
    for (size_t k = 0; k < 6; k++)
        load_log(net, k + 2, 7, 0, followers[k].terms, followers[k].n);
    rn_process_all(net);
    struct wire w;
    wire_attach(net, &w);

    /* (c) and (d) have more up-to-date logs and refuse; the other four elect node 1. */
    rn_elect(net, 1);
    struct raft_status sl = status_of(net, 1);
    assert_int_equal(sl.term, 8);
    assert_int_equal(sl.last_index, 11); /* Figure 7's log plus the leader's no-op */
    assert_int_equal(sl.commit, 11);
    rn_run(net, 1); /* followers learn the commit index from the next heartbeat */
    uint64_t rejects = 0;
    for (uint64_t id = 2; id <= 7; id++) {
        assert_same_log(net, 1, id); /* extra entries removed, missing ones filled */
        assert_int_equal(rn_node(net, id)->applied, 11);
        assert_true(w.rejects_from[id] <= followers[id - 2].max_rejects);
        /* The probes, the APPEND that matched, and the one carrying the commit index. */
        assert_true(w.delivered[id][RAFT_MSG_APPEND] <= followers[id - 2].max_rejects + 2);
        rejects += w.rejects_from[id];
    }
    /* One entry at a time, (a)..(f) would have needed 1 + 6 + 0 + 0 + 5 + 7 = 19. */
    assert_int_equal(counters_of(net, 1).appends_rejected, rejects);
    assert_true(rejects <= 6);
    rn_check_consistency(net);
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Figure 8                                                                                   */

static void tweak_figure8(struct raft_config *c)
{
    /* Figure 8 is about basic Raft: elections without PreVote or leases. One entry per APPEND
     * lets index 2 travel without index 3. */
    c->pre_vote = false;
    c->check_quorum = false;
    c->max_append_entries = 1;
}

/* Holds back any APPEND that would give its receiver the entry at index 3 (term 4). */
static bool hold_figure8_index3(struct rn_net *net, const struct raft_msg *m, const void *ctx)
{
    (void)ctx;
    if (m->type != RAFT_MSG_APPEND || m->n_entries == 0 || m->entries[m->n_entries - 1].index < 3 ||
        rn_node(net, m->to)->down)
        return false;
    return raft_term_at(rn_raft(net, m->to), m->log_index) == m->log_term;
}

/* Plays Figure 8 (a)–(c) on S1..S5 = nodes 1..5 and returns in (c): S1 leads term 4; index 2
 * (term 2) is on S1–S4 and the leader knows it of S1, S3 and S4; its own entry at index 3
 * (term 4) is held back. (S4 gets index 2 too: a new leader's first probe to S2 carries the
 * term-4 entry, so only S3 and S4 can show the leader a majority at index 2.) */
static struct rn_net *figure8_play_a_to_c(struct wire *w)
{
    static const uint64_t one[] = {1};
    struct rn_net *net = cluster_new(5, tweak_figure8);
    for (uint64_t id = 1; id <= 5; id++)
        load_log(net, id, 1, 1, one, 1);
    rn_process_all(net);
    wire_attach(net, w);

    /* (a) S1 is leader of term 2 and replicates its entry at index 2 to S2 only. */
    for (uint64_t to = 3; to <= 5; to++)
        wire_drop(w, 1, to, RAFT_MSG_APPEND);
    rn_elect(net, 1);
    assert_int_equal(status_of(net, 1).term, 2);
    for (uint64_t id = 1; id <= 5; id++)
        assert_int_equal(status_of(net, id).last_term, id <= 2 ? 2 : 1);
    assert_int_equal(status_of(net, 1).commit, 1);

    /* (b) S1 crashes; S5 is elected for term 3 by S3, S4 and itself and accepts a different
     * entry at index 2. */
    rn_crash(net, 1);
    w->n_drops = 0;
    wire_drop(w, 5, 0, RAFT_MSG_APPEND);
    rn_elect(net, 5);
    struct raft_status s5 = status_of(net, 5);
    assert_int_equal(s5.term, 3);
    assert_int_equal(s5.last_index, 2);
    assert_int_equal(s5.last_term, 3);

    /* (c) S5 crashes; S1 restarts, is elected (term 3 fails: S3 and S4 voted for S5) in term 4
     * and replicates index 2 before its own term-4 entry reaches anyone. */
    rn_crash(net, 5);
    w->n_drops = 0;
    rn_restart(net, 1);
    rn_process(net, 1);
    rn_campaign(net, 1);
    assert_int_equal(status_of(net, 1).role, RAFT_CANDIDATE);
    raft_campaign(rn_raft(net, 1));
    rn_process(net, 1);
    deliver_unless(net, hold_figure8_index3, NULL);
    struct raft_status s1 = status_of(net, 1);
    assert_int_equal(s1.role, RAFT_LEADER);
    assert_int_equal(s1.term, 4);
    assert_int_equal(s1.last_index, 3);
    for (uint64_t id = 1; id <= 4; id++)
        assert_int_equal(raft_term_at(rn_raft(net, id), 2), 2);
    assert_int_equal(progress_of(net, 1, 3).match, 2);
    assert_int_equal(progress_of(net, 1, 4).match, 2);
    return net;
}

static void test_figure8_old_term_entry_on_a_majority_is_not_committed_by_counting(void **state)
{
    (void)state;
    struct wire w;
    struct rn_net *net = figure8_play_a_to_c(&w);
    /* §5.4.2: "Raft never commits log entries from previous terms by counting replicas". The
     * leader knows a majority (S1, S3, S4) holds index 2, and still does not commit it, not even
     * after rounds of heartbeats. */
    for (int t = 0; t < 5; t++) {
        assert_int_equal(status_of(net, 1).commit, 1);
        rn_tick(net, 1);
        deliver_unless(net, hold_figure8_index3, NULL);
    }
    for (uint64_t id = 1; id <= 4; id++) {
        assert_int_equal(status_of(net, id).commit, 1);
        assert_int_equal(rn_node(net, id)->applied, 1);
    }
    /* Once an entry of the current term reaches a majority, it commits and index 2 with it. */
    rn_deliver_all(net);
    assert_int_equal(status_of(net, 1).commit, 3);
    rn_run(net, 1);
    for (uint64_t id = 1; id <= 4; id++) {
        assert_int_equal(rn_node(net, id)->applied, 3);
        assert_int_equal(rn_node(net, id)->applied_term[2], 2);
        assert_int_equal(rn_node(net, id)->applied_term[3], 4);
    }
    cluster_free(net);
}

static void test_figure8_uncommitted_old_term_entry_can_be_overwritten(void **state)
{
    (void)state;
    struct wire w;
    struct rn_net *net = figure8_play_a_to_c(&w);
    /* (d) S1 crashes before its term-4 entry leaves; S5 restarts and, its last term (3) being
     * above that of S2–S4 (2), wins term 5 (term 4 fails: they voted for S1) and overwrites
     * index 2 on them. That is legal only because index 2 was never committed. */
    rn_drop_all(net);
    rn_crash(net, 1);
    rn_restart(net, 5);
    rn_process(net, 5);
    rn_campaign(net, 5);
    assert_int_not_equal(status_of(net, 5).role, RAFT_LEADER);
    rn_elect(net, 5);
    assert_int_equal(status_of(net, 5).term, 5);
    rn_run(net, 1);
    for (uint64_t id = 2; id <= 5; id++) {
        assert_int_equal(raft_term_at(rn_raft(net, id), 2), 3);
        assert_int_equal(rn_node(net, id)->applied, 3);
        assert_int_equal(rn_node(net, id)->applied_term[2], 3);
    }
    rn_restart(net, 1);
    rn_run(net, 3 * ELECTION_TICKS_MAX);
    assert_int_equal(raft_term_at(rn_raft(net, 1), 2), 3);
    rn_check_consistency(net);
    cluster_free(net);
}

static void test_figure8_committed_entry_cannot_be_overwritten(void **state)
{
    (void)state;
    struct wire w;
    struct rn_net *net = figure8_play_a_to_c(&w);
    /* (e) S1 replicates its term-4 entry to a majority before crashing: index 3 commits, and
     * index 2 with it. */
    rn_deliver_all(net);
    assert_int_equal(status_of(net, 1).commit, 3);
    rn_crash(net, 1);
    /* S5 restarts and can no longer win: S2–S4 hold a term-4 entry, its last term is 3. */
    rn_restart(net, 5);
    rn_process(net, 5);
    for (int k = 0; k < 4; k++) {
        rn_campaign(net, 5);
        assert_int_not_equal(status_of(net, 5).role, RAFT_LEADER);
    }
    rn_elect(net, 2);
    rn_run(net, 2);
    for (uint64_t id = 2; id <= 5; id++) {
        assert_int_equal(raft_term_at(rn_raft(net, id), 2), 2);
        assert_int_equal(rn_node(net, id)->applied_term[2], 2);
        assert_int_equal(rn_node(net, id)->applied_term[3], 4);
    }
    rn_check_consistency(net);
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Elections                                                                                  */

/* All nodes campaign at once; FIFO delivery makes every node vote for itself. */
static void split_vote_converges(uint32_t n, void (*tweak)(struct raft_config *c))
{
    struct rn_net *net = cluster_new(n, tweak);
    for (uint64_t id = 1; id <= n; id++)
        raft_campaign(rn_raft(net, id));
    rn_process_all(net);
    rn_deliver_all(net);
    for (uint64_t id = 1; id <= n; id++) {
        struct raft_status st = status_of(net, id);
        assert_int_not_equal(st.role, RAFT_LEADER);
        assert_int_equal(st.term, 1);
        assert_int_equal(st.vote, id); /* the split: everyone voted for itself */
    }
    /* Randomized timeouts (§5.2) break the tie. */
    uint32_t ticks = run_until(net, one_leader, 0, 10 * ELECTION_TICKS_MAX);
    assert_true(ticks < 10 * ELECTION_TICKS_MAX);
    rn_run(net, 5 * ELECTION_TICKS_MAX);
    assert_int_equal(count_leaders(net), 1);
    uint64_t leader = rn_leader(net);
    struct raft_status sl = status_of(net, leader);
    for (uint64_t id = 1; id <= n; id++) {
        struct raft_status st = status_of(net, id);
        assert_int_equal(st.term, sl.term);
        assert_int_equal(st.leader, leader);
    }
    cluster_free(net);
}

static void test_split_votes_converge_to_one_leader_with_pre_vote(void **state)
{
    (void)state;
    split_vote_converges(4, NULL);
    split_vote_converges(5, NULL);
}

static void test_split_votes_converge_to_one_leader_without_pre_vote(void **state)
{
    (void)state;
    split_vote_converges(4, tweak_no_pre_vote);
    split_vote_converges(5, tweak_no_pre_vote);
}

/* Isolates follower 3 of a three-node cluster led by 1 for at least five election timeouts;
 * returns the term the cluster had before. */
static uint64_t isolate_follower_for_a_while(struct rn_net *net)
{
    rn_elect(net, 1);
    assert_int_equal(rn_propose(net, 1, "a"), RK_OK);
    rn_run(net, 2);
    uint64_t term0 = status_of(net, 1).term;
    uint64_t elections0 = counters_of(net, 3).elections;
    rn_isolate(net, 3);
    rn_run(net, 5 * ELECTION_TICKS_MAX);
    assert_true(counters_of(net, 3).elections >= elections0 + 4); /* it did time out */
    return term0;
}

static void test_pre_vote_keeps_an_isolated_follower_from_raising_its_term(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3, NULL);
    uint64_t term0 = isolate_follower_for_a_while(net);
    /* Thesis §9.6: it never won a pre-vote, so it never incremented its term. */
    struct raft_status s3 = status_of(net, 3);
    assert_int_equal(s3.term, term0);
    assert_int_not_equal(s3.role, RAFT_CANDIDATE);
    rn_heal(net);
    rn_run(net, 5);
    assert_int_equal(rn_leader(net), 1);
    assert_int_equal(status_of(net, 1).term, term0);
    assert_int_equal(status_of(net, 3).leader, 1);
    assert_int_equal(rn_propose(net, 1, "b"), RK_OK);
    rn_run(net, 2);
    assert_true(caught_up(net, 1));
    cluster_free(net);
}

static bool leader_after_term(struct rn_net *net, uint64_t term)
{
    uint64_t leader = rn_leader(net);
    return leader != 0 && status_of(net, leader).term > term;
}

static void test_without_pre_vote_an_isolated_follower_raises_its_term_and_disrupts(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3, tweak_no_pre_vote);
    uint64_t term0 = isolate_follower_for_a_while(net);
    assert_true(status_of(net, 3).term >= term0 + 4);
    /* Back, its higher term deposes the healthy leader (its answer to a heartbeat carries it). */
    rn_heal(net);
    uint32_t ticks = run_until(net, leader_after_term, term0, 10 * ELECTION_TICKS_MAX);
    assert_true(ticks < 10 * ELECTION_TICKS_MAX);
    assert_int_equal(count_leaders(net), 1);
    cluster_free(net);
}

static bool not_leader(struct rn_net *net, uint64_t id)
{
    return status_of(net, id).role != RAFT_LEADER;
}

static bool leader_among_others(struct rn_net *net, uint64_t excluded)
{
    for (uint64_t id = 1; id <= net->n; id++) {
        if (id != excluded && status_of(net, id).role == RAFT_LEADER)
            return true;
    }
    return false;
}

static void test_check_quorum_isolated_leader_steps_down(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3, NULL);
    rn_elect(net, 1);
    uint64_t term0 = status_of(net, 1).term;
    rn_isolate(net, 1);
    /* Thesis §6.2. The check runs every election_ticks_min; the round in progress when the
     * partition began may still count the followers as active: at most two rounds. */
    uint32_t ticks = run_until(net, not_leader, 1, 10 * ELECTION_TICKS_MAX);
    assert_true(ticks <= 2 * ELECTION_TICKS_MIN);
    struct raft_status s1 = status_of(net, 1);
    assert_int_equal(s1.role, RAFT_FOLLOWER);
    assert_int_equal(s1.leader, RAFT_NONE);
    assert_int_equal(rn_propose(net, 1, "x"), RK_ENOTLEADER);
    /* The majority side elects a new leader. */
    ticks = run_until(net, leader_among_others, 1, 10 * ELECTION_TICKS_MAX);
    assert_true(ticks < 10 * ELECTION_TICKS_MAX);
    assert_true(status_of(net, rn_leader(net)).term > term0);
    cluster_free(net);
}

static void test_without_check_quorum_isolated_leader_stays_leader(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3, tweak_no_check_quorum);
    rn_elect(net, 1);
    uint64_t term0 = status_of(net, 1).term;
    rn_isolate(net, 1);
    rn_run(net, 10 * ELECTION_TICKS_MAX);
    struct raft_status s1 = status_of(net, 1);
    assert_int_equal(s1.role, RAFT_LEADER);
    assert_int_equal(s1.term, term0);
    /* Meanwhile the others elected another leader: node 1 misleads its clients. */
    assert_true(leader_among_others(net, 1));
    cluster_free(net);
}

/* Node 3 stops hearing the leader (only the link 1 -> 3 is cut) while 1 and 2 talk; returns
 * the term before. Node 3 times out again and again. */
static uint64_t cut_leader_to_node3(struct rn_net *net)
{
    rn_elect(net, 1);
    rn_run(net, 2);
    uint64_t term0 = status_of(net, 1).term;
    net->cut[1][3] = true;
    rn_run(net, 5 * ELECTION_TICKS_MAX);
    return term0;
}

static void assert_leader_undisturbed(struct rn_net *net, uint64_t term0)
{
    struct raft_status s1 = status_of(net, 1), s2 = status_of(net, 2);
    assert_int_equal(s1.role, RAFT_LEADER);
    assert_int_equal(s1.term, term0);
    assert_int_equal(s2.term, term0);
    assert_int_equal(s2.leader, 1);
    assert_int_equal(s2.vote, 1);
}

static void test_leader_stickiness_ignores_vote_requests_in_lease(void **state)
{
    (void)state;
    /* Without PreVote node 3 asks for real votes in ever higher terms. */
    struct rn_net *net = cluster_new(3, tweak_no_pre_vote);
    uint64_t term0 = cut_leader_to_node3(net);
    assert_true(status_of(net, 3).term >= term0 + 4); /* it timed out again and again */
    assert_leader_undisturbed(net, term0); /* thesis §4.2.3: ignored, term not even adopted */
    cluster_free(net);
}

static void test_leader_stickiness_ignores_pre_vote_requests_in_lease(void **state)
{
    (void)state;
    /* Node 3's log is as up to date as anyone's: without the lease node 2 would grant its
     * pre-vote. */
    struct rn_net *net = cluster_new(3, NULL);
    uint64_t term0 = cut_leader_to_node3(net);
    assert_true(counters_of(net, 3).elections >= 4); /* it timed out again and again */
    assert_int_equal(status_of(net, 3).term, term0);
    assert_leader_undisturbed(net, term0);
    cluster_free(net);
}

static void test_without_check_quorum_a_node_that_misses_heartbeats_disrupts(void **state)
{
    (void)state;
    /* The contrast: PreVote alone does not stop it, its log being up to date. */
    struct rn_net *net = cluster_new(3, tweak_no_check_quorum);
    uint64_t term0 = cut_leader_to_node3(net);
    uint64_t term = 0;
    for (uint64_t id = 1; id <= 3; id++) {
        uint64_t t = status_of(net, id).term;
        term = t > term ? t : term;
    }
    assert_true(term > term0);
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* ReadIndex (thesis §6.4)                                                                    */

static struct rn_net *three_nodes_with_commits(void (*tweak)(struct raft_config *c))
{
    struct rn_net *net = cluster_new(3, tweak);
    rn_elect(net, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rn_propose(net, 1, "w"), RK_OK);
    rn_deliver_all(net);
    rn_run(net, 1);
    assert_true(caught_up(net, 1));
    return net;
}

static void test_read_index_on_leader_waits_for_a_heartbeat_quorum(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    uint64_t commit = status_of(net, 1).commit;
    assert_int_equal(raft_read_index(rn_raft(net, 1), 42), RK_OK);
    rn_process(net, 1);
    assert_int_equal(rn_count(net, RAFT_MSG_HEARTBEAT, 1), 2);
    assert_int_equal(rn_node(net, 1)->n_reads, 0);
    deliver_type(net, RAFT_MSG_HEARTBEAT);
    assert_int_equal(rn_count(net, RAFT_MSG_HEARTBEAT_RESP, 0), 2);
    assert_int_equal(rn_node(net, 1)->n_reads, 0); /* no acknowledgment has arrived yet */
    rn_deliver_at(net, 0); /* one acknowledgment: with the leader, a majority of three */
    assert_int_equal(rn_node(net, 1)->n_reads, 1);
    assert_int_equal(rn_node(net, 1)->reads[0].ctx, 42);
    assert_int_equal(rn_node(net, 1)->reads[0].index, commit);
    rn_deliver_all(net);
    assert_int_equal(rn_node(net, 1)->n_reads, 1);
    cluster_free(net);
}

static void test_read_index_batch_shares_one_heartbeat_round(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    uint64_t commit = status_of(net, 1).commit;
    for (uint64_t ctx = 1; ctx <= 5; ctx++)
        assert_int_equal(raft_read_index(rn_raft(net, 1), ctx), RK_OK);
    rn_process(net, 1);
    assert_int_equal(rn_count(net, RAFT_MSG_HEARTBEAT, 1), 2); /* one per follower */
    uint64_t heartbeats0 = net->delivered[RAFT_MSG_HEARTBEAT];
    rn_deliver_all(net);
    assert_int_equal(net->delivered[RAFT_MSG_HEARTBEAT] - heartbeats0, 2);
    const struct rn_node *n1 = rn_node(net, 1);
    assert_int_equal(n1->n_reads, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(n1->reads[i].ctx, i + 1); /* in order */
        assert_int_equal(n1->reads[i].index, commit);
    }
    cluster_free(net);
}

static bool hold_all_but_round1_acks(struct rn_net *net, const struct raft_msg *m, const void *ctx)
{
    (void)net;
    return m->type != RAFT_MSG_HEARTBEAT_RESP || m->ctx != *(const uint64_t *)ctx;
}

static void test_read_index_is_confirmed_only_by_a_round_sent_after_it(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    assert_int_equal(raft_read_index(rn_raft(net, 1), 1), RK_OK);
    rn_process(net, 1);
    uint64_t round1 = net->queue[0].m.ctx;
    deliver_type(net, RAFT_MSG_HEARTBEAT); /* round 1 is out; its answers are on the way */
    /* A read asked now may follow a new leader's election that round 1 predates: round 1
     * cannot vouch for it. */
    assert_int_equal(raft_read_index(rn_raft(net, 1), 2), RK_OK);
    rn_process(net, 1);
    /* One round at a time: round 2 waits until round 1 has its majority. */
    assert_int_equal(rn_count(net, RAFT_MSG_HEARTBEAT, 1), 0);
    deliver_unless(net, hold_all_but_round1_acks, &round1);
    assert_int_equal(rn_node(net, 1)->n_reads, 1);
    assert_int_equal(rn_node(net, 1)->reads[0].ctx, 1);
    /* Round 1 confirmed: round 2 left at once, and only its answers confirm read 2. */
    assert_int_equal(rn_count(net, RAFT_MSG_HEARTBEAT, 1), 2);
    for (size_t i = 0; i < net->n_queue; i++)
        if (net->queue[i].m.type == RAFT_MSG_HEARTBEAT)
            assert_true(net->queue[i].m.ctx > round1);
    rn_deliver_all(net);
    assert_int_equal(rn_node(net, 1)->n_reads, 2);
    assert_int_equal(rn_node(net, 1)->reads[1].ctx, 2);
    cluster_free(net);
}

static void test_read_index_on_follower_goes_through_the_leader(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    uint64_t commit = status_of(net, 1).commit;
    assert_int_equal(raft_read_index(rn_raft(net, 2), 7), RK_OK);
    rn_process(net, 2);
    assert_int_equal(rn_count(net, RAFT_MSG_READ_INDEX, 2), 1);
    assert_int_equal(net->queue[0].m.to, 1);
    rn_deliver_all(net);
    assert_int_equal(net->delivered[RAFT_MSG_READ_INDEX_RESP], 1);
    assert_int_equal(rn_node(net, 2)->n_reads, 1);
    assert_int_equal(rn_node(net, 2)->reads[0].ctx, 7);
    assert_int_equal(rn_node(net, 2)->reads[0].index, commit);
    assert_int_equal(rn_node(net, 1)->n_reads, 0); /* the leader answered, it did not read */
    assert_int_equal(rn_node(net, 3)->n_reads, 0);
    cluster_free(net);
}

static void test_read_index_new_leader_holds_reads_until_its_noop_commits(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    /* Node 2 becomes leader of a new term; its no-op is held back. */
    uint64_t from = 2;
    assert_int_equal(raft_transfer_leader(rn_raft(net, 1), 2), RK_OK);
    rn_process(net, 1);
    deliver_unless(net, hold_appends_from, &from);
    struct raft_status s2 = status_of(net, 2);
    assert_int_equal(s2.role, RAFT_LEADER);
    uint64_t noop = s2.last_index;
    assert_true(s2.commit < noop);
    assert_int_equal(raft_read_index(rn_raft(net, 2), 9), RK_OK);
    rn_process(net, 2);
    /* Heartbeats flow and are answered; the read waits: the commit index of a new leader may be
     * behind that of the old one until an entry of its term commits (§6.4, §8). */
    uint64_t acks0 = net->delivered[RAFT_MSG_HEARTBEAT_RESP];
    for (int t = 0; t < 3; t++) {
        rn_tick(net, 2);
        deliver_unless(net, hold_appends_from, &from);
        assert_int_equal(rn_node(net, 2)->n_reads, 0);
    }
    assert_true(net->delivered[RAFT_MSG_HEARTBEAT_RESP] > acks0);
    rn_deliver_all(net);
    s2 = status_of(net, 2);
    assert_true(s2.commit >= noop);
    assert_int_equal(rn_node(net, 2)->n_reads, 1);
    assert_int_equal(rn_node(net, 2)->reads[0].ctx, 9);
    assert_true(rn_node(net, 2)->reads[0].index >= noop);
    assert_true(rn_node(net, 2)->reads[0].index <= s2.commit);
    cluster_free(net);
}

static void test_read_index_leader_cut_off_from_majority_never_answers(void **state)
{
    (void)state;
    /* Without CheckQuorum the old leader keeps trying: still leader, still no answer. */
    struct rn_net *net = cluster_new(5, tweak_no_check_quorum);
    rn_elect(net, 1);
    rn_run(net, 2);
    uint64_t term0 = status_of(net, 1).term;
    for (uint64_t a = 1; a <= 2; a++) {
        for (uint64_t b = 3; b <= 5; b++)
            rn_cut(net, a, b);
    }
    assert_int_equal(raft_read_index(rn_raft(net, 1), 5), RK_OK);
    rn_process(net, 1);
    uint64_t acks0 = net->delivered[RAFT_MSG_HEARTBEAT_RESP];
    for (uint32_t t = 0; t < 10 * ELECTION_TICKS_MAX; t++) {
        rn_run(net, 1);
        assert_int_equal(rn_node(net, 1)->n_reads, 0);
    }
    assert_true(net->delivered[RAFT_MSG_HEARTBEAT_RESP] > acks0); /* node 2 kept answering */
    assert_int_equal(status_of(net, 1).role, RAFT_LEADER);
    /* The majority moved on: a read at node 1's commit index would now be stale. */
    uint64_t leader = rn_leader(net);
    assert_true(leader >= 3);
    assert_true(status_of(net, leader).term > term0);
    assert_int_equal(rn_propose(net, leader, "new"), RK_OK);
    rn_run(net, 2);
    assert_true(status_of(net, leader).commit > status_of(net, 1).commit);
    rn_heal(net);
    rn_run(net, 5);
    assert_int_equal(rn_node(net, 1)->n_reads, 0);
    assert_int_equal(status_of(net, 1).leader, leader);
    cluster_free(net);
}

static void test_read_index_without_known_leader_returns_enoleader(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3, NULL);
    assert_int_equal(raft_read_index(rn_raft(net, 1), 1), RK_ENOLEADER);
    rn_elect(net, 1);
    assert_int_equal(raft_read_index(rn_raft(net, 2), 1), RK_OK);
    rn_deliver_all(net);
    /* A leader that stepped down knows no leader either. */
    rn_isolate(net, 1);
    run_until(net, not_leader, 1, 10 * ELECTION_TICKS_MAX);
    assert_int_equal(raft_read_index(rn_raft(net, 1), 2), RK_ENOLEADER);
    assert_false(raft_has_ready(rn_raft(net, 1)));
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Leadership transfer (thesis §3.10)                                                         */

static void test_transfer_to_up_to_date_follower_completes_at_once(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    uint64_t term0 = status_of(net, 1).term;
    assert_int_equal(raft_transfer_leader(rn_raft(net, 1), 2), RK_OK);
    rn_process(net, 1);
    assert_int_equal(rn_count(net, RAFT_MSG_TIMEOUT_NOW, 1), 1);
    rn_deliver_all(net); /* no tick: one exchange of messages */
    struct raft_status s1 = status_of(net, 1), s2 = status_of(net, 2);
    assert_int_equal(s2.role, RAFT_LEADER);
    assert_int_equal(s2.term, term0 + 1);
    assert_int_equal(s1.role, RAFT_FOLLOWER);
    assert_int_equal(s1.leader, 2);
    rn_run(net, 1);
    assert_true(caught_up(net, 2));
    cluster_free(net);
}

static bool is_leader(struct rn_net *net, uint64_t id)
{
    return status_of(net, id).role == RAFT_LEADER;
}

static void test_transfer_to_lagging_follower_catches_it_up_first(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    uint64_t term0 = status_of(net, 1).term;
    rn_isolate(net, 3);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rn_propose(net, 1, "lag"), RK_OK);
        rn_deliver_all(net);
    }
    rn_run(net, 3);
    rn_heal(net);
    uint64_t last = status_of(net, 1).last_index;
    assert_true(status_of(net, 3).last_index < last);
    struct wire w;
    wire_attach(net, &w);
    w.trace_from = 1;
    w.trace_to = 3;
    assert_int_equal(raft_transfer_leader(rn_raft(net, 1), 3), RK_OK);
    rn_process(net, 1);
    rn_deliver_all(net);
    /* Heartbeats may be needed to find what node 3 lacks, not an election timeout. */
    uint32_t ticks = run_until(net, is_leader, 3, ELECTION_TICKS_MIN);
    assert_true(ticks < ELECTION_TICKS_MIN);
    assert_int_equal(status_of(net, 3).term, term0 + 1);
    assert_int_equal(status_of(net, 1).role, RAFT_FOLLOWER);
    /* APPENDs first, then TIMEOUT_NOW once node 3 held everything. */
    size_t first_append = w.n_trace, timeout_now = w.n_trace;
    for (size_t i = 0; i < w.n_trace; i++) {
        if (w.trace[i] == RAFT_MSG_APPEND && first_append == w.n_trace)
            first_append = i;
        if (w.trace[i] == RAFT_MSG_TIMEOUT_NOW) {
            assert_int_equal(timeout_now, w.n_trace); /* exactly one */
            timeout_now = i;
        }
    }
    assert_true(first_append < timeout_now);
    assert_true(timeout_now < w.n_trace);
    assert_int_equal(w.last_index_at_timeout_now, last);
    cluster_free(net);
}

static void test_proposals_during_transfer_return_ebusy(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    assert_int_equal(raft_transfer_leader(rn_raft(net, 1), 2), RK_OK);
    rn_process(net, 1);
    assert_int_equal(status_of(net, 1).transfer_target, 2);
    uint64_t leader = 0;
    assert_int_equal(raft_propose(rn_raft(net, 1), (const uint8_t *)"x", 1, NULL, &leader),
                     RK_EBUSY);
    assert_int_equal(leader, 1);
    rn_deliver_all(net);
    assert_int_equal(rn_propose(net, 1, "x"), RK_ENOTLEADER);
    assert_int_equal(rn_propose(net, 2, "x"), RK_OK);
    cluster_free(net);
}

static void test_transfer_to_unresponsive_node_times_out(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    uint64_t term0 = status_of(net, 1).term;
    rn_crash(net, 3);
    assert_int_equal(raft_transfer_leader(rn_raft(net, 1), 3), RK_OK);
    rn_process(net, 1);
    rn_deliver_all(net);
    for (uint32_t t = 1; t < ELECTION_TICKS_MIN; t++) {
        rn_run(net, 1);
        assert_int_equal(rn_propose(net, 1, "x"), RK_EBUSY);
    }
    rn_run(net, 1); /* one election timeout (thesis §3.10) */
    struct raft_status s1 = status_of(net, 1);
    assert_int_equal(s1.transfer_target, RAFT_NONE);
    assert_int_equal(s1.role, RAFT_LEADER);
    assert_int_equal(s1.term, term0);
    assert_int_equal(rn_propose(net, 1, "x"), RK_OK);
    rn_run(net, 1);
    assert_int_equal(rn_node(net, 2)->applied, status_of(net, 1).last_index);
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Fast log back-up (§5.3)                                                                    */

#define BACKUP_ENTRIES 10000

static void test_fast_backup_repairs_follower_10000_entries_behind(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3, NULL);
    rn_elect(net, 1);
    rn_isolate(net, 3);
    char data[16];
    for (int b = 0; b < BACKUP_ENTRIES / 100; b++) {
        for (int i = 0; i < 100; i++) {
            int len = snprintf(data, sizeof(data), "e%d", b * 100 + i);
            assert_int_equal(
                raft_propose(rn_raft(net, 1), (const uint8_t *)data, (uint32_t)len, NULL, NULL),
                RK_OK);
        }
        rn_process(net, 1);
        rn_deliver_all(net);
    }
    uint64_t last = status_of(net, 1).last_index;
    assert_true(last > BACKUP_ENTRIES);
    assert_true(status_of(net, 3).last_index + BACKUP_ENTRIES < last + 10);
    struct wire w;
    wire_attach(net, &w);
    uint64_t rejected0 = counters_of(net, 1).appends_rejected;
    rn_heal(net);
    uint32_t ticks = run_until(net, caught_up, 1, 3 * ELECTION_TICKS_MAX);
    assert_true(caught_up(net, 1));
    assert_true(ticks <= 3);
    assert_true(counters_of(net, 1).appends_rejected - rejected0 <= 5);
    /* Batches of max_append_entries (256), not one entry per round trip. */
    assert_true(w.delivered[3][RAFT_MSG_APPEND] < BACKUP_ENTRIES / 256 + 2 * 10);
    assert_same_log(net, 1, 3);
    cluster_free(net);
}

static void test_fast_backup_removes_10000_conflicting_entries_of_an_old_term(void **state)
{
    (void)state;
    /* Nodes 1 and 2: ten entries of term 1, ten of term 3. Node 3 led term 2 and wrote 10,000
     * entries nobody else has. */
    static uint64_t terms[10 + BACKUP_ENTRIES];
    for (size_t i = 0; i < 10 + BACKUP_ENTRIES; i++)
        terms[i] = i < 10 ? 1 : i < 20 ? 3 : 2;
    struct rn_net *net = cluster_new(3, NULL);
    load_log(net, 1, 3, 10, terms, 20);
    load_log(net, 2, 3, 10, terms, 20);
    for (size_t i = 10; i < 10 + BACKUP_ENTRIES; i++)
        terms[i] = 2;
    load_log(net, 3, 2, 10, terms, 10 + BACKUP_ENTRIES);
    rn_process_all(net);
    struct wire w;
    wire_attach(net, &w);
    rn_elect(net, 1);
    rn_run(net, 1);
    assert_true(caught_up(net, 1));
    assert_int_equal(status_of(net, 3).last_index, 21);
    assert_same_log(net, 1, 3);
    /* The rejection names term 2 and its first index: one round trip skips all of it. */
    assert_true(w.rejects_from[3] <= 2);
    assert_true(counters_of(net, 1).appends_rejected <= 5);
    assert_true(w.delivered[3][RAFT_MSG_APPEND] <= 5);
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Batching and pipelining                                                                    */

static void tweak_batching(struct raft_config *c)
{
    c->max_append_entries = 16;
    c->max_append_bytes = 1000;
    c->max_inflight = 64;
}

/* Proposes n entries of len bytes in one batch at node 1 and checks the APPENDs it queues. */
static void propose_batch_and_check_appends(struct rn_net *net, uint32_t n, uint32_t len,
                                            size_t appends_per_follower)
{
    uint8_t data[2048];
    assert_true(len <= sizeof(data));
    memset(data, 'd', len);
    assert_int_equal(net->n_queue, 0);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(raft_propose(rn_raft(net, 1), data, len, NULL, NULL), RK_OK);
    rn_process(net, 1);
    uint32_t total[RAFT_MAX_VOTERS + 1] = {0};
    for (size_t i = 0; i < net->n_queue; i++) {
        const struct raft_msg *m = &net->queue[i].m;
        if (m->type != RAFT_MSG_APPEND)
            continue;
        uint64_t bytes = 0;
        for (uint32_t k = 0; k < m->n_entries; k++)
            bytes += m->entries[k].len;
        assert_true(m->n_entries >= 1);
        assert_true(m->n_entries <= 16);
        assert_true(bytes <= 1000 || m->n_entries == 1); /* one entry always goes */
        total[m->to] += m->n_entries;
    }
    for (uint64_t id = 2; id <= net->n; id++) {
        assert_int_equal(total[id], n);
        size_t appends = 0;
        for (size_t i = 0; i < net->n_queue; i++)
            appends += net->queue[i].m.type == RAFT_MSG_APPEND && net->queue[i].m.to == id;
        assert_int_equal(appends, appends_per_follower);
    }
    rn_deliver_all(net);
    rn_run(net, 1);
    assert_true(caught_up(net, 1));
}

static void test_batched_proposals_go_out_as_few_bounded_appends(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3, tweak_batching);
    rn_elect(net, 1);
    propose_batch_and_check_appends(net, 100, 10, 7);   /* 16 entries a message: 7 */
    propose_batch_and_check_appends(net, 100, 100, 10); /* 1000 bytes a message: 10 */
    propose_batch_and_check_appends(net, 3, 1500, 3);   /* over the byte limit: one each */
    cluster_free(net);
}

static void tweak_window4(struct raft_config *c)
{
    c->max_inflight = 4;
}

static void test_pipelining_bounds_appends_in_flight_to_the_window(void **state)
{
    (void)state;
    struct rn_net *net = cluster_new(3, tweak_window4);
    rn_elect(net, 1);
    struct wire w;
    wire_attach(net, &w);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(rn_propose(net, 1, "p"), RK_OK);
        deliver_unless(net, hold_append_resps, NULL);
        for (uint64_t id = 2; id <= 3; id++) {
            struct raft_progress_status ps = progress_of(net, 1, id);
            assert_true(ps.replicating);
            assert_true(ps.inflight <= 4);
        }
    }
    for (uint64_t id = 2; id <= 3; id++) {
        assert_int_equal(progress_of(net, 1, id).inflight, 4);
        assert_int_equal(w.delivered[id][RAFT_MSG_APPEND], 4); /* the window, not ten */
    }
    rn_deliver_all(net);
    for (uint64_t id = 2; id <= 3; id++)
        assert_int_equal(progress_of(net, 1, id).inflight, 0);
    rn_run(net, 1);
    assert_true(caught_up(net, 1));
    cluster_free(net);
}

/* Proposes `batches` batches at 1 whose APPENDs are all lost, then expects heartbeats alone to
 * repair replication within a few ticks. */
static void lose_appends_then_recover(uint32_t batches)
{
    struct rn_net *net = cluster_new(3, tweak_window4);
    rn_elect(net, 1);
    for (uint32_t k = 0; k < batches; k++) {
        assert_int_equal(rn_propose(net, 1, "lost"), RK_OK);
        rn_drop_all(net);
    }
    uint32_t expect = batches < 4 ? batches : 4;
    for (uint64_t id = 2; id <= 3; id++)
        assert_int_equal(progress_of(net, 1, id).inflight, expect);
    uint32_t ticks = run_until(net, caught_up, 1, ELECTION_TICKS_MIN);
    assert_true(caught_up(net, 1));
    assert_true(ticks <= 3);
    cluster_free(net);
}

static void test_replication_resumes_after_appends_in_flight_are_lost(void **state)
{
    (void)state;
    lose_appends_then_recover(1);  /* the window is not full */
    lose_appends_then_recover(10); /* the window is full */
}

/* ------------------------------------------------------------------------------------------ */
/* Durability                                                                                 */

static void test_committed_entries_survive_a_crash_of_every_node(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    uint64_t last = status_of(net, 1).last_index;
    uint64_t terms[16];
    assert_true(last < 16);
    for (uint64_t i = 1; i <= last; i++)
        terms[i] = raft_term_at(rn_raft(net, 1), i);
    for (uint64_t id = 1; id <= 3; id++)
        rn_crash(net, id);
    rn_drop_all(net);
    for (uint64_t id = 1; id <= 3; id++) {
        rn_restart(net, id);
        struct raft_status st = status_of(net, id);
        assert_int_equal(st.last_index, last);
        assert_int_equal(st.commit, last); /* the commit index was persisted too */
        for (uint64_t i = 1; i <= last; i++)
            assert_int_equal(raft_term_at(rn_raft(net, id), i), terms[i]);
    }
    run_until(net, one_leader, 0, 10 * ELECTION_TICKS_MAX);
    uint64_t leader = rn_leader(net);
    assert_true(leader != 0);
    assert_int_equal(rn_propose(net, leader, "after"), RK_OK);
    rn_run(net, 2);
    assert_true(caught_up(net, leader));
    for (uint64_t id = 1; id <= 3; id++) {
        for (uint64_t i = 1; i <= last; i++)
            assert_int_equal(rn_node(net, id)->applied_term[i], terms[i]);
    }
    rn_check_consistency(net);
    cluster_free(net);
}

/* Drops the queued messages sent by id. */
static void drop_messages_from(struct rn_net *net, uint64_t id)
{
    for (size_t i = net->n_queue; i > 0; i--) {
        if (net->queue[i - 1].m.from == id)
            rn_drop_at(net, i - 1);
    }
}

static void test_crash_between_persist_and_send_loses_nothing_acknowledged(void **state)
{
    (void)state;
    struct rn_net *net = three_nodes_with_commits(NULL);
    rn_isolate(net, 3);
    /* Node 2 persists X, then crashes before its acknowledgment leaves (ready step 2 done,
     * step 3 not). */
    assert_int_equal(rn_propose(net, 1, "X"), RK_OK);
    uint64_t x = status_of(net, 1).last_index, term = status_of(net, 1).term;
    deliver_type(net, RAFT_MSG_APPEND);
    assert_int_equal(rn_count(net, RAFT_MSG_APPEND_RESP, 2), 1);
    drop_messages_from(net, 2);
    rn_crash(net, 2);
    rn_restart(net, 2);
    assert_int_equal(raft_term_at(rn_raft(net, 2), x), term); /* it was on the disk */
    assert_true(status_of(net, 1).commit < x);
    /* The leader finds out through heartbeats and commits X with node 2. */
    rn_run(net, 3);
    assert_true(status_of(net, 1).commit >= x);
    assert_int_equal(rn_node(net, 1)->applied_term[x], term);
    /* Acknowledged and committed: node 1 and 2 crash; 2 comes back with X and, 3 lacking it,
     * only 2 can win. */
    rn_crash(net, 1);
    rn_crash(net, 2);
    rn_drop_all(net);
    rn_restart(net, 2);
    rn_heal(net);
    rn_campaign(net, 3);
    assert_int_not_equal(status_of(net, 3).role, RAFT_LEADER);
    run_until(net, one_leader, 0, 10 * ELECTION_TICKS_MAX);
    assert_int_equal(rn_leader(net), 2);
    rn_run(net, 2);
    assert_int_equal(rn_node(net, 3)->applied_term[x], term);
    rn_restart(net, 1);
    rn_run(net, 2);
    assert_true(caught_up(net, 2));
    rn_check_consistency(net);
    cluster_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Randomized safety                                                                          */

#define FUZZ_SEEDS         300
#define FUZZ_STEPS         5000
#define FUZZ_SETTLE_TICKS  400
#define FUZZ_MAX_PROPOSALS 1024

struct fuzz_proposal {
    uint64_t index;
    uint64_t term;
    uint32_t len;
    char data[24];
};

/* The weather of one seed: how hostile the network and the machines are, per mille of steps
 * (drop_pct: percent of deliveries). */
struct fuzz_weather {
    uint32_t drop_pct;
    uint32_t partition_pm;
    uint32_t crash_pm;
};

struct fuzz_run {
    bool running; /* a seed is in progress: teardown reports it if the test failed */
    uint64_t seed;
    uint32_t step;
    struct rk_prng prng;
    struct fuzz_weather weather;
    struct fuzz_proposal props[FUZZ_MAX_PROPOSALS];
    size_t n_props;
    /* ReadIndex requests by ctx (the step that made them): the highest commit index known
     * anywhere when the read was asked. A read state must not be older (thesis §6.4). */
    uint64_t read_floor[FUZZ_STEPS];
    size_t reads_checked[RAFT_MAX_VOTERS + 1];
    uint64_t acknowledged; /* over all seeds */
    uint64_t reads_answered;
};

/* The configuration of the seed in progress: tweak functions take no context. */
static struct {
    uint64_t seed;
    bool pre_vote;
    bool check_quorum;
    uint32_t max_inflight;
    uint32_t max_append_entries;
} fuzz_cfg;

static void tweak_fuzz(struct raft_config *c)
{
    c->seed = fuzz_cfg.seed * 16 + c->id;
    c->pre_vote = fuzz_cfg.pre_vote;
    c->check_quorum = fuzz_cfg.check_quorum;
    c->max_inflight = fuzz_cfg.max_inflight;
    c->max_append_entries = fuzz_cfg.max_append_entries;
}

static uint64_t fuzz_below(struct fuzz_run *f, uint64_t bound)
{
    return rk_prng_below(&f->prng, bound);
}

static void fuzz_deliver(struct rn_net *net, struct fuzz_run *f)
{
    if (net->n_queue == 0)
        return;
    /* Half the time the oldest message, otherwise any: reordering. */
    size_t i = fuzz_below(f, 2) == 0 ? fuzz_below(f, net->n_queue) : 0;
    uint64_t r = fuzz_below(f, 100);
    if (r < f->weather.drop_pct) {
        rn_drop_at(net, i);
        return;
    }
    if (r < f->weather.drop_pct + 5)
        rn_duplicate_at(net, i);
    rn_deliver_at(net, i);
}

static void fuzz_propose(struct rn_net *net, struct fuzz_run *f, uint64_t id)
{
    if (rn_node(net, id)->down || f->n_props == FUZZ_MAX_PROPOSALS)
        return;
    struct fuzz_proposal *p = &f->props[f->n_props];
    int len =
        snprintf(p->data, sizeof(p->data), "s%llup%zu", (unsigned long long)f->seed, f->n_props);
    p->len = (uint32_t)len;
    uint64_t index = 0;
    struct raft *r = rn_raft(net, id);
    if (raft_propose(r, (const uint8_t *)p->data, p->len, &index, NULL) == RK_OK) {
        p->index = index;
        p->term = status_of(net, id).term;
        f->n_props++;
    }
    rn_process(net, id);
}

/* The highest commit index any node knows, down nodes by what they persisted. */
static uint64_t fuzz_max_commit(struct rn_net *net)
{
    uint64_t max = 0;
    for (uint64_t id = 1; id <= net->n; id++) {
        const struct rn_node *nd = rn_node(net, id);
        uint64_t c = nd->down ? nd->hs.commit : status_of(net, id).commit;
        max = c > max ? c : max;
    }
    return max;
}

static void fuzz_read(struct rn_net *net, struct fuzz_run *f, uint64_t id)
{
    if (rn_node(net, id)->down)
        return;
    f->read_floor[f->step] = fuzz_max_commit(net);
    raft_read_index(rn_raft(net, id), f->step);
    rn_process(net, id);
}

/* Checks the read states that appeared since the last step. */
static void fuzz_check_reads(struct rn_net *net, struct fuzz_run *f)
{
    for (uint64_t id = 1; id <= net->n; id++) {
        struct rn_node *nd = rn_node(net, id);
        for (size_t k = f->reads_checked[id]; k < nd->n_reads; k++) {
            const struct raft_read_state *rs = &nd->reads[k];
            if (rs->ctx >= FUZZ_STEPS || rs->index < f->read_floor[rs->ctx])
                fail_msg("seed %llu: node %llu read ctx %llu at index %llu, below the commit "
                         "index %llu known when it was asked",
                         (unsigned long long)f->seed, (unsigned long long)id,
                         (unsigned long long)rs->ctx, (unsigned long long)rs->index,
                         (unsigned long long)f->read_floor[rs->ctx]);
            f->reads_answered++;
        }
        if (nd->n_reads > 200) /* the harness keeps 256 */
            nd->n_reads = 0;
        f->reads_checked[id] = nd->n_reads;
    }
}

static void fuzz_partition(struct rn_net *net, struct fuzz_run *f)
{
    uint64_t kind = fuzz_below(f, 4);
    if (kind == 0) {
        rn_heal(net);
    } else if (kind == 1) {
        rn_isolate(net, 1 + fuzz_below(f, net->n));
    } else if (kind == 2) {
        uint64_t a = 1 + fuzz_below(f, net->n), b = 1 + fuzz_below(f, net->n);
        net->cut[a][b] = true; /* one direction only */
    } else {
        rn_heal(net);
        uint32_t side = (uint32_t)fuzz_below(f, 1u << net->n);
        for (uint64_t a = 1; a <= net->n; a++) {
            for (uint64_t b = 1; b <= net->n; b++) {
                if (((side >> (a - 1)) & 1) != ((side >> (b - 1)) & 1))
                    net->cut[a][b] = true;
            }
        }
    }
}

static void fuzz_crash_or_restart(struct rn_net *net, uint64_t id)
{
    struct rn_node *nd = rn_node(net, id);
    if (nd->down) {
        rn_restart(net, id);
        rn_process(net, id);
    } else {
        rn_crash(net, id);
    }
}

static void fuzz_step(struct rn_net *net, struct fuzz_run *f)
{
    uint64_t r = fuzz_below(f, 1000);
    uint64_t id = 1 + fuzz_below(f, net->n);
    const struct fuzz_weather *w = &f->weather;
    if (r < w->partition_pm) {
        fuzz_partition(net, f);
    } else if (r < w->partition_pm + w->crash_pm) {
        fuzz_crash_or_restart(net, id);
    } else if (r < 500) {
        fuzz_deliver(net, f);
    } else if (r < 850) {
        rn_tick(net, id);
    } else if (r < 930) {
        /* Half of the proposals go to whoever leads the highest term, the rest anywhere. */
        uint64_t leader = rn_leader(net);
        fuzz_propose(net, f, fuzz_below(f, 2) == 0 && leader != 0 ? leader : id);
    } else if (r < 960) {
        fuzz_read(net, f, id);
    } else {
        for (size_t k = 0; k < 20 && net->n_queue > 0; k++)
            fuzz_deliver(net, f);
    }
    fuzz_check_reads(net, f);
    while (net->n_queue > 2000)
        rn_drop_at(net, fuzz_below(f, net->n_queue));
}

/* Quiet: one leader, every node holds, commits and applied its whole log. */
static bool fuzz_settled(struct rn_net *net, uint64_t arg)
{
    (void)arg;
    if (count_leaders(net) != 1)
        return false;
    uint64_t leader = rn_leader(net);
    struct raft_status sl = status_of(net, leader);
    return sl.last_term == sl.term && caught_up(net, leader);
}

static void fuzz_check_end(struct rn_net *net, struct fuzz_run *f)
{
    rn_heal(net);
    for (uint64_t id = 1; id <= net->n; id++) {
        if (rn_node(net, id)->down)
            rn_restart(net, id);
    }
    rn_process_all(net);
    rn_deliver_all(net);
    run_until(net, fuzz_settled, 0, FUZZ_SETTLE_TICKS);
    if (!fuzz_settled(net, 0))
        fail_msg("seed %llu: no settled leader %u ticks after healing (%u leaders)",
                 (unsigned long long)f->seed, FUZZ_SETTLE_TICKS, count_leaders(net));
    fuzz_check_reads(net, f);
    rn_check_consistency(net);
    /* Acknowledged: proposed at a leader and later committed with that index and term. */
    for (size_t k = 0; k < f->n_props; k++) {
        const struct fuzz_proposal *p = &f->props[k];
        bool acked = false;
        for (uint64_t id = 1; id <= net->n; id++) {
            const struct rn_node *nd = rn_node(net, id);
            acked |= nd->applied >= p->index && nd->applied_term[p->index] == p->term;
        }
        if (!acked)
            continue;
        f->acknowledged++;
        for (uint64_t id = 1; id <= net->n; id++) {
            const struct raft_entry *e = raft_entry_at(rn_raft(net, id), p->index);
            if (e == NULL || e->term != p->term || e->len != p->len ||
                memcmp(e->data, p->data, p->len) != 0)
                fail_msg("seed %llu: acknowledged proposal %zu (index %llu, term %llu) is "
                         "not in the log of node %llu",
                         (unsigned long long)f->seed, k, (unsigned long long)p->index,
                         (unsigned long long)p->term, (unsigned long long)id);
        }
    }
    for (uint64_t id = 1; id <= net->n; id++) {
        if (status_of(net, id).term >= 4096) /* the harness tracks leaders up to term 4095 */
            fail_msg("seed %llu: term beyond Election Safety tracking",
                     (unsigned long long)f->seed);
    }
}

static void fuzz_one_seed(struct fuzz_run *f, uint64_t seed)
{
    static const uint32_t windows[] = {1, 2, 4, 32};
    static const uint32_t batches[] = {1, 3, 256};
    static const struct fuzz_weather weathers[] = {
        {.drop_pct = 0, .partition_pm = 2, .crash_pm = 0},    /* calm: mostly reordering */
        {.drop_pct = 5, .partition_pm = 15, .crash_pm = 10},  /* stormy */
        {.drop_pct = 20, .partition_pm = 30, .crash_pm = 20}, /* hostile */
        {.drop_pct = 2, .partition_pm = 5, .crash_pm = 30},   /* crash-heavy */
    };
    f->seed = seed;
    f->n_props = 0;
    memset(f->reads_checked, 0, sizeof(f->reads_checked));
    rk_prng_seed(&f->prng, seed);
    uint32_t n = fuzz_below(f, 2) == 0 ? 3 : 5;
    f->weather = weathers[fuzz_below(f, 4)];
    fuzz_cfg.seed = seed;
    fuzz_cfg.pre_vote = fuzz_below(f, 2) == 0;
    fuzz_cfg.check_quorum = fuzz_below(f, 2) == 0;
    fuzz_cfg.max_inflight = windows[fuzz_below(f, 4)];
    fuzz_cfg.max_append_entries = batches[fuzz_below(f, 3)];
    struct rn_net *net = cluster_new(n, tweak_fuzz);
    for (f->step = 0; f->step < FUZZ_STEPS; f->step++)
        fuzz_step(net, f);
    fuzz_check_end(net, f);
    cluster_free(net);
}

static int fuzz_setup(void **state)
{
    struct fuzz_run *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int fuzz_teardown(void **state)
{
    struct fuzz_run *f = *state;
    if (f->running)
        print_error("randomized safety test failed at seed %llu, step %u\n",
                    (unsigned long long)f->seed, f->step);
    free(f);
    return 0;
}

static void test_randomized_faults_keep_election_and_state_machine_safety(void **state)
{
    struct fuzz_run *f = *state;
    f->running = true;
    for (uint64_t seed = 1; seed <= FUZZ_SEEDS; seed++)
        fuzz_one_seed(f, seed);
    f->running = false;
    /* The runs committed client proposals and answered reads: the checks had work to do. */
    assert_true(f->acknowledged > 10 * FUZZ_SEEDS);
    assert_true(f->reads_answered > FUZZ_SEEDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_figure7_new_leader_makes_every_follower_log_match_its_own),
        cmocka_unit_test(test_figure8_old_term_entry_on_a_majority_is_not_committed_by_counting),
        cmocka_unit_test(test_figure8_uncommitted_old_term_entry_can_be_overwritten),
        cmocka_unit_test(test_figure8_committed_entry_cannot_be_overwritten),
        cmocka_unit_test(test_split_votes_converge_to_one_leader_with_pre_vote),
        cmocka_unit_test(test_split_votes_converge_to_one_leader_without_pre_vote),
        cmocka_unit_test(test_pre_vote_keeps_an_isolated_follower_from_raising_its_term),
        cmocka_unit_test(test_without_pre_vote_an_isolated_follower_raises_its_term_and_disrupts),
        cmocka_unit_test(test_check_quorum_isolated_leader_steps_down),
        cmocka_unit_test(test_without_check_quorum_isolated_leader_stays_leader),
        cmocka_unit_test(test_leader_stickiness_ignores_vote_requests_in_lease),
        cmocka_unit_test(test_leader_stickiness_ignores_pre_vote_requests_in_lease),
        cmocka_unit_test(test_without_check_quorum_a_node_that_misses_heartbeats_disrupts),
        cmocka_unit_test(test_read_index_on_leader_waits_for_a_heartbeat_quorum),
        cmocka_unit_test(test_read_index_batch_shares_one_heartbeat_round),
        cmocka_unit_test(test_read_index_is_confirmed_only_by_a_round_sent_after_it),
        cmocka_unit_test(test_read_index_on_follower_goes_through_the_leader),
        cmocka_unit_test(test_read_index_new_leader_holds_reads_until_its_noop_commits),
        cmocka_unit_test(test_read_index_leader_cut_off_from_majority_never_answers),
        cmocka_unit_test(test_read_index_without_known_leader_returns_enoleader),
        cmocka_unit_test(test_transfer_to_up_to_date_follower_completes_at_once),
        cmocka_unit_test(test_transfer_to_lagging_follower_catches_it_up_first),
        cmocka_unit_test(test_proposals_during_transfer_return_ebusy),
        cmocka_unit_test(test_transfer_to_unresponsive_node_times_out),
        cmocka_unit_test(test_fast_backup_repairs_follower_10000_entries_behind),
        cmocka_unit_test(test_fast_backup_removes_10000_conflicting_entries_of_an_old_term),
        cmocka_unit_test(test_batched_proposals_go_out_as_few_bounded_appends),
        cmocka_unit_test(test_pipelining_bounds_appends_in_flight_to_the_window),
        cmocka_unit_test(test_replication_resumes_after_appends_in_flight_are_lost),
        cmocka_unit_test(test_committed_entries_survive_a_crash_of_every_node),
        cmocka_unit_test(test_crash_between_persist_and_send_loses_nothing_acknowledged),
        cmocka_unit_test_setup_teardown(
            test_randomized_faults_keep_election_and_state_machine_safety, fuzz_setup,
            fuzz_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
