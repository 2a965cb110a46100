/*
 * linrich.h — lincheck's model of the richer ops (internal to sim/): generic kv commands
 * (REPLICA_CMD: SET PX, SETNX, GETDEL, APPEND, MSETNX, PEXPIRE, PERSIST, PTTL, RENAME, ...),
 * transactions (MULTI/EXEC as one step, all or nothing) with WATCH, and expiry with deadlines
 * judged under a bounded clock skew. lincheck.c uses it for every component that holds such an
 * op; the other components keep the plain models. See linrich.c for the rules.
 */
#ifndef RK_SIM_LINRICH_H
#define RK_SIM_LINRICH_H

#include <stdbool.h>
#include <stdint.h>

/* WATCH slots of a component (lincheck.h, lin_call.watch_slot is 1..this). */
#define LX_WATCH_SLOTS 6u

struct lx_model;

/* One op of a component, as lincheck recorded it. Bytes are borrowed for the call. */
struct lx_desc {
    uint8_t type;          /* enum lin_op */
    uint32_t nkeys;        /* the op's keys ... */
    const uint32_t *local; /* ... as indices among the component's keys */
    const uint8_t *const *keys;
    const uint32_t *key_lens;
    /* Plain ops' inputs (PUT, PUT_IF: 1 value; MSET: nkeys) and outputs. */
    const uint8_t *const *vals;
    const uint32_t *val_lens;
    uint8_t cond;
    int64_t delta;
    bool has_out; /* completed: the outputs below hold */
    int64_t num;
    bool error;
    const bool *found; /* GET, MGET: nkeys */
    const uint8_t *const *outs;
    const uint32_t *out_lens;
    /* LIN_CMD, LIN_CMD_READ: the encoded kv command and (has_out) its encoded kv result. */
    const uint8_t *cmd;
    uint32_t cmd_len;
    const uint8_t *res;
    uint32_t res_len;
    uint8_t watch_slot; /* 0 or 1..LX_WATCH_SLOTS */
};

/* A model over nkeys keys; clock_bound_us: the most any node's wall clock is off true time. */
struct lx_model *lx_create(uint32_t nkeys, uint64_t clock_bound_us);
void lx_destroy(struct lx_model *m);
/* Words of one state (the search's configuration). The initial state is all zeros. */
uint32_t lx_width(const struct lx_model *m);
/* Adds the next op (indices 0, 1, ... in call order, as the component's). */
void lx_add(struct lx_model *m, const struct lx_desc *d);
/* Applies op idx, invoked at call and returning at ret (UINT64_MAX: pending), to state into
 * next; constrained: its outputs must match. false: impossible here. */
bool lx_step(struct lx_model *m, uint32_t idx, bool constrained, uint64_t call, uint64_t ret,
             const uint32_t *state, uint32_t *next);

/* A printable form of an encoded kv command and of an encoded kv result, into buf (cap > 0,
 * NUL-terminated, truncated with "..."). */
void lx_describe_cmd(const uint8_t *cmd, uint32_t len, char *buf, uint32_t cap);
void lx_describe_res(const uint8_t *res, uint32_t len, char *buf, uint32_t cap);

#endif
