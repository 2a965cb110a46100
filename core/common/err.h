/*
 * err.h — the one project-wide error enum (0 = ok) and its strerror.
 *
 * Actions return an enum rk_err; predicates return bool. Errors caused by untrusted bytes
 * (disk, network, client, fuzzer) are RK_EMALFORMED or RK_ECORRUPT and come with a message in
 * a struct rk_errmsg that says what and where (file, offset, field). Core never reads errno.
 */
#ifndef RK_ERR_H
#define RK_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum rk_err {
    RK_OK = 0,
    RK_ENOMEM,      /* an allocation failed */
    RK_EINVAL,      /* the caller passed an invalid argument (a programmer or config error) */
    RK_ENOTLEADER,  /* this node is not the leader; the known leader id is reported beside */
    RK_ENOLEADER,   /* no leader is known: retry later */
    RK_EBUSY,       /* refused for now (a leadership transfer, a full queue): retry later */
    RK_ETOOBIG,     /* over a configured limit */
    RK_EMALFORMED,  /* untrusted bytes do not decode */
    RK_ECORRUPT,    /* a checksum does not match */
    RK_EAGAIN,      /* not enough bytes yet (a partial frame) */
    RK_EIO,         /* an I/O error reported by the fs interface */
    RK_ENOSPC,      /* no space left */
    RK_ENOENT,      /* no such file or key */
    RK_ESTALE,      /* the request was overtaken (term changed, leadership lost) */
    RK_EEXIST,      /* the file already exists */
    RK_ERR_COUNT
};

const char *rk_strerror(int err);

/*
 * A human-readable error message, wrapped as it goes up ("segment 3: offset 4096: crc
 * mismatch"). Fixed size: formatting never allocates and never overflows.
 */
#define RK_ERRMSG_SIZE 256
struct rk_errmsg {
    char text[RK_ERRMSG_SIZE];
};

/* Sets the message (printf-style) and returns err, so that callers can `return rk_errf(...)`. */
int rk_errf(struct rk_errmsg *msg, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with a formatted context and returns err. */
int rk_errwrap(struct rk_errmsg *msg, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
