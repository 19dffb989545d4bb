/* JSON-RPC 2.0 message inspection for MCP request bodies: is it one message or
 * a batch, and for every message what it asks: kind, method, id, and for the
 * MCP methods the policy judges by name (tools/call, prompts/get,
 * resources/read, ...) the name or URI and the arguments. Pure (bytes in,
 * struct out), fuzzed. What the policy judges is exactly what the bytes say:
 * one parse, duplicate keys refused, and a message whose target is
 * ambiguous makes the whole body INVALID. */
#ifndef MG_MCP_JSONRPC_H
#define MG_MCP_JSONRPC_H

#include "core/common.h"
#include "mcp/args.h"

#include <jansson.h>

enum mg_jsonrpc_shape {
    MG_JSONRPC_INVALID = 0, /* not JSON, or not JSON-RPC 2.0 objects */
    MG_JSONRPC_SINGLE,
    MG_JSONRPC_BATCH,
};

#define MG_JSONRPC_MAX_BATCH 100 /* messages in one batch */

enum mg_jsonrpc_kind {
    MG_JSONRPC_REQUEST,      /* method and id */
    MG_JSONRPC_NOTIFICATION, /* method, no id */
    MG_JSONRPC_RESPONSE,     /* result or error, and id */
};

/* One message of the body. Pointers borrow from the info's document, and
 * args_flat from the body itself. */
struct mg_jsonrpc_msg {
    enum mg_jsonrpc_kind kind;
    const char *method;      /* requests and notifications; NULL for responses */
    const json_t *id;        /* requests and responses */
    const char *name;        /* tools/call and prompts/get: params.name; resources/read,
                              * resources/subscribe, resources/unsubscribe: params.uri;
                              * else NULL */
    const json_t *arguments; /* tools/call and prompts/get: params.arguments (an object) or NULL */
    /* The same arguments when the one-pass reading took them flat (see
     * args.h), arguments then NULL; at most one of the two is set. Points
     * to the info's flat, whose strings point into the body inspected: the
     * body must outlive every reader of them (the gateway judges and
     * records a request before it drops the body). */
    const struct mg_args_flat *args_flat;
    /* Responses: the method of the server->client request answered, when the
     * gateway relayed that request (set by the gateway, not by inspection;
     * NULL: unknown, and the response is refused as unmatched). */
    const char *answers;
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
    const char *error;           /* why the body is INVALID */
    json_t *root;                /* owns what msgs point to (valid shapes only) */
    char *strings;               /* owns the fast path's strings */
    struct mg_jsonrpc_msg *msgs; /* n_messages entries, in body order */
    /* The fast path's storage, so a plain request costs no allocations
     * beyond its id and arguments: its one message, the id and argument
     * values it owns, and room for its strings and id_json when they fit.
     * strings, id_json and msgs may point in here: an info is filled and
     * read in place, never copied. */
    struct mg_jsonrpc_msg one;
    json_t *owned_id, *owned_args;
    struct mg_args_flat flat; /* one.args_flat, when set, points here */
    char small[160];
};

/* Inspects body. Never fails for bad input: shape says INVALID and error why.
 * A plain single request is read in one pass without a tree (its arguments
 * become one only when they are not flat, see args.h); everything else, and
 * anything that pass is not sure of, goes to mg_jsonrpc_inspect_tree, whose
 * answer it always equals. Flat arguments borrow from body: keep it alive
 * and unchanged while the info's arguments are read. */
void mg_jsonrpc_inspect(const char *body, size_t len, struct mg_jsonrpc_info *out);
/* The reference: the whole body parsed by jansson (tests and the fuzz
 * target hold the fast path to it). */
void mg_jsonrpc_inspect_tree(const char *body, size_t len, struct mg_jsonrpc_info *out);
/* Do two inspections say the same of a body (shape, counts, error, and
 * every message's kind, method, id, name and arguments, flat arguments
 * compared as the tree they stand for; numbers of the same value but of
 * different types, 1 and 1.0, differ)? For tests. */
bool mg_jsonrpc_info_same(const struct mg_jsonrpc_info *a, const struct mg_jsonrpc_info *b);
void mg_jsonrpc_info_fini(struct mg_jsonrpc_info *info);
/* The body is about to go: flat arguments (which point into it) are
 * forgotten, so a late reader finds none rather than freed memory. */
void mg_jsonrpc_info_drop_body(struct mg_jsonrpc_info *info);

#endif
