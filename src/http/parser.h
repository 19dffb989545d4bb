/* HTTP/1.1 message parsing on top of llhttp: bytes in, a bounded message head
 * and body events out. Pure: no sockets, no globals, so it is unit-tested one
 * byte at a time and fuzzed. Used for client requests and upstream responses.
 *
 * The head (start line and headers) is copied into one buffer capped at
 * max_head bytes; hitting the cap is an error the caller maps to 431 (request)
 * or 502 (upstream response). The parser pauses after each complete message
 * so a connection never has two requests in flight (no pipelining hazards). */
#ifndef MG_HTTP_PARSER_H
#define MG_HTTP_PARSER_H

#include "core/buf.h"
#include "core/common.h"

#include <llhttp.h>

#define MG_HTTP_MAX_HEADERS 128

enum mg_http_kind { MG_HTTP_REQUEST, MG_HTTP_RESPONSE };

/* Header names the gateway itself reads or drops, known by number once a
 * head is parsed: every request is checked against a few dozen names, and
 * comparing each as a string was a measurable share of a proxied request
 * (bench/RESULTS.md). MG_HDR_OTHER is any other name. */
enum mg_hdr {
    MG_HDR_OTHER = 0,
    MG_HDR_ACCEPT,
    MG_HDR_AUTHORIZATION,
    MG_HDR_CONNECTION,
    MG_HDR_CONTENT_LENGTH,
    MG_HDR_CONTENT_TYPE,
    MG_HDR_COOKIE,
    MG_HDR_EXPECT,
    MG_HDR_FORWARDED,
    MG_HDR_HOST,
    MG_HDR_HTTP2_SETTINGS,
    MG_HDR_KEEP_ALIVE,
    MG_HDR_LAST_EVENT_ID,
    MG_HDR_MCP_METHOD,
    MG_HDR_MCP_NAME,
    MG_HDR_MCP_PROTOCOL_VERSION,
    MG_HDR_MCP_SESSION_ID,
    MG_HDR_ORIGIN,
    MG_HDR_PROXY_AUTHENTICATE,
    MG_HDR_PROXY_AUTHORIZATION,
    MG_HDR_PROXY_CONNECTION,
    MG_HDR_SET_COOKIE,
    MG_HDR_TE,
    MG_HDR_TRAILER,
    MG_HDR_TRANSFER_ENCODING,
    MG_HDR_UPGRADE,
    MG_HDR_X_FORWARDED_FOR,
    MG_HDR_X_FORWARDED_HOST,
    MG_HDR_X_FORWARDED_PORT,
    MG_HDR_X_FORWARDED_PROTO,
    MG_HDR_X_MCPGATE_HUB_KEY,
    MG_HDR_X_MCPGATE_ROUTE,
    MG_HDR_X_REAL_IP,
    MG_HDR__COUNT
};

/* The number of a header name (any case), MG_HDR_OTHER if not known. */
enum mg_hdr mg_http_hdr_id(const char *name, size_t len);

struct mg_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    uint8_t id; /* enum mg_hdr, set by the parser (see mg_http_head.indexed) */
};

struct mg_http_head {
    int method; /* llhttp_method_t, requests */
    int status; /* responses */
    int http_major, http_minor;
    const char *url; /* request target, requests */
    size_t url_len;
    /* Set by the parser: each header's id, and per id the index + 1 of its
     * first header (0: none) and how many there are. A head built by hand
     * leaves it false and is searched by name. */
    bool indexed;
    uint8_t first[MG_HDR__COUNT];
    uint8_t count[MG_HDR__COUNT];
    struct mg_http_header headers[MG_HTTP_MAX_HEADERS];
    size_t n_headers;
    bool keep_alive; /* llhttp_should_keep_alive at head time */
    bool chunked;
    bool has_content_length;
    uint64_t content_length;
};

struct mg_http_parser_cbs {
    /* The head is complete. Return 0 to go on, 1 to skip the body (a response to
     * HEAD, or a status without body), or a negative status to fail. */
    int (*on_head)(void *ud, const struct mg_http_head *head);
    /* A piece of the (de-chunked) body. Return 0 or a negative status. */
    int (*on_body)(void *ud, const char *data, size_t len);
    /* The message is complete; the parser pauses until mg_http_parser_resume. */
    int (*on_complete)(void *ud);
};

/* Offsets of header pieces in the store while a head is being parsed; freed
 * once the head is complete so an idle or streaming connection stays small. */
struct mg_http_scratch {
    uint32_t name_off[MG_HTTP_MAX_HEADERS], name_len[MG_HTTP_MAX_HEADERS];
    uint32_t value_off[MG_HTTP_MAX_HEADERS], value_len[MG_HTTP_MAX_HEADERS];
};

struct mg_http_parser {
    llhttp_t ll;
    enum mg_http_kind kind;
    struct mg_http_parser_cbs cbs;
    void *ud;
    struct mg_buf store; /* url + header bytes; cap = max_head */
    size_t max_head;
    uint64_t max_body; /* 0 = unlimited */
    uint64_t body_len;
    size_t head_bytes;         /* raw bytes of the current head seen by the scanner */
    struct mg_http_head *head; /* valid from on_head until release/resume */
    struct mg_http_scratch *scratch;
    size_t url_off, url_len;
    size_t n_headers;
    bool in_field, in_value, in_head, paused, msg_started;
    /* The raw head scanner (see scan_head in parser.c): state carried
     * across reads so a line break split between two reads is still seen. */
    bool scan_done, scan_after_lf, scan_after_cr, scan_seen_line;
    size_t scan_line_len;
    char last_byte;   /* the last byte fed, for checks that straddle reads */
    int error_status; /* HTTP status that describes the failure (400, 413, 431, 502) */
    const char *error_reason;
};

void mg_http_parser_init(struct mg_http_parser *hp, enum mg_http_kind kind, size_t max_head,
                         uint64_t max_body, const struct mg_http_parser_cbs *cbs, void *ud);
void mg_http_parser_fini(struct mg_http_parser *hp);
/* Feeds bytes. Sets *consumed to how many were used: less than len when the
 * parser paused at the end of a message. Returns 0, MG_EAGAIN-free; on error a
 * negative status with error_status / error_reason set. */
int mg_http_parser_execute(struct mg_http_parser *hp, const char *data, size_t len,
                           size_t *consumed);
/* The peer closed: completes a close-delimited body or reports truncation. */
int mg_http_parser_finish(struct mg_http_parser *hp);
/* After on_complete: prepares for the next message on the connection. */
void mg_http_parser_resume(struct mg_http_parser *hp);
/* Frees the head (and the bytes it points into) before the message ends, for
 * long-lived messages such as SSE streams. */
void mg_http_parser_release_head(struct mg_http_parser *hp);
/* True while a message has started but not completed. */
bool mg_http_parser_in_message(const struct mg_http_parser *hp);

/* Frees this thread's cached parse blocks; call before the thread ends. */
void mg_http_parser_thread_fini(void);

/* The first header with a known name, NULL if absent; and how many there
 * are. */
const struct mg_http_header *mg_http_head_get(const struct mg_http_head *h, enum mg_hdr id);
size_t mg_http_head_num(const struct mg_http_head *h, enum mg_hdr id);
/* The id of one of a head's headers (computed if the head is not indexed). */
static inline enum mg_hdr mg_http_header_id(const struct mg_http_head *h,
                                            const struct mg_http_header *x)
{
    return h->indexed ? (enum mg_hdr)x->id : mg_http_hdr_id(x->name, x->name_len);
}
/* Finds a header by name (case-insensitive); NULL if absent. */
const struct mg_http_header *mg_http_head_find(const struct mg_http_head *h, const char *name);
/* Counts headers with that name. */
size_t mg_http_head_count(const struct mg_http_head *h, const char *name);
/* True if the comma-separated header value list contains token (case-insensitive). */
bool mg_http_list_has(const char *value, size_t len, const char *token);

#endif
