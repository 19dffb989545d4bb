/* llhttp glue; see parser.h. llhttp is built in strict mode with its lenient
 * flags off, which refuses most request-smuggling shapes (CL+TE, duplicate
 * Content-Length, bad chunk sizes). What llhttp 8 still lets through in a
 * head — obs-fold, bare LF, a head larger than the limit in a single read —
 * is caught by a small scanner over the raw head bytes that runs before
 * llhttp sees them, with its state carried across reads. Trailer fields are
 * ignored: bodies are re-framed, so trailers are never forwarded. */
#include "http/parser.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define HP(ll) ((struct mg_http_parser *)(ll)->data)

/* The head and scratch blocks (a few KiB) are needed only while a head is
 * parsed and handled; a connection gives them back afterwards so idle and
 * streaming connections stay small. A few spares of each per thread spare
 * the allocator the round trip on every keep-alive request: a proxied
 * request holds two heads at once (the caller's and the upstream's), a
 * thread has as many requests in flight as it has busy connections, and a
 * block this size that goes back to malloc makes the next one consolidate
 * its fast bins (bench/RESULTS.md). At most SPARES of each kind (about
 * 300 KiB in all) stay cached per thread. */
#define SPARES 32

struct spares {
    void *block[SPARES];
    size_t n;
};

static _Thread_local struct spares spare_scratch, spare_head, spare_store;

/* The store (start line and header bytes) starts as one block this size:
 * most heads fit, so a head costs no allocation and no growing copies. */
#define STORE_BLOCK 2048

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
    spares_fini(&spare_store);
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
    if (hp->store.data == NULL && hp->store.max >= STORE_BLOCK) {
        hp->store.data = spare_get(&spare_store, STORE_BLOCK);
        hp->store.cap = STORE_BLOCK;
        hp->store.len = 0;
    }
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
    h->indexed = true;
    for (size_t i = 0; i < hp->n_headers; i++) {
        struct mg_http_header *x = &h->headers[i];
        x->name = base + hp->scratch->name_off[i];
        x->name_len = hp->scratch->name_len[i];
        x->value = base + hp->scratch->value_off[i];
        x->value_len = hp->scratch->value_len[i];
        enum mg_hdr id = mg_http_hdr_id(x->name, x->name_len);
        x->id = (uint8_t)id;
        if (id != MG_HDR_OTHER) {
            if (h->count[id]++ == 0)
                h->first[id] = (uint8_t)(i + 1);
        }
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
        if (h->count[MG_HDR_TRANSFER_ENCODING] > 1)
            return fail(hp, 400, "more than one Transfer-Encoding header");
        const struct mg_http_header *te = mg_http_head_get(h, MG_HDR_TRANSFER_ENCODING);
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
    if (hp->store.cap == STORE_BLOCK) {
        spare_put(&spare_store, hp->store.data);
        hp->store.data = NULL;
        hp->store.len = hp->store.cap = 0;
    }
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
/* The index of the first CR or LF in data[i..n), or n: 16 bytes at a
 * time where SSE2 is there (x86-64 always has it). */
static size_t line_end(const char *data, size_t i, size_t n)
{
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(data + i));
        unsigned bits =
            (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (bits)
            return i + (size_t)__builtin_ctz(bits);
        i += 16;
    }
#endif
    while (i < n && data[i] != '\r' && data[i] != '\n')
        i++;
    return i;
}

static int scan_head(struct mg_http_parser *hp, const char *data, size_t len)
{
    int st = hp->kind == MG_HTTP_REQUEST ? 400 : 502;
    /* Only the raw bytes up to the head's limit are looked at: past it the
     * head is too large whatever they are. */
    size_t room = hp->max_head - MG_MIN(hp->head_bytes, hp->max_head);
    size_t n = MG_MIN(len, room);
    bool after_cr = hp->scan_after_cr, after_lf = hp->scan_after_lf;
    size_t line_len = hp->scan_line_len;
    size_t i = 0;
    while (i < n) {
        char c = data[i];
        if (after_cr) {
            if (c != '\n')
                return fail(hp, st, "CR not followed by LF");
            after_cr = false;
            i++;
            if (line_len == 0 && hp->scan_seen_line) {
                hp->scan_done = true; /* the blank line: the head ends here */
                break;
            }
            if (line_len > 0) {
                hp->scan_seen_line = true;
                after_lf = true;
            }
            line_len = 0;
            continue;
        }
        if (c == '\r') {
            after_cr = true;
            i++;
            continue;
        }
        if (c == '\n')
            return fail(hp, st, "bare LF in the header section");
        if (after_lf && (c == ' ' || c == '\t'))
            return fail(hp, st, "obsolete line folding");
        after_lf = false;
        /* The rest of the line up to its CR or LF, in one go. */
        size_t j = line_end(data, i + 1, n);
        line_len += j - i;
        i = j;
    }
    hp->head_bytes += i;
    hp->scan_after_cr = after_cr;
    hp->scan_after_lf = after_lf;
    hp->scan_line_len = line_len;
    if (!hp->scan_done && i < len)
        return fail(hp, hp->kind == MG_HTTP_REQUEST ? 431 : 502, "header section too large");
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

/* --- known header names ---------------------------------------------------------------- */

_Static_assert(MG_HTTP_MAX_HEADERS < 256, "first[] and count[] hold header indexes in a byte");
_Static_assert(MG_HDR__COUNT < 256, "a header's id is a byte");

#define HN(id, lit) [id] = {lit, sizeof(lit) - 1}
static const struct {
    const char *s;
    size_t len;
} hdr_names[MG_HDR__COUNT] = {
    HN(MG_HDR_ACCEPT, "accept"),
    HN(MG_HDR_AUTHORIZATION, "authorization"),
    HN(MG_HDR_CONNECTION, "connection"),
    HN(MG_HDR_CONTENT_LENGTH, "content-length"),
    HN(MG_HDR_CONTENT_TYPE, "content-type"),
    HN(MG_HDR_COOKIE, "cookie"),
    HN(MG_HDR_EXPECT, "expect"),
    HN(MG_HDR_FORWARDED, "forwarded"),
    HN(MG_HDR_HOST, "host"),
    HN(MG_HDR_HTTP2_SETTINGS, "http2-settings"),
    HN(MG_HDR_KEEP_ALIVE, "keep-alive"),
    HN(MG_HDR_LAST_EVENT_ID, "last-event-id"),
    HN(MG_HDR_MCP_METHOD, "mcp-method"),
    HN(MG_HDR_MCP_NAME, "mcp-name"),
    HN(MG_HDR_MCP_PROTOCOL_VERSION, "mcp-protocol-version"),
    HN(MG_HDR_MCP_SESSION_ID, "mcp-session-id"),
    HN(MG_HDR_ORIGIN, "origin"),
    HN(MG_HDR_PROXY_AUTHENTICATE, "proxy-authenticate"),
    HN(MG_HDR_PROXY_AUTHORIZATION, "proxy-authorization"),
    HN(MG_HDR_PROXY_CONNECTION, "proxy-connection"),
    HN(MG_HDR_SET_COOKIE, "set-cookie"),
    HN(MG_HDR_TE, "te"),
    HN(MG_HDR_TRAILER, "trailer"),
    HN(MG_HDR_TRANSFER_ENCODING, "transfer-encoding"),
    HN(MG_HDR_UPGRADE, "upgrade"),
    HN(MG_HDR_X_FORWARDED_FOR, "x-forwarded-for"),
    HN(MG_HDR_X_FORWARDED_HOST, "x-forwarded-host"),
    HN(MG_HDR_X_FORWARDED_PORT, "x-forwarded-port"),
    HN(MG_HDR_X_FORWARDED_PROTO, "x-forwarded-proto"),
    HN(MG_HDR_X_MCPGATE_HUB_KEY, "x-mcpgate-hub-key"),
    HN(MG_HDR_X_MCPGATE_ROUTE, "x-mcpgate-route"),
    HN(MG_HDR_X_REAL_IP, "x-real-ip"),
};
#undef HN

/* The ids of the known names of each length, 0-terminated; the longest
 * known name has 20 bytes. test_http_parser checks every name maps back to
 * its id, so a name left out here is caught. */
#define HDR_MAX_LEN 20
static const uint8_t hdr_by_len[HDR_MAX_LEN + 1][5] = {
    [2] = {MG_HDR_TE},
    [4] = {MG_HDR_HOST},
    [6] = {MG_HDR_ACCEPT, MG_HDR_COOKIE, MG_HDR_EXPECT, MG_HDR_ORIGIN},
    [7] = {MG_HDR_TRAILER, MG_HDR_UPGRADE},
    [8] = {MG_HDR_MCP_NAME},
    [9] = {MG_HDR_FORWARDED, MG_HDR_X_REAL_IP},
    [10] = {MG_HDR_CONNECTION, MG_HDR_KEEP_ALIVE, MG_HDR_MCP_METHOD, MG_HDR_SET_COOKIE},
    [12] = {MG_HDR_CONTENT_TYPE},
    [13] = {MG_HDR_AUTHORIZATION, MG_HDR_LAST_EVENT_ID},
    [14] = {MG_HDR_CONTENT_LENGTH, MG_HDR_HTTP2_SETTINGS, MG_HDR_MCP_SESSION_ID},
    [15] = {MG_HDR_X_FORWARDED_FOR, MG_HDR_X_MCPGATE_ROUTE},
    [16] = {MG_HDR_PROXY_CONNECTION, MG_HDR_X_FORWARDED_HOST, MG_HDR_X_FORWARDED_PORT},
    [17] = {MG_HDR_TRANSFER_ENCODING, MG_HDR_X_FORWARDED_PROTO, MG_HDR_X_MCPGATE_HUB_KEY},
    [18] = {MG_HDR_PROXY_AUTHENTICATE},
    [19] = {MG_HDR_PROXY_AUTHORIZATION},
    [20] = {MG_HDR_MCP_PROTOCOL_VERSION},
};

enum mg_hdr mg_http_hdr_id(const char *name, size_t len)
{
    if (len > HDR_MAX_LEN)
        return MG_HDR_OTHER;
    unsigned char c0 = mg_ascii_lower((unsigned char)name[0]);
    for (const uint8_t *id = hdr_by_len[len]; *id; id++) {
        const char *k = hdr_names[*id].s;
        if ((unsigned char)k[0] != c0)
            continue;
        size_t i = 1;
        while (i < len && mg_ascii_lower((unsigned char)name[i]) == (unsigned char)k[i])
            i++;
        if (i == len)
            return (enum mg_hdr) * id;
    }
    return MG_HDR_OTHER;
}

const struct mg_http_header *mg_http_head_get(const struct mg_http_head *h, enum mg_hdr id)
{
    if (h->indexed)
        return h->first[id] ? &h->headers[h->first[id] - 1] : NULL;
    for (size_t i = 0; i < h->n_headers; i++)
        if (mg_http_hdr_id(h->headers[i].name, h->headers[i].name_len) == id)
            return &h->headers[i];
    return NULL;
}

size_t mg_http_head_num(const struct mg_http_head *h, enum mg_hdr id)
{
    if (h->indexed)
        return h->count[id];
    size_t n = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        n += mg_http_hdr_id(h->headers[i].name, h->headers[i].name_len) == id;
    return n;
}

const struct mg_http_header *mg_http_head_find(const struct mg_http_head *h, const char *name)
{
    size_t len = strlen(name);
    enum mg_hdr id = mg_http_hdr_id(name, len);
    if (id != MG_HDR_OTHER)
        return mg_http_head_get(h, id);
    for (size_t i = 0; i < h->n_headers; i++)
        if (mg_str_ieq(h->headers[i].name, h->headers[i].name_len, name))
            return &h->headers[i];
    return NULL;
}

size_t mg_http_head_count(const struct mg_http_head *h, const char *name)
{
    enum mg_hdr id = mg_http_hdr_id(name, strlen(name));
    if (id != MG_HDR_OTHER)
        return mg_http_head_num(h, id);
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
