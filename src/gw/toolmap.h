/* What the gateway has learned about a route from its upstream: each tool's
 * class from the annotations in the upstream's tools/list answers, and the
 * server->client requests (sampling, elicitation, roots) relayed on the
 * route's streams and not yet answered, so a client's response is judged by
 * the method it answers. Shared by all workers (one mutex), bounded, and
 * kept per route name for the life of the process, so a reload does not
 * forget what the upstream said. The route's mcp.tool_classes override what
 * is learned. */
#ifndef MG_GW_TOOLMAP_H
#define MG_GW_TOOLMAP_H

#include "core/buf.h"
#include "core/common.h"
#include "mcp/listfilter.h"

#include <jansson.h>

#define MG_TOOLMAP_MAX 4096 /* tools remembered per route; later ones stay unknown */
/* Server->client requests awaiting an answer, per route: past the bound the
 * oldest is forgotten (its answer is then refused as unmatched); each is
 * forgotten after MG_TOOLMAP_PENDING_TTL_MS. */
#define MG_TOOLMAP_MAX_PENDING    4096
#define MG_TOOLMAP_PENDING_TTL_MS (15 * 60 * 1000)
#define MG_TOOLMAP_METHOD_MAX     96 /* longer methods are not remembered */

struct mg_toolmap;

struct mg_toolmap *mg_toolmap_new(void);
void mg_toolmap_free(struct mg_toolmap *m);
/* The process-wide map of the route named name, created on first use; it
 * lives until mg_toolmap_shared_fini (at exit). Thread-safe. */
struct mg_toolmap *mg_toolmap_shared(const char *name);
void mg_toolmap_shared_fini(void);
/* The names and classes of one tools/list answer, gathered while it is
 * scanned and learned at once when it turned out valid. Bounded: names
 * over 256 bytes are not learned, and what does not fit is left out. */
struct mg_toolmap_batch {
    struct mg_buf recs; /* per tool: its class as one byte, its name, NUL */
};
void mg_toolmap_batch_init(struct mg_toolmap_batch *b);
void mg_toolmap_batch_fini(struct mg_toolmap_batch *b);
void mg_toolmap_batch_add(struct mg_toolmap_batch *b, const char *name, size_t len,
                          enum mg_tool_class cls);
/* Learns the batch's classes (a later tool of the same name wins). An
 * upstream answers tools/list with the same tools again and again: a batch
 * equal to the last one learned (SHA-256 of its records) changes nothing and
 * takes the lock once to compare. */
void mg_toolmap_learn_batch(struct mg_toolmap *m, const struct mg_toolmap_batch *b);
/* Learns from a tools/list result's "tools" array (class per
 * mg_listfilter_tool_class), e.g. a request file's tools. */
void mg_toolmap_learn(struct mg_toolmap *m, const json_t *tools);
/* The learned class (enum mg_tool_class), or -1 if the tool is unknown. */
int mg_toolmap_get(struct mg_toolmap *m, const char *tool);

/* The upstream sent request id_json (its id as compact JSON) with method on
 * a stream of MCP session `session` ("" without one). Noting the same
 * session and id again replaces it. */
void mg_toolmap_note_request(struct mg_toolmap *m, const char *session, const char *id_json,
                             const char *method);
/* A client answers id_json in session: true and the request's method in
 * method (cap bytes) if the gateway relayed that request, which is then
 * forgotten (one answer per request); false otherwise. */
bool mg_toolmap_take_request(struct mg_toolmap *m, const char *session, const char *id_json,
                             char *method, size_t cap);

#endif
