/* What the gateway has learned about a route's tools: each tool's class from
 * the annotations in the upstream's tools/list answers. Shared by all
 * workers (one mutex), bounded, and kept per route name for the life of the
 * process, so a reload does not forget what the upstream said. The route's
 * mcp.tool_classes override what is learned. */
#ifndef MG_GW_TOOLMAP_H
#define MG_GW_TOOLMAP_H

#include "core/common.h"

#include <jansson.h>

#define MG_TOOLMAP_MAX 4096 /* tools remembered per route; later ones stay unknown */

struct mg_toolmap;

struct mg_toolmap *mg_toolmap_new(void);
void mg_toolmap_free(struct mg_toolmap *m);
/* The process-wide map of the route named name, created on first use; it
 * lives until mg_toolmap_shared_fini (at exit). Thread-safe. */
struct mg_toolmap *mg_toolmap_shared(const char *name);
void mg_toolmap_shared_fini(void);
/* Learns from a tools/list result's "tools" array (class per
 * mg_listfilter_tool_class). */
void mg_toolmap_learn(struct mg_toolmap *m, const json_t *tools);
/* The learned class (enum mg_tool_class), or -1 if the tool is unknown. */
int mg_toolmap_get(struct mg_toolmap *m, const char *tool);

#endif
