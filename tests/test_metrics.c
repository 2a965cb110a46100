/*
 * test_metrics.c — node/metrics.c: histogram buckets, the command and error tables, the
 * Prometheus text format, and the /metrics endpoint's HTTP request parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static void buckets_are_log_scale_and_cover_every_value(void **state)
{
    (void)state;
    assert_int_equal(metrics_bucket_of(0), 0);
    assert_int_equal(metrics_bucket_of(16), 0);
    assert_int_equal(metrics_bucket_of(17), 1);
    assert_int_equal(metrics_bucket_of(32), 1);
    assert_int_equal(metrics_bucket_of(33), 2);
    assert_int_equal(metrics_bucket_of(1000), 6); /* 1 ms <= 1024 us */
    assert_int_equal(metrics_bucket_of(1ull << 25), METRICS_BUCKETS - 2);
    assert_int_equal(metrics_bucket_of((1ull << 25) + 1), METRICS_BUCKETS - 1);
    assert_int_equal(metrics_bucket_of(UINT64_MAX), METRICS_BUCKETS - 1);
    /* Every value lands in the first bucket whose bound holds it (M1). */
    for (uint64_t us = 1; us < (1ull << 26); us = us * 3 / 2 + 1) {
        unsigned k = metrics_bucket_of(us);
        if (k < METRICS_BUCKETS - 1)
            assert_true((double)us / 1e6 <= metrics_bucket_le_s(k));
        if (k > 0)
            assert_true((double)us / 1e6 > metrics_bucket_le_s(k - 1));
    }
}

static void histogram_text_is_cumulative_and_ends_with_count(void **state)
{
    (void)state;
    struct metrics_hist *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    metrics_hist_observe(h, 10);
    metrics_hist_observe(h, 100);
    metrics_hist_observe(h, 100);
    metrics_hist_observe(h, 1ull << 40);
    metrics_hist_observe(NULL, 5); /* nothing */
    struct metrics_text t = {0};
    metrics_family(&t, "x_seconds", "histogram", "a test");
    metrics_hist_write(&t, "x_seconds", "command=\"get\"", h);
    assert_false(t.failed);
    assert_non_null(strstr(t.p, "# HELP x_seconds a test\n# TYPE x_seconds histogram\n"));
    assert_non_null(strstr(t.p, "x_seconds_bucket{command=\"get\",le=\"1.6e-05\"} 1\n"));
    assert_non_null(strstr(t.p, "x_seconds_bucket{command=\"get\",le=\"0.000128\"} 3\n"));
    assert_non_null(strstr(t.p, "x_seconds_bucket{command=\"get\",le=\"33.554432\"} 3\n"));
    assert_non_null(strstr(t.p, "x_seconds_bucket{command=\"get\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(t.p, "x_seconds_count{command=\"get\"} 4\n"));
    /* Cumulative: never decreasing. */
    uint64_t last = 0;
    for (const char *p = strstr(t.p, "_bucket{"); p != NULL; p = strstr(p + 1, "_bucket{")) {
        const char *sp = strchr(p, ' ');
        uint64_t v = strtoull(sp + 1, NULL, 10);
        assert_true(v >= last);
        last = v;
    }
    assert_int_equal(last, 4);
    metrics_text_free(&t);
    free(h);
}

static void samples_and_labels_follow_the_format(void **state)
{
    (void)state;
    struct metrics_text t = {0};
    metrics_u64(&t, "a_total", NULL, 7);
    metrics_u64(&t, "b_total", "", 8);
    char l[64];
    metrics_label(l, sizeof(l), "kind", "we\"ird\\\nname");
    assert_string_equal(l, "kind=\"we\\\"ird\\\\\\nname\"");
    metrics_u64(&t, "c_total", l, 9);
    metrics_f64(&t, "d_seconds", NULL, 0.25);
    assert_false(t.failed);
    assert_string_equal(t.p, "a_total 7\nb_total 8\nc_total{kind=\"we\\\"ird\\\\\\nname\"} 9\n"
                             "d_seconds 0.25\n");
    /* A label that does not fit is cut short but stays quoted. */
    char small[12];
    metrics_label(small, sizeof(small), "k", "0123456789abcdef");
    assert_int_equal(small[strlen(small) - 1], '"');
    metrics_text_free(&t);
}

static void text_grows_past_its_first_block(void **state)
{
    (void)state;
    struct metrics_text t = {0};
    for (int i = 0; i < 5000; i++)
        metrics_u64(&t, "raftkv_some_long_metric_name_total", "peer=\"12\"", (uint64_t)i);
    assert_false(t.failed);
    assert_true(t.len > 16384);
    assert_non_null(strstr(t.p, "raftkv_some_long_metric_name_total{peer=\"12\"} 4999\n"));
    metrics_text_free(&t);
}

static const char names[3][8] = {"get", "set", "incr"};

static void commands_are_counted_by_row(void **state)
{
    (void)state;
    struct metrics_cmds *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    metrics_cmd_observe(t, names[0], 10, METRICS_CMD_OK);
    metrics_cmd_observe(t, names[1], 20, METRICS_CMD_OK);
    metrics_cmd_observe(t, names[0], 30, METRICS_CMD_OK);
    metrics_cmd_observe(t, NULL, 30, METRICS_CMD_OK); /* unknown command: nothing */
    assert_int_equal(t->n, 2);
    uint64_t get = 0, set = 0;
    for (size_t i = 0; i < METRICS_CMDS_MAX; i++) {
        if (t->slot[i].name == names[0])
            get = t->slot[i].calls;
        if (t->slot[i].name == names[1])
            set = t->slot[i].calls;
    }
    assert_int_equal(get, 2);
    assert_int_equal(set, 1);
    /* Bounded (M3): past half the table, new names are counted as untracked. */
    static char many[METRICS_CMDS_MAX][8];
    for (size_t i = 0; i < METRICS_CMDS_MAX; i++)
        metrics_cmd_observe(t, many[i], 1, METRICS_CMD_OK);
    assert_int_equal(t->n, METRICS_CMDS_MAX / 2);
    assert_int_equal(t->untracked, METRICS_CMDS_MAX - (METRICS_CMDS_MAX / 2 - 2));
    free(t);
}

static void errors_are_counted_by_first_word(void **state)
{
    (void)state;
    struct metrics_errs *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    const char *lines[] = {"ERR unknown command", "WRONGTYPE Operation against a key",
                           "ERR syntax error",    "TIMEOUT",
                           "lowercase words",     "",
                           "TRYAGAIN x"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        metrics_err_observe(e, lines[i], strlen(lines[i]));
    assert_int_equal(e->n, 4);
    assert_string_equal(e->kind[0], "ERR");
    assert_int_equal(e->count[0], 2);
    assert_string_equal(e->kind[1], "WRONGTYPE");
    assert_string_equal(e->kind[2], "TIMEOUT");
    assert_string_equal(e->kind[3], "TRYAGAIN");
    assert_int_equal(e->other, 2);
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "K%d x", i);
        metrics_err_observe(e, k, strlen(k));
    }
    assert_int_equal(e->n, METRICS_ERR_KINDS);
    assert_int_equal(e->other, 2 + 100 - (METRICS_ERR_KINDS - 4));
    free(e);
}

static enum metrics_http_req parse(const char *s)
{
    return metrics_http_parse(s, strlen(s), 8192);
}

static void http_requests_are_answered_by_path_and_method(void **state)
{
    (void)state;
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), METRICS_HTTP_METRICS);
    assert_int_equal(parse("GET /metrics?x=1 HTTP/1.0\n\n"), METRICS_HTTP_METRICS);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n"), METRICS_HTTP_NOT_FOUND);
    assert_int_equal(parse("GET /metricsx HTTP/1.1\r\n\r\n"), METRICS_HTTP_NOT_FOUND);
    assert_int_equal(parse("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
                     METRICS_HTTP_BAD_METHOD);
    assert_int_equal(parse("get /metrics HTTP/1.1\r\n\r\n"), METRICS_HTTP_BAD_METHOD);
    /* Incomplete: more is needed. */
    assert_int_equal(parse(""), METRICS_HTTP_MORE);
    assert_int_equal(parse("GET /metr"), METRICS_HTTP_MORE);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n"), METRICS_HTTP_MORE);
    /* Garbage is refused as soon as its first line is whole. */
    assert_int_equal(parse("garbage\r\n"), METRICS_HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET /metrics\r\n\r\n"), METRICS_HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET /metrics HTTP/2.0\r\n\r\n"), METRICS_HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET  /metrics HTTP/1.1\r\n\r\n"), METRICS_HTTP_BAD_REQUEST);
    assert_int_equal(parse("\r\n\r\n"), METRICS_HTTP_BAD_REQUEST);
    assert_int_equal(parse("*1\r\n$4\r\nPING\r\n"), METRICS_HTTP_BAD_REQUEST);
    /* Too large: no end of the head within the bound. */
    char *big = malloc(9000);
    assert_non_null(big);
    memset(big, 'a', 9000);
    assert_int_equal(metrics_http_parse(big, 9000, 8192), METRICS_HTTP_TOO_LARGE);
    int k = snprintf(big, 9000, "GET /metrics HTTP/1.1\r\n");
    memset(big + k, 'h', 9000 - (size_t)k);
    assert_int_equal(metrics_http_parse(big, 9000, 8192), METRICS_HTTP_TOO_LARGE);
    assert_int_equal(metrics_http_parse(big, 100, 8192), METRICS_HTTP_MORE);
    free(big);
    assert_string_equal(metrics_http_req_name(METRICS_HTTP_NOT_FOUND), "not found");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_are_log_scale_and_cover_every_value),
        cmocka_unit_test(histogram_text_is_cumulative_and_ends_with_count),
        cmocka_unit_test(samples_and_labels_follow_the_format),
        cmocka_unit_test(text_grows_past_its_first_block),
        cmocka_unit_test(commands_are_counted_by_row),
        cmocka_unit_test(errors_are_counted_by_first_word),
        cmocka_unit_test(http_requests_are_answered_by_path_and_method),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
