/* Process-wide identity services the workers share: the store pool, the token
 * cache with its revocation watcher, the key that seals browser state, the
 * page templates and the OpenID providers. Created once by `mcpgate serve`
 * before the workers start, freed after they stop; a reload keeps them (the
 * store, keys and providers need a restart to change). */
#ifndef MG_GW_AUTHSVC_H
#define MG_GW_AUTHSVC_H

#include "authn/jwks_cache.h"
#include "authn/tokcache.h"
#include "conf/conf.h"
#include "store/pool.h"

#define MG_AUTHSVC_KEY_LEN 32

struct mg_authsvc {
    struct mg_store_pool *pool;
    struct mg_tokcache *cache;
    uint8_t seal_key[MG_AUTHSVC_KEY_LEN]; /* shared by every instance on one store */
    struct mg_jwks_cache *jwks;           /* OpenID providers' and JWT issuers' keys */
    void *ext;                            /* owned by the oauth module (pages, providers) */
};

/* Opens the store named by conf (migrating it), starts the token cache and
 * loads or creates the sealing key. */
int mg_authsvc_new(const struct mg_conf *conf, struct mg_authsvc **out, struct mg_buf *err);
void mg_authsvc_free(struct mg_authsvc *a);

#endif
