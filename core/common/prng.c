/* prng.c — xoshiro256** seeded by splitmix64 (both public-domain reference algorithms). */
#include "prng.h"

#include "assert.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void rk_prng_seed(struct rk_prng *p, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        p->s[i] = splitmix64(&x);
}

uint64_t rk_prng_next(struct rk_prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rk_prng_below(struct rk_prng *p, uint64_t bound)
{
    RK_ASSERT(bound > 0);
    unsigned __int128 m = (unsigned __int128)rk_prng_next(p) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = -bound % bound;
        while (low < threshold) {
            m = (unsigned __int128)rk_prng_next(p) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

uint64_t rk_prng_range(struct rk_prng *p, uint64_t lo, uint64_t hi)
{
    RK_ASSERT(lo <= hi);
    if (hi - lo == UINT64_MAX)
        return rk_prng_next(p);
    return lo + rk_prng_below(p, hi - lo + 1);
}
