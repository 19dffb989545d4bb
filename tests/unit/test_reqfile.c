/* Unit tests for the input files of `mcpgate policy test` (src/cli/
 * reqfile.c): a bare JSON-RPC body (object, batch, duplicate keys kept byte
 * for byte), the described request with each key and its defaults, every
 * error with its message, the size bound, every truncation of a valid file,
 * and the identity file (default method, anonymous, client id, strict
 * keys and types). */
#include "authn/identity.h"
#include "cli/reqfile.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static int parse(const char *text, struct mg_reqfile *r, char *err, size_t cap)
{
    return mg_reqfile_parse(text, strlen(text), r, err, cap);
}

static void bad(const char *text, const char *want_prefix)
{
    struct mg_reqfile r;
    char err[512] = "";
    int rc = parse(text, &r, err, sizeof err);
    bool ok = rc == MG_EINVAL && strncmp(err, want_prefix, strlen(want_prefix)) == 0 &&
              r.body == NULL && r.path == NULL && r.tools == NULL;
    TAP_OK(ok, "refused: %s", text);
    if (!ok)
        printf("#   rc=%d err=\"%s\", want \"%s...\"\n", rc, err, want_prefix);
    mg_reqfile_fini(&r);
}

static void test_bare_body(void)
{
    struct mg_reqfile r;
    char err[512];
    const char *one = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n";
    TAP_IS_INT(parse(one, &r, err, sizeof err), 0, "a JSON-RPC message is a body");
    TAP_OK(r.body_len == strlen(one) && memcmp(r.body, one, r.body_len) == 0,
           "its bytes are the body, newline included");
    TAP_IS_STR(r.http_method, "POST", "POSTed");
    TAP_OK(r.path == NULL && !r.has_source && !r.has_time && r.tools == NULL &&
               r.mcp_method == NULL,
           "nothing else is set");
    mg_reqfile_fini(&r);

    const char *batch = "[{\"jsonrpc\":\"2.0\",\"method\":\"a\"}, 7]";
    TAP_IS_INT(parse(batch, &r, err, sizeof err), 0, "an array is a body (even a bad batch)");
    TAP_IS_STR(r.body, batch, "as written");
    mg_reqfile_fini(&r);

    const char *dup = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"method\":\"x\"}";
    TAP_IS_INT(parse(dup, &r, err, sizeof err), 0, "a body with duplicate keys is still a body");
    TAP_IS_STR(r.body, dup, "kept byte for byte, for the gateway to refuse");
    mg_reqfile_fini(&r);
}

static void test_described(void)
{
    struct mg_reqfile r;
    char err[512];
    const char *f =
        "{\"http_method\": \"POST\", \"path\": \"/sql?x=1\", \"source_ip\": \"10.1.2.3\","
        " \"time\": \"2026-11-22T10:00:00Z\","
        " \"headers\": {\"mcp-METHOD\": \"tools/call\", \"Mcp-Name\": \"query\","
        " \"MCP-Protocol-Version\": \"2026-07-28\"},"
        " \"tools\": [{\"name\": \"query\"}],"
        " \"body\": {\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/call\","
        " \"params\": {\"name\": \"query\", \"arguments\": {\"n\": 1.5}}}}";
    TAP_IS_INT(parse(f, &r, err, sizeof err), 0, "a described request");
    TAP_IS_STR(r.path, "/sql", "the path without its query");
    TAP_OK(r.has_source && r.source.ss_family == AF_INET, "an IPv4 source");
    TAP_IS_STR(r.source_ip, "10.1.2.3", "as written");
    TAP_OK(r.has_time && r.now == 1795341600, "the time, in unix seconds");
    TAP_IS_STR(r.mcp_method, "tools/call", "Mcp-Method, any case");
    TAP_IS_STR(r.mcp_name, "query", "Mcp-Name");
    TAP_IS_STR(r.protocol_version, "2026-07-28", "MCP-Protocol-Version");
    TAP_OK(json_is_array(r.tools) && json_array_size(r.tools) == 1, "the tools");
    TAP_IS_STR(r.body,
               "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
               "\"query\",\"arguments\":{\"n\":1.5}}}",
               "an object body is serialised, key order kept");
    mg_reqfile_fini(&r);

    TAP_IS_INT(parse("{\"body\": \"not json {\"}", &r, err, sizeof err), 0, "a string body");
    TAP_IS_STR(r.body, "not json {", "used byte for byte");
    TAP_IS_STR(r.http_method, "POST", "POST by default");
    mg_reqfile_fini(&r);

    TAP_IS_INT(parse("{\"body\": \"a\\u0000b\"}", &r, err, sizeof err), 0, "a body with NUL");
    TAP_OK(r.body_len == 3 && r.body[1] == '\0', "its length counts the NUL");
    mg_reqfile_fini(&r);

    TAP_IS_INT(parse("{\"http_method\": \"GET\", \"source_ip\": \"2001:db8::1\", \"time\": "
                     "1700000000}",
                     &r, err, sizeof err),
               0, "a GET");
    TAP_OK(r.body == NULL && strcmp(r.http_method, "GET") == 0, "without a body");
    TAP_OK(r.source.ss_family == AF_INET6, "an IPv6 source");
    TAP_OK(r.now == 1700000000, "unix seconds");
    mg_reqfile_fini(&r);

    TAP_IS_INT(parse("{\"http_method\": \"DELETE\", \"time\": \"2026-11-22T11:00:00+01:00\"}", &r,
                     err, sizeof err),
               0, "a DELETE, a time with an offset");
    TAP_OK(r.now == 1795341600, "the offset applies");
    mg_reqfile_fini(&r);

    TAP_IS_INT(
        parse("{\"http_method\": \"OPTIONS\", \"time\": \"2026-11-22\"}", &r, err, sizeof err), 0,
        "a date");
    TAP_OK(r.now == 1795305600, "midnight UTC");
    mg_reqfile_fini(&r);

    TAP_IS_INT(parse("{\"body\": [1, 2]}", &r, err, sizeof err), 0, "a batch body");
    TAP_IS_STR(r.body, "[1,2]", "serialised");
    mg_reqfile_fini(&r);
}

static void test_errors(void)
{
    bad("", "not JSON");
    bad("{\"body\": 1", "not JSON");
    bad("\"x\"", "not JSON");
    bad("{\"method\": \"ping\"}", "unknown key 'method': a JSON-RPC message needs");
    bad("{\"jsonrcp\": \"2.0\"}", "unknown key 'jsonrcp' (http_method, path");
    bad("{\"http_method\": \"post\", \"body\": 1}", "http_method must be POST, GET");
    bad("{\"http_method\": \"PATCH\", \"body\": 1}", "http_method must be POST, GET");
    bad("{\"http_method\": 1}", "http_method must be");
    bad("{\"path\": \"sql\", \"body\": 1}", "path must be a string starting with '/'");
    bad("{\"path\": 3, \"body\": 1}", "path must be");
    bad("{\"source_ip\": \"10.0.0.1:80\", \"body\": 1}", "source_ip must be an IPv4 or IPv6");
    bad("{\"source_ip\": \"[::1]\", \"body\": 1}", "source_ip must be");
    bad("{\"source_ip\": \"10.0.0.0/8\", \"body\": 1}", "source_ip must be");
    bad("{\"time\": \"15m\", \"body\": 1}", "time must be RFC 3339");
    bad("{\"time\": \"2026-13-01\", \"body\": 1}", "time must be RFC 3339");
    bad("{\"time\": 1.5, \"body\": 1}", "time must be RFC 3339");
    bad("{\"headers\": {\"Accept\": \"x\"}, \"body\": 1}",
        "headers: 'Accept' plays no part in the decision");
    bad("{\"headers\": {\"Mcp-Name\": \"a\", \"mcp-name\": \"b\"}, \"body\": 1}",
        "headers: 'mcp-name' is given twice");
    bad("{\"headers\": {\"Mcp-Name\": 1}, \"body\": 1}", "headers: the value of 'Mcp-Name'");
    bad("{\"headers\": [], \"body\": 1}", "headers must be an object");
    bad("{\"tools\": {}, \"body\": 1}", "tools must be an array");
    bad("{\"http_method\": \"POST\"}", "a POST needs a body");
    bad("{}", "a POST needs a body");
    bad("{\"http_method\": \"GET\", \"body\": {}}", "only a POST has a body");
    bad("{\"http_method\": \"GET\", \"headers\": {\"Mcp-Name\": \"a\"}}",
        "headers are judged only with a POST's body");
    bad("{\"body\": 1, \"body\": 2}", "line 1, column");

    struct mg_reqfile r;
    char err[512];
    static const char tiny[] = "{}";
    TAP_IS_INT(mg_reqfile_parse(tiny, (size_t)MG_REQFILE_MAX_BYTES + 1, &r, err, sizeof err),
               MG_ELIMIT, "a file over the bound is refused before it is read");
}

static void test_truncations(void)
{
    const char *f = "{\"http_method\":\"POST\",\"path\":\"/sql\",\"source_ip\":\"::1\",\"time\":"
                    "\"2026-11-22T10:00:00Z\",\"headers\":{\"Mcp-Method\":\"ping\"},\"tools\":[],"
                    "\"body\":{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}}";
    size_t n = strlen(f), ok = 0;
    for (size_t i = 0; i < n; i++) {
        struct mg_reqfile r;
        char err[512];
        char *cut = strndup(f, i);
        if (mg_reqfile_parse(cut, i, &r, err, sizeof err) == 0)
            ok++;
        mg_reqfile_fini(&r);
        free(cut);
    }
    TAP_IS_INT(ok, 0, "every truncation of a described request is refused (%zu)", n);
}

static void test_identity(void)
{
    struct mg_identity *id = NULL;
    char err[512] = "";
    const char *f = "{\"sub\": \"user:ann@example.com\", \"email\": \"ann@example.com\","
                    " \"name\": \"Ann\", \"groups\": [\"users\", \"admins\"],"
                    " \"claims\": {\"dept\": \"eng\"}, \"idp\": \"builtin\","
                    " \"client_id\": \"claude\"}";
    TAP_IS_INT(mg_reqfile_identity(f, strlen(f), &id, err, sizeof err), 0, "an identity");
    if (id) {
        TAP_IS_STR(id->subject, "user:ann@example.com", "subject");
        TAP_IS_STR(id->email, "ann@example.com", "email");
        TAP_OK(id->n_groups == 2 && mg_identity_in_group(id, "admins"), "groups");
        TAP_IS_STR(json_string_value(json_object_get(id->claims, "dept")), "eng", "claims");
        TAP_IS_STR(id->client_id, "claude", "client_id");
        TAP_IS_INT(id->method, MG_AUTH_OAUTH, "signed in (oauth) by default");
    }
    mg_identity_unref(id);

    const char *anon = "{\"method\": \"none\"}";
    TAP_IS_INT(mg_reqfile_identity(anon, strlen(anon), &id, err, sizeof err), 0, "anonymous");
    TAP_OK(id && id->method == MG_AUTH_NONE && id->client_id[0] == '\0', "method none");
    mg_identity_unref(id);

    const char *sa = "{\"sub\": \"sa:bot\", \"method\": \"service_account\"}";
    TAP_IS_INT(mg_reqfile_identity(sa, strlen(sa), &id, err, sizeof err), 0, "a service account");
    TAP_OK(id && id->method == MG_AUTH_SERVICE, "method service_account");
    mg_identity_unref(id);

    static const struct {
        const char *text, *want;
    } bads[] = {
        {"", "not JSON"},
        {"[]", "an identity is a JSON object"},
        {"{\"group\": []}", "unknown key 'group'"},
        {"{\"sub\": 1}", "sub must be a string"},
        {"{\"email\": \"a\\u0000b\"}", "email must be a string"},
        {"{\"groups\": \"admins\"}", "groups must be an array"},
        {"{\"groups\": [1]}", "groups[0] must be a string"},
        {"{\"groups\": [\"\"]}", "groups[0] must be a string"},
        {"{\"claims\": []}", "claims must be an object"},
        {"{\"client_id\": 5}", "client_id must be a string"},
        {"{\"method\": \"password\"}", "method must be none"},
        {"{\"sub\": \"a\", \"sub\": \"b\"}", "not JSON"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bads); i++) {
        id = NULL;
        err[0] = '\0';
        int rc = mg_reqfile_identity(bads[i].text, strlen(bads[i].text), &id, err, sizeof err);
        bool ok = rc < 0 && id == NULL && strncmp(err, bads[i].want, strlen(bads[i].want)) == 0;
        TAP_OK(ok, "identity refused: %s", bads[i].text);
        if (!ok)
            printf("#   rc=%d err=\"%s\"\n", rc, err);
        mg_identity_unref(id);
    }
}

int main(void)
{
    test_bare_body();
    test_described();
    test_errors();
    test_truncations();
    test_identity();
    return tap_done();
}
