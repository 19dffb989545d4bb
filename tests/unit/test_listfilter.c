/* List filtering and tool classes (src/mcp/listfilter). */
#include "mcp/listfilter.h"
#include "tap.h"

static bool keep_not_secret(void *ctx, const json_t *item)
{
    const char *key = ctx;
    const char *name = mg_listfilter_item_name(key, item);
    return name && strstr(name, "secret") == NULL;
}

static json_t *load(const char *s)
{
    json_error_t e;
    return json_loads(s, 0, &e);
}

int main(void)
{
    TAP_IS_STR(mg_listfilter_key("tools/list"), "tools", "tools/list");
    TAP_IS_STR(mg_listfilter_key("resources/templates/list"), "resourceTemplates", "templates");
    TAP_OK(mg_listfilter_key("tools/call") == NULL && mg_listfilter_key(NULL) == NULL,
           "not a list");
    TAP_IS_STR(mg_listfilter_call_method("prompts/list"), "prompts/get", "prompts judged as get");
    TAP_IS_STR(mg_listfilter_call_method("resources/list"), "resources/read", "resources as read");

    json_t *m = load("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"a\"},"
                     "{\"name\":\"secret_b\"},{\"name\":\"c\"},{\"name\":7},{\"name\":\"secret\"}],"
                     "\"nextCursor\":\"p2\"}}");
    size_t removed = 0;
    mg_listfilter_apply(m, "tools", keep_not_secret, "tools", &removed);
    TAP_IS_INT(removed, 3, "three removed (two named secret, one without a string name)");
    json_t *tools = json_object_get(json_object_get(m, "result"), "tools");
    TAP_IS_INT(json_array_size(tools), 2, "two left");
    TAP_IS_STR(json_string_value(json_object_get(json_array_get(tools, 0), "name")), "a",
               "order kept (first)");
    TAP_IS_STR(json_string_value(json_object_get(json_array_get(tools, 1), "name")), "c",
               "order kept (second)");
    TAP_IS_STR(json_string_value(json_object_get(json_object_get(m, "result"), "nextCursor")), "p2",
               "pagination cursor kept: a short page");
    json_decref(m);

    m = load(
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"resources\":[{\"uri\":\"file:///secret\"},"
        "{\"uri\":\"file:///ok\"}]}}");
    mg_listfilter_apply(m, "resources", keep_not_secret, "resources", &removed);
    TAP_IS_INT(removed, 1, "resources judged by uri");
    json_decref(m);
    m = load("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"resourceTemplates\":[{\"uriTemplate\":"
             "\"db://{secret}\"},{\"uriTemplate\":\"db://{t}\"}]}}");
    mg_listfilter_apply(m, "resourceTemplates", keep_not_secret, "resourceTemplates", &removed);
    TAP_IS_INT(removed, 1, "templates judged by uriTemplate");
    json_decref(m);
    m = load("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-1,\"message\":\"x\"}}");
    mg_listfilter_apply(m, "tools", keep_not_secret, "tools", &removed);
    TAP_IS_INT(removed, 0, "an error answer is left alone");
    json_decref(m);

    struct {
        const char *tool;
        enum mg_tool_class want;
        const char *desc;
    } cls[] = {
        {"{\"name\":\"a\"}", MG_TOOL_DESTRUCTIVE, "no annotations: destructive"},
        {"{\"annotations\":{\"readOnlyHint\":true}}", MG_TOOL_READ_ONLY, "readOnlyHint"},
        {"{\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":true}}", MG_TOOL_READ_ONLY,
         "readOnlyHint wins (destructiveHint is meaningless then)"},
        {"{\"annotations\":{\"destructiveHint\":false}}", MG_TOOL_WRITE, "not destructive: write"},
        {"{\"annotations\":{\"readOnlyHint\":false}}", MG_TOOL_DESTRUCTIVE,
         "destructiveHint defaults to true"},
        {"{\"annotations\":{\"readOnlyHint\":\"true\"}}", MG_TOOL_DESTRUCTIVE,
         "a string is not true"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(cls); i++) {
        json_t *t = load(cls[i].tool);
        TAP_IS_INT(mg_listfilter_tool_class(t), cls[i].want, "%s", cls[i].desc);
        json_decref(t);
    }
    enum mg_tool_class c;
    TAP_OK(mg_tool_class_parse("read_only", &c) == 0 && c == MG_TOOL_READ_ONLY, "parse read_only");
    TAP_IS_INT(mg_tool_class_parse("readonly", &c), MG_EINVAL, "parse refuses others");
    TAP_IS_STR(mg_tool_class_name(MG_TOOL_WRITE), "write", "class names");
    return tap_done();
}
