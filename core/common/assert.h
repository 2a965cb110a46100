/*
 * assert.h — assertions that stay on in release builds (TigerBeetle, SQLite).
 *
 * RK_ASSERT is for programmer errors only: never for untrusted bytes, which yield an error.
 * RK_ASSERT_SLOW is for O(n) checks; it is compiled in when RK_SLOW_ASSERTS is defined
 * (debug, test, sim and fuzz builds).
 */
#ifndef RK_ASSERT_H
#define RK_ASSERT_H

_Noreturn void rk_assert_fail(const char *expr, const char *file, int line);

#define RK_ASSERT(expr) ((expr) ? (void)0 : rk_assert_fail(#expr, __FILE__, __LINE__))

#ifdef RK_SLOW_ASSERTS
#define RK_ASSERT_SLOW(expr) RK_ASSERT(expr)
#else
#define RK_ASSERT_SLOW(expr) ((void)0)
#endif

#endif
