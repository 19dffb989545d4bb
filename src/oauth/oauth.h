/* The authorization server (OAuth 2.1 with PKCE S256 only, RFC 8414 metadata,
 * RFC 7591 registration, client ID metadata documents, RFC 7009 revocation,
 * RFC 9207 iss) and its browser pages: sign-in, consent, sign-out. Requests
 * reach it through mg_oauth_dispatch (gw/req.h) on the issuer's host. */
#ifndef MG_OAUTH_OAUTH_H
#define MG_OAUTH_OAUTH_H

#include "core/buf.h"
#include "gw/authsvc.h"

/* Loads what the oauth module needs once per process (page templates from
 * web_dir, providers' client secrets) into a->ext. */
int mg_oauth_init(struct mg_authsvc *a, const struct mg_conf *conf, struct mg_buf *err);
void mg_oauth_fini(struct mg_authsvc *a);

#endif
