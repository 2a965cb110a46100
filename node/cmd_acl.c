/*
 * cmd_acl.c — ACL users on the node: ACL SETUSER / DELUSER / GETUSER / LIST / USERS / WHOAMI /
 * CAT / HELP, AUTH and HELLO AUTH against the users, and the permission check dispatch runs
 * before every command (NOPERM), with Redis 7.0's replies and errors.
 *
 * The users are replicated state (core/kv/acl.h, node/README.md "ACL users"): SETUSER and
 * DELUSER are state-machine ops proposed through Raft like a SET, so they apply on every node;
 * everything else reads the users as this node has applied them. A connection remembers its
 * user's name and looks the user up again whenever the state machine's ACL generation moved
 * (the pointer kv hands out is valid until the next apply that changes users; a snapshot
 * install, which replaces the state machine, moves the generation too: kv_config).
 *
 * requirepass (Redis's rule: it is the default user's password): while no ACL SETUSER default
 * was ever applied, the default user is "on ~* &* +@all" with requirepass's hash, or nopass
 * without one; the first ACL SETUSER default starts from that same user (the node prepends
 * "resetpass #<hash>" to its rules), and from then on the replicated user is the one.
 */
#define _GNU_SOURCE
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "acl.h"
#include "commands.h"
#include "server.h"

/* The requirepass default user (see the top); built once. */
static struct kv_acl_user rp_default;
static bool rp_built;

static void sha256_hex(const uint8_t *p, size_t len, char out[2 * KV_ACL_HASH_BYTES + 2])
{
    uint8_t h[KV_ACL_HASH_BYTES];
    SHA256(p, len, h);
    for (uint32_t i = 0; i < KV_ACL_HASH_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* The user named name as this node enforces it, or NULL. Borrowed until the next apply. */
static const struct kv_acl_user *lookup(struct node *n, const uint8_t *name, size_t len)
{
    const struct kv *kv = server_kv(n);
    bool is_default = len == 7 && memcmp(name, "default", 7) == 0;
    if (is_default && n->opt.requirepass[0] != 0 && !kv_acl_default_set(kv)) {
        if (!rp_built) {
            kv_acl_user_default(&rp_default);
            rp_default.flags &= (uint8_t)~KV_ACL_NOPASS;
            SHA256((const uint8_t *)n->opt.requirepass, strlen(n->opt.requirepass),
                   rp_default.pass[0]);
            rp_default.n_pass = 1;
            rp_built = true;
        }
        return &rp_default;
    }
    return kv_acl_user(kv, name, len);
}

static const struct kv_acl_user *default_user(struct node *n)
{
    return lookup(n, (const uint8_t *)"default", 7);
}

/* Redis's authenticated-at-connect rule: the default user is on and nopass. */
static bool default_open(struct node *n)
{
    const struct kv_acl_user *d = default_user(n);
    return (d->flags & KV_ACL_ON) && (d->flags & KV_ACL_NOPASS);
}

static void set_user(struct client *c, const uint8_t *name, size_t len)
{
    memcpy(c->acl_user, name, len);
    c->acl_user[len] = 0;
    c->acl_gen = 0; /* looked up again at the next command */
}

void acl_client_reset(struct node *n, struct client *c)
{
    set_user(c, (const uint8_t *)"default", 7);
    c->authed = default_open(n);
    c->acl_init = true;
}

/* Redis's ACLCheckUserCredentials: the user exists, is on, and nopass or the password's hash
 * is one of its own. */
static bool credentials_ok(struct node *n, const struct resp_arg *user, const struct resp_arg *pass)
{
    const struct kv_acl_user *u = lookup(n, user->ptr, user->len);
    if (u == NULL || !(u->flags & KV_ACL_ON))
        return false;
    if (u->flags & KV_ACL_NOPASS)
        return true;
    uint8_t h[KV_ACL_HASH_BYTES];
    SHA256(pass->ptr, pass->len, h);
    return kv_acl_has_hash(u, h);
}

bool acl_authenticate(struct node *n, struct client *c, const struct resp_arg *user,
                      const struct resp_arg *pass)
{
    if (!credentials_ok(n, user, pass))
        return false;
    set_user(c, user->ptr, user->len);
    c->authed = true;
    return true;
}

bool acl_user_exists(struct node *n, const struct resp_arg *name)
{
    return lookup(n, name->ptr, (size_t)name->len) != NULL;
}

bool acl_client_is(const struct client *c, const struct resp_arg *name)
{
    const char *u = c->acl_user[0] ? c->acl_user : "default";
    return strlen(u) == name->len && memcmp(u, name->ptr, name->len) == 0;
}

bool acl_default_nopass(struct node *n)
{
    return (default_user(n)->flags & KV_ACL_NOPASS) != 0;
}

/* The connection's user, refreshed when the users changed; NULL when it was deleted. */
static const struct kv_acl_user *client_user(struct node *n, struct client *c)
{
    uint64_t gen = kv_acl_generation(server_kv(n)) + 1;
    if (c->acl_gen != gen || c->acl_u == NULL) {
        c->acl_u = lookup(n, (const uint8_t *)c->acl_user, strlen(c->acl_user));
        c->acl_gen = gen;
    }
    return c->acl_u;
}

static bool key_ok(const struct kv_acl_user *u, const struct resp_arg *k, uint8_t need)
{
    return acl_key_allowed(u, k->ptr, (size_t)k->len, need);
}

/* SET's variable key flags: whether a GET option is among its arguments. */
static bool set_has_get(const struct resp_arg *a, uint32_t argc)
{
    for (uint32_t i = 3; i < argc; i++)
        if (arg_is(&a[i], "GET"))
            return true;
    return false;
}

/* The keys of a request against u: the rows' key specs, EVAL's numkeys. */
/* The index of the first argument that is a key u may not touch, or 0: all may be. */
static uint32_t key_denied(const struct kv_acl_user *u, const struct cmd *cmd,
                           const struct resp_arg *a, uint32_t argc)
{
    if (u->flags & KV_ACL_ALLKEYS)
        return 0;
    if (cmd->proc == cmd_eval || cmd->proc == cmd_evalsha) {
        /* Redis's EVAL key spec: "RW access update", keynum at 2 */
        int64_t nk = 0;
        if (argc < 3 || !arg_int64(&a[2], &nk) || nk < 0 || nk > (int64_t)argc - 3)
            return 0; /* the handler refuses it */
        for (uint32_t i = 0; i < (uint32_t)nk; i++)
            if (!key_ok(u, &a[3 + i], KV_ACL_KEY_READ | KV_ACL_KEY_WRITE))
                return 3 + i;
        return 0;
    }
    for (int s = 0; s < cmd->n_specs; s++) {
        const struct cmd_keyspec *ks = &cmd->specs[s];
        uint8_t need = acl_key_need(ks->flags);
        if (cmd->proc == cmd_set && !set_has_get(a, argc))
            need = KV_ACL_KEY_WRITE; /* Redis's setGetKeys: "OW update" without GET */
        int last = ks->lastkey < 0 ? (int)argc + ks->lastkey : ks->index + ks->lastkey;
        for (int i = ks->index; i <= last && i < (int)argc; i += ks->keystep)
            if (!key_ok(u, &a[i], need))
                return (uint32_t)i;
    }
    return 0;
}

int acl_check(struct node *n, struct client *c, const struct cmd *cmd, const struct resp_arg *a,
              uint32_t argc, char *err, size_t cap)
{
    if (cmd->flags & CMD_NO_AUTH)
        return ACL_CHECK_OK;
    const struct kv_acl_user *u = client_user(n, c);
    if (u == NULL)
        return ACL_CHECK_GONE;
    if ((u->flags & KV_ACL_ALLCMDS) && u->n_rules == 0 && (u->flags & KV_ACL_ALLKEYS))
        return ACL_CHECK_OK; /* the default user's fast path */
    if (!acl_cmd_allowed(u, cmd->name, cmd->acl)) {
        snprintf(err, cap, "NOPERM this user has no permissions to run the '%s' command",
                 cmd->name);
        return ACL_CHECK_DENIED;
    }
    if (key_denied(u, cmd, a, argc) != 0) {
        snprintf(err, cap,
                 "NOPERM this user has no permissions to access one of the keys used as "
                 "arguments");
        return ACL_CHECK_DENIED;
    }
    return ACL_CHECK_OK;
}

bool acl_script_ok(struct node *n, struct client *c, struct item *it, const char *sha,
                   const char *text)
{
    const struct kv_acl_user *u = client_user(n, c);
    if (u == NULL || ((u->flags & KV_ACL_ALLCMDS) && u->n_rules == 0))
        return true;
    /* Every redis.call of the script, in the order of its text (DEVIATIONS: Redis stops at
     * the first call the data leads to that is denied). */
    int line = 1;
    for (const char *p = text; *p != 0; p++) {
        if (*p == '\n')
            line++;
        if (strncmp(p, "redis.call('", 12) != 0)
            continue;
        char name[16];
        size_t k = 0;
        for (const char *q = p + 12; *q != '\'' && k + 1 < sizeof(name); q++)
            name[k++] = *q;
        name[k] = 0;
        const struct cmd *cmd = cmd_lookup((const uint8_t *)name, k);
        if (cmd != NULL && !acl_cmd_allowed(u, cmd->name, cmd->acl)) {
            add_errorf(it,
                       "ERR The user executing the script can't run this command or subcommand "
                       "script: %s, on @user_script:%d.",
                       sha, line);
            return false;
        }
    }
    return true;
}

/* ---- ACL SETUSER -------------------------------------------------------------------------- */

/* Whether a command rule names a command of the table ("+get", "-config|get"); categories are
 * core's to check. */
static bool command_known(const uint8_t *r, size_t len)
{
    if (len < 2 || r[1] == '@')
        return true;
    const uint8_t *name = r + 1;
    size_t nl = len - 1;
    const uint8_t *bar = memchr(name, '|', nl);
    if (bar == NULL)
        return cmd_lookup(name, nl) != NULL;
    const struct cmd *parent = cmd_lookup(name, (uint64_t)(bar - name));
    if (parent == NULL || parent->subs == NULL)
        return false; /* Redis 7.0's first-argument rules ("+select|0"): DEVIATIONS */
    size_t pl = strlen(parent->name);
    for (const struct cmd *s = parent->subs; s->name != NULL; s++)
        if (strlen(s->name) == nl && strncasecmp(s->name + pl, (const char *)bar, nl - pl) == 0)
            return true;
    return false;
}

/* SETUSER's arguments as the state machine takes them: the name, then each rule with ">pass"
 * and "<pass" hashed into "#hex" and "!hex". Checked against the user as applied here first,
 * for Redis's error at once (the state machine checks again: another node's change may come
 * first). The hashed texts live in bufs. */
#define HEX_RULE_BYTES (1 + 2 * KV_ACL_HASH_BYTES + 1)
static bool setuser_args(struct node *n, struct item *it, const struct resp_arg *a, uint32_t argc,
                         char (*bufs)[HEX_RULE_BYTES], uint32_t *nargs)
{
    const struct resp_arg *name = &a[2];
    if (!kv_acl_name_ok(name->ptr, name->len)) {
        add_error(it, name->len > KV_ACL_MAX_NAME_BYTES && memchr(name->ptr, ' ', name->len) == NULL
                          ? "ERR raftkv takes user names of at most 128 bytes"
                          : "ERR Usernames can't contain spaces or null characters");
        return false;
    }
    static struct kv_acl_user u; /* large: not on the stack */
    const struct kv_acl_user *cur = lookup(n, name->ptr, name->len);
    if (cur != NULL)
        memcpy(&u, cur, sizeof(u));
    else
        kv_acl_user_new(&u, name->ptr, name->len);
    uint32_t k = 0;
    n->kargs[k++] = (struct kv_arg){.p = name->ptr, .len = (uint32_t)name->len};
    bool rp = cur == &rp_default;
    if (rp) {
        /* the requirepass user as it is enforced now becomes the record's start */
        snprintf(bufs[argc], HEX_RULE_BYTES, "#");
        for (uint32_t i = 0; i < KV_ACL_HASH_BYTES; i++)
            snprintf(bufs[argc] + 1 + 2 * i, 3, "%02x", rp_default.pass[0][i]);
        n->kargs[k++] = (struct kv_arg){.p = (const uint8_t *)"resetpass", .len = 9};
        n->kargs[k++] =
            (struct kv_arg){.p = (const uint8_t *)bufs[argc], .len = HEX_RULE_BYTES - 1};
    }
    for (uint32_t i = 3; i < argc; i++) {
        const uint8_t *r = a[i].ptr;
        size_t len = (size_t)a[i].len;
        if (len > 0 && (r[0] == '>' || r[0] == '<')) {
            bufs[i][0] = r[0] == '>' ? '#' : '!';
            sha256_hex(r + 1, len - 1, bufs[i] + 1);
            r = (const uint8_t *)bufs[i];
            len = HEX_RULE_BYTES - 1;
        }
        char why[256] = "";
        int rc = RK_OK;
        if (len > 1 && (r[0] == '+' || r[0] == '-') && !command_known(r, len)) {
            snprintf(why, sizeof(why), "Unknown command or category name in ACL");
            rc = RK_EINVAL;
        }
        if (rc == RK_OK)
            rc = kv_acl_rule(&u, r, len, why, sizeof(why));
        if (rc != RK_OK) {
            char shown[220];
            int sl = a[i].len > 200 ? 200 : (int)a[i].len;
            snprintf(shown, sizeof(shown), "%.*s", sl, (const char *)a[i].ptr);
            add_errorf(it, "ERR Error in ACL SETUSER modifier '%s': %s", shown, why);
            return false;
        }
        n->kargs[k++] = (struct kv_arg){.p = r, .len = (uint32_t)len};
    }
    *nargs = k;
    return true;
}

static void acl_setuser(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                        uint32_t argc)
{
    if (argc + 2 > n->opt.max_args) {
        add_error(it, "ERR too many ACL SETUSER rules");
        return;
    }
    char(*bufs)[HEX_RULE_BYTES] = calloc(argc + 1, HEX_RULE_BYTES);
    if (bufs == NULL) {
        add_error(it, "ERR out of memory");
        return;
    }
    uint32_t nargs = 0;
    if (setuser_args(n, it, a, argc, bufs, &nargs)) {
        struct kv_op2 op = {.code = KV_C_ACL_SETUSER, .argc = nargs, .argv = n->kargs};
        data_submit(n, c, it, &op);
    }
    free(bufs);
}

/* ---- the other subcommands --------------------------------------------------------------- */

static void acl_deluser(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                        uint32_t argc)
{
    for (uint32_t i = 2; i < argc; i++)
        n->kargs[i - 2] =
            (struct kv_arg){.p = a[i].len ? a[i].ptr : NULL, .len = (uint32_t)a[i].len};
    struct kv_op2 op = {.code = KV_C_ACL_DELUSER, .argc = argc - 2, .argv = n->kargs};
    data_submit(n, c, it, &op);
}

/* ---- descriptions ------------------------------------------------------------------------ */

struct two_users {
    const struct kv_acl_user *a, *b;
};

static bool row_same(void *ctx, const struct cmd *row)
{
    const struct two_users *t = ctx;
    return acl_cmd_allowed(t->a, row->name, row->acl) == acl_cmd_allowed(t->b, row->name, row->acl);
}

/* u as Redis 7.0 describes it: Redis rebuilds the rules from the bitmap of what the user may
 * run, so a command rule that changes nothing ("+ping" after "+@all", "+get" after "+@read")
 * does not show. The same here, over raftkv's table; category rules always show (D16). */
static const struct kv_acl_user *compact(const struct kv_acl_user *u)
{
    static struct kv_acl_user out, trial;
    memcpy(&out, u, sizeof(out));
    for (uint32_t i = out.n_rules; i-- > 0;) {
        if (out.rules[i][1] == '@')
            continue;
        memcpy(&trial, &out, sizeof(trial));
        for (uint32_t j = i; j + 1 < trial.n_rules; j++) {
            memcpy(trial.rules[j], trial.rules[j + 1], sizeof(trial.rules[j]));
            trial.rule_len[j] = trial.rule_len[j + 1];
        }
        trial.n_rules--;
        struct two_users t = {&out, &trial};
        if (cmd_rows_all(row_same, &t))
            memcpy(&out, &trial, sizeof(out));
    }
    return &out;
}

static void add_hex(struct item *it, const uint8_t h[KV_ACL_HASH_BYTES])
{
    char hex[2 * KV_ACL_HASH_BYTES + 1];
    for (uint32_t i = 0; i < KV_ACL_HASH_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    add_bulk_str(it, hex);
}

static void acl_getuser(struct node *n, struct item *it, const struct resp_arg *name)
{
    const struct kv_acl_user *u = lookup(n, name->ptr, name->len);
    if (u == NULL) {
        add_null(it);
        return;
    }
    static char text[KV_ACL_DESCRIBE_MAX];
    u = compact(u);
    add_map(it, 6);
    add_bulk_str(it, "flags");
    const char *flags[4];
    int nf = 0;
    flags[nf++] = (u->flags & KV_ACL_ON) ? "on" : "off";
    if (u->flags & KV_ACL_NOPASS)
        flags[nf++] = "nopass";
    if (u->flags & KV_ACL_SKIP_SANITIZE)
        flags[nf++] = "skip-sanitize-payload";
    if (u->flags & KV_ACL_SANITIZE)
        flags[nf++] = "sanitize-payload";
    add_set(it, nf);
    for (int i = 0; i < nf; i++)
        add_bulk_str(it, flags[i]);
    add_bulk_str(it, "passwords");
    add_array(it, u->n_pass);
    for (uint32_t i = 0; i < u->n_pass; i++)
        add_hex(it, u->pass[i]);
    add_bulk_str(it, "commands");
    kv_acl_describe_commands(u, text, sizeof(text));
    add_bulk_str(it, text);
    add_bulk_str(it, "keys");
    kv_acl_describe_keys(u, text, sizeof(text));
    add_bulk_str(it, text);
    add_bulk_str(it, "channels");
    kv_acl_describe_channels(u, text, sizeof(text));
    add_bulk_str(it, text);
    add_bulk_str(it, "selectors");
    add_array(it, 0);
}

static void acl_list(struct node *n, struct item *it, bool names_only)
{
    const struct kv *kv = server_kv(n);
    uint32_t nu = kv_acl_count(kv);
    add_array(it, nu);
    static char text[KV_ACL_DESCRIBE_MAX + KV_ACL_MAX_NAME_BYTES + 8];
    for (uint32_t i = 0; i < nu; i++) {
        const struct kv_acl_user *u = kv_acl_at(kv, i);
        if (names_only) {
            add_bulk(it, u->name, u->name_len);
            continue;
        }
        u = compact(lookup(n, (const uint8_t *)u->name, u->name_len)); /* requirepass's default */
        int k = snprintf(text, sizeof(text), "user %s ", u->name);
        kv_acl_describe(u, text + k, sizeof(text) - (size_t)k);
        add_bulk_str(it, text);
    }
}

/* ACL CAT [category]: the categories, or the rows of the table in one. */
static void acl_cat(struct item *it, const struct resp_arg *a, uint32_t argc)
{
    if (argc == 2) {
        add_array(it, KV_ACL_CATEGORIES);
        for (uint32_t i = 0; i < KV_ACL_CATEGORIES; i++)
            add_bulk_str(it, kv_acl_category_name(i));
        return;
    }
    int cat = kv_acl_category(a[2].ptr, a[2].len);
    if (cat < 0) {
        char q[132];
        arg_quote(q, sizeof(q), &a[2]);
        add_errorf(it, "ERR Unknown category '%s'", q);
        return;
    }
    cmd_list_category(it, 1u << cat);
}

/* ACL DRYRUN user command [arg...]: Redis 7.0's checks and answers, without running it. */
static void acl_dryrun(struct node *n, struct item *it, const struct resp_arg *a, uint32_t argc)
{
    const struct kv_acl_user *u = lookup(n, a[2].ptr, a[2].len);
    int nl = a[2].len > 128 ? 128 : (int)a[2].len;
    if (u == NULL) {
        add_errorf(it, "ERR User '%.*s' not found", nl, (const char *)a[2].ptr);
        return;
    }
    const struct cmd *cmd = cmd_lookup_request(a + 3, argc - 3);
    if (cmd == NULL) {
        int cl = a[3].len > 128 ? 128 : (int)a[3].len;
        add_errorf(it, "ERR Command '%.*s' not found", cl, (const char *)a[3].ptr);
        return;
    }
    if (!cmd_arity_ok(cmd, argc - 3)) {
        cmd_arity_error(it, cmd);
        return;
    }
    char text[320];
    if (!(cmd->flags & CMD_NO_AUTH) && !acl_cmd_allowed(u, cmd->name, cmd->acl)) {
        snprintf(text, sizeof(text), "This user has no permissions to run the '%s' command",
                 cmd->name);
        add_bulk_str(it, text);
        return;
    }
    uint32_t k = key_denied(u, cmd, a + 3, argc - 3);
    if (k != 0) {
        const struct resp_arg *key = &a[3 + k];
        int kl = key->len > 256 ? 256 : (int)key->len;
        snprintf(text, sizeof(text), "This user has no permissions to access the '%.*s' key", kl,
                 (const char *)key->ptr);
        add_bulk_str(it, text);
        return;
    }
    add_simple(it, "OK");
}

/* ACL GENPASS [bits]: bits (default 256) of the kernel's randomness, as hex. */
static void acl_genpass(struct item *it, const struct resp_arg *a, uint32_t argc)
{
    int64_t bits = 256;
    if (argc == 3 && !arg_int64(&a[2], &bits)) {
        add_error(it, "ERR value is not an integer or out of range");
        return;
    }
    if (bits <= 0 || bits > 4096) {
        add_error(it, "ERR ACL GENPASS argument must be the number of bits for the output "
                      "password, a positive number up to 4096");
        return;
    }
    uint8_t raw[512];
    size_t chars = (size_t)(bits + 3) / 4, bytes = (chars + 1) / 2;
    if (getrandom(raw, bytes, 0) != (ssize_t)bytes) {
        add_error(it, "ERR no randomness from the kernel");
        return;
    }
    char hex[1025];
    for (size_t i = 0; i < bytes; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[chars] = 0;
    add_bulk_str(it, hex);
}

static const char *const acl_help[] = {
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
};

void cmd_acl(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
             uint32_t argc)
{
    if (arg_is(&a[1], "SETUSER")) {
        acl_setuser(n, c, it, a, argc);
    } else if (arg_is(&a[1], "DELUSER")) {
        acl_deluser(n, c, it, a, argc);
    } else if (arg_is(&a[1], "GETUSER")) {
        acl_getuser(n, it, &a[2]);
    } else if (arg_is(&a[1], "LIST")) {
        acl_list(n, it, false);
    } else if (arg_is(&a[1], "USERS")) {
        acl_list(n, it, true);
    } else if (arg_is(&a[1], "WHOAMI")) {
        add_bulk_str(it, c->acl_user);
    } else if ((arg_is(&a[1], "CAT") || arg_is(&a[1], "GENPASS")) && argc > 3) {
        /* Redis's aclCommand falls through to this for CAT and GENPASS */
        char sub[132];
        int sl = a[1].len > 128 ? 128 : (int)a[1].len;
        snprintf(sub, sizeof(sub), "%.*s", sl, (const char *)a[1].ptr);
        add_errorf(it, "ERR unknown subcommand or wrong number of arguments for '%s'. Try ACL HELP.",
                   sub);
    } else if (arg_is(&a[1], "CAT")) {
        acl_cat(it, a, argc);
    } else if (arg_is(&a[1], "DRYRUN")) {
        acl_dryrun(n, it, a, argc);
    } else if (arg_is(&a[1], "GENPASS")) {
        acl_genpass(it, a, argc);
    } else {
        size_t nh = sizeof(acl_help) / sizeof(acl_help[0]);
        add_array(it, (int64_t)nh);
        for (size_t i = 0; i < nh; i++)
            add_simple(it, acl_help[i]);
    }
}

void acl_close_deleted(struct node *n)
{
    /* Once per change of the users: a connection whose user is gone is closed (its replies so
     * far are sent first), as Redis frees the clients of a deleted user. */
    static uint64_t seen;
    uint64_t gen = kv_acl_generation(server_kv(n)) + 1;
    if (gen == seen)
        return;
    seen = gen;
    for (struct client *c = n->clients; c != NULL; c = c->next) {
        if (c->closed || c->want_close || !c->acl_init || client_user(n, c) != NULL)
            continue;
        c->no_input = true;
        c->want_close = true;
    }
}
