/* TLS contexts: the listener's (certificates chosen by SNI, TLS 1.2+, ALPN
 * http/1.1, a generated self-signed certificate when none is configured) and
 * the upstream client's (verification on by default). */
#ifndef MG_NET_TLS_H
#define MG_NET_TLS_H

#include "conf/conf.h"
#include "core/buf.h"

#include <openssl/ssl.h>

struct mg_tls_server {
    SSL_CTX **ctxs; /* one per certificate; ctxs[0] is the default */
    size_t n_ctxs;
};

/* Builds the listener contexts from conf. err gets a message on failure. */
int mg_tls_server_new(const struct mg_conf *conf, struct mg_tls_server **out, struct mg_buf *err);
void mg_tls_server_free(struct mg_tls_server *t);
SSL_CTX *mg_tls_server_default(const struct mg_tls_server *t);

/* Ensures state_dir holds a self-signed certificate for localhost, 127.0.0.1
 * and ::1, creating it (key 0600) when missing. Paths returned are malloc'd. */
int mg_tls_ensure_self_signed(const char *state_dir, char **cert_path, char **key_path,
                              struct mg_buf *err);

/* An upstream client context: system CAs (or ca_file), TLS 1.2+, ALPN http/1.1. */
SSL_CTX *mg_tls_client_ctx_new(const char *ca_file, struct mg_buf *err);

#endif
