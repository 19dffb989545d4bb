/* The reference the list scanner (src/mcp/listscan) is checked against, by
 * tests/unit/test_listscan.c and fuzz/fuzz_listscan.c: the filter the
 * gateway had before, on a jansson DOM. listref_check runs both on one
 * document and says how they disagree, if they do:
 *  - what jansson refuses with JSON_REJECT_DUPLICATES the scanner refuses;
 *  - the scanner refuses more only for what it calls ambiguous on top (an
 *    item of result.<key> whose name is not a string), for nesting past
 *    MG_LISTSCAN_MAX_DEPTH, and for a NUL byte after a number (jansson 2.14
 *    reads a NUL there as nothing: "1\0," is 1 to it);
 *  - otherwise its answer is json_equal to the DOM filter's (items of
 *    result.<key> removed when the answer's id is the request's), an
 *    unchanged answer is the input itself, and the counts add up.
 * Header-only, static: each test is one translation unit. */
#ifndef MG_TEST_LISTREF_H
#define MG_TEST_LISTREF_H

#include "mcp/listfilter.h"
#include "mcp/listscan.h"

#include <jansson.h>

typedef bool (*listref_keep_fn)(const char *name, enum mg_tool_class cls);

static size_t listref_depth(const json_t *v)
{
    size_t d = 0, i;
    const char *k;
    json_t *x;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x)
        {
            size_t c = listref_depth(x);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            size_t c = listref_depth(x);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    return 0;
}

static const char *listref_field(const char *key)
{
    return strcmp(key, "resources") == 0           ? "uri"
           : strcmp(key, "resourceTemplates") == 0 ? "uriTemplate"
                                                   : "name";
}

/* The array the scanner looks at: result.<key> of a top-level object. */
static json_t *listref_array(json_t *doc, const char *key)
{
    json_t *arr = json_object_get(json_object_get(doc, "result"), key);
    return json_is_array(arr) ? arr : NULL;
}

/* Whether an item of that array has a name that is not a string. */
static bool listref_bad_name(json_t *doc, const char *key)
{
    json_t *arr = listref_array(doc, key), *it;
    size_t i;
    json_array_foreach(arr, i, it)
    {
        json_t *n = json_object_get(it, listref_field(key));
        if (n && !json_is_string(n))
            return true;
    }
    return false;
}

/* The old filter: jansson DOM, in place. */
static void listref_filter(json_t *doc, const char *key, const json_t *id, listref_keep_fn keep)
{
    json_t *arr = listref_array(doc, key);
    if (arr == NULL || !json_equal(json_object_get(doc, "id"), (json_t *)id))
        return;
    for (size_t i = json_array_size(arr); i-- > 0;) {
        json_t *it = json_array_get(arr, i);
        const char *name = mg_listfilter_item_name(key, it);
        enum mg_tool_class cls =
            strcmp(key, "tools") == 0 ? mg_listfilter_tool_class(it) : MG_TOOL_DESTRUCTIVE;
        if (name == NULL || !keep(name, cls))
            json_array_remove(arr, i);
    }
}

struct listref_ctx {
    listref_keep_fn keep;
    size_t calls;
};

static bool listref_keep_item(void *ctx, const struct mg_listscan_item *it)
{
    struct listref_ctx *c = ctx;
    c->calls++;
    if (it->name)
        MG_ASSERT(strlen(it->name) == it->name_len);
    return it->name != NULL && c->keep(it->name, it->tool_class);
}

/* NULL when the scanner and the reference agree on doc, else how not. */
static const char *listref_check(const char *doc, size_t len, const char *key, const json_t *id,
                                 listref_keep_fn keep)
{
    struct mg_buf out;
    struct mg_listscan_result res;
    struct listref_ctx ctx = {keep, 0};
    const char *why = NULL;
    json_t *ref = NULL, *got = NULL;

    mg_buf_init(&out, len + 1);
    int rc = mg_listscan_filter(doc, len, key, id, listref_keep_item, &ctx, &out, &res);
    ref = json_loadb(doc, len, JSON_REJECT_DUPLICATES, NULL);
    if (ref == NULL) {
        if (rc != MG_EPROTO)
            why = "jansson refuses the document, the scanner does not";
        goto done;
    }
    bool extra = listref_depth(ref) > MG_LISTSCAN_MAX_DEPTH || memchr(doc, '\0', len) != NULL ||
                 (json_is_object(ref) && listref_bad_name(ref, key));
    if (rc < 0) {
        if (!extra || rc != MG_EPROTO || res.error == NULL)
            why = "the scanner refuses a document jansson takes";
        goto done;
    }
    if (extra) {
        why = "the scanner takes a non-string name or a document too deep";
        goto done;
    }
    listref_filter(ref, key, id, keep);
    const char *send = res.changed ? out.data : doc;
    size_t send_len = res.changed ? out.len : len;
    got = json_loadb(send, send_len, JSON_REJECT_DUPLICATES, NULL);
    if (got == NULL || !json_equal(got, ref))
        why = "the filtered answers differ";
    else if (!res.changed && out.len != 0)
        why = "an unchanged answer left bytes in out";
    else if (res.changed && (!res.filtered || res.n_kept >= res.n_items))
        why = "changed without a removed item";
    else if (res.filtered && res.n_items != ctx.calls)
        why = "items and calls do not add up";
    else if (res.changed && out.len > len)
        why = "the filtered answer is longer than the input";
done:
    json_decref(ref);
    json_decref(got);
    mg_buf_fini(&out);
    return why;
}

#endif
