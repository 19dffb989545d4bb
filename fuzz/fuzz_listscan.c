/* libFuzzer target for the one-pass list filter (src/mcp/listscan): the
 * first byte picks the list key and the request's id, the rest is the
 * upstream's answer. A differential check against jansson on every input
 * (tests/unit/listref.h): the scanner refuses whatever jansson with
 * JSON_REJECT_DUPLICATES refuses, refuses more only for a non-string item
 * name or nesting past its bound, and otherwise answers json_equal to the
 * old DOM filter, judging items by a keep function of name and class. */
#include "../tests/unit/listref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool keep(const char *name, enum mg_tool_class cls)
{
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return (h + (uint32_t)cls) % 3 != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"tools", "prompts", "resources", "resourceTemplates"};
    static const char *const ids[] = {"1", "\"a\"", "null", "2.5"};
    if (size < 1)
        return 0;
    json_t *id = json_loads(ids[data[0] >> 2 & 3], JSON_DECODE_ANY, NULL);
    MG_ASSERT(id != NULL);
    const char *why = listref_check((const char *)data + 1, size - 1, keys[data[0] & 3], id, keep);
    if (why)
        fprintf(stderr, "listscan: %s\n", why);
    MG_ASSERT(why == NULL);
    json_decref(id);
    return 0;
}
