/* The OpenID Connect relying party for `identity_providers:` (OpenID Connect
 * Core 1.0, authorization code flow with PKCE S256; Discovery 1.0). Owns the
 * provider objects built from configuration (immutable, reference-counted,
 * shared by every worker; the client secret lives here and is wiped on
 * free), the validation of discovery documents, authorization URLs, the code
 * exchange with ID token verification, and the mapping of ID token claims to
 * a struct mg_identity. Discovery documents and JWKS come from process-wide
 * caches (net/fetch_cache, authn/jwks_cache); every request to a provider
 * has a timeout, so a provider that is down is a clear error, never a hang. */
#ifndef MG_AUTHN_OIDC_H
#define MG_AUTHN_OIDC_H

#include "authn/identity.h"
#include "authn/jwks_cache.h"
#include "net/fetch_cache.h"

#define MG_OIDC_DEFAULT_SCOPES "openid email profile"
#define MG_OIDC_LEEWAY_S       60          /* clock skew allowed on exp, nbf, iat */
#define MG_OIDC_SECRET_BUF     44          /* 43 base64url characters (256 bits) + NUL */
#define MG_OIDC_MAX_RESPONSE   (64 * 1024) /* discovery and token responses */

enum mg_oidc_client_auth {
    MG_OIDC_AUTH_BASIC = 0, /* client_secret_basic (RFC 6749 §2.3.1), the default */
    MG_OIDC_AUTH_POST,      /* client_secret_post */
};

struct mg_oidc_provider_conf {
    const char *name;          /* required: letters, digits, '-', '_' (in subjects and URLs) */
    const char *display_name;  /* NULL: name */
    const char *issuer;        /* required: exact issuer URL */
    const char *client_id;     /* required */
    const char *client_secret; /* the value; NULL or "": a public client (PKCE only) */
    const char *scopes;        /* NULL: MG_OIDC_DEFAULT_SCOPES; must contain "openid" */
    const char *email_claim;   /* NULL: "email" */
    const char *name_claim;    /* NULL: "name" */
    const char *groups_claim;  /* NULL: "groups"; "a.b" also finds {"a":{"b":...}} */
    enum mg_oidc_client_auth token_auth;
    const char *ca_file; /* NULL: system CAs */
    bool allow_http;     /* plain http issuer and endpoints (loopback IdPs in tests, dev) */
    uint64_t timeout_ms; /* each request to the provider; 0: 10 s */
};

/* A provider discovery document, validated for shape (mg_oidc_discovery_parse)
 * and, per provider, for issuer and schemes (mg_oidc_discovery_check).
 * Immutable and reference-counted. */
struct mg_oidc_discovery {
    atomic_int refs;
    char *issuer;
    char *authorization_endpoint;
    char *token_endpoint;
    char *jwks_uri;
    char *userinfo_endpoint;    /* NULL if absent */
    char *end_session_endpoint; /* NULL if absent */
    bool has_pkce_methods;      /* code_challenge_methods_supported was present */
};

struct mg_oidc_provider;
struct mg_oidc_req;

/* Parses a discovery document (OpenID Connect Discovery 1.0 §3): a JSON object
 * without duplicate keys, with issuer, authorization_endpoint,
 * token_endpoint and jwks_uri as absolute http(s) URLs without fragments;
 * response_types_supported, if present, lists "code";
 * code_challenge_methods_supported, if present, lists "S256";
 * id_token_signing_alg_values_supported, if present, lists an algorithm we
 * verify (RS256, ES256, EdDSA). Pure. MG_EINVAL / MG_ELIMIT with a reason
 * appended to err. */
int mg_oidc_discovery_parse(const char *json_text, size_t len, struct mg_oidc_discovery **out,
                            struct mg_buf *err);
/* The per-provider checks (§4.3): the document's issuer equals the configured
 * issuer exactly, and every endpoint is https unless allow_http. Pure.
 * MG_EPROTO with a reason appended to err. */
int mg_oidc_discovery_check(const struct mg_oidc_discovery *d, const char *issuer, bool allow_http,
                            struct mg_buf *err);
void mg_oidc_discovery_ref(struct mg_oidc_discovery *d);
/* NULL is a no-op; thread-safe. */
void mg_oidc_discovery_unref(struct mg_oidc_discovery *d);

/* The process-wide cache of discovery documents, keyed by URL (opts: TTL,
 * default one hour; rate limit of retries after a failure, default 10 s).
 * Free it with mg_fetch_cache_free once the loops have stopped. */
struct mg_fetch_cache *mg_oidc_discovery_cache_new(const struct mg_fetch_cache_opts *opts);

/* Builds a provider (refs = 1). Copies conf; loads the TLS trust. The caches
 * must outlive it. MG_EINVAL with a reason in err for a bad configuration,
 * MG_ETLS if the CA file cannot be loaded. */
int mg_oidc_provider_new(const struct mg_oidc_provider_conf *conf,
                         struct mg_fetch_cache *discovery_cache, struct mg_jwks_cache *jwks_cache,
                         struct mg_oidc_provider **out, struct mg_buf *err);
void mg_oidc_provider_ref(struct mg_oidc_provider *p);
/* Frees at zero (wiping the client secret); NULL is a no-op. Requests hold
 * their own reference. */
void mg_oidc_provider_unref(struct mg_oidc_provider *p);
const char *mg_oidc_provider_name(const struct mg_oidc_provider *p);
const char *mg_oidc_provider_display_name(const struct mg_oidc_provider *p);
/* "{issuer without a trailing /}/.well-known/openid-configuration". */
const char *mg_oidc_provider_discovery_url(const struct mg_oidc_provider *p);

/* Fresh random nonce and PKCE code verifier, each 43 base64url characters
 * from 32 RAND_bytes. MG_EIO if the CSPRNG fails. */
int mg_oidc_new_secrets(char nonce[MG_OIDC_SECRET_BUF], char verifier[MG_OIDC_SECRET_BUF]);

/* Appends the authorization request URL (Core §3.1.2.1) to out: d's
 * authorization_endpoint with response_type=code, client_id, redirect_uri,
 * scope, state, nonce, code_challenge = S256(code_verifier) and
 * code_challenge_method=S256, each percent-encoded. state and nonce 1..512
 * bytes; code_verifier as RFC 7636 §4.1. MG_EINVAL otherwise, MG_ELIMIT if
 * out is full. */
int mg_oidc_authorize_url(const struct mg_oidc_provider *p, const struct mg_oidc_discovery *d,
                          const char *redirect_uri, const char *state, const char *nonce,
                          const char *code_verifier, struct mg_buf *out);

/* Without waiting: 0 and a reference in *out when the provider's discovery
 * document is cached and passes mg_oidc_discovery_check; else MG_ENOTFOUND. */
int mg_oidc_discovery_peek(struct mg_oidc_provider *p, struct mg_oidc_discovery **out);

/* status 0: d is a reference for the callee; otherwise d is NULL and error
 * says why (provider unreachable, not a discovery document, issuer
 * mismatch...). */
typedef void (*mg_oidc_discovery_cb)(void *ud, int status, struct mg_oidc_discovery *d,
                                     const char *error);
/* Gets the checked discovery document, fetching it on pool's loop if needed.
 * Returns 0 and *out (if not NULL): cb runs exactly once on pool's loop,
 * never inside the call. Otherwise cb never runs. */
int mg_oidc_discover(struct mg_oidc_provider *p, struct mg_client_pool *pool,
                     mg_oidc_discovery_cb cb, void *ud, struct mg_oidc_req **out);

struct mg_oidc_exchange_params {
    const char *code;          /* from the callback's query */
    const char *redirect_uri;  /* exactly as sent in the authorization request */
    const char *code_verifier; /* the PKCE verifier of this sign-in (wiped after use) */
    const char *nonce;         /* the nonce of this sign-in: the ID token must carry it */
};

/* status 0: id is a new identity (refs = 1) for the callee, with subject
 * "oidc:<provider>:<sub>", email, name, groups, claims and idp set, method
 * left for the caller. Otherwise id is NULL and error says why. */
typedef void (*mg_oidc_exchange_cb)(void *ud, int status, struct mg_identity *id,
                                    const char *error);

/* Redeems an authorization code (Core §3.1.3): discovery, then a POST to the
 * token endpoint (form-encoded, PKCE verifier, client authentication as
 * configured), then the id_token verified with the provider's JWKS (iss =
 * issuer, aud = client_id, azp when present or when several audiences, nonce,
 * exp with MG_OIDC_LEEWAY_S; one JWKS refetch on an unknown kid), then the
 * claims mapped. Copies x. Same promise as mg_oidc_discover. Statuses:
 * transport failures as mg_fetch (MG_EIO, MG_ETIMEDOUT, MG_ETLS...), MG_EPROTO
 * for a malformed or mismatched document or response, MG_EDENIED when the
 * provider refuses the code or the ID token fails verification. */
int mg_oidc_exchange(struct mg_oidc_provider *p, struct mg_client_pool *pool,
                     const struct mg_oidc_exchange_params *x, mg_oidc_exchange_cb cb, void *ud,
                     struct mg_oidc_req **out);

/* Before the callback ran, on the requester's thread: it will not run. */
void mg_oidc_cancel(struct mg_oidc_req *r);

/* Maps verified ID token claims to a new identity (refs = 1) as the exchange
 * does: sub required (1..255 bytes); the email claim (the standard "email"
 * only when email_verified is not false); groups from an array of strings or a single
 * string; claims keeps what is not mapped, minus protocol claims (iss, aud,
 * exp, iat, nbf, nonce, at_hash, c_hash, azp, jti, sid). Pure. MG_EINVAL with a
 * reason appended to err. */
int mg_oidc_map_claims(const struct mg_oidc_provider *p, const json_t *claims,
                       struct mg_identity **out, struct mg_buf *err);

#endif
