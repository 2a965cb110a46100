/*
 * acl.c — one ACL user: Redis 7's rule language, the record, the description (acl.h).
 *
 * Invariants of a struct kv_acl_user (checked by kv_acl_decode for a record):
 *   A1  ALLKEYS implies no key patterns; ALLCHANNELS implies no channel patterns.
 *   A2  NOPASS implies no password hashes; no hash appears twice; no pattern appears twice.
 *   A3  every rule is "+" or "-" then a lower-case name ("@cat", "cmd" or "cmd|sub") and no two
 *       rules name the same thing (a later rule replaces an earlier one, ACLUpdateCommandRules).
 */
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "kv/acl.h"

static const char *const categories[KV_ACL_CATEGORIES] = {
    "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
    "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
    "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting"};

const char *kv_acl_category_name(uint32_t i)
{
    RK_ASSERT(i < KV_ACL_CATEGORIES);
    return categories[i];
}

static bool eq_nocase(const uint8_t *a, size_t len, const char *b)
{
    if (strlen(b) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t x = a[i] >= 'A' && a[i] <= 'Z' ? (uint8_t)(a[i] + 32) : a[i];
        if (x != (uint8_t)b[i])
            return false;
    }
    return true;
}

int kv_acl_category(const uint8_t *name, size_t len)
{
    for (uint32_t i = 0; i < KV_ACL_CATEGORIES; i++)
        if (eq_nocase(name, len, categories[i]))
            return (int)i;
    return -1;
}

bool kv_acl_name_ok(const uint8_t *name, size_t len)
{
    if (len == 0 || len > KV_ACL_MAX_NAME_BYTES)
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] == ' ' || name[i] == 0)
            return false;
    return true;
}

void kv_acl_user_new(struct kv_acl_user *u, const uint8_t *name, size_t len)
{
    RK_ASSERT(kv_acl_name_ok(name, len));
    memset(u, 0, sizeof(*u));
    u->name_len = (uint8_t)len;
    memcpy(u->name, name, len);
    u->name[len] = 0;
}

void kv_acl_user_default(struct kv_acl_user *u)
{
    kv_acl_user_new(u, (const uint8_t *)"default", 7);
    u->flags = KV_ACL_ON | KV_ACL_NOPASS | KV_ACL_ALLKEYS | KV_ACL_ALLCHANNELS | KV_ACL_ALLCMDS;
}

bool kv_acl_has_hash(const struct kv_acl_user *u, const uint8_t hash[KV_ACL_HASH_BYTES])
{
    for (uint32_t i = 0; i < u->n_pass; i++)
        if (memcmp(u->pass[i], hash, KV_ACL_HASH_BYTES) == 0)
            return true;
    return false;
}

/* ---- rules -------------------------------------------------------------------------------- */

static int fail(char *why, size_t cap, const char *text)
{
    if (cap > 0)
        snprintf(why, cap, "%s", text);
    return RK_EINVAL;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* "#<64 lower-case hex>" or "!<...>": the hash, or false. */
static bool parse_hash(const uint8_t *p, size_t len, uint8_t out[KV_ACL_HASH_BYTES])
{
    if (len != 2 * KV_ACL_HASH_BYTES)
        return false;
    for (size_t i = 0; i < KV_ACL_HASH_BYTES; i++) {
        int hi = hex_digit(p[2 * i]), lo = hex_digit(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static const char bad_hash[] = "The password hash must be exactly 64 characters and contain only "
                               "lowercase hexadecimal characters";

static int rule_password(struct kv_acl_user *u, const uint8_t *r, size_t len, char *why, size_t cap)
{
    uint8_t h[KV_ACL_HASH_BYTES];
    if (!parse_hash(r + 1, len - 1, h))
        return fail(why, cap, bad_hash);
    if (r[0] == '#') {
        u->flags &= (uint8_t)~KV_ACL_NOPASS;
        if (kv_acl_has_hash(u, h))
            return RK_OK;
        if (u->n_pass == KV_ACL_MAX_PASSWORDS)
            return fail(why, cap, "raftkv keeps at most 16 passwords per user");
        memcpy(u->pass[u->n_pass++], h, KV_ACL_HASH_BYTES);
        return RK_OK;
    }
    for (uint32_t i = 0; i < u->n_pass; i++)
        if (memcmp(u->pass[i], h, KV_ACL_HASH_BYTES) == 0) {
            memmove(u->pass[i], u->pass[i + 1], (size_t)(u->n_pass - i - 1) * KV_ACL_HASH_BYTES);
            u->n_pass--;
            return RK_OK;
        }
    return fail(why, cap, "The password you are trying to remove from the user does not exist");
}

/* ~pattern, %R~pattern, %W~pattern, %RW~pattern (Redis's ACLSetSelector). */
static int rule_key(struct kv_acl_user *u, const uint8_t *r, size_t len, char *why, size_t cap)
{
    uint8_t flags = KV_ACL_KEY_READ | KV_ACL_KEY_WRITE;
    size_t off = 1;
    if (u->flags & KV_ACL_ALLKEYS) /* Redis checks this before the pattern's flags */
        return fail(why, cap,
                    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid "
                    "and does not have any effect. Try 'resetkeys' to start with an empty list "
                    "of patterns");
    if (r[0] == '%') {
        flags = 0;
        for (; off < len && r[off] != '~'; off++) {
            if (r[off] == 'R' || r[off] == 'r')
                flags |= KV_ACL_KEY_READ;
            else if (r[off] == 'W' || r[off] == 'w')
                flags |= KV_ACL_KEY_WRITE;
            else
                return fail(why, cap, "Syntax error");
        }
        if (off == len || flags == 0)
            return fail(why, cap, "Syntax error");
        off++;
    }
    size_t plen = len - off;
    if (plen > KV_ACL_MAX_PATTERN_BYTES)
        return fail(why, cap, "raftkv keeps patterns of at most 256 bytes");
    for (uint32_t i = 0; i < u->n_keys; i++)
        if (u->keys[i].len == plen && memcmp(u->keys[i].p, r + off, plen) == 0) {
            u->keys[i].flags |= flags;
            return RK_OK;
        }
    if (u->n_keys == KV_ACL_MAX_PATTERNS)
        return fail(why, cap, "raftkv keeps at most 16 key patterns per user");
    struct kv_acl_pattern *p = &u->keys[u->n_keys++];
    p->flags = flags;
    p->len = (uint16_t)plen;
    memcpy(p->p, r + off, plen);
    return RK_OK;
}

static int rule_channel(struct kv_acl_user *u, const uint8_t *r, size_t len, char *why, size_t cap)
{
    if (u->flags & KV_ACL_ALLCHANNELS)
        return fail(why, cap,
                    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not "
                    "valid and does not have any effect. Try 'resetchannels' to start with an "
                    "empty list of channels");
    size_t plen = len - 1;
    if (plen > KV_ACL_MAX_PATTERN_BYTES)
        return fail(why, cap, "raftkv keeps patterns of at most 256 bytes");
    for (uint32_t i = 0; i < u->n_chan; i++)
        if (u->chans[i].len == plen && memcmp(u->chans[i].p, r + 1, plen) == 0)
            return RK_OK;
    if (u->n_chan == KV_ACL_MAX_PATTERNS)
        return fail(why, cap, "raftkv keeps at most 16 channel patterns per user");
    struct kv_acl_pattern *p = &u->chans[u->n_chan++];
    p->flags = 0;
    p->len = (uint16_t)plen;
    memcpy(p->p, r + 1, plen);
    return RK_OK;
}

/* Redis 7.2's ACLSelectorRemoveCommandRule: drops every rule naming name, or a subcommand of it
 * ("+config|get" when name is "config"). */
static void remove_rule(struct kv_acl_user *u, const char *name, size_t nlen)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < u->n_rules; i++) {
        const char *r = u->rules[i] + 1;
        size_t rlen = (size_t)u->rule_len[i] - 1;
        bool same = rlen >= nlen && memcmp(r, name, nlen) == 0 && (rlen == nlen || r[nlen] == '|');
        if (same)
            continue;
        if (k != i) {
            memcpy(u->rules[k], u->rules[i], sizeof(u->rules[i]));
            u->rule_len[k] = u->rule_len[i];
        }
        k++;
    }
    u->n_rules = (uint8_t)k;
}

/* +cmd, -cmd, +cmd|sub, +@cat, -@cat (+@all and -@all are handled by the caller). */
static int rule_command(struct kv_acl_user *u, const uint8_t *r, size_t len, char *why, size_t cap)
{
    static const char unknown[] = "Unknown command or category name in ACL";
    if (len < 2 || len > KV_ACL_MAX_RULE_BYTES)
        return fail(why, cap, unknown);
    char name[KV_ACL_MAX_RULE_BYTES + 1];
    size_t nlen = len - 1;
    for (size_t i = 0; i < nlen; i++) {
        uint8_t ch = r[1 + i];
        name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        /* a command name: printable, no space; '@' only first; at most one '|' */
        if (ch <= ' ' || ch > '~' || (ch == '@' && i != 0))
            return fail(why, cap, unknown);
    }
    name[nlen] = 0;
    const char *bar = memchr(name, '|', nlen);
    if (name[0] == '@') {
        if (kv_acl_category((const uint8_t *)name + 1, nlen - 1) < 0)
            return fail(why, cap, unknown);
    } else if (bar != NULL && (bar == name || bar[1] == 0 || strchr(bar + 1, '|') != NULL)) {
        return fail(why, cap, unknown);
    }
    remove_rule(u, name, nlen);
    if (u->n_rules == KV_ACL_MAX_RULES)
        return fail(why, cap, "raftkv keeps at most 64 command rules per user");
    u->rules[u->n_rules][0] = (char)r[0];
    memcpy(u->rules[u->n_rules] + 1, name, nlen + 1);
    u->rule_len[u->n_rules] = (uint8_t)len;
    u->n_rules++;
    return RK_OK;
}

static bool is(const uint8_t *r, size_t len, const char *word)
{
    return eq_nocase(r, len, word);
}

static void reset_keys(struct kv_acl_user *u)
{
    u->flags &= (uint8_t)~KV_ACL_ALLKEYS;
    u->n_keys = 0;
}

static void reset_channels(struct kv_acl_user *u)
{
    u->flags &= (uint8_t)~KV_ACL_ALLCHANNELS;
    u->n_chan = 0;
}

static void reset_pass(struct kv_acl_user *u)
{
    u->flags &= (uint8_t)~KV_ACL_NOPASS;
    u->n_pass = 0;
}

static void set_commands(struct kv_acl_user *u, bool all)
{
    if (all)
        u->flags |= KV_ACL_ALLCMDS;
    else
        u->flags &= (uint8_t)~KV_ACL_ALLCMDS;
    u->n_rules = 0;
}

/* Applies one rule to u in place; on error u may be partly changed (kv_acl_rule copies). */
static int apply_rule(struct kv_acl_user *u, const uint8_t *r, size_t len, char *why, size_t cap)
{
    if (len == 0)
        return fail(why, cap, "Syntax error");
    if (is(r, len, "on")) {
        u->flags |= KV_ACL_ON;
    } else if (is(r, len, "off")) {
        u->flags &= (uint8_t)~KV_ACL_ON;
    } else if (is(r, len, "skip-sanitize-payload")) {
        u->flags = (uint8_t)((u->flags & ~KV_ACL_SANITIZE) | KV_ACL_SKIP_SANITIZE);
    } else if (is(r, len, "sanitize-payload")) {
        u->flags = (uint8_t)((u->flags & ~KV_ACL_SKIP_SANITIZE) | KV_ACL_SANITIZE);
    } else if (is(r, len, "nopass")) {
        reset_pass(u);
        u->flags |= KV_ACL_NOPASS;
    } else if (is(r, len, "resetpass")) {
        reset_pass(u);
    } else if (r[0] == '#' || r[0] == '!') {
        return rule_password(u, r, len, why, cap);
    } else if (r[0] == '>' || r[0] == '<') {
        return fail(why, cap, "a clear-text password must be hashed by the node");
    } else if (is(r, len, "allkeys") || (len == 2 && r[0] == '~' && r[1] == '*')) {
        reset_keys(u);
        u->flags |= KV_ACL_ALLKEYS;
    } else if (is(r, len, "resetkeys")) {
        reset_keys(u);
    } else if (r[0] == '~' || r[0] == '%') {
        return rule_key(u, r, len, why, cap);
    } else if (is(r, len, "allchannels") || (len == 2 && r[0] == '&' && r[1] == '*')) {
        reset_channels(u);
        u->flags |= KV_ACL_ALLCHANNELS;
    } else if (is(r, len, "resetchannels")) {
        reset_channels(u);
    } else if (r[0] == '&') {
        return rule_channel(u, r, len, why, cap);
    } else if (is(r, len, "allcommands") || is(r, len, "+@all")) {
        set_commands(u, true);
    } else if (is(r, len, "nocommands") || is(r, len, "-@all")) {
        set_commands(u, false);
    } else if (r[0] == '+' || r[0] == '-') {
        return rule_command(u, r, len, why, cap);
    } else if (is(r, len, "clearselectors")) {
        /* raftkv has no selectors (node/DEVIATIONS.md): nothing to clear */
    } else if (is(r, len, "reset")) {
        reset_pass(u);
        reset_keys(u);
        reset_channels(u);
        u->flags &= (uint8_t) ~(KV_ACL_ON | KV_ACL_SKIP_SANITIZE);
        u->flags |= KV_ACL_SANITIZE;
        set_commands(u, false);
    } else if (r[0] == '(') {
        return fail(why, cap, "raftkv does not support selectors");
    } else {
        return fail(why, cap, "Syntax error");
    }
    return RK_OK;
}

int kv_acl_rule(struct kv_acl_user *u, const uint8_t *rule, size_t len, char *why, size_t cap)
{
    RK_ASSERT(u != NULL);
    RK_ASSERT(rule != NULL || len == 0);
    struct kv_acl_user copy;
    memcpy(&copy, u, sizeof(copy));
    int rc = apply_rule(&copy, rule, len, why, cap);
    if (rc == RK_OK)
        memcpy(u, &copy, sizeof(copy));
    return rc;
}

/* ---- the record ----------------------------------------------------------------------------- */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool full;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return;
    }
    if (n > 0)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put8(struct wbuf *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put16(struct wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(w, b, 2);
}

size_t kv_acl_encode(const struct kv_acl_user *u, uint8_t *buf, size_t cap)
{
    RK_ASSERT(u->n_pass <= KV_ACL_MAX_PASSWORDS && u->n_keys <= KV_ACL_MAX_PATTERNS);
    RK_ASSERT(u->n_chan <= KV_ACL_MAX_PATTERNS && u->n_rules <= KV_ACL_MAX_RULES);
    struct wbuf w = {buf, 0, cap, false};
    put8(&w, KV_ACL_RECORD_VERSION);
    put8(&w, u->flags);
    put8(&w, u->n_pass);
    for (uint32_t i = 0; i < u->n_pass; i++)
        put(&w, u->pass[i], KV_ACL_HASH_BYTES);
    put8(&w, u->n_keys);
    for (uint32_t i = 0; i < u->n_keys; i++) {
        put8(&w, u->keys[i].flags);
        put16(&w, u->keys[i].len);
        put(&w, u->keys[i].p, u->keys[i].len);
    }
    put8(&w, u->n_chan);
    for (uint32_t i = 0; i < u->n_chan; i++) {
        put16(&w, u->chans[i].len);
        put(&w, u->chans[i].p, u->chans[i].len);
    }
    put8(&w, u->n_rules);
    for (uint32_t i = 0; i < u->n_rules; i++) {
        put8(&w, u->rule_len[i]);
        put(&w, u->rules[i], u->rule_len[i]);
    }
    return w.full ? 0 : w.len;
}

struct rbuf {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
};

static const uint8_t *take(struct rbuf *r, size_t n)
{
    if (r->bad || r->len - r->pos < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *at = r->p + r->pos;
    r->pos += n;
    return at;
}

static uint8_t get8(struct rbuf *r)
{
    const uint8_t *b = take(r, 1);
    return b == NULL ? 0 : b[0];
}

static uint16_t get16(struct rbuf *r)
{
    const uint8_t *b = take(r, 2);
    return b == NULL ? 0 : (uint16_t)(b[0] | b[1] << 8);
}

/* Reads n patterns into ps; false on a bad length or a repeat (A2). */
static bool get_patterns(struct rbuf *r, struct kv_acl_pattern *ps, uint8_t n, bool keys)
{
    for (uint32_t i = 0; i < n; i++) {
        ps[i].flags = keys ? get8(r) : 0;
        ps[i].len = get16(r);
        if (ps[i].len > KV_ACL_MAX_PATTERN_BYTES)
            return false;
        if (keys && (ps[i].flags == 0 || (ps[i].flags & ~3u) != 0))
            return false;
        const uint8_t *b = take(r, ps[i].len);
        if (b == NULL)
            return false;
        memcpy(ps[i].p, b, ps[i].len);
        for (uint32_t j = 0; j < i; j++)
            if (ps[j].len == ps[i].len && memcmp(ps[j].p, ps[i].p, ps[i].len) == 0)
                return false;
    }
    return true;
}

int kv_acl_decode(const uint8_t *name, size_t name_len, const uint8_t *val, size_t len,
                  struct kv_acl_user *u)
{
    if (!kv_acl_name_ok(name, name_len))
        return RK_ECORRUPT;
    kv_acl_user_new(u, name, name_len);
    struct rbuf r = {val, len, 0, false};
    if (get8(&r) != KV_ACL_RECORD_VERSION)
        return RK_ECORRUPT;
    u->flags = get8(&r);
    if ((u->flags & ~0x7fu) != 0)
        return RK_ECORRUPT;
    u->n_pass = get8(&r);
    if (u->n_pass > KV_ACL_MAX_PASSWORDS || (u->n_pass > 0 && (u->flags & KV_ACL_NOPASS)))
        return RK_ECORRUPT;
    for (uint32_t i = 0; i < u->n_pass; i++) {
        const uint8_t *b = take(&r, KV_ACL_HASH_BYTES);
        if (b == NULL)
            return RK_ECORRUPT;
        memcpy(u->pass[i], b, KV_ACL_HASH_BYTES);
        for (uint32_t j = 0; j < i; j++)
            if (memcmp(u->pass[j], b, KV_ACL_HASH_BYTES) == 0)
                return RK_ECORRUPT;
    }
    u->n_keys = get8(&r);
    if (u->n_keys > KV_ACL_MAX_PATTERNS || (u->n_keys > 0 && (u->flags & KV_ACL_ALLKEYS)) ||
        !get_patterns(&r, u->keys, u->n_keys, true))
        return RK_ECORRUPT;
    u->n_chan = get8(&r);
    if (u->n_chan > KV_ACL_MAX_PATTERNS || (u->n_chan > 0 && (u->flags & KV_ACL_ALLCHANNELS)) ||
        !get_patterns(&r, u->chans, u->n_chan, false))
        return RK_ECORRUPT;
    uint8_t n_rules = get8(&r);
    if (n_rules > KV_ACL_MAX_RULES)
        return RK_ECORRUPT;
    for (uint32_t i = 0; i < n_rules; i++) {
        uint8_t rl = get8(&r);
        const uint8_t *b = take(&r, rl);
        /* re-applied, so that A3 holds for what was read: the shape, no repeats */
        char why[8];
        if (b == NULL || rl < 2 || (b[0] != '+' && b[0] != '-') ||
            (rl == 5 && memcmp(b + 1, "@all", 4) == 0) ||
            rule_command(u, b, rl, why, sizeof(why)) != RK_OK || u->n_rules != i + 1 ||
            memcmp(u->rules[i], b, rl) != 0)
            return RK_ECORRUPT;
    }
    return r.bad || r.pos != len ? RK_ECORRUPT : RK_OK;
}

/* ---- descriptions --------------------------------------------------------------------------- */

struct tbuf {
    char *p;
    size_t len, cap;
};

static void cat(struct tbuf *t, const char *s, size_t n)
{
    if (t->cap == 0)
        return;
    size_t room = t->cap - 1 - t->len;
    if (n > room)
        n = room;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static void cats(struct tbuf *t, const char *s)
{
    cat(t, s, strlen(s));
}

/* A separating space, but not first. */
static void sep(struct tbuf *t)
{
    if (t->len > 0)
        cat(t, " ", 1);
}

static void desc_flags(const struct kv_acl_user *u, struct tbuf *t, bool hashes)
{
    sep(t);
    cats(t, (u->flags & KV_ACL_ON) ? "on" : "off");
    if (u->flags & KV_ACL_NOPASS)
        cats(t, " nopass");
    if (u->flags & KV_ACL_SKIP_SANITIZE)
        cats(t, " skip-sanitize-payload");
    if (u->flags & KV_ACL_SANITIZE)
        cats(t, " sanitize-payload");
    for (uint32_t i = 0; hashes && i < u->n_pass; i++) {
        char hex[2 * KV_ACL_HASH_BYTES + 3];
        hex[0] = ' ';
        hex[1] = '#';
        for (uint32_t j = 0; j < KV_ACL_HASH_BYTES; j++)
            snprintf(hex + 2 + 2 * j, 3, "%02x", u->pass[i][j]);
        cats(t, hex);
    }
}

static void desc_keys(const struct kv_acl_user *u, struct tbuf *t)
{
    if (u->flags & KV_ACL_ALLKEYS) {
        sep(t);
        cats(t, "~*");
        return;
    }
    for (uint32_t i = 0; i < u->n_keys; i++) {
        sep(t);
        uint8_t f = u->keys[i].flags;
        cats(t, f == KV_ACL_KEY_READ ? "%R~" : f == KV_ACL_KEY_WRITE ? "%W~" : "~");
        cat(t, (const char *)u->keys[i].p, u->keys[i].len);
    }
}

static void desc_channels(const struct kv_acl_user *u, struct tbuf *t)
{
    sep(t);
    if (u->flags & KV_ACL_ALLCHANNELS) {
        cats(t, "&*");
        return;
    }
    cats(t, "resetchannels");
    for (uint32_t i = 0; i < u->n_chan; i++) {
        cats(t, " &");
        cat(t, (const char *)u->chans[i].p, u->chans[i].len);
    }
}

static void desc_commands(const struct kv_acl_user *u, struct tbuf *t)
{
    sep(t);
    cats(t, (u->flags & KV_ACL_ALLCMDS) ? "+@all" : "-@all");
    for (uint32_t i = 0; i < u->n_rules; i++) {
        cats(t, " ");
        cat(t, u->rules[i], u->rule_len[i]);
    }
}

size_t kv_acl_describe(const struct kv_acl_user *u, char *out, size_t cap)
{
    struct tbuf t = {out, 0, cap};
    if (cap > 0)
        out[0] = 0;
    desc_flags(u, &t, true);
    desc_keys(u, &t);
    desc_channels(u, &t);
    desc_commands(u, &t);
    return t.len;
}

size_t kv_acl_describe_keys(const struct kv_acl_user *u, char *out, size_t cap)
{
    struct tbuf t = {out, 0, cap};
    if (cap > 0)
        out[0] = 0;
    desc_keys(u, &t);
    return t.len;
}

size_t kv_acl_describe_channels(const struct kv_acl_user *u, char *out, size_t cap)
{
    struct tbuf t = {out, 0, cap};
    if (cap > 0)
        out[0] = 0;
    if (u->flags & KV_ACL_ALLCHANNELS) {
        cats(&t, "&*");
        return t.len;
    }
    for (uint32_t i = 0; i < u->n_chan; i++) {
        sep(&t);
        cats(&t, "&");
        cat(&t, (const char *)u->chans[i].p, u->chans[i].len);
    }
    return t.len;
}

size_t kv_acl_describe_commands(const struct kv_acl_user *u, char *out, size_t cap)
{
    struct tbuf t = {out, 0, cap};
    if (cap > 0)
        out[0] = 0;
    desc_commands(u, &t);
    return t.len;
}
