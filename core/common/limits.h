/*
 * limits.h — every size limit of a node, derived from one setting: the largest value a client
 * may write (max_value_bytes). Each layer a write crosses gets a limit that holds what the
 * layer before it may hand over, so that any value up to the setting commits, and a request
 * over it is refused at the door with a clear error instead of being dropped somewhere inside
 * (a frame bigger than a peer's send queue would be dropped on every retry, and the entry
 * would never commit while heartbeats kept its leader in office):
 *
 *   RESP bulk (max_value) ≤ kv command (max_command) = Raft entry (max_entry)
 *     ≤ FORWARD or one-entry APPEND frame (max_frame) < peer send queue (peer_queue)
 *
 * Multi-key writes (MSET, transactions) are one command: their total must fit max_command.
 * APPENDs carry at most append_bytes of entries but always at least one entry, so the largest
 * APPEND is one max_entry; the peer queue holds two largest frames plus a window of small
 * ones, so a largest frame always finds room behind what a healthy connection has queued.
 */
#ifndef RK_LIMITS_H
#define RK_LIMITS_H

#include <stdint.h>

#include "common/err.h"

#define RK_LIMITS_VALUE_MIN      (1ull << 10)
#define RK_LIMITS_VALUE_MAX      (64ull << 20) /* the kv command format holds no more (kv.h) */
#define RK_LIMITS_VALUE_DEFAULT  (64ull << 20)
#define RK_LIMITS_KEY_BYTES      (64ull << 10)
#define RK_LIMITS_APPEND_BYTES   (1ull << 20)
/* Room for everything around the key and value in a command, an entry, a frame. */
#define RK_LIMITS_COMMAND_SLACK  (4ull << 10)
#define RK_LIMITS_FRAME_SLACK    (4ull << 10)
#define RK_LIMITS_QUEUE_WINDOW   (16ull << 20)

struct rk_limits {
    uint64_t max_value;   /* one RESP bulk argument; one stored value */
    uint64_t max_key;     /* one key */
    uint64_t max_command; /* one replicated command (all its keys and values) */
    uint64_t max_entry;   /* one Raft entry: a command */
    uint64_t append;      /* entry bytes per APPEND beyond its first entry */
    uint64_t max_frame;   /* one peer frame: a one-entry APPEND or a FORWARD of max_entry */
    uint64_t peer_queue;  /* bytes queued for one peer before frames are dropped */
};

/* Derives every limit from max_value_bytes. RK_EINVAL (err says the range) outside
 * [RK_LIMITS_VALUE_MIN, RK_LIMITS_VALUE_MAX]. */
int rk_limits_derive(uint64_t max_value_bytes, struct rk_limits *out, struct rk_errmsg *err);

#endif
