/* A byte stream over a libuv handle (TCP or Unix pipe), with an optional TLS
 * layer driven through memory BIOs. Callers see plaintext reads, buffered
 * writes with a queued-bytes count for backpressure, and one asynchronous
 * close. This is the transport op set the HTTP server, the upstream client and
 * (later) SSH channels share. */
#ifndef MG_NET_STREAM_H
#define MG_NET_STREAM_H

#include "core/buf.h"
#include "core/common.h"
#include "core/list.h"

#include <openssl/ssl.h>
#include <uv.h>

struct mg_stream;

struct mg_stream_cbs {
    /* Plaintext bytes arrived. The data is valid only during the call. */
    void (*on_read)(struct mg_stream *s, const char *data, size_t len);
    /* The peer closed (status 0) or the stream failed (negative status). No
     * more reads follow; the owner closes the stream. */
    void (*on_end)(struct mg_stream *s, int status);
    /* Queued output fell to zero after having been above the high mark. */
    void (*on_drain)(struct mg_stream *s);
    /* Client streams: TCP connected and TLS (if any) handshaken, or failed. */
    void (*on_connect)(struct mg_stream *s, int status);
    /* The handle is closed; the owner may free the memory holding the stream. */
    void (*on_close)(struct mg_stream *s);
};

struct mg_stream {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_connect_t connect_req;
    SSL *ssl;
    BIO *net; /* our end of the BIO pair; SSL holds the other end */
    const struct mg_stream_cbs *cbs;
    void *data;                /* the owner */
    struct mg_buf out;         /* plaintext written during this loop iteration, not yet flushed */
    struct mg_list flush_link; /* in the thread's flush list while out is not empty */
    size_t queued;             /* bytes handed to libuv and not yet written */
    uint64_t n_written;        /* bytes whose write completed (progress watchdog) */
    size_t high_mark;          /* above this, the owner should stop producing */
    bool is_tls, handshake_done, is_client, reading, closing, ended, want_drain, is_pipe;
    int err;
};

/* Initialises a TCP stream on loop. ssl_ctx non-NULL enables TLS (server or
 * client side as set by mg_stream_connect). */
int mg_stream_init_tcp(struct mg_stream *s, uv_loop_t *loop, const struct mg_stream_cbs *cbs,
                       void *data);
int mg_stream_init_pipe(struct mg_stream *s, uv_loop_t *loop, const struct mg_stream_cbs *cbs,
                        void *data);
/* Server side: the handle has been accepted; start TLS (if ctx) and reading. */
int mg_stream_start_server(struct mg_stream *s, SSL_CTX *ctx);
/* Client side: connect to addr; TLS with SNI and verification of `verify_name`
 * when ctx is non-NULL (NULL verify_name with ctx = skip name check). */
int mg_stream_connect(struct mg_stream *s, const struct sockaddr *addr, SSL_CTX *ctx,
                      const char *sni, bool verify);
int mg_stream_connect_pipe(struct mg_stream *s, const char *path);
/* Copies and queues len bytes. Writes made during one loop iteration are
 * coalesced and handed to the kernel once, after the iteration's callbacks
 * (a uv_check handle per loop), so a response head, its body and many small
 * SSE events cost one syscall instead of one each. MG_ECLOSED once the
 * stream is closing. */
int mg_stream_write(struct mg_stream *s, const void *data, size_t len);
int mg_stream_writev(struct mg_stream *s, const uv_buf_t *bufs, size_t n);
void mg_stream_read_start(struct mg_stream *s);
void mg_stream_read_stop(struct mg_stream *s);
/* Half-close after queued writes (plain: TCP FIN; TLS: close_notify + FIN). */
void mg_stream_shutdown(struct mg_stream *s);
/* Closes now; on_close follows exactly once. Idempotent. */
void mg_stream_close(struct mg_stream *s);
bool mg_stream_is_congested(const struct mg_stream *s);
/* Writes out everything pending on this thread's streams now; true if there
 * was anything. */
bool mg_stream_flush_all(void);
/* Closes this thread's flush handle; call once when the loop shuts down. */
void mg_stream_loop_fini(void);
/* For this thread's loop: after an iteration that wrote to sockets, give the
 * CPU to other runnable threads (sched_yield) before polling again. The
 * peers those writes woke (an upstream, a client) can then answer before
 * this thread blocks in epoll, so a sleep and a wake-up of this thread
 * become a yield; with nothing else runnable on the CPU it returns at once.
 * Off by default. */
void mg_stream_loop_yield_after_flush(bool on);

#endif
