/*
 * acl.h — ACL users as replicated state (issue #18): one user's rules (Redis 7's ACL SETUSER
 * language), its record in the state machine's store, and its description (ACL LIST's form).
 *
 * WHY HERE. Users live in the state machine, as etcd keeps its users and roles in its own store:
 * an ACL SETUSER or DELUSER is a version-2 op (KV_C_ACL_SETUSER, KV_C_ACL_DELUSER) that goes
 * through Raft, so every node enforces the same users, they survive restarts (records in the
 * store, reloaded by kv_create) and travel in snapshots (which copy every store record); the
 * state digest covers them as it covers every record but the host's 'm' ones.
 *
 * WHAT IS STORED. The rules are applied AT APPLY TIME, to the user as the state machine has it
 * (Redis applies ACL SETUSER's rules in order to the existing user, atomically: a rule that
 * fails leaves the user as it was), so two SETUSERs sent to two nodes at once compose as they
 * would on one Redis. Nothing here depends on the node's command table: command rules are kept
 * as the ordered list Redis 7.2 keeps (ACLUpdateCommandRules: a rule replaces an earlier rule of
 * the same command or category, "+@all"/"-@all" reset the list), and the node turns that list
 * into a permission per command of its own table. Passwords never reach the log in clear: the
 * node turns ">pass" into "#<sha256 hex>" and "<pass" into "!<sha256 hex>" before proposing.
 *
 * RECORD ('a' + name; kv.h "the store layout"), little-endian:
 *     [version u8 = 1][flags u8][n_pass u8][32-byte SHA-256] x n_pass
 *     [n_keys u8]{[key flags u8][len u16][pattern]} x n_keys
 *     [n_chan u8]{[len u16][pattern]} x n_chan
 *     [n_rules u8]{[len u8][rule]} x n_rules
 * checked after it is read (RK_ECORRUPT), every count and length within the limits below.
 * The user "default" exists without a record ("on nopass ~* &* +@all", Redis's default user)
 * until an ACL SETUSER default writes one; it cannot be deleted.
 */
#ifndef RK_KV_ACL_H
#define RK_KV_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_KEY_ACL               'a' /* 'a' + user name: a user record */
#define KV_ACL_MAX_USERS         256u
#define KV_ACL_MAX_NAME_BYTES    128u
#define KV_ACL_MAX_PASSWORDS     16u
#define KV_ACL_MAX_PATTERNS      16u /* key patterns; channel patterns too */
#define KV_ACL_MAX_PATTERN_BYTES 256u
#define KV_ACL_MAX_RULES         64u
#define KV_ACL_MAX_RULE_BYTES    64u /* "+config|get" */
#define KV_ACL_HASH_BYTES        32u
#define KV_ACL_RECORD_VERSION    1u
/* The longest description kv_acl_describe writes (ACL LIST's line without "user NAME "). */
#define KV_ACL_DESCRIBE_MAX                                                                        \
    (64u + KV_ACL_MAX_PASSWORDS * 66u +                                                            \
     2u * KV_ACL_MAX_PATTERNS * (KV_ACL_MAX_PATTERN_BYTES + 5u) +                                  \
     KV_ACL_MAX_RULES * (KV_ACL_MAX_RULE_BYTES + 1u))

enum kv_acl_flag {
    KV_ACL_ON = 1u << 0,
    KV_ACL_NOPASS = 1u << 1,
    KV_ACL_ALLKEYS = 1u << 2,     /* ~* or allkeys */
    KV_ACL_ALLCHANNELS = 1u << 3, /* &* or allchannels */
    KV_ACL_ALLCMDS = 1u << 4,     /* the rules start from +@all, else from -@all */
    KV_ACL_SANITIZE = 1u << 5,    /* sanitize-payload (reset sets it) */
    KV_ACL_SKIP_SANITIZE = 1u << 6,
}; /* record values: never renumber */

enum kv_acl_key_flag { KV_ACL_KEY_READ = 1u << 0, KV_ACL_KEY_WRITE = 1u << 1 };

struct kv_acl_pattern {
    uint8_t flags; /* keys: enum kv_acl_key_flag; channels: 0 */
    uint16_t len;
    uint8_t p[KV_ACL_MAX_PATTERN_BYTES];
};

struct kv_acl_user {
    uint8_t name_len;
    char name[KV_ACL_MAX_NAME_BYTES + 1]; /* NUL-terminated too */
    uint8_t flags;                        /* enum kv_acl_flag */
    uint8_t n_pass, n_keys, n_chan, n_rules;
    uint8_t pass[KV_ACL_MAX_PASSWORDS][KV_ACL_HASH_BYTES];
    struct kv_acl_pattern keys[KV_ACL_MAX_PATTERNS];
    struct kv_acl_pattern chans[KV_ACL_MAX_PATTERNS];
    uint8_t rule_len[KV_ACL_MAX_RULES];
    char rules[KV_ACL_MAX_RULES][KV_ACL_MAX_RULE_BYTES + 1]; /* "+get", "-@write": lower case */
};

/* Redis 7's command categories, in Redis's order (ACL CAT): kv_acl_category_name(i) for
 * i < KV_ACL_CATEGORIES; bit i of a command's category mask. */
#define KV_ACL_CATEGORIES 21u
const char *kv_acl_category_name(uint32_t i);
/* The index of a category name (any case, without '@'), or -1. */
int kv_acl_category(const uint8_t *name, size_t len);

/* A new user as ACL SETUSER creates it: "off resetchannels -@all", no keys, no passwords. */
void kv_acl_user_new(struct kv_acl_user *u, const uint8_t *name, size_t len);
/* The user "default" as it is before any ACL SETUSER default: "on nopass ~* &* +@all". */
void kv_acl_user_default(struct kv_acl_user *u);

/* Whether a user name is acceptable: 1..KV_ACL_MAX_NAME_BYTES bytes, no space or NUL. */
bool kv_acl_name_ok(const uint8_t *name, size_t len);

/* Applies one rule (untrusted bytes) to u, as Redis's ACLSetUser. RK_OK, or RK_EINVAL with
 * Redis's reason in why[0..cap) ("Syntax error", "Unknown command or category name in ACL", ...)
 * and u unchanged. ">pass" and "<pass" are refused here (the node hashes them first); a command
 * rule is checked for its shape and a category for its name, not a command for existence (the
 * node does that against its table). */
int kv_acl_rule(struct kv_acl_user *u, const uint8_t *rule, size_t len, char *why, size_t cap);

/* The record of u (layout above) into buf[0..cap): its length, or 0 when cap is too small. */
size_t kv_acl_encode(const struct kv_acl_user *u, uint8_t *buf, size_t cap);
/* Decodes a record (untrusted) of the user named name: RK_OK or RK_ECORRUPT. */
int kv_acl_decode(const uint8_t *name, size_t name_len, const uint8_t *val, size_t len,
                  struct kv_acl_user *u);

/* ACL LIST's description of u without "user NAME ": "on nopass #... ~k* %R~r* resetchannels
 * &ch -@all +get". Written NUL-terminated into out[0..cap) (cap >= KV_ACL_DESCRIBE_MAX never
 * truncates); returns its length. Parts: kv_acl_describe_flags, _keys, _channels, _commands
 * (ACL GETUSER's fields). */
size_t kv_acl_describe(const struct kv_acl_user *u, char *out, size_t cap);
size_t kv_acl_describe_keys(const struct kv_acl_user *u, char *out, size_t cap);
size_t kv_acl_describe_channels(const struct kv_acl_user *u, char *out, size_t cap);
size_t kv_acl_describe_commands(const struct kv_acl_user *u, char *out, size_t cap);

/* Whether a password hash is among u's. */
bool kv_acl_has_hash(const struct kv_acl_user *u, const uint8_t hash[KV_ACL_HASH_BYTES]);

#endif
