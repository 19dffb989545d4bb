/* The list filter without a DOM: one pass over an upstream's JSON-RPC answer
 * to tools/list, prompts/list, resources/list or resources/templates/list
 * (a JSON body, or one SSE event's data) that validates the whole document
 * as strict JSON and, when it answers the list request, removes the items
 * of result.<key> the caller may not see. Kept items are copied byte for
 * byte (the separators between items are rewritten), everything else is
 * left as it is. Pure: bytes in, bytes out; the caller judges each item
 * through a callback. Fuzzed against jansson (fuzz/fuzz_listscan.c).
 *
 * Strict means at least what jansson's decoder refuses (RFC 8259 grammar,
 * escapes, surrogate pairs, UTF-8 without overlong forms or surrogates,
 * control characters, \u0000, integers beyond int64, reals that overflow a
 * double, a top level that is not an object or an array, trailing bytes)
 * plus what makes a document ambiguous: a key twice in any object (keys
 * compared after decoding escapes, as a client would), an item whose name
 * is not a string, and nesting deeper than MG_LISTSCAN_MAX_DEPTH. A
 * refused answer is not sent (fail closed). */
#ifndef MG_MCP_LISTSCAN_H
#define MG_MCP_LISTSCAN_H

#include "core/buf.h"
#include "core/common.h"
#include "mcp/listfilter.h"

#include <jansson.h>

#define MG_LISTSCAN_MAX_DEPTH 128 /* nested arrays and objects */

/* One item of result.<key> as the policy judges it. */
struct mg_listscan_item {
    const char *name; /* decoded, NUL-terminated, valid during the call; NULL when the item
                         has none (not an object, or no name field) */
    size_t name_len;
    /* tools: the class its annotations declare (mg_listfilter_tool_class:
     * readOnlyHint true, else destructiveHint false, else destructive);
     * other lists: MG_TOOL_DESTRUCTIVE */
    enum mg_tool_class tool_class;
};

/* Returns true to keep the item. Called for every item of the array, in
 * order, before the scanner knows whether the document is valid and
 * answers the request: it must not act on the items until
 * mg_listscan_filter returns 0 with filtered set. */
typedef bool (*mg_listscan_keep_fn)(void *ctx, const struct mg_listscan_item *item);

struct mg_listscan_result {
    bool filtered; /* the document answers the request (its id is the request's, and
                      result.<key> is an array): its items were judged */
    bool changed;  /* an item was removed: out holds the answer to send; otherwise the
                      input is to be sent as it is and out is untouched */
    size_t n_items, n_kept;
    const char *error; /* why the document was refused (static text), else NULL */
};

/* Scans doc (len bytes) as the answer to a list request with JSON-RPC id
 * `id` (borrowed) whose items live in result.<key> ("tools", "prompts",
 * "resources", "resourceTemplates"; items are named by "name", "uri" and
 * "uriTemplate" respectively). Appends the filtered answer to out when an
 * item is removed (the caller gives out a bound of at least len; the
 * answer is never longer than the input). Returns 0, MG_EPROTO if the
 * document is refused (res->error says why; out unchanged), or MG_ELIMIT
 * if out is full (or doc is 4 GiB or more). A valid document that does not
 * answer the request (another id, an error, no such array) is not an
 * error: filtered is false and it is to be sent as it is. */
int mg_listscan_filter(const char *doc, size_t len, const char *key, const json_t *id,
                       mg_listscan_keep_fn keep, void *ctx, struct mg_buf *out,
                       struct mg_listscan_result *res);

#endif
