/* The judge: how the gateway decides the JSON-RPC messages of one HTTP
 * request, as pure functions shared by the policy phase (decide.c) and
 * `mcpgate policy test` (src/cli/policy.c), so that what the command prints
 * is what the daemon does. It owns the defaults (docs/policy.md, "How the
 * gateway applies policies"):
 *  - a route without `policy:` admits any signed-in caller (anyone on a
 *    public route); an absent global policy admits everyone;
 *  - initialize, ping, notifications, responses, the list methods and
 *    requests without a body (GET, DELETE, ...) need no allow rule: when no
 *    allow rule matches they pass; a deny rule still refuses them;
 *  - a tools/call is judged with the tool's class from the route's
 *    mcp.tool_classes, else from what the upstream's tools/list declared,
 *    else destructive;
 *  - a refused call of a tool, prompt or resource the caller could not see
 *    in a list answer is refused as unknown (-32602);
 *  - a batch with one refused element is refused whole (-32015 for the
 *    others); from protocol 2025-06-18 on batches are refused outright;
 *  - Mcp-Method / Mcp-Name headers must say what the body says.
 * No I/O, no clock (the caller passes the time); reads the route's learned
 * tool classes (a mutex-guarded map) and nothing else. */
#ifndef MG_GW_JUDGE_H
#define MG_GW_JUDGE_H

#include "conf/conf.h"
#include "mcp/jsonrpc.h"
#include "mcp/listfilter.h"
#include "policy/policy.h"

struct mg_identity;
struct mg_toolmap;
struct sockaddr;

/* JSON-RPC codes of policy refusals (docs/errors.md). */
#define MG_RPC_POLICY_DENIED     -32013
#define MG_RPC_AUDIT_UNAVAILABLE -32014
#define MG_RPC_BATCH_REFUSED     -32015
#define MG_RPC_HEADER_MISMATCH   -32020
#define MG_RPC_INVALID_PARAMS    -32602 /* JSON-RPC 2.0: what a server says of an unknown tool */
#define MG_RPC_INVALID_REQUEST   -32600

/* What a route's decisions depend on. Borrowed for each call. */
struct mg_judge_route {
    const struct mg_conf *conf;        /* its global policy */
    const struct mg_conf_route *route; /* the route's policy, publicness, mcp.tool_classes */
    struct mg_toolmap *toolmap;        /* classes learned from tools/list; NULL: none */
};

/* The HTTP request around the messages. Borrowed for each call. */
struct mg_judge_request {
    const struct mg_identity *identity; /* NULL or MG_AUTH_NONE: anonymous */
    const char *http_method;            /* "POST", "GET", ... */
    const char *http_path;              /* the request path, without the query */
    const struct sockaddr *source;      /* NULL: unknown */
    int64_t now;                        /* unix seconds */
};

/* The headers of MCP 2026-07-28 and the protocol version, as received:
 * the first value of each and how many there were (0: absent). */
struct mg_judge_headers {
    const char *mcp_method, *mcp_name, *protocol_version;
    size_t mcp_method_len, mcp_name_len, protocol_version_len;
    size_t n_mcp_method, n_mcp_name, n_protocol_version;
};

/* Why a POST whose body is JSON-RPC is refused before any message is
 * judged. */
enum mg_judge_refusal {
    MG_JUDGE_PROCEED = 0,
    MG_JUDGE_HEADER_MISMATCH, /* 400, -32020 */
    MG_JUDGE_BATCH_VERSION,   /* 400, -32600: a batch in 2025-06-18 or later */
    MG_JUDGE_BATCH_LIST,      /* 400, -32600: a list request inside a batch */
};

/* The checks before judging, for a POST with a valid JSON-RPC body. */
enum mg_judge_refusal mg_judge_precheck(const struct mg_jsonrpc_info *rpc,
                                        const struct mg_judge_headers *h);
/* The answer to a refusal: HTTP status, JSON-RPC code, message (static). */
void mg_judge_refusal_answer(enum mg_judge_refusal r, int *status, int *code, const char **msg);

/* The decision for one message. */
struct mg_judge_verdict {
    bool allow;                         /* the final answer */
    bool by_default;                    /* allowed only because the method needs no allow rule */
    bool batch_refused;                 /* allowed on its own, refused with its batch */
    bool hidden;                        /* refused, and the caller may not see the tool, prompt or
                                           resource in a list: answered as unknown (-32602) */
    bool unmatched;                     /* a response to no request the gateway relayed */
    const char *rule;                   /* the deciding rule's path, "" if none; owned by the policy
                                           (a configured one, or a built-in default that lives as
                                           long as the process) */
    const char *reason;                 /* allowed, allowed_by_default, denied_by_rule,
                                           no_rule_allowed, no_policy, batch_refused,
                                           unmatched_response (static) */
    int code;                           /* 0 when allowed, else the JSON-RPC error code */
    enum mg_tool_class tool_class;      /* tools/call: the class it was judged as */
    struct mg_policy_decision decision; /* what the two policies said */
};

/* Judges every message of rpc (a valid shape), or, with rpc NULL, the one
 * request without a body (GET, DELETE, ...): fills out[i] for each (one
 * verdict when rpc is NULL). Returns how many are refused; if any is, the
 * others of the batch are refused too (batch_refused). */
size_t mg_judge_messages(const struct mg_judge_route *rt, const struct mg_judge_request *rq,
                         const struct mg_jsonrpc_info *rpc, struct mg_judge_verdict *out);

/* Whether the caller sees the items of a list answer: each item is judged
 * as the call it stands for (tools/call with its name and class,
 * prompts/get, resources/read), without arguments. The caller's part of
 * the decision (policies, identity, groups, time, the route's
 * mcp.tool_classes) is prepared once per list by mg_judge_list_new
 * (list_method: "tools/list", ...; NULL if it is not a list method); each
 * item then costs one evaluation of its name and class. rt and rq are
 * copied; what they point to is borrowed for the list's life. One thread
 * at a time. */
struct mg_judge_list;
struct mg_judge_list *mg_judge_list_new(const struct mg_judge_route *rt,
                                        const struct mg_judge_request *rq, const char *list_method);
void mg_judge_list_free(struct mg_judge_list *l); /* NULL is a no-op */
/* name: the item's name, URI or URI template (NULL: it has none, hidden).
 * tool_class: for tools, the class the item's annotations declare, or -1
 * for a name alone (then what the route learned, else destructive); the
 * route's mcp.tool_classes win over both. */
bool mg_judge_list_visible(struct mg_judge_list *l, const char *name, int tool_class);

/* One item alone (a refused call: is its tool hidden?): the same decision
 * as a list of one. */
bool mg_judge_item_visible(const struct mg_judge_route *rt, const struct mg_judge_request *rq,
                           const char *list_method, const char *name, int tool_class);

/* The error message of a refused message ("denied by policy", "Unknown
 * tool: NAME", ...), in buf if it needs one. m is NULL for a request without
 * a body. */
const char *mg_judge_error_message(const struct mg_judge_verdict *v, const struct mg_jsonrpc_msg *m,
                                   char *buf, size_t cap);

/* The HTTP status of a refusal answer: 200 when it carries an error for
 * at least one request (JSON-RPC errors travel in 200 responses), 403 when
 * there is no request to answer by id (notifications, responses, no body). */
int mg_judge_refusal_status(const struct mg_jsonrpc_info *rpc);

/* The policies that judge the route's requests: configured, or the built-in
 * defaults (above). Never NULL. */
void mg_judge_policies(const struct mg_judge_route *rt, const struct mg_policy **global,
                       const struct mg_policy **route);

/* Whether a message needs no allow rule (m NULL: a request without body). */
bool mg_judge_is_default_allowed(const struct mg_jsonrpc_msg *m);

#endif
