/* Unit tests for route selection (src/gw/gw): Host header parsing (ports,
 * IPv6 literals, case, trailing dot, bad characters), the request-path
 * safety check (dot segments, encoded separators, backslashes), route
 * selection by host, port and longest segment-boundary prefix with its
 * 403/404 answers, and the upstream target built from a route.
 * */
#include "gw/gw.h"
#include "tap.h"

/* --- mg_gw_parse_host -------------------------------------------------------------------- */

static void host_ok(const char *in, const char *want_host, unsigned want_port)
{
    char host[256] = "";
    uint16_t port = 12345;
    bool ok = mg_gw_parse_host(in, strlen(in), host, sizeof host, &port);
    TAP_OK(ok && strcmp(host, want_host) == 0 && port == want_port, "parse_host \"%s\" -> %s %u",
           in, want_host, want_port);
    if (!(ok && strcmp(host, want_host) == 0 && port == want_port))
        printf("#   ok=%d host=%s port=%u\n", ok, host, port);
}

static void host_bad(const char *in)
{
    char host[256];
    uint16_t port;
    TAP_OK(!mg_gw_parse_host(in, strlen(in), host, sizeof host, &port), "parse_host refuses \"%s\"",
           in);
}

static void test_parse_host(void)
{
    host_ok("h.example", "h.example", 0);
    host_ok("h.example:8443", "h.example", 8443);
    host_ok("H.Example.COM:80", "h.example.com", 80);
    host_ok("h.example.", "h.example", 0);
    host_ok("h.example.:443", "h.example", 443);
    host_ok("127.0.0.1:1", "127.0.0.1", 1);
    host_ok("localhost:65535", "localhost", 65535);
    host_ok("my_host-1", "my_host-1", 0);
    host_ok("[::1]", "::1", 0);
    host_ok("[::1]:8080", "::1", 8080);
    host_ok("[2001:DB8::A]:443", "2001:db8::a", 443);
    host_ok("[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80);

    host_bad("");
    host_bad(":80");
    host_bad("h.example:");
    host_bad("h.example:0");
    host_bad("h.example:65536");
    host_bad("h.example:99999999999999999999999");
    host_bad("h.example:abc");
    host_bad("h.example:-1");
    host_bad("h.example:+80");
    host_bad("h.example: 80");
    host_bad("h.example:80 ");
    host_bad("h.example:80:81");
    host_bad("h example");
    host_bad(" h.example");
    host_bad("user@h.example");
    host_bad("h.example/path");
    host_bad("h.example\\x");
    host_bad("h.example?x");
    host_bad("h.example#x");
    host_bad("h%2eexample");
    host_bad("h.example\t");
    host_bad("[::1");
    host_bad("[]:80");
    host_bad("[::1]x");
    host_bad("[::1]:");
    host_bad("[::1]:0");
    host_bad("[::1 ]:80");
    host_bad("::1");
    {
        static const char nul[] = "h.exa\0mple";
        char host[256];
        uint16_t port;
        TAP_OK(!mg_gw_parse_host(nul, sizeof nul - 1, host, sizeof host, &port),
               "parse_host refuses a NUL inside");
    }
    /* RFC 3986 §3.2.2: brackets hold an IPv6 (or IPvFuture) literal only. */
    {
        char host[256];
        uint16_t port;
        TAP_OK(!mg_gw_parse_host("[h.example]:8443", 16, host, sizeof host, &port),
               "parse_host refuses a bracketed host name \"[h.example]:8443\" "
               "(gw.c:88)");
    }

    /* Length against the caller's buffer. */
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    {
        char host[256];
        uint16_t port;
        TAP_OK(!mg_gw_parse_host(big, 299, host, sizeof host, &port),
               "parse_host: 299 bytes do not fit a 256-byte buffer");
        big[255] = '\0';
        TAP_OK(mg_gw_parse_host(big, 255, host, sizeof host, &port) && strlen(host) == 255,
               "parse_host: 255 bytes fit a 256-byte buffer");
        TAP_OK(!mg_gw_parse_host(big, 255, host, 255, &port),
               "parse_host: 255 bytes do not fit a 255-byte buffer");
    }
    /* Only the given length is read. */
    {
        char host[256];
        uint16_t port;
        TAP_OK(mg_gw_parse_host("h.example:80garbage", 12, host, sizeof host, &port) &&
                   strcmp(host, "h.example") == 0 && port == 80,
               "parse_host honours len");
    }
}

/* --- mg_gw_path_is_safe ------------------------------------------------------------------ */

static void test_path_is_safe(void)
{
    static const char *safe[] = {
        "/",     "/a",        "/a/b",   "/sql/tools", "/a/b/", "/.well-known/x",
        "/..a",  "/a..",      "/a/...", "/a.b/c",     "/%41",  "/%2",
        "/%",    "/a%20b",    "/~user", "/a//b",      "//",    "/%252e%252e",
        "/a/.b", "/a/b..c/d", "/a-b_c", "/A/B",
    };
    static const char *unsafe[] = {
        "",          "a",      "a/b",       "*",       "/.",      "/..",        "/./",
        "/../",      "/a/.",   "/a/..",     "/a/./b",  "/a/../b", "/a/b/../..", "/%2e%2e",
        "/%2E%2E/x", "/a/%2e", "/a/.%2e/b", "/%2e",    "/a%2fb",  "/a%2Fb",     "/a%5cb",
        "/a%5Cb",    "/a\\b",  "\\a",       "/a/\\..", "/a%00b",  "http://x/",  "/a/..\\b",
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(safe); i++)
        TAP_OK(mg_gw_path_is_safe(safe[i]), "path_is_safe accepts \"%s\"", safe[i]);
    for (size_t i = 0; i < MG_ARRAY_LEN(unsafe); i++)
        TAP_OK(!mg_gw_path_is_safe(unsafe[i]), "path_is_safe refuses \"%s\"", unsafe[i]);
    /* Tomcat and Jetty drop ";params" before resolving dot segments, so
     * "/sql/..;/admin" reaches "/admin" on such an upstream. */
    TAP_OK(!mg_gw_path_is_safe("/sql/..;/admin") && !mg_gw_path_is_safe("/sql/.;/x"),
           "path_is_safe refuses dot segments with ;params (gw.c:136)");
}

/* --- selection and upstream target ------------------------------------------------------- */

static struct mg_gw *gw_of(const char *yaml)
{
    struct mg_conf *c = NULL;
    char *err = NULL;
    if (mg_conf_load_string("t.yaml", yaml, strlen(yaml), &c, &err) != 0) {
        printf("# config does not load: %s\n", err ? err : "(no message)");
        free(err);
        return NULL;
    }
    struct mg_gw *gw = NULL;
    struct mg_buf e;
    mg_buf_init(&e, 4096);
    if (mg_gw_new(c, "/tmp/x.sock", "key", &gw, &e) != 0) {
        printf("# mg_gw_new: %s\n", e.data ? e.data : "");
        gw = NULL;
    }
    mg_buf_fini(&e);
    return gw;
}

static const char *sel(const struct mg_gw *gw, const char *host, const char *path, int *status)
{
    *status = 0;
    const struct mg_route_rt *rt = mg_gw_select(gw, host, strlen(host), path, status);
    return rt ? rt->conf->name : NULL;
}

static void expect_route(const struct mg_gw *gw, const char *host, const char *path,
                         const char *want)
{
    int st;
    const char *got = sel(gw, host, path, &st);
    TAP_IS_STR(got, want, "select %s %s -> route %s", host, path, want);
}

static void expect_status(const struct mg_gw *gw, const char *host, const char *path, int want)
{
    int st;
    const char *got = sel(gw, host, path, &st);
    TAP_OK(got == NULL && st == want, "select %s %s -> %d", host, path, want);
    if (!(got == NULL && st == want))
        printf("#   got route %s status %d\n", got ? got : "(none)", st);
}

static void expect_target(const struct mg_gw *gw, const char *route, const char *target,
                          const char *want)
{
    const struct mg_route_rt *rt = mg_gw_route_by_name(gw, route, strlen(route));
    if (rt == NULL) {
        TAP_OK(0, "route %s exists", route);
        return;
    }
    struct mg_buf out;
    mg_buf_init(&out, 4096);
    mg_buf_appends(&out, "GET ");
    mg_gw_upstream_target(rt, target, &out);
    TAP_IS_STR(out.data, want, "upstream target of %s via %s", target, route);
    mg_buf_fini(&out);
}

#define CONF_HEAD "address: 127.0.0.1:8443\ninsecure_server: true\nroutes:\n"

static const char conf1[] = CONF_HEAD "  - name: a\n"
                                      "    from: http://h.example:8443/sql\n"
                                      "    to: http://127.0.0.1:9000/mcp\n"
                                      "  - name: deep\n"
                                      "    from: http://h.example:8443/sql/deep\n"
                                      "    to: http://127.0.0.1:9001\n"
                                      "  - name: tool\n"
                                      "    from: http://h.example:8443/tool\n"
                                      "    to: stdio:/bin/cat\n"
                                      "  - name: other\n"
                                      "    from: http://other.example\n"
                                      "    to: stdio:/bin/cat\n"
                                      "  - name: v6\n"
                                      "    from: http://[::1]:8080/v6\n"
                                      "    to: sse+http://[::1]:9003/sse\n"
                                      "  - name: sec\n"
                                      "    from: https://s.example/sec\n"
                                      "    to: http://127.0.0.1:9004/x/y\n";

static const char conf2[] = CONF_HEAD "  - name: root\n"
                                      "    from: http://h.example:8443\n"
                                      "    to: http://127.0.0.1:9002/base\n"
                                      "  - name: a\n"
                                      "    from: http://h.example:8443/sql/\n"
                                      "    to: http://127.0.0.1:9000/\n";

static void test_select(void)
{
    struct mg_gw *gw = gw_of(conf1);
    TAP_OK(gw != NULL, "config 1 loads");
    if (gw == NULL)
        return;
    expect_route(gw, "h.example:8443", "/sql", "a");
    expect_route(gw, "h.example:8443", "/sql/", "a");
    expect_route(gw, "h.example:8443", "/sql/tools/list", "a");
    expect_route(gw, "h.example:8443", "/sql/deep", "deep");
    expect_route(gw, "h.example:8443", "/sql/deep/x", "deep");
    expect_route(gw, "h.example:8443", "/sql/deeper", "a");
    expect_route(gw, "H.EXAMPLE:8443", "/sql", "a");
    expect_route(gw, "h.example.:8443", "/sql", "a");
    expect_route(gw, "h.example:8443", "/tool", "tool");
    expect_route(gw, "other.example", "/anything", "other");
    expect_route(gw, "other.example:80", "/", "other");
    expect_route(gw, "[::1]:8080", "/v6/x", "v6");
    expect_route(gw, "s.example", "/sec", "sec");
    expect_route(gw, "s.example:443", "/sec/a", "sec");
    expect_status(gw, "h.example:8443", "/sqlx", 404);
    expect_status(gw, "h.example:8443", "/sq", 404);
    expect_status(gw, "h.example:8443", "/SQL", 404);
    expect_status(gw, "h.example:8443", "/", 404);
    expect_status(gw, "h.example:8443", "/toolbox", 404);
    expect_status(gw, "evil.example:8443", "/sql", 403);
    expect_status(gw, "h.example.evil:8443", "/sql", 403);
    expect_status(gw, "h.example:9443", "/sql", 403);
    expect_status(gw, "h.example", "/sql", 403);
    expect_status(gw, "h.example:80", "/sql", 403);
    expect_status(gw, "other.example:8080", "/", 403);
    expect_status(gw, "[::1]", "/v6", 403);
    expect_status(gw, "127.0.0.1:8443", "/sql", 403);
    expect_status(gw, "s.example:80", "/sec", 403);
    expect_status(gw, "h.example:8443 ", "/sql", 400);
    expect_status(gw, "", "/sql", 400);
    expect_status(gw, "u@h.example:8443", "/sql", 400);
    expect_status(gw, "h.example:0", "/sql", 400);

    expect_target(gw, "a", "/sql", "GET /mcp");
    expect_target(gw, "a", "/sql/", "GET /mcp/");
    expect_target(gw, "a", "/sql/tools/call", "GET /mcp/tools/call");
    expect_target(gw, "a", "/sql?x=1&y=/..", "GET /mcp?x=1&y=/..");
    expect_target(gw, "a", "/sql/a?b", "GET /mcp/a?b");
    expect_target(gw, "deep", "/sql/deep", "GET /");
    expect_target(gw, "deep", "/sql/deep/z", "GET /z");
    expect_target(gw, "deep", "/sql/deep?q", "GET /?q");
    expect_target(gw, "tool", "/tool", "GET /");
    expect_target(gw, "tool", "/tool?s=1", "GET /?s=1");
    expect_target(gw, "other", "/", "GET /");
    expect_target(gw, "v6", "/v6", "GET /sse");
    expect_target(gw, "v6", "/v6/m", "GET /sse/m");
    expect_target(gw, "sec", "/sec/z", "GET /x/y/z");
    /* Origin-form has no fragment (RFC 9112 §3.2.1); the path is checked
     * without it, so it must not reach the upstream either. */
    {
        const struct mg_route_rt *ra = mg_gw_route_by_name(gw, "a", 1);
        struct mg_buf out;
        mg_buf_init(&out, 4096);
        mg_gw_upstream_target(ra, "/sql#/../../admin", &out);
        TAP_IS_STR(out.data, "/mcp", "the fragment of a target is not forwarded (gw.c:187)");
        mg_buf_fini(&out);
    }

    const struct mg_route_rt *rt = mg_gw_route_by_name(gw, "a", 1);
    TAP_OK(rt && strcmp(rt->origin, "http://h.example:8443") == 0 && !rt->via_hub,
           "route a: origin and not via hub");
    rt = mg_gw_route_by_name(gw, "v6", 2);
    TAP_OK(rt && strcmp(rt->origin, "http://[::1]:8080") == 0 && rt->via_hub &&
               strcmp(rt->up_host_header, "[::1]:9003") == 0,
           "route v6: bracketed origin and Host, via hub");
    rt = mg_gw_route_by_name(gw, "sec", 3);
    TAP_OK(rt && strcmp(rt->origin, "https://s.example") == 0, "route sec: default port omitted");
    TAP_OK(mg_gw_route_by_name(gw, "nope", 4) == NULL, "route_by_name: unknown");
    TAP_OK(mg_gw_route_by_name(gw, "ab", 1) != NULL, "route_by_name honours len");
    mg_gw_ref(gw);
    mg_gw_unref(gw);
    TAP_OK(mg_gw_route_by_name(gw, "a", 1) != NULL, "ref then unref keeps it alive");
    mg_gw_unref(gw);
    mg_gw_unref(NULL);

    gw = gw_of(conf2);
    TAP_OK(gw != NULL, "config 2 (root route) loads");
    if (gw == NULL)
        return;
    expect_route(gw, "h.example:8443", "/", "root");
    expect_route(gw, "h.example:8443", "/sqlx", "root");
    expect_route(gw, "h.example:8443", "/sql", "a");
    expect_route(gw, "h.example:8443", "/sql/x", "a");
    expect_status(gw, "h.example:8444", "/", 403);
    expect_target(gw, "root", "/", "GET /base/");
    expect_target(gw, "root", "/x/y?z", "GET /base/x/y?z");
    expect_target(gw, "a", "/sql", "GET /");
    expect_target(gw, "a", "/sql/", "GET /");
    expect_target(gw, "a", "/sql/t?q", "GET /t?q");
    mg_gw_unref(gw);
}

int main(void)
{
    test_parse_host();
    test_path_is_safe();
    test_select();
    return tap_done();
}
