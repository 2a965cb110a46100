/*
 * test_fs_posix.c — node/fs_posix: struct fs over a real POSIX directory.
 *
 * One behaviour per test. Each test gets a fresh mkdtemp directory under /tmp, opened as a
 * struct fs, and the directory is removed afterwards whatever the test did to it. Setup of
 * odd directory contents (invalid names, subdirectories) goes through POSIX calls directly.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/fs.h"
#include "fs_posix.h"

#define DIR_TEMPLATE "/tmp/rk_fs_posix_XXXXXX"
#define PATH_BYTES   512

struct fixture {
    char dir[sizeof(DIR_TEMPLATE)];
    struct fs *fs;
};

/* ---- helpers ----------------------------------------------------------------------------- */

static void path_in(const struct fixture *fx, const char *name, char *out)
{
    int n = snprintf(out, PATH_BYTES, "%s/%s", fx->dir, name);
    assert_true(n > 0 && n < PATH_BYTES);
}

/* Removes dir and what it holds, one level of subdirectories deep (all a test makes). */
static void remove_tree(const char *dir, int depth)
{
    chmod(dir, 0755);
    DIR *d = opendir(dir);
    if (d == NULL)
        return; /* a test removed it */
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        char path[PATH_BYTES];
        snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && depth > 0)
            remove_tree(path, depth - 1);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    memcpy(fx->dir, DIR_TEMPLATE, sizeof(DIR_TEMPLATE));
    assert_non_null(mkdtemp(fx->dir));
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs_posix_open(fx->dir, false, &fx->fs, &err), RK_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    fs_posix_close(fx->fs);
    remove_tree(fx->dir, 1);
    struct stat st;
    assert_int_not_equal(stat(fx->dir, &st), 0); /* nothing left behind */
    free(fx);
    return 0;
}

static struct fs_file *open_ok(struct fs *fs, const char *name, uint32_t flags)
{
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    int rc = fs->ops->open(fs, name, flags, &f, &err);
    if (rc != RK_OK)
        print_error("open %s: %s\n", name, err.text);
    assert_int_equal(rc, RK_OK);
    assert_non_null(f);
    return f;
}

static void append_ok(struct fs *fs, struct fs_file *f, const char *text)
{
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->append(fs, f, text, strlen(text), &err), RK_OK);
}

static void write_file(struct fs *fs, const char *name, const char *text)
{
    struct fs_file *f = open_ok(fs, name, FS_CREATE);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->truncate(fs, f, 0, &err), RK_OK);
    append_ok(fs, f, text);
    fs->ops->close(fs, f);
}

static uint64_t size_of(struct fs *fs, struct fs_file *f)
{
    uint64_t size = UINT64_MAX;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->size(fs, f, &size, &err), RK_OK);
    return size;
}

/* Asserts that name holds exactly text. */
static void assert_file_holds(struct fs *fs, const char *name, const char *text)
{
    struct fs_file *f = open_ok(fs, name, 0);
    char buf[256];
    size_t got = 0;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs->ops->pread(fs, f, 0, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, strlen(text));
    assert_memory_equal(buf, text, got);
    fs->ops->close(fs, f);
}

static bool exists(const struct fixture *fx, const char *name)
{
    char path[PATH_BYTES];
    path_in(fx, name, path);
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Names seen by list, joined with ',' (each followed by one). */
struct seen {
    char text[8192];
    size_t calls;
    size_t stop_after; /* 0: never stop */
    struct fs *remove_from;
};

static bool collect_name(void *ctx, const char *name)
{
    struct seen *s = ctx;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof(s->text) - n, "%s,", name);
    s->calls++;
    if (s->remove_from != NULL) {
        struct rk_errmsg err = {{0}};
        assert_int_equal(s->remove_from->ops->remove(s->remove_from, name, &err), RK_OK);
    }
    return s->stop_after == 0 || s->calls < s->stop_after;
}

static void list_ok(struct fs *fs, struct seen *s)
{
    struct rk_errmsg err = {{0}};
    int rc = fs->ops->list(fs, collect_name, s, &err);
    if (rc != RK_OK)
        print_error("list: %s\n", err.text);
    assert_int_equal(rc, RK_OK);
}

/* ---- opening the directory --------------------------------------------------------------- */

static void open_directory_missing_fails_with_enoent(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_BYTES];
    path_in(fx, "absent", path);
    struct fs *fs = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs_posix_open(path, false, &fs, &err), RK_ENOENT);
    assert_null(fs);
    assert_non_null(strstr(err.text, path));
}

static void open_directory_creates_it_when_asked(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_BYTES];
    path_in(fx, "made", path);
    struct fs *fs = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs_posix_open(path, true, &fs, &err), RK_OK);
    write_file(fs, "x", "y");
    fs_posix_close(fs);
    assert_true(exists(fx, "made/x"));
    /* Opening an existing directory with create_dir is fine too. */
    assert_int_equal(fs_posix_open(path, true, &fs, &err), RK_OK);
    assert_file_holds(fs, "x", "y");
    fs_posix_close(fs);
}

static void open_directory_on_a_regular_file_fails(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "plain", "");
    char path[PATH_BYTES];
    path_in(fx, "plain", path);
    struct fs *fs = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fs_posix_open(path, true, &fs, &err), RK_EIO);
    assert_null(fs);
    assert_non_null(strstr(err.text, "Not a directory"));
}

/* ---- open and create --------------------------------------------------------------------- */

static void create_makes_an_empty_file_with_mode_0644(void **state)
{
    struct fixture *fx = *state;
    mode_t old = umask(022);
    struct fs_file *f = open_ok(fx->fs, "new.data", FS_CREATE | FS_EXCL);
    umask(old);
    assert_int_equal(size_of(fx->fs, f), 0);
    fx->fs->ops->close(fx->fs, f);
    char path[PATH_BYTES];
    path_in(fx, "new.data", path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0644);
}

static void create_exclusive_of_existing_file_fails_with_eexist(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "taken", "old");
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->open(fx->fs, "taken", FS_CREATE | FS_EXCL, &f, &err), RK_EEXIST);
    assert_null(f);
    assert_non_null(strstr(err.text, "taken"));
    assert_file_holds(fx->fs, "taken", "old");
}

static void create_of_existing_file_keeps_its_bytes(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "kept", "hello");
    struct fs_file *f = open_ok(fx->fs, "kept", FS_CREATE);
    assert_int_equal(size_of(fx->fs, f), 5);
    fx->fs->ops->close(fx->fs, f);
    assert_file_holds(fx->fs, "kept", "hello");
}

static void open_missing_file_fails_with_enoent(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->open(fx->fs, "missing", 0, &f, &err), RK_ENOENT);
    assert_null(f);
    assert_false(exists(fx, "missing"));
}

/* ---- reads and writes -------------------------------------------------------------------- */

static void append_then_pread_returns_the_bytes(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *f = open_ok(fx->fs, "log", FS_CREATE);
    append_ok(fx->fs, f, "hello, ");
    append_ok(fx->fs, f, "world");
    assert_int_equal(size_of(fx->fs, f), 12);
    char buf[5];
    size_t got = 0;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->pread(fx->fs, f, 7, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "world", 5);
    fx->fs->ops->close(fx->fs, f);
}

static void append_goes_to_the_end_written_through_another_handle(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *a = open_ok(fx->fs, "shared", FS_CREATE);
    struct fs_file *b = open_ok(fx->fs, "shared", 0);
    append_ok(fx->fs, a, "one.");
    append_ok(fx->fs, b, "two.");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->pwrite(fx->fs, b, 8, "three.", 6, &err), RK_OK);
    append_ok(fx->fs, a, "four.");
    fx->fs->ops->close(fx->fs, a);
    fx->fs->ops->close(fx->fs, b);
    assert_file_holds(fx->fs, "shared", "one.two.three.four.");
}

/* The size is per file, not per handle (P3): a truncate through one handle moves the end the
 * other appends at; a file created anew under a removed file's name is another file. */
static void append_follows_a_truncate_through_another_handle(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *a = open_ok(fx->fs, "t2", FS_CREATE);
    struct fs_file *b = open_ok(fx->fs, "t2", 0);
    append_ok(fx->fs, a, "0123456789");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->truncate(fx->fs, b, 3, &err), RK_OK);
    append_ok(fx->fs, a, "abc");
    assert_int_equal(fx->fs->ops->remove(fx->fs, "t2", &err), RK_OK);
    struct fs_file *c = open_ok(fx->fs, "t2", FS_CREATE);
    append_ok(fx->fs, c, "new");
    append_ok(fx->fs, b, "d"); /* the removed file, still open */
    assert_int_equal(size_of(fx->fs, b), 7);
    fx->fs->ops->close(fx->fs, a);
    fx->fs->ops->close(fx->fs, b);
    fx->fs->ops->close(fx->fs, c);
    assert_file_holds(fx->fs, "t2", "new");
}

static void pwrite_beyond_end_extends_with_zeros(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *f = open_ok(fx->fs, "sparse", FS_CREATE);
    append_ok(fx->fs, f, "ab");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->pwrite(fx->fs, f, 6, "xy", 2, &err), RK_OK);
    assert_int_equal(size_of(fx->fs, f), 8);
    char buf[8];
    size_t got = 0;
    assert_int_equal(fx->fs->ops->pread(fx->fs, f, 0, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 8);
    assert_memory_equal(buf, "ab\0\0\0\0xy", 8);
    fx->fs->ops->close(fx->fs, f);
}

static void pwrite_past_the_largest_offset_is_refused(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *f = open_ok(fx->fs, "big", FS_CREATE);
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->pwrite(fx->fs, f, UINT64_MAX - 1, "xy", 2, &err), RK_EINVAL);
    assert_non_null(strstr(err.text, "big"));
    assert_int_equal(size_of(fx->fs, f), 0);
    fx->fs->ops->close(fx->fs, f);
}

static void pread_at_end_of_file_is_short(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "short", "12345");
    struct fs_file *f = open_ok(fx->fs, "short", 0);
    char buf[16];
    size_t got = 99;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->pread(fx->fs, f, 3, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 2);
    assert_memory_equal(buf, "45", 2);
    assert_int_equal(fx->fs->ops->pread(fx->fs, f, 5, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 0);
    assert_int_equal(fx->fs->ops->pread(fx->fs, f, 1000, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 0);
    fx->fs->ops->close(fx->fs, f);
}

/* Offsets come from untrusted bytes: one past any possible file is a short read, not a crash. */
static void pread_past_the_largest_offset_reads_nothing(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "f", "abc");
    struct fs_file *f = open_ok(fx->fs, "f", 0);
    char buf[4];
    size_t got = 99;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->pread(fx->fs, f, UINT64_MAX, buf, sizeof(buf), &got, &err),
                     RK_OK);
    assert_int_equal(got, 0);
    assert_int_equal(
        fx->fs->ops->pread(fx->fs, f, (uint64_t)INT64_MAX - 1, buf, sizeof(buf), &got, &err),
        RK_OK);
    assert_int_equal(got, 0);
    fx->fs->ops->close(fx->fs, f);
}

static void truncate_sets_the_size(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *f = open_ok(fx->fs, "t", FS_CREATE);
    append_ok(fx->fs, f, "0123456789");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->truncate(fx->fs, f, 4, &err), RK_OK);
    assert_int_equal(size_of(fx->fs, f), 4);
    append_ok(fx->fs, f, "X"); /* append follows the new end */
    assert_int_equal(fx->fs->ops->truncate(fx->fs, f, 7, &err), RK_OK);
    assert_int_equal(size_of(fx->fs, f), 7);
    fx->fs->ops->close(fx->fs, f);
    struct fs_file *g = open_ok(fx->fs, "t", 0);
    char buf[8];
    size_t got = 0;
    assert_int_equal(fx->fs->ops->pread(fx->fs, g, 0, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 7);
    assert_memory_equal(buf, "0123X\0\0", 7);
    fx->fs->ops->close(fx->fs, g);
}

/* ---- rename and remove ------------------------------------------------------------------- */

static void rename_replaces_the_target(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "state.tmp", "new");
    write_file(fx->fs, "state", "old");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->rename(fx->fs, "state.tmp", "state", &err), RK_OK);
    assert_false(exists(fx, "state.tmp"));
    assert_file_holds(fx->fs, "state", "new");
}

static void rename_of_missing_file_fails_with_enoent(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "target", "kept");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->rename(fx->fs, "ghost", "target", &err), RK_ENOENT);
    assert_non_null(strstr(err.text, "ghost"));
    assert_file_holds(fx->fs, "target", "kept");
}

static void remove_deletes_the_file(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "doomed", "x");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->remove(fx->fs, "doomed", &err), RK_OK);
    assert_false(exists(fx, "doomed"));
    struct fs_file *f = NULL;
    assert_int_equal(fx->fs->ops->open(fx->fs, "doomed", 0, &f, &err), RK_ENOENT);
}

static void remove_keeps_open_handles_usable(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *f = open_ok(fx->fs, "unlinked", FS_CREATE);
    append_ok(fx->fs, f, "still");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->remove(fx->fs, "unlinked", &err), RK_OK);
    append_ok(fx->fs, f, " here");
    assert_int_equal(fx->fs->ops->sync(fx->fs, f, &err), RK_OK);
    char buf[16];
    size_t got = 0;
    assert_int_equal(fx->fs->ops->pread(fx->fs, f, 0, buf, sizeof(buf), &got, &err), RK_OK);
    assert_int_equal(got, 10);
    assert_memory_equal(buf, "still here", 10);
    fx->fs->ops->close(fx->fs, f);
    assert_false(exists(fx, "unlinked"));
}

/* ---- list -------------------------------------------------------------------------------- */

static void list_is_sorted_and_skips_invalid_names_and_directories(void **state)
{
    struct fixture *fx = *state;
    const char *valid[] = {"b.data", "a.data", "B", "0000000002.log", "0000000010.log", "_x-y.z"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        write_file(fx->fs, valid[i], "v");
    /* Made behind the interface's back: names it refuses, and a directory with a valid name. */
    char path[PATH_BYTES];
    const char *invalid[] = {"has space", "caf\xc3\xa9",
                             "a-name-that-is-far-too-long-for-the-interface-to-accept-it-at-all"};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        path_in(fx, invalid[i], path);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
    path_in(fx, "subdir", path);
    assert_int_equal(mkdir(path, 0755), 0);
    struct seen s = {.text = ""};
    list_ok(fx->fs, &s);
    assert_string_equal(s.text, "0000000002.log,0000000010.log,B,_x-y.z,a.data,b.data,");
}

static void list_stops_when_fn_returns_false(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "c", "");
    write_file(fx->fs, "a", "");
    write_file(fx->fs, "b", "");
    struct seen s = {.text = "", .stop_after = 2};
    list_ok(fx->fs, &s);
    assert_string_equal(s.text, "a,b,");
}

/* Each list reads the directory from its start (a dup of one descriptor would share the read
 * position, and the second list would see nothing). */
static void list_twice_gives_the_same_names(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "one", "");
    write_file(fx->fs, "two", "");
    struct seen first = {.text = ""};
    struct seen second = {.text = ""};
    list_ok(fx->fs, &first);
    list_ok(fx->fs, &second);
    assert_string_equal(first.text, "one,two,");
    assert_string_equal(second.text, "one,two,");
}

static void list_callback_may_remove_files(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "x1", "");
    write_file(fx->fs, "x2", "");
    struct seen s = {.text = "", .remove_from = fx->fs};
    list_ok(fx->fs, &s);
    assert_string_equal(s.text, "x1,x2,");
    struct seen after = {.text = ""};
    list_ok(fx->fs, &after);
    assert_string_equal(after.text, "");
}

/* Checks that list yields "%010u.data" for 0, 1, 2, ... in that order. */
struct in_order {
    unsigned next;
    bool ok;
};

static bool check_in_order(void *ctx, const char *name)
{
    struct in_order *o = ctx;
    char want[32];
    snprintf(want, sizeof(want), "%010u.data", o->next);
    if (strcmp(name, want) != 0)
        o->ok = false;
    o->next++;
    return true;
}

static void many_files_are_listed_in_order_and_removed(void **state)
{
    struct fixture *fx = *state;
    enum { FILES = 1000 };
    /* Created in a scrambled order (7 is coprime with 1000). */
    for (unsigned i = 0; i < FILES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%010u.data", (i * 7u) % FILES);
        struct fs_file *f = open_ok(fx->fs, name, FS_CREATE | FS_EXCL);
        append_ok(fx->fs, f, name);
        fx->fs->ops->close(fx->fs, f);
    }
    struct in_order o = {0, true};
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->list(fx->fs, check_in_order, &o, &err), RK_OK);
    assert_int_equal(o.next, FILES);
    assert_true(o.ok);
    assert_file_holds(fx->fs, "0000000999.data", "0000000999.data");
    for (unsigned i = 0; i < FILES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%010u.data", i);
        assert_int_equal(fx->fs->ops->remove(fx->fs, name, &err), RK_OK);
    }
    struct seen s = {.text = ""};
    list_ok(fx->fs, &s);
    assert_string_equal(s.text, "");
}

/* ---- durability calls -------------------------------------------------------------------- */

static void sync_and_sync_dir_succeed(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *f = open_ok(fx->fs, "durable", FS_CREATE | FS_EXCL);
    append_ok(fx->fs, f, "bytes");
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->sync(fx->fs, f, &err), RK_OK);
    assert_int_equal(fx->fs->ops->sync_dir(fx->fs, &err), RK_OK);
    assert_int_equal(fx->fs->ops->sync(fx->fs, f, &err), RK_OK); /* nothing new: still fine */
    assert_int_equal(fx->fs->ops->sync_dir(fx->fs, &err), RK_OK);
    fx->fs->ops->close(fx->fs, f);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void invalid_names_are_refused(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->fs, "good", "g");
    const char *bad[] = {"",
                         ".",
                         "..",
                         "a/b",
                         "../escape",
                         "/etc/passwd",
                         "a b",
                         "tab\t",
                         "x\n",
                         "caf\xc3\xa9",
                         "a-name-that-is-far-too-long-for-the-interface-to-accept-it-at-all"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fs_file *f = NULL;
        struct rk_errmsg err = {{0}};
        assert_int_equal(fx->fs->ops->open(fx->fs, bad[i], FS_CREATE, &f, &err), RK_EINVAL);
        assert_null(f);
        assert_non_null(strstr(err.text, "invalid file name"));
        assert_int_equal(fx->fs->ops->rename(fx->fs, "good", bad[i], &err), RK_EINVAL);
        assert_int_equal(fx->fs->ops->rename(fx->fs, bad[i], "good", &err), RK_EINVAL);
        assert_int_equal(fx->fs->ops->remove(fx->fs, bad[i], &err), RK_EINVAL);
    }
    /* Nothing was created, renamed or removed. */
    struct seen s = {.text = ""};
    list_ok(fx->fs, &s);
    assert_string_equal(s.text, "good,");
    assert_file_holds(fx->fs, "good", "g");
}

static void errors_name_the_call_the_file_and_the_cause(void **state)
{
    struct fixture *fx = *state;
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    char want[RK_ERRMSG_SIZE];
    assert_int_equal(fx->fs->ops->open(fx->fs, "0000000001.data", 0, &f, &err), RK_ENOENT);
    snprintf(want, sizeof(want), "open 0000000001.data: %s", strerror(ENOENT));
    assert_string_equal(err.text, want);
    write_file(fx->fs, "0000000002.data", "");
    assert_int_equal(fx->fs->ops->open(fx->fs, "0000000002.data", FS_CREATE | FS_EXCL, &f, &err),
                     RK_EEXIST);
    snprintf(want, sizeof(want), "create 0000000002.data: %s", strerror(EEXIST));
    assert_string_equal(err.text, want);
}

/* Works as root too: permissions do not make a file appear. */
static void remove_of_missing_file_fails_with_enoent_naming_it(void **state)
{
    struct fixture *fx = *state;
    struct rk_errmsg err = {{0}};
    char want[RK_ERRMSG_SIZE];
    assert_int_equal(fx->fs->ops->remove(fx->fs, "0000000007.hint", &err), RK_ENOENT);
    snprintf(want, sizeof(want), "remove 0000000007.hint: %s", strerror(ENOENT));
    assert_string_equal(err.text, want);
}

/* Works as root too: the descriptor still names the directory, which no longer accepts names. */
static void create_in_removed_directory_fails_with_enoent(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(rmdir(fx->dir), 0);
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    assert_int_equal(fx->fs->ops->open(fx->fs, "orphan", FS_CREATE, &f, &err), RK_ENOENT);
    assert_null(f);
    assert_non_null(strstr(err.text, "create orphan: "));
}

/* The create of a read-only directory: 0 when it fails as it should, else 1 (and why). Plain
 * checks, no cmocka: it may run in a child process. */
static int try_create_denied(struct fixture *fx)
{
    struct fs_file *f = NULL;
    struct rk_errmsg err = {{0}};
    int rc = fx->fs->ops->open(fx->fs, "denied", FS_CREATE, &f, &err);
    char want[RK_ERRMSG_SIZE];
    snprintf(want, sizeof(want), "create denied: %s", strerror(EACCES));
    if (rc != RK_EIO || f != NULL || strcmp(err.text, want) != 0) {
        fprintf(stderr, "create in a read-only directory: rc %d, message \"%s\"\n", rc, err.text);
        return 1;
    }
    return 0;
}

static void create_in_read_only_directory_fails_with_a_clear_error(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(chmod(fx->dir, 0555), 0);
    if (geteuid() != 0) {
        assert_int_equal(try_create_denied(fx), 0);
    } else {
        /* root ignores directory permissions: the attempt runs in a child that dropped to
         * nobody (the fs's directory descriptor was opened before, so no path is searched). */
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0)
            _exit(setgid(65534) == 0 && setuid(65534) == 0 ? try_create_denied(fx) : 2);
        int status = 0;
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(chmod(fx->dir, 0755), 0);
}

#define FS_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FS_TEST(open_directory_missing_fails_with_enoent),
        FS_TEST(open_directory_creates_it_when_asked),
        FS_TEST(open_directory_on_a_regular_file_fails),
        FS_TEST(create_makes_an_empty_file_with_mode_0644),
        FS_TEST(create_exclusive_of_existing_file_fails_with_eexist),
        FS_TEST(create_of_existing_file_keeps_its_bytes),
        FS_TEST(open_missing_file_fails_with_enoent),
        FS_TEST(append_then_pread_returns_the_bytes),
        FS_TEST(append_goes_to_the_end_written_through_another_handle),
        FS_TEST(append_follows_a_truncate_through_another_handle),
        FS_TEST(pwrite_beyond_end_extends_with_zeros),
        FS_TEST(pwrite_past_the_largest_offset_is_refused),
        FS_TEST(pread_at_end_of_file_is_short),
        FS_TEST(pread_past_the_largest_offset_reads_nothing),
        FS_TEST(truncate_sets_the_size),
        FS_TEST(rename_replaces_the_target),
        FS_TEST(rename_of_missing_file_fails_with_enoent),
        FS_TEST(remove_deletes_the_file),
        FS_TEST(remove_keeps_open_handles_usable),
        FS_TEST(list_is_sorted_and_skips_invalid_names_and_directories),
        FS_TEST(list_stops_when_fn_returns_false),
        FS_TEST(list_twice_gives_the_same_names),
        FS_TEST(list_callback_may_remove_files),
        FS_TEST(many_files_are_listed_in_order_and_removed),
        FS_TEST(sync_and_sync_dir_succeed),
        FS_TEST(invalid_names_are_refused),
        FS_TEST(errors_name_the_call_the_file_and_the_cause),
        FS_TEST(remove_of_missing_file_fails_with_enoent_naming_it),
        FS_TEST(create_in_removed_directory_fails_with_enoent),
        FS_TEST(create_in_read_only_directory_fails_with_a_clear_error),
    };
    return cmocka_run_group_tests_name("fs_posix", tests, NULL, NULL);
}
