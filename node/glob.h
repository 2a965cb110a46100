/*
 * glob.h — Redis's glob patterns (KEYS, SCAN MATCH): `*` any run of bytes, `?` one byte,
 * `[abc]`, `[^abc]` and `[a-z]` one byte of (not of) a set, `\x` the byte x itself. Binary-safe:
 * both the pattern and the string are byte ranges that may hold NULs.
 */
#ifndef RK_GLOB_H
#define RK_GLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether s[0..slen) matches the pattern p[0..plen). Linear in plen * slen at worst: a star
 * backtracks only to the last star (no exponential blow-up on "a*a*a*...b"). */
bool glob_match(const uint8_t *p, size_t plen, const uint8_t *s, size_t slen);

#endif
