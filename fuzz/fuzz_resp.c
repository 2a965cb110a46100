/*
 * fuzz_resp.c — the RESP request parser (core/resp): what a client connection feeds it, and the
 * RESP3 reply encoders on what it returns.
 *
 * Input: [limits u8][split seed u8][the bytes a client sent].
 *   limits bit 0: small limits (max_args 4, max_bulk 16, max_inline 32) instead of the defaults;
 *   limits bit 1: no scratch buffer (an inline argument with quotes or escapes is then RK_ETOOBIG).
 *
 * Properties:
 *   1. Parsing the whole stream request after request: RK_OK consumes 0 < n <= left bytes and
 *      returns at most cap_args arguments, each inside the buffer or the scratch and within the
 *      limits; any other result leaves argc 0 and consumed 0 (P4), and ends the stream.
 *   2. Round trip: each request, re-encoded as a multibulk with the reply encoders
 *      (resp_array, resp_bulk), parses back to the same arguments, consuming exactly the
 *      encoding.
 *   3. The same stream delivered in chunks (sizes drawn from the split seed), as a connection's
 *      buffer fills, parsed after each chunk: every request comes out identical (consumed bytes
 *      and arguments), a partial request is RK_EAGAIN, and an error comes at the same request
 *      with the same code. Each attempt parses an exact-size copy, so ASan catches a read past
 *      what has arrived.
 *   4. RESP3: each request's arguments encoded as a RESP3 reply (a map header, a set header, a
 *      verbatim string per argument, a null and a boolean) take exactly the bytes the size
 *      functions said, start with their type bytes, and nothing is written when one byte is
 *      missing.
 */
#include <inttypes.h>

#include "common/prng.h"
#include "fuzz_util.h"
#include "resp/resp.h"

#define RESP_FZ_CAP_ARGS 64u

/* What one parse returned, as compared across the two ways of feeding. */
struct resp_fz_result {
    int rc;
    size_t consumed;
    uint32_t argc;
    uint64_t digest;
};

struct resp_fz_parser {
    struct resp_limits lim;
    struct resp_arg args[RESP_FZ_CAP_ARGS];
    uint8_t *scratch;
    size_t cap_scratch;
};

static uint64_t resp_fz_digest(const struct resp_request *req)
{
    uint64_t h = fz_hash_u64(0, req->argc);
    for (uint32_t i = 0; i < req->argc; i++) {
        h = fz_hash_u64(h, req->args[i].len);
        h = fz_hash(h, req->args[i].ptr, (size_t)req->args[i].len);
    }
    return h;
}

static bool resp_fz_inside(const uint8_t *p, uint64_t n, const uint8_t *base, size_t len)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - (size_t)n;
}

static struct resp_fz_result resp_fz_parse(struct resp_fz_parser *ps, const uint8_t *buf,
                                           size_t len, struct resp_request *req)
{
    req->args = ps->args;
    req->cap_args = RESP_FZ_CAP_ARGS;
    req->scratch = ps->scratch;
    req->cap_scratch = ps->cap_scratch;
    req->argc = 12345; /* P4: overwritten */
    struct resp_fz_result r = {0, 99999, 0, 0};
    struct rk_errmsg err = {{0}};
    r.rc = resp_parse(buf, len, &ps->lim, req, &r.consumed, &err);
    r.argc = req->argc;
    if (r.rc != RK_OK) {
        FZ_CHECK(r.rc == RK_EAGAIN || r.rc == RK_EMALFORMED || r.rc == RK_ETOOBIG, "rc %s",
                 rk_strerror(r.rc));
        FZ_CHECK(r.consumed == 0 && r.argc == 0, "P4: %s with consumed %zu, argc %" PRIu32,
                 rk_strerror(r.rc), r.consumed, r.argc);
        FZ_CHECK(r.rc == RK_EAGAIN || err.text[0] != '\0', "%s without a message",
                 rk_strerror(r.rc));
        return r;
    }
    FZ_CHECK(r.consumed > 0 && r.consumed <= len, "consumed %zu of %zu", r.consumed, len);
    FZ_CHECK(r.argc <= RESP_FZ_CAP_ARGS, "argc %" PRIu32, r.argc);
    uint64_t max_bulk = ps->lim.max_bulk != 0 ? ps->lim.max_bulk : RESP_MAX_BULK_DEFAULT;
    uint32_t max_args = ps->lim.max_args != 0 ? ps->lim.max_args : RESP_MAX_ARGS_DEFAULT;
    FZ_CHECK(r.argc <= max_args, "argc %" PRIu32 " over max_args %" PRIu32, r.argc, max_args);
    for (uint32_t i = 0; i < r.argc; i++) {
        const struct resp_arg *a = &req->args[i];
        FZ_CHECK(resp_fz_inside(a->ptr, a->len, buf, r.consumed) ||
                     (ps->scratch != NULL &&
                      resp_fz_inside(a->ptr, a->len, ps->scratch, ps->cap_scratch)),
                 "argument %" PRIu32 " (%" PRIu64 " bytes) points outside the request", i,
                 a->len);
        FZ_CHECK(a->len <= max_bulk || buf[0] != '*', "argument of %" PRIu64 " bytes", a->len);
    }
    r.digest = resp_fz_digest(req);
    return r;
}

/* Property 2: the multibulk encoding of req parses back to req. */
static void resp_fz_roundtrip(const struct resp_request *req, uint64_t digest)
{
    size_t size = resp_array_size(req->argc);
    for (uint32_t i = 0; i < req->argc; i++)
        size += resp_bulk_size(req->args[i].len);
    uint8_t *out = malloc(size);
    FZ_CHECK(out != NULL, "out of memory");
    size_t pos = 0;
    FZ_CHECK(!resp_array(out, size - 1, &pos, req->argc) || req->argc > 0,
             "an array header written into too small a buffer");
    pos = 0;
    FZ_CHECK(resp_array(out, size, &pos, req->argc), "array header of %" PRIu32, req->argc);
    for (uint32_t i = 0; i < req->argc; i++)
        FZ_CHECK(resp_bulk(out, size, &pos, req->args[i].ptr, req->args[i].len),
                 "bulk %" PRIu32, i);
    FZ_CHECK(pos == size, "encoded %zu bytes, sizes said %zu", pos, size);
    struct resp_fz_parser ps;
    memset(&ps, 0, sizeof(ps));
    struct resp_request back;
    struct resp_fz_result r = resp_fz_parse(&ps, out, size, &back);
    FZ_CHECK(r.rc == RK_OK, "re-encoded request: %s", rk_strerror(r.rc));
    FZ_CHECK(r.consumed == size, "re-encoded request: consumed %zu of %zu", r.consumed, size);
    FZ_CHECK(r.digest == digest, "re-encoded request parsed to other arguments");
    free(out);
}

/* Property 3: the stream in chunks gives the same sequence of results as whole. */
static void resp_fz_chunks(struct resp_fz_parser *ps, const uint8_t *data, size_t size,
                           const struct resp_fz_result *want, size_t n_want, uint8_t seed)
{
    struct rk_prng prng;
    rk_prng_seed(&prng, seed);
    size_t start = 0, avail = 0, k = 0;
    while (avail < size && k < n_want) {
        size_t chunk = 1 + (size_t)(rk_prng_next(&prng) % 24);
        avail = chunk > size - avail ? size : avail + chunk;
        for (;;) {
            size_t len = avail - start;
            uint8_t *copy = malloc(len == 0 ? 1 : len);
            FZ_CHECK(copy != NULL, "out of memory");
            memcpy(copy, data + start, len);
            struct resp_request req;
            struct resp_fz_result r = resp_fz_parse(ps, copy, len, &req);
            free(copy);
            if (r.rc == RK_EAGAIN && avail < size)
                break; /* wait for the next chunk */
            FZ_CHECK(k < n_want, "request %zu: more results in chunks than whole", k);
            const struct resp_fz_result *w = &want[k];
            FZ_CHECK(r.rc == w->rc, "request %zu at offset %zu: %s in chunks, %s whole", k, start,
                     rk_strerror(r.rc), rk_strerror(w->rc));
            FZ_CHECK(r.consumed == w->consumed && r.argc == w->argc && r.digest == w->digest,
                     "request %zu at offset %zu differs in chunks", k, start);
            k++;
            if (r.rc != RK_OK)
                return;
            start += r.consumed;
        }
    }
}

/* Property 4: RESP3 encodings of req's arguments are exactly as long as announced. */
static void resp_fz_resp3(const struct resp_request *req)
{
    size_t size = resp3_map_size(req->argc) + resp3_set_size(req->argc) + resp3_null_size() +
                  resp3_bool_size();
    for (uint32_t i = 0; i < req->argc; i++)
        size += resp3_verbatim_size(req->args[i].len);
    uint8_t *out = malloc(size);
    FZ_CHECK(out != NULL, "out of memory");
    size_t pos = 0;
    FZ_CHECK(resp3_map(out, size, &pos, req->argc) && out[0] == '%', "map header");
    size_t at = pos;
    FZ_CHECK(resp3_set(out, size, &pos, req->argc) && out[at] == '~', "set header");
    for (uint32_t i = 0; i < req->argc; i++) {
        at = pos;
        FZ_CHECK(resp3_verbatim(out, size, &pos, "txt", req->args[i].ptr, req->args[i].len),
                 "verbatim %" PRIu32, i);
        FZ_CHECK(out[at] == '=' && pos - at == resp3_verbatim_size(req->args[i].len),
                 "verbatim %" PRIu32 " size", i);
    }
    FZ_CHECK(resp3_null(out, size, &pos), "null");
    FZ_CHECK(!resp3_bool(out, pos + resp3_bool_size() - 1, &pos, true), "bool written short");
    FZ_CHECK(resp3_bool(out, size, &pos, true), "bool");
    FZ_CHECK(pos == size, "encoded %zu bytes, sizes said %zu", pos, size);
    FZ_CHECK(memcmp(out + size - 7, "_\r\n#t\r\n", 7) == 0, "null and bool bytes");
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t limits = data[0], seed = data[1];
    data += 2;
    size -= 2;
    struct resp_fz_parser ps;
    memset(&ps, 0, sizeof(ps));
    if ((limits & 1) != 0)
        ps.lim = (struct resp_limits){4, 16, 32};
    uint32_t max_inline = ps.lim.max_inline != 0 ? ps.lim.max_inline : RESP_MAX_INLINE_DEFAULT;
    if ((limits & 2) == 0) {
        ps.cap_scratch = max_inline;
        ps.scratch = malloc(ps.cap_scratch);
        FZ_CHECK(ps.scratch != NULL, "out of memory");
    }
    /* Property 1 (and 2 for each request), recording the results for 3. */
    struct resp_fz_result *want = malloc((size + 1) * sizeof(*want));
    FZ_CHECK(want != NULL, "out of memory");
    size_t n_want = 0, pos = 0;
    for (;;) {
        struct resp_request req;
        struct resp_fz_result r = resp_fz_parse(&ps, data + pos, size - pos, &req);
        FZ_CHECK(n_want <= size, "more requests than bytes");
        want[n_want++] = r;
        if (r.rc != RK_OK)
            break;
        resp_fz_roundtrip(&req, r.digest);
        resp_fz_resp3(&req);
        pos += r.consumed;
    }
    resp_fz_chunks(&ps, data, size, want, n_want, seed);
    fz_use(want[n_want - 1].digest + n_want);
    free(want);
    free(ps.scratch);
    return 0;
}
