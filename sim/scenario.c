/*
 * scenario.c — the scenario language (scenarios/README.md): parser, semantic checks, printer.
 *
 *   text ─ scn_parse ─► one line at a time ─ scn_parse_line ─► tokens ─► a command handler
 *          (bounds: SCN_MAX_LINES lines,        (split on space/tab,        scn_cmd_* (setting)
 *           SCN_MAX_LINE_BYTES a line,           '#' ends the line)         scn_cmd_at (step)
 *           no NUL byte)                                                         │
 *        ◄─ scenario ◄─ scn_check_steps, scn_check_settings (need the whole file) ◄┘
 *
 * Invariants:
 *   1. Total: the text is only read through indices checked against len (lines) and the line's
 *      length (tokens); nothing recurses; nothing is allocated; every loop is bounded by the
 *      input or by a constant.
 *   2. Every error is "FILE:LINE:COL: expected WHAT, got 'TOKEN'" or "... got end of line",
 *      LINE and COL 1-based, COL in bytes (a tab is one column); TOKEN is escaped and cut to
 *      SCN_TOKEN_SHOW_BYTES bytes.
 *   3. Checks that depend only on one line run when it is read (syntax, ranges, min <= max,
 *      time order, no id named twice in a step). Checks that depend on settings that may come
 *      later (ids within 1..nodes, a cluster large enough for `random minority`, election
 *      above heartbeat) run after the last line, from positions recorded
 *      while parsing, and report the first failing step in file order.
 *   4. scn_print writes only what scn_parse reads back to the same struct (but steps' line).
 *
 * Decimals go through strtod and printf's %g: they assume the C locale's '.' (a program that
 * changes LC_NUMERIC gets syntax errors, never a misread value: strtod must consume the token).
 */
#include "scenario.h"

#include "common/assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCN_TOKEN_SHOW_BYTES 32
#define SCN_SHOW_SIZE        (SCN_TOKEN_SHOW_BYTES * 4 + 4) /* every byte as \xHH, then "..." */
#define SCN_MAX_TOKENS       (SCN_MAX_LINE_BYTES / 2 + 1)   /* "a a a ...": a token and a space */
#define SCN_MAX_TICKS        1000000u
#define SCN_MAX_CLIENTS      64u
#define SCN_MAX_KEYS         1000u
#define SCN_MAX_WEIGHT       1000000u
#define SCN_US_PER_MS        1000ULL
#define SCN_US_PER_S         1000000ULL
#define SCN_DURATION_TEXT    32 /* "31536000000000us" and a NUL fit */
#define SCN_DOUBLE_TEXT      40 /* "%.17g" of any double fits */

#define SCN_TRY(expr)                                                                              \
    do {                                                                                           \
        int scn_try_rc_ = (expr);                                                                  \
        if (scn_try_rc_ != RK_OK)                                                                  \
            return scn_try_rc_;                                                                    \
    } while (0)

/* Settings that may appear once each: the index into scn_parser.seen. */
enum scn_setting {
    SCN_S_NODES,
    SCN_S_TICK,
    SCN_S_ELECTION,
    SCN_S_HEARTBEAT,
    SCN_S_PREVOTE,
    SCN_S_CHECKQUORUM,
    SCN_S_REPLICATION,
    SCN_S_SNAPSHOT,
    SCN_S_LATENCY,
    SCN_S_DROP,
    SCN_S_DUPLICATE,
    SCN_S_REORDER,
    SCN_S_CLIENTS,
    SCN_S_KEYS,
    SCN_S_MIX,
    SCN_S_PIPELINE,
    SCN_S_THINK,
    SCN_S_TIMEOUT,
    SCN_S_DURATION,
    SCN_S_EXPECT_LEADER,
    SCN_S_EXPECT_COMPLETE,
    SCN_S_EXPECT_DISK,
    SCN_S_CHAOS_CRASH,
    SCN_S_CHAOS_PARTITION,
    SCN_S_CHAOS_PAUSE,
    SCN_S_CHAOS_SKEW,
    SCN_S_CHAOS_DOWNTIME,
    SCN_S_DISK_TORN,
    SCN_S_DISK_BITFLIP,
    SCN_S_DISK_ERRORS,
    SCN_S_DISK_SLOW,
    SCN_S_DISK_CRASHPOINTS,
    SCN_S_DISK_MERGE,
    SCN_S_DISK_ROTATE,
    SCN_S_DISK_SYNC,
    SCN_S_DISK_ROT,
    SCN_S_DISK_BADSECTOR,
    SCN_S_DISK_LOST,
    SCN_S_DISK_MISDIRECT,
    SCN_S_DISK_IO,
    SCN_S_DISK_STOREIO,
    SCN_S_DISK_DAMAGED,
    SCN_S_DISK_WIPE,
    SCN_S_SWARM,
    SCN_S_EXPECT_RECOVERY,
    SCN_S_EXPECT_STEPDOWN,
    SCN_S_EXPECT_AVAILABLE,
    SCN_S_EXPECT_UNAVAILABLE,
    SCN_S_WALLCLOCK,
    SCN_S_MEMBERS,
    SCN_S_CHAOS_MEMBER,
    SCN_S_COUNT
};

struct scn_token {
    uint32_t off; /* byte offset in the line */
    uint32_t len;
};

/* A place in the text that an error found after the last line can name. */
struct scn_pos {
    uint32_t line;   /* 1-based; 0: none */
    uint32_t col;    /* 1-based byte column */
    size_t line_off; /* offset of the line's first byte in the text */
};

/* What a step leaves to check once `nodes` is known. */
struct scn_step_check {
    struct scn_pos at;                  /* the step's time token */
    uint16_t id_col[SCN_MAX_NODES + 1]; /* column of each id named in the step; 0: not named */
    uint16_t need_col;                  /* a target that needs at least need_nodes nodes */
    uint8_t need_nodes;
    const char *need_what;
};

struct scn_parser {
    const char *text;
    size_t len;
    const char *file;
    struct scenario *s;
    struct rk_errmsg *err;
    /* The current line and its tokens; cur is the next token to read. */
    uint32_t lineno;
    size_t line_off;
    const char *line;
    size_t line_len;
    struct scn_token tok[SCN_MAX_TOKENS];
    uint32_t ntok;
    uint32_t cur;
    /* Where each setting was set (line 0: not set), at its first argument. */
    struct scn_pos seen[SCN_S_COUNT];
    bool reorder_max_given;
    struct scn_step_check check[SCN_MAX_STEPS];
};

/* ---- errors ------------------------------------------------------------------------------ */

/* Writes src[0..n) quoted-safe into dst: printable ASCII as is but ' and \ escaped, any other
 * byte as \xHH; more than limit bytes are cut and "..." appended. */
static void scn_escape(const char *src, size_t n, size_t limit, char *dst, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t shown = n < limit ? n : limit;
    size_t o = 0;
    RK_ASSERT(cap >= limit * 4 + 4);
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\\' || c == '\'') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 0xf];
        }
    }
    if (n > shown) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    RK_ASSERT(o < cap);
    dst[o] = '\0';
}

/* got == NULL: the error is at the end of the line. */
__attribute__((format(printf, 6, 0))) static int scn_vfail(const struct scn_parser *p,
                                                           uint32_t line, uint32_t col,
                                                           const char *got, size_t got_len,
                                                           const char *fmt, va_list ap)
{
    char what[RK_ERRMSG_SIZE];
    vsnprintf(what, sizeof(what), fmt, ap);
    if (got == NULL)
        return rk_errf(p->err, RK_EMALFORMED, "%s:%u:%u: expected %s, got end of line", p->file,
                       line, col, what);
    char shown[SCN_SHOW_SIZE];
    scn_escape(got, got_len, SCN_TOKEN_SHOW_BYTES, shown, sizeof(shown));
    return rk_errf(p->err, RK_EMALFORMED, "%s:%u:%u: expected %s, got '%s'", p->file, line, col,
                   what, shown);
}

__attribute__((format(printf, 5, 6))) static int scn_fail_raw(const struct scn_parser *p,
                                                              uint32_t col, const char *got,
                                                              size_t got_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = scn_vfail(p, p->lineno, col, got, got_len, fmt, ap);
    va_end(ap);
    return rc;
}

/* The column of token i, or just after the last token when i is past the end of the line. */
static uint32_t scn_col(const struct scn_parser *p, uint32_t i)
{
    if (i < p->ntok)
        return p->tok[i].off + 1;
    RK_ASSERT(p->ntok > 0);
    return p->tok[p->ntok - 1].off + p->tok[p->ntok - 1].len + 1;
}

/* An error at token i of the current line (i == ntok: at the end of the line). */
__attribute__((format(printf, 3, 4))) static int scn_err(const struct scn_parser *p, uint32_t i,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *got = i < p->ntok ? p->line + p->tok[i].off : NULL;
    size_t got_len = i < p->ntok ? p->tok[i].len : 0;
    int rc = scn_vfail(p, p->lineno, scn_col(p, i), got, got_len, fmt, ap);
    va_end(ap);
    return rc;
}

static bool scn_is_separator(char c)
{
    return c == ' ' || c == '\t' || c == '#' || c == '\n' || c == '\r';
}

/* An error at a position recorded on an earlier line: the token there is found again. */
__attribute__((format(printf, 3, 4))) static int
scn_err_at(const struct scn_parser *p, const struct scn_pos *pos, const char *fmt, ...)
{
    RK_ASSERT(pos->line != 0);
    size_t start = pos->line_off + pos->col - 1;
    RK_ASSERT(start < p->len);
    size_t end = start;
    while (end < p->len && !scn_is_separator(p->text[end]))
        end++;
    va_list ap;
    va_start(ap, fmt);
    int rc = scn_vfail(p, pos->line, pos->col, p->text + start, end - start, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- numbers ----------------------------------------------------------------------------- */

static bool scn_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One or more decimal digits, at most max. */
static bool scn_to_uint(const char *t, size_t n, uint64_t max, uint64_t *out)
{
    RK_ASSERT(max < UINT64_MAX / 10 - 10);
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!scn_is_digit(t[i]))
            return false;
        v = v * 10 + (uint64_t)(t[i] - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

enum scn_duration_result {
    SCN_DUR_OK,
    SCN_DUR_SYNTAX,
    SCN_DUR_NEGATIVE,
    SCN_DUR_NO_UNIT,
    SCN_DUR_TOO_BIG,
};

/* The microseconds of a unit, and how many fraction digits are finer than a microsecond. */
static bool scn_unit(const char *u, size_t n, uint64_t *us_per_unit, size_t *frac_digits)
{
    if (n == 2 && memcmp(u, "us", 2) == 0) {
        *us_per_unit = 1;
        *frac_digits = 0;
    } else if (n == 2 && memcmp(u, "ms", 2) == 0) {
        *us_per_unit = SCN_US_PER_MS;
        *frac_digits = 3;
    } else if (n == 1 && u[0] == 's') {
        *us_per_unit = SCN_US_PER_S;
        *frac_digits = 6;
    } else {
        return false;
    }
    return true;
}

/* DIGITS [. DIGITS] UNIT, exactly in integers: the fraction is rounded half up to a microsecond
 * by its first digit finer than one. */
static int scn_to_duration(const char *t, size_t n, uint64_t *out_us)
{
    if (n > 0 && t[0] == '-')
        return SCN_DUR_NEGATIVE;
    size_t i = 0;
    uint64_t whole = 0;
    bool too_big = false;
    for (; i < n && scn_is_digit(t[i]); i++) {
        if (!too_big)
            whole = whole * 10 + (uint64_t)(t[i] - '0');
        too_big = too_big || whole > SCN_MAX_DURATION_US;
    }
    if (i == 0)
        return SCN_DUR_SYNTAX;
    size_t frac = i;
    size_t n_frac = 0;
    if (i < n && t[i] == '.') {
        frac = ++i;
        while (i < n && scn_is_digit(t[i]))
            i++;
        n_frac = i - frac;
        if (n_frac == 0)
            return SCN_DUR_SYNTAX;
    }
    if (i == n)
        return SCN_DUR_NO_UNIT;
    uint64_t per_unit;
    size_t digits;
    if (!scn_unit(t + i, n - i, &per_unit, &digits))
        return SCN_DUR_SYNTAX;
    if (too_big || whole > SCN_MAX_DURATION_US / per_unit)
        return SCN_DUR_TOO_BIG;
    uint64_t part = 0;
    for (size_t k = 0; k < digits; k++)
        part = part * 10 + (k < n_frac ? (uint64_t)(t[frac + k] - '0') : 0);
    if (n_frac > digits && t[frac + digits] >= '5')
        part++;
    uint64_t us = whole * per_unit + part;
    if (us > SCN_MAX_DURATION_US)
        return SCN_DUR_TOO_BIG;
    *out_us = us;
    return SCN_DUR_OK;
}

/* Returns how many bytes of DIGITS [. DIGITS] start t (0: none, or a '.' without digits). */
static size_t scn_decimal_digits(const char *t, size_t n)
{
    size_t i = 0;
    while (i < n && scn_is_digit(t[i]))
        i++;
    if (i == 0)
        return 0;
    if (i < n && t[i] == '.') {
        size_t frac = ++i;
        while (i < n && scn_is_digit(t[i]))
            i++;
        if (i == frac)
            return 0;
    }
    return i;
}

/* DIGITS [. DIGITS] [e [+-] DIGITS], or with percent: DIGITS [. DIGITS] then a '%' already cut
 * off by the caller, read as that many hundredths (by strtod, so rounded once, correctly). */
static bool scn_to_decimal(const char *t, size_t n, bool percent, double *out)
{
    size_t i = scn_decimal_digits(t, n);
    if (i == 0)
        return false;
    if (!percent && i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        size_t exp = i;
        while (i < n && scn_is_digit(t[i]))
            i++;
        if (i == exp)
            return false;
    }
    if (i != n)
        return false;
    char buf[SCN_MAX_LINE_BYTES + 8];
    RK_ASSERT(n <= SCN_MAX_LINE_BYTES);
    memcpy(buf, t, n);
    size_t len = n;
    if (percent) {
        memcpy(buf + len, "e-2", 3);
        len += 3;
    }
    buf[len] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + len)
        return false;
    *out = v;
    return true;
}

/* ---- formatting -------------------------------------------------------------------------- */

/* The exact, shortest of "Ns", "Nms", "Nus". */
static void scn_fmt_duration(uint64_t us, char buf[SCN_DURATION_TEXT])
{
    if (us % SCN_US_PER_S == 0)
        snprintf(buf, SCN_DURATION_TEXT, "%llus", (unsigned long long)(us / SCN_US_PER_S));
    else if (us % SCN_US_PER_MS == 0)
        snprintf(buf, SCN_DURATION_TEXT, "%llums", (unsigned long long)(us / SCN_US_PER_MS));
    else
        snprintf(buf, SCN_DURATION_TEXT, "%lluus", (unsigned long long)us);
}

/* The shortest %g form that strtod reads back to v ("0.05", not "0.050000000000000003"); a whole
 * number below 2^53 without an exponent ("1000", not "1e+03"). */
static void scn_fmt_double(double v, char buf[SCN_DOUBLE_TEXT])
{
    if (v >= 0.0 && v < 9007199254740992.0 && (double)(uint64_t)v == v) {
        snprintf(buf, SCN_DOUBLE_TEXT, "%llu", (unsigned long long)v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, SCN_DOUBLE_TEXT, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* ---- tokens and value readers ------------------------------------------------------------ */

static bool scn_tok_is(const struct scn_parser *p, uint32_t i, const char *word)
{
    if (i >= p->ntok)
        return false;
    size_t n = strlen(word);
    return p->tok[i].len == n && memcmp(p->line + p->tok[i].off, word, n) == 0;
}

static const char *scn_tok_text(const struct scn_parser *p, uint32_t i)
{
    RK_ASSERT(i < p->ntok);
    return p->line + p->tok[i].off;
}

static int scn_end(struct scn_parser *p)
{
    if (p->cur < p->ntok)
        return scn_err(p, p->cur, "end of line");
    return RK_OK;
}

/* Marks a setting as set; name_tok is the token an error about a second one points at. */
static int scn_claim(struct scn_parser *p, enum scn_setting which, uint32_t name_tok,
                     const char *label)
{
    struct scn_pos *seen = &p->seen[which];
    if (seen->line != 0)
        return scn_err(p, name_tok, "each setting once (%s is already set on line %u)", label,
                       seen->line);
    seen->line = p->lineno;
    seen->line_off = p->line_off;
    seen->col = scn_col(p, p->cur);
    return RK_OK;
}

static int scn_next_uint(struct scn_parser *p, uint32_t min, uint32_t max, const char *what,
                         uint32_t *out)
{
    uint64_t v = 0;
    if (p->cur >= p->ntok || !scn_to_uint(scn_tok_text(p, p->cur), p->tok[p->cur].len, max, &v) ||
        v < min)
        return scn_err(p, p->cur, "%s (%u..%u)", what, min, max);
    *out = (uint32_t)v;
    p->cur++;
    return RK_OK;
}

static int scn_next_duration(struct scn_parser *p, uint64_t min_us, uint64_t *out_us)
{
    static const char *const syntax = "a duration (e.g. 500us, 10ms, 1.5s)";
    if (p->cur >= p->ntok)
        return scn_err(p, p->cur, "%s", syntax);
    uint64_t us = 0;
    char text[SCN_DURATION_TEXT];
    switch (scn_to_duration(scn_tok_text(p, p->cur), p->tok[p->cur].len, &us)) {
    case SCN_DUR_OK:
        break;
    case SCN_DUR_NEGATIVE:
        return scn_err(p, p->cur, "a duration of at least 0");
    case SCN_DUR_NO_UNIT:
        return scn_err(p, p->cur, "a unit after the number (us, ms or s)");
    case SCN_DUR_TOO_BIG:
        scn_fmt_duration(SCN_MAX_DURATION_US, text);
        return scn_err(p, p->cur, "a duration of at most one year (%s)", text);
    default:
        return scn_err(p, p->cur, "%s", syntax);
    }
    if (us < min_us) {
        scn_fmt_duration(min_us, text);
        return scn_err(p, p->cur, "a duration of at least %s", text);
    }
    *out_us = us;
    p->cur++;
    return RK_OK;
}

/* MIN MAX, with MIN <= MAX. */
static int scn_next_duration_range(struct scn_parser *p, uint64_t *min_us, uint64_t *max_us)
{
    SCN_TRY(scn_next_duration(p, 0, min_us));
    uint32_t max_tok = p->cur;
    SCN_TRY(scn_next_duration(p, 0, max_us));
    if (*max_us < *min_us) {
        char text[SCN_DURATION_TEXT];
        scn_fmt_duration(*min_us, text);
        return scn_err(p, max_tok, "a maximum of at least the minimum (%s)", text);
    }
    return RK_OK;
}

static int scn_next_probability(struct scn_parser *p, double *out)
{
    const char *t = p->cur < p->ntok ? scn_tok_text(p, p->cur) : NULL;
    size_t n = p->cur < p->ntok ? p->tok[p->cur].len : 0;
    bool percent = n > 0 && t[n - 1] == '%';
    double v = 0;
    if (t == NULL || !scn_to_decimal(t, percent ? n - 1 : n, percent, &v))
        return scn_err(p, p->cur, "a probability (e.g. 0.05 or 5%%)");
    if (!(v >= 0.0 && v <= 1.0))
        return scn_err(p, p->cur, "a probability in [0, 1] (or 0%%..100%%)");
    *out = v;
    p->cur++;
    return RK_OK;
}

/* A decimal in [min, max]; what names it in errors. */
static int scn_next_decimal(struct scn_parser *p, double min, double max, const char *what,
                            double *out)
{
    double v = 0;
    if (p->cur >= p->ntok ||
        !scn_to_decimal(scn_tok_text(p, p->cur), p->tok[p->cur].len, false, &v))
        return scn_err(p, p->cur, "%s (a decimal such as 1.5)", what);
    if (!(v >= min && v <= max)) {
        char lo[SCN_DOUBLE_TEXT];
        char hi[SCN_DOUBLE_TEXT];
        scn_fmt_double(min, lo);
        scn_fmt_double(max, hi);
        return scn_err(p, p->cur, "%s in [%s, %s]", what, lo, hi);
    }
    *out = v;
    p->cur++;
    return RK_OK;
}

static int scn_next_on_off(struct scn_parser *p, bool *out)
{
    if (scn_tok_is(p, p->cur, "on"))
        *out = true;
    else if (scn_tok_is(p, p->cur, "off"))
        *out = false;
    else
        return scn_err(p, p->cur, "on or off");
    p->cur++;
    return RK_OK;
}

/* ---- settings ---------------------------------------------------------------------------- */

static int scn_cmd_nodes(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_NODES, 0, "nodes"));
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_NODES, "a node count", &p->s->nodes));
    return scn_end(p);
}

static int scn_cmd_members(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_MEMBERS, 0, "members"));
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_NODES, "a voter count", &p->s->members));
    return scn_end(p);
}

static int scn_cmd_tick(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_TICK, 0, "tick"));
    SCN_TRY(scn_next_duration(p, 1, &p->s->tick_us));
    /* tick DUR aligned: every node ticks at the multiples of DUR (restarts included). */
    if (p->cur < p->ntok) {
        if (!scn_tok_is(p, p->cur, "aligned"))
            return scn_err(p, p->cur, "aligned or end of line");
        p->s->ticks_aligned = true;
        p->cur++;
    }
    return scn_end(p);
}

static int scn_cmd_election(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_ELECTION, 0, "election"));
    uint32_t lo = 0;
    uint32_t hi = 0;
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_TICKS, "an election timeout minimum in ticks", &lo));
    uint32_t hi_tok = p->cur;
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_TICKS, "an election timeout maximum in ticks", &hi));
    if (hi < lo)
        return scn_err(p, hi_tok, "a maximum of at least the minimum (%u)", lo);
    p->s->election_ticks_min = lo;
    p->s->election_ticks_max = hi;
    return scn_end(p);
}

static int scn_cmd_heartbeat(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_HEARTBEAT, 0, "heartbeat"));
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_TICKS, "a heartbeat interval in ticks",
                          &p->s->heartbeat_ticks));
    return scn_end(p);
}

/* replication ENTRIES WINDOW: entries per AppendEntries and AppendEntries in flight. */
static int scn_cmd_replication(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_REPLICATION, 0, "replication"));
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_APPEND_ENTRIES, "entries per AppendEntries",
                          &p->s->append_entries));
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_INFLIGHT, "AppendEntries in flight per follower",
                          &p->s->inflight));
    return scn_end(p);
}

/* snapshot ENTRIES KEEP: log compaction past ENTRIES entries, keeping KEEP behind applied. */
static int scn_cmd_snapshot(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_SNAPSHOT, 0, "snapshot"));
    SCN_TRY(scn_next_uint(p, 1, 100000000u, "a log size in entries", &p->s->compact_entries));
    SCN_TRY(scn_next_uint(p, 0, 100000000u, "entries to keep", &p->s->compact_keep));
    return scn_end(p);
}

static int scn_cmd_prevote(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_PREVOTE, 0, "prevote"));
    SCN_TRY(scn_next_on_off(p, &p->s->pre_vote));
    return scn_end(p);
}

static int scn_cmd_checkquorum(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_CHECKQUORUM, 0, "checkquorum"));
    SCN_TRY(scn_next_on_off(p, &p->s->check_quorum));
    return scn_end(p);
}

static int scn_cmd_swarm(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_SWARM, 0, "swarm"));
    SCN_TRY(scn_next_on_off(p, &p->s->swarm));
    return scn_end(p);
}

static int scn_cmd_latency(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_LATENCY, 0, "latency"));
    SCN_TRY(scn_next_duration_range(p, &p->s->latency_us_min, &p->s->latency_us_max));
    return scn_end(p);
}

static int scn_cmd_drop(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_DROP, 0, "drop"));
    SCN_TRY(scn_next_probability(p, &p->s->drop));
    return scn_end(p);
}

static int scn_cmd_duplicate(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_DUPLICATE, 0, "duplicate"));
    SCN_TRY(scn_next_probability(p, &p->s->duplicate));
    return scn_end(p);
}

static int scn_cmd_reorder(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_REORDER, 0, "reorder"));
    SCN_TRY(scn_next_probability(p, &p->s->reorder));
    if (p->cur < p->ntok) {
        SCN_TRY(scn_next_duration(p, 0, &p->s->reorder_us_max));
        p->reorder_max_given = true;
    }
    return scn_end(p);
}

static int scn_cmd_clients(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_CLIENTS, 0, "clients"));
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_CLIENTS, "a client count", &p->s->clients));
    return scn_end(p);
}

static int scn_cmd_keys(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_KEYS, 0, "keys"));
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_KEYS, "a key count", &p->s->keys));
    return scn_end(p);
}

/* mix (KIND W)+: each kind at most once, any order, unnamed kinds weigh 0. */
static int scn_cmd_mix(struct scn_parser *p)
{
    enum { KINDS = 17 };
    static const char *const kinds[KINDS] = {
        "get",    "put",    "del",    "incr",  "putif",  "mset", "mget", "txn", "watch",
        "expire", "append", "getdel", "setnx", "rename", "scan", "keys", "bits"};
    uint32_t weight[KINDS] = {0};
    bool given[KINDS] = {false};
    SCN_TRY(scn_claim(p, SCN_S_MIX, 0, "mix"));
    uint32_t last = p->cur;
    bool any = false;
    do {
        int k = -1;
        for (int i = 0; i < KINDS; i++)
            if (scn_tok_is(p, p->cur, kinds[i]))
                k = i;
        if (k < 0)
            return scn_err(p, p->cur,
                           "get, put, del, incr, putif, mset, mget, txn, watch, expire, append, "
                           "getdel, setnx, rename, scan, keys or bits");
        if (given[k])
            return scn_err(p, p->cur, "each kind (get, put, del, ...) at most once");
        p->cur++;
        last = p->cur;
        SCN_TRY(scn_next_uint(p, 0, SCN_MAX_WEIGHT, "a weight", &weight[k]));
        given[k] = true;
        any = any || weight[k] > 0;
    } while (p->cur < p->ntok);
    if (!any)
        return scn_err(p, last, "at least one weight above 0");
    p->s->mix_get = weight[0];
    p->s->mix_put = weight[1];
    p->s->mix_del = weight[2];
    p->s->mix_incr = weight[3];
    p->s->mix_putif = weight[4];
    p->s->mix_mset = weight[5];
    p->s->mix_mget = weight[6];
    p->s->mix_txn = weight[7];
    p->s->mix_watch = weight[8];
    p->s->mix_expire = weight[9];
    p->s->mix_append = weight[10];
    p->s->mix_getdel = weight[11];
    p->s->mix_setnx = weight[12];
    p->s->mix_rename = weight[13];
    p->s->mix_scan = weight[14];
    p->s->mix_keys = weight[15];
    p->s->mix_bits = weight[16];
    return RK_OK;
}

/* pipeline N [followers] */
static int scn_cmd_pipeline(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_PIPELINE, 0, "pipeline"));
    SCN_TRY(scn_next_uint(p, 0, SCN_MAX_PIPELINE, "a pipeline depth", &p->s->pipeline));
    if (p->cur < p->ntok) {
        if (!scn_tok_is(p, p->cur, "followers"))
            return scn_err(p, p->cur, "followers or end of line");
        p->cur++;
        p->s->pipeline_followers = true;
    }
    return scn_end(p);
}

static int scn_cmd_think(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_THINK, 0, "think"));
    SCN_TRY(scn_next_duration_range(p, &p->s->think_us_min, &p->s->think_us_max));
    return scn_end(p);
}

static int scn_cmd_wallclock(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_WALLCLOCK, 0, "wallclock"));
    SCN_TRY(scn_next_duration(p, 0, &p->s->wallclock_us));
    return scn_end(p);
}

static int scn_cmd_timeout(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_TIMEOUT, 0, "timeout"));
    SCN_TRY(scn_next_duration(p, 1, &p->s->timeout_us));
    return scn_end(p);
}

static int scn_cmd_duration(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_DURATION, 0, "duration"));
    SCN_TRY(scn_next_duration(p, 1, &p->s->duration_us));
    return scn_end(p);
}

/* expect refusal TEXT...: the rest of the line, tokens joined by one space. */
static int scn_expect_refusal(struct scn_parser *p)
{
    struct scenario *s = p->s;
    if (p->cur >= p->ntok)
        return scn_err(p, p->cur, "the text of a reason (e.g. outside the log)");
    if (s->n_refusals == SCN_MAX_REFUSALS)
        return scn_err(p, 1, "at most %u expect refusal lines", SCN_MAX_REFUSALS);
    char *dst = s->refusals[s->n_refusals];
    size_t n = 0;
    for (; p->cur < p->ntok; p->cur++) {
        size_t len = p->tok[p->cur].len;
        if (n + (n > 0) + len >= SCN_REFUSAL_BYTES)
            return scn_err(p, p->cur, "a reason of at most %u bytes", SCN_REFUSAL_BYTES - 1);
        if (n > 0)
            dst[n++] = ' ';
        memcpy(dst + n, scn_tok_text(p, p->cur), len);
        n += len;
    }
    dst[n] = '\0';
    s->n_refusals++;
    return RK_OK;
}

/* expect stepdown (within N elections | off) */
static int scn_expect_stepdown(struct scn_parser *p)
{
    SCN_TRY(scn_claim(p, SCN_S_EXPECT_STEPDOWN, 1, "expect stepdown"));
    if (scn_tok_is(p, p->cur, "off")) {
        p->s->expect_stepdown_elections = 0;
        p->cur++;
        return scn_end(p);
    }
    if (!scn_tok_is(p, p->cur, "within"))
        return scn_err(p, p->cur, "within or off");
    p->cur++;
    SCN_TRY(scn_next_uint(p, 1, SCN_MAX_STEPDOWN, "a number of election timeouts",
                          &p->s->expect_stepdown_elections));
    if (!scn_tok_is(p, p->cur, "elections"))
        return scn_err(p, p->cur, "elections");
    p->cur++;
    return scn_end(p);
}

/* expect (leader|complete|recovery|available) (within DUR | off), expect unavailable (below DUR
 * | off), expect disk below KIB, expect stepdown ..., expect refusal TEXT */
static int scn_cmd_expect(struct scn_parser *p)
{
    static const struct {
        const char *name;
        enum scn_setting setting;
        const char *label;
        const char *word; /* within or below */
    } kinds[] = {
        {"leader", SCN_S_EXPECT_LEADER, "expect leader", "within"},
        {"complete", SCN_S_EXPECT_COMPLETE, "expect complete", "within"},
        {"recovery", SCN_S_EXPECT_RECOVERY, "expect recovery", "within"},
        {"available", SCN_S_EXPECT_AVAILABLE, "expect available", "within"},
        {"unavailable", SCN_S_EXPECT_UNAVAILABLE, "expect unavailable", "below"},
    };
    uint64_t *targets[] = {&p->s->expect_leader_us, &p->s->expect_complete_us,
                           &p->s->expect_recovery_us, &p->s->expect_available_us,
                           &p->s->expect_unavailable_us};
    p->cur = 2;
    if (scn_tok_is(p, 1, "refusal"))
        return scn_expect_refusal(p);
    if (scn_tok_is(p, 1, "stepdown"))
        return scn_expect_stepdown(p);
    if (scn_tok_is(p, 1, "disk")) {
        /* expect disk below BYTES: each node's disks hold at most BYTES at every moment. */
        SCN_TRY(scn_claim(p, SCN_S_EXPECT_DISK, 1, "expect disk"));
        if (!scn_tok_is(p, p->cur, "below"))
            return scn_err(p, p->cur, "below");
        p->cur++;
        uint32_t kib = 0;
        SCN_TRY(scn_next_uint(p, 1, 1u << 30, "a bound in KiB", &kib));
        p->s->expect_disk_bytes = (uint64_t)kib << 10;
        return scn_end(p);
    }
    size_t k = 0;
    while (k < sizeof(kinds) / sizeof(kinds[0]) && !scn_tok_is(p, 1, kinds[k].name))
        k++;
    if (k == sizeof(kinds) / sizeof(kinds[0]))
        return scn_err(p, 1,
                       "leader, complete, recovery, available, unavailable, stepdown, "
                       "refusal or disk");
    SCN_TRY(scn_claim(p, kinds[k].setting, 1, kinds[k].label));
    if (scn_tok_is(p, p->cur, "off")) {
        *targets[k] = 0;
        p->cur++;
    } else if (scn_tok_is(p, p->cur, kinds[k].word)) {
        p->cur++;
        SCN_TRY(scn_next_duration(p, 1, targets[k]));
    } else {
        return scn_err(p, p->cur, "%s or off", kinds[k].word);
    }
    return scn_end(p);
}

/* chaos (crash|partition|pause|skew) RATE, chaos downtime MIN MAX */
static int scn_cmd_chaos(struct scn_parser *p)
{
    static const struct {
        const char *name;
        enum scn_setting setting;
        const char *label;
    } kinds[] = {
        {"crash", SCN_S_CHAOS_CRASH, "chaos crash"},
        {"partition", SCN_S_CHAOS_PARTITION, "chaos partition"},
        {"pause", SCN_S_CHAOS_PAUSE, "chaos pause"},
        {"skew", SCN_S_CHAOS_SKEW, "chaos skew"},
        {"downtime", SCN_S_CHAOS_DOWNTIME, "chaos downtime"},
        {"member", SCN_S_CHAOS_MEMBER, "chaos member"},
    };
    struct scn_chaos *c = &p->s->chaos;
    double *rates[] = {&c->crash_per_s, &c->partition_per_s, &c->pause_per_s, &c->skew_per_s, NULL,
                       &c->member_per_s};
    size_t k = 0;
    while (k < sizeof(kinds) / sizeof(kinds[0]) && !scn_tok_is(p, 1, kinds[k].name))
        k++;
    if (k == sizeof(kinds) / sizeof(kinds[0]))
        return scn_err(p, 1, "crash, partition, pause, skew, member or downtime");
    p->cur = 2;
    SCN_TRY(scn_claim(p, kinds[k].setting, 1, kinds[k].label));
    if (kinds[k].setting == SCN_S_CHAOS_DOWNTIME)
        SCN_TRY(scn_next_duration_range(p, &c->downtime_us_min, &c->downtime_us_max));
    else
        SCN_TRY(
            scn_next_decimal(p, 0.0, SCN_MAX_CHAOS_RATE, "a rate in events per second", rates[k]));
    return scn_end(p);
}

/* disk torn|crashpoints on|off, disk bitflip|errors P, disk slow|merge DUR, disk rotate N,
 * disk sync N, disk rot|badsector|lost|misdirect P (persistent damage, sim/simdisk.h),
 * disk io MIN MAX */
static int scn_cmd_disk(struct scn_parser *p)
{
    static const struct {
        const char *name;
        enum scn_setting setting;
        const char *label;
    } kinds[] = {
        {"torn", SCN_S_DISK_TORN, "disk torn"},
        {"bitflip", SCN_S_DISK_BITFLIP, "disk bitflip"},
        {"errors", SCN_S_DISK_ERRORS, "disk errors"},
        {"slow", SCN_S_DISK_SLOW, "disk slow"},
        {"crashpoints", SCN_S_DISK_CRASHPOINTS, "disk crashpoints"},
        {"merge", SCN_S_DISK_MERGE, "disk merge"},
        {"rotate", SCN_S_DISK_ROTATE, "disk rotate"},
        {"sync", SCN_S_DISK_SYNC, "disk sync"},
        {"rot", SCN_S_DISK_ROT, "disk rot"},
        {"badsector", SCN_S_DISK_BADSECTOR, "disk badsector"},
        {"lost", SCN_S_DISK_LOST, "disk lost"},
        {"misdirect", SCN_S_DISK_MISDIRECT, "disk misdirect"},
        {"io", SCN_S_DISK_IO, "disk io"},
        {"storeio", SCN_S_DISK_STOREIO, "disk storeio"},
        {"damaged", SCN_S_DISK_DAMAGED, "disk damaged"},
        {"wipe", SCN_S_DISK_WIPE, "disk wipe"},
    };
    struct scn_disk *d = &p->s->disk;
    size_t k = 0;
    while (k < sizeof(kinds) / sizeof(kinds[0]) && !scn_tok_is(p, 1, kinds[k].name))
        k++;
    if (k == sizeof(kinds) / sizeof(kinds[0]))
        return scn_err(p, 1,
                       "torn, bitflip, errors, slow, crashpoints, merge, rotate, sync, rot, "
                       "badsector, lost, misdirect, io, storeio, damaged or wipe");
    p->cur = 2;
    SCN_TRY(scn_claim(p, kinds[k].setting, 1, kinds[k].label));
    switch (kinds[k].setting) {
    case SCN_S_DISK_TORN:
        SCN_TRY(scn_next_on_off(p, &d->torn));
        break;
    case SCN_S_DISK_CRASHPOINTS:
        SCN_TRY(scn_next_on_off(p, &d->crashpoints));
        break;
    case SCN_S_DISK_BITFLIP:
        SCN_TRY(scn_next_probability(p, &d->bitflip));
        break;
    case SCN_S_DISK_ERRORS:
        SCN_TRY(scn_next_probability(p, &d->errors));
        break;
    case SCN_S_DISK_SLOW:
        SCN_TRY(scn_next_duration(p, 0, &d->sync_us));
        break;
    case SCN_S_DISK_MERGE:
        SCN_TRY(scn_next_duration(p, 0, &d->merge_us));
        break;
    case SCN_S_DISK_ROTATE:
        SCN_TRY(scn_next_uint(p, 64, 1u << 30, "a data file size in bytes", &d->file_bytes));
        break;
    case SCN_S_DISK_ROT:
        SCN_TRY(scn_next_probability(p, &d->rot));
        break;
    case SCN_S_DISK_BADSECTOR:
        SCN_TRY(scn_next_probability(p, &d->badsector));
        break;
    case SCN_S_DISK_LOST:
        SCN_TRY(scn_next_probability(p, &d->lost));
        break;
    case SCN_S_DISK_MISDIRECT:
        SCN_TRY(scn_next_probability(p, &d->misdirect));
        break;
    case SCN_S_DISK_IO:
        SCN_TRY(scn_next_duration_range(p, &d->io_us_min, &d->io_us_max));
        break;
    case SCN_S_DISK_STOREIO:
        SCN_TRY(scn_next_duration_range(p, &d->store_io_us_min, &d->store_io_us_max));
        break;
    case SCN_S_DISK_WIPE:
        SCN_TRY(scn_next_probability(p, &d->wipe));
        break;
    case SCN_S_DISK_DAMAGED:
        SCN_TRY(scn_next_uint(p, 1, SCN_MAX_NODES, "a node count (1..9)", &d->damaged_nodes));
        break;
    default:
        SCN_TRY(scn_next_uint(p, 1, SCN_MAX_TICKS, "a sync interval in ticks", &d->sync_ticks));
        break;
    }
    return scn_end(p);
}

/* ---- node sets --------------------------------------------------------------------------- */

#define SCN_SET_BIT(kind) (1u << (kind))
#define SCN_SETS_ANY                                                                               \
    (SCN_SET_BIT(SCN_SET_IDS) | SCN_SET_BIT(SCN_SET_LEADER) | SCN_SET_BIT(SCN_SET_FOLLOWER) |      \
     SCN_SET_BIT(SCN_SET_RANDOM) | SCN_SET_BIT(SCN_SET_RANDOM_MINORITY) |                          \
     SCN_SET_BIT(SCN_SET_RANDOM_MAJORITY) | SCN_SET_BIT(SCN_SET_ALL))
#define SCN_SETS_GROUP   ((SCN_SETS_ANY & ~SCN_SET_BIT(SCN_SET_ALL)) | SCN_SET_BIT(SCN_SET_REST))
#define SCN_SETS_ISOLATE (SCN_SETS_ANY & ~SCN_SET_BIT(SCN_SET_ALL))

static const char *const scn_set_names[] = {
    [SCN_SET_IDS] = "node ids",
    [SCN_SET_LEADER] = "leader",
    [SCN_SET_FOLLOWER] = "follower",
    [SCN_SET_RANDOM] = "random",
    [SCN_SET_RANDOM_MINORITY] = "random minority",
    [SCN_SET_RANDOM_MAJORITY] = "random majority",
    [SCN_SET_ALL] = "all",
    [SCN_SET_REST] = "rest",
};
#define SCN_SET_KIND_LAST SCN_SET_REST

/* "a node set (leader, ..., all or node ids)": what may stand here, listed from mask. */
static int scn_err_set(const struct scn_parser *p, uint32_t i, unsigned mask, const char *what)
{
    char list[160];
    size_t n = 0;
    list[0] = '\0';
    for (unsigned kind = SCN_SET_LEADER; kind <= SCN_SET_KIND_LAST; kind++) {
        if ((mask & SCN_SET_BIT(kind)) == 0)
            continue;
        int w = snprintf(list + n, sizeof(list) - n, "%s, ", scn_set_names[kind]);
        RK_ASSERT(w > 0 && (size_t)w < sizeof(list) - n);
        n += (size_t)w;
    }
    RK_ASSERT(n >= 2);
    list[n - 2] = '\0'; /* the last ", " */
    return scn_err(p, i, "%s (%s or node ids)", what, list);
}

/* Remembers that a step's target needs a cluster of at least `nodes` nodes. */
static void scn_need_nodes(struct scn_step_check *c, uint8_t nodes, uint32_t col, const char *what)
{
    if (c->need_nodes >= nodes)
        return;
    c->need_nodes = nodes;
    c->need_col = (uint16_t)col;
    c->need_what = what;
}

/* One or more node ids, none named before in the same step. */
static int scn_parse_ids(struct scn_parser *p, struct scn_step_check *c, uint32_t end,
                         struct scn_set *set)
{
    set->kind = SCN_SET_IDS;
    while (p->cur < end && scn_is_digit(scn_tok_text(p, p->cur)[0])) {
        uint64_t id = 0;
        if (!scn_to_uint(scn_tok_text(p, p->cur), p->tok[p->cur].len, SCN_MAX_NODES, &id) ||
            id == 0)
            return scn_err(p, p->cur, "a node id (1..%u)", SCN_MAX_NODES);
        if (c->id_col[id] != 0)
            return scn_err(p, p->cur, "a node id not already named in this step (column %u)",
                           c->id_col[id]);
        c->id_col[id] = (uint16_t)scn_col(p, p->cur);
        RK_ASSERT(set->n_ids < SCN_MAX_NODES);
        set->ids[set->n_ids++] = (uint32_t)id;
        p->cur++;
    }
    RK_ASSERT(set->n_ids > 0);
    return RK_OK;
}

/* A SET from tokens [cur, end): its kind must be in mask. */
static int scn_parse_set(struct scn_parser *p, struct scn_step_check *c, uint32_t end,
                         unsigned mask, const char *what, struct scn_set *set)
{
    memset(set, 0, sizeof(*set));
    uint32_t first = p->cur;
    if (first >= end)
        return scn_err_set(p, first, mask, what);
    if (scn_is_digit(scn_tok_text(p, first)[0]))
        return scn_parse_ids(p, c, end, set);
    uint8_t kind = 0;
    if (scn_tok_is(p, first, "random") && first + 1 < end && scn_tok_is(p, first + 1, "minority"))
        kind = SCN_SET_RANDOM_MINORITY;
    else if (scn_tok_is(p, first, "random") && first + 1 < end &&
             scn_tok_is(p, first + 1, "majority"))
        kind = SCN_SET_RANDOM_MAJORITY;
    for (unsigned k = SCN_SET_LEADER; kind == 0 && k <= SCN_SET_KIND_LAST; k++)
        if (k != SCN_SET_RANDOM_MINORITY && k != SCN_SET_RANDOM_MAJORITY &&
            scn_tok_is(p, first, scn_set_names[k]))
            kind = (uint8_t)k;
    if (kind == 0 || (mask & SCN_SET_BIT(kind)) == 0)
        return scn_err_set(p, first, mask, what);
    p->cur += (kind == SCN_SET_RANDOM_MINORITY || kind == SCN_SET_RANDOM_MAJORITY) ? 2 : 1;
    if (kind == SCN_SET_RANDOM_MINORITY)
        scn_need_nodes(c, 3, scn_col(p, first), "a random minority");
    set->kind = kind;
    return RK_OK;
}

/* ---- actions ----------------------------------------------------------------------------- */

struct scn_action_def {
    const char *name;
    uint8_t action; /* enum scn_action */
    unsigned sets;  /* the set kinds its targets may be */
    int (*parse)(struct scn_parser *p, const struct scn_action_def *def, struct scn_step *step,
                 struct scn_step_check *c);
};

/* partition random | partition SET | SET [| SET ...] */
static int scn_act_partition(struct scn_parser *p, const struct scn_action_def *def,
                             struct scn_step *step, struct scn_step_check *c)
{
    if (p->cur + 1 == p->ntok && scn_tok_is(p, p->cur, "random")) {
        scn_need_nodes(c, 2, scn_col(p, p->cur), "a random partition");
        p->cur++;
        return RK_OK;
    }
    bool have_rest = false;
    for (;;) {
        if (step->n_groups == SCN_MAX_GROUPS)
            return scn_err(p, p->cur - 1, "at most %u partition groups", SCN_MAX_GROUPS);
        struct scn_set *group = &step->groups[step->n_groups];
        uint32_t group_tok = p->cur;
        SCN_TRY(scn_parse_set(p, c, p->ntok, def->sets, "a partition group", group));
        if (group->kind == SCN_SET_REST && have_rest)
            return scn_err(p, group_tok, "at most one 'rest' group");
        have_rest = have_rest || group->kind == SCN_SET_REST;
        step->n_groups++;
        if (p->cur == p->ntok && step->n_groups >= 2)
            return RK_OK;
        if (!scn_tok_is(p, p->cur, "|"))
            return scn_err(p, p->cur, "%s",
                           step->n_groups < 2 ? "'|' and another group" : "'|' or end of line");
        p->cur++;
    }
}

/* oneway SET -> SET */
static int scn_act_oneway(struct scn_parser *p, const struct scn_action_def *def,
                          struct scn_step *step, struct scn_step_check *c)
{
    SCN_TRY(scn_parse_set(p, c, p->ntok, def->sets, "a node set", &step->groups[0]));
    if (!scn_tok_is(p, p->cur, "->"))
        return scn_err(p, p->cur, "'->'");
    p->cur++;
    /* `rest` on one side means every node not on the other side. */
    unsigned sets = def->sets;
    if (step->groups[0].kind == SCN_SET_REST)
        sets &= ~SCN_SET_BIT(SCN_SET_REST);
    SCN_TRY(scn_parse_set(p, c, p->ntok, sets, "a node set", &step->groups[1]));
    step->n_groups = 2;
    return RK_OK;
}

/* isolate|crash|restart|pause|resume SET */
static int scn_act_one_set(struct scn_parser *p, const struct scn_action_def *def,
                           struct scn_step *step, struct scn_step_check *c)
{
    SCN_TRY(scn_parse_set(p, c, p->ntok, def->sets, "a node set", &step->groups[0]));
    step->n_groups = 1;
    return RK_OK;
}

static int scn_act_heal(struct scn_parser *p, const struct scn_action_def *def,
                        struct scn_step *step, struct scn_step_check *c)
{
    (void)p;
    (void)def;
    (void)step;
    (void)c;
    return RK_OK;
}

/* skew SET FACTOR: the factor is the last token, so that `skew 1 2 2` is nodes 1 2 at 2x. */
static int scn_act_skew(struct scn_parser *p, const struct scn_action_def *def,
                        struct scn_step *step, struct scn_step_check *c)
{
    uint32_t end = p->ntok - p->cur >= 2 ? p->ntok - 1 : p->ntok;
    SCN_TRY(scn_parse_set(p, c, end, def->sets, "a node set", &step->groups[0]));
    step->n_groups = 1;
    return scn_next_decimal(p, SCN_MIN_SKEW, SCN_MAX_SKEW, "a clock rate factor", &step->factor);
}

/* set drop|duplicate|reorder P, set latency MIN MAX (two steps: see scenario.h) */
static int scn_act_set(struct scn_parser *p, const struct scn_action_def *def,
                       struct scn_step *step, struct scn_step_check *c)
{
    (void)def;
    uint32_t what = p->cur;
    p->cur++;
    if (scn_tok_is(p, what, "drop"))
        step->param = SCN_NET_DROP;
    else if (scn_tok_is(p, what, "duplicate"))
        step->param = SCN_NET_DUPLICATE;
    else if (scn_tok_is(p, what, "reorder"))
        step->param = SCN_NET_REORDER;
    else if (scn_tok_is(p, what, "latency"))
        step->param = SCN_NET_LATENCY_MIN;
    else
        return scn_err(p, what, "drop, duplicate, reorder or latency");
    if (step->param != SCN_NET_LATENCY_MIN)
        return scn_next_probability(p, &step->factor);
    uint64_t lo = 0;
    uint64_t hi = 0;
    SCN_TRY(scn_next_duration_range(p, &lo, &hi));
    if (p->s->n_steps + 2 > SCN_MAX_STEPS)
        return scn_err(p, 0, "at most %u steps (`set latency` makes two)", SCN_MAX_STEPS);
    step->factor = (double)lo;
    struct scn_step *second = step + 1;
    *second = *step;
    second->param = SCN_NET_LATENCY_MAX;
    second->factor = (double)hi;
    c[1] = c[0];
    return RK_OK;
}

static const struct scn_action_def scn_actions[] = {
    {"partition", SCN_PARTITION, SCN_SETS_GROUP, scn_act_partition},
    {"oneway", SCN_ONEWAY, SCN_SETS_ANY | SCN_SET_BIT(SCN_SET_REST), scn_act_oneway},
    {"isolate", SCN_ISOLATE, SCN_SETS_ISOLATE, scn_act_one_set},
    {"heal", SCN_HEAL, 0, scn_act_heal},
    {"crash", SCN_CRASH, SCN_SETS_ANY, scn_act_one_set},
    {"restart", SCN_RESTART, SCN_SETS_ANY, scn_act_one_set},
    {"pause", SCN_PAUSE, SCN_SETS_ANY, scn_act_one_set},
    {"resume", SCN_RESUME, SCN_SETS_ANY, scn_act_one_set},
    {"skew", SCN_SKEW, SCN_SETS_ANY, scn_act_skew},
    {"add", SCN_ADD, SCN_SETS_ANY, scn_act_one_set},
    {"promote", SCN_PROMOTE, SCN_SETS_ANY, scn_act_one_set},
    {"remove", SCN_REMOVE, SCN_SETS_ANY, scn_act_one_set},
    {"move", SCN_MOVE, SCN_SETS_ANY, scn_act_one_set},
    {"set", SCN_SET_NET, 0, scn_act_set},
};
#define SCN_N_ACTIONS (sizeof(scn_actions) / sizeof(scn_actions[0]))

/* at TIME ACTION ...: appends one step (two for `set latency`). */
static int scn_cmd_at(struct scn_parser *p)
{
    struct scenario *s = p->s;
    if (s->n_steps >= SCN_MAX_STEPS)
        return scn_err(p, 0, "at most %u steps", SCN_MAX_STEPS);
    uint32_t at_tok = p->cur;
    uint64_t at_us = 0;
    SCN_TRY(scn_next_duration(p, 0, &at_us));
    if (s->n_steps > 0 && at_us < s->steps[s->n_steps - 1].at_us) {
        char prev[SCN_DURATION_TEXT];
        scn_fmt_duration(s->steps[s->n_steps - 1].at_us, prev);
        return scn_err(p, at_tok, "a time of at least %s, that of the step on line %u", prev,
                       s->steps[s->n_steps - 1].line);
    }
    size_t a = 0;
    while (a < SCN_N_ACTIONS && !scn_tok_is(p, p->cur, scn_actions[a].name))
        a++;
    if (a == SCN_N_ACTIONS)
        return scn_err(p, p->cur,
                       "an action (partition, oneway, isolate, heal, crash, restart, "
                       "pause, resume, skew, add, promote, remove, set)");
    p->cur++;
    struct scn_step *step = &s->steps[s->n_steps];
    memset(step, 0, sizeof(*step));
    step->at_us = at_us;
    step->action = scn_actions[a].action;
    step->line = p->lineno;
    struct scn_step_check *c = &p->check[s->n_steps];
    memset(c, 0, sizeof(*c));
    c->at = (struct scn_pos){.line = p->lineno, .col = scn_col(p, at_tok), .line_off = p->line_off};
    SCN_TRY(scn_actions[a].parse(p, &scn_actions[a], step, c));
    SCN_TRY(scn_end(p));
    bool pair = step->action == SCN_SET_NET && step->param == SCN_NET_LATENCY_MIN;
    s->n_steps += pair ? 2 : 1;
    return RK_OK;
}

/* ---- lines ------------------------------------------------------------------------------- */

struct scn_command {
    const char *name;
    int (*parse)(struct scn_parser *p);
};

static const struct scn_command scn_commands[] = {
    {"nodes", scn_cmd_nodes},
    {"members", scn_cmd_members},
    {"tick", scn_cmd_tick},
    {"election", scn_cmd_election},
    {"heartbeat", scn_cmd_heartbeat},
    {"prevote", scn_cmd_prevote},
    {"checkquorum", scn_cmd_checkquorum},
    {"latency", scn_cmd_latency},
    {"drop", scn_cmd_drop},
    {"duplicate", scn_cmd_duplicate},
    {"reorder", scn_cmd_reorder},
    {"clients", scn_cmd_clients},
    {"keys", scn_cmd_keys},
    {"mix", scn_cmd_mix},
    {"pipeline", scn_cmd_pipeline},
    {"think", scn_cmd_think},
    {"timeout", scn_cmd_timeout},
    {"wallclock", scn_cmd_wallclock},
    {"duration", scn_cmd_duration},
    {"expect", scn_cmd_expect},
    {"chaos", scn_cmd_chaos},
    {"swarm", scn_cmd_swarm},
    {"replication", scn_cmd_replication},
    {"disk", scn_cmd_disk},
    {"snapshot", scn_cmd_snapshot},
    {"at", scn_cmd_at},
};
#define SCN_N_COMMANDS (sizeof(scn_commands) / sizeof(scn_commands[0]))

/* Splits the current line into tokens; '#' ends it. */
static void scn_tokenize(struct scn_parser *p)
{
    size_t i = 0;
    p->ntok = 0;
    p->cur = 0;
    while (i < p->line_len) {
        char ch = p->line[i];
        if (ch == ' ' || ch == '\t') {
            i++;
            continue;
        }
        if (ch == '#')
            break;
        size_t start = i;
        while (i < p->line_len && p->line[i] != ' ' && p->line[i] != '\t' && p->line[i] != '#')
            i++;
        RK_ASSERT(p->ntok < SCN_MAX_TOKENS);
        p->tok[p->ntok].off = (uint32_t)start;
        p->tok[p->ntok].len = (uint32_t)(i - start);
        p->ntok++;
    }
}

static int scn_parse_line(struct scn_parser *p)
{
    /* Bytes no line may hold, in column order: the first NUL, or the byte past the limit. */
    for (size_t i = 0; i < p->line_len; i++) {
        if (i == SCN_MAX_LINE_BYTES)
            return scn_fail_raw(p, (uint32_t)i + 1, p->line + i, p->line_len - i,
                                "a line of at most %u bytes", SCN_MAX_LINE_BYTES);
        if (p->line[i] == '\0')
            return scn_fail_raw(p, (uint32_t)i + 1, p->line + i, 1, "text without NUL bytes");
    }
    scn_tokenize(p);
    if (p->ntok == 0)
        return RK_OK;
    for (size_t k = 0; k < SCN_N_COMMANDS; k++) {
        if (scn_tok_is(p, 0, scn_commands[k].name)) {
            p->cur = 1;
            return scn_commands[k].parse(p);
        }
    }
    return scn_err(p, 0,
                   "a command (nodes, members, tick, election, heartbeat, prevote, checkquorum, "
                   "replication, snapshot, latency, drop, duplicate, reorder, clients, keys, mix, "
                   "think, timeout, duration, expect, chaos, disk, swarm, at)");
}

/* ---- checks that need the whole file ------------------------------------------------------ */

static int scn_check_steps(const struct scn_parser *p)
{
    const struct scenario *s = p->s;
    for (uint32_t i = 0; i < s->n_steps; i++) {
        const struct scn_step_check *c = &p->check[i];
        struct scn_pos pos = c->at;
        pos.col = 0;
        for (uint32_t id = s->nodes + 1; id <= SCN_MAX_NODES; id++)
            if (c->id_col[id] != 0 && (pos.col == 0 || c->id_col[id] < pos.col))
                pos.col = c->id_col[id];
        if (pos.col != 0)
            return scn_err_at(p, &pos, "a node id in 1..%u (nodes %u)", s->nodes, s->nodes);
        if (c->need_nodes > s->nodes) {
            pos.col = c->need_col;
            return scn_err_at(p, &pos, "at least %u nodes for %s (nodes %u)", c->need_nodes,
                              c->need_what, s->nodes);
        }
    }
    return RK_OK;
}

static int scn_check_settings(struct scn_parser *p)
{
    struct scenario *s = p->s;
    if (s->election_ticks_min <= s->heartbeat_ticks) {
        const struct scn_pos *election = &p->seen[SCN_S_ELECTION];
        const struct scn_pos *heartbeat = &p->seen[SCN_S_HEARTBEAT];
        /* The defaults agree, so one of them was set, and the later one is to blame. */
        RK_ASSERT(election->line != 0 || heartbeat->line != 0);
        if (election->line > heartbeat->line)
            return scn_err_at(p, election,
                              "an election timeout minimum above the heartbeat "
                              "interval (%u ticks)",
                              s->heartbeat_ticks);
        return scn_err_at(p, heartbeat,
                          "a heartbeat interval below the election timeout minimum "
                          "(%u ticks)",
                          s->election_ticks_min);
    }
    if (s->pipeline == 0 && (uint64_t)s->mix_incr + s->mix_putif + s->mix_mset + s->mix_mget +
                                    s->mix_txn + s->mix_watch + s->mix_expire + s->mix_append +
                                    s->mix_getdel + s->mix_setnx + s->mix_rename + s->mix_scan +
                                    s->mix_keys + s->mix_bits >
                                0) {
        /* One-op clients issue GET, PUT and DEL only. */
        return scn_err_at(p, &p->seen[SCN_S_MIX],
                          "only get, put and del weights without `pipeline N` (N > 0)");
    }
    if (s->members > s->nodes)
        return scn_err_at(p, &p->seen[SCN_S_MEMBERS], "at most %u members (nodes %u)", s->nodes,
                          s->nodes);
    if (s->disk.damaged_nodes > s->nodes)
        return scn_err_at(p, &p->seen[SCN_S_DISK_DAMAGED], "at most %u damaged nodes (nodes %u)",
                          s->nodes, s->nodes);
    if (!p->reorder_max_given) {
        uint64_t us = s->latency_us_max * 10;
        s->reorder_us_max = us < SCN_MAX_DURATION_US ? us : SCN_MAX_DURATION_US;
    }
    return RK_OK;
}

/* ---- public ------------------------------------------------------------------------------ */

void scn_defaults(struct scenario *s)
{
    RK_ASSERT(s != NULL);
    memset(s, 0, sizeof(*s));
    s->nodes = 3;
    s->tick_us = 10 * SCN_US_PER_MS;
    s->election_ticks_min = 10;
    s->election_ticks_max = 20;
    s->heartbeat_ticks = 1;
    s->pre_vote = true;
    s->check_quorum = true;
    s->append_entries = 256;
    s->inflight = 32;
    s->disk.file_bytes = 1u << 20;
    s->disk.sync_ticks = 10;
    s->disk.io_us_min = 20; /* a write and its fdatasync on an SSD */
    s->disk.io_us_max = 400;
    s->disk.store_io_us_min = 20;
    s->disk.store_io_us_max = 400;
    s->latency_us_min = 1 * SCN_US_PER_MS;
    s->latency_us_max = 5 * SCN_US_PER_MS;
    s->reorder_us_max = 10 * s->latency_us_max;
    s->clients = 4;
    s->keys = 3;
    s->mix_get = 50;
    s->mix_put = 40;
    s->mix_del = 10;
    s->think_us_min = 0;
    s->think_us_max = 10 * SCN_US_PER_MS;
    s->timeout_us = 1 * SCN_US_PER_S;
    s->duration_us = 10 * SCN_US_PER_S;
    s->chaos.downtime_us_min = 1 * SCN_US_PER_S;
    s->chaos.downtime_us_max = 3 * SCN_US_PER_S;
    s->expect_recovery_us = 10 * SCN_US_PER_S;
}

int scn_parse(const char *text, size_t len, const char *filename, struct scenario *s,
              struct rk_errmsg *err)
{
    RK_ASSERT(text != NULL || len == 0);
    RK_ASSERT(filename != NULL);
    RK_ASSERT(s != NULL);
    struct scn_parser p;
    p.text = text;
    p.len = len;
    p.file = filename;
    p.s = s;
    p.err = err;
    p.lineno = 0;
    p.reorder_max_given = false;
    memset(p.seen, 0, sizeof(p.seen));
    scn_defaults(s);
    size_t name_len = 0;
    while (name_len < sizeof(s->name) - 1 && filename[name_len] != '\0')
        name_len++;
    memcpy(s->name, filename, name_len);
    s->name[name_len] = '\0';

    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        p.lineno++;
        p.line_off = off;
        p.line = text + off;
        p.line_len = end - off;
        if (p.line_len > 0 && p.line[p.line_len - 1] == '\r')
            p.line_len--; /* CRLF */
        if (p.lineno > SCN_MAX_LINES)
            return scn_fail_raw(&p, 1, p.line, p.line_len, "at most %u lines", SCN_MAX_LINES);
        SCN_TRY(scn_parse_line(&p));
        off = nl != NULL ? end + 1 : len;
    }
    SCN_TRY(scn_check_steps(&p));
    return scn_check_settings(&p);
}

/* ---- printing ---------------------------------------------------------------------------- */

struct scn_out {
    char *buf;
    size_t cap;
    size_t len; /* needed so far; may exceed cap */
};

__attribute__((format(printf, 2, 3))) static void scn_out(struct scn_out *o, const char *fmt, ...)
{
    char *dst = o->len < o->cap ? o->buf + o->len : NULL;
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    RK_ASSERT(n >= 0);
    o->len += (size_t)n;
}

static void scn_out_duration(struct scn_out *o, const char *before, uint64_t us)
{
    char text[SCN_DURATION_TEXT];
    scn_fmt_duration(us, text);
    scn_out(o, "%s%s", before, text);
}

static void scn_out_double(struct scn_out *o, const char *before, double v)
{
    char text[SCN_DOUBLE_TEXT];
    scn_fmt_double(v, text);
    scn_out(o, "%s%s", before, text);
}

static void scn_print_settings(struct scn_out *o, const struct scenario *s)
{
    scn_out(o, "nodes %u\n", s->nodes);
    if (s->members != 0) /* printed only when set */
        scn_out(o, "members %u\n", s->members);
    scn_out_duration(o, "tick ", s->tick_us);
    scn_out(o, "%s\nelection %u %u\nheartbeat %u\n", s->ticks_aligned ? " aligned" : "",
            s->election_ticks_min, s->election_ticks_max, s->heartbeat_ticks);
    scn_out(o, "prevote %s\ncheckquorum %s\n", s->pre_vote ? "on" : "off",
            s->check_quorum ? "on" : "off");
    scn_out(o, "replication %u %u\n", s->append_entries, s->inflight);
    if (s->compact_entries > 0)
        scn_out(o, "snapshot %u %u\n", s->compact_entries, s->compact_keep);
    scn_out_duration(o, "latency ", s->latency_us_min);
    scn_out_duration(o, " ", s->latency_us_max);
    scn_out_double(o, "\ndrop ", s->drop);
    scn_out_double(o, "\nduplicate ", s->duplicate);
    scn_out_double(o, "\nreorder ", s->reorder);
    scn_out_duration(o, " ", s->reorder_us_max);
    scn_out(o, "\nclients %u\nkeys %u\nmix get %u put %u del %u", s->clients, s->keys, s->mix_get,
            s->mix_put, s->mix_del);
    const uint32_t more[14] = {s->mix_incr,   s->mix_putif, s->mix_mset,   s->mix_mget,
                               s->mix_txn,    s->mix_watch, s->mix_expire, s->mix_append,
                               s->mix_getdel, s->mix_setnx, s->mix_rename, s->mix_scan,
                               s->mix_keys,   s->mix_bits};
    const char *const more_names[14] = {"incr",   "putif",  "mset",   "mget",   "txn",
                                        "watch",  "expire", "append", "getdel", "setnx",
                                        "rename", "scan",   "keys",   "bits"};
    for (int i = 0; i < 14; i++) {
        if (more[i] > 0)
            scn_out(o, " %s %u", more_names[i], more[i]);
    }
    scn_out(o, "\n");
    if (s->pipeline > 0)
        scn_out(o, "pipeline %u%s\n", s->pipeline, s->pipeline_followers ? " followers" : "");
    scn_out_duration(o, "think ", s->think_us_min);
    scn_out_duration(o, " ", s->think_us_max);
    scn_out_duration(o, "\ntimeout ", s->timeout_us);
    scn_out_duration(o, "\nduration ", s->duration_us);
    scn_out(o, "\n");
    if (s->wallclock_us > 0) {
        scn_out_duration(o, "wallclock ", s->wallclock_us);
        scn_out(o, "\n");
    }
    const uint64_t expects[5] = {s->expect_leader_us, s->expect_complete_us, s->expect_recovery_us,
                                 s->expect_available_us, s->expect_unavailable_us};
    const char *const expect_names[5] = {"leader", "complete", "recovery", "available",
                                         "unavailable"};
    for (int i = 0; i < 5; i++) {
        scn_out(o, "expect %s", expect_names[i]);
        if (expects[i] == 0)
            scn_out(o, " off");
        else
            scn_out_duration(o, i == 4 ? " below " : " within ", expects[i]);
        scn_out(o, "\n");
    }
    if (s->expect_stepdown_elections == 0)
        scn_out(o, "expect stepdown off\n");
    else
        scn_out(o, "expect stepdown within %u elections\n", s->expect_stepdown_elections);
    for (uint32_t i = 0; i < s->n_refusals && i < SCN_MAX_REFUSALS; i++)
        scn_out(o, "expect refusal %.*s\n", SCN_REFUSAL_BYTES - 1, s->refusals[i]);
    if (s->expect_disk_bytes > 0)
        scn_out(o, "expect disk below %llu\n", (unsigned long long)(s->expect_disk_bytes >> 10));
    scn_out_double(o, "chaos crash ", s->chaos.crash_per_s);
    scn_out_double(o, "\nchaos partition ", s->chaos.partition_per_s);
    scn_out_double(o, "\nchaos pause ", s->chaos.pause_per_s);
    scn_out_double(o, "\nchaos skew ", s->chaos.skew_per_s);
    if (s->chaos.member_per_s > 0) /* printed only when set */
        scn_out_double(o, "\nchaos member ", s->chaos.member_per_s);
    scn_out_duration(o, "\nchaos downtime ", s->chaos.downtime_us_min);
    scn_out_duration(o, " ", s->chaos.downtime_us_max);
    scn_out(o, "\ndisk torn %s\n", s->disk.torn ? "on" : "off");
    scn_out_double(o, "disk bitflip ", s->disk.bitflip);
    scn_out_double(o, "\ndisk errors ", s->disk.errors);
    scn_out_duration(o, "\ndisk slow ", s->disk.sync_us);
    scn_out(o, "\ndisk crashpoints %s\n", s->disk.crashpoints ? "on" : "off");
    scn_out_duration(o, "disk merge ", s->disk.merge_us);
    scn_out(o, "\ndisk rotate %u\ndisk sync %u", s->disk.file_bytes, s->disk.sync_ticks);
    /* Persistent damage: printed only when set (the canonical form of older files is kept). */
    const double damage[] = {s->disk.rot, s->disk.badsector, s->disk.lost, s->disk.misdirect,
                             s->disk.wipe};
    const char *const damage_names[] = {"rot", "badsector", "lost", "misdirect", "wipe"};
    for (int k = 0; k < 5; k++) {
        if (damage[k] > 0) {
            scn_out(o, "\ndisk %s ", damage_names[k]);
            scn_out_double(o, "", damage[k]);
        }
    }
    if (s->disk.io_us_min != 20 || s->disk.io_us_max != 400) { /* printed only when set */
        scn_out_duration(o, "\ndisk io ", s->disk.io_us_min);
        scn_out_duration(o, " ", s->disk.io_us_max);
    }
    if (s->disk.store_io_us_min != 20 || s->disk.store_io_us_max != 400) {
        scn_out_duration(o, "\ndisk storeio ", s->disk.store_io_us_min);
        scn_out_duration(o, " ", s->disk.store_io_us_max);
    }
    if (s->disk.damaged_nodes != 0)
        scn_out(o, "\ndisk damaged %u", s->disk.damaged_nodes);
    scn_out(o, "\nswarm %s\n", s->swarm ? "on" : "off");
}

static void scn_print_set(struct scn_out *o, const struct scn_set *set)
{
    if (set->kind != SCN_SET_IDS) {
        bool known = set->kind >= SCN_SET_LEADER && set->kind <= SCN_SET_KIND_LAST;
        scn_out(o, " %s", known ? scn_set_names[set->kind] : "?");
        return;
    }
    for (uint32_t i = 0; i < set->n_ids && i < SCN_MAX_NODES; i++)
        scn_out(o, " %u", set->ids[i]);
}

/* Prints steps[i] and returns how many steps it covered (a latency pair is one line). */
static uint32_t scn_print_step(struct scn_out *o, const struct scenario *s, uint32_t i)
{
    static const char *const params[] = {
        [SCN_NET_DROP] = "drop", [SCN_NET_DUPLICATE] = "duplicate", [SCN_NET_REORDER] = "reorder"};
    const struct scn_step *step = &s->steps[i];
    const char *name = "?";
    for (size_t a = 0; a < SCN_N_ACTIONS; a++)
        if (scn_actions[a].action == step->action)
            name = scn_actions[a].name;
    scn_out_duration(o, "at ", step->at_us);
    scn_out(o, " %s", name);
    uint32_t covered = 1;
    if (step->action == SCN_PARTITION && step->n_groups == 0) {
        scn_out(o, " random");
    } else if (step->action == SCN_SET_NET && step->param >= SCN_NET_DROP &&
               step->param <= SCN_NET_REORDER) {
        scn_out(o, " %s", params[step->param]);
        scn_out_double(o, " ", step->factor);
    } else if (step->action == SCN_SET_NET) {
        /* A latency pair as scn_parse makes it; a lone half cannot be written in the language. */
        const struct scn_step *next = i + 1 < s->n_steps ? step + 1 : NULL;
        bool pair = step->param == SCN_NET_LATENCY_MIN && next != NULL &&
                    next->action == SCN_SET_NET && next->param == SCN_NET_LATENCY_MAX &&
                    next->at_us == step->at_us;
        scn_out_duration(o, " latency ", (uint64_t)step->factor);
        scn_out_duration(o, " ", (uint64_t)(pair ? next->factor : step->factor));
        covered = pair ? 2 : 1;
    } else {
        for (uint32_t g = 0; g < step->n_groups && g < SCN_MAX_GROUPS; g++) {
            if (g > 0)
                scn_out(o, step->action == SCN_ONEWAY ? " ->" : " |");
            scn_print_set(o, &step->groups[g]);
        }
        if (step->action == SCN_SKEW)
            scn_out_double(o, " ", step->factor);
    }
    scn_out(o, "\n");
    return covered;
}

size_t scn_print(const struct scenario *s, char *buf, size_t cap)
{
    RK_ASSERT(s != NULL);
    RK_ASSERT(buf != NULL || cap == 0);
    struct scn_out o = {.buf = buf, .cap = cap, .len = 0};
    if (cap > 0)
        buf[0] = '\0';
    if (s->name[0] != '\0') {
        char name[sizeof(s->name) * 4 + 4];
        size_t n = 0;
        while (n < sizeof(s->name) && s->name[n] != '\0')
            n++;
        scn_escape(s->name, n, sizeof(s->name), name, sizeof(name));
        scn_out(&o, "# scenario: %s\n", name);
    }
    scn_print_settings(&o, s);
    for (uint32_t i = 0; i < s->n_steps && i < SCN_MAX_STEPS;)
        i += scn_print_step(&o, s, i);
    return o.len;
}
