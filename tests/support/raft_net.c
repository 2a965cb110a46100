/* raft_net.c — see raft_net.h. */
#include "raft_net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void rn_free_msg(struct raft_msg *m)
{
    for (uint32_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}

static void rn_copy_entry(struct raft_entry *dst, const struct raft_entry *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len > 0) {
        dst->data = malloc(src->len);
        assert_non_null(dst->data);
        memcpy(dst->data, src->data, src->len);
    }
}

static void rn_enqueue(struct rn_net *net, const struct raft_msg *m)
{
    if (net->n_queue == net->cap_queue) {
        net->cap_queue = net->cap_queue ? net->cap_queue * 2 : 64;
        net->queue = realloc(net->queue, net->cap_queue * sizeof(*net->queue));
        assert_non_null(net->queue);
    }
    struct rn_msg *q = &net->queue[net->n_queue++];
    q->m = *m;
    q->m.entries = NULL;
    if (m->n_entries > 0) {
        q->m.entries = calloc(m->n_entries, sizeof(*m->entries));
        assert_non_null(q->m.entries);
        for (uint32_t i = 0; i < m->n_entries; i++)
            rn_copy_entry(&q->m.entries[i], &m->entries[i]);
    }
}

static void rn_default_config(struct rn_net *net, uint64_t id, struct raft_config *c)
{
    raft_config_default(c);
    c->id = id;
    c->n_voters = net->n;
    for (uint32_t i = 0; i < net->n; i++)
        c->voters[i] = i + 1;
    c->seed = id;
    if (net->tweak != NULL)
        net->tweak(c);
}

static void rn_start(struct rn_net *net, uint64_t id)
{
    struct rn_node *nd = rn_node(net, id);
    struct raft_config c;
    rn_default_config(net, id, &c);
    c.hard_state = nd->hs;
    c.snapshot_index = nd->snap_index;
    c.snapshot_term = nd->snap_term;
    c.entries = nd->log;
    c.n_entries = nd->n_log;
    c.applied = nd->applied;
    struct rk_errmsg err = {{0}};
    int rc = raft_create(&c, &nd->r, &err);
    if (rc != RK_OK)
        fail_msg("raft_create(%llu): %s: %s", (unsigned long long)id, rk_strerror(rc), err.text);
    nd->down = false;
}

void rn_init(struct rn_net *net, uint32_t n, void (*tweak)(struct raft_config *c))
{
    memset(net, 0, sizeof(*net));
    assert_true(n >= 1 && n <= RAFT_MAX_VOTERS);
    net->n = n;
    net->tweak = tweak;
    for (uint32_t i = 0; i < n; i++)
        rn_start(net, i + 1);
}

static void rn_free_disk(struct rn_node *nd)
{
    for (size_t i = 0; i < nd->n_log; i++)
        free(nd->log[i].data);
    free(nd->log);
    nd->log = NULL;
    nd->n_log = nd->cap_log = 0;
    nd->snap_index = nd->snap_term = 0;
}

/* Forgets the disk entries up to index (which may lie beyond the last: the log is then empty)
 * and records (index, term) as the snapshot point. */
static void rn_disk_compact(struct rn_node *nd, uint64_t index, uint64_t term)
{
    assert_true(index >= nd->snap_index);
    uint64_t drop = index - nd->snap_index;
    if (drop > nd->n_log)
        drop = nd->n_log;
    for (uint64_t i = 0; i < drop; i++)
        free(nd->log[i].data);
    memmove(nd->log, nd->log + drop, (size_t)(nd->n_log - drop) * sizeof(*nd->log));
    nd->n_log -= (size_t)drop;
    nd->snap_index = index;
    nd->snap_term = term;
}

void rn_destroy(struct rn_net *net)
{
    for (uint32_t i = 0; i < net->n; i++) {
        raft_destroy(net->nodes[i].r);
        rn_free_disk(&net->nodes[i]);
    }
    rn_drop_all(net);
    free(net->queue);
}

struct rn_node *rn_node(struct rn_net *net, uint64_t id)
{
    assert_true(id >= 1 && id <= net->n);
    return &net->nodes[id - 1];
}

struct raft *rn_raft(struct rn_net *net, uint64_t id)
{
    return rn_node(net, id)->r;
}

/* raft.c's raft_msg_needs_persist: a heartbeat reply promises nothing durable (issue 12). */
static bool rn_needs_persist(uint8_t type)
{
    return type == RAFT_MSG_VOTE || type == RAFT_MSG_VOTE_RESP || type == RAFT_MSG_APPEND_RESP;
}

static void rn_persist(struct rn_node *nd, const struct raft_ready *rd)
{
    if (rd->has_restore) {
        /* A truncation that goes with a restore lies after the snapshot point, so that the
         * host may compact and truncate in either order (log.h: truncate behind the snapshot
         * point is refused). */
        assert_true(rd->restore_index >= nd->snap_index);
        assert_true(rd->truncate_from == 0 || rd->truncate_from > rd->restore_index);
    }
    if (rd->truncate_from != 0) {
        assert_true(rd->truncate_from > nd->snap_index);
        size_t keep = (size_t)(rd->truncate_from - 1 - nd->snap_index);
        for (size_t i = keep; i < nd->n_log; i++)
            free(nd->log[i].data);
        if (keep < nd->n_log)
            nd->n_log = keep;
    }
    if (rd->has_restore)
        rn_disk_compact(nd, rd->restore_index, rd->restore_term);
    if (rd->n_entries > 0) {
        /* Entries must continue the durable log exactly (after the truncation). */
        assert_int_equal(rd->entries[0].index, nd->snap_index + nd->n_log + 1);
        if (nd->n_log + rd->n_entries > nd->cap_log) {
            nd->cap_log = (nd->n_log + rd->n_entries) * 2;
            nd->log = realloc(nd->log, nd->cap_log * sizeof(*nd->log));
            assert_non_null(nd->log);
        }
        for (size_t i = 0; i < rd->n_entries; i++)
            rn_copy_entry(&nd->log[nd->n_log++], &rd->entries[i]);
    }
    if (rd->has_hard_state)
        nd->hs = rd->hard_state;
    if (rd->has_hard_state || rd->n_entries > 0 || rd->truncate_from != 0 || rd->has_restore)
        nd->syncs++;
}

static void rn_check_after_persist(const struct rn_node *nd, const struct raft_msg *m)
{
    /* What the message promises is on the disk now. */
    assert_true(nd->hs.term >= m->term || m->type == RAFT_MSG_VOTE_RESP);
    if (m->type == RAFT_MSG_VOTE_RESP && !m->reject) {
        assert_int_equal(nd->hs.term, m->term);
        assert_int_equal(nd->hs.vote, m->to);
    }
    if (m->type == RAFT_MSG_VOTE) {
        assert_int_equal(nd->hs.term, m->term);
        assert_int_equal(nd->hs.vote, m->from);
    }
    if (m->type == RAFT_MSG_APPEND_RESP && !m->reject)
        assert_true(m->index <= nd->snap_index + nd->n_log);
}

static void rn_apply(struct rn_net *net, struct rn_node *nd, const struct raft_ready *rd)
{
    if (rd->has_restore) {
        /* The state machine is the snapshot: it holds everything up to restore_index. */
        assert_true(rd->restore_index <= RN_MAX_APPLIED);
        assert_true(rd->restore_index > nd->applied);
        for (uint64_t i = nd->applied + 1; i <= rd->restore_index; i++)
            nd->applied_term[i] = 0;
        nd->applied = rd->restore_index;
        nd->restores++;
    }
    for (size_t i = 0; i < rd->n_committed; i++) {
        const struct raft_entry *e = &rd->committed[i];
        assert_int_equal(e->index, nd->applied + 1);
        assert_true(e->index <= RN_MAX_APPLIED);
        nd->applied_term[e->index] = e->term;
        nd->applied = e->index;
        /* State Machine Safety: no other node applied a different entry here. */
        for (uint32_t j = 0; j < net->n; j++) {
            const struct rn_node *o = &net->nodes[j];
            if (o != nd && o->applied >= e->index && o->applied_term[e->index] != 0)
                assert_int_equal(o->applied_term[e->index], e->term);
        }
    }
    for (size_t i = 0; i < rd->n_read_states; i++) {
        assert_true(nd->n_reads < sizeof(nd->reads) / sizeof(nd->reads[0]));
        nd->reads[nd->n_reads++] = rd->read_states[i];
    }
}

void rn_process(struct rn_net *net, uint64_t id)
{
    struct rn_node *nd = rn_node(net, id);
    if (nd->down)
        return;
    for (int guard = 0; raft_has_ready(nd->r); guard++) {
        assert_true(guard < 1000);
        struct raft_ready rd;
        raft_ready(nd->r, &rd);
        for (size_t i = 0; i < rd.n_snapshot_needed; i++) {
            assert_true(rd.snapshot_needed[i] >= 1 && rd.snapshot_needed[i] <= net->n);
            nd->snapshot_requests[rd.snapshot_needed[i]]++;
        }
        for (size_t i = 0; i < rd.n_msgs; i++) {
            assert_false(rn_needs_persist(rd.msgs[i].type));
            rn_enqueue(net, &rd.msgs[i]);
        }
        rn_persist(nd, &rd);
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++) {
            assert_true(rn_needs_persist(rd.msgs_after_persist[i].type));
            rn_check_after_persist(nd, &rd.msgs_after_persist[i]);
            rn_enqueue(net, &rd.msgs_after_persist[i]);
        }
        rn_apply(net, nd, &rd);
        raft_advance(nd->r, &rd);
        struct raft_status st;
        raft_status(nd->r, &st);
        if (st.role == RAFT_LEADER && st.term < 4096) {
            uint64_t *l = &net->leader_of_term[st.term];
            /* Election Safety: at most one leader per term. */
            assert_true(*l == 0 || *l == id);
            *l = id;
        }
        raft_check_invariants(nd->r);
    }
}

void rn_process_all(struct rn_net *net)
{
    for (uint32_t i = 0; i < net->n; i++)
        rn_process(net, i + 1);
}

void rn_deliver_at(struct rn_net *net, size_t i)
{
    assert_true(i < net->n_queue);
    struct raft_msg m = net->queue[i].m;
    memmove(&net->queue[i], &net->queue[i + 1], (net->n_queue - i - 1) * sizeof(*net->queue));
    net->n_queue--;
    bool deliver = m.to >= 1 && m.to <= net->n && !rn_node(net, m.to)->down &&
                   !net->cut[m.from][m.to] && (net->filter == NULL || net->filter(net, &m));
    if (deliver) {
        net->delivered[m.type]++;
        raft_step(rn_raft(net, m.to), &m);
        rn_process(net, m.to);
    }
    rn_free_msg(&m);
}

void rn_deliver_all(struct rn_net *net)
{
    for (int guard = 0; net->n_queue > 0; guard++) {
        assert_true(guard < 10000000);
        rn_deliver_at(net, 0);
    }
}

void rn_drop_all(struct rn_net *net)
{
    for (size_t i = 0; i < net->n_queue; i++)
        rn_free_msg(&net->queue[i].m);
    net->n_queue = 0;
}

void rn_tick(struct rn_net *net, uint64_t id)
{
    struct rn_node *nd = rn_node(net, id);
    if (nd->down)
        return;
    raft_tick(nd->r);
    rn_process(net, id);
}

void rn_tick_all(struct rn_net *net)
{
    for (uint32_t i = 0; i < net->n; i++)
        rn_tick(net, i + 1);
}

void rn_run(struct rn_net *net, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++) {
        rn_tick_all(net);
        rn_deliver_all(net);
    }
}

void rn_campaign(struct rn_net *net, uint64_t id)
{
    raft_campaign(rn_raft(net, id));
    rn_process(net, id);
    rn_deliver_all(net);
}

uint64_t rn_leader(struct rn_net *net)
{
    uint64_t best = 0, best_term = 0;
    for (uint32_t i = 0; i < net->n; i++) {
        if (net->nodes[i].down)
            continue;
        struct raft_status st;
        raft_status(net->nodes[i].r, &st);
        if (st.role == RAFT_LEADER && st.term >= best_term) {
            best = i + 1;
            best_term = st.term;
        }
    }
    return best;
}

void rn_elect(struct rn_net *net, uint64_t id)
{
    rn_campaign(net, id);
    struct raft_status st;
    raft_status(rn_raft(net, id), &st);
    assert_int_equal(st.role, RAFT_LEADER);
}

int rn_propose(struct rn_net *net, uint64_t id, const char *s)
{
    uint64_t index = 0, leader = 0;
    int rc =
        raft_propose(rn_raft(net, id), (const uint8_t *)s, (uint32_t)strlen(s), &index, &leader);
    rn_process(net, id);
    return rc;
}

void rn_isolate(struct rn_net *net, uint64_t id)
{
    for (uint32_t i = 1; i <= net->n; i++) {
        if (i != id)
            rn_cut(net, id, i);
    }
}

void rn_cut(struct rn_net *net, uint64_t a, uint64_t b)
{
    net->cut[a][b] = true;
    net->cut[b][a] = true;
}

void rn_heal(struct rn_net *net)
{
    memset(net->cut, 0, sizeof(net->cut));
}

void rn_crash(struct rn_net *net, uint64_t id)
{
    struct rn_node *nd = rn_node(net, id);
    raft_destroy(nd->r);
    nd->r = NULL;
    nd->down = true;
}

void rn_restart(struct rn_net *net, uint64_t id)
{
    struct rn_node *nd = rn_node(net, id);
    assert_true(nd->down);
    rn_start(net, id);
}

void rn_drop_at(struct rn_net *net, size_t i)
{
    assert_true(i < net->n_queue);
    rn_free_msg(&net->queue[i].m);
    memmove(&net->queue[i], &net->queue[i + 1], (net->n_queue - i - 1) * sizeof(*net->queue));
    net->n_queue--;
}

void rn_duplicate_at(struct rn_net *net, size_t i)
{
    assert_true(i < net->n_queue);
    struct raft_msg m = net->queue[i].m; /* rn_enqueue may move the queue */
    rn_enqueue(net, &m);
}

void rn_load(struct rn_net *net, uint64_t id, const struct raft_hard_state *hs,
             const struct raft_entry *entries, size_t n_entries)
{
    struct rn_node *nd = rn_node(net, id);
    raft_destroy(nd->r);
    nd->r = NULL;
    rn_free_disk(nd);
    nd->log = calloc(n_entries > 0 ? n_entries : 1, sizeof(*nd->log));
    assert_non_null(nd->log);
    nd->cap_log = n_entries > 0 ? n_entries : 1;
    for (size_t i = 0; i < n_entries; i++) {
        assert_int_equal(entries[i].index, i + 1);
        rn_copy_entry(&nd->log[nd->n_log++], &entries[i]);
    }
    nd->hs = *hs;
    nd->applied = 0;
    nd->n_reads = 0;
    rn_start(net, id);
}

int rn_compact(struct rn_net *net, uint64_t id, uint64_t index)
{
    struct rn_node *nd = rn_node(net, id);
    int rc = raft_compact(nd->r, index);
    if (rc != RK_OK)
        return rc;
    struct raft_status st;
    raft_status(nd->r, &st);
    if (st.snapshot_index > nd->snap_index)
        rn_disk_compact(nd, st.snapshot_index, st.snapshot_term);
    return RK_OK;
}

size_t rn_count(const struct rn_net *net, uint8_t type, uint64_t from)
{
    size_t n = 0;
    for (size_t i = 0; i < net->n_queue; i++) {
        const struct raft_msg *m = &net->queue[i].m;
        if ((type == 0 || m->type == type) && (from == 0 || m->from == from))
            n++;
    }
    return n;
}

void rn_check_consistency(struct rn_net *net)
{
    for (uint32_t a = 0; a < net->n; a++) {
        if (net->nodes[a].down)
            continue;
        for (uint32_t b = a + 1; b < net->n; b++) {
            if (net->nodes[b].down)
                continue;
            struct raft *ra = net->nodes[a].r, *rb = net->nodes[b].r;
            struct raft_status sa, sb;
            raft_status(ra, &sa);
            raft_status(rb, &sb);
            uint64_t upto = sa.commit < sb.commit ? sa.commit : sb.commit;
            uint64_t from =
                sa.snapshot_index > sb.snapshot_index ? sa.snapshot_index : sb.snapshot_index;
            for (uint64_t i = from + 1; i <= upto; i++) {
                const struct raft_entry *ea = raft_entry_at(ra, i), *eb = raft_entry_at(rb, i);
                assert_non_null(ea);
                assert_non_null(eb);
                assert_int_equal(ea->term, eb->term);
                assert_int_equal(ea->len, eb->len);
                if (ea->len > 0)
                    assert_memory_equal(ea->data, eb->data, ea->len);
            }
        }
    }
}
