/*
 * scenario.h — the simulator's scenario language: a parsed .scn file.
 *
 * A scenario is a line-oriented text (scenarios/README.md documents every command). Settings
 * (cluster size, Raft timing, network defaults, workload, expectations) may appear anywhere;
 * timed steps (`at 2s partition 1 2 | 3 4 5`) are kept in file order and must not go back in
 * time. Targets such as `leader` or `random minority` stay symbolic here: the simulator resolves
 * them at run time from its seeded PRNG, so one scenario explores differently per seed.
 *
 * Parsing is total: any input yields either a scenario or an error naming file, line and
 * column and what was expected. Nothing is allocated; every list has a fixed bound.
 */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SCN_MAX_NODES 9    /* = RAFT_MAX_VOTERS */
#define SCN_MAX_STEPS 1024
#define SCN_MAX_GROUPS SCN_MAX_NODES
#define SCN_MAX_APPEND_ENTRIES 65536u
#define SCN_MAX_INFLIGHT 1024u
#define SCN_MAX_LINE_BYTES 4096 /* a line, without its line ending */
#define SCN_MAX_LINES 100000
#define SCN_MAX_DURATION_US (365ULL * 24 * 3600 * 1000000) /* any duration or time: one year */
#define SCN_MAX_CHAOS_RATE 1000.0 /* chaos events per virtual second */
#define SCN_MIN_SKEW 0.01         /* `skew SET FACTOR`: FACTOR in [SCN_MIN_SKEW, SCN_MAX_SKEW] */
#define SCN_MAX_SKEW 100.0
#define SCN_MAX_REFUSALS       4    /* `expect refusal TEXT` lines */
#define SCN_REFUSAL_BYTES      96   /* TEXT, NUL included */
#define SCN_MAX_STEPDOWN       1000 /* `expect stepdown within N elections`: N in 1..this */
#define SCN_KEY_GROUP 3   /* keys per group of MSET and MGET */
#define SCN_MAX_PIPELINE 64

/* A set of nodes, resolved at run time. */
enum scn_set_kind {
    SCN_SET_IDS = 1,         /* explicit ids: 1 2 3 */
    SCN_SET_LEADER,          /* the current leader (highest term); none: the step is skipped */
    SCN_SET_FOLLOWER,        /* one random node that is not the leader */
    SCN_SET_RANDOM,          /* one random node */
    SCN_SET_RANDOM_MINORITY, /* a random set of floor((n-1)/2) nodes */
    SCN_SET_RANDOM_MAJORITY, /* a random set of n/2+1 nodes */
    SCN_SET_ALL,             /* every node */
    SCN_SET_REST,            /* partition only, at most one: every node no other group took */
};

struct scn_set {
    uint8_t kind; /* enum scn_set_kind */
    uint32_t n_ids;
    uint32_t ids[SCN_MAX_NODES]; /* SCN_SET_IDS: 1-based node ids, no duplicates */
};

enum scn_action {
    SCN_PARTITION = 1, /* groups[0..n_groups): nodes in different groups cannot talk.
                        * `partition random` (n_groups == 0): random halves */
    SCN_ONEWAY,        /* messages from groups[0] to groups[1] are dropped: `oneway 1 2 -> 3` */
    SCN_ISOLATE,       /* groups[0] cut off from everyone else: `isolate leader` */
    SCN_HEAL,          /* every partition and one-way cut removed */
    SCN_CRASH,         /* groups[0] crash: state lost but for what was synced */
    SCN_RESTART,       /* groups[0] restart (`restart all` = every crashed node) */
    SCN_PAUSE,         /* groups[0] stop processing (messages queue up, no ticks) */
    SCN_RESUME,        /* groups[0] resume (`resume all`) */
    SCN_SKEW,          /* groups[0]'s clocks tick at `factor` times the normal rate */
    SCN_SET_NET,       /* change a network setting mid-run: `set drop 0.2` (param, value).
                        * `set latency 1ms 9ms` is two steps with the same time and line:
                        * SCN_NET_LATENCY_MIN, then SCN_NET_LATENCY_MAX */
    SCN_ADD,           /* groups[0] join as learners (core/raft/MEMBERSHIP.md): `add 4` */
    SCN_PROMOTE,       /* groups[0] (learners) become voters: `promote 4` */
    SCN_REMOVE,        /* groups[0] leave the configuration: `remove leader` */
    SCN_MOVE,          /* groups[0] restart at a new address, and an operator records it in
                        * the configuration (RAFTKV.MEMBER UPDATE): `move 3` */
};

enum scn_net_param {
    SCN_NET_DROP = 1,
    SCN_NET_DUPLICATE,
    SCN_NET_REORDER,
    SCN_NET_LATENCY_MIN,
    SCN_NET_LATENCY_MAX,
};

struct scn_step {
    uint64_t at_us;   /* virtual time of the step */
    uint8_t action;   /* enum scn_action */
    uint32_t n_groups;
    struct scn_set groups[SCN_MAX_GROUPS];
    double factor;    /* SCN_SKEW: clock rate; SCN_SET_NET: the new value (probability, or
                       * microseconds for latencies) */
    uint8_t param;    /* SCN_SET_NET: enum scn_net_param */
    uint32_t line;    /* source line, for traces (not preserved by a print/parse round trip) */
};

/* Random faults injected at a rate, as by `chaos crash 0.1` (events per virtual second, in
 * [0, SCN_MAX_CHAOS_RATE]; default 0). A crashed node restarts after `chaos downtime MIN MAX`
 * (default 1s 3s); a random partition heals after the same. */
struct scn_chaos {
    double crash_per_s;
    double partition_per_s;
    double pause_per_s;
    double skew_per_s;
    /* `chaos member RATE`: a random membership change (add a node outside the configuration as
     * a learner, promote a learner, or remove a member, the leader included, while more than
     * `members` voters remain... at least 3) at this rate. */
    double member_per_s;
    uint64_t downtime_us_min;
    uint64_t downtime_us_max;
};

/* The nodes' disks (sim/simdisk.h) and the storage engine on them. */
struct scn_disk {
    bool torn;               /* `disk torn on`: a crash may keep torn tails of unsynced bytes */
    double bitflip;          /* `disk bitflip P`: a read returns one flipped bit */
    double errors;           /* `disk errors P`: a read, write or sync fails (EIO/ENOSPC) */
    uint64_t sync_us;        /* `disk slow DUR`: what a sync costs (the node stalls) */
    bool crashpoints;        /* `disk crashpoints on`: a crash lands at a random fs call */
    uint64_t merge_us;       /* `disk merge DUR`: Bitcask merge on each node about that often */
    uint32_t file_bytes;     /* `disk rotate N`: Bitcask data files rotate past N bytes */
    uint32_t sync_ticks;     /* `disk sync N`: the state machine is synced every N ticks */
    /* Persistent damage (sim/simdisk.h; at most a minority of the nodes is ever damaged): */
    double rot;       /* `disk rot P`: a crash leaves a flipped bit in synced data */
    double badsector; /* `disk badsector P`: a crash leaves a sector no read gets through */
    double lost;      /* `disk lost P`: a write is acknowledged but never reaches the media */
    double misdirect; /* `disk misdirect P`: a write reaches the media at another offset */
    /* `disk io MIN MAX`: a group of Raft log writes takes this long (uniform), before its sync's
     * `disk slow`; default 20us 400us. A range wider than the network's latency lets a leader's
     * own write finish after its followers' acknowledgments. */
    uint64_t io_us_min, io_us_max;
    /* `disk storeio MIN MAX`: a job of the store's deferred writes (bitcask.h) takes this long
     * (uniform), plus `disk slow` when it syncs; default 20us 400us. */
    uint64_t store_io_us_min, store_io_us_max;
    double wipe;      /* `disk wipe P`: a crash loses the node's whole data directory (a new
                         disk: issue #15.3) */
    /* `disk damaged N`: how many nodes (the highest ids) the damage may strike; 0: a minority,
     * (nodes - 1) / 2. Beyond a minority the cluster may halt (issue #15: it must not guess):
     * the end-of-run check then accepts no leader while fewer than a quorum of running nodes
     * are free of a promise (sim.c, check_recovery), and nothing else. */
    uint32_t damaged_nodes;
};

struct scenario {
    char name[128]; /* file name as given */
    /* Cluster and Raft timing. */
    uint32_t nodes;            /* `nodes 5`, default 3 */
    /* `members 3`: the cluster starts with nodes 1..3 as its voters; the others start with
     * an empty directory and no configuration, as new nodes that may be added (`add`, `chaos
     * member`). Default 0: every node is a voter. Learners are promoted automatically once
     * caught up (replica auto_promote_ticks). */
    uint32_t members;
    uint64_t tick_us;          /* `tick 10ms`: virtual time of one Raft tick, default 10ms */
    uint32_t election_ticks_min, election_ticks_max; /* `election 10 20`, default 10 20 */
    uint32_t heartbeat_ticks;  /* `heartbeat 2`, default 1; below election_ticks_min */
    bool pre_vote;             /* `prevote on|off`, default on */
    bool check_quorum;         /* `checkquorum on|off`, default on */
    uint32_t append_entries;   /* `replication 8 4`: entries per AppendEntries, default 256 */
    uint32_t inflight;         /* ... and AppendEntries in flight per follower, default 32 */
    uint32_t compact_entries;  /* `snapshot 500 50`: compact the log past 500 entries ... */
    uint32_t compact_keep;     /* ... keeping 50 behind applied; default 0 0: never */
    /* Network defaults. */
    uint64_t latency_us_min, latency_us_max; /* `latency 1ms 5ms`, default 1ms 5ms */
    double drop, duplicate, reorder;         /* probabilities in [0, 1], default 0 */
    uint64_t reorder_us_max;                 /* `reorder 0.05 20ms`: extra delay of a reordered
                                              * message, default 10 x latency_max (capped at
                                              * SCN_MAX_DURATION_US) */
    /* Workload. */
    uint32_t clients;          /* `clients 8`, default 4 */
    uint32_t keys;             /* `keys 5`, default 3 */
    uint32_t mix_get, mix_put, mix_del; /* `mix get 50 put 40 del 10` (weights), default 50/40/10 */
    /* More kinds for `mix` (default 0): `incr` INCRBY, `putif` SET NX/XX, `mset` MSET and
     * `mget` MGET of a fixed group of SCN_KEY_GROUP keys (k1..k3, k4..k6, ...). */
    uint32_t mix_incr, mix_putif, mix_mset, mix_mget;
    /* Generic commands (REPLICA_CMD; scenarios/README.md "The workload"), `pipeline` only:
     * `txn` MULTI/EXEC over one key group, `watch` WATCH then EXEC, `expire` SET PX, PEXPIRE,
     * PERSIST or PTTL, `append`, `getdel`, `setnx` SETNX or MSETNX, `rename` (within a group). */
    uint32_t mix_txn, mix_watch, mix_expire, mix_append, mix_getdel, mix_setnx, mix_rename;
    /* `scan` a whole SCAN iteration (pages of COUNT 1..8 with a MATCH, each page one request,
     * the connection moving to another node between pages now and then), `keys` KEYS with
     * DBSIZE at the same index (sim/README.md "SCAN, KEYS and DBSIZE"). */
    uint32_t mix_scan, mix_keys;
    /* `bits`: SETBIT, GETBIT, BITCOUNT, BITPOS on a key, or BITOP over its group (WL_BITS). */
    uint32_t mix_bits;
    /* `pipeline N [followers]`: each client is a connection to one node (a follower when asked,
     * at connect time) with up to N requests in flight, sent and answered in order, on one
     * session; 0 (the default): one op at a time, each attempt to any node. */
    uint32_t pipeline;
    bool pipeline_followers;
    uint64_t think_us_min, think_us_max; /* `think 0ms 20ms`: pause between a client's ops,
                                          * default 0s 10ms */
    uint64_t timeout_us;       /* `timeout 500ms`: a client gives up on an attempt, default 1s */
    uint64_t duration_us;      /* `duration 20s`: clients issue ops until then, default 10s */
    /* `wallclock 50ms`: each node's wall clock (expiry, kv.h TIME) starts at a random offset
     * within this of true time and drifts with its `skew` rate, kept within it (as NTP keeps
     * real clocks); default 0: every wall clock exact. */
    uint64_t wallclock_us;
    /* Expectations, checked after the last fault heals (every step done, chaos stopped, all
     * nodes restarted and resumed at `duration`). 0: not checked (`expect leader off`, the
     * default). */
    uint64_t expect_leader_us;   /* `expect leader within 2s` */
    uint64_t expect_complete_us; /* `expect complete within 5s`: every pending op answered */
    uint64_t expect_disk_bytes;  /* `expect disk below 512` (KiB): a node's disks, always */
    /* `expect recovery within 10s` (the default): after the end of the run (settle phase
     * included), within this much more virtual time every node runs, holds the leader's log up
     * to its commit index, has applied it, and all state machines have the same digest. 0:
     * `expect recovery off`. */
    uint64_t expect_recovery_us;
    /* `expect refusal TEXT`: a node that cannot start with a reason containing TEXT is an
     * expected outcome (a fault whose defined result is a named refusal), not a failure. */
    uint32_t n_refusals;
    char refusals[SCN_MAX_REFUSALS][SCN_REFUSAL_BYTES];
    /* `expect stepdown within N elections`: a leader that cannot exchange messages with a
     * majority (counting itself; running, unpaused nodes only) stops leading within N maximum
     * election timeouts of its own ticks. 0: off (the default). */
    uint32_t expect_stepdown_elections;
    /* `expect available within DUR`: a client operation invoked while a healthy majority
     * exists (sim/README.md) and that stays so is answered within DUR. 0: off (the default). */
    uint64_t expect_available_us;
    /* `expect unavailable below DUR`: the run's unavailability (sim/README.md) stays below
     * DUR. 0: off (the default). */
    uint64_t expect_unavailable_us;
    /* Faults. */
    struct scn_chaos chaos;
    struct scn_disk disk;
    bool swarm;                  /* `swarm on`: each seed draws the fault rates, default off */
    bool ticks_aligned;          /* `tick 10ms aligned`: every node ticks at the same instants
                                  * (multiples of the tick), restarts included; default: each
                                  * node's phase is drawn at its start */
    uint32_t n_steps;
    struct scn_step steps[SCN_MAX_STEPS];
};

/* Fills the defaults listed above. */
void scn_defaults(struct scenario *s);

/* Parses text (len bytes; NUL bytes are an error) named filename into *s (defaults first).
 * Returns RK_OK, or RK_EMALFORMED with err = "FILE:LINE:COL: expected ..., got '...'" (or "got
 * end of line") and *s unspecified. LINE and COL are 1-based; COL counts bytes. Checks semantics
 * too: ids within 1..nodes, a majority/minority that exists, times non-decreasing (steps may
 * come after `duration`: the settle phase then starts at the last step), probabilities in
 * [0,1], election_ticks_min > heartbeat_ticks, each setting once.
 * Borrows text and filename for the call only (s->name is a copy, truncated to fit); err may
 * be NULL. Allocates nothing; uses about 80 KiB of stack. */
int scn_parse(const char *text, size_t len, const char *filename, struct scenario *s,
              struct rk_errmsg *err);

/* Prints s back in the language (canonical form: a `# scenario: NAME` comment, every setting
 * in a fixed order, then the steps): for --trace headers and for a round-trip test
 * (parse(print(s)) == s but for the steps' line numbers, for every s that scn_parse returned).
 * Writes at most cap bytes, NUL-terminated when cap > 0 (buf may be NULL when cap is 0);
 * returns the length it needed, not counting the NUL, as snprintf does. */
size_t scn_print(const struct scenario *s, char *buf, size_t cap);

#endif
