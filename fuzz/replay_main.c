/*
 * replay_main.c — a main for a fuzz target without libFuzzer: runs LLVMFuzzerTestOneInput once
 * over every file named on the command line and every file in every directory named there
 * (names starting with '.' skipped, each directory in name order). Linked with every target as
 * fuzz_replay_<target>, so that ctest replays the seed corpus and the regression inputs in every
 * build, gcc and ASan/UBSan included.
 *
 * Usage: fuzz_replay_<target> [-v] PATH...   exit 0 when every input ran (a failed check aborts),
 *                                             2 when a path cannot be read or nothing was run.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

/* Inputs are small; anything above this is not one of ours. */
#define REPLAY_MAX_INPUT_BYTES (64u << 20)

static int replay_file(const char *path, int verbose)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap == 0 ? 4096 : 2 * cap;
            uint8_t *nbuf = ncap > REPLAY_MAX_INPUT_BYTES ? NULL : realloc(buf, ncap);
            if (nbuf == NULL) {
                fprintf(stderr, "replay: %s: too big or out of memory\n", path);
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(buf);
        return -1;
    }
    /* An exact-size copy, as libFuzzer gives: a read past the end is an ASan report. */
    uint8_t *exact = malloc(len == 0 ? 1 : len);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    if (verbose)
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int replay_skip_dot(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static long replay_dir(const char *dir, int verbose)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, replay_skip_dot, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    long count = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        struct stat st;
        if (w > 0 && (size_t)w < sizeof(path) && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path, verbose) != 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    int verbose = 0;
    long total = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
            continue;
        }
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        long n = S_ISDIR(st.st_mode) ? replay_dir(argv[i], verbose)
                                     : (replay_file(argv[i], verbose) == 0 ? 1 : -1);
        if (n < 0)
            return 2;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input to run (usage: %s [-v] DIR|FILE...)\n", argv[0]);
        return 2;
    }
    printf("replay: %ld inputs ran without a finding\n", total);
    return 0;
}
