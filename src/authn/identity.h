/* The identity attached to an authenticated request: who is calling, through
 * which client, how they proved it, and with which token. Built by the authn
 * phase (gateway tokens, service accounts, external JWTs), read by the policy
 * phase and the access/audit logs. Immutable once built and reference-counted,
 * so the token cache can hand the same identity to many requests on several
 * worker threads. */
#ifndef MG_AUTHN_IDENTITY_H
#define MG_AUTHN_IDENTITY_H

#include "core/buf.h"
#include "core/common.h"

#include <jansson.h>
#include <stdatomic.h>

enum mg_auth_method {
    MG_AUTH_NONE = 0, /* anonymous (public route) */
    MG_AUTH_OAUTH,    /* an access token this gateway issued */
    MG_AUTH_SERVICE,  /* a service-account token */
    MG_AUTH_JWT,      /* a JWT from a configured external issuer */
    MG_AUTH_CLIENT,   /* client_credentials: the client itself */
};

#define MG_IDENTITY_MAX_GROUPS 256

struct mg_identity {
    atomic_int refs;
    /* Set once, before it is shared, on the process's anonymous identity:
     * it is never freed, so it is not counted (every public request would
     * otherwise write its count from every worker). */
    bool immortal;
    char *subject; /* stable id: "user:<email>", "oidc:<provider>:<sub>", "sa:<name>", ... */
    char *email;   /* "" if unknown */
    char *name;    /* "" if unknown */
    char **groups; /* n_groups strings */
    size_t n_groups;
    json_t *claims;  /* object: extra claims (from an IdP or a JWT); never NULL */
    char *client_id; /* the OAuth client the token was issued to; "" if none */
    char *idp;       /* "builtin", a provider name, a JWT issuer; "" if none */
    enum mg_auth_method method;
    char token_id[17]; /* first 16 hex chars of the token's SHA-256; "" if none */
    char *audience;    /* the resource the token is bound to; "*" = any route */
    char *scopes;      /* space-separated granted scopes; "" if none */
    int64_t expires_at;
};

/* A new identity with refs = 1 and every string "" (claims = {}). */
struct mg_identity *mg_identity_new(void);
/* The shared anonymous identity (as mg_identity_new, method MG_AUTH_NONE).
 * It lives as long as the process and is not counted: ref and unref do
 * nothing to it (unref it or not). It must not be changed. */
struct mg_identity *mg_identity_anonymous(void);
void mg_identity_ref(struct mg_identity *id);
/* Frees at zero; NULL is a no-op. */
void mg_identity_unref(struct mg_identity *id);

/* Serialises the stable part (subject, email, name, groups, claims, idp,
 * method) as a JSON object, the form stored with tokens (identity_json) and
 * sealed into browser sessions. */
int mg_identity_to_json(const struct mg_identity *id, struct mg_buf *out);
/* Parses what mg_identity_to_json wrote into a new identity (refs = 1).
 * MG_EINVAL for anything malformed, MG_ELIMIT past the bounds. */
int mg_identity_from_json(const char *text, size_t len, struct mg_identity **out);

/* Replaces the group list with the strings of a JSON array (non-strings are
 * skipped; at most MG_IDENTITY_MAX_GROUPS). */
int mg_identity_set_groups_json(struct mg_identity *id, const json_t *arr);
bool mg_identity_in_group(const struct mg_identity *id, const char *group);

const char *mg_auth_method_name(enum mg_auth_method m);

#endif
