/*
 * test_cov_replica.c — core/replica's error paths and group commit, found uncovered by
 * ci/coverage: a bad config, an allocation failure at every allocation of replica_create, a log
 * store that cannot load, a failed log sync that stops the replica, and deferred inputs that
 * share one log sync.
 *
 * One replica that is the only voter, over memlog and the in-memory kv store; a wrapping log
 * store fails load or sync on demand. Time is ticks; nothing here is random.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counting_alloc.h"

#include "kv/memstore.h"
#include "log/log.h"
#include "replica/replica.h"

/* ---- a log store that forwards to memlog and fails load or sync when told --------------- */

struct flog {
    struct log_store base; /* first */
    struct log_store *inner;
    bool fail_load;
    bool fail_sync;
};

static struct flog *flog_of(struct log_store *s)
{
    return (struct flog *)s;
}

static int flog_load(struct log_store *s, struct raft_hard_state *hs, uint64_t *si, uint64_t *st,
                     const struct raft_entry **e, size_t *n, struct rk_errmsg *err)
{
    struct flog *f = flog_of(s);
    if (f->fail_load)
        return rk_errf(err, RK_EIO, "flog: load fails");
    return f->inner->ops->load(f->inner, hs, si, st, e, n, err);
}

static int flog_truncate(struct log_store *s, uint64_t from, struct rk_errmsg *err)
{
    return flog_of(s)->inner->ops->truncate(flog_of(s)->inner, from, err);
}

static int flog_append(struct log_store *s, const struct raft_entry *e, size_t n,
                       struct rk_errmsg *err)
{
    return flog_of(s)->inner->ops->append(flog_of(s)->inner, e, n, err);
}

static int flog_set_hard_state(struct log_store *s, const struct raft_hard_state *hs,
                               struct rk_errmsg *err)
{
    return flog_of(s)->inner->ops->set_hard_state(flog_of(s)->inner, hs, err);
}

static int flog_sync(struct log_store *s, struct rk_errmsg *err)
{
    struct flog *f = flog_of(s);
    if (f->fail_sync)
        return rk_errf(err, RK_EIO, "flog: sync fails");
    return f->inner->ops->sync(f->inner, err);
}

static int flog_compact(struct log_store *s, uint64_t index, uint64_t term, struct rk_errmsg *err)
{
    return flog_of(s)->inner->ops->compact(flog_of(s)->inner, index, term, err);
}

static void flog_destroy(struct log_store *s)
{
    (void)s; /* the test owns both */
}

static const struct log_store_ops flog_ops = {
    .load = flog_load,
    .truncate = flog_truncate,
    .append = flog_append,
    .set_hard_state = flog_set_hard_state,
    .sync = flog_sync,
    .compact = flog_compact,
    .destroy = flog_destroy,
};

/* ---- one single-voter replica -------------------------------------------------------------- */

struct env {
    struct counting cnt;
    struct rk_alloc alloc;
    struct flog log;
    struct kv_store *store;
    struct replica_config cfg;
    struct replica *r;
    struct rk_errmsg err;
    uint64_t next_req;
    /* Replies seen since the last env_clear_replies, copied. */
    struct replica_reply replies[16];
    size_t n_replies;
};

static struct env *env_new(void)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->alloc = counting_alloc(&e->cnt);
    e->log.base.ops = &flog_ops;
    assert_int_equal(log_memstore_create(rk_alloc_libc(), &e->log.inner), RK_OK);
    assert_int_equal(kv_memstore_create(rk_alloc_libc(), &e->store), RK_OK);
    replica_config_default(&e->cfg);
    e->cfg.raft.id = 1;
    e->cfg.raft.n_voters = 1;
    e->cfg.raft.voters[0] = 1;
    e->cfg.raft.seed = 1;
    e->cfg.log = &e->log.base;
    e->cfg.store = e->store;
    e->cfg.alloc = &e->alloc;
    e->next_req = 1;
    return e;
}

static void env_free(struct env *e)
{
    replica_destroy(e->r);
    assert_int_equal(e->cnt.live, 0); /* nothing leaked */
    e->store->ops->destroy(e->store);
    e->log.inner->ops->destroy(e->log.inner);
    free(e);
}

/* Takes the replica's outputs: a single voter sends no frame; replies are kept. */
static void env_collect(struct env *e)
{
    struct replica_output out;
    replica_output(e->r, &out);
    assert_int_equal(out.n_frames, 0);
    for (size_t i = 0; i < out.n_replies; i++) {
        assert_true(e->n_replies < 16);
        e->replies[e->n_replies++] = out.replies[i];
    }
}

static void env_start_leader(struct env *e)
{
    int rc = replica_create(&e->cfg, &e->r, &e->err);
    if (rc != RK_OK)
        fail_msg("replica_create: %s: %s", rk_strerror(rc), e->err.text);
    struct replica_info info;
    for (int t = 0; t < 100; t++) {
        replica_tick(e->r);
        env_collect(e);
        replica_info(e->r, &info);
        if (info.raft.role == RAFT_LEADER)
            return;
    }
    fail_msg("a single voter did not become leader in 100 ticks");
}

static struct replica_request put_req(struct env *e, const char *key, const char *val)
{
    return (struct replica_request){.req_id = e->next_req++,
                                    .op = REPLICA_PUT,
                                    .key = (const uint8_t *)key,
                                    .key_len = (uint32_t)strlen(key),
                                    .val = (const uint8_t *)val,
                                    .val_len = (uint32_t)strlen(val)};
}

static const struct replica_reply *reply_to(struct env *e, uint64_t req_id)
{
    for (size_t i = 0; i < e->n_replies; i++)
        if (e->replies[i].req_id == req_id)
            return &e->replies[i];
    return NULL;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void create_refuses_a_config_without_log_store_or_limits(void **state)
{
    (void)state;
    struct env *e = env_new();
    struct replica_config good = e->cfg;
    e->cfg.log = NULL;
    assert_int_equal(replica_create(&e->cfg, &e->r, &e->err), RK_EINVAL);
    e->cfg = good;
    e->cfg.store = NULL;
    assert_int_equal(replica_create(&e->cfg, &e->r, &e->err), RK_EINVAL);
    e->cfg = good;
    e->cfg.max_pending = 0;
    assert_int_equal(replica_create(&e->cfg, &e->r, &e->err), RK_EINVAL);
    e->cfg = good;
    e->cfg.max_pending = (1u << 20) + 1;
    assert_int_equal(replica_create(&e->cfg, &e->r, &e->err), RK_EINVAL);
    e->cfg = good;
    e->cfg.request_timeout_ticks = 0;
    assert_int_equal(replica_create(&e->cfg, &e->r, &e->err), RK_EINVAL);
    assert_non_null(strstr(e->err.text, "required"));
    assert_null(e->r);
    assert_int_equal(e->cnt.calls, 0); /* refused before allocating */
    e->cfg = good;
    env_free(e);
}

/* Each allocation replica_create makes fails in turn: every one is RK_ENOMEM with nothing
 * leaked, and the first run that allocates everything gives a replica that serves writes. */
static void create_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    struct env *e = env_new();
    size_t failures = 0;
    for (size_t k = 1;; k++) {
        assert_true(k < 200);
        e->cnt.calls = 0;
        e->cnt.fail_at = k;
        int rc = replica_create(&e->cfg, &e->r, &e->err);
        e->cnt.fail_at = 0;
        if (rc == RK_OK)
            break;
        assert_int_equal(rc, RK_ENOMEM);
        assert_null(e->r);
        assert_int_equal(e->cnt.live, 0);
        assert_true(e->err.text[0] != '\0');
        failures++;
    }
    assert_true(failures >= 6); /* the replica, its five tables, kv and raft at least */
    replica_destroy(e->r);
    e->r = NULL;
    assert_int_equal(e->cnt.live, 0);
    env_start_leader(e);
    struct replica_request req = put_req(e, "k", "v");
    replica_submit(e->r, &req);
    env_collect(e);
    const struct replica_reply *rep = reply_to(e, req.req_id);
    assert_non_null(rep);
    assert_int_equal(rep->status, REPLICA_OK);
    env_free(e);
}

static void create_reports_a_log_that_cannot_load(void **state)
{
    (void)state;
    struct env *e = env_new();
    e->log.fail_load = true;
    assert_int_equal(replica_create(&e->cfg, &e->r, &e->err), RK_EIO);
    assert_non_null(strstr(e->err.text, "loading the log"));
    assert_non_null(strstr(e->err.text, "flog: load fails"));
    assert_null(e->r);
    env_free(e);
}

/* A failed log sync is fatal (fs.h): the replica stops, says why, answers new requests
 * TRYAGAIN and refuses a leadership transfer; the write whose sync failed is never
 * acknowledged. */
static void failed_log_sync_stops_the_replica(void **state)
{
    (void)state;
    struct env *e = env_new();
    env_start_leader(e);
    assert_false(replica_failed(e->r, NULL));
    e->log.fail_sync = true;
    struct replica_request lost = put_req(e, "k", "lost");
    replica_submit(e->r, &lost);
    env_collect(e);
    struct rk_errmsg why = {{0}};
    assert_true(replica_failed(e->r, &why));
    assert_non_null(strstr(why.text, "flog: sync fails"));
    const struct replica_reply *rep = reply_to(e, lost.req_id);
    assert_true(rep == NULL || rep->status != REPLICA_OK);

    struct replica_request later = put_req(e, "k", "later");
    replica_submit(e->r, &later);
    env_collect(e);
    rep = reply_to(e, later.req_id);
    assert_non_null(rep);
    assert_int_equal(rep->status, REPLICA_TRYAGAIN);
    assert_non_null(strstr(rep->reason, "storage failure"));
    assert_int_equal(replica_transfer_leader(e->r, 1), RK_EINVAL);
    size_t replies = e->n_replies;
    for (int t = 0; t < 50; t++) {
        replica_tick(e->r); /* no frame (env_collect checks), no reply, no crash */
        env_collect(e);
    }
    assert_int_equal(e->n_replies, replies);
    env_free(e);
}

/* Deferred inputs only feed raft; replica_flush runs the ready loop once, so the writes of
 * several submits share one log sync and are answered together. */
static void deferred_submits_share_one_log_sync_at_flush(void **state)
{
    (void)state;
    struct env *e = env_new();
    env_start_leader(e);
    replica_set_deferred(e->r, true);
    uint64_t syncs_before = log_memstore_syncs(e->log.inner);
    struct replica_request reqs[3] = {put_req(e, "a", "1"), put_req(e, "b", "2"),
                                      put_req(e, "c", "3")};
    for (int i = 0; i < 3; i++)
        replica_submit(e->r, &reqs[i]);
    env_collect(e);
    assert_int_equal(e->n_replies, 0);
    assert_int_equal(log_memstore_syncs(e->log.inner), syncs_before);
    replica_flush(e->r);
    env_collect(e);
    assert_int_equal(log_memstore_syncs(e->log.inner), syncs_before + 1);
    for (int i = 0; i < 3; i++) {
        const struct replica_reply *rep = reply_to(e, reqs[i].req_id);
        assert_non_null(rep);
        assert_int_equal(rep->status, REPLICA_OK);
    }
    replica_set_deferred(e->r, false);
    struct replica_request get = {.req_id = e->next_req++,
                                  .op = REPLICA_GET,
                                  .key = (const uint8_t *)"b",
                                  .key_len = 1};
    replica_submit(e->r, &get);
    env_collect(e);
    const struct replica_reply *rep = reply_to(e, get.req_id);
    assert_non_null(rep);
    assert_int_equal(rep->status, REPLICA_OK);
    assert_int_equal(rep->val_len, 1);
    assert_memory_equal(rep->val, "2", 1);
    env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_refuses_a_config_without_log_store_or_limits),
        cmocka_unit_test(create_fails_cleanly_at_every_allocation),
        cmocka_unit_test(create_reports_a_log_that_cannot_load),
        cmocka_unit_test(failed_log_sync_stops_the_replica),
        cmocka_unit_test(deferred_submits_share_one_log_sync_at_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
