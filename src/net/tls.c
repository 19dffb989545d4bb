/* TLS context construction; see tls.h. */
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

static void ssl_err(struct mg_buf *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, msg, sizeof msg);
    ERR_clear_error();
    mg_buf_appendf(err, "%s: %s", what, msg);
}

/* RFC 7301: we speak HTTP/1.1 only (h2 is a later phase), so a client that
 * offers h2 and http/1.1 gets http/1.1; one that offers neither gets no ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    static const unsigned char proto[] = "\x08http/1.1";
    MG_UNUSED(ssl);
    MG_UNUSED(arg);
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, proto, sizeof proto - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int sni_select(SSL *ssl, int *al, void *arg)
{
    MG_UNUSED(al);
    struct mg_tls_server *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL || t->n_ctxs < 2)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < t->n_ctxs; i++) {
        X509 *cert = SSL_CTX_get0_certificate(t->ctxs[i]);
        if (cert && X509_check_host(cert, name, 0, 0, NULL) == 1) {
            if (i != 0)
                SSL_set_SSL_CTX(ssl, t->ctxs[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* fall back to the default certificate */
}

static SSL_CTX *server_ctx(const char *cert, const char *key, const char *min_version,
                           struct mg_buf *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_err(err, "SSL_CTX_new");
        return NULL;
    }
    int minv = (min_version && strcmp(min_version, "1.3") == 0) ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, minv);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_err(err, cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int write_pem(const char *path, int mode, int (*fn)(FILE *, void *), void *obj)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return MG_EIO;
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return MG_EIO;
    }
    int ok = fn(f, obj);
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return MG_EIO;
    }
    return 0;
}

static int pem_key(FILE *f, void *k)
{
    return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
}
static int pem_cert(FILE *f, void *c)
{
    return PEM_write_X509(f, c);
}

int mg_tls_ensure_self_signed(const char *state_dir, char **cert_path, char **key_path,
                              struct mg_buf *err)
{
    int rc = MG_EIO;
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    X509_EXTENSION *ext = NULL;
    char cp[4096], kp[4096];
    snprintf(cp, sizeof cp, "%s/selfsigned.crt", state_dir);
    snprintf(kp, sizeof kp, "%s/selfsigned.key", state_dir);
    *cert_path = *key_path = NULL;
    if (access(cp, R_OK) == 0 && access(kp, R_OK) == 0) {
        rc = 0;
        goto done;
    }
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        mg_buf_appendf(err, "cannot create state_dir %s: %s", state_dir, strerror(errno));
        goto out;
    }
    pkey = EVP_EC_gen("P-256");
    x = X509_new();
    if (pkey == NULL || x == NULL) {
        ssl_err(err, "generating self-signed certificate");
        goto out;
    }
    X509_set_version(x, 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"mcpgate localhost",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (ext == NULL || !X509_add_ext(x, ext, -1) || !X509_sign(x, pkey, EVP_sha256())) {
        ssl_err(err, "signing self-signed certificate");
        goto out;
    }
    if (write_pem(kp, 0600, pem_key, pkey) < 0 || write_pem(cp, 0644, pem_cert, x) < 0) {
        mg_buf_appendf(err, "cannot write self-signed certificate to %s: %s", state_dir,
                       strerror(errno));
        goto out;
    }
    rc = 0;
done:
    *cert_path = mg_xstrdup(cp);
    *key_path = mg_xstrdup(kp);
out:
    X509_EXTENSION_free(ext);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

int mg_tls_server_new(const struct mg_conf *conf, struct mg_tls_server **out, struct mg_buf *err)
{
    struct mg_tls_server *t = mg_xcalloc(1, sizeof *t);
    const char *minv = conf->tls_min_version;
    if (conf->n_certs == 0) {
        char *cp = NULL, *kp = NULL;
        if (mg_tls_ensure_self_signed(conf->state_dir, &cp, &kp, err) < 0) {
            free(t);
            return MG_EIO;
        }
        t->ctxs = mg_xcalloc(1, sizeof *t->ctxs);
        t->ctxs[0] = server_ctx(cp, kp, minv, err);
        free(cp);
        free(kp);
        if (t->ctxs[0] == NULL) {
            mg_tls_server_free(t);
            return MG_ETLS;
        }
        t->n_ctxs = 1;
    } else {
        t->ctxs = mg_xcalloc(conf->n_certs, sizeof *t->ctxs);
        for (size_t i = 0; i < conf->n_certs; i++) {
            t->ctxs[i] = server_ctx(conf->certs[i].cert_file, conf->certs[i].key_file, minv, err);
            if (t->ctxs[i] == NULL) {
                mg_tls_server_free(t);
                return MG_ETLS;
            }
            t->n_ctxs++;
        }
    }
    for (size_t i = 0; i < t->n_ctxs; i++)
        SSL_CTX_set_tlsext_servername_callback(t->ctxs[i], sni_select),
            SSL_CTX_set_tlsext_servername_arg(t->ctxs[i], t);
    *out = t;
    return 0;
}

void mg_tls_server_free(struct mg_tls_server *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_ctxs; i++)
        SSL_CTX_free(t->ctxs[i]);
    free(t->ctxs);
    free(t);
}

SSL_CTX *mg_tls_server_default(const struct mg_tls_server *t)
{
    return t->ctxs[0];
}

SSL_CTX *mg_tls_client_ctx_new(const char *ca_file, struct mg_buf *err)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ssl_err(err, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        ssl_err(err, ca_file ? ca_file : "system CA store");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
