/* Unit tests for src/net/stream: writes made during one loop iteration are
 * coalesced and flushed after the iteration, bytes arrive intact and in order,
 * and congestion always ends in exactly one on_drain — including the case
 * bench/run found, where the kernel took a whole congested batch at once and
 * no write callback came to report the drain (the upstream stayed paused). */
#include "net/stream.h"
#include "tap.h"

#include <sys/socket.h>
#include <unistd.h>

static int n_drain, n_end;

static void on_read(struct mg_stream *s, const char *d, size_t n)
{
    MG_UNUSED(s);
    MG_UNUSED(d);
    MG_UNUSED(n);
}
static void on_end(struct mg_stream *s, int st)
{
    MG_UNUSED(s);
    MG_UNUSED(st);
    n_end++;
}
static void on_drain(struct mg_stream *s)
{
    MG_UNUSED(s);
    n_drain++;
}
static void on_close(struct mg_stream *s)
{
    MG_UNUSED(s);
}

static const struct mg_stream_cbs cbs = {
    .on_read = on_read, .on_end = on_end, .on_drain = on_drain, .on_close = on_close};

/* Reads everything available on fd (non-blocking) into buf. */
static size_t drain_fd(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

int main(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    MG_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int big = 4 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);

    struct mg_stream s;
    TAP_IS_INT(mg_stream_init_pipe(&s, &loop, &cbs, NULL), 0, "init a pipe stream");
    TAP_IS_INT(uv_pipe_open(&s.h.pipe, sv[0]), 0, "open the socketpair end");
    mg_stream_read_start(&s); /* an active handle, as a live connection has */

    /* Coalescing: many small writes in one iteration arrive whole, in order. */
    char want[1000];
    for (int i = 0; i < 100; i++) {
        char piece[10];
        memset(piece, 'a' + i % 26, sizeof piece);
        memcpy(want + i * 10, piece, 10);
        mg_stream_write(&s, piece, sizeof piece);
    }
    char got[8192];
    TAP_IS_INT(drain_fd(sv[1], got, sizeof got), 0, "nothing is written before the iteration ends");
    uv_run(&loop, UV_RUN_NOWAIT);
    size_t n = drain_fd(sv[1], got, sizeof got);
    TAP_IS_INT(n, 1000, "100 writes of 10 bytes arrive after one iteration");
    TAP_OK(memcmp(got, want, 1000) == 0, "in order and intact");

    /* Congestion that the kernel clears in one go must still end in on_drain. */
    s.high_mark = 1000;
    static char payload[3000];
    memset(payload, 'x', sizeof payload);
    mg_stream_write(&s, payload, 2000);
    TAP_OK(mg_stream_is_congested(&s), "2000 pending bytes over a 1000-byte mark is congestion");
    TAP_IS_INT(n_drain, 0, "no drain before the flush");
    for (int i = 0; i < 5 && n_drain == 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    TAP_IS_INT(n_drain, 1, "one on_drain although the kernel took everything at once");
    TAP_OK(!mg_stream_is_congested(&s), "no longer congested");
    TAP_IS_INT(drain_fd(sv[1], got, sizeof got), 2000, "the 2000 bytes arrived");

    /* No congestion, no drain. */
    mg_stream_write(&s, payload, 500);
    for (int i = 0; i < 3; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    TAP_IS_INT(n_drain, 1, "no on_drain without congestion");
    TAP_IS_INT(drain_fd(sv[1], got, sizeof got), 500, "500 bytes arrived");

    /* A write past the flush threshold goes out at once. */
    static char large[300 * 1024];
    memset(large, 'y', sizeof large);
    s.high_mark = 256 * 1024;
    mg_stream_write(&s, large, sizeof large);
    static char sink[1 << 20];
    size_t total = drain_fd(sv[1], sink, sizeof sink);
    TAP_OK(total > 0, "a 300 KiB write is flushed without waiting for the iteration");
    for (int i = 0; i < 50 && total < sizeof large; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        total += drain_fd(sv[1], sink, sizeof sink);
    }
    TAP_IS_INT(total, sizeof large, "all of it arrives");

    /* Closing drops what is pending and releases the loop's flush handle. */
    mg_stream_write(&s, "zzz", 3);
    mg_stream_close(&s);
    mg_stream_loop_fini();
    uv_run(&loop, UV_RUN_DEFAULT);
    TAP_IS_INT(uv_loop_close(&loop), 0, "the loop closes with nothing left open");
    TAP_IS_INT(n_end, 0, "no spurious end callback");
    close(sv[1]);
    return tap_done();
}
