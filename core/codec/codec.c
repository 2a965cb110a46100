/*
 * codec.c — encoding and validating decoding of peer frames. The layout, the invariants F1–F4
 * a decoded frame satisfies, and the ownership rules are in codec.h.
 *
 * Every byte handed to codec_decode is untrusted (DESIGN.md): reads go through a bounded reader
 * whose first error is sticky, so a decoder is a straight sequence of field reads followed by
 * one check, and no path can step past the end of the frame. The encoder writes into a buffer
 * whose size was computed up front by codec_msg_size; running out of room there is a bug, so
 * the writer asserts instead of checking.
 *
 * The enum raft_msg_type and enum raft_entry_type values are wire values: they are pinned by
 * static asserts below so that renumbering raft.h breaks the build, not the protocol.
 */
#include "codec/codec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"

/* Payload sizes after the type byte, excluding APPEND's entries. */
#define COMMON_SIZE            (8 + 8 + 8)     /* from, to, term */
#define ENTRY_HEADER_SIZE      (8 + 8 + 1 + 4) /* term, index, type, len: the minimum entry */
#define HANDSHAKE_PAYLOAD_SIZE (4 + 2 + 8 + 8 + 4)
#define APPEND_FIXED_SIZE      (COMMON_SIZE + 8 + 8 + 8 + 4)
#define TYPE_OFFSET            CODEC_FRAME_HEADER_SIZE
#define PAYLOAD_OFFSET         (CODEC_FRAME_HEADER_SIZE + 1)
/* Everything but the data in a frame that carries a single entry. */
#define ONE_ENTRY_APPEND_OVERHEAD (PAYLOAD_OFFSET + APPEND_FIXED_SIZE + ENTRY_HEADER_SIZE)

_Static_assert(RAFT_MSG_PRE_VOTE == 1 && RAFT_MSG_PRE_VOTE_RESP == 2 && RAFT_MSG_VOTE == 3 &&
                   RAFT_MSG_VOTE_RESP == 4 && RAFT_MSG_APPEND == 5 && RAFT_MSG_APPEND_RESP == 6 &&
                   RAFT_MSG_HEARTBEAT == 7 && RAFT_MSG_HEARTBEAT_RESP == 8 &&
                   RAFT_MSG_TIMEOUT_NOW == 9 && RAFT_MSG_READ_INDEX == 10 &&
                   RAFT_MSG_READ_INDEX_RESP == 11 && RAFT_MSG_TYPE_COUNT == 12,
               "raft message type numbers are wire values: bump CODEC_PROTOCOL_VERSION");
_Static_assert(RAFT_ENTRY_NORMAL == 1 && RAFT_ENTRY_NOOP == 2 && RAFT_ENTRY_CONF == 3,
               "raft entry type numbers are wire values: bump CODEC_PROTOCOL_VERSION");
_Static_assert(RAFT_MSG_TYPE_COUNT <= CODEC_TYPE_HANDSHAKE,
               "raft message types and the handshake type must not overlap");
_Static_assert(CODEC_HANDSHAKE_FRAME_SIZE == PAYLOAD_OFFSET + HANDSHAKE_PAYLOAD_SIZE,
               "handshake frame size");
_Static_assert(CODEC_HANDSHAKE_FRAME_SIZE == 35, "handshake layout is part of the protocol");
_Static_assert(sizeof(struct raft_entry) <= 2 * ENTRY_HEADER_SIZE,
               "F4: the decoded entries array stays within twice the frame length");
_Static_assert(CODEC_MAX_FRAME_DEFAULT >= ONE_ENTRY_APPEND_OVERHEAD + RAFT_DEFAULT_MAX_ENTRY_BYTES,
               "the default max frame must carry one APPEND of raft's largest entry");

static bool is_msg_type(unsigned type)
{
    return type >= RAFT_MSG_PRE_VOTE && type < RAFT_MSG_TYPE_COUNT;
}

static bool is_entry_type(unsigned type)
{
    return type == RAFT_ENTRY_NORMAL || type == RAFT_ENTRY_NOOP || type == RAFT_ENTRY_CONF;
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- sizes ---------------------------------------------------------------------------- */

/* Payload bytes after the type byte for everything but APPEND's entries. */
static size_t fixed_payload_size(uint8_t type)
{
    switch (type) {
    case RAFT_MSG_PRE_VOTE:
    case RAFT_MSG_VOTE:
        return COMMON_SIZE + 8 + 8 + 1;
    case RAFT_MSG_PRE_VOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        return COMMON_SIZE + 1;
    case RAFT_MSG_APPEND:
        return APPEND_FIXED_SIZE;
    case RAFT_MSG_APPEND_RESP:
        return COMMON_SIZE + 1 + 8 + 8 + 8;
    case RAFT_MSG_HEARTBEAT:
        return COMMON_SIZE + 8 + 8;
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX:
        return COMMON_SIZE + 8;
    case RAFT_MSG_TIMEOUT_NOW:
        return COMMON_SIZE;
    case RAFT_MSG_READ_INDEX_RESP:
        return COMMON_SIZE + 1 + 8 + 8;
    }
    RK_ASSERT(!"not a raft message type");
    return 0;
}

size_t codec_msg_size(const struct raft_msg *m)
{
    RK_ASSERT(m != NULL);
    RK_ASSERT(is_msg_type(m->type));
    size_t size = PAYLOAD_OFFSET + fixed_payload_size(m->type);
    if (m->type != RAFT_MSG_APPEND)
        return size;
    RK_ASSERT(m->n_entries == 0 || m->entries != NULL);
    /* Saturating: the entries are only borrowed, and their lengths must not wrap the sum. */
    for (uint32_t i = 0; i < m->n_entries; i++) {
        size_t add = (size_t)ENTRY_HEADER_SIZE + m->entries[i].len;
        if (add > SIZE_MAX - size)
            return SIZE_MAX;
        size += add;
    }
    return size;
}

/* ---- writer --------------------------------------------------------------------------- */

/* Writes into a buffer already known to be large enough: overflow is a bug, hence asserts. */
struct codec_writer {
    uint8_t *buf;
    size_t cap;
    size_t pos;
};

static void put_bytes(struct codec_writer *w, const void *p, size_t n)
{
    RK_ASSERT(n <= w->cap - w->pos);
    if (n > 0)
        memcpy(w->buf + w->pos, p, n);
    w->pos += n;
}

static void put_le(struct codec_writer *w, uint64_t v, size_t n)
{
    RK_ASSERT(n <= w->cap - w->pos);
    RK_ASSERT(n <= 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(w->buf + w->pos, &v, n);
#else
    for (size_t i = 0; i < n; i++)
        w->buf[w->pos + i] = (uint8_t)(v >> (8 * i));
#endif
    w->pos += n;
}

static void put_u8(struct codec_writer *w, uint8_t v)
{
    put_le(w, v, 1);
}

static void put_u16(struct codec_writer *w, uint16_t v)
{
    put_le(w, v, 2);
}

static void put_u32(struct codec_writer *w, uint32_t v)
{
    put_le(w, v, 4);
}

static void put_u64(struct codec_writer *w, uint64_t v)
{
    put_le(w, v, 8);
}

static void put_bool(struct codec_writer *w, bool v)
{
    put_u8(w, v ? 1 : 0);
}

/* Writes the length and the CRC of the frame buf[0..size) whose type and payload are written. */
static void seal_frame(uint8_t *buf, size_t size)
{
    RK_ASSERT(size >= PAYLOAD_OFFSET);
    RK_ASSERT((uint64_t)size - CODEC_FRAME_HEADER_SIZE <= UINT32_MAX);
    store_le32(buf, (uint32_t)(size - CODEC_FRAME_HEADER_SIZE));
    store_le32(buf + 4, rk_crc32c(0, buf + TYPE_OFFSET, size - CODEC_FRAME_HEADER_SIZE));
}

static void encode_entries(struct codec_writer *w, const struct raft_msg *m)
{
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        /* F3 checked before writing, so that a bad message fails at its source, not at a peer. */
        uint64_t want = m->log_index + 1 + i;
        RK_ASSERT(want > m->log_index);
        RK_ASSERT(e->index == want);
        RK_ASSERT(is_entry_type(e->type));
        RK_ASSERT(e->len == 0 || e->data != NULL);
        put_u64(w, e->term);
        put_u64(w, e->index);
        put_u8(w, e->type);
        put_u32(w, e->len);
        put_bytes(w, e->data, e->len);
    }
}

static void encode_fields(struct codec_writer *w, const struct raft_msg *m)
{
    put_u64(w, m->from);
    put_u64(w, m->to);
    put_u64(w, m->term);
    switch (m->type) {
    case RAFT_MSG_PRE_VOTE:
    case RAFT_MSG_VOTE:
        put_u64(w, m->log_index);
        put_u64(w, m->log_term);
        put_bool(w, m->transfer);
        break;
    case RAFT_MSG_PRE_VOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        put_bool(w, m->reject);
        break;
    case RAFT_MSG_APPEND:
        put_u64(w, m->log_index);
        put_u64(w, m->log_term);
        put_u64(w, m->commit);
        put_u32(w, m->n_entries);
        encode_entries(w, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        put_bool(w, m->reject);
        put_u64(w, m->index);
        put_u64(w, m->conflict_term);
        put_u64(w, m->conflict_index);
        break;
    case RAFT_MSG_HEARTBEAT:
        put_u64(w, m->commit);
        put_u64(w, m->ctx);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX:
        put_u64(w, m->ctx);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        put_bool(w, m->reject);
        put_u64(w, m->ctx);
        put_u64(w, m->index);
        break;
    default:
        RK_ASSERT(!"not a raft message type");
    }
}

int codec_encode_msg(const struct raft_msg *m, uint8_t *buf, size_t cap, size_t *out_len)
{
    RK_ASSERT(out_len != NULL);
    RK_ASSERT(buf != NULL || cap == 0);
    size_t size = codec_msg_size(m);
    if (size > cap || (uint64_t)size - CODEC_FRAME_HEADER_SIZE > UINT32_MAX)
        return RK_ETOOBIG;
    struct codec_writer w = {.buf = buf, .cap = size, .pos = CODEC_FRAME_HEADER_SIZE};
    put_u8(&w, m->type);
    encode_fields(&w, m);
    RK_ASSERT(w.pos == size); /* codec_msg_size and the encoder agree */
    seal_frame(buf, size);
    *out_len = size;
    return RK_OK;
}

int codec_encode_append_pieces(const struct raft_msg *m, uint32_t ref_min, uint8_t *buf, size_t cap,
                               size_t *buf_len, struct codec_piece *pieces, size_t cap_pieces,
                               size_t *n_pieces)
{
    RK_ASSERT(m != NULL && m->type == RAFT_MSG_APPEND);
    RK_ASSERT(buf_len != NULL && n_pieces != NULL);
    size_t size = codec_msg_size(m);
    if (size == SIZE_MAX || (uint64_t)size - CODEC_FRAME_HEADER_SIZE > UINT32_MAX ||
        cap_pieces < 2 * (size_t)m->n_entries + 1)
        return RK_ETOOBIG;
    size_t copied = size;
    for (uint32_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].len >= ref_min && m->entries[i].len > 0)
            copied -= m->entries[i].len;
    if (copied > cap)
        return RK_ETOOBIG;
    /* The fixed part, then entry by entry: a referenced entry's data becomes its own piece. */
    struct codec_writer w = {.buf = buf, .cap = copied, .pos = CODEC_FRAME_HEADER_SIZE};
    put_u8(&w, m->type);
    put_u64(&w, m->from);
    put_u64(&w, m->to);
    put_u64(&w, m->term);
    put_u64(&w, m->log_index);
    put_u64(&w, m->log_term);
    put_u64(&w, m->commit);
    put_u32(&w, m->n_entries);
    size_t k = 0, start = 0;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        uint64_t want = m->log_index + 1 + i;
        RK_ASSERT(want > m->log_index && e->index == want);
        RK_ASSERT(is_entry_type(e->type));
        RK_ASSERT(e->len == 0 || e->data != NULL);
        put_u64(&w, e->term);
        put_u64(&w, e->index);
        put_u8(&w, e->type);
        put_u32(&w, e->len);
        if (e->len == 0 || e->len < ref_min) {
            put_bytes(&w, e->data, e->len);
            continue;
        }
        pieces[k++] = (struct codec_piece){.entry = -1, .off = start, .len = w.pos - start};
        pieces[k++] = (struct codec_piece){.entry = i, .len = e->len};
        start = w.pos;
    }
    if (w.pos > start)
        pieces[k++] = (struct codec_piece){.entry = -1, .off = start, .len = w.pos - start};
    RK_ASSERT(w.pos == copied);
    store_le32(buf, (uint32_t)(size - CODEC_FRAME_HEADER_SIZE));
    store_le32(buf + 4, 0);
    *buf_len = copied;
    *n_pieces = k;
    return RK_OK;
}

int codec_encode_handshake(const struct codec_handshake *h, uint8_t *buf, size_t cap,
                           size_t *out_len)
{
    RK_ASSERT(h != NULL);
    RK_ASSERT(out_len != NULL);
    RK_ASSERT(buf != NULL || cap == 0);
    if (cap < CODEC_HANDSHAKE_FRAME_SIZE)
        return RK_ETOOBIG;
    struct codec_writer w = {
        .buf = buf, .cap = CODEC_HANDSHAKE_FRAME_SIZE, .pos = CODEC_FRAME_HEADER_SIZE};
    put_u8(&w, CODEC_TYPE_HANDSHAKE);
    put_u32(&w, CODEC_MAGIC);
    put_u16(&w, h->version);
    put_u64(&w, h->cluster_id);
    put_u64(&w, h->node_id);
    put_u32(&w, h->session_bound);
    RK_ASSERT(w.pos == CODEC_HANDSHAKE_FRAME_SIZE);
    seal_frame(buf, CODEC_HANDSHAKE_FRAME_SIZE);
    *out_len = CODEC_HANDSHAKE_FRAME_SIZE;
    return RK_OK;
}

#define FORWARD_FIXED_SIZE      (8 + 8 + 8 + 4)
#define FORWARD_RESP_PAYLOAD    (8 + 8 + 8 + 1 + 8 + 8 + 8)

size_t codec_forward_size(uint8_t type, const struct codec_forward *f)
{
    RK_ASSERT(type == CODEC_TYPE_FORWARD || type == CODEC_TYPE_FORWARD_RESP);
    if (type == CODEC_TYPE_FORWARD_RESP)
        return PAYLOAD_OFFSET + FORWARD_RESP_PAYLOAD;
    return PAYLOAD_OFFSET + FORWARD_FIXED_SIZE + (size_t)f->len;
}

int codec_encode_forward(uint8_t type, const struct codec_forward *f, uint8_t *buf, size_t cap,
                         size_t *out_len)
{
    RK_ASSERT(f != NULL);
    RK_ASSERT(out_len != NULL);
    RK_ASSERT(f->len == 0 || f->data != NULL);
    RK_ASSERT(f->status < CODEC_FORWARD_STATUS_COUNT);
    size_t size = codec_forward_size(type, f);
    if (size > cap || (uint64_t)size - CODEC_FRAME_HEADER_SIZE > UINT32_MAX)
        return RK_ETOOBIG;
    struct codec_writer w = {.buf = buf, .cap = size, .pos = CODEC_FRAME_HEADER_SIZE};
    put_u8(&w, type);
    put_u64(&w, f->from);
    put_u64(&w, f->to);
    put_u64(&w, f->id);
    if (type == CODEC_TYPE_FORWARD) {
        put_u32(&w, f->len);
        put_bytes(&w, f->data, f->len);
    } else {
        put_u8(&w, f->status);
        put_u64(&w, f->index);
        put_u64(&w, f->term);
        put_u64(&w, f->leader);
    }
    RK_ASSERT(w.pos == size);
    seal_frame(buf, size);
    *out_len = size;
    return RK_OK;
}

#define SNAP_FIXED_SIZE     (8 * 6 + 4 + 1 + 4 + 4)
#define SNAP_ACK_SIZE       (8 * 5 + 4 + 1)

size_t codec_snap_size(uint8_t type, const struct codec_snap *f)
{
    RK_ASSERT(type == CODEC_TYPE_SNAP || type == CODEC_TYPE_SNAP_ACK);
    if (type == CODEC_TYPE_SNAP_ACK)
        return PAYLOAD_OFFSET + SNAP_ACK_SIZE;
    return PAYLOAD_OFFSET + SNAP_FIXED_SIZE + (size_t)f->len;
}

int codec_encode_snap(uint8_t type, const struct codec_snap *f, uint8_t *buf, size_t cap,
                      size_t *out_len)
{
    RK_ASSERT(f != NULL);
    RK_ASSERT(out_len != NULL);
    RK_ASSERT(f->len == 0 || f->data != NULL);
    size_t size = codec_snap_size(type, f);
    if (size > cap || (uint64_t)size - CODEC_FRAME_HEADER_SIZE > UINT32_MAX)
        return RK_ETOOBIG;
    struct codec_writer w = {.buf = buf, .cap = size, .pos = CODEC_FRAME_HEADER_SIZE};
    put_u8(&w, type);
    put_u64(&w, f->from);
    put_u64(&w, f->to);
    put_u64(&w, f->term);
    put_u64(&w, f->index);
    if (type == CODEC_TYPE_SNAP) {
        put_u64(&w, f->snap_term);
        put_u32(&w, f->xfer);
        put_u64(&w, f->seq);
        put_bool(&w, f->last);
        put_u32(&w, f->crc);
        put_u32(&w, f->len);
        put_bytes(&w, f->data, f->len);
    } else {
        put_u32(&w, f->xfer);
        put_u64(&w, f->seq);
        put_bool(&w, f->done);
    }
    RK_ASSERT(w.pos == size);
    seal_frame(buf, size);
    *out_len = size;
    return RK_OK;
}

/* ---- stream splitting ----------------------------------------------------------------- */

int codec_frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, size_t *frame_len,
                     struct rk_errmsg *err)
{
    RK_ASSERT(buf != NULL || len == 0);
    RK_ASSERT(frame_len != NULL);
    RK_ASSERT(max_frame > PAYLOAD_OFFSET);
    *frame_len = PAYLOAD_OFFSET;
    if (len < 4)
        return RK_EAGAIN;
    uint32_t body = load_le32(buf);
    /* Checked as soon as the length arrives: a reader must not buffer toward a bogus size. */
    uint64_t total = (uint64_t)CODEC_FRAME_HEADER_SIZE + body;
    if (body == 0) {
        *frame_len = 0;
        return rk_errf(err, RK_EMALFORMED,
                       "frame: length 0 at offset 0: a frame holds at least its type byte");
    }
    if (total > max_frame) {
        *frame_len = 0;
        return rk_errf(err, RK_EMALFORMED,
                       "frame: length %" PRIu32 " at offset 0 makes a %" PRIu64
                       "-byte frame, over the %" PRIu32 "-byte limit",
                       body, total, max_frame);
    }
    *frame_len = (size_t)total;
    return len >= total ? RK_OK : RK_EAGAIN;
}

/* ---- reader --------------------------------------------------------------------------- */

/* A bounded reader over one frame. The first error is sticky: later reads return zeros and
 * leave the message alone, so decoders read straight through and check once. */
struct codec_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int rc;
    struct rk_errmsg *err;
    /* What is being decoded, prefixes every message ("append: entry 3"); formatted only when
     * an error is reported, so that decoding costs no printf. */
    const char *where;
    int64_t entry; /* the APPEND entry being decoded, or -1 */
};

static void rd_fail(struct codec_reader *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void rd_fail(struct codec_reader *r, int rc, const char *fmt, ...)
{
    RK_ASSERT(rc != RK_OK);
    if (r->rc != RK_OK)
        return;
    r->rc = rc;
    char text[RK_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (r->entry >= 0)
        rk_errf(r->err, rc, "%s: entry %" PRId64 ": %s", r->where, r->entry, text);
    else
        rk_errf(r->err, rc, "%s: %s", r->where, text);
}

static bool rd_ok(const struct codec_reader *r)
{
    return r->rc == RK_OK;
}

/* Consumes n bytes and returns them, or NULL (and fails) when fewer remain. */
static const uint8_t *rd_take(struct codec_reader *r, size_t n, const char *field)
{
    if (!rd_ok(r))
        return NULL;
    RK_ASSERT(r->pos <= r->len);
    size_t left = r->len - r->pos;
    if (n > left) {
        rd_fail(r, RK_EMALFORMED, "%s at offset %zu: %zu bytes needed, only %zu left", field,
                r->pos, n, left);
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

static uint64_t rd_le(struct codec_reader *r, size_t n, const char *field)
{
    RK_ASSERT(n <= 8);
    const uint8_t *p = rd_take(r, n, field);
    if (p == NULL)
        return 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* One load on little-endian hosts (the wire order): this is the decoder's hot path. */
    uint64_t v = 0;
    memcpy(&v, p, n);
    return v;
#else
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
#endif
}

static uint8_t rd_u8(struct codec_reader *r, const char *field)
{
    return (uint8_t)rd_le(r, 1, field);
}

static uint16_t rd_u16(struct codec_reader *r, const char *field)
{
    return (uint16_t)rd_le(r, 2, field);
}

static uint32_t rd_u32(struct codec_reader *r, const char *field)
{
    return (uint32_t)rd_le(r, 4, field);
}

static uint64_t rd_u64(struct codec_reader *r, const char *field)
{
    return rd_le(r, 8, field);
}

/* A boolean is one byte, 0 or 1: anything else is a sign of a bug or an attack, not "true". */
static bool rd_bool(struct codec_reader *r, const char *field)
{
    size_t at = r->pos;
    uint8_t v = rd_u8(r, field);
    if (rd_ok(r) && v > 1)
        rd_fail(r, RK_EMALFORMED, "%s at offset %zu: boolean %u is not 0 or 1", field, at, v);
    return v == 1;
}

/* ---- decoders ------------------------------------------------------------------------- */

static void decode_entry(struct codec_reader *r, uint64_t log_index, uint32_t i,
                         struct raft_entry *e)
{
    e->term = rd_u64(r, "term");
    size_t at = r->pos;
    e->index = rd_u64(r, "index");
    uint64_t want = log_index + 1 + i;
    if (rd_ok(r) && (want <= log_index || e->index != want))
        rd_fail(r, RK_EMALFORMED,
                "index %" PRIu64 " at offset %zu is not log_index %" PRIu64 " + 1 + %" PRIu32,
                e->index, at, log_index, i);
    at = r->pos;
    e->type = rd_u8(r, "type");
    if (rd_ok(r) && !is_entry_type(e->type))
        rd_fail(r, RK_EMALFORMED, "type %u at offset %zu is not NORMAL (1), NOOP (2) or CONF (3)",
                e->type, at);
    e->len = rd_u32(r, "len");
    const uint8_t *data = rd_take(r, e->len, "data");
    /* Zero-copy: data is borrowed from the frame (codec.h). raft_entry.data is not const, but
     * nothing writes through a received entry; raft_step copies what it keeps. */
    e->data = e->len == 0 ? NULL : (uint8_t *)data;
}

static void decode_append(struct codec_reader *r, const struct rk_alloc *a, struct raft_msg *m)
{
    m->log_index = rd_u64(r, "log_index");
    m->log_term = rd_u64(r, "log_term");
    m->commit = rd_u64(r, "commit");
    size_t at = r->pos;
    uint32_t n = rd_u32(r, "n_entries");
    if (!rd_ok(r) || n == 0)
        return;
    /* F4: bound the count by the bytes that remain before allocating, so that four bytes of
     * garbage cannot ask for four billion entries. */
    size_t max_n = (r->len - r->pos) / ENTRY_HEADER_SIZE;
    if (max_n > SIZE_MAX / sizeof(struct raft_entry)) /* only reachable with a 32-bit size_t */
        max_n = SIZE_MAX / sizeof(struct raft_entry);
    if (n > max_n) {
        rd_fail(r, RK_EMALFORMED,
                "n_entries %" PRIu32 " at offset %zu: the %zu bytes left hold at most %zu", n, at,
                r->len - r->pos, max_n);
        return;
    }
    struct raft_entry *es = rk_malloc(a, (size_t)n * sizeof(*es));
    if (es == NULL) {
        rd_fail(r, RK_ENOMEM, "allocating %" PRIu32 " entries", n);
        return;
    }
    memset(es, 0, (size_t)n * sizeof(*es));
    m->entries = es;
    m->n_entries = n;
    for (uint32_t i = 0; i < n && rd_ok(r); i++) {
        r->entry = i;
        decode_entry(r, m->log_index, i, &es[i]);
    }
    r->entry = -1;
}

static void decode_msg(struct codec_reader *r, uint8_t type, const struct rk_alloc *a,
                       struct raft_msg *m)
{
    RK_ASSERT(is_msg_type(type));
    r->where = raft_msg_type_name(type); /* lowercase, as in the messages */
    m->type = type;
    m->from = rd_u64(r, "from");
    m->to = rd_u64(r, "to");
    m->term = rd_u64(r, "term");
    switch (type) {
    case RAFT_MSG_PRE_VOTE:
    case RAFT_MSG_VOTE:
        m->log_index = rd_u64(r, "log_index");
        m->log_term = rd_u64(r, "log_term");
        m->transfer = rd_bool(r, "transfer");
        break;
    case RAFT_MSG_PRE_VOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        m->reject = rd_bool(r, "reject");
        break;
    case RAFT_MSG_APPEND:
        decode_append(r, a, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        m->reject = rd_bool(r, "reject");
        m->index = rd_u64(r, "index");
        m->conflict_term = rd_u64(r, "conflict_term");
        m->conflict_index = rd_u64(r, "conflict_index");
        break;
    case RAFT_MSG_HEARTBEAT:
        m->commit = rd_u64(r, "commit");
        m->ctx = rd_u64(r, "ctx");
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX:
        m->ctx = rd_u64(r, "ctx");
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        m->reject = rd_bool(r, "reject");
        m->ctx = rd_u64(r, "ctx");
        m->index = rd_u64(r, "index");
        break;
    }
}

static void decode_handshake(struct codec_reader *r, struct codec_handshake *h)
{
    r->where = "handshake";
    size_t at = r->pos;
    uint32_t magic = rd_u32(r, "magic");
    if (rd_ok(r) && magic != CODEC_MAGIC)
        rd_fail(r, RK_EMALFORMED, "magic 0x%08" PRIx32 " at offset %zu is not 0x%08x (\"RKV1\")",
                magic, at, CODEC_MAGIC);
    at = r->pos;
    h->version = rd_u16(r, "version");
    if (rd_ok(r) && h->version != CODEC_PROTOCOL_VERSION)
        rd_fail(r, RK_EMALFORMED, "version %u at offset %zu: this node speaks protocol %u",
                h->version, at, CODEC_PROTOCOL_VERSION);
    h->cluster_id = rd_u64(r, "cluster_id");
    h->node_id = rd_u64(r, "node_id");
    h->session_bound = rd_u32(r, "session_bound");
}

static void decode_forward(struct codec_reader *r, uint8_t type, struct codec_forward *f)
{
    r->where = type == CODEC_TYPE_FORWARD ? "forward" : "forward_resp";
    f->from = rd_u64(r, "from");
    f->to = rd_u64(r, "to");
    f->id = rd_u64(r, "id");
    if (type == CODEC_TYPE_FORWARD) {
        f->len = rd_u32(r, "len");
        f->data = rd_take(r, f->len, "data");
        if (f->len == 0)
            f->data = NULL;
        return;
    }
    size_t at = r->pos;
    f->status = rd_u8(r, "status");
    if (rd_ok(r) && f->status >= CODEC_FORWARD_STATUS_COUNT)
        rd_fail(r, RK_EMALFORMED, "status %u at offset %zu is not a forward status", f->status,
                at);
    f->index = rd_u64(r, "index");
    f->term = rd_u64(r, "term");
    f->leader = rd_u64(r, "leader");
}

static void decode_snap(struct codec_reader *r, uint8_t type, struct codec_snap *f)
{
    r->where = type == CODEC_TYPE_SNAP ? "snap" : "snap_ack";
    f->from = rd_u64(r, "from");
    f->to = rd_u64(r, "to");
    f->term = rd_u64(r, "term");
    f->index = rd_u64(r, "index");
    if (type == CODEC_TYPE_SNAP_ACK) {
        f->xfer = rd_u32(r, "xfer");
        f->seq = rd_u64(r, "seq");
        f->done = rd_bool(r, "done");
        return;
    }
    f->snap_term = rd_u64(r, "snap_term");
    f->xfer = rd_u32(r, "xfer");
    f->seq = rd_u64(r, "seq");
    f->last = rd_bool(r, "last");
    f->crc = rd_u32(r, "crc");
    f->len = rd_u32(r, "len");
    f->data = rd_take(r, f->len, "data");
    if (f->len == 0)
        f->data = NULL;
}

#define FRAG_FIXED_SIZE (4 + 4)
_Static_assert(CODEC_FRAG_HEADER_SIZE == PAYLOAD_OFFSET + FRAG_FIXED_SIZE, "FRAG header size");

static void decode_frag(struct codec_reader *r, struct codec_frag *f)
{
    r->where = "frag";
    f->total = rd_u32(r, "total");
    size_t at = r->pos;
    f->offset = rd_u32(r, "offset");
    size_t left = r->len - r->pos;
    if (rd_ok(r) && (left == 0 || left > CODEC_FRAG_MAX))
        rd_fail(r, RK_EMALFORMED, "%zu data bytes: a piece holds 1 to %u", left, CODEC_FRAG_MAX);
    if (rd_ok(r) && ((uint64_t)f->offset + left > f->total || f->total < PAYLOAD_OFFSET))
        rd_fail(r, RK_EMALFORMED,
                "offset %" PRIu32 " + %zu bytes at offset %zu beyond the %" PRIu32 "-byte frame",
                f->offset, left, at, f->total);
    f->len = (uint32_t)left;
    f->data = rd_take(r, left, "data");
}

uint32_t codec_frag_begin(uint8_t hdr[CODEC_FRAG_HEADER_SIZE], uint32_t total, uint32_t offset,
                          uint32_t len)
{
    RK_ASSERT(len > 0);
    RK_ASSERT(len <= CODEC_FRAG_MAX);
    RK_ASSERT((uint64_t)offset + len <= total);
    struct codec_writer w = {.buf = hdr, .cap = CODEC_FRAG_HEADER_SIZE, .pos = TYPE_OFFSET};
    put_u8(&w, CODEC_TYPE_FRAG);
    put_u32(&w, total);
    put_u32(&w, offset);
    RK_ASSERT(w.pos == CODEC_FRAG_HEADER_SIZE);
    store_le32(hdr, (uint32_t)(CODEC_FRAG_HEADER_SIZE - CODEC_FRAME_HEADER_SIZE + len));
    return rk_crc32c(0, hdr + TYPE_OFFSET, CODEC_FRAG_HEADER_SIZE - TYPE_OFFSET);
}

void codec_frag_seal(uint8_t hdr[CODEC_FRAG_HEADER_SIZE], uint32_t crc)
{
    store_le32(hdr + 4, crc);
}

void codec_frag_header(uint8_t hdr[CODEC_FRAG_HEADER_SIZE], uint32_t total, uint32_t offset,
                       const uint8_t *data, uint32_t len)
{
    RK_ASSERT(data != NULL);
    uint32_t crc = codec_frag_begin(hdr, total, offset, len);
    codec_frag_seal(hdr, rk_crc32c(crc, data, len));
}

/* F1 and the CRC half of F2: the frame is exactly one frame and its bytes are intact. */
static int check_frame(const uint8_t *frame, size_t len, bool check_crc, struct rk_errmsg *err)
{
    if (len < PAYLOAD_OFFSET)
        return rk_errf(err, RK_EMALFORMED,
                       "frame: %zu bytes, shorter than the %d-byte minimum (header and type)", len,
                       PAYLOAD_OFFSET);
    uint32_t body = load_le32(frame);
    if (body == 0 || (uint64_t)body != (uint64_t)len - CODEC_FRAME_HEADER_SIZE)
        return rk_errf(err, RK_EMALFORMED,
                       "frame: length %" PRIu32 " at offset 0 does not match the %zu bytes "
                       "after the header",
                       body, len - CODEC_FRAME_HEADER_SIZE);
    if (!check_crc)
        return RK_OK;
    uint32_t stored = load_le32(frame + 4);
    uint32_t computed = rk_crc32c(0, frame + TYPE_OFFSET, len - CODEC_FRAME_HEADER_SIZE);
    if (stored != computed)
        return rk_errf(err, RK_ECORRUPT,
                       "frame: crc32c 0x%08" PRIx32 " at offset 4 != computed 0x%08" PRIx32, stored,
                       computed);
    return RK_OK;
}

static int decode(const uint8_t *frame, size_t len, bool check_crc, const struct rk_alloc *a,
                  struct codec_frame *out, struct rk_errmsg *err);

int codec_decode(const uint8_t *frame, size_t len, const struct rk_alloc *a,
                 struct codec_frame *out, struct rk_errmsg *err)
{
    return decode(frame, len, true, a, out, err);
}

int codec_decode_pieces(const uint8_t *frame, size_t len, const struct rk_alloc *a,
                        struct codec_frame *out, struct rk_errmsg *err)
{
    return decode(frame, len, false, a, out, err);
}

static int decode(const uint8_t *frame, size_t len, bool check_crc, const struct rk_alloc *a,
                  struct codec_frame *out, struct rk_errmsg *err)
{
    RK_ASSERT(frame != NULL || len == 0);
    RK_ASSERT(a != NULL);
    RK_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    int rc = check_frame(frame, len, check_crc, err);
    if (rc != RK_OK)
        return rc;
    uint8_t type = frame[TYPE_OFFSET];
    bool is_forward = type == CODEC_TYPE_FORWARD || type == CODEC_TYPE_FORWARD_RESP;
    bool is_snap = type == CODEC_TYPE_SNAP || type == CODEC_TYPE_SNAP_ACK;
    if (type != CODEC_TYPE_HANDSHAKE && type != CODEC_TYPE_FRAG && !is_forward && !is_snap &&
        !is_msg_type(type))
        return rk_errf(err, RK_EMALFORMED, "frame: unknown type 0x%02x at offset %d", type,
                       TYPE_OFFSET);
    struct codec_reader r = {
        .buf = frame, .len = len, .pos = PAYLOAD_OFFSET, .err = err, .where = "frame", .entry = -1};
    out->type = type;
    if (type == CODEC_TYPE_HANDSHAKE)
        decode_handshake(&r, &out->hs);
    else if (is_forward)
        decode_forward(&r, type, &out->fwd);
    else if (is_snap)
        decode_snap(&r, type, &out->snap);
    else if (type == CODEC_TYPE_FRAG)
        decode_frag(&r, &out->frag);
    else
        decode_msg(&r, type, a, &out->msg);
    if (rd_ok(&r) && r.pos != r.len)
        rd_fail(&r, RK_EMALFORMED, "%zu trailing bytes at offset %zu", r.len - r.pos, r.pos);
    if (!rd_ok(&r)) {
        codec_frame_free(a, out);
        memset(out, 0, sizeof(*out));
        return r.rc;
    }
    /* Paired with the encoder's checks: what F3 promises holds for what we return. */
    RK_ASSERT(out->msg.n_entries == 0 || out->msg.entries != NULL);
    return RK_OK;
}

void codec_frame_free(const struct rk_alloc *a, struct codec_frame *f)
{
    RK_ASSERT(a != NULL);
    RK_ASSERT(f != NULL);
    rk_free(a, f->msg.entries);
    f->msg.entries = NULL;
    f->msg.n_entries = 0;
}

/* ---- reassembly ----------------------------------------------------------------------- */

void codec_reasm_init(struct codec_reasm *ra, const struct rk_alloc *a, uint32_t max_frame)
{
    RK_ASSERT(ra != NULL);
    RK_ASSERT(a != NULL);
    memset(ra, 0, sizeof(*ra));
    ra->alloc = a;
    ra->max_frame = max_frame;
}

void codec_reasm_free(struct codec_reasm *ra)
{
    rk_free(ra->alloc, ra->buf);
    ra->buf = NULL;
    ra->total = ra->have = 0;
    ra->done = false;
}

/* Takes in one checked piece. */
static int reasm_piece(struct codec_reasm *ra, const struct codec_frag *f, struct rk_errmsg *err)
{
    if (f->offset == 0) {
        if (ra->buf != NULL)
            return rk_errf(err, RK_EMALFORMED,
                           "frag: a new frame starts while %" PRIu32 " of %" PRIu32
                           " bytes of the last are in",
                           ra->have, ra->total);
        if (f->total > ra->max_frame)
            return rk_errf(err, RK_EMALFORMED,
                           "frag: a %" PRIu32 "-byte frame is over the %" PRIu32 "-byte limit",
                           f->total, ra->max_frame);
        ra->buf = rk_malloc(ra->alloc, f->total);
        if (ra->buf == NULL)
            return rk_errf(err, RK_ENOMEM, "frag: allocating a %" PRIu32 "-byte frame", f->total);
        ra->total = f->total;
        ra->have = 0;
    } else if (ra->buf == NULL || f->offset != ra->have || f->total != ra->total) {
        return rk_errf(err, RK_EMALFORMED,
                       "frag: piece at offset %" PRIu32 " of a %" PRIu32
                       "-byte frame does not follow %" PRIu32 " bytes of a %" PRIu32 "-byte one",
                       f->offset, f->total, ra->have, ra->total);
    }
    RK_ASSERT(f->len <= ra->total - ra->have); /* decode_frag checked offset + len <= total */
    memcpy(ra->buf + ra->have, f->data, f->len);
    ra->have += f->len;
    return RK_OK;
}

int codec_reasm_feed(struct codec_reasm *ra, const uint8_t *frame, size_t len, const uint8_t **out,
                     size_t *out_len, struct rk_errmsg *err)
{
    RK_ASSERT(out != NULL);
    RK_ASSERT(out_len != NULL);
    if (ra->done)
        codec_reasm_free(ra);
    if (len <= TYPE_OFFSET || frame[TYPE_OFFSET] != CODEC_TYPE_FRAG) {
        *out = frame;
        *out_len = len;
        return RK_OK;
    }
    struct codec_frame f;
    int rc = codec_decode(frame, len, ra->alloc, &f, err);
    if (rc != RK_OK)
        return rc;
    rc = reasm_piece(ra, &f.frag, err);
    codec_frame_free(ra->alloc, &f);
    if (rc != RK_OK) {
        codec_reasm_free(ra);
        return rc;
    }
    if (ra->have < ra->total)
        return RK_EAGAIN;
    if (ra->buf[TYPE_OFFSET] == CODEC_TYPE_FRAG) {
        codec_reasm_free(ra);
        return rk_errf(err, RK_EMALFORMED, "frag: the pieces make a FRAG frame (nested)");
    }
    ra->done = true;
    *out = ra->buf;
    *out_len = ra->total;
    return RK_OK;
}
