/* JSON-RPC 2.0 message inspection for MCP request bodies: is it one message or
 * a batch, which method, which id. Pure (bytes in, struct out), fuzzed. The
 * policy phase builds on it; today it feeds the access log and lets every
 * gateway error carry the request's id. */
#ifndef MG_MCP_JSONRPC_H
#define MG_MCP_JSONRPC_H

#include "core/common.h"

enum mg_jsonrpc_shape {
    MG_JSONRPC_INVALID = 0, /* not JSON, or not JSON-RPC 2.0 objects */
    MG_JSONRPC_SINGLE,
    MG_JSONRPC_BATCH,
};

struct mg_jsonrpc_info {
    enum mg_jsonrpc_shape shape;
    size_t n_messages;
    size_t n_requests;      /* messages with a method and an id */
    size_t n_notifications; /* method, no id */
    size_t n_responses;     /* result or error, no method */
    char method[96];        /* the first request's or notification's method, truncated */
    char *id_json;          /* the first request's id as compact JSON, or NULL */
    bool has_initialize;
    const char *error; /* why the body is INVALID */
};

/* Inspects body. Never fails for bad input: shape says INVALID and error why. */
void mg_jsonrpc_inspect(const char *body, size_t len, struct mg_jsonrpc_info *out);
void mg_jsonrpc_info_fini(struct mg_jsonrpc_info *info);

#endif
