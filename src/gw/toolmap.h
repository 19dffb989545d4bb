/* What the gateway has learned about a route's tools: each tool's class from
 * the annotations in the upstream's tools/list answers. Shared by all
 * workers (one mutex), bounded; a reload starts a fresh map with the new
 * configuration. The route's mcp.tool_classes override what is learned. */
#ifndef MG_GW_TOOLMAP_H
#define MG_GW_TOOLMAP_H

#include "core/common.h"

#include <jansson.h>

#define MG_TOOLMAP_MAX 4096 /* tools remembered per route; later ones stay unknown */

struct mg_toolmap;

struct mg_toolmap *mg_toolmap_new(void);
void mg_toolmap_free(struct mg_toolmap *m);
/* Learns from a tools/list result's "tools" array (class per
 * mg_listfilter_tool_class). */
void mg_toolmap_learn(struct mg_toolmap *m, const json_t *tools);
/* The learned class (enum mg_tool_class), or -1 if the tool is unknown. */
int mg_toolmap_get(struct mg_toolmap *m, const char *tool);

#endif
