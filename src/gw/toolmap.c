/* Learned tool classes; see toolmap.h. */
#include "gw/toolmap.h"

#include "mcp/listfilter.h"

#include <openssl/sha.h>
#include <pthread.h>

#define SLOTS     8192 /* open addressing, at most half full */
#define NAME_MAX_ 256  /* bytes of a name that is learned */
#define BATCH_MAX (4u << 20)

struct entry {
    char *name;
    int cls;
};

/* A server->client request awaiting its answer. */
struct pending {
    char *key; /* session "\n" id_json; NULL: a free slot */
    char method[MG_TOOLMAP_METHOD_MAX + 1];
    uint64_t at_ns;
};

struct mg_toolmap {
    pthread_mutex_t mu;
    struct entry slots[SLOTS];
    size_t n;
    unsigned char last[SHA256_DIGEST_LENGTH]; /* of the last batch learned */
    bool has_last;
    /* A ring, oldest first: pending[(first + i) % MAX] for i < n_pending. */
    struct pending *pending; /* allocated on first use */
    size_t first, n_pending;
};

struct mg_toolmap *mg_toolmap_new(void)
{
    struct mg_toolmap *m = mg_xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void mg_toolmap_free(struct mg_toolmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < SLOTS; i++)
        free(m->slots[i].name);
    for (size_t i = 0; m->pending && i < MG_TOOLMAP_MAX_PENDING; i++)
        free(m->pending[i].key);
    free(m->pending);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static size_t hash_of(const char *s)
{
    /* FNV-1a: tool names come from the upstream, not from callers. */
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static struct entry *find(struct mg_toolmap *m, const char *name, bool *found)
{
    for (size_t i = hash_of(name) % SLOTS, k = 0; k < SLOTS; k++, i = (i + 1) % SLOTS) {
        if (m->slots[i].name == NULL) {
            *found = false;
            return &m->slots[i];
        }
        if (strcmp(m->slots[i].name, name) == 0) {
            *found = true;
            return &m->slots[i];
        }
    }
    *found = false;
    return NULL;
}

/* Under the lock. */
static void learn_one(struct mg_toolmap *m, const char *name, int cls)
{
    bool found;
    struct entry *e = find(m, name, &found);
    if (e == NULL || (!found && m->n >= MG_TOOLMAP_MAX))
        return;
    if (!found) {
        e->name = mg_xstrdup(name);
        m->n++;
    }
    e->cls = cls + 1; /* 0 stays "not learned" */
}

void mg_toolmap_batch_init(struct mg_toolmap_batch *b)
{
    mg_buf_init(&b->recs, BATCH_MAX);
}

void mg_toolmap_batch_fini(struct mg_toolmap_batch *b)
{
    mg_buf_fini(&b->recs);
}

void mg_toolmap_batch_add(struct mg_toolmap_batch *b, const char *name, size_t len,
                          enum mg_tool_class cls)
{
    char c = (char)('0' + (int)cls);
    if (len > NAME_MAX_ || memchr(name, '\0', len) != NULL || b->recs.len + len + 2 > b->recs.max)
        return;
    mg_buf_append(&b->recs, &c, 1);
    mg_buf_append(&b->recs, name, len);
    mg_buf_append(&b->recs, "", 1);
}

void mg_toolmap_learn_batch(struct mg_toolmap *m, const struct mg_toolmap_batch *b)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)(b->recs.data ? b->recs.data : ""), b->recs.len, md);
    pthread_mutex_lock(&m->mu);
    if (!m->has_last || memcmp(md, m->last, sizeof md) != 0) {
        for (size_t i = 0; i < b->recs.len;) {
            const char *rec = b->recs.data + i;
            size_t n = strlen(rec + 1);
            learn_one(m, rec + 1, rec[0] - '0');
            i += n + 2;
        }
        memcpy(m->last, md, sizeof md);
        m->has_last = true;
    }
    pthread_mutex_unlock(&m->mu);
}

void mg_toolmap_learn(struct mg_toolmap *m, const json_t *tools)
{
    size_t i;
    const json_t *t;
    struct mg_toolmap_batch b;
    mg_toolmap_batch_init(&b);
    json_array_foreach(tools, i, t)
    {
        const char *name = mg_listfilter_item_name("tools", t);
        if (name)
            mg_toolmap_batch_add(&b, name, strlen(name), mg_listfilter_tool_class(t));
    }
    mg_toolmap_learn_batch(m, &b);
    mg_toolmap_batch_fini(&b);
}

int mg_toolmap_get(struct mg_toolmap *m, const char *tool)
{
    int cls = 0; /* stored as class + 1 */
    bool found;
    pthread_mutex_lock(&m->mu);
    struct entry *e = find(m, tool, &found);
    if (e && found)
        cls = e->cls;
    /* -1: not learned; else an enum mg_tool_class. */
    cls -= 1;
    pthread_mutex_unlock(&m->mu);
    return cls;
}

/* ---------------------------------------------------------------------------
 * Server->client requests. Few are outstanding at a time (a client answers
 * within seconds), so a linear scan of the ring is enough; it runs only when
 * a request is relayed or answered.
 */

static char *pending_key(const char *session, const char *id_json)
{
    size_t a = strlen(session), b = strlen(id_json);
    char *k = mg_xmalloc(a + 1 + b + 1);
    memcpy(k, session, a);
    k[a] = '\n';
    memcpy(k + a + 1, id_json, b + 1);
    return k;
}

/* Under mu: drops the oldest entries while they are expired or already
 * answered. */
static void pending_expire(struct mg_toolmap *m, uint64_t now)
{
    while (m->n_pending > 0) {
        struct pending *o = &m->pending[m->first];
        if (o->key && now - o->at_ns < (uint64_t)MG_TOOLMAP_PENDING_TTL_MS * 1000000u)
            break;
        free(o->key);
        o->key = NULL;
        m->first = (m->first + 1) % MG_TOOLMAP_MAX_PENDING;
        m->n_pending--;
    }
}

/* Under mu: the slot holding key, or NULL. */
static struct pending *pending_find(struct mg_toolmap *m, const char *key)
{
    for (size_t i = 0; i < m->n_pending; i++) {
        struct pending *x = &m->pending[(m->first + i) % MG_TOOLMAP_MAX_PENDING];
        if (x->key && strcmp(x->key, key) == 0)
            return x;
    }
    return NULL;
}

void mg_toolmap_note_request(struct mg_toolmap *m, const char *session, const char *id_json,
                             const char *method)
{
    if (strlen(method) > MG_TOOLMAP_METHOD_MAX)
        return;
    char *key = pending_key(session ? session : "", id_json);
    uint64_t now = mg_now_ns();
    pthread_mutex_lock(&m->mu);
    if (m->pending == NULL)
        m->pending = mg_xcalloc(MG_TOOLMAP_MAX_PENDING, sizeof *m->pending);
    pending_expire(m, now);
    struct pending *x = pending_find(m, key);
    if (x) {
        free(key);
    } else {
        if (m->n_pending == MG_TOOLMAP_MAX_PENDING) { /* forget the oldest */
            free(m->pending[m->first].key);
            m->pending[m->first].key = NULL;
            m->first = (m->first + 1) % MG_TOOLMAP_MAX_PENDING;
            m->n_pending--;
        }
        x = &m->pending[(m->first + m->n_pending) % MG_TOOLMAP_MAX_PENDING];
        x->key = key;
        m->n_pending++;
    }
    snprintf(x->method, sizeof x->method, "%s", method);
    x->at_ns = now;
    pthread_mutex_unlock(&m->mu);
}

bool mg_toolmap_take_request(struct mg_toolmap *m, const char *session, const char *id_json,
                             char *method, size_t cap)
{
    char *key = pending_key(session ? session : "", id_json);
    bool found = false;
    pthread_mutex_lock(&m->mu);
    if (m->pending) {
        pending_expire(m, mg_now_ns());
        struct pending *x = pending_find(m, key);
        if (x) {
            found = true;
            snprintf(method, cap, "%s", x->method);
            /* The slot stays in the ring, empty; expiry or the ring's
             * turn reclaims it. */
            free(x->key);
            x->key = NULL;
        }
    }
    pthread_mutex_unlock(&m->mu);
    free(key);
    return found;
}

/* Maps by route name, for the life of the process (bounded by the number of
 * route names a configuration may hold). */
struct shared {
    char *name;
    struct mg_toolmap *map;
    struct shared *next;
};

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shared *shared_list;

struct mg_toolmap *mg_toolmap_shared(const char *name)
{
    struct mg_toolmap *m = NULL;
    pthread_mutex_lock(&shared_mu);
    for (struct shared *x = shared_list; x && m == NULL; x = x->next)
        if (strcmp(x->name, name) == 0)
            m = x->map;
    if (m == NULL) {
        struct shared *x = mg_xcalloc(1, sizeof *x);
        x->name = mg_xstrdup(name);
        x->map = m = mg_toolmap_new();
        x->next = shared_list;
        shared_list = x;
    }
    pthread_mutex_unlock(&shared_mu);
    return m;
}

void mg_toolmap_shared_fini(void)
{
    pthread_mutex_lock(&shared_mu);
    while (shared_list) {
        struct shared *x = shared_list;
        shared_list = x->next;
        mg_toolmap_free(x->map);
        free(x->name);
        free(x);
    }
    pthread_mutex_unlock(&shared_mu);
}
