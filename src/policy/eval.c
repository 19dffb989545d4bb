/* The policy evaluator: one request against a global and a route policy.
 * Deny rules of both are tried first, then each policy needs a matching
 * allow rule; the first rule that decides names the decision. Pure and
 * allocation-free: what criteria need from the input (attribute lengths,
 * group hashes, the source address, local times, values at claim paths and
 * argument pointers) is derived at most once per decision into caches on
 * the stack. Semantics follow Pomerium's generated Rego (pkg/policy in
 * pomerium/pomerium); docs/policy.md is the reference.
 *
 * Hot path: and-terms carry a bloom of values the caller must have (see
 * policy_int.h), so most rules of a large policy are skipped with one AND;
 * the dispatch in crit_eval stays small, and the rarer criteria (claims,
 * addresses, arguments, time) live out of line. */
#include "authn/identity.h"
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define NOINLINE __attribute__((noinline))

#define ITEM_KINDS MG_POLICY__ITEM_KINDS

#define GROUP_SET     (2 * MG_IDENTITY_MAX_GROUPS) /* slots; a power of two */
#define GROUP_SET_MIN 9                            /* groups from which the set is used */

/* What a decision derives from the input, at most once, shared by the
 * evaluation of both policies. */
struct icache {
    const struct mg_policy_input *in;
    bool anon;
    bool groups_done;
    int8_t ip_state; /* 0 not yet, 1 known, -1 unknown */
    bool have4;
    uint32_t attr_done, attr_ok; /* bit per crit_kind */
    uint32_t bloom_done;         /* kinds added to bloom */
    uint64_t bloom;              /* the caller's values, see term.need */
    uint64_t v6hi, v6lo;         /* source address; IPv4 as ::ffff:a.b.c.d */
    uint64_t v4;                 /* IPv4 source in the high 32 bits */
    const char *attr_s[CR_COUNT];
    size_t attr_len[CR_COUNT];
    uint32_t g_len[MG_IDENTITY_MAX_GROUPS], g_hash[MG_IDENTITY_MAX_GROUPS];
    /* A caller in many groups: an open-addressing set of their indexes + 1
     * by hash, so a group test is a probe, not a scan. */
    uint16_t g_set[GROUP_SET];
    bool word_done;      /* name_kinds, name_len, name_word are set */
    uint32_t name_kinds; /* bit kind + 1 for each name attribute present */
    size_t name_len;
    uint64_t name_word; /* its first bytes, zero-padded, as term.pre_word */
};

/* A resolved JSON value, read once into one form whether it comes from a
 * tree (claims, arguments) or from flat arguments (mcp/args.h), so that
 * both are judged by the same code and cannot differ. */
enum jtype { J_NONE, J_OBJECT, J_ARRAY, J_STRING, J_INT, J_REAL, J_TRUE, J_FALSE, J_NULL };

struct jval {
    const json_t *v; /* the tree's value (claims and arrays are read through it); NULL
                        for flat arguments */
    uint8_t t;       /* enum jtype; J_NONE: absent */
    const char *s;   /* J_STRING */
    size_t n;
    union {
        int64_t i; /* J_INT */
        double d;  /* J_REAL */
    };
};

/* What the evaluation of one policy derives: local times of its zones and
 * the values at its claim paths and argument pointers. */
struct ectx {
    struct icache *ic;
    const struct mg_policy_input *in;
    const struct mg_policy *p;
    bool anon;
    uint32_t zone_done;
    uint32_t slot_done;
    int32_t zone_sec[MG_POLICY_MAX_ZONES];  /* local second of the day */
    uint8_t zone_wday[MG_POLICY_MAX_ZONES]; /* local weekday, 0 = Sunday */
    struct jval slot_val[POLICY_PTR_SLOTS];
    /* Prepared (a list's items): per criterion of p that does not look at
     * the item, its result once known (0 not yet, 1 true, 2 false). NULL
     * for a single decision. */
    uint8_t *memo;
    /* Prepared: the indexes of the terms that can still match for this
     * caller, in order (deny, allow); NULL: every term. */
    const uint32_t *live_deny, *live_allow;
    uint32_t n_live_deny, n_live_allow;
};

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* ---------------------------------------------------------------------------
 * Strings.
 */

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
    if (m == 0)
        return true;
    if (!fold) {
        /* memchr for the first byte (vectorised: most haystacks do not
         * have it), then the last byte, then memcmp: for the short
         * needles of policies, cheaper than memmem's two-way setup. */
        const char *p = s, *last = s + (n - m);
        while (p <= last && (p = memchr(p, sub[0], (size_t)(last - p) + 1)) != NULL) {
            if (p[m - 1] == sub[m - 1] && memcmp(p + 1, sub + 1, m - 1) == 0)
                return true;
            p++;
        }
        return false;
    }
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
static bool str_attr_get(const struct icache *e, unsigned kind, const char **s, size_t *n)
{
    const struct mg_policy_input *in = e->in;
    const struct mg_identity *id = in->identity;
    switch (kind) {
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
        /* A tool of unknown class is destructive: the zero value, and
         * what mg_tool_class_name calls any value out of range. */
        *s = mg_tool_class_name(in->tool_class);
        *n = strlen(*s);
        return true;
    default: return false;
    }
}

/* Cached: whether the attribute is present (its text in attr_s/attr_len). */
static bool str_attr(struct icache *e, unsigned kind)
{
    uint32_t bit = 1u << kind;
    if (!(e->attr_done & bit)) {
        if (str_attr_get(e, kind, &e->attr_s[kind], &e->attr_len[kind]))
            e->attr_ok |= bit;
        e->attr_done |= bit;
    }
    return (e->attr_ok & bit) != 0;
}

/* ---------------------------------------------------------------------------
 * Groups and claims (list matchers: has, is, exclude).
 */

static NOINLINE void groups_prepare(struct icache *ic)
{
    const struct mg_identity *id = ic->in->identity;
    size_t n = MG_MIN(id->n_groups, (size_t)MG_IDENTITY_MAX_GROUPS);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(id->groups[i]);
        ic->g_len[i] = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        ic->g_hash[i] = mg_policy__hash(id->groups[i], len);
    }
    if (n >= GROUP_SET_MIN) {
        memset(ic->g_set, 0, sizeof ic->g_set);
        for (size_t i = 0; i < n; i++) {
            size_t k = ic->g_hash[i] & (GROUP_SET - 1);
            while (ic->g_set[k])
                k = (k + 1) & (GROUP_SET - 1);
            ic->g_set[k] = (uint16_t)(i + 1);
        }
    }
    ic->groups_done = true;
}

static bool group_is(const struct icache *ic, size_t i, const struct lit *lit)
{
    return ic->g_hash[i] == lit->hash && ic->g_len[i] == lit->len &&
           memcmp(ic->in->identity->groups[i], lit->s, lit->len) == 0;
}

static bool group_has(const struct icache *ic, const struct lit *lit)
{
    size_t n = MG_MIN(ic->in->identity->n_groups, (size_t)MG_IDENTITY_MAX_GROUPS);
    if (n >= GROUP_SET_MIN) {
        /* at most half full: a probe ends at an empty slot */
        for (size_t k = lit->hash & (GROUP_SET - 1); ic->g_set[k]; k = (k + 1) & (GROUP_SET - 1))
            if (group_is(ic, ic->g_set[k] - 1u, lit))
                return true;
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (group_is(ic, i, lit))
            return true;
    return false;
}

static bool list_op(uint8_t kind, bool has, size_t count)
{
    return kind == M_HAS ? has : kind == M_LIST_IS ? has && count == 1 : !has;
}

static bool groups_match(struct icache *ic, const struct crit *c)
{
    size_t count = ic->in->identity->n_groups;
    if (!ic->groups_done)
        groups_prepare(ic);
    for (uint8_t i = 0; i < c->n_ops; i++)
        if (!list_op(c->ops[i].kind, group_has(ic, c->ops[i].lits), count))
            return false;
    return true;
}

/* The i-th element of a claim as text; numbers are formatted into buf. */
static bool claim_item(const json_t *l, size_t i, char *buf, size_t cap, const char **s, size_t *n)
{
    const json_t *j = json_is_array(l) ? json_array_get(l, i) : l;
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

/* A claim as a list: a scalar is one element, an array its scalars; a
 * missing claim, an object or null is empty (has and is fail, exclude
 * holds, as in Pomerium). */
static bool claim_has(const json_t *v, const struct lit *lit, size_t *count)
{
    size_t n = v == NULL || json_is_object(v) || json_is_null(v) ? 0
               : json_is_array(v)                                ? json_array_size(v)
                                                                 : 1;
    size_t scalars = 0;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        char buf[40];
        const char *s;
        size_t len;
        if (!claim_item(v, i, buf, sizeof buf, &s, &len))
            continue;
        scalars++;
        if (len == lit->len && memcmp(s, lit->s, len) == 0)
            found = true;
    }
    *count = scalars;
    return found;
}

static struct jval jval_of(const json_t *v)
{
    struct jval j = {.v = v, .t = J_NONE};
    if (v == NULL)
        return j;
    switch (json_typeof(v)) {
    case JSON_OBJECT: j.t = J_OBJECT; break;
    case JSON_ARRAY: j.t = J_ARRAY; break;
    case JSON_STRING:
        j.t = J_STRING;
        j.s = json_string_value(v);
        j.n = json_string_length(v);
        break;
    case JSON_INTEGER:
        j.t = J_INT;
        j.i = (int64_t)json_integer_value(v);
        break;
    case JSON_REAL:
        j.t = J_REAL;
        j.d = json_real_value(v);
        break;
    case JSON_TRUE: j.t = J_TRUE; break;
    case JSON_FALSE: j.t = J_FALSE; break;
    default: j.t = J_NULL; break;
    }
    return j;
}

static const json_t *claim_get(const json_t *claims, const struct crit *c);
static const struct jval *slot_value(struct ectx *e, const struct crit *c, bool claim);
static NOINLINE void slot_fill(struct ectx *e, struct jval *out, const struct crit *c, bool claim);

static const json_t *claim_get(const json_t *claims, const struct crit *c)
{
    const json_t *v = json_object_get(claims, c->u.ptr.key);
    if (v == NULL && c->u.ptr.n_seg > 1) {
        v = claims;
        for (uint32_t i = 0; i < c->u.ptr.n_seg && v; i++)
            v = json_is_object(v) ? json_object_get(v, c->u.ptr.seg[i].s) : NULL;
    }
    return v;
}

static NOINLINE bool claim_match(struct ectx *e, const struct crit *c)
{
    const json_t *claims = e->in->identity->claims, *v;
    struct jval tmp;
    if (claims == NULL)
        return false;
    if (c->u.ptr.slot) {
        v = slot_value(e, c, true)->v;
    } else {
        slot_fill(e, &tmp, c, true);
        v = tmp.v;
    }
    for (uint8_t i = 0; i < c->n_ops; i++) {
        size_t count;
        bool has = claim_has(v, c->ops[i].lits, &count);
        if (!list_op(c->ops[i].kind, has, count))
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

/* The member a pointer names in flat arguments, as resolve() finds it in
 * the tree they stand for: no segment is the object itself, one is the
 * member of that key (a key holds no NUL, nor does a segment: the YAML
 * loader refuses it), and past that there is nothing (a scalar has no
 * children). */
static struct jval flat_resolve(const struct mg_args_flat *f, const struct crit *c)
{
    struct jval j = {.v = NULL, .t = J_NONE};
    if (c->u.ptr.n_seg == 0) {
        j.t = J_OBJECT;
        return j;
    }
    if (c->u.ptr.n_seg > 1)
        return j;
    const struct mg_arg *a = mg_args_flat_get(f, c->u.ptr.seg[0].s, c->u.ptr.seg[0].len);
    if (a == NULL)
        return j;
    switch (a->type) {
    case MG_ARG_STRING:
        j.t = J_STRING;
        j.s = a->s;
        j.n = a->s_len;
        break;
    case MG_ARG_INT:
        j.t = J_INT;
        j.i = a->i;
        break;
    case MG_ARG_TRUE: j.t = J_TRUE; break;
    case MG_ARG_FALSE: j.t = J_FALSE; break;
    default: j.t = J_NULL; break;
    }
    return j;
}

static bool is_num(const struct jval *j)
{
    return j->t == J_INT || j->t == J_REAL;
}

/* -1, 0, 1; numbers only. */
static int num_cmp(const struct jval *j, const struct lit *l)
{
    if (j->t == J_INT && l->is_int) {
        return j->i < l->i ? -1 : j->i > l->i;
    } else {
        /* long double holds every int64 and every double exactly on the
         * platforms we build for (x86-64's 64-bit mantissa). */
        long double a = j->t == J_INT ? (long double)j->i : (long double)j->d;
        long double b = l->is_int ? (long double)l->i : (long double)l->d;
        return a < b ? -1 : a > b;
    }
}

static bool typed_eq(const struct jval *j, const struct lit *l)
{
    switch (l->type) {
    case LIT_STR: return j->t == J_STRING && j->n == l->len && memcmp(j->s, l->s, l->len) == 0;
    case LIT_NUM: return is_num(j) && num_cmp(j, l) == 0;
    case LIT_BOOL: return (j->t == J_TRUE || j->t == J_FALSE) && (j->t == J_TRUE) == l->b;
    case LIT_NULL: return j->t == J_NULL;
    default: return false;
    }
}

static bool any_eq(const struct jval *j, const struct mop *op)
{
    for (uint32_t i = 0; i < op->n; i++)
        if (typed_eq(j, &op->lits[i]))
            return true;
    return false;
}

static bool arg_op(const struct jval *j, const struct mop *op)
{
    const struct lit *l = op->lits;
    if (op->kind == M_EXISTS)
        return (j->t != J_NONE) == l->b;
    if (j->t == J_NONE)
        return false;
    switch (op->kind) {
    case M_IS: return typed_eq(j, l);
    case M_NOT: return !typed_eq(j, l);
    case M_IN: return any_eq(j, op);
    case M_NOT_IN: return !any_eq(j, op);
    case M_STARTS_WITH:
    case M_ENDS_WITH:
    case M_CONTAINS: {
        const char *s = j->s;
        size_t n = j->n;
        if (j->t != J_STRING)
            return false;
        if (op->kind == M_STARTS_WITH)
            return l->len <= n && memcmp(s, l->s, l->len) == 0;
        if (op->kind == M_ENDS_WITH)
            return l->len <= n && memcmp(s + n - l->len, l->s, l->len) == 0;
        return str_contains(s, n, l->s, l->len, false);
    }
    case M_LT: return is_num(j) && num_cmp(j, l) < 0;
    case M_LE: return is_num(j) && num_cmp(j, l) <= 0;
    case M_GT: return is_num(j) && num_cmp(j, l) > 0;
    case M_GE: return is_num(j) && num_cmp(j, l) >= 0;
    case M_HAS:
    case M_EXCLUDE: {
        /* Only a tree has arrays. */
        bool found = false;
        if (j->t != J_ARRAY)
            return false;
        for (size_t i = 0; i < json_array_size(j->v) && !found; i++) {
            struct jval x = jval_of(json_array_get(j->v, i));
            found = typed_eq(&x, l);
        }
        return op->kind == M_HAS ? found : !found;
    }
    default: return false;
    }
}

/* The value a claim path or an argument pointer names: arguments from the
 * tree when there is one, else from the flat form. */
static NOINLINE void slot_fill(struct ectx *e, struct jval *out, const struct crit *c, bool claim)
{
    const struct mg_policy_input *in = e->in;
    if (claim)
        *out = jval_of(claim_get(in->identity->claims, c));
    else if (in->arguments)
        *out = jval_of(resolve(in->arguments, c->u.ptr.seg, c->u.ptr.n_seg));
    else
        *out = flat_resolve(in->args_flat, c);
}

/* The cached value of a criterion with a slot (every criterion but those
 * past POLICY_PTR_SLOTS distinct paths). */
static const struct jval *slot_value(struct ectx *e, const struct crit *c, bool claim)
{
    unsigned s = c->u.ptr.slot - 1u;
    if (!(e->slot_done & (1u << s))) {
        slot_fill(e, &e->slot_val[s], c, claim);
        e->slot_done |= 1u << s;
    }
    return &e->slot_val[s];
}

static bool arg_ops(const struct jval *j, const struct crit *c)
{
    for (uint8_t i = 0; i < c->n_ops; i++)
        if (!arg_op(j, &c->ops[i]))
            return false;
    return true;
}

static NOINLINE bool arg_match_uncached(struct ectx *e, const struct crit *c)
{
    struct jval j;
    slot_fill(e, &j, c, false);
    return arg_ops(&j, c);
}

static NOINLINE bool arg_match(struct ectx *e, const struct crit *c)
{
    /* Arguments, as a tree or flat: present. */
    if (e->in->mcp_method == NULL || (e->in->arguments == NULL && e->in->args_flat == NULL))
        return false;
    if (c->u.ptr.slot == 0)
        return arg_match_uncached(e, c);
    return arg_ops(slot_value(e, c, false), c);
}

/* ---------------------------------------------------------------------------
 * Source address and time.
 */

static uint64_t be64_at(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static bool source(struct icache *e)
{
    const struct sockaddr *sa = e->in->source;
    if (e->ip_state)
        return e->ip_state > 0;
    e->ip_state = -1;
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        uint64_t v4 = (uint64_t)a[0] << 24 | (uint64_t)a[1] << 16 | (uint64_t)a[2] << 8 | a[3];
        e->v4 = v4 << 32;
        /* Judged as ::ffff:a.b.c.d against IPv6 ranges. */
        e->v6hi = 0;
        e->v6lo = 0xffff00000000ull | v4;
        e->have4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        e->v6hi = be64_at(a);
        e->v6lo = be64_at(a + 8);
        /* A dual-stack socket's IPv4 caller is judged by its IPv4 address. */
        e->have4 = e->v6hi == 0 && (e->v6lo >> 32) == 0xffff;
        e->v4 = e->v6lo << 32;
    } else {
        return false;
    }
    e->ip_state = 1;
    return true;
}

static NOINLINE bool ip_match(struct icache *e, const struct crit *c)
{
    if (!source(e))
        return false;
    for (uint32_t i = 0; i < c->u.ip.n; i++) {
        const struct cidr *r = &c->u.ip.v[i];
        if (r->family == 4 ? e->have4 && (e->v4 & r->mhi) == r->hi
                           : (e->v6hi & r->mhi) == r->hi && (e->v6lo & r->mlo) == r->lo)
            return true;
    }
    return false;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Local second of the day and weekday in a zone, once per decision. */
static void zone_prepare(struct ectx *e, unsigned zone)
{
    int64_t t, day;
    if (e->zone_done & (1u << zone))
        return;
    t = e->in->now + mg_policy_tz_offset(e->p->zones[zone], e->in->now);
    day = floor_div(t, 86400);
    e->zone_sec[zone] = (int32_t)(t - day * 86400);
    e->zone_wday[zone] = (uint8_t)((day % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    e->zone_done |= 1u << zone;
}

static NOINLINE bool time_match(struct ectx *e, const struct crit *c)
{
    switch (c->kind) {
    case CR_DATE:
        return (!c->u.date.has_after || e->in->now >= c->u.date.after) &&
               (!c->u.date.has_before || e->in->now < c->u.date.before);
    case CR_DAY_OF_WEEK: {
        int64_t wd;
        if (c->u.dow.zone) {
            zone_prepare(e, c->u.dow.zone - 1u);
            wd = e->zone_wday[c->u.dow.zone - 1u];
        } else {
            wd = (floor_div(e->in->now, 86400) % 7 + 7 + 4) % 7;
        }
        return (c->u.dow.days >> wd) & 1;
    }
    case CR_TIME_OF_DAY:
    default: {
        int32_t sec;
        bool after, before;
        zone_prepare(e, c->u.tod.zone);
        sec = e->zone_sec[c->u.tod.zone];
        after = sec >= c->u.tod.after;
        before = sec < c->u.tod.before;
        if (!c->u.tod.has_after)
            return before;
        if (!c->u.tod.has_before)
            return after;
        /* after > before is a range across midnight (22:00 to 06:00). */
        return c->u.tod.after <= c->u.tod.before ? after && before : after || before;
    }
    }
}

/* ---------------------------------------------------------------------------
 * Criteria, terms, decisions.
 */

static inline __attribute__((always_inline)) bool crit_eval_now(struct ectx *e,
                                                                const struct crit *c)
{
    struct icache *ic = e->ic;
    switch (c->kind) {
    case CR_ACCEPT: return true;
    case CR_REJECT: return false;
    case CR_AUTHENTICATED_USER: return !e->anon && e->in->identity->subject[0] != '\0';
    case CR_GROUPS: return !e->anon && groups_match(ic, c);
    case CR_CLAIM: return !e->anon && claim_match(e, c);
    case CR_SOURCE_IP: return ip_match(ic, c);
    case CR_DATE:
    case CR_DAY_OF_WEEK:
    case CR_TIME_OF_DAY: return time_match(e, c);
    case CR_MCP_ARGUMENT: return arg_match(e, c);
    default:
        return str_attr(ic, c->kind) && str_match(c, ic->attr_s[c->kind], ic->attr_len[c->kind]);
    }
}

static inline bool crit_eval(struct ectx *e, const struct crit *c)
{
    if (e->memo && !(ITEM_KINDS >> c->kind & 1)) {
        /* the same for every item of the list: decided once */
        uint8_t *m = &e->memo[c - e->p->crits];
        if (*m == 0)
            *m = crit_eval_now(e, c) ? 1 : 2;
        return *m == 1;
    }
    return crit_eval_now(e, c);
}

/* The MCP name as the prefilter sees it, once per decision: which of the
 * name attributes (tool, prompt, resource) the message has (bit kind + 1),
 * its length and its first bytes. */
static NOINLINE void name_word_prepare(struct icache *ic)
{
    static const unsigned kinds[] = {CR_MCP_TOOL, CR_MCP_PROMPT, CR_MCP_RESOURCE};
    ic->name_kinds = 0;
    ic->name_len = 0;
    ic->name_word = 0;
    for (size_t i = 0; i < MG_ARRAY_LEN(kinds); i++) {
        if (!str_attr(ic, kinds[i]))
            continue;
        ic->name_kinds |= 1u << (kinds[i] + 1);
        ic->name_len = ic->attr_len[kinds[i]];
        memcpy(&ic->name_word, ic->attr_s[kinds[i]], MG_MIN(ic->name_len, sizeof ic->name_word));
    }
    ic->word_done = true;
}

/* A necessary condition of an and-term, checked before its criteria: the
 * first bytes of the name one of them compares with is or starts_with
 * (term.pre_*). Most rules of a large policy name other tools. */
static inline bool prefilter(struct icache *ic, const struct term *t)
{
    if (!ic->word_done)
        name_word_prepare(ic);
    if (!(ic->name_kinds >> t->pre_kind & 1))
        return false; /* no such name: the criterion is false */
    if (t->pre_exact ? ic->name_len != t->pre_full : ic->name_len < t->pre_full)
        return false;
    return (ic->name_word & t->pre_mask) == t->pre_word;
}

/* The path that decided when the term matches, else NULL. */
static const char *term_match(struct ectx *e, const struct term *t)
{
    const struct crit *c = e->p->crits + t->first, *end = c + t->n;
    switch (t->op) {
    case OP_AND: /* all of them */
        if ((t->need & e->ic->bloom) != t->need)
            return NULL; /* the caller lacks a value some criterion requires */
        if (e->memo) {
            /* Prepared: the criteria that do not look at the item are
             * decided once per list (a byte each), so they go first. An
             * and has no side effects and reports its own path. */
            for (const struct crit *x = c; x < end; x++)
                if (!(ITEM_KINDS >> x->kind & 1) && !crit_eval(e, x))
                    return NULL;
            for (; c < end; c++)
                if ((ITEM_KINDS >> c->kind & 1) && !crit_eval(e, c))
                    return NULL;
            return t->path;
        }
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

static const char *first_match(struct ectx *e, const struct term *terms, uint32_t n,
                               const uint32_t *live)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct term *t = &terms[live ? live[i] : i];
        /* inline: most and-terms of a large policy fail here, on the
         * caller's bloom or on the name's first bytes */
        if (t->op == OP_AND &&
            ((t->need & e->ic->bloom) != t->need || (t->pre_kind && !prefilter(e->ic, t))))
            continue;
        const char *path = term_match(e, t);
        if (path)
            return path;
    }
    return NULL;
}

static const char *first_deny(struct ectx *e)
{
    return e->live_deny ? first_match(e, e->p->deny, e->n_live_deny, e->live_deny)
                        : first_match(e, e->p->deny, e->p->n_deny, NULL);
}

static const char *first_allow(struct ectx *e)
{
    return e->live_allow ? first_match(e, e->p->allow, e->n_live_allow, e->live_allow)
                         : first_match(e, e->p->allow, e->p->n_allow, NULL);
}

/* Adds the caller's values of the given kinds to its bloom. */
static NOINLINE void bloom_add(struct icache *ic, uint32_t kinds)
{
    for (unsigned k = 0; k < CR_COUNT; k++) {
        if (!(kinds & (1u << k)))
            continue;
        if (k == CR_GROUPS) {
            if (ic->anon)
                continue;
            if (!ic->groups_done)
                groups_prepare(ic);
            for (size_t i = 0; i < ic->in->identity->n_groups && i < MG_IDENTITY_MAX_GROUPS; i++)
                ic->bloom |= mg_policy__bloom(CR_GROUPS, ic->g_hash[i]);
        } else if (str_attr(ic, k)) {
            ic->bloom |= mg_policy__bloom(k, mg_policy__hash(ic->attr_s[k], ic->attr_len[k]));
        }
    }
    ic->bloom_done |= kinds;
}

static void ectx_init(struct ectx *e, struct icache *ic, const struct mg_policy *p)
{
    e->ic = ic;
    e->in = ic->in;
    e->p = p;
    e->anon = ic->anon;
    e->zone_done = 0;
    e->slot_done = 0;
    e->memo = NULL;
    e->live_deny = e->live_allow = NULL;
    e->n_live_deny = e->n_live_allow = 0;
}

static void icache_init(struct icache *ic, const struct mg_policy_input *in)
{
    ic->in = in;
    ic->anon = in->identity == NULL || in->identity->method == MG_AUTH_NONE;
    ic->groups_done = false;
    ic->ip_state = 0;
    ic->attr_done = ic->attr_ok = 0;
    ic->bloom_done = 0;
    ic->bloom = 0;
    ic->word_done = false;
}

static bool not_configured(const struct mg_policy *global, const struct mg_policy *route,
                           struct mg_policy_decision *out)
{
    out->allow = false;
    out->rule = "";
    out->global_rule = "";
    if (global != NULL && route != NULL)
        return false;
    out->reason = MG_POLICY_NOT_CONFIGURED;
    out->scope = global == NULL ? MG_POLICY_SCOPE_GLOBAL : MG_POLICY_SCOPE_ROUTE;
    return true;
}

static void decide(struct ectx *eg, struct ectx *er, struct mg_policy_decision *out)
{
    const struct mg_policy *global = eg->p, *route = er->p;
    const char *path, *gpath;
    uint32_t kinds = (global->bloom_kinds | route->bloom_kinds) & ~eg->ic->bloom_done;

    if (kinds)
        bloom_add(eg->ic, kinds);
    /* Deny wins, in either policy. */
    out->reason = MG_POLICY_DENIED_BY_RULE;
    if ((path = first_deny(eg)) != NULL) {
        out->scope = MG_POLICY_SCOPE_GLOBAL;
        out->rule = path;
        return;
    }
    if ((path = first_deny(er)) != NULL) {
        out->scope = MG_POLICY_SCOPE_ROUTE;
        out->rule = path;
        return;
    }
    /* Then each must allow. */
    out->reason = MG_POLICY_NO_RULE_ALLOWED;
    if ((gpath = first_allow(eg)) == NULL) {
        out->scope = MG_POLICY_SCOPE_GLOBAL;
        out->rule = global->prefix;
        return;
    }
    if ((path = first_allow(er)) == NULL) {
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

void mg_policy_eval(const struct mg_policy *global, const struct mg_policy *route,
                    const struct mg_policy_input *in, struct mg_policy_decision *out)
{
    struct icache ic;
    struct ectx eg, er;

    if (not_configured(global, route, out))
        return;
    icache_init(&ic, in);
    ectx_init(&eg, &ic, global);
    ectx_init(&er, &ic, route);
    decide(&eg, &er, out);
}

/* ---------------------------------------------------------------------------
 * Many decisions for one caller (the items of a list answer).
 */

struct mg_policy_prep {
    const struct mg_policy *global, *route;
    struct mg_policy_input in;
    struct icache ic;
    struct ectx eg, er;
    uint32_t bloom_done; /* the caller's part of the bloom */
    uint64_t bloom;
    uint8_t *memo;  /* eg's criteria, then er's */
    uint32_t *live; /* the live term lists of eg and er */
};

/* The terms of one array that can match for this caller: a term whose
 * criteria do not look at the item is decided now (its criteria memoised)
 * and kept only if it matches; a term the caller's part of the bloom
 * already rules out is dropped. Order is kept, so the first match, and its
 * path, are what the whole array would give. */
static uint32_t live_terms(struct ectx *e, const struct term *terms, uint32_t n, uint32_t *out)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct term *t = &terms[i];
        if (t->op == OP_AND && (t->need_caller & e->ic->bloom) != t->need_caller)
            continue;
        if (!t->item_dep && term_match(e, t) == NULL)
            continue;
        out[k++] = i;
    }
    return k;
}

struct mg_policy_prep *mg_policy_prep_new(const struct mg_policy *global,
                                          const struct mg_policy *route,
                                          const struct mg_policy_input *in)
{
    struct mg_policy_prep *pp = mg_xcalloc(1, sizeof *pp);
    pp->global = global;
    pp->route = route;
    pp->in = *in;
    pp->in.mcp_name = NULL;
    icache_init(&pp->ic, &pp->in);
    if (global && route) {
        ectx_init(&pp->eg, &pp->ic, global);
        ectx_init(&pp->er, &pp->ic, route);
        uint32_t kinds = (global->bloom_kinds | route->bloom_kinds) & ~ITEM_KINDS;
        if (kinds)
            bloom_add(&pp->ic, kinds);
        pp->memo = mg_xcalloc((size_t)global->n_crits + route->n_crits + 1, 1);
        pp->eg.memo = pp->memo;
        pp->er.memo = pp->memo + global->n_crits;
        uint32_t *l = pp->live = mg_xcalloc((size_t)global->n_deny + global->n_allow +
                                                route->n_deny + route->n_allow + 1,
                                            sizeof *l);
        pp->eg.n_live_deny = live_terms(&pp->eg, global->deny, global->n_deny, l);
        pp->eg.live_deny = l;
        l += pp->eg.n_live_deny;
        pp->eg.n_live_allow = live_terms(&pp->eg, global->allow, global->n_allow, l);
        pp->eg.live_allow = l;
        l += pp->eg.n_live_allow;
        pp->er.n_live_deny = live_terms(&pp->er, route->deny, route->n_deny, l);
        pp->er.live_deny = l;
        l += pp->er.n_live_deny;
        pp->er.n_live_allow = live_terms(&pp->er, route->allow, route->n_allow, l);
        pp->er.live_allow = l;
    }
    pp->bloom_done = pp->ic.bloom_done;
    pp->bloom = pp->ic.bloom;
    return pp;
}

void mg_policy_prep_free(struct mg_policy_prep *pp)
{
    if (pp == NULL)
        return;
    free(pp->memo);
    free(pp->live);
    free(pp);
}

void mg_policy_eval_prep(struct mg_policy_prep *pp, const char *name, enum mg_tool_class tool_class,
                         struct mg_policy_decision *out)
{
    struct icache *ic = &pp->ic;
    if (not_configured(pp->global, pp->route, out))
        return;
    pp->in.mcp_name = name;
    pp->in.tool_class = tool_class;
    /* forget what the previous item's name and class gave */
    ic->attr_done &= ~ITEM_KINDS;
    ic->attr_ok &= ~ITEM_KINDS;
    ic->bloom_done = pp->bloom_done;
    ic->bloom = pp->bloom;
    ic->word_done = false;
    decide(&pp->eg, &pp->er, out);
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
