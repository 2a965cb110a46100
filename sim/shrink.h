/*
 * shrink.h — turns a failing (scenario, seed) into a smaller scenario that still fails with the
 * same check: fewer steps (delta debugging, Zeller's ddmin, over the timed steps), fewer faults
 * (each chaos kind, disk fault and network fault switched off in turn), fewer clients and
 * nodes, a shorter duration. `sim --shrink` (sim/README.md).
 *
 * "The same check" is the same verdict and the same check name: the failure's text up to its
 * first ':' or '(' ("liveness", "log matching", "recoverability", ...). Every candidate is
 * printed and parsed back (scn_print, scn_parse) before it runs, so it is a scenario the
 * language accepts (a node id above a smaller `nodes` is refused there), and the result can be
 * written to a file that replays it. A candidate runs with the current seed first and then with
 * a few next seeds: a smaller scenario draws differently from the PRNG, and the failure may need
 * another seed to show. Deterministic: the same input shrinks to the same output.
 */
#ifndef SIM_SHRINK_H
#define SIM_SHRINK_H

#include <stdint.h>
#include <stdio.h>

#include "scenario.h"
#include "sim.h"

struct shrink_options {
    uint32_t max_runs;    /* simulations at most; 0: 400 */
    uint32_t extra_seeds; /* next seeds tried when a candidate passes with the current one */
};

struct shrink_stats {
    uint32_t runs; /* simulations run */
    uint32_t steps_before, steps_after;
    uint32_t nodes_before, nodes_after;
    uint32_t clients_before, clients_after;
    uint64_t duration_before_us, duration_after_us;
};

/* The check name of a failure text (what): its prefix up to ':' or '(' with trailing spaces
 * cut, into buf (cap bytes, NUL-terminated). */
void shrink_check_name(const char *what, char *buf, size_t cap);

/* Shrinks in (which failed with o->seed as failed says) into *out (caller-allocated; may not
 * alias in); *out_seed is the seed it fails with and *out_res that run's result. progress, if
 * not NULL, gets one line per accepted reduction (deterministic text). Returns RK_OK, or
 * RK_EINVAL if in does not fail with that check when run again. */
int sim_shrink(const struct scenario *in, const struct sim_options *o,
               const struct sim_result *failed, const struct shrink_options *so,
               struct scenario *out, uint64_t *out_seed, struct sim_result *out_res,
               struct shrink_stats *stats, FILE *progress);

#endif
