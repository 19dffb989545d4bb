/* The configuration: types for everything `mcpgate serve` reads from its YAML
 * file, and the loader that builds them with file:line:col errors. A loaded
 * mg_conf is immutable and reference-counted: workers hold a reference per
 * request, and a reload swaps in a whole new one (or keeps the old one). */
#ifndef MG_CONF_CONF_H
#define MG_CONF_CONF_H

#include "core/common.h"

#include <stdatomic.h>

enum mg_upstream_kind {
    MG_UPSTREAM_HTTP,  /* Streamable HTTP: to: http:// or https:// */
    MG_UPSTREAM_SSE,   /* legacy HTTP+SSE (2024-11-05): to: sse+http:// or sse+https:// */
    MG_UPSTREAM_STDIO, /* a hosted child process: to: stdio:COMMAND */
};

/* A parsed absolute URL as used by `from` and `to`. */
struct mg_url {
    char *scheme;  /* lower case: "http", "https", "sse+http", ... */
    char *host;    /* lower case, IPv6 without brackets */
    uint16_t port; /* explicit or the scheme's default */
    bool port_explicit;
    char *path; /* "" when absent; never ends in '/' unless it is "/" */
};

struct mg_conf_env {
    char *name;
    char *value;
};

struct mg_conf_header {
    char *name;
    char *value;
};

struct mg_conf_stdio {
    char *command; /* what follows "stdio:" in `to` */
    char **args;   /* args: list of strings */
    size_t n_args;
    struct mg_conf_env *env; /* env: map; only these reach the child (plus nothing else) */
    size_t n_env;
    char *cwd;   /* cwd: NULL = the gateway's working directory */
    bool shared; /* shared: one child for every session (stateless servers only) */
};

struct mg_conf_route {
    char *name; /* name: required, unique, [A-Za-z0-9_.-]+ */
    char *from_raw;
    struct mg_url from; /* from: http(s)://host[:port][/prefix] */
    char *to_raw;
    enum mg_upstream_kind kind;
    struct mg_url to;           /* for HTTP and SSE kinds */
    struct mg_conf_stdio stdio; /* for the STDIO kind */
    uint64_t timeout_ms;        /* timeout: time to the upstream's first response byte */
    bool preserve_host_header;  /* preserve_host_header: send the client's Host upstream */
    bool tls_skip_verify;       /* tls_skip_verify: do not verify the upstream certificate */
    char *tls_custom_ca_file;   /* tls_custom_ca_file */
    char *tls_server_name;      /* tls_server_name: SNI / name to verify, default to.host */
    char **
        allowed_origins; /* allowed_origins: extra Origin values accepted besides the route's own */
    size_t n_allowed_origins;
    struct mg_conf_header *set_request_headers; /* set_request_headers: map */
    size_t n_set_request_headers;
    char **remove_request_headers; /* remove_request_headers: list */
    size_t n_remove_request_headers;
    bool allow_public_unauthenticated_access; /* parsed now; enforced by the identity phase */
    int line;                                 /* where the route starts in the file, for messages */
};

struct mg_conf_cert {
    char *cert_file;
    char *key_file;
};

struct mg_conf {
    atomic_int refs;
    char *path; /* the file it was loaded from */

    char *address;         /* address: host:port to listen on; default "127.0.0.1:8443" */
    char *metrics_address; /* metrics_address: host:port, NULL = no metrics listener */
    int workers;           /* workers: 0 = one per core */
    char *state_dir;       /* state_dir: default "./state" (relative to the working directory) */
    bool insecure_server;  /* insecure_server: plain HTTP listener */
    bool allow_insecure_non_loopback; /* insecure_server_allow_non_loopback */
    struct mg_conf_cert *certs;       /* tls.certificates (or tls.cert + tls.key); SNI picks one */
    size_t n_certs;
    char *tls_min_version; /* tls.min_version: "1.2" (default) or "1.3" */
    char *access_log;      /* access_log: "stdout" (default), "stderr", "off" or a file path */
    char *log_level;       /* log_level: debug | info | warn | error; default info */

    /* limits: */
    size_t max_header_bytes;          /* limits.max_header_bytes, default 16384 -> 431 */
    size_t max_body_bytes;            /* limits.max_body_bytes, default 4 MiB -> 413 */
    size_t max_response_header_bytes; /* limits.max_response_header_bytes, default 65536 */
    size_t max_connections;           /* limits.max_connections per gateway, default 10000 */
    size_t max_stdio_children;        /* limits.max_stdio_children, default 64 */
    size_t max_sessions;              /* limits.max_sessions (stdio and legacy SSE), default 1024 */

    /* timeouts: (durations: "250ms", "5s", "10m", "1h" or a bare number of seconds) */
    uint64_t connect_timeout_ms; /* timeouts.connect, default 5s */
    uint64_t
        first_byte_timeout_ms;  /* timeouts.first_byte, default 300s (route `timeout` overrides) */
    uint64_t idle_timeout_ms;   /* timeouts.idle: keep-alive between requests, default 60s */
    uint64_t header_timeout_ms; /* timeouts.request_header: whole request head, default 10s */
    uint64_t body_timeout_ms;   /* timeouts.request_body: whole request body, default 30s */
    uint64_t send_timeout_ms;   /* timeouts.send: queued bytes must drain within, default 60s */
    uint64_t session_idle_timeout_ms; /* timeouts.session_idle: stdio/legacy session, default 10m */
    uint64_t stdio_kill_grace_ms; /* timeouts.stdio_kill_grace: stdin close -> TERM -> KILL, default
                                     5s */
    uint64_t drain_timeout_ms;    /* timeouts.drain: SIGTERM waits this long, default 30s */

    struct mg_conf_route *routes;
    size_t n_routes;
};

/* Loads and validates a config file. On success returns 0 and *out (refs = 1).
 * On failure returns a negative status and *err (caller frees) holds one or more
 * lines of the form "FILE:LINE:COL: message" ("FILE: message" only when the file
 * cannot be read at all). MG_EIO: unreadable; MG_ELIMIT: input over a bound
 * (1 MiB, 64 levels of nesting, 10,000 routes); MG_EINVAL: anything else. */
int mg_conf_load(const char *path, struct mg_conf **out, char **err);
/* Same, from memory; `name` is used in messages. */
int mg_conf_load_string(const char *name, const char *text, size_t len, struct mg_conf **out,
                        char **err);

void mg_conf_ref(struct mg_conf *c);
void mg_conf_unref(struct mg_conf *c); /* frees at zero; NULL is a no-op */

/* Parses "http://host:port/path"-style URLs (schemes listed above). No user
 * info, query, fragment, percent-escapes, empty or dot path segments. On
 * failure returns MG_EINVAL and leaves *out zeroed. */
int mg_url_parse(const char *s, struct mg_url *out);
void mg_url_fini(struct mg_url *u);
/* Parses a duration ("250ms", "5s", "10m", "1h", "90" = seconds) into milliseconds. */
int mg_duration_parse(const char *s, uint64_t *ms);
/* Splits a listen address "host:port" or "[v6]:port" (port 1..65535). On
 * success *host (caller frees) is lower case, IPv6 without brackets. */
int mg_hostport_parse(const char *s, char **host, uint16_t *port);

#endif
