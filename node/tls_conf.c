/*
 * tls_conf.c — the TLS settings' values (tls_conf.h): pure parsing, no OpenSSL, no I/O.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tls_conf.h"

#define WORD_MAX 32

bool tls_parse_protocols(const char *text, unsigned *mask)
{
    unsigned m = 0;
    if (text == NULL || text[strspn(text, " \t")] == 0) {
        *mask = TLS_PROTO_12 | TLS_PROTO_13;
        return true;
    }
    const char *p = text;
    while (*p != 0) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (len == 0)
            break;
        unsigned bit = 0;
        if (len == 7 && strncasecmp(p, "TLSv1.2", 7) == 0)
            bit = TLS_PROTO_12;
        else if (len == 7 && strncasecmp(p, "TLSv1.3", 7) == 0)
            bit = TLS_PROTO_13;
        if (bit == 0 || (m & bit) != 0)
            return false;
        m |= bit;
        p += len;
    }
    if (m == 0)
        return false;
    *mask = m;
    return true;
}

bool tls_parse_auth(const char *text, enum tls_auth *out)
{
    if (text == NULL)
        return false;
    if (strcasecmp(text, "yes") == 0)
        *out = TLS_AUTH_YES;
    else if (strcasecmp(text, "no") == 0)
        *out = TLS_AUTH_NO;
    else if (strcasecmp(text, "optional") == 0)
        *out = TLS_AUTH_OPTIONAL;
    else
        return false;
    return true;
}

/* One ID=NAME entry of [p, p + len): its id and name span. false when malformed. */
static bool entry_parse(const char *p, size_t len, uint64_t *id, const char **name,
                        size_t *name_len)
{
    const char *eq = memchr(p, '=', len);
    if (eq == NULL || eq == p || (size_t)(eq - p) > 20)
        return false;
    uint64_t v = 0;
    for (const char *d = p; d < eq; d++) {
        if (*d < '0' || *d > '9')
            return false;
        uint64_t next = v * 10 + (uint64_t)(*d - '0');
        if (next / 10 != v)
            return false; /* above 2^64 */
        v = next;
    }
    size_t nl = len - (size_t)(eq + 1 - p);
    if (v == 0 || nl == 0 || nl > 255)
        return false;
    for (size_t i = 0; i < nl; i++) {
        char ch = eq[1 + i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '*' || ch == '_';
        if (!ok)
            return false;
    }
    *id = v;
    *name = eq + 1;
    *name_len = nl;
    return true;
}

bool tls_check_peer_names(const char *list, char *why, size_t cap)
{
    uint64_t seen[64];
    size_t n_seen = 0;
    for (const char *p = list; *p != 0;) {
        size_t len = strcspn(p, ",");
        uint64_t id = 0;
        const char *name = NULL;
        size_t nl = 0;
        if (!entry_parse(p, len, &id, &name, &nl)) {
            snprintf(why, cap, "'%.*s' is not ID=NAME (id >= 1, name of letters, digits, . - _ *)",
                     (int)(len > 100 ? 100 : len), p);
            return false;
        }
        for (size_t i = 0; i < n_seen; i++)
            if (seen[i] == id) {
                snprintf(why, cap, "id %llu named twice", (unsigned long long)id);
                return false;
            }
        if (n_seen == sizeof(seen) / sizeof(seen[0])) {
            snprintf(why, cap, "more than %zu names", n_seen);
            return false;
        }
        seen[n_seen++] = id;
        p += len;
        if (*p == ',') {
            p++;
            if (*p == 0) {
                snprintf(why, cap, "a trailing comma");
                return false;
            }
        }
    }
    return true;
}

bool tls_peer_name(const char *list, uint64_t id, char *out, size_t cap)
{
    for (const char *p = list; *p != 0;) {
        size_t len = strcspn(p, ",");
        uint64_t eid = 0;
        const char *name = NULL;
        size_t nl = 0;
        if (entry_parse(p, len, &eid, &name, &nl) && eid == id && nl < cap) {
            memcpy(out, name, nl);
            out[nl] = 0;
            return true;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}
