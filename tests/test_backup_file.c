/*
 * test_backup_file.c — the backup file format (node/backup_file.h): a round trip, and every
 * kind of damage found by the reader with what and where (B1..B3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup_file.h"
#include "common/crc32c.h"

/* ---- a backup in memory --------------------------------------------------------------------- */

struct image {
    uint8_t *p;
    size_t len, cap;
    struct backup_header h;
};

static void image_append(struct image *im, const uint8_t *p, size_t len)
{
    if (im->len + len > im->cap) {
        im->cap = (im->len + len) * 2;
        im->p = realloc(im->p, im->cap);
        assert_non_null(im->p);
    }
    memcpy(im->p + im->len, p, len);
    im->len += len;
}

static void image_key(unsigned i, char *key, size_t cap, uint32_t *len)
{
    *len = (uint32_t)snprintf(key, cap, "0key-%u", i);
}

/* n records (record i: key "0key-i", value of i % 300 bytes of i), chunks closed at target
 * bytes: what raftkv-cli writes, header last. */
static struct image image_make(unsigned n, size_t target)
{
    struct image im = {0};
    uint8_t zero[BACKUP_HEADER_BYTES] = {0};
    image_append(&im, zero, sizeof(zero));
    im.h = (struct backup_header){.cluster_id = 7, .index = 1234, .term = 5};
    struct backup_chunk c = {0};
    backup_chunk_reset(&c);
    uint8_t val[300];
    for (unsigned i = 0; i <= n; i++) {
        bool last = i == n;
        if (!last) {
            char key[32];
            uint32_t kl;
            image_key(i, key, sizeof(key), &kl);
            memset(val, (int)(i & 0xff), sizeof(val));
            assert_true(backup_chunk_add(&c, (const uint8_t *)key, kl, val, i % 300));
        }
        if (c.records > 0 && (last || c.len - BACKUP_CHUNK_HEAD_BYTES >= target)) {
            backup_chunk_seal(&c);
            image_append(&im, c.buf, c.len);
            im.h.body_crc = rk_crc32c(im.h.body_crc, c.buf, c.len);
            im.h.body_bytes += c.len;
            im.h.records += c.records;
            im.h.chunks++;
            backup_chunk_reset(&c);
        }
    }
    backup_chunk_free(&c);
    backup_header_encode(&im.h, im.p);
    return im;
}

struct mem_reader {
    const uint8_t *p;
    size_t len, off;
};

static int mem_read(void *ctx, void *buf, size_t len, size_t *got)
{
    struct mem_reader *m = ctx;
    size_t n = m->len - m->off < len ? m->len - m->off : len;
    memcpy(buf, m->p + m->off, n);
    m->off += n;
    *got = n;
    return RK_OK;
}

struct collect {
    unsigned n;
    bool mismatch;
    const uint8_t *file; /* the image: each record is where its offset says */
};

static int collect_one(void *ctx, uint64_t off, const uint8_t *key, uint32_t key_len,
                       const uint8_t *val, uint32_t val_len)
{
    struct collect *c = ctx;
    if (c->file != NULL && memcmp(c->file + off + BACKUP_RECORD_HEAD_BYTES, key, key_len) != 0)
        c->mismatch = true;
    char want[32];
    uint32_t wl;
    image_key(c->n, want, sizeof(want), &wl);
    if (key_len != wl || memcmp(key, want, wl) != 0 || val_len != c->n % 300)
        c->mismatch = true;
    for (uint32_t i = 0; i < val_len; i++)
        if (val[i] != (uint8_t)(c->n & 0xff))
            c->mismatch = true;
    c->n++;
    return RK_OK;
}

static int read_image(const uint8_t *p, size_t len, struct backup_header *h, struct collect *col,
                      struct rk_errmsg *err)
{
    struct mem_reader m = {.p = p, .len = len};
    return backup_read(mem_read, &m, h, col ? collect_one : NULL, col, err);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void round_trip_gives_back_every_record_and_the_header(void **state)
{
    (void)state;
    struct image im = image_make(5000, 4096);
    assert_true(im.h.chunks > 10);
    struct backup_header h;
    struct collect col = {.file = im.p};
    struct rk_errmsg err = {{0}};
    int rc = read_image(im.p, im.len, &h, &col, &err);
    if (rc != RK_OK)
        fail_msg("%s", err.text);
    assert_int_equal(col.n, 5000);
    assert_false(col.mismatch);
    assert_int_equal(h.cluster_id, 7);
    assert_int_equal(h.index, 1234);
    assert_int_equal(h.term, 5);
    assert_int_equal(h.records, 5000);
    assert_int_equal(h.chunks, im.h.chunks);
    assert_int_equal(h.body_bytes, im.len - BACKUP_HEADER_BYTES);
    free(im.p);
}

static void an_empty_backup_round_trips(void **state)
{
    (void)state;
    struct image im = image_make(0, 4096);
    assert_int_equal(im.len, BACKUP_HEADER_BYTES);
    struct backup_header h;
    struct collect col = {0};
    struct rk_errmsg err = {{0}};
    assert_int_equal(read_image(im.p, im.len, &h, &col, &err), RK_OK);
    assert_int_equal(col.n, 0);
    free(im.p);
}

static void every_flipped_byte_is_found(void **state)
{
    (void)state;
    struct image im = image_make(40, 600);
    assert_true(im.h.chunks >= 3);
    uint8_t *copy = malloc(im.len);
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    for (size_t off = 0; off < im.len; off++) {
        for (size_t k = 0; k < sizeof(masks); k++) {
            memcpy(copy, im.p, im.len);
            copy[off] ^= masks[k];
            struct backup_header h;
            struct rk_errmsg err = {{0}};
            int rc = read_image(copy, im.len, &h, NULL, &err);
            if (rc != RK_ECORRUPT && rc != RK_EMALFORMED)
                fail_msg("byte %zu ^ 0x%02x: %d (%s)", off, masks[k], rc, err.text);
            assert_true(strlen(err.text) > 0);
        }
    }
    free(copy);
    free(im.p);
}

static void every_cut_is_found(void **state)
{
    (void)state;
    struct image im = image_make(40, 600);
    for (size_t len = 0; len < im.len; len++) {
        struct backup_header h;
        struct rk_errmsg err = {{0}};
        int rc = read_image(im.p, len, &h, NULL, &err);
        if (rc != RK_EMALFORMED)
            fail_msg("cut at %zu: %d (%s)", len, rc, err.text);
    }
    free(im.p);
}

static void bytes_after_the_end_are_found(void **state)
{
    (void)state;
    struct image im = image_make(40, 600);
    uint8_t extra = 0;
    image_append(&im, &extra, 1);
    struct backup_header h;
    struct rk_errmsg err = {{0}};
    assert_int_equal(read_image(im.p, im.len, &h, NULL, &err), RK_EMALFORMED);
    assert_non_null(strstr(err.text, "after the body"));
    free(im.p);
}

static void swapped_chunks_fail_the_body_crc(void **state)
{
    (void)state;
    /* Chunks of equal size, so that the swap keeps every chunk whole. */
    struct image im = {0};
    uint8_t zero[BACKUP_HEADER_BYTES] = {0};
    image_append(&im, zero, sizeof(zero));
    im.h = (struct backup_header){.index = 9, .term = 2};
    size_t at[2];
    for (int i = 0; i < 2; i++) {
        struct backup_chunk c = {0};
        backup_chunk_reset(&c);
        uint8_t key[4] = {'0', 'k', (uint8_t)('a' + i), 0};
        assert_true(backup_chunk_add(&c, key, 4, key, 4));
        backup_chunk_seal(&c);
        at[i] = im.len;
        image_append(&im, c.buf, c.len);
        im.h.body_crc = rk_crc32c(im.h.body_crc, c.buf, c.len);
        im.h.body_bytes += c.len;
        im.h.records++;
        im.h.chunks++;
        backup_chunk_free(&c);
    }
    backup_header_encode(&im.h, im.p);
    size_t n = at[1] - at[0];
    uint8_t tmp[64];
    assert_true(n <= sizeof(tmp));
    memcpy(tmp, im.p + at[0], n);
    memmove(im.p + at[0], im.p + at[1], n);
    memcpy(im.p + at[1], tmp, n);
    struct backup_header h;
    struct rk_errmsg err = {{0}};
    assert_int_equal(read_image(im.p, im.len, &h, NULL, &err), RK_ECORRUPT);
    assert_non_null(strstr(err.text, "body: crc32c"));
    free(im.p);
}

static void a_damaged_chunk_is_named_with_its_offset(void **state)
{
    (void)state;
    struct image im = image_make(40, 600);
    /* The second chunk starts after the header and the first one. */
    size_t first = BACKUP_HEADER_BYTES + BACKUP_CHUNK_HEAD_BYTES +
                   (im.p[BACKUP_HEADER_BYTES + 4] | im.p[BACKUP_HEADER_BYTES + 5] << 8);
    im.p[first + BACKUP_CHUNK_HEAD_BYTES + 3] ^= 0x10;
    struct backup_header h;
    struct rk_errmsg err = {{0}};
    assert_int_equal(read_image(im.p, im.len, &h, NULL, &err), RK_ECORRUPT);
    char want[64];
    snprintf(want, sizeof(want), "chunk 1 (offset %zu", first);
    if (strstr(err.text, want) == NULL)
        fail_msg("'%s' lacks '%s'", err.text, want);
    free(im.p);
}

static void records_of_a_damaged_chunk_are_never_handed_out(void **state)
{
    (void)state;
    struct image im = image_make(40, 600);
    im.p[im.len - 1] ^= 0x01; /* the last chunk's last byte */
    struct backup_header h;
    struct collect col = {0};
    struct rk_errmsg err = {{0}};
    assert_int_equal(read_image(im.p, im.len, &h, &col, &err), RK_ECORRUPT);
    assert_true(col.n < 40); /* the last chunk's records were not */
    assert_false(col.mismatch);
    free(im.p);
}

static void a_header_with_wrong_totals_is_refused(void **state)
{
    (void)state;
    struct image im = image_make(40, 600);
    struct backup_header h = im.h;
    h.records++;
    backup_header_encode(&h, im.p);
    struct rk_errmsg err = {{0}};
    assert_int_equal(read_image(im.p, im.len, &h, NULL, &err), RK_EMALFORMED);
    assert_non_null(strstr(err.text, "the header says"));
    h = im.h;
    h.body_bytes -= 1;
    backup_header_encode(&h, im.p);
    assert_int_not_equal(read_image(im.p, im.len, &h, NULL, &err), RK_OK);
    free(im.p);
}

static void another_version_and_a_zero_header_are_refused(void **state)
{
    (void)state;
    struct image im = image_make(3, 600);
    struct backup_header h;
    struct rk_errmsg err = {{0}};
    im.p[4] = 2; /* version 2, crc made good */
    uint32_t crc = rk_crc32c(0, im.p, 60);
    for (int i = 0; i < 4; i++)
        im.p[60 + i] = (uint8_t)(crc >> (8 * i));
    assert_int_equal(read_image(im.p, im.len, &h, NULL, &err), RK_EMALFORMED);
    assert_non_null(strstr(err.text, "format version 2"));
    memset(im.p, 0, BACKUP_HEADER_BYTES); /* an unfinished FILE.part */
    assert_int_equal(read_image(im.p, im.len, &h, NULL, &err), RK_EMALFORMED);
    assert_non_null(strstr(err.text, "never finished"));
    free(im.p);
}

static void a_chunk_length_past_the_body_is_refused_before_reading(void **state)
{
    (void)state;
    struct image im = image_make(3, 600);
    uint8_t *len = im.p + BACKUP_HEADER_BYTES + 4;
    memset(len, 0xff, 4); /* 4 GiB: must not be allocated */
    struct backup_header h;
    struct rk_errmsg err = {{0}};
    assert_int_equal(read_image(im.p, im.len, &h, NULL, &err), RK_EMALFORMED);
    assert_non_null(strstr(err.text, "runs past the body"));
    free(im.p);
}

static void an_empty_chunk_is_refused(void **state)
{
    (void)state;
    uint8_t head[BACKUP_CHUNK_HEAD_BYTES] = {0};
    uint32_t crc = rk_crc32c(0, head + 4, 8);
    for (int i = 0; i < 4; i++)
        head[i] = (uint8_t)(crc >> (8 * i));
    uint32_t n = 0;
    struct rk_errmsg err = {{0}};
    assert_int_equal(backup_chunk_check(head, sizeof(head), 64, 0, &n, &err), RK_EMALFORMED);
    assert_non_null(strstr(err.text, "empty"));
}

static void chunk_add_refuses_what_a_store_never_holds(void **state)
{
    (void)state;
    struct backup_chunk c = {0};
    backup_chunk_reset(&c);
    uint8_t k = 'x';
    assert_false(backup_chunk_add(&c, &k, 0, NULL, 0));
    assert_false(backup_chunk_add(&c, &k, BACKUP_KEY_MAX_BYTES + 1, NULL, 0));
    assert_false(backup_chunk_add(&c, &k, 1, &k, BACKUP_VALUE_MAX_BYTES + 1));
    assert_int_equal(c.records, 0);
    backup_chunk_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_gives_back_every_record_and_the_header),
        cmocka_unit_test(an_empty_backup_round_trips),
        cmocka_unit_test(every_flipped_byte_is_found),
        cmocka_unit_test(every_cut_is_found),
        cmocka_unit_test(bytes_after_the_end_are_found),
        cmocka_unit_test(swapped_chunks_fail_the_body_crc),
        cmocka_unit_test(a_damaged_chunk_is_named_with_its_offset),
        cmocka_unit_test(records_of_a_damaged_chunk_are_never_handed_out),
        cmocka_unit_test(a_header_with_wrong_totals_is_refused),
        cmocka_unit_test(another_version_and_a_zero_header_are_refused),
        cmocka_unit_test(a_chunk_length_past_the_body_is_refused_before_reading),
        cmocka_unit_test(an_empty_chunk_is_refused),
        cmocka_unit_test(chunk_add_refuses_what_a_store_never_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
