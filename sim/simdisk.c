/*
 * simdisk.c — the simulator's disk: an in-memory struct fs (core/fs/fs.h) that keeps exactly
 * what the durability contract D1–D3 promises and nothing more, and injects the faults of
 * sim/simdisk.h.
 *
 * Model. One flat directory of inodes. An inode has its current bytes `data[0, len)` and a
 * durable length `durable_len` (as of its last successful sync). The durable bytes are not a
 * second copy of the file: below durable_len they are `data` itself, except for the 4 KiB pages
 * that were modified since the sync (pwrite below durable_len, truncate below it), whose
 * durable bytes were copied aside into `shadow` before the first modification (copy on write,
 * like a page cache). An append-only file therefore costs nothing extra however often it syncs.
 * The directory is two sorted arrays of (name, inode): the current names and the durable names
 * (what the last successful sync_dir saw). Handles refer to inodes by number, never by name.
 *
 * Invariants:
 *  1. cap >= max(len, durable_len): restoring the durable bytes at a crash never allocates.
 *  2. A page p below durable_len with shadow[p] == NULL holds its durable bytes in data; every
 *     page that overlaps [len, durable_len) has a shadow (inode_shadow_range before every
 *     modification).
 *  3. cur_names, dur_names and handles count the current names, durable names and live
 *     handles of an inode (each 0 or 1 for names: there are no hard links); an inode with all
 *     three at 0 is freed at once (inode_release).
 *  4. The current and the durable name arrays share one capacity, so sync_dir and crash copy
 *     one into the other without allocating: a crash cannot fail.
 *  5. Every random choice comes from d->prng, drawn in an order fixed by the call sequence
 *     (inodes are visited by number, numbers are the lowest free slot): same seed and same
 *     calls, same disk. A probability of 0 draws nothing, so turning a fault off does not
 *     shift the other draws.
 *
 * A name (current map, durable map) and the calls that move it:
 *
 *   absent ───disk_open(FS_CREATE), disk_rename(to)───► current only
 *    ▲  ▲                                                  │  │
 *    │  └────disk_remove, disk_rename(from), simdisk_crash─┘  │ disk_sync_dir
 *    │                                                        ▼
 *    │                                               current and durable
 *    │                                                   │            ▲
 *    │                   disk_remove, disk_rename(from)  │            │ simdisk_crash
 *    │                                                   ▼            │
 *    └──────────────disk_sync_dir──────────────────── durable only ───┘
 *
 * (Creating or renaming onto a name that is durable only, or renaming over an existing `to`,
 * points the current name at another inode: a crash before disk_sync_dir points it back.) A crash
 * gives every durably named inode its durable bytes and, with torn_writes, a prefix of its unsynced
 * tail (inode_restore); what survives a crash is on the media, so it is all durable afterwards.
 * Every other inode is freed.
 *
 * Bounds: names, live handles, bytes per file and per disk (SIMDISK_*_MAX); beyond them, and
 * when the host is out of memory, a call fails with RK_ENOSPC like a full disk.
 *
 * Handles. A handle lives from open to close, also across a crash: simdisk_crash marks every
 * handle stale (every operation on it but close then fails with RK_EIO) instead of freeing
 * it, so a caller that closes its handles after the crash (bc_close on a crashed node) is safe.
 * A stale handle never closed is freed by simdisk_destroy.
 */
#include "simdisk.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

#define SIMDISK_SECTOR_BYTES 512u
#define SIMDISK_PAGE_BYTES   4096u
/* Names in one directory; inodes are at most twice this plus the handles. */
#define SIMDISK_FILES_MAX 16384u
/* Live (not stale) handles at once. */
#define SIMDISK_HANDLES_MAX 4096u
/* Bytes held by one disk (file buffers and shadow pages), and by one file. */
#define SIMDISK_BYTES_MAX      ((uint64_t)1 << 30)
#define SIMDISK_FILE_BYTES_MAX ((uint64_t)1 << 30)
#define SIMDISK_DIR_CAP_MIN    16u
#define SIMDISK_NO_INODE       UINT32_MAX

struct simdisk_dirent {
    char name[FS_NAME_MAX + 1];
    uint32_t ino;
};

struct simdisk_dir {
    struct simdisk_dirent *e; /* sorted by strcmp of name; capacity d->dir_cap */
    uint32_t count;
};

struct simdisk_inode {
    bool used;
    uint8_t *data; /* current bytes [0, len); capacity cap */
    uint64_t len;
    uint64_t cap;
    uint64_t durable_len; /* length as of the last successful sync */
    uint8_t **shadow;     /* NULL, or shadow_pages entries: durable bytes of modified pages */
    uint64_t shadow_pages;
    uint32_t cur_names;
    uint32_t dur_names;
    uint32_t handles;
    bool has_bad;        /* a latent sector error: reads touching [bad_sector, +512) fail */
    uint64_t bad_sector;
};

/* A lost or misdirected write waiting for the next crash to reach the media (simdisk.h). */
#define SIMDISK_MISDIRECT_BYTES_MAX 4096u
struct simdisk_pending {
    bool armed;
    bool misdirect;
    uint32_t ino;
    uint64_t off; /* the write's own place: lost */
    uint64_t len;
    uint64_t target; /* misdirect: where its first bytes land instead */
    uint64_t n_bytes;
    uint8_t bytes[SIMDISK_MISDIRECT_BYTES_MAX];
};

#if defined(__SANITIZE_ADDRESS__)
#define SIMDISK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMDISK_ASAN 1
#endif
#endif
#define SIMDISK_SPARE_HANDLES 16

struct fs_file {
    struct simdisk *owner;
    struct fs_file *prev; /* in owner->handles, every handle not yet closed */
    struct fs_file *next;
    uint32_t ino;               /* SIMDISK_NO_INODE once stale */
    char name[FS_NAME_MAX + 1]; /* as opened, for error messages */
};

struct simdisk {
    struct fs fs; /* first: simdisk_of() */
    struct rk_prng prng;
    struct simdisk_faults faults;
    uint64_t calls;
    bool crashed;
    uint64_t busy_us;
    struct simdisk_dir cur;
    struct simdisk_dir dur;
    uint32_t dir_cap;
    struct simdisk_inode *inodes;
    uint32_t inode_count; /* slots in use or freed: [0, inode_count) */
    uint32_t inode_cap;
    struct fs_file *handles;
    uint32_t handles_live;
    /* Closed handles kept for the next opens (Bitcask opens a file per read job: a calloc and
     * a free each were 1% of a run); none under ASan, which then sees a use after close. */
    struct fs_file *spare;
    uint32_t n_spare;
    uint64_t bytes_held; /* data capacities plus shadow pages */
    bool damaged_since_crash; /* one damage event per crash interval (simdisk.h) */
    struct simdisk_pending pending;
    uint64_t damage;
    char damage_text[160];
};

static const struct fs_ops simdisk_ops;
#ifdef RK_SLOW_ASSERTS
static void simdisk_check(const struct simdisk *d);
#define SIMDISK_CHECK(d) simdisk_check(d)
#else
#define SIMDISK_CHECK(d) ((void)0)
#endif

static struct simdisk *simdisk_of(struct fs *fs)
{
    RK_ASSERT(fs != NULL);
    RK_ASSERT(fs->ops == &simdisk_ops);
    return (struct simdisk *)(void *)((char *)fs - offsetof(struct simdisk, fs));
}

static struct simdisk_inode *inode_at(struct simdisk *d, uint32_t ino)
{
    RK_ASSERT(ino < d->inode_count);
    RK_ASSERT(d->inodes[ino].used);
    return &d->inodes[ino];
}

/* ---- randomness ------------------------------------------------------------------------ */

static bool fault_chance(struct simdisk *d, double p)
{
    if (!(p > 0))
        return false;
    if (p >= 1)
        return true;
    double u = (double)(rk_prng_next(&d->prng) >> 11) * 0x1.0p-53;
    return u < p;
}

/* ---- the call counter and crash point ----------------------------------------------------- */

/* Counts one fs call; false once the crash point is reached (the process is dead). */
static bool disk_enter(struct simdisk *d)
{
    d->calls++;
    if (d->faults.crash_at_call != 0 && d->calls >= d->faults.crash_at_call)
        d->crashed = true;
    return !d->crashed;
}

static int disk_dead(struct simdisk *d, struct rk_errmsg *err, const char *verb, const char *name)
{
    return rk_errf(err, RK_EIO, "simdisk: %s%s: crashed (call %llu, crash point %llu)", verb, name,
                   (unsigned long long)d->calls, (unsigned long long)d->faults.crash_at_call);
}

/* Common prologue of the calls on a handle: counts the call, refuses a dead disk or a handle
 * made stale by a crash. */
static int file_enter(struct simdisk *d, struct fs_file *f, const char *verb, struct rk_errmsg *err)
{
    RK_ASSERT(f != NULL);
    RK_ASSERT(f->owner == d);
    if (!disk_enter(d))
        return disk_dead(d, err, verb, f->name);
    if (f->ino == SIMDISK_NO_INODE)
        return rk_errf(err, RK_EIO, "simdisk: %s%s: stale handle (the disk crashed)", verb,
                       f->name);
    return RK_OK;
}

/* ---- the directory ------------------------------------------------------------------------ */

/* True if name is in dir; *pos is its index, or where it would be inserted. */
static bool dir_find(const struct simdisk_dir *dir, const char *name, uint32_t *pos)
{
    uint32_t lo = 0;
    uint32_t hi = dir->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(dir->e[mid].name, name);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

/* Grows both name arrays together (invariant 4) to hold one more name. */
static bool dir_reserve_one(struct simdisk *d)
{
    RK_ASSERT(d->cur.count <= d->dir_cap);
    if (d->cur.count < d->dir_cap)
        return true;
    uint32_t cap = d->dir_cap == 0 ? SIMDISK_DIR_CAP_MIN : d->dir_cap * 2;
    if (cap > SIMDISK_FILES_MAX)
        cap = SIMDISK_FILES_MAX;
    RK_ASSERT(cap > d->dir_cap);
    struct simdisk_dirent *c = realloc(d->cur.e, (size_t)cap * sizeof(*c));
    if (c == NULL)
        return false;
    d->cur.e = c;
    struct simdisk_dirent *u = realloc(d->dur.e, (size_t)cap * sizeof(*u));
    if (u == NULL)
        return false; /* cur keeps its larger block; dir_cap stays, so it is merely slack */
    d->dur.e = u;
    d->dir_cap = cap;
    return true;
}

static void dir_insert(struct simdisk *d, struct simdisk_dir *dir, uint32_t pos, const char *name,
                       uint32_t ino)
{
    RK_ASSERT(dir->count < d->dir_cap);
    RK_ASSERT(pos <= dir->count);
    memmove(&dir->e[pos + 1], &dir->e[pos], (size_t)(dir->count - pos) * sizeof(dir->e[0]));
    size_t n = strlen(name);
    RK_ASSERT(n <= FS_NAME_MAX);
    memcpy(dir->e[pos].name, name, n + 1);
    dir->e[pos].ino = ino;
    dir->count++;
}

static void dir_erase(struct simdisk_dir *dir, uint32_t pos)
{
    RK_ASSERT(pos < dir->count);
    memmove(&dir->e[pos], &dir->e[pos + 1], (size_t)(dir->count - pos - 1) * sizeof(dir->e[0]));
    dir->count--;
}

/* ---- inodes -------------------------------------------------------------------------------- */

static uint64_t page_durable_bytes(const struct simdisk_inode *in, uint64_t page)
{
    uint64_t start = page * SIMDISK_PAGE_BYTES;
    RK_ASSERT(start < in->durable_len);
    uint64_t left = in->durable_len - start;
    return left < SIMDISK_PAGE_BYTES ? left : SIMDISK_PAGE_BYTES;
}

static void inode_drop_shadow(struct simdisk *d, struct simdisk_inode *in)
{
    if (in->shadow == NULL)
        return;
    for (uint64_t p = 0; p < in->shadow_pages; p++) {
        if (in->shadow[p] != NULL) {
            uint64_t n = page_durable_bytes(in, p);
            RK_ASSERT(d->bytes_held >= n);
            d->bytes_held -= n;
            free(in->shadow[p]);
        }
    }
    free(in->shadow);
    in->shadow = NULL;
    in->shadow_pages = 0;
}

static void inode_free(struct simdisk *d, uint32_t ino)
{
    struct simdisk_inode *in = inode_at(d, ino);
    RK_ASSERT(in->cur_names == 0);
    RK_ASSERT(in->dur_names == 0);
    RK_ASSERT(in->handles == 0);
    inode_drop_shadow(d, in);
    RK_ASSERT(d->bytes_held >= in->cap);
    d->bytes_held -= in->cap;
    free(in->data);
    memset(in, 0, sizeof(*in));
    if (d->pending.armed && d->pending.ino == ino)
        d->pending.armed = false; /* the file is gone: nothing of it reaches the media */
    while (d->inode_count > 0 && !d->inodes[d->inode_count - 1].used)
        d->inode_count--;
}

/* Frees the inode if nothing refers to it any more (invariant 3). */
static void inode_release(struct simdisk *d, uint32_t ino)
{
    struct simdisk_inode *in = inode_at(d, ino);
    if (in->cur_names == 0 && in->dur_names == 0 && in->handles == 0)
        inode_free(d, ino);
}

/* A new empty inode in the lowest free slot (deterministic numbering). */
static bool inode_alloc(struct simdisk *d, uint32_t *out)
{
    uint32_t ino = 0;
    while (ino < d->inode_count && d->inodes[ino].used)
        ino++;
    if (ino == d->inode_cap) {
        uint32_t cap = d->inode_cap == 0 ? SIMDISK_DIR_CAP_MIN : d->inode_cap * 2;
        struct simdisk_inode *v = realloc(d->inodes, (size_t)cap * sizeof(*v));
        if (v == NULL)
            return false;
        memset(&v[d->inode_cap], 0, (size_t)(cap - d->inode_cap) * sizeof(*v));
        d->inodes = v;
        d->inode_cap = cap;
    }
    RK_ASSERT(ino < d->inode_cap);
    RK_ASSERT(!d->inodes[ino].used);
    d->inodes[ino].used = true;
    if (ino == d->inode_count)
        d->inode_count++;
    *out = ino;
    return true;
}

/* Makes room for need bytes of data. False (nothing changed) over the bounds or out of memory. */
static bool inode_reserve(struct simdisk *d, struct simdisk_inode *in, uint64_t need)
{
    if (need <= in->cap)
        return true;
    if (need > SIMDISK_FILE_BYTES_MAX)
        return false;
    uint64_t cap = in->cap < SIMDISK_PAGE_BYTES ? SIMDISK_PAGE_BYTES : in->cap;
    while (cap < need)
        cap *= 2;
    if (cap > SIMDISK_FILE_BYTES_MAX)
        cap = SIMDISK_FILE_BYTES_MAX;
    if (d->bytes_held - in->cap + cap > SIMDISK_BYTES_MAX)
        return false;
    uint8_t *v = realloc(in->data, (size_t)cap);
    if (v == NULL)
        return false;
    d->bytes_held += cap - in->cap;
    in->data = v;
    in->cap = cap;
    return true;
}

/* Copies aside the durable bytes of every page of [from, to) below durable_len, before they are
 * modified (invariant 2). False (some pages copied, which is harmless) when out of memory. */
static bool inode_shadow_range(struct simdisk *d, struct simdisk_inode *in, uint64_t from,
                               uint64_t to)
{
    if (to > in->durable_len)
        to = in->durable_len;
    if (from >= to)
        return true;
    if (in->shadow == NULL) {
        uint64_t pages = (in->durable_len + SIMDISK_PAGE_BYTES - 1) / SIMDISK_PAGE_BYTES;
        in->shadow = calloc((size_t)pages, sizeof(in->shadow[0]));
        if (in->shadow == NULL)
            return false;
        in->shadow_pages = pages;
    }
    for (uint64_t p = from / SIMDISK_PAGE_BYTES; p <= (to - 1) / SIMDISK_PAGE_BYTES; p++) {
        RK_ASSERT(p < in->shadow_pages);
        if (in->shadow[p] != NULL)
            continue;
        uint64_t n = page_durable_bytes(in, p);
        /* Invariant 2: an unshadowed page holds its durable bytes, so it lies within len. */
        RK_ASSERT(p * SIMDISK_PAGE_BYTES + n <= in->len);
        if (d->bytes_held + n > SIMDISK_BYTES_MAX)
            return false;
        in->shadow[p] = malloc((size_t)n);
        if (in->shadow[p] == NULL)
            return false;
        memcpy(in->shadow[p], in->data + p * SIMDISK_PAGE_BYTES, (size_t)n);
        d->bytes_held += n;
    }
    return true;
}

/* Sets the length to size, zero-filling an extension. False (nothing changed) when out of
 * space. */
static bool inode_resize(struct simdisk *d, struct simdisk_inode *in, uint64_t size)
{
    if (size > in->len) {
        if (!inode_reserve(d, in, size) || !inode_shadow_range(d, in, in->len, size))
            return false;
        memset(in->data + in->len, 0, (size_t)(size - in->len));
    } else if (!inode_shadow_range(d, in, size, in->durable_len)) {
        return false;
    }
    in->len = size;
    return true;
}

/* Crash: back to the durable bytes, plus possibly a torn tail of the unsynced bytes beyond
 * durable_len (D1); the result is what the restarted process finds, so all of it is durable. */
static void inode_restore(struct simdisk *d, struct simdisk_inode *in)
{
    RK_ASSERT(in->cap >= in->durable_len); /* invariant 1 */
    for (uint64_t p = 0; in->shadow != NULL && p < in->shadow_pages; p++) {
        if (in->shadow[p] != NULL)
            memcpy(in->data + p * SIMDISK_PAGE_BYTES, in->shadow[p],
                   (size_t)page_durable_bytes(in, p));
    }
    uint64_t dl = in->durable_len;
    uint64_t tail = in->len > dl ? in->len - dl : 0;
    uint64_t keep = 0;
    if (d->faults.torn_writes && tail > 0)
        keep = rk_prng_below(&d->prng, tail + 1);
    uint64_t len = dl + keep;
    if (keep > 0 && rk_prng_below(&d->prng, 2) == 0) {
        /* Garbage at the end of the last sector written (from some byte of it to the end of
         * what is kept), never in durable bytes: a sector written front to back and cut off.
         * So every byte before a kept byte that is as written is as written too — what lets
         * a commit record vouch for the bytes before it (core/log/seglog.c, C2). */
        uint64_t lo = (len - 1) / SIMDISK_SECTOR_BYTES * SIMDISK_SECTOR_BYTES;
        if (lo < dl)
            lo = dl;
        uint64_t a = rk_prng_range(&d->prng, lo, len - 1);
        for (uint64_t i = a; i < len; i++)
            in->data[i] = (uint8_t)rk_prng_next(&d->prng);
    }
    inode_drop_shadow(d, in);
    in->len = len;
    in->durable_len = len;
}

/* ---- fs_ops: files ------------------------------------------------------------------------- */

static int disk_open(struct fs *fs, const char *name, uint32_t flags, struct fs_file **out,
                     struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    RK_ASSERT(out != NULL);
    *out = NULL;
    if (!disk_enter(d))
        return disk_dead(d, err, "open ", name);
    if (!fs_name_valid(name))
        return rk_errf(err, RK_EINVAL, "simdisk: open: invalid file name");
    if ((flags & ~(uint32_t)(FS_CREATE | FS_EXCL)) != 0 ||
        ((flags & FS_EXCL) != 0 && (flags & FS_CREATE) == 0))
        return rk_errf(err, RK_EINVAL, "simdisk: open %s: invalid flags 0x%x", name, flags);
    uint32_t pos;
    bool found = dir_find(&d->cur, name, &pos);
    if (found && (flags & FS_EXCL) != 0)
        return rk_errf(err, RK_EEXIST, "simdisk: open %s: file exists", name);
    if (!found && (flags & FS_CREATE) == 0)
        return rk_errf(err, RK_ENOENT, "simdisk: open %s: no such file", name);
    if (d->handles_live >= SIMDISK_HANDLES_MAX)
        return rk_errf(err, RK_ENOSPC, "simdisk: open %s: too many open files", name);
    if (!found && d->cur.count >= SIMDISK_FILES_MAX)
        return rk_errf(err, RK_ENOSPC, "simdisk: open %s: directory full", name);
    struct fs_file *f = d->spare;
    if (f != NULL) {
        d->spare = f->next;
        d->n_spare--;
        memset(f, 0, sizeof(*f));
    } else {
        f = calloc(1, sizeof(*f));
    }
    if (f == NULL || (!found && !dir_reserve_one(d)))
        goto err_free_handle;
    uint32_t ino;
    if (found) {
        ino = d->cur.e[pos].ino;
    } else {
        if (!inode_alloc(d, &ino))
            goto err_free_handle;
        dir_insert(d, &d->cur, pos, name, ino);
        inode_at(d, ino)->cur_names = 1;
    }
    inode_at(d, ino)->handles++;
    d->handles_live++;
    f->owner = d;
    f->ino = ino;
    memcpy(f->name, name, strlen(name) + 1);
    f->next = d->handles;
    if (d->handles != NULL)
        d->handles->prev = f;
    d->handles = f;
    *out = f;
    return RK_OK;

err_free_handle:
    free(f);
    return rk_errf(err, RK_ENOSPC, "simdisk: open %s: out of host memory", name);
}

static void disk_close(struct fs *fs, struct fs_file *f)
{
    struct simdisk *d = simdisk_of(fs);
    RK_ASSERT(f != NULL);
    RK_ASSERT(f->owner == d);
    /* Counted like any call, but a dead disk or a stale handle still lets go of the handle:
     * closing writes nothing, and the memory must come back. */
    (void)disk_enter(d);
    if (f->ino != SIMDISK_NO_INODE) {
        struct simdisk_inode *in = inode_at(d, f->ino);
        RK_ASSERT(in->handles > 0);
        RK_ASSERT(d->handles_live > 0);
        in->handles--;
        d->handles_live--;
        inode_release(d, f->ino);
    }
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        d->handles = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
#ifndef SIMDISK_ASAN
    if (d->n_spare < SIMDISK_SPARE_HANDLES) {
        f->next = d->spare;
        d->spare = f;
        d->n_spare++;
        return;
    }
#endif
    free(f);
}

static int disk_pread(struct fs *fs, struct fs_file *f, uint64_t off, void *buf, size_t len,
                      size_t *got, struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    RK_ASSERT(got != NULL);
    RK_ASSERT(buf != NULL || len == 0);
    *got = 0;
    int rc = file_enter(d, f, "read from ", err);
    if (rc != RK_OK)
        return rc;
    if (fault_chance(d, d->faults.read_error))
        return rk_errf(err, RK_EIO, "simdisk: read from %s at %llu: injected I/O error", f->name,
                       (unsigned long long)off);
    const struct simdisk_inode *in = inode_at(d, f->ino);
    if (in->has_bad && len > 0 && off < in->bad_sector + SIMDISK_SECTOR_BYTES &&
        in->bad_sector < off + len && off < in->len)
        return rk_errf(err, RK_EIO, "simdisk: read from %s at %llu: latent sector error at %llu",
                       f->name, (unsigned long long)off, (unsigned long long)in->bad_sector);
    size_t n = 0;
    if (off < in->len) {
        uint64_t left = in->len - off;
        n = left < len ? (size_t)left : len;
        memcpy(buf, in->data + off, n);
    }
    /* The flip is in what the caller gets, not in what is stored: a bad read, not bad media. */
    if (n > 0 && fault_chance(d, d->faults.bitflip_per_read)) {
        uint64_t bit = rk_prng_below(&d->prng, (uint64_t)n * 8);
        ((uint8_t *)buf)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    *got = n;
    return RK_OK;
}

/* A write of n bytes at off just landed in the page cache (simdisk.h, persistent damage): it
 * remaps a bad sector it covers, cancels a pending loss it overwrites, and may itself be lost or
 * misdirected (whole writes only, once per crash interval). */
static void write_damage(struct simdisk *d, uint32_t ino, struct simdisk_inode *in, uint64_t off,
                         const void *buf, size_t n, bool whole)
{
    struct simdisk_pending *pd = &d->pending;
    if (in->has_bad && off < in->bad_sector + SIMDISK_SECTOR_BYTES && in->bad_sector < off + n)
        in->has_bad = false; /* a write remaps the sector */
    if (pd->armed && pd->ino == ino &&
        ((off < pd->off + pd->len && pd->off < off + n) ||
         (pd->misdirect && off < pd->target + pd->n_bytes && pd->target < off + n)))
        pd->armed = false;
    if (!whole || d->damaged_since_crash)
        return;
    bool lost = fault_chance(d, d->faults.lost_write);
    bool misdirect = !lost && fault_chance(d, d->faults.misdirected_write);
    if (!lost && !misdirect)
        return;
    uint64_t m = n < SIMDISK_MISDIRECT_BYTES_MAX ? n : SIMDISK_MISDIRECT_BYTES_MAX;
    if (misdirect && in->durable_len < SIMDISK_SECTOR_BYTES + m)
        return; /* no older block to land on */
    *pd = (struct simdisk_pending){.armed = true, .misdirect = misdirect, .ino = ino, .off = off,
                                   .len = n};
    if (misdirect) {
        pd->target = rk_prng_below(&d->prng, in->durable_len - SIMDISK_SECTOR_BYTES - m + 1);
        pd->n_bytes = m;
        memcpy(pd->bytes, buf, (size_t)m);
    }
    d->damaged_since_crash = true;
}

/* append and pwrite: len bytes at off, or (a write fault) a random prefix of them and an error. */
static int file_write(struct simdisk *d, struct fs_file *f, const char *verb, bool at_end,
                      uint64_t off, const void *buf, size_t len, struct rk_errmsg *err)
{
    RK_ASSERT(buf != NULL || len == 0);
    int rc = file_enter(d, f, verb, err);
    if (rc != RK_OK)
        return rc;
    struct simdisk_inode *in = inode_at(d, f->ino);
    if (at_end)
        off = in->len;
    if (off > SIMDISK_FILE_BYTES_MAX || len > SIMDISK_FILE_BYTES_MAX - off)
        return rk_errf(err, RK_ENOSPC, "simdisk: %s%s: file would exceed %llu bytes", verb, f->name,
                       (unsigned long long)SIMDISK_FILE_BYTES_MAX);
    size_t n = len;
    rc = RK_OK;
    if (fault_chance(d, d->faults.write_error)) {
        n = len == 0 ? 0 : (size_t)rk_prng_below(&d->prng, len);
        rc = rk_prng_below(&d->prng, 2) == 0 ? RK_EIO : RK_ENOSPC;
    }
    if (n > 0) {
        uint64_t end = off + n;
        uint64_t from = off < in->len ? off : in->len;
        if (!inode_reserve(d, in, end) || !inode_shadow_range(d, in, from, end))
            return rk_errf(err, RK_ENOSPC, "simdisk: %s%s: disk full", verb, f->name);
        if (off > in->len)
            memset(in->data + in->len, 0, (size_t)(off - in->len));
        memcpy(in->data + off, buf, n);
        if (end > in->len)
            in->len = end;
        write_damage(d, f->ino, in, off, buf, n, rc == RK_OK);
    }
    if (rc != RK_OK)
        return rk_errf(err, rc, "simdisk: %s%s at %llu: injected %s after %zu of %zu bytes", verb,
                       f->name, (unsigned long long)off,
                       rc == RK_EIO ? "I/O error" : "out of space", n, len);
    return RK_OK;
}

static int disk_append(struct fs *fs, struct fs_file *f, const void *buf, size_t len,
                       struct rk_errmsg *err)
{
    return file_write(simdisk_of(fs), f, "append to ", true, 0, buf, len, err);
}

static int disk_pwrite(struct fs *fs, struct fs_file *f, uint64_t off, const void *buf, size_t len,
                       struct rk_errmsg *err)
{
    return file_write(simdisk_of(fs), f, "pwrite to ", false, off, buf, len, err);
}

static int disk_sync(struct fs *fs, struct fs_file *f, struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    int rc = file_enter(d, f, "sync of ", err);
    if (rc != RK_OK)
        return rc;
    d->busy_us += d->faults.sync_us;
    if (fault_chance(d, d->faults.sync_error))
        return rk_errf(err, RK_EIO, "simdisk: sync of %s: injected I/O error", f->name);
    struct simdisk_inode *in = inode_at(d, f->ino);
    inode_drop_shadow(d, in);
    in->durable_len = in->len;
    /* Give back what a truncation left unused (invariant 1 holds: durable_len == len). */
    if (in->cap > 4 * (uint64_t)SIMDISK_PAGE_BYTES && in->len < in->cap / 4) {
        uint64_t cap = in->len < SIMDISK_PAGE_BYTES ? SIMDISK_PAGE_BYTES : in->len;
        uint8_t *v = realloc(in->data, (size_t)cap);
        if (v != NULL) {
            d->bytes_held -= in->cap - cap;
            in->data = v;
            in->cap = cap;
        }
    }
    return RK_OK;
}

static int disk_size(struct fs *fs, struct fs_file *f, uint64_t *size, struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    RK_ASSERT(size != NULL);
    int rc = file_enter(d, f, "size of ", err);
    if (rc != RK_OK)
        return rc;
    *size = inode_at(d, f->ino)->len;
    return RK_OK;
}

static int disk_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    int rc = file_enter(d, f, "truncate of ", err);
    if (rc != RK_OK)
        return rc;
    if (size > SIMDISK_FILE_BYTES_MAX || !inode_resize(d, inode_at(d, f->ino), size))
        return rk_errf(err, RK_ENOSPC, "simdisk: truncate of %s to %llu: disk full", f->name,
                       (unsigned long long)size);
    struct simdisk_inode *in = inode_at(d, f->ino);
    if (in->has_bad && in->bad_sector >= size)
        in->has_bad = false;
    struct simdisk_pending *pd = &d->pending;
    if (pd->armed && pd->ino == f->ino &&
        (pd->off + pd->len > size || (pd->misdirect && pd->target + pd->n_bytes > size)))
        pd->armed = false; /* what it would damage is cut (and may be written again) */
    return RK_OK;
}

/* ---- fs_ops: the directory ------------------------------------------------------------------ */

static int disk_rename(struct fs *fs, const char *from, const char *to, struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    if (!disk_enter(d))
        return disk_dead(d, err, "rename ", from);
    if (!fs_name_valid(from) || !fs_name_valid(to))
        return rk_errf(err, RK_EINVAL, "simdisk: rename: invalid file name");
    uint32_t pos;
    if (!dir_find(&d->cur, from, &pos))
        return rk_errf(err, RK_ENOENT, "simdisk: rename %s to %s: no such file", from, to);
    if (strcmp(from, to) == 0)
        return RK_OK;
    uint32_t ino = d->cur.e[pos].ino;
    /* Erase first: the insertion below then has room without allocating (D3: no failure
     * halfway). */
    dir_erase(&d->cur, pos);
    if (dir_find(&d->cur, to, &pos)) {
        uint32_t old = d->cur.e[pos].ino;
        d->cur.e[pos].ino = ino;
        inode_at(d, old)->cur_names--;
        inode_release(d, old);
    } else {
        dir_insert(d, &d->cur, pos, to, ino);
    }
    return RK_OK;
}

static int disk_remove(struct fs *fs, const char *name, struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    if (!disk_enter(d))
        return disk_dead(d, err, "remove ", name);
    if (!fs_name_valid(name))
        return rk_errf(err, RK_EINVAL, "simdisk: remove: invalid file name");
    uint32_t pos;
    if (!dir_find(&d->cur, name, &pos))
        return rk_errf(err, RK_ENOENT, "simdisk: remove %s: no such file", name);
    uint32_t ino = d->cur.e[pos].ino;
    dir_erase(&d->cur, pos);
    inode_at(d, ino)->cur_names--;
    inode_release(d, ino);
    return RK_OK;
}

static int disk_list(struct fs *fs, bool (*fn)(void *ctx, const char *name), void *ctx,
                     struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    RK_ASSERT(fn != NULL);
    if (!disk_enter(d))
        return disk_dead(d, err, "list", "");
    /* Each step looks up the first name after the last one reported, so fn may create, remove
     * or rename files: every name present throughout is reported once, in strcmp order. */
    char last[FS_NAME_MAX + 1] = "";
    for (;;) {
        uint32_t pos;
        if (dir_find(&d->cur, last, &pos))
            pos++;
        if (pos >= d->cur.count)
            break;
        RK_ASSERT(strcmp(d->cur.e[pos].name, last) > 0);
        memcpy(last, d->cur.e[pos].name, sizeof(last));
        if (!fn(ctx, last))
            break;
    }
    return RK_OK;
}

/* Recounts dur_names from the durable map and frees what nothing refers to any more. */
static void disk_recount_durable(struct simdisk *d)
{
    for (uint32_t i = 0; i < d->inode_count; i++)
        d->inodes[i].dur_names = 0;
    for (uint32_t i = 0; i < d->dur.count; i++)
        inode_at(d, d->dur.e[i].ino)->dur_names++;
    for (uint32_t i = d->inode_count; i > 0; i--) {
        if (d->inodes[i - 1].used)
            inode_release(d, i - 1);
    }
}

static int disk_sync_dir(struct fs *fs, struct rk_errmsg *err)
{
    struct simdisk *d = simdisk_of(fs);
    if (!disk_enter(d))
        return disk_dead(d, err, "sync_dir", "");
    d->busy_us += d->faults.sync_us;
    if (fault_chance(d, d->faults.sync_error))
        return rk_errf(err, RK_EIO, "simdisk: sync_dir: injected I/O error");
    RK_ASSERT(d->cur.count <= d->dir_cap);
    if (d->cur.count > 0)
        memcpy(d->dur.e, d->cur.e, (size_t)d->cur.count * sizeof(d->cur.e[0]));
    d->dur.count = d->cur.count;
    disk_recount_durable(d);
    SIMDISK_CHECK(d);
    return RK_OK;
}

static const struct fs_ops simdisk_ops = {
    .open = disk_open,
    .close = disk_close,
    .pread = disk_pread,
    .append = disk_append,
    .pwrite = disk_pwrite,
    .sync = disk_sync,
    .size = disk_size,
    .truncate = disk_truncate,
    .rename = disk_rename,
    .remove = disk_remove,
    .list = disk_list,
    .sync_dir = disk_sync_dir,
};

/* ---- the simulator's side ------------------------------------------------------------------- */

#ifdef RK_SLOW_ASSERTS
/* Invariants 1–4, O(files + handles + shadow pages). */
static void simdisk_check_names(const struct simdisk *d, const struct simdisk_dir *dir,
                                bool durable)
{
    RK_ASSERT(dir->count <= d->dir_cap);
    for (uint32_t k = 0; k < dir->count; k++) {
        RK_ASSERT(k == 0 || strcmp(dir->e[k - 1].name, dir->e[k].name) < 0);
        RK_ASSERT(dir->e[k].ino < d->inode_count);
        const struct simdisk_inode *in = &d->inodes[dir->e[k].ino];
        RK_ASSERT(in->used);
        RK_ASSERT((durable ? in->dur_names : in->cur_names) == 1);
    }
}

static void simdisk_check(const struct simdisk *d)
{
    simdisk_check_names(d, &d->cur, false);
    simdisk_check_names(d, &d->dur, true);
    uint64_t held = 0;
    uint32_t cur = 0, dur = 0, handles = 0;
    for (uint32_t i = 0; i < d->inode_count; i++) {
        const struct simdisk_inode *in = &d->inodes[i];
        if (!in->used)
            continue;
        RK_ASSERT(in->cur_names <= 1);
        RK_ASSERT(in->dur_names <= 1);
        RK_ASSERT(in->cur_names + in->dur_names + in->handles > 0);
        RK_ASSERT(in->cap >= in->len);
        RK_ASSERT(in->cap >= in->durable_len);
        cur += in->cur_names;
        dur += in->dur_names;
        handles += in->handles;
        held += in->cap;
        if (in->shadow == NULL)
            RK_ASSERT(in->len >= in->durable_len);
        for (uint64_t p = 0; in->shadow != NULL && p < in->shadow_pages; p++) {
            if (in->shadow[p] != NULL)
                held += page_durable_bytes(in, p);
            else
                RK_ASSERT(p * SIMDISK_PAGE_BYTES + page_durable_bytes(in, p) <= in->len);
        }
    }
    RK_ASSERT(cur == d->cur.count);
    RK_ASSERT(dur == d->dur.count);
    RK_ASSERT(handles == d->handles_live);
    RK_ASSERT(held == d->bytes_held);
    uint32_t live = 0;
    for (const struct fs_file *f = d->handles; f != NULL; f = f->next)
        live += f->ino != SIMDISK_NO_INODE;
    RK_ASSERT(live == d->handles_live);
}
#endif

struct simdisk *simdisk_create(uint64_t seed)
{
    struct simdisk *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->fs.ops = &simdisk_ops;
    rk_prng_seed(&d->prng, seed);
    return d;
}

void simdisk_destroy(struct simdisk *d)
{
    if (d == NULL)
        return;
    while (d->handles != NULL) {
        struct fs_file *f = d->handles;
        d->handles = f->next;
        free(f);
    }
    while (d->spare != NULL) {
        struct fs_file *f = d->spare;
        d->spare = f->next;
        free(f);
    }
    for (uint32_t i = 0; i < d->inode_count; i++) {
        struct simdisk_inode *in = &d->inodes[i];
        if (!in->used)
            continue;
        for (uint64_t p = 0; in->shadow != NULL && p < in->shadow_pages; p++)
            free(in->shadow[p]);
        free(in->shadow);
        free(in->data);
    }
    free(d->inodes);
    free(d->cur.e);
    free(d->dur.e);
    free(d);
}

struct fs *simdisk_fs(struct simdisk *d)
{
    RK_ASSERT(d != NULL);
    return &d->fs;
}

void simdisk_set_faults(struct simdisk *d, const struct simdisk_faults *f)
{
    RK_ASSERT(f != NULL);
    RK_ASSERT(f->bitflip_per_read >= 0 && f->bitflip_per_read <= 1);
    RK_ASSERT(f->read_error >= 0 && f->read_error <= 1);
    RK_ASSERT(f->write_error >= 0 && f->write_error <= 1);
    RK_ASSERT(f->sync_error >= 0 && f->sync_error <= 1);
    RK_ASSERT(f->rot_per_crash >= 0 && f->rot_per_crash <= 1);
    RK_ASSERT(f->lse_per_crash >= 0 && f->lse_per_crash <= 1);
    RK_ASSERT(f->lost_write >= 0 && f->lost_write <= 1);
    RK_ASSERT(f->misdirected_write >= 0 && f->misdirected_write <= 1);
    d->faults = *f;
    d->calls = 0;
}

static void damage_note(struct simdisk *d, const char *what, uint32_t ino, uint64_t off)
{
    const char *name = "?";
    for (uint32_t i = 0; i < d->cur.count; i++) {
        if (d->cur.e[i].ino == ino)
            name = d->cur.e[i].name;
    }
    d->damage++;
    snprintf(d->damage_text, sizeof(d->damage_text), "%s in %s at offset %llu", what, name,
             (unsigned long long)off);
}

/* A random file with durable bytes (by inode number: deterministic), or SIMDISK_NO_INODE. */
static uint32_t damage_pick_file(struct simdisk *d)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->inode_count; i++)
        n += d->inodes[i].used && d->inodes[i].cur_names > 0 && d->inodes[i].len > 0;
    if (n == 0)
        return SIMDISK_NO_INODE;
    uint64_t k = rk_prng_below(&d->prng, n);
    for (uint32_t i = 0; i < d->inode_count; i++) {
        if (d->inodes[i].used && d->inodes[i].cur_names > 0 && d->inodes[i].len > 0 && k-- == 0)
            return i;
    }
    return SIMDISK_NO_INODE;
}

/* After a crash restored the durable bytes: the pending lost or misdirected write reaches the
 * media (wrongly), or bit rot or a bad sector appears — one event at most (simdisk.h). */
static void crash_damage(struct simdisk *d, uint64_t pending_durable)
{
    struct simdisk_pending *pd = &d->pending;
    bool event = false;
    if (pd->armed) {
        struct simdisk_inode *in = inode_at(d, pd->ino);
        uint64_t end = pd->off + pd->len;
        if (end > pending_durable)
            end = pending_durable; /* only what a sync made durable is missed */
        if (end > in->len)
            end = in->len;
        if (pd->off < end) {
            memset(in->data + pd->off, 0, (size_t)(end - pd->off));
            damage_note(d, pd->misdirect ? "misdirected write" : "lost write", pd->ino, pd->off);
            event = true;
            if (pd->misdirect && pd->target + pd->n_bytes <= in->len)
                memcpy(in->data + pd->target, pd->bytes, (size_t)pd->n_bytes);
        }
        pd->armed = false;
    }
    if (!event && fault_chance(d, d->faults.rot_per_crash)) {
        uint32_t ino = damage_pick_file(d);
        if (ino != SIMDISK_NO_INODE) {
            struct simdisk_inode *in = inode_at(d, ino);
            uint64_t bit = rk_prng_below(&d->prng, in->len * 8);
            in->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            damage_note(d, "bit rot", ino, bit / 8);
            event = true;
        }
    }
    if (!event && fault_chance(d, d->faults.lse_per_crash)) {
        uint32_t ino = damage_pick_file(d);
        if (ino != SIMDISK_NO_INODE) {
            struct simdisk_inode *in = inode_at(d, ino);
            uint64_t sector = rk_prng_below(&d->prng, in->len) / SIMDISK_SECTOR_BYTES;
            in->has_bad = true;
            in->bad_sector = sector * SIMDISK_SECTOR_BYTES;
            damage_note(d, "latent sector error", ino, in->bad_sector);
        }
    }
    d->damaged_since_crash = false;
}

void simdisk_crash(struct simdisk *d)
{
    SIMDISK_CHECK(d);
    for (struct fs_file *f = d->handles; f != NULL; f = f->next) {
        if (f->ino == SIMDISK_NO_INODE)
            continue;
        struct simdisk_inode *in = inode_at(d, f->ino);
        RK_ASSERT(in->handles > 0);
        in->handles--;
        f->ino = SIMDISK_NO_INODE;
    }
    d->handles_live = 0;
    /* D2: the names are the durable ones. Same capacity (invariant 4): no allocation. */
    if (d->dur.count > 0)
        memcpy(d->cur.e, d->dur.e, (size_t)d->dur.count * sizeof(d->dur.e[0]));
    d->cur.count = d->dur.count;
    for (uint32_t i = 0; i < d->inode_count; i++)
        d->inodes[i].cur_names = 0;
    for (uint32_t i = 0; i < d->cur.count; i++)
        inode_at(d, d->cur.e[i].ino)->cur_names++;
    /* D1: by inode number, so the torn tails draw from the PRNG in a fixed order. */
    uint64_t pending_durable = 0; /* of the pending write's file, before the crash */
    if (d->pending.armed)
        pending_durable = inode_at(d, d->pending.ino)->durable_len;
    for (uint32_t i = 0; i < d->inode_count; i++) {
        if (d->inodes[i].used && d->inodes[i].dur_names > 0)
            inode_restore(d, &d->inodes[i]);
    }
    disk_recount_durable(d);
    crash_damage(d, pending_durable);
    d->faults.crash_at_call = 0;
    d->crashed = false;
    SIMDISK_CHECK(d);
}

bool simdisk_crashed(const struct simdisk *d)
{
    return d->crashed;
}

uint64_t simdisk_calls(const struct simdisk *d)
{
    return d->calls;
}

uint64_t simdisk_take_busy_us(struct simdisk *d)
{
    uint64_t us = d->busy_us;
    d->busy_us = 0;
    return us;
}

/* Current view: files with a current name, and removed files still open (as du and df see). */
uint64_t simdisk_bytes(const struct simdisk *d)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < d->inode_count; i++) {
        const struct simdisk_inode *in = &d->inodes[i];
        if (in->used && (in->cur_names > 0 || in->handles > 0))
            sum += in->len;
    }
    return sum;
}

int simdisk_bad_sector(struct simdisk *d, const char *name, uint64_t offset)
{
    if (!fs_name_valid(name))
        return RK_EINVAL;
    uint32_t pos;
    if (!dir_find(&d->cur, name, &pos))
        return RK_ENOENT;
    struct simdisk_inode *in = inode_at(d, d->cur.e[pos].ino);
    if (offset >= in->len || in->has_bad)
        return RK_EINVAL;
    in->has_bad = true;
    in->bad_sector = offset / SIMDISK_SECTOR_BYTES * SIMDISK_SECTOR_BYTES;
    return RK_OK;
}

uint64_t simdisk_damage(const struct simdisk *d)
{
    return d->damage;
}

const char *simdisk_damage_text(const struct simdisk *d)
{
    return d->damage_text;
}

int simdisk_corrupt(struct simdisk *d, const char *name, uint64_t offset, uint8_t mask)
{
    if (!fs_name_valid(name) || mask == 0)
        return RK_EINVAL;
    uint32_t pos;
    if (!dir_find(&d->cur, name, &pos))
        return RK_ENOENT;
    struct simdisk_inode *in = inode_at(d, d->cur.e[pos].ino);
    if (offset >= in->len)
        return RK_EINVAL;
    in->data[offset] ^= mask;
    /* Below durable_len an unshadowed page is the durable copy itself (invariant 2). */
    uint64_t p = offset / SIMDISK_PAGE_BYTES;
    if (offset < in->durable_len && in->shadow != NULL && in->shadow[p] != NULL)
        in->shadow[p][offset % SIMDISK_PAGE_BYTES] ^= mask;
    return RK_OK;
}
