/*
 * workload.h — the generic commands of the simulator's connection clients (REPLICA_CMD: kv.h
 * version 2): transactions, WATCH/EXEC, expiry, APPEND, GETDEL, SETNX/MSETNX, RENAME, bitmaps, each
 * over one key group (SCN_KEY_GROUP consecutive keys), encoded as the node would encode them.
 * Random choices come from the simulator's PRNG, so a run stays a function of its seed.
 */
#ifndef RK_SIM_WORKLOAD_H
#define RK_SIM_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "common/prng.h"
#include "scenario.h"

#define WL_CMD_BYTES 640u

enum wl_kind {
    WL_TXN = 1, /* MULTI/EXEC of 2..4 ops over the group, no WATCH */
    WL_WATCH,   /* the WATCH read of the group's keys (first half of a watched transaction) */
    WL_EXEC,    /* the EXEC that carries the WATCH's versions (second half) */
    WL_EXPIRE,  /* SET PX, PEXPIRE, PERSIST, GETEX, SET KEEPTTL, PTTL or GET, on one key */
    WL_APPEND,  /* APPEND, SETRANGE or STRLEN */
    WL_GETDEL,  /* GETDEL or GETSET (SET GET) */
    WL_SETNX,   /* SETNX on one key, or MSETNX over the group */
    WL_RENAME,  /* RENAME, RENAMENX or COPY [REPLACE] between two keys of the group */
    WL_BITS,    /* SETBIT, GETBIT, BITCOUNT [range], BITPOS on one key, or BITOP over the group */
};

/* What a WATCH answered: its watch point and each key's version (kv_watch_version). */
struct wl_watch {
    uint64_t point;
    uint32_t n;
    uint64_t version[SCN_KEY_GROUP];
};

struct wl_cmd {
    uint8_t buf[WL_CMD_BYTES]; /* the encoded kv command */
    uint32_t len;
    bool read;       /* one read op: served through ReadIndex (LIN_CMD_READ), else LIN_CMD */
    uint32_t n_keys; /* the keys the checker is told: key numbers (k1, k2, ...) */
    uint32_t keys[SCN_KEY_GROUP];
};

/* Builds a command of kind over the group of keys first .. first + n - 1 (key: the one a
 * single-key command uses); uniq makes values unique (unique integers, as the plain ops write).
 * WL_EXEC needs w (the group's WATCH answer). */
void wl_build(struct rk_prng *prng, uint8_t kind, uint32_t key, uint32_t first, uint32_t n,
              uint64_t uniq, const struct wl_watch *w, struct wl_cmd *out);

/* Reads a WATCH's answer (an encoded kv result: [point, version...]); false if it is not one
 * of n keys. */
bool wl_watch_parse(const uint8_t *res, uint32_t len, uint32_t n, struct wl_watch *w);

#endif
