/* Server-Sent Events parsing (WHATWG HTML "event stream interpretation"):
 * bytes in, events out. Pure and incremental: input may be split anywhere,
 * lines end in LF, CRLF or CR, and an event is bounded in size. */
#ifndef MG_HTTP_SSE_H
#define MG_HTTP_SSE_H

#include "core/buf.h"

struct mg_sse_event {
    const char *event; /* "message" when the stream gave no event name */
    const char *data;  /* data lines joined with '\n' */
    size_t data_len;
    const char *id; /* NULL when absent */
};

/* Return 0 to go on, negative to stop parsing (the status is returned). */
typedef int (*mg_sse_cb)(void *ud, const struct mg_sse_event *ev);

struct mg_sse_parser {
    struct mg_buf line;  /* the current line */
    struct mg_buf data;  /* the current event's data */
    struct mg_buf event; /* the current event's name */
    struct mg_buf id;
    bool has_id, last_cr, bom_done;
    unsigned bom_seen; /* bytes of a leading UTF-8 BOM matched so far */
    mg_sse_cb cb;
    void *ud;
};

void mg_sse_parser_init(struct mg_sse_parser *p, size_t max_event, mg_sse_cb cb, void *ud);
void mg_sse_parser_fini(struct mg_sse_parser *p);
/* True when nothing is held between events: no partial line, no event
 * being gathered (its name, data), no pending CR or BOM. Bytes that end in a
 * blank line leave a parser idle again. */
bool mg_sse_parser_idle(const struct mg_sse_parser *p);
/* Feeds bytes; returns 0, MG_ELIMIT when an event exceeds max_event, or the
 * callback's negative status. */
int mg_sse_parser_feed(struct mg_sse_parser *p, const char *data, size_t len);
/* Appends one event ("event: NAME\ndata: ...\n\n"), one data line per line of
 * data (LF, CRLF and CR all end a line, as the parser reads them). A name
 * with CR or LF is refused (MG_EINVAL): it would inject fields. */
int mg_sse_format(struct mg_buf *out, const char *event, const char *data, size_t len);

#endif
