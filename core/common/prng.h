/*
 * prng.h — xoshiro256** (Blackman & Vigna) seeded through splitmix64. The only source of
 * randomness in core/: its state lives in the struct that uses it, so one seed reproduces a run.
 */
#ifndef RK_PRNG_H
#define RK_PRNG_H

#include <stdint.h>

struct rk_prng {
    uint64_t s[4];
};

void rk_prng_seed(struct rk_prng *p, uint64_t seed);
uint64_t rk_prng_next(struct rk_prng *p);
/* Uniform in [0, bound); bound > 0. Unbiased (Lemire's multiply-and-reject). */
uint64_t rk_prng_below(struct rk_prng *p, uint64_t bound);
/* Uniform in [lo, hi]; lo <= hi. */
uint64_t rk_prng_range(struct rk_prng *p, uint64_t lo, uint64_t hi);

#endif
