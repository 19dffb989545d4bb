/* How the gateway decides a request's messages; see judge.h. */
#include "gw/judge.h"

#include "authn/identity.h"
#include "conf/ytree.h"
#include "core/log.h"
#include "gw/toolmap.h"

#include <pthread.h>

/* The built-in defaults, compiled once; they live as long as the process. */
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

void mg_judge_policies(const struct mg_judge_route *rt, const struct mg_policy **global,
                       const struct mg_policy **route)
{
    pthread_once(&defaults_once, compile_defaults);
    *global = rt->conf->policy ? rt->conf->policy : default_anyone;
    *route = rt->route->policy                                ? rt->route->policy
             : rt->route->allow_public_unauthenticated_access ? default_anyone
                                                              : default_signed_in;
}

bool mg_judge_is_default_allowed(const struct mg_jsonrpc_msg *m)
{
    if (m == NULL || m->kind == MG_JSONRPC_RESPONSE)
        return true;
    const char *x = m->method;
    return strcmp(x, "initialize") == 0 || strcmp(x, "ping") == 0 ||
           strncmp(x, "notifications/", 14) == 0 || mg_listfilter_key(x) != NULL;
}

/* The operator's class for a tool, or -1. */
static int configured_class(const struct mg_conf_route *r, const char *tool)
{
    for (size_t i = 0; tool && i < r->n_tool_classes; i++)
        if (strcmp(r->tool_classes[i].tool, tool) == 0)
            return r->tool_classes[i].tool_class;
    return -1;
}

/* The class a call of tool is judged as: the route's configuration, else
 * what the upstream declared, else destructive. */
static enum mg_tool_class call_class(const struct mg_judge_route *rt, const char *tool)
{
    int c = configured_class(rt->route, tool);
    if (c < 0 && tool && rt->toolmap)
        c = mg_toolmap_get(rt->toolmap, tool);
    return c < 0 ? MG_TOOL_DESTRUCTIVE : (enum mg_tool_class)c;
}

static void fill_input(const struct mg_judge_request *rq, struct mg_policy_input *in)
{
    memset(in, 0, sizeof *in);
    in->identity = rq->identity;
    in->http_method = rq->http_method;
    in->http_path = rq->http_path;
    in->source = rq->source;
    in->now = rq->now;
}

static void judge_one(const struct mg_judge_route *rt, const struct mg_judge_request *rq,
                      const struct mg_jsonrpc_msg *m, struct mg_judge_verdict *v)
{
    const struct mg_policy *g, *r;
    struct mg_policy_input in;
    memset(v, 0, sizeof *v);
    mg_judge_policies(rt, &g, &r);
    fill_input(rq, &in);
    if (m) {
        /* A response is judged by the method of the request it answers. */
        in.mcp_method = m->kind == MG_JSONRPC_RESPONSE ? m->answers : m->method;
        in.mcp_name = m->name;
        in.arguments = m->arguments;
        in.args_flat = m->args_flat;
        if (m->method && strcmp(m->method, "tools/call") == 0)
            in.tool_class = v->tool_class = call_class(rt, m->name);
    }
    if (m && m->kind == MG_JSONRPC_RESPONSE && m->answers == NULL) {
        /* Fail closed: the gateway cannot tell what this answers (it did
         * not relay the request: a made-up id, another gateway's stream, a
         * request forgotten past its bound or age). */
        v->unmatched = true;
        v->rule = "";
        v->reason = "unmatched_response";
        return;
    }
    mg_policy_eval(g, r, &in, &v->decision);
    v->allow = v->decision.allow;
    v->rule = v->decision.rule ? v->decision.rule : "";
    v->reason = mg_policy_reason_name(v->decision.reason);
    if (!v->allow && v->decision.reason == MG_POLICY_NO_RULE_ALLOWED &&
        mg_judge_is_default_allowed(m)) {
        v->allow = true;
        v->by_default = true;
        v->reason = "allowed_by_default";
    }
}

/* The route's mcp.tool_classes as an open-addressing table (indexes + 1),
 * so an item's configured class is one probe, not a scan. */
struct mg_judge_list {
    struct mg_judge_route rt;
    struct mg_policy_prep *prep;
    bool tools;
    size_t n_slots; /* a power of two, at least twice the classes */
    uint32_t *slots;
};

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct mg_judge_list *mg_judge_list_new(const struct mg_judge_route *rt,
                                        const struct mg_judge_request *rq, const char *list_method)
{
    const char *call = mg_listfilter_call_method(list_method);
    if (call == NULL)
        return NULL;
    struct mg_judge_list *l = mg_xcalloc(1, sizeof *l);
    const struct mg_policy *g, *r;
    struct mg_policy_input in;
    l->rt = *rt;
    l->tools = strcmp(call, "tools/call") == 0;
    mg_judge_policies(rt, &g, &r);
    fill_input(rq, &in);
    in.mcp_method = call;
    l->prep = mg_policy_prep_new(g, r, &in);
    const struct mg_conf_route *route = rt->route;
    if (l->tools && route->n_tool_classes > 0) {
        l->n_slots = 4;
        while (l->n_slots < 2 * route->n_tool_classes)
            l->n_slots *= 2;
        l->slots = mg_xcalloc(l->n_slots, sizeof *l->slots);
        for (size_t i = 0; i < route->n_tool_classes; i++) {
            const char *tool = route->tool_classes[i].tool;
            size_t k = name_hash(tool) & (l->n_slots - 1);
            bool dup = false;
            while (l->slots[k] && !dup) {
                dup = strcmp(route->tool_classes[l->slots[k] - 1].tool, tool) == 0;
                k = (k + 1) & (l->n_slots - 1);
            }
            if (!dup) /* the first entry wins, as configured_class says */
                l->slots[k] = (uint32_t)i + 1;
        }
    }
    return l;
}

void mg_judge_list_free(struct mg_judge_list *l)
{
    if (l == NULL)
        return;
    mg_policy_prep_free(l->prep);
    free(l->slots);
    free(l);
}

static int list_configured_class(const struct mg_judge_list *l, const char *tool)
{
    const struct mg_conf_route *route = l->rt.route;
    if (l->slots == NULL)
        return -1;
    for (size_t k = name_hash(tool) & (l->n_slots - 1); l->slots[k]; k = (k + 1) & (l->n_slots - 1))
        if (strcmp(route->tool_classes[l->slots[k] - 1].tool, tool) == 0)
            return route->tool_classes[l->slots[k] - 1].tool_class;
    return -1;
}

bool mg_judge_list_visible(struct mg_judge_list *l, const char *name, int tool_class)
{
    struct mg_policy_decision d;
    enum mg_tool_class cls = MG_TOOL_DESTRUCTIVE;
    if (l == NULL || name == NULL)
        return false;
    if (l->tools) {
        /* A listed tool carries its annotations; a name alone (is a refused
         * call's tool hidden?) takes what the gateway learned. The
         * operator's class wins over both. */
        int c = list_configured_class(l, name);
        if (c < 0)
            c = tool_class >= 0 ? tool_class : (int)call_class(&l->rt, name);
        cls = c < 0 ? MG_TOOL_DESTRUCTIVE : (enum mg_tool_class)c;
    }
    mg_policy_eval_prep(l->prep, name, cls, &d);
    return d.allow;
}

bool mg_judge_item_visible(const struct mg_judge_route *rt, const struct mg_judge_request *rq,
                           const char *list_method, const char *name, int tool_class)
{
    struct mg_judge_list *l = mg_judge_list_new(rt, rq, list_method);
    bool visible = mg_judge_list_visible(l, name, tool_class);
    mg_judge_list_free(l);
    return visible;
}

/* A tool, prompt or resource the caller may not use at all is refused as
 * the server refuses one it does not have: a hidden tool is not confirmed
 * to exist. The probe is the list item the call stands for, by name only. */
static bool is_hidden(const struct mg_judge_route *rt, const struct mg_judge_request *rq,
                      const struct mg_jsonrpc_msg *m)
{
    const char *list = NULL;
    if (m == NULL || m->name == NULL || m->method == NULL)
        return false;
    if (strcmp(m->method, "tools/call") == 0)
        list = "tools/list";
    else if (strcmp(m->method, "prompts/get") == 0)
        list = "prompts/list";
    else if (strncmp(m->method, "resources/", 10) == 0)
        list = "resources/list";
    else
        return false;
    return !mg_judge_item_visible(rt, rq, list, m->name, -1);
}

size_t mg_judge_messages(const struct mg_judge_route *rt, const struct mg_judge_request *rq,
                         const struct mg_jsonrpc_info *rpc, struct mg_judge_verdict *out)
{
    size_t n = rpc ? rpc->n_messages : 1, n_denied = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mg_jsonrpc_msg *m = rpc ? &rpc->msgs[i] : NULL;
        judge_one(rt, rq, m, &out[i]);
        if (!out[i].allow) {
            n_denied++;
            out[i].hidden = is_hidden(rt, rq, m);
            out[i].code = out[i].hidden ? MG_RPC_INVALID_PARAMS : MG_RPC_POLICY_DENIED;
        }
    }
    if (n_denied == 0)
        return 0;
    /* Nothing of a batch is forwarded if any of it is refused. */
    for (size_t i = 0; i < n; i++) {
        if (out[i].allow) {
            out[i].allow = false;
            out[i].batch_refused = true;
            out[i].reason = "batch_refused";
            out[i].code = MG_RPC_BATCH_REFUSED;
        }
    }
    return n;
}

const char *mg_judge_error_message(const struct mg_judge_verdict *v, const struct mg_jsonrpc_msg *m,
                                   char *buf, size_t cap)
{
    if (v->batch_refused)
        return "another message of this batch was refused";
    if (v->unmatched)
        return "this response answers no request the gateway relayed";
    if (v->hidden && m && m->name) {
        const char *what = strcmp(m->method, "tools/call") == 0    ? "tool"
                           : strcmp(m->method, "prompts/get") == 0 ? "prompt"
                                                                   : "resource";
        snprintf(buf, cap, "Unknown %s: %.300s", what, m->name);
        return buf;
    }
    return "denied by policy";
}

int mg_judge_refusal_status(const struct mg_jsonrpc_info *rpc)
{
    return rpc && rpc->n_requests > 0 ? 200 : 403;
}

/* Headers of MCP 2026-07-28 must say what the body says (or be absent). */
static bool headers_agree(const struct mg_jsonrpc_info *rpc, const struct mg_judge_headers *h)
{
    if (h->n_mcp_method == 0 && h->n_mcp_name == 0)
        return true;
    if (h->n_mcp_method > 1 || h->n_mcp_name > 1 || rpc->shape != MG_JSONRPC_SINGLE)
        return false;
    const struct mg_jsonrpc_msg *m = &rpc->msgs[0];
    if (h->n_mcp_method &&
        (m->method == NULL || !mg_str_eq(h->mcp_method, h->mcp_method_len, m->method)))
        return false;
    if (h->n_mcp_name && (m->name == NULL || !mg_str_eq(h->mcp_name, h->mcp_name_len, m->name)))
        return false;
    return true;
}

static bool batches_allowed(const struct mg_judge_headers *h)
{
    /* Batching was removed in 2025-06-18; versions compare as dates. */
    if (h->n_protocol_version == 0)
        return true; /* 2025-03-26 is assumed without the header (spec) */
    return h->protocol_version_len == 10 && memcmp(h->protocol_version, "2025-06-18", 10) < 0;
}

enum mg_judge_refusal mg_judge_precheck(const struct mg_jsonrpc_info *rpc,
                                        const struct mg_judge_headers *h)
{
    if (!headers_agree(rpc, h))
        return MG_JUDGE_HEADER_MISMATCH;
    if (rpc->shape == MG_JSONRPC_BATCH && !batches_allowed(h))
        return MG_JUDGE_BATCH_VERSION;
    /* A list answer is filtered per caller; inside a batch answer it would
     * not be, so a list request is refused there (fail closed). */
    for (size_t i = 0; rpc->shape == MG_JSONRPC_BATCH && i < rpc->n_messages; i++)
        if (rpc->msgs[i].kind == MG_JSONRPC_REQUEST && mg_listfilter_key(rpc->msgs[i].method))
            return MG_JUDGE_BATCH_LIST;
    return MG_JUDGE_PROCEED;
}

void mg_judge_refusal_answer(enum mg_judge_refusal r, int *status, int *code, const char **msg)
{
    *status = 400;
    switch (r) {
    case MG_JUDGE_HEADER_MISMATCH:
        *code = MG_RPC_HEADER_MISMATCH;
        *msg = "Mcp-Method / Mcp-Name headers do not match the body";
        break;
    case MG_JUDGE_BATCH_VERSION:
        *code = MG_RPC_INVALID_REQUEST;
        *msg = "batches are not part of this protocol version (2025-06-18 and later)";
        break;
    case MG_JUDGE_BATCH_LIST:
        *code = MG_RPC_INVALID_REQUEST;
        *msg = "list requests cannot be batched: their answers are filtered per caller";
        break;
    default:
        *status = 0;
        *code = 0;
        *msg = "";
    }
}
