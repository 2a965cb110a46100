/*
 * glob.c — Redis-style glob matching (glob.h).
 *
 * The classic iterative matcher: on a mismatch after a '*', retry with the star swallowing one
 * more byte of s. Only the last star needs remembering (an earlier star can only swallow bytes
 * the later one could), which bounds the work by plen * slen where Redis's recursive
 * stringmatchlen needs a special case to stop exponential runs.
 */
#include "glob.h"

/* Matches one byte c against the class starting after '[' at p[*i]; advances *i past the ']'
 * (an unterminated class runs to the end of the pattern, as in Redis). */
static bool class_match(const uint8_t *p, size_t plen, size_t *i, uint8_t c)
{
    size_t k = *i;
    bool negate = k < plen && p[k] == '^';
    if (negate)
        k++;
    bool hit = false;
    while (k < plen && p[k] != ']') {
        if (p[k] == '\\' && k + 1 < plen) {
            hit |= p[k + 1] == c;
            k += 2;
        } else if (k + 2 < plen && p[k + 1] == '-' && p[k + 2] != ']') {
            uint8_t lo = p[k], hi = p[k + 2];
            if (lo > hi) {
                uint8_t t = lo;
                lo = hi;
                hi = t;
            }
            hit |= c >= lo && c <= hi;
            k += 3;
        } else {
            hit |= p[k] == c;
            k++;
        }
    }
    *i = k < plen ? k + 1 : k; /* past the ']' */
    return hit != negate;
}

bool glob_match(const uint8_t *p, size_t plen, const uint8_t *s, size_t slen)
{
    size_t pi = 0, si = 0;
    size_t star_p = SIZE_MAX, star_s = 0; /* the last star: pattern after it, s where it began */
    while (si < slen) {
        if (pi < plen) {
            uint8_t pc = p[pi];
            if (pc == '*') {
                while (pi < plen && p[pi] == '*')
                    pi++;
                if (pi == plen)
                    return true; /* a trailing star takes the rest */
                star_p = pi;
                star_s = si;
                continue;
            }
            size_t next = pi + 1;
            bool ok;
            if (pc == '?') {
                ok = true;
            } else if (pc == '[') {
                ok = class_match(p, plen, &next, s[si]);
            } else if (pc == '\\' && pi + 1 < plen) {
                ok = p[pi + 1] == s[si];
                next = pi + 2;
            } else {
                ok = pc == s[si];
            }
            if (ok) {
                pi = next;
                si++;
                continue;
            }
        }
        if (star_p == SIZE_MAX)
            return false;
        pi = star_p; /* the star swallows one more byte */
        si = ++star_s;
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}
