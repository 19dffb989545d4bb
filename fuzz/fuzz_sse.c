/* libFuzzer target for the SSE parser and formatter (src/http/sse). The first
 * input byte picks the event bound (bit 6: 64 bytes, else 4096) and how the
 * rest is cut into pieces (bit 7 set: one piece; otherwise pieces of
 * 1..2^(b&7) bytes from a PRNG seeded with that byte). The same bytes are
 * parsed whole and in pieces and must give the same events and result. Each
 * event is checked (NUL-terminated data within the bound, no line breaks in
 * the name, no CR in the data) and must survive mg_sse_format then parse
 * unchanged. */
#include "http/sse.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    uint64_t h;
    size_t max_event;
    int n;
};

struct one {
    int n;
    uint64_t h;
};

static int on_one(void *ud, const struct mg_sse_event *ev)
{
    struct one *o = ud;
    o->n++;
    o->h = mix(0xcbf29ce484222325ull, ev->event, strlen(ev->event) + 1);
    o->h = mix(o->h, ev->data, ev->data_len);
    return 0;
}

static int on_event(void *ud, const struct mg_sse_event *ev)
{
    struct run *r = ud;
    /* A NUL in an event name shortens it as a C string (noted, not asserted). */
    size_t elen = strlen(ev->event);
    MG_ASSERT(ev->data[ev->data_len] == '\0');
    MG_ASSERT(ev->data_len <= r->max_event);
    MG_ASSERT(memchr(ev->event, '\r', elen) == NULL && memchr(ev->event, '\n', elen) == NULL);
    MG_ASSERT(memchr(ev->data, '\r', ev->data_len) == NULL);
    r->n++;
    r->h = mix(r->h, ev->event, elen + 1);
    r->h = mix(r->h, ev->data, ev->data_len);
    r->h = mix_u(r->h, ev->data_len);
    if (ev->id)
        r->h = mix(r->h, ev->id, strlen(ev->id) + 1);
    else
        r->h = mix(r->h, "-", 1);

    if (elen == 0)
        return 0;
    /* Round trip through the formatter. */
    struct mg_buf out;
    mg_buf_init(&out, 8 * ev->data_len + elen + 64);
    MG_ASSERT(mg_sse_format(&out, ev->event, ev->data, ev->data_len) == 0);
    struct one o = {0, 0};
    struct mg_sse_parser p;
    mg_sse_parser_init(&p, out.len + 1, on_one, &o);
    MG_ASSERT(mg_sse_parser_feed(&p, out.data, out.len) == 0);
    mg_sse_parser_fini(&p);
    uint64_t want = mix(0xcbf29ce484222325ull, ev->event, elen + 1);
    want = mix(want, ev->data, ev->data_len);
    MG_ASSERT(o.n == 1 && o.h == want);
    mg_buf_fini(&out);
    /* Stop now and then, to exercise a callback ending the parse. */
    if (ev->data_len == 7 && ev->data[0] == 's')
        return MG_EDENIED;
    return 0;
}

static uint64_t parse(const char *in, size_t len, uint8_t seed, size_t max_event)
{
    struct run r = {.h = 0xcbf29ce484222325ull, .max_event = max_event};
    struct mg_sse_parser p;
    mg_sse_parser_init(&p, max_event, on_event, &r);
    uint32_t rng = 0x9e3779b9u ^ seed;
    size_t max_piece = (size_t)1 << (seed & 7);
    size_t off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        size_t n = len - off;
        if (!(seed & 0x80)) {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            n = MG_MIN(n, 1 + rng % max_piece);
        }
        rc = mg_sse_parser_feed(&p, in + off, n);
        MG_ASSERT(rc == 0 || rc == MG_ELIMIT || rc == MG_EDENIED);
        off += n;
    }
    mg_sse_parser_fini(&p);
    return mix_u(mix_u(r.h, (uint64_t)r.n), (uint64_t)(rc + 100));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_event = (data[0] & 0x40) ? 64 : 4096;
    const char *in = (const char *)data + 1;
    uint64_t whole = parse(in, size - 1, 0x80, max_event);
    uint64_t split = parse(in, size - 1, data[0], max_event);
    MG_ASSERT(whole == split);
    return 0;
}
