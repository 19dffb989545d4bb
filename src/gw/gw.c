/* Gateway configuration runtime and route selection; see gw.h. */
#include "gw/gw.h"
#include "gw/toolmap.h"
#include "net/tls.h"

#include <ctype.h>

static uint16_t default_port(const char *scheme)
{
    return strcmp(scheme, "https") == 0 || strcmp(scheme, "sse+https") == 0 ? 443 : 80;
}

static char *origin_of(const struct mg_url *u)
{
    struct mg_buf b;
    mg_buf_init(&b, 1024);
    bool v6 = strchr(u->host, ':') != NULL;
    mg_buf_appendf(&b, "%s://%s%s%s", u->scheme, v6 ? "[" : "", u->host, v6 ? "]" : "");
    if (u->port != default_port(u->scheme))
        mg_buf_appendf(&b, ":%u", u->port);
    return mg_buf_steal(&b, NULL);
}

int mg_gw_new(struct mg_conf *conf, const char *hub_path, const char *hub_key, struct mg_gw **out,
              struct mg_buf *err)
{
    struct mg_gw *gw = mg_xcalloc(1, sizeof *gw);
    atomic_init(&gw->refs, 1);
    gw->conf = conf;
    gw->hub_path = mg_xstrdup(hub_path ? hub_path : "");
    gw->hub_key = mg_xstrdup(hub_key ? hub_key : "");
    gw->routes = mg_xcalloc(conf->n_routes ? conf->n_routes : 1, sizeof *gw->routes);
    gw->n_routes = conf->n_routes;
    for (size_t i = 0; i < conf->n_routes; i++) {
        const struct mg_conf_route *r = &conf->routes[i];
        struct mg_route_rt *rt = &gw->routes[i];
        rt->conf = r;
        rt->origin = origin_of(&r->from);
        rt->prefix_len = strlen(r->from.path);
        rt->toolmap = mg_toolmap_shared(r->name);
        {
            struct mg_buf b;
            mg_buf_init(&b, 4096);
            mg_buf_appendf(&b, "%s%s", rt->origin, r->from.path[0] ? r->from.path : "/");
            rt->resource = mg_buf_steal(&b, NULL);
            mg_buf_init(&b, 4096);
            mg_buf_appendf(&b, "%s/.well-known/oauth-protected-resource%s", rt->origin,
                           r->from.path);
            rt->prm_url = mg_buf_steal(&b, NULL);
            mg_buf_init(&b, 4096);
            for (size_t j = 0; j < r->n_scopes; j++)
                mg_buf_appendf(&b, "%s%s", j ? " " : "", r->scopes[j]);
            rt->scope_str = b.data ? mg_buf_steal(&b, NULL) : mg_xstrdup("");
        }
        rt->via_hub = r->kind != MG_UPSTREAM_HTTP;
        if (r->kind != MG_UPSTREAM_STDIO) {
            bool v6 = strchr(r->to.host, ':') != NULL;
            struct mg_buf h;
            mg_buf_init(&h, 1024);
            mg_buf_appendf(&h, "%s%s%s", v6 ? "[" : "", r->to.host, v6 ? "]" : "");
            if (r->to.port_explicit)
                mg_buf_appendf(&h, ":%u", r->to.port);
            rt->up_host_header = mg_buf_steal(&h, NULL);
            if (strcmp(r->to.scheme, "https") == 0 || strcmp(r->to.scheme, "sse+https") == 0) {
                rt->up_ctx = mg_tls_client_ctx_new(r->tls_custom_ca_file, err);
                if (rt->up_ctx == NULL) {
                    mg_buf_appendf(err, " (route %s)", r->name);
                    mg_gw_unref(gw);
                    return MG_ETLS;
                }
            }
        }
    }
    gw->issuer = mg_xstrdup(
        conf->issuer ? conf->issuer : (gw->n_routes ? gw->routes[0].origin : "https://localhost"));
    {
        /* "https://Host:port" -> "host:port" (the default port is left out, as in
         * the issuer itself). */
        const char *h = strstr(gw->issuer, "://");
        gw->issuer_host = mg_xstrdup(h ? h + 3 : gw->issuer);
        for (char *c = gw->issuer_host; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    *out = gw;
    return 0;
}

void mg_gw_ref(struct mg_gw *gw)
{
    atomic_fetch_add(&gw->refs, 1);
}

void mg_gw_unref(struct mg_gw *gw)
{
    if (gw == NULL || atomic_fetch_sub(&gw->refs, 1) != 1)
        return;
    free(gw->issuer);
    free(gw->issuer_host);
    for (size_t i = 0; i < gw->n_routes; i++) {
        SSL_CTX_free(gw->routes[i].up_ctx);
        free(gw->routes[i].origin);
        free(gw->routes[i].resource);
        free(gw->routes[i].prm_url);
        free(gw->routes[i].scope_str);
        free(gw->routes[i].up_host_header);
    }
    free(gw->routes);
    free(gw->hub_path);
    free(gw->hub_key);
    mg_conf_unref(gw->conf);
    free(gw);
}

bool mg_gw_parse_host(const char *h, size_t len, char *host, size_t host_cap, uint16_t *port)
{
    size_t hlen;
    const char *hs;
    const char *rest;
    *port = 0;
    if (len == 0)
        return false;
    if (h[0] == '[') {
        const char *end = memchr(h, ']', len);
        if (end == NULL)
            return false;
        hs = h + 1;
        hlen = (size_t)(end - hs);
        rest = end + 1;
        /* Brackets hold an IPv6 literal and nothing else (RFC 3986 §3.2.2). */
        if (memchr(hs, ':', hlen) == NULL)
            return false;
        for (size_t i = 0; i < hlen; i++)
            if (!isxdigit((unsigned char)hs[i]) && hs[i] != ':' && hs[i] != '.')
                return false;
    } else {
        const char *colon = memchr(h, ':', len);
        hs = h;
        hlen = colon ? (size_t)(colon - h) : len;
        rest = h + hlen;
    }
    size_t rest_len = len - (size_t)(rest - h);
    if (rest_len > 0) {
        uint64_t p;
        if (rest[0] != ':' || mg_parse_u64(rest + 1, rest_len - 1, &p) < 0 || p == 0 || p > 65535)
            return false;
        *port = (uint16_t)p;
    }
    if (hlen == 0 || hlen >= host_cap)
        return false;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)hs[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == ':' || c == '_'))
            return false;
        host[i] = (char)tolower(c);
    }
    host[hlen] = '\0';
    /* A trailing dot names the same host (RFC 1034); compare without it. */
    if (hlen > 1 && host[hlen - 1] == '.')
        host[hlen - 1] = '\0';
    return true;
}

bool mg_gw_path_is_safe(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *s = p; *s; s++) {
        if (*s == '%' && s[1] && s[2]) {
            char a = (char)tolower((unsigned char)s[1]), b = (char)tolower((unsigned char)s[2]);
            if ((a == '2' && (b == 'e' || b == 'f')) || (a == '5' && b == 'c') ||
                (a == '0' && b == '0'))
                return false;
        }
        if (*s == '\\')
            return false;
        /* A "." or ".." segment, also with ";params" (Tomcat and Jetty strip
         * those before resolving dot segments) or a fragment behind it. */
        if (*s == '/' && s[1] == '.') {
            const char *e = s[2] == '.' ? s + 3 : s + 2;
            if (*e == '\0' || *e == '/' || *e == ';' || *e == '#' || *e == '?')
                return false;
        }
        if (*s == '#')
            return false; /* a fragment is never sent in a request target */
    }
    return true;
}

const struct mg_route_rt *mg_gw_select(const struct mg_gw *gw, const char *host, size_t host_len,
                                       const char *path, int *status)
{
    char name[256];
    uint16_t port;
    if (!mg_gw_parse_host(host, host_len, name, sizeof name, &port)) {
        *status = 400;
        return NULL;
    }
    const struct mg_route_rt *best = NULL;
    bool host_known = false;
    for (size_t i = 0; i < gw->n_routes; i++) {
        const struct mg_route_rt *rt = &gw->routes[i];
        const struct mg_url *f = &rt->conf->from;
        uint16_t want = port ? port : default_port(f->scheme);
        if (strcmp(f->host, name) != 0 || f->port != want)
            continue;
        host_known = true;
        size_t pl = rt->prefix_len;
        if (pl > 0 && !(strncmp(path, f->path, pl) == 0 && (path[pl] == '\0' || path[pl] == '/')))
            continue;
        if (best == NULL || pl > best->prefix_len)
            best = rt;
    }
    if (best == NULL)
        *status = host_known ? 404 : 403;
    return best;
}

const struct mg_route_rt *mg_gw_route_by_name(const struct mg_gw *gw, const char *name, size_t len)
{
    for (size_t i = 0; i < gw->n_routes; i++)
        if (mg_str_eq(name, len, gw->routes[i].conf->name))
            return &gw->routes[i];
    return NULL;
}

void mg_gw_upstream_target(const struct mg_route_rt *rt, const char *target, struct mg_buf *out)
{
    size_t start = out->len;
    /* A fragment is never forwarded (RFC 9110 §7.1); the proxy refuses
     * targets that carry one, this is the second line of defence. */
    size_t tlen = strcspn(target, "#");
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    const char *rest = target + rt->prefix_len;
    size_t rest_len = plen - rt->prefix_len;
    const char *base = rt->conf->kind == MG_UPSTREAM_STDIO ? "" : rt->conf->to.path;
    size_t blen = strlen(base);
    if (blen > 0 && base[blen - 1] == '/' && rest_len > 0 && rest[0] == '/')
        blen--;
    if ((blen == 0 || base[0] != '/') && (rest_len == 0 || blen > 0 || rest[0] != '/'))
        mg_buf_append(out, "/", 1);
    mg_buf_append(out, base, blen);
    mg_buf_append(out, rest, rest_len);
    MG_ASSERT(out->len > start);
    if (q)
        mg_buf_append(out, q, tlen - (size_t)(q - target));
}
