/* JSON-RPC inspection; see jsonrpc.h. Duplicate keys are refused (a message
 * with two "method" members means different things to different parsers),
 * as is anything that is not a JSON-RPC 2.0 object. */
#include "mcp/jsonrpc.h"
#include "core/buf.h"

#include <jansson.h>

/* The MCP methods whose target the policy judges, and where it is. */
static const struct {
    const char *method;
    const char *key; /* in params */
    bool arguments;
} targeted[] = {
    {"tools/call", "name", true},
    {"prompts/get", "name", true},
    {"resources/read", "uri", false},
    {"resources/subscribe", "uri", false},
    {"resources/unsubscribe", "uri", false},
};

/* Fills msg's target. A targeted method whose target is missing or not a
 * string, or whose arguments are not an object, is ambiguous: refused. */
static bool target_of(json_t *m, const char *method, struct mg_jsonrpc_msg *msg,
                      struct mg_jsonrpc_info *out)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(targeted); i++) {
        if (strcmp(method, targeted[i].method) != 0)
            continue;
        json_t *params = json_object_get(m, "params");
        json_t *t = json_object_get(params, targeted[i].key);
        if (!json_is_object(params) || !json_is_string(t) ||
            strlen(json_string_value(t)) != json_string_length(t)) {
            out->error = strcmp(targeted[i].key, "name") == 0
                             ? "params.name must be a string for this method"
                             : "params.uri must be a string for this method";
            return false;
        }
        msg->name = json_string_value(t);
        if (targeted[i].arguments) {
            json_t *a = json_object_get(params, "arguments");
            if (a && !json_is_object(a)) {
                out->error = "params.arguments must be an object";
                return false;
            }
            msg->arguments = a;
        }
        return true;
    }
    return true;
}

/* Keeps the body's first method (truncated) for logs. */
static void first_method(struct mg_jsonrpc_info *out, const char *name)
{
    if (out->method[0] != '\0')
        return;
    snprintf(out->method, sizeof out->method, "%s", name);
    /* Cut at a character boundary: the method lands in JSON logs. */
    size_t n = strlen(out->method);
    if (n < strlen(name)) {
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
            n--;
        out->method[n] = '\0';
    }
}

static bool check_message(json_t *m, struct mg_jsonrpc_info *out, bool first_req, bool as_real)
{
    struct mg_jsonrpc_msg *msg = &out->msgs[out->n_messages];
    if (!json_is_object(m)) {
        out->error = "message is not a JSON object";
        return false;
    }
    json_t *v = json_object_get(m, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
        out->error = "jsonrpc must be \"2.0\"";
        return false;
    }
    json_t *method = json_object_get(m, "method");
    json_t *id = json_object_get(m, "id");
    if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id) &&
        !json_is_real(id)) {
        out->error = "id must be a string or a number";
        return false;
    }
    if (method) {
        if (!json_is_string(method)) {
            out->error = "method must be a string";
            return false;
        }
        if (id)
            out->n_requests++;
        else
            out->n_notifications++;
        const char *name = json_string_value(method);
        if (strlen(name) != json_string_length(method)) {
            out->error = "method must not contain NUL";
            return false;
        }
        msg->kind = id ? MG_JSONRPC_REQUEST : MG_JSONRPC_NOTIFICATION;
        msg->method = name;
        msg->id = id;
        if (strcmp(name, "initialize") == 0)
            out->has_initialize = true;
        first_method(out, name);
        if (id && first_req && out->id_json == NULL) {
            /* Numbers were read as doubles only if some integer overflowed:
             * an integral id still prints as the integer it was. */
            double d = json_is_real(id) ? json_real_value(id) : 0.5;
            /* Range first: converting a double outside long long is UB. */
            if (as_real && json_is_real(id) && d > -9007199254740992.0 && d < 9007199254740992.0 &&
                d == (double)(long long)d) {
                json_t *i = json_integer((json_int_t)d);
                out->id_json = json_dumps(i, JSON_ENCODE_ANY | JSON_COMPACT);
                json_decref(i);
            } else {
                out->id_json = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
            }
        }
        if (!target_of(m, name, msg, out))
            return false;
    } else if (json_object_get(m, "result") || json_object_get(m, "error")) {
        if (!id) {
            out->error = "response without id";
            return false;
        }
        if (json_object_get(m, "result") && json_object_get(m, "error")) {
            out->error = "response with both result and error";
            return false;
        }
        out->n_responses++;
        msg->kind = MG_JSONRPC_RESPONSE;
        msg->id = id;
    } else {
        out->error = "message has neither method nor result/error";
        return false;
    }
    out->n_messages++;
    return true;
}

/* ---------------------------------------------------------------------------
 * The fast path: one pass over a single message, no tree. It answers only
 * when it is sure, and then exactly as the jansson path below would; on
 * anything else (a batch, a response, an escape in a key or in a string it
 * must read, a real id, deep nesting, a big object, any error) it declines
 * and the jansson path decides. The arguments, when there are any, are kept
 * flat when they are a small object of plain scalars (args.h: the policy and
 * the audit read those without a tree), else parsed by jansson from their
 * own bytes. This is on every request's path (bench/RESULTS.md, "Where the
 * time goes").
 */

#define FAST_MAX_DEPTH 32
#define FAST_MAX_KEYS  32 /* per object, for the duplicate check */

struct span {
    const char *p;
    size_t n;
};

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A string at s->p ('"'): its raw bytes between the quotes; *escaped if it
 * holds an escape. Declines control characters, bad UTF-8, \u0000 and
 * surrogate escapes (jansson refuses some of those, and decides the rest). */
static bool scan_string(struct scan *s, struct span *out, bool *escaped)
{
    const char *p = s->p + 1;
    *escaped = false;
    for (;;) {
        while (p < s->end && (unsigned char)*p >= 0x20 && *p != '"' && *p != '\\' &&
               (unsigned char)*p < 0x80)
            p++;
        if (p >= s->end)
            return false;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            *escaped = true;
            if (p + 1 >= s->end)
                return false;
            char e = p[1];
            if (e == 'u') {
                int v = 0;
                if (s->end - p < 6)
                    return false;
                for (int i = 2; i < 6; i++) {
                    int h = hexval(p[i]);
                    if (h < 0)
                        return false;
                    v = v * 16 + h;
                }
                if (v == 0 || (v >= 0xD800 && v <= 0xDFFF))
                    return false;
                p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                p += 2;
            } else {
                return false;
            }
            continue;
        }
        size_t l = mg_utf8_seq_len((const unsigned char *)p, (size_t)(s->end - p));
        if (l == 0)
            return false;
        p += l;
    }
    out->p = s->p + 1;
    out->n = (size_t)(p - out->p);
    s->p = p + 1;
    return true;
}

/* A number: JSON's grammar, without an exponent. *is_int with *v when it
 * is an integer that fits int64 (a bigger one declines: jansson reads it
 * otherwise). */
static bool scan_number(struct scan *s, bool *is_int, int64_t *v)
{
    const char *p = s->p;
    bool neg = false, frac = false;
    uint64_t mag = 0;
    if (p < s->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= s->end || *p < '0' || *p > '9')
        return false;
    if (*p == '0') {
        p++;
    } else {
        while (p < s->end && *p >= '0' && *p <= '9') {
            if (mag > (UINT64_MAX - 9) / 10)
                return false;
            mag = mag * 10 + (uint64_t)(*p - '0');
            p++;
        }
    }
    if (p < s->end && *p == '.') {
        frac = true;
        p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return false;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    /* An exponent may overflow a double, which jansson refuses: its call. */
    if (p < s->end && (*p == 'e' || *p == 'E'))
        return false;
    *is_int = !frac;
    if (!frac) {
        if (mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
            return false;
        *v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    s->p = p;
    return true;
}

static bool scan_literal(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool scan_value(struct scan *s, int depth);

/* After a member or element: 1 if a ',' says another follows, 0 if close
 * ends the container, -1 for anything else. */
static int after_value(struct scan *s, char close)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        skip_ws(s);
        return 1;
    }
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    return -1;
}

/* Keys seen in one object: a key with an escape, or more keys than fit,
 * declines (the duplicate check compares raw bytes). */
struct keyset {
    struct span k[FAST_MAX_KEYS];
    size_t n;
};

static bool add_key(struct keyset *ks, const struct span *k, bool escaped)
{
    if (escaped || ks->n == FAST_MAX_KEYS)
        return false;
    for (size_t i = 0; i < ks->n; i++)
        if (ks->k[i].n == k->n && memcmp(ks->k[i].p, k->p, k->n) == 0)
            return false;
    ks->k[ks->n++] = *k;
    return true;
}

/* An object at s->p ('{'). For each member, member(ctx, key, s) reads the
 * value (s->p at it) or leaves it NULL for scan_value. */
typedef bool (*member_fn)(void *ctx, const struct span *key, struct scan *s, int depth);

static bool scan_object(struct scan *s, int depth, member_fn member, void *ctx)
{
    struct keyset ks;
    ks.n = 0;
    if (depth > FAST_MAX_DEPTH)
        return false;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        struct span k;
        bool esc;
        if (s->p >= s->end || *s->p != '"' || !scan_string(s, &k, &esc) || !add_key(&ks, &k, esc))
            return false;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        skip_ws(s);
        if (!(member ? member(ctx, &k, s, depth) : scan_value(s, depth + 1)))
            return false;
        int next = after_value(s, '}');
        if (next <= 0)
            return next == 0;
    }
}

static bool scan_value(struct scan *s, int depth)
{
    struct span sp;
    bool esc, is_int;
    int64_t v;
    if (s->p >= s->end || depth > FAST_MAX_DEPTH)
        return false;
    switch (*s->p) {
    case '{': return scan_object(s, depth, NULL, NULL);
    case '[':
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return true;
        }
        for (;;) {
            if (!scan_value(s, depth + 1))
                return false;
            int next = after_value(s, ']');
            if (next <= 0)
                return next == 0;
        }
    case '"': return scan_string(s, &sp, &esc);
    case 't': return scan_literal(s, "true", 4);
    case 'f': return scan_literal(s, "false", 5);
    case 'n': return scan_literal(s, "null", 4);
    default: return scan_number(s, &is_int, &v);
    }
}

static bool key_is(const struct span *k, const char *lit)
{
    size_t n = strlen(lit);
    return k->n == n && memcmp(k->p, lit, n) == 0;
}

/* What the fast path reads of a message. */
struct fast_msg {
    bool has_jsonrpc, has_method, has_id, has_params, params_object, has_name, has_uri, has_args;
    bool jsonrpc_ok, id_null, id_int;
    bool args_flat; /* the arguments are an object of plain scalars, all in *flat */
    int64_t id_value;
    struct span method, id_str, name, uri, args;
    struct mg_args_flat *flat; /* the info's own storage */
};

static bool read_raw_string(struct scan *s, struct span *out)
{
    bool esc;
    return s->p < s->end && *s->p == '"' && scan_string(s, out, &esc) && !esc;
}

/* A member of params.arguments. A plain scalar (args.h) is noted in the
 * flat form; anything else, or a ninth member, leaves the arguments to
 * jansson. Either way the value is scanned exactly as scan_value would. */
static bool args_member(void *ctx, const struct span *k, struct scan *s, int depth)
{
    struct fast_msg *m = ctx;
    struct mg_args_flat *f = m->flat;
    if (!m->args_flat || f->n == MG_ARGS_FLAT_MAX || s->p >= s->end || *s->p == '{' ||
        *s->p == '[') {
        m->args_flat = false;
        return scan_value(s, depth + 1);
    }
    if (depth + 1 > FAST_MAX_DEPTH) /* scan_value's own check */
        return false;
    struct mg_arg *a = &f->m[f->n];
    switch (*s->p) {
    case '"': {
        struct span v;
        bool esc;
        if (!scan_string(s, &v, &esc))
            return false;
        if (esc) { /* jansson's to decode */
            m->args_flat = false;
            return true;
        }
        a->type = MG_ARG_STRING;
        a->s = v.p;
        a->s_len = v.n;
        break;
    }
    case 't':
        a->type = MG_ARG_TRUE;
        if (!scan_literal(s, "true", 4))
            return false;
        break;
    case 'f':
        a->type = MG_ARG_FALSE;
        if (!scan_literal(s, "false", 5))
            return false;
        break;
    case 'n':
        a->type = MG_ARG_NULL;
        if (!scan_literal(s, "null", 4))
            return false;
        break;
    default: {
        bool is_int;
        if (!scan_number(s, &is_int, &a->i))
            return false;
        if (!is_int) { /* a real: jansson reads it (its double, its text) */
            m->args_flat = false;
            return true;
        }
        a->type = MG_ARG_INT;
    }
    }
    a->key = k->p;
    a->key_len = k->n;
    f->n++;
    return true;
}

static bool params_member(void *ctx, const struct span *k, struct scan *s, int depth)
{
    struct fast_msg *m = ctx;
    const char *start = s->p;
    if (key_is(k, "name") && s->p < s->end && *s->p == '"') {
        m->has_name = true;
        return read_raw_string(s, &m->name);
    }
    if (key_is(k, "uri") && s->p < s->end && *s->p == '"') {
        m->has_uri = true;
        return read_raw_string(s, &m->uri);
    }
    if (key_is(k, "arguments")) {
        m->has_args = true;
        /* As scan_value would scan it, noting members on the way. */
        if (s->p < s->end && *s->p == '{') {
            m->args_flat = true;
            m->flat->n = 0;
            if (!scan_object(s, depth + 1, args_member, m))
                return false;
        } else if (!scan_value(s, depth + 1)) {
            return false;
        }
        m->args = (struct span){start, (size_t)(s->p - start)};
        return true;
    }
    return scan_value(s, depth + 1);
}

static bool message_member(void *ctx, const struct span *k, struct scan *s, int depth)
{
    struct fast_msg *m = ctx;
    if (key_is(k, "jsonrpc")) {
        struct span v;
        m->has_jsonrpc = true;
        if (!read_raw_string(s, &v))
            return false;
        m->jsonrpc_ok = v.n == 3 && memcmp(v.p, "2.0", 3) == 0;
        return true;
    }
    if (key_is(k, "method")) {
        m->has_method = true;
        return read_raw_string(s, &m->method);
    }
    if (key_is(k, "id")) {
        m->has_id = true;
        if (s->p < s->end && *s->p == '"')
            return read_raw_string(s, &m->id_str);
        if (s->p < s->end && *s->p == 'n') {
            m->id_null = true;
            return scan_literal(s, "null", 4);
        }
        m->id_int = true;
        bool is_int;
        return scan_number(s, &is_int, &m->id_value) && is_int;
    }
    if (key_is(k, "params")) {
        m->has_params = true;
        if (s->p < s->end && *s->p == '{') {
            m->params_object = true;
            return scan_object(s, depth + 1, params_member, m);
        }
        return scan_value(s, depth + 1);
    }
    /* result and error make it a response: the jansson path's. */
    if (key_is(k, "result") || key_is(k, "error"))
        return false;
    return scan_value(s, depth + 1);
}

/* The fast path; false: declined, out untouched but for its flat storage
 * (mg_jsonrpc_inspect_tree zeroes all of it). */
static bool inspect_fast(const char *body, size_t len, struct mg_jsonrpc_info *out)
{
    struct scan s = {body, body + len};
    struct fast_msg m;
    memset(&m, 0, sizeof m);
    m.flat = &out->flat;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || !scan_object(&s, 0, message_member, &m))
        return false;
    skip_ws(&s);
    if (s.p != s.end || !m.has_jsonrpc || !m.jsonrpc_ok || !m.has_method)
        return false;

    /* The target, as target_of() wants it; anything else is its to refuse. */
    const char *key = NULL;
    bool wants_args = false;
    for (size_t i = 0; i < MG_ARRAY_LEN(targeted); i++) {
        if (m.method.n == strlen(targeted[i].method) &&
            memcmp(m.method.p, targeted[i].method, m.method.n) == 0) {
            key = targeted[i].key;
            wants_args = targeted[i].arguments;
        }
    }
    const struct span *target = NULL;
    json_t *args = NULL, *id = NULL;
    bool flat = false;
    if (key) {
        target = strcmp(key, "name") == 0 ? &m.name : &m.uri;
        if (!m.params_object || !(strcmp(key, "name") == 0 ? m.has_name : m.has_uri))
            return false;
        if (wants_args && m.has_args && m.args_flat) {
            /* Validated by the scan as jansson would (UTF-8, no duplicate
             * key, no escape): the same object, without building it. */
            flat = true;
        } else if (wants_args && m.has_args) {
            args = json_loadb(m.args.p, m.args.n, JSON_REJECT_DUPLICATES, NULL);
            if (!json_is_object(args)) {
                json_decref(args);
                return false;
            }
        }
    }
    if (m.has_id) {
        id = m.id_null  ? json_null()
             : m.id_int ? json_integer((json_int_t)m.id_value)
                        : json_stringn(m.id_str.p, m.id_str.n);
        MG_ASSERT(id != NULL);
    }

    /* The message: the same fields check_message() fills. Strings live in
     * out->strings (out->small when they fit); out owns id and arguments. */
    struct mg_jsonrpc_msg *msg = out->msgs = &out->one;
    size_t name_n = target ? target->n : 0;
    /* The id as json_dumps writes it: the string needs no escape (the
     * scanner took it raw), the integer is its decimal. */
    char idbuf[1 + MG_U64_DEC];
    const char *id_p = NULL;
    size_t id_n = 0;
    if (id) {
        if (m.id_null) {
            id_p = "null";
            id_n = 4;
        } else if (m.id_int) {
            uint64_t v = m.id_value < 0 ? 0 - (uint64_t)m.id_value : (uint64_t)m.id_value;
            char *d = mg_u64_dec(idbuf + 1, v); /* idbuf[0]: room for the sign */
            if (m.id_value < 0)
                *--d = '-';
            id_p = d;
            id_n = (size_t)(idbuf + 1 + MG_U64_DEC - d);
        } else {
            id_p = m.id_str.p;
            id_n = m.id_str.n + 2; /* with its quotes, added below */
        }
    }
    size_t need = m.method.n + 1 + name_n + 1 + (id ? id_n + 1 : 0);
    char *strs = need <= sizeof out->small ? out->small : mg_xmalloc(need);
    if (strs != out->small)
        out->strings = strs;
    memcpy(strs, m.method.p, m.method.n);
    strs[m.method.n] = '\0';
    msg->method = strs;
    char *w = strs + m.method.n + 1;
    if (target) {
        memcpy(w, target->p, name_n);
        w[name_n] = '\0';
        msg->name = w;
    }
    w += name_n + 1;
    if (id) {
        if (!m.id_null && !m.id_int) {
            w[0] = '"';
            memcpy(w + 1, m.id_str.p, m.id_str.n);
            w[id_n - 1] = '"';
        } else {
            memcpy(w, id_p, id_n);
        }
        w[id_n] = '\0';
        out->id_json = w;
        out->owned_id = id;
        msg->id = id;
    }
    if (args) {
        out->owned_args = args;
        msg->arguments = args;
    }
    if (flat)
        msg->args_flat = &out->flat;
    msg->kind = id ? MG_JSONRPC_REQUEST : MG_JSONRPC_NOTIFICATION;
    if (id)
        out->n_requests = 1;
    else
        out->n_notifications = 1;
    out->n_messages = 1;
    out->has_initialize = strcmp(msg->method, "initialize") == 0;
    first_method(out, msg->method);
    out->shape = MG_JSONRPC_SINGLE;
    return true;
}

void mg_jsonrpc_inspect(const char *body, size_t len, struct mg_jsonrpc_info *out)
{
    memset(out, 0, sizeof *out);
    if (!inspect_fast(body, len, out))
        mg_jsonrpc_inspect_tree(body, len, out);
}

void mg_jsonrpc_inspect_tree(const char *body, size_t len, struct mg_jsonrpc_info *out)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    bool as_real = false;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        as_real = true;
        /* An integer beyond int64 is valid JSON (RFC 8259 §6): read numbers
         * as doubles rather than call the message malformed. */
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    }
    if (root == NULL) {
        out->error = "body is not valid JSON";
        return;
    }
    if (json_is_array(root)) {
        size_t n = json_array_size(root);
        if (n == 0) {
            out->error = "empty batch";
            goto out;
        }
        if (n > MG_JSONRPC_MAX_BATCH) {
            out->error = "batch of more than 100 messages";
            goto out;
        }
        out->msgs = mg_xcalloc(n, sizeof *out->msgs);
        for (size_t i = 0; i < n; i++)
            if (!check_message(json_array_get(root, i), out, true, as_real))
                goto out;
        out->shape = MG_JSONRPC_BATCH;
    } else {
        out->msgs = mg_xcalloc(1, sizeof *out->msgs);
        if (check_message(root, out, true, as_real))
            out->shape = MG_JSONRPC_SINGLE;
    }
out:
    if (out->shape == MG_JSONRPC_INVALID) {
        /* A single message that parsed keeps its id for the error answer;
         * in a batch no one id speaks for the body. */
        if (root == NULL || json_is_array(root)) {
            free(out->id_json);
            out->id_json = NULL;
        }
        free(out->msgs);
        out->msgs = NULL;
        out->n_messages = 0;
        json_decref(root);
        return;
    }
    out->root = root;
}

void mg_jsonrpc_info_drop_body(struct mg_jsonrpc_info *info)
{
    for (size_t i = 0; i < info->n_messages; i++)
        info->msgs[i].args_flat = NULL;
    info->flat.n = 0;
}

void mg_jsonrpc_info_fini(struct mg_jsonrpc_info *info)
{
    /* The fast path's id_json lives in strings or small, its message in one. */
    bool fast = info->msgs == &info->one;
    free(info->strings);
    info->strings = NULL;
    if (!fast)
        free(info->id_json);
    info->id_json = NULL;
    if (!fast)
        free(info->msgs);
    info->msgs = NULL;
    json_decref(info->root);
    info->root = NULL;
    json_decref(info->owned_id);
    json_decref(info->owned_args);
    info->owned_id = info->owned_args = NULL;
}

static bool str_same(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

/* json_equal, except that numbers of different types differ: json_equal
 * calls 1 and 1.0 equal; the policy does not. */
static bool json_same(const json_t *a, const json_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_object(a)) {
        const char *k;
        size_t klen;
        json_t *x;
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_keylen_foreach((json_t *)a, k, klen, x)
        {
            if (!json_same(x, json_object_getn(b, k, klen)))
                return false;
        }
        return true;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* The arguments of two messages, flat or not, as the trees they stand for. */
static bool args_same(const struct mg_jsonrpc_msg *x, const struct mg_jsonrpc_msg *y)
{
    if ((x->arguments && x->args_flat) || (y->arguments && y->args_flat))
        return false; /* at most one of the two */
    json_t *a =
        x->args_flat ? mg_args_flat_tree(x->args_flat) : json_incref((json_t *)x->arguments);
    json_t *b =
        y->args_flat ? mg_args_flat_tree(y->args_flat) : json_incref((json_t *)y->arguments);
    bool same = json_same(a, b);
    json_decref(a);
    json_decref(b);
    return same;
}

bool mg_jsonrpc_info_same(const struct mg_jsonrpc_info *a, const struct mg_jsonrpc_info *b)
{
    if (a->shape != b->shape || a->n_messages != b->n_messages || a->n_requests != b->n_requests ||
        a->n_notifications != b->n_notifications || a->n_responses != b->n_responses ||
        strcmp(a->method, b->method) != 0 || !str_same(a->id_json, b->id_json) ||
        a->has_initialize != b->has_initialize || !str_same(a->error, b->error))
        return false;
    for (size_t i = 0; i < a->n_messages; i++) {
        const struct mg_jsonrpc_msg *x = &a->msgs[i], *y = &b->msgs[i];
        if (x->kind != y->kind || !str_same(x->method, y->method) || !str_same(x->name, y->name) ||
            !json_same(x->id, y->id) || !args_same(x, y))
            return false;
    }
    return true;
}
