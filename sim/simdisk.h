/*
 * simdisk.h — the simulator's disk: an in-memory struct fs (core/fs/fs.h) as unforgiving as a
 * real one, so that crashes and disk faults can be injected at any byte.
 *
 * Every file keeps what was written and what is durable (D1 of fs.h); the directory keeps its
 * current names and its durable names (D2). simdisk_crash() throws away everything that was
 * not durable — optionally keeping a torn tail: a random prefix of the unsynced bytes of a file
 * whose last 512-byte sector may end in garbage (from some byte to the end of the prefix) — and
 * closes every open handle. The disk then
 * serves the files as a restarted process would find them.
 *
 * Faults (all drawn from the PRNG given at creation, so runs replay):
 *   - a bit flipped in the data returned by a read, with probability bitflip_per_read;
 *   - a read that fails with RK_EIO, with probability read_error;
 *   - a write (append, pwrite) that fails with RK_EIO or RK_ENOSPC after writing a random prefix
 *     of its bytes, with probability write_error;
 *   - a sync that fails with RK_EIO (durability then unknown: nothing becomes durable), with
 *     probability sync_error;
 *   - a crash at the N-th call (crash_at_call): that call and every later one fail with RK_EIO
 *     until simdisk_crash(), as if the process died in the middle of a sequence of fs calls;
 *   - slowness: each sync adds sync_us to simdisk_busy_us(), which the simulator turns into a
 *     stall of the node.
 *
 * Not thread-safe; deterministic: no clock, no global state.
 */
#ifndef SIM_SIMDISK_H
#define SIM_SIMDISK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/prng.h"
#include "fs/fs.h"

struct simdisk_faults {
    bool torn_writes;        /* a crash may keep a torn tail of unsynced bytes */
    double bitflip_per_read; /* probability that a read returns one flipped bit */
    double read_error;       /* probability that a read fails with RK_EIO */
    double write_error;      /* probability that a write fails (RK_EIO or RK_ENOSPC) */
    double sync_error;       /* probability that a sync (file or directory) fails */
    uint64_t sync_us;        /* virtual time a sync costs */
    uint64_t crash_at_call;  /* 0: never; N: the N-th fs call (1-based) and all after fail */
};

struct simdisk;

/* A new empty disk whose random choices come from seed. Returns NULL when out of memory. */
struct simdisk *simdisk_create(uint64_t seed);
void simdisk_destroy(struct simdisk *d);

/* The disk as a struct fs. Valid until simdisk_destroy. */
struct fs *simdisk_fs(struct simdisk *d);

/* Replaces the fault settings (all off at creation). The call counter restarts at 0. */
void simdisk_set_faults(struct simdisk *d, const struct simdisk_faults *f);

/* The process died: keeps only what was durable (plus, with torn_writes, torn tails), clears
 * crash_at_call. Every open handle becomes stale: any call on it fails with RK_EIO, except close,
 * which frees it; a stale handle never closed is freed by simdisk_destroy. */
void simdisk_crash(struct simdisk *d);

/* True once crash_at_call was reached (until simdisk_crash). */
bool simdisk_crashed(const struct simdisk *d);

/* fs calls made since the faults were last set; lets a test pick crash points. */
uint64_t simdisk_calls(const struct simdisk *d);

/* Virtual time the disk has spent in syncs since the last call (then reset to 0). */
uint64_t simdisk_take_busy_us(struct simdisk *d);

/* Total bytes held (current view), for disk-usage bounds. */
uint64_t simdisk_bytes(const struct simdisk *d);

/* Flips one bit of a file's current and durable content, for corruption tests. Returns RK_OK,
 * RK_ENOENT or RK_EINVAL (offset beyond the end). */
int simdisk_corrupt(struct simdisk *d, const char *name, uint64_t offset, uint8_t mask);

#endif
