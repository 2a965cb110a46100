/*
 * rec.c — user records (kv.h "STORE LAYOUT, version 2"): the header with the mod index and the
 * deadline, and the writes that keep the expiry index ('x' records and the in-memory table), the
 * per-db key counts and the deletion indexes in step with the data.
 *
 * Order inside one write: store writes first (each idempotent: a put of the same bytes, a del
 * that may find nothing), memory last, so that a failed write leaves memory as it was and a
 * retry of a version-1 entry writes the same (kv.h).
 */
#include <inttypes.h>
#include <string.h>

#include "common/assert.h"
#include "kv/kv_int.h"

static void be_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

static void le8_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le8_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint32_t kv_user_key(uint8_t *buf, uint8_t db, const uint8_t *key, uint32_t key_len)
{
    RK_ASSERT(db < KV_DBS);
    RK_ASSERT(key_len <= KV_MAX_KEY_BYTES);
    RK_ASSERT(key != NULL || key_len == 0);
    buf[0] = (uint8_t)(KV_KEY_USER + db);
    if (key_len > 0)
        memcpy(buf + 1, key, key_len);
    return key_len + 1;
}

uint64_t kv_read_now(const struct kv *kv)
{
    return kv->read_now_ms != 0 ? kv->read_now_ms : kv->meta.clock_ms;
}

/* Decodes a stored value (untrusted). */
static int rec_decode(const uint8_t *val, uint32_t len, struct kv_rec *rec, struct rk_errmsg *err)
{
    if (len < REC_HEADER_MIN || (val[0] & ~REC_DEADLINE) != 0 ||
        ((val[0] & REC_DEADLINE) && len < REC_HEADER_MAX))
        return rk_errf(err, RK_ECORRUPT,
                       "kv store: a user record of %" PRIu32 " bytes with flags 0x%02x has no "
                       "valid header",
                       len, len > 0 ? val[0] : 0u);
    rec->mod_index = le8_get(val + 1);
    rec->deadline_ms = 0;
    uint32_t hdr = REC_HEADER_MIN;
    if (val[0] & REC_DEADLINE) {
        rec->deadline_ms = le8_get(val + 9);
        hdr = REC_HEADER_MAX;
        if (rec->deadline_ms == 0)
            return rk_errf(err, RK_ECORRUPT, "kv store: a user record with deadline 0");
    }
    rec->val = val + hdr;
    rec->val_len = len - hdr;
    return RK_OK;
}

int kv_rec_get(struct kv *kv, uint8_t db, const uint8_t *key, uint32_t key_len, uint64_t now_ms,
               struct kv_rec *rec)
{
    RK_ASSERT(db < KV_DBS);
    return kv_rec_get_phys(kv, kv->meta.dbmap[db], key, key_len, now_ms, rec);
}

int kv_rec_get_phys(struct kv *kv, uint8_t db, const uint8_t *key, uint32_t key_len,
                    uint64_t now_ms, struct kv_rec *rec)
{
    memset(rec, 0, sizeof(*rec));
    uint32_t len = kv_user_key(kv->key_buf, db, key, key_len);
    const uint8_t *val = NULL;
    uint32_t val_len = 0;
    int rc = kv->store->ops->get(kv->store, kv->key_buf, len, &val, &val_len);
    if (rc == RK_ENOENT)
        return RK_OK;
    if (rc != RK_OK)
        return rc;
    rc = rec_decode(val, val_len, rec, &kv->last_err);
    if (rc != RK_OK)
        return rc;
    rec->exists = true;
    rec->live = rec->deadline_ms == 0 || rec->deadline_ms > now_ms;
    return RK_OK;
}

int kv_user_record_decode(const uint8_t *key, uint32_t key_len, const uint8_t *val,
                          uint32_t val_len, uint8_t *db, const uint8_t **ukey, uint32_t *ukey_len,
                          const uint8_t **uval, uint32_t *uval_len, uint64_t *mod_index,
                          uint64_t *deadline_ms, struct rk_errmsg *err)
{
    if (key_len < 1 || key[0] < KV_KEY_USER || key[0] >= KV_KEY_USER + KV_DBS)
        return rk_errf(err, RK_ECORRUPT, "kv store: not a user key");
    struct kv_rec rec;
    memset(&rec, 0, sizeof(rec));
    int rc = rec_decode(val, val_len, &rec, err);
    if (rc != RK_OK)
        return rc;
    *db = (uint8_t)(key[0] - KV_KEY_USER);
    *ukey = key + 1;
    *ukey_len = key_len - 1;
    *uval = rec.val;
    *uval_len = rec.val_len;
    *mod_index = rec.mod_index;
    *deadline_ms = rec.deadline_ms;
    return RK_OK;
}

/* Writes or removes the 'x' record of store key skey for deadline. */
static int expiry_record(struct kv *kv, uint64_t index, const uint8_t *skey, uint32_t skey_len,
                         uint64_t deadline, bool put)
{
    uint8_t *x = kv->key_buf2;
    x[0] = KV_KEY_EXPIRY;
    be_put(x + 1, deadline);
    memcpy(x + 9, skey, skey_len);
    struct kv_store *st = kv->store;
    if (put)
        return st->ops->put(st, index, x, 9 + skey_len, NULL, 0);
    bool existed = false;
    return st->ops->del(st, index, x, 9 + skey_len, &existed);
}

int kv_rec_del(struct kv *kv, uint64_t index, uint8_t db, const uint8_t *key, uint32_t key_len,
               bool *existed)
{
    RK_ASSERT(db < KV_DBS);
    return kv_rec_del_phys(kv, index, kv->meta.dbmap[db], key, key_len, existed);
}

int kv_rec_del_phys(struct kv *kv, uint64_t index, uint8_t db, const uint8_t *key, uint32_t key_len,
                    bool *existed)
{
    uint32_t len = kv_user_key(kv->key_buf, db, key, key_len);
    *existed = false;
    int rc = kv->store->ops->del(kv->store, index, kv->key_buf, len, existed);
    uint64_t old = exptab_get(&kv->exp, kv->key_buf, len);
    if (rc == RK_OK && old != 0)
        rc = expiry_record(kv, index, kv->key_buf, len, old, false);
    if (rc != RK_OK)
        return rc;
    if (old != 0) {
        RK_ASSERT(kv->n_expiry_records > 0 && kv->n_expiring[db] > 0);
        kv->n_expiry_records--;
        kv->n_expiring[db]--;
        rc = exptab_set(&kv->exp, kv->key_buf, len, 0);
        RK_ASSERT(rc == RK_OK); /* a removal allocates nothing */
    }
    if (*existed) {
        if (db != 0) {
            RK_ASSERT(kv->n_keys[db] > 0);
            kv->n_keys[db]--;
        }
        if (kv->meta.del_index[db] != index) {
            kv->meta.del_index[db] = index;
            kv->meta_dirty = true;
        }
    }
    return RK_OK;
}

int kv_rec_put(struct kv *kv, uint64_t index, uint8_t db, const uint8_t *key, uint32_t key_len,
               const uint8_t *val, uint32_t val_len, uint64_t deadline_ms, uint64_t now_ms,
               int existed)
{
    RK_ASSERT(val != NULL || val_len == 0);
    if (deadline_ms != 0 && deadline_ms <= now_ms) {
        bool was = false;
        return kv_rec_del(kv, index, db, key, key_len, &was);
    }
    /* The header and the value, assembled in kv->tmp (val never points there: callers use
     * kv->tmp2 or the command's bytes). */
    RK_ASSERT(kv->tmp.buf == NULL || val < kv->tmp.buf || val >= kv->tmp.buf + kv->tmp.cap ||
              val_len == 0);
    uint32_t hdr = deadline_ms != 0 ? REC_HEADER_MAX : REC_HEADER_MIN;
    RK_ASSERT(db < KV_DBS);
    db = kv->meta.dbmap[db]; /* from here on, the physical db (SWAPDB) */
    if (!rk_grow(kv->alloc, (void **)&kv->tmp.buf, &kv->tmp.cap, (size_t)hdr + val_len, 1))
        return RK_ENOMEM;
    uint8_t *v = kv->tmp.buf;
    v[0] = deadline_ms != 0 ? REC_DEADLINE : 0;
    le8_put(v + 1, index);
    if (deadline_ms != 0)
        le8_put(v + 9, deadline_ms);
    if (val_len > 0)
        memcpy(v + hdr, val, val_len);
    uint32_t len = kv_user_key(kv->key_buf, db, key, key_len);
    struct kv_store *st = kv->store;
    if (db != 0 && existed == KV_EXISTED_UNKNOWN) {
        const uint8_t *old = NULL;
        uint32_t old_len = 0;
        int grc = st->ops->get(st, kv->key_buf, len, &old, &old_len);
        if (grc != RK_OK && grc != RK_ENOENT)
            return grc;
        existed = grc == RK_OK;
    }
    int rc = st->ops->put(st, index, kv->key_buf, len, v, hdr + val_len);
    uint64_t old = exptab_get(&kv->exp, kv->key_buf, len);
    if (rc == RK_OK && old != deadline_ms && old != 0)
        rc = expiry_record(kv, index, kv->key_buf, len, old, false);
    if (rc == RK_OK && old != deadline_ms && deadline_ms != 0)
        rc = expiry_record(kv, index, kv->key_buf, len, deadline_ms, true);
    if (rc == RK_OK && old != deadline_ms)
        rc = exptab_set(&kv->exp, kv->key_buf, len, deadline_ms);
    if (rc != RK_OK)
        return rc;
    kv->n_expiry_records = kv->n_expiry_records - (old != 0) + (deadline_ms != 0);
    kv->n_expiring[db] = kv->n_expiring[db] - (old != 0) + (deadline_ms != 0);
    if (db != 0 && !existed)
        kv->n_keys[db]++;
    return RK_OK;
}
