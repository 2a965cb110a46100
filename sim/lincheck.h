/*
 * lincheck.h — the simulator's linearizability checker for the client history of the KV store.
 *
 * Model: every key is a register that starts absent. GET returns the value or nil; PUT sets
 * the value; DEL removes the key and returns 1 if it existed, 0 otherwise; INCRBY adds to a
 * base-10 int64 (absent counts as 0) and returns the new value, or an error without a write
 * when the value is not an integer (or the sum overflows); PUT_IF (SET NX/XX) writes when its
 * condition holds and returns 1, else 0; MSET writes several keys and MGET reads several keys,
 * each in ONE step (MSET is all-or-nothing as seen by MGET).
 *
 * Linearizability is local (Herlihy & Wing, Theorem 1): the history is partitioned into
 * components, the keys joined by multi-key ops, and every component is checked on its own.
 * Components of one key with only GET/PUT/DEL get the register search with its reductions;
 * others a plain Wing & Gong / Lowe search over the state of all their keys (keep multi-key
 * ops on small fixed key groups, so that components stay small).
 *
 * Program order per connection: ops recorded with the same non-zero `conn` were sent in that
 * order on one connection (the order of the lin_invoke calls). On top of linearizability, an
 * op must take effect after every earlier op of its connection that completed (LIN_OK): its
 * connection-predecessor. An op of unknown outcome is nobody's predecessor (its effect may
 * come at any time, as Knossos treats a crashed process), but it still comes after its own.
 * Checked within each component: sound (a violation found is one), not complete across
 * components (order between ops on different components is not checked).
 *
 * Outcomes (as Knossos and Porcupine handle them):
 *   LIN_OK       the op completed at its return time with the recorded output.
 *   LIN_FAIL     the op definitely did not execute: it is dropped from the history.
 *   LIN_UNKNOWN  the op may or may not have taken effect (a timeout): its return time is
 *                +infinity and its output is unconstrained. An unknown GET has no effect and is
 *                dropped. An op never completed by the time of the check counts as unknown.
 *
 * Real-time order: op A precedes op B iff A returned strictly before B was invoked. A return
 * and an invocation at the same virtual time are concurrent (events at equal times are ordered
 * calls first), the permissive reading: equal timestamps cannot prove an order.
 *
 * Search: Wing & Gong's backtracking search with Lowe's just-in-time linearization and a cache
 * of visited configurations (set of linearized ops, register state), as in Porcupine; an
 * explicit stack, no recursion. On a violation, the evidence is shrunk to a small sub-history
 * that is itself not linearizable (see lincheck.c), and printed.
 *
 * Determinism: no clock, no randomness, no dependence on addresses; the same history gives the
 * same result and the same explanation byte for byte. Memory comes from libc; an allocation
 * failure aborts (this is a test tool whose history is bounded by the run).
 */
#ifndef RK_SIM_LINCHECK_H
#define RK_SIM_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lin_op {
    LIN_GET = 1,
    LIN_PUT = 2,
    LIN_DEL = 3,
    LIN_INCRBY = 4, /* key := key + delta (absent counts as 0); num: the new value, or error */
    LIN_PUT_IF = 5, /* key := val if cond (NX: absent, XX: present) holds; num: 1 if written */
    LIN_MSET = 6,   /* every key := its value, at once (one step of the model) */
    LIN_MGET = 7,   /* the value or nil of every key, at once */
    /* A generic kv command through the log (REPLICA_CMD: SET PX, SETNX, GETDEL, APPEND, MSETNX,
     * PEXPIRE, PERSIST, RENAME, ..., or a MULTI/EXEC transaction, with or without WATCH), as
     * its encoded kv_cmd2 with its encoded kv result; modelled by sim/linrich.c. */
    LIN_CMD = 8,
    /* A generic read served through ReadIndex on a node (GET, MGET, PTTL, WATCH). */
    LIN_CMD_READ = 9,
};

enum lin_cond { LIN_COND_NX = 1, LIN_COND_XX = 2 };

/* Keys of one multi-key op (MSET, MGET). */
#define LIN_MAX_KEYS 16u

enum lin_outcome {
    LIN_OK = 1,
    LIN_FAIL = 2,    /* definitely not executed: dropped from the history */
    LIN_UNKNOWN = 3, /* may or may not have taken effect: return = +infinity, output free */
};

enum { LIN_LINEARIZABLE = 0, LIN_VIOLATION = 1, LIN_GAVE_UP = 2 };

/* Search states per key when lin_check is given a budget of 0. */
#define LIN_BUDGET_DEFAULT 1000000u

/* Opaque: records operations. */
struct lin_history;

/* Returns a new empty history, owned by the caller (lin_history_destroy). */
struct lin_history *lin_history_create(void);
/* Frees the history and every byte it copied. NULL is a no-op. */
void lin_history_destroy(struct lin_history *h);

/*
 * Records the invocation of an op by a client at virtual time `time`. key and val are copied
 * (val is the PUT's value; ignored for GET and DEL, may be NULL when val_len is 0). Invocations
 * need not arrive in time order. Returns the op id: 0, 1, 2, ... in invocation order.
 */
uint64_t lin_invoke(struct lin_history *h, uint64_t client, uint64_t time, uint8_t op,
                    const uint8_t *key, uint32_t key_len, const uint8_t *val, uint32_t val_len);

/* An invocation of any op (lin_invoke_call). Bytes are copied. */
struct lin_call {
    uint64_t client; /* shown in explanations */
    uint64_t conn;   /* 0: none; otherwise the connection (program order, above) */
    uint64_t time;
    uint8_t op;      /* enum lin_op */
    uint32_t n_keys; /* 1, or 1..LIN_MAX_KEYS for MSET and MGET */
    const uint8_t *const *keys;
    const uint32_t *key_lens;
    const uint8_t *const *vals; /* PUT, PUT_IF: vals[0]; MSET: one per key; else NULL */
    const uint32_t *val_lens;
    uint8_t cond;  /* PUT_IF: enum lin_cond */
    int64_t delta; /* INCRBY */
    /* LIN_CMD, LIN_CMD_READ: the encoded command (its keys, all among keys[]). */
    const uint8_t *cmd;
    uint32_t cmd_len;
    /* 1..LX_WATCH_SLOTS (sim/linrich.h): a WATCH read records what it saw of its keys in this
     * slot of the component, and an EXEC with watches is judged against it. The caller keeps
     * a slot to one WATCH-EXEC pair at a time (the next WATCH of the slot invoked after the
     * EXEC returned). 0: none. */
    uint8_t watch_slot;
};

/* Records an invocation; returns the op id (as lin_invoke). */
uint64_t lin_invoke_call(struct lin_history *h, const struct lin_call *c);

/* The outputs of an op that completed LIN_OK. */
struct lin_return {
    int64_t num;     /* DEL: keys removed; PUT_IF: 1 if written; INCRBY: the new value */
    bool error;      /* INCRBY: refused (not an integer, overflow): nothing written */
    uint32_t n_vals; /* GET: 1; MGET: its n_keys; else 0 */
    const bool *found;
    const uint8_t *const *vals;
    const uint32_t *val_lens;
    /* LIN_CMD, LIN_CMD_READ: the encoded kv result (kv_res_check accepts it). */
    const uint8_t *res;
    uint32_t res_len;
};

/* The most any node's wall clock (expiry: kv.h TIME) is off true virtual time, in us: the
 * window in which the checker judges a deadline (sim/linrich.c). Default 0. */
void lin_history_set_clock_bound(struct lin_history *h, uint64_t bound_us);

/* Records the completion of op_id at time with outcome; r (LIN_OK only; may be NULL for ops
 * without outputs) is copied. */
void lin_complete_ret(struct lin_history *h, uint64_t op_id, uint64_t time, uint8_t outcome,
                      const struct lin_return *r);

/*
 * Records the completion of op_id at `time` (>= its invocation time; ignored for LIN_UNKNOWN).
 * For LIN_OK: a GET gives found and, if found, the value (copied); a DEL gives num, the number
 * of keys it removed; a PUT gives nothing. Outputs are ignored for LIN_FAIL and LIN_UNKNOWN.
 * Each op completes at most once.
 */
void lin_complete(struct lin_history *h, uint64_t op_id, uint64_t time, uint8_t outcome, bool found,
                  const uint8_t *val, uint32_t val_len, int64_t num);

/* The number of ops recorded (lin_invoke calls). */
size_t lin_history_size(const struct lin_history *h);

struct lin_result {
    int verdict;              /* LIN_LINEARIZABLE, LIN_VIOLATION or LIN_GAVE_UP */
    uint32_t keys_checked;    /* distinct keys in the history */
    uint32_t components;      /* components checked (keys joined by multi-key ops) */
    uint32_t keys_gave_up;    /* components whose search ran out of budget (neither proven nor
                                 refuted), counted by their keys */
    uint32_t keys_violated;   /* keys of components proven not linearizable */
    uint64_t states_explored; /* search states of the per-key checks (shrinking not counted) */
    uint64_t shrink_states;   /* search states spent shrinking the reported violation */
    /* On violation, the first violating key in byte order: printable (non-printable bytes
     * escaped as \xNN), truncated with "..." if longer; NUL-terminated. */
    char key[64];
    uint32_t evidence_ops; /* ops listed in the explanation as the evidence */
    /* On violation, a printable explanation naming the key and listing the evidence ops
     * (client, invoke..return, op, value, result); NULL otherwise. Freed by lin_result_free. */
    char *explanation;
};

/*
 * Checks every key of h; budget bounds the search states per key (0 = LIN_BUDGET_DEFAULT).
 * The verdict is LIN_VIOLATION if some key is not linearizable, else LIN_GAVE_UP if some key
 * exhausted its budget (a report, not a failure), else LIN_LINEARIZABLE. Fills *out (which the
 * caller frees with lin_result_free) and returns out->verdict. h is not modified.
 */
int lin_check(struct lin_history *h, uint64_t budget, struct lin_result *out);

/* Frees what lin_check allocated in r; r may be reused. */
void lin_result_free(struct lin_result *r);

#endif
