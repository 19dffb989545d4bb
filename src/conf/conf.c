/* The configuration loader. It turns YAML text into an immutable, reference-
 * counted struct mg_conf in two passes: libyaml's event API builds a small tree
 * whose every node remembers its line and column (refusing anchors, aliases,
 * tags, duplicate keys, deep nesting), then a schema walk fills the struct and
 * collects every error it can as "FILE:LINE:COL: message". It owns the URL,
 * duration and size syntaxes used by the configuration. Nothing here opens a
 * socket or any file other than the configuration itself. */
#include "conf/conf.h"
#include "conf/ytree.h"
#include "mcp/listfilter.h"
#include "policy/policy.h"
#include "core/buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* Bounds on untrusted-looking input: a configuration can arrive from a
 * generated file or a ConfigMap, and the loader must not be the weak part. */
#define CONF_MAX_BYTES  (1024 * 1024)
#define CONF_MAX_DEPTH  64
#define CONF_MAX_ROUTES 10000
#define CONF_MAX_ERRORS 50
#define CONF_MAX_URL    2048
/* A week: long enough for any idle session, short enough that adding it to a
 * monotonic clock can never overflow. */
#define CONF_MAX_TIMEOUT_MS (7ull * 24 * 3600 * 1000)

#define KIB 1024ull
#define MIB (1024ull * 1024)
#define GIB (1024ull * 1024 * 1024)

/* ---------------------------------------------------------------------------
 * Small syntaxes: hosts, URLs, listen addresses, durations, sizes.
 */

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}
static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static char *lower_dup(const char *s, size_t n)
{
    char *d = mg_xstrndup(s, n);
    for (size_t i = 0; i < n; i++)
        d[i] = to_lower(d[i]);
    return d;
}

static bool is_ipv4(const char *s, size_t n)
{
    char tmp[INET_ADDRSTRLEN];
    struct in_addr a;
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET, tmp, &a) == 1;
}

/* IPv6 literal without brackets. Zone ids ("%eth0") are refused: they are
 * meaningless in a Host header and would need percent-decoding in a URL. */
static bool is_ipv6(const char *s, size_t n, struct in6_addr *out)
{
    char tmp[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (n == 0 || n >= sizeof tmp || memchr(s, '%', n))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, &a) != 1)
        return false;
    if (out)
        *out = a;
    return true;
}

/* A DNS name or an IPv4 literal (RFC 3986 §3.2.2 reg-name, narrowed to what
 * resolvers accept plus '_' for container names). Anything made only of
 * digits and dots must be a real dotted quad, so "10.0.0.256" is not taken
 * for a host name. */
static const char *check_hostname(const char *h, size_t n)
{
    bool numeric = true;
    size_t label = 0;
    if (n == 0)
        return "missing host";
    if (n > 253)
        return "host name longer than 253 characters";
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0)
                return "empty label in host name";
            label = 0;
            continue;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
            return "invalid character in host name";
        if (!is_digit(c))
            numeric = false;
        if (++label > 63)
            return "host name label longer than 63 characters";
    }
    if (label == 0)
        return "host name ends with '.'";
    if (numeric && !is_ipv4(h, n))
        return "invalid IPv4 address";
    return NULL;
}

/* Parses a port of 1 to 5 decimal digits in 1..65535. */
static const char *parse_port(const char *s, size_t n, uint16_t *port)
{
    uint64_t v;
    if (n == 0)
        return "empty port";
    if (n > 5 || mg_parse_u64(s, n, &v) < 0)
        return "port must be a decimal number";
    if (v < 1 || v > 65535)
        return "port must be between 1 and 65535";
    *port = (uint16_t)v;
    return NULL;
}

/* Splits "host[:port]" or "[v6][:port]" (the authority without user info).
 * On success host_s and host_n point into s; port_s is NULL when absent. */
static const char *split_authority(const char *s, size_t n, const char **host_s, size_t *host_n,
                                   const char **port_s, size_t *port_n)
{
    const char *colon;
    *port_s = NULL;
    *port_n = 0;
    if (n == 0)
        return "missing host";
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return "unterminated '[' in IPv6 address";
        *host_s = s + 1;
        *host_n = (size_t)(close - s) - 1;
        if (!is_ipv6(*host_s, *host_n, NULL))
            return "invalid IPv6 address";
        colon = close + 1;
        if (colon < s + n && *colon != ':')
            return "unexpected characters after ']'";
        if (colon == s + n)
            return NULL;
    } else {
        colon = memchr(s, ':', n);
        *host_s = s;
        *host_n = colon ? (size_t)(colon - s) : n;
        if (colon && memchr(colon + 1, ':', (size_t)(s + n - colon - 1)))
            return "IPv6 addresses must be written in brackets, e.g. [::1]:8443";
        const char *why = check_hostname(*host_s, *host_n);
        if (why)
            return why;
        if (colon == NULL)
            return NULL;
    }
    *port_s = colon + 1;
    *port_n = (size_t)(s + n - *port_s);
    if (*port_n == 0)
        return "empty port";
    return NULL;
}

int mg_hostport_parse(const char *s, char **host, uint16_t *port)
{
    const char *hs, *ps;
    size_t hn, pn;
    uint16_t p = 0;
    if (s == NULL)
        return MG_EINVAL;
    if (split_authority(s, strlen(s), &hs, &hn, &ps, &pn) || ps == NULL || parse_port(ps, pn, &p))
        return MG_EINVAL;
    *host = lower_dup(hs, hn);
    *port = p;
    return MG_OK;
}

static bool is_path_char(char c)
{
    /* RFC 3986 pchar without pct-encoded, plus '/'. Percent-escapes are
     * refused: a prefix that can be spelled two ways cannot be matched
     * safely byte for byte. */
    return is_alpha(c) || is_digit(c) || (c && strchr("-._~!$&'()*+,;=:@/", c));
}

static const char *check_path(const char *p, size_t n)
{
    size_t seg = 0; /* start of the current segment, after its '/' */
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%')
            return "percent-escapes are not supported in paths";
        if (!is_path_char(p[i]))
            return "invalid character in path";
    }
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        size_t len = i - (seg + 1);
        if (len == 0 && i < n)
            return "empty path segment ('//')";
        if ((len == 1 && p[seg + 1] == '.') || (len == 2 && p[seg + 1] == '.' && p[seg + 2] == '.'))
            return "'.' and '..' path segments are not allowed";
        seg = i;
    }
    return NULL;
}

/* The worker behind mg_url_parse: on failure returns why (a static string)
 * and leaves *out zeroed. */
static const char *url_parse(const char *s, struct mg_url *out)
{
    static const struct {
        const char *scheme;
        uint16_t port;
    } schemes[] = {{"http", 80}, {"https", 443}, {"sse+http", 80}, {"sse+https", 443}};
    const char *p = s, *auth, *end, *hs, *ps;
    size_t hn, pn, path_n, si;
    uint16_t port = 0;
    const char *why;

    memset(out, 0, sizeof *out);
    if (s == NULL)
        return "missing URL";
    if (strlen(s) > CONF_MAX_URL)
        return "URL longer than 2048 characters";
    while (is_alpha(*p) || (p > s && (is_digit(*p) || *p == '+' || *p == '-' || *p == '.')))
        p++;
    if (p == s || p[0] != ':' || p[1] != '/' || p[2] != '/')
        return "expected scheme://host";
    for (si = 0; si < MG_ARRAY_LEN(schemes); si++)
        if (mg_str_ieq(s, (size_t)(p - s), schemes[si].scheme))
            break;
    if (si == MG_ARRAY_LEN(schemes))
        return "unsupported scheme (use http, https, sse+http or sse+https)";
    auth = p + 3;
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth)))
        return "user info ('user@') is not allowed in URLs";
    why = split_authority(auth, (size_t)(end - auth), &hs, &hn, &ps, &pn);
    if (why)
        return why;
    if (ps && (why = parse_port(ps, pn, &port)) != NULL)
        return why;
    if (strpbrk(end, "?#"))
        return "query strings and fragments are not allowed";
    path_n = strlen(end);
    if ((why = check_path(end, path_n)) != NULL)
        return why;
    if (path_n > 0 && end[path_n - 1] == '/')
        path_n--; /* "/mcp/" and "/mcp" name the same prefix; "/" is no prefix */

    out->scheme = mg_xstrdup(schemes[si].scheme);
    out->host = lower_dup(hs, hn);
    out->port_explicit = ps != NULL;
    out->port = ps ? port : schemes[si].port;
    out->path = mg_xstrndup(end, path_n);
    return NULL;
}

int mg_url_parse(const char *s, struct mg_url *out)
{
    return url_parse(s, out) ? MG_EINVAL : MG_OK;
}

void mg_url_fini(struct mg_url *u)
{
    if (u == NULL)
        return;
    free(u->scheme);
    free(u->host);
    free(u->path);
    memset(u, 0, sizeof *u);
}

/* Digits then a unit; MG_EINVAL for syntax, MG_ELIMIT for overflow. */
static int parse_scaled(const char *s, const char *const *units, const uint64_t *mults,
                        size_t n_units, uint64_t bare, bool leading_zero_ok, uint64_t *out)
{
    size_t nd = 0;
    uint64_t v, mult = 0;
    int rc;
    if (s == NULL)
        return MG_EINVAL;
    while (is_digit(s[nd]))
        nd++;
    if (nd == 0)
        return MG_EINVAL;
    if (!leading_zero_ok && nd > 1 && s[0] == '0')
        return MG_EINVAL;
    if (s[nd] == '\0') {
        mult = bare;
    } else {
        for (size_t i = 0; i < n_units; i++)
            if (strcmp(s + nd, units[i]) == 0)
                mult = mults[i];
        if (mult == 0)
            return MG_EINVAL;
    }
    if ((rc = mg_parse_u64(s, nd, &v)) < 0)
        return rc;
    if (v > UINT64_MAX / mult)
        return MG_ELIMIT;
    *out = v * mult;
    return MG_OK;
}

int mg_duration_parse(const char *s, uint64_t *ms)
{
    static const char *const units[] = {"ms", "s", "m", "h"};
    static const uint64_t mults[] = {1, 1000, 60000, 3600000};
    return parse_scaled(s, units, mults, MG_ARRAY_LEN(units), 1000, true, ms);
}

/* Sizes: bytes, or binary multiples. "k" is 1024, never 1000: every size
 * here bounds a buffer, and buffers come in powers of two. */
static int size_parse(const char *s, uint64_t *bytes)
{
    static const char *const units[] = {"k", "KiB", "m", "MiB", "g", "GiB"};
    static const uint64_t mults[] = {KIB, KIB, MIB, MIB, GIB, GIB};
    return parse_scaled(s, units, mults, MG_ARRAY_LEN(units), 1, false, bytes);
}

/* ---------------------------------------------------------------------------
 * Errors.
 */

struct loader {
    const char *name;
    const char *text;
    size_t len;
    struct mg_buf errs;
    size_t n_errs;
    int status; /* of the first error */
};

__attribute__((format(printf, 5, 0))) static void failv(struct loader *ld, int status, int line,
                                                        int col, const char *fmt, va_list ap)
{
    char msg[512];
    if (ld->n_errs++ == 0)
        ld->status = status;
    if (ld->n_errs > CONF_MAX_ERRORS + 1)
        return;
    if (ld->errs.len)
        mg_buf_append(&ld->errs, "\n", 1);
    if (ld->n_errs == CONF_MAX_ERRORS + 1) {
        mg_buf_appendf(&ld->errs, "%s:%d:%d: too many errors; stopping here", ld->name, line, col);
        return;
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    mg_buf_appendf(&ld->errs, "%s:%d:%d: %s", ld->name, line, col, msg);
}

__attribute__((format(printf, 5, 6))) static void fail(struct loader *ld, int status, int line,
                                                       int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(ld, status, line, col, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------
 * Pass 1: YAML events to a tree of nodes with positions.
 */

__attribute__((format(printf, 3, 4))) static void
fail_at(struct loader *ld, const struct mg_ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(ld, MG_EINVAL, n->line, n->col, fmt, ap);
    va_end(ap);
}

static struct mg_ynode *node_new(enum mg_ynode_kind kind, const yaml_mark_t *m)
{
    struct mg_ynode *n = mg_xcalloc(1, sizeof *n);
    n->kind = kind;
    /* libyaml marks are 0-based; a 1 MiB file keeps them far below INT_MAX. */
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

static void node_free(struct mg_ynode *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

static void node_add(struct mg_ynode *parent, struct mg_ynode *kid)
{
    if (parent->n_kids == parent->kids_cap) {
        parent->kids_cap = parent->kids_cap ? parent->kids_cap * 2 : 8;
        parent->kids = mg_xrealloc(parent->kids, parent->kids_cap * sizeof *parent->kids);
    }
    parent->kids[parent->n_kids++] = kid;
}

bool mg_ynode_is_null(const struct mg_ynode *n)
{
    /* YAML 1.2 core schema nulls; a quoted "null" is a string. */
    return n->kind == MG_YNODE_SCALAR && n->plain &&
           (n->len == 0 || mg_str_eq(n->str, n->len, "~") || mg_str_eq(n->str, n->len, "null") ||
            mg_str_eq(n->str, n->len, "Null") || mg_str_eq(n->str, n->len, "NULL"));
}

struct key_ref {
    const struct mg_ynode *key;
    size_t index;
};

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    if (x->key->len != y->key->len)
        return x->key->len < y->key->len ? -1 : 1;
    int c = memcmp(x->key->str, y->key->str, x->key->len);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Duplicate keys: YAML 1.2 forbids them and libyaml does not check. Sorting
 * keeps a hostile 100,000-key mapping at n log n. */
static void check_duplicate_keys(struct loader *ld, const struct mg_ynode *map)
{
    size_t n = map->n_kids / 2;
    struct key_ref *refs;
    if (n < 2)
        return;
    refs = mg_xcalloc(n, sizeof *refs);
    for (size_t i = 0; i < n; i++) {
        refs[i].key = map->kids[2 * i];
        refs[i].index = i;
    }
    qsort(refs, n, sizeof *refs, key_ref_cmp);
    for (size_t i = 1; i < n; i++) {
        const struct mg_ynode *a = refs[i - 1].key, *b = refs[i].key;
        struct mg_quoted q;
        if (a->len == b->len && memcmp(a->str, b->str, a->len) == 0)
            fail_at(ld, b, "duplicate key '%s' (first at line %d)", mg_quote(&q, b->str, b->len),
                    a->line);
    }
    free(refs);
}

static void yaml_error(struct loader *ld, const yaml_parser_t *p)
{
    int line = 1, col = 1;
    if (p->error == YAML_MEMORY_ERROR) {
        fail(ld, MG_ENOMEM, 1, 1, "out of memory while parsing YAML");
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark. */
        for (size_t i = 0; i < p->problem_offset && i < ld->len; i++) {
            if (ld->text[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)ld->text[i] & 0xc0) != 0x80) {
                col++;
            }
        }
        fail(ld, MG_EINVAL, line, col, "invalid input: %s", p->problem ? p->problem : "unreadable");
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        fail(ld, MG_EINVAL, line, col, "YAML syntax error: %s (%s at line %d)",
             p->problem ? p->problem : "error", p->context, (int)p->context_mark.line + 1);
    else
        fail(ld, MG_EINVAL, line, col, "YAML syntax error: %s", p->problem ? p->problem : "error");
}

struct tree_builder {
    struct mg_ynode *stack[CONF_MAX_DEPTH];
    size_t depth;
    struct mg_ynode *root;
    int n_docs;
};

/* Feeds one event; returns 1 at the end of the stream, 0 to go on, or a
 * negative status after reporting an error that leaves no usable tree. */
static int tree_event(struct loader *ld, struct tree_builder *tb, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    struct mg_ynode *n = NULL;
    const yaml_char_t *anchor = NULL, *tag = NULL;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT: return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++tb->n_docs > 1) {
            fail(ld, MG_EINVAL, (int)m->line + 1, (int)m->column + 1,
                 "only one YAML document is allowed");
            return MG_EINVAL;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        /* Aliases make a file say one thing in two places and enable
         * billion-laughs expansion; a security configuration is better
         * repetitive than clever. */
        fail(ld, MG_EINVAL, (int)m->line + 1, (int)m->column + 1,
             "YAML aliases ('*name') are not allowed; repeat the value instead");
        return MG_EINVAL;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        MG_ASSERT(tb->depth > 0);
        tb->depth--;
        if (ev->type == YAML_MAPPING_END_EVENT)
            check_duplicate_keys(ld, tb->stack[tb->depth]);
        return 0;
    default: return 0;
    }

    if (anchor) {
        fail(ld, MG_EINVAL, (int)m->line + 1, (int)m->column + 1,
             "YAML anchors ('&name') are not allowed");
        return MG_EINVAL;
    }
    if (tag) {
        /* Tags would let a value change type behind the schema's back. */
        fail(ld, MG_EINVAL, (int)m->line + 1, (int)m->column + 1,
             "YAML tags ('!tag') are not allowed");
        return MG_EINVAL;
    }

    if (ev->type == YAML_SCALAR_EVENT) {
        n = node_new(MG_YNODE_SCALAR, m);
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->str = mg_xmalloc(n->len + 1);
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        if (memchr(n->str, '\0', n->len)) {
            /* "\0" in a double-quoted string: C strings cannot carry it. */
            fail_at(ld, n, "NUL characters are not allowed");
            node_free(n);
            return MG_EINVAL;
        }
    } else {
        if (tb->depth == CONF_MAX_DEPTH) {
            fail(ld, MG_ELIMIT, (int)m->line + 1, (int)m->column + 1,
                 "nesting deeper than %d levels", CONF_MAX_DEPTH);
            return MG_ELIMIT;
        }
        n = node_new(ev->type == YAML_MAPPING_START_EVENT ? MG_YNODE_MAP : MG_YNODE_SEQ, m);
    }

    if (tb->depth == 0) {
        MG_ASSERT(tb->root == NULL);
        tb->root = n;
    } else {
        struct mg_ynode *parent = tb->stack[tb->depth - 1];
        if (parent->kind == MG_YNODE_MAP && parent->n_kids % 2 == 0 && n->kind != MG_YNODE_SCALAR) {
            fail_at(ld, n, "mapping keys must be strings, not %s",
                    n->kind == MG_YNODE_MAP ? "mappings" : "lists");
            node_free(n);
            return MG_EINVAL;
        }
        node_add(parent, n);
    }
    if (n->kind != MG_YNODE_SCALAR)
        tb->stack[tb->depth++] = n;
    return 0;
}

/* Returns the root (NULL for an empty document) or a negative status. */
static int tree_build(struct loader *ld, struct mg_ynode **root)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct tree_builder tb = {.depth = 0};
    size_t errs_before = ld->n_errs;
    int rc = 0;

    *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        fail(ld, MG_ENOMEM, 1, 1, "out of memory");
        return MG_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text, ld->len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    while (rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_error(ld, &parser);
            rc = MG_EINVAL;
            break;
        }
        rc = tree_event(ld, &tb, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc < 0 || ld->n_errs != errs_before) {
        node_free(tb.root);
        return rc < 0 ? rc : MG_EINVAL;
    }
    *root = tb.root;
    return MG_OK;
}

int mg_ytree_parse(const char *name, const char *text, size_t len, struct mg_ynode **root,
                   char **err)
{
    struct loader ld = {.name = name ? name : "(yaml)", .text = text ? text : "", .len = len};
    int rc;

    *root = NULL;
    if (err)
        *err = NULL;
    if (text == NULL)
        ld.len = 0;
    mg_buf_init(&ld.errs, 64 * 1024);
    if (ld.len > CONF_MAX_BYTES)
        fail(&ld, MG_ELIMIT, 1, 1, "the document is %zu bytes; the limit is 1 MiB", ld.len);
    else if (tree_build(&ld, root) == 0 && *root == NULL)
        fail(&ld, MG_EINVAL, 1, 1, "the document is empty");
    if (ld.n_errs == 0) {
        rc = MG_OK;
    } else {
        node_free(*root);
        *root = NULL;
        rc = ld.status;
        if (err)
            *err = mg_buf_steal(&ld.errs, NULL);
    }
    mg_buf_fini(&ld.errs);
    return rc;
}

void mg_ytree_free(struct mg_ynode *root)
{
    node_free(root);
}

/* ---------------------------------------------------------------------------
 * Pass 2: typed values. Each getter reports its own error, naming the key,
 * and returns false; on success it replaces *out (freeing a default).
 */

static bool key_is(const struct mg_ynode *k, const char *name)
{
    return mg_str_eq(k->str, k->len, name);
}

static bool key_in(const struct mg_ynode *k, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (key_is(k, names[i]))
            return true;
    return false;
}

static const char *kind_desc(const struct mg_ynode *n)
{
    if (n->kind == MG_YNODE_SEQ)
        return "a list";
    if (n->kind == MG_YNODE_MAP)
        return "a mapping";
    return mg_ynode_is_null(n) ? "empty" : "a string";
}

/* Key names printed by the getters come from the schema once matched, but
 * may be user text (env names, header names); quote them all the same. */
static bool want_scalar(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                        const char *what)
{
    struct mg_quoted q;
    if (v->kind != MG_YNODE_SCALAR) {
        fail_at(ld, v, "'%s' must be %s, not %s", mg_quote(&q, k->str, k->len), what, kind_desc(v));
        return false;
    }
    if (mg_ynode_is_null(v)) {
        fail_at(ld, k, "'%s' has no value; expected %s", mg_quote(&q, k->str, k->len), what);
        return false;
    }
    return true;
}

static bool want_kind(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                      enum mg_ynode_kind kind)
{
    struct mg_quoted q;
    const char *what = kind == MG_YNODE_MAP ? "a mapping" : "a list";
    if (v->kind == kind)
        return true;
    if (mg_ynode_is_null(v))
        fail_at(ld, k, "'%s' has no value; expected %s", mg_quote(&q, k->str, k->len), what);
    else
        fail_at(ld, v, "'%s' must be %s, not %s", mg_quote(&q, k->str, k->len), what, kind_desc(v));
    return false;
}

static bool get_string(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                       bool allow_empty, char **out)
{
    struct mg_quoted q;
    if (!want_scalar(ld, k, v, "a string"))
        return false;
    if (!allow_empty && v->len == 0) {
        fail_at(ld, v, "'%s' must not be empty", mg_quote(&q, k->str, k->len));
        return false;
    }
    free(*out);
    *out = mg_xstrndup(v->str, v->len);
    return true;
}

static bool get_bool(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                     bool *out)
{
    static const char *const yaml11[] = {"yes", "no", "on", "off", "y", "n"};
    struct mg_quoted q1, q2;
    const char *s = v->str;
    if (!want_scalar(ld, k, v, "true or false"))
        return false;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *out = false;
        return true;
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(yaml11); i++) {
        if (mg_str_ieq(s, v->len, yaml11[i])) {
            /* YAML 1.1 booleans; "no" has famously meant Norway, too. */
            fail_at(ld, v, "'%s': '%s' is not a boolean in YAML 1.2; write true or false",
                    mg_quote(&q1, k->str, k->len), mg_quote(&q2, s, v->len));
            return false;
        }
    }
    fail_at(ld, v, "'%s' must be true or false, not '%s'", mg_quote(&q1, k->str, k->len),
            mg_quote(&q2, s, v->len));
    return false;
}

static bool get_uint(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                     uint64_t min, uint64_t max, uint64_t *out)
{
    struct mg_quoted q;
    uint64_t n;
    if (!want_scalar(ld, k, v, "an integer"))
        return false;
    /* Decimal only, and no leading zeros: YAML 1.1 would read 010 as 8. */
    if ((v->len > 1 && v->str[0] == '0') || mg_parse_u64(v->str, v->len, &n) < 0 || n < min ||
        n > max) {
        fail_at(ld, v, "'%s' must be a decimal integer from %llu to %llu",
                mg_quote(&q, k->str, k->len), (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = n;
    return true;
}

static const char *size_str(char *buf, size_t cap, uint64_t n)
{
    if (n >= GIB && n % GIB == 0)
        snprintf(buf, cap, "%lluGiB", (unsigned long long)(n / GIB));
    else if (n >= MIB && n % MIB == 0)
        snprintf(buf, cap, "%lluMiB", (unsigned long long)(n / MIB));
    else if (n >= KIB && n % KIB == 0)
        snprintf(buf, cap, "%lluKiB", (unsigned long long)(n / KIB));
    else
        snprintf(buf, cap, "%llu", (unsigned long long)n);
    return buf;
}

static bool get_size(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                     uint64_t min, uint64_t max, size_t *out)
{
    struct mg_quoted q;
    char a[32], b[32];
    uint64_t n;
    int rc;
    if (!want_scalar(ld, k, v, "a size"))
        return false;
    rc = size_parse(v->str, &n);
    if (rc == MG_EINVAL) {
        fail_at(ld, v, "'%s' must be a size in bytes, e.g. 16384, 16KiB or 4MiB",
                mg_quote(&q, k->str, k->len));
        return false;
    }
    if (rc < 0 || n < min || n > max || n > SIZE_MAX) {
        fail_at(ld, v, "'%s' must be from %s to %s", mg_quote(&q, k->str, k->len),
                size_str(a, sizeof a, min), size_str(b, sizeof b, max));
        return false;
    }
    *out = (size_t)n;
    return true;
}

/* A duration from 1 ms to max_ms; max_text says max_ms for the error. */
static bool get_duration_upto(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                              uint64_t max_ms, const char *max_text, uint64_t *out)
{
    struct mg_quoted q;
    uint64_t ms;
    int rc;
    if (!want_scalar(ld, k, v, "a duration"))
        return false;
    rc = mg_duration_parse(v->str, &ms);
    if (rc == MG_EINVAL) {
        fail_at(ld, v, "'%s' must be a duration such as 250ms, 5s, 10m or 1h",
                mg_quote(&q, k->str, k->len));
        return false;
    }
    if (rc < 0 || ms < 1 || ms > max_ms) {
        fail_at(ld, v, "'%s' must be from 1ms to %s", mg_quote(&q, k->str, k->len), max_text);
        return false;
    }
    *out = ms;
    return true;
}

static bool get_duration(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                         uint64_t *out)
{
    return get_duration_upto(ld, k, v, CONF_MAX_TIMEOUT_MS, "168h", out);
}

/* A list of non-null strings; the array has one slot per item, NULL where
 * the item was wrong (and reported). */
static bool get_string_list(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                            char ***out, size_t *n_out)
{
    struct mg_quoted q;
    bool ok = true;
    if (!want_kind(ld, k, v, MG_YNODE_SEQ))
        return false;
    *out = mg_xcalloc(v->n_kids, sizeof **out);
    *n_out = v->n_kids;
    for (size_t i = 0; i < v->n_kids; i++) {
        const struct mg_ynode *it = v->kids[i];
        if (it->kind != MG_YNODE_SCALAR || mg_ynode_is_null(it)) {
            fail_at(ld, it, "items of '%s' must be strings, not %s", mg_quote(&q, k->str, k->len),
                    kind_desc(it));
            ok = false;
            continue;
        }
        (*out)[i] = mg_xstrndup(it->str, it->len);
    }
    return ok;
}

static void unknown_key(struct loader *ld, const struct mg_ynode *k, const char *where)
{
    struct mg_quoted q;
    fail_at(ld, k, "unknown key '%s' %s", mg_quote(&q, k->str, k->len), where);
}

/* ---------------------------------------------------------------------------
 * Freeing.
 */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void route_fini(struct mg_conf_route *r)
{
    free(r->name);
    free(r->from_raw);
    mg_url_fini(&r->from);
    free(r->to_raw);
    mg_url_fini(&r->to);
    free(r->stdio.command);
    free_strv(r->stdio.args, r->stdio.n_args);
    for (size_t i = 0; i < r->stdio.n_env; i++) {
        free(r->stdio.env[i].name);
        free(r->stdio.env[i].value);
    }
    free(r->stdio.env);
    free(r->stdio.cwd);
    free(r->tls_custom_ca_file);
    free(r->tls_server_name);
    free_strv(r->allowed_origins, r->n_allowed_origins);
    for (size_t i = 0; i < r->n_set_request_headers; i++) {
        free(r->set_request_headers[i].name);
        free(r->set_request_headers[i].value);
    }
    free(r->set_request_headers);
    free_strv(r->remove_request_headers, r->n_remove_request_headers);
    free_strv(r->scopes, r->n_scopes);
    mg_policy_free(r->policy);
    for (size_t i = 0; i < r->n_tool_classes; i++)
        free(r->tool_classes[i].tool);
    free(r->tool_classes);
}

static void identity_fini(struct mg_conf *c);

static void conf_free(struct mg_conf *c)
{
    identity_fini(c);
    mg_policy_free(c->policy);
    free(c->path);
    free(c->address);
    free(c->metrics_address);
    free(c->state_dir);
    for (size_t i = 0; i < c->n_certs; i++) {
        free(c->certs[i].cert_file);
        free(c->certs[i].key_file);
    }
    free(c->certs);
    free(c->tls_min_version);
    free(c->access_log);
    free(c->log_level);
    free(c->web_dir);
    free(c->audit.path);
    for (size_t i = 0; i < c->n_routes; i++)
        route_fini(&c->routes[i]);
    free(c->routes);
    free(c);
}

void mg_conf_ref(struct mg_conf *c)
{
    int old = atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    MG_ASSERT(old > 0);
}

void mg_conf_unref(struct mg_conf *c)
{
    if (c == NULL)
        return;
    /* acq_rel: the last owner must see every other owner's reads finished. */
    int old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    MG_ASSERT(old > 0);
    if (old == 1)
        conf_free(c);
}

/* The defaults documented in conf.h and docs/config.md. */
static struct mg_conf *conf_new(const char *name)
{
    struct mg_conf *c = mg_xcalloc(1, sizeof *c);
    atomic_init(&c->refs, 1);
    c->path = mg_xstrdup(name);
    c->address = mg_xstrdup("127.0.0.1:8443");
    c->state_dir = mg_xstrdup("./state");
    c->access_log = mg_xstrdup("stdout");
    c->log_level = mg_xstrdup("info");
    c->tls_min_version = mg_xstrdup("1.2");
    c->max_header_bytes = 16 * KIB;
    c->max_body_bytes = 4 * MIB;
    c->max_response_header_bytes = 64 * KIB;
    c->max_connections = 10000;
    c->worker_yield = true;
    c->max_stdio_children = 64;
    c->max_sessions = 1024;
    c->connect_timeout_ms = 5000;
    c->first_byte_timeout_ms = 300000;
    c->idle_timeout_ms = 60000;
    c->header_timeout_ms = 10000;
    c->body_timeout_ms = 30000;
    c->send_timeout_ms = 60000;
    c->session_idle_timeout_ms = 600000;
    c->stdio_kill_grace_ms = 5000;
    c->drain_timeout_ms = 30000;
    c->oauth.access_token_ttl_ms = 10 * 60000;
    c->oauth.refresh_token_ttl_ms = 168 * 3600000ULL;
    c->oauth.code_ttl_ms = 60000;
    c->oauth.session_ttl_ms = 8 * 3600000ULL;
    c->oauth.consent_ttl_ms = 168 * 3600000ULL;
    c->oauth.dynamic_registration = true;
    c->oauth.max_clients = 10000;
    c->oauth.registrations_per_minute = 30;
    c->oauth.client_metadata_documents = true;
    c->oauth.client_metadata_max_bytes = 64 * KIB;
    c->oauth.client_metadata_timeout_ms = 5000;
    c->oauth.builtin_accounts = true;
    c->oauth.max_failed_logins = 5;
    c->oauth.lockout_ms = 15 * 60000;
    c->audit.sink = MG_CONF_AUDIT_FILE;
    c->audit.arguments = MG_CONF_AUDIT_ARGS_REDACTED;
    c->audit.max_queue = 10000;
    c->audit.sync_interval_ms = MG_CONF_AUDIT_SYNC_INTERVAL_MS;
    return c;
}

/* ---------------------------------------------------------------------------
 * Sections.
 */

static void load_limits(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                        const struct mg_ynode *v)
{
    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    for (size_t i = 0; i < v->n_kids; i += 2) {
        const struct mg_ynode *lk = v->kids[i], *lv = v->kids[i + 1];
        uint64_t n;
        if (key_is(lk, "max_header_bytes"))
            get_size(ld, lk, lv, KIB, MIB, &c->max_header_bytes);
        else if (key_is(lk, "max_body_bytes"))
            get_size(ld, lk, lv, KIB, GIB, &c->max_body_bytes);
        else if (key_is(lk, "max_response_header_bytes"))
            get_size(ld, lk, lv, KIB, MIB, &c->max_response_header_bytes);
        else if (key_is(lk, "max_connections")) {
            if (get_uint(ld, lk, lv, 1, 1000000, &n))
                c->max_connections = (size_t)n;
        } else if (key_is(lk, "max_stdio_children")) {
            if (get_uint(ld, lk, lv, 1, 10000, &n))
                c->max_stdio_children = (size_t)n;
        } else if (key_is(lk, "max_sessions")) {
            if (get_uint(ld, lk, lv, 1, 1000000, &n))
                c->max_sessions = (size_t)n;
        } else
            unknown_key(ld, lk, "in limits");
    }
}

static void load_timeouts(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                          const struct mg_ynode *v)
{
    const struct {
        const char *name;
        uint64_t *field;
    } keys[] = {
        {"connect", &c->connect_timeout_ms},
        {"first_byte", &c->first_byte_timeout_ms},
        {"idle", &c->idle_timeout_ms},
        {"request_header", &c->header_timeout_ms},
        {"request_body", &c->body_timeout_ms},
        {"send", &c->send_timeout_ms},
        {"session_idle", &c->session_idle_timeout_ms},
        {"stdio_kill_grace", &c->stdio_kill_grace_ms},
        {"drain", &c->drain_timeout_ms},
    };
    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    for (size_t i = 0; i < v->n_kids; i += 2) {
        const struct mg_ynode *tk = v->kids[i], *tv = v->kids[i + 1];
        size_t j;
        for (j = 0; j < MG_ARRAY_LEN(keys); j++)
            if (key_is(tk, keys[j].name))
                break;
        if (j < MG_ARRAY_LEN(keys))
            get_duration(ld, tk, tv, keys[j].field);
        else
            unknown_key(ld, tk, "in timeouts");
    }
}

/* One {cert, key} pair, from `tls:` itself or an item of tls.certificates.
 * `where` names the mapping for unknown keys; NULL for `tls:`, whose other
 * keys the caller handles. */
static void load_cert_pair(struct loader *ld, const struct mg_ynode *map, struct mg_conf_cert *out,
                           const char *where, const struct mg_ynode **cert_k,
                           const struct mg_ynode **key_k)
{
    for (size_t i = 0; i < map->n_kids; i += 2) {
        const struct mg_ynode *k = map->kids[i], *v = map->kids[i + 1];
        if (key_is(k, "cert")) {
            *cert_k = k;
            get_string(ld, k, v, false, &out->cert_file);
        } else if (key_is(k, "key")) {
            *key_k = k;
            get_string(ld, k, v, false, &out->key_file);
        } else if (where) {
            unknown_key(ld, k, where);
        }
    }
}

static void load_tls(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                     const struct mg_ynode *v)
{
    const struct mg_ynode *cert_k = NULL, *key_k = NULL, *list_k = NULL, *list_v = NULL;
    struct mg_conf_cert one = {NULL, NULL};
    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    load_cert_pair(ld, v, &one, NULL, &cert_k, &key_k);
    for (size_t i = 0; i < v->n_kids; i += 2) {
        const struct mg_ynode *tk = v->kids[i], *tv = v->kids[i + 1];
        if (key_is(tk, "cert") || key_is(tk, "key")) {
            continue;
        } else if (key_is(tk, "certificates")) {
            list_k = tk;
            list_v = tv;
        } else if (key_is(tk, "min_version")) {
            if (get_string(ld, tk, tv, false, &c->tls_min_version) &&
                strcmp(c->tls_min_version, "1.2") != 0 && strcmp(c->tls_min_version, "1.3") != 0)
                fail_at(ld, tv, "'min_version' must be \"1.2\" or \"1.3\"");
        } else {
            unknown_key(ld, tk, "in tls");
        }
    }
    if ((cert_k || key_k) && list_k) {
        fail_at(ld, list_k, "use either 'cert' and 'key' or 'certificates' in tls, not both");
    } else if (cert_k && !key_k) {
        fail_at(ld, cert_k, "'cert' in tls needs a 'key'");
    } else if (key_k && !cert_k) {
        fail_at(ld, key_k, "'key' in tls needs a 'cert'");
    } else if (cert_k) {
        c->certs = mg_xcalloc(1, sizeof *c->certs);
        c->certs[0] = one;
        c->n_certs = 1;
        one.cert_file = one.key_file = NULL;
    } else if (list_k && want_kind(ld, list_k, list_v, MG_YNODE_SEQ)) {
        if (list_v->n_kids == 0)
            fail_at(ld, list_k, "'certificates' must list at least one certificate");
        c->certs = mg_xcalloc(list_v->n_kids, sizeof *c->certs);
        c->n_certs = list_v->n_kids;
        for (size_t i = 0; i < list_v->n_kids; i++) {
            const struct mg_ynode *it = list_v->kids[i];
            const struct mg_ynode *ck = NULL, *kk = NULL;
            if (it->kind != MG_YNODE_MAP) {
                fail_at(ld, it, "items of 'certificates' must be mappings with cert and key");
                continue;
            }
            load_cert_pair(ld, it, &c->certs[i], "in tls.certificates", &ck, &kk);
            if (!ck || !kk)
                fail_at(ld, it, "tls.certificates item is missing '%s'", ck ? "key" : "cert");
        }
    }
    free(one.cert_file);
    free(one.key_file);
}

static bool is_loopback_host(const char *h)
{
    struct in6_addr a6;
    if (strcmp(h, "localhost") == 0)
        return true;
    if (is_ipv4(h, strlen(h)))
        return strncmp(h, "127.", 4) == 0;
    return is_ipv6(h, strlen(h), &a6) && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* ---------------------------------------------------------------------------
 * Routes.
 */

static bool is_token_char(char c)
{
    /* RFC 9110 §5.6.2 tchar */
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Framing and hop-by-hop fields belong to the gateway's own HTTP layer
 * (RFC 9112 §6, RFC 9110 §7.6.1); letting a route rewrite them would open
 * request smuggling. */
static const char *const reserved_headers[] = {
    "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade",
    "TE",   "Trailer",        "Proxy-Connection",
};

static bool check_header_name(struct loader *ld, const struct mg_ynode *n, const char *what)
{
    struct mg_quoted q;
    bool ok = n->len > 0 && n->len <= 256;
    for (size_t i = 0; ok && i < n->len; i++)
        ok = is_token_char(n->str[i]);
    if (!ok) {
        fail_at(ld, n, "'%s' in %s is not a valid header name", mg_quote(&q, n->str, n->len), what);
        return false;
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(reserved_headers); i++) {
        if (mg_str_ieq(n->str, n->len, reserved_headers[i])) {
            fail_at(ld, n, "%s cannot change the '%s' header", what, reserved_headers[i]);
            return false;
        }
    }
    return true;
}

static int strcase_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcasecmp(x->key->str, y->key->str);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Header names differ only in case as far as HTTP is concerned. `stride` is
 * 2 for the keys of a mapping, 1 for the items of a list. */
static void check_header_duplicates(struct loader *ld, const struct mg_ynode *v, size_t stride,
                                    const char *what)
{
    size_t n = v->n_kids / stride, m = 0;
    struct key_ref *refs;
    if (n < 2)
        return;
    refs = mg_xcalloc(n, sizeof *refs);
    for (size_t i = 0; i < n; i++)
        if (v->kids[i * stride]->kind == MG_YNODE_SCALAR) {
            refs[m].key = v->kids[i * stride];
            refs[m].index = i;
            m++;
        }
    qsort(refs, m, sizeof *refs, strcase_ref_cmp);
    for (size_t i = 1; i < m; i++) {
        struct mg_quoted q;
        if (strcasecmp(refs[i - 1].key->str, refs[i].key->str) == 0)
            fail_at(ld, refs[i].key, "header '%s' appears twice in %s (first at line %d)",
                    mg_quote(&q, refs[i].key->str, refs[i].key->len), what, refs[i - 1].key->line);
    }
    free(refs);
}

static void load_set_headers(struct loader *ld, struct mg_conf_route *r, const struct mg_ynode *k,
                             const struct mg_ynode *v)
{
    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    r->n_set_request_headers = v->n_kids / 2;
    r->set_request_headers = mg_xcalloc(r->n_set_request_headers, sizeof(struct mg_conf_header));
    for (size_t i = 0; i < v->n_kids; i += 2) {
        const struct mg_ynode *hk = v->kids[i], *hv = v->kids[i + 1];
        struct mg_conf_header *h = &r->set_request_headers[i / 2];
        bool ok = true;
        if (!check_header_name(ld, hk, "set_request_headers") ||
            !get_string(ld, hk, hv, true, &h->value))
            continue;
        /* RFC 9110 §5.5: no CTLs but HTAB, no surrounding whitespace. */
        for (size_t j = 0; ok && j < hv->len; j++) {
            unsigned char ch = (unsigned char)hv->str[j];
            ok = ch == '\t' || (ch >= 0x20 && ch != 0x7f);
        }
        if (!ok) {
            fail_at(ld, hv, "value of header '%s' contains control characters", hk->str);
            continue;
        }
        if (hv->len && (strchr(" \t", hv->str[0]) || strchr(" \t", hv->str[hv->len - 1]))) {
            fail_at(ld, hv, "value of header '%s' starts or ends with whitespace", hk->str);
            continue;
        }
        h->name = mg_xstrndup(hk->str, hk->len);
    }
    check_header_duplicates(ld, v, 2, "set_request_headers");
}

static void load_remove_headers(struct loader *ld, struct mg_conf_route *r,
                                const struct mg_ynode *k, const struct mg_ynode *v)
{
    if (!get_string_list(ld, k, v, &r->remove_request_headers, &r->n_remove_request_headers))
        return;
    for (size_t i = 0; i < v->n_kids; i++)
        check_header_name(ld, v->kids[i], "remove_request_headers");
    check_header_duplicates(ld, v, 1, "remove_request_headers");
}

/* An Origin (RFC 6454 §6.2) as browsers send it: scheme://host[:port], no
 * path, the default port left out. Stored in that serialised form so the
 * gateway compares with strcmp. */
static void load_origins(struct loader *ld, struct mg_conf_route *r, const struct mg_ynode *k,
                         const struct mg_ynode *v)
{
    if (!get_string_list(ld, k, v, &r->allowed_origins, &r->n_allowed_origins))
        return;
    for (size_t i = 0; i < v->n_kids; i++) {
        const struct mg_ynode *it = v->kids[i];
        struct mg_url u;
        struct mg_quoted q;
        const char *why = url_parse(it->str, &u), *auth;
        char buf[CONF_MAX_URL + 16];
        bool v6;
        if (why == NULL && strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0)
            why = "an origin's scheme is http or https";
        auth = strstr(it->str, "://");
        if (why == NULL && auth && strchr(auth + 3, '/'))
            why = "an origin has no path, not even '/'";
        if (why) {
            fail_at(ld, it, "invalid origin '%s' in allowed_origins: %s",
                    mg_quote(&q, it->str, it->len), why);
            mg_url_fini(&u);
            continue;
        }
        v6 = strchr(u.host, ':') != NULL;
        if (u.port_explicit && u.port != (strcmp(u.scheme, "https") == 0 ? 443 : 80))
            snprintf(buf, sizeof buf, "%s://%s%s%s:%u", u.scheme, v6 ? "[" : "", u.host,
                     v6 ? "]" : "", u.port);
        else
            snprintf(buf, sizeof buf, "%s://%s%s%s", u.scheme, v6 ? "[" : "", u.host,
                     v6 ? "]" : "");
        free(r->allowed_origins[i]);
        r->allowed_origins[i] = mg_xstrdup(buf);
        mg_url_fini(&u);
    }
}

static void load_stdio(struct loader *ld, struct mg_conf_route *r, const struct mg_ynode *v)
{
    for (size_t i = 0; i < v->n_kids; i += 2) {
        const struct mg_ynode *sk = v->kids[i], *sv = v->kids[i + 1];
        if (key_is(sk, "args")) {
            get_string_list(ld, sk, sv, &r->stdio.args, &r->stdio.n_args);
        } else if (key_is(sk, "cwd")) {
            get_string(ld, sk, sv, false, &r->stdio.cwd);
        } else if (key_is(sk, "shared")) {
            get_bool(ld, sk, sv, &r->stdio.shared);
        } else if (key_is(sk, "env")) {
            if (!want_kind(ld, sk, sv, MG_YNODE_MAP))
                continue;
            r->stdio.n_env = sv->n_kids / 2;
            r->stdio.env = mg_xcalloc(r->stdio.n_env, sizeof *r->stdio.env);
            for (size_t j = 0; j < sv->n_kids; j += 2) {
                const struct mg_ynode *ek = sv->kids[j], *ev = sv->kids[j + 1];
                struct mg_conf_env *e = &r->stdio.env[j / 2];
                struct mg_quoted q;
                /* POSIX portable names: anything else cannot be read back
                 * by a shell and is likely a typo. */
                bool ok = ek->len > 0 && (is_alpha(ek->str[0]) || ek->str[0] == '_');
                for (size_t m = 1; ok && m < ek->len; m++)
                    ok = is_alpha(ek->str[m]) || is_digit(ek->str[m]) || ek->str[m] == '_';
                if (!ok) {
                    fail_at(ld, ek, "'%s' is not a valid environment variable name",
                            mg_quote(&q, ek->str, ek->len));
                    continue;
                }
                if (get_string(ld, ek, ev, true, &e->value))
                    e->name = mg_xstrndup(ek->str, ek->len);
            }
        } else {
            unknown_key(ld, sk, "in stdio");
        }
    }
}

static void load_to(struct loader *ld, struct mg_conf_route *r, const struct mg_ynode *v, bool *ok)
{
    struct mg_quoted q;
    const char *why;
    if (strncmp(r->to_raw, "stdio:", 6) == 0) {
        const char *cmd = r->to_raw + 6;
        /* The command is never split: arguments go in stdio.args, so that
         * nothing in a path is ever interpreted as a separator. */
        if (*cmd == '\0') {
            fail_at(ld, v, "'to: stdio:' needs a command, e.g. stdio:/usr/bin/server");
            return;
        }
        for (const char *p = cmd; *p; p++) {
            if ((unsigned char)*p <= ' ' || *p == 0x7f) {
                fail_at(ld, v,
                        "stdio command '%s' contains whitespace or control characters; "
                        "put arguments in stdio.args",
                        mg_quote(&q, cmd, strlen(cmd)));
                return;
            }
        }
        r->kind = MG_UPSTREAM_STDIO;
        r->stdio.command = mg_xstrdup(cmd);
        *ok = true;
        return;
    }
    if ((why = url_parse(r->to_raw, &r->to)) != NULL) {
        fail_at(ld, v, "invalid 'to' URL '%s': %s", mg_quote(&q, v->str, v->len), why);
        return;
    }
    r->kind = strncmp(r->to.scheme, "sse+", 4) == 0 ? MG_UPSTREAM_SSE : MG_UPSTREAM_HTTP;
    *ok = true;
}

/* Where each route's name and from came from, for cross-route messages. */
struct route_pos {
    const struct mg_ynode *name, *from;
};

static const char *const reserved_route_keys[] = {
    /* Pomerium's older access keys: accepted so pasted routes load; write
     * them as a policy (docs/policy.md). */
    "allowed_users",
    "allowed_groups",
};

static void policy_fail(void *ctx, const struct mg_ynode *at, const char *msg)
{
    fail_at(ctx, at, "%s", msg);
}

static void load_policy(struct loader *ld, const struct mg_ynode *v, const char *path,
                        struct mg_policy **out)
{
    mg_policy_free(*out);
    *out = NULL;
    mg_policy_compile(v, path, NULL, out, policy_fail, ld);
}

static void load_mcp(struct loader *ld, struct mg_conf_route *r, const struct mg_ynode *k,
                     const struct mg_ynode *v)
{
    struct mg_quoted q;
    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    for (size_t i = 0; i < v->n_kids; i += 2) {
        const struct mg_ynode *mk = v->kids[i], *mv = v->kids[i + 1];
        if (!key_is(mk, "tool_classes")) {
            unknown_key(ld, mk, "in mcp (tool_classes)");
            continue;
        }
        if (!want_kind(ld, mk, mv, MG_YNODE_MAP))
            continue;
        r->n_tool_classes = mv->n_kids / 2;
        r->tool_classes =
            mg_xcalloc(r->n_tool_classes ? r->n_tool_classes : 1, sizeof *r->tool_classes);
        for (size_t j = 0; j < mv->n_kids; j += 2) {
            const struct mg_ynode *tk = mv->kids[j], *tv = mv->kids[j + 1];
            struct mg_conf_tool_class *tc = &r->tool_classes[j / 2];
            tc->tool = mg_xstrndup(tk->str ? tk->str : "", tk->len);
            enum mg_tool_class cls;
            if (tv->kind != MG_YNODE_SCALAR || mg_tool_class_parse(tv->str, &cls) < 0)
                fail_at(ld, tv, "the class of tool '%s' must be read_only, write or destructive",
                        mg_quote(&q, tk->str, tk->len));
            else
                tc->tool_class = (int)cls;
        }
    }
}

static void load_route(struct loader *ld, struct mg_conf_route *r, const struct mg_ynode *n,
                       struct route_pos *pos)
{
    const struct mg_ynode *policy_v = NULL;
    const struct mg_ynode *name_v = NULL, *from_v = NULL, *to_v = NULL, *stdio_k = NULL;
    const struct mg_ynode *stdio_v = NULL;
    const struct mg_ynode *tls_k = NULL, *http_k = NULL;
    bool to_ok = false;
    struct mg_quoted q;

    r->line = n->line;
    r->col = n->col;
    if (n->kind != MG_YNODE_MAP) {
        fail_at(ld, n, "each route must be a mapping, not %s", kind_desc(n));
        return;
    }
    for (size_t i = 0; i < n->n_kids; i += 2) {
        const struct mg_ynode *k = n->kids[i], *v = n->kids[i + 1];
        if (key_is(k, "name")) {
            bool ok;
            name_v = v;
            if (!get_string(ld, k, v, false, &r->name))
                continue;
            ok = v->len <= 64;
            for (size_t j = 0; ok && j < v->len; j++)
                ok = is_alpha(v->str[j]) || is_digit(v->str[j]) || strchr("_.-", v->str[j]);
            if (!ok)
                fail_at(ld, v, "route name '%s' must be 1 to 64 of A-Z a-z 0-9 _ . -",
                        mg_quote(&q, v->str, v->len));
            else
                pos->name = v;
        } else if (key_is(k, "from")) {
            const char *why;
            from_v = v;
            if (!get_string(ld, k, v, false, &r->from_raw))
                continue;
            why = url_parse(r->from_raw, &r->from);
            if (why == NULL && strcmp(r->from.scheme, "http") != 0 &&
                strcmp(r->from.scheme, "https") != 0)
                why = "'from' must use http or https";
            if (why) {
                fail_at(ld, v, "invalid 'from' URL '%s': %s", mg_quote(&q, v->str, v->len), why);
                mg_url_fini(&r->from);
            } else {
                pos->from = v;
            }
        } else if (key_is(k, "to")) {
            to_v = v;
            if (get_string(ld, k, v, false, &r->to_raw))
                load_to(ld, r, v, &to_ok);
        } else if (key_is(k, "stdio")) {
            stdio_k = k;
            stdio_v = v;
        } else if (key_is(k, "timeout")) {
            get_duration(ld, k, v, &r->timeout_ms);
        } else if (key_is(k, "preserve_host_header")) {
            http_k = k;
            get_bool(ld, k, v, &r->preserve_host_header);
        } else if (key_is(k, "tls_skip_verify")) {
            if (get_bool(ld, k, v, &r->tls_skip_verify) && r->tls_skip_verify)
                tls_k = k;
        } else if (key_is(k, "tls_custom_ca_file")) {
            tls_k = k;
            get_string(ld, k, v, false, &r->tls_custom_ca_file);
        } else if (key_is(k, "tls_server_name")) {
            const char *why;
            tls_k = k;
            if (get_string(ld, k, v, false, &r->tls_server_name) &&
                (why = check_hostname(v->str, v->len)) != NULL)
                fail_at(ld, v, "invalid 'tls_server_name': %s", why);
        } else if (key_is(k, "allowed_origins")) {
            load_origins(ld, r, k, v);
        } else if (key_is(k, "set_request_headers")) {
            http_k = k;
            load_set_headers(ld, r, k, v);
        } else if (key_is(k, "remove_request_headers")) {
            http_k = k;
            load_remove_headers(ld, r, k, v);
        } else if (key_is(k, "allow_public_unauthenticated_access")) {
            get_bool(ld, k, v, &r->allow_public_unauthenticated_access);
        } else if (key_is(k, "scopes")) {
            if (get_string_list(ld, k, v, &r->scopes, &r->n_scopes))
                for (size_t j = 0; j < r->n_scopes; j++)
                    for (const char *c = r->scopes[j]; *c; c++)
                        /* RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E */
                        if (*c < 0x21 || *c > 0x7e || *c == '"' || *c == '\\') {
                            fail_at(ld, v->kids[j],
                                    "scope '%s' has a character RFC 6749 "
                                    "does not allow",
                                    mg_quote(&q, r->scopes[j], strlen(r->scopes[j])));
                            break;
                        }
        } else if (key_is(k, "policy")) {
            policy_v = v;
        } else if (key_is(k, "mcp")) {
            load_mcp(ld, r, k, v);
        } else if (key_in(k, reserved_route_keys, MG_ARRAY_LEN(reserved_route_keys))) {
            continue;
        } else {
            unknown_key(ld, k, "in route");
        }
    }

    if (policy_v) {
        /* After the loop: the rule paths name the route. */
        struct mg_buf path;
        mg_buf_init(&path, 256);
        mg_buf_appendf(&path, "routes[%s].policy", r->name ? r->name : "?");
        load_policy(ld, policy_v, path.data, &r->policy);
        mg_buf_fini(&path);
    }
    if (!name_v)
        fail_at(ld, n, "route is missing 'name'");
    if (!from_v)
        fail_at(ld, n, "route is missing 'from'");
    if (!to_v)
        fail_at(ld, n, "route is missing 'to'");
    if (!to_ok)
        return;

    if (stdio_k && r->kind != MG_UPSTREAM_STDIO)
        fail_at(ld, stdio_k, "'stdio' is only valid when 'to' is stdio:COMMAND");
    else if (stdio_k && want_kind(ld, stdio_k, stdio_v, MG_YNODE_MAP))
        load_stdio(ld, r, stdio_v);

    if (r->kind == MG_UPSTREAM_STDIO && http_k)
        fail_at(ld, http_k, "'%s' only applies to http and sse upstreams",
                mg_quote(&q, http_k->str, http_k->len));
    bool tls_upstream = r->kind != MG_UPSTREAM_STDIO && (strcmp(r->to.scheme, "https") == 0 ||
                                                         strcmp(r->to.scheme, "sse+https") == 0);
    if (tls_k && !tls_upstream)
        fail_at(ld, tls_k, "'%s' only applies to https upstreams",
                mg_quote(&q, tls_k->str, tls_k->len));
    if (tls_upstream && r->tls_server_name == NULL)
        r->tls_server_name = mg_xstrdup(r->to.host);
}

static int route_name_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->key->str, y->key->str);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

struct from_ref {
    const struct mg_url *url;
    const struct mg_ynode *node;
    size_t index;
};

static int from_ref_cmp(const void *a, const void *b)
{
    const struct from_ref *x = a, *y = b;
    int c = strcmp(x->url->host, y->url->host);
    if (c == 0)
        c = (int)x->url->port - (int)y->url->port;
    if (c == 0)
        c = strcmp(x->url->path, y->url->path);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Names must be unique (they label logs and metrics), and so must the
 * (host, port, prefix) a route answers for, or which route wins would
 * depend on file order. */
static void check_route_duplicates(struct loader *ld, const struct mg_conf_route *routes,
                                   const struct route_pos *pos, size_t n)
{
    struct key_ref *refs = mg_xcalloc(n, sizeof *refs);
    struct from_ref *froms = mg_xcalloc(n, sizeof *froms);
    size_t m = 0;
    struct mg_quoted q1, q2;

    for (size_t i = 0; i < n; i++)
        if (pos[i].name)
            refs[m++] = (struct key_ref){pos[i].name, i};
    qsort(refs, m, sizeof *refs, route_name_cmp);
    for (size_t i = 1; i < m; i++)
        if (strcmp(refs[i - 1].key->str, refs[i].key->str) == 0)
            fail_at(ld, refs[i].key, "duplicate route name '%s' (first at line %d)",
                    mg_quote(&q1, refs[i].key->str, refs[i].key->len), refs[i - 1].key->line);

    m = 0;
    for (size_t i = 0; i < n; i++)
        if (pos[i].from)
            froms[m++] = (struct from_ref){&routes[i].from, pos[i].from, i};
    qsort(froms, m, sizeof *froms, from_ref_cmp);
    for (size_t i = 1; i < m; i++)
        if (strcmp(froms[i - 1].url->host, froms[i].url->host) == 0 &&
            froms[i - 1].url->port == froms[i].url->port &&
            strcmp(froms[i - 1].url->path, froms[i].url->path) == 0)
            fail_at(ld, froms[i].node, "'from' '%s' is already served by the route at line %d",
                    mg_quote(&q2, froms[i].node->str, froms[i].node->len),
                    routes[froms[i - 1].index].line);
    free(froms);
    free(refs);
}

static void load_routes(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                        const struct mg_ynode *v)
{
    struct route_pos *pos;
    if (!want_kind(ld, k, v, MG_YNODE_SEQ))
        return;
    if (v->n_kids == 0) {
        fail_at(ld, v, "'routes' must list at least one route");
        return;
    }
    if (v->n_kids > CONF_MAX_ROUTES) {
        fail(ld, MG_ELIMIT, k->line, k->col, "too many routes (%zu); the limit is %d", v->n_kids,
             CONF_MAX_ROUTES);
        return;
    }
    c->n_routes = v->n_kids;
    c->routes = mg_xcalloc(c->n_routes, sizeof *c->routes);
    pos = mg_xcalloc(c->n_routes, sizeof *pos);
    for (size_t i = 0; i < v->n_kids; i++) {
        load_route(ld, &c->routes[i], v->kids[i], &pos[i]);
        if (c->routes[i].timeout_ms == 0)
            c->routes[i].timeout_ms = c->first_byte_timeout_ms;
    }
    check_route_duplicates(ld, c->routes, pos, c->n_routes);
    free(pos);
}

/* ---------------------------------------------------------------------------
 * Identity: store, oauth, identity_providers, jwt_issuers.
 */

/* An absolute http(s) URL that names an issuer or a document. Plain http is
 * allowed only towards loopback hosts (development IdPs, tests). */
static bool get_http_url(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                         bool want_origin, char **out)
{
    struct mg_quoted q;
    struct mg_url u;
    if (!get_string(ld, k, v, false, out))
        return false;
    const char *why = url_parse(*out, &u);
    if (why == NULL && strcmp(u.scheme, "https") != 0 &&
        !(strcmp(u.scheme, "http") == 0 && is_loopback_host(u.host)))
        why = "must be https (http only for loopback hosts)";
    if (why == NULL && want_origin && u.path[0] != '\0')
        why = "must be an origin (https://host[:port]) without a path";
    if (why == NULL && (*out)[strlen(*out) - 1] == '/')
        why = "must not end with '/'";
    mg_url_fini(&u);
    if (why) {
        fail_at(ld, v, "invalid '%s' '%s': %s", mg_quote(&q, k->str, k->len), v->str, why);
        return false;
    }
    return true;
}

static void load_store(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                       const struct mg_ynode *v)
{
    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    if (v->n_kids != 2) {
        fail_at(ld, v, "'store' takes exactly one of 'sqlite: PATH' or 'postgres: URI'");
        return;
    }
    const struct mg_ynode *sk = v->kids[0], *sv = v->kids[1];
    char *s = NULL;
    if (key_is(sk, "sqlite")) {
        if (get_string(ld, sk, sv, false, &s)) {
            free(c->store_dsn);
            c->store_dsn = mg_xmalloc(strlen(s) + 8);
            snprintf(c->store_dsn, strlen(s) + 8, "sqlite:%s", s);
        }
    } else if (key_is(sk, "postgres")) {
        if (get_string(ld, sk, sv, false, &s)) {
            if (strncmp(s, "postgres://", 11) != 0 && strncmp(s, "postgresql://", 13) != 0) {
                fail_at(ld, sv,
                        "'postgres' must be a URI: postgresql://user@host:port/dbname "
                        "(put the password in PGPASSFILE or PGPASSWORD, not here)");
            } else {
                free(c->store_dsn);
                c->store_dsn = mg_xstrdup(s);
            }
        }
    } else {
        unknown_key(ld, sk, "in store (use sqlite or postgres)");
    }
    free(s);
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-';
}

static void load_oauth_client(struct loader *ld, struct mg_conf_oauth_client *cl,
                              const struct mg_ynode *n)
{
    struct mg_quoted q;
    cl->line = n->line;
    if (n->kind != MG_YNODE_MAP) {
        fail_at(ld, n, "each client must be a mapping, not %s", kind_desc(n));
        return;
    }
    for (size_t i = 0; i < n->n_kids; i += 2) {
        const struct mg_ynode *k = n->kids[i], *v = n->kids[i + 1];
        if (key_is(k, "client_id")) {
            if (get_string(ld, k, v, false, &cl->client_id) && v->len > 255)
                fail_at(ld, v, "'client_id' must be at most 255 characters");
        } else if (key_is(k, "name")) {
            get_string(ld, k, v, false, &cl->name);
        } else if (key_is(k, "redirect_uris")) {
            get_string_list(ld, k, v, &cl->redirect_uris, &cl->n_redirect_uris);
        } else if (key_is(k, "client_secret_file")) {
            get_string(ld, k, v, false, &cl->secret_file);
        } else if (key_is(k, "client_secret_env")) {
            get_string(ld, k, v, false, &cl->secret_env);
        } else if (key_is(k, "client_secret")) {
            fail_at(ld, k,
                    "secrets are not accepted inline; use client_secret_file or "
                    "client_secret_env");
        } else if (key_is(k, "grant_types")) {
            char **g = NULL;
            size_t ng = 0;
            if (get_string_list(ld, k, v, &g, &ng)) {
                for (size_t j = 0; j < ng; j++) {
                    if (strcmp(g[j], "client_credentials") == 0)
                        cl->client_credentials = true;
                    else if (strcmp(g[j], "authorization_code") != 0 &&
                             strcmp(g[j], "refresh_token") != 0)
                        fail_at(ld, v->kids[j],
                                "unknown grant type '%s' (authorization_code, refresh_token, "
                                "client_credentials)",
                                mg_quote(&q, g[j], strlen(g[j])));
                }
            }
            free_strv(g, ng);
        } else if (key_is(k, "groups")) {
            get_string_list(ld, k, v, &cl->groups, &cl->n_groups);
        } else {
            unknown_key(ld, k, "in oauth client");
        }
    }
    if (cl->client_id == NULL)
        fail_at(ld, n, "client is missing 'client_id'");
    if (cl->secret_file && cl->secret_env)
        fail_at(ld, n, "give one of client_secret_file and client_secret_env, not both");
    if (cl->client_credentials && !cl->secret_file && !cl->secret_env)
        fail_at(ld, n,
                "client_credentials needs a secret (client_secret_file or "
                "client_secret_env)");
    if (!cl->client_credentials && cl->n_redirect_uris == 0)
        fail_at(ld, n, "client needs 'redirect_uris' (or grant_types: [client_credentials])");
}

static void load_oauth(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                       const struct mg_ynode *v)
{
    struct mg_conf_oauth *o = &c->oauth;
    uint64_t n;
    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    for (size_t i = 0; i < v->n_kids; i += 2) {
        const struct mg_ynode *ok = v->kids[i], *ov = v->kids[i + 1];
        if (key_is(ok, "access_token_ttl"))
            get_duration(ld, ok, ov, &o->access_token_ttl_ms);
        else if (key_is(ok, "refresh_token_ttl"))
            get_duration(ld, ok, ov, &o->refresh_token_ttl_ms);
        else if (key_is(ok, "code_ttl"))
            get_duration(ld, ok, ov, &o->code_ttl_ms);
        else if (key_is(ok, "session_ttl"))
            get_duration(ld, ok, ov, &o->session_ttl_ms);
        else if (key_is(ok, "consent_ttl"))
            get_duration(ld, ok, ov, &o->consent_ttl_ms);
        else if (key_is(ok, "dynamic_registration"))
            get_bool(ld, ok, ov, &o->dynamic_registration);
        else if (key_is(ok, "max_clients")) {
            if (get_uint(ld, ok, ov, 1, 10000000, &n))
                o->max_clients = (size_t)n;
        } else if (key_is(ok, "registrations_per_minute")) {
            if (get_uint(ld, ok, ov, 1, 100000, &n))
                o->registrations_per_minute = (size_t)n;
        } else if (key_is(ok, "client_metadata_documents"))
            get_bool(ld, ok, ov, &o->client_metadata_documents);
        else if (key_is(ok, "client_metadata_allow_private"))
            get_bool(ld, ok, ov, &o->client_metadata_allow_private);
        else if (key_is(ok, "client_metadata_max_bytes"))
            get_size(ld, ok, ov, KIB, MIB, &o->client_metadata_max_bytes);
        else if (key_is(ok, "client_metadata_timeout"))
            get_duration(ld, ok, ov, &o->client_metadata_timeout_ms);
        else if (key_is(ok, "client_metadata_ca_file"))
            get_string(ld, ok, ov, false, &o->client_metadata_ca_file);
        else if (key_is(ok, "builtin_accounts"))
            get_bool(ld, ok, ov, &o->builtin_accounts);
        else if (key_is(ok, "max_failed_logins")) {
            if (get_uint(ld, ok, ov, 1, 1000, &n))
                o->max_failed_logins = (size_t)n;
        } else if (key_is(ok, "lockout"))
            get_duration(ld, ok, ov, &o->lockout_ms);
        else if (key_is(ok, "clients")) {
            if (!want_kind(ld, ok, ov, MG_YNODE_SEQ))
                continue;
            o->n_clients = ov->n_kids;
            o->clients = mg_xcalloc(ov->n_kids ? ov->n_kids : 1, sizeof *o->clients);
            for (size_t j = 0; j < ov->n_kids; j++)
                load_oauth_client(ld, &o->clients[j], ov->kids[j]);
            for (size_t a = 0; a < o->n_clients; a++)
                for (size_t b = a + 1; b < o->n_clients; b++)
                    if (o->clients[a].client_id && o->clients[b].client_id &&
                        strcmp(o->clients[a].client_id, o->clients[b].client_id) == 0)
                        fail_at(ld, ov->kids[b], "duplicate client_id (first at line %d)",
                                o->clients[a].line);
        } else
            unknown_key(ld, ok, "in oauth");
    }
    if (o->access_token_ttl_ms < 1000)
        fail_at(ld, k, "'access_token_ttl' must be at least 1s");
}

static void load_claims(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                        char **email, char **name, char **groups)
{
    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    for (size_t i = 0; i < v->n_kids; i += 2) {
        const struct mg_ynode *ck = v->kids[i], *cv = v->kids[i + 1];
        if (key_is(ck, "email"))
            get_string(ld, ck, cv, false, email);
        else if (key_is(ck, "name"))
            get_string(ld, ck, cv, false, name);
        else if (key_is(ck, "groups"))
            get_string(ld, ck, cv, false, groups);
        else
            unknown_key(ld, ck, "in claims (email, name, groups)");
    }
}

static void load_idp(struct loader *ld, struct mg_conf_idp *p, const struct mg_ynode *n)
{
    struct mg_quoted q;
    bool inline_secret = false;
    p->line = n->line;
    if (n->kind != MG_YNODE_MAP) {
        fail_at(ld, n, "each identity provider must be a mapping, not %s", kind_desc(n));
        return;
    }
    for (size_t i = 0; i < n->n_kids; i += 2) {
        const struct mg_ynode *k = n->kids[i], *v = n->kids[i + 1];
        if (key_is(k, "name")) {
            if (get_string(ld, k, v, false, &p->name)) {
                bool ok = v->len <= 32;
                for (size_t j = 0; ok && j < v->len; j++)
                    ok = is_name_char(v->str[j]);
                if (!ok)
                    fail_at(ld, v, "provider name '%s' must be 1 to 32 of a-z 0-9 _ -",
                            mg_quote(&q, v->str, v->len));
            }
        } else if (key_is(k, "display_name")) {
            get_string(ld, k, v, false, &p->display_name);
        } else if (key_is(k, "issuer")) {
            get_http_url(ld, k, v, false, &p->issuer);
        } else if (key_is(k, "client_id")) {
            get_string(ld, k, v, false, &p->client_id);
        } else if (key_is(k, "client_secret_file")) {
            get_string(ld, k, v, false, &p->client_secret_file);
        } else if (key_is(k, "client_secret_env")) {
            get_string(ld, k, v, false, &p->client_secret_env);
        } else if (key_is(k, "client_secret")) {
            fail_at(ld, k,
                    "secrets are not accepted inline; use client_secret_file or "
                    "client_secret_env");
            inline_secret = true;
        } else if (key_is(k, "scopes")) {
            get_string_list(ld, k, v, &p->scopes, &p->n_scopes);
        } else if (key_is(k, "claims")) {
            load_claims(ld, k, v, &p->claim_email, &p->claim_name, &p->claim_groups);
        } else if (key_is(k, "tls_custom_ca_file")) {
            get_string(ld, k, v, false, &p->ca_file);
        } else if (key_is(k, "token_endpoint_auth_method")) {
            char *m = NULL;
            if (get_string(ld, k, v, false, &m)) {
                if (strcmp(m, "client_secret_post") == 0)
                    p->client_secret_post = true;
                else if (strcmp(m, "client_secret_basic") != 0)
                    fail_at(ld, v,
                            "'token_endpoint_auth_method' must be client_secret_basic or "
                            "client_secret_post");
            }
            free(m);
        } else {
            unknown_key(ld, k, "in identity provider");
        }
    }
    if (!p->name)
        fail_at(ld, n, "identity provider is missing 'name'");
    if (!p->issuer)
        fail_at(ld, n, "identity provider is missing 'issuer'");
    if (!p->client_id)
        fail_at(ld, n, "identity provider is missing 'client_id'");
    if (!inline_secret && !p->client_secret_file == !p->client_secret_env)
        fail_at(ld, n,
                "identity provider needs exactly one of client_secret_file and "
                "client_secret_env");
    if (!p->display_name && p->name)
        p->display_name = mg_xstrdup(p->name);
    if (!p->claim_email)
        p->claim_email = mg_xstrdup("email");
    if (!p->claim_name)
        p->claim_name = mg_xstrdup("name");
    if (!p->claim_groups)
        p->claim_groups = mg_xstrdup("groups");
    if (p->n_scopes == 0) {
        free(p->scopes);
        p->n_scopes = 3;
        p->scopes = mg_xcalloc(3, sizeof *p->scopes);
        p->scopes[0] = mg_xstrdup("openid");
        p->scopes[1] = mg_xstrdup("email");
        p->scopes[2] = mg_xstrdup("profile");
    }
}

static void load_idps(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                      const struct mg_ynode *v)
{
    if (!want_kind(ld, k, v, MG_YNODE_SEQ))
        return;
    c->n_idps = v->n_kids;
    c->idps = mg_xcalloc(v->n_kids ? v->n_kids : 1, sizeof *c->idps);
    for (size_t i = 0; i < v->n_kids; i++)
        load_idp(ld, &c->idps[i], v->kids[i]);
    for (size_t a = 0; a < c->n_idps; a++)
        for (size_t b = a + 1; b < c->n_idps; b++)
            if (c->idps[a].name && c->idps[b].name && strcmp(c->idps[a].name, c->idps[b].name) == 0)
                fail_at(ld, v->kids[b], "duplicate identity provider name (first at line %d)",
                        c->idps[a].line);
}

static void load_jwt_issuers(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                             const struct mg_ynode *v)
{
    if (!want_kind(ld, k, v, MG_YNODE_SEQ))
        return;
    c->n_jwt_issuers = v->n_kids;
    c->jwt_issuers = mg_xcalloc(v->n_kids ? v->n_kids : 1, sizeof *c->jwt_issuers);
    for (size_t i = 0; i < v->n_kids; i++) {
        struct mg_conf_jwt_issuer *j = &c->jwt_issuers[i];
        const struct mg_ynode *n = v->kids[i];
        j->line = n->line;
        if (n->kind != MG_YNODE_MAP) {
            fail_at(ld, n, "each JWT issuer must be a mapping, not %s", kind_desc(n));
            continue;
        }
        for (size_t x = 0; x < n->n_kids; x += 2) {
            const struct mg_ynode *jk = n->kids[x], *jv = n->kids[x + 1];
            if (key_is(jk, "issuer"))
                get_string(ld, jk, jv, false, &j->issuer);
            else if (key_is(jk, "jwks_url"))
                get_http_url(ld, jk, jv, false, &j->jwks_url);
            else if (key_is(jk, "audience"))
                get_string(ld, jk, jv, false, &j->audience);
            else if (key_is(jk, "claims"))
                load_claims(ld, jk, jv, &j->claim_email, &j->claim_name, &j->claim_groups);
            else if (key_is(jk, "tls_custom_ca_file"))
                get_string(ld, jk, jv, false, &j->ca_file);
            else
                unknown_key(ld, jk, "in JWT issuer");
        }
        if (!j->issuer)
            fail_at(ld, n, "JWT issuer is missing 'issuer'");
        if (!j->jwks_url)
            fail_at(ld, n, "JWT issuer is missing 'jwks_url'");
        if (!j->claim_email)
            j->claim_email = mg_xstrdup("email");
        if (!j->claim_name)
            j->claim_name = mg_xstrdup("name");
        if (!j->claim_groups)
            j->claim_groups = mg_xstrdup("groups");
    }
}

static void identity_fini(struct mg_conf *c)
{
    free(c->issuer);
    free(c->store_dsn);
    struct mg_conf_oauth *o = &c->oauth;
    free(o->client_metadata_ca_file);
    for (size_t i = 0; i < o->n_clients; i++) {
        struct mg_conf_oauth_client *cl = &o->clients[i];
        free(cl->client_id);
        free(cl->name);
        free_strv(cl->redirect_uris, cl->n_redirect_uris);
        free(cl->secret_file);
        free(cl->secret_env);
        free_strv(cl->groups, cl->n_groups);
    }
    free(o->clients);
    for (size_t i = 0; i < c->n_idps; i++) {
        struct mg_conf_idp *p = &c->idps[i];
        free(p->name);
        free(p->display_name);
        free(p->issuer);
        free(p->client_id);
        free(p->client_secret_file);
        free(p->client_secret_env);
        free_strv(p->scopes, p->n_scopes);
        free(p->claim_email);
        free(p->claim_name);
        free(p->claim_groups);
        free(p->ca_file);
    }
    free(c->idps);
    for (size_t i = 0; i < c->n_jwt_issuers; i++) {
        struct mg_conf_jwt_issuer *j = &c->jwt_issuers[i];
        free(j->issuer);
        free(j->jwks_url);
        free(j->audience);
        free(j->claim_email);
        free(j->claim_name);
        free(j->claim_groups);
        free(j->ca_file);
    }
    free(c->jwt_issuers);
}

/* ---------------------------------------------------------------------------
 * The top level.
 */

/* ---------------------------------------------------------------------------
 * audit:
 */

/* One of names[] (n of them); *out gets its index. Reports the choices. */
static bool get_choice(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                       const char *const *names, size_t n, const char *choices, int *out)
{
    struct mg_quoted q1, q2;
    if (!want_scalar(ld, k, v, choices))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (mg_str_eq(v->str, v->len, names[i])) {
            *out = (int)i;
            return true;
        }
    }
    fail_at(ld, v, "'%s' must be %s, not '%s'", mg_quote(&q1, k->str, k->len), choices,
            mg_quote(&q2, v->str, v->len));
    return false;
}

static void load_audit(struct loader *ld, struct mg_conf *c, const struct mg_ynode *k,
                       const struct mg_ynode *v, const struct mg_ynode **sink_v)
{
    static const char *const sinks[] = {
        [MG_CONF_AUDIT_FILE] = "file",
        [MG_CONF_AUDIT_STDOUT] = "stdout",
        [MG_CONF_AUDIT_STORE] = "store",
        [MG_CONF_AUDIT_SYSLOG] = "syslog",
    };
    static const char *const args[] = {
        [MG_CONF_AUDIT_ARGS_NONE] = "none",
        [MG_CONF_AUDIT_ARGS_KEYS] = "keys",
        [MG_CONF_AUDIT_ARGS_REDACTED] = "redacted",
        [MG_CONF_AUDIT_ARGS_FULL] = "full",
    };
    static const char *const failures[] = {"deny", "allow"};
    const struct mg_ynode *path_k = NULL, *interval_k = NULL;
    uint64_t n;
    int i;

    if (!want_kind(ld, k, v, MG_YNODE_MAP))
        return;
    for (size_t j = 0; j < v->n_kids; j += 2) {
        const struct mg_ynode *ak = v->kids[j], *av = v->kids[j + 1];
        if (key_is(ak, "sink")) {
            if (get_choice(ld, ak, av, sinks, MG_ARRAY_LEN(sinks), "file, stdout, store or syslog",
                           &i)) {
                c->audit.sink = (enum mg_conf_audit_sink)i;
                *sink_v = av;
            }
        } else if (key_is(ak, "path")) {
            if (get_string(ld, ak, av, false, &c->audit.path))
                path_k = ak;
        } else if (key_is(ak, "arguments")) {
            if (get_choice(ld, ak, av, args, MG_ARRAY_LEN(args), "none, keys, redacted or full",
                           &i))
                c->audit.arguments = (enum mg_conf_audit_args)i;
        } else if (key_is(ak, "sync")) {
            get_bool(ld, ak, av, &c->audit.sync);
        } else if (key_is(ak, "on_failure")) {
            if (get_choice(ld, ak, av, failures, MG_ARRAY_LEN(failures), "deny or allow", &i))
                c->audit.fail_open = i == 1;
        } else if (key_is(ak, "max_queue")) {
            if (get_uint(ld, ak, av, 1, 1000000, &n))
                c->audit.max_queue = (size_t)n;
        } else if (key_is(ak, "sync_interval")) {
            if (get_duration_upto(ld, ak, av, MG_CONF_AUDIT_SYNC_INTERVAL_MAX_MS, "10s", &n)) {
                interval_k = ak;
                c->audit.sync_interval_ms = n;
            }
        } else {
            unknown_key(ld, ak, "in audit");
        }
    }
    if (path_k && c->audit.sink != MG_CONF_AUDIT_FILE)
        fail_at(ld, path_k, "'path' is only for sink: file");
    if (interval_k) {
        if (c->audit.sink != MG_CONF_AUDIT_FILE)
            fail_at(ld, interval_k, "'sync_interval' is only for sink: file");
        else if (c->audit.sync)
            fail_at(ld, interval_k,
                    "'sync_interval' is only for sync: false (with sync: true "
                    "every batch is synced before its responses)");
    }
}

static bool get_listen(struct loader *ld, const struct mg_ynode *k, const struct mg_ynode *v,
                       char **out)
{
    struct mg_quoted q;
    const char *hs, *ps, *why;
    size_t hn, pn;
    uint16_t port;
    if (!get_string(ld, k, v, false, out))
        return false;
    if (memchr(v->str, ':', v->len) == NULL)
        why = "a port is required";
    else
        why = split_authority(v->str, v->len, &hs, &hn, &ps, &pn);
    if (why == NULL && ps == NULL)
        why = "a port is required";
    if (why == NULL)
        why = parse_port(ps, pn, &port);
    if (why) {
        fail_at(ld, v, "'%s' must be host:port or [v6]:port: %s", mg_quote(&q, k->str, k->len),
                why);
        return false;
    }
    return true;
}

static void load_root(struct loader *ld, struct mg_conf *c, const struct mg_ynode *root)
{
    const struct mg_ynode *routes_k = NULL, *routes_v = NULL, *addr_v = NULL, *insecure_v = NULL;
    const struct mg_ynode *metrics_v = NULL, *tls_k = NULL, *audit_sink_v = NULL;
    uint64_t n;

    if (root == NULL) {
        fail(ld, MG_EINVAL, 1, 1, "the configuration is empty; at least one route is required");
        return;
    }
    if (root->kind != MG_YNODE_MAP) {
        fail_at(ld, root, "the configuration must be a mapping of keys, not %s", kind_desc(root));
        return;
    }
    for (size_t i = 0; i < root->n_kids; i += 2) {
        const struct mg_ynode *k = root->kids[i], *v = root->kids[i + 1];
        if (key_is(k, "address")) {
            if (get_listen(ld, k, v, &c->address))
                addr_v = v;
        } else if (key_is(k, "metrics_address")) {
            if (get_listen(ld, k, v, &c->metrics_address))
                metrics_v = v;
        } else if (key_is(k, "workers")) {
            if (get_uint(ld, k, v, 0, 256, &n))
                c->workers = (int)n;
        } else if (key_is(k, "worker_yield")) {
            get_bool(ld, k, v, &c->worker_yield);
        } else if (key_is(k, "state_dir")) {
            get_string(ld, k, v, false, &c->state_dir);
        } else if (key_is(k, "insecure_server")) {
            if (get_bool(ld, k, v, &c->insecure_server))
                insecure_v = v;
        } else if (key_is(k, "insecure_server_allow_non_loopback")) {
            get_bool(ld, k, v, &c->allow_insecure_non_loopback);
        } else if (key_is(k, "tls")) {
            tls_k = k;
            load_tls(ld, c, k, v);
        } else if (key_is(k, "web_dir")) {
            get_string(ld, k, v, false, &c->web_dir);
        } else if (key_is(k, "access_log")) {
            get_string(ld, k, v, false, &c->access_log);
        } else if (key_is(k, "log_level")) {
            if (get_string(ld, k, v, false, &c->log_level) && strcmp(c->log_level, "debug") &&
                strcmp(c->log_level, "info") && strcmp(c->log_level, "warn") &&
                strcmp(c->log_level, "error"))
                fail_at(ld, v, "'log_level' must be debug, info, warn or error");
        } else if (key_is(k, "limits")) {
            load_limits(ld, c, k, v);
        } else if (key_is(k, "timeouts")) {
            load_timeouts(ld, c, k, v);
        } else if (key_is(k, "routes")) {
            routes_k = k;
            routes_v = v;
        } else if (key_is(k, "authenticate_service_url")) {
            get_http_url(ld, k, v, true, &c->issuer);
        } else if (key_is(k, "store")) {
            load_store(ld, c, k, v);
        } else if (key_is(k, "oauth")) {
            load_oauth(ld, c, k, v);
        } else if (key_is(k, "identity_providers")) {
            load_idps(ld, c, k, v);
        } else if (key_is(k, "jwt_issuers")) {
            load_jwt_issuers(ld, c, k, v);
        } else if (key_is(k, "audit")) {
            load_audit(ld, c, k, v, &audit_sink_v);
        } else if (key_is(k, "policy")) {
            load_policy(ld, v, "policy", &c->policy);
        } else {
            unknown_key(ld, k, "at top level");
        }
    }

    /* Routes last: their default timeout is timeouts.first_byte, wherever
     * it appears in the file. */
    if (routes_k)
        load_routes(ld, c, routes_k, routes_v);
    else
        fail_at(ld, root, "no 'routes': at least one route is required");

    if (c->insecure_server && tls_k)
        fail_at(ld, tls_k, "'tls' cannot be used with insecure_server: true");
    if (c->insecure_server && !c->allow_insecure_non_loopback) {
        char *host = NULL;
        uint16_t port;
        /* Plain HTTP carries bearer tokens and session cookies in clear
         * text; off the loopback interface that needs an explicit opt-in. */
        if (mg_hostport_parse(c->address, &host, &port) == 0 && !is_loopback_host(host))
            fail_at(ld, addr_v ? addr_v : insecure_v,
                    "insecure_server: true needs a loopback address (127.0.0.1, ::1, "
                    "localhost) unless insecure_server_allow_non_loopback: true");
        free(host);
    }
    if (c->store_dsn == NULL) {
        size_t n_dsn = strlen(c->state_dir) + 32;
        c->store_dsn = mg_xmalloc(n_dsn);
        snprintf(c->store_dsn, n_dsn, "sqlite:%s/mcpgate.db", c->state_dir);
    }
    if (c->audit.sink == MG_CONF_AUDIT_FILE && c->audit.path == NULL) {
        size_t n_path = strlen(c->state_dir) + 16;
        c->audit.path = mg_xmalloc(n_path);
        snprintf(c->audit.path, n_path, "%s/audit.jsonl", c->state_dir);
    }
    /* Two writer threads on one stream would interleave their lines, and an
     * access-log line inside the audit stream breaks its chain. */
    if (c->audit.sink == MG_CONF_AUDIT_STDOUT && strcmp(c->access_log, "stdout") == 0)
        fail_at(ld, audit_sink_v,
                "audit sink 'stdout' cannot share standard output with the access log; "
                "set access_log to a file, stderr or off");
    if (metrics_v && c->metrics_address) {
        char *h1 = NULL, *h2 = NULL;
        uint16_t p1 = 0, p2 = 0;
        if (mg_hostport_parse(c->address, &h1, &p1) == 0 &&
            mg_hostport_parse(c->metrics_address, &h2, &p2) == 0 && p1 == p2 && strcmp(h1, h2) == 0)
            fail_at(ld, metrics_v, "'metrics_address' must differ from 'address'");
        free(h1);
        free(h2);
    }
}

/* ---------------------------------------------------------------------------
 * Entry points.
 */

int mg_conf_load_string(const char *name, const char *text, size_t len, struct mg_conf **out,
                        char **err)
{
    struct loader ld = {.name = name ? name : "(config)", .text = text ? text : "", .len = len};
    struct mg_ynode *root = NULL;
    struct mg_conf *c = NULL;
    int rc;

    *out = NULL;
    if (err)
        *err = NULL;
    if (text == NULL)
        ld.len = 0;
    /* 64 KiB of messages is far more than CONF_MAX_ERRORS lines need. */
    mg_buf_init(&ld.errs, 64 * 1024);
    if (ld.len > CONF_MAX_BYTES) {
        fail(&ld, MG_ELIMIT, 1, 1, "the configuration is %zu bytes; the limit is 1 MiB", ld.len);
        goto done;
    }
    if (tree_build(&ld, &root) < 0)
        goto done;
    c = conf_new(ld.name);
    load_root(&ld, c, root);

done:
    node_free(root);
    if (ld.n_errs == 0) {
        *out = c;
        c = NULL;
        rc = MG_OK;
    } else {
        rc = ld.status;
        if (err)
            *err = mg_buf_steal(&ld.errs, NULL);
    }
    mg_buf_fini(&ld.errs);
    mg_conf_unref(c);
    return rc;
}

int mg_conf_load(const char *path, struct mg_conf **out, char **err)
{
    struct mg_buf msg, text;
    struct stat st;
    int fd = -1, rc = MG_OK;
    char chunk[16384];

    *out = NULL;
    if (err)
        *err = NULL;
    mg_buf_init(&msg, 4096);
    /* One byte past the limit so that "too large" is told apart from
     * "exactly 1 MiB" without trusting st_size (pipes, /proc). */
    mg_buf_init(&text, CONF_MAX_BYTES + 1);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        mg_buf_appendf(&msg, "%s: cannot open: %s", path, strerror(errno));
        rc = MG_EIO;
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        mg_buf_appendf(&msg, "%s: cannot read: is a directory", path);
        rc = MG_EIO;
        goto cleanup;
    }
    if (S_ISREG(st.st_mode) && st.st_size > CONF_MAX_BYTES) {
        mg_buf_appendf(&msg, "%s:1:1: the configuration is %lld bytes; the limit is 1 MiB", path,
                       (long long)st.st_size);
        rc = MG_ELIMIT;
        goto cleanup;
    }
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            mg_buf_appendf(&msg, "%s: cannot read: %s", path, strerror(errno));
            rc = MG_EIO;
            goto cleanup;
        }
        if (got == 0)
            break;
        if (mg_buf_append(&text, chunk, (size_t)got) < 0) {
            mg_buf_appendf(&msg, "%s:1:1: the configuration is larger than 1 MiB", path);
            rc = MG_ELIMIT;
            goto cleanup;
        }
    }
    rc = mg_conf_load_string(path, text.data ? text.data : "", text.len, out, err);

cleanup:
    if (fd >= 0)
        close(fd);
    if (rc < 0 && err && *err == NULL)
        *err = mg_buf_steal(&msg, NULL);
    mg_buf_fini(&msg);
    mg_buf_fini(&text);
    return rc;
}
