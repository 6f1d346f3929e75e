/*
 * LD_PRELOAD shim that records, and can fail, what SQLite does to the kit's database.
 *
 * Its one job: the power-cut harness (hil/power_cut.py) must know every write, truncate,
 * fsync and unlink SQLite makes to its own files, in order with the outbox's file
 * operations, so that it can rebuild what a power cut at each point leaves (synced writes,
 * plus any subset of the rest); and the I/O-fault tests (hil/sqlite_faults.py) must make the
 * Nth pwrite or fsync of the database fail with EIO or ENOSPC. Python's sqlite3 uses the
 * system libsqlite3, whose unix VFS calls these libc functions, so a preloaded library sees
 * them all (a test VFS such as apsw's would only see apsw's own bundled SQLite).
 *
 * Under the directory KITD_IO_ROOT (an absolute, resolved path) it tracks:
 *   - database files: names ending in .sqlite3, .sqlite3-wal or .sqlite3-journal (the -shm
 *     is left out: SQLite rebuilds it from the WAL after a crash);
 *   - directories (their fsyncs make names durable: SQLite's of data_dir, FileOps's of the
 *     outbox), and every mkdir.
 * Records go to the trace file (KITD_IO_TRACE at start, or kitd_trace_start) on a file
 * descriptor of its own, one write(2) per record, under a lock. Python adds its own
 * records (the recording FileOps, and marks such as "store returned") with
 * kitd_trace_record, so that one ordered stream holds both.
 *
 * A record: the header "<IHHHHqqII" (total size, op, path and path2 lengths, padding,
 * offset, arg, data length, padding) followed by op, path, path2 and data.
 *
 * Faults: kitd_fault_arm(op, n, errno), op "pwrite" (pwrite, pwrite64 or write), "fsync"
 * (fsync or fdatasync) or "ftruncate", makes the nth such call on a database file (counted
 * from the arming) fail with errno, the operation not done; n = 0 only counts
 * (kitd_fault_count). KITD_IO_FAULT="pwrite:3:ENOSPC" arms at start.
 * Built by the tests: cc -shared -fPIC -o sqlite_io_shim.so sqlite_io_shim.c -ldl -lpthread.
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE /* its inline open() would clash with ours */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FDS 65536
enum { UNTRACKED = 0, DATABASE_FILE = 1, DIRECTORY = 2 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int trace_fd = -1;
static char root[PATH_MAX];
static size_t root_len;
static unsigned char kinds[MAX_FDS];
static char *paths[MAX_FDS];

static char fault_op[16];
static long fault_at;
static int fault_errno;
static long count_pwrite, count_fsync, count_ftruncate;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_unlink)(const char *);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_close)(int);
static off_t (*real_lseek)(int, off_t, int);

static void resolve(void)
{
    if (real_close)
        return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_mkdir = dlsym(RTLD_NEXT, "mkdir");
    real_mkdirat = dlsym(RTLD_NEXT, "mkdirat");
    real_lseek = dlsym(RTLD_NEXT, "lseek");
    real_close = dlsym(RTLD_NEXT, "close");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int under_root(const char *path)
{
    return root_len && strncmp(path, root, root_len) == 0 && (path[root_len] == '/' || path[root_len] == 0);
}

static int is_database_file(const char *path)
{
    return under_root(path) &&
           (ends_with(path, ".sqlite3") || ends_with(path, ".sqlite3-wal") || ends_with(path, ".sqlite3-journal"));
}

/* The absolute form of a path given to open or mkdir (SQLite and the outbox pass absolute
 * ones; a relative one is taken from the working directory). */
static void absolute(int dirfd, const char *path, char *out)
{
    if (path[0] == '/' || dirfd != AT_FDCWD) {
        strncpy(out, path, PATH_MAX - 1);
        out[PATH_MAX - 1] = 0;
        return;
    }
    if (!getcwd(out, PATH_MAX - 2)) {
        out[0] = 0;
        return;
    }
    strncat(out, "/", PATH_MAX - strlen(out) - 1);
    strncat(out, path, PATH_MAX - strlen(out) - 1);
}

static void emit(const char *op, const char *path, const char *path2, int64_t offset, int64_t arg,
                 const void *data, uint32_t data_len)
{
    uint16_t op_len = strlen(op), path_len = path ? strlen(path) : 0, path2_len = path2 ? strlen(path2) : 0;
    uint32_t total = 36 + op_len + path_len + path2_len + data_len;
    char *buffer, *at;
    uint16_t zero16 = 0;
    uint32_t zero32 = 0;

    if (trace_fd < 0)
        return;
    buffer = malloc(total);
    if (!buffer)
        abort(); /* a trace with a hole would be a lie */
    at = buffer;
    memcpy(at, &total, 4), at += 4;
    memcpy(at, &op_len, 2), at += 2;
    memcpy(at, &path_len, 2), at += 2;
    memcpy(at, &path2_len, 2), at += 2;
    memcpy(at, &zero16, 2), at += 2;
    memcpy(at, &offset, 8), at += 8;
    memcpy(at, &arg, 8), at += 8;
    memcpy(at, &data_len, 4), at += 4;
    memcpy(at, &zero32, 4), at += 4;
    memcpy(at, op, op_len), at += op_len;
    if (path_len)
        memcpy(at, path, path_len), at += path_len;
    if (path2_len)
        memcpy(at, path2, path2_len), at += path2_len;
    if (data_len)
        memcpy(at, data, data_len);
    for (uint32_t done = 0; done < total;) {
        ssize_t n = real_write(trace_fd, buffer + done, total - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        done += n;
    }
    free(buffer);
}

static void track(int fd, const char *path, int existed)
{
    struct stat st;
    int kind = UNTRACKED;

    if (fd < 0 || fd >= MAX_FDS || !under_root(path))
        return;
    if (is_database_file(path))
        kind = DATABASE_FILE;
    else if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        kind = DIRECTORY;
    if (kind == UNTRACKED)
        return;
    pthread_mutex_lock(&lock);
    free(paths[fd]);
    paths[fd] = strdup(path);
    kinds[fd] = kind;
    if (kind == DATABASE_FILE && !existed)
        emit("create", path, NULL, 0, 0, NULL, 0);
    pthread_mutex_unlock(&lock);
}

static int tracked_kind(int fd)
{
    return fd >= 0 && fd < MAX_FDS ? kinds[fd] : UNTRACKED;
}

/* 1 when this call is the armed fault: the caller fails it with errno set. */
static int fault(const char *op, int fd)
{
    long *count;
    int hit;

    if (tracked_kind(fd) != DATABASE_FILE)
        return 0;
    count = strcmp(op, "pwrite") == 0 ? &count_pwrite : strcmp(op, "fsync") == 0 ? &count_fsync : &count_ftruncate;
    pthread_mutex_lock(&lock);
    ++*count;
    hit = fault_at > 0 && strcmp(fault_op, op) == 0 && *count == fault_at;
    if (hit)
        emit("fault", paths[fd], op, *count, fault_errno, NULL, 0);
    pthread_mutex_unlock(&lock);
    if (hit)
        errno = fault_errno;
    return hit;
}

static void record_write(int fd, const void *data, size_t length, int64_t offset)
{
    if (tracked_kind(fd) != DATABASE_FILE)
        return;
    pthread_mutex_lock(&lock);
    emit("write", paths[fd], NULL, offset, 0, data, length);
    pthread_mutex_unlock(&lock);
}

static int opened(int dirfd, const char *path, int flags, int fd, int existed)
{
    char full[PATH_MAX];

    (void)flags;
    if (fd >= 0 && root_len) {
        absolute(dirfd, path, full);
        track(fd, full, existed);
    }
    return fd;
}

static int existed_before(int dirfd, const char *path, int flags)
{
    struct stat st;

    if (!(flags & O_CREAT) || !root_len)
        return 1;
    return fstatat(dirfd, path, &st, 0) == 0;
}

/* The mode argument, present only when glibc's open() would read one. */
#define MODE_ARG(flags, mode)                                                 \
    do {                                                                      \
        mode = 0;                                                             \
        if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) {      \
            va_list ap;                                                       \
            va_start(ap, flags);                                              \
            mode = va_arg(ap, int);                                           \
            va_end(ap);                                                       \
        }                                                                     \
    } while (0)

int open(const char *path, int flags, ...)
{
    int mode, existed;

    resolve();
    MODE_ARG(flags, mode);
    existed = existed_before(AT_FDCWD, path, flags);
    return opened(AT_FDCWD, path, flags, real_open(path, flags, mode), existed);
}

int open64(const char *path, int flags, ...)
{
    int mode, existed;

    resolve();
    MODE_ARG(flags, mode);
    existed = existed_before(AT_FDCWD, path, flags);
    return opened(AT_FDCWD, path, flags, real_open64(path, flags, mode), existed);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    int mode, existed;

    resolve();
    MODE_ARG(flags, mode);
    existed = existed_before(dirfd, path, flags);
    return opened(dirfd, path, flags, real_openat(dirfd, path, flags, mode), existed);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    int mode, existed;

    resolve();
    MODE_ARG(flags, mode);
    existed = existed_before(dirfd, path, flags);
    return opened(dirfd, path, flags, real_openat64(dirfd, path, flags, mode), existed);
}

ssize_t write(int fd, const void *data, size_t length)
{
    off_t at;
    ssize_t n;

    resolve();
    if (tracked_kind(fd) != DATABASE_FILE)
        return real_write(fd, data, length);
    if (fault("pwrite", fd))
        return -1;
    at = real_lseek(fd, 0, SEEK_CUR);
    n = real_write(fd, data, length);
    if (n > 0)
        record_write(fd, data, n, at);
    return n;
}

ssize_t pwrite(int fd, const void *data, size_t length, off_t offset)
{
    ssize_t n;

    resolve();
    if (fault("pwrite", fd))
        return -1;
    n = real_pwrite(fd, data, length, offset);
    if (n > 0)
        record_write(fd, data, n, offset);
    return n;
}

ssize_t pwrite64(int fd, const void *data, size_t length, off64_t offset)
{
    ssize_t n;

    resolve();
    if (fault("pwrite", fd))
        return -1;
    n = real_pwrite64(fd, data, length, offset);
    if (n > 0)
        record_write(fd, data, n, offset);
    return n;
}

static int synced(int fd, int result)
{
    int kind = tracked_kind(fd);

    if (result == 0 && kind != UNTRACKED) {
        pthread_mutex_lock(&lock);
        emit(kind == DIRECTORY ? "dirsync" : "fsync", paths[fd], NULL, 0, 0, NULL, 0);
        pthread_mutex_unlock(&lock);
    }
    return result;
}

int fsync(int fd)
{
    resolve();
    if (fault("fsync", fd))
        return -1;
    return synced(fd, real_fsync(fd));
}

int fdatasync(int fd)
{
    resolve();
    if (fault("fsync", fd))
        return -1;
    return synced(fd, real_fdatasync(fd));
}

static int truncated(int fd, int64_t size, int result)
{
    if (result == 0 && tracked_kind(fd) == DATABASE_FILE) {
        pthread_mutex_lock(&lock);
        emit("truncate", paths[fd], NULL, 0, size, NULL, 0);
        pthread_mutex_unlock(&lock);
    }
    return result;
}

int ftruncate(int fd, off_t size)
{
    resolve();
    if (fault("ftruncate", fd))
        return -1;
    return truncated(fd, size, real_ftruncate(fd, size));
}

int ftruncate64(int fd, off64_t size)
{
    resolve();
    if (fault("ftruncate", fd))
        return -1;
    return truncated(fd, size, real_ftruncate64(fd, size));
}

int unlink(const char *path)
{
    char full[PATH_MAX];
    int result;

    resolve();
    result = real_unlink(path);
    if (result == 0 && root_len) {
        absolute(AT_FDCWD, path, full);
        /* The outbox's unlinks are recorded by its FileOps; the database's only here. */
        if (is_database_file(full)) {
            pthread_mutex_lock(&lock);
            emit("unlink", full, NULL, 0, 0, NULL, 0);
            pthread_mutex_unlock(&lock);
        }
    }
    return result;
}

static int made(int dirfd, const char *path, int result)
{
    char full[PATH_MAX];

    if (result == 0 && root_len) {
        absolute(dirfd, path, full);
        if (under_root(full)) {
            pthread_mutex_lock(&lock);
            emit("mkdir", full, NULL, 0, 0, NULL, 0);
            pthread_mutex_unlock(&lock);
        }
    }
    return result;
}

int mkdir(const char *path, mode_t mode)
{
    resolve();
    return made(AT_FDCWD, path, real_mkdir(path, mode));
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    resolve();
    return made(dirfd, path, real_mkdirat(dirfd, path, mode));
}

int close(int fd)
{
    resolve();
    if (fd >= 0 && fd < MAX_FDS && kinds[fd]) {
        pthread_mutex_lock(&lock);
        kinds[fd] = UNTRACKED;
        free(paths[fd]);
        paths[fd] = NULL;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

/* --- called from Python (ctypes.CDLL(None)) ------------------------------------------- */

int kitd_trace_start(const char *trace_path)
{
    int fd;

    resolve();
    fd = real_open(trace_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    pthread_mutex_lock(&lock);
    trace_fd = fd;
    pthread_mutex_unlock(&lock);
    return 0;
}

void kitd_trace_stop(void)
{
    int fd;

    resolve();
    pthread_mutex_lock(&lock);
    fd = trace_fd;
    trace_fd = -1;
    pthread_mutex_unlock(&lock);
    if (fd >= 0)
        real_close(fd);
}

/* One record from Python: the outbox's file operations and the run's marks. */
void kitd_trace_record(const char *op, const char *path, const char *path2, int64_t offset, int64_t arg,
                       const void *data, uint32_t data_len)
{
    resolve();
    pthread_mutex_lock(&lock);
    emit(op, path, path2, offset, arg, data, data_len);
    pthread_mutex_unlock(&lock);
}

void kitd_fault_arm(const char *op, long at, int error)
{
    pthread_mutex_lock(&lock);
    strncpy(fault_op, op, sizeof(fault_op) - 1);
    fault_at = at;
    fault_errno = error;
    count_pwrite = count_fsync = count_ftruncate = 0;
    pthread_mutex_unlock(&lock);
}

long kitd_fault_count(const char *op)
{
    return strcmp(op, "pwrite") == 0 ? count_pwrite : strcmp(op, "fsync") == 0 ? count_fsync : count_ftruncate;
}

static int errno_named(const char *name)
{
    return strcmp(name, "ENOSPC") == 0 ? ENOSPC : strcmp(name, "EIO") == 0 ? EIO : atoi(name);
}

__attribute__((constructor)) static void start(void)
{
    const char *value;

    resolve();
    value = getenv("KITD_IO_ROOT");
    if (value && value[0] == '/' && strlen(value) < sizeof(root)) {
        strcpy(root, value);
        root_len = strlen(root);
        while (root_len > 1 && root[root_len - 1] == '/')
            root[--root_len] = 0;
    }
    value = getenv("KITD_IO_TRACE");
    if (value && *value)
        kitd_trace_start(value);
    value = getenv("KITD_IO_FAULT");
    if (value && *value) {
        char copy[64], *op, *at, *name;

        strncpy(copy, value, sizeof(copy) - 1);
        copy[sizeof(copy) - 1] = 0;
        op = strtok(copy, ":");
        at = strtok(NULL, ":");
        name = strtok(NULL, ":");
        if (op && at && name)
            kitd_fault_arm(op, atol(at), errno_named(name));
    }
}
