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
 * Persistent damage (CORDS, FAST'17; ALICE, OSDI'14) — on the media, seen by every later read,
 * surviving crashes; at most ONE damage event per disk between two crashes (the single-fault
 * model that core/log/seglog.c's TORN OR CORRUPT argues detection under), drawn in this order:
 *   - bit rot (rot_per_crash): at a crash, one bit flipped in the durable bytes of a file;
 *   - a latent sector error (lse_per_crash): at a crash, a 512-byte sector of a file becomes
 *     unreadable: every read that touches it fails with RK_EIO, for ever (until the file is cut
 *     below it or removed);
 *   - a lost write (lost_write, per write): acknowledged, read back from the "page cache" while the
 *     process lives, but it never reached the media: at the next crash the bytes a sync had made
 *     durable read as zeros;
 *   - a misdirected write (misdirected_write, per write): lost as above, and its bytes reach the
 *     media at another offset of the same file instead — an older block, durable before the write
 *     and at least one sector before the durable end (the last sector written before is never the
 *     target: damage there and at the write's own place at once is two faults in one spot, which
 *     no single-copy format can tell from a torn write; seglog.c says so).
 * simdisk_damage() counts the events that reached the media.
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
    double rot_per_crash;     /* probability that a crash leaves a flipped bit in durable bytes */
    double lse_per_crash;     /* probability that a crash leaves an unreadable sector */
    double lost_write;        /* probability that a write never reaches the media */
    double misdirected_write; /* probability that a write reaches the media elsewhere */
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

/* Makes the 512-byte sector holding offset of file name unreadable (a latent sector error), for
 * tests. Returns RK_OK, RK_ENOENT or RK_EINVAL (beyond the end, or the file has one already). */
int simdisk_bad_sector(struct simdisk *d, const char *name, uint64_t offset);

/* Persistent damage events that reached the media (bit rot, bad sectors, lost and misdirected
 * writes), ever; and a sentence about the last one ("" if none), valid until the next call. */
uint64_t simdisk_damage(const struct simdisk *d);
const char *simdisk_damage_text(const struct simdisk *d);

#endif
