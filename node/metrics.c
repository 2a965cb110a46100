/*
 * metrics.c — histograms, the command and error tables, the Prometheus text format and the
 * HTTP request parser of the /metrics endpoint (metrics.h says the invariants, M1-M3).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "metrics.h"

/* ------------------------------------------------------------------------------------------ */
/* Histograms (M1, M2)                                                                        */

unsigned metrics_bucket_of(uint64_t us)
{
    if (us <= (1ull << METRICS_BUCKET_SHIFT))
        return 0;
    /* The smallest b with 2^b >= us: the bit length of us - 1. */
    unsigned b = 64u - (unsigned)__builtin_clzll(us - 1);
    unsigned k = b - METRICS_BUCKET_SHIFT;
    return k < METRICS_BUCKETS - 1 ? k : METRICS_BUCKETS - 1;
}

double metrics_bucket_le_s(unsigned k)
{
    RK_ASSERT(k < METRICS_BUCKETS - 1);
    return (double)(1ull << (k + METRICS_BUCKET_SHIFT)) / 1e6;
}

void metrics_hist_observe(struct metrics_hist *h, uint64_t us)
{
    if (h == NULL)
        return;
    atomic_fetch_add_explicit(&h->bucket[metrics_bucket_of(us)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------------ */
/* Tables (M3)                                                                                */

void metrics_cmd_observe(struct metrics_cmds *t, const char *name, uint64_t us,
                         enum metrics_outcome o)
{
    if (name == NULL)
        return;
    /* Open addressing on the pointer: the names are rows of a static table. */
    size_t h = (size_t)(((uintptr_t)name >> 3) * 0x9e3779b97f4a7c15ull >> 40);
    for (size_t i = 0; i < METRICS_CMDS_MAX; i++) {
        struct metrics_cmd *s = &t->slot[(h + i) & (METRICS_CMDS_MAX - 1)];
        if (s->name == name || s->name == NULL) {
            if (s->name == NULL) {
                if (t->n >= METRICS_CMDS_MAX / 2) /* keep probes short */
                    break;
                s->name = name;
                t->n++;
            }
            if (o == METRICS_CMD_REJECTED) {
                s->rejected++;
                return;
            }
            s->calls++;
            s->failed += o == METRICS_CMD_FAILED;
            metrics_hist_observe(&s->latency, us);
            return;
        }
    }
    t->untracked++;
}

void metrics_err_observe(struct metrics_errs *e, const char *text, size_t len)
{
    size_t k = 0;
    while (k < len && text[k] != ' ' && text[k] != '\r' && text[k] != '\n')
        k++;
    bool word = k > 0 && k <= METRICS_ERR_KIND_MAX;
    for (size_t i = 0; word && i < k; i++)
        word = (text[i] >= 'A' && text[i] <= 'Z') || (text[i] >= '0' && text[i] <= '9') ||
               text[i] == '_';
    if (!word) {
        e->other++;
        return;
    }
    for (size_t i = 0; i < e->n; i++)
        if (strlen(e->kind[i]) == k && memcmp(e->kind[i], text, k) == 0) {
            e->count[i]++;
            return;
        }
    if (e->n == METRICS_ERR_KINDS) {
        e->other++;
        return;
    }
    memcpy(e->kind[e->n], text, k);
    e->kind[e->n][k] = 0;
    e->count[e->n++] = 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Text                                                                                       */

void metrics_text_free(struct metrics_text *t)
{
    free(t->p);
    *t = (struct metrics_text){0};
}

void metrics_textf(struct metrics_text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)k < room) {
            t->len += (size_t)k;
            return;
        }
        size_t cap = t->cap ? t->cap : 16384;
        while (cap - t->len <= (size_t)k)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    t->failed = true;
}

void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help)
{
    metrics_textf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *open_brace(const char *labels)
{
    return labels != NULL && labels[0] != 0 ? "{" : "";
}

static const char *close_brace(const char *labels)
{
    return labels != NULL && labels[0] != 0 ? "}" : "";
}

void metrics_u64(struct metrics_text *t, const char *name, const char *labels, uint64_t v)
{
    metrics_textf(t, "%s%s%s%s %" PRIu64 "\n", name, open_brace(labels), labels ? labels : "",
                  close_brace(labels), v);
}

void metrics_f64(struct metrics_text *t, const char *name, const char *labels, double v)
{
    metrics_textf(t, "%s%s%s%s %.9g\n", name, open_brace(labels), labels ? labels : "",
                  close_brace(labels), v);
}

void metrics_hist_write(struct metrics_text *t, const char *name, const char *labels,
                        const struct metrics_hist *h)
{
    const char *l = labels ? labels : "";
    const char *sep = l[0] ? "," : "";
    uint64_t cum = 0;
    for (unsigned k = 0; k < METRICS_BUCKETS; k++) {
        cum += atomic_load_explicit(&h->bucket[k], memory_order_relaxed);
        if (k < METRICS_BUCKETS - 1)
            metrics_textf(t, "%s_bucket{%s%sle=\"%.9g\"} %" PRIu64 "\n", name, l, sep,
                          metrics_bucket_le_s(k), cum);
        else
            metrics_textf(t, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, l, sep, cum);
    }
    double sum_s = (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6;
    metrics_textf(t, "%s_sum%s%s%s %.9g\n", name, open_brace(l), l, close_brace(l), sum_s);
    metrics_textf(t, "%s_count%s%s%s %" PRIu64 "\n", name, open_brace(l), l, close_brace(l), cum);
}

void metrics_label(char *dst, size_t cap, const char *key, const char *value)
{
    RK_ASSERT(cap > 0);
    size_t k = 0;
    int w = snprintf(dst, cap, "%s=\"", key);
    if (w < 0 || (size_t)w >= cap) {
        dst[0] = 0;
        return;
    }
    k = (size_t)w;
    for (const char *s = value; *s != 0; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        size_t need = esc ? 2 : 1;
        if (k + need + 2 > cap)
            break;
        if (esc) {
            memcpy(dst + k, esc, 2);
        } else {
            dst[k] = *s;
        }
        k += need;
    }
    dst[k++] = '"';
    dst[k] = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP                                                                                       */

/* The end of the head (the empty line), or NULL. */
static const char *head_end(const char *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n')
            return p + i + 2;
        if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
            return p + i + 3;
    }
    return NULL;
}

static bool is_tchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

enum metrics_http_req metrics_http_parse(const char *p, size_t len, size_t max)
{
    const char *end = head_end(p, len);
    /* A request line is judged as soon as it is whole, so that garbage is refused at once. */
    const char *eol = memchr(p, '\n', len);
    if (eol == NULL)
        return len >= max ? METRICS_HTTP_TOO_LARGE : METRICS_HTTP_MORE;
    size_t line = (size_t)(eol - p);
    if (line > 0 && p[line - 1] == '\r')
        line--;
    size_t m = 0;
    while (m < line && is_tchar(p[m]))
        m++;
    if (m == 0 || m >= line || p[m] != ' ')
        return METRICS_HTTP_BAD_REQUEST;
    size_t t0 = m + 1, t1 = t0;
    while (t1 < line && p[t1] != ' ' && (unsigned char)p[t1] > 0x20 && (unsigned char)p[t1] < 0x7f)
        t1++;
    if (t1 == t0 || t1 >= line || p[t1] != ' ')
        return METRICS_HTTP_BAD_REQUEST;
    const char *ver = p + t1 + 1;
    size_t vlen = line - (t1 + 1);
    if (vlen != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || (ver[7] != '0' && ver[7] != '1'))
        return METRICS_HTTP_BAD_REQUEST;
    if (end == NULL)
        return len >= max ? METRICS_HTTP_TOO_LARGE : METRICS_HTTP_MORE;
    if ((size_t)(end - p) > max)
        return METRICS_HTTP_TOO_LARGE;
    size_t tlen = t1 - t0;
    const char *target = p + t0;
    bool metrics = (tlen == 8 && memcmp(target, "/metrics", 8) == 0) ||
                   (tlen > 8 && memcmp(target, "/metrics?", 9) == 0);
    if (!metrics)
        return METRICS_HTTP_NOT_FOUND;
    return m == 3 && memcmp(p, "GET", 3) == 0 ? METRICS_HTTP_METRICS : METRICS_HTTP_BAD_METHOD;
}

const char *metrics_http_req_name(enum metrics_http_req r)
{
    switch (r) {
    case METRICS_HTTP_MORE:
        return "incomplete";
    case METRICS_HTTP_METRICS:
        return "ok";
    case METRICS_HTTP_NOT_FOUND:
        return "not found";
    case METRICS_HTTP_BAD_METHOD:
        return "method not allowed";
    case METRICS_HTTP_BAD_REQUEST:
        return "bad request";
    case METRICS_HTTP_TOO_LARGE:
        return "request head too large";
    }
    return "?";
}
