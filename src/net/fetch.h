/* One outbound HTTP(S) request that the gateway makes on its own behalf (an
 * OpenID provider's discovery document, its JWKS, its token endpoint, a
 * client's metadata document): the whole response body into memory, on the
 * calling worker's loop, bounded in time and size. Owns the URL parsing for
 * these requests and the SSRF guard: with block_private, every address the
 * name resolves to must be public, and the connection goes to the vetted
 * address itself (no second lookup, so DNS rebinding cannot swap it), with
 * TLS verified against the host name. Redirects are not followed: a 3xx is a
 * result like any other. */
#ifndef MG_NET_FETCH_H
#define MG_NET_FETCH_H

#include "http/client.h"

#include <sys/socket.h>

#define MG_FETCH_URL_MAX          4096
#define MG_FETCH_HOST_MAX         253
#define MG_FETCH_DEFAULT_TIMEOUT  10000     /* ms */
#define MG_FETCH_DEFAULT_MAX_BODY (1 << 20) /* bytes */
#define MG_FETCH_MAX_HEADERS      16
#define MG_FETCH_MAX_ADDRS        16 /* resolved addresses kept (and vetted) */

struct mg_fetch_opts {
    const char *method; /* "GET" (NULL) or "POST" */
    const char *body;   /* request body (POST); copied */
    size_t body_len;
    const char *content_type; /* of the request body; NULL: none sent */
    /* Extra request header lines "Name: value" (no CR/LF), at most
     * MG_FETCH_MAX_HEADERS, NULL-terminated; NULL for none. Host,
     * Content-Length, Transfer-Encoding and Connection are refused: the
     * fetch frames the request itself. */
    const char *const *headers;
    uint64_t timeout_ms; /* whole exchange, resolution included; 0: 10 s */
    size_t max_bytes;    /* response body; 0: 1 MiB; past it MG_ELIMIT */
    /* Trust for https, referenced while in use; NULL: ca_file, else system CAs. */
    SSL_CTX *ssl_ctx;
    const char *ca_file; /* used only when ssl_ctx is NULL (loads a context per fetch) */
    bool block_private;  /* SSRF guard: refuse any non-public address */
    bool allow_http;     /* plain http:// allowed (loopback IdPs in tests and dev) */
    bool sensitive;      /* request or response carries secrets: wipe every copy */
};

struct mg_fetch_result {
    int status;               /* 0, or MG_E* (then error says why and http_status is 0) */
    const char *error;        /* "" on success */
    int http_status;          /* the response's status, 3xx and 4xx included */
    const char *content_type; /* "" if none */
    const char *body;         /* NUL-terminated (the NUL is not counted); never NULL */
    size_t body_len;
};

/* Runs once, on the pool's loop. The result and everything it points to are
 * valid only during the call; the fetch is freed right after it. */
typedef void (*mg_fetch_cb)(void *ud, const struct mg_fetch_result *res);

struct mg_fetch;

/* Starts url (absolute http or https) on pool's loop. Copies everything it
 * needs from url and opts. Returns 0 and sets *out (if out is not NULL) for
 * mg_fetch_cancel; cb then runs exactly once, never inside this call.
 * Otherwise the callback never runs, *why (if not NULL) gets a static reason
 * and the status is MG_EINVAL (malformed URL or header), MG_EDENIED (http://
 * without allow_http), MG_ETLS (the CA file cannot be loaded) or MG_EIO.
 * Statuses seen by cb: MG_EDENIED (block_private refused an address),
 * MG_ENOTFOUND (the name does not resolve), MG_ETIMEDOUT, MG_ELIMIT (body over
 * max_bytes), MG_EIO (cannot connect), MG_ETLS (handshake or certificate),
 * MG_EPROTO (invalid HTTP), MG_ECLOSED (closed mid-response). */
int mg_fetch(struct mg_client_pool *pool, const char *url, const struct mg_fetch_opts *opts,
             mg_fetch_cb cb, void *ud, struct mg_fetch **out, const char **why);
/* Abandons a fetch whose callback has not run yet: it never will. */
void mg_fetch_cancel(struct mg_fetch *f);

struct mg_fetch_url {
    bool https;
    bool host_is_ip;                  /* an IPv4 or bracketed IPv6 literal */
    char host[MG_FETCH_HOST_MAX + 1]; /* lowercased; IPv6 without brackets */
    uint16_t port;
    char authority[MG_FETCH_HOST_MAX + 9]; /* the Host header: host[:port], IPv6 bracketed */
    char target[MG_FETCH_URL_MAX + 1];     /* path and query, never empty; fragment dropped */
};

/* Parses an absolute http(s) URL (RFC 3986 §3) strictly: no userinfo, no
 * IPv6 zone, no control, space, backslash or non-ASCII byte anywhere, port
 * 1-65535. Pure. MG_EINVAL with a static *why on failure. */
int mg_fetch_url_parse(const char *url, struct mg_fetch_url *out, const char **why);

/* True if addr (AF_INET or AF_INET6) is a public unicast address: not
 * loopback, private (RFC 1918), shared (CGNAT 100.64/10), link-local,
 * unspecified, multicast, broadcast, reserved, documentation or benchmarking
 * space, nor an IPv6 ULA, link- or site-local, discard, ORCHID or unallocated
 * address; IPv4-mapped, -translated and NAT64 (64:ff9b::/96) forms and 6to4
 * and Teredo addresses are judged by the IPv4 address they carry, the
 * deprecated IPv4-compatible ::/96 is never public. Pure (IANA special-
 * purpose address registries, RFC 6890). Any other family: false. */
bool mg_fetch_addr_is_public(const struct sockaddr *addr);

#endif
