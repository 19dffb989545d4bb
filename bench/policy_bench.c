/* Micro-benchmark of policy evaluation (issue 4: <= 1 us per decision for a
 * 100-rule policy). A route policy of 100 rules (90 allow rules keyed on a
 * group and a tool list, 10 deny rules on arguments, addresses and a local
 * time window) plus a small global policy, judged for callers that match
 * the last allow rule (every rule is tried), the first one, one that no rule
 * allows, and one a deny rule stops. Prints ns per decision for each and its
 * ratio to the 1 us budget, and the compile time of the policy.
 *
 *   make bench-policy   BENCH_POLICY_N: decisions per case (default 2,000,000);
 *                       BENCH_POLICY_CASE: run only case 0..3 (for callgrind) */
#include "authn/identity.h"
#include "conf/ytree.h"
#include "core/buf.h"
#include "policy/policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#define RULES_ALLOW 90
#define RULES_DENY  10

static void on_fail(void *ctx, const struct mg_ynode *at, const char *msg)
{
    fprintf(stderr, "policy_bench: %d:%d: %s\n", at->line, at->col, msg);
    (*(int *)ctx)++;
}

static struct mg_policy *compile(const char *yaml, const char *prefix)
{
    struct mg_ynode *root = NULL;
    struct mg_policy *p = NULL;
    char *err = NULL;
    int n = 0;
    if (mg_ytree_parse("bench.yaml", yaml, strlen(yaml), &root, &err) < 0) {
        fprintf(stderr, "policy_bench: %s\n", err);
        exit(1);
    }
    if (mg_policy_compile(root, prefix, NULL, &p, on_fail, &n) < 0)
        exit(1);
    mg_ytree_free(root);
    return p;
}

static void route_yaml(struct mg_buf *b)
{
    for (int i = 0; i < RULES_ALLOW; i++)
        mg_buf_appendf(b,
                       "- allow:\n"
                       "    and:\n"
                       "      - groups: {has: team-%d}\n"
                       "      - mcp_tool: {in: [tool_%d_a, tool_%d_b, tool_%d_c]}\n"
                       "      - mcp_tool_class: {in: [read_only, write]}\n",
                       i, i, i, i);
    for (int i = 0; i < RULES_DENY; i++)
        mg_buf_appendf(b,
                       "- deny:\n"
                       "    or:\n"
                       "      - mcp_argument/sql: {contains: DROP_%d}\n"
                       "      - mcp_argument/limit: {gt: %d}\n"
                       "      - source_ip: [10.%d.0.0/16, '2001:db8:%d::/48']\n"
                       "      - time_of_day: {timezone: Europe/Berlin, after: '02:00', before: "
                       "'02:30'}\n",
                       i, 100000 + i, i, i);
}

static struct mg_identity *member_of(const char *group)
{
    struct mg_identity *id = mg_identity_new();
    json_t *g = json_pack("[s,s,s]", "everyone", "staff", group);
    free(id->subject);
    id->subject = mg_xstrdup("user:ann@example.com");
    free(id->email);
    id->email = mg_xstrdup("ann@example.com");
    id->method = MG_AUTH_OAUTH;
    if (mg_identity_set_groups_json(id, g) < 0)
        exit(1);
    json_decref(g);
    return id;
}

static double run(const struct mg_policy *g, const struct mg_policy *r, struct mg_policy_input *in,
                  long n, bool want, const char **rule)
{
    struct mg_policy_decision d = {0};
    uint64_t t0;
    long allowed = 0;
    int64_t now0 = in->now;
    for (long i = 0; i < n / 10; i++) /* warm up */
        mg_policy_eval(g, r, in, &d);
    t0 = mg_now_ns();
    for (long i = 0; i < n; i++) {
        in->now = now0 + (i & 1023); /* local times are recomputed every call */
        mg_policy_eval(g, r, in, &d);
        allowed += d.allow;
    }
    {
        double ns = (double)(mg_now_ns() - t0) / (double)n;
        in->now = now0;
        if (allowed != (want ? n : 0)) {
            fprintf(stderr, "policy_bench: unexpected decision (%s)\n", d.rule);
            exit(1);
        }
        *rule = d.rule;
        return ns;
    }
}

static int atoi_case(const char *s)
{
    return (int)strtol(s, NULL, 10);
}

int main(void)
{
    const char *env = getenv("BENCH_POLICY_N"), *only = getenv("BENCH_POLICY_CASE");
    long n = env ? strtol(env, NULL, 10) : 2000000;
    struct mg_buf y;
    struct mg_policy *route, *global;
    struct mg_identity *last = member_of("team-89"), *first = member_of("team-0"),
                       *nobody = member_of("team-x");
    json_t *args = json_loads("{\"sql\":\"SELECT * FROM t WHERE a = 1\",\"limit\":50}", 0, NULL);
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct mg_policy_input in = {
        .http_method = "POST",
        .http_path = "/mcp",
        .source = (const struct sockaddr *)&src,
        .now = 1767787200, /* 2026-01-07 12:00 UTC */
        .mcp_method = "tools/call",
        .tool_class = MG_TOOL_READ_ONLY,
        .arguments = args,
    };
    const char *rule;
    uint64_t t0, compile_ns;
    static const char *const names[] = {"last allow rule (all 100 rules tried)", "first allow rule",
                                        "no rule allows (all tried)", "denied by an argument rule"};
    double ns[4];

    if (n < 1000)
        n = 1000;
    inet_pton(AF_INET, "192.0.2.10", &src.sin_addr);
    mg_buf_init(&y, 1 << 20);
    route_yaml(&y);
    mg_buf_append(&y, "", 1);
    t0 = mg_now_ns();
    route = compile(y.data, "routes[bench].policy");
    compile_ns = mg_now_ns() - t0;
    global = compile("allow: {or: [{authenticated_user: true}]}\n"
                     "deny: {or: [{email: {ends_with: '@blocked.example'}}]}\n",
                     "policy");
    if (mg_policy_n_rules(route) != RULES_ALLOW + RULES_DENY)
        return 1;

    for (int c = 0; c < 4; c++) {
        static const char *const tools[] = {"tool_89_c", "tool_0_a", "tool_89_c", "tool_89_c"};
        struct mg_identity *const who[] = {last, first, nobody, last};
        if (only && atoi_case(only) != c) {
            ns[c] = 0;
            continue;
        }
        in.identity = who[c];
        in.mcp_name = tools[c];
        json_object_set_new(args, "sql",
                            json_string(c == 3 ? "DROP_9 TABLE t" : "SELECT * FROM t WHERE a = 1"));
        ns[c] = run(global, route, &in, n, c < 2, &rule);
        printf("  %-40s %7.1f ns/decision  %.3f of the 1 us budget  (%s)\n", names[c], ns[c],
               ns[c] / 1000.0, rule);
    }
    printf("  compile of the 100-rule policy: %.1f us (%zu bytes of YAML); %ld decisions per "
           "case\n",
           (double)compile_ns / 1000.0, y.len - 1, n);

    mg_policy_free(route);
    mg_policy_free(global);
    mg_identity_unref(last);
    mg_identity_unref(first);
    mg_identity_unref(nobody);
    json_decref(args);
    mg_buf_fini(&y);
    return ns[0] <= 1000.0 ? 0 : 2;
}
