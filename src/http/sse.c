/* SSE parsing and formatting; see sse.h. */
#include "http/sse.h"

void mg_sse_parser_init(struct mg_sse_parser *p, size_t max_event, mg_sse_cb cb, void *ud)
{
    memset(p, 0, sizeof *p);
    mg_buf_init(&p->line, max_event);
    mg_buf_init(&p->data, max_event);
    mg_buf_init(&p->event, 256);
    mg_buf_init(&p->id, 1024);
    p->cb = cb;
    p->ud = ud;
}

bool mg_sse_parser_idle(const struct mg_sse_parser *p)
{
    return p->bom_done && !p->last_cr && p->line.len == 0 && p->data.len == 0 && p->event.len == 0;
}

void mg_sse_parser_fini(struct mg_sse_parser *p)
{
    mg_buf_fini(&p->line);
    mg_buf_fini(&p->data);
    mg_buf_fini(&p->event);
    mg_buf_fini(&p->id);
}

#define KEEP_BYTES (64u << 10) /* buffers bigger than this are freed after use */

static int dispatch(struct mg_sse_parser *p)
{
    int rc = 0;
    /* WHATWG: an event with an empty data buffer is not dispatched. */
    if (p->data.len > 0) {
        /* The last data line's newline is not part of the data. */
        size_t dlen = p->data.len;
        if (dlen > 0 && p->data.data[dlen - 1] == '\n')
            dlen--;
        struct mg_sse_event ev = {
            .event = p->event.len ? p->event.data : "message",
            .data = p->data.data ? p->data.data : "",
            .data_len = dlen,
            .id = p->has_id ? (p->id.data ? p->id.data : "") : NULL,
        };
        if (p->data.data)
            p->data.data[dlen] = '\0';
        rc = p->cb(p->ud, &ev);
    }
    /* A stream may stay open for hours: a big event's buffer is not kept. */
    if (p->data.cap > KEEP_BYTES)
        mg_buf_fini(&p->data);
    mg_buf_reset(&p->data);
    mg_buf_reset(&p->event);
    return rc;
}

static int process_line(struct mg_sse_parser *p)
{
    const char *l = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
    if (n == 0)
        return dispatch(p);
    if (l[0] == ':')
        return 0; /* comment */
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (mg_str_eq(l, flen, "data")) {
        if (mg_buf_append(&p->data, v, vlen) < 0 || mg_buf_append(&p->data, "\n", 1) < 0)
            return MG_ELIMIT;
    } else if (mg_str_eq(l, flen, "event")) {
        mg_buf_reset(&p->event);
        if (mg_buf_append(&p->event, v, vlen) < 0)
            return MG_ELIMIT;
    } else if (mg_str_eq(l, flen, "id")) {
        if (memchr(v, '\0', vlen) == NULL) {
            mg_buf_reset(&p->id);
            if (mg_buf_append(&p->id, v, vlen) < 0)
                return MG_ELIMIT;
            p->has_id = true;
        }
    }
    /* "retry" and unknown fields are ignored. */
    return 0;
}

int mg_sse_parser_feed(struct mg_sse_parser *p, const char *data, size_t len)
{
    static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
    size_t i = 0;
    /* A leading BOM is dropped, however the first bytes are split. */
    while (!p->bom_done && i < len) {
        if (data[i] == bom[p->bom_seen]) {
            i++;
            if (++p->bom_seen == 3)
                p->bom_done = true;
            continue;
        }
        p->bom_done = true;
        if (p->bom_seen > 0) {
            /* Not a BOM after all: the bytes held back are ordinary input. */
            unsigned held = p->bom_seen;
            p->bom_seen = 0;
            int rc = mg_sse_parser_feed(p, bom, held);
            if (rc < 0)
                return rc;
        }
    }
    for (; i < len; i++) {
        char c = data[i];
        if (c == '\n' && p->last_cr) {
            p->last_cr = false;
            continue; /* the LF of a CRLF */
        }
        p->last_cr = false;
        if (c == '\r' || c == '\n') {
            p->last_cr = c == '\r';
            int rc = process_line(p);
            if (p->line.cap > KEEP_BYTES)
                mg_buf_fini(&p->line);
            mg_buf_reset(&p->line);
            if (rc < 0)
                return rc;
            continue;
        }
        /* Copy the run of ordinary bytes in one go (found with memchr: a
         * relayed stream's every byte goes through here). */
        const char *nl = memchr(data + i, '\n', len - i);
        size_t j = nl ? (size_t)(nl - data) : len;
        const char *cr = memchr(data + i, '\r', j - i);
        if (cr)
            j = (size_t)(cr - data);
        if (mg_buf_append(&p->line, data + i, j - i) < 0)
            return MG_ELIMIT;
        i = j - 1;
    }
    return 0;
}

int mg_sse_format(struct mg_buf *out, const char *event, const char *data, size_t len)
{
    int rc = 0;
    if (event) {
        if (strpbrk(event, "\r\n"))
            return MG_EINVAL;
        rc |= mg_buf_appendf(out, "event: %s\n", event);
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || data[i] == '\n' || data[i] == '\r') {
            rc |= mg_buf_appends(out, "data: ");
            rc |= mg_buf_append(out, data + start, i - start);
            rc |= mg_buf_appends(out, "\n");
            if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
                i++; /* CRLF is one line end */
            start = i + 1;
        }
    }
    rc |= mg_buf_appends(out, "\n");
    return rc ? MG_ELIMIT : 0;
}
