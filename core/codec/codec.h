/*
 * codec.h — the wire format of peer messages: every Raft message and the connection handshake.
 *
 * Frame layout (all integers little-endian, fixed width; no varints, so that sizes are known
 * before encoding and every field sits at a computable offset):
 *
 *   offset 0   len     u32   bytes of [type][payload]; a frame is CODEC_FRAME_HEADER_SIZE + len
 *   offset 4   crc32c  u32   CRC-32C of [type][payload]
 *   offset 8   type    u8    an enum raft_msg_type (1 .. RAFT_MSG_TYPE_COUNT - 1) or
 *                            CODEC_TYPE_HANDSHAKE
 *   offset 9   payload       the fields of the type, in this order:
 *
 *   every raft message    from u64, to u64, term u64, then
 *     PRE_VOTE, VOTE      log_index u64, log_term u64, transfer u8
 *     PRE_VOTE_RESP,
 *     VOTE_RESP           reject u8
 *     APPEND              log_index u64, log_term u64, commit u64, n_entries u32, then per
 *                         entry: term u64, index u64, type u8, len u32, data[len]
 *     APPEND_RESP         reject u8, index u64, conflict_term u64, conflict_index u64
 *     HEARTBEAT           commit u64, ctx u64
 *     HEARTBEAT_RESP      ctx u64
 *     TIMEOUT_NOW         (nothing more)
 *     READ_INDEX          ctx u64
 *     READ_INDEX_RESP     reject u8, ctx u64, index u64
 *   HANDSHAKE             magic u32 (CODEC_MAGIC), version u16, cluster_id u64, node_id u64,
 *                         session_bound u32
 *   FORWARD               from u64, to u64, id u64, len u32, data[len]: a client write a
 *                         follower hands to the leader (core/replica)
 *   FORWARD_RESP          from u64, to u64, id u64, status u8, index u64, term u64, leader u64:
 *                         where the leader proposed it, or why it did not
 *   SNAP                  from u64, to u64, term u64, index u64, snap_term u64, xfer u32,
 *                         seq u64, last u8, crc u32, len u32, data[len]: chunk number seq of
 *                         transfer xfer (the sender's number for it: a transfer started over
 *                         is told from a duplicate of its first chunk) of a state machine
 *                         snapshot streamed from a pinned view (protocol 3; the size
 *                         is not known up front). data is whole records, each [key len u32]
 *                         [value len u32][key][value], in the store's canonical order; crc is
 *                         the running CRC-32C of the data of chunks 0..seq (each chained on
 *                         the last: rk_crc32c(crc of seq - 1, data, len)), so a chunk from
 *                         another transfer or out of order does not check out; last: no chunk
 *                         follows
 *   SNAP_ACK              from u64, to u64, term u64, index u64, xfer u32, seq u64 (chunks
 *                         received in order: the next one wanted), done u8: flow control and
 *                         completion
 *   FRAG                  total u32, offset u32, data[len - 9]: a piece of a bigger frame
 *                         (protocol 2). A sender splits a frame of more than CODEC_FRAG_MAX
 *                         bytes into pieces of at most CODEC_FRAG_MAX, sent in order (offset 0,
 *                         then each piece right after the last) with other whole frames allowed
 *                         between them, so that a heartbeat or a vote never waits behind 64 MiB
 *                         of one APPEND (head-of-line blocking); one fragmented frame at a time
 *                         per connection. The receiver checks each piece's CRC, collects the
 *                         pieces into one buffer of exactly total bytes (codec_reasm) and hands
 *                         on the whole frame once the last piece is in.
 *
 * A decoded frame satisfies (anything else is RK_EMALFORMED, or RK_ECORRUPT for a CRC
 * mismatch; never an assert, never a read out of bounds):
 *   F1  len >= 1, the buffer holds exactly one frame, and the payload has no trailing bytes.
 *   F2  the CRC matches; the type is known; booleans are 0 or 1.
 *   F3  APPEND: entry types are RAFT_ENTRY_NORMAL or RAFT_ENTRY_NOOP; entry i has index
 *       log_index + 1 + i; every length fits in the bytes that remain.
 *   F4  memory allocated by a decode is at most twice the frame length (the entries array,
 *       whose count is bounded by the bytes left before anything is allocated).
 *
 * The encoder asserts F2/F3 of its input (a message that would not decode is a programmer
 * error) and that it wrote exactly codec_msg_size() bytes.
 */
#ifndef RK_CODEC_H
#define RK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/err.h"
#include "raft/raft.h"

#define CODEC_FRAME_HEADER_SIZE 8 /* len u32 + crc32c u32, before the type byte */
#define CODEC_TYPE_HANDSHAKE    0x80
#define CODEC_TYPE_FORWARD      0x81
#define CODEC_TYPE_FORWARD_RESP 0x82
#define CODEC_TYPE_SNAP         0x83
#define CODEC_TYPE_SNAP_ACK     0x84
#define CODEC_TYPE_FRAG         0x85
/* "RKV1" as it appears on the wire: the bytes 'R' 'K' 'V' '1' read as a little-endian u32. */
#define CODEC_MAGIC            0x31564B52u
/* 2: FRAG frames (a node of protocol 1 cannot read them: the handshake refuses it).
 * 3: SNAP streamed in record chunks with seq, last and a running crc (was: byte offset and a
 *    total known up front).
 * 4: the handshake carries the sender's session bound (kv's max_sessions), which must be the
 *    same on every member. */
#define CODEC_PROTOCOL_VERSION 4
/* The most data bytes one FRAG carries; a frame above it is sent in FRAG pieces. */
#define CODEC_FRAG_MAX (256u << 10)
/* A FRAG's bytes before its data: the frame header, the type, total u32, offset u32. */
#define CODEC_FRAG_HEADER_SIZE (CODEC_FRAME_HEADER_SIZE + 1 + 4 + 4)
/* The largest frame (header included) a reader accepts by default: one entry of raft's default
 * max_entry_bytes (64 MiB + 64 KiB) plus headroom for the APPEND and entry headers. */
#define CODEC_MAX_FRAME_DEFAULT ((64u << 20) + (1u << 20))
/* Encoded size of a whole handshake frame. */
#define CODEC_HANDSHAKE_FRAME_SIZE (CODEC_FRAME_HEADER_SIZE + 1 + 4 + 2 + 8 + 8 + 4)

/* Sent first on every peer connection, in both directions: the receiver drops the connection
 * when cluster_id differs from its own, so that nodes of two clusters never exchange votes. */
struct codec_handshake {
    uint16_t version; /* CODEC_PROTOCOL_VERSION; a decoder refuses any other */
    uint64_t cluster_id;
    uint64_t node_id;
    /* The sessions the sender's state machine keeps at most (kv's max_sessions): every replica
     * evicts by it, so a receiver refuses a peer whose bound differs from its own (0: the
     * sender does not say, as a tool that only probes). */
    uint32_t session_bound;
};

/* FORWARD_RESP status values: wire values. */
enum codec_forward_status {
    CODEC_FORWARD_OK = 0,         /* proposed at (index, term) */
    CODEC_FORWARD_NOT_LEADER = 1, /* not executed; leader is the receiver's best guess or 0 */
    CODEC_FORWARD_BUSY = 2,       /* not executed: leadership transfer or a full queue */
    CODEC_FORWARD_TOO_BIG = 3,    /* not executed: over the leader's entry limit */
    CODEC_FORWARD_STATUS_COUNT
};

/* FORWARD and FORWARD_RESP. data (FORWARD only) is borrowed like APPEND entry data. */
struct codec_forward {
    uint64_t from;
    uint64_t to;
    uint64_t id; /* chosen by the follower to match the response */
    const uint8_t *data;
    uint32_t len;
    uint8_t status; /* enum codec_forward_status */
    uint64_t index;
    uint64_t term;
    uint64_t leader;
};

/* SNAP and SNAP_ACK (thesis ch. 5, InstallSnapshot in chunks). data is borrowed. */
struct codec_snap {
    uint64_t from;
    uint64_t to;
    uint64_t term;      /* the leader's term */
    uint64_t index;     /* the snapshot's last included index */
    uint64_t snap_term; /* ... and its term (SNAP only) */
    uint32_t xfer;      /* the transfer (the sender numbers them) */
    uint64_t seq;       /* SNAP: the chunk's number (0..); SNAP_ACK: chunks received in order */
    uint32_t crc;       /* SNAP: running CRC-32C of the data of chunks 0..seq */
    bool last;          /* SNAP: no chunk follows */
    const uint8_t *data;
    uint32_t len;
    bool done; /* SNAP_ACK: installed */
};

/* FRAG: one piece of a frame of total bytes (header included), at offset. data is borrowed. */
struct codec_frag {
    uint32_t total;
    uint32_t offset;
    const uint8_t *data;
    uint32_t len;
};

/* One decoded frame. type == CODEC_TYPE_HANDSHAKE: hs is set; CODEC_TYPE_FORWARD(_RESP): fwd is
 * set; CODEC_TYPE_FRAG: frag is set; otherwise msg is set (msg.type == type), with the fields its
 * type does not carry zero. The members a type does not use are zero. */
struct codec_frame {
    uint8_t type;
    struct raft_msg msg;
    struct codec_handshake hs;
    struct codec_forward fwd;
    struct codec_snap snap;
    struct codec_frag frag;
};

/* The exact encoded size of m, header included (SIZE_MAX if it does not fit a size_t). */
size_t codec_msg_size(const struct raft_msg *m);

/* Encodes m (borrowed) into buf[0..cap). On RK_OK *out_len is the frame length
 * (== codec_msg_size(m)). RK_ETOOBIG when cap is too small or the frame would not fit the
 * u32 length field; buf is then unspecified. Keeping frames under the peer's max_frame is the
 * sender's job (raft's max_append_bytes). */
int codec_encode_msg(const struct raft_msg *m, uint8_t *buf, size_t cap, size_t *out_len);

/* One piece of an APPEND encoded in pieces (codec_encode_append_pieces): off/len into the
 * caller's buffer, or (entry >= 0) all of that entry's data, to be read from the entry itself. */
struct codec_piece {
    int64_t entry; /* -1: buf[off .. off + len) */
    size_t off;
    size_t len;
};

/* Encodes the APPEND m (borrowed) as pieces, so that the data of its entries of at least
 * ref_min bytes is not copied: every other byte goes to buf[0..cap) (*buf_len of them), and
 * pieces[0..*n_pieces) (at most 2 * n_entries + 1) say in which order buf's bytes and the
 * entries' data make the frame of codec_msg_size(m) bytes. The frame's CRC field is 0: computing
 * it would read every byte; the frame must go out in FRAG pieces, whose CRCs check its bytes
 * (codec_decode_pieces on the other side). RK_ETOOBIG when buf or pieces are too small. */
int codec_encode_append_pieces(const struct raft_msg *m, uint32_t ref_min, uint8_t *buf, size_t cap,
                               size_t *buf_len, struct codec_piece *pieces, size_t cap_pieces,
                               size_t *n_pieces);

/* Encodes h (borrowed) into buf[0..cap); CODEC_HANDSHAKE_FRAME_SIZE bytes. RK_ETOOBIG when cap
 * is too small. */
int codec_encode_handshake(const struct codec_handshake *h, uint8_t *buf, size_t cap,
                           size_t *out_len);

/* The encoded size of a FORWARD (type CODEC_TYPE_FORWARD, f->len data bytes) or FORWARD_RESP. */
size_t codec_forward_size(uint8_t type, const struct codec_forward *f);

/* Encodes f as a frame of type CODEC_TYPE_FORWARD or CODEC_TYPE_FORWARD_RESP. RK_ETOOBIG when cap
 * is too small. */
int codec_encode_forward(uint8_t type, const struct codec_forward *f, uint8_t *buf, size_t cap,
                         size_t *out_len);

/* The encoded size of a SNAP (with f->len data bytes) or SNAP_ACK. */
size_t codec_snap_size(uint8_t type, const struct codec_snap *f);
int codec_encode_snap(uint8_t type, const struct codec_snap *f, uint8_t *buf, size_t cap,
                      size_t *out_len);

/* Writes the CODEC_FRAG_HEADER_SIZE bytes that go before data[0..len) (borrowed) to make it the
 * FRAG piece at offset of a frame of total bytes: the CRC covers the header's fields and data,
 * so the piece is checked on arrival wherever the frame's own CRC is. Asserts 0 < len <=
 * CODEC_FRAG_MAX and offset + len <= total. */
void codec_frag_header(uint8_t hdr[CODEC_FRAG_HEADER_SIZE], uint32_t total, uint32_t offset,
                       const uint8_t *data, uint32_t len);
/* The same for data in several pieces: codec_frag_begin writes the header's fields and returns
 * the CRC so far; the caller extends it with rk_crc32c over the len data bytes, in order, and
 * codec_frag_seal writes it. */
uint32_t codec_frag_begin(uint8_t hdr[CODEC_FRAG_HEADER_SIZE], uint32_t total, uint32_t offset,
                          uint32_t len);
void codec_frag_seal(uint8_t hdr[CODEC_FRAG_HEADER_SIZE], uint32_t crc);

/*
 * Reassembly of fragmented frames on one connection (FRAG, protocol 2). Feed it every frame the
 * stream splitter delimits, in order:
 *   RK_OK         *out (*out_len bytes) is a whole frame to decode: the frame itself (not a FRAG:
 *                 borrowed from the caller), or the frame the last piece completed (owned by
 *                 the reassembler, valid until the next call or codec_reasm_free).
 *   RK_EAGAIN     a piece was taken in; nothing to decode yet.
 *   RK_EMALFORMED or RK_ECORRUPT  a FRAG that does not fit (its CRC, a piece not right after the
 *                 last, a total over max_frame or not the first piece's, a first piece while a
 *                 frame is half in): err says what; the connection must be dropped.
 *   RK_ENOMEM     the total's buffer could not be allocated.
 * A frame of total bytes costs one allocation of exactly total bytes, made at its first piece:
 * no growing buffer, no copy but the one from the piece.
 */
struct codec_reasm {
    uint8_t *buf; /* total bytes, the first `have` of them in */
    uint32_t total;
    uint32_t have;
    uint32_t max_frame;
    const struct rk_alloc *alloc;
    bool done; /* buf holds a whole frame handed out by the last call: freed at the next */
};

void codec_reasm_init(struct codec_reasm *ra, const struct rk_alloc *a, uint32_t max_frame);
int codec_reasm_feed(struct codec_reasm *ra, const uint8_t *frame, size_t len, const uint8_t **out,
                     size_t *out_len, struct rk_errmsg *err);
/* Frees the buffer of a frame half in or handed out; ra may be fed again. */
void codec_reasm_free(struct codec_reasm *ra);

/*
 * Splits a byte stream into frames: looks at buf[0..len) (borrowed), the unread bytes of a
 * stream, without checking the CRC or the payload (codec_decode does that).
 *   RK_OK         a whole frame is present: it is buf[0..*frame_len).
 *   RK_EAGAIN     more bytes are needed; *frame_len is how many the frame needs in total once
 *                 its length field has arrived, CODEC_FRAME_HEADER_SIZE + 1 before that.
 *   RK_EMALFORMED the length field is 0 or makes a frame over max_frame bytes (header
 *                 included); the stream cannot be resynchronized, drop the connection.
 */
int codec_frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, size_t *frame_len,
                     struct rk_errmsg *err);

/*
 * Decodes exactly one frame, frame[0..len) (as delimited by codec_frame_peek), into *out.
 * Zero-copy: entry data in out->msg.entries point into frame, which must outlive *out and must
 * not be modified while *out is in use (raft_step copies what it keeps). The entries array is
 * allocated with a; the caller owns it and releases it with codec_frame_free(a, out).
 * Returns RK_OK; RK_ECORRUPT on a CRC mismatch; RK_EMALFORMED on any other invalid byte;
 * RK_ENOMEM when a fails. On error err says what and at which offset, and *out owns nothing
 * (codec_frame_free on it is still safe).
 */
int codec_decode(const uint8_t *frame, size_t len, const struct rk_alloc *a,
                 struct codec_frame *out, struct rk_errmsg *err);

/* As codec_decode, for a frame reassembled from FRAG pieces whose CRCs were checked
 * (codec_reasm): the frame's own CRC field is not checked (a sender of pieces leaves it 0). */
int codec_decode_pieces(const uint8_t *frame, size_t len, const struct rk_alloc *a,
                        struct codec_frame *out, struct rk_errmsg *err);

/* Frees what codec_decode allocated into f (with the same a) and leaves f owning nothing.
 * Idempotent; safe on a zeroed frame. */
void codec_frame_free(const struct rk_alloc *a, struct codec_frame *f);

#endif
