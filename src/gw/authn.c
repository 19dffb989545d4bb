/* The resource-server phase (MCP authorization 2025-06-18 and 2025-11-25):
 * every request on a route that is not public must carry a bearer token
 * this gateway issued for that route (RFC 8707 audience), a service-account
 * token, or a JWT from a configured issuer. Without one the answer is the
 * 401 challenge pointing at the route's protected-resource metadata
 * (RFC 9728), never a redirect. Tokens are validated from the shared cache
 * when it can be trusted, else from the store on the threadpool. */
#include "authn/jwks_cache.h"
#include "authn/token.h"
#include "core/log.h"
#include "gw/authsvc.h"
#include "gw/req.h"

#include <inttypes.h>
#include <time.h>

#define MAX_BEARER_LEN   4096
#define NEGATIVE_TTL_SEC 1

static const char prm_prefix[] = "/.well-known/oauth-protected-resource";

static int64_t now_sec(void)
{
    return (int64_t)time(NULL);
}

/* RFC 6750 §3 and RFC 9728 §5.1. error is NULL for a request that simply
 * carried no credentials (§3.1: no error code then). */
static void challenge(struct mg_gw_req *p, int status, const char *error, const char *desc)
{
    const struct mg_route_rt *rt = p->route;
    struct mg_buf h;
    mg_buf_init(&h, 8192);
    mg_buf_appendf(&h, "WWW-Authenticate: Bearer resource_metadata=\"%s\"", rt->prm_url);
    if (rt->scope_str[0])
        mg_buf_appendf(&h, ", scope=\"%s\"", rt->scope_str);
    if (error)
        mg_buf_appendf(&h, ", error=\"%s\", error_description=\"%s\"", error, desc);
    mg_buf_appends(&h, "\r\nCache-Control: no-store\r\n");
    int code = status == 403 ? MG_RPC_FORBIDDEN : MG_RPC_UNAUTHENTICATED;
    mg_gw__reply_error(p, status, code, desc, h.data);
    mg_buf_fini(&h);
}

static void unavailable(struct mg_gw_req *p)
{
    /* Fail closed: without the store nothing is admitted. */
    mg_gw__reply_error(p, 503, MG_RPC_STORE_UNAVAILABLE,
                       "the identity store is unavailable; try again later",
                       "Retry-After: 1\r\nCache-Control: no-store\r\n");
}

static bool has_scope(const char *granted, const char *want)
{
    size_t n = strlen(want);
    for (const char *s = granted; *s;) {
        size_t len = strcspn(s, " ");
        if (len == n && memcmp(s, want, n) == 0)
            return true;
        s += len;
        while (*s == ' ')
            s++;
    }
    return false;
}

/* The checks that do not depend on where the identity came from. */
static void admit(struct mg_gw_req *p, struct mg_identity *id, void (*next)(struct mg_gw_req *))
{
    const struct mg_route_rt *rt = p->route;
    if (id == NULL) {
        challenge(p, 401, "invalid_token", "the access token is invalid, expired or revoked");
        return;
    }
    if (id->expires_at != 0 && id->expires_at <= now_sec()) {
        mg_identity_unref(id);
        challenge(p, 401, "invalid_token", "the access token has expired");
        return;
    }
    if (strcmp(id->audience, "*") != 0 && strcmp(id->audience, rt->resource) != 0) {
        /* RFC 8707: a token for one route is not valid on another. */
        mg_identity_unref(id);
        challenge(p, 401, "invalid_token", "the access token was issued for another resource");
        return;
    }
    const struct mg_conf_route *r = rt->conf;
    for (size_t i = 0; i < r->n_scopes; i++) {
        if (!has_scope(id->scopes, r->scopes[i])) {
            mg_identity_unref(id);
            challenge(p, 403, "insufficient_scope", "the access token lacks a required scope");
            return;
        }
    }
    p->identity = id;
    next(p);
}

struct lookup {
    struct mg_gw_req *p;
    void (*next)(struct mg_gw_req *);
    uint8_t hash[MG_TOKEN_HASH_LEN];
    enum mg_token_kind kind;
    uint64_t gen;
    struct mg_identity *id; /* result; NULL = no valid token */
    int64_t cache_until;
};

/* Builds the identity a stored token speaks for. */
static struct mg_identity *identity_of(const struct mg_store_token *t,
                                       const uint8_t hash[MG_TOKEN_HASH_LEN])
{
    struct mg_identity *id = NULL;
    const char *js = t->identity_json ? t->identity_json : "{}";
    if (mg_identity_from_json(js, strlen(js), &id) < 0)
        return NULL;
    free(id->subject);
    id->subject = mg_xstrdup(t->subject);
    free(id->client_id);
    id->client_id = mg_xstrdup(t->client_id ? t->client_id : "");
    free(id->audience);
    id->audience = mg_xstrdup(t->audience ? t->audience : "");
    free(id->scopes);
    id->scopes = mg_xstrdup(t->scopes ? t->scopes : "");
    id->expires_at = t->expires_at;
    if (t->kind == MG_STORE_TOKEN_SERVICE)
        id->method = MG_AUTH_SERVICE;
    else if (id->method != MG_AUTH_CLIENT)
        id->method = MG_AUTH_OAUTH;
    for (size_t i = 0; i < 8; i++)
        snprintf(id->token_id + 2 * i, 3, "%02x", hash[i]);
    return id;
}

static int lookup_work(struct mg_store *st, void *arg)
{
    struct lookup *l = arg;
    struct mg_store_token t = {0};
    int rc = mg_store_token_get(st, l->hash, &t);
    int64_t now = now_sec();
    l->cache_until = now + NEGATIVE_TTL_SEC;
    if (rc == MG_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    enum mg_store_token_kind want =
        l->kind == MG_TOKEN_SERVICE ? MG_STORE_TOKEN_SERVICE : MG_STORE_TOKEN_ACCESS;
    if (t.kind == want && t.revoked_at == 0 && t.expires_at > now) {
        l->id = identity_of(&t, l->hash);
        l->cache_until = t.expires_at;
    }
    mg_store_token_fini(&t);
    return 0;
}

static void lookup_done(void *arg, int status)
{
    struct lookup *l = arg;
    struct mg_gw_req *p = l->p;
    struct mg_authsvc *a = p->gw->auth;
    if (status == 0)
        mg_tokcache_put(a->cache, l->hash, l->id, l->cache_until, l->gen);
    if (!mg_gw__req_resume(p)) {
        mg_identity_unref(l->id);
        free(l);
        return;
    }
    if (status < 0) {
        mg_log_warn("token lookup failed: %s", mg_strstatus(status));
        unavailable(p);
    } else {
        admit(p, l->id, l->next); /* takes l->id */
    }
    free(l);
}

/* The token68 characters (RFC 7235 §2.1): A-Z a-z 0-9 - . _ ~ + / = */
static const bool token68[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Extracts the bearer token: exactly one Authorization header, scheme Bearer
 * (case-insensitive, RFC 7235 §2.1), one space, token68. Returns false if
 * there is none; *bad is set when one is there but malformed. */
static bool bearer_of(const struct mg_http_head *h, char *out, size_t cap, bool *bad)
{
    *bad = false;
    size_t n = mg_http_head_num(h, MG_HDR_AUTHORIZATION);
    if (n == 0)
        return false;
    const struct mg_http_header *a = mg_http_head_get(h, MG_HDR_AUTHORIZATION);
    *bad = true;
    if (n > 1 || a->value_len < 8 || !mg_str_ieq(a->value, 7, "bearer ") ||
        a->value_len - 7 >= cap || a->value_len - 7 > MAX_BEARER_LEN)
        return false;
    size_t len = a->value_len - 7;
    for (size_t i = 0; i < len; i++)
        if (!token68[(unsigned char)a->value[7 + i]])
            return false;
    memcpy(out, a->value + 7, len);
    out[len] = '\0';
    *bad = false;
    return true;
}

/* --- external JWT access tokens (jwt_issuers) --------------------------------------- */

struct jwt_check {
    struct mg_gw_req *p;
    void (*next)(struct mg_gw_req *);
    const struct mg_conf_jwt_issuer *iss;
    uint8_t hash[MG_TOKEN_HASH_LEN];
    struct mg_fetch_opts fopts;
};

/* The unverified "iss" of a JWT, only to choose which issuer's keys verify
 * it; nothing else is read before the signature is checked. */
static const struct mg_conf_jwt_issuer *issuer_of(const struct mg_conf *conf, const char *tok)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL || strchr(d2 + 1, '.') != NULL)
        return NULL;
    uint8_t buf[MAX_BEARER_LEN];
    size_t n = 0;
    if (mg_authn_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof buf, &n) < 0)
        return NULL;
    json_error_t je;
    json_t *c = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &je);
    const char *iss = json_string_value(json_object_get(c, "iss"));
    const struct mg_conf_jwt_issuer *found = NULL;
    for (size_t i = 0; iss && i < conf->n_jwt_issuers && !found; i++)
        if (strcmp(conf->jwt_issuers[i].issuer, iss) == 0)
            found = &conf->jwt_issuers[i];
    json_decref(c);
    return found;
}

static struct mg_identity *jwt_identity(const struct mg_conf_jwt_issuer *iss, json_t *claims,
                                        const struct mg_route_rt *rt,
                                        const uint8_t hash[MG_TOKEN_HASH_LEN])
{
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    if (sub == NULL || *sub == '\0' || strlen(sub) > 255)
        return NULL;
    struct mg_identity *id = mg_identity_new();
    struct mg_buf b;
    mg_buf_init(&b, 4096);
    mg_buf_appendf(&b, "jwt:%s:%s", iss->issuer, sub);
    free(id->subject);
    id->subject = mg_buf_steal(&b, NULL);
    const char *email = json_string_value(json_object_get(claims, iss->claim_email));
    const char *name = json_string_value(json_object_get(claims, iss->claim_name));
    json_t *groups = json_object_get(claims, iss->claim_groups);
    if (email) {
        free(id->email);
        id->email = mg_xstrdup(email);
    }
    if (name) {
        free(id->name);
        id->name = mg_xstrdup(name);
    }
    if (json_is_array(groups)) {
        mg_identity_set_groups_json(id, groups);
    } else if (json_is_string(groups)) {
        json_t *one = json_pack("[O]", groups);
        mg_identity_set_groups_json(id, one);
        json_decref(one);
    }
    const char *cid = json_string_value(json_object_get(claims, "client_id"));
    if (cid == NULL)
        cid = json_string_value(json_object_get(claims, "azp"));
    free(id->client_id);
    id->client_id = mg_xstrdup(cid ? cid : "");
    free(id->idp);
    id->idp = mg_xstrdup(iss->issuer);
    const char *scope = json_string_value(json_object_get(claims, "scope"));
    free(id->scopes);
    id->scopes = mg_xstrdup(scope ? scope : "");
    free(id->audience);
    id->audience = mg_xstrdup(rt->resource);
    id->expires_at = (int64_t)json_integer_value(json_object_get(claims, "exp"));
    id->method = MG_AUTH_JWT;
    json_decref(id->claims);
    id->claims = json_deep_copy(claims);
    for (size_t i = 0; i < 8; i++)
        snprintf(id->token_id + 2 * i, 3, "%02x", hash[i]);
    return id;
}

static void jwt_verified(void *ud, int status, json_t *claims, const char *why)
{
    struct jwt_check *jc = ud;
    struct mg_gw_req *p = jc->p;
    if (!mg_gw__req_resume(p)) {
        json_decref(claims);
        free(jc);
        return;
    }
    struct mg_identity *id = NULL;
    if (status == 0)
        id = jwt_identity(jc->iss, claims, p->route, jc->hash);
    else
        mg_log_info("JWT from %s refused: %s", jc->iss->issuer, why ? why : mg_strstatus(status));
    json_decref(claims);
    if (status != 0 && status != MG_EDENIED && status != MG_EINVAL && status != MG_ELIMIT) {
        /* The issuer's keys could not be fetched: not the caller's fault. */
        free(jc);
        unavailable(p);
        return;
    }
    if (id)
        mg_tokcache_put(p->gw->auth->cache, jc->hash, id, id->expires_at,
                        mg_tokcache_generation(p->gw->auth->cache));
    admit(p, id, jc->next);
    free(jc);
}

static void jwt_authn(struct mg_gw_req *p, const char *tok, void (*next)(struct mg_gw_req *))
{
    struct mg_authsvc *a = p->gw->auth;
    const struct mg_conf_jwt_issuer *iss = issuer_of(p->gw->conf, tok);
    if (iss == NULL || a->jwks == NULL) {
        challenge(p, 401, "invalid_token", "the access token is invalid, expired or revoked");
        return;
    }
    struct jwt_check *jc = mg_xcalloc(1, sizeof *jc);
    jc->p = p;
    jc->next = next;
    jc->iss = iss;
    mg_token_hash(tok, jc->hash);
    struct mg_identity *id = NULL;
    if (mg_tokcache_get(a->cache, jc->hash, now_sec(), &id) == 1) {
        free(jc);
        admit(p, id, next);
        return;
    }
    struct mg_jwt_expect exp = {
        .issuer = iss->issuer,
        .audience = iss->audience ? iss->audience : p->route->resource,
        .leeway = 60,
    };
    jc->fopts.timeout_ms = p->gw->conf->connect_timeout_ms * 2;
    jc->fopts.ca_file = iss->ca_file;
    jc->fopts.allow_http = strncmp(iss->jwks_url, "http://", 7) == 0;
    json_t *claims = NULL;
    const char *why = NULL;
    int rc = mg_jwks_cache_verify_cached(a->jwks, iss->jwks_url, tok, &exp, &claims, &why);
    if (rc != MG_EAGAIN) {
        p->pending++;
        jwt_verified(jc, rc, claims, why);
        return;
    }
    p->pending++;
    if (mg_jwks_cache_verify(a->jwks, &p->w->pool, iss->jwks_url, &jc->fopts, tok, &exp,
                             jwt_verified, jc, NULL) < 0) {
        p->pending--;
        free(jc);
        unavailable(p);
    }
}

void mg_gw__authn(struct mg_gw_req *p, void (*next)(struct mg_gw_req *p))
{
    const struct mg_route_rt *rt = p->route;
    struct mg_authsvc *a = p->gw->auth;
    if (rt->conf->allow_public_unauthenticated_access) {
        p->identity = mg_identity_anonymous();
        next(p);
        return;
    }
    if (a == NULL) {
        unavailable(p);
        return;
    }
    char tok[MAX_BEARER_LEN + 1];
    bool bad;
    if (!bearer_of(p->req->head, tok, sizeof tok, &bad)) {
        if (bad)
            challenge(p, 401, "invalid_request", "malformed Authorization header");
        else
            challenge(p, 401, NULL, "authentication required");
        return;
    }
    enum mg_token_kind kind;
    if (mg_token_kind_of(tok, &kind) < 0) {
        if (p->gw->conf->n_jwt_issuers > 0 && strncmp(tok, "mcpg_", 5) != 0) {
            jwt_authn(p, tok, next);
            return;
        }
        challenge(p, 401, "invalid_token", "the access token is invalid, expired or revoked");
        return;
    }
    if (kind != MG_TOKEN_ACCESS && kind != MG_TOKEN_SERVICE) {
        challenge(p, 401, "invalid_token", "the access token is invalid, expired or revoked");
        return;
    }
    uint8_t hash[MG_TOKEN_HASH_LEN];
    int hrc = mg_token_hash(tok, hash);
    OPENSSL_cleanse(tok, strlen(tok)); /* the token, not the whole buffer */
    if (hrc < 0) {
        unavailable(p);
        return;
    }
    struct mg_identity *id = NULL;
    if (mg_tokcache_get(a->cache, hash, now_sec(), &id) == 1) {
        admit(p, id, next);
        return;
    }
    /* A miss: the store decides, on the threadpool. */
    struct lookup *l = mg_xcalloc(1, sizeof *l);
    l->p = p;
    l->next = next;
    l->kind = kind;
    memcpy(l->hash, hash, sizeof hash);
    if (!mg_tokcache_store_fresh(a->cache)) {
        free(l);
        unavailable(p);
        return;
    }
    l->gen = mg_tokcache_generation(a->cache);
    p->pending++;
    if (mg_store_pool_submit(a->pool, &p->w->loop, lookup_work, lookup_done, l) < 0) {
        p->pending--;
        free(l);
        unavailable(p);
    }
}

/* RFC 9728 §3: GET /.well-known/oauth-protected-resource{route path}. The
 * root form answers for the host's route at "/", or its only route. */
bool mg_gw__serve_prm(struct mg_gw_req *p)
{
    struct mg_http_req *req = p->req;
    size_t n = sizeof prm_prefix - 1;
    if (strncmp(req->path, prm_prefix, n) != 0 || (req->path[n] != '\0' && req->path[n] != '/'))
        return false;
    const char *rest = req->path + n;
    const struct mg_http_header *host = mg_http_head_get(req->head, MG_HDR_HOST);
    int st = 0;
    const struct mg_route_rt *rt = NULL;
    if (rest[0] != '\0') {
        rt = mg_gw_select(p->gw, host->value, host->value_len, rest, &st);
        /* The metadata is for the route itself, not a path under it. */
    } else {
        const struct mg_route_rt *only = NULL;
        size_t n_host = 0;
        for (size_t i = 0; i < p->gw->n_routes; i++) {
            const struct mg_route_rt *r = &p->gw->routes[i];
            int s2 = 0;
            if (mg_gw_select(p->gw, host->value, host->value_len, "/", &s2) == r)
                rt = r;
            char hb[300];
            uint16_t port = 0;
            if (mg_gw_parse_host(host->value, host->value_len, hb, sizeof hb, &port) &&
                strcmp(hb, r->conf->from.host) == 0) {
                only = r;
                n_host++;
            }
        }
        if (rt == NULL && n_host == 1)
            rt = only;
        st = 404;
    }
    if (rt == NULL) {
        mg_gw__reply_error(p, st == 403 ? 403 : 404, MG_RPC_GATEWAY_REFUSED,
                           "no protected resource here", NULL);
        return true;
    }
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        mg_gw__reply_error(p, 405, -32600, "method not allowed", "Allow: GET, HEAD\r\n");
        return true;
    }
    p->route = rt;
    json_t *scopes = json_array();
    for (size_t i = 0; i < rt->conf->n_scopes; i++)
        json_array_append_new(scopes, json_string(rt->conf->scopes[i]));
    json_t *doc = json_pack("{s:s, s:[s], s:[s], s:s, s:o}", "resource", rt->resource,
                            "authorization_servers", p->gw->issuer, "bearer_methods_supported",
                            "header", "resource_name", rt->conf->name, "scopes_supported", scopes);
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    mg_http_reply(req, 200, "application/json",
                  "Cache-Control: max-age=300\r\nAccess-Control-Allow-Origin: *\r\n", body,
                  strlen(body));
    free(body);
    return true;
}
