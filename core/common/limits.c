/*
 * limits.c — see limits.h. Postconditions are asserted: each layer holds what the one before
 * it may hand over.
 */
#include "common/limits.h"

#include "common/assert.h"

int rk_limits_derive(uint64_t max_value_bytes, struct rk_limits *out, struct rk_errmsg *err)
{
    if (max_value_bytes < RK_LIMITS_VALUE_MIN || max_value_bytes > RK_LIMITS_VALUE_MAX)
        return rk_errf(err, RK_EINVAL, "max value bytes %llu outside %llu..%llu",
                       (unsigned long long)max_value_bytes,
                       (unsigned long long)RK_LIMITS_VALUE_MIN,
                       (unsigned long long)RK_LIMITS_VALUE_MAX);
    struct rk_limits l;
    l.max_value = max_value_bytes;
    l.max_key = RK_LIMITS_KEY_BYTES;
    l.max_command = l.max_value + l.max_key + RK_LIMITS_COMMAND_SLACK;
    l.max_entry = l.max_command;
    l.append = RK_LIMITS_APPEND_BYTES;
    l.max_frame = l.max_entry + RK_LIMITS_FRAME_SLACK;
    l.peer_queue = 2 * l.max_frame + RK_LIMITS_QUEUE_WINDOW;
    RK_ASSERT(l.max_value + l.max_key < l.max_command);
    RK_ASSERT(l.max_entry + RK_LIMITS_FRAME_SLACK <= l.max_frame);
    RK_ASSERT(l.max_frame + l.append + RK_LIMITS_FRAME_SLACK < l.peer_queue);
    RK_ASSERT(l.max_frame <= UINT32_MAX); /* the codec's u32 length field */
    *out = l;
    return RK_OK;
}
