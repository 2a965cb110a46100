/*
 * acltab.c — the state machine's ACL users (kv/acl.h): the table, its records, and the ops
 * ACL_SETUSER and ACL_DELUSER.
 *
 * Invariants:
 *   T1  users[0, n_users) are sorted by name (bytewise; a prefix first), names unique, and
 *       "default" is among them.
 *   T2  every user but a built-in "default" has an 'a' + name record that decodes to it
 *       (n_acl_records counts them; kv_acl_valid checks).
 * Memory is changed only after the store accepted the writes of the op (store first, memory
 * last, as kv_rec_put); a store error stops the replica anyway (kv.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv_int.h"

static int name_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* The position of name in users (found) or where it would go. */
static uint32_t find(const struct kv *kv, const uint8_t *name, size_t len, bool *found)
{
    uint32_t lo = 0, hi = kv->n_users;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct kv_acl_user *u = kv->users[mid];
        int c = name_cmp((const uint8_t *)u->name, u->name_len, name, len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void insert_at(struct kv *kv, uint32_t at, struct kv_acl_user *u)
{
    RK_ASSERT(kv->n_users < KV_ACL_MAX_USERS);
    memmove(&kv->users[at + 1], &kv->users[at], (size_t)(kv->n_users - at) * sizeof(kv->users[0]));
    kv->users[at] = u;
    kv->n_users++;
}

static void remove_at(struct kv *kv, uint32_t at)
{
    rk_free(kv->alloc, kv->users[at]);
    memmove(&kv->users[at], &kv->users[at + 1],
            (size_t)(kv->n_users - at - 1) * sizeof(kv->users[0]));
    kv->n_users--;
}

static bool is_default(const uint8_t *name, size_t len)
{
    return len == 7 && memcmp(name, "default", 7) == 0;
}

int kv_acl_load(struct kv *kv, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                uint32_t val_len, struct rk_errmsg *err)
{
    bool found = false;
    uint32_t at = find(kv, key + 1, key_len - 1, &found);
    if (found || kv->n_users == KV_ACL_MAX_USERS)
        return rk_errf(err, found ? RK_ECORRUPT : RK_EINVAL, "kv store: more than %u user records",
                       KV_ACL_MAX_USERS);
    struct kv_acl_user *u = rk_malloc(kv->alloc, sizeof(*u));
    if (u == NULL)
        return rk_errf(err, RK_ENOMEM, "kv: allocating a user");
    if (kv_acl_decode(key + 1, key_len - 1, val, val_len, u) != RK_OK) {
        rk_free(kv->alloc, u);
        return rk_errf(err, RK_ECORRUPT,
                       "kv store: the user record of %" PRIu32 " bytes named "
                       "'%.*s' does not decode",
                       val_len, (int)(key_len - 1), (const char *)key + 1);
    }
    insert_at(kv, at, u);
    kv->n_acl_records++;
    return RK_OK;
}

int kv_acl_load_done(struct kv *kv, struct rk_errmsg *err)
{
    bool found = false;
    uint32_t at = find(kv, (const uint8_t *)"default", 7, &found);
    if (found)
        return RK_OK;
    if (kv->n_users == KV_ACL_MAX_USERS)
        return rk_errf(err, RK_EINVAL, "kv store: %u user records and no default user",
                       KV_ACL_MAX_USERS);
    struct kv_acl_user *u = rk_malloc(kv->alloc, sizeof(*u));
    if (u == NULL)
        return rk_errf(err, RK_ENOMEM, "kv: allocating the default user");
    kv_acl_user_default(u);
    insert_at(kv, at, u);
    return RK_OK;
}

void kv_acl_free(struct kv *kv)
{
    for (uint32_t i = 0; i < kv->n_users; i++)
        rk_free(kv->alloc, kv->users[i]);
    kv->n_users = 0;
}

/* 'a' + name into kv->key_buf; its length. */
static uint32_t acl_key(struct kv *kv, const uint8_t *name, size_t len)
{
    RK_ASSERT(len <= KV_ACL_MAX_NAME_BYTES);
    kv->key_buf[0] = KV_KEY_ACL;
    memcpy(kv->key_buf + 1, name, len);
    return (uint32_t)len + 1;
}

static void errorf(struct kv *kv, const char *fmt, const char *a, int alen, const char *b)
{
    char text[512];
    snprintf(text, sizeof(text), fmt, alen, a, b);
    res_error(&kv->res, text);
}

/* ACL SETUSER name rule...: every rule applied to a copy, in order; the first that fails is
 * the reply and nothing changes (Redis's aclCommand setuser). */
static int setuser(struct kv *kv, uint64_t index, const struct kv_op_view *op)
{
    struct kv_cmd2_iter it;
    struct kv_arg name, r;
    kv_op_args(op, &it);
    bool ok = kv_op_next_arg(&it, &name);
    RK_ASSERT(ok);
    if (!kv_acl_name_ok(name.p, name.len)) {
        res_error(&kv->res, "ERR Usernames can't contain spaces or null characters");
        return RK_OK;
    }
    bool found = false;
    uint32_t at = find(kv, name.p, name.len, &found);
    if (!found && kv->n_users == KV_ACL_MAX_USERS) {
        res_error(&kv->res, "ERR raftkv keeps at most 256 ACL users");
        return RK_OK;
    }
    struct kv_acl_user *u = rk_malloc(kv->alloc, sizeof(*u));
    if (u == NULL)
        return RK_ENOMEM;
    if (found)
        memcpy(u, kv->users[at], sizeof(*u));
    else
        kv_acl_user_new(u, name.p, name.len);
    while (kv_op_next_arg(&it, &r)) {
        char why[256];
        if (kv_acl_rule(u, r.p, r.len, why, sizeof(why)) != RK_OK) {
            int shown = r.len > 200 ? 200 : (int)r.len;
            errorf(kv, "ERR Error in ACL SETUSER modifier '%.*s': %s", (const char *)r.p, shown,
                   why);
            rk_free(kv->alloc, u);
            return RK_OK;
        }
    }
    uint8_t rec[sizeof(struct kv_acl_user) + 64];
    size_t len = kv_acl_encode(u, rec, sizeof(rec));
    RK_ASSERT(len > 0);
    uint32_t klen = acl_key(kv, name.p, name.len);
    bool had_record = found && !(is_default(name.p, name.len) && !kv_acl_default_set(kv));
    int rc = kv->store->ops->put(kv->store, index, kv->key_buf, klen, rec, (uint32_t)len);
    if (rc != RK_OK) {
        rk_free(kv->alloc, u);
        return rc;
    }
    if (found) {
        rk_free(kv->alloc, kv->users[at]);
        kv->users[at] = u;
    } else {
        insert_at(kv, at, u);
    }
    kv->n_acl_records += had_record ? 0 : 1;
    kv->acl_gen++;
    res_status(&kv->res, "OK");
    return RK_OK;
}

static int deluser(struct kv *kv, uint64_t index, const struct kv_op_view *op)
{
    struct kv_cmd2_iter it;
    struct kv_arg name;
    kv_op_args(op, &it);
    while (kv_op_next_arg(&it, &name))
        if (is_default(name.p, name.len)) {
            res_error(&kv->res, "ERR The 'default' user cannot be removed");
            return RK_OK;
        }
    int64_t n = 0;
    kv_op_args(op, &it);
    while (kv_op_next_arg(&it, &name)) {
        bool found = false;
        uint32_t at = find(kv, name.p, name.len, &found);
        if (!found)
            continue;
        bool existed = false;
        uint32_t klen = acl_key(kv, name.p, name.len);
        int rc = kv->store->ops->del(kv->store, index, kv->key_buf, klen, &existed);
        if (rc != RK_OK)
            return rc;
        RK_ASSERT(existed); /* T2 */
        remove_at(kv, at);
        kv->n_acl_records--;
        n++;
    }
    if (n > 0)
        kv->acl_gen++;
    res_int(&kv->res, n);
    return RK_OK;
}

int kv_acl_exec(struct kv *kv, uint64_t index, const struct kv_op_view *op)
{
    if (op->code == KV_C_ACL_SETUSER)
        return setuser(kv, index, op);
    RK_ASSERT(op->code == KV_C_ACL_DELUSER);
    return deluser(kv, index, op);
}

/* ---- reads ---------------------------------------------------------------------------------- */

const struct kv_acl_user *kv_acl_user(const struct kv *kv, const uint8_t *name, size_t len)
{
    RK_ASSERT(kv != NULL);
    bool found = false;
    uint32_t at = find(kv, name, len, &found);
    return found ? kv->users[at] : NULL;
}

uint32_t kv_acl_count(const struct kv *kv)
{
    return kv->n_users;
}

const struct kv_acl_user *kv_acl_at(const struct kv *kv, uint32_t i)
{
    RK_ASSERT(i < kv->n_users);
    return kv->users[i];
}

uint64_t kv_acl_generation(const struct kv *kv)
{
    return kv->acl_gen;
}

bool kv_acl_default_set(const struct kv *kv)
{
    /* Every user but a built-in default has a record (T2). */
    return kv->n_acl_records == kv->n_users;
}

struct acl_check {
    const struct kv *kv;
    uint32_t records;
    bool ok;
};

static bool check_record(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                         uint32_t val_len)
{
    struct acl_check *c = ctx;
    if (key_len == 0 || key[0] != KV_KEY_ACL)
        return true;
    c->records++;
    const struct kv_acl_user *u = kv_acl_user(c->kv, key + 1, key_len - 1);
    /* The encoding is canonical and the decoder strict: the record is u's iff it is u's
     * encoding. */
    uint8_t a[sizeof(struct kv_acl_user) + 64];
    size_t len = u == NULL ? 0 : kv_acl_encode(u, a, sizeof(a));
    if (len == 0 || len != val_len || memcmp(a, val, len) != 0)
        c->ok = false;
    return true;
}

bool kv_acl_valid(const struct kv *kv)
{
    for (uint32_t i = 1; i < kv->n_users; i++)
        if (name_cmp((const uint8_t *)kv->users[i - 1]->name, kv->users[i - 1]->name_len,
                     (const uint8_t *)kv->users[i]->name, kv->users[i]->name_len) >= 0)
            return false;
    if (kv_acl_user(kv, (const uint8_t *)"default", 7) == NULL)
        return false;
    struct acl_check c = {kv, 0, true};
    if (kv->store->ops->scan(kv->store, check_record, &c) != RK_OK)
        return false;
    return c.ok && c.records == kv->n_acl_records &&
           (c.records == kv->n_users || c.records + 1 == kv->n_users);
}
