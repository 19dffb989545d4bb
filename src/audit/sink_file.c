/* The JSON-lines sinks: a file the gateway appends to (the default sink),
 * or standard output. A batch is one write(), and one fdatasync() when it
 * must be durable at once (audit.sync; otherwise the writer syncs every
 * audit.sync_interval at most, audit.h); a batch
 * that fails half-way is cut off again (ftruncate), so the file only ever
 * holds whole, chained records. At open the file's last line gives the
 * chain's head, so the chain continues across restarts; a last line without
 * its newline (a crash during a write, never acknowledged) is cut off. An
 * exclusive flock keeps a second gateway from forking the chain in the same
 * file. Standard output is a stream: nothing is read back and the chain
 * starts at seq 1 on every start. */
#include "audit/sink.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct file_sink {
    int fd;
    bool regular; /* a file we own, read back and cut on failure */
    char *path;
};

__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static void file_close(void *p)
{
    struct file_sink *f = p;
    if (!f)
        return;
    if (f->regular && f->fd >= 0)
        close(f->fd); /* releases the flock */
    free(f->path);
    free(f);
}

static int file_open(const char *path, void **out, char *err, size_t cap)
{
    struct file_sink *f = mg_xcalloc(1, sizeof *f);
    struct stat sb;
    int ret = MG_EIO;

    f->fd = -1;
    f->path = mg_xstrdup(path);
    /* Owner-only: records name people, clients and what they asked. */
    f->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f->fd < 0) {
        errf(err, cap, "audit file %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(f->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        errf(err, cap, "audit file %s: not a regular file", path);
        close(f->fd);
        f->fd = -1;
        goto out;
    }
    f->regular = true;
    if (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
        errf(err, cap, "audit file %s: %s", path,
             errno == EWOULDBLOCK ? "in use by another process (one gateway per audit file)"
                                  : strerror(errno));
        goto out;
    }
    *out = f;
    f = NULL;
    ret = 0;
out:
    file_close(f);
    return ret;
}

static int stdout_open(const char *target, void **out, char *err, size_t cap)
{
    struct file_sink *f = mg_xcalloc(1, sizeof *f);
    MG_UNUSED(target);
    MG_UNUSED(err);
    MG_UNUSED(cap);
    f->fd = STDOUT_FILENO;
    f->path = mg_xstrdup("stdout");
    *out = f;
    return 0;
}

static int read_at(int fd, char *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return MG_EIO;
        got += (size_t)r;
    }
    return 0;
}

/* The last line of the file (which ends with '\n') into seq and hash. */
static int file_head(void *p, int64_t *seq, char hash[MG_AUDIT_HASH_HEX + 1], char *err, size_t cap)
{
    struct file_sink *f = p;
    struct stat sb;
    char *buf = NULL, *nl;
    size_t n, start;
    json_t *rec = NULL;
    json_int_t s;
    int ret = MG_EIO;

    *seq = 0;
    memcpy(hash, mg_audit_zero_hash, MG_AUDIT_HASH_HEX + 1);
    if (!f->regular)
        return 0;
    if (fstat(f->fd, &sb) != 0) {
        errf(err, cap, "audit file %s: %s", f->path, strerror(errno));
        return MG_EIO;
    }
    if (sb.st_size == 0)
        return 0;
    /* A record is at most MG_AUDIT_MAX_RECORD_BYTES: the tail holds the
     * whole last line and the newline before it. */
    n = (size_t)MG_MIN((off_t)MG_AUDIT_MAX_RECORD_BYTES + 2, sb.st_size);
    buf = mg_xmalloc(n + 1);
    if (read_at(f->fd, buf, n, sb.st_size - (off_t)n) != 0) {
        errf(err, cap, "audit file %s: cannot read its end: %s", f->path, strerror(errno));
        goto out;
    }
    buf[n] = '\0';
    if (buf[n - 1] != '\n') {
        /* A torn last line: a crash during a batch that was never reported
         * durable. Cut it so the chain goes on from the last whole record. */
        off_t keep;
        nl = memrchr(buf, '\n', n);
        if (!nl && (off_t)n < sb.st_size) {
            errf(err, cap, "audit file %s: the last line is longer than any record", f->path);
            goto out;
        }
        keep = nl ? sb.st_size - (off_t)n + (nl - buf) + 1 : 0;
        mg_log_warn("audit file %s: cutting %lld bytes of an incomplete last line (a write cut "
                    "short by a crash)",
                    f->path, (long long)(sb.st_size - keep));
        if (ftruncate(f->fd, keep) != 0 || fdatasync(f->fd) != 0) {
            errf(err, cap, "audit file %s: cannot cut an incomplete last line: %s", f->path,
                 strerror(errno));
            goto out;
        }
        free(buf);
        return file_head(p, seq, hash, err, cap);
    }
    buf[n - 1] = '\0';
    nl = memrchr(buf, '\n', n - 1);
    if (!nl && (off_t)n < sb.st_size) {
        errf(err, cap, "audit file %s: the last line is longer than any record", f->path);
        goto out;
    }
    start = nl ? (size_t)(nl - buf) + 1 : 0;
    rec = json_loadb(buf + start, n - 1 - start, MG_AUDIT_JSON_FLAGS, NULL);
    s = json_integer_value(json_object_get(rec, "seq"));
    if (!json_is_object(rec) || !json_is_integer(json_object_get(rec, "seq")) || s < 1) {
        errf(err, cap,
             "audit file %s: the last line is not an audit record; check the file with "
             "`mcpgate audit verify` and move it aside to start a new chain",
             f->path);
        ret = MG_EPROTO;
        goto out;
    }
    *seq = (int64_t)s;
    mg_audit_hash_hex(buf + start, n - 1 - start, hash);
    ret = 0;
out:
    json_decref(rec);
    free(buf);
    return ret;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int file_write(void *p, const struct mg_audit_entry *e, size_t n, bool durable, char *err,
                      size_t cap)
{
    struct file_sink *f = p;
    size_t total = 0, o = 0;
    off_t size = 0;
    char *buf;
    int ret = 0;

    for (size_t i = 0; i < n; i++)
        total += e[i].len + 1;
    buf = mg_xmalloc(total);
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + o, e[i].text, e[i].len);
        o += e[i].len;
        buf[o++] = '\n';
    }
    if (f->regular) {
        struct stat sb;
        if (fstat(f->fd, &sb) != 0) {
            errf(err, cap, "audit file %s: %s", f->path, strerror(errno));
            free(buf);
            return MG_EIO;
        }
        size = sb.st_size;
    }
    if (write_all(f->fd, buf, total) != 0) {
        errf(err, cap, "audit file %s: write: %s", f->path, strerror(errno));
        ret = MG_EIO;
    } else if (durable && fdatasync(f->fd) != 0 && (f->regular || errno != EINVAL)) {
        /* After a failed fsync the kernel may have dropped the dirty pages
         * and marked them clean: only writing them again is safe, so the
         * batch is cut and retried whole. Pipes and terminals cannot sync
         * (EINVAL); what they accepted is the reader's. */
        errf(err, cap, "audit file %s: fdatasync: %s", f->path, strerror(errno));
        ret = MG_EIO;
    }
    if (ret != 0 && f->regular && ftruncate(f->fd, size) != 0)
        mg_log_error("audit file %s: cannot cut a failed batch: %s; its partial records stay "
                     "and `mcpgate audit verify` will report them",
                     f->path, strerror(errno));
    free(buf);
    return ret;
}

/* After writes that were not durable. A failure here cannot cut them back
 * (later batches follow them): the writer reports it and keeps going. */
static int file_sync(void *p, char *err, size_t cap)
{
    struct file_sink *f = p;
    if (fdatasync(f->fd) != 0 && (f->regular || errno != EINVAL)) {
        errf(err, cap, "audit file %s: fdatasync: %s", f->path, strerror(errno));
        return MG_EIO;
    }
    return 0;
}

const struct mg_audit_sink_ops mg_audit__file_ops = {
    .name = "file",
    .persistent = true,
    .open = file_open,
    .head = file_head,
    .write = file_write,
    .sync = file_sync,
    .close = file_close,
};

const struct mg_audit_sink_ops mg_audit__stdout_ops = {
    .name = "stdout",
    .persistent = false,
    .open = stdout_open,
    .head = file_head,
    .write = file_write,
    .sync = file_sync,
    .close = file_close,
};
