/* What the gateway knows of MCP list answers (tools/list, prompts/list,
 * resources/list, resources/templates/list): their result key, the call an
 * item stands for, an item's name, and the tool class taken from a tool's
 * annotations. The answers themselves are filtered by listscan.h, in one
 * pass without a DOM; pagination (nextCursor) is left as it is, so a
 * filtered page may be short (MCP allows that). */
#ifndef MG_MCP_LISTFILTER_H
#define MG_MCP_LISTFILTER_H

#include "core/common.h"

#include <jansson.h>

enum mg_tool_class {
    MG_TOOL_DESTRUCTIVE = 0, /* the default: unknown tools count as destructive */
    MG_TOOL_WRITE,
    MG_TOOL_READ_ONLY,
};

/* The key of the result array a list method returns ("tools", "prompts",
 * "resources", "resourceTemplates"), or NULL for any other method. */
const char *mg_listfilter_key(const char *method);
/* The call method whose rules judge an item of that list ("tools/call",
 * "prompts/get", "resources/read"), or NULL. */
const char *mg_listfilter_call_method(const char *method);
/* The name a policy sees for an item: "name" for tools and prompts, "uri"
 * for resources, "uriTemplate" for templates. NULL if absent or not a string. */
const char *mg_listfilter_item_name(const char *key, const json_t *item);

/* A tool's class from its annotations (MCP 2025-06-18 ToolAnnotations:
 * readOnlyHint defaults to false, destructiveHint to true): readOnlyHint
 * true -> read-only; else destructiveHint false -> write; else destructive. */
enum mg_tool_class mg_listfilter_tool_class(const json_t *tool);
const char *mg_tool_class_name(enum mg_tool_class c);
/* Parses "read_only", "write", "destructive"; MG_EINVAL otherwise. */
int mg_tool_class_parse(const char *s, enum mg_tool_class *out);

#endif
