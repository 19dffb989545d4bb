/* List keys, item names and tool classes (src/mcp/listfilter); the
 * filtering itself is tested in test_listscan.c. */
#include "mcp/listfilter.h"
#include "tap.h"

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

    json_t *m = load("{\"name\":\"a\",\"uri\":\"file:///x\",\"uriTemplate\":\"db://{t}\"}");
    TAP_IS_STR(mg_listfilter_item_name("tools", m), "a", "tools are named by name");
    TAP_IS_STR(mg_listfilter_item_name("resources", m), "file:///x", "resources by uri");
    TAP_IS_STR(mg_listfilter_item_name("resourceTemplates", m), "db://{t}",
               "templates by uriTemplate");
    json_decref(m);
    m = load("{\"name\":7}");
    TAP_OK(mg_listfilter_item_name("tools", m) == NULL, "a name that is not a string is none");
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
