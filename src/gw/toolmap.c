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

struct mg_toolmap {
    pthread_mutex_t mu;
    struct entry slots[SLOTS];
    size_t n;
    unsigned char last[SHA256_DIGEST_LENGTH]; /* of the last batch learned */
    bool has_last;
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
