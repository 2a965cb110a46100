/*
 * fuzz_kvcmd.c — the kv state machine's entries (kv.h): version-1 and generic (version-2)
 * commands, transactions and their watches, applied to a kv over a memstore, with restarts.
 *
 * Input: parts (fuzz_util.h). A part is one log entry's data, applied at the next index; a part
 * of the one byte 0xfe is a restart instead (a new kv over the same store); a part starting with
 * 0xfd is [0xfd][time u64] setting the read time for what follows. Properties, for every input:
 *   - kv_apply never fails over a memstore with the libc allocator, and gives one of the
 *     statuses of a consumed entry; a result it returns passes kv_res_check;
 *   - what kv_cmd2_decode accepts re-encodes to the same bytes (one encoding per command);
 *   - kv_read_cmd of any part either refuses it or returns a checked result;
 *   - kv_valid (sessions, records, key counts, expiry index: K1-K6) after every 16 entries and at
 *     the end, and a restart finds the same count, clock, expiring keys and applied index.
 */
#include "fuzz_util.h"

#include "kv/kv.h"
#include "kv/memstore.h"

#define FZ_MAX_ENTRIES 256u

/* Rebuilds a kv_cmd2 from a decoded view and checks it encodes to the same bytes. */
static void check_reencodes(const uint8_t *data, size_t len, const struct kv_cmd2_view *v)
{
    struct kv_watch *w = calloc(v->n_watch + 1, sizeof(*w));
    struct kv_op2 *ops = calloc(v->n_ops + 1, sizeof(*ops));
    size_t n_args = 0;
    struct kv_cmd2_iter it, ai;
    struct kv_op_view op;
    kv_cmd2_ops(v, &it);
    while (kv_cmd2_next_op(&it, &op))
        n_args += op.argc;
    struct kv_arg *args = calloc(n_args + 1, sizeof(*args));
    uint8_t *buf = malloc(len + 1);
    FZ_CHECK(w != NULL && ops != NULL && args != NULL && buf != NULL, "out of memory");
    kv_cmd2_watches(v, &it);
    for (uint32_t i = 0; kv_cmd2_next_watch(&it, &w[i]); i++)
        ;
    kv_cmd2_ops(v, &it);
    size_t a = 0;
    for (uint32_t i = 0; kv_cmd2_next_op(&it, &op); i++) {
        ops[i] = (struct kv_op2){.code = op.code,
                                 .db = op.db,
                                 .flags = op.flags,
                                 .num = op.num,
                                 .argc = op.argc,
                                 .argv = args + a};
        kv_op_args(&op, &ai);
        while (kv_op_next_arg(&ai, &args[a]))
            a++;
    }
    struct kv_cmd2 c = {.flags = v->flags,
                        .client_id = v->client_id,
                        .seq = v->seq,
                        .time_ms = v->time_ms,
                        .watch_index = v->watch_index,
                        .n_watch = v->n_watch,
                        .watches = w,
                        .n_ops = v->n_ops,
                        .ops = ops};
    size_t out = 0;
    int rc = kv_cmd2_encode(&c, buf, len + 1, &out);
    FZ_CHECK(rc == RK_OK, "a decoded command does not encode: %s", rk_strerror(rc));
    FZ_CHECK(out == len && memcmp(buf, data, len) == 0, "re-encoding differs (%zu vs %zu)", out,
             len);
    free(buf);
    free(args);
    free(ops);
    free(w);
}

struct snapshot_of {
    uint64_t count, clock, expiring, applied;
};

static struct snapshot_of observe(const struct kv *kv)
{
    return (struct snapshot_of){.count = kv_count(kv),
                                .clock = kv_clock_ms(kv),
                                .expiring = kv_expiring_count(kv),
                                .applied = kv_applied_index(kv)};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct rk_alloc *a = rk_alloc_libc();
    struct kv_store *store = NULL;
    FZ_CHECK(kv_memstore_create(a, &store) == RK_OK, "memstore");
    struct kv_config cfg = {.alloc = a, .store = store, .max_sessions = 4};
    struct kv *kv = NULL;
    FZ_CHECK(kv_create(&cfg, &kv, NULL) == RK_OK, "kv_create");
    struct fz_bytes in = {.p = data, .n = size};
    const uint8_t *p = NULL;
    size_t n = 0;
    uint64_t index = 0;
    for (uint32_t e = 0; e < FZ_MAX_ENTRIES && fz_part(&in, &p, &n); e++) {
        if (n == 1 && p[0] == 0xfe) {
            struct snapshot_of before = observe(kv);
            kv_destroy(kv);
            struct rk_errmsg err = {{0}};
            int rc = kv_create(&cfg, &kv, &err);
            FZ_CHECK(rc == RK_OK, "restart: %s", err.text);
            struct snapshot_of after = observe(kv);
            FZ_CHECK(after.count == before.count && after.clock == before.clock &&
                         after.expiring == before.expiring,
                     "a restart changed the state");
            /* The store keeps no index for entries that write nothing: the log replays them. */
            FZ_CHECK(after.applied <= before.applied, "applied index moved forward");
            index = before.applied;
            continue;
        }
        if (n == 9 && p[0] == 0xfd) {
            uint64_t t = 0;
            for (int i = 0; i < 8; i++)
                t |= (uint64_t)p[1 + i] << (8 * i);
            kv_set_read_time_ms(kv, t);
            continue;
        }
        struct kv_cmd2_view v;
        if (kv_cmd2_decode(p, n, &v, NULL) == RK_OK)
            check_reencodes(p, n, &v);
        const uint8_t *res = NULL;
        uint32_t res_len = 0;
        int rc = kv_read_cmd(kv, p, n, &res, &res_len);
        FZ_CHECK(rc == RK_OK || rc == RK_EINVAL, "kv_read_cmd: %s", rk_strerror(rc));
        if (rc == RK_OK)
            FZ_CHECK(kv_res_check(res, res_len, NULL) == RK_OK, "a read's result");
        struct kv_result r;
        rc = kv_apply(kv, ++index, p, (uint32_t)n, &r);
        FZ_CHECK(rc == RK_OK, "kv_apply: %s", rk_strerror(rc));
        FZ_CHECK(r.status == KV_OK || r.status == KV_DUPLICATE || r.status == KV_STALE ||
                     r.status == KV_BAD_COMMAND || r.status == KV_NOT_INTEGER ||
                     r.status == KV_OVERFLOW,
                 "status %u", r.status);
        if (r.val_len > 0)
            FZ_CHECK(kv_res_check(r.val, r.val_len, NULL) == RK_OK, "a command's result");
        if (e % 16 == 15)
            FZ_CHECK(kv_valid(kv), "kv_valid after entry %u", e);
        fz_use(r.status);
    }
    FZ_CHECK(kv_valid(kv), "kv_valid at the end");
    kv_destroy(kv);
    store->ops->destroy(store);
    return 0;
}
