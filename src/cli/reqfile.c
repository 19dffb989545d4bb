/* The input files of `mcpgate policy test`; see reqfile.h. */
#include "cli/reqfile.h"

#include "audit/record.h"
#include "authn/identity.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <strings.h>

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return MG_EINVAL;
}

void mg_reqfile_fini(struct mg_reqfile *r)
{
    if (r == NULL)
        return;
    free(r->path);
    free(r->answers);
    free(r->body);
    free(r->mcp_method);
    free(r->mcp_name);
    free(r->protocol_version);
    json_decref(r->tools);
    memset(r, 0, sizeof *r);
}

static bool is_body(const json_t *doc)
{
    return json_is_array(doc) || (json_is_object(doc) && json_object_get(doc, "jsonrpc"));
}

/* A string without NUL, or NULL. */
static const char *text_of(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) ? s : NULL;
}

static int take_method(struct mg_reqfile *r, const json_t *v, char *err, size_t cap)
{
    static const char *const methods[] = {"POST", "GET", "DELETE", "HEAD", "OPTIONS"};
    const char *s = text_of(v);
    for (size_t i = 0; s && i < MG_ARRAY_LEN(methods); i++) {
        if (strcmp(s, methods[i]) == 0) {
            snprintf(r->http_method, sizeof r->http_method, "%s", s);
            return 0;
        }
    }
    /* The gateway answers any other method 405 before a policy sees it. */
    return fail(err, cap, "http_method must be POST, GET, DELETE, HEAD or OPTIONS");
}

static int take_path(struct mg_reqfile *r, const json_t *v, char *err, size_t cap)
{
    const char *s = text_of(v);
    if (s == NULL || s[0] != '/')
        return fail(err, cap, "path must be a string starting with '/'");
    /* Policies see the path without the query, as the gateway does. */
    r->path = mg_xstrndup(s, strcspn(s, "?"));
    return 0;
}

static int take_answers(struct mg_reqfile *r, const json_t *v, char *err, size_t cap)
{
    const char *s = text_of(v);
    if (s == NULL || s[0] == '\0')
        return fail(err, cap, "answers must be the method of the server's request, a string");
    free(r->answers);
    r->answers = mg_xstrdup(s);
    return 0;
}

static int take_source(struct mg_reqfile *r, const json_t *v, char *err, size_t cap)
{
    const char *s = text_of(v);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&r->source;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&r->source;
    if (s && strlen(s) < sizeof r->source_ip && inet_pton(AF_INET, s, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    } else if (s && strlen(s) < sizeof r->source_ip &&
               inet_pton(AF_INET6, s, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
    } else {
        return fail(err, cap, "source_ip must be an IPv4 or IPv6 address (no port, no brackets)");
    }
    snprintf(r->source_ip, sizeof r->source_ip, "%s", s);
    r->has_source = true;
    return 0;
}

static int take_time(struct mg_reqfile *r, const json_t *v, char *err, size_t cap)
{
    const char *s = text_of(v);
    int64_t ms;
    if (json_is_integer(v)) {
        r->now = (int64_t)json_integer_value(v);
    } else if (s && strlen(s) >= 10 && s[4] == '-' && mg_audit_parse_since(s, 0, &ms) == 0) {
        /* Whole seconds, rounded down, as the gateway's clock is read. */
        r->now = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    } else {
        return fail(err, cap,
                    "time must be RFC 3339 (2026-11-22T10:00:00Z, or with an offset +01:00), "
                    "a date (2026-11-22) or unix seconds");
    }
    r->has_time = true;
    return 0;
}

static int take_headers(struct mg_reqfile *r, const json_t *v, char *err, size_t cap)
{
    const char *k;
    const json_t *x;
    if (!json_is_object(v))
        return fail(err, cap, "headers must be an object of header names and string values");
    json_object_foreach((json_t *)v, k, x)
    {
        char **dst = strcasecmp(k, "mcp-method") == 0             ? &r->mcp_method
                     : strcasecmp(k, "mcp-name") == 0             ? &r->mcp_name
                     : strcasecmp(k, "mcp-protocol-version") == 0 ? &r->protocol_version
                                                                  : NULL;
        if (dst == NULL)
            return fail(err, cap,
                        "headers: '%.64s' plays no part in the decision (Mcp-Method, Mcp-Name "
                        "and MCP-Protocol-Version do)",
                        k);
        if (*dst)
            return fail(err, cap, "headers: '%.64s' is given twice", k);
        const char *s = text_of(x);
        if (s == NULL)
            return fail(err, cap, "headers: the value of '%.64s' must be a string", k);
        *dst = mg_xstrdup(s);
    }
    return 0;
}

static int take_tools(struct mg_reqfile *r, const json_t *v, char *err, size_t cap)
{
    if (!json_is_array(v))
        return fail(err, cap,
                    "tools must be an array of tools as a tools/list result lists them "
                    "({\"name\": ..., \"annotations\": {...}})");
    r->tools = json_incref((json_t *)v);
    return 0;
}

static int take_body(struct mg_reqfile *r, const json_t *v, char *err, size_t cap)
{
    if (json_is_string(v)) {
        /* Byte for byte: bodies that are not JSON, or have duplicate keys. */
        r->body_len = json_string_length(v);
        r->body = mg_xmalloc(r->body_len + 1);
        memcpy(r->body, json_string_value(v), r->body_len);
        r->body[r->body_len] = '\0';
        return 0;
    }
    r->body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (r->body == NULL)
        return fail(err, cap, "body cannot be serialised");
    r->body_len = strlen(r->body);
    return 0;
}

static int parse_wrapper(struct mg_reqfile *r, const json_t *doc, char *err, size_t cap)
{
    static const struct {
        const char *key;
        int (*take)(struct mg_reqfile *r, const json_t *v, char *err, size_t cap);
    } keys[] = {
        {"http_method", take_method}, {"path", take_path},       {"source_ip", take_source},
        {"time", take_time},          {"headers", take_headers}, {"tools", take_tools},
        {"body", take_body},          {"answers", take_answers},
    };
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)doc, k, v)
    {
        size_t i = 0;
        while (i < MG_ARRAY_LEN(keys) && strcmp(k, keys[i].key) != 0)
            i++;
        if (i == MG_ARRAY_LEN(keys)) {
            if (strcmp(k, "method") == 0 || strcmp(k, "id") == 0 || strcmp(k, "params") == 0 ||
                strcmp(k, "result") == 0 || strcmp(k, "error") == 0)
                return fail(err, cap,
                            "unknown key '%s': a JSON-RPC message needs \"jsonrpc\": \"2.0\" "
                            "(to test a body that is not JSON-RPC, give it as "
                            "{\"body\": \"...\"})",
                            k);
            return fail(err, cap,
                        "unknown key '%.64s' (http_method, path, source_ip, time, headers, "
                        "tools, body, answers)",
                        k);
        }
        int rc = keys[i].take(r, v, err, cap);
        if (rc < 0)
            return rc;
    }
    bool post = strcmp(r->http_method, "POST") == 0;
    if (post && r->body == NULL)
        return fail(err, cap, "a POST needs a body");
    if (!post && r->body != NULL)
        return fail(err, cap, "only a POST has a body (the gateway judges a %s by its method)",
                    r->http_method);
    if (!post && (r->mcp_method || r->mcp_name || r->protocol_version))
        return fail(err, cap, "headers are judged only with a POST's body");
    return 0;
}

int mg_reqfile_parse(const char *text, size_t len, struct mg_reqfile *out, char *err,
                     size_t err_cap)
{
    json_error_t je;
    json_t *doc = NULL;
    int rc = 0;

    memset(out, 0, sizeof *out);
    snprintf(out->http_method, sizeof out->http_method, "POST");
    if (len > MG_REQFILE_MAX_BYTES) {
        snprintf(err, err_cap, "the file is larger than %d bytes", MG_REQFILE_MAX_BYTES);
        return MG_ELIMIT;
    }
    /* First without refusing duplicate keys: a body with them is still a
     * body (the gateway refuses it, and the test shows that). */
    doc = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (doc == NULL) {
        rc = fail(err, err_cap, "not JSON: line %d, column %d: %s", je.line, je.column, je.text);
        goto out;
    }
    if (is_body(doc)) {
        out->body = mg_xmalloc(len + 1);
        memcpy(out->body, text, len);
        out->body[len] = '\0';
        out->body_len = len;
        goto out;
    }
    if (!json_is_object(doc)) {
        rc = fail(err, err_cap, "a request file is a JSON-RPC body or an object");
        goto out;
    }
    json_decref(doc);
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (doc == NULL) {
        rc = fail(err, err_cap,
                  "line %d, column %d: %s (a body with duplicate keys goes in \"body\" as a "
                  "string)",
                  je.line, je.column, je.text);
        goto out;
    }
    rc = parse_wrapper(out, doc, err, err_cap);
out:
    json_decref(doc);
    if (rc < 0)
        mg_reqfile_fini(out);
    return rc;
}

int mg_reqfile_identity(const char *text, size_t len, struct mg_identity **out, char *err,
                        size_t err_cap)
{
    static const char *const keys[] = {"sub",    "email", "name",   "groups",
                                       "claims", "idp",   "method", "client_id"};
    static const char *const strs[] = {"sub", "email", "name", "idp"};
    json_error_t je;
    json_t *doc;
    char *norm = NULL;
    const char *client = "";
    const char *k;
    const json_t *v;
    int rc = 0;

    *out = NULL;
    if (len > MG_REQFILE_MAX_BYTES) {
        snprintf(err, err_cap, "the file is larger than %d bytes", MG_REQFILE_MAX_BYTES);
        return MG_ELIMIT;
    }
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!json_is_object(doc)) {
        if (doc)
            rc = fail(err, err_cap, "an identity is a JSON object");
        else
            rc =
                fail(err, err_cap, "not JSON: line %d, column %d: %s", je.line, je.column, je.text);
        goto out;
    }
    json_object_foreach(doc, k, v)
    {
        size_t i = 0;
        while (i < MG_ARRAY_LEN(keys) && strcmp(k, keys[i]) != 0)
            i++;
        if (i == MG_ARRAY_LEN(keys)) {
            rc = fail(err, err_cap,
                      "unknown key '%.64s' (sub, email, name, groups, claims, idp, method, "
                      "client_id)",
                      k);
            goto out;
        }
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(strs); i++) {
        v = json_object_get(doc, strs[i]);
        if (v && text_of(v) == NULL) {
            rc = fail(err, err_cap, "%s must be a string", strs[i]);
            goto out;
        }
    }
    v = json_object_get(doc, "groups");
    for (size_t i = 0; v && i < json_array_size(v); i++) {
        const json_t *g = json_array_get(v, i);
        if (text_of(g) == NULL || json_string_length(g) == 0 || json_string_length(g) > 256) {
            rc = fail(err, err_cap, "groups[%zu] must be a string of 1 to 256 bytes", i);
            goto out;
        }
    }
    if (v && (!json_is_array(v) || json_array_size(v) > MG_IDENTITY_MAX_GROUPS)) {
        rc = fail(err, err_cap, "groups must be an array of at most %d strings",
                  MG_IDENTITY_MAX_GROUPS);
        goto out;
    }
    v = json_object_get(doc, "claims");
    if (v && !json_is_object(v)) {
        rc = fail(err, err_cap, "claims must be an object");
        goto out;
    }
    v = json_object_get(doc, "client_id");
    if (v && (client = text_of(v)) == NULL) {
        rc = fail(err, err_cap, "client_id must be a string");
        goto out;
    }
    v = json_object_get(doc, "method");
    if (v == NULL) {
        /* A file that names someone is someone signed in. */
        json_object_set_new(doc, "method", json_string(mg_auth_method_name(MG_AUTH_OAUTH)));
    } else {
        bool known = false;
        for (int m = MG_AUTH_NONE; m <= MG_AUTH_CLIENT && !known; m++)
            known = text_of(v) && strcmp(text_of(v), mg_auth_method_name(m)) == 0;
        if (!known) {
            rc = fail(err, err_cap,
                      "method must be none (anonymous), oauth, service_account, jwt or client");
            goto out;
        }
    }
    norm = json_dumps(doc, JSON_COMPACT);
    MG_ASSERT(norm != NULL);
    rc = mg_identity_from_json(norm, strlen(norm), out);
    if (rc < 0) {
        snprintf(err, err_cap, "not an identity (%s)", mg_strstatus(rc));
        goto out;
    }
    free((*out)->client_id);
    (*out)->client_id = mg_xstrdup(client);
out:
    free(norm);
    json_decref(doc);
    return rc;
}
