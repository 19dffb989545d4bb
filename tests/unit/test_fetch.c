/* Unit tests for src/net/fetch: the address classifier over a table of edge
 * addresses in both families, strict URL parsing, and real fetches on a libuv
 * loop against a small HTTP(S) server on a thread: success, POST, a 3xx that
 * is not followed, size limits (declared and streamed), the total timeout
 * against a server that never answers, a closed port, the SSRF guard refusing
 * 127.0.0.1 and localhost before connecting, http:// refused unless allowed,
 * header injection, cancellation, and TLS verified against the host name. */
#include "net/fetch.h"
#include "net/stream.h"
#include "net/tls.h"
#include "tap.h"
#include "testsrv.h"

#include <ftw.h>
#include <sys/un.h>

/* ---- the classifier ---- */

static const struct {
    const char *ip;
    bool pub;
} addr_table[] = {
    /* IPv4 public, including the addresses just outside every blocked range */
    {"1.1.1.1", true},
    {"8.8.8.8", true},
    {"1.0.0.0", true},
    {"9.255.255.255", true},
    {"11.0.0.0", true},
    {"100.63.255.255", true},
    {"100.128.0.0", true},
    {"126.255.255.255", true},
    {"128.0.0.0", true},
    {"169.253.255.255", true},
    {"169.255.0.0", true},
    {"172.15.255.255", true},
    {"172.32.0.0", true},
    {"191.255.255.255", true},
    {"192.0.1.255", true},
    {"192.0.3.0", true},
    {"192.88.98.255", true},
    {"192.88.100.0", true},
    {"192.167.255.255", true},
    {"192.169.0.0", true},
    {"198.17.255.255", true},
    {"198.20.0.0", true},
    {"198.51.99.255", true},
    {"198.51.101.0", true},
    {"203.0.112.255", true},
    {"203.0.114.0", true},
    {"223.255.255.255", true},
    /* IPv4 not public */
    {"0.0.0.0", false},
    {"0.255.255.255", false},
    {"10.0.0.0", false},
    {"10.255.255.255", false},
    {"100.64.0.0", false},
    {"100.127.255.255", false},
    {"127.0.0.1", false},
    {"127.255.255.254", false},
    {"169.254.0.0", false},
    {"169.254.169.254", false}, /* cloud metadata */
    {"169.254.255.255", false},
    {"172.16.0.0", false},
    {"172.31.255.255", false},
    {"192.0.0.0", false},
    {"192.0.0.255", false},
    {"192.0.2.1", false},
    {"192.88.99.1", false},
    {"192.168.0.1", false},
    {"192.168.255.255", false},
    {"198.18.0.0", false},
    {"198.19.255.255", false},
    {"198.51.100.7", false},
    {"203.0.113.9", false},
    {"224.0.0.1", false},
    {"239.255.255.255", false},
    {"240.0.0.1", false},
    {"255.255.255.254", false},
    {"255.255.255.255", false},
    /* IPv6 public */
    {"2001:4860:4860::8888", true},
    {"2606:4700:4700::1111", true},
    {"2a00:1450:4001::1", true},
    {"2000::1", true},
    {"3fff:1000::1", true},                         /* just past 3fff::/20 */
    {"2001:db9::1", true},                          /* just past 2001:db8::/32 */
    {"2001:2:1::1", true},                          /* just past 2001:2::/48 */
    {"2001:1::1", true},                            /* PCP anycast, globally reachable */
    {"::ffff:8.8.8.8", true},                       /* IPv4-mapped public */
    {"::ffff:0:8.8.8.8", true},                     /* IPv4-translated public */
    {"64:ff9b::808:808", true},                     /* NAT64 of a public address */
    {"2002:808:808::1", true},                      /* 6to4 of a public address */
    {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", true}, /* Teredo: 65.54.227.120, client 8.8.8.8 */
    /* IPv6 not public */
    {"::", false},
    {"::1", false},
    {"::ffff:127.0.0.1", false},
    {"::ffff:10.1.2.3", false},
    {"::ffff:169.254.169.254", false},
    {"::ffff:0.0.0.0", false},
    {"::ffff:255.255.255.255", false},
    {"::ffff:100.64.0.1", false},
    {"::ffff:0:127.0.0.1", false}, /* IPv4-translated */
    {"::127.0.0.1", false},        /* IPv4-compatible (deprecated) */
    {"::8.8.8.8", false},          /* IPv4-compatible: never public */
    {"::2", false},
    {"64:ff9b::7f00:1", false},    /* NAT64 of 127.0.0.1 */
    {"64:ff9b::a00:1", false},     /* NAT64 of 10.0.0.1 */
    {"64:ff9b::c0a8:101", false},  /* NAT64 of 192.168.1.1 */
    {"64:ff9b:1::808:808", false}, /* local-use NAT64 (RFC 8215) */
    {"100::1", false},             /* discard-only */
    {"2001:db8::1", false},
    {"2001:db8:ffff:ffff::1", false},
    {"2001:2::1", false},
    {"2001:10::1", false},
    {"2001:20::1", false},
    {"2001:2f:ffff::1", false},
    {"3fff::1", false},
    {"3fff:fff::1", false},
    {"2002:7f00:1::1", false},                       /* 6to4 of 127.0.0.1 */
    {"2002:a00:1::1", false},                        /* 6to4 of 10.0.0.1 */
    {"2002:c0a8:101::1", false},                     /* 6to4 of 192.168.1.1 */
    {"2002:a9fe:a9fe::1", false},                    /* 6to4 of 169.254.169.254 */
    {"2001:0:4136:e378:8000:63bf:f5ff:fffe", false}, /* Teredo client 10.0.0.1 */
    {"2001:0:7f00:1:8000:63bf:f7f7:f7f7", false},    /* Teredo server 127.0.0.1 */
    {"2001:0:4136:e378:8000:63bf:3fff:fdd2", false}, /* RFC 4380 example: client 192.0.2.45 */
    {"fc00::1", false},
    {"fd12:3456:789a::1", false},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"fe80::1", false},
    {"febf:ffff::1", false},
    {"fec0::1", false}, /* site-local (deprecated) */
    {"feff::1", false},
    {"ff02::1", false},
    {"ff0e::101", false},
    {"5f00::1", false}, /* SRv6 SIDs */
    {"1::1", false},    /* unallocated, outside 2000::/3 */
    {"4000::1", false},
    {"e000::1", false},
    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"4000::", false},
};

static void test_classifier(void)
{
    size_t bad = 0;
    for (size_t i = 0; i < MG_ARRAY_LEN(addr_table); i++) {
        struct sockaddr_storage ss = {0};
        if (strchr(addr_table[i].ip, ':')) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            a->sin6_family = AF_INET6;
            MG_ASSERT(inet_pton(AF_INET6, addr_table[i].ip, &a->sin6_addr) == 1);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            a->sin_family = AF_INET;
            MG_ASSERT(inet_pton(AF_INET, addr_table[i].ip, &a->sin_addr) == 1);
        }
        bool got = mg_fetch_addr_is_public((struct sockaddr *)&ss);
        TAP_OK(got == addr_table[i].pub, "%s is %s", addr_table[i].ip,
               addr_table[i].pub ? "public" : "not public");
        bad += got != addr_table[i].pub;
    }
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    TAP_OK(!mg_fetch_addr_is_public((struct sockaddr *)&un), "AF_UNIX is not public");
    TAP_OK(!mg_fetch_addr_is_public(NULL), "NULL is not public");
    TAP_IS_INT(bad, 0, "every classifier row agrees");
}

/* ---- URLs ---- */

static void test_urls(void)
{
    static struct mg_fetch_url u;
    const char *why = NULL;

    TAP_IS_INT(mg_fetch_url_parse("https://idp.example.com", &u, &why), 0, "bare https origin");
    TAP_OK(u.https && u.port == 443 && strcmp(u.host, "idp.example.com") == 0 && !u.host_is_ip,
           "https, port 443, host");
    TAP_IS_STR(u.target, "/", "empty path becomes /");
    TAP_IS_STR(u.authority, "idp.example.com", "default port not in Host");

    TAP_IS_INT(mg_fetch_url_parse("HTTPS://IdP.Example.COM:8443/a/b?c=d&e=%2F#frag", &u, &why), 0,
               "mixed case, port, path, query, fragment");
    TAP_IS_STR(u.host, "idp.example.com", "host lowercased");
    TAP_IS_INT(u.port, 8443, "port");
    TAP_IS_STR(u.authority, "idp.example.com:8443", "Host carries a non-default port");
    TAP_IS_STR(u.target, "/a/b?c=d&e=%2F", "fragment dropped");

    TAP_IS_INT(mg_fetch_url_parse("http://127.0.0.1:80/x", &u, &why), 0, "IPv4 literal");
    TAP_OK(!u.https && u.host_is_ip && u.port == 80, "http, IP, port 80");
    TAP_IS_STR(u.authority, "127.0.0.1", "explicit default port omitted");

    TAP_IS_INT(mg_fetch_url_parse("https://[::1]:9000/p", &u, &why), 0, "IPv6 literal");
    TAP_IS_STR(u.host, "::1", "IPv6 host without brackets");
    TAP_IS_STR(u.authority, "[::1]:9000", "IPv6 Host bracketed");
    TAP_OK(u.host_is_ip, "IPv6 literal is an IP");

    TAP_IS_INT(mg_fetch_url_parse("https://h?x=1", &u, &why), 0, "query without path");
    TAP_IS_STR(u.target, "/?x=1", "path / inserted before the query");

    static const char *const bad[] = {
        "ftp://h/",
        "//h/",
        "h/x",
        "https://",
        "https:///x",
        "https://user@h/",
        "https://a:b@h/",
        "https://h@evil.example/",
        "https://h:0/",
        "https://h:65536/",
        "https://h:/",
        "https://h:12a/",
        "https://h:000443x/",
        "https://[::1/",
        "https://[fe80::1%25eth0]/",
        "https://[not-v6]/",
        "https://h/ a",
        "https://h/\r\nX: y",
        "https://h\\@evil/",
        "https://h/\xc3\xa9",
        "https://exa mple/",
        "https://h%41/",
        "https://h!/",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        why = NULL;
        char shown[64];
        size_t k = 0;
        for (const char *c = bad[i]; *c && k + 5 < sizeof shown; c++)
            k += (size_t)snprintf(shown + k, sizeof shown - k,
                                  (unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e ? "\\x%02x"
                                                                                       : "%c",
                                  (unsigned char)*c);
        TAP_IS_INT(mg_fetch_url_parse(bad[i], &u, &why), MG_EINVAL, "refused: %s (%s)", shown,
                   why ? why : "?");
        TAP_OK(why != NULL && u.host[0] == '\0', "with a reason and a cleared result");
    }
    char *big = mg_xmalloc(MG_FETCH_URL_MAX + 16);
    memcpy(big, "https://h/", 10);
    memset(big + 10, 'a', MG_FETCH_URL_MAX);
    big[MG_FETCH_URL_MAX + 10] = '\0';
    TAP_IS_INT(mg_fetch_url_parse(big, &u, &why), MG_EINVAL, "URL over the length limit");
    free(big);
}

/* ---- fetches ---- */

static char last_host[256], last_accept[256], last_ctype[256], last_method[16];
static char last_body[1024];

static int handler(void *ud, const struct tsrv_req *r, struct mg_buf *out)
{
    MG_UNUSED(ud);
    char v[256];
    snprintf(last_host, sizeof last_host, "%s", tsrv_header(r, "Host", v, sizeof v) ? v : "");
    snprintf(last_accept, sizeof last_accept, "%s", tsrv_header(r, "Accept", v, sizeof v) ? v : "");
    snprintf(last_ctype, sizeof last_ctype, "%s",
             tsrv_header(r, "Content-Type", v, sizeof v) ? v : "");
    snprintf(last_method, sizeof last_method, "%s", r->method);
    snprintf(last_body, sizeof last_body, "%.*s", (int)r->body_len, r->body);
    if (strcmp(r->path, "/hello") == 0) {
        tsrv_json(out, 200, "{\"hello\":\"world\"}");
    } else if (strcmp(r->path, "/echo") == 0) {
        tsrv_reply(out, 201, "text/plain", r->body, r->body_len);
    } else if (strcmp(r->path, "/redirect") == 0) {
        mg_buf_appends(out, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
                            "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (strncmp(r->path, "/size/", 6) == 0) {
        size_t n = strtoul(r->path + 6, NULL, 10);
        char *b = mg_xmalloc(n + 1);
        memset(b, 'z', n);
        tsrv_reply(out, 200, "text/plain", b, n);
        free(b);
    } else if (strncmp(r->path, "/chunked/", 9) == 0) {
        /* No Content-Length: the limit must catch the streamed body. */
        size_t n = strtoul(r->path + 9, NULL, 10);
        mg_buf_appends(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                            "Connection: close\r\n\r\n");
        while (n > 0) {
            size_t c = MG_MIN(n, (size_t)500);
            mg_buf_appendf(out, "%zx\r\n", c);
            for (size_t i = 0; i < c; i++)
                mg_buf_append(out, "y", 1);
            mg_buf_appends(out, "\r\n");
            n -= c;
        }
        mg_buf_appends(out, "0\r\n\r\n");
    } else if (strcmp(r->path, "/hold") == 0) {
        return TSRV_HOLD;
    } else {
        tsrv_reply(out, 404, "text/plain", "nope", 4);
    }
    return TSRV_REPLY;
}

static uv_loop_t loop;
static struct mg_client_pool pool;

struct outcome {
    bool called;
    int n_calls;
    int status, http;
    char error[400], ctype[128];
    char *body;
    size_t body_len;
    uint64_t ms;
};

static void on_fetched(void *ud, const struct mg_fetch_result *r)
{
    struct outcome *o = ud;
    o->called = true;
    o->n_calls++;
    o->status = r->status;
    o->http = r->http_status;
    snprintf(o->error, sizeof o->error, "%s", r->error);
    snprintf(o->ctype, sizeof o->ctype, "%s", r->content_type);
    free(o->body);
    o->body = mg_xmalloc(r->body_len + 1);
    memcpy(o->body, r->body, r->body_len + 1);
    o->body_len = r->body_len;
}

/* Starts a fetch and runs the loop until its callback. Returns mg_fetch's status. */
static int run(const char *url, const struct mg_fetch_opts *opts, struct outcome *o)
{
    free(o->body);
    memset(o, 0, sizeof *o);
    uint64_t t0 = mg_now_ms();
    const char *why = NULL;
    int rc = mg_fetch(&pool, url, opts, on_fetched, o, NULL, &why);
    if (rc < 0) {
        snprintf(o->error, sizeof o->error, "%s", why ? why : "");
        return rc;
    }
    while (!o->called)
        uv_run(&loop, UV_RUN_ONCE);
    o->ms = mg_now_ms() - t0;
    return 0;
}

static void test_fetches(void)
{
    struct tsrv srv, silent;
    struct outcome o = {0};
    char url[256];
    MG_ASSERT(tsrv_start(&srv, "127.0.0.1", NULL, handler, NULL, true) == 0);
    MG_ASSERT(tsrv_start(&silent, "127.0.0.1", NULL, handler, NULL, false) == 0);
    struct mg_fetch_opts http = {.allow_http = true, .timeout_ms = 5000};

    /* Success. */
    const char *const accept[] = {"Accept: application/json", NULL};
    struct mg_fetch_opts get = http;
    get.headers = accept;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hello", srv.port);
    TAP_IS_INT(run(url, &get, &o), 0, "GET starts");
    TAP_IS_INT(o.status, 0, "GET succeeds (%s)", o.error);
    TAP_IS_INT(o.http, 200, "HTTP 200");
    TAP_IS_STR(o.body, "{\"hello\":\"world\"}", "whole body");
    TAP_IS_INT(o.body_len, 17, "body length");
    TAP_IS_STR(o.ctype, "application/json", "content type");
    TAP_IS_STR(o.error, "", "no error string on success");
    char want_host[64];
    snprintf(want_host, sizeof want_host, "127.0.0.1:%u", srv.port);
    TAP_IS_STR(last_host, want_host, "Host header names host and port");
    TAP_IS_STR(last_accept, "application/json", "extra header sent");
    TAP_IS_STR(last_method, "GET", "method GET");

    /* POST with a body. */
    struct mg_fetch_opts post = http;
    post.method = "POST";
    post.body = "a=1&b=2";
    post.body_len = 7;
    post.content_type = "application/x-www-form-urlencoded";
    post.sensitive = true;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/echo", srv.port);
    TAP_IS_INT(run(url, &post, &o), 0, "POST starts");
    TAP_OK(o.status == 0 && o.http == 201, "POST answered 201");
    TAP_IS_STR(o.body, "a=1&b=2", "body echoed");
    TAP_IS_STR(last_ctype, "application/x-www-form-urlencoded", "content type sent");
    TAP_IS_STR(last_method, "POST", "method POST");
    TAP_IS_STR(last_body, "a=1&b=2", "server saw the body");

    /* Redirects are results, not followed. */
    int before = atomic_load(&srv.n_requests);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/redirect", srv.port);
    run(url, &http, &o);
    TAP_OK(o.status == 0 && o.http == 302, "a 302 is handed back");
    TAP_IS_INT(atomic_load(&srv.n_requests) - before, 1, "and not followed");
    TAP_IS_INT(o.body_len, 0, "empty body");
    snprintf(url, sizeof url, "http://127.0.0.1:%u/missing", srv.port);
    run(url, &http, &o);
    TAP_OK(o.status == 0 && o.http == 404 && strcmp(o.body, "nope") == 0, "404 with its body");

    /* Size limits. */
    struct mg_fetch_opts small = http;
    small.max_bytes = 1000;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/size/1000", srv.port);
    run(url, &small, &o);
    TAP_OK(o.status == 0 && o.body_len == 1000, "exactly max_bytes is fine");
    snprintf(url, sizeof url, "http://127.0.0.1:%u/size/1001", srv.port);
    run(url, &small, &o);
    TAP_IS_INT(o.status, MG_ELIMIT, "Content-Length over max_bytes: MG_ELIMIT");
    TAP_OK(strstr(o.error, "larger than 1000 bytes") != NULL, "says so: %s", o.error);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/chunked/5000", srv.port);
    run(url, &small, &o);
    TAP_IS_INT(o.status, MG_ELIMIT, "chunked body over max_bytes: MG_ELIMIT");
    snprintf(url, sizeof url, "http://127.0.0.1:%u/chunked/900", srv.port);
    run(url, &small, &o);
    TAP_OK(o.status == 0 && o.body_len == 900, "chunked body under the limit");
    snprintf(url, sizeof url, "http://127.0.0.1:%u/size/2000000", srv.port);
    run(url, &http, &o);
    TAP_IS_INT(o.status, MG_ELIMIT, "default limit is 1 MiB");

    /* A server that accepts nothing and says nothing: the total timeout. */
    struct mg_fetch_opts quick = http;
    quick.timeout_ms = 300;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", silent.port);
    run(url, &quick, &o);
    TAP_IS_INT(o.status, MG_ETIMEDOUT, "silent server: MG_ETIMEDOUT");
    TAP_OK(o.ms >= 250 && o.ms < 2000, "after about the timeout (%llu ms)",
           (unsigned long long)o.ms);
    TAP_OK(strstr(o.error, "within 300 ms") != NULL, "reason: %s", o.error);
    /* One that reads the request and never answers. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hold", srv.port);
    run(url, &quick, &o);
    TAP_IS_INT(o.status, MG_ETIMEDOUT, "server holding the response: MG_ETIMEDOUT");

    /* Nobody listening. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", tsrv_closed_port());
    run(url, &http, &o);
    TAP_IS_INT(o.status, MG_EIO, "closed port: MG_EIO");
    TAP_OK(o.ms < 2000 && strstr(o.error, "cannot connect") != NULL, "at once, clearly: %s",
           o.error);

    /* SSRF guard. */
    struct mg_fetch_opts guard = http;
    guard.block_private = true;
    before = atomic_load(&srv.n_requests);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hello", srv.port);
    TAP_IS_INT(run(url, &guard, &o), 0, "guarded fetch starts");
    TAP_IS_INT(o.status, MG_EDENIED, "127.0.0.1 refused");
    TAP_OK(strstr(o.error, "127.0.0.1") && strstr(o.error, "not a public address"),
           "reason names the address: %s", o.error);
    snprintf(url, sizeof url, "http://localhost:%u/hello", srv.port);
    run(url, &guard, &o);
    TAP_IS_INT(o.status, MG_EDENIED, "localhost refused");
    TAP_OK(strstr(o.error, "localhost resolves to") != NULL, "reason: %s", o.error);
    snprintf(url, sizeof url, "http://[::ffff:127.0.0.1]:%u/hello", srv.port);
    run(url, &guard, &o);
    TAP_IS_INT(o.status, MG_EDENIED, "IPv4-mapped loopback refused");
    snprintf(url, sizeof url, "http://2130706433:%u/hello", srv.port);
    run(url, &guard, &o);
    TAP_OK(o.status == MG_EDENIED || o.status == MG_ENOTFOUND,
           "decimal 127.0.0.1 refused or unresolved (%d)", o.status);
    TAP_IS_INT(atomic_load(&srv.n_requests) - before, 0, "no refused fetch reached the server");
    snprintf(url, sizeof url, "http://localhost:%u/hello", srv.port);
    run(url, &http, &o);
    TAP_OK(o.status == 0 && o.http == 200, "localhost without the guard works");

    /* Refused before anything starts: the callback never runs. */
    struct mg_fetch_opts https_only = {.timeout_ms = 1000};
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hello", srv.port);
    TAP_IS_INT(run(url, &https_only, &o), MG_EDENIED, "http:// refused without allow_http");
    TAP_OK(!o.called && strstr(o.error, "http://") != NULL, "no callback, reason: %s", o.error);
    const char *const inject[] = {"X-A: 1\r\nX-B: 2", NULL};
    struct mg_fetch_opts bad = http;
    bad.headers = inject;
    TAP_IS_INT(run(url, &bad, &o), MG_EINVAL, "CR LF in a header refused");
    const char *const host[] = {"Host: evil", NULL};
    bad.headers = host;
    TAP_IS_INT(run(url, &bad, &o), MG_EINVAL, "a Host header refused");
    const char *const te[] = {"transfer-encoding: chunked", NULL};
    bad.headers = te;
    TAP_IS_INT(run(url, &bad, &o), MG_EINVAL, "a Transfer-Encoding header refused");
    bad = http;
    bad.method = "DELETE";
    TAP_IS_INT(run(url, &bad, &o), MG_EINVAL, "only GET and POST");
    TAP_IS_INT(run("https://user@h/", &http, &o), MG_EINVAL, "bad URL refused");
    TAP_OK(!o.called, "no callback for any of them");

    /* Cancel: the callback never runs and nothing is left behind. */
    struct mg_fetch *f = NULL;
    struct outcome oc = {0};
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", silent.port);
    TAP_IS_INT(mg_fetch(&pool, url, &quick, on_fetched, &oc, &f, NULL), 0, "fetch to cancel");
    mg_fetch_cancel(f);
    TAP_IS_INT(mg_fetch(&pool, url, &quick, on_fetched, &oc, &f, NULL), 0, "another");
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    mg_fetch_cancel(f); /* after resolution, while connecting */
    uint64_t t0 = mg_now_ms();
    while (mg_now_ms() - t0 < 500)
        uv_run(&loop, UV_RUN_NOWAIT);
    TAP_OK(!oc.called, "cancelled fetches never call back");
    free(oc.body);

    free(o.body);
    tsrv_stop(&silent);
    tsrv_stop(&srv);
}

/* ---- TLS ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    MG_UNUSED(st);
    MG_UNUSED(flag);
    MG_UNUSED(ftw);
    return remove(path);
}

static void test_tls(void)
{
    char dir[] = "/tmp/mg-fetch-XXXXXX";
    char *cert = NULL, *key = NULL, url[256];
    struct mg_buf err;
    struct outcome o = {0};
    mg_buf_init(&err, 1024);
    MG_ASSERT(mkdtemp(dir) != NULL);
    MG_ASSERT(mg_tls_ensure_self_signed(dir, &cert, &key, &err) == 0);
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    MG_ASSERT(SSL_CTX_use_certificate_chain_file(sctx, cert) == 1);
    MG_ASSERT(SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) == 1);
    struct tsrv srv, other;
    MG_ASSERT(tsrv_start(&srv, "127.0.0.1", sctx, handler, NULL, true) == 0);
    /* The certificate names localhost, 127.0.0.1 and ::1, not 127.0.0.2. */
    bool have_other = tsrv_start(&other, "127.0.0.2", sctx, handler, NULL, true) == 0;

    struct mg_fetch_opts trust = {.ca_file = cert, .timeout_ms = 5000};
    snprintf(url, sizeof url, "https://localhost:%u/hello", srv.port);
    run(url, &trust, &o);
    TAP_IS_INT(o.status, 0, "https://localhost with the CA file (%s)", o.error);
    TAP_OK(o.http == 200 && strcmp(o.body, "{\"hello\":\"world\"}") == 0, "body over TLS");
    snprintf(url, sizeof url, "https://127.0.0.1:%u/hello", srv.port);
    run(url, &trust, &o);
    TAP_OK(o.status == 0 && o.http == 200, "https://127.0.0.1 verified by IP SAN (%s)", o.error);

    SSL_CTX *cctx = mg_tls_client_ctx_new(cert, &err);
    struct mg_fetch_opts ctx = {.ssl_ctx = cctx, .timeout_ms = 5000};
    snprintf(url, sizeof url, "https://localhost:%u/hello", srv.port);
    run(url, &ctx, &o);
    TAP_OK(o.status == 0 && o.http == 200, "with a caller's SSL_CTX (%s)", o.error);

    struct mg_fetch_opts system = {.timeout_ms = 5000};
    run(url, &system, &o);
    TAP_IS_INT(o.status, MG_ETLS, "self-signed certificate not in the system store: MG_ETLS");
    TAP_OK(strstr(o.error, "TLS") != NULL, "reason: %s", o.error);

    if (have_other) {
        snprintf(url, sizeof url, "https://127.0.0.2:%u/hello", other.port);
        run(url, &trust, &o);
        TAP_IS_INT(o.status, MG_ETLS, "trusted certificate for another name: MG_ETLS");
        tsrv_stop(&other);
    } else {
        printf("# skipped: cannot bind 127.0.0.2\n");
    }

    struct mg_fetch_opts missing = {.ca_file = "/nonexistent/ca.pem"};
    const char *why = NULL;
    TAP_IS_INT(mg_fetch(&pool, url, &missing, on_fetched, &o, NULL, &why), MG_ETLS,
               "unreadable CA file refused at once");

    free(o.body);
    tsrv_stop(&srv);
    mg_client_pool_close(&pool);
    uv_run(&loop, UV_RUN_NOWAIT);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    free(cert);
    free(key);
    mg_buf_fini(&err);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    test_classifier();
    test_urls();
    uv_loop_init(&loop);
    mg_client_pool_init(&pool, &loop, 65536);
    test_fetches();
    test_tls();
    mg_client_pool_close(&pool);
    mg_stream_loop_fini();
    uv_run(&loop, UV_RUN_DEFAULT);
    TAP_IS_INT(uv_loop_close(&loop), 0, "the loop closes with nothing left open");
    return tap_done();
}
