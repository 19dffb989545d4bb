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
    bool allow_public_unauthenticated_access; /* no sign-in: callers are anonymous */
    char **scopes; /* scopes: OAuth scopes a token must carry on this route (403 otherwise) */
    size_t n_scopes;
    struct mg_policy *policy; /* policy: compiled; NULL = the default (see docs/policy.md) */
    struct mg_conf_tool_class *tool_classes; /* mcp.tool_classes: overrides of annotations */
    size_t n_tool_classes;
    int line, col; /* where the route starts in the file, for messages */
};

struct mg_policy; /* policy/policy.h */

/* mcp.tool_classes: a tool's class set by the operator, overriding what the
 * upstream's annotations say (enum mg_tool_class, mcp/listfilter.h). */
struct mg_conf_tool_class {
    char *tool;
    int tool_class;
};

/* A client pre-registered in the configuration (oauth.clients). */
struct mg_conf_oauth_client {
    char *client_id;
    char *name;
    char **redirect_uris; /* exact strings; loopback http ports vary (RFC 8252 §7.3) */
    size_t n_redirect_uris;
    char *secret_file;       /* confidential clients: the secret's file, or */
    char *secret_env;        /* the environment variable holding it */
    bool client_credentials; /* grant_types includes client_credentials */
    char **groups;           /* the groups of the identity client_credentials tokens carry */
    size_t n_groups;
    int line;
};

/* An OpenID Connect provider people sign in with (identity_providers). */
struct mg_conf_idp {
    char *name;         /* [a-z0-9_-]+, unique: appears in subjects and URLs */
    char *display_name; /* the sign-in button's text; default name */
    char *issuer;       /* exact issuer URL; http only for loopback hosts */
    char *client_id;
    char *client_secret_file; /* one of these two is required */
    char *client_secret_env;
    char **scopes; /* default openid email profile */
    size_t n_scopes;
    char *claim_email;       /* claims.email, default "email" */
    char *claim_name;        /* claims.name, default "name" */
    char *claim_groups;      /* claims.groups, default "groups" */
    char *ca_file;           /* tls_custom_ca_file for the provider */
    bool client_secret_post; /* token_endpoint_auth_method: client_secret_post */
    int line;
};

/* An external authorization server whose JWT access tokens are accepted. */
struct mg_conf_jwt_issuer {
    char *issuer;
    char *jwks_url;
    char *audience; /* NULL: the route's URL (RFC 8707) */
    char *claim_email, *claim_name, *claim_groups;
    char *ca_file;
    int line;
};

/* The authorization server's settings (oauth:). */
struct mg_conf_oauth {
    uint64_t access_token_ttl_ms;        /* default 10m */
    uint64_t refresh_token_ttl_ms;       /* default 168h */
    uint64_t code_ttl_ms;                /* default 60s */
    uint64_t session_ttl_ms;             /* browser sign-in session, default 8h */
    uint64_t consent_ttl_ms;             /* remembered consent, default 168h */
    bool dynamic_registration;           /* default true */
    size_t max_clients;                  /* dynamic registrations in the store, default 10000 */
    size_t registrations_per_minute;     /* default 30 */
    bool client_metadata_documents;      /* https client_id URLs, default true */
    bool client_metadata_allow_private;  /* SSRF guard off (tests only), default false */
    size_t client_metadata_max_bytes;    /* default 64KiB */
    uint64_t client_metadata_timeout_ms; /* default 5s */
    char *client_metadata_ca_file;       /* extra CA for fetching documents (tests) */
    bool builtin_accounts;    /* sign-in form for `mcpgate users` accounts, default true */
    size_t max_failed_logins; /* before the account is throttled, default 5 */
    uint64_t lockout_ms;      /* throttle period, default 15m */
    struct mg_conf_oauth_client *clients;
    size_t n_clients;
};

enum mg_conf_audit_sink {
    MG_CONF_AUDIT_FILE,   /* JSON lines appended to audit.path */
    MG_CONF_AUDIT_STDOUT, /* JSON lines on standard output */
    MG_CONF_AUDIT_STORE,  /* the store's audit table (SQLite or PostgreSQL) */
    MG_CONF_AUDIT_SYSLOG, /* syslog(3), facility authpriv */
};

/* How much of a call's arguments an audit record keeps. */
enum mg_conf_audit_args {
    MG_CONF_AUDIT_ARGS_NONE,     /* omitted */
    MG_CONF_AUDIT_ARGS_KEYS,     /* the argument names only */
    MG_CONF_AUDIT_ARGS_REDACTED, /* values under secret-looking keys masked, long strings cut */
    MG_CONF_AUDIT_ARGS_FULL,     /* as sent */
};

/* audit.sync_interval: how long a file sink's write may wait for its
 * fdatasync (sync: false): what a power loss can cost beyond a crash
 * (docs/audit.md). 50 syncs a second cost nothing measurable on the full
 * path (bench/RESULTS.md, section 6). */
#define MG_CONF_AUDIT_SYNC_INTERVAL_MS     20
#define MG_CONF_AUDIT_SYNC_INTERVAL_MAX_MS 10000

/* Where and how decision records are written (audit:; src/audit). */
struct mg_conf_audit {
    enum mg_conf_audit_sink sink;      /* audit.sink, default file */
    char *path;                        /* audit.path (file sink only): default
                                          <state_dir>/audit.jsonl; NULL for other sinks */
    enum mg_conf_audit_args arguments; /* audit.arguments, default redacted */
    bool sync;                         /* audit.sync: durable before the response, default false */
    bool fail_open;                    /* audit.on_failure: allow (true) | deny (default) */
    size_t max_queue;                  /* audit.max_queue: records waiting, default 10000 */
    uint64_t sync_interval_ms;         /* audit.sync_interval (file sink, sync: false): a
                                          write is fdatasync'ed within this, default 20 */
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
    bool worker_yield;     /* worker_yield: yield the CPU after writing (default true) */
    char *state_dir;       /* state_dir: default "./state" (relative to the working directory) */
    bool insecure_server;  /* insecure_server: plain HTTP listener */
    bool allow_insecure_non_loopback; /* insecure_server_allow_non_loopback */
    struct mg_conf_cert *certs;       /* tls.certificates (or tls.cert + tls.key); SNI picks one */
    size_t n_certs;
    char *tls_min_version; /* tls.min_version: "1.2" (default) or "1.3" */
    char *access_log;      /* access_log: "stdout" (default), "stderr", "off" or a file path */
    char *log_level;       /* log_level: debug | info | warn | error; default info */
    char *web_dir;         /* web_dir: page templates; default $MCPGATE_WEB_DIR, else ./web */

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

    struct mg_policy *policy; /* policy: the global policy; NULL = none (everything passes it) */

    /* identity */
    char *issuer;    /* authenticate_service_url ("https://host[:port]"); NULL: derived */
    char *store_dsn; /* store: {sqlite: PATH} | {postgres: URI}; default
                        sqlite:<state_dir>/mcpgate.db */
    struct mg_conf_oauth oauth;
    struct mg_conf_idp *idps; /* identity_providers */
    size_t n_idps;
    struct mg_conf_jwt_issuer *jwt_issuers;
    size_t n_jwt_issuers;

    struct mg_conf_audit audit;
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
