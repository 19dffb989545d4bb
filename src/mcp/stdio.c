/* The stdio channel: a hosted MCP server process. Newline-delimited JSON-RPC
 * on its stdin/stdout (MCP stdio transport), stderr lines to the gateway log
 * (rate-limited, so a flooding child cannot flood the log), only the
 * configured environment reaches it, and shutdown follows the spec's order:
 * close stdin, then SIGTERM, then SIGKILL, each after the grace period. */
#include "core/buf.h"
#include "core/log.h"
#include "mcp/channel.h"

#include <signal.h>
#include <stdatomic.h>

#define STDERR_LINE_MAX      1024
#define STDERR_LINES_PER_SEC 50
#define STDIN_QUEUE_MAX      (16u << 20)

struct stdio_ch {
    struct mg_channel ch;
    struct mg_channel_env env;
    char *route;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_timer_t err_timer; /* reports rate-limited stderr lines */
    struct mg_buf line;
    struct mg_buf errline;
    int open_handles;
    int kill_stage;
    bool exited, closing, ended, paused, in_closed, counted, out_eof;
    uint64_t err_window_ms;
    unsigned err_lines, err_dropped;
    int pid;
};

struct stdin_write {
    uv_write_t req;
    char data[];
};

static void handle_closed(uv_handle_t *h)
{
    struct stdio_ch *s = h->data;
    if (--s->open_handles > 0)
        return;
    mg_buf_fini(&s->line);
    mg_buf_fini(&s->errline);
    free(s->route);
    free(s);
}

static void close_handle(struct stdio_ch *s, uv_handle_t *h)
{
    MG_UNUSED(s);
    if (!uv_is_closing(h))
        uv_close(h, handle_closed);
}

static void end(struct stdio_ch *s, const char *why)
{
    if (s->ended || s->closing)
        return;
    s->ended = true;
    if (s->ch.on_end)
        s->ch.on_end(&s->ch, why);
}

static void close_all(struct stdio_ch *s)
{
    close_handle(s, (uv_handle_t *)&s->in);
    close_handle(s, (uv_handle_t *)&s->out);
    close_handle(s, (uv_handle_t *)&s->err);
    close_handle(s, (uv_handle_t *)&s->timer);
    close_handle(s, (uv_handle_t *)&s->err_timer);
    close_handle(s, (uv_handle_t *)&s->proc);
}

static void flush_err_drops(struct stdio_ch *s)
{
    if (s->err_dropped)
        mg_log_warn("route %s: pid %d: %u stderr lines not logged (rate limit)", s->route, s->pid,
                    s->err_dropped);
    s->err_dropped = 0;
}

static void on_err_timer(uv_timer_t *t)
{
    struct stdio_ch *s = t->data;
    flush_err_drops(s);
}

/* stdout closed but no exit yet: give the process a moment so the session
 * can report its exit status, then give up on it. */
static void on_eof_timer(uv_timer_t *t)
{
    struct stdio_ch *s = t->data;
    if (!s->exited && !s->closing)
        end(s, "MCP server process closed its stdout");
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct stdio_ch *s = p->data;
    s->exited = true;
    flush_err_drops(s);
    uv_timer_stop(&s->timer);
    if (s->counted) {
        atomic_fetch_sub(s->env.children, 1);
        s->counted = false;
    }
    if (!s->closing) {
        char why[128];
        if (sig)
            snprintf(why, sizeof why, "MCP server process was killed by signal %d", sig);
        else
            snprintf(why, sizeof why, "MCP server process exited with status %lld",
                     (long long)status);
        mg_log_warn("route %s: pid %d: %s", s->route, s->pid, why);
        end(s, why);
    } else {
        mg_log_debug("route %s: pid %d exited (status %lld, signal %d)", s->route, s->pid,
                     (long long)status, sig);
    }
    close_all(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    MG_UNUSED(h);
    MG_UNUSED(suggested);
    static _Thread_local char buf[65536];
    b->base = buf;
    b->len = sizeof buf;
}

static void deliver_line(struct stdio_ch *s)
{
    const char *l = s->line.data;
    size_t n = s->line.len;
    while (n > 0 && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
        n--;
    if (n == 0)
        return;
    json_error_t je;
    json_t *msg = json_loadb(l, n, JSON_REJECT_DUPLICATES, &je);
    if (msg == NULL || !json_is_object(msg)) {
        /* The stdio transport forbids anything but messages on stdout. */
        mg_log_warn("route %s: pid %d wrote a line that is not a JSON-RPC message; dropped",
                    s->route, s->pid);
        json_decref(msg);
        return;
    }
    s->ch.on_message(&s->ch, msg);
}

static void on_out(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct stdio_ch *s = st->data;
    if (n < 0) {
        uv_read_stop(st);
        s->out_eof = true;
        if (!s->exited && !s->closing)
            uv_timer_start(&s->timer, on_eof_timer, 1000, 0);
        return;
    }
    const char *p = b->base;
    size_t left = (size_t)n;
    while (left > 0 && !s->ended && !s->closing) {
        const char *nl = memchr(p, '\n', left);
        size_t take = nl ? (size_t)(nl - p) : left;
        if (mg_buf_append(&s->line, p, take) < 0) {
            mg_log_warn("route %s: pid %d sent a message over %zu bytes", s->route, s->pid,
                        s->env.max_message);
            end(s, "MCP server sent a message over the size limit");
            return;
        }
        if (nl == NULL)
            break;
        deliver_line(s);
        mg_buf_reset(&s->line);
        p = nl + 1;
        left -= take + 1;
    }
}

static void log_err_line(struct stdio_ch *s)
{
    uint64_t now = mg_now_ms();
    if (now - s->err_window_ms >= 1000) {
        flush_err_drops(s);
        s->err_window_ms = now;
        s->err_lines = 0;
    }
    if (++s->err_lines > STDERR_LINES_PER_SEC) {
        if (s->err_dropped++ == 0)
            uv_timer_start(&s->err_timer, on_err_timer, 1000, 0);
        return;
    }
    mg_log_info("route %s: pid %d stderr: %.*s", s->route, s->pid, (int)s->errline.len,
                s->errline.data ? s->errline.data : "");
}

static void on_err(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct stdio_ch *s = st->data;
    if (n < 0) {
        uv_read_stop(st);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = b->base[i];
        if (c == '\n') {
            log_err_line(s);
            mg_buf_reset(&s->errline);
        } else if (s->errline.len < STDERR_LINE_MAX) {
            mg_buf_append(&s->errline, &c, 1);
        }
    }
}

static void on_stdin_written(uv_write_t *req, int status)
{
    MG_UNUSED(status);
    free(req);
}

static int ch_send(struct mg_channel *ch, const char *msg, size_t len)
{
    struct stdio_ch *s = (struct stdio_ch *)ch;
    if (s->closing || s->ended || s->in_closed)
        return MG_ECLOSED;
    if (s->in.write_queue_size > STDIN_QUEUE_MAX)
        return MG_ELIMIT;
    struct stdin_write *w = mg_xmalloc(sizeof *w + len + 1);
    memcpy(w->data, msg, len);
    w->data[len] = '\n';
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len + 1);
    if (uv_write(&w->req, (uv_stream_t *)&s->in, &b, 1, on_stdin_written) < 0) {
        free(w);
        return MG_EIO;
    }
    return 0;
}

static void ch_pause(struct mg_channel *ch)
{
    struct stdio_ch *s = (struct stdio_ch *)ch;
    if (!s->paused && !s->closing) {
        uv_read_stop((uv_stream_t *)&s->out);
        s->paused = true;
    }
}

static void ch_resume(struct mg_channel *ch)
{
    struct stdio_ch *s = (struct stdio_ch *)ch;
    if (s->paused && !s->closing && !s->exited) {
        uv_read_start((uv_stream_t *)&s->out, on_alloc, on_out);
        s->paused = false;
    }
}

static void on_kill_timer(uv_timer_t *t)
{
    struct stdio_ch *s = t->data;
    if (s->exited)
        return;
    if (s->kill_stage == 0) {
        s->kill_stage = 1;
        uv_process_kill(&s->proc, SIGTERM);
        uv_timer_start(&s->timer, on_kill_timer, s->env.kill_grace_ms, 0);
    } else {
        mg_log_warn("route %s: pid %d ignored SIGTERM; killing", s->route, s->pid);
        uv_process_kill(&s->proc, SIGKILL);
    }
}

static void ch_close(struct mg_channel *ch)
{
    struct stdio_ch *s = (struct stdio_ch *)ch;
    if (s->closing)
        return;
    s->closing = true;
    /* MCP stdio shutdown: close stdin first and give the server time. */
    close_handle(s, (uv_handle_t *)&s->in);
    s->in_closed = true;
    if (s->exited)
        return;
    uv_timer_start(&s->timer, on_kill_timer, s->env.kill_grace_ms, 0);
}

static const struct mg_channel_ops stdio_ops = {
    .send = ch_send,
    .pause = ch_pause,
    .resume = ch_resume,
    .close = ch_close,
};

int mg_channel_stdio_new(const struct mg_channel_env *env, const struct mg_conf_route *route,
                         struct mg_channel **out, char *err, size_t err_cap)
{
    const struct mg_conf_stdio *cfg = &route->stdio;
    struct stdio_ch *s = mg_xcalloc(1, sizeof *s);
    char **argv = mg_xcalloc(cfg->n_args + 2, sizeof *argv);
    char **envp = mg_xcalloc(cfg->n_env + 1, sizeof *envp);
    int rc;
    s->ch.ops = &stdio_ops;
    s->env = *env;
    s->route = mg_xstrdup(route->name);
    mg_buf_init(&s->line, env->max_message);
    mg_buf_init(&s->errline, STDERR_LINE_MAX + 1);
    argv[0] = cfg->command;
    for (size_t i = 0; i < cfg->n_args; i++)
        argv[i + 1] = cfg->args[i];
    for (size_t i = 0; i < cfg->n_env; i++) {
        struct mg_buf e;
        mg_buf_init(&e, 1 << 20);
        mg_buf_appendf(&e, "%s=%s", cfg->env[i].name, cfg->env[i].value);
        envp[i] = mg_buf_steal(&e, NULL);
    }
    uv_pipe_init(env->loop, &s->in, 0);
    uv_pipe_init(env->loop, &s->out, 0);
    uv_pipe_init(env->loop, &s->err, 0);
    uv_timer_init(env->loop, &s->timer);
    uv_timer_init(env->loop, &s->err_timer);
    s->in.data = s->out.data = s->err.data = s->timer.data = s->err_timer.data = s->proc.data = s;
    s->open_handles = 6;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&s->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&s->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&s->err},
    };
    uv_process_options_t opts = {
        .exit_cb = on_exit_cb,
        .file = cfg->command,
        .args = argv,
        .env = envp, /* only what the route lists: never the gateway's secrets */
        .cwd = cfg->cwd,
        .stdio_count = 3,
        .stdio = stdio,
    };
    rc = uv_spawn(env->loop, &s->proc, &opts);
    if (rc < 0) {
        snprintf(err, err_cap, "cannot start %s: %s", cfg->command, uv_strerror(rc));
        mg_log_error("route %s: %s", route->name, err);
        /* libuv initialises the process handle even when the spawn fails,
         * so every handle is closed the same way. */
        s->closing = true;
        close_all(s);
        rc = MG_EIO;
        goto out;
    }
    s->pid = s->proc.pid;
    s->counted = true;
    atomic_fetch_add(env->children, 1);
    uv_read_start((uv_stream_t *)&s->out, on_alloc, on_out);
    uv_read_start((uv_stream_t *)&s->err, on_alloc, on_err);
    mg_log_info("route %s: started %s (pid %d)", route->name, cfg->command, s->pid);
    *out = &s->ch;
    rc = 0;
out:
    for (size_t i = 0; i < cfg->n_env; i++)
        free(envp[i]);
    free(envp);
    free(argv);
    return rc;
}
