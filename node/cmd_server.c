/*
 * cmd_server.c — the connection and server commands (Redis's server.c, networking.c, acl.c):
 * PING, ECHO, SELECT, QUIT, HELLO, AUTH, RESET, CLIENT ..., INFO, CONFIG GET, MEMORY USAGE.
 * None of them touches the replicated state, except that MEMORY USAGE and INFO keyspace read
 * what this node has applied. Replies and errors follow Redis 7.0 word for word; where raftkv
 * differs on purpose, node/DEVIATIONS.md says so.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bitcask/bitcask.h"
#include "commands.h"
#include "glob.h"
#include "server.h"
#include "tls.h"

void cmd_ping(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)n;
    (void)c;
    if (argc == 1)
        add_simple(it, "PONG");
    else if (argc == 2)
        add_bulk(it, a[1].ptr, a[1].len);
    else
        cmd_arity_error(it, cmd_lookup((const uint8_t *)"ping", 4));
}

void cmd_echo(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)n;
    (void)c;
    (void)argc;
    add_bulk(it, a[1].ptr, a[1].len);
}

/* TIME: this node's clock, [unix seconds, microseconds], as Redis. Not the state machine's
 * clock (kv.h TIME): each node answers with its own, as each Redis server does. */
void cmd_time(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)n;
    (void)c;
    (void)a;
    (void)argc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char s[24], us[24];
    int sl = snprintf(s, sizeof(s), "%lld", (long long)ts.tv_sec);
    int ul = snprintf(us, sizeof(us), "%ld", ts.tv_nsec / 1000);
    add_array(it, 2);
    add_bulk(it, s, (uint64_t)sl);
    add_bulk(it, us, (uint64_t)ul);
}

/* SELECT index: 0 .. databases - 1 (a setting, 16 by default as Redis). Redis's errors: not an
 * integer, outside int, outside the databases. Between MULTI and EXEC it changes the database
 * of the commands queued after it (and the connection's at EXEC). */
void cmd_select(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    (void)argc;
    int64_t id = 0;
    if (!arg_int_reply(it, &a[1], NULL, &id))
        return;
    if (id < 0 || id >= (int64_t)n->opt.databases) {
        add_error(it, "ERR DB index is out of range");
        return;
    }
    if (c->in_multi)
        c->multi_db = (uint8_t)id;
    else
        c->db = (uint8_t)id;
    add_simple(it, "OK");
}

void cmd_quit(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)n;
    (void)a;
    (void)argc;
    add_simple(it, "OK");
    it->close_after = true;
    c->no_input = true;
}

/* ---- AUTH, HELLO, RESET ------------------------------------------------------------------ */

static const char wrongpass[] = "WRONGPASS invalid username-password pair or user is disabled.";

void cmd_auth(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    static const struct resp_arg def = {(const uint8_t *)"default", 7};
    if (argc > 3) {
        add_error(it, "ERR syntax error");
        return;
    }
    if (argc == 2 && acl_default_nopass(n)) {
        add_error(it, "ERR AUTH <password> called without any password configured for the "
                      "default user. Are you sure your configuration is correct?");
        return;
    }
    const struct resp_arg *user = argc == 2 ? &def : &a[1], *pass = argc == 2 ? &a[1] : &a[2];
    if (!acl_authenticate(n, c, user, pass)) {
        add_error(it, wrongpass);
        n->stats.total_errors++;
        return;
    }
    add_simple(it, "OK");
}

/* Redis's validateClientName: printable ASCII without spaces. */
static bool name_valid(const struct resp_arg *a)
{
    for (uint64_t i = 0; i < a->len; i++)
        if (a->ptr[i] < '!' || a->ptr[i] > '~')
            return false;
    return true;
}

static void set_name(struct client *c, const struct resp_arg *a)
{
    size_t len = a->len > CLIENT_NAME_MAX ? CLIENT_NAME_MAX : (size_t)a->len;
    memcpy(c->name, a->ptr, len);
    c->name[len] = 0;
}

static const char bad_name[] =
    "ERR Client names cannot contain spaces, newlines or special characters.";

/* HELLO [protover [AUTH user pass] [SETNAME name]]: Redis 7.0's helloCommand, step by step. */
void cmd_hello(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
               uint32_t argc)
{
    int64_t ver = 0;
    uint32_t next = 1;
    if (argc >= 2) {
        if (!arg_int64(&a[next++], &ver)) {
            add_error(it, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            add_error(it, "NOPROTO unsupported protocol version");
            return;
        }
    }
    const struct resp_arg *user = NULL, *pass = NULL, *name = NULL;
    for (uint32_t j = next; j < argc; j++) {
        uint32_t more = argc - 1 - j;
        if (arg_is(&a[j], "AUTH") && more >= 2) {
            user = &a[j + 1];
            pass = &a[j + 2];
            j += 2;
        } else if (arg_is(&a[j], "SETNAME") && more >= 1) {
            name = &a[j + 1];
            if (!name_valid(name)) {
                add_error(it, bad_name);
                return;
            }
            j++;
        } else {
            char opt[132];
            arg_quote(opt, sizeof(opt), &a[j]);
            add_errorf(it, "ERR Syntax error in HELLO option '%s'", opt);
            return;
        }
    }
    if (user != NULL) {
        if (!acl_authenticate(n, c, user, pass)) {
            add_error(it, wrongpass);
            return;
        }
    }
    if (!c->authed) {
        add_error(it, "NOAUTH HELLO must be called with the client already authenticated, "
                      "otherwise the HELLO AUTH <user> <pass> option can be used to "
                      "authenticate the client and select the RESP protocol version at the same "
                      "time");
        return;
    }
    if (name != NULL)
        set_name(c, name);
    if (ver != 0) {
        c->resp = (uint8_t)ver;
        it->resp = (uint8_t)ver; /* the reply itself is in the new protocol, as Redis */
    }
    add_map(it, 7);
    add_bulk_str(it, "server");
    add_bulk_str(it, "redis");
    add_bulk_str(it, "version");
    add_bulk_str(it, NODE_REDIS_VERSION);
    add_bulk_str(it, "proto");
    add_integer(it, c->resp);
    add_bulk_str(it, "id");
    add_integer(it, (int64_t)c->id);
    add_bulk_str(it, "mode");
    add_bulk_str(it, "standalone");
    add_bulk_str(it, "role");
    add_bulk_str(it, "master"); /* every node takes writes (a follower forwards them) */
    add_bulk_str(it, "modules");
    add_array(it, 0);
}

/* RESET: the connection as it was when it connected (Redis's clearClientConnectionState). */
void cmd_reset(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
               uint32_t argc)
{
    (void)a;
    (void)argc;
    c->resp = 2;
    c->name[0] = 0;
    c->no_evict = c->no_touch = false;
    c->db = 0;
    multi_reset(c);
    acl_client_reset(n, c);
    add_simple(it, "RESET");
}

/* ---- CLIENT ------------------------------------------------------------------------------ */

static int client_info_text(const struct node *n, const struct client *c, char *out, size_t cap)
{
    (void)n;
    uint64_t now = node_now_ms();
    char flags[8] = "N";
    if (c->in_multi)
        flags[0] = 'x';
    return snprintf(out, cap,
                    "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRIu64 " idle=%" PRIu64
                    " flags=%s db=%u sub=0 psub=0 ssub=0 multi=%d qbuf=%zu qbuf-free=%zu "
                    "argv-mem=0 multi-mem=0 rbs=%zu rbp=0 obl=0 oll=%u omem=%zu tot-mem=%zu "
                    "events=r cmd=%s user=%s redir=-1 resp=%u lib-name=%s lib-ver=%s",
                    c->id, c->addr, c->laddr, c->fd, c->name, (now - c->created_ms) / 1000,
                    (now - c->last_ms) / 1000, flags, c->db, c->in_multi ? (int)c->multi_n : -1,
                    buf_unread(&c->in), c->in.cap - c->in.len, c->in.cap, c->n_items,
                    buf_unread(&c->out), c->in.cap + c->out.cap, c->last_cmd ? c->last_cmd : "NULL",
                    c->acl_user[0] ? c->acl_user : "default", c->resp, c->lib_name, c->lib_ver);
}

static const char *const client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "HELP",
    "    Prints this help.",
};

static bool client_type_known(const struct resp_arg *t)
{
    return arg_is(t, "normal") || arg_is(t, "master") || arg_is(t, "replica") ||
           arg_is(t, "slave") || arg_is(t, "pubsub");
}

static void client_list(struct node *n, struct client *self, struct item *it,
                        const struct resp_arg *a, uint32_t argc)
{
    bool only_normal_ok = true; /* every raftkv client is "normal" */
    uint64_t ids[64];
    size_t n_ids = 0;
    if (argc == 4 && arg_is(&a[2], "TYPE")) {
        if (!client_type_known(&a[3])) {
            char t[132];
            arg_quote(t, sizeof(t), &a[3]);
            add_errorf(it, "ERR Unknown client type '%s'", t);
            return;
        }
        only_normal_ok = arg_is(&a[3], "normal");
    } else if (argc > 3 && arg_is(&a[2], "ID")) {
        for (uint32_t j = 3; j < argc && n_ids < 64; j++) {
            int64_t id = 0;
            if (!arg_int64(&a[j], &id) || id <= 0) {
                add_error(it, "ERR Invalid client ID");
                return;
            }
            ids[n_ids++] = (uint64_t)id;
        }
    } else if (argc != 2) {
        add_error(it, "ERR syntax error");
        return;
    }
    struct buf text = {0};
    for (struct client *c = n->clients; c != NULL && only_normal_ok; c = c->next) {
        if (c->closed)
            continue;
        bool want = n_ids == 0;
        for (size_t i = 0; i < n_ids; i++)
            want |= ids[i] == c->id;
        if (!want)
            continue;
        char line[1024];
        int k = client_info_text(n, c, line, sizeof(line) - 1);
        if (k < 0)
            continue;
        if (k > (int)sizeof(line) - 2)
            k = (int)sizeof(line) - 2;
        line[k++] = '\n';
        buf_append(&text, line, (size_t)k);
    }
    (void)self;
    add_verbatim(it, "txt", text.p ? text.p : (const uint8_t *)"", text.len);
    buf_free(&text);
}

/* CLIENT KILL addr | CLIENT KILL [ID id] [ADDR a] [LADDR a] [TYPE t] [USER u] [SKIPME yes|no] */
static void client_kill(struct node *n, struct client *self, struct item *it,
                        const struct resp_arg *a, uint32_t argc)
{
    const struct resp_arg *addr = NULL, *laddr = NULL, *user = NULL;
    uint64_t id = 0;
    bool skipme = true, by_type = false, type_normal = true, old_style = argc == 3;
    if (old_style) {
        addr = &a[2];
        skipme = false;
    } else {
        for (uint32_t j = 2; j < argc; j += 2) {
            if (j + 1 >= argc) {
                add_error(it, "ERR syntax error");
                return;
            }
            const struct resp_arg *v = &a[j + 1];
            if (arg_is(&a[j], "ID")) {
                int64_t x = 0;
                if (!arg_int64(v, &x) || x <= 0) {
                    add_error(it, "ERR client-id should be greater than 0");
                    return;
                }
                id = (uint64_t)x;
            } else if (arg_is(&a[j], "TYPE")) {
                if (!client_type_known(v)) {
                    char t[132];
                    arg_quote(t, sizeof(t), v);
                    add_errorf(it, "ERR Unknown client type '%s'", t);
                    return;
                }
                by_type = true;
                type_normal = arg_is(v, "normal");
            } else if (arg_is(&a[j], "ADDR")) {
                addr = v;
            } else if (arg_is(&a[j], "LADDR")) {
                laddr = v;
            } else if (arg_is(&a[j], "USER")) {
                user = v;
            } else if (arg_is(&a[j], "SKIPME")) {
                if (arg_is(v, "yes"))
                    skipme = true;
                else if (arg_is(v, "no"))
                    skipme = false;
                else {
                    add_error(it, "ERR syntax error");
                    return;
                }
            } else {
                add_error(it, "ERR syntax error");
                return;
            }
        }
    }
    if (user != NULL && !acl_user_exists(n, user)) {
        char u[132];
        arg_quote(u, sizeof(u), user);
        add_errorf(it, "ERR No such user '%s'", u);
        return;
    }
    int64_t killed = 0;
    for (struct client *c = n->clients; c != NULL; c = c->next) {
        if (c->closed || c->want_close)
            continue;
        if ((id != 0 && c->id != id) || (by_type && !type_normal) ||
            (addr != NULL && !arg_is(addr, c->addr)) ||
            (laddr != NULL && !arg_is(laddr, c->laddr)) || (skipme && c == self) ||
            (user != NULL && !acl_client_is(c, user)))
            continue;
        /* Closed once its replies so far are out; nothing more of its input runs. */
        c->no_input = true;
        c->want_close = c != self;
        if (c == self)
            it->close_after = true;
        killed++;
    }
    if (old_style) {
        if (killed == 0)
            add_error(it, "ERR No such client");
        else
            add_simple(it, "OK");
    } else {
        add_integer(it, killed);
    }
}

void cmd_client(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    const struct resp_arg *sub = &a[1];
    if (arg_is(sub, "ID")) {
        add_integer(it, (int64_t)c->id);
    } else if (arg_is(sub, "GETNAME")) {
        if (c->name[0])
            add_bulk_str(it, c->name);
        else
            add_null(it);
    } else if (arg_is(sub, "SETNAME")) {
        if (!name_valid(&a[2])) {
            add_error(it, bad_name);
            return;
        }
        set_name(c, &a[2]);
        add_simple(it, "OK");
    } else if (arg_is(sub, "INFO")) {
        char line[1024];
        int k = client_info_text(n, c, line, sizeof(line) - 1);
        if (k > (int)sizeof(line) - 2)
            k = (int)sizeof(line) - 2;
        line[k++] = '\n';
        add_verbatim(it, "txt", line, (uint64_t)k);
    } else if (arg_is(sub, "LIST")) {
        client_list(n, c, it, a, argc);
    } else if (arg_is(sub, "KILL")) {
        client_kill(n, c, it, a, argc);
    } else if (arg_is(sub, "NO-EVICT") || arg_is(sub, "NO-TOUCH")) {
        bool on = arg_is(&a[2], "on");
        if (!on && !arg_is(&a[2], "off")) {
            add_error(it, "ERR syntax error");
            return;
        }
        if (arg_is(sub, "NO-EVICT"))
            c->no_evict = on;
        else
            c->no_touch = on;
        add_simple(it, "OK");
    } else if (arg_is(sub, "SETINFO")) {
        bool lib_name = arg_is(&a[2], "LIB-NAME"), lib_ver = arg_is(&a[2], "LIB-VER");
        if (!lib_name && !lib_ver) {
            char o[132];
            arg_quote(o, sizeof(o), &a[2]);
            add_errorf(it, "ERR Unrecognized option '%s'", o);
            return;
        }
        if (!name_valid(&a[3])) {
            add_errorf(it, "ERR %s cannot contain spaces, newlines or special characters.",
                       lib_name ? "lib-name" : "lib-ver");
            return;
        }
        char *dst = lib_name ? c->lib_name : c->lib_ver;
        size_t len = a[3].len > CLIENT_NAME_MAX ? CLIENT_NAME_MAX : (size_t)a[3].len;
        memcpy(dst, a[3].ptr, len);
        dst[len] = 0;
        add_simple(it, "OK");
    } else if (arg_is(sub, "HELP")) {
        size_t nh = sizeof(client_help) / sizeof(client_help[0]);
        add_array(it, (int64_t)nh);
        for (size_t i = 0; i < nh; i++)
            add_simple(it, client_help[i]);
    }
}

/* ---- CONFIG ------------------------------------------------------------------------------ */

/* CONFIG GET pattern...: the settings a Redis client may ask for at start-up (redis-benchmark
 * asks for "save" and "appendonly"); CONFIG SET/RESETSTAT/REWRITE are refused. */
void cmd_config_get(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                    uint32_t argc)
{
    (void)c;
    char maxclients[24], databases[24];
    snprintf(maxclients, sizeof(maxclients), "%u", n->opt.max_clients);
    snprintf(databases, sizeof(databases), "%u", n->opt.databases);
    char tls_port[24];
    snprintf(tls_port, sizeof(tls_port), "%u", n->opt.tls_port);
    const char *settings[][2] = {{"save", ""},
                                 {"appendonly", "yes"},
                                 {"appendfsync", "always"},
                                 {"databases", databases},
                                 {"maxclients", maxclients},
                                 {"requirepass", n->opt.requirepass},
                                 /* TLS (node/tls.c) */
                                 {"tls-port", tls_port},
                                 {"tls-cert-file", n->opt.tls_cert_file},
                                 {"tls-key-file", n->opt.tls_key_file},
                                 {"tls-ca-cert-file", n->opt.tls_ca_cert_file},
                                 {"tls-auth-clients", n->opt.tls_auth_clients},
                                 {"tls-protocols", n->opt.tls_protocols},
                                 {"tls-peers", n->opt.tls_peers ? "yes" : "no"},
                                 {"tls-peer-names", n->opt.tls_peer_names}};
    size_t nset = sizeof(settings) / sizeof(settings[0]);
    bool match[sizeof(settings) / sizeof(settings[0])] = {false};
    int64_t k = 0;
    for (size_t i = 0; i < nset; i++) {
        for (uint32_t j = 2; j < argc && !match[i]; j++) {
            uint8_t pat[256];
            size_t pl = 0;
            for (; pl < a[j].len && pl < sizeof(pat); pl++)
                pat[pl] = (uint8_t)tolower(a[j].ptr[pl]);
            match[i] = glob_match(pat, pl, (const uint8_t *)settings[i][0],
                                  strlen(settings[i][0]));
        }
        k += match[i];
    }
    add_map(it, k);
    for (size_t i = 0; i < nset; i++)
        if (match[i]) {
            add_bulk_str(it, settings[i][0]);
            add_bulk_str(it, settings[i][1]);
        }
}

void cmd_config_refused(struct node *n, struct client *c, struct item *it,
                        const struct resp_arg *a, uint32_t argc)
{
    (void)n;
    (void)c;
    (void)argc;
    char word[132];
    arg_quote(word, sizeof(word), &a[1]);
    for (char *p = word; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    add_errorf(it, "ERR CONFIG %s is not supported by raftkv", word);
}

/* CONFIG SET name value [name value ...]: the TLS settings a reload takes (tls-cert-file,
 * tls-key-file, tls-ca-cert-file, tls-auth-clients, tls-protocols), all at once, as Redis 7:
 * the new values are tried together and the certificates reloaded; if they do not load,
 * nothing changes and the error says why. Any other setting is refused (fixed at start). */
void cmd_config_set(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                    uint32_t argc)
{
    (void)c;
    static const struct {
        const char *name;
        size_t off, cap;
    } settable[] = {
#define TLS_SET(name, field)                                                                       \
    {name, offsetof(struct options, field), sizeof(((struct options *)0)->field)}
        TLS_SET("tls-cert-file", tls_cert_file),
        TLS_SET("tls-key-file", tls_key_file),
        TLS_SET("tls-ca-cert-file", tls_ca_cert_file),
        TLS_SET("tls-auth-clients", tls_auth_clients),
        TLS_SET("tls-protocols", tls_protocols),
#undef TLS_SET
    };
    if (argc % 2 != 0) {
        add_error(it, "ERR wrong number of arguments for 'config|set' command");
        return;
    }
    struct options *o = malloc(sizeof(*o));
    if (o == NULL) {
        add_error(it, "ERR out of memory");
        return;
    }
    *o = n->opt;
    for (uint32_t i = 2; i + 1 < argc; i += 2) {
        char name[132];
        arg_quote(name, sizeof(name), &a[i]);
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        size_t k = 0, nk = sizeof(settable) / sizeof(settable[0]);
        while (k < nk && strcmp(settable[k].name, name) != 0)
            k++;
        if (k == nk) {
            add_errorf(it, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", name,
                       "raftkv sets only tls-cert-file, tls-key-file, tls-ca-cert-file, "
                       "tls-auth-clients and tls-protocols at runtime");
            goto out_free;
        }
        if (a[i + 1].len >= settable[k].cap || memchr(a[i + 1].ptr, 0, a[i + 1].len) != NULL) {
            add_errorf(it, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", name,
                       "value too long");
            goto out_free;
        }
        char *field = (char *)o + settable[k].off;
        memcpy(field, a[i + 1].ptr, a[i + 1].len);
        field[a[i + 1].len] = 0;
    }
    if (n->tls == NULL) {
        add_error(it, "ERR CONFIG SET failed - TLS is off on this node (start it with tls-port "
                      "or tls-peers)");
        goto out_free;
    }
    char why[PATH_MAX + 512];
    if (node_tls_reload(n, o, why, sizeof(why)) != 0) {
        node_event("error", "tls_reload", "CONFIG SET: TLS reload failed, the settings stay",
                   "by=config ok=no");
        add_errorf(it, "ERR CONFIG SET failed - Unable to update TLS configuration: %s", why);
        goto out_free;
    }
    n->opt = *o;
    node_event("info", "tls_reload", "TLS certificates reloaded: new connections use them",
               "by=config ok=yes");
    add_simple(it, "OK");
out_free:
    free(o);
}

void cmd_config_help(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                     uint32_t argc)
{
    (void)n;
    (void)c;
    (void)a;
    (void)argc;
    static const char *const help[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    };
    add_array(it, (int64_t)(sizeof(help) / sizeof(help[0])));
    for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++)
        add_simple(it, help[i]);
}

/* ---- MEMORY USAGE ------------------------------------------------------------------------ */

static void done_memory_usage(struct node *n, struct item *it, uint32_t part,
                              const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    /* An estimate as Redis's objectComputeSize gives for a raw string: the value, the key and
     * the allocator's headers; raftkv's own overhead (Bitcask's keydir entry) is similar. */
    if (rp->status != REPLICA_OK)
        add_null(it);
    else
        add_integer(it, (int64_t)rp->val_len + (int64_t)it->a1 + 56);
}

static void done_memory_usage_op(struct node *n, struct item *it, uint32_t part,
                                 const struct replica_reply *rp)
{
    struct kv_res_iter ri;
    struct kv_res_item r;
    kv_res_begin(&ri, rp->val, rp->val_len);
    bool found = kv_res_next(&ri, &r) && r.type == KV_RES_BULK;
    struct replica_reply as = {.status = found ? REPLICA_OK : REPLICA_NOT_FOUND,
                               .val_len = found ? r.len : 0};
    done_memory_usage(n, it, part, &as);
}

/* MEMORY USAGE key [SAMPLES n] */
void cmd_memory_usage(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                      uint32_t argc)
{
    for (uint32_t j = 3; j < argc; j++) {
        int64_t samples = 0;
        if (arg_is(&a[j], "SAMPLES") && j + 1 < argc) {
            if (!arg_int64(&a[j + 1], &samples)) {
                add_error(it, "ERR value is not an integer or out of range");
                return;
            }
            j++;
        } else {
            add_error(it, "ERR syntax error");
            return;
        }
    }
    it->a1 = (int64_t)a[2].len;
    if (c->db != 0) { /* the GET op of the state machine, in the connection's database */
        n->kargs[0] = (struct kv_arg){.p = a[2].len ? a[2].ptr : NULL, .len = (uint32_t)a[2].len};
        struct kv_op2 op = {.code = KV_C_GET, .db = c->db, .argc = 1, .argv = n->kargs};
        data_submit(n, c, it, &op);
        it->on_reply = done_memory_usage_op;
        return;
    }
    it->on_reply = done_memory_usage;
    it->done = false;
    server_request(n, c, it, 0, REPLICA_GET, &a[2], NULL, 0, 0);
}

/* ---- INFO -------------------------------------------------------------------------------- */

enum {
    SEC_SERVER = 1u << 0,
    SEC_CLIENTS = 1u << 1,
    SEC_MEMORY = 1u << 2,
    SEC_PERSISTENCE = 1u << 3,
    SEC_STATS = 1u << 4,
    SEC_REPLICATION = 1u << 5,
    SEC_CPU = 1u << 6,
    SEC_MODULES = 1u << 7,
    SEC_ERRORSTATS = 1u << 8,
    SEC_CLUSTER = 1u << 9,
    SEC_KEYSPACE = 1u << 10,
    SEC_RAFT = 1u << 11,
    SEC_COMMANDSTATS = 1u << 12,
};

static const struct {
    const char *name;
    uint32_t bit;
} info_sections[] = {
    {"server", SEC_SERVER},
    {"clients", SEC_CLIENTS},
    {"memory", SEC_MEMORY},
    {"persistence", SEC_PERSISTENCE},
    {"stats", SEC_STATS},
    {"replication", SEC_REPLICATION},
    {"cpu", SEC_CPU},
    {"modules", SEC_MODULES},
    {"errorstats", SEC_ERRORSTATS},
    {"cluster", SEC_CLUSTER},
    {"keyspace", SEC_KEYSPACE},
    {"raft", SEC_RAFT},
    {"commandstats", SEC_COMMANDSTATS},
};

#define SEC_DEFAULT                                                                                \
    (SEC_SERVER | SEC_CLIENTS | SEC_MEMORY | SEC_PERSISTENCE | SEC_STATS | SEC_REPLICATION |       \
     SEC_CPU | SEC_ERRORSTATS | SEC_CLUSTER | SEC_KEYSPACE | SEC_RAFT)
#define SEC_ALL        (SEC_DEFAULT | SEC_COMMANDSTATS)
#define SEC_EVERYTHING (SEC_ALL | SEC_MODULES)

static void human_bytes(char *out, size_t cap, uint64_t b)
{
    /* Redis's bytesToHuman */
    double d = (double)b;
    if (b < 1024)
        snprintf(out, cap, "%" PRIu64 "B", b);
    else if (b < (1ull << 20))
        snprintf(out, cap, "%.2fK", d / 1024);
    else if (b < (1ull << 30))
        snprintf(out, cap, "%.2fM", d / (1 << 20));
    else
        snprintf(out, cap, "%.2fG", d / (1 << 30));
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

struct text {
    char *p;
    size_t len, cap;
};

static void tx(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (k > 0)
        t->len = t->len + (size_t)k >= t->cap ? t->cap - 1 : t->len + (size_t)k;
}

/* Sections are separated by an empty line, as Redis's genRedisInfoString does. */
static bool section_sep(struct text *t, bool *first)
{
    if (!*first)
        tx(t, "\r\n");
    *first = false;
    return true;
}

/* This node in the latest configuration of its log (issue #17). */
static const char *member_role(struct node *n)
{
    struct raft_conf conf;
    replica_conf(n->rep, &conf, NULL);
    return raft_conf_is_voter(&conf, n->id)     ? "voter"
           : raft_conf_is_learner(&conf, n->id) ? "learner"
                                                : "none";
}

static const char *role_name(int role)
{
    return role == RAFT_LEADER ? "leader" : role == RAFT_CANDIDATE ? "candidate" : "follower";
}

static void info_server(struct node *n, struct text *t)
{
    struct utsname u;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    uint64_t up = (node_now_ms() - n->started_ms) / 1000;
    const char *port = strrchr(n->client_listen_text, ':');
    char exe[512] = "";
    ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[el > 0 ? el : 0] = 0;
    tx(t,
       "# Server\r\nredis_version:%s\r\nraftkv_version:%s\r\nredis_git_sha1:00000000\r\n"
       "redis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:%s %s %s\r\n"
       "arch_bits:%zu\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\n"
       "atomicvar_api:c11-builtin\r\ngcc_version:%d.%d.%d\r\nprocess_id:%ld\r\n"
       "process_supervised:no\r\nrun_id:%016" PRIx64 "%016" PRIx64 "%08" PRIx64 "\r\n"
       "tcp_port:%s\r\nserver_time_usec:%" PRIu64 "\r\nuptime_in_seconds:%" PRIu64 "\r\n"
       "uptime_in_days:%" PRIu64 "\r\nhz:%u\r\nconfigured_hz:%u\r\nlru_clock:0\r\n"
       "executable:%s\r\nconfig_file:\r\nio_threads_active:0\r\n",
       NODE_REDIS_VERSION, RAFTKV_VERSION, u.sysname, u.release, u.machine, sizeof(void *) * 8,
#ifdef __GNUC__
       __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__,
#else
       0, 0, 0,
#endif
       (long)getpid(), n->id, n->started_unix_us, (uint64_t)getpid(), port ? port + 1 : "",
       node_unix_us(), up, up / 86400, 1000 / (n->tick_ms ? n->tick_ms : 1),
       1000 / (n->tick_ms ? n->tick_ms : 1), exe);
}

static void info_body(struct node *n, uint32_t secs, struct text *t)
{
    struct replica_info st;
    server_info(n, &st);
    bool first = true;
#define SECTION(bit) if ((secs & (bit)) && section_sep(t, &first))
    SECTION(SEC_SERVER) info_server(n, t);
    SECTION(SEC_CLIENTS)
    tx(t,
       "# Clients\r\nconnected_clients:%zu\r\ncluster_connections:0\r\nmaxclients:%u\r\n"
       "client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\n"
       "blocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
       n->n_clients, n->opt.max_clients);
    SECTION(SEC_MEMORY)
    {
        struct mallinfo2 mi = mallinfo2();
        uint64_t used = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd, rss = rss_bytes();
        char h1[32], h2[32];
        human_bytes(h1, sizeof(h1), used);
        human_bytes(h2, sizeof(h2), rss);
        tx(t,
           "# Memory\r\nused_memory:%" PRIu64 "\r\nused_memory_human:%s\r\n"
           "used_memory_rss:%" PRIu64 "\r\nused_memory_rss_human:%s\r\nmaxmemory:0\r\n"
           "maxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\nmem_allocator:libc\r\n",
           used, h1, rss, h2);
    }
    SECTION(SEC_PERSISTENCE)
    {
        tx(t,
           "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\n"
           "rdb_bgsave_in_progress:0\r\nrdb_last_save_time:%" PRIu64 "\r\n"
           "rdb_last_bgsave_status:ok\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n"
           "aof_rewrite_scheduled:0\r\naof_last_write_status:ok\r\n",
           n->started_unix_us / 1000000);
        {
            /* The Bitcask store (raftkv): its files, what is dead in them, merges (node/storage.h),
             * and what the last open read (hint files make a restart fast). */
            struct bc_stats bs;
            bc_stats(n->bc, &bs);
            struct raft_status rs;
            raft_status(replica_raft(n->rep), &rs);
            tx(t,
               "raftkv_store_keys:%" PRIu64 "\r\nraftkv_store_data_files:%" PRIu32
               "\r\nraftkv_store_data_bytes:%" PRIu64 "\r\nraftkv_store_live_bytes:%" PRIu64
               "\r\nraftkv_store_dead_bytes:%" PRIu64 "\r\nraftkv_merges_done:%" PRIu64
               "\r\nraftkv_merge_in_progress:%d\r\nraftkv_open_hint_files_loaded:%" PRIu32
               "\r\nraftkv_open_data_files_scanned:%" PRIu32
               "\r\nraftkv_open_hint_files_ignored:%" PRIu32
               "\r\nraftkv_roll_hints_written:%" PRIu64 "\r\nraftkv_log_memory_bytes:%" PRIu64
               "\r\nraftkv_input_paused_for_memory:%d\r\nraftkv_input_pauses_for_memory:%" PRIu64
               "\r\n",
               bs.keys, bs.data_files, bs.total_bytes, bs.live_bytes,
               bs.total_bytes - (bs.live_bytes < bs.total_bytes ? bs.live_bytes : bs.total_bytes),
               bs.merges_done, bs.merging ? 1 : 0, bs.hint_files_loaded, bs.data_files_scanned,
               bs.hints_ignored, bs.hints_written, rs.log_bytes, n->log_memory_over ? 1 : 0,
               n->log_memory_pauses);
        }
    }
    SECTION(SEC_STATS)
    tx(t,
       "# Stats\r\ntotal_connections_received:%" PRIu64 "\r\ntotal_commands_processed:%" PRIu64
       "\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:%" PRIu64
       "\r\ntotal_net_output_bytes:%" PRIu64 "\r\nrejected_connections:%" PRIu64
       "\r\nexpired_keys:0\r\nevicted_keys:0\r\nkeyspace_hits:%" PRIu64
       "\r\nkeyspace_misses:%" PRIu64 "\r\ntotal_error_replies:%" PRIu64 "\r\n",
       n->stats.connections_received, n->stats.commands_processed, n->stats.net_input_bytes,
       n->stats.net_output_bytes, n->stats.rejected_connections, n->stats.keyspace_hits,
       n->stats.keyspace_misses, n->stats.total_errors);
    SECTION(SEC_REPLICATION)
    tx(t,
       "# Replication\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n"
       "master_repl_offset:%" PRIu64 "\r\n",
       st.raft.applied);
    SECTION(SEC_CPU)
    {
        struct rusage self, kids;
        getrusage(RUSAGE_SELF, &self);
        getrusage(RUSAGE_CHILDREN, &kids);
#define SECS(tv) ((double)(tv).tv_sec + (double)(tv).tv_usec / 1e6)
        tx(t,
           "# CPU\r\nused_cpu_sys:%f\r\nused_cpu_user:%f\r\nused_cpu_sys_children:%f\r\n"
           "used_cpu_user_children:%f\r\n",
           SECS(self.ru_stime), SECS(self.ru_utime), SECS(kids.ru_stime), SECS(kids.ru_utime));
#undef SECS
    }
    SECTION(SEC_MODULES) tx(t, "# Modules\r\n");
    SECTION(SEC_COMMANDSTATS)
    {
        /* Redis's format; the counts since the node started (node/metrics.h). */
        tx(t, "# Commandstats\r\n");
        const struct metrics_cmds *mc = &n->metrics->cmds;
        for (size_t i = 0; i < METRICS_CMDS_MAX; i++) {
            const struct metrics_cmd *s = &mc->slot[i];
            if (s->name == NULL)
                continue;
            uint64_t us = s->latency.sum_us;
            tx(t,
               "cmdstat_%s:calls=%" PRIu64 ",usec=%" PRIu64
               ",usec_per_call=%.2f,rejected_calls=%" PRIu64 ",failed_calls=%" PRIu64 "\r\n",
               s->name, s->calls, us, s->calls ? (double)us / (double)s->calls : 0.0, s->rejected,
               s->failed);
        }
    }
    SECTION(SEC_ERRORSTATS)
    {
        tx(t, "# Errorstats\r\n");
        const struct metrics_errs *me = &n->metrics->errs;
        for (size_t i = 0; i < me->n; i++)
            tx(t, "errorstat_%s:count=%" PRIu64 "\r\n", me->kind[i], me->count[i]);
    }
    SECTION(SEC_CLUSTER) tx(t, "# Cluster\r\ncluster_enabled:0\r\n");
    SECTION(SEC_KEYSPACE)
    {
        tx(t, "# Keyspace\r\n");
        const struct kv *kv = server_kv(n);
        for (uint32_t db = 0; db < n->opt.databases; db++) {
            uint64_t keys = kv_dbsize(kv, (uint8_t)db);
            if (keys > 0)
                tx(t, "db%u:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n", db, keys,
                   kv_db_expiring(kv, (uint8_t)db));
        }
    }
    SECTION(SEC_RAFT)
    tx(t,
       "# Raft\r\nrole:%s\r\nnode_id:%" PRIu64 "\r\nleader_id:%" PRIu64 "\r\nterm:%" PRIu64
       "\r\ncommit_index:%" PRIu64 "\r\napplied_index:%" PRIu64 "\r\nlast_log_index:%" PRIu64
       "\r\nkeys:%" PRIu64 "\r\nconnected_peers:%zu\r\npending_requests:%u\r\n"
       "snapshots_sent:%" PRIu64 "\r\nsnapshots_installed:%" PRIu64 "\r\ncheck_quorum:%s\r\n"
       "pre_vote:%s\r\nslow_turns:%" PRIu64 "\r\nslowest_turn_ms:%" PRIu64 "\r\n"
       "loop_turns:%" PRIu64 "\r\nread_rounds:%" PRIu64 "\r\n",
       role_name(st.raft.role), n->id, st.raft.leader, st.raft.term, st.raft.commit,
       st.raft.applied, st.raft.last_index, st.keys, peers_connected(n), st.pending,
       st.snapshots_sent, st.snapshots_installed, n->opt.check_quorum ? "yes" : "no",
       n->opt.pre_vote ? "yes" : "no", n->slow_turns, n->slowest_turn_ms, n->turns, st.read_rounds);
    if (secs & SEC_RAFT) /* the raft section's end (SECTION would start a new one) */
        tx(t, "member:%s\r\nconfig_index:%" PRIu64 "\r\nvoters:%u\r\nlearners:%u\r\n",
           member_role(n), st.raft.conf_index, st.raft.n_voters, st.raft.n_learners);
#undef SECTION
}

/* INFO [section ...]: Redis 7's sections, "default", "all" (all but modules), "everything",
 * plus raftkv's "raft" (in the default set). An unknown section adds nothing. */
void cmd_info(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    (void)c;
    uint32_t secs = argc == 1 ? SEC_DEFAULT : 0;
    for (uint32_t j = 1; j < argc; j++) {
        if (arg_is(&a[j], "default"))
            secs |= SEC_DEFAULT;
        else if (arg_is(&a[j], "all"))
            secs |= SEC_ALL;
        else if (arg_is(&a[j], "everything"))
            secs |= SEC_EVERYTHING;
        for (size_t i = 0; i < sizeof(info_sections) / sizeof(info_sections[0]); i++)
            if (arg_is(&a[j], info_sections[i].name))
                secs |= info_sections[i].bit;
    }
    /* commandstats: a line per command used, about 100 bytes each */
    size_t cap = secs & SEC_COMMANDSTATS ? 8192 + METRICS_CMDS_MAX * 160 : 8192;
    char *buf = malloc(cap);
    if (buf == NULL) {
        add_error(it, "ERR out of memory");
        return;
    }
    struct text t = {buf, 0, cap};
    buf[0] = 0;
    info_body(n, secs, &t);
    add_verbatim(it, "txt", buf, t.len);
    free(buf);
}

/* ------------------------------------------------------------------------------------------ */
/* RAFTKV.MEMBER (issue #17; core/raft/MEMBERSHIP.md)                                         */

/* The peer address of node id: the one its latest configuration records, else its --peers
 * entry ("" if neither). */
static const char *member_addr(const struct node *n, const struct raft_conf *conf, uint64_t id)
{
    const struct raft_member_addr *a = raft_conf_addr(conf, id);
    if (a != NULL && a->peer[0] != '\0')
        return a->peer;
    if (id == n->id)
        return n->self_peer_addr;
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].id == id)
            return n->peers[i].addr_text;
    return "";
}

/* The client address of member id its configuration records (this node's own: --client). */
static const char *member_client(const struct node *n, const struct raft_conf *conf, uint64_t id)
{
    const struct raft_member_addr *a = raft_conf_addr(conf, id);
    if (a != NULL && a->client[0] != '\0')
        return a->client;
    return id == n->id ? n->opt.client : "";
}

/* LIST: [conf_index, committed (1/0), leader id, [[id, "voter"|"learner", peer address,
 * client address], ...], session members]. */
static void member_list(struct node *n, struct item *it)
{
    struct raft_conf conf;
    uint64_t index = 0;
    replica_conf(n->rep, &conf, &index);
    struct replica_info st;
    replica_info(n->rep, &st);
    add_array(it, 5);
    add_integer(it, (int64_t)index);
    add_integer(it, index <= st.raft.commit ? 1 : 0);
    add_integer(it, (int64_t)st.raft.leader);
    add_array(it, (int64_t)(conf.n_voters + conf.n_learners));
    for (uint32_t i = 0; i < conf.n_voters + conf.n_learners; i++) {
        bool voter = i < conf.n_voters;
        uint64_t id = voter ? conf.voters[i] : conf.learners[i - conf.n_voters];
        add_array(it, 4);
        add_integer(it, (int64_t)id);
        add_bulk_str(it, voter ? "voter" : "learner");
        add_bulk_str(it, member_addr(n, &conf, id));
        add_bulk_str(it, member_client(n, &conf, id));
    }
    add_integer(it, (int64_t)n->n_pool); /* what a node that joins counts sessions by */
}

/* Copies argument a into out (cap bytes) if it is a well-formed address (raft_addr_valid,
 * HOST:PORT). */
static bool member_arg_addr(const struct resp_arg *a, char *out, size_t cap)
{
    if (a->len == 0 || a->len >= cap || a->len >= RAFT_ADDR_MAX)
        return false;
    memcpy(out, a->ptr, a->len);
    out[a->len] = '\0';
    const char *colon = strrchr(out, ':');
    return raft_addr_valid(out) && colon != NULL && colon != out && colon[1] != '\0';
}

void cmd_member(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    (void)c;
    static const struct {
        const char *name;
        uint8_t op;
        uint32_t min_argc, max_argc;
    } ops[] = {{"add", REPLICA_MEMBER_ADD_LEARNER, 3, 5},
               {"promote", REPLICA_MEMBER_PROMOTE, 3, 3},
               {"remove", REPLICA_MEMBER_REMOVE, 3, 3},
               {"update", REPLICA_MEMBER_SET_ADDR, 4, 5}};
    if (argc == 2 && a[1].len == 4 && strncasecmp((const char *)a[1].ptr, "list", 4) == 0) {
        member_list(n, it);
        return;
    }
    uint8_t op = 0;
    size_t k_op = 0;
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
        if (argc >= ops[k].min_argc && argc <= ops[k].max_argc && a[1].len == strlen(ops[k].name) &&
            strncasecmp((const char *)a[1].ptr, ops[k].name, a[1].len) == 0) {
            op = ops[k].op;
            k_op = k;
        }
    char text[32];
    uint64_t id = 0;
    if (op != 0) {
        size_t len = a[2].len < sizeof(text) - 1 ? a[2].len : sizeof(text) - 1;
        memcpy(text, a[2].ptr, len);
        text[len] = '\0';
    }
    struct raft_member_addr addr = {0};
    if (op == 0 || !config_parse_u64(text, 1, UINT64_MAX, &id) ||
        (argc >= 4 && !member_arg_addr(&a[3], addr.peer, sizeof(addr.peer))) ||
        (argc >= 5 && !member_arg_addr(&a[4], addr.client, sizeof(addr.client)))) {
        add_error(it, "ERR syntax: RAFTKV.MEMBER LIST | ADD ID [PEER-HOST:PORT [CLIENT-HOST:PORT]] "
                      "| UPDATE ID PEER-HOST:PORT [CLIENT-HOST:PORT] | PROMOTE ID | REMOVE ID");
        return;
    }
    addr.id = id;
    struct raft_conf conf;
    replica_conf(n->rep, &conf, NULL);
    if (op == REPLICA_MEMBER_ADD_LEARNER && argc == 3) {
        /* No address given: the one --peers lists (as before addresses were carried). */
        const char *peer = member_addr(n, &conf, id);
        if (peer[0] == '\0') {
            add_errorf(it, "ERR node %" PRIu64 " has no known address: ADD ID PEER-HOST:PORT", id);
            return;
        }
        snprintf(addr.peer, sizeof(addr.peer), "%.*s", RAFT_ADDR_MAX - 1, peer);
    }
    if (op == REPLICA_MEMBER_SET_ADDR && argc == 4) {
        /* No client address given: the member keeps the one it has. */
        const struct raft_member_addr *now = raft_conf_addr(&conf, id);
        if (now != NULL)
            memcpy(addr.client, now->client, sizeof(addr.client));
    }
    uint64_t index = 0, leader = 0;
    int rc = replica_member_change_addr(n->rep, op, &addr, &index, &leader);
    switch (rc) {
    case RK_OK:
        /* Proposed: done once the entry at index commits (LIST says so). */
        add_integer(it, (int64_t)index);
        node_event("info", "member_change", "membership change proposed",
                   "op=%s id=%" PRIu64 " index=%" PRIu64 " peer_addr=%s client_addr=%s",
                   ops[k_op].name, id, index, addr.peer[0] ? addr.peer : "-",
                   addr.client[0] ? addr.client : "-");
        return;
    case RK_ENOTLEADER:
        if (leader != 0 && member_client(n, &conf, leader)[0] != '\0')
            add_errorf(it, "NOTLEADER the leader is node %" PRIu64 " at %s", leader,
                       member_client(n, &conf, leader));
        else
            add_errorf(it, "NOTLEADER the leader is node %" PRIu64 " (0: none known)", leader);
        return;
    case RK_EBUSY:
        add_error(it, "TRYAGAIN the learner is not caught up yet, another membership change is "
                      "not committed yet, or the leader has not committed an entry of its term");
        return;
    case RK_ETOOBIG:
        add_error(it, "ERR too many voters or learners");
        return;
    default:
        add_error(it, "ERR not a single-server change: unknown or present id, not a learner, "
                      "the last voter, or a bad address");
        return;
    }
}
