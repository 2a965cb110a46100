/*
 * cmd_bitmap.c — the bitmap commands (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS,
 * BITOP. As the string commands (cmd_string.c), each makes the checks Redis makes before it
 * looks at a key, with Redis's words, then hands one state machine op (core/kv/bitops.c) to
 * data_submit: SETBIT and BITOP are one log entry each, GETBIT, BITCOUNT and BITPOS a
 * linearizable read. What Redis parses only after the lookup (BITCOUNT's and BITPOS's ranges)
 * goes to the state machine as sent. Arity was checked by the table.
 */
#define _GNU_SOURCE
#include <string.h>

#include "commands.h"
#include "server.h"

#define ERR_OFFSET "ERR bit offset is not an integer or out of range"

static struct kv_arg karg(const struct resp_arg *a)
{
    return (struct kv_arg){.p = a->len > 0 ? a->ptr : NULL, .len = (uint32_t)a->len};
}

static void submit(struct node *n, struct client *c, struct item *it, uint8_t code, int64_t num,
                   const struct resp_arg *a, uint32_t from, uint32_t argc)
{
    for (uint32_t i = from; i < argc; i++)
        n->kargs[i - from] = karg(&a[i]);
    struct kv_op2 op = {
        .code = code, .db = cur_db(c), .num = num, .argc = argc - from, .argv = n->kargs};
    data_submit(n, c, it, &op);
}

/* Redis's getBitOffsetFromArgument: an integer, >= 0, its byte below 512 MB. */
static bool bit_offset(const struct resp_arg *a, int64_t *off)
{
    return arg_int64(a, off) && *off >= 0 && (*off >> 3) < (INT64_C(512) << 20);
}

/* SETBIT key offset 0|1: num = offset * 2 + bit. */
void cmd_setbit(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    int64_t off = 0, bit = 0;
    if (!bit_offset(&a[2], &off)) {
        add_error(it, ERR_OFFSET);
        return;
    }
    if (!arg_int64(&a[3], &bit) || (bit & ~INT64_C(1)) != 0) {
        add_error(it, "ERR bit is not an integer or out of range");
        return;
    }
    submit(n, c, it, KV_C_SETBIT, off * 2 + bit, a, 1, argc - 2);
}

/* GETBIT key offset */
void cmd_getbit(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    int64_t off = 0;
    if (!bit_offset(&a[2], &off)) {
        add_error(it, ERR_OFFSET);
        return;
    }
    submit(n, c, it, KV_C_GETBIT, off, a, 1, argc - 1);
}

/* BITCOUNT key [start end [BYTE|BIT]]: Redis looks the key up first (a missing key is 0,
 * whatever follows), so the rest goes as sent; more than 3 of them is a syntax error either
 * way once the key exists: at most 4 are sent, and the state machine refuses 4. */
void cmd_bitcount(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                  uint32_t argc)
{
    submit(n, c, it, KV_C_BITCOUNT, 0, a, 1, argc > 6 ? 6 : argc);
}

/* BITPOS key bit [start [end [BYTE|BIT]]]: the bit is parsed before the lookup, the rest after
 * it (by the state machine). */
void cmd_bitpos(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
                uint32_t argc)
{
    int64_t bit = 0;
    if (!arg_int64(&a[2], &bit)) {
        add_error(it, "ERR value is not an integer or out of range");
        return;
    }
    if (bit != 0 && bit != 1) {
        add_error(it, "ERR The bit argument must be 1 or 0.");
        return;
    }
    struct resp_arg args[5];
    uint32_t na = 0;
    args[na++] = a[1];
    for (uint32_t i = 3; i < argc && na < 5; i++)
        args[na++] = a[i];
    submit(n, c, it, KV_C_BITPOS, bit, args, 0, na);
}

/* BITOP AND|OR|XOR|NOT destkey srckey...: one op, replicated as one entry. */
void cmd_bitop(struct node *n, struct client *c, struct item *it, const struct resp_arg *a,
               uint32_t argc)
{
    static const char *const ops[4] = {"AND", "OR", "XOR", "NOT"};
    int64_t op = -1;
    for (int i = 0; i < 4; i++)
        if (arg_is(&a[1], ops[i]))
            op = i;
    if (op < 0) {
        add_error(it, "ERR syntax error");
        return;
    }
    if (op == 3 && argc != 4) {
        add_error(it, "ERR BITOP NOT must be called with a single source key.");
        return;
    }
    submit(n, c, it, KV_C_BITOP, op, a, 2, argc);
}
