/* Process-wide counters for the Prometheus endpoint. Workers update them with
 * relaxed atomics; the metrics listener renders them in text format 0.0.4.
 * What every request updates (requests, latency, bytes) is kept per thread
 * in shards of their own cache lines and summed when rendered: shared
 * counters written from every worker on every request bounced their line
 * between the cores. */
#ifndef MG_GW_METRICS_H
#define MG_GW_METRICS_H

#include "core/buf.h"

#include <stdatomic.h>

#define MG_METRICS_N_BUCKETS 12

struct mg_metrics {
    _Atomic(long long) open_connections;
    atomic_int_fast64_t open_streams;
    _Atomic(long long) stdio_children;
    atomic_int_fast64_t sessions;
    atomic_uint_fast64_t upstream_errors;
    atomic_uint_fast64_t reloads, reload_failures;
};

extern struct mg_metrics mg_metrics;

void mg_metrics_observe(int status, uint64_t duration_us, uint64_t bytes);
void mg_metrics_render(struct mg_buf *out);

#endif
