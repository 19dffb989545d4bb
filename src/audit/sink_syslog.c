/* The syslog sink: each record's JSON line through syslog(3), facility
 * authpriv (readable by administrators only on most systems), identity
 * "mcpgate". syslog(3) reports no failure and the daemon may drop or cut
 * long messages (often at 1 or 8 KiB), so this sink is for forwarding to a
 * SIEM, not for evidence: records still carry seq and prev, but the chain
 * restarts at seq 1 on every start and `mcpgate audit verify` cannot read
 * it back. on_failure never triggers for it. */
#include "audit/sink.h"

#include <syslog.h>

static int syslog_open(const char *target, void **out, char *err, size_t cap)
{
    static int token;
    MG_UNUSED(target);
    MG_UNUSED(err);
    MG_UNUSED(cap);
    openlog("mcpgate", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
    *out = &token;
    return 0;
}

static int syslog_head(void *p, int64_t *seq, char hash[MG_AUDIT_HASH_HEX + 1], char *err,
                       size_t cap)
{
    MG_UNUSED(p);
    MG_UNUSED(err);
    MG_UNUSED(cap);
    *seq = 0;
    memcpy(hash, mg_audit_zero_hash, MG_AUDIT_HASH_HEX + 1);
    return 0;
}

static int syslog_write(void *p, const struct mg_audit_entry *e, size_t n, bool durable, char *err,
                        size_t cap)
{
    MG_UNUSED(p);
    MG_UNUSED(err);
    MG_UNUSED(cap);
    for (size_t i = 0; i < n; i++)
        syslog(LOG_AUTHPRIV | (strcmp(e[i].cols.decision, "deny") == 0 ? LOG_NOTICE : LOG_INFO),
               "%s", e[i].text);
    return 0;
}

static void syslog_close(void *p)
{
    if (p)
        closelog();
}

const struct mg_audit_sink_ops mg_audit__syslog_ops = {
    .name = "syslog",
    .persistent = false,
    .wants_cols = true,
    .open = syslog_open,
    .head = syslog_head,
    .write = syslog_write,
    .close = syslog_close,
};
