/* The JWKS documents of OpenID providers and external JWT issuers, fetched by
 * URL and shared by every worker thread (net/fetch_cache underneath): a key
 * set lives ttl_ms (default one hour), a JWT whose "kid" the set lacks
 * triggers one refetch per URL at most every min_refetch_ms (default 10 s:
 * key rotation without letting forged kids hammer the issuer), a failed
 * refetch keeps serving the old set, and a set handed out stays valid (it is
 * reference-counted) however the cache changes meanwhile. */
#ifndef MG_AUTHN_JWKS_CACHE_H
#define MG_AUTHN_JWKS_CACHE_H

#include "authn/jwt.h"
#include "net/fetch.h"

struct mg_jwks_cache;
struct mg_jwks_cache_req;
/* A reference to one fetched key set. */
struct mg_jwks_cache_keys;

struct mg_jwks_cache_opts {
    size_t max_entries;      /* URLs; 0: 64 */
    uint64_t ttl_ms;         /* 0: one hour */
    uint64_t min_refetch_ms; /* 0: 10 s */
};

/* opts NULL: defaults. */
struct mg_jwks_cache *mg_jwks_cache_new(const struct mg_jwks_cache_opts *opts);
/* Once no request is under way (loops stopped). NULL is a no-op. */
void mg_jwks_cache_free(struct mg_jwks_cache *c);

const struct mg_jwks *mg_jwks_cache_keys_set(const struct mg_jwks_cache_keys *k);
/* NULL is a no-op; thread-safe. */
void mg_jwks_cache_keys_unref(struct mg_jwks_cache_keys *k);

/* Without waiting: 0 and a reference in *out if a set for url can be used
 * now; MG_ENOTFOUND if a fetch is needed first. */
int mg_jwks_cache_peek(struct mg_jwks_cache *c, const char *url, struct mg_jwks_cache_keys **out);

/* status 0: keys is a reference for the callee. Otherwise keys is NULL and
 * error says why (unreachable, HTTP status, not a JWKS, no usable key). */
typedef void (*mg_jwks_cache_get_cb)(void *ud, int status, struct mg_jwks_cache_keys *keys,
                                     const char *error);

/* Gets the set for url, fetching it on pool's loop (fopts: trust, timeout,
 * allow_http...; max_bytes is capped at MG_JWKS_MAX_LEN) when it is missing
 * or expired, or when refetch is true and the rate limit allows. What fopts
 * points to must stay valid until cb. Returns 0 and *out (if not NULL): cb
 * runs exactly once on pool's loop, never inside the call. Else MG_EINVAL or
 * MG_ELIMIT and cb never runs. */
int mg_jwks_cache_get(struct mg_jwks_cache *c, struct mg_client_pool *pool, const char *url,
                      const struct mg_fetch_opts *fopts, bool refetch, mg_jwks_cache_get_cb cb,
                      void *ud, struct mg_jwks_cache_req **out);

/* Verifies a JWT with the cached set for url only, without waiting. As
 * mg_jwt_verify (exp->now 0: the current time), or MG_EAGAIN when the answer
 * needs a fetch: no set yet, or the token's kid is not in the set (call
 * mg_jwks_cache_verify then; it applies the refetch rate limit). */
int mg_jwks_cache_verify_cached(struct mg_jwks_cache *c, const char *url, const char *token,
                                const struct mg_jwt_expect *exp, json_t **claims_out,
                                const char **why);

/* status and why as mg_jwt_verify, or the fetch failure with a reason;
 * claims (status 0) belongs to the callee. */
typedef void (*mg_jwks_cache_verify_cb)(void *ud, int status, json_t *claims, const char *why);

/* Verifies token (copied, as are exp's strings) with the set for url,
 * fetching it if needed; a token whose kid the set lacks gets one refetch
 * (rate-limited) and a second try. exp->now 0: the time when the keys are at
 * hand. Same promise as mg_jwks_cache_get. */
int mg_jwks_cache_verify(struct mg_jwks_cache *c, struct mg_client_pool *pool, const char *url,
                         const struct mg_fetch_opts *fopts, const char *token,
                         const struct mg_jwt_expect *exp, mg_jwks_cache_verify_cb cb, void *ud,
                         struct mg_jwks_cache_req **out);

/* Before the callback ran, on the requester's thread: it will not run. */
void mg_jwks_cache_cancel(struct mg_jwks_cache_req *r);

#endif
