/* llhttp glue; see parser.h. llhttp is built in strict mode with its lenient
 * flags off, which refuses most request-smuggling shapes (CL+TE, duplicate
 * Content-Length, bad chunk sizes). What llhttp 8 still lets through in a
 * head — obs-fold, bare LF, a head larger than the limit in a single read —
 * is caught by a small scanner over the raw head bytes that runs before
 * llhttp sees them, with its state carried across reads. Trailer fields are
 * ignored: bodies are re-framed, so trailers are never forwarded. */
#include "http/parser.h"

#define HP(ll) ((struct mg_http_parser *)(ll)->data)

/* The head and scratch blocks (a few KiB) are needed only while a head is
 * parsed and handled; a connection gives them back afterwards so idle and
 * streaming connections stay small. A few spares of each per thread spare
 * the allocator the round trip on every keep-alive request: a proxied
 * request holds two heads at once (the caller's and the upstream's), and a
 * block this size that goes back to malloc makes the next one consolidate
 * its fast bins (bench/RESULTS.md). */
#define SPARES 4

struct spares {
    void *block[SPARES];
    size_t n;
};

static _Thread_local struct spares spare_scratch, spare_head;

static void *spare_get(struct spares *s, size_t size)
{
    return s->n > 0 ? s->block[--s->n] : mg_xmalloc(size);
}

static void spare_put(struct spares *s, void *block)
{
    if (block == NULL)
        return;
    if (s->n < SPARES)
        s->block[s->n++] = block;
    else
        free(block);
}

static void spares_fini(struct spares *s)
{
    while (s->n > 0)
        free(s->block[--s->n]);
}

void mg_http_parser_thread_fini(void)
{
    spares_fini(&spare_scratch);
    spares_fini(&spare_head);
}

static struct mg_http_scratch *scratch_get(void)
{
    return spare_get(&spare_scratch, sizeof(struct mg_http_scratch));
}

static void scratch_put(struct mg_http_scratch *s)
{
    spare_put(&spare_scratch, s);
}

static struct mg_http_head *head_get(void)
{
    return spare_get(&spare_head, sizeof(struct mg_http_head));
}

static void head_put(struct mg_http_head *h)
{
    spare_put(&spare_head, h);
}

static int fail(struct mg_http_parser *hp, int status, const char *reason)
{
    if (hp->error_status == 0) {
        hp->error_status = status;
        hp->error_reason = reason;
    }
    return -1;
}

static int store(struct mg_http_parser *hp, const char *at, size_t n)
{
    if (mg_buf_append(&hp->store, at, n) < 0)
        return fail(hp, hp->kind == MG_HTTP_REQUEST ? 431 : 502, "header section too large");
    return 0;
}

static int on_message_begin(llhttp_t *ll)
{
    struct mg_http_parser *hp = HP(ll);
    mg_http_parser_release_head(hp);
    hp->n_headers = 0;
    hp->url_off = hp->url_len = 0;
    hp->in_field = hp->in_value = false;
    hp->in_head = true;
    hp->msg_started = true;
    hp->body_len = 0;
    if (hp->scratch == NULL)
        hp->scratch = scratch_get();
    return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t n)
{
    struct mg_http_parser *hp = HP(ll);
    if (hp->url_len == 0)
        hp->url_off = hp->store.len;
    hp->url_len += n;
    return store(hp, at, n);
}

static int on_header_field(llhttp_t *ll, const char *at, size_t n)
{
    struct mg_http_parser *hp = HP(ll);
    if (!hp->in_head)
        return 0; /* a trailer field */
    if (!hp->in_field) {
        if (hp->n_headers >= MG_HTTP_MAX_HEADERS)
            return fail(hp, hp->kind == MG_HTTP_REQUEST ? 431 : 502, "too many headers");
        hp->in_field = true;
        hp->scratch->name_off[hp->n_headers] = (uint32_t)hp->store.len;
        hp->scratch->name_len[hp->n_headers] = 0;
    }
    hp->scratch->name_len[hp->n_headers] += (uint32_t)n;
    return store(hp, at, n);
}

static int on_header_field_complete(llhttp_t *ll)
{
    struct mg_http_parser *hp = HP(ll);
    if (!hp->in_head)
        return 0;
    hp->in_field = false;
    hp->in_value = false;
    hp->scratch->value_off[hp->n_headers] = (uint32_t)hp->store.len;
    hp->scratch->value_len[hp->n_headers] = 0;
    return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t n)
{
    struct mg_http_parser *hp = HP(ll);
    if (!hp->in_head)
        return 0;
    if (!hp->in_value) {
        hp->in_value = true;
        hp->scratch->value_off[hp->n_headers] = (uint32_t)hp->store.len;
    }
    hp->scratch->value_len[hp->n_headers] += (uint32_t)n;
    return store(hp, at, n);
}

static int on_header_value_complete(llhttp_t *ll)
{
    struct mg_http_parser *hp = HP(ll);
    if (!hp->in_head)
        return 0;
    if (hp->scratch->name_len[hp->n_headers] == 0)
        return fail(hp, hp->kind == MG_HTTP_REQUEST ? 400 : 502, "empty header name");
    /* Trailing optional whitespace is not part of the value (RFC 9110 §5.5). */
    size_t off = hp->scratch->value_off[hp->n_headers];
    size_t len = hp->scratch->value_len[hp->n_headers];
    while (len > 0 &&
           (hp->store.data[off + len - 1] == ' ' || hp->store.data[off + len - 1] == '\t'))
        len--;
    hp->scratch->value_len[hp->n_headers] = (uint32_t)len;
    /* obs-fold (RFC 9112 §5.2) reaches us as CR/LF inside a value: refuse it
     * rather than forward a line break an upstream may read differently. */
    if (memchr(hp->store.data + off, '\r', len) || memchr(hp->store.data + off, '\n', len))
        return fail(hp, hp->kind == MG_HTTP_REQUEST ? 400 : 502, "obsolete line folding");
    hp->in_value = false;
    hp->n_headers++;
    return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
    struct mg_http_parser *hp = HP(ll);
    if (hp->head == NULL)
        hp->head = head_get();
    struct mg_http_head *h = hp->head;
    memset(h, 0, offsetof(struct mg_http_head, headers));
    const char *base = hp->store.data ? hp->store.data : "";
    h->http_major = ll->http_major;
    h->http_minor = ll->http_minor;
    h->method = ll->method;
    h->status = ll->status_code;
    h->url = base + hp->url_off;
    h->url_len = hp->url_len;
    h->n_headers = hp->n_headers;
    for (size_t i = 0; i < hp->n_headers; i++) {
        h->headers[i].name = base + hp->scratch->name_off[i];
        h->headers[i].name_len = hp->scratch->name_len[i];
        h->headers[i].value = base + hp->scratch->value_off[i];
        h->headers[i].value_len = hp->scratch->value_len[i];
    }
    scratch_put(hp->scratch);
    hp->scratch = NULL;
    h->keep_alive = llhttp_should_keep_alive(ll) != 0;
    h->chunked = (ll->flags & F_CHUNKED) != 0;
    h->has_content_length = (ll->flags & F_CONTENT_LENGTH) != 0;
    h->content_length = h->has_content_length ? ll->content_length : 0;
    hp->in_head = false;

    if (hp->kind == MG_HTTP_REQUEST) {
        if (h->method == HTTP_CONNECT)
            return fail(hp, 405, "CONNECT is not supported");
        /* We never switch protocols: an Upgrade offer is ignored (RFC 9110
         * §7.8 lets a server do so) and the request is served as HTTP/1.1. */
        ll->upgrade = 0;
        if (hp->max_body && h->has_content_length && h->content_length > hp->max_body)
            return fail(hp, 413, "request body too large");
        /* RFC 9112 §6.3: chunked must be the final coding of a request (else
         * 400); we decode no other coding (a chunked final one after another
         * coding is 501, RFC 9112 §6.1). */
        if (mg_http_head_count(h, "transfer-encoding") > 1)
            return fail(hp, 400, "more than one Transfer-Encoding header");
        const struct mg_http_header *te = mg_http_head_find(h, "transfer-encoding");
        if (te && !mg_str_ieq(te->value, te->value_len, "chunked")) {
            size_t k = te->value_len;
            while (k > 0 && te->value[k - 1] != ',')
                k--;
            const char *last = te->value + k;
            size_t last_len = te->value_len - k;
            while (last_len > 0 && (*last == ' ' || *last == '\t')) {
                last++;
                last_len--;
            }
            if (!mg_str_ieq(last, last_len, "chunked"))
                return fail(hp, 400, "chunked must be the final transfer coding");
            return fail(hp, 501, "unsupported transfer coding");
        }
    } else {
        /* A status is three digits (RFC 9110 §15); llhttp accepts fewer. */
        if (h->status < 100 || h->status > 999)
            return fail(hp, 502, "invalid status code");
    }
    /* RFC 9110 §6.4.1: 1xx, 204 and 304 responses never have a body, whatever
     * Content-Length says; reading one would eat the next pooled response. */
    bool no_body =
        hp->kind == MG_HTTP_RESPONSE && (h->status < 200 || h->status == 204 || h->status == 304);
    if (hp->cbs.on_head) {
        int rc = hp->cbs.on_head(hp->ud, h);
        if (rc < 0)
            return fail(hp, hp->kind == MG_HTTP_REQUEST ? 400 : 502, "rejected by handler");
        if (rc == 1)
            return 1;
    }
    return no_body ? 1 : 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t n)
{
    struct mg_http_parser *hp = HP(ll);
    hp->body_len += n;
    if (hp->max_body && hp->body_len > hp->max_body)
        return fail(hp, 413, "request body too large");
    if (hp->cbs.on_body && hp->cbs.on_body(hp->ud, at, n) < 0)
        return fail(hp, hp->kind == MG_HTTP_REQUEST ? 400 : 502, "body rejected by handler");
    return 0;
}

static int on_message_complete(llhttp_t *ll)
{
    struct mg_http_parser *hp = HP(ll);
    if (hp->cbs.on_complete && hp->cbs.on_complete(hp->ud) < 0)
        return fail(hp, hp->kind == MG_HTTP_REQUEST ? 400 : 502, "rejected by handler");
    hp->paused = true;
    hp->msg_started = false;
    return HPE_PAUSED;
}

/* One settings table for every parser: llhttp only reads it. */
static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void mg_http_parser_init(struct mg_http_parser *hp, enum mg_http_kind kind, size_t max_head,
                         uint64_t max_body, const struct mg_http_parser_cbs *cbs, void *ud)
{
    memset(hp, 0, sizeof *hp);
    hp->kind = kind;
    hp->cbs = *cbs;
    hp->ud = ud;
    hp->max_head = max_head;
    hp->max_body = max_body;
    mg_buf_init(&hp->store, max_head);
    llhttp_init(&hp->ll, kind == MG_HTTP_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
    hp->ll.data = hp;
}

void mg_http_parser_release_head(struct mg_http_parser *hp)
{
    head_put(hp->head);
    hp->head = NULL;
    mg_buf_fini(&hp->store);
}

void mg_http_parser_fini(struct mg_http_parser *hp)
{
    mg_http_parser_release_head(hp);
    scratch_put(hp->scratch);
    hp->scratch = NULL;
}

static int map_error(struct mg_http_parser *hp, llhttp_errno_t err)
{
    if (hp->error_status == 0) {
        hp->error_status = hp->kind == MG_HTTP_REQUEST ? 400 : 502;
        hp->error_reason = llhttp_get_error_reason(&hp->ll);
        if (hp->error_reason == NULL)
            hp->error_reason = llhttp_errno_name(err);
    }
    return MG_EPROTO;
}

/* Scans raw head bytes up to the blank line that ends the head. Refuses
 * obs-fold (a line starting with SP or HTAB, RFC 9112 §5.2), a bare LF or a
 * CR not followed by LF (RFC 9112 §2.2), and a head over the limit counted in
 * raw bytes, so padding cannot get around max_head. Leading empty lines
 * before the start line are skipped as RFC 9112 §2.2 allows. */
static int scan_head(struct mg_http_parser *hp, const char *data, size_t len)
{
    int st = hp->kind == MG_HTTP_REQUEST ? 400 : 502;
    for (size_t i = 0; i < len && !hp->scan_done; i++) {
        char c = data[i];
        bool prev_cr = hp->scan_after_cr;
        hp->scan_after_cr = false;
        if (prev_cr && c != '\n')
            return fail(hp, st, "CR not followed by LF");
        if (++hp->head_bytes > hp->max_head)
            return fail(hp, hp->kind == MG_HTTP_REQUEST ? 431 : 502, "header section too large");
        if (c == '\r') {
            hp->scan_after_cr = true;
            continue;
        }
        if (c == '\n') {
            if (!prev_cr)
                return fail(hp, st, "bare LF in the header section");
            if (hp->scan_line_len == 0 && hp->scan_seen_line) {
                hp->scan_done = true; /* the blank line: the head ends here */
            } else if (hp->scan_line_len > 0) {
                hp->scan_seen_line = true;
                hp->scan_after_lf = true;
            }
            hp->scan_line_len = 0;
            continue;
        }
        if (hp->scan_after_lf && (c == ' ' || c == '\t'))
            return fail(hp, st, "obsolete line folding");
        hp->scan_after_lf = false;
        hp->scan_line_len++;
    }
    return 0;
}

static void scan_reset(struct mg_http_parser *hp)
{
    hp->scan_done = hp->scan_after_lf = hp->scan_after_cr = hp->scan_seen_line = false;
    hp->scan_line_len = 0;
    hp->head_bytes = 0;
}

int mg_http_parser_execute(struct mg_http_parser *hp, const char *data, size_t len,
                           size_t *consumed)
{
    *consumed = 0;
    if (hp->error_status)
        return MG_EPROTO;
    MG_ASSERT(!hp->paused);
    if (len == 0)
        return 0;
    if (!hp->scan_done && scan_head(hp, data, len) < 0)
        return MG_EPROTO;
    llhttp_errno_t err = llhttp_execute(&hp->ll, data, len);
    if (err == HPE_OK) {
        *consumed = len;
        hp->last_byte = data[len - 1];
    } else if (err == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&hp->ll);
        *consumed = pos ? (size_t)(pos - data) : len;
        /* A chunked message ends with the CRLF of an empty trailer line;
         * llhttp also takes a bare LF there (RFC 9112 §7.1 wants CRLF). */
        if (hp->head && hp->head->chunked && *consumed > 0) {
            char before = *consumed >= 2 ? data[*consumed - 2] : hp->last_byte;
            if (data[*consumed - 1] == '\n' && before != '\r')
                return fail(hp, hp->kind == MG_HTTP_REQUEST ? 400 : 502,
                            "bare LF ending the chunked body"),
                       MG_EPROTO;
        }
    } else {
        return map_error(hp, err);
    }
    return 0;
}

int mg_http_parser_finish(struct mg_http_parser *hp)
{
    if (hp->error_status)
        return MG_EPROTO;
    if (hp->paused || !hp->msg_started)
        return 0; /* EOF between messages is a clean end */
    llhttp_errno_t err = llhttp_finish(&hp->ll);
    if (err == HPE_OK || err == HPE_PAUSED)
        return 0;
    return map_error(hp, err);
}

void mg_http_parser_resume(struct mg_http_parser *hp)
{
    if (hp->paused) {
        hp->paused = false;
        llhttp_resume(&hp->ll);
    }
    scan_reset(hp);
}

bool mg_http_parser_in_message(const struct mg_http_parser *hp)
{
    return hp->msg_started;
}

const struct mg_http_header *mg_http_head_find(const struct mg_http_head *h, const char *name)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (mg_str_ieq(h->headers[i].name, h->headers[i].name_len, name))
            return &h->headers[i];
    return NULL;
}

size_t mg_http_head_count(const struct mg_http_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        if (mg_str_ieq(h->headers[i].name, h->headers[i].name_len, name))
            n++;
    return n;
}

bool mg_http_list_has(const char *value, size_t len, const char *token)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',' && value[i] != ';')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end > start && mg_str_ieq(value + start, end - start, token))
            return true;
        while (i < len && value[i] != ',')
            i++;
    }
    return false;
}
