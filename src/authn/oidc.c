/* OpenID Connect relying party; see oidc.h.
 *
 * An exchange is three steps on the requester's loop, each bounded by the
 * provider's timeout: the discovery document (shared cache), the token
 * request (mg_fetch, sensitive: the code, the verifier and the client secret
 * are wiped from every copy we make), and the ID token check (shared JWKS
 * cache, one refetch on an unknown kid). Whatever step fails, the callback
 * gets one sentence naming the provider and the step. */
#include "authn/oidc.h"

#include "authn/pkce.h"
#include "authn/token.h"
#include "net/tls.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <strings.h>

#define DISCOVERY_SUFFIX "/.well-known/openid-configuration"
#define ERR_MAX          512

struct mg_oidc_provider {
    atomic_int refs;
    char *name, *display_name, *issuer, *client_id, *client_secret, *scopes;
    char *email_claim, *name_claim, *groups_claim;
    enum mg_oidc_client_auth token_auth;
    bool allow_http;
    char *discovery_url;
    SSL_CTX *ssl_ctx;
    struct mg_fetch_opts fopts; /* GETs to the provider: trust, timeout, size */
    struct mg_fetch_cache *discovery;
    struct mg_jwks_cache *jwks;
};

enum req_kind { REQ_DISCOVER, REQ_EXCHANGE };

struct mg_oidc_req {
    enum req_kind kind;
    struct mg_oidc_provider *p; /* a reference */
    struct mg_client_pool *pool;
    /* at most one of these is under way */
    struct mg_fetch_cache_req *disc_req;
    struct mg_fetch *fetch;
    struct mg_jwks_cache_req *verify_req;
    struct mg_oidc_discovery *d;
    char *code, *redirect_uri, *verifier, *nonce; /* exchange */
    mg_oidc_discovery_cb dcb;
    mg_oidc_exchange_cb xcb;
    void *ud;
    char err[ERR_MAX];
};

static const char *const json_accept[] = {"Accept: application/json", NULL};

/* ---- small helpers ------------------------------------------------------------------------- */

static void wipe_str(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
}

static void free_secret(char *s)
{
    wipe_str(s);
    free(s);
}

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

/* application/x-www-form-urlencoded and URL query values: everything but
 * RFC 3986 unreserved characters percent-encoded (space as %20, which every
 * form decoder accepts). Kept local and small on purpose. */
static int pct_append(struct mg_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        int rc;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = mg_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = mg_buf_append(b, e, 3);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* "&name=value" (no '&' when first), value percent-encoded. */
static int param_append(struct mg_buf *b, bool first, const char *name, const char *value)
{
    int rc = mg_buf_appends(b, first ? "" : "&");
    if (rc == 0)
        rc = mg_buf_appends(b, name);
    if (rc == 0)
        rc = mg_buf_append(b, "=", 1);
    if (rc == 0)
        rc = pct_append(b, value);
    return rc;
}

/* Provider-supplied text (error_description) goes into logs and pages:
 * printable ASCII only, bounded. */
static void append_clean(struct mg_buf *b, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max; i++) {
        char c = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        mg_buf_append(b, &c, 1);
    }
}

static bool str_ok(const char *s, size_t min, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, max + 1);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool verifier_ok(const char *v)
{
    size_t n = v ? strnlen(v, MG_PKCE_VERIFIER_MAX_LEN + 1) : 0;
    if (n < MG_PKCE_VERIFIER_MIN_LEN || n > MG_PKCE_VERIFIER_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~'))
            return false;
    }
    return true;
}

/* A JSON string without embedded NUL, or NULL. */
static const char *json_cstr(const json_t *v)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

static bool json_array_has(const json_t *arr, const char *want)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_cstr(v);
        if (s && strcmp(s, want) == 0)
            return true;
    }
    return false;
}

/* Grows b to its cap at once, so secrets written into it are never left
 * behind in a block that realloc abandoned. */
static void reserve_whole(struct mg_buf *b)
{
    static const char zeros[4096];
    while (b->len < b->max && mg_buf_append(b, zeros, MG_MIN(sizeof zeros, b->max - b->len)) == 0)
        ;
    mg_buf_reset(b);
}

/* ---- discovery documents ------------------------------------------------------------------- */

void mg_oidc_discovery_ref(struct mg_oidc_discovery *d)
{
    atomic_fetch_add(&d->refs, 1);
}

void mg_oidc_discovery_unref(struct mg_oidc_discovery *d)
{
    if (d == NULL || atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    free(d->issuer);
    free(d->authorization_endpoint);
    free(d->token_endpoint);
    free(d->jwks_uri);
    free(d->userinfo_endpoint);
    free(d->end_session_endpoint);
    free(d);
}

/* An absolute http(s) URL member. */
static int url_member(const json_t *doc, const char *name, bool required, char **out,
                      struct mg_buf *err)
{
    const json_t *v = json_object_get(doc, name);
    const char *s = json_cstr(v), *why = NULL;
    *out = NULL;
    if (v == NULL && !required)
        return 0;
    if (v == NULL) {
        mg_buf_appendf(err, "discovery document has no %s", name);
        return MG_EINVAL;
    }
    struct mg_fetch_url *u = mg_xmalloc(sizeof *u); /* big; only its verdict matters */
    bool ok = s != NULL && strchr(s, '#') == NULL && mg_fetch_url_parse(s, u, &why) == 0;
    free(u);
    if (!ok) {
        mg_buf_appendf(err, "discovery document: %s is not an absolute http(s) URL", name);
        return MG_EINVAL;
    }
    *out = mg_xstrdup(s);
    return 0;
}

int mg_oidc_discovery_parse(const char *json_text, size_t len, struct mg_oidc_discovery **out,
                            struct mg_buf *err)
{
    json_t *doc = NULL, *v;
    struct mg_oidc_discovery *d = NULL;
    int rc = MG_EINVAL;
    *out = NULL;
    if (len > MG_OIDC_MAX_RESPONSE) {
        mg_buf_appends(err, "discovery document too large");
        return MG_ELIMIT;
    }
    doc = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        mg_buf_appends(err, "discovery document is not a JSON object");
        goto out;
    }
    d = mg_xcalloc(1, sizeof *d);
    atomic_init(&d->refs, 1);
    if (url_member(doc, "issuer", true, &d->issuer, err) < 0 ||
        url_member(doc, "authorization_endpoint", true, &d->authorization_endpoint, err) < 0 ||
        url_member(doc, "token_endpoint", true, &d->token_endpoint, err) < 0 ||
        url_member(doc, "jwks_uri", true, &d->jwks_uri, err) < 0 ||
        url_member(doc, "userinfo_endpoint", false, &d->userinfo_endpoint, err) < 0 ||
        url_member(doc, "end_session_endpoint", false, &d->end_session_endpoint, err) < 0)
        goto out;
    if (strchr(d->issuer, '?') != NULL) {
        mg_buf_appends(err, "discovery document: issuer has a query"); /* Discovery §3 */
        goto out;
    }
    v = json_object_get(doc, "response_types_supported");
    if (v != NULL && (!json_is_array(v) || !json_array_has(v, "code"))) {
        mg_buf_appends(err, "provider does not support response_type code");
        goto out;
    }
    v = json_object_get(doc, "code_challenge_methods_supported");
    if (v != NULL) {
        d->has_pkce_methods = true;
        if (!json_is_array(v) || !json_array_has(v, "S256")) {
            mg_buf_appends(err, "provider does not support PKCE with S256");
            goto out;
        }
    }
    v = json_object_get(doc, "id_token_signing_alg_values_supported");
    if (v != NULL &&
        (!json_is_array(v) || !(json_array_has(v, "RS256") || json_array_has(v, "ES256") ||
                                json_array_has(v, "EdDSA")))) {
        mg_buf_appends(err, "provider signs ID tokens with no algorithm we accept "
                            "(RS256, ES256, EdDSA)");
        goto out;
    }
    *out = d;
    d = NULL;
    rc = 0;
out:
    mg_oidc_discovery_unref(d);
    json_decref(doc);
    return rc;
}

int mg_oidc_discovery_check(const struct mg_oidc_discovery *d, const char *issuer, bool allow_http,
                            struct mg_buf *err)
{
    /* Discovery §4.3: exactly the configured issuer, or an attacker who
     * controls one document could speak for another issuer. */
    if (strcmp(d->issuer, issuer) != 0) {
        mg_buf_appends(err, "discovery document issuer \"");
        append_clean(err, d->issuer, 200);
        mg_buf_appendf(err, "\" does not match the configured issuer \"%s\"", issuer);
        return MG_EPROTO;
    }
    if (!allow_http) {
        const char *const urls[] = {d->issuer, d->authorization_endpoint, d->token_endpoint,
                                    d->jwks_uri};
        for (size_t i = 0; i < MG_ARRAY_LEN(urls); i++) {
            if (!is_https(urls[i])) {
                mg_buf_appends(err, "discovery document: endpoint is not https: ");
                append_clean(err, urls[i], 200);
                return MG_EPROTO;
            }
        }
    }
    return 0;
}

static int parse_discovery(void *ctx, const struct mg_fetch_result *res, void **value,
                           struct mg_buf *err)
{
    struct mg_oidc_discovery *d = NULL;
    MG_UNUSED(ctx);
    if (res->status < 0) {
        mg_buf_appendf(err, "cannot fetch the discovery document: %s", res->error);
        return res->status;
    }
    if (res->http_status != 200) {
        mg_buf_appendf(err, "discovery document answered HTTP %d", res->http_status);
        return MG_EPROTO;
    }
    int rc = mg_oidc_discovery_parse(res->body, res->body_len, &d, err);
    if (rc < 0)
        return MG_EPROTO;
    *value = d;
    return 0;
}

static void free_discovery(void *value)
{
    mg_oidc_discovery_unref(value);
}

static const struct mg_fetch_cache_ops discovery_ops = {.parse = parse_discovery,
                                                        .free = free_discovery};

struct mg_fetch_cache *mg_oidc_discovery_cache_new(const struct mg_fetch_cache_opts *opts)
{
    return mg_fetch_cache_new(&discovery_ops, NULL, opts);
}

/* ---- providers ----------------------------------------------------------------------------- */

static bool name_ok(const char *s)
{
    if (!str_ok(s, 1, 64))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

static bool has_scope(const char *scopes, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = scopes; *p;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if ((size_t)(e - p) == n && memcmp(p, want, n) == 0)
            return true;
        p = e;
    }
    return false;
}

static void provider_free(struct mg_oidc_provider *p)
{
    free(p->name);
    free(p->display_name);
    free(p->issuer);
    free(p->client_id);
    free_secret(p->client_secret);
    free(p->scopes);
    free(p->email_claim);
    free(p->name_claim);
    free(p->groups_claim);
    free(p->discovery_url);
    SSL_CTX_free(p->ssl_ctx);
    free(p);
}

int mg_oidc_provider_new(const struct mg_oidc_provider_conf *conf,
                         struct mg_fetch_cache *discovery_cache, struct mg_jwks_cache *jwks_cache,
                         struct mg_oidc_provider **out, struct mg_buf *err)
{
    struct mg_fetch_url *u = mg_xmalloc(sizeof *u);
    const char *why = NULL;
    struct mg_oidc_provider *p = NULL;
    int rc = MG_EINVAL;
    *out = NULL;
    if (conf == NULL || discovery_cache == NULL || jwks_cache == NULL) {
        mg_buf_appends(err, "bad arguments");
        goto fail;
    }
    if (!name_ok(conf->name)) {
        mg_buf_appends(err, "provider name must be 1-64 letters, digits, '-' or '_'");
        goto fail;
    }
    if (!str_ok(conf->issuer, 1, MG_FETCH_URL_MAX) ||
        mg_fetch_url_parse(conf->issuer, u, &why) < 0 || strpbrk(conf->issuer, "?#")) {
        mg_buf_appendf(err, "provider %s: issuer must be an absolute URL without query: %s",
                       conf->name, why ? why : "has a query or fragment");
        goto fail;
    }
    if (!u->https && !conf->allow_http) {
        mg_buf_appendf(err, "provider %s: issuer must be https", conf->name);
        goto fail;
    }
    if (!str_ok(conf->client_id, 1, 255)) {
        mg_buf_appendf(err, "provider %s: client_id must be 1-255 printable bytes", conf->name);
        goto fail;
    }
    if (conf->client_secret && !str_ok(conf->client_secret, 0, 1024)) {
        mg_buf_appendf(err, "provider %s: client secret must be at most 1024 printable bytes",
                       conf->name);
        goto fail;
    }
    const char *scopes = conf->scopes ? conf->scopes : MG_OIDC_DEFAULT_SCOPES;
    if (!str_ok(scopes, 1, 1024) || !has_scope(scopes, "openid")) {
        mg_buf_appendf(err, "provider %s: scopes must include openid", conf->name);
        goto fail;
    }
    const char *claims[] = {conf->email_claim, conf->name_claim, conf->groups_claim};
    for (size_t i = 0; i < MG_ARRAY_LEN(claims); i++) {
        if (claims[i] && !str_ok(claims[i], 1, 255)) {
            mg_buf_appendf(err, "provider %s: claim names must be 1-255 printable bytes",
                           conf->name);
            goto fail;
        }
    }
    if (conf->display_name && !str_ok(conf->display_name, 1, 255)) {
        mg_buf_appendf(err, "provider %s: display name must be 1-255 printable bytes", conf->name);
        goto fail;
    }
    if (conf->token_auth != MG_OIDC_AUTH_BASIC && conf->token_auth != MG_OIDC_AUTH_POST) {
        mg_buf_appendf(err, "provider %s: unknown token endpoint auth method", conf->name);
        goto fail;
    }

    p = mg_xcalloc(1, sizeof *p);
    atomic_init(&p->refs, 1);
    p->name = mg_xstrdup(conf->name);
    p->display_name = mg_xstrdup(conf->display_name ? conf->display_name : conf->name);
    p->issuer = mg_xstrdup(conf->issuer);
    p->client_id = mg_xstrdup(conf->client_id);
    p->client_secret = mg_xstrdup(conf->client_secret ? conf->client_secret : "");
    p->scopes = mg_xstrdup(scopes);
    p->email_claim = mg_xstrdup(conf->email_claim ? conf->email_claim : "email");
    p->name_claim = mg_xstrdup(conf->name_claim ? conf->name_claim : "name");
    p->groups_claim = mg_xstrdup(conf->groups_claim ? conf->groups_claim : "groups");
    p->token_auth = conf->token_auth;
    p->allow_http = conf->allow_http;
    /* Discovery §4: a terminating '/' of the issuer is removed first. */
    size_t il = strlen(conf->issuer);
    if (il > 0 && conf->issuer[il - 1] == '/')
        il--;
    size_t ul = il + sizeof DISCOVERY_SUFFIX;
    p->discovery_url = mg_xmalloc(ul);
    snprintf(p->discovery_url, ul, "%.*s%s", (int)il, conf->issuer, DISCOVERY_SUFFIX);
    /* Trust is loaded once per provider, not per request (the system store
     * takes milliseconds to read). */
    struct mg_buf tls_err;
    mg_buf_init(&tls_err, 256);
    p->ssl_ctx = mg_tls_client_ctx_new(conf->ca_file, &tls_err);
    if (p->ssl_ctx == NULL) {
        mg_buf_appendf(err, "provider %s: cannot load CA certificates: %.*s", conf->name,
                       (int)tls_err.len, tls_err.data ? tls_err.data : "");
        mg_buf_fini(&tls_err);
        rc = MG_ETLS;
        goto fail;
    }
    mg_buf_fini(&tls_err);
    p->fopts = (struct mg_fetch_opts){
        .headers = json_accept,
        .timeout_ms = conf->timeout_ms ? conf->timeout_ms : MG_FETCH_DEFAULT_TIMEOUT,
        .max_bytes = MG_OIDC_MAX_RESPONSE,
        .ssl_ctx = p->ssl_ctx,
        .allow_http = conf->allow_http,
    };
    p->discovery = discovery_cache;
    p->jwks = jwks_cache;
    *out = p;
    free(u);
    return 0;
fail:
    if (p)
        provider_free(p);
    free(u);
    return rc;
}

void mg_oidc_provider_ref(struct mg_oidc_provider *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void mg_oidc_provider_unref(struct mg_oidc_provider *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    provider_free(p);
}

const char *mg_oidc_provider_name(const struct mg_oidc_provider *p)
{
    return p->name;
}

const char *mg_oidc_provider_display_name(const struct mg_oidc_provider *p)
{
    return p->display_name;
}

const char *mg_oidc_provider_discovery_url(const struct mg_oidc_provider *p)
{
    return p->discovery_url;
}

/* ---- the authorization request ------------------------------------------------------------- */

int mg_oidc_new_secrets(char nonce[MG_OIDC_SECRET_BUF], char verifier[MG_OIDC_SECRET_BUF])
{
    uint8_t r[64];
    int rc = 0;
    nonce[0] = verifier[0] = '\0';
    if (RAND_bytes(r, sizeof r) != 1 ||
        mg_authn_b64url_encode(r, 32, nonce, MG_OIDC_SECRET_BUF) < 0 ||
        mg_authn_b64url_encode(r + 32, 32, verifier, MG_OIDC_SECRET_BUF) < 0) {
        nonce[0] = verifier[0] = '\0';
        rc = MG_EIO;
    }
    OPENSSL_cleanse(r, sizeof r);
    return rc;
}

int mg_oidc_authorize_url(const struct mg_oidc_provider *p, const struct mg_oidc_discovery *d,
                          const char *redirect_uri, const char *state, const char *nonce,
                          const char *code_verifier, struct mg_buf *out)
{
    char challenge[MG_PKCE_CHALLENGE_LEN + 1];
    int rc = 0;
    if (p == NULL || d == NULL || !str_ok(redirect_uri, 1, MG_FETCH_URL_MAX) ||
        !str_ok(state, 1, 512) || !str_ok(nonce, 1, 512) || !verifier_ok(code_verifier))
        return MG_EINVAL;
    if (mg_pkce_challenge_s256(code_verifier, challenge) < 0)
        return MG_EIO;
    const char *ep = d->authorization_endpoint;
    size_t start = out->len;
    /* Core §3.1.2.1: the endpoint may carry its own query; keep it. */
    const char *sep = strchr(ep, '?') == NULL ? "?" : ep[strlen(ep) - 1] == '?' ? "" : "&";
    if ((rc = mg_buf_appends(out, ep)) < 0 || (rc = mg_buf_appends(out, sep)) < 0 ||
        (rc = param_append(out, true, "response_type", "code")) < 0 ||
        (rc = param_append(out, false, "client_id", p->client_id)) < 0 ||
        (rc = param_append(out, false, "redirect_uri", redirect_uri)) < 0 ||
        (rc = param_append(out, false, "scope", p->scopes)) < 0 ||
        (rc = param_append(out, false, "state", state)) < 0 ||
        (rc = param_append(out, false, "nonce", nonce)) < 0 ||
        (rc = param_append(out, false, "code_challenge", challenge)) < 0 ||
        (rc = param_append(out, false, "code_challenge_method", "S256")) < 0) {
        out->len = start; /* nothing half-written */
        return rc;
    }
    return 0;
}

/* ---- claims -------------------------------------------------------------------------------- */

/* The claim named name, or for "a.b" the member b of object a when there is
 * no claim literally named "a.b" (Keycloak's realm_access.roles). */
static const json_t *claim_get(const json_t *claims, const char *name)
{
    const json_t *v = json_object_get(claims, name);
    if (v != NULL || strchr(name, '.') == NULL)
        return v;
    char path[256];
    snprintf(path, sizeof path, "%s", name);
    v = claims;
    for (char *seg = path, *dot; v != NULL && seg != NULL; seg = dot ? dot + 1 : NULL) {
        dot = strchr(seg, '.');
        if (dot)
            *dot = '\0';
        v = json_is_object(v) ? json_object_get(v, seg) : NULL;
    }
    return v;
}

int mg_oidc_map_claims(const struct mg_oidc_provider *p, const json_t *claims,
                       struct mg_identity **out, struct mg_buf *err)
{
    static const char *const protocol[] = {"iss",     "aud",    "exp", "iat", "nbf", "nonce",
                                           "at_hash", "c_hash", "azp", "jti", "sid"};
    struct mg_identity *id = NULL;
    json_t *rest = NULL;
    *out = NULL;
    if (!json_is_object(claims)) {
        mg_buf_appends(err, "claims are not an object");
        return MG_EINVAL;
    }
    const char *sub = json_cstr(json_object_get(claims, "sub"));
    if (sub == NULL || !str_ok(sub, 1, 255)) {
        mg_buf_appends(err, "ID token has no valid sub claim");
        return MG_EINVAL;
    }
    id = mg_identity_new();
    rest = json_deep_copy(claims);
    MG_ASSERT(rest != NULL);
    for (size_t i = 0; i < MG_ARRAY_LEN(protocol); i++)
        json_object_del(rest, protocol[i]);
    json_object_del(rest, "sub");

    size_t n = strlen(p->name) + strlen(sub) + 7;
    free(id->subject);
    id->subject = mg_xmalloc(n);
    snprintf(id->subject, n, "oidc:%s:%s", p->name, sub);

    /* Core §5.1: an address the provider has not verified names nobody; a
     * policy keyed on email must not match it. */
    const char *email = json_cstr(claim_get(claims, p->email_claim));
    const json_t *verified = json_object_get(claims, "email_verified");
    bool unverified = strcmp(p->email_claim, "email") == 0 && json_is_false(verified);
    if (email && !unverified && str_ok(email, 1, 320)) {
        free(id->email);
        id->email = mg_xstrdup(email);
        json_object_del(rest, p->email_claim);
    }
    const char *name = json_cstr(claim_get(claims, p->name_claim));
    if (name && str_ok(name, 1, 1024)) {
        free(id->name);
        id->name = mg_xstrdup(name);
        json_object_del(rest, p->name_claim);
    }
    const json_t *groups = claim_get(claims, p->groups_claim);
    if (json_is_array(groups)) {
        mg_identity_set_groups_json(id, groups);
        json_object_del(rest, p->groups_claim);
    } else if (json_is_string(groups)) {
        json_t *one = json_pack("[O]", (json_t *)groups);
        mg_identity_set_groups_json(id, one);
        json_decref(one);
        json_object_del(rest, p->groups_claim);
    }
    json_decref(id->claims);
    id->claims = rest;
    free(id->idp);
    id->idp = mg_xstrdup(p->name);
    *out = id;
    return 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

static void req_free(struct mg_oidc_req *r)
{
    free_secret(r->code);
    free(r->redirect_uri);
    free_secret(r->verifier);
    free(r->nonce);
    mg_oidc_discovery_unref(r->d);
    mg_oidc_provider_unref(r->p);
    free(r);
}

/* Ends an exchange with an error "provider NAME: <what>". */
static void exchange_fail(struct mg_oidc_req *r, int status, const char *what)
{
    char msg[ERR_MAX];
    snprintf(msg, sizeof msg, "provider %s: %s", r->p->name, what);
    mg_oidc_exchange_cb cb = r->xcb;
    void *ud = r->ud;
    req_free(r);
    cb(ud, status < 0 ? status : MG_EPROTO, NULL, msg);
}

static void on_id_token(void *ud, int status, json_t *claims, const char *why)
{
    struct mg_oidc_req *r = ud;
    struct mg_identity *id = NULL;
    struct mg_buf err;
    r->verify_req = NULL;
    mg_buf_init(&err, ERR_MAX - 64);
    if (status < 0) {
        mg_buf_appends(&err, status == MG_EDENIED || status == MG_EINVAL || status == MG_ELIMIT
                                 ? "ID token rejected: "
                                 : "");
        mg_buf_appends(&err, why && *why ? why : mg_strstatus(status));
        goto fail;
    }
    /* Core §3.1.3.7 (3)-(5): with several audiences, or an azp at all, azp
     * must be our client_id. */
    const json_t *aud = json_object_get(claims, "aud"), *azp = json_object_get(claims, "azp");
    if ((azp != NULL || (json_is_array(aud) && json_array_size(aud) > 1)) &&
        (json_cstr(azp) == NULL || strcmp(json_cstr(azp), r->p->client_id) != 0)) {
        mg_buf_appends(&err, "ID token rejected: azp is not our client_id");
        status = MG_EDENIED;
        goto fail;
    }
    if (mg_oidc_map_claims(r->p, claims, &id, &err) < 0) {
        status = MG_EPROTO;
        goto fail;
    }
    json_decref(claims);
    mg_buf_fini(&err);
    mg_oidc_exchange_cb cb = r->xcb;
    void *cud = r->ud;
    req_free(r);
    cb(cud, 0, id, "");
    return;
fail:
    json_decref(claims);
    mg_buf_append(&err, "", 1);
    exchange_fail(r, status < 0 ? status : MG_EPROTO, err.data ? err.data : "error");
    mg_buf_fini(&err);
}

static void on_token(void *ud, const struct mg_fetch_result *res)
{
    struct mg_oidc_req *r = ud;
    json_t *doc = NULL;
    struct mg_buf err;
    int status = MG_EPROTO;
    r->fetch = NULL;
    mg_buf_init(&err, ERR_MAX - 64);
    if (res->status < 0) {
        status = res->status;
        mg_buf_appendf(&err, "token endpoint unreachable: %s", res->error);
        goto fail;
    }
    doc = json_loadb(res->body, res->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (res->http_status != 200) {
        /* RFC 6749 §5.2: the provider says why in error / error_description. */
        const char *e = json_cstr(json_object_get(doc, "error"));
        const char *desc = json_cstr(json_object_get(doc, "error_description"));
        if (e) {
            status = MG_EDENIED;
            mg_buf_appends(&err, "token endpoint refused the code: ");
            append_clean(&err, e, 64);
            if (desc) {
                mg_buf_appends(&err, ": ");
                append_clean(&err, desc, 200);
            }
        } else {
            mg_buf_appendf(&err, "token endpoint answered HTTP %d", res->http_status);
        }
        goto fail;
    }
    if (!json_is_object(doc)) {
        mg_buf_appends(&err, "token endpoint answered something that is not a JSON object");
        goto fail;
    }
    const char *type = json_cstr(json_object_get(doc, "token_type"));
    if (type && strcasecmp(type, "Bearer") != 0) {
        mg_buf_appends(&err, "token endpoint answered a token_type other than Bearer");
        goto fail;
    }
    const char *id_token = json_cstr(json_object_get(doc, "id_token"));
    if (id_token == NULL) {
        mg_buf_appends(&err, "token response has no id_token (is the openid scope granted?)");
        goto fail;
    }
    struct mg_jwt_expect exp = {.issuer = r->p->issuer,
                                .audience = r->p->client_id,
                                .nonce = r->nonce,
                                .leeway = MG_OIDC_LEEWAY_S};
    status = mg_jwks_cache_verify(r->p->jwks, r->pool, r->d->jwks_uri, &r->p->fopts, id_token, &exp,
                                  on_id_token, r, &r->verify_req);
    if (status < 0) {
        mg_buf_appends(&err, status == MG_ELIMIT ? "ID token too long" : "cannot verify ID token");
        goto fail;
    }
    /* The response holds the provider's access and refresh tokens. */
    json_t *at = json_object_get(doc, "access_token"), *rt = json_object_get(doc, "refresh_token");
    if (json_is_string(at))
        OPENSSL_cleanse((char *)json_string_value(at), json_string_length(at));
    if (json_is_string(rt))
        OPENSSL_cleanse((char *)json_string_value(rt), json_string_length(rt));
    json_decref(doc);
    mg_buf_fini(&err);
    return;
fail:
    json_decref(doc);
    mg_buf_append(&err, "", 1);
    exchange_fail(r, status, err.data ? err.data : "error");
    mg_buf_fini(&err);
}

/* The token request (Core §3.1.3.1, RFC 6749 §4.1.3, RFC 7636 §4.5). */
static void post_code(struct mg_oidc_req *r)
{
    struct mg_oidc_provider *p = r->p;
    struct mg_buf body, auth;
    const char *headers[3] = {"Accept: application/json", NULL, NULL};
    const char *why = NULL;
    mg_buf_init(&body, 16 * 1024);
    mg_buf_init(&auth, 4 * 1024);
    reserve_whole(&body);
    reserve_whole(&auth);
    int rc = param_append(&body, true, "grant_type", "authorization_code");
    if (rc == 0)
        rc = param_append(&body, false, "code", r->code);
    if (rc == 0)
        rc = param_append(&body, false, "redirect_uri", r->redirect_uri);
    if (rc == 0)
        rc = param_append(&body, false, "code_verifier", r->verifier);
    bool secret = p->client_secret[0] != '\0';
    if (rc == 0 && (!secret || p->token_auth == MG_OIDC_AUTH_POST))
        rc = param_append(&body, false, "client_id", p->client_id);
    if (rc == 0 && secret && p->token_auth == MG_OIDC_AUTH_POST)
        rc = param_append(&body, false, "client_secret", p->client_secret);
    if (rc == 0 && secret && p->token_auth == MG_OIDC_AUTH_BASIC) {
        /* RFC 6749 §2.3.1: both parts form-encoded before base64. */
        struct mg_buf cred;
        mg_buf_init(&cred, 2048);
        reserve_whole(&cred);
        rc = pct_append(&cred, p->client_id);
        if (rc == 0)
            rc = mg_buf_append(&cred, ":", 1);
        if (rc == 0)
            rc = pct_append(&cred, p->client_secret);
        if (rc == 0)
            rc = mg_buf_appends(&auth, "Authorization: Basic ");
        if (rc == 0) {
            size_t need = 4 * ((cred.len + 2) / 3) + 1;
            size_t at = auth.len;
            char *zero = mg_xcalloc(1, need);
            rc = mg_buf_append(&auth, zero, need);
            free(zero);
            if (rc == 0) {
                int n = EVP_EncodeBlock((unsigned char *)auth.data + at,
                                        (const unsigned char *)cred.data, (int)cred.len);
                auth.len = at + (size_t)n;
                auth.data[auth.len] = '\0';
                headers[1] = auth.data;
            }
        }
        if (cred.data)
            OPENSSL_cleanse(cred.data, cred.cap);
        mg_buf_fini(&cred);
    }
    if (rc == 0) {
        struct mg_fetch_opts o = p->fopts;
        o.method = "POST";
        o.body = body.data;
        o.body_len = body.len;
        o.content_type = "application/x-www-form-urlencoded";
        o.headers = headers;
        o.sensitive = true;
        rc = mg_fetch(r->pool, r->d->token_endpoint, &o, on_token, r, &r->fetch, &why);
    }
    if (body.data)
        OPENSSL_cleanse(body.data, body.cap);
    if (auth.data)
        OPENSSL_cleanse(auth.data, auth.cap);
    mg_buf_fini(&body);
    mg_buf_fini(&auth);
    /* The verifier and the code have been sent (or never will be). */
    free_secret(r->verifier);
    r->verifier = NULL;
    free_secret(r->code);
    r->code = NULL;
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot send the token request: %s",
                 why ? why : mg_strstatus(rc));
        exchange_fail(r, rc, msg);
    }
}

static void on_discovered(void *ud, int status, struct mg_fetch_cache_val *val, const char *error)
{
    struct mg_oidc_req *r = ud;
    struct mg_buf err;
    r->disc_req = NULL;
    mg_buf_init(&err, ERR_MAX - 64);
    if (status == 0) {
        r->d = mg_fetch_cache_val_data(val);
        mg_oidc_discovery_ref(r->d);
        mg_fetch_cache_val_unref(val);
        status = mg_oidc_discovery_check(r->d, r->p->issuer, r->p->allow_http, &err);
    } else {
        mg_buf_appends(&err, error);
    }
    mg_buf_append(&err, "", 1);
    if (r->kind == REQ_DISCOVER) {
        mg_oidc_discovery_cb cb = r->dcb;
        void *cud = r->ud;
        struct mg_oidc_discovery *d = NULL;
        char msg[ERR_MAX];
        snprintf(msg, sizeof msg, "provider %s: %s", r->p->name, err.data);
        if (status == 0) {
            d = r->d;
            r->d = NULL;
        }
        req_free(r);
        mg_buf_fini(&err);
        cb(cud, status, d, status == 0 ? "" : msg);
        return;
    }
    if (status < 0) {
        exchange_fail(r, status, err.data);
        mg_buf_fini(&err);
        return;
    }
    mg_buf_fini(&err);
    post_code(r);
}

static struct mg_oidc_req *req_new(struct mg_oidc_provider *p, struct mg_client_pool *pool,
                                   enum req_kind kind, void *ud)
{
    struct mg_oidc_req *r = mg_xcalloc(1, sizeof *r);
    r->kind = kind;
    mg_oidc_provider_ref(p);
    r->p = p;
    r->pool = pool;
    r->ud = ud;
    return r;
}

static int load_discovery(struct mg_oidc_req *r)
{
    struct mg_fetch_opts o = r->p->fopts;
    return mg_fetch_cache_load(r->p->discovery, r->pool, r->p->discovery_url, &o, 0, on_discovered,
                               r, &r->disc_req);
}

int mg_oidc_discovery_peek(struct mg_oidc_provider *p, struct mg_oidc_discovery **out)
{
    struct mg_fetch_cache_val *v = NULL;
    struct mg_buf err;
    *out = NULL;
    if (mg_fetch_cache_peek(p->discovery, p->discovery_url, &v) < 0)
        return MG_ENOTFOUND;
    struct mg_oidc_discovery *d = mg_fetch_cache_val_data(v);
    mg_buf_init(&err, 512);
    int rc = mg_oidc_discovery_check(d, p->issuer, p->allow_http, &err);
    mg_buf_fini(&err);
    if (rc == 0) {
        mg_oidc_discovery_ref(d);
        *out = d;
    }
    mg_fetch_cache_val_unref(v);
    return rc == 0 ? 0 : MG_ENOTFOUND;
}

int mg_oidc_discover(struct mg_oidc_provider *p, struct mg_client_pool *pool,
                     mg_oidc_discovery_cb cb, void *ud, struct mg_oidc_req **out)
{
    if (out)
        *out = NULL;
    if (p == NULL || pool == NULL || cb == NULL)
        return MG_EINVAL;
    struct mg_oidc_req *r = req_new(p, pool, REQ_DISCOVER, ud);
    r->dcb = cb;
    int rc = load_discovery(r);
    if (rc < 0) {
        req_free(r);
        return rc;
    }
    if (out)
        *out = r;
    return 0;
}

int mg_oidc_exchange(struct mg_oidc_provider *p, struct mg_client_pool *pool,
                     const struct mg_oidc_exchange_params *x, mg_oidc_exchange_cb cb, void *ud,
                     struct mg_oidc_req **out)
{
    if (out)
        *out = NULL;
    if (p == NULL || pool == NULL || cb == NULL || x == NULL || !str_ok(x->code, 1, 4096) ||
        !str_ok(x->redirect_uri, 1, MG_FETCH_URL_MAX) || !verifier_ok(x->code_verifier) ||
        !str_ok(x->nonce, 1, 512))
        return MG_EINVAL;
    struct mg_oidc_req *r = req_new(p, pool, REQ_EXCHANGE, ud);
    r->xcb = cb;
    r->code = mg_xstrdup(x->code);
    r->redirect_uri = mg_xstrdup(x->redirect_uri);
    r->verifier = mg_xstrdup(x->code_verifier);
    r->nonce = mg_xstrdup(x->nonce);
    int rc = load_discovery(r);
    if (rc < 0) {
        req_free(r);
        return rc;
    }
    if (out)
        *out = r;
    return 0;
}

void mg_oidc_cancel(struct mg_oidc_req *r)
{
    if (r == NULL)
        return;
    mg_fetch_cache_cancel(r->disc_req);
    mg_fetch_cancel(r->fetch);
    mg_jwks_cache_cancel(r->verify_req);
    req_free(r);
}
