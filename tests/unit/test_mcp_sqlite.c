/* Unit tests for the mcp-sqlite dispatcher (examples/mcp-sqlite/tools.c):
 * JSON-RPC text in, reply out, against a shared in-memory database. The
 * Makefile links unit tests with libmcpgate.a only, so the example's
 * dispatcher is compiled in here directly. */
#define STMT_TIME_MS 300 /* so the runaway-query test takes a moment, not 5 s */
#include "../../examples/mcp-sqlite/tools.c"

#include "tap.h"

static struct mg_msq_server *srv;
static struct mg_msq_session sess;
static struct mg_msq_out out;

/* Sends text, returns the reply (borrowed from out, valid until the next
 * call). */
static const json_t *send_text(const char *text)
{
    mg_msq_out_fini(&out);
    mg_msq_handle_text(srv, &sess, text, strlen(text), &out);
    return out.reply;
}

static const json_t *call_tool(const char *name, const char *args_json)
{
    char buf[8192];
    snprintf(buf, sizeof buf,
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":"
             "{\"name\":\"%s\",\"arguments\":%s}}",
             name, args_json);
    return send_text(buf);
}

static int error_code(const json_t *reply)
{
    return (int)json_integer_value(json_object_get(json_object_get(reply, "error"), "code"));
}

static bool is_tool_error(const json_t *reply)
{
    return json_is_true(json_object_get(json_object_get(reply, "result"), "isError"));
}

static const char *tool_text_of(const json_t *reply)
{
    const json_t *c = json_object_get(json_object_get(reply, "result"), "content");
    return json_string_value(json_object_get(json_array_get(c, 0), "text"));
}

static const json_t *structured(const json_t *reply)
{
    return json_object_get(json_object_get(reply, "result"), "structuredContent");
}

static bool text_has(const json_t *reply, const char *needle)
{
    const char *t = tool_text_of(reply);
    return t != NULL && strstr(t, needle) != NULL;
}

static void test_lifecycle(void)
{
    const json_t *r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                                "\"params\":{\"protocolVersion\":\"2025-03-26\"}}");
    const json_t *res = json_object_get(r, "result");
    TAP_IS_STR(json_string_value(json_object_get(res, "protocolVersion")), "2025-03-26",
               "initialize echoes a supported version");
    TAP_IS_STR(sess.version, "2025-03-26", "session records the version");
    TAP_OK(out.initialized, "out.initialized is set");
    TAP_IS_STR(json_string_value(json_object_get(json_object_get(res, "serverInfo"), "name")),
               "mcp-sqlite", "serverInfo.name");
    TAP_IS_STR(json_string_value(json_object_get(json_object_get(res, "serverInfo"), "version")),
               "0.1.0", "serverInfo.version");
    TAP_OK(json_is_false(json_object_get(
               json_object_get(json_object_get(res, "capabilities"), "tools"), "listChanged")),
           "capabilities.tools.listChanged is false");
    TAP_IS_INT(json_integer_value(json_object_get(r, "id")), 1, "id echoed");

    struct mg_msq_session other = {""};
    mg_msq_out_fini(&out);
    const char *init = "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"initialize\","
                       "\"params\":{\"protocolVersion\":\"1999-01-01\"}}";
    mg_msq_handle_text(srv, &other, init, strlen(init), &out);
    TAP_IS_STR(other.version, "2025-06-18", "unknown version answered with 2025-06-18");
    TAP_IS_STR(json_string_value(json_object_get(out.reply, "id")), "a", "string id echoed");

    r = send_text("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    TAP_OK(r == NULL && !out.has_request, "notifications/initialized gets no reply");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}");
    TAP_OK(json_is_object(json_object_get(r, "result")) &&
               json_object_size(json_object_get(r, "result")) == 0,
           "ping answers {}");
}

static void test_tools_list(void)
{
    const json_t *r = send_text("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}");
    const json_t *tools_arr = json_object_get(json_object_get(r, "result"), "tools");
    TAP_IS_INT(json_array_size(tools_arr), 5, "five tools listed");
    size_t i;
    const json_t *t;
    bool schemas_ok = true;
    json_array_foreach(tools_arr, i, t)
    {
        const json_t *schema = json_object_get(t, "inputSchema");
        const char *name = json_string_value(json_object_get(t, "name"));
        const json_t *ann = json_object_get(t, "annotations");
        schemas_ok = schemas_ok &&
                     strcmp(json_string_value(json_object_get(schema, "type")), "object") == 0 &&
                     json_is_object(json_object_get(schema, "properties"));
        if (strcmp(name, "execute") == 0) {
            TAP_OK(json_is_false(json_object_get(ann, "readOnlyHint")) &&
                       json_is_true(json_object_get(ann, "destructiveHint")),
                   "execute: readOnlyHint false, destructiveHint true");
        } else {
            TAP_OK(json_is_true(json_object_get(ann, "readOnlyHint")), "%s: readOnlyHint true",
                   name);
        }
    }
    TAP_OK(schemas_ok, "every inputSchema is an object schema with properties");
}

static void test_list_and_describe(void)
{
    const json_t *r = call_tool("list_tables", "{}");
    const json_t *tables = json_object_get(structured(r), "tables");
    TAP_OK(!is_tool_error(r) && json_array_size(tables) == 2 &&
               strcmp(json_string_value(json_array_get(tables, 0)), "customers") == 0 &&
               strcmp(json_string_value(json_array_get(tables, 1)), "orders") == 0,
           "list_tables lists the demo tables");
    TAP_OK(text_has(r, "\"tables\""), "list_tables text content carries the JSON");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
                  "\"params\":{\"name\":\"list_tables\"}}");
    TAP_OK(!is_tool_error(r), "list_tables without arguments");
    r = call_tool("list_tables", "{\"x\":1}");
    TAP_OK(is_tool_error(r) && text_has(r, "unknown argument"), "unknown argument refused");

    r = call_tool("describe_table", "{\"table\":\"customers\"}");
    const json_t *cols = json_object_get(structured(r), "columns");
    const json_t *id = json_array_get(cols, 0), *email = json_array_get(cols, 2);
    TAP_IS_INT(json_array_size(cols), 5, "describe_table: five columns");
    TAP_OK(strcmp(json_string_value(json_object_get(id, "name")), "id") == 0 &&
               json_integer_value(json_object_get(id, "pk")) == 1 &&
               strcmp(json_string_value(json_object_get(id, "type")), "INTEGER") == 0,
           "describe_table: id is the INTEGER primary key");
    TAP_OK(json_is_true(json_object_get(email, "notnull")) &&
               json_integer_value(json_object_get(email, "pk")) == 0,
           "describe_table: email NOT NULL, not in the key");
    r = call_tool("describe_table", "{\"table\":\"nope\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "no such table"), "unknown table is a tool error");
    r = call_tool("describe_table", "{\"table\":\"customers') ; DROP TABLE orders; --\"}");
    TAP_OK(is_tool_error(r), "an injection attempt is just an unknown table name");
    r = call_tool("list_tables", "{}");
    TAP_IS_INT(json_array_size(json_object_get(structured(r), "tables")), 2, "orders survived");
    r = call_tool("describe_table", "{}");
    TAP_OK(is_tool_error(r), "describe_table without table");
    r = call_tool("describe_table", "{\"table\":42}");
    TAP_OK(is_tool_error(r), "describe_table with a number");
    char big[400];
    memset(big, 'a', 200);
    big[200] = '\0';
    char args[512];
    snprintf(args, sizeof args, "{\"table\":\"%s\"}", big);
    r = call_tool("describe_table", args);
    TAP_OK(is_tool_error(r) && text_has(r, "longer than"), "overlong table name refused");
}

static void test_query(void)
{
    const json_t *r = call_tool(
        "query", "{\"sql\":\"SELECT id, name FROM customers WHERE country = ? ORDER BY id\","
                 "\"params\":[\"GB\"]}");
    const json_t *sc = structured(r);
    TAP_OK(!is_tool_error(r), "query with a bound parameter");
    TAP_IS_INT(json_integer_value(json_object_get(sc, "row_count")), 2, "two GB customers");
    TAP_OK(json_is_false(json_object_get(sc, "truncated")), "not truncated");
    TAP_IS_STR(json_string_value(json_array_get(json_object_get(sc, "columns"), 1)), "name",
               "column names");
    TAP_IS_STR(json_string_value(json_array_get(json_array_get(json_object_get(sc, "rows"), 0), 1)),
               "Ada Lovelace", "first row");
    TAP_OK(text_has(r, "Ada Lovelace"), "text content mirrors structuredContent");

    r = call_tool("query", "{\"sql\":\"SELECT ?, ?, ?, ?, ?\",\"params\":[null,true,3,2.5,\"s\"]}");
    const json_t *row = json_array_get(json_object_get(structured(r), "rows"), 0);
    TAP_OK(json_is_null(json_array_get(row, 0)) &&
               json_integer_value(json_array_get(row, 1)) == 1 &&
               json_integer_value(json_array_get(row, 2)) == 3 &&
               json_real_value(json_array_get(row, 3)) == 2.5 &&
               strcmp(json_string_value(json_array_get(row, 4)), "s") == 0,
           "every JSON scalar binds");

    r = call_tool("query", "{\"sql\":\"SELECT x'00ff10', CAST(x'41ff42' AS TEXT), 1e999, NULL\"}");
    row = json_array_get(json_object_get(structured(r), "rows"), 0);
    TAP_IS_STR(json_string_value(json_object_get(json_array_get(row, 0), "base64")), "AP8Q",
               "BLOB as base64");
    TAP_IS_STR(json_string_value(json_array_get(row, 1)),
               "A\xef\xbf\xbd"
               "B",
               "invalid UTF-8 becomes U+FFFD");
    TAP_OK(json_is_null(json_array_get(row, 2)) && json_is_null(json_array_get(row, 3)),
           "Infinity and NULL become null");

    r = call_tool("query", "{\"sql\":\"SELECT 1; -- trailing comment\\n ;  \"}");
    TAP_OK(!is_tool_error(r), "a trailing semicolon and comment are fine");
    r = call_tool("query", "{\"sql\":\"SELECT 1; DELETE FROM orders\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "only one SQL statement"),
           "a second statement is refused");
    r = call_tool("query", "{\"sql\":\"SELECT 1; SELECT 2\"}");
    TAP_OK(is_tool_error(r), "two reads are refused too");
    r = call_tool("query", "{\"sql\":\"DELETE FROM orders\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "read-only"), "query refuses DELETE");
    r = call_tool("query", "{\"sql\":\"INSERT INTO customers(name,email,country,created_at) "
                           "VALUES('a','b','c','d')\"}");
    TAP_OK(is_tool_error(r), "query refuses INSERT");
    r = call_tool("query", "{\"sql\":\"CREATE TABLE t(x)\"}");
    TAP_OK(is_tool_error(r), "query refuses CREATE");
    r = call_tool("query", "{\"sql\":\"BEGIN\"}");
    TAP_OK(is_tool_error(r), "query refuses BEGIN (it would pin a read transaction)");
    r = call_tool("query", "{\"sql\":\"ATTACH '/tmp/x.db' AS x\"}");
    TAP_OK(is_tool_error(r), "query refuses ATTACH");
    r = call_tool("query", "{\"sql\":\"PRAGMA query_only=0\"}");
    TAP_OK(is_tool_error(r), "query refuses setting pragmas");
    r = call_tool("query", "{\"sql\":\"PRAGMA table_info(orders)\"}");
    TAP_OK(!is_tool_error(r) &&
               json_integer_value(json_object_get(structured(r), "row_count")) == 7,
           "query allows PRAGMA table_info");
    r = call_tool("query", "{\"sql\":\"SELECT count(*) FROM orders\"}");
    TAP_IS_INT(json_integer_value(
                   json_array_get(json_array_get(json_object_get(structured(r), "rows"), 0), 0)),
               8, "no refused statement changed anything");

    r = call_tool("query", "{\"sql\":\"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
                           "FROM c LIMIT 1500) SELECT x FROM c\"}");
    sc = structured(r);
    TAP_OK(json_is_true(json_object_get(sc, "truncated")) &&
               json_array_size(json_object_get(sc, "rows")) == 1000,
           "row cap 1000, truncated");
    const json_t *content = json_object_get(json_object_get(r, "result"), "content");
    TAP_OK(json_array_size(content) == 2 &&
               strstr(json_string_value(json_object_get(json_array_get(content, 1), "text")),
                      "truncated") != NULL,
           "truncation is said in words too");
    r = call_tool("query", "{\"sql\":\"SELECT zeroblob(500000) FROM (SELECT 1 UNION ALL SELECT 2 "
                           "UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL "
                           "SELECT 6 UNION ALL SELECT 7)\"}");
    sc = structured(r);
    TAP_OK(json_is_true(json_object_get(sc, "truncated")) &&
               json_array_size(json_object_get(sc, "rows")) < 7,
           "byte cap truncates large results");
    r = call_tool("query", "{\"sql\":\"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
                           "FROM c) SELECT count(*) FROM c\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "time limit"), "a runaway query is interrupted");

    r = call_tool("query", "{\"sql\":\"SELECT ?\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "parameter"), "missing parameter value");
    r = call_tool("query", "{\"sql\":\"SELECT 1\",\"params\":[1]}");
    TAP_OK(is_tool_error(r), "extra parameter value");
    r = call_tool("query", "{\"sql\":\"SELECT ?\",\"params\":[{\"a\":1}]}");
    TAP_OK(is_tool_error(r) && text_has(r, "params[0]"), "object parameter refused");
    r = call_tool("query", "{\"sql\":\"SELECT ?\",\"params\":\"x\"}");
    TAP_OK(is_tool_error(r), "params must be an array");
    r = call_tool("query", "{}");
    TAP_OK(is_tool_error(r), "sql is required");
    r = call_tool("query", "{\"sql\":\"\"}");
    TAP_OK(is_tool_error(r), "empty sql");
    r = call_tool("query", "{\"sql\":\"-- only a comment\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "no statement"), "comment-only sql");
    r = call_tool("query", "{\"sql\":\"SELEKT 1\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "syntax error"), "SQL errors are tool errors");
    r = call_tool("query", "{\"sql\":\"SELECT 1\",\"param\":[1]}");
    TAP_OK(is_tool_error(r) && text_has(r, "unknown argument"), "misspelt argument refused");
}

static void test_execute(void)
{
    const json_t *r = call_tool("execute", "{\"sql\":\"INSERT INTO customers(name,email,country,"
                                           "created_at) VALUES(?,?,?,?)\",\"params\":"
                                           "[\"Niklaus Wirth\",\"nw@example.com\",\"CH\",\"x\"]}");
    TAP_OK(!is_tool_error(r), "execute INSERT");
    TAP_IS_INT(json_integer_value(json_object_get(structured(r), "changes")), 1, "one change");
    TAP_IS_INT(json_integer_value(json_object_get(structured(r), "last_insert_rowid")), 7,
               "last_insert_rowid");
    r = call_tool("query", "{\"sql\":\"SELECT name FROM customers WHERE id = 7\"}");
    TAP_OK(text_has(r, "Niklaus Wirth"), "the read-only connection sees the write");
    r = call_tool("execute", "{\"sql\":\"UPDATE orders SET status = 'shipped' WHERE status = "
                             "'pending'\"}");
    TAP_IS_INT(json_integer_value(json_object_get(structured(r), "changes")), 2, "UPDATE count");
    r = call_tool("execute", "{\"sql\":\"SELECT 1\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "query tool"), "execute refuses reads");
    r = call_tool("execute", "{\"sql\":\"DELETE FROM orders; DELETE FROM customers\"}");
    TAP_OK(is_tool_error(r), "execute refuses two statements");
    r = call_tool("execute", "{\"sql\":\"INSERT INTO customers(name,email,country,created_at) "
                             "VALUES('a','ada@example.com','c','d')\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "UNIQUE"), "constraint violation is a tool error");
    r = call_tool("execute", "{\"sql\":\"VACUUM INTO '/tmp/mcp-sqlite-unit-test.db'\"}");
    TAP_OK(is_tool_error(r), "execute refuses VACUUM INTO (a file write)");
    r = call_tool("execute", "{\"sql\":\"ATTACH 'file:/other?vfs=memdb' AS o\"}");
    TAP_OK(is_tool_error(r), "execute refuses ATTACH");
    r = call_tool("execute", "{\"sql\":\"COMMIT\"}");
    TAP_OK(is_tool_error(r), "execute refuses transaction control");
    r = call_tool("execute", "{\"sql\":\"PRAGMA writable_schema=1\"}");
    TAP_OK(is_tool_error(r), "execute refuses pragmas");
}

static void test_slow_count(void)
{
    const json_t *r = send_text("{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"tools/call\","
                                "\"params\":{\"name\":\"slow_count\",\"arguments\":{},"
                                "\"_meta\":{\"progressToken\":\"tok\"}}}");
    TAP_OK(r == NULL && out.n_jobs == 1, "slow_count is deferred to the transport");
    TAP_OK(out.jobs[0].steps == 5 && out.jobs[0].interval_ms == 1000, "defaults 5 x 1000 ms");
    TAP_IS_STR(json_string_value(out.jobs[0].token), "tok", "progress token captured");
    TAP_IS_STR(json_string_value(out.jobs[0].id), "s1", "job keeps the request id");
    TAP_OK(out.jobs[0].slot == MG_MSQ_NO_SLOT, "single request: no batch slot");

    r = call_tool("slow_count", "{\"steps\":2,\"interval_ms\":0}");
    TAP_OK(r == NULL && out.n_jobs == 1 && out.jobs[0].token == NULL &&
               out.jobs[0].interval_ms == 0,
           "no token, interval 0");
    r = call_tool("slow_count", "{\"steps\":0}");
    TAP_OK(is_tool_error(r) && out.n_jobs == 0, "steps 0 refused");
    r = call_tool("slow_count", "{\"steps\":51}");
    TAP_OK(is_tool_error(r), "steps 51 refused");
    r = call_tool("slow_count", "{\"steps\":\"3\"}");
    TAP_OK(is_tool_error(r), "steps as a string refused");
    r = call_tool("slow_count", "{\"interval_ms\":5001}");
    TAP_OK(is_tool_error(r), "interval over 5000 refused");

    json_t *tok = json_integer(9);
    json_t *p = mg_msq_progress(tok, 2, 4);
    const json_t *pp = json_object_get(p, "params");
    TAP_OK(strcmp(json_string_value(json_object_get(p, "method")), "notifications/progress") == 0 &&
               json_integer_value(json_object_get(pp, "progressToken")) == 9 &&
               json_integer_value(json_object_get(pp, "progress")) == 2 &&
               json_integer_value(json_object_get(pp, "total")) == 4 &&
               json_object_get(p, "id") == NULL,
           "progress notification shape");
    json_t *id = json_string("s1");
    json_t *res = mg_msq_slow_result(id, 4);
    TAP_OK(text_has(res, "counted 4") && !is_tool_error(res), "final result says counted N");
    json_decref(res);
    json_decref(id);
    json_decref(p);
    json_decref(tok);
}

static void test_protocol_errors(void)
{
    const json_t *r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,");
    TAP_IS_INT(error_code(r), MG_MSQ_PARSE_ERROR, "truncated JSON -> -32700");
    TAP_OK(out.kind == MG_MSQ_MALFORMED && json_is_null(json_object_get(r, "id")),
           "parse error: malformed, id null");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"method\":\"tools/list\"}");
    TAP_IS_INT(error_code(r), MG_MSQ_PARSE_ERROR, "duplicate keys -> -32700");
    r = send_text("\xff\xfe");
    TAP_IS_INT(error_code(r), MG_MSQ_PARSE_ERROR, "binary garbage -> -32700");
    r = send_text("42");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_REQUEST, "a number -> -32600");
    TAP_OK(out.kind == MG_MSQ_MALFORMED, "a bare value is malformed for HTTP");
    r = send_text("{\"id\":1,\"method\":\"ping\"}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_REQUEST, "missing jsonrpc -> -32600");
    r = send_text("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_REQUEST, "jsonrpc 1.0 -> -32600");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_REQUEST, "null id -> -32600");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_REQUEST, "fractional id -> -32600");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_REQUEST, "numeric method -> -32600");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_REQUEST, "no method, no result -> -32600");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}");
    TAP_IS_INT(error_code(r), MG_MSQ_METHOD_NOT_FOUND, "unknown method -> -32601");
    TAP_OK(out.kind == MG_MSQ_REPLY, "unknown method is an ordinary reply");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_PARAMS, "array params -> -32602");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\"}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_PARAMS, "tools/call without params -> -32602");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{}}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_PARAMS, "tools/call without name -> -32602");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                  "\"params\":{\"name\":\"rm_rf\"}}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_PARAMS, "unknown tool -> -32602");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                  "\"params\":{\"name\":\"query\",\"arguments\":[\"SELECT 1\"]}}");
    TAP_IS_INT(error_code(r), MG_MSQ_INVALID_PARAMS, "array arguments -> -32602");
    r = send_text("{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}");
    TAP_OK(r == NULL && out.kind == MG_MSQ_REPLY, "a client response gets no reply");
    r = send_text("{\"jsonrpc\":\"2.0\",\"method\":\"bogus/notification\"}");
    TAP_OK(r == NULL, "unknown notification ignored");
    r = send_text("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                  "\"params\":{\"requestId\":\"s1\",\"reason\":\"x\"}}");
    TAP_OK(r == NULL && json_is_string(out.cancel_id) &&
               strcmp(json_string_value(out.cancel_id), "s1") == 0,
           "notifications/cancelled reports the request id");

    /* Every size is bounded before parsing. */
    size_t n = MG_MSQ_MAX_MESSAGE + 2;
    char *big = mg_xmalloc(n);
    memset(big, ' ', n);
    mg_msq_out_fini(&out);
    mg_msq_handle_text(srv, &sess, big, n, &out);
    TAP_IS_INT(error_code(out.reply), MG_MSQ_INVALID_REQUEST, "over 1 MiB -> refused unparsed");
    free(big);
    char deep[5000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    r = send_text(deep);
    TAP_IS_INT(error_code(r), MG_MSQ_PARSE_ERROR, "deep nesting -> -32700, no crash");
}

static void test_batches(void)
{
    struct mg_msq_session s25 = {"2025-06-18"};
    const char *batch = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]";
    mg_msq_out_fini(&out);
    mg_msq_handle_text(srv, &s25, batch, strlen(batch), &out);
    TAP_OK(error_code(out.reply) == MG_MSQ_INVALID_REQUEST && out.kind == MG_MSQ_MALFORMED,
           "batch refused under 2025-06-18");
    TAP_IS_STR(json_string_value(json_object_get(json_object_get(out.reply, "error"), "message")),
               "batches are not supported", "with the agreed message");

    /* sess negotiated 2025-03-26 in test_lifecycle. */
    const json_t *r =
        send_text("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
                  "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"},"
                  "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
                  "\"slow_count\",\"arguments\":{\"steps\":1,\"interval_ms\":0}}},"
                  "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"nope\"},"
                  "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"initialize\",\"params\":{}},"
                  "17]");
    TAP_IS_INT(json_array_size(r), 5, "2025-03-26 batch: one reply per request");
    TAP_OK(json_is_null(json_array_get(r, 1)) && out.n_jobs == 1 && out.jobs[0].slot == 1,
           "slow_count leaves a placeholder at its slot");
    TAP_IS_INT(error_code(json_array_get(r, 2)), MG_MSQ_METHOD_NOT_FOUND, "element error");
    TAP_IS_INT(error_code(json_array_get(r, 3)), MG_MSQ_INVALID_REQUEST,
               "initialize inside a batch refused");
    TAP_IS_INT(error_code(json_array_get(r, 4)), MG_MSQ_INVALID_REQUEST, "non-object element");
    TAP_IS_STR(sess.version, "2025-03-26", "the refused initialize changed nothing");

    r = send_text("[]");
    TAP_OK(error_code(r) == MG_MSQ_INVALID_REQUEST, "empty batch -> -32600");
    r = send_text("[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]");
    TAP_OK(r == NULL && out.kind == MG_MSQ_REPLY, "all-notification batch -> no reply");

    struct mg_buf b;
    mg_buf_init(&b, 1 << 20);
    mg_buf_appends(&b, "[");
    for (int i = 0; i < MG_MSQ_MAX_BATCH + 1; i++)
        mg_buf_appendf(&b, "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"ping\"}", i ? "," : "",
                       i);
    mg_buf_appends(&b, "]");
    r = send_text(b.data);
    TAP_OK(error_code(r) == MG_MSQ_INVALID_REQUEST, "batch over %d elements refused",
           MG_MSQ_MAX_BATCH);
    mg_buf_fini(&b);
}

static void test_readonly_and_log(void)
{
    char err[256] = "";
    struct mg_msq_server *ro = NULL;
    FILE *logf = tmpfile();
    struct mg_msq_options opt = {
        .db_path = "file:/mcp-sqlite-unit?vfs=memdb", .readonly = true, .log_fd = fileno(logf)};
    int rc = mg_msq_server_new(&opt, &ro, err, sizeof err);
    TAP_IS_INT(rc, MG_OK, "a --readonly server opens (%s)", err);
    if (rc != MG_OK) {
        fclose(logf);
        return;
    }
    struct mg_msq_server *saved = srv;
    srv = ro;
    const json_t *r = call_tool("execute", "{\"sql\":\"DELETE FROM orders\"}");
    TAP_OK(is_tool_error(r) && text_has(r, "--readonly"), "--readonly refuses execute");
    r = call_tool("query", "{\"sql\":\"SELECT count(*) FROM orders\"}");
    TAP_OK(!is_tool_error(r), "--readonly still answers query");
    send_text("{oops");
    /* 150 two-byte characters: the 256-byte cut falls mid-character. */
    char longm[512] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"";
    for (int i = 0; i < 150; i++)
        strncat(longm, "\xc3\xa9", sizeof longm - strlen(longm) - 1);
    strncat(longm, "\"}", sizeof longm - strlen(longm) - 1);
    r = send_text(longm);
    TAP_IS_INT(error_code(r), MG_MSQ_METHOD_NOT_FOUND, "long non-ASCII method -> -32601");
    srv = saved;
    mg_msq_out_fini(&out);
    mg_msq_server_free(ro);

    char line[1024];
    int n_lines = 0, n_json = 0;
    bool saw_tool = false, saw_parse = false;
    rewind(logf);
    while (fgets(line, sizeof line, logf) != NULL) {
        n_lines++;
        json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, NULL); /* checks UTF-8 too */
        n_json += j != NULL;
        json_decref(j);
        saw_tool = saw_tool || strstr(line, "\"method\":\"tools/call\",\"id\":7,"
                                            "\"tool\":\"execute\"") != NULL;
        saw_parse = saw_parse || strstr(line, "\"note\":\"parse error\"") != NULL;
    }
    fclose(logf);
    TAP_IS_INT(n_lines, 4, "one log line per received message");
    TAP_IS_INT(n_json, 4, "every log line is valid JSON (long fields cut on a character)");
    TAP_OK(saw_tool, "log line names method, id and tool");
    TAP_OK(saw_parse, "log line for an unparsable message");

    struct mg_msq_options bad = {
        .db_path = "/nonexistent-dir/x.db", .readonly = true, .log_fd = -1};
    rc = mg_msq_server_new(&bad, &ro, err, sizeof err);
    TAP_OK(rc < 0 && ro == NULL && strstr(err, "cannot open") != NULL,
           "a missing database fails cleanly");
}

int main(void)
{
    char err[256] = "";
    struct mg_msq_options opt = {
        .db_path = "file:/mcp-sqlite-unit?vfs=memdb", .init_demo = true, .log_fd = -1};
    mg_msq_out_init(&out);
    int rc = mg_msq_server_new(&opt, &srv, err, sizeof err);
    TAP_IS_INT(rc, MG_OK, "server opens an in-memory demo database (%s)", err);
    if (rc != MG_OK)
        return tap_done();
    test_lifecycle();
    test_tools_list();
    test_list_and_describe();
    test_query();
    test_execute();
    test_slow_count();
    test_protocol_errors();
    test_batches();
    test_readonly_and_log(); /* opens the same memdb while srv keeps it alive */
    mg_msq_out_fini(&out);
    mg_msq_server_free(srv);
    return tap_done();
}
