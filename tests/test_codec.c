/*
 * test_codec.c — the peer wire format: round trips of every frame type, exact sizes, stream
 * splitting, and rejection of every kind of malformed or corrupted frame without crashing,
 * leaking or allocating more than the frame justifies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counting_alloc.h"

#include "codec/codec.h"
#include "common/crc32c.h"
#include "common/prng.h"

/* ---- sample messages ------------------------------------------------------------------- */

#define SAMPLE_LOG_INDEX 0x2122232425262728ull
#define MANY_ENTRIES     64

static uint8_t blob[1024];
static struct raft_entry sample_entries[MANY_ENTRIES];

static void fill_blob(void)
{
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 131 + 7);
}

/* Every field set to a distinct non-trivial value, carried by the type or not: the decoder must
 * return the carried ones and zero for the rest. */
static void sample_msg(uint8_t type, uint32_t n_entries, struct raft_msg *m)
{
    fill_blob();
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = 0x0102030405060708ull;
    m->to = 0x1112131415161718ull;
    m->term = 0xA1A2A3A4A5A6A7A8ull;
    m->log_index = SAMPLE_LOG_INDEX;
    m->log_term = 0x3132333435363738ull;
    m->commit = 0x4142434445464748ull;
    m->reject = true;
    m->transfer = true;
    m->index = 0x5152535455565758ull;
    m->conflict_term = 0x6162636465666768ull;
    m->conflict_index = 0x7172737475767778ull;
    m->ctx = 0xF1F2F3F4F5F6F7F8ull;
    if (type != RAFT_MSG_APPEND)
        return;
    assert_true(n_entries <= MANY_ENTRIES);
    for (uint32_t i = 0; i < n_entries; i++) {
        struct raft_entry *e = &sample_entries[i];
        e->term = m->log_term + i / 3;
        e->index = SAMPLE_LOG_INDEX + 1 + i;
        e->type = (i % 5 == 4) ? RAFT_ENTRY_NOOP : RAFT_ENTRY_NORMAL;
        e->len = (i % 3 == 0) ? 0 : (uint32_t)(i * 7 % 200 + 1);
        e->data = e->len == 0 ? NULL : blob + i;
    }
    m->n_entries = n_entries;
    m->entries = n_entries == 0 ? NULL : sample_entries;
}

/* What the decoder must produce for in: the fields its type carries (per codec.h), zero else. */
static void project(const struct raft_msg *in, struct raft_msg *out)
{
    memset(out, 0, sizeof(*out));
    out->type = in->type;
    out->from = in->from;
    out->to = in->to;
    out->term = in->term;
    switch (in->type) {
    case RAFT_MSG_PRE_VOTE:
    case RAFT_MSG_VOTE:
        out->log_index = in->log_index;
        out->log_term = in->log_term;
        out->transfer = in->transfer;
        break;
    case RAFT_MSG_PRE_VOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        out->reject = in->reject;
        break;
    case RAFT_MSG_APPEND:
        out->log_index = in->log_index;
        out->log_term = in->log_term;
        out->commit = in->commit;
        out->n_entries = in->n_entries;
        out->entries = in->entries;
        break;
    case RAFT_MSG_APPEND_RESP:
        out->reject = in->reject;
        out->index = in->index;
        out->conflict_term = in->conflict_term;
        out->conflict_index = in->conflict_index;
        break;
    case RAFT_MSG_HEARTBEAT:
        out->commit = in->commit;
        out->ctx = in->ctx;
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX:
        out->ctx = in->ctx;
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        out->reject = in->reject;
        out->ctx = in->ctx;
        out->index = in->index;
        break;
    default:
        fail_msg("bad type %u", in->type);
    }
}

static void assert_msg_equal(const struct raft_msg *want, const struct raft_msg *got)
{
    assert_int_equal(got->type, want->type);
    assert_int_equal(got->from, want->from);
    assert_int_equal(got->to, want->to);
    assert_int_equal(got->term, want->term);
    assert_int_equal(got->log_index, want->log_index);
    assert_int_equal(got->log_term, want->log_term);
    assert_int_equal(got->commit, want->commit);
    assert_int_equal(got->reject, want->reject);
    assert_int_equal(got->transfer, want->transfer);
    assert_int_equal(got->index, want->index);
    assert_int_equal(got->conflict_term, want->conflict_term);
    assert_int_equal(got->conflict_index, want->conflict_index);
    assert_int_equal(got->ctx, want->ctx);
    assert_int_equal(got->n_entries, want->n_entries);
    if (want->n_entries == 0)
        assert_null(got->entries);
    for (uint32_t i = 0; i < want->n_entries; i++) {
        const struct raft_entry *w = &want->entries[i];
        const struct raft_entry *g = &got->entries[i];
        assert_int_equal(g->term, w->term);
        assert_int_equal(g->index, w->index);
        assert_int_equal(g->type, w->type);
        assert_int_equal(g->len, w->len);
        if (w->len == 0)
            assert_null(g->data);
        else
            assert_memory_equal(g->data, w->data, w->len);
    }
}

/* Encodes m into a fresh heap buffer of exactly its size (so ASan sees any overrun). */
static uint8_t *encode_new(const struct raft_msg *m, size_t *len)
{
    size_t size = codec_msg_size(m);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(codec_encode_msg(m, buf, size, len), RK_OK);
    assert_int_equal(*len, size);
    return buf;
}

/* Encode, decode, compare with the projection, re-encode and compare bytes; no leaks. */
static void round_trip(const struct raft_msg *m)
{
    struct counting c;
    struct rk_alloc a = counting_alloc(&c);
    size_t len;
    uint8_t *buf = encode_new(m, &len);
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    int rc = codec_decode(buf, len, &a, &f, &err);
    if (rc != RK_OK)
        fail_msg("decode: %s: %s", rk_strerror(rc), err.text);
    assert_int_equal(f.type, m->type);
    struct raft_msg want;
    project(m, &want);
    assert_msg_equal(&want, &f.msg);
    assert_int_equal(f.hs.version, 0);
    assert_int_equal(f.hs.cluster_id, 0);
    assert_int_equal(f.hs.node_id, 0);
    assert_int_equal(f.hs.session_bound, 0);

    size_t len2;
    uint8_t *buf2 = encode_new(&f.msg, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(buf2, buf, len);
    free(buf2);

    codec_frame_free(&a, &f);
    assert_int_equal(c.live, 0);
    free(buf);
}

static void round_trip_type(uint8_t type)
{
    struct raft_msg m;
    sample_msg(type, 0, &m);
    round_trip(&m);
}

/* ---- a builder of raw frames, for malformed input ---------------------------------------- */

struct builder {
    uint8_t buf[2048];
    size_t len;
};

static void b_le(struct builder *b, uint64_t v, size_t n)
{
    assert_true(b->len + n <= sizeof(b->buf));
    for (size_t i = 0; i < n; i++)
        b->buf[b->len++] = (uint8_t)(v >> (8 * i));
}

static void b_start(struct builder *b, uint8_t type)
{
    memset(b, 0, sizeof(*b));
    b->len = CODEC_FRAME_HEADER_SIZE;
    b_le(b, type, 1);
}

/* from, to, term */
static void b_common(struct builder *b)
{
    b_le(b, 1, 8);
    b_le(b, 2, 8);
    b_le(b, 3, 8);
}

static void b_entry(struct builder *b, uint64_t term, uint64_t index, uint8_t type, uint32_t len)
{
    b_le(b, term, 8);
    b_le(b, index, 8);
    b_le(b, type, 1);
    b_le(b, len, 4);
    for (uint32_t i = 0; i < len; i++)
        b_le(b, (uint8_t)i, 1);
}

/* Writes a correct length and CRC over whatever the frame holds. */
static void fix_header(uint8_t *buf, size_t len)
{
    uint32_t body = (uint32_t)(len - CODEC_FRAME_HEADER_SIZE);
    uint32_t crc = rk_crc32c(0, buf + CODEC_FRAME_HEADER_SIZE, body);
    for (int i = 0; i < 4; i++) {
        buf[i] = (uint8_t)(body >> (8 * i));
        buf[4 + i] = (uint8_t)(crc >> (8 * i));
    }
}

static void b_finish(struct builder *b)
{
    fix_header(b->buf, b->len);
}

/* Decodes buf and expects rc, an error message containing each of the NULL-terminated
 * substrings, a frame that owns nothing, and no live allocation. */
static void expect_error(const uint8_t *buf, size_t len, int want_rc, ...)
{
    struct counting c;
    struct rk_alloc a = counting_alloc(&c);
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    int rc = codec_decode(buf, len, &a, &f, &err);
    if (rc != want_rc)
        fail_msg("rc %s, want %s (%s)", rk_strerror(rc), rk_strerror(want_rc), err.text);
    assert_true(strlen(err.text) > 0);
    va_list ap;
    va_start(ap, want_rc);
    for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *)) {
        if (strstr(err.text, s) == NULL)
            fail_msg("message \"%s\" lacks \"%s\"", err.text, s);
    }
    va_end(ap);
    assert_null(f.msg.entries);
    assert_int_equal(f.msg.n_entries, 0);
    codec_frame_free(&a, &f);
    assert_int_equal(c.live, 0);
}

/* Offsets inside frames built from sample messages. */
#define OFF_FIELDS        (CODEC_FRAME_HEADER_SIZE + 1 + 24) /* first type-specific field */
#define OFF_VOTE_TRANSFER (OFF_FIELDS + 16)
#define OFF_APPEND_N      (OFF_FIELDS + 24)
#define OFF_ENTRY0        (OFF_APPEND_N + 4)
#define ENTRY_HEADER      21

/* ---- round trips ---------------------------------------------------------------------- */

static void test_round_trip_pre_vote(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_PRE_VOTE);
}

static void test_round_trip_pre_vote_resp(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_PRE_VOTE_RESP);
}

static void test_round_trip_vote(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_VOTE);
}

static void test_round_trip_vote_resp(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_VOTE_RESP);
}

static void test_round_trip_append_resp(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_APPEND_RESP);
}

static void test_round_trip_heartbeat(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_HEARTBEAT);
}

static void test_round_trip_heartbeat_resp(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_HEARTBEAT_RESP);
}

static void test_round_trip_timeout_now(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_TIMEOUT_NOW);
}

static void test_round_trip_read_index(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_READ_INDEX);
}

static void test_round_trip_read_index_resp(void **state)
{
    (void)state;
    round_trip_type(RAFT_MSG_READ_INDEX_RESP);
}

static void test_round_trip_false_booleans(void **state)
{
    (void)state;
    for (uint8_t t = RAFT_MSG_PRE_VOTE; t < RAFT_MSG_TYPE_COUNT; t++) {
        struct raft_msg m;
        sample_msg(t, 0, &m);
        m.reject = false;
        m.transfer = false;
        round_trip(&m);
    }
}

static void test_round_trip_append_zero_entries(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 0, &m);
    round_trip(&m);
}

static void test_round_trip_append_one_entry(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 2, &m);
    m.entries = &sample_entries[1]; /* entry 1 has data; make it the only one */
    m.n_entries = 1;
    sample_entries[1].index = m.log_index + 1;
    assert_true(sample_entries[1].len > 0);
    round_trip(&m);
}

static void test_round_trip_append_many_entries_with_empty_data(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, MANY_ENTRIES, &m);
    bool saw_empty = false;
    bool saw_noop = false;
    for (uint32_t i = 0; i < m.n_entries; i++) {
        saw_empty |= m.entries[i].len == 0;
        saw_noop |= m.entries[i].type == RAFT_ENTRY_NOOP;
    }
    assert_true(saw_empty);
    assert_true(saw_noop);
    round_trip(&m);
}

static void test_round_trip_handshake(void **state)
{
    (void)state;
    struct codec_handshake h = {.version = CODEC_PROTOCOL_VERSION,
                                .cluster_id = 0xC1C2C3C4C5C6C7C8ull,
                                .node_id = 0xD1D2D3D4D5D6D7D8ull,
                                .session_bound = 0xE1E2E3E4u};
    uint8_t buf[CODEC_HANDSHAKE_FRAME_SIZE];
    size_t len = 0;
    assert_int_equal(codec_encode_handshake(&h, buf, sizeof(buf), &len), RK_OK);
    assert_int_equal(len, CODEC_HANDSHAKE_FRAME_SIZE);
    struct counting c;
    struct rk_alloc a = counting_alloc(&c);
    struct codec_frame f;
    assert_int_equal(codec_decode(buf, len, &a, &f, NULL), RK_OK);
    assert_int_equal(f.type, CODEC_TYPE_HANDSHAKE);
    assert_int_equal(f.hs.version, h.version);
    assert_int_equal(f.hs.cluster_id, h.cluster_id);
    assert_int_equal(f.hs.node_id, h.node_id);
    assert_int_equal(f.hs.session_bound, h.session_bound);
    assert_int_equal(f.msg.type, 0);
    assert_null(f.msg.entries);
    assert_int_equal(c.calls, 0);
    codec_frame_free(&a, &f);
}

static void test_handshake_magic_is_rkv1_on_the_wire(void **state)
{
    (void)state;
    struct codec_handshake h = {.version = CODEC_PROTOCOL_VERSION, .cluster_id = 1, .node_id = 2};
    uint8_t buf[CODEC_HANDSHAKE_FRAME_SIZE];
    size_t len;
    assert_int_equal(codec_encode_handshake(&h, buf, sizeof(buf), &len), RK_OK);
    assert_int_equal(buf[CODEC_FRAME_HEADER_SIZE], CODEC_TYPE_HANDSHAKE);
    assert_memory_equal(buf + CODEC_FRAME_HEADER_SIZE + 1, "RKV1", 4);
}

static void test_decoded_entry_data_points_into_frame(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 8, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    struct codec_frame f;
    assert_int_equal(codec_decode(buf, len, rk_alloc_libc(), &f, NULL), RK_OK);
    for (uint32_t i = 0; i < f.msg.n_entries; i++) {
        const struct raft_entry *e = &f.msg.entries[i];
        if (e->len == 0)
            continue;
        assert_true(e->data >= buf);
        assert_true(e->data + e->len <= buf + len);
    }
    codec_frame_free(rk_alloc_libc(), &f);
    free(buf);
}

static void test_reencode_of_decoded_gives_identical_bytes(void **state)
{
    (void)state;
    /* round_trip compares the re-encoding byte for byte; this runs it over every type with
     * and without entries. */
    for (uint8_t t = RAFT_MSG_PRE_VOTE; t < RAFT_MSG_TYPE_COUNT; t++) {
        struct raft_msg m;
        sample_msg(t, t == RAFT_MSG_APPEND ? 5 : 0, &m);
        round_trip(&m);
    }
}

static void test_size_equals_encoded_length(void **state)
{
    (void)state;
    /* Expected sizes from the layout in codec.h: 9 bytes of header and type, 24 common. */
    static const size_t want[RAFT_MSG_TYPE_COUNT] = {
        [RAFT_MSG_PRE_VOTE] = 9 + 24 + 17,
        [RAFT_MSG_PRE_VOTE_RESP] = 9 + 24 + 1,
        [RAFT_MSG_VOTE] = 9 + 24 + 17,
        [RAFT_MSG_VOTE_RESP] = 9 + 24 + 1,
        [RAFT_MSG_APPEND] = 9 + 24 + 28,
        [RAFT_MSG_APPEND_RESP] = 9 + 24 + 25,
        [RAFT_MSG_HEARTBEAT] = 9 + 24 + 16,
        [RAFT_MSG_HEARTBEAT_RESP] = 9 + 24 + 8,
        [RAFT_MSG_TIMEOUT_NOW] = 9 + 24,
        [RAFT_MSG_READ_INDEX] = 9 + 24 + 8,
        [RAFT_MSG_READ_INDEX_RESP] = 9 + 24 + 17,
    };
    uint8_t buf[4096];
    for (uint8_t t = RAFT_MSG_PRE_VOTE; t < RAFT_MSG_TYPE_COUNT; t++) {
        struct raft_msg m;
        sample_msg(t, 0, &m);
        size_t len = 0;
        assert_int_equal(codec_encode_msg(&m, buf, sizeof(buf), &len), RK_OK);
        assert_int_equal(codec_msg_size(&m), len);
        assert_int_equal(len, want[t]);
    }
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 10, &m);
    size_t data = 0;
    for (uint32_t i = 0; i < m.n_entries; i++)
        data += m.entries[i].len;
    size_t len = 0;
    assert_int_equal(codec_encode_msg(&m, buf, sizeof(buf), &len), RK_OK);
    assert_int_equal(codec_msg_size(&m), len);
    assert_int_equal(len, want[RAFT_MSG_APPEND] + 10 * ENTRY_HEADER + data);
}

static void test_encode_into_too_small_buffer_is_etoobig(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 4, &m);
    size_t size = codec_msg_size(&m);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    size_t len = 12345;
    assert_int_equal(codec_encode_msg(&m, buf, size - 1, &len), RK_ETOOBIG);
    assert_int_equal(codec_encode_msg(&m, NULL, 0, &len), RK_ETOOBIG);
    assert_int_equal(len, 12345);
    struct codec_handshake h = {.version = CODEC_PROTOCOL_VERSION, .cluster_id = 1, .node_id = 2};
    assert_int_equal(codec_encode_handshake(&h, buf, CODEC_HANDSHAKE_FRAME_SIZE - 1, &len),
                     RK_ETOOBIG);
    free(buf);
}

/* ---- stream splitting ----------------------------------------------------------------- */

static void test_peek_every_prefix_is_eagain(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 6, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    for (size_t n = 0; n < len; n++) {
        size_t need = 0;
        assert_int_equal(codec_frame_peek(buf, n, CODEC_MAX_FRAME_DEFAULT, &need, NULL), RK_EAGAIN);
        assert_true(need > n);
        assert_true(need <= len);
        if (n >= 4)
            assert_int_equal(need, len);
    }
    free(buf);
}

static void test_peek_whole_frame_followed_by_more_is_ok(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_HEARTBEAT, 0, &m);
    uint8_t buf[256];
    size_t first, second;
    assert_int_equal(codec_encode_msg(&m, buf, sizeof(buf), &first), RK_OK);
    assert_int_equal(codec_encode_msg(&m, buf + first, sizeof(buf) - first, &second), RK_OK);
    size_t frame_len = 0;
    assert_int_equal(codec_frame_peek(buf, first, CODEC_MAX_FRAME_DEFAULT, &frame_len, NULL),
                     RK_OK);
    assert_int_equal(frame_len, first);
    assert_int_equal(
        codec_frame_peek(buf, first + second, CODEC_MAX_FRAME_DEFAULT, &frame_len, NULL), RK_OK);
    assert_int_equal(frame_len, first);
    assert_int_equal(
        codec_frame_peek(buf + first, second, CODEC_MAX_FRAME_DEFAULT, &frame_len, NULL), RK_OK);
    assert_int_equal(frame_len, second);
}

static void test_peek_zero_length_is_malformed(void **state)
{
    (void)state;
    uint8_t buf[4] = {0, 0, 0, 0};
    size_t frame_len;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_frame_peek(buf, 4, CODEC_MAX_FRAME_DEFAULT, &frame_len, &err),
                     RK_EMALFORMED);
    assert_non_null(strstr(err.text, "length 0"));
}

static void test_peek_oversized_length_is_malformed(void **state)
{
    (void)state;
    /* One byte over the limit, known as soon as the length field has arrived. */
    uint32_t body = CODEC_MAX_FRAME_DEFAULT - CODEC_FRAME_HEADER_SIZE + 1;
    uint8_t buf[4] = {(uint8_t)body, (uint8_t)(body >> 8), (uint8_t)(body >> 16),
                      (uint8_t)(body >> 24)};
    size_t frame_len;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_frame_peek(buf, 4, CODEC_MAX_FRAME_DEFAULT, &frame_len, &err),
                     RK_EMALFORMED);
    assert_non_null(strstr(err.text, "over the"));
    /* Exactly at the limit is fine: more bytes needed. */
    body--;
    buf[0] = (uint8_t)body;
    assert_int_equal(codec_frame_peek(buf, 4, CODEC_MAX_FRAME_DEFAULT, &frame_len, &err),
                     RK_EAGAIN);
    assert_int_equal(frame_len, CODEC_MAX_FRAME_DEFAULT);
    /* A configured smaller limit. */
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 10, &m);
    size_t len;
    uint8_t *frame = encode_new(&m, &len);
    assert_int_equal(codec_frame_peek(frame, len, (uint32_t)len, &frame_len, NULL), RK_OK);
    assert_int_equal(codec_frame_peek(frame, len, (uint32_t)len - 1, &frame_len, NULL),
                     RK_EMALFORMED);
    free(frame);
}

/* ---- rejection of bad frames ---------------------------------------------------------- */

static void test_decode_every_truncation_fails(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 6, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    for (size_t n = 0; n < len; n++) {
        /* A fresh heap copy of exactly n bytes, so ASan flags any read past the prefix. */
        uint8_t *prefix = malloc(n == 0 ? 1 : n);
        assert_non_null(prefix);
        memcpy(prefix, buf, n);
        expect_error(n == 0 ? NULL : prefix, n, RK_EMALFORMED, "frame", NULL);
        free(prefix);
    }
    free(buf);
}

/* A payload cut short with a consistent length and CRC (a buggy or hostile encoder): the error
 * comes from the field read that ran out, and names it with its offset. */
static void test_decode_truncated_payload_names_field_and_offset(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 3, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    for (size_t n = CODEC_FRAME_HEADER_SIZE + 1; n < len; n++) {
        uint8_t *cut = malloc(n);
        assert_non_null(cut);
        memcpy(cut, buf, n);
        fix_header(cut, n);
        expect_error(cut, n, RK_EMALFORMED, "append", " at offset ", "left", NULL);
        free(cut);
    }
    free(buf);
}

static void flip_all_bits(const uint8_t *frame, size_t len)
{
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, frame, len);
            copy[i] ^= (uint8_t)(1u << bit);
            /* A flip in the length field no longer matches the buffer; anywhere else the CRC
             * (which detects every single-bit error) catches it. */
            if (i < 4)
                expect_error(copy, len, RK_EMALFORMED, "length", NULL);
            else
                expect_error(copy, len, RK_ECORRUPT, "crc32c", NULL);
        }
    }
    free(copy);
}

static void test_decode_every_bit_flip_is_detected(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 4, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    flip_all_bits(buf, len);
    free(buf);

    struct codec_handshake h = {.version = CODEC_PROTOCOL_VERSION, .cluster_id = 7, .node_id = 3};
    uint8_t hs[CODEC_HANDSHAKE_FRAME_SIZE];
    assert_int_equal(codec_encode_handshake(&h, hs, sizeof(hs), &len), RK_OK);
    flip_all_bits(hs, len);
}

static void test_decode_unknown_type_is_malformed(void **state)
{
    (void)state;
    static const uint8_t types[] = {0, RAFT_MSG_TYPE_COUNT, 0x7f, 0x86, 0xff};
    for (size_t i = 0; i < sizeof(types); i++) {
        struct builder b;
        b_start(&b, types[i]);
        b_common(&b);
        b_finish(&b);
        expect_error(b.buf, b.len, RK_EMALFORMED, "unknown type", "offset 8", NULL);
    }
}

/* Re-encodes sample message type with byte at `offset` set to v, CRC fixed up. */
static void expect_poke_error(uint8_t type, uint32_t n_entries, size_t offset, uint8_t v,
                              const char *field)
{
    struct raft_msg m;
    sample_msg(type, n_entries, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    assert_true(offset < len);
    buf[offset] = v;
    fix_header(buf, len);
    expect_error(buf, len, RK_EMALFORMED, field, " at offset ", NULL);
    free(buf);
}

static void test_decode_bad_bool_is_malformed(void **state)
{
    (void)state;
    expect_poke_error(RAFT_MSG_VOTE, 0, OFF_VOTE_TRANSFER, 2, "vote: transfer at offset 49");
    expect_poke_error(RAFT_MSG_PRE_VOTE, 0, OFF_VOTE_TRANSFER, 0xff, "transfer");
    expect_poke_error(RAFT_MSG_VOTE_RESP, 0, OFF_FIELDS, 2, "vote_resp: reject");
    expect_poke_error(RAFT_MSG_PRE_VOTE_RESP, 0, OFF_FIELDS, 0x80, "reject");
    expect_poke_error(RAFT_MSG_APPEND_RESP, 0, OFF_FIELDS, 3, "append_resp: reject");
    expect_poke_error(RAFT_MSG_READ_INDEX_RESP, 0, OFF_FIELDS, 9, "read_index_resp: reject");
}

static void test_decode_bad_entry_type_is_malformed(void **state)
{
    (void)state;
    /* Entry 1 starts after entry 0 (which has no data in the sample). */
    size_t entry1_type = OFF_ENTRY0 + ENTRY_HEADER + 16;
    expect_poke_error(RAFT_MSG_APPEND, 2, OFF_ENTRY0 + 16, 0, "append: entry 0: type");
    expect_poke_error(RAFT_MSG_APPEND, 2, OFF_ENTRY0 + 16, 4, "entry 0: type 4");
    expect_poke_error(RAFT_MSG_APPEND, 2, entry1_type, 0xff, "entry 1: type 255");
}

static void test_decode_non_consecutive_entry_index_is_malformed(void **state)
{
    (void)state;
    /* The first entry must be log_index + 1. */
    struct builder b;
    b_start(&b, RAFT_MSG_APPEND);
    b_common(&b);
    b_le(&b, 10, 8); /* log_index */
    b_le(&b, 2, 8);  /* log_term */
    b_le(&b, 9, 8);  /* commit */
    b_le(&b, 1, 4);
    b_entry(&b, 2, 10, RAFT_ENTRY_NORMAL, 3);
    b_finish(&b);
    expect_error(b.buf, b.len, RK_EMALFORMED, "entry 0: index 10", NULL);

    /* A gap between entries. */
    b_start(&b, RAFT_MSG_APPEND);
    b_common(&b);
    b_le(&b, 10, 8);
    b_le(&b, 2, 8);
    b_le(&b, 9, 8);
    b_le(&b, 3, 4);
    b_entry(&b, 2, 11, RAFT_ENTRY_NORMAL, 1);
    b_entry(&b, 2, 12, RAFT_ENTRY_NOOP, 0);
    b_entry(&b, 2, 14, RAFT_ENTRY_NORMAL, 2);
    b_finish(&b);
    expect_error(b.buf, b.len, RK_EMALFORMED, "entry 2: index 14", NULL);
}

static void test_decode_entry_index_wraparound_is_malformed(void **state)
{
    (void)state;
    struct builder b;
    b_start(&b, RAFT_MSG_APPEND);
    b_common(&b);
    b_le(&b, UINT64_MAX, 8); /* log_index: log_index + 1 wraps to 0 */
    b_le(&b, 2, 8);
    b_le(&b, 9, 8);
    b_le(&b, 1, 4);
    b_entry(&b, 2, 0, RAFT_ENTRY_NORMAL, 0);
    b_finish(&b);
    expect_error(b.buf, b.len, RK_EMALFORMED, "entry 0: index 0", NULL);
}

static void test_decode_trailing_garbage_is_malformed(void **state)
{
    (void)state;
    /* Inside the frame: length and CRC cover the extra byte. */
    for (uint8_t t = RAFT_MSG_PRE_VOTE; t < RAFT_MSG_TYPE_COUNT; t++) {
        struct raft_msg m;
        sample_msg(t, t == RAFT_MSG_APPEND ? 3 : 0, &m);
        size_t len;
        uint8_t *buf = encode_new(&m, &len);
        uint8_t *longer = malloc(len + 1);
        assert_non_null(longer);
        memcpy(longer, buf, len);
        longer[len] = 0;
        fix_header(longer, len + 1);
        expect_error(longer, len + 1, RK_EMALFORMED, "1 trailing bytes at offset", NULL);
        /* After the frame: the buffer holds more than the length field says. */
        memcpy(longer, buf, len);
        expect_error(longer, len + 1, RK_EMALFORMED, "frame: length", NULL);
        free(longer);
        free(buf);
    }
    struct codec_handshake h = {.version = CODEC_PROTOCOL_VERSION, .cluster_id = 7, .node_id = 3};
    uint8_t hs[CODEC_HANDSHAKE_FRAME_SIZE + 1];
    size_t len;
    assert_int_equal(codec_encode_handshake(&h, hs, sizeof(hs), &len), RK_OK);
    hs[len] = 0;
    fix_header(hs, len + 1);
    expect_error(hs, len + 1, RK_EMALFORMED, "handshake: 1 trailing bytes", NULL);
}

static void test_decode_length_field_over_buffer_is_malformed(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_HEARTBEAT, 0, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    static const uint32_t bodies[] = {0, 1, 100, CODEC_MAX_FRAME_DEFAULT, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        for (int k = 0; k < 4; k++)
            buf[k] = (uint8_t)(bodies[i] >> (8 * k));
        expect_error(buf, len, RK_EMALFORMED, "frame: length", "offset 0", NULL);
    }
    free(buf);
}

static void test_decode_entry_data_longer_than_frame_is_malformed(void **state)
{
    (void)state;
    struct builder b;
    b_start(&b, RAFT_MSG_APPEND);
    b_common(&b);
    b_le(&b, 0, 8);
    b_le(&b, 1, 8);
    b_le(&b, 0, 8);
    b_le(&b, 4, 4);
    b_entry(&b, 1, 1, RAFT_ENTRY_NORMAL, 1);
    b_entry(&b, 1, 2, RAFT_ENTRY_NORMAL, 2);
    b_entry(&b, 1, 3, RAFT_ENTRY_NOOP, 0);
    /* Entry 3 claims 5000 bytes and has 12. */
    b_le(&b, 1, 8);
    b_le(&b, 4, 8);
    b_le(&b, RAFT_ENTRY_NORMAL, 1);
    b_le(&b, 5000, 4);
    for (int i = 0; i < 12; i++)
        b_le(&b, 0xAB, 1);
    b_finish(&b);
    expect_error(b.buf, b.len, RK_EMALFORMED, "append: entry 3: data at offset",
                 "5000 bytes needed, only 12 left", NULL);
}

static void test_decode_huge_n_entries_allocates_nothing(void **state)
{
    (void)state;
    struct builder b;
    b_start(&b, RAFT_MSG_APPEND);
    b_common(&b);
    b_le(&b, 0, 8);
    b_le(&b, 1, 8);
    b_le(&b, 0, 8);
    b_le(&b, UINT32_MAX, 4);
    b_entry(&b, 1, 1, RAFT_ENTRY_NORMAL, 4);
    b_finish(&b);
    struct counting c;
    struct rk_alloc a = counting_alloc(&c);
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_decode(b.buf, b.len, &a, &f, &err), RK_EMALFORMED);
    assert_non_null(strstr(err.text, "n_entries 4294967295"));
    assert_int_equal(c.calls, 0);
}

/* The most entries a frame can claim: every allocation stays within a small multiple of the
 * frame length, whether the entries then turn out valid or not. */
static void test_decode_allocation_is_bounded_by_frame_length(void **state)
{
    (void)state;
    for (int valid = 0; valid <= 1; valid++) {
        struct builder b;
        b_start(&b, RAFT_MSG_APPEND);
        b_common(&b);
        b_le(&b, 0, 8);
        b_le(&b, 1, 8);
        b_le(&b, 0, 8);
        uint32_t n = (uint32_t)((sizeof(b.buf) - b.len - 4) / ENTRY_HEADER);
        b_le(&b, n, 4);
        for (uint32_t i = 0; i < n; i++)
            b_entry(&b, 1, valid ? i + 1 : 7, RAFT_ENTRY_NOOP, 0);
        b_finish(&b);
        struct counting c;
        struct rk_alloc a = counting_alloc(&c);
        struct codec_frame f;
        int rc = codec_decode(b.buf, b.len, &a, &f, NULL);
        assert_int_equal(rc, valid ? RK_OK : RK_EMALFORMED);
        assert_int_equal(c.calls, 1);
        assert_true(c.max_size <= 2 * b.len);
        assert_true(c.max_size < 64 * b.len);
        if (valid)
            assert_int_equal(f.msg.n_entries, n);
        codec_frame_free(&a, &f);
        assert_int_equal(c.live, 0);
    }
}

static void test_decode_allocation_failure_is_enomem_without_leak(void **state)
{
    (void)state;
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 5, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    struct counting c;
    struct rk_alloc a = counting_alloc(&c);
    c.fail_from = 1;
    struct codec_frame f;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_decode(buf, len, &a, &f, &err), RK_ENOMEM);
    assert_non_null(strstr(err.text, "append: allocating 5 entries"));
    assert_null(f.msg.entries);
    assert_int_equal(c.live, 0);
    codec_frame_free(&a, &f);
    /* Messages without entries never allocate, so they decode even then. */
    sample_msg(RAFT_MSG_VOTE, 0, &m);
    free(buf);
    buf = encode_new(&m, &len);
    assert_int_equal(codec_decode(buf, len, &a, &f, &err), RK_OK);
    free(buf);
}

static void test_decode_handshake_bad_magic_is_malformed(void **state)
{
    (void)state;
    struct codec_handshake h = {.version = CODEC_PROTOCOL_VERSION, .cluster_id = 7, .node_id = 3};
    uint8_t buf[CODEC_HANDSHAKE_FRAME_SIZE];
    size_t len;
    assert_int_equal(codec_encode_handshake(&h, buf, sizeof(buf), &len), RK_OK);
    buf[CODEC_FRAME_HEADER_SIZE + 1] = 'X';
    fix_header(buf, len);
    expect_error(buf, len, RK_EMALFORMED, "handshake: magic", "offset 9", NULL);
}

static void test_decode_handshake_unsupported_version_is_malformed(void **state)
{
    (void)state;
    struct codec_handshake h = {
        .version = CODEC_PROTOCOL_VERSION + 1, .cluster_id = 7, .node_id = 3};
    uint8_t buf[CODEC_HANDSHAKE_FRAME_SIZE];
    size_t len;
    assert_int_equal(codec_encode_handshake(&h, buf, sizeof(buf), &len), RK_OK);
    expect_error(buf, len, RK_EMALFORMED, "handshake: version 5 at offset 13", "speaks protocol 4",
                 NULL);
}

/* A node of protocol 3 sends a handshake 4 bytes shorter (no session bound): refused by its
 * version, with the reason, not read past its end. */
static void test_decode_handshake_of_protocol_3_is_refused_by_version(void **state)
{
    (void)state;
    struct codec_handshake h = {.version = 3, .cluster_id = 7, .node_id = 3};
    uint8_t buf[CODEC_HANDSHAKE_FRAME_SIZE];
    size_t len;
    assert_int_equal(codec_encode_handshake(&h, buf, sizeof(buf), &len), RK_OK);
    len -= 4;
    fix_header(buf, len);
    expect_error(buf, len, RK_EMALFORMED, "handshake: version 3 at offset 13", "speaks protocol 4",
                 NULL);
}

static void test_frame_free_is_safe_on_zeroed_and_freed_frames(void **state)
{
    (void)state;
    struct counting c;
    struct rk_alloc a = counting_alloc(&c);
    struct codec_frame f;
    memset(&f, 0, sizeof(f));
    codec_frame_free(&a, &f);
    struct raft_msg m;
    sample_msg(RAFT_MSG_APPEND, 3, &m);
    size_t len;
    uint8_t *buf = encode_new(&m, &len);
    assert_int_equal(codec_decode(buf, len, &a, &f, NULL), RK_OK);
    assert_int_equal(c.live, 1);
    codec_frame_free(&a, &f);
    codec_frame_free(&a, &f);
    assert_int_equal(c.live, 0);
    free(buf);
}

/* ---- random round trips --------------------------------------------------------------- */

/* Boundary values are overrepresented: that is where encodings break. */
static uint64_t random_u64(struct rk_prng *p)
{
    switch (rk_prng_below(p, 6)) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX;
    case 2:
        return rk_prng_below(p, 1000);
    case 3:
        return (uint64_t)1 << rk_prng_below(p, 64);
    default:
        return rk_prng_next(p);
    }
}

static void random_msg(struct rk_prng *p, struct raft_msg *m, struct raft_entry *es,
                       uint32_t max_entries)
{
    memset(m, 0, sizeof(*m));
    m->type = (uint8_t)rk_prng_range(p, RAFT_MSG_PRE_VOTE, RAFT_MSG_TYPE_COUNT - 1);
    m->from = random_u64(p);
    m->to = random_u64(p);
    m->term = random_u64(p);
    m->log_index = random_u64(p);
    m->log_term = random_u64(p);
    m->commit = random_u64(p);
    m->reject = rk_prng_below(p, 2) == 1;
    m->transfer = rk_prng_below(p, 2) == 1;
    m->index = random_u64(p);
    m->conflict_term = random_u64(p);
    m->conflict_index = random_u64(p);
    m->ctx = random_u64(p);
    if (m->type != RAFT_MSG_APPEND)
        return;
    uint32_t n = (uint32_t)rk_prng_below(p, max_entries + 1);
    if (m->log_index > UINT64_MAX - n)
        m->log_index = UINT64_MAX - n; /* the last entry's index must not wrap */
    for (uint32_t i = 0; i < n; i++) {
        es[i].term = random_u64(p);
        es[i].index = m->log_index + 1 + i;
        es[i].type = (uint8_t)rk_prng_range(p, RAFT_ENTRY_NORMAL, RAFT_ENTRY_NOOP);
        es[i].len = rk_prng_below(p, 4) == 0 ? 0 : (uint32_t)rk_prng_below(p, 200);
        es[i].data = es[i].len == 0 ? NULL : blob + rk_prng_below(p, sizeof(blob) - 200);
    }
    m->n_entries = n;
    m->entries = n == 0 ? NULL : es;
}

static void test_random_round_trip_10000(void **state)
{
    (void)state;
    struct rk_prng p;
    rk_prng_seed(&p, 0x5EED);
    fill_blob();
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)rk_prng_next(&p);
    struct raft_entry es[12];
    for (int i = 0; i < 10000; i++) {
        struct raft_msg m;
        random_msg(&p, &m, es, 12);
        round_trip(&m);
    }
}

static void test_forward_round_trips_with_data(void **state)
{
    (void)state;
    static const uint8_t data[] = "set k v";
    struct codec_forward f = {.from = 2, .to = 1, .id = 77, .data = data, .len = sizeof(data)};
    uint8_t buf[128];
    size_t len = 0;
    assert_int_equal(codec_encode_forward(CODEC_TYPE_FORWARD, &f, buf, sizeof(buf), &len), RK_OK);
    assert_int_equal(len, codec_forward_size(CODEC_TYPE_FORWARD, &f));
    struct codec_frame out;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_decode(buf, len, rk_alloc_libc(), &out, &err), RK_OK);
    assert_int_equal(out.type, CODEC_TYPE_FORWARD);
    assert_int_equal(out.fwd.from, 2);
    assert_int_equal(out.fwd.to, 1);
    assert_int_equal(out.fwd.id, 77);
    assert_int_equal(out.fwd.len, sizeof(data));
    assert_memory_equal(out.fwd.data, data, sizeof(data));
    assert_ptr_equal(out.fwd.data, buf + len - sizeof(data)); /* zero-copy */
    codec_frame_free(rk_alloc_libc(), &out);
}

static void test_forward_resp_round_trips(void **state)
{
    (void)state;
    struct codec_forward f = {.from = 1, .to = 3, .id = 9, .status = CODEC_FORWARD_NOT_LEADER,
                              .index = 1234, .term = 7, .leader = 2};
    uint8_t buf[128];
    size_t len = 0;
    assert_int_equal(codec_encode_forward(CODEC_TYPE_FORWARD_RESP, &f, buf, sizeof(buf), &len),
                     RK_OK);
    struct codec_frame out;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_decode(buf, len, rk_alloc_libc(), &out, &err), RK_OK);
    assert_int_equal(out.type, CODEC_TYPE_FORWARD_RESP);
    assert_int_equal(out.fwd.status, CODEC_FORWARD_NOT_LEADER);
    assert_int_equal(out.fwd.index, 1234);
    assert_int_equal(out.fwd.term, 7);
    assert_int_equal(out.fwd.leader, 2);
    assert_int_equal(out.fwd.id, 9);
}

static void test_forward_truncations_and_bad_status_are_malformed(void **state)
{
    (void)state;
    static const uint8_t data[] = "payload";
    struct codec_forward f = {.from = 2, .to = 1, .id = 5, .data = data, .len = sizeof(data)};
    uint8_t buf[128];
    size_t len = 0;
    assert_int_equal(codec_encode_forward(CODEC_TYPE_FORWARD, &f, buf, sizeof(buf), &len), RK_OK);
    for (size_t cut = CODEC_FRAME_HEADER_SIZE + 1; cut < len; cut++) {
        uint8_t copy[128];
        memcpy(copy, buf, cut);
        fix_header(copy, cut);
        expect_error(copy, cut, RK_EMALFORMED, "forward", "offset", NULL);
    }
    struct codec_forward r = {.from = 1, .to = 2, .id = 5};
    assert_int_equal(codec_encode_forward(CODEC_TYPE_FORWARD_RESP, &r, buf, sizeof(buf), &len),
                     RK_OK);
    buf[CODEC_FRAME_HEADER_SIZE + 1 + 24] = CODEC_FORWARD_STATUS_COUNT; /* the status byte */
    fix_header(buf, len);
    expect_error(buf, len, RK_EMALFORMED, "forward_resp", "status", NULL);
}

static void test_snap_and_ack_round_trip(void **state)
{
    (void)state;
    static const uint8_t data[] = "chunk of a snapshot";
    struct codec_snap f = {.from = 1,
                           .to = 2,
                           .term = 5,
                           .index = 900,
                           .snap_term = 4,
                           .xfer = 3,
                           .seq = 7,
                           .crc = 0xdeadbeefu,
                           .last = true,
                           .data = data,
                           .len = sizeof(data)};
    uint8_t buf[256];
    size_t len = 0;
    assert_int_equal(codec_encode_snap(CODEC_TYPE_SNAP, &f, buf, sizeof(buf), &len), RK_OK);
    assert_int_equal(len, codec_snap_size(CODEC_TYPE_SNAP, &f));
    struct codec_frame out;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_decode(buf, len, rk_alloc_libc(), &out, &err), RK_OK);
    assert_int_equal(out.type, CODEC_TYPE_SNAP);
    assert_int_equal(out.snap.index, 900);
    assert_int_equal(out.snap.snap_term, 4);
    assert_int_equal(out.snap.seq, 7);
    assert_int_equal(out.snap.xfer, 3);
    assert_int_equal(out.snap.crc, 0xdeadbeefu);
    assert_true(out.snap.last);
    assert_memory_equal(out.snap.data, data, sizeof(data));
    struct codec_snap a = {
        .from = 2, .to = 1, .term = 5, .index = 900, .xfer = 3, .seq = 8, .done = true};
    assert_int_equal(codec_encode_snap(CODEC_TYPE_SNAP_ACK, &a, buf, sizeof(buf), &len), RK_OK);
    assert_int_equal(codec_decode(buf, len, rk_alloc_libc(), &out, &err), RK_OK);
    assert_int_equal(out.type, CODEC_TYPE_SNAP_ACK);
    assert_true(out.snap.done);
    assert_int_equal(out.snap.seq, 8);
    assert_int_equal(out.snap.xfer, 3);
}

static void test_snap_chunk_longer_than_its_frame_is_malformed(void **state)
{
    (void)state;
    static const uint8_t data[8] = {0};
    struct codec_snap f = {
        .from = 1, .to = 2, .term = 5, .index = 9, .snap_term = 4, .data = data, .len = 8};
    uint8_t buf[256];
    size_t len = 0;
    assert_int_equal(codec_encode_snap(CODEC_TYPE_SNAP, &f, buf, sizeof(buf), &len), RK_OK);
    /* len claims 9 bytes where 8 follow */
    buf[len - sizeof(data) - 4] = 9;
    fix_header(buf, len);
    expect_error(buf, len, RK_EMALFORMED, "snap", "data", NULL);
}

static void test_snap_last_flag_must_be_a_boolean(void **state)
{
    (void)state;
    struct codec_snap f = {.from = 1, .to = 2, .term = 5, .index = 9, .snap_term = 4};
    uint8_t buf[256];
    size_t len = 0;
    assert_int_equal(codec_encode_snap(CODEC_TYPE_SNAP, &f, buf, sizeof(buf), &len), RK_OK);
    buf[len - 4 - 4 - 1] = 2; /* the last byte, before crc u32 and len u32 */
    fix_header(buf, len);
    expect_error(buf, len, RK_EMALFORMED, "snap", "last", NULL);
}

/* ---- fragments (FRAG, protocol 2) ------------------------------------------------------ */

#define FRAG_STREAM_CAP (8u << 20)
#define FRAG_FRAMES_MAX 64

/* A stream as peer.c writes it: frames over CODEC_FRAG_MAX in pieces, a small frame written
 * between two pieces now and then; `want` lists the whole frames in the order the receiver must
 * produce them (a big one once its last piece is in). */
struct frag_stream {
    uint8_t *bytes;
    size_t len;
    const uint8_t *want[FRAG_FRAMES_MAX];
    size_t want_len[FRAG_FRAMES_MAX];
    size_t n_want;
};

static void fs_put(struct frag_stream *fs, const void *p, size_t n)
{
    assert_true(fs->len + n <= FRAG_STREAM_CAP);
    memcpy(fs->bytes + fs->len, p, n);
    fs->len += n;
}

static void fs_want(struct frag_stream *fs, const uint8_t *frame, size_t len)
{
    assert_true(fs->n_want < FRAG_FRAMES_MAX);
    fs->want[fs->n_want] = frame;
    fs->want_len[fs->n_want++] = len;
}

/* Writes big (in pieces) with the small frames smalls[0..n_small) interleaved between them. */
static void fs_fragmented(struct frag_stream *fs, const uint8_t *big, size_t big_len,
                          const uint8_t *const *smalls, const size_t *small_lens, size_t n_small)
{
    size_t k = 0;
    for (size_t off = 0; off < big_len;) {
        uint32_t piece =
            big_len - off < CODEC_FRAG_MAX ? (uint32_t)(big_len - off) : CODEC_FRAG_MAX;
        uint8_t hdr[CODEC_FRAG_HEADER_SIZE];
        codec_frag_header(hdr, (uint32_t)big_len, (uint32_t)off, big + off, piece);
        fs_put(fs, hdr, sizeof(hdr));
        fs_put(fs, big + off, piece);
        off += piece;
        if (off < big_len && k < n_small) {
            fs_put(fs, smalls[k], small_lens[k]);
            fs_want(fs, smalls[k], small_lens[k]);
            k++;
        }
    }
    fs_want(fs, big, big_len);
    for (; k < n_small; k++) {
        fs_put(fs, smalls[k], small_lens[k]);
        fs_want(fs, smalls[k], small_lens[k]);
    }
}

/* An APPEND of one entry of n data bytes (pattern from seed), encoded; caller frees. */
static uint8_t *big_append(size_t n, uint8_t seed, size_t *len)
{
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 31 + seed + (i >> 12));
    struct raft_entry e = {
        .term = 3, .index = 11, .type = RAFT_ENTRY_NORMAL, .data = data, .len = (uint32_t)n};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 3,
                         .log_index = 10,
                         .log_term = 3,
                         .commit = 9,
                         .n_entries = 1,
                         .entries = &e};
    uint8_t *buf = encode_new(&m, len);
    free(data);
    return buf;
}

static uint8_t *small_heartbeat(uint64_t ctx, size_t *len)
{
    struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3, .ctx = ctx};
    return encode_new(&m, len);
}

/* Feeds fs->bytes cut at random points through the splitter and the reassembler, as peer.c
 * does, and checks that exactly the wanted frames come out, byte for byte, in order. */
static void feed_split(const struct frag_stream *fs, struct rk_prng *rng, const struct rk_alloc *a)
{
    struct codec_reasm ra;
    codec_reasm_init(&ra, a, CODEC_MAX_FRAME_DEFAULT);
    uint8_t *in = malloc(fs->len);
    assert_non_null(in);
    size_t have = 0, off = 0, got = 0;
    for (size_t pos = 0; pos < fs->len;) {
        size_t cut = 1 + (size_t)rk_prng_below(rng, rk_prng_below(rng, 4) == 0 ? 64 : 700000);
        if (cut > fs->len - pos)
            cut = fs->len - pos;
        memcpy(in + have, fs->bytes + pos, cut);
        have += cut;
        pos += cut;
        for (;;) {
            size_t flen = 0;
            struct rk_errmsg err = {{0}};
            int rc = codec_frame_peek(in + off, have - off, CODEC_MAX_FRAME_DEFAULT, &flen, &err);
            if (rc == RK_EAGAIN)
                break;
            assert_int_equal(rc, RK_OK);
            const uint8_t *whole = NULL;
            size_t wlen = 0;
            rc = codec_reasm_feed(&ra, in + off, flen, &whole, &wlen, &err);
            off += flen;
            if (rc == RK_EAGAIN)
                continue;
            if (rc != RK_OK)
                fail_msg("reassembly: %s", err.text);
            assert_true(got < fs->n_want);
            assert_int_equal(wlen, fs->want_len[got]);
            assert_memory_equal(whole, fs->want[got], wlen);
            struct codec_frame f;
            assert_int_equal(codec_decode(whole, wlen, a, &f, &err), RK_OK);
            codec_frame_free(a, &f);
            got++;
        }
    }
    assert_int_equal(got, fs->n_want);
    assert_int_equal(off, fs->len);
    codec_reasm_free(&ra);
    free(in);
}

static void test_frag_any_split_gives_the_same_frames(void **state)
{
    (void)state;
    struct counting c;
    struct rk_alloc a = counting_alloc(&c);
    size_t len1, len2, hl[6];
    /* Exactly a multiple of the piece size, and one byte over: the last piece's edge. */
    uint8_t *big1 = big_append(3 * CODEC_FRAG_MAX - 82, 1, &len1);
    uint8_t *big2 = big_append(CODEC_FRAG_MAX + 1, 2, &len2);
    assert_int_equal(len1 % CODEC_FRAG_MAX, 0);
    uint8_t *hb[6];
    for (size_t i = 0; i < 6; i++)
        hb[i] = small_heartbeat(100 + i, &hl[i]);
    struct frag_stream fs = {.bytes = malloc(FRAG_STREAM_CAP)};
    assert_non_null(fs.bytes);
    fs_put(&fs, hb[0], hl[0]);
    fs_want(&fs, hb[0], hl[0]);
    fs_fragmented(&fs, big1, len1, (const uint8_t *const *)hb + 1, hl + 1, 3);
    fs_fragmented(&fs, big2, len2, (const uint8_t *const *)hb + 4, hl + 4, 2);
    struct rk_prng rng;
    rk_prng_seed(&rng, 12);
    for (int round = 0; round < 60; round++)
        feed_split(&fs, &rng, &a);
    assert_int_equal(c.live, 0);
    for (size_t i = 0; i < 6; i++)
        free(hb[i]);
    free(big1);
    free(big2);
    free(fs.bytes);
}

/* Feeds the frames [0..n) to a fresh reassembler; the last must fail with rc and every text. */
static void expect_frag_error(const uint8_t *const *frames, const size_t *lens, size_t n,
                              uint32_t max_frame, int want_rc, const char *text)
{
    struct counting c;
    struct rk_alloc a = counting_alloc(&c);
    struct codec_reasm ra;
    codec_reasm_init(&ra, &a, max_frame);
    int rc = RK_OK;
    struct rk_errmsg err = {{0}};
    for (size_t i = 0; i < n; i++) {
        const uint8_t *whole;
        size_t wlen;
        rc = codec_reasm_feed(&ra, frames[i], lens[i], &whole, &wlen, &err);
        if (i + 1 < n)
            assert_int_equal(rc, RK_EAGAIN);
    }
    if (rc != want_rc)
        fail_msg("rc %s, want %s (%s)", rk_strerror(rc), rk_strerror(want_rc), err.text);
    if (strstr(err.text, text) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.text, text);
    codec_reasm_free(&ra);
    assert_int_equal(c.live, 0);
}

/* A piece as its own frame: header + data. */
static uint8_t *piece_frame(const uint8_t *frame, uint32_t total, uint32_t off, uint32_t n,
                            size_t *len)
{
    uint8_t *p = malloc(CODEC_FRAG_HEADER_SIZE + n);
    assert_non_null(p);
    codec_frag_header(p, total, off, frame + off, n);
    memcpy(p + CODEC_FRAG_HEADER_SIZE, frame + off, n);
    *len = CODEC_FRAG_HEADER_SIZE + n;
    return p;
}

static void test_frag_bad_pieces_are_refused_with_a_message(void **state)
{
    (void)state;
    size_t blen;
    uint8_t *big = big_append(2 * CODEC_FRAG_MAX, 5, &blen);
    uint32_t total = (uint32_t)blen, P = CODEC_FRAG_MAX;
    size_t l0, l1, l2;
    uint8_t *p0 = piece_frame(big, total, 0, P, &l0);
    uint8_t *p1 = piece_frame(big, total, P, P, &l1);
    uint8_t *p2 = piece_frame(big, total, 2 * P, total - 2 * P, &l2);
    { /* a piece skipped */
        const uint8_t *f[] = {p0, p2};
        size_t l[] = {l0, l2};
        expect_frag_error(f, l, 2, CODEC_MAX_FRAME_DEFAULT, RK_EMALFORMED, "does not follow");
    }
    { /* a piece before any first one */
        const uint8_t *f[] = {p1};
        size_t l[] = {l1};
        expect_frag_error(f, l, 1, CODEC_MAX_FRAME_DEFAULT, RK_EMALFORMED, "does not follow");
    }
    { /* a new frame while one is half in */
        const uint8_t *f[] = {p0, p0};
        size_t l[] = {l0, l0};
        expect_frag_error(f, l, 2, CODEC_MAX_FRAME_DEFAULT, RK_EMALFORMED, "a new frame starts");
    }
    { /* over the receiver's frame limit */
        const uint8_t *f[] = {p0};
        size_t l[] = {l0};
        expect_frag_error(f, l, 1, total - 1, RK_EMALFORMED, "over the");
    }
    { /* a damaged piece: its CRC */
        p1[CODEC_FRAG_HEADER_SIZE + 100] ^= 1;
        const uint8_t *f[] = {p0, p1};
        size_t l[] = {l0, l1};
        expect_frag_error(f, l, 2, CODEC_MAX_FRAME_DEFAULT, RK_ECORRUPT, "crc32c");
        p1[CODEC_FRAG_HEADER_SIZE + 100] ^= 1;
    }
    { /* a total that changes between pieces */
        size_t lx;
        uint8_t *px = piece_frame(big, total, P, P, &lx);
        codec_frag_header(px, total + 1, P, big + P, P);
        const uint8_t *f[] = {p0, px};
        size_t l[] = {l0, lx};
        expect_frag_error(f, l, 2, CODEC_MAX_FRAME_DEFAULT, RK_EMALFORMED, "does not follow");
        free(px);
    }
    { /* a piece that runs past its total (CRC fixed up: the field check must catch it) */
        uint8_t bad[CODEC_FRAG_HEADER_SIZE + 16];
        memcpy(bad + CODEC_FRAG_HEADER_SIZE, big, 16);
        codec_frag_header(bad, 64, 0, big, 16);
        bad[CODEC_FRAME_HEADER_SIZE + 1] = 9; /* total 64 -> 9: 16 bytes do not fit */
        uint32_t crc = rk_crc32c(0, bad + CODEC_FRAME_HEADER_SIZE, sizeof(bad) - 8);
        for (int i = 0; i < 4; i++)
            bad[4 + i] = (uint8_t)(crc >> (8 * i));
        const uint8_t *f[] = {bad};
        size_t l[] = {sizeof(bad)};
        expect_frag_error(f, l, 1, CODEC_MAX_FRAME_DEFAULT, RK_EMALFORMED, "beyond the 9-byte");
    }
    { /* pieces that make a FRAG frame: nested */
        uint8_t inner[CODEC_FRAG_HEADER_SIZE + 4] = {0};
        codec_frag_header(inner, 4, 0, (const uint8_t *)"abcd", 4);
        memcpy(inner + CODEC_FRAG_HEADER_SIZE, "abcd", 4);
        size_t ln;
        uint8_t *pn = piece_frame(inner, sizeof(inner), 0, sizeof(inner), &ln);
        const uint8_t *f[] = {pn};
        size_t l[] = {ln};
        expect_frag_error(f, l, 1, CODEC_MAX_FRAME_DEFAULT, RK_EMALFORMED, "nested");
        free(pn);
    }
    /* and the three in order make the frame */
    struct codec_reasm ra;
    codec_reasm_init(&ra, rk_alloc_libc(), CODEC_MAX_FRAME_DEFAULT);
    const uint8_t *whole = NULL;
    size_t wlen = 0;
    struct rk_errmsg err = {{0}};
    assert_int_equal(codec_reasm_feed(&ra, p0, l0, &whole, &wlen, &err), RK_EAGAIN);
    assert_int_equal(codec_reasm_feed(&ra, p1, l1, &whole, &wlen, &err), RK_EAGAIN);
    assert_int_equal(codec_reasm_feed(&ra, p2, l2, &whole, &wlen, &err), RK_OK);
    assert_int_equal(wlen, blen);
    assert_memory_equal(whole, big, blen);
    codec_reasm_free(&ra);
    free(p0);
    free(p1);
    free(p2);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_pre_vote),
        cmocka_unit_test(test_round_trip_pre_vote_resp),
        cmocka_unit_test(test_round_trip_vote),
        cmocka_unit_test(test_round_trip_vote_resp),
        cmocka_unit_test(test_round_trip_append_resp),
        cmocka_unit_test(test_round_trip_heartbeat),
        cmocka_unit_test(test_round_trip_heartbeat_resp),
        cmocka_unit_test(test_round_trip_timeout_now),
        cmocka_unit_test(test_round_trip_read_index),
        cmocka_unit_test(test_round_trip_read_index_resp),
        cmocka_unit_test(test_round_trip_false_booleans),
        cmocka_unit_test(test_round_trip_append_zero_entries),
        cmocka_unit_test(test_round_trip_append_one_entry),
        cmocka_unit_test(test_round_trip_append_many_entries_with_empty_data),
        cmocka_unit_test(test_round_trip_handshake),
        cmocka_unit_test(test_handshake_magic_is_rkv1_on_the_wire),
        cmocka_unit_test(test_decoded_entry_data_points_into_frame),
        cmocka_unit_test(test_reencode_of_decoded_gives_identical_bytes),
        cmocka_unit_test(test_size_equals_encoded_length),
        cmocka_unit_test(test_encode_into_too_small_buffer_is_etoobig),
        cmocka_unit_test(test_peek_every_prefix_is_eagain),
        cmocka_unit_test(test_peek_whole_frame_followed_by_more_is_ok),
        cmocka_unit_test(test_peek_zero_length_is_malformed),
        cmocka_unit_test(test_peek_oversized_length_is_malformed),
        cmocka_unit_test(test_decode_every_truncation_fails),
        cmocka_unit_test(test_decode_truncated_payload_names_field_and_offset),
        cmocka_unit_test(test_decode_every_bit_flip_is_detected),
        cmocka_unit_test(test_decode_unknown_type_is_malformed),
        cmocka_unit_test(test_frag_any_split_gives_the_same_frames),
        cmocka_unit_test(test_frag_bad_pieces_are_refused_with_a_message),
        cmocka_unit_test(test_forward_round_trips_with_data),
        cmocka_unit_test(test_snap_and_ack_round_trip),
        cmocka_unit_test(test_snap_chunk_longer_than_its_frame_is_malformed),
        cmocka_unit_test(test_snap_last_flag_must_be_a_boolean),
        cmocka_unit_test(test_forward_resp_round_trips),
        cmocka_unit_test(test_forward_truncations_and_bad_status_are_malformed),
        cmocka_unit_test(test_decode_bad_bool_is_malformed),
        cmocka_unit_test(test_decode_bad_entry_type_is_malformed),
        cmocka_unit_test(test_decode_non_consecutive_entry_index_is_malformed),
        cmocka_unit_test(test_decode_entry_index_wraparound_is_malformed),
        cmocka_unit_test(test_decode_trailing_garbage_is_malformed),
        cmocka_unit_test(test_decode_length_field_over_buffer_is_malformed),
        cmocka_unit_test(test_decode_entry_data_longer_than_frame_is_malformed),
        cmocka_unit_test(test_decode_huge_n_entries_allocates_nothing),
        cmocka_unit_test(test_decode_allocation_is_bounded_by_frame_length),
        cmocka_unit_test(test_decode_allocation_failure_is_enomem_without_leak),
        cmocka_unit_test(test_decode_handshake_bad_magic_is_malformed),
        cmocka_unit_test(test_decode_handshake_unsupported_version_is_malformed),
        cmocka_unit_test(test_decode_handshake_of_protocol_3_is_refused_by_version),
        cmocka_unit_test(test_frame_free_is_safe_on_zeroed_and_freed_frames),
        cmocka_unit_test(test_random_round_trip_10000),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
