/* A tiny HTTP/1.1 server on a thread, for unit tests of code that fetches
 * (net/fetch, authn/jwks_cache, authn/oidc). Blocking sockets, one
 * connection at a time, "Connection: close" on every answer, optional TLS. The
 * handler sees the parsed request and writes the raw response; it may also
 * ask to hold the connection open without answering (a silent server). Not
 * production code: bounded, but simple. */
#ifndef MG_TESTS_TESTSRV_H
#define MG_TESTS_TESTSRV_H

#include "core/buf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

struct tsrv_req {
    char method[16];
    char path[2048];
    char head[16384]; /* the whole request head, NUL-terminated */
    char body[65536];
    size_t body_len;
};

enum { TSRV_REPLY = 0, TSRV_HOLD = 1, TSRV_CLOSE = 2 };

/* Writes the raw response into out and returns TSRV_REPLY, or returns
 * TSRV_HOLD (keep the connection open, never answer) or TSRV_CLOSE. Runs on
 * the server thread. */
typedef int (*tsrv_handler)(void *ud, const struct tsrv_req *req, struct mg_buf *out);

struct tsrv {
    int lfd;
    uint16_t port;
    int stop_pipe[2];
    pthread_t th;
    bool has_thread;
    SSL_CTX *tls;
    tsrv_handler handler;
    void *ud;
    atomic_int n_requests;
};

/* The value of header name in the request head (NUL-terminated copy in out), or NULL. */
static inline const char *tsrv_header(const struct tsrv_req *r, const char *name, char *out,
                                      size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p && p[2] != '\r') {
        p += 2;
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = MG_MIN((size_t)(eol - v), cap - 1);
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        p = eol;
    }
    return NULL;
}

static inline void tsrv_reply(struct mg_buf *out, int status, const char *ctype, const char *body,
                              size_t len)
{
    mg_buf_appendf(out, "HTTP/1.1 %d X\r\nConnection: close\r\nContent-Length: %zu\r\n", status,
                   len);
    if (ctype)
        mg_buf_appendf(out, "Content-Type: %s\r\n", ctype);
    mg_buf_appends(out, "\r\n");
    mg_buf_append(out, body, len);
}

static inline void tsrv_json(struct mg_buf *out, int status, const char *json)
{
    tsrv_reply(out, status, "application/json", json, strlen(json));
}

struct tsrv_io {
    int fd;
    SSL *ssl;
};

static inline ssize_t tsrv_read(struct tsrv_io *io, char *buf, size_t n)
{
    if (io->ssl) {
        int r = SSL_read(io->ssl, buf, (int)n);
        return r <= 0 ? -1 : r;
    }
    return recv(io->fd, buf, n, 0);
}

static inline bool tsrv_write(struct tsrv_io *io, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = io->ssl ? SSL_write(io->ssl, buf, (int)n) : send(io->fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

static inline bool tsrv_read_request(struct tsrv_io *io, struct tsrv_req *r)
{
    size_t got = 0;
    char *end = NULL;
    memset(r, 0, sizeof *r);
    while (end == NULL) {
        if (got + 1 >= sizeof r->head)
            return false;
        ssize_t n = tsrv_read(io, r->head + got, sizeof r->head - 1 - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
        r->head[got] = '\0';
        end = strstr(r->head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end + 4 - r->head);
    size_t extra = got - head_len;
    memcpy(r->body, end + 4, extra);
    end[2] = '\0'; /* keep the last CRLF so header lookups find every line */
    end[3] = '\0';
    sscanf(r->head, "%15s %2047s", r->method, r->path);
    char cl[32];
    size_t want = 0;
    if (tsrv_header(r, "Content-Length", cl, sizeof cl))
        want = strtoul(cl, NULL, 10);
    if (want >= sizeof r->body)
        return false;
    r->body_len = extra;
    while (r->body_len < want) {
        ssize_t n = tsrv_read(io, r->body + r->body_len, want - r->body_len);
        if (n <= 0)
            return false;
        r->body_len += (size_t)n;
    }
    return true;
}

static inline bool tsrv_stopping(struct tsrv *s, int timeout_ms)
{
    struct pollfd p = {.fd = s->stop_pipe[0], .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

static inline void tsrv_serve_one(struct tsrv *s, int fd)
{
    static _Thread_local struct tsrv_req req;
    struct tsrv_io io = {.fd = fd};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (s->tls) {
        io.ssl = SSL_new(s->tls);
        SSL_set_fd(io.ssl, fd);
        if (SSL_accept(io.ssl) != 1) {
            ERR_clear_error();
            goto out;
        }
    }
    if (!tsrv_read_request(&io, &req))
        goto out;
    atomic_fetch_add(&s->n_requests, 1);
    struct mg_buf resp;
    mg_buf_init(&resp, 8 << 20);
    int what = s->handler(s->ud, &req, &resp);
    if (what == TSRV_REPLY)
        tsrv_write(&io, resp.data ? resp.data : "", resp.len);
    else if (what == TSRV_HOLD) {
        /* Until the client gives up (EOF), the server stops, or 10 s. */
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = s->stop_pipe[0], .events = POLLIN}};
        poll(p, 2, 10000);
    }
    mg_buf_fini(&resp);
    if (io.ssl)
        SSL_shutdown(io.ssl);
out:
    SSL_free(io.ssl);
    close(fd);
}

static inline void *tsrv_main(void *arg)
{
    struct tsrv *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                              {.fd = s->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
            break;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd >= 0)
            tsrv_serve_one(s, fd);
    }
    return NULL;
}

/* Binds ip:0 (IPv4), listens; with accept_thread false nothing ever accepts
 * (connections sit in the backlog: a silent server). */
static inline int tsrv_start(struct tsrv *s, const char *ip, SSL_CTX *tls, tsrv_handler h, void *ud,
                             bool accept_thread)
{
    memset(s, 0, sizeof *s);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    inet_pton(AF_INET, ip, &a.sin_addr);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->lfd, 16) < 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0 || pipe(s->stop_pipe) < 0)
        return -1;
    s->port = ntohs(a.sin_port);
    s->tls = tls;
    s->handler = h;
    s->ud = ud;
    if (accept_thread && pthread_create(&s->th, NULL, tsrv_main, s) != 0)
        return -1;
    s->has_thread = accept_thread;
    return 0;
}

static inline void tsrv_stop(struct tsrv *s)
{
    if (write(s->stop_pipe[1], "x", 1) != 1)
        return;
    if (s->has_thread)
        pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
}

/* A port on 127.0.0.1 that was free a moment ago and has nothing listening. */
static inline uint16_t tsrv_closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    return ntohs(a.sin_port);
}

#endif
