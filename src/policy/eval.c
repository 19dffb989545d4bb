/* The policy evaluator: one request against a global and a route policy.
 * Deny rules of both are tried first, then each policy needs a matching
 * allow rule; the first rule that decides names the decision. Pure and
 * allocation-free: what a criterion needs from the input (the source
 * address, local times) is derived at most once per call into a context on
 * the stack. Semantics follow Pomerium's generated Rego (pkg/policy in
 * pomerium/pomerium); docs/policy.md is the reference. */
#include "authn/identity.h"
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* What the evaluation of one policy may derive from the input, once. */
struct ectx {
    const struct mg_policy_input *in;
    const struct mg_policy *p;
    bool anon;
    int8_t ip_state; /* 0 not yet, 1 known, -1 unknown */
    bool have4;
    uint8_t v4[4], v6[16];
    uint32_t zone_done;
    int64_t zone_local[MG_POLICY_MAX_ZONES]; /* now + offset */
};

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* a (input) against b (literal, lower case when fold). */
static bool bytes_eq(const char *a, const char *b, size_t n, bool fold)
{
    if (!fold)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != b[i])
            return false;
    return true;
}

static int bytes_cmp(const char *a, size_t an, const struct lit *l, bool fold)
{
    if (an != l->len)
        return an < l->len ? -1 : 1;
    if (!fold)
        return memcmp(a, l->s, an);
    for (size_t i = 0; i < an; i++) {
        unsigned char x = (unsigned char)lower(a[i]), y = (unsigned char)l->s[i];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

static bool str_contains(const char *s, size_t n, const char *sub, size_t m, bool fold)
{
    if (m > n)
        return false;
    for (size_t i = 0; i + m <= n; i++)
        if (bytes_eq(s + i, sub, m, fold))
            return true;
    return false;
}

static bool in_list(const struct mop *op, const char *s, size_t n, bool fold)
{
    if (op->sorted && op->n > 8) {
        size_t lo = 0, hi = op->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int r = bytes_cmp(s, n, &op->lits[mid], fold);
            if (r == 0)
                return true;
            if (r < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        return false;
    }
    for (uint32_t i = 0; i < op->n; i++)
        if (op->lits[i].len == n && bytes_eq(s, op->lits[i].s, n, fold))
            return true;
    return false;
}

/* A string matcher: every operator must hold. */
static bool str_match(const struct crit *c, const char *s, size_t n)
{
    for (uint8_t i = 0; i < c->n_ops; i++) {
        const struct mop *op = &c->ops[i];
        const struct lit *l = op->lits;
        bool ok;
        switch (op->kind) {
        case M_IS: ok = l->len == n && bytes_eq(s, l->s, n, c->fold); break;
        case M_NOT: ok = !(l->len == n && bytes_eq(s, l->s, n, c->fold)); break;
        case M_IN: ok = in_list(op, s, n, c->fold); break;
        case M_NOT_IN: ok = !in_list(op, s, n, c->fold); break;
        case M_STARTS_WITH: ok = l->len <= n && bytes_eq(s, l->s, l->len, c->fold); break;
        case M_ENDS_WITH:
            ok = l->len <= n && bytes_eq(s + n - l->len, l->s, l->len, c->fold);
            break;
        case M_CONTAINS: ok = str_contains(s, n, l->s, l->len, c->fold); break;
        default: ok = false; break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------
 * List matchers (groups, claims): has, is (exactly one element), exclude.
 */

struct strlist {
    const char *const *v; /* groups */
    size_t n;
    const json_t *json; /* claims: a string, number, boolean, or an array of them */
};

/* The i-th element as text; numbers are formatted into buf. */
static bool list_item(const struct strlist *l, size_t i, char *buf, size_t cap, const char **s,
                      size_t *n)
{
    const json_t *j;
    if (l->json == NULL) {
        *s = l->v[i];
        *n = strlen(*s);
        return true;
    }
    j = json_is_array(l->json) ? json_array_get(l->json, i) : l->json;
    switch (json_typeof(j)) {
    case JSON_STRING:
        *s = json_string_value(j);
        *n = json_string_length(j);
        return true;
    case JSON_INTEGER:
        *n = (size_t)snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        *s = buf;
        return true;
    case JSON_REAL: {
        /* The shortest of %.15g and %.17g that reads back as the same
         * double: 0.1 is "0.1", not "0.10000000000000001". */
        double d = json_real_value(j);
        *n = (size_t)snprintf(buf, cap, "%.15g", d);
        if (strtod(buf, NULL) != d)
            *n = (size_t)snprintf(buf, cap, "%.17g", d);
        *s = buf;
        return *n < cap;
    }
    case JSON_TRUE: *s = "true", *n = 4; return true;
    case JSON_FALSE: *s = "false", *n = 5; return true;
    default: return false;
    }
}

static size_t list_len(const struct strlist *l)
{
    if (l->json == NULL)
        return l->n;
    if (json_is_array(l->json))
        return json_array_size(l->json);
    return json_is_object(l->json) || json_is_null(l->json) ? 0 : 1;
}

static bool list_has(const struct strlist *l, const struct lit *lit, size_t *count)
{
    size_t n = list_len(l), scalars = 0;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        char buf[40];
        const char *s;
        size_t len;
        if (!list_item(l, i, buf, sizeof buf, &s, &len))
            continue;
        scalars++;
        if (len == lit->len && memcmp(s, lit->s, len) == 0)
            found = true;
    }
    *count = scalars;
    return found;
}

static bool list_match(const struct crit *c, const struct strlist *l)
{
    for (uint8_t i = 0; i < c->n_ops; i++) {
        const struct mop *op = &c->ops[i];
        size_t count;
        bool has = list_has(l, op->lits, &count);
        bool ok = op->kind == M_HAS       ? has
                  : op->kind == M_LIST_IS ? has && count == 1
                                          : !has; /* M_EXCLUDE */
        if (!ok)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------
 * mcp_argument: a JSON Pointer into the arguments, typed comparisons.
 */

static const json_t *resolve(const json_t *v, const struct seg *seg, uint32_t n)
{
    for (uint32_t i = 0; i < n && v; i++) {
        if (json_is_object(v))
            v = json_object_get(v, seg[i].s);
        else if (json_is_array(v) && seg[i].idx >= 0 &&
                 (uint64_t)seg[i].idx < (uint64_t)json_array_size(v))
            v = json_array_get(v, (size_t)seg[i].idx);
        else
            v = NULL;
    }
    return v;
}

/* -1, 0, 1; numbers only. */
static int num_cmp(const json_t *v, const struct lit *l)
{
    if (json_is_integer(v) && l->is_int) {
        json_int_t a = json_integer_value(v);
        return a < l->i ? -1 : a > l->i;
    } else {
        /* long double holds every int64 and every double exactly on the
         * platforms we build for (x86-64's 64-bit mantissa). */
        long double a = json_is_integer(v) ? (long double)json_integer_value(v)
                                           : (long double)json_real_value(v);
        long double b = l->is_int ? (long double)l->i : (long double)l->d;
        return a < b ? -1 : a > b;
    }
}

static bool typed_eq(const json_t *v, const struct lit *l)
{
    switch (l->type) {
    case LIT_STR:
        return json_is_string(v) && json_string_length(v) == l->len &&
               memcmp(json_string_value(v), l->s, l->len) == 0;
    case LIT_NUM: return json_is_number(v) && num_cmp(v, l) == 0;
    case LIT_BOOL: return json_is_boolean(v) && json_is_true(v) == l->b;
    case LIT_NULL: return json_is_null(v);
    default: return false;
    }
}

static bool any_eq(const json_t *v, const struct mop *op)
{
    for (uint32_t i = 0; i < op->n; i++)
        if (typed_eq(v, &op->lits[i]))
            return true;
    return false;
}

static bool arg_op(const json_t *v, const struct mop *op)
{
    const struct lit *l = op->lits;
    if (op->kind == M_EXISTS)
        return (v != NULL) == l->b;
    if (v == NULL)
        return false;
    switch (op->kind) {
    case M_IS: return typed_eq(v, l);
    case M_NOT: return !typed_eq(v, l);
    case M_IN: return any_eq(v, op);
    case M_NOT_IN: return !any_eq(v, op);
    case M_STARTS_WITH:
    case M_ENDS_WITH:
    case M_CONTAINS: {
        const char *s;
        size_t n;
        if (!json_is_string(v))
            return false;
        s = json_string_value(v);
        n = json_string_length(v);
        if (op->kind == M_STARTS_WITH)
            return l->len <= n && memcmp(s, l->s, l->len) == 0;
        if (op->kind == M_ENDS_WITH)
            return l->len <= n && memcmp(s + n - l->len, l->s, l->len) == 0;
        return str_contains(s, n, l->s, l->len, false);
    }
    case M_LT: return json_is_number(v) && num_cmp(v, l) < 0;
    case M_LE: return json_is_number(v) && num_cmp(v, l) <= 0;
    case M_GT: return json_is_number(v) && num_cmp(v, l) > 0;
    case M_GE: return json_is_number(v) && num_cmp(v, l) >= 0;
    case M_HAS:
    case M_EXCLUDE: {
        bool found = false;
        if (!json_is_array(v))
            return false;
        for (size_t i = 0; i < json_array_size(v) && !found; i++)
            found = typed_eq(json_array_get(v, i), l);
        return op->kind == M_HAS ? found : !found;
    }
    default: return false;
    }
}

static bool arg_match(const struct crit *c, const json_t *args)
{
    const json_t *v = args ? resolve(args, c->u.ptr.seg, c->u.ptr.n_seg) : NULL;
    for (uint8_t i = 0; i < c->n_ops; i++)
        if (!arg_op(v, &c->ops[i]))
            return false;
    return true;
}

/* ---------------------------------------------------------------------------
 * Source address and time.
 */

static bool source(struct ectx *e)
{
    const struct sockaddr *sa = e->in->source;
    if (e->ip_state)
        return e->ip_state > 0;
    e->ip_state = -1;
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memcpy(e->v4, &s4->sin_addr, 4);
        /* Judged as ::ffff:a.b.c.d against IPv6 ranges. */
        memset(e->v6, 0, 10);
        e->v6[10] = e->v6[11] = 0xff;
        memcpy(e->v6 + 12, e->v4, 4);
        e->have4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(e->v6, &s6->sin6_addr, 16);
        /* A dual-stack socket's IPv4 caller is judged by its IPv4 address. */
        e->have4 = memcmp(e->v6, mapped, 12) == 0;
        if (e->have4)
            memcpy(e->v4, e->v6 + 12, 4);
    } else {
        return false;
    }
    e->ip_state = 1;
    return true;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    return (a[full] & (uint8_t)(0xffu << (8 - rest))) == net[full];
}

static bool ip_match(struct ectx *e, const struct crit *c)
{
    if (!source(e))
        return false;
    for (uint32_t i = 0; i < c->u.ip.n; i++) {
        const struct cidr *r = &c->u.ip.v[i];
        if (r->family == 4 ? e->have4 && prefix_eq(e->v4, r->addr, r->bits)
                           : prefix_eq(e->v6, r->addr, r->bits))
            return true;
    }
    return false;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Local time (seconds since the epoch as if the zone were UTC). */
static int64_t local_time(struct ectx *e, unsigned zone)
{
    if (!(e->zone_done & (1u << zone))) {
        e->zone_local[zone] = e->in->now + mg_policy_tz_offset(e->p->zones[zone], e->in->now);
        e->zone_done |= 1u << zone;
    }
    return e->zone_local[zone];
}

/* ---------------------------------------------------------------------------
 * Criteria.
 */

static bool nonempty(const char *s, const char **out, size_t *n)
{
    if (s == NULL || *s == '\0')
        return false;
    *out = s;
    *n = strlen(s);
    return true;
}

static bool is_method(const struct mg_policy_input *in, const char *m)
{
    return in->mcp_method && strcmp(in->mcp_method, m) == 0;
}

/* The string a string criterion looks at; false when there is none (the
 * criterion is then false, whatever its matcher). */
static bool str_attr(struct ectx *e, const struct crit *c, const char **s, size_t *n)
{
    const struct mg_policy_input *in = e->in;
    const struct mg_identity *id = in->identity;
    switch (c->kind) {
    case CR_USER: return !e->anon && nonempty(id->subject, s, n);
    case CR_EMAIL: return !e->anon && nonempty(id->email, s, n);
    case CR_DOMAIN: {
        const char *at;
        if (e->anon || id->email == NULL || (at = strrchr(id->email, '@')) == NULL)
            return false;
        return nonempty(at + 1, s, n);
    }
    case CR_CLIENT_ID: return !e->anon && nonempty(id->client_id, s, n);
    case CR_HTTP_METHOD: return nonempty(in->http_method, s, n);
    case CR_HTTP_PATH: return nonempty(in->http_path, s, n);
    case CR_MCP_METHOD: return nonempty(in->mcp_method, s, n);
    case CR_MCP_TOOL: return is_method(in, "tools/call") && nonempty(in->mcp_name, s, n);
    case CR_MCP_PROMPT: return is_method(in, "prompts/get") && nonempty(in->mcp_name, s, n);
    case CR_MCP_RESOURCE:
        return (is_method(in, "resources/read") || is_method(in, "resources/subscribe") ||
                is_method(in, "resources/unsubscribe")) &&
               nonempty(in->mcp_name, s, n);
    case CR_MCP_TOOL_CLASS:
        if (!is_method(in, "tools/call"))
            return false;
        /* A tool of unknown class is judged as destructive. */
        *s = mg_policy_tool_class_name(
            in->tool_class == MG_POLICY_TOOL_UNKNOWN ? MG_POLICY_TOOL_DESTRUCTIVE : in->tool_class);
        *n = strlen(*s);
        return true;
    default: return false;
    }
}

static bool claim_match(struct ectx *e, const struct crit *c)
{
    const json_t *claims = e->in->identity->claims, *v;
    struct strlist l = {0};
    if (claims == NULL)
        return false;
    v = json_object_get(claims, c->u.ptr.key);
    if (v == NULL && c->u.ptr.n_seg > 1) {
        v = claims;
        for (uint32_t i = 0; i < c->u.ptr.n_seg && v; i++)
            v = json_is_object(v) ? json_object_get(v, c->u.ptr.seg[i].s) : NULL;
    }
    /* A missing claim is an empty list, as in Pomerium: has and is fail,
     * exclude holds. */
    l.json = v ? v : json_null();
    return list_match(c, &l);
}

static bool crit_eval(struct ectx *e, const struct crit *c)
{
    const char *s;
    size_t n;
    switch (c->kind) {
    case CR_ACCEPT: return true;
    case CR_REJECT: return false;
    case CR_AUTHENTICATED_USER: return !e->anon && e->in->identity->subject[0] != '\0';
    case CR_GROUPS: {
        struct strlist l = {0};
        if (e->anon)
            return false;
        l.v = (const char *const *)e->in->identity->groups;
        l.n = e->in->identity->n_groups;
        return list_match(c, &l);
    }
    case CR_CLAIM: return !e->anon && claim_match(e, c);
    case CR_SOURCE_IP: return ip_match(e, c);
    case CR_DATE:
        return (!c->u.date.has_after || e->in->now >= c->u.date.after) &&
               (!c->u.date.has_before || e->in->now < c->u.date.before);
    case CR_DAY_OF_WEEK: {
        int64_t t = c->u.dow.zone ? local_time(e, c->u.dow.zone - 1u) : e->in->now;
        int64_t wd = (floor_div(t, 86400) % 7 + 7 + 4) % 7; /* 1970-01-01 was a Thursday */
        return (c->u.dow.days >> wd) & 1;
    }
    case CR_TIME_OF_DAY: {
        int64_t t = local_time(e, c->u.tod.zone);
        int32_t sec = (int32_t)(t - floor_div(t, 86400) * 86400);
        bool after = sec >= c->u.tod.after, before = sec < c->u.tod.before;
        if (!c->u.tod.has_after)
            return before;
        if (!c->u.tod.has_before)
            return after;
        /* after > before is a range across midnight (22:00 to 06:00). */
        return c->u.tod.after <= c->u.tod.before ? after && before : after || before;
    }
    case CR_MCP_ARGUMENT:
        return e->in->mcp_method != NULL && e->in->arguments != NULL &&
               arg_match(c, e->in->arguments);
    default:
        if (!str_attr(e, c, &s, &n))
            return false;
        return str_match(c, s, n);
    }
}

/* The path that decided when the term matches, else NULL. */
static const char *term_match(struct ectx *e, const struct term *t)
{
    const struct crit *c = e->p->crits + t->first, *end = c + t->n;
    switch (t->op) {
    case OP_AND: /* all of them */
        for (; c < end; c++)
            if (!crit_eval(e, c))
                return NULL;
        return t->path;
    case OP_OR: /* any of them: the first that holds decides */
        for (; c < end; c++)
            if (crit_eval(e, c))
                return c->path;
        return NULL;
    case OP_NOT: /* none of them (NOR in Boolean algebra) */
        for (; c < end; c++)
            if (crit_eval(e, c))
                return NULL;
        return t->path;
    case OP_NOR: /* not all of them (NAND): the first that fails decides */
    default:
        for (; c < end; c++)
            if (!crit_eval(e, c))
                return c->path;
        return NULL;
    }
}

static const char *first_match(struct ectx *e, const struct term *terms, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const char *path = term_match(e, &terms[i]);
        if (path)
            return path;
    }
    return NULL;
}

static void ectx_init(struct ectx *e, const struct mg_policy *p, const struct mg_policy_input *in)
{
    e->in = in;
    e->p = p;
    e->anon = in->identity == NULL || in->identity->method == MG_AUTH_NONE;
    e->ip_state = 0;
    e->zone_done = 0;
}

void mg_policy_eval(const struct mg_policy *global, const struct mg_policy *route,
                    const struct mg_policy_input *in, struct mg_policy_decision *out)
{
    struct ectx eg, er;
    const char *path, *gpath;

    out->allow = false;
    out->rule = "";
    out->global_rule = "";
    if (global == NULL || route == NULL) {
        out->reason = MG_POLICY_NOT_CONFIGURED;
        out->scope = global == NULL ? MG_POLICY_SCOPE_GLOBAL : MG_POLICY_SCOPE_ROUTE;
        return;
    }
    ectx_init(&eg, global, in);
    ectx_init(&er, route, in);

    /* Deny wins, in either policy. */
    out->reason = MG_POLICY_DENIED_BY_RULE;
    if ((path = first_match(&eg, global->deny, global->n_deny)) != NULL) {
        out->scope = MG_POLICY_SCOPE_GLOBAL;
        out->rule = path;
        return;
    }
    if ((path = first_match(&er, route->deny, route->n_deny)) != NULL) {
        out->scope = MG_POLICY_SCOPE_ROUTE;
        out->rule = path;
        return;
    }
    /* Then each must allow. */
    out->reason = MG_POLICY_NO_RULE_ALLOWED;
    if ((gpath = first_match(&eg, global->allow, global->n_allow)) == NULL) {
        out->scope = MG_POLICY_SCOPE_GLOBAL;
        out->rule = global->prefix;
        return;
    }
    if ((path = first_match(&er, route->allow, route->n_allow)) == NULL) {
        out->scope = MG_POLICY_SCOPE_ROUTE;
        out->rule = route->prefix;
        return;
    }
    out->allow = true;
    out->reason = MG_POLICY_ALLOWED;
    out->scope = MG_POLICY_SCOPE_ROUTE;
    out->rule = path;
    out->global_rule = gpath;
}

const char *mg_policy_reason_name(enum mg_policy_reason r)
{
    switch (r) {
    case MG_POLICY_ALLOWED: return "allowed";
    case MG_POLICY_DENIED_BY_RULE: return "denied_by_rule";
    case MG_POLICY_NO_RULE_ALLOWED: return "no_rule_allowed";
    case MG_POLICY_NOT_CONFIGURED: return "no_policy";
    default: return "unknown";
    }
}
