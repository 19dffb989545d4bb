/* Outbound fetches; see fetch.h.
 *
 * A fetch resolves the name itself (uv_getaddrinfo, on libuv's thread pool),
 * vets every address when asked to, and hands the upstream client an IP
 * literal plus the host name for SNI and certificate verification. The client
 * therefore never resolves again: what was vetted is what is connected to.
 * One timer bounds the whole exchange; the client's own connect and
 * first-byte timers are set to what is left of it. */
#include "net/fetch.h"

#include "net/tls.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>

struct resolve {
    uv_getaddrinfo_t gai;
    struct mg_fetch *f; /* NULL once the fetch is gone */
};

struct mg_fetch {
    struct mg_client_pool *pool;
    struct mg_fetch_url url;
    uv_timer_t timer;
    struct resolve *resolving;
    struct mg_client_req *creq;
    SSL_CTX *ssl_ctx, *own_ctx; /* own_ctx: a reference this fetch holds */
    char *head;
    size_t head_len;
    char *body;
    size_t body_len;
    bool is_get, block_private, sensitive, done;
    uint64_t timeout_ms, deadline_ms;
    size_t max_bytes;
    struct sockaddr_storage addrs[MG_FETCH_MAX_ADDRS];
    size_t n_addrs, addr_i;
    struct mg_buf resp;
    int http_status;
    char content_type[128];
    char err[384];
    mg_fetch_cb cb;
    void *ud;
};

/* ---- addresses ----------------------------------------------------------------------------- */

static bool v4_in(uint32_t a, uint32_t net, unsigned bits)
{
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (a & mask) == (net & mask);
}

/* a is in host byte order. IANA IPv4 Special-Purpose Address Registry
 * (RFC 6890 and successors): everything not globally reachable unicast. */
static bool v4_is_public(uint32_t a)
{
    static const struct {
        uint32_t net;
        unsigned bits;
    } blocked[] = {
        {0x00000000, 8},  /* 0/8 "this network", 0.0.0.0 unspecified (RFC 791) */
        {0x0a000000, 8},  /* 10/8 private (RFC 1918) */
        {0x64400000, 10}, /* 100.64/10 shared address space, CGNAT (RFC 6598) */
        {0x7f000000, 8},  /* 127/8 loopback (RFC 1122) */
        {0xa9fe0000, 16}, /* 169.254/16 link-local (RFC 3927) */
        {0xac100000, 12}, /* 172.16/12 private (RFC 1918) */
        {0xc0000000, 24}, /* 192.0.0/24 IETF protocol assignments (RFC 6890) */
        {0xc0000200, 24}, /* 192.0.2/24 TEST-NET-1 (RFC 5737) */
        {0xc0586300, 24}, /* 192.88.99/24 6to4 relay anycast (RFC 7526) */
        {0xc0a80000, 16}, /* 192.168/16 private (RFC 1918) */
        {0xc6120000, 15}, /* 198.18/15 benchmarking (RFC 2544) */
        {0xc6336400, 24}, /* 198.51.100/24 TEST-NET-2 (RFC 5737) */
        {0xcb007100, 24}, /* 203.0.113/24 TEST-NET-3 (RFC 5737) */
        {0xe0000000, 4},  /* 224/4 multicast (RFC 5771) */
        {0xf0000000, 4},  /* 240/4 reserved (RFC 1112), 255.255.255.255 broadcast */
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(blocked); i++)
        if (v4_in(a, blocked[i].net, blocked[i].bits))
            return false;
    return true;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool v6_prefix(const uint8_t *a, const uint8_t *p, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, p, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (p[full] & mask);
}

/* IANA IPv6 Special-Purpose Address Registry (RFC 6890 and successors).
 * Only 2000::/3 is global unicast (RFC 4291 §2.4); the IPv4-carrying forms
 * are judged by the IPv4 address inside. */
static bool v6_is_public(const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[12] = {0};
    static const struct {
        uint8_t p[16];
        unsigned bits;
    } blocked[] = {
        {{0x20, 0x01, 0x00, 0x02, 0, 0}, 48}, /* 2001:2::/48 benchmarking (RFC 5180) */
        {{0x20, 0x01, 0x00, 0x10}, 28},       /* 2001:10::/28 ORCHID (RFC 4843) */
        {{0x20, 0x01, 0x00, 0x20}, 28},       /* 2001:20::/28 ORCHIDv2 (RFC 7343) */
        {{0x20, 0x01, 0x0d, 0xb8}, 32},       /* 2001:db8::/32 documentation (RFC 3849) */
        {{0x3f, 0xff}, 20},                   /* 3fff::/20 documentation (RFC 9637) */
    };

    if (memcmp(a, mapped, 12) == 0 || memcmp(a, translated, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return v4_is_public(be32(a + 12)); /* RFC 4291 §2.5.5.2, RFC 2765, RFC 6052 */
    if (memcmp(a, zero, 12) == 0)
        return false; /* ::, ::1 and the deprecated IPv4-compatible ::/96 (RFC 4291 §2.5.5.1) */
    if ((a[0] & 0xe0) != 0x20)
        return false; /* outside 2000::/3: ULA, link/site-local, multicast, discard, reserved */
    if (a[0] == 0x20 && a[1] == 0x02)
        return v4_is_public(be32(a + 2)); /* 6to4 2002::/16 (RFC 3056) */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
        /* Teredo 2001::/32 (RFC 4380 §4): the server's IPv4 address, then the
         * client's, stored inverted. Both must be public. */
        return v4_is_public(be32(a + 4)) && v4_is_public(~be32(a + 12));
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(blocked); i++)
        if (v6_prefix(a, blocked[i].p, blocked[i].bits))
            return false;
    return true;
}

bool mg_fetch_addr_is_public(const struct sockaddr *addr)
{
    if (addr == NULL)
        return false;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return v4_is_public(ntohl(in->sin_addr.s_addr));
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        return v6_is_public(in6->sin6_addr.s6_addr);
    }
    return false;
}

static void addr_name(const struct sockaddr *sa, char *out, size_t cap)
{
    if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, out, cap);
    else
        uv_ip4_name((const struct sockaddr_in *)sa, out, cap);
}

/* ---- URLs ---------------------------------------------------------------------------------- */

static bool url_byte_ok(unsigned char c)
{
    /* No controls, space, DEL or non-ASCII (they would corrupt the request
     * line), no backslash (some parsers read it as '/'). */
    return c > 0x20 && c < 0x7f && c != '\\';
}

int mg_fetch_url_parse(const char *url, struct mg_fetch_url *out, const char **why)
{
    const char *reason = NULL;
    const char *p, *auth, *auth_end, *host, *host_end, *end;
    size_t n;
    memset(out, 0, sizeof *out);
    if (url == NULL) {
        reason = "no URL";
        goto fail;
    }
    n = strnlen(url, MG_FETCH_URL_MAX + 1);
    if (n > MG_FETCH_URL_MAX) {
        reason = "URL too long";
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (!url_byte_ok((unsigned char)url[i])) {
            reason = "URL contains a control, space, backslash or non-ASCII byte";
            goto fail;
        }
    }
    if (n >= 8 && mg_str_ieq(url, 8, "https://")) {
        out->https = true;
        auth = url + 8;
    } else if (n >= 7 && mg_str_ieq(url, 7, "http://")) {
        auth = url + 7;
    } else {
        reason = "URL is not absolute http:// or https://";
        goto fail;
    }
    end = url + n;
    auth_end = auth;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    if (memchr(auth, '@', (size_t)(auth_end - auth)) != NULL) {
        reason = "URL has userinfo";
        goto fail;
    }
    /* Host. */
    if (auth < auth_end && *auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(auth_end - auth));
        if (close == NULL || (size_t)(close - auth - 1) >= sizeof out->host) {
            reason = "malformed IPv6 literal";
            goto fail;
        }
        host = auth + 1;
        host_end = close;
        memcpy(out->host, host, (size_t)(host_end - host));
        struct in6_addr a6;
        if (inet_pton(AF_INET6, out->host, &a6) != 1) {
            reason = "malformed IPv6 literal"; /* zone ids included (RFC 6874 is not for URLs we
                                                  fetch) */
            goto fail;
        }
        out->host_is_ip = true;
        p = close + 1;
    } else {
        host = auth;
        p = auth;
        while (p < auth_end && *p != ':')
            p++;
        host_end = p;
        size_t hl = (size_t)(host_end - host);
        if (hl == 0 || hl > MG_FETCH_HOST_MAX) {
            reason = hl == 0 ? "URL has no host" : "host name too long";
            goto fail;
        }
        for (size_t i = 0; i < hl; i++) {
            char c = host[i];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                  c == '_')) {
                reason = "host name has a character outside letters, digits, '-', '.', '_'";
                goto fail;
            }
            out->host[i] = c;
        }
        struct in_addr a4;
        out->host_is_ip = inet_pton(AF_INET, out->host, &a4) == 1;
    }
    /* Port. */
    out->port = out->https ? 443 : 80;
    if (p < auth_end) {
        if (*p != ':' || p + 1 == auth_end) {
            reason = "malformed port";
            goto fail;
        }
        uint64_t port = 0;
        if (auth_end - (p + 1) > 5 ||
            mg_parse_u64(p + 1, (size_t)(auth_end - (p + 1)), &port) < 0 || port == 0 ||
            port > 65535) {
            reason = "malformed port";
            goto fail;
        }
        out->port = (uint16_t)port;
    }
    bool default_port = out->port == (out->https ? 443 : 80);
    if (strchr(out->host, ':'))
        snprintf(out->authority, sizeof out->authority, default_port ? "[%s]" : "[%s]:%u",
                 out->host, out->port);
    else
        snprintf(out->authority, sizeof out->authority, default_port ? "%s" : "%s:%u", out->host,
                 out->port);
    /* Path and query; the fragment is the client's (RFC 3986 §3.5). */
    const char *frag = memchr(auth_end, '#', (size_t)(end - auth_end));
    const char *t_end = frag ? frag : end;
    if (auth_end == t_end || *auth_end == '?') {
        out->target[0] = '/';
        memcpy(out->target + 1, auth_end, (size_t)(t_end - auth_end));
    } else {
        memcpy(out->target, auth_end, (size_t)(t_end - auth_end));
    }
    if (why)
        *why = NULL;
    return 0;
fail:
    memset(out, 0, sizeof *out);
    if (why)
        *why = reason;
    return MG_EINVAL;
}

/* ---- the exchange -------------------------------------------------------------------------- */

static void wipe_free(void *p, size_t n, bool wipe)
{
    if (p && wipe)
        OPENSSL_cleanse(p, n);
    free(p);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mg_fetch *f = h->data;
    wipe_free(f->head, f->head_len, f->sensitive);
    wipe_free(f->body, f->body_len, f->sensitive);
    if (f->sensitive && f->resp.data)
        OPENSSL_cleanse(f->resp.data, f->resp.cap);
    mg_buf_fini(&f->resp);
    SSL_CTX_free(f->own_ctx);
    free(f);
}

/* Stops everything under way; the memory goes once the timer has closed. */
static void teardown(struct mg_fetch *f)
{
    f->done = true;
    uv_timer_stop(&f->timer);
    if (f->resolving) {
        f->resolving->f = NULL;
        uv_cancel((uv_req_t *)&f->resolving->gai);
        f->resolving = NULL;
    }
    if (f->creq) {
        mg_client_cancel(f->creq);
        f->creq = NULL;
    }
    uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

static void complete(struct mg_fetch *f, int status)
{
    if (f->done)
        return;
    struct mg_fetch_result res = {
        .status = status,
        .error = status == 0 ? "" : f->err,
        .http_status = status == 0 ? f->http_status : 0,
        .content_type = f->content_type,
        .body = "",
    };
    if (status == 0 && f->resp.len > 0) {
        /* mg_buf_append reserved the byte: max is max_bytes + 1. */
        MG_ASSERT(mg_buf_append(&f->resp, "", 1) == 0);
        res.body = f->resp.data;
        res.body_len = f->resp.len - 1;
    }
    mg_fetch_cb cb = f->cb;
    void *ud = f->ud;
    teardown(f);
    cb(ud, &res);
}

static void failf(struct mg_fetch *f, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends the fetch with "host[:port]: " and the formatted reason. */
static void failf(struct mg_fetch *f, int status, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(f->err, sizeof f->err, "%s: ", f->url.authority);
    va_start(ap, fmt);
    vsnprintf(f->err + n, sizeof f->err - (size_t)n, fmt, ap);
    va_end(ap);
    complete(f, status);
}

static void on_timeout(uv_timer_t *t)
{
    struct mg_fetch *f = t->data;
    failf(f, MG_ETIMEDOUT, "no complete response within %" PRIu64 " ms", f->timeout_ms);
}

static int on_head(void *ud, const struct mg_http_head *h)
{
    struct mg_fetch *f = ud;
    f->http_status = h->status;
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct mg_http_header *hd = &h->headers[i];
        if (mg_str_ieq(hd->name, hd->name_len, "content-type")) {
            size_t n = MG_MIN(hd->value_len, sizeof f->content_type - 1);
            memcpy(f->content_type, hd->value, n);
            f->content_type[n] = '\0';
        }
    }
    if (h->has_content_length && h->content_length > f->max_bytes) {
        /* Cancels the client request; it stops on the -1 without a callback. */
        failf(f, MG_ELIMIT, "response body larger than %zu bytes", f->max_bytes);
        return -1;
    }
    return 0;
}

static void on_body(void *ud, const char *data, size_t len)
{
    struct mg_fetch *f = ud;
    if (f->resp.len + len > f->max_bytes) {
        failf(f, MG_ELIMIT, "response body larger than %zu bytes", f->max_bytes);
        return;
    }
    MG_ASSERT(mg_buf_append(&f->resp, data, len) == 0);
}

static void try_connect(struct mg_fetch *f);

static void on_done(void *ud, int status)
{
    struct mg_fetch *f = ud;
    f->creq = NULL;
    if (f->done)
        return;
    switch (status) {
    case 0: complete(f, 0); return;
    case MG_EIO:
        /* Not a single response byte: another vetted address may answer.
         * Only for GET, which may be repeated (RFC 9110 §9.2.2). */
        if (f->is_get && f->addr_i + 1 < f->n_addrs) {
            f->addr_i++;
            mg_buf_reset(&f->resp);
            try_connect(f);
            return;
        }
        failf(f, MG_EIO, "cannot connect");
        return;
    case MG_ETIMEDOUT:
        /* The client's own connect/first-byte timers run with the same budget
         * and may fire a moment before ours: same cause, same message. */
        failf(f, MG_ETIMEDOUT, "no complete response within %" PRIu64 " ms", f->timeout_ms);
        return;
    case MG_ETLS:
        failf(f, MG_ETLS, "TLS handshake failed (certificate not trusted, or not for %s)",
              f->url.host);
        return;
    case MG_EPROTO: failf(f, MG_EPROTO, "invalid HTTP response"); return;
    case MG_ECLOSED: failf(f, MG_ECLOSED, "connection closed mid-response"); return;
    default:
        failf(f, status < 0 ? status : MG_EIO, "request failed: %s", mg_strstatus(status));
        return;
    }
}

static const struct mg_client_cbs client_cbs = {
    .on_head = on_head,
    .on_body = on_body,
    .on_done = on_done,
};

static void try_connect(struct mg_fetch *f)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = (const struct sockaddr *)&f->addrs[f->addr_i];
    addr_name(sa, ip, sizeof ip);
    uint64_t now = mg_now_ms();
    uint64_t left = f->deadline_ms > now ? f->deadline_ms - now : 1;
    struct mg_client_target t = {
        .host = ip,
        .port = f->url.port,
        .ssl_ctx = f->url.https ? f->ssl_ctx : NULL,
        .sni = f->url.host, /* the name vetted addresses are verified against */
        .verify = true,
    };
    struct mg_client_opts o = {
        .connect_timeout_ms = left, .first_byte_timeout_ms = left, .wipe = f->sensitive};
    int rc = mg_client_request(f->pool, &t, f->head, f->head_len, f->body, f->body_len, &o,
                               &client_cbs, f, &f->creq);
    if (rc < 0) {
        f->creq = NULL;
        on_done(f, rc);
    }
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct resolve *rs = (struct resolve *)gai;
    struct mg_fetch *f = rs->f;
    free(rs);
    if (f == NULL) { /* the fetch ended meanwhile */
        uv_freeaddrinfo(res);
        return;
    }
    f->resolving = NULL;
    f->n_addrs = 0;
    for (struct addrinfo *ai = status == 0 ? res : NULL; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (f->block_private && !mg_fetch_addr_is_public(ai->ai_addr)) {
            /* One bad address is enough: a resolver answering with both a
             * public and a private address is how rebinding attacks start. */
            char ip[INET6_ADDRSTRLEN];
            addr_name(ai->ai_addr, ip, sizeof ip);
            uv_freeaddrinfo(res);
            failf(f, MG_EDENIED, "refused: %s resolves to %s, which is not a public address",
                  f->url.host, ip);
            return;
        }
        if (f->n_addrs < MG_FETCH_MAX_ADDRS)
            memcpy(&f->addrs[f->n_addrs++], ai->ai_addr,
                   ai->ai_family == AF_INET ? sizeof(struct sockaddr_in)
                                            : sizeof(struct sockaddr_in6));
    }
    uv_freeaddrinfo(res);
    if (f->n_addrs == 0) {
        failf(f, MG_ENOTFOUND, "cannot resolve %s (%s)", f->url.host,
              status < 0 ? uv_strerror(status) : "no address");
        return;
    }
    for (size_t i = 0; i < f->n_addrs; i++) /* the port comes from the URL */
        if (f->addrs[i].ss_family == AF_INET)
            ((struct sockaddr_in *)&f->addrs[i])->sin_port = htons(f->url.port);
        else
            ((struct sockaddr_in6 *)&f->addrs[i])->sin6_port = htons(f->url.port);
    try_connect(f);
}

/* ---- the request head ---------------------------------------------------------------------- */

/* Grows b to its cap at once, so secrets written into it are never left
 * behind in a block that realloc abandoned. */
static void reserve_whole(struct mg_buf *b)
{
    static const char zeros[4096];
    while (b->len < b->max && mg_buf_append(b, zeros, MG_MIN(sizeof zeros, b->max - b->len)) == 0)
        ;
    mg_buf_reset(b);
}

static bool header_line_ok(const char *line)
{
    const char *colon = strchr(line, ':');
    if (colon == NULL || colon == line)
        return false;
    for (const char *p = line; p < colon; p++) {
        /* RFC 9110 §5.6.2 token characters. */
        unsigned char c = (unsigned char)*p;
        if (!(c > 0x20 && c < 0x7f) || strchr("\"(),/:;<=>?@[\\]{}", c))
            return false;
    }
    for (const char *p = colon + 1; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return false; /* CR, LF, NUL: header injection */
    size_t nl = (size_t)(colon - line);
    return !mg_str_ieq(line, nl, "host") && !mg_str_ieq(line, nl, "content-length") &&
           !mg_str_ieq(line, nl, "transfer-encoding") && !mg_str_ieq(line, nl, "connection");
}

static int build_head(struct mg_fetch *f, const struct mg_fetch_opts *o, const char **why)
{
    struct mg_buf b;
    int rc = 0;
    mg_buf_init(&b, 64 * 1024);
    if (o->sensitive)
        reserve_whole(&b);
    const char *method = f->is_get ? "GET" : "POST";
    mg_buf_appendf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mcpgate\r\n", method,
                   f->url.target, f->url.authority);
    if (o->content_type) {
        bool ok = *o->content_type != '\0';
        for (const char *p = o->content_type; *p; p++)
            ok = ok && (unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f;
        if (!ok) {
            *why = "bad content type";
            rc = MG_EINVAL;
            goto out;
        }
        mg_buf_appendf(&b, "Content-Type: %s\r\n", o->content_type);
    }
    if (!f->is_get) {
        mg_buf_appends(&b, "Content-Length: ");
        mg_buf_append_u64(&b, f->body_len);
        mg_buf_appends(&b, "\r\n");
    }
    for (size_t i = 0; o->headers && o->headers[i]; i++) {
        if (i >= MG_FETCH_MAX_HEADERS || !header_line_ok(o->headers[i])) {
            *why = i >= MG_FETCH_MAX_HEADERS ? "too many request headers"
                                             : "malformed or reserved request header";
            rc = MG_EINVAL;
            goto out;
        }
        mg_buf_appends(&b, o->headers[i]);
        mg_buf_appends(&b, "\r\n");
    }
    if (mg_buf_appends(&b, "\r\n") < 0) {
        *why = "request head too large";
        rc = MG_ELIMIT;
        goto out;
    }
    f->head = mg_buf_steal(&b, &f->head_len);
out:
    if (b.data && o->sensitive)
        OPENSSL_cleanse(b.data, b.cap);
    mg_buf_fini(&b);
    return rc;
}

/* ---- public -------------------------------------------------------------------------------- */

static SSL_CTX *default_ctx;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

/* Loading the system CA store costs milliseconds: once per process. */
static void load_default_ctx(void)
{
    struct mg_buf err;
    mg_buf_init(&err, 256);
    default_ctx = mg_tls_client_ctx_new(NULL, &err);
    mg_buf_fini(&err);
}

int mg_fetch(struct mg_client_pool *pool, const char *url, const struct mg_fetch_opts *opts,
             mg_fetch_cb cb, void *ud, struct mg_fetch **out, const char **why)
{
    static const struct mg_fetch_opts none = {0};
    struct mg_fetch *f = NULL;
    const char *reason = NULL;
    int rc = MG_EINVAL;
    if (out)
        *out = NULL;
    if (opts == NULL)
        opts = &none;
    if (pool == NULL || cb == NULL) {
        reason = "bad arguments";
        goto fail;
    }
    f = mg_xcalloc(1, sizeof *f);
    if (mg_fetch_url_parse(url, &f->url, &reason) < 0)
        goto fail;
    if (!f->url.https && !opts->allow_http) {
        reason = "plain http:// is not allowed; use https://";
        rc = MG_EDENIED;
        goto fail;
    }
    if (opts->method == NULL || strcmp(opts->method, "GET") == 0) {
        f->is_get = true;
    } else if (strcmp(opts->method, "POST") != 0) {
        reason = "method must be GET or POST";
        goto fail;
    }
    if (f->is_get && opts->body_len > 0) {
        reason = "a GET has no body";
        goto fail;
    }
    f->sensitive = opts->sensitive;
    if (opts->body_len) {
        f->body = mg_xmalloc(opts->body_len);
        memcpy(f->body, opts->body, opts->body_len);
        f->body_len = opts->body_len;
    }
    if ((rc = build_head(f, opts, &reason)) < 0)
        goto fail;
    if (f->url.https) {
        f->ssl_ctx = opts->ssl_ctx;
        if (f->ssl_ctx) {
            /* Held for the fetch: its owner (a provider being reloaded away)
             * may let go of it before the connection is made. */
            SSL_CTX_up_ref(f->ssl_ctx);
            f->own_ctx = f->ssl_ctx;
        } else if (opts->ca_file) {
            struct mg_buf err;
            mg_buf_init(&err, 256);
            f->ssl_ctx = f->own_ctx = mg_tls_client_ctx_new(opts->ca_file, &err);
            mg_buf_fini(&err);
        } else if (f->ssl_ctx == NULL) {
            pthread_once(&default_once, load_default_ctx);
            f->ssl_ctx = default_ctx;
        }
        if (f->ssl_ctx == NULL) {
            reason = "cannot load the CA certificates";
            rc = MG_ETLS;
            goto fail;
        }
    }
    f->pool = pool;
    f->block_private = opts->block_private;
    f->timeout_ms = opts->timeout_ms ? opts->timeout_ms : MG_FETCH_DEFAULT_TIMEOUT;
    f->deadline_ms = mg_now_ms() + f->timeout_ms;
    f->max_bytes = opts->max_bytes ? opts->max_bytes : MG_FETCH_DEFAULT_MAX_BODY;
    mg_buf_init(&f->resp, f->max_bytes + 1);
    if (f->sensitive)
        reserve_whole(&f->resp);
    f->cb = cb;
    f->ud = ud;

    /* Resolve even IP literals: the same path, the same vetting. */
    struct resolve *rs = mg_xcalloc(1, sizeof *rs);
    rs->f = f;
    char port[8];
    snprintf(port, sizeof port, "%u", f->url.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(pool->loop, &rs->gai, on_resolved, f->url.host, port, &hints) < 0) {
        free(rs);
        reason = "cannot start name resolution";
        rc = MG_EIO;
        goto fail;
    }
    f->resolving = rs;
    uv_timer_init(pool->loop, &f->timer);
    f->timer.data = f;
    uv_update_time(pool->loop); /* the loop's clock may be an iteration old */
    uv_timer_start(&f->timer, on_timeout, f->timeout_ms, 0);
    if (out)
        *out = f;
    return 0;
fail:
    if (f) {
        wipe_free(f->head, f->head_len, opts->sensitive);
        wipe_free(f->body, f->body_len, opts->sensitive);
        SSL_CTX_free(f->own_ctx);
        free(f);
    }
    if (why)
        *why = reason;
    return rc;
}

void mg_fetch_cancel(struct mg_fetch *f)
{
    if (f == NULL || f->done)
        return;
    teardown(f);
}
