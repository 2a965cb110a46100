/*
 * scancheck.h — the checker of whole-keyspace reads (`mix scan` and `mix keys`): Redis's SCAN
 * guarantee for a full iteration, and KEYS and DBSIZE as one snapshot, judged from the client
 * history alone (sim/README.md "SCAN, KEYS and DBSIZE").
 *
 * Every write the connection clients invoke is recorded with the keys it touches, its class
 * and its interval; every finished iteration (or KEYS) with its interval [t0, t1] (the first
 * page's invocation, the last page's reply) and what it returned. Linearizability (which
 * lincheck checks) places each op at one instant inside its interval; from that alone:
 *
 *   certainly present throughout [t0, t1]: a set (PUT, MSET) of the key answered OK before
 *     t0, and no op that may remove the key (DEL, a generic write: GETDEL, RENAME, expiry,
 *     a transaction ...) invoked by t1 unless it was answered before that set was invoked;
 *   certainly absent throughout [t0, t1]: no op that may create the key invoked by t1, or a
 *     DEL answered OK before t0 after which (invoked after it) no op may have created it.
 *
 * The checks: an iteration returns every key certainly present throughout that matches its
 * pattern (Redis's guarantee), no key certainly absent throughout (Redis's other one), only
 * keys that match, and no key twice (raftkv's promise: node/README.md, kv.h
 * kv_scan_db_range); DBSIZE lies between the counts of keys certainly present and not
 * certainly absent. Sound (no false alarm on a linearizable history); precise enough to catch
 * a key skipped or returned twice by the range walk.
 */
#ifndef RK_SIM_SCANCHECK_H
#define RK_SIM_SCANCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sc_class {
    SC_SET = 1, /* sets each key, no deadline (PUT, MSET) */
    SC_DEL,     /* removes each key (DEL) */
    SC_CREATE,  /* may create each key, removes none (INCRBY, SET NX/XX) */
    SC_CHANGE,  /* may create, remove or give a deadline to each key (a generic write) */
};

struct sc_history;

/* A history over keys 1..keys. NULL: out of memory. */
struct sc_history *sc_new(uint32_t keys);
void sc_free(struct sc_history *h);

/* A write invoked at `at` touching keys[0..n): its id (> 0) for sc_done. */
uint32_t sc_op(struct sc_history *h, uint8_t cls, const uint32_t *keys, uint32_t n, uint64_t at);
/* Its outcome (lincheck's LIN_OK, LIN_FAIL: not executed, LIN_UNKNOWN: may take effect at any
 * later time), answered at `at`. */
void sc_done(struct sc_history *h, uint32_t id, uint8_t outcome, uint64_t at);

/* A finished read of the keyspace: the key numbers it returned (0: a name that is no key of
 * the workload), in order, over [t0, t1]; pattern: its MATCH (fnmatch(3), which agrees with
 * Redis's glob on the simulator's patterns); dbsize: a DBSIZE read at the same index, or
 * UINT64_MAX. what: "scan" or "keys", for the report. */
void sc_read(struct sc_history *h, const char *what, uint32_t client, uint64_t t0, uint64_t t1,
             const char *pattern, const uint32_t *keys, uint32_t n, uint64_t dbsize);
/* Whether no key of the run can have a deadline (no expiry in the workload): then a read of
 * every key ("*") with DBSIZE at the same index must return exactly DBSIZE keys (one snapshot:
 * a KEYS walked across writes would drift from it). */
void sc_set_no_expiry(struct sc_history *h, bool no_expiry);

/* Checks every read recorded: true if all hold; else false and why (one line). Counts of
 * reads and of keys held to be returned, for the summary. */
bool sc_check(struct sc_history *h, char *why, size_t cap, uint64_t *reads, uint64_t *required);

#endif
