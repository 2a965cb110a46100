/*
 * replica.c — see replica.h for the contract.
 *
 * Pending requests live in a slot table. A request's id on the wire or in raft (read ctx,
 * forward id) is (nonce24 << 40 | generation20 << 20 | slot20): the generation tells a late
 * answer for a finished request from the slot's new occupant, and the nonce, drawn from the
 * seed at start, tells answers meant for an earlier incarnation of this node.
 *
 * A request is in one of these states:
 *
 *   submit ──GET──► READ_INDEX ──read state──► WAIT_APPLY ──applied >= index──► reply
 *      │                                           ▲
 *      ├──PUT/DEL on leader: propose ──────────────┤  (index, term known)
 *      └──PUT/DEL on follower: FORWARD ──► FORWARD_WAIT ──FORWARD_RESP ok──┘
 *
 * and any state ends in TIMEOUT after request_timeout_ticks (deadlines are FIFO: every request
 * gets the same timeout, so submission order is deadline order).
 *
 * Program order per connection (issue #13). A request with a client id belongs to that
 * connection (session); the replica keeps, per connection with requests pending, how many of
 * its released reads are not yet answered, how many of its released writes have no log index
 * yet (forwarded, no FORWARD_RESP), and the highest index its writes were placed at:
 *
 *   submit ──a read while writes are unplaced, a write while reads are unanswered, or
 *      │      anything while earlier requests are held──► HELD (in the connection's FIFO)
 *      └──otherwise──► released (as above)        HELD ──the head's condition clears──► released
 *
 * A released read serves at applied >= max(its read index, the connection's write index): it
 * sees every earlier write of its connection (W then R). A write is released only once every
 * earlier read of its connection was answered, so its entry comes after what they saw (R then
 * W: its index is above the leader's last index, itself at least the commit index any of those
 * reads was served at). Consecutive writes are released together (one batch, one sync);
 * consecutive reads too; other connections never wait. Per request O(1): a hash map of the
 * connections with requests pending, a doubly linked FIFO of held requests, a queue of
 * connections to release (conn_*).
 *
 * A REPLICA_CMD of one read op takes the GET path (kept as op GET with `cmd` set: its slot's key
 * buffer holds the command, kv_read_cmd serves it); any other CMD takes the PUT path, and the
 * node that proposes it (the leader, also for a forwarded one) writes its time stamp into it
 * first (kv.h TIME). A CMD's reply carries the encoded kv result, copied from kv into the
 * recent-result ring at apply (kv's own copy is gone by the next apply).
 *
 * Invariants:
 *   R1  every submitted request gets exactly one reply (or the replica is destroyed/failed).
 *   R2  a write is answered OK only with the result of applying its own entry: the entry at
 *       its (index, term), and, with a session, its (client_id, seq).
 *   R3  a reply TRYAGAIN means the request was not and will not be executed.
 */
#include "replica/replica.h"

#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "common/assert.h"
#include "common/crc32c.h"
#include "common/limits.h"
#include "common/prng.h"
#include "kv/view.h"
#include "replica/log_job.h"

_Static_assert(RK_LIMITS_VALUE_MAX <= KV_MAX_VALUE_BYTES,
               "every value the limits allow fits a kv command");
_Static_assert(KV_CMD_MAX_BYTES <= RAFT_DEFAULT_MAX_ENTRY_BYTES,
               "the largest command must fit the default Raft entry limit");

#define REPLICA_RECENT 4096u /* results of recently applied entries, for late FORWARD_RESPs */

enum pending_state {
    P_FREE = 0,
    P_NEW,          /* allocated, not yet handed to raft or forwarded (within submit_one) */
    P_READ_INDEX,   /* waiting for raft's read state */
    P_FORWARD_WAIT, /* waiting for the leader's FORWARD_RESP */
    P_WAIT_APPLY,   /* waiting for the state machine to reach index */
    P_HELD,         /* waiting for an earlier request of its connection (program order) */
};

#define CONN_NONE UINT32_MAX

/* A connection (client id) with requests pending here: see "Program order" above. */
struct conn {
    uint64_t client_id; /* 0: free */
    uint32_t n_reqs;    /* pending requests, held or released */
    uint32_t reads_unserved;  /* released reads not answered yet */
    uint32_t writes_unplaced; /* released writes whose log index is not known yet */
    uint64_t write_index;     /* the highest index a write of this connection was placed at */
    uint32_t held_head, held_tail; /* slots; CONN_NONE: empty */
    uint32_t read_head, read_tail; /* released reads not answered, in order: served in order */
    bool queued; /* in the release queue */
};

struct pending {
    uint8_t state;
    uint8_t op;   /* a REPLICA_CMD read is kept as REPLICA_GET with cmd set */
    bool cmd;     /* REPLICA_CMD: a read's key buffer holds the encoded command */
    uint32_t gen; /* 20 bits used */
    uint32_t deadline;
    uint64_t req_id;
    uint64_t client_id;
    uint64_t seq;
    uint64_t index;
    uint64_t term;   /* writes: the term of the entry proposed */
    uint64_t leader; /* forwards: where it went */
    uint8_t *key;    /* reads: a copy of the key; held writes: the encoded command. The buffer
                        stays with the slot (no allocation per read once warm) unless it grew
                        past SLOT_KEY_KEEP */
    uint32_t key_len;
    uint32_t key_cap;
    uint32_t conn;            /* index in replica.conns, or CONN_NONE */
    uint32_t held_prev, held_next; /* the connection's held FIFO: slots, or CONN_NONE */
    uint32_t rd_prev, rd_next;     /* the connection's released reads, in order */
    uint64_t min_index;       /* reads: the connection's write index when released */
    bool counted_read;        /* in conn->reads_unserved */
    bool counted_unplaced;    /* in conn->writes_unplaced */
};

#define SLOT_KEY_KEEP 256u

struct recent_result {
    uint64_t index;
    uint64_t term;
    struct kv_result res; /* a CMD's res.val points at buf (kv's own is gone by the next apply) */
    uint8_t *buf;
    size_t cap;
    bool lost; /* the CMD result could not be kept (out of memory) */
};

/* Offsets into the arena until replica_output turns them into pointers (the arena moves). A
 * frame in pieces (frame_refs) is segs[seg_first .. seg_first + n_segs) instead. */
struct frame_rec {
    uint64_t to;
    size_t off;
    size_t len;
    size_t seg_first;
    size_t n_segs;
    uint64_t hold;
};

/* A piece of a frame in pieces: arena bytes at off, or (held) an entry's data at p. */
struct seg_rec {
    const uint8_t *p;
    size_t off;
    size_t len;
    bool held;
};

struct reply_rec {
    struct replica_reply r;
    size_t val_off;
};

/* A snapshot on its way to a follower, streamed from a view of the store pinned at (index,
 * term) (kv/view.h): one chunk of records at a time, the next read from the view only when the
 * follower acknowledged the last (flow control, and at most one chunk of value reads per
 * acknowledgment on the caller's thread). The outstanding chunk is kept for a resend. */
struct snap_out {
    bool active;
    uint64_t to;
    uint64_t index;
    uint64_t term;
    uint32_t xfer; /* this transfer's number (codec.h SNAP) */
    struct kv_view *view;
    uint8_t *buf; /* the outstanding chunk's records */
    size_t len, cap;
    uint64_t seq;         /* the outstanding chunk's number */
    uint32_t crc;         /* running CRC-32C through it */
    bool last;            /* it is the last */
    uint32_t progress_at; /* tick of the last progress */
    uint32_t sent_at;     /* tick the outstanding chunk left */
    uint32_t resends;     /* of the outstanding chunk (backoff: snap_tick) */
};

/* A snapshot arriving from the leader, chunk by chunk (seq in order). */
struct snap_in {
    bool active;
    uint64_t from;
    uint64_t term;
    uint64_t index;
    uint64_t snap_term;
    uint32_t xfer;
    uint64_t next_seq; /* chunks received in order */
    uint32_t crc;      /* running CRC-32C of their data */
    uint64_t count;    /* records */
    uint8_t *buf;      /* their records (not staged) */
    size_t len, cap;
    /* Staged (store.h, STAGED REPLACEMENT): the records go to the store's stage as they come,
     * nothing is kept here; after the last chunk the switch is queued (committing), or waits
     * for a merge to end (commit_wanted); snap_in_poll finishes the install once it is done. */
    bool staged;
    bool commit_wanted;
    bool committing;
    bool ack_held; /* the last chunk's acknowledgment waits for the store (SNAP_STAGE_QUEUE) */
    struct kv *loader; /* staged: the state machine to be, fed each record (kv_load_record) */
};

/* A staged install acknowledges a chunk only once the store has written all but two chunks'
 * bytes of what was staged (kv_store stage_queued): the leader sends the next chunk on that
 * acknowledgment, so the chunks queued in memory for the store's worker stay bounded (two
 * chunks, or one chunk of a big value) however fast the network is and however slow the disk. */
#define SNAP_STAGE_QUEUE_BYTES (2 * (uint64_t)r->cfg.snapshot_chunk_bytes)

struct byte_arena {
    uint8_t *buf;
    size_t len;
    size_t cap;
};

/* A request in P_WAIT_APPLY (replica.waiting): its pending id and the index it waits for. */
struct waiter {
    uint64_t id;
    uint64_t index;
};

struct replica {
    struct replica_config cfg;
    uint64_t promise_on_disk; /* the log store's promise (issue #15); 0: none */
    const struct rk_alloc *alloc;
    struct raft *raft;
    struct kv *kv;
    uint64_t id;
    uint32_t nonce; /* 24 bits */
    uint32_t now;   /* ticks */
    uint32_t synced_at;      /* tick of the last store sync */
    uint64_t synced_applied; /* applied index at the last store sync */
    bool failed;
    bool deferred; /* inputs only feed raft; replica_flush runs the ready loop */
    struct rk_errmsg fail_msg;
    /* Soft state seen at the last ready, to notice leadership changes. */
    enum raft_role role;
    uint64_t leader;
    uint64_t term;
    /* The term and vote last written to the log store: a hard state that changes only commit
     * needs no sync of its own (raft.h: commit is a hint). */
    uint64_t hs_term;
    uint64_t hs_vote;

    struct pending *slots;
    uint32_t n_slots;
    uint32_t *free_slots;
    uint32_t n_free;
    uint32_t n_pending;
    /* FIFO of request ids by deadline: a ring of 2 x max_pending ids. Ids of finished requests
     * stay until they reach the head; when the ring fills, it is compacted (amortized O(1):
     * at most max_pending - 1 ids are live). */
    uint64_t *deadlines;
    uint32_t dl_cap;
    uint32_t dl_head;
    uint32_t dl_len;
    /* Requests in P_WAIT_APPLY, as ids with the index each waits for (2 x max_pending, compacted
     * the same way); served by a scan when the applied index moves, which passes over the ones
     * still ahead of it without touching their slots. */
    struct waiter *waiting;
    uint32_t n_waiting;

    struct recent_result *recent; /* REPLICA_RECENT, by index % REPLICA_RECENT */

    /* Connections with requests pending (at most one per slot): a table, an open-addressing
     * index by client id (linear probing, backward-shift deletion), a free list, and the
     * queue of connections whose held requests may go (a ring, each at most once). */
    struct conn *conns;
    uint32_t *conn_free;
    uint32_t n_conn_free;
    uint32_t *conn_index; /* conn + 1; 0: empty */
    uint32_t conn_index_mask;
    uint32_t *release;
    uint32_t release_head, release_len;

    struct byte_arena bytes; /* frames and reply values */
    struct frame_rec *frames;
    size_t n_frames, cap_frames;
    struct reply_rec *replies;
    size_t n_replies, cap_replies;
    struct replica_frame *out_frames;
    size_t cap_out_frames;
    struct seg_rec *segs; /* pieces of this call's frames in pieces */
    size_t n_segs, cap_segs;
    struct replica_seg *out_segs;
    size_t cap_out_segs;
    struct codec_piece *pieces; /* codec_encode_append_pieces' scratch */
    size_t cap_pieces;
    /* Frames in pieces out with the driver (holds not released), and the hold of the next. */
    uint64_t *holds;
    size_t n_holds, cap_holds;
    uint64_t hold_next;
    struct replica_reply *out_replies;
    size_t cap_out_replies;
    bool output_taken;

    uint8_t *scratch; /* command encoding */
    bool took_val;    /* submit_one made a request's val_take the scratch */
    /* Time (kv.h TIME): the driver's wall clock, and the last stamp this node gave an entry. */
    uint64_t now_ms;
    uint64_t last_stamp_ms;
    /* The leader's expiry sweep: its one PURGE entry in flight (index, term), 0 if none. */
    uint64_t purge_index;
    uint64_t purge_term;
    struct snap_out snap_out[RAFT_MAX_MEMBERS]; /* by follower: slot with to == id, or free */
    struct kv_store *own_views; /* the views wrapper replica_create put on the driver's store */
    uint32_t snap_xfers;        /* transfers started (codec.h SNAP xfer: nonce-based) */
    struct snap_in snap_in;
    /* Automatic promotion (config.auto_promote_ticks): learners and the ticks each has been
     * caught up in a row, on the leader. */
    uint64_t catchup_id[RAFT_MAX_LEARNERS];
    uint32_t catchup_ticks[RAFT_MAX_LEARNERS];
    uint64_t snapshots_sent;
    uint64_t snapshots_installed;
    size_t scratch_cap;

    /* Asynchronous persistence: jobs made and not yet handed out (outputs), and the count
     * and sequence of those out with the driver. */
    struct replica_log_job **jobs;
    size_t n_jobs, cap_jobs;
    size_t n_jobs_given; /* of jobs[], handed out by the last replica_output */
    /* A snapshot installed into a store with deferred writes: the log's compaction to it (a
     * job) must not reach the disk before the store holds it durably (replica_store_progress). */
    uint64_t restore_wait;
    /* Its acknowledgment (done) too: it promises the leader a snapshot the follower holds, so it
     * leaves only once the store holds it on disk (replica_store_progress). */
    struct codec_snap snap_ack_held;
    bool snap_ack_holding;
    uint32_t jobs_out;
    uint64_t job_seq_next; /* seq of the next job made */
    uint64_t job_seq_done; /* seq of the next job expected back */
    /* Jobs borrow their entries' data from raft (no copy of a big value). Buffers of entries
     * raft dropped meanwhile wait here, FIFO, until every job made before the drop is back:
     * dropped[i].buf is freed once job_seq_done > dropped[i].seq. */
    struct dropped_buf *dropped;
    size_t head_dropped, n_dropped, cap_dropped;
    uint8_t **taken; /* raft_take_garbage's vector, emptied into dropped */
    size_t n_taken, cap_taken;
};

/* A command at least this big is handed to raft without a copy (propose). */
#define PROPOSE_TAKE_BYTES (256u << 10)

struct dropped_buf {
    uint8_t *buf;
    uint64_t seq;  /* the newest job made when raft dropped it */
    uint64_t hold; /* hold_next when raft dropped it: frames with a lower hold may point at it */
};

const char *replica_status_name(int status)
{
    switch (status) {
    case REPLICA_OK:
        return "ok";
    case REPLICA_NOT_FOUND:
        return "not_found";
    case REPLICA_TRYAGAIN:
        return "tryagain";
    case REPLICA_TIMEOUT:
        return "timeout";
    case REPLICA_ERROR:
        return "error";
    }
    return "unknown";
}

uint64_t replica_client_id(uint64_t node_id, uint32_t incarnation, uint32_t counter)
{
    RK_ASSERT(node_id >= 1 && node_id <= 255);
    RK_ASSERT(incarnation < (1u << 24));
    return node_id << 56 | (uint64_t)incarnation << 32 | counter;
}

void replica_config_default(struct replica_config *c)
{
    memset(c, 0, sizeof(*c));
    raft_config_default(&c->raft);
    c->request_timeout_ticks = 50;
    c->max_pending = 65536;
    c->max_sessions = 4096;
    c->store_sync_ticks = 10;
    c->compact_entries = 100000;
    c->compact_keep = 1000;
    c->snapshot_chunk_bytes = 64u << 10;
    c->snapshot_timeout_ticks = 100;
    c->max_snapshot_bytes = 1ull << 30;
    c->snapshot_overlay_bytes = 256u << 20;
    c->max_log_jobs = 1024;
    c->compact_bytes = 64u << 20;
    c->compact_keep_bytes = 16u << 20;
}

/* ------------------------------------------------------------------------------------------ */
/* Outputs                                                                                    */

/* Reserves n bytes in the arena; returns the offset or SIZE_MAX when out of memory. */
static size_t arena_reserve(struct replica *r, size_t n)
{
    if (!rk_grow(r->alloc, (void **)&r->bytes.buf, &r->bytes.cap, r->bytes.len + n, 1))
        return SIZE_MAX;
    size_t off = r->bytes.len;
    r->bytes.len += n;
    return off;
}

/* Starts a call: outputs handed out by replica_output are released now. */
static void replica_begin(struct replica *r)
{
    if (!r->output_taken)
        return;
    r->output_taken = false;
    r->bytes.len = 0;
    r->n_frames = 0;
    r->n_segs = 0;
    r->n_replies = 0;
    /* The driver owns those it took; the rest wait for the store (store_gate). */
    if (r->n_jobs > r->n_jobs_given) /* r->jobs may be NULL: memmove(NULL, ...) is undefined */
        memmove(r->jobs, r->jobs + r->n_jobs_given,
                (r->n_jobs - r->n_jobs_given) * sizeof(*r->jobs));
    r->n_jobs -= r->n_jobs_given;
    r->n_jobs_given = 0;
}

static void push_frame(struct replica *r, uint64_t to, size_t off, size_t len)
{
    if (!rk_grow(r->alloc, (void **)&r->frames, &r->cap_frames, r->n_frames + 1,
                 sizeof(*r->frames)))
        return; /* out of memory: the frame is lost, as on a bad network */
    r->frames[r->n_frames++] = (struct frame_rec){.to = to, .off = off, .len = len};
}

/* Entry data of at least this many bytes is pointed at, not copied, in a frame in pieces. */
#define FRAME_REF_MIN_BYTES (4u << 10)

/* The APPEND m as a frame in pieces (config.frame_refs): its big entries' data is pointed at,
 * and stays allocated until the driver releases the frame's hold (dropped_release). false when
 * out of memory (the frame is then lost, as on a bad network). */
static bool send_append_refs(struct replica *r, const struct raft_msg *m, size_t size)
{
    size_t cap_p = 2 * (size_t)m->n_entries + 1;
    if (!rk_grow(r->alloc, (void **)&r->pieces, &r->cap_pieces, cap_p, sizeof(*r->pieces)) ||
        !rk_grow(r->alloc, (void **)&r->segs, &r->cap_segs, r->n_segs + cap_p, sizeof(*r->segs)) ||
        !rk_grow(r->alloc, (void **)&r->frames, &r->cap_frames, r->n_frames + 1,
                 sizeof(*r->frames)) ||
        !rk_grow(r->alloc, (void **)&r->holds, &r->cap_holds, r->n_holds + 1, sizeof(*r->holds)))
        return false;
    size_t copied = size;
    for (uint32_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].len >= FRAME_REF_MIN_BYTES)
            copied -= m->entries[i].len;
    size_t off = arena_reserve(r, copied);
    if (off == SIZE_MAX)
        return false;
    size_t buf_len = 0, n_pieces = 0;
    int rc = codec_encode_append_pieces(m, FRAME_REF_MIN_BYTES, r->bytes.buf + off, copied,
                                        &buf_len, r->pieces, r->cap_pieces, &n_pieces);
    RK_ASSERT(rc == RK_OK);
    RK_ASSERT(buf_len == copied);
    size_t first = r->n_segs;
    for (size_t i = 0; i < n_pieces; i++) {
        const struct codec_piece *pc = &r->pieces[i];
        if (pc->entry < 0)
            r->segs[r->n_segs++] = (struct seg_rec){.off = off + pc->off, .len = pc->len};
        else
            r->segs[r->n_segs++] =
                (struct seg_rec){.p = m->entries[pc->entry].data, .len = pc->len, .held = true};
    }
    uint64_t hold = r->hold_next++;
    r->holds[r->n_holds++] = hold;
    r->frames[r->n_frames++] = (struct frame_rec){
        .to = m->to, .len = size, .seg_first = first, .n_segs = n_pieces, .hold = hold};
    return true;
}

static void send_raft_msg(struct replica *r, const struct raft_msg *m)
{
    size_t size = codec_msg_size(m);
    /* The entries' data is raft's own buffers (raft_advance_async: dropped ones go through
     * raft_take_garbage), so a frame may point at them past this call. */
    if (r->cfg.frame_refs && m->type == RAFT_MSG_APPEND && size > CODEC_FRAG_MAX &&
        size != SIZE_MAX && (uint64_t)size - CODEC_FRAME_HEADER_SIZE <= UINT32_MAX) {
        send_append_refs(r, m, size);
        return;
    }
    size_t off = arena_reserve(r, size);
    if (off == SIZE_MAX)
        return;
    size_t len = 0;
    int rc = codec_encode_msg(m, r->bytes.buf + off, size, &len);
    RK_ASSERT(rc == RK_OK);
    push_frame(r, m->to, off, len);
}

static void send_forward(struct replica *r, uint8_t type, const struct codec_forward *f)
{
    size_t size = codec_forward_size(type, f);
    size_t off = arena_reserve(r, size);
    if (off == SIZE_MAX)
        return;
    size_t len = 0;
    int rc = codec_encode_forward(type, f, r->bytes.buf + off, size, &len);
    RK_ASSERT(rc == RK_OK);
    push_frame(r, f->to, off, len);
}

static void push_reply(struct replica *r, const struct replica_reply *rep)
{
    if (!rk_grow(r->alloc, (void **)&r->replies, &r->cap_replies, r->n_replies + 1,
                 sizeof(*r->replies)))
        return; /* cannot happen unless memory runs out; the client then times out */
    struct reply_rec *rec = &r->replies[r->n_replies];
    rec->r = *rep;
    rec->val_off = SIZE_MAX;
    if (rep->val_len > 0) {
        size_t off = arena_reserve(r, rep->val_len);
        if (off == SIZE_MAX) {
            rec->r.status = REPLICA_TRYAGAIN;
            rec->r.reason = "out of memory";
            rec->r.val_len = 0;
        } else {
            memcpy(r->bytes.buf + off, rep->val, rep->val_len);
            rec->val_off = off;
        }
    }
    rec->r.val = NULL;
    r->n_replies++;
}

static uint64_t store_durable(struct replica *r)
{
    struct kv_store *st = r->cfg.store;
    return st->ops->durable_index != NULL ? st->ops->durable_index(st)
                                          : st->ops->applied_index(st);
}

/* The jobs that may go now: all but those from the first that waits for the store to hold a
 * snapshot durably (a log compacted to a snapshot the store does not yet hold on disk would
 * leave a crash with neither). */
static size_t store_gate(struct replica *r)
{
    size_t n = 0;
    while (n < r->n_jobs &&
           (r->jobs[n]->wait_store == 0 || store_durable(r) >= r->jobs[n]->wait_store))
        n++;
    return n;
}

static void send_snap(struct replica *r, uint8_t type, const struct codec_snap *f);

static void snap_in_poll(struct replica *r);

void replica_store_progress(struct replica *r)
{
    replica_begin(r);
    snap_in_poll(r); /* a staged install switched in */
    if (r->snap_ack_holding && store_durable(r) >= r->snap_ack_held.index) {
        struct raft_status st;
        raft_status(r->raft, &st);
        if (st.term == r->snap_ack_held.term && st.role == RAFT_FOLLOWER)
            send_snap(r, CODEC_TYPE_SNAP_ACK, &r->snap_ack_held);
        r->snap_ack_holding = false;
    }
}

void replica_output(struct replica *r, struct replica_output *out)
{
    memset(out, 0, sizeof(*out));
    r->output_taken = true;
    out->log_jobs = r->jobs;
    out->n_log_jobs = store_gate(r);
    r->n_jobs_given = out->n_log_jobs;
    if (!rk_grow(r->alloc, (void **)&r->out_frames, &r->cap_out_frames, r->n_frames,
                 sizeof(*r->out_frames)) ||
        !rk_grow(r->alloc, (void **)&r->out_replies, &r->cap_out_replies, r->n_replies,
                 sizeof(*r->out_replies)) ||
        !rk_grow(r->alloc, (void **)&r->out_segs, &r->cap_out_segs, r->n_segs,
                 sizeof(*r->out_segs)))
        return; /* out of memory: frames in pieces are lost with their holds, whose buffers then
                   stay until replica_destroy */
    for (size_t i = 0; i < r->n_segs; i++) {
        const struct seg_rec *sg = &r->segs[i];
        r->out_segs[i] = (struct replica_seg){
            .p = sg->held ? sg->p : r->bytes.buf + sg->off, .len = sg->len, .held = sg->held};
    }
    for (size_t i = 0; i < r->n_frames; i++) {
        const struct frame_rec *f = &r->frames[i];
        r->out_frames[i] = (struct replica_frame){.to = f->to, .len = f->len};
        if (f->n_segs > 0) {
            r->out_frames[i].segs = r->out_segs + f->seg_first;
            r->out_frames[i].n_segs = f->n_segs;
            r->out_frames[i].hold = f->hold;
        } else {
            r->out_frames[i].bytes = r->bytes.buf + f->off;
        }
    }
    for (size_t i = 0; i < r->n_replies; i++) {
        r->out_replies[i] = r->replies[i].r;
        if (r->replies[i].val_off != SIZE_MAX)
            r->out_replies[i].val = r->bytes.buf + r->replies[i].val_off;
    }
    out->frames = r->out_frames;
    out->n_frames = r->n_frames;
    out->replies = r->out_replies;
    out->n_replies = r->n_replies;
}

/* ------------------------------------------------------------------------------------------ */
/* Pending requests                                                                           */

static uint64_t pending_id(const struct replica *r, uint32_t slot)
{
    return (uint64_t)r->nonce << 40 | (uint64_t)(r->slots[slot].gen & 0xfffffu) << 20 | slot;
}

/* The live request with this id, or NULL (finished, reused, or another incarnation's). */
static struct pending *pending_find(struct replica *r, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & 0xfffffu);
    if ((uint32_t)(id >> 40) != r->nonce || slot >= r->n_slots)
        return NULL;
    struct pending *p = &r->slots[slot];
    if (p->state == P_FREE || (p->gen & 0xfffffu) != (uint32_t)((id >> 20) & 0xfffffu))
        return NULL;
    return p;
}

static uint32_t pending_slot(const struct replica *r, const struct pending *p)
{
    return (uint32_t)(p - r->slots);
}

/* ---- connections (program order) ---------------------------------------------------- */

static uint32_t conn_hash(const struct replica *r, uint64_t client_id)
{
    uint64_t z = client_id * UINT64_C(0x9e3779b97f4a7c15);
    return (uint32_t)(z >> 32) & r->conn_index_mask;
}

/* The index slot of client_id: its entry, or the empty slot where it would go. */
static uint32_t conn_lookup(const struct replica *r, uint64_t client_id)
{
    uint32_t i = conn_hash(r, client_id);
    for (uint32_t probes = 0;; probes++) {
        RK_ASSERT(probes <= r->conn_index_mask);
        uint32_t c = r->conn_index[i];
        if (c == 0 || r->conns[c - 1].client_id == client_id)
            return i;
        i = (i + 1) & r->conn_index_mask;
    }
}

/* The connection of client_id, created if it has none (there is room: at most one per
 * pending request, and the caller holds a slot). */
static uint32_t conn_get(struct replica *r, uint64_t client_id)
{
    RK_ASSERT(client_id != 0);
    uint32_t i = conn_lookup(r, client_id);
    if (r->conn_index[i] != 0)
        return r->conn_index[i] - 1;
    RK_ASSERT(r->n_conn_free > 0);
    uint32_t c = r->conn_free[--r->n_conn_free];
    r->conns[c] = (struct conn){.client_id = client_id, .held_head = CONN_NONE,
                                .held_tail = CONN_NONE, .read_head = CONN_NONE,
                                .read_tail = CONN_NONE};
    r->conn_index[i] = c + 1;
    return c;
}

/* Removes a connection without requests (backward-shift deletion keeps every probe chain). */
static void conn_put(struct replica *r, uint32_t c)
{
    struct conn *cn = &r->conns[c];
    RK_ASSERT(cn->n_reqs == 0 && cn->held_head == CONN_NONE && !cn->queued);
    RK_ASSERT(cn->read_head == CONN_NONE);
    uint32_t i = conn_lookup(r, cn->client_id);
    RK_ASSERT(r->conn_index[i] == c + 1);
    uint32_t mask = r->conn_index_mask;
    for (uint32_t j = (i + 1) & mask; r->conn_index[j] != 0; j = (j + 1) & mask) {
        uint32_t home = conn_hash(r, r->conns[r->conn_index[j] - 1].client_id);
        /* Entry j may move into the hole at i if its home is not in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            r->conn_index[i] = r->conn_index[j];
            i = j;
        }
    }
    r->conn_index[i] = 0;
    cn->client_id = 0;
    r->conn_free[r->n_conn_free++] = c;
}

/* Whether the connection's first unanswered read has reached its index but waits for its
 * turn (reads of a connection are served in order: R then R). */
static bool conn_read_ready(const struct replica *r, const struct conn *cn)
{
    if (cn->read_head == CONN_NONE)
        return false;
    const struct pending *p = &r->slots[cn->read_head];
    return p->state == P_WAIT_APPLY && p->index <= kv_applied_index(r->kv);
}

/* Whether the connection's first held request may go now. */
static bool conn_head_ready(const struct replica *r, const struct conn *cn)
{
    if (cn->held_head == CONN_NONE)
        return false;
    const struct pending *p = &r->slots[cn->held_head];
    return replica_op_is_read(p->op) ? cn->writes_unplaced == 0 : cn->reads_unserved == 0;
}

/* Queues the connection for release_held if its first held request may go. */
static void conn_kick(struct replica *r, uint32_t c)
{
    struct conn *cn = &r->conns[c];
    if (cn->queued || !(conn_head_ready(r, cn) || conn_read_ready(r, cn)))
        return;
    RK_ASSERT(r->release_len < r->n_slots);
    r->release[(r->release_head + r->release_len) % r->n_slots] = c;
    r->release_len++;
    cn->queued = true;
}

static void conn_unhold(struct replica *r, struct pending *p)
{
    struct conn *cn = &r->conns[p->conn];
    if (p->held_prev == CONN_NONE)
        cn->held_head = p->held_next;
    else
        r->slots[p->held_prev].held_next = p->held_next;
    if (p->held_next == CONN_NONE)
        cn->held_tail = p->held_prev;
    else
        r->slots[p->held_next].held_prev = p->held_prev;
    p->held_prev = p->held_next = CONN_NONE;
}

static void conn_read_unlink(struct replica *r, struct pending *p)
{
    struct conn *cn = &r->conns[p->conn];
    if (p->rd_prev == CONN_NONE)
        cn->read_head = p->rd_next;
    else
        r->slots[p->rd_prev].rd_next = p->rd_next;
    if (p->rd_next == CONN_NONE)
        cn->read_tail = p->rd_prev;
    else
        r->slots[p->rd_next].rd_prev = p->rd_prev;
    p->rd_prev = p->rd_next = CONN_NONE;
}

/* A write of the connection got its log index. */
static void conn_placed(struct replica *r, struct pending *p)
{
    if (p->conn == CONN_NONE)
        return;
    struct conn *cn = &r->conns[p->conn];
    if (p->index > cn->write_index)
        cn->write_index = p->index;
    if (p->counted_unplaced) {
        p->counted_unplaced = false;
        cn->writes_unplaced--;
        conn_kick(r, p->conn);
    }
}

/* A request of the connection ends (from pending_free). */
static void conn_done(struct replica *r, struct pending *p)
{
    if (p->conn == CONN_NONE)
        return;
    uint32_t c = p->conn;
    struct conn *cn = &r->conns[c];
    if (p->state == P_HELD)
        conn_unhold(r, p);
    if (p->counted_read) {
        conn_read_unlink(r, p);
        cn->reads_unserved--;
    }
    if (p->counted_unplaced)
        cn->writes_unplaced--;
    p->counted_read = p->counted_unplaced = false;
    p->conn = CONN_NONE;
    RK_ASSERT(cn->n_reqs > 0);
    cn->n_reqs--;
    if (cn->n_reqs == 0 && !cn->queued)
        conn_put(r, c);
    else
        conn_kick(r, c);
}

/* Drops the ids of finished requests from the deadline ring, keeping the order. */
static void deadlines_compact(struct replica *r)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < r->dl_len; i++) {
        uint64_t id = r->deadlines[(r->dl_head + i) % r->dl_cap];
        if (pending_find(r, id) != NULL)
            r->deadlines[(r->dl_head + keep++) % r->dl_cap] = id;
    }
    r->dl_len = keep;
}

static struct pending *pending_alloc(struct replica *r)
{
    if (r->n_free == 0)
        return NULL;
    uint32_t slot = r->free_slots[--r->n_free];
    struct pending *p = &r->slots[slot];
    RK_ASSERT(p->state == P_FREE);
    uint32_t gen = (p->gen + 1) & 0xfffffu;
    uint8_t *key = p->key;
    uint32_t key_cap = p->key_cap;
    memset(p, 0, sizeof(*p));
    p->key = key;
    p->key_cap = key_cap;
    p->state = P_NEW; /* not free: finish() may end it before it reaches another state */
    p->gen = gen;
    p->conn = p->held_prev = p->held_next = p->rd_prev = p->rd_next = CONN_NONE;
    p->deadline = r->now + r->cfg.request_timeout_ticks;
    r->n_pending++;
    if (r->dl_len == r->dl_cap)
        deadlines_compact(r);
    RK_ASSERT(r->dl_len < r->dl_cap);
    r->deadlines[(r->dl_head + r->dl_len) % r->dl_cap] = pending_id(r, slot);
    r->dl_len++;
    return p;
}

static void pending_free(struct replica *r, struct pending *p)
{
    RK_ASSERT(p->state != P_FREE);
    conn_done(r, p);
    if (p->key_cap > SLOT_KEY_KEEP) {
        rk_free(r->alloc, p->key);
        p->key = NULL;
        p->key_cap = 0;
    }
    p->key_len = 0;
    p->state = P_FREE;
    r->free_slots[r->n_free++] = pending_slot(r, p);
    r->n_pending--;
}

/* Replies and frees (R1: the only way a pending request ends). */
static void finish(struct replica *r, struct pending *p, uint8_t status, const char *reason)
{
    struct replica_reply rep = {
        .req_id = p->req_id, .status = status, .reason = reason, .leader = r->leader};
    push_reply(r, &rep);
    pending_free(r, p);
}

static void reply_now(struct replica *r, const struct replica_request *req, uint8_t status,
                      const char *reason)
{
    struct replica_reply rep = {
        .req_id = req->req_id, .status = status, .reason = reason, .leader = r->leader};
    push_reply(r, &rep);
}

static void wait_apply(struct replica *r, struct pending *p)
{
    if (r->n_waiting == 2 * r->n_slots) {
        uint32_t keep = 0;
        for (uint32_t i = 0; i < r->n_waiting; i++) {
            struct pending *w = pending_find(r, r->waiting[i].id);
            if (w != NULL && w->state == P_WAIT_APPLY)
                r->waiting[keep++] = r->waiting[i];
        }
        r->n_waiting = keep;
    }
    RK_ASSERT(r->n_waiting < 2 * r->n_slots);
    p->state = P_WAIT_APPLY;
    r->waiting[r->n_waiting++] =
        (struct waiter){.id = pending_id(r, pending_slot(r, p)), .index = p->index};
}

/* The stamp of an entry this node proposes (kv.h TIME): monotonic, never behind the state
 * machine's clock. */
static uint64_t next_stamp(struct replica *r)
{
    uint64_t t = r->now_ms;
    if (t < r->last_stamp_ms)
        t = r->last_stamp_ms;
    if (t < kv_clock_ms(r->kv))
        t = kv_clock_ms(r->kv);
    r->last_stamp_ms = t;
    return t;
}

/* ------------------------------------------------------------------------------------------ */
/* Applying and serving                                                                       */

/* Little-endian helpers (also used by snapshots, below). */
static void put32(uint8_t *p, uint32_t v);
static uint32_t get32(const uint8_t *p);

/* Checks a keys blob (untrusted: from a driver) and counts its keys. */
static bool keys_valid(const uint8_t *blob, size_t len, uint32_t *count)
{
    if (blob == NULL || len < 4 || len > KV_MAX_VALUE_BYTES)
        return false;
    uint32_t n = get32(blob);
    if (n == 0 || n > REPLICA_MGET_MAX_KEYS)
        return false;
    size_t pos = 4;
    for (uint32_t i = 0; i < n; i++) {
        if (len - pos < 4)
            return false;
        uint32_t kl = get32(blob + pos);
        if (kl > KV_MAX_KEY_BYTES || len - pos - 4 < kl)
            return false;
        pos += 4 + (size_t)kl;
    }
    if (count != NULL)
        *count = n;
    return pos == len;
}

bool replica_op_is_read(uint8_t op)
{
    return op == REPLICA_GET || op == REPLICA_MGET || op == REPLICA_READ;
}

size_t replica_keys_size(const uint8_t *const *keys, const uint32_t *key_lens, uint32_t n)
{
    (void)keys;
    size_t size = 4;
    for (uint32_t i = 0; i < n; i++)
        size += 4 + (size_t)key_lens[i];
    return size;
}

int replica_keys_encode(const uint8_t *const *keys, const uint32_t *key_lens, uint32_t n,
                        uint8_t *buf, size_t cap, size_t *out_len)
{
    if (n == 0 || n > REPLICA_MGET_MAX_KEYS)
        return RK_EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        if (key_lens[i] > KV_MAX_KEY_BYTES || (key_lens[i] > 0 && keys[i] == NULL))
            return RK_EINVAL;
    }
    size_t size = replica_keys_size(keys, key_lens, n);
    if (size > KV_MAX_VALUE_BYTES || size > cap)
        return RK_ETOOBIG;
    put32(buf, n);
    size_t pos = 4;
    for (uint32_t i = 0; i < n; i++) {
        put32(buf + pos, key_lens[i]);
        if (key_lens[i] > 0)
            memcpy(buf + pos + 4, keys[i], key_lens[i]);
        pos += 4 + (size_t)key_lens[i];
    }
    RK_ASSERT(pos == size);
    *out_len = size;
    return RK_OK;
}

void replica_mget_begin(struct replica_mget_iter *it, const uint8_t *blob, size_t len)
{
    *it = (struct replica_mget_iter){.buf = blob, .len = len, .pos = 0};
}

bool replica_mget_next(struct replica_mget_iter *it, bool *found, const uint8_t **val,
                       uint32_t *val_len)
{
    if (it->len - it->pos < 5)
        return false;
    uint32_t vl = get32(it->buf + it->pos + 1);
    if (it->len - it->pos - 5 < vl)
        return false;
    *found = it->buf[it->pos] != 0;
    *val = it->buf + it->pos + 5;
    *val_len = vl;
    it->pos += 5 + (size_t)vl;
    return true;
}

/* MGET: every key of the blob in p->key at the state applied now, one results blob, one
 * reply (issue #13.2: one index, one barrier). */
static void serve_mget(struct replica *r, struct pending *p)
{
    uint32_t n = get32(p->key);
    size_t len = 0, pos = 4;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kl = get32(p->key + pos);
        const uint8_t *val = NULL;
        uint32_t vl = 0;
        int rc = kv_get(r->kv, p->key + pos + 4, kl, &val, &vl);
        pos += 4 + (size_t)kl;
        if (rc != RK_OK && rc != RK_ENOENT) {
            finish(r, p, REPLICA_ERROR, "storage error");
            return;
        }
        if (rc == RK_ENOENT)
            vl = 0;
        if (!rk_grow(r->alloc, (void **)&r->scratch, &r->scratch_cap, len + 5 + vl, 1)) {
            finish(r, p, REPLICA_TRYAGAIN, "out of memory");
            return;
        }
        r->scratch[len] = rc == RK_OK ? 1 : 0;
        put32(r->scratch + len + 1, vl);
        if (vl > 0)
            memcpy(r->scratch + len + 5, val, vl); /* copied now: the next get may move it */
        len += 5 + (size_t)vl;
    }
    if (len > UINT32_MAX) {
        finish(r, p, REPLICA_ERROR, "MGET reply over 4 GiB");
        return;
    }
    struct replica_reply rep = {.req_id = p->req_id, .status = REPLICA_OK, .num = n,
                                .val = r->scratch, .val_len = (uint32_t)len};
    push_reply(r, &rep);
    pending_free(r, p);
}

/* READ: the driver's callback reads the state machine as applied now, then the reply. */
static void serve_barrier(struct replica *r, struct pending *p)
{
    if (r->cfg.on_read != NULL)
        r->cfg.on_read(r->cfg.read_ctx, r, p->req_id);
    struct replica_reply rep = {.req_id = p->req_id, .status = REPLICA_OK,
                                .num = (int64_t)kv_count(r->kv)};
    push_reply(r, &rep);
    pending_free(r, p);
}

static void serve_read(struct replica *r, struct pending *p)
{
    if (p->op == REPLICA_MGET) {
        serve_mget(r, p);
        return;
    }
    if (p->op == REPLICA_READ) {
        serve_barrier(r, p);
        return;
    }
    const uint8_t *val = NULL;
    uint32_t len = 0;
    if (p->cmd) {
        /* A REPLICA_CMD read: its result, whatever it is (nil included), is an OK reply. */
        int rc = kv_read_cmd(r->kv, p->key, p->key_len, &val, &len);
        if (rc != RK_OK) {
            finish(r, p, REPLICA_ERROR, "storage error");
            return;
        }
        struct replica_reply rep = {
            .req_id = p->req_id, .status = REPLICA_OK, .val = val, .val_len = len};
        push_reply(r, &rep);
        pending_free(r, p);
        return;
    }
    int rc = kv_get(r->kv, p->key, p->key_len, &val, &len);
    if (rc == RK_ENOENT) {
        finish(r, p, REPLICA_NOT_FOUND, NULL);
        return;
    }
    if (rc != RK_OK) {
        finish(r, p, REPLICA_ERROR, "storage error");
        return;
    }
    struct replica_reply rep = {
        .req_id = p->req_id, .status = REPLICA_OK, .val = val, .val_len = len};
    push_reply(r, &rep);
    pending_free(r, p);
}

/* Answers a write whose entry (p->index) has been applied with result res at term. */
static void finish_write(struct replica *r, struct pending *p, uint64_t term,
                         const struct kv_result *res)
{
    /* R2: only our own entry's result. */
    bool ours = term == p->term &&
                (p->client_id == 0 || (res->client_id == p->client_id && res->seq == p->seq));
    if (!ours) {
        finish(r, p, REPLICA_TRYAGAIN, "leadership changed before the write committed");
        return;
    }
    switch (res->status) {
    case KV_OK:
    case KV_DUPLICATE: {
        struct replica_reply rep = {.req_id = p->req_id,
                                    .status = REPLICA_OK,
                                    .num = res->num,
                                    .val = res->val,
                                    .val_len = res->val_len};
        if (p->cmd && res->val_len == 0) {
            /* The result of our entry was not kept (out of memory), or a version-1 command
             * answered this seq: applied, but what it answered is unknown here. */
            finish(r, p, REPLICA_TIMEOUT, "result no longer known");
            return;
        }
        push_reply(r, &rep);
        pending_free(r, p);
        return;
    }
    case KV_STALE:
        /* Older than the session's last command: applied before or never, we cannot tell. */
        finish(r, p, REPLICA_TIMEOUT, "stale request: a later one from this client was applied");
        return;
    case KV_NOT_INTEGER:
        finish(r, p, REPLICA_ERROR, "value is not an integer or out of range");
        return;
    case KV_OVERFLOW:
        finish(r, p, REPLICA_ERROR, "increment or decrement would overflow");
        return;
    default:
        finish(r, p, REPLICA_ERROR, "the state machine refused the command");
        return;
    }
}

/* Serves every waiting request the applied index has reached. */
static void serve_waiting(struct replica *r)
{
    uint64_t applied = kv_applied_index(r->kv);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < r->n_waiting; i++) {
        if (r->waiting[i].index > applied) {
            /* Not yet (p->index is fixed while it waits); if it has timed out meanwhile, it
             * goes when its index is applied, or at wait_apply's compaction. */
            r->waiting[keep++] = r->waiting[i];
            continue;
        }
        struct pending *p = pending_find(r, r->waiting[i].id);
        if (p == NULL || p->state != P_WAIT_APPLY)
            continue; /* timed out meanwhile */
        if (p->index > applied) {
            r->waiting[keep++] = r->waiting[i];
            continue;
        }
        if (replica_op_is_read(p->op)) {
            if (p->conn != CONN_NONE && r->conns[p->conn].read_head != pending_slot(r, p)) {
                /* An earlier read of its connection is not answered yet: its turn comes when
                 * that one's does (release_held), never before (R then R). */
                conn_kick(r, p->conn);
                r->waiting[keep++] = r->waiting[i];
                continue;
            }
            serve_read(r, p);
            continue;
        }
        const struct recent_result *rr = &r->recent[p->index % REPLICA_RECENT];
        if (rr->index != p->index) {
            /* Applied too long ago to remember: the outcome is unknown to us. */
            finish(r, p, REPLICA_TIMEOUT, "result no longer known");
            continue;
        }
        finish_write(r, p, rr->term, &rr->res);
    }
    r->n_waiting = keep;
}

/* A CMD's result lives in kv until its next apply: copied into the ring slot, for the write
 * waiting on this index (now, or when a late FORWARD_RESP names it). */
static void keep_result(struct replica *r, struct recent_result *rr)
{
    if (rr->res.val_len == 0)
        return;
    if (rr->cap > (64u << 10) && rr->res.val_len <= (64u << 10)) {
        /* A large result once: the slot does not keep its memory for small ones. */
        rk_free(r->alloc, rr->buf);
        rr->buf = NULL;
        rr->cap = 0;
    }
    if (!rk_grow(r->alloc, (void **)&rr->buf, &rr->cap, rr->res.val_len, 1)) {
        rr->res.val = NULL;
        rr->res.val_len = 0;
        rr->lost = true;
        return;
    }
    memcpy(rr->buf, rr->res.val, rr->res.val_len);
    rr->res.val = rr->buf;
}

static const uint8_t conf_meta_key[] = {KV_KEY_META, 'c', 'o', 'n', 'f'};

int replica_store_conf(struct kv_store *store, struct raft_conf *conf)
{
    const uint8_t *val = NULL;
    uint32_t len = 0;
    int rc = store->ops->get(store, conf_meta_key, sizeof(conf_meta_key), &val, &len);
    if (rc != RK_OK)
        return rc;
    return raft_conf_decode(val, len, conf) == RK_OK ? RK_OK : RK_ECORRUPT;
}

int replica_store_put_conf(struct kv_store *store, uint64_t index, const struct raft_conf *conf)
{
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len = raft_conf_encode(conf, buf);
    return store->ops->put(store, index, conf_meta_key, sizeof(conf_meta_key), buf, (uint32_t)len);
}

static void apply_entries(struct replica *r, const struct raft_entry *ents, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *e = &ents[i];
        struct recent_result *rr = &r->recent[e->index % REPLICA_RECENT];
        uint8_t *buf = rr->buf;
        size_t cap = rr->cap;
        memset(rr, 0, sizeof(*rr));
        rr->buf = buf;
        rr->cap = cap;
        rr->index = e->index;
        rr->term = e->term;
        if (e->type == RAFT_ENTRY_NORMAL) {
            int rc = kv_apply(r->kv, e->index, e->data, e->len, &rr->res);
            if (rc != RK_OK) {
                /* The store failed under a committed entry: we cannot go on applying. */
                r->failed = true;
                rk_errf(&r->fail_msg, rc, "applying entry %llu: %s", (unsigned long long)e->index,
                        rk_strerror(rc));
                return;
            }
            keep_result(r, rr);
        } else if (e->type == RAFT_ENTRY_CONF) {
            /* The configuration is part of the state machine's store, so that a snapshot
             * carries the one as of its index (thesis §5.1) and a restart starts from it. */
            int rc = kv_apply_meta(r->kv, e->index, conf_meta_key, sizeof(conf_meta_key), e->data,
                                   e->len);
            if (rc != RK_OK) {
                r->failed = true;
                rk_errf(&r->fail_msg, rc, "applying configuration %llu: %s",
                        (unsigned long long)e->index, rk_strerror(rc));
                return;
            }
            rr->res.status = KV_OK; /* a membership change waits for this (replica_member) */
        } else {
            kv_apply_noop(r->kv, e->index);
            rr->res.status = KV_BAD_COMMAND; /* no client command here */
        }
        /* The ring holds the last REPLICA_RECENT results: answer the writes waiting on these
         * before the next entries overwrite them (a follower's commit can jump further). */
        if ((i + 1) % REPLICA_RECENT == 0)
            serve_waiting(r);
    }
    serve_waiting(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Snapshots (thesis chapter 5)                                                               */

/* A snapshot on the wire (codec.h SNAP, protocol 3): the store's records (kv's namespaces
 * included: user keys and client sessions), each [key len u32][value len u32][key][value], in
 * chunks of about snapshot_chunk_bytes, in the store's canonical order, with a running CRC. */
#define SNAP_RECORD_HEAD_BYTES 8u
static const uint8_t snap_meta_key[] = {KV_KEY_META, 's', 'n', 'a', 'p'};

uint64_t replica_store_snapshot_index(struct kv_store *store)
{
    const uint8_t *meta = NULL;
    uint32_t meta_len = 0;
    if (store->ops->get(store, snap_meta_key, sizeof(snap_meta_key), &meta, &meta_len) != RK_OK ||
        meta_len != 16)
        return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | meta[i];
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int replica_store_snapshot_point(struct kv_store *store, uint64_t index, uint64_t term)
{
    uint8_t meta[16];
    put64(meta, index);
    put64(meta + 8, term);
    return store->ops->put(store, index, snap_meta_key, sizeof(snap_meta_key), meta, sizeof(meta));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void send_snap(struct replica *r, uint8_t type, const struct codec_snap *f)
{
    size_t size = codec_snap_size(type, f);
    size_t off = arena_reserve(r, size);
    if (off == SIZE_MAX)
        return;
    size_t len = 0;
    int rc = codec_encode_snap(type, f, r->bytes.buf + off, size, &len);
    RK_ASSERT(rc == RK_OK);
    push_frame(r, f->to, off, len);
}

static void snap_out_free(struct replica *r, struct snap_out *so)
{
    kv_view_close(so->view);
    rk_free(r->alloc, so->buf);
    memset(so, 0, sizeof(*so));
}

static void snap_send_chunk(struct replica *r, struct snap_out *so)
{
    struct raft_status st;
    raft_status(r->raft, &st);
    struct codec_snap f = {
        .from = r->id,
        .to = so->to,
        .term = st.term,
        .index = so->index,
        .snap_term = so->term,
        .xfer = so->xfer,
        .seq = so->seq,
        .crc = so->crc,
        .last = so->last,
        .data = so->len > 0 ? so->buf : NULL,
        .len = (uint32_t)so->len,
    };
    send_snap(r, CODEC_TYPE_SNAP, &f);
    so->sent_at = r->now;
}

struct chunk_writer {
    struct replica *r;
    struct snap_out *so;
};

static bool chunk_add(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                      uint32_t val_len)
{
    struct chunk_writer *w = ctx;
    struct snap_out *so = w->so;
    size_t need = SNAP_RECORD_HEAD_BYTES + (size_t)key_len + val_len;
    if (!rk_grow(w->r->alloc, (void **)&so->buf, &so->cap, so->len + need, 1))
        return false;
    put32(so->buf + so->len, key_len);
    put32(so->buf + so->len + 4, val_len);
    memcpy(so->buf + so->len + 8, key, key_len);
    if (val_len > 0)
        memcpy(so->buf + so->len + 8 + key_len, val, val_len);
    so->len += need;
    return true;
}

/* Reads chunk seq (the one after the outstanding one, or the first) from the view into so.
 * RK_OK or the view's failure (its overlay over its bound, a read error, no memory). */
static int snap_fill_chunk(struct replica *r, struct snap_out *so, uint64_t seq)
{
    /* The last chunk was acknowledged: its buffer goes if a big value had grown it. */
    if (so->cap > 2 * (size_t)r->cfg.snapshot_chunk_bytes + (64u << 10)) {
        rk_free(r->alloc, so->buf);
        so->buf = NULL;
        so->cap = 0;
    }
    struct chunk_writer w = {.r = r, .so = so};
    struct rk_errmsg err;
    bool done = false;
    uint32_t crc = seq == 0 ? 0 : so->crc;
    so->len = 0;
    int rc = kv_view_next(so->view, r->cfg.snapshot_chunk_bytes, SNAP_RECORD_HEAD_BYTES, chunk_add,
                          &w, &done, &err);
    if (rc != RK_OK)
        return rc;
    so->seq = seq;
    so->last = done;
    so->crc = rk_crc32c(crc, so->buf, so->len);
    return RK_OK;
}

/* The transfer to `to`; with make, a free slot for it if there is none (NULL if full). */
static struct snap_out *snap_out_find(struct replica *r, uint64_t to, bool make)
{
    struct snap_out *free_slot = NULL;
    for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
        struct snap_out *so = &r->snap_out[i];
        if (so->active && so->to == to)
            return so;
        if (!so->active && free_slot == NULL)
            free_slot = so;
    }
    return make ? free_slot : NULL;
}

static struct snap_out *snap_out_for(struct replica *r, uint64_t to)
{
    return snap_out_find(r, to, true);
}

/* Raft asks for a snapshot for `to`: a view of the state machine as applied now, its first
 * chunk sent. */
static void snap_start(struct replica *r, uint64_t to)
{
    struct snap_out *so = snap_out_for(r, to);
    if (so == NULL)
        return;
    if (so->active)
        snap_out_free(r, so);
    struct kv_view *view = NULL;
    struct rk_errmsg err;
    int rc = kv_view_open(r->cfg.store, r->cfg.snapshot_overlay_bytes, &view, &err);
    if (rc != RK_OK) {
        raft_snapshot_done(r->raft, to, 0, false);
        return;
    }
    /* kv may have applied entries that wrote nothing since the store's last write (the view's
     * index): the content is the same at both. */
    uint64_t index = kv_applied_index(r->kv);
    RK_ASSERT(kv_view_index(view) <= index);
    *so = (struct snap_out){.active = true,
                            .to = to,
                            .index = index,
                            .term = raft_term_at(r->raft, index),
                            .xfer = (r->nonce << 8) ^ ++r->snap_xfers,
                            .view = view,
                            .progress_at = r->now};
    if (snap_fill_chunk(r, so, 0) != RK_OK) {
        snap_out_free(r, so);
        raft_snapshot_done(r->raft, to, 0, false);
        return;
    }
    snap_send_chunk(r, so);
}

/* Ticks: resend a chunk that got no answer, give up on a stalled transfer. */
static void snap_tick(struct replica *r)
{
    for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
        struct snap_out *so = &r->snap_out[i];
        if (!so->active)
            continue;
        if (r->role != RAFT_LEADER) {
            snap_out_free(r, so);
            continue;
        }
        if (r->now - so->progress_at >= r->cfg.snapshot_timeout_ticks) {
            uint64_t to = so->to;
            snap_out_free(r, so);
            raft_snapshot_done(r->raft, to, 0, false);
        } else if (r->now - so->sent_at >= (5u << (so->resends < 4 ? so->resends : 4))) {
            /* No acknowledgment yet: the chunk again, later each time (5, 10, 20, 40, 80
             * ticks), so that resent chunks of a big value do not fill the link they wait on. */
            so->resends++;
            snap_send_chunk(r, so);
        }
    }
}

static void on_snap_ack(struct replica *r, const struct codec_snap *f)
{
    struct snap_out *so = snap_out_find(r, f->from, false);
    if (so == NULL || !so->active || f->index != so->index || f->xfer != so->xfer)
        return; /* late or for another transfer */
    if (f->done) {
        uint64_t to = so->to, index = so->index;
        snap_out_free(r, so);
        r->snapshots_sent++;
        raft_snapshot_done(r->raft, to, index, true);
        return;
    }
    if (f->seq == so->seq + 1 && !so->last) {
        /* The outstanding chunk arrived: the next one is read now, not before. */
        if (snap_fill_chunk(r, so, so->seq + 1) != RK_OK) {
            uint64_t to = so->to;
            snap_out_free(r, so); /* the view failed (its overlay bound): start over later */
            raft_snapshot_done(r->raft, to, 0, false);
            return;
        }
        so->progress_at = r->now;
        so->resends = 0;
        snap_send_chunk(r, so); /* the next chunk */
    }
    if (f->seq == so->seq + 1 && so->last) {
        /* The last chunk arrived and the follower is installing (a staged install switches in
         * on its store's worker): progress, so that the transfer is not given up meanwhile. */
        so->progress_at = r->now; /* (resends keep their backoff) */
    }
    /* An acknowledgment that does not move (of a duplicate, or the outstanding chunk lost):
     * snap_tick resends, with backoff; resending on each such ack would answer every duplicate
     * with another copy of the chunk, a storm when chunks are big values. */
}

struct key_list {
    struct replica *r;
    uint8_t *buf;
    size_t len, cap;
    bool oom;
};

static bool collect_key(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                        uint32_t val_len)
{
    (void)val;
    (void)val_len;
    struct key_list *k = ctx;
    if (!rk_grow(k->r->alloc, (void **)&k->buf, &k->cap, k->len + 4 + key_len, 1)) {
        k->oom = true;
        return false;
    }
    put32(k->buf + k->len, key_len);
    memcpy(k->buf + k->len + 4, key, key_len);
    k->len += 4 + key_len;
    return true;
}

/* Checks a received chunk's records before anything is kept: every record within its bytes.
 * *count: how many. */
static bool snap_chunk_valid(const uint8_t *buf, uint64_t len, uint64_t *count)
{
    uint64_t pos = 0, n = 0;
    while (pos < len) {
        if (len - pos < SNAP_RECORD_HEAD_BYTES)
            return false;
        uint64_t need = SNAP_RECORD_HEAD_BYTES + (uint64_t)get32(buf + pos) + get32(buf + pos + 4);
        if (len - pos < need)
            return false;
        pos += need;
        n++;
    }
    *count = n;
    return true;
}

/* The state machine after the store holds the snapshot (at si->index, durable or on its way):
 * kv rebuilt from the store (sessions come with the snapshot), raft told. On failure the replica
 * stops, as after any storage failure. */
static struct kv_config snap_kv_config(struct replica *r)
{
    /* a new ACL generation: the driver's caches of users (node/cmd_acl.c) see the change */
    return (struct kv_config){.alloc = r->alloc,
                              .store = r->cfg.store,
                              .max_sessions = r->cfg.max_sessions,
                              .acl_generation = kv_acl_generation(r->kv) + 1};
}

/* loader: the state machine fed the snapshot's records as they were staged (kv_load_begin;
 * taken, finished here), or NULL: rebuilt from the store (kv_create: a pass over its keys). */
static int snap_restore(struct replica *r, const struct snap_in *si, struct kv *loader)
{
    struct kv_store *st = r->cfg.store;
    struct kv *kv = loader;
    struct kv_config kc = snap_kv_config(r);
    struct rk_errmsg err;
    int rc = loader != NULL ? kv_load_end(loader, &err) : kv_create(&kc, &kv, &err);
    if (rc != RK_OK) {
        kv_destroy(loader);
        r->failed = true;
        rk_errf(&r->fail_msg, rc, "installing the snapshot at %llu: %s",
                (unsigned long long)si->index, rk_strerror(rc));
        return rc;
    }
    kv_destroy(r->kv);
    r->kv = kv;
    kv_set_read_time_ms(kv, r->now_ms);
    r->synced_applied = si->index;
    if (store_durable(r) < si->index)
        r->restore_wait = si->index; /* deferred writes: see store_gate */
    r->snapshots_installed++;
    struct raft_conf conf;
    bool has_conf = replica_store_conf(st, &conf) == RK_OK;
    rc = raft_restore_conf(r->raft, si->index, si->snap_term, has_conf ? &conf : NULL);
    return rc == RK_ESTALE ? RK_OK : rc;
}

/* Replaces the state machine with the snapshot as one batch of the store at its index: the
 * path of a store without a staged replacement (store.h; the store in memory), whose chunks
 * were collected in memory (up to max_snapshot_bytes). */
static int snap_install(struct replica *r, struct snap_in *si)
{
    struct kv_store *st = r->cfg.store;
    struct key_list keys = {.r = r};
    int rc = st->ops->scan_keys != NULL ? st->ops->scan_keys(st, collect_key, &keys)
                                        : st->ops->scan(st, collect_key, &keys);
    if (rc == RK_OK && keys.oom)
        rc = RK_ENOMEM;
    for (size_t pos = 0; rc == RK_OK && pos < keys.len;) {
        uint32_t kl = get32(keys.buf + pos);
        bool existed = false;
        rc = st->ops->del(st, si->index, keys.buf + pos + 4, kl, &existed);
        pos += 4 + kl;
    }
    rk_free(r->alloc, keys.buf);
    uint64_t count = si->count, pos = 0;
    /* Its records come in scan's order: room for all of them first (store.h reserve; without
     * memory for it, the puts grow the table as they go, slowly). */
    if (rc == RK_OK && st->ops->reserve != NULL)
        (void)st->ops->reserve(st, count);
    for (uint64_t i = 0; rc == RK_OK && i < count; i++) {
        uint32_t kl = get32(si->buf + pos), vl = get32(si->buf + pos + 4);
        rc = st->ops->put(st, si->index, si->buf + pos + 8, kl, si->buf + pos + 8 + kl, vl);
        pos += SNAP_RECORD_HEAD_BYTES + (uint64_t)kl + vl;
    }
    if (rc == RK_OK) {
        /* The snapshot point, in the same batch: if we crash before the log is compacted to
         * it, replica_create finds the store ahead of the log and compacts it then. This put
         * also moves the store's applied index to the snapshot's when the snapshot is empty. */
        uint8_t meta[16];
        put64(meta, si->index);
        put64(meta + 8, si->snap_term);
        rc = st->ops->put(st, si->index, snap_meta_key, sizeof(snap_meta_key), meta,
                          sizeof(meta));
    }
    if (rc == RK_OK)
        rc = st->ops->end_batch(st, si->index);
    if (rc == RK_OK)
        rc = st->ops->sync(st);
    if (rc != RK_OK) {
        /* The store may be half replaced: stop, as after any storage failure. */
        r->failed = true;
        rk_errf(&r->fail_msg, rc, "installing the snapshot at %llu: %s",
                (unsigned long long)si->index, rk_strerror(rc));
        return rc;
    }
    return snap_restore(r, si, NULL);
}

/*
 * STREAMED INSTALL (issue 12 point 4, the follower's half) into a store with a staged
 * replacement (store.h; Bitcask: bitcask.h STAGED REPLACEMENT, core/bitcask/stage.c). The
 * mechanism is Bitcask's merge protocol with the snapshot as the source of the outputs and
 * EVERY file of the store as an input: each chunk's records are staged (snap_stage_chunk) and
 * queued for the store's worker as they come — appended to NNNNNNNNNN.data.tmp outputs with
 * hints, at ids above every live file — so that nothing of the snapshot is kept here; the live
 * store keeps serving and applying meanwhile. After the last chunk, the snapshot point record
 * and the commit (snap_stage_commit): the MERGE manifest naming every older file is the one
 * durable switch, then the renames, the new keydir loaded from the outputs' hints, and the
 * inputs removed — all on the worker. A crash leaves the old store (no manifest: the tmp outputs
 * are removed at open) or the new (recovery rolls forward), never a mix, and no second copy
 * once done. From the commit until the switch is done (snap_in_poll, after bc_io_done), the
 * replica takes no ready (drive) and steps no APPEND: nothing may be applied to the store being
 * replaced, nor may the commit pass the snapshot's index before raft restores it. The state
 * machine to be is fed each record as it is staged (kv_load_record: sessions, counts, deadlines,
 * users), so that the switch costs no pass over the keys here; then raft is told, and the
 * acknowledgment (done) goes: the store holds the snapshot durably by then. A chunk is
 * acknowledged only once the store has written all but two chunks of what was staged
 * (SNAP_STAGE_QUEUE_BYTES): memory stays bounded whatever the disk's pace.
 *
 * Why not simpler: a separate "snapshot directory" swapped by a rename would need a second
 * kind of switch in the store and its recovery; the MERGE manifest already is a durable,
 * idempotent switch whose recovery (roll forward, tmp removal) is tested at every fs call.
 */

static void snap_in_fail(struct replica *r, int rc, const char *what);

/* A staged record into the state machine to be (no pass over the new store's keys later). */
static int snap_load_record(struct replica *r, const uint8_t *key, uint32_t key_len,
                            const uint8_t *val, uint32_t val_len)
{
    struct rk_errmsg err;
    int rc = kv_load_record(r->snap_in.loader, key, key_len, val, val_len, &err);
    if (rc != RK_OK)
        snap_in_fail(r, rc, err.text);
    return rc;
}

/* Stages a chunk's records (checked by snap_chunk_valid) and queues them for the disk. The
 * leader's own snapshot point record is not taken: ours is written at the commit. */
static int snap_stage_chunk(struct replica *r, const uint8_t *buf, uint64_t len)
{
    struct kv_store *st = r->cfg.store;
    int rc = RK_OK;
    for (uint64_t pos = 0; rc == RK_OK && pos < len;) {
        uint32_t kl = get32(buf + pos), vl = get32(buf + pos + 4);
        const uint8_t *key = buf + pos + SNAP_RECORD_HEAD_BYTES;
        bool meta = kl == sizeof(snap_meta_key) && memcmp(key, snap_meta_key, kl) == 0;
        if (!meta)
            rc = st->ops->stage_put(st, key, kl, key + kl, vl);
        if (!meta && rc == RK_OK)
            rc = snap_load_record(r, key, kl, key + kl, vl);
        pos += SNAP_RECORD_HEAD_BYTES + (uint64_t)kl + vl;
    }
    return rc == RK_OK ? st->ops->stage_flush(st) : rc;
}

static void snap_in_fail(struct replica *r, int rc, const char *what)
{
    if (r->failed)
        return; /* the first failure says why */
    r->failed = true;
    rk_errf(&r->fail_msg, rc, "installing the snapshot at %llu: %s: %s",
            (unsigned long long)r->snap_in.index, what, rk_strerror(rc));
}

static void snap_in_poll(struct replica *r);
static void drive(struct replica *r);

/* After the last chunk: the snapshot point record (if we crash before the log is compacted to
 * it, replica_create finds the store ahead of the log and compacts it then), and the switch. */
static void snap_stage_commit(struct replica *r, struct snap_in *si)
{
    struct kv_store *st = r->cfg.store;
    uint8_t meta[16];
    put64(meta, si->index);
    put64(meta + 8, si->snap_term);
    int rc = st->ops->stage_put(st, snap_meta_key, sizeof(snap_meta_key), meta, sizeof(meta));
    if (rc == RK_OK)
        rc = snap_load_record(r, snap_meta_key, sizeof(snap_meta_key), meta, sizeof(meta));
    if (rc != RK_OK) {
        snap_in_fail(r, rc, "staging its point");
        return;
    }
    si->commit_wanted = true;
    snap_in_poll(r);
}

static void snap_in_free(struct replica *r)
{
    struct snap_in *si = &r->snap_in;
    RK_ASSERT(!si->committing);
    struct kv_store *st = r->cfg.store;
    if (si->staged && st->ops->stage_state(st) == KV_STAGE_FILLING)
        st->ops->stage_abort(st); /* its outputs' removal queued */
    kv_destroy(si->loader);
    rk_free(r->alloc, si->buf);
    memset(si, 0, sizeof(*si));
}

/* A staged install's progress: the commit tried again (a merge was in progress), and, once the
 * store switched (bc_io_done of its switch), the install finished and acknowledged. Called after
 * the store's jobs are done (replica_store_progress) and on ticks. */
static void snap_in_poll(struct replica *r)
{
    struct snap_in *si = &r->snap_in;
    if (!si->active || !si->staged || r->failed)
        return;
    struct kv_store *st = r->cfg.store;
    if (si->ack_held && st->ops->stage_queued(st) <= SNAP_STAGE_QUEUE_BYTES) {
        si->ack_held = false;
        struct raft_status rs;
        raft_status(r->raft, &rs);
        if (rs.term == si->term && rs.role == RAFT_FOLLOWER) {
            struct codec_snap ack = {.from = r->id,
                                     .to = si->from,
                                     .term = si->term,
                                     .index = si->index,
                                     .xfer = si->xfer,
                                     .seq = si->next_seq};
            send_snap(r, CODEC_TYPE_SNAP_ACK, &ack);
        }
    }
    if (si->commit_wanted) {
        struct raft_status rs;
        raft_status(r->raft, &rs);
        if (rs.commit >= si->index || kv_applied_index(r->kv) >= si->index) {
            /* The log got there first (a new leader's entries, while the commit waited for a
             * merge): switching in the older snapshot would take back what was applied. */
            snap_in_free(r);
            return;
        }
        int rc = st->ops->stage_commit(st);
        if (rc == RK_EBUSY)
            return; /* a merge is in progress: the next tick tries again */
        if (rc != RK_OK) {
            snap_in_fail(r, rc, "committing");
            return;
        }
        si->commit_wanted = false;
        si->committing = true;
    }
    if (!si->committing || st->ops->stage_state(st) != KV_STAGE_NONE)
        return;
    si->committing = false;
    if (st->ops->applied_index(st) != si->index) { /* the store failed under the switch */
        snap_in_fail(r, RK_EIO, "the store did not switch");
        return;
    }
    struct snap_in done = *si;
    si->loader = NULL; /* snap_restore's */
    snap_in_free(r);
    if (snap_restore(r, &done, done.loader) != RK_OK)
        return;
    struct raft_status rs;
    raft_status(r->raft, &rs);
    if (rs.term == done.term && rs.role == RAFT_FOLLOWER) {
        struct codec_snap ack = {.from = r->id,
                                 .to = done.from,
                                 .term = done.term,
                                 .index = done.index,
                                 .xfer = done.xfer,
                                 .seq = done.next_seq,
                                 .done = true};
        send_snap(r, CODEC_TYPE_SNAP_ACK, &ack); /* the store holds it durably (store.h) */
    }
    if (!r->deferred)
        drive(r);
}

static void on_snap(struct replica *r, const struct codec_snap *f)
{
    struct raft_status st;
    raft_status(r->raft, &st);
    /* Only the leader of our current term installs state here. */
    if (f->term != st.term || st.leader != f->from || st.role != RAFT_FOLLOWER)
        return;
    struct codec_snap ack = {
        .from = r->id, .to = f->from, .term = st.term, .index = f->index, .xfer = f->xfer};
    struct snap_in *si = &r->snap_in;
    if (si->committing) {
        /* The switch is on its way (snap_in_poll acknowledges it): nothing else meanwhile. A
         * chunk of this transfer is answered as received, which keeps the leader waiting. */
        if (si->from == f->from && si->xfer == f->xfer && si->index == f->index) {
            ack.seq = si->next_seq;
            send_snap(r, CODEC_TYPE_SNAP_ACK, &ack);
        }
        return;
    }
    if (si->active && si->index <= st.commit)
        snap_in_free(r); /* the log got there first: a stage of it is of no use */
    if (f->index <= st.commit) {
        ack.seq = f->seq + 1;
        ack.done = true; /* we already hold it */
        if (store_durable(r) < f->index && r->restore_wait >= f->index) {
            r->snap_ack_held = ack; /* not on disk yet (deferred store writes) */
            r->snap_ack_holding = true;
            return;
        }
        send_snap(r, CODEC_TYPE_SNAP_ACK, &ack);
        return;
    }
    bool same = si->active && si->from == f->from && si->term == f->term && si->index == f->index &&
                si->xfer == f->xfer;
    if (!same) {
        if (f->seq != 0)
            return; /* only a transfer's first chunk starts it */
        snap_in_free(r); /* a new transfer (a duplicate of this one's first chunk is not) */
        *si = (struct snap_in){.active = true,
                               .from = f->from,
                               .term = f->term,
                               .index = f->index,
                               .snap_term = f->snap_term,
                               .xfer = f->xfer};
        struct kv_store *kst = r->cfg.store;
        if (kst->ops->stage_begin != NULL) { /* STREAMED INSTALL (above) */
            int rc = kst->ops->stage_begin(kst, f->index);
            if (rc == RK_EBUSY) { /* a merge left files: the store must be reopened first */
                snap_in_free(r);
                return;
            }
            if (rc != RK_OK) {
                snap_in_fail(r, rc, "starting its stage");
                return;
            }
            si->staged = true;
            struct kv_config kc = snap_kv_config(r);
            struct rk_errmsg err;
            rc = kv_load_begin(&kc, f->index, &si->loader, &err);
            if (rc != RK_OK) {
                snap_in_fail(r, rc, "a state machine for it");
                return;
            }
        }
    }
    /* A chunk whose running CRC does not check out was damaged on its way (or belongs to
     * another stream): not taken, and the ack below asks for it again. */
    if (f->seq == si->next_seq && rk_crc32c(si->crc, f->data, f->len) == f->crc) {
        uint64_t n = 0;
        if (!snap_chunk_valid(f->data, f->len, &n) ||
            (!si->staged &&
             (si->len + f->len > r->cfg.max_snapshot_bytes ||
              !rk_grow(r->alloc, (void **)&si->buf, &si->cap, si->len + f->len + 1, 1)))) {
            snap_in_free(r); /* corrupt, too big or no memory: the leader starts over */
            return;
        }
        if (si->staged) {
            int rc = snap_stage_chunk(r, f->data, f->len);
            if (rc != RK_OK) {
                snap_in_fail(r, rc, "staging a chunk");
                return;
            }
        } else if (f->len > 0) {
            memcpy(si->buf + si->len, f->data, f->len);
        }
        si->len += f->len;
        si->count += n;
        si->crc = f->crc;
        si->next_seq++;
        if (!f->last && si->staged &&
            r->cfg.store->ops->stage_queued(r->cfg.store) > SNAP_STAGE_QUEUE_BYTES) {
            si->ack_held = true; /* snap_in_poll sends it once the store caught up */
            return;
        }
        if (f->last && si->staged) {
            snap_stage_commit(r, si); /* acknowledged (done) by snap_in_poll once switched */
            if (r->failed || !si->active)
                return;
        } else if (f->last) {
            int rc = snap_install(r, si);
            snap_in_free(r);
            if (rc != RK_OK)
                return;
            ack.seq = f->seq + 1;
            ack.done = true;
            if (store_durable(r) < ack.index) {
                r->snap_ack_held = ack; /* sent once the store holds it (replica_store_progress) */
                r->snap_ack_holding = true;
                return;
            }
            send_snap(r, CODEC_TYPE_SNAP_ACK, &ack);
            return;
        }
    }
    if (si->ack_held)
        return; /* a duplicate: the held acknowledgment answers it (snap_in_poll) */
    ack.seq = si->next_seq;
    send_snap(r, CODEC_TYPE_SNAP_ACK, &ack);
}

static bool job_push(struct replica *r, struct replica_log_job *job);

/* Compaction: past compact_entries entries in the log, the state machine is synced and the log
 * prefix up to applied - compact_keep is dropped from raft and from the log store. */
/* The compaction point by bytes: the highest index whose later entries (up to last) hold at
 * most keep_bytes of data. O(entries walked), and only when compaction is due. */
static uint64_t compact_index_by_bytes(const struct replica *r, const struct raft_status *st,
                                       uint64_t keep_bytes)
{
    uint64_t kept = 0, i = st->last_index;
    for (; i > st->snapshot_index; i--) {
        const struct raft_entry *e = raft_entry_at(r->raft, i);
        if (kept + e->len > keep_bytes)
            break;
        kept += e->len;
    }
    return i;
}

static void maybe_compact(struct replica *r)
{
    if (r->cfg.compact_entries == 0 && r->cfg.compact_bytes == 0)
        return;
    struct raft_status st;
    raft_status(r->raft, &st);
    uint64_t applied = kv_applied_index(r->kv);
    /* kv.h: compaction goes by the store's applied index, not kv's: a no-op writes nothing to
     * the store, and a restart replays the log from the store's index on. */
    uint64_t durable = store_durable(r);
    bool by_count = r->cfg.compact_entries != 0 &&
                    st.last_index - st.snapshot_index > r->cfg.compact_entries &&
                    durable > st.snapshot_index + r->cfg.compact_keep;
    /* Memory bounded by bytes, not counts: a log of big values is compacted long before it
     * holds compact_entries of them, keeping at most compact_keep_bytes for lagging
     * followers (more than that, and a snapshot is the cheaper way to catch up). */
    bool by_bytes = r->cfg.compact_bytes != 0 && st.log_bytes > r->cfg.compact_bytes;
    if (!by_count && !by_bytes)
        return;
    uint64_t index = durable > r->cfg.compact_keep ? durable - r->cfg.compact_keep : 0;
    if (by_bytes) {
        uint64_t i = compact_index_by_bytes(r, &st, r->cfg.compact_keep_bytes);
        if (i > index)
            index = i;
    }
    if (index > durable)
        index = durable;
    if (index > st.applied)
        index = st.applied;
    if (index > st.persisted_index)
        index = st.persisted_index;
    if (index <= st.snapshot_index)
        return;
    int rc = r->cfg.store->ops->sync(r->cfg.store);
    if (rc == RK_OK) {
        r->synced_at = r->now;
        r->synced_applied = applied;
        uint64_t term = raft_term_at(r->raft, index);
        rc = raft_compact(r->raft, index);
        if (rc == RK_OK && r->cfg.async_log) {
            /* In line behind the writes out: durable with the next job's sync. */
            struct replica_log_job *job = log_job_alloc(r->alloc, 0, 0, 0, 0);
            if (job == NULL) {
                rc = RK_ENOMEM;
            } else {
                job->has_compact = true;
                job->compact_index = index;
                job->compact_term = term;
                if (!job_push(r, job))
                    return;
            }
        } else if (rc == RK_OK) {
            rc = r->cfg.log->ops->compact(r->cfg.log, index, term, &r->fail_msg);
            if (rc == RK_OK)
                rc = r->cfg.log->ops->sync(r->cfg.log, &r->fail_msg);
        }
    }
    if (rc != RK_OK) {
        r->failed = true;
        rk_errwrap(&r->fail_msg, rc, "compacting the log at %llu", (unsigned long long)index);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The ready loop                                                                             */

static void fail_reads_waiting_for_index(struct replica *r, const char *why)
{
    for (uint32_t s = 0; s < r->n_slots; s++) {
        struct pending *p = &r->slots[s];
        if (p->state == P_READ_INDEX)
            finish(r, p, REPLICA_TRYAGAIN, why);
    }
}

/* Writes forwarded to a node that is no longer the leader, not yet acknowledged by it: their
 * FORWARD_RESP may never come (the old leader crashed or stepped down), and whether the entry
 * was appended and will commit is unknown. Answering now (TIMEOUT: the outcome is unknown)
 * spares the client the request timeout; an acknowledged forward waits for its index instead,
 * which tells it exactly. */
static void fail_forwards_to_old_leader(struct replica *r)
{
    for (uint32_t s = 0; s < r->n_slots; s++) {
        struct pending *p = &r->slots[s];
        if (p->state == P_FORWARD_WAIT && p->leader != r->leader)
            finish(r, p, REPLICA_TIMEOUT,
                   "leadership changed: the write may or may not have been applied");
    }
}

static bool persist(struct replica *r, const struct raft_ready *rd)
{
    struct log_store *log = r->cfg.log;
    int rc = RK_OK;
    bool need_sync = false;
    if (rd->has_restore) {
        /* A snapshot was installed: the log now starts after it. */
        rc = log->ops->compact(log, rd->restore_index, rd->restore_term, &r->fail_msg);
        need_sync = true;
    }
    if (rc == RK_OK && rd->truncate_from != 0) {
        rc = log->ops->truncate(log, rd->truncate_from, &r->fail_msg);
        need_sync = true;
    }
    if (rc == RK_OK && rd->n_entries > 0) {
        rc = log->ops->append(log, rd->entries, rd->n_entries, &r->fail_msg);
        need_sync = true;
    }
    if (rc == RK_OK && rd->has_hard_state) {
        rc = log->ops->set_hard_state(log, &rd->hard_state, &r->fail_msg);
        if (rd->hard_state.term != r->hs_term || rd->hard_state.vote != r->hs_vote)
            need_sync = true;
        r->hs_term = rd->hard_state.term;
        r->hs_vote = rd->hard_state.vote;
    }
    /* One sync for the whole batch (group commit). */
    if (rc == RK_OK && need_sync)
        rc = log->ops->sync(log, &r->fail_msg);
    if (rc != RK_OK) {
        rk_errwrap(&r->fail_msg, rc, "log store");
        r->failed = true;
        return false;
    }
    return true;
}

/* Asynchronous persistence: hands the job to the outputs (the driver owns it from there). */
static bool job_push(struct replica *r, struct replica_log_job *job)
{
    if (!rk_grow(r->alloc, (void **)&r->jobs, &r->cap_jobs, r->n_jobs + 1, sizeof(*r->jobs))) {
        replica_log_job_free(job);
        r->failed = true;
        rk_errf(&r->fail_msg, RK_ENOMEM, "log store: out of memory for a write");
        return false;
    }
    job->log = r->cfg.log;
    job->seq = r->job_seq_next++;
    r->jobs[r->n_jobs++] = job;
    r->jobs_out++;
    return true;
}

/* The async counterpart of persist(): the batch's log writes, copied into a job with the
 * messages that depend on them. With nothing to write and no job out, those messages
 * promise nothing new and leave at once; otherwise they wait for every earlier job too (an
 * acknowledgment may vouch for entries a job still out is writing). */
static bool persist_async(struct replica *r, const struct raft_ready *rd)
{
    bool writes = rd->has_restore || rd->truncate_from != 0 || rd->n_entries > 0 ||
                  rd->has_hard_state;
    if (!writes && (rd->n_msgs_after_persist == 0 || r->jobs_out == 0)) {
        for (size_t i = 0; i < rd->n_msgs_after_persist; i++)
            send_raft_msg(r, &rd->msgs_after_persist[i]);
        return true;
    }
    /* The entries' data is borrowed from raft (see dropped_take): a job copies only the
     * entries array and the frames it holds. */
    size_t data_bytes = 0, frame_bytes = 0;
    for (size_t i = 0; i < rd->n_msgs_after_persist; i++)
        frame_bytes += codec_msg_size(&rd->msgs_after_persist[i]);
    struct replica_log_job *job = log_job_alloc(r->alloc, rd->n_entries, data_bytes,
                                                rd->n_msgs_after_persist, frame_bytes);
    if (job == NULL) {
        r->failed = true;
        rk_errf(&r->fail_msg, RK_ENOMEM, "log store: out of memory for a write");
        return false;
    }
    job->has_compact = rd->has_restore;
    job->compact_index = rd->restore_index;
    job->compact_term = rd->restore_term;
    if (rd->has_restore && r->restore_wait == rd->restore_index)
        job->wait_store = r->restore_wait;
    job->truncate_from = rd->truncate_from;
    job->need_sync = rd->has_restore || rd->truncate_from != 0 || rd->n_entries > 0;
    size_t off = 0;
    for (size_t i = 0; i < rd->n_entries; i++)
        job->entries[i] = rd->entries[i];
    job->n_entries = rd->n_entries;
    if (rd->n_entries > 0) {
        job->last_index = rd->entries[rd->n_entries - 1].index;
        job->last_term = rd->entries[rd->n_entries - 1].term;
    }
    if (rd->has_hard_state) {
        job->has_hard_state = true;
        job->hard_state = rd->hard_state;
        if (rd->hard_state.term != r->hs_term || rd->hard_state.vote != r->hs_vote)
            job->need_sync = true;
        r->hs_term = rd->hard_state.term;
        r->hs_vote = rd->hard_state.vote;
    }
    for (size_t i = 0; i < rd->n_msgs_after_persist; i++) {
        const struct raft_msg *m = &rd->msgs_after_persist[i];
        size_t size = codec_msg_size(m), len = 0;
        int rc = codec_encode_msg(m, job->bytes + off, size, &len);
        RK_ASSERT(rc == RK_OK);
        job->frames[i] = (struct log_job_frame){.to = m->to, .off = off, .len = len};
        off += len;
    }
    job->n_frames = rd->n_msgs_after_persist;
    RK_ASSERT(off <= data_bytes + frame_bytes);
    return job_push(r, job);
}

static void release_held(struct replica *r);

/* The oldest hold of a frame in pieces still out with the driver (UINT64_MAX: none). */
static uint64_t oldest_hold(const struct replica *r)
{
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < r->n_holds; i++)
        if (r->holds[i] < min)
            min = r->holds[i];
    return min;
}

/* Frees the buffers of dropped entries that no job and no frame still out can read. */
static void dropped_release(struct replica *r)
{
    uint64_t hold = oldest_hold(r);
    while (r->head_dropped < r->n_dropped && r->dropped[r->head_dropped].seq < r->job_seq_done &&
           r->dropped[r->head_dropped].hold <= hold)
        rk_free(r->alloc, r->dropped[r->head_dropped++].buf);
    if (r->head_dropped > 0 && r->head_dropped * 2 >= r->n_dropped) {
        memmove(r->dropped, r->dropped + r->head_dropped,
                (r->n_dropped - r->head_dropped) * sizeof(*r->dropped));
        r->n_dropped -= r->head_dropped;
        r->head_dropped = 0;
    }
}

/* Takes the buffers raft dropped since the last call (raft_advance_async): jobs made so far
 * may still be writing them, so each waits for the newest of those jobs to come back. */
static void dropped_take(struct replica *r)
{
    if (raft_take_garbage(r->raft, &r->taken, &r->n_taken, &r->cap_taken) != RK_OK &&
        r->n_taken == 0)
        return; /* out of memory: raft keeps them for a later call */
    if (r->n_taken == 0)
        return;
    if (r->jobs_out == 0 && r->n_holds == 0) { /* no job or frame out can read them */
        for (size_t i = 0; i < r->n_taken; i++)
            rk_free(r->alloc, r->taken[i]);
        r->n_taken = 0;
        return;
    }
    if (!rk_grow(r->alloc, (void **)&r->dropped, &r->cap_dropped, r->n_dropped + r->n_taken,
                 sizeof(*r->dropped)))
        return; /* kept in taken for a later call */
    for (size_t i = 0; i < r->n_taken; i++)
        r->dropped[r->n_dropped++] = (struct dropped_buf){
            .buf = r->taken[i], .seq = r->job_seq_next - 1, .hold = r->hold_next};
    r->n_taken = 0;
    dropped_release(r);
}

static void drive(struct replica *r)
{
    for (uint32_t guard = 0;; guard++) {
        release_held(r);
        if (r->failed || !raft_has_ready(r->raft))
            break;
        /* A staged snapshot switching in: nothing is applied to the store it replaces (the
         * readies wait; snap_in_poll drives again once it is done). */
        if (r->snap_in.committing)
            return;
        RK_ASSERT(guard < 1000000);
        /* Bounded: with this many writes out, the storage is far behind; wait for it. */
        if (r->cfg.async_log && r->jobs_out >= r->cfg.max_log_jobs)
            return;
        struct raft_ready rd;
        raft_ready(r->raft, &rd);
        for (size_t i = 0; i < rd.n_msgs; i++)
            send_raft_msg(r, &rd.msgs[i]);
        uint64_t needed[RAFT_MAX_MEMBERS];
        size_t n_needed =
            rd.n_snapshot_needed < RAFT_MAX_MEMBERS ? rd.n_snapshot_needed : RAFT_MAX_MEMBERS;
        if (n_needed > 0) /* snapshot_needed is NULL when empty: memcpy(NULL) is undefined */
            memcpy(needed, rd.snapshot_needed, n_needed * sizeof(*needed));
        if (r->cfg.async_log) {
            if (!persist_async(r, &rd))
                return;
        } else {
            if (!persist(r, &rd))
                return; /* never advance past a batch that is not durable */
            for (size_t i = 0; i < rd.n_msgs_after_persist; i++)
                send_raft_msg(r, &rd.msgs_after_persist[i]);
        }
        struct raft_status st;
        raft_status(r->raft, &st);
        if (rd.role != r->role || rd.leader != r->leader || st.term != r->term) {
            r->role = rd.role;
            r->leader = rd.leader;
            r->term = st.term;
            /* Reads in flight to (or at) a leader that is gone will never be answered by raft;
             * a read never executes, so telling the client to retry is always safe. */
            fail_reads_waiting_for_index(r, "leadership changed");
            fail_forwards_to_old_leader(r);
        }
        for (size_t i = 0; i < rd.n_read_states; i++) {
            struct pending *p = pending_find(r, rd.read_states[i].ctx);
            if (p == NULL || p->state != P_READ_INDEX)
                continue;
            /* Its read index, and its connection's earlier writes (W then R). */
            p->index = rd.read_states[i].index > p->min_index ? rd.read_states[i].index
                                                              : p->min_index;
            wait_apply(r, p);
        }
        apply_entries(r, rd.committed, rd.n_committed);
        if (r->failed)
            return;
        if (r->cfg.async_log) {
            raft_advance_async(r->raft, &rd);
            dropped_take(r);
        } else {
            raft_advance(r->raft, &rd);
        }
        /* After advance: starting a snapshot calls into raft (when it fails at once). */
        for (size_t i = 0; i < n_needed; i++)
            snap_start(r, needed[i]);
    }
}

void replica_log_job_done(struct replica *r, struct replica_log_job *job)
{
    replica_begin(r);
    RK_ASSERT(job->written);
    RK_ASSERT(job->seq == r->job_seq_done); /* back in the order they went out */
    RK_ASSERT(r->jobs_out > 0);
    r->job_seq_done++;
    r->jobs_out--;
    dropped_release(r);
    if (r->failed) {
        replica_log_job_free(job);
        return;
    }
    if (job->rc != RK_OK) {
        r->failed = true;
        r->fail_msg = job->err;
        rk_errwrap(&r->fail_msg, job->rc, "log store");
        replica_log_job_free(job);
        return;
    }
    for (size_t i = 0; i < job->n_frames; i++) {
        const struct log_job_frame *f = &job->frames[i];
        size_t off = arena_reserve(r, f->len);
        if (off == SIZE_MAX)
            continue; /* out of memory: lost, as on a bad network */
        memcpy(r->bytes.buf + off, job->bytes + f->off, f->len);
        push_frame(r, f->to, off, f->len);
    }
    if (job->last_index != 0)
        raft_persisted(r->raft, job->last_index, job->last_term);
    if (job->has_hard_state)
        raft_hard_state_persisted(r->raft, job->hard_state.term);
    replica_log_job_free(job);
    if (!r->deferred)
        drive(r);
}

void replica_frame_release(struct replica *r, uint64_t hold)
{
    for (size_t i = 0; i < r->n_holds; i++) {
        if (r->holds[i] != hold)
            continue;
        r->holds[i] = r->holds[--r->n_holds];
        dropped_release(r);
        return;
    }
    RK_ASSERT(!"replica_frame_release: not a hold out with the driver");
}

uint32_t replica_log_jobs_out(const struct replica *r)
{
    return r->jobs_out;
}

/* ------------------------------------------------------------------------------------------ */
/* Inputs                                                                                     */

static void expire(struct replica *r)
{
    while (r->dl_len > 0) {
        uint64_t id = r->deadlines[r->dl_head];
        struct pending *p = pending_find(r, id);
        if (p != NULL && (int32_t)(p->deadline - r->now) > 0)
            break;
        r->dl_head = (r->dl_head + 1) % r->dl_cap;
        r->dl_len--;
        if (p == NULL)
            continue;
        if (p->state == P_HELD) {
            /* Never handed to raft: certainly not executed. */
            finish(r, p, REPLICA_TRYAGAIN,
                   "timed out behind an earlier request of the same connection");
            continue;
        }
        bool write = !replica_op_is_read(p->op);
        /* A write may have been proposed: its outcome is unknown. A read never executes. */
        finish(r, p, write ? REPLICA_TIMEOUT : REPLICA_TRYAGAIN,
               write ? "timed out: the write may or may not have been applied"
                     : "timed out waiting for the read index");
    }
}

/* The state machine's store, synced now and then: a crash loses at most what the log can
 * replay (S5 of kv/store.h: a failed sync stops the replica). */
static void sync_store(struct replica *r)
{
    uint64_t applied = kv_applied_index(r->kv);
    if (r->cfg.store_sync_ticks == 0 || applied == r->synced_applied ||
        r->now - r->synced_at < r->cfg.store_sync_ticks)
        return;
    int rc = r->cfg.store->ops->sync(r->cfg.store);
    if (rc != RK_OK) {
        r->failed = true;
        rk_errf(&r->fail_msg, rc, "syncing the state machine: %s", rk_strerror(rc));
        return;
    }
    r->synced_at = r->now;
    r->synced_applied = applied;
}

/* The leader removes expired keys through the log (kv.h TIME): a bounded walk of the expiry
 * table per tick, at most KV_PURGE_MAX keys per PURGE entry, one PURGE in flight at a time (a
 * lost one is found again on a later walk). */
#define REPLICA_SWEEP_SLOTS 1024u

static void expiry_sweep(struct replica *r)
{
    if (r->role != RAFT_LEADER || r->now_ms == 0)
        return;
    if (r->purge_index != 0 && r->purge_term == r->term && kv_applied_index(r->kv) < r->purge_index)
        return;
    r->purge_index = 0;
    const uint8_t *cmd = NULL;
    size_t len = 0;
    uint32_t n = 0;
    uint64_t stamp = next_stamp(r);
    if (kv_expired_command(r->kv, stamp, KV_PURGE_MAX, REPLICA_SWEEP_SLOTS, &cmd, &len, &n) !=
            RK_OK ||
        n == 0)
        return;
    if (!rk_grow(r->alloc, (void **)&r->scratch, &r->scratch_cap, len, 1))
        return;
    memcpy(r->scratch, cmd, len);
    kv_cmd2_set_time(r->scratch, len, stamp);
    uint64_t index = 0, leader = 0;
    if (raft_propose(r->raft, r->scratch, (uint32_t)len, &index, &leader) == RK_OK) {
        r->purge_index = index;
        r->purge_term = r->term;
    }
}

/* Issue #15: once the node holds durably the entries it had promised (commit and persisted
 * index at the promise, which raft resolved if it was unknown), the log store's promise is
 * dropped, after the writes already out (a job, in order), so that a later restart takes part
 * in elections at once. Never before they are durable: a crash would forget the promise while
 * the entries are still missing. */
static void maybe_clear_promise(struct replica *r)
{
    if (r->promise_on_disk == 0)
        return;
    struct raft_status st;
    raft_status(r->raft, &st);
    if (RAFT_PROMISE_IS_UNKNOWN(st.promised_index) || st.commit < st.promised_index ||
        st.persisted_index < st.promised_index)
        return;
    struct log_store *log = r->cfg.log;
    if (log->ops->set_promise == NULL) {
        r->promise_on_disk = 0;
        return;
    }
    int rc = RK_OK;
    if (r->cfg.async_log) {
        struct replica_log_job *job = log_job_alloc(r->alloc, 0, 0, 0, 0);
        if (job == NULL) {
            rc = rk_errf(&r->fail_msg, RK_ENOMEM, "out of memory");
        } else {
            job->clear_promise = true;
            if (!job_push(r, job))
                return;
        }
    } else {
        rc = log->ops->set_promise(log, 0, &r->fail_msg);
    }
    if (rc != RK_OK) {
        r->failed = true;
        rk_errwrap(&r->fail_msg, rc, "clearing the log's promise");
        return;
    }
    if (r->cfg.raft.logger.fn != NULL) {
        char text[160];
        snprintf(text, sizeof(text),
                 "holds again every entry it had promised (up to %llu): takes part in elections "
                 "again",
                 (unsigned long long)st.promised_index);
        r->cfg.raft.logger.fn(r->cfg.raft.logger.ctx, 4, text);
    }
    r->promise_on_disk = 0;
}

static void auto_promote(struct replica *r);

void replica_tick(struct replica *r)
{
    replica_begin(r);
    if (r->failed)
        return;
    r->now++;
    raft_tick(r->raft);
    snap_in_poll(r); /* a staged install's commit waiting for a merge to end */
    drive(r);
    expire(r);
    if (!r->failed && !r->snap_in.committing)
        sync_store(r);
    if (!r->failed && !r->snap_in.committing)
        maybe_compact(r);
    if (!r->failed) {
        snap_tick(r);
        auto_promote(r);
        expiry_sweep(r);
        maybe_clear_promise(r);
        drive(r);
    }
}

/* Proposes data. A big command encoded in the scratch buffer is handed to raft as it is (the
 * scratch buffer is allocated again for the next): one copy fewer of a value of megabytes. */
static int propose(struct replica *r, const uint8_t *data, size_t len, uint64_t *index,
                   uint64_t *leader)
{
    if (data == r->scratch && len >= PROPOSE_TAKE_BYTES && len <= UINT32_MAX) {
        int rc = raft_propose_take(r->raft, r->scratch, (uint32_t)len, index, leader);
        if (rc == RK_OK) {
            r->scratch = NULL;
            r->scratch_cap = 0;
        }
        return rc;
    }
    return raft_propose(r->raft, data, (uint32_t)len, index, leader);
}

static void on_forward(struct replica *r, const struct codec_forward *f)
{
    struct codec_forward resp = {.from = r->id, .to = f->from, .id = f->id};
    uint64_t index = 0, leader = 0;
    const uint8_t *data = f->data;
    if (kv_cmd_is_v2(f->data, f->len)) {
        /* The leader's stamp replaces the follower's (kv.h TIME). Out of memory: busy. */
        if (!rk_grow(r->alloc, (void **)&r->scratch, &r->scratch_cap, f->len, 1)) {
            resp.status = CODEC_FORWARD_BUSY;
            send_forward(r, CODEC_TYPE_FORWARD_RESP, &resp);
            return;
        }
        memcpy(r->scratch, f->data, f->len);
        kv_cmd2_set_time(r->scratch, f->len, next_stamp(r));
        data = r->scratch;
    }
    int rc = propose(r, data, f->len, &index, &leader);
    switch (rc) {
    case RK_OK: {
        struct raft_status st;
        raft_status(r->raft, &st);
        resp.status = CODEC_FORWARD_OK;
        resp.index = index;
        resp.term = st.term;
        break;
    }
    case RK_ENOTLEADER:
        resp.status = CODEC_FORWARD_NOT_LEADER;
        resp.leader = leader;
        break;
    case RK_ETOOBIG:
        resp.status = CODEC_FORWARD_TOO_BIG;
        break;
    default:
        resp.status = CODEC_FORWARD_BUSY;
        break;
    }
    send_forward(r, CODEC_TYPE_FORWARD_RESP, &resp);
}

static void on_forward_resp(struct replica *r, const struct codec_forward *f)
{
    struct pending *p = pending_find(r, f->id);
    if (p == NULL || p->state != P_FORWARD_WAIT || p->leader != f->from)
        return; /* late, duplicated or forged */
    switch (f->status) {
    case CODEC_FORWARD_OK:
        p->index = f->index;
        p->term = f->term;
        conn_placed(r, p);
        wait_apply(r, p);
        serve_waiting(r); /* it may have been applied already */
        return;
    case CODEC_FORWARD_NOT_LEADER:
        finish(r, p, REPLICA_TRYAGAIN, "the node forwarded to is no longer the leader");
        return;
    case CODEC_FORWARD_TOO_BIG:
        finish(r, p, REPLICA_ERROR, "command over the leader's entry size limit");
        return;
    default:
        finish(r, p, REPLICA_TRYAGAIN, "leader busy (leadership transfer or full queue)");
        return;
    }
}

static int recv_frame(struct replica *r, uint64_t from, const uint8_t *frame, size_t len,
                      bool pieces, struct rk_errmsg *err);

int replica_recv(struct replica *r, uint64_t from, const uint8_t *frame, size_t len,
                 struct rk_errmsg *err)
{
    return recv_frame(r, from, frame, len, false, err);
}

int replica_recv_pieces(struct replica *r, uint64_t from, const uint8_t *frame, size_t len,
                        struct rk_errmsg *err)
{
    return recv_frame(r, from, frame, len, true, err);
}

static int recv_frame(struct replica *r, uint64_t from, const uint8_t *frame, size_t len,
                      bool pieces, struct rk_errmsg *err)
{
    replica_begin(r);
    if (r->failed)
        return rk_errf(err, RK_EINVAL, "replica stopped: %s", r->fail_msg.text);
    struct codec_frame f;
    int rc = pieces ? codec_decode_pieces(frame, len, r->alloc, &f, err)
                    : codec_decode(frame, len, r->alloc, &f, err);
    if (rc != RK_OK)
        return rc;
    if (f.type == CODEC_TYPE_HANDSHAKE) {
        rc = rk_errf(err, RK_EINVAL, "handshake from %llu in the middle of a stream",
                     (unsigned long long)from);
    } else if (f.type == CODEC_TYPE_FRAG) {
        rc = rk_errf(err, RK_EINVAL, "a frame piece from %llu: the transport reassembles them",
                     (unsigned long long)from);
    } else if (f.type == CODEC_TYPE_FORWARD || f.type == CODEC_TYPE_FORWARD_RESP) {
        if (f.fwd.from != from || f.fwd.to != r->id)
            rc = rk_errf(err, RK_EINVAL, "forward frame from %llu to %llu on the link from %llu",
                         (unsigned long long)f.fwd.from, (unsigned long long)f.fwd.to,
                         (unsigned long long)from);
        else if (f.type == CODEC_TYPE_FORWARD)
            on_forward(r, &f.fwd);
        else
            on_forward_resp(r, &f.fwd);
    } else if (f.type == CODEC_TYPE_SNAP || f.type == CODEC_TYPE_SNAP_ACK) {
        if (f.snap.from != from || f.snap.to != r->id)
            rc = rk_errf(err, RK_EINVAL, "snapshot frame from %llu to %llu on the link from %llu",
                         (unsigned long long)f.snap.from, (unsigned long long)f.snap.to,
                         (unsigned long long)from);
        else if (f.type == CODEC_TYPE_SNAP)
            on_snap(r, &f.snap);
        else
            on_snap_ack(r, &f.snap);
    } else if (f.msg.from != from) {
        rc = rk_errf(err, RK_EINVAL, "%s claims to be from %llu on the link from %llu",
                     raft_msg_type_name(f.msg.type), (unsigned long long)f.msg.from,
                     (unsigned long long)from);
    } else if (r->snap_in.committing && f.msg.type == RAFT_MSG_APPEND) {
        /* A staged snapshot switching in (STREAMED INSTALL): the log must not commit past it
         * before raft restores it. Dropped, as a lost message is; the leader sends it again. */
    } else {
        rc = raft_step(r->raft, &f.msg);
        if (rc == RK_EINVAL)
            rk_errf(err, rc, "%s from %llu refused by raft", raft_msg_type_name(f.msg.type),
                    (unsigned long long)from);
        else
            rc = RK_OK; /* RK_ENOMEM: treated as a lost message */
    }
    codec_frame_free(r->alloc, &f);
    if (!r->deferred)
        drive(r);
    return rc;
}

/* The kv op of a write request. */
static uint8_t kv_op_of(uint8_t op)
{
    switch (op) {
    case REPLICA_PUT:
        return KV_OP_PUT;
    case REPLICA_PUT_IF:
        return KV_OP_PUT_IF;
    case REPLICA_INCRBY:
        return KV_OP_INCRBY;
    case REPLICA_MSET:
        return KV_OP_MSET;
    default:
        break;
    }
    RK_ASSERT(op == REPLICA_DEL);
    return KV_OP_DEL;
}

/* Whether a request of op carries a value. */
static bool op_has_value(uint8_t op)
{
    return op == REPLICA_PUT || op == REPLICA_PUT_IF || op == REPLICA_MSET;
}

static bool encode_command(struct replica *r, const struct replica_request *req, size_t *len)
{
    if (req->op == REPLICA_CMD && req->val_take != NULL && req->val_len > 0) {
        /* The driver's buffer becomes the scratch: no copy (propose may hand it to raft). */
        RK_ASSERT(req->val_take == req->val);
        rk_free(r->alloc, r->scratch);
        r->scratch = req->val_take;
        r->scratch_cap = req->val_len;
        r->took_val = true;
        kv_cmd2_set_session(r->scratch, req->val_len, req->client_id, req->seq);
        *len = req->val_len;
        return true;
    }
    if (req->op == REPLICA_CMD) {
        /* The driver's encoding, with this request's session; the stamp comes at propose. */
        if (!rk_grow(r->alloc, (void **)&r->scratch, &r->scratch_cap, req->val_len, 1))
            return false;
        memcpy(r->scratch, req->val, req->val_len);
        kv_cmd2_set_session(r->scratch, req->val_len, req->client_id, req->seq);
        *len = req->val_len;
        return true;
    }
    struct kv_cmd c = {
        .op = kv_op_of(req->op),
        .client_id = req->client_id,
        .seq = req->seq,
        .key = req->key,
        .key_len = req->key_len,
        .val = op_has_value(req->op) ? req->val : NULL,
        .val_len = op_has_value(req->op) ? req->val_len : 0,
        .cond = req->op == REPLICA_PUT_IF ? req->cond : 0,
        .delta = req->op == REPLICA_INCRBY ? req->delta : 0,
    };
    size_t size = kv_cmd_size(&c);
    if (!rk_grow(r->alloc, (void **)&r->scratch, &r->scratch_cap, size, 1))
        return false;
    return kv_cmd_encode(&c, r->scratch, r->scratch_cap, len) == RK_OK;
}

/* Copies len bytes into the slot's buffer (a read's key, a held write's command). */
static bool pending_keep(struct replica *r, struct pending *p, const uint8_t *data, size_t len)
{
    size_t cap = p->key_cap;
    if (!rk_grow(r->alloc, (void **)&p->key, &cap, len == 0 ? 1 : len, 1))
        return false;
    p->key_cap = (uint32_t)cap;
    if (len > 0)
        memcpy(p->key, data, len);
    p->key_len = (uint32_t)len;
    return true;
}

/* Asks raft for a read index (p->key holds the key). */
static void start_read(struct replica *r, struct pending *p)
{
    if (p->conn != CONN_NONE) {
        struct conn *cn = &r->conns[p->conn];
        RK_ASSERT(cn->writes_unplaced == 0);
        p->min_index = cn->write_index; /* W then R: the read sees the connection's writes */
        p->counted_read = true;
        cn->reads_unserved++;
        uint32_t slot = pending_slot(r, p);
        p->rd_prev = cn->read_tail;
        if (cn->read_tail == CONN_NONE)
            cn->read_head = slot;
        else
            r->slots[cn->read_tail].rd_next = slot;
        cn->read_tail = slot;
    }
    p->state = P_READ_INDEX;
    int rc = raft_read_index(r->raft, pending_id(r, pending_slot(r, p)));
    if (rc == RK_ENOLEADER)
        finish(r, p, REPLICA_TRYAGAIN, "no leader known (election in progress?)");
    else if (rc != RK_OK)
        finish(r, p, REPLICA_TRYAGAIN, "read queue full");
}

/* Proposes the encoded command data[0 .. len) (or forwards it to the leader). */
static void start_write(struct replica *r, struct pending *p, uint8_t *data, size_t len)
{
    if (p->conn != CONN_NONE) {
        RK_ASSERT(r->conns[p->conn].reads_unserved == 0); /* R then W */
        p->counted_unplaced = true;
        r->conns[p->conn].writes_unplaced++;
    }
    uint64_t index = 0, leader = 0;
    if (p->cmd)
        kv_cmd2_set_time(data, len, next_stamp(r)); /* stamped when proposed; a follower's is
                                                       replaced by its leader's */
    int rc = propose(r, data, len, &index, &leader);
    if (rc == RK_OK) {
        struct raft_status st;
        raft_status(r->raft, &st);
        p->index = index;
        p->term = st.term;
        conn_placed(r, p);
        wait_apply(r, p);
        return;
    }
    if (rc == RK_ENOTLEADER && leader != RAFT_NONE) {
        p->state = P_FORWARD_WAIT;
        p->leader = leader;
        struct codec_forward f = {.from = r->id,
                                  .to = leader,
                                  .id = pending_id(r, pending_slot(r, p)),
                                  .data = data,
                                  .len = (uint32_t)len};
        send_forward(r, CODEC_TYPE_FORWARD, &f);
        return;
    }
    if (rc == RK_ENOTLEADER)
        finish(r, p, REPLICA_TRYAGAIN, "no leader known (election in progress?)");
    else if (rc == RK_EBUSY)
        finish(r, p, REPLICA_TRYAGAIN, "leadership transfer in progress");
    else if (rc == RK_ETOOBIG)
        finish(r, p, REPLICA_ERROR, "command over the entry size limit");
    else
        finish(r, p, REPLICA_TRYAGAIN, "out of memory");
}

/* Whether p must wait behind earlier requests of its connection (program order). */
static bool conn_must_hold(const struct replica *r, const struct pending *p)
{
    if (p->conn == CONN_NONE)
        return false;
    const struct conn *cn = &r->conns[p->conn];
    if (cn->held_head != CONN_NONE)
        return true; /* FIFO: never overtake a held request */
    return replica_op_is_read(p->op) ? cn->writes_unplaced > 0 : cn->reads_unserved > 0;
}

static void hold(struct replica *r, struct pending *p)
{
    struct conn *cn = &r->conns[p->conn];
    uint32_t slot = pending_slot(r, p);
    p->state = P_HELD;
    p->held_prev = cn->held_tail;
    p->held_next = CONN_NONE;
    if (cn->held_tail == CONN_NONE)
        cn->held_head = slot;
    else
        r->slots[cn->held_tail].held_next = slot;
    cn->held_tail = slot;
}

/* Starts the held requests whose turn has come, connection by connection (deferred to here
 * from conn_kick so that nothing re-enters raft or the waiting list while it is walked). */
static void release_held(struct replica *r)
{
    for (uint32_t guard = 0; r->release_len > 0 && !r->failed; guard++) {
        RK_ASSERT(guard < 4 * r->n_slots + 4);
        uint32_t c = r->release[r->release_head];
        r->release_head = (r->release_head + 1) % r->n_slots;
        r->release_len--;
        struct conn *cn = &r->conns[c];
        RK_ASSERT(cn->queued); /* stays set while we start its requests: no conn_put */
        for (;;) {
            if (conn_read_ready(r, cn)) {
                serve_read(r, &r->slots[cn->read_head]);
                continue;
            }
            if (!conn_head_ready(r, cn))
                break;
            struct pending *p = &r->slots[cn->held_head];
            conn_unhold(r, p);
            p->state = P_NEW;
            if (replica_op_is_read(p->op))
                start_read(r, p);
            else
                start_write(r, p, p->key, p->key_len);
        }
        cn->queued = false;
        if (cn->n_reqs == 0)
            conn_put(r, c);
    }
}

static void submit_read(struct replica *r, const struct replica_request *req, struct pending *p)
{
    /* GET: its key; MGET: its keys blob; a CMD read: its whole command (kv_read_cmd serves
     * it); READ: nothing. */
    bool blob = req->op == REPLICA_MGET || p->cmd;
    if (!pending_keep(r, p, blob ? req->val : req->key, blob ? req->val_len : req->key_len)) {
        finish(r, p, REPLICA_TRYAGAIN, "out of memory");
        return;
    }
    if (conn_must_hold(r, p)) {
        hold(r, p);
        return;
    }
    start_read(r, p);
}

static void submit_write(struct replica *r, const struct replica_request *req, struct pending *p)
{
    size_t len = 0;
    if (!encode_command(r, req, &len)) {
        finish(r, p, REPLICA_TRYAGAIN, "out of memory");
        return;
    }
    if (conn_must_hold(r, p)) {
        if (!pending_keep(r, p, r->scratch, len)) {
            finish(r, p, REPLICA_TRYAGAIN, "out of memory");
            return;
        }
        hold(r, p);
        return;
    }
    start_write(r, p, r->scratch, len);
}

/* Validates req and hands it to raft (or forwards it); the caller runs the ready loop. */
static void submit_one(struct replica *r, const struct replica_request *req)
{
    if (r->failed) {
        reply_now(r, req, REPLICA_TRYAGAIN, "replica stopped after a storage failure");
        return;
    }
    struct raft_conf conf;
    raft_conf_current(r->raft, &conf, NULL);
    if (!raft_conf_is_voter(&conf, r->id) && !raft_conf_is_learner(&conf, r->id)) {
        /* Removed, or not added yet: no leader will tell it what commits (issue #17). */
        reply_now(r, req, REPLICA_TRYAGAIN, "this node is not a member of the cluster");
        return;
    }
    if (req->op < REPLICA_GET || req->op > REPLICA_READ) {
        reply_now(r, req, REPLICA_ERROR, "unknown operation");
        return;
    }
    if (req->op == REPLICA_CMD &&
        (req->key_len != 0 || req->val_len > KV_CMD_MAX_BYTES || (req->val == NULL) ||
         (!req->encoded &&
          kv_cmd2_decode(req->val, req->val_len, &(struct kv_cmd2_view){0}, NULL) != RK_OK))) {
        reply_now(r, req, REPLICA_ERROR, "malformed kv command");
        return;
    }
    RK_ASSERT_SLOW(req->op != REPLICA_CMD || !req->encoded ||
                   kv_cmd2_decode(req->val, req->val_len, &(struct kv_cmd2_view){0}, NULL) ==
                       RK_OK);
    if (req->op == REPLICA_PUT_IF && req->cond != KV_COND_NX && req->cond != KV_COND_XX) {
        reply_now(r, req, REPLICA_ERROR, "a conditional put's condition is NX or XX");
        return;
    }
    if (req->key_len > KV_MAX_KEY_BYTES || (req->key_len > 0 && req->key == NULL)) {
        reply_now(r, req, REPLICA_ERROR, "key over the 64 KiB limit");
        return;
    }
    bool cmd_read = req->op == REPLICA_CMD && kv_cmd2_is_read(req->val, req->val_len);
    if (req->client_id != 0 && req->seq == 0 && !replica_op_is_read(req->op) && !cmd_read) {
        reply_now(r, req, REPLICA_ERROR, "a session's sequence numbers start at 1");
        return;
    }
    if (op_has_value(req->op) &&
        (req->val_len > KV_MAX_VALUE_BYTES || (req->val_len > 0 && req->val == NULL))) {
        reply_now(r, req, REPLICA_ERROR, "value over the 64 MiB limit");
        return;
    }
    uint32_t n_pairs = 0;
    if (req->op == REPLICA_MSET &&
        (req->key_len != 0 || kv_pairs_check(req->val, req->val_len, &n_pairs, NULL) != RK_OK)) {
        reply_now(r, req, REPLICA_ERROR, "an MSET carries no key and a valid pairs blob");
        return;
    }
    if (req->op == REPLICA_MGET &&
        (req->key_len != 0 || !keys_valid(req->val, req->val_len, NULL))) {
        reply_now(r, req, REPLICA_ERROR, "an MGET carries no key and a valid keys blob");
        return;
    }
    if (req->op == REPLICA_READ && (req->key_len != 0 || req->val_len != 0)) {
        reply_now(r, req, REPLICA_ERROR, "a read barrier carries no key and no value");
        return;
    }
    struct pending *p = pending_alloc(r);
    if (p == NULL) {
        reply_now(r, req, REPLICA_TRYAGAIN, "too many requests in flight");
        return;
    }
    p->req_id = req->req_id;
    p->op = req->op;
    p->cmd = req->op == REPLICA_CMD;
    p->client_id = req->client_id;
    p->seq = req->seq;
    if (p->cmd && kv_cmd2_is_read(req->val, req->val_len))
        p->op = REPLICA_GET; /* served through ReadIndex, never through the log */
    if (req->client_id != 0) {
        p->conn = conn_get(r, req->client_id);
        r->conns[p->conn].n_reqs++;
    }
    if (replica_op_is_read(p->op))
        submit_read(r, req, p);
    else
        submit_write(r, req, p);
}

void replica_submit(struct replica *r, const struct replica_request *req)
{
    replica_submit_batch(r, req, 1);
}

void replica_set_deferred(struct replica *r, bool deferred)
{
    r->deferred = deferred;
}

void replica_flush(struct replica *r)
{
    replica_begin(r);
    if (!r->failed)
        drive(r);
}

void replica_submit_batch(struct replica *r, const struct replica_request *reqs, size_t n)
{
    replica_begin(r);
    for (size_t i = 0; i < n; i++) {
        r->took_val = false;
        submit_one(r, &reqs[i]);
        if (reqs[i].val_take != NULL && !r->took_val)
            rk_free(r->alloc, reqs[i].val_take); /* answered without it: still ours to free */
    }
    /* One ready loop for all of them: the writes proposed here share one log sync. */
    if (!r->deferred)
        drive(r);
}

int replica_member_change(struct replica *r, uint8_t op, uint64_t id, uint64_t *index,
                          uint64_t *leader)
{
    struct raft_member_addr a = {.id = id};
    return replica_member_change_addr(r, op, &a, index, leader);
}

int replica_member_change_addr(struct replica *r, uint8_t op, const struct raft_member_addr *a,
                               uint64_t *index, uint64_t *leader)
{
    replica_begin(r);
    uint64_t idx = 0, known = 0, id = a->id;
    int rc = RK_EINVAL;
    if (r->failed)
        rc = RK_EINVAL;
    else if (op == REPLICA_MEMBER_ADD_LEARNER)
        rc = raft_add_learner_addr(r->raft, a, &idx, &known);
    else if (op == REPLICA_MEMBER_SET_ADDR)
        rc = raft_set_member_addr(r->raft, a, &idx, &known);
    else if (op == REPLICA_MEMBER_PROMOTE)
        rc = raft_promote(r->raft, id, &idx, &known);
    else if (op == REPLICA_MEMBER_REMOVE)
        rc = raft_remove_member(r->raft, id, &idx, &known);
    if (index != NULL)
        *index = idx;
    if (leader != NULL)
        *leader = known;
    drive(r);
    return rc;
}

void replica_conf(const struct replica *r, struct raft_conf *conf, uint64_t *index)
{
    raft_conf_current(r->raft, conf, index);
}

/* The leader promotes a learner that has kept up (config.auto_promote_ticks). */
static void auto_promote(struct replica *r)
{
    if (r->cfg.auto_promote_ticks == 0)
        return;
    uint64_t ids[RAFT_MAX_LEARNERS] = {0};
    uint32_t ticks[RAFT_MAX_LEARNERS] = {0};
    if (r->role == RAFT_LEADER) {
        struct raft_status st;
        raft_status(r->raft, &st);
        uint32_t n = 0;
        for (uint32_t i = st.n_voters; i < st.n_voters + st.n_learners; i++) {
            struct raft_progress_status ps;
            if (n == RAFT_MAX_LEARNERS || !raft_progress(r->raft, i, &ps) || !ps.learner)
                continue;
            uint32_t before = 0;
            for (uint32_t k = 0; k < RAFT_MAX_LEARNERS; k++) {
                if (r->catchup_id[k] == ps.id)
                    before = r->catchup_ticks[k];
            }
            ids[n] = ps.id;
            ticks[n] = ps.match + r->cfg.auto_promote_lag >= st.last_index ? before + 1 : 0;
            if (ticks[n] >= r->cfg.auto_promote_ticks &&
                raft_promote(r->raft, ps.id, NULL, NULL) == RK_OK)
                ticks[n] = 0;
            n++;
        }
    }
    memcpy(r->catchup_id, ids, sizeof(ids));
    memcpy(r->catchup_ticks, ticks, sizeof(ticks));
}

int replica_transfer_leader(struct replica *r, uint64_t target)
{
    replica_begin(r);
    if (r->failed)
        return RK_EINVAL;
    int rc = raft_transfer_leader(r->raft, target);
    drive(r);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

int replica_create(const struct replica_config *c, struct replica **out, struct rk_errmsg *err)
{
    if (c->log == NULL || c->store == NULL || c->max_pending == 0 || c->max_pending > (1u << 20) ||
        c->request_timeout_ticks == 0 || c->request_timeout_ticks > (1u << 30))
        return rk_errf(err, RK_EINVAL,
                       "replica: log, store, max_pending and "
                       "request_timeout_ticks are required");
    const struct rk_alloc *a = c->alloc != NULL ? c->alloc : rk_alloc_libc();
    struct replica *r = rk_malloc(a, sizeof(*r));
    if (r == NULL)
        return rk_errf(err, RK_ENOMEM, "replica: allocating");
    memset(r, 0, sizeof(*r));
    r->cfg = *c;
    r->cfg.frame_refs = c->frame_refs && c->async_log; /* raft frees entry data at once else */
    r->hold_next = 1;                                  /* 0: no hold */
    if (r->cfg.max_log_jobs == 0)
        r->cfg.max_log_jobs = 1024;
    r->alloc = a;
    r->id = c->raft.id;
    struct rk_prng prng;
    rk_prng_seed(&prng, c->raft.seed ^ 0x5eed5eed5eed5eedULL);
    r->nonce = (uint32_t)(rk_prng_next(&prng) & 0xffffffu);
    int rc = RK_ENOMEM;
    r->n_slots = c->max_pending;
    r->slots = rk_malloc(a, (size_t)r->n_slots * sizeof(*r->slots));
    /* Zeroed at once: replica_destroy frees each slot's key, also when a later table fails. */
    if (r->slots != NULL)
        memset(r->slots, 0, (size_t)r->n_slots * sizeof(*r->slots));
    r->free_slots = rk_malloc(a, (size_t)r->n_slots * sizeof(*r->free_slots));
    r->dl_cap = 2 * r->n_slots;
    r->deadlines = rk_malloc(a, (size_t)r->dl_cap * sizeof(*r->deadlines));
    r->waiting = rk_malloc(a, (size_t)r->dl_cap * sizeof(*r->waiting));
    r->recent = rk_malloc(a, REPLICA_RECENT * sizeof(*r->recent));
    /* Zeroed at once: replica_destroy frees each slot's result buffer. */
    if (r->recent != NULL)
        memset(r->recent, 0, REPLICA_RECENT * sizeof(*r->recent));
    uint32_t index_size = 2;
    while (index_size < 2 * r->n_slots)
        index_size *= 2;
    r->conn_index_mask = index_size - 1;
    r->conns = rk_malloc(a, (size_t)r->n_slots * sizeof(*r->conns));
    r->conn_free = rk_malloc(a, (size_t)r->n_slots * sizeof(*r->conn_free));
    r->conn_index = rk_malloc(a, (size_t)index_size * sizeof(*r->conn_index));
    r->release = rk_malloc(a, (size_t)r->n_slots * sizeof(*r->release));
    if (r->slots == NULL || r->free_slots == NULL || r->deadlines == NULL || r->waiting == NULL ||
        r->recent == NULL || r->conns == NULL || r->conn_free == NULL || r->conn_index == NULL ||
        r->release == NULL) {
        rk_errf(err, rc, "replica: allocating %u request slots", r->n_slots);
        goto err_destroy;
    }
    for (uint32_t i = 0; i < r->n_slots; i++)
        r->free_slots[i] = r->n_slots - 1 - i;
    r->n_free = r->n_slots;
    memset(r->conns, 0, (size_t)r->n_slots * sizeof(*r->conns));
    memset(r->conn_index, 0, (size_t)index_size * sizeof(*r->conn_index));
    for (uint32_t i = 0; i < r->n_slots; i++)
        r->conn_free[i] = r->n_slots - 1 - i;
    r->n_conn_free = r->n_slots;

    /* Every write of the state machine goes through a views wrapper (kv/view.h), so that a
     * snapshot streams from a pinned view: the driver's, or one of our own. */
    if (!kv_views_is_wrapper(c->store)) {
        r->own_views = kv_views_wrap(a, c->store);
        if (r->own_views == NULL) {
            rc = rk_errf(err, RK_ENOMEM,
                         "replica: the store cannot back views (no scan_after), or no memory");
            goto err_destroy;
        }
        r->cfg.store = r->own_views;
    }
    struct kv_config kc = {.alloc = a, .store = r->cfg.store, .max_sessions = c->max_sessions};
    rc = kv_create(&kc, &r->kv, err);
    if (rc != RK_OK) {
        rk_errwrap(err, rc, "replica: creating the state machine");
        goto err_destroy;
    }
    struct raft_config rc_cfg = c->raft;
    const struct raft_entry *ents = NULL;
    size_t n_ents = 0;
    rc = c->log->ops->load(c->log, &rc_cfg.hard_state, &rc_cfg.snapshot_index,
                           &rc_cfg.snapshot_term, &ents, &n_ents, err);
    if (rc != RK_OK) {
        rk_errwrap(err, rc, "replica: loading the log");
        goto err_destroy;
    }
    /* A snapshot installed into the store whose log compaction did not reach the disk before a
     * crash: finish it now, so that the log starts where the state machine is. */
    const uint8_t *meta = NULL;
    uint32_t meta_len = 0;
    if (c->store->ops->get(c->store, snap_meta_key, sizeof(snap_meta_key), &meta, &meta_len) ==
            RK_OK &&
        meta_len == 16) {
        uint64_t index = get64(meta), term = get64(meta + 8);
        uint64_t last = rc_cfg.snapshot_index + n_ents;
        bool has = index > rc_cfg.snapshot_index && index <= last &&
                   ents[index - rc_cfg.snapshot_index - 1].term == term;
        if (index > rc_cfg.snapshot_index && !has) {
            rc = c->log->ops->compact(c->log, index, term, err);
            if (rc == RK_OK && index <= last)
                rc = c->log->ops->truncate(c->log, index + 1, err);
            if (rc == RK_OK)
                rc = c->log->ops->sync(c->log, err);
            if (rc == RK_OK)
                rc = c->log->ops->load(c->log, &rc_cfg.hard_state, &rc_cfg.snapshot_index,
                                       &rc_cfg.snapshot_term, &ents, &n_ents, err);
            if (rc != RK_OK) {
                rk_errwrap(err, rc, "replica: finishing the installation of snapshot %llu",
                           (unsigned long long)index);
                goto err_destroy;
            }
        }
    }
    /* The configuration the state machine applied last stands before the log's own entries
     * (every configuration entry after the log's snapshot point is in the log and overrides
     * it); without one, the configuration the driver gives (the bootstrap one). */
    struct raft_conf conf;
    rc = replica_store_conf(c->store, &conf);
    if (rc == RK_OK) {
        rc_cfg.n_voters = conf.n_voters;
        rc_cfg.n_learners = conf.n_learners;
        memcpy(rc_cfg.voters, conf.voters, sizeof(conf.voters));
        memcpy(rc_cfg.learners, conf.learners, sizeof(conf.learners));
        rc_cfg.n_addrs = conf.n_addrs;
        memcpy(rc_cfg.addrs, conf.addrs, sizeof(conf.addrs));
        rc_cfg.allow_non_member = true; /* a learner, or a removed node */
    } else if (rc != RK_ENOENT) {
        rk_errf(err, rc, "replica: the configuration record of the store does not decode");
        goto err_destroy;
    }
    r->hs_term = rc_cfg.hard_state.term;
    r->hs_vote = rc_cfg.hard_state.vote;
    rc_cfg.entries = ents;
    rc_cfg.n_entries = n_ents;
    rc_cfg.applied = kv_applied_index(r->kv);
    r->synced_applied = rc_cfg.applied;
    /* Issue #15: a repaired log carries the promise of what this node may have acknowledged
     * and lost (replica_storage_open, core/log/INTEGRITY.md); raft keeps the node out of
     * elections until it holds those entries again (maybe_clear_promise then drops it). */
    uint64_t promised = c->log->ops->promised != NULL ? c->log->ops->promised(c->log) : 0;
    r->promise_on_disk = promised;
    if (promised > rc_cfg.promised_index)
        rc_cfg.promised_index = promised;
    rc_cfg.alloc = a;
    rc = raft_create(&rc_cfg, &r->raft, err);
    if (rc != RK_OK) {
        rk_errwrap(err, rc, "replica %llu", (unsigned long long)c->raft.id);
        goto err_destroy;
    }
    r->role = RAFT_FOLLOWER;
    struct raft_status st;
    raft_status(r->raft, &st);
    r->term = st.term;
    *out = r;
    return RK_OK;
err_destroy:
    replica_destroy(r);
    return rc;
}

void replica_destroy(struct replica *r)
{
    if (r == NULL)
        return;
    const struct rk_alloc *a = r->alloc;
    if (r->slots != NULL) {
        for (uint32_t i = 0; i < r->n_slots; i++)
            rk_free(a, r->slots[i].key);
    }
    raft_destroy(r->raft);
    kv_destroy(r->kv);
    rk_free(a, r->slots);
    rk_free(a, r->free_slots);
    rk_free(a, r->deadlines);
    rk_free(a, r->waiting);
    if (r->recent != NULL) {
        for (uint32_t i = 0; i < REPLICA_RECENT; i++)
            rk_free(a, r->recent[i].buf);
    }
    rk_free(a, r->recent);
    rk_free(a, r->conns);
    rk_free(a, r->conn_free);
    rk_free(a, r->conn_index);
    rk_free(a, r->release);
    rk_free(a, r->bytes.buf);
    rk_free(a, r->frames);
    rk_free(a, r->replies);
    rk_free(a, r->out_frames);
    rk_free(a, r->out_replies);
    rk_free(a, r->segs);
    rk_free(a, r->out_segs);
    rk_free(a, r->pieces);
    rk_free(a, r->holds);
    rk_free(a, r->scratch);
    for (size_t i = r->head_dropped; i < r->n_dropped; i++)
        rk_free(a, r->dropped[i].buf);
    rk_free(a, r->dropped);
    for (size_t i = 0; i < r->n_taken; i++)
        rk_free(a, r->taken[i]);
    rk_free(a, r->taken);
    for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
        kv_view_close(r->snap_out[i].view);
        rk_free(a, r->snap_out[i].buf);
    }
    rk_free(a, r->snap_in.buf);
    kv_destroy(r->snap_in.loader); /* a staged install cut short: its files go at the next open */
    if (r->own_views != NULL)
        (void)kv_views_unwrap(r->own_views); /* the store is the driver's */
    for (size_t i = r->output_taken ? r->n_jobs_given : 0; i < r->n_jobs; i++)
        replica_log_job_free(r->jobs[i]); /* made, never handed out */
    rk_free(a, r->jobs);
    rk_free(a, r);
}

bool replica_failed(const struct replica *r, struct rk_errmsg *why)
{
    if (r->failed && why != NULL)
        *why = r->fail_msg;
    return r->failed;
}

void replica_info(const struct replica *r, struct replica_info *st)
{
    memset(st, 0, sizeof(*st));
    raft_status(r->raft, &st->raft);
    st->keys = kv_count(r->kv);
    st->pending = r->n_pending;
    st->snapshots_sent = r->snapshots_sent;
    st->snapshots_installed = r->snapshots_installed;
    struct raft_counters rc;
    raft_counters(r->raft, &rc);
    st->read_rounds = rc.read_rounds;
}

const struct raft *replica_raft(const struct replica *r)
{
    return r->raft;
}

const struct kv *replica_kv(const struct replica *r)
{
    return r->kv;
}

int replica_scan_keys(struct replica *r,
                      bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx)
{
    return kv_scan_keys(r->kv, fn, ctx);
}

int replica_scan_db(struct replica *r, uint8_t db,
                    bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx)
{
    return kv_scan_db(r->kv, db, fn, ctx);
}

int replica_scan_db_range(struct replica *r, uint8_t db, uint64_t cursor, uint64_t budget,
                          bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len), void *ctx,
                          uint64_t *next)
{
    return kv_scan_db_range(r->kv, db, cursor, budget, fn, ctx, next);
}

void replica_set_time_ms(struct replica *r, uint64_t now_ms)
{
    r->now_ms = now_ms;
    kv_set_read_time_ms(r->kv, now_ms);
}

int replica_read_get(struct replica *r, const uint8_t *key, uint32_t key_len,
                     const uint8_t **val, uint32_t *val_len)
{
    return kv_get(r->kv, key, key_len, val, val_len);
}
