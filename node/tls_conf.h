/*
 * tls_conf.h — the TLS settings' values, parsed and checked without OpenSSL (node/tls_conf.c,
 * unit-tested by tests/test_tls_conf.c); node/tls.c builds the OpenSSL contexts from them.
 *
 *   tls-protocols     "TLSv1.2 TLSv1.3" (Redis's default), either, or both, in any order
 *   tls-auth-clients  yes | no | optional (Redis's words)
 *   tls-peer-names    ID=NAME,...: the name a member's certificate must carry (SAN DNS name, or
 *                     CN without SANs), checked on both sides of a peer connection
 */
#ifndef NODE_TLS_CONF_H
#define NODE_TLS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_PROTO_12 1u
#define TLS_PROTO_13 2u

enum tls_auth { TLS_AUTH_YES = 0, TLS_AUTH_NO, TLS_AUTH_OPTIONAL };

/* "" or NULL means Redis's default, both. false for an unknown word or a repeated one; the
 * mask is never 0 on success. */
bool tls_parse_protocols(const char *text, unsigned *mask);
/* yes, no or optional (case-insensitive, as Redis). */
bool tls_parse_auth(const char *text, enum tls_auth *out);
/* Checks an ID=NAME,... list: ids >= 1 and unique, names 1..255 bytes of [A-Za-z0-9.-*].
 * false with why (at most cap bytes) otherwise. "" is a valid empty list. */
bool tls_check_peer_names(const char *list, char *why, size_t cap);
/* The name for member id in a checked list, copied to out (cap bytes). false: none listed. */
bool tls_peer_name(const char *list, uint64_t id, char *out, size_t cap);

#endif
