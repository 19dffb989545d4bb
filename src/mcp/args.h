/* Flat call arguments: params.arguments of tools/call or prompts/get when it
 * is an object of at most MG_ARGS_FLAT_MAX members whose values are all plain
 * scalars (a string without an escape, an integer that fits int64 written
 * without fraction or exponent, true, false, null). The JSON-RPC inspection
 * (jsonrpc.c) reads these without building a jansson tree; the policy and
 * the audit record read them exactly as they would read the tree jansson
 * builds from the same bytes. Anything else stays a tree.
 *
 * A neutral header: the policy and the audit include it without depending
 * on the inspection's internals. */
#ifndef MG_MCP_ARGS_H
#define MG_MCP_ARGS_H

#include "core/common.h"

#include <jansson.h>

#define MG_ARGS_FLAT_MAX 8 /* members; more stay a tree */

enum mg_arg_type {
    MG_ARG_STRING,
    MG_ARG_INT,
    MG_ARG_TRUE,
    MG_ARG_FALSE,
    MG_ARG_NULL,
};

/* One member. key and s are raw bytes between the quotes, which the
 * inspection has checked: valid UTF-8, no escape, no control character
 * (so no NUL), and the key unique in the object. They are not
 * NUL-terminated. */
struct mg_arg {
    const char *key;
    size_t key_len;
    enum mg_arg_type type;
    const char *s; /* MG_ARG_STRING */
    size_t s_len;
    int64_t i; /* MG_ARG_INT */
};

/* The members in body order. The pointers borrow from the request body,
 * which must stay alive and unchanged for as long as this is read. */
struct mg_args_flat {
    size_t n;
    struct mg_arg m[MG_ARGS_FLAT_MAX];
};

/* The member whose key is these key_len bytes, or NULL. */
const struct mg_arg *mg_args_flat_get(const struct mg_args_flat *a, const char *key,
                                      size_t key_len);

/* The jansson object these arguments stand for (what json_loadb gives for
 * their bytes): a new value the caller owns; NULL for NULL. For tests, the
 * CLI and any reader that needs a tree. */
json_t *mg_args_flat_tree(const struct mg_args_flat *a);

#endif
