/* Helpers shared by the fuzz targets: an FNV-1a style hash to compare the
 * transcripts of a whole-input run and a split-input run, and a hash of an
 * HTTP head. Header-only, static inline: each target is one translation unit. */
#ifndef MG_FUZZ_UTIL_H
#define MG_FUZZ_UTIL_H

#include "http/parser.h"

static inline uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static inline uint64_t mix_u(uint64_t h, uint64_t v)
{
    return mix(h, &v, sizeof v);
}

static inline uint64_t hash_head(const struct mg_http_head *hd)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = mix_u(h, (uint64_t)hd->method);
    h = mix_u(h, (uint64_t)hd->status);
    h = mix_u(h, (uint64_t)(hd->http_major * 100 + hd->http_minor));
    h = mix(h, hd->url, hd->url_len);
    h = mix_u(h, hd->url_len);
    h = mix_u(h, hd->n_headers);
    for (size_t i = 0; i < hd->n_headers; i++) {
        const struct mg_http_header *x = &hd->headers[i];
        h = mix(h, x->name, x->name_len);
        h = mix_u(h, x->name_len);
        h = mix(h, x->value, x->value_len);
        h = mix_u(h, x->value_len);
    }
    h = mix_u(h, (uint64_t)hd->keep_alive << 2 | (uint64_t)hd->chunked << 1 |
                     (uint64_t)hd->has_content_length);
    return mix_u(h, hd->content_length);
}

#endif
