/* Unit tests for the llhttp glue (src/http/parser): requests and responses fed
 * whole, byte by byte, and split at every split point (and at every pair of
 * split points for short inputs), each way giving the same transcript of
 * callbacks, pause offsets and errors; the head limits (431), the body limits
 * (413), CONNECT (405), the request-smuggling shapes RFC 9112 says a server
 * must refuse (400), response framing (content-length, chunked,
 * close-delimited, 1xx, 204/304, truncation at EOF), and the header helpers.
 * */
#include "http/parser.h"
#include "tap.h"

#include <sys/wait.h>
#include <unistd.h>

#define CRLF "\r\n"

/* --- transcript recorder ------------------------------------------------------------------ */

struct rec {
    struct mg_buf log;  /* the transcript */
    struct mg_buf body; /* the current message's body */
    struct mg_buf dump; /* the head as seen by on_head, to compare at on_complete */
    const struct mg_http_head *head;
    enum mg_http_kind kind;
    int head_rc;
};

static void esc(struct mg_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '\\')
            mg_buf_appendf(b, "\\x%02x", c);
        else
            mg_buf_append(b, &s[i], 1);
    }
}

static void dump_head(struct mg_buf *b, enum mg_http_kind kind, const struct mg_http_head *h)
{
    if (kind == MG_HTTP_REQUEST) {
        mg_buf_appendf(b, "HEAD %s ", llhttp_method_name((llhttp_method_t)h->method));
        esc(b, h->url, h->url_len);
    } else {
        mg_buf_appendf(b, "HEAD %d", h->status);
    }
    mg_buf_appendf(b, " HTTP/%d.%d ka=%d ch=%d cl=", h->http_major, h->http_minor,
                   h->keep_alive ? 1 : 0, h->chunked ? 1 : 0);
    if (h->has_content_length)
        mg_buf_appendf(b, "%llu\n", (unsigned long long)h->content_length);
    else
        mg_buf_appends(b, "none\n");
    for (size_t i = 0; i < h->n_headers; i++) {
        mg_buf_appends(b, "  [");
        esc(b, h->headers[i].name, h->headers[i].name_len);
        mg_buf_appends(b, "]=[");
        esc(b, h->headers[i].value, h->headers[i].value_len);
        mg_buf_appends(b, "]\n");
    }
}

/* Heads whose header index (ids, first, count) disagrees with a search by
 * name; checked once at the end. */
static size_t index_bad, index_checked;

static void check_index(const struct mg_http_head *h)
{
    index_checked++;
    if (!h->indexed) {
        index_bad++;
        return;
    }
    for (int id = 1; id < MG_HDR__COUNT; id++) {
        size_t first = 0, n = 0;
        for (size_t i = 0; i < h->n_headers; i++) {
            if (mg_http_hdr_id(h->headers[i].name, h->headers[i].name_len) != (enum mg_hdr)id)
                continue;
            if (n++ == 0)
                first = i + 1;
        }
        if (h->first[id] != first || h->count[id] != n)
            index_bad++;
    }
    for (size_t i = 0; i < h->n_headers; i++)
        if (h->headers[i].id != mg_http_hdr_id(h->headers[i].name, h->headers[i].name_len))
            index_bad++;
}

static int rec_head(void *ud, const struct mg_http_head *h)
{
    struct rec *r = ud;
    check_index(h);
    r->head = h;
    mg_buf_reset(&r->dump);
    dump_head(&r->dump, r->kind, h);
    mg_buf_append(&r->log, r->dump.data, r->dump.len);
    mg_buf_reset(&r->body);
    return r->head_rc;
}

static int rec_body(void *ud, const char *data, size_t len)
{
    struct rec *r = ud;
    mg_buf_append(&r->body, data, len);
    return 0;
}

static int rec_complete(void *ud)
{
    struct rec *r = ud;
    if (r->head) {
        /* The head must still be intact (nothing after it may move or change
         * the bytes it points into). */
        struct mg_buf now;
        mg_buf_init(&now, 1 << 20);
        dump_head(&now, r->kind, r->head);
        if (now.len != r->dump.len || memcmp(now.data, r->dump.data, now.len) != 0)
            mg_buf_appends(&r->log, "HEAD CHANGED\n");
        mg_buf_fini(&now);
    }
    mg_buf_appends(&r->log, "BODY [");
    esc(&r->log, r->body.data ? r->body.data : "", r->body.len);
    mg_buf_appends(&r->log, "]\nDONE\n");
    mg_buf_reset(&r->body);
    r->head = NULL;
    return 0;
}

static const struct mg_http_parser_cbs rec_cbs = {
    .on_head = rec_head,
    .on_body = rec_body,
    .on_complete = rec_complete,
};

struct opts {
    enum mg_http_kind kind;
    size_t max_head;
    uint64_t max_body;
    int head_rc;
    bool finish; /* call mg_http_parser_finish after the last byte */
};

static const struct opts REQ = {MG_HTTP_REQUEST, 8192, 1 << 20, 0, false};
static const struct opts RESP = {MG_HTTP_RESPONSE, 8192, 1 << 20, 0, false};
static const struct opts RESP_EOF = {MG_HTTP_RESPONSE, 8192, 1 << 20, 0, true};

/* Feeds in[0..len) in pieces ending at cuts[0..n_cuts) and len; resumes after
 * every complete message. Returns the transcript (caller frees). */
static char *run_cuts(const struct opts *o, const char *in, size_t len, const size_t *cuts,
                      size_t n_cuts)
{
    struct rec r = {.kind = o->kind, .head_rc = o->head_rc};
    struct mg_http_parser hp;
    mg_buf_init(&r.log, 1 << 20);
    mg_buf_init(&r.body, 1 << 22);
    mg_buf_init(&r.dump, 1 << 20);
    mg_http_parser_init(&hp, o->kind, o->max_head, o->max_body, &rec_cbs, &r);
    size_t start = 0;
    bool failed = false;
    for (size_t k = 0; k <= n_cuts && !failed; k++) {
        size_t end = k < n_cuts ? cuts[k] : len;
        size_t p = start;
        while (p < end) {
            size_t used = 0;
            int rc = mg_http_parser_execute(&hp, in + p, end - p, &used);
            if (rc < 0) {
                mg_buf_appendf(&r.log, "ERROR %d\n", hp.error_status);
                failed = true;
                break;
            }
            p += used;
            if (hp.paused) {
                mg_buf_appendf(&r.log, "PAUSE %zu\n", p);
                mg_http_parser_resume(&hp);
            } else if (used == 0) {
                mg_buf_appends(&r.log, "STUCK\n");
                failed = true;
                break;
            }
        }
        start = end;
    }
    if (o->finish && !failed) {
        int rc = mg_http_parser_finish(&hp);
        mg_buf_appendf(&r.log, "FINISH %d %d\n", rc, hp.error_status);
    }
    mg_http_parser_fini(&hp);
    mg_buf_fini(&r.body);
    mg_buf_fini(&r.dump);
    return mg_buf_steal(&r.log, NULL);
}

static char *run_whole(const struct opts *o, const char *in, size_t len)
{
    return run_cuts(o, in, len, NULL, 0);
}

static char *run_bytes(const struct opts *o, const char *in, size_t len)
{
    size_t *cuts = mg_xcalloc(len ? len : 1, sizeof *cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    char *t = run_cuts(o, in, len, cuts, len ? len - 1 : 0);
    free(cuts);
    return t;
}

/* Every split point (and every pair of split points when the input is short)
 * gives the same transcript as the whole input. */
static void check_splits(const struct opts *o, const char *in, size_t len, const char *whole,
                         const char *name)
{
    size_t bad_i = 0, bad_j = 0;
    char *bad = NULL;
    for (size_t i = 1; i < len && bad == NULL; i++) {
        size_t cuts[1] = {i};
        char *t = run_cuts(o, in, len, cuts, 1);
        if (strcmp(t, whole) != 0) {
            bad = t;
            bad_i = i;
        } else {
            free(t);
        }
    }
    TAP_OK(bad == NULL, "%s: every split point gives the whole-input transcript", name);
    if (bad)
        printf("#   split at %zu gives:\n%s", bad_i, bad);
    free(bad);
    bad = NULL;
    if (len > 160)
        return;
    for (size_t i = 1; i < len && bad == NULL; i++) {
        for (size_t j = i + 1; j < len && bad == NULL; j++) {
            size_t cuts[2] = {i, j};
            char *t = run_cuts(o, in, len, cuts, 2);
            if (strcmp(t, whole) != 0) {
                bad = t;
                bad_i = i;
                bad_j = j;
            } else {
                free(t);
            }
        }
    }
    TAP_OK(bad == NULL, "%s: every pair of split points gives the same transcript", name);
    if (bad)
        printf("#   split at %zu,%zu gives:\n%s", bad_i, bad_j, bad);
    free(bad);
}

/* The input gives exactly `want` whole and byte by byte, and every split
 * gives what the whole input gives. */
static void expect_o(const struct opts *o, const char *name, const char *in, size_t len,
                     const char *want)
{
    char *t = run_whole(o, in, len);
    TAP_IS_STR(t, want, "%s: whole", name);
    char *b = run_bytes(o, in, len);
    TAP_IS_STR(b, want, "%s: byte by byte", name);
    free(b);
    check_splits(o, in, len, t, name);
    free(t);
}

#define EXPECT(o, name, in, want) expect_o(o, name, in, sizeof(in) - 1, want)

/* The input is refused with `status` (no message completes), the same way
 * whole, byte by byte and at every split. */
static void reject_any(const struct opts *o, const char *name, const char *in, size_t len,
                       int status, bool allow_done)
{
    char want_tail[32];
    snprintf(want_tail, sizeof want_tail, "ERROR %d\n", status);
    char *t = run_whole(o, in, len);
    size_t tl = strlen(t), wl = strlen(want_tail);
    bool ok = (allow_done || strstr(t, "DONE") == NULL) && tl >= wl &&
              strcmp(t + tl - wl, want_tail) == 0;
    TAP_OK(ok, "%s: refused with %d", name, status);
    if (!ok)
        printf("#   transcript:\n%s", t);
    char *b = run_bytes(o, in, len);
    TAP_IS_STR(b, t, "%s: byte by byte gives the same", name);
    free(b);
    check_splits(o, in, len, t, name);
    free(t);
}

static void reject_o(const struct opts *o, const char *name, const char *in, size_t len, int status)
{
    reject_any(o, name, in, len, status, false);
}

#define REJECT(o, name, in, status) reject_o(o, name, in, sizeof(in) - 1, status)
/* Refused once the message has been parsed (the check needs the final bytes):
 * the parser still returns an error, so the server never dispatches it. */
#define REJECT_LATE(o, name, in, status) reject_any(o, name, in, sizeof(in) - 1, status, true)

/* --- requests ---------------------------------------------------------------------------- */

static void test_requests(void)
{
    EXPECT(&REQ, "GET", "GET /a?b=1 HTTP/1.1" CRLF "Host: x" CRLF CRLF,
           "HEAD GET /a?b=1 HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "BODY []\nDONE\nPAUSE 32\n");

    EXPECT(&REQ, "POST with Content-Length",
           "POST /mcp HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 5" CRLF CRLF "hello",
           "HEAD POST /mcp HTTP/1.1 ka=1 ch=0 cl=5\n"
           "  [Host]=[x]\n"
           "  [Content-Length]=[5]\n"
           "BODY [hello]\nDONE\nPAUSE 55\n");

    EXPECT(&REQ, "POST Content-Length: 0",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 0" CRLF CRLF,
           "HEAD POST / HTTP/1.1 ka=1 ch=0 cl=0\n"
           "  [Host]=[x]\n"
           "  [Content-Length]=[0]\n"
           "BODY []\nDONE\nPAUSE 47\n");

    EXPECT(&REQ, "chunked, several chunks, extensions",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF
           "3;foo=bar" CRLF "abc" CRLF "2;x=\"q;r\"" CRLF "de" CRLF "A" CRLF "0123456789" CRLF
           "0" CRLF CRLF,
           "HEAD POST / HTTP/1.1 ka=1 ch=1 cl=none\n"
           "  [Host]=[x]\n"
           "  [Transfer-Encoding]=[chunked]\n"
           "BODY [abcde0123456789]\nDONE\nPAUSE 107\n");

    EXPECT(&REQ, "chunked, upper-case coding and leading zeros in the size",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: CHUNKED" CRLF CRLF "003" CRLF
           "abc" CRLF "0" CRLF CRLF,
           "HEAD POST / HTTP/1.1 ka=1 ch=1 cl=none\n"
           "  [Host]=[x]\n"
           "  [Transfer-Encoding]=[CHUNKED]\n"
           "BODY [abc]\nDONE\nPAUSE 71\n");

    EXPECT(&REQ, "HTTP/1.0 closes by default", "GET / HTTP/1.0" CRLF "Host: x" CRLF CRLF,
           "HEAD GET / HTTP/1.0 ka=0 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "BODY []\nDONE\nPAUSE 27\n");

    EXPECT(&REQ, "HTTP/1.0 keep-alive",
           "GET / HTTP/1.0" CRLF "Host: x" CRLF "Connection: keep-alive" CRLF CRLF,
           "HEAD GET / HTTP/1.0 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "  [Connection]=[keep-alive]\n"
           "BODY []\nDONE\nPAUSE 51\n");

    EXPECT(&REQ, "HTTP/1.1 Connection: close",
           "GET / HTTP/1.1" CRLF "Host: x" CRLF "Connection: close" CRLF CRLF,
           "HEAD GET / HTTP/1.1 ka=0 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "  [Connection]=[close]\n"
           "BODY []\nDONE\nPAUSE 46\n");

    EXPECT(&REQ, "header values lose leading and trailing OWS, inner kept",
           "GET / HTTP/1.1" CRLF "Host:x" CRLF "X-A: \t a \t b \t " CRLF "X-B:\tc" CRLF CRLF,
           "HEAD GET / HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "  [X-A]=[a \\x09 b]\n"
           "  [X-B]=[c]\n"
           "BODY []\nDONE\nPAUSE 51\n");

    EXPECT(&REQ, "empty header values",
           "GET / HTTP/1.1" CRLF "Host: x" CRLF "X-E:" CRLF "X-F:   " CRLF "Y: z" CRLF CRLF,
           "HEAD GET / HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "  [X-E]=[]\n"
           "  [X-F]=[]\n"
           "  [Y]=[z]\n"
           "BODY []\nDONE\nPAUSE 48\n");

    EXPECT(&REQ, "UTF-8 in a header value passes through",
           "GET / HTTP/1.1" CRLF "Host: x" CRLF "X: \xc3\xa9" CRLF CRLF,
           "HEAD GET / HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "  [X]=[\\xc3\\xa9]\n"
           "BODY []\nDONE\nPAUSE 34\n");

    EXPECT(&REQ, "two pipelined requests, one after the other",
           "GET /1 HTTP/1.1" CRLF "Host: x" CRLF CRLF "POST /2 HTTP/1.1" CRLF "Host: y" CRLF
           "Content-Length: 2" CRLF CRLF "hi",
           "HEAD GET /1 HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "BODY []\nDONE\nPAUSE 28\n"
           "HEAD POST /2 HTTP/1.1 ka=1 ch=0 cl=2\n"
           "  [Host]=[y]\n"
           "  [Content-Length]=[2]\n"
           "BODY [hi]\nDONE\nPAUSE 78\n");

    EXPECT(&REQ, "pipelined chunked then GET",
           "POST /c HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "1" CRLF
           "z" CRLF "0" CRLF CRLF "GET /g HTTP/1.1" CRLF "Host: x" CRLF CRLF,
           "HEAD POST /c HTTP/1.1 ka=1 ch=1 cl=none\n"
           "  [Host]=[x]\n"
           "  [Transfer-Encoding]=[chunked]\n"
           "BODY [z]\nDONE\nPAUSE 68\n"
           "HEAD GET /g HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "BODY []\nDONE\nPAUSE 96\n");

    EXPECT(&REQ, "an Upgrade offer is ignored and the next request parsed",
           "GET / HTTP/1.1" CRLF "Host: x" CRLF "Connection: upgrade" CRLF
           "Upgrade: websocket" CRLF CRLF "GET /2 HTTP/1.1" CRLF "Host: x" CRLF CRLF,
           "HEAD GET / HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "  [Connection]=[upgrade]\n"
           "  [Upgrade]=[websocket]\n"
           "BODY []\nDONE\nPAUSE 68\n"
           "HEAD GET /2 HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "BODY []\nDONE\nPAUSE 96\n");

    /* Recorded, not endorsed: the parser passes these through and the
     * proxy refuses a target that is not origin-form. */
    EXPECT(&REQ, "absform: absolute-form target is passed through (proxy refuses it)",
           "GET http://h.example/a HTTP/1.1" CRLF "Host: x" CRLF CRLF,
           "HEAD GET http://h.example/a HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "BODY []\nDONE\nPAUSE 44\n");
    EXPECT(&REQ, "asterisk-form OPTIONS is passed through",
           "OPTIONS * HTTP/1.1" CRLF "Host: x" CRLF CRLF,
           "HEAD OPTIONS * HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "BODY []\nDONE\nPAUSE 31\n");
    EXPECT(&REQ, "leading empty lines before a request are skipped (RFC 9112 §2.2)",
           CRLF CRLF "GET / HTTP/1.1" CRLF "Host: x" CRLF CRLF,
           "HEAD GET / HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Host]=[x]\n"
           "BODY []\nDONE\nPAUSE 31\n");
}

static void test_limits(void)
{
    struct opts o = REQ;
    struct mg_buf b;
    mg_buf_init(&b, 1 << 20);

    /* 128 headers fit, the 129th is refused with 431. */
    mg_buf_appends(&b, "GET / HTTP/1.1" CRLF);
    for (int i = 0; i < MG_HTTP_MAX_HEADERS; i++)
        mg_buf_appendf(&b, "X-%d: v" CRLF, i);
    mg_buf_appends(&b, CRLF);
    char *t = run_whole(&o, b.data, b.len);
    TAP_OK(strstr(t, "DONE") != NULL && strstr(t, "[X-127]=[v]") != NULL, "%d headers are accepted",
           MG_HTTP_MAX_HEADERS);
    char *u = run_bytes(&o, b.data, b.len);
    TAP_IS_STR(u, t, "%d headers byte by byte", MG_HTTP_MAX_HEADERS);
    free(t);
    free(u);
    b.len -= 2;
    mg_buf_appends(&b, "X-last: v" CRLF CRLF);
    reject_o(&o, "129 headers", b.data, b.len, 431);

    /* Head over max_head: long URL, long value, many names. */
    o.max_head = 256;
    mg_buf_reset(&b);
    mg_buf_appends(&b, "GET /");
    for (int i = 0; i < 300; i++)
        mg_buf_appends(&b, "a");
    mg_buf_appends(&b, " HTTP/1.1" CRLF "Host: x" CRLF CRLF);
    reject_o(&o, "URL over max_head", b.data, b.len, 431);
    mg_buf_reset(&b);
    mg_buf_appends(&b, "GET / HTTP/1.1" CRLF "Host: x" CRLF "X: ");
    for (int i = 0; i < 300; i++)
        mg_buf_appends(&b, "v");
    mg_buf_appends(&b, CRLF CRLF);
    reject_o(&o, "header value over max_head", b.data, b.len, 431);
    mg_buf_reset(&b);
    mg_buf_appends(&b, "GET / HTTP/1.1" CRLF "Host: x" CRLF "X: v");
    for (int i = 0; i < 300; i++)
        mg_buf_appends(&b, " ");
    mg_buf_appends(&b, CRLF CRLF);
    reject_o(&o, "trailing OWS counts towards max_head", b.data, b.len, 431);

    /* A head just under the limit passes. */
    mg_buf_reset(&b);
    mg_buf_appends(&b, "GET /");
    for (int i = 0; i < 200; i++)
        mg_buf_appends(&b, "a");
    mg_buf_appends(&b, " HTTP/1.1" CRLF "Host: x" CRLF CRLF);
    t = run_whole(&o, b.data, b.len);
    TAP_OK(strstr(t, "DONE") != NULL, "a head under max_head is accepted");
    free(t);

    /* parser.c: "The head limit counts raw bytes too ... so a flood of
     * whitespace or empty lines is bounded." Leading OWS is not stored, so
     * only the raw count can catch it; the verdict must not depend on how
     * the bytes arrive. */
    mg_buf_reset(&b);
    mg_buf_appends(&b, "GET / HTTP/1.1" CRLF "Host: x" CRLF "X:");
    for (int i = 0; i < 4000; i++)
        mg_buf_appends(&b, " ");
    mg_buf_appends(&b, "v" CRLF CRLF);
    t = run_bytes(&o, b.data, b.len);
    TAP_IS_STR(t, "ERROR 431\n", "raw head bytes over the limit, byte by byte: 431");
    free(t);
    t = run_whole(&o, b.data, b.len);
    TAP_IS_STR(t, "ERROR 431\n",
               "raw head bytes over the limit, in one read: 431 too (parser.c:258)");
    free(t);

    /* Body limits. */
    o = REQ;
    o.max_body = 10;
    REJECT(&o, "Content-Length over max_body (up-front)",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 11" CRLF CRLF "0123456789A", 413);
    {
        static const char head[] =
            "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 11" CRLF CRLF;
        t = run_whole(&o, head, sizeof head - 1);
    }
    TAP_IS_STR(t, "ERROR 413\n", "Content-Length over max_body: 413 before any body byte");
    free(t);
    EXPECT(&o, "Content-Length equal to max_body",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 10" CRLF CRLF "0123456789",
           "HEAD POST / HTTP/1.1 ka=1 ch=0 cl=10\n"
           "  [Host]=[x]\n"
           "  [Content-Length]=[10]\n"
           "BODY [0123456789]\nDONE\nPAUSE 58\n");
    REJECT(&o, "chunked body over max_body",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "5" CRLF
           "01234" CRLF "6" CRLF "56789A" CRLF "0" CRLF CRLF,
           413);
    EXPECT(&o, "chunked body equal to max_body",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "5" CRLF
           "01234" CRLF "5" CRLF "56789" CRLF "0" CRLF CRLF,
           "HEAD POST / HTTP/1.1 ka=1 ch=1 cl=none\n"
           "  [Host]=[x]\n"
           "  [Transfer-Encoding]=[chunked]\n"
           "BODY [0123456789]\nDONE\nPAUSE 81\n");
    mg_buf_fini(&b);
}

static void test_smuggling(void)
{
    const struct opts *o = &REQ;
    REJECT(o, "CL then TE: chunked",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 3" CRLF
           "Transfer-Encoding: chunked" CRLF CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "TE: chunked then CL",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF
           "Content-Length: 3" CRLF CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "two different Content-Length headers",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 3" CRLF
           "Content-Length: 4" CRLF CRLF "abcd",
           400);
    REJECT(o, "two equal Content-Length headers",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 3" CRLF
           "Content-Length: 3" CRLF CRLF "abc",
           400);
    REJECT(o, "Content-Length: 1,2",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 1,2" CRLF CRLF "ab", 400);
    REJECT(o, "Content-Length: -1",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: -1" CRLF CRLF "ab", 400);
    REJECT(o, "Content-Length: +3",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: +3" CRLF CRLF "abc", 400);
    REJECT(o, "Content-Length: abc",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: abc" CRLF CRLF "ab", 400);
    REJECT(o, "Content-Length: 3 3",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 3 3" CRLF CRLF "abc", 400);
    REJECT(o, "empty Content-Length",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length:" CRLF CRLF, 400);
    REJECT(o, "Content-Length overflow",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF
           "Content-Length: 99999999999999999999999" CRLF CRLF,
           400);
    REJECT(o, "TE: chunked, identity",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked, identity" CRLF CRLF
           "0" CRLF CRLF,
           400);
    /* RFC 9112 §6.3: chunked not final in a request is a MUST-400 (501 is for
     * an unknown coding before a final chunked). */
    REJECT(o, "TE: xchunked is 400, not 501 (parser.c:148)",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: xchunked" CRLF CRLF
           "0" CRLF CRLF,
           400);
    REJECT(o, "TE: gzip (chunked not last) is 400, not 501 (parser.c:148)",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: gzip" CRLF CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "TE: gzip, chunked (unknown coding before chunked) is 501",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: gzip, chunked" CRLF CRLF
           "0" CRLF CRLF,
           501);
    REJECT(o, "TE: chunked, chunked",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked, chunked" CRLF CRLF
           "0" CRLF CRLF,
           400);
    REJECT(o, "two TE headers, chunked first",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF
           "Transfer-Encoding: identity" CRLF CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "TE with a vertical tab before chunked",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: \x0b"
           "chunked" CRLF CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "chunk size zz",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "zz" CRLF
           "abc" CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "chunk size 0x3",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "0x3" CRLF
           "abc" CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "chunk size overflow ffffffffffffffffff",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF
           "ffffffffffffffffff" CRLF "abc" CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "chunk size with trailing space",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "3 " CRLF
           "abc" CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "missing CRLF after chunk data",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "3" CRLF
           "abcX" CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "bare LF after chunk data",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "3" CRLF
           "abc\n0" CRLF CRLF,
           400);
    REJECT(o, "bare LF after chunk size",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF
           "3\nabc\n0\n\n",
           400);
    REJECT(o, "bare LF after chunk extension",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF
           "3;a\nabc" CRLF "0" CRLF CRLF,
           400);
    REJECT_LATE(o, "bare LF ending the last chunk",
                "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF
                "3" CRLF "abc" CRLF "0" CRLF "\n",
                400);
    /* llhttp 8.1.0 folds these into the previous value (CVE-2024-27982, fixed
     * in llhttp 8.1.2 / 9.2.1): a Content-Length a front proxy sees is gone. */
    REJECT(o, "CVE-2024-27982: folded Content-Length, body parsed as a request",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "X: y" CRLF " Content-Length: 5" CRLF CRLF
           "GET /smuggled HTTP/1.1" CRLF "Host: x" CRLF CRLF,
           400);
    /* parser.c:77 refuses a fold only when both value spans arrive in one
     * execute call; split between reads (or with an empty first line) it
     * passes. */
    REJECT(o, "obs-fold (line starting with a space)",
           "GET / HTTP/1.1" CRLF "Host: x" CRLF "X-A: a" CRLF " b" CRLF CRLF, 400);
    REJECT(o, "obs-fold carrying Transfer-Encoding: chunked",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding:" CRLF " chunked" CRLF CRLF
           "3" CRLF "abc" CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "obs-fold carrying Content-Length",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length:" CRLF " 3" CRLF CRLF "abc", 400);
    REJECT(o, "obs-fold adding a second Content-Length value",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 3" CRLF " 4" CRLF CRLF "abcd",
           400);
    REJECT(o, "whitespace before the first header line", "GET / HTTP/1.1" CRLF " Host: x" CRLF CRLF,
           400);
    REJECT(o, "bare LF line endings throughout", "GET / HTTP/1.1\nHost: x\n\n", 400);
    REJECT(o, "bare LF ending a header line", "GET / HTTP/1.1" CRLF "Host: x\nX: y" CRLF CRLF, 400);
    REJECT(o, "bare LF ending the request line", "GET / HTTP/1.1\nHost: x" CRLF CRLF, 400);
    REJECT(o, "bare LF ending the header section", "GET / HTTP/1.1" CRLF "Host: x" CRLF "\n", 400);
    REJECT(o, "bare CR ending the request line", "GET / HTTP/1.1\rHost: x" CRLF CRLF, 400);
    REJECT(o, "CVE-2023-30589: CR in an empty value hides Transfer-Encoding",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "X-Abc: \rxTransfer-Encoding: chunked" CRLF CRLF
           "1" CRLF "A" CRLF "0" CRLF CRLF,
           400);
    /* Non-strict llhttp 8.1.0 takes CR plus any byte for CRLF in these places
     * (the CVE-2023-30589 class); LLHTTP_STRICT_MODE refuses them. */
    REJECT(o, "CR and another byte ending the header section (as CVE-2023-30589)",
           "GET / HTTP/1.1" CRLF "Host: x" CRLF "\rXGET /2 HTTP/1.1" CRLF "Host: x" CRLF CRLF, 400);
    REJECT(o, "CR without LF after a chunk size (as CVE-2023-30589)",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF
           "3\rXabc" CRLF "0" CRLF CRLF,
           400);
    REJECT(o, "CR without LF after chunk data (as CVE-2023-30589)",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "3" CRLF
           "abc\rX0" CRLF CRLF,
           400);
    {
        static const char nul[] = "GET / HTTP/1.1" CRLF "Host: x" CRLF "X: a\0b" CRLF CRLF;
        reject_o(o, "NUL in a header value", nul, sizeof nul - 1, 400);
    }
    REJECT(o, "CR in a header value", "GET / HTTP/1.1" CRLF "Host: x" CRLF "X: a\rb" CRLF CRLF,
           400);
    REJECT(o, "space before colon in a header name",
           "GET / HTTP/1.1" CRLF "Host: x" CRLF "X-A : b" CRLF CRLF, 400);
    REJECT(o, "space before colon in Transfer-Encoding",
           "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding : chunked" CRLF CRLF
           "0" CRLF CRLF,
           400);
    REJECT(o, "empty header name", "GET / HTTP/1.1" CRLF "Host: x" CRLF ": y" CRLF CRLF, 400);
    REJECT(o, "control byte in a header name",
           "GET / HTTP/1.1" CRLF "Host: x" CRLF "X\x01: y" CRLF CRLF, 400);
    REJECT(o, "invalid method GETT", "GETT / HTTP/1.1" CRLF "Host: x" CRLF CRLF, 400);
    REJECT(o, "lower-case method", "get / HTTP/1.1" CRLF "Host: x" CRLF CRLF, 400);
    REJECT(o, "tab after the method", "GET\t/ HTTP/1.1" CRLF "Host: x" CRLF CRLF, 400);
    REJECT(o, "space inside the target", "GET /a b HTTP/1.1" CRLF "Host: x" CRLF CRLF, 400);
    REJECT(o, "control byte in the target", "GET /a\x01 HTTP/1.1" CRLF "Host: x" CRLF CRLF, 400);
    REJECT(o, "CONNECT", "CONNECT h.example:443 HTTP/1.1" CRLF "Host: h.example:443" CRLF CRLF,
           405);
}

/* Chunked trailers: the trailer fields arrive after on_head; they must not
 * crash the parser, change the head or reach the body. Run in a child so a
 * crash is one failing test rather than the end of the run. */
static void test_trailers(void)
{
    static const char in[] =
        "POST / HTTP/1.1" CRLF "Host: x" CRLF "Transfer-Encoding: chunked" CRLF CRLF "3" CRLF
        "abc" CRLF "0" CRLF "X-T: 1" CRLF "X-U: 2" CRLF CRLF "GET /n HTTP/1.1" CRLF
        "Host: y" CRLF CRLF;
    static const char want[] = "HEAD POST / HTTP/1.1 ka=1 ch=1 cl=none\n"
                               "  [Host]=[x]\n"
                               "  [Transfer-Encoding]=[chunked]\n"
                               "BODY [abc]\nDONE\nPAUSE 85\n"
                               "HEAD GET /n HTTP/1.1 ka=1 ch=0 cl=none\n"
                               "  [Host]=[y]\n"
                               "BODY []\nDONE\nPAUSE 113\n";
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *t = run_whole(&REQ, in, sizeof in - 1);
        int ok = strcmp(t, want) == 0;
        if (!ok)
            printf("#   whole gives:\n%s", t);
        free(t);
        t = run_bytes(&REQ, in, sizeof in - 1);
        if (strcmp(t, want) != 0) {
            printf("#   byte by byte gives:\n%s", t);
            ok = 0;
        }
        free(t);
        fflush(stdout);
        _exit(ok ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    TAP_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "chunked request with trailer fields: no crash, head unchanged, body "
           "intact (parser.c:54, scratch freed at on_headers_complete)");
    if (WIFSIGNALED(st))
        printf("#   child killed by signal %d\n", WTERMSIG(st));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        printf("#   child exit status %d\n", WEXITSTATUS(st));
}

/* --- responses --------------------------------------------------------------------------- */

static void test_responses(void)
{
    EXPECT(&RESP, "response with Content-Length",
           "HTTP/1.1 200 OK" CRLF "Content-Length: 3" CRLF "Content-Type: text/plain" CRLF CRLF
           "abc",
           "HEAD 200 HTTP/1.1 ka=1 ch=0 cl=3\n"
           "  [Content-Length]=[3]\n"
           "  [Content-Type]=[text/plain]\n"
           "BODY [abc]\nDONE\nPAUSE 67\n");
    EXPECT(&RESP, "chunked response",
           "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "3" CRLF "abc" CRLF
           "1;e=1" CRLF "d" CRLF "0" CRLF CRLF,
           "HEAD 200 HTTP/1.1 ka=1 ch=1 cl=none\n"
           "  [Transfer-Encoding]=[chunked]\n"
           "BODY [abcd]\nDONE\nPAUSE 70\n");
    EXPECT(&RESP_EOF, "close-delimited response completes at finish",
           "HTTP/1.1 200 OK" CRLF "Connection: close" CRLF CRLF "abcdef",
           "HEAD 200 HTTP/1.1 ka=0 ch=0 cl=none\n"
           "  [Connection]=[close]\n"
           "BODY [abcdef]\nDONE\nFINISH 0 0\n");
    EXPECT(&RESP_EOF, "HTTP/1.0 response without length completes at finish",
           "HTTP/1.0 200 OK" CRLF CRLF "abc",
           "HEAD 200 HTTP/1.0 ka=0 ch=0 cl=none\n"
           "BODY [abc]\nDONE\nFINISH 0 0\n");
    EXPECT(&RESP, "1xx then 200 are two messages",
           "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 103 Early Hints" CRLF "Link: </a>" CRLF CRLF
           "HTTP/1.1 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok",
           "HEAD 100 HTTP/1.1 ka=1 ch=0 cl=none\n"
           "BODY []\nDONE\nPAUSE 25\n"
           "HEAD 103 HTTP/1.1 ka=1 ch=0 cl=none\n"
           "  [Link]=[</a>]\n"
           "BODY []\nDONE\nPAUSE 65\n"
           "HEAD 200 HTTP/1.1 ka=1 ch=0 cl=2\n"
           "  [Content-Length]=[2]\n"
           "BODY [ok]\nDONE\nPAUSE 105\n");
    EXPECT(&RESP, "204 has no body; the next response follows",
           "HTTP/1.1 204 No Content" CRLF CRLF "HTTP/1.1 200 OK" CRLF "Content-Length: 1" CRLF CRLF
           "z",
           "HEAD 204 HTTP/1.1 ka=1 ch=0 cl=none\n"
           "BODY []\nDONE\nPAUSE 27\n"
           "HEAD 200 HTTP/1.1 ka=1 ch=0 cl=1\n"
           "  [Content-Length]=[1]\n"
           "BODY [z]\nDONE\nPAUSE 66\n");
    /* RFC 9110 §6.4.1: 204 and 304 responses end at the head whatever their
     * Content-Length says (a 304 may carry the representation's length). */
    EXPECT(&RESP, "304 with Content-Length has no body",
           "HTTP/1.1 304 Not Modified" CRLF "Content-Length: 5" CRLF CRLF "HTTP/1.1 200 OK" CRLF
           "Content-Length: 0" CRLF CRLF,
           "HEAD 304 HTTP/1.1 ka=1 ch=0 cl=5\n"
           "  [Content-Length]=[5]\n"
           "BODY []\nDONE\nPAUSE 48\n"
           "HEAD 200 HTTP/1.1 ka=1 ch=0 cl=0\n"
           "  [Content-Length]=[0]\n"
           "BODY []\nDONE\nPAUSE 86\n");
    EXPECT(&RESP, "204 with Content-Length has no body",
           "HTTP/1.1 204 No Content" CRLF "Content-Length: 5" CRLF CRLF "HTTP/1.1 200 OK" CRLF
           "Content-Length: 0" CRLF CRLF,
           "HEAD 204 HTTP/1.1 ka=1 ch=0 cl=5\n"
           "  [Content-Length]=[5]\n"
           "BODY []\nDONE\nPAUSE 46\n"
           "HEAD 200 HTTP/1.1 ka=1 ch=0 cl=0\n"
           "  [Content-Length]=[0]\n"
           "BODY []\nDONE\nPAUSE 84\n");
    EXPECT(&RESP_EOF, "truncated chunked body at finish is an error",
           "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "5" CRLF "ab",
           "HEAD 200 HTTP/1.1 ka=1 ch=1 cl=none\n"
           "  [Transfer-Encoding]=[chunked]\n"
           "FINISH -3 502\n");
    EXPECT(&RESP_EOF, "truncated Content-Length body at finish is an error",
           "HTTP/1.1 200 OK" CRLF "Content-Length: 5" CRLF CRLF "ab",
           "HEAD 200 HTTP/1.1 ka=1 ch=0 cl=5\n"
           "  [Content-Length]=[5]\n"
           "FINISH -3 502\n");
    EXPECT(&RESP_EOF, "truncated head at finish is an error", "HTTP/1.1 200 OK" CRLF "Content-Le",
           "FINISH -3 502\n");

    struct opts skip = RESP;
    skip.head_rc = 1;
    EXPECT(&skip, "on_head returning 1 skips the body (response to HEAD)",
           "HTTP/1.1 200 OK" CRLF "Content-Length: 3" CRLF CRLF "HTTP/1.1 404 Not Found" CRLF
           "Content-Length: 7" CRLF CRLF,
           "HEAD 200 HTTP/1.1 ka=1 ch=0 cl=3\n"
           "  [Content-Length]=[3]\n"
           "BODY []\nDONE\nPAUSE 38\n"
           "HEAD 404 HTTP/1.1 ka=1 ch=0 cl=7\n"
           "  [Content-Length]=[7]\n"
           "BODY []\nDONE\nPAUSE 83\n");
    struct opts neg = RESP;
    neg.head_rc = -1;
    REJECT(&neg, "on_head returning negative fails with 502",
           "HTTP/1.1 200 OK" CRLF "Content-Length: 3" CRLF CRLF "abc", 502);
    REJECT(&RESP, "response with CL and TE: chunked",
           "HTTP/1.1 200 OK" CRLF "Content-Length: 3" CRLF "Transfer-Encoding: chunked" CRLF CRLF
           "3" CRLF "abc" CRLF "0" CRLF CRLF,
           502);
    REJECT(&RESP, "status code with four digits", "HTTP/1.1 2000 OK" CRLF CRLF, 502);
    /* RFC 9112 §4: status-code = 3DIGIT, and the status line ends in CRLF. */
    REJECT(&RESP, "status code with one digit", "HTTP/1.1 1 OK" CRLF "Content-Length: 0" CRLF CRLF,
           502);
    REJECT(&RESP, "empty status code (found by fuzz_http_response)",
           "HTTP/1.1 " CRLF "Content-Length: 0" CRLF CRLF, 502);
    REJECT(&RESP, "status code with two digits",
           "HTTP/1.1 20 OK" CRLF "Content-Length: 0" CRLF CRLF, 502);
    REJECT(&RESP, "status line ended by CR alone (it eats the next byte)",
           "HTTP/1.1 200 OK\rContent-Length: 0" CRLF CRLF, 502);
    struct opts small = RESP;
    small.max_head = 64;
    REJECT(&small, "response head over max_head is 502",
           "HTTP/1.1 200 OK" CRLF "X-Long: 0123456789012345678901234567890123456789012345678901234"
           "56789" CRLF CRLF,
           502);
}

/* --- lifecycle: in_message, finish, resume --------------------------------------------------- */

static int count_complete(void *ud)
{
    (*(int *)ud)++;
    return 0;
}

static void test_lifecycle(void)
{
    static const char req[] = "GET / HTTP/1.1" CRLF "Host: x" CRLF CRLF;
    struct mg_http_parser_cbs cbs = {.on_complete = count_complete};
    struct mg_http_parser hp;
    int n = 0;
    size_t used;
    mg_http_parser_init(&hp, MG_HTTP_REQUEST, 1024, 0, &cbs, &n);
    TAP_OK(!mg_http_parser_in_message(&hp), "a new parser is not in a message");
    TAP_IS_INT(mg_http_parser_finish(&hp), 0, "finish on a new parser is clean");
    TAP_IS_INT(mg_http_parser_execute(&hp, req, 10, &used), 0, "part of a head");
    TAP_IS_INT(used, 10, "part of a head: all consumed");
    TAP_OK(mg_http_parser_in_message(&hp), "in a message after part of a head");
    TAP_IS_INT(mg_http_parser_execute(&hp, req + 10, sizeof req - 11, &used), 0, "rest of it");
    TAP_IS_INT(used, sizeof req - 11, "rest of it: all consumed");
    TAP_OK(hp.paused && n == 1, "paused after one complete message");
    TAP_OK(!mg_http_parser_in_message(&hp), "not in a message while paused");
    mg_http_parser_resume(&hp);
    TAP_OK(!mg_http_parser_in_message(&hp), "not in a message after resume, before more bytes");
    TAP_IS_INT(mg_http_parser_finish(&hp), 0, "peer closing between messages is not a truncation");
    mg_http_parser_fini(&hp);

    /* A truncated request head at EOF is an error. */
    mg_http_parser_init(&hp, MG_HTTP_REQUEST, 1024, 0, &cbs, &n);
    mg_http_parser_execute(&hp, req, 10, &used);
    TAP_IS_INT(mg_http_parser_finish(&hp), MG_EPROTO, "finish inside a request head");
    TAP_IS_INT(hp.error_status, 400, "finish inside a request head: 400");
    size_t used2 = 99;
    TAP_IS_INT(mg_http_parser_execute(&hp, req, 1, &used2), MG_EPROTO, "errors are sticky");
    TAP_IS_INT(used2, 0, "errors are sticky: nothing consumed");
    mg_http_parser_fini(&hp);

    /* release_head frees the head; the message still completes. */
    static const char post[] =
        "POST / HTTP/1.1" CRLF "Host: x" CRLF "Content-Length: 4" CRLF CRLF "abcd";
    n = 0;
    mg_http_parser_init(&hp, MG_HTTP_REQUEST, 1024, 0, &cbs, &n);
    mg_http_parser_execute(&hp, post, sizeof post - 3, &used);
    TAP_OK(hp.head != NULL && hp.head->n_headers == 2, "head present mid-body");
    mg_http_parser_release_head(&hp);
    TAP_OK(hp.head == NULL, "release_head drops the head");
    TAP_IS_INT(mg_http_parser_execute(&hp, post + sizeof post - 3, 2, &used), 0,
               "the body goes on after release_head");
    TAP_OK(hp.paused && n == 1, "and the message completes");
    mg_http_parser_resume(&hp);
    mg_http_parser_fini(&hp);
}

/* --- header helpers ---------------------------------------------------------------------- */

static void test_helpers(void)
{
    static struct mg_http_head h;
    static const char *names[] = {"Host", "content-TYPE", "X-A", "x-a", "Hostx"};
    static const char *values[] = {"h", "application/json", "1", "2", "no"};
    for (size_t i = 0; i < MG_ARRAY_LEN(names); i++) {
        h.headers[i].name = names[i];
        h.headers[i].name_len = strlen(names[i]);
        h.headers[i].value = values[i];
        h.headers[i].value_len = strlen(values[i]);
    }
    h.n_headers = MG_ARRAY_LEN(names);
    const struct mg_http_header *f = mg_http_head_find(&h, "host");
    TAP_OK(f && f->value == values[0], "find is case-insensitive");
    f = mg_http_head_find(&h, "Content-Type");
    TAP_OK(f && f->value == values[1], "find Content-Type");
    f = mg_http_head_find(&h, "x-a");
    TAP_OK(f && f->value == values[2], "find returns the first of several");
    TAP_OK(mg_http_head_find(&h, "hos") == NULL, "find does not match a prefix");
    TAP_OK(mg_http_head_find(&h, "missing") == NULL, "find: absent");
    TAP_IS_INT(mg_http_head_count(&h, "X-A"), 2, "count: two");
    TAP_IS_INT(mg_http_head_count(&h, "host"), 1, "count: Hostx is not Host");
    TAP_IS_INT(mg_http_head_count(&h, "nope"), 0, "count: none");
    TAP_OK(mg_http_head_get(&h, MG_HDR_CONTENT_TYPE) == &h.headers[1], "get by id, not indexed");
    TAP_IS_INT(mg_http_head_num(&h, MG_HDR_HOST), 1, "num by id, not indexed");
    h.n_headers = 0;
    TAP_OK(mg_http_head_find(&h, "host") == NULL, "find in an empty head");

#define HAS(v, tok) mg_http_list_has(v, strlen(v), tok)
    TAP_OK(HAS("close", "close"), "list_has: single");
    TAP_OK(HAS("keep-alive, Close", "close"), "list_has: second, case-insensitive");
    TAP_OK(HAS(" \tgzip ,\tchunked \t", "chunked"), "list_has: OWS around items");
    TAP_OK(HAS("a,,b", "b"), "list_has: empty items");
    TAP_OK(HAS("chunked;q=1", "chunked"), "list_has: parameters ignored");
    TAP_OK(!HAS("foo;bar=chunked", "chunked"), "list_has: not inside parameters");
    TAP_OK(!HAS("xchunked", "chunked"), "list_has: no suffix match");
    TAP_OK(!HAS("chunkedx", "chunked"), "list_has: no prefix match");
    TAP_OK(!HAS("chunk", "chunked"), "list_has: no partial token");
    TAP_OK(!HAS("", "close"), "list_has: empty value");
    TAP_OK(!HAS(" , ,", "close"), "list_has: only separators");
    TAP_OK(!HAS("a b", "a"), "list_has: space inside an item is part of it");
    TAP_OK(!mg_http_list_has("close, upgrade", 3, "close"), "list_has: honours len (clo)");
    TAP_OK(mg_http_list_has("upgrade, close", 7, "upgrade"), "list_has: honours len (upgrade)");
    TAP_OK(!mg_http_list_has("upgrade, close", 7, "close"), "list_has: nothing past len");
#undef HAS
}

/* Every known name maps to its id in any case, and nothing else does. */
static void test_header_ids(void)
{
    static const struct {
        const char *name;
        enum mg_hdr id;
    } known[] = {
        {"accept", MG_HDR_ACCEPT},
        {"authorization", MG_HDR_AUTHORIZATION},
        {"connection", MG_HDR_CONNECTION},
        {"content-length", MG_HDR_CONTENT_LENGTH},
        {"content-type", MG_HDR_CONTENT_TYPE},
        {"cookie", MG_HDR_COOKIE},
        {"expect", MG_HDR_EXPECT},
        {"forwarded", MG_HDR_FORWARDED},
        {"host", MG_HDR_HOST},
        {"http2-settings", MG_HDR_HTTP2_SETTINGS},
        {"keep-alive", MG_HDR_KEEP_ALIVE},
        {"last-event-id", MG_HDR_LAST_EVENT_ID},
        {"mcp-method", MG_HDR_MCP_METHOD},
        {"mcp-name", MG_HDR_MCP_NAME},
        {"mcp-protocol-version", MG_HDR_MCP_PROTOCOL_VERSION},
        {"mcp-session-id", MG_HDR_MCP_SESSION_ID},
        {"origin", MG_HDR_ORIGIN},
        {"proxy-authenticate", MG_HDR_PROXY_AUTHENTICATE},
        {"proxy-authorization", MG_HDR_PROXY_AUTHORIZATION},
        {"proxy-connection", MG_HDR_PROXY_CONNECTION},
        {"set-cookie", MG_HDR_SET_COOKIE},
        {"te", MG_HDR_TE},
        {"trailer", MG_HDR_TRAILER},
        {"transfer-encoding", MG_HDR_TRANSFER_ENCODING},
        {"upgrade", MG_HDR_UPGRADE},
        {"x-forwarded-for", MG_HDR_X_FORWARDED_FOR},
        {"x-forwarded-host", MG_HDR_X_FORWARDED_HOST},
        {"x-forwarded-port", MG_HDR_X_FORWARDED_PORT},
        {"x-forwarded-proto", MG_HDR_X_FORWARDED_PROTO},
        {"x-mcpgate-hub-key", MG_HDR_X_MCPGATE_HUB_KEY},
        {"x-mcpgate-route", MG_HDR_X_MCPGATE_ROUTE},
        {"x-real-ip", MG_HDR_X_REAL_IP},
    };
    TAP_IS_INT(MG_ARRAY_LEN(known), MG_HDR__COUNT - 1, "every id has a name in this test");
    bool seen[MG_HDR__COUNT] = {false};
    size_t wrong = 0;
    for (size_t i = 0; i < MG_ARRAY_LEN(known); i++) {
        char up[64], mixed[64];
        size_t n = strlen(known[i].name);
        for (size_t k = 0; k <= n; k++) {
            char c = known[i].name[k];
            up[k] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
            mixed[k] = k % 2 ? up[k] : c;
        }
        seen[known[i].id] = true;
        wrong += mg_http_hdr_id(known[i].name, n) != known[i].id;
        wrong += mg_http_hdr_id(up, n) != known[i].id;
        wrong += mg_http_hdr_id(mixed, n) != known[i].id;
        /* One byte changed anywhere, one byte short or long: not this name. */
        for (size_t k = 0; k < n; k++) {
            char m[64];
            memcpy(m, known[i].name, n + 1);
            m[k] = m[k] == 'z' ? 'y' : (char)(m[k] + 1);
            wrong += mg_http_hdr_id(m, n) == known[i].id;
            m[k] = (char)(known[i].name[k] ^ 0x20); /* '-' to '\r', '2' to 0x12 */
            if (!(known[i].name[k] >= 'a' && known[i].name[k] <= 'z'))
                wrong += mg_http_hdr_id(m, n) == known[i].id;
        }
        wrong += mg_http_hdr_id(known[i].name, n - 1) == known[i].id;
        char longer[64];
        memcpy(longer, known[i].name, n);
        longer[n] = 'x';
        wrong += mg_http_hdr_id(longer, n + 1) == known[i].id;
    }
    size_t unseen = 0;
    for (int id = 1; id < MG_HDR__COUNT; id++)
        unseen += !seen[id];
    TAP_IS_INT(unseen, 0, "every id is tested");
    TAP_IS_INT(wrong, 0, "known names map to their ids in any case, near misses do not");
    TAP_IS_INT(mg_http_hdr_id("x-custom", 8), MG_HDR_OTHER, "an unknown name is OTHER");
    TAP_IS_INT(mg_http_hdr_id("a-very-long-header-name-indeed", 30), MG_HDR_OTHER,
               "a name longer than any known one is OTHER");
}

int main(void)
{
    test_requests();
    test_limits();
    test_smuggling();
    test_trailers();
    test_responses();
    test_lifecycle();
    test_helpers();
    test_header_ids();
    TAP_OK(index_checked > 1000, "header index checked on %zu parsed heads", index_checked);
    TAP_IS_INT(index_bad, 0, "every parsed head's header index agrees with a search by name");
    return tap_done();
}
