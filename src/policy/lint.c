/* Lint checks for `mcpgate policy lint`: findings a policy author should
 * see although the policy compiles. They come from two places: notes the
 * compiler recorded while it still had the YAML (ignored values, host bits,
 * several operators in one rule, empty operators), and a cheap constant
 * analysis of the compiled rules (accept, reject, empty sets and ranges,
 * contradicting `is` values under `and`). Nothing here runs on the request
 * path. */
#include "policy/policy_int.h"

/* A criterion whose only matcher is one `is`, on an attribute that has one
 * value per request: two of them with different values under `and`
 * contradict each other. */
static bool single_is(const struct crit *c)
{
    switch (c->kind) {
    case CR_USER:
    case CR_EMAIL:
    case CR_DOMAIN:
    case CR_CLIENT_ID:
    case CR_HTTP_METHOD:
    case CR_HTTP_PATH:
    case CR_MCP_METHOD:
    case CR_MCP_TOOL:
    case CR_MCP_TOOL_CLASS:
    case CR_MCP_RESOURCE:
    case CR_MCP_PROMPT: return c->n_ops == 1 && c->ops[0].kind == M_IS;
    default: return false;
    }
}

/* Two criteria of an `and` that cannot both hold; NULL if none found. */
static const struct crit *contradiction(const struct mg_policy *p, const struct term *t,
                                        const struct crit **first)
{
    const struct crit *c = p->crits + t->first;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!single_is(&c[i]))
            continue;
        for (uint32_t j = i + 1; j < t->n; j++) {
            const struct lit *a, *b;
            if (c[j].kind != c[i].kind || !single_is(&c[j]))
                continue;
            a = c[i].ops[0].lits;
            b = c[j].ops[0].lits;
            if (a->len != b->len || memcmp(a->s, b->s, a->len) != 0) {
                *first = &c[i];
                return &c[j];
            }
        }
    }
    return NULL;
}

/* What the term evaluates to whatever the request, if that is known. */
static enum constness term_const(const struct mg_policy *p, const struct term *t)
{
    const struct crit *c = p->crits + t->first;
    uint32_t n_true = 0, n_false = 0;
    const struct crit *dummy;
    for (uint32_t i = 0; i < t->n; i++) {
        n_true += c[i].constant == CONST_TRUE;
        n_false += c[i].constant == CONST_FALSE;
    }
    switch (t->op) {
    case OP_AND:
        if (n_false || contradiction(p, t, &dummy))
            return CONST_FALSE;
        return n_true == t->n ? CONST_TRUE : CONST_UNKNOWN;
    case OP_OR:
        if (n_true)
            return CONST_TRUE;
        return n_false == t->n ? CONST_FALSE : CONST_UNKNOWN;
    case OP_NOT:
        if (n_true)
            return CONST_FALSE;
        return n_false == t->n ? CONST_TRUE : CONST_UNKNOWN;
    case OP_NOR:
    default:
        if (n_false)
            return CONST_TRUE;
        return n_true == t->n ? CONST_FALSE : CONST_UNKNOWN;
    }
}

static size_t lint_terms(const struct mg_policy *p, const struct term *terms, uint32_t n,
                         bool allow, mg_policy_warn_fn warn, void *ctx, uint32_t *n_live)
{
    size_t found = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct term *t = &terms[i];
        enum constness k = term_const(p, t);
        const struct crit *a, *b;
        char msg[256];
        if (k == CONST_TRUE) {
            warn(ctx, t->path, t->line, t->col,
                 allow ? "this rule admits everyone, anonymous callers included"
                       : "this rule denies every request");
            found++;
        } else if (k == CONST_FALSE) {
            if (t->op == OP_AND && (b = contradiction(p, t, &a)) != NULL) {
                snprintf(msg, sizeof msg,
                         "this rule can never match: '%s' cannot be both '%.60s' and '%.60s'",
                         mg_policy__crit_name((enum crit_kind)a->kind), a->ops[0].lits->s,
                         b->ops[0].lits->s);
                warn(ctx, t->path, b->line, b->col, msg);
            } else {
                warn(ctx, t->path, t->line, t->col, "this rule can never match");
            }
            found++;
        }
        if (k != CONST_FALSE)
            (*n_live)++;
        /* Criteria that never hold, inside a rule that still can. */
        if (k == CONST_UNKNOWN && (t->op == OP_OR || t->op == OP_NOT)) {
            const struct crit *c = p->crits + t->first;
            for (uint32_t j = 0; j < t->n; j++)
                if (c[j].constant == CONST_FALSE) {
                    warn(ctx, c[j].path, c[j].line, c[j].col,
                         "this criterion can never match (an empty list, set or range, or "
                         "reject)");
                    found++;
                }
        }
    }
    return found;
}

size_t mg_policy_lint(const struct mg_policy *p, mg_policy_warn_fn warn, void *ctx)
{
    size_t found = 0;
    uint32_t live_allow = 0, live_deny = 0;
    for (uint32_t i = 0; i < p->n_notes; i++) {
        const struct note *nt = &p->notes[i];
        warn(ctx, nt->path, nt->line, nt->col, nt->msg);
        found++;
    }
    found += lint_terms(p, p->allow, p->n_allow, true, warn, ctx, &live_allow);
    found += lint_terms(p, p->deny, p->n_deny, false, warn, ctx, &live_deny);
    if (live_allow == 0) {
        warn(ctx, p->prefix, p->line, p->col,
             "no allow rule can match: this policy denies every request");
        found++;
    }
    return found;
}
