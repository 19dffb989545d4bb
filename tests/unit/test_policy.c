/* Unit tests for the policy core (src/policy): every operator's truth table,
 * Pomerium's documented example policies, each criterion and matcher, rule
 * paths and reason codes, global + route combination, compile errors with
 * their exact positions, bounds, lint findings, time zones against the C
 * library's own conversion, and that evaluation allocates nothing; flat
 * arguments (mcp/args.h) judged exactly as their tree, on random arguments
 * and random policies. */
#include "authn/identity.h"
#include "conf/ytree.h"
#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "policy/policy.h"
#include "policy/tz.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

/* ---------------------------------------------------------------------------
 * Counting allocations (not under ASan, which owns malloc): the test binary
 * interposes malloc & co. and forwards to glibc's implementation.
 */
#if !defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static size_t n_allocs;
void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void free(void *p);
void *malloc(size_t n)
{
    n_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    n_allocs++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    n_allocs++;
    return __libc_realloc(p, n);
}
void free(void *p)
{
    __libc_free(p);
}
#endif

/* ---------------------------------------------------------------------------
 * Helpers.
 */

struct errs {
    char buf[16384];
    size_t len;
    int n;
};

static void on_fail(void *ctx, const struct mg_ynode *at, const char *msg)
{
    struct errs *e = ctx;
    int w;
    e->n++;
    if (e->len >= sizeof e->buf - 1)
        return;
    w = snprintf(e->buf + e->len, sizeof e->buf - e->len, "%s%d:%d: %s", e->len ? "\n" : "",
                 at->line, at->col, msg);
    if (w > 0)
        e->len = MG_MIN(e->len + (size_t)w, sizeof e->buf - 1);
}

static struct mg_policy *compile_p(const char *yaml, const char *prefix, struct errs *e)
{
    struct mg_ynode *root = NULL;
    struct mg_policy *p = NULL;
    char *yerr = NULL;
    int rc;
    memset(e, 0, sizeof *e);
    if (mg_ytree_parse("t.yaml", yaml, strlen(yaml), &root, &yerr) < 0) {
        snprintf(e->buf, sizeof e->buf, "yaml: %s", yerr ? yerr : "?");
        e->n = 1;
        free(yerr);
        return NULL;
    }
    rc = mg_policy_compile(root, prefix, NULL, &p, on_fail, e);
    mg_ytree_free(root);
    if (rc == 0 && (p == NULL || e->n != 0)) {
        snprintf(e->buf, sizeof e->buf, "bad contract: rc 0 with errors or no policy");
        mg_policy_free(p);
        return NULL;
    }
    if (rc < 0 && (p != NULL || e->n == 0)) {
        snprintf(e->buf, sizeof e->buf, "bad contract: failure without errors or with policy");
        mg_policy_free(p);
        return NULL;
    }
    return p;
}

static struct mg_policy *compile_ok(const char *yaml)
{
    struct errs e;
    struct mg_policy *p = compile_p(yaml, "policy", &e);
    if (p == NULL)
        printf("# compile failed: %s\n#   for: %s\n", e.buf, yaml);
    return p;
}

/* The error text for yaml (prefix "policy"), or "" when it compiles. */
static char *err_of(const char *yaml)
{
    struct errs e;
    struct mg_policy *p = compile_p(yaml, "policy", &e);
    if (p) {
        mg_policy_free(p);
        return strdup("");
    }
    return strdup(e.buf);
}

#define ERR(yaml, want)                                                                            \
    do {                                                                                           \
        char *e_ = err_of(yaml);                                                                   \
        TAP_IS_STR(e_, want, "error: %s", want);                                                   \
        free(e_);                                                                                  \
    } while (0)

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = mg_xstrdup(v);
}

/* An authenticated identity; groups as a JSON array, claims as a JSON object. */
static struct mg_identity *ident(const char *subject, const char *email, const char *groups,
                                 const char *claims, const char *client_id)
{
    struct mg_identity *id = mg_identity_new();
    set_str(&id->subject, subject);
    set_str(&id->email, email);
    set_str(&id->client_id, client_id ? client_id : "");
    id->method = MG_AUTH_OAUTH;
    if (groups) {
        json_t *g = json_loads(groups, 0, NULL);
        MG_ASSERT(g != NULL);
        MG_ASSERT(mg_identity_set_groups_json(id, g) == 0);
        json_decref(g);
    }
    if (claims) {
        json_t *c = json_loads(claims, 0, NULL);
        MG_ASSERT(c != NULL);
        json_decref(id->claims);
        id->claims = c;
    }
    return id;
}

static int64_t utc(int y, unsigned mo, unsigned d, int h, int mi, int s)
{
    return mg_policy_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

/* Wednesday 2026-01-07 12:00:00 UTC. */
#define T0 ((int64_t)1767787200)

static struct mg_policy_input input(const struct mg_identity *id)
{
    struct mg_policy_input in = {
        .identity = id,
        .http_method = "POST",
        .http_path = "/mcp",
        .now = T0,
        .mcp_method = "tools/call",
        .mcp_name = "query",
        .tool_class = MG_TOOL_READ_ONLY,
    };
    return in;
}

static struct mg_policy *g_accept; /* a global policy that allows everything */

static size_t n_prepared, n_prepared_differ; /* decisions also made by the prepared path */

static bool same_decision(const struct mg_policy_decision *a, const struct mg_policy_decision *b)
{
    return a->allow == b->allow && a->reason == b->reason && a->scope == b->scope &&
           strcmp(a->rule, b->rule) == 0 && strcmp(a->global_rule, b->global_rule) == 0;
}

/* Every decision of these tests is also made by a prepared list judge
 * (mg_policy_prep_new + mg_policy_eval_prep), once fresh and once after
 * another name and class, and must be the same. */
static void check_prepared(const struct mg_policy *g, const struct mg_policy *p,
                           const struct mg_policy_input *in, const struct mg_policy_decision *d)
{
    struct mg_policy_decision x, y;
    struct mg_policy_prep *pp = mg_policy_prep_new(g, p, in);
    mg_policy_eval_prep(pp, in->mcp_name, in->tool_class, &x);
    mg_policy_eval_prep(pp, "some_other_name", MG_TOOL_WRITE, &y);
    mg_policy_eval_prep(pp, in->mcp_name, in->tool_class, &y);
    mg_policy_prep_free(pp);
    n_prepared++;
    if (!same_decision(d, &x) || !same_decision(d, &y)) {
        n_prepared_differ++;
        fprintf(stderr, "# prepared decision differs: %s %s vs %s %s\n",
                mg_policy_reason_name(d->reason), d->rule, mg_policy_reason_name(x.reason), x.rule);
    }
}

static struct mg_policy_decision decide(const struct mg_policy *p, const struct mg_policy_input *in)
{
    struct mg_policy_decision d;
    mg_policy_eval(g_accept, p, in, &d);
    check_prepared(g_accept, p, in, &d);
    return d;
}

static bool allowed(const struct mg_policy *p, const struct mg_policy_input *in)
{
    return p != NULL && decide(p, in).allow;
}

/* Compiles yaml and checks one decision against a fresh input that setup
 * adjusts. */
#define CHECK(p, in, want, ...) TAP_OK(allowed(p, &(in)) == (want), __VA_ARGS__)

/* ---------------------------------------------------------------------------
 * Operators.
 */

static void test_truth_tables(void)
{
    /* A: http_method is GET; B: http_path is /b. */
    static const struct {
        const char *op;
        int want[4]; /* (A,B) = 00, 01, 10, 11 */
    } t[] = {
        {"and", {0, 0, 0, 1}},
        {"or", {0, 1, 1, 1}},
        {"not", {1, 0, 0, 0}}, /* not A and not B: NOR */
        {"nor", {1, 1, 1, 0}}, /* not A or not B: NAND */
    };
    struct mg_identity *id = ident("user:a", "a@x.com", NULL, NULL, NULL);
    for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
        char yaml[256], dyaml[256];
        struct mg_policy *p, *dp;
        snprintf(yaml, sizeof yaml, "allow:\n  %s:\n    - http_method: GET\n    - http_path: /b\n",
                 t[i].op);
        snprintf(dyaml, sizeof dyaml,
                 "allow:\n  or: [{accept: true}]\ndeny:\n  %s:\n    - http_method: GET\n"
                 "    - http_path: /b\n",
                 t[i].op);
        p = compile_ok(yaml);
        dp = compile_ok(dyaml);
        for (int ab = 0; ab < 4; ab++) {
            struct mg_policy_input in = input(id);
            in.http_method = (ab & 2) ? "GET" : "POST";
            in.http_path = (ab & 1) ? "/b" : "/a";
            TAP_IS_INT(allowed(p, &in), t[i].want[ab], "allow %s: A=%d B=%d -> %d", t[i].op,
                       ab >> 1, ab & 1, t[i].want[ab]);
            TAP_IS_INT(allowed(dp, &in), !t[i].want[ab], "deny %s: A=%d B=%d -> denied %d", t[i].op,
                       ab >> 1, ab & 1, t[i].want[ab]);
        }
        mg_policy_free(p);
        mg_policy_free(dp);
    }

    /* One criterion: not and nor both negate it. Three: not is "none",
     * nor is "not all". */
    {
        static const struct {
            const char *yaml;
            int want;
        } c[] = {
            {"allow: {not: [{accept: 1}]}", 0},
            {"allow: {not: [{reject: 1}]}", 1},
            {"allow: {nor: [{accept: 1}]}", 0},
            {"allow: {nor: [{reject: 1}]}", 1},
            {"allow: {not: [{reject: 1}, {reject: 1}, {reject: 1}]}", 1},
            {"allow: {not: [{reject: 1}, {accept: 1}, {reject: 1}]}", 0},
            {"allow: {nor: [{accept: 1}, {accept: 1}, {accept: 1}]}", 0},
            {"allow: {nor: [{accept: 1}, {reject: 1}, {accept: 1}]}", 1},
            {"allow: {and: [{accept: 1}, {accept: 1}, {reject: 1}]}", 0},
            {"allow: {or: [{reject: 1}, {reject: 1}, {accept: 1}]}", 1},
            /* Several operators in one body are OR'ed (Pomerium). */
            {"allow: {and: [{reject: 1}], or: [{accept: 1}]}", 1},
            {"allow: {and: [{accept: 1}], not: [{accept: 1}]}", 1},
            {"allow: {and: [{reject: 1}], nor: [{accept: 1}]}", 0},
            /* Empty operators generate nothing: they never match. */
            {"allow: {and: []}", 0},
            {"allow: {not: []}", 0},
            {"allow: {nor: []}", 0},
            {"[{allow: {or: [{accept: 1}]}, deny: {not: []}}]", 1},
            {"[{allow: {or: [{accept: 1}]}, deny: {and: []}}]", 1},
            /* Deny wins, nothing allowed is denied. */
            {"{allow: {or: [{accept: 1}]}, deny: {or: [{accept: 1}]}}", 0},
            {"{deny: {or: [{reject: 1}]}}", 0},
            {"[]", 0},
            {"[{}]", 0},
            /* Rules in a list: allows are OR'ed, any deny denies. */
            {"[{allow: {or: [{reject: 1}]}}, {allow: {or: [{accept: 1}]}}]", 1},
            {"[{allow: {or: [{accept: 1}]}}, {deny: {or: [{accept: 1}]}}]", 0},
            /* The value of accept/reject is ignored, as in Pomerium. */
            {"allow: {or: [{accept: false}]}", 1},
            {"allow: {or: [{reject: false}]}", 0},
        };
        for (size_t i = 0; i < MG_ARRAY_LEN(c); i++) {
            struct mg_policy *p = compile_ok(c[i].yaml);
            struct mg_policy_input in = input(id);
            TAP_IS_INT(allowed(p, &in), c[i].want, "%s -> %d", c[i].yaml, c[i].want);
            mg_policy_free(p);
        }
    }
    mg_identity_unref(id);
}

/* ---------------------------------------------------------------------------
 * Rule paths, reasons, global + route.
 */

static void test_paths_and_reasons(void)
{
    struct errs e;
    struct mg_identity *admin = ident("user:root@x.com", "root@x.com", "[\"admins\"]", NULL, NULL);
    struct mg_identity *ann = ident("user:ann@x.com", "ann@x.com", "[\"eng\"]", NULL, NULL);
    struct mg_policy *route = compile_p("- allow:\n"
                                        "    or:\n"
                                        "      - groups: admins\n"
                                        "      - email: ann@x.com\n"
                                        "  deny:\n"
                                        "    or:\n"
                                        "      - mcp_tool: drop\n"
                                        "      - mcp_tool_class: destructive\n"
                                        "- allow:\n"
                                        "    and:\n"
                                        "      - authenticated_user: true\n"
                                        "      - mcp_tool: list\n"
                                        "- deny:\n"
                                        "    nor:\n"
                                        "      - http_method: POST\n"
                                        "      - http_path: /mcp\n",
                                        "routes[sql].policy", &e);
    struct mg_policy *global = compile_ok("allow: {or: [{authenticated_user: true}]}\n"
                                          "deny: {and: [{email: evil@x.com}]}\n");
    struct mg_policy_decision d;
    struct mg_policy_input in = input(admin);

    TAP_OK(route != NULL, "route policy compiles");
    TAP_IS_INT(mg_policy_n_rules(route), 3, "three rules");
    TAP_IS_STR(mg_policy_path(route), "routes[sql].policy", "prefix kept");

    mg_policy_eval(global, route, &in, &d);
    TAP_OK(d.allow && d.reason == MG_POLICY_ALLOWED, "admin allowed");
    TAP_IS_STR(d.rule, "routes[sql].policy[0].allow.or[0]", "or: the matching criterion decides");
    TAP_IS_STR(d.global_rule, "policy.allow.or[0]", "the global allow rule is reported too");
    TAP_IS_INT(d.scope, MG_POLICY_SCOPE_ROUTE, "scope route");
    TAP_IS_STR(mg_policy_reason_name(d.reason), "allowed", "reason name");

    in.mcp_name = "drop";
    mg_policy_eval(global, route, &in, &d);
    TAP_OK(!d.allow && d.reason == MG_POLICY_DENIED_BY_RULE, "drop denied by rule");
    TAP_IS_STR(d.rule, "routes[sql].policy[0].deny.or[0]", "deny path");
    TAP_IS_STR(mg_policy_reason_name(d.reason), "denied_by_rule", "reason name");

    in.mcp_name = "wipe";
    in.tool_class = MG_TOOL_DESTRUCTIVE; /* unknown tools count as destructive */
    mg_policy_eval(global, route, &in, &d);
    TAP_IS_STR(d.rule, "routes[sql].policy[0].deny.or[1]", "a destructive tool: or[1]");

    in = input(admin);
    in.http_path = "/other";
    mg_policy_eval(global, route, &in, &d);
    TAP_IS_STR(d.rule, "routes[sql].policy[2].deny.nor[1]", "nor: the failing criterion decides");

    in = input(ann);
    in.mcp_name = "list";
    in.identity = ann;
    mg_policy_eval(global, route, &in, &d);
    TAP_OK(d.allow, "ann allowed");
    TAP_IS_STR(d.rule, "routes[sql].policy[0].allow.or[1]", "first matching allow rule");

    {
        struct mg_identity *bob = ident("user:bob@x.com", "bob@x.com", NULL, NULL, NULL);
        in = input(bob);
        in.mcp_name = "list";
        mg_policy_eval(global, route, &in, &d);
        TAP_IS_STR(d.rule, "routes[sql].policy[1].allow.and", "and: the operator decides");
        in.mcp_name = "query";
        mg_policy_eval(global, route, &in, &d);
        TAP_OK(!d.allow && d.reason == MG_POLICY_NO_RULE_ALLOWED, "bob/query: no rule allowed");
        TAP_IS_STR(d.rule, "routes[sql].policy", "no_rule_allowed names the policy");
        TAP_IS_INT(d.scope, MG_POLICY_SCOPE_ROUTE, "route scope");
        TAP_IS_STR(mg_policy_reason_name(d.reason), "no_rule_allowed", "reason name");

        /* The global policy: anonymous callers are not allowed there. */
        in.identity = NULL;
        in.mcp_name = "list";
        mg_policy_eval(global, route, &in, &d);
        TAP_OK(!d.allow && d.reason == MG_POLICY_NO_RULE_ALLOWED &&
                   d.scope == MG_POLICY_SCOPE_GLOBAL,
               "anonymous: global policy allows nothing");
        TAP_IS_STR(d.rule, "policy", "global policy's path");
        mg_identity_unref(bob);
    }
    {
        struct mg_identity *evil =
            ident("user:evil@x.com", "evil@x.com", "[\"admins\"]", NULL, NULL);
        in = input(evil);
        mg_policy_eval(global, route, &in, &d);
        TAP_OK(!d.allow && d.scope == MG_POLICY_SCOPE_GLOBAL, "global deny wins");
        TAP_IS_STR(d.rule, "policy.deny.and", "global deny path");
        mg_identity_unref(evil);
    }

    /* NULL policies: not configured, denied; the daemon decides defaults. */
    in = input(admin);
    mg_policy_eval(NULL, route, &in, &d);
    TAP_OK(!d.allow && d.reason == MG_POLICY_NOT_CONFIGURED && d.scope == MG_POLICY_SCOPE_GLOBAL,
           "NULL global: no_policy");
    TAP_IS_STR(d.rule, "", "no rule path");
    mg_policy_eval(global, NULL, &in, &d);
    TAP_OK(!d.allow && d.reason == MG_POLICY_NOT_CONFIGURED && d.scope == MG_POLICY_SCOPE_ROUTE,
           "NULL route: no_policy");
    TAP_IS_STR(mg_policy_reason_name(d.reason), "no_policy", "reason name");
    mg_policy_eval(route, route, &in, &d);
    TAP_OK(d.allow, "the same policy twice");

    mg_policy_free(route);
    mg_policy_free(global);
    mg_identity_unref(admin);
    mg_identity_unref(ann);
}

/* ---------------------------------------------------------------------------
 * Pomerium's documented examples (docs/internals/ppl, capabilities/mcp).
 */

static void test_pomerium_examples(void)
{
    struct mg_identity *u1 = ident("u1", "user1@example.com", NULL,
                                   "{\"family_name\":\"Smith\","
                                   "\"groups\":[\"admin\",\"x\"]}",
                                   NULL);
    struct mg_identity *u2 = ident("u2", "user2@example.com", NULL, NULL, NULL);
    struct mg_identity *o =
        ident("o", "ann@other.com", "[\"data-analysts\"]", "{\"groups\":\"admin\"}", NULL);
    struct mg_policy_input in;
    struct mg_policy *p;

    /* "At a glance". */
    p = compile_ok("allow:\n"
                   "  and:\n"
                   "    - domain:\n"
                   "        is: example.com\n"
                   "deny:\n"
                   "  or:\n"
                   "    - email:\n"
                   "        is: user2@example.com\n"
                   "    - email:\n"
                   "        is: user3@example.com\n");
    in = input(u1);
    CHECK(p, in, true, "glance: user1@example.com allowed");
    in = input(u2);
    CHECK(p, in, false, "glance: user2 denied");
    in = input(o);
    CHECK(p, in, false, "glance: other domain not allowed");
    mg_policy_free(p);

    /* "More on logical operators": domain example.com, claim/groups admin. */
    {
        static const struct {
            const char *op;
            int u1, u2, o; /* u1: A B; u2: A !B; o: !A B */
        } t[] = {
            {"and", 1, 0, 0},
            {"or", 1, 1, 1},
            {"not", 0, 0, 0},
            {"nor", 0, 1, 1},
        };
        for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
            char yaml[256];
            snprintf(yaml, sizeof yaml,
                     "allow:\n  %s:\n    - domain:\n        is: example.com\n"
                     "    - claim/groups: admin\n",
                     t[i].op);
            p = compile_ok(yaml);
            in = input(u1);
            CHECK(p, in, t[i].u1, "operators doc, %s: A and B -> %d", t[i].op, t[i].u1);
            in = input(u2);
            CHECK(p, in, t[i].u2, "operators doc, %s: A, not B -> %d", t[i].op, t[i].u2);
            in = input(o);
            CHECK(p, in, t[i].o, "operators doc, %s: not A, B -> %d", t[i].op, t[i].o);
            mg_policy_free(p);
        }
        {
            struct mg_identity *n = ident("n", "n@else.org", NULL, NULL, NULL);
            p = compile_ok("allow:\n  not:\n    - domain:\n        is: example.com\n"
                           "    - claim/groups: admin\n");
            in = input(n);
            CHECK(p, in, true, "operators doc, not: neither -> allowed");
            mg_policy_free(p);
            mg_identity_unref(n);
        }
    }

    /* "Multiple operators in a rule" and its equivalent with two rules. */
    {
        const char *one = "allow:\n"
                          "  and:\n"
                          "    - claim/family_name: Smith\n"
                          "  or:\n"
                          "    - domain:\n"
                          "        is: domain1.com\n"
                          "    - domain:\n"
                          "        is: domain2.com\n";
        const char *two = "- allow:\n"
                          "    and:\n"
                          "      - claim/family_name: Smith\n"
                          "- allow:\n"
                          "    or:\n"
                          "      - domain:\n"
                          "          is: domain1.com\n"
                          "      - domain:\n"
                          "          is: domain2.com\n";
        struct mg_identity *d2 = ident("d2", "z@domain2.com", NULL, NULL, NULL);
        struct mg_policy *p1 = compile_ok(one), *p2 = compile_ok(two);
        const struct mg_identity *who[] = {u1, u2, d2, o};
        const int want[] = {1, 0, 1, 0};
        for (size_t i = 0; i < MG_ARRAY_LEN(who); i++) {
            in = input(who[i]);
            CHECK(p1, in, want[i], "several operators, caller %zu -> %d", i, want[i]);
            CHECK(p2, in, want[i], "two rules, caller %zu -> %d", i, want[i]);
        }
        mg_policy_free(p1);
        mg_policy_free(p2);
        mg_identity_unref(d2);
    }

    /* Criteria example: claim, and deny anything but GET. */
    p = compile_ok("allow:\n  and:\n    - claim/family_name: Smith\n"
                   "deny:\n  not:\n    - http_method:\n        is: GET\n");
    in = input(u1);
    in.http_method = "GET";
    CHECK(p, in, true, "criteria doc: Smith with GET");
    in.http_method = "POST";
    CHECK(p, in, false, "criteria doc: POST denied");
    mg_policy_free(p);

    /* Matchers. */
    p = compile_ok("allow:\n  and:\n    - email:\n        starts_with: 'admin@'\n");
    {
        struct mg_identity *a = ident("a", "admin@corp.com", NULL, NULL, NULL);
        in = input(a);
        CHECK(p, in, true, "starts_with admin@");
        in = input(u1);
        CHECK(p, in, false, "starts_with: others not");
        mg_identity_unref(a);
    }
    mg_policy_free(p);
    p = compile_ok("allow:\n  and:\n    - email:\n"
                   "        in: ['user1@example.com', 'user2.company.com']\n");
    in = input(u1);
    CHECK(p, in, true, "email in list");
    in = input(u2);
    CHECK(p, in, false, "email not in list");
    mg_policy_free(p);
    p = compile_ok("allow:\n  and:\n    - groups:\n        has: 'data-analysts'\n");
    in = input(o);
    CHECK(p, in, true, "groups has");
    in = input(u1);
    CHECK(p, in, false, "groups has: not a member");
    mg_policy_free(p);

    /* Date, day of week and time of day examples (times in UTC). */
    p = compile_ok("allow:\n  and:\n    - date:\n        after: 2020-01-02T16:20:00\n"
                   "        before: 2150-01-02T16:20:00\n");
    in = input(u1);
    CHECK(p, in, true, "date doc: now is inside");
    in.now = utc(2020, 1, 2, 16, 19, 59);
    CHECK(p, in, false, "date doc: a second before after");
    in.now = utc(2020, 1, 2, 16, 20, 0);
    CHECK(p, in, true, "date doc: after is inclusive");
    in.now = utc(2150, 1, 2, 16, 20, 0);
    CHECK(p, in, false, "date doc: before is exclusive");
    mg_policy_free(p);
    p = compile_ok("allow:\n  and:\n    - day_of_week: tue-fri\n");
    in = input(u1); /* a Wednesday */
    CHECK(p, in, true, "tue-fri: Wednesday");
    in.now = T0 + 4 * 86400; /* Sunday */
    CHECK(p, in, false, "tue-fri: Sunday");
    mg_policy_free(p);
    p = compile_ok("allow:\n  and:\n    - time_of_day:\n        timezone: UTC\n"
                   "        after: 2:20:00\n        before: 4:30PM\n");
    in = input(u1);
    CHECK(p, in, true, "time_of_day doc: noon");
    in.now = utc(2026, 1, 7, 2, 19, 59);
    CHECK(p, in, false, "time_of_day doc: 02:19:59");
    in.now = utc(2026, 1, 7, 2, 20, 0);
    CHECK(p, in, true, "time_of_day doc: 02:20:00");
    in.now = utc(2026, 1, 7, 16, 30, 0);
    CHECK(p, in, false, "time_of_day doc: 16:30");
    mg_policy_free(p);

    /* Route policy reference example. */
    p = compile_ok("- allow:\n    and:\n      - domain:\n          is: pomerium.com\n"
                   "      - user:\n          is: user\n");
    {
        struct mg_identity *a = ident("user", "u@pomerium.com", NULL, NULL, NULL);
        struct mg_identity *b = ident("other", "u@pomerium.com", NULL, NULL, NULL);
        in = input(a);
        CHECK(p, in, true, "reference: domain and user");
        in = input(b);
        CHECK(p, in, false, "reference: another user id");
        mg_identity_unref(a);
        mg_identity_unref(b);
    }
    mg_policy_free(p);

    /* "Limit MCP tool calling". */
    {
        struct mg_identity *c =
            ident("c", "c@company.com", "[\"data-analysts\",\"analysts\"]", NULL, NULL);
        p = compile_ok("allow:\n  and:\n    - domain:\n        is: company.com\n"
                       "deny:\n  and:\n    - mcp_tool:\n        is: drop_table\n");
        in = input(c);
        in.mcp_name = "drop_table";
        CHECK(p, in, false, "block a single tool");
        in.mcp_name = "query";
        CHECK(p, in, true, "other tools pass");
        in.mcp_method = "tools/list";
        in.mcp_name = "drop_table";
        CHECK(p, in, true, "mcp_tool is false outside tools/call");
        mg_policy_free(p);

        p = compile_ok("allow:\n  and:\n    - groups:\n        has: analysts\n"
                       "deny:\n  and:\n    - mcp_tool:\n        starts_with: 'admin_'\n");
        in = input(c);
        in.mcp_name = "admin_reset";
        CHECK(p, in, false, "block by prefix");
        in.mcp_name = "reset_admin";
        CHECK(p, in, true, "prefix only");
        mg_policy_free(p);

        p = compile_ok(
            "allow:\n  and:\n    - domain:\n        is: company.com\n"
            "deny:\n  and:\n    - mcp_tool:\n        not_in: ['query', 'list_tables']\n");
        in = input(c);
        CHECK(p, in, true, "allowlist: query");
        in.mcp_name = "execute";
        CHECK(p, in, false, "allowlist: execute denied");
        in.mcp_method = "initialize";
        in.mcp_name = NULL;
        CHECK(p, in, true, "allowlist: initialize not affected");
        mg_policy_free(p);

        p = compile_ok("allow:\n  and:\n    - domain:\n        is: company.com\n"
                       "    - groups:\n        has: 'data-analysts'\n"
                       "deny:\n  or:\n    - mcp_tool:\n"
                       "        in: ['update_data', 'drop_table', 'delete_records']\n"
                       "    - mcp_tool:\n        starts_with: 'admin_'\n");
        in = input(c);
        CHECK(p, in, true, "combined: query");
        in.mcp_name = "delete_records";
        CHECK(p, in, false, "combined: delete_records");
        in.mcp_name = "admin_x";
        CHECK(p, in, false, "combined: admin_x");
        in = input(u1);
        CHECK(p, in, false, "combined: other domain");
        mg_policy_free(p);

        /* The "gotcha": mcp_tool only under allow blocks tools/list. */
        p = compile_ok("allow:\n  and:\n    - mcp_tool: query\n");
        in = input(c);
        CHECK(p, in, true, "gotcha: the tool call passes");
        in.mcp_method = "tools/list";
        CHECK(p, in, false, "gotcha: tools/list is denied");
        mg_policy_free(p);
        mg_identity_unref(c);
    }
    mg_identity_unref(u1);
    mg_identity_unref(u2);
    mg_identity_unref(o);
}

/* ---------------------------------------------------------------------------
 * Criteria and matchers, one by one.
 */

static void test_identity_criteria(void)
{
    struct mg_identity *a =
        ident("user:Ann@Example.com", "Ann@Example.COM", "[\"eng\",\"ops\"]",
              "{\"tier\":\"gold\",\"roles\":[\"r1\",\"r2\"],\"n\":7,"
              "\"ok\":true,\"r\":[0.1,2.0],\"org\":{\"team\":{\"name\":\"core\"}},"
              "\"a.b\":\"flat\",\"one\":[\"x\"]}",
              "client-1");
    struct mg_identity *anon = mg_identity_new(); /* MG_AUTH_NONE */
    struct mg_identity *bare = ident("user:b", "", NULL, NULL, NULL);
    static const struct {
        const char *crit;
        int a, anon, bare;
    } t[] = {
        {"{authenticated_user: true}", 1, 0, 1},
        {"{user: 'user:Ann@Example.com'}", 1, 0, 0},
        {"{user: {starts_with: 'user:'}}", 1, 0, 1},
        {"{email: Ann@Example.COM}", 1, 0, 0},
        {"{email: ann@example.com}", 0, 0, 0}, /* email is exact */
        {"{email: {not: x@y.z}}", 1, 0, 0},    /* absent email: false */
        {"{email: {not_in: [x@y.z]}}", 1, 0, 0},
        {"{domain: example.com}", 1, 0, 0}, /* domain is case-insensitive */
        {"{domain: EXAMPLE.com}", 1, 0, 0},
        {"{domain: {ends_with: .COM}}", 1, 0, 0},
        {"{domain: {in: [a.org, Example.Com]}}", 1, 0, 0},
        {"{domain: {contains: AMPL}}", 1, 0, 0},
        {"{domain: {not: example.com}}", 0, 0, 0},
        {"{groups: eng}", 1, 0, 0},
        {"{groups: {has: ops}}", 1, 0, 0},
        {"{groups: {has: Ops}}", 0, 0, 0},
        {"{groups: {is: eng}}", 0, 0, 0}, /* is: exactly one group */
        {"{groups: {exclude: admins}}", 1, 0, 1},
        {"{groups: {exclude: eng}}", 0, 0, 1},
        {"{groups: {has: eng, exclude: admins}}", 1, 0, 0},
        {"{claim/tier: gold}", 1, 0, 0},
        {"{claim/tier: {is: gold}}", 1, 0, 0},
        {"{claim/roles: r2}", 1, 0, 0},
        {"{claim/roles: {is: r1}}", 0, 0, 0},
        {"{claim/one: {is: x}}", 1, 0, 0},
        {"{claim/n: '7'}", 1, 0, 0},
        {"{claim/n: 7}", 1, 0, 0},
        {"{claim/r: 0.1}", 1, 0, 0}, /* shortest form of a real */
        {"{claim/r: {has: 2}}", 1, 0, 0},
        {"{claim/ok: 'true'}", 1, 0, 0},
        {"{claim/org.team.name: core}", 1, 0, 0},
        {"{claim/org/team/name: core}", 1, 0, 0},
        {"{claim/a.b: flat}", 1, 0, 0}, /* the whole name first */
        {"{claim/missing: x}", 0, 0, 0},
        {"{claim/missing: {exclude: x}}", 1, 0, 1}, /* a missing claim is an empty list */
        {"{claim/org: x}", 0, 0, 0},
        {"{client_id: client-1}", 1, 0, 0},
        {"{client_id: {starts_with: client}}", 1, 0, 0},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
        char yaml[256];
        struct mg_policy *p;
        struct mg_policy_input in;
        snprintf(yaml, sizeof yaml, "allow: {and: [%s]}", t[i].crit);
        p = compile_ok(yaml);
        in = input(a);
        TAP_IS_INT(allowed(p, &in), t[i].a, "%s: signed-in caller -> %d", t[i].crit, t[i].a);
        in.identity = anon;
        TAP_IS_INT(allowed(p, &in), t[i].anon, "%s: anonymous -> %d", t[i].crit, t[i].anon);
        in.identity = NULL;
        TAP_IS_INT(allowed(p, &in), t[i].anon, "%s: no identity -> %d", t[i].crit, t[i].anon);
        in.identity = bare;
        TAP_IS_INT(allowed(p, &in), t[i].bare, "%s: no email, no groups -> %d", t[i].crit,
                   t[i].bare);
        mg_policy_free(p);
    }
    /* Under not, what was false for anonymous callers becomes true. */
    {
        struct mg_policy *p = compile_ok("allow: {not: [{email: x@y.z}]}");
        struct mg_policy_input in = input(NULL);
        CHECK(p, in, true, "not email: anonymous passes (document this)");
        mg_policy_free(p);
    }
    mg_identity_unref(a);
    mg_identity_unref(anon);
    mg_identity_unref(bare);
}

static void test_string_matchers(void)
{
    struct mg_identity *id = ident("s", "e@x.com", NULL, NULL, NULL);
    static const struct {
        const char *m;
        const char *path;
        int want;
    } t[] = {
        {"/mcp", "/mcp", 1},
        {"/mcp", "/mcp/", 0},
        {"{is: /mcp}", "/mcp", 1},
        {"{not: /mcp}", "/mcp", 0},
        {"{not: /mcp}", "/x", 1},
        {"{starts_with: /m}", "/mcp", 1},
        {"{starts_with: /mcp/long}", "/mcp", 0},
        {"{ends_with: cp}", "/mcp", 1},
        {"{ends_with: /x/mcp}", "/mcp", 0},
        {"{contains: mc}", "/mcp", 1},
        {"{contains: ''}", "/mcp", 1},
        {"{contains: pm}", "/mcp", 0},
        {"{in: [/a, /mcp]}", "/mcp", 1},
        {"{in: []}", "/mcp", 0},
        {"{not_in: [/a, /b]}", "/mcp", 1},
        {"{not_in: []}", "/mcp", 1},
        {"{not_in: [/mcp]}", "/mcp", 0},
        {"{starts_with: /, ends_with: p}", "/mcp", 1}, /* operators of one matcher AND */
        {"{starts_with: /, ends_with: x}", "/mcp", 0},
        {"{in: [a,b,c,d,e,f,g,h,i,j,k,l,/mcp,m]}", "/mcp", 1}, /* sorted, binary search */
        {"{in: [a,b,c,d,e,f,g,h,i,j,k,l,/mcq,m]}", "/mcp", 0},
        {"{in: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o]}", "b", 1},
        {"{in: [o,n,m,l,k,j,i,h,g,f,e,d,c,b,a,a,a]}", "a", 1},
        {"{not_in: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o]}", "oo", 1},
        {"'5'", "5", 1},
        {"5", "5", 1}, /* string criteria compare text */
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
        char yaml[256];
        struct mg_policy *p;
        struct mg_policy_input in = input(id);
        snprintf(yaml, sizeof yaml, "allow: {and: [{http_path: %s}]}", t[i].m);
        p = compile_ok(yaml);
        in.http_path = t[i].path;
        TAP_IS_INT(allowed(p, &in), t[i].want, "http_path %s vs %s -> %d", t[i].m, t[i].path,
                   t[i].want);
        in.http_path = NULL;
        TAP_OK(!allowed(p, &in), "http_path %s: no path -> false", t[i].m);
        mg_policy_free(p);
    }
    mg_identity_unref(id);
}

static void test_request_criteria(void)
{
    struct mg_identity *id = ident("s", "e@x.com", NULL, NULL, NULL);
    struct mg_policy_input in;
    struct mg_policy *p;

    p = compile_ok("allow: {and: [{http_method: {in: [GET, POST]}}]}");
    in = input(id);
    CHECK(p, in, true, "method POST in list");
    in.http_method = "DELETE";
    CHECK(p, in, false, "DELETE not");
    in.http_method = "post";
    CHECK(p, in, false, "methods are case-sensitive");
    mg_policy_free(p);

    p = compile_ok("allow: {and: [{mcp_method: {starts_with: 'tools/'}}]}");
    in = input(id);
    CHECK(p, in, true, "mcp_method tools/call");
    in.mcp_method = "prompts/get";
    CHECK(p, in, false, "prompts/get");
    in.mcp_method = NULL;
    CHECK(p, in, false, "not an MCP message");
    mg_policy_free(p);

    p = compile_ok("allow: {or: [{mcp_prompt: greet}, {mcp_resource: {starts_with: 'file:///'}}]}");
    in = input(id);
    in.mcp_method = "prompts/get";
    in.mcp_name = "greet";
    CHECK(p, in, true, "mcp_prompt on prompts/get");
    in.mcp_method = "tools/call";
    CHECK(p, in, false, "mcp_prompt not on tools/call");
    in.mcp_method = "resources/read";
    in.mcp_name = "file:///etc/x";
    CHECK(p, in, true, "mcp_resource on resources/read");
    in.mcp_method = "resources/subscribe";
    CHECK(p, in, true, "mcp_resource on resources/subscribe");
    in.mcp_method = "resources/unsubscribe";
    CHECK(p, in, true, "mcp_resource on resources/unsubscribe");
    in.mcp_method = "resources/list";
    CHECK(p, in, false, "mcp_resource not on resources/list");
    in.mcp_method = "resources/read";
    in.mcp_name = "https://x";
    CHECK(p, in, false, "other URI");
    mg_policy_free(p);

    {
        static const struct {
            const char *m;
            int ro, w, d, unk;
        } t[] = {
            {"read_only", 1, 0, 0, 0},          {"write", 0, 1, 0, 0},
            {"destructive", 0, 0, 1, 1},        {"{in: [read_only, write]}", 1, 1, 0, 0},
            {"{not: destructive}", 1, 1, 0, 0}, {"{not_in: [read_only]}", 0, 1, 1, 1},
        };
        for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
            char yaml[128];
            snprintf(yaml, sizeof yaml, "allow: {and: [{mcp_tool_class: %s}]}", t[i].m);
            p = compile_ok(yaml);
            in = input(id);
            in.tool_class = MG_TOOL_READ_ONLY;
            CHECK(p, in, t[i].ro, "class %s: read_only -> %d", t[i].m, t[i].ro);
            in.tool_class = MG_TOOL_WRITE;
            CHECK(p, in, t[i].w, "class %s: write -> %d", t[i].m, t[i].w);
            in.tool_class = MG_TOOL_DESTRUCTIVE;
            CHECK(p, in, t[i].d, "class %s: destructive -> %d", t[i].m, t[i].d);
            in.tool_class = (enum mg_tool_class)7;
            CHECK(p, in, t[i].unk, "class %s: out of range (as destructive) -> %d", t[i].m,
                  t[i].unk);
            in.mcp_method = "tools/list";
            CHECK(p, in, false, "class %s: not a tool call -> false", t[i].m);
            mg_policy_free(p);
        }
    }
    {
        /* An input that never set the class judges the tool destructive. */
        struct mg_policy_input zero = {.mcp_method = "tools/call", .mcp_name = "x"};
        p = compile_ok("allow: {and: [{mcp_tool_class: destructive}]}");
        CHECK(p, zero, true, "an unset class is destructive");
        mg_policy_free(p);
    }
    mg_identity_unref(id);
}

static void test_mcp_argument(void)
{
    struct mg_identity *id = ident("s", "e@x.com", NULL, NULL, NULL);
    json_t *args = json_loads("{\"sql\":\"DROP TABLE t\",\"limit\":100,\"ratio\":0.5,"
                              "\"big\":9007199254740993,\"str5\":\"5\",\"five\":5,\"fivef\":5.0,"
                              "\"flag\":true,\"none\":null,\"tags\":[\"a\",\"b\",7],"
                              "\"opts\":{\"a/b\":1,\"m~n\":2,\"deep\":{\"x\":[10,20]}},"
                              "\"\":\"empty key\"}",
                              0, NULL);
    static const struct {
        const char *crit;
        int want;
    } t[] = {
        {"mcp_argument/sql: {contains: DROP}", 1},
        {"mcp_argument/sql: {starts_with: drop}", 0},
        {"mcp_argument/sql: 'DROP TABLE t'", 1},
        {"mcp_argument: {pointer: /sql, ends_with: ' t'}", 1},
        {"mcp_argument/limit: 100", 1},
        {"mcp_argument/limit: 100.0", 1},
        {"mcp_argument/limit: 1e2", 1},
        {"mcp_argument/limit: '100'", 0}, /* a string is not a number */
        {"mcp_argument/limit: {gt: 99}", 1},
        {"mcp_argument/limit: {gt: 100}", 0},
        {"mcp_argument/limit: {ge: 100}", 1},
        {"mcp_argument/limit: {lt: 1000}", 1}, /* numeric, not lexical */
        {"mcp_argument/limit: {le: 99.5}", 0},
        {"mcp_argument/limit: {gt: 10, lt: 200}", 1},
        {"mcp_argument/limit: {in: [1, 100]}", 1},
        {"mcp_argument/limit: {in: ['100']}", 0},
        {"mcp_argument/limit: {not_in: ['100']}", 1},
        {"mcp_argument/limit: 0x64", 1},
        {"mcp_argument/ratio: {lt: 1}", 1},
        {"mcp_argument/ratio: 0.5", 1},
        {"mcp_argument/ratio: .5", 1},
        {"mcp_argument/big: 9007199254740993", 1}, /* beyond a double's exact range */
        {"mcp_argument/big: 9007199254740992", 0},
        {"mcp_argument/big: {gt: 9007199254740992}", 1},
        {"mcp_argument/str5: 5", 0},
        {"mcp_argument/str5: '5'", 1},
        {"mcp_argument/str5: {gt: 4}", 0}, /* strings never compare as numbers */
        {"mcp_argument/str5: {starts_with: 5}", 1},
        {"mcp_argument/five: 5", 1},
        {"mcp_argument/five: '5'", 0},
        {"mcp_argument/five: {in: [5, '5']}", 1},
        {"mcp_argument/five: {starts_with: 5}", 0}, /* text operators need a string */
        {"mcp_argument/fivef: 5", 1},
        {"mcp_argument/flag: true", 1},
        {"mcp_argument/flag: 'true'", 0},
        {"mcp_argument/flag: false", 0},
        {"mcp_argument/flag: {not: false}", 1},
        {"mcp_argument/none: null", 1},
        {"mcp_argument/none: ~", 1},
        {"mcp_argument/none: {exists: true}", 1},
        {"mcp_argument/missing: {exists: false}", 1},
        {"mcp_argument/missing: {exists: true}", 0},
        {"mcp_argument/missing: {not: x}", 0}, /* absent: false, even for not */
        {"mcp_argument/missing: {not_in: [x]}", 0},
        {"mcp_argument/sql: {not_in: [a, b]}", 1},
        {"mcp_argument/tags: {not_in: [a, b]}", 1}, /* an array is not a listed string */
        {"mcp_argument/tags: {has: b}", 1},
        {"mcp_argument/tags: {has: 7}", 1},
        {"mcp_argument/tags: {has: '7'}", 0},
        {"mcp_argument/tags: {exclude: c}", 1},
        {"mcp_argument/tags: {exclude: a}", 0},
        {"mcp_argument/sql: {has: DROP TABLE t}", 0}, /* has needs an array */
        {"mcp_argument/tags/0: a", 1},
        {"mcp_argument/tags/2: {ge: 7}", 1},
        {"mcp_argument/tags/3: {exists: false}", 1},
        {"mcp_argument/tags/-: {exists: false}", 1},
        {"mcp_argument/tags/00: {exists: false}", 1},
        {"mcp_argument/opts/a~1b: 1", 1},
        {"mcp_argument/opts/m~0n: 2", 1},
        {"mcp_argument/opts/deep/x/1: 20", 1},
        {"mcp_argument: {pointer: '/opts/deep/x/0', lt: 11}", 1},
        {"mcp_argument: {pointer: '', exists: true}", 1},
        {"mcp_argument: {pointer: /, is: empty key}", 1},
        {"mcp_argument/sql/0: {exists: false}", 1},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
        char yaml[256];
        struct mg_policy *p;
        struct mg_policy_input in = input(id);
        in.arguments = args;
        snprintf(yaml, sizeof yaml, "allow: {and: [{%s}]}", t[i].crit);
        p = compile_ok(yaml);
        TAP_IS_INT(allowed(p, &in), t[i].want, "%s -> %d", t[i].crit, t[i].want);
        in.arguments = NULL;
        TAP_OK(!allowed(p, &in), "%s: no arguments -> false", t[i].crit);
        mg_policy_free(p);
    }
    json_decref(args);
    mg_identity_unref(id);
}

/* Arguments as the gateway reads them: text wrapped in a tools/call body
 * and inspected (flat when the one-pass reading keeps them flat), and
 * jansson's own reading of text (the tree). */
struct req_args {
    char *body;
    struct mg_jsonrpc_info info;
    const struct mg_args_flat *flat;
    json_t *tree;
};

static void req_args_init(struct req_args *r, const char *text)
{
    struct mg_buf b;
    mg_buf_init(&b, 1 << 20);
    mg_buf_appendf(&b,
                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
                   "\"query\",\"arguments\":%s}}",
                   text);
    r->body = mg_buf_steal(&b, NULL);
    mg_jsonrpc_inspect(r->body, strlen(r->body), &r->info);
    r->flat = r->info.n_messages == 1 ? r->info.msgs[0].args_flat : NULL;
    r->tree = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    MG_ASSERT(r->tree != NULL);
}

static void req_args_fini(struct req_args *r)
{
    mg_jsonrpc_info_fini(&r->info);
    free(r->body);
    json_decref(r->tree);
}

/* mcp_argument on flat arguments: what the tree gives, as expected. */
static void test_mcp_argument_flat(void)
{
    struct mg_identity *id = ident("s", "e@x.com", NULL, NULL, NULL);
    struct req_args ra;
    req_args_init(&ra,
                  "{\"sql\":\"DROP TABLE t\",\"limit\":100,\"str5\":\"5\",\"five\":5,"
                  "\"flag\":true,\"none\":null,\"\":\"empty key\",\"min\":-9223372036854775808}");
    TAP_OK(ra.flat != NULL && ra.flat->n == 8, "these arguments are read flat");
    static const struct {
        const char *crit;
        int want;
    } t[] = {
        {"mcp_argument/sql: {contains: DROP}", 1},
        {"mcp_argument/sql: {starts_with: drop}", 0},
        {"mcp_argument/sql: 'DROP TABLE t'", 1},
        {"mcp_argument: {pointer: /sql, ends_with: ' t'}", 1},
        {"mcp_argument/limit: 100", 1},
        {"mcp_argument/limit: 100.0", 1},
        {"mcp_argument/limit: 1e2", 1},
        {"mcp_argument/limit: '100'", 0},
        {"mcp_argument/limit: {gt: 99}", 1},
        {"mcp_argument/limit: {gt: 100}", 0},
        {"mcp_argument/limit: {lt: 1000}", 1},
        {"mcp_argument/limit: {le: 99.5}", 0},
        {"mcp_argument/limit: {in: [1, 100]}", 1},
        {"mcp_argument/limit: {in: ['100']}", 0},
        {"mcp_argument/limit: {not_in: ['100']}", 1},
        {"mcp_argument/limit: {has: 100}", 0},
        {"mcp_argument/limit: {exclude: 100}", 0},
        {"mcp_argument/str5: 5", 0},
        {"mcp_argument/str5: '5'", 1},
        {"mcp_argument/str5: {gt: 4}", 0},
        {"mcp_argument/five: {starts_with: 5}", 0},
        {"mcp_argument/five: {in: [5, '5']}", 1},
        {"mcp_argument/five: 5.0", 1},
        {"mcp_argument/flag: true", 1},
        {"mcp_argument/flag: 'true'", 0},
        {"mcp_argument/flag: {not: false}", 1},
        {"mcp_argument/none: null", 1},
        {"mcp_argument/none: ~", 1},
        {"mcp_argument/none: {exists: true}", 1},
        {"mcp_argument/none: {not: null}", 0},
        {"mcp_argument/min: {lt: -9223372036854775807}", 1},
        {"mcp_argument/min: -9223372036854775808", 1},
        {"mcp_argument/min: {ge: -9223372036854775808.0}", 1},
        {"mcp_argument/missing: {exists: false}", 1},
        {"mcp_argument/missing: {exists: true}", 0},
        {"mcp_argument/missing: {not: x}", 0},
        {"mcp_argument/missing: {not_in: [x]}", 0},
        {"mcp_argument: {pointer: '', exists: true}", 1},
        {"mcp_argument: {pointer: '', exists: false}", 0},
        {"mcp_argument: {pointer: '', not: x}", 1}, /* an object is not a value */
        {"mcp_argument: {pointer: '', is: x}", 0},
        {"mcp_argument: {pointer: '', not_in: [x]}", 1},
        {"mcp_argument: {pointer: '', gt: 0}", 0},
        {"mcp_argument: {pointer: '', has: x}", 0},
        {"mcp_argument: {pointer: '', exclude: x}", 0}, /* not an array either */
        {"mcp_argument: {pointer: /, is: empty key}", 1},
        {"mcp_argument/sql/0: {exists: false}", 1}, /* a scalar has no children */
        {"mcp_argument/limit/x: {exists: false}", 1},
        {"mcp_argument/sql/0: {not: x}", 0},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
        char yaml[256];
        struct mg_policy_input in = input(id);
        snprintf(yaml, sizeof yaml, "allow: {and: [{%s}]}", t[i].crit);
        struct mg_policy *p = compile_ok(yaml);
        in.arguments = ra.tree;
        bool tree = allowed(p, &in);
        in.arguments = NULL;
        in.args_flat = ra.flat;
        bool flat = allowed(p, &in);
        TAP_OK(tree == t[i].want && flat == t[i].want, "%s -> %d (tree %d, flat %d)", t[i].crit,
               t[i].want, tree, flat);
        in.args_flat = NULL;
        TAP_OK(!allowed(p, &in), "%s: no arguments -> false", t[i].crit);
        mg_policy_free(p);
    }

    /* Past the cache's slots (POLICY_PTR_SLOTS): 32 pointers at missing
     * members take them, the 8 present members are judged uncached. */
    {
        struct mg_buf b;
        mg_buf_init(&b, 1 << 16);
        mg_buf_appends(&b, "allow:\n  and:\n");
        for (int i = 0; i < 32; i++)
            mg_buf_appendf(&b, "    - mcp_argument/m%d: {exists: false}\n", i);
        for (int i = 0; i < 8; i++)
            mg_buf_appendf(&b, "    - mcp_argument/a%d: %d\n", i, i);
        mg_buf_append(&b, "", 1);
        struct mg_policy *p = compile_ok(b.data);
        struct req_args ok, bad;
        req_args_init(&ok,
                      "{\"a0\":0,\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,\"a7\":7}");
        req_args_init(&bad,
                      "{\"a0\":0,\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,\"a7\":8}");
        struct mg_policy_input in = input(id);
        in.args_flat = ok.flat;
        bool yes = ok.flat && allowed(p, &in);
        in.args_flat = bad.flat;
        bool no = bad.flat && !allowed(p, &in);
        in.args_flat = NULL;
        in.arguments = bad.tree;
        bool tree_no = !allowed(p, &in);
        TAP_OK(yes && no && tree_no, "flat arguments past the cache slots are still judged");
        req_args_fini(&ok);
        req_args_fini(&bad);
        mg_policy_free(p);
        mg_buf_fini(&b);
    }
    req_args_fini(&ra);
    mg_identity_unref(id);
}

/* Random flat arguments against random policies of mcp_argument criteria:
 * judged from the tree and from the flat form, the decision and the rule
 * that made it are the same every time. */
static const char *const rk_keys[] = {
    "",    "a", "ab", "abc",   "A",   "\xc3\xa9", "\xc3\xa9\xc3\xa9",
    "sql", "s", "sq", "limit", "k/~", "x y",      "\xf0\x9f\x98\x80"};
static const char *const rk_strings[] = {"",
                                         "5",
                                         "5.0",
                                         "-1",
                                         "abc",
                                         "ab",
                                         "a",
                                         "DROP TABLE t",
                                         "drop",
                                         "\xc3\xa9",
                                         "\xf0\x9f\x98\x80x",
                                         "true",
                                         "null",
                                         "a/b",
                                         "9223372036854775807"};
static const char *const rk_ints[] = {"0",
                                      "-0",
                                      "1",
                                      "-1",
                                      "4",
                                      "5",
                                      "6",
                                      "-5",
                                      "100",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "9223372036854775806",
                                      "-9223372036854775807",
                                      "9007199254740993",
                                      "9007199254740992"};
static const char *const rk_nums[] = {"5",
                                      "5.0",
                                      "-1",
                                      "0",
                                      "-0.0",
                                      "0.5",
                                      "4.5",
                                      "100",
                                      "1e2",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "9223372036854775808",
                                      "9007199254740993",
                                      "9007199254740992",
                                      "-5"};

/* A literal of any type, as YAML. */
static void rk_lit(struct mg_buf *b, bool strings_only)
{
    switch (strings_only ? 0 : tap_rand(5)) {
    case 0:
    case 1: mg_buf_appendf(b, "'%s'", rk_strings[tap_rand(MG_ARRAY_LEN(rk_strings))]); break;
    case 2: mg_buf_appends(b, rk_nums[tap_rand(MG_ARRAY_LEN(rk_nums))]); break;
    case 3: mg_buf_appends(b, tap_rand(2) ? "true" : "false"); break;
    default: mg_buf_appends(b, tap_rand(2) ? "null" : "~"); break;
    }
}

/* A key as a JSON Pointer segment (RFC 6901: '~' is ~0, '/' is ~1). */
static void rk_seg(struct mg_buf *b, const char *k)
{
    mg_buf_appends(b, "/");
    for (; *k; k++)
        mg_buf_appends(b, *k == '~' ? "~0" : *k == '/' ? "~1" : (char[]){*k, '\0'});
}

static void rk_criterion(struct mg_buf *b)
{
    static const char *const ops[] = {"is",        "not",      "in",      "not_in", "starts_with",
                                      "ends_with", "contains", "lt",      "le",     "gt",
                                      "ge",        "has",      "exclude", "exists"};
    mg_buf_appends(b, "{mcp_argument: {pointer: '");
    uint32_t shape = tap_rand(10);
    if (shape == 0) {
        /* the arguments themselves */
    } else {
        rk_seg(b, shape == 1 ? "missing" : rk_keys[tap_rand(MG_ARRAY_LEN(rk_keys))]);
        if (shape == 2)
            mg_buf_appends(b, tap_rand(2) ? "/0" : "/x");
    }
    mg_buf_appends(b, "'");
    uint32_t first = tap_rand(MG_ARRAY_LEN(ops)), n_ops = 1 + (tap_rand(4) == 0);
    for (uint32_t i = 0; i < n_ops; i++) {
        const char *op = ops[(first + i * 5) % MG_ARRAY_LEN(ops)]; /* distinct */
        mg_buf_appendf(b, ", %s: ", op);
        if (strcmp(op, "in") == 0 || strcmp(op, "not_in") == 0) {
            mg_buf_appends(b, "[");
            for (uint32_t k = 0, n = tap_rand(4); k < n; k++) {
                mg_buf_appends(b, k ? ", " : "");
                rk_lit(b, false);
            }
            mg_buf_appends(b, "]");
        } else if (strcmp(op, "exists") == 0) {
            mg_buf_appends(b, tap_rand(2) ? "true" : "false");
        } else if (op[0] == 'l' || op[0] == 'g') {
            mg_buf_appends(b, rk_nums[tap_rand(MG_ARRAY_LEN(rk_nums))]);
        } else if (strcmp(op, "starts_with") == 0 || strcmp(op, "ends_with") == 0 ||
                   strcmp(op, "contains") == 0) {
            if (tap_rand(4)) /* a plain number is its text here */
                rk_lit(b, true);
            else
                mg_buf_appends(b, rk_nums[tap_rand(MG_ARRAY_LEN(rk_nums))]);
        } else {
            rk_lit(b, false);
        }
    }
    mg_buf_appends(b, "}}");
}

/* Flat-able arguments: distinct keys, scalar values, at most 8. */
static void rk_args(struct mg_buf *b)
{
    bool used[MG_ARRAY_LEN(rk_keys)] = {false};
    mg_buf_appends(b, "{");
    for (uint32_t i = 0, n = tap_rand(9), first = 1; i < n; i++) {
        uint32_t k = tap_rand(MG_ARRAY_LEN(rk_keys));
        if (used[k])
            continue;
        used[k] = true;
        mg_buf_appendf(b, "%s\"%s\":", first ? "" : ",", rk_keys[k]);
        first = 0;
        switch (tap_rand(6)) {
        case 0:
        case 1: mg_buf_appendf(b, "\"%s\"", rk_strings[tap_rand(MG_ARRAY_LEN(rk_strings))]); break;
        case 2:
        case 3: mg_buf_appends(b, rk_ints[tap_rand(MG_ARRAY_LEN(rk_ints))]); break;
        case 4: mg_buf_appends(b, tap_rand(2) ? "true" : "false"); break;
        default: mg_buf_appends(b, "null"); break;
        }
    }
    mg_buf_appends(b, "}");
}

static void test_flat_random(void)
{
    static const char *const ops[] = {"and", "or", "not", "nor"};
    struct mg_identity *id = ident("s", "e@x.com", NULL, NULL, NULL);
    size_t n_decisions = 0, n_differ = 0, n_not_flat = 0, n_bad_policy = 0;
    size_t reasons[4] = {0};
    for (int it = 0; it < 400; it++) {
        struct mg_buf y;
        mg_buf_init(&y, 1 << 16);
        for (uint32_t r = 0, n = 1 + tap_rand(4); r < n; r++) {
            mg_buf_appendf(&y, "- %s:\n    %s:\n", tap_rand(3) ? "allow" : "deny",
                           ops[tap_rand(MG_ARRAY_LEN(ops))]);
            for (uint32_t c = 0, m = 1 + tap_rand(3); c < m; c++) {
                mg_buf_appends(&y, "      - ");
                rk_criterion(&y);
                mg_buf_appends(&y, "\n");
            }
        }
        mg_buf_append(&y, "", 1);
        struct mg_policy *p = compile_ok(y.data);
        if (p == NULL) {
            n_bad_policy++;
            mg_buf_fini(&y);
            continue;
        }
        for (int k = 0; k < 25; k++) {
            struct mg_buf a;
            struct req_args ra;
            mg_buf_init(&a, 1 << 16);
            rk_args(&a);
            mg_buf_append(&a, "", 1);
            req_args_init(&ra, a.data);
            if (ra.flat == NULL) {
                n_not_flat++;
            } else {
                struct mg_policy_input tin = input(id), fin = input(id);
                struct mg_policy_decision dt, df, dt2, df2;
                tin.arguments = ra.tree;
                fin.args_flat = ra.flat;
                mg_policy_eval(g_accept, p, &tin, &dt);
                mg_policy_eval(g_accept, p, &fin, &df);
                /* p as both policies: two evaluations sharing one input */
                mg_policy_eval(p, p, &tin, &dt2);
                mg_policy_eval(p, p, &fin, &df2);
                check_prepared(g_accept, p, &fin, &dt);
                n_decisions++;
                reasons[dt.reason]++;
                if (!same_decision(&dt, &df) || !same_decision(&dt2, &df2)) {
                    if (n_differ++ < 3)
                        printf("# flat and tree differ: %s %s vs %s %s\n#   arguments %s\n"
                               "#   policy:\n%s",
                               mg_policy_reason_name(dt.reason), dt.rule,
                               mg_policy_reason_name(df.reason), df.rule, a.data, y.data);
                }
            }
            req_args_fini(&ra);
            mg_buf_fini(&a);
        }
        mg_policy_free(p);
        mg_buf_fini(&y);
    }
    TAP_IS_INT((int)(n_bad_policy + n_not_flat), 0,
               "every random policy compiles, every "
               "random argument object is read flat");
    TAP_IS_INT((int)n_differ, 0, "%zu random decisions: flat arguments decide as their tree",
               n_decisions);
    TAP_OK(reasons[MG_POLICY_ALLOWED] > n_decisions / 20 &&
               reasons[MG_POLICY_DENIED_BY_RULE] > n_decisions / 20 &&
               reasons[MG_POLICY_NO_RULE_ALLOWED] > n_decisions / 20,
           "of them allowed %zu, denied by a rule %zu, allowed by none %zu",
           reasons[MG_POLICY_ALLOWED], reasons[MG_POLICY_DENIED_BY_RULE],
           reasons[MG_POLICY_NO_RULE_ALLOWED]);
    mg_identity_unref(id);
}

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        MG_ASSERT(inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        MG_ASSERT(inet_pton(AF_INET, ip, &s4->sin_addr) == 1);
    }
    return ss;
}

static void test_source_ip(void)
{
    struct mg_identity *id = ident("s", "e@x.com", NULL, NULL, NULL);
    static const struct {
        const char *ranges;
        const char *ip;
        int want;
    } t[] = {
        {"10.0.0.0/8", "10.255.1.2", 1},
        {"10.0.0.0/8", "11.0.0.1", 0},
        {"10.1.2.3", "10.1.2.3", 1}, /* a bare address is /32 */
        {"10.1.2.3", "10.1.2.4", 0},
        {"10.1.2.3/32", "10.1.2.3", 1},
        {"0.0.0.0/0", "203.0.113.9", 1},
        {"0.0.0.0/0", "2001:db8::1", 0},
        {"192.168.1.77/24", "192.168.1.1", 1}, /* host bits ignored */
        {"192.168.1.0/25", "192.168.1.127", 1},
        {"192.168.1.0/25", "192.168.1.128", 0},
        {"192.168.1.0/31", "192.168.1.1", 1},
        {"[10.0.0.0/8, 2001:db8::/32]", "2001:db8:1::5", 1},
        {"[10.0.0.0/8, 2001:db8::/32]", "2001:db9::5", 0},
        {"2001:db8::1/128", "2001:db8::1", 1},
        {"2001:db8::1", "2001:db8::2", 0},
        {"'::/0'", "2001:db8::2", 1},
        {"'::/0'", "192.0.2.1", 1}, /* IPv4 callers are ::ffff:a.b.c.d to IPv6 ranges */
        {"'::ffff:0:0/96'", "192.0.2.1", 1},
        {"10.0.0.0/8", "::ffff:10.1.1.1", 1}, /* mapped callers judged as IPv4 */
        {"10.0.0.0/8", "::10.1.1.1", 0},      /* IPv4-compatible is not mapped */
        {"fe80::/10", "fe80::1", 1},
        {"fe80::/10", "fec0::1", 0},
        {"2001:db8::/33", "2001:db8:7fff::1", 1},
        {"2001:db8::/33", "2001:db8:8000::1", 0},
        {"[]", "10.0.0.1", 0},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
        char yaml[256];
        struct sockaddr_storage ss = addr(t[i].ip);
        struct mg_policy *p;
        struct mg_policy_input in = input(id);
        snprintf(yaml, sizeof yaml, "allow: {and: [{source_ip: %s}]}", t[i].ranges);
        p = compile_ok(yaml);
        in.source = (const struct sockaddr *)&ss;
        TAP_IS_INT(allowed(p, &in), t[i].want, "source_ip %s vs %s -> %d", t[i].ranges, t[i].ip,
                   t[i].want);
        in.source = NULL;
        TAP_OK(!allowed(p, &in), "source_ip %s: unknown source -> false", t[i].ranges);
        mg_policy_free(p);
    }
    {
        struct sockaddr un = {.sa_family = AF_UNIX};
        struct mg_policy *p = compile_ok("allow: {and: [{source_ip: 0.0.0.0/0}]}");
        struct mg_policy_input in = input(id);
        in.source = &un;
        CHECK(p, in, false, "AF_UNIX source: unknown");
        mg_policy_free(p);
    }
    ERR("allow: {and: [{source_ip: 10.0.0.0/33}]}",
        "1:27: policy.allow.and[0]: '10.0.0.0/33': the prefix length is at most 32");
    ERR("allow: {and: [{source_ip: '::/129'}]}",
        "1:27: policy.allow.and[0]: '::/129': the prefix length is at most 128");
    ERR("allow: {and: [{source_ip: 10.0.0.0/08}]}",
        "1:27: policy.allow.and[0]: '10.0.0.0/08' is not an IP address or CIDR range");
    ERR("allow: {and: [{source_ip: 010.0.0.1}]}",
        "1:27: policy.allow.and[0]: '010.0.0.1' is not an IP address or CIDR range");
    ERR("allow: {and: [{source_ip: 'fe80::1%eth0'}]}",
        "1:27: policy.allow.and[0]: 'fe80::1%eth0' is not an IP address or CIDR range");
    ERR("allow: {and: [{source_ip: 10.0.0.0/}]}",
        "1:27: policy.allow.and[0]: '10.0.0.0/' is not an IP address or CIDR range");
    ERR("allow: {and: [{source_ip: [10.0.0.1, nope]}]}",
        "1:38: policy.allow.and[0]: 'nope' is not an IP address or CIDR range");
    mg_identity_unref(id);
}

static void test_time_criteria(void)
{
    struct mg_identity *id = ident("s", "e@x.com", NULL, NULL, NULL);
    const struct {
        const char *crit;
        int64_t now;
        int want;
    } t[] = {
        /* T0 is Wednesday 2026-01-07 12:00 UTC; Berlin is UTC+1 then. */
        {"day_of_week: wed", T0, 1},
        {"day_of_week: Wednesday", T0, 1},
        {"day_of_week: 'mon,wed,fri'", T0, 1},
        {"day_of_week: 'mon, tue'", T0, 0},
        {"day_of_week: '*'", T0, 1},
        {"day_of_week: fri-mon", T0, 0},
        {"day_of_week: fri-mon", T0 + 3 * 86400, 1}, /* Saturday: wraps */
        {"day_of_week: [mon, wed-thu]", T0, 1},
        {"day_of_week: sun", utc(1969, 12, 28, 0, 0, 0), 1}, /* before the epoch */
        {"day_of_week: wed", utc(1969, 12, 31, 23, 59, 59), 1},
        {"day_of_week: {days: wed, timezone: UTC}", utc(2026, 1, 7, 23, 30, 0), 1},
        /* 23:30 UTC Wednesday is Thursday in Berlin and in Tokyo. */
        {"day_of_week: {days: thu, timezone: Europe/Berlin}", utc(2026, 1, 7, 23, 30, 0), 1},
        {"day_of_week: {days: thu, timezone: '+09:00'}", utc(2026, 1, 7, 15, 0, 0), 1},
        {"day_of_week: {days: wed, timezone: America/Los_Angeles}", utc(2026, 1, 8, 7, 59, 59), 1},
        {"day_of_week: {days: wed, timezone: America/Los_Angeles}", utc(2026, 1, 8, 8, 0, 0), 0},
        {"time_of_day: {timezone: UTC, after: '09:00', before: '17:00'}", T0, 1},
        {"time_of_day: {timezone: UTC, after: '09:00', before: '17:00'}", utc(2026, 1, 7, 17, 0, 0),
         0},
        {"time_of_day: {timezone: UTC, after: '09:00', before: '17:00'}",
         utc(2026, 1, 7, 8, 59, 59), 0},
        {"time_of_day: {timezone: UTC, after: '9AM'}", utc(2026, 1, 7, 9, 0, 0), 1},
        {"time_of_day: {timezone: UTC, before: '12 pm'}", utc(2026, 1, 7, 11, 59, 59), 1},
        {"time_of_day: {timezone: UTC, before: '12:00 AM'}", utc(2026, 1, 7, 0, 0, 0), 0},
        {"time_of_day: {timezone: UTC, after: '12:00 AM'}", utc(2026, 1, 7, 0, 0, 0), 1},
        {"time_of_day: {timezone: UTC, after: '22:00', before: '06:00'}", utc(2026, 1, 7, 23, 0, 0),
         1}, /* across midnight */
        {"time_of_day: {timezone: UTC, after: '22:00', before: '06:00'}",
         utc(2026, 1, 7, 5, 59, 59), 1},
        {"time_of_day: {timezone: UTC, after: '22:00', before: '06:00'}", T0, 0},
        {"time_of_day: {timezone: UTC, after: '15:04:05.999'}", utc(2026, 1, 7, 15, 4, 5), 1},
        {"time_of_day: {timezone: Europe/Berlin, after: '09:00', before: '17:00'}",
         utc(2026, 1, 7, 8, 0, 0), 1},
        {"time_of_day: {timezone: Europe/Berlin, after: '09:00', before: '17:00'}",
         utc(2026, 1, 7, 16, 0, 0), 0},
        /* Summer: Berlin is UTC+2. */
        {"time_of_day: {timezone: Europe/Berlin, after: '09:00', before: '17:00'}",
         utc(2026, 7, 7, 7, 0, 0), 1},
        {"time_of_day: {timezone: Europe/Berlin, after: '09:00', before: '17:00'}",
         utc(2026, 7, 7, 6, 59, 59), 0},
        {"time_of_day: {timezone: '-05:30', after: '06:30'}", utc(2026, 1, 7, 12, 0, 0), 1},
        {"time_of_day: {timezone: '-05:30', after: '06:31'}", utc(2026, 1, 7, 12, 0, 0), 0},
        {"date: {after: 2026-01-07}", T0, 1},
        {"date: {before: 2026-01-07}", T0, 0},
        {"date: {before: '2026-01-07T13:00:00+01:00'}", T0, 0}, /* = 12:00Z, exclusive */
        {"date: {before: '2026-01-07T13:00:01+01:00'}", T0, 1},
        {"date: {after: '2026-01-07T07:00:00-05:00'}", T0, 1},
        {"date: {after: '2026-01-07T07:00:01-0500'}", T0, 0},
        {"date: {after: '2026-01-07 12:00Z'}", T0, 1},
        {"date: {after: '2026-01-07t12:00:00.999z'}", T0, 1},
        {"date: {after: 2020-02-29, before: 2020-03-01}", utc(2020, 2, 29, 23, 59, 59), 1},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(t); i++) {
        char yaml[256];
        struct mg_policy *p;
        struct mg_policy_input in = input(id);
        snprintf(yaml, sizeof yaml, "allow: {and: [{%s}]}", t[i].crit);
        p = compile_ok(yaml);
        in.now = t[i].now;
        TAP_IS_INT(allowed(p, &in), t[i].want, "%s at %lld -> %d", t[i].crit, (long long)t[i].now,
                   t[i].want);
        mg_policy_free(p);
    }
    /* DST edges in New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z),
     * 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z). */
    {
        struct mg_policy *p =
            compile_ok("allow: {and: [{time_of_day: {timezone: America/New_York, after: '03:00', "
                       "before: '03:30'}}]}");
        struct mg_policy_input in = input(id);
        in.now = utc(2026, 3, 8, 6, 59, 59); /* 01:59:59 EST */
        CHECK(p, in, false, "NY spring forward: 01:59:59 EST");
        in.now = utc(2026, 3, 8, 7, 0, 0); /* 03:00:00 EDT */
        CHECK(p, in, true, "NY spring forward: 03:00:00 EDT");
        mg_policy_free(p);
        p = compile_ok("allow: {and: [{time_of_day: {timezone: America/New_York, after: "
                       "'01:00', before: '02:00'}}]}");
        in.now = utc(2026, 11, 1, 5, 30, 0); /* 01:30 EDT */
        CHECK(p, in, true, "NY fall back: first 01:30");
        in.now = utc(2026, 11, 1, 6, 30, 0); /* 01:30 EST again */
        CHECK(p, in, true, "NY fall back: second 01:30");
        in.now = utc(2026, 11, 1, 7, 0, 0); /* 02:00 EST */
        CHECK(p, in, false, "NY fall back: 02:00 EST");
        /* Past the last transition of the file: the footer rule. */
        in.now = utc(2040, 7, 1, 5, 30, 0); /* 01:30 EDT */
        CHECK(p, in, true, "NY 2040 summer: from the TZ rule");
        in.now = utc(2040, 12, 1, 6, 30, 0); /* 01:30 EST */
        CHECK(p, in, true, "NY 2040 winter: from the TZ rule");
        mg_policy_free(p);
    }
    /* Lord Howe: half-hour DST; southern hemisphere. */
    {
        struct mg_policy *p =
            compile_ok("allow: {and: [{time_of_day: {timezone: "
                       "Australia/Lord_Howe, after: '12:00', before: '12:01'}}]}");
        struct mg_policy_input in = input(id);
        in.now = utc(2026, 1, 7, 1, 0, 0); /* UTC+11 in January */
        CHECK(p, in, true, "Lord Howe summer +11");
        in.now = utc(2026, 7, 7, 1, 30, 0); /* UTC+10:30 in July */
        CHECK(p, in, true, "Lord Howe winter +10:30");
        mg_policy_free(p);
    }
    mg_identity_unref(id);
}

/* ---------------------------------------------------------------------------
 * The evaluator's fast paths: and-rules skipped by the caller's bloom, and
 * values cached per decision, must decide exactly like the plain rules.
 */

static void test_fast_paths(void)
{
    struct mg_buf b;
    struct mg_policy *p;
    int wrong = 0;
    mg_buf_init(&b, 1 << 20);
    /* 40 rules: group gI may call tool tI (a bloom bit each); one rule by
     * email in a one-value list; one by domain (case-folded: no bloom). */
    for (int i = 0; i < 40; i++)
        mg_buf_appendf(&b, "- allow: {and: [{groups: {has: g%d}}, {mcp_tool: t%d}]}\n", i, i);
    mg_buf_appends(&b, "- allow: {and: [{email: {in: [boss@x.com]}}, {mcp_tool: {is: any}}]}\n"
                       "- allow: {and: [{domain: EXAMPLE.ORG}, {mcp_method: ping}]}\n"
                       "- allow: {and: [{user: 'user:ops'}, {mcp_tool_class: read_only}]}\n");
    mg_buf_append(&b, "", 1);
    p = compile_ok(b.data);
    for (int g = 0; g < 40; g++) {
        char grp[40], tool[16];
        struct mg_identity *id;
        snprintf(grp, sizeof grp, "[\"other\",\"g%d\"]", g);
        id = ident("user:u", "u@x.com", grp, NULL, NULL);
        for (int t = 0; t < 40; t++) {
            struct mg_policy_input in = input(id);
            struct mg_policy_decision d;
            snprintf(tool, sizeof tool, "t%d", t);
            in.mcp_name = tool;
            d = decide(p, &in);
            if (d.allow != (g == t))
                wrong++;
        }
        mg_identity_unref(id);
    }
    TAP_IS_INT(wrong, 0, "1600 group x tool pairs: only the matching pair is allowed");
    {
        struct mg_identity *boss = ident("user:b", "boss@x.com", NULL, NULL, NULL);
        struct mg_identity *org = ident("user:o", "Ann@Example.Org", NULL, NULL, NULL);
        struct mg_identity *ops = ident("user:ops", "", NULL, NULL, NULL);
        struct mg_policy_input in = input(boss);
        in.mcp_name = "any";
        CHECK(p, in, true, "email in a one-value list");
        in.identity = org;
        CHECK(p, in, false, "domain rule needs ping");
        in.mcp_method = "ping";
        in.mcp_name = NULL;
        CHECK(p, in, true, "domain is case-insensitive, not skipped by the bloom");
        in = input(ops);
        CHECK(p, in, true, "user and class");
        in.tool_class = MG_TOOL_WRITE;
        CHECK(p, in, false, "user, wrong class");
        in = input(NULL);
        in.mcp_name = "t3";
        CHECK(p, in, false, "anonymous: group rules skipped");
        mg_identity_unref(boss);
        mg_identity_unref(org);
        mg_identity_unref(ops);
    }
    mg_policy_free(p);

    /* More distinct argument pointers and claim paths than cache slots. */
    mg_buf_reset(&b);
    mg_buf_appends(&b, "- allow:\n    and:\n");
    for (int i = 0; i < 40; i++)
        mg_buf_appendf(&b, "      - mcp_argument/a%d: %d\n      - claim/c%d: v%d\n", i, i, i, i);
    mg_buf_appends(&b, "      - mcp_argument/a39: {ge: 39}\n      - claim/c39: {has: v39}\n");
    mg_buf_append(&b, "", 1);
    p = compile_ok(b.data);
    {
        json_t *args = json_object(), *claims = json_object();
        struct mg_identity *id = ident("user:c", "c@x.com", NULL, NULL, NULL);
        struct mg_policy_input in;
        char k[16], v[16];
        for (int i = 0; i < 40; i++) {
            snprintf(k, sizeof k, "a%d", i);
            json_object_set_new(args, k, json_integer(i));
            snprintf(k, sizeof k, "c%d", i);
            snprintf(v, sizeof v, "v%d", i);
            json_object_set_new(claims, k, json_string(v));
        }
        json_decref(id->claims);
        id->claims = claims;
        in = input(id);
        in.arguments = args;
        CHECK(p, in, true, "40 pointers and 40 claims (past the cache slots) all hold");
        json_object_set_new(args, "a39", json_integer(38));
        CHECK(p, in, false, "the 40th pointer is still judged");
        json_object_set_new(args, "a39", json_integer(39));
        json_object_set_new(claims, "c38", json_string("x"));
        CHECK(p, in, false, "the 39th claim is still judged");
        json_decref(args);
        mg_identity_unref(id);
    }
    mg_policy_free(p);
    mg_buf_fini(&b);
}

/* ---------------------------------------------------------------------------
 * Compile errors: exact positions and messages, several at once.
 */

static void test_errors(void)
{
    ERR("allow:\n  and:\n    - emial: a@b.c\n",
        "3:7: policy.allow.and[0]: unknown criterion 'emial' (did you mean 'email'?)");
    ERR("allow:\n  and:\n    - frobnicate: 1\n",
        "3:7: policy.allow.and[0]: unknown criterion 'frobnicate'");
    ERR("allow:\n  and:\n    - device: {type: any}\n",
        "3:7: policy.allow.and[0]: 'device' is a Pomerium criterion that mcpgate does not "
        "support");
    ERR("allow:\n  or:\n    - and:\n        - accept: 1\n",
        "3:7: policy.allow.or[0]: operators do not nest in Pomerium Policy Language: write "
        "several rules instead (allow rules are OR'ed with each other)");
    ERR("allow:\n  xor: []\n", "2:3: policy.allow: unknown operator 'xor': expected and, or, "
                               "not or nor");
    ERR("permit:\n  and: []\n",
        "1:1: policy: unknown key 'permit' in a rule: expected allow or deny");
    ERR("allow: yes\n", "1:8: policy.allow: 'allow' takes a mapping of operators (and, or, "
                        "not, nor), not a string");
    ERR("allow:\n", "1:7: policy.allow: 'allow' takes a mapping of operators (and, or, not, "
                    "nor), not empty");
    ERR("allow:\n  and: {accept: 1}\n",
        "2:8: policy.allow.and: 'and' takes a list of criteria, not a mapping");
    ERR("allow:\n  and:\n    - accept: 1\n      reject: 1\n",
        "3:7: policy.allow.and[0]: a criterion is a mapping with exactly one key, such as '- "
        "email: {is: ann@example.com}', not several keys");
    ERR("allow:\n  and:\n    - accept\n",
        "3:7: policy.allow.and[0]: a criterion is a mapping with exactly one key, such as '- "
        "email: {is: ann@example.com}', not a string");
    ERR("just a string\n", "1:1: policy: a policy is a rule (a mapping with 'allow' and/or "
                           "'deny') or a list of rules, not a string");
    ERR("- allow: {and: [{accept: 1}]}\n- 7\n",
        "2:3: policy[1]: a rule is a mapping with 'allow' and/or 'deny', not a string");
    ERR("allow:\n  and:\n    - email:\n        equals: a\n",
        "4:9: policy.allow.and[0]: unknown matcher 'equals': 'email' takes is, not, in, not_in, "
        "starts_with, ends_with or contains");
    ERR("allow:\n  and:\n    - groups:\n        in: [a]\n",
        "4:9: policy.allow.and[0]: unknown matcher 'in': 'groups' takes has, is or exclude");
    ERR("allow:\n  and:\n    - groups: [a, b]\n",
        "3:15: policy.allow.and[0]: a list never matches here; to match any of several values, "
        "list several criteria under 'or'");
    ERR("allow:\n  and:\n    - groups: {has: [a, b]}\n",
        "3:21: policy.allow.and[0]: 'has' takes one value; to match any of several, list "
        "several criteria under 'or'");
    ERR("allow:\n  and:\n    - email: [a, b]\n",
        "3:14: policy.allow.and[0]: a list of values needs an operator: 'in: [...]' or "
        "'not_in: [...]'");
    ERR("allow:\n  and:\n    - email: {in: a}\n",
        "3:19: policy.allow.and[0]: 'in' takes a list, not a string");
    ERR("allow:\n  and:\n    - email: {in: [a, [b]]}\n",
        "3:23: policy.allow.and[0]: each value must be a single value, not a list");
    ERR("allow:\n  and:\n    - email:\n", "3:13: policy.allow.and[0]: the value must be a single "
                                          "value, not empty");
    ERR("allow:\n  and:\n    - email: {}\n",
        "3:14: policy.allow.and[0]: 'email' needs a matcher (is, not, in, not_in, starts_with, "
        "ends_with or contains)");
    ERR("allow:\n  and:\n    - email/x: a\n",
        "3:7: policy.allow.and[0]: 'email' takes no sub-path ('/...')");
    ERR("allow:\n  and:\n    - claim: a\n",
        "3:7: policy.allow.and[0]: 'claim' needs a name: 'claim/NAME'");
    ERR("allow:\n  and:\n    - claim/: a\n",
        "3:7: policy.allow.and[0]: 'claim' needs a name: 'claim/NAME'");
    ERR("allow:\n  and:\n    - mcp_tool_class: harmless\n",
        "3:23: policy.allow.and[0]: 'harmless' is not a tool class: expected read_only, write "
        "or destructive");
    ERR("allow:\n  and:\n    - mcp_tool_class: {in: [write, nope]}\n",
        "3:36: policy.allow.and[0]: 'nope' is not a tool class: expected read_only, write or "
        "destructive");
    ERR("allow:\n  and:\n    - mcp_argument: {is: 1}\n",
        "3:7: policy.allow.and[0]: 'mcp_argument' needs a JSON Pointer: 'mcp_argument/NAME: "
        "MATCHER' or a mapping with 'pointer: /NAME'");
    ERR("allow:\n  and:\n    - mcp_argument: {pointer: sql, is: 1}\n",
        "3:31: policy.allow.and[0]: 'sql' is not a JSON Pointer: it must be empty or start "
        "with '/' (RFC 6901)");
    ERR("allow:\n  and:\n    - mcp_argument/a~2: 1\n",
        "3:7: policy.allow.and[0]: bad escape in JSON Pointer: '~' must be followed by 0 or 1 "
        "(RFC 6901 §3)");
    ERR("allow:\n  and:\n    - mcp_argument/a: {pointer: /b, is: 1}\n",
        "3:33: policy.allow.and[0]: give the JSON Pointer once: either 'mcp_argument/NAME' or "
        "'pointer'");
    ERR("allow:\n  and:\n    - mcp_argument/a: {gt: ten}\n",
        "3:28: policy.allow.and[0]: 'gt' takes a number, not 'ten'");
    ERR("allow:\n  and:\n    - mcp_argument/a: {gt: '10'}\n",
        "3:28: policy.allow.and[0]: 'gt' takes a number, not '10'");
    ERR("allow:\n  and:\n    - mcp_argument/a: {exists: maybe}\n",
        "3:32: policy.allow.and[0]: 'exists' takes true or false");
    ERR("allow:\n  and:\n    - mcp_argument/a: {pointer_x: 1}\n",
        "3:24: policy.allow.and[0]: unknown matcher 'pointer_x': 'mcp_argument' takes is, not, "
        "in, not_in, starts_with, ends_with, contains, lt, le, gt, ge, exists, has or exclude");
    ERR("allow:\n  and:\n    - date: {after: 2026-02-30}\n",
        "3:21: policy.allow.and[0]: '2026-02-30' is not an ISO 8601 date (2026-01-31, "
        "2026-01-31T16:20:00, 2026-01-31T16:20:00+01:00)");
    ERR("allow:\n  and:\n    - date: {after: '2026-01-01T24:00'}\n",
        "3:21: policy.allow.and[0]: '2026-01-01T24:00' is not an ISO 8601 date (2026-01-31, "
        "2026-01-31T16:20:00, 2026-01-31T16:20:00+01:00)");
    ERR("allow:\n  and:\n    - date: {until: 2026-01-01}\n",
        "3:14: policy.allow.and[0]: unknown key 'until' in 'date': expected after or before");
    ERR("allow:\n  and:\n    - date: {}\n",
        "3:13: policy.allow.and[0]: 'date' needs 'after' and/or 'before'");
    ERR("allow:\n  and:\n    - date: 2026-01-01\n",
        "3:13: policy.allow.and[0]: 'date' takes a mapping with 'after' and/or 'before'");
    ERR("allow:\n  and:\n    - day_of_week: mon-fry\n",
        "3:20: policy.allow.and[0]: 'mon-fry' is not a day or a range of days (\"*\", "
        "\"mon,wed\", \"mon-fri\"; English names or three-letter abbreviations)");
    ERR("allow:\n  and:\n    - day_of_week: {timezone: UTC}\n",
        "3:20: policy.allow.and[0]: 'day_of_week' needs 'days'");
    ERR("allow:\n  and:\n    - time_of_day: {after: '9:00'}\n",
        "3:20: policy.allow.and[0]: 'time_of_day' needs a timezone (UTC, +HH:MM or an IANA "
        "name such as America/New_York)");
    ERR("allow:\n  and:\n    - time_of_day: {timezone: UTC}\n",
        "3:20: policy.allow.and[0]: 'time_of_day' needs 'after' and/or 'before'");
    ERR("allow:\n  and:\n    - time_of_day: {timezone: UTC, after: '25:00'}\n",
        "3:43: policy.allow.and[0]: '25:00' is not a time of day (15:04, 15:04:05, 3:04PM, "
        "3:04 PM, 3PM)");
    ERR("allow:\n  and:\n    - time_of_day: {timezone: UTC, after: '13PM'}\n",
        "3:43: policy.allow.and[0]: '13PM' is not a time of day (15:04, 15:04:05, 3:04PM, 3:04 "
        "PM, 3PM)");
    ERR("allow:\n  and:\n    - time_of_day: {timezone: UTC, after: '15'}\n",
        "3:43: policy.allow.and[0]: '15' is not a time of day (15:04, 15:04:05, 3:04PM, 3:04 "
        "PM, 3PM)");
    ERR("allow:\n  and:\n    - time_of_day: {timezone: Mars/Olympus, after: '9AM'}\n",
        "3:31: policy.allow.and[0]: time zone 'Mars/Olympus': unknown time zone (use UTC, "
        "+HH:MM or an IANA name such as Europe/Berlin)");
    ERR("allow:\n  and:\n    - time_of_day: {timezone: ../../etc/passwd, after: '9AM'}\n",
        "3:31: policy.allow.and[0]: time zone '../../etc/passwd': not a time zone name (use "
        "UTC, +HH:MM or an IANA name such as Europe/Berlin)");
    ERR("allow:\n  and:\n    - time_of_day: {timezone: zone.tab, after: '9AM'}\n",
        "3:31: policy.allow.and[0]: time zone 'zone.tab': not a TZif file (use UTC, +HH:MM or "
        "an IANA name such as Europe/Berlin)");
    ERR("allow:\n  and:\n    - time_of_day: {timezone: Europe, after: '9AM'}\n",
        "3:31: policy.allow.and[0]: time zone 'Europe': time zone file is not a regular file of "
        "at most 256 KiB (use UTC, +HH:MM or an IANA name such as Europe/Berlin)");
    /* Several errors at once, each at its own node. */
    ERR("- allow:\n"
        "    and:\n"
        "      - emial: a\n"
        "      - groups: {has: [x]}\n"
        "  deny:\n"
        "    or:\n"
        "      - source_ip: 300.1.1.1\n"
        "- bogus: 1\n",
        "3:9: policy[0].allow.and[0]: unknown criterion 'emial' (did you mean 'email'?)\n"
        "4:23: policy[0].allow.and[1]: 'has' takes one value; to match any of several, list "
        "several criteria under 'or'\n"
        "7:20: policy[0].deny.or[0]: '300.1.1.1' is not an IP address or CIDR range\n"
        "8:3: policy[1]: unknown key 'bogus' in a rule: expected allow or deny");
}

/* The bounds: each is a clear error, never a crash or a silent cut. */
static void test_limits(void)
{
    struct mg_buf b;
    char *e;
    mg_buf_init(&b, 1 << 24);

    for (int i = 0; i <= MG_POLICY_MAX_RULES; i++)
        mg_buf_appends(&b, "- allow: {or: [{accept: 1}]}\n");
    mg_buf_append(&b, "", 1);
    e = err_of(b.data);
    TAP_IS_STR(e, "1:1: policy: 1001 rules; the limit is 1000", "max rules");
    free(e);

    mg_buf_reset(&b);
    mg_buf_appends(&b, "allow:\n  or:\n");
    for (int i = 0; i <= MG_POLICY_MAX_CRITERIA; i++)
        mg_buf_appends(&b, "    - accept: 1\n");
    mg_buf_append(&b, "", 1);
    e = err_of(b.data);
    TAP_IS_STR(e, "3:5: policy.allow.or: 257 criteria; the limit is 256", "max criteria");
    free(e);

    mg_buf_reset(&b);
    for (int i = 0; i < 80; i++) {
        mg_buf_appends(&b, "- allow:\n    or:\n");
        for (int j = 0; j < 255; j++)
            mg_buf_appends(&b, "      - accept: 1\n");
    }
    mg_buf_append(&b, "", 1);
    e = err_of(b.data);
    TAP_OK(e && strstr(e, "more than 20000 criteria in one policy") != NULL &&
               strchr(e, '\n') == NULL,
           "max total criteria, reported once");
    free(e);

    mg_buf_reset(&b);
    mg_buf_appends(&b, "allow: {and: [{email: {in: [");
    for (int i = 0; i <= MG_POLICY_MAX_LIST; i++)
        mg_buf_appendf(&b, "%sa%d", i ? "," : "", i);
    mg_buf_appends(&b, "]}}]}");
    mg_buf_append(&b, "", 1);
    e = err_of(b.data);
    TAP_IS_STR(e, "1:28: policy.allow.and[0]: 'in' has 1001 values; the limit is 1000", "max list");
    free(e);

    mg_buf_reset(&b);
    mg_buf_appends(&b, "allow: {and: [{email: '");
    for (int i = 0; i <= MG_POLICY_MAX_STRING; i++)
        mg_buf_append(&b, "x", 1);
    mg_buf_appends(&b, "'}]}");
    mg_buf_append(&b, "", 1);
    e = err_of(b.data);
    TAP_IS_STR(e, "1:23: policy.allow.and[0]: the value is 4097 bytes; the limit is 4096",
               "max string");
    free(e);

    mg_buf_reset(&b);
    mg_buf_appends(&b, "allow: {and: [{mcp_argument/a");
    for (int i = 0; i < MG_POLICY_MAX_POINTER; i++)
        mg_buf_appends(&b, "/a");
    mg_buf_appends(&b, ": 1}]}");
    mg_buf_append(&b, "", 1);
    e = err_of(b.data);
    TAP_IS_STR(e, "1:16: policy.allow.and[0]: the JSON Pointer has more than 32 segments",
               "max pointer segments");
    free(e);

    mg_buf_reset(&b);
    mg_buf_appends(&b, "allow:\n  or:\n");
    for (int i = 0; i <= MG_POLICY_MAX_ZONES; i++)
        mg_buf_appendf(&b, "    - time_of_day: {timezone: '+%02d:00', after: '1:00'}\n", i);
    mg_buf_append(&b, "", 1);
    e = err_of(b.data);
    TAP_IS_STR(e, "19:31: policy.allow.or[16]: more than 16 time zones in one policy", "max zones");
    free(e);

    mg_buf_reset(&b);
    for (int i = 0; i < 60; i++)
        mg_buf_appendf(&b, "- nope%d: 1\n", i);
    mg_buf_append(&b, "", 1);
    e = err_of(b.data);
    {
        int lines = 1;
        for (const char *s = e; *s; s++)
            lines += *s == '\n';
        TAP_IS_INT(lines, MG_POLICY_MAX_ERRORS + 1, "errors capped, plus one 'too many'");
        TAP_OK(strstr(e, "51:3: policy[50]: too many errors; stopping here") != NULL,
               "the last line says so");
    }
    free(e);

    {
        struct errs er;
        char prefix[300];
        memset(prefix, 'p', sizeof prefix - 1);
        prefix[sizeof prefix - 1] = '\0';
        TAP_OK(compile_p("allow: {or: [{accept: 1}]}", prefix, &er) == NULL &&
                   strstr(er.buf, "longer than 256 bytes") != NULL,
               "prefix bound");
    }
    mg_buf_fini(&b);
}

/* ---------------------------------------------------------------------------
 * Lint.
 */

struct lint_out {
    char buf[8192];
    size_t len;
};

static void on_warn(void *ctx, const char *path, int line, int col, const char *msg)
{
    struct lint_out *o = ctx;
    int w = snprintf(o->buf + o->len, sizeof o->buf - o->len, "%s%d:%d: %s: %s", o->len ? "\n" : "",
                     line, col, path, msg);
    if (w > 0)
        o->len = MG_MIN(o->len + (size_t)w, sizeof o->buf - 1);
}

static void lint_is(const char *yaml, const char *want)
{
    struct lint_out o = {{0}, 0};
    struct mg_policy *p = compile_ok(yaml);
    if (p)
        mg_policy_lint(p, on_warn, &o);
    TAP_IS_STR(o.buf, want, "lint: %s", yaml);
    mg_policy_free(p);
}

static void test_lint(void)
{
    lint_is("allow: {and: [{domain: x.com}]}\ndeny: {or: [{mcp_tool: drop}]}", "");
    lint_is("allow: {or: [{accept: true}]}",
            "1:9: policy.allow.or: this rule admits everyone, anonymous callers included");
    lint_is("allow: {or: [{email: a@b.c}, {accept: true}]}",
            "1:9: policy.allow.or: this rule admits everyone, anonymous callers included");
    lint_is("allow: {and: [{accept: true}, {day_of_week: '*'}]}",
            "1:9: policy.allow.and: this rule admits everyone, anonymous callers included");
    lint_is("allow: {not: [{reject: true}]}",
            "1:9: policy.allow.not: this rule admits everyone, anonymous callers included");
    lint_is("allow: {nor: [{reject: true}, {email: a@b}]}",
            "1:9: policy.allow.nor: this rule admits everyone, anonymous callers included");
    lint_is("allow: {and: [{accept: true}, {reject: true}]}",
            "1:9: policy.allow.and: this rule can never match\n"
            "1:1: policy: no allow rule can match: this policy denies every request");
    lint_is("- allow: {and: [{email: a@b}]}\n- allow: {and: [{day_of_week: ''}]}",
            "2:11: policy[1].allow.and: this rule can never match");
    lint_is("- allow: {and: [{email: a@b}]}\n- allow: {and: [{day_of_week: []}]}",
            "2:11: policy[1].allow.and: this rule can never match");
    lint_is("- allow: {and: [{email: a@b}]}\n- allow: {and: [{email: a@b}, {email: c@d}]}",
            "2:32: policy[1].allow.and: this rule can never match: 'email' cannot be both 'a@b' "
            "and 'c@d'");
    lint_is("allow: {and: [{email: a@b}]}\n"
            "deny: {and: [{mcp_tool: a}, {mcp_tool: b}]}",
            "2:30: policy.deny.and: this rule can never match: 'mcp_tool' cannot be both 'a' "
            "and 'b'");
    lint_is("allow: {and: [{email: a@b}, {date: {after: 2026-01-02, before: 2026-01-01}}]}",
            "1:9: policy.allow.and: this rule can never match\n"
            "1:1: policy: no allow rule can match: this policy denies every request");
    lint_is("allow: {and: [{email: a@b}, {time_of_day: {timezone: UTC, after: '9:00', before: "
            "'9:00'}}]}",
            "1:9: policy.allow.and: this rule can never match\n"
            "1:1: policy: no allow rule can match: this policy denies every request");
    lint_is("allow: {or: [{email: a@b}, {source_ip: []}, {http_path: {in: []}}]}",
            "1:29: policy.allow.or[1]: this criterion can never match (an empty list, set or "
            "range, or reject)\n"
            "1:46: policy.allow.or[2]: this criterion can never match (an empty list, set or "
            "range, or reject)");
    lint_is("allow: {or: [{email: a@b}]}\ndeny: {or: [{accept: 1}]}",
            "2:8: policy.deny.or: this rule denies every request");
    lint_is("allow: {or: [{email: a@b}]}\ndeny: {nor: [{reject: 1}]}",
            "2:8: policy.deny.nor: this rule denies every request");
    lint_is("deny: {or: [{email: a@b}]}",
            "1:1: policy: no allow rule can match: this policy denies every request");
    lint_is("[]", "1:1: policy: no allow rule can match: this policy denies every request");
    lint_is("- {}\n- allow: {or: [{email: a@b}]}",
            "1:3: policy[0]: the rule has neither 'allow' nor 'deny': it does nothing");
    lint_is("allow: {or: [{accept: false}]}",
            "1:23: policy.allow.or[0]: the value of 'accept' is ignored: 'accept: false' still "
            "matches every request (use 'reject')\n"
            "1:9: policy.allow.or: this rule admits everyone, anonymous callers included");
    lint_is("allow: {or: [{authenticated_user: false}]}",
            "1:35: policy.allow.or[0]: the value of 'authenticated_user' is ignored: 'false' "
            "still matches every signed-in caller");
    lint_is("allow: {and: [{email: a@b}], or: [{email: c@d}]}",
            "1:1: policy.allow: several operators in one rule are OR'ed with each other (Pomerium "
            "semantics), not AND'ed; one operator per rule is clearer");
    lint_is("allow: {and: [{email: a@b}], or: []}",
            "1:1: policy.allow: several operators in one rule are OR'ed with each other (Pomerium "
            "semantics), not AND'ed; one operator per rule is clearer\n"
            "1:30: policy.allow.or: an empty operator never matches (Pomerium ignores it), "
            "whatever the operator");
    lint_is("allow: {and: [{source_ip: 10.1.2.3/8}]}",
            "1:27: policy.allow.and[0]: the CIDR has host bits set; they are ignored (did you "
            "mean the network address?)");
    lint_is("allow: {and: [{http_method: get}]}",
            "1:29: policy.allow.and[0]: HTTP methods are case-sensitive: a lower-case method "
            "never matches (use GET, POST, ...)");
}

/* ---------------------------------------------------------------------------
 * Time zones: against glibc's conversion of the same files.
 */

static int32_t libc_offset(const char *zone, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    setenv("TZ", zone, 1);
    tzset();
    localtime_r(&tt, &tm);
    return (int32_t)tm.tm_gmtoff;
}

static void test_tz(void)
{
    static const char *const zones[] = {
        "America/New_York", "Europe/Berlin",
        "Australia/Sydney", "Australia/Lord_Howe",
        "Asia/Kolkata",     "Pacific/Chatham",
        "America/Santiago", "Africa/Casablanca",
        "Europe/Dublin",    "America/Sao_Paulo",
        "Asia/Tehran",      "Pacific/Apia",
        "Europe/London",    "UTC",
        "Etc/GMT+5",
    };
    for (size_t z = 0; z < MG_ARRAY_LEN(zones); z++) {
        struct mg_policy_tz *tz = NULL;
        const char *why = NULL;
        int rc = mg_policy_tz_load(NULL, zones[z], &tz, &why);
        int bad = 0;
        int64_t first_bad = 0;
        if (rc != 0) {
            TAP_OK(0, "load %s: %s", zones[z], why ? why : "?");
            continue;
        }
        /* Every ~3.7 days from 1901 to 2099, plus the hours around each
         * sample: transitions and the footer rule both get exercised. */
        for (int64_t t = -2145916800; t < 4102444800; t += 320000 + 3601) {
            for (int64_t dt = 0; dt < 7200; dt += 1800) {
                if (mg_policy_tz_offset(tz, t + dt) != libc_offset(zones[z], t + dt)) {
                    if (!bad)
                        first_bad = t + dt;
                    bad++;
                }
            }
        }
        TAP_IS_INT(bad, 0, "%s agrees with glibc 1901..2099", zones[z]);
        if (bad)
            printf("#   first difference at %lld: ours %d, glibc %d\n", (long long)first_bad,
                   mg_policy_tz_offset(tz, first_bad), libc_offset(zones[z], first_bad));
        mg_policy_tz_free(tz);
    }
    unsetenv("TZ");
    tzset();

    {
        static const struct {
            const char *name;
            int ok;
            int32_t off;
        } f[] = {
            {"UTC", 1, 0},         {"Z", 1, 0},         {"GMT", 1, 0},       {"+05:30", 1, 19800},
            {"-08:00", 1, -28800}, {"+0545", 1, 20700}, {"-03", 1, -10800},  {"+18:00", 1, 64800},
            {"+18:01", 0, 0},      {"+5:30", 0, 0},     {"05:30", 0, 0},     {"+05:60", 0, 0},
            {"+05:3", 0, 0},       {"utc", 0, 0},       {"+05:30:00", 0, 0},
        };
        for (size_t i = 0; i < MG_ARRAY_LEN(f); i++) {
            int32_t off = 12345;
            bool ok = mg_policy_tz_fixed_parse(f[i].name, &off);
            TAP_OK(ok == (bool)f[i].ok && (!ok || off == f[i].off), "fixed zone %s", f[i].name);
        }
    }
    {
        static const char *const bad[] = {
            "",
            "/etc/localtime",
            "../etc/passwd",
            "Europe/../UTC",
            "Europe//Berlin",
            "Europe/",
            "./UTC",
            "Europe/Ber lin",
            "Europe\\Berlin",
            "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/"
            "u/v/w/x/y/z/a/b/c/d/e/f/g",
        };
        for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
            struct mg_policy_tz *tz = NULL;
            const char *why = NULL;
            TAP_IS_INT(mg_policy_tz_load(NULL, bad[i], &tz, &why), MG_EINVAL, "bad zone name '%s'",
                       bad[i]);
            TAP_OK(tz == NULL && why != NULL, "bad zone name '%s': no zone, a reason", bad[i]);
        }
        {
            struct mg_policy_tz *tz = NULL;
            const char *why = NULL;
            TAP_IS_INT(mg_policy_tz_load(NULL, "Nowhere/City", &tz, &why), MG_ENOTFOUND,
                       "missing zone");
            TAP_IS_INT(mg_policy_tz_load("/nonexistent", "Europe/Berlin", &tz, &why), MG_ENOTFOUND,
                       "tzdir honoured");
            TAP_IS_INT(mg_policy_tz_load(NULL, "right/UTC", &tz, &why), MG_EINVAL,
                       "leap-second zones refused");
        }
    }

    /* Every prefix of a real TZif file: refused or parsed, never a crash;
     * a corrupted footer is refused. */
    {
        FILE *f = fopen("/usr/share/zoneinfo/America/New_York", "rb");
        unsigned char data[8192];
        size_t len = f ? fread(data, 1, sizeof data, f) : 0;
        size_t ok_prefixes = 0;
        if (f)
            fclose(f);
        TAP_OK(len > 1000, "read New_York TZif");
        for (size_t n = 0; n < len; n++) {
            struct mg_policy_tz *tz = NULL;
            const char *why = NULL;
            if (mg_policy_tz_parse(data, n, &tz, &why) == 0)
                ok_prefixes++;
            mg_policy_tz_free(tz);
        }
        TAP_IS_INT(ok_prefixes, 0, "no strict prefix of a TZif file parses");
        if (len > 10) {
            struct mg_policy_tz *tz = NULL;
            const char *why = NULL;
            data[len - 5] = '!';
            TAP_IS_INT(mg_policy_tz_parse(data, len, &tz, &why), MG_EINVAL, "bad footer refused");
        }
    }

    /* Civil dates round trip over five centuries. */
    {
        int bad = 0;
        int64_t prev = mg_policy_days_from_civil(1799, 12, 31);
        for (int64_t y = 1800; y <= 2300 && !bad; y++)
            for (unsigned m = 1; m <= 12; m++)
                for (unsigned d = 1; d <= 31; d++) {
                    int64_t days = mg_policy_days_from_civil(y, m, d), yy;
                    unsigned mm, dd;
                    mg_policy_civil_from_days(days, &yy, &mm, &dd);
                    if (yy != y || mm != m || dd != d)
                        break; /* past the month's end */
                    if (days != prev + 1)
                        bad++;
                    prev = days;
                }
        TAP_IS_INT(bad, 0, "civil dates are consecutive and round-trip");
        TAP_IS_INT(mg_policy_days_from_civil(1970, 1, 1), 0, "epoch");
        TAP_IS_INT(mg_policy_days_from_civil(2000, 3, 1), 11017, "2000-03-01");
        TAP_IS_INT(mg_policy_days_from_civil(1969, 12, 31), -1, "before the epoch");
    }
}

/* ---------------------------------------------------------------------------
 * No allocation on the evaluation path.
 */

static void test_no_alloc(void)
{
#ifdef COUNT_ALLOCS
    struct mg_identity *id =
        ident("user:a@x.com", "a@x.com", "[\"eng\",\"ops\"]",
              "{\"tier\":\"gold\",\"n\":[1.5,2,true],\"o\":{\"p\":\"q\"}}", "cl");
    json_t *args = json_loads("{\"sql\":\"select 1\",\"limit\":5,\"tags\":[\"a\",3]}", 0, NULL);
    struct mg_policy *p = compile_ok(
        "- allow:\n    or:\n      - reject: 1\n      - email: {in: [a,b,c,d,e,f,g,h,i,j,a@x.com]}\n"
        "- deny:\n    or:\n"
        "      - groups: {exclude: eng}\n"
        "      - claim/n: {has: '2.5'}\n"
        "      - claim/o.p: {is: r}\n"
        "      - domain: {ends_with: EVIL.COM}\n"
        "      - source_ip: [10.0.0.0/8, '2001:db8::/32']\n"
        "      - date: {before: 2000-01-01}\n"
        "      - day_of_week: {days: sun, timezone: America/New_York}\n"
        "      - time_of_day: {timezone: Europe/Berlin, after: '23:00', before: '01:00'}\n"
        "      - mcp_argument/sql: {contains: drop}\n"
        "      - mcp_argument/limit: {gt: 1000}\n"
        "      - mcp_argument/tags: {has: 4}\n"
        "      - mcp_tool_class: destructive\n"
        "      - mcp_resource: {starts_with: 'file:'}\n"
        "      - user: {not: 'user:a@x.com'}\n"
        "      - client_id: {not_in: [cl]}\n"
        "      - http_method: {is: DELETE}\n"
        "      - http_path: {contains: admin}\n"
        "      - mcp_method: {is: nope}\n"
        "- deny:\n    nor:\n      - authenticated_user: 1\n      - mcp_tool: {starts_with: q}\n");
    struct sockaddr_storage ss = addr("192.0.2.7");
    struct mg_policy_input in = input(id);
    struct mg_policy_decision d = {0};
    size_t before;
    in.source = (const struct sockaddr *)&ss;
    in.arguments = args;
    mg_policy_eval(g_accept, p, &in, &d); /* warm up lazily initialised libc state */
    before = n_allocs;
    for (int i = 0; i < 1000; i++) {
        in.now = T0 + i * 3607;
        mg_policy_eval(g_accept, p, &in, &d);
    }
    TAP_IS_INT(n_allocs - before, 0, "1000 decisions allocate nothing");
    TAP_OK(d.allow, "and the policy allowed (every criterion was evaluated: %s)", d.rule);
    {
        struct req_args ra;
        req_args_init(&ra, "{\"sql\":\"select 1\",\"limit\":5,\"tags\":true}");
        in.arguments = NULL;
        in.args_flat = ra.flat;
        mg_policy_eval(g_accept, p, &in, &d);
        before = n_allocs;
        for (int i = 0; i < 1000; i++) {
            in.now = T0 + i * 3607;
            mg_policy_eval(g_accept, p, &in, &d);
        }
        TAP_IS_INT(n_allocs - before, 0, "1000 decisions on flat arguments allocate nothing");
        TAP_OK(ra.flat && d.allow, "and the policy allowed (%s)", d.rule);
        req_args_fini(&ra);
    }
    mg_policy_free(p);
    json_decref(args);
    mg_identity_unref(id);
#else
    TAP_SKIP("allocation counting is off under AddressSanitizer");
#endif
}

int main(void)
{
    g_accept = compile_ok("allow: {or: [{accept: true}]}");
    test_truth_tables();
    test_paths_and_reasons();
    test_pomerium_examples();
    test_identity_criteria();
    test_string_matchers();
    test_request_criteria();
    test_mcp_argument();
    test_mcp_argument_flat();
    test_flat_random();
    test_source_ip();
    test_time_criteria();
    test_fast_paths();
    test_errors();
    test_limits();
    test_lint();
    test_tz();
    test_no_alloc();
    TAP_OK(n_prepared > 100 && n_prepared_differ == 0,
           "the prepared path decides as mg_policy_eval (%zu decisions, %zu differ)", n_prepared,
           n_prepared_differ);
    mg_policy_free(g_accept);
    return tap_done();
}
