/*
 * cmd_object.c — OBJECT ENCODING, REFCOUNT, IDLETIME, FREQ and HELP (Redis's object.c), as far
 * as they mean something for a store of strings (node/DEVIATIONS.md D26): each reads the key's
 * value with a linearizable read (the GET op of the state machine, in the connection's
 * database) and answers from it.
 */
#define _GNU_SOURCE
#include <string.h>

#include "commands.h"
#include "server.h"

enum { OBJ_ENCODING = 1, OBJ_REFCOUNT, OBJ_IDLETIME, OBJ_FREQ };

/* Redis's tryObjectEncoding of a value as SET stores it: an integer of at most 20 characters
 * that string2l takes is "int", a string of up to 44 bytes "embstr", a longer one "raw". */
static const char *encoding_of(const uint8_t *v, uint32_t len, int64_t *num, bool *is_int)
{
    *is_int = len <= 20 && kv_parse_int64(v, len, num);
    if (*is_int)
        return "int";
    return len <= 44 ? "embstr" : "raw";
}

static void done_object(struct node *n, struct item *it, uint32_t part,
                        const struct replica_reply *rp)
{
    (void)n;
    (void)part;
    struct kv_res_iter ri;
    struct kv_res_item r;
    kv_res_begin(&ri, rp->val, rp->val_len);
    if (rp->status != REPLICA_OK || !kv_res_next(&ri, &r) || r.type != KV_RES_BULK) {
        add_null(it);
        return;
    }
    int64_t num = 0;
    bool is_int = false;
    const char *enc = encoding_of(r.p, r.len, &num, &is_int);
    switch (it->a1) {
    case OBJ_ENCODING:
        add_bulk(it, enc, strlen(enc));
        break;
    case OBJ_REFCOUNT:
        /* Redis shares the integers 0..9999 (OBJ_SHARED_REFCOUNT). */
        add_integer(it, is_int && num >= 0 && num < 10000 ? INT32_MAX : 1);
        break;
    case OBJ_IDLETIME:
        add_integer(it, 0); /* reads are not recorded (they never reach the log): D26 */
        break;
    default:
        add_error(it, "ERR An LFU maxmemory policy is not selected, access frequency not "
                      "tracked. Please note that when switching between policies at runtime "
                      "LRU and LFU data will take some time to adjust.");
        break;
    }
}

/* OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key */
void cmd_object_key(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                    uint32_t argc)
{
    (void)argc;
    it->a1 = arg_is(&a[1], "ENCODING")   ? OBJ_ENCODING
             : arg_is(&a[1], "REFCOUNT") ? OBJ_REFCOUNT
             : arg_is(&a[1], "IDLETIME") ? OBJ_IDLETIME
                                         : OBJ_FREQ;
    n->kargs[0] = (struct kv_arg){.p = a[2].len ? a[2].ptr : NULL, .len = (uint32_t)a[2].len};
    struct kv_op2 op = {.code = KV_C_GET, .db = cur_db(c), .argc = 1, .argv = n->kargs};
    data_submit(n, c, it, &op);
    it->on_reply = done_object;
}

/* OBJECT HELP */
void cmd_object_help(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                     uint32_t argc)
{
    (void)n;
    (void)c;
    (void)a;
    (void)argc;
    static const char *const help[] = {
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    };
    add_array(it, (int64_t)(sizeof(help) / sizeof(help[0])));
    for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++)
        add_simple(it, help[i]);
}
