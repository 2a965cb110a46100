/*
 * fs_posix.c — struct fs (core/fs/fs.h) over one POSIX directory; see fs_posix.h for P1–P3.
 *
 * Invariants:
 *   I1  dir_fd is the directory opened by fs_posix_open, until fs_posix_close; every name-based
 *       call is relative to it, and every name passed fs_name_valid first (so it has no '/').
 *   I2  open_files counts the handles handed out and not yet closed; it is 0 at fs_posix_close.
 *   I3  errno is read once, right after the failing call, and passed on as a value: formatting a
 *       message (vsnprintf, strerror) may change errno.
 *   I4  every read and write loops over short transfers and EINTR; a write that returns 0 bytes
 *       for a non-empty request is an error, so no loop can spin forever on a stuck descriptor.
 *
 * Lifecycle of a handle (each arrow is the function that takes it):
 *
 *     (none) --fs_posix_open_file--> open --fs_posix_sync fails--> sync_failed (P2: sticky)
 *                                      |                              |
 *                                      +------fs_posix_close_file-----+--> (none)
 */
#define _POSIX_C_SOURCE   200809L
#define _FILE_OFFSET_BITS 64

#include "fs_posix.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "metrics.h"

/* Offsets are uint64_t in the interface and off_t here; both must hold any file offset. */
static_assert(sizeof(off_t) == sizeof(int64_t), "off_t must be 64 bits");
#define FS_POSIX_OFFSET_MAX ((uint64_t)INT64_MAX)

/* One read or write call moves at most this much (Linux moves at most 0x7ffff000 anyway). */
#define FS_POSIX_IO_BYTES_MAX ((size_t)1 << 30)
/* The most files list accepts in one directory: a data directory holds far fewer. */
#define FS_POSIX_LIST_FILES_MAX ((size_t)1 << 20)
/* The longest directory path fs_posix_open accepts. */
#define FS_POSIX_PATH_BYTES_MAX 4096
/* Rounds of "open fails: missing; create fails: exists" before open gives up (another process
 * creating and removing the same file in a loop; never happens to a node's own directory). */
#define FS_POSIX_OPEN_ROUNDS_MAX 8
/* Names in messages are cut to this many bytes: an invalid name may be any length. */
#define FS_POSIX_MSG_NAME_BYTES 80

#define FS_POSIX_FILE_MODE 0644
#define FS_POSIX_DIR_MODE  0755

/* fdatasync where the system has it (it skips metadata that reads do not need, such as mtime);
 * fsync elsewhere. The message names whichever is called. */
#if defined(_POSIX_SYNCHRONIZED_IO) && _POSIX_SYNCHRONIZED_IO > 0
#define FS_POSIX_SYNC_CALL "fdatasync"
static int fs_posix_datasync(int fd)
{
    return fdatasync(fd);
}
#else
#define FS_POSIX_SYNC_CALL "fsync"
static int fs_posix_datasync(int fd)
{
    return fsync(fd);
}
#endif

/* The size of one open file (one inode), shared by every handle of it in this fs, so that an
 * append costs one pwrite and no fstat (P3). Unknown after a failed write or truncate (which may
 * have moved the end), until the next append reads it again. */
struct fs_inode {
    struct fs_inode *next;
    dev_t dev;
    ino_t ino;
    uint32_t refs; /* handles of it */
    bool size_known;
    uint64_t size;
};

struct fs_file {
    int fd;
    bool sync_failed; /* P2 */
    struct fs_inode *inode;
    char name[FS_NAME_MAX + 1];
};

struct fs_posix {
    struct fs fs;         /* what callers hold; fs_posix_of goes back from it */
    int dir_fd;           /* I1 */
    bool dir_sync_failed; /* P2 */
    uint32_t open_files;  /* I2 */
    struct fs_inode *inodes; /* of the open files */
    struct metrics_hist *sync_hist; /* each file sync's duration, or NULL */
    char path[];          /* the directory as given, for messages */
};

static const struct fs_ops fs_posix_ops;

static struct fs_posix *fs_posix_of(struct fs *fs)
{
    RK_ASSERT(fs != NULL);
    RK_ASSERT(fs->ops == &fs_posix_ops);
    return (struct fs_posix *)(void *)((char *)fs - offsetof(struct fs_posix, fs));
}

/* ---- errors ------------------------------------------------------------------------------ */

static int fs_posix_code_of(int errnum)
{
    switch (errnum) {
    case ENOENT:
        return RK_ENOENT;
    case EEXIST:
        return RK_EEXIST;
    case ENOSPC:
        return RK_ENOSPC;
#ifdef EDQUOT
    case EDQUOT:
        return RK_ENOSPC;
#endif
    default:
        return RK_EIO;
    }
}

/* Sets err to "<fmt...>: <strerror(errnum)>" and returns the code errnum maps to (I3). */
static int fs_posix_fail(struct rk_errmsg *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fs_posix_fail(struct rk_errmsg *err, int errnum, const char *fmt, ...)
{
    RK_ASSERT(errnum != 0);
    char what[RK_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return rk_errf(err, fs_posix_code_of(errnum), "%s: %s", what, strerror(errnum));
}

static int fs_posix_check_name(const char *op, const char *name, struct rk_errmsg *err)
{
    RK_ASSERT(name != NULL);
    if (fs_name_valid(name))
        return RK_OK;
    return rk_errf(err, RK_EINVAL, "%s \"%.*s\": invalid file name (1..%d bytes of [A-Za-z0-9._-])",
                   op, FS_POSIX_MSG_NAME_BYTES, name, FS_NAME_MAX);
}

/* P2: after a failed directory fsync nothing about the directory is known to be durable. */
static int fs_posix_check_dir_sync(struct fs_posix *p, const char *op, const char *name,
                                   struct rk_errmsg *err)
{
    if (!p->dir_sync_failed)
        return RK_OK;
    return rk_errf(err, RK_EIO,
                   "%s %s: refused: an earlier fsync of directory %s failed, so its durability "
                   "is unknown",
                   op, name, p->path);
}

/* fsync of the directory; returns 0 or the errno of the failure, which is sticky (P2). */
static int fs_posix_fsync_dir(struct fs_posix *p)
{
    RK_ASSERT(!p->dir_sync_failed);
    for (;;) {
        if (fsync(p->dir_fd) == 0)
            return 0;
        int e = errno;
        if (e != EINTR) {
            p->dir_sync_failed = true;
            return e;
        }
    }
}

/* ---- files ------------------------------------------------------------------------------- */

static int fs_posix_openat(int dir_fd, const char *name, int oflags)
{
    for (;;) {
        int fd = openat(dir_fd, name, oflags, FS_POSIX_FILE_MODE);
        if (fd >= 0 || errno != EINTR)
            return fd;
    }
}

/* Opens name per flags; *created says whether this call made the file (P1 then fsyncs the
 * directory). Without FS_EXCL, "open, else create exclusively" tells the two cases apart. */
static int fs_posix_open_fd(struct fs_posix *p, const char *name, uint32_t flags, int *fd_out,
                            bool *created, struct rk_errmsg *err)
{
    const int oflags = O_RDWR | O_CLOEXEC;
    *created = false;
    if (flags & FS_EXCL) {
        *fd_out = fs_posix_openat(p->dir_fd, name, oflags | O_CREAT | O_EXCL);
        if (*fd_out < 0)
            return fs_posix_fail(err, errno, "create %s", name);
        *created = true;
        return RK_OK;
    }
    for (int round = 0; round < FS_POSIX_OPEN_ROUNDS_MAX; round++) {
        *fd_out = fs_posix_openat(p->dir_fd, name, oflags);
        if (*fd_out >= 0)
            return RK_OK;
        int e = errno;
        if (e != ENOENT || !(flags & FS_CREATE))
            return fs_posix_fail(err, e, "open %s", name);
        *fd_out = fs_posix_openat(p->dir_fd, name, oflags | O_CREAT | O_EXCL);
        if (*fd_out >= 0) {
            *created = true;
            return RK_OK;
        }
        e = errno;
        if (e != EEXIST)
            return fs_posix_fail(err, e, "create %s", name);
        /* Created by someone else between the two calls: open it. */
    }
    return rk_errf(err, RK_EIO, "open %s: created and removed by someone else %d times in a row",
                   name, FS_POSIX_OPEN_ROUNDS_MAX);
}

static int fs_posix_open_file(struct fs *fs, const char *name, uint32_t flags, struct fs_file **out,
                              struct rk_errmsg *err)
{
    struct fs_posix *p = fs_posix_of(fs);
    RK_ASSERT(out != NULL);
    RK_ASSERT((flags & ~(uint32_t)(FS_CREATE | FS_EXCL)) == 0);
    RK_ASSERT(!(flags & FS_EXCL) || (flags & FS_CREATE));
    int rc = fs_posix_check_name("open", name, err);
    if (rc != RK_OK)
        return rc;
    if (flags & FS_CREATE) {
        rc = fs_posix_check_dir_sync(p, "create", name, err);
        if (rc != RK_OK)
            return rc;
    }
    struct fs_file *f = malloc(sizeof(*f));
    if (f == NULL)
        return rk_errf(err, RK_ENOMEM, "open %s: out of memory", name);
    int fd = -1;
    bool created = false;
    rc = fs_posix_open_fd(p, name, flags, &fd, &created, err);
    if (rc != RK_OK)
        goto err_free_file;
    if (created) {
        int e = fs_posix_fsync_dir(p);
        if (e != 0) {
            rc = fs_posix_fail(err, e, "create %s: fsync of directory %s", name, p->path);
            goto err_close_fd;
        }
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = fs_posix_fail(err, errno, "open %s: fstat", name);
        goto err_close_fd;
    }
    struct fs_inode *in = p->inodes;
    while (in != NULL && (in->dev != st.st_dev || in->ino != st.st_ino))
        in = in->next;
    if (in == NULL) {
        in = calloc(1, sizeof(*in));
        if (in == NULL) {
            rc = rk_errf(err, RK_ENOMEM, "open %s: out of memory", name);
            goto err_close_fd;
        }
        in->dev = st.st_dev;
        in->ino = st.st_ino;
        in->size_known = true;
        in->size = (uint64_t)st.st_size;
        in->next = p->inodes;
        p->inodes = in;
    }
    in->refs++;
    f->fd = fd;
    f->sync_failed = false;
    f->inode = in;
    memcpy(f->name, name, strlen(name) + 1);
    p->open_files++;
    *out = f;
    return RK_OK;

err_close_fd:
    (void)close(fd);
err_free_file:
    free(f);
    return rc;
}

static void fs_posix_close_file(struct fs *fs, struct fs_file *f)
{
    struct fs_posix *p = fs_posix_of(fs);
    RK_ASSERT(f != NULL);
    RK_ASSERT(f->fd >= 0);
    RK_ASSERT(p->open_files > 0);
    /* close's result is ignored: durability is sync's job (D1), and Linux frees the descriptor
     * even when close fails, so a retry could close a descriptor opened meanwhile. */
    (void)close(f->fd);
    f->fd = -1;
    p->open_files--;
    struct fs_inode *in = f->inode;
    RK_ASSERT(in != NULL && in->refs > 0);
    if (--in->refs == 0) {
        struct fs_inode **link = &p->inodes;
        while (*link != in)
            link = &(*link)->next;
        *link = in->next;
        free(in);
    }
    free(f);
}

static int fs_posix_pread(struct fs *fs, struct fs_file *f, uint64_t off, void *buf, size_t len,
                          size_t *got, struct rk_errmsg *err)
{
    (void)fs_posix_of(fs);
    RK_ASSERT(f != NULL);
    RK_ASSERT(buf != NULL || len == 0);
    RK_ASSERT(got != NULL);
    *got = 0;
    /* No file reaches past FS_POSIX_OFFSET_MAX, so bytes there are past the end: a short read,
     * like any read at the end of a file (offsets may come from untrusted bytes). */
    if (off >= FS_POSIX_OFFSET_MAX)
        return RK_OK;
    if (len > FS_POSIX_OFFSET_MAX - off)
        len = (size_t)(FS_POSIX_OFFSET_MAX - off);
    unsigned char *dst = buf;
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < FS_POSIX_IO_BYTES_MAX ? len - done : FS_POSIX_IO_BYTES_MAX;
        ssize_t n = pread(f->fd, dst + done, want, (off_t)(off + done));
        if (n < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            *got = done;
            return fs_posix_fail(err, e, "pread %s at offset %" PRIu64, f->name, off + done);
        }
        if (n == 0)
            break; /* the end of the file */
        RK_ASSERT((size_t)n <= want);
        done += (size_t)n;
    }
    *got = done;
    return RK_OK;
}

/* Writes all of buf at off (I4); op names the interface call in messages. */
static int fs_posix_write_at(struct fs_file *f, const char *op, uint64_t off, const void *buf,
                             size_t len, struct rk_errmsg *err)
{
    RK_ASSERT(buf != NULL || len == 0);
    if (off > FS_POSIX_OFFSET_MAX || len > FS_POSIX_OFFSET_MAX - off)
        return rk_errf(err, RK_EINVAL,
                       "%s %s at offset %" PRIu64 ": %zu bytes would end past the largest offset",
                       op, f->name, off, len);
    const unsigned char *src = buf;
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < FS_POSIX_IO_BYTES_MAX ? len - done : FS_POSIX_IO_BYTES_MAX;
        ssize_t n = pwrite(f->fd, src + done, want, (off_t)(off + done));
        if (n < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            return fs_posix_fail(err, e, "%s %s at offset %" PRIu64, op, f->name, off + done);
        }
        if (n == 0)
            return rk_errf(err, RK_EIO, "%s %s at offset %" PRIu64 ": pwrite wrote nothing", op,
                           f->name, off + done);
        RK_ASSERT((size_t)n <= want);
        done += (size_t)n;
    }
    return RK_OK;
}

/* write_at and the shared size (P3): a write that fails may have moved the end. */
static int fs_posix_write_sized(struct fs_file *f, const char *op, uint64_t off,
                                const void *buf, size_t len, struct rk_errmsg *err)
{
    int rc = fs_posix_write_at(f, op, off, buf, len, err);
    struct fs_inode *in = f->inode;
    if (rc != RK_OK)
        in->size_known = false;
    else if (in->size_known && off + len > in->size)
        in->size = off + len;
    return rc;
}

static int fs_posix_file_size(struct fs_file *f, const char *op, uint64_t *size,
                              struct rk_errmsg *err)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return fs_posix_fail(err, errno, "%s %s: fstat", op, f->name);
    RK_ASSERT(st.st_size >= 0);
    *size = (uint64_t)st.st_size;
    f->inode->size = *size;
    f->inode->size_known = true;
    return RK_OK;
}

/* P3: at the file's size, shared by its handles, so that appends through two handles of one
 * file never overlap; read with fstat only when a failure left it unknown. */
static int fs_posix_append(struct fs *fs, struct fs_file *f, const void *buf, size_t len,
                           struct rk_errmsg *err)
{
    (void)fs_posix_of(fs);
    RK_ASSERT(f != NULL);
    uint64_t end = f->inode->size;
    if (!f->inode->size_known) {
        int rc = fs_posix_file_size(f, "append", &end, err);
        if (rc != RK_OK)
            return rc;
    }
    return fs_posix_write_sized(f, "append", end, buf, len, err);
}

static int fs_posix_pwrite(struct fs *fs, struct fs_file *f, uint64_t off, const void *buf,
                           size_t len, struct rk_errmsg *err)
{
    (void)fs_posix_of(fs);
    RK_ASSERT(f != NULL);
    return fs_posix_write_sized(f, "pwrite", off, buf, len, err);
}

static uint64_t fs_posix_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int fs_posix_sync(struct fs *fs, struct fs_file *f, struct rk_errmsg *err)
{
    struct fs_posix *p = fs_posix_of(fs);
    RK_ASSERT(f != NULL);
    if (f->sync_failed)
        return rk_errf(err, RK_EIO,
                       FS_POSIX_SYNC_CALL " %s: refused: an earlier sync of this handle failed, "
                                          "so its durability is unknown",
                       f->name);
    uint64_t t0 = p->sync_hist != NULL ? fs_posix_now_us() : 0;
    for (;;) {
        if (fs_posix_datasync(f->fd) == 0) {
            if (p->sync_hist != NULL)
                metrics_hist_observe(p->sync_hist, fs_posix_now_us() - t0);
            return RK_OK;
        }
        int e = errno;
        if (e != EINTR) {
            f->sync_failed = true;
            return fs_posix_fail(err, e, FS_POSIX_SYNC_CALL " %s", f->name);
        }
    }
}

static int fs_posix_size(struct fs *fs, struct fs_file *f, uint64_t *size, struct rk_errmsg *err)
{
    (void)fs_posix_of(fs);
    RK_ASSERT(f != NULL);
    RK_ASSERT(size != NULL);
    return fs_posix_file_size(f, "size", size, err);
}

static int fs_posix_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct rk_errmsg *err)
{
    (void)fs_posix_of(fs);
    RK_ASSERT(f != NULL);
    if (size > FS_POSIX_OFFSET_MAX)
        return rk_errf(err, RK_EINVAL, "truncate %s to %" PRIu64 ": past the largest offset",
                       f->name, size);
    for (;;) {
        if (ftruncate(f->fd, (off_t)size) == 0) {
            f->inode->size = size;
            f->inode->size_known = true;
            return RK_OK;
        }
        int e = errno;
        if (e != EINTR) {
            f->inode->size_known = false;
            return fs_posix_fail(err, e, "truncate %s to %" PRIu64, f->name, size);
        }
    }
}

/* ---- the directory ----------------------------------------------------------------------- */

static int fs_posix_rename(struct fs *fs, const char *from, const char *to, struct rk_errmsg *err)
{
    struct fs_posix *p = fs_posix_of(fs);
    int rc = fs_posix_check_name("rename", from, err);
    if (rc == RK_OK)
        rc = fs_posix_check_name("rename", to, err);
    if (rc == RK_OK)
        rc = fs_posix_check_dir_sync(p, "rename", from, err);
    if (rc != RK_OK)
        return rc;
    if (renameat(p->dir_fd, from, p->dir_fd, to) != 0)
        return fs_posix_fail(err, errno, "rename %s to %s", from, to);
    int e = fs_posix_fsync_dir(p);
    if (e != 0)
        return fs_posix_fail(err, e, "rename %s to %s: done, but fsync of directory %s", from, to,
                             p->path);
    return RK_OK;
}

static int fs_posix_remove(struct fs *fs, const char *name, struct rk_errmsg *err)
{
    struct fs_posix *p = fs_posix_of(fs);
    int rc = fs_posix_check_name("remove", name, err);
    if (rc == RK_OK)
        rc = fs_posix_check_dir_sync(p, "remove", name, err);
    if (rc != RK_OK)
        return rc;
    if (unlinkat(p->dir_fd, name, 0) != 0)
        return fs_posix_fail(err, errno, "remove %s", name);
    int e = fs_posix_fsync_dir(p);
    if (e != 0)
        return fs_posix_fail(err, e, "remove %s: done, but fsync of directory %s", name, p->path);
    return RK_OK;
}

struct fs_posix_names {
    char (*v)[FS_NAME_MAX + 1];
    size_t n;
    size_t cap;
};

static int fs_posix_list_add(struct fs_posix_names *names, const char *name, struct rk_errmsg *err)
{
    if (names->n == names->cap) {
        if (names->cap == FS_POSIX_LIST_FILES_MAX)
            return rk_errf(err, RK_ETOOBIG, "list: more than %zu files", FS_POSIX_LIST_FILES_MAX);
        size_t cap = names->cap == 0 ? 64 : names->cap * 2;
        if (cap > FS_POSIX_LIST_FILES_MAX)
            cap = FS_POSIX_LIST_FILES_MAX;
        void *v = realloc(names->v, cap * sizeof(names->v[0]));
        if (v == NULL)
            return rk_errf(err, RK_ENOMEM, "list: out of memory for %zu names", cap);
        names->v = v;
        names->cap = cap;
    }
    RK_ASSERT(strlen(name) <= FS_NAME_MAX);
    memcpy(names->v[names->n], name, strlen(name) + 1);
    names->n++;
    return RK_OK;
}

/* Collects the valid names of regular files (following symbolic links, as open does). A name
 * that vanishes between readdir and fstatat was removed meanwhile: it is skipped. */
static int fs_posix_list_collect(struct fs_posix *p, DIR *d, struct fs_posix_names *names,
                                 struct rk_errmsg *err)
{
    for (;;) {
        errno = 0;
        struct dirent *ent = readdir(d);
        if (ent == NULL) {
            int e = errno;
            if (e != 0)
                return fs_posix_fail(err, e, "list %s: readdir", p->path);
            return RK_OK;
        }
        if (!fs_name_valid(ent->d_name))
            continue;
        struct stat st;
        if (fstatat(p->dir_fd, ent->d_name, &st, 0) != 0) {
            int e = errno;
            if (e == ENOENT)
                continue;
            return fs_posix_fail(err, e, "list %s: fstatat %s", p->path, ent->d_name);
        }
        if (!S_ISREG(st.st_mode))
            continue;
        int rc = fs_posix_list_add(names, ent->d_name, err);
        if (rc != RK_OK)
            return rc;
    }
}

static int fs_posix_compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int fs_posix_list(struct fs *fs, bool (*fn)(void *ctx, const char *name), void *ctx,
                         struct rk_errmsg *err)
{
    struct fs_posix *p = fs_posix_of(fs);
    RK_ASSERT(fn != NULL);
    /* A fresh open of ".", not a dup of dir_fd: a dup shares the read position, so a second
     * list would start where the first one stopped. */
    int fd = fs_posix_openat(p->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fs_posix_fail(err, errno, "list %s: open", p->path);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        (void)close(fd);
        return fs_posix_fail(err, e, "list %s: fdopendir", p->path);
    }
    struct fs_posix_names names = {0};
    int rc = fs_posix_list_collect(p, d, &names, err);
    (void)closedir(d);              /* closes fd */
    if (rc == RK_OK && names.n > 1) /* qsort's array may not be NULL, even when empty */
        qsort(names.v, names.n, sizeof(names.v[0]), fs_posix_compare_names);
    if (rc == RK_OK) {
        /* fn runs after the directory is closed, so it may create, rename or remove. */
        for (size_t i = 0; i < names.n; i++) {
            RK_ASSERT_SLOW(i == 0 || strcmp(names.v[i - 1], names.v[i]) < 0);
            if (!fn(ctx, names.v[i]))
                break;
        }
    }
    free(names.v);
    return rc;
}

static int fs_posix_sync_dir(struct fs *fs, struct rk_errmsg *err)
{
    struct fs_posix *p = fs_posix_of(fs);
    if (p->dir_sync_failed)
        return rk_errf(err, RK_EIO,
                       "fsync of directory %s: refused: an earlier one failed, so its "
                       "durability is unknown",
                       p->path);
    int e = fs_posix_fsync_dir(p);
    if (e != 0)
        return fs_posix_fail(err, e, "fsync of directory %s", p->path);
    return RK_OK;
}

static const struct fs_ops fs_posix_ops = {
    .open = fs_posix_open_file,
    .close = fs_posix_close_file,
    .pread = fs_posix_pread,
    .append = fs_posix_append,
    .pwrite = fs_posix_pwrite,
    .sync = fs_posix_sync,
    .size = fs_posix_size,
    .truncate = fs_posix_truncate,
    .rename = fs_posix_rename,
    .remove = fs_posix_remove,
    .list = fs_posix_list,
    .sync_dir = fs_posix_sync_dir,
};

/* ---- open and close ---------------------------------------------------------------------- */

/* fsync of the directory that holds dir, so that a directory just made survives a crash. */
static int fs_posix_sync_parent(const char *dir, struct rk_errmsg *err)
{
    char parent[FS_POSIX_PATH_BYTES_MAX + 1];
    size_t n = strlen(dir);
    RK_ASSERT(n > 0 && n <= FS_POSIX_PATH_BYTES_MAX);
    memcpy(parent, dir, n + 1);
    while (n > 1 && parent[n - 1] == '/')
        n--; /* "a/b/" is "a/b" */
    while (n > 0 && parent[n - 1] != '/')
        n--; /* drop the last component */
    while (n > 1 && parent[n - 1] == '/')
        n--; /* "a//b" has parent "a" */
    if (n == 0)
        memcpy(parent, ".", 2);
    else
        parent[n] = '\0';
    int fd = fs_posix_openat(AT_FDCWD, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fs_posix_fail(err, errno, "mkdir %s: open parent %s", dir, parent);
    int rc = RK_OK;
    while (fsync(fd) != 0) {
        int e = errno;
        if (e != EINTR) {
            rc = fs_posix_fail(err, e, "mkdir %s: fsync of parent %s", dir, parent);
            break;
        }
    }
    (void)close(fd);
    return rc;
}

static int fs_posix_make_dir(const char *dir, struct rk_errmsg *err)
{
    if (mkdir(dir, FS_POSIX_DIR_MODE) == 0)
        return fs_posix_sync_parent(dir, err);
    int e = errno;
    if (e == EEXIST)
        return RK_OK; /* if it is not a directory, opening it says so */
    return fs_posix_fail(err, e, "mkdir %s", dir);
}

int fs_posix_open(const char *dir, bool create_dir, struct fs **out, struct rk_errmsg *err)
{
    RK_ASSERT(dir != NULL);
    RK_ASSERT(out != NULL);
    *out = NULL;
    size_t len = strlen(dir);
    if (len == 0 || len > FS_POSIX_PATH_BYTES_MAX)
        return rk_errf(err, RK_EINVAL, "open directory \"%.*s\": path of %zu bytes (1..%d)",
                       FS_POSIX_MSG_NAME_BYTES, dir, len, FS_POSIX_PATH_BYTES_MAX);
    if (create_dir) {
        int rc = fs_posix_make_dir(dir, err);
        if (rc != RK_OK)
            return rc;
    }
    struct fs_posix *p = malloc(sizeof(*p) + len + 1);
    if (p == NULL)
        return rk_errf(err, RK_ENOMEM, "open directory %s: out of memory", dir);
    p->dir_fd = fs_posix_openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->dir_fd < 0) {
        int rc = fs_posix_fail(err, errno, "open directory %s", dir);
        free(p);
        return rc;
    }
    p->fs.ops = &fs_posix_ops;
    p->dir_sync_failed = false;
    p->open_files = 0;
    p->inodes = NULL;
    p->sync_hist = NULL;
    memcpy(p->path, dir, len + 1);
    *out = &p->fs;
    return RK_OK;
}

void fs_posix_sync_histogram(struct fs *fs, struct metrics_hist *h)
{
    fs_posix_of(fs)->sync_hist = h;
}

void fs_posix_close(struct fs *fs)
{
    if (fs == NULL)
        return;
    struct fs_posix *p = fs_posix_of(fs);
    RK_ASSERT(p->open_files == 0);
    (void)close(p->dir_fd);
    p->dir_fd = -1;
    p->fs.ops = NULL;
    free(p);
}
