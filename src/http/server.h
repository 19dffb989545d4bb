/* The HTTP/1.1 server side of a connection: reads and bounds requests, hands
 * each complete request to a handler, and writes its response (whole, or
 * streamed with chunked framing) with backpressure. Used by the public
 * listener, the metrics listener and the internal session hub. */
#ifndef MG_HTTP_SERVER_H
#define MG_HTTP_SERVER_H

#include "core/buf.h"
#include "core/list.h"
#include "http/parser.h"
#include "net/stream.h"
#include "net/timer.h"

#include <stdatomic.h>

struct mg_http_req;
struct mg_http_conn;

struct mg_http_handler {
    /* A complete request (head + body). The handler answers through the
     * response functions below, now or later. */
    void (*on_request)(struct mg_http_req *req);
    /* The client went away or the connection failed while the handler owned
     * req; the handler drops its state. req is freed when this returns. */
    void (*on_abort)(struct mg_http_req *req);
    /* Queued output drained after mg_http_congested() said true. */
    void (*on_drain)(struct mg_http_req *req);
    /* Every finished or failed request, once, for the access log. */
    void (*on_log)(struct mg_http_req *req);
};

struct mg_http_limits {
    size_t max_header_bytes;
    uint64_t max_body_bytes;
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t send_timeout_ms;
    size_t max_connections;
};

struct mg_http_server {
    uv_loop_t *loop;
    const struct mg_http_handler *handler;
    void *data;
    SSL_CTX *ssl_ctx; /* NULL: plain HTTP */
    struct mg_http_limits limits;
    bool is_tls;
    struct mg_list conns;
    size_t n_conns;
    bool draining;
    void (*on_empty)(struct mg_http_server *srv); /* while draining: last connection closed */
    _Atomic(long long) *conn_gauge;               /* optional: open-connection gauge to maintain */
    _Atomic(long long)
        *load_gauge; /* optional: this server's open connections, for other threads */
};

enum mg_http_conn_state { CONN_HEAD, CONN_BODY, CONN_HANDLING, CONN_LINGER, CONN_CLOSED };

struct mg_http_conn {
    struct mg_stream s;
    struct mg_http_server *srv;
    struct mg_list link;
    struct mg_http_parser parser;
    struct mg_buf pending; /* bytes read while a request is being handled */
    struct mg_timer timer;
    enum mg_http_conn_state state;
    struct mg_http_req *req;
    uint64_t last_written; /* for the send-progress watchdog */
    bool got_bytes;        /* any byte of the current head seen */
    bool timer_closed;
    bool stream_closed;
    char peer[64]; /* client address, for logs and X-Forwarded-For */
    uint16_t peer_port;
    /* The same address for source_ip rules, read once per connection
     * (family 0 for a Unix socket). */
    struct sockaddr_storage peer_addr;
    unsigned n_requests;
};

struct mg_http_req {
    struct mg_http_conn *conn;
    const struct mg_http_head *head; /* valid until mg_http_release_head or the end */
    struct mg_buf body;
    int method;
    char *path;   /* the raw path without query, NUL-terminated, in target's block */
    char *target; /* the raw request target, NUL-terminated copy */
    uint64_t start_ns;
    int status;
    uint64_t bytes_out;
    bool started, chunked, finished, head_only, close_after, aborted, http10;
    const char *error; /* server-side reason for an error status */
    void *hdata;       /* the handler's per-request state */
};

void mg_http_server_init(struct mg_http_server *srv, uv_loop_t *loop,
                         const struct mg_http_handler *handler, void *data, SSL_CTX *ssl_ctx,
                         const struct mg_http_limits *limits);
/* Takes a connected (accepted) client stream handle; call from the listener's
 * connection callback. Returns 0 or a negative status (the handle is closed). */
int mg_http_server_accept(struct mg_http_server *srv, uv_stream_t *listener);
/* Serves a TCP connection accepted elsewhere, possibly on another thread:
 * fd is the accepted non-blocking socket (owned from here on, closed on
 * failure too), peer its address. counted: the caller has already added it
 * to srv->conn_gauge, so that the connection cap also covers connections
 * on their way between workers. Returns 0 or a negative status. */
int mg_http_server_adopt(struct mg_http_server *srv, int fd, const struct sockaddr_storage *peer,
                         bool counted);
/* Stops keep-alive: idle connections close now, active ones after their
 * response. on_empty fires when none is left. */
void mg_http_server_drain(struct mg_http_server *srv);
/* Closes every connection now (end of the drain timeout). */
void mg_http_server_close_all(struct mg_http_server *srv);

/* Starts a response. headers is zero or more "Name: value\r\n" lines (no
 * framing headers: this adds Content-Length or Transfer-Encoding: chunked).
 * content_length < 0 means a streamed body. */
int mg_http_begin(struct mg_http_req *req, int status, const char *headers, size_t headers_len,
                  int64_t content_length);
int mg_http_write(struct mg_http_req *req, const void *data, size_t len);
/* Ends the response; the request is logged and freed, the connection goes on
 * to the next request or closes. req must not be used afterwards. */
void mg_http_finish(struct mg_http_req *req);
/* Ends the response abnormally: the connection is closed without a clean
 * end of body, so the client knows the response is incomplete. */
void mg_http_abort(struct mg_http_req *req);
/* A whole response in one call, then finish. */
void mg_http_reply(struct mg_http_req *req, int status, const char *content_type,
                   const char *extra_headers, const void *body, size_t len);
/* A JSON-RPC error response (id_json is the raw JSON id or NULL for null). */
void mg_http_reply_jsonrpc_error(struct mg_http_req *req, int status, const char *id_json, int code,
                                 const char *message, const char *extra_headers);
bool mg_http_congested(const struct mg_http_req *req);
/* Frees the request head early (after the handler copied what it needs). */
void mg_http_release_head(struct mg_http_req *req);
const char *mg_http_status_text(int status);

#endif
