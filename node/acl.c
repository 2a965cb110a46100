/*
 * acl.c — permission checks of an ACL user (acl.h).
 */
#include <string.h>

#include "acl.h"
#include "glob.h"

/* Whether one rule's target (after its sign) names this command. */
static bool rule_names(const char *target, const char *fullname, uint32_t categories)
{
    if (target[0] == '@') {
        int c = kv_acl_category((const uint8_t *)target + 1, strlen(target + 1));
        return c >= 0 && (categories & (1u << c)) != 0;
    }
    size_t tl = strlen(target);
    if (strcmp(target, fullname) == 0)
        return true;
    /* "+config" covers "config|get" */
    return strchr(target, '|') == NULL && strncmp(fullname, target, tl) == 0 && fullname[tl] == '|';
}

bool acl_cmd_allowed(const struct kv_acl_user *u, const char *fullname, uint32_t categories)
{
    bool allowed = (u->flags & KV_ACL_ALLCMDS) != 0;
    for (uint32_t i = 0; i < u->n_rules; i++)
        if (rule_names(u->rules[i] + 1, fullname, categories))
            allowed = u->rules[i][0] == '+';
    return allowed;
}

bool acl_key_allowed(const struct kv_acl_user *u, const uint8_t *key, size_t len, uint8_t need)
{
    if (u->flags & KV_ACL_ALLKEYS)
        return true;
    for (uint32_t i = 0; i < u->n_keys; i++) {
        const struct kv_acl_pattern *p = &u->keys[i];
        if ((p->flags & need) != need)
            continue;
        if (glob_match(p->p, p->len, key, len))
            return true;
    }
    return false;
}

static bool has_word(const char *s, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = s; (p = strstr(p, w)) != NULL; p += wl)
        if ((p == s || p[-1] == ' ') && (p[wl] == 0 || p[wl] == ' '))
            return true;
    return false;
}

uint8_t acl_key_need(const char *spec_flags)
{
    uint8_t need = 0;
    if (has_word(spec_flags, "access"))
        need |= KV_ACL_KEY_READ;
    if (has_word(spec_flags, "insert") || has_word(spec_flags, "delete") ||
        has_word(spec_flags, "update"))
        need |= KV_ACL_KEY_WRITE;
    return need;
}
