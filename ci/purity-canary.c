/*
 * purity-canary.c — a deliberate violation of core/'s purity, never linked into anything.
 *
 * The ctest test core_purity_canary runs ci/check-pure on a library built from this file and
 * passes only if the check names time(): it proves the purity check can still fail.
 */
#include <time.h>

long rk_purity_canary(void);

long rk_purity_canary(void)
{
    return (long)time(NULL);
}
