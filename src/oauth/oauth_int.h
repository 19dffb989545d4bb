/* Internals shared by the authorization server's files: the per-request
 * state, client records, replies and store jobs. */
#ifndef MG_OAUTH_OAUTH_INT_H
#define MG_OAUTH_OAUTH_INT_H

#include "authn/seal.h"
#include "authn/token.h"
#include "gw/req.h"
#include "http/form.h"
#include "oauth/oauth.h"

#include <jansson.h>

#define OAUTH_PREFIX    "/_mcpgate/"
#define SESSION_COOKIE  "_mcpgate_session"
#define CSRF_COOKIE     "_mcpgate_csrf"
#define AUTHREQ_TTL_SEC 600

/* A client as the endpoints see it, whatever registered it. */
struct oclient {
    char *client_id;
    char *name;
    json_t *redirect_uris; /* array of strings */
    bool confidential;     /* has a secret: must authenticate at the token endpoint */
    uint8_t secret_hash[MG_TOKEN_HASH_LEN];
    bool allow_code, allow_refresh, allow_cc;
    json_t *groups; /* client_credentials identity groups (config clients) */
};

/* The pending authorization request, sealed into the pages' "req" field. */
struct authreq {
    char *client_id;
    char *client_name;
    char *redirect_uri; /* the one to send the browser back to */
    char *state;        /* NULL if the client sent none */
    char *challenge;
    char *resource; /* the route's resource */
    char *scope;
    char *route_name;
};

struct oreq;
struct lookup_state;
struct mg_oidc_req;
struct mg_oidc_provider;
typedef void (*ostep)(struct oreq *o, int status);

struct oreq {
    struct mg_gw_req *p;
    struct mg_authsvc *a;
    struct mg_form form; /* query (GET) or body (POST) */
    bool form_ok;
    struct oclient client;
    bool have_client;
    struct authreq ar;
    char *sealed_req;            /* the authreq as sealed */
    struct mg_identity *session; /* the signed-in person, from the cookie */
    ostep next;                  /* what runs after the current job */
    ostep after;                 /* what runs after a multi-step lookup */
    /* job inputs and outputs */
    int64_t now;
    char *email, *password;
    int job_rc;
    const char *job_error; /* OAuth error code for the reply */
    const char *job_desc;  /* and its description */
    char access[MG_TOKEN_BUF], refresh[MG_TOKEN_BUF], code[MG_TOKEN_BUF];
    char *scope_out;
    int64_t expires_in;
    struct mg_identity *id_out;
    struct mg_fetch *fetch;
    char *provider;
    char *set_cookie; /* header lines for the final redirect */
    struct mg_oidc_req *oidc_req;
    struct lookup_state *lookup; /* client lookup in flight */
    void *ext;                   /* per-endpoint state */
    void (*ext_free)(void *);
};

struct oauth_ext; /* oauth.c: templates, config clients, providers */

/* oauth.c */
struct oauth_ext *mg_oauth__ext(struct mg_authsvc *a);
void mg_oauth__reply_json(struct oreq *o, int status, json_t *doc, const char *extra_headers);
void mg_oauth__reply_oerror(struct oreq *o, int status, const char *error, const char *desc);
void mg_oauth__run(struct oreq *o, int (*work)(struct mg_store *, void *), ostep next);
void mg_oauth__client_lookup(struct oreq *o, const char *client_id, ostep next);
void mg_oauth__client_fini(struct oclient *c);
bool mg_oauth__redirect_ok(const struct oclient *c, const char *uri);
const struct mg_route_rt *mg_oauth__route_for_resource(const struct mg_gw *gw, const char *res);
bool mg_oauth__scope_ok(const struct mg_route_rt *rt, const char *scope);
int64_t mg_oauth__now(void);
struct mg_tmpl_set *mg_oauth__pages_set(struct mg_authsvc *a);
const char *mg_oauth__cookie(const struct mg_http_head *h, const char *name, size_t *len);

/* pages.c */
bool mg_oauth__pages(struct oreq *o, const char *path);
void mg_oauth__page_error(struct oreq *o, int status, const char *title, const char *message);
void mg_oauth__authreq_fini(struct authreq *ar);

void mg_oauth__consent_granted(struct oreq *o);
void mg_oauth__provider_signed_in(struct oreq *o, struct mg_identity *id);

bool mg_oauth__open_authreq(struct oreq *o, const char *sealed);
void mg_oauth__redirect_back(struct oreq *o, const char *code, const char *error, const char *desc,
                             const char *extra_headers);
size_t mg_oauth__n_providers(const struct oauth_ext *x);
struct mg_oidc_provider *mg_oauth__provider(const struct oauth_ext *x, size_t i);

/* provider.c: sign-in through OpenID Connect providers */
void mg_oauth__provider_begin(struct oreq *o);
void mg_oauth__provider_callback(struct oreq *o);

/* tokens.c */
void mg_oauth__token(struct oreq *o);
void mg_oauth__revoke(struct oreq *o);
void mg_oauth__register(struct oreq *o);
/* Issues a code for the authreq and identity (on a threadpool thread). */
int mg_oauth__issue_code(struct mg_store *st, struct oreq *o, const struct mg_identity *id);

#endif
