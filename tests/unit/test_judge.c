/* Unit tests for the judge (src/gw/judge.c), the decision the policy phase
 * and `mcpgate policy test` share: the default policies (signed-in, public,
 * no global policy), the methods that need no allow rule and the deny rules
 * that still refuse them, the tool class a call is judged as (the route's
 * override, the learned annotations, destructive when unknown), hidden
 * tools, prompts and resources answered as unknown, batch refusal, list
 * item visibility, the header and protocol-version checks, the status of a
 * refusal, and that time and source reach the policy. */
#include "authn/identity.h"
#include "gw/judge.h"
#include "gw/toolmap.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#define ROUTE_HEAD(name, extra)                                                                    \
    "  - name: " name "\n"                                                                         \
    "    from: https://h.example/" name "\n"                                                       \
    "    to: http://127.0.0.1:3000/mcp\n" extra

static struct mg_conf *conf_of(const char *yaml)
{
    struct mg_conf *c = NULL;
    char *err = NULL;
    if (mg_conf_load_string("t.yaml", yaml, strlen(yaml), &c, &err) != 0) {
        printf("# config: %s\n", err ? err : "?");
        free(err);
        return NULL;
    }
    return c;
}

static const struct mg_conf_route *route_of(const struct mg_conf *c, const char *name)
{
    for (size_t i = 0; c && i < c->n_routes; i++)
        if (strcmp(c->routes[i].name, name) == 0)
            return &c->routes[i];
    return NULL;
}

static struct mg_identity *person(const char *email, const char *groups_json)
{
    struct mg_identity *id = mg_identity_new();
    free(id->subject);
    id->subject = malloc(strlen(email) + 6);
    snprintf(id->subject, strlen(email) + 6, "user:%s", email);
    free(id->email);
    id->email = strdup(email);
    id->method = MG_AUTH_OAUTH;
    json_t *g = json_loads(groups_json, 0, NULL);
    mg_identity_set_groups_json(id, g);
    json_decref(g);
    return id;
}

/* One test case: a route of a configuration, a caller, a body. */
struct tcase {
    struct mg_conf *conf;
    struct mg_judge_route rt;
    struct mg_judge_request rq;
    struct mg_jsonrpc_info rpc;
    struct mg_judge_verdict v[8];
    size_t n_refused;
};

/* What the responses of the next bodies answer, as if the gateway had
 * relayed the server's request (NULL: unmatched). */
static const char *answering;

static void run(struct tcase *t, const struct mg_conf *c, const char *route,
                const struct mg_identity *id, const char *body)
{
    memset(t, 0, sizeof *t);
    t->rt.conf = c;
    t->rt.route = route_of(c, route);
    MG_ASSERT(t->rt.route != NULL);
    t->rq.identity = id;
    t->rq.http_method = body ? "POST" : "GET";
    t->rq.http_path = "/x";
    t->rq.now = 1795000000;
    if (body) {
        mg_jsonrpc_inspect(body, strlen(body), &t->rpc);
        MG_ASSERT(t->rpc.shape != MG_JSONRPC_INVALID && t->rpc.n_messages <= 8);
        for (size_t i = 0; i < t->rpc.n_messages; i++)
            if (t->rpc.msgs[i].kind == MG_JSONRPC_RESPONSE)
                t->rpc.msgs[i].answers = answering;
    }
    t->n_refused = mg_judge_messages(&t->rt, &t->rq, body ? &t->rpc : NULL, t->v);
}

static void fini(struct tcase *t)
{
    mg_jsonrpc_info_fini(&t->rpc);
}

/* Judges body and checks the first verdict's answer, reason and rule. */
static void expect(const struct mg_conf *c, const char *route, const struct mg_identity *id,
                   const char *body, bool allow, const char *reason, const char *rule,
                   const char *desc)
{
    struct tcase t;
    run(&t, c, route, id, body);
    TAP_OK(t.v[0].allow == allow && strcmp(t.v[0].reason, reason) == 0 &&
               strcmp(t.v[0].rule, rule) == 0,
           "%s", desc);
    if (!(t.v[0].allow == allow && strcmp(t.v[0].reason, reason) == 0 &&
          strcmp(t.v[0].rule, rule) == 0))
        printf("#   got allow=%d reason=%s rule=%s\n", t.v[0].allow, t.v[0].reason, t.v[0].rule);
    fini(&t);
}

#define CALL(tool)                                                                                 \
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"" tool "\"}}"
#define REQ(method)  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"" method "\"}"
#define NOTE(method) "{\"jsonrpc\":\"2.0\",\"method\":\"" method "\"}"

static void test_defaults(void)
{
    struct mg_conf *c = conf_of("routes:\n" ROUTE_HEAD("plain", "") ROUTE_HEAD(
        "pub", "    allow_public_unauthenticated_access: true\n"));
    struct mg_identity *ann = person("ann@example.com", "[\"users\"]");
    struct mg_identity *anon = mg_identity_new();

    expect(c, "plain", ann, CALL("anything"), true, "allowed", "default:signed_in.allow.or[0]",
           "no route policy: a signed-in caller may call any tool");
    expect(c, "plain", anon, CALL("anything"), false, "no_rule_allowed", "default:signed_in",
           "no route policy: an anonymous caller may not");
    expect(c, "plain", NULL, CALL("anything"), false, "no_rule_allowed", "default:signed_in",
           "a NULL identity is anonymous");
    expect(c, "plain", anon, REQ("initialize"), true, "allowed_by_default", "default:signed_in",
           "initialize needs no allow rule");
    expect(c, "pub", anon, CALL("anything"), true, "allowed", "default:anyone.allow.or[0]",
           "public route without a policy: anyone may call any tool");
    expect(c, "plain", ann, NULL, true, "allowed", "default:signed_in.allow.or[0]",
           "a GET is judged without a method");
    mg_conf_unref(c);

    c = conf_of("policy:\n  allow: {or: [{email: {ends_with: '@example.com'}}]}\n"
                "routes:\n" ROUTE_HEAD("plain", ""));
    struct mg_identity *eve = person("eve@evil.example", "[]");
    expect(c, "plain", ann, CALL("t"), true, "allowed", "default:signed_in.allow.or[0]",
           "both policies allow: the route's rule is reported");
    expect(c, "plain", eve, CALL("t"), false, "no_rule_allowed", "policy",
           "the global policy must allow too");
    expect(c, "plain", eve, REQ("tools/list"), true, "allowed_by_default", "policy",
           "the global policy's default-allowed methods pass");
    mg_conf_unref(c);
    mg_identity_unref(eve);
    mg_identity_unref(ann);
    mg_identity_unref(anon);
}

static void test_default_methods(void)
{
    struct mg_conf *c =
        conf_of("routes:\n" ROUTE_HEAD("r", "    policy:\n"
                                            "      allow: {and: [{mcp_tool: query}]}\n"
                                            "      deny: {or: [{mcp_method: resources/subscribe}, "
                                            "{mcp_method: notifications/cancelled}]}\n"));
    struct mg_identity *ann = person("ann@example.com", "[]");
    static const char *const by_default[] = {
        REQ("initialize"),
        REQ("ping"),
        NOTE("notifications/initialized"),
        REQ("tools/list"),
        REQ("prompts/list"),
        REQ("resources/list"),
        REQ("resources/templates/list"),
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}",
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":1,\"message\":\"x\"}}",
    };
    answering = "sampling/createMessage";
    for (size_t i = 0; i < MG_ARRAY_LEN(by_default); i++)
        expect(c, "r", ann, by_default[i], true, "allowed_by_default", "routes[r].policy",
               "needs no allow rule");
    /* A response is judged by the method it answers... */
    answering = "notifications/cancelled"; /* (denied above; any method will do) */
    expect(c, "r", ann, by_default[7], false, "denied_by_rule", "routes[r].policy.deny.or[1]",
           "a response is judged by the method of the request it answers");
    /* ...and refused when the gateway did not relay that request. */
    answering = NULL;
    for (size_t i = 7; i < MG_ARRAY_LEN(by_default); i++) {
        struct tcase t;
        run(&t, c, "r", ann, by_default[i]);
        char buf[128];
        TAP_OK(!t.v[0].allow && t.v[0].unmatched &&
                   strcmp(t.v[0].reason, "unmatched_response") == 0 &&
                   t.v[0].code == MG_RPC_POLICY_DENIED &&
                   strcmp(mg_judge_error_message(&t.v[0], &t.rpc.msgs[0], buf, sizeof buf),
                          "this response answers no request the gateway relayed") == 0,
               "a response to no relayed request is refused (%s)", t.v[0].reason);
        fini(&t);
    }
    expect(c, "r", ann, NULL, true, "allowed_by_default", "routes[r].policy",
           "a request without a body needs no allow rule");
    expect(c, "r", ann, CALL("query"), true, "allowed", "routes[r].policy.allow.and",
           "the tool the allow rule names");
    expect(c, "r", ann, CALL("other"), false, "no_rule_allowed", "routes[r].policy",
           "another tool needs an allow rule");
    expect(c, "r", ann,
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":\"p\"}}",
           false, "no_rule_allowed", "routes[r].policy", "prompts/get needs an allow rule");
    expect(c, "r", ann, REQ("completion/complete"), false, "no_rule_allowed", "routes[r].policy",
           "completion/complete needs an allow rule");
    expect(c, "r", ann, REQ("notificationsX"), false, "no_rule_allowed", "routes[r].policy",
           "only the notifications/ prefix counts");
    expect(c, "r", ann, NOTE("notifications/cancelled"), false, "denied_by_rule",
           "routes[r].policy.deny.or[1]", "a deny rule still refuses a notification");
    mg_conf_unref(c);
    mg_identity_unref(ann);
}

static void test_tool_class(void)
{
    struct mg_conf *c = conf_of("routes:\n" ROUTE_HEAD(
        "r", "    mcp:\n      tool_classes: {forced: destructive, tame: read_only}\n"
             "    policy:\n      allow: {or: [{authenticated_user: true}]}\n"
             "      deny: {or: [{mcp_tool_class: destructive}]}\n"));
    struct mg_identity *ann = person("ann@example.com", "[]");
    struct tcase t;
    struct mg_toolmap *tm = mg_toolmap_new();
    json_t *tools = json_loads("[{\"name\":\"query\",\"annotations\":{\"readOnlyHint\":true}},"
                               "{\"name\":\"forced\",\"annotations\":{\"readOnlyHint\":true}},"
                               "{\"name\":\"update\",\"annotations\":{\"destructiveHint\":false}}]",
                               0, NULL);
    mg_toolmap_learn(tm, tools);

    run(&t, c, "r", ann, CALL("query"));
    TAP_OK(!t.v[0].allow && t.v[0].tool_class == MG_TOOL_DESTRUCTIVE,
           "nothing learned: a tool counts as destructive");
    fini(&t);
    run(&t, c, "r", ann, CALL("tame"));
    TAP_OK(t.v[0].allow && t.v[0].tool_class == MG_TOOL_READ_ONLY,
           "the route's class applies without learning");
    fini(&t);

    static const struct {
        const char *tool;
        enum mg_tool_class cls;
        bool allow;
        const char *desc;
    } cases[] = {
        {"query", MG_TOOL_READ_ONLY, true, "learned read-only"},
        {"update", MG_TOOL_WRITE, true, "learned write (destructiveHint false)"},
        {"forced", MG_TOOL_DESTRUCTIVE, false, "the route's class wins over the annotations"},
        {"unknown", MG_TOOL_DESTRUCTIVE, false, "a tool never listed is destructive"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(cases); i++) {
        memset(&t, 0, sizeof t);
        t.rt.conf = c;
        t.rt.route = route_of(c, "r");
        t.rt.toolmap = tm;
        t.rq.identity = ann;
        t.rq.http_method = "POST";
        char body[256];
        snprintf(
            body, sizeof body,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\"}}",
            cases[i].tool);
        mg_jsonrpc_inspect(body, strlen(body), &t.rpc);
        mg_judge_messages(&t.rt, &t.rq, &t.rpc, t.v);
        TAP_OK(t.v[0].tool_class == cases[i].cls && t.v[0].allow == cases[i].allow, "%s",
               cases[i].desc);
        fini(&t);
    }

    /* List items: their own annotations, the route's class over them. */
    struct mg_judge_route rt = {.conf = c, .route = route_of(c, "r"), .toolmap = tm};
    struct mg_judge_request rq = {.identity = ann, .http_method = "POST"};
    TAP_OK(mg_judge_item_visible(&rt, &rq, "tools/list", "x", MG_TOOL_READ_ONLY),
           "a read-only item is listed");
    TAP_OK(!mg_judge_item_visible(&rt, &rq, "tools/list", "x", MG_TOOL_DESTRUCTIVE),
           "an item without annotations is destructive: hidden");
    TAP_OK(!mg_judge_item_visible(&rt, &rq, "tools/list", "forced", MG_TOOL_READ_ONLY),
           "the route's class hides an item annotated read-only");
    TAP_OK(mg_judge_item_visible(&rt, &rq, "tools/list", "tame", MG_TOOL_DESTRUCTIVE),
           "the route's class shows an unannotated item");
    TAP_OK(mg_judge_item_visible(&rt, &rq, "tools/list", "query", -1),
           "a name alone takes the learned class");
    TAP_OK(!mg_judge_item_visible(&rt, &rq, "tools/list", "unknown", -1),
           "a name alone never listed is destructive");
    TAP_OK(!mg_judge_item_visible(&rt, &rq, "tools/list", NULL, MG_TOOL_READ_ONLY),
           "an item without a name");
    TAP_OK(!mg_judge_item_visible(&rt, &rq, "tools/call", "x", MG_TOOL_READ_ONLY),
           "not a list method");
    /* One prepared list judges item after item as the single calls do. */
    struct mg_judge_list *l = mg_judge_list_new(&rt, &rq, "tools/list");
    TAP_OK(mg_judge_list_visible(l, "x", MG_TOOL_READ_ONLY) &&
               !mg_judge_list_visible(l, "x", MG_TOOL_DESTRUCTIVE) &&
               !mg_judge_list_visible(l, "forced", MG_TOOL_READ_ONLY) &&
               mg_judge_list_visible(l, "tame", MG_TOOL_DESTRUCTIVE) &&
               mg_judge_list_visible(l, "x", MG_TOOL_READ_ONLY),
           "a prepared list forgets the previous item's name and class");
    mg_judge_list_free(l);
    json_decref(tools);
    mg_toolmap_free(tm);
    mg_conf_unref(c);
    mg_identity_unref(ann);
}

static void test_hidden(void)
{
    /* The demo's policy, plus argument, prompt and resource rules. */
    struct mg_conf *c = conf_of("routes:\n" ROUTE_HEAD(
        "sql", "    policy:\n"
               "      - allow: {or: [{authenticated_user: true}]}\n"
               "        deny: {and: [{mcp_tool: {is: execute}}, {groups: {exclude: admins}}]}\n"
               "      - deny:\n"
               "          or:\n"
               "            - {mcp_argument/sql: {contains: DROP}}\n"
               "            - {mcp_prompt: secret}\n"
               "            - {mcp_resource: {starts_with: 'file:///etc'}}\n"));
    struct mg_identity *ann = person("ann@example.com", "[\"users\"]");
    struct mg_identity *root = person("root@example.com", "[\"users\",\"admins\"]");
    struct tcase t;
    char buf[512];

    run(&t, c, "sql", ann, CALL("execute"));
    TAP_OK(!t.v[0].allow && t.v[0].hidden && t.v[0].code == MG_RPC_INVALID_PARAMS &&
               strcmp(t.v[0].rule, "routes[sql].policy[0].deny.and") == 0,
           "a tool the caller may not use is hidden: -32602");
    TAP_IS_STR(mg_judge_error_message(&t.v[0], &t.rpc.msgs[0], buf, sizeof buf),
               "Unknown tool: execute", "as a server refuses a tool it does not have");
    fini(&t);
    run(&t, c, "sql", root, CALL("execute"));
    TAP_OK(t.v[0].allow && t.v[0].code == 0, "an admin may call execute");
    fini(&t);
    run(&t, c, "sql", ann,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\","
        "\"arguments\":{\"sql\":\"DROP TABLE t\"}}}");
    TAP_OK(!t.v[0].allow && !t.v[0].hidden && t.v[0].code == MG_RPC_POLICY_DENIED &&
               strcmp(t.v[0].rule, "routes[sql].policy[1].deny.or[0]") == 0,
           "refused for its arguments: the tool is visible, -32013");
    TAP_IS_STR(mg_judge_error_message(&t.v[0], &t.rpc.msgs[0], buf, sizeof buf), "denied by policy",
               "denied by policy");
    fini(&t);
    /* The same arguments, once flat (mcp/args.h) and once a tree (an
     * escape and a nested member keep them one): judged alike. */
    static const char *const same_args[] = {
        "{\"sql\":\"DROP TABLE t\",\"n\":5}",
        "{\"sql\":\"DROP\\u0020TABLE t\",\"n\":5,\"o\":{}}",
    };
    for (int k = 0; k < 2; k++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
                 "\"query\",\"arguments\":%s}}",
                 same_args[k]);
        run(&t, c, "sql", ann, body);
        TAP_OK((t.rpc.msgs[0].args_flat != NULL) == (k == 0) && !t.v[0].allow &&
                   t.v[0].code == MG_RPC_POLICY_DENIED &&
                   strcmp(t.v[0].rule, "routes[sql].policy[1].deny.or[0]") == 0,
               "refused for its arguments, read %s", k == 0 ? "flat" : "as a tree");
        fini(&t);
    }
    run(&t, c, "sql", ann,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/"
        "get\",\"params\":{\"name\":\"secret\"}}");
    TAP_IS_STR(mg_judge_error_message(&t.v[0], &t.rpc.msgs[0], buf, sizeof buf),
               "Unknown prompt: secret", "a hidden prompt");
    fini(&t);
    run(&t, c, "sql", ann,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///"
        "etc/passwd\"}}");
    TAP_IS_STR(mg_judge_error_message(&t.v[0], &t.rpc.msgs[0], buf, sizeof buf),
               "Unknown resource: file:///etc/passwd", "a hidden resource");
    TAP_IS_INT(t.v[0].code, MG_RPC_INVALID_PARAMS, "-32602 for a hidden resource");
    fini(&t);
    mg_conf_unref(c);
    mg_identity_unref(ann);
    mg_identity_unref(root);
}

static void test_batch(void)
{
    struct mg_conf *c = conf_of(
        "routes:\n" ROUTE_HEAD("r", "    policy:\n"
                                    "      allow: {or: [{authenticated_user: true}]}\n"
                                    "      deny: {or: [{mcp_argument/sql: {contains: DROP}}]}\n"));
    struct mg_identity *ann = person("ann@example.com", "[]");
    struct tcase t;
    char buf[512];
    run(&t, c, "r", ann,
        "[" CALL("a") "," NOTE(
            "notifications/initialized") ","
                                         "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/"
                                         "call\",\"params\":{\"name\":\"q\","
                                         "\"arguments\":{\"sql\":\"DROP\"}}}]");
    TAP_IS_INT(t.n_refused, 3, "one refused element refuses the whole batch");
    TAP_OK(!t.v[0].allow && t.v[0].batch_refused && t.v[0].code == MG_RPC_BATCH_REFUSED &&
               strcmp(t.v[0].reason, "batch_refused") == 0 &&
               strcmp(t.v[0].rule, "routes[r].policy.allow.or[0]") == 0,
           "an allowed element: batch_refused, its allow rule kept");
    TAP_IS_STR(mg_judge_error_message(&t.v[0], &t.rpc.msgs[0], buf, sizeof buf),
               "another message of this batch was refused", "its message");
    TAP_OK(t.v[1].batch_refused, "the notification too");
    TAP_OK(!t.v[2].batch_refused && strcmp(t.v[2].reason, "denied_by_rule") == 0 &&
               t.v[2].code == MG_RPC_POLICY_DENIED,
           "the refused element keeps its own reason");
    TAP_IS_INT(mg_judge_refusal_status(&t.rpc), 200, "requests get their errors in a 200");
    fini(&t);
    run(&t, c, "r", ann, "[" CALL("a") "," CALL("b") "]");
    TAP_OK(t.n_refused == 0 && t.v[0].allow && t.v[1].allow, "an allowed batch passes whole");
    fini(&t);
    mg_conf_unref(c);
    mg_identity_unref(ann);
}

static void test_refusal_status(void)
{
    struct mg_jsonrpc_info rpc;
    TAP_IS_INT(mg_judge_refusal_status(NULL), 403, "no body: 403");
    mg_jsonrpc_inspect(NOTE("notifications/x"), strlen(NOTE("notifications/x")), &rpc);
    TAP_IS_INT(mg_judge_refusal_status(&rpc), 403, "a notification: 403");
    mg_jsonrpc_info_fini(&rpc);
    mg_jsonrpc_inspect(REQ("x"), strlen(REQ("x")), &rpc);
    TAP_IS_INT(mg_judge_refusal_status(&rpc), 200, "a request: 200");
    mg_jsonrpc_info_fini(&rpc);
}

static enum mg_judge_refusal pre(const char *body, const char *method, const char *name,
                                 const char *version, size_t n_method)
{
    struct mg_jsonrpc_info rpc;
    struct mg_judge_headers h = {0};
    mg_jsonrpc_inspect(body, strlen(body), &rpc);
    MG_ASSERT(rpc.shape != MG_JSONRPC_INVALID);
    if (method) {
        h.mcp_method = method;
        h.mcp_method_len = strlen(method);
        h.n_mcp_method = n_method;
    }
    if (name) {
        h.mcp_name = name;
        h.mcp_name_len = strlen(name);
        h.n_mcp_name = 1;
    }
    if (version) {
        h.protocol_version = version;
        h.protocol_version_len = strlen(version);
        h.n_protocol_version = 1;
    }
    enum mg_judge_refusal r = mg_judge_precheck(&rpc, &h);
    mg_jsonrpc_info_fini(&rpc);
    return r;
}

static void test_precheck(void)
{
    const char *call = CALL("query");
    const char *batch = "[" REQ("ping") "," REQ("ping") "]";
    TAP_IS_INT(pre(call, NULL, NULL, NULL, 0), MG_JUDGE_PROCEED, "no headers");
    TAP_IS_INT(pre(call, "tools/call", "query", "2026-07-28", 1), MG_JUDGE_PROCEED,
               "headers that agree");
    TAP_IS_INT(pre(call, "tools/list", NULL, NULL, 1), MG_JUDGE_HEADER_MISMATCH,
               "Mcp-Method differs");
    TAP_IS_INT(pre(call, NULL, "execute", NULL, 0), MG_JUDGE_HEADER_MISMATCH, "Mcp-Name differs");
    TAP_IS_INT(pre(call, "tools/call", NULL, NULL, 2), MG_JUDGE_HEADER_MISMATCH,
               "two Mcp-Method headers");
    TAP_IS_INT(pre(REQ("ping"), NULL, "x", NULL, 0), MG_JUDGE_HEADER_MISMATCH,
               "Mcp-Name for a message without a name");
    TAP_IS_INT(pre(batch, "ping", NULL, NULL, 1), MG_JUDGE_HEADER_MISMATCH, "headers on a batch");
    TAP_IS_INT(pre(batch, NULL, NULL, NULL, 0), MG_JUDGE_PROCEED,
               "a batch without a version (2025-03-26 assumed)");
    TAP_IS_INT(pre(batch, NULL, NULL, "2025-03-26", 0), MG_JUDGE_PROCEED, "a batch in 2025-03-26");
    TAP_IS_INT(pre(batch, NULL, NULL, "2025-06-18", 0), MG_JUDGE_BATCH_VERSION,
               "a batch in 2025-06-18");
    TAP_IS_INT(pre(batch, NULL, NULL, "2025-11-25", 0), MG_JUDGE_BATCH_VERSION,
               "a batch in 2025-11-25");
    TAP_IS_INT(pre(batch, NULL, NULL, "garbage", 0), MG_JUDGE_BATCH_VERSION,
               "a batch with a version that is not a date");
    TAP_IS_INT(pre(call, NULL, NULL, "2025-11-25", 0), MG_JUDGE_PROCEED,
               "one message in any version");
    TAP_IS_INT(pre("[" REQ("ping") "," REQ("tools/list") "]", NULL, NULL, "2025-03-26", 0),
               MG_JUDGE_BATCH_LIST, "a list request in a batch: its answer could not be filtered");
    TAP_IS_INT(pre("[" REQ("ping") "," REQ("prompts/list") "]", NULL, NULL, NULL, 0),
               MG_JUDGE_BATCH_LIST, "prompts/list in a batch too");
    TAP_IS_INT(pre(REQ("tools/list"), NULL, NULL, NULL, 0), MG_JUDGE_PROCEED,
               "a list request alone is filtered");

    int status, code;
    const char *msg;
    mg_judge_refusal_answer(MG_JUDGE_HEADER_MISMATCH, &status, &code, &msg);
    TAP_OK(status == 400 && code == -32020, "header mismatch: 400, -32020");
    mg_judge_refusal_answer(MG_JUDGE_BATCH_VERSION, &status, &code, &msg);
    TAP_OK(status == 400 && code == -32600, "batch in a later version: 400, -32600");
    mg_judge_refusal_answer(MG_JUDGE_PROCEED, &status, &code, &msg);
    TAP_OK(status == 0 && code == 0, "nothing to refuse");
}

static void test_request_context(void)
{
    struct mg_conf *c = conf_of("routes:\n" ROUTE_HEAD(
        "r", "    policy:\n"
             "      allow:\n"
             "        and:\n"
             "          - {source_ip: 10.0.0.0/8}\n"
             "          - {date: {after: '2026-11-01', before: '2026-12-01'}}\n"
             "          - {http_method: POST}\n"
             "          - {http_path: /x}\n"));
    struct mg_identity *ann = person("ann@example.com", "[]");
    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.2.3", &in.sin_addr);
    struct mg_judge_route rt = {.conf = c, .route = route_of(c, "r")};
    struct mg_judge_request rq = {.identity = ann,
                                  .http_method = "POST",
                                  .http_path = "/x",
                                  .source = (const struct sockaddr *)&in,
                                  .now = 1795341600 /* 2026-11-22T10:00:00Z */};
    struct mg_jsonrpc_info rpc;
    struct mg_judge_verdict v;
    mg_jsonrpc_inspect(CALL("t"), strlen(CALL("t")), &rpc);
    mg_judge_messages(&rt, &rq, &rpc, &v);
    TAP_OK(v.allow, "source, time, method and path reach the policy");
    rq.now = 1798761600; /* 2027-01-01 */
    mg_judge_messages(&rt, &rq, &rpc, &v);
    TAP_OK(!v.allow, "the time is the caller's, not the clock's");
    rq.now = 1795341600;
    rq.source = NULL;
    mg_judge_messages(&rt, &rq, &rpc, &v);
    TAP_OK(!v.allow, "an unknown source matches no source_ip");
    mg_jsonrpc_info_fini(&rpc);
    mg_conf_unref(c);
    mg_identity_unref(ann);
}

/* Server->client requests noted as they are relayed, taken once by the
 * client's answer, per session, bounded. */
static void test_pending_requests(void)
{
    struct mg_toolmap *m = mg_toolmap_new();
    char method[MG_TOOLMAP_METHOD_MAX + 1];

    TAP_OK(!mg_toolmap_take_request(m, "s1", "1", method, sizeof method),
           "nothing noted: no match");
    mg_toolmap_note_request(m, "s1", "1", "sampling/createMessage");
    mg_toolmap_note_request(m, "s1", "\"e-2\"", "elicitation/create");
    TAP_OK(!mg_toolmap_take_request(m, "s2", "1", method, sizeof method),
           "another session's id does not match");
    TAP_OK(!mg_toolmap_take_request(m, "s1", "2", method, sizeof method), "another id does not");
    TAP_OK(mg_toolmap_take_request(m, "s1", "1", method, sizeof method) &&
               strcmp(method, "sampling/createMessage") == 0,
           "the answer to 1 in s1 answers sampling/createMessage");
    TAP_OK(!mg_toolmap_take_request(m, "s1", "1", method, sizeof method),
           "one answer per request: a second is unmatched");
    TAP_OK(mg_toolmap_take_request(m, "s1", "\"e-2\"", method, sizeof method) &&
               strcmp(method, "elicitation/create") == 0,
           "string ids too");
    mg_toolmap_note_request(m, "", "7", "roots/list");
    TAP_OK(mg_toolmap_take_request(m, "", "7", method, sizeof method) &&
               strcmp(method, "roots/list") == 0,
           "without a session");
    {
        char longm[MG_TOOLMAP_METHOD_MAX + 8];
        memset(longm, 'm', sizeof longm - 1);
        longm[sizeof longm - 1] = '\0';
        mg_toolmap_note_request(m, "s", "9", longm);
        TAP_OK(!mg_toolmap_take_request(m, "s", "9", method, sizeof method),
               "a method past the bound is not remembered");
    }
    /* Past the bound the oldest is forgotten. */
    char id[32];
    for (int i = 0; i < MG_TOOLMAP_MAX_PENDING + 10; i++) {
        snprintf(id, sizeof id, "%d", 1000 + i);
        mg_toolmap_note_request(m, "s", id, "sampling/createMessage");
    }
    TAP_OK(!mg_toolmap_take_request(m, "s", "1000", method, sizeof method) &&
               !mg_toolmap_take_request(m, "s", "1009", method, sizeof method),
           "the oldest are forgotten past %d", MG_TOOLMAP_MAX_PENDING);
    snprintf(id, sizeof id, "%d", 1000 + MG_TOOLMAP_MAX_PENDING + 9);
    TAP_OK(mg_toolmap_take_request(m, "s", "1010", method, sizeof method) &&
               mg_toolmap_take_request(m, "s", id, method, sizeof method),
           "the rest are kept");
    mg_toolmap_free(m);
}

int main(void)
{
    test_defaults();
    test_default_methods();
    test_tool_class();
    test_hidden();
    test_batch();
    test_refusal_status();
    test_precheck();
    test_request_context();
    test_pending_requests();
    return tap_done();
}
