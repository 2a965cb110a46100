/*
 * repair.c — opening a node's storage with repair from peers (replica.h, issue #15; the
 * argument is in core/log/INTEGRITY.md).
 *
 * Invariants of a repair:
 *   R1  Nothing is cut or removed before the promise that covers it is durable in the log's
 *       directory (log_seglog_repair writes it first; a store is discarded only after the log's
 *       repair returned). So a crash in the middle of a repair, and the next open's repair,
 *       never forget what the node may have acknowledged: the promise only grows.
 *   R2  What is kept is exactly what checks out: the log's prefix before the first bad record,
 *       the store only when the log can bring it up to date (its applied index within the log,
 *       at or after its snapshot point).
 *   R3  A node never repairs by guessing content: every entry it lacks comes from a leader
 *       (entries or a snapshot), which holds every committed one (Leader Completeness).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "replica/replica.h"

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static void say(struct replica_repair_plan *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct replica_repair_plan *p, const char *fmt, ...)
{
    size_t len = strlen(p->text);
    if (len + 2 >= sizeof(p->text))
        return;
    if (len > 0) {
        p->text[len++] = ';';
        p->text[len++] = ' ';
        p->text[len] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->text + len, sizeof(p->text) - len, fmt, ap);
    va_end(ap);
}

static bool is_segment(const char *name)
{
    return strncmp(name, "seg-", 4) == 0;
}

static void plan_reset(struct replica_repair_plan *p, uint64_t promise)
{
    p->log.mode = LOG_REPAIR_RESET;
    p->log.file[0] = '\0';
    p->log.offset = 0;
    p->log.promise = max64(p->log.promise, promise);
    p->discard_store = true;
}

static void promise_text(char *out, size_t n, uint64_t promise)
{
    if (promise >= LOG_PROMISE_NEW)
        snprintf(out, n, "unknown: no vote until caught up with a leader");
    else
        snprintf(out, n, "%llu: no vote until it holds entries up to %llu again",
                 (unsigned long long)promise, (unsigned long long)promise);
}

void replica_repair_plan(const struct replica_repair_input *in, struct replica_repair_plan *out)
{
    memset(out, 0, sizeof(*out));
    const struct log_damage *d = &in->log_damage;
    /* The log's end after the plan, when the log is kept (cut or whole). */
    bool log_known = in->log_rc == RK_OK;
    uint64_t log_last = in->log_last_index;
    uint64_t log_snap = in->log_snapshot_index;
    if (in->log_rc == RK_ECORRUPT && d->kind == LOG_DAMAGE_FORMAT) {
        out->log.mode = LOG_REPAIR_FORMAT;
        say(out, "log: the format file is written again (it holds nothing else)");
    } else if (in->log_rc == RK_ECORRUPT && d->kind == LOG_DAMAGE_RECORD && is_segment(d->file) &&
               d->first_index > 0) {
        out->log.mode = LOG_REPAIR_CUT;
        snprintf(out->log.file, sizeof(out->log.file), "%s", d->file);
        out->log.offset = d->offset;
        uint64_t promise = max64(d->acked_index, d->last_index);
        out->log.promise = promise != 0 ? promise : LOG_PROMISE_UNKNOWN;
        log_known = true;
        log_last = d->intact_last_index;
        log_snap = 0; /* not known here: at most log_last, checked on the next round */
        say(out,
            "log: cut at %s offset %llu (entries from %llu on are discarded; the log keeps "
            "1..%llu)",
            d->file, (unsigned long long)d->offset, (unsigned long long)d->first_index,
            (unsigned long long)d->intact_last_index);
    } else if (in->log_rc == RK_ECORRUPT && d->kind == LOG_DAMAGE_HARD_STATE) {
        plan_reset(out, LOG_PROMISE_UNKNOWN);
        log_known = false;
        say(out, "log: the hard state is lost (term and vote unknown): the log and the store are "
                 "discarded");
    } else if (in->log_rc == RK_ECORRUPT || in->log_rc == RK_EIO) {
        uint64_t promise = in->log_rc == RK_ECORRUPT ? max64(d->acked_index, d->last_index) : 0;
        plan_reset(out, promise != 0 ? promise : LOG_PROMISE_UNKNOWN);
        log_known = false;
        say(out,
            "log: %s: the log and the store are discarded (term and vote kept if the hard "
            "state checks out)",
            in->log_rc == RK_EIO ? "cannot be read" : "damaged beyond a cut");
    }
    if (out->log.mode == LOG_REPAIR_FORMAT) {
        out->act = true;
        return; /* the next round sees the rest */
    }
    bool store_known = in->store_rc == RK_OK && !out->discard_store;
    if (!out->discard_store && (in->store_rc == RK_ECORRUPT || in->store_rc == RK_EIO)) {
        const char *why = in->store_rc == RK_EIO ? "cannot be read" : "damaged";
        if (log_known && out->log.mode == 0 && log_snap == 0) {
            out->discard_store = true;
            say(out, "store: %s: discarded and rebuilt from the log (which starts at index 1)",
                why);
        } else {
            uint64_t promise = out->log.mode == LOG_REPAIR_CUT ? out->log.promise : log_last;
            plan_reset(out, promise != 0 ? promise : LOG_PROMISE_UNKNOWN);
            say(out,
                "store: %s: the store and the log (whose prefix a snapshot replaced) are "
                "discarded; a leader sends a snapshot",
                why);
        }
        store_known = false;
    }
    if (store_known && log_known) {
        uint64_t snap = log_snap, last = log_last;
        if (in->store_snap_index > snap) { /* replica_create finishes that installation */
            snap = in->store_snap_index;
            last = max64(last, snap);
        }
        uint64_t a = in->store_applied;
        if (a > last) {
            plan_reset(out, a);
            say(out,
                "store: applied index %llu past the log's end %llu (the log lost entries "
                "it had synced): the log and the store are discarded",
                (unsigned long long)a, (unsigned long long)last);
        } else if (a < snap) {
            plan_reset(out, last != 0 ? last : LOG_PROMISE_UNKNOWN);
            say(out,
                "store: applied index %llu behind the log's snapshot point %llu: the log "
                "and the store are discarded",
                (unsigned long long)a, (unsigned long long)snap);
        }
    }
    if (out->log.mode == 0 && !out->discard_store)
        return;
    out->act = true;
    if (out->log.mode == 0)
        return; /* the store alone: the log is whole and keeps its promise */
    if (out->log.mode == LOG_REPAIR_RESET && out->log.promise == 0)
        out->log.promise = LOG_PROMISE_UNKNOWN;
    char pt[96];
    promise_text(pt, sizeof(pt), out->log.promise);
    say(out, "promise %s", pt);
}

/* Removes every file of the store's directory (a discarded store: bc_open starts it empty). */
struct wipe_list {
    const struct rk_alloc *a;
    char (*names)[FS_NAME_MAX + 1];
    size_t n, cap;
    bool nomem;
};

static bool wipe_one(void *ctx, const char *name)
{
    struct wipe_list *w = ctx;
    if (!rk_grow(w->a, (void **)&w->names, &w->cap, w->n + 1, sizeof(*w->names))) {
        w->nomem = true;
        return false;
    }
    snprintf(w->names[w->n++], sizeof(*w->names), "%s", name);
    return true;
}

static int discard_store(struct fs *fs, const struct rk_alloc *a, struct rk_errmsg *err)
{
    struct wipe_list w = {.a = a};
    int rc = fs->ops->list(fs, wipe_one, &w, err);
    if (rc == RK_OK && w.nomem)
        rc = rk_errf(err, RK_ENOMEM, "no memory to list the store");
    for (size_t i = 0; rc == RK_OK && i < w.n; i++) {
        rc = fs->ops->remove(fs, w.names[i], err);
        if (rc == RK_ENOENT)
            rc = RK_OK;
    }
    if (rc == RK_OK)
        rc = fs->ops->sync_dir(fs, err);
    rk_free(a, w.names);
    return rc == RK_OK ? RK_OK : rk_errwrap(err, rc, "discarding the store");
}

#define REPAIR_ROUNDS 4
#define OPEN_ATTEMPTS 3 /* a read error may pass: RK_EIO is believed after this many opens */

static int open_log(const struct replica_storage_config *c, struct log_store **log,
                    struct log_damage *d, struct rk_errmsg *err)
{
    int rc = RK_OK;
    for (int i = 0; i < OPEN_ATTEMPTS; i++) {
        memset(d, 0, sizeof(*d));
        struct log_seglog_config lc = {
            .fs = c->log_fs, .alloc = c->alloc, .segment_bytes = c->segment_bytes, .damage = d};
        rc = log_seglog_open(&lc, log, err);
        if (rc != RK_EIO)
            break;
    }
    return rc;
}

static int open_store(const struct replica_storage_config *c, struct bitcask **bc,
                      struct bc_damage *d, struct rk_errmsg *err)
{
    int rc = RK_OK;
    for (int i = 0; i < OPEN_ATTEMPTS; i++) {
        memset(d, 0, sizeof(*d));
        struct bc_config bcc = {.fs = c->store_fs,
                                .alloc = c->alloc,
                                .max_file_bytes = c->max_file_bytes,
                                .merge_id_gap = c->merge_id_gap,
                                .damage = d};
        rc = bc_open(&bcc, bc, err);
        if (rc != RK_EIO)
            break;
    }
    return rc;
}

static void append_text(struct replica_storage *out, const char *text)
{
    size_t len = strlen(out->repaired);
    snprintf(out->repaired + len, sizeof(out->repaired) - len, "%s%s", len > 0 ? " | " : "", text);
}

int replica_storage_open(const struct replica_storage_config *c, struct replica_storage *out,
                         struct rk_errmsg *err)
{
    memset(out, 0, sizeof(*out));
    const struct rk_alloc *a = c->alloc != NULL ? c->alloc : rk_alloc_libc();
    for (uint32_t round = 0;; round++) {
        struct replica_repair_input in;
        memset(&in, 0, sizeof(in));
        struct log_store *log = NULL;
        struct bitcask *bc = NULL;
        struct rk_errmsg lerr = {{0}}, serr = {{0}};
        in.log_rc = open_log(c, &log, &in.log_damage, &lerr);
        if (in.log_rc == RK_ECORRUPT && in.log_damage.kind == LOG_DAMAGE_NONE)
            in.log_rc = RK_EMALFORMED; /* not a damage the log could describe: refused */
        if (in.log_rc != RK_OK && in.log_rc != RK_ECORRUPT && in.log_rc != RK_EIO) {
            *err = lerr;
            return in.log_rc;
        }
        if (log != NULL) {
            struct log_seglog_stats st;
            log_seglog_stats(log, &st);
            in.log_snapshot_index = st.snapshot_index;
            in.log_last_index = st.last_index;
        }
        in.store_rc = open_store(c, &bc, &in.store_damage, &serr);
        if (in.store_rc == RK_ECORRUPT && in.store_damage.kind == BC_DAMAGE_NONE)
            in.store_rc = RK_EMALFORMED;
        if (in.store_rc != RK_OK && in.store_rc != RK_ECORRUPT && in.store_rc != RK_EIO) {
            if (log != NULL)
                log->ops->destroy(log);
            *err = serr;
            return in.store_rc;
        }
        if (bc != NULL) {
            in.store_applied = bc_applied_index(bc);
            in.store_snap_index = replica_store_snapshot_index(bc_kv_store(bc));
        }
        struct replica_repair_plan plan;
        replica_repair_plan(&in, &plan);
        if (!plan.act) {
            RK_ASSERT(log != NULL && bc != NULL);
            out->log = log;
            out->bc = bc;
            out->repairs = round;
            return RK_OK;
        }
        if (log != NULL)
            log->ops->destroy(log);
        if (bc != NULL)
            bc_close(bc);
        const char *why = in.log_rc != RK_OK     ? lerr.text
                          : in.store_rc != RK_OK ? serr.text
                                                 : "the log and the store disagree";
        if (c->no_repair || round + 1 >= REPAIR_ROUNDS) {
            int rc = in.log_rc != RK_OK ? in.log_rc : in.store_rc;
            if (rc == RK_OK)
                rc = RK_ECORRUPT;
            return rk_errf(err, rc, "%s (repair %s: %s)", why,
                           c->no_repair ? "is off" : "did not converge", plan.text);
        }
        int rc = RK_OK;
        if (plan.log.mode != 0) {
            struct log_seglog_config lc = {
                .fs = c->log_fs, .alloc = a, .segment_bytes = c->segment_bytes};
            rc = log_seglog_repair(&lc, &plan.log, err);
        }
        if (rc == RK_OK && plan.discard_store)
            rc = discard_store(c->store_fs, a, err); /* R1: after the log's promise */
        if (rc != RK_OK)
            return rk_errwrap(err, rc, "repairing (%s)", plan.text);
        char line[sizeof(plan.text) + 160];
        snprintf(line, sizeof(line), "%s => %s", why, plan.text);
        append_text(out, line);
    }
}
