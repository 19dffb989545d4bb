/* A message channel to an MCP server that is not itself a Streamable HTTP
 * server: a hosted stdio child, or a legacy HTTP+SSE (2024-11-05) upstream.
 * The hub sends whole JSON-RPC messages and gets whole messages back. */
#ifndef MG_MCP_CHANNEL_H
#define MG_MCP_CHANNEL_H

#include "conf/conf.h"
#include "http/client.h"

#include <jansson.h>
#include <uv.h>

struct mg_channel;

struct mg_channel_ops {
    /* Sends one serialized message. MG_ELIMIT when the server does not keep up. */
    int (*send)(struct mg_channel *ch, const char *msg, size_t len);
    /* Stops reading from the server (backpressure) / starts again. */
    void (*pause)(struct mg_channel *ch);
    void (*resume)(struct mg_channel *ch);
    /* Begins an orderly shutdown; no callback runs afterwards, the channel
     * frees itself once everything is closed. */
    void (*close)(struct mg_channel *ch);
};

struct mg_channel {
    const struct mg_channel_ops *ops;
    /* A message from the server. The callee takes the reference. */
    void (*on_message)(struct mg_channel *ch, json_t *msg);
    /* The server is gone (exit, closed stream). Called at most once. */
    void (*on_end)(struct mg_channel *ch, const char *why);
    void *owner;
};

struct mg_channel_env {
    uv_loop_t *loop;
    struct mg_client_pool *pool;
    size_t max_message;     /* bytes in one message */
    uint64_t kill_grace_ms; /* stdin close -> TERM -> KILL */
    uint64_t connect_timeout_ms;
    uint64_t first_byte_timeout_ms;
    _Atomic(long long) *children; /* gauge */
};

/* Spawns the route's stdio server. On failure *err says why (static string
 * or strerror text) and nothing is left behind. */
int mg_channel_stdio_new(const struct mg_channel_env *env, const struct mg_conf_route *route,
                         struct mg_channel **out, char *err, size_t err_cap);
/* Opens the legacy SSE stream of the route; messages sent before the
 * upstream names its endpoint wait in a bounded queue. */
int mg_channel_sse_new(const struct mg_channel_env *env, const struct mg_conf_route *route,
                       SSL_CTX *ssl_ctx, const char *host_header, struct mg_channel **out);

#endif
