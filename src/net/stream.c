/* Plain and TLS streams over libuv; see stream.h. TLS runs over a BIO pair so
 * OpenSSL never touches the socket: ciphertext read by libuv is pushed into the
 * pair, ciphertext produced by OpenSSL is pulled out and written by libuv.
 * Reads use one per-thread buffer, so an idle connection holds no read memory. */
#include "net/stream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sched.h>

#define READ_BUF_SIZE 65536
#define OUT_FLUSH_AT  (256 * 1024) /* flush at once beyond this much pending output */
#define BIO_PAIR_SIZE 17408        /* one TLS record plus overhead */

static _Thread_local char read_buf[READ_BUF_SIZE];
static _Thread_local char plain_buf[16384]; /* one TLS record of plaintext */
static _Thread_local struct mg_list flush_list;
static _Thread_local uv_check_t *flush_check;
static _Thread_local bool yield_after_flush;

struct write_req {
    uv_write_t req;
    struct mg_stream *s;
    size_t len;
    char data[];
};

static void end_stream(struct mg_stream *s, int status)
{
    if (s->ended || s->closing)
        return;
    s->ended = true;
    if (s->reading) {
        uv_read_stop(&s->h.stream);
        s->reading = false;
    }
    if (s->cbs->on_end)
        s->cbs->on_end(s, status);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct mg_stream *s = w->s;
    s->queued -= w->len;
    s->n_written += w->len;
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        s->err = MG_EIO;
        end_stream(s, MG_EIO);
        return;
    }
    if (s->want_drain && s->queued == 0 && !s->closing) {
        s->want_drain = false;
        if (s->cbs->on_drain)
            s->cbs->on_drain(s);
    }
}

static int raw_write(struct mg_stream *s, const uv_buf_t *bufs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    /* Try to write synchronously first: most writes complete at once and need
     * no copy. Whatever is left is copied and queued. */
    size_t done = 0;
    if (s->queued == 0) {
        int r = uv_try_write(&s->h.stream, bufs, (unsigned)n);
        if (r > 0)
            done = (size_t)r;
        else if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS)
            return MG_EIO;
    }
    if (done == total)
        return 0;
    struct write_req *w = mg_xmalloc(sizeof *w + (total - done));
    w->s = s;
    w->len = total - done;
    size_t off = 0, skip = done;
    for (size_t i = 0; i < n; i++) {
        size_t blen = bufs[i].len;
        const char *b = bufs[i].base;
        if (skip >= blen) {
            skip -= blen;
            continue;
        }
        memcpy(w->data + off, b + skip, blen - skip);
        off += blen - skip;
        skip = 0;
    }
    uv_buf_t one = uv_buf_init(w->data, (unsigned)w->len);
    int r = uv_write(&w->req, &s->h.stream, &one, 1, on_written);
    if (r < 0) {
        free(w);
        return MG_EIO;
    }
    s->queued += w->len;
    if (s->queued > s->high_mark)
        s->want_drain = true;
    return 0;
}

/* Moves ciphertext OpenSSL produced to the socket. */
static int flush_tls(struct mg_stream *s)
{
    char buf[16384];
    for (;;) {
        int pending = (int)BIO_ctrl_pending(s->net);
        if (pending <= 0)
            return 0;
        int n = BIO_read(s->net, buf, (int)MG_MIN(sizeof buf, (size_t)pending));
        if (n <= 0)
            return 0;
        uv_buf_t b = uv_buf_init(buf, (unsigned)n);
        if (raw_write(s, &b, 1) < 0)
            return MG_EIO;
    }
}

static void tls_deliver(struct mg_stream *s)
{
    while (!s->closing && !s->ended) {
        int n = SSL_read(s->ssl, plain_buf, (int)sizeof plain_buf);
        if (n > 0) {
            s->cbs->on_read(s, plain_buf, (size_t)n);
            continue;
        }
        int e = SSL_get_error(s->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN) {
            end_stream(s, 0);
        } else {
            s->err = MG_ETLS;
            end_stream(s, MG_ETLS);
        }
        break;
    }
}

static void handshake_failed(struct mg_stream *s)
{
    ERR_clear_error();
    s->err = MG_ETLS;
    if (s->is_client && s->cbs->on_connect) {
        s->ended = true;
        mg_stream_read_stop(s);
        s->cbs->on_connect(s, MG_ETLS);
    } else {
        end_stream(s, MG_ETLS);
    }
}

/* Pushes ciphertext into the BIO pair and lets OpenSSL consume it, record by
 * record, until all of it is in. A round that moves nothing is a stuck peer. */
static void tls_input(struct mg_stream *s, const char *data, size_t len)
{
    while (!s->closing && !s->ended) {
        size_t moved = 0;
        if (len > 0) {
            size_t room = BIO_ctrl_get_write_guarantee(s->net);
            if (room > 0) {
                int w = BIO_write(s->net, data, (int)MG_MIN(len, room));
                if (w > 0) {
                    moved = (size_t)w;
                    data += w;
                    len -= (size_t)w;
                }
            }
        }
        if (!s->handshake_done) {
            ERR_clear_error();
            int r = SSL_do_handshake(s->ssl);
            if (flush_tls(s) < 0) {
                end_stream(s, MG_EIO);
                return;
            }
            if (r == 1) {
                s->handshake_done = true;
                if (s->is_client && s->cbs->on_connect) {
                    s->cbs->on_connect(s, 0);
                    if (s->closing || s->ended)
                        return;
                }
            } else {
                int e = SSL_get_error(s->ssl, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    handshake_failed(s);
                    return;
                }
            }
        }
        if (s->handshake_done)
            tls_deliver(s);
        if (!s->closing && flush_tls(s) < 0) {
            end_stream(s, MG_EIO);
            return;
        }
        if (len == 0)
            return;
        if (moved == 0 && BIO_ctrl_get_write_guarantee(s->net) == 0) {
            s->err = MG_ETLS;
            end_stream(s, MG_ETLS);
            return;
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    MG_UNUSED(h);
    MG_UNUSED(suggested);
    buf->base = read_buf;
    buf->len = READ_BUF_SIZE;
}

static void on_uv_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    struct mg_stream *s = h->data;
    if (n == 0 || s->closing)
        return;
    if (n < 0) {
        end_stream(s, n == UV_EOF ? 0 : MG_EIO);
        return;
    }
    if (s->is_tls) {
        tls_input(s, buf->base, (size_t)n);
    } else {
        s->cbs->on_read(s, buf->base, (size_t)n);
    }
}

static int init_common(struct mg_stream *s, const struct mg_stream_cbs *cbs, void *data)
{
    s->cbs = cbs;
    s->data = data;
    s->h.handle.data = s;
    s->high_mark = 256 * 1024;
    mg_buf_init(&s->out, SIZE_MAX / 2);
    mg_list_init(&s->flush_link);
    return 0;
}

int mg_stream_init_tcp(struct mg_stream *s, uv_loop_t *loop, const struct mg_stream_cbs *cbs,
                       void *data)
{
    memset(s, 0, sizeof *s);
    if (uv_tcp_init(loop, &s->h.tcp) < 0)
        return MG_EIO;
    return init_common(s, cbs, data);
}

int mg_stream_init_pipe(struct mg_stream *s, uv_loop_t *loop, const struct mg_stream_cbs *cbs,
                        void *data)
{
    memset(s, 0, sizeof *s);
    if (uv_pipe_init(loop, &s->h.pipe, 0) < 0)
        return MG_EIO;
    s->is_pipe = true;
    return init_common(s, cbs, data);
}

static int setup_tls(struct mg_stream *s, SSL_CTX *ctx)
{
    BIO *inner = NULL;
    s->ssl = SSL_new(ctx);
    if (s->ssl == NULL)
        return MG_ETLS;
    if (!BIO_new_bio_pair(&inner, BIO_PAIR_SIZE, &s->net, BIO_PAIR_SIZE)) {
        SSL_free(s->ssl);
        s->ssl = NULL;
        return MG_ETLS;
    }
    SSL_set_bio(s->ssl, inner, inner);
    s->is_tls = true;
    return 0;
}

int mg_stream_start_server(struct mg_stream *s, SSL_CTX *ctx)
{
    if (ctx) {
        if (setup_tls(s, ctx) < 0)
            return MG_ETLS;
        SSL_set_accept_state(s->ssl);
    }
    if (!s->is_pipe)
        uv_tcp_nodelay(&s->h.tcp, 1);
    mg_stream_read_start(s);
    return 0;
}

static void on_uv_connect(uv_connect_t *req, int status)
{
    struct mg_stream *s = req->handle->data;
    if (s->closing)
        return;
    if (status < 0) {
        s->ended = true;
        s->cbs->on_connect(s, status == UV_ETIMEDOUT ? MG_ETIMEDOUT : MG_EIO);
        return;
    }
    if (!s->is_pipe)
        uv_tcp_nodelay(&s->h.tcp, 1);
    mg_stream_read_start(s);
    if (!s->is_tls) {
        s->handshake_done = true;
        s->cbs->on_connect(s, 0);
        return;
    }
    SSL_do_handshake(s->ssl);
    if (flush_tls(s) < 0) {
        s->ended = true;
        s->cbs->on_connect(s, MG_EIO);
    }
}

int mg_stream_connect(struct mg_stream *s, const struct sockaddr *addr, SSL_CTX *ctx,
                      const char *sni, bool verify)
{
    s->is_client = true;
    if (ctx) {
        if (setup_tls(s, ctx) < 0)
            return MG_ETLS;
        SSL_set_connect_state(s->ssl);
        if (sni && *sni) {
            unsigned char ip[16];
            bool is_ip = inet_pton(AF_INET, sni, ip) == 1 || inet_pton(AF_INET6, sni, ip) == 1;
            /* RFC 6066 §3: SNI carries host names only, never an address. */
            if (!is_ip)
                SSL_set_tlsext_host_name(s->ssl, sni);
            if (verify) {
                /* RFC 6125 check of the upstream certificate: the host name, or
                 * the address against the certificate's IP SANs. */
                X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
                if (is_ip) {
                    if (!X509_VERIFY_PARAM_set1_ip_asc(vp, sni))
                        return MG_ETLS;
                } else {
                    SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                    if (!SSL_set1_host(s->ssl, sni))
                        return MG_ETLS;
                }
            }
        }
        SSL_set_verify(s->ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    }
    if (uv_tcp_connect(&s->connect_req, &s->h.tcp, addr, on_uv_connect) < 0)
        return MG_EIO;
    return 0;
}

int mg_stream_connect_pipe(struct mg_stream *s, const char *path)
{
    s->is_client = true;
    uv_pipe_connect(&s->connect_req, &s->h.pipe, path, on_uv_connect);
    return 0;
}

static int write_now(struct mg_stream *s, const uv_buf_t *bufs, size_t n)
{
    if (!s->is_tls)
        return raw_write(s, bufs, n);
    for (size_t i = 0; i < n; i++) {
        const char *p = bufs[i].base;
        size_t left = bufs[i].len;
        while (left > 0) {
            /* The BIO pair is bounded: write a record's worth, then drain it. */
            int chunk = (int)MG_MIN(left, (size_t)16384);
            int r = SSL_write(s->ssl, p, chunk);
            if (r <= 0) {
                int e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    if (flush_tls(s) < 0)
                        return MG_EIO;
                    continue;
                }
                ERR_clear_error();
                return MG_ETLS;
            }
            p += r;
            left -= (size_t)r;
            if (flush_tls(s) < 0)
                return MG_EIO;
        }
    }
    return 0;
}

static int flush_one(struct mg_stream *s)
{
    mg_list_remove(&s->flush_link);
    if (s->out.len == 0)
        return 0;
    uv_buf_t b = uv_buf_init(s->out.data, (unsigned)s->out.len);
    int rc = (s->closing || s->err) ? MG_ECLOSED : write_now(s, &b, 1);
    /* Keep a small buffer for the next response; give big ones back. */
    if (s->out.cap > 16384)
        mg_buf_fini(&s->out);
    else
        mg_buf_reset(&s->out);
    if (rc < 0 && !s->closing) {
        s->err = MG_EIO;
        end_stream(s, MG_EIO);
        return rc;
    }
    /* Everything went to the kernel at once: no write callback will come to
     * report the drain, so report it here. */
    if (rc == 0 && s->want_drain && s->queued == 0 && !s->closing) {
        s->want_drain = false;
        if (s->cbs->on_drain)
            s->cbs->on_drain(s);
    }
    return rc;
}

bool mg_stream_flush_all(void)
{
    if (flush_list.next == NULL || mg_list_empty(&flush_list))
        return false;
    while (!mg_list_empty(&flush_list)) {
        struct mg_stream *s = mg_list_entry(flush_list.next, struct mg_stream, flush_link);
        flush_one(s);
    }
    return true;
}

static void on_flush_check(uv_check_t *h)
{
    MG_UNUSED(h);
    if (!mg_stream_flush_all())
        return;
    /* On a machine the gateway shares with its clients and upstreams, ~15%
     * more requests (bench/RESULTS.md, issue 4 section 7). */
    if (yield_after_flush)
        sched_yield();
}

void mg_stream_loop_yield_after_flush(bool on)
{
    yield_after_flush = on;
}

static void flush_check_closed(uv_handle_t *h)
{
    free(h);
}

void mg_stream_loop_fini(void)
{
    mg_stream_flush_all();
    if (flush_check) {
        uv_close((uv_handle_t *)flush_check, flush_check_closed);
        flush_check = NULL;
    }
}

int mg_stream_writev(struct mg_stream *s, const uv_buf_t *bufs, size_t n)
{
    if (s->closing || s->err)
        return MG_ECLOSED;
    if (flush_check == NULL) {
        mg_list_init(&flush_list);
        flush_check = mg_xmalloc(sizeof *flush_check);
        uv_check_init(s->h.handle.loop, flush_check);
        uv_check_start(flush_check, on_flush_check);
        uv_unref((uv_handle_t *)flush_check); /* it must not keep a loop alive */
    }
    /* All or nothing: a part of a message is never queued alone. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += bufs[i].len;
    if (total > s->out.max - s->out.len || mg_buf_reserve(&s->out, total) < 0)
        return MG_ELIMIT;
    for (size_t i = 0; i < n; i++)
        MG_ASSERT(mg_buf_append(&s->out, bufs[i].base, bufs[i].len) == 0);
    if (!mg_list_linked(&s->flush_link))
        mg_list_push(&flush_list, &s->flush_link);
    /* The owner sees congestion from here on (mg_stream_is_congested) and may
     * stop producing: it is owed an on_drain once everything is written. */
    if (s->queued + s->out.len > s->high_mark)
        s->want_drain = true;
    if (s->out.len >= OUT_FLUSH_AT)
        return flush_one(s);
    return 0;
}

int mg_stream_write(struct mg_stream *s, const void *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return mg_stream_writev(s, &b, 1);
}

void mg_stream_read_start(struct mg_stream *s)
{
    if (s->reading || s->closing || s->ended)
        return;
    if (uv_read_start(&s->h.stream, on_alloc, on_uv_read) == 0)
        s->reading = true;
}

void mg_stream_read_stop(struct mg_stream *s)
{
    if (!s->reading)
        return;
    uv_read_stop(&s->h.stream);
    s->reading = false;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    MG_UNUSED(status);
    free(req);
}

void mg_stream_shutdown(struct mg_stream *s)
{
    if (s->closing || s->err)
        return;
    if (mg_list_linked(&s->flush_link) && flush_one(s) < 0)
        return;
    if (s->is_tls && s->handshake_done) {
        SSL_shutdown(s->ssl);
        flush_tls(s);
    }
    uv_shutdown_t *req = mg_xmalloc(sizeof *req);
    if (uv_shutdown(req, &s->h.stream, on_shutdown) < 0)
        free(req);
}

static void on_uv_close(uv_handle_t *h)
{
    struct mg_stream *s = h->data;
    if (s->ssl) {
        SSL_free(s->ssl); /* frees the inner BIO too */
        s->ssl = NULL;
    }
    if (s->net) {
        BIO_free(s->net);
        s->net = NULL;
    }
    if (s->cbs->on_close)
        s->cbs->on_close(s);
}

void mg_stream_close(struct mg_stream *s)
{
    if (s->closing)
        return;
    s->closing = true;
    s->reading = false;
    if (mg_list_linked(&s->flush_link))
        mg_list_remove(&s->flush_link);
    mg_buf_fini(&s->out);
    uv_close(&s->h.handle, on_uv_close);
}

bool mg_stream_is_congested(const struct mg_stream *s)
{
    return s->queued + s->out.len > s->high_mark;
}
