/*
 * config.c — raftkv-node's settings (Redis's config.c): ONE table of settings, read from the
 * command line (--name value) and from --config FILE (name = value, inih), printed by --help.
 * The file is read first, wherever --config stands, so that the command line wins.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "server.h"
#include "tls_conf.h"

bool config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s == 0 || *s == '-')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != 0 || v < min || v > max)
        return false;
    *out = v;
    return true;
}

enum opt_kind { OPT_U64, OPT_U32, OPT_TEXT, OPT_PAIR, OPT_BOOL };

/* The settings table, shared by the command line, the config file and --help. */
struct opt_def {
    const char *name;
    enum opt_kind kind;
    size_t off;        /* in struct options */
    uint64_t min, max; /* numbers; OPT_TEXT: min 0 allows "", max is the buffer's size */
    const char *hint;  /* what a good value looks like, for errors */
    const char *arg;   /* --help: the value's placeholder */
    const char *help;  /* --help: what it does, "\n" between lines */
};

#define OPT_NUM(name, kind, field, min, max, hint, arg, help) \
    {name, kind, offsetof(struct options, field), min, max, hint, arg, help}
#define OPT_STR(name, field, min, hint, arg, help)                                              \
    {name, OPT_TEXT, offsetof(struct options, field), min,                                       \
     sizeof(((struct options *)0)->field), hint, arg, help}
#define OPT_BOOL_(name, field, help) \
    {name, OPT_BOOL, offsetof(struct options, field), 0, 1, "yes or no", "yes|no", help}

static const struct opt_def opt_defs[] = {
    OPT_NUM("id", OPT_U64, id, 1, UINT64_MAX, "an integer >= 1", "N",
            "this node's id (one of the ids in --peers, if given)"),
    OPT_STR("peers", peers, 0, "ID=HOST:PORT,...", "LIST",
            "nodes (this one too): id=host:port for peer traffic; the\n"
            "addresses recorded in the configuration take precedence\n"
            "(RAFTKV.MEMBER ADD/UPDATE). Optional with --peer-addr"),
    OPT_STR("peer-addr", peer_addr, 0, "HOST:PORT", "HOST:PORT",
            "where this node's peers connect (default: its entry in --peers)"),
    OPT_NUM("session-members", OPT_U32, session_members, 1, 64, "1..64", "N",
            "the number of nodes the session bound counts, the same on\n"
            "every member (default: the nodes of --peers; with --join and\n"
            "no --peers, the value of the member --join reaches)"),
    OPT_STR("voters", voters, 0, "ID,ID,...", "ID,...",
            "the voters of a new cluster's first configuration (default:\n"
            "every id of --peers); the other nodes of --peers start outside\n"
            "it and join with RAFTKV.MEMBER ADD (node/README.md, Membership)"),
    OPT_STR("join", join, 0, "HOST:PORT,...", "HOST:PORT,...",
            "a new node with an empty directory: start outside the\n"
            "configuration and ask these members (client addresses) to add\n"
            "this node (RAFTKV.MEMBER ADD ID PEER-ADDR CLIENT at the leader),\n"
            "after reading the members' addresses from their\n"
            "RAFTKV.MEMBER LIST. Ignored once the node is a member"),
    OPT_STR("client", client, 1, "HOST:PORT", "HOST:PORT", "where Redis-protocol clients connect"),
    OPT_STR("data-dir", data_dir, 1, "a directory", "DIR",
            "durable state: DIR/log (Raft log), DIR/kv (Bitcask)"),
    OPT_NUM("cluster-id", OPT_U64, cluster_id, 0, UINT64_MAX, "an integer", "N",
            "peers of another cluster are refused (default 1)"),
    OPT_NUM("tick-ms", OPT_U32, tick_ms, 1, 10000, "1..10000", "MS", "one Raft tick (default 10)"),
    OPT_NUM("election-ticks", OPT_PAIR, election_min, 1, 100000, "two integers MIN MAX, MIN < MAX",
            "A B",
            "election timeout drawn from [A, B] ticks (default 10 20;\n"
            "in a file: election-ticks = 10 20)"),
    OPT_NUM("heartbeat-ticks", OPT_U32, heartbeat, 1, 100000, "1..100000", "N",
            "leader heartbeat interval (default 2)"),
    OPT_BOOL_("check-quorum", check_quorum,
              "a leader that has not heard from a majority within an election\n"
              "timeout steps down, and a follower that heard from a leader within\n"
              "one ignores votes (Raft thesis 6.2, 4.2.3) (default yes)"),
    OPT_BOOL_("pre-vote", pre_vote,
              "a candidate first asks whether it could win (thesis 9.6), so a\n"
              "node back from a partition does not depose the leader (default yes)"),
    OPT_NUM("request-timeout-ms", OPT_U32, request_timeout_ms, 10, 3600000, "10..3600000", "MS",
            "a request not answered by then gets -TIMEOUT (default 2000)"),
    OPT_NUM("shutdown-timeout-ms", OPT_U32, shutdown_timeout_ms, 0, 3600000, "0..3600000", "MS",
            "on SIGTERM/SIGINT, how long in-flight requests may take to\n"
            "finish before they are failed (default 3000)"),
    OPT_NUM("max-clients", OPT_U32, max_clients, 1, 1000000, "1..1000000", "N",
            "connections beyond are refused (default 10000)"),
    OPT_NUM("databases", OPT_U32, databases, 1, KV_DBS, "1..16", "N",
            "SELECT 0..N-1 (default 16, Redis's; the state machine has 16)"),
    OPT_NUM("max-args", OPT_U32, max_args, 3, 1u << 20, "3..1048576", "N",
            "arguments per request (default 65536)"),
    OPT_NUM("max-value-bytes", OPT_U64, max_value_bytes, RK_LIMITS_VALUE_MIN, RK_LIMITS_VALUE_MAX,
            "1024..67108864", "N",
            "the largest value, and request argument, a client may send;\n"
            "every other size limit derives from it: command, Raft entry,\n"
            "peer frame and peer send queue (default 67108864: 64 MiB)"),
    OPT_NUM("max-inline-bytes", OPT_U32, max_inline_bytes, 64, 1u << 20, "64..1048576", "N",
            "bytes of an inline (telnet-style) request (default 65536)"),
    OPT_NUM("max-log-memory", OPT_U64, max_log_memory_bytes, 64ull << 20, 1ull << 40,
            "67108864..2^40", "N",
            "while Raft holds more than N bytes of entries in memory (not yet\n"
            "committed, or applied but not yet durable in the store), client\n"
            "input is not read: backpressure, nothing dropped (default 134217728)"),
    OPT_NUM("store-file-bytes", OPT_U64, store_file_bytes, 4096, 1ull << 40, "4096..2^40", "N",
            "a Bitcask data file is closed and a new one started past this\n"
            "many bytes; only closed files are merged (default 67108864)"),
    OPT_NUM("merge-frag-percent", OPT_U32, merge_frag_percent, 0, 100, "0..100", "P",
            "merge the closed data files once P% of their bytes are dead\n"
            "(overwritten or deleted records); 0: never for this reason\n"
            "(Bitcask's frag_merge_trigger; default 50)"),
    OPT_NUM("merge-dead-bytes", OPT_U64, merge_dead_bytes, 0, UINT64_MAX, "an integer", "N",
            "or once they hold N dead bytes; 0: never for this reason\n"
            "(Bitcask's dead_bytes_merge_trigger; default 536870912)"),
    OPT_NUM("merge-min-dead-bytes", OPT_U64, merge_min_dead_bytes, 0, UINT64_MAX, "an integer", "N",
            "but never for fewer than N dead bytes (default 16777216)"),
    OPT_STR("requirepass", requirepass, 0, "a password (up to 511 bytes)", "PASSWORD",
            "clients must AUTH with it (user \"default\") before any\n"
            "other command, as Redis (default: none)"),
    OPT_STR("metrics-addr", metrics_addr, 0, "HOST:PORT", "HOST:PORT",
            "serve Prometheus metrics at http://HOST:PORT/metrics\n"
            "(plain HTTP unless metrics-tls; default: none)"),
    OPT_BOOL_("metrics-tls", metrics_tls,
              "/metrics over TLS (https), with the tls-port's certificate and\n"
              "its tls-auth-clients rule (needs tls-port; default no)"),
    /* ---- TLS (node/tls.c) ---- */
    OPT_NUM("tls-port", OPT_U32, tls_port, 0, 65535, "0..65535", "PORT",
            "serve Redis clients over TLS on --client's host at PORT\n"
            "(default 0: none); --client HOST:0 turns plaintext off"),
    OPT_BOOL_("tls-peers", tls_peers,
              "peer connections are mutual TLS: each side presents\n"
              "tls-cert-file and accepts only tls-ca-cert-file's (default no)"),
    OPT_STR("tls-cert-file", tls_cert_file, 0, "a PEM file", "FILE",
            "this node's certificate (chain), PEM: for clients and peers"),
    OPT_STR("tls-key-file", tls_key_file, 0, "a PEM file", "FILE", "its private key, PEM"),
    OPT_STR("tls-ca-cert-file", tls_ca_cert_file, 0, "a PEM file", "FILE",
            "the CA(s) a client's or peer's certificate must chain to"),
    OPT_STR("tls-auth-clients", tls_auth_clients, 1, "yes, no or optional", "MODE",
            "yes: clients on the tls-port must present a certificate of\n"
            "the CA (the default); no: they are not asked; optional: one\n"
            "presented is checked"),
    OPT_STR("tls-protocols", tls_protocols, 0, "TLSv1.2 and/or TLSv1.3", "\"LIST\"",
            "TLS versions allowed (default \"TLSv1.2 TLSv1.3\")"),
    OPT_STR("tls-peer-names", tls_peer_names, 0, "ID=NAME,...", "LIST",
            "ID=NAME,...: with tls-peers, member ID's certificate must\n"
            "name NAME (SAN DNS name, or CN); checked both ways\n"
            "(default: no name check)"),
};

#define OPT_COUNT (sizeof(opt_defs) / sizeof(opt_defs[0]))

/* --help, from the table. */
static void usage(FILE *f)
{
    fprintf(f, "usage: raftkv-node --id N --peers ID=HOST:PORT,... --client HOST:PORT --data-dir DIR\n"
               "                   [--config FILE] [OPTION VALUE]... [--help]\n\n");
    fprintf(f, "  %-25s%s\n", "--config FILE",
            "settings from FILE: one `name = value` per line, names as");
    fprintf(f, "  %-25s%s\n", "", "the options here without \"--\" (# or ; comments); an");
    fprintf(f, "  %-25s%s\n", "", "option given on the command line wins over the file");
    for (size_t i = 0; i < OPT_COUNT; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", opt_defs[i].name, opt_defs[i].arg);
        const char *h = opt_defs[i].help;
        for (int line = 0; h != NULL && *h != 0 && line < 8; line++) {
            const char *nl = strchr(h, '\n');
            int len = nl ? (int)(nl - h) : (int)strlen(h);
            fprintf(f, "  %-25s%.*s\n", line == 0 ? left : "", len, h);
            h = nl ? nl + 1 : NULL;
        }
    }
}

static const struct opt_def *opt_find(const char *name)
{
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (strcmp(opt_defs[i].name, name) == 0)
            return &opt_defs[i];
    return NULL;
}

/* Sets one setting from its text; false (and why in *hint) when the value is bad. */
static bool opt_set(struct options *o, const struct opt_def *d, const char *value)
{
    char *field = (char *)o + d->off;
    uint64_t v = 0, v2 = 0;
    switch (d->kind) {
    case OPT_U64:
        if (!config_parse_u64(value, d->min, d->max, &v))
            return false;
        memcpy(field, &v, sizeof(v));
        return true;
    case OPT_U32: {
        if (!config_parse_u64(value, d->min, d->max, &v))
            return false;
        uint32_t v32 = (uint32_t)v;
        memcpy(field, &v32, sizeof(v32));
        return true;
    }
    case OPT_BOOL:
        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
            return false;
        *(bool *)field = strcmp(value, "yes") == 0;
        return true;
    case OPT_TEXT:
        if ((*value == 0 && d->min > 0) || strlen(value) >= d->max)
            return false;
        memcpy(field, value, strlen(value) + 1);
        return true;
    case OPT_PAIR: {
        char a[32], b[32], extra;
        /* MIN < MAX: the timeout must be randomized, or nodes that start together can split
         * the vote round after round (Raft §5.2). */
        if (sscanf(value, "%31s %31s %c", a, b, &extra) != 2 || !config_parse_u64(a, d->min, d->max, &v) ||
            v >= d->max || !config_parse_u64(b, v + 1, d->max, &v2))
            return false;
        o->election_min = (uint32_t)v;
        o->election_max = (uint32_t)v2;
        return true;
    }
    }
    return false;
}

struct config_ctx {
    struct options *o;
    char error[512];
};

/* inih's handler: name = value, outside any section or in [raftkv]. */
static int config_line(void *user, const char *section, const char *name, const char *value)
{
    struct config_ctx *cx = user;
    if (section[0] != 0 && strcmp(section, "raftkv") != 0) {
        snprintf(cx->error, sizeof(cx->error), "unknown section [%s] (use none, or [raftkv])",
                 section);
        return 0;
    }
    /* inih takes "; ..." after a value as a comment; "# ..." too, as in most config files. */
    char text[4096];
    snprintf(text, sizeof(text), "%s", value);
    for (char *h = strchr(text, '#'); h != NULL; h = strchr(h + 1, '#'))
        if (h > text && (h[-1] == ' ' || h[-1] == '\t')) {
            *h = 0;
            break;
        }
    for (size_t k = strlen(text); k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t'); k--)
        text[k - 1] = 0;
    value = text;
    const struct opt_def *d = opt_find(name);
    if (d == NULL || strcmp(name, "config") == 0) {
        snprintf(cx->error, sizeof(cx->error), "unknown setting '%s' (see --help)", name);
        return 0;
    }
    if (!opt_set(cx->o, d, value)) {
        snprintf(cx->error, sizeof(cx->error), "bad value for %s: '%.200s' (%s)", name, value,
                 d->hint);
        return 0;
    }
    return 1;
}

static int load_config(const char *path, struct options *o)
{
    struct config_ctx cx = {.o = o};
    int rc = ini_parse(path, config_line, &cx);
    if (rc == -1) {
        fprintf(stderr, "raftkv-node: --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (rc != 0) {
        fprintf(stderr, "raftkv-node: %s line %d: %s\n", path, rc,
                cx.error[0] ? cx.error : "not `name = value`");
        return -1;
    }
    return 0;
}

/* The TLS settings together (node/tls.c): values that parse, the files named when TLS is on,
 * and a client port left. 0, or -1 (printed). */
static int tls_settings_check(const struct options *o)
{
    unsigned protos = 0;
    enum tls_auth auth = TLS_AUTH_YES;
    char why[256];
    const char *bad = NULL;
    if (!tls_parse_protocols(o->tls_protocols, &protos))
        bad = "--tls-protocols: TLSv1.2 and/or TLSv1.3, separated by spaces";
    else if (!tls_parse_auth(o->tls_auth_clients, &auth))
        bad = "--tls-auth-clients: yes, no or optional";
    else if (!tls_check_peer_names(o->tls_peer_names, why, sizeof(why)))
        bad = why;
    else if ((o->tls_port != 0 || o->tls_peers) &&
             (o->tls_cert_file[0] == 0 || o->tls_key_file[0] == 0 || o->tls_ca_cert_file[0] == 0))
        bad = "--tls-port and --tls-peers need --tls-cert-file, --tls-key-file and "
              "--tls-ca-cert-file";
    else if (o->tls_peer_names[0] != 0 && !o->tls_peers)
        bad = "--tls-peer-names needs --tls-peers yes";
    else if (o->metrics_tls && (o->tls_port == 0 || o->metrics_addr[0] == 0))
        bad = "--metrics-tls yes needs --metrics-addr and --tls-port (its certificate and rules)";
    else if (o->tls_port == 0 && strlen(o->client) > 2 &&
             strcmp(o->client + strlen(o->client) - 2, ":0") == 0)
        bad = "--client HOST:0 (no plaintext port) needs --tls-port";
    if (bad == NULL)
        return 0;
    fprintf(stderr, "raftkv-node: %s%s\n", bad == why ? "--tls-peer-names: " : "", bad);
    return -1;
}

/* Returns 0 ok, 1 help shown, -1 error (printed). The config file is read first, wherever
 * --config stands, so that the command line wins. */
int config_parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){.cluster_id = 1,
                          .tick_ms = 10,
                          .election_min = 10,
                          .election_max = 20,
                          .heartbeat = 2,
                          .request_timeout_ms = 2000,
                          .shutdown_timeout_ms = 3000,
                          .max_clients = 10000,
                          .databases = KV_DBS,
                          .max_args = 65536,
                          .max_value_bytes = RK_LIMITS_VALUE_DEFAULT,
                          .max_inline_bytes = RESP_MAX_INLINE_DEFAULT,
                          .store_file_bytes = 64ull << 20,
                          .max_log_memory_bytes = 128ull << 20,
                          .merge_frag_percent = 50,
                          .merge_dead_bytes = 512ull << 20,
                          .merge_min_dead_bytes = 16ull << 20,
                          .check_quorum = true,
                          .pre_vote = true,
                          .tls_auth_clients = "yes"};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *f = argv[i];
            if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
                usage(stdout);
                return 1;
            }
            if (strncmp(f, "--", 2) != 0) {
                fprintf(stderr, "raftkv-node: unexpected argument '%s' (try --help)\n", f);
                return -1;
            }
            const struct opt_def *d = opt_find(f + 2);
            bool config = strcmp(f, "--config") == 0;
            if (d == NULL && !config) {
                fprintf(stderr, "raftkv-node: unknown option '%s' (try --help)\n", f);
                return -1;
            }
            int need = d != NULL && d->kind == OPT_PAIR ? 2 : 1;
            if (i + need >= argc) {
                fprintf(stderr, "raftkv-node: %s needs %s (try --help)\n", f,
                        need == 2 ? "two values" : "a value");
                return -1;
            }
            char value[64];
            const char *v = argv[i + 1];
            if (need == 2) {
                snprintf(value, sizeof(value), "%.30s %.30s", argv[i + 1], argv[i + 2]);
                v = value;
            }
            i += need;
            if (config) {
                if (pass == 0 && load_config(v, o) != 0)
                    return -1;
            } else if (pass == 1 && !opt_set(o, d, v)) {
                fprintf(stderr, "raftkv-node: bad value for %s: '%s' (%s)\n", f, v, d->hint);
                return -1;
            }
        }
    }
    const char *missing = o->id == 0                                 ? "--id"
                          : o->peers[0] == 0 && o->peer_addr[0] == 0 ? "--peers or --peer-addr"
                          : o->client[0] == 0                        ? "--client"
                          : o->data_dir[0] == 0                      ? "--data-dir"
                                                                     : NULL;
    if (missing != NULL) {
        fprintf(stderr, "raftkv-node: %s is required (try --help)\n", missing);
        return -1;
    }
    if (o->heartbeat >= o->election_min) {
        fprintf(stderr, "raftkv-node: --heartbeat-ticks must be below the election minimum\n");
        return -1;
    }
    return tls_settings_check(o);
}

