/*
 * raft.c — the Raft consensus state machine. See raft.h for the API, the ready/advance
 * contract, the invariants I1–I5 and the role diagram.
 *
 * Reading guide, in Figure 2 order:
 *   "Rules for Servers / All Servers"  raft_step (term checks), apply via ready/advance
 *   "Followers"                         tick_election, step_follower
 *   "Candidates"                        campaign, become_candidate, step_candidate
 *   "Leaders"                           become_leader, bcast_heartbeat, send_append,
 *                                       step_leader, maybe_commit
 *   "RequestVote RPC receiver"          handle_vote_request
 *   "AppendEntries RPC receiver"        handle_append
 *
 * Memory: the log holds every entry after the snapshot, each with its own data buffer. Outgoing
 * APPEND messages carry shallow copies of entries; buffers of entries removed from the log are
 * kept on a garbage list until raft_advance() so that messages in the current batch stay valid.
 */
#include "raft.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/assert.h"

#define RAFT_MAX_PENDING_READS 65536u

struct raft_progress {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    bool replicating;     /* false: probe, one append at a time until the follower matches */
    bool snapshotting;    /* its next entry was compacted away: the host sends a snapshot */
    bool probe_sent;      /* probe: an append is outstanding, wait for its answer */
    bool recent_active;   /* heard from since the last CheckQuorum round */
    uint64_t read_ack;    /* highest read round (heartbeat ctx) acknowledged in this term */
    uint64_t commit_sent; /* highest commit index told to this follower */
    uint32_t n_inflight;  /* appends in flight: a ring of their last indexes */
    uint32_t inflight_head;
    uint64_t *inflight; /* cfg.max_inflight slots */
};

struct raft_pending_read {
    uint64_t ctx;
    uint64_t from;  /* node that asked: self or a follower */
    uint64_t index; /* commit index when the round started */
    uint64_t seq;   /* heartbeat round that confirms it; 0: held until the no-op commits */
};

struct raft_msg_vec {
    struct raft_msg *v;
    size_t n;
    size_t cap;
};

struct raft {
    struct raft_config cfg;
    const struct rk_alloc *alloc;
    struct rk_prng prng;
    /* The configuration in use: the latest in the log (conf_index, 0 if none is in the log),
     * else snap_conf, the one as of snap_index (thesis §4.1: "a server always uses the latest
     * configuration in its log, regardless of whether the entry is committed"). */
    struct raft_conf conf;
    uint64_t conf_index;
    uint64_t conf_version; /* bumped whenever conf or conf_index changes (raft_conf_version) */
    struct raft_conf snap_conf;
    uint32_t self_idx; /* position of self among the members; UINT32_MAX: not a member */
    bool self_voter;
    uint32_t quorum; /* majority of conf's voters */

    /* Persistent state on all servers (Figure 2). */
    uint64_t term;
    uint64_t vote;

    /* Volatile state. */
    enum raft_role role;
    uint64_t leader;
    uint64_t commit;
    uint64_t applied;

    /* The log: ents[i].index == snap_index + 1 + i. */
    struct raft_entry *ents;
    size_t n_ents;
    size_t cap_ents;
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t persisted;     /* entries up to here are durable in the host's storage */
    uint64_t written;       /* entries up to here were handed to the host (>= persisted) */
    uint64_t ent_bytes;     /* data bytes of the entries held in memory (compaction by bytes) */
    uint64_t truncate_from; /* durable entries from here on must be deleted; 0: none */

    /* Timers, in ticks. */
    uint32_t election_elapsed;
    uint64_t hs_durable_term; /* the highest term whose hard state the host made durable */
    uint32_t heartbeat_elapsed;
    uint32_t election_timeout; /* randomized in [min, max] at every reset */

    /* Candidates and pre-candidates: bit i set = voter i answered. */
    uint32_t granted;
    uint32_t rejected;

    /* Leaders: progress by member position (conf's voters, then its learners); every slot
     * owns an inflight buffer, members or not. */
    struct raft_progress prs[RAFT_MAX_MEMBERS];
    uint64_t transfer_target;
    /* A lost promise being resolved (raft_config.promised_index): the node stays out of
     * elections until its commit index reaches an entry of this term (0: none pending). */
    uint64_t promise_term;
    /* Voters seen asking for a vote or pre-vote with an empty log (bit per voter index): a
     * node whose promise is unknown and whose log is empty knows it promised nothing once every
     * other voter has shown an empty log too (a new cluster: raft_check_fresh). */
    uint32_t fresh_seen;
    uint32_t transfer_elapsed;
    struct raft_pending_read *reads;
    size_t n_reads;
    size_t cap_reads;
    uint64_t read_seq;       /* last read round started */
    uint64_t read_sent;      /* last read round a heartbeat carried (0: none in this term) */
    bool read_round_pending; /* a heartbeat round is owed for reads registered since */
    /* Work deferred to raft_ready so that one batch of proposals and commit advances goes out
     * as one APPEND per follower (batching, group commit). */
    bool append_pending;
    bool commit_pending;

    /* Outputs accumulated for the next ready batch. */
    struct raft_msg_vec msgs;
    uint64_t *snap_needed; /* followers to send a snapshot to, for the next ready */
    size_t n_snap_needed;
    size_t cap_snap_needed;
    bool restore_pending; /* raft_restore ran: the next ready tells the host */
    struct raft_msg_vec msgs_after;
    struct raft_read_state *read_states;
    size_t n_read_states;
    size_t cap_read_states;
    struct raft_hard_state prev_hs; /* last hard state handed out */
    uint8_t **garbage;              /* data buffers to free at advance */
    size_t n_garbage;
    size_t cap_garbage;
    bool in_ready; /* between raft_ready and raft_advance */

    struct raft_counters counters;
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */

/* Unused when RK_ASSERT_SLOW is compiled out. */
static bool raft_invariants_hold_since(const struct raft *r, uint64_t from) __attribute__((unused));

static void raft_logf(const struct raft *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void raft_logf(const struct raft *r, int level, const char *fmt, ...)
{
    if (r->cfg.logger.fn == NULL)
        return;
    char text[256];
    int n = snprintf(text, sizeof(text), "raft %llu term %llu %s: ", (unsigned long long)r->cfg.id,
                     (unsigned long long)r->term, raft_role_name(r->role));
    if (n < 0 || (size_t)n >= sizeof(text))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    r->cfg.logger.fn(r->cfg.logger.ctx, level, text);
}

const char *raft_role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    }
    return "unknown";
}

const char *raft_msg_type_name(int type)
{
    static const char *const names[RAFT_MSG_TYPE_COUNT] = {
        [RAFT_MSG_PRE_VOTE] = "pre_vote",
        [RAFT_MSG_PRE_VOTE_RESP] = "pre_vote_resp",
        [RAFT_MSG_VOTE] = "vote",
        [RAFT_MSG_VOTE_RESP] = "vote_resp",
        [RAFT_MSG_APPEND] = "append",
        [RAFT_MSG_APPEND_RESP] = "append_resp",
        [RAFT_MSG_HEARTBEAT] = "heartbeat",
        [RAFT_MSG_HEARTBEAT_RESP] = "heartbeat_resp",
        [RAFT_MSG_TIMEOUT_NOW] = "timeout_now",
        [RAFT_MSG_READ_INDEX] = "read_index",
        [RAFT_MSG_READ_INDEX_RESP] = "read_index_resp",
    };
    if (type <= 0 || type >= RAFT_MSG_TYPE_COUNT)
        return "unknown";
    return names[type];
}

static uint64_t raft_last_index(const struct raft *r)
{
    return r->snap_index + r->n_ents;
}

static uint64_t raft_last_term(const struct raft *r)
{
    return r->n_ents == 0 ? r->snap_term : r->ents[r->n_ents - 1].term;
}

uint64_t raft_term_at(const struct raft *r, uint64_t index)
{
    if (index == r->snap_index)
        return r->snap_term;
    if (index < r->snap_index || index > raft_last_index(r))
        return 0;
    return r->ents[index - r->snap_index - 1].term;
}

const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index)
{
    if (index <= r->snap_index || index > raft_last_index(r))
        return NULL;
    return &r->ents[index - r->snap_index - 1];
}

static uint32_t raft_n_members(const struct raft *r)
{
    return r->conf.n_voters + r->conf.n_learners;
}

static uint64_t raft_member_id(const struct raft *r, uint32_t i)
{
    return i < r->conf.n_voters ? r->conf.voters[i] : r->conf.learners[i - r->conf.n_voters];
}

/* Position of id among the members (voters first); UINT32_MAX if it is none. */
static uint32_t raft_member_idx(const struct raft *r, uint64_t id)
{
    for (uint32_t i = 0; i < raft_n_members(r); i++) {
        if (raft_member_id(r, i) == id)
            return i;
    }
    return UINT32_MAX;
}

static bool raft_is_voter_idx(const struct raft *r, uint32_t i)
{
    return i < r->conf.n_voters;
}

static uint32_t raft_popcount(uint32_t x)
{
    return (uint32_t)__builtin_popcount(x);
}

/* ------------------------------------------------------------------------------------------ */
/* Configurations (thesis ch. 4; core/raft/MEMBERSHIP.md)                                     */

static bool raft_ids_have(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id)
            return true;
    }
    return false;
}

bool raft_conf_is_voter(const struct raft_conf *c, uint64_t id)
{
    return raft_ids_have(c->voters, c->n_voters, id);
}

bool raft_conf_is_learner(const struct raft_conf *c, uint64_t id)
{
    return raft_ids_have(c->learners, c->n_learners, id);
}

bool raft_addr_valid(const char *s)
{
    size_t i = 0;
    for (; i < RAFT_ADDR_MAX && s[i] != '\0'; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return i < RAFT_ADDR_MAX;
}

const struct raft_member_addr *raft_conf_addr(const struct raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n_addrs && i < RAFT_MAX_MEMBERS; i++) {
        if (c->addrs[i].id == id)
            return &c->addrs[i];
    }
    return NULL;
}

int raft_conf_set_addr(struct raft_conf *c, const struct raft_member_addr *a)
{
    if (!raft_conf_is_voter(c, a->id) && !raft_conf_is_learner(c, a->id))
        return RK_EINVAL;
    if (!raft_addr_valid(a->peer) || !raft_addr_valid(a->client))
        return RK_EINVAL;
    uint32_t i = 0;
    while (i < c->n_addrs && c->addrs[i].id != a->id)
        i++;
    if (a->peer[0] == '\0' && a->client[0] == '\0') {
        if (i < c->n_addrs) {
            memmove(c->addrs + i, c->addrs + i + 1, (c->n_addrs - i - 1) * sizeof(*c->addrs));
            c->n_addrs--;
        }
        return RK_OK;
    }
    if (i == c->n_addrs) {
        if (c->n_addrs == RAFT_MAX_MEMBERS)
            return RK_EINVAL; /* unreachable: one per member at most */
        c->n_addrs++;
    }
    memset(&c->addrs[i], 0, sizeof(c->addrs[i]));
    c->addrs[i].id = a->id;
    memcpy(c->addrs[i].peer, a->peer, strlen(a->peer));
    memcpy(c->addrs[i].client, a->client, strlen(a->client));
    return RK_OK;
}

/* Ids >= 1, none twice across both lists, the lists within their bounds; addresses of members,
 * none twice, well-formed, not both empty. */
static bool raft_conf_valid(const struct raft_conf *c)
{
    if (c->n_voters > RAFT_MAX_VOTERS || c->n_learners > RAFT_MAX_LEARNERS ||
        c->n_addrs > c->n_voters + c->n_learners)
        return false;
    for (uint32_t i = 0; i < c->n_addrs; i++) {
        const struct raft_member_addr *a = &c->addrs[i];
        if (raft_conf_addr(c, a->id) != a || !raft_addr_valid(a->peer) ||
            !raft_addr_valid(a->client) || (a->peer[0] == '\0' && a->client[0] == '\0') ||
            (!raft_ids_have(c->voters, c->n_voters, a->id) &&
             !raft_ids_have(c->learners, c->n_learners, a->id)))
            return false;
    }
    for (uint32_t i = 0; i < c->n_voters; i++) {
        if (c->voters[i] == RAFT_NONE || raft_ids_have(c->voters, i, c->voters[i]))
            return false;
    }
    for (uint32_t i = 0; i < c->n_learners; i++) {
        if (c->learners[i] == RAFT_NONE || raft_ids_have(c->learners, i, c->learners[i]) ||
            raft_conf_is_voter(c, c->learners[i]))
            return false;
    }
    return true;
}

size_t raft_conf_encoded_size(const struct raft_conf *c)
{
    size_t size = 3 + 8 * (size_t)(c->n_voters + c->n_learners);
    if (c->n_addrs == 0)
        return size; /* version 1 */
    size += 1;
    for (uint32_t i = 0; i < c->n_addrs; i++)
        size += 8 + 2 + strlen(c->addrs[i].peer) + strlen(c->addrs[i].client);
    return size;
}

static void raft_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t raft_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static size_t raft_put_str(uint8_t *p, const char *s)
{
    size_t len = strlen(s);
    p[0] = (uint8_t)len;
    memcpy(p + 1, s, len);
    return 1 + len;
}

size_t raft_conf_encode(const struct raft_conf *c, uint8_t *out)
{
    RK_ASSERT(raft_conf_valid(c));
    out[0] = c->n_addrs == 0 ? 1 : 2;
    out[1] = (uint8_t)c->n_voters;
    out[2] = (uint8_t)c->n_learners;
    size_t at = 3;
    for (uint32_t i = 0; i < c->n_voters; i++, at += 8)
        raft_put_u64(out + at, c->voters[i]);
    for (uint32_t i = 0; i < c->n_learners; i++, at += 8)
        raft_put_u64(out + at, c->learners[i]);
    if (c->n_addrs > 0) {
        out[at++] = (uint8_t)c->n_addrs;
        for (uint32_t i = 0; i < c->n_addrs; i++) {
            raft_put_u64(out + at, c->addrs[i].id);
            at += 8;
            at += raft_put_str(out + at, c->addrs[i].peer);
            at += raft_put_str(out + at, c->addrs[i].client);
        }
    }
    RK_ASSERT(at == raft_conf_encoded_size(c));
    return at;
}

/* Reads a length-prefixed address at *at into s; false if it runs past len, is too long or
 * holds a NUL (found by the codec fuzz target). */
static bool raft_get_str(const uint8_t *data, size_t len, size_t *at, char *s)
{
    if (*at >= len || data[*at] >= RAFT_ADDR_MAX || len - *at - 1 < data[*at])
        return false;
    size_t n = data[*at];
    if (memchr(data + *at + 1, '\0', n) != NULL)
        return false; /* a NUL inside: the address would not re-encode to these bytes */
    memcpy(s, data + *at + 1, n);
    s[n] = '\0';
    *at += 1 + n;
    return true;
}

int raft_conf_decode(const uint8_t *data, size_t len, struct raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    if (len < 3 || data == NULL || (data[0] != 1 && data[0] != 2) || data[1] > RAFT_MAX_VOTERS ||
        data[2] > RAFT_MAX_LEARNERS || data[1] == 0)
        return RK_EMALFORMED;
    c->n_voters = data[1];
    c->n_learners = data[2];
    size_t at = 3 + 8 * (size_t)(c->n_voters + c->n_learners);
    if (data[0] == 1 ? len != at : len <= at)
        return RK_EMALFORMED;
    at = 3;
    for (uint32_t i = 0; i < c->n_voters; i++, at += 8)
        c->voters[i] = raft_get_u64(data + at);
    for (uint32_t i = 0; i < c->n_learners; i++, at += 8)
        c->learners[i] = raft_get_u64(data + at);
    if (data[0] == 2) {
        /* Version 2 has at least one address (none is written as version 1). */
        uint32_t n = data[at++];
        if (n == 0 || n > c->n_voters + c->n_learners)
            return RK_EMALFORMED;
        for (uint32_t i = 0; i < n; i++) {
            struct raft_member_addr *a = &c->addrs[i];
            if (len - at < 8)
                return RK_EMALFORMED;
            a->id = raft_get_u64(data + at);
            at += 8;
            if (!raft_get_str(data, len, &at, a->peer) || !raft_get_str(data, len, &at, a->client))
                return RK_EMALFORMED;
        }
        c->n_addrs = n;
        if (at != len)
            return RK_EMALFORMED;
    }
    return raft_conf_valid(c) ? RK_OK : RK_EMALFORMED;
}

static void raft_progress_reset(struct raft *r, struct raft_progress *pr);

/* Makes c the configuration in use (defined by the entry at index; 0: snapshot/bootstrap). The
 * progress of members that stay is kept, by id; a new member starts probing at the last entry
 * (the configuration entry itself on a leader). Vote tallies are by position: a candidate
 * whose configuration changes under it starts its tally again from its own vote. */
static void raft_conf_use(struct raft *r, const struct raft_conf *c, uint64_t index)
{
    struct raft_progress old[RAFT_MAX_MEMBERS];
    memcpy(old, r->prs, sizeof(old));
    uint32_t n_old = raft_n_members(r);
    bool taken[RAFT_MAX_MEMBERS] = {false};
    r->conf = *c;
    r->conf_index = index;
    r->conf_version++;
    uint32_t n = raft_n_members(r);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = raft_member_id(r, i);
        uint32_t k = 0;
        while (k < n_old && (taken[k] || old[k].id != id))
            k++;
        if (k < n_old) {
            r->prs[i] = old[k];
            taken[k] = true;
        } else {
            r->prs[i].inflight = NULL;
        }
    }
    /* Hand the buffers of the slots left over to the new members, then to the unused slots. */
    uint32_t k = 0;
    for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
        if (i < n && r->prs[i].inflight != NULL)
            continue;
        while (k < RAFT_MAX_MEMBERS && taken[k])
            k++;
        RK_ASSERT(k < RAFT_MAX_MEMBERS);
        uint64_t *buf = old[k].inflight;
        taken[k] = true;
        memset(&r->prs[i], 0, sizeof(r->prs[i]));
        r->prs[i].inflight = buf;
        if (i < n) {
            r->prs[i].id = raft_member_id(r, i);
            raft_progress_reset(r, &r->prs[i]);
            if (r->prs[i].next > 1)
                r->prs[i].next--; /* probe from the last entry: a reject moves it back */
        }
    }
    r->self_idx = raft_member_idx(r, r->cfg.id);
    r->self_voter = raft_conf_is_voter(c, r->cfg.id);
    r->quorum = c->n_voters / 2 + 1;
    r->fresh_seen = 0;
    if (r->role == RAFT_PRE_CANDIDATE || r->role == RAFT_CANDIDATE) {
        r->granted = r->self_voter ? 1u << r->self_idx : 0;
        r->rejected = 0;
    }
}

/* The configuration as of index (snap_index <= index <= last): the latest entry at or before
 * it, else snap_conf. */
static void raft_conf_as_of(const struct raft *r, uint64_t index, struct raft_conf *c, uint64_t *at)
{
    for (uint64_t i = index; i > r->snap_index; i--) {
        const struct raft_entry *e = &r->ents[i - r->snap_index - 1];
        if (e->type == RAFT_ENTRY_CONF) {
            int rc = raft_conf_decode(e->data, e->len, c);
            RK_ASSERT(rc == RK_OK); /* checked on the way in */
            *at = i;
            return;
        }
    }
    *c = r->snap_conf;
    *at = 0;
}

int raft_conf_at(const struct raft *r, uint64_t index, struct raft_conf *c)
{
    uint64_t last = r->snap_index + r->n_ents;
    if (index < r->snap_index || index > last)
        return RK_EINVAL;
    uint64_t at;
    raft_conf_as_of(r, index, c, &at);
    return RK_OK;
}

void raft_conf_current(const struct raft *r, struct raft_conf *c, uint64_t *index)
{
    *c = r->conf;
    if (index != NULL)
        *index = r->conf_index;
}

const struct raft_conf *raft_conf_view(const struct raft *r)
{
    return &r->conf;
}

uint64_t raft_conf_version(const struct raft *r)
{
    return r->conf_version;
}

/* The log changed at its end (a truncation, a snapshot): use its latest configuration again. */
static void raft_conf_reload(struct raft *r)
{
    struct raft_conf c;
    uint64_t at;
    raft_conf_as_of(r, r->snap_index + r->n_ents, &c, &at);
    raft_conf_use(r, &c, at);
}

/* ------------------------------------------------------------------------------------------ */
/* The log                                                                                    */

/* Removes entries with index >= from. Their buffers are freed at advance (messages in this
 * batch may point at them). Durable ones become a truncation in the next ready. */
static void raft_log_truncate(struct raft *r, uint64_t from)
{
    RK_ASSERT(from > r->commit); /* Figure 2 safety: committed entries are never removed */
    RK_ASSERT(from > r->snap_index);
    uint64_t last = raft_last_index(r);
    if (from > last)
        return;
    for (uint64_t i = from; i <= last; i++) {
        struct raft_entry *e = &r->ents[i - r->snap_index - 1];
        r->ent_bytes -= e->len;
        if (e->data == NULL)
            continue;
        if (rk_grow(r->alloc, (void **)&r->garbage, &r->cap_garbage, r->n_garbage + 1,
                    sizeof(*r->garbage)))
            r->garbage[r->n_garbage++] = e->data;
        /* else: the buffer leaks rather than dangle. Only reachable when out of memory. */
        e->data = NULL;
    }
    r->n_ents = (size_t)(from - r->snap_index - 1);
    if (from <= r->persisted)
        r->persisted = from - 1;
    if (from <= r->written) {
        /* Handed to the host: maybe durable already, or on its way there. */
        r->written = from - 1;
        if (r->truncate_from == 0 || from < r->truncate_from)
            r->truncate_from = from;
    }
    /* Thesis §4.1: a configuration entry that is cut takes its configuration with it. */
    if (from <= r->conf_index)
        raft_conf_reload(r);
}

/* Appends one entry whose data buffer (or NULL) it takes. */
static int raft_log_append_owned(struct raft *r, uint64_t term, uint8_t type, uint8_t *data,
                                 uint32_t len)
{
    RK_ASSERT(term >= raft_last_term(r));
    if (!rk_grow(r->alloc, (void **)&r->ents, &r->cap_ents, r->n_ents + 1, sizeof(*r->ents)))
        return RK_ENOMEM;
    struct raft_entry *e = &r->ents[r->n_ents++];
    e->term = term;
    e->index = raft_last_index(r);
    e->type = type;
    e->len = len;
    e->data = data;
    r->ent_bytes += len;
    if (type == RAFT_ENTRY_CONF) {
        /* Used at once, committed or not (thesis §4.1). Checked on the way in: local proposals
         * encode it, peers' entries pass raft_append_well_formed, loaded ones the validation. */
        struct raft_conf c;
        int rc = raft_conf_decode(data, len, &c);
        RK_ASSERT(rc == RK_OK);
        raft_conf_use(r, &c, e->index);
    }
    return RK_OK;
}

/* Appends one entry, copying its data. */
static int raft_log_append(struct raft *r, uint64_t term, uint8_t type, const uint8_t *data,
                           uint32_t len)
{
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = rk_malloc(r->alloc, len);
        if (copy == NULL)
            return RK_ENOMEM;
        memcpy(copy, data, len);
    }
    int rc = raft_log_append_owned(r, term, type, copy, len);
    if (rc != RK_OK)
        rk_free(r->alloc, copy);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Outbox                                                                                     */

/* Messages that promise something durable leave only after the ready's sync: a vote request
 * (our new term and self-vote), a vote reply (the vote), an append reply (the entries it
 * acknowledges). Everything else may be sent at once, a heartbeat reply too (etcd raft's
 * AsyncStorageWrites sends MsgHeartbeatResp at once as well): it acknowledges no entry and no
 * vote, only that this node has not moved past the leader's term (which ReadIndex and
 * CheckQuorum need, and which holds when it is sent, durable or not: a vote is never cast
 * without its own sync). Held behind the log writes before it, it would wait for them: behind
 * a 60 MiB entry's write and sync (0.4 s here), long enough for the leader's CheckQuorum to
 * step down and for an election, on every big value (issue 12). */
static bool raft_msg_needs_persist(uint8_t type)
{
    return type == RAFT_MSG_VOTE || type == RAFT_MSG_VOTE_RESP || type == RAFT_MSG_APPEND_RESP;
}

/* Queues m (copied; its entries array too). Out of memory, the message is dropped: Raft
 * tolerates message loss, so this is a lost message, never a broken invariant. */
static void raft_send(struct raft *r, struct raft_msg *m)
{
    m->from = r->cfg.id;
    if (m->term == 0)
        m->term = r->term;
    struct raft_msg_vec *q = raft_msg_needs_persist(m->type) ? &r->msgs_after : &r->msgs;
    if (!rk_grow(r->alloc, (void **)&q->v, &q->cap, q->n + 1, sizeof(*q->v)))
        goto err_drop;
    struct raft_msg *slot = &q->v[q->n];
    *slot = *m;
    if (m->n_entries > 0) {
        slot->entries = rk_malloc(r->alloc, m->n_entries * sizeof(*m->entries));
        if (slot->entries == NULL)
            goto err_drop;
        memcpy(slot->entries, m->entries, m->n_entries * sizeof(*m->entries));
    } else {
        slot->entries = NULL;
    }
    q->n++;
    return;
err_drop:
    r->counters.msgs_dropped++;
}

static void raft_msg_vec_clear(struct raft *r, struct raft_msg_vec *q)
{
    for (size_t i = 0; i < q->n; i++)
        rk_free(r->alloc, q->v[i].entries);
    q->n = 0;
}

static void raft_push_read_state(struct raft *r, uint64_t ctx, uint64_t index)
{
    if (!rk_grow(r->alloc, (void **)&r->read_states, &r->cap_read_states, r->n_read_states + 1,
                 sizeof(*r->read_states)))
        return; /* lost like a message: the host times the read out */
    r->read_states[r->n_read_states].ctx = ctx;
    r->read_states[r->n_read_states].index = index;
    r->n_read_states++;
}

/* ------------------------------------------------------------------------------------------ */
/* Role transitions                                                                           */

static void raft_reset_election_timer(struct raft *r)
{
    r->election_elapsed = 0;
    r->election_timeout =
        (uint32_t)rk_prng_range(&r->prng, r->cfg.election_ticks_min, r->cfg.election_ticks_max);
}

/* Sets the role, asserting the legal transitions of the diagram in raft.h. */
static void raft_set_role(struct raft *r, enum raft_role to)
{
    switch (to) {
    case RAFT_FOLLOWER:
        break; /* reachable from every role */
    case RAFT_PRE_CANDIDATE:
        RK_ASSERT(r->role != RAFT_LEADER);
        break;
    case RAFT_CANDIDATE:
        RK_ASSERT(r->role != RAFT_LEADER);
        break;
    case RAFT_LEADER:
        RK_ASSERT(r->role == RAFT_CANDIDATE);
        break;
    }
    r->role = to;
}

static void raft_drop_reads(struct raft *r)
{
    r->n_reads = 0;
    r->read_round_pending = false;
    r->read_sent = 0;
}

/* Figure 2: "If RPC request or response contains term T > currentTerm: set currentTerm = T,
 * convert to follower". Also used for a same-term leader discovered by a candidate. */
static void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
    RK_ASSERT(term >= r->term);
    if (term > r->term) {
        r->term = term;
        r->vote = RAFT_NONE; /* I4 */
    }
    if (r->role == RAFT_LEADER)
        raft_drop_reads(r);
    raft_set_role(r, RAFT_FOLLOWER);
    r->leader = leader;
    r->transfer_target = RAFT_NONE;
    raft_reset_election_timer(r);
}

static void raft_send_vote_requests(struct raft *r, uint8_t type, uint64_t term, bool transfer)
{
    for (uint32_t i = 0; i < r->conf.n_voters; i++) {
        if (i == r->self_idx)
            continue;
        struct raft_msg m = {
            .type = type,
            .to = r->conf.voters[i],
            .term = term,
            .log_index = raft_last_index(r),
            .log_term = raft_last_term(r),
            .transfer = transfer,
        };
        raft_send(r, &m);
    }
}

static void raft_become_leader(struct raft *r);

/* Figure 2 Candidates: "increment currentTerm, vote for self, reset election timer, send
 * RequestVote RPCs to all other servers". */
static void raft_become_candidate(struct raft *r, bool transfer)
{
    raft_set_role(r, RAFT_CANDIDATE);
    r->term++;
    r->vote = r->cfg.id;
    r->leader = RAFT_NONE;
    r->granted = 1u << r->self_idx;
    r->rejected = 0;
    raft_reset_election_timer(r);
    r->counters.elections++;
    raft_logf(r, 6, "starting election at last index %llu term %llu",
              (unsigned long long)raft_last_index(r), (unsigned long long)raft_last_term(r));
    if (raft_popcount(r->granted) >= r->quorum) {
        raft_become_leader(r);
        return;
    }
    raft_send_vote_requests(r, RAFT_MSG_VOTE, r->term, transfer);
}

/* Thesis §9.6: ask first whether a majority would vote for us in term + 1, without changing
 * our term, so that a node that cannot win does not disrupt the cluster. */
static void raft_become_pre_candidate(struct raft *r)
{
    raft_set_role(r, RAFT_PRE_CANDIDATE);
    r->leader = RAFT_NONE;
    r->granted = 1u << r->self_idx;
    r->rejected = 0;
    raft_reset_election_timer(r);
    r->counters.elections++;
    if (raft_popcount(r->granted) >= r->quorum) {
        raft_become_candidate(r, false);
        return;
    }
    raft_send_vote_requests(r, RAFT_MSG_PRE_VOTE, r->term + 1, false);
}

/* Issue #15: a node that lost entries it may have acknowledged takes no part in elections until
 * a leader has given them back (raft_config.promised_index; RAFT_PROMISE_UNKNOWN is above every
 * commit index, so a node that lost its promise waits for a leader to resolve it). */
/* A lost promise resolves once the commit index holds an entry of the leader's term
 * (raft_config.promised_index): the promise becomes that commit index. */
static void raft_check_promise(struct raft *r)
{
    if (r->promise_term == 0 || r->commit == 0 || raft_term_at(r, r->commit) < r->promise_term)
        return;
    if (r->commit > r->cfg.promised_index)
        r->cfg.promised_index = r->commit;
    r->promise_term = 0;
}

/* A new cluster (raft_config.promised_index): a node with an unknown promise and an empty log
 * that has seen every other voter ask for a (pre-)vote with an empty log knows that no entry was
 * ever committed — a committed entry is on a majority, so with at most a minority damaged some
 * other voter that holds it would show it — and so that it promised nothing. */
static void raft_check_fresh(struct raft *r)
{
    if (r->cfg.promised_index != RAFT_PROMISE_NEW || r->promise_term != 0 ||
        raft_last_index(r) != 0)
        return;
    if (!r->self_voter)
        return;
    uint32_t others =
        ((r->conf.n_voters >= 32 ? 0u : 1u << r->conf.n_voters) - 1u) & ~(1u << r->self_idx);
    if ((r->fresh_seen & others) != others)
        return;
    r->cfg.promised_index = 0;
    raft_logf(r, 4, "promise unknown: every voter has an empty log, a new cluster: none");
}

static bool raft_recovering(const struct raft *r)
{
    return r->commit < r->cfg.promised_index || r->promise_term != 0;
}

static void raft_campaign_internal(struct raft *r, bool transfer)
{
    if (r->role == RAFT_LEADER)
        return;
    if (!r->self_voter) {
        /* A learner, a node not yet in any configuration, or a removed one: it never stands,
         * so that it cannot disturb the voters (thesis §4.2.3). */
        r->election_elapsed = 0;
        return;
    }
    if (raft_recovering(r)) {
        r->election_elapsed = 0; /* and waits a whole timeout before it looks again */
        /* An unknown promise and an empty log: perhaps a new cluster. A pre-vote request
         * changes nothing anywhere and shows the others this node's empty log (a repaired
         * node shows it too — it never resolves its own promise so — lest one node damaged
         * before the first election keep a new cluster from ever holding it). */
        if (RAFT_PROMISE_IS_UNKNOWN(r->cfg.promised_index) && r->promise_term == 0 &&
            raft_last_index(r) == 0 && !transfer)
            raft_send_vote_requests(r, RAFT_MSG_PRE_VOTE, r->term + 1, false);
        return;
    }
    if (r->cfg.pre_vote && !transfer)
        raft_become_pre_candidate(r);
    else
        raft_become_candidate(r, transfer);
}

void raft_campaign(struct raft *r)
{
    RK_ASSERT(!r->in_ready);
    raft_campaign_internal(r, false);
}

static void raft_progress_reset(struct raft *r, struct raft_progress *pr)
{
    pr->match = 0;
    pr->next = raft_last_index(r) + 1;
    pr->replicating = false;
    pr->snapshotting = false;
    pr->probe_sent = false;
    pr->recent_active = false;
    pr->read_ack = 0;
    pr->commit_sent = 0;
    pr->n_inflight = 0;
    pr->inflight_head = 0;
}

/* Figure 2 Leaders: "Upon election: send initial empty AppendEntries RPCs (heartbeat) to each
 * server". §8: a new leader commits a no-op entry of its term at the start of its term, which
 * is also what lets it serve reads (§6.4). */
static void raft_become_leader(struct raft *r)
{
    /* Reserve room for the no-op first, so that failing to allocate it leaves us a candidate. */
    if (raft_log_append(r, r->term, RAFT_ENTRY_NOOP, NULL, 0) != RK_OK) {
        raft_logf(r, 3, "out of memory appending the no-op; staying candidate");
        return;
    }
    raft_set_role(r, RAFT_LEADER);
    r->leader = r->cfg.id;
    r->transfer_target = RAFT_NONE;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->counters.leader_changes++;
    raft_drop_reads(r);
    RK_ASSERT(r->self_voter); /* only a voter campaigns */
    for (uint32_t i = 0; i < raft_n_members(r); i++) {
        raft_progress_reset(r, &r->prs[i]);
        /* The no-op is not yet durable here, so the follower view starts just before it. */
        r->prs[i].next = raft_last_index(r);
    }
    r->prs[r->self_idx].match = r->persisted;
    r->prs[r->self_idx].recent_active = true;
    raft_logf(r, 6, "became leader at index %llu", (unsigned long long)raft_last_index(r));
    r->append_pending = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Leader: replication                                                                        */

static void raft_inflight_add(struct raft *r, struct raft_progress *pr, uint64_t last)
{
    RK_ASSERT(pr->n_inflight < r->cfg.max_inflight);
    uint32_t slot = (pr->inflight_head + pr->n_inflight) % r->cfg.max_inflight;
    pr->inflight[slot] = last;
    pr->n_inflight++;
}

static void raft_inflight_free_to(struct raft *r, struct raft_progress *pr, uint64_t index)
{
    while (pr->n_inflight > 0 && pr->inflight[pr->inflight_head] <= index) {
        pr->inflight_head = (pr->inflight_head + 1) % r->cfg.max_inflight;
        pr->n_inflight--;
    }
}

static void raft_progress_probe(struct raft_progress *pr, uint64_t next)
{
    pr->replicating = false;
    pr->probe_sent = false;
    pr->n_inflight = 0;
    pr->inflight_head = 0;
    pr->next = next;
}

/* Sends one APPEND to pr if its flow control allows: a probing follower gets one at a time; a
 * replicating one up to max_inflight batches (pipelining). An empty APPEND carries the commit
 * index only when allow_empty. Returns true if a message was queued. */
static bool raft_send_append(struct raft *r, struct raft_progress *pr, bool allow_empty)
{
    if (!pr->replicating && pr->probe_sent)
        return false;
    if (pr->replicating && pr->n_inflight >= r->cfg.max_inflight)
        return false;
    if (pr->snapshotting)
        return false; /* a snapshot is on its way; appends resume when it is done */
    uint64_t prev = pr->next - 1;
    if (prev < r->snap_index) {
        /* Thesis ch. 5: the entries this follower needs were compacted away; the host sends it
         * a snapshot of the state machine instead (InstallSnapshot), in chunks. */
        if (rk_grow(r->alloc, (void **)&r->snap_needed, &r->cap_snap_needed,
                    r->n_snap_needed + 1, sizeof(*r->snap_needed))) {
            r->snap_needed[r->n_snap_needed++] = pr->id;
            pr->snapshotting = true;
            raft_logf(r, 6, "follower %llu needs index %llu, compacted away: snapshot",
                      (unsigned long long)pr->id, (unsigned long long)pr->next);
        }
        return false;
    }
    uint64_t last = raft_last_index(r);
    uint32_t n = 0;
    uint64_t bytes = 0;
    while (pr->next + n <= last && n < r->cfg.max_append_entries) {
        const struct raft_entry *e = raft_entry_at(r, pr->next + n);
        if (n > 0 && bytes + e->len > r->cfg.max_append_bytes)
            break;
        bytes += e->len;
        n++;
    }
    if (n == 0 && !allow_empty)
        return false;
    if (n == 0 && pr->replicating) {
        /* Only the commit index to tell: anchor at what the follower is known to hold, not at
         * next - 1, which may still be in flight. It can commit no further than that anchor
         * (rule 5 of the receiver): if that is not news, there is nothing to send, and the
         * acknowledgments of what is in flight will bring the rest. */
        prev = pr->match;
        uint64_t told = prev < r->commit ? prev : r->commit;
        if (told <= pr->commit_sent)
            return false;
    }
    struct raft_msg m = {
        .type = RAFT_MSG_APPEND,
        .to = pr->id,
        .log_index = prev,
        .log_term = raft_term_at(r, prev),
        .commit = r->commit,
        .n_entries = n,
        .entries = n > 0 ? (struct raft_entry *)raft_entry_at(r, pr->next) : NULL,
    };
    raft_send(r, &m);
    /* What the follower can commit from this message: rule 5 of the receiver stops at the last
     * entry it carries. Whatever is beyond is still news for a later message. */
    uint64_t told = m.log_index + n < r->commit ? m.log_index + n : r->commit;
    if (told > pr->commit_sent)
        pr->commit_sent = told;
    if (pr->replicating) {
        if (n > 0) {
            pr->next += n;
            raft_inflight_add(r, pr, pr->next - 1);
        }
    } else {
        pr->probe_sent = true;
    }
    return true;
}

/* Fills the pipelining window of pr. */
static void raft_send_appends(struct raft *r, struct raft_progress *pr, bool allow_empty)
{
    bool sent_any = false;
    for (uint32_t i = 0; i <= r->cfg.max_inflight; i++) {
        if (!raft_send_append(r, pr, allow_empty && !sent_any))
            break;
        sent_any = true;
        if (!pr->replicating)
            break;
    }
}

/* New entries to every follower; with commit_news, an empty APPEND too to those who have not
 * heard the current commit index, at once: a follower applies (and answers the writes it
 * forwarded, the reads it serves) only when it learns the commit index, and waiting for the
 * next heartbeat would add half a heartbeat interval to every such request. */
static void raft_bcast_append(struct raft *r, bool commit_news)
{
    for (uint32_t i = 0; i < raft_n_members(r); i++) {
        struct raft_progress *pr = &r->prs[i];
        if (i != r->self_idx)
            raft_send_appends(r, pr, commit_news && r->commit > pr->commit_sent);
    }
}

/* A heartbeat asserts leadership, carries a commit index the follower is known to hold
 * (min of its match and ours, so no log check is needed) and the latest read round. */
static void raft_bcast_heartbeat(struct raft *r)
{
    r->read_round_pending = false;
    r->read_sent = r->read_seq;
    for (uint32_t i = 0; i < raft_n_members(r); i++) {
        if (i == r->self_idx)
            continue;
        struct raft_progress *pr = &r->prs[i];
        struct raft_msg m = {
            .type = RAFT_MSG_HEARTBEAT,
            .to = pr->id,
            .commit = pr->match < r->commit ? pr->match : r->commit,
            .ctx = r->read_seq,
        };
        raft_send(r, &m);
        if (m.commit > pr->commit_sent)
            pr->commit_sent = m.commit;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Leader: commit and ReadIndex                                                               */

static bool raft_committed_in_term(const struct raft *r)
{
    return raft_term_at(r, r->commit) == r->term;
}

/* Whether the last read round sent still waits for a majority. One round at a time, as etcd's
 * linearizable read loop: the reads registered meanwhile wait for the next round, which leaves
 * as soon as this one is confirmed (or with the next heartbeat, should an answer be lost). A
 * read waits at most one round more, and the followers answer one round per round trip instead
 * of one per loop turn that saw a read. Safety is unchanged: a read is confirmed only by a round
 * sent after it was registered (its seq is above read_sent). */
static bool raft_read_round_inflight(const struct raft *r)
{
    if (r->read_sent == 0)
        return false;
    uint32_t votes = 0;
    for (uint32_t i = 0; i < r->conf.n_voters; i++) {
        if (i == r->self_idx || r->prs[i].read_ack >= r->read_sent)
            votes++;
    }
    return votes < r->quorum;
}

/* Answers every read whose round a majority has confirmed. Reads are answered in order. */
static void raft_release_reads(struct raft *r)
{
    size_t done = 0;
    while (done < r->n_reads) {
        struct raft_pending_read *rd = &r->reads[done];
        if (rd->seq == 0)
            break;
        uint32_t votes = 0;
        for (uint32_t i = 0; i < r->conf.n_voters; i++) {
            if (i == r->self_idx || r->prs[i].read_ack >= rd->seq)
                votes++;
        }
        if (votes < r->quorum)
            break;
        if (rd->from == r->cfg.id) {
            raft_push_read_state(r, rd->ctx, rd->index);
        } else {
            struct raft_msg m = {
                .type = RAFT_MSG_READ_INDEX_RESP,
                .to = rd->from,
                .ctx = rd->ctx,
                .index = rd->index,
            };
            raft_send(r, &m);
        }
        done++;
    }
    if (done > 0) {
        memmove(r->reads, r->reads + done, (r->n_reads - done) * sizeof(*r->reads));
        r->n_reads -= done;
    }
}

/* Starts the round for reads held until the leader committed an entry of its term. */
static void raft_start_held_reads(struct raft *r)
{
    bool any = false;
    for (size_t i = 0; i < r->n_reads; i++) {
        if (r->reads[i].seq == 0) {
            if (!any) {
                r->read_seq++;
                r->counters.read_rounds++;
            }
            any = true;
            r->reads[i].seq = r->read_seq;
            r->reads[i].index = r->commit;
        }
    }
    if (any) {
        r->read_round_pending = true;
        raft_release_reads(r); /* a single voter needs no round */
    }
}

/* Thesis §4.2.2: a leader that is not a voter in its configuration (it removed itself, or made
 * itself a learner) leads until that configuration is committed, then steps down. So that the
 * rest need not wait for an election timeout, it first hands over with TimeoutNow to the voter
 * that holds most of its log, if that one holds the configuration entry (§3.10). */
static void raft_maybe_leave(struct raft *r)
{
    if (r->role != RAFT_LEADER || r->self_voter || r->commit < r->conf_index)
        return;
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < r->conf.n_voters; i++) {
        if (best == UINT32_MAX || r->prs[i].match > r->prs[best].match)
            best = i;
    }
    raft_logf(r, 6, "configuration %llu without this node is committed; stepping down",
              (unsigned long long)r->conf_index);
    if (best != UINT32_MAX && r->prs[best].match >= r->conf_index) {
        struct raft_msg tn = {.type = RAFT_MSG_TIMEOUT_NOW, .to = r->prs[best].id};
        raft_send(r, &tn);
    }
    raft_become_follower(r, r->term, RAFT_NONE);
}

/* Figure 2 Leaders: "If there exists an N such that N > commitIndex, a majority of
 * matchIndex[i] >= N, and log[N].term == currentTerm: set commitIndex = N" (§5.4.2, Figure 8:
 * entries of earlier terms are committed only indirectly). The leader's own match is its
 * persisted index: it counts itself only for entries on its disk (§10.2.1). */
static void raft_maybe_commit(struct raft *r)
{
    uint64_t m[RAFT_MAX_MEMBERS];
    uint32_t n = r->conf.n_voters; /* learners never count; nor a leader being removed */
    for (uint32_t i = 0; i < n; i++)
        m[i] = r->prs[i].match;
    /* Insertion sort, descending: n <= RAFT_MAX_VOTERS. */
    for (uint32_t i = 1; i < n; i++) {
        uint64_t x = m[i];
        uint32_t j = i;
        while (j > 0 && m[j - 1] < x) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = x;
    }
    uint64_t candidate = m[r->quorum - 1];
    if (candidate <= r->commit || raft_term_at(r, candidate) != r->term)
        return;
    bool first_in_term = !raft_committed_in_term(r);
    r->commit = candidate;
    r->commit_pending = true;
    if (first_in_term)
        raft_start_held_reads(r);
    raft_maybe_leave(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Ticks                                                                                      */

static bool raft_quorum_active(struct raft *r)
{
    uint32_t active = 0;
    for (uint32_t i = 0; i < raft_n_members(r); i++) {
        if (raft_is_voter_idx(r, i) && (i == r->self_idx || r->prs[i].recent_active))
            active++;
        if (i != r->self_idx)
            r->prs[i].recent_active = false;
    }
    return active >= r->quorum;
}

static void raft_tick_leader(struct raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks_min) {
        r->election_elapsed = 0;
        /* CheckQuorum (thesis §6.2): a leader that has not heard from a majority within an
         * election timeout steps down, so that clients find the real leader. */
        if (r->cfg.check_quorum && !raft_quorum_active(r)) {
            raft_logf(r, 4, "lost contact with a majority; stepping down");
            raft_become_follower(r, r->term, RAFT_NONE);
            return;
        }
    }
    if (r->transfer_target != RAFT_NONE && ++r->transfer_elapsed >= r->cfg.election_ticks_min) {
        raft_logf(r, 4, "leadership transfer to %llu timed out",
                  (unsigned long long)r->transfer_target);
        r->transfer_target = RAFT_NONE;
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        raft_bcast_heartbeat(r);
    }
}

/* Figure 2 Followers: "If election timeout elapses without receiving AppendEntries RPC from
 * current leader or granting vote to candidate: convert to candidate". Candidates: "If
 * election timeout elapses: start new election". */
static void raft_tick_election(struct raft *r)
{
    /* A candidate's vote requests leave once its new term and self-vote are durable (they
     * promise them). Until then its election timer waits: timing out requests that were never
     * sent only starts another term, and behind a slow log write (a 60 MiB entry's write and
     * sync: 0.4 s, issue 12) candidates did that again and again, up to 45 terms in one
     * election of scenarios/slow_log_heartbeat.scn. The wait is bounded by that write. */
    if (r->role == RAFT_CANDIDATE && r->hs_durable_term < r->term)
        return;
    r->election_elapsed++;
    if (r->election_elapsed >= r->election_timeout)
        raft_campaign_internal(r, false);
}

void raft_tick(struct raft *r)
{
    RK_ASSERT(!r->in_ready);
    if (r->role == RAFT_LEADER)
        raft_tick_leader(r);
    else
        raft_tick_election(r);
}

/* ------------------------------------------------------------------------------------------ */
/* RPC receivers                                                                              */

/* §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
 * candidate": compare last terms, then lengths. */
static bool raft_log_up_to_date(const struct raft *r, uint64_t last_index, uint64_t last_term)
{
    uint64_t my_term = raft_last_term(r);
    return last_term > my_term || (last_term == my_term && last_index >= raft_last_index(r));
}

/* Figure 2 RequestVote RPC receiver, and its PreVote twin (thesis §9.6). Terms were checked
 * by raft_step: m->term >= r->term here. */
static void raft_handle_vote_request(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PRE_VOTE;
    /* 2. "If votedFor is null or candidateId, and candidate's log is at least as up-to-date as
     * receiver's log, grant vote". A pre-vote for a later term is granted on the log alone.
     * Same-term votes go only to the candidate already voted for, or to anyone while no vote
     * was cast and no leader is known. */
    bool can_vote = r->vote == m->from || (r->vote == RAFT_NONE && r->leader == RAFT_NONE) ||
                    (pre && m->term > r->term);
    bool grant =
        can_vote && !raft_recovering(r) && raft_log_up_to_date(r, m->log_index, m->log_term);
    struct raft_msg resp = {
        .type = pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP,
        .to = m->from,
        /* A granted pre-vote answers in the term asked about so the pre-candidate counts it. */
        .term = grant && pre ? m->term : r->term,
        .reject = !grant,
    };
    if (grant && !pre) {
        r->vote = m->from;
        raft_reset_election_timer(r); /* Followers: granting a vote resets the timer */
    }
    raft_send(r, &resp);
}

/* Binary search: the first index in (lo, hi] whose term is >= term; terms never decrease
 * along the log (I2). */
static uint64_t raft_first_index_of_term(const struct raft *r, uint64_t term, uint64_t hi)
{
    uint64_t lo = r->snap_index + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (raft_term_at(r, mid) >= term)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The last index <= hi whose term is <= term; snap_index if none is. */
static uint64_t raft_last_index_upto_term(const struct raft *r, uint64_t term, uint64_t hi)
{
    uint64_t lo = r->snap_index;
    if (hi > raft_last_index(r))
        hi = raft_last_index(r);
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (raft_term_at(r, mid) <= term)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Entries from a peer are untrusted: consecutive indexes after log_index, terms non-decreasing
 * from log_term up to the message term. */
static bool raft_append_well_formed(const struct raft_msg *m)
{
    uint64_t prev_term = m->log_term;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index != m->log_index + 1 + i || e->term == 0 || e->term < prev_term ||
            e->term > m->term)
            return false;
        if (e->len > 0 && e->data == NULL)
            return false;
        if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP &&
            e->type != RAFT_ENTRY_CONF)
            return false;
        struct raft_conf c;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &c) != RK_OK)
            return false;
        prev_term = e->term;
    }
    /* Every real entry has a term >= 1; index 0 alone has term 0. */
    return m->log_term <= m->term && (m->log_index == 0) == (m->log_term == 0);
}

static void raft_commit_to(struct raft *r, uint64_t index)
{
    if (index > raft_last_index(r))
        index = raft_last_index(r);
    if (index > r->commit)
        r->commit = index;
    raft_check_promise(r);
}

/* Figure 2 AppendEntries RPC receiver. Terms were checked by raft_step (rule 1). */
static int raft_handle_append(struct raft *r, const struct raft_msg *m)
{
    struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
    uint64_t prev = m->log_index;
    uint64_t prev_term = m->log_term;
    uint32_t skip = 0;
    /* Entries at or below our commit index are committed and so match the leader's (Log
     * Matching, Leader Completeness): start the check at the commit index instead. */
    if (prev < r->commit) {
        uint64_t covered = r->commit - prev;
        skip = covered < m->n_entries ? (uint32_t)covered : m->n_entries;
        prev += skip;
        prev_term = skip > 0 ? m->entries[skip - 1].term : prev_term;
        if (prev < r->commit) {
            /* The whole message is below our commit index: old news. */
            resp.index = r->commit;
            raft_send(r, &resp);
            return RK_OK;
        }
    }
    /* 2. "Reply false if log doesn't contain an entry at prevLogIndex whose term matches
     * prevLogTerm", with the conflict hint of §5.3 so the leader skips a whole term. */
    uint64_t my_term = raft_term_at(r, prev);
    if (prev > raft_last_index(r) || my_term != prev_term) {
        resp.reject = true;
        resp.index = m->log_index;
        if (prev > raft_last_index(r)) {
            resp.conflict_term = 0;
            resp.conflict_index = raft_last_index(r) + 1;
        } else {
            resp.conflict_term = my_term;
            resp.conflict_index = raft_first_index_of_term(r, my_term, prev);
        }
        raft_send(r, &resp);
        return RK_OK;
    }
    /* 3. "If an existing entry conflicts with a new one (same index but different terms),
     * delete the existing entry and all that follow it". 4. "Append any new entries not
     * already in the log". */
    int rc = RK_OK;
    uint32_t appended = skip;
    for (uint32_t i = skip; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index <= raft_last_index(r)) {
            if (raft_term_at(r, e->index) == e->term) {
                appended++;
                continue;
            }
            raft_log_truncate(r, e->index);
        }
        rc = raft_log_append(r, e->term, e->type, e->data, e->len);
        if (rc != RK_OK)
            break;
        appended++;
    }
    /* What we hold now matches the leader up to here. */
    uint64_t last_new = m->log_index + appended;
    /* 5. "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last new
     * entry)". */
    if (m->commit > r->commit)
        raft_commit_to(r, m->commit < last_new ? m->commit : last_new);
    resp.index = last_new;
    raft_send(r, &resp);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Step, per role                                                                             */

static int raft_read_index_internal(struct raft *r, uint64_t ctx, uint64_t from);

static int raft_step_follower(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
        r->election_elapsed = 0;
        r->leader = m->from;
        if (RAFT_PROMISE_IS_UNKNOWN(r->cfg.promised_index)) {
            /* A lost promise (raft_config.promised_index): what the leader knows stands for it
             * — its commit index; the end of this first APPEND, anchored at the leader's next
             * index for this node, past every entry it ever sent it (so past every one this
             * node can have acknowledged to it); and at least one entry of its own term (which
             * follows every entry committed before the term began, Leader Completeness) —
             * and a vote for the leader of this term, which has won it, takes the place of
             * whatever vote this node may have cast in it before. */
            uint64_t sent = m->log_index + m->n_entries;
            r->cfg.promised_index = m->commit > sent ? m->commit : sent;
            r->promise_term = r->term;
            if (r->vote == RAFT_NONE)
                r->vote = m->from;
            raft_logf(r, 4,
                      "promise unknown: waits for leader %llu's index %llu and an entry of term "
                      "%llu",
                      (unsigned long long)m->from, (unsigned long long)r->cfg.promised_index,
                      (unsigned long long)r->term);
        }
        return raft_handle_append(r, m);
    case RAFT_MSG_HEARTBEAT: {
        r->election_elapsed = 0;
        r->leader = m->from;
        raft_commit_to(r, m->commit);
        struct raft_msg resp = {.type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .ctx = m->ctx};
        raft_send(r, &resp);
        if (m->commit > raft_last_index(r)) {
            /* A heartbeat carries min(our match, its commit): the leader counts entries we
             * acknowledged and no longer hold (a wiped or repaired log). Say where our log ends,
             * as the rejection of a check anchored there (raft_handle_append_resp lowers match
             * and probes back), or an idle leader whose log we had matched would never send us
             * an APPEND again (disk_wipe.scn seed 164 on the bigval branch). */
            struct raft_msg rej = {.type = RAFT_MSG_APPEND_RESP,
                                   .to = m->from,
                                   .reject = true,
                                   .index = m->commit,
                                   .conflict_index = raft_last_index(r) + 1};
            raft_send(r, &rej);
        }
        return RK_OK;
    }
    case RAFT_MSG_TIMEOUT_NOW:
        /* Thesis §3.10: the leader asks us to start an election at once, skipping PreVote, and
         * voters set aside leader stickiness for it. */
        raft_logf(r, 6, "leadership transfer from %llu", (unsigned long long)m->from);
        raft_campaign_internal(r, true);
        return RK_OK;
    case RAFT_MSG_READ_INDEX: {
        struct raft_msg resp = {
            .type = RAFT_MSG_READ_INDEX_RESP, .to = m->from, .ctx = m->ctx, .reject = true};
        raft_send(r, &resp);
        return RK_OK;
    }
    case RAFT_MSG_READ_INDEX_RESP:
        if (!m->reject)
            raft_push_read_state(r, m->ctx, m->index);
        return RK_OK;
    default:
        return RK_OK; /* stale responses */
    }
}

/* Counts a vote or pre-vote answer: a majority for us moves us on, a majority against sends us
 * back to follower. */
static void raft_count_vote(struct raft *r, const struct raft_msg *m)
{
    uint32_t i = raft_member_idx(r, m->from);
    if (!raft_is_voter_idx(r, i))
        return; /* only the voters of our configuration count (thesis §4.1) */
    if (m->reject)
        r->rejected |= 1u << i;
    else
        r->granted |= 1u << i;
    if (raft_popcount(r->granted) >= r->quorum) {
        if (r->role == RAFT_PRE_CANDIDATE)
            raft_become_candidate(r, false);
        else
            raft_become_leader(r);
    } else if (raft_popcount(r->rejected) >= r->quorum) {
        raft_become_follower(r, r->term, RAFT_NONE);
    }
}

static int raft_step_candidate(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_TIMEOUT_NOW:
        /* Figure 2 Candidates: "If AppendEntries RPC received from new leader: convert to
         * follower". A pre-candidate in the same term yields to the leader it hears from. */
        raft_become_follower(r, r->term, m->from);
        return raft_step_follower(r, m);
    case RAFT_MSG_PRE_VOTE_RESP:
        /* Granted pre-votes come back in term + 1 (raft_step let them through); rejections in
         * our term. */
        if (r->role == RAFT_PRE_CANDIDATE && m->term == (m->reject ? r->term : r->term + 1))
            raft_count_vote(r, m);
        return RK_OK;
    case RAFT_MSG_VOTE_RESP:
        if (r->role == RAFT_CANDIDATE)
            raft_count_vote(r, m);
        return RK_OK;
    default:
        return raft_step_follower(r, m);
    }
}

static void raft_handle_append_resp(struct raft *r, struct raft_progress *pr,
                                    const struct raft_msg *m)
{
    if (pr->snapshotting) {
        /* An answer to an APPEND sent before the snapshot: only what it proves counts. */
        if (!m->reject && m->index > pr->match) {
            pr->match = m->index;
            if (pr->next <= pr->match)
                pr->next = pr->match + 1; /* I5 */
            raft_maybe_commit(r);
        }
        return;
    }
    if (!m->reject) {
        raft_inflight_free_to(r, pr, m->index);
        if (m->index > pr->match) {
            pr->match = m->index;
            if (!pr->replicating) {
                /* The probe found the match point: switch to pipelined replication. */
                raft_progress_probe(pr, pr->match + 1);
                pr->replicating = true;
            } else if (pr->next <= pr->match) {
                pr->next = pr->match + 1;
            }
            raft_maybe_commit(r);
            if (pr->id == r->transfer_target && pr->match == raft_last_index(r)) {
                struct raft_msg tn = {.type = RAFT_MSG_TIMEOUT_NOW, .to = pr->id};
                raft_send(r, &tn);
            }
        } else if (!pr->replicating) {
            pr->probe_sent = false;
        }
        /* Tell it the commit index at once if it has not heard it (a probe that just matched,
         * an acknowledgment that came after the commit moved). */
        raft_send_appends(r, pr, r->commit > pr->commit_sent);
        return;
    }
    r->counters.appends_rejected++;
    /* A follower that lost what it acknowledged — its data directory wiped, or its log cut after
     * damage (issue #15) — answers the check anchored at match (next - 1 == match, in replication
     * or probe) with a rejection saying its log ends below it (conflict_term 0, conflict_index its
     * last index + 1). Discarded as stale, it would never catch up under this leader. match goes
     * back to what the follower says it holds and the probe starts there: this only lowers what
     * the leader counts towards the next commit (the commit index never goes back), and were the
     * rejection a reordered old one, the probe finds the real match point again at once. */
    if (m->index == pr->match && m->index + 1 == pr->next && m->conflict_term == 0 &&
        m->conflict_index >= 1 && m->conflict_index <= pr->match) {
        pr->match = m->conflict_index - 1;
        raft_progress_probe(pr, m->conflict_index);
        raft_send_appends(r, pr, true);
        return;
    }
    /* Stale rejections: in replication anything at or below match; in probe anything but the
     * answer to the probe outstanding. */
    if (m->index <= pr->match || (!pr->replicating && m->index != pr->next - 1))
        return;
    /* Thesis §5.3: skip the follower's whole conflicting term in one step. */
    uint64_t next = m->conflict_index;
    if (m->conflict_term != 0) {
        uint64_t i = raft_last_index_upto_term(r, m->conflict_term, m->index);
        if (i > r->snap_index && raft_term_at(r, i) == m->conflict_term)
            next = i + 1;
    }
    if (next > m->index)
        next = m->index; /* always move back past the rejected index */
    if (next <= pr->match)
        next = pr->match + 1;
    if (next < 1)
        next = 1;
    raft_progress_probe(pr, next);
    raft_send_appends(r, pr, true);
}

/* Replication with everything sent: an empty APPEND anchored at next - 1 (not at match) asks
 * whether the follower holds all of it. It acknowledges, or it rejects and we probe back (§5.3:
 * "the leader retries AppendEntries RPCs indefinitely"), so an APPEND lost while no new entry
 * is proposed does not stall the follower (and the commit index it learns) for ever. */
static void raft_send_append_check(struct raft *r, struct raft_progress *pr)
{
    RK_ASSERT(pr->replicating);
    uint64_t prev = pr->next - 1;
    if (prev < r->snap_index)
        return; /* compacted away: only a snapshot can help */
    struct raft_msg m = {
        .type = RAFT_MSG_APPEND,
        .to = pr->id,
        .log_index = prev,
        .log_term = raft_term_at(r, prev),
        .commit = r->commit,
    };
    raft_send(r, &m);
}

static int raft_step_leader(struct raft *r, const struct raft_msg *m)
{
    uint32_t i = raft_member_idx(r, m->from);
    if (i == UINT32_MAX) {
        /* Not a member (any more): nothing it says moves our progress or quorums. */
        if (m->type == RAFT_MSG_READ_INDEX) {
            struct raft_msg resp = {
                .type = RAFT_MSG_READ_INDEX_RESP, .to = m->from, .ctx = m->ctx, .reject = true};
            raft_send(r, &resp);
        }
        return RK_OK;
    }
    struct raft_progress *pr = &r->prs[i];
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
        pr->recent_active = true;
        if (!m->reject && m->index > raft_last_index(r)) {
            /* A follower cannot hold more of our term's log than we do: forged or corrupt. */
            r->counters.msgs_dropped++;
            return RK_EINVAL;
        }
        raft_handle_append_resp(r, pr, m);
        return RK_OK;
    case RAFT_MSG_HEARTBEAT_RESP:
        pr->recent_active = true;
        if (m->ctx > pr->read_ack && m->ctx <= r->read_seq) {
            pr->read_ack = m->ctx;
            raft_release_reads(r);
        }
        /* A follower that answers heartbeats but not appends lost them: resume probing, and in
         * replication free one slot of a window that responses may never drain. */
        if (!pr->replicating)
            pr->probe_sent = false;
        else if (pr->n_inflight == r->cfg.max_inflight)
            raft_inflight_free_to(r, pr, pr->inflight[pr->inflight_head]);
        else if (pr->next > raft_last_index(r) && pr->match < raft_last_index(r))
            raft_send_append_check(r, pr); /* all sent, not all acknowledged, window open */
        if (pr->match < raft_last_index(r))
            raft_send_appends(r, pr, false);
        return RK_OK;
    case RAFT_MSG_READ_INDEX:
        if (raft_read_index_internal(r, m->ctx, m->from) != RK_OK) {
            struct raft_msg resp = {
                .type = RAFT_MSG_READ_INDEX_RESP, .to = m->from, .ctx = m->ctx, .reject = true};
            raft_send(r, &resp);
        }
        return RK_OK;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
        /* Election Safety: two leaders in one term cannot exist. A peer claiming it is a bug
         * on its side or a forged message: drop it. */
        raft_logf(r, 3, "%s from %llu claims leadership of our term; dropped",
                  raft_msg_type_name(m->type), (unsigned long long)m->from);
        r->counters.msgs_dropped++;
        return RK_EINVAL;
    default:
        return RK_OK;
    }
}

/* Thesis §4.2.3 (with CheckQuorum): a server that heard from a leader within the minimum
 * election timeout ignores vote requests, so that a partitioned node coming back cannot
 * depose a healthy leader. A leader is always in its own lease. */
static bool raft_in_lease(const struct raft *r)
{
    return r->cfg.check_quorum && r->leader != RAFT_NONE &&
           r->election_elapsed < r->cfg.election_ticks_min;
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
    RK_ASSERT(!r->in_ready);
    uint32_t from_idx = raft_member_idx(r, m->from);
    /* A sender outside our configuration is heard only as a leader: one of a configuration we
     * do not hold yet (a new node, a learner behind), or handing over as it leaves. Anything
     * else from it — above all a vote request from a removed node, whose higher term would
     * depose a healthy leader (thesis §4.2.3) — is dropped. */
    bool from_leader_type = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                            m->type == RAFT_MSG_TIMEOUT_NOW || m->type == RAFT_MSG_READ_INDEX_RESP;
    if (m->to != r->cfg.id || m->from == RAFT_NONE || m->from == r->cfg.id ||
        (from_idx == UINT32_MAX && !from_leader_type) || m->type == 0 ||
        m->type >= RAFT_MSG_TYPE_COUNT || m->term == 0 ||
        (m->type == RAFT_MSG_APPEND && !raft_append_well_formed(m))) {
        r->counters.msgs_dropped++;
        return RK_EINVAL;
    }
    bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE;
    if (vote_req && m->log_index == 0 && raft_is_voter_idx(r, from_idx)) {
        r->fresh_seen |= 1u << from_idx;
        raft_check_fresh(r);
    }
    if (m->term > r->term) {
        if (vote_req && raft_in_lease(r) && !m->transfer)
            return RK_OK;
        bool keeps_term =
            m->type == RAFT_MSG_PRE_VOTE || (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject);
        if (!keeps_term) {
            bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                               m->type == RAFT_MSG_TIMEOUT_NOW;
            raft_logf(r, 6, "%s from %llu in term %llu", raft_msg_type_name(m->type),
                      (unsigned long long)m->from, (unsigned long long)m->term);
            bool was_follower = r->role == RAFT_FOLLOWER;
            uint32_t elapsed = r->election_elapsed, timeout = r->election_timeout;
            raft_become_follower(r, m->term, from_leader ? m->from : RAFT_NONE);
            if (m->type == RAFT_MSG_VOTE && was_follower) {
                /* Figure 2: a follower's timer restarts when it hears from the leader or grants
                 * a vote (the vote handler below resets it then), not because a candidate's
                 * term is higher. Without this, a candidate that cannot win (a stale log) and
                 * times out first keeps every other follower from ever standing (prevote off;
                 * fuzz/regress/sim/stale-fast-candidate-livelock). */
                r->election_elapsed = elapsed;
                r->election_timeout = timeout;
            }
        }
    } else if (m->term < r->term) {
        /* AppendEntries and RequestVote receivers, rule 1: "Reply false if term <
         * currentTerm". The reply carries our term, which makes a stale leader or candidate
         * step down. Stale responses are ignored. */
        struct raft_msg resp = {.to = m->from, .reject = true};
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT) {
            resp.type = RAFT_MSG_APPEND_RESP;
            resp.index = m->log_index;
        } else if (m->type == RAFT_MSG_PRE_VOTE) {
            resp.type = RAFT_MSG_PRE_VOTE_RESP;
        } else if (m->type == RAFT_MSG_VOTE) {
            resp.type = RAFT_MSG_VOTE_RESP;
        } else {
            return RK_OK;
        }
        raft_send(r, &resp);
        return RK_OK;
    }
    if (vote_req) {
        raft_handle_vote_request(r, m);
        return RK_OK;
    }
    switch (r->role) {
    case RAFT_FOLLOWER:
        return raft_step_follower(r, m);
    case RAFT_PRE_CANDIDATE:
    case RAFT_CANDIDATE:
        return raft_step_candidate(r, m);
    case RAFT_LEADER:
        return raft_step_leader(r, m);
    }
    return RK_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Client-facing inputs                                                                       */

/* What both proposes check first: the caller may append an entry now. */
static int raft_propose_check(struct raft *r, uint32_t len, uint64_t *leader)
{
    RK_ASSERT(!r->in_ready);
    if (leader != NULL)
        *leader = r->leader;
    if (r->role != RAFT_LEADER)
        return RK_ENOTLEADER;
    if (r->transfer_target != RAFT_NONE)
        return RK_EBUSY;
    if (len > r->cfg.max_entry_bytes)
        return RK_ETOOBIG;
    return RK_OK;
}

/* After either propose appended: sent with the next ready, before our own sync (§10.2.1):
 * followers persist while we do, and every proposal since the last batch shares one APPEND. */
static void raft_proposed(struct raft *r, uint64_t *index)
{
    if (index != NULL)
        *index = raft_last_index(r);
    r->append_pending = true;
}

int raft_propose(struct raft *r, const uint8_t *data, uint32_t len, uint64_t *index,
                 uint64_t *leader)
{
    int rc = raft_propose_check(r, len, leader);
    if (rc == RK_OK)
        rc = raft_log_append(r, r->term, RAFT_ENTRY_NORMAL, data, len);
    if (rc == RK_OK)
        raft_proposed(r, index);
    return rc;
}

int raft_propose_take(struct raft *r, uint8_t *data, uint32_t len, uint64_t *index,
                      uint64_t *leader)
{
    RK_ASSERT(data != NULL && len > 0);
    int rc = raft_propose_check(r, len, leader);
    if (rc == RK_OK)
        rc = raft_log_append_owned(r, r->term, RAFT_ENTRY_NORMAL, data, len);
    if (rc == RK_OK)
        raft_proposed(r, index);
    return rc;
}

/* Voters in exactly one of a and b. */
static uint32_t raft_voters_changed(const struct raft_conf *a, const struct raft_conf *b)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->n_voters; i++)
        n += !raft_conf_is_voter(b, a->voters[i]);
    for (uint32_t i = 0; i < b->n_voters; i++)
        n += !raft_conf_is_voter(a, b->voters[i]);
    return n;
}

int raft_propose_conf(struct raft *r, const struct raft_conf *c, uint64_t *index, uint64_t *leader)
{
    int rc = raft_propose_check(r, 0, leader);
    if (rc != RK_OK)
        return rc;
    if (!raft_conf_valid(c) || c->n_voters == 0)
        return RK_EINVAL;
    /* Thesis §4.1: one server at a time — any two majorities of the old and new voters then
     * overlap — and a change only after the previous one is committed. */
    if (raft_voters_changed(&r->conf, c) > 1)
        return RK_EINVAL;
    if (r->conf_index > r->commit)
        return RK_EBUSY;
    /* Ongaro, raft-dev 2015 ("bug in single-server membership changes"): a leader changes the
     * configuration only once it has committed an entry of its own term. Otherwise a change it
     * appends may overlap neither majority of a change a deposed leader of an earlier term
     * appended and lost, and two leaders can be elected in one term. */
    if (!raft_committed_in_term(r))
        return RK_EBUSY;
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len = raft_conf_encode(c, buf);
    rc = raft_log_append(r, r->term, RAFT_ENTRY_CONF, buf, (uint32_t)len);
    if (rc != RK_OK)
        return rc;
    raft_logf(r, 6, "configuration at %llu: %u voters, %u learners",
              (unsigned long long)raft_last_index(r), c->n_voters, c->n_learners);
    raft_proposed(r, index);
    return RK_OK;
}

/* Removes id from a list; false if it was not there. */
static bool raft_ids_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            memmove(ids + i, ids + i + 1, (*n - i - 1) * sizeof(*ids));
            (*n)--;
            return true;
        }
    }
    return false;
}

int raft_add_learner(struct raft *r, uint64_t id, uint64_t *index, uint64_t *leader)
{
    struct raft_member_addr a = {.id = id};
    return raft_add_learner_addr(r, &a, index, leader);
}

int raft_add_learner_addr(struct raft *r, const struct raft_member_addr *a, uint64_t *index,
                          uint64_t *leader)
{
    struct raft_conf c = r->conf;
    uint64_t id = a->id;
    if (id == RAFT_NONE || raft_member_idx(r, id) != UINT32_MAX)
        return r->role == RAFT_LEADER ? RK_EINVAL : raft_propose_check(r, 0, leader);
    if (c.n_learners == RAFT_MAX_LEARNERS)
        return RK_ETOOBIG;
    c.learners[c.n_learners++] = id;
    if (raft_conf_set_addr(&c, a) != RK_OK)
        return r->role == RAFT_LEADER ? RK_EINVAL : raft_propose_check(r, 0, leader);
    return raft_propose_conf(r, &c, index, leader);
}

int raft_set_member_addr(struct raft *r, const struct raft_member_addr *a, uint64_t *index,
                         uint64_t *leader)
{
    struct raft_conf c = r->conf;
    if (raft_conf_set_addr(&c, a) != RK_OK)
        return r->role == RAFT_LEADER ? RK_EINVAL : raft_propose_check(r, 0, leader);
    return raft_propose_conf(r, &c, index, leader);
}

int raft_promote(struct raft *r, uint64_t id, uint64_t *index, uint64_t *leader)
{
    struct raft_conf c = r->conf;
    if (!raft_ids_remove(c.learners, &c.n_learners, id))
        return r->role == RAFT_LEADER ? RK_EINVAL : raft_propose_check(r, 0, leader);
    /* Thesis §4.2.1: a new voter that is still catching up holds the cluster's availability
     * hostage (a quorum may now need it). As etcd, only a learner that holds everything
     * committed is promoted (not one in the middle of a snapshot). */
    const struct raft_progress *pr = &r->prs[raft_member_idx(r, id)];
    if (r->role == RAFT_LEADER && (pr->snapshotting || pr->match < r->commit))
        return RK_EBUSY;
    if (c.n_voters == RAFT_MAX_VOTERS)
        return RK_ETOOBIG;
    c.voters[c.n_voters++] = id;
    return raft_propose_conf(r, &c, index, leader);
}

int raft_remove_member(struct raft *r, uint64_t id, uint64_t *index, uint64_t *leader)
{
    struct raft_conf c = r->conf;
    if (!raft_ids_remove(c.voters, &c.n_voters, id) &&
        !raft_ids_remove(c.learners, &c.n_learners, id))
        return r->role == RAFT_LEADER ? RK_EINVAL : raft_propose_check(r, 0, leader);
    for (uint32_t i = 0; i < c.n_addrs; i++) {
        if (c.addrs[i].id == id) {
            memmove(c.addrs + i, c.addrs + i + 1, (c.n_addrs - i - 1) * sizeof(*c.addrs));
            c.n_addrs--;
            break;
        }
    }
    return raft_propose_conf(r, &c, index, leader);
}

/* Registers a read for ctx asked by from (self or a follower). §6.4: the read index is the
 * commit index once the leader has committed an entry of its term; until then the read is
 * held. One heartbeat round, started at the next ready, confirms every read registered
 * before it. */
static int raft_read_index_internal(struct raft *r, uint64_t ctx, uint64_t from)
{
    RK_ASSERT(r->role == RAFT_LEADER);
    if (r->n_reads >= RAFT_MAX_PENDING_READS)
        return RK_EBUSY;
    if (!rk_grow(r->alloc, (void **)&r->reads, &r->cap_reads, r->n_reads + 1, sizeof(*r->reads)))
        return RK_ENOMEM;
    struct raft_pending_read *rd = &r->reads[r->n_reads++];
    rd->ctx = ctx;
    rd->from = from;
    rd->index = r->commit;
    rd->seq = 0;
    if (raft_committed_in_term(r)) {
        if (!r->read_round_pending) {
            r->read_seq++;
            r->counters.read_rounds++;
        }
        r->read_round_pending = true;
        rd->seq = r->read_seq;
        raft_release_reads(r);
    }
    return RK_OK;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
    RK_ASSERT(!r->in_ready);
    if (r->role == RAFT_LEADER)
        return raft_read_index_internal(r, ctx, r->cfg.id);
    if (r->leader == RAFT_NONE)
        return RK_ENOLEADER;
    struct raft_msg m = {.type = RAFT_MSG_READ_INDEX, .to = r->leader, .ctx = ctx};
    raft_send(r, &m);
    return RK_OK;
}

int raft_transfer_leader(struct raft *r, uint64_t target)
{
    RK_ASSERT(!r->in_ready);
    if (r->role != RAFT_LEADER)
        return RK_ENOTLEADER;
    uint32_t i = raft_member_idx(r, target);
    if (!raft_is_voter_idx(r, i) || i == r->self_idx)
        return RK_EINVAL; /* only a voter can lead */
    r->transfer_target = target;
    r->transfer_elapsed = 0;
    struct raft_progress *pr = &r->prs[i];
    raft_logf(r, 6, "transferring leadership to %llu (match %llu of %llu)",
              (unsigned long long)target, (unsigned long long)pr->match,
              (unsigned long long)raft_last_index(r));
    if (pr->match == raft_last_index(r)) {
        struct raft_msg tn = {.type = RAFT_MSG_TIMEOUT_NOW, .to = target};
        raft_send(r, &tn);
    } else if (pr->replicating && pr->next > raft_last_index(r)) {
        raft_send_append_check(r, pr); /* everything sent: find out what it holds */
    } else {
        raft_send_appends(r, pr, true); /* catch it up first */
    }
    return RK_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Snapshots and log compaction (thesis chapter 5)                                            */

/* Drops the in-memory entries up to index (snap_index < index <= last), whose term becomes the
 * snapshot term. Their buffers go to the garbage list: messages of this batch may hold them. */
static void raft_log_drop_prefix(struct raft *r, uint64_t index)
{
    RK_ASSERT(index > r->snap_index);
    RK_ASSERT(index <= raft_last_index(r));
    uint64_t term = raft_term_at(r, index);
    uint64_t conf_at;
    raft_conf_as_of(r, index, &r->snap_conf, &conf_at); /* what the snapshot stands for */
    if (r->conf_index <= index && r->conf_index != 0) {
        r->conf_index = 0; /* now the snapshot's */
        r->conf_version++;
    }
    size_t n = (size_t)(index - r->snap_index);
    for (size_t i = 0; i < n; i++) {
        struct raft_entry *e = &r->ents[i];
        r->ent_bytes -= e->len;
        if (e->data == NULL)
            continue;
        if (rk_grow(r->alloc, (void **)&r->garbage, &r->cap_garbage, r->n_garbage + 1,
                    sizeof(*r->garbage)))
            r->garbage[r->n_garbage++] = e->data;
        e->data = NULL;
    }
    memmove(r->ents, r->ents + n, (r->n_ents - n) * sizeof(*r->ents));
    r->n_ents -= n;
    r->snap_index = index;
    r->snap_term = term;
}

int raft_compact(struct raft *r, uint64_t index)
{
    RK_ASSERT(!r->in_ready);
    if (index > r->applied || index > r->persisted)
        return RK_EINVAL;
    if (index <= r->snap_index)
        return RK_OK;
    raft_log_drop_prefix(r, index);
    raft_logf(r, 6, "log compacted up to %llu", (unsigned long long)index);
    return RK_OK;
}

int raft_restore(struct raft *r, uint64_t index, uint64_t term)
{
    return raft_restore_conf(r, index, term, NULL);
}

int raft_restore_conf(struct raft *r, uint64_t index, uint64_t term, const struct raft_conf *conf)
{
    RK_ASSERT(!r->in_ready);
    RK_ASSERT(conf == NULL || raft_conf_valid(conf));
    if (r->role == RAFT_LEADER || term == 0 || term > r->term)
        return RK_EINVAL;
    if (index <= r->commit)
        return RK_ESTALE;
    if (index <= raft_last_index(r) && raft_term_at(r, index) == term) {
        /* Figure 13, 6: the log holds the snapshot's last entry: keep what follows. */
        raft_log_drop_prefix(r, index);
        /* A pending truncation lies after the snapshot point, so that the host may compact
         * and truncate in either order (log.h refuses a truncation behind it). */
        if (r->truncate_from != 0 && r->truncate_from <= index)
            r->truncate_from = index + 1;
    } else {
        /* Figure 13, 7: discard the entire log. What was durable beyond index is stale, and a
         * pending truncation may have left stale durable entries anywhere after it. */
        if (r->written > index || r->truncate_from != 0)
            r->truncate_from = index + 1;
        for (size_t i = 0; i < r->n_ents; i++) {
            struct raft_entry *e = &r->ents[i];
            if (e->data != NULL &&
                rk_grow(r->alloc, (void **)&r->garbage, &r->cap_garbage, r->n_garbage + 1,
                        sizeof(*r->garbage)))
                r->garbage[r->n_garbage++] = e->data;
            e->data = NULL;
        }
        r->n_ents = 0;
        r->ent_bytes = 0;
        r->snap_index = index;
        r->snap_term = term;
        r->persisted = index;
        r->written = index;
        r->snap_conf = r->conf; /* without a configuration in the snapshot: the one we know */
    }
    if (conf != NULL)
        r->snap_conf = *conf;
    raft_conf_reload(r);
    /* The state machine holds everything up to index durably: the snapshot stands for it. */
    if (r->persisted < index)
        r->persisted = index;
    if (r->written < index)
        r->written = index;
    r->commit = index;
    r->applied = index; /* the state machine is the snapshot */
    raft_check_promise(r);
    r->restore_pending = true;
    raft_logf(r, 6, "snapshot installed at %llu (term %llu)", (unsigned long long)index,
              (unsigned long long)term);
    return RK_OK;
}

void raft_snapshot_done(struct raft *r, uint64_t to, uint64_t index, bool ok)
{
    RK_ASSERT(!r->in_ready);
    uint32_t i = raft_member_idx(r, to);
    if (r->role != RAFT_LEADER || i == UINT32_MAX || i == r->self_idx)
        return;
    struct raft_progress *pr = &r->prs[i];
    if (!pr->snapshotting)
        return;
    pr->snapshotting = false;
    if (ok && index > pr->match && index <= raft_last_index(r))
        pr->match = index;
    /* Probe from what it holds; if that is compacted away too, it will ask again. */
    raft_progress_probe(pr, pr->match + 1);
    raft_maybe_commit(r);
    if (ok) {
        raft_send_appends(r, pr, true);
    } else {
        /* Paced: the next try waits for the follower's next heartbeat response, so a host that
         * cannot make snapshots right now is not asked again in a loop. */
        pr->probe_sent = true;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Ready / advance                                                                            */

static uint64_t raft_apply_limit(const struct raft *r)
{
    return r->commit < r->persisted ? r->commit : r->persisted;
}

static bool raft_hs_changed(const struct raft *r)
{
    return r->term != r->prev_hs.term || r->vote != r->prev_hs.vote ||
           r->commit != r->prev_hs.commit;
}

bool raft_has_ready(const struct raft *r)
{
    return raft_hs_changed(r) || r->written < raft_last_index(r) || r->truncate_from != 0 ||
           r->msgs.n > 0 || r->msgs_after.n > 0 || raft_apply_limit(r) > r->applied ||
           r->n_read_states > 0 || (r->read_round_pending && !raft_read_round_inflight(r)) ||
           r->append_pending || r->commit_pending || r->n_snap_needed > 0 || r->restore_pending;
}

void raft_ready(struct raft *r, struct raft_ready *rd)
{
    RK_ASSERT(!r->in_ready);
    if (r->role == RAFT_LEADER) {
        /* Reads registered since the last batch share one heartbeat round; proposals share
         * one APPEND per follower; a commit advance rides on it or on an empty APPEND. */
        if (r->read_round_pending && !raft_read_round_inflight(r))
            raft_bcast_heartbeat(r); /* else it leaves once the round out is confirmed */
        if (r->append_pending || r->commit_pending)
            raft_bcast_append(r, r->commit_pending);
    } else {
        r->read_round_pending = false;
    }
    r->append_pending = false;
    r->commit_pending = false;
    memset(rd, 0, sizeof(*rd));
    rd->has_hard_state = raft_hs_changed(r);
    rd->hard_state.term = r->term;
    rd->hard_state.vote = r->vote;
    rd->hard_state.commit = r->commit;
    rd->truncate_from = r->truncate_from;
    uint64_t last = raft_last_index(r);
    if (r->written < last) {
        rd->entries = raft_entry_at(r, r->written + 1);
        rd->n_entries = (size_t)(last - r->written);
    }
    rd->msgs = r->msgs.v;
    rd->n_msgs = r->msgs.n;
    rd->msgs_after_persist = r->msgs_after.v;
    rd->n_msgs_after_persist = r->msgs_after.n;
    uint64_t limit = raft_apply_limit(r);
    if (limit > r->applied) {
        rd->committed = raft_entry_at(r, r->applied + 1);
        rd->n_committed = (size_t)(limit - r->applied);
    }
    rd->read_states = r->read_states;
    rd->snapshot_needed = r->snap_needed;
    rd->n_snapshot_needed = r->n_snap_needed;
    rd->has_restore = r->restore_pending;
    rd->restore_index = r->snap_index;
    rd->restore_term = r->snap_term;
    rd->n_read_states = r->n_read_states;
    rd->role = r->role;
    rd->leader = r->leader;
    r->in_ready = true;
}

/* What both advances do: the batch was acted on, except (async) for its durability. */
static void raft_advance_common(struct raft *r, const struct raft_ready *rd, bool free_garbage)
{
    RK_ASSERT(r->in_ready);
    r->in_ready = false;
    if (rd->has_hard_state)
        r->prev_hs = rd->hard_state;
    r->truncate_from = 0;
    if (rd->n_entries > 0)
        r->written = rd->entries[rd->n_entries - 1].index;
    if (rd->n_committed > 0)
        r->applied = rd->committed[rd->n_committed - 1].index;
    raft_msg_vec_clear(r, &r->msgs);
    raft_msg_vec_clear(r, &r->msgs_after);
    r->n_read_states = 0;
    r->n_snap_needed = 0;
    r->restore_pending = false;
    if (!free_garbage)
        return; /* raft_take_garbage hands them to the host */
    for (size_t i = 0; i < r->n_garbage; i++)
        rk_free(r->alloc, r->garbage[i]);
    r->n_garbage = 0;
}

int raft_take_garbage(struct raft *r, uint8_t ***v, size_t *n, size_t *cap)
{
    if (r->n_garbage == 0)
        return RK_OK;
    if (!rk_grow(r->alloc, (void **)v, cap, *n + r->n_garbage, sizeof(**v)))
        return RK_ENOMEM;
    memcpy(*v + *n, r->garbage, r->n_garbage * sizeof(*r->garbage));
    *n += r->n_garbage;
    r->n_garbage = 0;
    return RK_OK;
}

/* Our own entries up to index are durable: they count toward the commit quorum (§10.2.1). */
static void raft_self_persisted(struct raft *r, uint64_t index)
{
    if (index <= r->persisted)
        return;
    r->persisted = index;
    if (r->role == RAFT_LEADER && r->self_idx != UINT32_MAX &&
        r->prs[r->self_idx].match < r->persisted) {
        r->prs[r->self_idx].match = r->persisted;
        raft_maybe_commit(r);
    }
}

void raft_advance(struct raft *r, const struct raft_ready *rd)
{
    raft_advance_common(r, rd, true);
    if (rd->hard_state.term > r->hs_durable_term)
        r->hs_durable_term = rd->hard_state.term;
    raft_self_persisted(r, r->written);
    RK_ASSERT(r->applied <= r->commit);
    RK_ASSERT_SLOW(raft_invariants_hold_since(r, rd->n_entries > 0 ? rd->entries[0].index : 0));
}

void raft_advance_async(struct raft *r, const struct raft_ready *rd)
{
    raft_advance_common(r, rd, false);
    RK_ASSERT(r->applied <= r->commit);
    RK_ASSERT_SLOW(raft_invariants_hold_since(r, rd->n_entries > 0 ? rd->entries[0].index : 0));
}

void raft_hard_state_persisted(struct raft *r, uint64_t term)
{
    if (term > r->hs_durable_term)
        r->hs_durable_term = term;
}

void raft_persisted(struct raft *r, uint64_t index, uint64_t term)
{
    RK_ASSERT(!r->in_ready);
    /* A write that the log has since cut (a conflict, a snapshot) says nothing about the
     * entries there now; one whose (index, term) is still in the log vouches for the whole
     * prefix (Log Matching). Never beyond what was handed out. */
    if (index > r->written || index <= r->persisted || raft_term_at(r, index) != term)
        return;
    raft_self_persisted(r, index);
    RK_ASSERT_SLOW(raft_invariants_hold_since(r, 0));
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle and introspection                                                                */

void raft_config_default(struct raft_config *c)
{
    memset(c, 0, sizeof(*c));
    c->election_ticks_min = 10;
    c->election_ticks_max = 20;
    c->heartbeat_ticks = 1;
    c->seed = 1;
    c->pre_vote = true;
    c->check_quorum = true;
    c->max_append_bytes = 1u << 20;
    c->max_append_entries = 256;
    c->max_inflight = 32;
    c->max_entry_bytes = RAFT_DEFAULT_MAX_ENTRY_BYTES;
}

static int raft_validate_config(const struct raft_config *c, struct rk_errmsg *err)
{
    if (c->id == RAFT_NONE)
        return rk_errf(err, RK_EINVAL, "config: id must be >= 1");
    if ((c->n_voters == 0 && !c->allow_non_member) || c->n_voters > RAFT_MAX_VOTERS)
        return rk_errf(err, RK_EINVAL, "config: %u voters, must be 1..%u", c->n_voters,
                       RAFT_MAX_VOTERS);
    if (c->n_learners > RAFT_MAX_LEARNERS)
        return rk_errf(err, RK_EINVAL, "config: %u learners, at most %u", c->n_learners,
                       RAFT_MAX_LEARNERS);
    bool self = false;
    for (uint32_t i = 0; i < c->n_voters; i++) {
        if (c->voters[i] == RAFT_NONE)
            return rk_errf(err, RK_EINVAL, "config: voter %u has id 0", i);
        for (uint32_t j = 0; j < i; j++) {
            if (c->voters[j] == c->voters[i])
                return rk_errf(err, RK_EINVAL, "config: voter id %llu listed twice",
                               (unsigned long long)c->voters[i]);
        }
        self |= c->voters[i] == c->id;
    }
    struct raft_conf conf = {
        .n_voters = c->n_voters, .n_learners = c->n_learners, .n_addrs = c->n_addrs};
    memcpy(conf.voters, c->voters, sizeof(conf.voters));
    memcpy(conf.learners, c->learners, sizeof(conf.learners));
    memcpy(conf.addrs, c->addrs, sizeof(conf.addrs));
    if (!raft_conf_valid(&conf))
        return rk_errf(err, RK_EINVAL,
                       "config: a learner id is 0, listed twice or a voter, or a bad address");
    if (!self && !c->allow_non_member)
        return rk_errf(err, RK_EINVAL, "config: id %llu is not among the voters",
                       (unsigned long long)c->id);
    if (c->heartbeat_ticks == 0 || c->election_ticks_min <= c->heartbeat_ticks ||
        c->election_ticks_max < c->election_ticks_min)
        return rk_errf(err, RK_EINVAL,
                       "config: need 0 < heartbeat_ticks (%u) < election_ticks_min (%u) <= "
                       "election_ticks_max (%u)",
                       c->heartbeat_ticks, c->election_ticks_min, c->election_ticks_max);
    if (c->max_inflight == 0 || c->max_append_entries == 0 || c->max_append_bytes == 0)
        return rk_errf(err, RK_EINVAL, "config: replication limits must be >= 1");
    return RK_OK;
}

/* The loaded log must be what raft itself would have written. */
static int raft_validate_state(const struct raft_config *c, struct rk_errmsg *err)
{
    uint64_t prev_term = c->snapshot_term;
    for (size_t i = 0; i < c->n_entries; i++) {
        const struct raft_entry *e = &c->entries[i];
        if (e->index != c->snapshot_index + 1 + i)
            return rk_errf(err, RK_EINVAL, "state: entry %zu has index %llu, expected %llu", i,
                           (unsigned long long)e->index,
                           (unsigned long long)(c->snapshot_index + 1 + i));
        if (e->term == 0 || e->term < prev_term || e->term > c->hard_state.term)
            return rk_errf(err, RK_EINVAL, "state: entry %llu has term %llu, outside [%llu, %llu]",
                           (unsigned long long)e->index, (unsigned long long)e->term,
                           (unsigned long long)prev_term, (unsigned long long)c->hard_state.term);
        prev_term = e->term;
        struct raft_conf conf;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &conf) != RK_OK)
            return rk_errf(err, RK_EINVAL, "state: entry %llu: a malformed configuration",
                           (unsigned long long)e->index);
    }
    uint64_t last = c->snapshot_index + c->n_entries;
    if (c->applied > last || c->applied < c->snapshot_index)
        return rk_errf(err, RK_EINVAL, "state: applied index %llu outside the log [%llu, %llu]",
                       (unsigned long long)c->applied, (unsigned long long)c->snapshot_index,
                       (unsigned long long)last);
    /* A vote may name a node the configuration has removed since: not checked. */
    if ((c->snapshot_index == 0) != (c->snapshot_term == 0))
        return rk_errf(err, RK_EINVAL, "state: snapshot index %llu with term %llu",
                       (unsigned long long)c->snapshot_index, (unsigned long long)c->snapshot_term);
    if (c->snapshot_term > c->hard_state.term)
        return rk_errf(err, RK_EINVAL, "state: snapshot term %llu above term %llu",
                       (unsigned long long)c->snapshot_term,
                       (unsigned long long)c->hard_state.term);
    return RK_OK;
}

int raft_create(const struct raft_config *c, struct raft **out, struct rk_errmsg *err)
{
    int rc = raft_validate_config(c, err);
    if (rc == RK_OK)
        rc = raft_validate_state(c, err);
    if (rc != RK_OK)
        return rc;
    const struct rk_alloc *a = c->alloc != NULL ? c->alloc : rk_alloc_libc();
    struct raft *r = rk_malloc(a, sizeof(*r));
    if (r == NULL)
        return rk_errf(err, RK_ENOMEM, "raft: allocating the node");
    memset(r, 0, sizeof(*r));
    r->cfg = *c;
    r->cfg.entries = NULL;
    r->cfg.n_entries = 0;
    r->alloc = a;
    rk_prng_seed(&r->prng, c->seed);
    r->term = c->hard_state.term;
    r->vote = c->hard_state.vote;
    r->snap_index = c->snapshot_index;
    r->snap_term = c->snapshot_term;
    r->prev_hs = c->hard_state;
    r->hs_durable_term = c->hard_state.term;
    for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
        r->prs[i].inflight = rk_malloc(a, c->max_inflight * sizeof(uint64_t));
        if (r->prs[i].inflight == NULL)
            goto err_free;
    }
    r->snap_conf.n_voters = c->n_voters;
    r->snap_conf.n_learners = c->n_learners;
    memcpy(r->snap_conf.voters, c->voters, sizeof(r->snap_conf.voters));
    memcpy(r->snap_conf.learners, c->learners, sizeof(r->snap_conf.learners));
    r->snap_conf.n_addrs = c->n_addrs;
    memcpy(r->snap_conf.addrs, c->addrs, sizeof(r->snap_conf.addrs));
    raft_conf_use(r, &r->snap_conf, 0); /* the log's configuration entries follow */
    for (size_t i = 0; i < c->n_entries; i++) {
        const struct raft_entry *e = &c->entries[i];
        if (raft_log_append(r, e->term, e->type, e->data, e->len) != RK_OK)
            goto err_free;
    }
    r->persisted = raft_last_index(r);
    r->written = r->persisted;
    r->applied = c->applied;
    /* The commit index may have been persisted lazily; what was applied was committed. */
    r->commit = c->hard_state.commit > c->applied ? c->hard_state.commit : c->applied;
    if (r->commit > raft_last_index(r))
        r->commit = raft_last_index(r);
    r->prev_hs.commit = r->commit;
    r->role = RAFT_FOLLOWER;
    raft_check_fresh(r); /* a single voter */
    raft_reset_election_timer(r);
    *out = r;
    return RK_OK;
err_free:
    raft_destroy(r);
    return rk_errf(err, RK_ENOMEM, "raft: allocating the loaded state");
}

void raft_destroy(struct raft *r)
{
    if (r == NULL)
        return;
    const struct rk_alloc *a = r->alloc;
    for (size_t i = 0; i < r->n_ents; i++)
        rk_free(a, r->ents[i].data);
    rk_free(a, r->ents);
    for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++)
        rk_free(a, r->prs[i].inflight);
    raft_msg_vec_clear(r, &r->msgs);
    raft_msg_vec_clear(r, &r->msgs_after);
    rk_free(a, r->msgs.v);
    rk_free(a, r->msgs_after.v);
    for (size_t i = 0; i < r->n_garbage; i++)
        rk_free(a, r->garbage[i]);
    rk_free(a, r->garbage);
    rk_free(a, r->reads);
    rk_free(a, r->read_states);
    rk_free(a, r->snap_needed);
    rk_free(a, r);
}

void raft_status(const struct raft *r, struct raft_status *st)
{
    st->id = r->cfg.id;
    st->role = r->role;
    st->term = r->term;
    st->vote = r->vote;
    st->leader = r->leader;
    st->commit = r->commit;
    st->applied = r->applied;
    st->first_index = r->snap_index + 1;
    st->last_index = raft_last_index(r);
    st->last_term = raft_last_term(r);
    st->persisted_index = r->persisted;
    st->log_bytes = r->ent_bytes;
    st->transfer_target = r->transfer_target;
    st->snapshot_index = r->snap_index;
    st->snapshot_term = r->snap_term;
    st->promised_index = r->promise_term != 0 ? RAFT_PROMISE_UNKNOWN : r->cfg.promised_index;
    st->voter = r->self_voter;
    st->conf_index = r->conf_index;
    st->n_voters = r->conf.n_voters;
    st->n_learners = r->conf.n_learners;
}

bool raft_progress(const struct raft *r, uint32_t i, struct raft_progress_status *ps)
{
    if (r->role != RAFT_LEADER || i >= raft_n_members(r) || i == r->self_idx)
        return false;
    const struct raft_progress *pr = &r->prs[i];
    ps->id = pr->id;
    ps->match = pr->match;
    ps->next = pr->next;
    ps->replicating = pr->replicating;
    ps->snapshotting = pr->snapshotting;
    ps->inflight = pr->n_inflight;
    ps->recent_active = pr->recent_active;
    ps->learner = !raft_is_voter_idx(r, i);
    return true;
}

void raft_counters(const struct raft *r, struct raft_counters *c)
{
    *c = r->counters;
}

/* The invariants, with the O(n) walk over the log only from index from (0: none) on: what a
 * batch appended. Returns true (it asserts), for RK_ASSERT_SLOW. */
static bool raft_invariants_hold_since(const struct raft *r, uint64_t from)
{
    uint64_t last = raft_last_index(r);
    RK_ASSERT(r->commit <= last);       /* I1 */
    RK_ASSERT(r->applied <= r->commit); /* I1 */
    RK_ASSERT(r->persisted <= r->written);
    RK_ASSERT(r->written <= last);
    RK_ASSERT(raft_last_term(r) <= r->term); /* I2 */
    if (from > r->snap_index && from <= last) {
        uint64_t prev = raft_term_at(r, from - 1);
        for (uint64_t i = from; i <= last; i++) {
            const struct raft_entry *e = raft_entry_at(r, i);
            RK_ASSERT(e->index == i);
            RK_ASSERT(e->term >= prev); /* I2 */
            prev = e->term;
        }
    }
    if (r->role == RAFT_LEADER) {
        for (uint32_t i = 0; i < raft_n_members(r); i++) {
            if (i == r->self_idx)
                continue;
            RK_ASSERT(r->prs[i].match < r->prs[i].next); /* I5 */
            RK_ASSERT(r->prs[i].next <= last + 1);       /* I5 */
        }
    }
    return true;
}

void raft_check_invariants(const struct raft *r)
{
    uint64_t last = raft_last_index(r);
    RK_ASSERT(r->commit <= last);                                         /* I1 */
    RK_ASSERT(r->applied <= r->commit);                                   /* I1 */
    RK_ASSERT(r->applied <= r->persisted || r->applied <= r->snap_index); /* I1 */
    RK_ASSERT(r->persisted <= r->written);
    RK_ASSERT(r->written <= last);
    uint64_t bytes = 0;
    for (size_t i = 0; i < r->n_ents; i++)
        bytes += r->ents[i].len;
    RK_ASSERT(bytes == r->ent_bytes);
    uint64_t prev = r->snap_term;
    for (size_t i = 0; i < r->n_ents; i++) {
        RK_ASSERT(r->ents[i].index == r->snap_index + 1 + i);
        RK_ASSERT(r->ents[i].term >= prev); /* I2 */
        RK_ASSERT(r->ents[i].term <= r->term);
        prev = r->ents[i].term;
    }
    if (r->role == RAFT_LEADER) {
        RK_ASSERT(r->leader == r->cfg.id);
        for (uint32_t i = 0; i < raft_n_members(r); i++) {
            if (i == r->self_idx)
                continue;
            RK_ASSERT(r->prs[i].match < r->prs[i].next); /* I5 */
            RK_ASSERT(r->prs[i].next <= last + 1);       /* I5 */
            RK_ASSERT(r->prs[i].n_inflight <= r->cfg.max_inflight);
        }
    }
}
