/* libFuzzer target for the HTTP response parser (src/http/parser), as used on
 * upstream responses. The first input byte picks how the rest is cut into
 * pieces (bit 7 set: one piece; otherwise pieces of 1..2^(b&7) bytes from a
 * PRNG seeded with that byte) and, with bit 6, that on_head asks to skip the
 * body (a response to HEAD). The same bytes are parsed whole and in pieces,
 * resuming after each complete message, then the peer "closes"
 * (mg_http_parser_finish); both runs must report the same messages, pause
 * offsets, error status and finish result. Also checks per message: never
 * both chunked and Content-Length, a three-digit status, the head intact until
 * the message completes. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEAD 8192
#define MAX_BODY 0 /* unlimited, as for upstream responses */

struct run {
    uint64_t h;       /* hash of the transcript so far */
    uint64_t pending; /* hash of the current message's body */
    uint64_t body_len;
    uint64_t head_hash;
    const struct mg_http_head *head;
    int head_rc;
};

static int on_head(void *ud, const struct mg_http_head *hd)
{
    struct run *r = ud;
    MG_ASSERT(hd->n_headers <= MG_HTTP_MAX_HEADERS);
    MG_ASSERT(hd->status >= 100 && hd->status <= 999);
    MG_ASSERT(!(hd->chunked && hd->has_content_length));
    /* The helpers must agree with each other on every head. */
    size_t n_host = mg_http_head_count(hd, "host");
    MG_ASSERT((n_host == 0) == (mg_http_head_find(hd, "host") == NULL));
    for (size_t i = 0; i < hd->n_headers; i++) {
        const struct mg_http_header *x = &hd->headers[i];
        if (x->value_len > 0) {
            MG_ASSERT(x->value[0] != ' ' && x->value[0] != '\t');
            MG_ASSERT(x->value[x->value_len - 1] != ' ' && x->value[x->value_len - 1] != '\t');
        }
        (void)mg_http_list_has(x->value, x->value_len, "chunked");
    }
    r->head = hd;
    r->head_hash = hash_head(hd);
    r->h = mix_u(r->h, r->head_hash);
    r->pending = 0xcbf29ce484222325ull;
    r->body_len = 0;
    return r->head_rc;
}

static int on_body(void *ud, const char *p, size_t n)
{
    struct run *r = ud;
    r->pending = mix(r->pending, p, n);
    r->body_len += n;
    MG_ASSERT(r->head_rc == 0); /* a skipped body delivers nothing */
    return 0;
}

static int on_complete(void *ud)
{
    struct run *r = ud;
    if (r->head)
        MG_ASSERT(hash_head(r->head) == r->head_hash); /* nothing moved under the head */
    r->h = mix_u(r->h, r->pending);
    r->h = mix_u(r->h, r->body_len);
    r->h = mix(r->h, "done", 4);
    r->head = NULL;
    return 0;
}

static const struct mg_http_parser_cbs cbs = {on_head, on_body, on_complete};

static uint64_t parse(const char *in, size_t len, uint8_t seed)
{
    struct run r = {.h = 0xcbf29ce484222325ull,
                    .pending = 0xcbf29ce484222325ull,
                    .head_rc = (seed & 0x40) ? 1 : 0};
    struct mg_http_parser hp;
    mg_http_parser_init(&hp, MG_HTTP_RESPONSE, MAX_HEAD, MAX_BODY, &cbs, &r);
    uint32_t rng = 0x9e3779b9u ^ seed;
    size_t max_piece = (size_t)1 << (seed & 7);
    size_t off = 0, steps = 0;
    while (off < len) {
        size_t n = len - off;
        if (!(seed & 0x80)) {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            n = MG_MIN(n, 1 + rng % max_piece);
        }
        size_t end = off + n;
        while (off < end) {
            size_t used = 0;
            MG_ASSERT(++steps <= 4 * len + 16); /* every step consumes or completes */
            int rc = mg_http_parser_execute(&hp, in + off, end - off, &used);
            MG_ASSERT(used <= end - off);
            if (rc < 0) {
                MG_ASSERT(rc == MG_EPROTO && hp.error_status == 502);
                r.h = mix_u(r.h, (uint64_t)hp.error_status);
                goto out;
            }
            off += used;
            if (hp.paused) {
                r.h = mix_u(r.h, off);
                mg_http_parser_resume(&hp);
            } else {
                MG_ASSERT(off == end); /* not paused: all consumed */
            }
        }
    }
    {
        /* The peer closes: a close-delimited body completes, anything else
         * unfinished is an error. */
        int rc = mg_http_parser_finish(&hp);
        MG_ASSERT(rc == 0 || (rc == MG_EPROTO && hp.error_status == 502));
        r.h = mix_u(r.h, (uint64_t)(rc + 100));
    }
out:
    mg_http_parser_fini(&hp);
    return r.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    uint64_t whole = parse(in, len, (uint8_t)(0x80 | (data[0] & 0x40)));
    uint64_t split = parse(in, len, data[0]);
    MG_ASSERT(whole == split);
    return 0;
}
