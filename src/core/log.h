/* Logging without blocking a loop: callers format a line and hand it to a
 * bounded queue; one writer thread writes it. A full queue drops the line and
 * counts the drop rather than stall request handling. Two sinks: the error
 * log (JSON lines on stderr) and the access log (JSON lines, stdout or file). */
#ifndef MG_CORE_LOG_H
#define MG_CORE_LOG_H

#include "core/common.h"

enum mg_log_level { MG_LOG_DEBUG, MG_LOG_INFO, MG_LOG_WARN, MG_LOG_ERROR };

/* Starts the writer thread. access_log: "stdout", "stderr", "off" or a path. */
int mg_log_start(const char *access_log, const char *level);
/* Changes level and access-log destination (on reload). */
int mg_log_reconfigure(const char *access_log, const char *level);
/* Flushes everything queued and stops the writer. */
void mg_log_stop(void);

void mg_log(enum mg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queues one complete access-log line (without the newline). */
void mg_log_access(const char *line, size_t len);
uint64_t mg_log_dropped(void);
/* False when access_log is "off": callers skip formatting the line at all. */
bool mg_log_access_enabled(void);
bool mg_log_enabled(enum mg_log_level level);

#define mg_log_debug(...) mg_log(MG_LOG_DEBUG, __VA_ARGS__)
#define mg_log_info(...)  mg_log(MG_LOG_INFO, __VA_ARGS__)
#define mg_log_warn(...)  mg_log(MG_LOG_WARN, __VA_ARGS__)
#define mg_log_error(...) mg_log(MG_LOG_ERROR, __VA_ARGS__)

/* Appends an RFC 3339 UTC timestamp with milliseconds. */
void mg_log_time(char *out, size_t cap);

#endif
