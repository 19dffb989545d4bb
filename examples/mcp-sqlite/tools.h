/* mcp-sqlite's MCP dispatcher: JSON-RPC messages in, JSON-RPC replies out, over
 * one SQLite database. It owns the two database connections (a read-write one
 * for `execute`, a SQLITE_OPEN_READONLY one for everything else), the tool
 * definitions and the --log file descriptor; it owns no sockets, timers or
 * session table, so the stdio and HTTP transports in main.c and the unit tests
 * drive it the same way. The one thing it cannot finish synchronously,
 * slow_count, comes back as a job the transport runs on its own timers.
 *
 * Symbols use the module prefix `mg_msq_` (mcp-sqlite). */
#ifndef MG_MSQ_TOOLS_H
#define MG_MSQ_TOOLS_H

#include <jansson.h>

#include "core/buf.h"
#include "core/common.h"

/* Bounds on untrusted input the transports apply too. */
#define MG_MSQ_MAX_BATCH   100       /* elements in one JSON-RPC batch */
#define MG_MSQ_MAX_MESSAGE (1 << 20) /* bytes in one body or stdio line */
#define MG_MSQ_NO_SLOT     SIZE_MAX
#define MG_MSQ_VERSION_CAP 16

/* JSON-RPC 2.0 §5.1 error codes. */
#define MG_MSQ_PARSE_ERROR      -32700
#define MG_MSQ_INVALID_REQUEST  -32600
#define MG_MSQ_METHOD_NOT_FOUND -32601
#define MG_MSQ_INVALID_PARAMS   -32602

struct mg_msq_server;

struct mg_msq_options {
    const char *db_path; /* a filename or an SQLite URI ("file:/x?vfs=memdb") */
    bool readonly;       /* refuse `execute`, open no read-write connection after setup */
    bool init_demo;      /* create the demo tables and rows if they are missing */
    int log_fd;          /* one line per received message is appended here; -1 for none */
};

/* What one client session negotiated. The HTTP transport keeps one per
 * Mcp-Session-Id; stdio has exactly one. Zero-initialise before use. */
struct mg_msq_session {
    char version[MG_MSQ_VERSION_CAP]; /* "" until initialize succeeds */
};

/* A slow_count call the transport must finish: after each of `steps` waits
 * of `interval_ms` it sends mg_msq_progress() when `token` is set, and at the
 * end answers with mg_msq_slow_result(). */
struct mg_msq_job {
    json_t *id;    /* owned reference: the request id */
    json_t *token; /* owned reference to params._meta.progressToken, or NULL */
    int steps;
    int interval_ms;
    size_t slot; /* index of the placeholder in a batch reply, or MG_MSQ_NO_SLOT */
};

enum mg_msq_kind {
    MG_MSQ_REPLY = 0, /* ordinary answer (it may still hold JSON-RPC errors) */
    MG_MSQ_MALFORMED, /* the body was not JSON, or not a JSON-RPC message/batch at all */
};

/* The result of handling one transport message (a body or a line). */
struct mg_msq_out {
    json_t *reply; /* owned: a response object, a batch array (with null placeholders
                      at job slots) or NULL when nothing is to be sent now */
    enum mg_msq_kind kind;
    bool initialized;        /* an initialize request succeeded */
    bool has_request;        /* at least one request (not notification) was seen */
    struct mg_msq_job *jobs; /* owned array of n_jobs */
    size_t n_jobs;
    json_t *cancel_id; /* owned: requestId of a notifications/cancelled, or NULL */
};

/* Opens the database, applies the hardening and (optionally) the demo
 * schema. On failure returns a negative status and writes a reason to err. */
int mg_msq_server_new(const struct mg_msq_options *opt, struct mg_msq_server **out, char *err,
                      size_t err_cap);
/* Closes the connections; NULL is a no-op. The log fd stays the caller's. */
void mg_msq_server_free(struct mg_msq_server *srv);

bool mg_msq_is_supported_version(const char *v);

void mg_msq_out_init(struct mg_msq_out *out);
/* Releases everything out still owns and re-initialises it. */
void mg_msq_out_fini(struct mg_msq_out *out);

/* Parses one message. Returns a new reference, or NULL after putting a
 * -32700 answer in out->reply (kind MG_MSQ_MALFORMED). */
json_t *mg_msq_parse(struct mg_msq_server *srv, const char *text, size_t len,
                     struct mg_msq_out *out);
/* True for a single (non-batch) initialize request: the HTTP transport
 * creates the session before dispatching it. */
bool mg_msq_is_initialize(const json_t *msg);
/* Handles a parsed message or batch for sess; results go to out (which
 * must be freshly initialised). msg stays the caller's. */
void mg_msq_handle(struct mg_msq_server *srv, struct mg_msq_session *sess, const json_t *msg,
                   struct mg_msq_out *out);
/* mg_msq_parse + mg_msq_handle. */
void mg_msq_handle_text(struct mg_msq_server *srv, struct mg_msq_session *sess, const char *text,
                        size_t len, struct mg_msq_out *out);

/* New references: a JSON-RPC error response (id may be NULL for null), a
 * notifications/progress message, and slow_count's final response. */
json_t *mg_msq_error(const json_t *id, int code, const char *message);
json_t *mg_msq_progress(const json_t *token, int step, int steps);
json_t *mg_msq_slow_result(const json_t *id, int steps);
/* Appends v as compact JSON to b; MG_ELIMIT when b's cap is hit. */
int mg_msq_dump(const json_t *v, struct mg_buf *b);

#endif
