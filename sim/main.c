/*
 * main.c — the `sim` command: runs a scenario for one seed or a range of seeds.
 *
 *   sim [--trace] [--swarm] [--budget N] --seed N FILE.scn
 *   sim [--swarm] --seeds A..B FILE.scn
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
    fprintf(f, "usage: sim [--trace] [--swarm] [--budget STATES] --seed N FILE.scn\n"
               "       sim [--swarm] [--budget STATES] --seeds A..B FILE.scn\n"
               "\n"
               "Runs the scenario FILE.scn (see scenarios/README.md) over the real raftkv core\n"
               "in virtual time. The same seed gives byte-identical stdout.\n"
               "  --seed N       one run; prints its summary (and --trace: every event)\n"
               "  --seeds A..B   runs seeds A to B; prints failing runs and 'N passed, N failed'\n"
               "  --trace        one line per event: virtual time, node, what happened\n"
               "  --swarm        each seed also draws the fault rates (swarm testing)\n"
               "  --budget N     linearizability search states per key (default 1000000)\n");
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

int main(int argc, char **argv)
{
    struct sim_options o = {0};
    uint64_t first = 0, last = 0;
    bool have_seed = false, range = false;
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
    uint64_t passed = 0, failed = 0, events = 0, virtual_us = 0;
    uint64_t *fails = NULL;
    size_t n_fails = 0;
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
        if (seed == last)
            break;
    }
    double wall = now_s() - t0;
    if (range && tty)
        fputc('\n', stderr);
    fprintf(stderr, "sim: %.2fs wall, %.0f events/s, %.0fx real time\n", wall,
            wall > 0 ? (double)events / wall : 0.0,
            wall > 0 ? (double)virtual_us / 1e6 / wall : 0.0);
    if (range) {
        printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
        for (size_t i = 0; i < n_fails; i++)
            printf("replay: build/bin/sim --seed %" PRIu64 "%s %s\n", fails[i],
                   o.swarm ? " --swarm" : "", path);
    }
    free(fails);
    return failed == 0 ? 0 : 1;
}
