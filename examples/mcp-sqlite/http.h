/* mcp-sqlite's MCP Streamable HTTP transport (MCP 2025-03-26, 2025-06-18 and
 * 2025-11-25 "Transports"): one libuv TCP listener, llhttp per connection,
 * the session table, and the /mcp endpoint's POST / DELETE semantics. It owns
 * its connections and sessions; the dispatcher and database stay the
 * caller's. */
#ifndef MG_MSQ_HTTP_H
#define MG_MSQ_HTTP_H

#include <uv.h>

#include "tools.h"

struct mg_msq_http;

/* Binds HOST:PORT ("127.0.0.1:8080", "[::1]:0", "localhost:9000") and starts
 * serving srv on loop. srv must outlive the transport. Prints the bound
 * address to stderr. */
int mg_msq_http_start(uv_loop_t *loop, struct mg_msq_server *srv, const char *hostport,
                      struct mg_msq_http **out);
/* Closes the listener and every connection (asynchronously: run the loop
 * afterwards); in-flight slow_count jobs are dropped. */
void mg_msq_http_stop(struct mg_msq_http *h);
/* Frees the sessions and h once the loop has finished closing; NULL is a
 * no-op. */
void mg_msq_http_free(struct mg_msq_http *h);

#endif
