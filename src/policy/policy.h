/* Pomerium Policy Language (PPL) for mcpgate: a compiler from the YAML node
 * tree the configuration loader builds to an immutable policy, an evaluator
 * that judges one request against a global and a route policy, and lint
 * checks for `mcpgate policy lint`. docs/policy.md is the reference for the
 * language and for every decision below.
 *
 * Evaluation is pure: no I/O, no globals, no clock (the caller passes `now`),
 * and it allocates nothing. A compiled policy is immutable, so any number of
 * threads may evaluate it at once; whoever compiled it frees it. */
#ifndef MG_POLICY_POLICY_H
#define MG_POLICY_POLICY_H

#include "core/common.h"
#include "mcp/args.h"
#include "mcp/listfilter.h"

#include <jansson.h>

struct mg_ynode;
struct mg_identity;
struct sockaddr;
struct mg_policy;

/* Bounds: hitting one is a compile error naming it. */
#define MG_POLICY_MAX_RULES    1000  /* rules in one policy */
#define MG_POLICY_MAX_CRITERIA 256   /* criteria under one operator */
#define MG_POLICY_MAX_TOTAL    20000 /* criteria in one policy */
#define MG_POLICY_MAX_LIST     1000  /* values in one in/not_in/source_ip list */
#define MG_POLICY_MAX_STRING   4096  /* bytes of one value */
#define MG_POLICY_MAX_POINTER  32    /* segments of one JSON Pointer or claim path */
#define MG_POLICY_MAX_ZONES    16    /* distinct time zones in one policy */
#define MG_POLICY_MAX_PREFIX   256   /* bytes of a path prefix */
#define MG_POLICY_MAX_ERRORS   50    /* errors reported for one policy */

enum mg_policy_reason {
    MG_POLICY_ALLOWED = 0,     /* "allowed": an allow rule matched in each policy, no deny rule */
    MG_POLICY_DENIED_BY_RULE,  /* "denied_by_rule": a deny rule matched */
    MG_POLICY_NO_RULE_ALLOWED, /* "no_rule_allowed": no allow rule of one policy matched */
    MG_POLICY_NOT_CONFIGURED,  /* "no_policy": the global or the route policy is NULL */
};

/* Which of the two policies decided. */
enum mg_policy_scope {
    MG_POLICY_SCOPE_GLOBAL = 0,
    MG_POLICY_SCOPE_ROUTE,
};

/* One request as the policy sees it. Everything is borrowed for the call. */
struct mg_policy_input {
    const struct mg_identity *identity; /* NULL or method MG_AUTH_NONE: anonymous */
    const char *http_method;            /* "POST"; NULL: unknown */
    const char *http_path;              /* the path, without the query; NULL: unknown */
    const struct sockaddr *source;      /* AF_INET / AF_INET6; NULL or other: unknown */
    int64_t now;                        /* unix seconds */
    const char *mcp_method;             /* JSON-RPC method; NULL: not an MCP message */
    const char *mcp_name;               /* tools/call and prompts/get: the name;
                                           resources/read, subscribe, unsubscribe: the URI */
    enum mg_tool_class tool_class;      /* of mcp_name, for tools/call: from the tool's
                                           annotations or the route's configuration; the
                                           zero value, MG_TOOL_DESTRUCTIVE, is also what an
                                           unknown tool counts as */
    const json_t *arguments;            /* params.arguments of tools/call or prompts/get;
                                           NULL: none */
    /* The same arguments in their flat form (mcp/args.h), judged exactly as
     * the tree they stand for; read only when arguments is NULL. */
    const struct mg_args_flat *args_flat;
};

struct mg_policy_decision {
    bool allow;
    enum mg_policy_reason reason;
    enum mg_policy_scope scope; /* the policy that decided (for allowed: the route's) */
    /* The path of the deciding rule, e.g. "routes[sql].policy[0].deny.or[1]";
     * for no_rule_allowed the policy's own path; "" for no_policy. Owned by
     * the policy (or static): valid as long as the policy is. */
    const char *rule;
    const char *global_rule; /* allowed: the global policy's matching allow rule */
};

/* Errors go to fail with the node they are about (for FILE:LINE:COL) and a
 * message that starts with the rule path; compilation goes on to report as
 * many as it can (at most MG_POLICY_MAX_ERRORS, then one "too many"). */
typedef void (*mg_policy_fail_fn)(void *ctx, const struct mg_ynode *at, const char *msg);

/* Compile-time environment. NULL fields take their defaults. */
struct mg_policy_env {
    const char *tzdir; /* where IANA zones are read from; default MG_POLICY_TZDIR */
};

/* Compiles the policy at n (one rule, a mapping, or a list of them; never
 * NULL: an empty `policy:` is a null scalar node, an error) into
 * *out. path_prefix names it in rule paths and messages ("policy",
 * "routes[sql].policy"). Reads time zone files named by the policy (through
 * env), nothing else. Returns 0, or MG_EINVAL / MG_ELIMIT (status of the
 * first error) with *out NULL after calling fail at least once. The tree is
 * only borrowed: the policy keeps no pointer into it. */
int mg_policy_compile(const struct mg_ynode *n, const char *path_prefix,
                      const struct mg_policy_env *env, struct mg_policy **out,
                      mg_policy_fail_fn fail, void *ctx);

/* NULL is a no-op. */
void mg_policy_free(struct mg_policy *p);

/* Judges in against both policies: deny rules first (global, then route),
 * then each policy must have a matching allow rule. A NULL policy means "not
 * configured" and denies (reason no_policy); the daemon decides what an
 * unconfigured policy stands for and passes a compiled one. Pure; allocates
 * nothing. */
void mg_policy_eval(const struct mg_policy *global, const struct mg_policy *route,
                    const struct mg_policy_input *in, struct mg_policy_decision *out);

/* Many decisions for one caller: the items of a list answer, each judged
 * as the call it stands for (tools/call of a name with a class, ...). The
 * caller's part of the input (identity, groups, source, time, method,
 * arguments) is derived once by mg_policy_prep_new, which copies *in
 * (the strings it points to stay borrowed) and ignores its mcp_name and
 * tool_class; mg_policy_eval_prep then decides as mg_policy_eval would
 * with that input, name and class, and allocates nothing. A prep is used
 * by one thread at a time and lives no longer than the policies and what
 * in points to. */
struct mg_policy_prep;
struct mg_policy_prep *mg_policy_prep_new(const struct mg_policy *global,
                                          const struct mg_policy *route,
                                          const struct mg_policy_input *in);
void mg_policy_prep_free(struct mg_policy_prep *pp); /* NULL is a no-op */
void mg_policy_eval_prep(struct mg_policy_prep *pp, const char *name, enum mg_tool_class tool_class,
                         struct mg_policy_decision *out);

/* The path prefix the policy was compiled with; its number of rules. */
const char *mg_policy_path(const struct mg_policy *p);
size_t mg_policy_n_rules(const struct mg_policy *p);

const char *mg_policy_reason_name(enum mg_policy_reason r);

/* Lint: calls warn once per finding, in rule order, with the rule path, the
 * position of the YAML node it is about, and a message. Findings: rules that
 * admit everyone (anonymous callers included), rules that deny everything,
 * rules and criteria that can never match (contradictions the compiler can
 * see: reject under and, empty lists and day sets, empty time ranges, two
 * different `is` values for one attribute under and), policies that allow
 * nothing, several operators in one rule (they are OR'ed), criteria values
 * that are ignored (`accept: false` still accepts), CIDRs with host bits
 * set.
 * Returns the number of findings. */
typedef void (*mg_policy_warn_fn)(void *ctx, const char *path, int line, int col, const char *msg);
size_t mg_policy_lint(const struct mg_policy *p, mg_policy_warn_fn warn, void *ctx);

#endif
