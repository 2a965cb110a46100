/*
 * raft.h — the Raft consensus state machine, pure: no I/O, no clock, no randomness of its own.
 *
 * Specification: Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm"
 * (extended version), Figure 2; plus from Ongaro's thesis PreVote (§9.6), CheckQuorum and
 * leader stickiness (§6.2, §4.2.3), ReadIndex (§6.4), leadership transfer (§3.10), fast log
 * back-up (§5.3 of the paper, "conflict term") and the leader writing its log in parallel with
 * replication (§10.2.1).
 *
 * Shape (etcd raft): the host feeds inputs — raft_tick(), raft_step(), raft_propose(),
 * raft_read_index(), raft_transfer_leader() — none of which performs or calls back into I/O.
 * Then it takes one batch of outputs with raft_ready() and, after acting on it, calls
 * raft_advance(). The order in which the host must act on a ready batch:
 *
 *   1. send rd.msgs                    (may go at once: leader appends, heartbeats and their
 *                                       replies, pre-votes)
 *   2. if rd.truncate_from != 0: delete stored entries with index >= rd.truncate_from
 *      append rd.entries; persist rd.hard_state if rd.has_hard_state; then sync
 *   3. send rd.msgs_after_persist      (vote replies, append acknowledgments, vote requests:
 *                                       they promise what step 2 made durable)
 *   4. apply rd.committed in order; serve rd.read_states once applied up to their index
 *   5. raft_advance(r, &rd)
 *
 * Everything a ready batch points to stays valid until raft_advance().
 *
 * Asynchronous persistence (etcd raft's AsyncStorageWrites): a host whose storage runs off its
 * event loop does step 2 by handing a copy of the batch's truncation, entries and hard state to
 * its storage, together with rd.msgs_after_persist, and calls raft_advance_async() at once
 * (steps 1 and 4 as above: only entries already durable are in rd.committed). When that write
 * is durable, the host sends the messages it held and calls raft_persisted() with the batch's
 * last entry, and raft_hard_state_persisted() when it had a hard state; writes complete in the
 * order they were handed out. Until then the batch's entries
 * are neither counted in the leader's own quorum nor applied, and a later batch may already be
 * on its way: that is the leader writing its log while its followers write theirs (§10.2.1).
 *
 * Invariants held by struct raft (checked by raft_check_invariants in slow-assert builds):
 *   I1  commit <= last index; applied <= commit; applied <= persisted index.
 *   I2  log terms never decrease along the log and are <= term.
 *   I3  a leader's own log is append-only for the whole of its term.
 *   I4  vote != 0 only for the current term (a new term clears the vote).
 *   I5  for each peer, match < next and next <= last index + 1 (leader only).
 *
 * Roles and the functions behind each transition:
 *
 *                 tick: election timeout            majority of pre-votes
 *   +----------+  (become_pre_candidate)  +---------------+  (become_candidate)  +-----------+
 *   | follower | -----------------------> | pre-candidate | -------------------> | candidate |
 *   +----------+ <----------------------- +---------------+                      +-----------+
 *     ^  ^  ^         higher term / leader of this term (become_follower)          |  |
 *     |  |  +--------------------------------------------------------------------+  |
 *     |  |  higher term, CheckQuorum failure       +--------+   majority of votes   |
 *     |  +---------------------------------------- | leader | <---------------------+
 *     |              (become_follower)             +--------+  (become_leader)
 *     +-- TimeoutNow skips the pre-vote: follower -> candidate directly.
 */
#ifndef RAFT_H
#define RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/alloc.h"
#include "../common/err.h"
#include "../common/prng.h"

#define RAFT_MAX_VOTERS   9
#define RAFT_MAX_LEARNERS 7
#define RAFT_MAX_MEMBERS  (RAFT_MAX_VOTERS + RAFT_MAX_LEARNERS)
#define RAFT_NONE       0 /* no node: node ids are >= 1 */
/* Default largest proposal: a 64 MiB value plus a 64 KiB key and the command around them. */
#define RAFT_DEFAULT_MAX_ENTRY_BYTES ((64u << 20) + (68u << 10))
/* raft_config.promised_index when the promise itself is lost (a lost hard state, a repaired
 * directory), and when it is not known because the directory is new (a new node, or a wiped or
 * replaced disk: it cannot tell which). Only a new directory may resolve it by seeing every other
 * voter's log empty (a new cluster); both resolve at a leader's APPEND. UNKNOWN > NEW: a repair
 * of a new directory makes it unknown (promises only grow). */
#define RAFT_PROMISE_UNKNOWN UINT64_MAX
#define RAFT_PROMISE_NEW           (UINT64_MAX - 1)
#define RAFT_PROMISE_IS_UNKNOWN(p) ((p) >= RAFT_PROMISE_NEW)

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE,
    RAFT_CANDIDATE,
    RAFT_LEADER,
};

const char *raft_role_name(enum raft_role role);

/* The numbers of entry and message types are wire values (core/codec): never renumber. */
enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1, /* opaque data for the state machine */
    RAFT_ENTRY_NOOP = 2,   /* appended by a new leader to commit its term (§8) */
    RAFT_ENTRY_CONF = 3,   /* a configuration: raft_conf_encode's bytes (thesis §4.1) */
};

/*
 * A cluster configuration (thesis ch. 4): the voters, which make up every quorum, and the
 * learners (non-voters), which receive the log but never count in a quorum and never campaign.
 * No id is in both lists. Changes are single-server (§4.1): see core/raft/MEMBERSHIP.md.
 */
/* Bytes of an address in a configuration, its NUL included ("host:port"). */
#define RAFT_ADDR_MAX 64

/* A member's addresses (issue #17: addresses live in the configuration, as etcd's member list):
 * opaque to raft, which only carries them. "" is unknown. Printable ASCII without spaces. */
struct raft_member_addr {
    uint64_t id;
    char peer[RAFT_ADDR_MAX];   /* where the other members connect to it */
    char client[RAFT_ADDR_MAX]; /* where clients connect to it (hints, raftkv-cli) */
};

struct raft_conf {
    uint32_t n_voters;
    uint32_t n_learners;
    uint64_t voters[RAFT_MAX_VOTERS];
    uint64_t learners[RAFT_MAX_LEARNERS];
    /* Addresses of some members (each a member, none twice); a member without an entry (a
     * configuration written before addresses were carried) has none. */
    uint32_t n_addrs;
    struct raft_member_addr addrs[RAFT_MAX_MEMBERS];
};

/* Encoding. Version 1 (no address; still written when there is none, and always read):
 *   [1][n_voters u8][n_learners u8][ids u64 LE: voters, then learners]
 * Version 2: version 1's fields after [2], then
 *   [n_addrs u8] n_addrs x ([id u64 LE][peer_len u8][peer][client_len u8][client]) */
#define RAFT_CONF_ENCODED_MAX                                                                      \
    (4 + 8 * RAFT_MAX_MEMBERS + RAFT_MAX_MEMBERS * (8 + 2 + 2 * (RAFT_ADDR_MAX - 1)))
size_t raft_conf_encoded_size(const struct raft_conf *c);
/* Writes c into out (raft_conf_encoded_size(c) bytes, at most RAFT_CONF_ENCODED_MAX); returns
 * the size. This is the data of a RAFT_ENTRY_CONF entry and the configuration in a snapshot. */
size_t raft_conf_encode(const struct raft_conf *c, uint8_t *out);
/* Decodes untrusted bytes: RK_EMALFORMED unless they are exactly one well-formed
 * configuration (known version, ids >= 1, none twice, at least one voter; addresses of
 * members, none twice, printable). */
int raft_conf_decode(const uint8_t *data, size_t len, struct raft_conf *c);
/* Predicates on a configuration. */
bool raft_conf_is_voter(const struct raft_conf *c, uint64_t id);
bool raft_conf_is_learner(const struct raft_conf *c, uint64_t id);
/* The addresses of member id, or NULL (none recorded). */
const struct raft_member_addr *raft_conf_addr(const struct raft_conf *c, uint64_t id);
/* Records a's addresses for member a->id (replacing any; both "" drops the entry). RK_EINVAL:
 * not a member, or an address that is too long or not printable. */
int raft_conf_set_addr(struct raft_conf *c, const struct raft_member_addr *a);
/* Whether s is a well-formed address for a configuration (shorter than RAFT_ADDR_MAX, bytes
 * 0x21..0x7e). "" is. */
bool raft_addr_valid(const char *s);

struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type;  /* enum raft_entry_type */
    uint32_t len;  /* bytes of data */
    uint8_t *data; /* NULL when len == 0 */
};

/* What must be durable before messages that depend on it are sent (Figure 2 "persistent
 * state"). commit is persisted too so that a restart can re-apply without waiting for a leader;
 * it is a hint, not a promise: a hard state whose term and vote did not change may be written
 * without a sync of its own. */
struct raft_hard_state {
    uint64_t term;
    uint64_t vote; /* RAFT_NONE or the candidate voted for in term */
    uint64_t commit;
};

enum raft_msg_type {
    RAFT_MSG_PRE_VOTE = 1,    /* thesis §9.6: would you vote for me in term+1? */
    RAFT_MSG_PRE_VOTE_RESP,   /* reject == false: yes */
    RAFT_MSG_VOTE,            /* RequestVote RPC */
    RAFT_MSG_VOTE_RESP,       /* reject == false: vote granted */
    RAFT_MSG_APPEND,          /* AppendEntries RPC with entries */
    RAFT_MSG_APPEND_RESP,     /* success or rejection with a conflict hint */
    RAFT_MSG_HEARTBEAT,       /* leadership + commit + read context, no log check */
    RAFT_MSG_HEARTBEAT_RESP,  /* echoes ctx: confirms leadership for ReadIndex */
    RAFT_MSG_TIMEOUT_NOW,     /* leadership transfer: start an election now */
    RAFT_MSG_READ_INDEX,      /* follower -> leader: a ReadIndex request for ctx */
    RAFT_MSG_READ_INDEX_RESP, /* leader -> follower: index for ctx, or reject */
    RAFT_MSG_TYPE_COUNT
};

/* "append", "vote_resp", ...: lowercase names, used in logs and error messages. */
const char *raft_msg_type_name(int type);

/*
 * One flat message, like etcd's raftpb.Message; each type uses the fields listed beside it.
 * The codec encodes only the fields of the type.
 */
struct raft_msg {
    uint8_t type; /* enum raft_msg_type */
    uint64_t from;
    uint64_t to;
    uint64_t term;
    /* PRE_VOTE, VOTE: the candidate's last log entry; APPEND: the entry before entries. */
    uint64_t log_index;
    uint64_t log_term;
    /* APPEND, HEARTBEAT: the leader's commit index. */
    uint64_t commit;
    /* APPEND: entries; borrowed from the sender (raft_step copies what it keeps). */
    uint32_t n_entries;
    struct raft_entry *entries;
    /* *_RESP: true when refused. */
    bool reject;
    /* VOTE, PRE_VOTE: the election was started by TimeoutNow, bypass leader stickiness. */
    bool transfer;
    /* APPEND_RESP: on success the highest index known to match; on reject the log_index that
     * was refused. READ_INDEX_RESP: the read index. */
    uint64_t index;
    /* APPEND_RESP on reject: the follower's term at log_index (0 if it has no such entry) and
     * the first index it holds of that term (or its last index + 1). Thesis §5.3. */
    uint64_t conflict_term;
    uint64_t conflict_index;
    /* HEARTBEAT, HEARTBEAT_RESP: the read round; READ_INDEX(_RESP): the caller's context. */
    uint64_t ctx;
};

/* A linearizable read may be served once the state machine has applied index (§6.4). */
struct raft_read_state {
    uint64_t ctx;
    uint64_t index;
};

/* Logging sink: core never writes to stderr itself. Levels as syslog: 3 err, 4 warn, 6 info,
 * 7 debug. */
struct raft_logger {
    void (*fn)(void *ctx, int level, const char *text);
    void *ctx;
};

struct raft_config {
    uint64_t id;
    /* The configuration before the first entry of the log: the one of the snapshot, or the
     * bootstrap configuration of a new cluster. voters must include id unless
     * allow_non_member; the configuration entries of the log override it. */
    uint64_t voters[RAFT_MAX_VOTERS];
    uint32_t n_voters;
    uint64_t learners[RAFT_MAX_LEARNERS];
    uint32_t n_learners;
    /* The addresses of that configuration's members (raft_conf's addrs). */
    uint32_t n_addrs;
    struct raft_member_addr addrs[RAFT_MAX_MEMBERS];
    /* A node that is not (yet) a voter: a learner, a new node that joins with an empty
     * configuration (n_voters 0), or a removed one. It campaigns only once its latest
     * configuration makes it a voter. */
    bool allow_non_member;
    /* Timing, in ticks. Each election timeout is drawn uniformly from [min, max]. */
    uint32_t election_ticks_min;
    uint32_t election_ticks_max;
    uint32_t heartbeat_ticks;
    uint64_t seed;     /* seeds this node's PRNG (election timeouts) */
    bool pre_vote;     /* thesis §9.6 */
    bool check_quorum; /* step down without a majority; leader stickiness on votes */
    /* Replication limits. */
    uint32_t max_append_bytes;   /* entry data per APPEND (at least one entry is sent) */
    uint32_t max_append_entries; /* entries per APPEND */
    uint32_t max_inflight;       /* APPENDs in flight per follower (pipelining window) */
    uint32_t max_entry_bytes;    /* a proposal larger than this is refused with RK_ETOOBIG */
    /* State loaded from storage. Entries are copied; they must be contiguous and start at
     * snapshot_index + 1. applied is the index the state machine has durably applied. */
    struct raft_hard_state hard_state;
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    const struct raft_entry *entries;
    size_t n_entries;
    uint64_t applied;
    /* Issue #15 (Protocol-Aware Recovery, Alagappan et al., FAST'18): this node may have
     * acknowledged entries up to here that its log no longer holds (a log cut after damage in
     * synced data: struct log_damage's acked_index). Until its commit index reaches it — the
     * entries re-supplied by a leader, which holds every committed one — it grants no vote or
     * pre-vote and starts no election, so its lost promises cannot help elect a leader that
     * lacks a committed entry. Its acknowledgments of what it now holds count as any other's.
     * 0: none. Requires a durable term at least the one it acknowledged in (a damaged log, not
     * a lost hard state: see core/log/INTEGRITY.md).
     * RAFT_PROMISE_UNKNOWN: what it promised is not known at all (its hard state was lost: a
     * wiped or new disk, or a hard state that does not check out). It then takes no part in
     * elections until it has heard an APPEND of a leader: the promise becomes the larger of
     * that leader's commit index and the end of that APPEND (anchored at the leader's next
     * index for the node, past all it ever sent it), and the node waits until its commit index
     * holds an entry of the leader's term too; that covers every entry committed before the
     * node lost its state, unless the leader is a deposed one (INTEGRITY.md), and if the node
     * has not voted in that
     * leader's term it records a vote for that leader, so that it cannot vote a second time in
     * a term it may have voted in before. */
    uint64_t promised_index;
    const struct rk_alloc *alloc; /* NULL: libc */
    struct raft_logger logger;    /* fn NULL: silent */
};

/* Fills defaults: election 10..20 ticks, heartbeat 1, pre_vote and check_quorum on, 1 MiB and
 * 256 entries per append, 32 in flight, 64 MiB + 64 KiB per entry. Caller sets id and voters. */
void raft_config_default(struct raft_config *c);

struct raft_ready {
    bool has_hard_state;
    struct raft_hard_state hard_state;
    uint64_t truncate_from; /* 0: no truncation */
    const struct raft_entry *entries;
    size_t n_entries;
    const struct raft_msg *msgs;
    size_t n_msgs;
    const struct raft_msg *msgs_after_persist;
    size_t n_msgs_after_persist;
    const struct raft_entry *committed;
    size_t n_committed;
    const struct raft_read_state *read_states;
    size_t n_read_states;
    /* Leader: followers whose next entry was compacted away; the host sends each a snapshot
     * of its state machine (thesis ch. 5) and reports with raft_snapshot_done. */
    const uint64_t *snapshot_needed;
    size_t n_snapshot_needed;
    /* raft_restore installed a snapshot: the log now starts after (index, term); the host
     * compacts its log store to that point (with the hard state, before the sync). */
    bool has_restore;
    uint64_t restore_index;
    uint64_t restore_term;
    /* Soft state, for the host's information. */
    enum raft_role role;
    uint64_t leader;
};

/* Read-only view for drivers, checkers and tests. */
struct raft_status {
    uint64_t id;
    enum raft_role role;
    uint64_t term;
    uint64_t vote;
    uint64_t leader;
    uint64_t commit;
    uint64_t applied;
    uint64_t first_index; /* first index held in memory */
    uint64_t last_index;
    uint64_t last_term;
    uint64_t persisted_index; /* durable in the host's log: counts in the leader's quorum */
    uint64_t log_bytes;       /* data bytes of the entries held in memory */
    uint64_t transfer_target;
    uint64_t snapshot_index; /* the log starts after this */
    uint64_t snapshot_term;
    /* raft_config.promised_index as it stands (an unknown one becomes known at the first
     * APPEND of a leader); the node takes no part in elections while commit is below it. */
    uint64_t promised_index;
    bool voter;          /* a voter in its latest configuration */
    uint64_t conf_index; /* the entry of the configuration in use (0: snapshot/bootstrap) */
    uint32_t n_voters;   /* of the configuration in use */
    uint32_t n_learners;
};

/* Per-follower replication progress as the leader sees it. */
struct raft_progress_status {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    bool replicating; /* false: probing one append at a time */
    bool snapshotting; /* a snapshot is being sent to it */
    uint32_t inflight;
    bool recent_active;
    bool learner;
};

struct raft;

/* Allocates and initializes a node from c (copied). Returns RK_EINVAL with a message when the
 * config or the loaded state is inconsistent. The caller owns *out and frees it with
 * raft_destroy. */
int raft_create(const struct raft_config *c, struct raft **out, struct rk_errmsg *err);
void raft_destroy(struct raft *r);

/* One unit of logical time. */
void raft_tick(struct raft *r);

/* Feeds one message. m and its entries are borrowed for the call only. Messages for another
 * node, from unknown nodes or of unknown types are dropped and counted; returns RK_EINVAL
 * for them, RK_ENOMEM if memory ran out (the message is then treated as lost), RK_OK
 * otherwise. */
int raft_step(struct raft *r, const struct raft_msg *m);

/* Appends data (copied) as a new entry if this node is the leader. Returns RK_ENOTLEADER and
 * sets *leader to the known leader (RAFT_NONE if unknown) otherwise; RK_EBUSY during a
 * leadership transfer; RK_ETOOBIG over max_entry_bytes. On success *index is the entry's
 * index (may be NULL). */
int raft_propose(struct raft *r, const uint8_t *data, uint32_t len, uint64_t *index,
                 uint64_t *leader);
/* As raft_propose, but on RK_OK the entry takes data itself (allocated with the config's
 * allocator, len > 0): no copy, which matters for entries of many megabytes. On any error
 * data stays the caller's. */
int raft_propose_take(struct raft *r, uint8_t *data, uint32_t len, uint64_t *index,
                      uint64_t *leader);

/* Requests a linearizable read. On the leader the read is confirmed by one heartbeat round sent
 * after it was registered; one round is out at a time, and the reads registered meanwhile share
 * the next, sent once that one has its majority (or with the next heartbeat); a follower asks
 * the leader. The answer appears as a read state in a later ready batch (or
 * never, if messages are lost: the host times out). Returns RK_ENOLEADER when no leader is
 * known. */
int raft_read_index(struct raft *r, uint64_t ctx);

/* Transfers leadership to target (thesis §3.10). Only on the leader. Returns RK_ENOTLEADER,
 * RK_EINVAL (unknown target or self), RK_OK. Proposals are refused with RK_EBUSY until the
 * transfer ends or times out after one election timeout. */
int raft_transfer_leader(struct raft *r, uint64_t target);

/* Starts an election now (as if the election timeout had fired). */
void raft_campaign(struct raft *r);

/* Log compaction (thesis ch. 5): the host's state machine is durably snapshotted at index
 * (<= applied and <= the persisted index); raft drops its in-memory entries up to index. The
 * host compacts its log store itself. Returns RK_EINVAL beyond applied, RK_OK otherwise (a
 * compaction behind the current snapshot point does nothing). */
int raft_compact(struct raft *r, uint64_t index);

/* Follower: the host installed a leader's snapshot of the state machine at (index, term).
 * Entries after it are kept if the log holds index with that term (Figure 13: "If existing log
 * entry has same index and term as snapshot's last included entry, retain log entries
 * following it"), otherwise the log is discarded; commit and applied move to index. The next
 * ready has has_restore. RK_ESTALE if index <= commit (nothing to do). */
int raft_restore(struct raft *r, uint64_t index, uint64_t term);
/* As raft_restore, with the configuration the snapshot holds (conf NULL: the snapshot carries
 * none, an old format; the node keeps the configuration it knows). */
int raft_restore_conf(struct raft *r, uint64_t index, uint64_t term, const struct raft_conf *conf);

/* Membership changes (thesis §4.1, single-server, with the 2015 fix): the leader appends a
 * RAFT_ENTRY_CONF entry whose configuration differs from the current one by at most one voter.
 * raft_promote also answers RK_EBUSY while the learner does not hold the leader's commit index
 * (or is receiving a snapshot): a voter that is not caught up could hold up every quorum.
 * Every node uses the latest configuration in its log at once, committed or not. Refused with
 * RK_ENOTLEADER off the leader; RK_EBUSY while a configuration entry is not committed yet (one
 * change at a time), before the leader has committed an entry of its own term (Ongaro's fix,
 * raft-dev 2015), or during a leadership transfer; RK_EINVAL for a change that is not single-
 * server, leaves no voter, or names an unknown id; RK_ETOOBIG when a list is full. */
int raft_add_learner(struct raft *r, uint64_t id, uint64_t *index, uint64_t *leader);
/* As raft_add_learner, with the new member's addresses recorded in the configuration. */
int raft_add_learner_addr(struct raft *r, const struct raft_member_addr *a, uint64_t *index,
                          uint64_t *leader);
/* Proposes the current configuration with member a->id's addresses replaced by a's (no voter
 * changes: the same rules otherwise). RK_EINVAL: not a member, or a bad address. */
int raft_set_member_addr(struct raft *r, const struct raft_member_addr *a, uint64_t *index,
                         uint64_t *leader);
int raft_promote(struct raft *r, uint64_t id, uint64_t *index, uint64_t *leader);
/* Removes a voter or a learner. The leader may remove itself: it leads until the entry is
 * committed, without counting itself in quorums, then hands over (TimeoutNow to the most
 * up-to-date voter) and steps down. */
int raft_remove_member(struct raft *r, uint64_t id, uint64_t *index, uint64_t *leader);
/* Proposes c as the next configuration, with the rules above. */
int raft_propose_conf(struct raft *r, const struct raft_conf *c, uint64_t *index, uint64_t *leader);
/* The configuration in use (the latest in the log) and the index of its entry (0: from the
 * snapshot or the bootstrap configuration). */
void raft_conf_current(const struct raft *r, struct raft_conf *c, uint64_t *index);
/* The configuration in use, without a copy (valid until the next call into r). */
const struct raft_conf *raft_conf_view(const struct raft *r);
/* Changes whenever the configuration in use or its index changes (never 0 once created): a
 * host that acts on the configuration compares this instead of copying it every time. */
uint64_t raft_conf_version(const struct raft *r);
/* The configuration as of index (>= the snapshot index, <= the last index): what a snapshot
 * taken at index must carry. RK_EINVAL outside. */
int raft_conf_at(const struct raft *r, uint64_t index, struct raft_conf *c);

/* Leader: the snapshot sent to follower `to` ended. ok: the follower holds the state up to
 * index, replication resumes from index + 1; otherwise raft asks again when it next needs to. */
void raft_snapshot_done(struct raft *r, uint64_t to, uint64_t index, bool ok);

bool raft_has_ready(const struct raft *r);
/* Fills rd with the batch of outputs accumulated since the last advance. */
void raft_ready(struct raft *r, struct raft_ready *rd);
/* Tells raft that rd was acted on in full: entries and hard state are durable, messages sent,
 * committed entries applied. Frees what rd pointed to. */
void raft_advance(struct raft *r, const struct raft_ready *rd);
/* As raft_advance, except that rd's entries and hard state were only handed to storage:
 * raft_persisted() tells when they are durable. The host's storage may borrow the entries'
 * data instead of copying it: after raft_advance_async, raft frees no entry data on its own;
 * the buffers of entries it dropped (truncated, compacted, replaced by a snapshot) wait for
 * raft_take_garbage, and the host frees them once no write still in flight can read them. */
void raft_advance_async(struct raft *r, const struct raft_ready *rd);
/* Moves the buffers of dropped entries (see raft_advance_async) to the end of the caller's
 * vector *v (n used, cap allocated: grown with the config's allocator); the caller frees each
 * with that allocator. RK_ENOMEM leaves them with raft for a later call. */
int raft_take_garbage(struct raft *r, uint8_t ***v, size_t *n, size_t *cap);
/* Storage made the log durable up to index, whose entry has term (the last entry of a batch
 * advanced with raft_advance_async; 0, 0 for a batch without entries does nothing). A write
 * the log has cut since (conflict, snapshot) is ignored. */
void raft_persisted(struct raft *r, uint64_t index, uint64_t term);
/* Storage made a batch's hard state durable (a batch advanced with raft_advance_async whose
 * rd.has_hard_state was set; term: its rd.hard_state.term). A candidate's election timer runs
 * only once its own term and vote are durable, that is once its vote requests have left: see
 * raft_tick_election. raft_advance() counts as this call for its batch. */
void raft_hard_state_persisted(struct raft *r, uint64_t term);

void raft_status(const struct raft *r, struct raft_status *st);
/* Leader only: progress of the member at position i of the configuration (its voters, then
 * its learners); false if i is self or out of range or not leader. */
bool raft_progress(const struct raft *r, uint32_t i, struct raft_progress_status *ps);
/* The entry at index, if held in memory: borrowed until the next call that changes the log. */
const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index);
/* The term of the entry at index (snapshot_term at snapshot_index); 0 if unknown. */
uint64_t raft_term_at(const struct raft *r, uint64_t index);

/* O(n) check of invariants I1–I5; aborts on violation. For tests and the simulator. */
void raft_check_invariants(const struct raft *r);

/* Counters for observability and tests. */
struct raft_counters {
    uint64_t msgs_dropped;     /* malformed, misaddressed or from unknown nodes */
    uint64_t elections;        /* elections started (pre-vote rounds included) */
    uint64_t leader_changes;   /* times this node became leader */
    uint64_t appends_rejected; /* APPEND_RESP rejections received as leader */
    uint64_t read_rounds;      /* read rounds (ReadIndex) started: each a heartbeat round */
};
void raft_counters(const struct raft *r, struct raft_counters *c);

#endif
