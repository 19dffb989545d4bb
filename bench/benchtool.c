/* benchtool: the load-side helpers of bench/run, in one small C program so that
 * neither the upstream nor the client is the bottleneck of what is measured.
 *
 *   benchtool upstream PORT
 *       A single-threaded epoll HTTP/1.1 server on 127.0.0.1:PORT (keep-alive,
 *       thousands of connections). It answers, by path suffix:
 *         .../sse?n=N&b=B   text/event-stream, chunked, N events of 100 bytes,
 *                           B events per chunk (default 1: one chunk per event,
 *                           as a real SSE server that flushes every event does),
 *                           written as fast as the socket accepts them.
 *         .../bulk?bytes=N  application/octet-stream with Content-Length N.
 *         .../idle          text/event-stream headers, chunked, then nothing;
 *                           the connection is held until the peer closes it.
 *       Any method; a request body (Content-Length) is read and discarded.
 *       It exits by itself after 30 minutes (SIGALRM) if nobody stops it.
 *
 *   benchtool sse-client PORT PATH N [post]
 *       One HTTP/1.1 request to 127.0.0.1:PORT PATH (GET, or POST with a small
 *       JSON-RPC body), decodes the chunked (or Content-Length / close-delimited)
 *       body and counts SSE events (blank-line terminated) until N have arrived.
 *       Prints: events=N bytes=B seconds=S events_per_s=E mb_per_s=M
 *
 * Only 127.0.0.1 is ever used. Every loop is bounded by the peer closing or by
 * the counts given. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EVENT_LEN 100
#define MAX_HEAD  16384
#define OUT_CAP   (256 * 1024)
#define BULK_BUF  (1024 * 1024)

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- upstream -- */

enum mode { M_HEAD, M_SSE, M_BULK, M_IDLE };

struct conn {
    int fd;
    enum mode mode;
    char in[MAX_HEAD];
    size_t in_len;
    size_t body_left; /* request body bytes still to discard */
    char *out;        /* pending response bytes (heap, OUT_CAP) */
    size_t out_len, out_off;
    uint64_t left; /* SSE events or bulk bytes still to produce */
    unsigned batch;
    bool want_out; /* registered for EPOLLOUT */
};

static int g_ep;
static char g_event[EVENT_LEN + 1];
static char g_bulk[BULK_BUF];

static void conn_close(struct conn *c)
{
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

static void want_out(struct conn *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static void out_append(struct conn *c, const void *p, size_t n)
{
    if (c->out == NULL) {
        c->out = malloc(OUT_CAP);
        if (c->out == NULL)
            die("malloc");
    }
    if (c->out_off > 0 && c->out_len + n > OUT_CAP) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n > OUT_CAP) {
        fprintf(stderr, "benchtool: output overflow\n");
        exit(1);
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static uint64_t query_u64(const char *target, const char *key, uint64_t dflt)
{
    const char *q = strchr(target, '?');
    size_t kl = strlen(key);
    while (q) {
        q++;
        if (strncmp(q, key, kl) == 0 && q[kl] == '=')
            return strtoull(q + kl + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return dflt;
}

/* Fills the output buffer with as much generated body as fits. */
static void produce(struct conn *c)
{
    if (c->mode == M_SSE) {
        while (c->left > 0) {
            unsigned k = c->batch;
            if (k > c->left)
                k = (unsigned)c->left;
            size_t need = 16 + (size_t)k * EVENT_LEN + 2;
            if ((c->out_len - c->out_off) + need > OUT_CAP / 2)
                return;
            char sz[24];
            int n = snprintf(sz, sizeof sz, "%zx\r\n", (size_t)k * EVENT_LEN);
            out_append(c, sz, (size_t)n);
            for (unsigned i = 0; i < k; i++)
                out_append(c, g_event, EVENT_LEN);
            out_append(c, "\r\n", 2);
            c->left -= k;
        }
        out_append(c, "0\r\n\r\n", 5);
        c->mode = M_HEAD;
    }
    /* M_BULK is written straight from the static buffer, see flush_out. */
}

/* Writes what is pending. Returns false if the connection was closed. */
static bool flush_out(struct conn *c)
{
    for (int rounds = 0; rounds < 1000000; rounds++) {
        if (c->out_off < c->out_len) {
            ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
            if (n < 0) {
                if (errno == EAGAIN) {
                    want_out(c, true);
                    return true;
                }
                conn_close(c);
                return false;
            }
            c->out_off += (size_t)n;
            if (c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
            continue;
        }
        if (c->mode == M_SSE) {
            produce(c);
            continue;
        }
        if (c->mode == M_BULK && c->left > 0) {
            size_t k = c->left < BULK_BUF ? (size_t)c->left : BULK_BUF;
            ssize_t n = write(c->fd, g_bulk, k);
            if (n < 0) {
                if (errno == EAGAIN) {
                    want_out(c, true);
                    return true;
                }
                conn_close(c);
                return false;
            }
            c->left -= (uint64_t)n;
            if (c->left == 0)
                c->mode = M_HEAD;
            continue;
        }
        break;
    }
    want_out(c, false);
    return true;
}

static void respond(struct conn *c, const char *method, const char *target)
{
    char head[512];
    int n;
    const char *path_end = strchr(target, '?');
    size_t plen = path_end ? (size_t)(path_end - target) : strlen(target);
#define ENDS(s) (plen >= strlen(s) && memcmp(target + plen - strlen(s), s, strlen(s)) == 0)
    if (ENDS("/sse")) {
        c->left = query_u64(target, "n", 200000);
        c->batch = (unsigned)query_u64(target, "b", 1);
        if (c->batch == 0 || c->batch > 1000)
            c->batch = 1;
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
        out_append(c, head, (size_t)n);
        c->mode = M_SSE;
    } else if (ENDS("/bulk")) {
        c->left = query_u64(target, "bytes", 256u << 20);
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %llu\r\n\r\n",
                     (unsigned long long)c->left);
        out_append(c, head, (size_t)n);
        c->mode = c->left > 0 ? M_BULK : M_HEAD;
    } else if (ENDS("/idle")) {
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
        out_append(c, head, (size_t)n);
        c->mode = M_IDLE;
    } else {
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                     "Content-Length: 10\r\n\r\nnot found\n");
        out_append(c, head, (size_t)n);
        c->mode = M_HEAD;
    }
    (void)method;
#undef ENDS
}

/* Consumes request bodies and parses complete request heads in c->in;
 * returns false if the connection was closed. */
static bool handle_input(struct conn *c)
{
    for (int guard = 0; guard < 10000; guard++) {
        if (c->body_left > 0) {
            size_t k = c->in_len < c->body_left ? c->in_len : c->body_left;
            memmove(c->in, c->in + k, c->in_len - k);
            c->in_len -= k;
            c->body_left -= k;
            if (c->body_left > 0)
                return true;
        }
        if (c->mode != M_HEAD || c->out_len > c->out_off)
            return true; /* busy with a response: no pipelining */
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (end == NULL) {
            if (c->in_len >= MAX_HEAD - 1) {
                conn_close(c);
                return false;
            }
            return true;
        }
        size_t head_len = (size_t)(end - c->in) + 4;
        *end = '\0';
        char method[16] = "", target[2048] = "";
        if (sscanf(c->in, "%15s %2047s", method, target) != 2) {
            conn_close(c);
            return false;
        }
        size_t body = 0;
        for (char *line = strstr(c->in, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
            if (strncasecmp(line + 2, "content-length:", 15) == 0)
                body = strtoull(line + 17, NULL, 10);
        }
        memmove(c->in, c->in + head_len, c->in_len - head_len);
        c->in_len -= head_len;
        /* The body is discarded as it arrives; the response does not wait. */
        c->body_left = body;
        respond(c, method, target);
        if (!flush_out(c))
            return false;
    }
    return true;
}

static int upstream_main(int port)
{
    signal(SIGPIPE, SIG_IGN);
    /* A safety net: the upstream never outlives a forgotten benchmark. */
    alarm(1800);
    memset(g_event, 0, sizeof g_event);
    /* 100 bytes: "data: {...}\n\n" shaped like an MCP progress notification. */
    const char *pre = "data: {\"method\":\"notifications/progress\","
                      "\"params\":{\"progressToken\":1,\"progress\":";
    size_t pl = strlen(pre);
    if (pl + 4 + 1 > EVENT_LEN)
        return 1;
    memcpy(g_event, pre, pl);
    memset(g_event + pl, '7', EVENT_LEN - pl - 4);
    memcpy(g_event + EVENT_LEN - 4, "}}\n\n", 4);
    memset(g_bulk, 'x', sizeof g_bulk);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0)
        die("bind/listen");
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &lev);
    fprintf(stderr, "benchtool upstream on 127.0.0.1:%d\n", port);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(g_ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                for (int k = 0; k < 1024; k++) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    if (nc == NULL)
                        die("calloc");
                    nc->fd = fd;
                    nc->mode = M_HEAD;
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc};
                    epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                if (c->in_len >= sizeof c->in) {
                    conn_close(c);
                    continue;
                }
                ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN)
                        goto out;
                    conn_close(c);
                    continue;
                }
                c->in_len += (size_t)r;
                if (!handle_input(c))
                    continue;
            }
        out:
            if (evs[i].events & EPOLLOUT) {
                if (!flush_out(c))
                    continue;
                if (c->mode == M_HEAD && c->in_len > 0)
                    handle_input(c);
            }
        }
    }
    return 0;
}

/* -------------------------------------------------------------- sse-client -- */

static int sse_client_main(int port, const char *path, uint64_t want, bool post)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char *body =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"slow_count\",\"arguments\":{},\"_meta\":{\"progressToken\":1}}}";
    char req[2048];
    int n;
    if (post)
        n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Accept: application/json, text/event-stream\r\nContent-Length: %zu\r\n\r\n%s",
                     path, port, strlen(body), body);
    else
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n",
                     path, port);
    double t0 = now_s();
    if (write(fd, req, (size_t)n) != n)
        die("write");
    static char buf[256 * 1024];
    size_t len = 0;
    /* Response head. */
    char *hend = NULL;
    while (hend == NULL) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r <= 0) {
            fprintf(stderr, "sse-client: no response head\n");
            return 1;
        }
        len += (size_t)r;
        hend = memmem(buf, len, "\r\n\r\n", 4);
        if (hend == NULL && len == sizeof buf)
            return 1;
    }
    size_t hl = (size_t)(hend - buf) + 4;
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "sse-client: %.*s\n", (int)(hl > 200 ? 200 : hl), buf);
        return 1;
    }
    bool chunked = false;
    int64_t clen = -1;
    for (char *l = buf; l < hend; l = strstr(l, "\r\n") + 2) {
        if (strncasecmp(l, "transfer-encoding:", 18) == 0 && strcasestr(l, "chunked") &&
            strcasestr(l, "chunked") < strstr(l, "\r\n"))
            chunked = true;
        if (strncasecmp(l, "content-length:", 15) == 0)
            clen = strtoll(l + 15, NULL, 10);
        if (strstr(l, "\r\n") == NULL)
            break;
    }
    /* Chunked decoder + event counter. */
    enum { C_SIZE, C_EXT, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_DONE } st = C_SIZE;
    uint64_t csize = 0, events = 0, bytes = 0;
    bool size_digits = false, prev_nl = false, trailer_empty = true;
    size_t pos = hl;
    for (;;) {
        for (; pos < len && events < want && st != C_DONE; pos++) {
            char ch = buf[pos];
            if (!chunked) {
                bytes++;
                if (ch == '\n') {
                    if (prev_nl)
                        events++;
                    prev_nl = true;
                } else if (ch != '\r') {
                    prev_nl = false;
                }
                if (clen >= 0 && (int64_t)bytes >= clen)
                    st = C_DONE;
                continue;
            }
            switch (st) {
            case C_SIZE:
                if (ch >= '0' && ch <= '9')
                    csize = csize * 16 + (uint64_t)(ch - '0'), size_digits = true;
                else if ((ch | 32) >= 'a' && (ch | 32) <= 'f')
                    csize = csize * 16 + (uint64_t)((ch | 32) - 'a' + 10), size_digits = true;
                else if (ch == '\n' && size_digits)
                    st = csize ? C_DATA : C_TRAILER, trailer_empty = true;
                else if (ch == ';' || ch == '\r' || ch == ' ')
                    st = C_EXT;
                else
                    goto bad;
                break;
            case C_EXT:
                if (ch == '\n')
                    st = csize ? C_DATA : C_TRAILER, trailer_empty = true;
                break;
            case C_DATA: {
                /* Fast path over a run of body bytes. */
                size_t k = len - pos;
                if (k > csize)
                    k = (size_t)csize;
                for (size_t i = 0; i < k && events < want; i++) {
                    char d = buf[pos + i];
                    if (d == '\n') {
                        if (prev_nl)
                            events++;
                        prev_nl = true;
                    } else if (d != '\r') {
                        prev_nl = false;
                    }
                }
                bytes += k;
                csize -= k;
                pos += k - 1;
                if (csize == 0)
                    st = C_DATA_CR;
                break;
            }
            case C_DATA_CR:
                st = ch == '\r' ? C_DATA_LF : (ch == '\n' ? C_SIZE : C_DONE);
                size_digits = false;
                csize = 0;
                break;
            case C_DATA_LF:
                if (ch != '\n')
                    goto bad;
                st = C_SIZE;
                break;
            case C_TRAILER:
                if (ch == '\n') {
                    if (trailer_empty)
                        st = C_DONE;
                    trailer_empty = true;
                } else if (ch != '\r') {
                    trailer_empty = false;
                }
                break;
            case C_DONE: break;
            }
        }
        if (events >= want || st == C_DONE)
            break;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        len = (size_t)r;
        pos = 0;
    }
    double dt = now_s() - t0;
    close(fd);
    printf("events=%llu bytes=%llu seconds=%.3f events_per_s=%.0f mb_per_s=%.1f\n",
           (unsigned long long)events, (unsigned long long)bytes, dt, (double)events / dt,
           (double)bytes / dt / 1e6);
    return events >= want ? 0 : 2;
bad:
    fprintf(stderr, "sse-client: bad chunked framing at event %llu\n", (unsigned long long)events);
    return 1;
}

static int port_arg(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > 65535) {
        fprintf(stderr, "benchtool: bad port '%s'\n", s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "upstream") == 0)
        return upstream_main(port_arg(argv[2]));
    if (argc >= 5 && strcmp(argv[1], "sse-client") == 0)
        return sse_client_main(port_arg(argv[2]), argv[3], strtoull(argv[4], NULL, 10),
                               argc >= 6 && strcmp(argv[5], "post") == 0);
    fprintf(stderr, "usage: benchtool upstream PORT | sse-client PORT PATH N [post]\n");
    return 2;
}
