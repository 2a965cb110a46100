/*
 * commands.c — the command table (commands.h) and what it drives: dispatch with Redis 7's
 * checks in Redis's order (processCommand: unknown command or subcommand, arity, NOAUTH), and
 * COMMAND [COUNT | INFO | DOCS | LIST | GETKEYS | HELP], answered from the rows as Redis 7
 * answers them from commands.def. The rows copy Redis 7.0's metadata for each command raftkv
 * offers (flags, key positions, categories, tips, key specs), so that client libraries that
 * route or validate by COMMAND see what they would see on Redis.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "glob.h"

/* ------------------------------------------------------------------------------------------ */
/* The table                                                                                  */

#define KS(...) ((const struct cmd_keyspec[]){__VA_ARGS__})
#define NKS(...) (int)(sizeof((const struct cmd_keyspec[]){__VA_ARGS__}) / sizeof(struct cmd_keyspec))
/* A key spec list: SPECS({...}, {...}) expands to the pointer and the count. */
#define SPECS(...) KS(__VA_ARGS__), NKS(__VA_ARGS__)
#define NOSPECS NULL, 0
#define KEY1(flags) SPECS({NULL, flags, 1, 0, 1, 0})

#define R CMD_READONLY
#define W CMD_WRITE
#define F CMD_FAST
#define LS (CMD_LOADING | CMD_STALE)
#define CONN_FLAGS (CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | CMD_FAST | CMD_NO_AUTH | CMD_ALLOW_BUSY)

static const struct cmd command_subs[] = {
    {"command|count", 2, LS, 0, 0, 0, ACL_SLOW | ACL_CONNECTION, "", NOSPECS,
     "Get total number of Redis commands", "2.8.13", "server", "O(1)", cmd_command, NULL, TXN_RUN},
    {"command|docs", -2, LS, 0, 0, 0, ACL_SLOW | ACL_CONNECTION, "nondeterministic_output_order",
     NOSPECS, "Get array of specific Redis command documentation", "7.0.0", "server",
     "O(N) where N is the number of commands to look up", cmd_command, NULL, TXN_RUN},
    {"command|getkeys", -4, LS, 0, 0, 0, ACL_SLOW | ACL_CONNECTION, "", NOSPECS,
     "Extract keys given a full Redis command", "2.8.13", "server",
     "O(N) where N is the number of arguments to the command", cmd_command, NULL, TXN_RUN},
    {"command|help", 2, LS, 0, 0, 0, ACL_SLOW | ACL_CONNECTION, "", NOSPECS,
     "Show helpful text "
     "about the different subcommands",
     "5.0.0", "server", "O(1)", cmd_command, NULL, TXN_RUN},
    {"command|info", -2, LS, 0, 0, 0, ACL_SLOW | ACL_CONNECTION, "nondeterministic_output_order",
     NOSPECS, "Get array of specific Redis command details, or all when no argument is given.",
     "2.8.13", "server", "O(N) where N is the number of commands to look up", cmd_command, NULL,
     TXN_RUN},
    {"command|list", -2, LS, 0, 0, 0, ACL_SLOW | ACL_CONNECTION, "nondeterministic_output_order",
     NOSPECS, "Get an array of Redis command names", "7.0.0", "server",
     "O(N) where N is the total number of Redis commands", cmd_command, NULL, TXN_RUN},
    {.name = NULL},
};

#define CFG_FLAGS (CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE)
#define CFG_ACL (ACL_ADMIN | ACL_SLOW | ACL_DANGEROUS)
static const struct cmd config_subs[] = {
    {"config|get", -3, CFG_FLAGS, 0, 0, 0, CFG_ACL, "", NOSPECS,
     "Get the values of configuration parameters", "2.0.0", "server",
     "O(N) when N is the number of configuration parameters provided", cmd_config_get, NULL,
     TXN_RUN},
    {"config|help", 2, LS, 0, 0, 0, ACL_SLOW, "", NOSPECS,
     "Show helpful text about the different subcommands", "5.0.0", "server", "O(1)",
     cmd_config_help, NULL, TXN_RUN},
    {"config|resetstat", 2, CFG_FLAGS, 0, 0, 0, CFG_ACL, "", NOSPECS,
     "Reset the stats returned by INFO", "2.0.0", "server", "O(1)", cmd_config_refused, NULL,
     TXN_NONE},
    {"config|rewrite", 2, CFG_FLAGS, 0, 0, 0, CFG_ACL, "", NOSPECS,
     "Rewrite the configuration file with the in memory configuration", "2.8.0", "server", "O(1)",
     cmd_config_refused, NULL, TXN_NONE},
    {"config|set", -4, CFG_FLAGS, 0, 0, 0, CFG_ACL,
     "request_policy:all_nodes response_policy:all_succeeded", NOSPECS,
     "Set configuration parameters to the given values", "2.0.0", "server",
     "O(N) when N is the number of configuration parameters provided", cmd_config_set, NULL,
     TXN_NONE},
    {.name = NULL},
};

#define CL_FLAGS (CMD_NOSCRIPT | CMD_LOADING | CMD_STALE)
#define CL_ACL (ACL_SLOW | ACL_CONNECTION)
#define CL_ADMIN_FLAGS (CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE)
#define CL_ADMIN_ACL (ACL_ADMIN | ACL_SLOW | ACL_DANGEROUS | ACL_CONNECTION)
static const struct cmd client_subs[] = {
    {"client|getname", 2, CL_FLAGS, 0, 0, 0, CL_ACL, "", NOSPECS, "Get the current connection name",
     "2.6.9", "connection", "O(1)", cmd_client, NULL, TXN_RUN},
    {"client|help", 2, LS, 0, 0, 0, CL_ACL, "", NOSPECS,
     "Show helpful text about the different subcommands", "5.0.0", "connection", "O(1)", cmd_client,
     NULL, TXN_RUN},
    {"client|id", 2, CL_FLAGS, 0, 0, 0, CL_ACL, "", NOSPECS,
     "Returns the client ID for the current connection", "5.0.0", "connection", "O(1)", cmd_client,
     NULL, TXN_RUN},
    {"client|info", 2, CL_FLAGS, 0, 0, 0, CL_ACL, "nondeterministic_output", NOSPECS,
     "Returns information about the current client connection.", "6.2.0", "connection", "O(1)",
     cmd_client, NULL, TXN_RUN},
    {"client|kill", -3, CL_ADMIN_FLAGS, 0, 0, 0, CL_ADMIN_ACL, "", NOSPECS,
     "Kill the connection of a client", "2.4.0", "connection",
     "O(N) where N is the number of client connections", cmd_client, NULL, TXN_NONE},
    {"client|list", -2, CL_ADMIN_FLAGS, 0, 0, 0, CL_ADMIN_ACL, "nondeterministic_output", NOSPECS,
     "Get the list of client connections", "2.4.0", "connection",
     "O(N) where N is the number of client connections", cmd_client, NULL, TXN_RUN},
    {"client|no-evict", 3, CL_ADMIN_FLAGS, 0, 0, 0, CL_ADMIN_ACL, "", NOSPECS,
     "Set client eviction mode for the current connection", "7.0.0", "connection", "O(1)",
     cmd_client, NULL, TXN_NONE},
    {"client|no-touch", 3, CL_FLAGS, 0, 0, 0, CL_ACL, "", NOSPECS,
     "Controls whether commands sent by the client will alter the LRU/LFU of the keys they "
     "access.",
     "7.2.0", "connection", "O(1)", cmd_client, NULL, TXN_NONE},
    {"client|setinfo", 4, CL_FLAGS, 0, 0, 0, CL_ACL, "request_policy:all_nodes", NOSPECS,
     "Set client or connection specific info", "7.2.0", "connection", "O(1)", cmd_client, NULL,
     TXN_NONE},
    {"client|setname", 3, CL_FLAGS, 0, 0, 0, CL_ACL, "", NOSPECS, "Set the current connection name",
     "2.6.9", "connection", "O(1)", cmd_client, NULL, TXN_NONE},
    {.name = NULL},
};

static const struct cmd memory_subs[] = {
    {"memory|usage", -3, R, 2, 2, 1, ACL_READ | ACL_SLOW, "", SPECS({NULL, "RO", 2, 0, 1, 0}),
     "Estimate the memory usage of a key", "4.0.0", "server",
     "O(N) where N is the number of samples.", cmd_memory_usage, NULL, TXN_NONE},
    {.name = NULL},
};

#define OBJ_SUB(name, summary, since)                                                              \
    {                                                                                              \
        "object|" name, 3, R, 2, 2, 1, ACL_KEYSPACE | ACL_READ | ACL_SLOW,                         \
            "nondeterministic_output", SPECS({NULL, "RO", 2, 0, 1, 0}), summary, since, "generic", \
            "O(1)", cmd_object_key, NULL, TXN_NONE                                                 \
    }
static const struct cmd object_subs[] = {
    OBJ_SUB("encoding", "Inspect the internal encoding of a Redis object", "2.2.3"),
    OBJ_SUB("freq", "Get the logarithmic access frequency counter of a Redis object", "4.0.0"),
    OBJ_SUB("idletime", "Get the time since a Redis object was last accessed", "2.2.3"),
    OBJ_SUB("refcount", "Get the number of references to the value of the key", "2.2.3"),
    {"object|help", 2, LS, 0, 0, 0, ACL_KEYSPACE | ACL_SLOW, "", NOSPECS,
     "Show helpful text about the different subcommands", "6.2.0", "generic", "O(1)",
     cmd_object_help, NULL, TXN_NONE},
    {.name = NULL},
};

#define SCR_ACL (ACL_SLOW | ACL_SCRIPTING)
static const struct cmd script_subs[] = {
    {"script|exists", -3, CMD_NOSCRIPT, 0, 0, 0, SCR_ACL,
     "request_policy:all_shards response_policy:agg_logical_and", NOSPECS,
     "Check existence of scripts in the script cache.", "2.6.0", "scripting",
     "O(N) with N being the number of scripts to check (so checking a single script is an O(1) "
     "operation).",
     cmd_script, NULL, TXN_RUN},
    {"script|flush", -2, CMD_NOSCRIPT, 0, 0, 0, SCR_ACL,
     "request_policy:all_nodes response_policy:all_succeeded", NOSPECS,
     "Remove all the scripts from the script cache.", "2.6.0", "scripting",
     "O(N) with N being the number of scripts in cache", cmd_script, NULL, TXN_NONE},
    {"script|help", 2, LS, 0, 0, 0, SCR_ACL, "", NOSPECS,
     "Show helpful text about the different subcommands", "5.0.0", "scripting", "O(1)", cmd_script,
     NULL, TXN_RUN},
    {"script|load", 3, CMD_NOSCRIPT | CMD_STALE, 0, 0, 0, SCR_ACL,
     "request_policy:all_nodes response_policy:all_succeeded", NOSPECS,
     "Load the specified Lua script into the script cache.", "2.6.0", "scripting",
     "O(N) with N being the length in bytes of the script body.", cmd_script, NULL, TXN_NONE},
    {.name = NULL},
};

/* ACL (cmd_acl.c): Redis 7.0's rows. Between MULTI and EXEC only WHOAMI and CAT run (they read
 * the connection and the table); the others are refused there (node/DEVIATIONS.md). */
#define ACL_FLAGS (CMD_ADMIN | CMD_NOSCRIPT | LS)
#define ACL_ACL   (ACL_ADMIN | ACL_SLOW | ACL_DANGEROUS)
static const struct cmd acl_subs[] = {
    {"acl|cat", -2, CMD_NOSCRIPT | LS, 0, 0, 0, ACL_SLOW, "", NOSPECS,
     "List the ACL categories or the commands inside a category", "6.0.0", "server",
     "O(1) since the categories and commands are a fixed set.", cmd_acl, NULL, TXN_RUN},
    {"acl|deluser", -3, ACL_FLAGS, 0, 0, 0, ACL_ACL, "", NOSPECS,
     "Remove the specified ACL users and the associated rules", "6.0.0", "server",
     "O(1) amortized time considering the typical user.", cmd_acl, NULL, TXN_NONE},
    {"acl|dryrun", -4, ACL_FLAGS, 0, 0, 0, ACL_ACL, "", NOSPECS,
     "Returns whether the user can execute the given command without executing the command.",
     "7.0.0", "server", "O(1).", cmd_acl, NULL, TXN_NONE},
    {"acl|genpass", -2, CMD_NOSCRIPT | LS, 0, 0, 0, ACL_SLOW, "", NOSPECS,
     "Generate a pseudorandom secure password to use for ACL users", "6.0.0", "server", "O(1)",
     cmd_acl, NULL, TXN_NONE},
    {"acl|getuser", 3, ACL_FLAGS, 0, 0, 0, ACL_ACL, "", NOSPECS,
     "Get the rules for a specific ACL user", "6.0.0", "server",
     "O(N). Where N is the number of password, command and pattern rules that the user has.",
     cmd_acl, NULL, TXN_NONE},
    {"acl|help", 2, LS, 0, 0, 0, ACL_SLOW, "", NOSPECS,
     "Show helpful text about the different subcommands", "6.0.0", "server", "O(1)", cmd_acl, NULL,
     TXN_RUN},
    {"acl|list", 2, ACL_FLAGS, 0, 0, 0, ACL_ACL, "", NOSPECS,
     "List the current ACL rules in ACL config file format", "6.0.0", "server",
     "O(N). Where N is the number of configured users.", cmd_acl, NULL, TXN_NONE},
    {"acl|setuser", -3, ACL_FLAGS, 0, 0, 0, ACL_ACL, "", NOSPECS,
     "Modify or create the rules for a specific ACL user", "6.0.0", "server",
     "O(N). Where N is the number of rules provided.", cmd_acl, NULL, TXN_NONE},
    {"acl|users", 2, ACL_FLAGS, 0, 0, 0, ACL_ACL, "", NOSPECS,
     "List the username of all the configured ACL rules", "6.0.0", "server",
     "O(N). Where N is the number of configured users.", cmd_acl, NULL, TXN_NONE},
    {"acl|whoami", 2, CMD_NOSCRIPT | LS, 0, 0, 0, ACL_SLOW, "", NOSPECS,
     "Return the name of the user associated to the current connection", "6.0.0", "server", "O(1)",
     cmd_acl, NULL, TXN_RUN},
    {.name = NULL},
};

static const struct cmd cmd_table[] = {
    /* strings (cmd_string.c), keyspace (cmd_keyspace.c), transactions (cmd_multi.c): rows
     * generated from Redis 7.0's COMMAND INFO and COMMAND DOCS */
    {"get", 2, R | F, 1, 1, 1, ACL_READ | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}), "Get the value of a key", "1.0.0", "string", "O(1)",
     cmd_get, NULL, TXN_RUN},
    {"getrange", 4, R, 1, 1, 1, ACL_READ | ACL_STRING | ACL_SLOW, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}), "Get a substring of the string stored at a key",
     "2.4.0", "string",
     "O(N) where N is the length of the returned string. The complexity is ultimately determined "
     "by the returned length, but because creating a substring from an existing string is very "
     "cheap, it can be considered O(1) for small strings.",
     cmd_getrange, NULL, TXN_RUN},
    {"substr", 4, R, 1, 1, 1, ACL_READ | ACL_STRING | ACL_SLOW, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}), "Get a substring of the string stored at a key",
     "1.0.0", "string",
     "O(N) where N is the length of the returned string. The complexity is ultimately determined "
     "by the returned length, but because creating a substring from an existing string is very "
     "cheap, it can be considered O(1) for small strings.",
     cmd_getrange, NULL, TXN_RUN},
    {"strlen", 2, R | F, 1, 1, 1, ACL_READ | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RO", 1, 0, 1, 0}), "Get the length of the value stored in a key", "2.2.0",
     "string", "O(1)", cmd_strlen, NULL, TXN_RUN},
    {"mget", -2, R | F, 1, -1, 1, ACL_READ | ACL_STRING | ACL_FAST, "request_policy:multi_shard",
     SPECS({NULL, "RO access", 1, -1, 1, 0}), "Get the values of all the given keys", "1.0.0",
     "string", "O(N) where N is the number of keys to retrieve.", cmd_mget, NULL, TXN_RUN},
    {"set", -3, W | CMD_DENYOOM, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_SLOW, "",
     SPECS({"RW and ACCESS due to the optional `GET` argument", "RW access update variable_flags",
            1, 0, 1, 0}),
     "Set the string value of a key", "1.0.0", "string", "O(1)", cmd_set, NULL, TXN_RUN},
    {"setnx", 3, W | CMD_DENYOOM | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "OW insert", 1, 0, 1, 0}),
     "Set the value of a key, only if the key does not exist", "1.0.0", "string", "O(1)",
     cmd_string_op, NULL, TXN_RUN},
    {"setex", 4, W | CMD_DENYOOM, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_SLOW, "",
     SPECS({NULL, "OW update", 1, 0, 1, 0}), "Set the value and expiration of a key", "2.0.0",
     "string", "O(1)", cmd_setex, NULL, TXN_RUN},
    {"psetex", 4, W | CMD_DENYOOM, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_SLOW, "",
     SPECS({NULL, "OW update", 1, 0, 1, 0}),
     "Set the value and expiration in milliseconds of a key", "2.6.0", "string", "O(1)", cmd_setex,
     NULL, TXN_RUN},
    {"getset", 3, W | CMD_DENYOOM | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RW access update", 1, 0, 1, 0}),
     "Set the string value of a key and return its old value", "1.0.0", "string", "O(1)",
     cmd_getset, NULL, TXN_RUN},
    {"getdel", 2, W | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RW access delete", 1, 0, 1, 0}), "Get the value of a key and delete the key",
     "6.2.0", "string", "O(1)", cmd_string_op, NULL, TXN_RUN},
    {"getex", -2, W | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({"RW and UPDATE because it changes the TTL", "RW access update", 1, 0, 1, 0}),
     "Get the value of a key and optionally set its expiration", "6.2.0", "string", "O(1)",
     cmd_getex, NULL, TXN_RUN},
    {"mset", -3, W | CMD_DENYOOM, 1, -1, 2, ACL_WRITE | ACL_STRING | ACL_SLOW,
     "request_policy:multi_shard response_policy:all_succeeded",
     SPECS({NULL, "OW update", 1, -1, 2, 0}), "Set multiple keys to multiple values", "1.0.1",
     "string", "O(N) where N is the number of keys to set.", cmd_mset, NULL, TXN_RUN},
    {"msetnx", -3, W | CMD_DENYOOM, 1, -1, 2, ACL_WRITE | ACL_STRING | ACL_SLOW,
     "request_policy:multi_shard response_policy:agg_min", SPECS({NULL, "OW insert", 1, -1, 2, 0}),
     "Set multiple keys to multiple values, only if none of the keys exist", "1.0.1", "string",
     "O(N) where N is the number of keys to set.", cmd_mset, NULL, TXN_RUN},
    {"incr", 2, W | CMD_DENYOOM | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RW access update", 1, 0, 1, 0}), "Increment the integer value of a key by one",
     "1.0.0", "string", "O(1)", cmd_incr, NULL, TXN_RUN},
    {"decr", 2, W | CMD_DENYOOM | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RW access update", 1, 0, 1, 0}), "Decrement the integer value of a key by one",
     "1.0.0", "string", "O(1)", cmd_incr, NULL, TXN_RUN},
    {"incrby", 3, W | CMD_DENYOOM | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RW access update", 1, 0, 1, 0}),
     "Increment the integer value of a key by the given amount", "1.0.0", "string", "O(1)",
     cmd_incr, NULL, TXN_RUN},
    {"decrby", 3, W | CMD_DENYOOM | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RW access update", 1, 0, 1, 0}),
     "Decrement the integer value of a key by the given number", "1.0.0", "string", "O(1)",
     cmd_incr, NULL, TXN_RUN},
    {"incrbyfloat", 3, W | CMD_DENYOOM | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RW access update", 1, 0, 1, 0}),
     "Increment the float value of a key by the given amount", "2.6.0", "string", "O(1)",
     cmd_string_op, NULL, TXN_RUN},
    {"append", 3, W | CMD_DENYOOM | F, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_FAST, "",
     SPECS({NULL, "RW insert", 1, 0, 1, 0}), "Append a value to a key", "2.0.0", "string",
     "O(1). The amortized time complexity is O(1) assuming the appended value is small and the "
     "already present value is of any size, since the dynamic string library used by Redis will "
     "double the free space available on every reallocation.",
     cmd_string_op, NULL, TXN_RUN},
    {"setrange", 4, W | CMD_DENYOOM, 1, 1, 1, ACL_WRITE | ACL_STRING | ACL_SLOW, "",
     SPECS({NULL, "RW update", 1, 0, 1, 0}),
     "Overwrite part of a string at key starting at the specified offset", "2.2.0", "string",
     "O(1), not counting the time taken to copy the new string in place. Usually, this string is "
     "very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being "
     "the length of the value argument.",
     cmd_setrange, NULL, TXN_RUN},
    {"setbit", 4, W | CMD_DENYOOM, 1, 1, 1, ACL_WRITE | ACL_BITMAP | ACL_SLOW, "",
     SPECS({NULL, "RW access update", 1, 0, 1, 0}),
     "Sets or clears the bit at offset in the string value stored at key", "2.2.0", "bitmap",
     "O(1)", cmd_setbit, NULL, TXN_RUN},
    {"getbit", 3, R | F, 1, 1, 1, ACL_READ | ACL_BITMAP | ACL_FAST, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}),
     "Returns the bit value at offset in the string value stored at key", "2.2.0", "bitmap", "O(1)",
     cmd_getbit, NULL, TXN_RUN},
    {"bitcount", -2, R, 1, 1, 1, ACL_READ | ACL_BITMAP | ACL_SLOW, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}), "Count set bits in a string", "2.6.0", "bitmap",
     "O(N)", cmd_bitcount, NULL, TXN_RUN},
    {"bitpos", -3, R, 1, 1, 1, ACL_READ | ACL_BITMAP | ACL_SLOW, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}), "Find first bit set or clear in a string", "2.8.7",
     "bitmap", "O(N)", cmd_bitpos, NULL, TXN_RUN},
    {"bitop", -4, W | CMD_DENYOOM, 2, -1, 1, ACL_WRITE | ACL_BITMAP | ACL_SLOW, "",
     SPECS({NULL, "OW update", 2, 0, 1, 0}, {NULL, "RO access", 3, -1, 1, 0}),
     "Perform bitwise operations between strings", "2.6.0", "bitmap", "O(N)", cmd_bitop, NULL,
     TXN_RUN},
    {"del", -2, W, 1, -1, 1, ACL_KEYSPACE | ACL_WRITE | ACL_SLOW,
     "request_policy:multi_shard response_policy:agg_sum", SPECS({NULL, "RM delete", 1, -1, 1, 0}),
     "Delete a key", "1.0.0", "generic",
     "O(N) where N is the number of keys that will be removed. When a key to remove holds a value "
     "other than a string, the individual complexity for this key is O(M) where M is the number of "
     "elements in the list, set, sorted set or hash. Removing a single key that holds a string "
     "value is O(1).",
     cmd_key_op, NULL, TXN_RUN},
    {"unlink", -2, W | F, 1, -1, 1, ACL_KEYSPACE | ACL_WRITE | ACL_FAST,
     "request_policy:multi_shard response_policy:agg_sum", SPECS({NULL, "RM delete", 1, -1, 1, 0}),
     "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non "
     "blocking.",
     "4.0.0", "generic",
     "O(1) for each key removed regardless of its size. Then the command does O(N) work in a "
     "different thread in order to reclaim memory, where N is the number of allocations the "
     "deleted objects where composed of.",
     cmd_key_op, NULL, TXN_RUN},
    {"exists", -2, R | F, 1, -1, 1, ACL_KEYSPACE | ACL_READ | ACL_FAST,
     "request_policy:multi_shard response_policy:agg_sum", SPECS({NULL, "RO", 1, -1, 1, 0}),
     "Determine if a key exists", "1.0.0", "generic",
     "O(N) where N is the number of keys to check.", cmd_key_op, NULL, TXN_RUN},
    {"touch", -2, R | F, 1, -1, 1, ACL_KEYSPACE | ACL_READ | ACL_FAST,
     "request_policy:multi_shard response_policy:agg_sum", SPECS({NULL, "RO", 1, -1, 1, 0}),
     "Alters the last access time of a key(s). Returns the number of existing keys specified.",
     "3.2.1", "generic", "O(N) where N is the number of keys that will be touched.", cmd_key_op,
     NULL, TXN_RUN},
    {"type", 2, R | F, 1, 1, 1, ACL_KEYSPACE | ACL_READ | ACL_FAST, "",
     SPECS({NULL, "RO", 1, 0, 1, 0}), "Determine the type stored at key", "1.0.0", "generic",
     "O(1)", cmd_key_op, NULL, TXN_RUN},
    {"ttl", 2, R | F, 1, 1, 1, ACL_KEYSPACE | ACL_READ | ACL_FAST, "nondeterministic_output",
     SPECS({NULL, "RO access", 1, 0, 1, 0}), "Get the time to live for a key in seconds", "1.0.0",
     "generic", "O(1)", cmd_key_op, NULL, TXN_RUN},
    {"pttl", 2, R | F, 1, 1, 1, ACL_KEYSPACE | ACL_READ | ACL_FAST, "nondeterministic_output",
     SPECS({NULL, "RO access", 1, 0, 1, 0}), "Get the time to live for a key in milliseconds",
     "2.6.0", "generic", "O(1)", cmd_key_op, NULL, TXN_RUN},
    {"expiretime", 2, R | F, 1, 1, 1, ACL_KEYSPACE | ACL_READ | ACL_FAST, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}), "Get the expiration Unix timestamp for a key", "7.0.0",
     "generic", "O(1)", cmd_key_op, NULL, TXN_RUN},
    {"pexpiretime", 2, R | F, 1, 1, 1, ACL_KEYSPACE | ACL_READ | ACL_FAST, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}),
     "Get the expiration Unix timestamp for a key in milliseconds", "7.0.0", "generic", "O(1)",
     cmd_key_op, NULL, TXN_RUN},
    {"persist", 2, W | F, 1, 1, 1, ACL_KEYSPACE | ACL_WRITE | ACL_FAST, "",
     SPECS({NULL, "RW update", 1, 0, 1, 0}), "Remove the expiration from a key", "2.2.0", "generic",
     "O(1)", cmd_key_op, NULL, TXN_RUN},
    {"expire", -3, W | F, 1, 1, 1, ACL_KEYSPACE | ACL_WRITE | ACL_FAST, "",
     SPECS({NULL, "RW update", 1, 0, 1, 0}), "Set a key's time to live in seconds", "1.0.0",
     "generic", "O(1)", cmd_expire, NULL, TXN_RUN},
    {"pexpire", -3, W | F, 1, 1, 1, ACL_KEYSPACE | ACL_WRITE | ACL_FAST, "",
     SPECS({NULL, "RW update", 1, 0, 1, 0}), "Set a key's time to live in milliseconds", "2.6.0",
     "generic", "O(1)", cmd_expire, NULL, TXN_RUN},
    {"expireat", -3, W | F, 1, 1, 1, ACL_KEYSPACE | ACL_WRITE | ACL_FAST, "",
     SPECS({NULL, "RW update", 1, 0, 1, 0}), "Set the expiration for a key as a UNIX timestamp",
     "1.2.0", "generic", "O(1)", cmd_expire, NULL, TXN_RUN},
    {"pexpireat", -3, W | F, 1, 1, 1, ACL_KEYSPACE | ACL_WRITE | ACL_FAST, "",
     SPECS({NULL, "RW update", 1, 0, 1, 0}),
     "Set the expiration for a key as a UNIX timestamp specified in milliseconds", "2.6.0",
     "generic", "O(1)", cmd_expire, NULL, TXN_RUN},
    {"rename", 3, W, 1, 2, 1, ACL_KEYSPACE | ACL_WRITE | ACL_SLOW, "",
     SPECS({NULL, "RW access delete", 1, 0, 1, 0}, {NULL, "OW update", 2, 0, 1, 0}), "Rename a key",
     "1.0.0", "generic", "O(1)", cmd_key_op, NULL, TXN_RUN},
    {"renamenx", 3, W | F, 1, 2, 1, ACL_KEYSPACE | ACL_WRITE | ACL_FAST, "",
     SPECS({NULL, "RW access delete", 1, 0, 1, 0}, {NULL, "OW insert", 2, 0, 1, 0}),
     "Rename a key, only if the new key does not exist", "1.0.0", "generic", "O(1)", cmd_key_op,
     NULL, TXN_RUN},
    {"copy", -3, W | CMD_DENYOOM, 1, 2, 1, ACL_KEYSPACE | ACL_WRITE | ACL_SLOW, "",
     SPECS({NULL, "RO access", 1, 0, 1, 0}, {NULL, "OW update", 2, 0, 1, 0}), "Copy a key", "6.2.0",
     "generic",
     "O(N) worst case for collections, where N is the number of nested items. O(1) for string "
     "values.",
     cmd_copy, NULL, TXN_RUN},
    {"move", 3, W | F, 1, 1, 1, ACL_KEYSPACE | ACL_WRITE | ACL_FAST, "",
     SPECS({NULL, "RW access update", 1, 0, 1, 0}), "Move a key to another database", "1.0.0",
     "generic", "O(1)", cmd_move, NULL, TXN_RUN},
    {"keys", 2, R, 0, 0, 0, ACL_KEYSPACE | ACL_READ | ACL_SLOW | ACL_DANGEROUS,
     "request_policy:all_shards nondeterministic_output_order", NOSPECS,
     "Find all keys matching the given pattern", "1.0.0", "generic",
     "O(N) with N being the number of keys in the database, under the assumption that the key "
     "names in the database and the given pattern have limited length.",
     cmd_keys, NULL, TXN_NONE},
    {"scan", -2, R, 0, 0, 0, ACL_KEYSPACE | ACL_READ | ACL_SLOW,
     "nondeterministic_output request_policy:special", NOSPECS,
     "Incrementally iterate the keys space", "2.8.0", "generic",
     "O(1) for every call. O(N) for a complete iteration, including enough command calls for the "
     "cursor to return back to 0. N is the number of elements inside the collection.",
     cmd_scan, NULL, TXN_NONE},
    {"randomkey", 1, R, 0, 0, 0, ACL_KEYSPACE | ACL_READ | ACL_SLOW,
     "request_policy:all_shards nondeterministic_output", NOSPECS,
     "Return a random key from the keyspace", "1.0.0", "generic", "O(1)", cmd_randomkey, NULL,
     TXN_NONE},
    {"dbsize", 1, R | F, 0, 0, 0, ACL_KEYSPACE | ACL_READ | ACL_FAST,
     "request_policy:all_shards response_policy:agg_sum", NOSPECS,
     "Return the number of keys in the selected database", "1.0.0", "server", "O(1)", cmd_key_op,
     NULL, TXN_RUN},
    {"flushdb", -1, W, 0, 0, 0, ACL_KEYSPACE | ACL_WRITE | ACL_SLOW | ACL_DANGEROUS,
     "request_policy:all_shards response_policy:all_succeeded", NOSPECS,
     "Remove all keys from the current database", "1.0.0", "server",
     "O(N) where N is the number of keys in the selected database", cmd_flush, NULL, TXN_RUN},
    {"flushall", -1, W, 0, 0, 0, ACL_KEYSPACE | ACL_WRITE | ACL_SLOW | ACL_DANGEROUS,
     "request_policy:all_shards response_policy:all_succeeded", NOSPECS,
     "Remove all keys from all databases", "1.0.0", "server",
     "O(N) where N is the total number of keys in all databases", cmd_flush, NULL, TXN_RUN},
    {"swapdb", 3, W | F, 0, 0, 0, ACL_KEYSPACE | ACL_WRITE | ACL_FAST | ACL_DANGEROUS, "", NOSPECS,
     "Swaps two Redis databases", "4.0.0", "server",
     "O(N) where N is the count of clients watching or blocking on keys from both databases.",
     cmd_swapdb, NULL, TXN_RUN},
    {"multi", 1, CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | F | CMD_ALLOW_BUSY, 0, 0, 0,
     ACL_FAST | ACL_TRANSACTION, "", NOSPECS, "Mark the start of a transaction block", "1.2.0",
     "transactions", "O(1)", cmd_multi, NULL, TXN_CONTROL},
    {"exec", 1, CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | CMD_SKIP_SLOWLOG, 0, 0, 0,
     ACL_SLOW | ACL_TRANSACTION, "", NOSPECS, "Execute all commands issued after MULTI", "1.2.0",
     "transactions", "Depends on commands in the transaction", cmd_exec, NULL, TXN_CONTROL},
    {"discard", 1, CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | F | CMD_ALLOW_BUSY, 0, 0, 0,
     ACL_FAST | ACL_TRANSACTION, "", NOSPECS, "Discard all commands issued after MULTI", "2.0.0",
     "transactions", "O(N), when N is the number of queued commands", cmd_discard, NULL,
     TXN_CONTROL},
    {"watch", -2, CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | F | CMD_ALLOW_BUSY, 1, -1, 1,
     ACL_FAST | ACL_TRANSACTION, "", SPECS({NULL, "RO", 1, -1, 1, 0}),
     "Watch the given keys to determine execution of the MULTI/EXEC block", "2.2.0", "transactions",
     "O(1) for every key.", cmd_watch, NULL, TXN_CONTROL},
    {"unwatch", 1, CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | F | CMD_ALLOW_BUSY, 0, 0, 0,
     ACL_FAST | ACL_TRANSACTION, "", NOSPECS, "Forget about all watched keys", "2.2.0",
     "transactions", "O(1)", cmd_unwatch, NULL, TXN_RUN},

/* scripting (cmd_script.c): the scripts of redis-py's Lock only; the key specs (keynum)
 * are not carried (node/DEVIATIONS.md D1) */
#define EVAL_FLAGS                                                                                 \
    (CMD_NOSCRIPT | CMD_STALE | CMD_SKIP_MONITOR | CMD_NO_MANDATORY_KEYS | CMD_MOVABLE_KEYS)
    {"eval", -3, EVAL_FLAGS, 0, 0, 0, SCR_ACL, "", NOSPECS, "Execute a Lua script server side",
     "2.6.0", "scripting", "Depends on the script that is executed.", cmd_eval, NULL, TXN_RUN},
    {"evalsha", -3, EVAL_FLAGS, 0, 0, 0, SCR_ACL, "", NOSPECS, "Execute a Lua script server side",
     "2.6.0", "scripting", "Depends on the script that is executed.", cmd_evalsha, NULL, TXN_RUN},
    {"script", -2, 0, 0, 0, 0, ACL_SLOW, "", NOSPECS,
     "A container for Lua scripts management commands", "2.6.0", "scripting",
     "Depends on subcommand.", NULL, script_subs, TXN_NONE},

    /* connection and server (cmd_server.c) */
    {"ping", -1, F, 0, 0, 0, ACL_FAST | ACL_CONNECTION,
     "request_policy:all_shards response_policy:all_succeeded", NOSPECS, "Ping the server", "1.0.0",
     "connection", "O(1)", cmd_ping, NULL, TXN_RUN},
    {"echo", 2, LS | F, 0, 0, 0, ACL_FAST | ACL_CONNECTION, "", NOSPECS, "Echo the given string",
     "1.0.0", "connection", "O(1)", cmd_echo, NULL, TXN_RUN},
    {"select", 2, LS | F, 0, 0, 0, ACL_FAST | ACL_CONNECTION, "", NOSPECS,
     "Change the selected database for the current connection", "1.0.0", "connection", "O(1)",
     cmd_select, NULL, TXN_RUN},
    {"quit", -1, CONN_FLAGS, 0, 0, 0, ACL_FAST | ACL_CONNECTION, "", NOSPECS,
     "Close the connection", "1.0.0", "connection", "O(1)", cmd_quit, NULL, TXN_CONTROL},
    {"hello", -1, CONN_FLAGS, 0, 0, 0, ACL_FAST | ACL_CONNECTION, "", NOSPECS,
     "Handshake with Redis", "6.0.0", "connection", "O(1)", cmd_hello, NULL, TXN_NONE},
    {"auth", -2, CONN_FLAGS, 0, 0, 0, ACL_FAST | ACL_CONNECTION, "", NOSPECS,
     "Authenticate to the server", "1.0.0", "connection",
     "O(N) where N is the number of passwords defined for the user", cmd_auth, NULL, TXN_NONE},
    {"reset", 1, CONN_FLAGS, 0, 0, 0, ACL_FAST | ACL_CONNECTION, "", NOSPECS,
     "Reset the connection", "6.2.0", "connection", "O(1)", cmd_reset, NULL, TXN_CONTROL},
    {"client", -2, 0, 0, 0, 0, ACL_SLOW, "", NOSPECS, "A container for client connection commands",
     "2.4.0", "connection", "Depends on subcommand.", NULL, client_subs, TXN_NONE},
    {"info", -1, LS, 0, 0, 0, ACL_SLOW | ACL_DANGEROUS,
     "nondeterministic_output request_policy:all_shards response_policy:special", NOSPECS,
     "Get information and statistics about the server", "1.0.0", "server", "O(1)", cmd_info, NULL,
     TXN_RUN},
    {"time", 1, LS | F, 0, 0, 0, ACL_FAST, "nondeterministic_output", NOSPECS,
     "Return the current server time", "2.6.0", "server", "O(1)", cmd_time, NULL, TXN_RUN},
    {"config", -2, 0, 0, 0, 0, ACL_SLOW, "", NOSPECS,
     "A container for server configuration commands", "2.0.0", "server", "Depends on subcommand.",
     NULL, config_subs, TXN_NONE},
    {"memory", -2, 0, 0, 0, 0, ACL_SLOW, "", NOSPECS, "A container for memory diagnostics commands",
     "4.0.0", "server", "Depends on subcommand.", NULL, memory_subs, TXN_NONE},
    {"object", -2, 0, 0, 0, 0, ACL_SLOW, "", NOSPECS,
     "A container for object introspection commands", "2.2.3", "generic", "Depends on subcommand.",
     NULL, object_subs, TXN_NONE},
    {"acl", -2, 0, 0, 0, 0, ACL_SLOW, "", NOSPECS, "A container for Access List Control commands ",
     "6.0.0", "server", "Depends on subcommand.", NULL, acl_subs, TXN_NONE},
    {"raftkv.member", -2, CMD_ADMIN | CMD_NOSCRIPT | LS, 0, 0, 0,
     ACL_ADMIN | ACL_SLOW | ACL_DANGEROUS, "nondeterministic_output", NOSPECS,
     "Lists or changes the members of the cluster (raftkv: LIST, ADD ID, PROMOTE ID, REMOVE ID)",
     "7.0.0", "cluster", "O(N) where N is the number of members", cmd_member, NULL, TXN_NONE},
    {"command", -1, LS, 0, 0, 0, ACL_SLOW | ACL_CONNECTION, "nondeterministic_output_order",
     NOSPECS, "Get array of Redis command details", "2.8.13", "server",
     "O(N) where N is the total number of Redis commands", cmd_command, command_subs, TXN_RUN},
    {"raftkv.backup", -2, CMD_ADMIN | CMD_NOSCRIPT | CMD_NO_MULTI, 0, 0, 0,
     ACL_ADMIN | ACL_SLOW | ACL_DANGEROUS, "nondeterministic_output", NOSPECS,
     "Stream a consistent copy of the state machine at a committed index (raftkv-cli backup)",
     "0.1.0", "server", "O(1) to START; O(chunk) per NEXT; O(N) for a whole backup", cmd_backup,
     NULL, TXN_NONE},
};

#define CMD_COUNT (sizeof(cmd_table) / sizeof(cmd_table[0]))

static const struct cmd *find_in(const struct cmd *rows, size_t n, const uint8_t *name,
                                 uint64_t len, size_t prefix)
{
    for (size_t i = 0; i < n && rows[i].name != NULL; i++) {
        const char *nm = rows[i].name + prefix;
        if (strlen(nm) == len && strncasecmp(nm, (const char *)name, len) == 0)
            return &rows[i];
    }
    return NULL;
}

const struct cmd *cmd_lookup(const uint8_t *name, uint64_t len)
{
    return find_in(cmd_table, CMD_COUNT, name, len, 0);
}

static const struct cmd *sub_lookup(const struct cmd *parent, const struct resp_arg *a)
{
    return find_in(parent->subs, SIZE_MAX, a->ptr, a->len, strlen(parent->name) + 1);
}

/* The row a request runs: the command, or its subcommand for a container with argc >= 2
 * (Redis's lookupCommand). NULL: unknown. */
static const struct cmd *lookup_request(const struct resp_arg *a, uint32_t argc)
{
    const struct cmd *c = cmd_lookup(a[0].ptr, a[0].len);
    if (c == NULL || c->subs == NULL || argc < 2)
        return c;
    return sub_lookup(c, &a[1]);
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatch                                                                                   */

static void reply_unknown(struct item *it, const struct resp_arg *a, uint32_t argc)
{
    /* Redis's commandCheckExistence: the arguments quoted until 128 characters are used. */
    char args[512] = "", word[132];
    size_t k = 0;
    for (uint32_t i = 1; i < argc && k < 128; i++) {
        int room = 128 - (int)k;
        struct resp_arg cut = {a[i].ptr, a[i].len < (uint64_t)room ? a[i].len : (uint64_t)room};
        arg_quote(word, sizeof(word), &cut);
        int w = snprintf(args + k, sizeof(args) - k, "'%.*s' ", (int)cut.len, word);
        if (w < 0)
            break;
        k += (size_t)w;
        if (k >= sizeof(args))
            k = sizeof(args) - 1;
    }
    arg_quote(word, sizeof(word), &a[0]);
    add_errorf(it, "ERR unknown command '%.128s', with args beginning with: %s", word, args);
}

void cmd_arity_error(struct item *it, const struct cmd *cmd)
{
    add_errorf(it, "ERR wrong number of arguments for '%s' command", cmd->name);
}

static bool arity_ok(const struct cmd *cmd, uint32_t argc)
{
    return (cmd->arity > 0 && (uint32_t)cmd->arity == argc) ||
           (cmd->arity < 0 && argc >= (uint32_t)-cmd->arity);
}

const struct cmd *cmd_lookup_request(const struct resp_arg *a, uint32_t argc)
{
    return lookup_request(a, argc);
}

bool cmd_arity_ok(const struct cmd *cmd, uint32_t argc)
{
    return arity_ok(cmd, argc);
}

void cmd_dispatch(struct node *n, struct client *c, struct item *it, const struct resp_request *rq)
{
    const struct resp_arg *a = rq->args;
    uint32_t argc = rq->argc;
    const struct cmd *cmd = lookup_request(a, argc);
    if (cmd == NULL) {
        const struct cmd *parent = cmd_lookup(a[0].ptr, a[0].len);
        if (parent != NULL && parent->subs != NULL) {
            char sub[132], name[32];
            arg_quote(sub, sizeof(sub), &a[1]);
            snprintf(name, sizeof(name), "%s", parent->name);
            for (char *p = name; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            add_errorf(it, "ERR unknown subcommand '%.128s'. Try %s HELP.", sub, name);
        } else {
            reply_unknown(it, a, argc);
        }
        n->stats.total_errors++;
        c->last_cmd = NULL;
        c->multi_dirty |= c->in_multi; /* Redis's flagTransaction: EXEC will abort */
        return;
    }
    c->last_cmd = cmd->name;
    it->cmd = cmd->name;
    if (!c->acl_init)
        acl_client_reset(n, c);
    if (!arity_ok(cmd, argc)) {
        if (cmd->proc == cmd_exec) {
            /* Redis's execCommandAbort (in MULTI or not): the transaction goes, and the error
             * says why. */
            multi_reset(c);
            add_errorf(it,
                       "EXECABORT Transaction discarded because of: wrong number of "
                       "arguments for '%s' command",
                       cmd->name);
        } else {
            cmd_arity_error(it, cmd);
        }
        it->rejected = true;
        n->stats.total_errors++;
        c->multi_dirty |= c->in_multi;
        return;
    }
    if (!c->authed && !(cmd->flags & CMD_NO_AUTH)) {
        if (cmd->proc == cmd_exec) {
            multi_reset(c);
            add_error(it, "EXECABORT Transaction discarded because of: NOAUTH Authentication "
                          "required.");
        } else {
            add_error(it, "NOAUTH Authentication required.");
        }
        it->rejected = true;
        n->stats.total_errors++;
        c->multi_dirty |= c->in_multi;
        return;
    }
    char noperm[160];
    int acl = acl_check(n, c, cmd, a, argc, noperm, sizeof(noperm));
    if (acl == ACL_CHECK_GONE) {
        /* Redis frees the clients of a deleted user: the connection closes. */
        it->close_after = true;
        c->no_input = true;
        return;
    }
    if (acl == ACL_CHECK_DENIED) {
        if (cmd->proc == cmd_exec) {
            multi_reset(c);
            add_errorf(it, "EXECABORT Transaction discarded because of: %s", noperm);
        } else {
            add_error(it, noperm);
        }
        it->rejected = true; /* Redis counts a NOPERM in rejected_calls */
        n->stats.total_errors++;
        c->multi_dirty |= c->in_multi;
        return;
    }
    it->is_read = !(cmd->flags & CMD_WRITE);
    if (c->in_multi && cmd->txn != TXN_CONTROL) {
        /* Queued (cmd_multi.c): a data command's handler queues its op; PING, ECHO, SELECT
         * answer now and their reply waits for EXEC; anything else is an error in EXEC's
         * reply (node/DEVIATIONS.md). */
        if (cmd->txn == TXN_RUN) {
            cmd->proc(n, c, it, a, argc);
            multi_queued(n, c, it);
        } else {
            char text[160];
            snprintf(text, sizeof(text), "ERR '%s' inside MULTI is not supported by raftkv",
                     cmd->name);
            multi_queue_error(n, c, it, text);
        }
        return;
    }
    cmd->proc(n, c, it, a, argc);
}

/* ------------------------------------------------------------------------------------------ */
/* COMMAND                                                                                    */

static const char *const flag_names[] = {
    "write", "readonly", "denyoom", "admin", "pubsub", "noscript", "blocking", "loading",
    "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth", "may_replicate",
    "sentinel", "only_sentinel", "no_mandatory_keys", "protected", "no_async_loading",
    "no_multi", "movablekeys", "allow_busy"};

static const char *const acl_names[] = {
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
    "connection", "transaction", "scripting"};

static int bits(uint32_t v)
{
    int k = 0;
    for (; v != 0; v &= v - 1)
        k++;
    return k;
}

/* Words of a space-separated list: count, or the i-th into out. */
static int words(const char *s, int want, char *out, size_t cap)
{
    int k = 0;
    while (*s != 0) {
        while (*s == ' ')
            s++;
        if (*s == 0)
            break;
        const char *e = strchr(s, ' ');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (k == want && out != NULL)
            snprintf(out, cap, "%.*s", (int)len, s);
        k++;
        s += len;
    }
    return k;
}

static void add_status_set(struct item *it, uint32_t mask, const char *const *names, size_t n,
                           const char *prefix)
{
    add_set(it, bits(mask));
    for (size_t i = 0; i < n; i++)
        if (mask & (1u << i)) {
            char w[48];
            snprintf(w, sizeof(w), "%s%s", prefix, names[i]);
            add_simple(it, w);
        }
}

static void add_keyspec(struct item *it, const struct cmd_keyspec *ks)
{
    add_map(it, ks->notes ? 4 : 3);
    if (ks->notes) {
        add_bulk_str(it, "notes");
        add_bulk_str(it, ks->notes);
    }
    add_bulk_str(it, "flags");
    int nf = words(ks->flags, -1, NULL, 0);
    add_set(it, nf);
    for (int i = 0; i < nf; i++) {
        char w[32];
        words(ks->flags, i, w, sizeof(w));
        add_simple(it, w);
    }
    add_bulk_str(it, "begin_search");
    add_map(it, 2);
    add_bulk_str(it, "type");
    add_bulk_str(it, "index");
    add_bulk_str(it, "spec");
    add_map(it, 1);
    add_bulk_str(it, "index");
    add_integer(it, ks->index);
    add_bulk_str(it, "find_keys");
    add_map(it, 2);
    add_bulk_str(it, "type");
    add_bulk_str(it, "range");
    add_bulk_str(it, "spec");
    add_map(it, 3);
    add_bulk_str(it, "lastkey");
    add_integer(it, ks->lastkey);
    add_bulk_str(it, "keystep");
    add_integer(it, ks->keystep);
    add_bulk_str(it, "limit");
    add_integer(it, ks->limit);
}

static size_t subs_count(const struct cmd *cmd)
{
    size_t k = 0;
    while (cmd->subs != NULL && cmd->subs[k].name != NULL)
        k++;
    return k;
}

/* Redis's addReplyCommandInfo: ten fields. Bounded recursion: subcommands have none. */
static void add_command_info(struct item *it, const struct cmd *cmd)
{
    add_array(it, 10);
    add_bulk_str(it, cmd->name);
    add_integer(it, cmd->arity);
    add_status_set(it, cmd->flags, flag_names, sizeof(flag_names) / sizeof(flag_names[0]), "");
    add_integer(it, cmd->first_key);
    add_integer(it, cmd->last_key);
    add_integer(it, cmd->key_step);
    add_status_set(it, cmd->acl, acl_names, sizeof(acl_names) / sizeof(acl_names[0]), "@");
    int nt = words(cmd->tips, -1, NULL, 0);
    add_set(it, nt);
    for (int i = 0; i < nt; i++) {
        char w[64];
        words(cmd->tips, i, w, sizeof(w));
        add_bulk_str(it, w);
    }
    add_set(it, cmd->n_specs);
    for (int i = 0; i < cmd->n_specs; i++)
        add_keyspec(it, &cmd->specs[i]);
    size_t ns = subs_count(cmd);
    if (ns == 0) {
        add_set(it, 0);
        return;
    }
    add_array(it, (int64_t)ns);
    for (size_t i = 0; i < ns; i++)
        add_command_info(it, &cmd->subs[i]);
}

/* COMMAND DOCS: summary, since, group, complexity (and subcommands); raftkv does not carry
 * Redis's argument descriptions (node/DEVIATIONS.md). */
static void add_command_docs(struct item *it, const struct cmd *cmd)
{
    size_t ns = subs_count(cmd);
    add_bulk_str(it, cmd->name);
    add_map(it, ns > 0 ? 5 : 4);
    add_bulk_str(it, "summary");
    add_bulk_str(it, cmd->summary);
    add_bulk_str(it, "since");
    add_bulk_str(it, cmd->since);
    add_bulk_str(it, "group");
    add_bulk_str(it, cmd->group);
    add_bulk_str(it, "complexity");
    add_bulk_str(it, cmd->complexity);
    if (ns > 0) {
        add_bulk_str(it, "subcommands");
        add_map(it, (int64_t)ns);
        for (size_t i = 0; i < ns; i++)
            add_command_docs(it, &cmd->subs[i]);
    }
}

static size_t total_count(void)
{
    return CMD_COUNT;
}

/* A command or subcommand by its full name ("config|get"), as COMMAND INFO and DOCS take it. */
static const struct cmd *lookup_fullname(const struct resp_arg *a)
{
    const uint8_t *bar = memchr(a->ptr, '|', a->len);
    if (bar == NULL)
        return cmd_lookup(a->ptr, a->len);
    const struct cmd *parent = cmd_lookup(a->ptr, (uint64_t)(bar - a->ptr));
    if (parent == NULL || parent->subs == NULL)
        return NULL;
    struct resp_arg sub = {bar + 1, a->len - (uint64_t)(bar - a->ptr) - 1};
    return sub_lookup(parent, &sub);
}

static void command_list(struct item *it, const struct resp_arg *a, uint32_t argc)
{
    /* COMMAND LIST [FILTERBY MODULE name | ACLCAT cat | PATTERN pattern] */
    int mode = 0; /* 0 all, 1 module, 2 aclcat, 3 pattern */
    if (argc == 5 && arg_is(&a[2], "FILTERBY")) {
        mode = arg_is(&a[3], "MODULE") ? 1 : arg_is(&a[3], "ACLCAT") ? 2
                                         : arg_is(&a[3], "PATTERN") ? 3
                                                                    : -1;
    } else if (argc != 2) {
        mode = -1;
    }
    if (mode < 0) {
        add_error(it, "ERR syntax error");
        return;
    }
    uint32_t cat = 0;
    uint8_t pat[256];
    size_t pat_len = 0;
    if (mode == 3) {
        /* Redis matches the pattern without case; the names are lower case. */
        for (; pat_len < a[4].len && pat_len < sizeof(pat); pat_len++)
            pat[pat_len] = (uint8_t)tolower(a[4].ptr[pat_len]);
    }
    if (mode == 2) {
        for (size_t i = 0; i < sizeof(acl_names) / sizeof(acl_names[0]); i++)
            if (arg_is(&a[4], acl_names[i]))
                cat = 1u << i;
    }
    /* Two passes over the rows: count, then write. */
    for (int pass = 0; pass < 2; pass++) {
        int64_t k = 0;
        for (size_t i = 0; i < CMD_COUNT; i++) {
            const struct cmd *rows[1 + 16];
            size_t nrows = 0;
            rows[nrows++] = &cmd_table[i];
            for (size_t j = 0; j < subs_count(&cmd_table[i]) && nrows < 17; j++)
                rows[nrows++] = &cmd_table[i].subs[j];
            for (size_t j = 0; j < nrows; j++) {
                const struct cmd *r = rows[j];
                bool match = mode == 0 || (mode == 2 && (r->acl & cat)) ||
                             (mode == 3 && glob_match(pat, pat_len, (const uint8_t *)r->name,
                                                    strlen(r->name)));
                if (!match)
                    continue;
                k++;
                if (pass == 1)
                    add_bulk_str(it, r->name);
            }
        }
        if (pass == 0)
            add_array(it, k);
    }
}

bool cmd_rows_all(bool (*fn)(void *ctx, const struct cmd *row), void *ctx)
{
    for (size_t i = 0; i < CMD_COUNT; i++) {
        if (!fn(ctx, &cmd_table[i]))
            return false;
        for (size_t j = 0; j < subs_count(&cmd_table[i]); j++)
            if (!fn(ctx, &cmd_table[i].subs[j]))
                return false;
    }
    return true;
}

void cmd_list_category(struct item *it, uint32_t mask)
{
    for (int pass = 0; pass < 2; pass++) {
        int64_t k = 0;
        for (size_t i = 0; i < CMD_COUNT; i++) {
            const struct cmd *r = &cmd_table[i];
            if (r->acl & mask) {
                k++;
                if (pass == 1)
                    add_bulk_str(it, r->name);
            }
            for (size_t j = 0; j < subs_count(r); j++)
                if (r->subs[j].acl & mask) {
                    k++;
                    if (pass == 1)
                        add_bulk_str(it, r->subs[j].name);
                }
        }
        if (pass == 0)
            add_array(it, k);
    }
}

/* COMMAND GETKEYS cmd args...: the keys from the row's first/last/step, as Redis's legacy range
 * (every raftkv command's keys fit it). */
static void command_getkeys(struct item *it, const struct resp_arg *a, uint32_t argc)
{
    const struct resp_arg *ca = a + 2;
    uint32_t cargc = argc - 2;
    const struct cmd *cmd = lookup_request(ca, cargc);
    if (cmd == NULL) {
        add_error(it, "ERR Invalid command specified");
        return;
    }
    if (cmd->first_key == 0) {
        add_error(it, "ERR The command has no key arguments");
        return;
    }
    if (!arity_ok(cmd, cargc)) {
        add_error(it, "ERR Invalid number of arguments specified for command");
        return;
    }
    int last = cmd->last_key < 0 ? (int)cargc + cmd->last_key : cmd->last_key;
    int64_t k = 0;
    for (int i = cmd->first_key; i <= last && i < (int)cargc; i += cmd->key_step)
        k++;
    add_array(it, k);
    for (int i = cmd->first_key; i <= last && i < (int)cargc; i += cmd->key_step)
        add_bulk(it, ca[i].ptr, ca[i].len);
}

static const char *const command_help[] = {
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
};

void cmd_command(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                 uint32_t argc)
{
    (void)n;
    (void)c;
    if (argc == 1) {
        add_array(it, (int64_t)total_count());
        for (size_t i = 0; i < CMD_COUNT; i++)
            add_command_info(it, &cmd_table[i]);
    } else if (arg_is(&a[1], "COUNT")) {
        add_integer(it, (int64_t)total_count());
    } else if (arg_is(&a[1], "INFO")) {
        if (argc == 2) {
            add_array(it, (int64_t)total_count());
            for (size_t i = 0; i < CMD_COUNT; i++)
                add_command_info(it, &cmd_table[i]);
            return;
        }
        add_array(it, argc - 2);
        for (uint32_t i = 2; i < argc; i++) {
            const struct cmd *cmd = lookup_fullname(&a[i]);
            if (cmd != NULL)
                add_command_info(it, cmd);
            else
                add_null(it);
        }
    } else if (arg_is(&a[1], "DOCS")) {
        if (argc == 2) {
            add_map(it, (int64_t)total_count());
            for (size_t i = 0; i < CMD_COUNT; i++)
                add_command_docs(it, &cmd_table[i]);
            return;
        }
        int64_t k = 0;
        for (uint32_t i = 2; i < argc; i++)
            k += lookup_fullname(&a[i]) != NULL;
        add_map(it, k);
        for (uint32_t i = 2; i < argc; i++) {
            const struct cmd *cmd = lookup_fullname(&a[i]);
            if (cmd != NULL)
                add_command_docs(it, cmd);
        }
    } else if (arg_is(&a[1], "LIST")) {
        command_list(it, a, argc);
    } else if (arg_is(&a[1], "GETKEYS")) {
        command_getkeys(it, a, argc);
    } else if (arg_is(&a[1], "HELP")) {
        size_t nh = sizeof(command_help) / sizeof(command_help[0]);
        add_array(it, (int64_t)nh);
        for (size_t i = 0; i < nh; i++)
            add_simple(it, command_help[i]);
    } else {
        char sub[132];
        arg_quote(sub, sizeof(sub), &a[1]);
        add_errorf(it, "ERR unknown subcommand '%.128s'. Try COMMAND HELP.", sub);
    }
}
