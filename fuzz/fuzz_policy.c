/* libFuzzer target for the policy compiler and evaluator: arbitrary bytes as
 * YAML through mg_ytree_parse, the tree through mg_policy_compile, and a
 * compiled policy evaluated against fixed inputs (anonymous and signed-in
 * callers, MCP methods with names, classes and arguments, IPv4, IPv6 and
 * unknown sources, times around DST changes and the epoch) and linted.
 * Checks the compiler's contract (success: a policy and no error; failure:
 * no policy and at least one located error) and the decision's (a reason
 * consistent with allow, a rule path the policy owns, the same answer
 * twice, and the same answer for flat arguments (mcp/args.h) as for the
 * tree they stand for). */
#include "authn/identity.h"
#include "conf/ytree.h"
#include "fuzz_util.h"
#include "mcp/jsonrpc.h"
#include "policy/policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fail_count {
    int n;
};

static void on_fail(void *ctx, const struct mg_ynode *at, const char *msg)
{
    struct fail_count *f = ctx;
    MG_ASSERT(at != NULL && at->line >= 1 && at->col >= 1);
    MG_ASSERT(msg != NULL && *msg != '\0' && strchr(msg, '\n') == NULL);
    f->n++;
}

static void on_warn(void *ctx, const char *path, int line, int col, const char *msg)
{
    MG_ASSERT(path != NULL && msg != NULL && *msg != '\0' && line >= 1 && col >= 1);
    (*(size_t *)ctx)++;
}

static struct mg_identity *signed_in;
static json_t *args_obj, *args_arr;
/* Flat arguments as the gateway reads them, and jansson's tree of them. */
static const char flat_body[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\","
    "\"arguments\":{\"sql\":\"DROP TABLE t\",\"limit\":100,\"f\":false,\"n\":null,\"\":\"e\","
    "\"k/~\":7,\"big\":9007199254740993,\"s5\":\"5\"}}}";
static struct mg_jsonrpc_info flat_info;
static json_t *flat_tree;
static struct sockaddr_in sin4;
static struct sockaddr_in6 sin6, sin6_mapped;

static void setup(void)
{
    json_t *g;
    if (signed_in)
        return;
    signed_in = mg_identity_new();
    free(signed_in->subject);
    signed_in->subject = mg_xstrdup("user:ann@example.com");
    free(signed_in->email);
    signed_in->email = mg_xstrdup("ann@Example.com");
    free(signed_in->client_id);
    signed_in->client_id = mg_xstrdup("client-1");
    signed_in->method = MG_AUTH_OAUTH;
    g = json_pack("[s,s]", "admins", "eng");
    MG_ASSERT(mg_identity_set_groups_json(signed_in, g) == 0);
    json_decref(g);
    json_decref(signed_in->claims);
    signed_in->claims = json_loads("{\"tier\":\"gold\",\"roles\":[\"a\",1,2.5,true,null,{}],"
                                   "\"org\":{\"team\":\"core\"}}",
                                   0, NULL);
    args_obj = json_loads("{\"sql\":\"DROP TABLE t\",\"limit\":100,\"r\":0.5,\"f\":false,"
                          "\"n\":null,\"a\":[1,\"x\",[2]],\"o\":{\"k/~\":{\"\":7}}}",
                          0, NULL);
    args_arr = json_loads("[1,2,3]", 0, NULL);
    mg_jsonrpc_inspect(flat_body, sizeof flat_body - 1, &flat_info);
    MG_ASSERT(flat_info.n_messages == 1 && flat_info.msgs[0].args_flat != NULL);
    flat_tree = json_loads(strstr(flat_body, "\"arguments\":") + 12, JSON_DISABLE_EOF_CHECK, NULL);
    MG_ASSERT(json_is_object(flat_tree) && json_object_size(flat_tree) == 8);
    MG_ASSERT(signed_in->claims && args_obj && args_arr);
    sin4.sin_family = AF_INET;
    inet_pton(AF_INET, "10.1.2.3", &sin4.sin_addr);
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    sin6_mapped.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6_mapped.sin6_addr);
}

static void check_decision(const struct mg_policy *g, const struct mg_policy *p,
                           const struct mg_policy_input *in)
{
    struct mg_policy_decision d, again;
    const char *prefix = mg_policy_path(p);
    mg_policy_eval(g, p, in, &d);
    mg_policy_eval(g, p, in, &again);
    MG_ASSERT(d.allow == again.allow && d.reason == again.reason && d.rule == again.rule);
    MG_ASSERT(d.rule != NULL && d.global_rule != NULL);
    MG_ASSERT(d.allow == (d.reason == MG_POLICY_ALLOWED));
    MG_ASSERT(strcmp(mg_policy_reason_name(d.reason), "unknown") != 0);
    if (d.scope == MG_POLICY_SCOPE_ROUTE && d.reason != MG_POLICY_NOT_CONFIGURED)
        MG_ASSERT(strncmp(d.rule, prefix, strlen(prefix)) == 0);
    /* A prepared list judge decides the same, also after another item. */
    struct mg_policy_prep *pp = mg_policy_prep_new(g, p, in);
    mg_policy_eval_prep(pp, "another", MG_TOOL_WRITE, &again);
    mg_policy_eval_prep(pp, in->mcp_name, in->tool_class, &again);
    MG_ASSERT(d.allow == again.allow && d.reason == again.reason && d.scope == again.scope &&
              strcmp(d.rule, again.rule) == 0 && strcmp(d.global_rule, again.global_rule) == 0);
    mg_policy_prep_free(pp);
    /* The route policy alone against itself as global: deny rules still win. */
    mg_policy_eval(p, p, in, &again);
    if (d.reason == MG_POLICY_DENIED_BY_RULE && d.scope == MG_POLICY_SCOPE_ROUTE)
        MG_ASSERT(!again.allow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mg_ynode *root = NULL;
    struct mg_policy *p = NULL, *g = NULL;
    struct fail_count fc = {0};
    char *err = NULL;
    int rc;

    setup();
    if (mg_ytree_parse("fuzz.yaml", (const char *)data, size, &root, &err) < 0) {
        MG_ASSERT(root == NULL && err != NULL);
        free(err);
        return 0;
    }
    rc = mg_policy_compile(root, "routes[fuzz].policy", NULL, &p, on_fail, &fc);
    if (rc == 0) {
        MG_ASSERT(p != NULL && fc.n == 0);
    } else {
        MG_ASSERT(rc < 0 && p == NULL && fc.n > 0);
        mg_ytree_free(root);
        return 0;
    }
    /* The same tree as a global policy: compiles the same way. */
    fc.n = 0;
    MG_ASSERT(mg_policy_compile(root, "policy", NULL, &g, on_fail, &fc) == 0 && g != NULL);
    mg_ytree_free(root);
    MG_ASSERT(mg_policy_n_rules(p) == mg_policy_n_rules(g));

    {
        static const char *const methods[] = {"tools/call",     "tools/list", "prompts/get",
                                              "resources/read", "initialize", NULL};
        static const char *const names[] = {"query", "drop", "file:///etc/passwd", "", NULL};
        static const int64_t times[] = {0,          -1,         1767787200, 1772953199,
                                        1772953200, 2224400000, 4102444800, -2208988800};
        const struct sockaddr *sources[] = {NULL, (const struct sockaddr *)&sin4,
                                            (const struct sockaddr *)&sin6,
                                            (const struct sockaddr *)&sin6_mapped};
        for (size_t i = 0; i < 24; i++) {
            struct mg_policy_input in = {
                .identity = (i % 3) ? signed_in : NULL,
                .http_method = (i % 4) ? "POST" : "GET",
                .http_path = (i % 5) ? "/mcp" : NULL,
                .source = sources[i % MG_ARRAY_LEN(sources)],
                .now = times[i % MG_ARRAY_LEN(times)],
                .mcp_method = methods[i % MG_ARRAY_LEN(methods)],
                .mcp_name = names[i % MG_ARRAY_LEN(names)],
                .tool_class = (enum mg_tool_class)(i % 4) /* 3: out of range */,
                .arguments = (i % 3 == 0)   ? args_obj
                             : (i % 3 == 1) ? args_arr
                                            : NULL,
            };
            check_decision(g, p, &in);
            /* Flat arguments decide as their tree. */
            struct mg_policy_input tin = in, fin = in;
            struct mg_policy_decision dt, df;
            tin.arguments = flat_tree;
            fin.arguments = NULL;
            fin.args_flat = flat_info.msgs[0].args_flat;
            mg_policy_eval(g, p, &tin, &dt);
            mg_policy_eval(g, p, &fin, &df);
            MG_ASSERT(dt.allow == df.allow && dt.reason == df.reason && dt.scope == df.scope &&
                      strcmp(dt.rule, df.rule) == 0 && strcmp(dt.global_rule, df.global_rule) == 0);
            check_decision(g, p, &fin);
        }
    }
    {
        size_t n = 0;
        MG_ASSERT(mg_policy_lint(p, on_warn, &n) == n);
    }
    mg_policy_free(p);
    mg_policy_free(g);
    return 0;
}
