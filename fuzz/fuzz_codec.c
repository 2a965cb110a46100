/*
 * fuzz_codec.c — the peer wire format (core/codec): stream splitting, frame decoding, and the
 * round trips of codec.h.
 *
 * Input: [mode u8][stream bytes].
 *   mode bit 0: before decoding a frame, recompute its CRC (so that mutations reach the payload
 *               decoders instead of dying at the checksum);
 *   mode bit 1: first set the stream's leading length field to the whole rest of the input;
 *   mode bits 2-3: the reader's max_frame (64 KiB, 256 B, 4 KiB, the default).
 *
 * Properties, for every input:
 *   1. codec_frame_peek delimits frames consistently (RK_EAGAIN asks for more than there is,
 *      RK_OK for no more than there is), and codec_decode of each frame either fails with
 *      RK_EMALFORMED / RK_ECORRUPT and a message, or succeeds and then: re-encoding what decoded
 *      gives the frame's exact bytes, the encoder's size function agrees, and the decode
 *      allocated at most twice the frame's length (F4).
 *   2. The same stream bytes, read as choices, build a message of every kind (the 11 Raft
 *      messages, handshake, forward, forward_resp, snap, snap_ack): decode(encode(x)) == x,
 *      and encode(decode(encode(x))) == encode(x).
 *   3. The configuration of a RAFT_ENTRY_CONF entry (raft_conf_decode, core/raft; versions 1
 *      and 2, issue #17: with the members' addresses): the stream bytes either decode, and then
 *      re-encode to the same bytes (one encoding per configuration), or fail with
 *      RK_EMALFORMED; and a configuration built from the same bytes as choices (members,
 *      addresses, some left out) round-trips: decode(encode(c)) == c.
 */
#include <inttypes.h>

#include "codec/codec.h"
#include "common/crc32c.h"
#include "fuzz_util.h"

#define CODEC_FZ_KINDS     (RAFT_MSG_TYPE_COUNT - 1 + 5)
#define CODEC_FZ_ENTRY_MAX 8

/* ---- an allocator that counts (F4) ------------------------------------------------------- */

struct codec_fz_count {
    size_t live_bytes;
    size_t total_bytes;
};

static void *codec_fz_malloc(void *ctx, size_t size)
{
    struct codec_fz_count *c = ctx;
    /* A header in front of each block remembers its size for free. */
    size_t *p = malloc(sizeof(size_t) + size);
    if (p == NULL)
        return NULL;
    p[0] = size;
    c->live_bytes += size;
    c->total_bytes += size;
    return p + 1;
}

static void *codec_fz_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    (void)ptr;
    (void)size;
    FZ_CHECK(false, "codec_decode is not expected to realloc");
    return NULL;
}

static void codec_fz_free(void *ctx, void *ptr)
{
    struct codec_fz_count *c = ctx;
    size_t *p = (size_t *)ptr - 1;
    c->live_bytes -= p[0];
    free(p);
}

/* ---- 1: decode what the fuzzer wrote, re-encode it ---------------------------------------- */

/* Encodes a decoded frame with the encoder of its type into an exactly sized buffer. */
static void codec_fz_reencode(const struct codec_frame *f, const uint8_t *frame, size_t len)
{
    uint8_t *out = malloc(len);
    FZ_CHECK(out != NULL, "out of memory");
    size_t out_len = 0;
    size_t want = 0;
    int rc;
    if (f->type == CODEC_TYPE_HANDSHAKE) {
        want = CODEC_HANDSHAKE_FRAME_SIZE;
        rc = codec_encode_handshake(&f->hs, out, len, &out_len);
    } else if (f->type == CODEC_TYPE_FORWARD || f->type == CODEC_TYPE_FORWARD_RESP) {
        want = codec_forward_size(f->type, &f->fwd);
        rc = codec_encode_forward(f->type, &f->fwd, out, len, &out_len);
    } else if (f->type == CODEC_TYPE_SNAP || f->type == CODEC_TYPE_SNAP_ACK) {
        want = codec_snap_size(f->type, &f->snap);
        rc = codec_encode_snap(f->type, &f->snap, out, len, &out_len);
    } else if (f->type == CODEC_TYPE_FRAG) {
        /* A piece of a bigger frame (protocol 2): its header again, then its data. */
        const struct codec_frag *g = &f->frag;
        want = CODEC_FRAG_HEADER_SIZE + (size_t)g->len;
        FZ_CHECK(want == len, "FRAG of %" PRIu32 " data bytes in a %zu-byte frame", g->len, len);
        FZ_CHECK(g->len > 0 && g->len <= CODEC_FRAG_MAX && (uint64_t)g->offset + g->len <= g->total,
                 "FRAG piece accepted out of bounds: offset %" PRIu32 ", %" PRIu32
                 " bytes of %" PRIu32,
                 g->offset, g->len, g->total);
        codec_frag_header(out, g->total, g->offset, g->data, g->len);
        memcpy(out + CODEC_FRAG_HEADER_SIZE, g->data, g->len);
        out_len = want;
        rc = RK_OK;
    } else {
        FZ_CHECK(f->msg.type == f->type, "msg.type %u, frame type %u", f->msg.type, f->type);
        want = codec_msg_size(&f->msg);
        rc = codec_encode_msg(&f->msg, out, len, &out_len);
    }
    FZ_CHECK(want == len, "size function says %zu for a %zu-byte frame of type 0x%02x", want,
             len, f->type);
    FZ_CHECK(rc == RK_OK, "re-encoding a decoded frame of type 0x%02x: %s", f->type,
             rk_strerror(rc));
    FZ_CHECK(out_len == len, "re-encoded %zu bytes of a %zu-byte frame", out_len, len);
    FZ_CHECK(memcmp(out, frame, len) == 0, "re-encoded frame of type 0x%02x differs", f->type);
    free(out);
}

static void codec_fz_check_decoded(const struct codec_frame *f)
{
    const struct raft_msg *m = &f->msg;
    uint64_t h = fz_hash_u64(0, f->type);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        FZ_CHECK(e->index == m->log_index + 1 + i, "entry %" PRIu32 " index %" PRIu64, i,
                 e->index);
        FZ_CHECK(e->type == RAFT_ENTRY_NORMAL || e->type == RAFT_ENTRY_NOOP ||
                     e->type == RAFT_ENTRY_CONF,
                 "entry type %u", e->type);
        FZ_CHECK((e->len == 0) == (e->data == NULL), "entry %" PRIu32 " len/data", i);
        h = fz_hash(h, e->data == NULL ? (const uint8_t *)"" : e->data, e->len);
    }
    if (f->fwd.len > 0)
        h = fz_hash(h, f->fwd.data, f->fwd.len);
    if (f->snap.len > 0)
        h = fz_hash(h, f->snap.data, f->snap.len);
    fz_use(h);
}

static void codec_fz_decode_one(uint8_t *frame, size_t len, uint8_t mode)
{
    if ((mode & 1) != 0 && len >= CODEC_FRAME_HEADER_SIZE) {
        uint32_t crc = rk_crc32c(0, frame + CODEC_FRAME_HEADER_SIZE, len - CODEC_FRAME_HEADER_SIZE);
        for (int i = 0; i < 4; i++)
            frame[4 + i] = (uint8_t)(crc >> (8 * i));
    }
    struct codec_fz_count count = {0, 0};
    struct rk_alloc a = {codec_fz_malloc, codec_fz_realloc, codec_fz_free, &count};
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    int rc = codec_decode(frame, len, &a, &f, &err);
    FZ_CHECK(count.total_bytes <= 2 * len, "F4: decode of %zu bytes allocated %zu", len,
             count.total_bytes);
    if (rc != RK_OK) {
        FZ_CHECK(rc == RK_EMALFORMED || rc == RK_ECORRUPT || rc == RK_ENOMEM, "decode: %s",
                 rk_strerror(rc));
        FZ_CHECK(err.text[0] != '\0', "decode failed (%s) without a message", rk_strerror(rc));
        FZ_CHECK(count.live_bytes == 0, "a failed decode kept %zu bytes", count.live_bytes);
        codec_frame_free(&a, &f);
        return;
    }
    codec_fz_check_decoded(&f);
    codec_fz_reencode(&f, frame, len);
    codec_frame_free(&a, &f);
    codec_frame_free(&a, &f); /* idempotent (codec.h) */
    FZ_CHECK(count.live_bytes == 0, "codec_frame_free left %zu bytes", count.live_bytes);
}

static void codec_fz_stream(const uint8_t *data, size_t size, uint8_t mode)
{
    static const uint32_t max_frames[4] = {64u << 10, 256, 4096, CODEC_MAX_FRAME_DEFAULT};
    uint32_t max_frame = max_frames[(mode >> 2) & 3];
    /* A private copy: the fix-ups of the mode write into it, and each frame is copied again
     * into a buffer of its exact size so that ASan sees any read past its end. */
    uint8_t *stream = malloc(size == 0 ? 1 : size);
    FZ_CHECK(stream != NULL, "out of memory");
    memcpy(stream, data, size);
    if ((mode & 2) != 0 && size >= CODEC_FRAME_HEADER_SIZE) {
        uint64_t body = size - CODEC_FRAME_HEADER_SIZE;
        uint32_t v = body > UINT32_MAX ? UINT32_MAX : (uint32_t)body;
        for (int i = 0; i < 4; i++)
            stream[i] = (uint8_t)(v >> (8 * i));
    }
    size_t pos = 0;
    while (pos < size) {
        size_t left = size - pos;
        size_t flen = 0;
        struct rk_errmsg err = {{0}};
        int rc = codec_frame_peek(stream + pos, left, max_frame, &flen, &err);
        if (rc == RK_EAGAIN) {
            FZ_CHECK(flen > left, "EAGAIN with %zu bytes but a frame of %zu", left, flen);
            break;
        }
        if (rc != RK_OK) {
            FZ_CHECK(rc == RK_EMALFORMED, "peek: %s", rk_strerror(rc));
            break;
        }
        FZ_CHECK(flen > CODEC_FRAME_HEADER_SIZE && flen <= left && flen <= max_frame,
                 "peek: a frame of %zu bytes with %zu left (max %" PRIu32 ")", flen, left,
                 max_frame);
        uint8_t *frame = malloc(flen);
        FZ_CHECK(frame != NULL, "out of memory");
        memcpy(frame, stream + pos, flen);
        codec_fz_decode_one(frame, flen, mode);
        free(frame);
        pos += flen;
    }
    free(stream);
}

/* ---- 2: build a message from choices, encode, decode, compare ---------------------------- */

struct codec_fz_msg {
    uint8_t type; /* a raft message type or a CODEC_TYPE_* */
    struct raft_msg msg;
    struct raft_entry entries[CODEC_FZ_ENTRY_MAX];
    struct codec_handshake hs;
    struct codec_forward fwd;
    struct codec_snap snap;
};

/* Up to max bytes of the choices, as borrowed data (NULL when none). */
static const uint8_t *codec_fz_take(struct fz_bytes *b, uint32_t max, uint32_t *len)
{
    uint32_t n = (uint32_t)fz_range(b, 0, max);
    if (n > b->n)
        n = (uint32_t)b->n;
    const uint8_t *p = n == 0 ? NULL : b->p;
    b->p += n;
    b->n -= n;
    *len = n;
    return p;
}

static void codec_fz_build_append(struct fz_bytes *b, struct codec_fz_msg *x)
{
    struct raft_msg *m = &x->msg;
    m->log_term = fz_u64(b);
    m->commit = fz_u64(b);
    m->n_entries = (uint32_t)fz_range(b, 0, CODEC_FZ_ENTRY_MAX);
    /* F3: the entries' indexes must not wrap. */
    if (m->log_index > UINT64_MAX - CODEC_FZ_ENTRY_MAX - 1)
        m->log_index = UINT64_MAX - CODEC_FZ_ENTRY_MAX - 1;
    m->entries = m->n_entries == 0 ? NULL : x->entries;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        struct raft_entry *e = &x->entries[i];
        e->term = fz_u64(b);
        e->index = m->log_index + 1 + i;
        e->type = fz_bool(b) ? RAFT_ENTRY_NOOP : RAFT_ENTRY_NORMAL;
        e->data = (uint8_t *)codec_fz_take(b, 64, &e->len);
    }
}

static void codec_fz_build(struct fz_bytes *b, struct codec_fz_msg *x)
{
    memset(x, 0, sizeof(*x));
    unsigned kind = (unsigned)fz_range(b, 0, CODEC_FZ_KINDS - 1);
    static const uint8_t other[5] = {CODEC_TYPE_HANDSHAKE, CODEC_TYPE_FORWARD,
                                     CODEC_TYPE_FORWARD_RESP, CODEC_TYPE_SNAP,
                                     CODEC_TYPE_SNAP_ACK};
    x->type = kind < RAFT_MSG_TYPE_COUNT - 1 ? (uint8_t)(kind + 1)
                                             : other[kind - (RAFT_MSG_TYPE_COUNT - 1)];
    uint64_t from = fz_u64(b), to = fz_u64(b), term = fz_u64(b);
    if (x->type == CODEC_TYPE_HANDSHAKE) {
        x->hs = (struct codec_handshake){CODEC_PROTOCOL_VERSION, from, to, (uint32_t)term};
    } else if (x->type == CODEC_TYPE_FORWARD || x->type == CODEC_TYPE_FORWARD_RESP) {
        struct codec_forward *f = &x->fwd;
        f->from = from, f->to = to, f->id = term;
        if (x->type == CODEC_TYPE_FORWARD) {
            f->data = codec_fz_take(b, 128, &f->len);
        } else {
            f->status = (uint8_t)fz_range(b, 0, CODEC_FORWARD_STATUS_COUNT - 1);
            f->index = fz_u64(b), f->term = fz_u64(b), f->leader = fz_u64(b);
        }
    } else if (x->type == CODEC_TYPE_SNAP || x->type == CODEC_TYPE_SNAP_ACK) {
        struct codec_snap *f = &x->snap;
        f->from = from, f->to = to, f->term = term, f->index = fz_u64(b);
        f->seq = fz_u64(b);
        f->xfer = (uint32_t)fz_u64(b);
        if (x->type == CODEC_TYPE_SNAP_ACK) {
            f->done = fz_bool(b);
        } else {
            f->snap_term = fz_u64(b);
            f->last = fz_bool(b);
            f->crc = (uint32_t)fz_u64(b);
            f->data = codec_fz_take(b, 128, &f->len);
        }
    } else {
        struct raft_msg *m = &x->msg;
        m->type = x->type, m->from = from, m->to = to, m->term = term;
        uint64_t u = fz_u64(b), v = fz_u64(b), w = fz_u64(b);
        bool flag = fz_bool(b);
        switch (m->type) {
        case RAFT_MSG_PRE_VOTE:
        case RAFT_MSG_VOTE:
            m->log_index = u, m->log_term = v, m->transfer = flag;
            break;
        case RAFT_MSG_PRE_VOTE_RESP:
        case RAFT_MSG_VOTE_RESP:
            m->reject = flag;
            break;
        case RAFT_MSG_APPEND:
            m->log_index = u;
            codec_fz_build_append(b, x);
            break;
        case RAFT_MSG_APPEND_RESP:
            m->reject = flag, m->index = u, m->conflict_term = v, m->conflict_index = w;
            break;
        case RAFT_MSG_HEARTBEAT:
            m->commit = u, m->ctx = v;
            break;
        case RAFT_MSG_HEARTBEAT_RESP:
        case RAFT_MSG_READ_INDEX:
            m->ctx = u;
            break;
        case RAFT_MSG_READ_INDEX_RESP:
            m->reject = flag, m->ctx = u, m->index = v;
            break;
        default: /* TIMEOUT_NOW: nothing more */
            break;
        }
    }
}

static int codec_fz_encode(const struct codec_fz_msg *x, uint8_t *buf, size_t cap, size_t *len)
{
    if (x->type == CODEC_TYPE_HANDSHAKE)
        return codec_encode_handshake(&x->hs, buf, cap, len);
    if (x->type == CODEC_TYPE_FORWARD || x->type == CODEC_TYPE_FORWARD_RESP)
        return codec_encode_forward(x->type, &x->fwd, buf, cap, len);
    if (x->type == CODEC_TYPE_SNAP || x->type == CODEC_TYPE_SNAP_ACK)
        return codec_encode_snap(x->type, &x->snap, buf, cap, len);
    return codec_encode_msg(&x->msg, buf, cap, len);
}

static bool codec_fz_bytes_equal(const uint8_t *a, const uint8_t *b, uint32_t len)
{
    return len == 0 ? a == NULL && b == NULL : memcmp(a, b, len) == 0;
}

static void codec_fz_compare_msg(const struct raft_msg *a, const struct raft_msg *b)
{
    FZ_CHECK(a->type == b->type && a->from == b->from && a->to == b->to && a->term == b->term,
             "type/from/to/term of a %s", raft_msg_type_name(a->type));
    FZ_CHECK(a->log_index == b->log_index && a->log_term == b->log_term &&
                 a->commit == b->commit,
             "log_index/log_term/commit of a %s", raft_msg_type_name(a->type));
    FZ_CHECK(a->reject == b->reject && a->transfer == b->transfer && a->index == b->index,
             "reject/transfer/index of a %s", raft_msg_type_name(a->type));
    FZ_CHECK(a->conflict_term == b->conflict_term && a->conflict_index == b->conflict_index &&
                 a->ctx == b->ctx,
             "conflict/ctx of a %s", raft_msg_type_name(a->type));
    FZ_CHECK(a->n_entries == b->n_entries, "n_entries %" PRIu32 " != %" PRIu32, a->n_entries,
             b->n_entries);
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
        FZ_CHECK(x->term == y->term && x->index == y->index && x->type == y->type &&
                     x->len == y->len && codec_fz_bytes_equal(x->data, y->data, x->len),
                 "entry %" PRIu32, i);
    }
}

static void codec_fz_compare(const struct codec_fz_msg *x, const struct codec_frame *f)
{
    FZ_CHECK(f->type == x->type, "type 0x%02x decoded as 0x%02x", x->type, f->type);
    const struct codec_forward *a = &x->fwd, *b = &f->fwd;
    FZ_CHECK(a->from == b->from && a->to == b->to && a->id == b->id && a->len == b->len &&
                 codec_fz_bytes_equal(a->data, b->data, a->len) && a->status == b->status &&
                 a->index == b->index && a->term == b->term && a->leader == b->leader,
             "forward fields of a 0x%02x frame", x->type);
    const struct codec_snap *s = &x->snap, *t = &f->snap;
    FZ_CHECK(s->from == t->from && s->to == t->to && s->term == t->term && s->index == t->index &&
                 s->snap_term == t->snap_term && s->xfer == t->xfer && s->seq == t->seq &&
                 s->crc == t->crc && s->last == t->last && s->len == t->len &&
                 codec_fz_bytes_equal(s->data, t->data, s->len) && s->done == t->done,
             "snap fields of a 0x%02x frame", x->type);
    FZ_CHECK(x->hs.version == f->hs.version && x->hs.cluster_id == f->hs.cluster_id &&
                 x->hs.node_id == f->hs.node_id,
             "handshake fields of a 0x%02x frame", x->type);
    codec_fz_compare_msg(&x->msg, &f->msg);
}

static void codec_fz_roundtrip(struct fz_bytes *b)
{
    struct codec_fz_msg x;
    codec_fz_build(b, &x);
    size_t size = 4096;
    uint8_t *buf = malloc(size);
    FZ_CHECK(buf != NULL, "out of memory");
    size_t len = 0;
    int rc = codec_fz_encode(&x, buf, size, &len);
    FZ_CHECK(rc == RK_OK, "encoding a valid 0x%02x: %s", x.type, rk_strerror(rc));
    /* Too small a buffer is refused, not overrun. */
    size_t len2 = 0;
    FZ_CHECK(codec_fz_encode(&x, buf, len - 1, &len2) == RK_ETOOBIG, "cap %zu accepted", len - 1);
    rc = codec_fz_encode(&x, buf, size, &len);
    FZ_CHECK(rc == RK_OK, "encoding again: %s", rk_strerror(rc));
    uint8_t *frame = malloc(len);
    FZ_CHECK(frame != NULL, "out of memory");
    memcpy(frame, buf, len);
    size_t flen = 0;
    FZ_CHECK(codec_frame_peek(frame, len, CODEC_MAX_FRAME_DEFAULT, &flen, NULL) == RK_OK &&
                 flen == len,
             "peek of an encoded 0x%02x frame", x.type);
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    rc = codec_decode(frame, len, rk_alloc_libc(), &f, &err);
    FZ_CHECK(rc == RK_OK, "decoding an encoded 0x%02x frame: %s: %s", x.type, rk_strerror(rc),
             err.text);
    codec_fz_compare(&x, &f);
    codec_fz_reencode(&f, frame, len);
    codec_frame_free(rk_alloc_libc(), &f);
    free(frame);
    free(buf);
}

/* ---- the configuration entry (property 3) ------------------------------------------------ */

static void codec_fz_conf_bytes(const uint8_t *data, size_t size)
{
    struct raft_conf c;
    int rc = raft_conf_decode(data, size, &c);
    FZ_CHECK(rc == RK_OK || rc == RK_EMALFORMED, "raft_conf_decode: %s", rk_strerror(rc));
    if (rc != RK_OK)
        return;
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len = raft_conf_encode(&c, buf);
    FZ_CHECK(len == size && memcmp(buf, data, size) == 0 && raft_conf_encoded_size(&c) == len,
             "a configuration of %zu bytes re-encodes to %zu other bytes", size, len);
}

static void codec_fz_conf_built(struct fz_bytes *b)
{
    struct raft_conf c;
    memset(&c, 0, sizeof(c));
    c.n_voters = (uint32_t)fz_range(b, 1, RAFT_MAX_VOTERS);
    c.n_learners = (uint32_t)fz_range(b, 0, RAFT_MAX_LEARNERS);
    uint64_t id = fz_range(b, 1, 1000);
    for (uint32_t i = 0; i < c.n_voters + c.n_learners; i++) {
        uint64_t *slot = i < c.n_voters ? &c.voters[i] : &c.learners[i - c.n_voters];
        *slot = id;
        id += fz_range(b, 1, 1000); /* distinct */
        if (!fz_bool(b))
            continue;
        struct raft_member_addr a = {.id = *slot};
        size_t plen = (size_t)fz_range(b, 0, RAFT_ADDR_MAX - 1);
        size_t clen = (size_t)fz_range(b, 0, RAFT_ADDR_MAX - 1);
        for (size_t k = 0; k < plen; k++)
            a.peer[k] = (char)fz_range(b, 0x21, 0x7e);
        for (size_t k = 0; k < clen; k++)
            a.client[k] = (char)fz_range(b, 0x21, 0x7e);
        FZ_CHECK(raft_conf_set_addr(&c, &a) == RK_OK, "setting a member's address");
    }
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len = raft_conf_encode(&c, buf);
    FZ_CHECK(len <= RAFT_CONF_ENCODED_MAX && len == raft_conf_encoded_size(&c), "size %zu", len);
    struct raft_conf d;
    FZ_CHECK(raft_conf_decode(buf, len, &d) == RK_OK, "decoding an encoded configuration");
    FZ_CHECK(memcmp(&c, &d, sizeof(c)) == 0, "decode(encode(c)) != c");
    /* Every cut is refused. */
    for (size_t k = 0; k < len; k += 1 + len / 16)
        FZ_CHECK(raft_conf_decode(buf, k, &d) == RK_EMALFORMED, "a cut at %zu decodes", k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    codec_fz_stream(data + 1, size - 1, mode);
    struct fz_bytes b = {data + 1, size - 1};
    codec_fz_roundtrip(&b);
    codec_fz_conf_bytes(data + 1, size - 1);
    struct fz_bytes cb = {data + 1, size - 1};
    codec_fz_conf_built(&cb);
    return 0;
}
