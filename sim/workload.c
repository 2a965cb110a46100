/*
 * workload.c — builds the connection clients' generic commands (workload.h).
 *
 * Every op stays inside one key group, so that lincheck's components stay the groups. Values
 * are unique integers (INCRBY applies to them) and APPEND adds one digit (the value stays an
 * integer until it has too many digits, then INCRBY answers an error: also modelled). Times
 * to live are 20..300 ms, so that keys expire while the run goes on, under clock skew.
 */
#include "workload.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv.h"

#define WL_MAX_OPS 4u

struct wl_build {
    struct rk_prng *prng;
    char names[SCN_KEY_GROUP][16];
    uint32_t name_lens[SCN_KEY_GROUP];
    char vals[WL_MAX_OPS + SCN_KEY_GROUP][24];
    uint32_t nvals;
    struct kv_arg args[WL_MAX_OPS][2 * SCN_KEY_GROUP];
    struct kv_op2 ops[WL_MAX_OPS];
    uint32_t nops;
    uint32_t first, n;
    uint64_t uniq;
};

static uint64_t wl_range(struct wl_build *b, uint64_t lo, uint64_t hi)
{
    return rk_prng_range(b->prng, lo, hi);
}

static struct kv_arg wl_key(struct wl_build *b, uint32_t i)
{
    return (struct kv_arg){(const uint8_t *)b->names[i], b->name_lens[i]};
}

static struct kv_arg wl_value(struct wl_build *b)
{
    RK_ASSERT(b->nvals < WL_MAX_OPS + SCN_KEY_GROUP);
    char *v = b->vals[b->nvals++];
    int len = snprintf(v, 24, "%" PRIu64, b->uniq * 1000u + b->nvals * 10u);
    RK_ASSERT(len > 0 && len < 24);
    return (struct kv_arg){(const uint8_t *)v, (uint32_t)len};
}

static struct kv_op2 *wl_op(struct wl_build *b, uint8_t code, uint32_t argc)
{
    RK_ASSERT(b->nops < WL_MAX_OPS);
    struct kv_op2 *op = &b->ops[b->nops];
    memset(op, 0, sizeof(*op));
    op->code = code;
    op->argc = argc;
    op->argv = b->args[b->nops];
    b->nops++;
    return op;
}

/* One single-key op of a transaction (or a plain command) on key i of the group. */
static void wl_txn_op(struct wl_build *b, uint32_t i)
{
    struct kv_arg *a = b->args[b->nops];
    a[0] = wl_key(b, i);
    switch (wl_range(b, 0, 12)) {
    case 0:
    case 1: {
        struct kv_op2 *op = wl_op(b, KV_C_SET, 2);
        a[1] = wl_value(b);
        if (wl_range(b, 0, 2) == 0) {
            op->flags = KV_F_EXP | KV_F_MS;
            op->num = (int64_t)wl_range(b, 20, 300);
        }
        return;
    }
    case 2:
        wl_op(b, KV_C_GET, 1);
        return;
    case 3:
        wl_op(b, KV_C_INCRBY, 1)->num = (int64_t)wl_range(b, 1, 9);
        return;
    case 4: {
        wl_op(b, KV_C_APPEND, 2);
        char *v = b->vals[b->nvals++];
        v[0] = (char)('1' + wl_range(b, 0, 8));
        a[1] = (struct kv_arg){(const uint8_t *)v, 1};
        return;
    }
    case 5:
        wl_op(b, KV_C_DEL, 1);
        return;
    case 6:
        wl_op(b, KV_C_GETDEL, 1);
        return;
    case 7: {
        struct kv_op2 *op = wl_op(b, KV_C_EXPIRE, 1);
        op->flags = KV_F_MS;
        op->num = (int64_t)wl_range(b, 20, 300);
        return;
    }
    case 8:
        wl_op(b, KV_C_PERSIST, 1);
        return;
    case 9:
        wl_op(b, KV_C_STRLEN, 1);
        return;
    case 10:
        wl_op(b, KV_C_EXISTS, 1);
        return;
    case 11: {
        struct kv_op2 *op = wl_op(b, KV_C_SET, 2);
        a[1] = wl_value(b);
        op->flags = KV_F_KEEPTTL;
        return;
    }
    default:
        wl_op(b, KV_C_SETNX, 2);
        a[1] = wl_value(b);
        return;
    }
}

/* A short run of digits (SETRANGE's and APPEND's piece). */
static struct kv_arg wl_digits(struct wl_build *b, uint32_t n)
{
    char *v = b->vals[b->nvals++];
    for (uint32_t i = 0; i < n; i++)
        v[i] = (char)('1' + wl_range(b, 0, 8));
    return (struct kv_arg){(const uint8_t *)v, n};
}

/* An ACL SETUSER or DELUSER (users are replicated state: node/README.md "ACL users") of one
 * of four users, in a transaction: the digests and restarts then cover user records too. Always
 * valid rules, so SETUSER answers +OK; DELUSER's count depends on the history. */
static void wl_acl_op(struct wl_build *b)
{
    static const char *const names[4] = {"sim0", "sim1", "sim2", "sim3"};
    static const char *const rules[][4] = {
        /* every prefix of each row applies to any user: no pattern after allkeys */
        {"resetkeys", "~k*", "nopass", "+@read"},
        {"off", "resetkeys", "-@all", "+get"},
        {"resetkeys", "%R~k1*", "-@dangerous", "&*"},
        {"reset", "on", "allkeys", "+@all"},
    };
    struct kv_arg *a = b->args[b->nops];
    const char *name = names[wl_range(b, 0, 3)];
    a[0] = (struct kv_arg){(const uint8_t *)name, (uint32_t)strlen(name)};
    if (wl_range(b, 0, 3) == 0) {
        wl_op(b, KV_C_ACL_DELUSER, 1);
        return;
    }
    uint64_t r = wl_range(b, 0, 3);
    uint32_t nr = (uint32_t)wl_range(b, 1, 4);
    RK_ASSERT(1 + nr <= 2 * SCN_KEY_GROUP);
    for (uint32_t i = 0; i < nr; i++)
        a[1 + i] = (struct kv_arg){(const uint8_t *)rules[r][i], (uint32_t)strlen(rules[r][i])};
    wl_op(b, KV_C_ACL_SETUSER, 1 + nr);
}

void wl_build(struct rk_prng *prng, uint8_t kind, uint32_t key, uint32_t first, uint32_t n,
              uint64_t uniq, const struct wl_watch *w, struct wl_cmd *out)
{
    RK_ASSERT(n >= 1 && n <= SCN_KEY_GROUP && key >= first && key < first + n);
    struct wl_build b = {.prng = prng, .first = first, .n = n, .uniq = uniq};
    for (uint32_t i = 0; i < n; i++)
        b.name_lens[i] = (uint32_t)snprintf(b.names[i], sizeof(b.names[i]), "k%" PRIu32, first + i);
    uint32_t ki = key - first;
    struct kv_cmd2 cmd = {0};
    struct kv_watch watches[SCN_KEY_GROUP];
    bool group = true;
    memset(out, 0, sizeof(*out));
    switch (kind) {
    case WL_TXN:
    case WL_EXEC: {
        uint32_t nops = (uint32_t)wl_range(&b, kind == WL_EXEC ? 1 : 2, kind == WL_EXEC ? 3 : 4);
        for (uint32_t j = 0; j < nops; j++)
            wl_txn_op(&b, (uint32_t)wl_range(&b, 0, n - 1));
        if (kind == WL_TXN && b.nops < WL_MAX_OPS && wl_range(&b, 0, 7) == 0)
            wl_acl_op(&b);
        cmd.flags = KV_CMD2_MULTI;
        if (kind == WL_EXEC) {
            RK_ASSERT(w != NULL && w->n == n);
            for (uint32_t i = 0; i < n; i++)
                watches[i] = (struct kv_watch){.db = 0,
                                               .version = w->version[i],
                                               .key = (const uint8_t *)b.names[i],
                                               .key_len = b.name_lens[i]};
            cmd.watch_index = w->point;
            cmd.n_watch = n;
            cmd.watches = watches;
        }
        break;
    }
    case WL_WATCH: {
        struct kv_op2 *op = wl_op(&b, KV_C_WATCH, n);
        for (uint32_t i = 0; i < n; i++)
            b.args[0][i] = wl_key(&b, i);
        (void)op;
        out->read = true;
        break;
    }
    case WL_EXPIRE: {
        group = false;
        uint64_t x = wl_range(&b, 0, 7);
        struct kv_arg *a = b.args[0];
        a[0] = wl_key(&b, ki);
        if (x <= 1) {
            struct kv_op2 *op = wl_op(&b, KV_C_SET, 2);
            a[1] = wl_value(&b);
            op->flags = KV_F_EXP | KV_F_MS;
            op->num = (int64_t)wl_range(&b, 20, 300);
        } else if (x == 2) {
            struct kv_op2 *op = wl_op(&b, KV_C_EXPIRE, 1);
            op->flags = KV_F_MS;
            op->num = (int64_t)wl_range(&b, 20, 300);
        } else if (x == 3) {
            wl_op(&b, KV_C_PERSIST, 1);
        } else if (x == 4) {
            wl_op(&b, KV_C_TTL, 1)->flags = KV_F_MS;
            out->read = true;
        } else if (x == 5) {
            wl_op(&b, KV_C_GET, 1);
            out->read = true;
        } else if (x == 6) { /* GETEX PX ms | PERSIST | (nothing) */
            struct kv_op2 *op = wl_op(&b, KV_C_GETEX, 1);
            uint64_t y = wl_range(&b, 0, 2);
            if (y == 0) {
                op->flags = KV_F_EXP | KV_F_MS;
                op->num = (int64_t)wl_range(&b, 20, 300);
            } else if (y == 1) {
                op->flags = KV_F_PERSIST;
            }
        } else { /* SET KEEPTTL */
            wl_op(&b, KV_C_SET, 2)->flags = KV_F_KEEPTTL;
            a[1] = wl_value(&b);
        }
        break;
    }
    case WL_APPEND:
    case WL_GETDEL:
        group = false;
        b.args[0][0] = wl_key(&b, ki);
        if (kind == WL_GETDEL) {
            if (wl_range(&b, 0, 2) > 0) {
                wl_op(&b, KV_C_GETDEL, 1);
            } else { /* GETSET */
                wl_op(&b, KV_C_SET, 2)->flags = KV_F_GET;
                b.args[0][1] = wl_value(&b);
            }
            break;
        }
        switch (wl_range(&b, 0, 3)) {
        case 0:
        case 1:
            wl_op(&b, KV_C_APPEND, 2);
            b.args[0][1] = wl_digits(&b, 1);
            break;
        case 2:
            wl_op(&b, KV_C_SETRANGE, 2)->num = (int64_t)wl_range(&b, 0, 8);
            b.args[0][1] = wl_digits(&b, (uint32_t)wl_range(&b, 1, 3));
            break;
        default:
            wl_op(&b, KV_C_STRLEN, 1);
            out->read = true;
            break;
        }
        break;
    case WL_SETNX:
        if (n > 1 && wl_range(&b, 0, 1) == 0) {
            wl_op(&b, KV_C_MSETNX, 2 * n);
            for (uint32_t i = 0; i < n; i++) {
                b.args[0][2 * i] = wl_key(&b, i);
                b.args[0][2 * i + 1] = wl_value(&b);
            }
        } else {
            group = false;
            wl_op(&b, KV_C_SETNX, 2);
            b.args[0][0] = wl_key(&b, ki);
            b.args[0][1] = wl_value(&b);
        }
        break;
    case WL_BITS: {
        group = false;
        struct kv_arg *a = b.args[0];
        a[0] = wl_key(&b, ki);
        uint64_t x = wl_range(&b, 0, 5);
        if (x == 5 && n >= 2) { /* BITOP op dest src...: every key of the group */
            group = true;
            int64_t bop = (int64_t)wl_range(&b, 0, 3);
            uint32_t nsrc = bop == 3 ? 1 : (uint32_t)wl_range(&b, 1, n - 1);
            uint32_t dst = (uint32_t)wl_range(&b, 0, n - 1);
            a[0] = wl_key(&b, dst);
            for (uint32_t i = 0; i < nsrc; i++)
                a[1 + i] = wl_key(&b, (uint32_t)wl_range(&b, 0, n - 1));
            wl_op(&b, KV_C_BITOP, 1 + nsrc)->num = bop;
        } else if (x <= 1 || x == 5) { /* SETBIT: offsets in the first 5 bytes */
            wl_op(&b, KV_C_SETBIT, 1)->num =
                (int64_t)wl_range(&b, 0, 39) * 2 + (int64_t)wl_range(&b, 0, 1);
        } else if (x == 2) {
            wl_op(&b, KV_C_GETBIT, 1)->num = (int64_t)wl_range(&b, 0, 47);
            out->read = true;
        } else if (x == 3) { /* BITCOUNT, of the value or of a byte range */
            if (wl_range(&b, 0, 1) == 0) {
                wl_op(&b, KV_C_BITCOUNT, 1);
            } else {
                static const char *const ends[] = {"-2", "-1", "0", "1", "3"};
                for (int i = 1; i <= 2; i++) {
                    const char *e = ends[wl_range(&b, 0, 4)];
                    a[i] = (struct kv_arg){(const uint8_t *)e, (uint32_t)strlen(e)};
                }
                wl_op(&b, KV_C_BITCOUNT, 3);
            }
            out->read = true;
        } else { /* BITPOS key 0|1 */
            wl_op(&b, KV_C_BITPOS, 1)->num = (int64_t)wl_range(&b, 0, 1);
            out->read = true;
        }
        break;
    }
    default: { /* WL_RENAME */
        RK_ASSERT(kind == WL_RENAME && n >= 2);
        uint32_t dst = (ki + 1 + (uint32_t)wl_range(&b, 0, n - 2)) % n;
        static const uint8_t codes[4] = {KV_C_RENAME, KV_C_RENAMENX, KV_C_COPY, KV_C_COPY};
        uint64_t y = wl_range(&b, 0, 3);
        struct kv_op2 *op = wl_op(&b, codes[y], 2);
        if (y == 3)
            op->flags = KV_F_REPLACE;
        b.args[0][0] = wl_key(&b, ki);
        b.args[0][1] = wl_key(&b, dst);
        break;
    }
    }
    cmd.n_ops = b.nops;
    cmd.ops = b.ops;
    size_t len = 0;
    int rc = kv_cmd2_encode(&cmd, out->buf, sizeof(out->buf), &len);
    RK_ASSERT(rc == RK_OK);
    out->len = (uint32_t)len;
    if (group) {
        out->n_keys = n;
        for (uint32_t i = 0; i < n; i++)
            out->keys[i] = first + i;
    } else {
        out->n_keys = 1;
        out->keys[0] = key;
    }
}

bool wl_watch_parse(const uint8_t *res, uint32_t len, uint32_t n, struct wl_watch *w)
{
    struct kv_res_iter it;
    struct kv_res_item item;
    if (kv_res_check(res, len, NULL) != RK_OK)
        return false;
    kv_res_begin(&it, res, len);
    if (!kv_res_next(&it, &item) || item.type != KV_RES_ARRAY || item.num != (int64_t)n + 1)
        return false;
    if (!kv_res_next(&it, &item) || item.type != KV_RES_INT || item.num < 0)
        return false;
    w->point = (uint64_t)item.num;
    w->n = n;
    for (uint32_t i = 0; i < n; i++) {
        if (!kv_res_next(&it, &item) || item.type != KV_RES_INT || item.num < 0)
            return false;
        w->version[i] = (uint64_t)item.num;
    }
    return true;
}
