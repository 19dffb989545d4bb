/* Unit tests for the store pool (src/store/pool.c) on SQLite: the first
 * handle migrates; open and migrate failures are reported and leave nothing
 * behind; jobs submitted from a loop run on the threadpool, each with a
 * handle of its own, never more than n at once; done runs exactly once, on
 * the loop's thread, with the job's status; past max_queued jobs in flight
 * submit fails with MG_ELIMIT and that job's callbacks never run; a done
 * callback may submit again; mg_store_pool_run works synchronously. */
#include "store/pool.h"
#include "tap.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static atomic_int active, max_active;
static uv_thread_t loop_thread;

struct job {
    int id;
    int sleep_ms;
    int want; /* status work returns; 0: what creating the user returned */
    int runs;
    int dones;
    int status;
    bool done_on_loop;
    struct mg_store *st;
    /* for the resubmitting job */
    struct mg_store_pool *pool;
    uv_loop_t *loop;
    struct job *next;
    int next_submit;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int work_fn(struct mg_store *st, void *arg)
{
    struct job *j = arg;
    struct mg_store_user u = {0};
    char email[64];
    int now = atomic_fetch_add(&active, 1) + 1, prev = atomic_load(&max_active), rc;

    /* Record the peak; a failed exchange reloads prev, and the loop ends once
     * prev >= now, after at most as many rounds as there are threads. */
    while (now > prev && !atomic_compare_exchange_weak(&max_active, &prev, now))
        continue;
    j->runs++;
    j->st = st;
    sleep_ms(j->sleep_ms);
    snprintf(email, sizeof(email), "job-%d@example.com", j->id);
    u.email = email;
    rc = mg_store_user_create(st, &u, 100 + j->id, NULL);
    atomic_fetch_sub(&active, 1);
    return j->want ? j->want : rc;
}

static void done_fn(void *arg, int status)
{
    struct job *j = arg;
    uv_thread_t self = uv_thread_self();
    j->dones++;
    j->status = status;
    j->done_on_loop = uv_thread_equal(&self, &loop_thread);
    if (j->next)
        j->next_submit = mg_store_pool_submit(j->pool, j->loop, work_fn, done_fn, j->next);
}

static int count_users(struct mg_store *st, void *arg)
{
    struct mg_store_user *list = NULL;
    size_t n = 0;
    int rc = mg_store_user_list(st, &list, &n);
    mg_store_user_list_free(list, n);
    *(size_t *)arg = n;
    return rc;
}

static int read_version(struct mg_store *st, void *arg)
{
    return mg_store_schema_version(st, arg);
}

static void test_new_failures(void)
{
    struct mg_store_pool *p = (struct mg_store_pool *)1;
    struct mg_store *st = NULL;
    char *err = NULL;
    char bad[192], newer[192];

    TAP_IS_INT(mg_store_pool_new(path, 0, 4, 1, &p, &err), MG_EINVAL, "no handles: MG_EINVAL");
    TAP_OK(p == NULL && err && *err, "no pool, a message (%s)", err ? err : "");
    free(err);
    TAP_IS_INT(mg_store_pool_new(path, 2, 0, 1, &p, NULL), MG_EINVAL, "no queue: MG_EINVAL");

    snprintf(bad, sizeof(bad), "%s/no/such/dir/x.db", dir);
    TAP_IS_INT(mg_store_pool_new(bad, 2, 4, 1, &p, &err), MG_EIO, "unopenable database: MG_EIO");
    TAP_OK(p == NULL && err && strstr(err, "no/such/dir"), "message names it (%s)", err ? err : "");
    free(err);

    snprintf(newer, sizeof(newer), "%s/newer.db", dir);
    TAP_IS_INT(mg_store_open(newer, &st, NULL), 0, "a database from a newer mcpgate");
    TAP_IS_INT(mg_store_migrate(st, 1), 0, "migrated");
    mg_store_free(st);
    {
        /* What a newer mcpgate would have recorded. */
        sqlite3 *db = NULL;
        int rc = sqlite3_open(newer, &db);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (99, 1)", NULL, NULL, NULL);
        sqlite3_close(db);
        TAP_IS_INT(rc, SQLITE_OK, "marked as version 99");
    }
    TAP_IS_INT(mg_store_pool_new(newer, 2, 4, 1, &p, &err), MG_EINVAL,
               "pool on a newer database: the first handle's migration refuses");
    TAP_OK(p == NULL && err && strstr(err, "newer"), "message says why (%s)", err ? err : "");
    free(err);
    mg_store_pool_free(NULL);
}

static void test_jobs(void)
{
    struct mg_store_pool *p = NULL;
    uv_loop_t loop;
    struct job jobs[5], extra = {.id = 9};
    char *err = NULL;
    int64_t version = 0;
    size_t n_users = 0;
    int ok_once = 1, ok_status = 1, ok_loop = 1;

    TAP_IS_INT(uv_loop_init(&loop), 0, "loop");
    TAP_IS_INT(mg_store_pool_new(path, 2, 4, 1234, &p, &err), 0, "pool of 2 handles, 4 in flight");
    TAP_OK(err == NULL, "no error");
    free(err);
    if (!p)
        return;
    TAP_IS_INT(mg_store_pool_run(p, read_version, &version), 0, "run synchronously");
    TAP_IS_INT(version, mg_store_schema_latest(), "the first handle migrated");

    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 5; i++) {
        jobs[i].id = i;
        jobs[i].sleep_ms = 60;
    }
    jobs[3].want = MG_ENOTFOUND;
    for (int i = 0; i < 4; i++)
        TAP_IS_INT(mg_store_pool_submit(p, &loop, work_fn, done_fn, &jobs[i]), 0, "submit job %d",
                   i);
    TAP_IS_INT(mg_store_pool_submit(p, &loop, work_fn, done_fn, &jobs[4]), MG_ELIMIT,
               "fifth job in flight: MG_ELIMIT");
    TAP_IS_INT(uv_run(&loop, UV_RUN_DEFAULT), 0, "loop runs until every job is done");
    for (int i = 0; i < 4; i++) {
        ok_once &= jobs[i].runs == 1 && jobs[i].dones == 1;
        ok_status &= jobs[i].status == (i == 3 ? MG_ENOTFOUND : 0);
        ok_loop &= jobs[i].done_on_loop;
    }
    TAP_OK(ok_once, "each job ran once and its done ran once");
    TAP_OK(ok_status, "done got what work returned");
    TAP_OK(ok_loop, "done ran on the loop's thread");
    TAP_OK(jobs[4].runs == 0 && jobs[4].dones == 0, "the refused job never ran");
    TAP_OK(atomic_load(&max_active) <= 2, "never more jobs at once than handles (%d)",
           atomic_load(&max_active));
    TAP_OK(jobs[0].st != jobs[1].st || jobs[0].st != jobs[2].st, "jobs used different handles");
    TAP_IS_INT(mg_store_pool_run(p, count_users, &n_users), 0, "count what the jobs wrote");
    TAP_IS_INT(n_users, 4, "four users");

    /* The slots are free again; a done may submit the next job itself. */
    jobs[0] = (struct job){.id = 10, .pool = p, .loop = &loop, .next = &extra};
    TAP_IS_INT(mg_store_pool_submit(p, &loop, work_fn, done_fn, &jobs[0]), 0,
               "submit after the queue drained");
    TAP_IS_INT(uv_run(&loop, UV_RUN_DEFAULT), 0, "run");
    TAP_IS_INT(jobs[0].next_submit, 0, "done submitted a follow-up");
    TAP_OK(jobs[0].dones == 1 && extra.runs == 1 && extra.dones == 1 && extra.status == 0,
           "the follow-up ran and completed once");

    TAP_IS_INT(mg_store_pool_run(p, count_users, &n_users), 0, "run again");
    TAP_IS_INT(n_users, 6, "six users");
    mg_store_pool_free(p);
    TAP_IS_INT(uv_loop_close(&loop), 0, "loop closes: nothing left on it");
}

/* max_queued is the bound across every loop: with 1 slot, a second submit
 * fails until the first job's done has run. */
static void test_bound_one(void)
{
    struct mg_store_pool *p = NULL;
    uv_loop_t loop;
    struct job a = {.id = 20}, b = {.id = 21};

    TAP_IS_INT(uv_loop_init(&loop), 0, "loop");
    TAP_IS_INT(mg_store_pool_new(path, 1, 1, 1, &p, NULL), 0, "pool of 1, 1 in flight");
    if (!p)
        return;
    TAP_IS_INT(mg_store_pool_submit(p, &loop, work_fn, done_fn, &a), 0, "first job");
    TAP_IS_INT(mg_store_pool_submit(p, &loop, work_fn, done_fn, &b), MG_ELIMIT,
               "second: MG_ELIMIT");
    sleep_ms(50); /* the work has long finished; the slot is held until done runs */
    TAP_IS_INT(mg_store_pool_submit(p, &loop, work_fn, done_fn, &b), MG_ELIMIT,
               "still MG_ELIMIT before done ran");
    TAP_IS_INT(uv_run(&loop, UV_RUN_DEFAULT), 0, "run");
    TAP_IS_INT(mg_store_pool_submit(p, &loop, work_fn, done_fn, &b), 0, "free again after done");
    TAP_IS_INT(uv_run(&loop, UV_RUN_DEFAULT), 0, "run");
    TAP_OK(a.dones == 1 && b.dones == 1 && b.runs == 1, "both done once");
    mg_store_pool_free(p);
    TAP_IS_INT(uv_loop_close(&loop), 0, "loop closes");
}

int main(void)
{
    char cmd[160];

    loop_thread = uv_thread_self();
    snprintf(dir, sizeof(dir), "/tmp/mg-pool-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store.db", dir);

    test_new_failures();
    test_jobs();
    test_bound_one();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
