/*
 * fuzz_util.h — what every fuzz target shares: the libFuzzer entry point's prototype, a check
 * that aborts (so that libFuzzer, and the replay driver under ctest, report it), a reader that
 * turns the fuzzer's bytes into choices, the length-prefixed split of one input into parts, and
 * a sink that keeps the compiler from dropping work whose result is otherwise unused.
 *
 * Parts (targets that need several files): the input is a sequence of
 *   [len u16 little-endian][len bytes]
 * and a part whose len runs past the end of the input is the rest of the input. fuzz/gen_corpus.c
 * writes the same format (fz_put_part).
 *
 * Only static functions: this header is a driver's, included by one target at a time.
 */
#ifndef RK_FUZZ_UTIL_H
#define RK_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer calls this once per input; the replay driver (replay_main.c) too. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the target checks failed: a bug in the code under test (or in the target). */
#define FZ_CHECK(cond, ...)                                                                   \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz: %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* Keeps a value alive: the compiler cannot prove that nobody reads a volatile. */
static inline void fz_use(uint64_t v)
{
    static volatile uint64_t sink;
    uint64_t old = sink; /* a read: clang counts `sink ^= v` as set but never used */
    sink = old ^ v;
}

/* FNV-1a, for digests of what a decoder returned (compared, never stored). */
static inline uint64_t fz_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    if (h == 0)
        h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline uint64_t fz_hash_u64(uint64_t h, uint64_t v)
{
    return fz_hash(h, &v, sizeof(v));
}

/* The fuzzer's bytes as a stream of choices; past the end every read is 0. */
struct fz_bytes {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fz_u8(struct fz_bytes *b)
{
    if (b->n == 0)
        return 0;
    b->n--;
    return *b->p++;
}

static inline uint64_t fz_uint(struct fz_bytes *b, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)fz_u8(b) << (8 * i);
    return v;
}

static inline uint64_t fz_u64(struct fz_bytes *b)
{
    return fz_uint(b, 8);
}

/* A value in [lo, hi] (lo <= hi), from one byte when the range fits one, else from eight. */
static inline uint64_t fz_range(struct fz_bytes *b, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo;
    uint64_t v = span < 256 ? fz_u8(b) : fz_u64(b);
    return span == UINT64_MAX ? v : lo + v % (span + 1);
}

static inline bool fz_bool(struct fz_bytes *b)
{
    return (fz_u8(b) & 1) != 0;
}

/* The next part (see the top of this file): false when no byte is left. */
static inline bool fz_part(struct fz_bytes *b, const uint8_t **p, size_t *n)
{
    if (b->n == 0)
        return false;
    size_t len = (size_t)fz_uint(b, 2);
    if (len > b->n)
        len = b->n;
    *p = b->p;
    *n = len;
    b->p += len;
    b->n -= len;
    return true;
}

#endif
