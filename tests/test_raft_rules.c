/*
 * test_raft_rules.c — one test per rule of Figure 2 of the extended Raft paper (Ongaro &
 * Ousterhout), in the figure's order, so that raft.c can be read against the figure line by
 * line. Then the ready/advance persistence contract (raft.h, thesis §10.2.1), input
 * validation, and restart.
 *
 * Almost every test drives a single node (always id 1, in a cluster of ids 1..n) by hand: it
 * loads a hard state and a log through raft_config, feeds crafted messages with raft_step and
 * asserts on the exact outputs of the next ready batch. Test names say the rule; the comment
 * above each Figure 2 test quotes the line it checks.
 *
 * Timing is deterministic: election_ticks_min == election_ticks_max == ELECTION_TICKS, so the
 * randomized timeout is always exactly ELECTION_TICKS. PreVote and CheckQuorum (thesis
 * extensions, not Figure 2) are off unless a test turns them on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "raft/raft.h"

#define SELF           1
#define ELECTION_TICKS 10
#define MAX_LOG        32

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

/* The starting situation of the node under test (id SELF). Zero fields take defaults. */
struct setup {
    uint32_t n_voters; /* 0: 3 */
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
    uint64_t applied;
    uint64_t log[MAX_LOG]; /* terms of indexes 1, 2, ...; 0-terminated */
    bool pre_vote;
    bool check_quorum;
    uint32_t heartbeat_ticks; /* 0: 1 */
    uint64_t promised_index;  /* raft_config.promised_index */
};

static size_t terms_len(const uint64_t *terms)
{
    size_t n = 0;
    while (n < MAX_LOG && terms[n] != 0)
        n++;
    return n;
}

/* Fills e[0..] with entries of the given terms at indexes first, first + 1, ... */
static size_t fill_entries(struct raft_entry *e, uint64_t first, const uint64_t *terms)
{
    size_t n = terms_len(terms);
    for (size_t i = 0; i < n; i++) {
        e[i] = (struct raft_entry){.term = terms[i], .index = first + i, .type = RAFT_ENTRY_NORMAL};
    }
    return n;
}

static void config_for(const struct setup *s, struct raft_config *c)
{
    raft_config_default(c);
    c->id = SELF;
    c->n_voters = s->n_voters != 0 ? s->n_voters : 3;
    for (uint32_t i = 0; i < c->n_voters; i++)
        c->voters[i] = i + 1;
    c->election_ticks_min = ELECTION_TICKS;
    c->election_ticks_max = ELECTION_TICKS;
    c->heartbeat_ticks = s->heartbeat_ticks != 0 ? s->heartbeat_ticks : 1;
    c->pre_vote = s->pre_vote;
    c->check_quorum = s->check_quorum;
    c->hard_state = (struct raft_hard_state){.term = s->term, .vote = s->vote, .commit = s->commit};
    c->applied = s->applied;
    c->promised_index = s->promised_index;
}

static struct raft *make_node(struct setup s)
{
    struct raft_config c;
    config_for(&s, &c);
    struct raft_entry ents[MAX_LOG];
    c.n_entries = fill_entries(ents, 1, s.log);
    c.entries = ents;
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

static struct raft_counters counters_of(const struct raft *r)
{
    struct raft_counters c;
    raft_counters(r, &c);
    return c;
}

/* Progress of the follower with this id (voters are 1..n, so its position is id - 1). */
static struct raft_progress_status progress_of(const struct raft *r, uint64_t id)
{
    struct raft_progress_status ps;
    assert_true(raft_progress(r, (uint32_t)(id - 1), &ps));
    assert_int_equal(ps.id, id);
    return ps;
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

static void tick_n(struct raft *r, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        raft_tick(r);
}

static size_t count_in(const struct raft_msg *v, size_t n, uint8_t type)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += v[i].type == type;
    return k;
}

/* The message of this type to `to` (0: to anyone) in v, or NULL. */
static const struct raft_msg *find_in(const struct raft_msg *v, size_t n, uint8_t type, uint64_t to)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].type == type && (to == 0 || v[i].to == to))
            return &v[i];
    }
    return NULL;
}

/* The one message of this type to `to` in rd.msgs; asserts none is in msgs_after_persist. */
static const struct raft_msg *sent_now(const struct raft_ready *rd, uint8_t type, uint64_t to)
{
    assert_null(find_in(rd->msgs_after_persist, rd->n_msgs_after_persist, type, to));
    const struct raft_msg *m = find_in(rd->msgs, rd->n_msgs, type, to);
    assert_non_null(m);
    assert_int_equal(m->from, SELF);
    return m;
}

/* The one message of this type to `to` in rd.msgs_after_persist; asserts none is in msgs. */
static const struct raft_msg *sent_after_persist(const struct raft_ready *rd, uint8_t type,
                                                 uint64_t to)
{
    assert_null(find_in(rd->msgs, rd->n_msgs, type, to));
    const struct raft_msg *m = find_in(rd->msgs_after_persist, rd->n_msgs_after_persist, type, to);
    assert_non_null(m);
    assert_int_equal(m->from, SELF);
    return m;
}

static struct raft_msg vote_req(uint64_t from, uint64_t term, uint64_t last_index,
                                uint64_t last_term)
{
    return (struct raft_msg){.type = RAFT_MSG_VOTE,
                             .from = from,
                             .to = SELF,
                             .term = term,
                             .log_index = last_index,
                             .log_term = last_term};
}

/* A HEARTBEAT: the empty AppendEntries of an idle leader, with no log check. */
static struct raft_msg heartbeat(uint64_t from, uint64_t term, uint64_t commit, uint64_t ctx)
{
    return (struct raft_msg){.type = RAFT_MSG_HEARTBEAT,
                             .from = from,
                             .to = SELF,
                             .term = term,
                             .commit = commit,
                             .ctx = ctx};
}

static struct raft_msg resp(uint8_t type, uint64_t from, uint64_t term, bool reject)
{
    return (struct raft_msg){
        .type = type, .from = from, .to = SELF, .term = term, .reject = reject};
}

static struct raft_msg append_ack(uint64_t from, uint64_t term, uint64_t index)
{
    struct raft_msg m = resp(RAFT_MSG_APPEND_RESP, from, term, false);
    m.index = index;
    return m;
}

static struct raft_msg append_nack(uint64_t from, uint64_t term, uint64_t index,
                                   uint64_t conflict_term, uint64_t conflict_index)
{
    struct raft_msg m = resp(RAFT_MSG_APPEND_RESP, from, term, true);
    m.index = index;
    m.conflict_term = conflict_term;
    m.conflict_index = conflict_index;
    return m;
}

/* An APPEND and the entries it carries; m.entries points into e, so do not copy it. */
struct append {
    struct raft_msg m;
    struct raft_entry e[MAX_LOG];
};

static void append_init(struct append *a, uint64_t from, uint64_t term, uint64_t prev,
                        uint64_t prev_term, uint64_t commit, const uint64_t *terms)
{
    memset(a, 0, sizeof(*a));
    a->m = (struct raft_msg){.type = RAFT_MSG_APPEND,
                             .from = from,
                             .to = SELF,
                             .term = term,
                             .log_index = prev,
                             .log_term = prev_term,
                             .commit = commit};
    a->m.n_entries = (uint32_t)fill_entries(a->e, prev + 1, terms);
    a->m.entries = a->m.n_entries > 0 ? a->e : NULL;
}

#define TERMS(...) ((const uint64_t[]){__VA_ARGS__, 0})
#define NO_TERMS   ((const uint64_t[]){0})

/* Steps an APPEND from `from` built from the arguments. */
static int step_append(struct raft *r, uint64_t from, uint64_t term, uint64_t prev,
                       uint64_t prev_term, uint64_t commit, const uint64_t *terms)
{
    struct append a;
    append_init(&a, from, term, prev, prev_term, commit, terms);
    return raft_step(r, &a.m);
}

static void step_ok(struct raft *r, struct raft_msg m)
{
    assert_int_equal(raft_step(r, &m), RK_OK);
}

/* Campaigns (PreVote must be off) and collects grants from 2, 3, ... until leader. The ready
 * holding the no-op is left pending. */
static void win_election(struct raft *r)
{
    raft_campaign(r);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    drain(r);
    uint64_t term = status_of(r).term;
    for (uint64_t id = 2; status_of(r).role != RAFT_LEADER; id++) {
        assert_true(id <= RAFT_MAX_VOTERS);
        step_ok(r, resp(RAFT_MSG_VOTE_RESP, id, term, false));
    }
}

/* A leader whose first ready (the no-op and the first APPENDs) has been acted on. */
static struct raft *make_leader(struct setup s)
{
    struct raft *r = make_node(s);
    win_election(r);
    drain(r);
    return r;
}

/* Checks that r's log holds exactly entries of these terms at indexes 1, 2, ... */
static void assert_log(const struct raft *r, const uint64_t *terms)
{
    size_t n = terms_len(terms);
    assert_int_equal(status_of(r).last_index, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(raft_term_at(r, i + 1), terms[i]);
}

static void assert_entries(const struct raft_entry *e, size_t n, uint64_t first,
                           const uint64_t *terms)
{
    assert_int_equal(n, terms_len(terms));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(e[i].index, first + i);
        assert_int_equal(e[i].term, terms[i]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Rules for Servers — All Servers                                                            */

/* "If commitIndex > lastApplied: increment lastApplied, apply log[lastApplied] to state
 * machine": committed entries come out in index order, each exactly once. */
static void test_all_servers_apply_committed_entries_in_order(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 1, 2, 2}});
    drain(r);
    assert_int_equal(step_append(r, 2, 2, 4, 2, 2, NO_TERMS), RK_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_entries(rd.committed, rd.n_committed, 1, TERMS(1, 1));
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.commit, 2);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).applied, 2);

    assert_int_equal(step_append(r, 2, 2, 4, 2, 4, NO_TERMS), RK_OK);
    raft_ready(r, &rd);
    assert_entries(rd.committed, rd.n_committed, 3, TERMS(2, 2));
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).applied, 4);

    /* Nothing is applied twice. */
    assert_int_equal(step_append(r, 2, 2, 4, 2, 4, NO_TERMS), RK_OK);
    raft_ready(r, &rd);
    assert_int_equal(rd.n_committed, 0);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* After a restart the entries between the durable applied index and the durable commit index
 * are applied again, in order, without waiting for a leader. */
static void test_all_servers_restart_applies_from_applied_to_commit(void **state)
{
    (void)state;
    struct raft *r =
        make_node((struct setup){.term = 2, .commit = 3, .applied = 1, .log = {1, 1, 2, 2}});
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_entries(rd.committed, rd.n_committed, 2, TERMS(1, 2));
    assert_false(rd.has_hard_state);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).applied, 3);
    assert_false(raft_has_ready(r));
    raft_destroy(r);
}

/* The host applies after it persists (raft.h steps 2 then 4); raft hands out an entry as
 * committed only once it is durable locally, never in the batch that first persists it. */
static void test_all_servers_apply_only_durable_entries(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 1});
    assert_int_equal(step_append(r, 2, 1, 0, 0, 3, TERMS(1, 1, 1)), RK_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_entries(rd.entries, rd.n_entries, 1, TERMS(1, 1, 1));
    assert_int_equal(rd.hard_state.commit, 3);
    assert_int_equal(rd.n_committed, 0);
    raft_advance(r, &rd);
    raft_ready(r, &rd);
    assert_int_equal(rd.n_entries, 0);
    assert_entries(rd.committed, rd.n_committed, 1, TERMS(1, 1, 1));
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* The three kinds of message that carry a term: a leader's request, a candidate's request, a
 * response. */
enum msg_kind { KIND_APPEND, KIND_VOTE, KIND_RESPONSE, KIND_COUNT };

static struct raft_msg higher_term_msg(enum msg_kind kind, uint8_t resp_type, uint64_t term)
{
    switch (kind) {
    case KIND_APPEND:
        return (struct raft_msg){.type = RAFT_MSG_APPEND, .from = 2, .to = SELF, .term = term};
    case KIND_VOTE:
        /* A candidate whose log is not up to date: the vote is refused, the term still
         * adopted. */
        return vote_req(2, term, 0, 0);
    default:
        return resp(resp_type, 2, term, true);
    }
}

/* "If RPC request or response contains term T > currentTerm: set currentTerm = T, convert to
 * follower", checked for one role; resp_type is the response that role would receive. */
static void check_higher_term_converts(struct raft *(*make)(void), uint8_t resp_type)
{
    for (int kind = 0; kind < KIND_COUNT; kind++) {
        struct raft *r = make();
        uint64_t old_term = status_of(r).term;
        uint64_t t = old_term + 3;
        struct raft_msg m = higher_term_msg((enum msg_kind)kind, resp_type, t);
        assert_int_equal(raft_step(r, &m), RK_OK);
        struct raft_status st = status_of(r);
        assert_int_equal(st.role, RAFT_FOLLOWER);
        assert_int_equal(st.term, t);
        assert_int_equal(st.vote, RAFT_NONE); /* I4: the vote was for the old term */
        assert_int_equal(st.leader, kind == KIND_APPEND ? 2 : RAFT_NONE);
        struct raft_ready rd;
        raft_ready(r, &rd);
        assert_true(rd.has_hard_state);
        assert_int_equal(rd.hard_state.term, t);
        assert_int_equal(rd.hard_state.vote, RAFT_NONE);
        assert_int_equal(rd.role, RAFT_FOLLOWER);
        raft_advance(r, &rd);
        raft_destroy(r);
    }
}

static struct raft *make_voted_follower(void)
{
    struct raft *r = make_node((struct setup){.term = 2, .vote = 3, .log = {1, 2}});
    drain(r);
    return r;
}

static struct raft *make_candidate(void)
{
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    raft_campaign(r);
    drain(r);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    assert_int_equal(status_of(r).vote, SELF);
    return r;
}

static struct raft *make_default_leader(void)
{
    return make_leader((struct setup){.term = 2, .log = {1, 2}});
}

static void test_all_servers_higher_term_converts_follower(void **state)
{
    (void)state;
    check_higher_term_converts(make_voted_follower, RAFT_MSG_HEARTBEAT_RESP);
}

static void test_all_servers_higher_term_converts_candidate(void **state)
{
    (void)state;
    check_higher_term_converts(make_candidate, RAFT_MSG_VOTE_RESP);
}

static void test_all_servers_higher_term_converts_leader(void **state)
{
    (void)state;
    check_higher_term_converts(make_default_leader, RAFT_MSG_APPEND_RESP);
}

/* ------------------------------------------------------------------------------------------ */
/* Rules for Servers — Followers                                                              */

/* "Respond to RPCs from candidates and leaders": one answer per request, to its sender. */
static void test_follower_responds_to_rpcs(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    drain(r);
    assert_int_equal(step_append(r, 2, 2, 2, 2, 0, NO_TERMS), RK_OK);
    step_ok(r, heartbeat(2, 2, 0, 7));
    step_ok(r, vote_req(3, 2, 1, 1)); /* a candidate whose log is behind ours */
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_msgs + rd.n_msgs_after_persist, 3);
    const struct raft_msg *a = sent_after_persist(&rd, RAFT_MSG_APPEND_RESP, 2);
    assert_false(a->reject);
    assert_int_equal(a->term, 2);
    assert_int_equal(a->index, 2);
    const struct raft_msg *h = sent_now(&rd, RAFT_MSG_HEARTBEAT_RESP, 2); /* promises nothing */
    assert_int_equal(h->term, 2);
    assert_int_equal(h->ctx, 7);
    const struct raft_msg *v = sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, 3);
    assert_true(v->reject);
    assert_int_equal(v->term, 2);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* A heartbeat carries min(the follower's match, the leader's commit): a follower whose log ends
 * below it lost entries it acknowledged (a wiped or repaired log) and says where its log ends,
 * as the rejection of a check anchored at that index, so that an idle leader probes back. */
static void test_follower_short_of_a_heartbeats_commit_rejects(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    drain(r);
    step_ok(r, heartbeat(2, 2, 2, 0)); /* holds index 2: nothing but the reply */
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_msgs + rd.n_msgs_after_persist, 1);
    sent_now(&rd, RAFT_MSG_HEARTBEAT_RESP, 2);
    raft_advance(r, &rd);
    step_ok(r, heartbeat(2, 2, 5, 0)); /* the leader counts 5 of ours: we hold 2 */
    raft_ready(r, &rd);
    assert_int_equal(rd.n_msgs + rd.n_msgs_after_persist, 2);
    sent_now(&rd, RAFT_MSG_HEARTBEAT_RESP, 2);
    const struct raft_msg *a = find_in(rd.msgs, rd.n_msgs, RAFT_MSG_APPEND_RESP, 2);
    if (a == NULL)
        a = find_in(rd.msgs_after_persist, rd.n_msgs_after_persist, RAFT_MSG_APPEND_RESP, 2);
    assert_non_null(a);
    assert_true(a->reject);
    assert_int_equal(a->index, 5);
    assert_int_equal(a->conflict_term, 0);
    assert_int_equal(a->conflict_index, 3);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* "If election timeout elapses without receiving AppendEntries RPC from current leader or
 * granting vote to candidate: convert to candidate" — here through PreVote (thesis §9.6):
 * a pre-candidate asks for term + 1 without changing its own term. */
/* Issue #15 (Protocol-Aware Recovery): a node whose log lost entries it may have acknowledged
 * (promised_index) grants no vote or pre-vote and starts no election until its commit index
 * reaches them; then it votes as any other. */
static void test_follower_recovering_promised_entries_does_not_vote_or_campaign(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}, .promised_index = 5});
    /* A candidate with a longer log, in a later term: refused, vote and pre-vote. */
    step_ok(r, vote_req(2, 3, 9, 2));
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *v = sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, 2);
    if (v == NULL)
        v = sent_now(&rd, RAFT_MSG_VOTE_RESP, 2);
    assert_non_null(v);
    assert_true(v->reject);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).vote, RAFT_NONE);
    struct raft_msg pv = vote_req(3, 4, 9, 2);
    pv.type = RAFT_MSG_PRE_VOTE;
    step_ok(r, pv);
    raft_ready(r, &rd);
    v = sent_now(&rd, RAFT_MSG_PRE_VOTE_RESP, 3);
    assert_non_null(v);
    assert_true(v->reject);
    raft_advance(r, &rd);
    /* Election timeouts pass: it stays a follower. */
    tick_n(r, 5 * ELECTION_TICKS);
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    raft_campaign(r);
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    /* A leader gives the entries back and says they are committed: it votes again. */
    struct append a;
    append_init(&a, 2, 3, 2, 2, 5, TERMS(3, 3, 3));
    step_ok(r, a.m);
    drain(r);
    assert_int_equal(status_of(r).commit, 5);
    step_ok(r, vote_req(3, 4, 9, 3));
    raft_ready(r, &rd);
    v = sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, 3);
    if (v == NULL)
        v = sent_now(&rd, RAFT_MSG_VOTE_RESP, 3);
    assert_non_null(v);
    assert_false(v->reject);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* Issue #15, a lost hard state (a wiped disk): RAFT_PROMISE_UNKNOWN. The node grants nothing
 * and starts no election until a leader has told it its commit index and the node's commit
 * index holds an entry of that leader's term (every entry committed before the term precedes
 * it); on the leader's first APPEND it records a vote for that leader, so that it cannot vote
 * twice in a term it may have voted in before it lost its state. */
static void test_follower_with_unknown_promise_waits_for_a_leader(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.promised_index = RAFT_PROMISE_UNKNOWN});
    assert_int_equal(status_of(r).promised_index, RAFT_PROMISE_UNKNOWN);
    /* A candidate of the first term, with an empty log: refused. */
    step_ok(r, vote_req(2, 1, 0, 0));
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *v = sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, 2);
    if (v == NULL)
        v = sent_now(&rd, RAFT_MSG_VOTE_RESP, 2);
    assert_non_null(v);
    assert_true(v->reject);
    raft_advance(r, &rd);
    tick_n(r, 5 * ELECTION_TICKS);
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    /* Leader 3 of term 2 sends its log; it has committed 2 (term 1), not yet its own entry. */
    struct append a;
    append_init(&a, 3, 2, 0, 0, 2, TERMS(1, 1, 2));
    step_ok(r, a.m);
    drain(r);
    struct raft_status st = status_of(r);
    assert_int_equal(st.commit, 2);
    assert_int_equal(st.vote, 3); /* the leader's: no second vote in term 2 */
    assert_int_equal(st.promised_index, RAFT_PROMISE_UNKNOWN); /* no entry of term 2 yet */

    struct raft_msg pv = vote_req(2, 3, 9, 2);
    pv.type = RAFT_MSG_PRE_VOTE;
    step_ok(r, pv);
    raft_ready(r, &rd);
    v = sent_now(&rd, RAFT_MSG_PRE_VOTE_RESP, 2);
    assert_non_null(v);
    assert_true(v->reject);
    raft_advance(r, &rd);
    /* The leader commits its term's entry: the promise is known (3) and kept. */
    append_init(&a, 3, 2, 3, 2, 3, NO_TERMS);
    step_ok(r, a.m);
    drain(r);
    st = status_of(r);
    assert_int_equal(st.commit, 3);
    assert_int_equal(st.promised_index, 3);
    step_ok(r, pv);
    raft_ready(r, &rd);
    v = sent_now(&rd, RAFT_MSG_PRE_VOTE_RESP, 2);
    assert_non_null(v);
    assert_false(v->reject);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* Issue #15.3, a new cluster: a node with an unknown promise and an empty log probes with
 * pre-vote requests (its role and term unchanged) and knows it promised nothing once every other
 * voter has asked for a (pre-)vote with an empty log; one with entries does not count. */
/* The leader's first APPEND to a node that lost its state is anchored at the leader's next
 * index for it, past every entry the leader ever sent it: the unknown promise covers that too,
 * not only the leader's commit index (which may lag acknowledgments still in flight). */
static void test_unknown_promise_covers_what_the_leader_had_sent(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.promised_index = RAFT_PROMISE_UNKNOWN});
    struct append a;
    append_init(&a, 3, 2, 7, 2, 4, NO_TERMS); /* anchored at 7: refused, the log is empty */
    step_ok(r, a.m);
    drain(r);
    append_init(&a, 3, 2, 0, 0, 5, TERMS(1, 1, 1, 1, 2, 2, 2, 2));
    step_ok(r, a.m);
    drain(r);
    struct raft_status st = status_of(r);
    assert_int_equal(st.commit, 5);         /* an entry of term 2 committed ... */
    assert_int_equal(st.promised_index, 7); /* ... but the promise is 7 */
    struct raft_msg pv = vote_req(2, 3, 9, 2);
    pv.type = RAFT_MSG_PRE_VOTE;
    step_ok(r, pv);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *v = sent_now(&rd, RAFT_MSG_PRE_VOTE_RESP, 2);
    assert_non_null(v);
    assert_true(v->reject);
    raft_advance(r, &rd);
    append_init(&a, 3, 2, 8, 2, 8, NO_TERMS);
    step_ok(r, a.m);
    drain(r);
    step_ok(r, pv);
    raft_ready(r, &rd);
    v = sent_now(&rd, RAFT_MSG_PRE_VOTE_RESP, 2);
    assert_non_null(v);
    assert_false(v->reject);
    raft_advance(r, &rd);
    raft_destroy(r);
}

static void test_unknown_promise_in_a_new_cluster_resolves_when_every_log_is_empty(void **state)
{
    (void)state;
    /* A lost promise (a repaired directory) never resolves so: it is not a new directory. */
    struct raft *lost = make_node((struct setup){.promised_index = RAFT_PROMISE_UNKNOWN});
    struct raft_msg e2 = vote_req(2, 1, 0, 0), e3 = vote_req(3, 1, 0, 0);
    e2.type = e3.type = RAFT_MSG_PRE_VOTE;
    step_ok(lost, e2);
    step_ok(lost, e3);
    drain(lost);
    assert_int_equal(status_of(lost).promised_index, RAFT_PROMISE_UNKNOWN);
    raft_destroy(lost);
    struct raft *r = make_node((struct setup){.promised_index = RAFT_PROMISE_NEW});
    tick_n(r, ELECTION_TICKS);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_non_null(sent_now(&rd, RAFT_MSG_PRE_VOTE, 2));
    assert_non_null(sent_now(&rd, RAFT_MSG_PRE_VOTE, 3));
    raft_advance(r, &rd);
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_FOLLOWER);
    assert_int_equal(st.term, 0);
    struct raft_msg pv = vote_req(2, 1, 0, 0);
    pv.type = RAFT_MSG_PRE_VOTE;
    step_ok(r, pv);
    struct raft_msg busy = vote_req(3, 1, 4, 1); /* 3 holds entries: not a new cluster yet */
    busy.type = RAFT_MSG_PRE_VOTE;
    step_ok(r, busy);
    drain(r);
    assert_int_equal(status_of(r).promised_index, RAFT_PROMISE_NEW);
    struct raft_msg pv3 = vote_req(3, 1, 0, 0);
    pv3.type = RAFT_MSG_PRE_VOTE;
    step_ok(r, pv3);
    drain(r);
    assert_int_equal(status_of(r).promised_index, 0);
    raft_campaign(r); /* it takes part now */
    assert_int_not_equal(status_of(r).role, RAFT_FOLLOWER);
    raft_destroy(r);
}

static void test_follower_election_timeout_starts_pre_vote(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}, .pre_vote = true});
    drain(r);
    tick_n(r, ELECTION_TICKS - 1);
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    assert_false(raft_has_ready(r));
    raft_tick(r);
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_PRE_CANDIDATE);
    assert_int_equal(st.term, 2);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_false(rd.has_hard_state); /* a pre-vote changes nothing durable */
    for (uint64_t to = 2; to <= 3; to++) {
        const struct raft_msg *m = sent_now(&rd, RAFT_MSG_PRE_VOTE, to);
        assert_int_equal(m->term, 3);
        assert_int_equal(m->log_index, 2);
        assert_int_equal(m->log_term, 2);
    }
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* Thesis §9.6: a majority of pre-votes (granted in term + 1) makes the pre-candidate a real
 * candidate, which only then increments its term. */
static void test_pre_candidate_majority_of_pre_votes_becomes_candidate(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}, .pre_vote = true});
    raft_campaign(r);
    assert_int_equal(status_of(r).role, RAFT_PRE_CANDIDATE);
    drain(r);
    step_ok(r, resp(RAFT_MSG_PRE_VOTE_RESP, 2, 3, false));
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_CANDIDATE);
    assert_int_equal(st.term, 3);
    assert_int_equal(st.vote, SELF);
    struct raft_ready rd;
    raft_ready(r, &rd);
    for (uint64_t to = 2; to <= 3; to++)
        assert_int_equal(sent_after_persist(&rd, RAFT_MSG_VOTE, to)->term, 3);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* The same rule with PreVote off: the follower becomes a candidate directly. */
static void test_follower_election_timeout_becomes_candidate(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    drain(r);
    tick_n(r, ELECTION_TICKS - 1);
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    raft_tick(r);
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_CANDIDATE);
    assert_int_equal(st.term, 3);
    assert_int_equal(counters_of(r).elections, 1);
    raft_destroy(r);
}

/* Receiving AppendEntries from the current leader restarts the election timeout, whether it
 * carries entries or is a heartbeat of an idle leader. */
static void test_follower_append_resets_election_timer(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    drain(r);
    for (int round = 0; round < 4; round++) {
        tick_n(r, ELECTION_TICKS - 1);
        if (round % 2 == 0)
            assert_int_equal(step_append(r, 2, 2, 2, 2, 0, NO_TERMS), RK_OK);
        else
            step_ok(r, heartbeat(2, 2, 0, 0));
        drain(r);
    }
    tick_n(r, ELECTION_TICKS - 1);
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    assert_int_equal(counters_of(r).elections, 0);
    raft_tick(r);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    raft_destroy(r);
}

/* "... from current leader": an AppendEntries from a deposed leader (an older term) is
 * refused and does not delay the election. */
static void test_follower_stale_append_does_not_reset_election_timer(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 3, .log = {1, 2}});
    drain(r);
    tick_n(r, ELECTION_TICKS - 1);
    assert_int_equal(step_append(r, 2, 2, 2, 2, 0, NO_TERMS), RK_OK);
    step_ok(r, heartbeat(2, 2, 0, 0));
    assert_int_equal(status_of(r).leader, RAFT_NONE);
    drain(r);
    raft_tick(r);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    raft_destroy(r);
}

/* Granting a vote restarts the election timeout. The vote is in the current term, so the
 * reset cannot come from adopting a new term. */
static void test_follower_granting_vote_resets_election_timer(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    drain(r);
    tick_n(r, ELECTION_TICKS - 1);
    step_ok(r, vote_req(2, 2, 2, 2));
    assert_int_equal(status_of(r).vote, 2);
    drain(r);
    tick_n(r, ELECTION_TICKS - 1);
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    assert_int_equal(status_of(r).term, 2);
    raft_tick(r);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    assert_int_equal(status_of(r).term, 3);
    raft_destroy(r);
}

/* The converse: a vote request that is refused is not "granting vote to candidate" and does
 * not delay our own election. */
static void test_follower_refusing_vote_does_not_reset_election_timer(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    drain(r);
    tick_n(r, ELECTION_TICKS - 1);
    step_ok(r, vote_req(2, 2, 1, 1)); /* log behind ours */
    assert_int_equal(status_of(r).vote, RAFT_NONE);
    drain(r);
    raft_tick(r);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    raft_destroy(r);
}

/* The same with a higher term: the follower moves to the candidate's term (All Servers) but a
 * refused vote still does not restart its timer. Restarting it let a stale candidate whose
 * clock runs fast keep every follower from ever standing (prevote off; found by fuzz_sim). */
static void test_follower_refusing_vote_of_higher_term_does_not_reset_election_timer(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    drain(r);
    tick_n(r, ELECTION_TICKS - 1);
    step_ok(r, vote_req(2, 5, 1, 1)); /* log behind ours, term ahead */
    assert_int_equal(status_of(r).term, 5);
    assert_int_equal(status_of(r).vote, RAFT_NONE);
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    drain(r);
    raft_tick(r);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    assert_int_equal(status_of(r).term, 6);
    raft_destroy(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Rules for Servers — Candidates                                                             */

/* "On conversion to candidate, start election: increment currentTerm, vote for self, reset
 * election timer, send RequestVote RPCs to all other servers". */
static void test_candidate_conversion_increments_term_votes_self_requests_votes(void **state)
{
    (void)state;
    struct raft *r =
        make_node((struct setup){.n_voters = 5, .term = 4, .vote = 3, .log = {1, 1, 4}});
    drain(r);
    raft_campaign(r);
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_CANDIDATE);
    assert_int_equal(st.term, 5);
    assert_int_equal(st.vote, SELF);
    assert_int_equal(st.leader, RAFT_NONE);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.term, 5);
    assert_int_equal(rd.hard_state.vote, SELF);
    assert_int_equal(count_in(rd.msgs_after_persist, rd.n_msgs_after_persist, RAFT_MSG_VOTE), 4);
    for (uint64_t to = 2; to <= 5; to++) {
        const struct raft_msg *m = sent_after_persist(&rd, RAFT_MSG_VOTE, to);
        assert_int_equal(m->term, 5);
        assert_int_equal(m->log_index, 3);
        assert_int_equal(m->log_term, 4);
    }
    assert_null(find_in(rd.msgs_after_persist, rd.n_msgs_after_persist, RAFT_MSG_VOTE, SELF));
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* "... reset election timer": a follower that timed out becomes candidate with a fresh
 * timeout, not one that expires at the next tick. */
static void test_candidate_conversion_resets_election_timer(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    drain(r);
    tick_n(r, ELECTION_TICKS);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    assert_int_equal(status_of(r).term, 3);
    drain(r);
    tick_n(r, ELECTION_TICKS - 1);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    assert_int_equal(status_of(r).term, 3);
    assert_int_equal(counters_of(r).elections, 1);
    assert_false(raft_has_ready(r));
    raft_destroy(r);
}

/* "If votes received from majority of servers: become leader". Five voters: self and one
 * grant (counted once however often it arrives) and a refusal are not a majority; a second
 * distinct grant is. */
static void test_candidate_majority_of_votes_becomes_leader(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.n_voters = 5, .term = 1, .log = {1}});
    raft_campaign(r);
    drain(r);
    step_ok(r, resp(RAFT_MSG_VOTE_RESP, 2, 2, false));
    step_ok(r, resp(RAFT_MSG_VOTE_RESP, 2, 2, false));
    step_ok(r, resp(RAFT_MSG_VOTE_RESP, 3, 2, true));
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    step_ok(r, resp(RAFT_MSG_VOTE_RESP, 4, 2, false));
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_LEADER);
    assert_int_equal(st.leader, SELF);
    assert_int_equal(st.term, 2);
    assert_int_equal(counters_of(r).leader_changes, 1);
    raft_destroy(r);
}

/* A majority of refusals ends the election early (the candidate cannot win this term). */
static void test_candidate_majority_of_refusals_becomes_follower(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 1, .log = {1}});
    raft_campaign(r);
    drain(r);
    step_ok(r, resp(RAFT_MSG_VOTE_RESP, 2, 2, true));
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    step_ok(r, resp(RAFT_MSG_VOTE_RESP, 3, 2, true));
    assert_int_equal(status_of(r).role, RAFT_FOLLOWER);
    assert_int_equal(status_of(r).term, 2);
    assert_int_equal(status_of(r).vote, SELF); /* the vote of term 2 stands */
    raft_destroy(r);
}

/* "If AppendEntries RPC received from new leader: convert to follower" — a leader of our own
 * term. The candidate keeps its term and its vote, and handles the append. */
static void test_candidate_append_from_new_leader_becomes_follower(void **state)
{
    (void)state;
    struct raft *r = make_candidate(); /* term 3, log {1, 2} */
    assert_int_equal(step_append(r, 3, 3, 2, 2, 0, TERMS(3)), RK_OK);
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_FOLLOWER);
    assert_int_equal(st.term, 3);
    assert_int_equal(st.vote, SELF);
    assert_int_equal(st.leader, 3);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_entries(rd.entries, rd.n_entries, 3, TERMS(3));
    const struct raft_msg *a = sent_after_persist(&rd, RAFT_MSG_APPEND_RESP, 3);
    assert_false(a->reject);
    assert_int_equal(a->index, 3);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* The same for a heartbeat, the empty AppendEntries of this implementation. */
static void test_candidate_heartbeat_from_new_leader_becomes_follower(void **state)
{
    (void)state;
    struct raft *r = make_candidate(); /* term 3 */
    step_ok(r, heartbeat(2, 3, 0, 0));
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_FOLLOWER);
    assert_int_equal(st.term, 3);
    assert_int_equal(st.leader, 2);
    raft_destroy(r);
}

/* An AppendEntries from a leader of an older term does not stop an election: it is refused
 * with our term (AppendEntries receiver rule 1). */
static void test_candidate_stale_append_does_not_convert(void **state)
{
    (void)state;
    struct raft *r = make_candidate(); /* term 3 */
    assert_int_equal(step_append(r, 3, 2, 2, 2, 0, TERMS(2)), RK_OK);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    assert_int_equal(status_of(r).last_index, 2);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *a = sent_after_persist(&rd, RAFT_MSG_APPEND_RESP, 3);
    assert_true(a->reject);
    assert_int_equal(a->term, 3);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* "If election timeout elapses: start new election": term increments again, new requests. */
static void test_candidate_election_timeout_starts_new_election(void **state)
{
    (void)state;
    struct raft *r = make_candidate(); /* term 3 */
    tick_n(r, ELECTION_TICKS - 1);
    assert_int_equal(status_of(r).term, 3);
    raft_tick(r);
    struct raft_status st = status_of(r);
    assert_int_equal(st.role, RAFT_CANDIDATE);
    assert_int_equal(st.term, 4);
    assert_int_equal(st.vote, SELF);
    assert_int_equal(counters_of(r).elections, 2);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.hard_state.term, 4);
    assert_int_equal(rd.hard_state.vote, SELF);
    for (uint64_t to = 2; to <= 3; to++)
        assert_int_equal(sent_after_persist(&rd, RAFT_MSG_VOTE, to)->term, 4);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* Asynchronous persistence: a candidate whose new term and self-vote are still on their way to
 * the disk has not sent its vote requests, so its election timer waits for the write (issue 12:
 * behind a 60 MiB entry, timing out unsent requests only started term after term). */
static void test_candidate_timer_waits_for_its_hard_state(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 2}});
    raft_campaign(r); /* term 3 */
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.term, 3);
    raft_advance_async(r, &rd); /* the write is out, not yet durable */
    tick_n(r, 5 * ELECTION_TICKS);
    assert_int_equal(status_of(r).term, 3);
    assert_int_equal(counters_of(r).elections, 1);
    raft_hard_state_persisted(r, 2); /* an older write: says nothing of term 3 */
    tick_n(r, ELECTION_TICKS);
    assert_int_equal(status_of(r).term, 3);
    raft_hard_state_persisted(r, 3);
    tick_n(r, ELECTION_TICKS - 1);
    assert_int_equal(status_of(r).term, 3);
    raft_tick(r);
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    assert_int_equal(status_of(r).term, 4);
    assert_int_equal(counters_of(r).elections, 2);
    raft_destroy(r);
}

/* Votes from an earlier election of this candidate do not count in the new one. */
static void test_candidate_ignores_votes_of_earlier_term(void **state)
{
    (void)state;
    struct raft *r = make_candidate(); /* term 3 */
    tick_n(r, ELECTION_TICKS);         /* term 4 */
    drain(r);
    step_ok(r, resp(RAFT_MSG_VOTE_RESP, 2, 3, false));
    assert_int_equal(status_of(r).role, RAFT_CANDIDATE);
    step_ok(r, resp(RAFT_MSG_VOTE_RESP, 2, 4, false));
    assert_int_equal(status_of(r).role, RAFT_LEADER);
    raft_destroy(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Rules for Servers — Leaders                                                                */

/* "Upon election: send initial empty AppendEntries RPCs (heartbeat) to each server" — here
 * carrying the no-op of the new term that §8 has a new leader commit. */
static void test_leader_upon_election_sends_append_with_noop_to_each_server(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .commit = 1, .log = {1, 1, 2}});
    drain(r);
    win_election(r);
    struct raft_status st = status_of(r);
    assert_int_equal(st.term, 3);
    assert_int_equal(st.last_index, 4);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.role, RAFT_LEADER);
    assert_int_equal(rd.leader, SELF);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 4);
    assert_int_equal(rd.entries[0].term, 3);
    assert_int_equal(rd.entries[0].type, RAFT_ENTRY_NOOP);
    assert_int_equal(rd.entries[0].len, 0);
    for (uint64_t to = 2; to <= 3; to++) {
        const struct raft_msg *m = sent_now(&rd, RAFT_MSG_APPEND, to);
        assert_int_equal(m->term, 3);
        assert_int_equal(m->log_index, 3);
        assert_int_equal(m->log_term, 2);
        assert_int_equal(m->commit, 1);
        assert_entries(m->entries, m->n_entries, 4, TERMS(3));
        assert_int_equal(m->entries[0].type, RAFT_ENTRY_NOOP);
    }
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* "... repeat during idle periods to prevent election timeouts": a heartbeat to every
 * follower each heartbeat_ticks, and none in between. */
static void test_leader_sends_heartbeats_when_idle(void **state)
{
    (void)state;
    struct raft *r = make_leader((struct setup){.term = 1, .log = {1}, .heartbeat_ticks = 3});
    for (int round = 0; round < 3; round++) {
        tick_n(r, 2);
        assert_false(raft_has_ready(r));
        raft_tick(r);
        struct raft_ready rd;
        raft_ready(r, &rd);
        assert_int_equal(rd.n_msgs, 2);
        for (uint64_t to = 2; to <= 3; to++)
            assert_int_equal(sent_now(&rd, RAFT_MSG_HEARTBEAT, to)->term, 2);
        raft_advance(r, &rd);
    }
    assert_int_equal(status_of(r).role, RAFT_LEADER);
    raft_destroy(r);
}

/* Acks the no-op of a fresh leader from every follower, so that they are replicating. */
static void ack_noop(struct raft *r, uint32_t n_voters)
{
    struct raft_status st = status_of(r);
    for (uint64_t id = 2; id <= n_voters; id++)
        step_ok(r, append_ack(id, st.term, st.last_index));
    drain(r);
}

/* "If command received from client: append entry to local log" and "If last log index >=
 * nextIndex for a follower: send AppendEntries RPC with log entries starting at nextIndex". */
static void test_leader_appends_proposal_to_log_and_sends_it(void **state)
{
    (void)state;
    struct raft *r = make_leader((struct setup){.term = 1, .log = {1}});
    ack_noop(r, 3); /* log {1, 2}, commit 2 */
    uint64_t index = 0, leader = 0;
    assert_int_equal(raft_propose(r, (const uint8_t *)"xy", 2, &index, &leader), RK_OK);
    assert_int_equal(index, 3);
    assert_int_equal(leader, SELF);
    assert_int_equal(status_of(r).last_index, 3);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_entries(rd.entries, rd.n_entries, 3, TERMS(2));
    assert_int_equal(rd.entries[0].type, RAFT_ENTRY_NORMAL);
    assert_int_equal(rd.entries[0].len, 2);
    assert_memory_equal(rd.entries[0].data, "xy", 2);
    for (uint64_t to = 2; to <= 3; to++) {
        const struct raft_msg *m = sent_now(&rd, RAFT_MSG_APPEND, to);
        assert_int_equal(m->log_index, 2);
        assert_int_equal(m->log_term, 2);
        assert_int_equal(m->commit, 2);
        assert_entries(m->entries, m->n_entries, 3, TERMS(2));
        assert_memory_equal(m->entries[0].data, "xy", 2);
    }
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* "If successful: update nextIndex and matchIndex for follower". */
static void test_leader_append_success_updates_match_and_next(void **state)
{
    (void)state;
    struct raft *r = make_leader((struct setup){.term = 2, .log = {1, 1, 2}});
    struct raft_progress_status ps = progress_of(r, 2);
    assert_int_equal(ps.match, 0);
    assert_int_equal(ps.next, 4); /* the no-op, in flight */
    assert_false(ps.replicating);
    step_ok(r, append_ack(2, 3, 4));
    ps = progress_of(r, 2);
    assert_int_equal(ps.match, 4);
    assert_int_equal(ps.next, 5);
    assert_true(ps.replicating);
    assert_int_equal(progress_of(r, 3).match, 0); /* the other follower is untouched */
    struct raft_ready rd;
    raft_ready(r, &rd);
    /* It holds everything: only the new commit index goes to it, with no entries. */
    const struct raft_msg *m = sent_now(&rd, RAFT_MSG_APPEND, 2);
    assert_int_equal(m->n_entries, 0);
    assert_int_equal(m->commit, 4);
    raft_advance(r, &rd);

    assert_int_equal(raft_propose(r, (const uint8_t *)"a", 1, NULL, NULL), RK_OK);
    assert_int_equal(raft_propose(r, (const uint8_t *)"b", 1, NULL, NULL), RK_OK);
    drain(r);
    assert_int_equal(progress_of(r, 2).next, 7); /* sent, pipelined */
    step_ok(r, append_ack(2, 3, 6));
    ps = progress_of(r, 2);
    assert_int_equal(ps.match, 6);
    assert_int_equal(ps.next, 7);
    raft_destroy(r);
}

/* "If AppendEntries fails because of log inconsistency: decrement nextIndex and retry" — a
 * follower one entry short: next moves back by one and the retry carries the entries from
 * there. */
static void test_leader_append_rejection_decrements_next_and_retries(void **state)
{
    (void)state;
    struct raft *r = make_leader((struct setup){.term = 2, .log = {1, 1, 2}});
    /* The probe was prev 3; the follower holds only 1..2. */
    step_ok(r, append_nack(2, 3, 3, 0, 3));
    assert_int_equal(progress_of(r, 2).next, 3);
    assert_int_equal(counters_of(r).appends_rejected, 1);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *m = sent_now(&rd, RAFT_MSG_APPEND, 2);
    assert_int_equal(m->log_index, 2);
    assert_int_equal(m->log_term, 1);
    assert_entries(m->entries, m->n_entries, 3, TERMS(2, 3));
    assert_null(find_in(rd.msgs, rd.n_msgs, RAFT_MSG_APPEND, 3));
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* Leader log for the fast back-up tests (thesis §5.3): terms 1 1 1 4 4 5 5, then the no-op of
 * term 6 at index 8; the first probe is prev 7 (term 5). */
static struct raft *make_backup_leader(void)
{
    struct raft *r = make_leader((struct setup){.term = 5, .log = {1, 1, 1, 4, 4, 5, 5}});
    assert_int_equal(status_of(r).term, 6);
    assert_int_equal(progress_of(r, 2).next, 8);
    return r;
}

/* Steps the rejection and checks the retry: next and the APPEND that follows. */
static void check_backup(struct raft *r, struct raft_msg nack, uint64_t want_next,
                         uint64_t want_prev_term)
{
    step_ok(r, nack);
    assert_int_equal(progress_of(r, 2).next, want_next);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *m = sent_now(&rd, RAFT_MSG_APPEND, 2);
    assert_int_equal(m->log_index, want_next - 1);
    assert_int_equal(m->log_term, want_prev_term);
    assert_int_equal(m->n_entries, 8 - want_next + 1);
    assert_int_equal(m->entries[0].index, want_next);
    raft_advance(r, &rd);
}

/* The follower (terms 1 1 1 4 4 4 4) refuses prev 7 with conflict term 4, first index 4. The
 * leader has term 4, last at index 5: next = 6, skipping the follower's whole term-4 tail
 * where it agrees with us, not back to the conflict index. */
static void test_leader_fast_backup_when_leader_has_conflict_term(void **state)
{
    (void)state;
    struct raft *r = make_backup_leader();
    check_backup(r, append_nack(2, 6, 7, 4, 4), 6, 4);
    raft_destroy(r);
}

/* The follower (terms 1 1 1 2 3 3 3) refuses prev 7 with conflict term 3, first index 5. The
 * leader has no entry of term 3: next = the conflict index, 5. */
static void test_leader_fast_backup_when_leader_lacks_conflict_term(void **state)
{
    (void)state;
    struct raft *r = make_backup_leader();
    check_backup(r, append_nack(2, 6, 7, 3, 5), 5, 4);
    raft_destroy(r);
}

/* The follower holds only 1 1: conflict term 0, conflict index 3 (its last index + 1). */
static void test_leader_fast_backup_when_follower_log_too_short(void **state)
{
    (void)state;
    struct raft *r = make_backup_leader();
    check_backup(r, append_nack(2, 6, 7, 0, 3), 3, 1);
    raft_destroy(r);
}

/* §5.3 "decrement nextIndex and retry": whatever the hint says, next moves back past the
 * rejected index. A correct follower's hint never points past it (conflict index <= prev; a
 * conflict term that is the leader's own term at prev would not have been refused), so only a
 * hint that contradicts its rejection — a buggy or damaged peer — tests the clamp; without it
 * the leader would resend the same APPEND for ever (mutation 021). Here the follower names
 * conflict term 5, which the leader holds up to index 7 (next would be 8), and then claims a log
 * longer than the index it refused (conflict index 9). */
static void test_leader_backup_always_moves_past_rejected_index(void **state)
{
    (void)state;
    struct raft *r = make_backup_leader();
    check_backup(r, append_nack(2, 6, 7, 5, 6), 7, 5);
    raft_destroy(r);
    r = make_backup_leader();
    check_backup(r, append_nack(2, 6, 7, 0, 9), 7, 5);
    raft_destroy(r);
}

/* A rejection that does not answer the outstanding probe (delayed, duplicated, or from before
 * a success) must not move next: retrying from there would resend what the follower holds. */
static void test_leader_ignores_stale_append_rejection(void **state)
{
    (void)state;
    struct raft *r = make_backup_leader();
    check_backup(r, append_nack(2, 6, 7, 4, 4), 6, 4); /* probing at prev 5 now */
    step_ok(r, append_nack(2, 6, 7, 0, 3));            /* an older answer about prev 7 */
    assert_int_equal(progress_of(r, 2).next, 6);
    assert_false(raft_has_ready(r));

    step_ok(r, append_ack(2, 6, 8));
    drain(r);
    struct raft_progress_status ps = progress_of(r, 2);
    assert_int_equal(ps.match, 8);
    assert_true(ps.replicating);
    step_ok(r, append_nack(2, 6, 7, 0, 3)); /* below match */
    ps = progress_of(r, 2);
    assert_int_equal(ps.match, 8);
    assert_int_equal(ps.next, 9);
    assert_true(ps.replicating);
    assert_false(raft_has_ready(r));
    raft_destroy(r);
}


/* A follower that lost its log (a wiped data directory: issue #15) rejects the check anchored at
 * its old match with "my log ends at 0". That rejection is not stale: the leader moves match back
 * and probes from what the follower holds, and the follower catches up under the same leader
 * (the rejections used to be discarded, leaving it behind for ever). */
static void test_leader_follower_that_lost_its_log_is_probed_again(void **state)
{
    (void)state;
    struct raft *r = make_backup_leader();
    step_ok(r, append_ack(2, 6, 8));
    drain(r);
    struct raft_progress_status ps = progress_of(r, 2);
    assert_int_equal(ps.match, 8);
    assert_int_equal(ps.next, 9);
    /* Wiped: its answer to the check at prev 8 is "nothing here, my log ends at 0". */
    step_ok(r, append_nack(2, 6, 8, 0, 1));
    ps = progress_of(r, 2);
    assert_int_equal(ps.match, 0);
    assert_int_equal(ps.next, 1);
    assert_false(ps.replicating);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *m = sent_now(&rd, RAFT_MSG_APPEND, 2);
    assert_non_null(m);
    assert_int_equal(m->log_index, 0);
    assert_true(m->n_entries > 0);
    raft_advance(r, &rd);
    /* It takes them and is matched again. */
    step_ok(r, append_ack(2, 6, 8));
    assert_int_equal(progress_of(r, 2).match, 8);
    raft_destroy(r);
}

/* "If there exists an N such that N > commitIndex, a majority of matchIndex[i] >= N, and
 * log[N].term == currentTerm: set commitIndex = N". Five voters: the leader and one follower
 * are not a majority; a second follower makes one. */
static void test_leader_commits_current_term_entry_on_majority_match(void **state)
{
    (void)state;
    struct raft *r = make_leader((struct setup){.n_voters = 5, .term = 1, .log = {1}});
    assert_int_equal(status_of(r).last_index, 2); /* the no-op of term 2, durable */
    step_ok(r, append_ack(2, 2, 2));
    assert_int_equal(status_of(r).commit, 0);
    drain(r);
    step_ok(r, append_ack(3, 2, 2));
    assert_int_equal(status_of(r).commit, 2);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.commit, 2);
    assert_entries(rd.committed, rd.n_committed, 1, TERMS(1, 2));
    /* The new commit index goes to the followers that are replicating. */
    assert_int_equal(sent_now(&rd, RAFT_MSG_APPEND, 2)->commit, 2);
    assert_int_equal(sent_now(&rd, RAFT_MSG_APPEND, 3)->commit, 2);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* Figure 8 (§5.4.2): an entry of an earlier term is not committed by counting replicas, even
 * on a majority; it is committed only once an entry of the current term above it is. */
static void test_leader_does_not_commit_earlier_term_entry_by_counting_replicas(void **state)
{
    (void)state;
    /* Term 2's entry at index 2 was never committed; we lead term 4, no-op at index 3. */
    struct raft *r = make_node((struct setup){.term = 3, .commit = 1, .log = {1, 2}});
    drain(r);
    win_election(r);
    drain(r); /* the no-op is durable: the leader matches up to 3 */
    assert_int_equal(status_of(r).term, 4);
    step_ok(r, append_ack(2, 4, 2)); /* the follower holds index 2 of term 2 */
    assert_int_equal(progress_of(r, 2).match, 2);
    assert_int_equal(status_of(r).commit, 1);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_committed, 0);
    assert_false(rd.has_hard_state && rd.hard_state.commit != 1);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).commit, 1);

    step_ok(r, append_ack(2, 4, 3)); /* now the no-op of term 4 */
    assert_int_equal(status_of(r).commit, 3);
    raft_ready(r, &rd);
    assert_entries(rd.committed, rd.n_committed, 2, TERMS(2, 4));
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* ------------------------------------------------------------------------------------------ */
/* RequestVote RPC receiver                                                                   */

/* The voter for the tests below: term 2, log 1 1 2 (last index 3, last term 2), no vote. */
static struct raft *make_voter(void)
{
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 1, 2}});
    drain(r);
    return r;
}

/* Steps the request and checks the answer: the reply in msgs_after_persist, our vote, and the
 * hard state that goes with it. */
static void check_vote(struct raft *r, struct raft_msg req, bool want_grant)
{
    step_ok(r, req);
    struct raft_status st = status_of(r);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *v = sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, req.from);
    assert_int_equal(v->reject, !want_grant);
    assert_int_equal(v->term, st.term);
    assert_int_equal(rd.n_msgs + rd.n_msgs_after_persist, 1);
    if (want_grant) {
        assert_int_equal(st.vote, req.from);
        assert_int_equal(st.term, req.term);
    } else {
        assert_true(st.vote != req.from);
    }
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* 1. "Reply false if term < currentTerm" — however good the candidate's log. */
static void test_request_vote_rejects_term_below_current(void **state)
{
    (void)state;
    struct raft *r = make_voter();
    step_ok(r, vote_req(2, 1, 9, 9));
    struct raft_status st = status_of(r);
    assert_int_equal(st.term, 2);
    assert_int_equal(st.vote, RAFT_NONE);
    struct raft_ready rd;
    raft_ready(r, &rd);
    const struct raft_msg *v = sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, 2);
    assert_true(v->reject);
    assert_int_equal(v->term, 2);
    assert_false(rd.has_hard_state);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* 2. "If votedFor is null or candidateId ...": a vote already cast for another candidate in
 * this term is final. */
static void test_request_vote_rejects_when_voted_for_another(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .vote = 3, .log = {1, 1, 2}});
    drain(r);
    check_vote(r, vote_req(2, 2, 9, 2), false);
}

/* 2. "... or candidateId": asked again (a lost reply), the same candidate gets the vote again. */
static void test_request_vote_grants_again_to_same_candidate(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .vote = 2, .log = {1, 1, 2}});
    drain(r);
    check_vote(r, vote_req(2, 2, 3, 2), true);
}

/* 2. "... and candidate's log is at least as up-to-date as receiver's log" (§5.4.1): a lower
 * last term loses however long the log. */
static void test_request_vote_rejects_lower_last_term(void **state)
{
    (void)state;
    check_vote(make_voter(), vote_req(2, 3, 9, 1), false);
}

/* Same last term, shorter log: not up to date. */
static void test_request_vote_rejects_same_last_term_shorter_log(void **state)
{
    (void)state;
    check_vote(make_voter(), vote_req(2, 3, 2, 2), false);
}

/* Same last term, equal or longer log: up to date. */
static void test_request_vote_grants_same_last_term_equal_log(void **state)
{
    (void)state;
    check_vote(make_voter(), vote_req(2, 3, 3, 2), true);
}

static void test_request_vote_grants_same_last_term_longer_log(void **state)
{
    (void)state;
    check_vote(make_voter(), vote_req(2, 3, 4, 2), true);
}

/* A higher last term wins even with a shorter log. */
static void test_request_vote_grants_higher_last_term_shorter_log(void **state)
{
    (void)state;
    check_vote(make_voter(), vote_req(2, 3, 1, 3), true);
}

/* A candidate has voted for itself: it refuses a rival of its own term. */
static void test_request_vote_candidate_rejects_rival_of_same_term(void **state)
{
    (void)state;
    check_vote(make_candidate(), vote_req(2, 3, 9, 3), false);
}

/* ------------------------------------------------------------------------------------------ */
/* AppendEntries RPC receiver                                                                 */

/* Steps an APPEND from 2 and returns the single APPEND_RESP to 2, which must be in
 * msgs_after_persist; the ready stays open in *rd. */
static const struct raft_msg *append_and_answer(struct raft *r, struct append *a,
                                                struct raft_ready *rd)
{
    assert_int_equal(raft_step(r, &a->m), RK_OK);
    raft_ready(r, rd);
    assert_int_equal(rd->n_msgs + rd->n_msgs_after_persist, 1);
    return sent_after_persist(rd, RAFT_MSG_APPEND_RESP, 2);
}

/* 1. "Reply false if term < currentTerm"; the reply carries our term so the stale leader
 * steps down, and nothing of the message is taken. */
static void test_append_rejects_term_below_current(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 3, .log = {1, 1}});
    drain(r);
    struct append a;
    append_init(&a, 2, 2, 2, 1, 2, TERMS(2));
    struct raft_ready rd;
    const struct raft_msg *m = append_and_answer(r, &a, &rd);
    assert_true(m->reject);
    assert_int_equal(m->term, 3);
    assert_int_equal(rd.n_entries, 0);
    assert_false(rd.has_hard_state);
    raft_advance(r, &rd);
    struct raft_status st = status_of(r);
    assert_int_equal(st.last_index, 2);
    assert_int_equal(st.commit, 0);
    assert_int_equal(st.leader, RAFT_NONE);
    raft_destroy(r);
}

/* 2. "Reply false if log doesn't contain an entry at prevLogIndex whose term matches
 * prevLogTerm" — no entry there: conflict term 0, conflict index = our last index + 1. */
static void test_append_rejects_when_log_too_short(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 1, 2}});
    drain(r);
    struct append a;
    append_init(&a, 2, 2, 6, 2, 6, TERMS(2));
    struct raft_ready rd;
    const struct raft_msg *m = append_and_answer(r, &a, &rd);
    assert_true(m->reject);
    assert_int_equal(m->term, 2);
    assert_int_equal(m->index, 6);
    assert_int_equal(m->conflict_term, 0);
    assert_int_equal(m->conflict_index, 4);
    assert_int_equal(rd.n_entries, 0);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).last_index, 3);
    assert_int_equal(status_of(r).commit, 0);
    raft_destroy(r);
}

/* 2. — an entry of another term there: conflict term = our term at prevLogIndex, conflict
 * index = the first index we hold of that term. The leader's commit index is not taken. */
static void test_append_rejects_on_prev_term_mismatch(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 3, .log = {1, 1, 2, 2, 2}});
    drain(r);
    struct append a;
    append_init(&a, 2, 3, 4, 3, 4, TERMS(3));
    struct raft_ready rd;
    const struct raft_msg *m = append_and_answer(r, &a, &rd);
    assert_true(m->reject);
    assert_int_equal(m->index, 4);
    assert_int_equal(m->conflict_term, 2);
    assert_int_equal(m->conflict_index, 3);
    assert_int_equal(rd.n_entries, 0);
    assert_int_equal(rd.truncate_from, 0);
    raft_advance(r, &rd);
    assert_log(r, TERMS(1, 1, 2, 2, 2));
    assert_int_equal(status_of(r).commit, 0);
    raft_destroy(r);
}

/* 3. "If an existing entry conflicts with a new one (same index but different terms), delete
 * the existing entry and all that follow it". Index 3 agrees, 4 conflicts: 4 and 5 go. */
static void test_append_deletes_conflicting_entry_and_all_after(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 1, 2, 2, 2}});
    drain(r);
    struct append a;
    append_init(&a, 2, 3, 2, 1, 0, TERMS(2, 3));
    struct raft_ready rd;
    const struct raft_msg *m = append_and_answer(r, &a, &rd);
    assert_false(m->reject);
    assert_int_equal(m->index, 4);
    assert_int_equal(rd.truncate_from, 4);
    assert_entries(rd.entries, rd.n_entries, 4, TERMS(3));
    raft_advance(r, &rd);
    assert_log(r, TERMS(1, 1, 2, 3));
    assert_false(raft_has_ready(r));
    raft_destroy(r);
}

/* 4. "Append any new entries not already in the log": entries we hold are not written again. */
static void test_append_appends_only_new_entries(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 1, 2}});
    drain(r);
    struct append a;
    append_init(&a, 2, 2, 1, 1, 0, TERMS(1, 2, 2, 2));
    struct raft_ready rd;
    const struct raft_msg *m = append_and_answer(r, &a, &rd);
    assert_false(m->reject);
    assert_int_equal(m->index, 5);
    assert_int_equal(rd.truncate_from, 0);
    assert_entries(rd.entries, rd.n_entries, 4, TERMS(2, 2));
    raft_advance(r, &rd);
    assert_log(r, TERMS(1, 1, 2, 2, 2));
    raft_destroy(r);
}

/* 4. — a delayed or duplicated AppendEntries that covers only a prefix of our log truncates
 * nothing: the entries after it may be ones the leader sent later. The ack names the last
 * entry the message covered. */
static void test_append_old_append_does_not_truncate_longer_log(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 1, 2, 2, 2}});
    drain(r);
    struct append a;
    append_init(&a, 2, 2, 1, 1, 0, TERMS(1, 2));
    struct raft_ready rd;
    const struct raft_msg *m = append_and_answer(r, &a, &rd);
    assert_false(m->reject);
    assert_int_equal(m->index, 3);
    assert_int_equal(rd.truncate_from, 0);
    assert_int_equal(rd.n_entries, 0);
    raft_advance(r, &rd);
    assert_log(r, TERMS(1, 1, 2, 2, 2));
    raft_destroy(r);
}

/* 5. "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last new
 * entry)". The subtle case: our log is longer than the message and agrees with the leader's
 * term there, yet beyond the message's last entry it is not known to match, so leaderCommit 4
 * commits only up to 2. */
static void test_append_commit_is_min_of_leader_commit_and_last_new_entry(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 1, .log = {1, 1, 1, 1, 1}});
    drain(r);
    assert_int_equal(step_append(r, 2, 1, 1, 1, 4, TERMS(1)), RK_OK);
    assert_int_equal(status_of(r).commit, 2);
    drain(r);
    /* leaderCommit below the last new entry: it wins. */
    assert_int_equal(step_append(r, 2, 1, 2, 1, 3, TERMS(1, 1)), RK_OK);
    assert_int_equal(status_of(r).commit, 3);
    drain(r);
    /* An empty append (a heartbeat with a log check) vouches up to its prevLogIndex. */
    assert_int_equal(step_append(r, 2, 1, 4, 1, 9, NO_TERMS), RK_OK);
    assert_int_equal(status_of(r).commit, 4);
    drain(r);
    /* leaderCommit <= commitIndex: the commit index never moves back. */
    assert_int_equal(step_append(r, 2, 1, 5, 1, 1, NO_TERMS), RK_OK);
    assert_int_equal(status_of(r).commit, 4);
    drain(r);
    raft_destroy(r);
}

/* 5. — with a rejected append, nothing of leaderCommit is taken either. */
static void test_append_rejected_append_does_not_advance_commit(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 2, .log = {1, 1, 1}});
    drain(r);
    assert_int_equal(step_append(r, 2, 2, 3, 2, 3, TERMS(2)), RK_OK);
    assert_int_equal(status_of(r).commit, 0);
    raft_destroy(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Persistence ordering: the ready contract                                                   */

/* A vote reply promises the vote: it leaves after the hard state that records it is synced. */
static void test_persist_vote_reply_after_hard_state(void **state)
{
    (void)state;
    struct raft *r = make_voter(); /* term 2 */
    step_ok(r, vote_req(2, 5, 3, 2));
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_msgs, 0);
    const struct raft_msg *v = sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, 2);
    assert_false(v->reject);
    assert_int_equal(v->term, 5);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.term, 5);
    assert_int_equal(rd.hard_state.vote, 2);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* An append acknowledgment promises the entries: same batch as the entries, sent after. */
static void test_persist_append_ack_after_entries(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.term = 1, .log = {1}});
    drain(r);
    assert_int_equal(step_append(r, 2, 2, 1, 1, 0, TERMS(2, 2)), RK_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_msgs, 0);
    const struct raft_msg *a = sent_after_persist(&rd, RAFT_MSG_APPEND_RESP, 2);
    assert_false(a->reject);
    assert_int_equal(a->index, 3);
    assert_entries(rd.entries, rd.n_entries, 2, TERMS(2, 2));
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.term, 2);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* A vote request promises the new term and the self-vote. */
static void test_persist_vote_requests_after_term_and_self_vote(void **state)
{
    (void)state;
    struct raft *r = make_voter(); /* term 2 */
    raft_campaign(r);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(count_in(rd.msgs, rd.n_msgs, RAFT_MSG_VOTE), 0);
    assert_int_equal(count_in(rd.msgs_after_persist, rd.n_msgs_after_persist, RAFT_MSG_VOTE), 2);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.term, 3);
    assert_int_equal(rd.hard_state.vote, SELF);
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* Thesis §10.2.1: the leader sends its APPENDs before its own sync (they promise nothing about
 * the leader's disk), in the same batch as the entries it must write. */
static void test_persist_leader_appends_sent_before_own_sync(void **state)
{
    (void)state;
    struct raft *r = make_leader((struct setup){.term = 1, .log = {1}});
    ack_noop(r, 3);
    assert_int_equal(raft_propose(r, (const uint8_t *)"x", 1, NULL, NULL), RK_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_msgs_after_persist, 0);
    assert_int_equal(count_in(rd.msgs, rd.n_msgs, RAFT_MSG_APPEND), 2);
    assert_entries(rd.entries, rd.n_entries, 3, TERMS(2));
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* ... and it counts itself toward the commit quorum only for entries on its disk: a
 * follower's ack (crafted here to overtake the leader's sync, which a host could only show
 * raft after advance) does not commit until the batch holding the entry is advanced. */
static void test_persist_leader_counts_itself_only_after_advance(void **state)
{
    (void)state;
    struct raft *r = make_leader((struct setup){.term = 1, .log = {1}});
    ack_noop(r, 3); /* commit 2 */
    assert_int_equal(raft_propose(r, (const uint8_t *)"x", 1, NULL, NULL), RK_OK);
    step_ok(r, append_ack(2, 2, 3));
    assert_int_equal(progress_of(r, 2).match, 3);
    assert_int_equal(status_of(r).commit, 2);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_entries(rd.entries, rd.n_entries, 3, TERMS(2));
    assert_int_equal(rd.n_committed, 0);
    assert_false(rd.has_hard_state && rd.hard_state.commit != 2);
    assert_int_equal(status_of(r).commit, 2);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).commit, 3);
    raft_ready(r, &rd);
    assert_int_equal(rd.hard_state.commit, 3);
    assert_entries(rd.committed, rd.n_committed, 3, TERMS(2));
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* The degenerate quorum: a single voter is its own majority, elected at once without any
 * request, and still commits an entry only once its own sync is done. */
static void test_persist_single_voter_commits_only_after_own_sync(void **state)
{
    (void)state;
    struct raft *r = make_node((struct setup){.n_voters = 1, .term = 1, .log = {1}});
    drain(r);
    raft_campaign(r);
    assert_int_equal(status_of(r).role, RAFT_LEADER);
    assert_int_equal(status_of(r).term, 2);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_msgs + rd.n_msgs_after_persist, 0);
    assert_int_equal(rd.hard_state.term, 2);
    assert_int_equal(rd.hard_state.vote, SELF);
    assert_entries(rd.entries, rd.n_entries, 2, TERMS(2));
    assert_int_equal(rd.hard_state.commit, 0);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).commit, 2);
    drain(r);

    assert_int_equal(raft_propose(r, (const uint8_t *)"x", 1, NULL, NULL), RK_OK);
    raft_ready(r, &rd);
    assert_entries(rd.entries, rd.n_entries, 3, TERMS(2));
    assert_int_equal(rd.n_committed, 0);
    assert_int_equal(status_of(r).commit, 2);
    raft_advance(r, &rd);
    assert_int_equal(status_of(r).commit, 3);
    raft_ready(r, &rd);
    assert_entries(rd.committed, rd.n_committed, 3, TERMS(2));
    raft_advance(r, &rd);
    raft_destroy(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Input validation                                                                           */

/* Steps m and checks it was dropped: RK_EINVAL, counted, and no trace in the state. */
static void check_dropped(struct raft *r, const struct raft_msg *m)
{
    struct raft_status before = status_of(r);
    uint64_t dropped = counters_of(r).msgs_dropped;
    assert_int_equal(raft_step(r, m), RK_EINVAL);
    assert_int_equal(counters_of(r).msgs_dropped, dropped + 1);
    struct raft_status after = status_of(r);
    assert_int_equal(after.term, before.term);
    assert_int_equal(after.vote, before.vote);
    assert_int_equal(after.role, before.role);
    assert_int_equal(after.leader, before.leader);
    assert_int_equal(after.commit, before.commit);
    assert_int_equal(after.last_index, before.last_index);
    assert_false(raft_has_ready(r));
}

static void test_step_drops_message_for_another_node(void **state)
{
    (void)state;
    struct raft *r = make_voter();
    struct raft_msg m = vote_req(2, 9, 9, 9);
    m.to = 3;
    check_dropped(r, &m);
    raft_destroy(r);
}

static void test_step_drops_message_from_unknown_node_or_self(void **state)
{
    (void)state;
    struct raft *r = make_voter();
    struct append a;
    /* A non-member is heard only as a leader (of a configuration this node may not hold yet:
     * MEMBERSHIP.md); its vote requests and answers are dropped. */
    struct raft_msg stranger = vote_req(7, 9, 9, 9);
    check_dropped(r, &stranger);
    stranger.type = RAFT_MSG_PRE_VOTE;
    check_dropped(r, &stranger);
    stranger.type = RAFT_MSG_APPEND_RESP;
    check_dropped(r, &stranger);
    append_init(&a, SELF, 9, 3, 2, 3, TERMS(9));
    check_dropped(r, &a.m);
    struct raft_msg m = vote_req(RAFT_NONE, 9, 9, 9);
    check_dropped(r, &m);
    raft_destroy(r);
}

static void test_step_drops_message_of_unknown_type_or_without_term(void **state)
{
    (void)state;
    struct raft *r = make_voter();
    struct raft_msg m = vote_req(2, 9, 9, 9);
    m.type = 0;
    check_dropped(r, &m);
    m.type = RAFT_MSG_TYPE_COUNT;
    check_dropped(r, &m);
    m = vote_req(2, 0, 9, 9);
    check_dropped(r, &m);
    raft_destroy(r);
}

static void test_step_drops_append_with_bad_entry_type_or_data(void **state)
{
    (void)state;
    struct raft *r = make_voter();
    struct append a;
    append_init(&a, 2, 3, 3, 2, 0, TERMS(3));
    a.e[0].type = 9;
    check_dropped(r, &a.m);
    append_init(&a, 2, 3, 3, 2, 0, TERMS(3));
    a.e[0].len = 4; /* and data NULL */
    check_dropped(r, &a.m);
    raft_destroy(r);
}

static void test_step_drops_append_with_non_consecutive_indexes(void **state)
{
    (void)state;
    struct raft *r = make_voter();
    struct append a;
    append_init(&a, 2, 3, 3, 2, 0, TERMS(3, 3, 3));
    a.e[2].index = 7;
    check_dropped(r, &a.m);
    append_init(&a, 2, 3, 3, 2, 0, TERMS(3));
    a.e[0].index = 3; /* must be prev + 1 */
    check_dropped(r, &a.m);
    raft_destroy(r);
}

static void test_step_drops_append_with_term_above_message_term(void **state)
{
    (void)state;
    struct raft *r = make_voter();
    struct append a;
    append_init(&a, 2, 3, 3, 2, 0, TERMS(3, 4));
    check_dropped(r, &a.m);
    append_init(&a, 2, 3, 3, 4, 0, NO_TERMS); /* prevLogTerm above the term */
    check_dropped(r, &a.m);
    append_init(&a, 2, 3, 3, 2, 0, TERMS(3, 2)); /* terms must not decrease */
    check_dropped(r, &a.m);
    raft_destroy(r);
}

/* A follower refuses proposals and names the leader it knows, so the client can redirect. */
static void test_propose_on_follower_returns_not_leader_with_leader_id(void **state)
{
    (void)state;
    struct raft *r = make_voter();
    uint64_t leader = 99, index = 99;
    assert_int_equal(raft_propose(r, (const uint8_t *)"x", 1, &index, &leader), RK_ENOTLEADER);
    assert_int_equal(leader, RAFT_NONE);
    assert_int_equal(step_append(r, 3, 2, 3, 2, 0, NO_TERMS), RK_OK);
    drain(r);
    assert_int_equal(raft_propose(r, (const uint8_t *)"x", 1, &index, &leader), RK_ENOTLEADER);
    assert_int_equal(leader, 3);
    assert_int_equal(status_of(r).last_index, 3);
    assert_false(raft_has_ready(r));
    raft_destroy(r);
}

/* Creates with c, expects RK_EINVAL, no node, and a message that names `field`. */
static void check_create_fails(const struct raft_config *c, const char *field)
{
    struct raft *r = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(raft_create(c, &r, &err), RK_EINVAL);
    assert_null(r);
    if (strstr(err.text, field) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err.text, field);
}

static void test_create_rejects_invalid_config(void **state)
{
    (void)state;
    struct setup s = {.term = 1};
    struct raft_config c;
    config_for(&s, &c);
    c.id = 0;
    check_create_fails(&c, "id");
    config_for(&s, &c);
    c.id = 4;
    check_create_fails(&c, "not among the voters");
    config_for(&s, &c);
    c.n_voters = 0;
    check_create_fails(&c, "voters");
    config_for(&s, &c);
    c.n_voters = RAFT_MAX_VOTERS + 1;
    check_create_fails(&c, "voters");
    config_for(&s, &c);
    c.voters[2] = 2;
    check_create_fails(&c, "twice");
    config_for(&s, &c);
    c.voters[1] = 0;
    check_create_fails(&c, "voter");
    config_for(&s, &c);
    c.heartbeat_ticks = 0;
    check_create_fails(&c, "heartbeat_ticks");
    config_for(&s, &c);
    c.heartbeat_ticks = ELECTION_TICKS;
    check_create_fails(&c, "election_ticks_min");
    config_for(&s, &c);
    c.election_ticks_max = ELECTION_TICKS - 1;
    check_create_fails(&c, "election_ticks_max");
    config_for(&s, &c);
    c.max_inflight = 0;
    check_create_fails(&c, "replication limits");
}

static void test_create_rejects_inconsistent_state(void **state)
{
    (void)state;
    struct setup s = {.term = 2};
    struct raft_config c;
    struct raft_entry e[MAX_LOG];

    config_for(&s, &c);
    c.n_entries = fill_entries(e, 1, TERMS(1, 1, 2));
    c.entries = e;
    e[1].index = 5;
    check_create_fails(&c, "index");

    c.n_entries = fill_entries(e, 1, TERMS(1, 3));
    check_create_fails(&c, "term"); /* above the hard state's term */

    c.n_entries = fill_entries(e, 1, TERMS(2, 1));
    check_create_fails(&c, "term"); /* terms decrease */

    c.n_entries = fill_entries(e, 1, TERMS(1, 1));
    c.applied = 3;
    check_create_fails(&c, "applied");

    c.n_entries = 0;
    c.snapshot_index = 4;
    c.snapshot_term = 3;
    c.applied = 4;
    check_create_fails(&c, "snapshot term");

    c.snapshot_term = 2;
    c.n_entries = fill_entries(e, 1, TERMS(2));
    check_create_fails(&c, "index"); /* must start at snapshot_index + 1 */

    c.n_entries = 0;
    c.applied = 3; /* below the snapshot, which holds applied state */
    check_create_fails(&c, "applied");
}

/* Figure 2 "Persistent state on all servers ... (Updated on stable storage before responding
 * to RPCs)": a node that voted in term 5 and restarts from what it persisted still holds
 * that vote, and refuses a second candidate of term 5. */
static void test_restart_keeps_term_and_vote(void **state)
{
    (void)state;
    struct setup s = {.term = 2, .log = {1, 1, 2}};
    struct raft *r = make_node(s);
    drain(r);
    step_ok(r, vote_req(2, 5, 3, 2));
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_true(rd.has_hard_state);
    struct raft_hard_state disk = rd.hard_state;
    raft_advance(r, &rd);
    raft_destroy(r);

    s.term = disk.term;
    s.vote = disk.vote;
    s.commit = disk.commit;
    r = make_node(s);
    struct raft_status st = status_of(r);
    assert_int_equal(st.term, 5);
    assert_int_equal(st.vote, 2);
    assert_false(raft_has_ready(r));
    step_ok(r, vote_req(3, 5, 9, 5));
    assert_int_equal(status_of(r).vote, 2);
    raft_ready(r, &rd);
    assert_true(sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, 3)->reject);
    raft_advance(r, &rd);
    step_ok(r, vote_req(2, 5, 3, 2));
    raft_ready(r, &rd);
    assert_false(sent_after_persist(&rd, RAFT_MSG_VOTE_RESP, 2)->reject);
    raft_advance(r, &rd);
    raft_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* All Servers */
        cmocka_unit_test(test_all_servers_apply_committed_entries_in_order),
        cmocka_unit_test(test_all_servers_restart_applies_from_applied_to_commit),
        cmocka_unit_test(test_all_servers_apply_only_durable_entries),
        cmocka_unit_test(test_all_servers_higher_term_converts_follower),
        cmocka_unit_test(test_all_servers_higher_term_converts_candidate),
        cmocka_unit_test(test_all_servers_higher_term_converts_leader),
        /* Followers */
        cmocka_unit_test(test_follower_responds_to_rpcs),
        cmocka_unit_test(test_follower_short_of_a_heartbeats_commit_rejects),
        cmocka_unit_test(test_follower_election_timeout_starts_pre_vote),
        cmocka_unit_test(test_follower_recovering_promised_entries_does_not_vote_or_campaign),
        cmocka_unit_test(test_follower_with_unknown_promise_waits_for_a_leader),
        cmocka_unit_test(test_unknown_promise_covers_what_the_leader_had_sent),
        cmocka_unit_test(test_unknown_promise_in_a_new_cluster_resolves_when_every_log_is_empty),
        cmocka_unit_test(test_pre_candidate_majority_of_pre_votes_becomes_candidate),
        cmocka_unit_test(test_follower_election_timeout_becomes_candidate),
        cmocka_unit_test(test_follower_append_resets_election_timer),
        cmocka_unit_test(test_follower_stale_append_does_not_reset_election_timer),
        cmocka_unit_test(test_follower_granting_vote_resets_election_timer),
        cmocka_unit_test(test_follower_refusing_vote_does_not_reset_election_timer),
        cmocka_unit_test(test_follower_refusing_vote_of_higher_term_does_not_reset_election_timer),
        /* Candidates */
        cmocka_unit_test(test_candidate_conversion_increments_term_votes_self_requests_votes),
        cmocka_unit_test(test_candidate_conversion_resets_election_timer),
        cmocka_unit_test(test_candidate_majority_of_votes_becomes_leader),
        cmocka_unit_test(test_candidate_majority_of_refusals_becomes_follower),
        cmocka_unit_test(test_candidate_append_from_new_leader_becomes_follower),
        cmocka_unit_test(test_candidate_heartbeat_from_new_leader_becomes_follower),
        cmocka_unit_test(test_candidate_stale_append_does_not_convert),
        cmocka_unit_test(test_candidate_election_timeout_starts_new_election),
        cmocka_unit_test(test_candidate_timer_waits_for_its_hard_state),
        cmocka_unit_test(test_candidate_ignores_votes_of_earlier_term),
        /* Leaders */
        cmocka_unit_test(test_leader_upon_election_sends_append_with_noop_to_each_server),
        cmocka_unit_test(test_leader_sends_heartbeats_when_idle),
        cmocka_unit_test(test_leader_appends_proposal_to_log_and_sends_it),
        cmocka_unit_test(test_leader_append_success_updates_match_and_next),
        cmocka_unit_test(test_leader_append_rejection_decrements_next_and_retries),
        cmocka_unit_test(test_leader_fast_backup_when_leader_has_conflict_term),
        cmocka_unit_test(test_leader_backup_always_moves_past_rejected_index),
        cmocka_unit_test(test_leader_fast_backup_when_leader_lacks_conflict_term),
        cmocka_unit_test(test_leader_fast_backup_when_follower_log_too_short),
        cmocka_unit_test(test_leader_ignores_stale_append_rejection),
        cmocka_unit_test(test_leader_follower_that_lost_its_log_is_probed_again),
        cmocka_unit_test(test_leader_commits_current_term_entry_on_majority_match),
        cmocka_unit_test(test_leader_does_not_commit_earlier_term_entry_by_counting_replicas),
        /* RequestVote RPC receiver */
        cmocka_unit_test(test_request_vote_rejects_term_below_current),
        cmocka_unit_test(test_request_vote_rejects_when_voted_for_another),
        cmocka_unit_test(test_request_vote_grants_again_to_same_candidate),
        cmocka_unit_test(test_request_vote_rejects_lower_last_term),
        cmocka_unit_test(test_request_vote_rejects_same_last_term_shorter_log),
        cmocka_unit_test(test_request_vote_grants_same_last_term_equal_log),
        cmocka_unit_test(test_request_vote_grants_same_last_term_longer_log),
        cmocka_unit_test(test_request_vote_grants_higher_last_term_shorter_log),
        cmocka_unit_test(test_request_vote_candidate_rejects_rival_of_same_term),
        /* AppendEntries RPC receiver */
        cmocka_unit_test(test_append_rejects_term_below_current),
        cmocka_unit_test(test_append_rejects_when_log_too_short),
        cmocka_unit_test(test_append_rejects_on_prev_term_mismatch),
        cmocka_unit_test(test_append_deletes_conflicting_entry_and_all_after),
        cmocka_unit_test(test_append_appends_only_new_entries),
        cmocka_unit_test(test_append_old_append_does_not_truncate_longer_log),
        cmocka_unit_test(test_append_commit_is_min_of_leader_commit_and_last_new_entry),
        cmocka_unit_test(test_append_rejected_append_does_not_advance_commit),
        /* Persistence ordering */
        cmocka_unit_test(test_persist_vote_reply_after_hard_state),
        cmocka_unit_test(test_persist_append_ack_after_entries),
        cmocka_unit_test(test_persist_vote_requests_after_term_and_self_vote),
        cmocka_unit_test(test_persist_leader_appends_sent_before_own_sync),
        cmocka_unit_test(test_persist_leader_counts_itself_only_after_advance),
        cmocka_unit_test(test_persist_single_voter_commits_only_after_own_sync),
        /* Input validation and restart */
        cmocka_unit_test(test_step_drops_message_for_another_node),
        cmocka_unit_test(test_step_drops_message_from_unknown_node_or_self),
        cmocka_unit_test(test_step_drops_message_of_unknown_type_or_without_term),
        cmocka_unit_test(test_step_drops_append_with_bad_entry_type_or_data),
        cmocka_unit_test(test_step_drops_append_with_non_consecutive_indexes),
        cmocka_unit_test(test_step_drops_append_with_term_above_message_term),
        cmocka_unit_test(test_propose_on_follower_returns_not_leader_with_leader_id),
        cmocka_unit_test(test_create_rejects_invalid_config),
        cmocka_unit_test(test_create_rejects_inconsistent_state),
        cmocka_unit_test(test_restart_keeps_term_and_vote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
