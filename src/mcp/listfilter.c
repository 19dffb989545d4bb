/* List filtering and tool classes; see listfilter.h. */
#include "mcp/listfilter.h"

static const struct {
    const char *method, *key, *call;
} lists[] = {
    {"tools/list", "tools", "tools/call"},
    {"prompts/list", "prompts", "prompts/get"},
    {"resources/list", "resources", "resources/read"},
    {"resources/templates/list", "resourceTemplates", "resources/read"},
};

const char *mg_listfilter_key(const char *method)
{
    for (size_t i = 0; method && i < MG_ARRAY_LEN(lists); i++)
        if (strcmp(method, lists[i].method) == 0)
            return lists[i].key;
    return NULL;
}

const char *mg_listfilter_call_method(const char *method)
{
    for (size_t i = 0; method && i < MG_ARRAY_LEN(lists); i++)
        if (strcmp(method, lists[i].method) == 0)
            return lists[i].call;
    return NULL;
}

const char *mg_listfilter_item_name(const char *key, const json_t *item)
{
    const char *field = "name";
    if (strcmp(key, "resources") == 0)
        field = "uri";
    else if (strcmp(key, "resourceTemplates") == 0)
        field = "uriTemplate";
    const json_t *v = json_object_get(item, field);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

enum mg_tool_class mg_listfilter_tool_class(const json_t *tool)
{
    const json_t *a = json_object_get(tool, "annotations");
    if (json_is_true(json_object_get(a, "readOnlyHint")))
        return MG_TOOL_READ_ONLY;
    if (json_is_false(json_object_get(a, "destructiveHint")))
        return MG_TOOL_WRITE;
    return MG_TOOL_DESTRUCTIVE;
}

static const char *const class_names[] = {"destructive", "write", "read_only"};

const char *mg_tool_class_name(enum mg_tool_class c)
{
    return (size_t)c < MG_ARRAY_LEN(class_names) ? class_names[c] : "destructive";
}

int mg_tool_class_parse(const char *s, enum mg_tool_class *out)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(class_names); i++) {
        if (strcmp(s, class_names[i]) == 0) {
            *out = (enum mg_tool_class)i;
            return 0;
        }
    }
    return MG_EINVAL;
}
