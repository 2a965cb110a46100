/*
 * fuzz_disk.h — files on the simulated disk (sim/simdisk.h) for the targets that recover a
 * directory (seglog, bitcask) and for the corpus generator: write a file whole and durable,
 * read one back, list names, and a digest of the whole directory (to check that a dry run
 * changed nothing).
 *
 * The fs calls here never fail on a disk without faults; a failure is a bug and aborts.
 */
#ifndef RK_FUZZ_DISK_H
#define RK_FUZZ_DISK_H

#include "fs/fs.h"
#include "fuzz_util.h"
#include "simdisk.h"

#define FZ_DISK_MAX_NAMES 256

struct fz_names {
    uint32_t n;
    char name[FZ_DISK_MAX_NAMES][FS_NAME_MAX + 1];
};

static inline bool fz_names_add(void *ctx, const char *name)
{
    struct fz_names *names = ctx;
    FZ_CHECK(names->n < FZ_DISK_MAX_NAMES, "more than %d files", FZ_DISK_MAX_NAMES);
    FZ_CHECK(strlen(name) <= FS_NAME_MAX, "name '%s' too long", name);
    strcpy(names->name[names->n++], name);
    return true;
}

/* Every file name, in strcmp order. */
static inline void fz_disk_list(struct fs *fs, struct fz_names *names)
{
    struct rk_errmsg err = {{0}};
    names->n = 0;
    int rc = fs->ops->list(fs, fz_names_add, names, &err);
    FZ_CHECK(rc == RK_OK, "list: %s: %s", rk_strerror(rc), err.text);
}

/* Creates or replaces name with p[0..n), synced; the caller syncs the directory. */
static inline void fz_disk_write(struct fs *fs, const char *name, const uint8_t *p, size_t n)
{
    struct rk_errmsg err = {{0}};
    struct fs_file *f = NULL;
    int rc = fs->ops->open(fs, name, FS_CREATE, &f, &err);
    FZ_CHECK(rc == RK_OK, "open %s: %s: %s", name, rk_strerror(rc), err.text);
    rc = fs->ops->truncate(fs, f, 0, &err);
    if (rc == RK_OK && n > 0)
        rc = fs->ops->append(fs, f, p, n, &err);
    if (rc == RK_OK)
        rc = fs->ops->sync(fs, f, &err);
    FZ_CHECK(rc == RK_OK, "write %s: %s: %s", name, rk_strerror(rc), err.text);
    fs->ops->close(fs, f);
}

static inline void fz_disk_sync_dir(struct fs *fs)
{
    struct rk_errmsg err = {{0}};
    int rc = fs->ops->sync_dir(fs, &err);
    FZ_CHECK(rc == RK_OK, "sync_dir: %s: %s", rk_strerror(rc), err.text);
}

/* The contents of name in a malloc'd buffer (the caller frees it); *n its length. */
static inline uint8_t *fz_disk_read(struct fs *fs, const char *name, size_t *n)
{
    struct rk_errmsg err = {{0}};
    struct fs_file *f = NULL;
    int rc = fs->ops->open(fs, name, 0, &f, &err);
    FZ_CHECK(rc == RK_OK, "open %s: %s: %s", name, rk_strerror(rc), err.text);
    uint64_t size = 0;
    rc = fs->ops->size(fs, f, &size, &err);
    FZ_CHECK(rc == RK_OK && size < (1u << 30), "size %s: %s", name, rk_strerror(rc));
    uint8_t *buf = malloc(size == 0 ? 1 : (size_t)size);
    FZ_CHECK(buf != NULL, "out of memory");
    size_t got = 0;
    rc = fs->ops->pread(fs, f, 0, buf, (size_t)size, &got, &err);
    FZ_CHECK(rc == RK_OK && got == size, "read %s: %s", name, rk_strerror(rc));
    fs->ops->close(fs, f);
    *n = (size_t)size;
    return buf;
}

/* A digest of every name and every byte in the directory. */
static inline uint64_t fz_disk_digest(struct fs *fs)
{
    static struct fz_names names;
    fz_disk_list(fs, &names);
    uint64_t h = fz_hash_u64(0, names.n);
    for (uint32_t i = 0; i < names.n; i++) {
        size_t n = 0;
        uint8_t *buf = fz_disk_read(fs, names.name[i], &n);
        h = fz_hash(h, names.name[i], strlen(names.name[i]) + 1);
        h = fz_hash_u64(h, n);
        h = fz_hash(h, buf, n);
        free(buf);
    }
    return h;
}

#endif
