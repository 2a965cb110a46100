/*
 * server.h — raftkv-node's shared state: the node, its peers, its clients and their reply
 * FIFOs. The binary is split the way Redis splits its server:
 *
 *   main.c        wires the parts: settings, storage, replica, loop
 *   config.c      the settings table, shared by the command line, --config FILE and --help
 *   server.c      the epoll loop, timers, signals, shutdown, and EVERY call into core/replica
 *                 (tick, recv, submit, flush, output, info, scans): one place, so that storage
 *                 work can later move to a thread without touching the rest
 *   peer.c        peer transport: listen/dial, handshake (N1), reconnect with backoff, bounded
 *                 send queues (N2)
 *   conn.c        client connections: reading, RESP parsing, reply FIFOs (N3, N4), limits,
 *                 reply encoders in the connection's protocol version (RESP2 or RESP3)
 *   commands.c    the command table (commands.h): dispatch, arity and unknown-command errors,
 *                 COMMAND and its subcommands
 *   cmd_*.c       one file per family of commands: string, keyspace, server/connection,
 *                 script (redis-py Lock's Lua), multi (how a data command reaches the state
 *                 machine, its result as RESP, MULTI/EXEC/WATCH)
 *
 * Invariants (numbered as the code cites them):
 *   N1  every peer connection starts with a codec handshake in both directions; nothing is fed
 *       to the replica from a connection before its handshake checked out (cluster id, a known
 *       node id, the right side of the dial rule).
 *   N2  a peer's send queue holds at most lim.peer_queue bytes; frames beyond are dropped, as
 *       is every frame for a peer with no connection (Raft tolerates loss).
 *   N3  every client request gets exactly one reply item in its connection's FIFO, in request
 *       order; the FIFO is written out only up to its first unfinished item (pipelining).
 *   N4  a client struct is freed only when it is closed AND no replica request of it is pending
 *       (each replica request gets exactly one reply, replica.h), so a slot never dangles.
 *   N5  requests parsed during one loop turn are submitted as one batch (group commit) before
 *       any client input buffer is compacted or freed, or the arena reset: they borrow their
 *       bytes from them.
 *   N6  a shutdown answers every request it read: with its result if it completes within
 *       shutdown_timeout_ms, otherwise with an error saying the node is shutting down.
 */
#ifndef NODE_SERVER_H
#define NODE_SERVER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/codec.h"
#include "common/limits.h"
#include "common/err.h"
#include "kv/acl.h"
#include "kv/kv.h"
#include "metrics.h"
#include "raft/raft.h"
#include "replica/replica.h"
#include "resp/resp.h"

#define PEER_BACKOFF_MIN_MS   50
#define PEER_BACKOFF_MAX_MS   2000
/* The higher id of a pair dials too once it has had no connection for this long (issue #17):
 * the lower id may hold an old address of it (peer.c "Who dials"). */
#define PEER_REVERSE_DIAL_MS  3000u
#define PENDING_CONNS_MAX     16
#define CLIENT_ITEMS_MAX      4096          /* replies in flight per connection: read pauses */
#define CLIENT_OUT_MAX_BYTES  (256ull << 20) /* unwritten reply bytes: read pauses */
#define CLIENT_READ_MAX_BYTES (1u << 20)    /* read per connection per loop turn */
#define CLIENT_NAME_MAX       128           /* CLIENT SETNAME, CLIENT SETINFO */
#define SLOTS_MAX             65536u        /* replica requests in flight (= max_pending) */
#define BATCH_MAX             4096u
#define EVENTS_MAX            256
#define TICKS_CATCHUP_MAX     10
#define ITEM_POOL_MAX         65536u        /* reply items kept for reuse */
#define ITEM_BUF_KEEP         16384u        /* an item buffer larger than this is freed */
#define HANDSHAKE_TIMEOUT_MS  5000u         /* a peer connection silent this long is dropped */
#define TLS_HS_TURN_US        5000u         /* client TLS handshake time per loop turn */
#ifndef RAFTKV_VERSION
#define RAFTKV_VERSION "0"
#endif
/* What INFO's redis_version and HELLO's version say: the Redis release whose commands and
 * replies raftkv follows (client libraries check it to pick features). */
#define NODE_REDIS_VERSION "7.0.0"

/* ------------------------------------------------------------------------------------------ */
/* Logging (server.c)                                                                          */

extern uint64_t g_node_id;
void node_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void node_raft_log_sink(void *ctx, int level, const char *text);
uint64_t node_now_ms(void);
/* Monotonic microseconds, for latency histograms (node/metrics.h). */
uint64_t node_now_us(void);
/* One event as one line (node/README.md "Logs"): ts=... level=... node=N event=EVENT KV
 * msg="MSG". kv: `key=value ...` pairs (printf-formatted; values without spaces or quotes, or
 * already quoted), NULL or "" for none; msg is free text (quoted and escaped here). */
void node_event(const char *level, const char *event, const char *msg, const char *kv, ...)
    __attribute__((format(printf, 4, 5)));
/* Real time in microseconds (CLOCK_REALTIME), for INFO's server_time_usec and CLIENT LIST. */
uint64_t node_unix_us(void);

/* ------------------------------------------------------------------------------------------ */
/* Byte buffers (conn.c): [off, len) unread; compacted before growing.                         */

struct buf {
    uint8_t *p;
    size_t off, len, cap;
};

static inline size_t buf_unread(const struct buf *b)
{
    return b->len - b->off;
}
/* Makes room for n more bytes at p + len. Returns false when out of memory. */
bool buf_reserve(struct buf *b, size_t n);
bool buf_append(struct buf *b, const void *src, size_t n);
void buf_free(struct buf *b);

/* ------------------------------------------------------------------------------------------ */
/* Settings (config.c)                                                                          */

/* Every setting, from the command line and --config FILE (the same names without "--"). */
struct options {
    uint64_t id;
    uint64_t cluster_id;
    char peers[4096];
    char voters[1024]; /* the initial configuration's voters; "": every id of --peers */
    char join[1024];   /* HOST:PORT,... of members' clients: ask to be added (issue #17) */
    char peer_addr[128];      /* where this node's peers connect; "": its entry in --peers */
    uint32_t session_members; /* members the session bound counts; 0: the nodes of --peers */
    char client[256];
    char data_dir[PATH_MAX];
    uint32_t tick_ms;
    uint32_t election_min, election_max, heartbeat;
    uint32_t request_timeout_ms;
    uint32_t shutdown_timeout_ms;
    uint32_t max_clients;
    uint32_t max_args;
    uint64_t max_value_bytes; /* every size limit derives from it: common/limits.h */
    uint32_t max_inline_bytes;
    uint64_t store_file_bytes;   /* Bitcask: a data file is closed past this */
    uint64_t max_log_memory_bytes; /* raft's entries in memory: client input pauses past it */
    uint32_t merge_frag_percent; /* merge triggers (bc_merge_policy, node/storage.h) */
    uint64_t merge_dead_bytes;
    uint64_t merge_min_dead_bytes;
    bool check_quorum;
    bool pre_vote;
    char requirepass[512]; /* "": no password (every connection is authenticated) */
    char metrics_addr[256]; /* "": no /metrics endpoint (node/metrics_serve.c) */
    uint32_t databases;    /* SELECT 0 .. databases - 1 (at most KV_DBS) */
    /* TLS (node/tls.c; node/README.md "TLS"), Redis's names. --client HOST:0: no plaintext
     * client port. */
    uint32_t tls_port; /* 0: no TLS client port; else on --client's host */
    bool tls_peers;    /* peer connections are mutual TLS */
    bool metrics_tls;  /* /metrics over TLS, as a tls-port client (node/metrics_serve.c) */
    char tls_cert_file[PATH_MAX], tls_key_file[PATH_MAX], tls_ca_cert_file[PATH_MAX];
    char tls_auth_clients[16]; /* yes, no, optional */
    char tls_protocols[64];    /* "": TLSv1.2 TLSv1.3 */
    char tls_peer_names[4096]; /* ID=NAME,...: "" no name check */
};

/* A decimal in [min, max], nothing else: false otherwise. */
bool config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parses the command line (and --config FILE). 0 ok, 1 help shown, -1 error (printed). */
int config_parse_args(int argc, char **argv, struct options *o);

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                      */

enum ev_kind {
    EV_TIMER = 1,
    EV_SIGNAL,
    EV_PEER_LISTEN,
    EV_CLIENT_LISTEN,
    EV_PEER,
    EV_PENDING,
    EV_CLIENT,
    EV_STORAGE,
    EV_STORE_IO,
    EV_MERGE,
    EV_METRICS_LISTEN,
    EV_METRICS,
    EV_TLS_LISTEN
};

struct ev_tag {
    enum ev_kind kind;
};

/* A piece of a queued frame: the frame's bytes are its segments' in order. */
struct pseg {
    const uint8_t *p;
    size_t len;
};

/* A frame queued for a peer in the bulk lane (peer.c): len bytes in segs[0..n_segs), `sent` of
 * them already gone out as FRAG pieces (or written, for a frame sent whole). Segments point at
 * bytes copied into this allocation, or (hold != 0) at Raft entry data the replica keeps
 * allocated until the hold is released (replica_frame_release via server_frame_release). */
struct pframe {
    struct pframe *next;
    size_t len;
    size_t sent;
    uint64_t hold;
    size_t n_segs;
    struct pseg segs[];
};

/* One peer TCP connection's bytes (peer.c "Two lanes"). */
struct pconn {
    int fd; /* -1: none */
    bool connecting;
    /* TLS (tls-peers): the session, its handshake still under way (nothing of the codec's is
     * read or written before it is done), which readiness it waits for, and a read that
     * stopped at its bound with bytes left inside OpenSSL (epoll cannot see them: node.tls_more
     * runs it again). */
    struct ssl_st *ssl;
    bool tls_hs;
    bool tls_hs_wants_write;
    bool tls_more;
    uint64_t opened_ms; /* dialed or accepted: a TLS handshake must end within
                           HANDSHAKE_TIMEOUT_MS */
    bool hs_in; /* the other side's handshake arrived and checked out (N1) */
    bool want_out;
    struct buf in;
    struct buf out;                       /* small frames, written whole, in order */
    struct pframe *bulk_head, *bulk_tail; /* big frames (in pieces) and data frames behind them */
    size_t bulk_bytes;
    size_t ctl_first; /* bytes of out queued before bulk's head: written before it */
    /* The unit being written: a run of out's bytes, or one piece (or whole frame) of
     * bulk_head; a unit is finished before another starts, so that frames never interleave
     * mid-frame on the wire. */
    uint8_t unit;        /* PCONN_UNIT_* */
    bool last_ctl;       /* the last unit was from out: the next may be bulk (fair turns) */
    size_t unit_left;    /* bytes of the unit still to write */
    size_t unit_hdr_len; /* FRAG header bytes in unit_hdr (0: a frame sent whole) */
    size_t unit_piece;   /* bytes of bulk_head this unit carries, from bulk_head->sent */
    uint8_t unit_hdr[CODEC_FRAG_HEADER_SIZE];
    struct codec_reasm reasm; /* FRAG pieces coming in */
};

struct peer {
    struct ev_tag tag; /* EV_PEER */
    uint64_t id;
    char addr_text[128];
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool dialer; /* we dial it: our id is lower */
    uint64_t down_since_ms; /* no connection past the handshake since then (0: one is up) */
    struct pconn c;
    uint64_t backoff_ms;
    uint64_t retry_at_ms; /* dialer: when to dial again (0: now) */
    uint64_t dropped_frames;
    uint64_t bytes_in, bytes_out; /* frames fed to the replica, frames queued (metrics) */
};

/* An accepted peer connection whose handshake has not arrived yet. */
struct pending {
    struct ev_tag tag; /* EV_PENDING */
    bool used;
    uint64_t accepted_ms; /* dropped when no handshake came within HANDSHAKE_TIMEOUT_MS */
    struct pconn c;
};

struct node;
struct client;
struct item;
struct scan_snap;
struct node_backup;
struct keys_walk;

/* A command's completion, called as its replica requests are answered (conn.c's
 * item_on_reply): `part` says which of its requests (UINT32_MAX: the hold a multi-request
 * command puts on itself while queuing, see item_hold/item_release); rp is OK or NOT_FOUND
 * (errors are handled before). `finish` runs once, when the last reply came and none failed. */
typedef void (*item_reply_fn)(struct node *n, struct item *it, uint32_t part,
                              const struct replica_reply *rp);
typedef void (*item_finish_fn)(struct node *n, struct item *it);

/* One reply in a client's FIFO. A command may wait on several replica requests (DEL, EXISTS,
 * MGET). */
struct item {
    struct item *next;
    struct client *c; /* its connection (alive while a request of it is pending: N4) */
    bool done;        /* the reply is complete in bytes */
    bool is_read;     /* nothing is written by it: a shutdown fails it with TRYAGAIN */
    uint8_t resp;     /* the protocol version of its connection when it was read: 2 or 3 */
    uint32_t waiting; /* replica replies still due */
    uint32_t parts;   /* MGET: keys */
    int64_t sum;
    int64_t a1, a2;   /* command arguments its completion needs (GETRANGE's range, ...) */
    bool failed;      /* a replica reply was an error: bytes hold it */
    bool close_after; /* QUIT */
    bool no_match;    /* SCAN with a TYPE other than string: an empty page */
    bool rejected;    /* refused before its command ran (INFO commandstats' rejected_calls) */
    bool queued;      /* between MULTI and EXEC: its op went into the queue (cmd_multi.c) */
    /* Its command is being dispatched (conn_parse): never collected meanwhile, even when it
     * looks finished (done, nothing waiting yet). A batch submitted in the middle of the
     * dispatch (server_batch_room, a full batch) hands out replies, and collecting this item
     * then would send nothing for it and recycle it under its command (N3). */
    bool dispatching;
    item_reply_fn on_reply;
    item_finish_fn on_finish;
    /* REPLICA_READ (server_read): called when the read is served, with the state machine as
     * applied at that one index (replica.h config.on_read): it encodes the reply. */
    item_finish_fn on_read;
    /* Called once when the item completes, failed or not (WATCH releases its connection). */
    item_finish_fn on_done;
    uint64_t read_us; /* when it was read (node_now_us): its latency (node/metrics.h) */
    const char *cmd;  /* its command table row's name, once dispatched; NULL: none */
    struct buf bytes; /* the encoded reply once done */
    struct buf aux;   /* MGET: the values as they arrive; KEYS/SCAN: the pattern */
};

struct client {
    struct ev_tag tag; /* EV_CLIENT */
    struct client *prev, *next;
    int fd;
    /* TLS (the tls-port): as struct pconn's. */
    struct ssl_st *ssl;
    bool tls_hs;
    bool tls_hs_wants_write;
    bool tls_more;
    uint64_t id;          /* CLIENT ID: 1, 2, ... in order of connection */
    /* The connection's session in the state machine (replica_client_id: cluster-unique, never
     * reused across restarts): its writes apply at most once and every request takes effect
     * in the order it was sent (replica.h, "Program order per connection"). */
    uint64_t session;
    uint64_t write_seq; /* the seq of its last write: 1, 2, 3, ... */
    uint8_t resp;         /* protocol version: 2, or 3 after HELLO 3 */
    bool authed;          /* AUTH passed, or no requirepass */
    /* ACL (cmd_acl.c): the user's name, and the user as last looked up (valid while the state
     * machine's ACL generation + 1 is acl_gen); acl_init: set up by the first command. */
    char acl_user[KV_ACL_MAX_NAME_BYTES + 1];
    uint64_t acl_gen;
    const struct kv_acl_user *acl_u;
    bool acl_init;
    bool closed;      /* socket gone; struct stays while outstanding > 0 (N4) */
    bool no_input;    /* EOF, QUIT or a protocol error: nothing more is read or parsed */
    bool want_close;  /* a QUIT or error reply went out: close once the out buffer is written */
    bool reading;     /* EPOLLIN registered */
    bool want_out;    /* EPOLLOUT registered */
    bool parse_held;  /* parsing stopped at CLIENT_ITEMS_MAX with input left */
    bool no_evict, no_touch; /* CLIENT NO-EVICT / NO-TOUCH: remembered, nothing else */
    uint8_t db;              /* SELECTed database */
    /* MULTI (cmd_multi.c): the queued commands (multi_q: entries, see there), the database
     * the next queued command runs in (SELECT inside MULTI), whether a queuing error makes EXEC
     * answer EXECABORT. WATCH: the watched keys with their versions (watch_q) and the earliest
     * watch point; watch_wait: a WATCH is in flight, so the connection parses nothing more
     * until its versions are known (an EXEC after it must carry them). */
    bool in_multi, multi_dirty, watch_wait;
    uint8_t multi_db;
    uint32_t multi_n, watch_n;
    uint64_t watch_index;
    struct buf multi_q, watch_q;
    uint32_t outstanding; /* replica requests of this client pending */
    uint32_t n_items;
    uint64_t created_ms, last_ms; /* CLIENT LIST's age and idle */
    uint64_t commands;            /* requests parsed */
    const char *last_cmd;         /* CLIENT LIST's cmd=: a table row's name (static), or NULL */
    char name[CLIENT_NAME_MAX + 1];
    char lib_name[CLIENT_NAME_MAX + 1], lib_ver[CLIENT_NAME_MAX + 1];
    char addr[64], laddr[64];     /* ip:port of both ends */
    struct item *head, *tail;
    struct buf in, out;
};

struct slot {
    uint64_t req_id; /* 0: free */
    struct client *c;
    struct item *it;
    uint32_t part; /* which of the item's requests (MGET: the key's position) */
    uint8_t op;
    bool read;          /* served by ReadIndex, nothing proposed */
    uint64_t submit_us; /* when it was queued (node_now_us): commit and ReadIndex latency */
};

/* Counters for INFO stats. */
struct node_stats {
    uint64_t connections_received;
    uint64_t rejected_connections;
    uint64_t commands_processed;
    uint64_t net_input_bytes, net_output_bytes;
    uint64_t keyspace_hits, keyspace_misses;
    uint64_t total_errors;
};

/* What /metrics shows beyond INFO's sources (node/metrics_serve.c), and its endpoint. */
#define METRICS_CONNS_MAX       16
#define METRICS_HEAD_MAX        8192 /* bytes of a request head: more is refused (431) */
#define METRICS_CONN_TIMEOUT_MS 5000 /* a scrape connection idle this long is closed */
struct metrics_conn {
    struct ev_tag tag;  /* EV_METRICS */
    int fd;             /* -1: a free slot */
    struct ssl_st *ssl; /* metrics-tls: the connection's TLS (node/tls.h); NULL: plain HTTP */
    bool tls_hs;        /* its handshake is not done yet */
    uint64_t last_ms;
    size_t in_len;
    char in[METRICS_HEAD_MAX];
    struct metrics_text out; /* the response, written from out_off; non-empty: writing */
    size_t out_off;
};

struct node_metrics {
    struct metrics_hist commit;     /* a write: queued to the replica .. its reply (applied) */
    struct metrics_hist read_index; /* a read: queued .. served (ReadIndex round and apply) */
    struct metrics_hist log_sync;   /* fdatasync of the Raft log (storage thread) */
    struct metrics_hist store_sync; /* fdatasync of the store's files */
    struct metrics_cmds cmds;
    struct metrics_errs errs;
    uint64_t proposals, reads;            /* requests queued to the replica */
    uint64_t msgs_in[256], msgs_out[256]; /* peer frames by codec type */
    /* Role, term and leader as last seen (role changes are logged: node_metrics_turn). */
    uint64_t seen_term, seen_leader, leader_changes;
    uint64_t seen_conf_index; /* the configuration last logged (config_change) */
    bool conf_seen;
    int seen_role;
    uint64_t scrapes, http_refused, refused_logged_ms;
    int listen_fd;            /* -1: no endpoint */
    struct ev_tag listen_tag; /* EV_METRICS_LISTEN */
    struct metrics_conn conns[METRICS_CONNS_MAX];
};

struct node {
    uint64_t id;
    uint64_t cluster_id;
    uint32_t tick_ms;
    int ep;
    struct ev_tag timer_tag, signal_tag, plisten_tag, clisten_tag;
    int timer_fd, signal_fd, plisten_fd, clisten_fd; /* clisten_fd -1: --client HOST:0 */
    /* TLS (node/tls.h): the contexts (NULL: TLS off), the tls-port's listener (-1: none), a
     * connection with a read left inside OpenSSL (see struct pconn), refusals logged. */
    struct node_tls *tls;
    struct ev_tag tlisten_tag;
    int tlisten_fd;
    bool tls_more;
    uint64_t tls_refused, tls_refused_peers, tls_refused_logged_ms, tls_refused_quiet;
    /* Time spent on client TLS handshakes this turn (0 at its start): once it reaches
     * TLS_HS_TURN_US the rest wait for the next turn. A step costs a signature or a key
     * exchange (well under a millisecond), but on a loaded machine the process is often
     * descheduled in the middle of one (steps of 2 to 45 ms were seen at load 13 on 2 cores):
     * a bound on the time, not on the count, keeps a burst of connections from holding
     * heartbeats back. At least one step per turn. */
    uint64_t tls_hs_spent_us;
    struct peer peers[RAFT_MAX_MEMBERS];
    size_t n_peers;  /* every node of --peers but self (members or not: issue #17) */
    uint32_t n_pool; /* the nodes of --peers, self included (or --session-members) */
    uint32_t session_bound; /* kv's max_sessions: sent in the peer handshake, must match */
    /* The configuration the peer table last followed (peer_sync_conf): members are dialed at
     * the address their latest configuration records (issue #17). */
    struct raft_conf peer_conf;
    bool peer_conf_set;
    char self_peer_addr[128];
    struct sockaddr_storage self_addr;
    socklen_t self_addr_len;
    struct pending pending[PENDING_CONNS_MAX];
    struct client *clients; /* list of every live or draining client */
    uint64_t next_client_id;
    /* This start's number, kept in DATA-DIR/incarnation and incremented at every start, so
     * that a restarted node never reuses a session id (replica_client_id). */
    uint32_t incarnation;
    uint32_t sessions_made; /* in this incarnation */
    struct slot *slots;
    uint32_t *free_slots;
    uint32_t n_free_slots;
    uint64_t slot_gen;
    struct replica_request batch[BATCH_MAX];
    size_t n_batch;
    struct buf arena;      /* bytes the batch's requests borrow besides client input (MSET) */
    struct options opt;
    struct resp_limits limits;
    struct rk_limits lim; /* from opt.max_value_bytes */
    struct resp_arg *args; /* opt.max_args of them: one parsed request */
    uint8_t *inline_scratch; /* opt.max_inline_bytes: unescaped inline arguments */
    struct kv_pair *pairs;   /* opt.max_args / 2: MSET's */
    const uint8_t **mkeys;   /* opt.max_args: MGET's and EXISTS's keys (replica_keys_encode) */
    struct kv_arg *kargs;    /* opt.max_args: a state-machine command's arguments (DEL's keys) */
    uint32_t *mkey_lens;
    struct item *free_items; /* the pool (item_get, item_put) */
    size_t n_free_items;
    struct buf tmp;          /* KEYS/SCAN: the keys before their count is known */
    size_t n_clients;
    uint64_t outstanding;    /* replica requests of every client */
    uint64_t started_ms;
    uint64_t started_unix_us;
    struct node_stats stats;
    struct node_metrics *metrics; /* always counted; served when opt.metrics_addr is set */
    struct fs *fs_root, *fs_log, *fs_kv;
    /* The log is written and synced on this thread (node/storage.h); the loop never waits. */
    struct node_storage *storage;
    struct ev_tag storage_tag;
    bool storage_failed; /* a submission ran out of memory: the log is unusable */
    /* The store's deferred writes (bitcask.h, DEFERRED WRITES) run on a thread of their own
     * (node/storage.h) with an fs handle of their own on DIR/kv. */
    struct node_storage *store_io;
    struct ev_tag store_io_tag;
    struct fs *fs_store;
    int store_failed; /* RK_OK, or the failure of a store job (the store is poisoned) */
    struct rk_errmsg store_fail_msg;
    /* Slow turns (server.c turn): how many, the longest, and when one was last logged. */
    uint64_t slow_turns, slowest_turn_ms, slow_turn_logged_ms;
    uint64_t turns;             /* loop turns (INFO raft: loop_turns) */
    uint64_t conf_version_seen; /* raft_conf_version at the last peer_sync_conf */
    struct node_merge *merge; /* the store's background merge (node/storage.h) */
    struct ev_tag merge_tag;
    struct fs *fs_merge; /* the merge thread's handle on DIR/kv */
    struct log_store *log;
    struct bitcask *bc;
    struct kv_store *store;
    struct replica *rep;
    char client_listen_text[256];
    bool reparse;        /* a connection's WATCH came back: parse its held input this turn */
    /* RAFTKV.BACKUP's session (cmd_backup.c), NULL when none. */
    struct node_backup *backup;
    /* KEYS walks in progress (cmd_keyspace.c): each a pinned view walked a bounded piece per
     * loop turn (keys_walks_step), its connection's reply held until it is done. */
    struct keys_walk *keys_walks;
    bool stopping;       /* a signal came: shutting down (N6) */
    /* Memory bounded by bytes (server.c, check_log_memory): raft holds more than
     * max_log_memory_bytes of entries, and no client input is read until it holds less. */
    bool log_memory_over;
    uint64_t log_memory_pauses; /* times it went over */
    uint64_t log_memory_logged_ms;
    bool stopping_again; /* a second one: stop waiting for in-flight requests */
};

/* ------------------------------------------------------------------------------------------ */
/* server.c: the loop, and the only calls into core/replica                                   */

int ep_set(struct node *n, int op, int fd, uint32_t events, void *tag);
int node_resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *len);
int node_listen(const struct sockaddr_storage *ss, socklen_t len, const char *what);

/* Builds the replica over the data directory; sets up fds; 0 or -1 (logged). */
int server_start(struct node *n, const struct options *o);
/* Runs the loop until a signal and the shutdown (N6); syncs the store. 0 or 1. */
int server_run(struct node *n);
void server_stop(struct node *n);
/* Rebuilds the TLS contexts from n->opt (SIGHUP, CONFIG SET): logged (event=tls_reload, by=why).
 * 0, or -1 when TLS is off or the files do not load (the old contexts stay). */
int server_tls_reload(struct node *n, const char *why);

/* A peer frame that passed the handshake: to the replica, then its outputs out. */
void server_peer_frame(struct node *n, uint64_t from, const uint8_t *frame, size_t len);
/* The same for a frame reassembled from FRAG pieces (checked by their CRCs, not its own). */
void server_peer_frame_pieces(struct node *n, uint64_t from, const uint8_t *frame, size_t len);
/* A frame in pieces (replica_frame.hold) was written or dropped. */
void server_frame_release(struct node *n, uint64_t hold);

/* Queues one replica request for part `part` of item it of client c. Key and value are borrowed
 * (from c's input buffer or the arena) until the turn's batch is submitted (N5). cond: PUT_IF's;
 * delta: INCRBY's; 0 otherwise. */
void server_request(struct node *n, struct client *c, struct item *it, uint32_t part, uint8_t op,
                    const struct resp_arg *key, const struct resp_arg *val, uint8_t cond,
                    int64_t delta);
/* A read barrier: a GET whose value nobody needs, answered once this node's state machine has
 * applied everything committed when it was asked (ReadIndex). */
void server_barrier(struct node *n, struct client *c, struct item *it);
/* Submits one state-machine command (kv.h "version 2": any Redis data command, applied as ONE
 * log entry, or read through ReadIndex if it only reads) as REPLICA_CMD, part 0; its reply's
 * val is the encoded result (kv_res_next). false when it does not encode (the caller answers
 * an error). */
bool server_cmd(struct node *n, struct client *c, struct item *it, const struct kv_cmd2 *cmd);
/* Reads keys[0 .. n_keys) at ONE read barrier, at one applied index (REPLICA_MGET): one reply,
 * part 0, whose val is the results blob (replica_mget_next). false when the keys do not fit
 * (out of memory, or over the limits): the caller answers an error. */
bool server_mget(struct node *n, struct client *c, struct item *it, const struct resp_arg *keys,
                 uint32_t n_keys);
/* A linearizable read of the whole state machine (REPLICA_READ: one read barrier, one applied
 * index): it->on_read runs when it is served and encodes the reply; part 0. */
void server_read(struct node *n, struct client *c, struct item *it);
/* cmd_keyspace.c: walks every KEYS in progress a bounded piece (once per loop turn), replying
 * to those that finish; and ends them all (shutdown: their items are failed by the caller). */
void keys_walks_step(struct node *n);
void keys_walks_free(struct node *n);
/* Inside it->on_read only: the live keys of db as applied at the read's index. */
int server_scan_db(struct node *n, uint8_t db,
                   bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx);
/* One page of server_scan_db from a cursor (kv_scan_db_range): SCAN, RANDOMKEY. */
int server_scan_db_range(struct node *n, uint8_t db, uint64_t cursor, uint64_t budget,
                         bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx,
                         uint64_t *next);
const struct kv *server_kv(struct node *n);
/* The index the state machine has applied (committed) and its term (RAFTKV.BACKUP). */
void server_applied_at(struct node *n, uint64_t *index, uint64_t *term);
/* cmd_backup.c: the store the replica writes through, which keeps a backup's values at its
 * index (NULL: no memory; destroying it destroys inner); and the session's end at stop. */
void backup_free(struct node *n);
/* Makes room in the batch for one request whose borrowed bytes need arena_bytes of n->arena.
 * false when out of memory. */
bool server_batch_room(struct node *n, size_t arena_bytes);

/* Reads of the state machine as applied now: linearizable only once a read barrier of the same
 * request was answered. */
int server_scan_keys(struct node *n, bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len),
                     void *ctx);
uint64_t server_key_count(struct node *n);
void server_info(struct node *n, struct replica_info *st);

/* ------------------------------------------------------------------------------------------ */
/* metrics_serve.c: the /metrics endpoint, and what it counts beyond INFO's sources           */

/* Allocates n->metrics and, with opt.metrics_addr, listens there. 0 or -1 (logged). */
int node_metrics_start(struct node *n);
void node_metrics_stop(struct node *n);
void node_metrics_on_accept(struct node *n);
void node_metrics_on_event(struct node *n, struct metrics_conn *mc, uint32_t events);
/* Every tick: closes scrape connections idle too long. */
void node_metrics_timer(struct node *n);
/* End of every turn: notices role, term and leader changes (logged: event=role_change), and
 * configuration changes when conf_changed (raft_conf_version moved). */
void node_metrics_turn(struct node *n, bool conf_changed);
/* A replica reply for slot sl: commit or ReadIndex latency. */
void node_metrics_reply(struct node *n, const struct slot *sl, const struct replica_reply *rp);
/* An item leaves its connection's FIFO: its command's latency; error replies by kind. */
void node_metrics_item_done(struct node *n, const struct item *it);
/* A peer frame, by its codec type (the byte after the header). */
void node_metrics_frame(uint64_t *by_type, const uint8_t *frame, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* peer.c                                                                                     */

int peer_parse_list(struct node *n, const char *list, struct raft_config *rc);
/* This node's peer address (--peer-addr), overriding its --peers entry. 0 or -1 (printed). */
int peer_set_self(struct node *n, const char *addr);
/* The peer of id, added with addr ("": unknown, not dialed) if not there yet; an address that
 * differs from the one it has replaces it (a connection we dialed is dropped and dialed again
 * at the new address). NULL if the table is full of members or addr does not resolve. */
struct peer *peer_learn(struct node *n, uint64_t id, const char *addr);
/* Follows the latest configuration: every member with a recorded peer address is dialed
 * there (issue #17). Cheap when the configuration has not changed. */
void peer_sync_conf(struct node *n, const struct raft_conf *c);
void peer_dial(struct node *n, struct peer *p);
void peer_lost(struct node *n, struct peer *p, const char *why);
/* Queues one replica output frame for its peer (N2); a frame in pieces is released (its hold)
 * once written or dropped. */
void peer_send(struct node *n, const struct replica_frame *f);
size_t peers_connected(const struct node *n);
/* The connected voter with the highest match to hand leadership to on shutdown, or 0. */
uint64_t peer_transfer_target(const struct node *n);
void peer_on_event(struct node *n, struct peer *p, uint32_t events);
void peer_on_accept(struct node *n);
void peer_on_pending_event(struct node *n, struct pending *pd, uint32_t events);
/* Every tick: dial peers due for it, drop pending connections silent too long. */
void peer_timer(struct node *n);
/* End of a turn: write every peer's queue. */
void peer_flush_all(struct node *n);
void peer_close_all(struct node *n);
/* conn_tls_more's for peer connections. */
void peer_tls_more(struct node *n);

/* ------------------------------------------------------------------------------------------ */
/* conn.c                                                                                     */

/* Accepts on listen_fd: the plaintext client port, or the tls-port (tls). */
void conn_on_accept(struct node *n, int listen_fd, bool tls);
/* Logs a connection refused by TLS (client or peer): at most 20 lines a second, the rest
 * counted and said in the next line. */
void conn_tls_refused(struct node *n, const char *event, const char *why, const char *kv);
/* Runs again the TLS reads that stopped with bytes left inside OpenSSL (tls_more). */
void conn_tls_more(struct node *n);
void conn_on_event(struct node *n, struct client *c, uint32_t events);
void conn_parse(struct node *n, struct client *c);
void conn_collect(struct node *n, struct client *c);
void conn_flush(struct node *n, struct client *c);
void conn_close(struct node *n, struct client *c);
void conn_free_if_done(struct node *n, struct client *c);
void conn_set_events(struct node *n, struct client *c);
/* A replica reply for part `part` of it; the item completes when its last reply came. */
void item_on_reply(struct node *n, struct item *it, uint32_t part, const struct replica_reply *rp);
/* A command that queues several requests holds its item until all are queued, so that it
 * cannot complete early: item_hold before, item_release after. */
void item_hold(struct item *it);
void item_release(struct node *n, struct item *it);
/* An error line from a replica status and reason. */
void item_status_error(struct item *it, uint8_t status, const char *reason);

/* Reply encoders into an item, in its protocol version. Out of memory leaves the item short;
 * the connection is closed when it cannot be written (conn.c). */
void add_simple(struct item *it, const char *s);
void add_error(struct item *it, const char *s);
void add_errorf(struct item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void add_integer(struct item *it, int64_t v);
void add_bulk(struct item *it, const void *p, uint64_t len);
void add_bulk_str(struct item *it, const char *s);
void add_null(struct item *it);       /* $-1 or _ */
void add_null_array(struct item *it); /* *-1 or _ */
void add_array(struct item *it, int64_t n);
void add_map(struct item *it, int64_t pairs); /* RESP2: an array of 2 * pairs */
void add_set(struct item *it, int64_t n);     /* RESP2: an array */
void add_double(struct item *it, double d);   /* RESP2: a bulk string */
void add_bool(struct item *it, bool b);       /* RESP2: :1 or :0 */
void add_verbatim(struct item *it, const char *fmt3, const void *p, uint64_t len); /* "txt" */
void add_raw(struct item *it, const void *p, size_t len);

/* Copies an argument for an error line: at most 128 bytes, CR and LF as spaces (Redis does the
 * same so that the reply stays one line). */
void arg_quote(char *dst, size_t cap, const struct resp_arg *a);
bool arg_is(const struct resp_arg *a, const char *s);
/* Redis's string2ll: an optional '-', digits, no leading zeros or spaces, within int64. */
bool arg_int64(const struct resp_arg *a, int64_t *v);

#endif
