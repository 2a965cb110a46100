/*
 * sim.h — one deterministic simulation run: a scenario, a seed, and the real core (replicas
 * over codec, raft, kv) driven over virtual time with injected faults, with every checker on.
 *
 * Determinism: everything printed to `out` depends only on the scenario and the seed. The
 * caller measures wall-clock time itself and prints it elsewhere (stderr).
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scenario.h"

struct sim_options {
    uint64_t seed;
    bool trace;           /* one line per event of interest */
    bool swarm;           /* draw fault rates from the seed (also `swarm on` in the scenario) */
    bool quiet;           /* only the verdict line and, on failure, the evidence */
    const char *path;     /* scenario path, for the replay command */
    uint64_t lin_budget;  /* linearizability search states per key; 0: default */
    const char *timeline; /* --timeline: write the run's picture (SVG) to this path; NULL: no */
};

enum sim_verdict {
    SIM_PASS = 0,
    SIM_FAIL_SAFETY, /* election safety, log matching, leader completeness, state machine */
    SIM_FAIL_LINEARIZABILITY,
    SIM_FAIL_LIVENESS, /* an expectation was not met */
    SIM_FAIL_RECOVERY, /* the end-of-run check: a node down, behind, or with another state */
};

struct sim_result {
    int verdict;    /* enum sim_verdict */
    char what[256]; /* which check failed, one line */
    uint64_t events;
    uint64_t virtual_us;
    uint64_t ops_invoked, ops_ok, ops_failed, ops_unknown;
    uint64_t msgs_sent, msgs_dropped, msgs_duplicated;
    uint64_t leaders_elected;
    uint64_t max_term;
    bool lin_gave_up;
    uint64_t max_disk_bytes; /* the most any node's disks held */
    uint64_t unavailable_us; /* no usable leader while a healthy majority was connected */
    uint64_t recovered_us;   /* virtual time after the end until the cluster converged */
    bool halted;             /* `disk damaged` beyond a minority: it halted, as it must */
};

/* Runs one simulation; writes its report to out. Returns 0 when the run itself could be set
 * up (whatever the verdict), an rk_err otherwise. */
int sim_run(const struct scenario *s, const struct sim_options *o, FILE *out,
            struct sim_result *res);

#endif
