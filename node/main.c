/*
 * main.c — raftkv-node: one cluster member as a POSIX process. It moves bytes and time for
 * core/replica and decides nothing itself. This file only wires the parts (server.h lists them):
 * the settings (config.c), the buffers a request is parsed into, the server (server.c: storage,
 * replica, loop).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "server.h"

int main(int argc, char **argv)
{
    struct options o;
    int prc = config_parse_args(argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    g_node_id = o.id;
    static struct node node;
    struct node *n = &node;
    n->id = o.id;
    n->cluster_id = o.cluster_id;
    n->tick_ms = o.tick_ms;
    n->opt = o;
    n->started_ms = node_now_ms();
    n->started_unix_us = node_unix_us();
    struct rk_errmsg lerr;
    if (rk_limits_derive(o.max_value_bytes, &n->lim, &lerr) != RK_OK) {
        node_log("error", "max-value-bytes: %s", lerr.text);
        return 2;
    }
    n->limits = (struct resp_limits){.max_args = o.max_args,
                                     .max_bulk = n->lim.max_value,
                                     .max_inline = o.max_inline_bytes};
    snprintf(n->client_listen_text, sizeof(n->client_listen_text), "%s", o.client);
    n->args = calloc(o.max_args, sizeof(*n->args));
    n->inline_scratch = malloc(o.max_inline_bytes);
    n->pairs = calloc(o.max_args / 2, sizeof(*n->pairs));
    n->mkeys = calloc(o.max_args, sizeof(*n->mkeys));
    n->kargs = calloc(o.max_args, sizeof(*n->kargs));
    n->mkey_lens = calloc(o.max_args, sizeof(*n->mkey_lens));
    if (n->args == NULL || n->inline_scratch == NULL || n->pairs == NULL || n->mkeys == NULL || n->kargs == NULL ||
        n->mkey_lens == NULL) {
        node_log("error", "out of memory for --max-args %u", o.max_args);
        return 1;
    }
    int rc = server_start(n, &o);
    if (rc != 0)
        return rc;
    rc = server_run(n);
    server_stop(n);
    node_log("info", rc == 0 ? "stopped" : "stopped after an error");
    return rc;
}
