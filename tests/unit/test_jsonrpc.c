/* Unit tests for JSON-RPC 2.0 inspection (src/mcp/jsonrpc): single requests,
 * notifications and responses, batches, the shapes refused as INVALID
 * (duplicate keys, wrong version, non-objects, bad method or id types,
 * garbage, truncation at every byte, deep nesting), the id echoed in
 * gateway errors (id_json), has_initialize and method truncation; the
 * one-pass reading held to the jansson reading on mutated bodies, and the
 * arguments it keeps flat (mcp/args.h) against those it leaves to jansson.
 * */
#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "tap.h"

#include <jansson.h>

struct exp {
    enum mg_jsonrpc_shape shape;
    size_t n_messages, n_requests, n_notifications, n_responses;
    const char *method;
    const char *id_json; /* NULL = none */
    bool has_initialize;
};

/* A message's arguments as a tree, whichever form they were read in: a new
 * reference, or NULL for none. */
static json_t *args_tree(const struct mg_jsonrpc_msg *m)
{
    MG_ASSERT(m->arguments == NULL || m->args_flat == NULL);
    return m->args_flat ? mg_args_flat_tree(m->args_flat) : json_incref((json_t *)m->arguments);
}

static bool no_args(const struct mg_jsonrpc_msg *m)
{
    return m->arguments == NULL && m->args_flat == NULL;
}

static void inspect_s(const char *body, struct mg_jsonrpc_info *i)
{
    mg_jsonrpc_inspect(body, strlen(body), i);
}

static void check(const char *name, const char *body, const struct exp *e)
{
    struct mg_jsonrpc_info i;
    inspect_s(body, &i);
    bool ok = i.shape == e->shape && i.n_messages == e->n_messages &&
              i.n_requests == e->n_requests && i.n_notifications == e->n_notifications &&
              i.n_responses == e->n_responses && strcmp(i.method, e->method) == 0 &&
              i.has_initialize == e->has_initialize &&
              (e->id_json ? i.id_json && strcmp(i.id_json, e->id_json) == 0 : i.id_json == NULL) &&
              (e->shape == MG_JSONRPC_INVALID) == (i.error != NULL);
    TAP_OK(ok, "%s", name);
    if (!ok)
        printf("#   shape=%d n=%zu req=%zu notif=%zu resp=%zu method=[%s] id=%s init=%d error=%s\n",
               i.shape, i.n_messages, i.n_requests, i.n_notifications, i.n_responses, i.method,
               i.id_json ? i.id_json : "(null)", i.has_initialize, i.error ? i.error : "(null)");
    mg_jsonrpc_info_fini(&i);
}

/* INVALID, with no counts leaking out as a result. */
static void invalid(const char *name, const char *body, size_t len)
{
    struct mg_jsonrpc_info i;
    mg_jsonrpc_inspect(body, len, &i);
    TAP_OK(i.shape == MG_JSONRPC_INVALID && i.error != NULL && i.id_json == NULL, "invalid: %s",
           name);
    if (i.shape != MG_JSONRPC_INVALID)
        printf("#   shape=%d\n", i.shape);
    mg_jsonrpc_info_fini(&i);
}

#define INVALID(name, body) invalid(name, body, sizeof(body) - 1)

static void test_single(void)
{
    check("request", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "tools/list", "1", false});
    check("request with params and whitespace",
          " \n{ \"method\" : \"tools/call\", \"params\": {\"name\":\"q\",\"arguments\":{}},\n"
          "  \"id\" : \"abc\", \"jsonrpc\" : \"2.0\" }\n",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "tools/call", "\"abc\"", false});
    check("notification", "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 0, 1, 0, "notifications/initialized", NULL, false});
    check("response with result", "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 0, 0, 1, "", NULL, false});
    check("response with error",
          "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32601,\"message\":\"x\"}}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 0, 0, 1, "", NULL, false});
    check("response with null result", "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":null}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 0, 0, 1, "", NULL, false});
    check("initialize",
          "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
          "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
          "\"clientInfo\":{\"name\":\"c\",\"version\":\"1\"}}}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "initialize", "0", true});
    check("method named Initialize is not initialize",
          "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"Initialize\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "Initialize", "0", false});
    check("empty method name", "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "", "0", false});
}

static void test_ids(void)
{
    check("id string", "{\"jsonrpc\":\"2.0\",\"id\":\"req-1\",\"method\":\"m\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "m", "\"req-1\"", false});
    check("id empty string", "{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"m\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "m", "\"\"", false});
    check("id string with quote, backslash and control escaped",
          "{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\\\\c\\n\",\"method\":\"m\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "m", "\"a\\\"b\\\\c\\n\"", false});
    check("id int", "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"m\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "m", "42", false});
    check("id negative int", "{\"jsonrpc\":\"2.0\",\"id\":-7,\"method\":\"m\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "m", "-7", false});
    check("id int64 max", "{\"jsonrpc\":\"2.0\",\"id\":9223372036854775807,\"method\":\"m\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "m", "9223372036854775807", false});
    check("id null", "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "m", "null", false});
    check("id float", "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"m\"}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "m", "1.5", false});
    INVALID("id object", "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"m\"}");
    INVALID("id array", "{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"m\"}");
    INVALID("id true", "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"m\"}");
    INVALID("id object on a response", "{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"result\":1}");

    /* A real id is echoed as an equal JSON value (jansson may respell it). */
    static const char *reals[] = {"0.1", "1e3", "-2.5E-3", "1.0"};
    for (size_t k = 0; k < MG_ARRAY_LEN(reals); k++) {
        char body[128];
        snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"m\"}", reals[k]);
        struct mg_jsonrpc_info i;
        inspect_s(body, &i);
        json_t *a = json_loads(reals[k], JSON_DECODE_ANY, NULL);
        json_t *b = i.id_json ? json_loads(i.id_json, JSON_DECODE_ANY, NULL) : NULL;
        TAP_OK(i.shape == MG_JSONRPC_SINGLE && a && b && json_equal(a, b),
               "id %s echoes an equal number (%s)", reals[k], i.id_json ? i.id_json : "(null)");
        json_decref(a);
        json_decref(b);
        mg_jsonrpc_info_fini(&i);
    }

    /* RFC 8259 §6 allows integers of any size; a body is not "invalid JSON"
     * because a number does not fit in 64 bits. */
    check("integer beyond int64 in params is valid JSON (jsonrpc.c:60)",
          "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"n\","
          "\"arguments\":{\"v\":18446744073709551616}}}",
          &(struct exp){MG_JSONRPC_SINGLE, 1, 1, 0, 0, "tools/call", "1", false});
}

static void test_batch(void)
{
    check("batch of request, notification, response",
          "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"},"
          "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"method\":\"tools/list\"},"
          "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}},"
          "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"initialize\"}]",
          &(struct exp){MG_JSONRPC_BATCH, 4, 2, 1, 1, "notifications/x", "\"r\"", true});
    check("batch of one", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
          &(struct exp){MG_JSONRPC_BATCH, 1, 1, 0, 0, "ping", "1", false});
    check(
        "batch of responses only",
        "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{}}]",
        &(struct exp){MG_JSONRPC_BATCH, 2, 0, 0, 2, "", NULL, false});
    INVALID("empty batch", "[]");
    INVALID("empty batch with spaces", " [ ] ");
    INVALID("batch with a number", "[1]");
    INVALID("batch with a nested batch", "[[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}]]");
    INVALID("batch with one bad member after a good request",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"},{\"jsonrpc\":\"1.0\",\"id\":2,"
            "\"method\":\"m\"}]");
    INVALID("batch with a response without id",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"},{\"jsonrpc\":\"2.0\",\"result\":1}]");
}

static void test_invalid(void)
{
    INVALID("duplicate method", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"method\":\"b\"}");
    INVALID("duplicate id", "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"a\"}");
    INVALID("duplicate jsonrpc",
            "{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}");
    INVALID("duplicate key nested in params",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":{\"x\":1,\"x\":2}}");
    INVALID("duplicate key in a batch member",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"method\":\"a\"}]");
    INVALID("jsonrpc 1.0", "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"a\"}");
    INVALID("jsonrpc number", "{\"jsonrpc\":2.0,\"id\":1,\"method\":\"a\"}");
    INVALID("jsonrpc \"2.0 \"", "{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"a\"}");
    INVALID("jsonrpc missing", "{\"id\":1,\"method\":\"a\"}");
    INVALID("method number", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}");
    INVALID("method null", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}");
    INVALID("method object", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":{}}");
    INVALID("neither method nor result", "{\"jsonrpc\":\"2.0\",\"id\":1}");
    INVALID("response without id", "{\"jsonrpc\":\"2.0\",\"result\":1}");
    INVALID("top-level number", "1");
    INVALID("top-level string", "\"x\"");
    INVALID("top-level null", "null");
    INVALID("top-level true", "true");
    INVALID("empty body", "");
    INVALID("whitespace body", " \r\n\t");
    INVALID("trailing garbage", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"} x");
    INVALID("two objects", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}{}");
    INVALID("NaN id", "{\"jsonrpc\":\"2.0\",\"id\":NaN,\"method\":\"a\"}");
    INVALID("single quotes", "{'jsonrpc':'2.0','id':1,'method':'a'}");
    INVALID("trailing comma", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",}");
    INVALID("comment", "{\"jsonrpc\":\"2.0\",/*c*/\"id\":1,\"method\":\"a\"}");
    INVALID("invalid UTF-8 in method", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\xff\"}");
    INVALID("escaped NUL in a string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000b\"}");
    {
        static const char nul[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}\0";
        invalid("raw NUL after the object", nul, sizeof nul - 1);
        static const char nul2[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\0b\"}";
        invalid("raw NUL inside a string", nul2, sizeof nul2 - 1);
    }

    /* Every truncation of a valid request is INVALID and leaks nothing. */
    static const char full[] = "[{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"initialize\","
                               "\"params\":{\"a\":[1,2.5,true,null,\"s\\u00e9\"]}}]";
    size_t bad = 0;
    for (size_t n = 0; n < sizeof full - 1; n++) {
        struct mg_jsonrpc_info i;
        mg_jsonrpc_inspect(full, n, &i);
        if (i.shape != MG_JSONRPC_INVALID || i.id_json != NULL)
            bad = bad ? bad : n + 1;
        mg_jsonrpc_info_fini(&i);
    }
    TAP_IS_INT(bad, 0, "every truncation of a valid batch is INVALID (first bad length + 1)");
    struct mg_jsonrpc_info i;
    mg_jsonrpc_inspect(full, sizeof full - 1, &i);
    TAP_IS_INT(i.shape, MG_JSONRPC_BATCH, "and the whole of it is a batch");
    mg_jsonrpc_info_fini(&i);

    /* Deep nesting fails cleanly (no stack exhaustion). */
    struct mg_buf b;
    mg_buf_init(&b, 1 << 22);
    for (int k = 0; k < 200000; k++)
        mg_buf_append(&b, "[", 1);
    invalid("200000 nested arrays", b.data, b.len);
    mg_buf_reset(&b);
    mg_buf_appends(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":");
    for (int k = 0; k < 100000; k++)
        mg_buf_appends(&b, "{\"a\":");
    mg_buf_appends(&b, "1");
    for (int k = 0; k < 100000; k++)
        mg_buf_appends(&b, "}");
    mg_buf_appends(&b, "}");
    invalid("100000 nested objects in params", b.data, b.len);
    mg_buf_reset(&b);
    mg_buf_appends(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":");
    for (int k = 0; k < 100; k++)
        mg_buf_appends(&b, "[");
    for (int k = 0; k < 100; k++)
        mg_buf_appends(&b, "]");
    mg_buf_appends(&b, "}");
    mg_jsonrpc_inspect(b.data, b.len, &i);
    TAP_IS_INT(i.shape, MG_JSONRPC_SINGLE, "100 nested arrays in params are fine");
    mg_jsonrpc_info_fini(&i);
    mg_buf_fini(&b);
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xe0) == 0xc0 ? 1
                : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3
                                      : -1;
        if (n < 0)
            return false;
        p++;
        for (int k = 0; k < n; k++, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

static void test_method_truncation(void)
{
    struct mg_buf b;
    mg_buf_init(&b, 1 << 16);
    char name[301];
    memset(name, 'm', 300);
    name[300] = '\0';
    mg_buf_appendf(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\"}", name);
    struct mg_jsonrpc_info i;
    mg_jsonrpc_inspect(b.data, b.len, &i);
    TAP_IS_INT(i.shape, MG_JSONRPC_SINGLE, "long method: valid");
    TAP_IS_INT(strlen(i.method), sizeof i.method - 1, "long method: truncated to the field");
    TAP_OK(strncmp(i.method, name, sizeof i.method - 1) == 0, "long method: a prefix of it");
    mg_jsonrpc_info_fini(&i);

    /* An initialize that is not first in a batch still counts. */
    mg_buf_reset(&b);
    mg_buf_appendf(&b,
                   "[{\"jsonrpc\":\"2.0\",\"method\":\"%s\"},"
                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}]",
                   name);
    mg_jsonrpc_inspect(b.data, b.len, &i);
    TAP_OK(i.shape == MG_JSONRPC_BATCH && i.has_initialize && strlen(i.method) == 95,
           "initialize detected after a long method");
    mg_jsonrpc_info_fini(&i);

    /* The method goes into the JSON access log: truncation must not cut a
     * UTF-8 sequence in two (RFC 8259 §8.1). */
    mg_buf_reset(&b);
    char ascii[95];
    memset(ascii, 'a', 94);
    ascii[94] = '\0';
    mg_buf_appendf(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\xc3\xa9\"}", ascii);
    mg_jsonrpc_inspect(b.data, b.len, &i);
    TAP_IS_INT(i.shape, MG_JSONRPC_SINGLE, "method with a 2-byte character at the cut: valid");
    TAP_OK(valid_utf8(i.method),
           "truncated method stays valid UTF-8 (jsonrpc.c:39 cuts inside U+00E9)");
    mg_jsonrpc_info_fini(&i);
    mg_buf_fini(&b);
}

/* What each message asks: the policy judges exactly these fields. */
static void test_targets(void)
{
    struct mg_jsonrpc_info i;
    inspect_s("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":"
              "\"query\",\"arguments\":{\"sql\":\"SELECT 1\",\"n\":5}}}",
              &i);
    TAP_IS_INT(i.shape, MG_JSONRPC_SINGLE, "tools/call: single");
    TAP_OK(i.msgs && i.msgs[0].kind == MG_JSONRPC_REQUEST, "tools/call: a request");
    TAP_IS_STR(i.msgs[0].method, "tools/call", "tools/call: method");
    TAP_IS_STR(i.msgs[0].name, "query", "tools/call: name");
    {
        json_t *args = args_tree(&i.msgs[0]);
        json_t *n = json_object_get(args, "n"), *sql = json_object_get(args, "sql");
        TAP_OK(json_is_object(args) && json_object_size(args) == 2 && json_is_integer(n) &&
                   json_integer_value(n) == 5 && json_is_string(sql) &&
                   strcmp(json_string_value(sql), "SELECT 1") == 0,
               "tools/call: arguments as parsed");
        json_decref(args);
        TAP_OK(i.msgs[0].args_flat == &i.flat && i.msgs[0].arguments == NULL,
               "tools/call: plain arguments are read flat, without a tree");
    }
    TAP_OK(json_integer_value(i.msgs[0].id) == 7, "tools/call: id");
    mg_jsonrpc_info_fini(&i);

    inspect_s("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":"
              "\"file:///a\"}},{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"},"
              "{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"result\":{}},{\"jsonrpc\":\"2.0\",\"id\":2,"
              "\"method\":\"prompts/get\",\"params\":{\"name\":\"p\"}}]",
              &i);
    TAP_IS_INT(i.shape, MG_JSONRPC_BATCH, "batch");
    TAP_IS_INT(i.n_messages, 4, "batch: four messages");
    TAP_IS_STR(i.msgs[0].name, "file:///a", "resources/read: the uri");
    TAP_OK(no_args(&i.msgs[0]), "resources/read: no arguments");
    TAP_OK(i.msgs[1].kind == MG_JSONRPC_NOTIFICATION && i.msgs[1].name == NULL &&
               strcmp(i.msgs[1].method, "notifications/initialized") == 0,
           "notification");
    TAP_OK(i.msgs[2].kind == MG_JSONRPC_RESPONSE && i.msgs[2].method == NULL &&
               strcmp(json_string_value(i.msgs[2].id), "s1") == 0,
           "response to a server request");
    TAP_OK(i.msgs[3].kind == MG_JSONRPC_REQUEST && strcmp(i.msgs[3].name, "p") == 0 &&
               no_args(&i.msgs[3]),
           "prompts/get without arguments");
    mg_jsonrpc_info_fini(&i);

    inspect_s("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &i);
    TAP_OK(i.msgs[0].name == NULL && no_args(&i.msgs[0]), "tools/list: no target");
    mg_jsonrpc_info_fini(&i);

    /* Ambiguous targets: refused, nothing to judge. */
    INVALID("tools/call without params",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\"}]");
    INVALID("tools/call with a numeric name",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":1}}]");
    INVALID("tools/call with a NUL in the name",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"a\\u0000b\"}}]");
    INVALID("tools/call with array arguments",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"q\",\"arguments\":[1]}}]");
    INVALID("tools/call with the name twice",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"a\",\"name\":\"b\"}}]");
    INVALID("resources/read with params a list",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":[\"u\"]}]");
    INVALID("response with result and error",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}]");
    INVALID("method with a NUL", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000\"}]");
    struct mg_buf big;
    mg_buf_init(&big, 1 << 20);
    mg_buf_appends(&big, "[");
    for (int k = 0; k <= MG_JSONRPC_MAX_BATCH; k++)
        mg_buf_appendf(&big, "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"ping\"}", k ? "," : "",
                       k);
    mg_buf_appends(&big, "]");
    invalid("a batch over the bound", big.data, big.len);
    mg_buf_fini(&big);

    /* Regression (fuzz): an id far beyond int64 was converted to long long
     * before its range was checked (undefined behaviour). */
    inspect_s("[{\"jsonrpc\":\"2.0\",\"id\":3000000000000000000000000000000000000000,\"method\":"
              "\"n\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}]",
              &i);
    TAP_OK(i.shape == MG_JSONRPC_BATCH && i.id_json && strchr(i.id_json, 'e') != NULL,
           "an id beyond int64 stays a real number");
    mg_jsonrpc_info_fini(&i);

    /* A single message that parsed keeps its id for the error answer. */
    inspect_s("{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"tools/call\",\"params\":{}}", &i);
    TAP_OK(i.shape == MG_JSONRPC_INVALID && i.id_json && strcmp(i.id_json, "42") == 0,
           "an unusable single request keeps its id for the error");
    mg_jsonrpc_info_fini(&i);
}

/* The one-pass reading of a plain request (no tree) must say exactly what
 * the jansson reading says, on every body: seeds covering what it takes and
 * what it must decline, and many mutations of them. */
static const char *const fast_seeds[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\","
    "\"arguments\":{\"sql\":\"SELECT 1\"}}}",
    " {\"params\":{\"arguments\":{\"a\":[1,2.5,{\"b\":null}],\"c\":\"x\\ny\"},\"name\":\"q\"},"
    "\"method\":\"tools/call\",\"jsonrpc\":\"2.0\",\"id\":\"abc\"}\r\n",
    "{\"jsonrpc\":\"2.0\",\"id\":-9223372036854775808,\"method\":\"resources/read\",\"params\":"
    "{\"uri\":\"file:///\\u00e9\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":9223372036854775808,\"method\":\"ping\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
    "\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"c\",\"version\":\"1\"}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"prompts/get\",\"params\":{\"name\":\"greet\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/"
    "call\",\"params\":{\"name\":\"a\",\"name\":\"b\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"a\","
    "\"arguments\":{\"k\":1,\"k\":2}}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"tools/list\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":1e2,\"method\":\"tools/list\",\"params\":{\"x\":1e400}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}",
    "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\\u0000\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"n\\u0061me\":\"x\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/"
    "call\",\"params\":{\"name\":\"\\ud83d\\ude00\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\","
    "\"arguments\":null}}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":[1]}",
    "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"t\xc3\xa9\xe2\x82\xac\",\"params\":{\"deep\":"
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}",
    /* Flat arguments (mcp/args.h): every kind of member, eight of them. */
    "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"t\","
    "\"arguments\":{\"s\":\"x y\",\"e\":\"\",\"i\":-12,\"z\":0,\"t\":true,\"f\":false,\"n\":null,"
    "\"\xc3\xa9\":\"\xe2\x82\xac\"}}}",
    "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"prompts/"
    "get\",\"params\":{\"arguments\":{\"a\":1,"
    "\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9},\"name\":\"g\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"t\","
    "\"arguments\":{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"r\":0.5,\"z\":-0}}}",
    " {\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"arguments\":{ \"\" : \"v\" ,\"k\":{}"
    "}},\"jsonrpc\":\"2.0\"}",
};

struct diff_stats {
    size_t n_bodies, n_fast, n_flat, n_diff;
};

/* Mutates seed (1 to 3 times at bytes from lo on) unless it is the first
 * iteration, and holds the one-pass reading of the result to the tree. */
static bool mutate_and_compare(const char *seed, size_t lo, int it, uint64_t *x,
                               struct diff_stats *st)
{
    static const char noise[] = "{}[]\",:\\ 0123456789.-+eEtrufalsn\x01\xc3\xa9\xff";
    char buf[512];
    size_t len = strlen(seed);
    memcpy(buf, seed, len);
    for (int k = it == 0 ? 0 : 1 + (int)(*x % 3); k > 0; k--) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        size_t at = len > lo ? lo + *x % (len - lo) : len ? *x % len : 0;
        char c = noise[(*x >> 20) % (sizeof noise - 1)];
        switch ((*x >> 40) % 4) {
        case 0: buf[at] = c; break; /* replace */
        case 1:                     /* insert */
            if (len + 1 < sizeof buf) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
            }
            break;
        case 2: /* delete */
            if (len) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
            break;
        default: len = at; /* cut */
        }
    }
    struct mg_jsonrpc_info a, b;
    mg_jsonrpc_inspect(buf, len, &a);
    mg_jsonrpc_inspect_tree(buf, len, &b);
    st->n_bodies++;
    st->n_fast += a.msgs == &a.one;
    st->n_flat += a.msgs == &a.one && a.msgs[0].args_flat != NULL;
    bool same = mg_jsonrpc_info_same(&a, &b);
    if (!same && st->n_diff++ < 3)
        printf("# fast and tree differ on: %.*s\n", (int)len, buf);
    if (it == 0)
        TAP_OK(same, "seed: both readings agree (%s%s)", a.msgs == &a.one ? "fast" : "declined",
               a.msgs == &a.one && a.msgs[0].args_flat ? ", arguments flat" : "");
    mg_jsonrpc_info_fini(&a);
    mg_jsonrpc_info_fini(&b);
    return same;
}

static void test_fast_path(void)
{
    struct diff_stats st = {0}, in_args = {0};
    uint64_t x = 88172645463325252ULL;

    for (size_t s = 0; s < MG_ARRAY_LEN(fast_seeds); s++)
        for (int it = 0; it < 4000; it++)
            mutate_and_compare(fast_seeds[s], 0, it, &x, &st);
    TAP_IS_INT((int)st.n_diff, 0, "%zu bodies: the one-pass reading never differs", st.n_bodies);
    TAP_OK(st.n_fast > st.n_bodies / 50, "and it read %zu of them itself", st.n_fast);
    TAP_OK(st.n_flat > 0, "%zu of them with flat arguments", st.n_flat);
    /* The same, with the mutations inside the arguments: where what is
     * flat and what is not is decided. */
    for (size_t s = 0; s < MG_ARRAY_LEN(fast_seeds); s++) {
        const char *a = strstr(fast_seeds[s], "\"arguments\":{");
        if (a == NULL)
            continue;
        for (int it = 1; it <= 4000; it++)
            mutate_and_compare(fast_seeds[s], (size_t)(a - fast_seeds[s]) + 12, it, &x, &in_args);
    }
    TAP_IS_INT((int)in_args.n_diff, 0,
               "%zu bodies mutated in their arguments: the one-pass reading never differs",
               in_args.n_bodies);
    TAP_OK(in_args.n_flat > in_args.n_bodies / 50 &&
               in_args.n_fast - in_args.n_flat > in_args.n_bodies / 50,
           "%zu of them read with flat arguments, %zu with a tree", in_args.n_flat,
           in_args.n_fast - in_args.n_flat);
    {
        struct mg_jsonrpc_info a;
        mg_jsonrpc_inspect(fast_seeds[0], strlen(fast_seeds[0]), &a);
        TAP_OK(a.msgs == &a.one && a.shape == MG_JSONRPC_SINGLE && a.msgs[0].args_flat,
               "a plain tools/call takes the one-pass path, its arguments flat");
        mg_jsonrpc_info_fini(&a);
    }
    {
        /* Strings too long for the info's own room are allocated; short
         * ones are not. Both read the same as the tree. */
        char body[1024];
        char name[301];
        memset(name, 'n', 300);
        name[300] = '\0';
        for (int k = 0; k < 2; k++) {
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"method\":\"tools/call\","
                     "\"params\":{\"name\":\"%s\",\"arguments\":{}}}",
                     k ? name : "i", k ? name : "q");
            struct mg_jsonrpc_info a, b;
            mg_jsonrpc_inspect(body, strlen(body), &a);
            mg_jsonrpc_inspect_tree(body, strlen(body), &b);
            TAP_OK(a.msgs == &a.one && (a.strings != NULL) == (k == 1), "%s strings: one-pass, %s",
                   k ? "long" : "short", k ? "allocated" : "in the info itself");
            TAP_OK(mg_jsonrpc_info_same(&a, &b) && strcmp(a.id_json, b.id_json) == 0,
                   "%s strings: the same as the tree, id_json too", k ? "long" : "short");
            mg_jsonrpc_info_fini(&a);
            mg_jsonrpc_info_fini(&b);
        }
    }
}

/* Which arguments the one-pass reading keeps flat (mcp/args.h) and which
 * it leaves to jansson or declines altogether; either way the inspection
 * says what the jansson reading says. */
enum flat_how { FLAT, TREE, DECLINED, REFUSED };

static bool points_into(const char *p, size_t n, const char *body, size_t len)
{
    return p >= body && p + n <= body + len;
}

static void test_flat_args(void)
{
    static const struct {
        const char *name, *args;
        enum flat_how how;
        size_t n;
    } t[] = {
        {"a string", "{\"s\":\"abc\"}", FLAT, 1},
        {"an empty string", "{\"s\":\"\"}", FLAT, 1},
        {"a string of multi-byte characters",
         "{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f/\"}", FLAT, 1},
        {"a multi-byte key", "{\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\":1}", FLAT, 1},
        {"an empty key", "{\"\":\"v\"}", FLAT, 1},
        {"an integer", "{\"i\":42}", FLAT, 1},
        {"a negative integer", "{\"i\":-7}", FLAT, 1},
        {"zero and minus zero", "{\"a\":0,\"b\":-0}", FLAT, 2},
        {"int64 bounds", "{\"max\":9223372036854775807,\"min\":-9223372036854775808}", FLAT, 2},
        {"true", "{\"t\":true}", FLAT, 1},
        {"false", "{\"f\":false}", FLAT, 1},
        {"null", "{\"n\":null}", FLAT, 1},
        {"the empty object", "{}", FLAT, 0},
        {"the empty object with blanks", "{ \r\n\t}", FLAT, 0},
        {"blanks around members", "{ \"a\" : 1 ,\n\"b\"\t:\"x\" }", FLAT, 2},
        {"eight members",
         "{\"a\":1,\"b\":\"2\",\"c\":true,\"d\":false,\"e\":null,\"f\":-6,\"g\":\"\",\"h\":8}",
         FLAT, 8},
        {"nine members",
         "{\"a\":1,\"b\":\"2\",\"c\":true,\"d\":false,\"e\":null,\"f\":-6,\"g\":\"\",\"h\":8,"
         "\"i\":9}",
         TREE, 0},
        {"an escaped string", "{\"s\":\"a\\nb\"}", TREE, 0},
        {"a \\u escape", "{\"s\":\"\\u00e9\"}", TREE, 0},
        {"an escaped quote", "{\"s\":\"a\\\"b\"}", TREE, 0},
        {"a real", "{\"r\":1.5}", TREE, 0},
        {"an integral real", "{\"r\":1.0}", TREE, 0},
        {"a nested object", "{\"o\":{\"a\":1}}", TREE, 0},
        {"an empty nested object", "{\"o\":{}}", TREE, 0},
        {"an array", "{\"a\":[1]}", TREE, 0},
        {"an empty array", "{\"a\":[]}", TREE, 0},
        {"scalars, then an object", "{\"a\":1,\"b\":\"x\",\"o\":{}}", TREE, 0},
        {"an escaped key", "{\"\\u0061\":1}", DECLINED, 0},
        {"an exponent", "{\"r\":1e2}", DECLINED, 0},
        {"an integer beyond int64", "{\"i\":9223372036854775808}", DECLINED, 0},
        {"a duplicate key", "{\"a\":1,\"a\":2}", REFUSED, 0},
        {"a number", "5", REFUSED, 0},
        {"null arguments", "null", REFUSED, 0},
        {"a bad byte in a string", "{\"s\":\"\xff\"}", REFUSED, 0},
        {"a control character in a string", "{\"s\":\"a\x01\"}", REFUSED, 0},
        {"a leading zero", "{\"i\":01}", REFUSED, 0},
    };
    static const char *const how_name[] = {"flat", "a tree", "declined", "refused"};
    for (size_t k = 0; k < MG_ARRAY_LEN(t); k++) {
        for (int prompt = 0; prompt < 2; prompt++) {
            char body[512];
            int len = snprintf(body, sizeof body,
                               "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{"
                               "\"name\":\"q\",\"arguments\":%s}}",
                               prompt ? "prompts/get" : "tools/call", t[k].args);
            struct mg_jsonrpc_info a, b;
            mg_jsonrpc_inspect(body, (size_t)len, &a);
            mg_jsonrpc_inspect_tree(body, (size_t)len, &b);
            const struct mg_jsonrpc_msg *m = a.n_messages ? &a.msgs[0] : NULL;
            bool fast = a.msgs == &a.one;
            enum flat_how got = a.shape == MG_JSONRPC_INVALID   ? REFUSED
                                : !fast                         ? DECLINED
                                : m->args_flat && !m->arguments ? FLAT
                                : m->arguments && !m->args_flat ? TREE
                                                                : REFUSED;
            TAP_OK(got == t[k].how && mg_jsonrpc_info_same(&a, &b), "%s arguments, %s: %s",
                   prompt ? "prompts/get" : "tools/call", t[k].name, how_name[t[k].how]);
            if (got != t[k].how)
                printf("#   got %s\n", how_name[got]);
            if (got == FLAT && t[k].how == FLAT) {
                const struct mg_args_flat *f = m->args_flat;
                bool inside = f == &a.flat && f->n == t[k].n;
                for (size_t i = 0; i < f->n; i++)
                    inside = inside &&
                             points_into(f->m[i].key, f->m[i].key_len, body, (size_t)len) &&
                             (f->m[i].type != MG_ARG_STRING ||
                              points_into(f->m[i].s, f->m[i].s_len, body, (size_t)len)) &&
                             mg_args_flat_get(f, f->m[i].key, f->m[i].key_len) == &f->m[i];
                /* The tree it stands for, and jansson's own reading of the
                 * arguments: the same, types included (json_equal would
                 * call 1 and 1.0 equal). */
                json_t *mine = mg_args_flat_tree(f);
                json_t *ref = json_loads(t[k].args, JSON_REJECT_DUPLICATES, NULL);
                bool same = json_equal(mine, ref) && json_object_size(mine) == f->n;
                const char *key;
                json_t *v;
                json_object_foreach(ref, key, v)
                {
                    same = same && json_typeof(v) == json_typeof(json_object_get(mine, key));
                }
                TAP_OK(inside && same,
                       "  %s: %zu members, borrowed from the body, the tree jansson reads",
                       t[k].name, f->n);
                json_decref(mine);
                json_decref(ref);
            }
            mg_jsonrpc_info_fini(&a);
            mg_jsonrpc_info_fini(&b);
        }
    }

    /* Each kind of member as it was read. */
    struct mg_jsonrpc_info i;
    inspect_s("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"q\","
              "\"arguments\":{\"s\":\"x y\",\"i\":-12,\"t\":true,\"f\":false,\"n\":null,"
              "\"m\":-9223372036854775808}}}",
              &i);
    const struct mg_args_flat *f = i.msgs ? i.msgs[0].args_flat : NULL;
    const struct mg_arg *x = f ? mg_args_flat_get(f, "s", 1) : NULL;
    TAP_OK(x && x->type == MG_ARG_STRING && x->s_len == 3 && memcmp(x->s, "x y", 3) == 0,
           "flat: a string member");
    x = f ? mg_args_flat_get(f, "i", 1) : NULL;
    TAP_OK(x && x->type == MG_ARG_INT && x->i == -12, "flat: an integer member");
    x = f ? mg_args_flat_get(f, "m", 1) : NULL;
    TAP_OK(x && x->type == MG_ARG_INT && x->i == INT64_MIN, "flat: INT64_MIN");
    TAP_OK(f && mg_args_flat_get(f, "t", 1)->type == MG_ARG_TRUE &&
               mg_args_flat_get(f, "f", 1)->type == MG_ARG_FALSE &&
               mg_args_flat_get(f, "n", 1)->type == MG_ARG_NULL,
           "flat: true, false, null");
    TAP_OK(f && mg_args_flat_get(f, "", 0) == NULL && mg_args_flat_get(f, "ss", 2) == NULL &&
               mg_args_flat_get(f, "s\0", 2) == NULL,
           "flat: lookup by bytes and length");
    mg_jsonrpc_info_fini(&i);

    /* Arguments are only read for the methods that have them. */
    inspect_s("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":"
              "\"file:///a\",\"arguments\":{\"a\":1}}}",
              &i);
    TAP_OK(i.msgs == &i.one && no_args(&i.msgs[0]), "resources/read: arguments are not read");
    mg_jsonrpc_info_fini(&i);
    TAP_OK(mg_args_flat_tree(NULL) == NULL, "mg_args_flat_tree(NULL) is NULL");
}

/* Random arguments built from members that are flat and members that are
 * not (escapes, reals, nesting, exponents, huge integers, escaped or
 * repeated keys, too many members): the inspection says what jansson says
 * every time, and each outcome is seen often. */
static void test_flat_random(void)
{
    static const char *const keys[] = {
        "a",   "ab", "abc",   "",    "\xc3\xa9", "\xe2\x82\xac\xc3\xa9",
        "sql", "sq", "limit", "k/~", "a b",      "\\u0061"};
    static const char *const flat_values[] = {"\"\"",
                                              "\"abc\"",
                                              "\"\xc3\xa9\xf0\x9f\x98\x80\"",
                                              "\"5\"",
                                              "0",
                                              "-0",
                                              "-12",
                                              "9223372036854775807",
                                              "true",
                                              "false",
                                              "null",
                                              "-9223372036854775808",
                                              "\" x/y\"",
                                              "\"\x7f\""};
    static const char *const other_values[] = {
        "1.5", "1.0",       "\"a\\nb\"", "\"\\u00e9\"", "{}",
        "[]",  "[1,\"a\"]", "{\"x\":1}", "1e2",         "9223372036854775808"};
    static const char *const blanks[] = {"", "", "", " ", "\n\t", "\r\n "};
    size_t seen[4] = {0}, n_diff = 0, n_count = 0, n = 20000;
    for (size_t it = 0; it < n; it++) {
        char body[2048];
        size_t len = 0, members = tap_rand(6) == 0 ? 9 + tap_rand(2) : tap_rand(9);
        bool plain = tap_rand(2) == 0;
#define PUT(str) (len += (size_t)snprintf(body + len, sizeof body - len, "%s", (str)))
        PUT("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"q\","
            "\"arguments\":");
        PUT(blanks[tap_rand(MG_ARRAY_LEN(blanks))]);
        PUT("{");
        for (size_t m = 0; m < members; m++) {
            char key[32];
            const char *k = keys[tap_rand(MG_ARRAY_LEN(keys))];
            if (tap_rand(8) == 0)
                snprintf(key, sizeof key, "%s", k); /* may repeat */
            else
                snprintf(key, sizeof key, "%s%zu", k, m); /* unique: m ends it */
            PUT(m ? "," : "");
            PUT(blanks[tap_rand(MG_ARRAY_LEN(blanks))]);
            PUT("\"");
            PUT(key);
            PUT("\"");
            PUT(blanks[tap_rand(MG_ARRAY_LEN(blanks))]);
            PUT(":");
            PUT(blanks[tap_rand(MG_ARRAY_LEN(blanks))]);
            PUT(plain || tap_rand(6) ? flat_values[tap_rand(MG_ARRAY_LEN(flat_values))]
                                     : other_values[tap_rand(MG_ARRAY_LEN(other_values))]);
            PUT(blanks[tap_rand(MG_ARRAY_LEN(blanks))]);
        }
        PUT("}}}");
#undef PUT
        MG_ASSERT(len < sizeof body);
        struct mg_jsonrpc_info a, b;
        mg_jsonrpc_inspect(body, len, &a);
        mg_jsonrpc_inspect_tree(body, len, &b);
        bool fast = a.msgs == &a.one;
        enum flat_how got = a.shape == MG_JSONRPC_INVALID ? REFUSED
                            : !fast                       ? DECLINED
                            : a.msgs[0].args_flat         ? FLAT
                                                          : TREE;
        seen[got]++;
        if (!mg_jsonrpc_info_same(&a, &b) && n_diff++ < 3)
            printf("# fast and tree differ on: %.*s\n", (int)len, body);
        if (got == FLAT && a.msgs[0].args_flat->n != members)
            n_count++;
        mg_jsonrpc_info_fini(&a);
        mg_jsonrpc_info_fini(&b);
    }
    TAP_IS_INT((int)n_diff, 0, "%zu random arguments: the inspection never differs from jansson's",
               n);
    TAP_IS_INT((int)n_count, 0, "flat arguments hold every member");
    TAP_OK(seen[FLAT] > n / 10 && seen[TREE] > n / 10 && seen[DECLINED] > n / 50 &&
               seen[REFUSED] > n / 50,
           "read flat %zu, as a tree %zu, declined %zu, refused %zu", seen[FLAT], seen[TREE],
           seen[DECLINED], seen[REFUSED]);
}

int main(void)
{
    test_targets();
    test_single();
    test_ids();
    test_batch();
    test_invalid();
    test_method_truncation();
    test_fast_path();
    test_flat_args();
    test_flat_random();
    return tap_done();
}
