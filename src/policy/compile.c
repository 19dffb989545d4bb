/* The policy compiler: walks the YAML node tree of one Pomerium Policy
 * Language policy, reports every error it finds at the node it is about,
 * and builds the flat, immutable form eval.c runs (policy_int.h). All the
 * work a decision could repeat happens here once: literals are interned
 * (case-folded where the criterion is case-insensitive) and sorted for
 * binary search, CIDRs parsed and masked, JSON Pointers split and
 * unescaped, dates and clock times parsed, time zones loaded. The compiled
 * policy lives in one arena, freed at once. */
#include "conf/ytree.h"
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdalign.h>

#define PATH_MAX_LEN 512
#define ARENA_CHUNK  16384

/* ---------------------------------------------------------------------------
 * Arena: every piece of a compiled policy, freed in one go.
 */

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

static void *arena_alloc(struct mg_policy *p, size_t n)
{
    struct arena_chunk *c = p->arena;
    size_t a = alignof(max_align_t);
    n = (n + a - 1) / a * a;
    if (n == 0)
        n = a;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = mg_xmalloc(sizeof *c + cap);
        c->next = p->arena;
        c->used = 0;
        c->cap = cap;
        p->arena = c;
    }
    c->used += n;
    return c->data + c->used - n;
}

static void *arena_dup(struct mg_policy *p, const void *src, size_t n)
{
    void *d = arena_alloc(p, n);
    if (n)
        memcpy(d, src, n);
    return d;
}

/* ---------------------------------------------------------------------------
 * Compiler state, errors and notes.
 */

struct istr {
    const char *s;
    uint32_t len;
    uint32_t hash;
};

struct compiler {
    struct mg_policy *p;
    const struct mg_policy_env *env;
    mg_policy_fail_fn fail;
    void *ctx;
    int n_errs;
    int status;
    size_t crits_cap, allow_cap, deny_cap, notes_cap;
    bool total_reported;
    struct istr *itab; /* interned strings: open addressing */
    size_t itab_cap, itab_n;
    struct {
        uint8_t kind;
        const char *key; /* interned: equal keys are equal pointers */
    } slots[POLICY_PTR_SLOTS];
};

/* The cache slot for a claim path or argument pointer (1-based), or 0 once
 * all slots are taken (the value is then resolved every time). */
static uint8_t slot_for(struct compiler *c, uint8_t kind, const char *key)
{
    uint32_t i;
    for (i = 0; i < c->p->n_slots; i++)
        if (c->slots[i].kind == kind && c->slots[i].key == key)
            return (uint8_t)(i + 1);
    if (i == POLICY_PTR_SLOTS)
        return 0;
    c->slots[i].kind = kind;
    c->slots[i].key = key;
    c->p->n_slots++;
    return (uint8_t)(i + 1);
}

__attribute__((format(printf, 5, 6))) static void err(struct compiler *c, const struct mg_ynode *at,
                                                      int status, const char *path, const char *fmt,
                                                      ...)
{
    char msg[700], body[600];
    va_list ap;
    if (c->n_errs++ == 0)
        c->status = status;
    if (c->n_errs > MG_POLICY_MAX_ERRORS + 1)
        return;
    if (c->n_errs == MG_POLICY_MAX_ERRORS + 1) {
        snprintf(msg, sizeof msg, "%s: too many errors; stopping here", path);
        c->fail(c->ctx, at, msg);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s: %s", path, body);
    c->fail(c->ctx, at, msg);
}

static void note(struct compiler *c, const char *path, const struct mg_ynode *at, const char *msg)
{
    struct mg_policy *p = c->p;
    if (p->n_notes == c->notes_cap) {
        c->notes_cap = c->notes_cap ? c->notes_cap * 2 : 8;
        p->notes = mg_xrealloc(p->notes, c->notes_cap * sizeof *p->notes);
    }
    p->notes[p->n_notes++] =
        (struct note){.path = path, .line = at->line, .col = at->col, .msg = msg};
}

__attribute__((format(printf, 2, 3))) static const char *fmt(struct compiler *c, const char *f, ...)
{
    char buf[PATH_MAX_LEN];
    va_list ap;
    int n;
    va_start(ap, f);
    n = vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1; /* bounded by the prefix limit; cannot happen */
    return arena_dup(c->p, buf, (size_t)n + 1);
}

/* One copy of each distinct string in the arena. */
static const char *intern(struct compiler *c, const char *s, size_t n)
{
    uint32_t h = mg_policy__hash(s, n);
    size_t i;
    char *d;
    if (c->itab_n * 2 >= c->itab_cap) {
        size_t cap = c->itab_cap ? c->itab_cap * 2 : 64;
        struct istr *t = mg_xcalloc(cap, sizeof *t);
        for (size_t j = 0; j < c->itab_cap; j++) {
            if (c->itab[j].s == NULL)
                continue;
            for (i = c->itab[j].hash & (cap - 1); t[i].s; i = (i + 1) & (cap - 1))
                ;
            t[i] = c->itab[j];
        }
        free(c->itab);
        c->itab = t;
        c->itab_cap = cap;
    }
    for (i = h & (c->itab_cap - 1); c->itab[i].s; i = (i + 1) & (c->itab_cap - 1))
        if (c->itab[i].hash == h && c->itab[i].len == n && memcmp(c->itab[i].s, s, n) == 0)
            return c->itab[i].s;
    d = arena_alloc(c->p, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    c->itab[i] = (struct istr){.s = d, .len = (uint32_t)n, .hash = h};
    c->itab_n++;
    return d;
}

static bool key_is(const struct mg_ynode *k, const char *name)
{
    return mg_str_eq(k->str, k->len, name);
}

static const char *kind_desc(const struct mg_ynode *n)
{
    if (n->kind == MG_YNODE_MAP)
        return "a mapping";
    if (n->kind == MG_YNODE_SEQ)
        return "a list";
    return mg_ynode_is_null(n) ? "empty" : "a string";
}

/* A non-null scalar within the string bound, else an error. */
static bool want_scalar(struct compiler *c, const struct mg_ynode *v, const char *path,
                        const char *what)
{
    if (v->kind != MG_YNODE_SCALAR || mg_ynode_is_null(v)) {
        err(c, v, MG_EINVAL, path, "%s must be a single value, not %s", what, kind_desc(v));
        return false;
    }
    if (v->len > MG_POLICY_MAX_STRING) {
        err(c, v, MG_ELIMIT, path, "%s is %zu bytes; the limit is %d", what, v->len,
            MG_POLICY_MAX_STRING);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------
 * Criteria table.
 */

enum value_kind { V_NONE, V_STRING, V_LIST, V_IP, V_DATE, V_DOW, V_TOD, V_ARG };
enum sub_kind { SUB_NO, SUB_REQUIRED, SUB_OPTIONAL };

struct crit_def {
    const char *name;
    uint8_t kind, value, sub;
};

static const struct crit_def crit_defs[] = {
    {"accept", CR_ACCEPT, V_NONE, SUB_NO},
    {"reject", CR_REJECT, V_NONE, SUB_NO},
    {"authenticated_user", CR_AUTHENTICATED_USER, V_NONE, SUB_NO},
    {"user", CR_USER, V_STRING, SUB_NO},
    {"email", CR_EMAIL, V_STRING, SUB_NO},
    {"domain", CR_DOMAIN, V_STRING, SUB_NO},
    {"groups", CR_GROUPS, V_LIST, SUB_NO},
    {"claim", CR_CLAIM, V_LIST, SUB_REQUIRED},
    {"client_id", CR_CLIENT_ID, V_STRING, SUB_NO},
    {"http_method", CR_HTTP_METHOD, V_STRING, SUB_NO},
    {"http_path", CR_HTTP_PATH, V_STRING, SUB_NO},
    {"source_ip", CR_SOURCE_IP, V_IP, SUB_NO},
    {"date", CR_DATE, V_DATE, SUB_NO},
    {"day_of_week", CR_DAY_OF_WEEK, V_DOW, SUB_NO},
    {"time_of_day", CR_TIME_OF_DAY, V_TOD, SUB_NO},
    {"mcp_method", CR_MCP_METHOD, V_STRING, SUB_NO},
    {"mcp_tool", CR_MCP_TOOL, V_STRING, SUB_NO},
    {"mcp_tool_class", CR_MCP_TOOL_CLASS, V_STRING, SUB_NO},
    {"mcp_argument", CR_MCP_ARGUMENT, V_ARG, SUB_OPTIONAL},
    {"mcp_resource", CR_MCP_RESOURCE, V_STRING, SUB_NO},
    {"mcp_prompt", CR_MCP_PROMPT, V_STRING, SUB_NO},
};

/* Pomerium criteria that need what a gateway for MCP does not have. */
static const char *const unsupported_crits[] = {
    "client_certificate", "cors_preflight", "device",       "invalid_client_certificate",
    "pomerium_routes",    "record",         "ssh_username", "ssh_publickey",
};

const char *mg_policy__crit_name(enum crit_kind k)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(crit_defs); i++)
        if (crit_defs[i].kind == k)
            return crit_defs[i].name;
    return "?";
}

const char *mg_policy__op_name(enum op_kind k)
{
    static const char *const names[] = {"and", "or", "not", "nor"};
    return (unsigned)k < MG_ARRAY_LEN(names) ? names[k] : "?";
}

/* Levenshtein distance, for "did you mean"; names are short. */
static size_t edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b), row[40];
    if (na >= 39 || nb >= 39)
        return 99;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = MG_MIN(best, row[j] + 1);
            best = MG_MIN(best, row[j - 1] + 1);
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

static const char *suggest(const char *s, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < MG_ARRAY_LEN(crit_defs); i++) {
        size_t d = edit_distance(s, n, crit_defs[i].name);
        if (d < best_d) {
            best_d = d;
            best = crit_defs[i].name;
        }
    }
    return best;
}

/* ---------------------------------------------------------------------------
 * Literals and numbers.
 */

static bool all_digits(const char *s, size_t n, bool hex, bool oct)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = oct ? (ch >= '0' && ch <= '7')
                      : (ch >= '0' && ch <= '9') ||
                            (hex && ((ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')));
        if (!ok)
            return false;
    }
    return true;
}

/* YAML 1.2 core-schema numbers: [-+]?[0-9]+, 0x.., 0o.., and
 * [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?. Infinity and NaN
 * are not JSON numbers and stay strings. Returns false for anything else. */
static bool parse_number(const char *s, size_t n, struct lit *l)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;
    bool frac = false, exp = false;
    char *end;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        bool hex = s[1] == 'x';
        unsigned long long v;
        if (!all_digits(s + 2, n - 2, hex, !hex))
            return false;
        errno = 0;
        v = strtoull(s + 2, &end, hex ? 16 : 8);
        if (errno || end != s + n || v > INT64_MAX)
            return false;
        l->is_int = true;
        l->i = (int64_t)v;
        l->d = (double)v;
        return true;
    }
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        int_digits++;
    }
    if (i < n && s[i] == '.') {
        frac = true;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            frac_digits++;
        }
    }
    if (int_digits == 0 && frac_digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e_digits = 0;
        exp = true;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            e_digits++;
        }
        if (e_digits == 0)
            return false;
    }
    if (i != n)
        return false;
    errno = 0;
    l->d = strtod(s, &end);
    if (end != s + n || !isfinite(l->d))
        return false;
    l->is_int = false;
    if (!frac && !exp) {
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == 0 && end == s + n) {
            l->is_int = true;
            l->i = v;
        }
    }
    return true;
}

static bool is_yaml_bool(const struct mg_ynode *v, bool *b)
{
    static const char *const t[] = {"true", "True", "TRUE"}, *const f[] = {"false", "False",
                                                                           "FALSE"};
    if (v->kind != MG_YNODE_SCALAR || !v->plain)
        return false;
    for (size_t i = 0; i < 3; i++) {
        if (mg_str_eq(v->str, v->len, t[i])) {
            *b = true;
            return true;
        }
        if (mg_str_eq(v->str, v->len, f[i])) {
            *b = false;
            return true;
        }
    }
    return false;
}

/* A literal from a scalar node (already checked with want_scalar, except
 * that typed literals may be null). Typed: the YAML type decides (plain
 * numbers, booleans and nulls; anything quoted is a string). */
static struct lit make_lit(struct compiler *c, const struct mg_ynode *v, bool typed, bool fold)
{
    struct lit l = {.type = LIT_STR};
    char buf[MG_POLICY_MAX_STRING];
    if (fold) {
        for (size_t i = 0; i < v->len; i++) {
            char ch = v->str[i];
            buf[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        }
        l.s = intern(c, buf, v->len);
    } else {
        l.s = intern(c, v->str, v->len);
    }
    l.len = (uint32_t)v->len;
    l.hash = mg_policy__hash(l.s, l.len);
    if (!typed || !v->plain)
        return l;
    if (mg_ynode_is_null(v))
        l.type = LIT_NULL;
    else if (is_yaml_bool(v, &l.b))
        l.type = LIT_BOOL;
    else if (parse_number(v->str, v->len, &l))
        l.type = LIT_NUM;
    return l;
}

static int lit_cmp(const void *a, const void *b)
{
    const struct lit *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

/* ---------------------------------------------------------------------------
 * Matchers: string (is, not, in, not_in, starts_with, ends_with, contains),
 * list (has, is, exclude), and mcp_argument's (string ones, typed, plus
 * lt, le, gt, ge, exists, has, exclude).
 */

enum matcher_family { MF_STRING, MF_LIST, MF_ARG };

struct op_def {
    const char *name;
    uint8_t kind;
    uint8_t families; /* bit per matcher_family */
};

#define FS (1u << MF_STRING)
#define FL (1u << MF_LIST)
#define FA (1u << MF_ARG)

static const struct op_def op_defs[] = {
    {"is", M_IS, FS | FA},
    {"is", M_LIST_IS, FL},
    {"not", M_NOT, FS | FA},
    {"in", M_IN, FS | FA},
    {"not_in", M_NOT_IN, FS | FA},
    {"starts_with", M_STARTS_WITH, FS | FA},
    {"ends_with", M_ENDS_WITH, FS | FA},
    {"contains", M_CONTAINS, FS | FA},
    {"has", M_HAS, FL | FA},
    {"exclude", M_EXCLUDE, FL | FA},
    {"lt", M_LT, FA},
    {"le", M_LE, FA},
    {"gt", M_GT, FA},
    {"ge", M_GE, FA},
    {"exists", M_EXISTS, FA},
};

static const char *family_ops(int family)
{
    switch (family) {
    case MF_STRING: return "is, not, in, not_in, starts_with, ends_with or contains";
    case MF_LIST: return "has, is or exclude";
    default:
        return "is, not, in, not_in, starts_with, ends_with, contains, lt, le, gt, ge, exists, "
               "has or exclude";
    }
}

static bool tool_class_lit_ok(const struct lit *l)
{
    enum mg_tool_class tc;
    return mg_tool_class_parse(l->s, &tc) == 0;
}

/* One operator's literal(s). */
static bool build_op(struct compiler *c, const struct crit *cr, const struct mg_ynode *k,
                     const struct mg_ynode *v, uint8_t kind, int family, struct mop *out)
{
    bool typed = family == MF_ARG, fold = cr->fold;
    struct lit *lits;
    size_t n;
    out->kind = kind;
    if (kind == M_IN || kind == M_NOT_IN) {
        if (v->kind != MG_YNODE_SEQ) {
            err(c, v, MG_EINVAL, cr->path, "'%s' takes a list, not %s", k->str, kind_desc(v));
            return false;
        }
        n = v->n_kids;
        if (n > MG_POLICY_MAX_LIST) {
            err(c, v, MG_ELIMIT, cr->path, "'%s' has %zu values; the limit is %d", k->str, n,
                MG_POLICY_MAX_LIST);
            return false;
        }
        lits = arena_alloc(c->p, (n ? n : 1) * sizeof *lits);
        for (size_t i = 0; i < n; i++) {
            const struct mg_ynode *it = v->kids[i];
            if (typed && it->kind == MG_YNODE_SCALAR && mg_ynode_is_null(it)) {
                lits[i] = make_lit(c, it, true, false);
                continue;
            }
            if (!want_scalar(c, it, cr->path, "each value"))
                return false;
            lits[i] = make_lit(c, it, typed, fold);
            if (cr->kind == CR_MCP_TOOL_CLASS && !tool_class_lit_ok(&lits[i])) {
                struct mg_quoted q;
                err(c, it, MG_EINVAL, cr->path,
                    "'%s' is not a tool class: expected read_only, write or destructive",
                    mg_quote(&q, it->str, it->len));
                return false;
            }
        }
        if (!typed && n > 1) {
            size_t o = 1;
            qsort(lits, n, sizeof *lits, lit_cmp);
            for (size_t i = 1; i < n; i++)
                if (lit_cmp(&lits[i], &lits[o - 1]) != 0)
                    lits[o++] = lits[i];
            n = o;
            out->sorted = true;
        }
        out->n = (uint32_t)n;
        out->lits = lits;
        return true;
    }
    if (kind == M_EXISTS) {
        struct lit l = {.type = LIT_BOOL};
        if (!is_yaml_bool(v, &l.b)) {
            err(c, v, MG_EINVAL, cr->path, "'exists' takes true or false");
            return false;
        }
        l.s = "";
        out->n = 1;
        out->lits = arena_dup(c->p, &l, sizeof l);
        return true;
    }
    if (v->kind == MG_YNODE_SEQ && (kind == M_HAS || kind == M_LIST_IS || kind == M_EXCLUDE)) {
        err(c, v, MG_EINVAL, cr->path,
            "'%s' takes one value; to match any of several, list several criteria under 'or'",
            k->str);
        return false;
    }
    if (typed && v->kind == MG_YNODE_SCALAR && mg_ynode_is_null(v) &&
        (kind == M_IS || kind == M_NOT || kind == M_HAS || kind == M_EXCLUDE)) {
        struct lit l = make_lit(c, v, true, false);
        out->n = 1;
        out->lits = arena_dup(c->p, &l, sizeof l);
        return true;
    }
    if (!want_scalar(c, v, cr->path, "the value"))
        return false;
    {
        struct lit l = make_lit(c, v, typed, fold);
        if ((kind == M_LT || kind == M_LE || kind == M_GT || kind == M_GE) && l.type != LIT_NUM) {
            struct mg_quoted q;
            err(c, v, MG_EINVAL, cr->path, "'%s' takes a number, not '%s'", k->str,
                mg_quote(&q, v->str, v->len));
            return false;
        }
        if (cr->kind == CR_MCP_TOOL_CLASS && (kind == M_IS || kind == M_NOT) &&
            !tool_class_lit_ok(&l)) {
            struct mg_quoted q;
            err(c, v, MG_EINVAL, cr->path,
                "'%s' is not a tool class: expected read_only, write or destructive",
                mg_quote(&q, v->str, v->len));
            return false;
        }
        out->n = 1;
        out->lits = arena_dup(c->p, &l, sizeof l);
    }
    return true;
}

static bool is_lower_method(const struct mop *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ops[i].n; j++)
            for (const char *s = ops[i].lits[j].s; *s; s++)
                if (*s >= 'a' && *s <= 'z')
                    return true;
    return false;
}

/* Fills cr->ops from v: a bare scalar (is, or has for lists), or a mapping
 * of operators. skip_key names a key that is not an operator (mcp_argument's
 * "pointer"). */
static bool build_matcher(struct compiler *c, struct crit *cr, const struct mg_ynode *v, int family,
                          const char *skip_key)
{
    struct mop ops[MG_ARRAY_LEN(op_defs)];
    size_t n_ops = 0;
    bool ok = true;

    if (v->kind == MG_YNODE_SCALAR && family == MF_ARG && mg_ynode_is_null(v)) {
        /* mcp_argument/x: null is "is null" (typed), not a missing value. */
        memset(ops, 0, sizeof ops[0]);
        if (!build_op(c, cr, v, v, M_IS, family, &ops[0]))
            return false;
        n_ops = 1;
    } else if (v->kind == MG_YNODE_SCALAR) {
        if (!want_scalar(c, v, cr->path, "the value"))
            return false;
        memset(ops, 0, sizeof ops[0]);
        if (!build_op(c, cr, v, v, family == MF_LIST ? M_HAS : M_IS, family, &ops[0]))
            return false;
        n_ops = 1;
    } else if (v->kind == MG_YNODE_SEQ) {
        err(c, v, MG_EINVAL, cr->path, "%s",
            family == MF_LIST
                ? "a list never matches here; to match any of several values, list several "
                  "criteria under 'or'"
                : "a list of values needs an operator: 'in: [...]' or 'not_in: [...]'");
        return false;
    } else if (v->kind == MG_YNODE_MAP) {
        for (size_t i = 0; i + 1 < v->n_kids; i += 2) {
            const struct mg_ynode *k = v->kids[i], *val = v->kids[i + 1];
            const struct op_def *d = NULL;
            if (skip_key && key_is(k, skip_key))
                continue;
            for (size_t j = 0; j < MG_ARRAY_LEN(op_defs); j++)
                if (key_is(k, op_defs[j].name) && (op_defs[j].families & (1u << family))) {
                    d = &op_defs[j];
                    break;
                }
            if (d == NULL) {
                struct mg_quoted q;
                err(c, k, MG_EINVAL, cr->path, "unknown matcher '%s': '%s' takes %s",
                    mg_quote(&q, k->str, k->len), mg_policy__crit_name(cr->kind),
                    family_ops(family));
                ok = false;
                continue;
            }
            if (n_ops == MG_ARRAY_LEN(ops)) {
                err(c, k, MG_ELIMIT, cr->path, "too many matchers");
                return false;
            }
            memset(&ops[n_ops], 0, sizeof ops[n_ops]);
            if (build_op(c, cr, k, val, d->kind, family, &ops[n_ops]))
                n_ops++;
            else
                ok = false;
        }
        if (ok && n_ops == 0) {
            err(c, v, MG_EINVAL, cr->path, "'%s' needs a matcher (%s)",
                mg_policy__crit_name(cr->kind), family_ops(family));
            return false;
        }
    } else {
        err(c, v, MG_EINVAL, cr->path, "'%s' needs a value", mg_policy__crit_name(cr->kind));
        return false;
    }
    if (!ok)
        return false;
    cr->n_ops = (uint8_t)n_ops;
    cr->ops = arena_dup(c->p, ops, n_ops * sizeof ops[0]);
    for (size_t i = 0; i < n_ops; i++)
        if (ops[i].kind == M_IN && ops[i].n == 0)
            cr->constant = CONST_FALSE;
    if (cr->kind == CR_HTTP_METHOD && is_lower_method(ops, n_ops))
        note(c, cr->path, v,
             "HTTP methods are case-sensitive: a lower-case method never matches (use GET, "
             "POST, ...)");
    return true;
}

/* ---------------------------------------------------------------------------
 * Paths: claim paths and JSON Pointers (RFC 6901).
 */

static int64_t array_index(const char *s, size_t n)
{
    int64_t v = 0;
    /* RFC 6901 §4: "0" or digits without a leading zero. */
    if (n == 0 || n > 18 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool parse_pointer(struct compiler *c, struct crit *cr, const struct mg_ynode *at,
                          const char *ptr, size_t len)
{
    struct seg segs[MG_POLICY_MAX_POINTER];
    char buf[MG_POLICY_MAX_STRING];
    size_t n_seg = 0, i = 0;
    if (len > 0 && ptr[0] != '/') {
        struct mg_quoted q;
        err(c, at, MG_EINVAL, cr->path,
            "'%s' is not a JSON Pointer: it must be empty or start with '/' (RFC 6901)",
            mg_quote(&q, ptr, len));
        return false;
    }
    while (i < len) {
        size_t o = 0;
        i++; /* the '/' */
        while (i < len && ptr[i] != '/') {
            if (ptr[i] == '~') {
                if (i + 1 >= len || (ptr[i + 1] != '0' && ptr[i + 1] != '1')) {
                    err(c, at, MG_EINVAL, cr->path,
                        "bad escape in JSON Pointer: '~' must be followed by 0 or 1 (RFC 6901 "
                        "§3)");
                    return false;
                }
                buf[o++] = ptr[i + 1] == '0' ? '~' : '/';
                i += 2;
            } else {
                buf[o++] = ptr[i++];
            }
        }
        if (n_seg == MG_POLICY_MAX_POINTER) {
            err(c, at, MG_ELIMIT, cr->path, "the JSON Pointer has more than %d segments",
                MG_POLICY_MAX_POINTER);
            return false;
        }
        segs[n_seg].s = intern(c, buf, o);
        segs[n_seg].len = (uint32_t)o;
        segs[n_seg].idx = array_index(buf, o);
        n_seg++;
    }
    cr->u.ptr.key = intern(c, ptr, len);
    cr->u.ptr.seg = arena_dup(c->p, segs, n_seg * sizeof segs[0]);
    cr->u.ptr.n_seg = (uint32_t)n_seg;
    cr->u.ptr.slot = slot_for(c, cr->kind, cr->u.ptr.key);
    return true;
}

/* claim/<path>: the whole path is tried as one key first; then, as
 * Pomerium does, '.' and '/' separate nested objects. */
static bool parse_claim_path(struct compiler *c, struct crit *cr, const struct mg_ynode *at,
                             const char *s, size_t len)
{
    struct seg segs[MG_POLICY_MAX_POINTER];
    size_t n_seg = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.' && s[i] != '/')
            continue;
        if (n_seg == MG_POLICY_MAX_POINTER) {
            err(c, at, MG_ELIMIT, cr->path, "the claim path has more than %d segments",
                MG_POLICY_MAX_POINTER);
            return false;
        }
        segs[n_seg].s = intern(c, s + start, i - start);
        segs[n_seg].len = (uint32_t)(i - start);
        segs[n_seg].idx = -1;
        n_seg++;
        start = i + 1;
    }
    cr->u.ptr.key = intern(c, s, len);
    cr->u.ptr.seg = arena_dup(c->p, segs, n_seg * sizeof segs[0]);
    cr->u.ptr.n_seg = (uint32_t)n_seg;
    cr->u.ptr.slot = slot_for(c, cr->kind, cr->u.ptr.key);
    return true;
}

/* ---------------------------------------------------------------------------
 * source_ip: addresses and CIDR ranges, IPv4 and IPv6.
 */

static bool parse_cidr(struct compiler *c, struct crit *cr, const struct mg_ynode *v,
                       struct cidr *out)
{
    char host[64];
    const char *slash = memchr(v->str, '/', v->len);
    size_t hlen = slash ? (size_t)(slash - v->str) : v->len;
    unsigned bits = 0;
    struct mg_quoted q;
    bool masked = false;
    uint8_t addr[16] = {0};
    memset(out, 0, sizeof *out);
    if (hlen == 0 || hlen >= sizeof host)
        goto bad;
    memcpy(host, v->str, hlen);
    host[hlen] = '\0';
    /* inet_pton takes no zone ("%eth0") and no IPv4 with leading zeros. */
    if (inet_pton(AF_INET, host, addr) == 1) {
        out->family = 4;
        bits = 32;
    } else if (inet_pton(AF_INET6, host, addr) == 1) {
        out->family = 6;
        bits = 128;
    } else {
        goto bad;
    }
    if (slash) {
        const char *d = slash + 1;
        size_t dn = v->len - hlen - 1;
        unsigned max = bits;
        if (dn == 0 || dn > 3 || (dn > 1 && d[0] == '0'))
            goto bad;
        bits = 0;
        for (size_t i = 0; i < dn; i++) {
            if (d[i] < '0' || d[i] > '9')
                goto bad;
            bits = bits * 10 + (unsigned)(d[i] - '0');
        }
        if (bits > max) {
            err(c, v, MG_EINVAL, cr->path, "'%s': the prefix length is at most %u",
                mg_quote(&q, v->str, v->len), max);
            return false;
        }
    }
    out->bits = (uint8_t)bits;
    {
        uint64_t hi = 0, lo = 0;
        for (unsigned i = 0; i < 8; i++) {
            hi = hi << 8 | addr[i];
            lo = lo << 8 | addr[i + 8];
        }
        out->mhi = bits == 0 ? 0 : bits >= 64 ? ~0ull : ~0ull << (64 - bits);
        out->mlo = bits <= 64 ? 0 : bits >= 128 ? ~0ull : ~0ull << (128 - bits);
        masked = (hi & ~out->mhi) != 0 || (lo & ~out->mlo) != 0;
        out->hi = hi & out->mhi;
        out->lo = lo & out->mlo;
    }
    if (masked)
        note(c, cr->path, v,
             "the CIDR has host bits set; they are ignored (did you mean the network "
             "address?)");
    return true;
bad:
    err(c, v, MG_EINVAL, cr->path, "'%s' is not an IP address or CIDR range",
        mg_quote(&q, v->str, v->len));
    return false;
}

static bool build_ip(struct compiler *c, struct crit *cr, const struct mg_ynode *v)
{
    const struct mg_ynode *const *items = &v;
    size_t n = 1;
    struct cidr *out;
    bool ok = true;
    if (v->kind == MG_YNODE_SEQ) {
        items = (const struct mg_ynode *const *)v->kids;
        n = v->n_kids;
    }
    if (n > MG_POLICY_MAX_LIST) {
        err(c, v, MG_ELIMIT, cr->path, "%zu ranges; the limit is %d", n, MG_POLICY_MAX_LIST);
        return false;
    }
    out = arena_alloc(c->p, (n ? n : 1) * sizeof *out);
    for (size_t i = 0; i < n; i++)
        if (!want_scalar(c, items[i], cr->path, "an address") ||
            !parse_cidr(c, cr, items[i], &out[i]))
            ok = false;
    cr->u.ip.v = out;
    cr->u.ip.n = (uint32_t)n;
    if (n == 0)
        cr->constant = CONST_FALSE;
    return ok;
}

/* ---------------------------------------------------------------------------
 * Time: dates, clock times, days of the week, zones.
 */

static bool digits_at(const char *s, size_t n, size_t at, size_t count, int *out)
{
    int v = 0;
    if (at + count > n)
        return false;
    for (size_t i = at; i < at + count; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static unsigned month_len_for(int y, int m)
{
    int64_t a = mg_policy_days_from_civil(y, (unsigned)m, 1);
    int64_t b = m == 12 ? mg_policy_days_from_civil(y + 1, 1, 1)
                        : mg_policy_days_from_civil(y, (unsigned)m + 1, 1);
    return (unsigned)(b - a);
}

/* ISO 8601: YYYY-MM-DD, optionally [T ]HH:MM[:SS[.fraction]] and then Z or
 * +HH:MM / +HHMM / +HH. No offset means UTC. Seconds precision: a fraction
 * is dropped. */
static bool parse_datetime(const char *s, size_t n, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    int64_t t;
    size_t i = 10;
    if (!digits_at(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || !digits_at(s, n, 5, 2, &mo) ||
        s[7] != '-' || !digits_at(s, n, 8, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > month_len_for(y, mo))
        return false;
    if (i < n) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return false;
        i++;
        if (!digits_at(s, n, i, 2, &h) || i + 2 >= n || s[i + 2] != ':' ||
            !digits_at(s, n, i + 3, 2, &mi))
            return false;
        i += 5;
        if (i < n && s[i] == ':') {
            if (!digits_at(s, n, i + 1, 2, &sec))
                return false;
            i += 3;
            if (i < n && (s[i] == '.' || s[i] == ',')) {
                size_t f = ++i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == f)
                    return false;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return false;
    }
    t = mg_policy_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    if (i < n) {
        int oh, om = 0, sign;
        if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
            *out = t;
            return n > 10;
        }
        if (n <= 10 || (s[i] != '+' && s[i] != '-') || !digits_at(s, n, i + 1, 2, &oh))
            return false;
        sign = s[i] == '-' ? -1 : 1;
        i += 3;
        if (i < n && s[i] == ':')
            i++;
        if (i < n && !digits_at(s, n, i, 2, &om))
            return false;
        if (i < n)
            i += 2;
        if (i != n || oh > 23 || om > 59)
            return false;
        t -= sign * (oh * 3600 + om * 60);
    }
    *out = t;
    return true;
}

/* Clock times in the formats Pomerium documents for time_of_day: "3:04 PM",
 * "3:04PM", "3 PM", "3PM", "15:04:05.999999999", "15:04:05", "15:04"
 * (seconds precision; AM/PM in either case). */
static bool parse_clock(const char *s, size_t n, int32_t *out)
{
    int h = 0, m = 0, sec = 0, hd = 0;
    size_t i = 0;
    bool has_min = false;
    while (i < n && hd < 2 && s[i] >= '0' && s[i] <= '9') {
        h = h * 10 + (s[i++] - '0');
        hd++;
    }
    if (hd == 0)
        return false;
    if (i < n && s[i] == ':') {
        if (!digits_at(s, n, i + 1, 2, &m))
            return false;
        i += 3;
        has_min = true;
        if (i < n && s[i] == ':') {
            if (!digits_at(s, n, i + 1, 2, &sec))
                return false;
            i += 3;
            if (i < n && s[i] == '.') {
                size_t f = ++i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == f || i - f > 9)
                    return false;
            }
        }
    }
    if (m > 59 || sec > 59)
        return false;
    if (i < n && s[i] == ' ')
        i++;
    if (i + 2 == n && (s[i + 1] == 'M' || s[i + 1] == 'm') &&
        (s[i] == 'A' || s[i] == 'a' || s[i] == 'P' || s[i] == 'p')) {
        bool pm = s[i] == 'P' || s[i] == 'p';
        if (h < 1 || h > 12)
            return false;
        h = (h % 12) + (pm ? 12 : 0);
    } else if (i != n || !has_min || s[n - 1] == ' ') {
        return false; /* 24-hour times need minutes */
    } else if (h > 23) {
        return false;
    }
    *out = h * 3600 + m * 60 + sec;
    return true;
}

static int zone_get(struct compiler *c, const struct crit *cr, const struct mg_ynode *v)
{
    struct mg_policy *p = c->p;
    struct mg_policy_tz *z = NULL;
    const char *why = NULL;
    struct mg_quoted q;
    int rc;
    for (uint32_t i = 0; i < p->n_zones; i++)
        if (strcmp(p->zone_names[i], v->str) == 0)
            return (int)i;
    if (p->n_zones == MG_POLICY_MAX_ZONES) {
        err(c, v, MG_ELIMIT, cr->path, "more than %d time zones in one policy",
            MG_POLICY_MAX_ZONES);
        return -1;
    }
    rc = mg_policy_tz_load(c->env ? c->env->tzdir : NULL, v->str, &z, &why);
    if (rc < 0) {
        err(c, v, MG_EINVAL, cr->path,
            "time zone '%s': %s (use UTC, +HH:MM or an IANA name "
            "such as Europe/Berlin)",
            mg_quote(&q, v->str, v->len), why ? why : "cannot load");
        return -1;
    }
    p->zones[p->n_zones] = z;
    p->zone_names[p->n_zones] = intern(c, v->str, v->len);
    return (int)p->n_zones++;
}

static bool build_date(struct compiler *c, struct crit *cr, const struct mg_ynode *v)
{
    bool ok = true;
    if (v->kind != MG_YNODE_MAP) {
        err(c, v, MG_EINVAL, cr->path, "'date' takes a mapping with 'after' and/or 'before'");
        return false;
    }
    for (size_t i = 0; i + 1 < v->n_kids; i += 2) {
        const struct mg_ynode *k = v->kids[i], *val = v->kids[i + 1];
        bool after = key_is(k, "after");
        int64_t t;
        struct mg_quoted q;
        if (!after && !key_is(k, "before")) {
            err(c, k, MG_EINVAL, cr->path, "unknown key '%s' in 'date': expected after or before",
                mg_quote(&q, k->str, k->len));
            ok = false;
            continue;
        }
        if (!want_scalar(c, val, cr->path, "a date")) {
            ok = false;
            continue;
        }
        if (!parse_datetime(val->str, val->len, &t)) {
            err(c, val, MG_EINVAL, cr->path,
                "'%s' is not an ISO 8601 date (2026-01-31, 2026-01-31T16:20:00, "
                "2026-01-31T16:20:00+01:00)",
                mg_quote(&q, val->str, val->len));
            ok = false;
            continue;
        }
        if (after) {
            cr->u.date.after = t;
            cr->u.date.has_after = true;
        } else {
            cr->u.date.before = t;
            cr->u.date.has_before = true;
        }
    }
    if (ok && !cr->u.date.has_after && !cr->u.date.has_before) {
        err(c, v, MG_EINVAL, cr->path, "'date' needs 'after' and/or 'before'");
        return false;
    }
    if (cr->u.date.has_after && cr->u.date.has_before && cr->u.date.after >= cr->u.date.before)
        cr->constant = CONST_FALSE;
    return ok;
}

static const char *const day_names[7][2] = {
    {"sun", "sunday"},   {"mon", "monday"}, {"tue", "tuesday"},  {"wed", "wednesday"},
    {"thu", "thursday"}, {"fri", "friday"}, {"sat", "saturday"},
};

static int day_of(const char *s, size_t n)
{
    for (int d = 0; d < 7; d++)
        for (int f = 0; f < 2; f++)
            if (mg_str_ieq(s, n, day_names[d][f]))
                return d;
    return -1;
}

/* "*", or comma-separated days and day ranges ("mon-fri", "fri-mon" wraps). */
static bool parse_days(struct compiler *c, struct crit *cr, const struct mg_ynode *v, uint8_t *days)
{
    const char *s = v->str, *end = v->str + v->len;
    struct mg_quoted q;
    while (s < end && *s == ' ')
        s++;
    if (end - s == 1 && *s == '*') {
        *days |= 0x7f;
        return true;
    }
    while (s < end) {
        const char *item = s, *dash, *ie;
        int a, b;
        while (s < end && *s != ',')
            s++;
        ie = s;
        while (item < ie && *item == ' ')
            item++;
        while (ie > item && ie[-1] == ' ')
            ie--;
        dash = memchr(item, '-', (size_t)(ie - item));
        if (dash) {
            const char *ae = dash, *bs = dash + 1;
            while (ae > item && ae[-1] == ' ')
                ae--;
            while (bs < ie && *bs == ' ')
                bs++;
            a = day_of(item, (size_t)(ae - item));
            b = day_of(bs, (size_t)(ie - bs));
        } else {
            a = b = day_of(item, (size_t)(ie - item));
        }
        if (a < 0 || b < 0) {
            err(c, v, MG_EINVAL, cr->path,
                "'%s' is not a day or a range of days (\"*\", \"mon,wed\", \"mon-fri\"; English "
                "names or three-letter abbreviations)",
                mg_quote(&q, item, (size_t)(ie - item)));
            return false;
        }
        for (int d = a;; d = (d + 1) % 7) {
            *days |= (uint8_t)(1u << d);
            if (d == b)
                break;
        }
        if (s < end)
            s++; /* the comma */
    }
    return true;
}

static bool build_dow(struct compiler *c, struct crit *cr, const struct mg_ynode *v)
{
    const struct mg_ynode *days_v = v, *tz_v = NULL;
    uint8_t days = 0;
    bool ok = true;
    if (v->kind == MG_YNODE_MAP) {
        days_v = NULL;
        for (size_t i = 0; i + 1 < v->n_kids; i += 2) {
            const struct mg_ynode *k = v->kids[i];
            struct mg_quoted q;
            if (key_is(k, "timezone")) {
                tz_v = v->kids[i + 1];
            } else if (key_is(k, "days")) {
                days_v = v->kids[i + 1];
            } else {
                err(c, k, MG_EINVAL, cr->path,
                    "unknown key '%s' in 'day_of_week': expected days or timezone",
                    mg_quote(&q, k->str, k->len));
                ok = false;
            }
        }
        if (days_v == NULL) {
            err(c, v, MG_EINVAL, cr->path, "'day_of_week' needs 'days'");
            return false;
        }
    }
    if (days_v->kind == MG_YNODE_SEQ) {
        for (size_t i = 0; i < days_v->n_kids; i++)
            if (!want_scalar(c, days_v->kids[i], cr->path, "a day") ||
                !parse_days(c, cr, days_v->kids[i], &days))
                ok = false;
    } else if (days_v->kind == MG_YNODE_SCALAR) {
        /* An empty string is an empty set of days: lint says it never
         * matches, as it should say about any other empty list. */
        if (days_v->len > MG_POLICY_MAX_STRING || !parse_days(c, cr, days_v, &days))
            ok = false;
    } else {
        err(c, days_v, MG_EINVAL, cr->path,
            "'day_of_week' takes a string such as \"mon-fri\", a list of days, or a mapping "
            "with days and timezone");
        ok = false;
    }
    if (tz_v) {
        int z;
        if (!want_scalar(c, tz_v, cr->path, "the time zone"))
            return false;
        z = zone_get(c, cr, tz_v);
        if (z < 0)
            return false;
        cr->u.dow.zone = (uint8_t)(z + 1);
    }
    cr->u.dow.days = days;
    if (days == 0)
        cr->constant = CONST_FALSE;
    else if (days == 0x7f)
        cr->constant = CONST_TRUE;
    return ok;
}

static bool build_tod(struct compiler *c, struct crit *cr, const struct mg_ynode *v)
{
    const struct mg_ynode *tz_v = NULL;
    bool ok = true;
    if (v->kind != MG_YNODE_MAP) {
        err(c, v, MG_EINVAL, cr->path,
            "'time_of_day' takes a mapping with timezone and after and/or before");
        return false;
    }
    for (size_t i = 0; i + 1 < v->n_kids; i += 2) {
        const struct mg_ynode *k = v->kids[i], *val = v->kids[i + 1];
        int32_t t;
        struct mg_quoted q;
        if (key_is(k, "timezone")) {
            tz_v = val;
            continue;
        }
        if (!key_is(k, "after") && !key_is(k, "before")) {
            err(c, k, MG_EINVAL, cr->path,
                "unknown key '%s' in 'time_of_day': expected timezone, after or before",
                mg_quote(&q, k->str, k->len));
            ok = false;
            continue;
        }
        if (!want_scalar(c, val, cr->path, "a time")) {
            ok = false;
            continue;
        }
        if (!parse_clock(val->str, val->len, &t)) {
            err(c, val, MG_EINVAL, cr->path,
                "'%s' is not a time of day (15:04, 15:04:05, 3:04PM, 3:04 PM, 3PM)",
                mg_quote(&q, val->str, val->len));
            ok = false;
            continue;
        }
        if (key_is(k, "after")) {
            cr->u.tod.after = t;
            cr->u.tod.has_after = true;
        } else {
            cr->u.tod.before = t;
            cr->u.tod.has_before = true;
        }
    }
    if (!ok)
        return false;
    if (tz_v == NULL) {
        err(c, v, MG_EINVAL, cr->path,
            "'time_of_day' needs a timezone (UTC, +HH:MM or an IANA name such as "
            "America/New_York)");
        return false;
    }
    if (!cr->u.tod.has_after && !cr->u.tod.has_before) {
        err(c, v, MG_EINVAL, cr->path, "'time_of_day' needs 'after' and/or 'before'");
        return false;
    }
    if (!want_scalar(c, tz_v, cr->path, "the time zone"))
        return false;
    {
        int z = zone_get(c, cr, tz_v);
        if (z < 0)
            return false;
        cr->u.tod.zone = (uint8_t)z;
    }
    if (cr->u.tod.has_after && cr->u.tod.has_before && cr->u.tod.after == cr->u.tod.before)
        cr->constant = CONST_FALSE;
    else if (cr->u.tod.has_after && !cr->u.tod.has_before && cr->u.tod.after == 0)
        cr->constant = CONST_TRUE;
    return true;
}

/* ---------------------------------------------------------------------------
 * Criteria, operators, rules.
 */

static bool build_arg(struct compiler *c, struct crit *cr, const struct mg_ynode *v,
                      const struct mg_ynode *key, const char *sub, size_t sub_len)
{
    const struct mg_ynode *ptr_v = NULL;
    if (v->kind == MG_YNODE_MAP)
        for (size_t i = 0; i + 1 < v->n_kids; i += 2)
            if (key_is(v->kids[i], "pointer"))
                ptr_v = v->kids[i + 1];
    if (sub && ptr_v) {
        err(c, ptr_v, MG_EINVAL, cr->path,
            "give the JSON Pointer once: either 'mcp_argument/NAME' or 'pointer'");
        return false;
    }
    if (sub) {
        /* mcp_argument/a/b is the pointer /a/b: the '/' after the
         * criterion's name is the pointer's own. */
        char buf[MG_POLICY_MAX_STRING + 1];
        if (sub_len >= MG_POLICY_MAX_STRING) {
            err(c, key, MG_ELIMIT, cr->path, "the JSON Pointer is too long");
            return false;
        }
        buf[0] = '/';
        memcpy(buf + 1, sub, sub_len);
        if (!parse_pointer(c, cr, key, buf, sub_len + 1))
            return false;
    } else if (ptr_v) {
        if (ptr_v->kind != MG_YNODE_SCALAR || ptr_v->len > MG_POLICY_MAX_STRING) {
            err(c, ptr_v, MG_EINVAL, cr->path, "'pointer' takes a JSON Pointer such as /sql");
            return false;
        }
        if (!parse_pointer(c, cr, ptr_v, ptr_v->str, ptr_v->len))
            return false;
    } else {
        err(c, key, MG_EINVAL, cr->path,
            "'mcp_argument' needs a JSON Pointer: 'mcp_argument/NAME: MATCHER' or a mapping "
            "with 'pointer: /NAME'");
        return false;
    }
    return build_matcher(c, cr, v, MF_ARG, "pointer");
}

static bool is_false_scalar(const struct mg_ynode *v)
{
    bool b;
    return is_yaml_bool(v, &b) && !b;
}

static void push_crit(struct compiler *c, const struct crit *cr)
{
    struct mg_policy *p = c->p;
    if (p->n_crits == c->crits_cap) {
        c->crits_cap = c->crits_cap ? c->crits_cap * 2 : 64;
        p->crits = mg_xrealloc(p->crits, c->crits_cap * sizeof *p->crits);
    }
    p->crits[p->n_crits++] = *cr;
}

static bool compile_crit(struct compiler *c, const struct mg_ynode *n, const char *path)
{
    const struct mg_ynode *k, *v;
    const struct crit_def *def = NULL;
    const char *slash, *sub = NULL;
    size_t name_len, sub_len = 0;
    struct crit cr;
    struct mg_quoted q;
    bool ok = true;

    if (n->kind != MG_YNODE_MAP || n->n_kids != 2) {
        err(c, n, MG_EINVAL, path,
            "a criterion is a mapping with exactly one key, such as '- email: "
            "{is: ann@example.com}', not %s",
            n->kind == MG_YNODE_MAP ? (n->n_kids ? "several keys" : "an empty mapping")
                                    : kind_desc(n));
        return false;
    }
    k = n->kids[0];
    v = n->kids[1];
    slash = memchr(k->str, '/', k->len);
    name_len = slash ? (size_t)(slash - k->str) : k->len;
    if (slash) {
        sub = slash + 1;
        sub_len = k->len - name_len - 1;
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(crit_defs); i++)
        if (mg_str_eq(k->str, name_len, crit_defs[i].name)) {
            def = &crit_defs[i];
            break;
        }
    if (def == NULL) {
        const char *hint = suggest(k->str, name_len);
        if (mg_str_eq(k->str, k->len, "and") || mg_str_eq(k->str, k->len, "or") ||
            mg_str_eq(k->str, k->len, "not") || mg_str_eq(k->str, k->len, "nor")) {
            err(c, k, MG_EINVAL, path,
                "operators do not nest in Pomerium Policy Language: write several rules "
                "instead (allow rules are OR'ed with each other)");
            return false;
        }
        for (size_t i = 0; i < MG_ARRAY_LEN(unsupported_crits); i++)
            if (mg_str_eq(k->str, name_len, unsupported_crits[i])) {
                err(c, k, MG_EINVAL, path,
                    "'%s' is a Pomerium criterion that mcpgate does not support",
                    unsupported_crits[i]);
                return false;
            }
        if (hint)
            err(c, k, MG_EINVAL, path, "unknown criterion '%s' (did you mean '%s'?)",
                mg_quote(&q, k->str, name_len), hint);
        else
            err(c, k, MG_EINVAL, path, "unknown criterion '%s'", mg_quote(&q, k->str, name_len));
        return false;
    }
    if (def->sub == SUB_NO && slash) {
        err(c, k, MG_EINVAL, path, "'%s' takes no sub-path ('/...')", def->name);
        return false;
    }
    if (def->sub == SUB_REQUIRED && (!slash || sub_len == 0)) {
        err(c, k, MG_EINVAL, path, "'%s' needs a name: '%s/NAME'", def->name, def->name);
        return false;
    }
    if (slash && def->sub == SUB_OPTIONAL && sub_len == 0) {
        err(c, k, MG_EINVAL, path, "'%s/' needs a name after the '/'", def->name);
        return false;
    }

    memset(&cr, 0, sizeof cr);
    cr.kind = def->kind;
    cr.path = path;
    cr.line = k->line;
    cr.col = k->col;
    cr.fold = def->kind == CR_DOMAIN;

    switch (def->value) {
    case V_NONE:
        /* Pomerium ignores the value: "accept: false" still accepts. */
        cr.constant = def->kind == CR_ACCEPT   ? CONST_TRUE
                      : def->kind == CR_REJECT ? CONST_FALSE
                                               : CONST_UNKNOWN;
        if (def->kind != CR_REJECT && is_false_scalar(v))
            note(c, path, v,
                 def->kind == CR_ACCEPT
                     ? "the value of 'accept' is ignored: 'accept: false' still matches every "
                       "request (use 'reject')"
                     : "the value of 'authenticated_user' is ignored: 'false' still matches "
                       "every signed-in caller");
        break;
    case V_STRING: ok = build_matcher(c, &cr, v, MF_STRING, NULL); break;
    case V_LIST:
        ok = build_matcher(c, &cr, v, MF_LIST, NULL);
        if (ok && def->kind == CR_CLAIM) {
            if (sub_len > MG_POLICY_MAX_STRING) {
                err(c, k, MG_ELIMIT, path, "the claim name is too long");
                return false;
            }
            ok = parse_claim_path(c, &cr, k, sub, sub_len);
        }
        break;
    case V_IP: ok = build_ip(c, &cr, v); break;
    case V_DATE: ok = build_date(c, &cr, v); break;
    case V_DOW: ok = build_dow(c, &cr, v); break;
    case V_TOD: ok = build_tod(c, &cr, v); break;
    case V_ARG: ok = build_arg(c, &cr, v, k, sub, sub_len); break;
    default: MG_ASSERT(0);
    }
    if (!ok)
        return false;
    if (c->p->n_crits >= MG_POLICY_MAX_TOTAL) {
        if (!c->total_reported)
            err(c, k, MG_ELIMIT, path, "more than %d criteria in one policy", MG_POLICY_MAX_TOTAL);
        c->total_reported = true;
        return false;
    }
    push_crit(c, &cr);
    return true;
}

static void push_term(struct compiler *c, const struct term *t)
{
    struct mg_policy *p = c->p;
    struct term **arr = t->action == ACT_ALLOW ? &p->allow : &p->deny;
    uint32_t *n = t->action == ACT_ALLOW ? &p->n_allow : &p->n_deny;
    size_t *cap = t->action == ACT_ALLOW ? &c->allow_cap : &c->deny_cap;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *arr = mg_xrealloc(*arr, *cap * sizeof **arr);
    }
    (*arr)[(*n)++] = *t;
}

/* Bloom bits an and-term requires of the caller: a group it must have, a
 * single-valued attribute it must equal. Only exact (not case-folded)
 * comparisons qualify, since the caller's bloom hashes the bytes as they
 * are. */
static uint64_t term_need(struct compiler *c, struct term *t)
{
    uint64_t need = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        const struct crit *cr = &c->p->crits[t->first + i];
        bool listish = cr->kind == CR_GROUPS;
        bool stringish =
            !cr->fold && (cr->kind == CR_USER || cr->kind == CR_EMAIL || cr->kind == CR_CLIENT_ID ||
                          cr->kind == CR_MCP_METHOD || cr->kind == CR_MCP_TOOL ||
                          cr->kind == CR_MCP_PROMPT || cr->kind == CR_MCP_RESOURCE);
        if (!listish && !stringish)
            continue;
        for (uint8_t j = 0; j < cr->n_ops; j++) {
            const struct mop *op = &cr->ops[j];
            if ((listish && (op->kind == M_HAS || op->kind == M_LIST_IS)) ||
                (stringish && (op->kind == M_IS || (op->kind == M_IN && op->n == 1)))) {
                uint64_t bit = mg_policy__bloom(cr->kind, op->lits[0].hash);
                need |= bit;
                if (!(MG_POLICY__ITEM_KINDS >> cr->kind & 1))
                    t->need_caller |= bit;
                c->p->bloom_kinds |= 1u << cr->kind;
            }
        }
    }
    return need;
}

/* The name prefilter of an and-term (term.pre_*): the first criterion on
 * the MCP name compared exactly (not case-folded) with is or
 * starts_with. Every operator of a criterion must hold, so any one of them
 * is a necessary condition of the term. */
static void term_prefilter(const struct compiler *c, struct term *t)
{
    for (uint32_t i = 0; i < t->n; i++) {
        const struct crit *cr = &c->p->crits[t->first + i];
        if (cr->fold ||
            (cr->kind != CR_MCP_TOOL && cr->kind != CR_MCP_PROMPT && cr->kind != CR_MCP_RESOURCE))
            continue;
        for (uint8_t j = 0; j < cr->n_ops; j++) {
            const struct mop *op = &cr->ops[j];
            if (op->kind != M_IS && op->kind != M_STARTS_WITH)
                continue;
            const struct lit *l = &op->lits[0];
            size_t k = MG_MIN((size_t)l->len, sizeof t->pre_word);
            static const unsigned char ones[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
            t->pre_kind = (uint8_t)(cr->kind + 1);
            t->pre_exact = op->kind == M_IS;
            t->pre_full = l->len;
            t->pre_word = t->pre_mask = 0;
            memcpy(&t->pre_word, l->s, k);
            memcpy(&t->pre_mask, ones, k);
            return;
        }
    }
}

static void compile_body(struct compiler *c, const struct mg_ynode *k, const struct mg_ynode *v,
                         uint8_t action, const char *rpath)
{
    const char *aname = action == ACT_ALLOW ? "allow" : "deny";
    const char *bpath = fmt(c, "%s.%s", rpath, aname);
    if (v->kind != MG_YNODE_MAP) {
        err(c, v, MG_EINVAL, bpath, "'%s' takes a mapping of operators (and, or, not, nor), not %s",
            aname, kind_desc(v));
        return;
    }
    if (v->n_kids > 2)
        note(c, bpath, k,
             "several operators in one rule are OR'ed with each other (Pomerium semantics), "
             "not AND'ed; one operator per rule is clearer");
    for (size_t i = 0; i + 1 < v->n_kids; i += 2) {
        const struct mg_ynode *ok = v->kids[i], *ov = v->kids[i + 1];
        static const char *const ops[] = {"and", "or", "not", "nor"};
        struct term t = {.action = action};
        int op = -1;
        size_t errs_before = (size_t)c->n_errs;
        struct mg_quoted q;
        for (int j = 0; j < 4; j++)
            if (key_is(ok, ops[j]))
                op = j;
        if (op < 0) {
            err(c, ok, MG_EINVAL, bpath, "unknown operator '%s': expected and, or, not or nor",
                mg_quote(&q, ok->str, ok->len));
            continue;
        }
        t.op = (uint8_t)op;
        t.path = fmt(c, "%s.%s", bpath, ops[op]);
        t.line = ok->line;
        t.col = ok->col;
        if (ov->kind != MG_YNODE_SEQ) {
            err(c, ov, MG_EINVAL, t.path, "'%s' takes a list of criteria, not %s", ops[op],
                kind_desc(ov));
            continue;
        }
        if (ov->n_kids == 0) {
            /* Pomerium generates nothing for an empty list: it never
             * matches, even under not or nor. */
            note(c, t.path, ok,
                 "an empty operator never matches (Pomerium ignores it), whatever the "
                 "operator");
            continue;
        }
        if (ov->n_kids > MG_POLICY_MAX_CRITERIA) {
            err(c, ov, MG_ELIMIT, t.path, "%zu criteria; the limit is %d", ov->n_kids,
                MG_POLICY_MAX_CRITERIA);
            continue;
        }
        t.first = c->p->n_crits;
        for (size_t j = 0; j < ov->n_kids; j++)
            compile_crit(c, ov->kids[j], fmt(c, "%s[%zu]", t.path, j));
        if ((size_t)c->n_errs != errs_before)
            continue;
        t.n = c->p->n_crits - t.first;
        for (uint32_t j = 0; j < t.n; j++)
            t.item_dep |= MG_POLICY__ITEM_KINDS >> c->p->crits[t.first + j].kind & 1;
        if (t.op == OP_AND) {
            t.need = term_need(c, &t);
            term_prefilter(c, &t);
        }
        push_term(c, &t);
    }
}

static void compile_rule(struct compiler *c, const struct mg_ynode *n, const char *rpath)
{
    if (n->kind != MG_YNODE_MAP) {
        err(c, n, MG_EINVAL, rpath, "a rule is a mapping with 'allow' and/or 'deny', not %s",
            kind_desc(n));
        return;
    }
    if (n->n_kids == 0)
        note(c, rpath, n, "the rule has neither 'allow' nor 'deny': it does nothing");
    for (size_t i = 0; i + 1 < n->n_kids; i += 2) {
        const struct mg_ynode *k = n->kids[i], *v = n->kids[i + 1];
        struct mg_quoted q;
        if (key_is(k, "allow"))
            compile_body(c, k, v, ACT_ALLOW, rpath);
        else if (key_is(k, "deny"))
            compile_body(c, k, v, ACT_DENY, rpath);
        else
            err(c, k, MG_EINVAL, rpath, "unknown key '%s' in a rule: expected allow or deny",
                mg_quote(&q, k->str, k->len));
    }
}

int mg_policy_compile(const struct mg_ynode *n, const char *path_prefix,
                      const struct mg_policy_env *env, struct mg_policy **out,
                      mg_policy_fail_fn fail, void *ctx)
{
    struct compiler c = {.env = env, .fail = fail, .ctx = ctx};
    size_t plen;

    MG_ASSERT(n != NULL && fail != NULL);
    *out = NULL;
    c.p = mg_xcalloc(1, sizeof *c.p);
    if (path_prefix == NULL)
        path_prefix = "policy";
    plen = strlen(path_prefix);
    c.p->line = n->line;
    c.p->col = n->col;
    if (plen > MG_POLICY_MAX_PREFIX) {
        err(&c, n, MG_ELIMIT, "policy", "the policy's path is longer than %d bytes",
            MG_POLICY_MAX_PREFIX);
        goto done;
    }
    c.p->prefix = intern(&c, path_prefix, plen);
    if (n->kind == MG_YNODE_MAP) {
        c.p->n_rules = 1;
        compile_rule(&c, n, c.p->prefix);
    } else if (n->kind == MG_YNODE_SEQ) {
        if (n->n_kids > MG_POLICY_MAX_RULES) {
            err(&c, n, MG_ELIMIT, c.p->prefix, "%zu rules; the limit is %d", n->n_kids,
                MG_POLICY_MAX_RULES);
            goto done;
        }
        c.p->n_rules = (uint32_t)n->n_kids;
        for (size_t i = 0; i < n->n_kids; i++)
            compile_rule(&c, n->kids[i], fmt(&c, "%s[%zu]", c.p->prefix, i));
    } else {
        err(&c, n, MG_EINVAL, c.p->prefix,
            "a policy is a rule (a mapping with 'allow' and/or 'deny') or a list of rules, not "
            "%s",
            kind_desc(n));
    }
done:
    free(c.itab);
    if (c.n_errs) {
        mg_policy_free(c.p);
        return c.status ? c.status : MG_EINVAL;
    }
    *out = c.p;
    return MG_OK;
}

void mg_policy_free(struct mg_policy *p)
{
    struct arena_chunk *ch;
    if (p == NULL)
        return;
    for (uint32_t i = 0; i < p->n_zones; i++)
        mg_policy_tz_free(p->zones[i]);
    ch = p->arena;
    while (ch) {
        struct arena_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    free(p->allow);
    free(p->deny);
    free(p->crits);
    free(p->notes);
    free(p);
}

const char *mg_policy_path(const struct mg_policy *p)
{
    return p->prefix;
}

size_t mg_policy_n_rules(const struct mg_policy *p)
{
    return p->n_rules;
}
