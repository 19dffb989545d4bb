/* The token cache: token hash -> identity, shared by every worker, so the hot
 * path validates a bearer token without touching the store. Entries are
 * trusted only while the revocation watcher has heard from the store
 * recently and nothing was revoked since they were loaded: every revocation
 * anywhere (this instance, another instance, the CLI) empties the cache in
 * effect, and a silent store makes every lookup miss, so a store outage
 * fails closed instead of serving stale grants. */
#ifndef MG_AUTHN_TOKCACHE_H
#define MG_AUTHN_TOKCACHE_H

#include "authn/identity.h"
#include "store/pool.h"

#define MG_TOKCACHE_SLOTS 65536 /* direct-mapped; a colliding token evicts */

struct mg_tokcache;

/* Starts the watcher thread on its own store handle from dsn. stale_ms: how
 * long without a successful answer from the store before cached entries stop
 * counting. */
int mg_tokcache_new(const char *dsn, int64_t stale_ms, struct mg_tokcache **out, char **err);
/* Stops the watcher (bounded: it wakes at least every 250 ms) and frees. */
void mg_tokcache_free(struct mg_tokcache *c);

/* The revocation generation to stamp an entry loaded now. Read it BEFORE the
 * store lookup, so a revocation racing with the lookup invalidates the
 * result instead of being missed. */
uint64_t mg_tokcache_generation(struct mg_tokcache *c);
/* True while the watcher has heard from the store within stale_ms. */
bool mg_tokcache_store_fresh(struct mg_tokcache *c);

/* Looks up hash. Returns 1 with *id (a new reference, may be NULL for a
 * cached "no such token") when a valid entry exists, 0 on a miss. */
int mg_tokcache_get(struct mg_tokcache *c, const uint8_t hash[32], int64_t now,
                    struct mg_identity **id);
/* Stores id (takes no reference from the caller: adds its own; NULL caches a
 * negative answer) valid until expires_at, loaded at generation gen. */
void mg_tokcache_put(struct mg_tokcache *c, const uint8_t hash[32], struct mg_identity *id,
                     int64_t expires_at, uint64_t gen);
/* Invalidates everything now (after a revocation on this instance). */
void mg_tokcache_invalidate(struct mg_tokcache *c);

#endif
