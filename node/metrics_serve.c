/*
 * metrics_serve.c — raftkv-node's /metrics endpoint (issue #18): Prometheus text format over
 * plain HTTP/1.1 (or, with metrics-tls, HTTPS: the tls-port's certificate, CA and
 * tls-auth-clients rule; a refused handshake is logged as a tls-port client's), served by the
 * node's own event loop. Sockets are non-blocking; a connection
 * reads one request head (at most METRICS_HEAD_MAX bytes), gets one response and is closed
 * (Connection: close). Nothing waits: a scrape is built in one go from counters the node keeps
 * anyway (INFO's sources: node_stats, replica_info, raft_counters, bc_stats) and the histograms
 * and tables of node/metrics.h, and written as the socket takes it.
 *
 *   accept ──► read head ──metrics_http_parse──► GET /metrics: 200 | 404 | 405 | 400 | 431
 *          ──► write (EPOLLOUT while the socket is full) ──► close
 *
 * Bounds: METRICS_CONNS_MAX connections at once (when full, a new one closes the connection
 * idle longest that has not sent a whole request; if all are being answered, the new one is
 * closed; logged); a connection idle for METRICS_CONN_TIMEOUT_MS is closed
 * (node_metrics_timer).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bitcask/bitcask.h"
#include "codec/codec.h"
#include "server.h"
#include "storage.h"
#include "tls.h"

/* ------------------------------------------------------------------------------------------ */
/* Counting hooks                                                                             */

void node_metrics_reply(struct node *n, const struct slot *sl, const struct replica_reply *rp)
{
    if (rp->status != REPLICA_OK && rp->status != REPLICA_NOT_FOUND)
        return; /* errors and timeouts are counted by kind, not as latency */
    uint64_t now = node_now_us();
    uint64_t us = now > sl->submit_us ? now - sl->submit_us : 0;
    metrics_hist_observe(sl->read ? &n->metrics->read_index : &n->metrics->commit, us);
}

void node_metrics_item_done(struct node *n, const struct item *it)
{
    struct node_metrics *m = n->metrics;
    uint64_t now = node_now_us();
    const struct buf *b = &it->bytes;
    bool error = buf_unread(b) > 1 && (b->p[b->off] == '-' || b->p[b->off] == '!');
    metrics_cmd_observe(&m->cmds, it->cmd, now > it->read_us ? now - it->read_us : 0,
                        it->rejected ? METRICS_CMD_REJECTED
                        : error      ? METRICS_CMD_FAILED
                                     : METRICS_CMD_OK);
    if (error) {
        const char *text = (const char *)b->p + b->off + 1;
        size_t len = buf_unread(b) - 1;
        if (b->p[b->off] == '!') { /* RESP3 blob error: !<len>\r\n<text> */
            const char *nl = memchr(text, '\n', len);
            len = nl ? len - (size_t)(nl + 1 - text) : 0;
            text = nl ? nl + 1 : text;
        }
        metrics_err_observe(&m->errs, text, len);
    }
}

void node_metrics_frame(uint64_t *by_type, const uint8_t *frame, size_t len)
{
    if (len > CODEC_FRAME_HEADER_SIZE)
        by_type[frame[CODEC_FRAME_HEADER_SIZE]]++;
}

static const char *role_text(int role)
{
    return raft_role_name((enum raft_role)role);
}

/* The ids of a configuration's voters or learners, comma-separated ("-" for none). */
static void conf_ids(char *out, size_t cap, const uint64_t *ids, uint32_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%" PRIu64, i ? "," : "", ids[i]);
    if (n == 0)
        snprintf(out, cap, "-");
}

/* A configuration in use that is not the one last logged (a change appended, applied from a
 * snapshot, or cut back): one config_change line on every node, as role changes are. */
static void note_conf(struct node *n, struct node_metrics *m)
{
    struct raft_conf conf;
    uint64_t index = 0;
    replica_conf(n->rep, &conf, &index);
    if (index == m->seen_conf_index)
        return;
    bool first = m->seen_conf_index == 0 && !m->conf_seen;
    m->seen_conf_index = index;
    m->conf_seen = true;
    char voters[RAFT_MAX_VOTERS * 21 + 2], learners[RAFT_MAX_LEARNERS * 21 + 2];
    conf_ids(voters, sizeof(voters), conf.voters, conf.n_voters);
    conf_ids(learners, sizeof(learners), conf.learners, conf.n_learners);
    node_event("info", "config_change", first ? "configuration at start" : "configuration changed",
               "index=%" PRIu64 " voters=%s learners=%s", index, voters, learners);
}

void node_metrics_turn(struct node *n, bool conf_changed)
{
    struct node_metrics *m = n->metrics;
    struct replica_info st;
    server_info(n, &st);
    if (conf_changed)
        note_conf(n, m);
    if (st.raft.leader != 0 && st.raft.leader != m->seen_leader) {
        if (m->seen_leader != 0 || m->leader_changes == 0)
            m->leader_changes++;
        m->seen_leader = st.raft.leader;
    }
    if ((int)st.raft.role == m->seen_role && st.raft.term == m->seen_term)
        return;
    bool role_changed = (int)st.raft.role != m->seen_role;
    int was_role = m->seen_role;
    m->seen_role = (int)st.raft.role;
    m->seen_term = st.raft.term;
    if (!role_changed)
        return;
    char msg[64];
    snprintf(msg, sizeof(msg), "%s %s", was_role < 0 ? "starting as" : "became",
             role_text(st.raft.role));
    node_event("info", "role_change", msg, "term=%" PRIu64 " role=%s leader=%" PRIu64, st.raft.term,
               role_text(st.raft.role), st.raft.leader);
}

/* ------------------------------------------------------------------------------------------ */
/* The exposition                                                                             */

static void gauge(struct metrics_text *t, const char *name, const char *help, uint64_t v)
{
    metrics_family(t, name, "gauge", help);
    metrics_u64(t, name, NULL, v);
}

static void counter(struct metrics_text *t, const char *name, const char *help, uint64_t v)
{
    metrics_family(t, name, "counter", help);
    metrics_u64(t, name, NULL, v);
}

static void histogram(struct metrics_text *t, const char *name, const char *help,
                      const struct metrics_hist *h)
{
    metrics_family(t, name, "histogram", help);
    metrics_hist_write(t, name, NULL, h);
}

static const char *msg_type_name(unsigned type)
{
    switch (type) {
    case CODEC_TYPE_HANDSHAKE:
        return "handshake";
    case CODEC_TYPE_FORWARD:
        return "forward";
    case CODEC_TYPE_FORWARD_RESP:
        return "forward_resp";
    case CODEC_TYPE_SNAP:
        return "snapshot";
    case CODEC_TYPE_SNAP_ACK:
        return "snapshot_ack";
    default:
        return type > 0 && type < RAFT_MSG_TYPE_COUNT ? raft_msg_type_name((int)type) : NULL;
    }
}

static void collect_raft(struct node *n, struct metrics_text *t)
{
    struct node_metrics *m = n->metrics;
    struct replica_info st;
    server_info(n, &st);
    struct raft_counters rc;
    raft_counters(replica_raft(n->rep), &rc);
    metrics_family(t, "raftkv_raft_role", "gauge", "1 for the role this node has now");
    static const int roles[] = {RAFT_FOLLOWER, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        char l[48];
        metrics_label(l, sizeof(l), "role", role_text(roles[i]));
        metrics_u64(t, "raftkv_raft_role", l, (int)st.raft.role == roles[i]);
    }
    gauge(t, "raftkv_raft_term", "current Raft term", st.raft.term);
    gauge(t, "raftkv_raft_leader_id", "the leader this node knows of (0: none)", st.raft.leader);
    gauge(t, "raftkv_raft_commit_index", "highest log index known committed", st.raft.commit);
    gauge(t, "raftkv_raft_applied_index", "highest log index applied to the state machine",
          st.raft.applied);
    gauge(t, "raftkv_raft_last_log_index", "index of the last entry in the log",
          st.raft.last_index);
    gauge(t, "raftkv_raft_persisted_index", "highest log index durable on this node",
          st.raft.persisted_index);
    gauge(t, "raftkv_raft_snapshot_index", "the log starts after this index",
          st.raft.snapshot_index);
    gauge(t, "raftkv_raft_log_bytes", "data bytes of the log entries held in memory",
          st.raft.log_bytes);
    counter(t, "raftkv_raft_leader_changes_total", "times this node saw a new leader",
            m->leader_changes);
    counter(t, "raftkv_raft_became_leader_total", "times this node became leader",
            rc.leader_changes);
    counter(t, "raftkv_raft_elections_started_total",
            "elections this node started (pre-vote rounds included)", rc.elections);
    counter(t, "raftkv_raft_appends_rejected_total", "AppendEntries rejections received as leader",
            rc.appends_rejected);
    counter(t, "raftkv_raft_messages_dropped_total",
            "peer messages dropped as malformed, misaddressed or from unknown nodes",
            rc.msgs_dropped);
    counter(t, "raftkv_raft_proposals_total",
            "writes this node's clients submitted to Raft (a follower forwards them)",
            m->proposals);
    counter(t, "raftkv_raft_reads_total", "linearizable reads submitted (ReadIndex)", m->reads);
    counter(t, "raftkv_raft_snapshots_sent_total", "snapshots sent to followers",
            st.snapshots_sent);
    counter(t, "raftkv_raft_snapshots_installed_total", "snapshots installed from a leader",
            st.snapshots_installed);
    gauge(t, "raftkv_raft_pending_requests", "requests in flight in the replica", st.pending);
    gauge(t, "raftkv_keys", "keys in the state machine", st.keys);
    static const char *dirs[2] = {"sent", "received"};
    for (int d = 0; d < 2; d++) {
        char name[64];
        snprintf(name, sizeof(name), "raftkv_peer_messages_%s_total", dirs[d]);
        metrics_family(t, name, "counter",
                       d == 0 ? "peer frames queued for sending, by type (append, vote, ...)"
                              : "peer frames received after the handshake, by type");
        const uint64_t *v = d == 0 ? m->msgs_out : m->msgs_in;
        for (unsigned type = 0; type < 256; type++) {
            const char *tn = msg_type_name(type);
            if (tn == NULL || (v[type] == 0 && type != RAFT_MSG_APPEND))
                continue;
            char l[64];
            metrics_label(l, sizeof(l), "type", tn);
            metrics_u64(t, name, l, v[type]);
        }
    }
}

static void collect_latency(struct node *n, struct metrics_text *t)
{
    struct node_metrics *m = n->metrics;
    histogram(t, "raftkv_commit_latency_seconds",
              "a write from its submission to Raft to its reply, once applied", &m->commit);
    histogram(t, "raftkv_read_index_latency_seconds",
              "a linearizable read from its submission to its reply (ReadIndex round)",
              &m->read_index);
    histogram(t, "raftkv_log_sync_seconds", "fdatasync of the Raft log (storage thread)",
              &m->log_sync);
    histogram(t, "raftkv_store_sync_seconds", "fdatasync of the store's data files",
              &m->store_sync);
    metrics_family(t, "raftkv_command_latency_seconds", "histogram",
                   "a client command from being read to its reply being complete, by name");
    for (size_t i = 0; i < METRICS_CMDS_MAX; i++) {
        const struct metrics_cmd *c = &m->cmds.slot[i];
        if (c->name == NULL)
            continue;
        char l[96];
        metrics_label(l, sizeof(l), "command", c->name);
        metrics_hist_write(t, "raftkv_command_latency_seconds", l, &c->latency);
    }
    metrics_family(t, "raftkv_commands_total", "counter", "client commands by name");
    for (size_t i = 0; i < METRICS_CMDS_MAX; i++) {
        const struct metrics_cmd *c = &m->cmds.slot[i];
        if (c->name == NULL)
            continue;
        char l[96];
        metrics_label(l, sizeof(l), "command", c->name);
        metrics_u64(t, "raftkv_commands_total", l, c->calls);
    }
}

static void collect_clients(struct node *n, struct metrics_text *t)
{
    struct node_metrics *m = n->metrics;
    gauge(t, "raftkv_clients_connected", "client connections open", n->n_clients);
    counter(t, "raftkv_clients_connections_total", "client connections accepted",
            n->stats.connections_received);
    counter(t, "raftkv_clients_rejected_total", "client connections refused (max-clients)",
            n->stats.rejected_connections);
    metrics_family(t, "raftkv_tls_refused_total", "counter",
                   "connections refused by TLS (handshake or certificate), by side");
    metrics_u64(t, "raftkv_tls_refused_total", "kind=\"client\"",
                n->tls_refused - n->tls_refused_peers);
    metrics_u64(t, "raftkv_tls_refused_total", "kind=\"peer\"", n->tls_refused_peers);
    counter(t, "raftkv_clients_commands_processed_total", "client requests parsed",
            n->stats.commands_processed);
    counter(t, "raftkv_clients_net_input_bytes_total", "bytes read from clients",
            n->stats.net_input_bytes);
    counter(t, "raftkv_clients_net_output_bytes_total", "bytes written to clients",
            n->stats.net_output_bytes);
    metrics_family(t, "raftkv_client_errors_total", "counter",
                   "error replies by kind, the first word of the error");
    for (size_t i = 0; i < m->errs.n; i++) {
        char l[64];
        metrics_label(l, sizeof(l), "kind", m->errs.kind[i]);
        metrics_u64(t, "raftkv_client_errors_total", l, m->errs.count[i]);
    }
    metrics_u64(t, "raftkv_client_errors_total", "kind=\"other\"", m->errs.other);
}

static void collect_peers(struct node *n, struct metrics_text *t)
{
    gauge(t, "raftkv_peers_connected", "peers with a connection past the handshake",
          peers_connected(n));
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"raftkv_peer_up", "gauge", "1 when the connection to the peer is past the handshake"},
        {"raftkv_peer_received_bytes_total", "counter", "bytes of frames received from the peer"},
        {"raftkv_peer_sent_bytes_total", "counter", "bytes of frames queued for the peer"},
        {"raftkv_peer_send_queue_bytes", "gauge", "bytes queued for the peer, not yet written"},
        {"raftkv_peer_dropped_frames_total", "counter",
         "frames for the peer dropped: no connection, or its queue full"},
    };
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        metrics_family(t, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < n->n_peers; i++) {
            const struct peer *p = &n->peers[i];
            char id[24], l[48];
            snprintf(id, sizeof(id), "%" PRIu64, p->id);
            metrics_label(l, sizeof(l), "peer", id);
            uint64_t v = f == 0   ? (uint64_t)(p->c.fd >= 0 && p->c.hs_in)
                         : f == 1 ? p->bytes_in
                         : f == 2 ? p->bytes_out
                         : f == 3 ? (p->c.fd >= 0 ? buf_unread(&p->c.out) : 0)
                                  : p->dropped_frames;
            metrics_u64(t, fam[f].name, l, v);
        }
    }
}

static void collect_storage(struct node *n, struct metrics_text *t)
{
    struct bc_stats bs;
    bc_stats(n->bc, &bs);
    gauge(t, "raftkv_store_data_files", "Bitcask data files", bs.data_files);
    gauge(t, "raftkv_store_data_bytes", "bytes of all data files", bs.total_bytes);
    gauge(t, "raftkv_store_live_bytes", "bytes of the records the keydir points to", bs.live_bytes);
    gauge(t, "raftkv_store_dead_bytes", "bytes of overwritten or deleted records",
          bs.total_bytes - (bs.live_bytes < bs.total_bytes ? bs.live_bytes : bs.total_bytes));
    gauge(t, "raftkv_store_keydir_bytes", "memory of the keydir", bs.keydir_bytes);
    counter(t, "raftkv_store_merges_total", "merges done since start", bs.merges_done);
    counter(t, "raftkv_store_merged_bytes_total", "bytes of data files merges replaced",
            bs.merged_bytes);
    gauge(t, "raftkv_store_merge_in_progress", "1 while a merge runs", bs.merging);
    counter(t, "raftkv_store_syncs_total", "fs syncs of the store's data files", bs.fs_syncs);
    gauge(t, "raftkv_log_jobs_pending", "log writes handed to the storage thread, not back yet",
          n->storage ? node_storage_pending(n->storage) : 0);
    counter(t, "raftkv_slow_turns_total",
            "event loop turns that took half an election timeout or more", n->slow_turns);
    metrics_family(t, "raftkv_slowest_turn_seconds", "gauge", "the longest event loop turn so far");
    metrics_f64(t, "raftkv_slowest_turn_seconds", NULL, (double)n->slowest_turn_ms / 1e3);
}

static void collect(struct node *n, struct metrics_text *t)
{
    struct node_metrics *m = n->metrics;
    metrics_family(t, "raftkv_build_info", "gauge", "the running build");
    metrics_textf(t, "raftkv_build_info{version=\"%s\",redis_version=\"%s\"} 1\n", RAFTKV_VERSION,
                  NODE_REDIS_VERSION);
    gauge(t, "raftkv_node_id", "this node's id", n->id);
    gauge(t, "raftkv_start_time_seconds", "when this process started (Unix time)",
          n->started_unix_us / 1000000u);
    collect_raft(n, t);
    collect_latency(n, t);
    collect_clients(n, t);
    collect_peers(n, t);
    collect_storage(n, t);
    counter(t, "raftkv_metrics_scrapes_total", "GET /metrics answered", m->scrapes);
    counter(t, "raftkv_metrics_refused_total",
            "metrics requests refused: bad, too large, another path or method, too many",
            m->http_refused);
}

/* ------------------------------------------------------------------------------------------ */
/* The endpoint                                                                               */

/* Refusals are logged at most once a second (a port scanner must not flood the log); every
 * one is counted (raftkv_metrics_refused_total). */
static bool refusal_log_due(struct node_metrics *m)
{
    uint64_t now = node_now_ms();
    if (m->refused_logged_ms != 0 && now - m->refused_logged_ms < 1000)
        return false;
    m->refused_logged_ms = now;
    return true;
}

int node_metrics_start(struct node *n)
{
    n->metrics = calloc(1, sizeof(*n->metrics));
    if (n->metrics == NULL) {
        node_log("error", "out of memory for the metrics");
        return -1;
    }
    struct node_metrics *m = n->metrics;
    m->listen_fd = -1;
    m->seen_role = -1;
    m->listen_tag.kind = EV_METRICS_LISTEN;
    for (size_t i = 0; i < METRICS_CONNS_MAX; i++) {
        m->conns[i].tag.kind = EV_METRICS;
        m->conns[i].fd = -1;
    }
    if (n->opt.metrics_addr[0] == 0)
        return 0;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (node_resolve(n->opt.metrics_addr, &ss, &sl) != 0) {
        node_log("error", "--metrics-addr: cannot resolve '%s' (HOST:PORT)", n->opt.metrics_addr);
        return -1;
    }
    m->listen_fd = node_listen(&ss, sl, n->opt.metrics_addr);
    if (m->listen_fd < 0 || ep_set(n, EPOLL_CTL_ADD, m->listen_fd, EPOLLIN, &m->listen_tag) != 0)
        return -1;
    node_event("info", "metrics_listen", "serving /metrics", "addr=%s", n->opt.metrics_addr);
    return 0;
}

static void mconn_close(struct node *n, struct metrics_conn *mc)
{
    if (mc->fd < 0)
        return;
    epoll_ctl(n->ep, EPOLL_CTL_DEL, mc->fd, NULL);
    if (mc->ssl != NULL) {
        node_tls_free(mc->ssl);
        mc->ssl = NULL;
        mc->tls_hs = false;
    }
    /* What the client sent beyond the head is read first: a close with unread bytes sends a
     * reset, which can discard the response. */
    char sink[4096];
    for (int k = 0; k < 4 && recv(mc->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; k++) {
    }
    shutdown(mc->fd, SHUT_WR);
    close(mc->fd);
    mc->fd = -1;
    mc->in_len = 0;
    mc->out_off = 0;
    metrics_text_free(&mc->out);
}

void node_metrics_stop(struct node *n)
{
    struct node_metrics *m = n->metrics;
    if (m == NULL)
        return;
    for (size_t i = 0; i < METRICS_CONNS_MAX; i++)
        mconn_close(n, &m->conns[i]);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    free(m);
    n->metrics = NULL;
}

void node_metrics_on_accept(struct node *n)
{
    struct node_metrics *m = n->metrics;
    for (int k = 0; k < 16; k++) {
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                node_log("warn", "accept (metrics): %s", strerror(errno));
            return;
        }
        struct metrics_conn *mc = NULL, *idle = NULL;
        for (size_t i = 0; i < METRICS_CONNS_MAX && mc == NULL; i++) {
            struct metrics_conn *x = &m->conns[i];
            if (x->fd < 0)
                mc = x;
            else if (x->out.len == 0 && (idle == NULL || x->last_ms < idle->last_ms))
                idle = x;
        }
        if (mc == NULL && idle != NULL) {
            /* Full: the connection idle longest (no whole request yet) makes room, so that
             * connections that say nothing cannot keep a scraper out. */
            m->http_refused++;
            if (refusal_log_due(m))
                node_event("warn", "metrics_refused",
                           "too many metrics connections: the one idle longest closed", "limit=%d",
                           METRICS_CONNS_MAX);
            mconn_close(n, idle);
            mc = idle;
        }
        if (mc == NULL || ep_set(n, EPOLL_CTL_ADD, fd, EPOLLIN, &mc->tag) != 0) {
            close(fd);
            m->http_refused++;
            if (refusal_log_due(m))
                node_event("warn", "metrics_refused", "too many metrics connections", "limit=%d",
                           METRICS_CONNS_MAX);
            continue;
        }
        mc->fd = fd;
        mc->in_len = 0;
        mc->out_off = 0;
        mc->last_ms = node_now_ms();
        if (n->opt.metrics_tls) { /* metrics-tls: a TLS server side, as a tls-port client's */
            mc->ssl = node_tls_new(n, fd, true, false);
            mc->tls_hs = true;
            if (mc->ssl == NULL) {
                node_log("error", "out of memory for a metrics TLS connection");
                mconn_close(n, mc);
            }
        }
    }
}

/* Waits for what a TLS step wants (read or write readiness). */
static void mconn_want(struct node *n, struct metrics_conn *mc, enum tls_step st)
{
    ep_set(n, EPOLL_CTL_MOD, mc->fd, st == TLS_WANT_WRITE ? EPOLLOUT : EPOLLIN, &mc->tag);
}

/* One step of a metrics-tls handshake: true once done; false while it goes on or when it
 * failed (the connection closed; a refusal logged as a tls-port client's). */
static bool mconn_handshake(struct node *n, struct metrics_conn *mc)
{
    char why[256];
    enum tls_step st = node_tls_handshake(mc->ssl, why, sizeof(why));
    if (st == TLS_DONE) {
        mc->tls_hs = false;
        ep_set(n, EPOLL_CTL_MOD, mc->fd, EPOLLIN, &mc->tag);
        return true;
    }
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        mconn_want(n, mc, st);
        return false;
    }
    if (st == TLS_FAILED) {
        n->metrics->http_refused++;
        conn_tls_refused(n, "client_refused", why, "port=metrics");
    }
    mconn_close(n, mc);
    return false;
}

/* Writes what the socket takes; closes once all is out. */
static void mconn_write(struct node *n, struct metrics_conn *mc)
{
    while (mc->out_off < mc->out.len) {
        ssize_t w;
        if (mc->ssl != NULL) {
            char why[256];
            enum tls_step st = TLS_DONE;
            w = (ssize_t)node_tls_write(mc->ssl, mc->out.p + mc->out_off, mc->out.len - mc->out_off,
                                        &st, why, sizeof(why));
            if (w == 0 && (st == TLS_WANT_READ || st == TLS_WANT_WRITE)) {
                mconn_want(n, mc, st);
                return;
            }
            if (w == 0)
                break; /* closed or failed: the client went away */
        } else {
            w = send(mc->fd, mc->out.p + mc->out_off, mc->out.len - mc->out_off, MSG_NOSIGNAL);
        }
        if (w > 0) {
            mc->out_off += (size_t)w;
            mc->last_ms = node_now_ms();
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ep_set(n, EPOLL_CTL_MOD, mc->fd, EPOLLOUT, &mc->tag);
            return;
        }
        break; /* the client went away */
    }
    mconn_close(n, mc);
}

static void mconn_respond(struct node *n, struct metrics_conn *mc, enum metrics_http_req r)
{
    struct node_metrics *m = n->metrics;
    struct metrics_text body = {0};
    const char *status = "200 OK", *ctype = "text/plain; version=0.0.4; charset=utf-8";
    const char *extra = "";
    if (r == METRICS_HTTP_METRICS) {
        m->scrapes++;
        collect(n, &body);
    } else {
        m->http_refused++;
        status = r == METRICS_HTTP_NOT_FOUND    ? "404 Not Found"
                 : r == METRICS_HTTP_BAD_METHOD ? "405 Method Not Allowed"
                 : r == METRICS_HTTP_TOO_LARGE  ? "431 Request Header Fields Too Large"
                                                : "400 Bad Request";
        ctype = "text/plain; charset=utf-8";
        extra = r == METRICS_HTTP_BAD_METHOD ? "Allow: GET\r\n" : "";
        metrics_textf(&body, "%s\n", metrics_http_req_name(r));
        /* A well-formed request for another path is ordinary (a browser asks for a favicon);
         * garbage and oversized heads are logged. */
        if ((r == METRICS_HTTP_BAD_REQUEST || r == METRICS_HTTP_TOO_LARGE) && refusal_log_due(m))
            node_event("warn", "metrics_refused", metrics_http_req_name(r), "bytes=%zu",
                       mc->in_len);
    }
    metrics_textf(&mc->out,
                  "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                  "Connection: close\r\n\r\n",
                  status, ctype, body.len, extra);
    if (body.failed || mc->out.failed) {
        node_log("error", "out of memory for a metrics response");
        metrics_text_free(&body);
        mconn_close(n, mc);
        return;
    }
    if (body.len > 0)
        metrics_textf(&mc->out, "%.*s", (int)body.len, body.p);
    metrics_text_free(&body);
    if (mc->out.failed) {
        mconn_close(n, mc);
        return;
    }
    mconn_write(n, mc);
}

void node_metrics_on_event(struct node *n, struct metrics_conn *mc, uint32_t events)
{
    if (mc->fd < 0)
        return;
    if (mc->tls_hs && !mconn_handshake(n, mc))
        return;
    if (mc->out.len > 0) { /* writing the response */
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP) || mc->ssl != NULL)
            mconn_write(n, mc);
        return;
    }
    bool eof = false;
    for (;;) {
        if (mc->in_len == sizeof(mc->in))
            break;
        ssize_t r;
        if (mc->ssl != NULL) {
            char why[256];
            enum tls_step st = TLS_DONE;
            r = (ssize_t)node_tls_read(mc->ssl, mc->in + mc->in_len, sizeof(mc->in) - mc->in_len,
                                       &st, why, sizeof(why));
            if (r == 0 && (st == TLS_WANT_READ || st == TLS_WANT_WRITE)) {
                mconn_want(n, mc, st);
                break;
            }
            if (r == 0) { /* closed, or a TLS error: as an EOF */
                eof = true;
                break;
            }
        } else {
            r = recv(mc->fd, mc->in + mc->in_len, sizeof(mc->in) - mc->in_len, 0);
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0) { /* EOF (a client may send its request, then shut down its side) */
            eof = true;
            break;
        }
        mc->in_len += (size_t)r;
        mc->last_ms = node_now_ms();
        if (mc->in_len == sizeof(mc->in))
            break;
    }
    enum metrics_http_req req = metrics_http_parse(mc->in, mc->in_len, METRICS_HEAD_MAX);
    if (req == METRICS_HTTP_MORE && eof) {
        mconn_close(n, mc); /* gone before a whole request came */
        return;
    }
    if (req != METRICS_HTTP_MORE) {
        ep_set(n, EPOLL_CTL_MOD, mc->fd, 0, &mc->tag);
        mconn_respond(n, mc, req);
    }
}

void node_metrics_timer(struct node *n)
{
    struct node_metrics *m = n->metrics;
    uint64_t now = node_now_ms();
    for (size_t i = 0; i < METRICS_CONNS_MAX; i++) {
        struct metrics_conn *mc = &m->conns[i];
        if (mc->fd >= 0 && now - mc->last_ms >= METRICS_CONN_TIMEOUT_MS) {
            if (mc->out.len == 0 && refusal_log_due(m))
                node_event("warn", "metrics_refused", "no whole request in time", "bytes=%zu ms=%u",
                           mc->in_len, METRICS_CONN_TIMEOUT_MS);
            m->http_refused += mc->out.len == 0;
            mconn_close(n, mc);
        }
    }
}
