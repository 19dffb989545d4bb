/* The policy phase (issue 4): every JSON-RPC message a caller sends is judged
 * against the global and the route policy before anything is forwarded, each
 * decision is recorded in the audit trail, and list answers are filtered so
 * a caller sees only what it may use. Defaults (docs/policy.md):
 *  - a route without `policy:` admits any signed-in caller (any caller on a
 *    public route); the global policy, when absent, admits everyone;
 *  - initialize, ping, notifications, responses, the list methods and
 *    GET/DELETE need an identity but no allow rule: when no allow rule
 *    matches they pass; a deny rule still refuses them;
 *  - a batch is judged element by element and refused whole if any element
 *    is refused; batches are refused outright from protocol 2025-06-18 on. */
#include "audit/audit.h"
#include "audit/record.h"
#include "conf/ytree.h"
#include "core/log.h"
#include "gw/req.h"
#include "gw/toolmap.h"
#include "mcp/listfilter.h"
#include "policy/policy.h"

#include <pthread.h>
#include <time.h>

#define MG_RPC_POLICY_DENIED     -32013
#define MG_RPC_AUDIT_UNAVAILABLE -32014
#define MG_RPC_BATCH_REFUSED     -32015
#define MG_RPC_HEADER_MISMATCH   -32020
#define RPC_INVALID_PARAMS       -32602

static struct mg_policy *default_signed_in, *default_anyone;
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void default_fail(void *ctx, const struct mg_ynode *at, const char *msg)
{
    (void)ctx;
    (void)at;
    mg_log_error("built-in policy: %s", msg);
}

static struct mg_policy *compile_text(const char *path, const char *yaml)
{
    struct mg_ynode *root = NULL;
    struct mg_policy *p = NULL;
    char *err = NULL;
    if (mg_ytree_parse(path, yaml, strlen(yaml), &root, &err) == 0)
        mg_policy_compile(root, path, NULL, &p, default_fail, NULL);
    free(err);
    mg_ytree_free(root);
    MG_ASSERT(p != NULL);
    return p;
}

static void compile_defaults(void)
{
    default_signed_in =
        compile_text("default:signed_in", "allow: {or: [{authenticated_user: true}]}");
    default_anyone = compile_text("default:anyone", "allow: {or: [{accept: true}]}");
}

static bool default_allowed_method(const struct mg_jsonrpc_msg *m)
{
    if (m == NULL || m->kind == MG_JSONRPC_RESPONSE)
        return true;
    const char *x = m->method;
    return strcmp(x, "initialize") == 0 || strcmp(x, "ping") == 0 ||
           strncmp(x, "notifications/", 14) == 0 || mg_listfilter_key(x) != NULL;
}

static const char *method_str(int m)
{
    return m == HTTP_GET      ? "GET"
           : m == HTTP_POST   ? "POST"
           : m == HTTP_DELETE ? "DELETE"
           : m == HTTP_HEAD   ? "HEAD"
                              : "OPTIONS";
}

static int tool_class_of(const struct mg_route_rt *rt, const char *tool)
{
    const struct mg_conf_route *r = rt->conf;
    for (size_t i = 0; tool && i < r->n_tool_classes; i++)
        if (strcmp(r->tool_classes[i].tool, tool) == 0)
            return r->tool_classes[i].tool_class;
    int c = tool ? mg_toolmap_get(rt->toolmap, tool) : -1;
    return c < 0 ? MG_TOOL_DESTRUCTIVE : c;
}

/* The policies that judge this route's requests. */
static void policies(const struct mg_gw_req *p, const struct mg_policy **global,
                     const struct mg_policy **route)
{
    pthread_once(&defaults_once, compile_defaults);
    *global = p->gw->conf->policy ? p->gw->conf->policy : default_anyone;
    *route = p->route->conf->policy                                ? p->route->conf->policy
             : p->route->conf->allow_public_unauthenticated_access ? default_anyone
                                                                   : default_signed_in;
}

static void fill_input(struct mg_gw_req *p, struct mg_policy_input *in)
{
    memset(in, 0, sizeof *in);
    in->identity = p->identity;
    in->http_method = method_str(p->req->method);
    in->http_path = p->req->path;
    in->now = (int64_t)time(NULL);
    in->source = (const struct sockaddr *)&p->source;
}

static void judge(struct mg_gw_req *p, const struct mg_jsonrpc_msg *m, struct mg_policy_decision *d,
                  bool *by_default)
{
    const struct mg_policy *g, *r;
    struct mg_policy_input in;
    policies(p, &g, &r);
    fill_input(p, &in);
    if (m) {
        in.mcp_method = m->method;
        in.mcp_name = m->name;
        in.arguments = m->arguments;
        if (m->method && strcmp(m->method, "tools/call") == 0)
            in.tool_class = (enum mg_tool_class)tool_class_of(p->route, m->name);
    }
    mg_policy_eval(g, r, &in, d);
    *by_default = false;
    if (!d->allow && d->reason == MG_POLICY_NO_RULE_ALLOWED && default_allowed_method(m)) {
        d->allow = true;
        *by_default = true;
    }
}

/* Would the caller see this item in a list? It is judged as the call it
 * stands for, without arguments. */
bool mg_gw__item_visible(struct mg_gw_req *p, const char *list_method, const json_t *item)
{
    const char *key = mg_listfilter_key(list_method);
    const char *call = mg_listfilter_call_method(list_method);
    const char *name = key ? mg_listfilter_item_name(key, item) : NULL;
    if (name == NULL || call == NULL)
        return false;
    struct mg_jsonrpc_msg m = {.kind = MG_JSONRPC_REQUEST, .method = call, .name = name};
    const struct mg_policy *g, *r;
    struct mg_policy_input in;
    struct mg_policy_decision d;
    policies(p, &g, &r);
    fill_input(p, &in);
    in.mcp_method = m.method;
    in.mcp_name = name;
    if (strcmp(call, "tools/call") == 0) {
        /* A listed tool carries its annotations; a name alone (is a refused
         * call's tool hidden?) takes what the gateway learned. The
         * operator's override wins over both. */
        in.tool_class = json_object_get(item, "annotations")
                            ? mg_listfilter_tool_class(item)
                            : (enum mg_tool_class)tool_class_of(p->route, name);
        for (size_t i = 0; i < p->route->conf->n_tool_classes; i++)
            if (strcmp(p->route->conf->tool_classes[i].tool, name) == 0)
                in.tool_class = (enum mg_tool_class)p->route->conf->tool_classes[i].tool_class;
    }
    mg_policy_eval(g, r, &in, &d);
    return d.allow;
}

static struct mg_audit_record *record_for(struct mg_gw_req *p, const struct mg_jsonrpc_msg *m,
                                          const struct mg_policy_decision *d, bool by_default)
{
    struct mg_audit *a = p->gw->audit;
    struct mg_audit_record *rec = mg_audit_record_new();
    mg_audit_record_set_route(rec, p->route->conf->name);
    if (p->identity)
        mg_audit_record_set_identity(rec, p->identity);
    mg_audit_record_set_source(rec, p->req->conn->peer);
    if (p->session)
        mg_audit_record_set_session(rec, p->session);
    if (m) {
        if (m->id)
            mg_audit_record_set_jsonrpc_id(rec, m->id);
        mg_audit_record_set_call(rec, m->method ? m->method : "response", m->name);
        if (m->arguments && a)
            mg_audit_record_set_arguments(rec, m->arguments, mg_audit_arguments(a));
    } else {
        mg_audit_record_set_call(rec, method_str(p->req->method), NULL);
    }
    mg_audit_record_set_decision(rec, d->allow, d->rule ? d->rule : "",
                                 by_default ? "allowed_by_default"
                                            : mg_policy_reason_name(d->reason));
    return rec;
}

/* The JSON-RPC error for a refused request. A tool, prompt or resource the
 * caller may not use at all is refused exactly as the server refuses one it
 * does not have (-32602): a hidden tool is not confirmed to exist. */
static json_t *denial(struct mg_gw_req *p, const struct mg_jsonrpc_msg *m, const char *decision_id,
                      int code, const char *message)
{
    char buf[512];
    if (code == 0) {
        code = MG_RPC_POLICY_DENIED;
        message = "denied by policy";
        if (m && m->name && m->method) {
            bool hidden = false;
            const char *what = NULL;
            if (strcmp(m->method, "tools/call") == 0) {
                json_t *item = json_pack("{s:s}", "name", m->name);
                hidden = !mg_gw__item_visible(p, "tools/list", item);
                json_decref(item);
                what = "tool";
            } else if (strcmp(m->method, "prompts/get") == 0) {
                json_t *item = json_pack("{s:s}", "name", m->name);
                hidden = !mg_gw__item_visible(p, "prompts/list", item);
                json_decref(item);
                what = "prompt";
            } else if (strncmp(m->method, "resources/", 10) == 0) {
                json_t *item = json_pack("{s:s}", "uri", m->name);
                hidden = !mg_gw__item_visible(p, "resources/list", item);
                json_decref(item);
                what = "resource";
            }
            if (hidden) {
                code = RPC_INVALID_PARAMS;
                snprintf(buf, sizeof buf, "Unknown %s: %.300s", what, m->name);
                message = buf;
            }
        }
    }
    json_t *e = json_pack("{s:s, s:O?, s:{s:i, s:s, s:{s:s}}}", "jsonrpc", "2.0", "id",
                          m && m->id ? m->id : json_null(), "error", "code", code, "message",
                          message, "data", "decision_id", decision_id ? decision_id : "");
    return e;
}

static void reply_json(struct mg_gw_req *p, int status, json_t *doc)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    p->error = "denied by policy";
    mg_http_reply(p->req, status, "application/json", "Cache-Control: no-store\r\n", body,
                  strlen(body));
    free(body);
}

static bool submit(struct mg_gw_req *p, struct mg_audit_record *rec)
{
    struct mg_audit *a = p->gw->audit;
    if (a == NULL) {
        mg_audit_record_free(rec);
        return true;
    }
    /* Past the queue's bound the record is lost: refuse when that matters. */
    return mg_audit_submit(a, rec, NULL, NULL, NULL) == 0 || mg_audit_healthy(a);
}

/* Headers of MCP 2026-07-28 must say what the body says (or be absent). */
static bool headers_agree(struct mg_gw_req *p)
{
    const struct mg_http_head *h = p->req->head;
    const struct mg_http_header *mm = mg_http_head_find(h, "mcp-method");
    const struct mg_http_header *mn = mg_http_head_find(h, "mcp-name");
    if (mm == NULL && mn == NULL)
        return true;
    if (mg_http_head_count(h, "mcp-method") > 1 || mg_http_head_count(h, "mcp-name") > 1 ||
        p->rpc.shape != MG_JSONRPC_SINGLE)
        return false;
    const struct mg_jsonrpc_msg *m = &p->rpc.msgs[0];
    if (mm && (m->method == NULL || !mg_str_eq(mm->value, mm->value_len, m->method)))
        return false;
    if (mn && (m->name == NULL || !mg_str_eq(mn->value, mn->value_len, m->name)))
        return false;
    return true;
}

static bool batches_allowed(struct mg_gw_req *p)
{
    /* Batching was removed in 2025-06-18; versions compare as dates. */
    const struct mg_http_header *v = mg_http_head_find(p->req->head, "mcp-protocol-version");
    if (v == NULL)
        return true; /* 2025-03-26 is assumed without the header (spec) */
    return v->value_len == 10 && memcmp(v->value, "2025-06-18", 10) < 0;
}

void mg_gw__decide(struct mg_gw_req *p, void (*next)(struct mg_gw_req *p))
{
    struct mg_http_req *req = p->req;
    struct mg_audit *a = p->gw->audit;
    /* The source address, for source_ip rules. */
    memset(&p->source, 0, sizeof p->source);
    if (strchr(req->conn->peer, ':'))
        uv_ip6_addr(req->conn->peer, req->conn->peer_port, (struct sockaddr_in6 *)&p->source);
    else
        uv_ip4_addr(req->conn->peer, req->conn->peer_port, (struct sockaddr_in *)&p->source);

    if (a && !mg_audit_healthy(a)) {
        mg_gw__reply_error(p, 503, MG_RPC_AUDIT_UNAVAILABLE,
                           "the audit trail cannot be written; refusing to act unrecorded",
                           "Retry-After: 1\r\n");
        return;
    }
    bool post = req->method == HTTP_POST && p->rpc.shape != MG_JSONRPC_INVALID;
    if (post && !headers_agree(p)) {
        mg_gw__reply_error(p, 400, MG_RPC_HEADER_MISMATCH,
                           "Mcp-Method / Mcp-Name headers do not match the body", NULL);
        return;
    }
    if (post && p->rpc.shape == MG_JSONRPC_BATCH && !batches_allowed(p)) {
        mg_gw__reply_error(p, 400, -32600,
                           "batches are not part of this protocol version (2025-06-18 and later)",
                           NULL);
        return;
    }
    size_t n = post ? p->rpc.n_messages : 1;
    struct mg_policy_decision *ds = mg_xcalloc(n, sizeof *ds);
    struct mg_audit_record **recs = mg_xcalloc(n, sizeof *recs);
    size_t n_denied = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mg_jsonrpc_msg *m = post ? &p->rpc.msgs[i] : NULL;
        bool by_default;
        judge(p, m, &ds[i], &by_default);
        recs[i] = record_for(p, m, &ds[i], by_default);
        if (!ds[i].allow)
            n_denied++;
    }
    if (n_denied == 0) {
        /* Allowed: the records wait for the upstream's answer (on_log). */
        p->audit_recs = recs;
        p->n_audit_recs = n;
        free(ds);
        next(p);
        return;
    }
    /* Refused: nothing is forwarded. Every decision is recorded now. */
    json_t *answer = NULL;
    bool ok = true;
    if (!post) {
        char id[40];
        snprintf(id, sizeof id, "%s", mg_audit_record_decision_id(recs[0]));
        ok = submit(p, recs[0]);
        answer = denial(p, NULL, id, 0, NULL);
        reply_json(p, 403, answer);
    } else {
        json_t *errs = json_array();
        for (size_t i = 0; i < n; i++) {
            const struct mg_jsonrpc_msg *m = &p->rpc.msgs[i];
            char id[40];
            snprintf(id, sizeof id, "%s", mg_audit_record_decision_id(recs[i]));
            if (ds[i].allow)
                mg_audit_record_set_decision(recs[i], false, ds[i].rule ? ds[i].rule : "",
                                             "batch_refused");
            if (m->kind == MG_JSONRPC_REQUEST)
                json_array_append_new(
                    errs, ds[i].allow ? denial(p, m, id, MG_RPC_BATCH_REFUSED,
                                               "another message of this batch was refused")
                                      : denial(p, m, id, 0, NULL));
            else if (answer == NULL && p->rpc.shape == MG_JSONRPC_SINGLE)
                answer = denial(p, m, id, 0, NULL);
            ok = submit(p, recs[i]) && ok;
        }
        if (p->rpc.shape == MG_JSONRPC_SINGLE && json_array_size(errs) == 1)
            reply_json(p, 200, json_incref(json_array_get(errs, 0)));
        else if (json_array_size(errs) > 0)
            reply_json(p, 200, json_incref(errs));
        else /* only notifications or responses: nothing to answer with an id */
            reply_json(p, 403, answer ? json_incref(answer) : json_null());
        json_decref(errs);
        json_decref(answer);
    }
    if (!ok)
        mg_log_warn("audit queue full: a denial could not be recorded");
    free(recs);
    free(ds);
}

/* At the end of an allowed request: its records, with the upstream's status
 * and the latency, go to the audit trail. */
void mg_gw__audit_finish(struct mg_gw_req *p)
{
    for (size_t i = 0; i < p->n_audit_recs; i++) {
        mg_audit_record_set_upstream(p->audit_recs[i], p->up_status,
                                     (int64_t)((mg_now_ns() - p->req_start_ns) / 1000000));
        if (!submit(p, p->audit_recs[i]))
            mg_log_warn("audit queue full: a decision could not be recorded");
    }
    free(p->audit_recs);
    p->audit_recs = NULL;
    p->n_audit_recs = 0;
}
