/* The log writer; see log.h. */
#include "core/log.h"
#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX_BYTES (8u << 20)

struct entry {
    struct entry *next;
    bool access;
    size_t len;
    char data[];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct entry *head, *tail;
static size_t queued_bytes;
static bool running, stopping;
static pthread_t thread;
static atomic_int level = MG_LOG_INFO;
static atomic_uint_fast64_t dropped;
static int access_fd = 1; /* -1: off */
static bool access_fd_owned;
static atomic_bool access_on = true;

static int parse_level(const char *s)
{
    if (s == NULL || strcmp(s, "info") == 0)
        return MG_LOG_INFO;
    if (strcmp(s, "debug") == 0)
        return MG_LOG_DEBUG;
    if (strcmp(s, "warn") == 0)
        return MG_LOG_WARN;
    if (strcmp(s, "error") == 0)
        return MG_LOG_ERROR;
    return MG_LOG_INFO;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void *writer(void *arg)
{
    MG_UNUSED(arg);
    pthread_mutex_lock(&mu);
    for (;;) {
        while (head == NULL && !stopping)
            pthread_cond_wait(&cv, &mu);
        if (head == NULL && stopping)
            break;
        struct entry *list = head;
        head = tail = NULL;
        queued_bytes = 0;
        int afd = access_fd;
        pthread_mutex_unlock(&mu);
        while (list) {
            struct entry *e = list;
            list = e->next;
            int fd = e->access ? afd : 2;
            if (fd >= 0)
                write_all(fd, e->data, e->len);
            free(e);
        }
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void enqueue(bool access, const char *data, size_t len)
{
    struct entry *e = mg_xmalloc(sizeof *e + len + 1);
    e->next = NULL;
    e->access = access;
    memcpy(e->data, data, len);
    e->data[len] = '\n';
    e->len = len + 1;
    pthread_mutex_lock(&mu);
    if (!running) {
        pthread_mutex_unlock(&mu);
        /* Before start / after stop (CLI paths): write directly. */
        write_all(access ? (access_fd >= 0 ? access_fd : -1) : 2, e->data, e->len);
        free(e);
        return;
    }
    if (queued_bytes + e->len > QUEUE_MAX_BYTES) {
        pthread_mutex_unlock(&mu);
        free(e);
        atomic_fetch_add(&dropped, 1);
        return;
    }
    bool was_empty = head == NULL;
    if (tail)
        tail->next = e;
    else
        head = e;
    tail = e;
    queued_bytes += e->len;
    /* The writer takes the whole list each time it wakes: one signal per
     * batch, not per line. */
    if (was_empty)
        pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static int open_access(const char *dest, int *fd, bool *owned)
{
    *owned = false;
    if (dest == NULL || strcmp(dest, "stdout") == 0) {
        *fd = 1;
    } else if (strcmp(dest, "stderr") == 0) {
        *fd = 2;
    } else if (strcmp(dest, "off") == 0) {
        *fd = -1;
    } else {
        int f = open(dest, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (f < 0)
            return MG_EIO;
        *fd = f;
        *owned = true;
    }
    return 0;
}

int mg_log_reconfigure(const char *access_log, const char *lvl)
{
    int fd;
    bool owned;
    if (open_access(access_log, &fd, &owned) < 0) {
        mg_log_error("cannot open access_log %s: %s", access_log, strerror(errno));
        return MG_EIO;
    }
    pthread_mutex_lock(&mu);
    int old = access_fd;
    bool old_owned = access_fd_owned;
    access_fd = fd;
    access_fd_owned = owned;
    atomic_store(&access_on, fd >= 0);
    pthread_mutex_unlock(&mu);
    /* The writer reads access_fd under the lock per batch; closing the old
     * one after the swap can only cut a batch already taken, which then fails
     * its write harmlessly. */
    if (old_owned)
        close(old);
    atomic_store(&level, parse_level(lvl));
    return 0;
}

int mg_log_start(const char *access_log, const char *lvl)
{
    if (mg_log_reconfigure(access_log, lvl) < 0)
        return MG_EIO;
    pthread_mutex_lock(&mu);
    stopping = false;
    running = pthread_create(&thread, NULL, writer, NULL) == 0;
    pthread_mutex_unlock(&mu);
    return running ? 0 : MG_EIO;
}

void mg_log_stop(void)
{
    pthread_mutex_lock(&mu);
    if (!running) {
        pthread_mutex_unlock(&mu);
        return;
    }
    stopping = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    pthread_mutex_lock(&mu);
    running = false;
    if (access_fd_owned)
        close(access_fd);
    access_fd = 1;
    access_fd_owned = false;
    pthread_mutex_unlock(&mu);
}

bool mg_log_enabled(enum mg_log_level l)
{
    return (int)l >= atomic_load(&level);
}

bool mg_log_access_enabled(void)
{
    return atomic_load(&access_on);
}

void mg_log_time(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void mg_log(enum mg_log_level l, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (!mg_log_enabled(l))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char t[40];
    mg_log_time(t, sizeof t);
    struct mg_buf b;
    mg_buf_init(&b, 8192);
    mg_buf_appendf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", t, names[l]);
    mg_buf_append_json_str(&b, msg, strlen(msg));
    mg_buf_appends(&b, "}");
    enqueue(false, b.data, b.len);
    mg_buf_fini(&b);
}

void mg_log_access(const char *line, size_t len)
{
    enqueue(true, line, len);
}

uint64_t mg_log_dropped(void)
{
    return atomic_load(&dropped);
}
