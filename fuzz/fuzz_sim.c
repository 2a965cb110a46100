/*
 * fuzz_sim.c — coverage-guided search for Raft bugs: the fuzzer's bytes choose the cluster, the
 * workload and the fault schedule of a short simulation (sim/sim.c), written as scenario text
 * and parsed by scn_parse, then run with every checker on (election safety, log matching,
 * leader completeness, state machine safety, linearizability, and liveness once the faults
 * heal). A failed check aborts after printing the scenario and the seed: save the text as a .scn
 * and `build/bin/sim --seed N --trace FILE` replays it. With FUZZ_SIM_PRINT set in the
 * environment, every run prints its scenario and outcome (to see what an input means).
 *
 * Input, read as choices (fuzz_util.h; past the end every choice is 0, so any input is valid):
 *   seed u32, then settings (nodes 3..5, election and heartbeat ticks, prevote, checkquorum,
 *   replication batching, latency, drop, duplicate, reorder, clients, keys, mix, timeout,
 *   duration 1..3 s, snapshots, disk faults), then up to 16 steps, each
 *   [dt u8 (its low 6 bits x 10 ms)][action u8][operands]. The faults are bounded so that a
 *   correct cluster always recovers within the expectations once they heal (a skew stays within
 *   0.5x..2x, a `set drop` at most 0.2, latency at most 50 ms): a liveness failure is a
 *   finding, not the generator's doing.
 */
#include <inttypes.h>
#include <stdarg.h>

#include "fuzz_util.h"
#include "scenario.h"
#include "sim.h"

#define SIM_FZ_MAX_STEPS 16
#define SIM_FZ_TEXT_BYTES 8192

static struct scenario sim_fz_scn; /* about 400 KiB: not on the stack */

struct sim_fz_text {
    char buf[SIM_FZ_TEXT_BYTES];
    size_t len;
};

static void sim_fz_line(struct sim_fz_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sim_fz_line(struct sim_fz_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
    va_end(ap);
    FZ_CHECK(n >= 0 && (size_t)n < sizeof(t->buf) - t->len, "scenario text too long");
    t->len += (size_t)n;
}

/* A node set for a step: explicit ids (a bitmask, none of them in `taken`), or a symbolic
 * target. Returns the ids it named (0 for a symbolic target). An empty explicit set becomes
 * `fallback`. Choices are read in statement order only (never two in one call's arguments,
 * whose order C leaves open), so that gcc and clang builds read an input the same way. */
static uint32_t sim_fz_set(struct sim_fz_text *t, struct fz_bytes *b, uint32_t nodes,
                           bool allow_all, uint32_t taken, const char *fallback)
{
    static const char *const symbolic[] = {"leader", "follower", "random", "random minority",
                                           "random majority", "all"};
    uint8_t c = fz_u8(b);
    unsigned kinds = allow_all ? 6 : 5;
    if ((c & 0x80) != 0) {
        sim_fz_line(t, " %s", symbolic[(c & 0x7f) % kinds]);
        return 0;
    }
    uint32_t mask = c & ((1u << nodes) - 1) & ~taken;
    if (mask == 0) {
        sim_fz_line(t, " %s", fallback);
        return 0;
    }
    for (uint32_t i = 0; i < nodes; i++)
        if ((mask & (1u << i)) != 0)
            sim_fz_line(t, " %" PRIu32, i + 1);
    return mask;
}

static void sim_fz_settings(struct sim_fz_text *t, struct fz_bytes *b, uint32_t nodes)
{
    sim_fz_line(t, "# fuzz_sim: a scenario drawn from the fuzzer's bytes\nnodes %" PRIu32 "\n",
                nodes);
    unsigned hb = (unsigned)fz_range(b, 1, 3);
    unsigned emin = hb + (unsigned)fz_range(b, 5, 20);
    /* max > min: Raft's liveness rests on randomized timeouts (§5.2). With min == max every
     * simulated node times out on the same tick, and split votes can repeat forever (a 4-node
     * run with election 13 13 and no faults never elected a leader): not a bug to find. */
    unsigned emax = emin + (unsigned)fz_range(b, 1, 20);
    sim_fz_line(t, "tick 10ms\nelection %u %u\nheartbeat %u\n", emin, emax, hb);
    bool prevote = !fz_bool(b);
    bool checkquorum = !fz_bool(b);
    sim_fz_line(t, "prevote %s\ncheckquorum %s\n", prevote ? "on" : "off",
                checkquorum ? "on" : "off");
    if (fz_bool(b)) {
        unsigned entries = (unsigned)fz_range(b, 1, 8);
        unsigned window = (unsigned)fz_range(b, 1, 4);
        sim_fz_line(t, "replication %u %u\n", entries, window);
    }
    unsigned lmin = (unsigned)fz_range(b, 0, 5);
    unsigned lmax = lmin + (unsigned)fz_range(b, 0, 15);
    sim_fz_line(t, "latency %ums %ums\n", lmin, lmax);
    unsigned drop = (unsigned)fz_range(b, 0, 10);
    unsigned dup = (unsigned)fz_range(b, 0, 10);
    unsigned reorder = (unsigned)fz_range(b, 0, 10);
    sim_fz_line(t, "drop %u%%\nduplicate %u%%\nreorder %u%%\n", drop, dup, reorder);
    unsigned clients = (unsigned)fz_range(b, 1, 6);
    unsigned keys = (unsigned)fz_range(b, 1, 4);
    sim_fz_line(t, "clients %u\nkeys %u\n", clients, keys);
    unsigned get = (unsigned)fz_range(b, 0, 10);
    unsigned put = (unsigned)fz_range(b, 1, 10);
    unsigned del = (unsigned)fz_range(b, 0, 10);
    sim_fz_line(t, "mix get %u put %u del %u\n", get, put, del);
    unsigned think = (unsigned)fz_range(b, 1, 30);
    unsigned timeout = (unsigned)fz_range(b, 100, 255) * 4;
    unsigned duration = (unsigned)fz_range(b, 10, 30) * 100;
    sim_fz_line(t, "think 0ms %ums\ntimeout %ums\nduration %ums\n", think, timeout, duration);
    uint8_t opt = fz_u8(b);
    if ((opt & 1) != 0) {
        unsigned entries = (unsigned)fz_range(b, 5, 60);
        unsigned keep = (unsigned)fz_range(b, 0, 10);
        sim_fz_line(t, "snapshot %u %u\n", entries, keep);
    }
    if ((opt & 2) != 0)
        sim_fz_line(t, "disk torn on\n");
    if ((opt & 4) != 0)
        sim_fz_line(t, "disk crashpoints on\n");
    if ((opt & 8) != 0)
        sim_fz_line(t, "disk bitflip 0.002\ndisk errors 0.0005\n");
    if ((opt & 16) != 0)
        sim_fz_line(t, "disk rotate 4096\ndisk merge %ums\n", (unsigned)fz_range(b, 1, 20) * 50);
    if ((opt & 32) != 0)
        sim_fz_line(t, "disk sync %u\n", (unsigned)fz_range(b, 1, 10));
    if ((opt & 64) != 0)
        sim_fz_line(t, "chaos crash 0.%u\nchaos downtime 100ms 1s\n",
                    (unsigned)fz_range(b, 1, 9));
    sim_fz_line(t, "expect leader within 5s\nexpect complete within 10s\n");
}

static void sim_fz_step(struct sim_fz_text *t, struct fz_bytes *b, uint32_t nodes, uint64_t at_ms)
{
    sim_fz_line(t, "at %" PRIu64 "ms", at_ms);
    switch (fz_u8(b) % 12) {
    case 0: { /* partition: two groups, or a group and the rest */
        sim_fz_line(t, " partition");
        uint32_t first = sim_fz_set(t, b, nodes, false, 0, "leader");
        sim_fz_line(t, " |");
        if (fz_bool(b))
            sim_fz_line(t, " rest");
        else
            sim_fz_set(t, b, nodes, false, first, "rest");
        break;
    }
    case 1:
        sim_fz_line(t, " partition random");
        break;
    case 2:
        sim_fz_line(t, " oneway");
        sim_fz_set(t, b, nodes, false, 0, "leader");
        sim_fz_line(t, " -> rest");
        break;
    case 3:
        sim_fz_line(t, " isolate");
        sim_fz_set(t, b, nodes, false, 0, "leader");
        break;
    case 4:
    case 5:
        sim_fz_line(t, " heal");
        break;
    case 6:
        sim_fz_line(t, " crash");
        sim_fz_set(t, b, nodes, true, 0, "leader");
        break;
    case 7:
        sim_fz_line(t, " restart");
        sim_fz_set(t, b, nodes, true, 0, "all");
        break;
    case 8:
        sim_fz_line(t, " pause");
        sim_fz_set(t, b, nodes, true, 0, "leader");
        break;
    case 9:
        sim_fz_line(t, " resume");
        sim_fz_set(t, b, nodes, true, 0, "all");
        break;
    case 10: {
        sim_fz_line(t, " skew");
        sim_fz_set(t, b, nodes, true, 0, "leader");
        static const char *const factors[4] = {"0.5", "1", "2", "1.5"};
        sim_fz_line(t, " %s", factors[fz_u8(b) & 3]);
        break;
    }
    default:
        if (fz_bool(b)) {
            sim_fz_line(t, " set drop %u%%", (unsigned)fz_range(b, 0, 20));
        } else {
            unsigned lo = (unsigned)fz_range(b, 0, 10);
            unsigned hi = 10 + (unsigned)fz_range(b, 0, 40);
            sim_fz_line(t, " set latency %ums %ums", lo, hi);
        }
        break;
    }
    sim_fz_line(t, "\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sim_fz_text text;
    static FILE *devnull;
    struct fz_bytes b = {data, size};
    uint64_t seed = fz_uint(&b, 4);
    uint32_t nodes = (uint32_t)fz_range(&b, 3, 5);
    text.len = 0;
    sim_fz_settings(&text, &b, nodes);
    uint64_t at_ms = 0;
    unsigned n_steps = (unsigned)fz_range(&b, 0, SIM_FZ_MAX_STEPS);
    for (unsigned i = 0; i < n_steps; i++) {
        at_ms += (uint64_t)(fz_u8(&b) & 63) * 10;
        sim_fz_step(&text, &b, nodes, at_ms);
    }
    struct rk_errmsg err = {{0}};
    int rc = scn_parse(text.buf, text.len, "fuzz_sim.scn", &sim_fz_scn, &err);
    FZ_CHECK(rc == RK_OK, "the generated scenario does not parse: %s\n%s", err.text, text.buf);

    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    FZ_CHECK(devnull != NULL, "cannot open /dev/null");
    struct sim_options o = {seed, false, false, true, "fuzz_sim.scn", 0, NULL};
    struct sim_result res;
    memset(&res, 0, sizeof(res));
    rc = sim_run(&sim_fz_scn, &o, devnull, &res);
    FZ_CHECK(rc == RK_OK, "sim_run could not set up: %s", rk_strerror(rc));
    if (res.verdict != SIM_PASS) {
        fprintf(stderr, "fuzz_sim: seed %" PRIu64 " failed: %s\n--- fuzz_sim.scn ---\n%s---\n"
                        "replay: save the text above as fuzz_sim.scn, then\n"
                        "  build/bin/sim --seed %" PRIu64 " --trace fuzz_sim.scn\n",
                seed, res.what, text.buf, seed);
        o.quiet = false;
        sim_run(&sim_fz_scn, &o, stderr, &res);
        abort();
    }
    if (getenv("FUZZ_SIM_PRINT") != NULL)
        fprintf(stderr, "%s--- seed %" PRIu64 ": pass, %" PRIu64 " events, %" PRIu64
                        " ops ok, %" PRIu64 " failed, %" PRIu64 " unknown, %" PRIu64
                        " leaders\n",
                text.buf, seed, res.events, res.ops_ok, res.ops_failed, res.ops_unknown,
                res.leaders_elected);
    fz_use(res.events + res.ops_ok);
    return 0;
}
