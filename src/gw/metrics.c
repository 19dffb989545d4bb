/* Prometheus metrics; see metrics.h. */
#include "gw/metrics.h"
#include "core/log.h"

#include <inttypes.h>

struct mg_metrics mg_metrics;

static const double bucket_s[MG_METRICS_N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    5};

/* Per-request counters, one shard per thread (threads beyond SHARDS share,
 * which the atomics keep correct). */
struct shard {
    _Alignas(64) atomic_uint_fast64_t requests[6]; /* by status class: 0 = other, 1xx..5xx */
    atomic_uint_fast64_t latency_bucket[MG_METRICS_N_BUCKETS + 1];
    atomic_uint_fast64_t latency_sum_us;
    atomic_uint_fast64_t bytes_out;
};

#define SHARDS 16
static struct shard shards[SHARDS];
static atomic_uint next_shard;
static _Thread_local struct shard *my_shard;

void mg_metrics_observe(int status, uint64_t duration_us, uint64_t bytes)
{
    struct shard *s = my_shard;
    if (s == NULL)
        s = my_shard = &shards[atomic_fetch_add(&next_shard, 1) % SHARDS];
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    atomic_fetch_add_explicit(&s->requests[cls], 1, memory_order_relaxed);
    size_t i = 0;
    while (i < MG_METRICS_N_BUCKETS && (double)duration_us / 1e6 > bucket_s[i])
        i++;
    atomic_fetch_add_explicit(&s->latency_bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->latency_sum_us, duration_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes_out, bytes, memory_order_relaxed);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* The per-request counters summed over the shards. */
struct totals {
    uint64_t requests[6], latency_bucket[MG_METRICS_N_BUCKETS + 1], latency_sum_us, bytes_out;
};

static void sum_shards(struct totals *t)
{
    memset(t, 0, sizeof *t);
    for (size_t k = 0; k < SHARDS; k++) {
        const struct shard *s = &shards[k];
        for (size_t i = 0; i < 6; i++)
            t->requests[i] += LOAD(s->requests[i]);
        for (size_t i = 0; i <= MG_METRICS_N_BUCKETS; i++)
            t->latency_bucket[i] += LOAD(s->latency_bucket[i]);
        t->latency_sum_us += LOAD(s->latency_sum_us);
        t->bytes_out += LOAD(s->bytes_out);
    }
}

void mg_metrics_render(struct mg_buf *o)
{
    static const char *cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    struct totals t;
    sum_shards(&t);
    mg_buf_appends(o, "# HELP mcpgate_requests_total Requests answered, by status class.\n"
                      "# TYPE mcpgate_requests_total counter\n");
    uint64_t total = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t v = t.requests[i];
        total += v;
        mg_buf_appendf(o, "mcpgate_requests_total{code=\"%s\"} %" PRIu64 "\n", cls[i], v);
    }
    mg_buf_appends(o, "# HELP mcpgate_request_duration_seconds Time from request to the end of "
                      "the response.\n# TYPE mcpgate_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < MG_METRICS_N_BUCKETS; i++) {
        cum += t.latency_bucket[i];
        mg_buf_appendf(o, "mcpgate_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                       bucket_s[i], cum);
    }
    cum += t.latency_bucket[MG_METRICS_N_BUCKETS];
    mg_buf_appendf(o, "mcpgate_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    mg_buf_appendf(o, "mcpgate_request_duration_seconds_sum %.6f\n",
                   (double)t.latency_sum_us / 1e6);
    mg_buf_appendf(o, "mcpgate_request_duration_seconds_count %" PRIu64 "\n", cum);
    mg_buf_appendf(o,
                   "# HELP mcpgate_open_connections Client connections open now.\n"
                   "# TYPE mcpgate_open_connections gauge\nmcpgate_open_connections %" PRId64 "\n"
                   "# HELP mcpgate_open_streams SSE streams open now.\n"
                   "# TYPE mcpgate_open_streams gauge\nmcpgate_open_streams %" PRId64 "\n"
                   "# HELP mcpgate_stdio_children stdio server processes running now.\n"
                   "# TYPE mcpgate_stdio_children gauge\nmcpgate_stdio_children %" PRId64 "\n"
                   "# HELP mcpgate_sessions Hosted (stdio and legacy SSE) sessions now.\n"
                   "# TYPE mcpgate_sessions gauge\nmcpgate_sessions %" PRId64 "\n",
                   (int64_t)LOAD(mg_metrics.open_connections),
                   (int64_t)LOAD(mg_metrics.open_streams), (int64_t)LOAD(mg_metrics.stdio_children),
                   (int64_t)LOAD(mg_metrics.sessions));
    mg_buf_appendf(
        o,
        "# HELP mcpgate_upstream_errors_total Upstream connect, timeout and protocol "
        "failures.\n# TYPE mcpgate_upstream_errors_total counter\n"
        "mcpgate_upstream_errors_total %" PRIu64 "\n"
        "# HELP mcpgate_response_bytes_total Response bytes sent to clients.\n"
        "# TYPE mcpgate_response_bytes_total counter\nmcpgate_response_bytes_total %" PRIu64
        "\n# HELP mcpgate_reloads_total Configuration reloads, by result.\n"
        "# TYPE mcpgate_reloads_total counter\n"
        "mcpgate_reloads_total{result=\"ok\"} %" PRIu64 "\n"
        "mcpgate_reloads_total{result=\"failed\"} %" PRIu64 "\n"
        "# HELP mcpgate_log_dropped_total Log lines dropped because the writer fell "
        "behind.\n# TYPE mcpgate_log_dropped_total counter\nmcpgate_log_dropped_total %" PRIu64
        "\n",
        LOAD(mg_metrics.upstream_errors), t.bytes_out, LOAD(mg_metrics.reloads),
        LOAD(mg_metrics.reload_failures), mg_log_dropped());
    MG_UNUSED(total);
}
