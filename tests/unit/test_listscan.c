/* The one-pass list filter (src/mcp/listscan): exact bytes out, what it
 * refuses, and a differential check against the jansson filter
 * (listref.h) on generated documents and on their mutations. */
#include "listref.h"
#include "tap.h"

#include <stdlib.h>

static bool keep_not_secret(const char *name, enum mg_tool_class cls)
{
    (void)cls;
    return strstr(name, "secret") == NULL;
}

/* Hides what is destructive and what is named secret. */
static bool keep_safe(const char *name, enum mg_tool_class cls)
{
    return cls != MG_TOOL_DESTRUCTIVE && strstr(name, "secret") == NULL;
}

struct seen {
    char names[16][64];
    enum mg_tool_class cls[16];
    size_t n;
};

static bool record(void *ctx, const struct mg_listscan_item *it)
{
    struct seen *s = ctx;
    if (s->n < 16) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", it->name ? it->name : "(none)");
        s->cls[s->n] = it->tool_class;
        s->n++;
    }
    return it->name != NULL && strstr(it->name, "secret") == NULL;
}

static json_t *id1;

/* Filters doc with the default id (1), returns the bytes to send (static
 * buffer) or NULL if refused. */
static const char *filt(const char *key, const char *doc, struct mg_listscan_result *res,
                        struct seen *seen)
{
    static char text[8192];
    struct mg_buf out;
    struct seen tmp = {0};
    mg_buf_init(&out, strlen(doc) + 1);
    int rc = mg_listscan_filter(doc, strlen(doc), key, id1, record, seen ? seen : &tmp, &out, res);
    const char *r = NULL;
    if (rc == 0) {
        snprintf(text, sizeof text, "%.*s", res->changed ? (int)out.len : (int)strlen(doc),
                 res->changed ? out.data : doc);
        r = text;
    }
    mg_buf_fini(&out);
    return r;
}

static void is_out(const char *key, const char *doc, const char *want, const char *desc)
{
    struct mg_listscan_result res;
    const char *got = filt(key, doc, &res, NULL);
    TAP_IS_STR(got ? got : "(refused)", want, "%s", desc);
}

static void refused(const char *doc, const char *desc)
{
    struct mg_listscan_result res;
    const char *got = filt("tools", doc, &res, NULL);
    TAP_OK(got == NULL && res.error != NULL, "refused: %s (%s)", desc,
           res.error ? res.error : "accepted");
}

static void accepted(const char *doc, const char *desc)
{
    struct mg_listscan_result res;
    TAP_OK(filt("tools", doc, &res, NULL) != NULL, "accepted: %s (%s)", desc,
           res.error ? res.error : "");
}

#define HEAD "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":"

static void test_bytes(void)
{
    is_out(
        "tools",
        HEAD "[{\"name\":\"a\"},{\"name\":\"secret_b\"},{\"name\":\"c\"}],\"nextCursor\":\"p2\"}}",
        HEAD "[{\"name\":\"a\"},{\"name\":\"c\"}],\"nextCursor\":\"p2\"}}", "middle item removed");
    is_out("tools", HEAD "[{\"name\":\"secret\"},{\"name\":\"a\"},{\"name\":\"b\"}]}}",
           HEAD "[{\"name\":\"a\"},{\"name\":\"b\"}]}}", "first item removed");
    is_out("tools", HEAD "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"secret\"}]}}",
           HEAD "[{\"name\":\"a\"},{\"name\":\"b\"}]}}", "last item removed");
    is_out("tools", HEAD "[{\"name\":\"secret1\"},{\"name\":\"secret2\"}]}}", HEAD "[]}}",
           "every item removed");
    is_out("tools", HEAD "[ {\"name\":\"a\"} ,\n {\"name\":\"secret\"} , {\"name\" : \"c\"} ] } }",
           HEAD "[ {\"name\":\"a\"},{\"name\" : \"c\"}] } }",
           "whitespace: kept items verbatim, separators rewritten");
    is_out("tools",
           HEAD "[{\"name\":\"a\",\"x\":[1,2.5e3,{\"y\":null}]},{\"name\":\"s\\u0065cret\"}]}}",
           HEAD "[{\"name\":\"a\",\"x\":[1,2.5e3,{\"y\":null}]}]}}",
           "an escaped name is judged decoded");
    const char *same = HEAD "[ {\"name\":\"a\"} , {\"name\":\"b\"} ]}}";
    struct mg_listscan_result res;
    TAP_IS_STR(filt("tools", same, &res, NULL), same, "nothing removed: the input as it is");
    TAP_OK(res.filtered && !res.changed && res.n_items == 2 && res.n_kept == 2,
           "nothing removed: filtered, not changed, counts");
    TAP_IS_STR(filt("tools", HEAD "[]}}", &res, NULL), HEAD "[]}}", "an empty list");
    TAP_OK(res.filtered && res.n_items == 0, "an empty list is filtered");
    is_out("prompts",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"prompts\":[{\"name\":\"secret\"},{\"name\":"
           "\"p\"}]}}",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"prompts\":[{\"name\":\"p\"}]}}", "prompts");
    is_out("resources",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"resources\":[{\"uri\":\"file:///secret\","
           "\"name\":\"ok\"},{\"uri\":\"file:///ok\",\"name\":\"secret\"}]}}",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"resources\":[{\"uri\":\"file:///ok\","
           "\"name\":\"secret\"}]}}",
           "resources are judged by uri");
    is_out("resourceTemplates",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"resourceTemplates\":[{\"uriTemplate\":"
           "\"db://{t}\"},{\"uriTemplate\":\"db://{secret}\"}]}}",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"resourceTemplates\":[{\"uriTemplate\":"
           "\"db://{t}\"}]}}",
           "templates are judged by uriTemplate");
    is_out("tools", HEAD "[{\"title\":\"no name\"},7,\"x\",{\"name\":\"a\"}]}}",
           HEAD "[{\"name\":\"a\"}]}}", "items without a name are hidden");
    is_out("tools",
           "{\"result\":{\"nextCursor\":null,\"tools\":[{\"name\":\"secret\"},{\"name\":\"a\"}]},"
           "\"id\":1,\"jsonrpc\":\"2.0\"}",
           "{\"result\":{\"nextCursor\":null,\"tools\":[{\"name\":\"a\"}]},\"id\":1,\"jsonrpc\":"
           "\"2.0\"}",
           "the id after the result");
    const char *other = HEAD "[{\"name\":\"secret\"}]}}";
    char buf[256];
    snprintf(buf, sizeof buf, "%s", other);
    buf[strlen("{\"jsonrpc\":\"2.0\",\"id\":")] = '2';
    TAP_IS_STR(filt("tools", buf, &res, NULL), buf, "another id: passed as it is");
    TAP_OK(!res.filtered && !res.changed, "another id: not filtered");
    is_out("tools",
           "{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":{\"tools\":[{\"name\":\"secret\"}]}}",
           "{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":{\"tools\":[{\"name\":\"secret\"}]}}",
           "the string \"1\" is not the id 1");
    is_out("tools", "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1,\"message\":\"x\"}}",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1,\"message\":\"x\"}}",
           "an error answer is passed as it is");
    is_out("tools", "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":{\"name\":\"secret\"}}}",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":{\"name\":\"secret\"}}}",
           "tools not an array: passed as it is");
    is_out("tools",
           "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"}]}}]",
           "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"}]}}]",
           "a batch answer is not the answer");
    is_out("tools", "{\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}",
           "{\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}",
           "a notification is passed as it is");

    /* out's bound */
    struct mg_buf small;
    struct seen sn = {0};
    const char *doc = HEAD "[{\"name\":\"a\"},{\"name\":\"secret\"}]}}";
    mg_buf_init(&small, 8);
    TAP_IS_INT(mg_listscan_filter(doc, strlen(doc), "tools", id1, record, &sn, &small, &res),
               MG_ELIMIT, "an answer over out's bound");
    TAP_OK(small.len == 0, "nothing of it stays in out");
    mg_buf_fini(&small);
}

static void test_names_and_classes(void)
{
    struct seen s = {0};
    struct mg_listscan_result res;
    filt("tools",
         HEAD
         "[{\"name\":\"a\\u0062c\"},{\"n\\u0061me\":\"esc\"},{\"name\":\"\\ud83d\\ude00\\n\"},"
         "{\"annotations\":{\"readOnlyHint\":true},\"name\":\"ro\"},"
         "{\"name\":\"w\",\"annotations\":{\"destructiveHint\":false}},"
         "{\"name\":\"d\",\"annotations\":{\"readOnlyHint\":\"true\",\"destructiveHint\":0}},"
         "{\"name\":\"both\",\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":true}},"
         "{\"name\":\"na\",\"annotations\":[{\"readOnlyHint\":true}]},"
         "{\"name\":\"deep\",\"x\":{\"annotations\":{\"readOnlyHint\":true}}},"
         "{\"name\":\"ro2\",\"annot\\u0061tions\":{\"read\\u004FnlyHint\":true}}]}}",
         &res, &s);
    TAP_IS_INT(s.n, 10, "ten items judged");
    TAP_IS_STR(s.names[0], "abc", "a\\u0062c is abc");
    TAP_IS_STR(s.names[1], "esc", "a key spelled with escapes is the name");
    TAP_IS_STR(s.names[2], "\xF0\x9F\x98\x80\n", "a surrogate pair and \\n decoded");
    TAP_IS_INT(s.cls[3], MG_TOOL_READ_ONLY, "readOnlyHint true (before the name)");
    TAP_IS_INT(s.cls[4], MG_TOOL_WRITE, "destructiveHint false: write");
    TAP_IS_INT(s.cls[5], MG_TOOL_DESTRUCTIVE, "only the literals count");
    TAP_IS_INT(s.cls[6], MG_TOOL_READ_ONLY, "readOnlyHint wins");
    TAP_IS_INT(s.cls[7], MG_TOOL_DESTRUCTIVE, "annotations that are not an object");
    TAP_IS_INT(s.cls[8], MG_TOOL_DESTRUCTIVE, "annotations deeper down do not count");
    TAP_IS_INT(s.cls[9], MG_TOOL_READ_ONLY, "annotation keys with escapes count");
    memset(&s, 0, sizeof s);
    filt("prompts",
         "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"prompts\":[{\"name\":\"p\",\"annotations\":"
         "{\"readOnlyHint\":true}}]}}",
         &res, &s);
    TAP_OK(s.n == 1 && s.cls[0] == MG_TOOL_DESTRUCTIVE, "no classes outside tools");
}

static void test_refusals(void)
{
    refused(HEAD "[],\"tools\":[]}}", "tools twice in result");
    refused("{\"id\":1,\"result\":{\"tools\":[]},\"result\":{\"tools\":[]}}", "result twice");
    refused("{\"id\":1,\"id\":2,\"result\":{\"tools\":[]}}", "id twice");
    refused("{\"id\":1,\"\\u0069d\":1,\"result\":{\"tools\":[]}}", "id twice, one escaped");
    refused(HEAD "[{\"name\":\"a\",\"name\":\"secret\"}]}}", "name twice");
    refused(HEAD "[{\"name\":\"a\",\"n\\u0061me\":\"secret\"}]}}", "name twice, one escaped");
    refused(HEAD "[{\"name\":\"a\",\"annotations\":{},\"annotations\":{\"readOnlyHint\":true}}]}}",
            "annotations twice");
    refused(HEAD
            "[{\"name\":\"a\",\"annotations\":{\"readOnlyHint\":false,\"readOnlyHint\":true}}]}}",
            "readOnlyHint twice");
    refused(HEAD "[{\"name\":\"a\",\"inputSchema\":{\"p\":{\"q\":1,\"q\":2}}}]}}",
            "a duplicate deep down");
    refused(HEAD "[{\"name\":7}]}}", "a name that is not a string");
    refused(HEAD "[{\"name\":null}]}}", "a null name");
    refused(HEAD "[{\"name\":\"\\u0000\"}]}}", "\\u0000");
    refused(HEAD "[{\"name\":\"a\xC3\x28\"}]}}", "invalid UTF-8");
    refused(HEAD "[{\"name\":\"\xC0\xAF\"}]}}", "an overlong form");
    refused(HEAD "[{\"name\":\"\xED\xA0\x80\"}]}}", "a surrogate in UTF-8");
    refused(HEAD "[{\"name\":\"\xF4\x90\x80\x80\"}]}}", "past U+10FFFF");
    refused(HEAD "[{\"name\":\"\xE2\x82\"}]}}", "a truncated sequence");
    refused(HEAD "[{\"name\":\"\\x\"}]}}", "a bad escape");
    refused(HEAD "[{\"name\":\"\\u12G4\"}]}}", "a bad \\u escape");
    refused(HEAD "[{\"name\":\"\\ud800\"}]}}", "a lone high surrogate");
    refused(HEAD "[{\"name\":\"\\udc00\"}]}}", "a lone low surrogate");
    refused(HEAD "[{\"name\":\"\\ud800\\u0041\"}]}}", "a high surrogate and no low one");
    refused(HEAD "[{\"name\":\"a\x01\"}]}}", "a control character");
    refused(HEAD "[{\"name\":\"a\"}]}} x", "trailing garbage");
    refused(HEAD "[{\"name\":\"a\"}]}}{}", "a second document");
    refused(HEAD "[{\"name\":\"a\"},]}}", "a trailing comma");
    refused("{\"id\":01,\"result\":{}}", "a leading zero");
    refused("{\"id\":1.,\"result\":{}}", "1.");
    refused("{\"id\":-,\"result\":{}}", "-");
    refused("{\"id\":1e,\"result\":{}}", "1e");
    refused("{\"id\":9223372036854775808}", "an integer past int64");
    refused("{\"id\":-9223372036854775809}", "an integer below int64");
    refused("{\"id\":1e309}", "a real that overflows");
    refused("{\"id\":1.8e308}", "a real that overflows at the edge");
    refused("{\"id\":tru}", "a bad literal");
    {
        /* jansson 2.14 reads a NUL after a number as nothing; not here */
        static const char nul[] = "{\"id\":1\0,\"result\":{\"tools\":[]}}";
        struct mg_buf out;
        struct mg_listscan_result res;
        struct seen sn = {0};
        mg_buf_init(&out, 256);
        TAP_IS_INT(mg_listscan_filter(nul, sizeof nul - 1, "tools", id1, record, &sn, &out, &res),
                   MG_EPROTO, "refused: a NUL byte after a number");
        mg_buf_fini(&out);
    }
    refused("1", "a number at the top");
    refused("\"x\"", "a string at the top");
    refused("", "nothing");
    refused("  ", "whitespace alone");
    refused("\xEF\xBB\xBF{}", "a byte order mark");
    refused("{\"a\":\"unterminated}", "an unterminated string");
    refused("{\"a\" 1}", "no colon");
    refused("{\"a\":1 \"b\":2}", "no comma");
    refused("{1:2}", "a key that is not a string");
    accepted("{\"id\":9223372036854775807}", "int64 max");
    accepted("{\"id\":-9223372036854775808}", "int64 min");
    accepted("{\"id\":1.7e308,\"x\":-0,\"y\":0.0e-0}", "reals at the edge");
    accepted("{\"id\":1e-400,\"x\":0.00000e999}", "underflow is not an error");
    accepted("{\"a\":\"\\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\xE2\x82\xAC\"}", "escapes");
    accepted(" \t\r\n{\"id\":1} \n", "whitespace around");
    accepted("[]", "an empty array at the top");

    /* nesting */
    char deep[600];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"id\":1,\"x\":");
    for (int i = 0; i < MG_LISTSCAN_MAX_DEPTH - 1; i++)
        deep[n++] = '[';
    for (int i = 0; i < MG_LISTSCAN_MAX_DEPTH - 1; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    accepted(deep, "nesting at the bound");
    memmove(deep + 13, deep + 12, n - 12 + 1);
    deep[12] = '[';
    n++;
    memmove(deep + n - 1, deep + n - 2, 3);
    deep[n - 2] = ']';
    refused(deep, "nesting past the bound");

    /* every proper prefix of a valid answer is refused */
    const char *doc = HEAD "[{\"name\":\"a\\u0062\",\"x\":[1.5e2,true,null]}]}}";
    bool all = true;
    for (size_t i = 0; i < strlen(doc); i++) {
        struct mg_buf out;
        struct mg_listscan_result res;
        struct seen s = {0};
        mg_buf_init(&out, 4096);
        if (mg_listscan_filter(doc, i, "tools", id1, record, &s, &out, &res) != MG_EPROTO)
            all = false;
        mg_buf_fini(&out);
    }
    TAP_OK(all, "every proper prefix of an answer is refused");

    /* many keys: the sorted check, both ways */
    struct mg_buf big;
    mg_buf_init(&big, 1 << 20);
    mg_buf_appends(&big, HEAD "[{\"name\":\"a\",\"inputSchema\":{");
    for (int i = 0; i < 300; i++)
        mg_buf_appendf(&big, "%s\"k%d\":%d", i ? "," : "", i, i);
    mg_buf_appends(&big, "}}]}}");
    accepted(big.data, "an object of 300 distinct keys");
    big.len -= 5;
    mg_buf_appends(&big, ",\"k\\u0031\\u00307\":1}}]}}");
    mg_buf_append(&big, "", 1);
    refused(big.data, "an object of 300 keys with one twice (escaped)");
    mg_buf_fini(&big);
}

/* --- the differential check ------------------------------------------------------- */

static void gen_string(struct mg_buf *b)
{
    static const char *const parts[] = {
        "a",    "secret",   "x_y",          "\\u0041",          "\\n",
        "\\\"", "\xC3\xA9", "\xE2\x82\xAC", "\\ud83d\\ude00",   " ",
        "name", "\\/",      "tool",         "\xF0\x9F\x98\x80", "\\u00e9",
        "0"};
    mg_buf_append(b, "\"", 1);
    for (unsigned i = tap_rand(4); i > 0; i--)
        mg_buf_appends(b, parts[tap_rand(MG_ARRAY_LEN(parts))]);
    mg_buf_append(b, "\"", 1);
}

static void gen_value(struct mg_buf *b, int depth);

static void gen_object(struct mg_buf *b, int depth, bool item)
{
    static const char *const keys[] = {
        "\"name\"",        "\"uri\"",          "\"uriTemplate\"",     "\"title\"",
        "\"annotations\"", "\"readOnlyHint\"", "\"destructiveHint\"", "\"inputSchema\"",
        "\"description\""};
    unsigned n = tap_rand(5);
    bool used[MG_ARRAY_LEN(keys)] = {0};
    mg_buf_append(b, "{", 1);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = tap_rand(MG_ARRAY_LEN(keys));
        if (used[k])
            continue;
        if (b->data[b->len - 1] != '{')
            mg_buf_append(b, ",", 1);
        used[k] = true;
        mg_buf_appends(b, keys[k]);
        mg_buf_append(b, ":", 1);
        if (k <= 2 && (item || tap_rand(2)))
            gen_string(b);
        else if (k == 4 && tap_rand(3))
            gen_object(b, depth + 1, false);
        else if (k == 5 || k == 6)
            mg_buf_appends(b, tap_rand(2) ? "true" : "false");
        else
            gen_value(b, depth + 1);
    }
    mg_buf_append(b, "}", 1);
}

static void gen_value(struct mg_buf *b, int depth)
{
    static const char *const nums[] = {
        "0", "-1", "12.5", "1e3", "-0.0", "6E-2", "9007199254740993"};
    switch (depth > 4 ? tap_rand(4) : tap_rand(7)) {
    case 0: gen_string(b); break;
    case 1: mg_buf_appends(b, nums[tap_rand(MG_ARRAY_LEN(nums))]); break;
    case 2: mg_buf_appends(b, tap_rand(2) ? "true" : tap_rand(2) ? "false" : "null"); break;
    case 3: mg_buf_appends(b, "[]"); break;
    case 4:
    case 5: gen_object(b, depth, false); break;
    default: {
        mg_buf_append(b, "[", 1);
        for (unsigned i = tap_rand(3); i > 0; i--) {
            gen_value(b, depth + 1);
            if (i > 1)
                mg_buf_append(b, ",", 1);
        }
        mg_buf_append(b, "]", 1);
    }
    }
}

static void gen_answer(struct mg_buf *b, const char *key, unsigned items)
{
    mg_buf_reset(b);
    mg_buf_appendf(b, "{\"jsonrpc\":\"2.0\",%s\"result\":{\"%s\":[", tap_rand(8) ? "\"id\":1," : "",
                   key);
    for (unsigned i = 0; i < items; i++) {
        if (i)
            mg_buf_appends(b, tap_rand(4) ? "," : " ,\n ");
        if (tap_rand(10))
            gen_object(b, 3, true);
        else
            gen_value(b, 3);
    }
    mg_buf_appends(b, tap_rand(2) ? "]" : "],\"nextCursor\":\"c\"");
    mg_buf_appends(b, tap_rand(8) ? "}}" : "},\"id\":1}");
}

static void test_differential(void)
{
    static const char *const keys[] = {"tools", "prompts", "resources", "resourceTemplates"};
    struct mg_buf b;
    mg_buf_init(&b, 1 << 24);
    size_t agreed = 0, valid = 0, n = 0;
    const char *first = NULL;
    for (int round = 0; round < 3000; round++) {
        const char *key = keys[tap_rand(4)];
        gen_answer(&b, key, tap_rand(12));
        listref_keep_fn keep = tap_rand(2) ? keep_safe : keep_not_secret;
        /* the document, then a few mutations of it */
        for (int m = 0; m < 6; m++) {
            if (m > 0) {
                size_t at = tap_rand((unsigned)b.len);
                static const char bytes[] = "{}[],:\"\\ 0e-.tnu\x80\xC3\x01";
                b.data[at] = bytes[tap_rand(sizeof bytes - 1)];
            }
            const char *why = listref_check(b.data, b.len, key, id1, keep);
            n++;
            if (why == NULL)
                agreed++;
            else if (first == NULL) {
                first = why;
                fprintf(stderr, "# disagreement (%s) on: %.*s\n", why, (int)b.len, b.data);
            }
            if (m == 0)
                valid += why == NULL;
        }
    }
    TAP_OK(agreed == n, "the scanner agrees with jansson on %zu generated and mutated answers (%s)",
           n, first ? first : "");
    TAP_OK(valid == 3000, "every generated answer agrees");

    /* an SSE-sized answer: thousands of items, kilobytes of schema each */
    mg_buf_reset(&b);
    mg_buf_appends(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[");
    for (int i = 0; i < 3000; i++)
        mg_buf_appendf(&b,
                       "%s{\"name\":\"%s%d\",\"description\":\"%0400d caf\xC3\xA9 \\u00e9\","
                       "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":"
                       "\"string\"}}},\"annotations\":{\"readOnlyHint\":%s}}",
                       i ? "," : "", i % 3 ? "t" : "secret", i, i, i % 2 ? "true" : "false");
    mg_buf_appends(&b, "]}}");
    TAP_OK(listref_check(b.data, b.len, "tools", id1, keep_safe) == NULL,
           "a %zu-byte answer agrees", b.len);
    mg_buf_fini(&b);
}

int main(void)
{
    id1 = json_integer(1);
    test_bytes();
    test_names_and_classes();
    test_refusals();
    test_differential();
    json_decref(id1);
    return tap_done();
}
