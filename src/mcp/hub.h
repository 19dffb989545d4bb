/* The session hub: the gateway's own Streamable HTTP server for upstreams
 * that do not speak it — stdio servers it hosts as child processes and legacy
 * HTTP+SSE (2024-11-05) servers. It runs on its own thread and loop, listens
 * on a private Unix socket, and workers proxy stdio and legacy routes to it
 * like any HTTP upstream, so every route shares one request pipeline. */
#ifndef MG_MCP_HUB_H
#define MG_MCP_HUB_H

#include "gw/gw.h"

/* Starts the hub thread listening on sock_path. Takes a reference to gw. */
int mg_hub_start(struct mg_gw *gw, const char *sock_path, struct mg_buf *err);
void mg_hub_post_config(struct mg_gw *gw);
/* Ends every session (children get stdin closed, then TERM, then KILL). */
void mg_hub_post_drain(void);
void mg_hub_join(void);

#endif
