/* Unit tests for the configuration loader (src/conf): every key of a full
 * configuration, the defaults, each validation error with its exact
 * "FILE:LINE:COL: message", the URL, duration, size and listen-address
 * syntaxes, the YAML features refused (anchors, aliases, tags, duplicate
 * keys), the input bounds, and every truncation of a valid file. */
#include "conf/conf.h"
#include "tap.h"

#include <errno.h>
#include <unistd.h>

#define NAME "t.yaml"

/* A valid tail so that top-level cases fail only for what they test. */
#define ROUTE                                                                                      \
    "routes:\n"                                                                                    \
    "  - name: r\n"                                                                                \
    "    from: https://a.example.com\n"                                                            \
    "    to: http://127.0.0.1:3000\n"

/* A head so that route cases start at a known line: the route's keys
 * are on lines 3, 4, 5, ... and start at column 5. */
#define HEAD "routes:\n  - name: r\n"

static int load(const char *yaml, struct mg_conf **c, char **err)
{
    return mg_conf_load_string(NAME, yaml, strlen(yaml), c, err);
}

/* The whole error text for yaml, or NULL when it loads. */
static char *err_of(const char *yaml)
{
    struct mg_conf *c = NULL;
    char *err = NULL;
    int rc = load(yaml, &c, &err);
    if (rc == 0) {
        mg_conf_unref(c);
        free(err);
        return NULL;
    }
    if (c != NULL || err == NULL)
        return strdup("(bad contract: failure without err, or with a conf)");
    return err;
}

#define ERR(yaml, want)                                                                            \
    do {                                                                                           \
        char *e_ = err_of(yaml);                                                                   \
        TAP_IS_STR(e_, want, "error: %s", want);                                                   \
        free(e_);                                                                                  \
    } while (0)

#define OK(yaml, desc)                                                                             \
    do {                                                                                           \
        char *e_ = err_of(yaml);                                                                   \
        TAP_IS_STR(e_, NULL, "loads: %s", desc);                                                   \
        free(e_);                                                                                  \
    } while (0)

/* For libyaml's own messages, whose wording is libyaml's: position and prefix. */
#define ERR_PREFIX(yaml, want)                                                                     \
    do {                                                                                           \
        char *e_ = err_of(yaml);                                                                   \
        TAP_OK(e_ &&strncmp(e_, want, strlen(want)) == 0, "error starts with: %s", want);          \
        if (e_ && strncmp(e_, want, strlen(want)) != 0)                                            \
            printf("#   got \"%s\"\n", e_);                                                        \
        free(e_);                                                                                  \
    } while (0)

static const char full[] =
    "# every key, with a value that is not the default\n"  /* 1 */
    "address: \"[::1]:9443\"\n"                            /* 2 */
    "metrics_address: 127.0.0.1:9100\n"                    /* 3 */
    "workers: 4\n"                                         /* 4 */
    "state_dir: /var/lib/mcpgate\n"                        /* 5 */
    "insecure_server: false\n"                             /* 6 */
    "insecure_server_allow_non_loopback: TRUE\n"           /* 7 */
    "tls:\n"                                               /* 8 */
    "  certificates:\n"                                    /* 9 */
    "    - cert: /etc/a.pem\n"                             /* 10 */
    "      key: /etc/a.key\n"                              /* 11 */
    "    - {cert: /etc/b.pem, key: /etc/b.key}\n"          /* 12 */
    "  min_version: \"1.3\"\n"                             /* 13 */
    "access_log: /var/log/mcpgate.log\n"                   /* 14 */
    "log_level: debug\n"                                   /* 15 */
    "limits:\n"                                            /* 16 */
    "  max_header_bytes: 32KiB\n"                          /* 17 */
    "  max_body_bytes: 8m\n"                               /* 18 */
    "  max_response_header_bytes: 131072\n"                /* 19 */
    "  max_connections: 500\n"                             /* 20 */
    "  max_stdio_children: 8\n"                            /* 21 */
    "  max_sessions: 99\n"                                 /* 22 */
    "timeouts:\n"                                          /* 23 */
    "  connect: 250ms\n"                                   /* 24 */
    "  first_byte: 2m\n"                                   /* 25 */
    "  idle: 90\n"                                         /* 26 */
    "  request_header: 3s\n"                               /* 27 */
    "  request_body: 1h\n"                                 /* 28 */
    "  send: 45s\n"                                        /* 29 */
    "  session_idle: 20m\n"                                /* 30 */
    "  stdio_kill_grace: 1s\n"                             /* 31 */
    "  drain: 10s\n"                                       /* 32 */
    "authenticate_service_url: https://auth.example.com\n" /* 33 */
    "identity_providers:\n"                                /* 34 */
    "  - {name: corp, issuer: https://idp.example.com, client_id: gw, client_secret_env: S}\n"
    "jwt_issuers: [{issuer: https://as.example.com, jwks_url: https://as.example.com/k}]\n"
    "store: {sqlite: state.db}\n"                           /* 37 */
    "policy: {allow: {or: [{authenticated_user: true}]}}\n" /* 38 */
    "audit: {sink: store, arguments: full, sync: true, on_failure: allow, max_queue: 500}\n"
    "oauth: {access_token_ttl: 5m, clients: [{client_id: c1, redirect_uris: [x]}]}\n"
    "routes:\n"                                        /* 41 */
    "  - name: files\n"                                /* 42 */
    "    from: https://MCP.Example.com/files/\n"       /* 43 */
    "    to: https://files.internal:8443/mcp\n"        /* 44 */
    "    timeout: 30s\n"                               /* 45 */
    "    preserve_host_header: true\n"                 /* 46 */
    "    tls_skip_verify: True\n"                      /* 47 */
    "    tls_custom_ca_file: /etc/ca.pem\n"            /* 48 */
    "    tls_server_name: files.example.net\n"         /* 49 */
    "    allowed_origins:\n"                           /* 50 */
    "      - https://app.example.com\n"                /* 51 */
    "      - http://LOCALHOST:3000\n"                  /* 52 */
    "      - https://App.example.com:443\n"            /* 53 */
    "      - \"http://[::1]:8080\"\n"                  /* 54 */
    "    set_request_headers:\n"                       /* 55 */
    "      X-Api-Key: \"s3cret value\"\n"              /* 56 */
    "      X-Empty: \"\"\n"                            /* 57 */
    "    remove_request_headers: [Cookie, X-Debug]\n"  /* 58 */
    "    allow_public_unauthenticated_access: false\n" /* 59 */
    "    policy: {deny: {and: [{mcp_tool: drop}]}}\n"  /* 60 */
    "    allowed_users: [a@example.com]\n"             /* 61 */
    "    allowed_groups: [admins]\n"                   /* 62 */
    "    mcp: {tool_classes: {drop_table: write}}\n"   /* 63 */
    "  - name: legacy\n"                               /* 64 */
    "    from: http://mcp.example.com:8080\n"          /* 65 */
    "    to: sse+http://10.0.0.5:3001/sse/\n"          /* 66 */
    "  - name: local.db_1-x\n"                         /* 67 */
    "    from: https://mcp.example.com/db\n"           /* 68 */
    "    to: stdio:/usr/local/bin/mcp-sqlite\n"        /* 69 */
    "    stdio:\n"                                     /* 70 */
    "      args: [--db, /data/x.db, \"\"]\n"           /* 71 */
    "      env: {HOME: /tmp, EMPTY: \"\", _X1: '0'}\n" /* 72 */
    "      cwd: /data\n"                               /* 73 */
    "      shared: true\n"                             /* 74 */
    "  - {name: sse-tls, from: \"https://[2001:db8::1]:8443/a/b\", to: \"sse+https://[::1]\"}\n";

static void test_full(void)
{
    struct mg_conf *c = NULL;
    char *err = NULL;
    int rc = load(full, &c, &err);
    TAP_IS_INT(rc, 0, "full config loads");
    TAP_IS_STR(err, NULL, "full config: no error text");
    if (c == NULL)
        return;
    TAP_IS_INT(atomic_load(&c->refs), 1, "refs starts at 1");
    TAP_IS_STR(c->path, NAME, "path is the name");
    TAP_IS_STR(c->address, "[::1]:9443", "address");
    TAP_IS_STR(c->metrics_address, "127.0.0.1:9100", "metrics_address");
    TAP_IS_INT(c->workers, 4, "workers");
    TAP_IS_STR(c->state_dir, "/var/lib/mcpgate", "state_dir");
    TAP_OK(!c->insecure_server, "insecure_server");
    TAP_OK(c->allow_insecure_non_loopback, "insecure_server_allow_non_loopback");
    TAP_IS_INT(c->n_certs, 2, "two certificates");
    if (c->n_certs == 2) {
        TAP_IS_STR(c->certs[0].cert_file, "/etc/a.pem", "cert 0");
        TAP_IS_STR(c->certs[0].key_file, "/etc/a.key", "key 0");
        TAP_IS_STR(c->certs[1].cert_file, "/etc/b.pem", "cert 1");
        TAP_IS_STR(c->certs[1].key_file, "/etc/b.key", "key 1");
    }
    TAP_IS_STR(c->tls_min_version, "1.3", "tls.min_version");
    TAP_IS_STR(c->access_log, "/var/log/mcpgate.log", "access_log");
    TAP_IS_STR(c->log_level, "debug", "log_level");
    TAP_IS_INT(c->max_header_bytes, 32768, "max_header_bytes 32KiB");
    TAP_IS_INT(c->max_body_bytes, 8 * 1024 * 1024, "max_body_bytes 8m");
    TAP_IS_INT(c->max_response_header_bytes, 131072, "max_response_header_bytes");
    TAP_IS_INT(c->max_connections, 500, "max_connections");
    TAP_IS_INT(c->max_stdio_children, 8, "max_stdio_children");
    TAP_IS_INT(c->max_sessions, 99, "max_sessions");
    TAP_IS_INT(c->connect_timeout_ms, 250, "timeouts.connect");
    TAP_IS_INT(c->first_byte_timeout_ms, 120000, "timeouts.first_byte");
    TAP_IS_INT(c->idle_timeout_ms, 90000, "timeouts.idle bare seconds");
    TAP_IS_INT(c->header_timeout_ms, 3000, "timeouts.request_header");
    TAP_IS_INT(c->body_timeout_ms, 3600000, "timeouts.request_body");
    TAP_IS_INT(c->send_timeout_ms, 45000, "timeouts.send");
    TAP_IS_INT(c->session_idle_timeout_ms, 1200000, "timeouts.session_idle");
    TAP_IS_INT(c->stdio_kill_grace_ms, 1000, "timeouts.stdio_kill_grace");
    TAP_IS_INT(c->drain_timeout_ms, 10000, "timeouts.drain");
    TAP_IS_INT(c->audit.sink, MG_CONF_AUDIT_STORE, "audit.sink");
    TAP_IS_STR(c->audit.path, NULL, "audit.path: none for the store sink");
    TAP_IS_INT(c->audit.arguments, MG_CONF_AUDIT_ARGS_FULL, "audit.arguments");
    TAP_OK(c->audit.sync, "audit.sync");
    TAP_OK(c->audit.fail_open, "audit.on_failure: allow");
    TAP_IS_INT(c->audit.max_queue, 500, "audit.max_queue");
    TAP_IS_INT(c->n_routes, 4, "four routes");
    if (c->n_routes != 4)
        goto done;

    const struct mg_conf_route *r = &c->routes[0];
    TAP_IS_STR(r->name, "files", "r0 name");
    TAP_IS_INT(r->line, 42, "r0 line");
    TAP_IS_STR(r->from_raw, "https://MCP.Example.com/files/", "r0 from_raw kept verbatim");
    TAP_IS_STR(r->from.scheme, "https", "r0 from scheme");
    TAP_IS_STR(r->from.host, "mcp.example.com", "r0 from host lower-cased");
    TAP_IS_INT(r->from.port, 443, "r0 from default port");
    TAP_OK(!r->from.port_explicit, "r0 from port not explicit");
    TAP_IS_STR(r->from.path, "/files", "r0 from prefix without trailing /");
    TAP_IS_STR(r->to_raw, "https://files.internal:8443/mcp", "r0 to_raw");
    TAP_IS_INT(r->kind, MG_UPSTREAM_HTTP, "r0 kind HTTP");
    TAP_IS_STR(r->to.host, "files.internal", "r0 to host");
    TAP_IS_INT(r->to.port, 8443, "r0 to port");
    TAP_OK(r->to.port_explicit, "r0 to port explicit");
    TAP_IS_STR(r->to.path, "/mcp", "r0 to path");
    TAP_IS_INT(r->timeout_ms, 30000, "r0 timeout");
    TAP_OK(r->preserve_host_header, "r0 preserve_host_header");
    TAP_OK(r->tls_skip_verify, "r0 tls_skip_verify");
    TAP_IS_STR(r->tls_custom_ca_file, "/etc/ca.pem", "r0 tls_custom_ca_file");
    TAP_IS_STR(r->tls_server_name, "files.example.net", "r0 tls_server_name");
    TAP_IS_INT(r->n_allowed_origins, 4, "r0 four origins");
    if (r->n_allowed_origins == 4) {
        TAP_IS_STR(r->allowed_origins[0], "https://app.example.com", "origin 0");
        TAP_IS_STR(r->allowed_origins[1], "http://localhost:3000", "origin 1 lower-cased");
        TAP_IS_STR(r->allowed_origins[2], "https://app.example.com",
                   "origin 2 default port dropped");
        TAP_IS_STR(r->allowed_origins[3], "http://[::1]:8080", "origin 3 IPv6 bracketed");
    }
    TAP_IS_INT(r->n_set_request_headers, 2, "r0 two set headers");
    if (r->n_set_request_headers == 2) {
        TAP_IS_STR(r->set_request_headers[0].name, "X-Api-Key", "set header 0 name");
        TAP_IS_STR(r->set_request_headers[0].value, "s3cret value", "set header 0 value");
        TAP_IS_STR(r->set_request_headers[1].name, "X-Empty", "set header 1 name");
        TAP_IS_STR(r->set_request_headers[1].value, "", "set header 1 empty value");
    }
    TAP_IS_INT(r->n_remove_request_headers, 2, "r0 two removed headers");
    if (r->n_remove_request_headers == 2) {
        TAP_IS_STR(r->remove_request_headers[0], "Cookie", "remove header 0");
        TAP_IS_STR(r->remove_request_headers[1], "X-Debug", "remove header 1");
    }
    TAP_OK(!r->allow_public_unauthenticated_access, "r0 allow_public_unauthenticated_access");
    TAP_IS_STR(r->stdio.command, NULL, "r0 no stdio command");

    r = &c->routes[1];
    TAP_IS_STR(r->name, "legacy", "r1 name");
    TAP_IS_INT(r->line, 64, "r1 line");
    TAP_IS_STR(r->from.scheme, "http", "r1 from scheme");
    TAP_IS_INT(r->from.port, 8080, "r1 from port");
    TAP_IS_STR(r->from.path, "", "r1 from path empty");
    TAP_IS_INT(r->kind, MG_UPSTREAM_SSE, "r1 kind SSE");
    TAP_IS_STR(r->to.scheme, "sse+http", "r1 to scheme");
    TAP_IS_STR(r->to.host, "10.0.0.5", "r1 to host");
    TAP_IS_INT(r->to.port, 3001, "r1 to port");
    TAP_IS_STR(r->to.path, "/sse", "r1 to path");
    TAP_IS_INT(r->timeout_ms, 120000, "r1 timeout defaults to timeouts.first_byte");
    TAP_OK(!r->preserve_host_header && !r->tls_skip_verify, "r1 bool defaults");
    TAP_IS_STR(r->tls_server_name, NULL, "r1 no tls_server_name for http upstream");
    TAP_IS_INT(r->n_allowed_origins + r->n_set_request_headers + r->n_remove_request_headers, 0,
               "r1 no lists");

    r = &c->routes[2];
    TAP_IS_STR(r->name, "local.db_1-x", "r2 name");
    TAP_IS_INT(r->kind, MG_UPSTREAM_STDIO, "r2 kind STDIO");
    TAP_IS_STR(r->stdio.command, "/usr/local/bin/mcp-sqlite", "r2 command");
    TAP_IS_STR(r->to.scheme, NULL, "r2 no to URL");
    TAP_IS_INT(r->stdio.n_args, 3, "r2 three args");
    if (r->stdio.n_args == 3) {
        TAP_IS_STR(r->stdio.args[0], "--db", "arg 0");
        TAP_IS_STR(r->stdio.args[1], "/data/x.db", "arg 1");
        TAP_IS_STR(r->stdio.args[2], "", "arg 2 empty string");
    }
    TAP_IS_INT(r->stdio.n_env, 3, "r2 three env");
    if (r->stdio.n_env == 3) {
        TAP_IS_STR(r->stdio.env[0].name, "HOME", "env 0 name");
        TAP_IS_STR(r->stdio.env[0].value, "/tmp", "env 0 value");
        TAP_IS_STR(r->stdio.env[1].name, "EMPTY", "env 1 name");
        TAP_IS_STR(r->stdio.env[1].value, "", "env 1 empty");
        TAP_IS_STR(r->stdio.env[2].name, "_X1", "env 2 name");
        TAP_IS_STR(r->stdio.env[2].value, "0", "env 2 value");
    }
    TAP_IS_STR(r->stdio.cwd, "/data", "r2 cwd");
    TAP_OK(r->stdio.shared, "r2 shared");

    r = &c->routes[3];
    TAP_IS_INT(r->line, 75, "r3 (flow mapping) line");
    TAP_IS_STR(r->from.host, "2001:db8::1", "r3 from IPv6 host without brackets");
    TAP_IS_INT(r->from.port, 8443, "r3 from port");
    TAP_IS_STR(r->from.path, "/a/b", "r3 from path");
    TAP_IS_INT(r->kind, MG_UPSTREAM_SSE, "r3 kind SSE");
    TAP_IS_INT(r->to.port, 443, "r3 sse+https default port");
    TAP_IS_STR(r->tls_server_name, "::1", "r3 tls_server_name defaults to to.host");
done:
    mg_conf_unref(c);
}

static void test_defaults(void)
{
    struct mg_conf *c = NULL;
    char *err = NULL;
    TAP_IS_INT(load(ROUTE, &c, &err), 0, "minimal config loads");
    if (c == NULL)
        return;
    TAP_IS_STR(c->address, "127.0.0.1:8443", "default address");
    TAP_IS_STR(c->metrics_address, NULL, "default: no metrics listener");
    TAP_IS_INT(c->workers, 0, "default workers 0 (one per core)");
    TAP_OK(c->worker_yield, "default: workers yield the CPU after writing");
    TAP_IS_STR(c->state_dir, "./state", "default state_dir");
    TAP_OK(!c->insecure_server && !c->allow_insecure_non_loopback, "default: TLS listener");
    TAP_IS_INT(c->n_certs, 0, "default: no certificates (self-signed)");
    TAP_IS_STR(c->tls_min_version, "1.2", "default tls_min_version");
    TAP_IS_STR(c->access_log, "stdout", "default access_log");
    TAP_IS_STR(c->log_level, "info", "default log_level");
    TAP_IS_INT(c->max_header_bytes, 16384, "default max_header_bytes");
    TAP_IS_INT(c->max_body_bytes, 4 * 1024 * 1024, "default max_body_bytes");
    TAP_IS_INT(c->max_response_header_bytes, 65536, "default max_response_header_bytes");
    TAP_IS_INT(c->max_connections, 10000, "default max_connections");
    TAP_IS_INT(c->max_stdio_children, 64, "default max_stdio_children");
    TAP_IS_INT(c->max_sessions, 1024, "default max_sessions");
    TAP_IS_INT(c->connect_timeout_ms, 5000, "default connect");
    TAP_IS_INT(c->first_byte_timeout_ms, 300000, "default first_byte");
    TAP_IS_INT(c->idle_timeout_ms, 60000, "default idle");
    TAP_IS_INT(c->header_timeout_ms, 10000, "default request_header");
    TAP_IS_INT(c->body_timeout_ms, 30000, "default request_body");
    TAP_IS_INT(c->send_timeout_ms, 60000, "default send");
    TAP_IS_INT(c->session_idle_timeout_ms, 600000, "default session_idle");
    TAP_IS_INT(c->stdio_kill_grace_ms, 5000, "default stdio_kill_grace");
    TAP_IS_INT(c->drain_timeout_ms, 30000, "default drain");
    TAP_IS_INT(c->audit.sink, MG_CONF_AUDIT_FILE, "default audit.sink: file");
    TAP_IS_STR(c->audit.path, "./state/audit.jsonl", "default audit.path in state_dir");
    TAP_IS_INT(c->audit.arguments, MG_CONF_AUDIT_ARGS_REDACTED, "default audit.arguments");
    TAP_OK(!c->audit.sync, "default audit.sync: false");
    TAP_OK(!c->audit.fail_open, "default audit.on_failure: deny");
    TAP_IS_INT(c->audit.max_queue, 10000, "default audit.max_queue");
    TAP_IS_INT(c->audit.sync_interval_ms, 20, "default audit.sync_interval: 20ms");
    TAP_IS_INT(c->n_routes, 1, "one route");
    if (c->n_routes == 1) {
        TAP_IS_INT(c->routes[0].line, 2, "route line");
        TAP_IS_INT(c->routes[0].timeout_ms, 300000, "route timeout defaults to first_byte");
        TAP_IS_STR(c->routes[0].tls_server_name, NULL, "http upstream: no SNI");
        TAP_OK(!c->routes[0].allow_public_unauthenticated_access, "not public by default");
    }
    mg_conf_ref(c);
    TAP_IS_INT(atomic_load(&c->refs), 2, "ref increments");
    mg_conf_unref(c);
    TAP_IS_INT(atomic_load(&c->refs), 1, "unref decrements");
    mg_conf_unref(c); /* frees; ASan reports a leak or double free */
    mg_conf_unref(NULL);
    TAP_OK(1, "unref(NULL) is a no-op");
}

static void test_worker_yield(void)
{
    struct mg_conf *c = NULL;
    char *err = NULL;
    TAP_IS_INT(load("worker_yield: false\n" ROUTE, &c, &err), 0, "worker_yield: false loads");
    TAP_OK(c && !c->worker_yield, "worker_yield: false turns yielding off");
    mg_conf_unref(c);
    free(err);
}

static void test_top_level_errors(void)
{
    ERR("address: 8443\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: a port is required");
    ERR("address: 127.0.0.1:0\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: port must be between 1 and 65535");
    ERR("address: 127.0.0.1:65536\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: port must be between 1 and 65535");
    ERR("address: ::1:8443\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: IPv6 addresses must be written in "
             "brackets, e.g. [::1]:8443");
    ERR("address: '[::1]'\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: a port is required");
    ERR("address: '[fe80::1%eth0]:80'\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: invalid IPv6 address");
    ERR("address: '127.0.0.1:'\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: empty port");
    ERR("address: ':80'\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: missing host");
    ERR("address: 300.1.1.1:80\n" ROUTE,
        NAME ":1:10: 'address' must be host:port or [v6]:port: invalid IPv4 address");
    ERR("address: [a, b]\n" ROUTE, NAME ":1:10: 'address' must be a string, not a list");
    ERR("address:\n" ROUTE, NAME ":1:1: 'address' has no value; expected a string");
    ERR("address: ''\n" ROUTE, NAME ":1:10: 'address' must not be empty");
    ERR("metrics_address: 127.0.0.1:8443\n" ROUTE,
        NAME ":1:18: 'metrics_address' must differ from 'address'");
    ERR("metrics_address: {a: 1}\n" ROUTE,
        NAME ":1:18: 'metrics_address' must be a string, not a mapping");
    ERR("workers: 257\n" ROUTE, NAME ":1:10: 'workers' must be a decimal integer from 0 to 256");
    ERR("workers: -1\n" ROUTE, NAME ":1:10: 'workers' must be a decimal integer from 0 to 256");
    ERR("workers: 0x10\n" ROUTE, NAME ":1:10: 'workers' must be a decimal integer from 0 to 256");
    ERR("workers: 010\n" ROUTE, NAME ":1:10: 'workers' must be a decimal integer from 0 to 256");
    ERR("workers: 1.5\n" ROUTE, NAME ":1:10: 'workers' must be a decimal integer from 0 to 256");
    ERR("workers: 99999999999999999999999\n" ROUTE,
        NAME ":1:10: 'workers' must be a decimal integer from 0 to 256");
    OK("workers: 256\n" ROUTE, "workers: 256");
    OK("workers: 0\n" ROUTE, "workers: 0");
    ERR("state_dir: ~\n" ROUTE, NAME ":1:1: 'state_dir' has no value; expected a string");
    ERR("log_level: verbose\n" ROUTE, NAME ":1:12: 'log_level' must be debug, info, warn or error");
    ERR("access_log: \"\"\n" ROUTE, NAME ":1:13: 'access_log' must not be empty");
    ERR("foo: 1\n" ROUTE, NAME ":1:1: unknown key 'foo' at top level");
    ERR("Address: 127.0.0.1:1\n" ROUTE, NAME ":1:1: unknown key 'Address' at top level");
    ERR("limits: 5\n" ROUTE, NAME ":1:9: 'limits' must be a mapping, not a string");
    ERR("timeouts: [1s]\n" ROUTE, NAME ":1:11: 'timeouts' must be a mapping, not a list");
    ERR("tls:\n" ROUTE, NAME ":1:1: 'tls' has no value; expected a mapping");

    /* Booleans: YAML 1.2 core only. */
    ERR("insecure_server: yes\n" ROUTE,
        NAME ":1:18: 'insecure_server': 'yes' is not a boolean in YAML 1.2; write true or false");
    ERR("insecure_server: Off\n" ROUTE,
        NAME ":1:18: 'insecure_server': 'Off' is not a boolean in YAML 1.2; write true or false");
    ERR("insecure_server: tRue\n" ROUTE,
        NAME ":1:18: 'insecure_server' must be true or false, not 'tRue'");
    ERR("insecure_server: 1\n" ROUTE,
        NAME ":1:18: 'insecure_server' must be true or false, not '1'");
    ERR("worker_yield: sometimes\n" ROUTE,
        NAME ":1:15: 'worker_yield' must be true or false, not 'sometimes'");

    /* Plain HTTP only on loopback, unless explicitly allowed. */
    ERR("insecure_server: true\naddress: 0.0.0.0:8080\n" ROUTE,
        NAME ":2:10: insecure_server: true needs a loopback address (127.0.0.1, ::1, localhost) "
             "unless insecure_server_allow_non_loopback: true");
    ERR("address: 192.168.1.1:80\ninsecure_server: true\n" ROUTE,
        NAME ":1:10: insecure_server: true needs a loopback address (127.0.0.1, ::1, localhost) "
             "unless insecure_server_allow_non_loopback: true");
    ERR("address: '[::2]:80'\ninsecure_server: true\n" ROUTE,
        NAME ":1:10: insecure_server: true needs a loopback address (127.0.0.1, ::1, localhost) "
             "unless insecure_server_allow_non_loopback: true");
    ERR("address: localhost.example.com:80\ninsecure_server: true\n" ROUTE,
        NAME ":1:10: insecure_server: true needs a loopback address (127.0.0.1, ::1, localhost) "
             "unless insecure_server_allow_non_loopback: true");
    OK("insecure_server: true\naddress: 0.0.0.0:8080\ninsecure_server_allow_non_loopback: "
       "true\n" ROUTE,
       "non-loopback insecure with opt-in");
    OK("insecure_server: true\n" ROUTE, "insecure on the default 127.0.0.1");
    OK("insecure_server: true\naddress: 127.9.8.7:80\n" ROUTE, "insecure on 127/8");
    OK("insecure_server: true\naddress: '[::1]:80'\n" ROUTE, "insecure on ::1");
    OK("insecure_server: true\naddress: LocalHost:80\n" ROUTE, "insecure on localhost");

    /* TLS */
    ERR("tls: {cert: a.pem}\n" ROUTE, NAME ":1:7: 'cert' in tls needs a 'key'");
    ERR("tls: {key: a.key}\n" ROUTE, NAME ":1:7: 'key' in tls needs a 'cert'");
    ERR("tls:\n  cert: a\n  key: b\n  certificates: [{cert: c, key: d}]\n" ROUTE,
        NAME ":4:3: use either 'cert' and 'key' or 'certificates' in tls, not both");
    ERR("tls: {certificates: []}\n" ROUTE,
        NAME ":1:7: 'certificates' must list at least one certificate");
    ERR("tls:\n  certificates:\n    - cert: a\n" ROUTE,
        NAME ":3:7: tls.certificates item is missing 'key'");
    ERR("tls:\n  certificates:\n    - {key: a, cert: b, pass: c}\n" ROUTE,
        NAME ":3:25: unknown key 'pass' in tls.certificates");
    ERR("tls:\n  certificates: [a.pem]\n" ROUTE,
        NAME ":2:18: items of 'certificates' must be mappings with cert and key");
    ERR("tls: {cert: '', key: b}\n" ROUTE, NAME ":1:13: 'cert' must not be empty");
    ERR("tls: {min_version: 1.1}\n" ROUTE, NAME ":1:20: 'min_version' must be \"1.2\" or \"1.3\"");
    ERR("tls: {ciphers: x}\n" ROUTE, NAME ":1:7: unknown key 'ciphers' in tls");
    ERR("insecure_server: true\ntls: {cert: a, key: b}\n" ROUTE,
        NAME ":2:1: 'tls' cannot be used with insecure_server: true");
    {
        struct mg_conf *c = NULL;
        char *err = NULL;
        int rc = load("tls: {cert: /a.pem, key: /a.key, min_version: 1.2}\n" ROUTE, &c, &err);
        TAP_IS_INT(rc, 0, "tls.cert + tls.key loads");
        if (c) {
            TAP_IS_INT(c->n_certs, 1, "one certificate");
            TAP_IS_STR(c->certs[0].cert_file, "/a.pem", "tls.cert");
            TAP_IS_STR(c->certs[0].key_file, "/a.key", "tls.key");
            TAP_IS_STR(c->tls_min_version, "1.2", "min_version 1.2 (a YAML float, read as text)");
        }
        mg_conf_unref(c);
        free(err);
    }

    /* Limits and sizes. */
    ERR("limits: {max_header_bytes: 512}\n" ROUTE,
        NAME ":1:28: 'max_header_bytes' must be from 1KiB to 1MiB");
    ERR("limits: {max_header_bytes: 2MiB}\n" ROUTE,
        NAME ":1:28: 'max_header_bytes' must be from 1KiB to 1MiB");
    ERR("limits: {max_header_bytes: 16KB}\n" ROUTE,
        NAME ":1:28: 'max_header_bytes' must be a size in bytes, e.g. 16384, 16KiB or 4MiB");
    ERR("limits: {max_header_bytes: 016k}\n" ROUTE,
        NAME ":1:28: 'max_header_bytes' must be a size in bytes, e.g. 16384, 16KiB or 4MiB");
    ERR("limits: {max_header_bytes: 1.5k}\n" ROUTE,
        NAME ":1:28: 'max_header_bytes' must be a size in bytes, e.g. 16384, 16KiB or 4MiB");
    ERR("limits: {max_header_bytes: 16 KiB}\n" ROUTE,
        NAME ":1:28: 'max_header_bytes' must be a size in bytes, e.g. 16384, 16KiB or 4MiB");
    ERR("limits: {max_body_bytes: 2GiB}\n" ROUTE,
        NAME ":1:26: 'max_body_bytes' must be from 1KiB to 1GiB");
    ERR("limits: {max_body_bytes: 99999999999999999999k}\n" ROUTE,
        NAME ":1:26: 'max_body_bytes' must be from 1KiB to 1GiB");
    ERR("limits: {max_body_bytes: 18014398509481984k}\n" ROUTE,
        NAME ":1:26: 'max_body_bytes' must be from 1KiB to 1GiB");
    ERR("limits: {max_connections: 0}\n" ROUTE,
        NAME ":1:27: 'max_connections' must be a decimal integer from 1 to 1000000");
    ERR("limits: {max_stdio_children: 10001}\n" ROUTE,
        NAME ":1:30: 'max_stdio_children' must be a decimal integer from 1 to 10000");
    ERR("limits: {max_sessions: 1k}\n" ROUTE,
        NAME ":1:24: 'max_sessions' must be a decimal integer from 1 to 1000000");
    ERR("limits: {max_requests: 1}\n" ROUTE, NAME ":1:10: unknown key 'max_requests' in limits");
    {
        static const struct {
            const char *text;
            size_t want;
        } sizes[] = {
            {"16KiB", 16384}, {"16k", 16384},   {"1m", 1048576},    {"1MiB", 1048576},
            {"1024", 1024},   {"1g", 1u << 30}, {"1GiB", 1u << 30},
        };
        for (size_t i = 0; i < MG_ARRAY_LEN(sizes); i++) {
            char yaml[256];
            struct mg_conf *c = NULL;
            char *err = NULL;
            snprintf(yaml, sizeof yaml, "limits: {max_body_bytes: %s}\n" ROUTE, sizes[i].text);
            TAP_IS_INT(load(yaml, &c, &err), 0, "size %s loads", sizes[i].text);
            TAP_IS_INT(c ? c->max_body_bytes : 0, sizes[i].want, "size %s", sizes[i].text);
            mg_conf_unref(c);
            free(err);
        }
    }

    /* Timeouts. */
    ERR("timeouts: {connect: -1s}\n" ROUTE,
        NAME ":1:21: 'connect' must be a duration such as 250ms, 5s, 10m or 1h");
    ERR("timeouts: {connect: 5 s}\n" ROUTE,
        NAME ":1:21: 'connect' must be a duration such as 250ms, 5s, 10m or 1h");
    ERR("timeouts: {connect: 5d}\n" ROUTE,
        NAME ":1:21: 'connect' must be a duration such as 250ms, 5s, 10m or 1h");
    ERR("timeouts: {connect: 0}\n" ROUTE, NAME ":1:21: 'connect' must be from 1ms to 168h");
    ERR("timeouts: {drain: 169h}\n" ROUTE, NAME ":1:19: 'drain' must be from 1ms to 168h");
    ERR("timeouts: {idle: 99999999999999999999}\n" ROUTE,
        NAME ":1:18: 'idle' must be from 1ms to 168h");
    ERR("timeouts: {read: 1s}\n" ROUTE, NAME ":1:12: unknown key 'read' in timeouts");
    OK("timeouts: {drain: 168h, connect: 1ms}\n" ROUTE, "timeouts at both bounds");

    /* routes itself */
    ERR("workers: 1\n", NAME ":1:1: no 'routes': at least one route is required");
    ERR("routes: []\n", NAME ":1:9: 'routes' must list at least one route");
    ERR("routes: {a: 1}\n", NAME ":1:9: 'routes' must be a list, not a mapping");
    ERR("routes:\n", NAME ":1:1: 'routes' has no value; expected a list");
    ERR("routes: [just-a-string]\n", NAME ":1:10: each route must be a mapping, not a string");

    /* Policies compile at load; errors point at the rule. */
    OK("policy: {allow: {or: [{authenticated_user: true}]}}\n" ROUTE, "global policy");
    ERR("policy: '?'\n" ROUTE,
        NAME ":1:9: policy: a policy is a rule (a mapping with 'allow' and/or "
             "'deny') or a list of rules, not a string");

    /* Identity. */
    ERR("authenticate_service_url: x\n" ROUTE,
        NAME ":1:27: invalid 'authenticate_service_url' 'x': expected scheme://host");
    ERR("authenticate_service_url: https://a.example/p\n" ROUTE,
        NAME ":1:27: invalid 'authenticate_service_url' 'https://a.example/p': must be an origin "
             "(https://host[:port]) without a path");
    ERR("authenticate_service_url: http://a.example\n" ROUTE,
        NAME ":1:27: invalid 'authenticate_service_url' 'http://a.example': must be https (http "
             "only for loopback hosts)");
    OK("authenticate_service_url: http://127.0.0.1:8080\n" ROUTE, "loopback http issuer");
    ERR("store: {sqlite: a, postgres: b}\n" ROUTE,
        NAME ":1:8: 'store' takes exactly one of 'sqlite: PATH' or 'postgres: URI'");
    ERR("store: {postgres: 'host=x'}\n" ROUTE,
        NAME ":1:19: 'postgres' must be a URI: postgresql://user@host:port/dbname (put the "
             "password in PGPASSFILE or PGPASSWORD, not here)");
    ERR("store: {mysql: x}\n" ROUTE,
        NAME ":1:9: unknown key 'mysql' in store (use sqlite or postgres)");
    OK("store: {postgres: 'postgresql://u@127.0.0.1:5432/db'}\n" ROUTE, "postgres store");
    ERR("identity_providers: [{name: corp, issuer: https://i.example, client_id: a, "
        "client_secret: s}]\n" ROUTE,
        NAME ":1:76: secrets are not accepted inline; use client_secret_file or client_secret_env");
    ERR("identity_providers: [{name: Corp, issuer: https://i.example, client_id: a, "
        "client_secret_env: S}]\n" ROUTE,
        NAME ":1:29: provider name 'Corp' must be 1 to 32 of a-z 0-9 _ -");
    ERR("identity_providers: [{name: c, issuer: https://i.example, client_id: a}]\n" ROUTE,
        NAME ":1:22: identity provider needs exactly one of client_secret_file and "
             "client_secret_env");
    ERR("identity_providers: [{name: c, issuer: https://i.example, client_id: a, "
        "client_secret_env: S}, {name: c, issuer: https://i.example, client_id: a, "
        "client_secret_env: S}]\n" ROUTE,
        NAME ":1:96: duplicate identity provider name (first at line 1)");
    ERR("oauth: {clients: [{client_id: a}]}\n" ROUTE,
        NAME ":1:19: client needs 'redirect_uris' (or grant_types: [client_credentials])");
    ERR("oauth: {clients: [{client_id: a, grant_types: [client_credentials]}]}\n" ROUTE,
        NAME ":1:19: client_credentials needs a secret (client_secret_file or client_secret_env)");
    ERR("oauth: {clients: [{client_id: a, grant_types: [implicit], redirect_uris: [x]}]}\n" ROUTE,
        NAME ":1:48: unknown grant type 'implicit' (authorization_code, refresh_token, "
             "client_credentials)");
    ERR("oauth: {access_token_ttl: 10ms}\n" ROUTE,
        NAME ":1:1: 'access_token_ttl' must be at least 1s");
    ERR("oauth: {nope: 1}\n" ROUTE, NAME ":1:9: unknown key 'nope' in oauth");
    ERR("jwt_issuers: [{issuer: x}]\n" ROUTE, NAME ":1:15: JWT issuer is missing 'jwks_url'");
    ERR(HEAD "    from: https://a.example.com\n    to: http://b\n    scopes: ['a b']\n",
        NAME ":5:14: scope 'a b' has a character RFC 6749 does not allow");
    OK(HEAD "    from: https://a.example.com\n    to: http://b\n"
            "    allowed_users: {a: b}\n    allowed_groups:\n",
       "reserved route keys");
    OK(HEAD "    from: https://a.example.com\n    to: http://b\n"
            "    policy: [{allow: {or: [{authenticated_user: true}]}},"
            " {deny: {and: [{mcp_tool_class: destructive}, {groups: {exclude: admins}}]}}]\n"
            "    mcp: {tool_classes: {execute: destructive, query: read_only}}\n",
       "route policy and tool classes");
    ERR(HEAD "    from: https://a.example.com\n    to: http://b\n    policy: [x]\n",
        NAME ":5:14: routes[r].policy[0]: a rule is a mapping with 'allow' and/or 'deny', not a "
             "string");
    ERR(HEAD
        "    from: https://a.example.com\n    to: http://b\n    mcp: {tool_classes: {q: rw}}\n",
        NAME ":5:29: the class of tool 'q' must be read_only, write or destructive");
    ERR(HEAD "    from: https://a.example.com\n    to: http://b\n    mcp: {tools: {}}\n",
        NAME ":5:11: unknown key 'tools' in mcp (tool_classes)");
}

static void test_route_errors(void)
{
#define FROM "    from: https://a.example.com\n"
#define TO   "    to: http://127.0.0.1:3000\n"
    /* Required keys: reported at the route's first key. */
    ERR("routes:\n  - from: https://a.example.com\n" TO, NAME ":2:5: route is missing 'name'");
    ERR(HEAD TO, NAME ":2:5: route is missing 'from'");
    ERR(HEAD FROM, NAME ":2:5: route is missing 'to'");
    ERR("routes:\n  - {}\n",
        NAME ":2:5: route is missing 'name'\n" NAME ":2:5: route is missing 'from'\n" NAME
             ":2:5: route is missing 'to'");
    ERR("routes:\n  - name: 'a b'\n" FROM TO,
        NAME ":2:11: route name 'a b' must be 1 to 64 of A-Z a-z 0-9 _ . -");
    ERR("routes:\n  - name: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" FROM TO,
        NAME
        ":2:11: route name "
        "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' must be 1 to 64 "
        "of A-Z a-z 0-9 _ . -");
    OK("routes:\n  - name: "
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" FROM TO,
       "64-character route name");
    ERR("routes:\n  - name: ''\n" FROM TO, NAME ":2:11: 'name' must not be empty");
    ERR("routes:\n  - name: [r]\n" FROM TO, NAME ":2:11: 'name' must be a string, not a list");

    /* from */
    ERR(HEAD "    from: sse+https://a.example.com\n" TO,
        NAME ":3:11: invalid 'from' URL 'sse+https://a.example.com': 'from' must use http or "
             "https");
    ERR(HEAD "    from: ftp://a.example.com\n" TO,
        NAME ":3:11: invalid 'from' URL 'ftp://a.example.com': unsupported scheme (use http, "
             "https, sse+http or sse+https)");
    ERR(HEAD "    from: https://a.example.com/x?y=1\n" TO,
        NAME ":3:11: invalid 'from' URL 'https://a.example.com/x?y=1': query strings and "
             "fragments are not allowed");
    ERR(HEAD "    from: https://a.example.com#top\n" TO,
        NAME ":3:11: invalid 'from' URL 'https://a.example.com#top': query strings and fragments "
             "are not allowed");
    ERR(HEAD "    from: https://u:p@a.example.com\n" TO,
        NAME ":3:11: invalid 'from' URL 'https://u:p@a.example.com': user info ('user@') is not "
             "allowed in URLs");
    ERR(HEAD "    from: https://a.example.com/a/../b\n" TO,
        NAME ":3:11: invalid 'from' URL 'https://a.example.com/a/../b': '.' and '..' path "
             "segments are not allowed");
    ERR(HEAD "    from: https://a.example.com//b\n" TO,
        NAME ":3:11: invalid 'from' URL 'https://a.example.com//b': empty path segment ('//')");
    ERR(HEAD "    from: https://a.example.com/%41\n" TO,
        NAME ":3:11: invalid 'from' URL 'https://a.example.com/%41': percent-escapes are not "
             "supported in paths");
    ERR(HEAD "    from: https://\n" TO, NAME ":3:11: invalid 'from' URL 'https://': missing host");
    ERR(HEAD "    from: https://a.example.com:0\n" TO,
        NAME ":3:11: invalid 'from' URL 'https://a.example.com:0': port must be between 1 and "
             "65535");
    ERR(HEAD "    from: a.example.com\n" TO,
        NAME ":3:11: invalid 'from' URL 'a.example.com': expected scheme://host");
    ERR(HEAD "    from: \"https://a.example.com/\\n\"\n" TO,
        NAME ":3:11: invalid 'from' URL 'https://a.example.com/\\x0a': invalid character in "
             "path");

    /* to */
    ERR(HEAD FROM "    to: ftp://b\n",
        NAME ":4:9: invalid 'to' URL 'ftp://b': unsupported scheme (use http, https, sse+http or "
             "sse+https)");
    ERR(HEAD FROM "    to: 'http://b c'\n",
        NAME ":4:9: invalid 'to' URL 'http://b c': invalid character in host name");
    ERR(HEAD FROM "    to: 'stdio:'\n",
        NAME ":4:9: 'to: stdio:' needs a command, e.g. stdio:/usr/bin/server");
    ERR(HEAD FROM "    to: stdio:npx -y server\n",
        NAME ":4:9: stdio command 'npx -y server' contains whitespace or control characters; put "
             "arguments in stdio.args");
    ERR(HEAD FROM "    to: http://b?x\n",
        NAME ":4:9: invalid 'to' URL 'http://b?x': query strings and fragments are not allowed");

    /* stdio */
    ERR(HEAD FROM TO "    stdio: {args: [a]}\n",
        NAME ":5:5: 'stdio' is only valid when 'to' is stdio:COMMAND");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: [a]\n",
        NAME ":5:12: 'stdio' must be a mapping, not a list");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {args: a}\n",
        NAME ":5:19: 'args' must be a list, not a string");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {args: [a, [b], ~]}\n",
        NAME ":5:23: items of 'args' must be strings, not a list\n" NAME
             ":5:28: items of 'args' must be strings, not empty");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {env: {1X: a}}\n",
        NAME ":5:19: '1X' is not a valid environment variable name");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {env: {A-B: a}}\n",
        NAME ":5:19: 'A-B' is not a valid environment variable name");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {env: {X: }}\n",
        NAME ":5:19: 'X' has no value; expected a string");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {env: {X: [a]}}\n",
        NAME ":5:22: 'X' must be a string, not a list");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {cwd: ''}\n",
        NAME ":5:18: 'cwd' must not be empty");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {shared: no}\n",
        NAME ":5:21: 'shared': 'no' is not a boolean in YAML 1.2; write true or false");
    ERR(HEAD FROM "    to: stdio:srv\n    stdio: {user: root}\n",
        NAME ":5:13: unknown key 'user' in stdio");

    /* other route keys */
    ERR(HEAD FROM TO "    timeout: 5x\n",
        NAME ":5:14: 'timeout' must be a duration such as 250ms, 5s, 10m or 1h");
    ERR(HEAD FROM TO "    tls_skip_verify: true\n",
        NAME ":5:5: 'tls_skip_verify' only applies to https upstreams");
    OK(HEAD FROM TO "    tls_skip_verify: false\n", "tls_skip_verify: false on http upstream");
    ERR(HEAD FROM "    to: stdio:x\n    tls_custom_ca_file: ca.pem\n",
        NAME ":5:5: 'tls_custom_ca_file' only applies to https upstreams");
    ERR(HEAD FROM "    to: https://b\n    tls_server_name: 'a b'\n",
        NAME ":5:22: invalid 'tls_server_name': invalid character in host name");
    ERR(HEAD FROM "    to: stdio:x\n    preserve_host_header: true\n",
        NAME ":5:5: 'preserve_host_header' only applies to http and sse upstreams");
    ERR(HEAD FROM TO "    allowed_origins: [https://a.example.com/]\n",
        NAME ":5:23: invalid origin 'https://a.example.com/' in allowed_origins: an origin has no "
             "path, not even '/'");
    ERR(HEAD FROM TO "    allowed_origins: ['*']\n",
        NAME ":5:23: invalid origin '*' in allowed_origins: expected scheme://host");
    ERR(HEAD FROM TO "    allowed_origins: ['null']\n",
        NAME ":5:23: invalid origin 'null' in allowed_origins: expected scheme://host");
    ERR(HEAD FROM TO "    allowed_origins: [sse+https://a]\n",
        NAME ":5:23: invalid origin 'sse+https://a' in allowed_origins: an origin's scheme is "
             "http or https");
    ERR(HEAD FROM TO "    allowed_origins: https://a\n",
        NAME ":5:22: 'allowed_origins' must be a list, not a string");
    ERR(HEAD FROM TO "    set_request_headers: {Host: x}\n",
        NAME ":5:27: set_request_headers cannot change the 'Host' header");
    ERR(HEAD FROM TO "    set_request_headers: {transfer-encoding: x}\n",
        NAME ":5:27: set_request_headers cannot change the 'Transfer-Encoding' header");
    ERR(HEAD FROM TO "    set_request_headers: {CONTENT-LENGTH: '1'}\n",
        NAME ":5:27: set_request_headers cannot change the 'Content-Length' header");
    ERR(HEAD FROM TO "    set_request_headers: {Connection: close}\n",
        NAME ":5:27: set_request_headers cannot change the 'Connection' header");
    ERR(HEAD FROM TO "    set_request_headers: {'Bad Header': x}\n",
        NAME ":5:27: 'Bad Header' in set_request_headers is not a valid header name");
    ERR(HEAD FROM TO "    set_request_headers: {X-A: \"a\\r\\nX-B: b\"}\n",
        NAME ":5:32: value of header 'X-A' contains control characters");
    ERR(HEAD FROM TO "    set_request_headers: {X-A: ' a'}\n",
        NAME ":5:32: value of header 'X-A' starts or ends with whitespace");
    ERR(HEAD FROM TO "    set_request_headers: {X-A: a, x-a: b}\n",
        NAME ":5:35: header 'x-a' appears twice in set_request_headers (first at line 5)");
    ERR(HEAD FROM TO "    set_request_headers: [X-A]\n",
        NAME ":5:26: 'set_request_headers' must be a mapping, not a list");
    ERR(HEAD FROM TO "    remove_request_headers: [Content-Length]\n",
        NAME ":5:30: remove_request_headers cannot change the 'Content-Length' header");
    ERR(HEAD FROM TO "    remove_request_headers: [X-A, x-A]\n",
        NAME ":5:35: header 'x-A' appears twice in remove_request_headers (first at line 5)");
    ERR(HEAD FROM "    to: stdio:x\n    set_request_headers: {X-A: b}\n",
        NAME ":5:5: 'set_request_headers' only applies to http and sse upstreams");
    ERR(HEAD FROM TO "    allow_public_unauthenticated_access: on\n",
        NAME ":5:42: 'allow_public_unauthenticated_access': 'on' is not a boolean in YAML 1.2; "
             "write true or false");
    ERR(HEAD FROM TO "    foo: 1\n", NAME ":5:5: unknown key 'foo' in route");

    /* Across routes. */
    ERR("routes:\n"
        "  - {name: a, from: 'https://x.example.com/p', to: 'http://b'}\n"
        "  - {name: a, from: 'https://x.example.com/q', to: 'http://b'}\n",
        NAME ":3:12: duplicate route name 'a' (first at line 2)");
    ERR("routes:\n"
        "  - {name: a, from: 'https://x.example.com/p', to: 'http://b'}\n"
        "  - {name: b, from: 'https://X.example.com:443/p/', to: 'http://b'}\n",
        NAME ":3:21: 'from' 'https://X.example.com:443/p/' is already served by the route at "
             "line 2");
    OK("routes:\n"
       "  - {name: a, from: 'https://x.example.com/p', to: 'http://b'}\n"
       "  - {name: b, from: 'https://x.example.com/p/q', to: 'http://b'}\n"
       "  - {name: c, from: 'https://x.example.com:8443/p', to: 'http://b'}\n"
       "  - {name: d, from: 'https://y.example.com/p', to: 'http://b'}\n"
       "  - {name: e, from: 'https://x.example.com', to: 'http://b'}\n",
       "distinct host/port/prefix combinations");
    /* Several bad routes: every one reported, in file order. */
    ERR("routes:\n"
        "  - {name: a, from: 'https://x.example.com', to: 'gopher://b'}\n"
        "  - {name: b, from: 'https://y.example.com', to: 'http://b', bogus: 1}\n"
        "  - {name: c, from: 'https://z.example.com', to: 'http://b'}\n"
        "  - {name: d, from: 'https://w.example.com', to: 'http://b', timeout: never}\n",
        NAME ":2:50: invalid 'to' URL 'gopher://b': unsupported scheme (use http, https, sse+http "
             "or sse+https)\n" NAME ":3:62: unknown key 'bogus' in route\n" NAME
             ":5:71: 'timeout' must be a duration such as 250ms, 5s, 10m or 1h");
#undef FROM
#undef TO
}

static void test_audit(void)
{
    static const struct {
        const char *yaml;
        int sink, args;
        const char *path;
        bool sync, fail_open;
        size_t max_queue;
        uint64_t sync_interval_ms;
    } ok[] = {
        {"audit: {}\n", MG_CONF_AUDIT_FILE, MG_CONF_AUDIT_ARGS_REDACTED, "./state/audit.jsonl",
         false, false, 10000, 20},
        {"state_dir: /var/lib/g\naudit: {sink: file}\n", MG_CONF_AUDIT_FILE,
         MG_CONF_AUDIT_ARGS_REDACTED, "/var/lib/g/audit.jsonl", false, false, 10000, 20},
        {"audit: {path: /log/a.jsonl, arguments: none, sync: true}\n", MG_CONF_AUDIT_FILE,
         MG_CONF_AUDIT_ARGS_NONE, "/log/a.jsonl", true, false, 10000, 20},
        {"audit: {sink: syslog, arguments: keys, on_failure: deny}\n", MG_CONF_AUDIT_SYSLOG,
         MG_CONF_AUDIT_ARGS_KEYS, NULL, false, false, 10000, 20},
        {"access_log: off\naudit: {sink: stdout, on_failure: allow, max_queue: 1}\n",
         MG_CONF_AUDIT_STDOUT, MG_CONF_AUDIT_ARGS_REDACTED, NULL, false, true, 1, 20},
        {"access_log: stderr\naudit:\n  sink: stdout\n  max_queue: 1000000\n", MG_CONF_AUDIT_STDOUT,
         MG_CONF_AUDIT_ARGS_REDACTED, NULL, false, false, 1000000, 20},
        {"audit: {sink: store, arguments: redacted}\n", MG_CONF_AUDIT_STORE,
         MG_CONF_AUDIT_ARGS_REDACTED, NULL, false, false, 10000, 20},
        {"audit: {sync_interval: 1ms}\n", MG_CONF_AUDIT_FILE, MG_CONF_AUDIT_ARGS_REDACTED,
         "./state/audit.jsonl", false, false, 10000, 1},
        {"audit: {sink: file, sync: false, sync_interval: 10s}\n", MG_CONF_AUDIT_FILE,
         MG_CONF_AUDIT_ARGS_REDACTED, "./state/audit.jsonl", false, false, 10000, 10000},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(ok); i++) {
        char yaml[512];
        struct mg_conf *c = NULL;
        char *err = NULL;
        snprintf(yaml, sizeof yaml, "%s" ROUTE, ok[i].yaml);
        TAP_IS_INT(load(yaml, &c, &err), 0, "audit case %zu loads", i);
        if (c == NULL) {
            printf("#   %s\n", err ? err : "");
            free(err);
            continue;
        }
        TAP_OK(c->audit.sink == (enum mg_conf_audit_sink)ok[i].sink &&
                   c->audit.arguments == (enum mg_conf_audit_args)ok[i].args &&
                   c->audit.sync == ok[i].sync && c->audit.fail_open == ok[i].fail_open &&
                   c->audit.max_queue == ok[i].max_queue &&
                   c->audit.sync_interval_ms == ok[i].sync_interval_ms,
               "audit case %zu: sink, arguments, sync, on_failure, max_queue, sync_interval", i);
        TAP_IS_STR(c->audit.path, ok[i].path, "audit case %zu: path", i);
        mg_conf_unref(c);
    }

    ERR("audit: true\n" ROUTE, NAME ":1:8: 'audit' must be a mapping, not a string");
    ERR("audit:\n" ROUTE, NAME ":1:1: 'audit' has no value; expected a mapping");
    ERR("audit: {sink: kafka}\n" ROUTE,
        NAME ":1:15: 'sink' must be file, stdout, store or syslog, not 'kafka'");
    ERR("audit: {sink: File}\n" ROUTE,
        NAME ":1:15: 'sink' must be file, stdout, store or syslog, not 'File'");
    ERR("audit: {sink: [file]}\n" ROUTE,
        NAME ":1:15: 'sink' must be file, stdout, store or syslog, not a list");
    ERR("audit: {arguments: all}\n" ROUTE,
        NAME ":1:20: 'arguments' must be none, keys, redacted or full, not 'all'");
    ERR("audit:\n  arguments:\n" ROUTE,
        NAME ":2:3: 'arguments' has no value; expected none, keys, redacted or full");
    ERR("audit: {on_failure: ignore}\n" ROUTE,
        NAME ":1:21: 'on_failure' must be deny or allow, not 'ignore'");
    ERR("audit: {sync: yes}\n" ROUTE,
        NAME ":1:15: 'sync': 'yes' is not a boolean in YAML 1.2; write true or false");
    ERR("audit: {max_queue: 0}\n" ROUTE,
        NAME ":1:20: 'max_queue' must be a decimal integer from 1 to 1000000");
    ERR("audit: {max_queue: 1000001}\n" ROUTE,
        NAME ":1:20: 'max_queue' must be a decimal integer from 1 to 1000000");
    ERR("audit: {path: ''}\n" ROUTE, NAME ":1:15: 'path' must not be empty");
    ERR("audit: {sink: store, path: /x.jsonl}\n" ROUTE,
        NAME ":1:22: 'path' is only for sink: file");
    ERR("audit:\n  path: /x.jsonl\n  sink: syslog\n" ROUTE,
        NAME ":2:3: 'path' is only for sink: file");
    ERR("audit: {sync_interval: 0ms}\n" ROUTE,
        NAME ":1:24: 'sync_interval' must be from 1ms to 10s");
    ERR("audit: {sync_interval: 11s}\n" ROUTE,
        NAME ":1:24: 'sync_interval' must be from 1ms to 10s");
    ERR("audit: {sync_interval: soon}\n" ROUTE,
        NAME ":1:24: 'sync_interval' must be a duration such as 250ms, 5s, 10m or 1h");
    ERR("audit: {sink: store, sync_interval: 1s}\n" ROUTE,
        NAME ":1:22: 'sync_interval' is only for sink: file");
    ERR("audit: {sink: stdout, sync_interval: 1s}\naccess_log: off\n" ROUTE,
        NAME ":1:23: 'sync_interval' is only for sink: file");
    ERR("audit:\n  sync_interval: 1s\n  sync: true\n" ROUTE,
        NAME ":2:3: 'sync_interval' is only for sync: false (with sync: true every batch is "
             "synced before its responses)");
    ERR("audit: {sink: stdout}\n" ROUTE,
        NAME ":1:15: audit sink 'stdout' cannot share standard output with the access log; set "
             "access_log to a file, stderr or off");
    ERR("audit: {level: 1}\n" ROUTE, NAME ":1:9: unknown key 'level' in audit");
    ERR("audit: {sink: store, sink: file}\n" ROUTE,
        NAME ":1:22: duplicate key 'sink' (first at line 1)");
}

static void test_yaml_features(void)
{
    ERR("workers: &w 1\n" ROUTE, NAME ":1:10: YAML anchors ('&name') are not allowed");
    ERR("x: &a {b: 1}\n" ROUTE, NAME ":1:4: YAML anchors ('&name') are not allowed");
    ERR("routes:\n  - &r {name: a, from: 'http://a', to: 'http://b'}\n",
        NAME ":2:5: YAML anchors ('&name') are not allowed");
    ERR("policy: *a\n" ROUTE,
        NAME ":1:9: YAML aliases ('*name') are not allowed; repeat the value instead");
    ERR("workers: !!int 1\n" ROUTE, NAME ":1:10: YAML tags ('!tag') are not allowed");
    ERR("policy: !custom {a: 1}\n" ROUTE, NAME ":1:9: YAML tags ('!tag') are not allowed");
    ERR("workers: 1\nworkers: 2\n" ROUTE, NAME ":2:1: duplicate key 'workers' (first at line 1)");
    ERR("policy: {a: 1, b: 2, a: 3}\n" ROUTE, NAME ":1:22: duplicate key 'a' (first at line 1)");
    ERR(HEAD "    name: s\n    from: https://a\n    to: http://b\n",
        NAME ":3:5: duplicate key 'name' (first at line 2)");
    ERR("? [a]\n: 1\n" ROUTE, NAME ":1:3: mapping keys must be strings, not lists");
    ERR("---\nworkers: 1\n---\nworkers: 2\n", NAME ":3:1: only one YAML document is allowed");
    ERR("- a\n- b\n", NAME ":1:1: the configuration must be a mapping of keys, not a list");
    ERR("just a string\n", NAME ":1:1: the configuration must be a mapping of keys, not a string");
    ERR("", NAME ":1:1: the configuration is empty; at least one route is required");
    ERR("# only a comment\n\n",
        NAME ":1:1: the configuration is empty; at least one route is required");
    ERR("state_dir: \"a\\0b\"\n" ROUTE, NAME ":1:12: NUL characters are not allowed");
    ERR("\"evil\\nt.yaml:9:9: forged\": 1\n" ROUTE,
        NAME ":1:1: unknown key 'evil\\x0at.yaml:9:9: forged' at top level");
    ERR_PREFIX("state_dir: \"\xff\"\n" ROUTE, NAME ":1:13: invalid input: ");
    ERR_PREFIX("workers: 1\nstate_dir: \"\xc3\xa9\xff\"\n" ROUTE, NAME ":2:14: invalid input: ");
    ERR_PREFIX("workers: [1, 2\n" ROUTE, NAME ":2:7: YAML syntax error: ");
    ERR_PREFIX("a: b: c\n", NAME ":1:5: YAML syntax error: mapping values are not allowed");
    ERR_PREFIX("routes:\n  - name: a\n   bad\n", NAME ":3:4: YAML syntax error: ");
    ERR_PREFIX("x: \"unterminated\n", NAME ":2:1: YAML syntax error: ");
    OK("%YAML 1.2\n---\n" ROUTE "...\n", "explicit document markers and %YAML directive");
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1), *p = s;
    memcpy(p, head, hl);
    p += hl;
    for (size_t i = 0; i < n; i++, p += ul)
        memcpy(p, unit, ul);
    memcpy(p, tail, tl + 1);
    return s;
}

static void test_bounds(void)
{
    struct mg_conf *c = NULL;
    char *err = NULL, *yaml, *inner;

    /* Nesting: the top-level mapping plus 63 lists is 64 levels. */
    inner = repeat("", "]", 63, "\n" ROUTE);
    yaml = repeat("extra: ", "[", 63, inner);
    /* The tree is built (64 levels are fine); only the key is then unknown. */
    ERR(yaml, NAME ":1:1: unknown key 'extra' at top level");
    free(yaml);
    free(inner);
    inner = repeat("", "]", 64, "\n" ROUTE);
    yaml = repeat("policy: ", "[", 64, inner);
    ERR(yaml, NAME ":1:72: nesting deeper than 64 levels");
    TAP_IS_INT(load(yaml, &c, &err), MG_ELIMIT, "deep nesting is MG_ELIMIT");
    free(err);
    free(yaml);
    free(inner);
    yaml = repeat("policy: ", "[", 100000, "");
    ERR(yaml, NAME ":1:72: nesting deeper than 64 levels");
    free(yaml);

    /* Routes: 10,000 distinct ones load; one more is refused. */
    {
        size_t n = 10001, cap = n * 64 + 64, len = 0;
        yaml = malloc(cap);
        len += (size_t)snprintf(yaml + len, cap - len, "routes:\n");
        for (size_t i = 0; i < n - 1; i++)
            len += (size_t)snprintf(yaml + len, cap - len,
                                    "- {name: r%zu, from: 'http://a/p%zu', to: 'stdio:x'}\n", i, i);
        c = NULL;
        err = NULL;
        TAP_IS_INT(mg_conf_load_string(NAME, yaml, len, &c, &err), 0, "10000 routes load");
        TAP_IS_INT(c ? c->n_routes : 0, 10000, "10000 routes");
        TAP_IS_INT(c ? c->routes[9999].line : 0, 10001, "last route's line");
        mg_conf_unref(c);
        free(err);
        len += (size_t)snprintf(yaml + len, cap - len,
                                "- {name: x, from: 'http://a/x', to: 'stdio:x'}\n");
        c = NULL;
        err = NULL;
        TAP_IS_INT(mg_conf_load_string(NAME, yaml, len, &c, &err), MG_ELIMIT,
                   "10001 routes: MG_ELIMIT");
        TAP_IS_STR(err, NAME ":1:1: too many routes (10001); the limit is 10000",
                   "10001 routes refused");
        free(err);
        free(yaml);
    }

    /* Size: exactly 1 MiB loads, one byte more does not. */
    {
        size_t max = 1024 * 1024;
        yaml = malloc(max + 1);
        memset(yaml, '#', max + 1);
        memcpy(yaml, ROUTE, strlen(ROUTE));
        c = NULL;
        err = NULL;
        TAP_IS_INT(mg_conf_load_string(NAME, yaml, max, &c, &err), 0, "exactly 1 MiB loads");
        mg_conf_unref(c);
        free(err);
        c = NULL;
        err = NULL;
        TAP_IS_INT(mg_conf_load_string(NAME, yaml, max + 1, &c, &err), MG_ELIMIT,
                   "1 MiB + 1: MG_ELIMIT");
        TAP_IS_STR(err, NAME ":1:1: the configuration is 1048577 bytes; the limit is 1 MiB",
                   "1 MiB + 1 refused");
        TAP_OK(c == NULL, "no conf on failure");
        free(err);
        free(yaml);
    }

    /* Errors are capped: 60 bad routes give 50 messages and a last line. */
    {
        yaml = repeat("routes:\n", "- {name: '!'}\n", 60, "");
        err = err_of(yaml);
        size_t lines = 0;
        for (const char *p = err; p && *p; p++)
            lines += *p == '\n';
        TAP_IS_INT(lines, 50, "error lines capped at 50 + 1");
        TAP_OK(err && strstr(err, "too many errors; stopping here") != NULL, "cap announced");
        free(err);
        free(yaml);
    }
}

/* Every prefix of a valid file either loads or fails with a located error,
 * never both and never neither; under ASan this also checks the cleanup of
 * every partially built configuration. */
static void test_truncations(void)
{
    size_t n = strlen(full), loaded = 0, bad = 0;
    for (size_t len = 0; len <= n; len++) {
        struct mg_conf *c = NULL;
        char *err = NULL;
        char *copy = malloc(len ? len : 1);
        memcpy(copy, full, len); /* exactly len bytes: no NUL to lean on */
        int rc = mg_conf_load_string(NAME, copy, len, &c, &err);
        if (rc == 0 && c && !err)
            loaded++;
        else if (rc < 0 && !c && err && strncmp(err, NAME ":", strlen(NAME) + 1) == 0 &&
                 err[strlen(NAME) + 1] >= '1' && err[strlen(NAME) + 1] <= '9')
            ;
        else
            bad++;
        mg_conf_unref(c);
        free(err);
        free(copy);
    }
    TAP_IS_INT(bad, 0, "every truncation of the full config: loaded, or located error");
    TAP_OK(loaded > 0 && loaded < n, "some truncations load, most do not (%zu of %zu)", loaded, n);
}

static void test_urls(void)
{
    struct mg_url u;
    TAP_IS_INT(mg_url_parse("http://Example.COM", &u), 0, "plain http");
    TAP_IS_STR(u.scheme, "http", "scheme");
    TAP_IS_STR(u.host, "example.com", "host lower case");
    TAP_IS_INT(u.port, 80, "http default port");
    TAP_OK(!u.port_explicit, "port not explicit");
    TAP_IS_STR(u.path, "", "no path is \"\"");
    mg_url_fini(&u);
    TAP_OK(u.host == NULL && u.scheme == NULL && u.path == NULL, "fini clears");
    mg_url_fini(&u);

    TAP_IS_INT(mg_url_parse("HTTPS://a.b:8443/x/y/", &u), 0, "https with port and path");
    TAP_IS_STR(u.scheme, "https", "scheme lower case");
    TAP_IS_INT(u.port, 8443, "explicit port");
    TAP_OK(u.port_explicit, "port explicit");
    TAP_IS_STR(u.path, "/x/y", "trailing / stripped");
    mg_url_fini(&u);

    TAP_IS_INT(mg_url_parse("https://[2001:DB8::1]:9000/mcp", &u), 0, "IPv6 with port");
    TAP_IS_STR(u.host, "2001:db8::1", "IPv6 without brackets, lower case");
    TAP_IS_INT(u.port, 9000, "IPv6 port");
    TAP_IS_STR(u.path, "/mcp", "IPv6 path");
    mg_url_fini(&u);

    TAP_IS_INT(mg_url_parse("https://[::1]", &u), 0, "IPv6 without port");
    TAP_IS_STR(u.host, "::1", "::1");
    TAP_IS_INT(u.port, 443, "https default port");
    mg_url_fini(&u);

    TAP_IS_INT(mg_url_parse("sse+https://h/sse", &u), 0, "sse+https");
    TAP_IS_INT(u.port, 443, "sse+https default port");
    TAP_IS_STR(u.scheme, "sse+https", "sse+https scheme");
    mg_url_fini(&u);
    TAP_IS_INT(mg_url_parse("SSE+HTTP://h", &u), 0, "sse+http");
    TAP_IS_INT(u.port, 80, "sse+http default port");
    TAP_IS_STR(u.scheme, "sse+http", "sse+http scheme lower case");
    mg_url_fini(&u);
    TAP_IS_INT(mg_url_parse("http://h/", &u), 0, "root path");
    TAP_IS_STR(u.path, "", "\"/\" is no prefix");
    mg_url_fini(&u);
    TAP_IS_INT(mg_url_parse("http://my_svc-1.local:1/a-b_c.d~e/f:g@h", &u), 0,
               "permitted characters");
    TAP_IS_STR(u.path, "/a-b_c.d~e/f:g@h", "path kept");
    TAP_IS_INT(u.port, 1, "port 1");
    mg_url_fini(&u);
    TAP_IS_INT(mg_url_parse("http://1.2.3.4:65535", &u), 0, "IPv4 and port 65535");
    TAP_IS_INT(u.port, 65535, "port 65535");
    mg_url_fini(&u);

    static const char *const bad[] = {
        "",
        "http",
        "http:/h",
        "http://",
        "http://:80",
        "http://h:",
        "http://h:abc",
        "http://h:99999",
        "http://h:123456",
        "http://h:+80",
        "http://h:0",
        "http://u@h",
        "http://h/?q",
        "http://h?q",
        "http://h#f",
        "http://h/a//b",
        "http://h//",
        "http://h/a/../b",
        "http://h/..",
        "http://h/.",
        "http://h/%2e",
        "http://h h",
        "http://h/a b",
        "http://h/\x01",
        "http://h/\xc3\xa9",
        "ftp://h",
        "stdio:x",
        "1http://h",
        "http://[::1",
        "http://[::1]x",
        "http://[zz::1]",
        "http://[fe80::1%25eth0]",
        "http://[]",
        "http://::1",
        "http://a..b",
        "http://.a",
        "http://a.",
        "http://300.1.1.1",
        "http://1.2.3",
        "http://h\\x",
        "http://h:80:80",
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        memset(&u, 0x5a, sizeof u);
        int rc = mg_url_parse(bad[i], &u);
        TAP_IS_INT(rc, MG_EINVAL, "bad URL %zu refused", i);
        TAP_OK(u.scheme == NULL && u.host == NULL && u.path == NULL, "bad URL %zu leaves zeroes",
               i);
    }
    TAP_IS_INT(mg_url_parse(NULL, &u), MG_EINVAL, "NULL URL");
    mg_url_fini(NULL);

    /* DNS limits: 253 characters, labels of 63. */
    char name[300];
    memcpy(name, "http://", 7);
    memset(name + 7, 'a', 63);
    name[7 + 63] = '\0';
    TAP_IS_INT(mg_url_parse(name, &u), 0, "63-character label");
    mg_url_fini(&u);
    name[7 + 64] = '\0';
    name[7 + 63] = 'a';
    TAP_IS_INT(mg_url_parse(name, &u), MG_EINVAL, "64-character label");
    for (size_t i = 0; i < 4; i++) /* 4 x (62 + '.') + 1 = 253 */
        memcpy(name + 7 + i * 63, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.",
               63);
    name[7 + 252] = 'c';
    name[7 + 253] = '\0';
    TAP_IS_INT(mg_url_parse(name, &u), 0, "253-character host");
    mg_url_fini(&u);
    name[7 + 253] = 'c';
    name[7 + 254] = '\0';
    TAP_IS_INT(mg_url_parse(name, &u), MG_EINVAL, "254-character host");

    char longurl[2100];
    memcpy(longurl, "http://h/", 9);
    memset(longurl + 9, 'a', sizeof longurl - 10);
    longurl[sizeof longurl - 1] = '\0';
    TAP_IS_INT(mg_url_parse(longurl, &u), MG_EINVAL, "URL over 2048 characters");
    longurl[2048] = '\0';
    TAP_IS_INT(mg_url_parse(longurl, &u), 0, "URL of 2048 characters");
    mg_url_fini(&u);
}

static void test_durations(void)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t ms;
    } cases[] = {
        {"250ms", 0, 250},
        {"5s", 0, 5000},
        {"10m", 0, 600000},
        {"1h", 0, 3600000},
        {"90", 0, 90000},
        {"0", 0, 0},
        {"0ms", 0, 0},
        {"007s", 0, 7000},
        {"18446744073709551615ms", 0, UINT64_MAX},
        {"18446744073709551615s", MG_ELIMIT, 0},
        {"18446744073709551616ms", MG_ELIMIT, 0},
        {"18446744073709551615", MG_ELIMIT, 0},
        {"5124095576030432h", MG_ELIMIT, 0},
        {"", MG_EINVAL, 0},
        {"-1", MG_EINVAL, 0},
        {"-1s", MG_EINVAL, 0},
        {"+1s", MG_EINVAL, 0},
        {"1.5s", MG_EINVAL, 0},
        {"5 s", MG_EINVAL, 0},
        {" 5s", MG_EINVAL, 0},
        {"5s ", MG_EINVAL, 0},
        {"5S", MG_EINVAL, 0},
        {"5d", MG_EINVAL, 0},
        {"5us", MG_EINVAL, 0},
        {"5sec", MG_EINVAL, 0},
        {"5ms5", MG_EINVAL, 0},
        {"s", MG_EINVAL, 0},
        {"ms", MG_EINVAL, 0},
        {"1h30m", MG_EINVAL, 0},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(cases); i++) {
        uint64_t ms = 12345;
        int rc = mg_duration_parse(cases[i].s, &ms);
        TAP_IS_INT(rc, cases[i].rc, "duration '%s' status", cases[i].s);
        if (cases[i].rc == 0)
            TAP_OK(ms == cases[i].ms, "duration '%s' = %llu ms", cases[i].s,
                   (unsigned long long)cases[i].ms);
        else
            TAP_IS_INT(ms, 12345, "duration '%s' leaves output alone", cases[i].s);
    }
    uint64_t ms;
    TAP_IS_INT(mg_duration_parse(NULL, &ms), MG_EINVAL, "NULL duration");
}

static void test_hostport(void)
{
    char *host = NULL;
    uint16_t port = 0;
    TAP_IS_INT(mg_hostport_parse("127.0.0.1:8443", &host, &port), 0, "IPv4 host:port");
    TAP_IS_STR(host, "127.0.0.1", "IPv4 host");
    TAP_IS_INT(port, 8443, "port");
    free(host);
    TAP_IS_INT(mg_hostport_parse("[::1]:1", &host, &port), 0, "[v6]:port");
    TAP_IS_STR(host, "::1", "v6 host without brackets");
    TAP_IS_INT(port, 1, "port 1");
    free(host);
    TAP_IS_INT(mg_hostport_parse("LocalHost:65535", &host, &port), 0, "name:port");
    TAP_IS_STR(host, "localhost", "name lower case");
    TAP_IS_INT(port, 65535, "port 65535");
    free(host);
    TAP_IS_INT(mg_hostport_parse(NULL, &host, &port), MG_EINVAL, "NULL listen address");
    static const char *const bad[] = {
        "h", "h:0", ":80", "[::1]", "::1:80", "h:", "h:65536", "[::1]80", "h:80/x", "", "*:80"};
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        host = NULL;
        TAP_IS_INT(mg_hostport_parse(bad[i], &host, &port), MG_EINVAL, "bad listen '%s'", bad[i]);
        TAP_OK(host == NULL, "bad listen '%s' allocates nothing", bad[i]);
    }
}

static void test_files(void)
{
    char path[] = "/tmp/test_conf_XXXXXX";
    struct mg_conf *c = NULL;
    char *err = NULL, want[256];
    int fd = mkstemp(path);
    TAP_OK(fd >= 0, "temp file");
    if (fd < 0)
        return;
    /* TAP_OK evaluates its condition twice: no side effects inside it. */
    bool done = write(fd, ROUTE, strlen(ROUTE)) == (ssize_t)strlen(ROUTE);
    TAP_OK(done, "write config");
    TAP_IS_INT(mg_conf_load(path, &c, &err), 0, "load from file");
    TAP_IS_STR(c ? c->path : NULL, path, "path recorded");
    TAP_IS_INT(c ? c->n_routes : 0, 1, "file route");
    mg_conf_unref(c);
    free(err);

    /* Errors name the file. */
    done = ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 &&
           write(fd, "workers: x\n" ROUTE, strlen("workers: x\n" ROUTE)) > 0;
    TAP_OK(done, "rewrite with a bad config");
    err = NULL;
    TAP_IS_INT(mg_conf_load(path, &c, &err), MG_EINVAL, "bad file: MG_EINVAL");
    snprintf(want, sizeof want, "%s:1:10: 'workers' must be a decimal integer from 0 to 256", path);
    TAP_IS_STR(err, want, "bad file: message names the file");
    free(err);

    /* Too large. */
    {
        char block[4096];
        memset(block, '#', sizeof block);
        for (size_t i = 0; i <= 256; i++)
            if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
                break;
    }
    err = NULL;
    c = NULL;
    TAP_IS_INT(mg_conf_load(path, &c, &err), MG_ELIMIT, "file over 1 MiB: MG_ELIMIT");
    snprintf(want, sizeof want, "%s:1:1: the configuration is", path);
    TAP_OK(err && strncmp(err, want, strlen(want)) == 0 && strstr(err, "the limit is 1 MiB"),
           "file over 1 MiB: message");
    TAP_OK(c == NULL, "file over 1 MiB: no conf");
    free(err);
    close(fd);
    unlink(path);

    err = NULL;
    TAP_IS_INT(mg_conf_load(path, &c, &err), MG_EIO, "missing file: MG_EIO");
    snprintf(want, sizeof want, "%s: cannot open: %s", path, strerror(ENOENT));
    TAP_IS_STR(err, want, "missing file: message");
    free(err);
    err = NULL;
    TAP_IS_INT(mg_conf_load("/tmp", &c, &err), MG_EIO, "directory: MG_EIO");
    TAP_IS_STR(err, "/tmp: cannot read: is a directory", "directory: message");
    free(err);
    err = NULL;
    TAP_IS_INT(mg_conf_load("/dev/zero", &c, &err), MG_ELIMIT, "endless file: MG_ELIMIT");
    TAP_IS_STR(err, "/dev/zero:1:1: the configuration is larger than 1 MiB",
               "endless file: message");
    free(err);
    TAP_IS_INT(mg_conf_load("/nonexistent/x.yaml", &c, NULL), MG_EIO, "err may be NULL");
    TAP_IS_INT(mg_conf_load_string(NAME, "x", 1, &c, NULL), MG_EINVAL, "err may be NULL (string)");
}

int main(void)
{
    test_full();
    test_defaults();
    test_worker_yield();
    test_top_level_errors();
    test_audit();
    test_route_errors();
    test_yaml_features();
    test_bounds();
    test_truncations();
    test_urls();
    test_durations();
    test_hostport();
    test_files();
    return tap_done();
}
