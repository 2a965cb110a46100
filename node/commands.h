/*
 * commands.h — raftkv-node's command table, as Redis's commands.def: one row per command (and
 * per subcommand of a container such as CONFIG or CLIENT) with its name, arity, flags, key
 * positions, ACL categories, tips, key specs and handler. The same rows drive dispatch, the
 * unknown-command, unknown-subcommand and arity errors, NOAUTH, and COMMAND with every
 * subcommand (COUNT, INFO, DOCS, LIST, GETKEYS), so that what COMMAND says is what the node
 * does.
 *
 * Arity as Redis: N > 0 means exactly N arguments (the name counts), -N at least N.
 */
#ifndef NODE_COMMANDS_H
#define NODE_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

#include "server.h"

/* Flags, as COMMAND INFO names them (Redis's CMD_*). */
enum cmd_flag {
    CMD_WRITE = 1u << 0,
    CMD_READONLY = 1u << 1,
    CMD_DENYOOM = 1u << 2,
    CMD_ADMIN = 1u << 3,
    CMD_PUBSUB = 1u << 4,
    CMD_NOSCRIPT = 1u << 5,
    CMD_BLOCKING = 1u << 6,
    CMD_LOADING = 1u << 7,
    CMD_STALE = 1u << 8,
    CMD_SKIP_MONITOR = 1u << 9,
    CMD_SKIP_SLOWLOG = 1u << 10,
    CMD_ASKING = 1u << 11,
    CMD_FAST = 1u << 12,
    CMD_NO_AUTH = 1u << 13,
    CMD_MAY_REPLICATE = 1u << 14,
    CMD_SENTINEL = 1u << 15,
    CMD_ONLY_SENTINEL = 1u << 16,
    CMD_NO_MANDATORY_KEYS = 1u << 17,
    CMD_PROTECTED = 1u << 18,
    CMD_NO_ASYNC_LOADING = 1u << 19,
    CMD_NO_MULTI = 1u << 20,
    CMD_MOVABLE_KEYS = 1u << 21,
    CMD_ALLOW_BUSY = 1u << 22,
};

/* ACL categories (Redis's ACL_CATEGORY_*), in the order COMMAND INFO lists them (core/kv/acl.h
 * kv_acl_category_name: the same order). Dispatch enforces them (cmd_acl.c acl_check): a row is
 * all a command needs to be refused to a user without its categories, so raftkv's own
 * commands that change the cluster (membership, backups) are tagged ACL_ADMIN | ACL_DANGEROUS
 * (with ACL_SLOW) and only users with +@admin (or the command by name) may run them. */
enum cmd_acl {
    ACL_KEYSPACE = 1u << 0,
    ACL_READ = 1u << 1,
    ACL_WRITE = 1u << 2,
    ACL_SET = 1u << 3,
    ACL_SORTEDSET = 1u << 4,
    ACL_LIST = 1u << 5,
    ACL_HASH = 1u << 6,
    ACL_STRING = 1u << 7,
    ACL_BITMAP = 1u << 8,
    ACL_HYPERLOGLOG = 1u << 9,
    ACL_GEO = 1u << 10,
    ACL_STREAM = 1u << 11,
    ACL_PUBSUB = 1u << 12,
    ACL_ADMIN = 1u << 13,
    ACL_FAST = 1u << 14,
    ACL_SLOW = 1u << 15,
    ACL_BLOCKING = 1u << 16,
    ACL_DANGEROUS = 1u << 17,
    ACL_CONNECTION = 1u << 18,
    ACL_TRANSACTION = 1u << 19,
    ACL_SCRIPTING = 1u << 20,
};

/* One key spec (Redis 7): where the keys begin (an index) and how far they go (a range). Every
 * command raftkv has fits this one shape. */
struct cmd_keyspec {
    const char *notes; /* NULL: none */
    const char *flags; /* space-separated: "RW access update" */
    int index;         /* begin_search index */
    int lastkey;       /* find_keys range: lastkey, keystep, limit */
    int keystep;
    int limit;
};

/* The handler: it, the command's reply item, is already in c's FIFO; the handler fills it (an
 * immediate reply) or queues replica requests for it (server_request) with a completion. */
typedef void (*cmd_proc)(struct node *n, struct client *c, struct item *it,
                         const struct resp_arg *a, uint32_t argc);

struct cmd {
    const char *name; /* lower case; "config|get" for a subcommand */
    int arity;
    uint32_t flags; /* enum cmd_flag */
    int first_key, last_key, key_step;
    uint32_t acl;     /* enum cmd_acl */
    const char *tips; /* space-separated, "" for none */
    const struct cmd_keyspec *specs;
    int n_specs;
    const char *summary, *since, *group, *complexity; /* COMMAND DOCS */
    cmd_proc proc;               /* NULL for a container: dispatch goes to its subcommands */
    const struct cmd *subs;      /* a container's subcommands, ended by a row with name NULL */
    /* Between MULTI and EXEC: TXN_RUN runs the handler (a data command queues its op; PING,
     * ECHO, SELECT and the commands that only read the node's own state, such as CLIENT ID or
     * INFO, answer at once and their reply waits for EXEC), TXN_CONTROL runs now as outside
     * (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET), 0: queued as an error of EXEC's reply
     * (cmd_multi.c). */
    uint8_t txn;
};

enum { TXN_NONE = 0, TXN_RUN = 1, TXN_CONTROL = 2 };

/* Runs one parsed request on c (its reply item is appended to c's FIFO). */
void cmd_dispatch(struct node *n, struct client *c, struct item *it, const struct resp_request *rq);
/* "ERR wrong number of arguments for 'NAME' command", NAME the row's full name. */
void cmd_arity_error(struct item *it, const struct cmd *cmd);
/* The row a request runs (its subcommand's for a container) or NULL; whether argc fits it. */
const struct cmd *cmd_lookup_request(const struct resp_arg *a, uint32_t argc);
bool cmd_arity_ok(const struct cmd *cmd, uint32_t argc);
/* The row for a command name (any case) or NULL. */
const struct cmd *cmd_lookup(const uint8_t *name, uint64_t len);

/* cmd_multi.c: how a data command reaches the state machine, and transactions. */
/* The database c's next command runs in (SELECT, also between MULTI and EXEC). */
uint8_t cur_db(const struct client *c);
/* Submits one op (REPLICA_CMD; its result is the reply), or queues it between MULTI and EXEC.
 * op's args are borrowed for the call. */
void data_submit(struct node *n, struct client *c, struct item *it, const struct kv_op2 *op);
/* A state machine result (kv_res) as RESP into it. */
void add_kv_res(struct node *n, struct item *it, const uint8_t *res, size_t len);
void multi_queued(struct node *n, struct client *c, struct item *it);
void multi_queue_probe(struct node *n, struct client *c, struct item *it, const struct kv_op2 *op,
                       const char *text);
void multi_queue_error(struct node *n, struct client *c, struct item *it, const char *text);
/* Leaves MULTI and forgets the watched keys (EXEC, DISCARD, RESET). */
void multi_reset(struct client *c);

/* The families' handlers. */
#define CMD_PROC(name)                                                                             \
    void name(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t)
CMD_PROC(cmd_get);
CMD_PROC(cmd_set);
CMD_PROC(cmd_setex);
CMD_PROC(cmd_getex);
CMD_PROC(cmd_getset);
CMD_PROC(cmd_string_op);
CMD_PROC(cmd_mget);
CMD_PROC(cmd_mset);
CMD_PROC(cmd_incr);
CMD_PROC(cmd_strlen);
CMD_PROC(cmd_getrange);
CMD_PROC(cmd_setrange);

CMD_PROC(cmd_setbit);
CMD_PROC(cmd_getbit);
CMD_PROC(cmd_bitcount);
CMD_PROC(cmd_bitpos);
CMD_PROC(cmd_bitop);
CMD_PROC(cmd_object_key);
CMD_PROC(cmd_object_help);

CMD_PROC(cmd_key_op);
CMD_PROC(cmd_expire);
CMD_PROC(cmd_copy);
CMD_PROC(cmd_move);
CMD_PROC(cmd_flush);
CMD_PROC(cmd_swapdb);
CMD_PROC(cmd_keys);
CMD_PROC(cmd_scan);
CMD_PROC(cmd_randomkey);

CMD_PROC(cmd_eval);
CMD_PROC(cmd_evalsha);
CMD_PROC(cmd_script);

CMD_PROC(cmd_backup);

CMD_PROC(cmd_multi);
CMD_PROC(cmd_exec);
CMD_PROC(cmd_discard);
CMD_PROC(cmd_watch);
CMD_PROC(cmd_unwatch);

/* "ERR invalid expire time in 'CMD' command" */
void expire_time_error(struct item *it, const char *cmd);
/* Redis's getIntFromObjectOrReply: an int, or false with the error (msg, or Redis's words). */
bool arg_int_reply(struct item *it, const struct resp_arg *a, const char *msg, int64_t *v);

void cmd_ping(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_echo(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_time(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_select(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_quit(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_info(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_config_get(struct node *, struct client *, struct item *, const struct resp_arg *,
                    uint32_t);
void cmd_config_set(struct node *, struct client *, struct item *, const struct resp_arg *,
                    uint32_t);
void cmd_config_refused(struct node *, struct client *, struct item *, const struct resp_arg *,
                        uint32_t);
void cmd_config_help(struct node *, struct client *, struct item *, const struct resp_arg *,
                     uint32_t);
void cmd_hello(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_auth(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_reset(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_client(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);
void cmd_memory_usage(struct node *, struct client *, struct item *, const struct resp_arg *,
                      uint32_t);

void cmd_command(struct node *, struct client *, struct item *, const struct resp_arg *,
                 uint32_t);
/* Whether fn holds for every row, commands and subcommands (stops at the first false). */
bool cmd_rows_all(bool (*fn)(void *ctx, const struct cmd *row), void *ctx);
/* COMMAND LIST FILTERBY ACLCAT's list: the rows (subcommands too) of the categories in mask. */
void cmd_list_category(struct item *it, uint32_t mask);

/* ACL users (cmd_acl.c). */
CMD_PROC(cmd_acl);
enum { ACL_CHECK_OK = 0, ACL_CHECK_DENIED = 1, ACL_CHECK_GONE = 2 };
/* Whether c's user may run cmd with these arguments: ACL_CHECK_OK; ACL_CHECK_DENIED with
 * Redis's NOPERM text in err; ACL_CHECK_GONE: the user was deleted (the connection closes, as
 * Redis closes its clients). */
int acl_check(struct node *n, struct client *c, const struct cmd *cmd, const struct resp_arg *a,
              uint32_t argc, char *err, size_t cap);
/* The connection as it connects or after RESET: user "default", authenticated if that user is
 * on and nopass. */
void acl_client_reset(struct node *n, struct client *c);
/* AUTH / HELLO AUTH: true and c authenticated as user, or false (WRONGPASS). */
bool acl_authenticate(struct node *n, struct client *c, const struct resp_arg *user,
                      const struct resp_arg *pass);
/* Whether a user of that name exists; whether c is authenticated as it (CLIENT KILL USER). */
bool acl_user_exists(struct node *n, const struct resp_arg *name);
bool acl_client_is(const struct client *c, const struct resp_arg *name);
/* Closes the connections of deleted users (end of every loop turn; O(1) while the users do not
 * change). */
void acl_close_deleted(struct node *n);
/* Whether the default user is nopass (AUTH <password> is then an error). */
bool acl_default_nopass(struct node *n);
/* The redis.call()s of a script (its text) against c's user: true, or false with Redis's
 * "ERR The user executing the script can't run this command ..." in it. */
bool acl_script_ok(struct node *n, struct client *c, struct item *it, const char *sha,
                   const char *text);
/* RAFTKV.MEMBER LIST|ADD|PROMOTE|REMOVE (issue #17; node/README.md, Membership). */
void cmd_member(struct node *, struct client *, struct item *, const struct resp_arg *, uint32_t);

#endif
