/*
 * cmd_script.c — EVAL, EVALSHA and SCRIPT for exactly the Lua scripts of redis-py's Lock
 * (release, extend, reacquire; redis/lock.py of redis-py 4.x), so that Lock(timeout=...) works
 * unchanged. raftkv has no Lua: each script is recognized by its exact text (EVAL, SCRIPT LOAD)
 * or its SHA1 (EVALSHA) and run as the one state-machine op that does what it does
 * (core/kv/kv.h): release = DELIFEQ key token; reacquire = PEXPIREIFEQ key token ms;
 * extend = PEXPIREIFEQ XX [ADD] key token ms (XX: "if expiration < 0 then return 0"; ADD when
 * ARGV[3] is "0": the time is added to the remaining TTL). Each is one log entry, atomic as the
 * script is on Redis. Any other script: an error (node/DEVIATIONS.md).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "server.h"

enum { LOCK_RELEASE, LOCK_EXTEND, LOCK_REACQUIRE, LOCK_SCRIPTS };

static const struct {
    const char *sha, *text;
} scripts[LOCK_SCRIPTS] = {
    [LOCK_RELEASE] = {"c3f8721cbb97f72bc19e972846bd7aaf91901658",
                      "\n        local token = redis.call('get', KEYS[1])\n"
                      "        if not token or token ~= ARGV[1] then\n"
                      "            return 0\n"
                      "        end\n"
                      "        redis.call('del', KEYS[1])\n"
                      "        return 1\n    "},
    [LOCK_EXTEND] = {"a4e8783852e6b949f9ef3a97212805108459a890",
                     "\n        local token = redis.call('get', KEYS[1])\n"
                     "        if not token or token ~= ARGV[1] then\n"
                     "            return 0\n"
                     "        end\n"
                     "        local expiration = redis.call('pttl', KEYS[1])\n"
                     "        if not expiration then\n"
                     "            expiration = 0\n"
                     "        end\n"
                     "        if expiration < 0 then\n"
                     "            return 0\n"
                     "        end\n\n"
                     "        local newttl = ARGV[2]\n"
                     "        if ARGV[3] == \"0\" then\n"
                     "            newttl = ARGV[2] + expiration\n"
                     "        end\n"
                     "        redis.call('pexpire', KEYS[1], newttl)\n"
                     "        return 1\n    "},
    [LOCK_REACQUIRE] = {"1cac51482acf5858da00f6d685d68f886cd6b6b2",
                        "\n        local token = redis.call('get', KEYS[1])\n"
                        "        if not token or token ~= ARGV[1] then\n"
                        "            return 0\n"
                        "        end\n"
                        "        redis.call('pexpire', KEYS[1], ARGV[2])\n"
                        "        return 1\n    "},
};

static int by_text(const struct resp_arg *a)
{
    for (int i = 0; i < LOCK_SCRIPTS; i++)
        if (a->len == strlen(scripts[i].text) && memcmp(a->ptr, scripts[i].text, a->len) == 0)
            return i;
    return -1;
}

static int by_sha(const struct resp_arg *a)
{
    for (int i = 0; i < LOCK_SCRIPTS; i++)
        if (a->len == 40 && strncasecmp((const char *)a->ptr, scripts[i].sha, 40) == 0)
            return i;
    return -1;
}

/* Runs script s with a[2] = numkeys, then keys and args (Redis's evalGenericCommand checks). */
static void run(struct node *n, struct client *c, struct item *it, int s, bool eval,
                const struct resp_arg *a, uint32_t argc)
{
    int64_t numkeys = 0;
    if (!arg_int64(&a[2], &numkeys)) {
        add_error(it, "ERR value is not an integer or out of range");
        return;
    }
    if (numkeys > (int64_t)argc - 3) {
        add_error(it, "ERR Number of keys can't be greater than number of args");
        return;
    }
    if (numkeys < 0) {
        add_error(it, "ERR Number of keys can't be negative");
        return;
    }
    if (s < 0) {
        add_error(it, eval ? "ERR raftkv runs no Lua but the scripts of redis-py's Lock "
                             "(node/DEVIATIONS.md)"
                           : "NOSCRIPT No matching script. Please use EVAL.");
        return;
    }
    uint32_t nargs = argc - 3 - (uint32_t)numkeys;
    uint32_t want = s == LOCK_RELEASE ? 1 : s == LOCK_EXTEND ? 3 : 2;
    if (numkeys != 1 || nargs != want) {
        add_errorf(it,
                   "ERR raftkv runs this script (redis-py's Lock) with 1 key and %u "
                   "arguments only",
                   want);
        return;
    }
    if (!acl_script_ok(n, c, it, scripts[s].sha, scripts[s].text))
        return;
    const struct resp_arg *key = &a[3], *argv = &a[4];
    n->kargs[0] = (struct kv_arg){.p = key->len ? key->ptr : NULL, .len = (uint32_t)key->len};
    n->kargs[1] =
        (struct kv_arg){.p = argv[0].len ? argv[0].ptr : NULL, .len = (uint32_t)argv[0].len};
    struct kv_op2 op = {.code = KV_C_DELIFEQ, .db = cur_db(c), .argc = 2, .argv = n->kargs};
    if (s != LOCK_RELEASE) {
        if (!arg_int64(&argv[1], &op.num)) {
            add_error(it, "ERR value is not an integer or out of range");
            return;
        }
        op.code = KV_C_PEXPIREIFEQ;
        if (s == LOCK_EXTEND)
            op.flags = (uint16_t)(KV_F_XX | (arg_is(&argv[2], "0") ? KV_F_ADD : 0));
    }
    data_submit(n, c, it, &op);
}

/* EVAL script numkeys [key ...] [arg ...] */
void cmd_eval(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
              uint32_t argc)
{
    run(n, c, it, by_text(&a[1]), true, a, argc);
}

/* EVALSHA sha1 numkeys [key ...] [arg ...] */
void cmd_evalsha(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                 uint32_t argc)
{
    if (a[1].len != 40) {
        add_error(it, "NOSCRIPT No matching script. Please use EVAL.");
        return;
    }
    run(n, c, it, by_sha(&a[1]), false, a, argc);
}

/* SCRIPT LOAD script | EXISTS sha1... | FLUSH [ASYNC|SYNC] | HELP */
void cmd_script(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    (void)n;
    (void)c;
    if (arg_is(&a[1], "LOAD")) {
        int s = by_text(&a[2]);
        if (s < 0)
            add_error(it, "ERR raftkv runs no Lua but the scripts of redis-py's Lock "
                          "(node/DEVIATIONS.md)");
        else
            add_bulk_str(it, scripts[s].sha);
    } else if (arg_is(&a[1], "EXISTS")) {
        add_array(it, argc - 2);
        for (uint32_t i = 2; i < argc; i++)
            add_integer(it, by_sha(&a[i]) >= 0);
    } else if (arg_is(&a[1], "FLUSH")) {
        if (argc > 3 || (argc == 3 && !arg_is(&a[2], "ASYNC") && !arg_is(&a[2], "SYNC")))
            add_error(it, "ERR SCRIPT FLUSH only support SYNC|ASYNC option");
        else
            add_simple(it, "OK");
    } else {
        static const char *const help[] = {
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "HELP",
            "    Prints this help.",
        };
        add_array(it, (int64_t)(sizeof(help) / sizeof(help[0])));
        for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++)
            add_simple(it, help[i]);
    }
}
