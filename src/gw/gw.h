/* The gateway's view of one loaded configuration: the parsed mg_conf plus what
 * is derived from it once (upstream TLS contexts, each route's origin), and
 * route selection. Reference-counted: each worker holds the current one, each
 * request holds the one it started with, and a reload swaps in a new one. */
#ifndef MG_GW_GW_H
#define MG_GW_GW_H

#include "conf/conf.h"
#include "core/buf.h"

#include <openssl/ssl.h>
#include <stdatomic.h>

struct mg_route_rt {
    const struct mg_conf_route *conf;
    SSL_CTX *up_ctx;      /* https and sse+https upstreams */
    char *origin;         /* the route's own origin, "https://host[:port]" */
    char *up_host_header; /* Host sent upstream unless preserve_host_header */
    bool via_hub;         /* stdio and legacy SSE routes go through the session hub */
    size_t prefix_len;
    char *resource;             /* the route's resource identifier (RFC 8707): origin + prefix, or
                                 * origin + "/" for a route without a prefix; tokens are bound to it */
    char *prm_url;              /* its protected-resource metadata URL (RFC 9728 §3.1) */
    char *scope_str;            /* route scopes, space-separated; "" if none */
    struct mg_toolmap *toolmap; /* tool classes learned from tools/list answers */
};

struct mg_authsvc; /* gw/authsvc.h: process-wide identity services */
struct mg_toolmap; /* gw/toolmap.h */
struct mg_audit;   /* audit/audit.h */

struct mg_gw {
    atomic_int refs;
    struct mg_conf *conf;
    struct mg_route_rt *routes;
    size_t n_routes;
    char *hub_path;          /* the hub's Unix socket */
    char *hub_key;           /* secret the hub requires from workers */
    char *issuer;            /* the authorization server's issuer: authenticate_service_url, or the
                              * origin of the first route */
    char *issuer_host;       /* its host[:port] as a Host header would carry it (lower case) */
    struct mg_authsvc *auth; /* not owned; NULL in tools that do not serve */
    struct mg_audit *audit;  /* not owned; NULL: decisions are not recorded */
};

/* Takes over the caller's reference to conf. */
int mg_gw_new(struct mg_conf *conf, const char *hub_path, const char *hub_key, struct mg_gw **out,
              struct mg_buf *err);
void mg_gw_ref(struct mg_gw *gw);
void mg_gw_unref(struct mg_gw *gw);

/* Route selection by Host and path. Returns the route, or NULL with *status
 * set: 400 (malformed Host or target), 403 (Host not served here: DNS
 * rebinding protection), 404 (no route for the path on that host). */
const struct mg_route_rt *mg_gw_select(const struct mg_gw *gw, const char *host, size_t host_len,
                                       const char *path, int *status);
const struct mg_route_rt *mg_gw_route_by_name(const struct mg_gw *gw, const char *name, size_t len);
/* Validates a request path: origin-form, no dot segments, no encoded '/', '.'
 * or '\' (they let an upstream's normalisation escape the route prefix). */
bool mg_gw_path_is_safe(const char *path);
/* Builds the upstream path: to.path + (path after the prefix) + query. */
void mg_gw_upstream_target(const struct mg_route_rt *rt, const char *target, struct mg_buf *out);
/* Splits a Host header into host (lower case, brackets removed) and port (0 if
 * absent). Returns false when malformed. */
bool mg_gw_parse_host(const char *h, size_t len, char *host, size_t host_cap, uint16_t *port);

#endif
