/* test_crc32c.c — CRC-32C: standard vectors, incremental use, and hardware == software. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/prng.h"

/* Bit-at-a-time definition of CRC-32C: the reference that the table and the instruction must
 * both match. */
static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
    uint32_t c = ~crc;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static void test_check_value_123456789(void **state)
{
    (void)state;
    assert_int_equal(rk_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(rk_crc32c_sw(0, "123456789", 9), 0xE3069283u);
}

static void test_empty_input_is_zero(void **state)
{
    (void)state;
    assert_int_equal(rk_crc32c(0, NULL, 0), 0);
    assert_int_equal(rk_crc32c_sw(0, NULL, 0), 0);
    assert_int_equal(rk_crc32c(0x12345678u, NULL, 0), 0x12345678u);
}

/* RFC 3720 (iSCSI) appendix B.4 test vectors. */
static void test_rfc3720_vectors(void **state)
{
    (void)state;
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    assert_int_equal(rk_crc32c(0, buf, 32), 0x8A9136AAu);
    assert_int_equal(rk_crc32c_sw(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof(buf));
    assert_int_equal(rk_crc32c(0, buf, 32), 0x62A8AB43u);
    assert_int_equal(rk_crc32c_sw(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(rk_crc32c(0, buf, 32), 0x46DD794Eu);
    assert_int_equal(rk_crc32c_sw(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(rk_crc32c(0, buf, 32), 0x113FDB5Cu);
    assert_int_equal(rk_crc32c_sw(0, buf, 32), 0x113FDB5Cu);
}

static void test_incremental_equals_one_shot(void **state)
{
    (void)state;
    uint8_t buf[300];
    struct rk_prng p;
    rk_prng_seed(&p, 7);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rk_prng_next(&p);
    uint32_t whole = rk_crc32c(0, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut++) {
        assert_int_equal(rk_crc32c(rk_crc32c(0, buf, cut), buf + cut, sizeof(buf) - cut), whole);
        assert_int_equal(rk_crc32c_sw(rk_crc32c_sw(0, buf, cut), buf + cut, sizeof(buf) - cut),
                         whole);
    }
}

static void test_sw_matches_bitwise_reference(void **state)
{
    (void)state;
    uint8_t buf[600];
    struct rk_prng p;
    rk_prng_seed(&p, 11);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rk_prng_next(&p);
    for (size_t len = 0; len <= 512; len++) {
        uint32_t seed = (uint32_t)rk_prng_next(&p);
        assert_int_equal(rk_crc32c_sw(seed, buf + (len & 7), len),
                         crc32c_bitwise(seed, buf + (len & 7), len));
    }
}

/* Every length 0..1000 at every alignment 0..7: covers the head, body and tail loops of both
 * implementations. On a CPU without SSE4.2 both calls take the table path. */
static void test_hw_matches_sw_all_lengths_and_alignments(void **state)
{
    (void)state;
    static uint8_t buf[1000 + 8 + 8];
    struct rk_prng p;
    rk_prng_seed(&p, 42);
    /* Offsets from an 8-aligned base, so that "alignment" means the address modulo 8. */
    uint8_t *base = (uint8_t *)(((uintptr_t)buf + 7) & ~(uintptr_t)7);
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len <= 1000; len++) {
            for (size_t i = 0; i < len; i++)
                base[align + i] = (uint8_t)rk_prng_next(&p);
            uint32_t seed = (uint32_t)rk_prng_next(&p);
            assert_int_equal(rk_crc32c(seed, base + align, len),
                             rk_crc32c_sw(seed, base + align, len));
        }
    }
}

static void test_hw_available_on_sse42_cpus(void **state)
{
    (void)state;
#if defined(__x86_64__)
    assert_true(rk_crc32c_hw_available() == (bool)__builtin_cpu_supports("sse4.2"));
#else
    assert_false(rk_crc32c_hw_available());
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value_123456789),
        cmocka_unit_test(test_empty_input_is_zero),
        cmocka_unit_test(test_rfc3720_vectors),
        cmocka_unit_test(test_incremental_equals_one_shot),
        cmocka_unit_test(test_sw_matches_bitwise_reference),
        cmocka_unit_test(test_hw_matches_sw_all_lengths_and_alignments),
        cmocka_unit_test(test_hw_available_on_sse42_cpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
