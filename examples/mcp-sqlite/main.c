/* mcp-sqlite: a small MCP server over SQLite, the gateway's demo upstream,
 * test fixture and benchmark upstream. This file owns the command line, the
 * libuv loop, signal handling and the stdio transport (MCP "Transports /
 * stdio": newline-delimited JSON-RPC on stdin/stdout, logs on stderr only).
 * The HTTP transport is in http.c, the MCP logic in tools.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include "core/buf.h"
#include "exchange.h"
#include "http.h"
#include "tools.h"

#define READ_CHUNK (64 << 10)
#define OUT_CAP    (64u << 20)
#define KEEP_CAP   (256 << 10)

struct app;

struct stdio_side {
    struct app *app;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tty_t tty;
    } h;
    uv_fs_t fs_req;
    bool is_file;
    bool open;       /* h is initialised and not yet closed */
    bool discarding; /* the current line passed the size cap */
    struct mg_buf line;
    struct mg_buf out;
    struct mg_msq_session sess;
    struct mg_msq_exchange *exs; /* slow_count requests in flight */
    char buf[READ_CHUNK];
};

struct app {
    uv_loop_t loop;
    struct mg_msq_server *srv;
    uv_signal_t sigint, sigterm;
    bool stopping;
    bool failed; /* stdout broke: exit non-zero */
    struct stdio_side *stdio;
    struct mg_msq_http *http;
};

static void app_stop(struct app *a);

/* ---- stdio ------------------------------------------------------------- */

/* stdout may share a non-blocking file description with stdin (a terminal
 * or a socket), so EAGAIN waits for room: a stdio client that stops reading
 * stalls the server, which is the stdio contract. */
static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static void stdio_emit(struct stdio_side *s, const json_t *v)
{
    if (s->app->stopping)
        return;
    mg_buf_reset(&s->out);
    if (mg_msq_dump(v, &s->out) < 0 || mg_buf_append(&s->out, "\n", 1) < 0) {
        fprintf(stderr, "mcp-sqlite: reply over %u bytes dropped\n", OUT_CAP);
    } else if (!write_all(STDOUT_FILENO, s->out.data, s->out.len)) {
        fprintf(stderr, "mcp-sqlite: stdout: %s; stopping\n", strerror(errno));
        s->app->failed = true;
        app_stop(s->app);
    }
    if (s->out.cap > KEEP_CAP)
        mg_buf_fini(&s->out);
}

static void stdio_unlink(struct stdio_side *s, struct mg_msq_exchange *ex)
{
    struct mg_msq_exchange **pp = &s->exs;
    while (*pp != NULL && *pp != ex)
        pp = &(*pp)->next;
    if (*pp == ex)
        *pp = ex->next;
}

static void stdio_progress(struct mg_msq_exchange *ex, const json_t *note)
{
    stdio_emit(ex->sink, note);
}

static void stdio_done(struct mg_msq_exchange *ex, json_t *reply)
{
    struct stdio_side *s = ex->sink;
    stdio_unlink(s, ex);
    if (reply != NULL)
        stdio_emit(s, reply);
    json_decref(reply);
}

static const struct mg_msq_sink_ops stdio_sink_ops = {stdio_progress, stdio_done};

static void stdio_line(struct stdio_side *s, const char *p, size_t n)
{
    struct mg_msq_out out;
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i == n)
        return; /* blank lines are not messages */
    mg_msq_out_init(&out);
    mg_msq_handle_text(s->app->srv, &s->sess, p, n, &out);
    struct mg_msq_exchange *ex = mg_msq_exchange_start(&s->app->loop, &out, &stdio_sink_ops, s);
    if (ex != NULL) {
        ex->next = s->exs;
        s->exs = ex;
    }
    if (out.reply != NULL)
        stdio_emit(s, out.reply);
    if (out.cancel_id != NULL)
        for (ex = s->exs; ex != NULL; ex = ex->next)
            if (mg_msq_exchange_cancel(ex, out.cancel_id))
                break; /* ex is gone; so is the list walk */
    mg_msq_out_fini(&out);
}

static void stdio_data(struct stdio_side *s, const char *p, size_t n)
{
    while (n > 0 && !s->app->stopping) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n;
        if (!s->discarding && mg_buf_append(&s->line, p, seg) < 0) {
            s->discarding = true;
            mg_buf_fini(&s->line);
        }
        if (nl == NULL)
            return;
        if (s->discarding) {
            json_t *err = mg_msq_error(NULL, MG_MSQ_INVALID_REQUEST, "message too large");
            stdio_emit(s, err);
            json_decref(err);
        } else {
            stdio_line(s, s->line.data ? s->line.data : "", s->line.len);
        }
        s->discarding = false;
        mg_buf_reset(&s->line);
        if (s->line.cap > KEEP_CAP)
            mg_buf_fini(&s->line);
        p = nl + 1;
        n -= seg + 1;
    }
}

static void stdio_close(struct stdio_side *s)
{
    if (s->open && !s->is_file)
        uv_close(&s->h.handle, NULL);
    s->open = false;
}

/* End of input: answer a last unterminated line, stop reading, and let the
 * loop run until in-flight slow_count jobs have answered. */
static void stdio_eof(struct stdio_side *s)
{
    if (!s->discarding && s->line.len > 0 && !s->app->stopping)
        stdio_line(s, s->line.data, s->line.len);
    mg_buf_reset(&s->line);
    stdio_close(s);
}

static void stdio_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct stdio_side *s = handle->data;
    MG_UNUSED(suggested);
    *buf = uv_buf_init(s->buf, sizeof s->buf);
}

static void stdio_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct stdio_side *s = stream->data;
    if (nread > 0)
        stdio_data(s, buf->base, (size_t)nread);
    else if (nread < 0) {
        if (nread != UV_EOF)
            fprintf(stderr, "mcp-sqlite: stdin: %s\n", uv_strerror((int)nread));
        stdio_eof(s);
    }
}

static void stdio_fs_read(struct stdio_side *s);

static void stdio_fs_done(uv_fs_t *req)
{
    struct stdio_side *s = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    s->open = false;
    if (s->app->stopping)
        return;
    if (n > 0) {
        stdio_data(s, s->buf, (size_t)n);
        if (!s->app->stopping)
            stdio_fs_read(s);
    } else {
        if (n < 0)
            fprintf(stderr, "mcp-sqlite: stdin: %s\n", uv_strerror((int)n));
        stdio_eof(s);
    }
}

/* Regular files cannot be polled, so `mcp-sqlite < requests.jsonl` reads
 * through libuv's thread pool instead. */
static void stdio_fs_read(struct stdio_side *s)
{
    uv_buf_t b = uv_buf_init(s->buf, sizeof s->buf);
    s->fs_req.data = s;
    if (uv_fs_read(&s->app->loop, &s->fs_req, STDIN_FILENO, &b, 1, -1, stdio_fs_done) == 0)
        s->open = true;
}

static int stdio_start(struct app *a)
{
    struct stdio_side *s = mg_xcalloc(1, sizeof *s);
    int rc = 0;
    s->app = a;
    mg_buf_init(&s->line, MG_MSQ_MAX_MESSAGE);
    mg_buf_init(&s->out, OUT_CAP);
    a->stdio = s;
    switch (uv_guess_handle(STDIN_FILENO)) {
    case UV_TTY: rc = uv_tty_init(&a->loop, &s->h.tty, STDIN_FILENO, 1); break;
    case UV_NAMED_PIPE:
    case UV_TCP:
        rc = uv_pipe_init(&a->loop, &s->h.pipe, 0);
        if (rc == 0 && (rc = uv_pipe_open(&s->h.pipe, STDIN_FILENO)) != 0)
            uv_close(&s->h.handle, NULL);
        break;
    case UV_FILE:
        s->is_file = true;
        stdio_fs_read(s);
        return s->open ? MG_OK : MG_EIO;
    default: rc = UV_EINVAL; break;
    }
    if (rc != 0) {
        fprintf(stderr, "mcp-sqlite: cannot use stdin: %s\n", uv_strerror(rc));
        return MG_EIO;
    }
    s->h.handle.data = s;
    s->open = true;
    if ((rc = uv_read_start(&s->h.stream, stdio_alloc, stdio_read)) != 0) {
        fprintf(stderr, "mcp-sqlite: cannot read stdin: %s\n", uv_strerror(rc));
        stdio_close(s);
        return MG_EIO;
    }
    return MG_OK;
}

static void stdio_stop(struct stdio_side *s)
{
    while (s->exs != NULL) {
        struct mg_msq_exchange *ex = s->exs;
        s->exs = ex->next;
        mg_msq_exchange_free(ex);
    }
    stdio_close(s);
}

static void stdio_free(struct stdio_side *s)
{
    if (s == NULL)
        return;
    mg_buf_fini(&s->line);
    mg_buf_fini(&s->out);
    free(s);
}

/* ---- process ----------------------------------------------------------- */

static void app_stop(struct app *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    if (a->http != NULL)
        mg_msq_http_stop(a->http);
    if (a->stdio != NULL)
        stdio_stop(a->stdio);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct app *a = sig->data;
    fprintf(stderr, "mcp-sqlite: %s, stopping\n", strsignal(signum));
    app_stop(a);
}

static void usage(FILE *f)
{
    fputs("usage: mcp-sqlite --db FILE [--stdio | --http HOST:PORT] [--readonly] [--init-demo]\n"
          "                  [--log FILE]\n"
          "  --db FILE          SQLite database (a file name or a file: URI)\n"
          "  --stdio            MCP stdio transport on stdin/stdout (default)\n"
          "  --http HOST:PORT   MCP Streamable HTTP transport on http://HOST:PORT/mcp\n"
          "  --readonly         refuse the execute tool\n"
          "  --init-demo        create demo tables customers and orders if missing\n"
          "  --log FILE         append one JSON line per received JSON-RPC message\n",
          f);
}

static void walk_report(uv_handle_t *h, void *arg)
{
    MG_UNUSED(arg);
    fprintf(stderr, "mcp-sqlite: handle still open at exit: %s\n", uv_handle_type_name(h->type));
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},   {"stdio", no_argument, NULL, 's'},
        {"http", required_argument, NULL, 'H'}, {"readonly", no_argument, NULL, 'r'},
        {"init-demo", no_argument, NULL, 'i'},  {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    struct mg_msq_options opt = {.log_fd = -1};
    const char *http = NULL, *log_path = NULL;
    bool stdio = false;
    struct app *a = NULL;
    char err[512];
    int ch, status = 1;

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd': opt.db_path = optarg; break;
        case 's': stdio = true; break;
        case 'H': http = optarg; break;
        case 'r': opt.readonly = true; break;
        case 'i': opt.init_demo = true; break;
        case 'l': log_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || opt.db_path == NULL || (stdio && http != NULL)) {
        usage(stderr);
        return 2;
    }
    /* A vanished client must not kill us mid-write: EPIPE is handled. */
    signal(SIGPIPE, SIG_IGN);
    if (log_path != NULL) {
        opt.log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (opt.log_fd < 0) {
            fprintf(stderr, "mcp-sqlite: cannot open log %s: %s\n", log_path, strerror(errno));
            return 1;
        }
    }

    a = mg_xcalloc(1, sizeof *a);
    MG_ASSERT(uv_loop_init(&a->loop) == 0);
    if (mg_msq_server_new(&opt, &a->srv, err, sizeof err) < 0) {
        fprintf(stderr, "mcp-sqlite: %s\n", err);
        goto out;
    }
    MG_ASSERT(uv_signal_init(&a->loop, &a->sigint) == 0);
    MG_ASSERT(uv_signal_init(&a->loop, &a->sigterm) == 0);
    a->sigint.data = a->sigterm.data = a;
    MG_ASSERT(uv_signal_start(&a->sigint, on_signal, SIGINT) == 0);
    MG_ASSERT(uv_signal_start(&a->sigterm, on_signal, SIGTERM) == 0);
    /* Signals alone must not keep the loop alive: in stdio mode the loop
     * ends by itself after stdin EOF and the last job. */
    uv_unref((uv_handle_t *)&a->sigint);
    uv_unref((uv_handle_t *)&a->sigterm);

    int rc = http != NULL ? mg_msq_http_start(&a->loop, a->srv, http, &a->http) : stdio_start(a);
    if (rc == 0) {
        uv_run(&a->loop, UV_RUN_DEFAULT);
        status = a->failed ? 1 : 0;
    }
    app_stop(a);
    uv_run(&a->loop, UV_RUN_DEFAULT); /* runs the close callbacks */
    if (uv_loop_close(&a->loop) != 0) {
        uv_walk(&a->loop, walk_report, NULL);
        status = 1;
    }
out:
    mg_msq_http_free(a->http);
    stdio_free(a->stdio);
    mg_msq_server_free(a->srv);
    if (a->srv == NULL)
        uv_loop_close(&a->loop);
    free(a);
    if (opt.log_fd >= 0)
        close(opt.log_fd);
    return status;
}
