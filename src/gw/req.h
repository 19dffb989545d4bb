/* The gateway's per-request state, shared by the phases that handle one
 * request: the proxy (proxy.c), the resource-server checks (authn.c) and the
 * authorization server's endpoints (src/oauth). Module-internal. */
#ifndef MG_GW_REQ_H
#define MG_GW_REQ_H

#include "authn/identity.h"
#include "gw/worker.h"
#include "mcp/jsonrpc.h"

#include <sys/socket.h>

struct mg_gw_req {
    struct mg_worker *w;
    struct mg_gw *gw; /* hold->gw */
    struct mg_gw_hold *hold;
    const struct mg_route_rt *route;
    struct mg_http_req *req; /* NULL once the client is gone (see pending) */
    struct mg_client_req *up;
    struct mg_jsonrpc_info rpc;
    char *session;
    char *method_name;
    uint64_t upstream_ns;
    bool sse, counted_stream;
    int up_status;
    const char *error;
    struct mg_identity *identity; /* who is calling; NULL before authn */
    /* Asynchronous work (store jobs, fetches) in flight for this request.
     * While it is non-zero the request state outlives the HTTP request:
     * the last job to finish frees it (mg_gw__req_release). */
    int pending;
    bool orphaned;
    struct mg_audit_record **audit_recs; /* allowed decisions, written at the end */
    size_t n_audit_recs;
    char *answers;               /* the methods responses answer (rpc.msgs[i].answers point here) */
    struct mg_sse_parser *watch; /* an SSE answer: finds server->client requests */
    uint64_t req_start_ns;
    const char *filter_list; /* a list method whose answer is filtered */
    void *filter;            /* proxy.c's filtering state */
    void *oauth;             /* the oauth module's state for this request */
    void (*oauth_free)(void *state);
};

/* JSON-RPC codes for gateway errors, in the implementation-defined
 * server-error range (JSON-RPC 2.0 §5.1); listed in docs/errors.md. */
#define MG_RPC_UPSTREAM_UNAVAILABLE -32000
#define MG_RPC_UPSTREAM_TIMEOUT     -32001
#define MG_RPC_GATEWAY_REFUSED      -32002
#define MG_RPC_UNAUTHENTICATED      -32010
#define MG_RPC_FORBIDDEN            -32011
#define MG_RPC_STORE_UNAVAILABLE    -32012

/* An error answer carrying the request's JSON-RPC id. */
void mg_gw__reply_error(struct mg_gw_req *p, int status, int code, const char *msg,
                        const char *extra_headers);
/* After an asynchronous job: returns true if the request is still there to
 * answer; false if it was orphaned, in which case the state was freed. */
bool mg_gw__req_resume(struct mg_gw_req *p);

/* The resource-server phase (authn.c): decides who is calling. Calls
 * next(p) once identity is set; otherwise it answers the request itself
 * (401 challenge, 403 insufficient_scope, 503 store down). */
void mg_gw__authn(struct mg_gw_req *p, void (*next)(struct mg_gw_req *p));
/* Serves RFC 9728 metadata if the path asks for it; returns true if it did. */
bool mg_gw__serve_prm(struct mg_gw_req *p);

/* The policy phase (decide.c): judges every message, records each decision,
 * answers refusals itself; calls next(p) when everything is allowed. */
void mg_gw__decide(struct mg_gw_req *p, void (*next)(struct mg_gw_req *p));
/* The judge of one list answer's items for the request's caller, now
 * (mg_judge_list_new; the caller frees it). */
struct mg_judge_list;
struct mg_judge_list *mg_gw__judge_list(struct mg_gw_req *p, const char *list_method);
/* Submits the allowed decisions' records with the upstream's outcome. */
void mg_gw__audit_finish(struct mg_gw_req *p);

/* The authorization server (src/oauth): returns true if the request was for
 * one of its endpoints (and is being answered). */
bool mg_oauth_dispatch(struct mg_gw_req *p);

#endif
