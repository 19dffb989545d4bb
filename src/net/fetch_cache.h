/* A cache of documents fetched by URL and parsed into values (JWKS key
 * sets, OpenID discovery documents), shared by every worker thread. Owns the
 * entries, their reference-counted values, and the waiting requests.
 *
 * Rules, per URL: a value lives ttl_ms; a fetch starts at most once every
 * min_refresh_ms (a forced refresh, such as an unknown JWT "kid", and a retry
 * after a failure are both rate-limited by it); one fetch at a time, and every
 * request for the URL on any worker waits for that one fetch instead of
 * starting its own; a failed refresh keeps the old value; a stale value is
 * served while another request refreshes it. Entries are bounded
 * (least recently used evicted first) and so are the waiters per entry.
 *
 * Fetches run on the loop of the worker that started them; each waiting
 * request is woken on its own loop through its own uv_async, so callbacks
 * always run on the requester's thread. */
#ifndef MG_NET_FETCH_CACHE_H
#define MG_NET_FETCH_CACHE_H

#include "net/fetch.h"

#define MG_FETCH_CACHE_REFRESH 1u /* fetch again now unless rate-limited */

struct mg_fetch_cache;
struct mg_fetch_cache_req;
/* An immutable parsed document; valid while a reference is held. */
struct mg_fetch_cache_val;

struct mg_fetch_cache_ops {
    /* Turns a fetch result (any status, any HTTP code) into a value. Runs on
     * the fetching worker's thread, outside the cache lock. Returns 0 and
     * *value, or a negative status and a reason appended to err. */
    int (*parse)(void *ctx, const struct mg_fetch_result *res, void **value, struct mg_buf *err);
    void (*free)(void *value);
};

struct mg_fetch_cache_opts {
    size_t max_entries;      /* 0: 64 */
    uint64_t ttl_ms;         /* 0: one hour */
    uint64_t min_refresh_ms; /* 0: 10 s */
    size_t max_waiters;      /* per entry; 0: 4096 */
};

/* ops and ctx must outlive the cache. opts NULL: defaults. */
struct mg_fetch_cache *mg_fetch_cache_new(const struct mg_fetch_cache_ops *ops, void *ctx,
                                          const struct mg_fetch_cache_opts *opts);
/* Frees the cache. No fetch or request may still be under way (stop the
 * loops first); values still referenced stay valid. NULL is a no-op. */
void mg_fetch_cache_free(struct mg_fetch_cache *c);

void *mg_fetch_cache_val_data(const struct mg_fetch_cache_val *v);
void mg_fetch_cache_val_ref(struct mg_fetch_cache_val *v);
/* NULL is a no-op. Thread-safe. */
void mg_fetch_cache_val_unref(struct mg_fetch_cache_val *v);

/* Without waiting: 0 and a new reference in *out when a load without
 * MG_FETCH_CACHE_REFRESH would answer at once with a value (fresh, or stale
 * while a refresh is under way or was just tried); else MG_ENOTFOUND. */
int mg_fetch_cache_peek(struct mg_fetch_cache *c, const char *url, struct mg_fetch_cache_val **out);

/* status 0: val is a new reference for the callee (unref it). Otherwise val
 * is NULL and error says why. Runs on the requester's loop. */
typedef void (*mg_fetch_cache_cb)(void *ud, int status, struct mg_fetch_cache_val *val,
                                  const char *error);

/* Gets the value for url, fetching it on pool's loop with fopts when needed
 * (the fetch belongs to the cache; fopts is copied by mg_fetch). Returns 0 and
 * *out (if out is not NULL): cb then runs exactly once on pool's loop, never
 * inside this call. MG_ELIMIT (too many entries or waiters) or MG_EINVAL: cb
 * never runs. */
int mg_fetch_cache_load(struct mg_fetch_cache *c, struct mg_client_pool *pool, const char *url,
                        const struct mg_fetch_opts *fopts, unsigned flags, mg_fetch_cache_cb cb,
                        void *ud, struct mg_fetch_cache_req **out);
/* On the requester's thread, before cb ran: cb will not run. The fetch
 * itself goes on for the other waiters and the cache. */
void mg_fetch_cache_cancel(struct mg_fetch_cache_req *r);

#endif
