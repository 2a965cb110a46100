/*
 * main.c — the `sim` command: runs a scenario for one seed or a range of seeds.
 *
 *   sim [--trace] [--swarm] [--budget N] [--shrink] [--timeline OUT.svg] --seed N FILE.scn
 *   sim [--swarm] [--stop-on-fail] [--shrink] --seeds A..B FILE.scn
 *
 * stdout is deterministic (the same seed and scenario print the same bytes); wall-clock figures
 * and progress go to stderr. Exit status 0 only if every run passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "scenario.h"
#include "shrink.h"
#include "sim.h"

#define SIM_MAX_FILE_BYTES (1u << 20)

/* If the core aborts (an assertion) or crashes, say which run it was and how to replay it:
 * prepared before each run, written with write(2) from the handler (async-signal-safe). */
static char crash_note[512];
static size_t crash_note_len;

static void on_fatal_signal(int sig)
{
    ssize_t w = write(STDERR_FILENO, crash_note, crash_note_len);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sim [--trace] [--swarm] [--budget STATES] [--shrink [--shrink-out FILE]]\n"
               "           [--timeline OUT.svg] --seed N FILE.scn\n"
               "       sim [--swarm] [--budget STATES] [--stop-on-fail] [--shrink] --seeds A..B "
               "FILE.scn\n"
               "\n"
               "Runs the scenario FILE.scn (see scenarios/README.md) over the real raftkv core\n"
               "in virtual time. The same seed gives byte-identical stdout.\n"
               "  --seed N       one run; prints its summary (and --trace: every event)\n"
               "  --seeds A..B   runs seeds A to B; prints failing runs and 'N passed, N failed'\n"
               "  --trace        one line per event: virtual time, node, what happened\n"
               "  --swarm        each seed also draws the fault rates (swarm testing)\n"
               "  --budget N     linearizability search states per key (default 1000000)\n"
               "  --stop-on-fail stop a range at its first failing seed\n"
               "  --shrink       shrink the (first) failing seed to a minimal scenario that\n"
               "                 still fails with the same check (implies --stop-on-fail); it is\n"
               "                 written to shrunk-NAME-seedN.scn (or --shrink-out FILE) and its\n"
               "                 replay command printed\n"
               "  --shrink-runs N  simulations the shrinker may run (default 400)\n"
               "  --timeline F   draw the run (with --seeds: the first failing one) as SVG\n"
               "                 into F: roles, terms, cuts, crashes, disk faults, client ops\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return false;
    *out = v;
    return *end == '\0';
}

static bool parse_range(const char *s, uint64_t *a, uint64_t *b)
{
    const char *dots = strstr(s, "..");
    if (dots == NULL)
        return false;
    char left[32];
    size_t n = (size_t)(dots - s);
    if (n == 0 || n >= sizeof(left))
        return false;
    memcpy(left, s, n);
    left[n] = '\0';
    return parse_u64(left, a) && parse_u64(dots + 2, b) && *a <= *b;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "sim: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(SIM_MAX_FILE_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "sim: out of memory\n");
        return NULL;
    }
    *len = fread(buf, 1, SIM_MAX_FILE_BYTES + 1, f);
    bool err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "sim: %s: read error\n", path);
        free(buf);
        return NULL;
    }
    if (*len > SIM_MAX_FILE_BYTES) {
        fprintf(stderr, "sim: %s: over %u bytes\n", path, SIM_MAX_FILE_BYTES);
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The default name of a shrunk scenario: shrunk-NAME-seedN.scn in the current directory. */
static void shrunk_name(const char *path, uint64_t seed, char *buf, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".scn") == 0)
        n -= 4;
    if (n > 100)
        n = 100;
    snprintf(buf, cap, "shrunk-%.*s-seed%" PRIu64 ".scn", (int)n, base, seed);
}

/* --shrink: shrinks the failing seed, writes the scenario and prints its replay command. */
static int do_shrink(const struct scenario *scn, const struct sim_options *base, uint64_t seed,
                     const struct sim_result *failed, const char *path, const char *out_path,
                     uint32_t max_runs)
{
    static struct scenario small;
    struct sim_options o = *base;
    o.seed = seed;
    o.trace = false;
    struct shrink_options so = {.max_runs = max_runs, .extra_seeds = 2};
    struct shrink_stats st;
    struct sim_result res;
    uint64_t small_seed = seed;
    char name[160];
    if (out_path == NULL) {
        shrunk_name(path, seed, name, sizeof(name));
        out_path = name;
    }
    fflush(stdout);
    int rc = sim_shrink(scn, &o, failed, &so, &small, &small_seed, &res, &st, stderr);
    if (rc != RK_OK) {
        printf("shrink: seed %" PRIu64 " does not fail again with the same check: not shrunk\n",
               seed);
        return 0;
    }
    if (o.swarm)
        small.swarm = true; /* the replay needs no --swarm */
    size_t name_len = strlen(out_path);
    if (name_len >= sizeof(small.name))
        name_len = sizeof(small.name) - 1;
    memcpy(small.name, out_path, name_len);
    small.name[name_len] = '\0';
    size_t need = scn_print(&small, NULL, 0);
    char *text = malloc(need + 1);
    FILE *f = text != NULL ? fopen(out_path, "w") : NULL;
    if (f == NULL) {
        fprintf(stderr, "sim: %s: %s\n", out_path,
                text == NULL ? "out of memory" : strerror(errno));
        free(text);
        return 2;
    }
    scn_print(&small, text, need + 1);
    fprintf(f,
            "# shrunk by `sim --shrink` from %s seed %" PRIu64 " (%u simulations)\n"
            "# fails with: %s\n"
            "# replay: build/bin/sim --seed %" PRIu64 " %s\n",
            path, seed, st.runs, res.what, small_seed, out_path);
    fputs(text, f);
    free(text);
    if (fclose(f) != 0) {
        fprintf(stderr, "sim: %s: %s\n", out_path, strerror(errno));
        return 2;
    }
    printf("shrunk: %u steps -> %u, %u nodes -> %u, %u clients -> %u, duration %" PRIu64
           "ms -> %" PRIu64 "ms (%u simulations)\n"
           "  still fails: %s\n"
           "  written: %s\n"
           "  replay: build/bin/sim --seed %" PRIu64 " %s\n",
           st.steps_before, st.steps_after, st.nodes_before, st.nodes_after, st.clients_before,
           st.clients_after, st.duration_before_us / 1000, st.duration_after_us / 1000, st.runs,
           res.what, out_path, small_seed, out_path);
    return 0;
}

int main(int argc, char **argv)
{
    struct sim_options o = {0};
    uint64_t first = 0, last = 0;
    bool have_seed = false, range = false, stop_on_fail = false, shrink = false;
    const char *shrink_out = NULL;
    const char *timeline = NULL;
    uint64_t shrink_runs = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--trace") == 0) {
            o.trace = true;
        } else if (strcmp(a, "--swarm") == 0) {
            o.swarm = true;
        } else if (strcmp(a, "--timeline") == 0 && i + 1 < argc) {
            timeline = argv[++i];
        } else if (strcmp(a, "--stop-on-fail") == 0) {
            stop_on_fail = true;
        } else if (strcmp(a, "--shrink") == 0) {
            shrink = true;
            stop_on_fail = true;
        } else if (strcmp(a, "--shrink-out") == 0 && i + 1 < argc) {
            shrink_out = argv[++i];
        } else if (strcmp(a, "--shrink-runs") == 0 && i + 1 < argc) {
            if (!parse_u64(argv[++i], &shrink_runs) || shrink_runs == 0 || shrink_runs > 1000000) {
                fprintf(stderr, "sim: --shrink-runs: '%s' is not a number in 1..1000000\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
            if (!parse_u64(argv[++i], &first)) {
                fprintf(stderr, "sim: --seed: '%s' is not a number\n", argv[i]);
                return 2;
            }
            last = first;
            have_seed = true;
        } else if (strcmp(a, "--seeds") == 0 && i + 1 < argc) {
            if (!parse_range(argv[++i], &first, &last)) {
                fprintf(stderr, "sim: --seeds: '%s' is not a range A..B with A <= B\n", argv[i]);
                return 2;
            }
            have_seed = true;
            range = true;
        } else if (strcmp(a, "--budget") == 0 && i + 1 < argc) {
            if (!parse_u64(argv[++i], &o.lin_budget)) {
                fprintf(stderr, "sim: --budget: '%s' is not a number\n", argv[i]);
                return 2;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "sim: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (path == NULL) {
            path = a;
        } else {
            fprintf(stderr, "sim: more than one scenario file ('%s', '%s')\n", path, a);
            return 2;
        }
    }
    if (!have_seed || path == NULL) {
        usage(stderr);
        return 2;
    }
    size_t len = 0;
    char *text = read_file(path, &len);
    if (text == NULL)
        return 2;
    static struct scenario scn;
    struct rk_errmsg err = {{0}};
    int rc = scn_parse(text, len, path, &scn, &err);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err.text);
        return 2;
    }
    o.path = path;
    o.timeline = range ? NULL : timeline;
    uint64_t passed = 0, failed = 0, events = 0, virtual_us = 0;
    uint64_t *fails = NULL;
    size_t n_fails = 0;
    struct sim_result first_fail;
    memset(&first_fail, 0, sizeof(first_fail));
    bool tty = isatty(fileno(stderr));
    double t0 = now_s();
    signal(SIGABRT, on_fatal_signal);
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
    for (uint64_t seed = first;; seed++) {
        o.seed = seed;
        int n = snprintf(crash_note, sizeof(crash_note),
                         "\nsim: seed %" PRIu64 " died; replay: build/bin/sim --seed %" PRIu64
                         "%s %s\n",
                         seed, seed, o.swarm ? " --swarm" : "", path);
        crash_note_len = n > 0 && (size_t)n < sizeof(crash_note) ? (size_t)n : 0;
        struct sim_result res;
        char *buf = NULL;
        size_t buf_len = 0;
        FILE *out = stdout;
        if (range) {
            out = open_memstream(&buf, &buf_len);
            if (out == NULL) {
                fprintf(stderr, "sim: open_memstream: %s\n", strerror(errno));
                return 2;
            }
        }
        sim_run(&scn, &o, out, &res);
        if (range) {
            fclose(out);
            if (res.verdict != SIM_PASS)
                fwrite(buf, 1, buf_len, stdout);
            free(buf);
        }
        events += res.events;
        virtual_us += res.virtual_us;
        if (res.verdict == SIM_PASS) {
            passed++;
        } else {
            if (failed == 0)
                first_fail = res;
            failed++;
            uint64_t *v = realloc(fails, (n_fails + 1) * sizeof(*v));
            if (v != NULL) {
                fails = v;
                fails[n_fails++] = seed;
            }
        }
        uint64_t done = seed - first + 1;
        if (range && (tty ? done % 10 == 0 || seed == last : done % 100 == 0 || seed == last)) {
            fprintf(stderr, "%ssim: %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64 " failed%s",
                    tty ? "\r" : "", done, last - first + 1, failed, tty ? "" : "\n");
            fflush(stderr);
        }
        if (seed == last || (stop_on_fail && res.verdict != SIM_PASS))
            break;
    }
    double wall = now_s() - t0;
    if (range && tty)
        fputc('\n', stderr);
    fprintf(stderr, "sim: %.2fs wall, %.0f events/s, %.0fx real time\n", wall,
            wall > 0 ? (double)events / wall : 0.0,
            wall > 0 ? (double)virtual_us / 1e6 / wall : 0.0);
    if (range) {
        if (stop_on_fail && failed > 0)
            printf("stopped at the first failing seed\n");
        printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
        for (size_t i = 0; i < n_fails; i++)
            printf("replay: build/bin/sim --seed %" PRIu64 "%s %s\n", fails[i],
                   o.swarm ? " --swarm" : "", path);
    }
    if (range && timeline != NULL && n_fails > 0) {
        /* The picture of the first failing run: that seed once more, drawn. */
        struct sim_options again = o;
        again.seed = fails[0];
        again.timeline = timeline;
        struct sim_result res;
        FILE *null = fopen("/dev/null", "w");
        if (null != NULL) {
            sim_run(&scn, &again, null, &res);
            fclose(null);
            printf("timeline of seed %" PRIu64 ": %s\n", fails[0], timeline);
        }
    }
    if (shrink && n_fails > 0 &&
        do_shrink(&scn, &o, fails[0], &first_fail, path, shrink_out, (uint32_t)shrink_runs) != 0) {
        free(fails);
        return 2;
    }
    free(fails);
    return failed == 0 ? 0 : 1;
}
