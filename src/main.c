/* mcpgate's command line: `serve` runs the gateway (workers, the session hub,
 * signals, reload, metrics), `check` validates a configuration file. */
#include "conf/conf.h"
#include "core/log.h"
#include "cli/cli.h"
#include "audit/audit.h"
#include "gw/authsvc.h"
#include "gw/metrics.h"
#include "gw/toolmap.h"
#include "oauth/oauth.h"
#include "gw/worker.h"
#include "mcp/hub.h"
#include "net/tls.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define MG_VERSION "0.1.0"

static void usage(FILE *f)
{
    fputs("usage: mcpgate <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve -c FILE    run the gateway with the configuration in FILE\n"
          "  check -c FILE    validate FILE; prints FILE:LINE:COL: message for each problem\n"
          "  users            add | list | disable | enable | passwd   built-in accounts\n"
          "  clients          list | revoke                            OAuth clients\n"
          "  tokens           list | revoke                            issued tokens\n"
          "  service-accounts create | list | revoke                   tokens for agents\n"
          "  audit            query | verify                           the decision trail\n"
          "  policy           test | lint                              try and check policies\n"
          "                   (each takes -c FILE; `mcpgate users --help` and so on)\n"
          "  version          print the version\n"
          "\n"
          "signals (serve): SIGTERM/SIGINT drain and exit, SIGHUP reloads the configuration\n",
          f);
}

static const char *config_arg(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
        else {
            fprintf(stderr, "mcpgate: unknown argument '%s'\n", argv[i]);
            return NULL;
        }
    }
    if (path == NULL)
        fprintf(stderr, "mcpgate: %s needs -c FILE\n", argv[1]);
    return path;
}

static int cmd_check(const char *path)
{
    struct mg_conf *conf = NULL;
    char *err = NULL;
    if (mg_conf_load(path, &conf, &err) < 0) {
        fprintf(stderr, "%s\n", err ? err : "invalid configuration");
        free(err);
        return 1;
    }
    printf("%s: ok (%zu route%s)\n", path, conf->n_routes, conf->n_routes == 1 ? "" : "s");
    mg_conf_unref(conf);
    return 0;
}

/* --- serve ----------------------------------------------------------------------------- */

struct gateway {
    uv_loop_t *loop;
    const char *config_path;
    struct mg_gw *gw;
    struct mg_worker *workers;
    int n_workers;
    struct mg_worker_group group;
    uv_work_t pool_start;
    struct mg_tls_server *tls;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_tcp_t metrics_listener;
    bool metrics_open;
    struct mg_http_server metrics;
    char hub_dir[64];
    char hub_path[128];
    char hub_key[65];
    struct mg_authsvc *auth;
    struct mg_audit *audit;
    bool stopping;
    bool hub_started;
};

static struct gateway G;

static void metrics_request(struct mg_http_req *req)
{
    if (req->method == HTTP_GET && strcmp(req->path, "/metrics") == 0) {
        struct mg_buf b;
        mg_buf_init(&b, 1 << 20);
        mg_metrics_render(&b);
        mg_worker_render_metrics(&G.group, &b);
        mg_http_reply(req, 200, "text/plain; version=0.0.4", NULL, b.data, b.len);
        mg_buf_fini(&b);
    } else if (req->method == HTTP_GET && strcmp(req->path, "/healthz") == 0) {
        mg_http_reply(req, 200, "text/plain", NULL, "ok\n", 3);
    } else {
        mg_http_reply(req, 404, "text/plain", NULL, "not found\n", 10);
    }
}

static const struct mg_http_handler metrics_handler = {.on_request = metrics_request};

static void on_metrics_conn(uv_stream_t *l, int status)
{
    if (status == 0)
        mg_http_server_accept(&G.metrics, l);
}

static int start_metrics(const struct mg_conf *c, struct mg_buf *err)
{
    if (c->metrics_address == NULL)
        return 0;
    int fd;
    if (mg_worker_listen_fd(c->metrics_address, &fd, err) < 0)
        return MG_EIO;
    struct mg_http_limits l = {.max_header_bytes = 8192,
                               .max_body_bytes = 1024,
                               .header_timeout_ms = 5000,
                               .body_timeout_ms = 5000,
                               .idle_timeout_ms = 30000,
                               .send_timeout_ms = 30000,
                               .max_connections = 64};
    mg_http_server_init(&G.metrics, G.loop, &metrics_handler, NULL, NULL, &l);
    uv_tcp_init(G.loop, &G.metrics_listener);
    uv_tcp_open(&G.metrics_listener, fd);
    if (uv_listen((uv_stream_t *)&G.metrics_listener, 64, on_metrics_conn) < 0) {
        mg_buf_appendf(err, "cannot listen on metrics_address %s", c->metrics_address);
        return MG_EIO;
    }
    G.metrics_open = true;
    return 0;
}

static void reload(void)
{
    struct mg_conf *conf = NULL;
    char *err = NULL;
    if (mg_conf_load(G.config_path, &conf, &err) < 0) {
        mg_log_error("reload failed, keeping the running configuration: %s", err ? err : "?");
        free(err);
        atomic_fetch_add(&mg_metrics.reload_failures, 1);
        return;
    }
    const struct mg_conf *old = G.gw->conf;
    if (strcmp(conf->address, old->address) != 0 || conf->insecure_server != old->insecure_server ||
        conf->workers != old->workers)
        mg_log_warn("reload: address, insecure_server and workers take effect after a restart");
    if (conf->n_certs != old->n_certs || (conf->tls_min_version && old->tls_min_version &&
                                          strcmp(conf->tls_min_version, old->tls_min_version)))
        mg_log_warn("reload: listener TLS settings (tls:) take effect after a restart");
    for (size_t i = 0; i < conf->n_certs && i < old->n_certs; i++)
        if (strcmp(conf->certs[i].cert_file, old->certs[i].cert_file) ||
            strcmp(conf->certs[i].key_file, old->certs[i].key_file)) {
            mg_log_warn("reload: listener TLS settings (tls:) take effect after a restart");
            break;
        }
    struct mg_buf eb;
    mg_buf_init(&eb, 4096);
    struct mg_gw *gw = NULL;
    if (mg_gw_new(conf, G.hub_path, G.hub_key, &gw, &eb) < 0) {
        mg_log_error("reload failed, keeping the running configuration: %s",
                     eb.data ? eb.data : "");
        mg_buf_fini(&eb);
        atomic_fetch_add(&mg_metrics.reload_failures, 1);
        return;
    }
    mg_buf_fini(&eb);
    gw->auth = G.auth;
    gw->audit = G.audit;
    if (strcmp(conf->store_dsn, old->store_dsn) != 0 || conf->n_idps != old->n_idps ||
        conf->oauth.n_clients != old->oauth.n_clients ||
        (conf->web_dir == NULL) != (old->web_dir == NULL))
        mg_log_warn("reload: store, identity_providers, oauth.clients and web_dir take effect "
                    "after a restart");
    mg_log_reconfigure(conf->access_log, conf->log_level);
    for (int i = 0; i < G.n_workers; i++)
        mg_worker_post_config(&G.workers[i], gw);
    mg_hub_post_config(gw);
    mg_gw_unref(G.gw);
    G.gw = gw;
    atomic_fetch_add(&mg_metrics.reloads, 1);
    mg_log_info("configuration reloaded from %s (%zu routes)", G.config_path, conf->n_routes);
}

static void on_close_noop(uv_handle_t *h)
{
    MG_UNUSED(h);
}

static void noop_work(uv_work_t *r)
{
    MG_UNUSED(r);
}

static void noop_after_work(uv_work_t *r, int status)
{
    MG_UNUSED(r);
    MG_UNUSED(status);
}

static void begin_stop(void)
{
    if (G.stopping)
        return;
    G.stopping = true;
    mg_log_info("draining connections (up to %llu ms)",
                (unsigned long long)G.gw->conf->drain_timeout_ms);
    for (int i = 0; i < G.n_workers; i++)
        mg_worker_post_drain(&G.workers[i]);
    mg_hub_post_drain();
    uv_close((uv_handle_t *)&G.sig_term, on_close_noop);
    uv_close((uv_handle_t *)&G.sig_int, on_close_noop);
    uv_close((uv_handle_t *)&G.sig_hup, on_close_noop);
    if (G.metrics_open) {
        uv_close((uv_handle_t *)&G.metrics_listener, on_close_noop);
        mg_http_server_close_all(&G.metrics);
        G.metrics_open = false;
    }
    mg_stream_loop_fini();
}

static void on_signal(uv_signal_t *s, int signum)
{
    MG_UNUSED(s);
    if (signum == SIGHUP)
        reload();
    else
        begin_stop();
}

static int make_state_dir(const char *dir, struct mg_buf *err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        mg_buf_appendf(err, "cannot create state_dir %s: %s", dir, strerror(errno));
        return MG_EIO;
    }
    return 0;
}

static int cmd_serve(const char *path)
{
    int rc = 1;
    struct mg_conf *conf = NULL;
    char *cerr = NULL;
    struct mg_buf err;
    mg_buf_init(&err, 8192);
    int *fds = NULL;

    signal(SIGPIPE, SIG_IGN);
    if (mg_conf_load(path, &conf, &cerr) < 0) {
        fprintf(stderr, "%s\n", cerr ? cerr : "invalid configuration");
        free(cerr);
        return 1;
    }
    if (mg_log_start(conf->access_log, conf->log_level) < 0) {
        fprintf(stderr, "mcpgate: cannot open access_log %s\n", conf->access_log);
        mg_conf_unref(conf);
        return 1;
    }
    G.loop = uv_default_loop();
    G.config_path = path;
    if (make_state_dir(conf->state_dir, &err) < 0)
        goto fail;

    /* The hub's socket lives in a private directory; the key guards it too. */
    snprintf(G.hub_dir, sizeof G.hub_dir, "/tmp/mcpgate-XXXXXX");
    if (mkdtemp(G.hub_dir) == NULL) {
        mg_buf_appendf(&err, "mkdtemp: %s", strerror(errno));
        goto fail;
    }
    snprintf(G.hub_path, sizeof G.hub_path, "%s/hub.sock", G.hub_dir);
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1)
        goto fail;
    for (size_t i = 0; i < sizeof key; i++)
        snprintf(G.hub_key + 2 * i, 3, "%02x", key[i]);

    int n = conf->workers;
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)MG_MIN(cpus, 64) : 1;
    }
    bool tls = !conf->insecure_server;
    if (tls && mg_tls_server_new(conf, &G.tls, &err) < 0)
        goto fail;
    /* The identity store before any port opens: without it nothing could
     * be admitted, so a gateway that cannot reach it does not start. */
    if (mg_authsvc_new(conf, &G.auth, &err) < 0 || mg_oauth_init(G.auth, conf, &err) < 0)
        goto fail;
    {
        /* The audit trail before any port opens, for the same reason. */
        char *aerr = NULL;
        signal(SIGXFSZ, SIG_IGN); /* a full file sink is an error, not a kill */
        if (mg_audit_new_from_conf(conf, &G.audit, &aerr) < 0) {
            mg_buf_appendf(&err, "audit: %s", aerr ? aerr : "cannot start");
            free(aerr);
            goto fail;
        }
    }
    if (mg_gw_new(conf, G.hub_path, G.hub_key, &G.gw, &err) < 0) {
        conf = NULL; /* owned (and freed) by the failed gw */
        goto fail;
    }
    G.gw->auth = G.auth;
    G.gw->audit = G.audit;
    conf = NULL;
    /* Signals before any port opens: a SIGHUP sent the moment the port
     * answers must reload, not kill the process with the default action. */
    uv_signal_init(G.loop, &G.sig_term);
    uv_signal_init(G.loop, &G.sig_int);
    uv_signal_init(G.loop, &G.sig_hup);
    uv_signal_start(&G.sig_term, on_signal, SIGTERM);
    uv_signal_start(&G.sig_int, on_signal, SIGINT);
    uv_signal_start(&G.sig_hup, on_signal, SIGHUP);
    fds = mg_xcalloc((size_t)n, sizeof *fds);
    for (int i = 0; i < n; i++)
        fds[i] = -1;
    for (int i = 0; i < n; i++)
        if (mg_worker_listen_fd(G.gw->conf->address, &fds[i], &err) < 0)
            goto fail;
    if (start_metrics(G.gw->conf, &err) < 0)
        goto fail;
    if (mg_hub_start(G.gw, G.hub_path, &err) < 0)
        goto fail;
    G.hub_started = true;
    /* libuv starts its threadpool on first use, and a new thread inherits
     * its creator's scheduling attributes: start it from this thread, before
     * a worker asks for a short time slice (worker_yield). */
    uv_queue_work(G.loop, &G.pool_start, noop_work, noop_after_work);
    G.workers = mg_xcalloc((size_t)n, sizeof *G.workers);
    G.group.all = G.workers;
    mg_audit_record_pool_start();
    for (int i = 0; i < n; i++) {
        if (mg_worker_start(&G.workers[i], i, fds[i], G.gw,
                            tls ? mg_tls_server_default(G.tls) : NULL, &G.group) < 0) {
            mg_buf_appendf(&err, "cannot start worker %d", i);
            goto fail; /* started workers die with the process */
        }
        G.n_workers++;
        atomic_store_explicit(&G.group.n_started, G.n_workers, memory_order_release);
    }
    mg_log_info("mcpgate %s listening on %s://%s with %d workers, %zu routes%s%s", MG_VERSION,
                tls ? "https" : "http", G.gw->conf->address, n, G.gw->conf->n_routes,
                G.gw->conf->metrics_address ? ", metrics on " : "",
                G.gw->conf->metrics_address ? G.gw->conf->metrics_address : "");
    uv_run(G.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < G.n_workers; i++)
        mg_worker_join(&G.workers[i]);
    mg_hub_join();
    mg_oauth_fini(G.auth);
    mg_authsvc_free(G.auth);
    G.auth = NULL;
    mg_audit_free(G.audit); /* writes what is still queued */
    G.audit = NULL;
    mg_audit_record_pool_stop(); /* every record is written and freed */
    mg_toolmap_shared_fini();
    mg_log_info("stopped");
    rc = 0;
    goto out;
fail:
    mg_log_error("cannot start: %s", err.data ? err.data : "unknown error");
    if (fds && G.n_workers == 0)
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0)
                close(fds[i]);
    rc = 1;
    if (G.n_workers > 0 || G.hub_started) {
        /* Threads are running: there is no orderly way back from here. */
        mg_log_stop();
        _exit(1);
    }
    if (G.sig_term.loop) {
        uv_close((uv_handle_t *)&G.sig_term, on_close_noop);
        uv_close((uv_handle_t *)&G.sig_int, on_close_noop);
        uv_close((uv_handle_t *)&G.sig_hup, on_close_noop);
        uv_run(G.loop, UV_RUN_DEFAULT);
    }
    mg_oauth_fini(G.auth);
    mg_authsvc_free(G.auth);
    G.auth = NULL;
    mg_audit_free(G.audit);
    G.audit = NULL;
    mg_audit_record_pool_stop();
out:
    free(fds);
    free(G.workers);
    mg_gw_unref(G.gw);
    mg_conf_unref(conf);
    mg_tls_server_free(G.tls);
    if (G.hub_path[0])
        unlink(G.hub_path);
    if (G.hub_dir[0])
        rmdir(G.hub_dir);
    mg_buf_fini(&err);
    uv_loop_close(G.loop);
    mg_http_parser_thread_fini();
    mg_log_stop();
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mcpgate %s\n", MG_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "users") == 0 || strcmp(cmd, "clients") == 0 || strcmp(cmd, "tokens") == 0 ||
        strcmp(cmd, "service-accounts") == 0)
        return mg_cli_admin(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return mg_cli_audit(argc - 1, argv + 1);
    if (strcmp(cmd, "policy") == 0)
        return mg_cli_policy(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0 || strcmp(cmd, "serve") == 0) {
        const char *path = config_arg(argc, argv);
        if (path == NULL)
            return 2;
        return strcmp(cmd, "check") == 0 ? cmd_check(path) : cmd_serve(path);
    }
    fprintf(stderr, "mcpgate: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
