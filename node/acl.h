/*
 * acl.h — what an ACL user (core/kv/acl.h) lets a connection do: whether it may run a command
 * (its rules against the command's full name and Redis 7 categories) and touch a key (its key
 * patterns against the access the command's key spec declares). Pure functions of the user,
 * shared by the node's dispatch (cmd_acl.c) and the unit tests.
 */
#ifndef NODE_ACL_H
#define NODE_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/acl.h"

/* Whether u's command rules allow the command or subcommand fullname ("get", "config|get",
 * lower case) whose categories are the mask categories (bit i: kv_acl_category_name(i)): the
 * rules from +@all or -@all, in order, the last that names the command (or its container, or
 * one of its categories) decides (Redis's bitmap, built rule by rule). */
bool acl_cmd_allowed(const struct kv_acl_user *u, const char *fullname, uint32_t categories);

/* Whether u may touch key with the access need (KV_ACL_KEY_READ | KV_ACL_KEY_WRITE; 0: any
 * pattern that matches will do), as Redis's ACLSelectorCheckKey. */
bool acl_key_allowed(const struct kv_acl_user *u, const uint8_t *key, size_t len, uint8_t need);

/* The access a key spec's flags ask ("RW access update"): ACCESS -> read; INSERT, DELETE,
 * UPDATE -> write (Redis's ACLSelectorCheckKey). */
uint8_t acl_key_need(const char *spec_flags);

#endif
