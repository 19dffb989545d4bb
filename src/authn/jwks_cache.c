/* JWKS cache: key sets by URL over net/fetch_cache, and JWT verification
 * that refetches once on an unknown kid; see jwks_cache.h. */
#include "authn/jwks_cache.h"

#include "authn/token.h"
#include "net/fetch_cache.h"

#include <openssl/crypto.h>
#include <time.h>

struct mg_jwks_cache {
    struct mg_fetch_cache *fc;
};

struct mg_jwks_cache_req {
    struct mg_jwks_cache *c;
    struct mg_client_pool *pool;
    struct mg_fetch_cache_req *inner;
    struct mg_fetch_opts fopts;
    char *url;
    bool verify, refetched;
    char *token, *issuer, *audience, *nonce;
    int64_t now, leeway;
    mg_jwks_cache_get_cb get_cb;
    mg_jwks_cache_verify_cb verify_cb;
    void *ud;
    char why[384];
};

/* ---- the document -------------------------------------------------------------------------- */

static int parse_jwks(void *ctx, const struct mg_fetch_result *res, void **value,
                      struct mg_buf *err)
{
    struct mg_jwks *set = NULL;
    MG_UNUSED(ctx);
    if (res->status < 0) {
        mg_buf_appendf(err, "cannot fetch the JWKS: %s", res->error);
        return res->status;
    }
    if (res->http_status != 200) {
        mg_buf_appendf(err, "JWKS endpoint answered HTTP %d", res->http_status);
        return MG_EPROTO;
    }
    int rc = mg_jwks_parse(res->body, res->body_len, &set);
    if (rc < 0) {
        mg_buf_appends(err, rc == MG_ELIMIT ? "JWKS has too many keys"
                                            : "JWKS is not a valid key set document");
        return MG_EPROTO;
    }
    if (mg_jwks_count(set) == 0) {
        /* Keep the previous set rather than replace it with nothing. */
        mg_jwks_free(set);
        mg_buf_appends(err, "JWKS has no usable signing key");
        return MG_EPROTO;
    }
    *value = set;
    return 0;
}

static void free_jwks(void *value)
{
    mg_jwks_free(value);
}

static const struct mg_fetch_cache_ops jwks_ops = {.parse = parse_jwks, .free = free_jwks};

struct mg_jwks_cache *mg_jwks_cache_new(const struct mg_jwks_cache_opts *opts)
{
    struct mg_jwks_cache *c = mg_xcalloc(1, sizeof *c);
    struct mg_fetch_cache_opts o = {0};
    if (opts) {
        o.max_entries = opts->max_entries;
        o.ttl_ms = opts->ttl_ms;
        o.min_refresh_ms = opts->min_refetch_ms;
    }
    c->fc = mg_fetch_cache_new(&jwks_ops, NULL, &o);
    return c;
}

void mg_jwks_cache_free(struct mg_jwks_cache *c)
{
    if (c == NULL)
        return;
    mg_fetch_cache_free(c->fc);
    free(c);
}

/* The handle is the cache value itself, under a typed name. */
const struct mg_jwks *mg_jwks_cache_keys_set(const struct mg_jwks_cache_keys *k)
{
    return mg_fetch_cache_val_data((const struct mg_fetch_cache_val *)k);
}

void mg_jwks_cache_keys_unref(struct mg_jwks_cache_keys *k)
{
    mg_fetch_cache_val_unref((struct mg_fetch_cache_val *)k);
}

int mg_jwks_cache_peek(struct mg_jwks_cache *c, const char *url, struct mg_jwks_cache_keys **out)
{
    struct mg_fetch_cache_val *v = NULL;
    int rc = mg_fetch_cache_peek(c->fc, url, &v);
    *out = (struct mg_jwks_cache_keys *)v;
    return rc;
}

/* ---- tokens -------------------------------------------------------------------------------- */

/* True if the token's header names a kid that set lacks, or names none and
 * the set has no key at all: a refetch could help. */
static bool kid_missing(const char *token, const struct mg_jwks *set)
{
    const char *dot = strchr(token, '.');
    size_t len = dot ? (size_t)(dot - token) : 0, n = 0;
    bool missing = false;
    if (len == 0 || len > 4096)
        return false;
    uint8_t *buf = mg_xmalloc(len);
    if (mg_authn_b64url_decode(token, len, buf, len, &n) == 0) {
        json_t *h = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
        json_t *kid = json_object_get(h, "kid");
        if (json_is_string(kid))
            missing = !mg_jwks_has_kid(set, json_string_value(kid));
        else if (kid == NULL)
            missing = mg_jwks_count(set) == 0;
        json_decref(h);
    }
    free(buf);
    return missing;
}

int mg_jwks_cache_verify_cached(struct mg_jwks_cache *c, const char *url, const char *token,
                                const struct mg_jwt_expect *exp, json_t **claims_out,
                                const char **why)
{
    struct mg_fetch_cache_val *v = NULL;
    struct mg_jwt_expect e = *exp;
    if (claims_out)
        *claims_out = NULL;
    if (mg_fetch_cache_peek(c->fc, url, &v) < 0) {
        if (why)
            *why = "signing keys not fetched yet";
        return MG_EAGAIN;
    }
    const struct mg_jwks *set = mg_fetch_cache_val_data(v);
    if (e.now == 0)
        e.now = (int64_t)time(NULL);
    int rc = mg_jwt_verify(token, set, &e, claims_out, why);
    if (rc == MG_EDENIED && kid_missing(token, set)) {
        rc = MG_EAGAIN;
        if (why)
            *why = "signing key not in the cached set";
    }
    mg_fetch_cache_val_unref(v);
    return rc;
}

/* ---- requests ------------------------------------------------------------------------------ */

static void req_free(struct mg_jwks_cache_req *r)
{
    if (r->token)
        OPENSSL_cleanse(r->token, strlen(r->token));
    free(r->token);
    free(r->issuer);
    free(r->audience);
    free(r->nonce);
    free(r->url);
    free(r);
}

static int load(struct mg_jwks_cache_req *r, unsigned flags);

static void on_loaded(void *ud, int status, struct mg_fetch_cache_val *val, const char *error)
{
    struct mg_jwks_cache_req *r = ud;
    r->inner = NULL;
    if (!r->verify) {
        mg_jwks_cache_get_cb cb = r->get_cb;
        void *cud = r->ud;
        req_free(r);
        cb(cud, status, (struct mg_jwks_cache_keys *)val, error);
        return;
    }
    json_t *claims = NULL;
    const char *why = NULL;
    int rc = status;
    if (status < 0) {
        snprintf(r->why, sizeof r->why, "%s", error);
        why = r->why;
    } else {
        const struct mg_jwks *set = mg_fetch_cache_val_data(val);
        struct mg_jwt_expect e = {.issuer = r->issuer,
                                  .audience = r->audience,
                                  .nonce = r->nonce,
                                  .now = r->now ? r->now : (int64_t)time(NULL),
                                  .leeway = r->leeway};
        rc = mg_jwt_verify(r->token, set, &e, &claims, &why);
        bool retry = rc == MG_EDENIED && !r->refetched && kid_missing(r->token, set);
        mg_fetch_cache_val_unref(val);
        if (retry) {
            /* Key rotation: the issuer signs with a key published after we
             * fetched. One refetch (the cache rate-limits it per URL). */
            r->refetched = true;
            if (load(r, MG_FETCH_CACHE_REFRESH) == 0)
                return;
        }
        if (why) {
            snprintf(r->why, sizeof r->why, "%s", why);
            why = r->why;
        }
    }
    mg_jwks_cache_verify_cb cb = r->verify_cb;
    void *cud = r->ud;
    char reason[sizeof r->why];
    snprintf(reason, sizeof reason, "%s", why ? why : "");
    req_free(r);
    cb(cud, rc, claims, reason);
}

static int load(struct mg_jwks_cache_req *r, unsigned flags)
{
    return mg_fetch_cache_load(r->c->fc, r->pool, r->url, &r->fopts, flags, on_loaded, r,
                               &r->inner);
}

static struct mg_jwks_cache_req *req_new(struct mg_jwks_cache *c, struct mg_client_pool *pool,
                                         const char *url, const struct mg_fetch_opts *fopts)
{
    struct mg_jwks_cache_req *r = mg_xcalloc(1, sizeof *r);
    r->c = c;
    r->pool = pool;
    r->url = mg_xstrdup(url);
    if (fopts)
        r->fopts = *fopts;
    if (r->fopts.max_bytes == 0 || r->fopts.max_bytes > MG_JWKS_MAX_LEN)
        r->fopts.max_bytes = MG_JWKS_MAX_LEN;
    r->fopts.method = NULL; /* a JWKS is fetched with GET */
    r->fopts.body = NULL;
    r->fopts.body_len = 0;
    return r;
}

int mg_jwks_cache_get(struct mg_jwks_cache *c, struct mg_client_pool *pool, const char *url,
                      const struct mg_fetch_opts *fopts, bool refetch, mg_jwks_cache_get_cb cb,
                      void *ud, struct mg_jwks_cache_req **out)
{
    if (out)
        *out = NULL;
    if (c == NULL || pool == NULL || url == NULL || cb == NULL)
        return MG_EINVAL;
    struct mg_jwks_cache_req *r = req_new(c, pool, url, fopts);
    r->get_cb = cb;
    r->ud = ud;
    int rc = load(r, refetch ? MG_FETCH_CACHE_REFRESH : 0);
    if (rc < 0) {
        req_free(r);
        return rc;
    }
    if (out)
        *out = r;
    return 0;
}

int mg_jwks_cache_verify(struct mg_jwks_cache *c, struct mg_client_pool *pool, const char *url,
                         const struct mg_fetch_opts *fopts, const char *token,
                         const struct mg_jwt_expect *exp, mg_jwks_cache_verify_cb cb, void *ud,
                         struct mg_jwks_cache_req **out)
{
    if (out)
        *out = NULL;
    if (c == NULL || pool == NULL || url == NULL || cb == NULL || token == NULL || exp == NULL ||
        exp->issuer == NULL || exp->audience == NULL)
        return MG_EINVAL;
    if (strnlen(token, MG_JWT_MAX_LEN + 1) > MG_JWT_MAX_LEN)
        return MG_ELIMIT;
    struct mg_jwks_cache_req *r = req_new(c, pool, url, fopts);
    r->verify = true;
    r->token = mg_xstrdup(token);
    r->issuer = mg_xstrdup(exp->issuer);
    r->audience = mg_xstrdup(exp->audience);
    r->nonce = exp->nonce ? mg_xstrdup(exp->nonce) : NULL;
    r->now = exp->now;
    r->leeway = exp->leeway;
    r->verify_cb = cb;
    r->ud = ud;
    int rc = load(r, 0);
    if (rc < 0) {
        req_free(r);
        return rc;
    }
    if (out)
        *out = r;
    return 0;
}

void mg_jwks_cache_cancel(struct mg_jwks_cache_req *r)
{
    if (r == NULL)
        return;
    mg_fetch_cache_cancel(r->inner);
    req_free(r);
}
