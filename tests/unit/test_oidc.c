/* Unit tests for src/authn/oidc: discovery document validation, provider
 * configuration, authorization URLs, claim mapping, and the code exchange end
 * to end against an OpenID provider played by a test server on a thread. It
 * serves discovery, a JWKS of P-256 keys generated here, and a token endpoint
 * that checks the PKCE verifier and client authentication and returns an ID
 * token signed here. Covers key rotation (a new kid is fetched), wrong nonce,
 * wrong audience, azp, expiry and leeway, bad signatures, a refused code, a
 * discovery document for another issuer, and providers that are down (closed
 * port, silent server) failing within the timeout. */
#include "authn/oidc.h"
#include "authn/pkce.h"
#include "net/stream.h"
#include "jwtsign.h"
#include "tap.h"
#include "testsrv.h"

#include <openssl/evp.h>
#include <time.h>

#define CLIENT_ID     "gw-client"
#define CLIENT_SECRET "s3cr&t:with=odd chars"
#define REDIRECT      "https://gw.example/_mcpgate/oidc/callback"

static struct mg_fetch_cache *disc_cache;
static struct mg_jwks_cache *jwks_cache;

static json_t *load(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    MG_ASSERT(j != NULL);
    return j;
}

/* ---- discovery documents ---- */

static int parse(const char *doc, struct mg_oidc_discovery **d, char *why, size_t cap)
{
    struct mg_buf err;
    mg_buf_init(&err, 512);
    int rc = mg_oidc_discovery_parse(doc, strlen(doc), d, &err);
    snprintf(why, cap, "%.*s", (int)err.len, err.data ? err.data : "");
    mg_buf_fini(&err);
    return rc;
}

#define GOOD_DOC                                                                                   \
    "{\"issuer\":\"https://idp.example\","                                                         \
    "\"authorization_endpoint\":\"https://idp.example/auth\","                                     \
    "\"token_endpoint\":\"https://idp.example/token\","                                            \
    "\"jwks_uri\":\"https://idp.example/jwks\","                                                   \
    "\"userinfo_endpoint\":\"https://idp.example/me\","                                            \
    "\"response_types_supported\":[\"code\",\"id_token\"],"                                        \
    "\"code_challenge_methods_supported\":[\"plain\",\"S256\"],"                                   \
    "\"id_token_signing_alg_values_supported\":[\"RS256\"]}"

static void test_discovery(void)
{
    struct mg_oidc_discovery *d = NULL;
    char why[512];
    struct mg_buf err;
    TAP_IS_INT(parse(GOOD_DOC, &d, why, sizeof why), 0, "a complete document parses (%s)", why);
    TAP_IS_STR(d->issuer, "https://idp.example", "issuer");
    TAP_IS_STR(d->authorization_endpoint, "https://idp.example/auth", "authorization endpoint");
    TAP_IS_STR(d->token_endpoint, "https://idp.example/token", "token endpoint");
    TAP_IS_STR(d->jwks_uri, "https://idp.example/jwks", "jwks_uri");
    TAP_IS_STR(d->userinfo_endpoint, "https://idp.example/me", "userinfo endpoint");
    TAP_OK(d->end_session_endpoint == NULL, "no end_session_endpoint");
    TAP_OK(d->has_pkce_methods, "PKCE methods listed");
    mg_buf_init(&err, 512);
    TAP_IS_INT(mg_oidc_discovery_check(d, "https://idp.example", false, &err), 0,
               "issuer matches exactly");
    TAP_IS_INT(mg_oidc_discovery_check(d, "https://idp.example/", false, &err), MG_EPROTO,
               "a trailing slash is another issuer");
    mg_buf_append(&err, "", 1);
    TAP_OK(strstr(err.data, "does not match the configured issuer") != NULL, "reason: %s",
           err.data);
    mg_buf_reset(&err);
    TAP_IS_INT(mg_oidc_discovery_check(d, "https://IDP.example", false, &err), MG_EPROTO,
               "case differences are a mismatch");
    mg_oidc_discovery_unref(d);

    const char *minimal = "{\"issuer\":\"http://127.0.0.1:9/\","
                          "\"authorization_endpoint\":\"http://127.0.0.1:9/a?x=1\","
                          "\"token_endpoint\":\"http://127.0.0.1:9/t\","
                          "\"jwks_uri\":\"https://127.0.0.1:9/k\"}";
    TAP_IS_INT(parse(minimal, &d, why, sizeof why), 0, "only the required members (%s)", why);
    TAP_OK(!d->has_pkce_methods && d->userinfo_endpoint == NULL, "optional members absent");
    mg_buf_reset(&err);
    TAP_IS_INT(mg_oidc_discovery_check(d, "http://127.0.0.1:9/", false, &err), MG_EPROTO,
               "http endpoints refused without allow_http");
    mg_buf_append(&err, "", 1);
    TAP_OK(strstr(err.data, "not https") != NULL, "reason: %s", err.data);
    mg_buf_reset(&err);
    TAP_IS_INT(mg_oidc_discovery_check(d, "http://127.0.0.1:9/", true, &err), 0,
               "accepted with allow_http");
    mg_oidc_discovery_unref(d);
    mg_buf_fini(&err);

    static const struct {
        const char *doc, *reason;
    } bad[] = {
        {"", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"{\"issuer\":\"https://a\",\"issuer\":\"https://b\"}", "not a JSON object"},
        {"{\"authorization_endpoint\":\"https://a/x\",\"token_endpoint\":\"https://a/t\","
         "\"jwks_uri\":\"https://a/k\"}",
         "no issuer"},
        {"{\"issuer\":\"https://a\",\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/"
         "k\"}",
         "no authorization_endpoint"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"https://a/x\","
         "\"jwks_uri\":\"https://a/k\"}",
         "no token_endpoint"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"https://a/x\","
         "\"token_endpoint\":\"https://a/t\"}",
         "no jwks_uri"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"/relative\","
         "\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/k\"}",
         "authorization_endpoint is not"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"https://a/x#f\","
         "\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/k\"}",
         "authorization_endpoint is not"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"https://a/x\","
         "\"token_endpoint\":42,\"jwks_uri\":\"https://a/k\"}",
         "token_endpoint is not"},
        {"{\"issuer\":\"javascript:alert(1)\",\"authorization_endpoint\":\"https://a/x\","
         "\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/k\"}",
         "issuer is not"},
        {"{\"issuer\":\"https://a?q=1\",\"authorization_endpoint\":\"https://a/x\","
         "\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/k\"}",
         "issuer has a query"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"https://a/x\","
         "\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/k\","
         "\"code_challenge_methods_supported\":[\"plain\"]}",
         "PKCE with S256"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"https://a/x\","
         "\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/k\","
         "\"code_challenge_methods_supported\":\"S256\"}",
         "PKCE with S256"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"https://a/x\","
         "\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/k\","
         "\"response_types_supported\":[\"id_token\"]}",
         "response_type code"},
        {"{\"issuer\":\"https://a\",\"authorization_endpoint\":\"https://a/x\","
         "\"token_endpoint\":\"https://a/t\",\"jwks_uri\":\"https://a/k\","
         "\"id_token_signing_alg_values_supported\":[\"HS256\",\"none\"]}",
         "no algorithm we accept"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        d = NULL;
        int rc = parse(bad[i].doc, &d, why, sizeof why);
        TAP_OK(rc == MG_EINVAL && d == NULL && strstr(why, bad[i].reason) != NULL,
               "refused: %s (%s)", bad[i].reason, why);
    }
}

/* ---- providers ---- */

static int provider(const struct mg_oidc_provider_conf *c, struct mg_oidc_provider **p, char *why,
                    size_t cap)
{
    struct mg_buf err;
    mg_buf_init(&err, 512);
    int rc = mg_oidc_provider_new(c, disc_cache, jwks_cache, p, &err);
    snprintf(why, cap, "%.*s", (int)err.len, err.data ? err.data : "");
    mg_buf_fini(&err);
    return rc;
}

static void test_provider_conf(void)
{
    struct mg_oidc_provider *p = NULL;
    char why[512];
    struct mg_oidc_provider_conf c = {.name = "corp",
                                      .display_name = "Corp SSO",
                                      .issuer = "https://idp.example/realms/x/",
                                      .client_id = CLIENT_ID,
                                      .client_secret = CLIENT_SECRET};
    TAP_IS_INT(provider(&c, &p, why, sizeof why), 0, "a valid provider (%s)", why);
    TAP_IS_STR(mg_oidc_provider_name(p), "corp", "name");
    TAP_IS_STR(mg_oidc_provider_display_name(p), "Corp SSO", "display name");
    TAP_IS_STR(mg_oidc_provider_discovery_url(p),
               "https://idp.example/realms/x/.well-known/openid-configuration",
               "discovery URL drops the issuer's trailing slash");
    mg_oidc_provider_unref(p);

    static const struct {
        struct mg_oidc_provider_conf c;
        const char *reason;
    } bad[] = {
        {{.name = "", .issuer = "https://i", .client_id = "c"}, "provider name"},
        {{.name = "a b", .issuer = "https://i", .client_id = "c"}, "provider name"},
        {{.name = "a", .issuer = "http://i", .client_id = "c"}, "issuer must be https"},
        {{.name = "a", .issuer = "https://i?x", .client_id = "c"}, "without query"},
        {{.name = "a", .issuer = "https://i#x", .client_id = "c"}, "without query"},
        {{.name = "a", .issuer = "i", .client_id = "c"}, "absolute URL"},
        {{.name = "a", .issuer = "https://i"}, "client_id"},
        {{.name = "a", .issuer = "https://i", .client_id = "c\n"}, "client_id"},
        {{.name = "a", .issuer = "https://i", .client_id = "c", .scopes = "email profile"},
         "openid"},
        {{.name = "a", .issuer = "https://i", .client_id = "c", .scopes = "openidx"}, "openid"},
        {{.name = "a", .issuer = "https://i", .client_id = "c", .groups_claim = ""}, "claim names"},
        {{.name = "a", .issuer = "https://i", .client_id = "c", .token_auth = 7}, "auth method"},
        {{.name = "a", .issuer = "https://i", .client_id = "c", .ca_file = "/nonexistent.pem"},
         "nonexistent"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        p = NULL;
        int rc = provider(&bad[i].c, &p, why, sizeof why);
        TAP_OK(rc < 0 && p == NULL && strstr(why, bad[i].reason) != NULL, "refused: %s (%s)",
               bad[i].reason, why);
    }
    struct mg_oidc_provider_conf h = {
        .name = "dev", .issuer = "http://127.0.0.1:1", .client_id = "c", .allow_http = true};
    TAP_IS_INT(provider(&h, &p, why, sizeof why), 0, "http issuer with allow_http");
    mg_oidc_provider_unref(p);
}

/* ---- authorization URLs ---- */

static void test_authorize_url(void)
{
    struct mg_oidc_provider *p = NULL;
    struct mg_oidc_discovery *d = NULL;
    char why[512];
    struct mg_buf u;
    struct mg_oidc_provider_conf c = {.name = "corp",
                                      .issuer = "https://idp.example",
                                      .client_id = "my client/1",
                                      .client_secret = "x",
                                      .scopes = "openid email groups"};
    MG_ASSERT(provider(&c, &p, why, sizeof why) == 0);
    MG_ASSERT(parse(GOOD_DOC, &d, why, sizeof why) == 0);
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"; /* RFC 7636 App. B */
    mg_buf_init(&u, 8192);
    TAP_IS_INT(mg_oidc_authorize_url(p, d, REDIRECT, "st&te", "n0nce", verifier, &u), 0,
               "authorization URL");
    mg_buf_append(&u, "", 1);
    TAP_IS_STR(u.data,
               "https://idp.example/auth?response_type=code&client_id=my%20client%2F1"
               "&redirect_uri=https%3A%2F%2Fgw.example%2F_mcpgate%2Foidc%2Fcallback"
               "&scope=openid%20email%20groups&state=st%26te&nonce=n0nce"
               "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
               "&code_challenge_method=S256",
               "every parameter, percent-encoded, with the RFC 7636 challenge");
    mg_oidc_discovery_unref(d);

    const char *q = "{\"issuer\":\"https://idp.example\","
                    "\"authorization_endpoint\":\"https://idp.example/auth?tenant=a%20b\","
                    "\"token_endpoint\":\"https://idp.example/t\","
                    "\"jwks_uri\":\"https://idp.example/k\"}";
    MG_ASSERT(parse(q, &d, why, sizeof why) == 0);
    mg_buf_reset(&u);
    TAP_IS_INT(mg_oidc_authorize_url(p, d, REDIRECT, "s", "n", verifier, &u), 0,
               "endpoint with its own query");
    mg_buf_append(&u, "", 1);
    TAP_OK(strncmp(u.data, "https://idp.example/auth?tenant=a%20b&response_type=code&", 57) == 0,
           "its query is kept and ours appended: %.60s", u.data);
    mg_buf_reset(&u);
    TAP_IS_INT(mg_oidc_authorize_url(p, d, REDIRECT, "s", "n", "short", &u), MG_EINVAL,
               "a verifier under 43 characters is refused");
    TAP_IS_INT(mg_oidc_authorize_url(p, d, REDIRECT, "", "n", verifier, &u), MG_EINVAL,
               "empty state refused");
    TAP_IS_INT(mg_oidc_authorize_url(p, d, REDIRECT, "s", NULL, verifier, &u), MG_EINVAL,
               "missing nonce refused");
    TAP_IS_INT(u.len, 0, "nothing written on refusal");
    struct mg_buf tiny;
    mg_buf_init(&tiny, 40);
    TAP_IS_INT(mg_oidc_authorize_url(p, d, REDIRECT, "s", "n", verifier, &tiny), MG_ELIMIT,
               "a full buffer is MG_ELIMIT");
    TAP_IS_INT(tiny.len, 0, "and left empty");
    mg_buf_fini(&tiny);
    mg_buf_fini(&u);
    mg_oidc_discovery_unref(d);
    mg_oidc_provider_unref(p);

    char n1[MG_OIDC_SECRET_BUF], v1[MG_OIDC_SECRET_BUF], n2[MG_OIDC_SECRET_BUF],
        v2[MG_OIDC_SECRET_BUF];
    TAP_IS_INT(mg_oidc_new_secrets(n1, v1), 0, "random nonce and verifier");
    MG_ASSERT(mg_oidc_new_secrets(n2, v2) == 0);
    TAP_OK(strlen(n1) == 43 && strlen(v1) == 43, "43 characters each");
    TAP_OK(mg_authn_b64url_alphabet(n1, 43) && mg_authn_b64url_alphabet(v1, 43),
           "base64url alphabet");
    TAP_OK(strcmp(n1, n2) != 0 && strcmp(v1, v2) != 0 && strcmp(n1, v1) != 0, "all different");
    char ch[MG_PKCE_CHALLENGE_LEN + 1];
    TAP_OK(mg_pkce_challenge_s256(v1, ch) == 0 && mg_pkce_verify("S256", ch, v1, NULL) == 0,
           "the verifier is a valid PKCE verifier");
}

/* ---- claims ---- */

static struct mg_identity *map(struct mg_oidc_provider *p, const char *claims, char *why,
                               size_t cap)
{
    struct mg_identity *id = NULL;
    struct mg_buf err;
    json_t *c = load(claims);
    mg_buf_init(&err, 512);
    mg_oidc_map_claims(p, c, &id, &err);
    snprintf(why, cap, "%.*s", (int)err.len, err.data ? err.data : "");
    mg_buf_fini(&err);
    json_decref(c);
    return id;
}

static void test_claims(void)
{
    struct mg_oidc_provider *p = NULL, *q = NULL;
    char why[512];
    struct mg_oidc_provider_conf c = {
        .name = "corp", .issuer = "https://idp.example", .client_id = "c"};
    MG_ASSERT(provider(&c, &p, why, sizeof why) == 0);

    struct mg_identity *id =
        map(p,
            "{\"iss\":\"https://idp.example\",\"aud\":\"c\",\"exp\":1,\"iat\":1,\"nonce\":\"n\","
            "\"sub\":\"248289761001\",\"email\":\"jane@example.com\",\"email_verified\":true,"
            "\"name\":\"Jane Doe\",\"groups\":[\"eng\",\"ops\",7,\"\"],\"locale\":\"fr\","
            "\"at_hash\":\"x\",\"azp\":\"c\",\"amr\":[\"mfa\"]}",
            why, sizeof why);
    TAP_OK(id != NULL, "standard claims map (%s)", why);
    TAP_IS_STR(id->subject, "oidc:corp:248289761001", "subject oidc:<provider>:<sub>");
    TAP_IS_STR(id->email, "jane@example.com", "email");
    TAP_IS_STR(id->name, "Jane Doe", "name");
    TAP_IS_INT(id->n_groups, 2, "string groups only");
    TAP_OK(id->n_groups == 2 && strcmp(id->groups[0], "eng") == 0 &&
               strcmp(id->groups[1], "ops") == 0,
           "eng, ops");
    TAP_IS_STR(id->idp, "corp", "idp is the provider name");
    TAP_IS_INT(id->method, MG_AUTH_NONE, "method left for the caller");
    char *dump = json_dumps(id->claims, JSON_COMPACT | JSON_SORT_KEYS);
    TAP_IS_STR(dump, "{\"amr\":[\"mfa\"],\"email_verified\":true,\"locale\":\"fr\"}",
               "claims keep the rest, without protocol and mapped claims");
    free(dump);
    mg_identity_unref(id);

    id = map(p, "{\"sub\":\"u\",\"email\":\"x@evil.example\",\"email_verified\":false}", why,
             sizeof why);
    TAP_IS_STR(id->email, "", "an unverified email is not the identity's email");
    TAP_OK(json_object_get(id->claims, "email") != NULL, "it stays visible in claims");
    mg_identity_unref(id);

    id = map(p, "{\"sub\":\"u\",\"groups\":\"admins\"}", why, sizeof why);
    TAP_OK(id->n_groups == 1 && strcmp(id->groups[0], "admins") == 0, "a single-string group");
    TAP_IS_STR(id->email, "", "no email claim: empty");
    TAP_IS_STR(id->name, "", "no name claim: empty");
    mg_identity_unref(id);

    TAP_OK(map(p, "{\"email\":\"a@b\"}", why, sizeof why) == NULL, "no sub: refused (%s)", why);
    TAP_OK(map(p, "{\"sub\":\"\"}", why, sizeof why) == NULL, "empty sub refused");
    TAP_OK(map(p, "{\"sub\":42}", why, sizeof why) == NULL, "numeric sub refused");

    struct mg_oidc_provider_conf k = {.name = "kc",
                                      .issuer = "https://idp.example",
                                      .client_id = "c",
                                      .email_claim = "upn",
                                      .name_claim = "preferred_username",
                                      .groups_claim = "realm_access.roles"};
    MG_ASSERT(provider(&k, &q, why, sizeof why) == 0);
    id = map(q,
             "{\"sub\":\"s\",\"upn\":\"j@corp\",\"email_verified\":false,"
             "\"preferred_username\":\"jd\",\"realm_access\":{\"roles\":[\"r1\",\"r2\"]}}",
             why, sizeof why);
    TAP_IS_STR(id->subject, "oidc:kc:s", "custom provider subject");
    TAP_IS_STR(id->email, "j@corp", "custom email claim (email_verified is about \"email\")");
    TAP_IS_STR(id->name, "jd", "custom name claim");
    TAP_OK(id->n_groups == 2 && strcmp(id->groups[1], "r2") == 0,
           "nested groups claim realm_access.roles");
    mg_identity_unref(id);
    mg_oidc_provider_unref(q);
    mg_oidc_provider_unref(p);
}

/* ---- end to end ---- */

/* What the provider does next; written by the test, read by the server. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char issuer[128]; /* the issuer the server claims everywhere */
    char *jwks;       /* JWKS text */
    EVP_PKEY *sign_key;
    char kid[16];
    char nonce[64]; /* the nonce put in the ID token */
    char aud[64];
    char challenge[64];      /* the PKCE challenge the server expects */
    const char *client_auth; /* "basic" or "post" */
    int64_t exp_offset;
    char extra[256]; /* more claims, ",\"k\":v" */
    bool no_id_token;
    int n_disc, n_jwks, n_token;
    char last_error[256]; /* what the token endpoint did not like */
} op;

static char *form_get(const char *body, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && p[nl] == '=' && strncmp(p, name, nl) == 0) {
            char *out = mg_xmalloc(len);
            size_t o = 0;
            for (size_t i = nl + 1; i < len; i++) {
                if (p[i] == '%' && i + 2 < len + 1) {
                    char hx[3] = {p[i + 1], p[i + 2], 0};
                    out[o++] = (char)strtol(hx, NULL, 16);
                    i += 2;
                } else {
                    out[o++] = p[i] == '+' ? ' ' : p[i];
                }
            }
            out[o] = '\0';
            return out;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* Checks the token request as a strict provider would. */
static const char *check_token_request(const struct tsrv_req *r)
{
    static char basic[512];
    char hv[512];
    const char *problem = NULL;
    char *gt = form_get(r->body, "grant_type"), *code = form_get(r->body, "code"),
         *ru = form_get(r->body, "redirect_uri"), *cv = form_get(r->body, "code_verifier"),
         *cid = form_get(r->body, "client_id"), *cs = form_get(r->body, "client_secret");
    if (!tsrv_header(r, "Content-Type", hv, sizeof hv) ||
        strcmp(hv, "application/x-www-form-urlencoded") != 0)
        problem = "content type";
    else if (!gt || strcmp(gt, "authorization_code") != 0)
        problem = "grant_type";
    else if (!code || !ru || strcmp(ru, REDIRECT) != 0)
        problem = "code or redirect_uri";
    else if (!cv || mg_pkce_verify("S256", op.challenge, cv, NULL) != 0)
        problem = "PKCE verifier";
    else if (strcmp(op.client_auth, "post") == 0 &&
             (!cid || !cs || strcmp(cid, CLIENT_ID) != 0 || strcmp(cs, CLIENT_SECRET) != 0))
        problem = "client_secret_post credentials";
    else if (strcmp(op.client_auth, "basic") == 0) {
        /* RFC 6749 §2.3.1: form-encoded id and secret, then base64. */
        if (!tsrv_header(r, "Authorization", hv, sizeof hv) || strncmp(hv, "Basic ", 6) != 0) {
            problem = "no Basic authorization";
        } else {
            int n = EVP_DecodeBlock((unsigned char *)basic, (unsigned char *)hv + 6,
                                    (int)strlen(hv + 6));
            while (n > 0 && basic[n - 1] == '\0')
                n--;
            basic[n > 0 ? n : 0] = '\0';
            if (strcmp(basic, "gw-client:s3cr%26t%3Awith%3Dodd%20chars") != 0)
                problem = "Basic credentials";
            else if (cs != NULL)
                problem = "secret in the body as well";
        }
    }
    if (problem == NULL && code && strcmp(code, "expired") == 0)
        problem = "expired";
    free(gt);
    free(code);
    free(ru);
    free(cv);
    free(cid);
    free(cs);
    return problem;
}

static int idp(void *ud, const struct tsrv_req *r, struct mg_buf *out)
{
    MG_UNUSED(ud);
    char doc[1024];
    pthread_mutex_lock(&mu);
    if (strstr(r->path, "/.well-known/openid-configuration")) {
        op.n_disc++;
        snprintf(doc, sizeof doc,
                 "{\"issuer\":\"%s\",\"authorization_endpoint\":\"%s/authorize\","
                 "\"token_endpoint\":\"%s/token\",\"jwks_uri\":\"%s/jwks\","
                 "\"response_types_supported\":[\"code\"],"
                 "\"code_challenge_methods_supported\":[\"S256\"],"
                 "\"id_token_signing_alg_values_supported\":[\"ES256\",\"RS256\"]}",
                 op.issuer, op.issuer, op.issuer, op.issuer);
        tsrv_json(out, 200, doc);
    } else if (strcmp(r->path, "/jwks") == 0) {
        op.n_jwks++;
        tsrv_json(out, 200, op.jwks);
    } else if (strcmp(r->path, "/token") == 0 && strcmp(r->method, "POST") == 0) {
        op.n_token++;
        if (strstr(r->body, "code=hold&")) {
            pthread_mutex_unlock(&mu);
            return TSRV_HOLD; /* until the client goes away */
        }
        const char *problem = check_token_request(r);
        snprintf(op.last_error, sizeof op.last_error, "%s", problem ? problem : "");
        if (problem) {
            snprintf(doc, sizeof doc,
                     "{\"error\":\"invalid_grant\",\"error_description\":\"%s\\u0007\"}", problem);
            tsrv_json(out, 400, doc);
        } else if (op.no_id_token) {
            tsrv_json(out, 200, "{\"access_token\":\"at\",\"token_type\":\"Bearer\"}");
        } else {
            char claims[1024];
            time_t now = time(NULL);
            snprintf(claims, sizeof claims,
                     "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"user-1\",\"nonce\":\"%s\","
                     "\"iat\":%lld,\"exp\":%lld,\"email\":\"jane@example.com\","
                     "\"name\":\"Jane\",\"groups\":[\"eng\"]%s}",
                     op.issuer, op.aud, op.nonce, (long long)now, (long long)(now + op.exp_offset),
                     op.extra);
            char *tok = ts_sign_es256(op.sign_key, op.kid, claims);
            struct mg_buf b;
            mg_buf_init(&b, 32768);
            mg_buf_appendf(&b,
                           "{\"access_token\":\"at\",\"token_type\":\"bearer\","
                           "\"expires_in\":300,\"id_token\":\"%s\"}",
                           tok);
            mg_buf_append(&b, "", 1);
            tsrv_json(out, 200, b.data);
            mg_buf_fini(&b);
            free(tok);
        }
    } else {
        tsrv_reply(out, 404, "text/plain", "no", 2);
    }
    pthread_mutex_unlock(&mu);
    return TSRV_REPLY;
}

static uv_loop_t loop;
static struct mg_client_pool pool;

struct result {
    int calls, status;
    struct mg_identity *id;
    char error[600];
    uint64_t ms;
};

static void on_exchanged(void *ud, int status, struct mg_identity *id, const char *error)
{
    struct result *r = ud;
    r->calls++;
    r->status = status;
    r->id = id;
    snprintf(r->error, sizeof r->error, "%s", error);
}

/* One sign-in: fresh nonce and verifier, the server told what to expect. */
static struct result sign_in(struct mg_oidc_provider *p, const char *code, bool wrong_nonce)
{
    struct result res = {0};
    char nonce[MG_OIDC_SECRET_BUF], verifier[MG_OIDC_SECRET_BUF];
    MG_ASSERT(mg_oidc_new_secrets(nonce, verifier) == 0);
    pthread_mutex_lock(&mu);
    snprintf(op.nonce, sizeof op.nonce, "%s", wrong_nonce ? "someone-elses-nonce" : nonce);
    MG_ASSERT(mg_pkce_challenge_s256(verifier, op.challenge) == 0);
    pthread_mutex_unlock(&mu);
    struct mg_oidc_exchange_params x = {
        .code = code, .redirect_uri = REDIRECT, .code_verifier = verifier, .nonce = nonce};
    uint64_t t0 = mg_now_ms();
    MG_ASSERT(mg_oidc_exchange(p, &pool, &x, on_exchanged, &res, NULL) == 0);
    while (res.calls == 0 && mg_now_ms() - t0 < 15000)
        uv_run(&loop, UV_RUN_ONCE);
    res.ms = mg_now_ms() - t0;
    return res;
}

static void set_keys(EVP_PKEY *const *keys, const char *const *kids, size_t n)
{
    char *t = ts_jwks_text(keys, kids, n);
    pthread_mutex_lock(&mu);
    free(op.jwks);
    op.jwks = t;
    pthread_mutex_unlock(&mu);
}

static void set_signer(EVP_PKEY *k, const char *kid)
{
    pthread_mutex_lock(&mu);
    op.sign_key = k;
    snprintf(op.kid, sizeof op.kid, "%s", kid);
    pthread_mutex_unlock(&mu);
}

static void on_discovered(void *ud, int status, struct mg_oidc_discovery *d, const char *error)
{
    struct result *r = ud;
    r->calls++;
    r->status = status;
    snprintf(r->error, sizeof r->error, "%s", error);
    mg_oidc_discovery_unref(d);
}

static void test_end_to_end(void)
{
    struct tsrv srv, silent;
    char why[512], issuer[128];
    EVP_PKEY *k1 = ts_ec_key(), *k2 = ts_ec_key(), *rogue = ts_ec_key();
    EVP_PKEY *set1[] = {k1}, *set12[] = {k1, k2};
    const char *kids1[] = {"k1"}, *kids12[] = {"k1", "k2"};
    MG_ASSERT(tsrv_start(&srv, "127.0.0.1", NULL, idp, NULL, true) == 0);
    MG_ASSERT(tsrv_start(&silent, "127.0.0.1", NULL, idp, NULL, false) == 0);
    snprintf(issuer, sizeof issuer, "http://127.0.0.1:%u", srv.port);
    pthread_mutex_lock(&mu);
    snprintf(op.issuer, sizeof op.issuer, "%s", issuer);
    snprintf(op.aud, sizeof op.aud, "%s", CLIENT_ID);
    op.client_auth = "basic";
    op.exp_offset = 300;
    pthread_mutex_unlock(&mu);
    set_keys(set1, kids1, 1);
    set_signer(k1, "k1");

    struct mg_oidc_provider *p = NULL;
    struct mg_oidc_provider_conf c = {.name = "test",
                                      .issuer = issuer,
                                      .client_id = CLIENT_ID,
                                      .client_secret = CLIENT_SECRET,
                                      .allow_http = true,
                                      .timeout_ms = 2000};
    MG_ASSERT(provider(&c, &p, why, sizeof why) == 0);

    /* Discovery, and the authorization URL from it. */
    struct result dr = {0};
    TAP_IS_INT(mg_oidc_discover(p, &pool, on_discovered, &dr, NULL), 0, "discover starts");
    while (dr.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    TAP_IS_INT(dr.status, 0, "discovery document fetched and checked (%s)", dr.error);
    struct mg_oidc_discovery *d = NULL;
    TAP_IS_INT(mg_oidc_discovery_peek(p, &d), 0, "then cached");
    struct mg_buf u;
    mg_buf_init(&u, 4096);
    TAP_IS_INT(mg_oidc_authorize_url(p, d, REDIRECT, "st", "nn",
                                     "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", &u),
               0, "authorization URL from the fetched document");
    mg_buf_append(&u, "", 1);
    char want[256];
    snprintf(want, sizeof want, "%s/authorize?response_type=code&client_id=gw-client&", issuer);
    TAP_OK(strncmp(u.data, want, strlen(want)) == 0, "points at the provider: %s", u.data);
    mg_buf_fini(&u);
    mg_oidc_discovery_unref(d);

    /* The happy path. */
    struct result r = sign_in(p, "code-1", false);
    TAP_IS_INT(r.status, 0, "code exchanged, ID token verified (%s)", r.error);
    TAP_OK(r.id != NULL, "an identity");
    if (r.id) {
        TAP_IS_STR(r.id->subject, "oidc:test:user-1", "subject");
        TAP_IS_STR(r.id->email, "jane@example.com", "email");
        TAP_IS_STR(r.id->name, "Jane", "name");
        TAP_OK(r.id->n_groups == 1 && strcmp(r.id->groups[0], "eng") == 0, "groups");
        TAP_IS_STR(r.id->idp, "test", "idp");
        TAP_OK(json_object_get(r.id->claims, "nonce") == NULL, "no protocol claims kept");
    }
    mg_identity_unref(r.id);
    TAP_OK(op.n_disc == 1 && op.n_jwks == 1 && op.n_token == 1,
           "one discovery, one JWKS, one token request (%d %d %d)", op.n_disc, op.n_jwks,
           op.n_token);
    r = sign_in(p, "code-2", false);
    TAP_IS_INT(r.status, 0, "a second sign-in");
    mg_identity_unref(r.id);
    TAP_OK(op.n_disc == 1 && op.n_jwks == 1 && op.n_token == 2,
           "discovery and JWKS came from the caches");

    /* Key rotation: the provider publishes k2 and signs with it. */
    usleep(350 * 1000); /* past the JWKS refetch limit of this test */
    set_keys(set12, kids12, 2);
    set_signer(k2, "k2");
    r = sign_in(p, "code-3", false);
    TAP_IS_INT(r.status, 0, "a token signed with a new key verifies (%s)", r.error);
    TAP_IS_INT(op.n_jwks, 2, "after exactly one JWKS refetch");
    mg_identity_unref(r.id);

    /* What the ID token must get right. */
    r = sign_in(p, "code-4", true);
    TAP_IS_INT(r.status, MG_EDENIED, "wrong nonce: denied");
    TAP_OK(strstr(r.error, "nonce mismatch") && strstr(r.error, "provider test"), "reason: %s",
           r.error);
    TAP_OK(r.id == NULL, "no identity");

    pthread_mutex_lock(&mu);
    snprintf(op.aud, sizeof op.aud, "another-client");
    pthread_mutex_unlock(&mu);
    r = sign_in(p, "code-5", false);
    TAP_IS_INT(r.status, MG_EDENIED, "wrong audience: denied");
    TAP_OK(strstr(r.error, "audience mismatch") != NULL, "reason: %s", r.error);

    pthread_mutex_lock(&mu);
    snprintf(op.aud, sizeof op.aud, "%s", CLIENT_ID);
    snprintf(op.extra, sizeof op.extra, ",\"azp\":\"another-client\"");
    pthread_mutex_unlock(&mu);
    r = sign_in(p, "code-6", false);
    TAP_IS_INT(r.status, MG_EDENIED, "azp naming another client: denied");
    TAP_OK(strstr(r.error, "azp") != NULL, "reason: %s", r.error);

    pthread_mutex_lock(&mu);
    op.extra[0] = '\0';
    op.exp_offset = -120;
    pthread_mutex_unlock(&mu);
    r = sign_in(p, "code-7", false);
    TAP_IS_INT(r.status, MG_EDENIED, "expired two minutes ago: denied");
    TAP_OK(strstr(r.error, "expired") != NULL, "reason: %s", r.error);
    pthread_mutex_lock(&mu);
    op.exp_offset = -30;
    pthread_mutex_unlock(&mu);
    r = sign_in(p, "code-8", false);
    TAP_IS_INT(r.status, 0, "expired 30 s ago: inside the 60 s leeway");
    mg_identity_unref(r.id);
    pthread_mutex_lock(&mu);
    op.exp_offset = 300;
    pthread_mutex_unlock(&mu);

    int jwks_before = op.n_jwks;
    set_signer(rogue, "k1"); /* a key the provider never published, under a known kid */
    r = sign_in(p, "code-9", false);
    TAP_IS_INT(r.status, MG_EDENIED, "signed with an unpublished key: denied");
    TAP_OK(strstr(r.error, "bad signature") != NULL, "reason: %s", r.error);
    TAP_IS_INT(op.n_jwks, jwks_before, "a known kid with a bad signature fetches nothing");
    set_signer(k2, "k2");

    /* What the token endpoint says. */
    r = sign_in(p, "expired", false);
    TAP_IS_INT(r.status, MG_EDENIED, "a refused code: denied");
    TAP_OK(strstr(r.error, "token endpoint refused the code: invalid_grant: expired?") != NULL,
           "the provider's error and description, control bytes cleaned: %s", r.error);
    pthread_mutex_lock(&mu);
    op.no_id_token = true;
    pthread_mutex_unlock(&mu);
    r = sign_in(p, "code-10", false);
    TAP_IS_INT(r.status, MG_EPROTO, "no id_token in the response");
    TAP_OK(strstr(r.error, "no id_token") != NULL, "reason: %s", r.error);
    pthread_mutex_lock(&mu);
    op.no_id_token = false;
    pthread_mutex_unlock(&mu);

    /* client_secret_post. */
    struct mg_oidc_provider *pp = NULL;
    struct mg_oidc_provider_conf cp = c;
    cp.name = "post";
    cp.token_auth = MG_OIDC_AUTH_POST;
    MG_ASSERT(provider(&cp, &pp, why, sizeof why) == 0);
    pthread_mutex_lock(&mu);
    op.client_auth = "post";
    pthread_mutex_unlock(&mu);
    r = sign_in(pp, "code-11", false);
    TAP_IS_INT(r.status, 0, "client_secret_post (%s; server: %s)", r.error, op.last_error);
    if (r.id)
        TAP_IS_STR(r.id->subject, "oidc:post:user-1", "subject names that provider");
    mg_identity_unref(r.id);
    pthread_mutex_lock(&mu);
    op.client_auth = "basic";
    pthread_mutex_unlock(&mu);
    mg_oidc_provider_unref(pp);

    /* A provider whose discovery document names another issuer. */
    struct mg_oidc_provider *pm = NULL;
    char other[160];
    snprintf(other, sizeof other, "%s/other", issuer);
    struct mg_oidc_provider_conf cm = c;
    cm.name = "mismatch";
    cm.issuer = other;
    MG_ASSERT(provider(&cm, &pm, why, sizeof why) == 0);
    int tokens_before = op.n_token;
    r = sign_in(pm, "code-12", false);
    TAP_IS_INT(r.status, MG_EPROTO, "discovery issuer mismatch: MG_EPROTO");
    TAP_OK(strstr(r.error, "does not match the configured issuer") != NULL, "reason: %s", r.error);
    TAP_IS_INT(op.n_token, tokens_before, "the code never went to that token endpoint");
    mg_oidc_provider_unref(pm);

    /* Providers that are down. */
    struct mg_oidc_provider *pd = NULL;
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%u", tsrv_closed_port());
    struct mg_oidc_provider_conf cd = c;
    cd.name = "down";
    cd.issuer = dead;
    MG_ASSERT(provider(&cd, &pd, why, sizeof why) == 0);
    r = sign_in(pd, "code-13", false);
    TAP_IS_INT(r.status, MG_EIO, "closed port: MG_EIO");
    TAP_OK(strstr(r.error, "provider down") && strstr(r.error, "cannot connect"), "reason: %s",
           r.error);
    TAP_OK(r.ms < 2000, "within the timeout (%llu ms)", (unsigned long long)r.ms);
    mg_oidc_provider_unref(pd);

    char hush[64];
    snprintf(hush, sizeof hush, "http://127.0.0.1:%u", silent.port);
    struct mg_oidc_provider_conf cs = c;
    cs.name = "silent";
    cs.issuer = hush;
    cs.timeout_ms = 300;
    MG_ASSERT(provider(&cs, &pd, why, sizeof why) == 0);
    r = sign_in(pd, "code-14", false);
    TAP_IS_INT(r.status, MG_ETIMEDOUT, "a provider that never answers: MG_ETIMEDOUT");
    TAP_OK(r.ms >= 250 && r.ms < 1500, "after its timeout (%llu ms)", (unsigned long long)r.ms);
    TAP_OK(strstr(r.error, "provider silent") && strstr(r.error, "within 300 ms"), "reason: %s",
           r.error);

    /* Cancelled: no callback, nothing leaks. */
    struct result rc = {0};
    struct mg_oidc_req *req = NULL;
    char nonce[MG_OIDC_SECRET_BUF], verifier[MG_OIDC_SECRET_BUF];
    MG_ASSERT(mg_oidc_new_secrets(nonce, verifier) == 0);
    struct mg_oidc_exchange_params x = {
        .code = "c", .redirect_uri = REDIRECT, .code_verifier = verifier, .nonce = nonce};
    TAP_IS_INT(mg_oidc_exchange(p, &pool, &x, on_exchanged, &rc, &req), 0, "exchange to cancel");
    mg_oidc_cancel(req);
    x.code_verifier = "too-short";
    TAP_IS_INT(mg_oidc_exchange(p, &pool, &x, on_exchanged, &rc, &req), MG_EINVAL,
               "a malformed verifier is refused at once");
    uint64_t t0 = mg_now_ms();
    while (mg_now_ms() - t0 < 500)
        uv_run(&loop, UV_RUN_NOWAIT);
    TAP_IS_INT(rc.calls, 0, "no callback after cancel");
    /* Cancelled while the token request is out. */
    x.code = "hold";
    x.code_verifier = verifier;
    pthread_mutex_lock(&mu);
    int tokens = op.n_token;
    pthread_mutex_unlock(&mu);
    TAP_IS_INT(mg_oidc_exchange(p, &pool, &x, on_exchanged, &rc, &req), 0, "exchange to cancel");
    t0 = mg_now_ms();
    for (bool sent = false; !sent && mg_now_ms() - t0 < 5000;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        pthread_mutex_lock(&mu);
        sent = op.n_token > tokens;
        pthread_mutex_unlock(&mu);
    }
    TAP_IS_INT(op.n_token, tokens + 1, "the token request reached the provider");
    mg_oidc_cancel(req);
    t0 = mg_now_ms();
    while (mg_now_ms() - t0 < 300)
        uv_run(&loop, UV_RUN_NOWAIT);
    TAP_IS_INT(rc.calls, 0, "cancelled mid-request: no callback");
    mg_oidc_provider_unref(pd); /* released while its discovery fetch may still run */

    mg_oidc_provider_unref(p);
    tsrv_stop(&silent);
    tsrv_stop(&srv);
    free(op.jwks);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(rogue);
}

int main(void)
{
    struct mg_fetch_cache_opts dopts = {.min_refresh_ms = 300};
    struct mg_jwks_cache_opts jopts = {.min_refetch_ms = 300};
    disc_cache = mg_oidc_discovery_cache_new(&dopts);
    jwks_cache = mg_jwks_cache_new(&jopts);
    test_discovery();
    test_provider_conf();
    test_authorize_url();
    test_claims();
    uv_loop_init(&loop);
    mg_client_pool_init(&pool, &loop, 65536);
    test_end_to_end();
    mg_client_pool_close(&pool);
    mg_stream_loop_fini();
    uv_run(&loop, UV_RUN_DEFAULT);
    TAP_IS_INT(uv_loop_close(&loop), 0, "the loop closes with nothing left open");
    mg_fetch_cache_free(disc_cache);
    mg_jwks_cache_free(jwks_cache);
    return tap_done();
}
